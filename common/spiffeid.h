/*
 * spiffeid.h: SPIFFE IDs and trust domains, with every rule of the SPIFFE
 * ID specification as go-spiffe applies it, and py-spiffe's stricter
 * trust-domain rules on request (SPIFFEID_STRICT).
 *
 * A parsed ID is a value: the trust domain and the path (empty for the
 * trust domain's root ID) in fixed buffers, no allocation.
 */
#ifndef WICK_SPIFFEID_H
#define WICK_SPIFFEID_H

#include <stddef.h>

#include "err.h"

#define SPIFFEID_MAX_LEN	2048	/* whole URI, "spiffe://" included */
#define SPIFFEID_MAX_TD_LEN	255
#define SPIFFEID_SCHEME		"spiffe://"

/* Flags. */
#define SPIFFEID_STRICT		0x1	/* py-spiffe's trust-domain rules */
#define SPIFFEID_ALLOW_ROOT	0x2	/* accept an ID without a path */

struct spiffeid {
	char	td[SPIFFEID_MAX_TD_LEN + 1];
	char	path[SPIFFEID_MAX_LEN + 1];	/* "" or "/seg/seg" */
};

/*
 * Parse an ID.  On error, *why (if not NULL) gets a static sentence
 * naming the broken rule, in go-spiffe's words where it has them.
 */
int	 spiffeid_parse(const char *, unsigned flags, struct spiffeid *,
	    const char **why) WICK_WUR;
/* A trust domain name, "example.org", or its ID "spiffe://example.org". */
int	 spiffeid_td_parse(const char *, unsigned flags,
	    char td[SPIFFEID_MAX_TD_LEN + 1], const char **why) WICK_WUR;
/* Check a path on its own ("" or "/a/b"). */
int	 spiffeid_path_check(const char *, const char **why) WICK_WUR;
/* "spiffe://td/path" into out (outlen >= SPIFFEID_MAX_LEN + 1 suffices). */
int	 spiffeid_format(const struct spiffeid *, char *out, size_t outlen)
	    WICK_WUR;
/* Non-zero when id belongs to trust domain td. */
int	 spiffeid_member_of(const struct spiffeid *, const char *td);
/* Non-zero for SPIRE's reserved paths: "/spire" and below. */
int	 spiffeid_is_reserved(const struct spiffeid *);
/* spiffe://<td>/spire/agent/join_token/<token> */
int	 spiffeid_join_token_agent(const char *td, const char *token,
	    struct spiffeid *) WICK_WUR;
/* spiffe://<td>/spire/server */
int	 spiffeid_server(const char *td, struct spiffeid *) WICK_WUR;

#endif /* WICK_SPIFFEID_H */
