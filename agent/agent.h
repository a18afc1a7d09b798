/*
 * agent.h: the wick-agent daemon's state, shared by its parts.
 *
 * agent.c: start-up (attestation or the stored SVID), the sync loop with
 * the server (entries, bundles), X.509-SVID, WIT-SVID and JWT-SVID upkeep,
 * the agent's own SVID renewal.  workload.c: the SPIFFE Workload API on
 * the public Unix socket.  attestor_unix.c: workload attestation.
 */
#ifndef WICK_AGENT_H
#define WICK_AGENT_H

#include <stdint.h>

#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <uv.h>

#include "attestor.h"
#include "bundle.h"
#include "config.h"
#include "nodeclient.h"
#include "rpc.h"
#include "selector.h"
#include "spiffeid.h"
#include "svcnotify.h"
#include "types.pb-c.h"

#define AGENT_MAX_CSRS		500	/* per BatchNewX509SVID */
#define AGENT_MAX_FEDERATED	64
#define AGENT_MAX_BACKOFF_MS	(4 * 60 * 1000)
#define AGENT_CALL_TIMEOUT_MS	30000
#define AGENT_JWT_CACHE_MAX	1000
#define AGENT_SOCKET_DIR_MODE	0755	/* the Workload API socket's dir */
#define AGENT_WL_GRACE_MS	2000	/* Workload API calls at shutdown */
/* A drain that outlasts this is cut: the process exits 1. */
#define AGENT_DRAIN_MAX_MS	(AGENT_WL_GRACE_MS + 5000)

/* An authorized entry and what the agent holds for it. */
struct agent_entry {
	char			*id;
	char			*spiffe_id;
	char			*hint;
	struct selector_set	 selectors;
	char			**federates_with;
	size_t			 nfederates_with;
	int64_t			 revision;
	int64_t			 created_at;
	/* X.509-SVID, kept in the encodings the Workload API sends: the
	 * chain as concatenated DER (leaf first), the key as PKCS#8 DER
	 * (wiped when freed).  Parsed objects would cost several KiB each. */
	uint8_t			*chain_der;
	size_t			 chain_len;
	uint8_t			*key_der;
	size_t			 key_len;
	int64_t			 not_after;
	int64_t			 rotate_at;
	int			 x509_pending;
	/* WIT-SVID, fetched once a workload asked for it */
	char			*wit;
	char			*wit_key;	/* private JWK, JSON */
	int64_t			 wit_exp;
	int64_t			 wit_rotate_at;
	int			 wit_wanted;
	int			 wit_pending;
};

struct jwt_cached {
	struct jwt_cached	*next;
	char			*entry_id;
	char			*aud_key;	/* sorted audiences, \n-joined */
	char			*token;
	int64_t			 exp;
	int64_t			 rotate_at;
};

struct wl_stream;
struct docker;
struct agent_metrics;
struct metrics;
struct telemetry;

struct agent {
	uv_loop_t		*loop;
	struct agent_config	*cfg;
	const struct agent_flags *flags;	/* to read cfg again */
	char			 agent_id[SPIFFEID_MAX_LEN + 1];
	char			 td_id[SPIFFEID_MAX_TD_LEN + 16];
	struct nodeclient	*nc;
	/* own SVID */
	STACK_OF(X509)		*svid;
	EVP_PKEY		*svid_key;
	int64_t			 svid_renew_at;
	int			 renewing;
	int			 attesting;	/* attest.c runs */
	int			 reattestable;	/* the server says so */
	/* bundles */
	struct bundle		*bundle;
	struct buf		 bundle_der;	/* its X.509 authorities, DER */
	struct bundle		*fed[AGENT_MAX_FEDERATED];
	size_t			 nfed;
	/* entries, sorted by ID */
	struct agent_entry	**entries;
	size_t			 nentries;
	struct agent_entry	**by_first;	/* by first selector */
	size_t			 nby_first;
	int64_t			 revision;
	int			 synced;	/* first sync done */
	int			 need_full;	/* next sync from 0 */
	int			 sync_full;	/* this one is */
	/* sync in progress */
	int			 syncing;
	struct agent_entry	**pending;	/* this sync's entries */
	size_t			 npending;
	size_t			 cappending;
	char			**keep;		/* unchanged IDs */
	size_t			 nkeep;
	size_t			 capkeep;
	int64_t			 sync_rev;
	char			*page_token;
	int			 failures;
	uv_timer_t		 sync_timer;
	uv_timer_t		 stop_timer;
	struct svcnotify	 notify;	/* the service manager */
	/* Workload API */
	struct rpc_server	*wl;
	struct rpc_server	*wl_draining;	/* after workload_stop() */
	void			(*wl_drained)(struct agent *);
	struct rpc_budget	 wl_budget;
	struct wl_stream	*streams;
	struct jwt_cached	*jwts;
	size_t			 njwts;
	struct attestor		 attestors[4];
	size_t			 nattestors;
	struct attestor_unix_opts unix_opts;
	struct docker		*docker;	/* WorkloadAttestor "docker" */
	uv_signal_t		 sigint;
	uv_signal_t		 sigterm;
	uv_signal_t		 sighup;
	uv_timer_t		 drain_limit;	/* from agent_stop() */
	struct metrics		*metrics;	/* agent_metrics.c */
	struct agent_metrics	*m;
	struct telemetry	*telemetry;	/* /live /ready /metrics */
	int			 stopping;
	int			 exit_code;
};

int64_t	 agent_now(void);
/*
 * Run until SIGINT/SIGTERM (then workload_stop(); a second signal cuts
 * the drain short) or a fatal refusal by the server; returns the exit
 * status.  SIGHUP: agent_reload().  flags are those cfg was loaded with.
 */
int	 agent_run(const struct agent_flags *, struct agent_config *);
/*
 * Make or check the directory of the Workload API socket (secpath.h):
 * AGENT_SOCKET_DIR_MODE, open to every workload since identity comes from
 * attestation, not from file modes (the socket is 0777, as SPIRE's).
 * Logs what is wrong.
 */
int	 agent_socket_dir(const char *socket_path) WICK_WUR;
void	 agent_stop(struct agent *, int exit_code);

/*
 * The entries whose selectors are all among sel, in entry ID order, with
 * later duplicates of a non-empty hint dropped (the oldest entry wins).
 * *out is malloc'ed (borrowed pointers); only entries with an X.509-SVID
 * when with_svid is set.  WICK_ERR_ALLOC when memory is short.
 */
int	 agent_match(struct agent *, const struct selector_set *sel,
	    int with_svid, struct agent_entry ***out, size_t *n) WICK_WUR;
/* The bundle of a trust domain ID: own or federated; NULL if none. */
struct bundle *agent_bundle_for(struct agent *, const char *td_id);

/* JWT-SVID for an entry and audiences: from the cache, or from the
 * server (then done runs later).  done gets the token or an error. */
typedef void agent_jwt_fn(void *arg, int status, const char *msg,
    const char *token);
void	 agent_jwt(struct agent *, const struct agent_entry *,
	    char **audience, size_t naudience, agent_jwt_fn *, void *arg);
/* Ask for WIT-SVIDs of entries (fetched and kept fresh from now on). */
void	 agent_want_wit(struct agent *, struct agent_entry *);

/* attest.c: node attestation; agent_attested() on success, and the
 * agent stops on failure. */
int	 attest_start(struct agent *) WICK_WUR;
/* agent.c: node attestation succeeded; chain and key become the
 * agent's. */
void	 agent_attested(struct agent *, STACK_OF(X509) *chain, EVP_PKEY *key,
	    const Wick__Types__Bundle *, int reattestable);
int	 agent_chain_from_pb(ProtobufCBinaryData *, size_t,
	    STACK_OF(X509) **) WICK_WUR;

/* workload.c */
int	 workload_start(struct agent *) WICK_WUR;
/* Something changed: every open stream gets its new state. */
void	 workload_notify(struct agent *);
/* GOAWAY, watches end with UNAVAILABLE, other calls have
 * AGENT_WL_GRACE_MS (rpc.h); the socket file goes at once.  drained runs
 * once every connection has closed (at once if none was open). */
void	 workload_stop(struct agent *, void (*drained)(struct agent *));
/* The Workload API's method table (for the metrics' labels). */
void	 workload_methods(struct agent *, const struct rpc_method **,
	    size_t *);
/* After workload_stop(): close every connection now (a second SIGTERM). */
void	 workload_stop_now(struct agent *);

/* reload.c: SIGHUP, open the log file again, read the configuration file
 * again and apply what can change while running. */
void	 agent_reload(struct agent *);

#endif /* WICK_AGENT_H */
