/*
 * pkey.h: key pairs and certificate requests, for the server's CA keys and
 * the agent's SVID keys.
 *
 * Key types use SPIRE's names: "ec-p256" (the default), "ec-p384",
 * "rsa-2048", "rsa-4096".  Every encoding of a private key goes into a
 * secret buf (wiped when freed).
 */
#ifndef WICK_PKEY_H
#define WICK_PKEY_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#include "buf.h"
#include "err.h"

#define PKEY_MAX_DER		(16 * 1024)	/* one key or CSR, DER */

enum pkey_type {
	PKEY_EC_P256 = 1,
	PKEY_EC_P384 = 2,
	PKEY_RSA_2048 = 3,
	PKEY_RSA_4096 = 4,
};

/* "ec-p256" ...; WICK_ERR_INVALID for anything else. */
int		 pkey_type_parse(const char *, enum pkey_type *) WICK_WUR;
const char	*pkey_type_name(enum pkey_type);
/* The type of an existing key; WICK_ERR_UNSUPPORTED for other keys. */
int		 pkey_type_of(EVP_PKEY *, enum pkey_type *) WICK_WUR;

int	 pkey_generate(enum pkey_type, EVP_PKEY **out) WICK_WUR;

/* PKCS#8 private key, DER or PEM, appended to out (made secret). */
int	 pkey_to_pkcs8_der(EVP_PKEY *, struct buf *out) WICK_WUR;
int	 pkey_to_pkcs8_pem(EVP_PKEY *, struct buf *out) WICK_WUR;
/* Parse a PKCS#8 DER private key of a supported type. */
int	 pkey_from_pkcs8_der(const uint8_t *, size_t, EVP_PKEY **out) WICK_WUR;
/* SubjectPublicKeyInfo DER, appended to out. */
int	 pkey_public_der(EVP_PKEY *, struct buf *out) WICK_WUR;
/* Parse SubjectPublicKeyInfo DER of a supported type. */
int	 pkey_from_public_der(const uint8_t *, size_t, EVP_PKEY **out)
	    WICK_WUR;
/* Non-zero when both keys have the same public part. */
int	 pkey_public_equal(EVP_PKEY *, EVP_PKEY *);

/*
 * A PKCS#10 request for key, DER appended to out.  Subject empty: the
 * server takes every name from the registration entry, never the CSR.
 */
int	 csr_make(EVP_PKEY *, struct buf *out) WICK_WUR;
/*
 * Parse a DER CSR (at most PKEY_MAX_DER bytes, no trailing bytes), check
 * its self-signature and that its key is of a supported type and size;
 * *pub gets the public key.  *why names the problem on error
 * (WICK_ERR_LIMIT, WICK_ERR_INVALID, WICK_ERR_SIGNATURE,
 * WICK_ERR_UNSUPPORTED).
 */
int	 csr_parse(const uint8_t *, size_t, EVP_PKEY **pub, const char **why)
	    WICK_WUR;
/*
 * csr_parse(), and for an EC request in strict DER (the shape
 * ca_svid_der() takes) *spki and *spkilen name its SubjectPublicKeyInfo
 * inside the request; NULL and 0 for others.
 */
int	 csr_parse_spki(const uint8_t *, size_t, EVP_PKEY **pub,
	    const uint8_t **spki, size_t *spkilen, const char **why) WICK_WUR;

/*
 * State reused from request to request by csr_check(), on one thread at a
 * time (a key and a verification context per curve): for batches.
 */
struct csr_verifier;

int	 csr_verifier_new(struct csr_verifier **) WICK_WUR;
void	 csr_verifier_free(struct csr_verifier *);	/* NULL ok */
/*
 * csr_parse_spki() through v, with the same checks and errors: an EC
 * request in strict DER is checked with v's key for its curve, *spki and
 * *spkilen name its SubjectPublicKeyInfo and *pub stays NULL; any other
 * request is read by csr_parse() and *pub gets its key.
 */
int	 csr_check(struct csr_verifier *v, const uint8_t *, size_t,
	    EVP_PKEY **pub, const uint8_t **spki, size_t *spkilen,
	    const char **why) WICK_WUR;

#endif /* WICK_PKEY_H */
