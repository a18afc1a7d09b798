/*
 * svc.c: helpers shared by the admin and agent APIs.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "server.h"
#include "svc.h"
#include "xmalloc.h"
#include "x509.h"

void
svc_reply(struct rpc_call *call, const ProtobufCMessage *m)
{
	size_t	 len = protobuf_c_message_get_packed_size(m);
	uint8_t	*p;

	if ((p = malloc(len + 1)) == NULL) {
		(void)rpc_call_finish(call, RPC_RESOURCE_EXHAUSTED,
		    "out of memory");
		return;
	}
	protobuf_c_message_pack(m, p);
	/* Replies may hold a join token: the copy is wiped, not just freed. */
	if (rpc_call_send_message(call, p, len) != 0) {
		freezero(p, len + 1);
		(void)rpc_call_finish(call, RPC_INTERNAL, "cannot send reply");
		return;
	}
	freezero(p, len + 1);
	(void)rpc_call_finish(call, RPC_OK, NULL);
}

void
svc_fail(struct rpc_call *call, enum rpc_status st, const char *fmt, ...)
{
	char	msg[512];
	va_list	ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	(void)rpc_call_finish(call, st, msg);
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
	char		 td[SPIFFEID_MAX_TD_LEN + 1];
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
		free(e->federates_with[i]);
		if (asprintf(&e->federates_with[i], "spiffe://%s", td) < 0)
			fatal("out of memory");
		if ((r = ds_bundle_get(srv->ds, e->federates_with[i], &data,
		    &len)) != 0) {
			snprintf(msg, msglen, "invalid federates_with \"%s\": "
			    "no bundle for this trust domain",
			    e->federates_with[i]);
			return r == WICK_ERR_NOT_FOUND ? WICK_ERR_INVALID : r;
		}
		free(data);
	}
	return 0;
}
