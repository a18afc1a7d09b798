/*
 * agent_metrics.c: wick-agent's metrics and readiness; see
 * agent_metrics.h.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent.h"
#include "agent_metrics.h"
#include "telemetry.h"
#include "x509.h"
#include "xmalloc.h"

static const char *const results[] = { "ok", "failed" };
static const char *const cache_results[] = { "hit", "miss" };

struct agent_metrics {
	struct metric	*svids;		/* {type} */
	struct metric	*rotations;	/* {type} */
	struct metric	*attest;	/* {type,result} */
	struct metric	*wl_attest;	/* {result} */
	struct metric	*syncs;		/* {result} */
	struct telemetry_rpc wl;	/* Workload API calls */
	struct metric	*conns;
	struct metric	*streams;
	struct metric	*entries;
	struct metric	*svid_expiry;
	struct metric	*wl_expiry;
	struct metric	*sync_lag;
	struct metric	*jwt_cache;	/* {result} */
	uint64_t	 jwt_counted[2];	/* ... up to the last scrape */
	int64_t		 started;	/* unix s */
	int64_t		 synced_at;	/* last sync that succeeded */
};

/* At each scrape. */
static void
collect(void *arg)
{
	struct agent		*a = arg;
	struct agent_metrics	*m = a->m;
	struct rpc_server_stats	 st;
	struct cache_entry	*e;
	int64_t			 now = agent_now(), min = 0;
	uint64_t		 hits, misses;
	size_t			 i;

	if (a->wl != NULL) {
		workload_stats(a->wl, &st);
		metric_set(m->conns, 0, (double)st.connections_active);
		metric_set(m->streams, 0, (double)st.calls_active);
		/* The workload counts (from zero again if it is started
		 * anew); a counter only goes up by steps. */
		workload_jwt_stats(a->wl, &hits, &misses);
		if (hits < m->jwt_counted[0] || misses < m->jwt_counted[1])
			m->jwt_counted[0] = m->jwt_counted[1] = 0;
		metric_add(m->jwt_cache, 0, (double)(hits - m->jwt_counted[0]));
		metric_add(m->jwt_cache, 1, (double)(misses -
		    m->jwt_counted[1]));
		m->jwt_counted[0] = hits;
		m->jwt_counted[1] = misses;
	}
	metric_set(m->entries, 0, (double)cache_count(a->cache));
	if (a->svid != NULL && sk_X509_num(a->svid) > 0)
		metric_set(m->svid_expiry, 0,
		    (double)x509_not_after(sk_X509_value(a->svid, 0)));
	for (i = 0; i < cache_count(a->cache); i++) {
		e = cache_entry_at(a->cache, i);
		if (e->chain_der != NULL && (min == 0 || e->not_after < min))
			min = e->not_after;
	}
	metric_set(m->wl_expiry, 0, (double)min);
	/* Before the first sync: how long the agent has waited for it. */
	metric_set(m->sync_lag, 0, (double)(now - (m->synced_at != 0 ?
	    m->synced_at : m->started)));
}

int
agent_metrics_init(struct agent *a)
{
	struct agent_metrics	*m;
	struct metrics		*reg;
	const struct rpc_method	*tab;
	size_t			 ntab;
	struct metric_label	 l_type = { "type",
	    telemetry_svid_types, TELEMETRY_NSVID_TYPES };
	struct metric_label	 l_attest[2] = {
		{ "type", telemetry_attest_types, TELEMETRY_NATTEST_TYPES },
		{ "result", results, 2 },
	};
	struct metric_label	 l_result = { "result", results, 2 };
	struct metric_label	 l_cache = { "result", cache_results, 2 };
	int			 r;

	m = xcalloc(1, sizeof(*m));
	reg = metrics_new();
	a->m = m;
	a->metrics = reg;
	m->started = agent_now();
	workload_methods(&tab, &ntab);
	if ((r = metrics_add(reg, METRIC_COUNTER,
	    "wick_agent_svids_issued_total", "SVIDs the server issued to this "
	    "agent, by type (agent: its own X.509-SVID).", &l_type, 1, NULL, 0,
	    &m->svids)) != 0 ||
	    (r = metrics_add(reg, METRIC_COUNTER,
	    "wick_agent_svid_rotations_total", "SVIDs replaced by a new one "
	    "before they expired, by type.", &l_type, 1, NULL, 0,
	    &m->rotations)) != 0 ||
	    (r = metrics_add(reg, METRIC_COUNTER,
	    "wick_agent_node_attestations_total", "Node attestations of this "
	    "agent, by attestor and result.", l_attest, 2, NULL, 0,
	    &m->attest)) != 0 ||
	    (r = metrics_add(reg, METRIC_COUNTER,
	    "wick_agent_workload_attestations_total", "Workload attestations "
	    "of Workload API callers, by result.", &l_result, 1, NULL, 0,
	    &m->wl_attest)) != 0 ||
	    (r = metrics_add(reg, METRIC_COUNTER, "wick_agent_syncs_total",
	    "Syncs of entries and bundles with the server, by result.",
	    &l_result, 1, NULL, 0, &m->syncs)) != 0 ||
	    (r = telemetry_rpc_add(reg, &m->wl, tab, ntab,
	    "wick_agent_workload_api_calls_total", "Workload API calls "
	    "ended, by method and gRPC status.",
	    "wick_agent_workload_api_call_duration_seconds", "Workload API "
	    "calls from their headers to their end (streams: their life), by "
	    "method.")) != 0 ||
	    (r = metrics_add(reg, METRIC_GAUGE,
	    "wick_agent_workload_api_connections", "Workload API connections "
	    "open.", NULL, 0, NULL, 0, &m->conns)) != 0 ||
	    (r = metrics_add(reg, METRIC_GAUGE,
	    "wick_agent_workload_api_streams", "Workload API calls in "
	    "progress (open streams).", NULL, 0, NULL, 0, &m->streams)) != 0 ||
	    (r = metrics_add(reg, METRIC_GAUGE, "wick_agent_entries",
	    "Registration entries authorized to this agent.", NULL, 0, NULL,
	    0, &m->entries)) != 0 ||
	    (r = metrics_add(reg, METRIC_GAUGE,
	    "wick_agent_svid_expiry_timestamp_seconds", "When the agent's own "
	    "X.509-SVID expires, unix time.", NULL, 0, NULL, 0,
	    &m->svid_expiry)) != 0 ||
	    (r = metrics_add(reg, METRIC_GAUGE,
	    "wick_agent_workload_svid_expiry_min_timestamp_seconds", "When "
	    "the first of the workloads' X.509-SVIDs expires, unix time (0: "
	    "none held).", NULL, 0, NULL, 0, &m->wl_expiry)) != 0 ||
	    (r = metrics_add(reg, METRIC_GAUGE, "wick_agent_sync_lag_seconds",
	    "Seconds since the last successful sync with the server (since "
	    "start before the first).", NULL, 0, NULL, 0, &m->sync_lag)) != 0 ||
	    (r = metrics_add(reg, METRIC_COUNTER,
	    "wick_agent_jwt_validation_cache_total", "ValidateJWTSVID tokens "
	    "looked for among those whose signature verified before: hit "
	    "(not verified again), miss (verified).", &l_cache, 1, NULL, 0,
	    &m->jwt_cache)) != 0 ||
	    (r = metrics_on_collect(reg, collect, a)) != 0)
		return r;
	return 0;
}

void
agent_metrics_free(struct agent *a)
{
	metrics_free(a->metrics);
	free(a->m);
	a->metrics = NULL;
	a->m = NULL;
}

void
agent_metrics_svids(struct agent *a, enum telemetry_svid_type t,
    size_t n, size_t rotated)
{
	if (a->m == NULL)
		return;
	metric_add(a->m->svids, metric_series(a->m->svids, t, 0), (double)n);
	metric_add(a->m->rotations, metric_series(a->m->rotations, t, 0),
	    (double)rotated);
}

void
agent_metrics_attest(struct agent *a, const char *type, int ok)
{
	if (a->m != NULL)
		metric_inc(a->m->attest, metric_series(a->m->attest,
		    telemetry_attest_type(type), ok ? 0 : 1));
}

void
agent_metrics_workload_attest(struct agent *a, int ok)
{
	if (a->m != NULL)
		metric_inc(a->m->wl_attest, ok ? 0 : 1);
}

void
agent_metrics_sync(struct agent *a, int ok)
{
	if (a->m == NULL)
		return;
	metric_inc(a->m->syncs, ok ? 0 : 1);
	if (ok)
		a->m->synced_at = agent_now();
}

void
agent_metrics_wl_call(void *arg, size_t method, int status, uint64_t ns)
{
	struct agent_metrics *m = ((struct agent *)arg)->m;

	if (m != NULL)
		telemetry_rpc_observe(&m->wl, method, status, ns);
}

int
agent_ready(void *arg, char *why, size_t whylen)
{
	struct agent *a = arg;

	if (a->stopping) {
		snprintf(why, whylen, "shutting down");
		return 0;
	}
	if (a->svid == NULL || a->attesting) {
		snprintf(why, whylen, "not attested yet");
		return 0;
	}
	if (!a->synced || a->wl == NULL) {
		snprintf(why, whylen, "not synced with the server yet");
		return 0;
	}
	return 1;
}
