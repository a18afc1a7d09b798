/*
 * svc.c: helpers shared by the admin and agent APIs.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "encode.h"
#include "log.h"
#include "server.h"
#include "svc.h"
#include "xmalloc.h"
#include "x509.h"

#define JOIN_TOKEN_PATH	"/spire/agent/join_token/"
#define REDACTED_LEN	(sizeof("<token sha256 >") - 1 + SVC_TOKEN_TAG_LEN)
#define SVC_MAX_MSG	512
#define SVC_MAX_LINE	(SPIFFEID_MAX_LEN + 1024)

void
svc_reply(struct rpc_call *call, const ProtobufCMessage *m)
{
	size_t	 len = protobuf_c_message_get_packed_size(m);
	uint8_t	*p;

	if ((p = malloc(len + 1)) == NULL) {
		svc_fail(call, RPC_RESOURCE_EXHAUSTED, "out of memory for a "
		    "reply of %zu bytes", len);
		return;
	}
	protobuf_c_message_pack(m, p);
	/* Replies may hold a join token: the copy is wiped, not just freed. */
	if (rpc_call_send_message(call, p, len) != 0) {
		freezero(p, len + 1);
		svc_fail(call, RPC_INTERNAL, "cannot send reply");
		return;
	}
	freezero(p, len + 1);
	(void)rpc_call_finish(call, RPC_OK, NULL);
}

/* Who called, for log lines: uid and pid, or agent ID and address. */
static void
peer_desc(struct rpc_call *call, char *out, size_t outlen)
{
	const struct rpc_peer *p = rpc_call_peer(call);

	if (p->is_unix)
		snprintf(out, outlen, "uid %lu pid %ld", (unsigned long)p->uid,
		    (long)p->pid);
	else if (p->spiffe_id != NULL)
		snprintf(out, outlen, "%s at %s", p->spiffe_id, p->addr);
	else
		snprintf(out, outlen, "%s", p->addr);
}

static enum log_level
fail_level(enum rpc_status st)
{
	switch (st) {
	case RPC_INTERNAL:
	case RPC_UNKNOWN:
	case RPC_DATA_LOSS:
	case RPC_UNAVAILABLE:
	case RPC_RESOURCE_EXHAUSTED:
		return LOG_LEVEL_ERROR;
	case RPC_PERMISSION_DENIED:
	case RPC_UNAUTHENTICATED:
		return LOG_LEVEL_WARN;
	case RPC_INVALID_ARGUMENT:
	case RPC_FAILED_PRECONDITION:
	case RPC_OUT_OF_RANGE:
		return LOG_LEVEL_INFO;
	default:
		return LOG_LEVEL_DEBUG;
	}
}

static void
vlog_call(struct log_ratelimit *rl, enum log_level level,
    struct rpc_call *call, const char *fmt, va_list ap)
{
	char	msg[SVC_MAX_MSG], peer[SPIFFEID_MAX_LEN + 96];
	char	line[SVC_MAX_LINE], clean[SVC_MAX_LINE];

	if (level > log_get_level())
		return;
	vsnprintf(msg, sizeof(msg), fmt, ap);
	peer_desc(call, peer, sizeof(peer));
	snprintf(line, sizeof(line), "%s from %s: %s", rpc_call_path(call),
	    peer, msg);
	svc_redact(line, clean, sizeof(clean));
	log_msg_rl(rl, level, NULL, "%s", clean);
}

void
svc_fail_rl(struct log_ratelimit *rl, struct rpc_call *call,
    enum rpc_status st, const char *fmt, ...)
{
	char	msg[SVC_MAX_MSG];
	va_list	ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	svc_log_rl(rl, fail_level(st), call, "%s: %s",
	    rpc_status_name((int)st), msg);
	(void)rpc_call_finish(call, st, msg);
}

void
svc_finish(struct rpc_call *call, enum rpc_status st, const char *fmt, ...)
{
	char	msg[SVC_MAX_MSG];
	va_list	ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	(void)rpc_call_finish(call, st, msg);
}

void
svc_log_rl(struct log_ratelimit *rl, enum log_level level,
    struct rpc_call *call, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog_call(rl, level, call, fmt, ap);
	va_end(ap);
}

void
svc_token_tag(const char *token, char out[SVC_TOKEN_TAG_LEN + 1])
{
	char hash[SHA256_HEX_LEN + 1];

	if (sha256_hex(token, strlen(token), hash) == 0)
		snprintf(out, SVC_TOKEN_TAG_LEN + 1, "%.*s",
		    SVC_TOKEN_TAG_LEN, hash);
	else
		snprintf(out, SVC_TOKEN_TAG_LEN + 1, "unknown");
}

/* The characters of a join token (as the admin API accepts them, and
 * what a SPIFFE ID path segment may hold). */
static int
token_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.';
}

void
svc_redact(const char *in, char *out, size_t outlen)
{
	const char	*p, *q;
	char		 hash[SHA256_HEX_LEN + 1];
	size_t		 len = 0;
	int		 n;

	if (outlen == 0)
		return;
	*out = '\0';
	while ((p = strstr(in, JOIN_TOKEN_PATH)) != NULL) {
		p += strlen(JOIN_TOKEN_PATH);
		for (q = p; token_char(*q); q++)
			;
		if (q > p && sha256_hex(p, (size_t)(q - p), hash) != 0)
			snprintf(hash, sizeof(hash), "unknown");
		n = snprintf(out + len, outlen - len, "%.*s%s%.*s%s",
		    (int)(p - in), in, q > p ? "<token sha256 " : "",
		    q > p ? SVC_TOKEN_TAG_LEN : 0, q > p ? hash : "",
		    q > p ? ">" : "");
		if (n < 0 || (size_t)n >= outlen - len)
			return;		/* truncated, never the token */
		len += (size_t)n;
		in = q;
	}
	(void)snprintf(out + len, outlen - len, "%s", in);
}

int
svc_redact_dup(const char *in, char **out)
{
	const char	*p;
	size_t		 n = 0, len;

	*out = NULL;
	for (p = in; (p = strstr(p, JOIN_TOKEN_PATH)) != NULL;
	    p += strlen(JOIN_TOKEN_PATH))
		n++;
	/* Each token, one character or more, becomes REDACTED_LEN. */
	len = strlen(in) + n * REDACTED_LEN + 1;
	if ((*out = malloc(len)) == NULL)
		return WICK_ERR_ALLOC;
	svc_redact(in, *out, len);
	return 0;
}

void
svc_actor(struct rpc_call *call, char *out, size_t outlen)
{
	const struct rpc_peer *p = rpc_call_peer(call);

	if (p->spiffe_id != NULL)
		snprintf(out, outlen, "%s", p->spiffe_id);
	else if (p->is_unix)
		snprintf(out, outlen, "uid:%lu", (unsigned long)p->uid);
	else
		snprintf(out, outlen, "%s", p->addr);
}

int
svc_check_entry(struct server *srv, struct ds_entry *e, char *msg,
    size_t msglen)
{
	struct spiffeid	 id, parent;
	const char	*why;
	char		 td[SPIFFEID_MAX_TD_LEN + 1], *tdid;
	uint8_t		*data;
	size_t		 i, len;
	int		 r;

	if (e->spiffe_id == NULL || spiffeid_parse(e->spiffe_id, 0, &id,
	    &why) != 0) {
		snprintf(msg, msglen, "invalid spiffe_id \"%.200s\": %s",
		    e->spiffe_id != NULL ? e->spiffe_id : "",
		    e->spiffe_id == NULL ? "missing" : why);
		return WICK_ERR_INVALID;
	}
	if (!spiffeid_member_of(&id, srv->cfg->trust_domain)) {
		snprintf(msg, msglen, "invalid spiffe_id \"%.200s\": not a "
		    "member of trust domain \"%s\"", e->spiffe_id,
		    srv->cfg->trust_domain);
		return WICK_ERR_INVALID;
	}
	if (spiffeid_is_reserved(&id)) {
		snprintf(msg, msglen, "invalid spiffe_id \"%.200s\": the path "
		    "/spire is reserved", e->spiffe_id);
		return WICK_ERR_INVALID;
	}
	if (e->parent_id == NULL || spiffeid_parse(e->parent_id, 0, &parent,
	    &why) != 0) {
		snprintf(msg, msglen, "invalid parent_id \"%.200s\": %s",
		    e->parent_id != NULL ? e->parent_id : "",
		    e->parent_id == NULL ? "missing" : why);
		return WICK_ERR_INVALID;
	}
	if (!spiffeid_member_of(&parent, srv->cfg->trust_domain)) {
		snprintf(msg, msglen, "invalid parent_id \"%.200s\": not a "
		    "member of trust domain \"%s\"", e->parent_id,
		    srv->cfg->trust_domain);
		return WICK_ERR_INVALID;
	}
	if (e->selectors.n == 0) {
		snprintf(msg, msglen, "invalid selectors: at least one "
		    "selector is required");
		return WICK_ERR_INVALID;
	}
	if (e->x509_svid_ttl < 0 || e->jwt_svid_ttl < 0) {
		snprintf(msg, msglen, "invalid %s: must not be negative",
		    e->x509_svid_ttl < 0 ? "x509_svid_ttl" : "jwt_svid_ttl");
		return WICK_ERR_INVALID;
	}
	if (e->expires_at < 0) {
		snprintf(msg, msglen, "invalid expires_at: must not be "
		    "negative");
		return WICK_ERR_INVALID;
	}
	if (e->hint != NULL && strlen(e->hint) > DS_HINT_MAX) {
		snprintf(msg, msglen, "invalid hint: longer than %d bytes",
		    DS_HINT_MAX);
		return WICK_ERR_INVALID;
	}
	for (i = 0; i < e->ndns_names; i++)
		if (!x509_dns_name_ok(e->dns_names[i])) {
			snprintf(msg, msglen, "invalid DNS name \"%.200s\"",
			    e->dns_names[i]);
			return WICK_ERR_INVALID;
		}
	if (e->nfederates_with > 0 && strcmp(e->parent_id,
	    srv->server_id) == 0) {
		snprintf(msg, msglen, "node entries cannot federate with "
		    "other trust domains");
		return WICK_ERR_INVALID;
	}
	for (i = 0; i < e->nfederates_with; i++) {
		if (spiffeid_td_parse(e->federates_with[i], 0, td, &why) !=
		    0) {
			snprintf(msg, msglen, "invalid federates_with "
			    "\"%.200s\": %s", e->federates_with[i], why);
			return WICK_ERR_INVALID;
		}
		if (strcmp(td, srv->cfg->trust_domain) == 0) {
			snprintf(msg, msglen, "invalid federates_with \"%s\": "
			    "the server's own trust domain", td);
			return WICK_ERR_INVALID;
		}
		/* Stored normalised, as the trust domain's ID. */
		if (asprintf(&tdid, "spiffe://%s", td) < 0) {
			snprintf(msg, msglen, "out of memory");
			return WICK_ERR_ALLOC;
		}
		free(e->federates_with[i]);
		e->federates_with[i] = tdid;
		if ((r = ds_bundle_get(srv->ds, e->federates_with[i], &data,
		    &len)) == WICK_ERR_NOT_FOUND) {
			snprintf(msg, msglen, "invalid federates_with \"%s\": "
			    "no bundle for this trust domain",
			    e->federates_with[i]);
			return WICK_ERR_INVALID;
		} else if (r != 0) {
			snprintf(msg, msglen, "cannot read the bundle of %s: "
			    "%s", e->federates_with[i], wick_strerror(r));
			return r;
		}
		free(data);
	}
	return 0;
}
