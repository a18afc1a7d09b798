/*
 * rpc_client.h: a gRPC client on one libuv loop, over nghttp2 and, for
 * TCP targets, TLS 1.3 (tls.h).  Messages are raw bytes.
 *
 * A channel is one HTTP/2 connection; calls started before it connected
 * wait for it.  Each call ends exactly once with on_status (the server's
 * grpc-status, or a local one: DEADLINE_EXCEEDED, CANCELLED,
 * RESOURCE_EXHAUSTED for a reply over the receive limit, UNAVAILABLE when
 * the connection failed); the call pointer is invalid after on_status.
 * Loop thread only.
 */
#ifndef WICK_RPC_CLIENT_H
#define WICK_RPC_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "rpc.h"
#include "tls.h"

struct rpc_channel;
struct rpc_ccall;

struct rpc_client_cbs {
	void	(*on_headers)(struct rpc_ccall *, void *arg);
	void	(*on_message)(struct rpc_ccall *, const uint8_t *, size_t,
		    void *arg);
	void	(*on_status)(struct rpc_ccall *, int status, const char *msg,
		    void *arg);
};

/*
 * target: "unix:///abs/path", "unix:/abs/path", or "HOST:PORT" with an IP
 * literal or "localhost".  tls (may be NULL: h2c) must be a client
 * context and outlive the channel.  max_recv 0 means 4 MiB.
 */
int	 rpc_channel_new(uv_loop_t *, const char *target, struct tls_ctx *tls,
	    size_t max_recv, struct rpc_channel **out) WICK_WUR;
/* The server's SPIFFE ID once the TLS handshake is done, or NULL. */
const char *rpc_channel_peer_id(const struct rpc_channel *);
/*
 * Close the channel: open calls end with CANCELLED, then done (may be
 * NULL) runs and the channel is freed.
 */
void	 rpc_channel_close(struct rpc_channel *, void (*done)(void *),
	    void *arg);

/*
 * Start a call.  md (nmd entries; -bin values raw, base64-encoded here) is
 * copied.  timeout_ms < 0: no deadline.  WICK_ERR_UNAVAILABLE once the
 * connection failed or the server sent GOAWAY (open a new channel),
 * WICK_ERR_STATE after rpc_channel_close().  On error no callback runs.
 */
int	 rpc_ccall_start(struct rpc_channel *, const char *path,
	    const struct rpc_md *md, size_t nmd, int64_t timeout_ms,
	    const struct rpc_client_cbs *, void *arg, struct rpc_ccall **out)
	    WICK_WUR;
/*
 * Queue one message (copied).  WICK_ERR_LIMIT when more than 8 MiB would
 * wait unsent on this call, WICK_ERR_STATE after half-close or the end.
 */
int	 rpc_ccall_send(struct rpc_ccall *, const uint8_t *, size_t) WICK_WUR;
int	 rpc_ccall_half_close(struct rpc_ccall *) WICK_WUR;
/* Cancel: RST_STREAM to the server, on_status(CANCELLED) locally. */
void	 rpc_ccall_cancel(struct rpc_ccall *);
/*
 * Response headers and trailers (-bin values decoded; the metadata of a
 * trailers-only response counts as trailers), valid until the call ends.
 */
size_t	 rpc_ccall_header_count(const struct rpc_ccall *, int trailers);
const struct rpc_md *rpc_ccall_header(const struct rpc_ccall *, int trailers,
	    size_t);

#endif /* WICK_RPC_CLIENT_H */
