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

struct attestor_unix_opts {
	int		discover_workload_path;
	int64_t		workload_size_limit;	/* 0 unlimited, <0 no hash */
	const char	*proc_root;		/* "/proc" (tests may point
						   elsewhere) */
};

struct attestor {
	const char	*name;
	int		(*attest)(const struct attestor *, const struct peercred *,
			    struct selector_set *, char *why, size_t whylen);
	const void	*opts;
};

/*
 * unix: uid, user, gid, group (the ids SO_PEERCRED recorded at connect),
 * supplementary_gid, supplementary_group (from /proc/<pid>/status; names
 * only when they resolve), and with discover_workload_path also path and
 * sha256 of the binary.  WICK_ERR_PERM when the process no longer agrees
 * with its connection: a real, effective, saved or filesystem uid or gid
 * that is not the connect-time one, or (for path and sha256) a binary that
 * is not the one it ran at accept.  The caller must still be the same
 * process when it returns (WICK_ERR_STATE otherwise).
 */
int	 attestor_unix(const struct attestor *, const struct peercred *,
	    struct selector_set *, char *why, size_t whylen) WICK_WUR;

#endif /* WICK_ATTESTOR_H */
