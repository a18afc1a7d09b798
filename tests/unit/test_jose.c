/*
 * test_jose.c: JWS sign/verify over cjose and our checks on top.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <openssl/evp.h>

#include "encode.h"
#include "jose.h"

#define NOW	1800000000

static struct jose_key *
make_key(const char *type, const char *kid)
{
	EVP_PKEY	*pk;
	struct jose_key	*k = NULL;

	if (strcmp(type, "RSA") == 0)
		pk = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
	else
		pk = EVP_PKEY_Q_keygen(NULL, NULL, "EC", type);
	assert_non_null(pk);
	assert_int_equal(jose_key_from_pkey(pk, kid, &k), 0);
	EVP_PKEY_free(pk);
	return k;
}

static json_t *
claims(const char *aud, int64_t exp)
{
	return json_pack("{s:s, s:s, s:I, s:I}", "sub",
	    "spiffe://example.org/w", "aud", aud, "exp", (json_int_t)exp,
	    "iat", (json_int_t)NOW);
}

static const struct jose_verify_opts jwt_typs = {
	{ "", "JWT", "JOSE" }, 3
};

static void
roundtrip(const char *type, const char *alg)
{
	struct jose_keyset	 ks;
	struct jose_key		*k = make_key(type, "k1");
	json_t			*c = claims("svc", NOW + 300), *got = NULL, *h;
	char			*tok = NULL, why[128];

	jose_keyset_init(&ks);
	assert_string_equal(jose_key_alg(k), alg);
	assert_int_equal(jose_sign(k, "JWT", c, &tok), 0);
	assert_int_equal(jose_keyset_add(&ks, k), 0);
	assert_int_equal(jose_verify(tok, &ks, &jwt_typs, &got, &h, why,
	    sizeof(why)), 0);
	assert_string_equal(json_string_value(json_object_get(h, "alg")), alg);
	assert_string_equal(json_string_value(json_object_get(h, "kid")), "k1");
	assert_string_equal(json_string_value(json_object_get(h, "typ")), "JWT");
	assert_int_equal(jose_check_jwt_claims(got, "svc", NOW, why,
	    sizeof(why)), 0);
	json_decref(got);
	json_decref(h);
	json_decref(c);
	free(tok);
	jose_keyset_cleanup(&ks);
}

static void
test_roundtrips(void **state)
{
	roundtrip("P-256", "ES256");
	roundtrip("P-384", "ES384");
	roundtrip("RSA", "RS256");
}

static void
test_es256_signature_is_raw(void **state)
{
	struct jose_key	*k = make_key("P-256", "k");
	json_t		*c = claims("a", NOW + 10);
	char		*tok = NULL;
	const char	*sig;

	assert_int_equal(jose_sign(k, "JWT", c, &tok), 0);
	sig = strrchr(tok, '.') + 1;
	/* 64 bytes r||s are 86 base64url characters, never DER. */
	assert_int_equal(strlen(sig), 86);
	free(tok);
	json_decref(c);
	jose_key_free(k);
}

static char *
b64url(const char *s)
{
	unsigned char	 out[512];
	int		 n = EVP_EncodeBlock(out, (const unsigned char *)s,
			    (int)strlen(s));
	char		*p;
	int		 i;

	while (n > 0 && out[n - 1] == '=')
		n--;
	out[n] = '\0';
	for (i = 0; i < n; i++)
		if (out[i] == '+')
			out[i] = '-';
		else if (out[i] == '/')
			out[i] = '_';
	p = strdup((char *)out);
	assert_non_null(p);
	return p;
}

/* A token whose header is replaced, keeping payload and signature. */
static char *
with_header(const char *tok, const char *hdr_json)
{
	char	*h = b64url(hdr_json), *out;
	size_t	 n = strlen(h) + strlen(strchr(tok, '.')) + 1;

	out = malloc(n);
	assert_non_null(out);
	snprintf(out, n, "%s%s", h, strchr(tok, '.'));
	free(h);
	return out;
}

static void
test_rejections(void **state)
{
	struct jose_keyset	 ks;
	struct jose_key		*k = make_key("P-256", "k1");
	struct jose_key		*other = make_key("P-256", "k1");
	struct jose_keyset	 ks_other;
	json_t			*c = claims("svc", NOW + 300), *got = NULL;
	char			*tok = NULL, *bad, why[160];
	size_t			 n;

	jose_keyset_init(&ks);
	jose_keyset_init(&ks_other);
	assert_int_equal(jose_sign(k, "JWT", c, &tok), 0);
	assert_int_equal(jose_keyset_add(&ks, k), 0);
	assert_int_equal(jose_keyset_add(&ks_other, other), 0);

	/* Another key with the same kid: signature fails. */
	assert_int_equal(jose_verify(tok, &ks_other, &jwt_typs, &got, NULL,
	    why, sizeof(why)), WICK_ERR_SIGNATURE);

	/* Tampered payload and signature. */
	bad = strdup(tok);
	n = strlen(bad);
	bad[n - 3] = bad[n - 3] == 'A' ? 'B' : 'A';
	assert_int_equal(jose_verify(bad, &ks, &jwt_typs, &got, NULL, why,
	    sizeof(why)), WICK_ERR_SIGNATURE);
	free(bad);
	bad = strdup(tok);
	*(strchr(bad, '.') + 2) ^= 1;
	assert_int_not_equal(jose_verify(bad, &ks, &jwt_typs, &got, NULL, why,
	    sizeof(why)), 0);
	free(bad);

	/* alg none, HMAC, confusion, missing kid, unknown kid, crit, typ. */
	bad = with_header(tok, "{\"alg\":\"none\",\"kid\":\"k1\"}");
	assert_int_equal(jose_verify(bad, &ks, &jwt_typs, &got, NULL, why,
	    sizeof(why)), WICK_ERR_INVALID);
	assert_non_null(strstr(why, "\"none\" not allowed"));
	free(bad);
	bad = with_header(tok, "{\"alg\":\"HS256\",\"kid\":\"k1\"}");
	assert_int_equal(jose_verify(bad, &ks, &jwt_typs, &got, NULL, why,
	    sizeof(why)), WICK_ERR_INVALID);
	free(bad);
	bad = with_header(tok, "{\"alg\":\"RS256\",\"kid\":\"k1\"}");
	assert_int_equal(jose_verify(bad, &ks, &jwt_typs, &got, NULL, why,
	    sizeof(why)), WICK_ERR_INVALID);
	assert_non_null(strstr(why, "cannot be used"));
	free(bad);
	bad = with_header(tok, "{\"alg\":\"ES384\",\"kid\":\"k1\"}");
	assert_int_equal(jose_verify(bad, &ks, &jwt_typs, &got, NULL, why,
	    sizeof(why)), WICK_ERR_INVALID);
	free(bad);
	bad = with_header(tok, "{\"alg\":\"ES256\"}");
	assert_int_equal(jose_verify(bad, &ks, &jwt_typs, &got, NULL, why,
	    sizeof(why)), WICK_ERR_INVALID);
	assert_non_null(strstr(why, "missing key id"));
	free(bad);
	bad = with_header(tok, "{\"alg\":\"ES256\",\"kid\":\"nope\"}");
	assert_int_equal(jose_verify(bad, &ks, &jwt_typs, &got, NULL, why,
	    sizeof(why)), WICK_ERR_NOT_FOUND);
	assert_non_null(strstr(why, "\"nope\""));
	free(bad);
	bad = with_header(tok, "{\"alg\":\"ES256\",\"kid\":\"k1\","
	    "\"crit\":[\"x\"]}");
	assert_int_equal(jose_verify(bad, &ks, &jwt_typs, &got, NULL, why,
	    sizeof(why)), WICK_ERR_INVALID);
	free(bad);
	bad = with_header(tok, "{\"alg\":\"ES256\",\"kid\":\"k1\","
	    "\"typ\":\"wit+jwt\"}");
	assert_int_equal(jose_verify(bad, &ks, &jwt_typs, &got, NULL, why,
	    sizeof(why)), WICK_ERR_INVALID);
	assert_non_null(strstr(why, "typ"));
	free(bad);
	assert_int_equal(jose_verify("a.b", &ks, &jwt_typs, &got, NULL, why,
	    sizeof(why)), WICK_ERR_INVALID);
	assert_int_equal(jose_verify("a.b.c.d", &ks, &jwt_typs, &got, NULL,
	    why, sizeof(why)), WICK_ERR_INVALID);

	/* A WIT verifier does not take JWT-typed tokens. */
	{
		const struct jose_verify_opts wit = { { "wit+jwt" }, 1 };

		assert_int_equal(jose_verify(tok, &ks, &wit, &got, NULL, why,
		    sizeof(why)), WICK_ERR_INVALID);
	}
	free(tok);
	json_decref(c);
	jose_keyset_cleanup(&ks);
	jose_keyset_cleanup(&ks_other);
}

static void
test_claims(void **state)
{
	json_t	*c;
	char	 why[128];

	c = claims("svc", NOW - 61);
	assert_int_equal(jose_check_jwt_claims(c, "svc", NOW, why,
	    sizeof(why)), WICK_ERR_EXPIRED);
	assert_string_equal(why, "token has expired");
	json_decref(c);
	c = claims("svc", NOW + 300);
	assert_int_equal(jose_check_jwt_claims(c, "other", NOW, why,
	    sizeof(why)), WICK_ERR_INVALID);
	assert_non_null(strstr(why, "\"other\" not in token audiences"));
	json_decref(c);
	c = json_pack("{s:s, s:[s,s], s:I}", "sub", "spiffe://e.org/w", "aud",
	    "a", "b", "exp", (json_int_t)NOW + 10);
	assert_int_equal(jose_check_jwt_claims(c, "b", NOW, why, sizeof(why)),
	    0);
	json_decref(c);
	c = json_pack("{s:s, s:s}", "sub", "x", "aud", "a");
	assert_int_equal(jose_check_jwt_claims(c, "a", NOW, why, sizeof(why)),
	    WICK_ERR_INVALID);
	assert_non_null(strstr(why, "exp"));
	json_decref(c);
}

static void
test_jwks(void **state)
{
	struct jose_keyset	 ks, back;
	struct jose_key		*dup;
	json_t			*jwks = NULL, *priv = NULL;
	char			*s;
	const char		*why;

	jose_keyset_init(&ks);
	jose_keyset_init(&back);
	assert_int_equal(jose_keyset_add(&ks, make_key("P-256", "a")), 0);
	assert_int_equal(jose_keyset_add(&ks, make_key("RSA", "b")), 0);
	dup = make_key("P-384", "a");
	assert_int_equal(jose_keyset_add(&ks, dup), WICK_ERR_EXISTS);
	jose_key_free(dup);	/* not taken */
	assert_int_equal(jose_keyset_to_jwks(&ks, &jwks), 0);
	s = json_dumps(jwks, JSON_COMPACT);
	assert_null(strstr(s, "\"d\""));	/* public only */
	assert_int_equal(jose_keyset_parse(s, strlen(s), &back, &why), 0);
	assert_int_equal(back.n, 2);
	free(s);
	assert_int_equal(jose_key_to_jwk(ks.keys[0], 1, &priv), 0);
	assert_non_null(json_object_get(priv, "d"));
	json_decref(priv);

	jose_keyset_cleanup(&back);
	s = "{\"keys\":[{\"kty\":\"EC\",\"crv\":\"P-256\",\"use\":\"jwt-svid\","
	    "\"x\":\"AAAA\",\"y\":\"AAAA\"}]}";
	assert_int_not_equal(jose_keyset_parse(s, strlen(s), &back, &why), 0);
	assert_string_equal(why, "JWK has no kid");
	assert_int_not_equal(jose_keyset_parse("[]", 2, &back, &why), 0);
	assert_int_not_equal(jose_keyset_parse("{", 1, &back, &why), 0);
	jose_keyset_cleanup(&back);
	json_decref(jwks);
	jose_keyset_cleanup(&ks);
}

/* The one base64url of the project (encode.c), which JOSE and libwick use. */
static void
test_b64url(void **state)
{
	static const uint8_t	 bytes[] = { 0xfb, 0xff };
	char			*s;
	uint8_t			*p;
	size_t			 n;

	assert_int_equal(b64url_encode(bytes, sizeof(bytes), &s), 0);
	assert_string_equal(s, "-_8");
	free(s);
	assert_int_equal(b64url_encode((const uint8_t *)"", 0, &s), 0);
	assert_string_equal(s, "");
	free(s);
	assert_int_equal(b64url_decode("-_8", 3, 1, &p, &n), 0);
	assert_int_equal(n, 2);
	assert_memory_equal(p, bytes, 2);
	free(p);
	/* Unused low bits set: refused when strict, ignored otherwise. */
	assert_int_equal(b64url_decode("-_9", 3, 1, &p, &n), WICK_ERR_INVALID);
	assert_int_equal(b64url_decode("-_9", 3, 0, &p, &n), 0);
	assert_memory_equal(p, bytes, 2);
	free(p);
	/* Padding, the other alphabet, an impossible length. */
	assert_int_equal(b64url_decode("-_8=", 4, 0, &p, &n), WICK_ERR_INVALID);
	assert_int_equal(b64url_decode("+/8", 3, 0, &p, &n), WICK_ERR_INVALID);
	assert_int_equal(b64url_decode("abcde", 5, 0, &p, &n),
	    WICK_ERR_INVALID);
	assert_true(b64url_ok("-_8", 3));
	assert_false(b64url_ok("abcde", 5));
	assert_false(b64url_ok("ab c", 4));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_roundtrips),
		cmocka_unit_test(test_b64url),
		cmocka_unit_test(test_es256_signature_is_raw),
		cmocka_unit_test(test_rejections),
		cmocka_unit_test(test_claims),
		cmocka_unit_test(test_jwks),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
