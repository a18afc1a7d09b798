/*
 * x509.h: X.509 helpers shared by the TLS layer and the CA.
 *
 * Loading PEM chains and keys from files, converting between a chain and
 * the concatenated DER of the Workload API, reading a leaf's SPIFFE ID and
 * fingerprinting a certificate.  OpenSSL objects returned through an out
 * parameter belong to the caller.
 */
#ifndef WICK_X509_H
#define WICK_X509_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "buf.h"
#include "err.h"

#define X509_MAX_CERT_DER	(64 * 1024)	/* one DER certificate */
#define X509_MAX_SPIFFE_ID	2048		/* URI SAN length, SPIFFE spec */
#define X509_FINGERPRINT_LEN	64		/* SHA-256 as lower-case hex */

/*
 * Read a PEM file (at most TLS_MAX_PEM_FILE bytes) holding 1..max_certs
 * certificates, in file order.  WICK_ERR_LIMIT beyond either bound,
 * WICK_ERR_INVALID when it holds no certificate or is malformed.
 */
int	 x509_load_certs_file(const char *path, size_t max_certs,
	    STACK_OF(X509) **out) WICK_WUR;
/* The same on PEM bytes in memory. */
int	 x509_certs_from_pem(const uint8_t *, size_t, size_t max_certs,
	    STACK_OF(X509) **out) WICK_WUR;
/* A chain: leaf first, then intermediates; at most TLS_MAX_CHAIN. */
int	 x509_load_chain_file(const char *path, STACK_OF(X509) **out)
	    WICK_WUR;

/*
 * Read an unencrypted private key (PKCS#8 or traditional PEM).  The file
 * must be a regular file that group and others cannot access
 * (WICK_ERR_PERM otherwise).  Every temporary copy of the key is wiped.
 */
int	 x509_load_key_file(const char *path, EVP_PKEY **out) WICK_WUR;
int	 x509_key_from_pem(const uint8_t *, size_t, EVP_PKEY **out) WICK_WUR;

/*
 * Parse concatenated DER certificates (Workload API X509SVID.x509_svid and
 * bundle fields): at most max_certs, each at most X509_MAX_CERT_DER bytes,
 * no trailing bytes, at least one certificate.
 */
int	 x509_chain_from_der(const uint8_t *, size_t, size_t max_certs,
	    STACK_OF(X509) **out) WICK_WUR;
/* Append the chain as concatenated DER to out. */
int	 x509_chain_to_der(STACK_OF(X509) *, struct buf *out) WICK_WUR;

/*
 * The leaf's SPIFFE ID: it must carry exactly one URI SAN and that URI
 * must start with "spiffe://".  *out is a heap string for the caller to
 * free().  On error, *why (if not NULL) gets a static explanation:
 * WICK_ERR_NOT_FOUND when there is no URI SAN at all, WICK_ERR_INVALID for
 * more than one URI SAN or one that is not a SPIFFE ID.
 */
int	 x509_spiffe_id(X509 *, char **out, const char **why) WICK_WUR;

/* SHA-256 of the DER encoding, lower-case hex, NUL-terminated. */
int	 x509_fingerprint(X509 *, char out[X509_FINGERPRINT_LEN + 1])
	    WICK_WUR;

/* NotAfter / NotBefore as unix seconds (0 if unreadable). */
int64_t	 x509_not_after(const X509 *);
int64_t	 x509_not_before(const X509 *);
/*
 * A DNS name as an X.509 SAN may carry it: LDH labels of at most 63,
 * at most 253 in all, an optional leading "*." wildcard.
 */
int	 x509_dns_name_ok(const char *);

#endif /* WICK_X509_H */
