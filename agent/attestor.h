/*
 * attestor.h: workload attestors.  Each one adds selectors for a caller
 * (identified by its peer credentials) to a set; the agent runs every
 * configured attestor and unions what they found.  The docker attestor
 * slots in beside unix in the table.
 */
#ifndef WICK_ATTESTOR_H
#define WICK_ATTESTOR_H

#include <stdint.h>

#include "peercred.h"
#include "selector.h"

#define ATTESTOR_MAX_GROUPS	256
#define ATTESTOR_MAX_NAME	255	/* a user or group name kept */
#define ATTESTOR_NAME_TTL_MS	1000	/* a name looked up is reused */

struct attestor_unix_cache;
struct attestor_hash;

struct attestor_unix_opts {
	int		discover_workload_path;
	int64_t		workload_size_limit;	/* 0 unlimited, <0 no hash */
	const char	*proc_root;		/* NULL: /proc (tests may
						   point elsewhere) */
	/* Names and digests kept between calls (NULL: none kept, and a
	 * binary is hashed within attestor_unix()). */
	struct attestor_unix_cache *cache;
};

/*
 * What the caller of an attestor knows about the call (flags):
 * ATTEST_NO_GROUPS: no entry names a supplementary group and the call is
 * answered from what is matched now (a unary call), so the caller's
 * supplementary groups cannot change the answer and need not be read.
 */
#define ATTEST_NO_GROUPS	0x1

struct attestor {
	const char	*name;
	int		(*attest)(const struct attestor *, const struct peercred *,
			    unsigned int flags, struct selector_set *,
			    char *why, size_t whylen);
	const void	*opts;
};

/*
 * unix: uid, user, gid, group (the ids SO_PEERCRED recorded at connect),
 * supplementary_gid, supplementary_group (from /proc/<pid>/status; names
 * only when they resolve; none with ATTEST_NO_GROUPS where the kernel
 * gives the ids through the caller's pidfd), and with
 * discover_workload_path also path and sha256 of the binary.
 * WICK_ERR_PERM when the process no longer agrees with its connection: a
 * real, effective, saved or filesystem uid or gid that is not the
 * connect-time one, or (for path and sha256) a binary that is not the one
 * it ran at accept.  The caller must still be the same process when it
 * returns (WICK_ERR_STATE otherwise).
 */
int	 attestor_unix(const struct attestor *, const struct peercred *,
	    unsigned int flags, struct selector_set *, char *why,
	    size_t whylen) WICK_WUR;
/*
 * With a cache and discover_workload_path, attestor_unix() returns
 * WICK_ERR_AGAIN (adding nothing) while the caller's binary has not been
 * hashed: attestor_unix_hash_new() opens it (checked as the one run at
 * accept), attestor_unix_hash_run() reads and hashes it on any thread
 * (touching nothing but the job), attestor_unix_hash_done() on the loop
 * keeps the digest and frees the job; then attest again.
 */
struct attestor_unix_cache *attestor_unix_cache_new(void);
void	 attestor_unix_cache_free(struct attestor_unix_cache *);
int	 attestor_unix_hash_new(const struct attestor *,
	    const struct peercred *, struct attestor_hash **, char *why,
	    size_t whylen) WICK_WUR;
/* 1 when both jobs hash the same file (one can wait for the other). */
int	 attestor_unix_hash_same(const struct attestor_hash *,
	    const struct attestor_hash *);
void	 attestor_unix_hash_run(struct attestor_hash *);
int	 attestor_unix_hash_done(const struct attestor *,
	    struct attestor_hash *, char *why, size_t whylen) WICK_WUR;
void	 attestor_unix_hash_free(struct attestor_hash *);

#endif /* WICK_ATTESTOR_H */
