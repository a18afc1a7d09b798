/*
 * peercred.c: SO_PEERCRED plus a process start-time guard and the identity
 * of the binary the peer ran at accept.
 */
#include <sys/socket.h>
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "peercred.h"

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
peercred_get(int fd, struct peercred *pc)
{
	struct ucred	 cred;
	struct stat	 st;
	socklen_t	 len = sizeof(cred);
	char		 path[64];
	int		 r;

	memset(pc, 0, sizeof(*pc));
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == -1)
		return WICK_ERR_IO;
	if (cred.pid <= 0)
		return WICK_ERR_NOT_FOUND;
	pc->pid = cred.pid;
	pc->uid = cred.uid;
	pc->gid = cred.gid;
	if ((r = read_starttime(pc->pid, &pc->starttime)) != 0)
		return r == WICK_ERR_NOT_FOUND ? WICK_ERR_STATE : r;
	/* Unreadable (another uid and we are not privileged): unknown. */
	snprintf(path, sizeof(path), "/proc/%d/exe", (int)pc->pid);
	if (stat(path, &st) == 0) {
		pc->exe_known = 1;
		pc->exe_dev = st.st_dev;
		pc->exe_ino = st.st_ino;
	}
	return 0;
}

int
peercred_check_alive(const struct peercred *pc)
{
	uint64_t	 now;
	int		 r;

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
