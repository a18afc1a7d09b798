/*
 * agent_metrics.h: what wick-agent counts for /metrics (common/metrics.h)
 * and how it answers /ready (common/telemetry.h).
 *
 * Families are registered once at start; the helpers below update them
 * by index (a few stores, no allocation).  Gauges cheaper to read when
 * scraped (entries, streams, expiry times, sync lag) are set by a
 * collect callback.
 */
#ifndef WICK_AGENT_METRICS_H
#define WICK_AGENT_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "metrics.h"
#include "telemetry.h"

struct agent;

/* Register every family in a->metrics (made here). */
int	 agent_metrics_init(struct agent *) WICK_WUR;
void	 agent_metrics_free(struct agent *);

/* n SVIDs received from the server, of which rotated replaced one. */
void	 agent_metrics_svids(struct agent *, enum telemetry_svid_type,
	    size_t n, size_t rotated);
/* type: "join_token" or "tpm" (anything else counts as "unknown"). */
void	 agent_metrics_attest(struct agent *, const char *type, int ok);
void	 agent_metrics_workload_attest(struct agent *, int ok);
void	 agent_metrics_sync(struct agent *, int ok);
/* rpc_server_opts.observe for the Workload API. */
void	 agent_metrics_wl_call(void *agent, size_t method, int status,
	    uint64_t ns);

/* telemetry_ready_fn: attested, synced, the Workload API listening. */
int	 agent_ready(void *agent, char *why, size_t whylen);

#endif /* WICK_AGENT_METRICS_H */
