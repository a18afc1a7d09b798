/*
 * wpt_common.h: what both sides of the example do with libwick: make the
 * two headers that prove who we are, and check the other side's.
 */
#ifndef WPT_COMMON_H
#define WPT_COMMON_H

#include <stddef.h>

#include "wick/wick.h"

/* "Workload-Identity-Token: ...\r\nAuthorization: WPT ...\r\n" for aud. */
int	 wpt_prove(struct wick_client *, const char *aud, char *out,
	    size_t outlen);
/* A verifier for aud with the agent's WIT bundles. */
int	 wpt_verifier(struct wick_client *, const char *aud,
	    struct wick_wpt_verifier **);
/* Check a message head's WIT and WPT; res says why on failure. */
int	 wpt_check(struct wick_wpt_verifier *, const char *head,
	    struct wick_wpt_result *);

#endif
