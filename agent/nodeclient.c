/*
 * nodeclient.c: the agent's TLS channel to the server.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "nodeclient.h"
#include "tls.h"
#include "xmalloc.h"

struct nodeclient {
	uv_loop_t		*loop;
	char			*addr;
	char			 server_id[SPIFFEID_MAX_TD_LEN + 32];
	struct tls_ctx		*tls;
	struct rpc_channel	*ch;
};

static int
verify_server(const char *peer_id, X509 *leaf, void *arg)
{
	struct nodeclient *nc = arg;

	if (peer_id == NULL || strcmp(peer_id, nc->server_id) != 0) {
		log_warn("server at %s presented %s, not %s", nc->addr,
		    peer_id != NULL ? peer_id : "no SPIFFE ID", nc->server_id);
		return WICK_ERR_PERM;
	}
	return 0;
}

int
nodeclient_new(uv_loop_t *loop, const char *addr, const char *td,
    STACK_OF(X509) *roots, struct nodeclient **out)
{
	struct nodeclient	*nc;
	int			 r;

	nc = xcalloc(1, sizeof(*nc));
	nc->loop = loop;
	nc->addr = xstrdup(addr);
	snprintf(nc->server_id, sizeof(nc->server_id),
	    "spiffe://%s/spire/server", td);
	if ((r = tls_ctx_new(TLS_ROLE_CLIENT, TLS_PEER_CERT_REQUIRED,
	    &nc->tls)) != 0 || (r = tls_ctx_set_roots(nc->tls, roots)) != 0) {
		nodeclient_free(nc);
		return r;
	}
	tls_ctx_set_verify(nc->tls, verify_server, nc);
	*out = nc;
	return 0;
}

static void
drop_channel(struct nodeclient *nc)
{
	if (nc->ch != NULL) {
		rpc_channel_close(nc->ch, NULL, NULL);
		nc->ch = NULL;
	}
}

void
nodeclient_free(struct nodeclient *nc)
{
	if (nc == NULL)
		return;
	drop_channel(nc);
	tls_ctx_free(nc->tls);
	free(nc->addr);
	free(nc);
}

int
nodeclient_set_roots(struct nodeclient *nc, STACK_OF(X509) *roots)
{
	return tls_ctx_set_roots(nc->tls, roots);
}

int
nodeclient_set_identity(struct nodeclient *nc, STACK_OF(X509) *chain,
    EVP_PKEY *key)
{
	int r;

	if ((r = tls_ctx_set_identity(nc->tls, chain, key)) != 0)
		return r;
	drop_channel(nc);	/* the next connection presents it */
	return 0;
}

/* Call through the channel, replacing it once if it failed or went. */
static int
call(struct nodeclient *nc, const char *path, const ProtobufCMessage *req,
    const uint8_t *raw, size_t rawlen, int64_t timeout_ms, rpc_unary_fn *fn,
    void *arg)
{
	int r, tries;

	for (tries = 0; tries < 2; tries++) {
		if (nc->ch == NULL && (r = rpc_channel_new(nc->loop, nc->addr,
		    nc->tls, 0, &nc->ch)) != 0)
			return r;
		r = req != NULL ? rpc_unary_start(nc->ch, path, req,
		    timeout_ms, fn, arg) : rpc_unary_start_raw(nc->ch, path,
		    raw, rawlen, timeout_ms, fn, arg);
		if (r != WICK_ERR_UNAVAILABLE)
			return r;
		drop_channel(nc);	/* failed or went away: a new one */
	}
	return r;
}

int
nodeclient_stream(struct nodeclient *nc, const char *path, int64_t timeout_ms,
    const struct rpc_client_cbs *cbs, void *arg, struct rpc_ccall **out)
{
	int r, tries;

	*out = NULL;
	for (tries = 0; tries < 2; tries++) {
		if (nc->ch == NULL && (r = rpc_channel_new(nc->loop, nc->addr,
		    nc->tls, 0, &nc->ch)) != 0)
			return r;
		r = rpc_ccall_start(nc->ch, path, NULL, 0, timeout_ms, cbs, arg,
		    out);
		if (r != WICK_ERR_UNAVAILABLE)
			return r;
		drop_channel(nc);	/* failed or went away: a new one */
	}
	return r;
}

int
nodeclient_call(struct nodeclient *nc, const char *path,
    const ProtobufCMessage *req, int64_t timeout_ms, rpc_unary_fn *fn,
    void *arg)
{
	return call(nc, path, req, NULL, 0, timeout_ms, fn, arg);
}

int
nodeclient_call_raw(struct nodeclient *nc, const char *path,
    const uint8_t *req, size_t len, int64_t timeout_ms, rpc_unary_fn *fn,
    void *arg)
{
	return call(nc, path, NULL, req, len, timeout_ms, fn, arg);
}
