/*
 * tpmv.c: TPM node attestation, the server's side.
 *
 * The TPM structures are parsed with tss2-mu, never trusting its TPM2B
 * wrappers: a TPM2B_PUBLIC or TPM2B_ATTEST is unwrapped here, and the
 * structure inside must fill it exactly.  Everything else is OpenSSL:
 * the EK certificate chain, RSA-OAEP, KDFa, AES-CFB and HMAC for
 * MakeCredential, the AK's signature over the quote.
 */
#include <sys/stat.h>

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/param_build.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <tss2/tss2_mu.h>

#include "encode.h"
#include "pcrsel.h"
#include "secpath.h"
#include "tpm.pb-c.h"
#include "tpmv.h"
#include "tpmv_int.h"
#include "x509.h"
#include "xmalloc.h"

/* tcg-kp-EKCertificate, tcg-at-tpmManufacturer */
#define EKU_EK_CERT_OID		"2.23.133.8.1"
#define TPM_MANUFACTURER_OID	"2.23.133.2.1"
#define SHA256_LEN		32
#define EK_BITS			2048
#define PCR_SELECT_BYTES	3	/* 24 PCRs */
#define SUB_WHY			256	/* a part of a why */

const uint8_t tpmv_ek_policy[32] = {
	0x83, 0x71, 0x97, 0x67, 0x44, 0x84, 0xb3, 0xf8,
	0x1a, 0x90, 0xcc, 0x8d, 0x46, 0xa5, 0xd7, 0x24,
	0xfd, 0x52, 0xd7, 0x6e, 0x06, 0x52, 0x0b, 0x64,
	0xf2, 0xa1, 0xda, 0x1b, 0x33, 0x14, 0x69, 0xaa,
};

struct tpmv_config {
	X509_STORE	*roots;		/* self-signed; NULL: none */
	STACK_OF(X509)	*intermediates;
	size_t		 ncerts;
	size_t		 nroots;
	char		*hash_path;	/* absolute; NULL without */
	uint32_t	 pcrs;		/* a bit per PCR */
};

struct tpmv_state {
	uint8_t			 secret[TPMV_SECRET_LEN];
	uint8_t			 qualifying[SHA256_LEN];
	EVP_PKEY		*ak;
	TPMI_ALG_SIG_SCHEME	 scheme;	/* RSASSA or ECDSA */
	size_t			 sig_len;	/* modulus, coordinate */
	uint32_t		 pcrs;
	int			 answered;
	int			 ek_cert_verified;
	char			 pub_hash[TPMV_PUB_HASH_LEN + 1];
	struct selector_set	 sel;	/* pub_hash, EK cert's */
};

static void
put_be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static int
sha256(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen,
    uint8_t out[SHA256_LEN])
{
	EVP_MD_CTX	*md;
	unsigned	 n = 0;
	int		 ok;

	if ((md = EVP_MD_CTX_new()) == NULL)
		return WICK_ERR_ALLOC;
	ok = EVP_DigestInit_ex(md, EVP_sha256(), NULL) &&
	    EVP_DigestUpdate(md, a, alen) &&
	    (blen == 0 || EVP_DigestUpdate(md, b, blen)) &&
	    EVP_DigestFinal_ex(md, out, &n) && n == SHA256_LEN;
	EVP_MD_CTX_free(md);
	return ok ? 0 : WICK_ERR_CRYPTO;
}

/* HMAC-SHA-256(key, a || b). */
static int
hmac_sha256(const uint8_t *key, size_t keylen, const uint8_t *a, size_t alen,
    const uint8_t *b, size_t blen, uint8_t out[SHA256_LEN])
{
	EVP_MAC		*mac = NULL;
	EVP_MAC_CTX	*ctx = NULL;
	OSSL_PARAM	 params[2];
	size_t		 n = 0;
	int		 ok;

	params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST,
	    (char *)"SHA256", 0);
	params[1] = OSSL_PARAM_construct_end();
	ok = (mac = EVP_MAC_fetch(NULL, "HMAC", NULL)) != NULL &&
	    (ctx = EVP_MAC_CTX_new(mac)) != NULL &&
	    EVP_MAC_init(ctx, key, keylen, params) &&
	    EVP_MAC_update(ctx, a, alen) &&
	    (blen == 0 || EVP_MAC_update(ctx, b, blen)) &&
	    EVP_MAC_final(ctx, out, &n, SHA256_LEN) && n == SHA256_LEN;
	EVP_MAC_CTX_free(ctx);
	EVP_MAC_free(mac);
	return ok ? 0 : WICK_ERR_CRYPTO;
}

/* ---- KDFa, names, MakeCredential ----------------------------------------- */

int
tpmv_kdfa(const uint8_t *key, size_t keylen, const char *label,
    const uint8_t *u, size_t ulen, const uint8_t *v, size_t vlen,
    unsigned bits, uint8_t *out)
{
	EVP_MAC		*mac = NULL;
	EVP_MAC_CTX	*ctx = NULL;
	OSSL_PARAM	 params[2];
	uint8_t		 ctr[4], total[4], block[SHA256_LEN];
	const uint8_t	 zero = 0;
	size_t		 done, n, blen;
	uint32_t	 i;
	int		 r = WICK_ERR_CRYPTO;

	if (keylen == 0 || label == NULL || *label == '\0' || bits == 0 ||
	    bits % 8 != 0 || bits > TPMV_KDFA_MAX_BITS)
		return WICK_ERR_INVALID;
	if ((mac = EVP_MAC_fetch(NULL, "HMAC", NULL)) == NULL ||
	    (ctx = EVP_MAC_CTX_new(mac)) == NULL)
		goto out;
	params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST,
	    (char *)"SHA256", 0);
	params[1] = OSSL_PARAM_construct_end();
	put_be32(total, bits);
	for (i = 1, done = 0; done < bits / 8; i++) {
		put_be32(ctr, i);
		if (!EVP_MAC_init(ctx, key, keylen, params) ||
		    !EVP_MAC_update(ctx, ctr, sizeof(ctr)) ||
		    !EVP_MAC_update(ctx, (const uint8_t *)label,
		    strlen(label)) ||
		    !EVP_MAC_update(ctx, &zero, 1) ||
		    (ulen > 0 && !EVP_MAC_update(ctx, u, ulen)) ||
		    (vlen > 0 && !EVP_MAC_update(ctx, v, vlen)) ||
		    !EVP_MAC_update(ctx, total, sizeof(total)) ||
		    !EVP_MAC_final(ctx, block, &blen, sizeof(block)) ||
		    blen != sizeof(block))
			goto out;
		n = bits / 8 - done;
		if (n > sizeof(block))
			n = sizeof(block);
		memcpy(out + done, block, n);
		done += n;
	}
	r = 0;
out:
	OPENSSL_cleanse(block, sizeof(block));
	EVP_MAC_CTX_free(ctx);
	EVP_MAC_free(mac);
	return r;
}

int
tpmv_name(const TPMT_PUBLIC *pub, uint8_t name[TPMV_NAME_LEN])
{
	uint8_t	buf[sizeof(TPMT_PUBLIC) + 64];
	size_t	off = 0;

	if (pub->nameAlg != TPM2_ALG_SHA256)
		return WICK_ERR_UNSUPPORTED;
	if (Tss2_MU_TPMT_PUBLIC_Marshal(pub, buf, sizeof(buf), &off) !=
	    TSS2_RC_SUCCESS)
		return WICK_ERR_INVALID;
	name[0] = (uint8_t)(TPM2_ALG_SHA256 >> 8);
	name[1] = (uint8_t)TPM2_ALG_SHA256;
	return sha256(buf, off, NULL, 0, name + 2);
}

int
tpmv_make_credential(EVP_PKEY *ek, const uint8_t name[TPMV_NAME_LEN],
    const uint8_t *cred, size_t credlen, TPM2B_ID_OBJECT *id_object,
    TPM2B_ENCRYPTED_SECRET *secret)
{
	static const char	 label[] = "IDENTITY";	/* and its NUL */
	EVP_PKEY_CTX		*pctx = NULL;
	EVP_CIPHER_CTX		*cctx = NULL;
	unsigned char		*lab = NULL;
	uint8_t			 seed[SHA256_LEN], symkey[16];
	uint8_t			 hmackey[SHA256_LEN];
	uint8_t			 plain[2 + TPMV_SECRET_LEN];
	uint8_t			 enc[2 + TPMV_SECRET_LEN];
	uint8_t			 iv[16], mac[SHA256_LEN];
	size_t			 enclen, outlen;
	int			 n, r = WICK_ERR_CRYPTO;

	memset(id_object, 0, sizeof(*id_object));
	memset(secret, 0, sizeof(*secret));
	if (credlen == 0 || credlen > TPMV_SECRET_LEN)
		return WICK_ERR_INVALID;
	if (RAND_priv_bytes(seed, sizeof(seed)) != 1)
		goto out;

	/* The seed, to the EK. */
	if ((pctx = EVP_PKEY_CTX_new_from_pkey(NULL, ek, NULL)) == NULL ||
	    EVP_PKEY_encrypt_init(pctx) <= 0 ||
	    EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_OAEP_PADDING) <= 0 ||
	    EVP_PKEY_CTX_set_rsa_oaep_md(pctx, EVP_sha256()) <= 0 ||
	    EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, EVP_sha256()) <= 0)
		goto out;
	if ((lab = OPENSSL_memdup(label, sizeof(label))) == NULL) {
		r = WICK_ERR_ALLOC;
		goto out;
	}
	if (EVP_PKEY_CTX_set0_rsa_oaep_label(pctx, lab, sizeof(label)) <= 0)
		goto out;
	lab = NULL;	/* the context's now */
	outlen = sizeof(secret->secret);
	if (EVP_PKEY_encrypt(pctx, secret->secret, &outlen, seed,
	    sizeof(seed)) <= 0 || outlen > UINT16_MAX)
		goto out;
	secret->size = (UINT16)outlen;

	/* The credential, under the seed's keys. */
	if ((r = tpmv_kdfa(seed, sizeof(seed), "STORAGE", name,
	    TPMV_NAME_LEN, NULL, 0, 8 * sizeof(symkey), symkey)) != 0 ||
	    (r = tpmv_kdfa(seed, sizeof(seed), "INTEGRITY", NULL, 0, NULL,
	    0, 8 * sizeof(hmackey), hmackey)) != 0)
		goto out;
	r = WICK_ERR_CRYPTO;
	plain[0] = (uint8_t)(credlen >> 8);
	plain[1] = (uint8_t)credlen;
	memcpy(plain + 2, cred, credlen);
	memset(iv, 0, sizeof(iv));
	if ((cctx = EVP_CIPHER_CTX_new()) == NULL ||
	    !EVP_EncryptInit_ex(cctx, EVP_aes_128_cfb128(), NULL, symkey,
	    iv) ||
	    !EVP_EncryptUpdate(cctx, enc, &n, plain, (int)(2 + credlen)) ||
	    n != (int)(2 + credlen))
		goto out;
	enclen = (size_t)n;
	if (!EVP_EncryptFinal_ex(cctx, enc + enclen, &n) || n != 0)
		goto out;
	if ((r = hmac_sha256(hmackey, sizeof(hmackey), enc, enclen, name,
	    TPMV_NAME_LEN, mac)) != 0)
		goto out;
	id_object->credential[0] = 0;
	id_object->credential[1] = SHA256_LEN;
	memcpy(id_object->credential + 2, mac, sizeof(mac));
	memcpy(id_object->credential + 2 + sizeof(mac), enc, enclen);
	id_object->size = (UINT16)(2 + sizeof(mac) + enclen);
	r = 0;
out:
	if (r != 0) {
		ERR_clear_error();
		memset(id_object, 0, sizeof(*id_object));
		memset(secret, 0, sizeof(*secret));
	}
	OPENSSL_free(lab);
	EVP_PKEY_CTX_free(pctx);
	EVP_CIPHER_CTX_free(cctx);
	OPENSSL_cleanse(seed, sizeof(seed));
	OPENSSL_cleanse(symkey, sizeof(symkey));
	OPENSSL_cleanse(hmackey, sizeof(hmackey));
	OPENSSL_cleanse(plain, sizeof(plain));
	return r;
}

/* ---- TPM structures ------------------------------------------------------ */

int
tpmv_public_parse(const uint8_t *p, size_t len, const char *what,
    TPMT_PUBLIC *out, char *why, size_t whylen)
{
	uint8_t	back[sizeof(TPMT_PUBLIC) + 64];
	size_t	size, off = 0, boff = 0;
	int	r;

	memset(out, 0, sizeof(*out));
	if (len < 2)
		return err_why(why, whylen, WICK_ERR_INVALID, "%s: the "
		    "TPM2B_PUBLIC is truncated (%zu bytes)", what, len);
	size = (size_t)p[0] << 8 | p[1];
	if (size == 0)
		return err_why(why, whylen, WICK_ERR_INVALID, "%s: the "
		    "TPM2B_PUBLIC is empty", what);
	if (size > len - 2)
		return err_why(why, whylen, WICK_ERR_INVALID, "%s: the "
		    "TPM2B_PUBLIC is truncated (%zu of %zu bytes)", what,
		    len - 2, size);
	if (size < len - 2)
		return err_why(why, whylen, WICK_ERR_INVALID, "%s: %zu bytes "
		    "follow the TPM2B_PUBLIC", what, len - 2 - size);
	if (Tss2_MU_TPMT_PUBLIC_Unmarshal(p + 2, size, &off, out) !=
	    TSS2_RC_SUCCESS)
		r = err_why(why, whylen, WICK_ERR_INVALID, "%s: the TPMT_PUBLIC "
		    "does not parse (truncated, or an algorithm tss2-mu does "
		    "not know)", what);
	else if (off != size)
		r = err_why(why, whylen, WICK_ERR_INVALID, "%s: %zu bytes follow "
		    "the TPMT_PUBLIC inside its TPM2B", what, size - off);
	else if (Tss2_MU_TPMT_PUBLIC_Marshal(out, back, sizeof(back),
	    &boff) != TSS2_RC_SUCCESS || boff != size ||
	    memcmp(back, p + 2, size) != 0)
		r = err_why(why, whylen, WICK_ERR_INVALID, "%s: the TPMT_PUBLIC "
		    "is not in its canonical form", what);
	else
		r = 0;
	if (r != 0)
		memset(out, 0, sizeof(*out));
	return r;
}

/*
 * A public key from its parameters.  An EC point must be on its curve.
 * OpenSSL's check of an RSA public key tests the modulus for primality,
 * milliseconds that any peer could make us spend: RSA keys get the
 * cheap checks in rsa_key() instead; a bad modulus cannot verify a
 * signature, and an EK is used only once it is trusted.
 */
static int
pkey_from_params(const char *type, OSSL_PARAM_BLD *bld, EVP_PKEY **out)
{
	EVP_PKEY_CTX	*ctx = NULL;
	OSSL_PARAM	*params = NULL;
	EVP_PKEY	*pk = NULL;
	int		 r = WICK_ERR_INVALID;

	if ((params = OSSL_PARAM_BLD_to_param(bld)) == NULL ||
	    (ctx = EVP_PKEY_CTX_new_from_name(NULL, type, NULL)) == NULL) {
		r = WICK_ERR_ALLOC;
		goto out;
	}
	if (EVP_PKEY_fromdata_init(ctx) <= 0 ||
	    EVP_PKEY_fromdata(ctx, &pk, EVP_PKEY_PUBLIC_KEY, params) <= 0)
		goto out;
	EVP_PKEY_CTX_free(ctx);
	ctx = NULL;
	if (strcmp(type, "EC") == 0) {
		if ((ctx = EVP_PKEY_CTX_new_from_pkey(NULL, pk, NULL)) ==
		    NULL) {
			r = WICK_ERR_ALLOC;
			goto out;
		}
		if (EVP_PKEY_public_check(ctx) != 1)
			goto out;
	}
	*out = pk;
	pk = NULL;
	r = 0;
out:
	ERR_clear_error();
	EVP_PKEY_free(pk);
	EVP_PKEY_CTX_free(ctx);
	OSSL_PARAM_free(params);
	return r;
}

static int
rsa_key(const uint8_t *n, size_t nlen, uint32_t e, EVP_PKEY **out)
{
	OSSL_PARAM_BLD	*bld = NULL;
	BIGNUM		*bn = NULL, *be = NULL;
	int		 r = WICK_ERR_ALLOC;

	/* An odd modulus, an odd exponent above 1 (0 is 65537). */
	if (nlen == 0 || (n[nlen - 1] & 1) == 0 || e == 1 ||
	    (e != 0 && (e & 1) == 0))
		return WICK_ERR_INVALID;
	if ((bld = OSSL_PARAM_BLD_new()) == NULL ||
	    (bn = BN_bin2bn(n, (int)nlen, NULL)) == NULL ||
	    (be = BN_new()) == NULL ||
	    !BN_set_word(be, e == 0 ? 65537 : e) ||
	    !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, bn) ||
	    !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, be))
		goto out;
	r = pkey_from_params("RSA", bld, out);
out:
	BN_free(bn);
	BN_free(be);
	OSSL_PARAM_BLD_free(bld);
	return r;
}

static int
ec_key(const char *group, size_t clen, const TPMS_ECC_POINT *pt,
    EVP_PKEY **out)
{
	OSSL_PARAM_BLD	*bld = NULL;
	uint8_t		 oct[1 + 2 * 66];
	int		 r = WICK_ERR_ALLOC;

	if (pt->x.size == 0 || pt->x.size > clen || pt->y.size == 0 ||
	    pt->y.size > clen || 2 * clen + 1 > sizeof(oct))
		return WICK_ERR_INVALID;
	memset(oct, 0, sizeof(oct));
	oct[0] = POINT_CONVERSION_UNCOMPRESSED;
	memcpy(oct + 1 + clen - pt->x.size, pt->x.buffer, pt->x.size);
	memcpy(oct + 1 + 2 * clen - pt->y.size, pt->y.buffer, pt->y.size);
	if ((bld = OSSL_PARAM_BLD_new()) == NULL ||
	    !OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME,
	    group, 0) ||
	    !OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY,
	    oct, 1 + 2 * clen))
		goto out;
	r = pkey_from_params("EC", bld, out);
out:
	OSSL_PARAM_BLD_free(bld);
	return r;
}

/* The OpenSSL group name and coordinate size of the curves we take. */
static int
ecc_curve(TPMI_ECC_CURVE curve, const char **group, size_t *clen)
{
	switch (curve) {
	case TPM2_ECC_NIST_P256:
		*group = "prime256v1";
		*clen = 32;
		return 0;
	case TPM2_ECC_NIST_P384:
		*group = "secp384r1";
		*clen = 48;
		return 0;
	}
	return WICK_ERR_UNSUPPORTED;
}

int
tpmv_public_key(const TPMT_PUBLIC *pub, EVP_PKEY **out)
{
	const char	*group;
	size_t		 clen;

	*out = NULL;
	switch (pub->type) {
	case TPM2_ALG_RSA:
		return rsa_key(pub->unique.rsa.buffer, pub->unique.rsa.size,
		    pub->parameters.rsaDetail.exponent, out);
	case TPM2_ALG_ECC:
		if (ecc_curve(pub->parameters.eccDetail.curveID, &group,
		    &clen) != 0)
			return WICK_ERR_UNSUPPORTED;
		return ec_key(group, clen, &pub->unique.ecc, out);
	}
	return WICK_ERR_UNSUPPORTED;
}

/* ---- EK and AK ----------------------------------------------------------- */

static int
ek_check(const TPMT_PUBLIC *ek, char *why, size_t whylen)
{
	const TPMS_RSA_PARMS	*rp = &ek->parameters.rsaDetail;
	const TPMT_SYM_DEF_OBJECT *sym = &rp->symmetric;

	if (ek->type != TPM2_ALG_RSA)
		return err_why(why, whylen, WICK_ERR_UNSUPPORTED, "EK: type "
		    "0x%04x is not RSA (the RSA-2048 EK of TCG template L-1 "
		    "is the one supported)", ek->type);
	if (ek->nameAlg != TPM2_ALG_SHA256)
		return err_why(why, whylen, WICK_ERR_UNSUPPORTED, "EK: nameAlg "
		    "0x%04x is not SHA-256", ek->nameAlg);
	if (ek->objectAttributes != TPMV_EK_ATTRS)
		return err_why(why, whylen, WICK_ERR_INVALID, "EK: attributes "
		    "0x%08x are not those of template L-1 (0x%08x: fixedTPM, "
		    "fixedParent, sensitiveDataOrigin, adminWithPolicy, "
		    "restricted, decrypt)", (unsigned)ek->objectAttributes,
		    (unsigned)TPMV_EK_ATTRS);
	if (ek->authPolicy.size != sizeof(tpmv_ek_policy) ||
	    memcmp(ek->authPolicy.buffer, tpmv_ek_policy,
	    sizeof(tpmv_ek_policy)) != 0)
		return err_why(why, whylen, WICK_ERR_INVALID, "EK: authPolicy is "
		    "not PolicySecret(TPM_RH_ENDORSEMENT) of template L-1");
	if (sym->algorithm != TPM2_ALG_AES || sym->keyBits.aes != 128 ||
	    sym->mode.aes != TPM2_ALG_CFB)
		return err_why(why, whylen, WICK_ERR_UNSUPPORTED, "EK: symmetric "
		    "algorithm is not AES-128-CFB");
	if (rp->scheme.scheme != TPM2_ALG_NULL)
		return err_why(why, whylen, WICK_ERR_INVALID, "EK: scheme 0x%04x "
		    "is not NULL", rp->scheme.scheme);
	if (rp->keyBits != EK_BITS || ek->unique.rsa.size != EK_BITS / 8 ||
	    (ek->unique.rsa.buffer[0] & 0x80) == 0)
		return err_why(why, whylen, WICK_ERR_UNSUPPORTED, "EK: the key is "
		    "not RSA-2048 (keyBits %u, a modulus of %u bytes)",
		    rp->keyBits, ek->unique.rsa.size);
	if (rp->exponent != 0)
		return err_why(why, whylen, WICK_ERR_INVALID, "EK: exponent %u "
		    "is not 0 (65537, template L-1)", (unsigned)rp->exponent);
	return 0;
}

static const struct {
	TPMA_OBJECT	 bit;
	const char	*name;
} ak_required[] = {
	{ TPMA_OBJECT_RESTRICTED, "restricted" },
	{ TPMA_OBJECT_SIGN_ENCRYPT, "sign" },
	{ TPMA_OBJECT_FIXEDTPM, "fixedTPM" },
	{ TPMA_OBJECT_FIXEDPARENT, "fixedParent" },
	{ TPMA_OBJECT_SENSITIVEDATAORIGIN, "sensitiveDataOrigin" },
};

/* The AK's signing scheme and signature size come out. */
static int
ak_check(const TPMT_PUBLIC *ak, TPMI_ALG_SIG_SCHEME *scheme,
    size_t *sig_len, char *why, size_t whylen)
{
	const TPMS_RSA_PARMS	*rp = &ak->parameters.rsaDetail;
	const TPMS_ECC_PARMS	*ep = &ak->parameters.eccDetail;
	const char		*group;
	size_t			 i, clen;

	if (ak->nameAlg != TPM2_ALG_SHA256)
		return err_why(why, whylen, WICK_ERR_UNSUPPORTED, "AK: nameAlg "
		    "0x%04x is not SHA-256", ak->nameAlg);
	for (i = 0; i < sizeof(ak_required) / sizeof(ak_required[0]); i++)
		if ((ak->objectAttributes & ak_required[i].bit) == 0)
			return err_why(why, whylen, WICK_ERR_INVALID, "AK: "
			    "attribute %s is not set (attributes 0x%08x)",
			    ak_required[i].name,
			    (unsigned)ak->objectAttributes);
	if (ak->objectAttributes & TPMA_OBJECT_DECRYPT)
		return err_why(why, whylen, WICK_ERR_INVALID, "AK: attribute "
		    "decrypt is set (an AK may only sign)");
	/* Ours has none; a policy would only widen who may use the key. */
	if (ak->authPolicy.size != 0)
		return err_why(why, whylen, WICK_ERR_INVALID, "AK: it has an "
		    "authorization policy (an AK must have none)");
	switch (ak->type) {
	case TPM2_ALG_RSA:
		if (rp->symmetric.algorithm != TPM2_ALG_NULL)
			return err_why(why, whylen, WICK_ERR_INVALID, "AK: a "
			    "signing key with a symmetric algorithm");
		if (rp->scheme.scheme != TPM2_ALG_RSASSA ||
		    rp->scheme.details.rsassa.hashAlg != TPM2_ALG_SHA256)
			return err_why(why, whylen, WICK_ERR_UNSUPPORTED, "AK: "
			    "RSA scheme 0x%04x is not RSASSA with SHA-256",
			    rp->scheme.scheme);
		if (rp->keyBits != 2048 && rp->keyBits != 3072 &&
		    rp->keyBits != 4096)
			return err_why(why, whylen, WICK_ERR_UNSUPPORTED, "AK: an "
			    "RSA key of %u bits (2048, 3072 or 4096 are "
			    "accepted)", rp->keyBits);
		if (ak->unique.rsa.size != rp->keyBits / 8 ||
		    (ak->unique.rsa.buffer[0] & 0x80) == 0)
			return err_why(why, whylen, WICK_ERR_INVALID, "AK: the "
			    "RSA modulus (%u bytes) is not of keyBits %u",
			    ak->unique.rsa.size, rp->keyBits);
		*scheme = TPM2_ALG_RSASSA;
		*sig_len = rp->keyBits / 8;
		return 0;
	case TPM2_ALG_ECC:
		if (ep->symmetric.algorithm != TPM2_ALG_NULL)
			return err_why(why, whylen, WICK_ERR_INVALID, "AK: a "
			    "signing key with a symmetric algorithm");
		if (ecc_curve(ep->curveID, &group, &clen) != 0)
			return err_why(why, whylen, WICK_ERR_UNSUPPORTED, "AK: ECC "
			    "curve 0x%04x (NIST P-256 and P-384 are accepted)",
			    ep->curveID);
		if (ep->scheme.scheme != TPM2_ALG_ECDSA ||
		    ep->scheme.details.ecdsa.hashAlg != TPM2_ALG_SHA256)
			return err_why(why, whylen, WICK_ERR_UNSUPPORTED, "AK: ECC "
			    "scheme 0x%04x is not ECDSA with SHA-256",
			    ep->scheme.scheme);
		if (ep->kdf.scheme != TPM2_ALG_NULL)
			return err_why(why, whylen, WICK_ERR_INVALID, "AK: kdf "
			    "0x%04x is not NULL", ep->kdf.scheme);
		*scheme = TPM2_ALG_ECDSA;
		*sig_len = clen;
		return 0;
	}
	return err_why(why, whylen, WICK_ERR_UNSUPPORTED, "AK: type 0x%04x is "
	    "neither RSA nor ECC", ak->type);
}

/* Lower-case hex SHA-256 of the key's DER SubjectPublicKeyInfo. */
static int
pub_hash(EVP_PKEY *pk, char out[TPMV_PUB_HASH_LEN + 1])
{
	unsigned char	*der = NULL;
	uint8_t		 md[SHA256_LEN];
	int		 n, r;

	if ((n = i2d_PUBKEY(pk, &der)) <= 0)
		return WICK_ERR_CRYPTO;
	if ((r = sha256(der, (size_t)n, NULL, 0, md)) == 0)
		hex_encode(md, sizeof(md), out);
	OPENSSL_free(der);
	return r;
}

/* ---- the EK certificate -------------------------------------------------- */

/* A value from a certificate that may be a selector value as it is. */
static int
text_ok(const unsigned char *s, int len, size_t max)
{
	int i;

	if (len <= 0 || (size_t)len > max)
		return 0;
	for (i = 0; i < len; i++)
		if (s[i] < 0x20 || s[i] == 0x7f)
			return 0;
	return 1;
}

/* Add "<prefix><UTF-8 of v>" when that is a sound selector value. */
static int
add_text_selector(struct selector_set *sel, const char *prefix,
    const ASN1_STRING *v, size_t max)
{
	unsigned char	*utf = NULL;
	char		*val = NULL;
	const char	*swhy;
	size_t		 plen = strlen(prefix);
	int		 n, r = 0;

	if ((n = ASN1_STRING_to_UTF8(&utf, v)) < 0) {
		ERR_clear_error();
		return 0;
	}
	if (!text_ok(utf, n, max))
		goto out;
	if ((val = malloc(plen + (size_t)n + 1)) == NULL) {
		r = WICK_ERR_ALLOC;
		goto out;
	}
	memcpy(val, prefix, plen);
	memcpy(val + plen, utf, (size_t)n);
	val[plen + (size_t)n] = '\0';
	r = selector_set_add(sel, "tpm", val, &swhy);
	if (r != 0 && r != WICK_ERR_ALLOC)
		r = 0;		/* not a selector: left out */
out:
	free(val);
	OPENSSL_free(utf);
	return r;
}

/* The last CN of the issuer. */
static int
add_issuer_cn(struct selector_set *sel, X509 *cert)
{
	const X509_NAME	*name = X509_get_issuer_name(cert);
	int		 i, last = -1;

	for (i = -1; (i = X509_NAME_get_index_by_NID(name, NID_commonName,
	    i)) >= 0;)
		last = i;
	if (last < 0)
		return 0;
	return add_text_selector(sel, "ek_cert:issuer:cn:",
	    X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, last)),
	    TPMV_MAX_CN);
}

/* TPM manufacturer from a directoryName of the subjectAltName. */
static int
add_manufacturer(struct selector_set *sel, X509 *cert)
{
	GENERAL_NAMES		*gens = NULL;
	const GENERAL_NAME	*gen;
	const X509_NAME		*dn;
	const X509_NAME_ENTRY	*e;
	ASN1_OBJECT		*oid = NULL;
	int			 i, j, r = 0;

	if ((gens = X509_get_ext_d2i(cert, NID_subject_alt_name, NULL,
	    NULL)) == NULL) {
		ERR_clear_error();
		return 0;
	}
	if ((oid = OBJ_txt2obj(TPM_MANUFACTURER_OID, 1)) == NULL) {
		r = WICK_ERR_ALLOC;
		goto out;
	}
	for (i = 0; i < sk_GENERAL_NAME_num(gens); i++) {
		gen = sk_GENERAL_NAME_value(gens, i);
		if (gen->type != GEN_DIRNAME)
			continue;
		dn = gen->d.directoryName;
		for (j = 0; j < X509_NAME_entry_count(dn); j++) {
			e = X509_NAME_get_entry(dn, j);
			if (OBJ_cmp(X509_NAME_ENTRY_get_object(e), oid) != 0)
				continue;
			/* The first one only. */
			r = add_text_selector(sel, "manufacturer:",
			    X509_NAME_ENTRY_get_data(e),
			    TPMV_MAX_MANUFACTURER);
			goto out;
		}
	}
out:
	ASN1_OBJECT_free(oid);
	GENERAL_NAMES_free(gens);
	return r;
}

/* An extended key usage, if any, must include tcg-kp-EKCertificate. */
static int
ek_cert_eku_ok(X509 *cert, char *why, size_t whylen)
{
	EXTENDED_KEY_USAGE	*eku;
	ASN1_OBJECT		*oid = NULL;
	int			 i, crit = -1, found = 0;

	eku = X509_get_ext_d2i(cert, NID_ext_key_usage, &crit, NULL);
	if (eku == NULL) {
		ERR_clear_error();
		if (crit == -1)
			return 1;	/* none */
		(void)err_why(why, whylen, 0, "has an extended key usage that "
		    "does not parse");
		return 0;
	}
	if ((oid = OBJ_txt2obj(EKU_EK_CERT_OID, 1)) != NULL)
		for (i = 0; i < sk_ASN1_OBJECT_num(eku) && !found; i++)
			found = OBJ_cmp(sk_ASN1_OBJECT_value(eku, i),
			    oid) == 0;
	ASN1_OBJECT_free(oid);
	sk_ASN1_OBJECT_pop_free(eku, ASN1_OBJECT_free);
	if (!found)
		(void)err_why(why, whylen, 0, "has an extended key usage without "
		    "tcg-kp-EKCertificate (2.23.133.8.1)");
	return found;
}

/*
 * Whether cert chains to ca_path at now: *ok 1 with its selectors added
 * to sel, or 0 with cwhy saying why ("<the certificate> ...").
 */
static int
ek_cert_verify(const struct tpmv_config *cfg, X509 *cert, int64_t now,
    struct selector_set *sel, int *ok, char *cwhy, size_t cwhylen)
{
	X509_STORE_CTX		*ctx = NULL;
	X509_VERIFY_PARAM	*vp;
	STACK_OF(X509)		*chain;
	char			 fp[X509_FINGERPRINT_LEN + 1];
	char			 val[64 + X509_FINGERPRINT_LEN];
	const char		*swhy;
	int			 i, r = 0;

	*ok = 0;
	if (cfg->roots == NULL)
		return err_why(cwhy, cwhylen, 0, "cannot be verified: no ca_path "
		    "is configured");
	if (!ek_cert_eku_ok(cert, cwhy, cwhylen))
		return 0;
	if ((ctx = X509_STORE_CTX_new()) == NULL ||
	    !X509_STORE_CTX_init(ctx, cfg->roots, cert, cfg->intermediates)) {
		r = WICK_ERR_ALLOC;
		goto out;
	}
	vp = X509_STORE_CTX_get0_param(ctx);
	X509_VERIFY_PARAM_set_time(vp, (time_t)now);
	X509_VERIFY_PARAM_set_depth(vp, TPMV_MAX_CHAIN - 2);
	if (X509_verify_cert(ctx) != 1) {
		(void)err_why(cwhy, cwhylen, 0, "does not chain to ca_path: %s",
		    X509_verify_cert_error_string(
		    X509_STORE_CTX_get_error(ctx)));
		goto out;
	}
	chain = X509_STORE_CTX_get0_chain(ctx);
	for (i = 1; chain != NULL && i < sk_X509_num(chain); i++) {
		if ((r = x509_fingerprint(sk_X509_value(chain, i), fp)) != 0)
			goto out;
		(void)snprintf(val, sizeof(val), "ek_cert:ca:fingerprint:%s",
		    fp);
		if ((r = selector_set_add(sel, "tpm", val, &swhy)) != 0)
			goto out;
	}
	if ((r = add_issuer_cn(sel, cert)) != 0 ||
	    (r = add_manufacturer(sel, cert)) != 0)
		goto out;
	*ok = 1;
out:
	ERR_clear_error();
	X509_STORE_CTX_free(ctx);
	return r;
}

/*
 * Whether hash_path lists hash (a trusted file of that name): *ok 1, or
 * 0 with hwhy saying why.
 */
static void
hash_listed(const struct tpmv_config *cfg, const char *hash, int *ok,
    char *hwhy, size_t hwhylen)
{
	char	path[PATH_MAX], swhy[SECPATH_MAX_WHY];

	*ok = 0;
	if (cfg->hash_path == NULL) {
		(void)err_why(hwhy, hwhylen, 0, "no hash_path is configured");
		return;
	}
	if ((size_t)snprintf(path, sizeof(path), "%s/%s", cfg->hash_path,
	    hash) >= sizeof(path)) {
		(void)err_why(hwhy, hwhylen, 0, "hash_path is too long");
		return;
	}
	switch (secpath_check_file(path, swhy, sizeof(swhy))) {
	case 0:
		*ok = 1;
		break;
	case WICK_ERR_NOT_FOUND:
		(void)err_why(hwhy, hwhylen, 0, "its pub_hash is not in "
		    "hash_path");
		break;
	case WICK_ERR_PERM:
	case WICK_ERR_INVALID:
		(void)err_why(hwhy, hwhylen, 0, "its hash_path entry is refused: "
		    "it is not a regular file, or another user could change "
		    "it");
		break;
	default:
		(void)err_why(hwhy, hwhylen, 0, "hash_path cannot be read now");
		break;
	}
}

/* ---- the challenge ------------------------------------------------------- */

static int
pack_challenge(const TPM2B_ID_OBJECT *id, const TPM2B_ENCRYPTED_SECRET *es,
    const uint8_t nonce[TPMV_NONCE_LEN], uint32_t pcrs, struct buf *out)
{
	Wick__Tpm__TpmChallenge	 ch = WICK__TPM__TPM_CHALLENGE__INIT;
	uint8_t			 blob[sizeof(*id)], sec[sizeof(*es)];
	uint8_t			*p;
	uint32_t		 list[TPMV_MAX_PCRS];
	size_t			 boff = 0, soff = 0, n = 0, len;
	unsigned		 i;
	int			 r;

	if (Tss2_MU_TPM2B_ID_OBJECT_Marshal(id, blob, sizeof(blob), &boff) !=
	    TSS2_RC_SUCCESS ||
	    Tss2_MU_TPM2B_ENCRYPTED_SECRET_Marshal(es, sec, sizeof(sec),
	    &soff) != TSS2_RC_SUCCESS)
		return WICK_ERR_INTERNAL;
	for (i = 0; i < TPMV_MAX_PCRS; i++)
		if (pcrs & (1u << i))
			list[n++] = i;
	ch.credential_blob.data = blob;
	ch.credential_blob.len = boff;
	ch.encrypted_secret.data = sec;
	ch.encrypted_secret.len = soff;
	ch.nonce.data = (uint8_t *)nonce;
	ch.nonce.len = TPMV_NONCE_LEN;
	ch.pcrs = list;
	ch.n_pcrs = n;
	len = wick__tpm__tpm_challenge__get_packed_size(&ch);
	if (len > TPMV_MAX_CHALLENGE)
		return WICK_ERR_INTERNAL;
	if ((r = buf_reserve(out, len, &p)) != 0)
		return r;
	if (wick__tpm__tpm_challenge__pack(&ch, p) != len)
		return WICK_ERR_INTERNAL;
	buf_commit(out, len);
	return 0;
}

static int
params_run(const struct tpmv_config *cfg, const uint8_t *payload,
    size_t len, const uint8_t *spki, size_t spki_len, int64_t now,
    const uint8_t *fixed_secret, const uint8_t *fixed_nonce,
    struct tpmv_state **state, struct buf *challenge, char *why,
    size_t whylen)
{
	Wick__Tpm__TpmAttestation	*att = NULL;
	struct tpmv_state		*st = NULL;
	TPMT_PUBLIC			 ekpub, akpub;
	TPM2B_ID_OBJECT			 id;
	TPM2B_ENCRYPTED_SECRET		 es;
	EVP_PKEY			*ek = NULL, *certkey;
	X509				*cert = NULL;
	const unsigned char		*p;
	uint8_t				 name[TPMV_NAME_LEN];
	uint8_t				 nonce[TPMV_NONCE_LEN];
	char				 cwhy[SUB_WHY], hwhy[SUB_WHY];
	char				 val[16 + TPMV_PUB_HASH_LEN];
	const char			*swhy;
	size_t				 i;
	int				 r, trusted = 0;

	*state = NULL;
	(void)err_why(why, whylen, 0, "%s", "");
	cwhy[0] = hwhy[0] = '\0';
	if (cfg == NULL)
		return err_why(why, whylen, WICK_ERR_STATE, "TPM attestation is "
		    "not configured");
	if (len > TPMV_MAX_PAYLOAD)
		return err_why(why, whylen, WICK_ERR_LIMIT, "the TPM attestation "
		    "data is too large (%zu bytes, at most %d)", len,
		    TPMV_MAX_PAYLOAD);
	if (spki_len == 0 || spki_len > TPMV_MAX_SPKI)
		return err_why(why, whylen, WICK_ERR_INVALID, "the CSR's public "
		    "key is missing or too large");
	if ((att = wick__tpm__tpm_attestation__unpack(NULL, len,
	    payload)) == NULL)
		return err_why(why, whylen, WICK_ERR_INVALID, "the TPM "
		    "attestation data is not a TpmAttestation message");
	if (att->ek_cert.len > TPMV_MAX_EK_CERT) {
		r = err_why(why, whylen, WICK_ERR_LIMIT, "ek_cert is too large "
		    "(%zu bytes, at most %d)", att->ek_cert.len,
		    TPMV_MAX_EK_CERT);
		goto out;
	}
	if (att->ek_pub.len == 0 || att->ak_pub.len == 0) {
		r = err_why(why, whylen, WICK_ERR_INVALID, "%s is missing",
		    att->ek_pub.len == 0 ? "ek_pub" : "ak_pub");
		goto out;
	}
	if (att->ek_pub.len > TPMV_MAX_PUBLIC ||
	    att->ak_pub.len > TPMV_MAX_PUBLIC) {
		r = err_why(why, whylen, WICK_ERR_LIMIT, "%s is too large (%zu "
		    "bytes, at most %d)", att->ek_pub.len > TPMV_MAX_PUBLIC ?
		    "ek_pub" : "ak_pub", att->ek_pub.len > TPMV_MAX_PUBLIC ?
		    att->ek_pub.len : att->ak_pub.len, TPMV_MAX_PUBLIC);
		goto out;
	}
	if (att->n_pcrs > TPMV_MAX_PCRS) {
		r = err_why(why, whylen, WICK_ERR_LIMIT, "too many PCRs asked "
		    "for (%zu, at most %d)", att->n_pcrs, TPMV_MAX_PCRS);
		goto out;
	}
	for (i = 0; i < att->n_pcrs; i++)
		if (att->pcrs[i] >= TPMV_MAX_PCRS) {
			r = err_why(why, whylen, WICK_ERR_INVALID, "PCR %u asked "
			    "for: the sha256 bank has PCRs 0 to %d",
			    att->pcrs[i], TPMV_MAX_PCRS - 1);
			goto out;
		}
	if ((st = calloc(1, sizeof(*st))) == NULL) {
		r = err_why(why, whylen, WICK_ERR_ALLOC, "out of memory");
		goto out;
	}
	selector_set_init(&st->sel);

	/* The EK. */
	if ((r = tpmv_public_parse(att->ek_pub.data, att->ek_pub.len,
	    "EK", &ekpub, why, whylen)) != 0 ||
	    (r = ek_check(&ekpub, why, whylen)) != 0)
		goto out;
	if ((r = tpmv_public_key(&ekpub, &ek)) != 0) {
		r = err_why(why, whylen, r, "EK: the RSA public key is not "
		    "valid");
		goto out;
	}
	if ((r = pub_hash(ek, st->pub_hash)) != 0) {
		r = err_why(why, whylen, r, "cannot hash the EK");
		goto out;
	}
	(void)snprintf(val, sizeof(val), "pub_hash:%s", st->pub_hash);
	if ((r = selector_set_add(&st->sel, "tpm", val, &swhy)) != 0) {
		r = err_why(why, whylen, r, "pub_hash: %s", swhy);
		goto out;
	}

	/* Trusted by its certificate, or by its hash. */
	if (att->ek_cert.len > 0) {
		p = att->ek_cert.data;
		if ((cert = d2i_X509(NULL, &p, (long)att->ek_cert.len)) ==
		    NULL || p != att->ek_cert.data + att->ek_cert.len) {
			ERR_clear_error();
			r = err_why(why, whylen, WICK_ERR_INVALID, "ek_cert is "
			    "not one DER certificate");
			goto out;
		}
		if ((certkey = X509_get0_pubkey(cert)) == NULL ||
		    EVP_PKEY_eq(certkey, ek) != 1) {
			ERR_clear_error();
			r = err_why(why, whylen, WICK_ERR_INVALID, "ek_cert is "
			    "not for this EK: its key is not ek_pub's (EK "
			    "pub_hash %s)", st->pub_hash);
			goto out;
		}
		if ((r = ek_cert_verify(cfg, cert, now, &st->sel, &trusted,
		    cwhy, sizeof(cwhy))) != 0) {
			r = err_why(why, whylen, r, "cannot verify ek_cert: %s",
			    wick_strerror(r));
			goto out;
		}
		st->ek_cert_verified = trusted;
	} else
		(void)err_why(cwhy, sizeof(cwhy), 0, "was not sent");
	if (!trusted)
		hash_listed(cfg, st->pub_hash, &trusted, hwhy, sizeof(hwhy));
	if (!trusted) {
		r = err_why(why, whylen, WICK_ERR_PERM, "EK (pub_hash %s) is not "
		    "trusted: its certificate %s, and %s", st->pub_hash, cwhy,
		    hwhy);
		goto out;
	}

	/* The AK. */
	if ((r = tpmv_public_parse(att->ak_pub.data, att->ak_pub.len,
	    "AK", &akpub, why, whylen)) != 0 ||
	    (r = ak_check(&akpub, &st->scheme, &st->sig_len, why,
	    whylen)) != 0)
		goto out;
	if ((r = tpmv_public_key(&akpub, &st->ak)) != 0) {
		r = err_why(why, whylen, r == WICK_ERR_ALLOC ? r :
		    WICK_ERR_INVALID, "AK: the public key is not valid");
		goto out;
	}
	if ((r = tpmv_name(&akpub, name)) != 0) {
		r = err_why(why, whylen, r, "AK: cannot compute its name");
		goto out;
	}

	/* The challenge. */
	if (fixed_secret != NULL) {
		memcpy(st->secret, fixed_secret, sizeof(st->secret));
		memcpy(nonce, fixed_nonce, sizeof(nonce));
	} else if (RAND_priv_bytes(st->secret, sizeof(st->secret)) != 1 ||
	    RAND_bytes(nonce, sizeof(nonce)) != 1) {
		r = err_why(why, whylen, WICK_ERR_CRYPTO, "no random bytes");
		goto out;
	}
	if ((r = tpmv_make_credential(ek, name, st->secret,
	    sizeof(st->secret), &id, &es)) != 0) {
		r = err_why(why, whylen, r, "cannot make the credential: %s",
		    wick_strerror(r));
		goto out;
	}
	if ((r = sha256(nonce, sizeof(nonce), spki, spki_len,
	    st->qualifying)) != 0) {
		r = err_why(why, whylen, r, "cannot hash the nonce");
		goto out;
	}
	st->pcrs = cfg->pcrs;
	for (i = 0; i < att->n_pcrs; i++)
		st->pcrs |= 1u << att->pcrs[i];
	/* Last: it appends to challenge only when it succeeds. */
	if ((r = pack_challenge(&id, &es, nonce, st->pcrs, challenge)) != 0) {
		r = err_why(why, whylen, r, "cannot encode the challenge: %s",
		    wick_strerror(r));
		goto out;
	}
	*state = st;
	st = NULL;
	r = 0;
out:
	OPENSSL_cleanse(nonce, sizeof(nonce));
	OPENSSL_cleanse(&id, sizeof(id));
	OPENSSL_cleanse(&es, sizeof(es));
	X509_free(cert);
	EVP_PKEY_free(ek);
	tpmv_state_free(st);
	wick__tpm__tpm_attestation__free_unpacked(att, NULL);
	return r;
}

int
tpmv_params(const struct tpmv_config *cfg, const uint8_t *payload,
    size_t len, const uint8_t *csr_spki, size_t spki_len, int64_t now,
    struct tpmv_state **state, struct buf *challenge, char *why,
    size_t whylen)
{
	return params_run(cfg, payload, len, csr_spki, spki_len, now, NULL,
	    NULL, state, challenge, why, whylen);
}

int
tpmv_params_fixed(const struct tpmv_config *cfg, const uint8_t *payload,
    size_t len, const uint8_t *csr_spki, size_t spki_len, int64_t now,
    const uint8_t secret[TPMV_SECRET_LEN],
    const uint8_t nonce[TPMV_NONCE_LEN], struct tpmv_state **state,
    struct buf *challenge, char *why, size_t whylen)
{
	return params_run(cfg, payload, len, csr_spki, spki_len, now, secret,
	    nonce, state, challenge, why, whylen);
}

const char *
tpmv_state_pub_hash(const struct tpmv_state *st)
{
	return st != NULL ? st->pub_hash : NULL;
}

json_t *
tpmv_state_detail(const struct tpmv_state *st)
{
	if (st == NULL)
		return json_pack("{s:s}", "type", "tpm");
	return json_pack("{s:s,s:s,s:s}", "type", "tpm", "pub_hash",
	    st->pub_hash, "trusted_by", st->ek_cert_verified ? "ek_cert" :
	    "hash_path");
}

void
tpmv_state_free(struct tpmv_state *st)
{
	if (st == NULL)
		return;
	EVP_PKEY_free(st->ak);
	selector_set_cleanup(&st->sel);
	freezero(st, sizeof(*st));
}

/* ---- the answer ---------------------------------------------------------- */

void
tpmv_result_init(struct tpmv_result *res)
{
	memset(res, 0, sizeof(*res));
	selector_set_init(&res->selectors);
}

void
tpmv_result_cleanup(struct tpmv_result *res)
{
	selector_set_cleanup(&res->selectors);
	memset(res, 0, sizeof(*res));
}

/* The quote's signature over data, with the AK of the state. */
static int
quote_verify(const struct tpmv_state *st, const uint8_t *data,
    size_t len, const TPMT_SIGNATURE *sig, char *why, size_t whylen)
{
	const TPMS_SIGNATURE_ECC	*ecs = &sig->signature.ecdsa;
	const TPMS_SIGNATURE_RSA	*rss = &sig->signature.rsassa;
	EVP_MD_CTX			*md = NULL;
	ECDSA_SIG			*es = NULL;
	BIGNUM				*br = NULL, *bs = NULL;
	unsigned char			*der = NULL;
	const unsigned char		*s;
	size_t				 slen;
	int				 n, r;

	if (sig->sigAlg != st->scheme)
		return err_why(why, whylen, WICK_ERR_INVALID, "the quote's "
		    "signature algorithm 0x%04x is not the AK's (0x%04x)",
		    sig->sigAlg, st->scheme);
	if (sig->signature.any.hashAlg != TPM2_ALG_SHA256)
		return err_why(why, whylen, WICK_ERR_INVALID, "the quote's "
		    "signature hash 0x%04x is not SHA-256",
		    sig->signature.any.hashAlg);
	if (st->scheme == TPM2_ALG_RSASSA) {
		if (rss->sig.size != st->sig_len)
			return err_why(why, whylen, WICK_ERR_INVALID, "the quote's "
			    "RSA signature has %u bytes, not %zu",
			    rss->sig.size, st->sig_len);
		s = rss->sig.buffer;
		slen = rss->sig.size;
	} else {
		if (ecs->signatureR.size == 0 || ecs->signatureS.size == 0 ||
		    ecs->signatureR.size > st->sig_len ||
		    ecs->signatureS.size > st->sig_len)
			return err_why(why, whylen, WICK_ERR_INVALID, "the quote's "
			    "ECDSA signature has values of %u and %u bytes, "
			    "not up to %zu", ecs->signatureR.size,
			    ecs->signatureS.size, st->sig_len);
		r = WICK_ERR_ALLOC;
		if ((es = ECDSA_SIG_new()) == NULL ||
		    (br = BN_bin2bn(ecs->signatureR.buffer,
		    ecs->signatureR.size, NULL)) == NULL ||
		    (bs = BN_bin2bn(ecs->signatureS.buffer,
		    ecs->signatureS.size, NULL)) == NULL ||
		    !ECDSA_SIG_set0(es, br, bs))
			goto out;
		br = bs = NULL;		/* es's now */
		if ((n = i2d_ECDSA_SIG(es, &der)) <= 0)
			goto out;
		s = der;
		slen = (size_t)n;
	}
	if ((md = EVP_MD_CTX_new()) == NULL) {
		r = WICK_ERR_ALLOC;
		goto out;
	}
	if (EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, st->ak) != 1 ||
	    EVP_DigestVerify(md, s, slen, data, len) != 1) {
		r = err_why(why, whylen, WICK_ERR_SIGNATURE, "the quote's "
		    "signature does not verify with the AK");
		goto out;
	}
	r = 0;
out:
	if (r == WICK_ERR_ALLOC)
		(void)err_why(why, whylen, r, "out of memory");
	ERR_clear_error();
	EVP_MD_CTX_free(md);
	OPENSSL_free(der);
	BN_free(br);
	BN_free(bs);
	ECDSA_SIG_free(es);
	return r;
}

/*
 * The quote selects exactly the sha256 PCRs of mask: one sha256 bank
 * with those bits, or no bank at all when mask is empty.
 */
static int
selection_is(const TPML_PCR_SELECTION *sel, uint32_t mask)
{
	const TPMS_PCR_SELECTION	*s;
	uint32_t			 got = 0;
	unsigned			 i;

	if (sel->count == 0)
		return mask == 0;
	if (sel->count != 1)
		return 0;
	s = &sel->pcrSelections[0];
	if (s->hash != TPM2_ALG_SHA256 || s->sizeofSelect < PCR_SELECT_BYTES ||
	    s->sizeofSelect > TPM2_PCR_SELECT_MAX)
		return 0;
	for (i = 0; i < s->sizeofSelect; i++) {
		if (i >= PCR_SELECT_BYTES) {
			if (s->pcrSelect[i] != 0)
				return 0;
			continue;
		}
		got |= (uint32_t)s->pcrSelect[i] << (8 * i);
	}
	return got == mask;
}

static int
answer_check(struct tpmv_state *st,
    const Wick__Tpm__TpmChallengeResponse *cr, struct tpmv_result *out,
    char *why, size_t whylen)
{
	TPMS_ATTEST		 at;
	TPMT_SIGNATURE		 sig;
	const TPMS_QUOTE_INFO	*q;
	EVP_MD_CTX		*md = NULL;
	const uint8_t		*qd;
	uint8_t			 digest[SHA256_LEN];
	char			 val[32 + 2 * TPMV_PCR_LEN];
	char			 h[2 * TPMV_PCR_LEN + 1];
	const char		*swhy;
	size_t			 qlen, off, npcrs, i, k;
	unsigned		 n, pcr;
	int			 r;

	/* The credential was activated by the TPM that holds the EK. */
	if (cr->secret.len != TPMV_SECRET_LEN)
		return err_why(why, whylen, WICK_ERR_PERM, "credential activation "
		    "failed: the secret has %zu bytes, not %d", cr->secret.len,
		    TPMV_SECRET_LEN);
	if (CRYPTO_memcmp(cr->secret.data, st->secret, TPMV_SECRET_LEN) !=
	    0)
		return err_why(why, whylen, WICK_ERR_PERM, "credential activation "
		    "failed: the secret is not the one sealed to the EK and "
		    "the AK");

	/* The quote and its signature parse exactly. */
	if (cr->quote.len > TPMV_MAX_QUOTE ||
	    cr->signature.len > TPMV_MAX_SIGNATURE)
		return err_why(why, whylen, WICK_ERR_LIMIT, "the %s is too large "
		    "(%zu bytes, at most %d)", cr->quote.len >
		    TPMV_MAX_QUOTE ? "quote" : "quote's signature",
		    cr->quote.len > TPMV_MAX_QUOTE ? cr->quote.len :
		    cr->signature.len, cr->quote.len > TPMV_MAX_QUOTE ?
		    TPMV_MAX_QUOTE : TPMV_MAX_SIGNATURE);
	if (cr->quote.len < 2)
		return err_why(why, whylen, WICK_ERR_INVALID, "the quote is "
		    "missing or truncated");
	qlen = (size_t)cr->quote.data[0] << 8 | cr->quote.data[1];
	qd = cr->quote.data + 2;
	if (qlen == 0 || qlen > cr->quote.len - 2)
		return err_why(why, whylen, WICK_ERR_INVALID, "the quote "
		    "(TPM2B_ATTEST) is empty or truncated (%zu of %zu bytes)",
		    cr->quote.len - 2, qlen);
	if (qlen < cr->quote.len - 2)
		return err_why(why, whylen, WICK_ERR_INVALID, "%zu bytes follow "
		    "the quote (TPM2B_ATTEST)", cr->quote.len - 2 - qlen);
	memset(&sig, 0, sizeof(sig));
	off = 0;
	if (Tss2_MU_TPMT_SIGNATURE_Unmarshal(cr->signature.data,
	    cr->signature.len, &off, &sig) != TSS2_RC_SUCCESS)
		return err_why(why, whylen, WICK_ERR_INVALID, "the quote's "
		    "signature is not a TPMT_SIGNATURE (truncated, or an "
		    "unknown algorithm)");
	if (off != cr->signature.len)
		return err_why(why, whylen, WICK_ERR_INVALID, "%zu bytes follow "
		    "the quote's signature (TPMT_SIGNATURE)",
		    cr->signature.len - off);

	/* Signed by the AK, the key the credential was made for. */
	if ((r = quote_verify(st, qd, qlen, &sig, why, whylen)) != 0)
		return r;
	memset(&at, 0, sizeof(at));
	off = 0;
	if (Tss2_MU_TPMS_ATTEST_Unmarshal(qd, qlen, &off, &at) !=
	    TSS2_RC_SUCCESS)
		return err_why(why, whylen, WICK_ERR_INVALID, "the quote is not a "
		    "TPMS_ATTEST (truncated, or an unknown type)");
	if (off != qlen)
		return err_why(why, whylen, WICK_ERR_INVALID, "%zu bytes follow "
		    "the TPMS_ATTEST inside the quote", qlen - off);
	if (at.magic != TPM2_GENERATED_VALUE)
		return err_why(why, whylen, WICK_ERR_PERM, "the quote was not "
		    "generated by the TPM (magic 0x%08x)", (unsigned)at.magic);
	if (at.type != TPM2_ST_ATTEST_QUOTE)
		return err_why(why, whylen, WICK_ERR_PERM, "the attestation is "
		    "not a quote (type 0x%04x)", at.type);
	if (at.extraData.size != sizeof(st->qualifying))
		return err_why(why, whylen, WICK_ERR_PERM, "the quote's "
		    "qualifying data has %u bytes, not %zu",
		    at.extraData.size, sizeof(st->qualifying));
	if (memcmp(at.extraData.buffer, st->qualifying,
	    sizeof(st->qualifying)) != 0)
		return err_why(why, whylen, WICK_ERR_PERM, "the quote's "
		    "qualifying data is not SHA-256(nonce || CSR key): it "
		    "was not made for this challenge and CSR");

	/* Exactly the PCRs asked for, and their values. */
	q = &at.attested.quote;
	for (npcrs = 0, pcr = 0; pcr < TPMV_MAX_PCRS; pcr++)
		if (st->pcrs & (1u << pcr))
			npcrs++;
	if (!selection_is(&q->pcrSelect, st->pcrs))
		return err_why(why, whylen, WICK_ERR_PERM, "the quote's PCR "
		    "selection is not the %zu sha256 PCRs of the challenge",
		    npcrs);
	if (cr->n_pcr_values != npcrs)
		return err_why(why, whylen, WICK_ERR_INVALID, "%zu PCR values for "
		    "%zu quoted PCRs", cr->n_pcr_values, npcrs);
	for (i = 0; i < npcrs; i++)
		if (cr->pcr_values[i].len != TPMV_PCR_LEN)
			return err_why(why, whylen, WICK_ERR_INVALID, "PCR value "
			    "%zu has %zu bytes, not %d", i,
			    cr->pcr_values[i].len, TPMV_PCR_LEN);
	if ((md = EVP_MD_CTX_new()) == NULL)
		return err_why(why, whylen, WICK_ERR_ALLOC, "out of memory");
	r = EVP_DigestInit_ex(md, EVP_sha256(), NULL);
	for (i = 0; r && i < npcrs; i++)
		r = EVP_DigestUpdate(md, cr->pcr_values[i].data,
		    TPMV_PCR_LEN);
	r = r && EVP_DigestFinal_ex(md, digest, &n) && n == sizeof(digest);
	EVP_MD_CTX_free(md);
	if (!r)
		return err_why(why, whylen, WICK_ERR_CRYPTO, "cannot hash the PCR "
		    "values");
	if (q->pcrDigest.size != sizeof(digest) ||
	    memcmp(q->pcrDigest.buffer, digest, sizeof(digest)) != 0)
		return err_why(why, whylen, WICK_ERR_PERM, "the quote's PCR digest "
		    "is not the digest of the PCR values sent");

	/* Accepted. */
	memcpy(out->pub_hash, st->pub_hash, sizeof(out->pub_hash));
	out->ek_cert_verified = st->ek_cert_verified;
	if ((r = selector_set_union(&out->selectors, &st->sel)) != 0)
		return err_why(why, whylen, r, "cannot list the selectors: %s",
		    wick_strerror(r));
	for (pcr = 0, k = 0; pcr < TPMV_MAX_PCRS; pcr++) {
		if (!(st->pcrs & (1u << pcr)))
			continue;
		hex_encode(cr->pcr_values[k++].data, TPMV_PCR_LEN, h);
		(void)snprintf(val, sizeof(val), "pcr:sha256:%u:%s", pcr, h);
		if ((r = selector_set_add(&out->selectors, "tpm", val,
		    &swhy)) != 0)
			return err_why(why, whylen, r, "PCR selector: %s", swhy);
	}
	return 0;
}

int
tpmv_answer(struct tpmv_state *st, const uint8_t *resp, size_t len,
    struct tpmv_result *out, char *why, size_t whylen)
{
	Wick__Tpm__TpmChallengeResponse	*cr = NULL;
	int				 r;

	tpmv_result_init(out);
	(void)err_why(why, whylen, 0, "%s", "");
	if (st == NULL)
		return err_why(why, whylen, WICK_ERR_STATE, "no challenge was "
		    "made");
	if (st->answered)
		return err_why(why, whylen, WICK_ERR_STATE, "the challenge was "
		    "answered already");
	st->answered = 1;
	if (len > TPMV_MAX_RESPONSE)
		return err_why(why, whylen, WICK_ERR_LIMIT, "the challenge "
		    "response is too large (%zu bytes, at most %d)", len,
		    TPMV_MAX_RESPONSE);
	if ((cr = wick__tpm__tpm_challenge_response__unpack(NULL, len,
	    resp)) == NULL)
		return err_why(why, whylen, WICK_ERR_INVALID, "the challenge "
		    "response is not a TpmChallengeResponse message");
	r = answer_check(st, cr, out, why, whylen);
	if (r != 0)
		tpmv_result_cleanup(out);
	if (cr->secret.len > 0)
		wipe(cr->secret.data, cr->secret.len);
	wick__tpm__tpm_challenge_response__free_unpacked(cr, NULL);
	/* Spent: nothing of the secret stays. */
	OPENSSL_cleanse(st->secret, sizeof(st->secret));
	return r;
}

/* ---- configuration ------------------------------------------------------- */

/* path made absolute, so that a later chdir() changes nothing. */
static int
abs_path(const char *path, char **out)
{
	char	cwd[PATH_MAX];
	size_t	len;

	*out = NULL;
	if (path[0] == '/')
		return (*out = strdup(path)) == NULL ? WICK_ERR_ALLOC : 0;
	if (getcwd(cwd, sizeof(cwd)) == NULL)
		return WICK_ERR_IO;
	len = strlen(cwd) + 1 + strlen(path) + 1;
	if ((*out = malloc(len)) == NULL)
		return WICK_ERR_ALLOC;
	(void)snprintf(*out, len, "%s/%s", cwd, path);
	return 0;
}

static int
load_ca_file(struct tpmv_config *cfg, const char *file, char *why,
    size_t whylen)
{
	STACK_OF(X509)	*sk = NULL;
	X509		*x;
	char		 swhy[SECPATH_MAX_WHY];
	int		 i, ss, r;

	if ((r = secpath_check_file(file, swhy, sizeof(swhy))) != 0)
		return err_why(why, whylen, WICK_ERR_CONFIG, "ca_path: %s", swhy);
	if (cfg->ncerts >= TPMV_MAX_CA_CERTS)
		return err_why(why, whylen, WICK_ERR_CONFIG, "ca_path: more than "
		    "%d certificates", TPMV_MAX_CA_CERTS);
	if ((r = x509_load_certs_file(file, TPMV_MAX_CA_CERTS - cfg->ncerts,
	    &sk)) != 0)
		return err_why(why, whylen, WICK_ERR_CONFIG, "ca_path: %s: %s",
		    file, r == WICK_ERR_LIMIT ? "too many certificates, or too "
		    "large" : "not a PEM file of certificates");
	for (i = 0, r = 0; r == 0 && i < sk_X509_num(sk); i++) {
		x = sk_X509_value(sk, i);
		if ((ss = X509_self_signed(x, 1)) < 0)
			r = err_why(why, whylen, WICK_ERR_CONFIG, "ca_path: %s: "
			    "certificate %d cannot be read", file, i + 1);
		else if (ss == 1 && X509_STORE_add_cert(cfg->roots, x) == 1)
			cfg->nroots++;
		else if (ss == 1)
			r = err_why(why, whylen, WICK_ERR_ALLOC, "out of memory");
		else if (!sk_X509_push(cfg->intermediates, x))
			r = err_why(why, whylen, WICK_ERR_ALLOC, "out of memory");
		else
			X509_up_ref(x);	/* intermediates drops it */
		cfg->ncerts++;
	}
	ERR_clear_error();
	sk_X509_pop_free(sk, X509_free);
	return r;
}

static int
load_ca_path(struct tpmv_config *cfg, const char *ca_path, char *why,
    size_t whylen)
{
	struct dirent	**ents = NULL;
	struct stat	  st;
	char		 *path = NULL, file[PATH_MAX];
	int		  i, n = 0, files = 0, r;

	if (*ca_path == '\0')
		return err_why(why, whylen, WICK_ERR_CONFIG, "ca_path is empty");
	if ((r = abs_path(ca_path, &path)) != 0)
		return err_why(why, whylen, r, "ca_path %s: %s", ca_path,
		    wick_strerror(r));
	if ((cfg->roots = X509_STORE_new()) == NULL ||
	    (cfg->intermediates = sk_X509_new_null()) == NULL) {
		r = err_why(why, whylen, WICK_ERR_ALLOC, "out of memory");
		goto out;
	}
	if (stat(path, &st) == -1) {
		r = err_why(why, whylen, WICK_ERR_CONFIG, "ca_path %s: %s", path,
		    strerror(errno));
		goto out;
	}
	if (!S_ISDIR(st.st_mode)) {
		r = load_ca_file(cfg, path, why, whylen);
		goto check;
	}
	if ((n = scandir(path, &ents, NULL, alphasort)) < 0) {
		n = 0;
		r = err_why(why, whylen, WICK_ERR_CONFIG, "ca_path %s: %s", path,
		    strerror(errno));
		goto out;
	}
	for (i = 0, r = 0; r == 0 && i < n; i++) {
		if (ents[i]->d_name[0] == '.')
			continue;
		if (++files > TPMV_MAX_CA_FILES) {
			r = err_why(why, whylen, WICK_ERR_CONFIG, "ca_path %s: "
			    "more than %d files", path, TPMV_MAX_CA_FILES);
			break;
		}
		if ((size_t)snprintf(file, sizeof(file), "%s/%s", path,
		    ents[i]->d_name) >= sizeof(file)) {
			r = err_why(why, whylen, WICK_ERR_CONFIG, "ca_path %s: "
			    "a file name is too long", path);
			break;
		}
		r = load_ca_file(cfg, file, why, whylen);
	}
check:
	if (r == 0 && cfg->ncerts == 0)
		r = err_why(why, whylen, WICK_ERR_CONFIG, "ca_path %s holds no "
		    "certificate", path);
	else if (r == 0 && cfg->nroots == 0)
		r = err_why(why, whylen, WICK_ERR_CONFIG, "ca_path %s holds no "
		    "self-signed (root) certificate: an EK certificate's "
		    "chain must end at a root in ca_path", path);
out:
	for (i = 0; i < n; i++)
		free(ents[i]);
	free(ents);
	free(path);
	return r;
}

int
tpmv_config_load(const char *ca_path, const char *hash_path,
    const char *pcrs, struct tpmv_config **out, char *why, size_t whylen)
{
	struct tpmv_config	*cfg = NULL;
	struct stat		 st;
	const char		*pwhy;
	int			 r;

	*out = NULL;
	(void)err_why(why, whylen, 0, "%s", "");
	if (ca_path == NULL && hash_path == NULL)
		return err_why(why, whylen, WICK_ERR_CONFIG, "NodeAttestor \"tpm\" "
		    "needs ca_path (EK manufacturer CAs), hash_path (allowed "
		    "EK hashes), or both");
	if ((cfg = calloc(1, sizeof(*cfg))) == NULL)
		return err_why(why, whylen, WICK_ERR_ALLOC, "out of memory");
	if (pcrs != NULL && pcrsel_parse(pcrs, &cfg->pcrs, &pwhy) != 0) {
		r = err_why(why, whylen, WICK_ERR_CONFIG, "pcrs \"%.64s\": %s",
		    pcrs, pwhy);
		goto out;
	}
	if (ca_path != NULL && (r = load_ca_path(cfg, ca_path, why,
	    whylen)) != 0)
		goto out;
	if (hash_path != NULL) {
		if (*hash_path == '\0') {
			r = err_why(why, whylen, WICK_ERR_CONFIG, "hash_path is "
			    "empty");
			goto out;
		}
		if ((r = abs_path(hash_path, &cfg->hash_path)) != 0) {
			r = err_why(why, whylen, r, "hash_path %s: %s", hash_path,
			    wick_strerror(r));
			goto out;
		}
		if (stat(cfg->hash_path, &st) == -1) {
			r = err_why(why, whylen, WICK_ERR_CONFIG, "hash_path %s: "
			    "%s", cfg->hash_path, strerror(errno));
			goto out;
		}
		if (!S_ISDIR(st.st_mode)) {
			r = err_why(why, whylen, WICK_ERR_CONFIG, "hash_path %s: "
			    "not a directory", cfg->hash_path);
			goto out;
		}
		if (strlen(cfg->hash_path) + 2 + TPMV_PUB_HASH_LEN >
		    PATH_MAX) {
			r = err_why(why, whylen, WICK_ERR_CONFIG, "hash_path %s: "
			    "too long", cfg->hash_path);
			goto out;
		}
	}
	/* See the header: no peer-made lines from tss2-mu on stderr. */
	if (getenv("TSS2_LOG") == NULL)
		(void)setenv("TSS2_LOG", "marshal+none", 0);
	*out = cfg;
	cfg = NULL;
	r = 0;
out:
	tpmv_config_free(cfg);
	return r;
}

void
tpmv_config_free(struct tpmv_config *cfg)
{
	if (cfg == NULL)
		return;
	X509_STORE_free(cfg->roots);
	sk_X509_pop_free(cfg->intermediates, X509_free);
	free(cfg->hash_path);
	free(cfg);
}
