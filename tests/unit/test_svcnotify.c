/*
 * test_svcnotify.c: sd_notify from the loop, received on a real datagram
 * socket standing for the service manager's $NOTIFY_SOCKET.
 */
#include <sys/socket.h>
#include <sys/un.h>

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include <uv.h>

#include "svcnotify.h"

struct manager {
	char	 dir[64];
	char	 path[96];
	int	 fd;
};

static int
setup(void **state)
{
	struct manager		*m;
	struct sockaddr_un	 sun;

	m = calloc(1, sizeof(*m));
	assert_non_null(m);
	snprintf(m->dir, sizeof(m->dir), "/tmp/wick-svcnotify-XXXXXX");
	assert_non_null(mkdtemp(m->dir));
	snprintf(m->path, sizeof(m->path), "%s/notify", m->dir);
	m->fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK, 0);
	assert_true(m->fd >= 0);
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", m->path);
	assert_int_equal(bind(m->fd, (struct sockaddr *)&sun, sizeof(sun)), 0);
	assert_int_equal(setenv("NOTIFY_SOCKET", m->path, 1), 0);
	unsetenv("WATCHDOG_USEC");
	unsetenv("WATCHDOG_PID");
	*state = m;
	return 0;
}

static int
teardown(void **state)
{
	struct manager *m = *state;

	unsetenv("NOTIFY_SOCKET");
	unsetenv("WATCHDOG_USEC");
	unsetenv("WATCHDOG_PID");
	close(m->fd);
	unlink(m->path);
	rmdir(m->dir);
	free(m);
	return 0;
}

/* The next datagram, or "" when none is waiting. */
static const char *
next(struct manager *m)
{
	static char	 buf[1024];
	ssize_t		 n;

	n = recv(m->fd, buf, sizeof(buf) - 1, 0);
	buf[n > 0 ? n : 0] = '\0';
	return buf;
}

static void
test_ready_status_stopping(void **state)
{
	struct manager		*m = *state;
	struct svcnotify	 sn;
	uv_loop_t		 loop;

	memset(&sn, 0, sizeof(sn));
	assert_int_equal(uv_loop_init(&loop), 0);
	/* No watchdog asked for: no timer, nothing keeps the loop alive. */
	svcnotify_start(&sn, &loop);
	assert_int_equal(uv_run(&loop, UV_RUN_NOWAIT), 0);
	/* A newline in a value would end it: it becomes a space. */
	svcnotify_ready(&sn, "serving: %d entries\nREADY=0", 3);
	assert_string_equal(next(m), "READY=1\nSTATUS=serving: 3 entries "
	    "READY=0");
	/* The same line again is not sent; a new one is. */
	svcnotify_status(&sn, "serving: %d entries READY=0", 3);
	assert_string_equal(next(m), "");
	svcnotify_status(&sn, "serving: %d entries", 4);
	assert_string_equal(next(m), "STATUS=serving: 4 entries");
	svcnotify_stopping(&sn, "shutting down");
	assert_string_equal(next(m), "STOPPING=1\nSTATUS=shutting down");
	svcnotify_stopping(&sn, "shutting down");
	assert_string_equal(next(m), "");
	assert_int_equal(uv_loop_close(&loop), 0);
}

static void
test_watchdog_fed_from_loop(void **state)
{
	struct manager		*m = *state;
	struct svcnotify	 sn;
	uv_loop_t		 loop;
	uint64_t		 until;
	char			 pid[32];
	int			 n = 0;

	memset(&sn, 0, sizeof(sn));
	assert_int_equal(uv_loop_init(&loop), 0);
	/* 20 ms: fed every 10 ms while the loop runs. */
	assert_int_equal(setenv("WATCHDOG_USEC", "20000", 1), 0);
	snprintf(pid, sizeof(pid), "%ld", (long)getpid());
	assert_int_equal(setenv("WATCHDOG_PID", pid, 1), 0);
	svcnotify_start(&sn, &loop);
	/* Not fed while the loop does not run. */
	usleep(50000);
	assert_string_equal(next(m), "");
	/* Run the loop for about 100 ms. */
	uv_update_time(&loop);
	until = uv_now(&loop) + 100;
	while (uv_now(&loop) < until) {
		(void)uv_run(&loop, UV_RUN_ONCE);
		uv_update_time(&loop);
	}
	while (strcmp(next(m), "WATCHDOG=1") == 0)
		n++;
	/* About 11 (one at once, then every 10 ms); fewer on a busy host,
	 * never more. */
	assert_true(n >= 3);
	assert_true(n <= 12);
	/* Stopping closes the timer: the loop can close. */
	svcnotify_stopping(&sn, "shutting down");
	assert_string_equal(next(m), "STOPPING=1\nSTATUS=shutting down");
	assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
	assert_int_equal(uv_loop_close(&loop), 0);
}

static void
test_watchdog_for_another_pid(void **state)
{
	struct manager		*m = *state;
	struct svcnotify	 sn;
	uv_loop_t		 loop;

	memset(&sn, 0, sizeof(sn));
	assert_int_equal(uv_loop_init(&loop), 0);
	/* The manager watches pid 1, not us (we were started by it). */
	assert_int_equal(setenv("WATCHDOG_USEC", "20000", 1), 0);
	assert_int_equal(setenv("WATCHDOG_PID", "1", 1), 0);
	svcnotify_start(&sn, &loop);
	assert_int_equal(uv_run(&loop, UV_RUN_NOWAIT), 0);
	assert_string_equal(next(m), "");
	svcnotify_stopping(&sn, "shutting down");
	assert_int_equal(uv_loop_close(&loop), 0);
}

static void
test_no_manager(void **state)
{
	struct svcnotify	 sn;
	uv_loop_t		 loop;

	/* Run by hand: every call does nothing, harmlessly. */
	unsetenv("NOTIFY_SOCKET");
	assert_int_equal(setenv("WATCHDOG_USEC", "20000", 1), 0);
	memset(&sn, 0, sizeof(sn));
	assert_int_equal(uv_loop_init(&loop), 0);
	svcnotify_ready(&sn, "serving");
	svcnotify_status(&sn, "still serving");
	svcnotify_stopping(&sn, "shutting down");
	/* Started after stopping (a daemon that failed early): no timer. */
	svcnotify_start(&sn, &loop);
	assert_int_equal(uv_run(&loop, UV_RUN_NOWAIT), 0);
	assert_int_equal(uv_loop_close(&loop), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_ready_status_stopping,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_watchdog_fed_from_loop,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_watchdog_for_another_pid,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_no_manager, setup,
		    teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
