/*
 * test_wpt.c: libwick's WIMSE proof tokens against the draft's test
 * vectors (WIMSE workload-creds/wpt example set, wimsey conformance
 * vectors), and every rejection reason with tokens made here with the
 * vectors' own keys.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/bn.h>

#include "wick_int.h"

/* ---- the WIMSE example set ----------------------------------------------- */

static const char ISSUER_JWK[] =
    "{\"kty\":\"EC\",\"kid\":\"June 5\",\"crv\":\"P-256\","
    "\"x\":\"kXqnA2Op7hgd4zRMbw0iFcc_hDxUxhojxOFVGjE2gks\","
    "\"y\":\"n__VndPMR021-59UAs0b9qDTFT-EZtT6xSNs_xFskLo\","
    "\"d\":\"NRHs9bfMUcF49AV_NIoeh3UGopW4AXZLfv5G2px1WcY\"}";
static const char ISSUER_JWKS[] =
    "{\"keys\":[{\"kty\":\"EC\",\"kid\":\"June 5\",\"crv\":\"P-256\","
    "\"x\":\"kXqnA2Op7hgd4zRMbw0iFcc_hDxUxhojxOFVGjE2gks\","
    "\"y\":\"n__VndPMR021-59UAs0b9qDTFT-EZtT6xSNs_xFskLo\"}]}";
static const char WORKLOAD_JWK[] =
    "{\"kty\":\"OKP\",\"crv\":\"Ed25519\","
    "\"x\":\"1CXXvflN_LVVsIsYXsUvB03JmlGWeCHqQVuouCF92bg\","
    "\"d\":\"sdLX8yCYKqo_XvGBLn-ZWeKT7llYeeQpgeCaXVxb5kY\"}";
static const char WIT[] =
    "eyJhbGciOiJFUzI1NiIsImtpZCI6Ikp1bmUgNSIsInR5cCI6IndpdCtqd3QifQ."
    "eyJjbmYiOnsiandrIjp7ImFsZyI6IkVkRFNBIiwiY3J2IjoiRWQyNTUxOSIsImt0eSI6"
    "Ik9LUCIsIngiOiIxQ1hYdmZsTl9MVlZzSXNZWHNVdkIwM0ptbEdXZUNIcVFWdW91Q0Y5"
    "MmJnIn19LCJleHAiOjE3NDU1MTI1MTAsImlhdCI6MTc0NTUwODkxMCwianRpIjoieC1f"
    "MUNUTDJjY2EzQ1NFNGN3Yl9sIiwic3ViIjoid2ltc2U6Ly9leGFtcGxlLmNvbS9zcGVj"
    "aWZpYy13b3JrbG9hZCJ9.6KraSQUxWdl9dxFQ3Fj6dPY0Vi88OkwFwZpAIOhLeq6AbXAn"
    "LLQgOp8U9UDGcBuYF3KiNv6oKQD1ZWAzrMZOJw";
static const char WTH[] = "AaYUfC34D1di2FxQLpiIJJ7Sg8VZ6o8OCdwSf9IToLg";
static const char AT[] = "16_mAd0GiwaZokU26_0902100";
static const char ATH[] = "CL4wjfpRmNf-bdYIbYLnV9d5rMARGwKYE10wUwzC0jI";
/* wpt-01 form, with ath */
static const char WPT01[] =
    "eyJhbGciOiJFZERTQSIsInR5cCI6IndwdCtqd3QifQ."
    "eyJhdGgiOiJDTDR3amZwUm1OZi1iZFlJYllMblY5ZDVyTUFSR3dLWUUxMHdVd3pDMGpJ"
    "IiwiYXVkIjoiaHR0cHM6Ly93b3JrbG9hZC5leGFtcGxlLmNvbS9wYXRoIiwiZXhwIjox"
    "NzQ1NTEwMDE2LCJqdGkiOiJfX2J3YzRFU0MzYWNjMkxUQzEtX3giLCJ3dGgiOiJBYVlV"
    "ZkMzNEQxZGkyRnhRTHBpSUpKN1NnOFZaNm84T0Nkd1NmOUlUb0xnIn0."
    "PI7d9AcYhLoEgPgbJvcM132lkBKnM1NXU-5hZUzVTIyj2dRJaTLFs6e5NYv5gg6AqcV7"
    "NvkYCwfgMgWasWQzCA";
/* wpt-02 shape over the same WIT and key */
static const char WPT02[] =
    "eyJhbGciOiJFZERTQSIsInR5cCI6IndwdCtqd3QifQ."
    "eyJhdWQiOiJodHRwczovL3dvcmtsb2FkLmV4YW1wbGUuY29tL3BhdGgiLCJleHAiOjE3"
    "NDU1MTAwMTYsImp0aSI6Il9fYndjNEVTQzNhY2MyTFRDMS1feCIsInd0aCI6IkFhWVVm"
    "QzM0RDFkaTJGeFFMcGlJSko3U2c4Vlo2bzhPQ2R3U2Y5SVRvTGcifQ."
    "zR_aqP5ofStQP18GaRjhd88P7-_jvvvLX5Gb1fACehieR063WUeZ7fZUOmm43_4gvUYp"
    "EM9ZEushVDFaah64Dw";
#define AUD	"https://workload.example.com/path"
#define WTH_LIT	"AaYUfC34D1di2FxQLpiIJJ7Sg8VZ6o8OCdwSf9IToLg"
#define WX_LIT	"1CXXvflN_LVVsIsYXsUvB03JmlGWeCHqQVuouCF92bg"
#define NOW	1745510000
#define WPT_EXP	1745510016

/* ---- wimsey conformance vectors (WIT without cnf.jwk.alg) ---------------- */

static const char WIMSEY_JWKS[] =
    "{\"keys\":[{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"kid\":\"issuer-key-1\","
    "\"x\":\"iojj3XQJ8ZX9UtstPLpdcspnCb8dlBIb83SIAbQPb1w\"}]}";
static const char WIMSEY_WIT[] =
    "eyJ0eXAiOiJ3aXQrand0IiwiYWxnIjoiRWREU0EiLCJraWQiOiJpc3N1ZXIta2V5LTEi"
    "fQ.eyJpc3MiOiJodHRwczovL2lzc3Vlci5leGFtcGxlIiwic3ViIjoic3BpZmZlOi8vZ"
    "XhhbXBsZS5vcmcvd29ya2xvYWQvYXBpIiwiaWF0IjoxNzAwMDAwMDAwLCJleHAiOjE3M"
    "DAwMDM2MDAsImp0aSI6ImExYjJjMyIsImNuZiI6eyJqd2siOnsia3R5IjoiT0tQIiwiY"
    "3J2IjoiRWQyNTUxOSIsIngiOiJfUmNrT0ZxZ3gxdGstM2pOWUMtaDJaSDk2X2RyRThXT"
    "zF3THF5RFhwOWhnIn19fQ.VSUTP7VJTKt7hWfJfxe9humGbZcgzsvpJo2rysWE9x71UQ"
    "jo1bp_1ObsziGoE4yDY5egRskzbQwG-fAD6ncOCQ";
static const char WIMSEY_WPT[] =
    "eyJ0eXAiOiJ3cHQrand0IiwiYWxnIjoiRWREU0EifQ.eyJhdWQiOiJodHRwczovL3dvc"
    "mtsb2FkLmV4YW1wbGUuY29tL3BhdGgiLCJleHAiOjE3MDAwMDAzMDAsImp0aSI6IjAxM"
    "jM0NTY3ODlhYmNkZWYiLCJ3dGgiOiJUUnpsbWdadjVhTVlFMHE3M2dKOXEtX192ZVMwM"
    "lFxV09ZbTdTT182QWJNIn0.CRKiKlk97Tz0PH2wSWwrhSHgzZEkG5OOG01t-zy7Dl5g4t"
    "UMUploOH1OLF_ut58um9ySglvJHzrD23TSLSg3BQ";

/* ---- helpers ------------------------------------------------------------- */

static struct wick_bundles *
bundles(const char *td, const char *jwks)
{
	struct wick_bundles *b;

	assert_int_equal(wick_bundles_new(WICK_BUNDLE_WIT, &b), 0);
	assert_int_equal(wick_bundles_add(b, td, jwks, strlen(jwks)), 0);
	return b;
}

static struct wick_wpt_verifier *
verifier(const char *td, const char *jwks, const char *aud, int64_t leeway,
    unsigned flags, size_t replay)
{
	struct wick_wpt_verifier_config	 c;
	struct wick_wpt_verifier	*v;
	struct wick_bundles		*b = bundles(td, jwks);

	memset(&c, 0, sizeof(c));
	c.audience = aud;
	c.wit_bundles = b;
	c.leeway = leeway;
	c.flags = flags;
	c.replay_entries = replay;
	assert_int_equal(wick_wpt_verifier_new(&c, &v), 0);
	wick_bundles_free(b);	/* the verifier holds its own reference */
	return v;
}

/* The example set's verifier: WIMSE identifiers and EdDSA allowed, no
 * clock leeway. */
static struct wick_wpt_verifier *
example_verifier(unsigned extra)
{
	return verifier("example.com", ISSUER_JWKS, AUD, -1,
	    WICK_WPT_ANY_WORKLOAD_ID | WICK_WPT_ALLOW_EDDSA | extra, 0);
}

static EVP_PKEY *
key_of(const char *jwk)
{
	struct wick_jwk	 k;
	json_t		*j = json_loads(jwk, 0, NULL);
	const char	*why;
	EVP_PKEY	*pk;

	assert_non_null(j);
	assert_int_equal(wick_jwk_parse(j, 1, &k, &why), 0);
	json_decref(j);
	pk = k.pkey;
	return pk;
}

/* Sign header and claims JSON texts with a JWK's private key. */
static char *
sign(const char *hdr, const char *claims, const char *alg, const char *jwk)
{
	json_t		*h = json_loads(hdr, 0, NULL);
	json_t		*c = json_loads(claims, 0, NULL);
	EVP_PKEY	*pk = key_of(jwk);
	char		*tok = NULL;

	assert_non_null(h);
	assert_non_null(c);
	assert_int_equal(wick_jws_sign(h, c, alg, pk, &tok), 0);
	json_decref(h);
	json_decref(c);
	EVP_PKEY_free(pk);
	return tok;
}

/* tmpl with its first "%s" replaced by s (and "%.0s" by nothing). */
static void
subst(char *out, size_t outlen, const char *tmpl, const char *s)
{
	const char	*p;
	size_t		 n;

	if ((p = strstr(tmpl, "%.0s")) != NULL)
		s = "";
	else
		p = strstr(tmpl, "%s");
	assert_non_null(p);
	n = (size_t)(p - tmpl);
	assert_true(n + strlen(s) + strlen(p) < outlen);
	memcpy(out, tmpl, n);
	strcpy(out + n, s);
	strcat(out, p + (p[1] == '.' ? 4 : 2));
}

/* A WPT over WIT with the workload key; claims given as a template with
 * the wth in %s. */
static char *
wpt_with(const char *hdr, const char *claims_tmpl, const char *wth)
{
	char claims[2048];

	subst(claims, sizeof(claims), claims_tmpl, wth);
	return sign(hdr, claims, "EdDSA", WORKLOAD_JWK);
}

#define HDR_OK	"{\"alg\":\"EdDSA\",\"typ\":\"wpt+jwt\"}"
#define CL_OK	"{\"aud\":\"" AUD "\",\"exp\":1745510016,\"jti\":\"j1\"," \
		"\"wth\":\"%s\"}"

static enum wick_wpt_reason
check(struct wick_wpt_verifier *v, const char *wit, const char *wpt,
    const struct wick_wpt_bind *b, int64_t now)
{
	struct wick_wpt_result res;

	if (wick_wpt_verify(v, wit, wpt, b, now, &res) != 0) {
		assert_int_not_equal(res.reason, WICK_WPT_OK);
		assert_true(res.detail[0] != '\0');
		return res.reason;
	}
	assert_int_equal(res.reason, WICK_WPT_OK);
	return WICK_WPT_OK;
}

/* ---- the vectors --------------------------------------------------------- */

static void
test_vector_hashes(void **state)
{
	char h[44];

	(void)state;
	assert_int_equal(wick_token_hash(WIT, h), 0);
	assert_string_equal(h, WTH);
	assert_int_equal(wick_token_hash(AT, h), 0);
	assert_string_equal(h, ATH);
}

static void
test_vector_wpt02_valid(void **state)
{
	struct wick_wpt_verifier	*v = example_verifier(0);
	struct wick_wpt_result		 res;

	(void)state;
	assert_int_equal(wick_wpt_verify(v, WIT, WPT02, NULL, NOW, &res), 0);
	assert_string_equal(res.sub, "wimse://example.com/specific-workload");
	assert_int_equal(res.wpt_exp, WPT_EXP);
	assert_int_equal(res.wit_exp, 1745512510);
	/* The same pair again is a replay. */
	assert_int_equal(check(v, WIT, WPT02, NULL, NOW), WICK_WPT_REPLAY);
	assert_int_equal(wick_wpt_verifier_replay_count(v), 1);
	wick_wpt_verifier_free(v);
}

static void
test_vector_wpt01_ath(void **state)
{
	struct wick_wpt_verifier	*v;
	struct wick_wpt_bind		 b, wrong;

	(void)state;
	v = example_verifier(WICK_WPT_NO_REPLAY);
	memset(&b, 0, sizeof(b));
	b.access_token = AT;
	wrong = b;
	wrong.access_token = "another-token";
	assert_int_equal(check(v, WIT, WPT01, &b, NOW), WICK_WPT_OK);
	assert_int_equal(check(v, WIT, WPT01, &wrong, NOW), WICK_WPT_ATH);
	/* An ath when the request carries no access token. */
	assert_int_equal(check(v, WIT, WPT01, NULL, NOW), WICK_WPT_ATH);
	/* The wpt-02 token without ath when a token was sent. */
	assert_int_equal(check(v, WIT, WPT02, &b, NOW), WICK_WPT_ATH);
	wick_wpt_verifier_free(v);
}

/* Ed25519 is deterministic: our signer reproduces the vector. */
static void
test_vector_resign(void **state)
{
	char *tok = wpt_with(HDR_OK, "{\"aud\":\"" AUD "\",\"exp\":1745510016,"
	    "\"jti\":\"__bwc4ESC3acc2LTC1-_x\",\"wth\":\"%s\"}", WTH);

	(void)state;
	assert_string_equal(tok, WPT02);
	free(tok);
}

static void
test_vector_time(void **state)
{
	struct wick_wpt_verifier *v = example_verifier(WICK_WPT_NO_REPLAY);
	struct wick_wpt_verifier *lv = verifier("example.com", ISSUER_JWKS,
	    AUD, 30, WICK_WPT_ANY_WORKLOAD_ID | WICK_WPT_ALLOW_EDDSA |
	    WICK_WPT_NO_REPLAY, 0);

	(void)state;
	assert_int_equal(check(v, WIT, WPT02, NULL, WPT_EXP), WICK_WPT_OK);
	assert_int_equal(check(v, WIT, WPT02, NULL, WPT_EXP + 1),
	    WICK_WPT_EXPIRED);
	/* 30 s of leeway */
	assert_int_equal(check(lv, WIT, WPT02, NULL, WPT_EXP + 30),
	    WICK_WPT_OK);
	assert_int_equal(check(lv, WIT, WPT02, NULL, WPT_EXP + 31),
	    WICK_WPT_EXPIRED);
	/* The WIT is checked first. */
	assert_int_equal(check(v, WIT, WPT02, NULL, 1745512511),
	    WICK_WPT_WIT_EXPIRED);
	assert_int_equal(check(v, WIT, WPT02, NULL, 1745508909),
	    WICK_WPT_WIT_NOT_YET_VALID);
	/* exp more than max_ttl ahead */
	assert_int_equal(check(v, WIT, WPT02, NULL, WPT_EXP - 301),
	    WICK_WPT_EXP_TOO_FAR);
	wick_wpt_verifier_free(v);
	wick_wpt_verifier_free(lv);
}

static void
test_vector_config(void **state)
{
	struct wick_wpt_verifier *v;

	(void)state;
	/* aud comes from configuration only */
	v = verifier("example.com", ISSUER_JWKS, "https://other.example/path",
	    0, WICK_WPT_ANY_WORKLOAD_ID | WICK_WPT_ALLOW_EDDSA, 0);
	assert_int_equal(check(v, WIT, WPT02, NULL, NOW), WICK_WPT_AUD);
	wick_wpt_verifier_free(v);
	/* a wimse:// sub needs WICK_WPT_ANY_WORKLOAD_ID */
	v = verifier("example.com", ISSUER_JWKS, AUD, 0, WICK_WPT_ALLOW_EDDSA,
	    0);
	assert_int_equal(check(v, WIT, WPT02, NULL, NOW), WICK_WPT_WIT_SUB);
	wick_wpt_verifier_free(v);
	/* EdDSA in cnf.jwk needs WICK_WPT_ALLOW_EDDSA (SPIFFE profile) */
	v = verifier("example.com", ISSUER_JWKS, AUD, 0,
	    WICK_WPT_ANY_WORKLOAD_ID, 0);
	assert_int_equal(check(v, WIT, WPT02, NULL, NOW), WICK_WPT_WIT_CNF_ALG);
	wick_wpt_verifier_free(v);
	/* no bundle for the trust domain, unknown kid */
	v = verifier("example.org", ISSUER_JWKS, AUD, 0,
	    WICK_WPT_ANY_WORKLOAD_ID | WICK_WPT_ALLOW_EDDSA, 0);
	assert_int_equal(check(v, WIT, WPT02, NULL, NOW),
	    WICK_WPT_WIT_TRUST_DOMAIN);
	wick_wpt_verifier_free(v);
	v = verifier("example.com", WIMSEY_JWKS, AUD, 0,
	    WICK_WPT_ANY_WORKLOAD_ID | WICK_WPT_ALLOW_EDDSA, 0);
	assert_int_equal(check(v, WIT, WPT02, NULL, NOW), WICK_WPT_WIT_KID);
	wick_wpt_verifier_free(v);
}

static void
test_vector_wimsey(void **state)
{
	struct wick_wpt_verifier *v = verifier("example.org", WIMSEY_JWKS,
	    AUD, -1, WICK_WPT_ALLOW_EDDSA | WICK_WPT_NO_REPLAY, 0);

	(void)state;
	/* valid there, but its WIT lacks cnf.jwk.alg, which creds-02
	 * requires */
	assert_int_equal(check(v, WIMSEY_WIT, WIMSEY_WPT, NULL, 1700000000),
	    WICK_WPT_WIT_CNF_ALG_MISSING);
	assert_int_equal(check(v, WIMSEY_WIT, WIMSEY_WPT, NULL, 1700003601),
	    WICK_WPT_WIT_EXPIRED);
	assert_int_equal(check(v, WIMSEY_WIT, WIMSEY_WPT, NULL, 1699999999),
	    WICK_WPT_WIT_NOT_YET_VALID);
	/* the issuer's EdDSA key is not allowed without the flag */
	wick_wpt_verifier_free(v);
	v = verifier("example.org", WIMSEY_JWKS, AUD, -1, 0, 0);
	assert_int_equal(check(v, WIMSEY_WIT, WIMSEY_WPT, NULL, 1700000000),
	    WICK_WPT_WIT_ALG);
	wick_wpt_verifier_free(v);
}

/* ---- tampered and crafted tokens ----------------------------------------- */

static void
test_wpt_negatives(void **state)
{
	struct wick_wpt_verifier	*v;
	char				 buf[4096], *t;
	size_t				 n;

	(void)state;
	v = example_verifier(WICK_WPT_NO_REPLAY);
	/* signatures */
	snprintf(buf, sizeof(buf), "%s", WPT02);
	n = strlen(buf);
	buf[n - 5] = buf[n - 5] == 'A' ? 'B' : 'A';
	assert_int_equal(check(v, WIT, buf, NULL, NOW), WICK_WPT_SIGNATURE);
	snprintf(buf, sizeof(buf), "%s", WIT);
	n = strlen(buf);
	buf[n - 5] = buf[n - 5] == 'A' ? 'B' : 'A';
	assert_int_equal(check(v, buf, WPT02, NULL, NOW),
	    WICK_WPT_WIT_SIGNATURE);
	/* shapes */
	assert_int_equal(check(v, NULL, WPT02, NULL, NOW),
	    WICK_WPT_WIT_MISSING);
	assert_int_equal(check(v, WIT, "", NULL, NOW), WICK_WPT_MISSING);
	assert_int_equal(check(v, "a.b", WPT02, NULL, NOW),
	    WICK_WPT_WIT_MALFORMED);
	assert_int_equal(check(v, WIT, "x.y.z", NULL, NOW), WICK_WPT_MALFORMED);
	memset(buf, 'A', sizeof(buf) - 1);
	buf[sizeof(buf) - 1] = '\0';
	t = malloc(3 * sizeof(buf));
	snprintf(t, 3 * sizeof(buf), "%s.%s.%s", buf, buf, buf);
	assert_int_equal(check(v, t, WPT02, NULL, NOW), WICK_WPT_WIT_TOO_LARGE);
	assert_int_equal(check(v, WIT, t, NULL, NOW), WICK_WPT_TOO_LARGE);
	free(t);
	/* header */
#define NEG(hdr, cl, wth, reason) do {					\
	t = wpt_with(hdr, cl, wth);					\
	assert_int_equal(check(v, WIT, t, NULL, NOW), reason);		\
	free(t);							\
} while (0)
	NEG("{\"alg\":\"EdDSA\",\"typ\":\"JWT\"}", CL_OK, WTH, WICK_WPT_TYP);
	NEG("{\"alg\":\"EdDSA\"}", CL_OK, WTH, WICK_WPT_TYP);
	NEG("{\"alg\":\"EdDSA\",\"typ\":\"wimse-proof+jwt\"}", CL_OK, WTH,
	    WICK_WPT_TYP);
	NEG("{\"alg\":\"EdDSA\",\"typ\":\"application/wpt+jwt\"}", CL_OK, WTH,
	    WICK_WPT_OK);
	NEG("{\"alg\":\"EdDSA\",\"typ\":\"wpt+jwt\",\"crit\":[\"x\"],"
	    "\"x\":1}", CL_OK, WTH, WICK_WPT_CRIT);
	/* alg must equal cnf.jwk.alg: "none", ES256 and HS256 all differ */
	NEG("{\"alg\":\"none\",\"typ\":\"wpt+jwt\"}", CL_OK, WTH,
	    WICK_WPT_ALG_MISMATCH);
	NEG("{\"alg\":\"ES256\",\"typ\":\"wpt+jwt\"}", CL_OK, WTH,
	    WICK_WPT_ALG_MISMATCH);
	NEG("{\"alg\":\"HS256\",\"typ\":\"wpt+jwt\"}", CL_OK, WTH,
	    WICK_WPT_ALG_MISMATCH);
	/* claims */
	NEG(HDR_OK, "{\"exp\":1745510016,\"jti\":\"j\",\"wth\":\"%s\"}", WTH,
	    WICK_WPT_AUD_MISSING);
	NEG(HDR_OK, "{\"aud\":[\"" AUD "\"],\"exp\":1745510016,\"jti\":\"j\","
	    "\"wth\":\"%s\"}", WTH, WICK_WPT_AUD);
	NEG(HDR_OK, "{\"aud\":\"" AUD "?q=1\",\"exp\":1745510016,\"jti\":\"j\","
	    "\"wth\":\"%s\"}", WTH, WICK_WPT_AUD);
	NEG(HDR_OK, "{\"aud\":\"" AUD "\",\"jti\":\"j\",\"wth\":\"%s\"}", WTH,
	    WICK_WPT_EXP_MISSING);
	NEG(HDR_OK, "{\"aud\":\"" AUD "\",\"exp\":\"1745510016\",\"jti\":\"j\","
	    "\"wth\":\"%s\"}", WTH, WICK_WPT_EXP_MISSING);
	NEG(HDR_OK, "{\"aud\":\"" AUD "\",\"exp\":1745599999,\"jti\":\"j\","
	    "\"wth\":\"%s\"}", WTH, WICK_WPT_EXP_TOO_FAR);
	NEG(HDR_OK, "{\"aud\":\"" AUD "\",\"exp\":1745510016,"
	    "\"wth\":\"%s\"}", WTH, WICK_WPT_JTI_MISSING);
	NEG(HDR_OK, "{\"aud\":\"" AUD "\",\"exp\":1745510016,\"jti\":7,"
	    "\"wth\":\"%s\"}", WTH, WICK_WPT_JTI_MISSING);
	NEG(HDR_OK, "{\"aud\":\"" AUD "\",\"exp\":1745510016,\"jti\":\"j\","
	    "\"x\":\"%s\"}", WTH, WICK_WPT_WTH_MISSING);
	/* wth of another WIT (the wimsey one) */
	NEG(HDR_OK, CL_OK, "TRzlmgZv5aMYE0q73gJ9q-__veS02QqWOYm7SO_6AbM",
	    WICK_WPT_WTH);
	NEG(HDR_OK, "{\"aud\":\"" AUD "\",\"exp\":1745510016,\"jti\":\"j\","
	    "\"wth\":\"%s\",\"tth\":\"abc\"}", WTH, WICK_WPT_TTH);
	NEG(HDR_OK, "{\"aud\":\"" AUD "\",\"exp\":1745510016,\"jti\":\"j\","
	    "\"wth\":\"%s\",\"oth\":{\"x-token\":\"abc\"}}", WTH,
	    WICK_WPT_OTH_UNKNOWN);
	/* signed by another key than cnf.jwk's */
	t = sign(HDR_OK, "{\"aud\":\"" AUD "\",\"exp\":1745510016,"
	    "\"jti\":\"j\",\"wth\":\"" WTH_LIT "\"}",
	    "EdDSA", "{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":"
	    "\"iojj3XQJ8ZX9UtstPLpdcspnCb8dlBIb83SIAbQPb1w\",\"d\":"
	    "\"AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE\"}");
	assert_int_equal(check(v, WIT, t, NULL, NOW), WICK_WPT_SIGNATURE);
	free(t);
#undef NEG
	wick_wpt_verifier_free(v);
}

/* WITs made here with the example issuer's key. */
static void
test_wit_negatives(void **state)
{
	struct wick_wpt_verifier	*v;
	const char			*cnf_ok = "\"cnf\":{\"jwk\":{\"alg\":"
	    "\"EdDSA\",\"crv\":\"Ed25519\",\"kty\":\"OKP\",\"x\":"
	    "\"1CXXvflN_LVVsIsYXsUvB03JmlGWeCHqQVuouCF92bg\"}}";
	char				 cl[1024], wth[44], *wit, *wpt;
	size_t				 i;
	struct {
		const char		*hdr;
		const char		*claims;	/* %s: cnf_ok */
		enum wick_wpt_reason	 reason;
	} cases[] = {
		{ "{\"alg\":\"ES256\",\"kid\":\"June 5\",\"typ\":\"wit+jwt\"}",
		    "{%s,\"exp\":1745512510,\"sub\":\"wimse://example.com/a\"}",
		    WICK_WPT_OK },
		{ "{\"alg\":\"ES256\",\"kid\":\"June 5\",\"typ\":"
		    "\"wimse-id+jwt\"}",
		    "{%s,\"exp\":1745512510,\"sub\":\"wimse://example.com/a\"}",
		    WICK_WPT_WIT_TYP },
		{ "{\"alg\":\"ES256\",\"kid\":\"June 5\",\"typ\":\"wit+jwt\","
		    "\"crit\":[\"exp\"]}",
		    "{%s,\"exp\":1745512510,\"sub\":\"wimse://example.com/a\"}",
		    WICK_WPT_WIT_CRIT },
		{ "{\"alg\":\"ES256\",\"typ\":\"wit+jwt\",\"kid\":\"nope\"}",
		    "{%s,\"exp\":1745512510,\"sub\":\"wimse://example.com/a\"}",
		    WICK_WPT_WIT_KID },
		{ "{\"alg\":\"ES256\",\"kid\":\"June 5\",\"typ\":\"wit+jwt\"}",
		    "{%s,\"sub\":\"wimse://example.com/a\"}",
		    WICK_WPT_WIT_EXP_MISSING },
		{ "{\"alg\":\"ES256\",\"kid\":\"June 5\",\"typ\":\"wit+jwt\"}",
		    "{%s,\"exp\":1745512510,\"sub\":\"wimse://Example.com/a\"}",
		    WICK_WPT_WIT_SUB },
		{ "{\"alg\":\"ES256\",\"kid\":\"June 5\",\"typ\":\"wit+jwt\"}",
		    "{%s,\"exp\":1745512510,"
		    "\"sub\":\"wimse://u@example.com/a\"}",
		    WICK_WPT_WIT_SUB },
		{ "{\"alg\":\"ES256\",\"kid\":\"June 5\",\"typ\":\"wit+jwt\"}",
		    "{%s,\"exp\":1745512510,"
		    "\"sub\":\"spiffe://example.com/a/\"}",
		    WICK_WPT_WIT_SUB },
		{ "{\"alg\":\"ES256\",\"kid\":\"June 5\",\"typ\":\"wit+jwt\"}",
		    "{%s,\"exp\":1745512510,\"sub\":\"spiffe://example.com/a\","
		    "\"aud\":\"x\"}", WICK_WPT_WIT_AUD },
		{ "{\"alg\":\"ES256\",\"kid\":\"June 5\",\"typ\":\"wit+jwt\"}",
		    "{\"x\":{%s},\"exp\":1745512510,\"sub\":"
		    "\"wimse://example.com/a\"}", WICK_WPT_WIT_CNF_MISSING },
		{ "{\"alg\":\"ES256\",\"kid\":\"June 5\",\"typ\":\"wit+jwt\"}",
		    "{\"cnf\":{\"jwk\":{\"alg\":\"EdDSA\",\"crv\":\"Ed25519\","
		    "\"kty\":\"OKP\",\"x\":\"" WX_LIT "\",\"d\":\""
		    "sdLX8yCYKqo_XvGBLn-ZWeKT7llYeeQpgeCaXVxb5kY\"}},"
		    "\"exp\":1745512510,\"sub\":\"wimse://example.com/a\""
		    "%.0s}", WICK_WPT_WIT_CNF_PRIVATE },
		{ "{\"alg\":\"ES256\",\"kid\":\"June 5\",\"typ\":\"wit+jwt\"}",
		    "{\"cnf\":{\"jwk\":{\"alg\":\"ES256\",\"crv\":\"Ed25519\","
		    "\"kty\":\"OKP\",\"x\":\"" WX_LIT "\"}},"
		    "\"exp\":1745512510,\"sub\":"
		    "\"wimse://example.com/a\"%.0s}", WICK_WPT_WIT_CNF_ALG },
		{ "{\"alg\":\"ES256\",\"kid\":\"June 5\",\"typ\":\"wit+jwt\"}",
		    "{\"cnf\":{\"jwk\":{\"alg\":\"HS256\",\"kty\":\"oct\","
		    "\"k\":\"c2VjcmV0\"}},\"exp\":1745512510,\"sub\":"
		    "\"wimse://example.com/a\"%.0s}",
		    WICK_WPT_WIT_CNF_PRIVATE },
		{ "{\"alg\":\"ES256\",\"kid\":\"June 5\",\"typ\":\"wit+jwt\"}",
		    "{\"cnf\":{\"jwk\":{\"alg\":\"EdDSA\",\"crv\":\"Ed25519\","
		    "\"kty\":\"OKP\",\"x\":\"AAAA\"}},\"exp\":1745512510,"
		    "\"sub\":"
		    "\"wimse://example.com/a\"%.0s}", WICK_WPT_WIT_CNF_KEY },
	};

	(void)state;
	v = example_verifier(WICK_WPT_NO_REPLAY);
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		subst(cl, sizeof(cl), cases[i].claims, cnf_ok);
		wit = sign(cases[i].hdr, cl, "ES256", ISSUER_JWK);
		assert_int_equal(wick_token_hash(wit, wth), 0);
		wpt = wpt_with(HDR_OK, CL_OK, wth);
		print_message("WIT case %zu\n", i);
		assert_int_equal(check(v, wit, wpt, NULL, NOW),
		    cases[i].reason);
		free(wit);
		free(wpt);
	}
	/* "none" and HS256 WITs: alg refused before any key is chosen */
	wit = sign("{\"alg\":\"ES256\",\"kid\":\"June 5\",\"typ\":\"wit+jwt\"}",
	    "{\"exp\":1745512510,\"sub\":\"wimse://example.com/a\"}", "ES256",
	    ISSUER_JWK);
	assert_int_equal(check(v, "eyJhbGciOiJub25lIiwia2lkIjoiSnVuZSA1Iiwid"
	    "HlwIjoid2l0K2p3dCJ9.e30.AAAA", WPT02, NULL, NOW),
	    WICK_WPT_WIT_ALG);
	assert_int_equal(check(v, "eyJhbGciOiJIUzI1NiIsImtpZCI6Ikp1bmUgNSIsIn"
	    "R5cCI6IndpdCtqd3QifQ.e30.AAAA", WPT02, NULL, NOW),
	    WICK_WPT_WIT_ALG);
	free(wit);
	wick_wpt_verifier_free(v);
}

/* ---- create, bindings, replay -------------------------------------------- */

/* A SPIFFE WIT-SVID (ES256 issuer, ES256 cnf key) made here. */
static struct wick_wit_svid *
spiffe_wit(char **witp, char **keyp)
{
	EVP_PKEY		*pk;
	struct wick_wit_svid	*w;
	BIGNUM			*x = NULL, *y = NULL, *d = NULL;
	uint8_t			 xb[32], yb[32], db[32];
	char			*xs, *ys, *ds, cl[1024], key[512];

	pk = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	assert_non_null(pk);
	assert_int_equal(EVP_PKEY_get_bn_param(pk, "qx", &x), 1);
	assert_int_equal(EVP_PKEY_get_bn_param(pk, "qy", &y), 1);
	assert_int_equal(EVP_PKEY_get_bn_param(pk, "priv", &d), 1);
	BN_bn2binpad(x, xb, 32);
	BN_bn2binpad(y, yb, 32);
	BN_bn2binpad(d, db, 32);
	assert_int_equal(wick_b64url_encode(xb, 32, &xs), 0);
	assert_int_equal(wick_b64url_encode(yb, 32, &ys), 0);
	assert_int_equal(wick_b64url_encode(db, 32, &ds), 0);
	snprintf(cl, sizeof(cl), "{\"cnf\":{\"jwk\":{\"alg\":\"ES256\","
	    "\"crv\":\"P-256\",\"kty\":\"EC\",\"x\":\"%s\",\"y\":\"%s\"}},"
	    "\"exp\":1745512510,\"iat\":1745508910,"
	    "\"sub\":\"spiffe://example.com/svc\"}", xs, ys);
	snprintf(key, sizeof(key), "{\"alg\":\"ES256\",\"crv\":\"P-256\","
	    "\"kty\":\"EC\",\"x\":\"%s\",\"y\":\"%s\",\"d\":\"%s\"}", xs, ys,
	    ds);
	*witp = sign("{\"alg\":\"ES256\",\"kid\":\"June 5\",\"typ\":"
	    "\"wit+jwt\"}", cl, "ES256", ISSUER_JWK);
	assert_int_equal(wick_wit_svid_new(*witp, key, &w), 0);
	*keyp = strdup(key);
	free(xs);
	free(ys);
	free(ds);
	BN_free(x);
	BN_free(y);
	BN_clear_free(d);
	EVP_PKEY_free(pk);
	return w;
}

static void
test_create_and_bind(void **state)
{
	struct wick_wpt_verifier	*v = verifier("example.com",
	    ISSUER_JWKS, AUD, 0, WICK_WPT_NO_REPLAY, 0);
	static const char *const names[] = { "x-a", "x-b" };
	static const char *const vals[] = { " one ", "two" };
	static const char *const vals2[] = { "one", "three" };
	struct wick_wit_svid		*w, *w2;
	struct wick_wpt_bind		 b, b2;
	struct wick_jws			 j;
	struct wick_wpt_result		 res;
	const char			*why;
	char				*wit, *key, *wpt, *wpt2;

	(void)state;
	w = spiffe_wit(&wit, &key);
	/* plain */
	assert_int_equal(wick_wpt_create(w, AUD, 0, NULL, NOW, &wpt), 0);
	assert_int_equal(wick_jws_decode(wpt, 8192, &j, &why), 0);
	assert_string_equal(j.alg, "ES256");
	assert_string_equal(j.typ, "wpt+jwt");
	assert_null(json_object_get(j.header, "kid"));
	assert_int_equal(strlen(json_string_value(json_object_get(j.claims,
	    "jti"))), 22);	/* 128 bits */
	assert_int_equal(json_integer_value(json_object_get(j.claims, "exp")),
	    NOW + 60);
	wick_jws_cleanup(&j);
	assert_int_equal(wick_wpt_verify(v, wit, wpt, NULL, NOW, &res), 0);
	assert_string_equal(res.sub, "spiffe://example.com/svc");
	/* two WPTs differ in jti */
	assert_int_equal(wick_wpt_create(w, AUD, 0, NULL, NOW, &wpt2), 0);
	assert_string_not_equal(wpt, wpt2);
	free(wpt);
	free(wpt2);
	/* bounds */
	assert_int_equal(wick_wpt_create(w, AUD, 301, NULL, NOW, &wpt),
	    WICK_E_LIMIT);
	assert_int_equal(wick_wpt_create(w, AUD "?q", 0, NULL, NOW, &wpt),
	    WICK_E_INVALID);
	assert_int_equal(wick_wpt_create(w, "", 0, NULL, NOW, &wpt),
	    WICK_E_INVALID);
	/* tth and oth */
	memset(&b, 0, sizeof(b));
	b.txn_token = "txn.token.value";
	b.oth_names = names;
	b.oth_values = vals;
	b.noth = 2;
	assert_int_equal(wick_wpt_create(w, AUD, 30, &b, NOW, &wpt), 0);
	assert_int_equal(check(v, wit, wpt, &b, NOW), WICK_WPT_OK);
	b2 = b;
	b2.txn_token = "other";
	assert_int_equal(check(v, wit, wpt, &b2, NOW), WICK_WPT_TTH);
	b2 = b;
	b2.oth_values = vals2;
	assert_int_equal(check(v, wit, wpt, &b2, NOW), WICK_WPT_OTH);
	b2 = b;
	b2.noth = 1;
	assert_int_equal(check(v, wit, wpt, &b2, NOW), WICK_WPT_OTH_UNKNOWN);
	assert_int_equal(check(v, wit, wpt, NULL, NOW), WICK_WPT_TTH);
	free(wpt);
	/* a key that is not the WIT's */
	assert_int_not_equal(wick_wit_svid_new(WIT, key, &w2), 0);
	assert_null(w2);
	wick_wit_svid_free(w);
	free(wit);
	free(key);
	wick_wpt_verifier_free(v);
}

static void
test_replay_cache(void **state)
{
	struct wick_wpt_verifier	*v = verifier("example.com",
	    ISSUER_JWKS, AUD, -1, 0, 2);
	struct wick_wit_svid		*w;
	char				*wit, *key, *t[4];
	int				 i;

	(void)state;
	w = spiffe_wit(&wit, &key);
	for (i = 0; i < 4; i++)
		assert_int_equal(wick_wpt_create(w, AUD, 10, NULL,
		    i < 3 ? NOW : NOW + 5, &t[i]), 0);
	assert_int_equal(check(v, wit, t[0], NULL, NOW), WICK_WPT_OK);
	assert_int_equal(check(v, wit, t[0], NULL, NOW), WICK_WPT_REPLAY);
	assert_int_equal(check(v, wit, t[1], NULL, NOW), WICK_WPT_OK);
	/* two live entries: the cache refuses more (fail closed) */
	assert_int_equal(check(v, wit, t[2], NULL, NOW),
	    WICK_WPT_REPLAY_FULL);
	assert_int_equal(wick_wpt_verifier_replay_count(v), 2);
	/* entries leave after their exp: t[0] and t[1] had NOW + 10 */
	wick_wit_svid_free(w);
	assert_int_equal(check(v, wit, t[3], NULL, NOW + 10),
	    WICK_WPT_REPLAY_FULL);
	assert_int_equal(check(v, wit, t[3], NULL, NOW + 11), WICK_WPT_OK);
	assert_int_equal(check(v, wit, t[0], NULL, NOW + 11),
	    WICK_WPT_EXPIRED);
	for (i = 0; i < 4; i++)
		free(t[i]);
	free(wit);
	free(key);
	wick_wpt_verifier_free(v);
}

/* A WIT remembered by the verifier is forgotten with its bundles. */
static void
test_wit_cache(void **state)
{
	struct wick_wpt_verifier	*v;
	struct wick_bundles		*other, *same;
	char				*t;

	(void)state;
	v = example_verifier(WICK_WPT_NO_REPLAY);
	other = bundles("example.com", WIMSEY_JWKS);
	same = bundles("example.com", ISSUER_JWKS);
	assert_int_equal(check(v, WIT, WPT02, NULL, NOW), WICK_WPT_OK);
	/* again, from the cache, with another WPT and its own checks */
	t = wpt_with(HDR_OK, CL_OK, WTH);
	assert_int_equal(check(v, WIT, t, NULL, NOW), WICK_WPT_OK);
	assert_int_equal(check(v, WIT, t, NULL, WPT_EXP + 1),
	    WICK_WPT_EXPIRED);
	free(t);
	assert_int_equal(check(v, WIT, WPT01, NULL, NOW), WICK_WPT_ATH);
	/* the WIT's own times still count */
	assert_int_equal(check(v, WIT, WPT02, NULL, 1745512511),
	    WICK_WPT_WIT_EXPIRED);
	assert_int_equal(check(v, WIT, WPT02, NULL, 1745508909),
	    WICK_WPT_WIT_NOT_YET_VALID);
	/* the issuer's key leaves the bundle: the WIT no longer verifies */
	assert_int_equal(wick_wpt_verifier_set_bundles(v, other), 0);
	assert_int_equal(check(v, WIT, WPT02, NULL, NOW), WICK_WPT_WIT_KID);
	assert_int_equal(wick_wpt_verifier_set_bundles(v, same), 0);
	assert_int_equal(check(v, WIT, WPT02, NULL, NOW), WICK_WPT_OK);
	wick_bundles_free(other);
	wick_bundles_free(same);
	wick_wpt_verifier_free(v);
}

static void
test_reason_strings(void **state)
{
	int i, k;

	(void)state;
	for (i = 0; i < WICK_WPT_NREASONS; i++) {
		assert_string_not_equal(wick_wpt_reason_str(i),
		    "unknown reason");
		for (k = 0; k < i; k++)
			assert_string_not_equal(wick_wpt_reason_str(i),
			    wick_wpt_reason_str(k));
	}
	assert_string_equal(wick_wpt_reason_str(WICK_WPT_NREASONS),
	    "unknown reason");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_vector_hashes),
		cmocka_unit_test(test_vector_wpt02_valid),
		cmocka_unit_test(test_vector_wpt01_ath),
		cmocka_unit_test(test_vector_resign),
		cmocka_unit_test(test_vector_time),
		cmocka_unit_test(test_vector_config),
		cmocka_unit_test(test_vector_wimsey),
		cmocka_unit_test(test_wpt_negatives),
		cmocka_unit_test(test_wit_negatives),
		cmocka_unit_test(test_create_and_bind),
		cmocka_unit_test(test_replay_cache),
		cmocka_unit_test(test_wit_cache),
		cmocka_unit_test(test_reason_strings),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
