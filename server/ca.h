/*
 * ca.h: certificate building for the server's X.509 authority.
 *
 * SPIRE's certificate profile (specs: X.509-SVID, "SPIRE's actual
 * certificate profile"): random 128-bit serials, NotBefore = now - 10 s,
 * NotAfter capped at the issuer's NotAfter, SKID/AKID, critical key
 * usage.  Pure functions: time is an argument, no I/O.
 */
#ifndef WICK_CA_H
#define WICK_CA_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "err.h"

#define CA_BACKDATE		10	/* seconds NotBefore is set back */
#define CA_MAX_DNS_NAMES	128

/* The subject of CA certificates (server "ca_subject"). */
struct ca_subject {
	const char *const	*country;
	size_t			 ncountry;
	const char *const	*organization;
	size_t			 norganization;
	const char		*common_name;	/* NULL or "" for none */
};

/*
 * A self-signed root for trust domain td: URI SAN spiffe://<td>, CA true
 * (no path length), keyCertSign + cRLSign critical, subject from subj
 * (default C=US, O=SPIFFE when subj is NULL) plus serialNumber = serial.
 * NotAfter = now + ttl.
 */
int	 ca_make_root(EVP_PKEY *key, const char *td,
	    const struct ca_subject *subj, int64_t now, int64_t ttl,
	    X509 **out) WICK_WUR;
/*
 * The same, signed by an upstream authority (disk UpstreamAuthority):
 * NotAfter capped at upstream_cert's NotAfter.
 */
int	 ca_make_intermediate(EVP_PKEY *key, const char *td,
	    const struct ca_subject *subj, X509 *upstream_cert,
	    EVP_PKEY *upstream_key, int64_t now, int64_t ttl, X509 **out)
	    WICK_WUR;

/* What an X.509-SVID says; everything comes from the entry. */
struct ca_svid_params {
	const char		*spiffe_id;
	const char *const	*dns_names;	/* first becomes the CN */
	size_t			 ndns_names;
	int64_t			 now;
	int64_t			 ttl;		/* seconds, > 0 */
	/*
	 * Set for certificates that will only be encoded (SVIDs sent to
	 * agents): the public key is then copied as its encoded point, with
	 * no decoded key cached in the X509 object (so it cannot be used for
	 * TLS or key checks in this process).  About half the cost of an
	 * SVID on OpenSSL 3.0 is that encode-and-decode round trip.
	 */
	int			 encode_only;
};

/*
 * Sign an X.509-SVID for pub with the CA (ca_cert, ca_key): subject
 * C=US, O=SPIRE (+ CN = first DNS name), one URI SAN, DNS SANs, CA false,
 * digitalSignature + keyEncipherment + keyAgreement critical, EKU
 * serverAuth + clientAuth, NotAfter = min(now + ttl, CA NotAfter).
 * WICK_ERR_INVALID for a bad SPIFFE ID or DNS name, WICK_ERR_EXPIRED
 * when the CA is not valid at now.
 */
int	 ca_sign_x509_svid(X509 *ca_cert, EVP_PKEY *ca_key, EVP_PKEY *pub,
	    const struct ca_svid_params *, X509 **out) WICK_WUR;

#define CA_SERIAL_RAND	16		/* random bytes of a serial */
#define CA_SERIAL_HEX	(2 * (CA_SERIAL_RAND + 1) + 1)
/*
 * The certificate ca_sign_x509_svid() makes with encode_only, byte for
 * byte up to the signature, written as DER here: for the SVIDs the agent
 * API signs in batches, where OpenSSL's certificate object (extensions
 * from config text, copied names, encoding) costs more than the
 * signature.  spki: an EC P-256/P-384 SubjectPublicKeyInfo with an
 * uncompressed point, as csr_parse_spki() gives; the CA key must be EC
 * too, else WICK_ERR_UNSUPPORTED (use ca_sign_x509_svid()).  rnd: the
 * serial's random bytes (NULL: drawn here; the serial is rnd + 1).
 * *der is OPENSSL_malloc()ed; serial as ca_serial_hex() writes it.
 */
int	 ca_svid_der(X509 *ca_cert, EVP_PKEY *ca_key, const uint8_t *spki,
	    size_t spkilen, const struct ca_svid_params *,
	    const uint8_t rnd[CA_SERIAL_RAND], uint8_t **der, size_t *derlen,
	    char serial[CA_SERIAL_HEX], int64_t *not_after) WICK_WUR;

/*
 * ca_svid_der() in two steps, for batches: what the SVIDs of one CA share
 * (its name, key identifier, a signing context) made once, then used by
 * any number of threads at once for as long as ca_cert and ca_key live.
 * ca_svid_signer_new(): WICK_ERR_UNSUPPORTED when ca_key is not EC
 * P-256/P-384.
 */
struct ca_svid_signer;

int	 ca_svid_signer_new(X509 *ca_cert, EVP_PKEY *ca_key,
	    struct ca_svid_signer **) WICK_WUR;
void	 ca_svid_signer_free(struct ca_svid_signer *);	/* NULL ok */
int	 ca_svid_signer_der(const struct ca_svid_signer *,
	    const uint8_t *spki, size_t spkilen, const struct ca_svid_params *,
	    const uint8_t rnd[CA_SERIAL_RAND], uint8_t **der, size_t *derlen,
	    char serial[CA_SERIAL_HEX], int64_t *not_after) WICK_WUR;

/* The serial as lower-case hex without leading zeros (heap string). */
int	 ca_serial_hex(X509 *, char **out) WICK_WUR;
/* The Subject Key Identifier as lower-case hex (heap string). */
int	 ca_skid_hex(X509 *, char **out) WICK_WUR;

#endif /* WICK_CA_H */
