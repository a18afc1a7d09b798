/*
 * peercred.h: who is on the other end of a Unix socket (SO_PEERCRED), with
 * a guard against PID reuse: the process start time is recorded at accept
 * and checked again before an answer is given (as SPIRE's agent does).
 *
 * The uid and gid are what the kernel recorded when the peer called
 * connect(); nothing the process does afterwards (exec of a setuid program,
 * setuid()) changes them, so they, not /proc, say who connected.  The
 * identity of the binary the process runs (/proc/<pid>/exe) is recorded at
 * accept, which comes after connect: a process that execs another binary
 * between its connect() and our accept() is recorded as the new binary.
 */
#ifndef WICK_PEERCRED_H
#define WICK_PEERCRED_H

#include <stdint.h>
#include <sys/types.h>

#include "err.h"

#define PEERCRED_MAX_STAT	4096	/* bytes of /proc/<pid>/stat read */

struct peercred {
	pid_t		 pid;
	uid_t		 uid;		/* effective ids at connect */
	gid_t		 gid;
	uint64_t	 starttime;	/* clock ticks after boot; 0: unknown */
	/* The file /proc/<pid>/exe named at accept, when it was readable. */
	int		 exe_known;
	dev_t		 exe_dev;
	ino_t		 exe_ino;
};

/*
 * Credentials of a connected Unix socket, the peer's start time and, when
 * /proc/<pid>/exe can be read, the identity of the binary it runs.
 */
int	 peercred_get(int fd, struct peercred *) WICK_WUR;
/*
 * 0 while the same process still runs; WICK_ERR_STATE when the pid is gone
 * or now belongs to another process (start time changed).
 */
int	 peercred_check_alive(const struct peercred *) WICK_WUR;
/*
 * 0 when dev/ino (of what /proc/<pid>/exe names now) is the binary recorded
 * at accept; WICK_ERR_PERM when it is another file or none was recorded.
 */
int	 peercred_check_exe(const struct peercred *, dev_t, ino_t) WICK_WUR;
/* Field 22 of a /proc/<pid>/stat line; comm may hold spaces and ')'. */
int	 peercred_parse_stat_starttime(const char *, uint64_t *) WICK_WUR;

#endif /* WICK_PEERCRED_H */
