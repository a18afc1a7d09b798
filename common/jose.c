/*
 * jose.c: JWS compact sign/verify over cjose, with our own checks.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjose/cjose.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>

#include "encode.h"
#include "jose.h"
#include "xmalloc.h"

struct jose_key {
	cjose_jwk_t	*jwk;
	char		 kid[JOSE_MAX_KID_LEN + 1];
	char		 alg[8];
	int		 is_rsa;
	int		 ec_bits;	/* 256 or 384 for EC keys */
};

static const char *const allowed_algs[] = {
	"RS256", "RS384", "RS512", "PS256", "PS384", "PS512",
	"ES256", "ES384", "ES512",
};

static int
say(char *why, size_t whylen, int r, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int
say(char *why, size_t whylen, int r, const char *fmt, ...)
{
	va_list ap;

	if (why != NULL && whylen > 0) {
		va_start(ap, fmt);
		vsnprintf(why, whylen, fmt, ap);
		va_end(ap);
	}
	return r;
}



/* ---- keys --------------------------------------------------------------- */

void
jose_key_free(struct jose_key *k)
{
	if (k == NULL)
		return;
	cjose_jwk_release(k->jwk);
	free(k);
}

const char *
jose_key_kid(const struct jose_key *k)
{
	return k->kid;
}

const char *
jose_key_alg(const struct jose_key *k)
{
	return k->alg;
}

static int
bn_param_b64(EVP_PKEY *pk, const char *name, size_t pad, json_t *o,
    const char *member)
{
	BIGNUM	*bn = NULL;
	uint8_t	*bin = NULL;
	char	*enc = NULL;
	size_t	 n;
	int	 r = WICK_ERR_CRYPTO;

	if (!EVP_PKEY_get_bn_param(pk, name, &bn))
		return WICK_ERR_NOT_FOUND;
	n = pad > 0 ? pad : (size_t)BN_num_bytes(bn);
	if ((bin = malloc(n + 1)) == NULL) {
		r = WICK_ERR_ALLOC;
		goto out;
	}
	if (BN_bn2binpad(bn, bin, (int)n) < 0)
		goto out;
	if (b64url_encode(bin, n, &enc) != 0) {
		r = WICK_ERR_ALLOC;
		goto out;
	}
	r = json_object_set_new(o, member, json_string(enc)) == 0 ? 0 :
	    WICK_ERR_ALLOC;
out:
	if (bin != NULL)
		freezero(bin, n + 1);
	if (enc != NULL)
		freezero(enc, strlen(enc));
	BN_clear_free(bn);
	return r;
}

static int
key_from_jwk_obj(json_t *jwk, struct jose_key **out, const char **why)
{
	struct jose_key	*k;
	const char	*kty, *kid, *crv;
	cjose_err	 err;

	*out = NULL;
	if (!json_is_object(jwk)) {
		*why = "JWK is not an object";
		return WICK_ERR_INVALID;
	}
	kty = json_string_value(json_object_get(jwk, "kty"));
	kid = json_string_value(json_object_get(jwk, "kid"));
	if (kid == NULL || *kid == '\0') {
		*why = "JWK has no kid";
		return WICK_ERR_INVALID;
	}
	if (strlen(kid) > JOSE_MAX_KID_LEN) {
		*why = "JWK kid is too long";
		return WICK_ERR_LIMIT;
	}
	{
		static const char *const b64members[] = { "x", "y", "d", "n",
		    "e", "p", "q", "dp", "dq", "qi" };
		const char	*v;
		size_t		 m;

		/* cjose's decoder aborts on malformed base64: check first. */
		for (m = 0; m < sizeof(b64members) / sizeof(b64members[0]);
		    m++) {
			if (json_object_get(jwk, b64members[m]) == NULL)
				continue;
			v = json_string_value(json_object_get(jwk,
			    b64members[m]));
			if (v == NULL || !b64url_ok(v, strlen(v))) {
				*why = "JWK member is not base64url";
				return WICK_ERR_INVALID;
			}
		}
	}
	if ((k = calloc(1, sizeof(*k))) == NULL)
		return WICK_ERR_ALLOC;
	snprintf(k->kid, sizeof(k->kid), "%s", kid);
	if (kty != NULL && strcmp(kty, "EC") == 0) {
		crv = json_string_value(json_object_get(jwk, "crv"));
		if (crv != NULL && strcmp(crv, "P-256") == 0) {
			k->ec_bits = 256;
			snprintf(k->alg, sizeof(k->alg), "ES256");
		} else if (crv != NULL && strcmp(crv, "P-384") == 0) {
			k->ec_bits = 384;
			snprintf(k->alg, sizeof(k->alg), "ES384");
		} else {
			free(k);
			*why = "JWK curve is not P-256 or P-384";
			return WICK_ERR_UNSUPPORTED;
		}
	} else if (kty != NULL && strcmp(kty, "RSA") == 0) {
		k->is_rsa = 1;
		snprintf(k->alg, sizeof(k->alg), "RS256");
	} else {
		free(k);
		*why = "JWK kty is not EC or RSA";
		return WICK_ERR_UNSUPPORTED;
	}
	if ((k->jwk = cjose_jwk_import_json(jwk, &err)) == NULL) {
		free(k);
		*why = "JWK cannot be imported";
		return WICK_ERR_INVALID;
	}
	if (k->is_rsa && cjose_jwk_get_keysize(k->jwk, &err) < 2048) {
		jose_key_free(k);
		*why = "RSA key is shorter than 2048 bits";
		return WICK_ERR_INVALID;
	}
	*out = k;
	return 0;
}

int
jose_key_from_jwk(json_t *jwk, struct jose_key **out, const char **why)
{
	const char *dummy;

	return key_from_jwk_obj(jwk, out, why != NULL ? why : &dummy);
}

int
jose_key_from_pkey(EVP_PKEY *pk, const char *kid, struct jose_key **out)
{
	json_t		*o = NULL;
	char		 group[64];
	const char	*why, *crv;
	size_t		 pad;
	int		 r, priv;

	*out = NULL;
	if ((o = json_object()) == NULL)
		return WICK_ERR_ALLOC;
	if (json_object_set_new(o, "kid", json_string(kid)) != 0) {
		r = WICK_ERR_INVALID;
		goto out;
	}
	if (EVP_PKEY_is_a(pk, "EC")) {
		if (!EVP_PKEY_get_utf8_string_param(pk,
		    OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group), NULL)) {
			r = WICK_ERR_CRYPTO;
			goto out;
		}
		if (strcmp(group, "prime256v1") == 0) {
			crv = "P-256";
			pad = 32;
		} else if (strcmp(group, "secp384r1") == 0) {
			crv = "P-384";
			pad = 48;
		} else {
			r = WICK_ERR_UNSUPPORTED;
			goto out;
		}
		if (json_object_set_new(o, "kty", json_string("EC")) != 0 ||
		    json_object_set_new(o, "crv", json_string(crv)) != 0) {
			r = WICK_ERR_ALLOC;
			goto out;
		}
		if ((r = bn_param_b64(pk, OSSL_PKEY_PARAM_EC_PUB_X, pad, o,
		    "x")) != 0 || (r = bn_param_b64(pk,
		    OSSL_PKEY_PARAM_EC_PUB_Y, pad, o, "y")) != 0)
			goto out;
		r = bn_param_b64(pk, OSSL_PKEY_PARAM_PRIV_KEY, pad, o, "d");
		priv = r == 0;
		if (r != 0 && r != WICK_ERR_NOT_FOUND)
			goto out;
	} else if (EVP_PKEY_is_a(pk, "RSA")) {
		if (EVP_PKEY_get_bits(pk) < 2048) {
			r = WICK_ERR_INVALID;
			goto out;
		}
		if (json_object_set_new(o, "kty", json_string("RSA")) != 0) {
			r = WICK_ERR_ALLOC;
			goto out;
		}
		if ((r = bn_param_b64(pk, OSSL_PKEY_PARAM_RSA_N, 0, o, "n")) !=
		    0 || (r = bn_param_b64(pk, OSSL_PKEY_PARAM_RSA_E, 0, o,
		    "e")) != 0)
			goto out;
		r = bn_param_b64(pk, OSSL_PKEY_PARAM_RSA_D, 0, o, "d");
		priv = r == 0;
		if (priv && ((r = bn_param_b64(pk, OSSL_PKEY_PARAM_RSA_FACTOR1,
		    0, o, "p")) != 0 || (r = bn_param_b64(pk,
		    OSSL_PKEY_PARAM_RSA_FACTOR2, 0, o, "q")) != 0 ||
		    (r = bn_param_b64(pk, OSSL_PKEY_PARAM_RSA_EXPONENT1, 0, o,
		    "dp")) != 0 || (r = bn_param_b64(pk,
		    OSSL_PKEY_PARAM_RSA_EXPONENT2, 0, o, "dq")) != 0 ||
		    (r = bn_param_b64(pk, OSSL_PKEY_PARAM_RSA_COEFFICIENT1, 0,
		    o, "qi")) != 0))
			goto out;
		if (!priv && r != WICK_ERR_NOT_FOUND)
			goto out;
	} else {
		r = WICK_ERR_UNSUPPORTED;
		goto out;
	}
	(void)priv;
	r = key_from_jwk_obj(o, out, &why);
out:
	json_decref(o);	/* private members are released with it */
	return r;
}

int
jose_key_to_jwk(const struct jose_key *k, int private, json_t **out)
{
	cjose_err	 err;
	char		*s;
	json_error_t	 jerr;

	*out = NULL;
	if ((s = cjose_jwk_to_json(k->jwk, private != 0, &err)) == NULL)
		return WICK_ERR_CRYPTO;
	*out = json_loads(s, 0, &jerr);
	freezero(s, strlen(s));
	if (*out == NULL)
		return WICK_ERR_INTERNAL;
	if (json_object_get(*out, "kid") == NULL &&
	    json_object_set_new(*out, "kid", json_string(k->kid)) != 0) {
		json_decref(*out);
		*out = NULL;
		return WICK_ERR_ALLOC;
	}
	return 0;
}

void
jose_keyset_init(struct jose_keyset *ks)
{
	memset(ks, 0, sizeof(*ks));
}

void
jose_keyset_cleanup(struct jose_keyset *ks)
{
	size_t i;

	for (i = 0; i < ks->n; i++)
		jose_key_free(ks->keys[i]);
	ks->n = 0;
}

static struct jose_key *
keyset_find(const struct jose_keyset *ks, const char *kid)
{
	size_t i;

	for (i = 0; i < ks->n; i++)
		if (strcmp(ks->keys[i]->kid, kid) == 0)
			return ks->keys[i];
	return NULL;
}

int
jose_keyset_add(struct jose_keyset *ks, struct jose_key *k)
{
	if (keyset_find(ks, k->kid) != NULL)
		return WICK_ERR_EXISTS;
	if (ks->n >= JOSE_MAX_JWKS_KEYS)
		return WICK_ERR_LIMIT;
	ks->keys[ks->n++] = k;
	return 0;
}

int
jose_keyset_parse(const char *s, size_t len, struct jose_keyset *ks,
    const char **why)
{
	json_t		*doc, *keys, *jwk;
	json_error_t	 jerr;
	struct jose_key	*k;
	const char	*dummy;
	size_t		 i;
	int		 r = 0;

	if (why == NULL)
		why = &dummy;
	if (len > JOSE_MAX_JWKS_SIZE) {
		*why = "JWKS document is too large";
		return WICK_ERR_LIMIT;
	}
	if ((doc = json_loadb(s, len, JSON_REJECT_DUPLICATES, &jerr)) ==
	    NULL) {
		*why = "JWKS is not valid JSON";
		return WICK_ERR_INVALID;
	}
	keys = json_object_get(doc, "keys");
	if (!json_is_array(keys)) {
		*why = "JWKS has no \"keys\" array";
		r = WICK_ERR_INVALID;
		goto out;
	}
	if (json_array_size(keys) > JOSE_MAX_JWKS_KEYS) {
		*why = "JWKS has too many keys";
		r = WICK_ERR_LIMIT;
		goto out;
	}
	json_array_foreach(keys, i, jwk) {
		if ((r = key_from_jwk_obj(jwk, &k, why)) != 0)
			goto out;
		if ((r = jose_keyset_add(ks, k)) != 0) {
			jose_key_free(k);
			*why = r == WICK_ERR_EXISTS ? "JWKS has a duplicate kid" :
			    "JWKS has too many keys";
			goto out;
		}
	}
out:
	json_decref(doc);
	return r;
}

int
jose_keyset_to_jwks(const struct jose_keyset *ks, json_t **out)
{
	json_t	*arr, *jwk;
	size_t	 i;
	int	 r;

	*out = NULL;
	if ((arr = json_array()) == NULL)
		return WICK_ERR_ALLOC;
	for (i = 0; i < ks->n; i++) {
		if ((r = jose_key_to_jwk(ks->keys[i], 0, &jwk)) != 0) {
			json_decref(arr);
			return r;
		}
		json_array_append_new(arr, jwk);
	}
	if ((*out = json_pack("{s:o}", "keys", arr)) == NULL)
		return WICK_ERR_ALLOC;
	return 0;
}

/* ---- sign and verify ---------------------------------------------------- */

int
jose_sign(const struct jose_key *k, const char *typ, json_t *claims,
    char **compact)
{
	json_t		*hdr = NULL;
	cjose_jws_t	*jws = NULL;
	cjose_err	 err;
	const char	*ser;
	char		*payload = NULL;
	int		 r = WICK_ERR_CRYPTO;

	*compact = NULL;
	if ((hdr = json_pack("{s:s, s:s}", "alg", k->alg, "kid", k->kid)) ==
	    NULL)
		return WICK_ERR_ALLOC;
	if (typ != NULL && json_object_set_new(hdr, "typ",
	    json_string(typ)) != 0) {
		r = WICK_ERR_ALLOC;
		goto out;
	}
	if ((payload = json_dumps(claims, JSON_COMPACT)) == NULL) {
		r = WICK_ERR_ALLOC;
		goto out;
	}
	if ((jws = cjose_jws_sign(k->jwk, hdr, (const uint8_t *)payload,
	    strlen(payload), &err)) == NULL)
		goto out;
	if (!cjose_jws_export(jws, &ser, &err))
		goto out;
	if ((*compact = strdup(ser)) == NULL) {
		r = WICK_ERR_ALLOC;
		goto out;
	}
	r = 0;
out:
	cjose_jws_release(jws);
	free(payload);
	json_decref(hdr);
	return r;
}

static int
alg_allowed(const char *alg)
{
	size_t i;

	for (i = 0; i < sizeof(allowed_algs) / sizeof(allowed_algs[0]); i++)
		if (strcmp(alg, allowed_algs[i]) == 0)
			return 1;
	return 0;
}

static int
key_fits_alg(const struct jose_key *k, const char *alg)
{
	if (alg[0] == 'R' || alg[0] == 'P')
		return k->is_rsa;
	if (strcmp(alg, "ES256") == 0)
		return k->ec_bits == 256;
	if (strcmp(alg, "ES384") == 0)
		return k->ec_bits == 384;
	return 0;
}


static int
decode_json_part(const char *p, size_t n, json_t **out)
{
	uint8_t		*raw = NULL;
	size_t		 rawlen;
	json_error_t	 jerr;
	int		 r;

	*out = NULL;
	if ((r = b64url_decode(p, n, 0, &raw, &rawlen)) != 0)
		return r;
	*out = json_loadb((const char *)raw, rawlen, JSON_REJECT_DUPLICATES,
	    &jerr);
	free(raw);
	if (*out == NULL || !json_is_object(*out)) {
		json_decref(*out);
		*out = NULL;
		return WICK_ERR_INVALID;
	}
	return 0;
}

int
jose_verify(const char *compact, const struct jose_keyset *ks,
    const struct jose_verify_opts *opts, json_t **claims_out,
    json_t **header_out, char *why, size_t whylen)
{
	const char	*dot1, *dot2, *alg, *kid, *typ;
	json_t		*hdr = NULL, *claims = NULL;
	struct jose_key	*k;
	cjose_jws_t	*jws = NULL;
	cjose_err	 err;
	size_t		 len, i;
	int		 r, typ_ok;

	if (claims_out != NULL)
		*claims_out = NULL;
	if (header_out != NULL)
		*header_out = NULL;
	len = strnlen(compact, JOSE_MAX_TOKEN_SIZE + 1);
	if (len > JOSE_MAX_TOKEN_SIZE)
		return say(why, whylen, WICK_ERR_LIMIT, "token is larger than "
		    "%d bytes", JOSE_MAX_TOKEN_SIZE);
	if ((dot1 = strchr(compact, '.')) == NULL ||
	    (dot2 = strchr(dot1 + 1, '.')) == NULL ||
	    strchr(dot2 + 1, '.') != NULL)
		return say(why, whylen, WICK_ERR_INVALID,
		    "token is not a compact JWS");
	/* Well-formed parts only reach cjose: its decoder asserts (aborts)
	 * on some malformed lengths. */
	if (!b64url_ok(compact, (size_t)(dot1 - compact)) ||
	    !b64url_ok(dot1 + 1, (size_t)(dot2 - dot1 - 1)) ||
	    !b64url_ok(dot2 + 1, len - (size_t)(dot2 + 1 - compact)))
		return say(why, whylen, WICK_ERR_INVALID,
		    "token is not base64url-encoded");
	if (decode_json_part(compact, (size_t)(dot1 - compact), &hdr) != 0)
		return say(why, whylen, WICK_ERR_INVALID,
		    "token header is not a base64url JSON object");
	alg = json_string_value(json_object_get(hdr, "alg"));
	kid = json_string_value(json_object_get(hdr, "kid"));
	if (alg == NULL || !alg_allowed(alg)) {
		r = say(why, whylen, WICK_ERR_INVALID, "algorithm \"%s\" not "
		    "allowed", alg != NULL ? alg : "(missing)");
		goto out;
	}
	if (json_object_get(hdr, "crit") != NULL) {
		r = say(why, whylen, WICK_ERR_INVALID,
		    "token has critical header parameters");
		goto out;
	}
	if (kid == NULL || *kid == '\0') {
		r = say(why, whylen, WICK_ERR_INVALID,
		    "token header missing key id");
		goto out;
	}
	typ = json_string_value(json_object_get(hdr, "typ"));
	if (json_object_get(hdr, "typ") != NULL && typ == NULL) {
		r = say(why, whylen, WICK_ERR_INVALID, "typ is not a string");
		goto out;
	}
	typ_ok = opts == NULL || opts->ntyps == 0;
	for (i = 0; opts != NULL && i < opts->ntyps && !typ_ok; i++)
		typ_ok = typ == NULL ? opts->typs[i][0] == '\0' :
		    strcmp(typ, opts->typs[i]) == 0;
	if (!typ_ok) {
		r = say(why, whylen, WICK_ERR_INVALID, "token typ \"%s\" not "
		    "allowed", typ != NULL ? typ : "(absent)");
		goto out;
	}
	if ((k = keyset_find(ks, kid)) == NULL) {
		r = say(why, whylen, WICK_ERR_NOT_FOUND, "unknown key id "
		    "\"%.64s\"", kid);
		goto out;
	}
	if (!key_fits_alg(k, alg)) {
		r = say(why, whylen, WICK_ERR_INVALID, "key \"%s\" cannot be "
		    "used with %s", k->kid, alg);
		goto out;
	}
	if ((jws = cjose_jws_import(compact, len, &err)) == NULL) {
		r = say(why, whylen, WICK_ERR_INVALID, "token cannot be "
		    "parsed: %s", err.message);
		goto out;
	}
	if (!cjose_jws_verify(jws, k->jwk, &err)) {
		r = say(why, whylen, WICK_ERR_SIGNATURE,
		    "token signature does not verify");
		goto out;
	}
	if (decode_json_part(dot1 + 1, (size_t)(dot2 - dot1 - 1), &claims) !=
	    0) {
		r = say(why, whylen, WICK_ERR_INVALID,
		    "token claims are not a JSON object");
		goto out;
	}
	if (claims_out != NULL) {
		*claims_out = claims;
		claims = NULL;
	}
	if (header_out != NULL) {
		*header_out = hdr;
		hdr = NULL;
	}
	r = 0;
out:
	cjose_jws_release(jws);
	json_decref(claims);
	json_decref(hdr);
	return r;
}

int
jose_check_jwt_claims(json_t *claims, const char *audience, int64_t now,
    char *why, size_t whylen)
{
	json_t		*aud, *v, *exp, *nbf, *iat;
	const char	*sub;
	size_t		 i;
	int		 found = 0;

	sub = json_string_value(json_object_get(claims, "sub"));
	if (sub == NULL || *sub == '\0')
		return say(why, whylen, WICK_ERR_INVALID,
		    "token missing subject claim");
	exp = json_object_get(claims, "exp");
	if (!json_is_number(exp))
		return say(why, whylen, WICK_ERR_INVALID,
		    "token missing exp claim");
	if ((int64_t)json_number_value(exp) + JOSE_CLOCK_SKEW < now)
		return say(why, whylen, WICK_ERR_EXPIRED, "token has expired");
	nbf = json_object_get(claims, "nbf");
	if (json_is_number(nbf) &&
	    (int64_t)json_number_value(nbf) - JOSE_CLOCK_SKEW > now)
		return say(why, whylen, WICK_ERR_INVALID,
		    "token is not valid yet");
	iat = json_object_get(claims, "iat");
	if (json_is_number(iat) &&
	    (int64_t)json_number_value(iat) - JOSE_CLOCK_SKEW > now)
		return say(why, whylen, WICK_ERR_INVALID,
		    "token issued in the future");
	aud = json_object_get(claims, "aud");
	if (json_is_string(aud))
		found = strcmp(json_string_value(aud), audience) == 0;
	else if (json_is_array(aud))
		json_array_foreach(aud, i, v)
			if (json_is_string(v) &&
			    strcmp(json_string_value(v), audience) == 0)
				found = 1;
	if (!found)
		return say(why, whylen, WICK_ERR_INVALID, "audience \"%.128s\" "
		    "not in token audiences", audience);
	return 0;
}

/* ---- public JWK -> OpenSSL key ------------------------------------------ */

static int
jwk_member_bytes(json_t *jwk, const char *name, uint8_t **out, size_t *len)
{
	const char *s = json_string_value(json_object_get(jwk, name));

	if (s == NULL || !b64url_ok(s, strlen(s)))
		return WICK_ERR_INVALID;
	return b64url_decode(s, strlen(s), 0, out, len);
}

int
jose_jwk_public_pkey(json_t *jwk, EVP_PKEY **out, const char **why)
{
	OSSL_PARAM_BLD	*bld = NULL;
	OSSL_PARAM	*params = NULL;
	EVP_PKEY_CTX	*ctx = NULL;
	BIGNUM		*n = NULL, *e = NULL;
	uint8_t		*a = NULL, *b = NULL, point[1 + 2 * 48];
	size_t		 alen = 0, blen = 0, clen;
	const char	*kty, *crv, *group, *type;
	int		 r = WICK_ERR_INVALID;

	*out = NULL;
	*why = "not a JSON object";
	if (!json_is_object(jwk))
		return WICK_ERR_INVALID;
	*why = "private key members present";
	if (json_object_get(jwk, "d") != NULL)
		return WICK_ERR_INVALID;
	kty = json_string_value(json_object_get(jwk, "kty"));
	if ((bld = OSSL_PARAM_BLD_new()) == NULL)
		return WICK_ERR_ALLOC;
	if (kty != NULL && strcmp(kty, "EC") == 0) {
		type = "EC";
		crv = json_string_value(json_object_get(jwk, "crv"));
		if (crv != NULL && strcmp(crv, "P-256") == 0) {
			group = "prime256v1";
			clen = 32;
		} else if (crv != NULL && strcmp(crv, "P-384") == 0) {
			group = "secp384r1";
			clen = 48;
		} else {
			*why = "crv is not P-256 or P-384";
			goto out;
		}
		*why = "x or y missing or of the wrong length";
		if (jwk_member_bytes(jwk, "x", &a, &alen) != 0 ||
		    jwk_member_bytes(jwk, "y", &b, &blen) != 0 ||
		    alen != clen || blen != clen)
			goto out;
		point[0] = 0x04;
		memcpy(point + 1, a, clen);
		memcpy(point + 1 + clen, b, clen);
		if (!OSSL_PARAM_BLD_push_utf8_string(bld,
		    OSSL_PKEY_PARAM_GROUP_NAME, group, 0) ||
		    !OSSL_PARAM_BLD_push_octet_string(bld,
		    OSSL_PKEY_PARAM_PUB_KEY, point, 1 + 2 * clen)) {
			r = WICK_ERR_CRYPTO;
			goto out;
		}
	} else if (kty != NULL && strcmp(kty, "RSA") == 0) {
		type = "RSA";
		*why = "n or e missing";
		if (jwk_member_bytes(jwk, "n", &a, &alen) != 0 ||
		    jwk_member_bytes(jwk, "e", &b, &blen) != 0 ||
		    alen == 0 || blen == 0)
			goto out;
		*why = "RSA modulus shorter than 2048 bits";
		if (alen < 256 || alen > 1024)
			goto out;
		if ((n = BN_bin2bn(a, (int)alen, NULL)) == NULL ||
		    (e = BN_bin2bn(b, (int)blen, NULL)) == NULL ||
		    !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, n) ||
		    !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, e)) {
			r = WICK_ERR_CRYPTO;
			goto out;
		}
	} else {
		*why = "kty is not EC or RSA";
		goto out;
	}
	*why = "not a valid public key";
	if ((params = OSSL_PARAM_BLD_to_param(bld)) == NULL ||
	    (ctx = EVP_PKEY_CTX_new_from_name(NULL, type, NULL)) == NULL ||
	    EVP_PKEY_fromdata_init(ctx) <= 0 ||
	    EVP_PKEY_fromdata(ctx, out, EVP_PKEY_PUBLIC_KEY, params) <= 0) {
		*out = NULL;
		goto out;
	}
	if (strcmp(type, "RSA") == 0 && EVP_PKEY_get_bits(*out) < 2048) {
		*why = "RSA modulus shorter than 2048 bits";
		EVP_PKEY_free(*out);
		*out = NULL;
		goto out;
	}
	*why = NULL;
	r = 0;
out:
	free(a);
	free(b);
	BN_free(n);
	BN_free(e);
	OSSL_PARAM_free(params);
	OSSL_PARAM_BLD_free(bld);
	EVP_PKEY_CTX_free(ctx);
	return r;
}

/* ---- publishing any public key as a JWK --------------------------------- */

int
jose_public_jwk(EVP_PKEY *pk, json_t **out)
{
	json_t		*o;
	char		 group[64];
	const char	*crv;
	size_t		 pad;
	int		 r;

	*out = NULL;
	if ((o = json_object()) == NULL)
		return WICK_ERR_ALLOC;
	if (EVP_PKEY_is_a(pk, "EC")) {
		if (!EVP_PKEY_get_utf8_string_param(pk,
		    OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group), NULL)) {
			r = WICK_ERR_CRYPTO;
			goto fail;
		}
		if (strcmp(group, "prime256v1") == 0) {
			crv = "P-256";
			pad = 32;
		} else if (strcmp(group, "secp384r1") == 0) {
			crv = "P-384";
			pad = 48;
		} else if (strcmp(group, "secp521r1") == 0) {
			crv = "P-521";
			pad = 66;
		} else {
			r = WICK_ERR_UNSUPPORTED;
			goto fail;
		}
		if (json_object_set_new(o, "kty", json_string("EC")) != 0 ||
		    json_object_set_new(o, "crv", json_string(crv)) != 0) {
			r = WICK_ERR_ALLOC;
			goto fail;
		}
		if ((r = bn_param_b64(pk, OSSL_PKEY_PARAM_EC_PUB_X, pad, o,
		    "x")) != 0 || (r = bn_param_b64(pk,
		    OSSL_PKEY_PARAM_EC_PUB_Y, pad, o, "y")) != 0)
			goto fail;
	} else if (EVP_PKEY_is_a(pk, "RSA")) {
		if (json_object_set_new(o, "kty", json_string("RSA")) != 0) {
			r = WICK_ERR_ALLOC;
			goto fail;
		}
		if ((r = bn_param_b64(pk, OSSL_PKEY_PARAM_RSA_N, 0, o, "n")) !=
		    0 || (r = bn_param_b64(pk, OSSL_PKEY_PARAM_RSA_E, 0, o,
		    "e")) != 0)
			goto fail;
	} else {
		r = WICK_ERR_UNSUPPORTED;
		goto fail;
	}
	*out = o;
	return 0;
fail:
	json_decref(o);
	return r;
}
