/*
 * jws.c: compact JWS and JWK for libwick, directly over OpenSSL: the
 * algorithms of SPIFFE (RS/PS/ES 256/384/512) and EdDSA (Ed25519) for
 * WIMSE.  "none" and symmetric algorithms are never accepted: no key of
 * ours can be used with them.
 */
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/param_build.h>
#include <openssl/rsa.h>

#include "encode.h"
#include "wick_int.h"

struct alg_info {
	const char	*name;
	unsigned	 class;
	const char	*md;		/* NULL for EdDSA */
	const char	*curve;		/* EC only */
	size_t		 coord;		/* EC coordinate bytes */
};

static const struct alg_info algs[] = {
	{ "RS256", WICK_ALG_RSA, "SHA256", NULL, 0 },
	{ "RS384", WICK_ALG_RSA, "SHA384", NULL, 0 },
	{ "RS512", WICK_ALG_RSA, "SHA512", NULL, 0 },
	{ "PS256", WICK_ALG_PSS, "SHA256", NULL, 0 },
	{ "PS384", WICK_ALG_PSS, "SHA384", NULL, 0 },
	{ "PS512", WICK_ALG_PSS, "SHA512", NULL, 0 },
	{ "ES256", WICK_ALG_EC, "SHA256", "prime256v1", 32 },
	{ "ES384", WICK_ALG_EC, "SHA384", "secp384r1", 48 },
	{ "ES512", WICK_ALG_EC, "SHA512", "secp521r1", 66 },
	{ "EdDSA", WICK_ALG_EDDSA, NULL, NULL, 0 },
};

static const struct alg_info *
alg_find(const char *alg)
{
	size_t i;

	if (alg == NULL)
		return NULL;
	for (i = 0; i < sizeof(algs) / sizeof(algs[0]); i++)
		if (strcmp(algs[i].name, alg) == 0)	/* case-sensitive */
			return &algs[i];
	return NULL;
}

int
wick_alg_ok(const char *alg, unsigned mask)
{
	const struct alg_info *a = alg_find(alg);

	return a != NULL && (a->class & mask) != 0;
}

/* The EC curve's short name, or NULL. */
static const char *
ec_curve(EVP_PKEY *pk)
{
	static const char *const names[] = {
		"prime256v1", "secp384r1", "secp521r1"
	};
	char	name[64];
	size_t	i, len;

	if (EVP_PKEY_get_utf8_string_param(pk, OSSL_PKEY_PARAM_GROUP_NAME,
	    name, sizeof(name), &len) != 1)
		return NULL;
	for (i = 0; i < 3; i++)
		if (strcmp(name, names[i]) == 0)
			return names[i];
	if (strcmp(name, "P-256") == 0)
		return names[0];
	if (strcmp(name, "P-384") == 0)
		return names[1];
	if (strcmp(name, "P-521") == 0)
		return names[2];
	return NULL;
}

int
wick_alg_fits_key(const char *alg, EVP_PKEY *pk)
{
	const struct alg_info	*a = alg_find(alg);
	const char		*c;

	if (a == NULL || pk == NULL)
		return 0;
	switch (a->class) {
	case WICK_ALG_RSA:
	case WICK_ALG_PSS:
		return EVP_PKEY_is_a(pk, "RSA") &&
		    EVP_PKEY_get_bits(pk) >= 2048;
	case WICK_ALG_EC:
		return EVP_PKEY_is_a(pk, "EC") && (c = ec_curve(pk)) != NULL &&
		    strcmp(c, a->curve) == 0;
	case WICK_ALG_EDDSA:
		return EVP_PKEY_is_a(pk, "ED25519");
	}
	return 0;
}

const char *
wick_alg_for_key(EVP_PKEY *pk)
{
	const char *c;

	if (EVP_PKEY_is_a(pk, "RSA"))
		return "RS256";
	if (EVP_PKEY_is_a(pk, "ED25519"))
		return "EdDSA";
	if (EVP_PKEY_is_a(pk, "EC") && (c = ec_curve(pk)) != NULL)
		return strcmp(c, "prime256v1") == 0 ? "ES256" :
		    strcmp(c, "secp384r1") == 0 ? "ES384" : "ES512";
	return NULL;
}

/* ---- base64url ----------------------------------------------------------- */

/* base64url (encode.c), with libwick's error codes. */
static int
b64url_err(int r)
{
	return r == 0 ? 0 : r == WICK_ERR_ALLOC ? WICK_E_ALLOC :
	    r == WICK_ERR_LIMIT ? WICK_E_LIMIT : WICK_E_INVALID;
}

int
wick_b64url_encode(const uint8_t *p, size_t n, char **out)
{
	return b64url_err(b64url_encode(p, n, out));
}

/*
 * Strict: no padding, no other characters, and the unused low bits of
 * the last character zero (one text per byte string).
 */
int
wick_b64url_decode(const char *s, size_t n, uint8_t **out, size_t *len)
{
	return b64url_err(b64url_decode(s, n, 1, out, len));
}

const char wick_why_alg_fit[] = "JWK alg does not fit its kty and crv";

/* ---- JWK ----------------------------------------------------------------- */

/* A base64url member decoded to exactly want bytes (0: any, <= max). */
static int
jwk_bytes(json_t *o, const char *name, size_t want, size_t max,
    uint8_t **out, size_t *len)
{
	const char	*s;
	size_t		 n;

	*out = NULL;
	if ((s = json_string_value(json_object_get(o, name))) == NULL)
		return WICK_E_NOT_FOUND;
	n = strlen(s);
	if (n > (max / 3 + 1) * 4)
		return WICK_E_LIMIT;
	if (wick_b64url_decode(s, n, out, len) != 0)
		return WICK_E_INVALID;
	if ((want != 0 && *len != want) || *len == 0 || *len > max) {
		OPENSSL_clear_free(*out, *len);
		*out = NULL;
		return WICK_E_INVALID;
	}
	return 0;
}

static int
has_private(json_t *o)
{
	static const char *const priv[] = {
		"d", "p", "q", "dp", "dq", "qi", "oth", "k"
	};
	size_t i;

	for (i = 0; i < sizeof(priv) / sizeof(priv[0]); i++)
		if (json_object_get(o, priv[i]) != NULL)
			return 1;
	return 0;
}

static int
jwk_ec(json_t *o, int priv, EVP_PKEY **out, const char **why)
{
	const char	*crv, *group;
	OSSL_PARAM_BLD	*bld = NULL;
	OSSL_PARAM	*params = NULL;
	EVP_PKEY_CTX	*ctx = NULL;
	BIGNUM		*d = NULL;
	uint8_t		*x = NULL, *y = NULL, *dd = NULL;
	uint8_t		 pub[1 + 2 * 66];
	size_t		 xl, yl, dl, c;
	int		 r = WICK_E_INVALID;

	crv = json_string_value(json_object_get(o, "crv"));
	if (crv != NULL && strcmp(crv, "P-256") == 0) {
		group = "prime256v1";
		c = 32;
	} else if (crv != NULL && strcmp(crv, "P-384") == 0) {
		group = "secp384r1";
		c = 48;
	} else if (crv != NULL && strcmp(crv, "P-521") == 0) {
		group = "secp521r1";
		c = 66;
	} else {
		*why = "EC key on an unsupported or missing crv";
		return WICK_E_INVALID;
	}
	/*
	 * RFC 7518 wants x, y and d at the curve's full size; some encoders
	 * drop leading zero bytes, which is read as the same number.
	 */
	if (jwk_bytes(o, "x", 0, c, &x, &xl) != 0 ||
	    jwk_bytes(o, "y", 0, c, &y, &yl) != 0) {
		*why = "EC key without valid x and y for its curve";
		goto out;
	}
	if (priv && jwk_bytes(o, "d", 0, c, &dd, &dl) != 0) {
		*why = "EC private key without a valid d";
		goto out;
	}
	memset(pub, 0, sizeof(pub));
	pub[0] = 4;
	memcpy(pub + 1 + c - xl, x, xl);
	memcpy(pub + 1 + 2 * c - yl, y, yl);
	r = WICK_E_ALLOC;
	if ((bld = OSSL_PARAM_BLD_new()) == NULL ||
	    !OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME,
	    group, 0) ||
	    !OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY,
	    pub, 1 + 2 * c))
		goto out;
	if (priv && ((d = BN_secure_new()) == NULL ||
	    BN_bin2bn(dd, (int)dl, d) == NULL ||
	    !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_PRIV_KEY, d)))
		goto out;
	if ((params = OSSL_PARAM_BLD_to_param(bld)) == NULL ||
	    (ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL)) == NULL)
		goto out;
	r = WICK_E_INVALID;
	if (EVP_PKEY_fromdata_init(ctx) != 1 || EVP_PKEY_fromdata(ctx, out,
	    priv ? EVP_PKEY_KEYPAIR : EVP_PKEY_PUBLIC_KEY, params) != 1) {
		*why = "EC key: the point is not on the curve";
		goto out;
	}
	r = 0;
out:
	OSSL_PARAM_free(params);
	OSSL_PARAM_BLD_free(bld);
	EVP_PKEY_CTX_free(ctx);
	BN_clear_free(d);
	free(x);
	free(y);
	if (dd != NULL)
		OPENSSL_clear_free(dd, dl);
	return r;
}

static int
jwk_rsa(json_t *o, int priv, EVP_PKEY **out, const char **why)
{
	static const char *const pn[] = { "d", "p", "q", "dp", "dq", "qi" };
	static const char *const on[] = {
		OSSL_PKEY_PARAM_RSA_D, OSSL_PKEY_PARAM_RSA_FACTOR1,
		OSSL_PKEY_PARAM_RSA_FACTOR2, OSSL_PKEY_PARAM_RSA_EXPONENT1,
		OSSL_PKEY_PARAM_RSA_EXPONENT2,
		OSSL_PKEY_PARAM_RSA_COEFFICIENT1,
	};
	OSSL_PARAM_BLD	*bld = NULL;
	OSSL_PARAM	*params = NULL;
	EVP_PKEY_CTX	*ctx = NULL;
	BIGNUM		*bn[8] = { NULL };
	uint8_t		*b = NULL;
	size_t		 bl, i;
	int		 r = WICK_E_ALLOC;

	if ((bld = OSSL_PARAM_BLD_new()) == NULL)
		goto out;
	if (jwk_bytes(o, "n", 0, 1024, &b, &bl) != 0) {
		*why = "RSA key without a valid n (at most 8192 bits)";
		r = WICK_E_INVALID;
		goto out;
	}
	bn[0] = BN_bin2bn(b, (int)bl, NULL);
	free(b);
	if (bn[0] == NULL || !OSSL_PARAM_BLD_push_BN(bld,
	    OSSL_PKEY_PARAM_RSA_N, bn[0]))
		goto out;
	if (jwk_bytes(o, "e", 0, 8, &b, &bl) != 0) {
		*why = "RSA key without a valid e";
		r = WICK_E_INVALID;
		goto out;
	}
	bn[1] = BN_bin2bn(b, (int)bl, NULL);
	free(b);
	if (bn[1] == NULL || !OSSL_PARAM_BLD_push_BN(bld,
	    OSSL_PKEY_PARAM_RSA_E, bn[1]))
		goto out;
	for (i = 0; priv && i < 6; i++) {
		if (jwk_bytes(o, pn[i], 0, 1024, &b, &bl) != 0) {
			*why = "RSA private key without all of d, p, q, dp, "
			    "dq and qi";
			r = WICK_E_INVALID;
			goto out;
		}
		bn[2 + i] = BN_secure_new();
		if (bn[2 + i] == NULL || BN_bin2bn(b, (int)bl,
		    bn[2 + i]) == NULL) {
			OPENSSL_clear_free(b, bl);
			goto out;
		}
		OPENSSL_clear_free(b, bl);
		if (!OSSL_PARAM_BLD_push_BN(bld, on[i], bn[2 + i]))
			goto out;
	}
	if ((params = OSSL_PARAM_BLD_to_param(bld)) == NULL ||
	    (ctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL)) == NULL)
		goto out;
	r = WICK_E_INVALID;
	if (EVP_PKEY_fromdata_init(ctx) != 1 || EVP_PKEY_fromdata(ctx, out,
	    priv ? EVP_PKEY_KEYPAIR : EVP_PKEY_PUBLIC_KEY, params) != 1) {
		*why = "RSA key does not decode";
		goto out;
	}
	if (EVP_PKEY_get_bits(*out) < 2048) {
		*why = "RSA key shorter than 2048 bits";
		EVP_PKEY_free(*out);
		*out = NULL;
		goto out;
	}
	r = 0;
out:
	OSSL_PARAM_free(params);
	OSSL_PARAM_BLD_free(bld);
	EVP_PKEY_CTX_free(ctx);
	for (i = 0; i < 8; i++)
		BN_clear_free(bn[i]);
	return r;
}

static int
jwk_okp(json_t *o, int priv, EVP_PKEY **out, const char **why)
{
	const char	*crv = json_string_value(json_object_get(o, "crv"));
	uint8_t		*x = NULL, *d = NULL, pub[32];
	size_t		 xl, dl, pl = sizeof(pub);
	int		 r = WICK_E_INVALID;

	if (crv == NULL || strcmp(crv, "Ed25519") != 0) {
		*why = "OKP key on a curve other than Ed25519";
		return WICK_E_INVALID;
	}
	if (jwk_bytes(o, "x", 32, 32, &x, &xl) != 0) {
		*why = "Ed25519 key without a valid x";
		goto out;
	}
	if (!priv) {
		if ((*out = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL,
		    x, xl)) == NULL) {
			*why = "Ed25519 key does not decode";
			goto out;
		}
		r = 0;
		goto out;
	}
	if (jwk_bytes(o, "d", 32, 32, &d, &dl) != 0) {
		*why = "Ed25519 private key without a valid d";
		goto out;
	}
	if ((*out = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, d,
	    dl)) == NULL) {
		*why = "Ed25519 private key does not decode";
		goto out;
	}
	if (EVP_PKEY_get_raw_public_key(*out, pub, &pl) != 1 ||
	    pl != 32 || memcmp(pub, x, 32) != 0) {
		*why = "Ed25519 private key does not match its x";
		EVP_PKEY_free(*out);
		*out = NULL;
		goto out;
	}
	r = 0;
out:
	free(x);
	if (d != NULL)
		OPENSSL_clear_free(d, dl);
	return r;
}

/* For EC private keys: the public point must be the private key's. */
static int
ec_pair_ok(EVP_PKEY *pk)
{
	EVP_PKEY_CTX	*c = EVP_PKEY_CTX_new_from_pkey(NULL, pk, NULL);
	int		 ok;

	if (c == NULL)
		return 0;
	ok = EVP_PKEY_pairwise_check(c) == 1;
	EVP_PKEY_CTX_free(c);
	return ok;
}

int
wick_jwk_parse(json_t *o, int want_private, struct wick_jwk *k,
    const char **why)
{
	const char	*kty, *s;
	int		 r;

	memset(k, 0, sizeof(*k));
	*why = "";
	if (!json_is_object(o)) {
		*why = "a JWK must be a JSON object";
		return WICK_E_INVALID;
	}
	if (!want_private && has_private(o)) {
		*why = "a public JWK carries private members";
		return WICK_E_PERM;
	}
	if ((s = json_string_value(json_object_get(o, "kid"))) != NULL) {
		if (strlen(s) > WICK_MAX_KID || *s == '\0') {
			*why = "JWK kid empty or longer than 128 bytes";
			return WICK_E_INVALID;
		}
		memcpy(k->kid, s, strlen(s) + 1);
	}
	if ((s = json_string_value(json_object_get(o, "use"))) != NULL &&
	    strlen(s) < sizeof(k->use))
		memcpy(k->use, s, strlen(s) + 1);
	kty = json_string_value(json_object_get(o, "kty"));
	if (kty == NULL) {
		*why = "JWK without kty";
		return WICK_E_INVALID;
	}
	if (strcmp(kty, "EC") == 0)
		r = jwk_ec(o, want_private, &k->pkey, why);
	else if (strcmp(kty, "RSA") == 0)
		r = jwk_rsa(o, want_private, &k->pkey, why);
	else if (strcmp(kty, "OKP") == 0)
		r = jwk_okp(o, want_private, &k->pkey, why);
	else {
		*why = "JWK kty is not EC, RSA or OKP";
		return WICK_E_UNSUPPORTED;
	}
	if (r != 0)
		return r;
	if (want_private && EVP_PKEY_is_a(k->pkey, "EC") &&
	    !ec_pair_ok(k->pkey)) {
		*why = "EC private key does not match its public point";
		wick_jwk_cleanup(k);
		return WICK_E_INVALID;
	}
	if ((s = json_string_value(json_object_get(o, "alg"))) != NULL) {
		if (strlen(s) > WICK_MAX_ALG || alg_find(s) == NULL) {
			*why = "JWK alg is not an asymmetric signing algorithm";
			wick_jwk_cleanup(k);
			return WICK_E_UNSUPPORTED;
		}
		if (!wick_alg_fits_key(s, k->pkey)) {
			*why = wick_why_alg_fit;
			wick_jwk_cleanup(k);
			return WICK_E_INVALID;
		}
		memcpy(k->alg, s, strlen(s) + 1);
	} else if (json_object_get(o, "alg") != NULL) {
		*why = "JWK alg is not a string";
		wick_jwk_cleanup(k);
		return WICK_E_INVALID;
	}
	return 0;
}

void
wick_jwk_cleanup(struct wick_jwk *k)
{
	EVP_PKEY_free(k->pkey);
	k->pkey = NULL;
}

/* ---- JWS ----------------------------------------------------------------- */

static json_t *
json_part(const char *s, size_t n)
{
	json_t	*j;
	uint8_t	*p;
	size_t	 len;

	if (wick_b64url_decode(s, n, &p, &len) != 0)
		return NULL;
	j = json_loadb((const char *)p, len, JSON_REJECT_DUPLICATES, NULL);
	free(p);
	if (j != NULL && !json_is_object(j)) {
		json_decref(j);
		return NULL;
	}
	return j;
}

int
wick_jws_decode(const char *tok, size_t max, struct wick_jws *j,
    const char **why)
{
	const char	*d1, *d2;
	size_t		 n;

	memset(j, 0, sizeof(*j));
	n = strnlen(tok, max + 1);
	if (n > max) {
		*why = "token larger than the limit";
		return WICK_E_LIMIT;
	}
	if ((d1 = memchr(tok, '.', n)) == NULL ||
	    (d2 = memchr(d1 + 1, '.', n - (size_t)(d1 + 1 - tok))) == NULL ||
	    memchr(d2 + 1, '.', n - (size_t)(d2 + 1 - tok)) != NULL) {
		*why = "not a compact JWS of three parts";
		return WICK_E_INVALID;
	}
	if ((j->header = json_part(tok, (size_t)(d1 - tok))) == NULL) {
		*why = "header is not base64url of a JSON object";
		goto bad;
	}
	if ((j->claims = json_part(d1 + 1, (size_t)(d2 - d1 - 1))) == NULL) {
		*why = "payload is not base64url of a JSON object";
		goto bad;
	}
	if (wick_b64url_decode(d2 + 1, n - (size_t)(d2 + 1 - tok), &j->sig,
	    &j->siglen) != 0 || j->siglen == 0) {
		*why = "signature is not base64url";
		goto bad;
	}
	j->signed_len = (size_t)(d2 - tok);
	j->alg = json_string_value(json_object_get(j->header, "alg"));
	j->typ = json_string_value(json_object_get(j->header, "typ"));
	j->kid = json_string_value(json_object_get(j->header, "kid"));
	if (j->alg == NULL) {
		*why = "header without a string alg";
		goto bad;
	}
	if (json_object_get(j->header, "typ") != NULL && j->typ == NULL) {
		*why = "header typ is not a string";
		goto bad;
	}
	if (json_object_get(j->header, "kid") != NULL && j->kid == NULL) {
		*why = "header kid is not a string";
		goto bad;
	}
	return 0;
bad:
	wick_jws_cleanup(j);
	return WICK_E_INVALID;
}

void
wick_jws_cleanup(struct wick_jws *j)
{
	json_decref(j->header);
	json_decref(j->claims);
	free(j->sig);
	memset(j, 0, sizeof(*j));
}

int
wick_jws_has_crit(const struct wick_jws *j)
{
	return json_object_get(j->header, "crit") != NULL;
}

int
wick_typ_is(const char *typ, const char *want)
{
	if (typ == NULL)
		return 0;
	if (strncasecmp(typ, "application/", 12) == 0)
		typ += 12;
	return strcasecmp(typ, want) == 0;
}

static int
md_ctx_init(EVP_MD_CTX *mc, const struct alg_info *a, EVP_PKEY *pk,
    int sign)
{
	EVP_PKEY_CTX	*pc = NULL;
	int		 ok;

	if (sign)
		ok = EVP_DigestSignInit_ex(mc, &pc, a->md, NULL, NULL, pk,
		    NULL) == 1;
	else
		ok = EVP_DigestVerifyInit_ex(mc, &pc, a->md, NULL, NULL, pk,
		    NULL) == 1;
	if (ok && a->class == WICK_ALG_PSS)
		ok = EVP_PKEY_CTX_set_rsa_padding(pc,
		    RSA_PKCS1_PSS_PADDING) == 1 &&
		    EVP_PKEY_CTX_set_rsa_pss_saltlen(pc,
		    RSA_PSS_SALTLEN_DIGEST) == 1;
	else if (ok && a->class == WICK_ALG_RSA)
		ok = EVP_PKEY_CTX_set_rsa_padding(pc, RSA_PKCS1_PADDING) == 1;
	return ok;
}

int
wick_jws_verify_sig(const struct wick_jws *j, const char *tok,
    const char *alg, EVP_PKEY *pk)
{
	const struct alg_info	*a = alg_find(alg);
	EVP_MD_CTX		*mc = NULL;
	ECDSA_SIG		*es = NULL;
	BIGNUM			*br = NULL, *bs = NULL;
	unsigned char		*der = NULL;
	const unsigned char	*sig = j->sig;
	size_t			 siglen = j->siglen;
	int			 dl, r = WICK_E_SIGNATURE;

	if (a == NULL || !wick_alg_fits_key(alg, pk))
		return WICK_E_SIGNATURE;
	if (a->class == WICK_ALG_EC) {
		if (j->siglen != 2 * a->coord)
			return WICK_E_SIGNATURE;
		if ((es = ECDSA_SIG_new()) == NULL ||
		    (br = BN_bin2bn(j->sig, (int)a->coord, NULL)) == NULL ||
		    (bs = BN_bin2bn(j->sig + a->coord, (int)a->coord,
		    NULL)) == NULL) {
			r = WICK_E_ALLOC;
			goto out;
		}
		if (ECDSA_SIG_set0(es, br, bs) != 1) {
			r = WICK_E_ALLOC;
			goto out;
		}
		br = bs = NULL;
		if ((dl = i2d_ECDSA_SIG(es, &der)) <= 0) {
			r = WICK_E_ALLOC;
			goto out;
		}
		sig = der;
		siglen = (size_t)dl;
	}
	if ((mc = EVP_MD_CTX_new()) == NULL) {
		r = WICK_E_ALLOC;
		goto out;
	}
	if (!md_ctx_init(mc, a, pk, 0)) {
		r = WICK_E_CRYPTO;
		goto out;
	}
	if (EVP_DigestVerify(mc, sig, siglen, (const unsigned char *)tok,
	    j->signed_len) == 1)
		r = 0;
out:
	ERR_clear_error();
	EVP_MD_CTX_free(mc);
	ECDSA_SIG_free(es);
	BN_free(br);
	BN_free(bs);
	OPENSSL_free(der);
	return r;
}

int
wick_jws_sign(json_t *header, json_t *claims, const char *alg,
    EVP_PKEY *pk, char **out)
{
	const struct alg_info	*a = alg_find(alg);
	EVP_MD_CTX		*mc = NULL;
	ECDSA_SIG		*es = NULL;
	const unsigned char	*dp;
	char			*hj = NULL, *cj = NULL;
	char			*h64 = NULL, *c64 = NULL;
	char			*s64 = NULL, *tok = NULL;
	unsigned char		*sig = NULL, raw[2 * 66];
	size_t			 siglen = 0, hl, cl, sl;
	int			 r = WICK_E_ALLOC;

	*out = NULL;
	if (a == NULL || !wick_alg_fits_key(alg, pk))
		return WICK_E_INVALID;
	if ((hj = json_dumps(header, JSON_COMPACT)) == NULL ||
	    (cj = json_dumps(claims, JSON_COMPACT)) == NULL ||
	    wick_b64url_encode((uint8_t *)hj, strlen(hj), &h64) != 0 ||
	    wick_b64url_encode((uint8_t *)cj, strlen(cj), &c64) != 0)
		goto out;
	hl = strlen(h64);
	cl = strlen(c64);
	if ((tok = malloc(hl + cl + 2 + 2 * 1024 / 3 * 4 + 8)) == NULL)
		goto out;
	memcpy(tok, h64, hl);
	tok[hl] = '.';
	memcpy(tok + hl + 1, c64, cl + 1);
	if ((mc = EVP_MD_CTX_new()) == NULL)
		goto out;
	r = WICK_E_CRYPTO;
	if (!md_ctx_init(mc, a, pk, 1) || EVP_DigestSign(mc, NULL, &siglen,
	    (unsigned char *)tok, hl + 1 + cl) != 1 || siglen > 1024)
		goto out;
	if ((sig = malloc(siglen)) == NULL) {
		r = WICK_E_ALLOC;
		goto out;
	}
	if (EVP_DigestSign(mc, sig, &siglen, (unsigned char *)tok,
	    hl + 1 + cl) != 1)
		goto out;
	if (a->class == WICK_ALG_EC) {
		dp = sig;
		if ((es = d2i_ECDSA_SIG(NULL, &dp, (long)siglen)) == NULL ||
		    BN_bn2binpad(ECDSA_SIG_get0_r(es), raw,
		    (int)a->coord) < 0 ||
		    BN_bn2binpad(ECDSA_SIG_get0_s(es), raw + a->coord,
		    (int)a->coord) < 0)
			goto out;
		memcpy(sig, raw, 2 * a->coord);	/* DER is longer */
		siglen = 2 * a->coord;
	}
	if (wick_b64url_encode(sig, siglen, &s64) != 0) {
		r = WICK_E_ALLOC;
		goto out;
	}
	sl = strlen(s64);
	tok[hl + 1 + cl] = '.';
	memcpy(tok + hl + 2 + cl, s64, sl + 1);
	*out = tok;
	tok = NULL;
	r = 0;
out:
	ERR_clear_error();
	EVP_MD_CTX_free(mc);
	ECDSA_SIG_free(es);
	free(hj);
	free(cj);
	free(h64);
	free(c64);
	free(s64);
	free(sig);
	free(tok);
	return r;
}

int
wick_claim_time(json_t *claims, const char *name, int64_t *out)
{
	json_t	*v = json_object_get(claims, name);
	double	 d;

	*out = 0;
	if (v == NULL)
		return WICK_E_NOT_FOUND;
	if (json_is_integer(v)) {
		*out = json_integer_value(v);
		return *out > 0 ? 0 : WICK_E_INVALID;
	}
	if (json_is_real(v)) {
		d = json_real_value(v);
		if (d > 0 && d < 9.2e18) {
			*out = (int64_t)d;
			return 0;
		}
	}
	return WICK_E_INVALID;
}
