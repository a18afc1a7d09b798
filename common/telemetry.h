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
 * scrape), and the CPU time of its longest turn since the previous scrape
 * (<prefix>event_loop_turn_cpu_max_seconds: the loop's own work, where
 * the lag also counts waiting for a core).  Last, what both daemons' metrics share: the SVID and node
 * attestor label values, and the metrics of an RPC service's calls.
 */
#ifndef WICK_TELEMETRY_H
#define WICK_TELEMETRY_H

#include <stddef.h>

#include <jansson.h>
#include <uv.h>

#include "conf.h"
#include "err.h"
#include "metrics.h"
#include "rpc.h"

#define TELEMETRY_LAG_MS	500
#define TELEMETRY_MAX_PATH	256
#define TELEMETRY_MAX_METHODS	16	/* of one RPC service */

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

/* The SVIDs both daemons count, by type: the label values are
 * telemetry_svid_types[], in this order. */
enum telemetry_svid_type {
	TELEMETRY_SVID_X509 = 0,
	TELEMETRY_SVID_JWT,
	TELEMETRY_SVID_WIT,
	TELEMETRY_SVID_AGENT,		/* an agent's own X.509-SVID */
	TELEMETRY_NSVID_TYPES
};
extern const char *const telemetry_svid_types[TELEMETRY_NSVID_TYPES];

/* Node attestors as a label: "join_token", "tpm", then "unknown". */
#define TELEMETRY_NATTEST_TYPES	3
extern const char *const telemetry_attest_types[TELEMETRY_NATTEST_TYPES];
/* type's index in telemetry_attest_types, that of "unknown" for any other
 * (or NULL), so a peer's string never becomes a label value. */
size_t	 telemetry_attest_type(const char *type);

/*
 * The calls of one RPC service, as both daemons count them: a counter by
 * method and gRPC status and a latency histogram by method
 * (metrics_latency_buckets).  The method label's values are the last
 * component of each path in tab, then "unknown"; WICK_ERR_LIMIT past
 * TELEMETRY_MAX_METHODS methods.  The struct holds the label values, so
 * it must outlive reg.
 */
struct telemetry_rpc {
	struct metric	*calls;		/* {method,status} */
	struct metric	*seconds;	/* {method} */
	const char	*methods[TELEMETRY_MAX_METHODS + 1];
	const char	*statuses[RPC_UNAUTHENTICATED + 1];
};

int	 telemetry_rpc_add(struct metrics *reg, struct telemetry_rpc *,
	    const struct rpc_method *tab, size_t ntab, const char *calls_name,
	    const char *calls_help, const char *seconds_name,
	    const char *seconds_help) WICK_WUR;
/* One call ended (rpc_server_opts.observe). */
void	 telemetry_rpc_observe(struct telemetry_rpc *, size_t method,
	    int status, uint64_t ns);

#endif /* WICK_TELEMETRY_H */
