/*
 * svcnotify.h: telling the service manager how a daemon is doing, with
 * systemd's notification protocol (the one sd_notify(3) speaks, written
 * here without libsystemd): READY=1 once the daemon serves, STATUS= lines
 * at the moments an operator wants to see in `systemctl status`,
 * WATCHDOG=1 from a timer on the event loop, and STOPPING=1 when shutdown
 * begins.
 *
 * The watchdog is fed by a libuv timer at half the interval the manager
 * asked for ($WATCHDOG_USEC, for our pid only: $WATCHDOG_PID): a loop that
 * is stuck in a callback stops feeding it, and the manager restarts the
 * daemon.  Without $NOTIFY_SOCKET every call here does nothing.
 *
 * Loop thread only.
 */
#ifndef WICK_SVCNOTIFY_H
#define WICK_SVCNOTIFY_H

#include <stdint.h>

#include <uv.h>

#define SVCNOTIFY_MAX_STATUS	256	/* bytes of one STATUS= line */

struct svcnotify {
	/* private */
	uv_timer_t	 watchdog;
	uint64_t	 interval_ms;	/* 0: no watchdog */
	int		 started;	/* the timer is initialized */
	int		 stopped;	/* svcnotify_stopping() was called */
	char		 status[SVCNOTIFY_MAX_STATUS];	/* last one sent */
};

/*
 * Start feeding the watchdog from a timer on loop if the manager wants
 * one; the first WATCHDOG=1 goes at once.  Does nothing after
 * svcnotify_stopping().  The struct must stay in place until the loop
 * has run the timer's close (svcnotify_stopping() closes it).
 */
void	 svcnotify_start(struct svcnotify *, uv_loop_t *);
/* READY=1 with a STATUS= line (printf format). */
void	 svcnotify_ready(struct svcnotify *, const char *fmt, ...)
	    __attribute__((format(printf, 2, 3)));
/* A STATUS= line (printf format); sent only when it differs from the
 * last one, so it may be called on every tick. */
void	 svcnotify_status(struct svcnotify *, const char *fmt, ...)
	    __attribute__((format(printf, 2, 3)));
/* STOPPING=1 with a STATUS= line, and the watchdog timer closed.  Safe
 * to call more than once, and before svcnotify_start(). */
void	 svcnotify_stopping(struct svcnotify *, const char *why);

#endif /* WICK_SVCNOTIFY_H */
