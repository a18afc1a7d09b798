/*
 * svid.c: X.509-SVIDs and contexts (decoded from the Workload API),
 * X.509-SVID verification with go-spiffe's rules, and JWT-SVIDs with
 * their local validation.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "pkey.h"
#include "spiffeid.h"
#include "workload.pb-c.h"
#include "x509.h"
#include "wick_int.h"

/* ---- X.509-SVIDs --------------------------------------------------------- */

const char *
wick_x509_svid_id(const struct wick_x509_svid *s)
{
	return s->id;
}

const char *
wick_x509_svid_hint(const struct wick_x509_svid *s)
{
	return s->hint != NULL ? s->hint : "";
}

int64_t
wick_x509_svid_expires(const struct wick_x509_svid *s)
{
	return x509_not_after(sk_X509_value(s->chain, 0));
}

void *
wick_x509_svid_leaf(const struct wick_x509_svid *s)
{
	return sk_X509_value(s->chain, 0);
}

void *
wick_x509_svid_chain(const struct wick_x509_svid *s)
{
	return s->chain;
}

void *
wick_x509_svid_key(const struct wick_x509_svid *s)
{
	return s->key;
}

void
wick_free_secret(char *s)
{
	if (s != NULL)
		OPENSSL_clear_free(s, strlen(s));
}

/* A memory BIO's contents as a string. */
static int
bio_string(BIO *bio, char **out)
{
	char	*p, *s;
	long	 n = BIO_get_mem_data(bio, &p);

	if (n < 0 || (s = malloc((size_t)n + 1)) == NULL)
		return WICK_E_ALLOC;
	memcpy(s, p, (size_t)n);
	s[n] = '\0';
	*out = s;
	return 0;
}

int
wick_x509_svid_chain_pem(const struct wick_x509_svid *s, char **out)
{
	BIO	*bio;
	int	 i, r = WICK_E_ALLOC;

	*out = NULL;
	if ((bio = BIO_new(BIO_s_mem())) == NULL)
		return WICK_E_ALLOC;
	for (i = 0; i < sk_X509_num(s->chain); i++)
		if (PEM_write_bio_X509(bio, sk_X509_value(s->chain, i)) != 1)
			goto out;
	r = bio_string(bio, out);
out:
	BIO_free(bio);
	return r;
}

int
wick_x509_svid_key_pem(const struct wick_x509_svid *s, char **out)
{
	BIO	*bio;
	char	*p;
	long	 n;
	int	 r = WICK_E_ALLOC;

	*out = NULL;
	if ((bio = BIO_new(BIO_s_secmem())) == NULL)
		return WICK_E_ALLOC;
	if (PEM_write_bio_PrivateKey(bio, s->key, NULL, NULL, 0, NULL,
	    NULL) == 1 && (n = BIO_get_mem_data(bio, &p)) > 0 &&
	    (*out = malloc((size_t)n + 1)) != NULL) {
		memcpy(*out, p, (size_t)n);
		(*out)[n] = '\0';
		r = 0;
	}
	BIO_free(bio);
	return r;
}

static void
svid_cleanup(struct wick_x509_svid *s)
{
	free(s->id);
	free(s->hint);
	sk_X509_pop_free(s->chain, X509_free);
	EVP_PKEY_free(s->key);
}

size_t
wick_x509_context_count(const struct wick_x509_context *c)
{
	return c->n;
}

const struct wick_x509_svid *
wick_x509_context_svid(const struct wick_x509_context *c, size_t i)
{
	return i < c->n ? &c->svids[i] : NULL;
}

const struct wick_x509_svid *
wick_x509_context_find(const struct wick_x509_context *c, const char *hint)
{
	size_t i;

	if (c->n == 0)
		return NULL;
	if (hint == NULL || *hint == '\0')
		return &c->svids[0];
	for (i = 0; i < c->n; i++)
		if (c->svids[i].hint != NULL &&
		    strcmp(c->svids[i].hint, hint) == 0)
			return &c->svids[i];
	return NULL;
}

struct wick_bundles *
wick_x509_context_bundles(const struct wick_x509_context *c)
{
	return c->bundles;
}

struct wick_x509_context *
wick_x509_context_ref(struct wick_x509_context *c)
{
	if (c != NULL)
		atomic_fetch_add(&c->refs, 1);
	return c;
}

void
wick_x509_context_free(struct wick_x509_context *c)
{
	size_t i;

	if (c == NULL || atomic_fetch_sub(&c->refs, 1) != 1)
		return;
	for (i = 0; i < c->n; i++)
		svid_cleanup(&c->svids[i]);
	free(c->svids);
	wick_bundles_free(c->bundles);
	free(c);
}

static void
svid_response_free(X509SVIDResponse *m)
{
	size_t i;

	for (i = 0; i < m->n_svids; i++)
		if (m->svids[i]->x509_svid_key.data != NULL)
			OPENSSL_cleanse(m->svids[i]->x509_svid_key.data,
			    m->svids[i]->x509_svid_key.len);
	x509_svidresponse__free_unpacked(m, NULL);
}

int
wick_x509_context_decode(const uint8_t *p, size_t len,
    struct wick_x509_context **out, char *why, size_t whylen)
{
	struct wick_x509_context	*c = NULL;
	X509SVIDResponse		*m = NULL;
	X509SVID			*s;
	struct wick_x509_svid		*v;
	struct spiffeid			 sid;
	STACK_OF(X509)			*sk = NULL;
	char				 td[SPIFFEID_MAX_TD_LEN + 1];
	const char			*w;
	char				*id;
	size_t				 i;
	int				 r = WICK_E_PROTOCOL;

	*out = NULL;
	if ((m = x509_svidresponse__unpack(NULL, len, p)) == NULL) {
		wick_why(why, whylen, "malformed X509SVIDResponse");
		return WICK_E_PROTOCOL;
	}
	if (m->n_svids == 0 || m->n_svids > WICK_MAX_SVIDS ||
	    m->n_federated_bundles > WICK_MAX_BUNDLES) {
		wick_why(why, whylen, "X509SVIDResponse with %zu SVIDs and "
		    "%zu federated bundles", m->n_svids,
		    m->n_federated_bundles);
		goto out;
	}
	if ((c = calloc(1, sizeof(*c))) == NULL ||
	    (c->svids = calloc(m->n_svids, sizeof(*c->svids))) == NULL) {
		r = WICK_E_ALLOC;
		goto out;
	}
	atomic_init(&c->refs, 1);
	if ((r = wick_bundles_new(WICK_BUNDLE_X509, &c->bundles)) != 0)
		goto out;
	r = WICK_E_PROTOCOL;
	for (i = 0; i < m->n_svids; i++) {
		s = m->svids[i];
		v = &c->svids[c->n];
		if (x509_chain_from_der(s->x509_svid.data, s->x509_svid.len,
		    WICK_MAX_CHAIN, &v->chain) != 0 ||
		    pkey_from_pkcs8_der(s->x509_svid_key.data,
		    s->x509_svid_key.len, &v->key) != 0 ||
		    X509_check_private_key(sk_X509_value(v->chain, 0),
		    v->key) != 1 ||
		    x509_spiffe_id(sk_X509_value(v->chain, 0), &id, &w) != 0) {
			ERR_clear_error();
			svid_cleanup(v);
			wick_why(why, whylen, "SVID %zu: bad chain, key or ID",
			    i);
			goto out;
		}
		v->id = id;
		c->n++;
		if (s->hint != NULL && *s->hint != '\0' &&
		    (v->hint = strdup(s->hint)) == NULL) {
			r = WICK_E_ALLOC;
			goto out;
		}
		if (spiffeid_parse(id, 0, &sid, NULL) != 0) {
			wick_why(why, whylen, "SVID %zu: invalid SPIFFE ID", i);
			goto out;
		}
		memcpy(td, sid.td, strlen(sid.td) + 1);
		if (wick_bundles_find(c->bundles, td) != NULL)
			continue;
		if (x509_chain_from_der(s->bundle.data, s->bundle.len,
		    WICK_MAX_BUNDLE_CERTS, &sk) != 0 ||
		    wick_bundles_add_certs(c->bundles, td, sk) != 0) {
			sk_X509_pop_free(sk, X509_free);
			wick_why(why, whylen, "SVID %zu: bad bundle", i);
			goto out;
		}
	}
	for (i = 0; i < m->n_federated_bundles; i++) {
		if (spiffeid_td_parse(m->federated_bundles[i]->key, 0, td,
		    NULL) != 0 || x509_chain_from_der(
		    m->federated_bundles[i]->value.data,
		    m->federated_bundles[i]->value.len,
		    WICK_MAX_BUNDLE_CERTS, &sk) != 0) {
			wick_why(why, whylen, "bad federated bundle");
			goto out;
		}
		if (wick_bundles_find(c->bundles, td) != NULL) {
			sk_X509_pop_free(sk, X509_free);
			continue;
		}
		if ((r = wick_bundles_add_certs(c->bundles, td, sk)) != 0) {
			sk_X509_pop_free(sk, X509_free);
			goto out;
		}
		r = WICK_E_PROTOCOL;
	}
	*out = c;
	c = NULL;
	r = 0;
out:
	ERR_clear_error();
	wick_x509_context_free(c);
	svid_response_free(m);
	return r;
}

/* ---- X.509-SVID verification (go-spiffe x509svid.Verify) ----------------- */

int
wick_x509svid_verify(void *chainp, const struct wick_bundles *b,
    int64_t now, char **idp, char *why, size_t whylen)
{
	STACK_OF(X509)			*chain = chainp, *inter = NULL;
	const struct wick_td_bundle	*t;
	X509_STORE			*st = NULL;
	X509_STORE_CTX			*sc = NULL;
	X509				*leaf;
	uint32_t			 ku;
	char				*id = NULL;
	const char			*w;
	struct spiffeid			 sid;
	int				 i, r = WICK_E_INVALID;

	if (idp != NULL)
		*idp = NULL;
	if (chain == NULL || sk_X509_num(chain) < 1 || b == NULL ||
	    b->kind != WICK_BUNDLE_X509) {
		wick_why(why, whylen, "no certificate or no X.509 bundles");
		return WICK_E_INVALID;
	}
	if (sk_X509_num(chain) > WICK_MAX_CHAIN) {
		wick_why(why, whylen, "chain longer than %d", WICK_MAX_CHAIN);
		return WICK_E_LIMIT;
	}
	leaf = sk_X509_value(chain, 0);
	if (X509_check_ca(leaf) != 0 && (X509_get_extension_flags(leaf) &
	    EXFLAG_CA)) {
		wick_why(why, whylen, "leaf certificate is a CA");
		goto out;
	}
	ku = X509_get_key_usage(leaf);
	if (!(X509_get_extension_flags(leaf) & EXFLAG_KUSAGE) ||
	    !(ku & KU_DIGITAL_SIGNATURE)) {
		wick_why(why, whylen, "leaf certificate lacks the "
		    "digitalSignature key usage");
		goto out;
	}
	if (ku & (KU_KEY_CERT_SIGN | KU_CRL_SIGN)) {
		wick_why(why, whylen, "leaf certificate has keyCertSign or "
		    "cRLSign key usage");
		goto out;
	}
	if (x509_spiffe_id(leaf, &id, &w) != 0) {
		wick_why(why, whylen, "leaf: %s", w);
		goto out;
	}
	if (spiffeid_parse(id, 0, &sid, &w) != 0) {
		wick_why(why, whylen, "leaf SPIFFE ID: %s", w);
		goto out;
	}
	if ((t = wick_bundles_find(b, sid.td)) == NULL || t->certs == NULL) {
		wick_why(why, whylen, "no X.509 bundle for trust domain "
		    "\"%s\"", sid.td);
		r = WICK_E_NOT_FOUND;
		goto out;
	}
	r = WICK_E_ALLOC;
	if ((st = X509_STORE_new()) == NULL ||
	    (sc = X509_STORE_CTX_new()) == NULL ||
	    (inter = sk_X509_new_null()) == NULL)
		goto out;
	for (i = 0; i < sk_X509_num(t->certs); i++)
		if (X509_STORE_add_cert(st, sk_X509_value(t->certs, i)) != 1)
			goto out;
	for (i = 1; i < sk_X509_num(chain); i++)
		if (!sk_X509_push(inter, sk_X509_value(chain, i)))
			goto out;
	if (X509_STORE_CTX_init(sc, st, leaf, inter) != 1)
		goto out;
	X509_STORE_CTX_set_time(sc, 0, (time_t)(now != 0 ? now :
	    time(NULL)));
	/* Any extended key usage, as go-spiffe asks for. */
	X509_STORE_CTX_set_purpose(sc, X509_PURPOSE_ANY);
	r = WICK_E_SIGNATURE;
	if (X509_verify_cert(sc) != 1) {
		i = X509_STORE_CTX_get_error(sc);
		wick_why(why, whylen, "chain does not verify against the "
		    "bundle of \"%s\": %s", sid.td,
		    X509_verify_cert_error_string(i));
		if (i == X509_V_ERR_CERT_HAS_EXPIRED ||
		    i == X509_V_ERR_CERT_NOT_YET_VALID)
			r = WICK_E_EXPIRED;
		goto out;
	}
	if (idp != NULL) {
		*idp = id;
		id = NULL;
	}
	r = 0;
out:
	ERR_clear_error();
	free(id);
	sk_X509_free(inter);
	X509_STORE_CTX_free(sc);
	X509_STORE_free(st);
	return r;
}

int
wick_x509svid_verify_der(const void *der, size_t len,
    const struct wick_bundles *b, int64_t now, char **id, char *why,
    size_t whylen)
{
	STACK_OF(X509)	*sk = NULL;
	int		 r;

	if (id != NULL)
		*id = NULL;
	if ((r = x509_chain_from_der(der, len, WICK_MAX_CHAIN, &sk)) != 0) {
		ERR_clear_error();
		wick_why(why, whylen, "not concatenated DER certificates "
		    "(at most %d)", WICK_MAX_CHAIN);
		return r == WICK_ERR_LIMIT ? WICK_E_LIMIT : WICK_E_INVALID;
	}
	r = wick_x509svid_verify(sk, b, now, id, why, whylen);
	sk_X509_pop_free(sk, X509_free);
	return r;
}

/* ---- JWT-SVIDs ----------------------------------------------------------- */

struct wick_jwt_svid {
	char	*id;
	char	*token;
	char	*hint;
	int64_t	 exp;
};

int	 wick_jwt_svid_make(const char *, const char *, const char *,
	    struct wick_jwt_svid **);

int
wick_jwt_svid_make(const char *id, const char *token, const char *hint,
    struct wick_jwt_svid **out)
{
	struct wick_jwt_svid	*s;
	struct wick_jws		 j;
	const char		*why;

	*out = NULL;
	if (id == NULL || token == NULL ||
	    wick_jws_decode(token, WICK_MAX_TOKEN, &j, &why) != 0)
		return WICK_E_PROTOCOL;
	if ((s = calloc(1, sizeof(*s))) == NULL ||
	    (s->id = strdup(id)) == NULL ||
	    (s->token = strdup(token)) == NULL ||
	    (s->hint = strdup(hint != NULL ? hint : "")) == NULL) {
		wick_jws_cleanup(&j);
		wick_jwt_svid_free(s);
		return WICK_E_ALLOC;
	}
	(void)wick_claim_time(j.claims, "exp", &s->exp);
	wick_jws_cleanup(&j);
	*out = s;
	return 0;
}

const char *
wick_jwt_svid_id(const struct wick_jwt_svid *s)
{
	return s->id;
}

const char *
wick_jwt_svid_token(const struct wick_jwt_svid *s)
{
	return s->token;
}

const char *
wick_jwt_svid_hint(const struct wick_jwt_svid *s)
{
	return s->hint;
}

int64_t
wick_jwt_svid_expires(const struct wick_jwt_svid *s)
{
	return s->exp;
}

void
wick_jwt_svid_free(struct wick_jwt_svid *s)
{
	if (s == NULL)
		return;
	free(s->id);
	if (s->token != NULL)	/* a bearer token: wipe it */
		OPENSSL_clear_free(s->token, strlen(s->token));
	free(s->hint);
	free(s);
}

static int
aud_has(json_t *aud, const char *const *want, size_t n)
{
	json_t	*v;
	size_t	 i, k;

	for (k = 0; k < n; k++) {
		if (json_is_string(aud) &&
		    strcmp(json_string_value(aud), want[k]) == 0)
			return 1;
		if (json_is_array(aud))
			json_array_foreach(aud, i, v)
				if (json_is_string(v) &&
				    strcmp(json_string_value(v), want[k]) == 0)
					return 1;
	}
	return 0;
}

int
wick_jwtsvid_validate(const char *token, const struct wick_bundles *b,
    const char *const *aud, size_t naud, int64_t now, char **idp,
    char **claims_json, char *why, size_t whylen)
{
	const struct wick_jwk	*k;
	struct wick_jws		 j;
	struct spiffeid		 sid;
	const char		*w, *sub;
	int64_t			 exp;
	int			 r;

	if (idp != NULL)
		*idp = NULL;
	if (claims_json != NULL)
		*claims_json = NULL;
	if (token == NULL || b == NULL || b->kind != WICK_BUNDLE_JWT ||
	    aud == NULL || naud == 0) {
		wick_why(why, whylen, "token, JWT bundles and an audience are "
		    "needed");
		return WICK_E_INVALID;
	}
	now = now != 0 ? now : (int64_t)time(NULL);
	if ((r = wick_jws_decode(token, WICK_MAX_TOKEN, &j, &w)) != 0) {
		wick_why(why, whylen, "%s", w);
		return r;
	}
	r = WICK_E_INVALID;
	if (!wick_alg_ok(j.alg, WICK_ALG_SPIFFE)) {
		wick_why(why, whylen, "unsupported token signature algorithm "
		    "\"%.16s\"", j.alg);
		goto out;
	}
	if (j.typ != NULL && strcmp(j.typ, "JWT") != 0 &&
	    strcmp(j.typ, "JOSE") != 0) {
		wick_why(why, whylen, "token header typ \"%.32s\" is not JWT "
		    "or JOSE", j.typ);
		goto out;
	}
	if (j.kid == NULL) {
		wick_why(why, whylen, "token header missing key id");
		goto out;
	}
	if ((sub = json_string_value(json_object_get(j.claims,
	    "sub"))) == NULL || spiffeid_parse(sub, 0, &sid, &w) != 0) {
		wick_why(why, whylen, "token has an invalid subject claim");
		goto out;
	}
	if (wick_bundles_find(b, sid.td) == NULL) {
		wick_why(why, whylen, "no bundle found for trust domain "
		    "\"%s\"", sid.td);
		r = WICK_E_NOT_FOUND;
		goto out;
	}
	if ((k = wick_bundles_key(b, sid.td, j.kid)) == NULL) {
		wick_why(why, whylen, "no JWT authority \"%.64s\" found for "
		    "trust domain \"%s\"", j.kid, sid.td);
		r = WICK_E_NOT_FOUND;
		goto out;
	}
	if (wick_jws_verify_sig(&j, token, j.alg, k->pkey) != 0) {
		wick_why(why, whylen, "unable to verify the token signature");
		r = WICK_E_SIGNATURE;
		goto out;
	}
	if (wick_claim_time(j.claims, "exp", &exp) != 0) {
		wick_why(why, whylen, "token is missing exp claim");
		goto out;
	}
	if (now > exp) {
		wick_why(why, whylen, "token has expired");
		r = WICK_E_EXPIRED;
		goto out;
	}
	if ((wick_claim_time(j.claims, "nbf", &exp) == 0 && exp > now) ||
	    (wick_claim_time(j.claims, "iat", &exp) == 0 && exp > now)) {
		wick_why(why, whylen, "token is not valid yet");
		goto out;
	}
	if (!aud_has(json_object_get(j.claims, "aud"), aud, naud)) {
		wick_why(why, whylen, "token audience holds none of the %zu "
		    "expected audiences (first \"%.64s\")", naud, aud[0]);
		goto out;
	}
	r = WICK_E_ALLOC;
	if (idp != NULL && (*idp = strdup(sub)) == NULL)
		goto out;
	if (claims_json != NULL && (*claims_json = json_dumps(j.claims,
	    JSON_COMPACT | JSON_SORT_KEYS)) == NULL) {
		if (idp != NULL) {
			free(*idp);
			*idp = NULL;
		}
		goto out;
	}
	r = 0;
out:
	wick_jws_cleanup(&j);
	return r;
}
