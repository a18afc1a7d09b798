/*
 * client.c: the Workload API client.  Each fetch runs one call on a
 * private libuv loop on the calling thread: connect, send, take the one
 * answer (or a stream's first message), disconnect.  Nothing is shared
 * between calls, so a client may be used from any number of threads.
 */
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <uv.h>

#include "rpc.h"
#include "rpc_client.h"
#include "workload.pb-c.h"
#include "wick_int.h"

#define PATH_X509	"/SpiffeWorkloadAPI/FetchX509SVID"
#define PATH_JWT	"/SpiffeWorkloadAPI/FetchJWTSVID"
#define PATH_JWT_B	"/SpiffeWorkloadAPI/FetchJWTBundles"
#define PATH_WIT	"/SpiffeWorkloadAPI/FetchWITSVID"
#define PATH_WIT_B	"/SpiffeWorkloadAPI/FetchWITBundles"
#define DEFAULT_TIMEOUT	10000

int	 wick_wit_svid_new_hint(const char *, const char *, const char *,
	    struct wick_wit_svid **);

void
wick_free(void *p)
{
	free(p);
}

int
wick_client_new(const char *addr, int64_t timeout_ms, struct wick_client **out)
{
	struct wick_client	*c;
	const char		*path;

	*out = NULL;
	if (addr == NULL && (addr = getenv("SPIFFE_ENDPOINT_SOCKET")) == NULL)
		return WICK_E_CONFIG;
	if (strlen(addr) > WICK_MAX_ADDR)
		return WICK_E_LIMIT;
	if (strncmp(addr, "unix://", 7) == 0)
		path = addr + 7;
	else if (strncmp(addr, "unix:", 5) == 0)
		path = addr + 5;
	else if (addr[0] == '/')
		path = addr;
	else
		return WICK_E_INVALID;	/* only Unix sockets */
	if (path[0] != '/')
		return WICK_E_INVALID;
	if (timeout_ms < 0)
		return WICK_E_INVALID;
	if ((c = calloc(1, sizeof(*c))) == NULL)
		return WICK_E_ALLOC;
	if (pthread_mutex_init(&c->mu, NULL) != 0) {
		free(c);
		return WICK_E_INTERNAL;
	}
	snprintf(c->addr, sizeof(c->addr), "unix://%s", path);
	c->timeout_ms = timeout_ms != 0 ? timeout_ms : DEFAULT_TIMEOUT;
	*out = c;
	return 0;
}

void
wick_client_free(struct wick_client *c)
{
	if (c == NULL)
		return;
	pthread_mutex_destroy(&c->mu);
	free(c);
}

void
wick_client_set_error(struct wick_client *c, const char *fmt, ...)
{
	va_list ap;

	pthread_mutex_lock(&c->mu);
	va_start(ap, fmt);
	vsnprintf(c->last, sizeof(c->last), fmt, ap);
	va_end(ap);
	pthread_mutex_unlock(&c->mu);
}

const char *
wick_client_addr(const struct wick_client *c)
{
	return c->addr;
}

void
wick_client_last_error(struct wick_client *c, char *buf, size_t len)
{
	if (len == 0)
		return;
	pthread_mutex_lock(&c->mu);
	snprintf(buf, len, "%s", c->last);
	pthread_mutex_unlock(&c->mu);
}

void
wick_sigpipe_block(struct wick_sigpipe *sp)
{
	sigset_t pending;

	sigemptyset(&sp->pipe);
	sigaddset(&sp->pipe, SIGPIPE);
	sp->was_pending = sigpending(&pending) == 0 &&
	    sigismember(&pending, SIGPIPE) == 1;
	(void)pthread_sigmask(SIG_BLOCK, &sp->pipe, &sp->old);
}

void
wick_sigpipe_restore(struct wick_sigpipe *sp)
{
	static const struct timespec zero = { 0, 0 };
	sigset_t pending;

	if (!sp->was_pending && sigpending(&pending) == 0 &&
	    sigismember(&pending, SIGPIPE) == 1)
		(void)sigtimedwait(&sp->pipe, NULL, &zero);
	(void)pthread_sigmask(SIG_SETMASK, &sp->old, NULL);
}

int
wick_err_from_status(int st)
{
	switch (st) {
	case RPC_OK:
		return 0;
	case RPC_CANCELLED:
		return WICK_E_CANCELLED;
	case RPC_INVALID_ARGUMENT:
		return WICK_E_INVALID;
	case RPC_DEADLINE_EXCEEDED:
		return WICK_E_TIMEOUT;
	case RPC_NOT_FOUND:
		return WICK_E_NOT_FOUND;
	case RPC_PERMISSION_DENIED:
	case RPC_UNAUTHENTICATED:
		return WICK_E_PERM;
	case RPC_RESOURCE_EXHAUSTED:
		return WICK_E_LIMIT;
	case RPC_UNIMPLEMENTED:
	case RPC_FAILED_PRECONDITION:
		return WICK_E_UNSUPPORTED;
	case RPC_UNAVAILABLE:
		return WICK_E_UNAVAILABLE;
	default:
		return WICK_E_PROTOCOL;
	}
}

/* ---- one call ------------------------------------------------------------ */

struct call {
	struct wick_call_result	*res;
	int			 done;
	unsigned		 nmsgs;
};

static void
call_message_cb(struct rpc_ccall *c, const uint8_t *p, size_t n, void *arg)
{
	struct call *call = arg;

	if (call->nmsgs++ > 0)
		return;
	if (n > WICK_MAX_RESPONSE ||
	    (call->res->resp = malloc(n + 1)) == NULL) {
		call->res->status = RPC_RESOURCE_EXHAUSTED;
		call->nmsgs = 0;
		rpc_ccall_cancel(c);
		return;
	}
	memcpy(call->res->resp, p, n);
	call->res->len = n;
	/* Unary: it is over anyway; stream: the first message is enough. */
	rpc_ccall_cancel(c);
}

static void
call_status_cb(struct rpc_ccall *c, int status, const char *msg, void *arg)
{
	struct call *call = arg;

	(void)c;
	call->done = 1;
	if (call->nmsgs > 0 && call->res->resp != NULL) {
		call->res->status = RPC_OK;
		return;
	}
	if (call->res->status == RPC_RESOURCE_EXHAUSTED)
		return;
	call->res->status = status == RPC_OK ? RPC_INTERNAL : status;
	snprintf(call->res->msg, sizeof(call->res->msg), "%s", status ==
	    RPC_OK ? "no response message" : msg != NULL ? msg : "");
}

static const struct rpc_client_cbs call_cbs = {
	NULL, call_message_cb, call_status_cb,
};

void
wick_call_result_cleanup(struct wick_call_result *r)
{
	if (r->resp != NULL)
		OPENSSL_clear_free(r->resp, r->len + 1);
	r->resp = NULL;
	r->len = 0;
}

int
wick_call(struct wick_client *cl, const char *path, const uint8_t *req,
    size_t reqlen, struct wick_call_result *res)
{
	static const struct rpc_md md = {
		"workload.spiffe.io", (const uint8_t *)"true", 4
	};
	struct rpc_channel	*ch = NULL;
	struct rpc_ccall	*cc = NULL;
	struct call		 call;
	struct wick_sigpipe	 sp;
	uv_loop_t		 loop;
	int			 r;

	memset(res, 0, sizeof(*res));
	memset(&call, 0, sizeof(call));
	call.res = res;
	res->status = RPC_UNAVAILABLE;
	/*
	 * A write to a socket the agent closed must not kill the caller:
	 * SIGPIPE is blocked on this thread during the call, and one it
	 * raised is taken back before the mask is restored.
	 */
	wick_sigpipe_block(&sp);
	if (uv_loop_init(&loop) != 0) {
		wick_sigpipe_restore(&sp);
		return WICK_E_ALLOC;
	}
	if ((r = rpc_channel_new(&loop, cl->addr, NULL, WICK_MAX_RESPONSE,
	    &ch)) != 0) {
		snprintf(res->msg, sizeof(res->msg), "cannot connect to %.200s",
		    cl->addr);
		goto out;
	}
	if ((r = rpc_ccall_start(ch, path, &md, 1, cl->timeout_ms, &call_cbs,
	    &call, &cc)) != 0) {
		snprintf(res->msg, sizeof(res->msg), "cannot start the call");
		goto out;
	}
	if (rpc_ccall_send(cc, req, reqlen) != 0 ||
	    rpc_ccall_half_close(cc) != 0)
		rpc_ccall_cancel(cc);		/* runs call_status_cb */
	while (!call.done && uv_run(&loop, UV_RUN_ONCE) != 0)
		;
	if (!call.done) {
		res->status = RPC_INTERNAL;
		snprintf(res->msg, sizeof(res->msg), "the call never ended");
	}
out:
	if (ch != NULL)
		rpc_channel_close(ch, NULL, NULL);
	(void)uv_run(&loop, UV_RUN_DEFAULT);
	(void)uv_loop_close(&loop);
	wick_sigpipe_restore(&sp);
	if (res->status != RPC_OK) {
		wick_client_set_error(cl, "%s", res->msg);
		wick_call_result_cleanup(res);
		return wick_err_from_status(res->status);
	}
	return 0;
}

/* Pack a request and call. */
static int
call_msg(struct wick_client *cl, const char *path,
    const ProtobufCMessage *m, struct wick_call_result *res)
{
	uint8_t	*p;
	size_t	 len = protobuf_c_message_get_packed_size(m);
	int	 r;

	if ((p = malloc(len + 1)) == NULL)
		return WICK_E_ALLOC;
	protobuf_c_message_pack(m, p);
	r = wick_call(cl, path, p, len, res);
	OPENSSL_clear_free(p, len + 1);
	return r;
}

/* ---- fetches ------------------------------------------------------------- */

int
wick_fetch_x509_context(struct wick_client *cl, struct wick_x509_context **out)
{
	X509SVIDRequest		 req = X509_SVIDREQUEST__INIT;
	struct wick_call_result	 res;
	char			 why[200];
	int			 r;

	*out = NULL;
	if ((r = call_msg(cl, PATH_X509, &req.base, &res)) != 0)
		return r;
	if ((r = wick_x509_context_decode(res.resp, res.len, out, why,
	    sizeof(why))) != 0)
		wick_client_set_error(cl, "%s", why);
	wick_call_result_cleanup(&res);
	return r;
}

/* JWT-SVIDs: see jwt.c */
int	 wick_jwt_svid_make(const char *id, const char *token,
	    const char *hint, struct wick_jwt_svid **);

int
wick_fetch_jwt_svid(struct wick_client *cl, const char *const *aud,
    size_t naud, const char *spiffe_id, struct wick_jwt_svid **out)
{
	JWTSVIDRequest		 req = JWTSVIDREQUEST__INIT;
	JWTSVIDResponse		*resp = NULL;
	struct wick_call_result	 res;
	size_t			 i;
	int			 r;

	*out = NULL;
	if (aud == NULL || naud == 0 || naud > WICK_MAX_AUDIENCES)
		return WICK_E_INVALID;
	for (i = 0; i < naud; i++)
		if (aud[i] == NULL || *aud[i] == '\0')
			return WICK_E_INVALID;
	req.audience = (char **)(uintptr_t)aud;
	req.n_audience = naud;
	req.spiffe_id = spiffe_id != NULL ? (char *)(uintptr_t)spiffe_id :
	    (char *)"";
	if ((r = call_msg(cl, PATH_JWT, &req.base, &res)) != 0)
		return r;
	if ((resp = jwtsvidresponse__unpack(NULL, res.len,
	    res.resp)) == NULL || resp->n_svids == 0) {
		wick_client_set_error(cl, "malformed or empty JWTSVIDResponse");
		r = WICK_E_PROTOCOL;
	} else
		r = wick_jwt_svid_make(resp->svids[0]->spiffe_id,
		    resp->svids[0]->svid, resp->svids[0]->hint, out);
	if (resp != NULL)
		jwtsvidresponse__free_unpacked(resp, NULL);
	wick_call_result_cleanup(&res);
	return r;
}

/* A map of trust domain to JWKS bytes into a bundle set. */
static int
jwks_map(struct wick_client *cl, enum wick_bundle_kind kind, size_t n,
    const char *const *keys,
    const void *const *vals, const size_t *lens, struct wick_bundles **out)
{
	struct wick_bundles	*b = NULL;
	size_t			 i;
	int			 r;

	*out = NULL;
	if (n > WICK_MAX_BUNDLES)
		return WICK_E_LIMIT;
	if ((r = wick_bundles_new(kind, &b)) != 0)
		return r;
	for (i = 0; i < n; i++)
		if ((r = wick_bundles_add(b, keys[i], vals[i], lens[i])) != 0) {
			wick_client_set_error(cl, "bundle of %.200s: %s",
			    keys[i], wick_strerror(r));
			wick_bundles_free(b);
			return WICK_E_PROTOCOL;
		}
	*out = b;
	return 0;
}

int
wick_fetch_jwt_bundles(struct wick_client *cl, struct wick_bundles **out)
{
	JWTBundlesRequest	 req = JWTBUNDLES_REQUEST__INIT;
	JWTBundlesResponse	*resp = NULL;
	struct wick_call_result	 res;
	const char		*keys[WICK_MAX_BUNDLES];
	const void		*vals[WICK_MAX_BUNDLES];
	size_t			 lens[WICK_MAX_BUNDLES], i;
	int			 r;

	*out = NULL;
	if ((r = call_msg(cl, PATH_JWT_B, &req.base, &res)) != 0)
		return r;
	if ((resp = jwtbundles_response__unpack(NULL, res.len,
	    res.resp)) == NULL)
		r = WICK_E_PROTOCOL;
	else if (resp->n_bundles > WICK_MAX_BUNDLES)
		r = WICK_E_LIMIT;
	else {
		for (i = 0; i < resp->n_bundles; i++) {
			keys[i] = resp->bundles[i]->key;
			vals[i] = resp->bundles[i]->value.data;
			lens[i] = resp->bundles[i]->value.len;
		}
		r = jwks_map(cl, WICK_BUNDLE_JWT, resp->n_bundles, keys, vals,
		    lens, out);
	}
	if (resp != NULL)
		jwtbundles_response__free_unpacked(resp, NULL);
	wick_call_result_cleanup(&res);
	return r;
}

int
wick_fetch_wit_bundles(struct wick_client *cl, struct wick_bundles **out)
{
	WITBundlesRequest	 req = WITBUNDLES_REQUEST__INIT;
	WITBundlesResponse	*resp = NULL;
	struct wick_call_result	 res;
	const char		*keys[WICK_MAX_BUNDLES];
	const void		*vals[WICK_MAX_BUNDLES];
	size_t			 lens[WICK_MAX_BUNDLES], i;
	int			 r;

	*out = NULL;
	if ((r = call_msg(cl, PATH_WIT_B, &req.base, &res)) != 0)
		return r;
	if ((resp = witbundles_response__unpack(NULL, res.len,
	    res.resp)) == NULL)
		r = WICK_E_PROTOCOL;
	else if (resp->n_bundles > WICK_MAX_BUNDLES)
		r = WICK_E_LIMIT;
	else {
		for (i = 0; i < resp->n_bundles; i++) {
			keys[i] = resp->bundles[i]->key;
			vals[i] = resp->bundles[i]->value;
			lens[i] = strlen(resp->bundles[i]->value);
		}
		r = jwks_map(cl, WICK_BUNDLE_WIT, resp->n_bundles, keys, vals,
		    lens, out);
	}
	if (resp != NULL)
		witbundles_response__free_unpacked(resp, NULL);
	wick_call_result_cleanup(&res);
	return r;
}

int
wick_fetch_wit_svid(struct wick_client *cl, const char *spiffe_id,
    struct wick_wit_svid **out)
{
	WITSVIDRequest		 req = WITSVIDREQUEST__INIT;
	WITSVIDResponse		*resp = NULL;
	struct wick_call_result	 res;
	size_t			 i;
	int			 r;

	*out = NULL;
	req.spiffe_id = spiffe_id != NULL ? (char *)(uintptr_t)spiffe_id :
	    (char *)"";
	if ((r = call_msg(cl, PATH_WIT, &req.base, &res)) != 0)
		return r;
	if ((resp = witsvidresponse__unpack(NULL, res.len,
	    res.resp)) == NULL || resp->n_svids == 0) {
		wick_client_set_error(cl, "malformed or empty WITSVIDResponse");
		r = WICK_E_PROTOCOL;
	} else if ((r = wick_wit_svid_new_hint(resp->svids[0]->wit_svid,
	    resp->svids[0]->wit_svid_key, resp->svids[0]->hint, out)) != 0) {
		wick_client_set_error(cl, "the agent's WIT-SVID or its key is "
		    "malformed");
		r = WICK_E_PROTOCOL;
	}
	if (resp != NULL) {
		for (i = 0; i < resp->n_svids; i++)
			if (resp->svids[i]->wit_svid_key != NULL)
				OPENSSL_cleanse(resp->svids[i]->wit_svid_key,
				    strlen(resp->svids[i]->wit_svid_key));
		witsvidresponse__free_unpacked(resp, NULL);
	}
	wick_call_result_cleanup(&res);
	return r;
}
