/*
 * bundle.h: a trust domain's SPIFFE bundle: X.509 authorities, JWT-SVID
 * keys and WIT-SVID keys, with a sequence number and a refresh hint.
 *
 * Encodings: the SPIFFE bundle format (a JWK Set with "use" x509-svid /
 * jwt-svid / wit-svid, "spiffe_sequence", "spiffe_refresh_hint"), PEM
 * (X.509 authorities only), wick.types.Bundle protobuf (the agent API and
 * the datastore, which also keeps each key's expiry), concatenated DER
 * (Workload API X.509 bundles) and per-use JWKS (Workload API JWT and WIT
 * bundles).
 */
#ifndef WICK_BUNDLE_H
#define WICK_BUNDLE_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/x509.h>

#include "buf.h"
#include "err.h"
#include "jose.h"
#include "spiffeid.h"

#define BUNDLE_MAX_X509		64	/* authorities of one kind */
#define BUNDLE_MAX_KEYS		64
#define BUNDLE_MAX_DOC		(1024 * 1024)	/* JSON, PEM or protobuf */

enum bundle_use {
	BUNDLE_USE_JWT = 0,
	BUNDLE_USE_WIT = 1,
};

struct bundle_key {
	char		 kid[JOSE_MAX_KID_LEN + 1];
	uint8_t		*spki;		/* SubjectPublicKeyInfo DER */
	size_t		 spki_len;
	int64_t		 expires_at;	/* unix s, 0 = unknown */
};

struct bundle {
	char			 td[SPIFFEID_MAX_TD_LEN + 1];
	STACK_OF(X509)		*x509;
	struct bundle_key	 keys[2][BUNDLE_MAX_KEYS];	/* [use][i] */
	size_t			 nkeys[2];
	int64_t			 refresh_hint;	/* seconds, 0 = none */
	uint64_t		 sequence;
};

/* An empty bundle for trust domain td (a name or spiffe:// ID). */
int	 bundle_new(const char *td, struct bundle **out) WICK_WUR;
void	 bundle_free(struct bundle *);
int	 bundle_dup(const struct bundle *, struct bundle **out) WICK_WUR;

/* Add an authority; an identical certificate is not added twice
 * (returns 0), one whose public key does not decode is refused
 * (WICK_ERR_INVALID).  The bundle takes a reference of its own. */
int	 bundle_add_x509(struct bundle *, X509 *) WICK_WUR;
/* Add a key; a key with the same kid replaces nothing and returns
 * WICK_ERR_EXISTS unless its public key is identical (then 0). */
int	 bundle_add_key(struct bundle *, enum bundle_use, const char *kid,
	    const uint8_t *spki, size_t spki_len, int64_t expires_at) WICK_WUR;
/* Drop authorities and keys that expired before cutoff; *changed set
 * when something went. */
void	 bundle_prune(struct bundle *, int64_t cutoff, int *changed);
/* Same authorities and keys (sequence and hint ignored). */
int	 bundle_same_content(const struct bundle *, const struct bundle *);

/* "spiffe://<td>" into out. */
void	 bundle_td_id(const struct bundle *, char *out, size_t outlen);

/* SPIFFE bundle format. */
int	 bundle_to_spiffe_json(const struct bundle *, char **out) WICK_WUR;
/* Keys with an unknown "use" or "kty" are skipped, as the spec says. */
int	 bundle_from_spiffe_json(const char *td, const char *, size_t,
	    struct bundle **out, const char **why) WICK_WUR;
/* PEM of the X.509 authorities. */
int	 bundle_to_pem(const struct bundle *, struct buf *out) WICK_WUR;
int	 bundle_from_pem(const char *td, const uint8_t *, size_t,
	    struct bundle **out, const char **why) WICK_WUR;
/* Concatenated DER of the X.509 authorities. */
int	 bundle_x509_der(const struct bundle *, struct buf *out) WICK_WUR;
/* {"keys":[...]} of one use, each key with its kid (no "use"). */
int	 bundle_jwks(const struct bundle *, enum bundle_use, char **out)
	    WICK_WUR;
/* The keys of one use as a keyset for jose_verify(). */
int	 bundle_keyset(const struct bundle *, enum bundle_use,
	    struct jose_keyset *) WICK_WUR;
/* A store holding the X.509 authorities, for chain verification. */
int	 bundle_x509_store(const struct bundle *, X509_STORE **out) WICK_WUR;

/* wick.types.Bundle protobuf bytes. */
int	 bundle_pack(const struct bundle *, struct buf *out) WICK_WUR;
int	 bundle_unpack(const uint8_t *, size_t, struct bundle **out,
	    const char **why) WICK_WUR;

#endif /* WICK_BUNDLE_H */
