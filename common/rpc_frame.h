/*
 * rpc_frame.h: the gRPC length-prefixed message framing (a compressed
 * flag byte, a 32-bit big-endian length, the message), decoded
 * incrementally from DATA chunks of any size.
 *
 * The declared length is checked against the maximum before anything is
 * allocated; a compressed message is refused (wick speaks identity only).
 */
#ifndef WICK_RPC_FRAME_H
#define WICK_RPC_FRAME_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

#define RPC_FRAME_HEADER	5

/*
 * Called once a message's length is known and within max, before its
 * buffer is allocated, with the bytes it will hold (header included); a
 * non-zero return stops decoding with that error.
 */
typedef int (*rpc_frame_reserve_fn)(void *arg, size_t);

struct rpc_frame_dec {
	size_t	 max;		/* largest message accepted */
	rpc_frame_reserve_fn reserve;
	void	*reserve_arg;
	uint8_t	 hdr[RPC_FRAME_HEADER];
	size_t	 hdr_have;
	uint8_t	*msg;
	size_t	 msg_len;
	size_t	 msg_have;
	uint32_t declared;	/* length of the message that failed */
};

/* Called per complete message; the bytes are valid during the call only. */
typedef int (*rpc_frame_fn)(const uint8_t *, size_t, void *arg);

void	 rpc_frame_init(struct rpc_frame_dec *, size_t max);
void	 rpc_frame_set_reserve(struct rpc_frame_dec *, rpc_frame_reserve_fn,
	    void *arg);
/* Free (and wipe: messages may carry tokens) what the decoder holds. */
void	 rpc_frame_cleanup(struct rpc_frame_dec *);
/*
 * Feed bytes.  0 when all were consumed; WICK_ERR_LIMIT for a message over
 * max (d->declared says how big), WICK_ERR_UNSUPPORTED for a compressed
 * one, WICK_ERR_ALLOC, or the callback's own non-zero return, which stops
 * decoding.  After an error the decoder must not be fed again.
 */
int	 rpc_frame_feed(struct rpc_frame_dec *, const uint8_t *, size_t,
	    rpc_frame_fn, void *arg) WICK_WUR;
/* Non-zero when a message is partly received (a truncated stream). */
int	 rpc_frame_partial(const struct rpc_frame_dec *);
/* Bytes of the partly received message held (its header included). */
size_t	 rpc_frame_held(const struct rpc_frame_dec *);

#endif /* WICK_RPC_FRAME_H */
