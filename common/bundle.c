/*
 * bundle.c: SPIFFE bundles and their encodings.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "bundle.h"
#include "types.pb-c.h"
#include "x509.h"
#include "xmalloc.h"

static const char *const use_names[2] = { "jwt-svid", "wit-svid" };

int
bundle_new(const char *td, struct bundle **out)
{
	struct bundle	*b;
	const char	*why;

	*out = NULL;
	if ((b = calloc(1, sizeof(*b))) == NULL)
		return WICK_ERR_ALLOC;
	if (spiffeid_td_parse(td, 0, b->td, &why) != 0) {
		free(b);
		return WICK_ERR_INVALID;
	}
	if ((b->x509 = sk_X509_new_null()) == NULL) {
		free(b);
		return WICK_ERR_ALLOC;
	}
	*out = b;
	return 0;
}

void
bundle_free(struct bundle *b)
{
	size_t u, i;

	if (b == NULL)
		return;
	sk_X509_pop_free(b->x509, X509_free);
	for (u = 0; u < 2; u++)
		for (i = 0; i < b->nkeys[u]; i++)
			free(b->keys[u][i].spki);
	free(b);
}

int
bundle_dup(const struct bundle *src, struct bundle **out)
{
	struct bundle	*b;
	const struct bundle_key *k;
	size_t		 u, i;
	int		 r;

	if ((r = bundle_new(src->td, &b)) != 0)
		return r;
	for (i = 0; i < (size_t)sk_X509_num(src->x509); i++)
		if ((r = bundle_add_x509(b, sk_X509_value(src->x509,
		    (int)i))) != 0)
			goto fail;
	for (u = 0; u < 2; u++)
		for (i = 0; i < src->nkeys[u]; i++) {
			k = &src->keys[u][i];
			if ((r = bundle_add_key(b, (enum bundle_use)u, k->kid,
			    k->spki, k->spki_len, k->expires_at)) != 0)
				goto fail;
		}
	b->refresh_hint = src->refresh_hint;
	b->sequence = src->sequence;
	*out = b;
	return 0;
fail:
	bundle_free(b);
	return r;
}

int
bundle_add_x509(struct bundle *b, X509 *cert)
{
	int i;

	for (i = 0; i < sk_X509_num(b->x509); i++)
		if (X509_cmp(sk_X509_value(b->x509, i), cert) == 0)
			return 0;
	if (sk_X509_num(b->x509) >= BUNDLE_MAX_X509)
		return WICK_ERR_LIMIT;
	/* OpenSSL parses certificates whose key it cannot decode; such an
	 * authority could never verify anything. */
	if (X509_get0_pubkey(cert) == NULL)
		return WICK_ERR_INVALID;
	if (!X509_up_ref(cert))
		return WICK_ERR_CRYPTO;
	if (sk_X509_push(b->x509, cert) <= 0) {
		X509_free(cert);
		return WICK_ERR_ALLOC;
	}
	return 0;
}

int
bundle_add_key(struct bundle *b, enum bundle_use use, const char *kid,
    const uint8_t *spki, size_t len, int64_t expires_at)
{
	struct bundle_key	*k;
	size_t			 i;

	if ((unsigned)use > BUNDLE_USE_WIT || kid == NULL || *kid == '\0' ||
	    strlen(kid) > JOSE_MAX_KID_LEN || len == 0 || len > 16384)
		return WICK_ERR_INVALID;
	for (i = 0; i < b->nkeys[use]; i++) {
		k = &b->keys[use][i];
		if (strcmp(k->kid, kid) != 0)
			continue;
		if (k->spki_len == len && memcmp(k->spki, spki, len) == 0)
			return 0;
		return WICK_ERR_EXISTS;
	}
	if (b->nkeys[use] >= BUNDLE_MAX_KEYS)
		return WICK_ERR_LIMIT;
	k = &b->keys[use][b->nkeys[use]];
	if ((k->spki = malloc(len)) == NULL)
		return WICK_ERR_ALLOC;
	memcpy(k->spki, spki, len);
	k->spki_len = len;
	snprintf(k->kid, sizeof(k->kid), "%s", kid);
	k->expires_at = expires_at;
	b->nkeys[use]++;
	return 0;
}

void
bundle_prune(struct bundle *b, int64_t cutoff, int *changed)
{
	struct bundle_key	*k;
	X509			*c;
	size_t			 u, i;
	int			 j;

	for (j = sk_X509_num(b->x509) - 1; j >= 0; j--) {
		c = sk_X509_value(b->x509, j);
		if (x509_not_after(c) < cutoff) {
			(void)sk_X509_delete(b->x509, j);
			X509_free(c);
			*changed = 1;
		}
	}
	for (u = 0; u < 2; u++)
		for (i = 0; i < b->nkeys[u];) {
			k = &b->keys[u][i];
			if (k->expires_at == 0 || k->expires_at >= cutoff) {
				i++;
				continue;
			}
			free(k->spki);
			memmove(k, k + 1, (b->nkeys[u] - i - 1) * sizeof(*k));
			b->nkeys[u]--;
			*changed = 1;
		}
}

int
bundle_same_content(const struct bundle *a, const struct bundle *b)
{
	const struct bundle_key	*ka, *kb;
	size_t			 u, i, j;
	int			 n;

	if (strcmp(a->td, b->td) != 0 ||
	    (n = sk_X509_num(a->x509)) != sk_X509_num(b->x509))
		return 0;
	for (j = 0; j < (size_t)n; j++)
		if (X509_cmp(sk_X509_value(a->x509, (int)j),
		    sk_X509_value(b->x509, (int)j)) != 0)
			return 0;
	for (u = 0; u < 2; u++) {
		if (a->nkeys[u] != b->nkeys[u])
			return 0;
		for (i = 0; i < a->nkeys[u]; i++) {
			ka = &a->keys[u][i];
			kb = &b->keys[u][i];
			if (strcmp(ka->kid, kb->kid) != 0 ||
			    ka->spki_len != kb->spki_len ||
			    memcmp(ka->spki, kb->spki, ka->spki_len) != 0)
				return 0;
		}
	}
	return 1;
}

void
bundle_td_id(const struct bundle *b, char *out, size_t outlen)
{
	snprintf(out, outlen, "spiffe://%s", b->td);
}

/* ---- JWK helpers -------------------------------------------------------- */

static int
pkey_jwk(EVP_PKEY *pk, const char *kid, const char *use, json_t **out)
{
	struct jose_key	*jk;
	int		 r;

	*out = NULL;
	if ((r = jose_key_from_pkey(pk, kid != NULL ? kid : "x", &jk)) != 0)
		return r;
	r = jose_key_to_jwk(jk, 0, out);
	jose_key_free(jk);
	if (r != 0)
		return r;
	if (kid == NULL)
		json_object_del(*out, "kid");
	if (json_object_set_new(*out, "use", json_string(use)) != 0) {
		json_decref(*out);
		*out = NULL;
		return WICK_ERR_ALLOC;
	}
	return 0;
}

static int
key_jwk(const struct bundle_key *k, const char *use, json_t **out)
{
	const uint8_t	*p = k->spki;
	EVP_PKEY	*pk;
	int		 r;

	if ((pk = d2i_PUBKEY(NULL, &p, (long)k->spki_len)) == NULL)
		return WICK_ERR_INVALID;
	r = pkey_jwk(pk, k->kid, use, out);
	EVP_PKEY_free(pk);
	return r;
}

static int
x509_jwk(X509 *c, json_t **out)
{
	json_t		*x5c;
	uint8_t		*der = NULL;
	char		*b64;
	int		 len, r;

	/* Any CA a federated trust domain uses, not only keys we sign with. */
	if ((r = jose_public_jwk(X509_get0_pubkey(c), out)) != 0)
		return r;
	if (json_object_set_new(*out, "use", json_string("x509-svid")) != 0) {
		r = WICK_ERR_ALLOC;
		goto fail;
	}
	if ((len = i2d_X509(c, &der)) <= 0) {
		r = WICK_ERR_CRYPTO;
		goto fail;
	}
	if ((b64 = malloc(4 * (((size_t)len + 2) / 3) + 1)) == NULL) {
		OPENSSL_free(der);
		r = WICK_ERR_ALLOC;
		goto fail;
	}
	EVP_EncodeBlock((unsigned char *)b64, der, len);
	OPENSSL_free(der);
	x5c = json_array();
	r = x5c == NULL || json_array_append_new(x5c, json_string(b64)) != 0 ||
	    json_object_set_new(*out, "x5c", x5c) != 0 ? WICK_ERR_ALLOC : 0;
	free(b64);
	if (r == 0)
		return 0;
fail:
	json_decref(*out);
	*out = NULL;
	return r;
}

static int
dump_json(json_t *o, char **out)
{
	*out = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	return *out == NULL ? WICK_ERR_ALLOC : 0;
}

int
bundle_to_spiffe_json(const struct bundle *b, char **out)
{
	json_t	*doc, *keys, *k;
	size_t	 u, i;
	int	 r;

	*out = NULL;
	doc = json_object();
	keys = json_array();
	if (doc == NULL || keys == NULL || json_object_set_new(doc, "keys",
	    keys) != 0) {
		json_decref(doc);
		return WICK_ERR_ALLOC;
	}
	for (i = 0; i < (size_t)sk_X509_num(b->x509); i++) {
		if ((r = x509_jwk(sk_X509_value(b->x509, (int)i), &k)) != 0)
			goto fail;
		if (json_array_append_new(keys, k) != 0)
			goto nomem;
	}
	for (u = 0; u < 2; u++)
		for (i = 0; i < b->nkeys[u]; i++) {
			if ((r = key_jwk(&b->keys[u][i], use_names[u], &k)) != 0)
				goto fail;
			if (json_array_append_new(keys, k) != 0)
				goto nomem;
		}
	if (json_object_set_new(doc, "spiffe_sequence",
	    json_integer((json_int_t)b->sequence)) != 0)
		goto nomem;
	if (b->refresh_hint > 0 && json_object_set_new(doc,
	    "spiffe_refresh_hint", json_integer(b->refresh_hint)) != 0)
		goto nomem;
	return dump_json(doc, out);
nomem:
	r = WICK_ERR_ALLOC;
fail:
	json_decref(doc);
	return r;
}

static int
b64_decode_std(const char *s, uint8_t **out, size_t *outlen)
{
	size_t	 n = strlen(s), i, pad = 0;
	uint8_t	*buf;
	int	 len;

	*out = NULL;
	if (n == 0 || n % 4 != 0 || n > 4 * (X509_MAX_CERT_DER / 3 + 1))
		return WICK_ERR_INVALID;
	for (i = 0; i < n; i++) {
		if (s[i] == '=' && i >= n - 2)
			pad++;
		else if (!((s[i] >= 'A' && s[i] <= 'Z') ||
		    (s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' &&
		    s[i] <= '9') || s[i] == '+' || s[i] == '/') || pad > 0)
			return WICK_ERR_INVALID;
	}
	if ((buf = malloc(n / 4 * 3 + 1)) == NULL)
		return WICK_ERR_ALLOC;
	if ((len = EVP_DecodeBlock(buf, (const unsigned char *)s,
	    (int)n)) < 0) {
		free(buf);
		return WICK_ERR_INVALID;
	}
	*out = buf;
	*outlen = (size_t)len - pad;
	return 0;
}

static int
parse_x509_jwk(struct bundle *b, json_t *k, const char **why)
{
	json_t		*x5c = json_object_get(k, "x5c");
	const char	*s;
	const uint8_t	*p;
	uint8_t		*der;
	size_t		 len;
	X509		*c;
	int		 r;

	*why = "x509-svid key without an x5c certificate";
	if (!json_is_array(x5c) || json_array_size(x5c) < 1 ||
	    (s = json_string_value(json_array_get(x5c, 0))) == NULL)
		return WICK_ERR_INVALID;
	*why = "x5c is not base64";
	if ((r = b64_decode_std(s, &der, &len)) != 0)
		return r;
	p = der;
	c = d2i_X509(NULL, &p, (long)len);
	*why = "x5c is not a DER certificate";
	if (c == NULL || p != der + len) {
		X509_free(c);
		free(der);
		return WICK_ERR_INVALID;
	}
	free(der);
	*why = "too many X.509 authorities";
	r = bundle_add_x509(b, c);
	X509_free(c);
	return r;
}

static int
parse_key_jwk(struct bundle *b, enum bundle_use use, json_t *k,
    const char **why)
{
	const char	*kid = json_string_value(json_object_get(k, "kid"));
	EVP_PKEY	*pk;
	uint8_t		*der = NULL;
	int		 len, r;

	*why = "key without a kid";
	if (kid == NULL || *kid == '\0' || strlen(kid) > JOSE_MAX_KID_LEN)
		return WICK_ERR_INVALID;
	if ((r = jose_jwk_public_pkey(k, &pk, why)) != 0)
		return r;
	len = i2d_PUBKEY(pk, &der);
	EVP_PKEY_free(pk);
	if (len <= 0)
		return WICK_ERR_CRYPTO;
	*why = "duplicate kid or too many keys";
	r = bundle_add_key(b, use, kid, der, (size_t)len, 0);
	OPENSSL_free(der);
	return r;
}

int
bundle_from_spiffe_json(const char *td, const char *text, size_t len,
    struct bundle **out, const char **why)
{
	struct bundle	*b = NULL;
	json_error_t	 jerr;
	json_t		*doc, *keys, *k, *v;
	const char	*use, *kty;
	size_t		 i;
	int		 r;

	*out = NULL;
	*why = "bundle document too large";
	if (len > BUNDLE_MAX_DOC)
		return WICK_ERR_LIMIT;
	*why = "not valid JSON";
	if ((doc = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr)) ==
	    NULL)
		return WICK_ERR_INVALID;
	*why = "no \"keys\" array";
	r = WICK_ERR_INVALID;
	if (!json_is_object(doc) || !json_is_array(keys = json_object_get(doc,
	    "keys")))
		goto out;
	*why = "bad trust domain";
	if ((r = bundle_new(td, &b)) != 0)
		goto out;
	json_array_foreach(keys, i, k) {
		use = json_string_value(json_object_get(k, "use"));
		kty = json_string_value(json_object_get(k, "kty"));
		if (!json_is_object(k) || use == NULL || kty == NULL)
			continue;	/* spec: ignore such elements */
		if (strcmp(use, "x509-svid") == 0)
			r = parse_x509_jwk(b, k, why);
		else if (strcmp(use, "jwt-svid") == 0)
			r = parse_key_jwk(b, BUNDLE_USE_JWT, k, why);
		else if (strcmp(use, "wit-svid") == 0)
			r = parse_key_jwk(b, BUNDLE_USE_WIT, k, why);
		else
			continue;
		if (r != 0)
			goto out;
	}
	r = WICK_ERR_INVALID;
	if ((v = json_object_get(doc, "spiffe_sequence")) != NULL) {
		*why = "spiffe_sequence is not a non-negative integer";
		if (!json_is_integer(v) || json_integer_value(v) < 0)
			goto out;
		b->sequence = (uint64_t)json_integer_value(v);
	}
	if ((v = json_object_get(doc, "spiffe_refresh_hint")) != NULL) {
		*why = "spiffe_refresh_hint is not a non-negative integer";
		if (!json_is_integer(v) || json_integer_value(v) < 0)
			goto out;
		b->refresh_hint = json_integer_value(v);
	}
	*why = NULL;
	*out = b;
	b = NULL;
	r = 0;
out:
	bundle_free(b);
	json_decref(doc);
	return r;
}

int
bundle_to_pem(const struct bundle *b, struct buf *out)
{
	BIO	*bio;
	char	*p;
	long	 n;
	int	 i, r = 0;

	if ((bio = BIO_new(BIO_s_mem())) == NULL)
		return WICK_ERR_ALLOC;
	for (i = 0; i < sk_X509_num(b->x509); i++)
		if (!PEM_write_bio_X509(bio, sk_X509_value(b->x509, i)))
			r = WICK_ERR_CRYPTO;
	if (r == 0) {
		n = BIO_get_mem_data(bio, &p);
		r = buf_put(out, p, (size_t)n);
	}
	BIO_free(bio);
	return r;
}

int
bundle_from_pem(const char *td, const uint8_t *p, size_t len,
    struct bundle **out, const char **why)
{
	STACK_OF(X509)	*sk;
	struct bundle	*b;
	int		 i, r;

	*out = NULL;
	*why = "bad trust domain";
	if ((r = bundle_new(td, &b)) != 0)
		return r;
	*why = "no PEM certificates, or too many";
	if ((r = x509_certs_from_pem(p, len, BUNDLE_MAX_X509, &sk)) != 0) {
		bundle_free(b);
		return r;
	}
	for (i = 0; i < sk_X509_num(sk) && r == 0; i++)
		r = bundle_add_x509(b, sk_X509_value(sk, i));
	sk_X509_pop_free(sk, X509_free);
	if (r != 0) {
		bundle_free(b);
		return r;
	}
	*why = NULL;
	*out = b;
	return 0;
}

int
bundle_x509_der(const struct bundle *b, struct buf *out)
{
	return x509_chain_to_der(b->x509, out);
}

int
bundle_jwks(const struct bundle *b, enum bundle_use use, char **out)
{
	json_t	*doc, *keys, *k;
	size_t	 i;
	int	 r;

	*out = NULL;
	doc = json_object();
	keys = json_array();
	if (doc == NULL || keys == NULL || json_object_set_new(doc, "keys",
	    keys) != 0) {
		json_decref(doc);
		return WICK_ERR_ALLOC;
	}
	for (i = 0; i < b->nkeys[use]; i++) {
		if ((r = key_jwk(&b->keys[use][i], use_names[use], &k)) != 0) {
			json_decref(doc);
			return r;
		}
		/* Workload API JWKS carry no "use", as SPIRE's: generic JOSE
		 * libraries skip keys whose use is not "sig". */
		json_object_del(k, "use");
		if (json_array_append_new(keys, k) != 0) {
			json_decref(doc);
			return WICK_ERR_ALLOC;
		}
	}
	return dump_json(doc, out);
}

int
bundle_keyset(const struct bundle *b, enum bundle_use use,
    struct jose_keyset *ks)
{
	const struct bundle_key	*k;
	struct jose_key		*jk;
	const uint8_t		*p;
	EVP_PKEY		*pk;
	size_t			 i;
	int			 r;

	for (i = 0; i < b->nkeys[use]; i++) {
		k = &b->keys[use][i];
		p = k->spki;
		if ((pk = d2i_PUBKEY(NULL, &p, (long)k->spki_len)) == NULL)
			return WICK_ERR_INVALID;
		r = jose_key_from_pkey(pk, k->kid, &jk);
		EVP_PKEY_free(pk);
		if (r != 0)
			return r;
		if ((r = jose_keyset_add(ks, jk)) != 0) {
			jose_key_free(jk);
			return r;
		}
	}
	return 0;
}

int
bundle_x509_store(const struct bundle *b, X509_STORE **out)
{
	X509_STORE	*st;
	int		 i;

	if ((st = X509_STORE_new()) == NULL)
		return WICK_ERR_ALLOC;
	for (i = 0; i < sk_X509_num(b->x509); i++)
		if (!X509_STORE_add_cert(st, sk_X509_value(b->x509, i))) {
			X509_STORE_free(st);
			return WICK_ERR_CRYPTO;
		}
	*out = st;
	return 0;
}

/* ---- protobuf ----------------------------------------------------------- */

static void
pb_keys_free(Wick__Types__PublicKey **v, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

static int
pb_keys(const struct bundle *b, enum bundle_use use,
    Wick__Types__PublicKey ***out, size_t *n)
{
	Wick__Types__PublicKey	**v;
	size_t			  i;

	*out = NULL;
	*n = 0;
	if (b->nkeys[use] == 0)
		return 0;
	if ((v = calloc(b->nkeys[use], sizeof(*v))) == NULL)
		return WICK_ERR_ALLOC;
	for (i = 0; i < b->nkeys[use]; i++) {
		if ((v[i] = malloc(sizeof(*v[i]))) == NULL) {
			pb_keys_free(v, i);
			return WICK_ERR_ALLOC;
		}
		wick__types__public_key__init(v[i]);
		v[i]->public_key.data = b->keys[use][i].spki;
		v[i]->public_key.len = b->keys[use][i].spki_len;
		v[i]->key_id = (char *)b->keys[use][i].kid;
		v[i]->expires_at = b->keys[use][i].expires_at;
	}
	*out = v;
	*n = b->nkeys[use];
	return 0;
}

int
bundle_pack(const struct bundle *b, struct buf *out)
{
	Wick__Types__Bundle	 pb = WICK__TYPES__BUNDLE__INIT;
	ProtobufCBinaryData	*x = NULL;
	char			 tdid[SPIFFEID_MAX_TD_LEN + 16];
	uint8_t			*dst;
	size_t			 i, n = (size_t)sk_X509_num(b->x509), len;
	int			 r = 0, l;

	bundle_td_id(b, tdid, sizeof(tdid));
	pb.trust_domain = tdid;
	pb.refresh_hint = b->refresh_hint;
	pb.sequence_number = b->sequence;
	if (n > 0 && (x = calloc(n, sizeof(*x))) == NULL)
		return WICK_ERR_ALLOC;
	for (i = 0; i < n; i++) {
		x[i].data = NULL;
		if ((l = i2d_X509(sk_X509_value(b->x509, (int)i),
		    &x[i].data)) <= 0) {
			r = WICK_ERR_CRYPTO;
			goto out;
		}
		x[i].len = (size_t)l;
	}
	pb.x509_authorities = x;
	pb.n_x509_authorities = n;
	if ((r = pb_keys(b, BUNDLE_USE_JWT, &pb.jwt_authorities,
	    &pb.n_jwt_authorities)) != 0 || (r = pb_keys(b, BUNDLE_USE_WIT,
	    &pb.wit_authorities, &pb.n_wit_authorities)) != 0)
		goto out;
	len = wick__types__bundle__get_packed_size(&pb);
	if ((r = buf_reserve(out, len, &dst)) != 0)
		goto out;
	wick__types__bundle__pack(&pb, dst);
	buf_commit(out, len);
out:
	for (i = 0; x != NULL && i < n; i++)
		OPENSSL_free(x[i].data);
	free(x);
	pb_keys_free(pb.jwt_authorities, pb.n_jwt_authorities);
	pb_keys_free(pb.wit_authorities, pb.n_wit_authorities);
	return r;
}

int
bundle_unpack(const uint8_t *p, size_t len, struct bundle **out,
    const char **why)
{
	Wick__Types__Bundle	*pb;
	Wick__Types__PublicKey	*k;
	struct bundle		*b = NULL;
	const uint8_t		*q;
	X509			*c;
	size_t			 i, u, nk;
	int			 r;

	*out = NULL;
	*why = "bundle too large";
	if (len > BUNDLE_MAX_DOC)
		return WICK_ERR_LIMIT;
	*why = "not a wick.types.Bundle message";
	if ((pb = wick__types__bundle__unpack(NULL, len, p)) == NULL)
		return WICK_ERR_INVALID;
	*why = "bad trust domain";
	if ((r = bundle_new(pb->trust_domain, &b)) != 0)
		goto out;
	*why = "bad X.509 authority";
	for (i = 0; i < pb->n_x509_authorities; i++) {
		q = pb->x509_authorities[i].data;
		c = d2i_X509(NULL, &q, (long)pb->x509_authorities[i].len);
		if (c == NULL || q != pb->x509_authorities[i].data +
		    pb->x509_authorities[i].len) {
			X509_free(c);
			r = WICK_ERR_INVALID;
			goto out;
		}
		r = bundle_add_x509(b, c);
		X509_free(c);
		if (r != 0)
			goto out;
	}
	*why = "bad JWT or WIT authority";
	for (u = 0; u < 2; u++) {
		nk = u == 0 ? pb->n_jwt_authorities : pb->n_wit_authorities;
		for (i = 0; i < nk; i++) {
			k = u == 0 ? pb->jwt_authorities[i] :
			    pb->wit_authorities[i];
			if ((r = bundle_add_key(b, (enum bundle_use)u,
			    k->key_id, k->public_key.data, k->public_key.len,
			    k->expires_at)) != 0)
				goto out;
		}
	}
	b->refresh_hint = pb->refresh_hint;
	b->sequence = pb->sequence_number;
	*why = NULL;
	*out = b;
	b = NULL;
out:
	bundle_free(b);
	wick__types__bundle__free_unpacked(pb, NULL);
	return r;
}
