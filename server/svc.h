/*
 * svc.h: small helpers the server's gRPC services share.
 */
#ifndef WICK_SVC_H
#define WICK_SVC_H

#include <protobuf-c/protobuf-c.h>

#include "ds.h"
#include "log.h"
#include "rpc.h"

#define SVC_TOKEN_TAG_LEN	16	/* hex digits naming a join token */

struct server;

/* Pack m, send it and finish OK (INTERNAL if that fails). */
void	 svc_reply(struct rpc_call *, const ProtobufCMessage *);

/*
 * Finish with a status and a formatted message, and log the failure with
 * the method and the peer, rate-limited per call site (a peer can
 * trigger every one of them): server faults (INTERNAL, UNAVAILABLE,
 * RESOURCE_EXHAUSTED) as errors, denials as warnings, bad requests as
 * info, the rest at debug.  The log line names join tokens only by
 * their fingerprint (svc_redact()).
 */
#define svc_fail(call, st, ...) do {					\
	static struct log_ratelimit svc_fail_rl_ = LOG_RATELIMIT_DEFAULT; \
	svc_fail_rl(&svc_fail_rl_, (call), (st), __VA_ARGS__);		\
} while (0)
void	 svc_fail_rl(struct log_ratelimit *, struct rpc_call *,
	    enum rpc_status, const char *fmt, ...)
	    __attribute__((format(printf, 4, 5)));
/* Finish without a log line (the caller logged the failure itself). */
void	 svc_finish(struct rpc_call *, enum rpc_status, const char *fmt,
	    ...) __attribute__((format(printf, 3, 4)));
/* Log a line about the call's peer through rl, join tokens redacted. */
void	 svc_log_rl(struct log_ratelimit *, enum log_level,
	    struct rpc_call *, const char *fmt, ...)
	    __attribute__((format(printf, 4, 5)));
/* "uid:N" or the caller's SPIFFE ID, for audit records. */
void	 svc_actor(struct rpc_call *, char *out, size_t outlen);
/*
 * How logs and the audit trail name a join token: the first
 * SVC_TOKEN_TAG_LEN hex digits of its SHA-256 ("unknown" if hashing
 * failed).  A live token is never logged nor stored in clear.
 */
void	 svc_token_tag(const char *token, char out[SVC_TOKEN_TAG_LEN + 1]);
/*
 * Copy in to out with the token of every join-token agent ID
 * (".../spire/agent/join_token/<token>") replaced by its tag:
 * ".../spire/agent/join_token/<token sha256 0123456789abcdef>".
 */
void	 svc_redact(const char *in, char *out, size_t outlen);
/* The same into a new string of the size needed. */
int	 svc_redact_dup(const char *in, char **out) WICK_WUR;
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
