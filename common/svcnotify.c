/*
 * svcnotify.c: systemd's notification protocol for both daemons
 * (svcnotify.h), spoken directly: one datagram of newline-separated
 * assignments to the AF_UNIX socket named by $NOTIFY_SOCKET.  systemd
 * documents the protocol as stable and suggests implementing it rather
 * than linking libsystemd, which would map half a dozen more libraries
 * (and their pages) into each daemon for these few lines.
 */
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/un.h>

#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "svcnotify.h"

#define WHY_LEN		256

/*
 * Format a STATUS= value on one line: the protocol separates assignments
 * with newlines, so one inside a value would end it early.
 */
static void
format_status(char *dst, size_t len, const char *fmt, va_list ap)
{
	char *p;

	(void)vsnprintf(dst, len, fmt, ap);
	for (p = dst; *p != '\0'; p++)
		if (*p == '\n' || *p == '\r')
			*p = ' ';
}

/*
 * The manager's socket from $NOTIFY_SOCKET: a file system path, or a
 * name in the abstract namespace written with a leading '@' (the
 * environment cannot carry the NUL that starts it).  0 with *sun and
 * *len set, 1 when there is no manager, -1 with why when the variable
 * cannot be used.
 */
static int
notify_addr(struct sockaddr_un *sun, socklen_t *len, char *why,
    size_t whylen)
{
	const char	*e;
	size_t		 n;

	if ((e = getenv("NOTIFY_SOCKET")) == NULL || *e == '\0')
		return 1;
	n = strlen(e);
	memset(sun, 0, sizeof(*sun));
	sun->sun_family = AF_UNIX;
	if (e[0] == '@') {
		/* The name is the bytes after the NUL, with none to end
		 * it: the address length says where it stops. */
		if (n > sizeof(sun->sun_path)) {
			snprintf(why, whylen, "$NOTIFY_SOCKET is an abstract "
			    "name of %zu bytes, more than the %zu a socket "
			    "address holds", n - 1, sizeof(sun->sun_path) - 1);
			return -1;
		}
		memcpy(sun->sun_path + 1, e + 1, n - 1);
		*len = offsetof(struct sockaddr_un, sun_path) + n;
		return 0;
	}
	if (e[0] != '/') {
		/* Not ours to resolve against our own working directory;
		 * other address families (vsock:) are not spoken here. */
		snprintf(why, whylen, "$NOTIFY_SOCKET is neither an absolute "
		    "path nor an abstract name (@...)");
		return -1;
	}
	if (n >= sizeof(sun->sun_path)) {
		snprintf(why, whylen, "$NOTIFY_SOCKET is a path of %zu bytes, "
		    "more than the %zu a socket address holds", n,
		    sizeof(sun->sun_path) - 1);
		return -1;
	}
	memcpy(sun->sun_path, e, n);
	*len = offsetof(struct sockaddr_un, sun_path) + n + 1;
	return 0;
}

/*
 * Send msg in one datagram, as sd_notify(3) does, from a new socket each
 * time: messages are rare, and no descriptor is left to keep across
 * reloads or to leak into a process we start.  MSG_NOSIGNAL because a
 * manager that went away must not end us with SIGPIPE.  0, or -1 with
 * why.
 */
static int
notify_send(const char *msg, char *why, size_t whylen)
{
	struct sockaddr_un	 sun;
	socklen_t		 len;
	ssize_t			 w;
	size_t			 n = strlen(msg);
	int			 fd, r;

	if ((r = notify_addr(&sun, &len, why, whylen)) != 0)
		return r > 0 ? 0 : -1;
	if ((fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0)) == -1) {
		snprintf(why, whylen, "socket: %s", strerror(errno));
		return -1;
	}
	do
		w = sendto(fd, msg, n, MSG_NOSIGNAL, (struct sockaddr *)&sun,
		    len);
	while (w == -1 && errno == EINTR);
	/* An abstract name may fill sun_path with no NUL after it. */
	if (w == -1)
		snprintf(why, whylen, "send to %s%.*s: %s",
		    sun.sun_path[0] == '\0' ? "@" : "",
		    (int)sizeof(sun.sun_path) - 1,
		    sun.sun_path[0] == '\0' ? sun.sun_path + 1 : sun.sun_path,
		    strerror(errno));
	else if ((size_t)w != n) {
		/* A datagram goes whole or not at all; be sure of it. */
		snprintf(why, whylen, "short send (%zd of %zu bytes)", w, n);
		w = -1;
	}
	(void)close(fd);
	return w == -1 ? -1 : 0;
}

static void
send_state(const char *state)
{
	static struct log_ratelimit	rl = LOG_RATELIMIT_DEFAULT;
	char				why[WHY_LEN];

	/* Failure to notify is not fatal: the manager sees the daemon as
	 * not ready, or restarts it when the watchdog starves, and says so. */
	if (notify_send(state, why, sizeof(why)) != 0)
		log_debug_rl(&rl, "service manager notification: %s", why);
}

/*
 * A decimal number, digits only, that fits: strtoull alone would take
 * leading blanks, a sign and an empty string.
 */
static int
parse_u64(const char *s, uint64_t *out)
{
	unsigned long long	 v;
	char			*end;

	if (*s < '0' || *s > '9')
		return -1;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0 || *end != '\0')
		return -1;
	*out = v;
	return 0;
}

/*
 * The watchdog interval the manager asked of us, in microseconds: 0 for
 * none, -1 after a warning when the settings are malformed.  Only when
 * $WATCHDOG_PID, if set, is our pid: a process we start inherits both
 * variables, and must not feed the watchdog in our stead.
 */
static int
watchdog_usec(uint64_t *usec)
{
	const char	*u, *p;
	uint64_t	 pid;

	*usec = 0;
	if ((u = getenv("WATCHDOG_USEC")) == NULL)
		return 0;
	if (parse_u64(u, usec) != 0 || *usec == 0) {
		*usec = 0;
		log_warn("watchdog settings from the service manager are "
		    "malformed: WATCHDOG_USEC=\"%.32s\" is not a positive "
		    "number", u);
		return -1;
	}
	if ((p = getenv("WATCHDOG_PID")) == NULL)
		return 0;
	if (parse_u64(p, &pid) != 0 || pid == 0) {
		*usec = 0;
		log_warn("watchdog settings from the service manager are "
		    "malformed: WATCHDOG_PID=\"%.32s\" is not a process id",
		    p);
		return -1;
	}
	if (pid != (uint64_t)getpid())
		*usec = 0;
	return 0;
}

static void
watchdog_cb(uv_timer_t *t)
{
	send_state("WATCHDOG=1");
}

static void
watchdog_closed_cb(uv_handle_t *h)
{
}

void
svcnotify_start(struct svcnotify *sn, uv_loop_t *loop)
{
	uint64_t	usec = 0;
	int		r;

	if (sn->started || sn->stopped)
		return;
	if (watchdog_usec(&usec) != 0 || usec == 0)
		return;
	sn->interval_ms = usec / 2000;
	if (sn->interval_ms == 0)
		sn->interval_ms = 1;
	if ((r = uv_timer_init(loop, &sn->watchdog)) != 0) {
		log_warn("watchdog timer: %s", uv_strerror(r));
		return;
	}
	sn->started = 1;
	sn->watchdog.data = sn;
	(void)uv_timer_start(&sn->watchdog, watchdog_cb, 0, sn->interval_ms);
	log_debug("feeding the service manager's watchdog every %llu ms",
	    (unsigned long long)sn->interval_ms);
}

/* Keep status as the last one sent, and send it after state ("READY=1\n",
 * "STOPPING=1\n" or nothing). */
static void
send_status(struct svcnotify *sn, const char *state, const char *status)
{
	char	msg[SVCNOTIFY_MAX_STATUS + 32];

	snprintf(sn->status, sizeof(sn->status), "%s", status);
	snprintf(msg, sizeof(msg), "%sSTATUS=%s", state, sn->status);
	send_state(msg);
}

/* The same with a status to format; if changed_only, a status equal to
 * the last one sent is not sent again. */
static void
vsend_status(struct svcnotify *sn, const char *state, int changed_only,
    const char *fmt, va_list ap)
{
	char	status[SVCNOTIFY_MAX_STATUS];

	format_status(status, sizeof(status), fmt, ap);
	if (!changed_only || strcmp(status, sn->status) != 0)
		send_status(sn, state, status);
}

void
svcnotify_ready(struct svcnotify *sn, const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	vsend_status(sn, "READY=1\n", 0, fmt, ap);
	va_end(ap);
}

void
svcnotify_status(struct svcnotify *sn, const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	vsend_status(sn, "", 1, fmt, ap);
	va_end(ap);
}

void
svcnotify_stopping(struct svcnotify *sn, const char *why)
{
	if (sn->stopped)
		return;
	sn->stopped = 1;
	send_status(sn, "STOPPING=1\n", why);
	if (sn->started) {
		(void)uv_timer_stop(&sn->watchdog);
		uv_close((uv_handle_t *)&sn->watchdog, watchdog_closed_cb);
	}
}
