/*
 * entry_cache.h: every registration entry in memory, kept current from
 * the datastore's change log, indexed for the question agents ask on
 * every sync: which entries may this agent serve?
 *
 * The authorized set of agent A (SPIRE's rule): entries parented to A,
 * entries parented to every node alias (an entry whose parent is the
 * server's ID) whose selectors are all among A's node selectors, and,
 * recursively, entries parented to any of those entries' SPIFFE IDs.
 * Pointers handed out are borrowed until the next refresh.
 */
#ifndef WICK_ENTRY_CACHE_H
#define WICK_ENTRY_CACHE_H

#include <stddef.h>
#include <stdint.h>

#include "ds.h"
#include "selector.h"

struct entry_cache;

int	 entry_cache_new(struct ds *, struct entry_cache **) WICK_WUR;
void	 entry_cache_free(struct entry_cache *);
/* Apply the change log since the last refresh. */
int	 entry_cache_refresh(struct entry_cache *) WICK_WUR;
/* Full reloads after the change log was pruned past the cache. */
uint64_t entry_cache_resyncs(const struct entry_cache *);
/* The change-log revision the cache reflects. */
int64_t	 entry_cache_revision(const struct entry_cache *);
size_t	 entry_cache_count(const struct entry_cache *);
const struct ds_entry *entry_cache_get(const struct entry_cache *,
	    const char *id);
/*
 * The authorized set of agent_id, sorted by entry ID; *out is a
 * malloc'ed array of borrowed pointers.
 */
int	 entry_cache_authorized(struct entry_cache *, const char *agent_id,
	    const struct selector_set *node_selectors, const char *server_id,
	    const struct ds_entry ***out, size_t *n) WICK_WUR;

#endif /* WICK_ENTRY_CACHE_H */
