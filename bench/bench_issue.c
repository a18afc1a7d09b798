/*
 * bench_issue.c: SVID issuance rate over the real TLS agent API:
 * X.509-SVIDs through BatchNewX509SVID (beside this machine's own ECDSA
 * P-256 sign and verify rates measured in the same run), or JWT-SVIDs
 * through NewJWTSVID, or WIT-SVIDs through NewWITSVID.
 *
 *	bench_issue -s HOST:PORT -T TD -d AGENTDIR -e ENTRY_ID
 *	    [-k x509|jwt|wit] [-b BATCH] [-c CONCURRENT] [-t SECONDS] [-j]
 *
 * Each X.509-SVID costs the server one CSR signature verification and one
 * certificate signature, so the ceiling is 1 / (t_sign + t_verify) per
 * core; the ratio printed is the measured rate over that ceiling.  The
 * CSRs (and the WIT-SVID's workload key) are made once, before timing, and
 * reused.  With -j only the issuance figures are printed, as one JSON
 * object (bench/run measures the ceiling itself); "warm_up" counts the
 * SVIDs of the first call, made before timing.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "agent.pb-c.h"
#include "jose.h"
#include "log.h"
#include "nodeclient.h"
#include "pkey.h"
#include "x509.h"
#include "xmalloc.h"

static uv_loop_t	 loop;
static struct nodeclient *nc;
static Wick__Agent__BatchNewX509SVIDRequest req =
    WICK__AGENT__BATCH_NEW_X509_SVIDREQUEST__INIT;
static Wick__Agent__NewJWTSVIDRequest jwt_req =
    WICK__AGENT__NEW_JWTSVIDREQUEST__INIT;
static Wick__Agent__NewWITSVIDRequest wit_req =
    WICK__AGENT__NEW_WITSVIDREQUEST__INIT;
static const char	*kind = "x509";
static double		 t_end;
static long		 issued, failed, inflight, warm;

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void	send_one(void);

static void
done(int status, const char *msg, const uint8_t *p, size_t n, void *arg)
{
	Wick__Agent__BatchNewX509SVIDResponse	*resp;
	size_t					 i;

	inflight--;
	if (status != 0) {
		fprintf(stderr, "%s: %d %s\n", kind, status, msg);
		failed++;
	} else if (strcmp(kind, "x509") != 0) {
		issued++;
	} else if ((resp = wick__agent__batch_new_x509_svidresponse__unpack(
	    NULL, n, p)) != NULL) {
		for (i = 0; i < resp->n_results; i++)
			if (resp->results[i]->status->code == 0)
				issued++;
			else
				failed++;
		wick__agent__batch_new_x509_svidresponse__free_unpacked(resp,
		    NULL);
	}
	if (now_s() < t_end && failed == 0)
		send_one();
}

static void
send_one(void)
{
	const ProtobufCMessage	*m = &req.base;
	const char		*path = NODE_PATH_X509;

	if (strcmp(kind, "jwt") == 0) {
		m = &jwt_req.base;
		path = NODE_PATH_JWT;
	} else if (strcmp(kind, "wit") == 0) {
		m = &wit_req.base;
		path = NODE_PATH_WIT;
	}
	if (nodeclient_call(nc, path, m, 30000, done, NULL) != 0) {
		failed++;
		return;
	}
	inflight++;
}

/* Operations per second of sign or verify with a P-256 key. */
static double
ecdsa_rate(int verify, double secs)
{
	EVP_PKEY	*key;
	EVP_MD_CTX	*ctx = EVP_MD_CTX_new();
	uint8_t		 msg[512], sig[128];
	size_t		 siglen = sizeof(sig);
	double		 t0, t;
	long		 n = 0;

	memset(msg, 0x5a, sizeof(msg));
	if (pkey_generate(PKEY_EC_P256, &key) != 0)
		exit(1);
	EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL, key);
	EVP_DigestSign(ctx, sig, &siglen, msg, sizeof(msg));
	t0 = now_s();
	do {
		if (verify) {
			EVP_DigestVerifyInit(ctx, NULL, EVP_sha256(), NULL, key);
			if (EVP_DigestVerify(ctx, sig, siglen, msg,
			    sizeof(msg)) != 1)
				exit(1);
		} else {
			size_t l = sizeof(sig);

			EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL, key);
			EVP_DigestSign(ctx, sig, &l, msg, sizeof(msg));
		}
		n++;
	} while ((t = now_s() - t0) < secs);
	EVP_MD_CTX_free(ctx);
	EVP_PKEY_free(key);
	return (double)n / t;
}

int
main(int argc, char **argv)
{
	Wick__Agent__NewX509SVIDParams	*pv, **pp;
	STACK_OF(X509)			*roots, *chain;
	EVP_PKEY			*key, *akey;
	struct jose_key			*jk;
	json_t				*pub;
	struct buf			*csr;
	char				*aud[] = { "bench" };
	const char			*addr = NULL, *td = NULL, *dir = NULL;
	const char			*entry = NULL;
	char				 path[1024];
	double				 secs = 10, t0, rate, sign, verify;
	double				 ceiling;
	int				 batch = 100, conc = 4, ch, i;
	int				 json = 0;

	while ((ch = getopt(argc, argv, "s:T:d:e:k:b:c:t:j")) != -1) {
		switch (ch) {
		case 's': addr = optarg; break;
		case 'T': td = optarg; break;
		case 'd': dir = optarg; break;
		case 'e': entry = optarg; break;
		case 'b': batch = atoi(optarg); break;
		case 'c': conc = atoi(optarg); break;
		case 't': secs = atof(optarg); break;
		case 'k': kind = optarg; break;
		case 'j': json = 1; break;
		default: goto usage;
		}
	}
	if (addr == NULL || td == NULL || dir == NULL || entry == NULL ||
	    batch < 1 || batch > 500 || conc < 1 || (strcmp(kind, "x509") != 0 &&
	    strcmp(kind, "jwt") != 0 && strcmp(kind, "wit") != 0))
		goto usage;
	log_init("bench", LOG_LEVEL_WARN, LOG_FORMAT_TEXT);
	snprintf(path, sizeof(path), "%s/bundle.pem", dir);
	if (x509_load_certs_file(path, 64, &roots) != 0)
		goto state;
	snprintf(path, sizeof(path), "%s/agent.pem", dir);
	if (x509_load_chain_file(path, &chain) != 0)
		goto state;
	snprintf(path, sizeof(path), "%s/agent.key", dir);
	if (x509_load_key_file(path, &akey) != 0)
		goto state;
	uv_loop_init(&loop);
	if (nodeclient_new(&loop, addr, td, roots, &nc) != 0 ||
	    nodeclient_set_identity(nc, chain, akey) != 0)
		return 1;
	pv = xcalloc((size_t)batch, sizeof(*pv));
	pp = xcalloc((size_t)batch, sizeof(*pp));
	csr = xcalloc((size_t)batch, sizeof(*csr));
	for (i = 0; i < batch; i++) {
		buf_init(&csr[i], PKEY_MAX_DER);
		if (pkey_generate(PKEY_EC_P256, &key) != 0 ||
		    csr_make(key, &csr[i]) != 0)
			return 1;
		EVP_PKEY_free(key);
		wick__agent__new_x509_svidparams__init(&pv[i]);
		pv[i].entry_id = (char *)entry;
		pv[i].csr.data = (uint8_t *)buf_ptr(&csr[i]);
		pv[i].csr.len = buf_len(&csr[i]);
		pp[i] = &pv[i];
	}
	req.params = pp;
	req.n_params = (size_t)batch;
	jwt_req.entry_id = (char *)entry;
	jwt_req.audience = aud;
	jwt_req.n_audience = 1;
	if (pkey_generate(PKEY_EC_P256, &key) != 0 ||
	    jose_key_from_pkey(key, "workload", &jk) != 0 ||
	    jose_key_to_jwk(jk, 0, &pub) != 0)
		return 1;
	json_object_del(pub, "kid");
	json_object_set_new(pub, "alg", json_string("ES256"));
	wit_req.entry_id = (char *)entry;
	wit_req.public_jwk = json_dumps(pub, JSON_COMPACT);
	json_decref(pub);
	jose_key_free(jk);
	EVP_PKEY_free(key);
	/* Warm up: the TLS handshake and the first call. */
	t_end = 0;
	send_one();
	while (inflight > 0 && uv_run(&loop, UV_RUN_ONCE) != 0)
		;
	if (failed > 0)
		return 1;
	warm = issued;
	issued = 0;
	t0 = now_s();
	t_end = t0 + secs;
	for (i = 0; i < conc; i++)
		send_one();
	while (inflight > 0 && uv_run(&loop, UV_RUN_ONCE) != 0)
		;
	rate = (double)issued / (now_s() - t0);
	if (json) {
		printf("{\"kind\":\"%s\",\"issued\":%ld,\"warm_up\":%ld,"
		    "\"failed\":%ld,\"rate\":%.1f,\"batch\":%d,"
		    "\"in_flight\":%d}\n", kind, issued, warm, failed, rate,
		    strcmp(kind, "x509") == 0 ? batch : 1, conc);
		goto out;
	}
	if (strcmp(kind, "x509") != 0) {
		printf("%s-SVIDs issued      %10.0f /s  (%ld in %.1f s, %d calls "
		    "in flight, %ld failed)\n", kind, rate, issued, secs, conc,
		    failed);
		goto out;
	}
	sign = ecdsa_rate(0, 2.0);
	verify = ecdsa_rate(1, 2.0);
	ceiling = 1.0 / (1.0 / sign + 1.0 / verify);
	printf("X.509-SVIDs issued      %10.0f /s  (%ld in %.1f s, batch %d, "
	    "%d calls in flight, %ld failed)\n", rate, issued, secs, batch,
	    conc, failed);
	printf("ECDSA P-256 sign        %10.0f /s  (this machine, one core)\n",
	    sign);
	printf("ECDSA P-256 verify      %10.0f /s\n", verify);
	printf("ceiling sign+verify     %10.0f /s  (one core)\n", ceiling);
	printf("ratio issued/ceiling    %10.2f\n", rate / ceiling);
out:
	nodeclient_free(nc);
	uv_run(&loop, UV_RUN_DEFAULT);
	return failed > 0;
usage:
	fprintf(stderr, "usage: bench_issue -s HOST:PORT -T TD -d AGENTDIR -e "
	    "ENTRY_ID [-k x509|jwt|wit] [-b BATCH] [-c CONCURRENT] "
	    "[-t SECONDS] [-j]\n");
	return 1;
state:
	fprintf(stderr, "cannot read %s (attest with wick-testagent first)\n",
	    path);
	return 1;
}
