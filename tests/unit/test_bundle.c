/*
 * test_bundle.c: SPIFFE bundles and every encoding of them.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <jansson.h>
#include <openssl/ec.h>
#include <openssl/evp.h>

#include "bundle.h"
#include "jose.h"
#include "helpers/testpki.h"

static struct {
	X509		*ca1, *ca2;
	EVP_PKEY	*k1, *k2, *jk;
	uint8_t		*spki;
	size_t		 spkilen;
} t;

static int
setup(void **state)
{
	int len;

	if (testpki_make_ca("ca1", "spiffe://example.org", &t.ca1, &t.k1) ||
	    testpki_make_ca("ca2", "spiffe://example.org", &t.ca2, &t.k2))
		return -1;
	if ((t.jk = EVP_EC_gen("P-256")) == NULL)
		return -1;
	t.spki = NULL;
	if ((len = i2d_PUBKEY(t.jk, &t.spki)) <= 0)
		return -1;
	t.spkilen = (size_t)len;
	return 0;
}

static int
teardown(void **state)
{
	X509_free(t.ca1);
	X509_free(t.ca2);
	EVP_PKEY_free(t.k1);
	EVP_PKEY_free(t.k2);
	EVP_PKEY_free(t.jk);
	OPENSSL_free(t.spki);
	return 0;
}

static struct bundle *
sample(void)
{
	struct bundle *b;

	assert_int_equal(bundle_new("example.org", &b), 0);
	assert_int_equal(bundle_add_x509(b, t.ca1), 0);
	assert_int_equal(bundle_add_x509(b, t.ca2), 0);
	assert_int_equal(bundle_add_x509(b, t.ca1), 0);	/* no duplicate */
	assert_int_equal(bundle_add_key(b, BUNDLE_USE_JWT, "kid-jwt", t.spki,
	    t.spkilen, 2000000000), 0);
	assert_int_equal(bundle_add_key(b, BUNDLE_USE_WIT, "kid-wit", t.spki,
	    t.spkilen, 2000000000), 0);
	b->sequence = 7;
	b->refresh_hint = 300;
	return b;
}

static void
test_add_rules(void **state)
{
	struct bundle *b = sample();

	assert_int_equal(sk_X509_num(b->x509), 2);
	/* Same kid, same key: fine; same kid, other key: refused. */
	assert_int_equal(bundle_add_key(b, BUNDLE_USE_JWT, "kid-jwt", t.spki,
	    t.spkilen, 0), 0);
	assert_int_equal(bundle_add_key(b, BUNDLE_USE_JWT, "kid-jwt", t.spki,
	    t.spkilen - 1, 0), WICK_ERR_EXISTS);
	assert_int_equal(bundle_add_key(b, BUNDLE_USE_JWT, "", t.spki,
	    t.spkilen, 0), WICK_ERR_INVALID);
	assert_int_equal(b->nkeys[BUNDLE_USE_JWT], 1);
	bundle_free(b);
	assert_int_not_equal(bundle_new("Not A TD", &b), 0);
}

static void
test_spiffe_json_round_trip(void **state)
{
	struct bundle	*b = sample(), *c;
	const char	*why;
	json_t		*doc, *k;
	char		*s;
	size_t		 i;
	int		 x509 = 0, jwt = 0, wit = 0;

	assert_int_equal(bundle_to_spiffe_json(b, &s), 0);
	doc = json_loads(s, 0, NULL);
	assert_non_null(doc);
	assert_int_equal(json_integer_value(json_object_get(doc,
	    "spiffe_sequence")), 7);
	assert_int_equal(json_integer_value(json_object_get(doc,
	    "spiffe_refresh_hint")), 300);
	json_array_foreach(json_object_get(doc, "keys"), i, k) {
		const char *use = json_string_value(json_object_get(k, "use"));

		if (strcmp(use, "x509-svid") == 0) {
			x509++;
			assert_null(json_object_get(k, "kid"));
			assert_int_equal(json_array_size(json_object_get(k,
			    "x5c")), 1);
		} else if (strcmp(use, "jwt-svid") == 0) {
			jwt++;
			assert_string_equal(json_string_value(json_object_get(k,
			    "kid")), "kid-jwt");
		} else if (strcmp(use, "wit-svid") == 0)
			wit++;
	}
	assert_int_equal(x509, 2);
	assert_int_equal(jwt, 1);
	assert_int_equal(wit, 1);
	json_decref(doc);
	assert_int_equal(bundle_from_spiffe_json("spiffe://example.org", s,
	    strlen(s), &c, &why), 0);
	assert_true(bundle_same_content(b, c));
	assert_int_equal(c->sequence, 7);
	free(s);
	bundle_free(c);
	bundle_free(b);
}

static void
test_spiffe_json_bad(void **state)
{
	static const char *const bad[] = {
		"",
		"[]",
		"{\"keys\":3}",
		"{\"keys\":[{\"use\":\"x509-svid\",\"kty\":\"EC\"}]}",
		"{\"keys\":[{\"use\":\"x509-svid\",\"kty\":\"EC\","
		    "\"x5c\":[\"!!!!\"]}]}",
		"{\"keys\":[{\"use\":\"jwt-svid\",\"kty\":\"EC\","
		    "\"crv\":\"P-256\",\"x\":\"AA\",\"y\":\"AA\"}]}",
		"{\"keys\":[],\"spiffe_sequence\":-1}",
		"{\"keys\":[],\"keys\":[]}",
	};
	struct bundle	*b;
	const char	*why;
	size_t		 i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		b = NULL;
		assert_int_not_equal(bundle_from_spiffe_json("example.org",
		    bad[i], strlen(bad[i]), &b, &why), 0);
		assert_null(b);
		assert_non_null(why);
	}
	/* Unknown use and kty are skipped, as the spec says. */
	{
		const char *skip = "{\"keys\":[{\"use\":\"other\",\"kty\":"
		    "\"EC\"},{\"kty\":\"EC\"}]}";

		assert_int_equal(bundle_from_spiffe_json("example.org", skip,
		    strlen(skip), &b, &why), 0);
	}
	assert_int_equal(sk_X509_num(b->x509), 0);
	bundle_free(b);
}

static void
test_pem_and_der(void **state)
{
	struct bundle	*b = sample(), *c;
	struct buf	 pem, der;
	const char	*why;

	buf_init(&pem, BUNDLE_MAX_DOC);
	buf_init(&der, BUNDLE_MAX_DOC);
	assert_int_equal(bundle_to_pem(b, &pem), 0);
	assert_int_equal(bundle_from_pem("example.org", buf_ptr(&pem),
	    buf_len(&pem), &c, &why), 0);
	assert_int_equal(sk_X509_num(c->x509), 2);
	assert_int_equal(X509_cmp(sk_X509_value(c->x509, 1), t.ca2), 0);
	assert_int_equal(bundle_x509_der(b, &der), 0);
	assert_true(buf_len(&der) > 200);
	{
		struct bundle *d = NULL;

		assert_int_not_equal(bundle_from_pem("example.org",
		    (const uint8_t *)"junk", 4, &d, &why), 0);
		assert_null(d);
	}
	buf_cleanup(&pem);
	buf_cleanup(&der);
	bundle_free(c);
	bundle_free(b);
}

static void
test_protobuf_round_trip(void **state)
{
	struct bundle	*b = sample(), *c;
	struct buf	 p;
	const char	*why;

	buf_init(&p, BUNDLE_MAX_DOC);
	assert_int_equal(bundle_pack(b, &p), 0);
	assert_int_equal(bundle_unpack(buf_ptr(&p), buf_len(&p), &c, &why), 0);
	assert_true(bundle_same_content(b, c));
	assert_int_equal(c->keys[BUNDLE_USE_JWT][0].expires_at, 2000000000);
	assert_int_equal(c->sequence, 7);
	bundle_free(c);
	/* Truncated input is refused, never half-read. */
	assert_int_not_equal(bundle_unpack(buf_ptr(&p), buf_len(&p) - 3, &c,
	    &why), 0);
	buf_cleanup(&p);
	bundle_free(b);
}

static void
test_jwks_and_keyset(void **state)
{
	struct bundle		*b = sample();
	struct jose_keyset	 ks;
	struct jose_key		*signer;
	json_t			*claims;
	char			*jwks, *tok, why[128];
	json_t			*out = NULL;
	struct jose_verify_opts	 opts = { { "JWT" }, 1 };

	assert_int_equal(bundle_jwks(b, BUNDLE_USE_JWT, &jwks), 0);
	assert_non_null(strstr(jwks, "\"kid\":\"kid-jwt\""));
	assert_null(strstr(jwks, "kid-wit"));
	free(jwks);
	jose_keyset_init(&ks);
	assert_int_equal(bundle_keyset(b, BUNDLE_USE_JWT, &ks), 0);
	assert_int_equal(ks.n, 1);
	/* A token signed by the private key verifies against the set. */
	assert_int_equal(jose_key_from_pkey(t.jk, "kid-jwt", &signer), 0);
	claims = json_pack("{s:s}", "sub", "spiffe://example.org/w");
	assert_int_equal(jose_sign(signer, "JWT", claims, &tok), 0);
	assert_int_equal(jose_verify(tok, &ks, &opts, &out, NULL, why,
	    sizeof(why)), 0);
	json_decref(out);
	json_decref(claims);
	free(tok);
	jose_key_free(signer);
	jose_keyset_cleanup(&ks);
	bundle_free(b);
}

static void
test_prune(void **state)
{
	struct bundle	*b = sample();
	int		 changed = 0;

	bundle_prune(b, 1000, &changed);
	assert_false(changed);
	bundle_prune(b, 2000000001, &changed);	/* keys expired */
	assert_true(changed);
	assert_int_equal(b->nkeys[BUNDLE_USE_JWT], 0);
	assert_int_equal(b->nkeys[BUNDLE_USE_WIT], 0);
	bundle_prune(b, 4000000000LL, &changed);	/* and the CAs */
	assert_int_equal(sk_X509_num(b->x509), 0);
	bundle_free(b);
}

static void
test_jwk_public_pkey(void **state)
{
	struct jose_key	*k;
	json_t		*jwk, *priv;
	EVP_PKEY	*pk;
	const char	*why;

	assert_int_equal(jose_key_from_pkey(t.jk, "x", &k), 0);
	assert_int_equal(jose_key_to_jwk(k, 0, &jwk), 0);
	assert_int_equal(jose_jwk_public_pkey(jwk, &pk, &why), 0);
	assert_int_equal(EVP_PKEY_eq(pk, t.jk), 1);
	EVP_PKEY_free(pk);
	json_object_set_new(jwk, "crv", json_string("P-521"));
	assert_int_not_equal(jose_jwk_public_pkey(jwk, &pk, &why), 0);
	assert_non_null(strstr(why, "crv"));
	json_decref(jwk);
	assert_int_equal(jose_key_to_jwk(k, 1, &priv), 0);
	assert_int_not_equal(jose_jwk_public_pkey(priv, &pk, &why), 0);
	assert_non_null(strstr(why, "private"));
	json_decref(priv);
	jose_key_free(k);
}

/* A federated trust domain may use a CA key wick never signs with (P-521):
 * it must still travel through the SPIFFE format. */
static void
test_foreign_ca_key(void **state)
{
	struct bundle	*b, *c;
	EVP_PKEY	*k = EVP_EC_gen("P-521");
	X509		*x = X509_new();
	const char	*why;
	char		*s;

	assert_non_null(k);
	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), 5);
	X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN",
	    MBSTRING_ASC, (const unsigned char *)"p521", -1, -1, 0);
	X509_set_issuer_name(x, X509_get_subject_name(x));
	X509_gmtime_adj(X509_getm_notBefore(x), 0);
	X509_gmtime_adj(X509_getm_notAfter(x), 3600);
	X509_set_pubkey(x, k);
	assert_true(X509_sign(x, k, EVP_sha512()) > 0);
	assert_int_equal(bundle_new("partner.org", &b), 0);
	assert_int_equal(bundle_add_x509(b, x), 0);
	assert_int_equal(bundle_to_spiffe_json(b, &s), 0);
	assert_non_null(strstr(s, "\"crv\":\"P-521\""));
	assert_int_equal(bundle_from_spiffe_json("partner.org", s, strlen(s),
	    &c, &why), 0);
	assert_true(bundle_same_content(b, c));
	free(s);
	bundle_free(c);
	bundle_free(b);
	X509_free(x);
	EVP_PKEY_free(k);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_add_rules),
		cmocka_unit_test(test_spiffe_json_round_trip),
		cmocka_unit_test(test_spiffe_json_bad),
		cmocka_unit_test(test_pem_and_der),
		cmocka_unit_test(test_protobuf_round_trip),
		cmocka_unit_test(test_jwks_and_keyset),
		cmocka_unit_test(test_prune),
		cmocka_unit_test(test_jwk_public_pkey),
		cmocka_unit_test(test_foreign_ca_key),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
