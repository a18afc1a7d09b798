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
#include "rpc.h"
#include "spiffeid.h"

#define SERVER_TICK_MS		10000
#define SERVER_GRACE_MS		5000
#define SERVER_BUNDLE_KEEP	(24 * 3600)	/* expired authorities kept */
#define SERVER_SYNC_PAGE	500		/* default SyncAuthorized page */
#define SERVER_SYNC_PAGE_MAX	5000
#define SERVER_MAX_CSRS		500		/* per BatchNewX509SVID */
#define SERVER_MAX_AUDIENCES	32
#define SERVER_AGENT_CONNS	16		/* per agent SPIFFE ID */
#define SERVER_TOKEN_TTL_MAX	(365 * 86400)

struct entry_cache;

struct tpmv_config;

struct server {
	uv_loop_t		*loop;
	struct rpc_budget	 rpc_budget;	/* admin and agent APIs */
	struct tpmv_config	*tpm;		/* NodeAttestor "tpm" */
	struct server_config	*cfg;
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
	uv_signal_t		 sigint;
	uv_signal_t		 sigterm;
	int			 stopping;
	int			 pending_close;
	int			 exit_code;
};

/* Wall clock, unix seconds: the one place time is read. */
int64_t	 server_now(void);

/* Run the daemon until SIGINT/SIGTERM; returns the exit status. */
int	 server_run(struct server_config *);

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

/* Re-read the bundle from the authorities and store it when changed. */
int	 server_bundle_refresh(struct server *, int64_t now) WICK_WUR;

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

#endif /* WICK_SERVER_H */
