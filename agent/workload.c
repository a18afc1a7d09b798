/*
 * workload.c: the SPIFFE Workload API on the agent's public Unix socket.
 *
 * Every call under /SpiffeWorkloadAPI/ must carry "workload.spiffe.io:
 * true" (INVALID_ARGUMENT otherwise).  The caller is attested at the
 * start of each call from its SO_PEERCRED credentials, and the process
 * must still be the same one afterwards (a binary not hashed before is
 * hashed on the thread pool while the call waits).  Streams get their
 * complete state at once and again whenever it changes (rotation, entry
 * or bundle change); a stream whose caller no longer has an identity ends
 * with PERMISSION_DENIED.  gRPC health checking runs on the same socket.
 * What it serves it reads from the cache (cache.h) through its functions.
 */
#include <sys/stat.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include <jansson.h>

#include "attestor_docker.h"
#include "buf.h"
#include "bundle.h"
#include "encode.h"
#include "health.pb-c.h"
#include "jose.h"
#include "jwtcache.h"
#include "log.h"
#include "pkey.h"
#include "secpath.h"
#include "spiffeid.h"
#include "workload.h"
#include "workload.pb-c.h"
#include "x509.h"
#include "xmalloc.h"

#define WL_MAX_AUDIENCES	32
#define WL_MAX_REQUEST		(64 * 1024)	/* one request message */
#define WL_CONN_BUDGET		(256 * 1024)	/* held per connection */
#define WL_UID_BUDGET		(1024 * 1024)	/* ... per uid */
#define WL_UID_CONNS		256		/* connections per uid */
/* In all: a node's workloads, each with a watch or two open, and those
 * that connect anew for every fetch (a closed connection is counted
 * until the loop reads its end). */
#define WL_MAX_CONNS		4096
#define WL_MAX_OUTPUT		(64 * 1024)	/* queued per connection */
#define WL_BUDGET		(16 * 1024 * 1024) /* ... in all */
#define WL_HASH_ROUNDS		3	/* hashings for one call */
#define WL_SOCKET_DIR_MODE	0755	/* the socket's directory */
#define WL_NMETHODS		8
#define WL_JWT_FAST		16	/* identities from the cache */
/* ValidateJWTSVID's signature checks run off the loop, this many at
 * once (the requests waiting for them are charged to their callers'
 * budgets). */
#define WL_VALIDATE_JOBS	2

enum wl_kind {
	WL_X509 = 0,
	WL_X509_BUNDLES,
	WL_JWT_BUNDLES,
	WL_WIT,
	WL_WIT_BUNDLES,
	WL_UNARY,
};

struct jwt_req;
struct wl_hash;
struct wl_stream;

/* A method's handler of its request message. */
typedef void wl_handler_fn(struct rpc_call *, const uint8_t *, size_t);

struct workload {
	uv_loop_t			*loop;
	const struct workload_opts	*o;
	struct cache			*cache;
	const struct workload_ops	*ops;
	struct rpc_server		*rs;
	struct rpc_budget		 budget;
	struct rpc_method		 methods[WL_NMETHODS];
	void				(*drained)(void *);
	void				*drained_arg;
	struct wl_hash			*hashing;	/* binaries */
	struct wl_validate		*vq_head;	/* waiting to run */
	struct wl_validate		*vq_tail;
	size_t				 nvalidating;	/* running */
	struct jwtcache			*verified;	/* tokens whose
							 * signature held */
	int				 down;		/* server gone */
};

/* Per-call state: the caller's selectors; a stream subscribes to the
 * cache. */
struct wl_stream {
	struct cache_sub	 sub;		/* first: stream_changed() */
	struct workload		*w;
	struct rpc_call		*call;
	enum wl_kind		 kind;
	struct selector_set	 sel;
	int			 attested;
	int			 attesting;	/* the docker attestor works */
	struct docker_req	*dreq;
	struct wl_hash		*hash;		/* its binary being hashed */
	int			 hash_rounds;
	/* The request message that came while attesting, and its handler
	 * (may hold a token: wiped). */
	wl_handler_fn		*handler;
	uint8_t			*pending;
	size_t			 npending;
	int			 active;	/* request read, on the list */
	int			 sent;		/* first message went out */
	int			 again;		/* queue was full */
	char			*spiffe_id;	/* WIT filter */
	struct jwt_req		*jwt;		/* FetchJWTSVID waiting */
	struct wl_validate	*validate;	/* its check off the loop */
	uint8_t			 last[32];	/* SHA-256 of the last send */
};

/* ---- the allocations of one response, freed together ------------------- */

/*
 * Every allocation of a response being built, freed by ar_free.  Requests
 * come from workloads, so running short of memory is an answer
 * (RESOURCE_EXHAUSTED), never an exit: once an allocation failed, ar_alloc
 * returns NULL and the arena remembers it.
 */
struct arena {
	void	**p;
	size_t	  n, cap;
	int	  failed;
};

/* Track p (or free it and fail). */
static int
ar_keep(struct arena *ar, void *p)
{
	void	**v;
	size_t	  cap;

	if (p == NULL || ar->failed)
		goto fail;
	if (ar->n == ar->cap) {
		cap = ar->cap == 0 ? 32 : ar->cap * 2;
		if ((v = reallocarray(ar->p, cap, sizeof(*v))) == NULL)
			goto fail;
		ar->p = v;
		ar->cap = cap;
	}
	ar->p[ar->n++] = p;
	return 0;
fail:
	free(p);
	ar->failed = 1;
	return WICK_ERR_ALLOC;
}

static void *
ar_alloc(struct arena *ar, size_t n)
{
	void *p = ar->failed ? NULL : calloc(1, n + 1);

	return ar_keep(ar, p) == 0 ? p : NULL;
}

static char *
ar_strdup(struct arena *ar, const char *s)
{
	size_t	 n = strlen(s);
	char	*p;

	if ((p = ar_alloc(ar, n)) != NULL)
		memcpy(p, s, n);
	return p;
}

static void
ar_free(struct arena *ar)
{
	size_t i;

	for (i = 0; i < ar->n; i++)
		free(ar->p[i]);
	free(ar->p);
	memset(ar, 0, sizeof(*ar));
}

/* A buffer's bytes kept until ar_free (bundle DER). */
static int
ar_bytes(struct arena *ar, struct buf *b, ProtobufCBinaryData *out)
{
	uint8_t	*p = NULL;
	size_t	 n = 0;

	out->data = NULL;
	out->len = 0;
	if (buf_steal(b, &p, &n) != 0)
		p = NULL;
	buf_cleanup(b);
	if (ar_keep(ar, p) != 0)
		return WICK_ERR_ALLOC;
	out->data = p;
	out->len = n;
	return 0;
}

/* ---- sending ------------------------------------------------------------ */

/*
 * Pack and send; for streams skip a message equal to the last one, and
 * hold at most one: while the last is still queued (a workload that does
 * not read), the stream is marked and gets its newest state once the
 * queue drained.
 */
static int
send_msg(struct wl_stream *s, const ProtobufCMessage *m)
{
	size_t		 len = protobuf_c_message_get_packed_size(m);
	uint8_t		*p, md[32];
	unsigned	 mdlen;
	int		 r;

	if ((p = malloc(len + 1)) == NULL)
		return WICK_ERR_ALLOC;
	protobuf_c_message_pack(m, p);
	if (s->kind == WL_UNARY) {
		/* One answer: nothing to compare it with. */
		r = rpc_call_send_message(s->call, p, len);
		freezero(p, len + 1);
		if (r == WICK_ERR_AGAIN)
			s->again = 1;
		return r == WICK_ERR_AGAIN ? 0 : r;
	}
	(void)EVP_Digest(p, len, md, &mdlen, EVP_sha256(), NULL);
	if (s->sent && memcmp(md, s->last, 32) == 0) {
		freezero(p, len + 1);
		return 0;
	}
	r = rpc_call_send_latest(s->call, p, len);
	freezero(p, len + 1);	/* may hold private keys */
	if (r == WICK_ERR_AGAIN) {
		s->again = 1;
		return 0;
	}
	if (r != 0)
		return r;
	memcpy(s->last, md, 32);
	s->sent = 1;
	return 0;
}

/* The caller's own trust domain bundle and those its entries federate
 * with, each once. */
static size_t
caller_bundles(struct workload *w, struct cache_entry **v, size_t n,
    struct bundle **out, size_t max)
{
	struct bundle	*b;
	size_t		 i, j, k, nb = 0;

	if ((b = cache_bundle(w->cache)) != NULL)
		out[nb++] = b;
	for (i = 0; i < n; i++)
		for (j = 0; j < v[i]->nfederates_with; j++) {
			if ((b = cache_bundle_for(w->cache,
			    v[i]->federates_with[j])) == NULL)
				continue;
			for (k = 0; k < nb && out[k] != b; k++)
				;
			if (k == nb && nb < max)
				out[nb++] = b;
		}
	return nb;
}

static int
td_id(const struct bundle *b, struct arena *ar, char **out)
{
	char id[SPIFFEID_MAX_TD_LEN + 16];

	bundle_td_id(b, id, sizeof(id));
	return (*out = ar_strdup(ar, id)) != NULL ? 0 : WICK_ERR_ALLOC;
}

/* A bundle's X.509 authorities as concatenated DER, kept by the arena. */
static int
ar_bundle_der(struct arena *ar, struct bundle *bundle,
    ProtobufCBinaryData *out)
{
	struct buf	b;

	buf_init(&b, 1024 * 1024);
	if (bundle_x509_der(bundle, &b) != 0) {
		buf_cleanup(&b);
		return WICK_ERR_INTERNAL;
	}
	return ar_bytes(ar, &b, out);
}

/* ---- X.509 -------------------------------------------------------------- */

static int
x509_response(struct wl_stream *s, struct cache_entry **v, size_t n)
{
	X509SVIDResponse			 resp = X509_SVIDRESPONSE__INIT;
	X509SVIDResponse__FederatedBundlesEntry	*fe;
	struct bundle				*bundles[CACHE_MAX_FEDERATED + 1];
	struct arena				 ar;
	X509SVID				*x;
	size_t					 i, nb;
	int					 r = WICK_ERR_ALLOC;

	memset(&ar, 0, sizeof(ar));
	if ((resp.svids = ar_alloc(&ar, n * sizeof(*resp.svids))) == NULL)
		goto out;
	for (i = 0; i < n; i++) {
		/* Borrowed: the entry keeps its DER until the send is done. */
		if ((x = ar_alloc(&ar, sizeof(*x))) == NULL)
			goto out;
		x509_svid__init(x);
		x->spiffe_id = v[i]->spiffe_id;
		x->hint = v[i]->hint;
		x->x509_svid.data = v[i]->chain_der;
		x->x509_svid.len = v[i]->chain_len;
		x->x509_svid_key.data = v[i]->key_der;
		x->x509_svid_key.len = v[i]->key_len;
		x->bundle.data = (uint8_t *)cache_bundle_der(s->w->cache,
		    &x->bundle.len);
		resp.svids[resp.n_svids++] = x;
	}
	nb = caller_bundles(s->w, v, n, bundles, CACHE_MAX_FEDERATED + 1);
	if ((resp.federated_bundles = ar_alloc(&ar, nb *
	    sizeof(*resp.federated_bundles))) == NULL)
		goto out;
	for (i = 1; i < nb; i++) {
		/* A trust domain known by its JWT keys only: nothing here
		 * for an X.509 peer to trust, so no bundle (as redacted). */
		if (sk_X509_num(bundles[i]->x509) <= 0)
			continue;
		if ((fe = ar_alloc(&ar, sizeof(*fe))) == NULL)
			goto out;
		x509_svidresponse__federated_bundles_entry__init(fe);
		if ((r = td_id(bundles[i], &ar, &fe->key)) != 0 ||
		    (r = ar_bundle_der(&ar, bundles[i], &fe->value)) != 0)
			goto out;
		resp.federated_bundles[resp.n_federated_bundles++] = fe;
	}
	r = send_msg(s, &resp.base);
out:
	ar_free(&ar);
	return r;
}

static int
x509_bundles_response(struct wl_stream *s, struct cache_entry **v, size_t n)
{
	X509BundlesResponse			 resp = X509_BUNDLES_RESPONSE__INIT;
	X509BundlesResponse__BundlesEntry	*be;
	struct bundle				*bundles[CACHE_MAX_FEDERATED + 1];
	struct arena				 ar;
	size_t					 i, nb;
	int					 r = WICK_ERR_ALLOC;

	memset(&ar, 0, sizeof(ar));
	nb = caller_bundles(s->w, v, n, bundles, CACHE_MAX_FEDERATED + 1);
	if ((resp.bundles = ar_alloc(&ar, nb * sizeof(*resp.bundles))) == NULL)
		goto out;
	for (i = 0; i < nb; i++) {
		if (sk_X509_num(bundles[i]->x509) <= 0)
			continue;	/* JWT keys only, as above */
		if ((be = ar_alloc(&ar, sizeof(*be))) == NULL)
			goto out;
		x509_bundles_response__bundles_entry__init(be);
		if ((r = td_id(bundles[i], &ar, &be->key)) != 0 ||
		    (r = ar_bundle_der(&ar, bundles[i], &be->value)) != 0)
			goto out;
		resp.bundles[resp.n_bundles++] = be;
	}
	r = send_msg(s, &resp.base);
out:
	ar_free(&ar);
	return r;
}

static int
jwks_response(struct wl_stream *s, struct cache_entry **v, size_t n,
    enum bundle_use use)
{
	JWTBundlesResponse			 jr = JWTBUNDLES_RESPONSE__INIT;
	WITBundlesResponse			 wr = WITBUNDLES_RESPONSE__INIT;
	JWTBundlesResponse__BundlesEntry	*je;
	WITBundlesResponse__BundlesEntry	*we;
	struct bundle				*bundles[CACHE_MAX_FEDERATED + 1];
	struct arena				 ar;
	char					*jwks;
	size_t					 i, nb;
	int					 r = WICK_ERR_ALLOC;

	memset(&ar, 0, sizeof(ar));
	nb = caller_bundles(s->w, v, n, bundles, CACHE_MAX_FEDERATED + 1);
	if ((jr.bundles = ar_alloc(&ar, nb * sizeof(*jr.bundles))) == NULL ||
	    (wr.bundles = ar_alloc(&ar, nb * sizeof(*wr.bundles))) == NULL)
		goto out;
	for (i = 0; i < nb; i++) {
		if ((r = bundle_jwks(bundles[i], use, &jwks)) != 0) {
			if (r != WICK_ERR_ALLOC)
				r = WICK_ERR_INTERNAL;
			goto out;
		}
		/* The arena owns the document from here. */
		if ((r = ar_keep(&ar, jwks)) != 0)
			goto out;
		if (use == BUNDLE_USE_JWT) {
			if ((je = ar_alloc(&ar, sizeof(*je))) == NULL) {
				r = WICK_ERR_ALLOC;
				goto out;
			}
			jwtbundles_response__bundles_entry__init(je);
			if ((r = td_id(bundles[i], &ar, &je->key)) != 0)
				goto out;
			je->value.data = (uint8_t *)jwks;
			je->value.len = strlen(jwks);
			jr.bundles[jr.n_bundles++] = je;
		} else {
			if ((we = ar_alloc(&ar, sizeof(*we))) == NULL) {
				r = WICK_ERR_ALLOC;
				goto out;
			}
			witbundles_response__bundles_entry__init(we);
			if ((r = td_id(bundles[i], &ar, &we->key)) != 0)
				goto out;
			we->value = jwks;
			wr.bundles[wr.n_bundles++] = we;
		}
	}
	r = send_msg(s, use == BUNDLE_USE_JWT ? &jr.base : &wr.base);
out:
	ar_free(&ar);
	return r;
}

static int
wit_response(struct wl_stream *s, struct cache_entry **v, size_t n)
{
	WITSVIDResponse	 resp = WITSVIDRESPONSE__INIT;
	struct arena	 ar;
	WITSVID		*w;
	size_t		 i;
	int		 r = WICK_ERR_ALLOC;

	memset(&ar, 0, sizeof(ar));
	if ((resp.svids = ar_alloc(&ar, n * sizeof(*resp.svids))) == NULL)
		goto out;
	for (i = 0; i < n; i++) {
		if (v[i]->wit == NULL)
			continue;
		if ((w = ar_alloc(&ar, sizeof(*w))) == NULL)
			goto out;
		witsvid__init(w);
		w->spiffe_id = v[i]->spiffe_id;
		w->wit_svid = v[i]->wit;
		w->wit_svid_key = v[i]->wit_key;
		w->hint = v[i]->hint;
		resp.svids[resp.n_svids++] = w;
	}
	r = resp.n_svids == 0 ? 0 : send_msg(s, &resp.base);
out:
	ar_free(&ar);
	return r;
}

/*
 * Send the stream's current state.  Returns 0 (sent or nothing to send
 * yet) or finishes the call.
 */
static void
stream_update(struct wl_stream *s)
{
	struct workload		 *wl = s->w;
	struct cache_entry	**v = NULL, **w;
	size_t			  n = 0, i, k;
	int			  r = 0;

	if (!s->active || s->call == NULL)
		return;
	if (cache_match(wl->cache, &s->sel, 0, &v, &n) != 0) {
		(void)rpc_call_finish(s->call, RPC_RESOURCE_EXHAUSTED,
		    "out of memory");
		return;
	}
	if (n == 0 && !(wl->o->allow_unauthenticated_verifiers &&
	    (s->kind == WL_X509_BUNDLES || s->kind == WL_JWT_BUNDLES ||
	    s->kind == WL_WIT_BUNDLES))) {
		free(v);
		(void)rpc_call_finish(s->call, RPC_PERMISSION_DENIED,
		    "no identity issued");
		return;
	}
	switch (s->kind) {
	case WL_X509:
		/* Only entries whose SVID is here; wait for the rest. */
		if ((w = calloc(n + 1, sizeof(*w))) == NULL) {
			r = WICK_ERR_ALLOC;
			break;
		}
		for (i = k = 0; i < n; i++)
			if (v[i]->chain_der != NULL)
				w[k++] = v[i];
		if (k > 0)
			r = x509_response(s, w, k);
		free(w);
		break;
	case WL_X509_BUNDLES:
		r = x509_bundles_response(s, v, n);
		break;
	case WL_JWT_BUNDLES:
		r = jwks_response(s, v, n, BUNDLE_USE_JWT);
		break;
	case WL_WIT_BUNDLES:
		r = jwks_response(s, v, n, BUNDLE_USE_WIT);
		break;
	case WL_WIT:
		if ((w = calloc(n + 1, sizeof(*w))) == NULL) {
			r = WICK_ERR_ALLOC;
			break;
		}
		for (i = k = 0; i < n; i++)
			if (s->spiffe_id == NULL || strcmp(s->spiffe_id,
			    v[i]->spiffe_id) == 0) {
				wl->ops->want_wit(wl->ops->arg, v[i]);
				w[k++] = v[i];
			}
		/* The first answer waits for every WIT asked for at once
		 * (a failed fetch clears pending, so this never hangs). */
		for (i = 0; !s->sent && i < k; i++)
			if (w[i]->wit == NULL && w[i]->wit_pending)
				break;
		if (i < k) {
			free(w);
			free(v);
			return;
		}
		if (k == 0) {
			free(w);
			free(v);
			(void)rpc_call_finish(s->call, RPC_PERMISSION_DENIED,
			    "no identity issued");
			return;
		}
		r = wit_response(s, w, k);
		free(w);
		break;
	default:
		break;
	}
	free(v);
	if (r == WICK_ERR_ALLOC)
		(void)rpc_call_finish(s->call, RPC_RESOURCE_EXHAUSTED,
		    "out of memory");
	else if (r != 0)
		(void)rpc_call_finish(s->call, RPC_UNAVAILABLE,
		    "could not serialize response");
}

/* The cache changed: the stream gets its new state. */
static void
stream_changed(struct cache_sub *sub)
{
	stream_update((struct wl_stream *)sub);
}

/* ---- call start and end ------------------------------------------------- */

static void	wl_attest_rest(struct wl_stream *);

/* Attestation failed: say why (rate-limited) and end the call. */
static void
wl_attest_failed(struct wl_stream *s, const char *attestor, int r,
    const char *why)
{
	static struct log_ratelimit	 rl = LOG_RATELIMIT_DEFAULT;

	log_warn_rl(&rl, "workload attestation of pid %ld failed (%s): %s",
	    (long)rpc_call_peer(s->call)->pid, attestor, why);
	s->w->ops->attested(s->w->ops->arg, 0);
	/* The caller is not who connected: refuse it. */
	if (r == WICK_ERR_PERM)
		(void)rpc_call_finish(s->call, RPC_PERMISSION_DENIED, "caller "
		    "no longer matches the credentials it connected with");
	else
		(void)rpc_call_finish(s->call, RPC_UNAVAILABLE,
		    "workload attestation failed");
}

/*
 * A binary being hashed off the loop, and the calls that wait for it: a
 * burst of new workloads running one binary hashes it once.  A call that
 * ends while waiting leaves a NULL in waiters.
 */
struct wl_hash {
	uv_work_t		 req;
	struct wl_hash		*next;		/* in the workload's list */
	struct workload		*w;
	const struct attestor	*at;
	struct attestor_hash	*job;
	struct wl_stream	**waiters;
	size_t			 nwaiters;
	size_t			 capwaiters;
};

/* Every connection closed and no work out: the workload goes. */
static void
wl_finish(struct workload *w)
{
	void	(*drained)(void *) = w->drained;
	void	*darg = w->drained_arg;

	jwtcache_free(w->verified);
	free(w);
	if (drained != NULL)
		drained(darg);
}

static void
wl_hash_work_cb(uv_work_t *req)
{
	struct wl_hash *h = req->data;

	attestor_unix_hash_run(h->job);
}

/* A call no longer waits for its binary's digest. */
static void
wl_hash_leave(struct wl_stream *s)
{
	struct wl_hash	*h = s->hash;
	size_t		 i;

	for (i = 0; i < h->nwaiters; i++)
		if (h->waiters[i] == s)
			h->waiters[i] = NULL;
	s->hash = NULL;
}

static int
wl_hash_wait(struct wl_hash *h, struct wl_stream *s)
{
	struct wl_stream	**v;
	size_t			  cap;

	if (h->nwaiters == h->capwaiters) {
		cap = h->capwaiters == 0 ? 4 : h->capwaiters * 2;
		if ((v = reallocarray(h->waiters, cap, sizeof(*v))) == NULL)
			return WICK_ERR_ALLOC;
		h->waiters = v;
		h->capwaiters = cap;
	}
	h->waiters[h->nwaiters++] = s;
	s->hash = h;
	s->attesting = 1;
	return 0;
}

static void
wl_hash_after_cb(uv_work_t *req, int status)
{
	struct wl_hash		*h = req->data, **pp;
	struct workload		*w = h->w;
	struct wl_stream	*s;
	const struct attestor	*at = h->at;
	char			 why[256] = "";
	size_t			 i;
	int			 r;

	for (pp = &w->hashing; *pp != h; pp = &(*pp)->next)
		;
	*pp = h->next;
	if (status != 0) {
		attestor_unix_hash_free(h->job);
		snprintf(why, sizeof(why), "hashing cancelled");
		r = WICK_ERR_CANCELLED;
	} else
		r = attestor_unix_hash_done(at, h->job, why, sizeof(why));
	/* A waiter's call may end in what follows (and leave h). */
	for (i = 0; i < h->nwaiters; i++) {
		if ((s = h->waiters[i]) == NULL)
			continue;
		h->waiters[i] = NULL;
		s->hash = NULL;
		if (r != 0) {
			s->attesting = 0;
			if (s->pending != NULL)
				freezero(s->pending, s->npending + 1);
			s->pending = NULL;
			s->handler = NULL;
			wl_attest_failed(s, at->name, r, why);
		} else
			wl_attest_rest(s);
	}
	free(h->waiters);
	free(h);
	if (w->down && w->hashing == NULL && w->nvalidating == 0)
		wl_finish(w);
}

/* Hash the caller's binary on the thread pool (or wait for it being
 * hashed already), then attest again. */
static int
wl_hash_start(struct wl_stream *s, const struct attestor *at, char *why,
    size_t whylen)
{
	struct workload		*w = s->w;
	struct attestor_hash	*job;
	struct wl_hash		*h;
	int			 r;

	if (++s->hash_rounds > WL_HASH_ROUNDS) {
		snprintf(why, whylen, "the workload's binary keeps changing");
		return WICK_ERR_STATE;
	}
	if ((r = attestor_unix_hash_new(at, &rpc_call_peer(s->call)->cred,
	    &job, why, whylen)) != 0)
		return r;
	for (h = w->hashing; h != NULL; h = h->next)
		if (h->at == at && attestor_unix_hash_same(h->job, job))
			break;
	if (h != NULL) {
		attestor_unix_hash_free(job);
		if ((r = wl_hash_wait(h, s)) != 0)
			snprintf(why, whylen, "out of memory");
		return r;
	}
	if ((h = calloc(1, sizeof(*h))) == NULL ||
	    wl_hash_wait(h, s) != 0) {
		if (h != NULL)
			free(h);
		attestor_unix_hash_free(job);
		s->hash = NULL;
		snprintf(why, whylen, "out of memory");
		return WICK_ERR_ALLOC;
	}
	h->req.data = h;
	h->w = w;
	h->at = at;
	h->job = job;
	if (uv_queue_work(w->loop, &h->req, wl_hash_work_cb,
	    wl_hash_after_cb) != 0) {
		attestor_unix_hash_free(job);
		free(h->waiters);
		free(h);
		s->hash = NULL;
		snprintf(why, whylen, "cannot queue the hashing");
		return WICK_ERR_INTERNAL;
	}
	h->next = w->hashing;
	w->hashing = h;
	log_debug("pid %ld: hashing its binary off the loop",
	    (long)rpc_call_peer(s->call)->pid);
	return 0;
}

/* Run the synchronous attestors; then serve what waited. */
static void
wl_attest_rest(struct wl_stream *s)
{
	static struct log_ratelimit	 rl = LOG_RATELIMIT_DEFAULT;
	const struct workload_opts	*o = s->w->o;
	const struct rpc_peer		*p = rpc_call_peer(s->call);
	wl_handler_fn			*fn;
	uint8_t				*msg;
	size_t				 i, n;
	unsigned int			 flags = 0;
	char				 why[256] = "";
	int				 r;

	/*
	 * A stream keeps these selectors while entries come and go, so it
	 * needs all of them; a unary call is answered from the entries held
	 * now, and when none names a supplementary group, the caller's
	 * groups cannot change its answer.  (An entry naming one that comes
	 * before the call's request does can only be missed, not wrongly
	 * matched: fewer selectors match fewer entries.)
	 */
	if (rpc_call_kind(s->call) == RPC_KIND_UNARY &&
	    !cache_names_groups(s->w->cache))
		flags |= ATTEST_NO_GROUPS;
	for (i = 0; i < o->nattestors; i++) {
		r = o->attestors[i].attest(&o->attestors[i], &p->cred, flags,
		    &s->sel, why, sizeof(why));
		/* A binary not hashed yet: on the thread pool, then again. */
		if (r == WICK_ERR_AGAIN && (r = wl_hash_start(s,
		    &o->attestors[i], why, sizeof(why))) == 0)
			return;
		if (r != 0)
			break;
	}
	/* What waited is taken before the call may end (and s go). */
	fn = s->handler;
	msg = s->pending;
	n = s->npending;
	s->attesting = 0;
	s->handler = NULL;
	s->pending = NULL;
	if (i < o->nattestors) {
		wl_attest_failed(s, o->attestors[i].name, r, why);
		goto out;
	}
	/* Without the unix attestor nothing else checked that the caller
	 * is still the process that connected (the docker attestor read its
	 * cgroup while it was). */
	if (o->nattestors == 0 && peercred_check_alive(&p->cred) != 0) {
		log_warn_rl(&rl, "workload attestation of pid %ld failed: the "
		    "process is gone or was replaced", (long)p->pid);
		s->w->ops->attested(s->w->ops->arg, 0);
		(void)rpc_call_finish(s->call, RPC_UNAVAILABLE,
		    "workload attestation failed");
		goto out;
	}
	s->attested = 1;
	s->w->ops->attested(s->w->ops->arg, 1);
	if (fn != NULL)
		fn(s->call, msg, n);
out:
	if (msg != NULL)
		freezero(msg, n + 1);
}

/*
 * The docker attestor answered (r 0: its selectors are in s->sel, none
 * for a process in no container).  An engine that failed costs only its
 * own selectors: the workload gets what the others find, as SPIRE does.
 */
static void
wl_docker_done(void *arg, int r, const char *why)
{
	static struct log_ratelimit	 rl = LOG_RATELIMIT_DEFAULT;
	struct wl_stream		*s = arg;

	s->dreq = NULL;
	if (r == WICK_ERR_CANCELLED) {
		/* The agent is stopping (the server connection is gone):
		 * nothing can be served now. */
		(void)rpc_call_finish(s->call, RPC_UNAVAILABLE,
		    "the agent is stopping");
		return;
	}
	if (r != 0)
		log_warn_rl(&rl, "docker attestor, pid %ld: %s; serving the "
		    "other attestors' selectors",
		    (long)rpc_call_peer(s->call)->pid, why);
	wl_attest_rest(s);
}

/*
 * A request message before the caller is attested waits for it: 1 when
 * the handler must return now (the message waits, or the call has no
 * stream or failed), 0 to go on.
 */
static int
wl_defer(struct rpc_call *call, const uint8_t *p, size_t n,
    wl_handler_fn *fn)
{
	struct wl_stream *s = rpc_call_data(call);
	const char	 *what;
	char		  msg[128];

	if (s == NULL)
		return 1;
	if (s->attested)
		return 0;
	if (!s->attesting || s->handler != NULL)
		return 1;
	/* The copy is held for the caller: charged like request bytes. */
	if (rpc_call_hold(call, n + 1, &what) != 0) {
		snprintf(msg, sizeof(msg), "too many requests waiting for "
		    "attestation (the %s budget)",
		    what != NULL ? what : "call");
		(void)rpc_call_finish(call, RPC_RESOURCE_EXHAUSTED, msg);
		return 1;
	}
	if ((s->pending = malloc(n + 1)) == NULL) {
		(void)rpc_call_finish(call, RPC_RESOURCE_EXHAUSTED,
		    "out of memory");
		return 1;
	}
	if (n > 0)
		memcpy(s->pending, p, n);
	s->npending = n;
	s->handler = fn;
	return 1;
}

static void
wl_start(struct rpc_call *call, void *arg)
{
	struct workload			*w = arg;
	const struct rpc_peer		*p = rpc_call_peer(call);
	const struct rpc_md		*md;
	const char			*path = rpc_call_path(call);
	struct wl_stream		*s;

	if ((s = calloc(1, sizeof(*s))) == NULL) {
		(void)rpc_call_finish(call, RPC_RESOURCE_EXHAUSTED,
		    "out of memory");
		return;
	}
	s->w = w;
	s->sub.changed = stream_changed;
	s->call = call;
	s->kind = WL_UNARY;
	selector_set_init(&s->sel);
	rpc_call_set_data(call, s);
	if (strncmp(path, "/SpiffeWorkloadAPI/", 19) == 0) {
		md = rpc_call_md_get(call, "workload.spiffe.io");
		if (md == NULL || md->len != 4 || memcmp(md->value, "true",
		    4) != 0) {
			(void)rpc_call_finish(call, RPC_INVALID_ARGUMENT,
			    "security header missing from request");
			return;
		}
	}
	if (!p->is_unix) {
		(void)rpc_call_finish(call, RPC_PERMISSION_DENIED,
		    "callers must use the Unix socket");
		return;
	}
	/*
	 * The docker attestor asks the container engine and answers later;
	 * the others run when it has (so their check that the caller is
	 * still the process that connected covers the wait).
	 */
	if (w->o->docker != NULL) {
		s->attesting = 1;
		if (docker_attest(w->o->docker, &p->cred, &s->sel,
		    wl_docker_done, s, &s->dreq) == 0)
			return;
		/* Could not even ask: as if the engine had failed. */
		s->dreq = NULL;
		wl_docker_done(s, WICK_ERR_INTERNAL, "cannot start a request");
		return;
	}
	wl_attest_rest(s);
}

static void	jwt_req_detach(struct jwt_req *);
static void	validate_detach(struct wl_validate *);

static void
wl_done(struct rpc_call *call, enum rpc_end why)
{
	struct wl_stream *s = rpc_call_data(call);

	if (s == NULL)
		return;
	/* Work still running for the call (a JWT request waiting for the
	 * server, a signature check): its answer goes nowhere. */
	if (s->jwt != NULL)
		jwt_req_detach(s->jwt);
	if (s->validate != NULL)
		validate_detach(s->validate);
	if (s->active)
		cache_unsubscribe(s->w->cache, &s->sub);
	if (s->dreq != NULL)
		docker_cancel(s->dreq);
	if (s->hash != NULL)
		wl_hash_leave(s);	/* the digest is still kept */
	if (s->pending != NULL)
		freezero(s->pending, s->npending + 1);
	selector_set_cleanup(&s->sel);
	free(s->spiffe_id);
	free(s);
}

static void
wl_writable(struct rpc_call *call)
{
	struct wl_stream *s = rpc_call_data(call);

	if (s != NULL && s->again) {
		s->again = 0;
		s->sent = 0;
		stream_update(s);
	}
}

/* Start a stream of kind after its (empty) request. */
static void
stream_begin(struct rpc_call *call, enum wl_kind kind)
{
	struct wl_stream *s = rpc_call_data(call);

	if (s == NULL || !s->attested)
		return;
	s->kind = kind;
	s->active = 1;
	cache_subscribe(s->w->cache, &s->sub);
	stream_update(s);
}

static void
m_fetch_x509(struct rpc_call *call, const uint8_t *p, size_t n)
{
	if (wl_defer(call, p, n, m_fetch_x509))
		return;
	stream_begin(call, WL_X509);
}

static void
m_fetch_x509_bundles(struct rpc_call *call, const uint8_t *p, size_t n)
{
	if (wl_defer(call, p, n, m_fetch_x509_bundles))
		return;
	stream_begin(call, WL_X509_BUNDLES);
}

static void
m_fetch_jwt_bundles(struct rpc_call *call, const uint8_t *p, size_t n)
{
	if (wl_defer(call, p, n, m_fetch_jwt_bundles))
		return;
	stream_begin(call, WL_JWT_BUNDLES);
}

static void
m_fetch_wit_bundles(struct rpc_call *call, const uint8_t *p, size_t n)
{
	if (wl_defer(call, p, n, m_fetch_wit_bundles))
		return;
	stream_begin(call, WL_WIT_BUNDLES);
}

static int
check_spiffe_id(struct rpc_call *call, const char *id)
{
	struct spiffeid	 sid;
	const char	*why;

	if (*id == '\0')
		return 0;
	if (spiffeid_parse(id, 0, &sid, &why) != 0) {
		char msg[300];

		snprintf(msg, sizeof(msg), "invalid requested SPIFFE ID: %s",
		    why);
		(void)rpc_call_finish(call, RPC_INVALID_ARGUMENT, msg);
		return -1;
	}
	return 0;
}

static void
m_fetch_wit(struct rpc_call *call, const uint8_t *p, size_t n)
{
	struct wl_stream	*s = rpc_call_data(call);
	WITSVIDRequest		*req;

	if (wl_defer(call, p, n, m_fetch_wit))
		return;
	if ((req = witsvidrequest__unpack(NULL, n, p)) == NULL) {
		(void)rpc_call_finish(call, RPC_INVALID_ARGUMENT,
		    "malformed WITSVIDRequest");
		return;
	}
	if (check_spiffe_id(call, req->spiffe_id) == 0) {
		if (*req->spiffe_id != '\0' &&
		    (s->spiffe_id = strdup(req->spiffe_id)) == NULL)
			(void)rpc_call_finish(call, RPC_RESOURCE_EXHAUSTED,
			    "out of memory");
		else
			stream_begin(call, WL_WIT);
	}
	witsvidrequest__free_unpacked(req, NULL);
}

/* ---- FetchJWTSVID ------------------------------------------------------- */

struct jwt_slot {
	struct jwt_req	*jr;
	size_t		 i;
};

struct jwt_req {
	struct rpc_call	 *call;		/* NULL once the call is gone */
	size_t		  nwait;
	size_t		  n;
	char		**tokens;	/* bearer tokens: wiped */
	char		**ids;
	char		**hints;
	struct jwt_slot	 *slots;
	size_t		  failed;
	char		  msg[300];
};

static void
jwt_req_free(struct jwt_req *jr)
{
	size_t i;

	for (i = 0; i < jr->n; i++) {
		if (jr->tokens[i] != NULL)
			freezero(jr->tokens[i], strlen(jr->tokens[i]));
		free(jr->ids[i]);
		free(jr->hints[i]);
	}
	free(jr->tokens);
	free(jr->ids);
	free(jr->hints);
	free(jr->slots);
	free(jr);
}

/* A request for the JWT-SVIDs of k entries; NULL when memory is short. */
static struct jwt_req *
jwt_req_new(struct rpc_call *call, struct cache_entry **v, size_t k)
{
	struct jwt_req	*jr;
	size_t		 i;

	if ((jr = calloc(1, sizeof(*jr))) == NULL)
		return NULL;
	jr->call = call;
	if ((jr->tokens = calloc(k, sizeof(*jr->tokens))) == NULL ||
	    (jr->ids = calloc(k, sizeof(*jr->ids))) == NULL ||
	    (jr->hints = calloc(k, sizeof(*jr->hints))) == NULL ||
	    (jr->slots = calloc(k, sizeof(*jr->slots))) == NULL)
		goto fail;
	jr->n = k;
	for (i = 0; i < k; i++) {
		if ((jr->ids[i] = strdup(v[i]->spiffe_id)) == NULL ||
		    (jr->hints[i] = strdup(v[i]->hint)) == NULL)
			goto fail;
		jr->slots[i].jr = jr;
		jr->slots[i].i = i;
	}
	jr->nwait = k;
	return jr;
fail:
	jwt_req_free(jr);
	return NULL;
}

static void
jwt_req_detach(struct jwt_req *jr)
{
	jr->call = NULL;
}

static void
jwt_req_finish(struct jwt_req *jr)
{
	JWTSVIDResponse	  resp = JWTSVIDRESPONSE__INIT;
	JWTSVID		 *v = NULL, **pv = NULL;
	struct wl_stream *s;
	size_t		  i;
	int		  r;

	if (jr->call == NULL)
		return;
	if ((s = rpc_call_data(jr->call)) != NULL)
		s->jwt = NULL;		/* the call no longer waits for jr */
	/* Fail only when no identity got a token: one entry the server
	 * just deleted must not cost the workload its other identities. */
	if (jr->failed == jr->n) {
		(void)rpc_call_finish(jr->call, RPC_UNAVAILABLE, jr->msg);
		jr->call = NULL;
		return;
	}
	r = WICK_ERR_ALLOC;
	if ((v = calloc(jr->n + 1, sizeof(*v))) == NULL ||
	    (pv = calloc(jr->n + 1, sizeof(*pv))) == NULL)
		goto out;
	for (i = 0; i < jr->n; i++) {
		if (jr->tokens[i] == NULL)
			continue;
		jwtsvid__init(&v[resp.n_svids]);
		v[resp.n_svids].spiffe_id = jr->ids[i];
		v[resp.n_svids].svid = jr->tokens[i];
		v[resp.n_svids].hint = jr->hints[i];
		pv[resp.n_svids] = &v[resp.n_svids];
		resp.n_svids++;
	}
	resp.svids = pv;
	r = s != NULL ? send_msg(s, &resp.base) : WICK_ERR_STATE;
out:
	if (r == WICK_ERR_ALLOC)
		(void)rpc_call_finish(jr->call, RPC_RESOURCE_EXHAUSTED,
		    "out of memory");
	else if (r != 0)
		(void)rpc_call_finish(jr->call, RPC_UNAVAILABLE,
		    "could not serialize response");
	else
		(void)rpc_call_finish(jr->call, RPC_OK, NULL);
	jr->call = NULL;
	free(v);
	free(pv);
}

static void
jwt_one_done(void *arg, int status, const char *msg, const char *token)
{
	struct jwt_slot	*slot = arg;
	struct jwt_req	*jr = slot->jr;

	if (status == 0 &&
	    (jr->tokens[slot->i] = strdup(token)) == NULL) {
		status = RPC_RESOURCE_EXHAUSTED;
		msg = "out of memory";
	}
	if (status != 0) {
		jr->failed++;
		snprintf(jr->msg, sizeof(jr->msg), "could not fetch JWT-SVID: "
		    "%s", msg);
	}
	if (--jr->nwait > 0)
		return;
	jwt_req_finish(jr);
	jwt_req_free(jr);
}

/*
 * Every token already kept and not due for renewal (the usual case):
 * answer from the cache at once, without the state a fetch from the
 * server needs.  0 when answered, -1 to take the longer way.
 */
static int
jwt_from_cache(struct wl_stream *s, struct cache_entry **v, size_t k,
    char **aud, size_t naud)
{
	JWTSVIDResponse	  resp = JWTSVIDRESPONSE__INIT;
	JWTSVID		  one[WL_JWT_FAST], *pone[WL_JWT_FAST];
	const char	 *tok;
	char		 *key;
	int64_t		  now = (int64_t)time(NULL);
	size_t		  i;
	int		  fresh, r;

	if (k > WL_JWT_FAST || (key = cache_aud_key(aud, naud)) == NULL)
		return -1;
	for (i = 0; i < k; i++) {
		if ((tok = cache_jwt_get(s->w->cache, v[i]->id, key, now,
		    &fresh)) == NULL || !fresh)
			break;
		/* Borrowed: nothing changes the cache until the send. */
		jwtsvid__init(&one[i]);
		one[i].spiffe_id = v[i]->spiffe_id;
		one[i].svid = (char *)tok;
		one[i].hint = v[i]->hint;
		pone[i] = &one[i];
	}
	free(key);
	if (i < k)
		return -1;
	resp.n_svids = k;
	resp.svids = pone;
	if ((r = send_msg(s, &resp.base)) == WICK_ERR_ALLOC)
		(void)rpc_call_finish(s->call, RPC_RESOURCE_EXHAUSTED,
		    "out of memory");
	else if (r != 0)
		(void)rpc_call_finish(s->call, RPC_UNAVAILABLE,
		    "could not serialize response");
	else
		(void)rpc_call_finish(s->call, RPC_OK, NULL);
	return 0;
}

static void
m_fetch_jwt(struct rpc_call *call, const uint8_t *p, size_t n)
{
	struct wl_stream	 *s = rpc_call_data(call);
	struct cache_entry	**v = NULL;
	struct jwt_req		 *jr;
	JWTSVIDRequest		 *req;
	size_t			  nv = 0, i, k, naud = 0;

	if (wl_defer(call, p, n, m_fetch_jwt))
		return;
	if ((req = jwtsvidrequest__unpack(NULL, n, p)) == NULL) {
		(void)rpc_call_finish(call, RPC_INVALID_ARGUMENT,
		    "malformed JWTSVIDRequest");
		return;
	}
	for (i = 0; i < req->n_audience; i++)
		if (*req->audience[i] != '\0')
			naud++;
	if (naud == 0 || req->n_audience > WL_MAX_AUDIENCES) {
		(void)rpc_call_finish(call, RPC_INVALID_ARGUMENT,
		    naud == 0 ? "audience must be specified" :
		    "too many audiences");
		goto out;
	}
	if (check_spiffe_id(call, req->spiffe_id) != 0)
		goto out;
	if (cache_match(s->w->cache, &s->sel, 0, &v, &nv) != 0) {
		(void)rpc_call_finish(call, RPC_RESOURCE_EXHAUSTED,
		    "out of memory");
		goto out;
	}
	for (i = k = 0; i < nv; i++)
		if (*req->spiffe_id == '\0' || strcmp(req->spiffe_id,
		    v[i]->spiffe_id) == 0)
			v[k++] = v[i];
	if (k == 0) {
		(void)rpc_call_finish(call, RPC_PERMISSION_DENIED,
		    "no identity issued");
		goto out;
	}
	if (jwt_from_cache(s, v, k, req->audience, req->n_audience) == 0)
		goto out;
	if ((jr = jwt_req_new(call, v, k)) == NULL) {
		(void)rpc_call_finish(call, RPC_RESOURCE_EXHAUSTED,
		    "out of memory");
		goto out;
	}
	/* The pending request hangs off the call so on_done can detach.
	 * Answers may come at once (cached tokens): the last one frees jr,
	 * so jr is not touched after the last jwt(). */
	s->jwt = jr;
	for (i = 0; i < k; i++)
		s->w->ops->jwt(s->w->ops->arg, v[i], req->audience,
		    req->n_audience,
		    jwt_one_done, &jr->slots[i]);
out:
	free(v);
	jwtsvidrequest__free_unpacked(req, NULL);
}

/* ---- ValidateJWTSVID ---------------------------------------------------- */

/*
 * The claims as a google.protobuf.Struct, built with the allocator
 * protobuf-c frees with, so that a partly built tree is freed by
 * google__protobuf__struct__free_unpacked().  NULL when memory is short.
 */
static Google__Protobuf__Value *json_to_value(json_t *);

static Google__Protobuf__Struct *
json_to_struct(json_t *o)
{
	Google__Protobuf__Struct	*st;
	const char			*k;
	json_t				*v;

	if ((st = calloc(1, sizeof(*st))) == NULL)
		return NULL;
	google__protobuf__struct__init(st);
	if ((st->fields = calloc(json_object_size(o) + 1,
	    sizeof(*st->fields))) == NULL)
		goto fail;
	json_object_foreach(o, k, v) {
		if ((st->fields[st->n_fields] = calloc(1,
		    sizeof(**st->fields))) == NULL)
			goto fail;
		google__protobuf__struct__fields_entry__init(
		    st->fields[st->n_fields]);
		st->n_fields++;
		if ((st->fields[st->n_fields - 1]->key = strdup(k)) == NULL ||
		    (st->fields[st->n_fields - 1]->value =
		    json_to_value(v)) == NULL)
			goto fail;
	}
	return st;
fail:
	google__protobuf__struct__free_unpacked(st, NULL);
	return NULL;
}

static Google__Protobuf__Value *
json_to_value(json_t *j)
{
	Google__Protobuf__Value		*v;
	Google__Protobuf__ListValue	*l;
	size_t				 i;

	if ((v = calloc(1, sizeof(*v))) == NULL)
		return NULL;
	google__protobuf__value__init(v);
	switch (json_typeof(j)) {
	case JSON_OBJECT:
		v->kind_case = GOOGLE__PROTOBUF__VALUE__KIND_STRUCT_VALUE;
		if ((v->struct_value = json_to_struct(j)) == NULL)
			goto fail;
		break;
	case JSON_ARRAY:
		if ((l = calloc(1, sizeof(*l))) == NULL)
			goto fail;
		google__protobuf__list_value__init(l);
		v->kind_case = GOOGLE__PROTOBUF__VALUE__KIND_LIST_VALUE;
		v->list_value = l;
		if ((l->values = calloc(json_array_size(j) + 1,
		    sizeof(*l->values))) == NULL)
			goto fail;
		for (i = 0; i < json_array_size(j); i++) {
			if ((l->values[i] = json_to_value(json_array_get(j,
			    i))) == NULL)
				goto fail;
			l->n_values++;
		}
		break;
	case JSON_STRING:
		v->kind_case = GOOGLE__PROTOBUF__VALUE__KIND_STRING_VALUE;
		if ((v->string_value = strdup(json_string_value(j))) == NULL)
			goto fail;
		break;
	case JSON_INTEGER:
	case JSON_REAL:
		v->kind_case = GOOGLE__PROTOBUF__VALUE__KIND_NUMBER_VALUE;
		v->number_value = json_number_value(j);
		break;
	case JSON_TRUE:
	case JSON_FALSE:
		v->kind_case = GOOGLE__PROTOBUF__VALUE__KIND_BOOL_VALUE;
		v->bool_value = json_is_true(j);
		break;
	default:
		v->kind_case = GOOGLE__PROTOBUF__VALUE__KIND_NULL_VALUE;
		v->null_value = GOOGLE__PROTOBUF__NULL_VALUE__NULL_VALUE;
		break;
	}
	return v;
fail:
	google__protobuf__value__free_unpacked(v, NULL);
	return NULL;
}

/*
 * The subject's trust domain, read before the signature is checked (to
 * pick the keys); everything is verified after.  *claimsp: the claims,
 * decoded as jose_verify() decodes them (base64url, duplicate names
 * refused), which are what it would give for a token whose signature
 * already held (jwtcache.h).
 */
static int
token_td(const char *token, char td[SPIFFEID_MAX_TD_LEN + 16],
    json_t **claimsp, const char **why)
{
	const char	*dot1 = strchr(token, '.'), *dot2;
	struct spiffeid	 id;
	json_error_t	 jerr;
	json_t		*claims;
	uint8_t		*raw;
	size_t		 rawlen;
	int		 r = WICK_ERR_INVALID;

	*claimsp = NULL;
	*why = "token is not a compact JWS";
	if (dot1 == NULL || (dot2 = strchr(dot1 + 1, '.')) == NULL)
		return r;
	/* base64url: standard base64 would refuse the '-' and '_' of
	 * claims with '>', '?' or '~' in some places. */
	if (b64url_decode(dot1 + 1, (size_t)(dot2 - dot1 - 1), 0, &raw,
	    &rawlen) != 0)
		return r;
	claims = json_loadb((const char *)raw, rawlen, JSON_REJECT_DUPLICATES,
	    &jerr);
	free(raw);
	*why = "token claims are not a JSON object";
	if (!json_is_object(claims))
		goto out;
	*why = "token missing subject claim";
	if (json_string_value(json_object_get(claims, "sub")) == NULL)
		goto out;
	*why = "token subject is not a SPIFFE ID";
	if (spiffeid_parse(json_string_value(json_object_get(claims, "sub")), 0,
	    &id, NULL) != 0)
		goto out;
	snprintf(td, SPIFFEID_MAX_TD_LEN + 16, "spiffe://%s", id.td);
	*claimsp = claims;
	claims = NULL;
	r = 0;
out:
	json_decref(claims);
	return r;
}

/*
 * One ValidateJWTSVID: the token's signature and claims are checked on
 * the libuv thread pool (an ECDSA or RSA verification costs a few
 * hundred microseconds: a thousand callers at once would hold the loop
 * for as many milliseconds), WL_VALIDATE_JOBS at once, the rest waiting
 * in order, each request charged to its caller's budgets while the call
 * lasts.  The keys are held across a change of bundles.  A token whose
 * signature held is remembered (jwtcache.h): shown again under the same
 * keys, only its claims are checked, on the loop.
 */
struct wl_validate {
	uv_work_t		 req;
	struct wl_validate	*next;		/* waiting */
	struct workload		*w;
	struct rpc_call		*call;		/* NULL once the call is gone */
	ValidateJWTSVIDRequest	*msg;
	struct cache_keyset	*hold;
	const struct jose_keyset *ks;
	int			 foreign;	/* another trust domain's */
	json_t			*claims;
	uint8_t			 digest[JWTCACHE_DIGEST_LEN];
	int			 remember;	/* digest taken */
	int			 r;
	char			 why[300];
};

static void	validate_start(struct workload *);

static void
validate_detach(struct wl_validate *v)
{
	v->call = NULL;
}

/* A JWT-SVID is a bearer token: wiped with its request. */
static void
validate_req_free(ValidateJWTSVIDRequest *req)
{
	if (req->svid != NULL)
		explicit_bzero(req->svid, strlen(req->svid));
	validate_jwtsvidrequest__free_unpacked(req, NULL);
}

static void
validate_free(struct wl_validate *v)
{
	json_decref(v->claims);
	validate_req_free(v->msg);
	cache_keyset_release(v->hold);
	free(v);
}

static void
validate_work_cb(uv_work_t *req)
{
	struct wl_validate	*v = req->data;
	struct jose_verify_opts	 opts = { { "JWT", "JOSE", "" }, 3 };

	if ((v->r = jose_verify(v->msg->svid, v->ks, &opts, &v->claims, NULL,
	    v->why, sizeof(v->why))) == 0)
		v->r = jose_check_jwt_claims(v->claims, v->msg->audience,
		    (int64_t)time(NULL), v->why, sizeof(v->why));
}

/* The answer to a token that verified: its ID and claims. */
static void
validate_answer(struct wl_stream *s, struct rpc_call *call, json_t *claims,
    int foreign)
{
	ValidateJWTSVIDResponse	 resp = VALIDATE_JWTSVIDRESPONSE__INIT;
	int			 r;

	/* Another trust domain's token: only sub, aud, exp and the claims
	 * allowed_foreign_jwt_claims names pass, as SPIRE does. */
	if (foreign) {
		const char	*k;
		json_t		*v, *kept = json_object();
		size_t		 i;

		if (kept == NULL) {
			(void)rpc_call_finish(call, RPC_RESOURCE_EXHAUSTED,
			    "out of memory");
			return;
		}
		json_object_foreach(claims, k, v) {
			int keep = strcmp(k, "sub") == 0 ||
			    strcmp(k, "aud") == 0 || strcmp(k, "exp") == 0;

			for (i = 0; !keep && i < s->w->o->nforeign_claims;
			    i++)
				keep = strcmp(k, s->w->o->foreign_claims[i]) ==
				    0;
			if (keep)
				json_object_set(kept, k, v);
		}
		claims = kept;
	} else
		json_incref(claims);
	resp.spiffe_id = (char *)json_string_value(json_object_get(claims,
	    "sub"));
	/* aud is always a list in the answer, as SPIRE's. */
	if (json_is_string(json_object_get(claims, "aud")))
		json_object_set_new(claims, "aud", json_pack("[O]",
		    json_object_get(claims, "aud")));
	if ((resp.claims = json_to_struct(claims)) == NULL)
		r = WICK_ERR_ALLOC;
	else
		r = send_msg(s, &resp.base);
	if (r == WICK_ERR_ALLOC)
		(void)rpc_call_finish(call, RPC_RESOURCE_EXHAUSTED,
		    "out of memory");
	else if (r != 0)
		(void)rpc_call_finish(call, RPC_UNAVAILABLE,
		    "could not serialize response");
	else
		(void)rpc_call_finish(call, RPC_OK, NULL);
	google__protobuf__struct__free_unpacked(resp.claims, NULL);
	json_decref(claims);
}

static void
validate_after_cb(uv_work_t *req, int status)
{
	struct wl_validate	*v = req->data;
	struct workload		*w = v->w;
	struct wl_stream	*s;

	w->nvalidating--;
	/* Verified, and the claims held at the time: remembered, with the
	 * keys (v's reference goes to the entry).  Never a failure. */
	if (status == 0 && v->r == 0 && v->remember && w->verified != NULL) {
		jwtcache_put(w->verified, v->digest, v->hold, v->claims,
		    (int64_t)time(NULL));
		v->hold = NULL;
	}
	if (v->call != NULL && (s = rpc_call_data(v->call)) != NULL) {
		s->validate = NULL;
		if (status != 0)
			(void)rpc_call_finish(v->call, RPC_UNAVAILABLE,
			    "the agent is stopping");
		else if (v->r != 0)
			(void)rpc_call_finish(v->call, RPC_INVALID_ARGUMENT,
			    v->why);
		else
			validate_answer(s, v->call, v->claims, v->foreign);
	}
	validate_free(v);
	validate_start(w);
	if (w->down && w->hashing == NULL && w->nvalidating == 0)
		wl_finish(w);
}

/* Start what waits, while there is room; drop what nobody waits for. */
static void
validate_start(struct workload *w)
{
	struct wl_validate	*v;
	struct wl_stream	*s;

	while (w->nvalidating < WL_VALIDATE_JOBS && (v = w->vq_head) != NULL) {
		if ((w->vq_head = v->next) == NULL)
			w->vq_tail = NULL;
		if (v->call == NULL) {
			validate_free(v);
			continue;
		}
		v->req.data = v;
		if (uv_queue_work(w->loop, &v->req, validate_work_cb,
		    validate_after_cb) != 0) {
			if ((s = rpc_call_data(v->call)) != NULL)
				s->validate = NULL;
			(void)rpc_call_finish(v->call, RPC_UNAVAILABLE,
			    "cannot validate now");
			validate_free(v);
			continue;
		}
		w->nvalidating++;
	}
}

static void
m_validate_jwt(struct rpc_call *call, const uint8_t *p, size_t n)
{
	struct wl_stream		*s = rpc_call_data(call);
	struct workload			*w = s->w;
	ValidateJWTSVIDRequest		*req;
	struct wl_validate		*v;
	struct bundle			*b;
	struct cache_keyset		*hold = NULL;
	const struct jose_keyset	*ks;
	json_t				*claims = NULL;
	const char			*why, *what = NULL;
	char				 td[SPIFFEID_MAX_TD_LEN + 16];
	char				 msg[300];
	uint8_t				 digest[JWTCACHE_DIGEST_LEN];
	int				 remember = 0, r;

	if (wl_defer(call, p, n, m_validate_jwt))
		return;
	if ((req = validate_jwtsvidrequest__unpack(NULL, n, p)) == NULL) {
		(void)rpc_call_finish(call, RPC_INVALID_ARGUMENT,
		    "malformed ValidateJWTSVIDRequest");
		return;
	}
	if (*req->audience == '\0' || *req->svid == '\0') {
		(void)rpc_call_finish(call, RPC_INVALID_ARGUMENT,
		    *req->audience == '\0' ? "audience must be specified" :
		    "svid must be specified");
		goto out;
	}
	if (token_td(req->svid, td, &claims, &why) != 0) {
		(void)rpc_call_finish(call, RPC_INVALID_ARGUMENT, why);
		goto out;
	}
	if ((b = cache_bundle_for(w->cache, td)) == NULL) {
		snprintf(msg, sizeof(msg), "no keys for trust domain \"%s\"",
		    td);
		(void)rpc_call_finish(call, RPC_INVALID_ARGUMENT, msg);
		goto out;
	}
	/* Decoded once per bundle held, not per call. */
	if ((hold = cache_jwt_keyset_hold(w->cache, b, &ks)) == NULL) {
		(void)rpc_call_finish(call, RPC_INTERNAL, "bad bundle keys");
		goto out;
	}
	/* Verified before under these keys: answered here and now. */
	if (w->verified != NULL &&
	    jwtcache_digest(w->verified, req->svid, digest) == 0) {
		remember = 1;
		r = jwtcache_check(w->verified, digest, hold, claims,
		    req->audience, (int64_t)time(NULL), msg, sizeof(msg));
		if (r == 0) {
			validate_answer(s, call, claims,
			    strcmp(td, w->o->td_id) != 0);
			goto out;
		}
		if (r != WICK_ERR_NOT_FOUND) {
			(void)rpc_call_finish(call, RPC_INVALID_ARGUMENT, msg);
			goto out;
		}
	}
	/* The decoded request waits for its check: held for the caller. */
	if (rpc_call_hold(call, n, &what) != 0) {
		snprintf(msg, sizeof(msg), "too many tokens waiting to be "
		    "validated (the %s budget)", what != NULL ? what : "call");
		(void)rpc_call_finish(call, RPC_RESOURCE_EXHAUSTED, msg);
		goto out;
	}
	if ((v = calloc(1, sizeof(*v))) == NULL) {
		(void)rpc_call_finish(call, RPC_RESOURCE_EXHAUSTED,
		    "out of memory");
		goto out;
	}
	v->hold = hold;
	v->ks = ks;
	v->w = w;
	v->call = call;
	v->msg = req;
	v->foreign = strcmp(td, w->o->td_id) != 0;
	if ((v->remember = remember))
		memcpy(v->digest, digest, sizeof(v->digest));
	s->validate = v;
	if (w->vq_tail != NULL)
		w->vq_tail->next = v;
	else
		w->vq_head = v;
	w->vq_tail = v;
	validate_start(w);
	json_decref(claims);
	return;
out:
	cache_keyset_release(hold);
	json_decref(claims);
	validate_req_free(req);
}

/* ---- health ------------------------------------------------------------- */

static void
m_health(struct rpc_call *call, const uint8_t *p, size_t n)
{
	struct wl_stream			*s = rpc_call_data(call);
	Grpc__Health__V1__HealthCheckResponse	 resp =
	    GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__INIT;
	int					 r;

	if (wl_defer(call, p, n, m_health))
		return;
	resp.status = s->w->ops->serving(s->w->ops->arg) ?
	    GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING :
	    GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__NOT_SERVING;
	if ((r = send_msg(s, &resp.base)) != 0)
		(void)rpc_call_finish(call, rpc_status_from_err(r),
		    "cannot reply");
	else
		(void)rpc_call_finish(call, RPC_OK, NULL);
}

#define STREAM(path, fn) { path, RPC_KIND_SERVER_STREAM, wl_start, fn, NULL, \
	wl_writable, wl_done, NULL, 0 }
#define UNARY(path, fn, done) { path, RPC_KIND_UNARY, wl_start, fn, NULL, \
	NULL, done, NULL, 0 }

static const struct rpc_method wl_methods[WL_NMETHODS] = {
	STREAM("/SpiffeWorkloadAPI/FetchX509SVID", m_fetch_x509),
	STREAM("/SpiffeWorkloadAPI/FetchX509Bundles", m_fetch_x509_bundles),
	UNARY("/SpiffeWorkloadAPI/FetchJWTSVID", m_fetch_jwt, wl_done),
	STREAM("/SpiffeWorkloadAPI/FetchJWTBundles", m_fetch_jwt_bundles),
	UNARY("/SpiffeWorkloadAPI/ValidateJWTSVID", m_validate_jwt, wl_done),
	STREAM("/SpiffeWorkloadAPI/FetchWITSVID", m_fetch_wit),
	STREAM("/SpiffeWorkloadAPI/FetchWITBundles", m_fetch_wit_bundles),
	UNARY("/grpc.health.v1.Health/Check", m_health, wl_done),
};

int
workload_socket_dir(const char *socket_path)
{
	char	why[SECPATH_MAX_WHY];
	int	r;

	if ((r = secpath_mkdir_parent(socket_path, WL_SOCKET_DIR_MODE, why,
	    sizeof(why))) != 0)
		log_error("refusing socket_path %s: %s", socket_path, why);
	return r;
}

void
workload_methods(const struct rpc_method **m, size_t *n)
{
	*m = wl_methods;
	*n = sizeof(wl_methods) / sizeof(wl_methods[0]);
}

void
workload_stats(struct workload *w, struct rpc_server_stats *st)
{
	if (w->rs != NULL)
		rpc_server_get_stats(w->rs, st);
	else
		memset(st, 0, sizeof(*st));
}

void
workload_jwt_stats(struct workload *w, uint64_t *hits, uint64_t *misses)
{
	struct jwtcache_stats st;

	jwtcache_stats(w->verified, &st);
	*hits = st.hits;
	*misses = st.misses;
}

int
workload_start(uv_loop_t *loop, const struct workload_opts *o,
    struct cache *cache, const struct workload_ops *ops,
    struct workload **out)
{
	struct rpc_server_opts	 opts;
	struct workload		*w;
	size_t			 i, n = WL_NMETHODS;
	int			 r;

	*out = NULL;
	w = xcalloc(1, sizeof(*w));
	w->loop = loop;
	w->o = o;
	w->cache = cache;
	w->ops = ops;
	/* Without it, every token is verified each time. */
	if ((w->verified = jwtcache_new(JWTCACHE_MAX)) == NULL)
		log_warn("cannot remember verified JWT-SVIDs");
	/* The table is shared; this server's copy carries its state. */
	for (i = 0; i < n; i++) {
		w->methods[i] = wl_methods[i];
		w->methods[i].arg = w;
	}
	/* Workload API requests are small (an audience list, a token to
	 * validate); the budgets bound what one uid can make us hold. */
	memset(&opts, 0, sizeof(opts));
	opts.known.max_message = WL_MAX_REQUEST;
	opts.known.conn_budget = WL_CONN_BUDGET;
	opts.known.peer_budget = WL_UID_BUDGET;
	opts.known.max_conns = WL_UID_CONNS;
	opts.max_conns = WL_MAX_CONNS;
	opts.known.max_output = WL_MAX_OUTPUT;
	w->budget.max = WL_BUDGET;
	opts.budget = &w->budget;
	opts.observe = o->observe;
	opts.observe_arg = o->observe_arg;
	opts.streams_are_watches = 1;
	/* Each call reads the caller's status: one pread, not a path. */
	opts.hold_peer_status = 1;
	if ((r = workload_socket_dir(o->socket_path)) != 0 ||
	    (r = rpc_server_new(loop, &opts, w->methods, n, &w->rs)) != 0) {
		jwtcache_free(w->verified);
		free(w);
		return r;
	}
	if ((r = rpc_server_listen_unix(w->rs, o->socket_path, 0777)) != 0) {
		log_error("cannot listen on %s: %s", o->socket_path,
		    wick_strerror(r));
		rpc_server_free(w->rs);
		jwtcache_free(w->verified);
		free(w);
		return r;
	}
	log_info("Workload API listening on %s", o->socket_path);
	*out = w;
	return 0;
}

static void
wl_down(struct rpc_server *rs, void *arg)
{
	struct workload	*w = arg;

	rpc_server_free(rs);
	w->rs = NULL;
	w->down = 1;
	/* A binary still being hashed comes back to w: it goes after. */
	if (w->hashing == NULL && w->nvalidating == 0)
		wl_finish(w);
}

void
workload_stop(struct workload *w, void (*drained)(void *), void *arg)
{
	if (w == NULL) {
		if (drained != NULL)
			drained(arg);
		return;
	}
	/* No new workload finds the socket while the open calls drain. */
	(void)unlink(w->o->socket_path);
	w->drained = drained;
	w->drained_arg = arg;
	rpc_server_shutdown(w->rs, WL_GRACE_MS, wl_down, w);
}

void
workload_stop_now(struct workload *w)
{
	if (w->rs != NULL)
		rpc_server_shutdown_now(w->rs);
}
