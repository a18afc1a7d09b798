/*
 * ds_sqlite.c: the SQLite datastore backend.
 *
 * WAL journal, synchronous=FULL (a committed change survives a crash),
 * foreign keys on, busy timeout 5 s, statements prepared once and kept,
 * every value bound (never formatted into SQL).  Writes take the write
 * lock at once (BEGIN IMMEDIATE); a batch runs in one transaction with a
 * savepoint per item.  Every write of an entry, node or bundle appends a
 * row to the change log in the same transaction.
 */
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <sqlite3.h>

#include "ds_int.h"
#include "log.h"
#include "xmalloc.h"

#define SQ_MAX_STMTS	96
#define SQ_BUSY_MS	5000
#define SQ_CHUNK	512	/* rows per query while walking a list */

/*
 * Forward-only schema steps; step i takes version i to i + 1 in its own
 * transaction.  Never edit a released step: append a new one.
 */
static const char *const migrations[] = {
	/* 1: the first schema. */
	"CREATE TABLE entries ("
	" id INTEGER PRIMARY KEY, entry_id TEXT NOT NULL UNIQUE,"
	" spiffe_id TEXT NOT NULL, parent_id TEXT NOT NULL,"
	" selector_hash TEXT NOT NULL,"
	" x509_svid_ttl INTEGER NOT NULL, jwt_svid_ttl INTEGER NOT NULL,"
	" admin INTEGER NOT NULL, downstream INTEGER NOT NULL,"
	" store_svid INTEGER NOT NULL, expires_at INTEGER NOT NULL,"
	" hint TEXT NOT NULL, revision_number INTEGER NOT NULL,"
	" created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL,"
	" change_rev INTEGER NOT NULL);"
	/* Similar entries (SPIRE's "similar entry already exists"). */
	"CREATE UNIQUE INDEX entries_similar ON entries"
	" (spiffe_id, parent_id, selector_hash);"
	"CREATE INDEX entries_parent ON entries (parent_id);"
	"CREATE INDEX entries_expires ON entries (expires_at);"
	"CREATE INDEX entries_hint ON entries (hint);"
	"CREATE TABLE entry_selectors ("
	" entry INTEGER NOT NULL REFERENCES entries (id) ON DELETE CASCADE,"
	" type TEXT NOT NULL, value TEXT NOT NULL,"
	" UNIQUE (entry, type, value));"
	"CREATE INDEX entry_selectors_tv ON entry_selectors (type, value);"
	"CREATE TABLE entry_dns_names ("
	" entry INTEGER NOT NULL REFERENCES entries (id) ON DELETE CASCADE,"
	" pos INTEGER NOT NULL, value TEXT NOT NULL, UNIQUE (entry, pos));"
	"CREATE TABLE entry_federates_with ("
	" entry INTEGER NOT NULL REFERENCES entries (id) ON DELETE CASCADE,"
	" pos INTEGER NOT NULL, td TEXT NOT NULL, UNIQUE (entry, pos));"
	"CREATE TABLE nodes ("
	" id INTEGER PRIMARY KEY, spiffe_id TEXT NOT NULL UNIQUE,"
	" attestation_type TEXT NOT NULL,"
	" serial TEXT NOT NULL, expires_at INTEGER NOT NULL,"
	" new_serial TEXT NOT NULL, new_expires_at INTEGER NOT NULL,"
	" can_reattest INTEGER NOT NULL,"
	" created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL);"
	"CREATE INDEX nodes_expires ON nodes (expires_at);"
	"CREATE TABLE node_selectors ("
	" node INTEGER NOT NULL REFERENCES nodes (id) ON DELETE CASCADE,"
	" type TEXT NOT NULL, value TEXT NOT NULL,"
	" UNIQUE (node, type, value));"
	/* The SHA-256 of the token, never the token. */
	"CREATE TABLE join_tokens ("
	" token_hash TEXT PRIMARY KEY, expires_at INTEGER NOT NULL);"
	"CREATE TABLE bundles ("
	" td_id TEXT PRIMARY KEY, data BLOB NOT NULL,"
	" updated_at INTEGER NOT NULL);"
	"CREATE TABLE ca_journal ("
	" id INTEGER PRIMARY KEY CHECK (id = 1), data BLOB NOT NULL,"
	" updated_at INTEGER NOT NULL);"
	"CREATE TABLE audit ("
	" id INTEGER PRIMARY KEY AUTOINCREMENT, at INTEGER NOT NULL,"
	" kind TEXT NOT NULL, actor TEXT NOT NULL, ok INTEGER NOT NULL,"
	" detail TEXT NOT NULL);"
	/* AUTOINCREMENT: a revision is never reused, even after a delete. */
	"CREATE TABLE changes ("
	" revision INTEGER PRIMARY KEY AUTOINCREMENT,"
	" kind INTEGER NOT NULL, op INTEGER NOT NULL, object TEXT NOT NULL,"
	" at INTEGER NOT NULL);",
	/* 2: agent lists filtered by selector. */
	"CREATE INDEX node_selectors_tv ON node_selectors (type, value);",
	/*
	 * 3: the audit trail as a hash chain (ds.h), and the anchor a prune
	 * leaves.  chain_existing() fills in seq and the hashes of the events
	 * already recorded, in the same transaction.
	 */
	"ALTER TABLE audit ADD COLUMN seq INTEGER;"
	"ALTER TABLE audit ADD COLUMN subject TEXT NOT NULL DEFAULT '';"
	"ALTER TABLE audit ADD COLUMN prev_hash TEXT;"
	"ALTER TABLE audit ADD COLUMN hash TEXT;"
	"CREATE UNIQUE INDEX audit_seq ON audit (seq);"
	"CREATE INDEX audit_at ON audit (at);"
	"CREATE TABLE audit_anchor ("
	" id INTEGER PRIMARY KEY CHECK (id = 1), seq INTEGER NOT NULL,"
	" hash TEXT NOT NULL, at INTEGER NOT NULL);",
	/*
	 * 4: one CA journal per server (ds.h); the single journal so far
	 * gets the server ID "" until its server next saves it.
	 */
	"CREATE TABLE ca_journals ("
	" server_id TEXT PRIMARY KEY, data BLOB NOT NULL,"
	" updated_at INTEGER NOT NULL);"
	"INSERT INTO ca_journals (server_id, data, updated_at)"
	" SELECT '', data, updated_at FROM ca_journal;"
	"DROP TABLE ca_journal;",
};
#define NMIGRATIONS	((int)(sizeof(migrations) / sizeof(migrations[0])))

struct sq {
	struct ds	 base;
	sqlite3		*db;
	char		*conn;		/* for backups */
	int		 tx;		/* in a caller's ds_tx_begin() */
	struct {
		const char	*sql;
		sqlite3_stmt	*st;
	}		 stmts[SQ_MAX_STMTS];
	int		 nstmts;
};

int
ds_schema_version(void)
{
	return NMIGRATIONS;
}

/*
 * SQLite's codes into ours; a constraint is the one expected failure.
 * Requests reach here, so the line is rate-limited (a locked database
 * fails every call until it is released).
 */
static int
sq_err(struct sq *s, int rc, const char *what)
{
	static struct log_ratelimit	rl = LOG_RATELIMIT_DEFAULT;

	rc &= 0xff;
	if (rc == SQLITE_CONSTRAINT)
		return WICK_ERR_EXISTS;
	log_error_rl(&rl, "sqlite: %s: %s", what, sqlite3_errmsg(s->db));
	if (rc == SQLITE_BUSY || rc == SQLITE_LOCKED)
		return WICK_ERR_UNAVAILABLE;
	if (rc == SQLITE_NOMEM)
		return WICK_ERR_ALLOC;
	return rc == SQLITE_FULL || rc == SQLITE_IOERR ||
	    rc == SQLITE_CANTOPEN ? WICK_ERR_IO : WICK_ERR_INTERNAL;
}

/* Prepare sql for one use; a failure is logged and returned. */
static int
prepare(struct sq *s, const char *sql, unsigned flags, sqlite3_stmt **out)
{
	char	what[128];
	int	rc;

	*out = NULL;
	if ((rc = sqlite3_prepare_v3(s->db, sql, -1, flags, out, NULL)) ==
	    SQLITE_OK && *out != NULL)
		return 0;
	sqlite3_finalize(*out);
	*out = NULL;
	snprintf(what, sizeof(what), "cannot prepare \"%.80s%s\"", sql,
	    strlen(sql) > 80 ? "..." : "");
	/* SQLITE_OK without a statement: sql held no statement, our bug. */
	return sq_err(s, rc != SQLITE_OK ? rc : SQLITE_INTERNAL, what);
}

/*
 * *p gets the kept statement for sql, reset and unbound, prepared on
 * first use.  Keyed by the address of the string, so sql must be a
 * literal.  A prepare can fail (out of memory, or a schema another
 * process changed): the error is returned and nothing is kept, so the
 * next call prepares again.
 */
static int
st(struct sq *s, const char *sql, sqlite3_stmt **p)
{
	int i, r;

	*p = NULL;
	for (i = 0; i < s->nstmts; i++)
		if (s->stmts[i].sql == sql) {
			sqlite3_reset(s->stmts[i].st);
			sqlite3_clear_bindings(s->stmts[i].st);
			*p = s->stmts[i].st;
			return 0;
		}
	/* The literals of this file are fewer: a bug, not a request. */
	if (s->nstmts == SQ_MAX_STMTS)
		fatal("sqlite: more than %d statements", SQ_MAX_STMTS);
	if ((r = prepare(s, sql, SQLITE_PREPARE_PERSISTENT, p)) != 0)
		return r;
	s->stmts[s->nstmts].sql = sql;
	s->stmts[s->nstmts++].st = *p;
	return 0;
}

/* Bound without a copy: v must outlive the statement's next reset. */
static void
bind_text(sqlite3_stmt *p, int i, const char *v)
{
	sqlite3_bind_text(p, i, v != NULL ? v : "", -1, SQLITE_STATIC);
}

static int
exec(struct sq *s, const char *sql)
{
	int rc;

	if ((rc = sqlite3_exec(s->db, sql, NULL, NULL, NULL)) != SQLITE_OK)
		return sq_err(s, rc, sql);
	return 0;
}

/* IMMEDIATE: take the write lock now, not on the first write, so two
 * writers never deadlock upgrading read locks.  Inside a caller's
 * transaction (ds_tx_begin()) a call is a savepoint of it. */
static int
begin(struct sq *s)
{
	return exec(s, s->tx ? "SAVEPOINT ds_call" : "BEGIN IMMEDIATE");
}

/* Commit when r is 0, else (or when that fails) roll back. */
static int
finish(struct sq *s, int r)
{
	if (s->tx) {
		if (r == 0)
			r = exec(s, "RELEASE ds_call");
		if (r != 0)
			(void)sqlite3_exec(s->db, "ROLLBACK TO ds_call;"
			    " RELEASE ds_call", NULL, NULL, NULL);
		return r;
	}
	if (r == 0)
		r = exec(s, "COMMIT");
	if (r != 0)
		(void)sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
	return r;
}

static int
sq_tx_begin(struct ds *ds)
{
	struct sq	*s = (struct sq *)ds;
	int		 r;

	if (s->tx)
		return WICK_ERR_STATE;
	if ((r = begin(s)) == 0)
		s->tx = 1;
	return r;
}

static int
sq_tx_end(struct ds *ds, int commit)
{
	struct sq *s = (struct sq *)ds;

	if (!s->tx)
		return WICK_ERR_STATE;
	s->tx = 0;
	if (!commit) {
		(void)sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
		return 0;
	}
	return finish(s, 0);
}

/* Run a statement that returns no rows. */
static int
step_done(struct sq *s, sqlite3_stmt *p, const char *what)
{
	int rc = sqlite3_step(p);

	sqlite3_reset(p);
	return rc == SQLITE_DONE ? 0 : sq_err(s, rc, what);
}

/* Run a statement that returns at most one row of one integer;
 * WICK_ERR_NOT_FOUND when it returns none. */
static int
step_int(struct sq *s, sqlite3_stmt *p, int64_t *v, const char *what)
{
	int rc = sqlite3_step(p);

	if (rc == SQLITE_ROW)
		*v = sqlite3_column_int64(p, 0);
	sqlite3_reset(p);
	if (rc == SQLITE_ROW)
		return 0;
	return rc == SQLITE_DONE ? WICK_ERR_NOT_FOUND : sq_err(s, rc, what);
}

/* A copy of column i ("" for NULL); NULL when out of memory. */
static char *
col_text(sqlite3_stmt *p, int i)
{
	const unsigned char *t = sqlite3_column_text(p, i);

	return strdup(t != NULL ? (const char *)t : "");
}

static int
col_blob(sqlite3_stmt *p, int col, uint8_t **data, size_t *n)
{
	const void	*b = sqlite3_column_blob(p, col);
	size_t		 len = (size_t)sqlite3_column_bytes(p, col);

	*n = 0;
	if ((*data = malloc(len + 1)) == NULL)
		return WICK_ERR_ALLOC;
	if (len > 0)
		memcpy(*data, b, len);
	*n = len;
	return 0;
}

/* Append a change-log row; *rev (if not NULL) gets its revision. */
static int
log_change(struct sq *s, enum ds_change_kind kind, enum ds_change_op op,
    const char *object, int64_t now, int64_t *rev)
{
	sqlite3_stmt	*p;
	int		 r;

	if ((r = st(s, "INSERT INTO changes (kind, op, object, at)"
	    " VALUES (?, ?, ?, ?)", &p)) != 0)
		return r;
	sqlite3_bind_int(p, 1, kind);
	sqlite3_bind_int(p, 2, op);
	bind_text(p, 3, object);
	sqlite3_bind_int64(p, 4, now);
	if ((r = step_done(s, p, "change log")) != 0)
		return r;
	if (rev != NULL)
		*rev = sqlite3_last_insert_rowid(s->db);
	return 0;
}

/* ---- entries ----------------------------------------------------------- */

/* Insert rows (entry, pos, value) for each string of v. */
static int
write_strings(struct sq *s, const char *sql, int64_t row, char *const *v,
    size_t n)
{
	sqlite3_stmt	*p;
	size_t		 i;
	int		 r;

	for (i = 0; i < n; i++) {
		if ((r = st(s, sql, &p)) != 0)
			return r;
		sqlite3_bind_int64(p, 1, row);
		sqlite3_bind_int64(p, 2, (int64_t)i);
		bind_text(p, 3, v[i]);
		if ((r = step_done(s, p, "insert entry list")) != 0)
			return r;
	}
	return 0;
}

static const char SQL_INS_NSEL[] = "INSERT INTO node_selectors"
    " (node, type, value) VALUES (?, ?, ?)";

static int
write_selectors(struct sq *s, const char *sql, int64_t row,
    const struct selector_set *set)
{
	sqlite3_stmt	*p;
	size_t		 i;
	int		 r;

	for (i = 0; i < set->n; i++) {
		if ((r = st(s, sql, &p)) != 0)
			return r;
		sqlite3_bind_int64(p, 1, row);
		bind_text(p, 2, set->sel[i].type);
		bind_text(p, 3, set->sel[i].value);
		if ((r = step_done(s, p, "insert selector")) != 0)
			return r;
	}
	return 0;
}

/* Selectors, DNS names and federated domains of entry row. */
static int
write_children(struct sq *s, int64_t row, const struct ds_entry *e)
{
	int r;

	if ((r = write_selectors(s, "INSERT INTO entry_selectors (entry, type,"
	    " value) VALUES (?, ?, ?)", row, &e->selectors)) != 0 ||
	    (r = write_strings(s, "INSERT INTO entry_dns_names (entry, pos,"
	    " value) VALUES (?, ?, ?)", row, e->dns_names, e->ndns_names)) != 0)
		return r;
	return write_strings(s, "INSERT INTO entry_federates_with (entry, pos,"
	    " td) VALUES (?, ?, ?)", row, e->federates_with,
	    e->nfederates_with);
}

/* The entry ID of an entry similar to e (same IDs and selectors). */
static int
find_similar(struct ds *ds, const struct ds_entry *e, const char *hash,
    char **id)
{
	struct sq	*s = (struct sq *)ds;
	sqlite3_stmt	*p;
	int		 rc, r;

	*id = NULL;
	if ((r = st(s, "SELECT entry_id FROM entries WHERE"
	    " spiffe_id = ? AND parent_id = ? AND selector_hash = ?",
	    &p)) != 0)
		return r;
	bind_text(p, 1, e->spiffe_id);
	bind_text(p, 2, e->parent_id);
	bind_text(p, 3, hash);
	if ((rc = sqlite3_step(p)) == SQLITE_ROW)
		*id = col_text(p, 0);
	sqlite3_reset(p);
	if (rc == SQLITE_ROW)
		return *id != NULL ? 0 : WICK_ERR_ALLOC;
	return rc == SQLITE_DONE ? WICK_ERR_NOT_FOUND :
	    sq_err(s, rc, "find similar entry");
}

/* Bind the columns create and update share, from parameter 1 on. */
static void
bind_entry(sqlite3_stmt *p, const struct ds_entry *e, const char *hash)
{
	bind_text(p, 1, e->spiffe_id);
	bind_text(p, 2, e->parent_id);
	bind_text(p, 3, hash);
	sqlite3_bind_int(p, 4, e->x509_svid_ttl);
	sqlite3_bind_int(p, 5, e->jwt_svid_ttl);
	sqlite3_bind_int(p, 6, e->admin != 0);
	sqlite3_bind_int(p, 7, e->downstream != 0);
	sqlite3_bind_int(p, 8, e->store_svid != 0);
	sqlite3_bind_int64(p, 9, e->expires_at);
	bind_text(p, 10, e->hint);
}

static int
sq_create_one(struct ds *ds, struct ds_entry *e, int64_t now)
{
	struct sq	*s = (struct sq *)ds;
	sqlite3_stmt	*p;
	char		 hash[65];
	int64_t		 rev;
	int		 r;

	if ((r = ds_entry_prepare(ds, e, 1, hash, find_similar)) != 0 ||
	    (r = log_change(s, DS_CHANGE_ENTRY, DS_OP_CREATE, e->id, now,
	    &rev)) != 0)
		return r;
	if ((r = st(s, "INSERT INTO entries (spiffe_id, parent_id,"
	    " selector_hash, x509_svid_ttl, jwt_svid_ttl, admin, downstream,"
	    " store_svid, expires_at, hint, entry_id, revision_number,"
	    " created_at, updated_at, change_rev) VALUES"
	    " (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, ?12, ?12, ?13)", &p)) != 0)
		return r;
	bind_entry(p, e, hash);
	bind_text(p, 11, e->id);
	sqlite3_bind_int64(p, 12, now);
	sqlite3_bind_int64(p, 13, rev);
	/* A constraint here is the same entry ID: EXISTS, id unchanged. */
	if ((r = step_done(s, p, "insert entry")) != 0 ||
	    (r = write_children(s, sqlite3_last_insert_rowid(s->db), e)) != 0)
		return r;
	ds_entry_stamp(e, now, 0, rev);
	return 0;
}

static int
sq_update_one(struct ds *ds, struct ds_entry *e, int64_t now)
{
	struct sq	*s = (struct sq *)ds;
	static const char *const clear[] = {
		"DELETE FROM entry_selectors WHERE entry = ?",
		"DELETE FROM entry_dns_names WHERE entry = ?",
		"DELETE FROM entry_federates_with WHERE entry = ?",
	};
	sqlite3_stmt	*p;
	char		 hash[65];
	int64_t		 row, rev, created, revno;
	size_t		 i;
	int		 rc, r;

	if ((r = st(s, "SELECT id, created_at, revision_number FROM entries"
	    " WHERE entry_id = ?", &p)) != 0)
		return r;
	bind_text(p, 1, e->id);
	if ((rc = sqlite3_step(p)) != SQLITE_ROW) {
		sqlite3_reset(p);
		return rc == SQLITE_DONE ? WICK_ERR_NOT_FOUND :
		    sq_err(s, rc, "find entry");
	}
	row = sqlite3_column_int64(p, 0);
	created = sqlite3_column_int64(p, 1);
	revno = sqlite3_column_int64(p, 2) + 1;
	sqlite3_reset(p);
	if ((r = ds_entry_prepare(ds, e, 0, hash, find_similar)) != 0 ||
	    (r = log_change(s, DS_CHANGE_ENTRY, DS_OP_UPDATE, e->id, now,
	    &rev)) != 0)
		return r;
	if ((r = st(s, "UPDATE entries SET spiffe_id = ?, parent_id = ?,"
	    " selector_hash = ?, x509_svid_ttl = ?, jwt_svid_ttl = ?,"
	    " admin = ?, downstream = ?, store_svid = ?, expires_at = ?,"
	    " hint = ?, revision_number = ?, updated_at = ?, change_rev = ?"
	    " WHERE id = ?", &p)) != 0)
		return r;
	bind_entry(p, e, hash);
	sqlite3_bind_int64(p, 11, revno);
	sqlite3_bind_int64(p, 12, now);
	sqlite3_bind_int64(p, 13, rev);
	sqlite3_bind_int64(p, 14, row);
	if ((r = step_done(s, p, "update entry")) != 0)
		return r;
	for (i = 0; i < sizeof(clear) / sizeof(clear[0]); i++) {
		if ((r = st(s, clear[i], &p)) != 0)
			return r;
		sqlite3_bind_int64(p, 1, row);
		if ((r = step_done(s, p, "clear entry lists")) != 0)
			return r;
	}
	if ((r = write_children(s, row, e)) == 0)
		ds_entry_stamp(e, created, revno, rev);
	return r;
}

static int
sq_delete_one(struct ds *ds, const char *id, int64_t now)
{
	struct sq	*s = (struct sq *)ds;
	sqlite3_stmt	*p;
	int		 r;

	if ((r = st(s, "DELETE FROM entries WHERE entry_id = ?", &p)) != 0)
		return r;
	bind_text(p, 1, id);
	if ((r = step_done(s, p, "delete entry")) != 0)
		return r;
	if (sqlite3_changes(s->db) == 0)
		return WICK_ERR_NOT_FOUND;
	return log_change(s, DS_CHANGE_ENTRY, DS_OP_DELETE, id, now, NULL);
}

static int
batch_begin(struct ds *ds)
{
	return begin((struct sq *)ds);
}

static int
batch_exec(struct ds *ds, const char *sql)
{
	return exec((struct sq *)ds, sql);
}

static int
batch_finish(struct ds *ds, int r)
{
	return finish((struct sq *)ds, r);
}

static const struct ds_batch_ops batch_ops = {
	batch_begin, batch_exec, batch_finish, sq_create_one, sq_update_one,
	sq_delete_one
};

#define ENTRY_COLS "id, entry_id, spiffe_id, parent_id, x509_svid_ttl," \
	" jwt_svid_ttl, admin, downstream, store_svid, expires_at, hint," \
	" revision_number, created_at, change_rev"

/* Add the selectors of a row (statement sql, bound to row) to set. */
static int
load_selectors(struct sq *s, const char *sql, int64_t row,
    struct selector_set *set)
{
	sqlite3_stmt	*p;
	const char	*why, *t, *v;
	int		 rc = SQLITE_DONE, r;

	if ((r = st(s, sql, &p)) != 0)
		return r;
	sqlite3_bind_int64(p, 1, row);
	while (r == 0 && (rc = sqlite3_step(p)) == SQLITE_ROW) {
		/* NOT NULL columns: NULL is SQLite out of memory. */
		t = (const char *)sqlite3_column_text(p, 0);
		v = (const char *)sqlite3_column_text(p, 1);
		r = t == NULL || v == NULL ? WICK_ERR_ALLOC :
		    selector_set_add(set, t, v, &why);
	}
	sqlite3_reset(p);
	if (r == 0 && rc != SQLITE_DONE)
		r = sq_err(s, rc, "load selectors");
	return r;
}

/* Append each string the statement sql returns for row. */
static int
load_strings(struct sq *s, const char *sql, int64_t row, struct ds_entry *e,
    int (*add)(struct ds_entry *, const char *))
{
	sqlite3_stmt	*p;
	const char	*v;
	int		 rc = SQLITE_DONE, r;

	if ((r = st(s, sql, &p)) != 0)
		return r;
	sqlite3_bind_int64(p, 1, row);
	while (r == 0 && (rc = sqlite3_step(p)) == SQLITE_ROW) {
		v = (const char *)sqlite3_column_text(p, 0);
		r = v == NULL ? WICK_ERR_ALLOC : add(e, v);
	}
	sqlite3_reset(p);
	if (r == 0 && rc != SQLITE_DONE)
		r = sq_err(s, rc, "load entry lists");
	return r;
}

static char *
row_text(const void *row, int col)
{
	return col_text((sqlite3_stmt *)row, col);
}

static int64_t
row_num(const void *row, int col)
{
	return sqlite3_column_int64((sqlite3_stmt *)row, col);
}

static const struct ds_cols cols = { row_text, row_num };

/* Build an entry from a row of ENTRY_COLS and its child rows. */
static int
load_entry(struct sq *s, sqlite3_stmt *row, struct ds_entry **out)
{
	struct ds_entry	*e;
	int64_t		 id = sqlite3_column_int64(row, 0);
	int		 r;

	if ((r = ds_entry_decode(&cols, row, 1, out)) != 0)
		return r;
	e = *out;
	if ((r = load_selectors(s, "SELECT type, value FROM entry_selectors"
	    " WHERE entry = ?", id, &e->selectors)) != 0 ||
	    (r = load_strings(s, "SELECT value FROM entry_dns_names"
	    " WHERE entry = ? ORDER BY pos", id, e,
	    ds_entry_add_dns_name)) != 0 ||
	    (r = load_strings(s, "SELECT td FROM entry_federates_with"
	    " WHERE entry = ? ORDER BY pos", id, e,
	    ds_entry_add_federates_with)) != 0) {
		ds_entry_free(e);
		*out = NULL;
	}
	return r;
}

static int
sq_entry_get(struct ds *ds, const char *id, struct ds_entry **out)
{
	struct sq	*s = (struct sq *)ds;
	sqlite3_stmt	*p;
	int		 rc, r;

	if ((r = st(s, "SELECT " ENTRY_COLS " FROM entries"
	    " WHERE entry_id = ?", &p)) != 0)
		return r;
	bind_text(p, 1, id);
	if ((rc = sqlite3_step(p)) != SQLITE_ROW) {
		sqlite3_reset(p);
		return rc == SQLITE_DONE ? WICK_ERR_NOT_FOUND :
		    sq_err(s, rc, "get entry");
	}
	r = load_entry(s, p, out);
	sqlite3_reset(p);
	return r;
}

#define NODE_COLS "id, spiffe_id, attestation_type, serial, expires_at," \
	" new_serial, new_expires_at, can_reattest, created_at"

/* Build a node from a row of NODE_COLS and its selectors. */
static int
load_node(struct sq *s, sqlite3_stmt *row, struct ds_node **out)
{
	int	r;

	if ((r = ds_node_decode(&cols, row, 1, out)) != 0)
		return r;
	if ((r = load_selectors(s, "SELECT type, value FROM node_selectors"
	    " WHERE node = ?", sqlite3_column_int64(row, 0),
	    &(*out)->selectors)) != 0) {
		ds_node_free(*out);
		*out = NULL;
	}
	return r;
}

/* ---- listing entries and nodes ----------------------------------------- */

/* The three lists of an entry, each in a table of its own. */
enum sq_child_kind { SQ_SELECTORS, SQ_DNS_NAMES, SQ_FEDERATES };

/* Add the values of a list row (columns 1 on; 0 is the entry's row ID)
 * to e. */
static int
child_add(sqlite3_stmt *p, enum sq_child_kind k, struct ds_entry *e)
{
	const char	*why, *a, *b;

	/* NOT NULL columns: NULL is SQLite out of memory. */
	if ((a = (const char *)sqlite3_column_text(p, 1)) == NULL)
		return WICK_ERR_ALLOC;
	switch (k) {
	case SQ_SELECTORS:
		b = (const char *)sqlite3_column_text(p, 2);
		return b == NULL ? WICK_ERR_ALLOC :
		    selector_set_add(&e->selectors, a, b, &why);
	case SQ_DNS_NAMES:
		return ds_entry_add_dns_name(e, a);
	case SQ_FEDERATES:
		return ds_entry_add_federates_with(e, a);
	}
	return WICK_ERR_INTERNAL;
}

/*
 * A walk (see ds_int.h) through its statement: nodes SQ_CHUNK rows a
 * query, each node's selectors by a lookup of its own.  Entries: the
 * lists of a chunk of SQ_CHUNK entries are read by one query per list
 * table (the chunk's row IDs as a JSON array) and merged, where three
 * lookups per entry made a page of 10,000 entries 30,000 statement
 * runs.  The whole walk reads one snapshot, so that an entry and its
 * lists agree.
 */
struct sq_rowid {
	int64_t		 row;
	struct ds_entry	*e;
};

struct sq_walk {
	struct sq	 *s;
	struct ds_walk	 *w;
	sqlite3_stmt	 *p;
	int		  lists;	/* the entries need their lists */
	int		  c_only;	/* a filter only C can apply */
	struct ds_entry	**ev;		/* a chunk of entries, in key order */
	struct sq_rowid	 *rows;		/* ... by row ID */
	char		 *json;		/* ... their row IDs */
};

/* Room for SQ_CHUNK row IDs in JSON: "[", up to 20 characters and a
 * comma each, "]" and the NUL. */
#define SQ_ROWIDS_JSON	(SQ_CHUNK * 21 + 3)

static int
cmp_rowid(const void *a, const void *b)
{
	int64_t	x = ((const struct sq_rowid *)a)->row;
	int64_t	y = ((const struct sq_rowid *)b)->row;

	return x < y ? -1 : x > y;
}

/* The lists of the k entries of sw's chunk: one query per list table. */
static int
chunk_lists(struct sq_walk *sw, size_t k)
{
	/* In the order of enum sq_child_kind; ordered by entry, as the
	 * chunk is sorted here, to merge. */
	static const char *const sql[] = {
		"SELECT entry, type, value FROM entry_selectors"
		    " WHERE entry IN (SELECT value FROM json_each(?1))"
		    " ORDER BY entry",
		"SELECT entry, value FROM entry_dns_names"
		    " WHERE entry IN (SELECT value FROM json_each(?1))"
		    " ORDER BY entry, pos",
		"SELECT entry, td FROM entry_federates_with"
		    " WHERE entry IN (SELECT value FROM json_each(?1))"
		    " ORDER BY entry, pos",
	};
	sqlite3_stmt	*p;
	size_t		 i, len;
	int64_t		 row;
	int		 c, rc = SQLITE_DONE, r = 0;

	qsort(sw->rows, k, sizeof(*sw->rows), cmp_rowid);
	len = 0;
	sw->json[len++] = '[';
	for (i = 0; i < k; i++)
		len += (size_t)snprintf(sw->json + len, SQ_ROWIDS_JSON - len,
		    "%s%lld", i > 0 ? "," : "", (long long)sw->rows[i].row);
	snprintf(sw->json + len, SQ_ROWIDS_JSON - len, "]");
	for (c = 0; c < 3 && r == 0; c++) {
		if ((r = st(sw->s, sql[c], &p)) != 0)
			break;
		bind_text(p, 1, sw->json);
		i = 0;
		while (r == 0 && (rc = sqlite3_step(p)) == SQLITE_ROW) {
			row = sqlite3_column_int64(p, 0);
			while (i < k && sw->rows[i].row < row)
				i++;
			/* Only the chunk's row IDs were asked for. */
			r = i < k && sw->rows[i].row == row ?
			    child_add(p, (enum sq_child_kind)c,
			    sw->rows[i].e) : WICK_ERR_INTERNAL;
		}
		if (r == 0 && rc != SQLITE_DONE)
			r = sq_err(sw->s, rc, "list entry lists");
		sqlite3_reset(p);
	}
	return r;
}

/* The query for w, from constant fragments only; values are bound.
 * *selj holds the JSON bound as ?5.  Prepared per walk, never kept. */
static int
walk_prepare(struct sq *s, const struct ds_walk *w, sqlite3_stmt **p,
    char **selj)
{
	const struct ds_entry_filter	*ef = w->entries ? w->f : NULL;
	const struct ds_node_filter	*nf = w->entries ? NULL : w->f;
	const struct selector_set	*sel = NULL;
	const char			*frag[8];
	char				 sql[1024];
	size_t				 k = 0, i, len = 0;
	int				 r;

	*p = NULL;
	*selj = NULL;
	if (w->entries) {
		frag[k++] = "SELECT " ENTRY_COLS " FROM entries WHERE"
		    " entry_id > ?1";
		if (ef != NULL && ef->spiffe_id != NULL)
			frag[k++] = " AND spiffe_id = ?2";
		if (ef != NULL && ef->parent_id != NULL)
			frag[k++] = " AND parent_id = ?3";
		if (ef != NULL && ef->hint != NULL)
			frag[k++] = " AND hint = ?4";
		if (ef != NULL && ef->downstream_only)
			frag[k++] = " AND downstream = 1";
		if (ef != NULL && ef->selectors != NULL &&
		    (sel = ef->selectors)->n > 0)
			frag[k++] = " AND id IN (SELECT x.entry FROM"
			    " entry_selectors x, json_each(?5) j WHERE"
			    " x.type = j.value ->> 0 AND"
			    " x.value = j.value ->> 1)";
	} else {
		frag[k++] = "SELECT " NODE_COLS " FROM nodes WHERE"
		    " spiffe_id > ?1";
		if (nf != NULL && nf->attestation_type != NULL)
			frag[k++] = " AND attestation_type = ?2";
		if (nf != NULL && nf->expires_before > 0)
			frag[k++] = " AND expires_at < ?3";
		if (nf != NULL && nf->banned != 0)
			frag[k++] = nf->banned == 1 ? " AND serial = '' AND"
			    " new_serial = ''" : " AND (serial != '' OR"
			    " new_serial != '')";
		if (nf != NULL && nf->selectors != NULL &&
		    (sel = nf->selectors)->n > 0)
			frag[k++] = " AND id IN (SELECT x.node FROM"
			    " node_selectors x, json_each(?5) j WHERE"
			    " x.type = j.value ->> 0 AND"
			    " x.value = j.value ->> 1)";
	}
	*selj = sel != NULL && sel->n > 0 ? ds_selectors_json(sel) : NULL;
	if (sel != NULL && sel->n > 0 && *selj == NULL)
		k--;	/* no JSON: leave it all to C */
	frag[k++] = w->entries ? " ORDER BY entry_id LIMIT ?6" :
	    " ORDER BY spiffe_id LIMIT ?6";
	for (i = 0; i < k; i++)
		len += (size_t)snprintf(sql + len, sizeof(sql) - len, "%s",
		    frag[i]);
	if ((r = prepare(s, sql, 0, p)) != 0) {
		free(*selj);
		*selj = NULL;
		return r;
	}
	if (ef != NULL) {
		bind_text(*p, 2, ef->spiffe_id);
		bind_text(*p, 3, ef->parent_id);
		bind_text(*p, 4, ef->hint);
	} else if (nf != NULL) {
		bind_text(*p, 2, nf->attestation_type);
		sqlite3_bind_int64(*p, 3, nf->expires_before);
	}
	if (*selj != NULL)
		bind_text(*p, 5, *selj);
	sqlite3_bind_int(*p, 6, SQ_CHUNK);
	return 0;
}

/* One chunk of nodes: the rows after the key "after", each to
 * ds_walk_row(). */
static int
walk_fetch_nodes(void *arg, const char *after, size_t *rows)
{
	struct sq_walk	*sw = arg;
	struct ds_node	*n;
	int		 rc, r = 0;

	/* A copy: after changes while the statement still runs. */
	if ((rc = sqlite3_bind_text(sw->p, 1, after, -1,
	    SQLITE_TRANSIENT)) != SQLITE_OK)
		return sq_err(sw->s, rc, "list");
	while ((rc = sqlite3_step(sw->p)) == SQLITE_ROW) {
		if ((r = load_node(sw->s, sw->p, &n)) != 0 ||
		    (r = ds_walk_row(sw->w, NULL, n)) != 0)
			return r;
		(*rows)++;
		if (sw->w->more)
			return 0;
	}
	if (rc != SQLITE_DONE)
		return sq_err(sw->s, rc, "list");
	sqlite3_reset(sw->p);
	return 0;
}

/*
 * Entries: one query for the rest of the walk, read a chunk at a time;
 * each chunk's lists are read (with the query still open: one snapshot)
 * and its entries handed to ds_walk_row().  A query per chunk, as nodes
 * do, sorted the filter's whole match again for each (a parent's 10,000
 * entries through its index, 20 times).  Unless C has a filter to apply,
 * the walk needs one row past what the page still lacks, and asks no
 * more.  The query ends the walk (*rows 0) unless it ended at that limit
 * before the page was full (*rows SQ_CHUNK: ds_walk_run() reads on).
 */
static int
walk_fetch(void *arg, const char *after, size_t *rows)
{
	struct sq_walk	*sw = arg;
	struct ds_walk	*w = sw->w;
	int64_t		 want = -1;	/* no limit */
	size_t		 k, i, total = 0;
	int		 rc = SQLITE_DONE, r = 0;

	if (!sw->c_only && w->limit - w->n < INT64_MAX)
		want = (int64_t)(w->limit - w->n) + 1;
	if ((rc = sqlite3_bind_text(sw->p, 1, after, -1,
	    SQLITE_TRANSIENT)) != SQLITE_OK ||
	    (rc = sqlite3_bind_int64(sw->p, 6, want)) != SQLITE_OK)
		return sq_err(sw->s, rc, "list");
	do {
		k = 0;
		while (k < SQ_CHUNK && (rc = sqlite3_step(sw->p)) ==
		    SQLITE_ROW) {
			if ((r = ds_entry_decode(&cols, sw->p, 1,
			    &sw->ev[k])) != 0)
				break;
			sw->rows[k].row = sqlite3_column_int64(sw->p, 0);
			sw->rows[k].e = sw->ev[k];
			k++;
		}
		if (r == 0 && rc != SQLITE_ROW && rc != SQLITE_DONE)
			r = sq_err(sw->s, rc, "list");
		if (r == 0 && k > 0 && sw->lists)
			r = chunk_lists(sw, k);
		for (i = 0; i < k; i++) {
			/* ds_walk_row() takes the entry, even when it
			 * fails. */
			if (r == 0 && !w->more)
				r = ds_walk_row(w, sw->ev[i], NULL);
			else
				ds_entry_free(sw->ev[i]);
			sw->ev[i] = NULL;
		}
		total += k;
	} while (r == 0 && rc == SQLITE_ROW && !w->more);
	sqlite3_reset(sw->p);
	*rows = r == 0 && !w->more && want >= 0 && total == (size_t)want ?
	    SQ_CHUNK : 0;
	return r;
}

static int
sq_walk(struct ds *ds, struct ds_walk *w, const char *after)
{
	const struct ds_entry_filter	*f = w->entries ? w->f : NULL;
	struct sq_walk			 sw;
	char				*selj = NULL;
	int				 r, tx = 0;

	memset(&sw, 0, sizeof(sw));
	sw.s = (struct sq *)ds;
	sw.w = w;
	if ((r = walk_prepare(sw.s, w, &sw.p, &selj)) != 0)
		goto out;
	if (!w->entries) {
		r = ds_walk_run(w, after, SQ_CHUNK, walk_fetch_nodes, &sw);
		goto out;
	}
	sw.c_only = f != NULL && ((f->selectors != NULL &&
	    f->selectors->n > 0) || f->nfederates_with > 0);
	/* A count with no filter on the lists never reads them. */
	sw.lists = w->ev != NULL || sw.c_only;
	if ((sw.ev = calloc(SQ_CHUNK, sizeof(*sw.ev))) == NULL ||
	    (sw.rows = calloc(SQ_CHUNK, sizeof(*sw.rows))) == NULL ||
	    (sw.json = malloc(SQ_ROWIDS_JSON)) == NULL) {
		r = WICK_ERR_ALLOC;
		goto out;
	}
	/* One snapshot (in a caller's transaction, that one). */
	if ((tx = !sw.s->tx) && (r = exec(sw.s, "BEGIN")) != 0) {
		tx = 0;
		goto out;
	}
	r = ds_walk_run(w, after, SQ_CHUNK, walk_fetch, &sw);
out:
	sqlite3_finalize(sw.p);
	/* Nothing written: the commit only ends the read. */
	if (tx)
		r = finish(sw.s, r);
	free(selj);
	free(sw.ev);
	free(sw.rows);
	free(sw.json);
	return r;
}

/* ---- every entry at once (the entry cache) ------------------------------ */

/*
 * A walk reads the entries and their lists in entry ID order, four
 * queries per chunk, which scatters the reads over the file (most of a
 * start-up went in reading the same pages again).  A whole load instead
 * reads the entries in row ID order and each list table once in entry
 * order (the order of its UNIQUE (entry, ...) index), and merges them:
 * each page read once.
 */
struct sq_child {
	sqlite3_stmt	*p;
	int		 rc;		/* of its last step */
};

/*
 * Give e (row id) the rows of c up to its own.  A row below id belongs
 * to no entry (a file written with foreign keys off): skipped, as a
 * lookup by entry never sees it either.
 */
static int
child_rows(struct sq *s, struct sq_child *c, enum sq_child_kind k,
    int64_t id, struct ds_entry *e)
{
	int64_t		 at;
	int		 r;

	for (; c->rc == SQLITE_ROW; c->rc = sqlite3_step(c->p)) {
		if ((at = sqlite3_column_int64(c->p, 0)) > id)
			return 0;
		if (at < id)
			continue;
		if ((r = child_add(c->p, k, e)) != 0)
			return r;
	}
	return c->rc == SQLITE_DONE ? 0 : sq_err(s, c->rc, "load entries");
}

static int
sq_entries_load(struct ds *ds, ds_entry_fn *fn, void *arg)
{
	/* In the order of enum sq_child_kind. */
	static const char *const child_sql[] = {
		"SELECT entry, type, value FROM entry_selectors"
		    " ORDER BY entry",
		"SELECT entry, value FROM entry_dns_names ORDER BY entry, pos",
		"SELECT entry, td FROM entry_federates_with"
		    " ORDER BY entry, pos",
	};
	struct sq	*s = (struct sq *)ds;
	struct sq_child	 c[3];
	struct ds_entry	*e;
	sqlite3_stmt	*p = NULL;
	int64_t		 id;
	int		 tx = !s->tx, rc = SQLITE_DONE, r, i;

	/* One snapshot for the four scans (in a caller's transaction,
	 * that one). */
	if (tx && (r = exec(s, "BEGIN")) != 0)
		return r;
	r = st(s, "SELECT " ENTRY_COLS " FROM entries ORDER BY id", &p);
	for (i = 0; i < 3; i++) {
		c[i].p = NULL;
		c[i].rc = SQLITE_DONE;
		if (r != 0 || (r = st(s, child_sql[i], &c[i].p)) != 0)
			continue;
		if ((c[i].rc = sqlite3_step(c[i].p)) != SQLITE_ROW &&
		    c[i].rc != SQLITE_DONE)
			r = sq_err(s, c[i].rc, "load entries");
	}
	while (r == 0 && (rc = sqlite3_step(p)) == SQLITE_ROW) {
		id = sqlite3_column_int64(p, 0);
		if ((r = ds_entry_decode(&cols, p, 1, &e)) != 0)
			break;
		for (i = 0; i < 3 && r == 0; i++)
			r = child_rows(s, &c[i], (enum sq_child_kind)i, id, e);
		if (r != 0) {
			ds_entry_free(e);
			break;
		}
		r = fn(arg, e);
	}
	if (r == 0 && rc != SQLITE_DONE)
		r = sq_err(s, rc, "load entries");
	for (i = 0; i < 3; i++)
		if (c[i].p != NULL)
			sqlite3_reset(c[i].p);
	if (p != NULL)
		sqlite3_reset(p);
	/* Nothing written: the commit only ends the read. */
	return tx ? finish(s, r) : r;
}

static int
sq_entries_prune(struct ds *ds, int64_t now, size_t *n)
{
	struct sq	*s = (struct sq *)ds;
	sqlite3_stmt	*p;
	char		**ids = NULL, **nv;
	size_t		 k = 0, i;
	int		 rc = SQLITE_DONE, r;

	*n = 0;
	if ((r = begin(s)) != 0)
		return r;
	if ((r = st(s, "SELECT entry_id FROM entries WHERE expires_at > 0"
	    " AND expires_at < ?", &p)) != 0)
		return finish(s, r);
	sqlite3_bind_int64(p, 1, now);
	while (r == 0 && (rc = sqlite3_step(p)) == SQLITE_ROW) {
		if ((nv = reallocarray(ids, k + 1, sizeof(*ids))) == NULL ||
		    (nv[k] = col_text(p, 0)) == NULL)
			r = WICK_ERR_ALLOC;
		if (nv != NULL)
			ids = nv;
		if (r == 0)
			k++;
	}
	sqlite3_reset(p);
	if (r == 0 && rc != SQLITE_DONE)
		r = sq_err(s, rc, "find expired entries");
	/* One delete and one change row each, as a delete by ID does. */
	for (i = 0; i < k && r == 0; i++)
		r = sq_delete_one(ds, ids[i], now);
	if ((r = finish(s, r)) == 0)
		*n = k;
	for (i = 0; i < k; i++)
		free(ids[i]);
	free(ids);
	return r;
}

/* ---- change log -------------------------------------------------------- */

static int
sq_revision(struct ds *ds, int64_t *rev)
{
	struct sq	*s = (struct sq *)ds;
	sqlite3_stmt	*p;
	int		 r;

	if ((r = st(s, "SELECT coalesce(max(revision), 0) FROM changes",
	    &p)) != 0)
		return r;
	return step_int(s, p, rev, "revision");
}

static int
sq_changes_since(struct ds *ds, int64_t since, size_t limit,
    ds_change_fn *fn, void *arg)
{
	struct sq	*s = (struct sq *)ds;
	sqlite3_stmt	*p;
	char		*obj;
	int		 rc = SQLITE_DONE, r;

	if ((r = st(s, "SELECT revision, kind, op, object FROM changes"
	    " WHERE revision > ? ORDER BY revision LIMIT ?", &p)) != 0)
		return r;
	sqlite3_bind_int64(p, 1, since);
	sqlite3_bind_int64(p, 2, limit == 0 ? INT64_MAX : (int64_t)limit);
	while (r == 0 && (rc = sqlite3_step(p)) == SQLITE_ROW) {
		if ((obj = col_text(p, 3)) == NULL) {
			r = WICK_ERR_ALLOC;
			break;
		}
		r = fn(arg, sqlite3_column_int64(p, 0),
		    (enum ds_change_kind)sqlite3_column_int(p, 1),
		    (enum ds_change_op)sqlite3_column_int(p, 2), obj);
		free(obj);
	}
	sqlite3_reset(p);
	if (r != 0)
		return r;
	return rc == SQLITE_DONE ? 0 : sq_err(s, rc, "changes");
}

static int
sq_changes_prune(struct ds *ds, int64_t before, size_t *n)
{
	struct sq	*s = (struct sq *)ds;
	sqlite3_stmt	*p;
	int		 r;

	/*
	 * The floor is the change before the first one recorded at or after
	 * `before`, found walking from the oldest: what the walk reads is
	 * what goes, not every change kept (there is no index on at).  With
	 * times in revision order (a clock never set back) that is the
	 * newest change before `before`; else fewer go, never more.
	 */
	if ((r = st(s, "DELETE FROM changes WHERE revision <"
	    " (SELECT revision FROM changes WHERE revision <"
	    " coalesce((SELECT revision FROM changes WHERE at >= ?"
	    " ORDER BY revision LIMIT 1),"
	    " (SELECT max(revision) FROM changes) + 1)"
	    " ORDER BY revision DESC LIMIT 1)", &p)) != 0)
		return r;
	sqlite3_bind_int64(p, 1, before);
	r = step_done(s, p, "prune changes");
	*n = r == 0 ? (size_t)sqlite3_changes(s->db) : 0;
	return r;
}

static int
sq_changes_floor(struct ds *ds, int64_t *rev)
{
	struct sq	*s = (struct sq *)ds;
	sqlite3_stmt	*p;
	int		 r;

	if ((r = st(s, "SELECT coalesce(min(revision), 0) FROM changes",
	    &p)) != 0)
		return r;
	return step_int(s, p, rev, "changes floor");
}

/* ---- nodes ------------------------------------------------------------- */

static int
sq_node_create(struct ds *ds, const struct ds_node *n, int64_t now)
{
	struct sq	*s = (struct sq *)ds;
	sqlite3_stmt	*p;
	int		 r;

	if ((r = begin(s)) != 0)
		return r;
	if ((r = st(s, "INSERT INTO nodes (spiffe_id, attestation_type,"
	    " serial, expires_at, new_serial, new_expires_at, can_reattest,"
	    " created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?8, ?8)",
	    &p)) != 0)
		return finish(s, r);
	bind_text(p, 1, n->spiffe_id);
	bind_text(p, 2, n->attestation_type);
	bind_text(p, 3, n->serial);
	sqlite3_bind_int64(p, 4, n->expires_at);
	bind_text(p, 5, n->new_serial);
	sqlite3_bind_int64(p, 6, n->new_expires_at);
	sqlite3_bind_int(p, 7, n->can_reattest != 0);
	sqlite3_bind_int64(p, 8, now);
	if ((r = step_done(s, p, "insert node")) == 0 &&
	    (r = write_selectors(s, SQL_INS_NSEL,
	    sqlite3_last_insert_rowid(s->db), &n->selectors)) == 0)
		r = log_change(s, DS_CHANGE_NODE, DS_OP_CREATE, n->spiffe_id,
		    now, NULL);
	return finish(s, r);
}


static int
sq_node_get(struct ds *ds, const char *id, struct ds_node **out)
{
	struct sq	*s = (struct sq *)ds;
	sqlite3_stmt	*p;
	int		 rc, r;

	if ((r = st(s, "SELECT " NODE_COLS " FROM nodes WHERE spiffe_id = ?",
	    &p)) != 0)
		return r;
	bind_text(p, 1, id);
	if ((rc = sqlite3_step(p)) != SQLITE_ROW) {
		sqlite3_reset(p);
		return rc == SQLITE_DONE ? WICK_ERR_NOT_FOUND :
		    sq_err(s, rc, "get node");
	}
	r = load_node(s, p, out);
	sqlite3_reset(p);
	return r;
}

/* Run a prepared UPDATE/DELETE of one node and log it, in a transaction;
 * sel (if not NULL) replaces the node's selectors. */
static int
node_write(struct sq *s, sqlite3_stmt *p, const char *id,
    const struct selector_set *sel, enum ds_change_op op, int64_t now)
{
	sqlite3_stmt	*q;
	int64_t		 row = 0;
	int		 r;

	if ((r = begin(s)) != 0)
		return r;
	if ((r = st(s, "SELECT id FROM nodes WHERE spiffe_id = ?", &q)) != 0)
		return finish(s, r);
	bind_text(q, 1, id);
	if ((r = step_int(s, q, &row, "find node")) != 0 ||
	    (r = step_done(s, p, "write node")) != 0)
		return finish(s, r);
	if (sel != NULL) {
		if ((r = st(s, "DELETE FROM node_selectors WHERE node = ?",
		    &q)) != 0)
			return finish(s, r);
		sqlite3_bind_int64(q, 1, row);
		if ((r = step_done(s, q, "clear node selectors")) != 0 ||
		    (r = write_selectors(s, SQL_INS_NSEL, row, sel)) != 0)
			return finish(s, r);
	}
	return finish(s, log_change(s, DS_CHANGE_NODE, op, id, now, NULL));
}

static int
sq_node_set_serials(struct ds *ds, const char *id, const char *serial,
    int64_t exp, const char *new_serial, int64_t new_exp, int64_t now)
{
	struct sq	*s = (struct sq *)ds;
	sqlite3_stmt	*p;
	int		 r;

	if ((r = st(s, "UPDATE nodes SET serial = ?, expires_at = ?,"
	    " new_serial = ?, new_expires_at = ?, updated_at = ?"
	    " WHERE spiffe_id = ?", &p)) != 0)
		return r;
	bind_text(p, 1, serial);
	sqlite3_bind_int64(p, 2, exp);
	bind_text(p, 3, new_serial);
	sqlite3_bind_int64(p, 4, new_exp);
	sqlite3_bind_int64(p, 5, now);
	bind_text(p, 6, id);
	return node_write(s, p, id, NULL, DS_OP_UPDATE, now);
}

static int
sq_node_set_selectors(struct ds *ds, const char *id,
    const struct selector_set *sel, int64_t now)
{
	struct sq	*s = (struct sq *)ds;
	sqlite3_stmt	*p;
	int		 r;

	if ((r = st(s, "UPDATE nodes SET updated_at = ? WHERE spiffe_id = ?",
	    &p)) != 0)
		return r;
	sqlite3_bind_int64(p, 1, now);
	bind_text(p, 2, id);
	return node_write(s, p, id, sel, DS_OP_UPDATE, now);
}

static int
sq_node_ban(struct ds *ds, const char *id, int64_t now)
{
	struct sq	*s = (struct sq *)ds;
	sqlite3_stmt	*p;
	int		 r;

	if ((r = st(s, "UPDATE nodes SET serial = '', new_serial = '',"
	    " updated_at = ? WHERE spiffe_id = ?", &p)) != 0)
		return r;
	sqlite3_bind_int64(p, 1, now);
	bind_text(p, 2, id);
	return node_write(s, p, id, NULL, DS_OP_UPDATE, now);
}

static int
sq_node_delete(struct ds *ds, const char *id, int64_t now)
{
	struct sq	*s = (struct sq *)ds;
	sqlite3_stmt	*p;
	int		 r;

	if ((r = st(s, "DELETE FROM nodes WHERE spiffe_id = ?", &p)) != 0)
		return r;
	bind_text(p, 1, id);
	return node_write(s, p, id, NULL, DS_OP_DELETE, now);
}

/* ---- join tokens ------------------------------------------------------- */

static int
sq_join_token_create(struct ds *ds, const char *hash, int64_t exp)
{
	struct sq	*s = (struct sq *)ds;
	sqlite3_stmt	*p;
	int		 r;

	if ((r = st(s, "INSERT INTO join_tokens (token_hash, expires_at)"
	    " VALUES (?, ?)", &p)) != 0)
		return r;
	bind_text(p, 1, hash);
	sqlite3_bind_int64(p, 2, exp);
	return step_done(s, p, "insert join token");
}

/*
 * Fetch and delete under the write lock (BEGIN IMMEDIATE), so of two
 * concurrent callers exactly one sees the row.
 */
static int
sq_join_token_consume(struct ds *ds, const char *hash, int64_t now)
{
	struct sq	*s = (struct sq *)ds;
	sqlite3_stmt	*p;
	const char	*t;
	int64_t		 exp = 0;
	int		 rc, r, same;

	if ((r = begin(s)) != 0)
		return r;
	if ((r = st(s, "SELECT token_hash, expires_at FROM join_tokens"
	    " WHERE token_hash = ?", &p)) != 0)
		return finish(s, r);
	bind_text(p, 1, hash);
	if ((rc = sqlite3_step(p)) != SQLITE_ROW) {
		sqlite3_reset(p);
		return finish(s, rc == SQLITE_DONE ? WICK_ERR_NOT_FOUND :
		    sq_err(s, rc, "find join token"));
	}
	t = (const char *)sqlite3_column_text(p, 0);
	same = t != NULL && strlen(t) == 64 && CRYPTO_memcmp(t, hash, 64) == 0;
	exp = sqlite3_column_int64(p, 1);
	sqlite3_reset(p);
	if (!same)
		return finish(s, WICK_ERR_NOT_FOUND);
	if ((r = st(s, "DELETE FROM join_tokens WHERE token_hash = ?",
	    &p)) != 0)
		return finish(s, r);
	bind_text(p, 1, hash);
	if ((r = finish(s, step_done(s, p, "use join token"))) != 0)
		return r;
	return exp <= now ? WICK_ERR_EXPIRED : 0;
}

static int
sq_join_tokens_prune(struct ds *ds, int64_t now, size_t *n)
{
	struct sq	*s = (struct sq *)ds;
	sqlite3_stmt	*p;
	int		 r;

	*n = 0;
	if ((r = st(s, "DELETE FROM join_tokens WHERE expires_at <= ?",
	    &p)) != 0)
		return r;
	sqlite3_bind_int64(p, 1, now);
	r = step_done(s, p, "prune join tokens");
	*n = r == 0 ? (size_t)sqlite3_changes(s->db) : 0;
	return r;
}

/* ---- bundles and the CA journal ---------------------------------------- */

static int
sq_bundle_set(struct ds *ds, const char *td, const uint8_t *data, size_t n,
    int64_t now)
{
	struct sq	*s = (struct sq *)ds;
	sqlite3_stmt	*p;
	int64_t		 one;
	int		 r, had;

	if ((r = begin(s)) != 0)
		return r;
	if ((r = st(s, "SELECT 1 FROM bundles WHERE td_id = ?", &p)) != 0)
		return finish(s, r);
	bind_text(p, 1, td);
	if ((r = step_int(s, p, &one, "find bundle")) != 0 &&
	    r != WICK_ERR_NOT_FOUND)
		return finish(s, r);
	had = r == 0;
	if ((r = st(s, "INSERT INTO bundles (td_id, data, updated_at) VALUES"
	    " (?, ?, ?) ON CONFLICT (td_id) DO UPDATE SET data = excluded.data,"
	    " updated_at = excluded.updated_at", &p)) != 0)
		return finish(s, r);
	bind_text(p, 1, td);
	sqlite3_bind_blob(p, 2, n > 0 ? (const void *)data : "", (int)n,
	    SQLITE_STATIC);
	sqlite3_bind_int64(p, 3, now);
	if ((r = step_done(s, p, "store bundle")) == 0)
		r = log_change(s, DS_CHANGE_BUNDLE, had ? DS_OP_UPDATE :
		    DS_OP_CREATE, td, now, NULL);
	return finish(s, r);
}

/* The one blob the statement returns, or WICK_ERR_NOT_FOUND. */
static int
step_blob(struct sq *s, sqlite3_stmt *p, uint8_t **data, size_t *n,
    const char *what)
{
	int rc = sqlite3_step(p), r = 0;

	if (rc == SQLITE_ROW)
		r = col_blob(p, 0, data, n);
	sqlite3_reset(p);
	if (rc == SQLITE_ROW)
		return r;
	return rc == SQLITE_DONE ? WICK_ERR_NOT_FOUND : sq_err(s, rc, what);
}

static int
sq_bundle_get(struct ds *ds, const char *td, uint8_t **data, size_t *n)
{
	struct sq	*s = (struct sq *)ds;
	sqlite3_stmt	*p;
	int		 r;

	if ((r = st(s, "SELECT data FROM bundles WHERE td_id = ?", &p)) != 0)
		return r;
	bind_text(p, 1, td);
	return step_blob(s, p, data, n, "get bundle");
}

static int
sq_bundle_delete(struct ds *ds, const char *td, int64_t now)
{
	struct sq	*s = (struct sq *)ds;
	sqlite3_stmt	*p;
	int		 r;

	if ((r = begin(s)) != 0)
		return r;
	if ((r = st(s, "DELETE FROM bundles WHERE td_id = ?", &p)) != 0)
		return finish(s, r);
	bind_text(p, 1, td);
	if ((r = step_done(s, p, "delete bundle")) == 0 &&
	    sqlite3_changes(s->db) == 0)
		r = WICK_ERR_NOT_FOUND;
	if (r == 0)
		r = log_change(s, DS_CHANGE_BUNDLE, DS_OP_DELETE, td, now,
		    NULL);
	return finish(s, r);
}

static int
sq_bundles_foreach(struct ds *ds, ds_bundle_fn *fn, void *arg)
{
	struct sq	*s = (struct sq *)ds;
	sqlite3_stmt	*p = NULL;
	uint8_t		*data;
	char		*td;
	size_t		 n;
	int		 rc, r = 0;

	/* Our own statement, rows copied out: fn may use the datastore. */
	if ((r = prepare(s, "SELECT td_id, data FROM bundles ORDER BY td_id",
	    0, &p)) != 0)
		return r;
	while (r == 0 && (rc = sqlite3_step(p)) == SQLITE_ROW) {
		data = NULL;
		if ((td = col_text(p, 0)) == NULL)
			r = WICK_ERR_ALLOC;
		else if ((r = col_blob(p, 1, &data, &n)) == 0)
			r = fn(arg, td, data, n);
		free(td);
		free(data);
	}
	if (r == 0 && rc != SQLITE_DONE)
		r = sq_err(s, rc, "list bundles");
	sqlite3_finalize(p);
	return r;
}

/* The journal and the removal of the unowned one, together. */
static int
sq_ca_journal_set(struct ds *ds, const char *server_id, const uint8_t *data,
    size_t n, int64_t now)
{
	struct sq	*s = (struct sq *)ds;
	sqlite3_stmt	*p;
	int		 r;

	if ((r = begin(s)) != 0)
		return r;
	if ((r = st(s, "INSERT INTO ca_journals (server_id, data, updated_at)"
	    " VALUES (?, ?, ?) ON CONFLICT (server_id) DO UPDATE SET"
	    " data = excluded.data, updated_at = excluded.updated_at",
	    &p)) != 0)
		return finish(s, r);
	sqlite3_bind_text(p, 1, server_id, -1, SQLITE_STATIC);
	sqlite3_bind_blob(p, 2, n > 0 ? (const void *)data : "", (int)n,
	    SQLITE_STATIC);
	sqlite3_bind_int64(p, 3, now);
	if ((r = step_done(s, p, "store CA journal")) != 0)
		return finish(s, r);
	if ((r = st(s, "DELETE FROM ca_journals WHERE server_id = ''",
	    &p)) == 0)
		r = step_done(s, p, "store CA journal");
	return finish(s, r);
}

static int
sq_ca_journal_get(struct ds *ds, const char *server_id, uint8_t **data,
    size_t *n)
{
	struct sq	*s = (struct sq *)ds;
	sqlite3_stmt	*p;
	int		 r;

	/* Its own journal, else the unowned one ("" sorts first). */
	if ((r = st(s, "SELECT data FROM ca_journals WHERE server_id IN"
	    " (?, '') ORDER BY server_id DESC LIMIT 1", &p)) != 0)
		return r;
	sqlite3_bind_text(p, 1, server_id, -1, SQLITE_STATIC);
	return step_blob(s, p, data, n, "get CA journal");
}

/* ---- audit ------------------------------------------------------------- */

#define AUDIT_COLS \
	"id, seq, at, kind, actor, subject, ok, detail, prev_hash, hash"

/*
 * A stored hash into out; "-" (which no hash equals) for anything but 64
 * characters, so that a value cut to fit would not pass for the real one.
 */
static void
col_hash(sqlite3_stmt *p, int i, char out[DS_AUDIT_HASH_HEX])
{
	const unsigned char *t = sqlite3_column_text(p, i);

	if (t != NULL && strlen((const char *)t) == DS_AUDIT_HASH_HEX - 1)
		memcpy(out, t, DS_AUDIT_HASH_HEX);
	else
		snprintf(out, DS_AUDIT_HASH_HEX, "-");
}

/* The event in the row of a statement selecting AUDIT_COLS. */
static int
audit_row(sqlite3_stmt *p, struct ds_audit *a)
{
	static const int	 text[] = { 3, 4, 5, 7 };
	size_t			 i;

	memset(a, 0, sizeof(*a));
	a->id = sqlite3_column_int64(p, 0);
	a->seq = sqlite3_column_int64(p, 1);
	a->at = sqlite3_column_int64(p, 2);
	a->kind = col_text(p, 3);
	a->actor = col_text(p, 4);
	a->subject = col_text(p, 5);
	a->ok = sqlite3_column_int(p, 6);
	a->detail_json = col_text(p, 7);
	/* Whatever is stored is shown; verify judges it. */
	col_hash(p, 8, a->prev_hash);
	col_hash(p, 9, a->hash);
	if (a->kind == NULL || a->actor == NULL || a->subject == NULL ||
	    a->detail_json == NULL) {
		ds_audit_free_members(a);
		return WICK_ERR_ALLOC;
	}
	/*
	 * Bytes hidden after a NUL, an outcome other than 0 or 1: changes
	 * the values read would not show, so the hash cannot match.
	 */
	for (i = 0; i < sizeof(text) / sizeof(text[0]); i++)
		if (sqlite3_column_bytes(p, text[i]) > 0 &&
		    memchr(sqlite3_column_blob(p, text[i]), '\0',
		    (size_t)sqlite3_column_bytes(p, text[i])) != NULL)
			snprintf(a->hash, sizeof(a->hash), "-");
	if (sqlite3_column_type(p, 6) != SQLITE_INTEGER ||
	    (a->ok != 0 && a->ok != 1))
		snprintf(a->hash, sizeof(a->hash), "-");
	return 0;
}

/* The seq and hash of the first row sql selects; WICK_ERR_NOT_FOUND when
 * none. */
static int
audit_seq_hash(struct sq *s, const char *sql, const char *what,
    int64_t *seq, char hash[DS_AUDIT_HASH_HEX])
{
	sqlite3_stmt		*p;
	const unsigned char	*t;
	int			 rc;

	if ((rc = st(s, sql, &p)) != 0)
		return rc;
	if ((rc = sqlite3_step(p)) == SQLITE_ROW) {
		*seq = sqlite3_column_int64(p, 0);
		t = sqlite3_column_text(p, 1);
		snprintf(hash, DS_AUDIT_HASH_HEX, "%s", t != NULL ?
		    (const char *)t : "");
	}
	sqlite3_reset(p);
	if (rc == SQLITE_ROW)
		return 0;
	return rc == SQLITE_DONE ? WICK_ERR_NOT_FOUND : sq_err(s, rc, what);
}

/* The anchor of the last prune; WICK_ERR_NOT_FOUND when none. */
static int
audit_anchor(struct ds *ds, int64_t *seq, char hash[DS_AUDIT_HASH_HEX])
{
	return audit_seq_hash((struct sq *)ds, "SELECT seq, hash FROM"
	    " audit_anchor WHERE id = 1", "audit anchor", seq, hash);
}

/* The newest chained event's seq and hash; WICK_ERR_NOT_FOUND when none. */
static int
audit_last(struct ds *ds, int64_t *seq, char hash[DS_AUDIT_HASH_HEX])
{
	return audit_seq_hash((struct sq *)ds, "SELECT seq, hash FROM audit"
	    " WHERE seq IS NOT NULL ORDER BY seq DESC LIMIT 1", "audit head",
	    seq, hash);
}

/* Insert a chained event: the caller holds the write lock. */
static int
audit_put(struct ds *ds, const struct ds_audit *a)
{
	struct sq	*s = (struct sq *)ds;
	sqlite3_stmt	*p;
	int		 r;

	if ((r = st(s, "INSERT INTO audit (seq, at, kind, actor, subject, ok,"
	    " detail, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
	    &p)) != 0)
		return r;
	sqlite3_bind_int64(p, 1, a->seq);
	sqlite3_bind_int64(p, 2, a->at);
	bind_text(p, 3, a->kind);
	bind_text(p, 4, a->actor);
	bind_text(p, 5, a->subject);
	sqlite3_bind_int(p, 6, a->ok);
	bind_text(p, 7, a->detail_json);
	bind_text(p, 8, a->prev_hash);
	bind_text(p, 9, a->hash);
	return step_done(s, p, "audit");
}




/* Run fn over the rows of p (AUDIT_COLS); fn's non-zero is returned. */
static int
audit_rows(struct sq *s, sqlite3_stmt *p, ds_audit_fn *fn, void *arg)
{
	struct ds_audit	 a;
	int		 rc = SQLITE_DONE, r = 0;

	while (r == 0 && (rc = sqlite3_step(p)) == SQLITE_ROW) {
		if ((r = audit_row(p, &a)) != 0)
			break;
		r = fn(arg, &a);
		ds_audit_free_members(&a);
	}
	sqlite3_reset(p);
	if (r != 0)
		return r;
	return rc == SQLITE_DONE ? 0 : sq_err(s, rc, "audit");
}

static int
sq_audit_since(struct ds *ds, int64_t after, size_t limit, ds_audit_fn *fn,
    void *arg)
{
	struct sq	*s = (struct sq *)ds;
	sqlite3_stmt	*p;
	int		 r;

	if ((r = st(s, "SELECT " AUDIT_COLS " FROM audit"
	    " WHERE id > ? ORDER BY id LIMIT ?", &p)) != 0)
		return r;
	sqlite3_bind_int64(p, 1, after);
	sqlite3_bind_int64(p, 2, limit == 0 ? INT64_MAX : (int64_t)limit);
	return audit_rows(s, p, fn, arg);
}

static int
sq_audit_list(struct ds *ds, const struct ds_audit_filter *f, size_t limit,
    ds_audit_fn *fn, void *arg)
{
	struct sq	*s = (struct sq *)ds;
	sqlite3_stmt	*p;
	int		 r;

	if ((r = st(s, "SELECT " AUDIT_COLS " FROM audit"
	    " WHERE seq > ? AND at >= ?"
	    " AND (?3 = '' OR actor = ?3 OR subject = ?3"
	    " OR instr(detail, '\"' || ?3 || '\"') > 0)"
	    " ORDER BY seq LIMIT ?4", &p)) != 0)
		return r;
	sqlite3_bind_int64(p, 1, f->after_seq);
	sqlite3_bind_int64(p, 2, f->since > 0 ? f->since : INT64_MIN);
	bind_text(p, 3, f->spiffe_id);
	sqlite3_bind_int64(p, 4, (int64_t)limit);
	return audit_rows(s, p, fn, arg);
}

/*
 * A prune deletes the events up to its anchor in the transaction that
 * sets it, so an event still there at or below the anchor means the
 * anchor was edited to hide it from the walk.
 */
static int
audit_anchor_check(struct ds *ds, int64_t aseq, struct ds_audit_verify *v)
{
	struct sq	*s = (struct sq *)ds;
	sqlite3_stmt	*p;
	int64_t		 seq = 0;
	int		 rc, r;

	if ((r = st(s, "SELECT seq FROM audit WHERE seq <= ?"
	    " ORDER BY seq DESC LIMIT 1", &p)) != 0)
		return r;
	sqlite3_bind_int64(p, 1, aseq);
	if ((rc = sqlite3_step(p)) == SQLITE_ROW)
		seq = sqlite3_column_int64(p, 0);
	sqlite3_reset(p);
	if (rc == SQLITE_DONE)
		return 0;
	if (rc != SQLITE_ROW)
		return sq_err(s, rc, "audit anchor");
	return ds_audit_anchor_edited(v, seq, aseq);
}

static int
audit_chain_rows(struct ds *ds, int64_t after, size_t max, ds_audit_fn *fn,
    void *arg)
{
	struct sq	*s = (struct sq *)ds;
	sqlite3_stmt	*p;
	int		 r;

	if ((r = st(s, "SELECT " AUDIT_COLS " FROM audit"
	    " WHERE seq > ? ORDER BY seq LIMIT ?", &p)) != 0)
		return r;
	sqlite3_bind_int64(p, 1, after);
	sqlite3_bind_int64(p, 2, (int64_t)max);
	return audit_rows(s, p, fn, arg);
}

static int
audit_cut(struct ds *ds, int64_t seq, const char *hash, int64_t at)
{
	struct sq	*s = (struct sq *)ds;
	sqlite3_stmt	*p;
	int		 r;

	if ((r = st(s, "DELETE FROM audit WHERE seq <= ?", &p)) != 0)
		return r;
	sqlite3_bind_int64(p, 1, seq);
	if ((r = step_done(s, p, "audit prune")) != 0)
		return r;
	if ((r = st(s, "INSERT OR REPLACE INTO audit_anchor (id, seq, hash, at)"
	    " VALUES (1, ?, ?, ?)", &p)) != 0)
		return r;
	sqlite3_bind_int64(p, 1, seq);
	bind_text(p, 2, hash);
	sqlite3_bind_int64(p, 3, at);
	return step_done(s, p, "audit anchor");
}

static const struct ds_audit_ops audit_ops = {
	audit_last, audit_anchor, audit_anchor_check, audit_chain_rows,
	audit_cut, audit_put
};

static int
sq_audit_append(struct ds *ds, int64_t at, const char *kind,
    const char *actor, const char *subject, int ok, const char *detail)
{
	struct sq	*s = (struct sq *)ds;
	int		 r;

	if ((r = begin(s)) != 0)
		return r;
	return finish(s, ds_audit_chain(ds, &audit_ops, at, kind, actor,
	    subject, ok, detail));
}

/* One slice of a chain walk, in one read transaction. */
static int
sq_audit_verify_step(struct ds *ds, struct ds_audit_verify *v,
    size_t max_rows)
{
	struct sq	*s = (struct sq *)ds;
	int		 r;

	/* Its own read transaction: never inside a caller's. */
	if (s->tx)
		return WICK_ERR_STATE;
	if ((r = exec(s, "BEGIN")) != 0)
		return r;
	r = ds_audit_verify_run(ds, &audit_ops, v, max_rows);
	(void)sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL);
	return r;
}

static int
sq_audit_prune(struct ds *ds, int64_t before, size_t max_rows, int64_t now,
    size_t *n)
{
	struct sq	*s = (struct sq *)ds;
	size_t		 k;
	int		 r;

	if ((r = begin(s)) != 0)
		return r;
	r = ds_audit_prune_run(ds, &audit_ops, before, max_rows, now, &k);
	if ((r = finish(s, r)) == 0)
		*n = k;
	return r;
}

/*
 * Chain the events recorded before schema 3, oldest first (the migration
 * to 3 holds the write lock).
 */
static int
chain_existing(struct sq *s)
{
	struct ds_audit	 a;
	sqlite3_stmt	*sel = NULL, *upd = NULL;
	int64_t		 seq = 0;
	char		 prev[DS_AUDIT_HASH_HEX];
	int		 rc, r = 0;

	snprintf(prev, sizeof(prev), "%s", DS_AUDIT_GENESIS);
	if ((r = prepare(s, "SELECT id, kind, actor, subject, ok, detail, at"
	    " FROM audit ORDER BY id", 0, &sel)) != 0 ||
	    (r = prepare(s, "UPDATE audit SET seq = ?, prev_hash = ?,"
	    " hash = ? WHERE id = ?", 0, &upd)) != 0)
		goto out;
	while (r == 0 && (rc = sqlite3_step(sel)) == SQLITE_ROW) {
		memset(&a, 0, sizeof(a));
		a.seq = ++seq;
		a.kind = (char *)sqlite3_column_text(sel, 1);
		a.actor = (char *)sqlite3_column_text(sel, 2);
		a.subject = (char *)sqlite3_column_text(sel, 3);
		a.ok = sqlite3_column_int(sel, 4) != 0;
		a.detail_json = (char *)sqlite3_column_text(sel, 5);
		a.at = sqlite3_column_int64(sel, 6);
		memcpy(a.prev_hash, prev, sizeof(prev));
		if ((r = ds_audit_hash(&a, a.hash)) != 0)
			break;
		sqlite3_reset(upd);
		sqlite3_bind_int64(upd, 1, a.seq);
		bind_text(upd, 2, a.prev_hash);
		bind_text(upd, 3, a.hash);
		sqlite3_bind_int64(upd, 4, sqlite3_column_int64(sel, 0));
		if ((r = step_done(s, upd, "chain audit")) != 0)
			break;
		memcpy(prev, a.hash, sizeof(prev));
	}
	if (r == 0 && rc != SQLITE_DONE)
		r = sq_err(s, rc, "chain audit");
	if (r == 0 && seq > 0)
		log_info("audit: chained %lld events recorded before the "
		    "hash chain", (long long)seq);
out:
	sqlite3_finalize(sel);
	sqlite3_finalize(upd);
	return r;
}

/* ---- backup ------------------------------------------------------------- */

struct sq_backup {
	struct ds_backup	 base;
	sqlite3			*src;	/* snapshot pinned */
	char			*dest;
};

static void
sq_backup_free(struct ds_backup *b)
{
	struct sq_backup *sb = (struct sq_backup *)b;

	if (sb->src != NULL) {
		(void)sqlite3_exec(sb->src, "COMMIT", NULL, NULL, NULL);
		sqlite3_close(sb->src);
	}
	free(sb->dest);
	free(sb);
}

static const struct ds_ops sqlite_ops;

static int
sq_backup_begin(struct ds *ds, const char *dest, struct ds_backup **out,
    const char **why)
{
	struct sq		*s = (struct sq *)ds;
	struct sq_backup	*b;
	struct stat		 sb;

	if (strcmp(s->conn, ":memory:") == 0 ||
	    strstr(s->conn, "mode=memory") != NULL) {
		*why = "an in-memory datastore cannot be backed up";
		return WICK_ERR_UNSUPPORTED;
	}
	if (lstat(dest, &sb) == 0 || errno != ENOENT) {
		*why = "the backup file already exists";
		return WICK_ERR_EXISTS;
	}
	if ((b = calloc(1, sizeof(*b))) == NULL ||
	    (b->dest = strdup(dest)) == NULL) {
		free(b);
		return WICK_ERR_ALLOC;
	}
	b->base.ops = &sqlite_ops;
	/*
	 * The snapshot is the state committed now: the read transaction
	 * begun here, on the store's thread, is the one the copy reads, and
	 * in WAL mode it blocks no writer.
	 */
	if (sqlite3_open_v2(s->conn, &b->src, SQLITE_OPEN_READONLY |
	    SQLITE_OPEN_URI | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK ||
	    sqlite3_busy_timeout(b->src, SQ_BUSY_MS) != SQLITE_OK ||
	    sqlite3_exec(b->src, "BEGIN; SELECT count(*) FROM"
	    " schema_migrations", NULL, NULL, NULL) != SQLITE_OK) {
		log_error("sqlite: backup: %s", b->src != NULL ?
		    sqlite3_errmsg(b->src) : "out of memory");
		*why = "cannot open the datastore for the backup";
		sq_backup_free(&b->base);
		return WICK_ERR_IO;
	}
	*out = &b->base;
	return 0;
}

static int
sq_backup_run(struct ds_backup *bk, const char **why)
{
	struct sq_backup	*b = (struct sq_backup *)bk;
	sqlite3			*dst = NULL;
	sqlite3_backup		*op = NULL;
	sqlite3_stmt		*p = NULL;
	const unsigned char	*t;
	int			 fd, rc, r = WICK_ERR_IO;

	if ((fd = open(b->dest, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW |
	    O_CLOEXEC, 0600)) < 0) {
		*why = errno == EEXIST ? "the backup file already exists" :
		    "cannot create the backup file";
		return errno == EEXIST ? WICK_ERR_EXISTS : WICK_ERR_IO;
	}
	close(fd);
	fd = -1;
	if (sqlite3_open_v2(b->dest, &dst, SQLITE_OPEN_READWRITE |
	    SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
		*why = "cannot open the backup file";
		goto out;
	}
	if ((op = sqlite3_backup_init(dst, "main", b->src, "main")) == NULL) {
		*why = "cannot start the online backup";
		goto out;
	}
	/* Steps of 1024 pages; the read transaction keeps the snapshot. */
	while ((rc = sqlite3_backup_step(op, 1024)) == SQLITE_OK ||
	    rc == SQLITE_BUSY || rc == SQLITE_LOCKED)
		if (rc != SQLITE_OK)
			sqlite3_sleep(10);
	if (sqlite3_backup_finish(op) != SQLITE_OK || rc != SQLITE_DONE) {
		op = NULL;
		log_error("sqlite: backup: %s", sqlite3_errmsg(dst));
		*why = "the online backup failed";
		goto out;
	}
	op = NULL;
	/* One self-contained file: no -wal beside it to forget. */
	if (sqlite3_exec(dst, "PRAGMA journal_mode = DELETE", NULL, NULL,
	    NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(dst, "PRAGMA integrity_check", -1, &p,
	    NULL) != SQLITE_OK || sqlite3_step(p) != SQLITE_ROW ||
	    (t = sqlite3_column_text(p, 0)) == NULL ||
	    strcmp((const char *)t, "ok") != 0) {
		*why = "the backup failed its integrity check";
		r = WICK_ERR_STATE;
		goto out;
	}
	r = 0;
out:
	sqlite3_finalize(p);
	if (op != NULL)
		(void)sqlite3_backup_finish(op);
	if (dst != NULL && sqlite3_close(dst) != SQLITE_OK && r == 0) {
		*why = "cannot close the backup file";
		r = WICK_ERR_IO;
	}
	if (r == 0 && ((fd = open(b->dest, O_RDONLY | O_CLOEXEC)) < 0 ||
	    fsync(fd) != 0)) {
		*why = "cannot sync the backup file";
		r = WICK_ERR_IO;
	}
	if (fd >= 0)
		close(fd);
	if (r != 0)
		(void)unlink(b->dest);
	return r;
}

/* ---- open, migrate, check, close --------------------------------------- */

/* The first column of the first row of sql, copied into buf ("" if none). */
static int
pragma_text(struct sq *s, const char *sql, char *buf, size_t len)
{
	sqlite3_stmt	*p;
	const char	*t;
	int		 rc;

	if ((rc = sqlite3_prepare_v2(s->db, sql, -1, &p, NULL)) != SQLITE_OK)
		return sq_err(s, rc, sql);
	rc = sqlite3_step(p);
	t = rc == SQLITE_ROW ? (const char *)sqlite3_column_text(p, 0) : NULL;
	snprintf(buf, len, "%s", t != NULL ? t : "");
	sqlite3_finalize(p);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : sq_err(s, rc, sql);
}

static int
sq_check(struct ds *ds, const char **why)
{
	struct sq	*s = (struct sq *)ds;
	char		 res[64];
	int		 r;

	*why = NULL;
	if ((r = pragma_text(s, "PRAGMA integrity_check", res,
	    sizeof(res))) != 0)
		return r;
	if (strcmp(res, "ok") != 0) {
		*why = "integrity_check found damage";
		return WICK_ERR_STATE;
	}
	/* Any row at all names an orphan. */
	if ((r = pragma_text(s, "PRAGMA foreign_key_check", res,
	    sizeof(res))) != 0)
		return r;
	if (*res != '\0') {
		*why = "foreign_key_check found orphaned rows";
		return WICK_ERR_STATE;
	}
	return 0;
}

static void
sq_close(struct ds *ds)
{
	struct sq	*s = (struct sq *)ds;
	int		 i;

	for (i = 0; i < s->nstmts; i++)
		sqlite3_finalize(s->stmts[i].st);
	sqlite3_close(s->db);
	free(s->conn);
	free(s);
}

/*
 * Apply the missing steps, each in its own transaction.  The version is
 * read under the write lock, so two processes opening a fresh file at
 * once do not both run a step.
 */
static int
migrate(struct sq *s, const char **why)
{
	sqlite3_stmt	*p;
	int64_t		 v;
	int		 r;

	for (;;) {
		if ((r = begin(s)) != 0) {
			*why = "cannot lock the database for migration";
			return r;
		}
		if ((r = exec(s, "CREATE TABLE IF NOT EXISTS schema_migrations"
		    " (version INTEGER PRIMARY KEY)")) != 0 ||
		    (r = st(s, "SELECT coalesce(max(version), 0)"
		    " FROM schema_migrations", &p)) != 0 ||
		    (r = step_int(s, p, &v, "schema version")) != 0) {
			*why = "cannot read the schema version";
			return finish(s, r);
		}
		if (v > NMIGRATIONS) {
			*why = "the database was written by a newer wick "
			    "(schema version too new)";
			return finish(s, WICK_ERR_UNSUPPORTED);
		}
		if (v == NMIGRATIONS)
			return finish(s, 0);
		if ((r = st(s, "INSERT INTO schema_migrations (version)"
		    " VALUES (?)", &p)) != 0) {
			*why = "cannot record the schema version";
			return finish(s, r);
		}
		sqlite3_bind_int64(p, 1, v + 1);
		if ((r = exec(s, migrations[v])) != 0 ||
		    (v + 1 == 3 && (r = chain_existing(s)) != 0) ||
		    (r = step_done(s, p, "record schema version")) != 0 ||
		    (r = finish(s, 0)) != 0) {
			*why = "a schema migration failed";
			return finish(s, r);
		}
		log_info("datastore migrated to schema version %lld",
		    (long long)v + 1);
	}
}

static const struct ds_ops sqlite_ops = {
	"sqlite3",
	sq_close,
	&batch_ops,
	sq_entry_get,
	sq_walk,
	sq_entries_prune,
	sq_revision,
	sq_changes_since,
	sq_changes_prune,
	sq_changes_floor,
	sq_node_create,
	sq_node_get,
	sq_node_set_serials,
	sq_node_set_selectors,
	sq_node_ban,
	sq_node_delete,
	sq_join_token_create,
	sq_join_token_consume,
	sq_join_tokens_prune,
	sq_bundle_set,
	sq_bundle_get,
	sq_bundle_delete,
	sq_bundles_foreach,
	sq_ca_journal_set,
	sq_ca_journal_get,
	sq_tx_begin,
	sq_tx_end,
	sq_audit_append,
	sq_audit_since,
	sq_audit_list,
	sq_audit_verify_step,
	sq_audit_prune,
	sq_backup_begin,
	sq_backup_run,
	sq_backup_free,
	sq_check,
	sq_entries_load,
};

/*
 * The database file is created 0600 before SQLite opens it, and an
 * existing one (and its -wal/-shm) made 0600.  SQLite gives new -wal and
 * -shm files the mode of the database file.  "file:" URIs and
 * ":memory:" are left to the caller.
 */
static int
private_files(const char *path, const char **why)
{
	static const char *const sfx[] = { "", "-wal", "-shm" };
	char	name[4096];
	size_t	i;
	int	fd;

	if (strncmp(path, "file:", 5) == 0 || strcmp(path, ":memory:") == 0)
		return 0;
	if ((fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW,
	    0600)) < 0) {
		*why = "cannot create the database file";
		return WICK_ERR_IO;
	}
	close(fd);
	for (i = 0; i < sizeof(sfx) / sizeof(sfx[0]); i++) {
		if ((size_t)snprintf(name, sizeof(name), "%s%s", path,
		    sfx[i]) >= sizeof(name)) {
			*why = "database path too long";
			return WICK_ERR_LIMIT;
		}
		if (chmod(name, 0600) != 0 && errno != ENOENT) {
			*why = "cannot make the database file private";
			return WICK_ERR_PERM;
		}
	}
	return 0;
}

int
ds_sqlite_open(const char *conn, struct ds **out, const char **why)
{
	struct sq	*s;
	char		 mode[16];
	mode_t		 old;
	int		 rc, r;

	if ((r = private_files(conn, why)) != 0)
		return r;
	s = xcalloc(1, sizeof(*s));
	s->base.ops = &sqlite_ops;
	s->conn = xstrdup(conn);
	/* Whatever SQLite creates from here on is private too. */
	old = umask(077);
	rc = sqlite3_open_v2(conn, &s->db, SQLITE_OPEN_READWRITE |
	    SQLITE_OPEN_CREATE | SQLITE_OPEN_URI | SQLITE_OPEN_NOMUTEX, NULL);
	if (rc != SQLITE_OK) {
		umask(old);
		*why = "cannot open the database";
		sqlite3_close(s->db);
		free(s);
		return WICK_ERR_IO;
	}
	sqlite3_busy_timeout(s->db, SQ_BUSY_MS);
	if ((r = pragma_text(s, "PRAGMA journal_mode = WAL", mode,
	    sizeof(mode))) != 0 ||
	    (r = exec(s, "PRAGMA synchronous = FULL")) != 0 ||
	    (r = exec(s, "PRAGMA foreign_keys = ON")) != 0)
		*why = "cannot set up the database (not a SQLite file?)";
	else if (strcmp(mode, "wal") != 0 && strcmp(conn, ":memory:") != 0) {
		*why = "the database cannot use WAL journal mode";
		r = WICK_ERR_UNSUPPORTED;
	} else
		r = migrate(s, why);
	umask(old);
	if (r != 0) {
		sq_close(&s->base);
		return r;
	}
	*out = &s->base;
	return 0;
}

int
ds_sqlite_open_readonly(const char *path, struct ds **out, const char **why)
{
	static const char	 hexd[] = "0123456789ABCDEF";
	struct sq		*s;
	struct stat		 sb;
	sqlite3_stmt		*p;
	char			 wal[4096], *uri;
	const char		*c;
	size_t			 n = 0;
	int64_t			 v;
	int			 r;

	if (strncmp(path, "file:", 5) == 0 || strcmp(path, ":memory:") == 0) {
		*why = "only a database named by its path can be read offline";
		return WICK_ERR_UNSUPPORTED;
	}
	if ((size_t)snprintf(wal, sizeof(wal), "%s-wal", path) >=
	    sizeof(wal)) {
		*why = "database path too long";
		return WICK_ERR_LIMIT;
	}
	/* Immutable means no lock: only a database nobody writes. */
	if (stat(wal, &sb) == 0 && sb.st_size > 0) {
		*why = "the database is in use, or its server did not stop "
		    "cleanly (a -wal file is beside it): ask the running "
		    "server instead";
		return WICK_ERR_STATE;
	}
	if (access(path, R_OK) != 0) {
		*why = "cannot read the database file";
		return errno == ENOENT ? WICK_ERR_NOT_FOUND : WICK_ERR_IO;
	}
	/* "file:" + the path percent-encoded + "?immutable=1". */
	uri = xcalloc(1, 5 + strlen(path) * 3 + 16);
	n = (size_t)sprintf(uri, "file:");
	for (c = path; *c != '\0'; c++) {
		if (*c == '%' || *c == '?' || *c == '#') {
			uri[n++] = '%';
			uri[n++] = hexd[(unsigned char)*c >> 4];
			uri[n++] = hexd[(unsigned char)*c & 15];
		} else
			uri[n++] = *c;
	}
	strcpy(uri + n, "?immutable=1");
	s = xcalloc(1, sizeof(*s));
	s->base.ops = &sqlite_ops;
	s->conn = uri;
	if (sqlite3_open_v2(uri, &s->db, SQLITE_OPEN_READONLY |
	    SQLITE_OPEN_URI | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
		*why = "cannot open the database";
		sq_close(&s->base);
		return WICK_ERR_IO;
	}
	if ((r = st(s, "SELECT coalesce(max(version), 0)"
	    " FROM schema_migrations", &p)) != 0 ||
	    (r = step_int(s, p, &v, "schema version")) != 0) {
		*why = "cannot read the schema version (not a wick database?)";
		sq_close(&s->base);
		return r;
	}
	if (v != NMIGRATIONS) {
		*why = v < NMIGRATIONS ? "the database has an older schema: "
		    "start the server on it once to migrate it" :
		    "the database was written by a newer wick";
		sq_close(&s->base);
		return WICK_ERR_UNSUPPORTED;
	}
	*out = &s->base;
	return 0;
}
