/*
 * server.h: the wick-server daemon's state, shared by its services.
 *
 * One libuv loop.  server.c owns startup, the 10 s tick (CA rotation,
 * bundle upkeep, server SVID renewal, pruning) and shutdown; admin_api.c
 * and agent_api.c are the two gRPC services; entry_cache.c answers
 * "which entries may this agent serve".
 */
#ifndef WICK_SERVER_H
#define WICK_SERVER_H

#include <pthread.h>
#include <stdint.h>

#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include <uv.h>

#include "bundle.h"
#include "ca_manager.h"
#include "config.h"
#include "ds.h"
#include "keymgr.h"
#include "log.h"
#include "par.h"
#include "rpc.h"
#include "spiffeid.h"
#include "svcnotify.h"
#include "worker.h"

#define SERVER_TICK_MS		10000
#define SERVER_GRACE_MS		5000
/* A drain that outlasts this (work stuck in the thread pool) is cut:
 * the process exits 1. */
#define SERVER_DRAIN_MAX_MS	(SERVER_GRACE_MS + 5000)
#define SERVER_BUNDLE_KEEP	(24 * 3600)	/* expired authorities kept */
#define SERVER_SYNC_PAGE	500		/* default SyncAuthorized page */
#define SERVER_SYNC_PAGE_MAX	5000
#define SERVER_MAX_CSRS		500		/* per BatchNewX509SVID */
#define SERVER_MAX_AUDIENCES	32
#define SERVER_AGENT_CONNS	16		/* per agent SPIFFE ID */
#define SERVER_TOKEN_TTL_MAX	(365 * 86400)

struct entry_cache;

/*
 * What the state thread last found answering an agent's sync, for the
 * syncs the loop answers itself (agent_api.c): the revision and bundle
 * sequence, a generation that moves whenever either does or the view is
 * dropped, the state thread's task count and the time before it read.
 */
struct sync_view {
	int		 valid;
	int64_t		 revision;
	uint64_t	 bundle_seq;
	uint64_t	 gen;
	uint64_t	 epoch;		/* worker_epoch() */
	uint64_t	 read_ns;	/* uv_hrtime() */
};

struct tpmv_config;
struct metrics;
struct srv_metrics;
struct telemetry;

struct server {
	uv_loop_t		*loop;
	struct rpc_budget	 rpc_budget;	/* admin and agent APIs */
	struct tpmv_config	*tpm;		/* NodeAttestor "tpm" */
	struct server_config	*cfg;
	const struct server_flags *flags;	/* to read cfg again */
	char			 td_id[SPIFFEID_MAX_TD_LEN + 16];
	char			 server_id[SPIFFEID_MAX_TD_LEN + 32];
	struct ds		*ds;
	struct keymgr		*km;
	struct ca_manager	*cam;
	STACK_OF(X509)		*upstream_roots;
	X509			*upstream_cert;
	EVP_PKEY		*upstream_key;
	STACK_OF(X509)		*upstream_chain;
	struct bundle		*bundle;	/* own trust domain, current */
	struct entry_cache	*cache;
	struct rpc_server	*admin;
	struct rpc_server	*agent;
	struct tls_ctx		*tls;
	int			 agent_port;	/* bound port */
	X509			*svid;		/* spiffe://<td>/spire/server */
	int64_t			 svid_renew_at;
	uv_timer_t		 tick;
	struct svcnotify	 notify;	/* the service manager */
	uv_signal_t		 sigint;
	uv_signal_t		 sigterm;
	uv_signal_t		 sighup;
	uv_timer_t		 drain_limit;	/* from the first SIGTERM */
	struct metrics		*metrics;	/* srv_metrics.c */
	struct srv_metrics	*m;
	struct telemetry	*telemetry;	/* /live /ready /metrics */
	int			 stopping;
	int			 pending_close;
	int			 exit_code;
	/* The state thread (worker.h) and its periodic tasks; the threads
	 * that sign batches beside it (par.h). */
	struct worker		*worker;
	struct par		*par;
	/* What each par slot reuses from CSR to CSR (agent_api.c), made
	 * by the slot's thread when it first needs it. */
	struct csr_verifier	*csr_ver[PAR_MAX_THREADS + 1];
	struct worker_task	 tick_task;
	int			 tick_busy;
	int			 rpc_open;	/* APIs not yet shut down */
	struct worker_task	 reload_task;
	int			 reload_busy;
	/* Audit records left for the state thread's next group commit
	 * (server_audit_later()); only that thread touches them. */
	struct audit_later	*audit_later;
	struct audit_later	**audit_later_tail;
	size_t			 naudit_later;
	uint64_t		 audit_later_total;	/* ever left */
	/* What the loop reads of the state (/ready, STATUS=), written by
	 * the state thread (srv_metrics_publish()). */
	pthread_mutex_t		 pub_mu;
	struct {
		int		 ds_ok;
		char		 ds_why[160];
		int64_t		 ca_not_after;
		size_t		 entries;
		struct sync_view sync;
	}			 pub;
};

/* Wall clock, unix seconds: the one place time is read. */
int64_t	 server_now(void);

/*
 * Run the daemon until SIGINT/SIGTERM; returns the exit status.  On the
 * signal: GOAWAY on every connection, watches end at once, other calls
 * have SERVER_GRACE_MS (rpc.h), the datastore closes, the admin socket
 * goes; a second signal closes every connection at once.  SIGHUP:
 * server_reload().  flags are those cfg was loaded with.
 */
int	 server_run(const struct server_flags *, struct server_config *);
/* SIGHUP: open the log file again, read the configuration file again and
 * apply what can change while running (reload.c). */
void	 server_reload(struct server *);

/*
 * Record an audit event in the datastore and the log.  detail (may be
 * NULL) is consumed.  Never pass secrets: tokens appear as their hash,
 * and so do join tokens inside agent IDs in detail (svc_redact()).
 */
void	 server_audit(struct server *, const char *kind, const char *actor,
	    int ok, json_t *detail);
/* The same, with the log line (not the record) limited by rl: for
 * events a peer can repeat at will, such as failed attestations. */
void	 server_audit_rl(struct server *, struct log_ratelimit *,
	    const char *kind, const char *actor, int ok, json_t *detail);
/*
 * The same for an event that changes nothing else (a token minted): on
 * the state thread the record waits for the thread's next group commit
 * (worker_set_flush(); the call's answer waits with it), so a burst of
 * them costs one transaction and one sync to disk instead of one each;
 * elsewhere, as server_audit().  kind must be a string constant.
 */
void	 server_audit_later(struct server *, const char *kind,
	    const char *actor, int ok, json_t *detail);
/* The state thread's group commit: every record left, in one transaction
 * (also done first by server_tx_begin() and server_audit(), so the trail
 * keeps the order of events); and how many were ever left. */
void	 server_audit_flush(void *srv);
uint64_t server_audit_added(void *srv);

/*
 * A change and its audit record in one datastore transaction
 * (ds_tx_begin()): tx = server_tx_begin(srv); the writes; server_audit();
 * r = server_tx_end(srv, tx).  Without one (the store could not be
 * locked) each write commits alone.  server_tx_end() returns the error of
 * a commit that failed: then none of it was written.  Nothing between
 * the two may wait.
 */
int	 server_tx_begin(struct server *);
int	 server_tx_end(struct server *, int tx) WICK_WUR;
/* Roll back what server_tx_begin() opened (tx 0: nothing to do). */
void	 server_tx_abort(struct server *, int tx);

/* Merge this server's authorities into the stored bundle (shared with
 * the other servers on the datastore) and cache what is stored. */
int	 server_bundle_refresh(struct server *, int64_t now) WICK_WUR;

/*
 * The merge alone: in one locked transaction, the stored bundle of
 * trust_domain plus cam's authorities (upstream_roots for the X.509 CA
 * when not NULL), expired ones pruned, stored when that changed it
 * (*stored 1).  *out gets the bundle as now stored.
 */
int	 server_bundle_merge(struct ds *, const char *trust_domain,
	    struct ca_manager *, struct keymgr *,
	    STACK_OF(X509) *upstream_roots, int64_t now, struct bundle **out,
	    int *stored) WICK_WUR;

/*
 * Sign an X.509-SVID for pub.  *chain gets leaf first then the chain
 * that follows it.  ttl 0 means the default X.509-SVID TTL.  With
 * encode_only the leaf may only be encoded (see ca.h).
 */
int	 server_sign_x509(struct server *, EVP_PKEY *pub, const char *spiffe_id,
	    const char *const *dns, size_t ndns, int64_t ttl, int64_t now,
	    int encode_only, STACK_OF(X509) **chain) WICK_WUR;

/* The services' method tables. */
int	 admin_api_methods(struct server *, const struct rpc_method **,
	    size_t *);
int	 agent_api_methods(struct server *, const struct rpc_method **,
	    size_t *);
/* rpc_server_opts.on_loop of the agent API: idle syncs (agent_api.c). */
int	 agent_api_on_loop(void *, const struct rpc_method *,
	    struct rpc_call *, const uint8_t *, size_t);

#endif /* WICK_SERVER_H */
