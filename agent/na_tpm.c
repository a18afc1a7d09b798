/*
 * na_tpm.c: the agent's side of TPM node attestation on tpm2-tss ESYS.
 *
 * Objects a session makes, and when they are flushed:
 *
 *	storage primary	ECC P-256 (TCG SRK template), owner hierarchy:
 *			parent of the AK, flushed as soon as the AK is
 *			loaded
 *	AK		ECC P-256 ECDSA-SHA256 restricted signing key, fresh
 *			per session, flushed at close
 *	EK		RSA-2048 from template L-1 (TCG EK Credential
 *			Profile), endorsement hierarchy, flushed at close
 *	policy session	PolicySecret(TPM_RH_ENDORSEMENT) for the EK, one
 *			per ActivateCredential, flushed right after it
 *
 * At most two objects are loaded at once (the AK is made before the EK),
 * so a TPM without a resource manager (libtpms holds three) has room for
 * the tests' oracle.  The storage primary is ECC rather than RSA: it is
 * only a parent, and an ECC primary costs a fraction of an RSA one (no
 * prime search: 2 ms against about 30 ms on swtpm, and real TPMs are
 * slower still).
 */
#include <errno.h>
#include <stddef.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/x509.h>
#include <tss2/tss2_esys.h>
#include <tss2/tss2_mu.h>
#include <tss2/tss2_rc.h>
#include <tss2/tss2_tctildr.h>
#include <uv.h>

#include "der.h"
#include "dynlib.h"
#include "encode.h"
#include "na_tpm.h"
#include "na_tpm_int.h"
#include "pkey.h"

/*
 * tpm2-tss, loaded by the first na_tpm_load() rather than linked: only an
 * agent that attests with a TPM (or its "tpm" commands) talks to one, and
 * the four libraries would otherwise be mapped into every agent.  The
 * headers still give the types and constants; the calls go through this
 * table, each pointer of the type tpm2-tss declares.  Loaded once and
 * never unloaded.
 */
static struct tss_fns {
	__typeof__(Esys_ActivateCredential)	*Esys_ActivateCredential;
	__typeof__(Esys_Create)	*Esys_Create;
	__typeof__(Esys_CreatePrimary)	*Esys_CreatePrimary;
	__typeof__(Esys_Finalize)	*Esys_Finalize;
	__typeof__(Esys_FlushContext)	*Esys_FlushContext;
	__typeof__(Esys_Free)	*Esys_Free;
	__typeof__(Esys_GetCapability)	*Esys_GetCapability;
	__typeof__(Esys_Initialize)	*Esys_Initialize;
	__typeof__(Esys_Load)	*Esys_Load;
	__typeof__(Esys_NV_Read)	*Esys_NV_Read;
	__typeof__(Esys_NV_ReadPublic)	*Esys_NV_ReadPublic;
	__typeof__(Esys_PCR_Read)	*Esys_PCR_Read;
	__typeof__(Esys_PolicySecret)	*Esys_PolicySecret;
	__typeof__(Esys_Quote)	*Esys_Quote;
	__typeof__(Esys_StartAuthSession)	*Esys_StartAuthSession;
	__typeof__(Esys_TR_Close)	*Esys_TR_Close;
	__typeof__(Esys_TR_FromTPMPublic)	*Esys_TR_FromTPMPublic;
	__typeof__(Tss2_MU_TPM2B_ATTEST_Marshal)	*Tss2_MU_TPM2B_ATTEST_Marshal;
	__typeof__(Tss2_MU_TPM2B_ENCRYPTED_SECRET_Unmarshal)	*Tss2_MU_TPM2B_ENCRYPTED_SECRET_Unmarshal;
	__typeof__(Tss2_MU_TPM2B_ID_OBJECT_Unmarshal)	*Tss2_MU_TPM2B_ID_OBJECT_Unmarshal;
	__typeof__(Tss2_MU_TPM2B_PUBLIC_Marshal)	*Tss2_MU_TPM2B_PUBLIC_Marshal;
	__typeof__(Tss2_MU_TPM2B_PUBLIC_Unmarshal)	*Tss2_MU_TPM2B_PUBLIC_Unmarshal;
	__typeof__(Tss2_MU_TPMS_ATTEST_Unmarshal)	*Tss2_MU_TPMS_ATTEST_Unmarshal;
	__typeof__(Tss2_MU_TPMT_SIGNATURE_Marshal)	*Tss2_MU_TPMT_SIGNATURE_Marshal;
	__typeof__(Tss2_RC_Decode)	*Tss2_RC_Decode;
	__typeof__(Tss2_TctiLdr_Finalize)	*Tss2_TctiLdr_Finalize;
	__typeof__(Tss2_TctiLdr_Initialize)	*Tss2_TctiLdr_Initialize;
} tss;

#define TSS_SYM(f)	{ #f, offsetof(struct tss_fns, f) }
static const struct dynlib_sym tss_esys_syms[] = {
	TSS_SYM(Esys_ActivateCredential),
	TSS_SYM(Esys_Create),
	TSS_SYM(Esys_CreatePrimary),
	TSS_SYM(Esys_Finalize),
	TSS_SYM(Esys_FlushContext),
	TSS_SYM(Esys_Free),
	TSS_SYM(Esys_GetCapability),
	TSS_SYM(Esys_Initialize),
	TSS_SYM(Esys_Load),
	TSS_SYM(Esys_NV_Read),
	TSS_SYM(Esys_NV_ReadPublic),
	TSS_SYM(Esys_PCR_Read),
	TSS_SYM(Esys_PolicySecret),
	TSS_SYM(Esys_Quote),
	TSS_SYM(Esys_StartAuthSession),
	TSS_SYM(Esys_TR_Close),
	TSS_SYM(Esys_TR_FromTPMPublic),
};
static const struct dynlib_sym tss_mu_syms[] = {
	TSS_SYM(Tss2_MU_TPM2B_ATTEST_Marshal),
	TSS_SYM(Tss2_MU_TPM2B_ENCRYPTED_SECRET_Unmarshal),
	TSS_SYM(Tss2_MU_TPM2B_ID_OBJECT_Unmarshal),
	TSS_SYM(Tss2_MU_TPM2B_PUBLIC_Marshal),
	TSS_SYM(Tss2_MU_TPM2B_PUBLIC_Unmarshal),
	TSS_SYM(Tss2_MU_TPMS_ATTEST_Unmarshal),
	TSS_SYM(Tss2_MU_TPMT_SIGNATURE_Marshal),
};
static const struct dynlib_sym tss_rc_syms[] = {
	TSS_SYM(Tss2_RC_Decode),
};
static const struct dynlib_sym tss_tctildr_syms[] = {
	TSS_SYM(Tss2_TctiLdr_Finalize),
	TSS_SYM(Tss2_TctiLdr_Initialize),
};
#undef TSS_SYM

static const struct {
	const char		*lib;
	const struct dynlib_sym	*syms;
	size_t			 nsyms;
} tss_libs[] = {
	{ "libtss2-esys.so.0", tss_esys_syms,
	    sizeof(tss_esys_syms) / sizeof(tss_esys_syms[0]) },
	{ "libtss2-mu.so.0", tss_mu_syms,
	    sizeof(tss_mu_syms) / sizeof(tss_mu_syms[0]) },
	{ "libtss2-rc.so.0", tss_rc_syms,
	    sizeof(tss_rc_syms) / sizeof(tss_rc_syms[0]) },
	{ "libtss2-tctildr.so.0", tss_tctildr_syms,
	    sizeof(tss_tctildr_syms) / sizeof(tss_tctildr_syms[0]) },
};

static uv_once_t	tss_once = UV_ONCE_INIT;
static int		tss_loaded;
static char		tss_why[256];

/* All four or none: the table is filled once every library is. */
static void
tss_load_once(void)
{
	struct tss_fns	t;
	size_t		i;

	memset(&t, 0, sizeof(t));
	for (i = 0; i < sizeof(tss_libs) / sizeof(tss_libs[0]); i++)
		if (dynlib_load(tss_libs[i].lib, tss_libs[i].syms,
		    tss_libs[i].nsyms, &t, sizeof(t), tss_why,
		    sizeof(tss_why)) != 0)
			return;
	tss = t;
	tss_loaded = 1;
}

int
na_tpm_load(char *why, size_t whylen)
{
	uv_once(&tss_once, tss_load_once);
	if (!tss_loaded)
		return err_why(why, whylen, WICK_ERR_CONFIG, "the TPM node "
		    "attestor needs tpm2-tss: %s", tss_why);
	return 0;
}

#define PCR_SELECT_BYTES	3	/* 24 PCRs */

/* na_tpm_answer()'s arguments. */
struct challenge {
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

struct na_tpm {
	TSS2_TCTI_CONTEXT	*tcti;
	ESYS_CONTEXT		*esys;
	ESYS_TR			 ek;
	ESYS_TR			 ak;
	int			 identity;	/* na_tpm_identity() ran */
};

/* PolicySecret(TPM_RH_ENDORSEMENT) with SHA-256: template L-1's policy. */
static const uint8_t ek_policy[32] = {
	0x83, 0x71, 0x97, 0x67, 0x44, 0x84, 0xb3, 0xf8,
	0x1a, 0x90, 0xcc, 0x8d, 0x46, 0xa5, 0xd7, 0x24,
	0xfd, 0x52, 0xd7, 0x6e, 0x06, 0x52, 0x0b, 0x64,
	0xf2, 0xa1, 0xda, 0x1b, 0x33, 0x14, 0x69, 0xaa,
};

#define EK_ATTRS	(TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT | \
	TPMA_OBJECT_SENSITIVEDATAORIGIN | TPMA_OBJECT_ADMINWITHPOLICY | \
	TPMA_OBJECT_RESTRICTED | TPMA_OBJECT_DECRYPT)
#define SRK_ATTRS	(TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT | \
	TPMA_OBJECT_SENSITIVEDATAORIGIN | TPMA_OBJECT_USERWITHAUTH | \
	TPMA_OBJECT_NODA | TPMA_OBJECT_RESTRICTED | TPMA_OBJECT_DECRYPT)
#define AK_ATTRS	(TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT | \
	TPMA_OBJECT_SENSITIVEDATAORIGIN | TPMA_OBJECT_USERWITHAUTH | \
	TPMA_OBJECT_NODA | TPMA_OBJECT_RESTRICTED | TPMA_OBJECT_SIGN_ENCRYPT)

/* ---- errors -------------------------------------------------------------- */

static int
err_from_tss(TSS2_RC rc)
{
	TSS2_RC	layer = rc & TSS2_RC_LAYER_MASK;
	TSS2_RC	base = rc & ~TSS2_RC_LAYER_MASK;

	if (layer == TSS2_TCTI_RC_LAYER)
		return WICK_ERR_UNAVAILABLE;
	if (layer != TSS2_TPM_RC_LAYER)
		return base == TSS2_BASE_RC_MEMORY ? WICK_ERR_ALLOC :
		    WICK_ERR_INTERNAL;
	if ((rc & TPM2_RC_FMT1) != 0)
		return WICK_ERR_INTERNAL;
	switch (rc) {
	case TPM2_RC_OBJECT_MEMORY:
	case TPM2_RC_SESSION_MEMORY:
	case TPM2_RC_MEMORY:
	case TPM2_RC_SESSION_HANDLES:
	case TPM2_RC_OBJECT_HANDLES:
		return WICK_ERR_LIMIT;
	case TPM2_RC_RETRY:
	case TPM2_RC_YIELDED:
	case TPM2_RC_TESTING:
	case TPM2_RC_NV_RATE:
	case TPM2_RC_LOCKOUT:
		return WICK_ERR_AGAIN;
	default:
		return WICK_ERR_INTERNAL;
	}
}

int
na_tpm_rc_why(TSS2_RC rc, const char *what, char *why, size_t whylen)
{
	const char *text;

	/* Tss2_RC_Decode() returns a per-thread buffer: copy it at once.
	 * Without the library (a caller that never opened a TPM), the code
	 * alone. */
	uv_once(&tss_once, tss_load_once);
	text = tss_loaded ? tss.Tss2_RC_Decode(rc) : NULL;
	return err_why(why, whylen, err_from_tss(rc), "%s: %s (0x%x)", what,
	    text != NULL ? text : "unknown error", (unsigned)rc);
}

/* A TPM format-1 error code without its handle/parameter/session bits. */
static int
rc_is(TSS2_RC rc, TSS2_RC code)
{
	if ((rc & TSS2_RC_LAYER_MASK) != TSS2_TPM_RC_LAYER ||
	    (rc & TPM2_RC_FMT1) == 0)
		return 0;
	return (rc & (TPM2_RC_FMT1 | 0x3f)) == code;
}

/* ---- small helpers ------------------------------------------------------- */

static void
flush(struct na_tpm *t, ESYS_TR *h)
{
	if (*h == ESYS_TR_NONE)
		return;
	(void)tss.Esys_FlushContext(t->esys, *h);
	*h = ESYS_TR_NONE;
}

/* The public key of an RSA TPMT_PUBLIC (exponent 0 means 65537). */
static int
rsa_pkey(const TPMT_PUBLIC *p, EVP_PKEY **out)
{
	OSSL_PARAM_BLD	*bld = NULL;
	OSSL_PARAM	*params = NULL;
	EVP_PKEY_CTX	*ctx = NULL;
	BIGNUM		*n = NULL, *e = NULL;
	uint32_t	 exp;
	int		 r = WICK_ERR_CRYPTO;

	*out = NULL;
	if (p->type != TPM2_ALG_RSA || p->unique.rsa.size == 0 ||
	    p->unique.rsa.size > sizeof(p->unique.rsa.buffer) ||
	    p->unique.rsa.size * 8 != p->parameters.rsaDetail.keyBits)
		return WICK_ERR_INVALID;
	exp = p->parameters.rsaDetail.exponent;
	if (exp == 0)
		exp = 65537;
	if ((n = BN_bin2bn(p->unique.rsa.buffer, p->unique.rsa.size,
	    NULL)) == NULL || (e = BN_new()) == NULL ||
	    BN_set_word(e, exp) != 1)
		goto out;
	if ((bld = OSSL_PARAM_BLD_new()) == NULL ||
	    OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, n) != 1 ||
	    OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, e) != 1 ||
	    (params = OSSL_PARAM_BLD_to_param(bld)) == NULL)
		goto out;
	if ((ctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL)) == NULL ||
	    EVP_PKEY_fromdata_init(ctx) != 1 ||
	    EVP_PKEY_fromdata(ctx, out, EVP_PKEY_PUBLIC_KEY, params) != 1)
		goto out;
	r = 0;
out:
	EVP_PKEY_CTX_free(ctx);
	OSSL_PARAM_free(params);
	OSSL_PARAM_BLD_free(bld);
	BN_free(n);
	BN_free(e);
	return r;
}

static int
marshal_public(const TPM2B_PUBLIC *pub, struct buf *out, char *why,
    size_t whylen)
{
	uint8_t	tmp[sizeof(TPM2B_PUBLIC)];
	size_t	off = 0;
	TSS2_RC	rc;

	if ((rc = tss.Tss2_MU_TPM2B_PUBLIC_Marshal(pub, tmp, sizeof(tmp),
	    &off)) != TSS2_RC_SUCCESS)
		return na_tpm_rc_why(rc, "marshal TPM2B_PUBLIC", why, whylen);
	if (off > NA_TPM_MAX_PUBLIC)
		return err_why(why, whylen, WICK_ERR_LIMIT, "public area of "
		    "%zu bytes", off);
	return buf_put(out, tmp, off);
}

static int
unmarshal_public(const uint8_t *p, size_t len, TPM2B_PUBLIC *pub)
{
	size_t off = 0;

	memset(pub, 0, sizeof(*pub));
	if (len == 0 || len > NA_TPM_MAX_PUBLIC)
		return WICK_ERR_INVALID;
	if (tss.Tss2_MU_TPM2B_PUBLIC_Unmarshal(p, len, &off, pub) !=
	    TSS2_RC_SUCCESS || off != len)
		return WICK_ERR_INVALID;
	return 0;
}

/* ---- session ------------------------------------------------------------- */

void
na_tpm_answer_init(struct na_tpm_answer *a)
{
	buf_init(&a->secret, NA_TPM_MAX_BLOB);
	buf_set_secret(&a->secret);
	buf_init(&a->quote, sizeof(TPM2B_ATTEST));
	buf_init(&a->signature, sizeof(TPMT_SIGNATURE));
	a->npcrs = 0;
	memset(a->pcr_values, 0, sizeof(a->pcr_values));
}

static void
answer_reset(struct na_tpm_answer *a)
{
	buf_reset(&a->secret);
	buf_reset(&a->quote);
	buf_reset(&a->signature);
	a->npcrs = 0;
	memset(a->pcr_values, 0, sizeof(a->pcr_values));
}

void
na_tpm_answer_cleanup(struct na_tpm_answer *a)
{
	buf_cleanup(&a->secret);
	buf_cleanup(&a->quote);
	buf_cleanup(&a->signature);
	a->npcrs = 0;
}

/*
 * What to say when the TCTI does not come up: the device or socket it
 * names may be missing or not ours to open.
 */
static void
tcti_hint(const char *tcti, char *out, size_t outlen)
{
	char	path[NA_TPM_MAX_TCTI + 1], ebuf[128];
	size_t	n;

	snprintf(out, outlen, "cannot connect");
	if (strncmp(tcti, "device:", 7) == 0)
		tcti += 7;
	else if (strncmp(tcti, "swtpm:path=", 11) == 0)
		tcti += 11;
	else
		return;
	n = strcspn(tcti, ",");
	if (n == 0 || n >= sizeof(path))
		return;
	memcpy(path, tcti, n);
	path[n] = '\0';
	if (access(path, R_OK | W_OK) != 0)
		snprintf(out, outlen, "cannot connect (%s: %s)", path,
		    strerror_r(errno, ebuf, sizeof(ebuf)));
}

int
na_tpm_open(const char *tcti, struct na_tpm **out, char *why, size_t whylen)
{
	struct na_tpm	*t = NULL;
	TSS2_RC		 rc;
	size_t		 i, n;
	int		 r;

	*out = NULL;
	if (tcti == NULL)
		tcti = NA_TPM_DEFAULT_TCTI;
	n = strnlen(tcti, NA_TPM_MAX_TCTI + 1);
	if (n == 0 || n > NA_TPM_MAX_TCTI)
		return err_why(why, whylen, WICK_ERR_INVALID, "TCTI string "
		    "empty or longer than %d bytes", NA_TPM_MAX_TCTI);
	for (i = 0; i < n; i++)
		if ((unsigned char)tcti[i] < 0x20 || tcti[i] == 0x7f)
			return err_why(why, whylen, WICK_ERR_INVALID,
			    "control character in the TCTI string");
	if ((r = na_tpm_load(why, whylen)) != 0)
		return r;
	if ((t = calloc(1, sizeof(*t))) == NULL)
		return err_why(why, whylen, WICK_ERR_ALLOC, "out of memory");
	t->ek = ESYS_TR_NONE;
	t->ak = ESYS_TR_NONE;
	if ((rc = tss.Tss2_TctiLdr_Initialize(tcti, &t->tcti)) !=
	    TSS2_RC_SUCCESS) {
		char what[NA_TPM_MAX_TCTI + 64];

		t->tcti = NULL;
		tcti_hint(tcti, what, sizeof(what));
		(void)na_tpm_rc_why(rc, what, why, whylen);
		r = WICK_ERR_UNAVAILABLE;
		goto out;
	}
	if ((rc = tss.Esys_Initialize(&t->esys, t->tcti, NULL)) !=
	    TSS2_RC_SUCCESS) {
		r = na_tpm_rc_why(rc, "ESYS initialization", why, whylen);
		goto out;
	}
	*out = t;
	t = NULL;
	r = 0;
out:
	na_tpm_close(t);
	return r;
}

void
na_tpm_close(struct na_tpm *t)
{
	if (t == NULL)
		return;
	if (t->esys != NULL) {
		flush(t, &t->ak);
		flush(t, &t->ek);
		tss.Esys_Finalize(&t->esys);
	}
	if (t->tcti != NULL)
		tss.Tss2_TctiLdr_Finalize(&t->tcti);
	free(t);
}

ESYS_CONTEXT *
na_tpm_esys(struct na_tpm *t)
{
	return t->esys;
}

ESYS_TR
na_tpm_ek_handle(const struct na_tpm *t)
{
	return t->ek;
}

ESYS_TR
na_tpm_ak_handle(const struct na_tpm *t)
{
	return t->ak;
}

/* ---- endorsement key ----------------------------------------------------- */

/* TPM2_PT_NV_BUFFER_MAX: the largest NV_Read (P7). */
static int
nv_buffer_max(struct na_tpm *t, uint32_t *out, char *why, size_t whylen)
{
	TPMS_CAPABILITY_DATA	*cap = NULL;
	TPMI_YES_NO		 more;
	TSS2_RC			 rc;
	uint32_t		 i, v = 0;

	if ((rc = tss.Esys_GetCapability(t->esys, ESYS_TR_NONE, ESYS_TR_NONE,
	    ESYS_TR_NONE, TPM2_CAP_TPM_PROPERTIES, TPM2_PT_NV_BUFFER_MAX, 1,
	    &more, &cap)) != TSS2_RC_SUCCESS)
		return na_tpm_rc_why(rc, "GetCapability(NV_BUFFER_MAX)", why,
		    whylen);
	for (i = 0; i < cap->data.tpmProperties.count &&
	    i < TPM2_MAX_TPM_PROPERTIES; i++)
		if (cap->data.tpmProperties.tpmProperty[i].property ==
		    TPM2_PT_NV_BUFFER_MAX)
			v = cap->data.tpmProperties.tpmProperty[i].value;
	tss.Esys_Free(cap);
	/* Absent or odd: the smallest size TPMs are known to take. */
	if (v == 0 || v > TPM2_MAX_NV_BUFFER_SIZE)
		v = v == 0 ? 512 : TPM2_MAX_NV_BUFFER_SIZE;
	*out = v;
	return 0;
}

/*
 * The EK certificate from NV, trimmed to its DER length; out stays empty
 * when the index does not exist.
 */
static int
ek_cert_read(struct na_tpm *t, struct buf *out, char *why, size_t whylen)
{
	TPM2B_NV_PUBLIC		*nvpub = NULL;
	TPM2B_MAX_NV_BUFFER	*data = NULL;
	ESYS_TR			 nv = ESYS_TR_NONE, auth;
	TSS2_RC			 rc;
	uint8_t			*cert = NULL;
	uint32_t		 chunk = 0, size, off, n;
	const uint8_t		*q;
	struct der		 d;
	int			 r;

	rc = tss.Esys_TR_FromTPMPublic(t->esys, NA_TPM_EK_CERT_NV, ESYS_TR_NONE,
	    ESYS_TR_NONE, ESYS_TR_NONE, &nv);
	if (rc_is(rc, TPM2_RC_HANDLE))
		return 0;		/* no certificate: not an error */
	if (rc != TSS2_RC_SUCCESS)
		return na_tpm_rc_why(rc, "EK certificate NV index", why,
		    whylen);
	if ((rc = tss.Esys_NV_ReadPublic(t->esys, nv, ESYS_TR_NONE, ESYS_TR_NONE,
	    ESYS_TR_NONE, &nvpub, NULL)) != TSS2_RC_SUCCESS) {
		r = na_tpm_rc_why(rc, "NV_ReadPublic(EK certificate)", why,
		    whylen);
		goto out;
	}
	size = nvpub->nvPublic.dataSize;
	/*
	 * The index's own (empty) authorization when it allows it: it does
	 * not depend on the owner password.  Else the owner's.
	 */
	auth = (nvpub->nvPublic.attributes & TPMA_NV_AUTHREAD) != 0 ? nv :
	    ESYS_TR_RH_OWNER;
	if (size == 0) {
		r = 0;
		goto out;
	}
	if (size > NA_TPM_MAX_EK_CERT) {
		r = err_why(why, whylen, WICK_ERR_LIMIT, "EK certificate NV "
		    "index of %u bytes (at most %d)", size,
		    NA_TPM_MAX_EK_CERT);
		goto out;
	}
	if ((r = nv_buffer_max(t, &chunk, why, whylen)) != 0)
		goto out;
	if ((cert = malloc(size)) == NULL) {
		r = err_why(why, whylen, WICK_ERR_ALLOC, "out of memory");
		goto out;
	}
	for (off = 0; off < size; off += n) {
		n = size - off < chunk ? size - off : chunk;
		if ((rc = tss.Esys_NV_Read(t->esys, auth, nv, ESYS_TR_PASSWORD,
		    ESYS_TR_NONE, ESYS_TR_NONE, (UINT16)n, (UINT16)off,
		    &data)) != TSS2_RC_SUCCESS) {
			r = na_tpm_rc_why(rc, "NV_Read(EK certificate)", why,
			    whylen);
			goto out;
		}
		if (data->size != n) {
			r = err_why(why, whylen, WICK_ERR_PROTOCOL, "NV_Read "
			    "returned %u bytes for %u", data->size, n);
			goto out;
		}
		memcpy(cert + off, data->buffer, n);
		tss.Esys_Free(data);
		data = NULL;
	}
	/* Some TPMs pad the index: keep the certificate only (P7). */
	q = cert;
	if (der_next(&q, cert + size, &d) != 0 || d.tag != DER_SEQ) {
		r = err_why(why, whylen, WICK_ERR_INVALID, "the EK certificate "
		    "NV index does not hold a DER certificate");
		goto out;
	}
	r = buf_put(out, cert, d.tlvlen);
out:
	free(cert);
	tss.Esys_Free(data);
	tss.Esys_Free(nvpub);
	if (nv != ESYS_TR_NONE)
		(void)tss.Esys_TR_Close(t->esys, &nv);
	return r;
}

/* Template L-1 of the TCG EK Credential Profile: RSA-2048, AES-128-CFB. */
static void
ek_template(TPM2B_PUBLIC *p)
{
	memset(p, 0, sizeof(*p));
	p->publicArea.type = TPM2_ALG_RSA;
	p->publicArea.nameAlg = TPM2_ALG_SHA256;
	p->publicArea.objectAttributes = EK_ATTRS;
	p->publicArea.authPolicy.size = sizeof(ek_policy);
	memcpy(p->publicArea.authPolicy.buffer, ek_policy, sizeof(ek_policy));
	p->publicArea.parameters.rsaDetail.symmetric.algorithm = TPM2_ALG_AES;
	p->publicArea.parameters.rsaDetail.symmetric.keyBits.aes = 128;
	p->publicArea.parameters.rsaDetail.symmetric.mode.aes = TPM2_ALG_CFB;
	p->publicArea.parameters.rsaDetail.scheme.scheme = TPM2_ALG_NULL;
	p->publicArea.parameters.rsaDetail.keyBits = 2048;
	p->publicArea.parameters.rsaDetail.exponent = 0;
	p->publicArea.unique.rsa.size = 256;
}

/* The certificate's key must be the EK made from the template. */
static int
ek_cert_check(const struct buf *cert, const TPMT_PUBLIC *ek, char *why,
    size_t whylen)
{
	const uint8_t	*p = buf_ptr(cert);
	X509		*x = NULL;
	EVP_PKEY	*k = NULL;
	int		 r;

	if ((x = d2i_X509(NULL, &p, (long)buf_len(cert))) == NULL) {
		r = err_why(why, whylen, WICK_ERR_INVALID, "the EK "
		    "certificate in NV does not parse");
		goto out;
	}
	if ((r = rsa_pkey(ek, &k)) != 0) {
		(void)err_why(why, whylen, r, "the EK is not an RSA key");
		goto out;
	}
	if (EVP_PKEY_eq(X509_get0_pubkey(x), k) != 1) {
		r = err_why(why, whylen, WICK_ERR_INVALID, "the EK "
		    "certificate's key is not the EK of template L-1");
		goto out;
	}
	r = 0;
out:
	EVP_PKEY_free(k);
	X509_free(x);
	return r;
}

static int
ek_make(struct na_tpm *t, struct buf *ek_cert, struct buf *ek_pub,
    char *why, size_t whylen)
{
	TPM2B_SENSITIVE_CREATE	 sens;
	TPM2B_PUBLIC		 tmpl, *pub = NULL;
	TPM2B_DATA		 outside;
	TPML_PCR_SELECTION	 creation;
	TSS2_RC			 rc;
	int			 r;

	memset(&sens, 0, sizeof(sens));
	memset(&outside, 0, sizeof(outside));
	memset(&creation, 0, sizeof(creation));
	ek_template(&tmpl);
	if ((r = ek_cert_read(t, ek_cert, why, whylen)) != 0)
		goto out;
	if ((rc = tss.Esys_CreatePrimary(t->esys, ESYS_TR_RH_ENDORSEMENT,
	    ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, &sens, &tmpl,
	    &outside, &creation, &t->ek, &pub, NULL, NULL, NULL)) !=
	    TSS2_RC_SUCCESS) {
		t->ek = ESYS_TR_NONE;
		r = na_tpm_rc_why(rc, "CreatePrimary(EK)", why, whylen);
		goto out;
	}
	if (pub->publicArea.type != TPM2_ALG_RSA ||
	    pub->publicArea.objectAttributes != EK_ATTRS ||
	    pub->publicArea.unique.rsa.size != 256) {
		r = err_why(why, whylen, WICK_ERR_PROTOCOL, "the TPM made an "
		    "EK unlike template L-1");
		goto out;
	}
	if (buf_len(ek_cert) > 0 &&
	    (r = ek_cert_check(ek_cert, &pub->publicArea, why, whylen)) != 0)
		goto out;
	r = marshal_public(pub, ek_pub, why, whylen);
out:
	if (r != 0)
		flush(t, &t->ek);
	tss.Esys_Free(pub);
	return r;
}

int
na_tpm_endorsement(struct na_tpm *t, struct buf *ek_cert, struct buf *ek_pub,
    char *why, size_t whylen)
{
	int r;

	buf_reset(ek_cert);
	buf_reset(ek_pub);
	if (t->ek != ESYS_TR_NONE)
		return err_why(why, whylen, WICK_ERR_STATE, "the EK is "
		    "already loaded");
	if ((r = ek_make(t, ek_cert, ek_pub, why, whylen)) != 0) {
		buf_reset(ek_cert);
		buf_reset(ek_pub);
	}
	return r;
}

/* ---- attestation key ----------------------------------------------------- */

/* TCG storage primary template, ECC NIST P-256, AES-128-CFB. */
static void
srk_template(TPM2B_PUBLIC *p)
{
	memset(p, 0, sizeof(*p));
	p->publicArea.type = TPM2_ALG_ECC;
	p->publicArea.nameAlg = TPM2_ALG_SHA256;
	p->publicArea.objectAttributes = SRK_ATTRS;
	p->publicArea.parameters.eccDetail.symmetric.algorithm = TPM2_ALG_AES;
	p->publicArea.parameters.eccDetail.symmetric.keyBits.aes = 128;
	p->publicArea.parameters.eccDetail.symmetric.mode.aes = TPM2_ALG_CFB;
	p->publicArea.parameters.eccDetail.scheme.scheme = TPM2_ALG_NULL;
	p->publicArea.parameters.eccDetail.curveID = TPM2_ECC_NIST_P256;
	p->publicArea.parameters.eccDetail.kdf.scheme = TPM2_ALG_NULL;
	p->publicArea.unique.ecc.x.size = 32;
	p->publicArea.unique.ecc.y.size = 32;
}

static void
ak_template(TPM2B_PUBLIC *p, unsigned flags)
{
	memset(p, 0, sizeof(*p));
	p->publicArea.type = TPM2_ALG_ECC;
	p->publicArea.nameAlg = TPM2_ALG_SHA256;
	p->publicArea.objectAttributes = AK_ATTRS;
	if (flags & NA_TPM_AK_UNRESTRICTED)
		p->publicArea.objectAttributes &= ~TPMA_OBJECT_RESTRICTED;
	p->publicArea.parameters.eccDetail.symmetric.algorithm =
	    TPM2_ALG_NULL;
	p->publicArea.parameters.eccDetail.scheme.scheme = TPM2_ALG_ECDSA;
	p->publicArea.parameters.eccDetail.scheme.details.ecdsa.hashAlg =
	    TPM2_ALG_SHA256;
	p->publicArea.parameters.eccDetail.curveID = TPM2_ECC_NIST_P256;
	p->publicArea.parameters.eccDetail.kdf.scheme = TPM2_ALG_NULL;
}

static int
ak_make(struct na_tpm *t, unsigned flags, struct buf *ak_pub, char *why,
    size_t whylen)
{
	TPM2B_SENSITIVE_CREATE	 sens;
	TPM2B_PUBLIC		 tmpl, *srkpub = NULL, *pub = NULL;
	TPM2B_PRIVATE		*priv = NULL;
	TPM2B_DATA		 outside;
	TPML_PCR_SELECTION	 creation;
	ESYS_TR			 srk = ESYS_TR_NONE;
	TSS2_RC			 rc;
	int			 r;

	memset(&sens, 0, sizeof(sens));
	memset(&outside, 0, sizeof(outside));
	memset(&creation, 0, sizeof(creation));
	srk_template(&tmpl);
	if ((rc = tss.Esys_CreatePrimary(t->esys, ESYS_TR_RH_OWNER,
	    ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, &sens, &tmpl,
	    &outside, &creation, &srk, &srkpub, NULL, NULL, NULL)) !=
	    TSS2_RC_SUCCESS) {
		srk = ESYS_TR_NONE;
		r = na_tpm_rc_why(rc, "CreatePrimary(storage key)", why,
		    whylen);
		goto out;
	}
	ak_template(&tmpl, flags);
	if ((rc = tss.Esys_Create(t->esys, srk, ESYS_TR_PASSWORD, ESYS_TR_NONE,
	    ESYS_TR_NONE, &sens, &tmpl, &outside, &creation, &priv, &pub,
	    NULL, NULL, NULL)) != TSS2_RC_SUCCESS) {
		r = na_tpm_rc_why(rc, "Create(AK)", why, whylen);
		goto out;
	}
	if ((rc = tss.Esys_Load(t->esys, srk, ESYS_TR_PASSWORD, ESYS_TR_NONE,
	    ESYS_TR_NONE, priv, pub, &t->ak)) != TSS2_RC_SUCCESS) {
		t->ak = ESYS_TR_NONE;
		r = na_tpm_rc_why(rc, "Load(AK)", why, whylen);
		goto out;
	}
	/* The storage key has done its work: free its slot (P4). */
	flush(t, &srk);
	if (pub->publicArea.type != TPM2_ALG_ECC ||
	    pub->publicArea.objectAttributes !=
	    tmpl.publicArea.objectAttributes ||
	    pub->publicArea.unique.ecc.x.size != 32 ||
	    pub->publicArea.unique.ecc.y.size != 32) {
		r = err_why(why, whylen, WICK_ERR_PROTOCOL, "the TPM made an "
		    "AK unlike its template");
		goto out;
	}
	r = marshal_public(pub, ak_pub, why, whylen);
out:
	flush(t, &srk);
	if (r != 0)
		flush(t, &t->ak);
	tss.Esys_Free(srkpub);
	tss.Esys_Free(pub);
	if (priv != NULL)
		OPENSSL_cleanse(priv, sizeof(*priv));
	tss.Esys_Free(priv);
	return r;
}

int
na_tpm_identity(struct na_tpm *t, struct buf *ek_cert, struct buf *ek_pub,
    struct buf *ak_pub, char *why, size_t whylen)
{
	return na_tpm_identity_flags(t, 0, ek_cert, ek_pub, ak_pub, why,
	    whylen);
}

int
na_tpm_identity_flags(struct na_tpm *t, unsigned flags, struct buf *ek_cert,
    struct buf *ek_pub, struct buf *ak_pub, char *why, size_t whylen)
{
	int r;

	buf_reset(ek_cert);
	buf_reset(ek_pub);
	buf_reset(ak_pub);
	if (t->identity || t->ek != ESYS_TR_NONE)
		return err_why(why, whylen, WICK_ERR_STATE, "the session "
		    "already has an EK or AK");
	if ((flags & ~NA_TPM_AK_UNRESTRICTED) != 0)
		return err_why(why, whylen, WICK_ERR_INVALID, "unknown flags "
		    "0x%x", flags);
	t->identity = 1;
	/* AK first: its parent is gone before the EK takes a slot. */
	if ((r = ak_make(t, flags, ak_pub, why, whylen)) != 0)
		goto out;
	r = ek_make(t, ek_cert, ek_pub, why, whylen);
out:
	if (r != 0) {
		flush(t, &t->ak);
		buf_reset(ek_cert);
		buf_reset(ek_pub);
		buf_reset(ak_pub);
	}
	return r;
}

/* ---- the challenge ------------------------------------------------------- */

static int
challenge_check(const struct challenge *c, char *why, size_t whylen)
{
	size_t i;

	if (c->credential_blob == NULL || c->credential_blob_len == 0 ||
	    c->encrypted_secret == NULL || c->encrypted_secret_len == 0)
		return err_why(why, whylen, WICK_ERR_INVALID, "empty "
		    "credential blob or encrypted secret");
	if (c->credential_blob_len > NA_TPM_MAX_BLOB ||
	    c->encrypted_secret_len > NA_TPM_MAX_BLOB)
		return err_why(why, whylen, WICK_ERR_LIMIT, "credential blob "
		    "or encrypted secret over %d bytes", NA_TPM_MAX_BLOB);
	if (c->nonce == NULL || c->nonce_len < NA_TPM_MIN_NONCE ||
	    c->nonce_len > NA_TPM_MAX_NONCE)
		return err_why(why, whylen, WICK_ERR_INVALID, "nonce of %zu "
		    "bytes (%d to %d)", c->nonce_len, NA_TPM_MIN_NONCE,
		    NA_TPM_MAX_NONCE);
	if (c->csr_spki_len > NA_TPM_MAX_SPKI ||
	    (c->csr_spki_len > 0 && c->csr_spki == NULL))
		return err_why(why, whylen, WICK_ERR_LIMIT, "CSR key of %zu "
		    "bytes", c->csr_spki_len);
	if (c->npcrs > 0 && c->pcrs == NULL)
		return err_why(why, whylen, WICK_ERR_INVALID, "no PCR list");
	if (c->npcrs > NA_TPM_MAX_PCRS)
		return err_why(why, whylen, WICK_ERR_LIMIT, "%zu PCRs (at "
		    "most %d)", c->npcrs, NA_TPM_MAX_PCRS);
	for (i = 0; i < c->npcrs; i++) {
		if (c->pcrs[i] >= NA_TPM_MAX_PCRS)
			return err_why(why, whylen, WICK_ERR_INVALID, "PCR %u "
			    "out of range", c->pcrs[i]);
		if (i > 0 && c->pcrs[i] <= c->pcrs[i - 1])
			return err_why(why, whylen, WICK_ERR_INVALID, "PCRs "
			    "not strictly ascending");
	}
	return 0;
}

static void
pcr_selection(const struct challenge *c, TPML_PCR_SELECTION *sel)
{
	size_t i;

	memset(sel, 0, sizeof(*sel));
	sel->count = 1;
	sel->pcrSelections[0].hash = TPM2_ALG_SHA256;
	sel->pcrSelections[0].sizeofSelect = PCR_SELECT_BYTES;
	for (i = 0; i < c->npcrs; i++)
		sel->pcrSelections[0].pcrSelect[c->pcrs[i] / 8] |=
		    (uint8_t)(1u << (c->pcrs[i] % 8));
}

static int
activate(struct na_tpm *t, const struct challenge *c,
    struct buf *secret, char *why, size_t whylen)
{
	TPM2B_ID_OBJECT		 blob;
	TPM2B_ENCRYPTED_SECRET	 enc;
	TPMT_SYM_DEF		 sym;
	TPM2B_DIGEST		*cert = NULL;
	ESYS_TR			 sess = ESYS_TR_NONE;
	TSS2_RC			 rc;
	size_t			 off;
	int			 r;

	memset(&blob, 0, sizeof(blob));
	memset(&enc, 0, sizeof(enc));
	off = 0;
	if (tss.Tss2_MU_TPM2B_ID_OBJECT_Unmarshal(c->credential_blob,
	    c->credential_blob_len, &off, &blob) != TSS2_RC_SUCCESS ||
	    off != c->credential_blob_len || blob.size == 0)
		return err_why(why, whylen, WICK_ERR_INVALID, "the credential "
		    "blob is not one TPM2B_ID_OBJECT");
	off = 0;
	if (tss.Tss2_MU_TPM2B_ENCRYPTED_SECRET_Unmarshal(c->encrypted_secret,
	    c->encrypted_secret_len, &off, &enc) != TSS2_RC_SUCCESS ||
	    off != c->encrypted_secret_len || enc.size == 0)
		return err_why(why, whylen, WICK_ERR_INVALID, "the encrypted "
		    "secret is not one TPM2B_ENCRYPTED_SECRET");

	/* The EK (template L-1) takes a policy, not a password (P5). */
	memset(&sym, 0, sizeof(sym));
	sym.algorithm = TPM2_ALG_NULL;
	if ((rc = tss.Esys_StartAuthSession(t->esys, ESYS_TR_NONE, ESYS_TR_NONE,
	    ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, NULL, TPM2_SE_POLICY,
	    &sym, TPM2_ALG_SHA256, &sess)) != TSS2_RC_SUCCESS) {
		sess = ESYS_TR_NONE;
		r = na_tpm_rc_why(rc, "StartAuthSession", why, whylen);
		goto out;
	}
	if ((rc = tss.Esys_PolicySecret(t->esys, ESYS_TR_RH_ENDORSEMENT, sess,
	    ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, NULL, NULL, NULL, 0,
	    NULL, NULL)) != TSS2_RC_SUCCESS) {
		r = na_tpm_rc_why(rc, "PolicySecret(endorsement)", why,
		    whylen);
		goto out;
	}
	if ((rc = tss.Esys_ActivateCredential(t->esys, t->ak, t->ek,
	    ESYS_TR_PASSWORD, sess, ESYS_TR_NONE, &blob, &enc, &cert)) !=
	    TSS2_RC_SUCCESS) {
		r = na_tpm_rc_why(rc, "ActivateCredential", why, whylen);
		/*
		 * The challenge's fault, not made for this EK and AK: a
		 * parameter the TPM refuses (integrity, value, size), or
		 * TPM_RC_FAILURE, which libtpms answers for a secret that
		 * does not decrypt (the TPM stays usable, and PolicySecret
		 * has just succeeded, so the TPM is not in failure mode).
		 */
		if ((rc & TSS2_RC_LAYER_MASK) == TSS2_TPM_RC_LAYER &&
		    (((rc & TPM2_RC_FMT1) != 0 && (rc & TPM2_RC_P) != 0) ||
		    rc == TPM2_RC_FAILURE))
			r = WICK_ERR_PROTOCOL;
		goto out;
	}
	r = buf_put(secret, cert->buffer, cert->size);
out:
	/* ESYS sessions continue after a command: end this one (P6). */
	if (sess != ESYS_TR_NONE)
		(void)tss.Esys_FlushContext(t->esys, sess);
	if (cert != NULL)
		OPENSSL_cleanse(cert, sizeof(*cert));
	tss.Esys_Free(cert);
	OPENSSL_cleanse(&blob, sizeof(blob));
	OPENSSL_cleanse(&enc, sizeof(enc));
	return r;
}

/*
 * Read the selected PCRs into vals (by index), at most 8 per command
 * (P10).  WICK_ERR_AGAIN when they changed while being read.
 */
static int
pcr_read(struct na_tpm *t, const TPML_PCR_SELECTION *sel,
    uint8_t vals[NA_TPM_MAX_PCRS][NA_TPM_PCR_LEN], char *why, size_t whylen)
{
	TPML_PCR_SELECTION	 want, *got = NULL;
	TPML_DIGEST		*d = NULL;
	TSS2_RC			 rc;
	UINT32			 counter, first = 0;
	uint32_t		 i, k, bit, pcr;
	int			 r, left, started = 0;

	want = *sel;
	for (;;) {
		left = 0;
		for (i = 0; i < PCR_SELECT_BYTES; i++)
			left |= want.pcrSelections[0].pcrSelect[i];
		if (!left)
			break;
		if ((rc = tss.Esys_PCR_Read(t->esys, ESYS_TR_NONE, ESYS_TR_NONE,
		    ESYS_TR_NONE, &want, &counter, &got, &d)) !=
		    TSS2_RC_SUCCESS) {
			r = na_tpm_rc_why(rc, "PCR_Read", why, whylen);
			goto out;
		}
		if (started && counter != first) {
			r = WICK_ERR_AGAIN;
			goto out;
		}
		first = counter;
		started = 1;
		k = 0;
		for (i = 0; i < got->count && i < TPM2_NUM_PCR_BANKS; i++) {
			if (got->pcrSelections[i].hash != TPM2_ALG_SHA256)
				continue;
			for (bit = 0; bit < 8u *
			    got->pcrSelections[i].sizeofSelect &&
			    bit < 8u * TPM2_PCR_SELECT_MAX; bit++) {
				if ((got->pcrSelections[i].pcrSelect[bit / 8] &
				    (1u << (bit % 8))) == 0)
					continue;
				pcr = bit;
				if (pcr >= NA_TPM_MAX_PCRS ||
				    (want.pcrSelections[0].pcrSelect[pcr / 8] &
				    (1u << (pcr % 8))) == 0 || k >= d->count ||
				    d->digests[k].size != NA_TPM_PCR_LEN) {
					r = err_why(why, whylen,
					    WICK_ERR_PROTOCOL, "PCR_Read "
					    "answered what was not asked");
					goto out;
				}
				memcpy(vals[pcr], d->digests[k].buffer,
				    NA_TPM_PCR_LEN);
				want.pcrSelections[0].pcrSelect[pcr / 8] &=
				    (uint8_t)~(1u << (pcr % 8));
				k++;
			}
		}
		if (k == 0 || k != d->count) {
			r = err_why(why, whylen, WICK_ERR_UNSUPPORTED,
			    "PCR_Read returned no sha256 values: is the "
			    "sha256 bank active?");
			goto out;
		}
		tss.Esys_Free(got);
		tss.Esys_Free(d);
		got = NULL;
		d = NULL;
	}
	r = 0;
out:
	tss.Esys_Free(got);
	tss.Esys_Free(d);
	return r;
}

/*
 * What the server will check, checked first: magic, type, qualifying
 * data, selection, and the PCR digest over vals.  WICK_ERR_AGAIN when
 * only the digest differs (the PCRs moved between quote and read).
 */
static int
quote_check(const TPM2B_ATTEST *q, const TPM2B_DATA *qdata,
    const TPML_PCR_SELECTION *sel, const struct buf *vals, char *why,
    size_t whylen)
{
	TPMS_ATTEST	 a;
	uint8_t		 md[32];
	unsigned int	 mdlen = 0;
	size_t		 off = 0;
	const TPML_PCR_SELECTION *qs;

	memset(&a, 0, sizeof(a));
	if (tss.Tss2_MU_TPMS_ATTEST_Unmarshal(q->attestationData, q->size, &off,
	    &a) != TSS2_RC_SUCCESS || off != q->size)
		return err_why(why, whylen, WICK_ERR_PROTOCOL, "the quote "
		    "does not parse");
	if (a.magic != TPM2_GENERATED_VALUE || a.type != TPM2_ST_ATTEST_QUOTE)
		return err_why(why, whylen, WICK_ERR_PROTOCOL, "the quote is "
		    "not a TPM-generated quote");
	if (a.extraData.size != qdata->size || memcmp(a.extraData.buffer,
	    qdata->buffer, qdata->size) != 0)
		return err_why(why, whylen, WICK_ERR_PROTOCOL, "the quote "
		    "carries other qualifying data");
	qs = &a.attested.quote.pcrSelect;
	if (qs->count != sel->count || (sel->count == 1 &&
	    (qs->pcrSelections[0].hash != sel->pcrSelections[0].hash ||
	    qs->pcrSelections[0].sizeofSelect !=
	    sel->pcrSelections[0].sizeofSelect ||
	    memcmp(qs->pcrSelections[0].pcrSelect,
	    sel->pcrSelections[0].pcrSelect, PCR_SELECT_BYTES) != 0)))
		return err_why(why, whylen, WICK_ERR_PROTOCOL, "the quote "
		    "covers other PCRs than asked");
	if (EVP_Digest(buf_ptr(vals), buf_len(vals), md, &mdlen,
	    EVP_sha256(), NULL) != 1)
		return err_why(why, whylen, WICK_ERR_CRYPTO, "SHA-256 failed");
	if (a.attested.quote.pcrDigest.size != mdlen ||
	    memcmp(a.attested.quote.pcrDigest.buffer, md, mdlen) != 0)
		return WICK_ERR_AGAIN;
	return 0;
}

static int
qualifying_data(const struct challenge *c, TPM2B_DATA *qdata)
{
	EVP_MD_CTX	*md = NULL;
	unsigned int	 n = 0;
	int		 r = WICK_ERR_CRYPTO;

	memset(qdata, 0, sizeof(*qdata));
	if ((md = EVP_MD_CTX_new()) == NULL ||
	    EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1 ||
	    EVP_DigestUpdate(md, c->nonce, c->nonce_len) != 1 ||
	    (c->csr_spki_len > 0 &&
	    EVP_DigestUpdate(md, c->csr_spki, c->csr_spki_len) != 1) ||
	    EVP_DigestFinal_ex(md, qdata->buffer, &n) != 1 || n != 32)
		goto out;
	qdata->size = (UINT16)n;
	r = 0;
out:
	EVP_MD_CTX_free(md);
	return r;
}

static int
quote(struct na_tpm *t, const struct challenge *c, struct na_tpm_answer *ans,
    char *why, size_t whylen)
{
	uint8_t			 vals[NA_TPM_MAX_PCRS][NA_TPM_PCR_LEN];
	uint8_t			 tmp[sizeof(TPMT_SIGNATURE) +
				    sizeof(TPM2B_ATTEST)];
	TPML_PCR_SELECTION	 sel;
	TPMT_SIG_SCHEME		 scheme;
	TPM2B_DATA		 qdata;
	struct buf		 concat;
	TPM2B_ATTEST		*quoted = NULL;
	TPMT_SIGNATURE		*sig = NULL;
	TSS2_RC			 rc;
	size_t			 i, off;
	int			 r = WICK_ERR_INTERNAL, try;

	buf_init(&concat, NA_TPM_MAX_PCRS * NA_TPM_PCR_LEN);
	pcr_selection(c, &sel);
	memset(&scheme, 0, sizeof(scheme));
	scheme.scheme = TPM2_ALG_NULL;	/* the AK's own: ECDSA-SHA256 */
	if (qualifying_data(c, &qdata) != 0) {
		r = err_why(why, whylen, WICK_ERR_CRYPTO, "SHA-256 failed");
		goto out;
	}
	for (try = 0; try < NA_TPM_QUOTE_TRIES; try++) {
		tss.Esys_Free(quoted);
		tss.Esys_Free(sig);
		quoted = NULL;
		sig = NULL;
		buf_reset(&concat);
		if ((rc = tss.Esys_Quote(t->esys, t->ak, ESYS_TR_PASSWORD,
		    ESYS_TR_NONE, ESYS_TR_NONE, &qdata, &scheme, &sel, &quoted,
		    &sig)) != TSS2_RC_SUCCESS) {
			r = na_tpm_rc_why(rc, "Quote", why, whylen);
			goto out;
		}
		r = pcr_read(t, &sel, vals, why, whylen);
		if (r == WICK_ERR_AGAIN)
			continue;
		if (r != 0)
			goto out;
		for (i = 0; i < c->npcrs; i++)
			if ((r = buf_put(&concat, vals[c->pcrs[i]],
			    NA_TPM_PCR_LEN)) != 0)
				goto out;
		r = quote_check(quoted, &qdata, &sel, &concat, why, whylen);
		if (r != WICK_ERR_AGAIN)
			break;
	}
	if (r == WICK_ERR_AGAIN)
		r = err_why(why, whylen, WICK_ERR_AGAIN, "the PCRs changed "
		    "during each of %d quotes", NA_TPM_QUOTE_TRIES);
	if (r != 0)
		goto out;
	off = 0;
	if ((rc = tss.Tss2_MU_TPM2B_ATTEST_Marshal(quoted, tmp, sizeof(tmp),
	    &off)) != TSS2_RC_SUCCESS) {
		r = na_tpm_rc_why(rc, "marshal TPM2B_ATTEST", why, whylen);
		goto out;
	}
	if ((r = buf_put(&ans->quote, tmp, off)) != 0)
		goto out;
	off = 0;
	if ((rc = tss.Tss2_MU_TPMT_SIGNATURE_Marshal(sig, tmp, sizeof(tmp),
	    &off)) != TSS2_RC_SUCCESS) {
		r = na_tpm_rc_why(rc, "marshal TPMT_SIGNATURE", why, whylen);
		goto out;
	}
	if ((r = buf_put(&ans->signature, tmp, off)) != 0)
		goto out;
	for (i = 0; i < c->npcrs; i++)
		memcpy(ans->pcr_values[i], vals[c->pcrs[i]], NA_TPM_PCR_LEN);
	ans->npcrs = c->npcrs;
out:
	buf_cleanup(&concat);
	tss.Esys_Free(quoted);
	tss.Esys_Free(sig);
	return r;
}

int
na_tpm_answer(struct na_tpm *t, const uint8_t *credential_blob,
    size_t credential_blob_len, const uint8_t *encrypted_secret,
    size_t encrypted_secret_len, const uint8_t *nonce, size_t nonce_len,
    const uint32_t *pcrs, size_t npcrs, const uint8_t *csr_spki,
    size_t csr_spki_len, struct na_tpm_answer *out, char *why,
    size_t whylen)
{
	struct challenge	c;
	int			r;

	answer_reset(out);
	buf_set_secret(&out->secret);
	if (t->ak == ESYS_TR_NONE || t->ek == ESYS_TR_NONE)
		return err_why(why, whylen, WICK_ERR_STATE, "no EK and AK: "
		    "call na_tpm_identity() first");
	c.credential_blob = credential_blob;
	c.credential_blob_len = credential_blob_len;
	c.encrypted_secret = encrypted_secret;
	c.encrypted_secret_len = encrypted_secret_len;
	c.nonce = nonce;
	c.nonce_len = nonce_len;
	c.pcrs = pcrs;
	c.npcrs = npcrs;
	c.csr_spki = csr_spki;
	c.csr_spki_len = csr_spki_len;
	if ((r = challenge_check(&c, why, whylen)) != 0)
		return r;
	if ((r = activate(t, &c, &out->secret, why, whylen)) != 0 ||
	    (r = quote(t, &c, out, why, whylen)) != 0)
		answer_reset(out);
	return r;
}

/* ---- pub hash ------------------------------------------------------------ */

int
na_tpm_pub_hash(const uint8_t *ek_pub, size_t len,
    char hex[NA_TPM_PUB_HASH_LEN + 1])
{
	TPM2B_PUBLIC	 pub;
	EVP_PKEY	*k = NULL;
	struct buf	 der;
	int		 r;

	hex[0] = '\0';
	if ((r = na_tpm_load(NULL, 0)) != 0)
		return r;
	buf_init(&der, PKEY_MAX_DER);
	if ((r = unmarshal_public(ek_pub, len, &pub)) != 0)
		goto out;
	if (pub.publicArea.type != TPM2_ALG_RSA) {
		r = WICK_ERR_UNSUPPORTED;
		goto out;
	}
	if ((r = rsa_pkey(&pub.publicArea, &k)) != 0 ||
	    (r = pkey_public_der(k, &der)) != 0)
		goto out;
	r = sha256_hex(buf_ptr(&der), buf_len(&der), hex);
out:
	EVP_PKEY_free(k);
	buf_cleanup(&der);
	return r;
}
