/*
 * nodeclient.h: the agent's client of the server's agent API.
 *
 * A TLS 1.3 channel to the server that accepts only the server's own SVID
 * (spiffe://<td>/spire/server) chaining to the trust bundle the agent
 * holds; once the agent has its SVID, calls use it as client
 * certificate.  A channel that failed or was told to go away is replaced
 * on the next call.
 */
#ifndef WICK_NODECLIENT_H
#define WICK_NODECLIENT_H

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

struct nodeclient;

/* addr "host:port"; roots: the trust bundle's X.509 authorities. */
int	 nodeclient_new(uv_loop_t *, const char *addr, const char *td,
	    STACK_OF(X509) *roots, struct nodeclient **out) WICK_WUR;
void	 nodeclient_free(struct nodeclient *);
int	 nodeclient_set_roots(struct nodeclient *, STACK_OF(X509) *) WICK_WUR;
/* Use this SVID (leaf first) from the next connection on. */
int	 nodeclient_set_identity(struct nodeclient *, STACK_OF(X509) *chain,
	    EVP_PKEY *key) WICK_WUR;
/* One call; see rpc_unary_start(). */
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

#endif /* WICK_NODECLIENT_H */
