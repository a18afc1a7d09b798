/*
 * ds.h: the server's datastore.
 *
 * Registration entries, attested agents (nodes), join tokens, bundles,
 * the CA journal, the audit trail and a change log whose revision counter
 * the server's entry cache and the agents' incremental sync read.
 *
 * One interface, several backends: ds_open() picks the backend from the
 * configured database type and every public function below dispatches
 * through struct ds_ops: SQLite ("sqlite3", ds_sqlite.c) and PostgreSQL
 * ("postgres", ds_pg.c).
 *
 * Every function that changes more than one row does it in one
 * transaction.  Time is never read here: callers pass "now" (unix
 * seconds).  Strings in and out are NUL-terminated UTF-8; every struct
 * returned through an out parameter belongs to the caller.
 */
#ifndef WICK_DS_H
#define WICK_DS_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "selector.h"

#define DS_ENTRY_ID_MAX		255	/* caller-chosen entry IDs */
#define DS_HINT_MAX		1024
#define DS_MAX_DNS_NAMES	128
#define DS_MAX_FEDERATES_WITH	128
#define DS_MAX_PAGE		10000	/* entries or nodes per list page */
#define DS_MAX_BLOB		(4 * 1024 * 1024)	/* bundle, journal */
#define DS_MAX_BATCH		10000	/* items in one batch call */

struct ds;

/* A registration entry; field meanings follow SPIRE's Entry. */
struct ds_entry {
	char			*id;		/* UUIDv4 when created empty */
	char			*spiffe_id;
	char			*parent_id;
	struct selector_set	 selectors;
	int32_t			 x509_svid_ttl;	/* seconds, 0 = default */
	int32_t			 jwt_svid_ttl;	/* seconds, 0 = default */
	char			**federates_with; /* trust domain IDs */
	size_t			 nfederates_with;
	char			**dns_names;
	size_t			 ndns_names;
	int			 admin;
	int			 downstream;
	int			 store_svid;
	int64_t			 expires_at;	/* unix s, 0 = never */
	char			*hint;		/* "" when none, never NULL
						   in entries returned */
	int64_t			 revision_number; /* 0 on create, +1 per update */
	int64_t			 created_at;	/* unix s */
	int64_t			 change_rev;	/* change-log revision of the
						   last write (read only) */
};

/* Zeroed, selectors initialised; NULL when out of memory. */
struct ds_entry	*ds_entry_new(void);
void		 ds_entry_free(struct ds_entry *);	/* NULL ok */
int		 ds_entry_dup(const struct ds_entry *, struct ds_entry **)
		    WICK_WUR;
/* Append one string to federates_with / dns_names (copied). */
int		 ds_entry_add_federates_with(struct ds_entry *, const char *)
		    WICK_WUR;
int		 ds_entry_add_dns_name(struct ds_entry *, const char *) WICK_WUR;

/* An attested agent.  Banned: serial and new_serial both "". */
struct ds_node {
	char			*spiffe_id;
	char			*attestation_type;
	char			*serial;	/* current SVID serial, hex */
	int64_t			 expires_at;	/* current SVID NotAfter */
	char			*new_serial;	/* issued by RenewAgent, "" */
	int64_t			 new_expires_at;
	struct selector_set	 selectors;	/* node selectors */
	int			 can_reattest;
	int64_t			 created_at;
};

struct ds_node	*ds_node_new(void);	/* NULL: out of memory */
void		 ds_node_free(struct ds_node *);
int		 ds_node_banned(const struct ds_node *);

/* How a selector or federates_with filter matches (SPIRE's values). */
enum ds_match {
	DS_MATCH_EXACT = 0,	/* the entry's set equals the filter */
	DS_MATCH_SUBSET = 1,	/* the entry's set is a subset of the filter */
	DS_MATCH_SUPERSET = 2,	/* the entry's set contains the filter */
	DS_MATCH_ANY = 3,	/* they share at least one */
};

/* Filters are ANDed; NULL / 0 means "no filter". */
struct ds_entry_filter {
	const char			*spiffe_id;
	const char			*parent_id;
	const char			*hint;
	const struct selector_set	*selectors;
	enum ds_match			 selector_match;
	const char *const		*federates_with;
	size_t				 nfederates_with;
	enum ds_match			 federates_match;
	int				 downstream_only;
};

struct ds_node_filter {
	const char			*attestation_type;
	int				 banned;	/* 0 any, 1 only, 2 not */
	int64_t				 expires_before; /* 0 = no filter */
	const struct selector_set	*selectors;
	enum ds_match			 selector_match;
	int				 can_reattest;	/* 0 any, 1 yes, 2 no */
};

/*
 * A page of results.  page_token in: NULL or "" for the first page;
 * next_token out: heap string, NULL after the last page.  Ordered by
 * entry ID (nodes: SPIFFE ID).  limit 0 means DS_MAX_PAGE.
 */
struct ds_entry_list {
	struct ds_entry	**v;
	size_t		  n;
	char		 *next_token;
};
void	 ds_entry_list_free(struct ds_entry_list *);	/* members only */

struct ds_node_list {
	struct ds_node	**v;
	size_t		  n;
	char		 *next_token;
};
void	 ds_node_list_free(struct ds_node_list *);

/* One row of the change log. */
enum ds_change_kind {
	DS_CHANGE_ENTRY = 1,	/* object = entry ID */
	DS_CHANGE_NODE = 2,	/* object = agent SPIFFE ID */
	DS_CHANGE_BUNDLE = 3,	/* object = trust domain ID */
};
enum ds_change_op {
	DS_OP_CREATE = 1,
	DS_OP_UPDATE = 2,
	DS_OP_DELETE = 3,
};
typedef int ds_change_fn(void *arg, int64_t revision, enum ds_change_kind,
    enum ds_change_op, const char *object);

/*
 * An audit event: kind ("entry.create", "agent.attest", "svid.x509"...),
 * actor (uid:0, an agent ID), subject (the SPIFFE ID acted on, "" when
 * none) and a JSON object with the details.
 *
 * Events form a hash chain: seq counts from 1 without gaps, prev_hash is
 * the hash of event seq - 1 (64 zeros before the first event) and hash is
 * ds_audit_hash() of the event.  Pruning keeps the seq and hash of the
 * last pruned event as the chain's anchor.
 */
#define DS_AUDIT_HASH_HEX	65	/* 64 hex digits and the NUL */
struct ds_audit {
	int64_t		 id;
	int64_t		 seq;
	int64_t		 at;
	char		*kind;
	char		*actor;
	char		*subject;
	char		*detail_json;
	int		 ok;		/* 1 success, 0 failure */
	char		 prev_hash[DS_AUDIT_HASH_HEX];
	char		 hash[DS_AUDIT_HASH_HEX];
};
void	 ds_audit_free_members(struct ds_audit *);
typedef int ds_audit_fn(void *arg, const struct ds_audit *);

/*
 * Open a datastore.  type "sqlite3": conn is a path or a "file:" URI;
 * the file is created 0600 and migrated forward to the current schema
 * (WAL, foreign keys on, busy timeout 5 s).  A database newer than this
 * build refuses to open (WICK_ERR_UNSUPPORTED).  An unknown type is
 * WICK_ERR_CONFIG.  *why (if not NULL) gets a static sentence on error.
 * Type "postgres": conn is a libpq connection string or URI; the database
 * is migrated forward the same way, under a lock, so several servers may
 * share it (ds_pg.c says how they stay consistent).
 */
int	 ds_open(const char *type, const char *conn, struct ds **out,
	    const char **why) WICK_WUR;
/*
 * Open a store only to read it, as "audit verify -config" does with a
 * stopped server: nothing is created, migrated or written.  SQLite: the
 * file is opened immutable (no lock, no -shm), so it must not be in use;
 * a non-empty -wal file beside it (a server running, or one that did not
 * stop cleanly) is WICK_ERR_STATE.  A schema other than this build's is
 * WICK_ERR_UNSUPPORTED.
 */
int	 ds_open_readonly(const char *type, const char *conn, struct ds **out,
	    const char **why) WICK_WUR;
void	 ds_close(struct ds *);
/* The schema version this build writes. */
int	 ds_schema_version(void);
/* How to name the store in messages: the path of a SQLite file; never a
 * PostgreSQL connection string, which may hold a password. */
const char *ds_conn_shown(const char *type, const char *conn);
/* Backend name, e.g. "sqlite3". */
const char *ds_backend(const struct ds *);
/*
 * Report how long each call into the backend took (fn(arg, ns), on the
 * calling thread, after the call): for the datastore latency metric.
 */
void	 ds_set_timer(struct ds *, void (*fn)(void *, uint64_t ns), void *arg);

/* ---- entries ---- */

/*
 * Create entries in one transaction; results[i] gets 0 or an error for
 * entries[i]: WICK_ERR_EXISTS when an entry with the same spiffe_id,
 * parent_id and selector set (or the same ID) exists (entries[i]->id is
 * then replaced by the existing entry's ID), WICK_ERR_INVALID for a
 * missing field or no selectors.  Created entries get id (if empty),
 * created_at = now, revision_number 0 and change_rev filled in place.
 * A failed item does not undo the others.  Returns an error only when
 * the whole batch failed (I/O, a busy database, out of memory); then
 * nothing was written.
 */
int	 ds_entries_create(struct ds *, struct ds_entry **entries, size_t n,
	    int *results, int64_t now) WICK_WUR;
/*
 * Replace entries by ID (all fields but id and created_at), bumping
 * revision_number; WICK_ERR_NOT_FOUND per item for an unknown ID,
 * WICK_ERR_EXISTS when the result would duplicate another entry.  The
 * stored entry (with its new revision) is written back into entries[i].
 */
int	 ds_entries_update(struct ds *, struct ds_entry **entries, size_t n,
	    int *results, int64_t now) WICK_WUR;
/* Delete by ID; results[i] WICK_ERR_NOT_FOUND for an unknown ID. */
int	 ds_entries_delete(struct ds *, const char *const *ids, size_t n,
	    int *results, int64_t now) WICK_WUR;
/* WICK_ERR_NOT_FOUND when absent. */
int	 ds_entry_get(struct ds *, const char *id, struct ds_entry **out)
	    WICK_WUR;
int	 ds_entries_list(struct ds *, const struct ds_entry_filter *,
	    const char *page_token, size_t limit, struct ds_entry_list *out)
	    WICK_WUR;
int	 ds_entries_count(struct ds *, const struct ds_entry_filter *,
	    int64_t *count) WICK_WUR;
/*
 * Every entry, as ds_entries_list() gives it, each handed to fn (which
 * owns it from then on, whatever it returns), in no particular order;
 * fn's non-zero stops the load and is returned.  For the entry cache:
 * SQLite reads the whole table in a few scans and one snapshot, other
 * backends page as ds_entries_list() does.  fn must not call into the
 * datastore: the scans are open while it runs.
 */
typedef int ds_entry_fn(void *arg, struct ds_entry *);
int	 ds_entries_load(struct ds *, ds_entry_fn *fn, void *arg) WICK_WUR;
/* Delete entries whose expires_at is in (0, now); *n gets how many. */
int	 ds_entries_prune(struct ds *, int64_t now, size_t *n) WICK_WUR;

/* ---- change log ---- */

/* The newest revision (0 for an empty log). */
int	 ds_revision(struct ds *, int64_t *rev) WICK_WUR;
/* Call fn for each change with revision > since, in order, at most
 * limit (0 = all); stops early when fn returns non-zero (returned). */
int	 ds_changes_since(struct ds *, int64_t since, size_t limit,
	    ds_change_fn *fn, void *arg) WICK_WUR;
/*
 * Prune the change log: the newest change recorded before `before` (unix
 * s) stays as the floor and every change below it goes; *n gets how
 * many.  The newest change of all always stays (the revision counter).
 * A reader whose revision is below ds_changes_floor() - 1 may have
 * missed some and must read everything again.
 */
int	 ds_changes_prune(struct ds *, int64_t before, size_t *n) WICK_WUR;
/* The oldest revision still recorded; 0 when there is none. */
int	 ds_changes_floor(struct ds *, int64_t *rev) WICK_WUR;

/* ---- attested agents ---- */

/* WICK_ERR_EXISTS when the SPIFFE ID is already attested. */
int	 ds_node_create(struct ds *, const struct ds_node *, int64_t now)
	    WICK_WUR;
int	 ds_node_get(struct ds *, const char *spiffe_id, struct ds_node **out)
	    WICK_WUR;
/* Store serial/expires_at/new_serial/new_expires_at as given. */
int	 ds_node_set_serials(struct ds *, const char *spiffe_id,
	    const char *serial, int64_t expires_at, const char *new_serial,
	    int64_t new_expires_at, int64_t now) WICK_WUR;
int	 ds_node_set_selectors(struct ds *, const char *spiffe_id,
	    const struct selector_set *, int64_t now) WICK_WUR;
/* Ban: clear both serials; the record stays. */
int	 ds_node_ban(struct ds *, const char *spiffe_id, int64_t now) WICK_WUR;
/* Evict: delete the record and its selectors. */
int	 ds_node_delete(struct ds *, const char *spiffe_id, int64_t now)
	    WICK_WUR;
int	 ds_nodes_list(struct ds *, const struct ds_node_filter *,
	    const char *page_token, size_t limit, struct ds_node_list *out)
	    WICK_WUR;
int	 ds_nodes_count(struct ds *, const struct ds_node_filter *,
	    int64_t *count) WICK_WUR;

/* ---- join tokens (stored as SHA-256, never in clear) ---- */

/* WICK_ERR_EXISTS when the token is already stored. */
int	 ds_join_token_create(struct ds *, const char *token,
	    int64_t expires_at) WICK_WUR;
/*
 * Look the token up and delete it in one transaction (single use, even
 * under concurrent callers).  WICK_ERR_NOT_FOUND when unknown or already
 * used; WICK_ERR_EXPIRED when expires_at <= now (the row is deleted too).
 */
int	 ds_join_token_consume(struct ds *, const char *token, int64_t now)
	    WICK_WUR;
/* Delete tokens expired before now. */
int	 ds_join_tokens_prune(struct ds *, int64_t now, size_t *n) WICK_WUR;

/* ---- bundles: opaque blobs keyed by trust domain ID ---- */

int	 ds_bundle_set(struct ds *, const char *td_id, const uint8_t *,
	    size_t, int64_t now) WICK_WUR;
/* *data is malloc'ed; WICK_ERR_NOT_FOUND when absent. */
int	 ds_bundle_get(struct ds *, const char *td_id, uint8_t **data,
	    size_t *len) WICK_WUR;
/* WICK_ERR_NOT_FOUND when absent. */
int	 ds_bundle_delete(struct ds *, const char *td_id, int64_t now)
	    WICK_WUR;
typedef int ds_bundle_fn(void *arg, const char *td_id, const uint8_t *,
    size_t);
/* Every bundle, ordered by trust domain ID. */
int	 ds_bundles_foreach(struct ds *, ds_bundle_fn *, void *) WICK_WUR;

/*
 * ---- CA journal: one opaque blob per server ----
 *
 * Keyed by server ID (keymgr_server_id(): several servers share one
 * datastore, each with its own authorities).  A journal stored before
 * journals had an owner has the server ID "": get hands it to a server
 * that has none of its own, and that server's first set replaces it.
 */

#define DS_MAX_SERVER_ID	64

int	 ds_ca_journal_set(struct ds *, const char *server_id, const uint8_t *,
	    size_t, int64_t now) WICK_WUR;
/* WICK_ERR_NOT_FOUND before the first set. */
int	 ds_ca_journal_get(struct ds *, const char *server_id, uint8_t **data,
	    size_t *len) WICK_WUR;

/* ---- transactions ---- */

/*
 * Group writes with their audit record: every call between ds_tx_begin()
 * and ds_tx_end() takes effect together when ds_tx_end(ds, 1) commits,
 * or not at all (rollback, a failed commit, a crash).  Each call inside
 * keeps its own all-or-nothing behaviour and results.  The store is
 * locked for writers from begin to end: keep the span short, with no
 * wait in it.  No nesting (WICK_ERR_STATE); ds_audit_verify_step() is
 * refused inside (WICK_ERR_STATE).
 */
int	 ds_tx_begin(struct ds *) WICK_WUR;
int	 ds_tx_end(struct ds *, int commit) WICK_WUR;

/* ---- audit trail ---- */

/*
 * Append an event to the chain.  Reading the chain's head and writing the
 * event are one write transaction, so concurrent appenders (threads or
 * processes) and a crash can neither fork nor break the chain.  The
 * details must be a JSON object (NULL: "{}"); they are stored and hashed
 * in canonical form (compact, keys sorted).  WICK_ERR_INVALID for a
 * missing kind or actor or details that are not a JSON object.
 */
int	 ds_audit_append(struct ds *, int64_t at, const char *kind,
	    const char *actor, int ok, const char *detail_json) WICK_WUR;
/* The same with a subject (NULL: ""). */
int	 ds_audit_record(struct ds *, int64_t at, const char *kind,
	    const char *actor, const char *subject, int ok,
	    const char *detail_json) WICK_WUR;
/*
 * ds_audit_record() for details already in canonical form, as
 * json_dumps(JSON_COMPACT | JSON_SORT_KEYS) writes a JSON object: stored
 * as they are, not parsed and written again (for large details, such as
 * a batch of SVIDs, that took as long as storing them).
 */
int	 ds_audit_record_canonical(struct ds *, int64_t at, const char *kind,
	    const char *actor, const char *subject, int ok,
	    const char *detail_json) WICK_WUR;
/* Events with id > after_id, oldest first, at most limit (0 = all). */
int	 ds_audit_since(struct ds *, int64_t after_id, size_t limit,
	    ds_audit_fn *, void *) WICK_WUR;

/* Filters of ds_audit_list(), ANDed; 0 / NULL: no filter. */
struct ds_audit_filter {
	int64_t		 after_seq;	/* paging: seq > this */
	int64_t		 since;		/* at or after (unix s) */
	const char	*spiffe_id;	/* the actor, the subject, or a
					   string value of the details */
};
/* Events in seq order, at most limit (0 = DS_MAX_PAGE); stops early when
 * fn returns non-zero (returned). */
int	 ds_audit_list(struct ds *, const struct ds_audit_filter *,
	    size_t limit, ds_audit_fn *, void *) WICK_WUR;

/*
 * The hash of an event: lower-hex SHA-256 over
 *	"wick-audit-v1" NUL
 *	seq (8 bytes, big endian)  at (8 bytes, big endian, two's complement)
 *	kind  actor  subject	(each: a 4-byte big-endian length, then
 *				 the bytes)
 *	ok (1 byte, 0 or 1)
 *	detail_json		(length and bytes, as stored)
 *	prev_hash		(32 bytes, the hex decoded)
 * Every field has a fixed size or a length, so no two events encode
 * alike.  WICK_ERR_INVALID when prev_hash is not 64 hex digits.
 */
int	 ds_audit_hash(const struct ds_audit *, char out[DS_AUDIT_HASH_HEX])
	    WICK_WUR;

/*
 * Walk the chain in slices: zero *v, then call until v->done, each call
 * checking at most max_rows events (0 = DS_MAX_PAGE) in one read
 * transaction, so a long chain never holds the store for long.  The walk
 * starts at the anchor of the last prune (or at seq 1) and stops at the
 * first broken link: v->bad_seq names it and v->why says what is wrong
 * (a changed event, a missing one, events out of order, an event still
 * there at or below the anchor: the anchor edited).
 */
struct ds_audit_verify {
	int		 started;
	int		 done;
	int64_t		 next_seq;	/* the seq expected next */
	char		 prev_hash[DS_AUDIT_HASH_HEX];
	int64_t		 anchor_seq;	/* 0: nothing pruned yet */
	int64_t		 count;		/* events checked */
	int64_t		 bad_seq;	/* 0: no broken link */
	char		 why[192];
};
int	 ds_audit_verify_step(struct ds *, struct ds_audit_verify *,
	    size_t max_rows) WICK_WUR;

/*
 * Drop the oldest events recorded before "before", at most max_rows (0 =
 * DS_MAX_PAGE), in one transaction.  The anchor becomes the last dropped
 * event's seq and hash, and an "audit.prune" event (actor "server")
 * recording it is appended in the same transaction, so the chain still
 * verifies.  Events whose links do not check are never dropped: then
 * WICK_ERR_STATE and nothing changes.  *n gets how many were dropped.
 */
int	 ds_audit_prune(struct ds *, int64_t before, size_t max_rows,
	    int64_t now, size_t *n) WICK_WUR;

/*
 * Online backup into a new file.  ds_backup_begin() (on the thread that
 * uses the store) opens a second, read-only connection and pins its
 * snapshot of the committed state; ds_backup_run() copies that snapshot
 * with the backend's online backup, page by page, while the store stays
 * in use: it touches nothing but the backup's own connections, so it may
 * run on another thread.  The copy is made 0600, is a self-contained
 * file and passes the integrity check before ds_backup_run() returns 0.
 * WICK_ERR_UNSUPPORTED for an in-memory store; WICK_ERR_EXISTS when dest
 * exists.  *why (if not NULL) gets a static sentence on error.
 */
struct ds_backup;
int	 ds_backup_begin(struct ds *, const char *dest, struct ds_backup **,
	    const char **why) WICK_WUR;
int	 ds_backup_run(struct ds_backup *, const char **why) WICK_WUR;
void	 ds_backup_free(struct ds_backup *);	/* NULL ok */

/* Run the backend's consistency check (SQLite: PRAGMA integrity_check
 * and foreign_key_check); WICK_ERR_STATE when it finds a problem. */
int	 ds_check(struct ds *, const char **why) WICK_WUR;

#endif /* WICK_DS_H */
