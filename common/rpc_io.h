/*
 * rpc_io.h: the write side shared by the gRPC server and client: bytes
 * to a libuv stream, through TLS when the connection has it.
 *
 * Internal to rpc_server.c and rpc_client.c.  The owner embeds a struct
 * rpc_io, sets stream (and tls once it exists), and gets written() after
 * every completed write request, with pending already reduced (bytes the
 * socket took at once made none: pending did not move).  A write request
 * holds a pointer to the rpc_io, so the owner must not free it while
 * pending > 0 (libuv completes every request, cancelled ones included,
 * before a closed handle's close callback).
 */
#ifndef WICK_RPC_IO_H
#define WICK_RPC_IO_H

#include <stddef.h>
#include <stdint.h>

#include <nghttp2/nghttp2.h>
#include <uv.h>

#include "err.h"
#include "tls.h"

struct rpc_io {
	uv_stream_t	*stream;
	struct tls_conn	*tls;		/* NULL: plaintext */
	size_t		 pending;	/* bytes handed to uv_write */
	void		(*written)(struct rpc_io *, int status);
};

/* Send bytes (encrypted first when tls is set).  Copies them. */
int	 rpc_io_send(struct rpc_io *, const uint8_t *, size_t) WICK_WUR;
/* Send what the TLS engine has queued (handshake records, alerts). */
int	 rpc_io_tls_flush(struct rpc_io *) WICK_WUR;

/*
 * The read side of a TLS connection.  Feed received ciphertext; until the
 * handshake is done, drive it (sending its records), and call ready() once
 * when it completes (*handshaken is then set).  Decrypted bytes go to
 * plain(); a plain() return of WICK_ERR_STATE stops reading without error
 * (the owner is closing), any other non-zero return is the result.
 * WICK_ERR_AGAIN never escapes: 0 means "wait for more".
 */
int	 rpc_io_tls_recv(struct rpc_io *, const uint8_t *, size_t,
	    int *handshaken, int (*ready)(void *),
	    int (*plain)(void *, const uint8_t *, size_t), void *arg)
	    WICK_WUR;

/* An nghttp2 allocator that wipes what it frees (its frame buffers
 * hold our messages). */
nghttp2_mem *rpc_secret_mem(void);

#endif /* WICK_RPC_IO_H */
