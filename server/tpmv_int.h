/*
 * tpmv_int.h: the pieces of tpmv.c that tests and the fuzz target
 * use on their own: KDFa, object names, the strict TPM2B_PUBLIC parser,
 * TPM public keys as OpenSSL keys, MakeCredential.  The daemon uses
 * tpmv.h only.
 */
#ifndef WICK_TPMV_INT_H
#define WICK_TPMV_INT_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>
#include <tss2/tss2_tpm2_types.h>

#include "tpmv.h"

#define TPMV_NAME_LEN		34	/* 0x000B || SHA-256 */
#define TPMV_KDFA_MAX_BITS	2048	/* what tpmv_kdfa() derives */

/* TCG EK Credential Profile, template L-1 (RSA-2048). */
#define TPMV_EK_ATTRS		(TPMA_OBJECT_FIXEDTPM | \
	TPMA_OBJECT_FIXEDPARENT | TPMA_OBJECT_SENSITIVEDATAORIGIN | \
	TPMA_OBJECT_ADMINWITHPOLICY | TPMA_OBJECT_RESTRICTED | \
	TPMA_OBJECT_DECRYPT)
/* PolicySecret(TPM_RH_ENDORSEMENT), the L-1 authPolicy. */
extern const uint8_t	tpmv_ek_policy[32];

/* What an AK must have set. */
#define TPMV_AK_ATTRS		(TPMA_OBJECT_FIXEDTPM | \
	TPMA_OBJECT_FIXEDPARENT | TPMA_OBJECT_SENSITIVEDATAORIGIN | \
	TPMA_OBJECT_RESTRICTED | TPMA_OBJECT_SIGN_ENCRYPT)

/*
 * KDFa with HMAC-SHA-256 (TPM 2.0 part 1, 11.4.10.2; SP 800-108 counter
 * mode): out gets bits / 8 bytes of HMAC(key, BE32(i) || label || 0x00 ||
 * u || v || BE32(bits)) for i = 1, 2, ...  bits is a multiple of 8 up to
 * TPMV_KDFA_MAX_BITS.
 */
int	 tpmv_kdfa(const uint8_t *key, size_t keylen, const char *label,
	    const uint8_t *u, size_t ulen, const uint8_t *v, size_t vlen,
	    unsigned bits, uint8_t *out) WICK_WUR;

/* An object's name: 0x000B || SHA-256(marshalled TPMT_PUBLIC). */
int	 tpmv_name(const TPMT_PUBLIC *, uint8_t name[TPMV_NAME_LEN])
	    WICK_WUR;

/*
 * Parse a marshalled TPM2B_PUBLIC strictly: its size covers exactly the
 * rest, the TPMT_PUBLIC inside fills exactly that size and marshals back
 * to the same bytes.  what ("EK", "AK") begins why.
 */
int	 tpmv_public_parse(const uint8_t *, size_t, const char *what,
	    TPMT_PUBLIC *out, char *why, size_t whylen) WICK_WUR;

/*
 * The EVP_PKEY of an RSA or ECC (P-256, P-384) TPMT_PUBLIC; exponent 0
 * is 65537.  Nothing else is checked here.
 */
int	 tpmv_public_key(const TPMT_PUBLIC *, EVP_PKEY **out) WICK_WUR;

/*
 * MakeCredential in software (TPM 2.0 part 1, 24 "Credential
 * Protection"), for an RSA EK with nameAlg SHA-256 and AES-128-CFB:
 * a random seed, RSA-OAEP (SHA-256, label "IDENTITY\0") to ek; the
 * symmetric key KDFa(seed, "STORAGE", name, 128 bits), the HMAC key
 * KDFa(seed, "INTEGRITY", 256 bits); the credential (BE16 size ||
 * cred) encrypted with AES-128-CFB and a zero IV; the ID object
 * BE16(32) || HMAC-SHA-256(encrypted || name) || encrypted.
 * credlen is 1..TPMV_SECRET_LEN.
 */
int	 tpmv_make_credential(EVP_PKEY *ek, const uint8_t
	    name[TPMV_NAME_LEN], const uint8_t *cred, size_t credlen,
	    TPM2B_ID_OBJECT *id_object, TPM2B_ENCRYPTED_SECRET *secret)
	    WICK_WUR;

/*
 * tpmv_params() with the secret and the nonce given instead of drawn:
 * for the fuzz target, which needs answers it can make in advance.
 * Never for a real challenge.
 */
int	 tpmv_params_fixed(const struct tpmv_config *,
	    const uint8_t *payload, size_t len, const uint8_t *csr_spki,
	    size_t spki_len, int64_t now,
	    const uint8_t secret[TPMV_SECRET_LEN],
	    const uint8_t nonce[TPMV_NONCE_LEN],
	    struct tpmv_state **state, struct buf *challenge, char *why,
	    size_t whylen) WICK_WUR;

#endif /* WICK_TPMV_INT_H */
