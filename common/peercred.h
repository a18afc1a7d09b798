/*
 * peercred.h: who is on the other end of a Unix socket (SO_PEERCRED), with
 * a guard against PID reuse: the process start time is recorded at accept
 * and checked again before an answer is given (as SPIRE's agent does).
 */
#ifndef WICK_PEERCRED_H
#define WICK_PEERCRED_H

#include <stdint.h>
#include <sys/types.h>

#include "err.h"

#define PEERCRED_MAX_STAT	4096	/* bytes of /proc/<pid>/stat read */

struct peercred {
	pid_t		 pid;
	uid_t		 uid;
	gid_t		 gid;
	uint64_t	 starttime;	/* clock ticks after boot; 0: unknown */
};

/* Credentials of a connected Unix socket and the peer's start time. */
int	 peercred_get(int fd, struct peercred *) WICK_WUR;
/*
 * 0 while the same process still runs; WICK_ERR_STATE when the pid is gone
 * or now belongs to another process (start time changed).
 */
int	 peercred_check_alive(const struct peercred *) WICK_WUR;
/* Field 22 of a /proc/<pid>/stat line; comm may hold spaces and ')'. */
int	 peercred_parse_stat_starttime(const char *, uint64_t *) WICK_WUR;

#endif /* WICK_PEERCRED_H */
