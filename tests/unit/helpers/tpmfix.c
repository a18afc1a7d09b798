/*
 * tpmfix.c: TPM node attestation messages for the server's tests.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/x509.h>
#include <tss2/tss2_mu.h>

#include "tpm.pb-c.h"
#include "tpmfix.h"

int
tpmfix_public(const TPMT_PUBLIC *p, uint8_t *out, size_t *len)
{
	size_t off = 0;

	if (Tss2_MU_TPMT_PUBLIC_Marshal(p, out + 2, TPMFIX_MAX_PUBLIC - 2,
	    &off) != TSS2_RC_SUCCESS)
		return -1;
	out[0] = (uint8_t)(off >> 8);
	out[1] = (uint8_t)off;
	*len = off + 2;
	return 0;
}

int
tpmfix_sha256(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen,
    uint8_t out[32])
{
	EVP_MD_CTX	*md;
	unsigned	 n;
	int		 ok;

	if ((md = EVP_MD_CTX_new()) == NULL)
		return -1;
	ok = EVP_DigestInit_ex(md, EVP_sha256(), NULL) &&
	    (alen == 0 || EVP_DigestUpdate(md, a, alen)) &&
	    (blen == 0 || EVP_DigestUpdate(md, b, blen)) &&
	    EVP_DigestFinal_ex(md, out, &n) && n == 32;
	EVP_MD_CTX_free(md);
	return ok ? 0 : -1;
}

int
tpmfix_name(const TPMT_PUBLIC *p, uint8_t name[TPMFIX_NAME_LEN])
{
	uint8_t	buf[TPMFIX_MAX_PUBLIC];
	size_t	len;

	if (tpmfix_public(p, buf, &len) != 0)
		return -1;
	name[0] = 0x00;
	name[1] = 0x0b;
	return tpmfix_sha256(buf + 2, len - 2, NULL, 0, name + 2);
}

int
tpmfix_attestation(X509 *cert, const uint8_t *ek, size_t eklen,
    const uint8_t *ak, size_t aklen, const uint32_t *pcrs, size_t npcrs,
    uint8_t **out, size_t *len)
{
	Wick__Tpm__TpmAttestation	 m = WICK__TPM__TPM_ATTESTATION__INIT;
	unsigned char			*der = NULL;
	int				 n = 0;

	*out = NULL;
	if (cert != NULL && (n = i2d_X509(cert, &der)) <= 0)
		return -1;
	m.ek_cert.data = der;
	m.ek_cert.len = (size_t)n;
	m.ek_pub.data = (uint8_t *)ek;
	m.ek_pub.len = eklen;
	m.ak_pub.data = (uint8_t *)ak;
	m.ak_pub.len = aklen;
	m.pcrs = (uint32_t *)pcrs;
	m.n_pcrs = npcrs;
	*len = wick__tpm__tpm_attestation__get_packed_size(&m);
	if ((*out = malloc(*len + 1)) != NULL)
		(void)wick__tpm__tpm_attestation__pack(&m, *out);
	OPENSSL_free(der);
	return *out != NULL ? 0 : -1;
}

int
tpmfix_response(const uint8_t *secret, size_t secretlen,
    const uint8_t *quote, size_t quotelen, const uint8_t *sig, size_t siglen,
    const uint8_t *values, size_t n, uint8_t **out, size_t *len)
{
	Wick__Tpm__TpmChallengeResponse	 m =
	    WICK__TPM__TPM_CHALLENGE_RESPONSE__INIT;
	ProtobufCBinaryData		*v = NULL;
	size_t				 i;

	*out = NULL;
	if (n > 0 && (v = calloc(n, sizeof(*v))) == NULL)
		return -1;
	for (i = 0; i < n; i++) {
		v[i].data = (uint8_t *)values + 32 * i;
		v[i].len = 32;
	}
	m.secret.data = (uint8_t *)secret;
	m.secret.len = secretlen;
	m.quote.data = (uint8_t *)quote;
	m.quote.len = quotelen;
	m.signature.data = (uint8_t *)sig;
	m.signature.len = siglen;
	m.pcr_values = v;
	m.n_pcr_values = n;
	*len = wick__tpm__tpm_challenge_response__get_packed_size(&m);
	if ((*out = malloc(*len + 1)) != NULL)
		(void)wick__tpm__tpm_challenge_response__pack(&m, *out);
	free(v);
	return *out != NULL ? 0 : -1;
}

int
tpmfix_spki(EVP_PKEY *key, uint8_t **out, size_t *len)
{
	unsigned char	*der = NULL;
	int		 n;

	if ((n = i2d_PUBKEY(key, &der)) <= 0)
		return -1;
	*out = der;
	*len = (size_t)n;
	return 0;
}
