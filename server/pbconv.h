/*
 * pbconv.h: datastore records to and from their protobuf messages.
 *
 * To-protobuf conversions borrow the record's strings: the message is
 * valid while the record is, and pb_*_clear() frees only the arrays the
 * conversion allocated.  They fail only for want of memory
 * (WICK_ERR_ALLOC); the message is then empty and needs no clear.
 */
#ifndef WICK_PBCONV_H
#define WICK_PBCONV_H

#include "ds.h"
#include "types.pb-c.h"

/* Copy a message into a new entry; *why names a malformed field. */
int	 pb_to_entry(const Wick__Types__Entry *, struct ds_entry **out,
	    const char **why) WICK_WUR;
int	 pb_from_entry(const struct ds_entry *, Wick__Types__Entry *)
	    WICK_WUR;
void	 pb_entry_clear(Wick__Types__Entry *);

int	 pb_from_node(const struct ds_node *, Wick__Types__Agent *) WICK_WUR;
void	 pb_agent_clear(Wick__Types__Agent *);

/* A selector set from messages; *why names a bad selector. */
int	 pb_to_selectors(Wick__Types__Selector *const *, size_t,
	    struct selector_set *, const char **why) WICK_WUR;

#endif /* WICK_PBCONV_H */
