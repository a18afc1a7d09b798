/*
 * peercred.c: SO_PEERCRED plus a process start-time guard and the identity
 * of the binary the peer ran at accept.
 */
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>

#include <errno.h>
#include <poll.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "peercred.h"

/* Older headers than the kernels that have it. */
#ifndef SO_PEERPIDFD
#define SO_PEERPIDFD	77
#endif

/*
 * PIDFD_GET_INFO (Linux 6.13), spelled out for older headers: the first
 * version of the kernel's struct pidfd_info (64 bytes).  The credentials
 * always come back; the kernel refuses a process already reaped (ESRCH).
 */
struct peercred_pidfd_info {
	uint64_t	 mask;
	uint64_t	 cgroupid;
	uint32_t	 pid;
	uint32_t	 tgid;
	uint32_t	 ppid;
	uint32_t	 ruid;
	uint32_t	 rgid;
	uint32_t	 euid;
	uint32_t	 egid;
	uint32_t	 suid;
	uint32_t	 sgid;
	uint32_t	 fsuid;
	uint32_t	 fsgid;
	uint32_t	 spare0[1];
};
#define PEERCRED_PIDFD_GET_INFO	_IOWR(0xFF, 11, struct peercred_pidfd_info)
#define PEERCRED_PIDFD_INFO_CREDS	(1ULL << 1)

/*
 * The credentials of the process pidfd names: 0, -1 with errno ESRCH once
 * it is gone, -1 with another errno when the kernel has no such request.
 */
static int
pidfd_info(int pidfd, struct peercred_pidfd_info *info)
{
	memset(info, 0, sizeof(*info));
	info->mask = PEERCRED_PIDFD_INFO_CREDS;
	if (ioctl(pidfd, PEERCRED_PIDFD_GET_INFO, info) == -1)
		return -1;
	if (!(info->mask & PEERCRED_PIDFD_INFO_CREDS)) {
		errno = ENOTTY;
		return -1;
	}
	return 0;
}

int
peercred_parse_stat_starttime(const char *line, uint64_t *out)
{
	const char	*p;
	char		*end;
	int		 field;
	unsigned long long v;

	*out = 0;
	/* comm is in parentheses and may contain anything: skip to the last ')'. */
	if ((p = strrchr(line, ')')) == NULL)
		return WICK_ERR_INVALID;
	p++;
	/* Field 3 (state) follows; starttime is field 22. */
	for (field = 3; field < 22; field++) {
		while (*p == ' ')
			p++;
		if (*p == '\0')
			return WICK_ERR_INVALID;
		while (*p != ' ' && *p != '\0')
			p++;
	}
	while (*p == ' ')
		p++;
	errno = 0;
	v = strtoull(p, &end, 10);
	if (end == p || errno != 0 || (*end != ' ' && *end != '\0' &&
	    *end != '\n'))
		return WICK_ERR_INVALID;
	*out = v;
	return 0;
}

static int
read_starttime(pid_t pid, uint64_t *out)
{
	char	 path[64], buf[PEERCRED_MAX_STAT];
	ssize_t	 n;
	int	 fd;

	*out = 0;
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		return errno == ENOENT ? WICK_ERR_NOT_FOUND : WICK_ERR_IO;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return WICK_ERR_IO;
	buf[n] = '\0';
	return peercred_parse_stat_starttime(buf, out);
}

int
peercred_ucred(int fd, struct peercred *pc)
{
	struct ucred	 cred;
	socklen_t	 len = sizeof(cred);

	int		 pidfd;

	memset(pc, 0, sizeof(*pc));
	pc->status_fd = -1;
	pc->pidfd = -1;
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == -1)
		return WICK_ERR_IO;
	if (cred.pid <= 0)
		return WICK_ERR_NOT_FOUND;
	pc->pid = cred.pid;
	pc->uid = cred.uid;
	pc->gid = cred.gid;
	/*
	 * Unknown to the kernel (before 6.5), or no descriptor to spare:
	 * the start time guards alone.  Refused with EINVAL or ESRCH: the
	 * process that connected is gone already (kernels before 6.16 give
	 * no pidfd of a reaped process).
	 */
	len = sizeof(pidfd);
	if (getsockopt(fd, SOL_SOCKET, SO_PEERPIDFD, &pidfd, &len) == 0) {
		if (len == sizeof(pidfd) && pidfd >= 0) {
			pc->pidfd = pidfd;
			pc->pidfd_held = 1;
		}
	} else if (errno == EINVAL || errno == ESRCH)
		return WICK_ERR_STATE;
	return 0;
}

/*
 * 0 while the process that connected still exists (a zombie too: its pid
 * is not given to another until it is reaped), WICK_ERR_STATE once it is
 * gone.  Without a pidfd, 0.
 */
static int
connector_alive(const struct peercred *pc)
{
	struct pollfd	 p;

	if (!pc->pidfd_held)
		return 0;
	if (syscall(SYS_pidfd_send_signal, pc->pidfd, 0, NULL, 0) == 0 ||
	    errno == EPERM)
		return 0;
	if (errno == ESRCH)
		return WICK_ERR_STATE;
	/*
	 * No such system call where we run (an emulator or a filter that
	 * does not know it): a pidfd polls readable once its process has
	 * exited, which is stricter (a zombie counts as gone).
	 */
	p.fd = pc->pidfd;
	p.events = POLLIN;
	p.revents = 0;
	return poll(&p, 1, 0) == 0 ? 0 : WICK_ERR_STATE;
}

static void
pidfd_close(struct peercred *pc)
{
	if (!pc->pidfd_held)
		return;
	close(pc->pidfd);
	pc->pidfd = -1;
	pc->pidfd_held = 0;
}

/*
 * Whether the kernel answers PIDFD_GET_INFO, learnt from the first pidfd
 * asked (-1 until then).  A kernel does not learn new requests while it
 * runs, so once known it holds for every connection after.
 */
static int pidfd_info_known = -1;

static int
pidfd_info_works(const struct peercred *pc)
{
	struct peercred_pidfd_info info;

	if (pidfd_info_known == -1) {
		if (pidfd_info(pc->pidfd, &info) == 0)
			pidfd_info_known = 1;
		else if (errno != ESRCH)
			pidfd_info_known = 0;
		else
			return 0;	/* gone: the next one tells */
	}
	return pidfd_info_known;
}

int
peercred_complete(struct peercred *pc, int hold)
{
	struct stat	 st;
	char		 path[64];
	int		 r;

	/*
	 * Held: the connecting process's pidfd where the kernel gives its
	 * ids through it; otherwise the status file, opened before the start
	 * time is read, so both name one process (if the pid was used again
	 * in between, the file names the one that is gone and every read
	 * through it fails).
	 */
	if (hold && !(pc->pidfd_held && pidfd_info_works(pc))) {
		snprintf(path, sizeof(path), "/proc/%d/status", (int)pc->pid);
		if ((pc->status_fd = open(path, O_RDONLY | O_CLOEXEC)) != -1)
			pc->status_held = 1;
	}
	if ((r = read_starttime(pc->pid, &pc->starttime)) != 0) {
		peercred_release(pc);
		return r == WICK_ERR_NOT_FOUND ? WICK_ERR_STATE : r;
	}
	/* Unreadable (another uid and we are not privileged): unknown. */
	snprintf(path, sizeof(path), "/proc/%d/exe", (int)pc->pid);
	if (stat(path, &st) == 0) {
		pc->exe_known = 1;
		pc->exe_dev = st.st_dev;
		pc->exe_ino = st.st_ino;
	}
	/*
	 * Everything above was read by pid.  The process that connected
	 * still existing now means the pid named it all along: one that
	 * exited before the accept (its socket handed on) and whose pid went
	 * to another process would have lent that one's binary and start
	 * time, and, held, its status file, to whoever has the socket.
	 */
	if (connector_alive(pc) != 0) {
		peercred_release(pc);
		pc->exe_known = 0;
		return WICK_ERR_STATE;
	}
	/* Kept only as what names the process from now on. */
	if (!hold || pc->status_held || pidfd_info_known != 1)
		pidfd_close(pc);
	return 0;
}

int
peercred_get(int fd, struct peercred *pc)
{
	int r;

	if ((r = peercred_ucred(fd, pc)) != 0)
		return r;
	return peercred_complete(pc, 0);
}

int
peercred_hold(struct peercred *pc)
{
	char		 path[64];
	uint64_t	 now;
	int		 fd;

	/* A pidfd kept names the process as well. */
	if (pc->status_held || pc->pidfd_held)
		return connector_alive(pc);
	snprintf(path, sizeof(path), "/proc/%d/status", (int)pc->pid);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		return WICK_ERR_STATE;
	/*
	 * Opened first, checked after: if the pid still names the process
	 * recorded at accept, it did so when the file was opened too (a pid
	 * is not used again while its process lives).
	 */
	if (read_starttime(pc->pid, &now) != 0 || now != pc->starttime) {
		close(fd);
		return WICK_ERR_STATE;
	}
	pc->status_fd = fd;
	pc->status_held = 1;
	return 0;
}

void
peercred_release(struct peercred *pc)
{
	pidfd_close(pc);
	if (!pc->status_held)
		return;
	close(pc->status_fd);
	pc->status_held = 0;
	pc->status_fd = -1;
}

int
peercred_read_status(const struct peercred *pc, char *buf, size_t len,
    size_t *n)
{
	char	 path[64];
	ssize_t	 got;
	int	 fd;

	*n = 0;
	if (len < 2)
		return WICK_ERR_INVALID;
	if (pc->status_held) {
		/* From offset 0 the kernel writes the file anew. */
		if ((got = pread(pc->status_fd, buf, len - 1, 0)) <= 0)
			return WICK_ERR_STATE;
	} else {
		snprintf(path, sizeof(path), "/proc/%d/status", (int)pc->pid);
		if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
			return WICK_ERR_STATE;
		got = read(fd, buf, len - 1);
		close(fd);
		if (got <= 0)
			return WICK_ERR_STATE;
		/* Read by pid: it named the process that connected if that
		 * one still exists now (where a pidfd is kept to say so). */
		if (connector_alive(pc) != 0)
			return WICK_ERR_STATE;
	}
	buf[got] = '\0';
	*n = (size_t)got;
	return 0;
}

int
peercred_pidfd_ids(const struct peercred *pc, struct peercred_ids *ids)
{
	struct peercred_pidfd_info info;

	if (!pc->pidfd_held)
		return WICK_ERR_UNSUPPORTED;
	/*
	 * ESRCH is also what kernels 6.13 to 6.15 answer for a live process
	 * whose parent is outside our pid namespace (a container's first
	 * process, one entered from outside): then the status file says.
	 */
	if (pidfd_info(pc->pidfd, &info) != 0)
		return errno == ESRCH && connector_alive(pc) != 0 ?
		    WICK_ERR_STATE : WICK_ERR_UNSUPPORTED;
	ids->uid[0] = info.ruid;
	ids->uid[1] = info.euid;
	ids->uid[2] = info.suid;
	ids->uid[3] = info.fsuid;
	ids->gid[0] = info.rgid;
	ids->gid[1] = info.egid;
	ids->gid[2] = info.sgid;
	ids->gid[3] = info.fsgid;
	return 0;
}

int
peercred_check_alive(const struct peercred *pc)
{
	uint64_t	 now;
	char		 buf[64];
	int		 r;

	/* The held file or pidfd names the process itself: a read works
	 * until it is gone, whoever has its pid by then. */
	if (pc->status_held)
		return pread(pc->status_fd, buf, sizeof(buf), 0) > 0 ? 0 :
		    WICK_ERR_STATE;
	if (pc->pidfd_held)
		return connector_alive(pc);
	if ((r = read_starttime(pc->pid, &now)) != 0)
		return r == WICK_ERR_NOT_FOUND ? WICK_ERR_STATE : r;
	return now == pc->starttime ? 0 : WICK_ERR_STATE;
}

int
peercred_check_exe(const struct peercred *pc, dev_t dev, ino_t ino)
{
	if (!pc->exe_known || pc->exe_dev != dev || pc->exe_ino != ino)
		return WICK_ERR_PERM;
	return 0;
}
