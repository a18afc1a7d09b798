/*
 * ds_int.h: what a datastore backend implements (ds.c dispatches to it
 * after the backend-independent checks of ds.h's limits).
 */
#ifndef WICK_DS_INT_H
#define WICK_DS_INT_H

#include "ds.h"

struct ds_ops {
	const char	*name;
	void	(*close)(struct ds *);
	int	(*entries_create)(struct ds *, struct ds_entry **, size_t,
		    int *, int64_t);
	int	(*entries_update)(struct ds *, struct ds_entry **, size_t,
		    int *, int64_t);
	int	(*entries_delete)(struct ds *, const char *const *, size_t,
		    int *, int64_t);
	int	(*entry_get)(struct ds *, const char *, struct ds_entry **);
	int	(*entries_list)(struct ds *, const struct ds_entry_filter *,
		    const char *, size_t, struct ds_entry_list *);
	int	(*entries_count)(struct ds *, const struct ds_entry_filter *,
		    int64_t *);
	int	(*entries_prune)(struct ds *, int64_t, size_t *);
	int	(*revision)(struct ds *, int64_t *);
	int	(*changes_since)(struct ds *, int64_t, size_t, ds_change_fn *,
		    void *);
	int	(*node_create)(struct ds *, const struct ds_node *, int64_t);
	int	(*node_get)(struct ds *, const char *, struct ds_node **);
	int	(*node_set_serials)(struct ds *, const char *, const char *,
		    int64_t, const char *, int64_t, int64_t);
	int	(*node_set_selectors)(struct ds *, const char *,
		    const struct selector_set *, int64_t);
	int	(*node_ban)(struct ds *, const char *, int64_t);
	int	(*node_delete)(struct ds *, const char *, int64_t);
	int	(*nodes_list)(struct ds *, const struct ds_node_filter *,
		    const char *, size_t, struct ds_node_list *);
	int	(*nodes_count)(struct ds *, const struct ds_node_filter *,
		    int64_t *);
	int	(*join_token_create)(struct ds *, const char *hash, int64_t);
	int	(*join_token_consume)(struct ds *, const char *hash, int64_t);
	int	(*join_tokens_prune)(struct ds *, int64_t, size_t *);
	int	(*bundle_set)(struct ds *, const char *, const uint8_t *,
		    size_t, int64_t);
	int	(*bundle_get)(struct ds *, const char *, uint8_t **, size_t *);
	int	(*bundle_delete)(struct ds *, const char *, int64_t);
	int	(*bundles_foreach)(struct ds *, ds_bundle_fn *, void *);
	int	(*ca_journal_set)(struct ds *, const uint8_t *, size_t,
		    int64_t);
	int	(*ca_journal_get)(struct ds *, uint8_t **, size_t *);
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

#endif /* WICK_DS_INT_H */
