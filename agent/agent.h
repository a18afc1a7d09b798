/*
 * agent.h: the wick-agent daemon's state, shared by its parts.
 *
 * agent.c: start-up (attestation or the stored SVID), the sync loop with
 * the server (entries, bundles), X.509-SVID, WIT-SVID and JWT-SVID upkeep,
 * the agent's own SVID renewal: the manager, which fills the cache
 * (cache.h) that the Workload API (workload.h) reads.  attestor_unix.c:
 * workload attestation.
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
#include "cache.h"
#include "config.h"
#include "nodeclient.h"
#include "rpc.h"
#include "selector.h"
#include "spiffeid.h"
#include "svcnotify.h"
#include "types.pb-c.h"
#include "workload.h"

#define AGENT_MAX_CSRS		500	/* per BatchNewX509SVID */
#define AGENT_X509_INFLIGHT	2	/* BatchNewX509SVID calls at once */
#define AGENT_MAX_BACKOFF_MS	(4 * 60 * 1000)
#define AGENT_CALL_TIMEOUT_MS	30000
/* A drain that outlasts this is cut: the process exits 1. */
#define AGENT_DRAIN_MAX_MS	(WL_GRACE_MS + 5000)

struct docker;
struct file_job;
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
	int			 renewing;	/* a key, then the call */
	int			 x509_keygen;	/* keys being made */
	int			 x509_inflight;	/* batches sent */
	int			 attesting;	/* attest.c runs */
	int			 reattestable;	/* the server says so */
	/* entries, SVIDs, bundles, JWT-SVIDs, subscribers */
	struct cache		*cache;
	int64_t			 revision;
	int			 synced;	/* first sync done */
	int			 need_full;	/* next sync from 0 */
	int			 sync_full;	/* this one is */
	/* sync in progress */
	int			 syncing;
	struct cache_entry	**pending;	/* this sync's entries */
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
	/* files written off the loop, in order */
	struct file_job		*files;
	struct file_job		*files_tail;
	int			 file_busy;
	int			 file_failed;	/* the last one did */
	uv_work_t		 trim_req;	/* malloc_trim() */
	int			 trimming;
	/* Workload API */
	struct workload		*wl;		/* NULL: drained */
	struct workload_opts	 wl_opts;
	struct workload_ops	 wl_ops;
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
void	 agent_stop(struct agent *, int exit_code);

/* attest.c: node attestation; agent_attested() on success, and the
 * agent stops on failure. */
int	 attest_start(struct agent *) WICK_WUR;
/* agent.c: node attestation succeeded; chain and key become the
 * agent's. */
void	 agent_attested(struct agent *, STACK_OF(X509) *chain, EVP_PKEY *key,
	    const Wick__Types__Bundle *, int reattestable);
int	 agent_chain_from_pb(ProtobufCBinaryData *, size_t,
	    STACK_OF(X509) **) WICK_WUR;

/* reload.c: SIGHUP, open the log file again, read the configuration file
 * again and apply what can change while running. */
void	 agent_reload(struct agent *);

#endif /* WICK_AGENT_H */
