/*
 * jwtcache.h: the JWT-SVIDs whose signature ValidateJWTSVID has already
 * verified (not the tokens the agent issues: those are in cache.h).  A
 * service shows the same peer token on every request while it lives, and
 * verifying it again each time (ECDSA or RSA, on the thread pool) is most
 * of what the call costs.
 *
 * A token is known by the SHA-256 of its exact bytes, together with the
 * keys it verified under; never by the token itself (a bearer secret
 * kept no longer than its request).  What depends on the call or on the
 * time (audience, expiry) is checked again on every call.  Loop-free;
 * only the loop's thread touches it; time comes in as now.
 */
#ifndef WICK_JWTCACHE_H
#define WICK_JWTCACHE_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "cache.h"
#include "err.h"

#define JWTCACHE_MAX		1024	/* tokens remembered */
/*
 * The largest token remembered: its digest is taken on the loop, and a
 * JWT-SVID takes a kilobyte or two (a larger one is verified each time,
 * as before).  What is kept does not grow with the token.
 */
#define JWTCACHE_MAX_TOKEN	(8 * 1024)
/* How long a verification stands at most, whatever the token's exp:
 * keys a bundle change replaced are let go within that time. */
#define JWTCACHE_MAX_AGE	600	/* seconds */
#define JWTCACHE_DIGEST_LEN	32

struct jwtcache;

/* Remembers up to max tokens (at most JWTCACHE_MAX); NULL when memory
 * is short or SHA-256 is not available. */
struct jwtcache	*jwtcache_new(size_t max);
/* Lets go of every entry and the keys they hold (NULL: nothing). */
void		 jwtcache_free(struct jwtcache *);

/* The digest a token is known by: WICK_ERR_LIMIT for a token above
 * JWTCACHE_MAX_TOKEN bytes (not to be remembered). */
int		 jwtcache_digest(struct jwtcache *, const char *token,
		    uint8_t d[JWTCACHE_DIGEST_LEN]) WICK_WUR;

/*
 * The token of digest d, its keys k (as held for this call) and claims
 * (decoded by the caller from the token's own bytes, as the verification
 * decodes them).  0: the token verified under k before, and its claims
 * pass the per-call checks (jose_check_jwt_claims()) for aud at now.
 * WICK_ERR_NOT_FOUND: not known under k, or no longer (past its exp or
 * JWTCACHE_MAX_AGE): verify it.  Else that check's error, why says.
 */
int		 jwtcache_check(struct jwtcache *,
		    const uint8_t d[JWTCACHE_DIGEST_LEN],
		    const struct cache_keyset *k, json_t *claims,
		    const char *aud, int64_t now, char *why, size_t whylen)
		    WICK_WUR;
/*
 * The token of digest d verified under k, and its claims passed the
 * checks at now: remembered until its exp (claims' "exp").  Takes the
 * caller's reference to k, kept with the entry or released; the oldest
 * entry goes when full.
 */
void		 jwtcache_put(struct jwtcache *,
		    const uint8_t d[JWTCACHE_DIGEST_LEN],
		    struct cache_keyset *k, const json_t *claims, int64_t now);

struct jwtcache_stats {
	size_t		 entries;
	uint64_t	 hits;
	uint64_t	 misses;
};
void		 jwtcache_stats(const struct jwtcache *,
		    struct jwtcache_stats *);

#endif /* WICK_JWTCACHE_H */
