/*
 * jose.h: compact JWS sign and verify over libcjose, for JWT-SVIDs and
 * WIMSE WIT-SVIDs, with the checks cjose leaves to us: an algorithm
 * allow-list (RS/PS/ES 256/384/512 only; "none" and HMAC never), the key
 * type must fit the algorithm, "kid" required and looked up, "typ" from a
 * caller-given set, no "crit", and size limits before any parsing.
 *
 * Time is never read here: claim checks take "now".
 */
#ifndef WICK_JOSE_H
#define WICK_JOSE_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "err.h"

#define JOSE_MAX_TOKEN_SIZE	(64 * 1024)
#define JOSE_MAX_JWKS_SIZE	(1024 * 1024)
#define JOSE_MAX_JWKS_KEYS	256
#define JOSE_MAX_KID_LEN	128
#define JOSE_MAX_TYPS		4
#define JOSE_CLOCK_SKEW		60	/* seconds allowed on exp/nbf/iat */

struct jose_key;

/* A key from an OpenSSL key (EC P-256/P-384 or RSA >= 2048); kid copied. */
int	 jose_key_from_pkey(EVP_PKEY *, const char *kid, struct jose_key **)
	    WICK_WUR;
/* A key from a JWK object (public or private); it must carry a kid. */
int	 jose_key_from_jwk(json_t *, struct jose_key **, const char **why)
	    WICK_WUR;
void	 jose_key_free(struct jose_key *);
/*
 * The OpenSSL public key of a public JWK (EC P-256/P-384 with x and y, or
 * RSA >= 2048 bits with n and e); a JWK with private members is refused.
 * *why names what was wrong.
 */
int	 jose_jwk_public_pkey(json_t *, EVP_PKEY **out, const char **why)
	    WICK_WUR;
const char *jose_key_kid(const struct jose_key *);
/* The signing algorithm this key uses: ES256, ES384 or RS256. */
const char *jose_key_alg(const struct jose_key *);
/* The key as a JWK (with kid); private includes the private part. */
int	 jose_key_to_jwk(const struct jose_key *, int private, json_t **)
	    WICK_WUR;

/*
 * The public JWK (kty and key members only) of any EC key on P-256,
 * P-384 or P-521 or any RSA key: for publishing trust anchors, which
 * need not be keys wick signs with.  WICK_ERR_UNSUPPORTED otherwise.
 */
int	 jose_public_jwk(EVP_PKEY *, json_t **out) WICK_WUR;

/* A set of public keys, e.g. a trust domain's JWT bundle. */
struct jose_keyset {
	struct jose_key	*keys[JOSE_MAX_JWKS_KEYS];
	size_t		 n;
};

void	 jose_keyset_init(struct jose_keyset *);
void	 jose_keyset_cleanup(struct jose_keyset *);
/* Takes ownership of key; WICK_ERR_EXISTS for a duplicate kid. */
int	 jose_keyset_add(struct jose_keyset *, struct jose_key *) WICK_WUR;
/*
 * Parse a JWKS document ({"keys":[...]}); every key needs a unique kid.
 * "use" members (SPIFFE bundles say "jwt-svid") are tolerated.
 */
int	 jose_keyset_parse(const char *, size_t, struct jose_keyset *,
	    const char **why) WICK_WUR;
/* {"keys":[...]} of the public keys. */
int	 jose_keyset_to_jwks(const struct jose_keyset *, json_t **) WICK_WUR;

/* Sign claims into a compact JWS with header {alg, kid, typ}. */
int	 jose_sign(const struct jose_key *, const char *typ, json_t *claims,
	    char **compact) WICK_WUR;

struct jose_verify_opts {
	/* Allowed "typ" values; an entry "" allows an absent typ. */
	const char	*typs[JOSE_MAX_TYPS];
	size_t		 ntyps;
};

/*
 * Verify a compact JWS against keys.  On success *claims and *header (if
 * not NULL) get new references.  Errors: WICK_ERR_LIMIT (too large),
 * WICK_ERR_INVALID (malformed, disallowed alg or typ, no kid),
 * WICK_ERR_NOT_FOUND (unknown kid), WICK_ERR_SIGNATURE.  *why names it.
 */
int	 jose_verify(const char *compact, const struct jose_keyset *,
	    const struct jose_verify_opts *, json_t **claims, json_t **header,
	    char *why, size_t whylen) WICK_WUR;

/*
 * JWT-SVID claim rules: sub a non-empty string, aud (string or array)
 * holding audience, exp present and not past now (with skew), nbf and iat
 * not in the future.  WICK_ERR_EXPIRED for exp, WICK_ERR_INVALID else.
 */
int	 jose_check_jwt_claims(json_t *claims, const char *audience,
	    int64_t now, char *why, size_t whylen) WICK_WUR;

#endif /* WICK_JOSE_H */
