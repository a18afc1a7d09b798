/*
 * workload.h: the SPIFFE Workload API on the agent's public Unix socket.
 * It reads the cache (cache.h) and asks the manager, through the calls it
 * was given, only for what the cache does not hold (a JWT-SVID to sign, a
 * WIT-SVID to start keeping fresh).
 */
#ifndef WICK_WORKLOAD_H
#define WICK_WORKLOAD_H

#include <stdint.h>

#include <uv.h>

#include "attestor.h"
#include "cache.h"
#include "rpc.h"

#define WL_GRACE_MS	2000	/* Workload API calls at shutdown */

struct workload;
struct docker;

/* A JWT-SVID from the server: done gets the token or an error. */
typedef void workload_jwt_done_fn(void *arg, int status, const char *msg,
    const char *token);

struct workload_ops {
	/* Sign a JWT-SVID for entry and audiences (done may run at once). */
	void	(*jwt)(void *arg, const struct cache_entry *,
		    char **audience, size_t naudience,
		    workload_jwt_done_fn *done, void *done_arg);
	/* Fetch the entry's WIT-SVID and keep it fresh from now on. */
	void	(*want_wit)(void *arg, struct cache_entry *);
	/* Health: the agent has an SVID and has synced. */
	int	(*serving)(void *arg);
	/* Metrics: a caller attested (ok) or refused. */
	void	(*attested)(void *arg, int ok);
	void	*arg;
};

struct workload_opts {
	const char		*socket_path;
	int			 allow_unauthenticated_verifiers;
	char			**foreign_claims;	/* of other TDs */
	size_t			 nforeign_claims;
	const char		*td_id;		/* spiffe://<own TD> */
	const struct attestor	*attestors;	/* run in turn */
	size_t			 nattestors;
	struct docker		*docker;		/* or NULL */
	/* Metrics of each call (rpc.h), may be NULL. */
	void			(*observe)(void *, size_t, int, uint64_t);
	void			*observe_arg;
};

/*
 * Listen on opts->socket_path.  opts and what it points to, the cache and
 * ops must outlive the workload.
 */
int	 workload_start(uv_loop_t *, const struct workload_opts *,
	    struct cache *, const struct workload_ops *, struct workload **)
	    WICK_WUR;
/* GOAWAY, watches end with UNAVAILABLE, other calls have WL_GRACE_MS
 * (rpc.h); the socket file goes at once.  drained(arg) runs once every
 * connection has closed (at once if none was open); the workload is freed
 * then. */
void	 workload_stop(struct workload *, void (*drained)(void *),
	    void *arg);
/* After workload_stop(): close every connection now (a second SIGTERM). */
void	 workload_stop_now(struct workload *);
/* The Workload API's method table (for the metrics' labels). */
void	 workload_methods(const struct rpc_method **, size_t *);
void	 workload_stats(struct workload *, struct rpc_server_stats *);
/* ValidateJWTSVID's tokens answered without verifying their signature
 * again, and those looked for and verified (jwtcache.h). */
void	 workload_jwt_stats(struct workload *, uint64_t *hits,
	    uint64_t *misses);
/*
 * Make or check the directory of the Workload API socket (secpath.h):
 * 0755, open to every workload since identity comes from attestation, not
 * from file modes (the socket is 0777, as SPIRE's).  Logs what is wrong.
 */
int	 workload_socket_dir(const char *socket_path) WICK_WUR;

#endif /* WICK_WORKLOAD_H */
