/*
 * selector.h: workload and node selectors, "type:value", and sorted sets
 * of them.  The type is everything before the first colon ("unix" in
 * "unix:uid:1000"); the value may contain colons.
 *
 * An entry applies to a workload when every selector of the entry is in
 * the workload's set: selector_set_is_subset(entry, workload).
 */
#ifndef WICK_SELECTOR_H
#define WICK_SELECTOR_H

#include <stddef.h>

#include "err.h"

#define SELECTOR_MAX_TYPE_LEN	64
#define SELECTOR_MAX_VALUE_LEN	1024
#define SELECTOR_MAX_COUNT	512	/* selectors in one set */

struct selector {
	char	*type;
	char	*value;
};

/* Sorted by (type, value), no duplicates.  Embedded: init/cleanup. */
struct selector_set {
	struct selector	*sel;
	size_t		 n;
	size_t		 cap;
};

void	 selector_set_init(struct selector_set *);
void	 selector_set_cleanup(struct selector_set *);
/* Add "type:value" (a duplicate is ignored).  *why names a bad input. */
int	 selector_set_add_str(struct selector_set *, const char *,
	    const char **why) WICK_WUR;
int	 selector_set_add(struct selector_set *, const char *type,
	    const char *value, const char **why) WICK_WUR;
/* Parse one selector per line (blank lines ignored). */
int	 selector_set_parse_lines(struct selector_set *, const char *,
	    const char **why) WICK_WUR;
/* One "type:value" per line, sorted; heap string for the caller. */
int	 selector_set_format(const struct selector_set *, char **out) WICK_WUR;
int	 selector_set_contains(const struct selector_set *, const char *type,
	    const char *value);
/* Every selector of a is in b (an empty a is a subset of anything). */
int	 selector_set_is_subset(const struct selector_set *a,
	    const struct selector_set *b);
int	 selector_set_equal(const struct selector_set *,
	    const struct selector_set *);
/* Give back the room kept for more (a set that will not grow). */
void	 selector_set_shrink(struct selector_set *);
/* Add all of src to dst. */
int	 selector_set_union(struct selector_set *dst,
	    const struct selector_set *src) WICK_WUR;

#endif /* WICK_SELECTOR_H */
