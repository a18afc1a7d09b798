/*
 * telemetry.h: a daemon's health and metrics endpoints, configured with
 * SPIRE's option names:
 *
 *	health_checks {
 *		listener_enabled = true
 *		bind_address = "127.0.0.1"	# default "localhost"
 *		bind_port = "8080"		# default "80", as SPIRE
 *		live_path = "/live"
 *		ready_path = "/ready"
 *	}
 *	telemetry {
 *		Prometheus {
 *			host = "127.0.0.1"	# default "localhost"
 *			port = 9988		# required
 *		}
 *	}
 *
 * Served by httpd.h on the daemon's loop: live_path answers 200 from the
 * loop itself (so it proves the loop turns), ready_path 200 or 503 as
 * the daemon's ready callback says, and the Prometheus listener
 * /metrics (and /) in the text format of metrics.h.  When both are on
 * the same address and port, one listener serves all three.  The module
 * also measures the loop's lag: a timer every TELEMETRY_LAG_MS notes how
 * late it fired (<prefix>event_loop_lag_seconds, a histogram, and
 * <prefix>event_loop_lag_max_seconds, the largest since the previous
 * scrape).
 */
#ifndef WICK_TELEMETRY_H
#define WICK_TELEMETRY_H

#include <stddef.h>

#include <jansson.h>
#include <uv.h>

#include "conf.h"
#include "err.h"
#include "metrics.h"

#define TELEMETRY_LAG_MS	500
#define TELEMETRY_MAX_PATH	256

struct telemetry_config {
	int	 health;		/* health_checks.listener_enabled */
	char	*health_address;
	int	 health_port;
	char	*live_path;
	char	*ready_path;
	int	 prometheus;		/* telemetry { Prometheus } */
	char	*prom_host;
	int	 prom_port;
};

/* Defaults: both off. */
void	 telemetry_config_init(struct telemetry_config *);
/*
 * Read health_checks and telemetry from a configuration's root object;
 * errors name the option and its line.  SPIRE's other telemetry sinks
 * (DogStatsd, Statsd, M3, InMem) and options warn as unimplemented.
 */
int	 telemetry_config_load(const struct conf *, const json_t *root,
	    struct telemetry_config *, struct conf_error *) WICK_WUR;
void	 telemetry_config_cleanup(struct telemetry_config *);
/* Which of the two blocks differ (a reload names them: they need a
 * restart). */
#define TELEMETRY_DIFF_HEALTH		0x1
#define TELEMETRY_DIFF_PROMETHEUS	0x2
unsigned telemetry_config_diff(const struct telemetry_config *,
	    const struct telemetry_config *);

/* Is the daemon ready?  1 if so; 0 and a reason in why if not. */
typedef int telemetry_ready_fn(void *arg, char *why, size_t whylen);

struct telemetry;

/*
 * Start the listeners the configuration enables (none: *out stays NULL
 * and 0 is returned) and the lag timer, registering the lag metrics in
 * reg under prefix ("wick_server_").  Call before the loop runs.
 */
int	 telemetry_start(uv_loop_t *, const struct telemetry_config *,
	    struct metrics *reg, const char *prefix, telemetry_ready_fn *,
	    void *arg, struct telemetry **out) WICK_WUR;
/* Close everything; the memory goes once the handles are closed. */
void	 telemetry_stop(struct telemetry *);

#endif /* WICK_TELEMETRY_H */
