/*
 * test_peercred.c: SO_PEERCRED and the PID-reuse guard.
 */
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
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
#include "helpers/fdpass.h"

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
	/* Held from the start: the same credentials, and the pidfd kept
	 * where the kernel gives the ids through it, else the status file
	 * open (then either, not the start time, decides). */
	assert_int_equal(peercred_ucred(sv[0], &held), 0);
	assert_false(held.status_held);
	assert_int_equal(peercred_complete(&held, 1), 0);
	assert_true(held.status_held != held.pidfd_held);
	if (held.pidfd_held) {
		struct peercred_ids	 ids;
		uid_t			 u[3];
		gid_t			 g[3];

		assert_int_equal(getresuid(&u[0], &u[1], &u[2]), 0);
		assert_int_equal(getresgid(&g[0], &g[1], &g[2]), 0);
		assert_int_equal(peercred_pidfd_ids(&held, &ids), 0);
		assert_int_equal(ids.uid[0], u[0]);
		assert_int_equal(ids.uid[1], u[1]);
		assert_int_equal(ids.uid[2], u[2]);
		assert_int_equal(ids.uid[3], u[1]);	/* fsuid follows euid */
		assert_int_equal(ids.gid[0], g[0]);
		assert_int_equal(ids.gid[1], g[1]);
		assert_int_equal(ids.gid[2], g[2]);
		assert_int_equal(ids.gid[3], g[1]);
	} else {
		struct peercred_ids ids;

		assert_int_equal(peercred_pidfd_ids(&held, &ids),
		    WICK_ERR_UNSUPPORTED);
	}
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
	assert_false(held.pidfd_held);
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
		if (fdpass_send(sv[1], cv[0]) != 0)
			_exit(1);
		/* Wait for the parent to read our credentials, then exit. */
		if (read(sv[1], &c, 1) != 1)
			_exit(1);
		_exit(0);
	}
	close(sv[1]);
	{
		char		 st[8192], want[64];
		struct peercred	 held;
		size_t		 n;
		int		 fd;

		assert_true((fd = fdpass_recv(sv[0])) >= 0);
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

#ifndef SO_PEERPIDFD
#define SO_PEERPIDFD	77
#endif

/* The next process this one forks gets pid, if nothing forks between. */
static int
next_pid_is(pid_t pid)
{
	char	 b[32];
	int	 fd, n, ok;

	if ((fd = open("/proc/sys/kernel/ns_last_pid", O_WRONLY)) == -1)
		return -1;
	n = snprintf(b, sizeof(b), "%ld", (long)pid - 1);
	ok = write(fd, b, (size_t)n) == n;
	close(fd);
	return ok ? 0 : -1;
}

/* A process that waits (until killed, or 30 s) under pid, which must be
 * free: the kernel is asked for it until a fork gets it. */
static pid_t
take_pid(pid_t pid)
{
	pid_t	reuser = -1;
	int	tries;

	for (tries = 0; tries < 100 && reuser != pid; tries++) {
		if (reuser > 0) {
			kill(reuser, SIGKILL);
			(void)waitpid(reuser, NULL, 0);
		}
		assert_int_equal(next_pid_is(pid), 0);
		if ((reuser = fork()) == 0) {
			alarm(30);
			pause();
			_exit(0);
		}
		assert_true(reuser > 0);
	}
	assert_int_equal(reuser, pid);
	return reuser;
}

/*
 * The process that connected exits (its socket handed to a child) before
 * the accept, and its pid goes to another process of the same uid: what
 * /proc says under that pid is the other process's, and must not be taken
 * for the caller's.  The pid is made to come round again by setting the
 * kernel's last pid (root only).
 */
static void
test_pid_reused_before_accept(void **state)
{
	struct sockaddr_un	 sa;
	struct peercred		 pc;
	char			 dir[] = "/tmp/peercred-XXXXXX";
	pid_t			 connector, holder, reuser;
	socklen_t		 len;
	int			 lfd, fd, p[2], sv[2], pidfd, status, r;

	if (geteuid() != 0) {
		print_message("needs root (ns_last_pid)\n");
		skip();
	}
	/* A kernel that cannot name the connecting process (before 6.5)
	 * has only the start time to go by. */
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	len = sizeof(pidfd);
	if (getsockopt(sv[0], SOL_SOCKET, SO_PEERPIDFD, &pidfd, &len) != 0) {
		assert_int_equal(errno, ENOPROTOOPT);
		close(sv[0]);
		close(sv[1]);
		print_message("no SO_PEERPIDFD on this kernel\n");
		skip();
	}
	close(pidfd);
	close(sv[0]);
	close(sv[1]);

	assert_non_null(mkdtemp(dir));
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/s", dir);
	assert_true((lfd = socket(AF_UNIX, SOCK_STREAM, 0)) >= 0);
	assert_int_equal(bind(lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(lfd, 4), 0);
	assert_int_equal(pipe(p), 0);
	connector = fork();
	assert_true(connector >= 0);
	if (connector == 0) {
		int	s;

		close(p[0]);
		if ((s = socket(AF_UNIX, SOCK_STREAM, 0)) == -1 ||
		    connect(s, (struct sockaddr *)&sa, sizeof(sa)) != 0)
			_exit(1);
		if ((holder = fork()) == 0) {	/* keeps the socket */
			holder = getpid();
			if (write(p[1], &holder, sizeof(holder)) !=
			    sizeof(holder))
				_exit(1);
			alarm(30);	/* gone even if the test fails */
			pause();
			_exit(0);
		}
		_exit(holder > 0 ? 0 : 1);
	}
	close(p[1]);
	assert_int_equal(read(p[0], &holder, sizeof(holder)), sizeof(holder));
	close(p[0]);
	assert_int_equal(waitpid(connector, &status, 0), connector);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	/* The connector's pid, for a process that is not the caller. */
	reuser = take_pid(connector);
	assert_true((fd = accept(lfd, NULL, NULL)) >= 0);
	/* Refused at once (a kernel that gives no pidfd of a reaped
	 * process) or once the reads are done. */
	if ((r = peercred_ucred(fd, &pc)) == 0) {
		assert_int_equal(pc.pid, connector);
		r = peercred_complete(&pc, 1);
	}
	assert_int_equal(r, WICK_ERR_STATE);
	assert_false(pc.status_held);
	assert_false(pc.pidfd_held);
	assert_false(pc.exe_known);
	peercred_release(&pc);

	kill(reuser, SIGKILL);
	(void)waitpid(reuser, NULL, 0);
	kill(holder, SIGKILL);
	close(fd);
	close(lfd);
	unlink(sa.sun_path);
	rmdir(dir);
}

/*
 * Held by pidfd: the caller exits after the accept and its pid goes to
 * another process of the same uid.  Nothing read by that pid (the status
 * file a call may still read by path, for the groups) may be taken for
 * the caller's: the pidfd says the caller is gone.
 */
static void
test_pidfd_kept_outlives_pid(void **state)
{
	struct peercred	 pc;
	pid_t		 caller, reuser;
	size_t		 n;
	char		 st[8192], want[64];
	int		 p[2], sv[2], status;

	if (geteuid() != 0) {
		print_message("needs root (ns_last_pid)\n");
		skip();
	}
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, p), 0);
	caller = fork();
	assert_true(caller >= 0);
	if (caller == 0) {
		char c;

		close(p[0]);
		/* The pair is made here: its peer is this process. */
		if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0 ||
		    fdpass_send(p[1], sv[0]) != 0 || read(p[1], &c, 1) != 1)
			_exit(1);
		_exit(0);
	}
	close(p[1]);
	assert_true((sv[0] = fdpass_recv(p[0])) >= 0);
	assert_int_equal(peercred_ucred(sv[0], &pc), 0);
	assert_int_equal(pc.pid, caller);
	assert_int_equal(peercred_complete(&pc, 1), 0);
	if (!pc.pidfd_held) {
		/* No PIDFD_GET_INFO here: the status file is held, and the
		 * test of that is test_exited_peer_is_detected. */
		assert_true(pc.status_held);
		assert_int_equal(write(p[0], "x", 1), 1);
		assert_int_equal(waitpid(caller, &status, 0), caller);
		peercred_release(&pc);
		close(sv[0]);
		close(p[0]);
		print_message("no PIDFD_GET_INFO on this kernel\n");
		return;
	}
	assert_false(pc.status_held);
	assert_int_equal(peercred_check_alive(&pc), 0);
	assert_int_equal(peercred_read_status(&pc, st, sizeof(st), &n), 0);
	snprintf(want, sizeof(want), "\nPid:\t%ld\n", (long)caller);
	assert_non_null(strstr(st, want));
	assert_int_equal(write(p[0], "x", 1), 1);
	close(p[0]);
	assert_int_equal(waitpid(caller, &status, 0), caller);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	reuser = take_pid(caller);
	/* /proc/<pid>/status is there again, the reuser's. */
	assert_int_equal(peercred_read_status(&pc, st, sizeof(st), &n),
	    WICK_ERR_STATE);
	assert_int_equal(peercred_check_alive(&pc), WICK_ERR_STATE);
	{
		struct peercred_ids ids;

		assert_int_equal(peercred_pidfd_ids(&pc, &ids),
		    WICK_ERR_STATE);
	}
	peercred_release(&pc);
	assert_false(pc.pidfd_held);
	kill(reuser, SIGKILL);
	(void)waitpid(reuser, NULL, 0);
	close(sv[0]);
}

/* A connection refused before peercred_complete(): nothing left open. */
static void
test_release_before_complete(void **state)
{
	struct peercred	 pc;
	int		 sv[2], fd;

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	assert_int_equal(peercred_ucred(sv[0], &pc), 0);
	fd = pc.pidfd_held ? pc.pidfd : -1;
	peercred_release(&pc);
	assert_false(pc.pidfd_held);
	if (fd >= 0)
		assert_int_equal(fcntl(fd, F_GETFD), -1);
	/* Alive through it all: complete() succeeds and closes it. */
	assert_int_equal(peercred_ucred(sv[0], &pc), 0);
	assert_int_equal(peercred_complete(&pc, 0), 0);
	assert_false(pc.pidfd_held);
	close(sv[0]);
	close(sv[1]);
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
		cmocka_unit_test(test_pid_reused_before_accept),
		cmocka_unit_test(test_pidfd_kept_outlives_pid),
		cmocka_unit_test(test_release_before_complete),
		cmocka_unit_test(test_stat_parsing),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
