/*
 * test_na_tpm.c: the agent's TPM attestation steps against a real
 * software TPM.
 *
 * ctest runs this under tests/integration/swtpm.py, which starts swtpm
 * on a copy of a manufactured TPM (fixture A) and passes its TCTI in
 * WICK_TEST_TCTI and its directory (with the EK certificate swtpm_setup
 * wrote) in WICK_TEST_TPM_DIR.  Without them the test fails: a missing
 * TPM is not a skip.  TSS2_LOG=all+none (set by swtpm.py) keeps ESYS
 * from printing the TPM errors that some tests cause on purpose
 * (specs/tpm.md P8).
 *
 * Every test starts with no transient object or session in the TPM and
 * checks that none is left when it ends (P4: swtpm has no resource
 * manager, so leftovers would show).  The last test removes the EK
 * certificate from NV.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <tss2/tss2_mu.h>

#include "buf.h"
#include "encode.h"
#include "na_tpm.h"
#include "na_tpm_int.h"
#include "pkey.h"
#include "helpers/tpmtest.h"

#define EK_ATTRS	(TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT | \
	TPMA_OBJECT_SENSITIVEDATAORIGIN | TPMA_OBJECT_ADMINWITHPOLICY | \
	TPMA_OBJECT_RESTRICTED | TPMA_OBJECT_DECRYPT)
#define AK_ATTRS	(TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT | \
	TPMA_OBJECT_SENSITIVEDATAORIGIN | TPMA_OBJECT_USERWITHAUTH | \
	TPMA_OBJECT_NODA | TPMA_OBJECT_RESTRICTED | TPMA_OBJECT_SIGN_ENCRYPT)

static const char	*tcti;
static X509		*ek_cert_file;	/* swtpm_setup's copy */
static uint8_t		*ek_cert_der;
static size_t		 ek_cert_der_len;

/* A challenge: na_tpm_answer()'s arguments. */
struct chal {
	const uint8_t	*credential_blob;
	size_t		 credential_blob_len;
	const uint8_t	*encrypted_secret;
	size_t		 encrypted_secret_len;
	const uint8_t	*nonce;
	size_t		 nonce_len;
	const uint32_t	*pcrs;
	size_t		 npcrs;
	const uint8_t	*csr_spki;
	size_t		 csr_spki_len;
};

/* One attestation's worth of state. */
struct sess {
	struct na_tpm		*t;
	struct buf		 ek_cert, ek_pub, ak_pub, blob, enc, spki;
	struct na_tpm_answer	 resp;
	struct chal		 c;
	uint8_t			 cred[32];
	uint8_t			 nonce[32];
	uint32_t		 pcrs[NA_TPM_MAX_PCRS];
	char			 why[NA_TPM_MAX_WHY];
};

static void
leftovers(uint32_t *objects, uint32_t *sessions, int flush)
{
	struct tpmtest	t;
	char		why[NA_TPM_MAX_WHY];

	assert_int_equal(tpmtest_open(tcti, &t, why, sizeof(why)), 0);
	assert_int_equal(tpmtest_leftovers(t.esys, flush, objects, sessions,
	    why, sizeof(why)), 0);
	tpmtest_close(&t);
}

static int
setup(void **state)
{
	uint32_t o, s;

	leftovers(&o, &s, 1);
	return 0;
}

static int
teardown(void **state)
{
	uint32_t o, s;

	leftovers(&o, &s, 0);
	if (o != 0 || s != 0)
		fail_msg("%u transient objects and %u sessions left", o, s);
	return 0;
}

static void
sess_init(struct sess *s)
{
	EVP_PKEY *k = NULL;

	memset(s, 0, sizeof(*s));
	buf_init(&s->ek_cert, 0);
	buf_init(&s->ek_pub, 0);
	buf_init(&s->ak_pub, 0);
	buf_init(&s->blob, 0);
	buf_init(&s->enc, 0);
	buf_init(&s->spki, 0);
	na_tpm_answer_init(&s->resp);
	assert_int_equal(RAND_bytes(s->cred, sizeof(s->cred)), 1);
	assert_int_equal(RAND_bytes(s->nonce, sizeof(s->nonce)), 1);
	assert_int_equal(pkey_generate(PKEY_EC_P256, &k), 0);
	assert_int_equal(pkey_public_der(k, &s->spki), 0);
	EVP_PKEY_free(k);
}

static void
sess_cleanup(struct sess *s)
{
	na_tpm_close(s->t);
	s->t = NULL;
	buf_cleanup(&s->ek_cert);
	buf_cleanup(&s->ek_pub);
	buf_cleanup(&s->ak_pub);
	buf_cleanup(&s->blob);
	buf_cleanup(&s->enc);
	buf_cleanup(&s->spki);
	na_tpm_answer_cleanup(&s->resp);
}

/* Open, identity, and a TPM-made credential to the AK; pcrs as given. */
static void
sess_start(struct sess *s, unsigned flags, const uint32_t *pcrs,
    size_t npcrs)
{
	assert_int_equal(na_tpm_open(tcti, &s->t, s->why, sizeof(s->why)),
	    0);
	if (na_tpm_identity_flags(s->t, flags, &s->ek_cert, &s->ek_pub,
	    &s->ak_pub, s->why, sizeof(s->why)) != 0)
		fail_msg("identity: %s", s->why);
	if (tpmtest_make_credential(s->t, buf_ptr(&s->ek_pub),
	    buf_len(&s->ek_pub), s->cred, sizeof(s->cred), &s->blob, &s->enc,
	    s->why, sizeof(s->why)) != 0)
		fail_msg("MakeCredential: %s", s->why);
	if (npcrs > 0)
		memcpy(s->pcrs, pcrs, npcrs * sizeof(*pcrs));
	s->c.credential_blob = buf_ptr(&s->blob);
	s->c.credential_blob_len = buf_len(&s->blob);
	s->c.encrypted_secret = buf_ptr(&s->enc);
	s->c.encrypted_secret_len = buf_len(&s->enc);
	s->c.nonce = s->nonce;
	s->c.nonce_len = sizeof(s->nonce);
	s->c.pcrs = s->pcrs;
	s->c.npcrs = npcrs;
	s->c.csr_spki = buf_ptr(&s->spki);
	s->c.csr_spki_len = buf_len(&s->spki);
}

static int
answer(struct sess *s)
{
	s->why[0] = '\0';
	return na_tpm_answer(s->t, s->c.credential_blob,
	    s->c.credential_blob_len, s->c.encrypted_secret,
	    s->c.encrypted_secret_len, s->c.nonce, s->c.nonce_len, s->c.pcrs,
	    s->c.npcrs, s->c.csr_spki, s->c.csr_spki_len, &s->resp, s->why,
	    sizeof(s->why));
}

static void
unmarshal_pub(const struct buf *b, TPM2B_PUBLIC *pub)
{
	size_t off = 0;

	memset(pub, 0, sizeof(*pub));
	assert_int_equal(Tss2_MU_TPM2B_PUBLIC_Unmarshal(buf_ptr(b),
	    buf_len(b), &off, pub), TSS2_RC_SUCCESS);
	assert_int_equal(off, buf_len(b));
}

/* The SHA-256 of the DER SPKI of a certificate's key, as openssl does. */
static void
cert_key_hash(X509 *x, char hex[65])
{
	uint8_t	*der = NULL;
	int	 n;

	n = i2d_PUBKEY(X509_get0_pubkey(x), &der);
	assert_true(n > 0);
	assert_int_equal(sha256_hex(der, (size_t)n, hex), 0);
	OPENSSL_free(der);
}

/* ---- opening ------------------------------------------------------------- */

static void
test_open_errors(void **state)
{
	struct na_tpm	*t = NULL;
	char		 why[NA_TPM_MAX_WHY];

	why[0] = '\0';
	assert_int_equal(na_tpm_open("swtpm:path=/nonexistent/tpm.sock", &t,
	    why, sizeof(why)), WICK_ERR_UNAVAILABLE);
	assert_null(t);
	assert_non_null(strstr(why, "cannot connect (/nonexistent/tpm.sock: "
	    "No such file or directory): tcti:IO failure (0xa000a)"));
	assert_int_equal(na_tpm_open("nosuchtcti", &t, why, sizeof(why)),
	    WICK_ERR_UNAVAILABLE);
	assert_null(t);
	assert_int_equal(na_tpm_open("", &t, why, sizeof(why)),
	    WICK_ERR_INVALID);
	assert_int_equal(na_tpm_open("swtpm:path=/x\n", &t, why, sizeof(why)),
	    WICK_ERR_INVALID);
	na_tpm_close(NULL);
}

/* ---- identity ------------------------------------------------------------ */

static void
test_identity(void **state)
{
	struct sess	 s;
	TPM2B_PUBLIC	 ek, ak;
	EVP_PKEY	*k = NULL;
	OSSL_PARAM_BLD	*bld;
	OSSL_PARAM	*params;
	EVP_PKEY_CTX	*ctx;
	BIGNUM		*n, *e;

	sess_init(&s);
	assert_int_equal(na_tpm_open(tcti, &s.t, s.why, sizeof(s.why)), 0);
	/* Nothing to answer with yet. */
	s.c.nonce_len = 32;
	assert_int_equal(answer(&s), WICK_ERR_STATE);
	assert_int_equal(na_tpm_identity(s.t, &s.ek_cert, &s.ek_pub,
	    &s.ak_pub, s.why, sizeof(s.why)), 0);

	/* The certificate, exactly as manufactured (no NV padding). */
	assert_int_equal(buf_len(&s.ek_cert), ek_cert_der_len);
	assert_memory_equal(buf_ptr(&s.ek_cert), ek_cert_der,
	    ek_cert_der_len);

	/* The EK: template L-1, and the certificate's key. */
	unmarshal_pub(&s.ek_pub, &ek);
	assert_int_equal(ek.publicArea.type, TPM2_ALG_RSA);
	assert_int_equal(ek.publicArea.nameAlg, TPM2_ALG_SHA256);
	assert_int_equal(ek.publicArea.objectAttributes, EK_ATTRS);
	assert_int_equal(ek.publicArea.parameters.rsaDetail.keyBits, 2048);
	assert_int_equal(ek.publicArea.parameters.rsaDetail.symmetric.algorithm,
	    TPM2_ALG_AES);
	assert_int_equal(ek.publicArea.unique.rsa.size, 256);
	n = BN_bin2bn(ek.publicArea.unique.rsa.buffer, 256, NULL);
	e = BN_new();
	assert_non_null(n);
	assert_non_null(e);
	assert_int_equal(BN_set_word(e, 65537), 1);
	bld = OSSL_PARAM_BLD_new();
	assert_int_equal(OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, n),
	    1);
	assert_int_equal(OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, e),
	    1);
	params = OSSL_PARAM_BLD_to_param(bld);
	ctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL);
	assert_int_equal(EVP_PKEY_fromdata_init(ctx), 1);
	assert_int_equal(EVP_PKEY_fromdata(ctx, &k, EVP_PKEY_PUBLIC_KEY,
	    params), 1);
	assert_int_equal(EVP_PKEY_eq(X509_get0_pubkey(ek_cert_file), k), 1);
	EVP_PKEY_free(k);
	EVP_PKEY_CTX_free(ctx);
	OSSL_PARAM_free(params);
	OSSL_PARAM_BLD_free(bld);
	BN_free(n);
	BN_free(e);

	/* The AK: ECC P-256, ECDSA-SHA256, restricted signing. */
	unmarshal_pub(&s.ak_pub, &ak);
	assert_int_equal(ak.publicArea.type, TPM2_ALG_ECC);
	assert_int_equal(ak.publicArea.nameAlg, TPM2_ALG_SHA256);
	assert_int_equal(ak.publicArea.objectAttributes, AK_ATTRS);
	assert_int_equal(ak.publicArea.parameters.eccDetail.curveID,
	    TPM2_ECC_NIST_P256);
	assert_int_equal(ak.publicArea.parameters.eccDetail.scheme.scheme,
	    TPM2_ALG_ECDSA);
	assert_int_equal(
	    ak.publicArea.parameters.eccDetail.scheme.details.ecdsa.hashAlg,
	    TPM2_ALG_SHA256);
	assert_int_equal(ak.publicArea.unique.ecc.x.size, 32);

	/* Once per session. */
	assert_int_equal(na_tpm_identity(s.t, &s.ek_cert, &s.ek_pub,
	    &s.ak_pub, s.why, sizeof(s.why)), WICK_ERR_STATE);
	assert_int_equal(buf_len(&s.ak_pub), 0);
	sess_cleanup(&s);
}

static void
test_identity_unrestricted(void **state)
{
	struct sess	s;
	TPM2B_PUBLIC	ak;

	sess_init(&s);
	assert_int_equal(na_tpm_open(tcti, &s.t, s.why, sizeof(s.why)), 0);
	assert_int_equal(na_tpm_identity_flags(s.t, 0x80, &s.ek_cert, &s.ek_pub,
	    &s.ak_pub, s.why, sizeof(s.why)), WICK_ERR_INVALID);
	assert_int_equal(na_tpm_identity_flags(s.t, NA_TPM_AK_UNRESTRICTED,
	    &s.ek_cert, &s.ek_pub, &s.ak_pub, s.why, sizeof(s.why)), 0);
	unmarshal_pub(&s.ak_pub, &ak);
	assert_int_equal(ak.publicArea.objectAttributes,
	    AK_ATTRS & ~TPMA_OBJECT_RESTRICTED);
	sess_cleanup(&s);
}

static void
test_endorsement_only(void **state)
{
	struct sess	s;
	char		h1[NA_TPM_PUB_HASH_LEN + 1];
	char		h2[NA_TPM_PUB_HASH_LEN + 1];

	sess_init(&s);
	assert_int_equal(na_tpm_open(tcti, &s.t, s.why, sizeof(s.why)), 0);
	assert_int_equal(na_tpm_endorsement(s.t, &s.ek_cert, &s.ek_pub, s.why,
	    sizeof(s.why)), 0);
	assert_int_equal(buf_len(&s.ek_cert), ek_cert_der_len);
	assert_int_equal(na_tpm_pub_hash(buf_ptr(&s.ek_pub),
	    buf_len(&s.ek_pub), h1), 0);
	cert_key_hash(ek_cert_file, h2);
	assert_string_equal(h1, h2);
	/* Not both in one session. */
	assert_int_equal(na_tpm_identity(s.t, &s.ek_cert, &s.ek_pub,
	    &s.ak_pub, s.why, sizeof(s.why)), WICK_ERR_STATE);
	sess_cleanup(&s);
}

/* ---- pub hash ------------------------------------------------------------ */

static void
test_pub_hash(void **state)
{
	struct sess	 s;
	char		 got[NA_TPM_PUB_HASH_LEN + 1];
	char		 want[NA_TPM_PUB_HASH_LEN + 1];
	uint8_t		*p;
	size_t		 n;

	sess_init(&s);
	assert_int_equal(na_tpm_open(tcti, &s.t, s.why, sizeof(s.why)), 0);
	assert_int_equal(na_tpm_identity(s.t, &s.ek_cert, &s.ek_pub,
	    &s.ak_pub, s.why, sizeof(s.why)), 0);
	assert_int_equal(na_tpm_pub_hash(buf_ptr(&s.ek_pub),
	    buf_len(&s.ek_pub), got), 0);
	cert_key_hash(ek_cert_file, want);
	assert_string_equal(got, want);
	assert_int_equal(strlen(got), NA_TPM_PUB_HASH_LEN);

	/* Only an exact RSA TPM2B_PUBLIC. */
	n = buf_len(&s.ek_pub);
	assert_int_equal(na_tpm_pub_hash(buf_ptr(&s.ek_pub), n - 1, got),
	    WICK_ERR_INVALID);
	assert_string_equal(got, "");
	p = malloc(n + 1);
	assert_non_null(p);
	memcpy(p, buf_ptr(&s.ek_pub), n);
	p[n] = 0;
	assert_int_equal(na_tpm_pub_hash(p, n + 1, got), WICK_ERR_INVALID);
	assert_int_equal(na_tpm_pub_hash(p, 0, got), WICK_ERR_INVALID);
	free(p);
	assert_int_equal(na_tpm_pub_hash(buf_ptr(&s.ak_pub),
	    buf_len(&s.ak_pub), got), WICK_ERR_UNSUPPORTED);
	sess_cleanup(&s);
}

/* ---- answer -------------------------------------------------------------- */

/* The AK's public key for OpenSSL, from its TPM2B_PUBLIC. */
static EVP_PKEY *
ak_pkey(const struct buf *ak_pub)
{
	TPM2B_PUBLIC	 ak;
	OSSL_PARAM_BLD	*bld;
	OSSL_PARAM	*params;
	EVP_PKEY_CTX	*ctx;
	EVP_PKEY	*k = NULL;
	uint8_t		 pt[65];

	unmarshal_pub(ak_pub, &ak);
	pt[0] = 0x04;
	memcpy(pt + 1, ak.publicArea.unique.ecc.x.buffer, 32);
	memcpy(pt + 33, ak.publicArea.unique.ecc.y.buffer, 32);
	bld = OSSL_PARAM_BLD_new();
	assert_int_equal(OSSL_PARAM_BLD_push_utf8_string(bld,
	    OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0), 1);
	assert_int_equal(OSSL_PARAM_BLD_push_octet_string(bld,
	    OSSL_PKEY_PARAM_PUB_KEY, pt, sizeof(pt)), 1);
	params = OSSL_PARAM_BLD_to_param(bld);
	ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
	assert_int_equal(EVP_PKEY_fromdata_init(ctx), 1);
	assert_int_equal(EVP_PKEY_fromdata(ctx, &k, EVP_PKEY_PUBLIC_KEY,
	    params), 1);
	EVP_PKEY_CTX_free(ctx);
	OSSL_PARAM_free(params);
	OSSL_PARAM_BLD_free(bld);
	return k;
}

/*
 * Check a response as the server will: the secret, the quote's
 * signature by the AK (OpenSSL), magic, type, extraData =
 * SHA-256(nonce || SPKI), the selection, the PCR digest; and the PCR
 * values against the TPM's.
 */
static void
check_response(struct sess *s, const uint8_t want_pcrs[][32])
{
	TPM2B_ATTEST	 q;
	TPMT_SIGNATURE	 sig;
	TPMS_ATTEST	 a;
	ECDSA_SIG	*es;
	EVP_PKEY	*k;
	EVP_MD_CTX	*md;
	BIGNUM		*r, *sv;
	uint8_t		*der = NULL, qd[32], d[32];
	unsigned int	 n;
	size_t		 off, i;
	int		 dlen;

	assert_int_equal(buf_len(&s->resp.secret), sizeof(s->cred));
	assert_memory_equal(buf_ptr(&s->resp.secret), s->cred,
	    sizeof(s->cred));
	assert_true(s->resp.secret.secret);

	memset(&q, 0, sizeof(q));
	off = 0;
	assert_int_equal(Tss2_MU_TPM2B_ATTEST_Unmarshal(buf_ptr(&s->resp.quote),
	    buf_len(&s->resp.quote), &off, &q), TSS2_RC_SUCCESS);
	assert_int_equal(off, buf_len(&s->resp.quote));
	memset(&sig, 0, sizeof(sig));
	off = 0;
	assert_int_equal(Tss2_MU_TPMT_SIGNATURE_Unmarshal(
	    buf_ptr(&s->resp.signature), buf_len(&s->resp.signature), &off,
	    &sig), TSS2_RC_SUCCESS);
	assert_int_equal(off, buf_len(&s->resp.signature));
	assert_int_equal(sig.sigAlg, TPM2_ALG_ECDSA);
	assert_int_equal(sig.signature.ecdsa.hash, TPM2_ALG_SHA256);

	/* The signature, with OpenSSL alone. */
	r = BN_bin2bn(sig.signature.ecdsa.signatureR.buffer,
	    sig.signature.ecdsa.signatureR.size, NULL);
	sv = BN_bin2bn(sig.signature.ecdsa.signatureS.buffer,
	    sig.signature.ecdsa.signatureS.size, NULL);
	es = ECDSA_SIG_new();
	assert_int_equal(ECDSA_SIG_set0(es, r, sv), 1);
	dlen = i2d_ECDSA_SIG(es, &der);
	assert_true(dlen > 0);
	k = ak_pkey(&s->ak_pub);
	md = EVP_MD_CTX_new();
	assert_int_equal(EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL,
	    k), 1);
	assert_int_equal(EVP_DigestVerify(md, der, (size_t)dlen,
	    q.attestationData, q.size), 1);
	/* And not over other bytes. */
	q.attestationData[q.size - 1] ^= 1;
	assert_int_equal(EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL,
	    k), 1);
	assert_int_not_equal(EVP_DigestVerify(md, der, (size_t)dlen,
	    q.attestationData, q.size), 1);
	q.attestationData[q.size - 1] ^= 1;
	EVP_MD_CTX_free(md);
	EVP_PKEY_free(k);
	OPENSSL_free(der);
	ECDSA_SIG_free(es);

	memset(&a, 0, sizeof(a));
	off = 0;
	assert_int_equal(Tss2_MU_TPMS_ATTEST_Unmarshal(q.attestationData,
	    q.size, &off, &a), TSS2_RC_SUCCESS);
	assert_int_equal(a.magic, TPM2_GENERATED_VALUE);
	assert_int_equal(a.type, TPM2_ST_ATTEST_QUOTE);

	md = EVP_MD_CTX_new();
	assert_int_equal(EVP_DigestInit_ex(md, EVP_sha256(), NULL), 1);
	assert_int_equal(EVP_DigestUpdate(md, s->nonce, sizeof(s->nonce)), 1);
	assert_int_equal(EVP_DigestUpdate(md, buf_ptr(&s->spki),
	    buf_len(&s->spki)), 1);
	assert_int_equal(EVP_DigestFinal_ex(md, qd, &n), 1);
	EVP_MD_CTX_free(md);
	assert_int_equal(a.extraData.size, 32);
	assert_memory_equal(a.extraData.buffer, qd, 32);

	assert_int_equal(a.attested.quote.pcrSelect.count, 1);
	assert_int_equal(a.attested.quote.pcrSelect.pcrSelections[0].hash,
	    TPM2_ALG_SHA256);
	for (i = 0; i < NA_TPM_MAX_PCRS; i++) {
		size_t	j;
		int	want = 0, got;

		for (j = 0; j < s->c.npcrs; j++)
			want |= s->c.pcrs[j] == i;
		got = (a.attested.quote.pcrSelect.pcrSelections[0].
		    pcrSelect[i / 8] >> (i % 8)) & 1;
		assert_int_equal(got, want);
	}
	assert_int_equal(s->resp.npcrs, s->c.npcrs);
	for (i = 0; i < s->c.npcrs; i++)
		assert_memory_equal(s->resp.pcr_values[i],
		    want_pcrs[s->c.pcrs[i]], 32);
	/* The values are contiguous: hash them as one string. */
	assert_int_equal(EVP_Digest(s->resp.pcr_values, 32 * s->resp.npcrs,
	    d, &n, EVP_sha256(), NULL), 1);
	assert_int_equal(a.attested.quote.pcrDigest.size, 32);
	assert_memory_equal(a.attested.quote.pcrDigest.buffer, d, 32);
}

static void
read_pcrs(struct sess *s, uint8_t vals[NA_TPM_MAX_PCRS][32])
{
	uint32_t i;

	for (i = 0; i < NA_TPM_MAX_PCRS; i++)
		assert_int_equal(tpmtest_pcr_read(na_tpm_esys(s->t), i,
		    vals[i], s->why, sizeof(s->why)), 0);
}

static void
test_answer(void **state)
{
	static const uint32_t	 pcrs[] = { 0, 1, 2, 3, 4, 5, 6, 7, 16 };
	uint8_t			 vals[NA_TPM_MAX_PCRS][32], d[32];
	struct sess		 s;

	sess_init(&s);
	sess_start(&s, 0, pcrs, sizeof(pcrs) / sizeof(pcrs[0]));
	/* A PCR that is not zero: the values must come back in place. */
	memset(d, 0xab, sizeof(d));
	assert_int_equal(tpmtest_pcr_extend(na_tpm_esys(s.t), 16, d, s.why,
	    sizeof(s.why)), 0);
	read_pcrs(&s, vals);
	assert_int_not_equal(vals[16][0] | vals[16][1] | vals[16][31], 0);
	if (answer(&s) != 0)
		fail_msg("answer: %s", s.why);
	check_response(&s, (const uint8_t (*)[32])vals);
	/* Again: a second quote in the same session. */
	assert_int_equal(answer(&s), 0);
	check_response(&s, (const uint8_t (*)[32])vals);
	sess_cleanup(&s);
}

static void
test_answer_all_pcrs(void **state)
{
	uint32_t	pcrs[NA_TPM_MAX_PCRS], i;
	uint8_t		vals[NA_TPM_MAX_PCRS][32];
	struct sess	s;

	for (i = 0; i < NA_TPM_MAX_PCRS; i++)
		pcrs[i] = i;
	sess_init(&s);
	sess_start(&s, 0, pcrs, NA_TPM_MAX_PCRS);
	read_pcrs(&s, vals);
	if (answer(&s) != 0)
		fail_msg("answer: %s", s.why);
	check_response(&s, (const uint8_t (*)[32])vals);
	sess_cleanup(&s);
}

/* No PCRs: the quote still binds nonce and CSR key; digest of nothing. */
static void
test_answer_no_pcrs(void **state)
{
	static const uint8_t	empty[32] = {
		0xe3, 0xb0, 0xc4, 0x42, 0x98, 0xfc, 0x1c, 0x14,
		0x9a, 0xfb, 0xf4, 0xc8, 0x99, 0x6f, 0xb9, 0x24,
		0x27, 0xae, 0x41, 0xe4, 0x64, 0x9b, 0x93, 0x4c,
		0xa4, 0x95, 0x99, 0x1b, 0x78, 0x52, 0xb8, 0x55,
	};
	uint8_t			vals[NA_TPM_MAX_PCRS][32];
	struct sess		s;
	TPM2B_ATTEST		q;
	TPMS_ATTEST		a;
	size_t			off = 0;

	sess_init(&s);
	sess_start(&s, 0, NULL, 0);
	memset(vals, 0, sizeof(vals));
	if (answer(&s) != 0)
		fail_msg("answer: %s", s.why);
	check_response(&s, (const uint8_t (*)[32])vals);
	assert_int_equal(s.resp.npcrs, 0);
	memset(&q, 0, sizeof(q));
	assert_int_equal(Tss2_MU_TPM2B_ATTEST_Unmarshal(buf_ptr(&s.resp.quote),
	    buf_len(&s.resp.quote), &off, &q), 0);
	off = 0;
	assert_int_equal(Tss2_MU_TPMS_ATTEST_Unmarshal(q.attestationData,
	    q.size, &off, &a), 0);
	assert_int_equal(a.attested.quote.pcrSelect.pcrSelections[0].
	    sizeofSelect, 3);
	assert_memory_equal(a.attested.quote.pcrDigest.buffer, empty, 32);
	sess_cleanup(&s);
}

/* The AK without restricted still quotes: only the server refuses it. */
static void
test_answer_unrestricted(void **state)
{
	static const uint32_t	pcrs[] = { 0 };
	uint8_t			vals[NA_TPM_MAX_PCRS][32];
	struct sess		s;

	sess_init(&s);
	sess_start(&s, NA_TPM_AK_UNRESTRICTED, pcrs, 1);
	read_pcrs(&s, vals);
	if (answer(&s) != 0)
		fail_msg("answer: %s", s.why);
	check_response(&s, (const uint8_t (*)[32])vals);
	sess_cleanup(&s);
}

static void
assert_empty_response(const struct sess *s)
{
	assert_int_equal(buf_len(&s->resp.secret), 0);
	assert_int_equal(buf_len(&s->resp.quote), 0);
	assert_int_equal(buf_len(&s->resp.signature), 0);
	assert_int_equal(s->resp.npcrs, 0);
}

static void
test_tampered(void **state)
{
	static const uint32_t	 pcrs[] = { 0, 16 };
	uint8_t			 vals[NA_TPM_MAX_PCRS][32], *p;
	struct sess		 s;
	size_t			 n;

	sess_init(&s);
	sess_start(&s, 0, pcrs, 2);
	read_pcrs(&s, vals);

	/* One bit of the encrypted identity: the outer HMAC fails. */
	n = buf_len(&s.blob);
	p = malloc(n);
	assert_non_null(p);
	memcpy(p, buf_ptr(&s.blob), n);
	p[n - 1] ^= 0x01;
	s.c.credential_blob = p;
	s.why[0] = '\0';
	assert_int_equal(answer(&s), WICK_ERR_PROTOCOL);
	assert_non_null(strstr(s.why, "ActivateCredential"));
	assert_non_null(strstr(s.why, "integrity check failed"));
	assert_non_null(strstr(s.why, "0x1df"));
	assert_empty_response(&s);
	/* The HMAC itself. */
	memcpy(p, buf_ptr(&s.blob), n);
	p[4] ^= 0x80;
	assert_int_equal(answer(&s), WICK_ERR_PROTOCOL);
	free(p);
	s.c.credential_blob = buf_ptr(&s.blob);

	/* The seed, encrypted to the EK. */
	n = buf_len(&s.enc);
	p = malloc(n);
	assert_non_null(p);
	memcpy(p, buf_ptr(&s.enc), n);
	p[n / 2] ^= 0x01;
	s.c.encrypted_secret = p;
	/*
	 * libtpms answers TPM_RC_FAILURE (0x101) for a seed that does not
	 * decrypt, though the TPM keeps working (other TPMs may say
	 * TPM_RC_VALUE).  Either way it is the challenge's fault.
	 */
	assert_int_equal(answer(&s), WICK_ERR_PROTOCOL);
	assert_non_null(strstr(s.why, "ActivateCredential"));
	assert_empty_response(&s);
	free(p);
	s.c.encrypted_secret = buf_ptr(&s.enc);

	/* The session is still good, and no policy session leaked. */
	if (answer(&s) != 0)
		fail_msg("answer: %s", s.why);
	check_response(&s, (const uint8_t (*)[32])vals);
	sess_cleanup(&s);
}

static void
test_malformed(void **state)
{
	static const uint32_t	 pcrs[] = { 1, 2 };
	uint32_t		 bad[NA_TPM_MAX_PCRS + 1];
	uint8_t			*p;
	struct sess		 s;
	size_t			 n, i;

	sess_init(&s);
	sess_start(&s, 0, pcrs, 2);
	n = buf_len(&s.blob);
	p = calloc(1, NA_TPM_MAX_BLOB + 1);
	assert_non_null(p);
	memcpy(p, buf_ptr(&s.blob), n);
	s.c.credential_blob = p;

	/* Not exactly one TPM2B_ID_OBJECT. */
	s.c.credential_blob_len = n - 1;
	assert_int_equal(answer(&s), WICK_ERR_INVALID);
	assert_non_null(strstr(s.why, "credential blob"));
	s.c.credential_blob_len = n + 1;
	assert_int_equal(answer(&s), WICK_ERR_INVALID);
	s.c.credential_blob_len = 2;
	assert_int_equal(answer(&s), WICK_ERR_INVALID);
	/* A size field larger than the structure can hold. */
	p[0] = 0xff;
	p[1] = 0xff;
	s.c.credential_blob_len = NA_TPM_MAX_BLOB;
	assert_int_equal(answer(&s), WICK_ERR_INVALID);
	s.c.credential_blob_len = NA_TPM_MAX_BLOB + 1;
	assert_int_equal(answer(&s), WICK_ERR_LIMIT);
	s.c.credential_blob_len = 0;
	assert_int_equal(answer(&s), WICK_ERR_INVALID);
	memcpy(p, buf_ptr(&s.blob), n);
	s.c.credential_blob_len = n;

	s.c.encrypted_secret_len--;
	assert_int_equal(answer(&s), WICK_ERR_INVALID);
	assert_non_null(strstr(s.why, "encrypted secret"));
	s.c.encrypted_secret_len++;

	/* Nonce, CSR key, PCRs. */
	s.c.nonce_len = NA_TPM_MIN_NONCE - 1;
	assert_int_equal(answer(&s), WICK_ERR_INVALID);
	s.c.nonce_len = NA_TPM_MAX_NONCE + 1;
	assert_int_equal(answer(&s), WICK_ERR_INVALID);
	s.c.nonce_len = sizeof(s.nonce);
	s.c.csr_spki_len = NA_TPM_MAX_SPKI + 1;
	assert_int_equal(answer(&s), WICK_ERR_LIMIT);
	s.c.csr_spki_len = buf_len(&s.spki);
	s.c.pcrs = bad;
	bad[0] = 2;
	bad[1] = 1;
	s.c.npcrs = 2;
	assert_int_equal(answer(&s), WICK_ERR_INVALID);
	assert_non_null(strstr(s.why, "ascending"));
	bad[1] = 2;
	assert_int_equal(answer(&s), WICK_ERR_INVALID);
	bad[1] = NA_TPM_MAX_PCRS;
	assert_int_equal(answer(&s), WICK_ERR_INVALID);
	for (i = 0; i <= NA_TPM_MAX_PCRS; i++)
		bad[i] = (uint32_t)i;
	s.c.npcrs = NA_TPM_MAX_PCRS + 1;
	assert_int_equal(answer(&s), WICK_ERR_LIMIT);
	assert_empty_response(&s);
	free(p);
	sess_cleanup(&s);
}

/* Without a certificate in NV: an empty ek_cert, the same EK. */
static void
test_no_ek_cert(void **state)
{
	struct tpmtest	t;
	struct sess	s;
	char		h1[NA_TPM_PUB_HASH_LEN + 1];
	char		h2[NA_TPM_PUB_HASH_LEN + 1];

	assert_int_equal(tpmtest_open(tcti, &t, s.why, sizeof(s.why)), 0);
	if (tpmtest_nv_undefine(t.esys, NA_TPM_EK_CERT_NV, s.why,
	    sizeof(s.why)) != 0)
		fail_msg("%s", s.why);
	tpmtest_close(&t);
	sess_init(&s);
	assert_int_equal(na_tpm_open(tcti, &s.t, s.why, sizeof(s.why)), 0);
	if (na_tpm_identity(s.t, &s.ek_cert, &s.ek_pub, &s.ak_pub, s.why,
	    sizeof(s.why)) != 0)
		fail_msg("identity: %s", s.why);
	assert_int_equal(buf_len(&s.ek_cert), 0);
	assert_int_equal(na_tpm_pub_hash(buf_ptr(&s.ek_pub),
	    buf_len(&s.ek_pub), h1), 0);
	cert_key_hash(ek_cert_file, h2);
	assert_string_equal(h1, h2);
	sess_cleanup(&s);
}

static void
load_ek_cert(void)
{
	const char	*dir = getenv(TPMTEST_ENV_DIR);
	const uint8_t	*q;
	char		 path[4096];
	FILE		*f;
	long		 n;

	snprintf(path, sizeof(path), "%s/ek-rsa2048.crt", dir);
	if ((f = fopen(path, "rb")) == NULL) {
		fprintf(stderr, "test_na_tpm: cannot open %s\n", path);
		exit(1);
	}
	if (fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) <= 0 ||
	    fseek(f, 0, SEEK_SET) != 0 ||
	    (ek_cert_der = malloc((size_t)n)) == NULL ||
	    fread(ek_cert_der, 1, (size_t)n, f) != (size_t)n) {
		fprintf(stderr, "test_na_tpm: cannot read %s\n", path);
		exit(1);
	}
	fclose(f);
	ek_cert_der_len = (size_t)n;
	q = ek_cert_der;
	if ((ek_cert_file = d2i_X509(NULL, &q, n)) == NULL) {
		fprintf(stderr, "test_na_tpm: %s: not a certificate\n", path);
		exit(1);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_open_errors),
		cmocka_unit_test_setup_teardown(test_identity, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_identity_unrestricted,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_endorsement_only, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_pub_hash, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_answer, setup, teardown),
		cmocka_unit_test_setup_teardown(test_answer_all_pcrs, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_answer_no_pcrs, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_answer_unrestricted,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_tampered, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_malformed, setup,
		    teardown),
		/* Last: it removes the EK certificate from this TPM. */
		cmocka_unit_test_setup_teardown(test_no_ek_cert, setup,
		    teardown),
	};
	int rc;

	tcti = getenv(TPMTEST_ENV_TCTI);
	if (tcti == NULL || getenv(TPMTEST_ENV_DIR) == NULL) {
		fprintf(stderr, "test_na_tpm: needs a TPM: run it as "
		    "'swtpm.py run A -- test_na_tpm' (sets %s and %s)\n",
		    TPMTEST_ENV_TCTI, TPMTEST_ENV_DIR);
		return 1;
	}
	load_ek_cert();
	rc = cmocka_run_group_tests(tests, NULL, NULL);
	X509_free(ek_cert_file);
	free(ek_cert_der);
	return rc;
}
