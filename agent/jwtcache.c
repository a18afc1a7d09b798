/*
 * jwtcache.c: JWT-SVIDs already verified, by the digest of their bytes
 * and the keys they verified under (jwtcache.h).
 *
 * Why the keys' identity is sound as a key: an entry holds its keyset
 * (cache_keyset), so while the entry lives no other keyset can be made
 * at that address, and a change of bundles always decodes new keysets
 * (cache.c lets the old ones go).  A token looked up under keys other
 * than its entry's is not known: its entry goes, and the token is
 * verified again under the keys of now.
 *
 * What an entry keeps is small and of fixed size (a digest, a keyset
 * reference, two times): the claims are not kept, as the caller decodes
 * them again from the token's bytes on every call anyway (to find the
 * trust domain's keys), and equal digests mean equal bytes.  So a token
 * with attacker-sized claims costs no more memory than any other.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "jose.h"
#include "jwtcache.h"

#define JWTCACHE_BUCKETS	1024	/* a power of two */
/* Entries past their time looked at from the old end per call: those
 * never shown again go without a scan of the whole table. */
#define JWTCACHE_SWEEP		4

struct jwtcache_entry {
	uint8_t			 d[JWTCACHE_DIGEST_LEN];
	struct cache_keyset	*k;		/* held */
	int64_t			 exp;
	int64_t			 added;
	struct jwtcache_entry	*hnext;		/* same bucket */
	struct jwtcache_entry	*newer;		/* use order */
	struct jwtcache_entry	*older;
};

struct jwtcache {
	EVP_MD			*md;
	struct jwtcache_entry	*bucket[JWTCACHE_BUCKETS];
	struct jwtcache_entry	*newest, *oldest;
	size_t			 n, max;
	uint64_t		 hits, misses;
};

struct jwtcache *
jwtcache_new(size_t max)
{
	struct jwtcache *jc;

	if ((jc = calloc(1, sizeof(*jc))) == NULL)
		return NULL;
	/* Fetched once: an implicit fetch per digest costs a lookup in
	 * the provider's tables each time. */
	if ((jc->md = EVP_MD_fetch(NULL, "SHA256", NULL)) == NULL) {
		free(jc);
		return NULL;
	}
	jc->max = max < JWTCACHE_MAX ? max : JWTCACHE_MAX;
	return jc;
}

/*
 * The digest is SHA-256 output: its first bytes are as good a hash as
 * any.  Someone holding many valid tokens could pick some that share a
 * bucket, but the table holds JWTCACHE_MAX entries at most, which bounds
 * a chain.
 */
static size_t
bucket_of(const uint8_t d[JWTCACHE_DIGEST_LEN])
{
	uint32_t h;

	memcpy(&h, d, sizeof(h));
	return h & (JWTCACHE_BUCKETS - 1);
}

static void
unlink_use(struct jwtcache *jc, struct jwtcache_entry *e)
{
	if (e->newer != NULL)
		e->newer->older = e->older;
	else
		jc->newest = e->older;
	if (e->older != NULL)
		e->older->newer = e->newer;
	else
		jc->oldest = e->newer;
	e->newer = e->older = NULL;
}

static void
link_newest(struct jwtcache *jc, struct jwtcache_entry *e)
{
	e->older = jc->newest;
	e->newer = NULL;
	if (jc->newest != NULL)
		jc->newest->newer = e;
	else
		jc->oldest = e;
	jc->newest = e;
}

static void
drop(struct jwtcache *jc, struct jwtcache_entry *e)
{
	struct jwtcache_entry **pp;

	for (pp = &jc->bucket[bucket_of(e->d)]; *pp != e; pp = &(*pp)->hnext)
		;
	*pp = e->hnext;
	unlink_use(jc, e);
	cache_keyset_release(e->k);
	free(e);
	jc->n--;
}

/* Past exp (with the skew jose_check_jwt_claims() allows, so that an
 * entry goes when the check would refuse it), or verified too long ago. */
static int
stale(const struct jwtcache_entry *e, int64_t now)
{
	return e->exp + JOSE_CLOCK_SKEW < now ||
	    now - e->added > JWTCACHE_MAX_AGE || now < e->added;
}

static void
sweep(struct jwtcache *jc, int64_t now)
{
	int i;

	for (i = 0; i < JWTCACHE_SWEEP && jc->oldest != NULL &&
	    stale(jc->oldest, now); i++)
		drop(jc, jc->oldest);
}

/*
 * A plain memcmp: its time tells how many leading bytes of a stored
 * digest a caller's token matches, which does not help to make a token
 * (that would take a SHA-256 preimage), and a digest is no secret in
 * itself (it is of a token the caller may not hold, but it stands for
 * no credential).
 */
static struct jwtcache_entry *
find(struct jwtcache *jc, const uint8_t d[JWTCACHE_DIGEST_LEN])
{
	struct jwtcache_entry *e;

	for (e = jc->bucket[bucket_of(d)]; e != NULL; e = e->hnext)
		if (memcmp(e->d, d, JWTCACHE_DIGEST_LEN) == 0)
			return e;
	return NULL;
}

void
jwtcache_free(struct jwtcache *jc)
{
	if (jc == NULL)
		return;
	while (jc->oldest != NULL)
		drop(jc, jc->oldest);
	EVP_MD_free(jc->md);
	free(jc);
}

int
jwtcache_digest(struct jwtcache *jc, const char *token,
    uint8_t d[JWTCACHE_DIGEST_LEN])
{
	size_t		len = strnlen(token, JWTCACHE_MAX_TOKEN + 1);
	unsigned int	dlen = 0;

	if (len > JWTCACHE_MAX_TOKEN)
		return WICK_ERR_LIMIT;
	if (EVP_Digest(token, len, d, &dlen, jc->md, NULL) != 1 ||
	    dlen != JWTCACHE_DIGEST_LEN)
		return WICK_ERR_CRYPTO;
	return 0;
}

int
jwtcache_check(struct jwtcache *jc, const uint8_t d[JWTCACHE_DIGEST_LEN],
    const struct cache_keyset *k, json_t *claims, const char *aud,
    int64_t now, char *why, size_t whylen)
{
	struct jwtcache_entry	*e;
	int			 r;

	sweep(jc, now);
	if ((e = find(jc, d)) == NULL) {
		jc->misses++;
		return WICK_ERR_NOT_FOUND;
	}
	/* Other keys: what the token verified under is gone. */
	if (e->k != k || stale(e, now)) {
		drop(jc, e);
		jc->misses++;
		return WICK_ERR_NOT_FOUND;
	}
	jc->hits++;
	/* The same token with another audience is refused as it would be
	 * after verifying: only the signature's result is remembered. */
	if ((r = jose_check_jwt_claims(claims, aud, now, why, whylen)) != 0)
		return r;
	unlink_use(jc, e);
	link_newest(jc, e);
	return 0;
}

void
jwtcache_put(struct jwtcache *jc, const uint8_t d[JWTCACHE_DIGEST_LEN],
    struct cache_keyset *k, const json_t *claims, int64_t now)
{
	struct jwtcache_entry	*e;
	json_t			*exp = json_object_get(claims, "exp");
	size_t			 b;

	if (jc->max == 0 || !json_is_number(exp)) {
		cache_keyset_release(k);
		return;
	}
	sweep(jc, now);
	/* Verified twice at once (both missed): the later keys stand. */
	if ((e = find(jc, d)) != NULL)
		drop(jc, e);
	if (jc->n >= jc->max)
		drop(jc, jc->oldest);
	if ((e = calloc(1, sizeof(*e))) == NULL) {
		/* Only slower: the token is verified again next time. */
		cache_keyset_release(k);
		return;
	}
	memcpy(e->d, d, JWTCACHE_DIGEST_LEN);
	e->k = k;
	/* Past the longest an entry lasts, any exp is as good (and a huge
	 * number would not fit an integer). */
	e->exp = json_number_value(exp) >= (double)(now + JWTCACHE_MAX_AGE) ?
	    now + JWTCACHE_MAX_AGE : (int64_t)json_number_value(exp);
	e->added = now;
	b = bucket_of(d);
	e->hnext = jc->bucket[b];
	jc->bucket[b] = e;
	link_newest(jc, e);
	jc->n++;
}

void
jwtcache_stats(const struct jwtcache *jc, struct jwtcache_stats *st)
{
	memset(st, 0, sizeof(*st));
	if (jc == NULL)
		return;
	st->entries = jc->n;
	st->hits = jc->hits;
	st->misses = jc->misses;
}
