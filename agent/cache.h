/*
 * cache.h: what the agent holds for its workloads, behind a narrow
 * interface: the authorized entries with their SVIDs, the trust bundles,
 * the JWT-SVIDs already issued, and the subscribers told of every change.
 * It is passive: the manager (agent.c) fills it from the server, the
 * Workload API (workload.c) reads it.  Loop-free; only the loop's thread
 * touches it; time comes in as now.
 */
#ifndef WICK_CACHE_H
#define WICK_CACHE_H

#include <stddef.h>
#include <stdint.h>

#include "bundle.h"
#include "err.h"
#include "jose.h"
#include "selector.h"

#define CACHE_MAX_FEDERATED	64
#define CACHE_MAX_JWTS		1000	/* JWT-SVIDs kept */

/* An authorized entry and what the agent holds for it. */
struct cache_entry {
	char			*id;
	char			*spiffe_id;
	char			*hint;
	struct selector_set	 selectors;
	char			**federates_with;
	size_t			 nfederates_with;
	int64_t			 revision;
	int64_t			 created_at;
	/* X.509-SVID, kept in the encodings the Workload API sends: the
	 * chain as concatenated DER (leaf first), the key as PKCS#8 DER
	 * (wiped when freed).  Parsed objects would cost several KiB each. */
	uint8_t			*chain_der;
	size_t			 chain_len;
	uint8_t			*key_der;
	size_t			 key_len;
	int64_t			 not_after;
	int64_t			 rotate_at;
	int			 x509_pending;
	/* WIT-SVID, fetched once a workload asked for it */
	char			*wit;
	char			*wit_key;	/* private JWK, JSON */
	int64_t			 wit_exp;
	int64_t			 wit_rotate_at;
	int			 wit_wanted;
	int			 wit_pending;
	int			 kept;		/* while replacing */
	struct cache_entry	*idx_next;	/* the cache's: match index */
	struct cache_entry	*id_next;	/* the cache's: by ID */
};

/* A subscriber, embedded in its owner: told after every change. */
struct cache_sub {
	struct cache_sub	*next;
	void			(*changed)(struct cache_sub *);
};

struct cache;

struct cache	*cache_new(void);
void		 cache_free(struct cache *);
/* Frees an entry the cache does not hold (NULL: nothing). */
void		 cache_entry_free(struct cache_entry *);

/* ---- entries ------------------------------------------------------------ */

size_t		 cache_count(const struct cache *);
/* Entry i in ID order (0 <= i < cache_count()), for rotation. */
struct cache_entry *cache_entry_at(struct cache *, size_t i);
struct cache_entry *cache_find(struct cache *, const char *id);
/*
 * The new entry set (v is taken, entries and array): every entry held
 * before that is not in v is freed.  Sorts and indexes for matching.
 */
void		 cache_set_entries(struct cache *, struct cache_entry **v,
		    size_t n);
/*
 * The entries whose selectors are all among sel, in entry ID order, with
 * later duplicates of a non-empty hint dropped (the oldest entry wins).
 * *out is malloc'ed (borrowed pointers); only entries with an X.509-SVID
 * when with_svid is set.  WICK_ERR_ALLOC when memory is short.
 */
int		 cache_match(struct cache *, const struct selector_set *sel,
		    int with_svid, struct cache_entry ***out, size_t *n)
		    WICK_WUR;

/*
 * 1 when an entry has a unix:supplementary_gid or supplementary_group
 * selector: only then can a caller's supplementary groups change what it
 * matches.
 */
int		 cache_names_groups(const struct cache *);

/* ---- bundles ------------------------------------------------------------ */

/* Own trust domain's bundle (taken); its X.509 DER is kept beside it. */
void		 cache_set_bundle(struct cache *, struct bundle *);
struct bundle	*cache_bundle(const struct cache *);
/* Its X.509 authorities as concatenated DER (what every X.509 answer
 * sends); borrowed until the bundle changes. */
const uint8_t	*cache_bundle_der(const struct cache *, size_t *len);
/* Federated bundles: dropped all at once, added one by one (taken; past
 * CACHE_MAX_FEDERATED freed). */
void		 cache_clear_federated(struct cache *);
/*
 * The JWT keys of b (the own bundle or a federated one held), decoded
 * once per bundle held: borrowed until the bundles change.  NULL when
 * a key does not decode.
 */
const struct jose_keyset *cache_jwt_keyset(struct cache *,
		    const struct bundle *b);
/*
 * The same keys, held until cache_keyset_release() (for a verification
 * off the loop, across a change of bundles).  Holding and releasing are
 * for the loop thread; the keys may be read from any.
 */
struct cache_keyset;
struct cache_keyset *cache_jwt_keyset_hold(struct cache *,
		    const struct bundle *b, const struct jose_keyset **ks);
void		 cache_keyset_release(struct cache_keyset *);
void		 cache_add_federated(struct cache *, struct bundle *);
/* The bundle of a trust domain ID: own or federated; NULL if none. */
struct bundle	*cache_bundle_for(struct cache *, const char *td_id);

/* ---- JWT-SVIDs ---------------------------------------------------------- */

/* The sorted audiences, newline-joined (the key of a JWT-SVID); NULL when
 * memory is short. */
char		*cache_aud_key(char **aud, size_t n);
/*
 * A token kept for entry_id and aud_key: *fresh is set when it need not
 * be renewed yet (before half its life), else it is only still valid.
 * NULL when none is valid at now.  Borrowed until the next cache_jwt_put.
 */
const char	*cache_jwt_get(struct cache *, const char *entry_id,
		    const char *aud_key, int64_t now, int *fresh);
/* Keep a token (copied; wiped when dropped); the oldest goes when full. */
void		 cache_jwt_put(struct cache *, const char *entry_id,
		    const char *aud_key, const char *token, int64_t exp,
		    int64_t now);

/* ---- subscribers -------------------------------------------------------- */

void		 cache_subscribe(struct cache *, struct cache_sub *);
void		 cache_unsubscribe(struct cache *, struct cache_sub *);
/* Something changed: every subscriber's changed() runs (a subscriber may
 * unsubscribe itself from it). */
void		 cache_notify(struct cache *);

#endif /* WICK_CACHE_H */
