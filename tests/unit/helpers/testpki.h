/*
 * testpki.h: a small test PKI made in memory with OpenSSL (tests only).
 *
 * P-256 keys; CAs are self-signed with a SPIFFE trust-domain URI SAN,
 * leaves carry the SANs given as an OpenSSL config string, e.g.
 * "URI:spiffe://example.org/server,DNS:localhost,IP:127.0.0.1".
 * Results belong to the caller.
 */
#ifndef WICK_TESTPKI_H
#define WICK_TESTPKI_H

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "err.h"

#define TESTPKI_DAYS	365

/* A self-signed CA: CA:TRUE, keyCertSign|cRLSign, SAN "URI:<uri>". */
int	 testpki_make_ca(const char *cn, const char *uri, X509 **cert,
	    EVP_PKEY **key) WICK_WUR;
/*
 * A leaf signed by ca/cakey: CA:FALSE, digitalSignature, EKU serverAuth
 * and clientAuth, subjectAltName from sans (NULL for none).
 */
int	 testpki_make_leaf(X509 *ca, EVP_PKEY *cakey, const char *cn,
	    const char *sans, X509 **cert, EVP_PKEY **key) WICK_WUR;
/* Write a certificate as PEM (mode 0644) or a key as PKCS#8 PEM (0600). */
int	 testpki_write_cert(const char *path, X509 *) WICK_WUR;
int	 testpki_write_key(const char *path, EVP_PKEY *) WICK_WUR;
/* The full set wick-testcerts writes into dir (see tests/tools). */
int	 testpki_write_dir(const char *dir) WICK_WUR;

#endif /* WICK_TESTPKI_H */
