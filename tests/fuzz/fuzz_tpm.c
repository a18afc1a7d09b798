/*
 * fuzz_tpm.c: what an agent sends in TPM node attestation.
 *
 * The first byte picks the target: even, the rest is a TpmAttestation
 * for tpmv_params(); odd, the rest is a TpmChallengeResponse for
 * tpmv_answer(), to the challenge of a fixed good TpmAttestation.
 * The fixed EK's hash is allow-listed and the challenge's secret and
 * nonce are fixed, so that inputs reach past the trust and secret
 * checks; a response whose signature is empty is signed here with the
 * fixed AK, so that mutated quotes reach past the signature too.
 *
 * Whatever comes in, the calls keep their contracts: a state and a
 * challenge on success and neither otherwise, a reason for every
 * refusal, selectors only for an accepted node.
 *
 * Seeds: WICK_FUZZ_TPM_SEEDS=DIR makes the first call write them into
 * DIR (corpus/tpm was made that way); WICK_FUZZ_TPM_VERBOSE=1 prints
 * each verdict.  The keys below are test keys.
 */
#include <sys/stat.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <tss2/tss2_mu.h>

#include "buf.h"
#include "tpmv.h"
#include "tpmv_int.h"
#include "tpm.pb-c.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

#define NOW	1800000000	/* 2027 */

/* The EK's modulus (RSA-2048); its hash is allow-listed. */
static const char ek_modulus[] =
    "b08a4376332c2a6125c05ad9454849fc37013b4b9901b79e143e6ff928b3f798"
    "64a77094a1d8aa82ac4c9f86f2a6931f727bb6f4c540e91e81f0dd6becea3bd8"
    "0bce8c7fc3cdab062b0ad79cd0c6f89c18fd646fd8f536bd50c532d201e82581"
    "2efb4a2211afa4c07f450d174ca242b1883863d71fc296d6826a1a2017de1566"
    "e9e02bc999a3a0eb1a06ba6e800208b61d6a83dcc27f7261eea476b54872b80b"
    "6c8a6e92b9323af08742a9babfd20ad7e05151b0776968b77f9b132c3f626253"
    "e8033540a21840bc0f498a3607883dbcf8a98b4507c8c529c9fe761a2b8432b0"
    "12c515d14ecc1faae15638afff08caed6aa584c2edb0cf6128fcafe3ebb2bb59";

/* The AK (P-256). */
static const char ak_pem[] =
    "-----BEGIN PRIVATE KEY-----\n"
    "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg3W/AMynd2wcQ1xiK\n"
    "GrMGT/BUh5fxm353Boj0ExODOq+hRANCAARiq6B97dCc5XWiK4rCbkWxM6o8BK/z\n"
    "1aJHVwK9PMjh1MO7wehjB9cuyUz/qNAJ4HkhnHb+3lqwmps56duVIhLm\n"
    "-----END PRIVATE KEY-----\n";

static const uint8_t	spki[] = "the CSR's SubjectPublicKeyInfo";
static const uint8_t	secret[TPMV_SECRET_LEN] =
    "the credential, 32 bytes long!!";
static const uint8_t	nonce[TPMV_NONCE_LEN] =
    "a nonce of thirty-two bytes, ok";
static const uint32_t	asked[] = { 16 };	/* and config's 0, 7 */

static struct {
	int			 ready;
	int			 verbose;	/* WICK_FUZZ_TPM_VERBOSE */
	char			 dir[64];
	struct tpmv_config	*cfg;
	EVP_PKEY		*ak;
	TPMT_PUBLIC		 ekpub, akpub;
	uint8_t			 ek[1024], akb[1024];
	size_t			 eklen, aklen;
	uint8_t			*payload;	/* a good one */
	size_t			 plen;
} f;

static void die(const char *) __attribute__((noreturn));

static void
die(const char *what)
{
	fprintf(stderr, "fuzz_tpm: %s\n", what);
	abort();
}

static void
cleanup(void)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f.dir);
	(void)system(cmd);
}

static void
sha256(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen,
    uint8_t out[32])
{
	EVP_MD_CTX	*md = EVP_MD_CTX_new();
	unsigned	 n;

	if (md == NULL || !EVP_DigestInit_ex(md, EVP_sha256(), NULL) ||
	    !EVP_DigestUpdate(md, a, alen) ||
	    (blen > 0 && !EVP_DigestUpdate(md, b, blen)) ||
	    !EVP_DigestFinal_ex(md, out, &n))
		die("sha256");
	EVP_MD_CTX_free(md);
}

static size_t
public_of(const TPMT_PUBLIC *p, uint8_t *out)
{
	size_t off = 0;

	if (Tss2_MU_TPMT_PUBLIC_Marshal(p, out + 2, 1022, &off) != 0)
		die("marshal");
	out[0] = (uint8_t)(off >> 8);
	out[1] = (uint8_t)off;
	return off + 2;
}

static void
make_publics(void)
{
	TPMT_PUBLIC	*e = &f.ekpub, *a = &f.akpub;
	BIGNUM		*x = NULL, *y = NULL;
	size_t		 i;
	BIO		*bio;

	memset(e, 0, sizeof(*e));
	e->type = TPM2_ALG_RSA;
	e->nameAlg = TPM2_ALG_SHA256;
	e->objectAttributes = TPMV_EK_ATTRS;
	e->authPolicy.size = sizeof(tpmv_ek_policy);
	memcpy(e->authPolicy.buffer, tpmv_ek_policy,
	    sizeof(tpmv_ek_policy));
	e->parameters.rsaDetail.symmetric.algorithm = TPM2_ALG_AES;
	e->parameters.rsaDetail.symmetric.keyBits.aes = 128;
	e->parameters.rsaDetail.symmetric.mode.aes = TPM2_ALG_CFB;
	e->parameters.rsaDetail.scheme.scheme = TPM2_ALG_NULL;
	e->parameters.rsaDetail.keyBits = 2048;
	e->unique.rsa.size = 256;
	for (i = 0; i < 256; i++)
		if (sscanf(ek_modulus + 2 * i, "%2hhx",
		    &e->unique.rsa.buffer[i]) != 1)
			die("modulus");
	f.eklen = public_of(e, f.ek);

	if ((bio = BIO_new_mem_buf(ak_pem, -1)) == NULL ||
	    (f.ak = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL)) == NULL)
		die("AK");
	BIO_free(bio);
	memset(a, 0, sizeof(*a));
	a->type = TPM2_ALG_ECC;
	a->nameAlg = TPM2_ALG_SHA256;
	a->objectAttributes = TPMV_AK_ATTRS | TPMA_OBJECT_USERWITHAUTH;
	a->parameters.eccDetail.symmetric.algorithm = TPM2_ALG_NULL;
	a->parameters.eccDetail.scheme.scheme = TPM2_ALG_ECDSA;
	a->parameters.eccDetail.scheme.details.ecdsa.hashAlg = TPM2_ALG_SHA256;
	a->parameters.eccDetail.curveID = TPM2_ECC_NIST_P256;
	a->parameters.eccDetail.kdf.scheme = TPM2_ALG_NULL;
	if (!EVP_PKEY_get_bn_param(f.ak, OSSL_PKEY_PARAM_EC_PUB_X, &x) ||
	    !EVP_PKEY_get_bn_param(f.ak, OSSL_PKEY_PARAM_EC_PUB_Y, &y) ||
	    BN_bn2binpad(x, a->unique.ecc.x.buffer, 32) != 32 ||
	    BN_bn2binpad(y, a->unique.ecc.y.buffer, 32) != 32)
		die("AK point");
	a->unique.ecc.x.size = a->unique.ecc.y.size = 32;
	BN_free(x);
	BN_free(y);
	f.aklen = public_of(a, f.akb);
}

static uint8_t *
pack_attestation(const uint8_t *cert, size_t certlen, size_t *len)
{
	Wick__Tpm__TpmAttestation	 m = WICK__TPM__TPM_ATTESTATION__INIT;
	uint8_t				*p;

	m.ek_cert.data = (uint8_t *)cert;
	m.ek_cert.len = certlen;
	m.ek_pub.data = f.ek;
	m.ek_pub.len = f.eklen;
	m.ak_pub.data = f.akb;
	m.ak_pub.len = f.aklen;
	m.pcrs = (uint32_t *)asked;
	m.n_pcrs = sizeof(asked) / sizeof(asked[0]);
	*len = wick__tpm__tpm_attestation__get_packed_size(&m);
	if ((p = malloc(*len + 1)) == NULL)
		die("malloc");
	(void)wick__tpm__tpm_attestation__pack(&m, p);
	return p;
}

/* A TPMT_SIGNATURE by the AK over data. */
static size_t
sign(const uint8_t *data, size_t len, uint8_t *out, size_t outlen)
{
	TPMT_SIGNATURE		 s;
	EVP_MD_CTX		*md;
	ECDSA_SIG		*es;
	const BIGNUM		*r, *ss;
	const unsigned char	*p;
	uint8_t			 der[128];
	size_t			 dlen = sizeof(der), off = 0;

	if ((md = EVP_MD_CTX_new()) == NULL ||
	    EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, f.ak) != 1 ||
	    EVP_DigestSign(md, der, &dlen, data, len) != 1)
		die("sign");
	EVP_MD_CTX_free(md);
	p = der;
	if ((es = d2i_ECDSA_SIG(NULL, &p, (long)dlen)) == NULL)
		die("sig");
	ECDSA_SIG_get0(es, &r, &ss);
	memset(&s, 0, sizeof(s));
	s.sigAlg = TPM2_ALG_ECDSA;
	s.signature.ecdsa.hash = TPM2_ALG_SHA256;
	s.signature.ecdsa.signatureR.size = 32;
	s.signature.ecdsa.signatureS.size = 32;
	if (BN_bn2binpad(r, s.signature.ecdsa.signatureR.buffer, 32) != 32 ||
	    BN_bn2binpad(ss, s.signature.ecdsa.signatureS.buffer, 32) != 32)
		die("sig size");
	ECDSA_SIG_free(es);
	if (Tss2_MU_TPMT_SIGNATURE_Marshal(&s, out, outlen, &off) != 0)
		die("marshal sig");
	return off;
}

/* A good answer to the fixed challenge (PCRs 0, 7, 16), signed or not. */
static uint8_t *
good_response(int signed_, int count0, size_t *len)
{
	Wick__Tpm__TpmChallengeResponse	 m =
	    WICK__TPM__TPM_CHALLENGE_RESPONSE__INIT;
	ProtobufCBinaryData		 v[3];
	TPMS_ATTEST			 a;
	TPMS_PCR_SELECTION		*s;
	uint8_t				 q[1024], sig[256];
	uint8_t				 values[3][32];
	uint8_t				*p;
	size_t				 qlen = 0, slen = 0, i;

	for (i = 0; i < 3; i++) {
		memset(values[i], (int)(i * 0x11), 32);
		v[i].data = values[i];
		v[i].len = 32;
	}
	memset(&a, 0, sizeof(a));
	a.magic = TPM2_GENERATED_VALUE;
	a.type = TPM2_ST_ATTEST_QUOTE;
	a.qualifiedSigner.size = 34;
	a.qualifiedSigner.name[1] = 0x0b;
	a.extraData.size = 32;
	sha256(nonce, sizeof(nonce), spki, sizeof(spki), a.extraData.buffer);
	a.clockInfo.clock = 123456;
	a.clockInfo.safe = 1;
	if (!count0) {
		a.attested.quote.pcrSelect.count = 1;
		s = &a.attested.quote.pcrSelect.pcrSelections[0];
		s->hash = TPM2_ALG_SHA256;
		s->sizeofSelect = 3;
		s->pcrSelect[0] = 0x81;		/* 0, 7 */
		s->pcrSelect[2] = 0x01;		/* 16 */
	}
	sha256(values[0], sizeof(values), NULL, 0,
	    a.attested.quote.pcrDigest.buffer);
	a.attested.quote.pcrDigest.size = 32;
	if (Tss2_MU_TPMS_ATTEST_Marshal(&a, q + 2, sizeof(q) - 2, &qlen) != 0)
		die("marshal quote");
	if (signed_)
		slen = sign(q + 2, qlen, sig, sizeof(sig));
	q[0] = (uint8_t)(qlen >> 8);
	q[1] = (uint8_t)qlen;
	m.secret.data = (uint8_t *)secret;
	m.secret.len = sizeof(secret);
	m.quote.data = q;
	m.quote.len = qlen + 2;
	m.signature.data = sig;
	m.signature.len = slen;
	m.pcr_values = v;
	m.n_pcr_values = 3;
	*len = wick__tpm__tpm_challenge_response__get_packed_size(&m);
	if ((p = malloc(*len + 1)) == NULL)
		die("malloc");
	(void)wick__tpm__tpm_challenge_response__pack(&m, p);
	return p;
}

/* An EK certificate: the EK's key, signed by the AK (no CA trusts it). */
static uint8_t *
ek_cert(size_t *len)
{
	EVP_PKEY	*ek = NULL;
	X509		*x;
	unsigned char	*der = NULL;
	int		 n;

	if (tpmv_public_key(&f.ekpub, &ek) != 0 || (x = X509_new()) == NULL ||
	    !X509_set_version(x, X509_VERSION_3) ||
	    !ASN1_INTEGER_set(X509_get_serialNumber(x), 7) ||
	    !X509_set_issuer_name(x, X509_get_subject_name(x)) ||
	    X509_gmtime_adj(X509_getm_notBefore(x), 0) == NULL ||
	    X509_gmtime_adj(X509_getm_notAfter(x), 86400) == NULL ||
	    !X509_set_pubkey(x, ek) || X509_sign(x, f.ak, EVP_sha256()) <= 0 ||
	    (n = i2d_X509(x, &der)) <= 0)
		die("cert");
	X509_free(x);
	EVP_PKEY_free(ek);
	*len = (size_t)n;
	return der;
}

static void
write_seed(const char *dir, const char *name, uint8_t mode, const uint8_t *p,
    size_t len)
{
	char	 path[512];
	FILE	*fp;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if ((fp = fopen(path, "wb")) == NULL || fputc(mode, fp) == EOF ||
	    (len > 0 && fwrite(p, 1, len, fp) != len) || fclose(fp) != 0)
		die(path);
}

static void
write_seeds(const char *dir)
{
	uint8_t	*p, *cert;
	size_t	 len, clen;

	write_seed(dir, "params-good", 0, f.payload, f.plen);
	write_seed(dir, "params-truncated", 0, f.payload, f.plen - 9);
	cert = ek_cert(&clen);
	p = pack_attestation(cert, clen, &len);
	write_seed(dir, "params-cert", 0, p, len);
	free(p);
	OPENSSL_free(cert);
	write_seed(dir, "params-empty", 0, NULL, 0);
	p = good_response(1, 0, &len);
	write_seed(dir, "answer-good", 1, p, len);
	write_seed(dir, "answer-truncated", 1, p, len - 7);
	free(p);
	p = good_response(0, 0, &len);
	write_seed(dir, "answer-unsigned", 1, p, len);
	free(p);
	p = good_response(0, 1, &len);
	write_seed(dir, "answer-no-bank", 1, p, len);
	free(p);
	write_seed(dir, "answer-empty", 1, NULL, 0);
}

static void
init(void)
{
	char	 why[TPMV_MAX_WHY], path[128];
	EVP_PKEY *ek = NULL;
	uint8_t	*der = NULL, md[32];
	FILE	*fp;
	int	 n, i;
	const char *seeds;

	snprintf(f.dir, sizeof(f.dir), "/tmp/wick-fuzztpm-XXXXXX");
	if (mkdtemp(f.dir) == NULL)
		die("mkdtemp");
	atexit(cleanup);
	/* First: it quiets tss2-mu, whose log level is fixed at first use. */
	if (tpmv_config_load(NULL, f.dir, "sha256:0,7", &f.cfg, why,
	    sizeof(why)) != 0)
		die(why);
	make_publics();
	/* Allow-list the EK. */
	if (tpmv_public_key(&f.ekpub, &ek) != 0 ||
	    (n = i2d_PUBKEY(ek, &der)) <= 0)
		die("EK");
	sha256(der, (size_t)n, NULL, 0, md);
	n = snprintf(path, sizeof(path), "%s/", f.dir);
	for (i = 0; i < 32; i++)
		n += snprintf(path + n, sizeof(path) - (size_t)n, "%02x",
		    md[i]);
	if ((fp = fopen(path, "w")) == NULL || fclose(fp) != 0)
		die(path);
	OPENSSL_free(der);
	EVP_PKEY_free(ek);
	f.payload = pack_attestation(NULL, 0, &f.plen);
	f.verbose = getenv("WICK_FUZZ_TPM_VERBOSE") != NULL;
	if ((seeds = getenv("WICK_FUZZ_TPM_SEEDS")) != NULL)
		write_seeds(seeds);
	f.ready = 1;
}

static void
fuzz_params(const uint8_t *data, size_t len)
{
	struct tpmv_state	*st = NULL;
	struct buf		 ch;
	char			 why[TPMV_MAX_WHY];
	int			 r;

	buf_init(&ch, TPMV_MAX_CHALLENGE);
	r = tpmv_params(f.cfg, data, len, spki, sizeof(spki), NOW, &st, &ch,
	    why, sizeof(why));
	if (f.verbose)
		fprintf(stderr, "params: %d %s\n", r, why);
	if (r == 0) {
		if (st == NULL || buf_len(&ch) == 0 ||
		    tpmv_state_pub_hash(st) == NULL ||
		    strlen(tpmv_state_pub_hash(st)) != TPMV_PUB_HASH_LEN)
			abort();
	} else if (st != NULL || buf_len(&ch) != 0 || why[0] == '\0')
		abort();
	tpmv_state_free(st);
	buf_cleanup(&ch);
}

/* Sign the quote when the response leaves its signature empty. */
static uint8_t *
maybe_sign(const uint8_t *data, size_t len, size_t *outlen)
{
	Wick__Tpm__TpmChallengeResponse	*m;
	uint8_t				 sig[256], *p = NULL;

	if ((m = wick__tpm__tpm_challenge_response__unpack(NULL, len,
	    data)) == NULL)
		return NULL;
	if (m->signature.len == 0 && m->quote.len > 2 &&
	    m->quote.len <= TPMV_MAX_QUOTE) {
		m->signature.len = sign(m->quote.data + 2, m->quote.len - 2,
		    sig, sizeof(sig));
		m->signature.data = sig;
		*outlen = wick__tpm__tpm_challenge_response__get_packed_size(m);
		if ((p = malloc(*outlen + 1)) != NULL)
			(void)wick__tpm__tpm_challenge_response__pack(m, p);
		m->signature.len = 0;	/* not the message's to free */
		m->signature.data = NULL;
	}
	wick__tpm__tpm_challenge_response__free_unpacked(m, NULL);
	return p;
}

static void
fuzz_answer(const uint8_t *data, size_t len)
{
	struct tpmv_state	*st = NULL;
	struct tpmv_result	 res;
	struct buf		 ch;
	uint8_t			*signed_;
	size_t			 slen;
	char			 why[TPMV_MAX_WHY];
	int			 r;

	buf_init(&ch, TPMV_MAX_CHALLENGE);
	if (tpmv_params_fixed(f.cfg, f.payload, f.plen, spki, sizeof(spki),
	    NOW, secret, nonce, &st, &ch, why, sizeof(why)) != 0)
		die(why);
	if ((signed_ = maybe_sign(data, len, &slen)) != NULL) {
		data = signed_;
		len = slen;
	}
	r = tpmv_answer(st, data, len, &res, why, sizeof(why));
	if (f.verbose)
		fprintf(stderr, "answer: %d %s\n", r, why);
	if (r == 0) {
		if (res.selectors.n < 4 ||
		    strlen(res.pub_hash) != TPMV_PUB_HASH_LEN)
			abort();
	} else if (res.selectors.n != 0 || why[0] == '\0')
		abort();
	tpmv_result_cleanup(&res);
	/* Spent either way. */
	if (tpmv_answer(st, data, len, &res, why, sizeof(why)) !=
	    WICK_ERR_STATE)
		abort();
	tpmv_result_cleanup(&res);
	free(signed_);
	tpmv_state_free(st);
	buf_cleanup(&ch);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	if (!f.ready)
		init();
	if (len == 0)
		return 0;
	if (data[0] % 2 == 0)
		fuzz_params(data + 1, len - 1);
	else
		fuzz_answer(data + 1, len - 1);
	return 0;
}
