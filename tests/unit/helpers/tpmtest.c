/*
 * tpmtest.c: TPM operations for tests (see tpmtest.h).
 */
#include <stdio.h>
#include <string.h>

#include <openssl/evp.h>
#include <tss2/tss2_esys.h>
#include <tss2/tss2_mu.h>
#include <tss2/tss2_sys.h>
#include <tss2/tss2_tctildr.h>

#include "na_tpm_int.h"
#include "tpmtest.h"

int
tpmtest_open(const char *tcti, struct tpmtest *t, char *why, size_t whylen)
{
	TSS2_RC rc;

	memset(t, 0, sizeof(*t));
	if ((rc = Tss2_TctiLdr_Initialize(tcti, &t->tcti)) !=
	    TSS2_RC_SUCCESS)
		return na_tpm_rc_why(rc, "TCTI", why, whylen);
	if ((rc = Esys_Initialize(&t->esys, t->tcti, NULL)) !=
	    TSS2_RC_SUCCESS) {
		Tss2_TctiLdr_Finalize(&t->tcti);
		return na_tpm_rc_why(rc, "Esys_Initialize", why, whylen);
	}
	return 0;
}

void
tpmtest_close(struct tpmtest *t)
{
	if (t->esys != NULL)
		Esys_Finalize(&t->esys);
	if (t->tcti != NULL)
		Tss2_TctiLdr_Finalize(&t->tcti);
}

static int
handles(ESYS_CONTEXT *e, TPM2_HANDLE first, int flush, uint32_t *count,
    char *why, size_t whylen)
{
	TPMS_CAPABILITY_DATA	*cap = NULL;
	TSS2_SYS_CONTEXT	*sys = NULL;
	TPMI_YES_NO		 more;
	TPM2_HANDLE		 h;
	TSS2_RC			 rc;
	uint32_t		 i;
	int			 r = 0;

	*count = 0;
	if ((rc = Esys_GetCapability(e, ESYS_TR_NONE, ESYS_TR_NONE,
	    ESYS_TR_NONE, TPM2_CAP_HANDLES, first, TPM2_MAX_CAP_HANDLES,
	    &more, &cap)) != TSS2_RC_SUCCESS)
		return na_tpm_rc_why(rc, "GetCapability(handles)", why,
		    whylen);
	if (flush && (rc = Esys_GetSysContext(e, &sys)) != TSS2_RC_SUCCESS) {
		r = na_tpm_rc_why(rc, "Esys_GetSysContext", why, whylen);
		goto out;
	}
	for (i = 0; i < cap->data.handles.count; i++) {
		h = cap->data.handles.handle[i];
		if ((h >> 24) != (first >> 24))
			continue;
		(*count)++;
		if (flush && (rc = Tss2_Sys_FlushContext(sys, h)) !=
		    TSS2_RC_SUCCESS) {
			r = na_tpm_rc_why(rc, "FlushContext", why, whylen);
			goto out;
		}
	}
out:
	Esys_Free(cap);
	return r;
}

int
tpmtest_leftovers(ESYS_CONTEXT *e, int flush, uint32_t *objects,
    uint32_t *sessions, char *why, size_t whylen)
{
	uint32_t	loaded = 0, saved = 0;
	int		r;

	*objects = *sessions = 0;
	if ((r = handles(e, 0x80000000u /* transient */, flush, objects, why,
	    whylen)) != 0 ||
	    (r = handles(e, 0x02000000u /* loaded */, flush, &loaded, why,
	    whylen)) != 0 ||
	    (r = handles(e, 0x03000000u /* saved */, flush, &saved, why,
	    whylen)) != 0)
		return r;
	*sessions = loaded + saved;
	return 0;
}

static void
sha256_bank(TPML_PCR_SELECTION *sel, uint32_t pcr)
{
	memset(sel, 0, sizeof(*sel));
	sel->count = 1;
	sel->pcrSelections[0].hash = TPM2_ALG_SHA256;
	sel->pcrSelections[0].sizeofSelect = 3;
	sel->pcrSelections[0].pcrSelect[pcr / 8] = (uint8_t)(1u << (pcr % 8));
}

int
tpmtest_pcr_extend(ESYS_CONTEXT *e, uint32_t pcr, const uint8_t digest[32],
    char *why, size_t whylen)
{
	TPML_DIGEST_VALUES	v;
	TSS2_RC			rc;

	if (pcr > 23)
		return WICK_ERR_INVALID;
	memset(&v, 0, sizeof(v));
	v.count = 1;
	v.digests[0].hashAlg = TPM2_ALG_SHA256;
	memcpy(v.digests[0].digest.sha256, digest, 32);
	if ((rc = Esys_PCR_Extend(e, ESYS_TR_PCR0 + pcr, ESYS_TR_PASSWORD,
	    ESYS_TR_NONE, ESYS_TR_NONE, &v)) != TSS2_RC_SUCCESS)
		return na_tpm_rc_why(rc, "PCR_Extend", why, whylen);
	return 0;
}

int
tpmtest_pcr_read(ESYS_CONTEXT *e, uint32_t pcr, uint8_t out[32], char *why,
    size_t whylen)
{
	TPML_PCR_SELECTION	 sel, *got = NULL;
	TPML_DIGEST		*d = NULL;
	UINT32			 counter;
	TSS2_RC			 rc;
	int			 r = 0;

	if (pcr > 23)
		return WICK_ERR_INVALID;
	sha256_bank(&sel, pcr);
	if ((rc = Esys_PCR_Read(e, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE,
	    &sel, &counter, &got, &d)) != TSS2_RC_SUCCESS)
		return na_tpm_rc_why(rc, "PCR_Read", why, whylen);
	if (d->count != 1 || d->digests[0].size != 32) {
		snprintf(why, whylen, "PCR_Read: no sha256 value");
		r = WICK_ERR_PROTOCOL;
	} else
		memcpy(out, d->digests[0].buffer, 32);
	Esys_Free(got);
	Esys_Free(d);
	return r;
}

int
tpmtest_make_credential(struct na_tpm *t, const uint8_t *ek_pub,
    size_t ek_pub_len, const uint8_t *credential, size_t len,
    struct buf *blob, struct buf *enc, char *why, size_t whylen)
{
	ESYS_CONTEXT		*e = na_tpm_esys(t);
	TPM2B_PUBLIC		 pub;
	TPM2B_DIGEST		 cred;
	TPM2B_NAME		*name = NULL;
	TPM2B_ID_OBJECT		*idobj = NULL;
	TPM2B_ENCRYPTED_SECRET	*sec = NULL;
	ESYS_TR			 h = ESYS_TR_NONE;
	uint8_t			 tmp[sizeof(TPM2B_ID_OBJECT) +
				    sizeof(TPM2B_ENCRYPTED_SECRET)];
	size_t			 off = 0;
	TSS2_RC			 rc;
	int			 r;

	memset(&pub, 0, sizeof(pub));
	if (len > sizeof(cred.buffer) ||
	    Tss2_MU_TPM2B_PUBLIC_Unmarshal(ek_pub, ek_pub_len, &off, &pub) !=
	    TSS2_RC_SUCCESS || off != ek_pub_len) {
		snprintf(why, whylen, "bad EK public or credential");
		return WICK_ERR_INVALID;
	}
	cred.size = (UINT16)len;
	memcpy(cred.buffer, credential, len);
	if ((rc = Esys_LoadExternal(e, ESYS_TR_NONE, ESYS_TR_NONE,
	    ESYS_TR_NONE, NULL, &pub, ESYS_TR_RH_NULL, &h)) !=
	    TSS2_RC_SUCCESS) {
		h = ESYS_TR_NONE;
		r = na_tpm_rc_why(rc, "LoadExternal(EK)", why, whylen);
		goto out;
	}
	if ((rc = Esys_TR_GetName(e, na_tpm_ak_handle(t), &name)) !=
	    TSS2_RC_SUCCESS) {
		r = na_tpm_rc_why(rc, "TR_GetName(AK)", why, whylen);
		goto out;
	}
	if ((rc = Esys_MakeCredential(e, h, ESYS_TR_NONE, ESYS_TR_NONE,
	    ESYS_TR_NONE, &cred, name, &idobj, &sec)) != TSS2_RC_SUCCESS) {
		r = na_tpm_rc_why(rc, "MakeCredential", why, whylen);
		goto out;
	}
	off = 0;
	if ((rc = Tss2_MU_TPM2B_ID_OBJECT_Marshal(idobj, tmp, sizeof(tmp),
	    &off)) != TSS2_RC_SUCCESS) {
		r = na_tpm_rc_why(rc, "marshal", why, whylen);
		goto out;
	}
	if ((r = buf_put(blob, tmp, off)) != 0)
		goto out;
	off = 0;
	if ((rc = Tss2_MU_TPM2B_ENCRYPTED_SECRET_Marshal(sec, tmp,
	    sizeof(tmp), &off)) != TSS2_RC_SUCCESS) {
		r = na_tpm_rc_why(rc, "marshal", why, whylen);
		goto out;
	}
	r = buf_put(enc, tmp, off);
out:
	if (h != ESYS_TR_NONE)
		(void)Esys_FlushContext(e, h);
	Esys_Free(name);
	Esys_Free(idobj);
	Esys_Free(sec);
	return r;
}

int
tpmtest_nv_undefine(ESYS_CONTEXT *e, uint32_t index, char *why,
    size_t whylen)
{
	ESYS_TR	nv = ESYS_TR_NONE;
	TSS2_RC	rc;

	if ((rc = Esys_TR_FromTPMPublic(e, index, ESYS_TR_NONE, ESYS_TR_NONE,
	    ESYS_TR_NONE, &nv)) != TSS2_RC_SUCCESS)
		return na_tpm_rc_why(rc, "TR_FromTPMPublic", why, whylen);
	if ((rc = Esys_NV_UndefineSpace(e, ESYS_TR_RH_PLATFORM, nv,
	    ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE)) !=
	    TSS2_RC_SUCCESS) {
		(void)Esys_TR_Close(e, &nv);
		return na_tpm_rc_why(rc, "NV_UndefineSpace", why, whylen);
	}
	return 0;
}

int
tpmtest_name(const uint8_t *p, size_t len, uint8_t out[34])
{
	TPM2B_PUBLIC	pub;
	uint8_t		tmp[sizeof(TPMT_PUBLIC)];
	size_t		off = 0, n = 0;
	unsigned int	mdlen = 0;

	memset(&pub, 0, sizeof(pub));
	if (Tss2_MU_TPM2B_PUBLIC_Unmarshal(p, len, &off, &pub) !=
	    TSS2_RC_SUCCESS || off != len ||
	    Tss2_MU_TPMT_PUBLIC_Marshal(&pub.publicArea, tmp, sizeof(tmp),
	    &n) != TSS2_RC_SUCCESS)
		return WICK_ERR_INVALID;
	out[0] = 0x00;
	out[1] = 0x0b;
	if (EVP_Digest(tmp, n, out + 2, &mdlen, EVP_sha256(), NULL) != 1 ||
	    mdlen != 32)
		return WICK_ERR_CRYPTO;
	return 0;
}
