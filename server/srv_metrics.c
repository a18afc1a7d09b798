/*
 * srv_metrics.c: wick-server's metrics and readiness; see srv_metrics.h.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ca_manager.h"
#include "entry_cache.h"
#include "server.h"
#include "srv_metrics.h"
#include "telemetry.h"
#include "worker.h"
#include "x509.h"
#include "xmalloc.h"

#define AGENTS_EVERY	10	/* seconds between counts of the agents */

static const char *const results[] = { "ok", "failed" };

struct srv_metrics {
	struct metric	*svids;		/* {type} */
	struct metric	*attest;	/* {type,result} */
	struct metric	*ca_rotations;
	struct metric	*syncs_on_loop;
	struct telemetry_rpc api;	/* agent API calls */
	struct metric	*conns;
	struct metric	*streams;
	struct metric	*entries;
	struct metric	*agents;
	struct metric	*ca_expiry;
	struct metric	*svid_expiry;
	struct metric	*ds_seconds;
	struct metric	*queue_wait;
	struct metric	*queued;
	int64_t		 agents_at;	/* when last counted */
	int		 agents_dirty;	/* count again at the next step */
};

static void
ds_timed(void *arg, uint64_t ns)
{
	struct srv_metrics *m = arg;

	metric_observe(m->ds_seconds, 0, (double)ns / 1e9);
}

/* At each scrape, on the loop: what the loop itself knows.  What the
 * state thread knows it sets itself (srv_metrics_publish()). */
static void
collect(void *arg)
{
	struct server			*srv = arg;
	struct srv_metrics		*m = srv->m;
	struct rpc_server_stats		 st;

	if (srv->agent != NULL) {
		rpc_server_get_stats(srv->agent, &st);
		metric_set(m->conns, 0, (double)st.connections_active);
		metric_set(m->streams, 0, (double)st.calls_active);
	}
	if (srv->worker != NULL) {
		metric_set(m->queue_wait, 0,
		    (double)worker_take_max_wait(srv->worker) / 1e9);
		metric_set(m->queued, 0, (double)worker_queued(srv->worker));
	}
}

/*
 * On the state thread (or before it starts): the gauges read from the
 * state, and what /ready and the service manager's STATUS= line show.
 */
void
srv_metrics_publish(struct server *srv, int probe)
{
	struct srv_metrics		*m = srv->m;
	const struct ca_authority	*ca;
	int64_t				 now = server_now(), n, rev;
	size_t				 entries;
	int				 r = 0;

	/* The datastore is asked at ticks only; a step publishes what is
	 * in memory. */
	if (probe)
		r = ds_revision(srv->ds, &rev);
	ca = ca_manager_active(srv->cam, CA_KIND_X509);
	entries = entry_cache_count(srv->cache);
	pthread_mutex_lock(&srv->pub_mu);
	if (probe) {
		srv->pub.ds_ok = r == 0;
		if (r != 0)
			snprintf(srv->pub.ds_why, sizeof(srv->pub.ds_why),
			    "the datastore does not answer: %s",
			    wick_strerror(r));
	}
	srv->pub.ca_not_after = ca != NULL ? ca->not_after : 0;
	srv->pub.entries = entries;
	pthread_mutex_unlock(&srv->pub_mu);
	if (m == NULL)
		return;
	metric_set(m->entries, 0, (double)entries);
	/* A query, so at most every AGENTS_EVERY, or after a change. */
	if ((m->agents_dirty || (probe && now - m->agents_at >=
	    AGENTS_EVERY)) && ds_nodes_count(srv->ds, NULL, &n) == 0) {
		m->agents_dirty = 0;
		metric_set(m->agents, 0, (double)n);
		m->agents_at = now;
	}
	if (ca != NULL)
		metric_set(m->ca_expiry, 0, (double)ca->not_after);
	if (srv->svid != NULL)
		metric_set(m->svid_expiry, 0,
		    (double)x509_not_after(srv->svid));
}

int
srv_metrics_init(struct server *srv)
{
	struct srv_metrics	*m;
	struct metrics		*reg;
	const struct rpc_method	*tab;
	size_t			 ntab;
	struct metric_label	 l_type = { "type",
	    telemetry_svid_types, TELEMETRY_NSVID_TYPES };
	struct metric_label	 l_attest[2] = {
		{ "type", telemetry_attest_types, TELEMETRY_NATTEST_TYPES },
		{ "result", results, 2 },
	};
	int			 r;

	m = xcalloc(1, sizeof(*m));
	reg = metrics_new();
	srv->m = m;
	srv->metrics = reg;
	if ((r = agent_api_methods(srv, &tab, &ntab)) != 0)
		return r;
	if ((r = metrics_add(reg, METRIC_COUNTER,
	    "wick_server_svids_issued_total", "SVIDs signed, by type (agent: "
	    "an agent's own X.509-SVID).",
	    &l_type, 1, NULL, 0, &m->svids)) != 0 ||
	    (r = metrics_add(reg, METRIC_COUNTER,
	    "wick_server_node_attestations_total", "Node attestations, by "
	    "attestor and result.", l_attest, 2, NULL, 0, &m->attest)) != 0 ||
	    (r = metrics_add(reg, METRIC_COUNTER,
	    "wick_server_ca_rotations_total", "Times a new X.509 CA became "
	    "the active one.", NULL, 0, NULL, 0, &m->ca_rotations)) != 0 ||
	    (r = metrics_add(reg, METRIC_COUNTER,
	    "wick_server_agent_syncs_on_loop_total", "Agents' syncs answered "
	    "\"unchanged\" on the event loop, without the state thread.",
	    NULL, 0, NULL, 0, &m->syncs_on_loop)) != 0 ||
	    (r = telemetry_rpc_add(reg, &m->api, tab, ntab,
	    "wick_server_agent_api_calls_total", "Agent API calls ended, by "
	    "method and gRPC status.",
	    "wick_server_agent_api_call_duration_seconds", "Agent API calls "
	    "from their headers to their end, by method.")) != 0 ||
	    (r = metrics_add(reg, METRIC_GAUGE,
	    "wick_server_agent_api_connections", "Agent API connections open.",
	    NULL, 0, NULL, 0, &m->conns)) != 0 ||
	    (r = metrics_add(reg, METRIC_GAUGE,
	    "wick_server_agent_api_streams", "Agent API calls in progress.",
	    NULL, 0, NULL, 0, &m->streams)) != 0 ||
	    (r = metrics_add(reg, METRIC_GAUGE, "wick_server_entries",
	    "Registration entries held.", NULL, 0, NULL, 0,
	    &m->entries)) != 0 ||
	    (r = metrics_add(reg, METRIC_GAUGE, "wick_server_agents",
	    "Attested agents in the datastore (counted every 10 s at most).",
	    NULL, 0, NULL, 0, &m->agents)) != 0 ||
	    (r = metrics_add(reg, METRIC_GAUGE,
	    "wick_server_ca_expiry_timestamp_seconds", "When the active X.509 "
	    "CA expires, unix time.", NULL, 0, NULL, 0, &m->ca_expiry)) != 0 ||
	    (r = metrics_add(reg, METRIC_GAUGE,
	    "wick_server_svid_expiry_timestamp_seconds", "When the server's "
	    "own X.509-SVID expires, unix time.", NULL, 0, NULL, 0,
	    &m->svid_expiry)) != 0 ||
	    (r = metrics_add(reg, METRIC_HISTOGRAM,
	    "wick_server_datastore_call_duration_seconds", "Datastore calls, "
	    "run on the state thread.", NULL, 0, metrics_latency_buckets,
	    metrics_nlatency_buckets, &m->ds_seconds)) != 0 ||
	    (r = metrics_add(reg, METRIC_GAUGE,
	    "wick_server_state_queue_wait_max_seconds", "The longest a call "
	    "or task waited for the state thread since the last scrape.",
	    NULL, 0, NULL, 0, &m->queue_wait)) != 0 ||
	    (r = metrics_add(reg, METRIC_GAUGE, "wick_server_state_queue",
	    "Calls and tasks waiting for the state thread.", NULL, 0, NULL, 0,
	    &m->queued)) != 0 ||
	    (r = metrics_on_collect(reg, collect, srv)) != 0)
		return r;
	if (srv->ds != NULL)
		ds_set_timer(srv->ds, ds_timed, m);
	return 0;
}

void
srv_metrics_free(struct server *srv)
{
	metrics_free(srv->metrics);
	free(srv->m);
	srv->metrics = NULL;
	srv->m = NULL;
}

void
srv_metrics_sync_on_loop(struct server *srv)
{
	if (srv->m != NULL)
		metric_inc(srv->m->syncs_on_loop, 0);
}

void
srv_metrics_svids(struct server *srv, enum telemetry_svid_type t,
    size_t n)
{
	if (srv->m != NULL)
		metric_add(srv->m->svids, metric_series(srv->m->svids, t, 0),
		    (double)n);
}

void
srv_metrics_attest(struct server *srv, const char *type, int ok)
{
	if (srv->m == NULL)
		return;
	metric_inc(srv->m->attest, metric_series(srv->m->attest,
	    telemetry_attest_type(type), ok ? 0 : 1));
	if (ok)
		srv->m->agents_dirty = 1;
}

void
srv_metrics_ca_rotated(struct server *srv)
{
	if (srv->m != NULL)
		metric_inc(srv->m->ca_rotations, 0);
}

void
srv_metrics_api_call(void *arg, size_t method, int status, uint64_t ns)
{
	struct srv_metrics *m = ((struct server *)arg)->m;

	if (m != NULL)
		telemetry_rpc_observe(&m->api, method, status, ns);
}

int
srv_ready(void *arg, char *why, size_t whylen)
{
	struct server	*srv = arg;
	int		 ok = 1;

	/* As the state thread last saw it (every tick, SERVER_TICK_MS). */
	pthread_mutex_lock(&srv->pub_mu);
	if (!srv->pub.ds_ok) {
		snprintf(why, whylen, "%s", srv->pub.ds_why);
		ok = 0;
	} else if (srv->pub.ca_not_after <= server_now()) {
		snprintf(why, whylen, "no active X.509 CA");
		ok = 0;
	}
	pthread_mutex_unlock(&srv->pub_mu);
	return ok;
}
