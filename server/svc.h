/*
 * svc.h: small helpers the server's gRPC services share.
 */
#ifndef WICK_SVC_H
#define WICK_SVC_H

#include <protobuf-c/protobuf-c.h>

#include "ds.h"
#include "rpc.h"

struct server;

/* Pack m, send it and finish OK (INTERNAL if that fails). */
void	 svc_reply(struct rpc_call *, const ProtobufCMessage *);
/* Finish with a status and a formatted message. */
void	 svc_fail(struct rpc_call *, enum rpc_status, const char *fmt, ...)
	    __attribute__((format(printf, 3, 4)));
/* "uid:N" or the caller's SPIFFE ID, for audit records. */
void	 svc_actor(struct rpc_call *, char *out, size_t outlen);
/*
 * Check an entry against the rules of a registration entry (SPIRE's):
 * SPIFFE and parent IDs valid and in the trust domain, the SPIFFE ID not
 * the root and not under /spire, at least one selector, TTLs >= 0, DNS
 * names valid, hint length, federated trust domains valid, not our own,
 * known, and not on a node entry (they are normalised to trust domain
 * IDs in place).  msg gets the reason.
 */
int	 svc_check_entry(struct server *, struct ds_entry *, char *msg,
	    size_t msglen) WICK_WUR;

#endif /* WICK_SVC_H */
