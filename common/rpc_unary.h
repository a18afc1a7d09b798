/*
 * rpc_unary.h: one request, one response, on top of rpc_client.h.
 *
 * rpc_unary_start() packs the request, sends it, half-closes and calls
 * done once with the status and (on OK) the single response message.
 * It also serves a bidirectional call whose server answers once.
 * rpc_unary_run() does the same on a private loop and blocks: for
 * command-line tools.
 */
#ifndef WICK_RPC_UNARY_H
#define WICK_RPC_UNARY_H

#include <protobuf-c/protobuf-c.h>

#include "buf.h"
#include "rpc_client.h"

/* resp is valid during the callback only; NULL unless status is OK. */
typedef void rpc_unary_fn(int status, const char *msg, const uint8_t *resp,
    size_t len, void *arg);

int	 rpc_unary_start(struct rpc_channel *, const char *path,
	    const ProtobufCMessage *req, int64_t timeout_ms, rpc_unary_fn *,
	    void *arg) WICK_WUR;
/* The same with the request already encoded (tests send garbage). */
int	 rpc_unary_start_raw(struct rpc_channel *, const char *path,
	    const uint8_t *req, size_t len, int64_t timeout_ms, rpc_unary_fn *,
	    void *arg) WICK_WUR;

/*
 * Blocking: connect to target (tls may be NULL), call, wait.  Returns the
 * gRPC status; *msg (static buffer of at least 512 bytes given by the
 * caller) the message; resp (may be NULL) gets the response bytes.
 */
int	 rpc_unary_run(const char *target, struct tls_ctx *tls,
	    const char *path, const ProtobufCMessage *req, int64_t timeout_ms,
	    struct buf *resp, char *msg, size_t msglen);

#endif /* WICK_RPC_UNARY_H */
