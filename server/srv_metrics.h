/*
 * srv_metrics.h: what wick-server counts for /metrics (common/metrics.h)
 * and how it answers /ready (common/telemetry.h).
 *
 * The families are registered once at start; services update them by
 * index through the helpers below, which cost a few stores and never
 * allocate.  Gauges the loop knows (open connections, its lag) are set
 * by a collect callback at each scrape; those read from the state
 * (entries, agents, expiry times) by the state thread at each tick.
 */
#ifndef WICK_SRV_METRICS_H
#define WICK_SRV_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "metrics.h"
#include "telemetry.h"

struct server;

/* Register every family of the server in srv->metrics (made here). */
int	 srv_metrics_init(struct server *) WICK_WUR;
void	 srv_metrics_free(struct server *);

void	 srv_metrics_svids(struct server *, enum telemetry_svid_type,
	    size_t n);
/* type: the attestor's name ("join_token", "tpm"); any other is
 * counted as "unknown", so a peer's string never becomes a label. */
void	 srv_metrics_attest(struct server *, const char *type, int ok);
void	 srv_metrics_ca_rotated(struct server *);
/* An agent's sync answered on the loop (agent_api_on_loop()). */
void	 srv_metrics_sync_on_loop(struct server *);
/* rpc_server_opts.observe for the agent API. */
void	 srv_metrics_api_call(void *srv, size_t method, int status,
	    uint64_t ns);

/* State thread: the gauges read from the state, and what /ready and
 * STATUS= show (struct server's pub); probe: ask the datastore too
 * (ticks), else what is in memory (after each call's step). */
void	 srv_metrics_publish(struct server *, int probe);
/* telemetry_ready_fn: the datastore answers and an X.509 CA is active,
 * as the state thread last published. */
int	 srv_ready(void *srv, char *why, size_t whylen);

#endif /* WICK_SRV_METRICS_H */
