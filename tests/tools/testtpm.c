/*
 * testtpm.c: wick-testtpm, what the TPM tests need beyond the agent: PCR
 * operations, leftover objects, and the agent's TPM steps run alone
 * (with switches the daemon never has), printing JSON (one object per
 * line, byte strings in lower-case hex).
 *
 *	wick-testtpm extend -tcti T -pcr N [-data TEXT]
 *		extend sha256 PCR N with SHA-256(TEXT) (default "wick");
 *		prints {"pcr": N, "value": hex} (the new value)
 *	wick-testtpm read -tcti T -pcr N
 *		prints {"pcr": N, "value": hex}
 *	wick-testtpm leftovers -tcti T [-flush]
 *		prints {"objects": n, "sessions": m}: transient objects and
 *		sessions in the TPM (before flushing them with -flush)
 *	wick-testtpm identity -tcti T [-unrestricted]
 *		prints {"ek_cert", "ek_pub", "ak_pub", "pub_hash"}
 *	wick-testtpm attest -tcti T [-unrestricted]
 *		the agent's side of one attestation driven from outside:
 *		prints the identity line, reads one challenge line from
 *		stdin {"credential_blob", "encrypted_secret", "nonce",
 *		"pcrs": [n...], "csr_spki"}, prints {"secret", "quote",
 *		"signature", "pcr_values": [hex...]}
 *	wick-testtpm selftest -tcti T [-pcrs LIST] [-unrestricted]
 *		identity, a credential made by the TPM itself to the AK
 *		(LoadExternal + MakeCredential), the answer; checks the
 *		secret and that nothing is left in the TPM; prints the
 *		answer and the milliseconds of each step
 *
 * -tcti defaults to $WICK_TEST_TCTI.  Failures print {"error": why,
 * "code": text} on stdout (identity, attest, selftest) or why on stderr,
 * and exit 1; usage errors exit 2.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "buf.h"
#include "encode.h"
#include "flag.h"
#include "na_tpm.h"
#include "na_tpm_int.h"
#include "pkey.h"
#include "../unit/helpers/tpmtest.h"

#define TESTTPM_MAX_LINE	(256 * 1024)

struct opts {
	const char	*tcti;
	const char	*pcr;
	const char	*data;
	const char	*pcrs;
	int		 unrestricted;
	int		 flush;
};

static void
usage(void)
{
	fprintf(stderr,
"usage: wick-testtpm extend -tcti T -pcr N [-data TEXT]\n"
"       wick-testtpm read -tcti T -pcr N\n"
"       wick-testtpm leftovers -tcti T [-flush]\n"
"       wick-testtpm identity -tcti T [-unrestricted]\n"
"       wick-testtpm attest -tcti T [-unrestricted]\n"
"       wick-testtpm selftest -tcti T [-pcrs LIST] [-unrestricted]\n");
}

static unsigned
ak_flags(const struct opts *o)
{
	return o->unrestricted ? NA_TPM_AK_UNRESTRICTED : 0;
}

static double
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int
print_json(json_t *j)
{
	char *s;

	if (j == NULL || (s = json_dumps(j, JSON_COMPACT)) == NULL) {
		json_decref(j);
		return 1;
	}
	printf("%s\n", s);
	fflush(stdout);
	free(s);
	json_decref(j);
	return 0;
}

static int
fail_json(int r, const char *why)
{
	(void)print_json(json_pack("{s:s, s:s}", "error", why, "code",
	    wick_strerror(r)));
	return 1;
}

static json_t *
hex_json(const uint8_t *p, size_t n)
{
	char	*h;
	json_t	*j;

	if ((h = malloc(2 * n + 1)) == NULL)
		return NULL;
	hex_encode(p, n, h);
	j = json_string(h);
	free(h);
	return j;
}

/* A JSON string of hex into out (replacing its content). */
static int
hex_get(json_t *obj, const char *key, struct buf *out)
{
	const char	*s;
	size_t		 i, n;
	int		 hi, lo;

	buf_reset(out);
	if ((s = json_string_value(json_object_get(obj, key))) == NULL)
		return WICK_ERR_INVALID;
	if ((n = strlen(s)) % 2 != 0)
		return WICK_ERR_INVALID;
	for (i = 0; i < n; i += 2) {
		if ((hi = hex_digit((unsigned char)s[i])) < 0 ||
		    (lo = hex_digit((unsigned char)s[i + 1])) < 0)
			return WICK_ERR_INVALID;
		if (buf_put_u8(out, (uint8_t)(hi << 4 | lo)) != 0)
			return WICK_ERR_LIMIT;
	}
	return 0;
}

static int
parse_pcr(const char *s, uint32_t *out)
{
	char		*end;
	unsigned long	 v;

	if (s == NULL || *s == '\0')
		return WICK_ERR_INVALID;
	v = strtoul(s, &end, 10);
	if (*end != '\0' || v >= NA_TPM_MAX_PCRS)
		return WICK_ERR_INVALID;
	*out = (uint32_t)v;
	return 0;
}

static int
parse_pcrs(const char *s, uint32_t *pcrs, size_t *n)
{
	char	 tmp[256], *tok, *save = NULL;

	*n = 0;
	if (s == NULL || *s == '\0')
		return 0;
	if (strlen(s) >= sizeof(tmp))
		return WICK_ERR_INVALID;
	strcpy(tmp, s);
	for (tok = strtok_r(tmp, ",", &save); tok != NULL;
	    tok = strtok_r(NULL, ",", &save)) {
		if (*n >= NA_TPM_MAX_PCRS || parse_pcr(tok, &pcrs[*n]) != 0)
			return WICK_ERR_INVALID;
		(*n)++;
	}
	return 0;
}

static json_t *
identity_json(const struct buf *ek_cert, const struct buf *ek_pub,
    const struct buf *ak_pub)
{
	char hash[NA_TPM_PUB_HASH_LEN + 1];

	if (na_tpm_pub_hash(buf_ptr(ek_pub), buf_len(ek_pub), hash) != 0)
		return NULL;
	return json_pack("{s:o, s:o, s:o, s:s}",
	    "ek_cert", hex_json(buf_ptr(ek_cert), buf_len(ek_cert)),
	    "ek_pub", hex_json(buf_ptr(ek_pub), buf_len(ek_pub)),
	    "ak_pub", hex_json(buf_ptr(ak_pub), buf_len(ak_pub)),
	    "pub_hash", hash);
}

static json_t *
response_json(const struct na_tpm_answer *resp)
{
	json_t	*vals;
	size_t	 i;

	if ((vals = json_array()) == NULL)
		return NULL;
	for (i = 0; i < resp->npcrs; i++)
		(void)json_array_append_new(vals,
		    hex_json(resp->pcr_values[i], NA_TPM_PCR_LEN));
	return json_pack("{s:o, s:o, s:o, s:o}",
	    "secret", hex_json(buf_ptr(&resp->secret),
	    buf_len(&resp->secret)),
	    "quote", hex_json(buf_ptr(&resp->quote), buf_len(&resp->quote)),
	    "signature", hex_json(buf_ptr(&resp->signature),
	    buf_len(&resp->signature)),
	    "pcr_values", vals);
}

/* ---- PCRs and leftovers -------------------------------------------------- */

static int
cmd_pcr(const struct opts *o, int extend)
{
	struct tpmtest	 t;
	char		 why[NA_TPM_MAX_WHY], hex[65];
	uint8_t		 d[32], v[32];
	unsigned int	 n = 0;
	uint32_t	 pcr;
	const char	*data = o->data != NULL ? o->data : "wick";
	int		 r;

	if (parse_pcr(o->pcr, &pcr) != 0) {
		fprintf(stderr, "wick-testtpm: -pcr: 0 to %d\n",
		    NA_TPM_MAX_PCRS - 1);
		return 2;
	}
	if ((r = tpmtest_open(o->tcti, &t, why, sizeof(why))) != 0) {
		fprintf(stderr, "wick-testtpm: %s\n", why);
		return 1;
	}
	if (extend) {
		if (EVP_Digest(data, strlen(data), d, &n, EVP_sha256(),
		    NULL) != 1) {
			snprintf(why, sizeof(why), "SHA-256 failed");
			r = WICK_ERR_CRYPTO;
			goto out;
		}
		if ((r = tpmtest_pcr_extend(t.esys, pcr, d, why,
		    sizeof(why))) != 0)
			goto out;
	}
	if ((r = tpmtest_pcr_read(t.esys, pcr, v, why, sizeof(why))) != 0)
		goto out;
	hex_encode(v, sizeof(v), hex);
	r = print_json(json_pack("{s:i, s:s}", "pcr", (int)pcr, "value",
	    hex));
out:
	tpmtest_close(&t);
	if (r < 0)
		fprintf(stderr, "wick-testtpm: %s\n", why);
	return r != 0;
}

static int
cmd_leftovers(const struct opts *o)
{
	struct tpmtest	t;
	char		why[NA_TPM_MAX_WHY];
	uint32_t	objects, sessions;
	int		r;

	if ((r = tpmtest_open(o->tcti, &t, why, sizeof(why))) != 0) {
		fprintf(stderr, "wick-testtpm: %s\n", why);
		return 1;
	}
	r = tpmtest_leftovers(t.esys, o->flush, &objects, &sessions, why,
	    sizeof(why));
	tpmtest_close(&t);
	if (r != 0) {
		fprintf(stderr, "wick-testtpm: %s\n", why);
		return 1;
	}
	return print_json(json_pack("{s:i, s:i}", "objects", (int)objects,
	    "sessions", (int)sessions));
}

/* ---- the agent's steps --------------------------------------------------- */

static int
read_challenge(json_t **out)
{
	json_error_t	 err;
	char		*line;

	*out = NULL;
	if ((line = malloc(TESTTPM_MAX_LINE)) == NULL)
		return WICK_ERR_ALLOC;
	if (fgets(line, TESTTPM_MAX_LINE, stdin) == NULL) {
		free(line);
		return WICK_ERR_EOF;
	}
	*out = json_loads(line, 0, &err);
	free(line);
	return *out != NULL && json_is_object(*out) ? 0 : WICK_ERR_INVALID;
}

static int
cmd_identity(const struct opts *o, int attest)
{
	struct na_tpm		*t = NULL;
	struct na_tpm_answer	 resp;
	struct buf		 ek_cert, ek_pub, ak_pub, blob, enc, nonce;
	struct buf		 spki;
	json_t			*ch = NULL, *a;
	uint32_t		 pcrs[NA_TPM_MAX_PCRS];
	char			 why[NA_TPM_MAX_WHY];
	size_t			 i;
	int			 r, rc = 1;

	buf_init(&ek_cert, 0);
	buf_init(&ek_pub, 0);
	buf_init(&ak_pub, 0);
	buf_init(&blob, 0);
	buf_init(&enc, 0);
	buf_init(&nonce, 0);
	buf_init(&spki, 0);
	na_tpm_answer_init(&resp);
	why[0] = '\0';
	if ((r = na_tpm_open(o->tcti, &t, why, sizeof(why))) != 0 ||
	    (r = na_tpm_identity_flags(t, ak_flags(o), &ek_cert, &ek_pub,
	    &ak_pub, why, sizeof(why))) != 0) {
		rc = fail_json(r, why);
		goto out;
	}
	if (print_json(identity_json(&ek_cert, &ek_pub, &ak_pub)) != 0)
		goto out;
	if (!attest) {
		rc = 0;
		goto out;
	}
	if ((r = read_challenge(&ch)) != 0) {
		rc = fail_json(r, "no challenge line on stdin");
		goto out;
	}
	if (hex_get(ch, "credential_blob", &blob) != 0 ||
	    hex_get(ch, "encrypted_secret", &enc) != 0 ||
	    hex_get(ch, "nonce", &nonce) != 0 ||
	    (json_object_get(ch, "csr_spki") != NULL &&
	    hex_get(ch, "csr_spki", &spki) != 0) ||
	    !json_is_array(a = json_object_get(ch, "pcrs")) ||
	    json_array_size(a) > NA_TPM_MAX_PCRS) {
		rc = fail_json(WICK_ERR_INVALID, "malformed challenge line");
		goto out;
	}
	for (i = 0; i < json_array_size(a); i++) {
		json_int_t v = json_integer_value(json_array_get(a, i));

		if (!json_is_integer(json_array_get(a, i)) || v < 0 ||
		    v > 0xffffffffLL) {
			rc = fail_json(WICK_ERR_INVALID, "malformed pcrs");
			goto out;
		}
		pcrs[i] = (uint32_t)v;
	}
	if ((r = na_tpm_answer(t, buf_ptr(&blob), buf_len(&blob),
	    buf_ptr(&enc), buf_len(&enc), buf_ptr(&nonce), buf_len(&nonce),
	    pcrs, json_array_size(a), buf_ptr(&spki), buf_len(&spki), &resp,
	    why, sizeof(why))) != 0) {
		rc = fail_json(r, why);
		goto out;
	}
	rc = print_json(response_json(&resp));
out:
	na_tpm_close(t);
	json_decref(ch);
	na_tpm_answer_cleanup(&resp);
	buf_cleanup(&ek_cert);
	buf_cleanup(&ek_pub);
	buf_cleanup(&ak_pub);
	buf_cleanup(&blob);
	buf_cleanup(&enc);
	buf_cleanup(&nonce);
	buf_cleanup(&spki);
	return rc;
}

static int
cmd_selftest(const struct opts *o)
{
	struct na_tpm		*t = NULL;
	struct na_tpm_answer	 resp;
	struct tpmtest		 tt;
	struct buf		 ek_cert, ek_pub, ak_pub, blob, enc, spki;
	EVP_PKEY		*csrkey = NULL;
	uint8_t			 cred[32], nonce[32];
	uint32_t		 pcrs[NA_TPM_MAX_PCRS], objects, sessions;
	size_t			 npcrs;
	char			 why[NA_TPM_MAX_WHY];
	double			 t0, t_open, t_id, t_make, t_answer, t_close;
	json_t			*j;
	int			 r, rc = 1;

	buf_init(&ek_cert, 0);
	buf_init(&ek_pub, 0);
	buf_init(&ak_pub, 0);
	buf_init(&blob, 0);
	buf_init(&enc, 0);
	buf_init(&spki, 0);
	na_tpm_answer_init(&resp);
	why[0] = '\0';
	if (parse_pcrs(o->pcrs != NULL ? o->pcrs : "0,1,2,3,4,5,6,7,16",
	    pcrs, &npcrs) != 0) {
		fprintf(stderr, "wick-testtpm: -pcrs: a comma-separated "
		    "list of 0..%d\n", NA_TPM_MAX_PCRS - 1);
		rc = 2;
		goto out;
	}
	if (RAND_bytes(cred, sizeof(cred)) != 1 ||
	    RAND_bytes(nonce, sizeof(nonce)) != 1 ||
	    pkey_generate(PKEY_EC_P256, &csrkey) != 0 ||
	    pkey_public_der(csrkey, &spki) != 0) {
		rc = fail_json(WICK_ERR_CRYPTO, "test inputs");
		goto out;
	}
	t0 = now_ms();
	if ((r = na_tpm_open(o->tcti, &t, why, sizeof(why))) != 0) {
		rc = fail_json(r, why);
		goto out;
	}
	t_open = now_ms();
	if ((r = na_tpm_identity_flags(t, ak_flags(o), &ek_cert, &ek_pub,
	    &ak_pub, why, sizeof(why))) != 0) {
		rc = fail_json(r, why);
		goto out;
	}
	t_id = now_ms();
	if ((r = tpmtest_make_credential(t, buf_ptr(&ek_pub),
	    buf_len(&ek_pub), cred, sizeof(cred), &blob, &enc, why,
	    sizeof(why))) != 0) {
		rc = fail_json(r, why);
		goto out;
	}
	t_make = now_ms();
	if ((r = na_tpm_answer(t, buf_ptr(&blob), buf_len(&blob),
	    buf_ptr(&enc), buf_len(&enc), nonce, sizeof(nonce), pcrs, npcrs,
	    buf_ptr(&spki), buf_len(&spki), &resp, why, sizeof(why))) != 0) {
		rc = fail_json(r, why);
		goto out;
	}
	t_answer = now_ms();
	na_tpm_close(t);
	t = NULL;
	t_close = now_ms();
	if (buf_len(&resp.secret) != sizeof(cred) ||
	    memcmp(buf_ptr(&resp.secret), cred, sizeof(cred)) != 0) {
		rc = fail_json(WICK_ERR_PROTOCOL, "the recovered secret "
		    "differs");
		goto out;
	}
	if ((r = tpmtest_open(o->tcti, &tt, why, sizeof(why))) != 0) {
		rc = fail_json(r, why);
		goto out;
	}
	r = tpmtest_leftovers(tt.esys, 0, &objects, &sessions, why,
	    sizeof(why));
	tpmtest_close(&tt);
	if (r != 0 || objects != 0 || sessions != 0) {
		if (r == 0)
			snprintf(why, sizeof(why), "%u objects and %u sessions "
			    "left in the TPM", objects, sessions);
		rc = fail_json(r != 0 ? r : WICK_ERR_STATE, why);
		goto out;
	}
	if ((j = response_json(&resp)) == NULL ||
	    json_object_set_new(j, "identity",
	    identity_json(&ek_cert, &ek_pub, &ak_pub)) != 0 ||
	    json_object_set_new(j, "nonce", hex_json(nonce,
	    sizeof(nonce))) != 0 ||
	    json_object_set_new(j, "csr_spki", hex_json(buf_ptr(&spki),
	    buf_len(&spki))) != 0 ||
	    json_object_set_new(j, "ms", json_pack("{s:f, s:f, s:f, s:f, s:f, "
	    "s:f}", "open", t_open - t0, "identity", t_id - t_open,
	    "tpm_make_credential", t_make - t_id, "answer", t_answer - t_make,
	    "close", t_close - t_answer, "agent_total",
	    (t_close - t0) - (t_make - t_id))) != 0) {
		json_decref(j);
		goto out;
	}
	rc = print_json(j);
out:
	na_tpm_close(t);
	EVP_PKEY_free(csrkey);
	na_tpm_answer_cleanup(&resp);
	buf_cleanup(&ek_cert);
	buf_cleanup(&ek_pub);
	buf_cleanup(&ak_pub);
	buf_cleanup(&blob);
	buf_cleanup(&enc);
	buf_cleanup(&spki);
	return rc;
}

int
main(int argc, char **argv)
{
	struct opts	 o;
	const char	*cmd;
	int		 i;

	/* As the agent: a TPM that goes away costs an error, not the process. */
	signal(SIGPIPE, SIG_IGN);
	if (argc < 2) {
		usage();
		return 2;
	}
	cmd = argv[1];
	memset(&o, 0, sizeof(o));
	o.tcti = getenv(TPMTEST_ENV_TCTI);
	for (i = 2; i < argc; i++) {
		if (flag_value(argc, argv, &i, "tcti", &o.tcti) ||
		    flag_value(argc, argv, &i, "pcr", &o.pcr) ||
		    flag_value(argc, argv, &i, "data", &o.data) ||
		    flag_value(argc, argv, &i, "pcrs", &o.pcrs))
			continue;
		if (flag_bool(argv[i], "unrestricted")) {
			o.unrestricted = 1;
			continue;
		}
		if (flag_bool(argv[i], "flush")) {
			o.flush = 1;
			continue;
		}
		fprintf(stderr, "wick-testtpm: unknown flag %s\n", argv[i]);
		usage();
		return 2;
	}
	if (o.tcti == NULL || *o.tcti == '\0') {
		fprintf(stderr, "wick-testtpm: no -tcti and no $%s\n",
		    TPMTEST_ENV_TCTI);
		return 2;
	}
	if (strcmp(cmd, "extend") == 0)
		return cmd_pcr(&o, 1);
	if (strcmp(cmd, "read") == 0)
		return cmd_pcr(&o, 0);
	if (strcmp(cmd, "leftovers") == 0)
		return cmd_leftovers(&o);
	if (strcmp(cmd, "identity") == 0)
		return cmd_identity(&o, 0);
	if (strcmp(cmd, "attest") == 0)
		return cmd_identity(&o, 1);
	if (strcmp(cmd, "selftest") == 0)
		return cmd_selftest(&o);
	usage();
	return 2;
}
