/*
 * test_peercred.c: SO_PEERCRED and the PID-reuse guard.
 */
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "peercred.h"

static void
test_socketpair_is_us(void **state)
{
	struct peercred	 pc, held;
	struct stat	 st;
	char		 buf[8192];
	size_t		 n;
	int		 sv[2];

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	assert_int_equal(peercred_get(sv[0], &pc), 0);
	assert_int_equal(pc.pid, getpid());
	assert_int_equal(pc.uid, geteuid());
	assert_int_equal(pc.gid, getegid());
	assert_true(pc.starttime > 0);
	assert_int_equal(peercred_check_alive(&pc), 0);
	/* The binary we run, recorded at accept. */
	assert_int_equal(stat("/proc/self/exe", &st), 0);
	assert_true(pc.exe_known);
	assert_int_equal(pc.exe_dev, st.st_dev);
	assert_int_equal(pc.exe_ino, st.st_ino);
	assert_int_equal(peercred_check_exe(&pc, st.st_dev, st.st_ino), 0);
	assert_int_equal(peercred_check_exe(&pc, st.st_dev, st.st_ino + 1),
	    WICK_ERR_PERM);
	pc.exe_known = 0;
	assert_int_equal(peercred_check_exe(&pc, st.st_dev, st.st_ino),
	    WICK_ERR_PERM);
	/* The same pid with another start time is another process. */
	pc.starttime++;
	assert_int_equal(peercred_check_alive(&pc), WICK_ERR_STATE);
	/* Held from the start: the same credentials, and the status file
	 * open (then the held file, not the start time, decides). */
	assert_int_equal(peercred_ucred(sv[0], &held), 0);
	assert_false(held.status_held);
	assert_int_equal(peercred_complete(&held, 1), 0);
	assert_true(held.status_held);
	assert_int_equal(held.pid, getpid());
	assert_int_equal(held.uid, geteuid());
	assert_true(held.starttime > 0);
	assert_int_equal(peercred_check_alive(&held), 0);
	assert_int_equal(peercred_read_status(&held, buf, sizeof(buf), &n), 0);
	assert_non_null(strstr(buf, "\nUid:\t"));
	/* Too small a buffer is refused, not overrun. */
	assert_int_equal(peercred_read_status(&held, buf, 1, &n),
	    WICK_ERR_INVALID);
	peercred_release(&held);
	assert_false(held.status_held);
	close(sv[0]);
	close(sv[1]);
}

static void
test_exited_peer_is_detected(void **state)
{
	struct peercred	 pc;
	int		 sv[2], status;
	pid_t		 child;
	char		 c;

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	child = fork();
	assert_true(child >= 0);
	if (child == 0) {
		/* The child's own end: credentials are those of the creator,
		 * so hand over a fresh pair made by the child. */
		int cv[2];

		close(sv[0]);
		if (socketpair(AF_UNIX, SOCK_STREAM, 0, cv) != 0)
			_exit(1);
		/* Pass cv[0] (whose peer is the child) to the parent. */
		struct msghdr	 m = { 0 };
		char		 cbuf[CMSG_SPACE(sizeof(int))];
		struct iovec	 iov = { (void *)"x", 1 };
		struct cmsghdr	*cm;

		m.msg_iov = &iov;
		m.msg_iovlen = 1;
		m.msg_control = cbuf;
		m.msg_controllen = sizeof(cbuf);
		cm = CMSG_FIRSTHDR(&m);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(sizeof(int));
		*(int *)CMSG_DATA(cm) = cv[0];
		if (sendmsg(sv[1], &m, 0) != 1)
			_exit(1);
		/* Wait for the parent to read our credentials, then exit. */
		if (read(sv[1], &c, 1) != 1)
			_exit(1);
		_exit(0);
	}
	close(sv[1]);
	{
		struct msghdr	 m = { 0 };
		char		 cbuf[CMSG_SPACE(sizeof(int))], x;
		char		 st[8192], want[64];
		struct iovec	 iov = { &x, 1 };
		struct peercred	 held;
		size_t		 n;
		int		 fd;

		m.msg_iov = &iov;
		m.msg_iovlen = 1;
		m.msg_control = cbuf;
		m.msg_controllen = sizeof(cbuf);
		assert_int_equal(recvmsg(sv[0], &m, 0), 1);
		fd = *(int *)CMSG_DATA(CMSG_FIRSTHDR(&m));
		assert_int_equal(peercred_get(fd, &pc), 0);
		assert_int_equal(pc.pid, child);
		assert_int_equal(peercred_check_alive(&pc), 0);
		/* Its status file held open: read through it, it is the
		 * child's. */
		held = pc;
		assert_int_equal(peercred_hold(&held), 0);
		assert_int_equal(peercred_check_alive(&held), 0);
		assert_int_equal(peercred_read_status(&held, st, sizeof(st),
		    &n), 0);
		assert_true(n > 0 && strlen(st) == n);
		snprintf(want, sizeof(want), "\nPid:\t%ld\n", (long)child);
		assert_non_null(strstr(st, want));
		assert_int_equal(write(sv[0], "g", 1), 1);
		assert_int_equal(waitpid(child, &status, 0), child);
		assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
		/* Gone now: the guard says so, by path and through the held
		 * file, which no later process with that pid can answer. */
		assert_int_equal(peercred_check_alive(&pc), WICK_ERR_STATE);
		assert_int_equal(peercred_check_alive(&held), WICK_ERR_STATE);
		assert_int_equal(peercred_read_status(&held, st, sizeof(st),
		    &n), WICK_ERR_STATE);
		assert_int_equal(peercred_read_status(&pc, st, sizeof(st),
		    &n), WICK_ERR_STATE);
		peercred_release(&held);
		assert_int_equal(held.status_held, 0);
		peercred_release(&held);
		close(fd);
	}
	close(sv[0]);
}

static void
test_stat_parsing(void **state)
{
	uint64_t t;

	assert_int_equal(peercred_parse_stat_starttime("123 (sleep) S 1 123 "
	    "123 0 -1 4194560 100 0 0 0 0 0 0 0 20 0 1 0 98765 1000 10",
	    &t), 0);
	assert_int_equal(t, 98765);
	/* comm with spaces and parentheses. */
	assert_int_equal(peercred_parse_stat_starttime("9 (a) b) (c) R 1 9 9 "
	    "0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 4242 0 0", &t), 0);
	assert_int_equal(t, 4242);
	assert_int_equal(peercred_parse_stat_starttime("9 (x) R 1 2", &t),
	    WICK_ERR_INVALID);
	assert_int_equal(peercred_parse_stat_starttime("no parens", &t),
	    WICK_ERR_INVALID);
	assert_int_equal(peercred_parse_stat_starttime("9 (x) R 1 9 9 0 -1 0 "
	    "0 0 0 0 0 0 0 0 20 0 1 0 12x 0", &t), WICK_ERR_INVALID);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_socketpair_is_us),
		cmocka_unit_test(test_exited_peer_is_detected),
		cmocka_unit_test(test_stat_parsing),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
