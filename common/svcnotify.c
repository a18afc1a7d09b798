/*
 * svcnotify.c: sd_notify(3) for both daemons (svcnotify.h).
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <systemd/sd-daemon.h>

#include "log.h"
#include "svcnotify.h"

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

static void
send_state(const char *state)
{
	static struct log_ratelimit	rl = LOG_RATELIMIT_DEFAULT;
	int				r;

	/* Failure to notify is not fatal: the manager sees the daemon as
	 * not ready, or restarts it when the watchdog starves, and says so. */
	if ((r = sd_notify(0, state)) < 0)
		log_debug_rl(&rl, "sd_notify: %s", strerror(-r));
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
	/* > 0 only when $WATCHDOG_USEC is set and $WATCHDOG_PID, if set,
	 * is our pid: a process we start inherits both, and must not feed
	 * the watchdog in our stead. */
	if ((r = sd_watchdog_enabled(0, &usec)) <= 0 || usec == 0) {
		if (r < 0)
			log_warn("watchdog settings from the service manager "
			    "are malformed: %s", strerror(-r));
		return;
	}
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
