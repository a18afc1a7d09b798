/*
 * wpt.c: WIMSE Workload Proof Tokens (draft-ietf-wimse-wpt-02) over
 * WIT-SVIDs: create one per request with the WIT's key, and verify a
 * WIT+WPT pair (the WIT against the WIT bundles first, then the WPT
 * against the WIT's cnf.jwk), with a bounded jti replay cache.
 */
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include "spiffeid.h"
#include "wick_int.h"

#define WPT_MAX_JTI	256
#define WPT_MAX_AUD	4096
#define WPT_MAX_SUB	WICK_MAX_SPIFFE_ID

static const char *const reasons[WICK_WPT_NREASONS] = {
	[WICK_WPT_OK] = "ok",
	[WICK_WPT_WIT_MISSING] = "no WIT",
	[WICK_WPT_WIT_TOO_LARGE] = "WIT larger than the limit",
	[WICK_WPT_WIT_MALFORMED] = "WIT is not a well-formed JWT",
	[WICK_WPT_WIT_TYP] = "WIT typ is not wit+jwt",
	[WICK_WPT_WIT_CRIT] = "WIT header has crit",
	[WICK_WPT_WIT_ALG] = "WIT alg not allowed",
	[WICK_WPT_WIT_SUB] = "WIT sub is not a valid workload identifier",
	[WICK_WPT_WIT_TRUST_DOMAIN] = "WIT trust domain has no WIT bundle",
	[WICK_WPT_WIT_KID] = "WIT kid missing or unknown",
	[WICK_WPT_WIT_SIGNATURE] = "WIT signature does not verify",
	[WICK_WPT_WIT_EXP_MISSING] = "WIT without exp",
	[WICK_WPT_WIT_EXPIRED] = "WIT expired",
	[WICK_WPT_WIT_NOT_YET_VALID] = "WIT nbf or iat in the future",
	[WICK_WPT_WIT_AUD] = "WIT carries aud",
	[WICK_WPT_WIT_CNF_MISSING] = "WIT without cnf.jwk",
	[WICK_WPT_WIT_CNF_KEY] = "WIT cnf.jwk is not a valid public key",
	[WICK_WPT_WIT_CNF_PRIVATE] = "WIT cnf.jwk has private members",
	[WICK_WPT_WIT_CNF_ALG_MISSING] = "WIT cnf.jwk without alg",
	[WICK_WPT_WIT_CNF_ALG] = "WIT cnf.jwk alg not allowed or not fitting",
	[WICK_WPT_MISSING] = "no WPT",
	[WICK_WPT_TOO_LARGE] = "WPT larger than the limit",
	[WICK_WPT_MALFORMED] = "WPT is not a well-formed JWT",
	[WICK_WPT_TYP] = "WPT typ is not wpt+jwt",
	[WICK_WPT_CRIT] = "WPT header has crit",
	[WICK_WPT_ALG_MISMATCH] = "WPT alg differs from the WIT's cnf.jwk alg",
	[WICK_WPT_SIGNATURE] = "WPT signature does not verify with cnf.jwk",
	[WICK_WPT_AUD_MISSING] = "WPT without aud",
	[WICK_WPT_AUD] = "WPT aud is not the configured audience",
	[WICK_WPT_EXP_MISSING] = "WPT without exp",
	[WICK_WPT_EXPIRED] = "WPT expired",
	[WICK_WPT_EXP_TOO_FAR] = "WPT exp too far in the future",
	[WICK_WPT_JTI_MISSING] = "WPT without a valid jti",
	[WICK_WPT_WTH_MISSING] = "WPT without wth",
	[WICK_WPT_WTH] = "WPT wth does not match the WIT",
	[WICK_WPT_ATH] = "WPT ath does not match the access token",
	[WICK_WPT_TTH] = "WPT tth does not match the transaction token",
	[WICK_WPT_OTH] = "WPT oth does not match the other tokens",
	[WICK_WPT_OTH_UNKNOWN] = "WPT oth binds a token the request lacks",
	[WICK_WPT_REPLAY] = "WPT jti replayed",
	[WICK_WPT_REPLAY_FULL] = "WPT replay cache full",
	[WICK_WPT_INTERNAL] = "internal error while verifying",
};

const char *
wick_wpt_reason_str(enum wick_wpt_reason r)
{
	if ((unsigned)r >= WICK_WPT_NREASONS || reasons[r] == NULL)
		return "unknown reason";
	return reasons[r];
}

void
wick_why(char *why, size_t whylen, const char *fmt, ...)
{
	va_list ap;

	if (why == NULL || whylen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(why, whylen, fmt, ap);
	va_end(ap);
}

int
wick_sha256_b64(const void *p, size_t n, char out[44])
{
	uint8_t	 md[SHA256_DIGEST_LENGTH];
	char	*s;

	if (SHA256(p, n, md) == NULL)
		return WICK_E_CRYPTO;
	if (wick_b64url_encode(md, sizeof(md), &s) != 0)
		return WICK_E_ALLOC;
	memcpy(out, s, 44);	/* 43 characters and the NUL */
	free(s);
	return 0;
}

int
wick_token_hash(const char *s, char out[44])
{
	if (s == NULL)
		return WICK_E_INVALID;
	return wick_sha256_b64(s, strlen(s), out);
}

static int64_t
now_or(int64_t now)
{
	return now != 0 ? now : (int64_t)time(NULL);
}

/* ---- WIT-SVIDs ----------------------------------------------------------- */

struct wick_wit_svid {
	char		*id;
	char		*token;
	char		*hint;
	char		 alg[WICK_MAX_ALG + 1];
	char		 wth[44];
	EVP_PKEY	*key;
};

const char *
wick_wit_svid_id(const struct wick_wit_svid *w)
{
	return w->id;
}

const char *
wick_wit_svid_token(const struct wick_wit_svid *w)
{
	return w->token;
}

const char *
wick_wit_svid_hint(const struct wick_wit_svid *w)
{
	return w->hint != NULL ? w->hint : "";
}

void
wick_wit_svid_free(struct wick_wit_svid *w)
{
	if (w == NULL)
		return;
	free(w->id);
	free(w->token);
	free(w->hint);
	EVP_PKEY_free(w->key);
	free(w);
}

/* Wipe every string member of a JSON object (a private JWK) in place. */
static void
wipe_json_strings(json_t *o)
{
	const char	*k;
	json_t		*v;

	json_object_foreach(o, k, v)
		if (json_is_string(v))
			OPENSSL_cleanse((char *)(uintptr_t)json_string_value(v),
			    json_string_length(v));
}

/* Used by client.c: the hint too. */
int	 wick_wit_svid_new_hint(const char *, const char *, const char *,
	    struct wick_wit_svid **);

int
wick_wit_svid_new_hint(const char *token, const char *key_jwk,
    const char *hint, struct wick_wit_svid **out)
{
	struct wick_wit_svid	*w = NULL;
	struct wick_jws		 j;
	struct wick_jwk		 priv, pub;
	json_t			*kj = NULL, *cnf;
	const char		*why, *alg, *sub;
	size_t			 klen;
	int			 r;

	*out = NULL;
	memset(&priv, 0, sizeof(priv));
	memset(&pub, 0, sizeof(pub));
	if (token == NULL || key_jwk == NULL)
		return WICK_E_INVALID;
	if ((klen = strnlen(key_jwk, WICK_MAX_JWK + 1)) > WICK_MAX_JWK)
		return WICK_E_LIMIT;
	if ((r = wick_jws_decode(token, WICK_MAX_WIMSE_TOKEN, &j, &why)) != 0)
		return r;
	r = WICK_E_INVALID;
	cnf = json_object_get(json_object_get(j.claims, "cnf"), "jwk");
	alg = json_string_value(json_object_get(cnf, "alg"));
	sub = json_string_value(json_object_get(j.claims, "sub"));
	if (cnf == NULL || alg == NULL || sub == NULL ||
	    strlen(sub) > WPT_MAX_SUB)
		goto out;
	if (wick_jwk_parse(cnf, 0, &pub, &why) != 0)
		goto out;
	if ((kj = json_loadb(key_jwk, klen, JSON_REJECT_DUPLICATES,
	    NULL)) == NULL || wick_jwk_parse(kj, 1, &priv, &why) != 0)
		goto out;
	/* The key must be the WIT's cnf key, and fit its alg. */
	if (EVP_PKEY_eq(pub.pkey, priv.pkey) != 1 ||
	    !wick_alg_fits_key(alg, priv.pkey))
		goto out;
	r = WICK_E_ALLOC;
	if ((w = calloc(1, sizeof(*w))) == NULL ||
	    (w->id = strdup(sub)) == NULL ||
	    (w->token = strdup(token)) == NULL ||
	    (hint != NULL && (w->hint = strdup(hint)) == NULL))
		goto out;
	snprintf(w->alg, sizeof(w->alg), "%s", alg);
	if ((r = wick_token_hash(token, w->wth)) != 0)
		goto out;
	w->key = priv.pkey;
	priv.pkey = NULL;
	*out = w;
	w = NULL;
	r = 0;
out:
	if (kj != NULL) {
		wipe_json_strings(kj);	/* "d" and friends */
		json_decref(kj);
	}
	wick_jwk_cleanup(&priv);
	wick_jwk_cleanup(&pub);
	wick_jws_cleanup(&j);
	wick_wit_svid_free(w);
	return r;
}

int
wick_wit_svid_new(const char *token, const char *key_jwk,
    struct wick_wit_svid **out)
{
	return wick_wit_svid_new_hint(token, key_jwk, NULL, out);
}

/* ---- create -------------------------------------------------------------- */

static int
bind_oth_ok(const struct wick_wpt_bind *b)
{
	size_t i;

	if (b == NULL || b->noth == 0)
		return 1;
	if (b->noth > WICK_WPT_MAX_OTH || b->oth_names == NULL ||
	    b->oth_values == NULL)
		return 0;
	for (i = 0; i < b->noth; i++)
		if (b->oth_names[i] == NULL || b->oth_values[i] == NULL ||
		    b->oth_names[i][0] == '\0')
			return 0;
	return 1;
}

/* oth value: SHA-256 of the value without leading/trailing spaces. */
static int
oth_hash(const char *v, char out[44])
{
	size_t n;

	while (*v == ' ' || *v == '\t')
		v++;
	n = strlen(v);
	while (n > 0 && (v[n - 1] == ' ' || v[n - 1] == '\t'))
		n--;
	return wick_sha256_b64(v, n, out);
}

static int
set_hash(json_t *o, const char *name, const char *tok)
{
	char h[44];

	if (wick_token_hash(tok, h) != 0 ||
	    json_object_set_new(o, name, json_string(h)) != 0)
		return WICK_E_ALLOC;
	return 0;
}

int
wick_wpt_create(const struct wick_wit_svid *w, const char *aud, int64_t ttl,
    const struct wick_wpt_bind *b, int64_t now, char **out)
{
	json_t	*hdr = NULL, *cl = NULL, *oth = NULL;
	uint8_t	 rnd[16];
	char	*jti = NULL, h[44];
	size_t	 i;
	int	 r = WICK_E_ALLOC;

	*out = NULL;
	if (w == NULL || aud == NULL || *aud == '\0' ||
	    strlen(aud) > WPT_MAX_AUD || strpbrk(aud, "?#") != NULL ||
	    ttl < 0 || !bind_oth_ok(b))
		return WICK_E_INVALID;
	if (ttl == 0)
		ttl = WICK_WPT_DEFAULT_TTL;
	if (ttl > WICK_WPT_MAX_TTL)
		return WICK_E_LIMIT;
	now = now_or(now);
	if (RAND_bytes(rnd, sizeof(rnd)) != 1)
		return WICK_E_CRYPTO;
	if (wick_b64url_encode(rnd, sizeof(rnd), &jti) != 0)
		return WICK_E_ALLOC;
	if ((hdr = json_pack("{s:s,s:s}", "alg", w->alg, "typ",
	    WICK_TYP_WPT)) == NULL ||
	    (cl = json_pack("{s:s,s:I,s:s,s:s}", "aud", aud, "exp",
	    (json_int_t)(now + ttl), "jti", jti, "wth", w->wth)) == NULL)
		goto out;
	if (b != NULL && b->access_token != NULL &&
	    (r = set_hash(cl, "ath", b->access_token)) != 0)
		goto out;
	if (b != NULL && b->txn_token != NULL &&
	    (r = set_hash(cl, "tth", b->txn_token)) != 0)
		goto out;
	if (b != NULL && b->noth > 0) {
		r = WICK_E_ALLOC;
		if ((oth = json_object()) == NULL)
			goto out;
		for (i = 0; i < b->noth; i++)
			if (oth_hash(b->oth_values[i], h) != 0 ||
			    json_object_set_new(oth, b->oth_names[i],
			    json_string(h)) != 0)
				goto out;
		if (json_object_set(cl, "oth", oth) != 0)
			goto out;
	}
	r = wick_jws_sign(hdr, cl, w->alg, w->key, out);
out:
	json_decref(hdr);
	json_decref(cl);
	json_decref(oth);
	free(jti);
	return r;
}

/* ---- the replay cache ---------------------------------------------------- */

struct replay_slot {
	uint8_t	 key[16];	/* SHA-256(sub NUL jti), truncated */
	int64_t	 until;		/* 0: empty */
};

struct replay {
	pthread_mutex_t		 mu;
	struct replay_slot	*tab;
	size_t			 cap;	/* 2^k >= 2 * max */
	size_t			 max;
	size_t			 used;	/* slots with until != 0 */
};

static int
replay_init(struct replay *c, size_t max)
{
	size_t cap = 16;

	while (cap < 2 * max)
		cap <<= 1;
	if ((c->tab = calloc(cap, sizeof(*c->tab))) == NULL)
		return WICK_E_ALLOC;
	c->cap = cap;
	c->max = max;
	c->used = 0;
	if (pthread_mutex_init(&c->mu, NULL) != 0) {
		free(c->tab);
		return WICK_E_INTERNAL;
	}
	return 0;
}

static void
replay_cleanup(struct replay *c)
{
	if (c->tab == NULL)
		return;
	pthread_mutex_destroy(&c->mu);
	free(c->tab);
	c->tab = NULL;
}

static size_t
replay_hash(const uint8_t k[16], size_t cap)
{
	uint64_t v;

	memcpy(&v, k, sizeof(v));
	return (size_t)v & (cap - 1);
}

/* Drop expired entries: rebuild the table in place.  Locked. */
static void
replay_prune(struct replay *c, int64_t now)
{
	struct replay_slot	*old = c->tab, *n;
	size_t			 i, j;

	if ((n = calloc(c->cap, sizeof(*n))) == NULL) {
		/* Keep the old table: the cache stays full (fail closed). */
		return;
	}
	c->used = 0;
	for (i = 0; i < c->cap; i++) {
		if (old[i].until == 0 || old[i].until < now)
			continue;
		for (j = replay_hash(old[i].key, c->cap); n[j].until != 0;
		    j = (j + 1) & (c->cap - 1))
			;
		n[j] = old[i];
		c->used++;
	}
	c->tab = n;
	free(old);
}

/*
 * Record (sub, jti) until "until"; WICK_WPT_REPLAY if it is there and
 * not expired, WICK_WPT_REPLAY_FULL when max entries are live.
 */
static enum wick_wpt_reason
replay_check(struct replay *c, const char *sub, const char *jti,
    int64_t until, int64_t now)
{
	uint8_t			 md[SHA256_DIGEST_LENGTH];
	char			 in[WPT_MAX_SUB + 1 + WPT_MAX_JTI];
	size_t			 sl = strlen(sub), jl = strlen(jti);
	struct replay_slot	*s;
	enum wick_wpt_reason	 res = WICK_WPT_OK;
	size_t			 j;

	if (sl > WPT_MAX_SUB || jl > WPT_MAX_JTI)
		return WICK_WPT_INTERNAL;
	memcpy(in, sub, sl + 1);
	memcpy(in + sl + 1, jti, jl);
	if (SHA256((uint8_t *)in, sl + 1 + jl, md) == NULL)
		return WICK_WPT_INTERNAL;
	pthread_mutex_lock(&c->mu);
	for (j = replay_hash(md, c->cap); (s = &c->tab[j])->until != 0;
	    j = (j + 1) & (c->cap - 1))
		if (memcmp(s->key, md, sizeof(s->key)) == 0) {
			if (s->until >= now)
				res = WICK_WPT_REPLAY;
			else
				s->until = until;	/* reuse the slot */
			goto out;
		}
	if (c->used >= c->max) {
		replay_prune(c, now);
		if (c->used >= c->max) {
			res = WICK_WPT_REPLAY_FULL;
			goto out;
		}
		for (j = replay_hash(md, c->cap); c->tab[j].until != 0;
		    j = (j + 1) & (c->cap - 1))
			;
	}
	memcpy(c->tab[j].key, md, sizeof(c->tab[j].key));
	c->tab[j].until = until;
	c->used++;
out:
	pthread_mutex_unlock(&c->mu);
	return res;
}

/* ---- verify -------------------------------------------------------------- */

/*
 * WITs that verified, by their hash: a workload sends the same WIT with
 * every request for its lifetime, so its signature, identifier and
 * cnf.jwk are checked once; its times are checked at every use.  The
 * entries belong to the current bundles and go when they are replaced.
 */
struct wit_cached {
	char		 hash[44];	/* wth of the WIT; "" = empty */
	char		 sub[WPT_MAX_SUB + 1];
	char		 alg[WICK_MAX_ALG + 1];	/* cnf.jwk alg */
	EVP_PKEY	*key;		/* cnf.jwk */
	int64_t		 exp, nbf, iat;	/* 0: absent (nbf, iat) */
};

struct wick_wpt_verifier {
	char			*audience;
	int64_t			 leeway;
	int64_t			 max_ttl;
	unsigned		 flags;
	pthread_mutex_t		 mu;	/* bundles, wits, next */
	struct wick_bundles	*bundles;
	struct wit_cached	 wits[WICK_WPT_WIT_CACHE];
	size_t			 next;	/* the slot to reuse next */
	struct replay		 replay;
};

/* Locked. */
static void
wits_clear(struct wick_wpt_verifier *v)
{
	size_t i;

	for (i = 0; i < WICK_WPT_WIT_CACHE; i++) {
		EVP_PKEY_free(v->wits[i].key);
		memset(&v->wits[i], 0, sizeof(v->wits[i]));
	}
}

/* A copy of the entry for hash (its key referenced), or 0. */
static int
wits_find(struct wick_wpt_verifier *v, const struct wick_bundles *b,
    const char *hash, struct wit_cached *out)
{
	size_t	i;
	int	found = 0;

	pthread_mutex_lock(&v->mu);
	for (i = 0; b == v->bundles && i < WICK_WPT_WIT_CACHE; i++)
		if (v->wits[i].key != NULL &&
		    strcmp(v->wits[i].hash, hash) == 0 &&
		    EVP_PKEY_up_ref(v->wits[i].key) == 1) {
			*out = v->wits[i];
			found = 1;
			break;
		}
	pthread_mutex_unlock(&v->mu);
	return found;
}

/* Remember a WIT that verified against b, if b is still current. */
static void
wits_add(struct wick_wpt_verifier *v, const struct wick_bundles *b,
    const struct wit_cached *e)
{
	struct wit_cached *slot;

	if (EVP_PKEY_up_ref(e->key) != 1)
		return;
	pthread_mutex_lock(&v->mu);
	if (b != v->bundles) {
		pthread_mutex_unlock(&v->mu);
		EVP_PKEY_free(e->key);
		return;
	}
	slot = &v->wits[v->next];
	v->next = (v->next + 1) % WICK_WPT_WIT_CACHE;
	EVP_PKEY_free(slot->key);
	*slot = *e;
	pthread_mutex_unlock(&v->mu);
}

int
wick_wpt_verifier_new(const struct wick_wpt_verifier_config *cfg,
    struct wick_wpt_verifier **out)
{
	struct wick_wpt_verifier	*v;
	size_t				 n;
	int				 r;

	*out = NULL;
	if (cfg == NULL || cfg->audience == NULL || *cfg->audience == '\0' ||
	    strlen(cfg->audience) > WPT_MAX_AUD || cfg->wit_bundles == NULL ||
	    cfg->wit_bundles->kind != WICK_BUNDLE_WIT ||
	    cfg->leeway > WICK_WPT_MAX_LEEWAY || cfg->max_ttl < 0 ||
	    cfg->max_ttl > WICK_WPT_MAX_TTL)
		return WICK_E_INVALID;
	n = cfg->replay_entries != 0 ? cfg->replay_entries :
	    WICK_WPT_REPLAY_DEFAULT;
	if (n > WICK_WPT_REPLAY_MAX)
		return WICK_E_LIMIT;
	if ((v = calloc(1, sizeof(*v))) == NULL)
		return WICK_E_ALLOC;
	if ((v->audience = strdup(cfg->audience)) == NULL) {
		free(v);
		return WICK_E_ALLOC;
	}
	v->leeway = cfg->leeway == 0 ? WICK_WPT_DEFAULT_LEEWAY :
	    cfg->leeway < 0 ? 0 : cfg->leeway;
	v->max_ttl = cfg->max_ttl != 0 ? cfg->max_ttl : WICK_WPT_MAX_TTL;
	v->flags = cfg->flags;
	if (pthread_mutex_init(&v->mu, NULL) != 0) {
		free(v->audience);
		free(v);
		return WICK_E_INTERNAL;
	}
	if (!(v->flags & WICK_WPT_NO_REPLAY) &&
	    (r = replay_init(&v->replay, n)) != 0) {
		pthread_mutex_destroy(&v->mu);
		free(v->audience);
		free(v);
		return r;
	}
	v->bundles = wick_bundles_ref(cfg->wit_bundles);
	*out = v;
	return 0;
}

void
wick_wpt_verifier_free(struct wick_wpt_verifier *v)
{
	if (v == NULL)
		return;
	wits_clear(v);
	replay_cleanup(&v->replay);
	pthread_mutex_destroy(&v->mu);
	wick_bundles_free(v->bundles);
	free(v->audience);
	free(v);
}

int
wick_wpt_verifier_set_bundles(struct wick_wpt_verifier *v,
    struct wick_bundles *b)
{
	struct wick_bundles *old;

	if (v == NULL || b == NULL || b->kind != WICK_BUNDLE_WIT)
		return WICK_E_INVALID;
	pthread_mutex_lock(&v->mu);
	old = v->bundles;
	v->bundles = wick_bundles_ref(b);
	wits_clear(v);
	pthread_mutex_unlock(&v->mu);
	wick_bundles_free(old);
	return 0;
}

size_t
wick_wpt_verifier_replay_count(struct wick_wpt_verifier *v)
{
	size_t n;

	if (v == NULL || v->replay.tab == NULL)
		return 0;
	pthread_mutex_lock(&v->replay.mu);
	n = v->replay.used;
	pthread_mutex_unlock(&v->replay.mu);
	return n;
}

/*
 * The trust domain of a workload identifier: a SPIFFE ID always; with
 * WICK_WPT_ANY_WORKLOAD_ID also scheme://authority/path URIs without
 * userinfo, port, query or fragment.  *spiffe says which it was.
 */
static int
sub_td(const char *sub, unsigned flags, char td[WICK_MAX_TD + 1],
    int *spiffe, const char **why)
{
	struct spiffeid	 id;
	const char	*p, *a;
	size_t		 n;

	*spiffe = 0;
	if (strncmp(sub, "spiffe://", 9) == 0 || !(flags &
	    WICK_WPT_ANY_WORKLOAD_ID)) {
		if (spiffeid_parse(sub, 0, &id, why) != 0)
			return WICK_E_INVALID;
		*spiffe = 1;
		memcpy(td, id.td, strlen(id.td) + 1);
		return 0;
	}
	*why = "not an absolute URI with an authority and no userinfo, "
	    "port, query or fragment";
	for (p = sub; (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9' &&
	    p > sub) || ((*p == '+' || *p == '-' || *p == '.') && p > sub);
	    p++)
		;
	if (p == sub || strncmp(p, "://", 3) != 0)
		return WICK_E_INVALID;
	a = p + 3;
	n = strcspn(a, "/");
	if (n == 0 || n > WICK_MAX_TD || strpbrk(sub, "?#") != NULL ||
	    memchr(a, '@', n) != NULL || memchr(a, ':', n) != NULL ||
	    memchr(a, '%', n) != NULL)
		return WICK_E_INVALID;
	for (p = a; p < a + n; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
		    *p == '.' || *p == '-' || *p == '_'))
			return WICK_E_INVALID;	/* lower case only */
	memcpy(td, a, n);
	td[n] = '\0';
	return 0;
}

static int
fail(struct wick_wpt_result *res, enum wick_wpt_reason reason, int code,
    const char *fmt, ...)
{
	va_list ap;

	res->reason = reason;
	va_start(ap, fmt);
	vsnprintf(res->detail, sizeof(res->detail), fmt, ap);
	va_end(ap);
	return code;
}

/* The WIT's times at now: 0, or the failure. */
static int
wit_times(struct wick_wpt_result *res, int64_t exp, int64_t nbf,
    int64_t iat, int64_t now, int64_t lw)
{
	if (now > exp + lw)
		return fail(res, WICK_WPT_WIT_EXPIRED, WICK_E_EXPIRED, "WIT "
		    "expired at %lld, now is %lld", (long long)exp,
		    (long long)now);
	if ((nbf != 0 && nbf > now + lw) || (iat != 0 && iat > now + lw))
		return fail(res, WICK_WPT_WIT_NOT_YET_VALID, WICK_E_INVALID,
		    "WIT nbf or iat %lld is after now %lld",
		    (long long)(nbf > now + lw ? nbf : iat), (long long)now);
	return 0;
}

/* A hash claim against a token of the request (NULL: none sent). */
static int
hash_claim_ok(json_t *claims, const char *name, const char *tok)
{
	const char	*c = json_string_value(json_object_get(claims, name));
	char		 h[44];

	if (tok == NULL)
		return json_object_get(claims, name) == NULL;
	if (c == NULL || wick_token_hash(tok, h) != 0)
		return 0;
	return CRYPTO_memcmp(c, h, 44) == 0 && strlen(c) == 43;
}

static enum wick_wpt_reason
oth_check(json_t *claims, const struct wick_wpt_bind *b)
{
	json_t		*oth = json_object_get(claims, "oth"), *val;
	const char	*k, *c;
	char		 h[44];
	size_t		 i, n = b != NULL ? b->noth : 0;

	if (oth == NULL)
		return n == 0 ? WICK_WPT_OK : WICK_WPT_OTH;
	if (!json_is_object(oth))
		return WICK_WPT_OTH;
	json_object_foreach(oth, k, val) {
		for (i = 0; i < n; i++)
			if (strcmp(b->oth_names[i], k) == 0)
				break;
		if (i == n)
			return WICK_WPT_OTH_UNKNOWN;
		if ((c = json_string_value(val)) == NULL ||
		    oth_hash(b->oth_values[i], h) != 0 ||
		    strcmp(c, h) != 0)
			return WICK_WPT_OTH;
	}
	return json_object_size(oth) == n ? WICK_WPT_OK : WICK_WPT_OTH;
}

int
wick_wpt_verify(struct wick_wpt_verifier *v, const char *wit,
    const char *wpt, const struct wick_wpt_bind *b, int64_t now,
    struct wick_wpt_result *res)
{
	struct wick_bundles	*bundles = NULL;
	const struct wick_jwk	*ik;
	struct wick_jws		 wj, pj;
	struct wick_jwk		 cnf;
	struct wit_cached	 wc;
	json_t			*cj, *aud;
	const char		*why, *sub, *calg, *jti;
	char			 td[WICK_MAX_TD + 1], h[44];
	int64_t			 exp, lw;
	unsigned		 mask;
	int			 r, spiffe;

	memset(&wj, 0, sizeof(wj));
	memset(&pj, 0, sizeof(pj));
	memset(&cnf, 0, sizeof(cnf));
	memset(&wc, 0, sizeof(wc));
	if (res == NULL)
		return WICK_E_INVALID;
	memset(res, 0, sizeof(*res));
	if (v == NULL)
		return fail(res, WICK_WPT_INTERNAL, WICK_E_INVALID,
		    "no verifier");
	now = now_or(now);
	lw = v->leeway;
	mask = WICK_ALG_SPIFFE | (v->flags & WICK_WPT_ALLOW_EDDSA ?
	    WICK_ALG_EDDSA : 0);
	if (b != NULL && !bind_oth_ok(b))
		return fail(res, WICK_WPT_INTERNAL, WICK_E_INVALID,
		    "invalid oth names or values given");

	/* ---- the WIT ---- */
	if (wit == NULL || *wit == '\0')
		return fail(res, WICK_WPT_WIT_MISSING, WICK_E_INVALID,
		    "the request has no Workload-Identity-Token");
	if (strnlen(wit, WICK_MAX_WIMSE_TOKEN + 1) > WICK_MAX_WIMSE_TOKEN)
		return fail(res, WICK_WPT_WIT_TOO_LARGE, WICK_E_LIMIT,
		    "WIT longer than %d bytes", WICK_MAX_WIMSE_TOKEN);
	if (wick_token_hash(wit, h) != 0)
		return fail(res, WICK_WPT_INTERNAL, WICK_E_CRYPTO, "hashing");
	pthread_mutex_lock(&v->mu);
	bundles = wick_bundles_ref(v->bundles);
	pthread_mutex_unlock(&v->mu);
	if (wits_find(v, bundles, h, &wc)) {
		/* Verified before: only its times can have changed. */
		cnf.pkey = wc.key;
		sub = wc.sub;
		calg = wc.alg;
		if ((r = wit_times(res, wc.exp, wc.nbf, wc.iat, now,
		    lw)) != 0)
			goto out;
		goto proof;
	}
	if ((r = wick_jws_decode(wit, WICK_MAX_WIMSE_TOKEN, &wj, &why)) != 0) {
		r = fail(res, r == WICK_E_ALLOC ? WICK_WPT_INTERNAL :
		    WICK_WPT_WIT_MALFORMED, r, "WIT: %s", why);
		goto out;
	}
	if (!wick_typ_is(wj.typ, WICK_TYP_WIT)) {
		r = fail(res, WICK_WPT_WIT_TYP, WICK_E_INVALID, "WIT typ "
		    "\"%.32s\" is not \"wit+jwt\"", wj.typ ? wj.typ : "");
		goto out;
	}
	if (wick_jws_has_crit(&wj)) {
		r = fail(res, WICK_WPT_WIT_CRIT, WICK_E_INVALID, "WIT header "
		    "has crit, which no extension of ours understands");
		goto out;
	}
	if (!wick_alg_ok(wj.alg, mask)) {
		r = fail(res, WICK_WPT_WIT_ALG, WICK_E_INVALID, "WIT alg "
		    "\"%.16s\" is not allowed", wj.alg);
		goto out;
	}
	sub = json_string_value(json_object_get(wj.claims, "sub"));
	if (sub == NULL || strlen(sub) > WPT_MAX_SUB ||
	    sub_td(sub, v->flags, td, &spiffe, &why) != 0) {
		r = fail(res, WICK_WPT_WIT_SUB, WICK_E_INVALID, "WIT sub: %s",
		    sub == NULL ? "missing or not a string" :
		    strlen(sub) > WPT_MAX_SUB ? "too long" : why);
		goto out;
	}
	if (wick_bundles_find(bundles, td) == NULL) {
		r = fail(res, WICK_WPT_WIT_TRUST_DOMAIN, WICK_E_INVALID,
		    "no WIT bundle for trust domain \"%s\"", td);
		goto out;
	}
	if ((ik = wick_bundles_key(bundles, td, wj.kid)) == NULL) {
		r = fail(res, WICK_WPT_WIT_KID, WICK_E_INVALID, wj.kid ?
		    "WIT kid \"%.64s\" not in the bundle of \"%s\"" :
		    "WIT without kid%.0s and \"%s\" has several keys",
		    wj.kid ? wj.kid : "", td);
		goto out;
	}
	if ((ik->alg[0] != '\0' && strcmp(ik->alg, wj.alg) != 0) ||
	    wick_jws_verify_sig(&wj, wit, wj.alg, ik->pkey) != 0) {
		r = fail(res, WICK_WPT_WIT_SIGNATURE, WICK_E_SIGNATURE, "WIT "
		    "signature does not verify with key \"%.64s\" of \"%s\"",
		    ik->kid, td);
		goto out;
	}
	if ((r = wick_claim_time(wj.claims, "exp", &wc.exp)) != 0) {
		r = fail(res, WICK_WPT_WIT_EXP_MISSING, WICK_E_INVALID,
		    "WIT exp missing or not a positive number");
		goto out;
	}
	if (wick_claim_time(wj.claims, "nbf", &wc.nbf) != 0)
		wc.nbf = 0;
	if (wick_claim_time(wj.claims, "iat", &wc.iat) != 0)
		wc.iat = 0;
	if ((r = wit_times(res, wc.exp, wc.nbf, wc.iat, now, lw)) != 0)
		goto out;
	if (spiffe && json_object_get(wj.claims, "aud") != NULL) {
		r = fail(res, WICK_WPT_WIT_AUD, WICK_E_INVALID, "WIT-SVID "
		    "carries aud, which the SPIFFE profile forbids");
		goto out;
	}
	cj = json_object_get(json_object_get(wj.claims, "cnf"), "jwk");
	if (!json_is_object(cj)) {
		r = fail(res, WICK_WPT_WIT_CNF_MISSING, WICK_E_INVALID,
		    "WIT has no cnf.jwk object");
		goto out;
	}
	calg = json_string_value(json_object_get(cj, "alg"));
	if ((r = wick_jwk_parse(cj, 0, &cnf, &why)) != 0) {
		if (r == WICK_E_PERM)
			r = fail(res, WICK_WPT_WIT_CNF_PRIVATE, WICK_E_INVALID,
			    "WIT cnf.jwk carries private key members");
		else if (why == wick_why_alg_fit || (calg != NULL &&
		    r == WICK_E_UNSUPPORTED && !wick_alg_ok(calg, ~0u)))
			r = fail(res, WICK_WPT_WIT_CNF_ALG, WICK_E_INVALID,
			    "WIT cnf.jwk: %s", why);
		else
			r = fail(res, WICK_WPT_WIT_CNF_KEY, WICK_E_INVALID,
			    "WIT cnf.jwk: %s", why);
		goto out;
	}
	if (calg == NULL) {
		r = fail(res, WICK_WPT_WIT_CNF_ALG_MISSING, WICK_E_INVALID,
		    "WIT cnf.jwk has no alg, which the proof must use");
		goto out;
	}
	if (!wick_alg_ok(calg, mask)) {
		r = fail(res, WICK_WPT_WIT_CNF_ALG, WICK_E_INVALID, "WIT "
		    "cnf.jwk alg \"%.16s\" is not allowed", calg);
		goto out;
	}
	memcpy(wc.hash, h, sizeof(wc.hash));
	snprintf(wc.sub, sizeof(wc.sub), "%s", sub);
	snprintf(wc.alg, sizeof(wc.alg), "%s", calg);
	wc.key = cnf.pkey;
	wits_add(v, bundles, &wc);

	/* ---- the WPT, with the WIT's key ---- */
proof:
	if (wpt == NULL || *wpt == '\0') {
		r = fail(res, WICK_WPT_MISSING, WICK_E_INVALID, "the request "
		    "has no \"Authorization: WPT\" proof");
		goto out;
	}
	if ((r = wick_jws_decode(wpt, WICK_MAX_WIMSE_TOKEN, &pj, &why)) != 0) {
		if (r == WICK_E_LIMIT)
			r = fail(res, WICK_WPT_TOO_LARGE, r, "WPT longer "
			    "than %d bytes", WICK_MAX_WIMSE_TOKEN);
		else
			r = fail(res, r == WICK_E_ALLOC ? WICK_WPT_INTERNAL :
			    WICK_WPT_MALFORMED, r, "WPT: %s", why);
		goto out;
	}
	if (!wick_typ_is(pj.typ, WICK_TYP_WPT)) {
		r = fail(res, WICK_WPT_TYP, WICK_E_INVALID, "WPT typ "
		    "\"%.32s\" is not \"wpt+jwt\"", pj.typ ? pj.typ : "");
		goto out;
	}
	if (wick_jws_has_crit(&pj)) {
		r = fail(res, WICK_WPT_CRIT, WICK_E_INVALID, "WPT header "
		    "has crit");
		goto out;
	}
	if (strcmp(pj.alg, calg) != 0) {
		r = fail(res, WICK_WPT_ALG_MISMATCH, WICK_E_INVALID, "WPT alg "
		    "\"%.16s\" is not the WIT's cnf.jwk alg \"%s\"", pj.alg,
		    calg);
		goto out;
	}
	if (wick_jws_verify_sig(&pj, wpt, pj.alg, cnf.pkey) != 0) {
		r = fail(res, WICK_WPT_SIGNATURE, WICK_E_SIGNATURE, "WPT "
		    "signature does not verify with the WIT's cnf.jwk");
		goto out;
	}
	aud = json_object_get(pj.claims, "aud");
	if (aud == NULL) {
		r = fail(res, WICK_WPT_AUD_MISSING, WICK_E_INVALID,
		    "WPT has no aud");
		goto out;
	}
	if (!json_is_string(aud) || strcmp(json_string_value(aud),
	    v->audience) != 0) {
		r = fail(res, WICK_WPT_AUD, WICK_E_INVALID, "WPT aud "
		    "\"%.64s\" is not \"%.64s\"", json_is_string(aud) ?
		    json_string_value(aud) : "(not a string)", v->audience);
		goto out;
	}
	if (wick_claim_time(pj.claims, "exp", &exp) != 0) {
		r = fail(res, WICK_WPT_EXP_MISSING, WICK_E_INVALID,
		    "WPT exp missing or not a positive number");
		goto out;
	}
	if (now > exp + lw) {
		r = fail(res, WICK_WPT_EXPIRED, WICK_E_EXPIRED, "WPT expired "
		    "at %lld, now is %lld", (long long)exp, (long long)now);
		goto out;
	}
	if (exp - now > v->max_ttl + lw) {
		r = fail(res, WICK_WPT_EXP_TOO_FAR, WICK_E_INVALID, "WPT exp "
		    "%lld is more than %lld s after now %lld", (long long)exp,
		    (long long)(v->max_ttl + lw), (long long)now);
		goto out;
	}
	jti = json_string_value(json_object_get(pj.claims, "jti"));
	if (jti == NULL || *jti == '\0' || strlen(jti) > WPT_MAX_JTI) {
		r = fail(res, WICK_WPT_JTI_MISSING, WICK_E_INVALID, "WPT jti "
		    "missing, empty, not a string or over %d bytes",
		    WPT_MAX_JTI);
		goto out;
	}
	if (json_object_get(pj.claims, "wth") == NULL) {
		r = fail(res, WICK_WPT_WTH_MISSING, WICK_E_INVALID,
		    "WPT has no wth");
		goto out;
	}
	if (!hash_claim_ok(pj.claims, "wth", wit)) {
		r = fail(res, WICK_WPT_WTH, WICK_E_INVALID, "WPT wth is not "
		    "the hash of this WIT (%s)", h);
		goto out;
	}
	if (!hash_claim_ok(pj.claims, "ath", b ? b->access_token : NULL)) {
		r = fail(res, WICK_WPT_ATH, WICK_E_INVALID, "WPT ath %s",
		    b && b->access_token ? "does not match the access token" :
		    "present but the request has no access token");
		goto out;
	}
	if (!hash_claim_ok(pj.claims, "tth", b ? b->txn_token : NULL)) {
		r = fail(res, WICK_WPT_TTH, WICK_E_INVALID, "WPT tth %s",
		    b && b->txn_token ? "does not match the Txn-Token" :
		    "present but the request has no Txn-Token");
		goto out;
	}
	switch (oth_check(pj.claims, b)) {
	case WICK_WPT_OK:
		break;
	case WICK_WPT_OTH_UNKNOWN:
		r = fail(res, WICK_WPT_OTH_UNKNOWN, WICK_E_INVALID, "WPT oth "
		    "names a token this request does not carry");
		goto out;
	default:
		r = fail(res, WICK_WPT_OTH, WICK_E_INVALID, "WPT oth is not "
		    "an object of hashes of exactly the request's tokens");
		goto out;
	}
	if (!(v->flags & WICK_WPT_NO_REPLAY)) {
		switch (replay_check(&v->replay, sub, jti, exp + lw, now)) {
		case WICK_WPT_OK:
			break;
		case WICK_WPT_REPLAY:
			r = fail(res, WICK_WPT_REPLAY, WICK_E_INVALID, "WPT "
			    "jti \"%.64s\" of %.128s already seen", jti, sub);
			goto out;
		default:
			r = fail(res, WICK_WPT_REPLAY_FULL, WICK_E_LIMIT, "WPT "
			    "replay cache holds %zu live entries",
			    v->replay.max);
			goto out;
		}
	}
	res->reason = WICK_WPT_OK;
	snprintf(res->sub, sizeof(res->sub), "%s", sub);
	res->wpt_exp = exp;
	res->wit_exp = wc.exp;
	r = 0;
out:
	wick_jwk_cleanup(&cnf);
	wick_jws_cleanup(&wj);
	wick_jws_cleanup(&pj);
	wick_bundles_free(bundles);
	return r;
}
