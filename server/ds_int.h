/*
 * ds_int.h: what a datastore backend implements (ds.c dispatches to it
 * after the backend-independent checks of ds.h's limits).
 */
#ifndef WICK_DS_INT_H
#define WICK_DS_INT_H

#include "ds.h"

/*
 * A list walk (ds_entries_list(), ds_nodes_list() and their counts): the
 * backend's walk op goes through the rows in key order, a chunk per query,
 * narrowed in SQL by the filters SQL can test exactly or conservatively
 * (a selector filter keeps rows sharing at least one selector with it,
 * which every match mode needs), and hands each row, decoded, to
 * ds_walk_row(), which lets ds_entry_matches() / ds_node_matches() decide.
 */
struct ds_walk {
	int		  entries;	/* 1 entries, 0 nodes */
	const void	 *f;		/* the filter, or NULL */
	struct ds_entry	**ev;		/* matches kept, or NULL (count) */
	struct ds_node	**nv;
	size_t		  n;		/* matches */
	size_t		  limit;	/* at most this many */
	int		  more;		/* a match past the limit exists */
	char		 *last;		/* the key of the last row seen */
};

/* What a write gave an entry: created_at, revision_number, change_rev. */
void	 ds_entry_stamp(struct ds_entry *, int64_t created, int64_t revno,
	    int64_t rev);

/*
 * A batch of entry writes in one transaction (begin .. finish, which
 * commits when given 0 and else rolls back), each item under a savepoint
 * (exec'ed by name).  Items with res[i] == 0 on entry are tried.
 */
enum ds_batch_op { DS_BATCH_CREATE, DS_BATCH_UPDATE, DS_BATCH_DELETE };
struct ds_batch_ops {
	int	(*begin)(struct ds *);
	int	(*exec)(struct ds *, const char *sql);
	int	(*finish)(struct ds *, int r);
	int	(*create)(struct ds *, struct ds_entry *, int64_t now);
	int	(*update)(struct ds *, struct ds_entry *, int64_t now);
	int	(*delete)(struct ds *, const char *id, int64_t now);
};

struct ds_ops {
	const char	*name;
	void	(*close)(struct ds *);
	const struct ds_batch_ops *batch;
	int	(*entry_get)(struct ds *, const char *, struct ds_entry **);
	int	(*walk)(struct ds *, struct ds_walk *, const char *after);
	int	(*entries_prune)(struct ds *, int64_t, size_t *);
	int	(*revision)(struct ds *, int64_t *);
	int	(*changes_since)(struct ds *, int64_t, size_t, ds_change_fn *,
		    void *);
	int	(*changes_prune)(struct ds *, int64_t, size_t *);
	int	(*changes_floor)(struct ds *, int64_t *);
	int	(*node_create)(struct ds *, const struct ds_node *, int64_t);
	int	(*node_get)(struct ds *, const char *, struct ds_node **);
	int	(*node_set_serials)(struct ds *, const char *, const char *,
		    int64_t, const char *, int64_t, int64_t);
	int	(*node_set_selectors)(struct ds *, const char *,
		    const struct selector_set *, int64_t);
	int	(*node_ban)(struct ds *, const char *, int64_t);
	int	(*node_delete)(struct ds *, const char *, int64_t);
	int	(*join_token_create)(struct ds *, const char *hash, int64_t);
	int	(*join_token_consume)(struct ds *, const char *hash, int64_t);
	int	(*join_tokens_prune)(struct ds *, int64_t, size_t *);
	int	(*bundle_set)(struct ds *, const char *, const uint8_t *,
		    size_t, int64_t);
	int	(*bundle_get)(struct ds *, const char *, uint8_t **, size_t *);
	int	(*bundle_delete)(struct ds *, const char *, int64_t);
	int	(*bundles_foreach)(struct ds *, ds_bundle_fn *, void *);
	int	(*ca_journal_set)(struct ds *, const char *, const uint8_t *,
		    size_t, int64_t);
	int	(*ca_journal_get)(struct ds *, const char *, uint8_t **,
		    size_t *);
	int	(*tx_begin)(struct ds *);
	int	(*tx_end)(struct ds *, int);
	int	(*audit_append)(struct ds *, int64_t, const char *,
		    const char *, const char *, int, const char *);
	int	(*audit_since)(struct ds *, int64_t, size_t, ds_audit_fn *,
		    void *);
	int	(*audit_list)(struct ds *, const struct ds_audit_filter *,
		    size_t, ds_audit_fn *, void *);
	int	(*audit_verify_step)(struct ds *, struct ds_audit_verify *,
		    size_t);
	int	(*audit_prune)(struct ds *, int64_t, size_t, int64_t,
		    size_t *);
	int	(*backup_begin)(struct ds *, const char *,
		    struct ds_backup **, const char **);
	int	(*backup_run)(struct ds_backup *, const char **);
	void	(*backup_free)(struct ds_backup *);
	int	(*check)(struct ds *, const char **);
	/* ds_entries_load(); NULL: ds.c pages through the walk op. */
	int	(*entries_load)(struct ds *, ds_entry_fn *, void *);
};

/* Every backend's struct begins with this. */
struct ds {
	const struct ds_ops	*ops;
	/* ds_set_timer(): backend calls timed (loop thread only). */
	void			(*timer)(void *, uint64_t ns);
	void			*timer_arg;
	int			 depth;		/* calls in progress */
	uint64_t		 t0;		/* the outermost began */
};

/* Backend entry points. */
int	 ds_sqlite_open(const char *conn, struct ds **, const char **why);
int	 ds_sqlite_open_readonly(const char *conn, struct ds **,
	    const char **why);
int	 ds_pg_open(const char *conn, struct ds **, const char **why);
int	 ds_pg_open_readonly(const char *conn, struct ds **, const char **why);

/* Shared by backends: does an entry pass the C-side filters? */
int	 ds_entry_matches(const struct ds_entry *,
	    const struct ds_entry_filter *);
int	 ds_node_matches(const struct ds_node *, const struct ds_node_filter *);
/* Lower-hex SHA-256 of a selector set's canonical form (sorted
 * "type\0value\0" pairs): equal sets, equal hashes. */
int	 ds_selectors_hash(const struct selector_set *, char out[65])
	    WICK_WUR;

/* Every backend's backup handle begins with this. */
struct ds_backup {
	const struct ds_ops	*ops;
};

/*
 * Check one event of a chain walk against the state in v (seq, link,
 * hash) and advance it; on a broken link fill v->bad_seq and v->why and
 * return WICK_ERR_STATE.
 */
int	 ds_audit_verify_event(struct ds_audit_verify *,
	    const struct ds_audit *) WICK_WUR;

/* ---- shared by backends (ds_common.c) ---------------------------------- */

/*
 * Run a walk: fetch is called with the key to start after until a chunk
 * comes back with fewer than chunk rows (*rows), a match past the limit
 * turns up, or it fails.  fetch hands each row to ds_walk_row().
 */
typedef int ds_walk_fetch_fn(void *arg, const char *after, size_t *rows);
int	 ds_walk_run(struct ds_walk *, const char *after, size_t chunk,
	    ds_walk_fetch_fn *, void *) WICK_WUR;
/* Run a batch through the backend's batch ops (ds_entries_create() and
 * the like). */
int	 ds_batch_run(struct ds *, const struct ds_batch_ops *,
	    enum ds_batch_op, struct ds_entry **v, const char *const *ids,
	    size_t n, int *res, int64_t now);
/* Take one decoded row (e for entries, n for nodes; either is consumed);
 * afterwards w->more says to stop. */
int	 ds_walk_row(struct ds_walk *, struct ds_entry *e, struct ds_node *n)
	    WICK_WUR;

/*
 * A row as a backend reads it: copies of text columns ("" for NULL; NULL
 * when out of memory) and integer columns.
 */
struct ds_cols {
	char	*(*text)(const void *row, int col);
	int64_t	 (*num)(const void *row, int col);
};
/* An entry's own columns, from column base on: entry_id, spiffe_id,
 * parent_id, x509_svid_ttl, jwt_svid_ttl, admin, downstream, store_svid,
 * expires_at, hint, revision_number, created_at, change_rev. */
int	 ds_entry_decode(const struct ds_cols *, const void *row, int base,
	    struct ds_entry **) WICK_WUR;
/* A node's own columns, from column base on: spiffe_id,
 * attestation_type, serial, expires_at, new_serial, new_expires_at,
 * can_reattest, created_at. */
int	 ds_node_decode(const struct ds_cols *, const void *row, int base,
	    struct ds_node **) WICK_WUR;

/* [["type","value"],...] for SQL to expand; NULL when out of memory
 * (then the caller narrows nothing in SQL and C does all the work). */
char	*ds_selectors_json(const struct selector_set *);

/*
 * The checks before an entry is written: hash its selectors into hash,
 * then ask similar() for the entry ID of an entry with the same IDs and
 * selectors.  A create finding one gets WICK_ERR_EXISTS with e->id set
 * to it, else e->id is made up if empty; an update finding another entry
 * gets WICK_ERR_EXISTS.
 */
typedef int ds_similar_fn(struct ds *, const struct ds_entry *,
	    const char *hash, char **id);
int	 ds_entry_prepare(struct ds *, struct ds_entry *e, int create,
	    char hash[65], ds_similar_fn *similar) WICK_WUR;

/* The prev_hash of the first event, when nothing was ever pruned. */
#define DS_AUDIT_GENESIS \
	"0000000000000000000000000000000000000000000000000000000000000000"

/* An event (seq) still at or below the anchor (aseq): the anchor was
 * edited.  Sets v's bad_seq and why; returns WICK_ERR_STATE. */
int	 ds_audit_anchor_edited(struct ds_audit_verify *, int64_t seq,
	    int64_t aseq);

/*
 * What chaining, a verify slice or a prune needs of a backend, inside the
 * transaction the backend opened for it.
 */
struct ds_audit_ops {
	/* The newest chained event's seq and hash; WICK_ERR_NOT_FOUND
	 * when none. */
	int	(*last)(struct ds *, int64_t *seq,
		    char hash[DS_AUDIT_HASH_HEX]);
	/* The anchor's seq and hash; WICK_ERR_NOT_FOUND when none. */
	int	(*anchor)(struct ds *, int64_t *seq,
		    char hash[DS_AUDIT_HASH_HEX]);
	/* An event at or below the anchor: ds_audit_anchor_edited(). */
	int	(*anchor_check)(struct ds *, int64_t aseq,
		    struct ds_audit_verify *);
	/* fn over at most max events after seq, in seq order; fn's
	 * non-zero is returned. */
	int	(*rows)(struct ds *, int64_t after, size_t max, ds_audit_fn *,
		    void *);
	/* Drop the events up to seq; make (seq, hash, at) the anchor. */
	int	(*cut)(struct ds *, int64_t seq, const char *hash, int64_t at);
	/* Insert a chained event. */
	int	(*put)(struct ds *, const struct ds_audit *);
};

/* Chain a new event to the head (the newest event, else the anchor, else
 * genesis) and insert it, under the backend's audit lock. */
int	 ds_audit_chain(struct ds *, const struct ds_audit_ops *, int64_t at,
	    const char *kind, const char *actor, const char *subject, int ok,
	    const char *detail) WICK_WUR;

/*
 * One slice of a chain walk.  A prune between two slices may drop events
 * the walk has not reached: then the walk goes on from the new anchor,
 * which must itself continue what was checked.
 */
int	 ds_audit_verify_run(struct ds *, const struct ds_audit_ops *,
	    struct ds_audit_verify *, size_t max_rows) WICK_WUR;
/*
 * Drop the events older than before (at most max_rows), checking their
 * chain first, move the anchor past them and record an "audit.prune"
 * event; *pruned gets their number.  A broken chain prunes nothing.
 */
int	 ds_audit_prune_run(struct ds *, const struct ds_audit_ops *,
	    int64_t before, size_t max_rows, int64_t now, size_t *pruned)
	    WICK_WUR;

#endif /* WICK_DS_INT_H */
