/*
 * tpmfix.h: TPM node attestation messages for the server's tests, made
 * the way an agent makes them (tests only; no TPM needed).
 *
 * TPM structures are marshalled with tss2-mu; the protobuf messages of
 * proto/tpm.proto are packed into heap buffers the caller frees.  Every
 * function returns 0 or -1.
 */
#ifndef WICK_TPMFIX_H
#define WICK_TPMFIX_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <tss2/tss2_tpm2_types.h>

#define TPMFIX_MAX_PUBLIC	1024
#define TPMFIX_NAME_LEN		34

/* Marshalled TPM2B_PUBLIC of p into out (TPMFIX_MAX_PUBLIC bytes). */
int	 tpmfix_public(const TPMT_PUBLIC *p, uint8_t *out, size_t *len);
/* 0x000B || SHA-256(marshalled TPMT_PUBLIC). */
int	 tpmfix_name(const TPMT_PUBLIC *p, uint8_t name[TPMFIX_NAME_LEN]);
/* A packed TpmAttestation; cert may be NULL. */
int	 tpmfix_attestation(X509 *cert, const uint8_t *ek, size_t eklen,
	    const uint8_t *ak, size_t aklen, const uint32_t *pcrs, size_t npcrs,
	    uint8_t **out, size_t *len);
/* A packed TpmChallengeResponse; values holds n values of 32 bytes. */
int	 tpmfix_response(const uint8_t *secret, size_t secretlen,
	    const uint8_t *quote, size_t quotelen, const uint8_t *sig,
	    size_t siglen, const uint8_t *values, size_t n, uint8_t **out,
	    size_t *len);
/* DER SubjectPublicKeyInfo of key, OPENSSL_malloc'ed. */
int	 tpmfix_spki(EVP_PKEY *key, uint8_t **out, size_t *len);
/* SHA-256(a || b). */
int	 tpmfix_sha256(const uint8_t *a, size_t alen, const uint8_t *b,
	    size_t blen, uint8_t out[32]);

#endif /* WICK_TPMFIX_H */
