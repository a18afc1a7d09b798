/*
 * nodeclient.h: the agent's client of the server's agent API.
 *
 * A TLS 1.3 channel to the server that accepts only the server's own SVID
 * (spiffe://<td>/spire/server) chaining to the trust bundle the agent
 * holds; once the agent has its SVID, calls use it as client
 * certificate.  A channel that failed or was told to go away is replaced
 * on the next call, by one to the next of the server name's addresses
 * (nodeclient.c says how they are tried).
 */
#ifndef WICK_NODECLIENT_H
#define WICK_NODECLIENT_H

#include <netdb.h>
#include <netinet/in.h>

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <uv.h>

#include "rpc_unary.h"
#include "spiffeid.h"

#define NODE_PATH_ATTEST	"/wick.agent.Node/AttestAgent"
#define NODE_PATH_RENEW		"/wick.agent.Node/RenewAgent"
#define NODE_PATH_SYNC		"/wick.agent.Node/SyncAuthorized"
#define NODE_PATH_X509		"/wick.agent.Node/BatchNewX509SVID"
#define NODE_PATH_JWT		"/wick.agent.Node/NewJWTSVID"
#define NODE_PATH_WIT		"/wick.agent.Node/NewWITSVID"

/* At most this many of the server name's addresses are tried. */
#define NODECLIENT_MAX_ADDRS		16
#define NODECLIENT_TARGET_LEN		(INET6_ADDRSTRLEN + 8)
/* Pause after a round in which no address answered: doubling, capped. */
#define NODECLIENT_BACKOFF_MIN_MS	1000
#define NODECLIENT_BACKOFF_MAX_MS	30000

struct nodeclient;

/*
 * addr "host:port" (host a name, an IP literal or a bracketed IPv6
 * literal); roots: the trust bundle's X.509 authorities.  The name is
 * resolved from now on, off the loop.
 */
int	 nodeclient_new(uv_loop_t *, const char *addr, const char *td,
	    STACK_OF(X509) *roots, struct nodeclient **out) WICK_WUR;
void	 nodeclient_free(struct nodeclient *);
/* cb(arg) once the first resolution is over (now if it is). */
void	 nodeclient_on_resolved(struct nodeclient *, void (*cb)(void *),
	    void *arg);
/*
 * The current connection never got through its TLS handshake: it is
 * replaced by one to the next address on the next call; 1 if an address
 * of this round is left to try.
 */
int	 nodeclient_unreached(struct nodeclient *);
int	 nodeclient_set_roots(struct nodeclient *, STACK_OF(X509) *) WICK_WUR;
/* Use this SVID (leaf first) from the next connection on; calls in flight
 * finish on the current one, which then closes. */
int	 nodeclient_set_identity(struct nodeclient *, STACK_OF(X509) *chain,
	    EVP_PKEY *key) WICK_WUR;
/*
 * One call; see rpc_unary_start().  Made before the server's name is
 * resolved, it waits for that; one whose connection never got through is
 * sent again to the next address.
 */
int	 nodeclient_call(struct nodeclient *, const char *path,
	    const ProtobufCMessage *req, int64_t timeout_ms, rpc_unary_fn *,
	    void *arg) WICK_WUR;

/*
 * A streaming call (AttestAgent with a challenge): see rpc_ccall_start();
 * messages go with rpc_ccall_send(), the end with rpc_ccall_half_close().
 */
int	 nodeclient_stream(struct nodeclient *, const char *path,
	    int64_t timeout_ms, const struct rpc_client_cbs *, void *arg,
	    struct rpc_ccall **out) WICK_WUR;

/* The same with the request already encoded. */
int	 nodeclient_call_raw(struct nodeclient *, const char *path,
	    const uint8_t *req, size_t len, int64_t timeout_ms,
	    rpc_unary_fn *, void *arg) WICK_WUR;

/*
 * For tests.  The pause after the rounds-th failed round in a row (0: no
 * pause), jittered down by up to a fifth with rnd; the "ip:port" targets
 * of res, in order, without duplicates, at most max.
 */
uint64_t nodeclient_backoff_ms(unsigned rounds, uint32_t rnd);
size_t	 nodeclient_addrs(const struct addrinfo *res, const char *port,
	    char out[][NODECLIENT_TARGET_LEN], size_t max);

#endif /* WICK_NODECLIENT_H */
