/*
 * test_tpmv_swtpm.c: the server's TPM verifier against a real TPM.
 *
 * The test manufactures a TPM with swtpm_setup (EK certificates signed by
 * a local CA, from a private configuration: nothing of /etc is read),
 * starts swtpm on a Unix socket in a scratch directory and stops it by
 * its pid.  The TPM then plays the agent: our software MakeCredential is
 * activated by ActivateCredential with the EK's policy session, and real
 * TPM2_Quotes by TPM-made AKs go through tpmv_answer().  A missing
 * swtpm is a failure, never a skip.
 */
#include <sys/stat.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include <openssl/pem.h>
#include <openssl/x509.h>
#include <tss2/tss2_esys.h>
#include <tss2/tss2_mu.h>
#include <tss2/tss2_tctildr.h>

#include "buf.h"
#include "tpmv.h"
#include "tpmv_int.h"
#include "tpm.pb-c.h"
#include "helpers/tpmfix.h"

#define AK_P256		0
#define AK_P384		1
#define AK_RSA		2

static struct {
	char			 dir[64];
	char			 sock[128];
	pid_t			 swtpm;
	TSS2_TCTI_CONTEXT	*tcti;
	ESYS_CONTEXT		*esys;
	ESYS_TR			 ek;
	TPM2B_PUBLIC		*ekpub;
	X509			*ekcert, *root, *issuer;
	struct tpmv_config	*cfg;		/* ca_path */
	struct tpmv_config	*cfg_hash;	/* hash_path */
	EVP_PKEY		*csrkey;
	uint8_t			*spki;
	size_t			 spkilen;
	uint8_t			 pcr16[32];	/* PCR 16's value */
} t;

/* ---- swtpm --------------------------------------------------------------- */

static int
write_file(const char *path, const char *fmt, ...)
{
	va_list	 ap;
	FILE	*f;

	if ((f = fopen(path, "w")) == NULL)
		return -1;
	va_start(ap, fmt);
	vfprintf(f, fmt, ap);
	va_end(ap);
	return fclose(f) == 0 ? 0 : -1;
}

/* Start argv[0] from PATH, its output into out; the child's pid. */
static pid_t
spawn(char *const argv[], const char *out)
{
	pid_t	pid;
	int	fd;

	if ((pid = fork()) == -1)
		return -1;
	if (pid == 0) {
		fd = open(out, O_WRONLY | O_CREAT | O_APPEND, 0600);
		if (fd >= 0) {
			(void)dup2(fd, 1);
			(void)dup2(fd, 2);
			close(fd);
		}
		execvp(argv[0], argv);
		_exit(127);
	}
	return pid;
}

/* Run argv to its end: 0 when it exited 0. */
static int
run(char *const argv[], const char *out)
{
	pid_t	pid;
	int	status;

	if ((pid = spawn(argv, out)) == -1)
		return -1;
	while (waitpid(pid, &status, 0) == -1)
		if (errno != EINTR)
			return -1;
	if (WIFEXITED(status) && WEXITSTATUS(status) == 127) {
		fprintf(stderr, "%s is not installed: apt-get install swtpm "
		    "swtpm-tools (scripts/setup.sh)\n", argv[0]);
		return -1;
	}
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		fprintf(stderr, "%s failed, see %s\n", argv[0], out);
		return -1;
	}
	return 0;
}

/* swtpm_setup with a private local CA (specs/tpm.md §2.1). */
static int
manufacture(void)
{
	char	ca[96], state[96], conf[128], lconf[128], lopts[128];
	char	log[128], out[128];
	char	*argv[16];
	int	i = 0;

	snprintf(ca, sizeof(ca), "%s/ca", t.dir);
	snprintf(state, sizeof(state), "%s/state", t.dir);
	snprintf(conf, sizeof(conf), "%s/swtpm_setup.conf", t.dir);
	snprintf(lconf, sizeof(lconf), "%s/swtpm-localca.conf", t.dir);
	snprintf(lopts, sizeof(lopts), "%s/swtpm-localca.options", t.dir);
	snprintf(log, sizeof(log), "%s/setup.log", t.dir);
	snprintf(out, sizeof(out), "%s/setup.out", t.dir);
	if (mkdir(ca, 0700) != 0 || mkdir(state, 0700) != 0)
		return -1;
	if (write_file(lconf, "statedir = %s\nsigningkey = %s/signkey.pem\n"
	    "issuercert = %s/issuercert.pem\ncertserial = %s/certserial\n",
	    ca, ca, ca, ca) != 0 ||
	    write_file(lopts, "--platform-manufacturer TestMfr\n"
	    "--platform-version 2.1\n--platform-model swtpm\n") != 0 ||
	    write_file(conf, "create_certs_tool = swtpm_localca\n"
	    "create_certs_tool_config = %s\ncreate_certs_tool_options = %s\n"
	    "active_pcr_banks = sha256\n", lconf, lopts) != 0)
		return -1;
	argv[i++] = "swtpm_setup";
	argv[i++] = "--tpm2";
	argv[i++] = "--tpmstate";
	argv[i++] = state;
	argv[i++] = "--config";
	argv[i++] = conf;
	argv[i++] = "--create-ek-cert";
	argv[i++] = "--write-ek-cert-files";
	argv[i++] = t.dir;
	argv[i++] = "--overwrite";
	argv[i++] = "--logfile";
	argv[i++] = log;
	argv[i] = NULL;
	return run(argv, out);
}

/* swtpm on a Unix socket, ready as a booted machine's TPM (§2.2). */
static int
start_swtpm(void)
{
	char		 state[96], ctrl[128], srv[160], ctl[160], log[128];
	char		 out[128];
	char		*argv[16];
	struct stat	 st;
	int		 i = 0, status;

	snprintf(state, sizeof(state), "dir=%s/state", t.dir);
	snprintf(t.sock, sizeof(t.sock), "%s/tpm.sock", t.dir);
	snprintf(ctrl, sizeof(ctrl), "%s/tpm.sock.ctrl", t.dir);
	snprintf(srv, sizeof(srv), "type=unixio,path=%s", t.sock);
	snprintf(ctl, sizeof(ctl), "type=unixio,path=%s", ctrl);
	snprintf(log, sizeof(log), "file=%s/swtpm.log", t.dir);
	snprintf(out, sizeof(out), "%s/swtpm.out", t.dir);
	argv[i++] = "swtpm";
	argv[i++] = "socket";
	argv[i++] = "--tpm2";
	argv[i++] = "--tpmstate";
	argv[i++] = state;
	argv[i++] = "--server";
	argv[i++] = srv;
	argv[i++] = "--ctrl";
	argv[i++] = ctl;
	argv[i++] = "--flags";
	argv[i++] = "not-need-init,startup-clear";
	argv[i++] = "--log";
	argv[i++] = log;
	argv[i] = NULL;
	if ((t.swtpm = spawn(argv, out)) == -1)
		return -1;
	for (i = 0; i < 500; i++) {
		if (stat(t.sock, &st) == 0 && S_ISSOCK(st.st_mode))
			return 0;
		if (waitpid(t.swtpm, &status, WNOHANG) == t.swtpm) {
			t.swtpm = 0;
			fprintf(stderr, "swtpm exited, see %s\n", out);
			return -1;
		}
		usleep(10000);
	}
	fprintf(stderr, "swtpm did not make %s\n", t.sock);
	return -1;
}

/* By its pid; it is our child. */
static void
stop_swtpm(void)
{
	int i, status;

	if (t.swtpm <= 0)
		return;
	(void)kill(t.swtpm, SIGTERM);
	for (i = 0; i < 300; i++) {
		if (waitpid(t.swtpm, &status, WNOHANG) == t.swtpm) {
			t.swtpm = 0;
			return;
		}
		usleep(10000);
	}
	(void)kill(t.swtpm, SIGKILL);
	(void)waitpid(t.swtpm, &status, 0);
	t.swtpm = 0;
}

/* ---- the TPM's side ------------------------------------------------------ */

static X509 *
read_pem(const char *path)
{
	FILE	*f;
	X509	*x;

	if ((f = fopen(path, "r")) == NULL)
		return NULL;
	x = PEM_read_X509(f, NULL, NULL, NULL);
	fclose(f);
	return x;
}

static X509 *
read_der(const char *path)
{
	FILE	*f;
	X509	*x;

	if ((f = fopen(path, "r")) == NULL)
		return NULL;
	x = d2i_X509_fp(f, NULL);
	fclose(f);
	return x;
}

/* The EK by template L-1 (TCG EK Credential Profile). */
static TSS2_RC
create_ek(void)
{
	static const uint8_t policy[32] = {
		0x83, 0x71, 0x97, 0x67, 0x44, 0x84, 0xb3, 0xf8,
		0x1a, 0x90, 0xcc, 0x8d, 0x46, 0xa5, 0xd7, 0x24,
		0xfd, 0x52, 0xd7, 0x6e, 0x06, 0x52, 0x0b, 0x64,
		0xf2, 0xa1, 0xda, 0x1b, 0x33, 0x14, 0x69, 0xaa,
	};
	TPM2B_SENSITIVE_CREATE	sens;
	TPM2B_PUBLIC		tmpl;
	TPM2B_DATA		outside;
	TPML_PCR_SELECTION	pcrs;
	TPMT_PUBLIC		*p = &tmpl.publicArea;

	memset(&sens, 0, sizeof(sens));
	memset(&tmpl, 0, sizeof(tmpl));
	memset(&outside, 0, sizeof(outside));
	memset(&pcrs, 0, sizeof(pcrs));
	p->type = TPM2_ALG_RSA;
	p->nameAlg = TPM2_ALG_SHA256;
	p->objectAttributes = TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT |
	    TPMA_OBJECT_SENSITIVEDATAORIGIN | TPMA_OBJECT_ADMINWITHPOLICY |
	    TPMA_OBJECT_RESTRICTED | TPMA_OBJECT_DECRYPT;
	p->authPolicy.size = sizeof(policy);
	memcpy(p->authPolicy.buffer, policy, sizeof(policy));
	p->parameters.rsaDetail.symmetric.algorithm = TPM2_ALG_AES;
	p->parameters.rsaDetail.symmetric.keyBits.aes = 128;
	p->parameters.rsaDetail.symmetric.mode.aes = TPM2_ALG_CFB;
	p->parameters.rsaDetail.scheme.scheme = TPM2_ALG_NULL;
	p->parameters.rsaDetail.keyBits = 2048;
	p->unique.rsa.size = 256;
	return Esys_CreatePrimary(t.esys, ESYS_TR_RH_ENDORSEMENT,
	    ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, &sens, &tmpl,
	    &outside, &pcrs, &t.ek, &t.ekpub, NULL, NULL, NULL);
}

/* A restricted signing key, a primary of the owner hierarchy. */
static ESYS_TR
create_ak(int kind, TPMA_OBJECT drop, TPM2B_PUBLIC **pub)
{
	TPM2B_SENSITIVE_CREATE	sens;
	TPM2B_PUBLIC		tmpl;
	TPM2B_DATA		outside;
	TPML_PCR_SELECTION	pcrs;
	TPMT_PUBLIC		*p = &tmpl.publicArea;
	ESYS_TR			h = ESYS_TR_NONE;

	memset(&sens, 0, sizeof(sens));
	memset(&tmpl, 0, sizeof(tmpl));
	memset(&outside, 0, sizeof(outside));
	memset(&pcrs, 0, sizeof(pcrs));
	p->nameAlg = TPM2_ALG_SHA256;
	p->objectAttributes = (TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT |
	    TPMA_OBJECT_SENSITIVEDATAORIGIN | TPMA_OBJECT_USERWITHAUTH |
	    TPMA_OBJECT_NODA | TPMA_OBJECT_RESTRICTED |
	    TPMA_OBJECT_SIGN_ENCRYPT) & ~drop;
	if (kind == AK_RSA) {
		p->type = TPM2_ALG_RSA;
		p->parameters.rsaDetail.symmetric.algorithm = TPM2_ALG_NULL;
		p->parameters.rsaDetail.scheme.scheme = TPM2_ALG_RSASSA;
		p->parameters.rsaDetail.scheme.details.rsassa.hashAlg =
		    TPM2_ALG_SHA256;
		p->parameters.rsaDetail.keyBits = 2048;
	} else {
		p->type = TPM2_ALG_ECC;
		p->parameters.eccDetail.symmetric.algorithm = TPM2_ALG_NULL;
		p->parameters.eccDetail.scheme.scheme = TPM2_ALG_ECDSA;
		p->parameters.eccDetail.scheme.details.ecdsa.hashAlg =
		    TPM2_ALG_SHA256;
		p->parameters.eccDetail.curveID = kind == AK_P384 ?
		    TPM2_ECC_NIST_P384 : TPM2_ECC_NIST_P256;
		p->parameters.eccDetail.kdf.scheme = TPM2_ALG_NULL;
	}
	assert_int_equal(Esys_CreatePrimary(t.esys, ESYS_TR_RH_OWNER,
	    ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, &sens, &tmpl,
	    &outside, &pcrs, &h, pub, NULL, NULL, NULL), TSS2_RC_SUCCESS);
	return h;
}

/* ActivateCredential with the EK authorized by PolicySecret. */
static TSS2_RC
activate(ESYS_TR ak, const Wick__Tpm__TpmChallenge *ch, int tamper,
    TPM2B_DIGEST **secret)
{
	TPM2B_ID_OBJECT		id;
	TPM2B_ENCRYPTED_SECRET	es;
	TPMT_SYM_DEF		sym;
	ESYS_TR			sess = ESYS_TR_NONE;
	size_t			off = 0;
	TSS2_RC			rc;

	memset(&id, 0, sizeof(id));
	memset(&es, 0, sizeof(es));
	memset(&sym, 0, sizeof(sym));
	assert_int_equal(Tss2_MU_TPM2B_ID_OBJECT_Unmarshal(
	    ch->credential_blob.data, ch->credential_blob.len, &off, &id), 0);
	assert_int_equal(off, ch->credential_blob.len);
	off = 0;
	assert_int_equal(Tss2_MU_TPM2B_ENCRYPTED_SECRET_Unmarshal(
	    ch->encrypted_secret.data, ch->encrypted_secret.len, &off, &es),
	    0);
	assert_int_equal(off, ch->encrypted_secret.len);
	if (tamper)
		id.credential[id.size - 1] ^= 0x01;
	sym.algorithm = TPM2_ALG_NULL;
	assert_int_equal(Esys_StartAuthSession(t.esys, ESYS_TR_NONE,
	    ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, NULL,
	    TPM2_SE_POLICY, &sym, TPM2_ALG_SHA256, &sess), TSS2_RC_SUCCESS);
	assert_int_equal(Esys_PolicySecret(t.esys, ESYS_TR_RH_ENDORSEMENT,
	    sess, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, NULL, NULL,
	    NULL, 0, NULL, NULL), TSS2_RC_SUCCESS);
	rc = Esys_ActivateCredential(t.esys, ak, t.ek, ESYS_TR_PASSWORD, sess,
	    ESYS_TR_NONE, &id, &es, secret);
	assert_int_equal(Esys_FlushContext(t.esys, sess), TSS2_RC_SUCCESS);
	return rc;
}

static void
pcr_select(TPML_PCR_SELECTION *sel, const uint32_t *pcrs, size_t n)
{
	size_t i;

	memset(sel, 0, sizeof(*sel));
	if (n == 0)
		return;		/* no bank, as an agent asks for none */
	sel->count = 1;
	sel->pcrSelections[0].hash = TPM2_ALG_SHA256;
	sel->pcrSelections[0].sizeofSelect = 3;
	for (i = 0; i < n; i++)
		sel->pcrSelections[0].pcrSelect[pcrs[i] / 8] |=
		    (uint8_t)(1u << (pcrs[i] % 8));
}

/*
 * TPM2_Quote by ak over the challenge's PCRs with qualifying data qd,
 * and the PCR values read one by one: a packed TpmChallengeResponse.
 */
static void
quote(ESYS_TR ak, const Wick__Tpm__TpmChallenge *ch, const uint8_t *secret,
    const uint8_t *qd, size_t qdlen, uint8_t **resp, size_t *resplen)
{
	TPM2B_DATA		 data;
	TPMT_SIG_SCHEME		 scheme;
	TPML_PCR_SELECTION	 sel, one, *selout = NULL;
	TPM2B_ATTEST		*quoted = NULL;
	TPMT_SIGNATURE		*sig = NULL;
	TPML_DIGEST		*dig = NULL;
	uint8_t			 q[sizeof(TPM2B_ATTEST)];
	uint8_t			 s[sizeof(TPMT_SIGNATURE)];
	uint8_t			 values[24 * 32];
	size_t			 qlen = 0, slen = 0, i;
	UINT32			 counter;

	memset(&data, 0, sizeof(data));
	memset(&scheme, 0, sizeof(scheme));
	data.size = (UINT16)qdlen;
	memcpy(data.buffer, qd, qdlen);
	scheme.scheme = TPM2_ALG_NULL;	/* the AK's own */
	pcr_select(&sel, ch->pcrs, ch->n_pcrs);
	assert_int_equal(Esys_Quote(t.esys, ak, ESYS_TR_PASSWORD, ESYS_TR_NONE,
	    ESYS_TR_NONE, &data, &scheme, &sel, &quoted, &sig),
	    TSS2_RC_SUCCESS);
	for (i = 0; i < ch->n_pcrs; i++) {
		pcr_select(&one, &ch->pcrs[i], 1);
		assert_int_equal(Esys_PCR_Read(t.esys, ESYS_TR_NONE,
		    ESYS_TR_NONE, ESYS_TR_NONE, &one, &counter, &selout, &dig),
		    TSS2_RC_SUCCESS);
		assert_int_equal(dig->count, 1);
		assert_int_equal(dig->digests[0].size, 32);
		memcpy(values + 32 * i, dig->digests[0].buffer, 32);
		Esys_Free(selout);
		Esys_Free(dig);
	}
	assert_int_equal(Tss2_MU_TPM2B_ATTEST_Marshal(quoted, q, sizeof(q),
	    &qlen), 0);
	assert_int_equal(Tss2_MU_TPMT_SIGNATURE_Marshal(sig, s, sizeof(s),
	    &slen), 0);
	assert_int_equal(tpmfix_response(secret, 32, q, qlen, s, slen, values,
	    ch->n_pcrs, resp, resplen), 0);
	Esys_Free(quoted);
	Esys_Free(sig);
}

/* ---- fixture ------------------------------------------------------------- */

static int
setup(void **state)
{
	TPML_DIGEST_VALUES	 ext;
	char			 path[192], why[TPMV_MAX_WHY], hash[128];
	uint8_t			 zero[32], d[32];
	FILE			*f;
	TSS2_RC			 rc;

	(void)setenv("TSS2_LOG", "all+none", 1);
	snprintf(t.dir, sizeof(t.dir), "/tmp/wick-tpmo-XXXXXX");
	if (mkdtemp(t.dir) == NULL)
		return -1;
	if (manufacture() != 0 || start_swtpm() != 0)
		return -1;
	snprintf(path, sizeof(path), "swtpm:path=%s", t.sock);
	if ((rc = Tss2_TctiLdr_Initialize(path, &t.tcti)) != 0 ||
	    (rc = Esys_Initialize(&t.esys, t.tcti, NULL)) != 0 ||
	    (rc = create_ek()) != 0) {
		fprintf(stderr, "TPM: 0x%x\n", rc);
		return -1;
	}
	/* PCR 16 extended once, so that a quoted value is not zero. */
	memset(&ext, 0, sizeof(ext));
	ext.count = 1;
	ext.digests[0].hashAlg = TPM2_ALG_SHA256;
	if (tpmfix_sha256((const uint8_t *)"wick", 4, NULL, 0, d) != 0)
		return -1;
	memcpy(ext.digests[0].digest.sha256, d, 32);
	if (Esys_PCR_Extend(t.esys, ESYS_TR_PCR16, ESYS_TR_PASSWORD,
	    ESYS_TR_NONE, ESYS_TR_NONE, &ext) != 0)
		return -1;
	memset(zero, 0, sizeof(zero));
	if (tpmfix_sha256(zero, 32, d, 32, t.pcr16) != 0)
		return -1;
	/* The EK certificate and its CAs as swtpm_setup wrote them. */
	snprintf(path, sizeof(path), "%s/ek-rsa2048.crt", t.dir);
	if ((t.ekcert = read_der(path)) == NULL)
		return -1;
	snprintf(path, sizeof(path), "%s/ca/swtpm-localca-rootca-cert.pem",
	    t.dir);
	if ((t.root = read_pem(path)) == NULL)
		return -1;
	snprintf(path, sizeof(path), "%s/ca/issuercert.pem", t.dir);
	if ((t.issuer = read_pem(path)) == NULL)
		return -1;
	/* ca_path: one file with the root and the intermediate. */
	snprintf(path, sizeof(path), "%s/ek-ca.pem", t.dir);
	if ((f = fopen(path, "w")) == NULL ||
	    PEM_write_X509(f, t.root) != 1 ||
	    PEM_write_X509(f, t.issuer) != 1 || fclose(f) != 0)
		return -1;
	if (tpmv_config_load(path, NULL, "sha256:0,16", &t.cfg, why,
	    sizeof(why)) != 0) {
		fprintf(stderr, "config: %s\n", why);
		return -1;
	}
	snprintf(hash, sizeof(hash), "%s/hashes", t.dir);
	if (mkdir(hash, 0755) != 0 || tpmv_config_load(NULL, hash, NULL,
	    &t.cfg_hash, why, sizeof(why)) != 0)
		return -1;
	if ((t.csrkey = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256")) ==
	    NULL || tpmfix_spki(t.csrkey, &t.spki, &t.spkilen) != 0)
		return -1;
	return 0;
}

static int
teardown(void **state)
{
	char cmd[128];

	if (t.esys != NULL) {
		if (t.ek != ESYS_TR_NONE && t.ek != 0)
			(void)Esys_FlushContext(t.esys, t.ek);
		Esys_Finalize(&t.esys);
	}
	Tss2_TctiLdr_Finalize(&t.tcti);
	stop_swtpm();
	Esys_Free(t.ekpub);
	X509_free(t.ekcert);
	X509_free(t.root);
	X509_free(t.issuer);
	tpmv_config_free(t.cfg);
	tpmv_config_free(t.cfg_hash);
	EVP_PKEY_free(t.csrkey);
	OPENSSL_free(t.spki);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", t.dir);
	return system(cmd) == 0 ? 0 : -1;
}

/* ---- one attestation ----------------------------------------------------- */

struct run {
	ESYS_TR			 ak;
	TPM2B_PUBLIC		*akpub;
	struct tpmv_state	*st;
	Wick__Tpm__TpmChallenge	*ch;
	uint8_t			 qd[32];	/* H(nonce || CSR key) */
};

/* Params from the TPM's EK (and cert) and a fresh AK of kind. */
static int
start(struct run *r, const struct tpmv_config *cfg, int with_cert,
    int kind, const uint32_t *pcrs, size_t npcrs, char *why, size_t whylen)
{
	uint8_t		 ek[TPMFIX_MAX_PUBLIC], ak[TPMFIX_MAX_PUBLIC];
	uint8_t		*p;
	size_t		 ekl = 0, akl = 0, len;
	struct buf	 ch;
	int		 rc;

	memset(r, 0, sizeof(*r));
	r->ak = create_ak(kind, 0, &r->akpub);
	assert_int_equal(Tss2_MU_TPM2B_PUBLIC_Marshal(t.ekpub, ek, sizeof(ek),
	    &ekl), 0);
	assert_int_equal(Tss2_MU_TPM2B_PUBLIC_Marshal(r->akpub, ak,
	    sizeof(ak), &akl), 0);
	assert_int_equal(tpmfix_attestation(with_cert ? t.ekcert : NULL, ek,
	    ekl, ak, akl, pcrs, npcrs, &p, &len), 0);
	buf_init(&ch, TPMV_MAX_CHALLENGE);
	rc = tpmv_params(cfg, p, len, t.spki, t.spkilen, (int64_t)time(NULL),
	    &r->st, &ch, why, whylen);
	if (rc == 0) {
		assert_non_null(r->ch = wick__tpm__tpm_challenge__unpack(NULL,
		    buf_len(&ch), buf_ptr(&ch)));
		assert_int_equal(tpmfix_sha256(r->ch->nonce.data,
		    r->ch->nonce.len, t.spki, t.spkilen, r->qd), 0);
	}
	buf_cleanup(&ch);
	free(p);
	return rc;
}

static void
finish(struct run *r)
{
	if (r->ak != ESYS_TR_NONE && r->ak != 0)
		assert_int_equal(Esys_FlushContext(t.esys, r->ak),
		    TSS2_RC_SUCCESS);
	Esys_Free(r->akpub);
	tpmv_state_free(r->st);
	wick__tpm__tpm_challenge__free_unpacked(r->ch, NULL);
	memset(r, 0, sizeof(*r));
}

static void
hex(const uint8_t *p, size_t n, char *out)
{
	size_t i;

	for (i = 0; i < n; i++)
		snprintf(out + 2 * i, 3, "%02x", p[i]);
}

/* The whole exchange with an AK of kind; the selectors checked. */
static void
attest(int kind)
{
	struct run		 r;
	struct tpmv_result	 res;
	TPM2B_DIGEST		*secret = NULL;
	TPM2B_NAME		*name = NULL;
	uint8_t			*resp, ours[TPMV_NAME_LEN], md[32];
	uint8_t			*der = NULL;
	size_t			 len;
	unsigned		 mdlen;
	const uint32_t		 pcrs[] = { 7 };
	char			 why[TPMV_MAX_WHY], h[65], v[256];
	int			 n;

	if (start(&r, t.cfg, 1, kind, pcrs, 1, why, sizeof(why)) != 0)
		fail_msg("params: %s", why);
	/* The TPM names the AK as we do. */
	assert_int_equal(Esys_TR_GetName(t.esys, r.ak, &name),
	    TSS2_RC_SUCCESS);
	assert_int_equal(tpmv_name(&r.akpub->publicArea, ours), 0);
	assert_int_equal(name->size, TPMV_NAME_LEN);
	assert_memory_equal(name->name, ours, TPMV_NAME_LEN);
	Esys_Free(name);
	/* The TPM opens our software MakeCredential. */
	assert_int_equal(activate(r.ak, r.ch, 0, &secret), TSS2_RC_SUCCESS);
	assert_int_equal(secret->size, 32);
	quote(r.ak, r.ch, secret->buffer, r.qd, sizeof(r.qd), &resp, &len);
	if (tpmv_answer(r.st, resp, len, &res, why, sizeof(why)) != 0)
		fail_msg("answer: %s", why);
	/* pub_hash: SHA-256 of the certificate's SubjectPublicKeyInfo. */
	assert_true((n = i2d_PUBKEY(X509_get0_pubkey(t.ekcert), &der)) > 0);
	assert_int_equal(tpmfix_sha256(der, (size_t)n, NULL, 0, md), 0);
	OPENSSL_free(der);
	hex(md, 32, h);
	assert_string_equal(res.pub_hash, h);
	assert_int_equal(res.ek_cert_verified, 1);
	snprintf(v, sizeof(v), "pub_hash:%s", h);
	assert_true(selector_set_contains(&res.selectors, "tpm", v));
	assert_true(selector_set_contains(&res.selectors, "tpm",
	    "ek_cert:issuer:cn:swtpm-localca"));
	assert_true(selector_set_contains(&res.selectors, "tpm",
	    "manufacturer:id:00001014"));
	assert_int_equal(X509_digest(t.root, EVP_sha256(), md, &mdlen), 1);
	hex(md, 32, h);
	snprintf(v, sizeof(v), "ek_cert:ca:fingerprint:%s", h);
	assert_true(selector_set_contains(&res.selectors, "tpm", v));
	assert_int_equal(X509_digest(t.issuer, EVP_sha256(), md, &mdlen), 1);
	hex(md, 32, h);
	snprintf(v, sizeof(v), "ek_cert:ca:fingerprint:%s", h);
	assert_true(selector_set_contains(&res.selectors, "tpm", v));
	/* PCRs 0 and 7 are zero after startup; 16 was extended. */
	hex(t.pcr16, 32, h);
	snprintf(v, sizeof(v), "pcr:sha256:16:%s", h);
	assert_true(selector_set_contains(&res.selectors, "tpm", v));
	assert_true(selector_set_contains(&res.selectors, "tpm",
	    "pcr:sha256:7:"
	    "00000000000000000000000000000000"
	    "00000000000000000000000000000000"));
	assert_int_equal(res.selectors.n, 1 + 1 + 1 + 2 + 3);
	tpmv_result_cleanup(&res);
	free(resp);
	Esys_Free(secret);
	finish(&r);
}

static void
test_ecc_p256(void **state)
{
	attest(AK_P256);
}

static void
test_ecc_p384(void **state)
{
	attest(AK_P384);
}

static void
test_rsa(void **state)
{
	attest(AK_RSA);
}

/* A blob changed on the way: the TPM refuses it (TPM_RC_INTEGRITY). */
static void
test_tampered_blob(void **state)
{
	struct run		 r;
	TPM2B_DIGEST		*secret = NULL;
	char			 why[TPMV_MAX_WHY];

	assert_int_equal(start(&r, t.cfg, 1, AK_P256, NULL, 0, why,
	    sizeof(why)), 0);
	/* A format-one code: the number, whatever parameter it names. */
	assert_int_equal(activate(r.ak, r.ch, 1, &secret) & 0xbf,
	    TPM2_RC_INTEGRITY);
	assert_null(secret);
	finish(&r);
}

/* A real quote that is not bound to the CSR's key is refused. */
static void
test_quote_unbound(void **state)
{
	struct run		 r;
	struct tpmv_result	 res;
	TPM2B_DIGEST		*secret = NULL;
	uint8_t			*resp;
	size_t			 len;
	char			 why[TPMV_MAX_WHY];

	assert_int_equal(start(&r, t.cfg, 1, AK_P256, NULL, 0, why,
	    sizeof(why)), 0);
	assert_int_equal(activate(r.ak, r.ch, 0, &secret), TSS2_RC_SUCCESS);
	quote(r.ak, r.ch, secret->buffer, r.ch->nonce.data, r.ch->nonce.len,
	    &resp, &len);
	assert_int_equal(tpmv_answer(r.st, resp, len, &res, why,
	    sizeof(why)), WICK_ERR_PERM);
	assert_non_null(strstr(why, "qualifying data"));
	free(resp);
	Esys_Free(secret);
	finish(&r);
}

/*
 * No PCRs at all (neither configured nor asked): the TPM quotes an empty
 * selection, and its digest is that of nothing.  An EK trusted by its
 * hash alone, no certificate sent.
 */
static void
test_no_pcrs_by_hash(void **state)
{
	struct run		 r;
	struct tpmv_result	 res;
	TPM2B_DIGEST		*secret = NULL;
	uint8_t			*resp, *der = NULL, md[32];
	size_t			 len;
	char			 why[TPMV_MAX_WHY], h[65], path[192];
	FILE			*f;
	int			 n;

	assert_true((n = i2d_PUBKEY(X509_get0_pubkey(t.ekcert), &der)) > 0);
	assert_int_equal(tpmfix_sha256(der, (size_t)n, NULL, 0, md), 0);
	OPENSSL_free(der);
	hex(md, 32, h);
	assert_int_equal(start(&r, t.cfg_hash, 0, AK_P256, NULL, 0, why,
	    sizeof(why)), WICK_ERR_PERM);
	assert_non_null(strstr(why, "its pub_hash is not in hash_path"));
	assert_non_null(strstr(why, h));
	finish(&r);
	snprintf(path, sizeof(path), "%s/hashes/%s", t.dir, h);
	assert_non_null(f = fopen(path, "w"));
	fclose(f);
	if (start(&r, t.cfg_hash, 0, AK_P256, NULL, 0, why, sizeof(why)) != 0)
		fail_msg("params: %s", why);
	assert_int_equal(r.ch->n_pcrs, 0);
	assert_int_equal(activate(r.ak, r.ch, 0, &secret), TSS2_RC_SUCCESS);
	quote(r.ak, r.ch, secret->buffer, r.qd, sizeof(r.qd), &resp, &len);
	if (tpmv_answer(r.st, resp, len, &res, why, sizeof(why)) != 0)
		fail_msg("answer: %s", why);
	assert_string_equal(res.pub_hash, h);
	assert_int_equal(res.ek_cert_verified, 0);
	assert_int_equal(res.selectors.n, 1);
	tpmv_result_cleanup(&res);
	free(resp);
	Esys_Free(secret);
	finish(&r);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ecc_p256),
		cmocka_unit_test(test_ecc_p384),
		cmocka_unit_test(test_rsa),
		cmocka_unit_test(test_tampered_blob),
		cmocka_unit_test(test_quote_unbound),
		cmocka_unit_test(test_no_pcrs_by_hash),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
