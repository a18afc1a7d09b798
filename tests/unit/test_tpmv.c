/*
 * test_tpmv.c: the server's side of TPM node attestation, against a
 * software TPM written here from the TPM 2.0 specification: an RSA EK
 * that undoes MakeCredential (OAEP, KDFa, HMAC, AES-CFB) and AKs that
 * sign quotes built with tss2-mu.  EK certificates come from a test PKI
 * made with OpenSSL.
 */
#include <sys/stat.h>

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

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509v3.h>
#include <tss2/tss2_mu.h>

#include "buf.h"
#include "tpmv.h"
#include "tpmv_int.h"
#include "tpm.pb-c.h"
#include "helpers/tpmfix.h"

/* The L-1 EK's authPolicy, as TCG's EK Credential Profile gives it. */
static const uint8_t ek_policy[32] = {
	0x83, 0x71, 0x97, 0x67, 0x44, 0x84, 0xb3, 0xf8,
	0x1a, 0x90, 0xcc, 0x8d, 0x46, 0xa5, 0xd7, 0x24,
	0xfd, 0x52, 0xd7, 0x6e, 0x06, 0x52, 0x0b, 0x64,
	0xf2, 0xa1, 0xda, 0x1b, 0x33, 0x14, 0x69, 0xaa,
};
#define EK_ATTRS	(TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT | \
	TPMA_OBJECT_SENSITIVEDATAORIGIN | TPMA_OBJECT_ADMINWITHPOLICY | \
	TPMA_OBJECT_RESTRICTED | TPMA_OBJECT_DECRYPT)
#define AK_ATTRS	(TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT | \
	TPMA_OBJECT_SENSITIVEDATAORIGIN | TPMA_OBJECT_USERWITHAUTH | \
	TPMA_OBJECT_NODA | TPMA_OBJECT_RESTRICTED | TPMA_OBJECT_SIGN_ENCRYPT)

#define MFR		"id:00001014"
#define INT_CN		"Wick Test EK Intermediate"

static struct {
	char		 dir[64];
	char		 cafile[128], cadir[128], hashdir[128];
	EVP_PKEY	*rootk, *intk, *otherk;	/* CAs */
	X509		*root, *inter, *other;
	EVP_PKEY	*ek, *ek2;		/* RSA-2048, private */
	X509		*ekcert;		/* ek by inter */
	X509		*ekcert_other;		/* ek by other */
	X509		*ek2cert;		/* ek2 by inter */
	EVP_PKEY	*ak256, *ak384, *akrsa, *csrkey;
	uint8_t		*spki;
	size_t		 spkilen;
	struct tpmv_config *cfg;		/* ca_path = cafile */
	struct tpmv_config *cfg_hash;		/* hash_path only */
	struct tpmv_config *cfg_both;		/* both, pcrs 0,1 */
	int64_t		 now;
} t;

/* ---- keys, TPM publics, certificates ------------------------------------- */

static EVP_PKEY *
ec_key(const char *curve)
{
	return EVP_PKEY_Q_keygen(NULL, NULL, "EC", curve);
}

static void
bn_param(EVP_PKEY *k, const char *name, uint8_t *out, size_t len,
    UINT16 *size)
{
	BIGNUM *bn = NULL;

	assert_int_equal(EVP_PKEY_get_bn_param(k, name, &bn), 1);
	assert_true(BN_bn2binpad(bn, out, (int)len) == (int)len);
	*size = (UINT16)len;
	BN_free(bn);
}

static void
ek_public(EVP_PKEY *rsa, TPMT_PUBLIC *p)
{
	memset(p, 0, sizeof(*p));
	p->type = TPM2_ALG_RSA;
	p->nameAlg = TPM2_ALG_SHA256;
	p->objectAttributes = EK_ATTRS;
	p->authPolicy.size = sizeof(ek_policy);
	memcpy(p->authPolicy.buffer, ek_policy, sizeof(ek_policy));
	p->parameters.rsaDetail.symmetric.algorithm = TPM2_ALG_AES;
	p->parameters.rsaDetail.symmetric.keyBits.aes = 128;
	p->parameters.rsaDetail.symmetric.mode.aes = TPM2_ALG_CFB;
	p->parameters.rsaDetail.scheme.scheme = TPM2_ALG_NULL;
	p->parameters.rsaDetail.keyBits = (UINT16)EVP_PKEY_get_bits(rsa);
	p->parameters.rsaDetail.exponent = 0;
	bn_param(rsa, OSSL_PKEY_PARAM_RSA_N, p->unique.rsa.buffer,
	    (size_t)EVP_PKEY_get_bits(rsa) / 8, &p->unique.rsa.size);
}

static void
ak_public(EVP_PKEY *k, TPMT_PUBLIC *p)
{
	char	group[32];
	size_t	clen;

	memset(p, 0, sizeof(*p));
	p->nameAlg = TPM2_ALG_SHA256;
	p->objectAttributes = AK_ATTRS;
	if (EVP_PKEY_is_a(k, "RSA")) {
		p->type = TPM2_ALG_RSA;
		p->parameters.rsaDetail.symmetric.algorithm = TPM2_ALG_NULL;
		p->parameters.rsaDetail.scheme.scheme = TPM2_ALG_RSASSA;
		p->parameters.rsaDetail.scheme.details.rsassa.hashAlg =
		    TPM2_ALG_SHA256;
		p->parameters.rsaDetail.keyBits = (UINT16)EVP_PKEY_get_bits(k);
		bn_param(k, OSSL_PKEY_PARAM_RSA_N, p->unique.rsa.buffer,
		    (size_t)EVP_PKEY_get_bits(k) / 8, &p->unique.rsa.size);
		return;
	}
	assert_int_equal(EVP_PKEY_get_utf8_string_param(k,
	    OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group), NULL), 1);
	p->type = TPM2_ALG_ECC;
	p->parameters.eccDetail.symmetric.algorithm = TPM2_ALG_NULL;
	p->parameters.eccDetail.scheme.scheme = TPM2_ALG_ECDSA;
	p->parameters.eccDetail.scheme.details.ecdsa.hashAlg = TPM2_ALG_SHA256;
	p->parameters.eccDetail.kdf.scheme = TPM2_ALG_NULL;
	if (strcmp(group, "prime256v1") == 0) {
		p->parameters.eccDetail.curveID = TPM2_ECC_NIST_P256;
		clen = 32;
	} else {
		p->parameters.eccDetail.curveID = TPM2_ECC_NIST_P384;
		clen = 48;
	}
	bn_param(k, OSSL_PKEY_PARAM_EC_PUB_X, p->unique.ecc.x.buffer, clen,
	    &p->unique.ecc.x.size);
	bn_param(k, OSSL_PKEY_PARAM_EC_PUB_Y, p->unique.ecc.y.buffer, clen,
	    &p->unique.ecc.y.size);
}

static void
add_conf_ext(X509 *x, X509 *issuer, int nid, const char *value)
{
	X509V3_CTX	 v3;
	X509_EXTENSION	*ext;

	X509V3_set_ctx(&v3, issuer != NULL ? issuer : x, x, NULL, NULL, 0);
	assert_non_null(ext = X509V3_EXT_nconf_nid(NULL, &v3, nid, value));
	assert_int_equal(X509_add_ext(x, ext, -1), 1);
	X509_EXTENSION_free(ext);
}

/* The TPM's subjectAltName: a directoryName of TPM attributes. */
static void
add_tpm_san(X509 *x, const char *mfr)
{
	GENERAL_NAMES	*gens;
	GENERAL_NAME	*gen;
	X509_NAME	*dn;
	static const char *const oids[] = {
		"2.23.133.2.1", "2.23.133.2.2", "2.23.133.2.3"
	};
	const char	*vals[] = { mfr, "swtpm", "id:20191023" };
	ASN1_OBJECT	*o;
	int		 i;

	assert_non_null(gens = sk_GENERAL_NAME_new_null());
	assert_non_null(gen = GENERAL_NAME_new());
	assert_non_null(dn = X509_NAME_new());
	for (i = 0; i < 3; i++) {
		assert_non_null(o = OBJ_txt2obj(oids[i], 1));
		assert_int_equal(X509_NAME_add_entry_by_OBJ(dn, o,
		    MBSTRING_UTF8, (const unsigned char *)vals[i], -1, -1,
		    0), 1);
		ASN1_OBJECT_free(o);
	}
	GENERAL_NAME_set0_value(gen, GEN_DIRNAME, dn);
	assert_true(sk_GENERAL_NAME_push(gens, gen) > 0);
	assert_int_equal(X509_add1_ext_i2d(x, NID_subject_alt_name, gens, 1,
	    X509V3_ADD_DEFAULT), 1);
	GENERAL_NAMES_free(gens);
}

/*
 * A certificate for key: a CA (cn set) or an EK certificate (cn NULL:
 * empty subject, the TPM SAN); issuer NULL for self-signed.  eku NULL
 * for none.  Valid from now + from to now + to (seconds).
 */
static X509 *
mkcert(EVP_PKEY *key, const char *cn, X509 *issuer, EVP_PKEY *ikey,
    const char *eku, long from, long to)
{
	X509		*x;
	X509_NAME	*name;
	static long	 serial = 1;

	assert_non_null(x = X509_new());
	assert_int_equal(X509_set_version(x, X509_VERSION_3), 1);
	assert_int_equal(ASN1_INTEGER_set(X509_get_serialNumber(x),
	    serial++), 1);
	name = X509_get_subject_name(x);
	if (cn != NULL)
		assert_int_equal(X509_NAME_add_entry_by_txt(name, "CN",
		    MBSTRING_UTF8, (const unsigned char *)cn, -1, -1, 0), 1);
	assert_int_equal(X509_set_issuer_name(x, issuer != NULL ?
	    X509_get_subject_name(issuer) : name), 1);
	assert_non_null(X509_gmtime_adj(X509_getm_notBefore(x), from));
	assert_non_null(X509_gmtime_adj(X509_getm_notAfter(x), to));
	assert_int_equal(X509_set_pubkey(x, key), 1);
	if (cn != NULL) {
		add_conf_ext(x, issuer, NID_basic_constraints,
		    "critical,CA:TRUE");
		add_conf_ext(x, issuer, NID_key_usage,
		    "critical,keyCertSign,cRLSign");
	} else {
		add_conf_ext(x, issuer, NID_basic_constraints,
		    "critical,CA:FALSE");
		add_conf_ext(x, issuer, NID_key_usage,
		    "critical,keyEncipherment");
		add_tpm_san(x, MFR);
	}
	if (eku != NULL)
		add_conf_ext(x, issuer, NID_ext_key_usage, eku);
	assert_true(X509_sign(x, issuer != NULL ? ikey : key,
	    EVP_sha256()) > 0);
	return x;
}

static void
write_pem(const char *path, X509 *a, X509 *b, mode_t mode)
{
	FILE *f;

	assert_non_null(f = fopen(path, "w"));
	assert_int_equal(PEM_write_X509(f, a), 1);
	if (b != NULL)
		assert_int_equal(PEM_write_X509(f, b), 1);
	assert_int_equal(fclose(f), 0);
	assert_int_equal(chmod(path, mode), 0);
}

static void
rm_rf(const char *dir)
{
	char cmd[256];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	(void)system(cmd);
}

/* pub_hash of a key, computed here: hex SHA-256 of its DER SPKI. */
static void
hash_of(EVP_PKEY *k, char out[65])
{
	uint8_t	*der = NULL, md[32];
	size_t	 len, i;

	assert_int_equal(tpmfix_spki(k, &der, &len), 0);
	assert_int_equal(tpmfix_sha256(der, len, NULL, 0, md), 0);
	for (i = 0; i < 32; i++)
		snprintf(out + 2 * i, 3, "%02x", md[i]);
	OPENSSL_free(der);
}

static void
allow(EVP_PKEY *k, int on, mode_t mode)
{
	char	h[65], path[256];
	FILE	*f;

	hash_of(k, h);
	snprintf(path, sizeof(path), "%s/%s", t.hashdir, h);
	if (!on) {
		(void)unlink(path);
		return;
	}
	assert_non_null(f = fopen(path, "w"));
	assert_int_equal(fclose(f), 0);
	assert_int_equal(chmod(path, mode), 0);
}

static int
setup(void **state)
{
	char why[TPMV_MAX_WHY];

	snprintf(t.dir, sizeof(t.dir), "/tmp/wick-natpm-XXXXXX");
	if (mkdtemp(t.dir) == NULL)
		return -1;
	snprintf(t.cafile, sizeof(t.cafile), "%s/ca.pem", t.dir);
	snprintf(t.cadir, sizeof(t.cadir), "%s/ca", t.dir);
	snprintf(t.hashdir, sizeof(t.hashdir), "%s/hashes", t.dir);
	if (mkdir(t.cadir, 0755) != 0 || mkdir(t.hashdir, 0755) != 0)
		return -1;
	t.now = (int64_t)time(NULL);
	t.rootk = ec_key("P-256");
	t.intk = EVP_RSA_gen(2048);
	t.otherk = ec_key("P-256");
	t.ek = EVP_RSA_gen(2048);
	t.ek2 = EVP_RSA_gen(2048);
	t.ak256 = ec_key("P-256");
	t.ak384 = ec_key("P-384");
	t.akrsa = EVP_RSA_gen(2048);
	t.csrkey = ec_key("P-256");
	if (t.rootk == NULL || t.intk == NULL || t.otherk == NULL ||
	    t.ek == NULL || t.ek2 == NULL || t.ak256 == NULL ||
	    t.ak384 == NULL || t.akrsa == NULL || t.csrkey == NULL)
		return -1;
	t.root = mkcert(t.rootk, "Wick Test EK Root", NULL, NULL, NULL,
	    -86400, 10 * 365 * 86400L);
	t.inter = mkcert(t.intk, INT_CN, t.root, t.rootk, NULL, -86400,
	    10 * 365 * 86400L);
	t.other = mkcert(t.otherk, "Somebody Else's Root", NULL, NULL, NULL,
	    -86400, 10 * 365 * 86400L);
	t.ekcert = mkcert(t.ek, NULL, t.inter, t.intk, "2.23.133.8.1",
	    -86400, 365 * 86400L);
	t.ekcert_other = mkcert(t.ek, NULL, t.other, t.otherk,
	    "2.23.133.8.1", -86400, 365 * 86400L);
	t.ek2cert = mkcert(t.ek2, NULL, t.inter, t.intk, NULL, -86400,
	    365 * 86400L);
	write_pem(t.cafile, t.root, t.inter, 0644);
	if (tpmfix_spki(t.csrkey, &t.spki, &t.spkilen) != 0)
		return -1;
	if (tpmv_config_load(t.cafile, NULL, NULL, &t.cfg, why,
	    sizeof(why)) != 0 ||
	    tpmv_config_load(NULL, t.hashdir, NULL, &t.cfg_hash, why,
	    sizeof(why)) != 0 ||
	    tpmv_config_load(t.cafile, t.hashdir, "sha256:0,1", &t.cfg_both,
	    why, sizeof(why)) != 0) {
		fprintf(stderr, "config: %s\n", why);
		return -1;
	}
	return 0;
}

static int
teardown(void **state)
{
	tpmv_config_free(t.cfg);
	tpmv_config_free(t.cfg_hash);
	tpmv_config_free(t.cfg_both);
	X509_free(t.root);
	X509_free(t.inter);
	X509_free(t.other);
	X509_free(t.ekcert);
	X509_free(t.ekcert_other);
	X509_free(t.ek2cert);
	EVP_PKEY_free(t.rootk);
	EVP_PKEY_free(t.intk);
	EVP_PKEY_free(t.otherk);
	EVP_PKEY_free(t.ek);
	EVP_PKEY_free(t.ek2);
	EVP_PKEY_free(t.ak256);
	EVP_PKEY_free(t.ak384);
	EVP_PKEY_free(t.akrsa);
	EVP_PKEY_free(t.csrkey);
	OPENSSL_free(t.spki);
	rm_rf(t.dir);
	return 0;
}

/* ---- the software TPM ---------------------------------------------------- */

/* KDFa as TPM 2.0 part 1 gives it, one HMAC call per block. */
static void
t_kdfa(const uint8_t *key, size_t keylen, const char *label,
    const uint8_t *u, size_t ulen, unsigned bits, uint8_t *out)
{
	uint8_t		 in[256], block[32];
	size_t		 n, done, blen;
	uint32_t	 i;

	for (i = 1, done = 0; done < bits / 8; i++) {
		n = 0;
		in[n++] = (uint8_t)(i >> 24);
		in[n++] = (uint8_t)(i >> 16);
		in[n++] = (uint8_t)(i >> 8);
		in[n++] = (uint8_t)i;
		memcpy(in + n, label, strlen(label) + 1);
		n += strlen(label) + 1;
		if (ulen > 0)
			memcpy(in + n, u, ulen);
		n += ulen;
		in[n++] = (uint8_t)(bits >> 24);
		in[n++] = (uint8_t)(bits >> 16);
		in[n++] = (uint8_t)(bits >> 8);
		in[n++] = (uint8_t)bits;
		assert_non_null(EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL,
		    key, keylen, in, n, block, sizeof(block), &blen));
		n = bits / 8 - done < 32 ? bits / 8 - done : 32;
		memcpy(out + done, block, n);
		done += n;
	}
}

/*
 * ActivateCredential: 0 with the credential in secret, -1 when the
 * blobs do not parse or decrypt, -2 on an integrity failure (the TPM's
 * TPM_RC_INTEGRITY).
 */
static int
t_activate(EVP_PKEY *ek, const uint8_t name[TPMFIX_NAME_LEN],
    const uint8_t *blob, size_t bloblen, const uint8_t *es, size_t eslen,
    uint8_t *secret, size_t *secretlen)
{
	TPM2B_ID_OBJECT		 id;
	TPM2B_ENCRYPTED_SECRET	 enc;
	EVP_PKEY_CTX		*pc;
	EVP_CIPHER_CTX		*cc;
	uint8_t			 seed[512], sym[16], hk[32], mac[32];
	uint8_t			 macin[256], plain[128], iv[16];
	size_t			 off = 0, seedlen = sizeof(seed);
	size_t			 maclen, elen;
	int			 n, r = -1;

	memset(&id, 0, sizeof(id));
	memset(&enc, 0, sizeof(enc));
	if (Tss2_MU_TPM2B_ID_OBJECT_Unmarshal(blob, bloblen, &off, &id) !=
	    0 || off != bloblen)
		return -1;
	off = 0;
	if (Tss2_MU_TPM2B_ENCRYPTED_SECRET_Unmarshal(es, eslen, &off,
	    &enc) != 0 || off != eslen)
		return -1;
	assert_non_null(pc = EVP_PKEY_CTX_new_from_pkey(NULL, ek, NULL));
	assert_true(EVP_PKEY_decrypt_init(pc) > 0);
	assert_true(EVP_PKEY_CTX_set_rsa_padding(pc,
	    RSA_PKCS1_OAEP_PADDING) > 0);
	assert_true(EVP_PKEY_CTX_set_rsa_oaep_md(pc, EVP_sha256()) > 0);
	assert_true(EVP_PKEY_CTX_set_rsa_mgf1_md(pc, EVP_sha256()) > 0);
	assert_true(EVP_PKEY_CTX_set0_rsa_oaep_label(pc,
	    OPENSSL_memdup("IDENTITY", 9), 9) > 0);
	n = EVP_PKEY_decrypt(pc, seed, &seedlen, enc.secret, enc.size);
	EVP_PKEY_CTX_free(pc);
	if (n <= 0 || seedlen != 32)
		return -1;
	t_kdfa(seed, 32, "STORAGE", name, TPMFIX_NAME_LEN, 128, sym);
	t_kdfa(seed, 32, "INTEGRITY", NULL, 0, 256, hk);
	if (id.size < 2 + 32 + 2 || id.credential[0] != 0 ||
	    id.credential[1] != 32)
		return -1;
	elen = id.size - 34;
	memcpy(macin, id.credential + 34, elen);
	memcpy(macin + elen, name, TPMFIX_NAME_LEN);
	assert_non_null(EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL, hk,
	    sizeof(hk), macin, elen + TPMFIX_NAME_LEN, mac, sizeof(mac),
	    &maclen));
	if (CRYPTO_memcmp(mac, id.credential + 2, 32) != 0)
		return -2;
	memset(iv, 0, sizeof(iv));
	assert_non_null(cc = EVP_CIPHER_CTX_new());
	if (EVP_DecryptInit_ex(cc, EVP_aes_128_cfb128(), NULL, sym, iv) &&
	    EVP_DecryptUpdate(cc, plain, &n, id.credential + 34,
	    (int)elen) && (size_t)n == elen && elen >= 2 &&
	    (size_t)(plain[0] << 8 | plain[1]) == elen - 2) {
		*secretlen = elen - 2;
		memcpy(secret, plain + 2, elen - 2);
		r = 0;
	}
	EVP_CIPHER_CTX_free(cc);
	return r;
}

/* ---- one attestation ----------------------------------------------------- */

struct run {
	struct tpmv_state	*st;
	Wick__Tpm__TpmChallenge	*ch;
	EVP_PKEY		*ak;	/* the AK's private key */
	uint8_t			 secret[64];
	size_t			 secretlen;
};

/* What the quote says, and how the answer is made. */
struct qopt {
	int		 sel_set;	/* sel_mask, not the challenge's */
	uint32_t	 sel_mask;
	int		 sel_count0;	/* no bank at all */
	int		 sel_sha1;	/* the sha1 bank too */
	int		 sel_size;	/* sizeofSelect (0: 3) */
	int		 bad_digest;
	int		 values_delta;	/* one PCR value more, fewer */
	int		 short_value;
	uint32_t	 magic;		/* 0: TPM2_GENERATED_VALUE */
	TPMI_ST_ATTEST	 type;		/* 0: quote */
	int		 nonce_only;	/* extraData: nonce alone */
	int		 wrong_nonce;
	int		 flip_sig;
	EVP_PKEY	*signer;	/* NULL: the AK */
	int		 sig_alg;	/* its algorithm (0: AK's) */
	int		 wrong_secret, short_secret;
	int		 quote_trunc, quote_trail, attest_trail, sig_trail;
	int		 sig_trunc;
};

static const uint8_t *
pcr_values(void)
{
	static uint8_t	v[24 * 32];
	int		i;

	for (i = 0; i < 24 * 32; i++)
		v[i] = (uint8_t)(i / 32 * 7 + 1);
	return v;
}

/* TpmAttestation for ek / cert and ak, the PCRs asked for. */
static void
payload_of(EVP_PKEY *ek, X509 *cert, EVP_PKEY *ak, const uint32_t *pcrs,
    size_t n, uint8_t **out, size_t *len)
{
	TPMT_PUBLIC	ep, ap;
	uint8_t		eb[TPMFIX_MAX_PUBLIC], ab[TPMFIX_MAX_PUBLIC];
	size_t		el, al;

	ek_public(ek, &ep);
	ak_public(ak, &ap);
	assert_int_equal(tpmfix_public(&ep, eb, &el), 0);
	assert_int_equal(tpmfix_public(&ap, ab, &al), 0);
	assert_int_equal(tpmfix_attestation(cert, eb, el, ab, al, pcrs, n,
	    out, len), 0);
}

/* Params through, the challenge activated by the software TPM. */
static void
start(struct run *r, const struct tpmv_config *cfg, EVP_PKEY *ek,
    X509 *cert, EVP_PKEY *ak, const uint32_t *pcrs, size_t npcrs)
{
	TPMT_PUBLIC	 ap;
	struct buf	 ch;
	uint8_t		*p, name[TPMFIX_NAME_LEN];
	size_t		 len;
	char		 why[TPMV_MAX_WHY];
	int		 rc;

	memset(r, 0, sizeof(*r));
	r->ak = ak;
	payload_of(ek, cert, ak, pcrs, npcrs, &p, &len);
	buf_init(&ch, TPMV_MAX_CHALLENGE);
	rc = tpmv_params(cfg, p, len, t.spki, t.spkilen, t.now, &r->st, &ch,
	    why, sizeof(why));
	if (rc != 0)
		fail_msg("params: %s (%d)", why, rc);
	assert_string_equal(why, "");
	assert_true(buf_len(&ch) <= TPMV_MAX_CHALLENGE);
	assert_non_null(r->ch = wick__tpm__tpm_challenge__unpack(NULL,
	    buf_len(&ch), buf_ptr(&ch)));
	assert_int_equal(r->ch->nonce.len, 32);
	ak_public(ak, &ap);
	assert_int_equal(tpmfix_name(&ap, name), 0);
	assert_int_equal(t_activate(ek, name, r->ch->credential_blob.data,
	    r->ch->credential_blob.len, r->ch->encrypted_secret.data,
	    r->ch->encrypted_secret.len, r->secret, &r->secretlen), 0);
	assert_int_equal(r->secretlen, 32);
	buf_cleanup(&ch);
	free(p);
}

static void
finish(struct run *r)
{
	tpmv_state_free(r->st);
	wick__tpm__tpm_challenge__free_unpacked(r->ch, NULL);
	memset(r, 0, sizeof(*r));
}

/* A TPMT_SIGNATURE by k over data. */
static size_t
sign(EVP_PKEY *k, int alg, const uint8_t *data, size_t len, uint8_t *out,
    size_t outlen)
{
	TPMT_SIGNATURE		 s;
	EVP_MD_CTX		*md;
	ECDSA_SIG		*es;
	const BIGNUM		*br, *bs;
	const unsigned char	*p;
	uint8_t			 der[1024];
	size_t			 dlen = sizeof(der), off = 0, clen;

	assert_non_null(md = EVP_MD_CTX_new());
	assert_int_equal(EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, k),
	    1);
	assert_int_equal(EVP_DigestSign(md, der, &dlen, data, len), 1);
	EVP_MD_CTX_free(md);
	memset(&s, 0, sizeof(s));
	if (EVP_PKEY_is_a(k, "RSA")) {
		s.sigAlg = alg != 0 ? alg : TPM2_ALG_RSASSA;
		s.signature.rsassa.hash = TPM2_ALG_SHA256;
		s.signature.rsassa.sig.size = (UINT16)dlen;
		memcpy(s.signature.rsassa.sig.buffer, der, dlen);
	} else {
		clen = EVP_PKEY_get_bits(k) == 384 ? 48 : 32;
		p = der;
		assert_non_null(es = d2i_ECDSA_SIG(NULL, &p, (long)dlen));
		ECDSA_SIG_get0(es, &br, &bs);
		s.sigAlg = alg != 0 ? alg : TPM2_ALG_ECDSA;
		s.signature.ecdsa.hash = TPM2_ALG_SHA256;
		assert_true(BN_bn2binpad(br,
		    s.signature.ecdsa.signatureR.buffer, (int)clen) > 0);
		assert_true(BN_bn2binpad(bs,
		    s.signature.ecdsa.signatureS.buffer, (int)clen) > 0);
		s.signature.ecdsa.signatureR.size = (UINT16)clen;
		s.signature.ecdsa.signatureS.size = (UINT16)clen;
		ECDSA_SIG_free(es);
	}
	assert_int_equal(Tss2_MU_TPMT_SIGNATURE_Marshal(&s, out, outlen,
	    &off), 0);
	return off;
}

/* The answer, built as told, checked by tpmv_answer(). */
static int
answer(struct run *r, const struct qopt *o, struct tpmv_result *res,
    char *why, size_t whylen)
{
	static const struct qopt	 none;
	TPMS_ATTEST			 a;
	TPMS_PCR_SELECTION		*s;
	const uint8_t			*vals = pcr_values();
	uint8_t				 q[2048], sig[1024], nonce[32];
	uint8_t				 values[26 * 32], secret[64];
	uint8_t				*resp;
	size_t				 qlen = 0, slen, nvals = 0, i;
	size_t				 rlen;
	size_t				 secretlen;
	uint32_t			 mask = 0;
	int				 rc;

	if (o == NULL)
		o = &none;
	for (i = 0; i < r->ch->n_pcrs; i++) {
		mask |= 1u << r->ch->pcrs[i];
		memcpy(values + 32 * nvals++, vals + 32 * r->ch->pcrs[i], 32);
	}
	memset(&a, 0, sizeof(a));
	a.magic = o->magic != 0 ? o->magic : TPM2_GENERATED_VALUE;
	a.type = o->type != 0 ? o->type : TPM2_ST_ATTEST_QUOTE;
	a.qualifiedSigner.size = 34;
	memset(a.qualifiedSigner.name, 0x5a, 34);
	a.qualifiedSigner.name[0] = 0;
	a.qualifiedSigner.name[1] = 0x0b;
	memcpy(nonce, r->ch->nonce.data, 32);
	if (o->wrong_nonce)
		nonce[0] ^= 1;
	a.extraData.size = 32;
	if (o->nonce_only)
		memcpy(a.extraData.buffer, nonce, 32);
	else
		assert_int_equal(tpmfix_sha256(nonce, 32, t.spki, t.spkilen,
		    a.extraData.buffer), 0);
	a.firmwareVersion = 0x2019102300000000ULL;
	if (!o->sel_count0) {
		a.attested.quote.pcrSelect.count = 1;
		s = &a.attested.quote.pcrSelect.pcrSelections[0];
		s->hash = TPM2_ALG_SHA256;
		s->sizeofSelect = o->sel_size != 0 ? o->sel_size : 3;
		if (o->sel_set)
			mask = o->sel_mask;
		for (i = 0; i < 3; i++)
			s->pcrSelect[i] = (uint8_t)(mask >> (8 * i));
		if (o->sel_sha1) {
			a.attested.quote.pcrSelect.count = 2;
			s[1] = s[0];
			s[1].hash = TPM2_ALG_SHA1;
		}
	}
	assert_int_equal(tpmfix_sha256(values, 32 * nvals, NULL, 0,
	    a.attested.quote.pcrDigest.buffer), 0);
	a.attested.quote.pcrDigest.size = 32;
	if (o->bad_digest)
		a.attested.quote.pcrDigest.buffer[5] ^= 0x80;
	assert_int_equal(Tss2_MU_TPMS_ATTEST_Marshal(&a, q + 2, sizeof(q) - 3,
	    &qlen), 0);
	if (o->attest_trail)
		q[2 + qlen++] = 0;
	slen = sign(o->signer != NULL ? o->signer : r->ak, o->sig_alg, q + 2,
	    qlen, sig, sizeof(sig) - 1);
	if (o->flip_sig)
		sig[slen - 3] ^= 0x01;
	if (o->sig_trail)
		sig[slen++] = 0;
	if (o->sig_trunc)
		slen -= 5;
	q[0] = (uint8_t)(qlen >> 8);
	q[1] = (uint8_t)qlen;
	qlen += 2;
	if (o->quote_trail)
		q[qlen++] = 0;
	if (o->quote_trunc)
		qlen -= 4;
	memcpy(secret, r->secret, r->secretlen);
	secretlen = r->secretlen;
	if (o->wrong_secret)
		secret[7] ^= 0x10;
	if (o->short_secret)
		secretlen = 16;
	if (o->values_delta > 0)
		memcpy(values + 32 * nvals++, vals, 32);
	else if (o->values_delta < 0)
		nvals--;
	assert_int_equal(tpmfix_response(secret, secretlen, q, qlen, sig, slen,
	    values, nvals, &resp, &rlen), 0);
	if (o->short_value) {
		/* The last value one byte short: pack it by hand. */
		Wick__Tpm__TpmChallengeResponse *m;

		assert_non_null(m = wick__tpm__tpm_challenge_response__unpack(
		    NULL, rlen, resp));
		m->pcr_values[m->n_pcr_values - 1].len = 31;
		free(resp);
		rlen = wick__tpm__tpm_challenge_response__get_packed_size(m);
		assert_non_null(resp = malloc(rlen));
		(void)wick__tpm__tpm_challenge_response__pack(m, resp);
		wick__tpm__tpm_challenge_response__free_unpacked(m, NULL);
	}
	rc = tpmv_answer(r->st, resp, rlen, res, why, whylen);
	free(resp);
	return rc;
}

/* An attestation whose answer o spoils: rc and a piece of why. */
static void
spoiled(const struct qopt *o, int want, const char *part)
{
	struct run		r;
	struct tpmv_result	res;
	const uint32_t		pcrs[] = { 16 };
	char			why[TPMV_MAX_WHY];
	int			rc;

	start(&r, t.cfg_both, t.ek, t.ekcert, o->signer == t.akrsa ?
	    t.akrsa : t.ak256, pcrs, 1);
	rc = answer(&r, o, &res, why, sizeof(why));
	if (rc != want || strstr(why, part) == NULL)
		fail_msg("got %d \"%s\", want %d \"...%s...\"", rc, why, want,
		    part);
	assert_int_equal(res.selectors.n, 0);
	tpmv_result_cleanup(&res);
	/* Spent, right or wrong. */
	assert_int_equal(answer(&r, NULL, &res, why, sizeof(why)),
	    WICK_ERR_STATE);
	tpmv_result_cleanup(&res);
	finish(&r);
}

static int
has(const struct tpmv_result *res, const char *value)
{
	return selector_set_contains(&res->selectors, "tpm", value);
}

/* ---- KDFa, names, MakeCredential ----------------------------------------- */

static void
unhex(const char *h, uint8_t *out, size_t *len)
{
	size_t i, n = strlen(h) / 2;

	for (i = 0; i < n; i++)
		assert_int_equal(sscanf(h + 2 * i, "%2hhx", &out[i]), 1);
	*len = n;
}

/*
 * Vectors computed with Python: hmac/hashlib by hand, and the same
 * values from cryptography's KBKDFHMAC (SP 800-108 counter mode, 32-bit
 * counter before the fixed data, 32-bit length).
 */
static void
test_kdfa_vectors(void **state)
{
	uint8_t	key[32], u[34], out[65], want[65];
	size_t	i, n;

	for (i = 0; i < 32; i++)
		key[i] = (uint8_t)i;
	u[0] = 0x00;
	u[1] = 0x0b;
	for (i = 0; i < 32; i++)
		u[2 + i] = (uint8_t)(0x40 + i);
	assert_int_equal(tpmv_kdfa(key, 32, "STORAGE", u, 34, NULL, 0, 128,
	    out), 0);
	unhex("7a58c2079bee13e00ed160d657aecaef", want, &n);
	assert_memory_equal(out, want, n);
	assert_int_equal(tpmv_kdfa(key, 32, "INTEGRITY", NULL, 0, NULL, 0,
	    256, out), 0);
	unhex("bacf689f634ece301e1f1b15b072d9c87db6a69585db42b1a0cb8f73ebe269"
	    "2e", want, &n);
	assert_memory_equal(out, want, n);
	/* Three blocks, the last cut; U and V both. */
	assert_int_equal(tpmv_kdfa((const uint8_t *)"wick kdfa key", 13,
	    "TEST", (const uint8_t *)"abc", 3, (const uint8_t *)"defg", 4, 520,
	    out), 0);
	unhex("9073f1bb5818fe2628c27cb0a6787545405b2031b386d0607f595c1427d37e"
	    "6a82f4ebe79436fda8e6425ed53a3b5044cf6a5c7270f44d72768d5c383e49c3"
	    "c525", want, &n);
	assert_int_equal(n, 65);
	assert_memory_equal(out, want, n);
	/* Against the test's own KDFa. */
	t_kdfa(key, 32, "STORAGE", u, 34, 128, want);
	assert_int_equal(tpmv_kdfa(key, 32, "STORAGE", u, 34, NULL, 0, 128,
	    out), 0);
	assert_memory_equal(out, want, 16);
	/* Sizes it refuses. */
	assert_int_equal(tpmv_kdfa(key, 32, "X", NULL, 0, NULL, 0, 12, out),
	    WICK_ERR_INVALID);
	assert_int_equal(tpmv_kdfa(key, 32, "X", NULL, 0, NULL, 0, 0, out),
	    WICK_ERR_INVALID);
	assert_int_equal(tpmv_kdfa(key, 0, "X", NULL, 0, NULL, 0, 8, out),
	    WICK_ERR_INVALID);
}

/* A P-256 AK public made byte by byte in Python, and its name. */
static void
test_ak_name(void **state)
{
	TPMT_PUBLIC	p;
	uint8_t		buf[256], name[TPMV_NAME_LEN], want[64];
	size_t		len, n;
	char		why[TPMV_MAX_WHY];

	unhex("00580023000b00050472000000100018000b0003001000201111111111111111"
	    "1111111111111111111111111111111111111111111111110020222222222222"
	    "2222222222222222222222222222222222222222222222222222", buf, &len);
	assert_int_equal(tpmv_public_parse(buf, len, "AK", &p, why,
	    sizeof(why)), 0);
	assert_int_equal(p.type, TPM2_ALG_ECC);
	assert_int_equal(p.parameters.eccDetail.curveID, TPM2_ECC_NIST_P256);
	assert_int_equal(tpmv_name(&p, name), 0);
	unhex("000b983f3f66072aaebef7a8e0a4aba030974dcf97b48d971dad61bde144aed"
	    "46323", want, &n);
	assert_int_equal(n, TPMV_NAME_LEN);
	assert_memory_equal(name, want, n);
	/* The name of a public made with tss2-mu, hashed here. */
	ak_public(t.akrsa, &p);
	assert_int_equal(tpmfix_name(&p, want), 0);
	assert_int_equal(tpmv_name(&p, name), 0);
	assert_memory_equal(name, want, TPMV_NAME_LEN);
	/* Only SHA-256 names. */
	p.nameAlg = TPM2_ALG_SHA384;
	assert_int_equal(tpmv_name(&p, name), WICK_ERR_UNSUPPORTED);
}

static void
test_public_parse(void **state)
{
	TPMT_PUBLIC	p, q;
	uint8_t		buf[TPMFIX_MAX_PUBLIC + 8];
	size_t		len;
	char		why[TPMV_MAX_WHY];

	ek_public(t.ek, &p);
	assert_int_equal(tpmfix_public(&p, buf, &len), 0);
	assert_int_equal(tpmv_public_parse(buf, len, "EK", &q, why,
	    sizeof(why)), 0);
	assert_memory_equal(&p, &q, sizeof(p));
	/* Truncated anywhere. */
	assert_int_equal(tpmv_public_parse(buf, 1, "EK", &q, why,
	    sizeof(why)), WICK_ERR_INVALID);
	assert_non_null(strstr(why, "truncated"));
	assert_int_equal(tpmv_public_parse(buf, len - 1, "EK", &q, why,
	    sizeof(why)), WICK_ERR_INVALID);
	assert_non_null(strstr(why, "EK: the TPM2B_PUBLIC is truncated"));
	/* The TPM2B says it is shorter: the TPMT_PUBLIC is cut. */
	buf[1]--;
	assert_int_equal(tpmv_public_parse(buf, len - 1, "EK", &q, why,
	    sizeof(why)), WICK_ERR_INVALID);
	assert_non_null(strstr(why, "does not parse"));
	buf[1]++;
	/* A byte after it. */
	buf[len] = 0;
	assert_int_equal(tpmv_public_parse(buf, len + 1, "EK", &q, why,
	    sizeof(why)), WICK_ERR_INVALID);
	assert_non_null(strstr(why, "1 bytes follow the TPM2B_PUBLIC"));
	/* A byte inside the TPM2B, after the TPMT_PUBLIC. */
	buf[1]++;
	assert_int_equal(tpmv_public_parse(buf, len + 1, "EK", &q, why,
	    sizeof(why)), WICK_ERR_INVALID);
	assert_non_null(strstr(why, "inside its TPM2B"));
	buf[1]--;
	/* Empty. */
	buf[0] = buf[1] = 0;
	assert_int_equal(tpmv_public_parse(buf, 2, "AK", &q, why,
	    sizeof(why)), WICK_ERR_INVALID);
	assert_non_null(strstr(why, "AK: the TPM2B_PUBLIC is empty"));
}

static void
test_make_credential(void **state)
{
	TPMT_PUBLIC		 ep, ap;
	TPM2B_ID_OBJECT		 id;
	TPM2B_ENCRYPTED_SECRET	 es;
	EVP_PKEY		*ekpub = NULL;
	uint8_t			 name[TPMV_NAME_LEN], cred[32];
	uint8_t			 got[64];
	uint8_t			 blob[sizeof(id)], sec[sizeof(es)];
	size_t			 bl = 0, sl = 0, gl;

	ek_public(t.ek, &ep);
	ak_public(t.ak256, &ap);
	assert_int_equal(tpmv_public_key(&ep, &ekpub), 0);
	assert_int_equal(EVP_PKEY_eq(ekpub, t.ek), 1);
	assert_int_equal(tpmfix_name(&ap, name), 0);
	memset(cred, 0xc5, sizeof(cred));
	cred[0] = 1;
	assert_int_equal(tpmv_make_credential(ekpub, name, cred,
	    sizeof(cred), &id, &es), 0);
	assert_int_equal(id.size, 2 + 32 + 2 + 32);
	assert_int_equal(es.size, 256);
	assert_int_equal(Tss2_MU_TPM2B_ID_OBJECT_Marshal(&id, blob,
	    sizeof(blob), &bl), 0);
	assert_int_equal(Tss2_MU_TPM2B_ENCRYPTED_SECRET_Marshal(&es, sec,
	    sizeof(sec), &sl), 0);
	assert_int_equal(t_activate(t.ek, name, blob, bl, sec, sl, got, &gl),
	    0);
	assert_int_equal(gl, sizeof(cred));
	assert_memory_equal(got, cred, sizeof(cred));
	/* Another AK's name: the TPM's integrity check fails. */
	name[10] ^= 1;
	assert_int_equal(t_activate(t.ek, name, blob, bl, sec, sl, got, &gl),
	    -2);
	name[10] ^= 1;
	/* A flipped bit of the encrypted credential: likewise. */
	blob[bl - 1] ^= 0x40;
	assert_int_equal(t_activate(t.ek, name, blob, bl, sec, sl, got, &gl),
	    -2);
	blob[bl - 1] ^= 0x40;
	/* Another EK cannot open the seed. */
	assert_int_equal(t_activate(t.ek2, name, blob, bl, sec, sl, got, &gl),
	    -1);
	/* Shorter credentials too; none empty or too long. */
	assert_int_equal(tpmv_make_credential(ekpub, name, cred, 16, &id,
	    &es), 0);
	bl = sl = 0;
	assert_int_equal(Tss2_MU_TPM2B_ID_OBJECT_Marshal(&id, blob,
	    sizeof(blob), &bl), 0);
	assert_int_equal(Tss2_MU_TPM2B_ENCRYPTED_SECRET_Marshal(&es, sec,
	    sizeof(sec), &sl), 0);
	assert_int_equal(t_activate(t.ek, name, blob, bl, sec, sl, got, &gl),
	    0);
	assert_int_equal(gl, 16);
	assert_int_equal(tpmv_make_credential(ekpub, name, cred, 0, &id,
	    &es), WICK_ERR_INVALID);
	assert_int_equal(tpmv_make_credential(ekpub, name, cred, 33, &id,
	    &es), WICK_ERR_INVALID);
	EVP_PKEY_free(ekpub);
}

/* ---- whole attestations -------------------------------------------------- */

static void
test_attest_chain_ecc(void **state)
{
	struct run		 r;
	struct tpmv_result	 res;
	const uint32_t		 pcrs[] = { 16, 7 };
	char			 why[TPMV_MAX_WHY], h[65], v[256], fp[65];
	json_t			*d;
	unsigned char		 md[32];
	unsigned		 mdlen, i;

	start(&r, t.cfg_both, t.ek, t.ekcert, t.ak256, pcrs, 2);
	/* Config's 0, 1 and the agent's 7, 16, ascending. */
	assert_int_equal(r.ch->n_pcrs, 4);
	assert_int_equal(r.ch->pcrs[0], 0);
	assert_int_equal(r.ch->pcrs[1], 1);
	assert_int_equal(r.ch->pcrs[2], 7);
	assert_int_equal(r.ch->pcrs[3], 16);
	hash_of(t.ek, h);
	assert_string_equal(tpmv_state_pub_hash(r.st), h);
	assert_non_null(d = tpmv_state_detail(r.st));
	assert_string_equal(json_string_value(json_object_get(d, "type")),
	    "tpm");
	assert_string_equal(json_string_value(json_object_get(d,
	    "trusted_by")), "ek_cert");
	assert_string_equal(json_string_value(json_object_get(d,
	    "pub_hash")), h);
	json_decref(d);
	assert_int_equal(answer(&r, NULL, &res, why, sizeof(why)), 0);
	assert_string_equal(why, "");
	assert_string_equal(res.pub_hash, h);
	assert_int_equal(res.ek_cert_verified, 1);
	snprintf(v, sizeof(v), "pub_hash:%s", h);
	assert_true(has(&res, v));
	assert_true(has(&res, "ek_cert:issuer:cn:" INT_CN));
	assert_true(has(&res, "manufacturer:" MFR));
	/* Both CA certificates of the chain, by SHA-256 of their DER. */
	assert_int_equal(X509_digest(t.inter, EVP_sha256(), md, &mdlen), 1);
	for (i = 0; i < 32; i++)
		snprintf(fp + 2 * i, 3, "%02x", md[i]);
	snprintf(v, sizeof(v), "ek_cert:ca:fingerprint:%s", fp);
	assert_true(has(&res, v));
	assert_int_equal(X509_digest(t.root, EVP_sha256(), md, &mdlen), 1);
	for (i = 0; i < 32; i++)
		snprintf(fp + 2 * i, 3, "%02x", md[i]);
	snprintf(v, sizeof(v), "ek_cert:ca:fingerprint:%s", fp);
	assert_true(has(&res, v));
	/* PCR 7: 32 bytes of 7 * 7 + 1 = 0x32. */
	snprintf(v, sizeof(v), "pcr:sha256:7:");
	for (i = 0; i < 32; i++)
		strcat(v, "32");
	assert_true(has(&res, v));
	assert_true(has(&res, "pcr:sha256:0:"
	    "01010101010101010101010101010101"
	    "01010101010101010101010101010101"));
	/* pub_hash, issuer, manufacturer, 2 CAs, 4 PCRs. */
	assert_int_equal(res.selectors.n, 9);
	tpmv_result_cleanup(&res);
	assert_int_equal(answer(&r, NULL, &res, why, sizeof(why)),
	    WICK_ERR_STATE);
	assert_non_null(strstr(why, "answered already"));
	tpmv_result_cleanup(&res);
	finish(&r);
}

static void
test_attest_rsa_and_p384(void **state)
{
	struct run		r;
	struct tpmv_result	res;
	const uint32_t		pcrs[] = { 23 };
	char			why[TPMV_MAX_WHY];

	start(&r, t.cfg, t.ek, t.ekcert, t.akrsa, pcrs, 1);
	assert_int_equal(answer(&r, NULL, &res, why, sizeof(why)), 0);
	assert_int_equal(res.selectors.n, 1 + 1 + 1 + 2 + 1);
	tpmv_result_cleanup(&res);
	finish(&r);
	start(&r, t.cfg, t.ek, t.ekcert, t.ak384, NULL, 0);
	assert_int_equal(r.ch->n_pcrs, 0);
	assert_int_equal(answer(&r, NULL, &res, why, sizeof(why)), 0);
	assert_int_equal(res.selectors.n, 1 + 1 + 1 + 2);
	tpmv_result_cleanup(&res);
	finish(&r);
}

/* No PCRs asked: no bank, or a sha256 bank selecting none. */
static void
test_attest_no_pcrs(void **state)
{
	struct run		r;
	struct tpmv_result	res;
	struct qopt		o;
	char			why[TPMV_MAX_WHY];

	memset(&o, 0, sizeof(o));
	o.sel_count0 = 1;
	start(&r, t.cfg, t.ek, t.ekcert, t.ak256, NULL, 0);
	assert_int_equal(answer(&r, &o, &res, why, sizeof(why)), 0);
	tpmv_result_cleanup(&res);
	finish(&r);
	start(&r, t.cfg, t.ek, t.ekcert, t.ak256, NULL, 0);
	assert_int_equal(answer(&r, NULL, &res, why, sizeof(why)), 0);
	tpmv_result_cleanup(&res);
	finish(&r);
	/* Something selected where nothing was asked. */
	memset(&o, 0, sizeof(o));
	o.sel_set = 1;
	o.sel_mask = 1u << 4;
	start(&r, t.cfg, t.ek, t.ekcert, t.ak256, NULL, 0);
	assert_int_equal(answer(&r, &o, &res, why, sizeof(why)),
	    WICK_ERR_PERM);
	assert_non_null(strstr(why, "PCR selection"));
	finish(&r);
}

static void
test_attest_hash(void **state)
{
	struct run		r;
	struct tpmv_result	res;
	char			why[TPMV_MAX_WHY], h[65], v[128];
	json_t			*d;

	/* No certificate: the hash alone. */
	allow(t.ek, 1, 0644);
	start(&r, t.cfg_hash, t.ek, NULL, t.ak256, NULL, 0);
	assert_non_null(d = tpmv_state_detail(r.st));
	assert_string_equal(json_string_value(json_object_get(d,
	    "trusted_by")), "hash_path");
	json_decref(d);
	assert_int_equal(answer(&r, NULL, &res, why, sizeof(why)), 0);
	hash_of(t.ek, h);
	snprintf(v, sizeof(v), "pub_hash:%s", h);
	assert_int_equal(res.ek_cert_verified, 0);
	assert_int_equal(res.selectors.n, 1);
	assert_true(has(&res, v));
	tpmv_result_cleanup(&res);
	finish(&r);
	/* An untrusted certificate, the hash allowed: no cert selectors. */
	start(&r, t.cfg_both, t.ek, t.ekcert_other, t.ak256, NULL, 0);
	assert_int_equal(answer(&r, NULL, &res, why, sizeof(why)), 0);
	assert_int_equal(res.ek_cert_verified, 0);
	assert_int_equal(res.selectors.n, 1 + 2);	/* + config's PCRs */
	tpmv_result_cleanup(&res);
	finish(&r);
	/* A certificate and no ca_path, the hash allowed. */
	start(&r, t.cfg_hash, t.ek, t.ekcert, t.ak256, NULL, 0);
	finish(&r);
	allow(t.ek, 0, 0);
}

/* Params that fail: rc and a piece of why. */
static void
refused(const struct tpmv_config *cfg, const uint8_t *p, size_t len,
    int want, const char *part)
{
	struct tpmv_state	*st = (void *)1;
	struct buf		 ch;
	char			 why[TPMV_MAX_WHY];
	int			 rc;

	buf_init(&ch, TPMV_MAX_CHALLENGE);
	rc = tpmv_params(cfg, p, len, t.spki, t.spkilen, t.now, &st, &ch,
	    why, sizeof(why));
	if (rc != want || strstr(why, part) == NULL)
		fail_msg("got %d \"%s\", want %d \"...%s...\"", rc, why, want,
		    part);
	assert_null(st);
	assert_int_equal(buf_len(&ch), 0);
	buf_cleanup(&ch);
}

static void
refused_payload(const struct tpmv_config *cfg, EVP_PKEY *ek, X509 *cert,
    EVP_PKEY *ak, int want, const char *part)
{
	uint8_t	*p;
	size_t	 len;

	payload_of(ek, cert, ak, NULL, 0, &p, &len);
	refused(cfg, p, len, want, part);
	free(p);
}

static void
test_ek_trust(void **state)
{
	X509	*expired, *serveronly, *noeku;
	char	 h[65], want[160];

	/* Untrusted chain, no hash_path. */
	refused_payload(t.cfg, t.ek, t.ekcert_other, t.ak256, WICK_ERR_PERM,
	    "its certificate does not chain to ca_path: unable to get local "
	    "issuer certificate, and no hash_path is configured");
	hash_of(t.ek, h);
	snprintf(want, sizeof(want), "EK (pub_hash %s) is not trusted", h);
	refused_payload(t.cfg, t.ek, t.ekcert_other, t.ak256, WICK_ERR_PERM,
	    want);
	/* Untrusted chain, hash not listed. */
	refused_payload(t.cfg_both, t.ek, t.ekcert_other, t.ak256,
	    WICK_ERR_PERM, "and its pub_hash is not in hash_path");
	/* No certificate, no hash. */
	refused_payload(t.cfg_both, t.ek, NULL, t.ak256, WICK_ERR_PERM,
	    "its certificate was not sent, and its pub_hash is not in "
	    "hash_path");
	/* No certificate, no hash_path. */
	refused_payload(t.cfg, t.ek, NULL, t.ak256, WICK_ERR_PERM,
	    "was not sent, and no hash_path is configured");
	/* Certificate but no ca_path. */
	refused_payload(t.cfg_hash, t.ek, t.ekcert, t.ak256, WICK_ERR_PERM,
	    "cannot be verified: no ca_path is configured");
	/* The certificate of another EK. */
	refused_payload(t.cfg, t.ek, t.ek2cert, t.ak256, WICK_ERR_INVALID,
	    "ek_cert is not for this EK");
	/* Expired. */
	expired = mkcert(t.ek, NULL, t.inter, t.intk, NULL, -7200, -3600);
	refused_payload(t.cfg, t.ek, expired, t.ak256, WICK_ERR_PERM,
	    "certificate has expired");
	/* An EKU that does not name EK certificates; none is fine. */
	serveronly = mkcert(t.ek, NULL, t.inter, t.intk, "serverAuth",
	    -3600, 3600);
	refused_payload(t.cfg, t.ek, serveronly, t.ak256, WICK_ERR_PERM,
	    "extended key usage without tcg-kp-EKCertificate");
	noeku = mkcert(t.ek2, NULL, t.inter, t.intk, NULL, -3600, 3600);
	{
		struct run r;

		start(&r, t.cfg, t.ek2, noeku, t.ak256, NULL, 0);
		finish(&r);
	}
	/* A hash file others may write is no allow-listing. */
	allow(t.ek, 1, 0666);
	refused_payload(t.cfg_both, t.ek, NULL, t.ak256, WICK_ERR_PERM,
	    "its hash_path entry is refused");
	allow(t.ek, 0, 0);
	X509_free(expired);
	X509_free(serveronly);
	X509_free(noeku);
}

/* An EK or AK public of the given shape, spoiled by f. */
static void
refused_public(int ak, void (*f)(TPMT_PUBLIC *), int want,
    const char *part)
{
	TPMT_PUBLIC	ep, ap;
	uint8_t		eb[TPMFIX_MAX_PUBLIC], ab[TPMFIX_MAX_PUBLIC], *p;
	size_t		el, al, len;

	ek_public(t.ek, &ep);
	ak_public(t.ak256, &ap);
	f(ak ? &ap : &ep);
	assert_int_equal(tpmfix_public(&ep, eb, &el), 0);
	assert_int_equal(tpmfix_public(&ap, ab, &al), 0);
	assert_int_equal(tpmfix_attestation(ak ? t.ekcert : NULL, eb, el, ab,
	    al, NULL, 0, &p, &len), 0);
	refused(t.cfg, p, len, want, part);
	free(p);
}

static void
ek_ecc(TPMT_PUBLIC *p)
{
	ak_public(t.ak256, p);
	p->objectAttributes = EK_ATTRS;
	p->parameters.eccDetail.scheme.scheme = TPM2_ALG_NULL;
}
static void ek_sha1(TPMT_PUBLIC *p) { p->nameAlg = TPM2_ALG_SHA1; }
static void ek_userauth(TPMT_PUBLIC *p)
{ p->objectAttributes |= TPMA_OBJECT_USERWITHAUTH; }
static void ek_unrestricted(TPMT_PUBLIC *p)
{ p->objectAttributes &= ~TPMA_OBJECT_RESTRICTED; }
static void ek_policy_bad(TPMT_PUBLIC *p) { p->authPolicy.buffer[3] ^= 1; }
static void ek_aes256(TPMT_PUBLIC *p)
{ p->parameters.rsaDetail.symmetric.keyBits.aes = 256; }
static void ek_1024(TPMT_PUBLIC *p)
{ p->parameters.rsaDetail.keyBits = 1024; p->unique.rsa.size = 128; }
static void ek_short_mod(TPMT_PUBLIC *p) { p->unique.rsa.size = 255; }
static void ek_exp(TPMT_PUBLIC *p)
{ p->parameters.rsaDetail.exponent = 65537; }
static void ek_even(TPMT_PUBLIC *p) { p->unique.rsa.buffer[255] &= 0xfe; }

static void ak_unrestricted(TPMT_PUBLIC *p)
{ p->objectAttributes &= ~TPMA_OBJECT_RESTRICTED; }
static void ak_decrypt(TPMT_PUBLIC *p)
{ p->objectAttributes |= TPMA_OBJECT_DECRYPT; }
static void ak_nosign(TPMT_PUBLIC *p)
{ p->objectAttributes &= ~TPMA_OBJECT_SIGN_ENCRYPT; }
static void ak_notfixed(TPMT_PUBLIC *p)
{ p->objectAttributes &= ~TPMA_OBJECT_FIXEDTPM; }
static void ak_notsdo(TPMT_PUBLIC *p)
{ p->objectAttributes &= ~TPMA_OBJECT_SENSITIVEDATAORIGIN; }
static void ak_sha384(TPMT_PUBLIC *p) { p->nameAlg = TPM2_ALG_SHA384; }
static void ak_p521(TPMT_PUBLIC *p)
{ p->parameters.eccDetail.curveID = TPM2_ECC_NIST_P521; }
static void ak_ecdsa384(TPMT_PUBLIC *p)
{ p->parameters.eccDetail.scheme.details.ecdsa.hashAlg = TPM2_ALG_SHA384; }
static void ak_ecdaa(TPMT_PUBLIC *p)
{ p->parameters.eccDetail.scheme.scheme = TPM2_ALG_ECSCHNORR; }
static void ak_offcurve(TPMT_PUBLIC *p) { p->unique.ecc.y.buffer[31] ^= 1; }
static void ak_sym(TPMT_PUBLIC *p)
{
	p->parameters.eccDetail.symmetric.algorithm = TPM2_ALG_AES;
	p->parameters.eccDetail.symmetric.keyBits.aes = 128;
	p->parameters.eccDetail.symmetric.mode.aes = TPM2_ALG_CFB;
}
static void ak_keyedhash(TPMT_PUBLIC *p)
{
	memset(&p->parameters, 0, sizeof(p->parameters));
	memset(&p->unique, 0, sizeof(p->unique));
	p->type = TPM2_ALG_KEYEDHASH;
	p->parameters.keyedHashDetail.scheme.scheme = TPM2_ALG_NULL;
	p->unique.keyedHash.size = 32;
}

static void
test_ek_shape(void **state)
{
	refused_public(0, ek_ecc, WICK_ERR_UNSUPPORTED, "EK: type 0x0023");
	refused_public(0, ek_sha1, WICK_ERR_UNSUPPORTED, "EK: nameAlg 0x0004");
	refused_public(0, ek_userauth, WICK_ERR_INVALID,
	    "EK: attributes 0x000300f2 are not those of template L-1");
	refused_public(0, ek_unrestricted, WICK_ERR_INVALID,
	    "EK: attributes 0x000200b2");
	refused_public(0, ek_policy_bad, WICK_ERR_INVALID, "EK: authPolicy");
	refused_public(0, ek_aes256, WICK_ERR_UNSUPPORTED,
	    "EK: symmetric algorithm is not AES-128-CFB");
	refused_public(0, ek_1024, WICK_ERR_UNSUPPORTED,
	    "EK: the key is not RSA-2048 (keyBits 1024");
	refused_public(0, ek_short_mod, WICK_ERR_UNSUPPORTED,
	    "a modulus of 255 bytes");
	refused_public(0, ek_exp, WICK_ERR_INVALID, "EK: exponent 65537");
	refused_public(0, ek_even, WICK_ERR_INVALID,
	    "EK: the RSA public key is not valid");
}

static void
test_ak_shape(void **state)
{
	TPMT_PUBLIC	ap;
	uint8_t		eb[TPMFIX_MAX_PUBLIC], ab[TPMFIX_MAX_PUBLIC], *p;
	size_t		el, al, len;

	refused_public(1, ak_unrestricted, WICK_ERR_INVALID,
	    "AK: attribute restricted is not set");
	refused_public(1, ak_decrypt, WICK_ERR_INVALID,
	    "AK: attribute decrypt is set");
	refused_public(1, ak_nosign, WICK_ERR_INVALID,
	    "AK: attribute sign is not set");
	refused_public(1, ak_notfixed, WICK_ERR_INVALID,
	    "AK: attribute fixedTPM is not set");
	refused_public(1, ak_notsdo, WICK_ERR_INVALID,
	    "AK: attribute sensitiveDataOrigin is not set");
	refused_public(1, ak_sha384, WICK_ERR_UNSUPPORTED,
	    "AK: nameAlg 0x000c is not SHA-256");
	refused_public(1, ak_p521, WICK_ERR_UNSUPPORTED,
	    "AK: ECC curve 0x0005");
	refused_public(1, ak_ecdsa384, WICK_ERR_UNSUPPORTED,
	    "AK: ECC scheme 0x0018 is not ECDSA with SHA-256");
	refused_public(1, ak_ecdaa, WICK_ERR_UNSUPPORTED,
	    "AK: ECC scheme 0x001c");
	refused_public(1, ak_offcurve, WICK_ERR_INVALID,
	    "AK: the public key is not valid");
	refused_public(1, ak_sym, WICK_ERR_INVALID,
	    "AK: a signing key with a symmetric algorithm");
	refused_public(1, ak_keyedhash, WICK_ERR_UNSUPPORTED,
	    "AK: type 0x0008 is neither RSA nor ECC");
	/* RSA AKs: small, and another scheme. */
	{
		EVP_PKEY *small = EVP_RSA_gen(1024);

		assert_non_null(small);
		ak_public(small, &ap);
		EVP_PKEY_free(small);
	}
	{
		TPMT_PUBLIC ep;

		ek_public(t.ek, &ep);
		assert_int_equal(tpmfix_public(&ep, eb, &el), 0);
	}
	assert_int_equal(tpmfix_public(&ap, ab, &al), 0);
	assert_int_equal(tpmfix_attestation(t.ekcert, eb, el, ab, al, NULL, 0,
	    &p, &len), 0);
	refused(t.cfg, p, len, WICK_ERR_UNSUPPORTED,
	    "AK: an RSA key of 1024 bits");
	free(p);
	ak_public(t.akrsa, &ap);
	ap.parameters.rsaDetail.scheme.scheme = TPM2_ALG_RSAPSS;
	assert_int_equal(tpmfix_public(&ap, ab, &al), 0);
	assert_int_equal(tpmfix_attestation(t.ekcert, eb, el, ab, al, NULL, 0,
	    &p, &len), 0);
	refused(t.cfg, p, len, WICK_ERR_UNSUPPORTED,
	    "AK: RSA scheme 0x0016 is not RSASSA");
	free(p);
	/* An even modulus, an even exponent. */
	ak_public(t.akrsa, &ap);
	ap.unique.rsa.buffer[ap.unique.rsa.size - 1] &= 0xfe;
	assert_int_equal(tpmfix_public(&ap, ab, &al), 0);
	assert_int_equal(tpmfix_attestation(t.ekcert, eb, el, ab, al, NULL, 0,
	    &p, &len), 0);
	refused(t.cfg, p, len, WICK_ERR_INVALID,
	    "AK: the public key is not valid");
	free(p);
	ak_public(t.akrsa, &ap);
	ap.parameters.rsaDetail.exponent = 65536;
	assert_int_equal(tpmfix_public(&ap, ab, &al), 0);
	assert_int_equal(tpmfix_attestation(t.ekcert, eb, el, ab, al, NULL, 0,
	    &p, &len), 0);
	refused(t.cfg, p, len, WICK_ERR_INVALID,
	    "AK: the public key is not valid");
	free(p);
}

/* Malformed and oversized payloads. */
static void
test_payload_bounds(void **state)
{
	Wick__Tpm__TpmAttestation	 m = WICK__TPM__TPM_ATTESTATION__INIT;
	TPMT_PUBLIC			 ep, ap;
	uint8_t				 eb[TPMFIX_MAX_PUBLIC + 8];
	uint8_t				 ab[TPMFIX_MAX_PUBLIC];
	uint8_t				*big, *zeros, *p, *der = NULL;
	uint32_t			 pcrs[25];
	size_t				 el, al, len, i;
	int				 n;
	struct buf			 ch;
	struct tpmv_state		*st;
	char				 why[TPMV_MAX_WHY];

	refused(t.cfg, (const uint8_t *)"\xff\xff\xff", 3, WICK_ERR_INVALID,
	    "not a TpmAttestation message");
	assert_non_null(big = calloc(1, TPMV_MAX_PAYLOAD + 1));
	assert_non_null(zeros = calloc(1, TPMV_MAX_EK_CERT + 1));
	refused(t.cfg, big, TPMV_MAX_PAYLOAD + 1, WICK_ERR_LIMIT,
	    "too large");
	refused(t.cfg, big, 0, WICK_ERR_INVALID, "ek_pub is missing");
	ek_public(t.ek, &ep);
	ak_public(t.ak256, &ap);
	assert_int_equal(tpmfix_public(&ep, eb, &el), 0);
	assert_int_equal(tpmfix_public(&ap, ab, &al), 0);
	m.ek_pub.data = eb;
	m.ek_pub.len = el;
	m.ak_pub.data = ab;
	m.ak_pub.len = al;
	assert_true((n = i2d_X509(t.ekcert, &der)) > 0);
	m.ek_cert.data = der;
	m.ek_cert.len = (size_t)n;
	/* Without an AK. */
	m.ak_pub.len = 0;
	len = wick__tpm__tpm_attestation__pack(&m, big);
	refused(t.cfg, big, len, WICK_ERR_INVALID, "ak_pub is missing");
	m.ak_pub.len = al;
	/* Too many PCRs, or one past 23. */
	for (i = 0; i < 25; i++)
		pcrs[i] = (uint32_t)i % 24;
	m.pcrs = pcrs;
	m.n_pcrs = 25;
	len = wick__tpm__tpm_attestation__pack(&m, big);
	refused(t.cfg, big, len, WICK_ERR_LIMIT, "too many PCRs");
	pcrs[0] = 24;
	m.n_pcrs = 1;
	len = wick__tpm__tpm_attestation__pack(&m, big);
	refused(t.cfg, big, len, WICK_ERR_INVALID, "PCR 24 asked for");
	m.n_pcrs = 0;
	/* An EK public past its bound, and cut short. */
	m.ek_pub.len = TPMV_MAX_PUBLIC + 1;
	m.ek_pub.data = zeros;
	len = wick__tpm__tpm_attestation__pack(&m, big);
	refused(t.cfg, big, len, WICK_ERR_LIMIT, "ek_pub is too large");
	m.ek_pub.data = eb;
	m.ek_pub.len = el - 1;
	len = wick__tpm__tpm_attestation__pack(&m, big);
	refused(t.cfg, big, len, WICK_ERR_INVALID,
	    "EK: the TPM2B_PUBLIC is truncated");
	eb[el] = 0;
	m.ek_pub.len = el + 1;
	len = wick__tpm__tpm_attestation__pack(&m, big);
	refused(t.cfg, big, len, WICK_ERR_INVALID,
	    "EK: 1 bytes follow the TPM2B_PUBLIC");
	m.ek_pub.len = el;
	/* An AK public with a trailing byte. */
	ab[al] = 0;
	m.ak_pub.len = al + 1;
	len = wick__tpm__tpm_attestation__pack(&m, big);
	refused(t.cfg, big, len, WICK_ERR_INVALID,
	    "AK: 1 bytes follow the TPM2B_PUBLIC");
	m.ak_pub.len = al;
	/* An EK certificate: too large, not DER, trailing bytes. */
	m.ek_cert.data = zeros;
	m.ek_cert.len = TPMV_MAX_EK_CERT + 1;
	len = wick__tpm__tpm_attestation__pack(&m, big);
	refused(t.cfg, big, len, WICK_ERR_LIMIT, "ek_cert is too large");
	assert_non_null(p = malloc((size_t)n + 1));
	memcpy(p, der, (size_t)n);
	p[n] = 0;
	m.ek_cert.data = p;
	m.ek_cert.len = (size_t)n + 1;
	len = wick__tpm__tpm_attestation__pack(&m, big);
	refused(t.cfg, big, len, WICK_ERR_INVALID,
	    "ek_cert is not one DER certificate");
	m.ek_cert.len = (size_t)n - 1;
	len = wick__tpm__tpm_attestation__pack(&m, big);
	refused(t.cfg, big, len, WICK_ERR_INVALID,
	    "ek_cert is not one DER certificate");
	/* The CSR key must be there; a challenge buffer too small. */
	m.ek_cert.len = (size_t)n;
	len = wick__tpm__tpm_attestation__pack(&m, big);
	buf_init(&ch, 64);
	assert_int_equal(tpmv_params(t.cfg, big, len, t.spki, 0, t.now, &st,
	    &ch, why, sizeof(why)), WICK_ERR_INVALID);
	assert_non_null(strstr(why, "the CSR's public key is missing"));
	assert_int_equal(tpmv_params(t.cfg, big, len, t.spki, t.spkilen,
	    t.now, &st, &ch, why, sizeof(why)), WICK_ERR_LIMIT);
	assert_null(st);
	assert_int_equal(buf_len(&ch), 0);
	buf_cleanup(&ch);
	/* Not configured. */
	refused(NULL, big, len, WICK_ERR_STATE, "not configured");
	free(p);
	OPENSSL_free(der);
	free(zeros);
	free(big);
}

/* ---- answers that fail --------------------------------------------------- */

static void
test_answer_secret(void **state)
{
	struct qopt o;

	memset(&o, 0, sizeof(o));
	o.wrong_secret = 1;
	spoiled(&o, WICK_ERR_PERM, "credential activation failed: the secret "
	    "is not the one sealed");
	memset(&o, 0, sizeof(o));
	o.short_secret = 1;
	spoiled(&o, WICK_ERR_PERM, "the secret has 16 bytes, not 32");
}

static void
test_answer_binding(void **state)
{
	struct qopt o;

	memset(&o, 0, sizeof(o));
	o.wrong_nonce = 1;
	spoiled(&o, WICK_ERR_PERM, "qualifying data is not SHA-256(nonce || "
	    "CSR key)");
	memset(&o, 0, sizeof(o));
	o.nonce_only = 1;
	spoiled(&o, WICK_ERR_PERM, "not made for this challenge and CSR");
	memset(&o, 0, sizeof(o));
	o.magic = 0xff544348;
	spoiled(&o, WICK_ERR_PERM, "not generated by the TPM (magic "
	    "0xff544348)");
	memset(&o, 0, sizeof(o));
	o.type = TPM2_ST_ATTEST_CERTIFY;
	spoiled(&o, WICK_ERR_PERM, "not a quote (type 0x8017)");
}

static void
test_answer_pcrs(void **state)
{
	struct qopt o;

	/* The challenge asks for 0, 1 (config) and 16. */
	memset(&o, 0, sizeof(o));
	o.sel_set = 1;
	o.sel_mask = 1u << 0 | 1u << 1;
	spoiled(&o, WICK_ERR_PERM, "PCR selection is not the 3 sha256 PCRs");
	memset(&o, 0, sizeof(o));
	o.sel_set = 1;
	o.sel_mask = 1u << 0 | 1u << 1 | 1u << 16 | 1u << 17;
	spoiled(&o, WICK_ERR_PERM, "PCR selection");
	memset(&o, 0, sizeof(o));
	o.sel_sha1 = 1;
	spoiled(&o, WICK_ERR_PERM, "PCR selection");
	memset(&o, 0, sizeof(o));
	o.sel_count0 = 1;
	spoiled(&o, WICK_ERR_PERM, "PCR selection");
	memset(&o, 0, sizeof(o));
	o.sel_size = 2;
	spoiled(&o, WICK_ERR_PERM, "PCR selection");
	memset(&o, 0, sizeof(o));
	o.bad_digest = 1;
	spoiled(&o, WICK_ERR_PERM, "PCR digest is not the digest of the PCR "
	    "values");
	memset(&o, 0, sizeof(o));
	o.values_delta = -1;
	spoiled(&o, WICK_ERR_INVALID, "2 PCR values for 3 quoted PCRs");
	memset(&o, 0, sizeof(o));
	o.values_delta = 1;
	spoiled(&o, WICK_ERR_INVALID, "4 PCR values for 3 quoted PCRs");
	memset(&o, 0, sizeof(o));
	o.short_value = 1;
	spoiled(&o, WICK_ERR_INVALID, "PCR value 2 has 31 bytes");
}

static void
test_answer_signature(void **state)
{
	struct qopt	o;
	EVP_PKEY	*other;

	memset(&o, 0, sizeof(o));
	o.flip_sig = 1;
	spoiled(&o, WICK_ERR_SIGNATURE, "signature does not verify with the "
	    "AK");
	assert_non_null(other = ec_key("P-256"));
	memset(&o, 0, sizeof(o));
	o.signer = other;
	spoiled(&o, WICK_ERR_SIGNATURE, "does not verify with the AK");
	EVP_PKEY_free(other);
	/* An RSA AK's quote signed with RSAPSS's tag. */
	memset(&o, 0, sizeof(o));
	o.signer = t.akrsa;
	o.sig_alg = TPM2_ALG_RSAPSS;
	spoiled(&o, WICK_ERR_INVALID, "signature algorithm 0x0016 is not the "
	    "AK's (0x0014)");
	/* An ECC AK's quote with an RSA signature. */
	memset(&o, 0, sizeof(o));
	o.signer = t.ek;
	spoiled(&o, WICK_ERR_INVALID, "signature algorithm 0x0014 is not the "
	    "AK's (0x0018)");
}

static void
test_answer_structures(void **state)
{
	struct qopt		 o;
	struct run		 r;
	struct tpmv_result	 res;
	uint8_t			*big;
	char			 why[TPMV_MAX_WHY];

	memset(&o, 0, sizeof(o));
	o.quote_trunc = 1;
	spoiled(&o, WICK_ERR_INVALID, "the quote (TPM2B_ATTEST) is empty or "
	    "truncated");
	memset(&o, 0, sizeof(o));
	o.quote_trail = 1;
	spoiled(&o, WICK_ERR_INVALID, "1 bytes follow the quote");
	memset(&o, 0, sizeof(o));
	o.attest_trail = 1;
	spoiled(&o, WICK_ERR_INVALID, "1 bytes follow the TPMS_ATTEST inside "
	    "the quote");
	memset(&o, 0, sizeof(o));
	o.sig_trail = 1;
	spoiled(&o, WICK_ERR_INVALID, "1 bytes follow the quote's signature");
	memset(&o, 0, sizeof(o));
	o.sig_trunc = 1;
	spoiled(&o, WICK_ERR_INVALID, "signature is not a TPMT_SIGNATURE");
	/* Not a message, too large, no state. */
	start(&r, t.cfg, t.ek, t.ekcert, t.ak256, NULL, 0);
	assert_int_equal(tpmv_answer(r.st, (const uint8_t *)"\xff\xff", 2,
	    &res, why, sizeof(why)), WICK_ERR_INVALID);
	assert_non_null(strstr(why, "not a TpmChallengeResponse message"));
	finish(&r);
	start(&r, t.cfg, t.ek, t.ekcert, t.ak256, NULL, 0);
	assert_non_null(big = calloc(1, TPMV_MAX_RESPONSE + 1));
	assert_int_equal(tpmv_answer(r.st, big, TPMV_MAX_RESPONSE + 1,
	    &res, why, sizeof(why)), WICK_ERR_LIMIT);
	assert_non_null(strstr(why, "too large"));
	free(big);
	finish(&r);
	assert_int_equal(tpmv_answer(NULL, NULL, 0, &res, why, sizeof(why)),
	    WICK_ERR_STATE);
	/* An empty answer: no secret. */
	start(&r, t.cfg, t.ek, t.ekcert, t.ak256, NULL, 0);
	assert_int_equal(tpmv_answer(r.st, (const uint8_t *)"", 0, &res,
	    why, sizeof(why)), WICK_ERR_PERM);
	assert_non_null(strstr(why, "the secret has 0 bytes"));
	finish(&r);
}

/* ---- configuration ------------------------------------------------------- */

static void
config_refused(const char *ca, const char *hash, const char *pcrs,
    const char *part)
{
	struct tpmv_config	*cfg = (void *)1;
	char			 why[TPMV_MAX_WHY];
	int			 rc;

	rc = tpmv_config_load(ca, hash, pcrs, &cfg, why, sizeof(why));
	if (rc == 0 || strstr(why, part) == NULL)
		fail_msg("got %d \"%s\", want \"...%s...\"", rc, why, part);
	assert_null(cfg);
}

static void
test_config(void **state)
{
	struct tpmv_config	*cfg;
	char			 why[TPMV_MAX_WHY], path[256], p2[256];
	FILE			*f;

	config_refused(NULL, NULL, NULL, "needs ca_path");
	config_refused(NULL, t.hashdir, "sha1:0", "pcrs \"sha1:0\": ");
	config_refused(NULL, t.hashdir, "sha256:0,24", "pcrs \"sha256:0,24\"");
	config_refused(NULL, t.hashdir, "sha256:1,1", "listed twice");
	config_refused(NULL, t.hashdir, "", "pcrs \"\"");
	snprintf(path, sizeof(path), "%s/nothing", t.dir);
	config_refused(path, NULL, NULL, "No such file or directory");
	config_refused(NULL, path, NULL, "No such file or directory");
	config_refused(NULL, t.cafile, NULL, "not a directory");
	config_refused("", NULL, NULL, "ca_path is empty");
	config_refused(NULL, "", NULL, "hash_path is empty");
	/* A directory: the root and the intermediate in two files. */
	snprintf(path, sizeof(path), "%s/1-root.pem", t.cadir);
	write_pem(path, t.root, NULL, 0644);
	snprintf(path, sizeof(path), "%s/2-inter.pem", t.cadir);
	write_pem(path, t.inter, NULL, 0644);
	snprintf(path, sizeof(path), "%s/.hidden", t.cadir);
	assert_non_null(f = fopen(path, "w"));
	fclose(f);
	assert_int_equal(tpmv_config_load(t.cadir, NULL, "sha256:7", &cfg,
	    why, sizeof(why)), 0);
	{
		struct run		r;
		struct tpmv_result	res;

		start(&r, cfg, t.ek, t.ekcert, t.ak256, NULL, 0);
		assert_int_equal(r.ch->n_pcrs, 1);
		assert_int_equal(r.ch->pcrs[0], 7);
		assert_int_equal(answer(&r, NULL, &res, why, sizeof(why)), 0);
		assert_int_equal(res.ek_cert_verified, 1);
		tpmv_result_cleanup(&res);
		finish(&r);
	}
	tpmv_config_free(cfg);
	/* The intermediate alone is no root. */
	snprintf(path, sizeof(path), "%s/2-inter.pem", t.cadir);
	config_refused(path, NULL, NULL, "no self-signed (root) certificate");
	/* A file that is no PEM, in a directory. */
	snprintf(p2, sizeof(p2), "%s/3-junk.pem", t.cadir);
	assert_non_null(f = fopen(p2, "w"));
	fputs("not a certificate\n", f);
	fclose(f);
	config_refused(t.cadir, NULL, NULL, "3-junk.pem: not a PEM file");
	/* One others may write. */
	unlink(p2);
	assert_int_equal(chmod(path, 0666), 0);
	config_refused(t.cadir, NULL, NULL, "ca_path: ");
	assert_int_equal(chmod(path, 0644), 0);
	/* A relative hash_path is made absolute. */
	assert_int_equal(chdir(t.dir), 0);
	assert_int_equal(tpmv_config_load(NULL, "hashes", NULL, &cfg, why,
	    sizeof(why)), 0);
	assert_int_equal(chdir("/"), 0);
	allow(t.ek, 1, 0644);
	{
		struct run r;

		start(&r, cfg, t.ek, NULL, t.ak256, NULL, 0);
		finish(&r);
	}
	allow(t.ek, 0, 0);
	tpmv_config_free(cfg);
	/* tss2-mu's own error lines are off unless TSS2_LOG says more. */
	assert_non_null(getenv("TSS2_LOG"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_kdfa_vectors),
		cmocka_unit_test(test_ak_name),
		cmocka_unit_test(test_public_parse),
		cmocka_unit_test(test_make_credential),
		cmocka_unit_test(test_attest_chain_ecc),
		cmocka_unit_test(test_attest_rsa_and_p384),
		cmocka_unit_test(test_attest_no_pcrs),
		cmocka_unit_test(test_attest_hash),
		cmocka_unit_test(test_ek_trust),
		cmocka_unit_test(test_ek_shape),
		cmocka_unit_test(test_ak_shape),
		cmocka_unit_test(test_payload_bounds),
		cmocka_unit_test(test_answer_secret),
		cmocka_unit_test(test_answer_binding),
		cmocka_unit_test(test_answer_pcrs),
		cmocka_unit_test(test_answer_signature),
		cmocka_unit_test(test_answer_structures),
		cmocka_unit_test(test_config),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
