/*
 * rpc_frame.c: incremental decoder of gRPC length-prefixed messages.
 */
#include <stdlib.h>
#include <string.h>

#include "rpc_frame.h"
#include "xmalloc.h"

void
rpc_frame_init(struct rpc_frame_dec *d, size_t max)
{
	memset(d, 0, sizeof(*d));
	d->max = max;
}

void
rpc_frame_set_reserve(struct rpc_frame_dec *d, rpc_frame_reserve_fn fn,
    void *arg)
{
	d->reserve = fn;
	d->reserve_arg = arg;
}

void
rpc_frame_cleanup(struct rpc_frame_dec *d)
{
	freezero(d->msg, d->msg_have);
	d->msg = NULL;
	d->hdr_have = d->msg_len = d->msg_have = 0;
}

int
rpc_frame_partial(const struct rpc_frame_dec *d)
{
	return d->hdr_have != 0;
}

size_t
rpc_frame_held(const struct rpc_frame_dec *d)
{
	return d->hdr_have + d->msg_have;
}

int
rpc_frame_feed(struct rpc_frame_dec *d, const uint8_t *p, size_t n,
    rpc_frame_fn fn, void *arg)
{
	size_t		 take;
	uint32_t	 len;
	int		 r;

	while (n > 0) {
		if (d->hdr_have < RPC_FRAME_HEADER) {
			take = RPC_FRAME_HEADER - d->hdr_have;
			if (take > n)
				take = n;
			memcpy(d->hdr + d->hdr_have, p, take);
			d->hdr_have += take;
			p += take;
			n -= take;
			if (d->hdr_have < RPC_FRAME_HEADER)
				return 0;
			len = (uint32_t)d->hdr[1] << 24 |
			    (uint32_t)d->hdr[2] << 16 |
			    (uint32_t)d->hdr[3] << 8 | d->hdr[4];
			d->declared = len;
			if (d->hdr[0] != 0)
				return WICK_ERR_UNSUPPORTED;
			if (len > d->max)
				return WICK_ERR_LIMIT;
			if (d->reserve != NULL && (r = d->reserve(
			    d->reserve_arg, RPC_FRAME_HEADER + (size_t)len)) != 0)
				return r;
			d->msg_len = len;
			d->msg_have = 0;
			if ((d->msg = malloc(len > 0 ? len : 1)) == NULL)
				return WICK_ERR_ALLOC;
		}
		take = d->msg_len - d->msg_have;
		if (take > n)
			take = n;
		if (take > 0)
			memcpy(d->msg + d->msg_have, p, take);
		d->msg_have += take;
		p += take;
		n -= take;
		if (d->msg_have < d->msg_len)
			return 0;
		d->hdr_have = 0;
		r = fn(d->msg, d->msg_len, arg);
		freezero(d->msg, d->msg_len);
		d->msg = NULL;
		d->msg_have = 0;
		if (r != 0)
			return r;
	}
	return 0;
}
