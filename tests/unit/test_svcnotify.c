/*
 * test_svcnotify.c: the service manager's notification protocol from the
 * loop, received on a real datagram socket (a path, or a name in the
 * abstract namespace) standing for the manager's $NOTIFY_SOCKET.
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

#include "log.h"
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

/*
 * Log lines at every level go to a temporary file from here on, for
 * logged() to read back and forget.
 */
static FILE *
log_capture(void)
{
	FILE	*f;

	assert_non_null(f = tmpfile());
	log_init("test", LOG_LEVEL_DEBUG, LOG_FORMAT_TEXT);
	log_set_stream(f);
	return f;
}

/* What was logged since the last call. */
static const char *
logged(FILE *f)
{
	static char	 buf[4096];
	size_t		 n;

	assert_int_equal(fflush(f), 0);
	rewind(f);
	n = fread(buf, 1, sizeof(buf) - 1, f);
	buf[n] = '\0';
	rewind(f);
	assert_int_equal(ftruncate(fileno(f), 0), 0);
	return buf;
}

static void
log_release(FILE *f)
{
	log_set_stream(NULL);
	fclose(f);
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

/* A manager listening in the abstract namespace: "@name" in the
 * environment, a leading NUL in the address. */
static void
test_abstract_socket(void **state)
{
	struct manager		*m = *state;
	struct svcnotify	 sn;
	struct sockaddr_un	 sun;
	socklen_t		 len;
	char			 name[64], env[72], buf[256];
	ssize_t			 n;
	int			 fd;

	snprintf(name, sizeof(name), "wick-svcnotify-%ld-%ld",
	    (long)getpid(), (long)random());
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK, 0);
	assert_true(fd >= 0);
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	memcpy(sun.sun_path + 1, name, strlen(name));
	len = offsetof(struct sockaddr_un, sun_path) + 1 + strlen(name);
	assert_int_equal(bind(fd, (struct sockaddr *)&sun, len), 0);
	snprintf(env, sizeof(env), "@%s", name);
	assert_int_equal(setenv("NOTIFY_SOCKET", env, 1), 0);

	memset(&sn, 0, sizeof(sn));
	svcnotify_ready(&sn, "serving");
	n = recv(fd, buf, sizeof(buf) - 1, 0);
	assert_int_equal(n, (ssize_t)strlen("READY=1\nSTATUS=serving"));
	buf[n] = '\0';
	assert_string_equal(buf, "READY=1\nSTATUS=serving");
	/* Not to a path named like it. */
	assert_string_equal(next(m), "");
	svcnotify_stopping(&sn, "shutting down");
	n = recv(fd, buf, sizeof(buf) - 1, 0);
	assert_true(n > 0);
	buf[n] = '\0';
	assert_string_equal(buf, "STOPPING=1\nSTATUS=shutting down");
	close(fd);
}

/*
 * $NOTIFY_SOCKET values no socket address can hold, or that are not
 * addresses at all: nothing is sent, the reason is logged (at debug:
 * not being able to notify is not fatal), and the daemon goes on.
 */
static void
test_unusable_notify_socket(void **state)
{
	struct manager		*m = *state;
	struct svcnotify	 sn;
	FILE			*f;
	char			 v[200];

	f = log_capture();
	memset(&sn, 0, sizeof(sn));
	/* A path one byte too long for sun_path with its NUL. */
	v[0] = '/';
	memset(v + 1, 'a', sizeof(((struct sockaddr_un *)0)->sun_path) - 1);
	v[sizeof(((struct sockaddr_un *)0)->sun_path)] = '\0';
	assert_int_equal(setenv("NOTIFY_SOCKET", v, 1), 0);
	svcnotify_status(&sn, "one");
	assert_non_null(strstr(logged(f), "$NOTIFY_SOCKET is a path of 108 "
	    "bytes, more than the 107 a socket address holds"));
	/* An abstract name longer than the 107 bytes after the NUL. */
	memset(v, 'a', sizeof(v));
	v[0] = '@';
	v[sizeof(v) - 1] = '\0';
	assert_int_equal(setenv("NOTIFY_SOCKET", v, 1), 0);
	svcnotify_status(&sn, "two");
	assert_non_null(strstr(logged(f), "$NOTIFY_SOCKET is an abstract "
	    "name of 198 bytes"));
	/* A relative path would be resolved against our own directory. */
	assert_int_equal(setenv("NOTIFY_SOCKET", "notify", 1), 0);
	svcnotify_status(&sn, "three");
	assert_non_null(strstr(logged(f), "neither an absolute path nor an "
	    "abstract name"));
	/* A path where no one listens. */
	assert_int_equal(setenv("NOTIFY_SOCKET", "/nonexistent/notify", 1),
	    0);
	svcnotify_status(&sn, "four");
	assert_non_null(strstr(logged(f), "/nonexistent/notify"));
	/* The manager's socket again: the next line goes through. */
	assert_int_equal(setenv("NOTIFY_SOCKET", m->path, 1), 0);
	svcnotify_status(&sn, "five");
	assert_string_equal(next(m), "STATUS=five");
	assert_string_equal(logged(f), "");
	log_release(f);
}

/*
 * Watchdog settings that are not a positive number of microseconds, or
 * not a pid: a warning, no timer, no WATCHDOG=1.  Then a good one with
 * no $WATCHDOG_PID: fed at once.
 */
static void
test_watchdog_malformed(void **state)
{
	static const char *const	 bad_usec[] = {
		"", "0", "abc", "-20000", "+20000", " 20000", "20000x",
		"0x4e20", "18446744073709551616", NULL
	};
	static const char *const	 bad_pid[] = {
		"", "0", "abc", "-1", "1x", NULL
	};
	struct manager			*m = *state;
	struct svcnotify		 sn;
	uv_loop_t			 loop;
	FILE				*f;
	size_t				 i;

	f = log_capture();
	assert_int_equal(uv_loop_init(&loop), 0);
	unsetenv("WATCHDOG_PID");
	for (i = 0; bad_usec[i] != NULL; i++) {
		memset(&sn, 0, sizeof(sn));
		assert_int_equal(setenv("WATCHDOG_USEC", bad_usec[i], 1), 0);
		svcnotify_start(&sn, &loop);
		assert_non_null(strstr(logged(f), "watchdog settings from "
		    "the service manager are malformed: WATCHDOG_USEC="));
		assert_false(uv_loop_alive(&loop));
		assert_int_equal(uv_run(&loop, UV_RUN_NOWAIT), 0);
		assert_string_equal(next(m), "");
	}
	assert_int_equal(setenv("WATCHDOG_USEC", "20000", 1), 0);
	for (i = 0; bad_pid[i] != NULL; i++) {
		memset(&sn, 0, sizeof(sn));
		assert_int_equal(setenv("WATCHDOG_PID", bad_pid[i], 1), 0);
		svcnotify_start(&sn, &loop);
		assert_non_null(strstr(logged(f), "watchdog settings from "
		    "the service manager are malformed: WATCHDOG_PID="));
		assert_false(uv_loop_alive(&loop));
		assert_string_equal(next(m), "");
	}
	/* Well formed, no pid named: ours. */
	unsetenv("WATCHDOG_PID");
	memset(&sn, 0, sizeof(sn));
	svcnotify_start(&sn, &loop);
	assert_null(strstr(logged(f), "malformed"));
	assert_true(uv_loop_alive(&loop));
	(void)uv_run(&loop, UV_RUN_NOWAIT);
	assert_string_equal(next(m), "WATCHDOG=1");
	svcnotify_stopping(&sn, "shutting down");
	assert_string_equal(next(m), "STOPPING=1\nSTATUS=shutting down");
	assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
	assert_int_equal(uv_loop_close(&loop), 0);
	log_release(f);
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
		cmocka_unit_test_setup_teardown(test_abstract_socket, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_unusable_notify_socket,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_watchdog_malformed,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_no_manager, setup,
		    teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
