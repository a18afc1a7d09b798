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
	/*
	 * /proc/<pid>/status opened at accept (peercred_hold()): it names
	 * that process for as long as it is open, even once the pid is used
	 * again, and reads through it fail once the process is gone.
	 */
	int		 status_held;
	int		 status_fd;
	/*
	 * From peercred_ucred() to peercred_complete(), where the kernel
	 * gives one (SO_PEERPIDFD, Linux 6.5): the process that called
	 * connect(), whatever its pid names by then.  Held for the
	 * connection's life instead of the status file when the kernel also
	 * answers PIDFD_GET_INFO (Linux 6.13): see peercred_pidfd_ids().
	 */
	int		 pidfd_held;
	int		 pidfd;
};

/* The ids a process runs with: real, effective, saved, filesystem. */
struct peercred_ids {
	uid_t		 uid[4];
	gid_t		 gid[4];
};

/*
 * Credentials of a connected Unix socket, the peer's start time and, when
 * /proc/<pid>/exe can be read, the identity of the binary it runs.
 */
int	 peercred_get(int fd, struct peercred *) WICK_WUR;
/*
 * peercred_get() in two steps, for a server that admits a connection by
 * uid before paying for the reads of /proc: the kernel's record of the
 * peer (pid, uid, gid) only, then the rest; with hold, the status file is
 * opened first (peercred_hold() with one read fewer; without a descriptor
 * to spare, as peercred_get()).  Where the kernel names the connecting
 * process itself (SO_PEERPIDFD), peercred_complete() refuses a peer that
 * is gone by the end of its reads (WICK_ERR_STATE): its pid may name
 * another process by then, and what was read would be that one's.
 * peercred_release() closes what peercred_ucred() opened when
 * peercred_complete() is not called.
 */
int	 peercred_ucred(int fd, struct peercred *) WICK_WUR;
int	 peercred_complete(struct peercred *, int hold) WICK_WUR;
/*
 * Keep /proc/<pid>/status open for the connection's life (one more file
 * descriptor): then peercred_read_status() costs one pread and the check
 * that the caller is still the same process cannot be fooled by a reused
 * pid.  (peercred_complete() with hold keeps the connecting process's
 * pidfd instead where the kernel answers PIDFD_GET_INFO: the same
 * guarantees, and the ids without reading /proc.)  WICK_ERR_STATE when the process is already gone or replaced, or
 * no descriptor is left (then everything works by path, as without it).
 */
int	 peercred_hold(struct peercred *) WICK_WUR;
/* Close what peercred_hold() opened (a no-op if nothing was). */
void	 peercred_release(struct peercred *);
/*
 * The process's /proc/<pid>/status now, NUL-terminated, into buf (at most
 * len - 1 bytes; a longer file is cut there): through the held descriptor
 * when there is one, by path otherwise.  WICK_ERR_STATE when the process is
 * gone (or, by path, could not be read).
 */
int	 peercred_read_status(const struct peercred *, char *buf, size_t len,
	    size_t *n) WICK_WUR;
/*
 * The ids the process that connected runs with now, asked of the kernel
 * through its pidfd held since accept (no /proc file is rendered and
 * read; the pidfd names that process whatever its pid names now).
 * WICK_ERR_STATE once it is gone; WICK_ERR_UNSUPPORTED when no pidfd is
 * held (an older kernel) or the kernel will not say: then the status
 * file says.  The supplementary
 * groups are not among them: only the status file gives those.
 */
int	 peercred_pidfd_ids(const struct peercred *, struct peercred_ids *)
	    WICK_WUR;
/*
 * 0 while the same process still runs; WICK_ERR_STATE when the pid is gone
 * or now belongs to another process (start time changed; with a held
 * descriptor, a read through it fails).
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
