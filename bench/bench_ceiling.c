/*
 * bench_ceiling.c: this machine's crypto ceiling for one issuance, on
 * one core, with OpenSSL as the server uses it.
 *
 *	bench_ceiling [-t SECONDS]
 *
 * An X.509-SVID costs the server at least one CSR signature verified
 * (ECDSA P-256) and one certificate signed (ECDSA P-256 over SHA-256),
 * so its ceiling is 1 / (t_verify + t_sign).  A JWT-SVID or a WIT-SVID
 * costs at least one ES256 signature, so theirs is 1 / t_sign.  Each
 * operation runs alone for SECONDS (default 2).  Also measured, not part
 * of the ceiling: a CSR decoded from DER by OpenSSL (its key through the
 * provider decoders) and verified.  Prints one JSON object.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "buf.h"
#include "log.h"
#include "pkey.h"

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ECDSA P-256 signatures over SHA-256 of a message of len bytes, per
 * second. */
static double
sign_rate(EVP_PKEY *key, size_t len, double secs)
{
	EVP_MD_CTX	*ctx;
	uint8_t		 msg[1024], sig[128];
	size_t		 siglen;
	double		 t0, t;
	long		 n = 0;

	if ((ctx = EVP_MD_CTX_new()) == NULL)
		return 0;
	memset(msg, 0x5a, sizeof(msg));
	t0 = now_s();
	do {
		siglen = sizeof(sig);
		if (EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL,
		    key) != 1 || EVP_DigestSign(ctx, sig, &siglen, msg,
		    len) != 1) {
			EVP_MD_CTX_free(ctx);
			return 0;
		}
		n++;
	} while ((t = now_s() - t0) < secs);
	EVP_MD_CTX_free(ctx);
	return (double)n / t;
}

/* ECDSA P-256 verifications of a signature over a message of len bytes,
 * the key already decoded, per second. */
static double
verify_rate(EVP_PKEY *key, size_t len, double secs)
{
	EVP_MD_CTX	*ctx;
	uint8_t		 msg[1024], sig[128];
	size_t		 siglen = sizeof(sig);
	double		 t0, t;
	long		 n = 0;

	if ((ctx = EVP_MD_CTX_new()) == NULL)
		return 0;
	memset(msg, 0x5a, sizeof(msg));
	if (EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL, key) != 1 ||
	    EVP_DigestSign(ctx, sig, &siglen, msg, len) != 1) {
		EVP_MD_CTX_free(ctx);
		return 0;
	}
	t0 = now_s();
	do {
		if (EVP_DigestVerifyInit(ctx, NULL, EVP_sha256(), NULL,
		    key) != 1 || EVP_DigestVerify(ctx, sig, siglen, msg,
		    len) != 1) {
			EVP_MD_CTX_free(ctx);
			return 0;
		}
		n++;
	} while ((t = now_s() - t0) < secs);
	EVP_MD_CTX_free(ctx);
	return (double)n / t;
}

/* CSRs decoded from DER and their signatures verified, per second. */
static double
csr_rate(const struct buf *csr, double secs)
{
	const uint8_t	*p;
	X509_REQ	*req;
	EVP_PKEY	*pub;
	double		 t0, t;
	long		 n = 0;
	int		 ok;

	t0 = now_s();
	do {
		p = buf_ptr(csr);
		if ((req = d2i_X509_REQ(NULL, &p, (long)buf_len(csr))) ==
		    NULL)
			return 0;
		pub = X509_REQ_get0_pubkey(req);
		ok = pub != NULL && X509_REQ_verify(req, pub) == 1;
		X509_REQ_free(req);
		if (!ok)
			return 0;
		n++;
	} while ((t = now_s() - t0) < secs);
	return (double)n / t;
}

int
main(int argc, char **argv)
{
	EVP_PKEY	*ca = NULL, *wk = NULL;
	struct buf	 csr;
	double		 secs = 2, sign_cert, sign_jwt, verify, decode;
	int		 ch;

	while ((ch = getopt(argc, argv, "t:")) != -1) {
		switch (ch) {
		case 't': secs = atof(optarg); break;
		default: goto usage;
		}
	}
	if (secs <= 0)
		goto usage;
	log_init("bench", LOG_LEVEL_WARN, LOG_FORMAT_TEXT);
	buf_init(&csr, PKEY_MAX_DER);
	if (pkey_generate(PKEY_EC_P256, &ca) != 0 ||
	    pkey_generate(PKEY_EC_P256, &wk) != 0 || csr_make(wk, &csr) != 0) {
		fprintf(stderr, "bench_ceiling: cannot make keys\n");
		return 1;
	}
	/* An SVID's to-be-signed part is about 400 bytes, a JWT's signing
	 * input about 300, a CSR's signed part about 200. */
	sign_cert = sign_rate(ca, 400, secs);
	sign_jwt = sign_rate(ca, 300, secs);
	verify = verify_rate(wk, 200, secs);
	decode = csr_rate(&csr, secs / 2);
	if (sign_cert <= 0 || sign_jwt <= 0 || verify <= 0 || decode <= 0) {
		fprintf(stderr, "bench_ceiling: an OpenSSL operation failed\n");
		return 1;
	}
	printf("{\"sign_per_s\":%.1f,\"verify_per_s\":%.1f,"
	    "\"csr_decode_verify_per_s\":%.1f,\"x509_per_s\":%.1f,"
	    "\"jwt_per_s\":%.1f,\"wit_per_s\":%.1f,\"openssl\":\"%s\"}\n",
	    sign_cert, verify, decode, 1.0 / (1.0 / sign_cert + 1.0 / verify),
	    sign_jwt, sign_jwt, OpenSSL_version(OPENSSL_VERSION));
	EVP_PKEY_free(ca);
	EVP_PKEY_free(wk);
	buf_cleanup(&csr);
	return 0;
usage:
	fprintf(stderr, "usage: bench_ceiling [-t SECONDS]\n");
	return 1;
}
