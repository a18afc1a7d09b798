/*
 * rpc_int.h: helpers shared by the gRPC server and client only.
 */
#ifndef WICK_RPC_INT_H
#define WICK_RPC_INT_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "rpc.h"

enum rpc_md_dir {
	RPC_MD_TO_WIRE = 0,	/* -bin values get base64-encoded */
	RPC_MD_FROM_WIRE,	/* -bin values get base64-decoded */
};

/*
 * Fill *m with heap copies of name and value (NUL-terminated).
 * WICK_ERR_INVALID for a -bin value that is not base64 (from the wire),
 * WICK_ERR_ALLOC.  *m is untouched on error.
 */
int	 rpc_md_set(struct rpc_md *m, const char *name, size_t namelen,
	    const uint8_t *value, size_t len, enum rpc_md_dir) WICK_WUR;
void	 rpc_md_free(struct rpc_md *, size_t n);
/* Close callback that frees a heap-allocated handle. */
void	 rpc_handle_free_cb(uv_handle_t *);

#endif /* WICK_RPC_INT_H */
