/*
 * bench_wpt: the cost of one WIMSE proof token with libwick: create
 * (sign with the WIT's key) and verify (the WIT against its issuer's key,
 * then the WPT, wth, and the jti replay cache), for ES256 and EdDSA
 * workload keys.  Public API only.
 *
 *	bench_wpt [N [es256|eddsa [new|known]]]
 *
 * N iterations of each (default 2000), for both workload key types or
 * one, verifying both kinds of pairs or one (for instruction counts).
 *
 * Prints microseconds per operation: create, verify of a WIT+WPT pair
 * whose WIT the verifier has not seen (both tokens verified), and of one
 * whose WIT it has (the WPT verified, the WIT's times checked).  The
 * WITs are made here (ES256 issuer).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>

#include "wick/wick.h"

#define NWITS	(2 * WICK_WPT_WIT_CACHE)

static char *
b64url(const unsigned char *p, size_t n)
{
	static const char t[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	char	*s = malloc(n / 3 * 4 + 5), *o = s;
	size_t	 i;

	for (i = 0; i + 2 < n; i += 3) {
		*o++ = t[p[i] >> 2];
		*o++ = t[(p[i] & 3) << 4 | p[i + 1] >> 4];
		*o++ = t[(p[i + 1] & 15) << 2 | p[i + 2] >> 6];
		*o++ = t[p[i + 2] & 63];
	}
	if (n - i == 1) {
		*o++ = t[p[i] >> 2];
		*o++ = t[(p[i] & 3) << 4];
	} else if (n - i == 2) {
		*o++ = t[p[i] >> 2];
		*o++ = t[(p[i] & 3) << 4 | p[i + 1] >> 4];
		*o++ = t[(p[i + 1] & 15) << 2];
	}
	*o = '\0';
	return s;
}

static char *
bn64(EVP_PKEY *k, const char *name, int len)
{
	BIGNUM		*bn = NULL;
	unsigned char	 b[66];
	char		*s;

	if (EVP_PKEY_get_bn_param(k, name, &bn) != 1)
		abort();
	BN_bn2binpad(bn, b, len);
	BN_clear_free(bn);
	s = b64url(b, (size_t)len);
	return s;
}

/* Sign "h.c" compactly with an EC P-256 key (raw r||s). */
static char *
es256(EVP_PKEY *k, const char *hdr, const char *claims)
{
	EVP_MD_CTX	*mc = EVP_MD_CTX_new();
	ECDSA_SIG	*es;
	unsigned char	 der[80], raw[64];
	const unsigned char *dp = der;
	size_t		 dl = sizeof(der);
	char		*h, *c, *in, *sig, *tok;

	h = b64url((const unsigned char *)hdr, strlen(hdr));
	c = b64url((const unsigned char *)claims, strlen(claims));

	in = malloc(strlen(h) + strlen(c) + 2);
	sprintf(in, "%s.%s", h, c);
	if (EVP_DigestSignInit(mc, NULL, EVP_sha256(), NULL, k) != 1 ||
	    EVP_DigestSign(mc, der, &dl, (unsigned char *)in,
	    strlen(in)) != 1 || (es = d2i_ECDSA_SIG(NULL, &dp,
	    (long)dl)) == NULL)
		abort();
	BN_bn2binpad(ECDSA_SIG_get0_r(es), raw, 32);
	BN_bn2binpad(ECDSA_SIG_get0_s(es), raw + 32, 32);
	sig = b64url(raw, 64);
	tok = malloc(strlen(in) + strlen(sig) + 2);
	sprintf(tok, "%s.%s", in, sig);
	ECDSA_SIG_free(es);
	EVP_MD_CTX_free(mc);
	free(h);
	free(c);
	free(in);
	free(sig);
	return tok;
}

static const char *only;	/* "new", "known" or NULL: both */

static double
now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static void
run(const char *label, EVP_PKEY *iss, const char *issjwks, EVP_PKEY *wk,
    int n)
{
	struct wick_wpt_verifier_config	 cfg;
	struct wick_wpt_verifier	*v;
	struct wick_wpt_result		 res;
	struct wick_wit_svid		*w[NWITS];
	struct wick_bundles		*b;
	char				 cnf[512], claims[1024], key[1024];
	char				*x, *y = NULL, *d, **tok;
	char				*wit[NWITS];
	const char			*alg;
	double				 t0, t1, t2, t3, t4;
	int				 i, ed;
	unsigned char			 raw[32];
	size_t				 rl = 32;

	if ((ed = EVP_PKEY_is_a(wk, "ED25519"))) {
		alg = "EdDSA";
		EVP_PKEY_get_raw_public_key(wk, raw, &rl);
		x = b64url(raw, 32);
		rl = 32;
		EVP_PKEY_get_raw_private_key(wk, raw, &rl);
		d = b64url(raw, 32);
		snprintf(cnf, sizeof(cnf), "\"cnf\":{\"jwk\":{\"alg\":"
		    "\"EdDSA\",\"crv\":\"Ed25519\",\"kty\":\"OKP\","
		    "\"x\":\"%s\"}}", x);
		snprintf(key, sizeof(key), "{\"alg\":\"EdDSA\",\"crv\":"
		    "\"Ed25519\",\"kty\":\"OKP\",\"x\":\"%s\",\"d\":\"%s\"}", x,
		    d);
	} else {
		alg = "ES256";
		x = bn64(wk, OSSL_PKEY_PARAM_EC_PUB_X, 32);
		y = bn64(wk, OSSL_PKEY_PARAM_EC_PUB_Y, 32);
		d = bn64(wk, OSSL_PKEY_PARAM_PRIV_KEY, 32);
		snprintf(cnf, sizeof(cnf), "\"cnf\":{\"jwk\":{\"alg\":"
		    "\"ES256\",\"crv\":\"P-256\",\"kty\":\"EC\",\"x\":\"%s\","
		    "\"y\":\"%s\"}}", x, y);
		snprintf(key, sizeof(key), "{\"alg\":\"ES256\",\"crv\":"
		    "\"P-256\",\"kty\":\"EC\",\"x\":\"%s\",\"y\":\"%s\","
		    "\"d\":\"%s\"}", x, y, d);
	}
	/* NWITS WITs of one key, each a different string */
	for (i = 0; i < NWITS; i++) {
		snprintf(claims, sizeof(claims), "{%s,\"exp\":%lld,\"jti\":"
		    "\"w%d\",\"sub\":\"spiffe://example.org/bench\"}", cnf,
		    (long long)time(NULL) + 3600, i);
		wit[i] = es256(iss, "{\"alg\":\"ES256\",\"kid\":\"k1\","
		    "\"typ\":\"wit+jwt\"}", claims);
		if (wick_wit_svid_new(wit[i], key, &w[i]) != 0)
			abort();
	}
	if (wick_bundles_new(WICK_BUNDLE_WIT, &b) != 0 ||
	    wick_bundles_add(b, "example.org", issjwks, strlen(issjwks)) != 0)
		abort();
	memset(&cfg, 0, sizeof(cfg));
	cfg.audience = "https://svc.example.org/api";
	cfg.wit_bundles = b;
	cfg.replay_entries = (size_t)n * 4;
	cfg.flags = WICK_WPT_ALLOW_EDDSA;
	if (wick_wpt_verifier_new(&cfg, &v) != 0)
		abort();
	/*
	 * tok[0..n): WPTs over WITs in turn, more of them than the verifier
	 * remembers (every WIT is verified too); tok[n..2n): over one WIT
	 * (its WIT is verified once).
	 */
	tok = calloc(2 * (size_t)n, sizeof(*tok));
	t0 = now_us();
	for (i = 0; i < n; i++)
		if (wick_wpt_create(w[i % NWITS], cfg.audience, 0, NULL, 0,
		    &tok[i]) != 0)
			abort();
	t1 = now_us();
	for (i = n; i < 2 * n; i++)
		if (wick_wpt_create(w[0], cfg.audience, 0, NULL, 0,
		    &tok[i]) != 0)
			abort();
	t2 = now_us();
	for (i = 0; (only == NULL || strcmp(only, "new") == 0) && i < n; i++)
		if (wick_wpt_verify(v, wit[i % NWITS], tok[i], NULL, 0,
		    &res) != 0) {
			fprintf(stderr, "%s\n", res.detail);
			abort();
		}
	t3 = now_us();
	for (i = n; (only == NULL || strcmp(only, "known") == 0) &&
	    i < 2 * n; i++)
		if (wick_wpt_verify(v, wit[0], tok[i], NULL, 0, &res) != 0) {
			fprintf(stderr, "%s\n", res.detail);
			abort();
		}
	t4 = now_us();
	printf("%-6s create %6.1f us   verify: new WIT %6.1f us, known WIT "
	    "%6.1f us   (n=%d, WPT %zu bytes)\n", alg, (t1 - t0) / n,
	    (t3 - t2) / n, (t4 - t3) / n, n, strlen(tok[0]));
	for (i = 0; i < 2 * n; i++)
		free(tok[i]);
	free(tok);
	wick_wpt_verifier_free(v);
	wick_bundles_free(b);
	for (i = 0; i < NWITS; i++) {
		wick_wit_svid_free(w[i]);
		free(wit[i]);
	}
	free(x);
	free(y);
	free(d);
	(void)label;
}

int
main(int argc, char **argv)
{
	EVP_PKEY	*iss = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	EVP_PKEY	*ec = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	EVP_PKEY	*ed = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	char		 jwks[512], *x, *y;
	int		 n = argc > 1 ? atoi(argv[1]) : 2000;

	if (iss == NULL || ec == NULL || ed == NULL || n <= 0)
		return 1;
	only = argc > 3 ? argv[3] : NULL;
	x = bn64(iss, OSSL_PKEY_PARAM_EC_PUB_X, 32);
	y = bn64(iss, OSSL_PKEY_PARAM_EC_PUB_Y, 32);
	snprintf(jwks, sizeof(jwks), "{\"keys\":[{\"kty\":\"EC\",\"kid\":"
	    "\"k1\",\"crv\":\"P-256\",\"x\":\"%s\",\"y\":\"%s\"}]}", x, y);
	if (argc < 3 || strcmp(argv[2], "es256") == 0)
		run("es256", iss, jwks, ec, n);
	if (argc < 3 || strcmp(argv[2], "eddsa") == 0)
		run("eddsa", iss, jwks, ed, n);
	free(x);
	free(y);
	EVP_PKEY_free(iss);
	EVP_PKEY_free(ec);
	EVP_PKEY_free(ed);
	return 0;
}
