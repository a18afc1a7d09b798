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

static const char *const migrations[] = {
	/* 1: the first schema. */
	"CREATE TABLE entries ("
	" id INTEGER PRIMARY KEY,"
	" entry_id TEXT NOT NULL UNIQUE,"
	" spiffe_id TEXT NOT NULL,"
	" parent_id TEXT NOT NULL,"
	" selector_hash TEXT NOT NULL,"
	" x509_svid_ttl INTEGER NOT NULL,"
	" jwt_svid_ttl INTEGER NOT NULL,"
	" admin INTEGER NOT NULL,"
	" downstream INTEGER NOT NULL,"
	" store_svid INTEGER NOT NULL,"
	" expires_at INTEGER NOT NULL,"
	" hint TEXT NOT NULL,"
	" revision_number INTEGER NOT NULL,"
	" created_at INTEGER NOT NULL,"
	" updated_at INTEGER NOT NULL,"
	" change_rev INTEGER NOT NULL);"
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
	" id INTEGER PRIMARY KEY,"
	" spiffe_id TEXT NOT NULL UNIQUE,"
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
	"CREATE TABLE changes ("
	" revision INTEGER PRIMARY KEY AUTOINCREMENT,"
	" kind INTEGER NOT NULL, op INTEGER NOT NULL, object TEXT NOT NULL,"
	" at INTEGER NOT NULL);",
};
#define NMIGRATIONS	((int)(sizeof(migrations) / sizeof(migrations[0])))

struct sq {
	struct ds	 base;
	sqlite3		*db;
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

static int
sq_err(struct sq *s, int rc, const char *what)
{
	if (rc == SQLITE_CONSTRAINT)
		return WICK_ERR_EXISTS;
	log_error("sqlite: %s: %s", what, sqlite3_errmsg(s->db));
	return rc == SQLITE_BUSY || rc == SQLITE_LOCKED ? WICK_ERR_UNAVAILABLE :
	    rc == SQLITE_FULL || rc == SQLITE_IOERR ? WICK_ERR_IO :
	    WICK_ERR_INTERNAL;
}

/* A prepared statement for sql (a string literal), reset and unbound. */
static sqlite3_stmt *
st(struct sq *s, const char *sql)
{
	sqlite3_stmt	*p;
	int		 i;

	for (i = 0; i < s->nstmts; i++)
		if (s->stmts[i].sql == sql) {
			sqlite3_reset(s->stmts[i].st);
			sqlite3_clear_bindings(s->stmts[i].st);
			return s->stmts[i].st;
		}
	if (s->nstmts == SQ_MAX_STMTS)
		fatal("sqlite: more than %d statements", SQ_MAX_STMTS);
	if (sqlite3_prepare_v3(s->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &p,
	    NULL) != SQLITE_OK)
		fatal("sqlite: cannot prepare \"%s\": %s", sql,
		    sqlite3_errmsg(s->db));
	s->stmts[s->nstmts].sql = sql;
	s->stmts[s->nstmts++].st = p;
	return p;
}

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

static int
begin(struct sq *s)
{
	return exec(s, "BEGIN IMMEDIATE");
}

static int
commit(struct sq *s)
{
	int r;

	if ((r = exec(s, "COMMIT")) != 0)
		(void)sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
	return r;
}

static void
rollback(struct sq *s)
{
	(void)sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
}

/* Run a statement that returns no rows. */
static int
step_done(struct sq *s, sqlite3_stmt *p, const char *what)
{
	int rc = sqlite3_step(p);

	sqlite3_reset(p);
	if (rc != SQLITE_DONE)
		return sq_err(s, rc, what);
	return 0;
}

static char *
col_text(sqlite3_stmt *p, int i)
{
	const unsigned char *t = sqlite3_column_text(p, i);

	return xstrdup(t != NULL ? (const char *)t : "");
}

/* Append a change-log row; *rev gets its revision. */
static int
log_change(struct sq *s, enum ds_change_kind kind, enum ds_change_op op,
    const char *object, int64_t now, int64_t *rev)
{
	sqlite3_stmt	*p = st(s, "INSERT INTO changes (kind, op, object, at)"
	    " VALUES (?, ?, ?, ?)");
	int		 r;

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

/* ---- entries -------------------------------------------------------------- */

static void
uuid4(char out[37])
{
	uint8_t b[16];

	if (RAND_bytes(b, sizeof(b)) != 1)
		fatal("RAND_bytes failed");
	b[6] = (b[6] & 0x0f) | 0x40;
	b[8] = (b[8] & 0x3f) | 0x80;
	snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-"
	    "%02x%02x%02x%02x%02x%02x", b[0], b[1], b[2], b[3], b[4], b[5],
	    b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]);
}

/* Selectors, DNS names and federated domains of row id. */
static int
write_children(struct sq *s, int64_t row, const struct ds_entry *e)
{
	sqlite3_stmt	*p;
	size_t		 i;
	int		 r;

	for (i = 0; i < e->selectors.n; i++) {
		p = st(s, "INSERT INTO entry_selectors (entry, type, value)"
		    " VALUES (?, ?, ?)");
		sqlite3_bind_int64(p, 1, row);
		bind_text(p, 2, e->selectors.sel[i].type);
		bind_text(p, 3, e->selectors.sel[i].value);
		if ((r = step_done(s, p, "insert selector")) != 0)
			return r;
	}
	for (i = 0; i < e->ndns_names; i++) {
		p = st(s, "INSERT INTO entry_dns_names (entry, pos, value)"
		    " VALUES (?, ?, ?)");
		sqlite3_bind_int64(p, 1, row);
		sqlite3_bind_int64(p, 2, (int64_t)i);
		bind_text(p, 3, e->dns_names[i]);
		if ((r = step_done(s, p, "insert DNS name")) != 0)
			return r;
	}
	for (i = 0; i < e->nfederates_with; i++) {
		p = st(s, "INSERT INTO entry_federates_with (entry, pos, td)"
		    " VALUES (?, ?, ?)");
		sqlite3_bind_int64(p, 1, row);
		sqlite3_bind_int64(p, 2, (int64_t)i);
		bind_text(p, 3, e->federates_with[i]);
		if ((r = step_done(s, p, "insert federated domain")) != 0)
			return r;
	}
	return 0;
}

/* The entry ID of an entry similar to e (same IDs and selectors). */
static int
find_similar(struct sq *s, const struct ds_entry *e, const char *hash,
    char **id)
{
	sqlite3_stmt	*p = st(s, "SELECT entry_id FROM entries WHERE"
	    " spiffe_id = ? AND parent_id = ? AND selector_hash = ?");
	int		 rc;

	bind_text(p, 1, e->spiffe_id);
	bind_text(p, 2, e->parent_id);
	bind_text(p, 3, hash);
	if ((rc = sqlite3_step(p)) == SQLITE_ROW)
		*id = col_text(p, 0);
	sqlite3_reset(p);
	return rc == SQLITE_ROW ? 0 : WICK_ERR_NOT_FOUND;
}

static int
create_one(struct sq *s, struct ds_entry *e, int64_t now)
{
	sqlite3_stmt	*p;
	char		 hash[65], uuid[37], *other = NULL;
	int64_t		 row, rev;
	int		 r, rc;

	ds_selectors_hash(&e->selectors, hash);
	if (find_similar(s, e, hash, &other) == 0) {
		free(e->id);
		e->id = other;
		return WICK_ERR_EXISTS;
	}
	if (e->id == NULL || *e->id == '\0') {
		uuid4(uuid);
		free(e->id);
		e->id = xstrdup(uuid);
	}
	if ((r = log_change(s, DS_CHANGE_ENTRY, DS_OP_CREATE, e->id, now,
	    &rev)) != 0)
		return r;
	p = st(s, "INSERT INTO entries (entry_id, spiffe_id, parent_id,"
	    " selector_hash, x509_svid_ttl, jwt_svid_ttl, admin, downstream,"
	    " store_svid, expires_at, hint, revision_number, created_at,"
	    " updated_at, change_rev) VALUES"
	    " (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, ?, ?, ?)");
	bind_text(p, 1, e->id);
	bind_text(p, 2, e->spiffe_id);
	bind_text(p, 3, e->parent_id);
	bind_text(p, 4, hash);
	sqlite3_bind_int(p, 5, e->x509_svid_ttl);
	sqlite3_bind_int(p, 6, e->jwt_svid_ttl);
	sqlite3_bind_int(p, 7, e->admin != 0);
	sqlite3_bind_int(p, 8, e->downstream != 0);
	sqlite3_bind_int(p, 9, e->store_svid != 0);
	sqlite3_bind_int64(p, 10, e->expires_at);
	bind_text(p, 11, e->hint);
	sqlite3_bind_int64(p, 12, now);
	sqlite3_bind_int64(p, 13, now);
	sqlite3_bind_int64(p, 14, rev);
	rc = sqlite3_step(p);
	sqlite3_reset(p);
	if (rc == SQLITE_CONSTRAINT)
		return WICK_ERR_EXISTS;	/* the same entry ID */
	if (rc != SQLITE_DONE)
		return sq_err(s, rc, "insert entry");
	row = sqlite3_last_insert_rowid(s->db);
	if ((r = write_children(s, row, e)) != 0)
		return r;
	e->created_at = now;
	e->revision_number = 0;
	e->change_rev = rev;
	return 0;
}

static int
update_one(struct sq *s, struct ds_entry *e, int64_t now)
{
	sqlite3_stmt	*p;
	char		 hash[65], *other = NULL;
	int64_t		 row, rev, created;
	int		 r, rc;

	p = st(s, "SELECT id, created_at, revision_number FROM entries"
	    " WHERE entry_id = ?");
	bind_text(p, 1, e->id);
	if ((rc = sqlite3_step(p)) != SQLITE_ROW) {
		sqlite3_reset(p);
		return rc == SQLITE_DONE ? WICK_ERR_NOT_FOUND :
		    sq_err(s, rc, "find entry");
	}
	row = sqlite3_column_int64(p, 0);
	created = sqlite3_column_int64(p, 1);
	e->revision_number = sqlite3_column_int64(p, 2) + 1;
	sqlite3_reset(p);
	ds_selectors_hash(&e->selectors, hash);
	if (find_similar(s, e, hash, &other) == 0) {
		rc = strcmp(other, e->id) != 0;
		free(other);
		if (rc)
			return WICK_ERR_EXISTS;
	}
	if ((r = log_change(s, DS_CHANGE_ENTRY, DS_OP_UPDATE, e->id, now,
	    &rev)) != 0)
		return r;
	p = st(s, "UPDATE entries SET spiffe_id = ?, parent_id = ?,"
	    " selector_hash = ?, x509_svid_ttl = ?, jwt_svid_ttl = ?,"
	    " admin = ?, downstream = ?, store_svid = ?, expires_at = ?,"
	    " hint = ?, revision_number = ?, updated_at = ?, change_rev = ?"
	    " WHERE id = ?");
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
	sqlite3_bind_int64(p, 11, e->revision_number);
	sqlite3_bind_int64(p, 12, now);
	sqlite3_bind_int64(p, 13, rev);
	sqlite3_bind_int64(p, 14, row);
	if ((r = step_done(s, p, "update entry")) != 0)
		return r;
	p = st(s, "DELETE FROM entry_selectors WHERE entry = ?");
	sqlite3_bind_int64(p, 1, row);
	if ((r = step_done(s, p, "clear selectors")) != 0)
		return r;
	p = st(s, "DELETE FROM entry_dns_names WHERE entry = ?");
	sqlite3_bind_int64(p, 1, row);
	if ((r = step_done(s, p, "clear DNS names")) != 0)
		return r;
	p = st(s, "DELETE FROM entry_federates_with WHERE entry = ?");
	sqlite3_bind_int64(p, 1, row);
	if ((r = step_done(s, p, "clear federated domains")) != 0)
		return r;
	if ((r = write_children(s, row, e)) != 0)
		return r;
	e->created_at = created;
	e->change_rev = rev;
	return 0;
}

static int
delete_one(struct sq *s, const char *id, int64_t now)
{
	sqlite3_stmt	*p = st(s, "DELETE FROM entries WHERE entry_id = ?");
	int		 r;

	bind_text(p, 1, id);
	if ((r = step_done(s, p, "delete entry")) != 0)
		return r;
	if (sqlite3_changes(s->db) == 0)
		return WICK_ERR_NOT_FOUND;
	return log_change(s, DS_CHANGE_ENTRY, DS_OP_DELETE, id, now, NULL);
}

enum batch_op { OP_CREATE, OP_UPDATE, OP_DELETE };

/* Items with res[i] == 0 on entry are tried, each under a savepoint. */
static int
run_batch(struct sq *s, enum batch_op op, struct ds_entry **v,
    const char *const *ids, size_t n, int *res, int64_t now)
{
	size_t	i;
	int	r;

	if ((r = begin(s)) != 0)
		return r;
	for (i = 0; i < n; i++) {
		if (res[i] != 0)
			continue;
		if ((r = exec(s, "SAVEPOINT item")) != 0)
			goto fail;
		switch (op) {
		case OP_CREATE:
			res[i] = create_one(s, v[i], now);
			break;
		case OP_UPDATE:
			res[i] = update_one(s, v[i], now);
			break;
		case OP_DELETE:
			res[i] = delete_one(s, ids[i], now);
			break;
		}
		if (res[i] != 0 && (r = exec(s, "ROLLBACK TO item")) != 0)
			goto fail;
		if ((r = exec(s, "RELEASE item")) != 0)
			goto fail;
		/* An I/O failure dooms the whole batch. */
		if (res[i] == WICK_ERR_IO || res[i] == WICK_ERR_INTERNAL ||
		    res[i] == WICK_ERR_UNAVAILABLE) {
			r = res[i];
			goto fail;
		}
	}
	return commit(s);
fail:
	rollback(s);
	return r;
}

static int
sq_entries_create(struct ds *ds, struct ds_entry **v, size_t n, int *res,
    int64_t now)
{
	return run_batch((struct sq *)ds, OP_CREATE, v, NULL, n, res, now);
}

static int
sq_entries_update(struct ds *ds, struct ds_entry **v, size_t n, int *res,
    int64_t now)
{
	return run_batch((struct sq *)ds, OP_UPDATE, v, NULL, n, res, now);
}

static int
sq_entries_delete(struct ds *ds, const char *const *ids, size_t n, int *res,
    int64_t now)
{
	return run_batch((struct sq *)ds, OP_DELETE, NULL, ids, n, res, now);
}

#define ENTRY_COLS "id, entry_id, spiffe_id, parent_id, x509_svid_ttl," \
	" jwt_svid_ttl, admin, downstream, store_svid, expires_at, hint," \
	" revision_number, created_at, change_rev"

/* Build an entry from a row of ENTRY_COLS and its child rows. */
static int
load_entry(struct sq *s, sqlite3_stmt *row, struct ds_entry **out)
{
	struct ds_entry	*e = ds_entry_new();
	sqlite3_stmt	*p;
	const char	*why;
	int64_t		 id = sqlite3_column_int64(row, 0);
	int		 rc, r = 0;

	e->id = col_text(row, 1);
	e->spiffe_id = col_text(row, 2);
	e->parent_id = col_text(row, 3);
	e->x509_svid_ttl = sqlite3_column_int(row, 4);
	e->jwt_svid_ttl = sqlite3_column_int(row, 5);
	e->admin = sqlite3_column_int(row, 6);
	e->downstream = sqlite3_column_int(row, 7);
	e->store_svid = sqlite3_column_int(row, 8);
	e->expires_at = sqlite3_column_int64(row, 9);
	e->hint = col_text(row, 10);
	e->revision_number = sqlite3_column_int64(row, 11);
	e->created_at = sqlite3_column_int64(row, 12);
	e->change_rev = sqlite3_column_int64(row, 13);
	p = st(s, "SELECT type, value FROM entry_selectors WHERE entry = ?");
	sqlite3_bind_int64(p, 1, id);
	while (r == 0 && (rc = sqlite3_step(p)) == SQLITE_ROW)
		r = selector_set_add(&e->selectors, (const char *)
		    sqlite3_column_text(p, 0), (const char *)
		    sqlite3_column_text(p, 1), &why);
	sqlite3_reset(p);
	p = st(s, "SELECT value FROM entry_dns_names WHERE entry = ?"
	    " ORDER BY pos");
	sqlite3_bind_int64(p, 1, id);
	while (r == 0 && (rc = sqlite3_step(p)) == SQLITE_ROW)
		r = ds_entry_add_dns_name(e, (const char *)
		    sqlite3_column_text(p, 0));
	sqlite3_reset(p);
	p = st(s, "SELECT td FROM entry_federates_with WHERE entry = ?"
	    " ORDER BY pos");
	sqlite3_bind_int64(p, 1, id);
	while (r == 0 && (rc = sqlite3_step(p)) == SQLITE_ROW)
		r = ds_entry_add_federates_with(e, (const char *)
		    sqlite3_column_text(p, 0));
	sqlite3_reset(p);
	if (r != 0) {
		ds_entry_free(e);
		return r;
	}
	*out = e;
	return 0;
}

static int
sq_entry_get(struct ds *ds, const char *id, struct ds_entry **out)
{
	struct sq	*s = (struct sq *)ds;
	sqlite3_stmt	*p = st(s, "SELECT " ENTRY_COLS " FROM entries"
	    " WHERE entry_id = ?");
	int		 rc, r;

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

/*
 * Walk entries in ID order after `after`, narrowed in SQL by the exact
 * filters, calling fn for each that passes every filter, until fn
 * returns non-zero.
 */
typedef int entry_walk_fn(void *, struct ds_entry *);

static int
walk_entries(struct sq *s, const struct ds_entry_filter *f,
    const char *after, entry_walk_fn *fn, void *arg)
{
	static const char *const q[4] = {
		"SELECT " ENTRY_COLS " FROM entries WHERE entry_id > ?"
		    " ORDER BY entry_id LIMIT 512",
		"SELECT " ENTRY_COLS " FROM entries WHERE entry_id > ?"
		    " AND spiffe_id = ?2 ORDER BY entry_id LIMIT 512",
		"SELECT " ENTRY_COLS " FROM entries WHERE entry_id > ?"
		    " AND parent_id = ?3 ORDER BY entry_id LIMIT 512",
		"SELECT " ENTRY_COLS " FROM entries WHERE entry_id > ?"
		    " AND spiffe_id = ?2 AND parent_id = ?3"
		    " ORDER BY entry_id LIMIT 512",
	};
	struct ds_entry	 *e;
	sqlite3_stmt	 *p;
	char		 *last = xstrdup(after != NULL ? after : "");
	int		  which = 0, rc, r = 0, rows, stop = 0;

	if (f != NULL && f->spiffe_id != NULL)
		which |= 1;
	if (f != NULL && f->parent_id != NULL)
		which |= 2;
	while (!stop && r == 0) {
		p = st(s, q[which]);
		bind_text(p, 1, last);
		if (which & 1)
			bind_text(p, 2, f->spiffe_id);
		if (which & 2)
			bind_text(p, 3, f->parent_id);
		rows = 0;
		while (!stop && r == 0 && (rc = sqlite3_step(p)) == SQLITE_ROW) {
			rows++;
			free(last);
			last = col_text(p, 1);
			if ((r = load_entry(s, p, &e)) != 0)
				break;
			if (!ds_entry_matches(e, f)) {
				ds_entry_free(e);
				continue;
			}
			stop = fn(arg, e);
		}
		if (r == 0 && !stop && rc != SQLITE_DONE && rc != SQLITE_ROW)
			r = sq_err(s, rc, "list entries");
		sqlite3_reset(p);
		if (rows < 512)
			break;
	}
	free(last);
	return r;
}

struct list_arg {
	struct ds_entry_list	*l;
	size_t			 limit;
	int			 more;
};

static int
list_cb(void *arg, struct ds_entry *e)
{
	struct list_arg *la = arg;

	if (la->l->n == la->limit) {
		la->more = 1;
		ds_entry_free(e);
		return 1;
	}
	la->l->v[la->l->n++] = e;
	return 0;
}

static int
sq_entries_list(struct ds *ds, const struct ds_entry_filter *f,
    const char *token, size_t limit, struct ds_entry_list *out)
{
	struct list_arg	la;
	int		r;

	out->v = xcalloc(limit + 1, sizeof(*out->v));
	la.l = out;
	la.limit = limit;
	la.more = 0;
	if ((r = walk_entries((struct sq *)ds, f, token, list_cb, &la)) != 0) {
		ds_entry_list_free(out);
		return r;
	}
	if (la.more && out->n > 0)
		out->next_token = xstrdup(out->v[out->n - 1]->id);
	return 0;
}

static int
count_cb(void *arg, struct ds_entry *e)
{
	(*(int64_t *)arg)++;
	ds_entry_free(e);
	return 0;
}

static int
sq_entries_count(struct ds *ds, const struct ds_entry_filter *f,
    int64_t *count)
{
	struct sq	*s = (struct sq *)ds;
	sqlite3_stmt	*p;
	int		 rc;

	*count = 0;
	if (f == NULL || (f->spiffe_id == NULL && f->parent_id == NULL &&
	    f->hint == NULL && !f->downstream_only && (f->selectors == NULL ||
	    f->selectors->n == 0) && f->nfederates_with == 0)) {
		p = st(s, "SELECT count(*) FROM entries");
		if ((rc = sqlite3_step(p)) == SQLITE_ROW)
			*count = sqlite3_column_int64(p, 0);
		sqlite3_reset(p);
		return rc == SQLITE_ROW ? 0 : sq_err(s, rc, "count entries");
	}
	return walk_entries(s, f, NULL, count_cb, count);
}

static int
sq_entries_prune(struct ds *ds, int64_t now, size_t *n)
{
	struct sq	*s = (struct sq *)ds;
	sqlite3_stmt	*p;
	char		**ids = NULL;
	size_t		 k = 0, i;
	int		 rc, r;

	*n = 0;
	p = st(s, "SELECT entry_id FROM entries WHERE expires_at > 0 AND"
	    " expires_at < ? LIMIT 10000");
	sqlite3_bind_int64(p, 1, now);
	while ((rc = sqlite3_step(p)) == SQLITE_ROW) {
		ids = xreallocarray(ids, k + 1, sizeof(*ids));
		ids[k++] = col_text(p, 0);
	}
	sqlite3_reset(p);
	if (k == 0)
		return rc == SQLITE_DONE ? 0 : sq_err(s, rc, "prune entries");
	if ((r = begin(s)) == 0) {
		for (i = 0; i < k && r == 0; i++)
			if ((r = delete_one(s, ids[i], now)) ==
			    WICK_ERR_NOT_FOUND)
				r = 0;
		r = r == 0 ? commit(s) : (rollback(s), r);
	}
	for (i = 0; i < k; i++)
		free(ids[i]);
	free(ids);
	if (r == 0)
		*n = k;
	return r;
}

/* ---- change log ----------------------------------------------------------- */

static int
sq_revision(struct ds *ds, int64_t *rev)
{
	struct sq	*s = (struct sq *)ds;
	sqlite3_stmt	*p = st(s, "SELECT coalesce(max(revision), 0)"
	    " FROM changes");
	int		 rc;

	if ((rc = sqlite3_step(p)) == SQLITE_ROW)
		*rev = sqlite3_column_int64(p, 0);
	sqlite3_reset(p);
	return rc == SQLITE_ROW ? 0 : sq_err(s, rc, "revision");
}

static int
sq_changes_since(struct ds *ds, int64_t since, size_t limit,
    ds_change_fn *fn, void *arg)
{
	struct sq	*s = (struct sq *)ds;
	sqlite3_stmt	*p = st(s, "SELECT revision, kind, op, object FROM"
	    " changes WHERE revision > ? ORDER BY revision LIMIT ?");
	char		*obj;
	int		 rc, r = 0;

	sqlite3_bind_int64(p, 1, since);
	sqlite3_bind_int64(p, 2, limit == 0 ? INT64_MAX : (int64_t)limit);
	while (r == 0 && (rc = sqlite3_step(p)) == SQLITE_ROW) {
		obj = col_text(p, 3);
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

/* ---- nodes ---------------------------------------------------------------- */

static int
write_node_selectors(struct sq *s, int64_t row, const struct selector_set *sel)
{
	sqlite3_stmt	*p;
	size_t		 i;
	int		 r;

	p = st(s, "DELETE FROM node_selectors WHERE node = ?");
	sqlite3_bind_int64(p, 1, row);
	if ((r = step_done(s, p, "clear node selectors")) != 0)
		return r;
	for (i = 0; i < sel->n; i++) {
		p = st(s, "INSERT INTO node_selectors (node, type, value)"
		    " VALUES (?, ?, ?)");
		sqlite3_bind_int64(p, 1, row);
		bind_text(p, 2, sel->sel[i].type);
		bind_text(p, 3, sel->sel[i].value);
		if ((r = step_done(s, p, "insert node selector")) != 0)
			return r;
	}
	return 0;
}

static int
sq_node_create(struct ds *ds, const struct ds_node *n, int64_t now)
{
	struct sq	*s = (struct sq *)ds;
	sqlite3_stmt	*p;
	int		 rc, r;

	if ((r = begin(s)) != 0)
		return r;
	p = st(s, "INSERT INTO nodes (spiffe_id, attestation_type, serial,"
	    " expires_at, new_serial, new_expires_at, can_reattest,"
	    " created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)");
	bind_text(p, 1, n->spiffe_id);
	bind_text(p, 2, n->attestation_type);
	bind_text(p, 3, n->serial);
	sqlite3_bind_int64(p, 4, n->expires_at);
	bind_text(p, 5, n->new_serial);
	sqlite3_bind_int64(p, 6, n->new_expires_at);
	sqlite3_bind_int(p, 7, n->can_reattest != 0);
	sqlite3_bind_int64(p, 8, now);
	sqlite3_bind_int64(p, 9, now);
	rc = sqlite3_step(p);
	sqlite3_reset(p);
	if (rc != SQLITE_DONE) {
		rollback(s);
		return rc == SQLITE_CONSTRAINT ? WICK_ERR_EXISTS :
		    sq_err(s, rc, "insert node");
	}
	if ((r = write_node_selectors(s, sqlite3_last_insert_rowid(s->db),
	    &n->selectors)) != 0 || (r = log_change(s, DS_CHANGE_NODE,
	    DS_OP_CREATE, n->spiffe_id, now, NULL)) != 0) {
		rollback(s);
		return r;
	}
	return commit(s);
}

#define NODE_COLS "id, spiffe_id, attestation_type, serial, expires_at," \
	" new_serial, new_expires_at, can_reattest, created_at"

static int
load_node(struct sq *s, sqlite3_stmt *row, struct ds_node **out)
{
	struct ds_node	*n = ds_node_new();
	sqlite3_stmt	*p;
	const char	*why;
	int		 rc, r = 0;

	n->spiffe_id = col_text(row, 1);
	n->attestation_type = col_text(row, 2);
	n->serial = col_text(row, 3);
	n->expires_at = sqlite3_column_int64(row, 4);
	n->new_serial = col_text(row, 5);
	n->new_expires_at = sqlite3_column_int64(row, 6);
	n->can_reattest = sqlite3_column_int(row, 7);
	n->created_at = sqlite3_column_int64(row, 8);
	p = st(s, "SELECT type, value FROM node_selectors WHERE node = ?");
	sqlite3_bind_int64(p, 1, sqlite3_column_int64(row, 0));
	while (r == 0 && (rc = sqlite3_step(p)) == SQLITE_ROW)
		r = selector_set_add(&n->selectors, (const char *)
		    sqlite3_column_text(p, 0), (const char *)
		    sqlite3_column_text(p, 1), &why);
	sqlite3_reset(p);
	if (r != 0) {
		ds_node_free(n);
		return r;
	}
	*out = n;
	return 0;
}

static int
sq_node_get(struct ds *ds, const char *id, struct ds_node **out)
{
	struct sq	*s = (struct sq *)ds;
	sqlite3_stmt	*p = st(s, "SELECT " NODE_COLS " FROM nodes WHERE"
	    " spiffe_id = ?");
	int		 rc, r;

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

/* Run an UPDATE/DELETE on one node and log it, in a transaction. */
static int
node_write(struct sq *s, sqlite3_stmt *p, const char *id,
    enum ds_change_op op, int64_t now)
{
	int r;

	if ((r = begin(s)) != 0)
		return r;
	if ((r = step_done(s, p, "node")) != 0)
		goto fail;
	if (sqlite3_changes(s->db) == 0) {
		r = WICK_ERR_NOT_FOUND;
		goto fail;
	}
	if ((r = log_change(s, DS_CHANGE_NODE, op, id, now, NULL)) != 0)
		goto fail;
	return commit(s);
fail:
	rollback(s);
	return r;
}

static int
sq_node_set_serials(struct ds *ds, const char *id, const char *serial,
    int64_t exp, const char *new_serial, int64_t new_exp, int64_t now)
{
	struct sq	*s = (struct sq *)ds;
	sqlite3_stmt	*p = st(s, "UPDATE nodes SET serial = ?, expires_at = ?,"
	    " new_serial = ?, new_expires_at = ?, updated_at = ?"
	    " WHERE spiffe_id = ?");

	bind_text(p, 1, serial);
	sqlite3_bind_int64(p, 2, exp);
	bind_text(p, 3, new_serial);
	sqlite3_bind_int64(p, 4, new_exp);
	sqlite3_bind_int64(p, 5, now);
	bind_text(p, 6, id);
	return node_write(s, p, id, DS_OP_UPDATE, now);
}

static int
sq_node_set_selectors(struct ds *ds, const char *id,
    const struct selector_set *sel, int64_t now)
{
	struct sq	*s = (struct sq *)ds;
	sqlite3_stmt	*p;
	int64_t		 row;
	int		 rc, r;

	if ((r = begin(s)) != 0)
		return r;
	p = st(s, "SELECT id FROM nodes WHERE spiffe_id = ?");
	bind_text(p, 1, id);
	rc = sqlite3_step(p);
	row = sqlite3_column_int64(p, 0);
	sqlite3_reset(p);
	if (rc != SQLITE_ROW) {
		rollback(s);
		return rc == SQLITE_DONE ? WICK_ERR_NOT_FOUND :
		    sq_err(s, rc, "find node");
	}
	if ((r = write_node_selectors(s, row, sel)) != 0 ||
	    (r = log_change(s, DS_CHANGE_NODE, DS_OP_UPDATE, id, now,
	    NULL)) != 0) {
		rollback(s);
		return r;
	}
	return commit(s);
}

static int
sq_node_ban(struct ds *ds, const char *id, int64_t now)
{
	struct sq	*s = (struct sq *)ds;
	sqlite3_stmt	*p = st(s, "UPDATE nodes SET serial = '',"
	    " new_serial = '', updated_at = ? WHERE spiffe_id = ?");

	sqlite3_bind_int64(p, 1, now);
	bind_text(p, 2, id);
	return node_write(s, p, id, DS_OP_UPDATE, now);
}

static int
sq_node_delete(struct ds *ds, const char *id, int64_t now)
{
	struct sq	*s = (struct sq *)ds;
	sqlite3_stmt	*p = st(s, "DELETE FROM nodes WHERE spiffe_id = ?");

	bind_text(p, 1, id);
	return node_write(s, p, id, DS_OP_DELETE, now);
}

/* Nodes in SPIFFE ID order after `after`, filtered; fn as for entries. */
typedef int node_walk_fn(void *, struct ds_node *);

static int
walk_nodes(struct sq *s, const struct ds_node_filter *f, const char *after,
    node_walk_fn *fn, void *arg)
{
	struct ds_node	*n;
	sqlite3_stmt	*p;
	char		*last = xstrdup(after != NULL ? after : "");
	int		 rc = SQLITE_DONE, r = 0, rows, stop = 0;

	while (!stop && r == 0) {
		p = st(s, "SELECT " NODE_COLS " FROM nodes WHERE spiffe_id > ?"
		    " ORDER BY spiffe_id LIMIT 512");
		bind_text(p, 1, last);
		rows = 0;
		while (!stop && r == 0 && (rc = sqlite3_step(p)) == SQLITE_ROW) {
			rows++;
			free(last);
			last = col_text(p, 1);
			if ((r = load_node(s, p, &n)) != 0)
				break;
			if (!ds_node_matches(n, f)) {
				ds_node_free(n);
				continue;
			}
			stop = fn(arg, n);
		}
		if (r == 0 && !stop && rc != SQLITE_DONE && rc != SQLITE_ROW)
			r = sq_err(s, rc, "list nodes");
		sqlite3_reset(p);
		if (rows < 512)
			break;
	}
	free(last);
	return r;
}

struct nlist_arg {
	struct ds_node_list	*l;
	size_t			 limit;
	int			 more;
};

static int
nlist_cb(void *arg, struct ds_node *n)
{
	struct nlist_arg *la = arg;

	if (la->l->n == la->limit) {
		la->more = 1;
		ds_node_free(n);
		return 1;
	}
	la->l->v[la->l->n++] = n;
	return 0;
}

static int
sq_nodes_list(struct ds *ds, const struct ds_node_filter *f,
    const char *token, size_t limit, struct ds_node_list *out)
{
	struct nlist_arg	la;
	int			r;

	out->v = xcalloc(limit + 1, sizeof(*out->v));
	la.l = out;
	la.limit = limit;
	la.more = 0;
	if ((r = walk_nodes((struct sq *)ds, f, token, nlist_cb, &la)) != 0) {
		ds_node_list_free(out);
		return r;
	}
	if (la.more && out->n > 0)
		out->next_token = xstrdup(out->v[out->n - 1]->spiffe_id);
	return 0;
}

static int
ncount_cb(void *arg, struct ds_node *n)
{
	(*(int64_t *)arg)++;
	ds_node_free(n);
	return 0;
}

static int
sq_nodes_count(struct ds *ds, const struct ds_node_filter *f, int64_t *count)
{
	*count = 0;
	return walk_nodes((struct sq *)ds, f, NULL, ncount_cb, count);
}

/* ---- join tokens ---------------------------------------------------------- */

static int
sq_join_token_create(struct ds *ds, const char *hash, int64_t exp)
{
	struct sq	*s = (struct sq *)ds;
	sqlite3_stmt	*p = st(s, "INSERT INTO join_tokens (token_hash,"
	    " expires_at) VALUES (?, ?)");
	int		 rc;

	bind_text(p, 1, hash);
	sqlite3_bind_int64(p, 2, exp);
	rc = sqlite3_step(p);
	sqlite3_reset(p);
	if (rc == SQLITE_CONSTRAINT)
		return WICK_ERR_EXISTS;
	return rc == SQLITE_DONE ? 0 : sq_err(s, rc, "insert join token");
}

static int
sq_join_token_consume(struct ds *ds, const char *hash, int64_t now)
{
	struct sq	*s = (struct sq *)ds;
	sqlite3_stmt	*p;
	char		 stored[65];
	int64_t		 exp;
	int		 rc, r;

	if ((r = begin(s)) != 0)
		return r;
	p = st(s, "SELECT token_hash, expires_at FROM join_tokens"
	    " WHERE token_hash = ?");
	bind_text(p, 1, hash);
	if ((rc = sqlite3_step(p)) != SQLITE_ROW) {
		sqlite3_reset(p);
		rollback(s);
		return rc == SQLITE_DONE ? WICK_ERR_NOT_FOUND :
		    sq_err(s, rc, "find join token");
	}
	snprintf(stored, sizeof(stored), "%s", (const char *)
	    sqlite3_column_text(p, 0));
	exp = sqlite3_column_int64(p, 1);
	sqlite3_reset(p);
	if (strlen(stored) != 64 || CRYPTO_memcmp(stored, hash, 64) != 0) {
		rollback(s);
		return WICK_ERR_NOT_FOUND;
	}
	p = st(s, "DELETE FROM join_tokens WHERE token_hash = ?");
	bind_text(p, 1, hash);
	if ((r = step_done(s, p, "use join token")) != 0) {
		rollback(s);
		return r;
	}
	if ((r = commit(s)) != 0)
		return r;
	return exp <= now ? WICK_ERR_EXPIRED : 0;
}

static int
sq_join_tokens_prune(struct ds *ds, int64_t now, size_t *n)
{
	struct sq	*s = (struct sq *)ds;
	sqlite3_stmt	*p = st(s, "DELETE FROM join_tokens WHERE"
	    " expires_at <= ?");
	int		 r;

	sqlite3_bind_int64(p, 1, now);
	r = step_done(s, p, "prune join tokens");
	*n = r == 0 ? (size_t)sqlite3_changes(s->db) : 0;
	return r;
}

/* ---- bundles and the CA journal ------------------------------------------- */

static int
sq_bundle_set(struct ds *ds, const char *td, const uint8_t *data, size_t n,
    int64_t now)
{
	struct sq	*s = (struct sq *)ds;
	sqlite3_stmt	*p;
	int		 r;

	if ((r = begin(s)) != 0)
		return r;
	p = st(s, "INSERT INTO bundles (td_id, data, updated_at) VALUES"
	    " (?, ?, ?) ON CONFLICT (td_id) DO UPDATE SET data = excluded.data,"
	    " updated_at = excluded.updated_at");
	bind_text(p, 1, td);
	sqlite3_bind_blob(p, 2, n > 0 ? (const void *)data : "", (int)n,
	    SQLITE_STATIC);
	sqlite3_bind_int64(p, 3, now);
	if ((r = step_done(s, p, "store bundle")) != 0 ||
	    (r = log_change(s, DS_CHANGE_BUNDLE, DS_OP_UPDATE, td, now,
	    NULL)) != 0) {
		rollback(s);
		return r;
	}
	return commit(s);
}

static int
blob_out(sqlite3_stmt *p, int col, uint8_t **data, size_t *n)
{
	const void	*b = sqlite3_column_blob(p, col);
	int		 len = sqlite3_column_bytes(p, col);

	*data = xmalloc((size_t)len + 1);
	if (len > 0)
		memcpy(*data, b, (size_t)len);
	*n = (size_t)len;
	return 0;
}

static int
sq_bundle_get(struct ds *ds, const char *td, uint8_t **data, size_t *n)
{
	struct sq	*s = (struct sq *)ds;
	sqlite3_stmt	*p = st(s, "SELECT data FROM bundles WHERE td_id = ?");
	int		 rc;

	bind_text(p, 1, td);
	if ((rc = sqlite3_step(p)) == SQLITE_ROW)
		(void)blob_out(p, 0, data, n);
	sqlite3_reset(p);
	if (rc == SQLITE_ROW)
		return 0;
	return rc == SQLITE_DONE ? WICK_ERR_NOT_FOUND : sq_err(s, rc,
	    "get bundle");
}

static int
sq_bundle_delete(struct ds *ds, const char *td, int64_t now)
{
	struct sq	*s = (struct sq *)ds;
	sqlite3_stmt	*p;
	int		 r;

	if ((r = begin(s)) != 0)
		return r;
	p = st(s, "DELETE FROM bundles WHERE td_id = ?");
	bind_text(p, 1, td);
	if ((r = step_done(s, p, "delete bundle")) != 0)
		goto fail;
	if (sqlite3_changes(s->db) == 0) {
		r = WICK_ERR_NOT_FOUND;
		goto fail;
	}
	if ((r = log_change(s, DS_CHANGE_BUNDLE, DS_OP_DELETE, td, now,
	    NULL)) != 0)
		goto fail;
	return commit(s);
fail:
	rollback(s);
	return r;
}

static int
sq_bundles_foreach(struct ds *ds, ds_bundle_fn *fn, void *arg)
{
	struct sq	*s = (struct sq *)ds;
	sqlite3_stmt	*p = st(s, "SELECT td_id, data FROM bundles"
	    " ORDER BY td_id");
	uint8_t		*data;
	char		*td;
	size_t		 n;
	int		 rc, r = 0;

	/* Copy each row out: fn may call back into the datastore. */
	while (r == 0 && (rc = sqlite3_step(p)) == SQLITE_ROW) {
		td = col_text(p, 0);
		(void)blob_out(p, 1, &data, &n);
		r = fn(arg, td, data, n);
		free(td);
		free(data);
	}
	sqlite3_reset(p);
	if (r != 0)
		return r;
	return rc == SQLITE_DONE ? 0 : sq_err(s, rc, "list bundles");
}

static int
sq_ca_journal_set(struct ds *ds, const uint8_t *data, size_t n, int64_t now)
{
	struct sq	*s = (struct sq *)ds;
	sqlite3_stmt	*p = st(s, "INSERT INTO ca_journal (id, data,"
	    " updated_at) VALUES (1, ?, ?) ON CONFLICT (id) DO UPDATE SET"
	    " data = excluded.data, updated_at = excluded.updated_at");

	sqlite3_bind_blob(p, 1, n > 0 ? (const void *)data : "", (int)n,
	    SQLITE_STATIC);
	sqlite3_bind_int64(p, 2, now);
	return step_done(s, p, "store CA journal");
}

static int
sq_ca_journal_get(struct ds *ds, uint8_t **data, size_t *n)
{
	struct sq	*s = (struct sq *)ds;
	sqlite3_stmt	*p = st(s, "SELECT data FROM ca_journal WHERE id = 1");
	int		 rc;

	if ((rc = sqlite3_step(p)) == SQLITE_ROW)
		(void)blob_out(p, 0, data, n);
	sqlite3_reset(p);
	if (rc == SQLITE_ROW)
		return 0;
	return rc == SQLITE_DONE ? WICK_ERR_NOT_FOUND : sq_err(s, rc,
	    "get CA journal");
}

/* ---- audit ---------------------------------------------------------------- */

static int
sq_audit_append(struct ds *ds, int64_t at, const char *kind,
    const char *actor, int ok, const char *detail)
{
	struct sq	*s = (struct sq *)ds;
	sqlite3_stmt	*p = st(s, "INSERT INTO audit (at, kind, actor, ok,"
	    " detail) VALUES (?, ?, ?, ?, ?)");

	sqlite3_bind_int64(p, 1, at);
	bind_text(p, 2, kind);
	bind_text(p, 3, actor);
	sqlite3_bind_int(p, 4, ok != 0);
	bind_text(p, 5, detail);
	return step_done(s, p, "audit");
}

static int
sq_audit_since(struct ds *ds, int64_t after, size_t limit, ds_audit_fn *fn,
    void *arg)
{
	struct sq	*s = (struct sq *)ds;
	sqlite3_stmt	*p = st(s, "SELECT id, at, kind, actor, ok, detail"
	    " FROM audit WHERE id > ? ORDER BY id LIMIT ?");
	struct ds_audit	 a;
	int		 rc, r = 0;

	sqlite3_bind_int64(p, 1, after);
	sqlite3_bind_int64(p, 2, limit == 0 ? INT64_MAX : (int64_t)limit);
	while (r == 0 && (rc = sqlite3_step(p)) == SQLITE_ROW) {
		a.id = sqlite3_column_int64(p, 0);
		a.at = sqlite3_column_int64(p, 1);
		a.kind = col_text(p, 2);
		a.actor = col_text(p, 3);
		a.ok = sqlite3_column_int(p, 4);
		a.detail_json = col_text(p, 5);
		r = fn(arg, &a);
		ds_audit_free_members(&a);
	}
	sqlite3_reset(p);
	if (r != 0)
		return r;
	return rc == SQLITE_DONE ? 0 : sq_err(s, rc, "audit");
}

/* ---- open, migrate, check, close ------------------------------------------ */

static int
sq_check(struct ds *ds, const char **why)
{
	struct sq	*s = (struct sq *)ds;
	sqlite3_stmt	*p;
	int		 rc, ok;

	*why = NULL;
	if (sqlite3_prepare_v2(s->db, "PRAGMA integrity_check", -1, &p,
	    NULL) != SQLITE_OK)
		return WICK_ERR_INTERNAL;
	ok = sqlite3_step(p) == SQLITE_ROW && strcmp((const char *)
	    sqlite3_column_text(p, 0), "ok") == 0;
	sqlite3_finalize(p);
	if (!ok) {
		*why = "integrity_check found damage";
		return WICK_ERR_STATE;
	}
	if (sqlite3_prepare_v2(s->db, "PRAGMA foreign_key_check", -1, &p,
	    NULL) != SQLITE_OK)
		return WICK_ERR_INTERNAL;
	rc = sqlite3_step(p);
	sqlite3_finalize(p);
	if (rc == SQLITE_ROW) {
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
	free(s);
}

static int
migrate(struct sq *s, const char **why)
{
	sqlite3_stmt	*p;
	int		 v = 0, r;

	if ((r = exec(s, "CREATE TABLE IF NOT EXISTS schema_migrations"
	    " (version INTEGER NOT NULL)")) != 0) {
		*why = "cannot create the migrations table";
		return r;
	}
	if (sqlite3_prepare_v2(s->db, "SELECT coalesce(max(version), 0) FROM"
	    " schema_migrations", -1, &p, NULL) != SQLITE_OK) {
		*why = "cannot read the schema version";
		return WICK_ERR_INTERNAL;
	}
	if (sqlite3_step(p) == SQLITE_ROW)
		v = sqlite3_column_int(p, 0);
	sqlite3_finalize(p);
	if (v > NMIGRATIONS) {
		*why = "the database was written by a newer wick (schema "
		    "version too new)";
		return WICK_ERR_UNSUPPORTED;
	}
	for (; v < NMIGRATIONS; v++) {
		if ((r = begin(s)) != 0) {
			*why = "cannot start a migration";
			return r;
		}
		if ((r = exec(s, migrations[v])) != 0 ||
		    (r = exec(s, "DELETE FROM schema_migrations")) != 0) {
			rollback(s);
			*why = "a schema migration failed";
			return r;
		}
		if (sqlite3_prepare_v2(s->db, "INSERT INTO schema_migrations"
		    " (version) VALUES (?)", -1, &p, NULL) != SQLITE_OK) {
			rollback(s);
			return WICK_ERR_INTERNAL;
		}
		sqlite3_bind_int(p, 1, v + 1);
		r = sqlite3_step(p) == SQLITE_DONE ? 0 : WICK_ERR_INTERNAL;
		sqlite3_finalize(p);
		if (r != 0 || (r = commit(s)) != 0) {
			rollback(s);
			*why = "cannot record the schema version";
			return r;
		}
		log_info("datastore migrated to schema version %d", v + 1);
	}
	return 0;
}

static const struct ds_ops sqlite_ops = {
	"sqlite3",
	sq_close,
	sq_entries_create,
	sq_entries_update,
	sq_entries_delete,
	sq_entry_get,
	sq_entries_list,
	sq_entries_count,
	sq_entries_prune,
	sq_revision,
	sq_changes_since,
	sq_node_create,
	sq_node_get,
	sq_node_set_serials,
	sq_node_set_selectors,
	sq_node_ban,
	sq_node_delete,
	sq_nodes_list,
	sq_nodes_count,
	sq_join_token_create,
	sq_join_token_consume,
	sq_join_tokens_prune,
	sq_bundle_set,
	sq_bundle_get,
	sq_bundle_delete,
	sq_bundles_foreach,
	sq_ca_journal_set,
	sq_ca_journal_get,
	sq_audit_append,
	sq_audit_since,
	sq_check,
};

/* The database file and its -wal/-shm companions are private. */
static int
private_files(const char *path, const char **why)
{
	static const char *const sfx[] = { "", "-wal", "-shm" };
	char	name[4096];
	size_t	i;
	int	fd;

	if (strncmp(path, "file:", 5) == 0 || strcmp(path, ":memory:") == 0)
		return 0;	/* URIs: the caller's business */
	if ((fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW,
	    0600)) < 0) {
		*why = "cannot create the database file";
		return WICK_ERR_IO;
	}
	close(fd);
	for (i = 0; i < 3; i++) {
		snprintf(name, sizeof(name), "%s%s", path, sfx[i]);
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
	mode_t		 old;
	int		 rc, r;

	if ((r = private_files(conn, why)) != 0)
		return r;
	s = xcalloc(1, sizeof(*s));
	s->base.ops = &sqlite_ops;
	old = umask(077);	/* -wal and -shm are created 0600 too */
	rc = sqlite3_open_v2(conn, &s->db, SQLITE_OPEN_READWRITE |
	    SQLITE_OPEN_CREATE | SQLITE_OPEN_URI | SQLITE_OPEN_NOMUTEX, NULL);
	umask(old);
	if (rc != SQLITE_OK) {
		*why = "cannot open the database";
		sqlite3_close(s->db);
		free(s);
		return WICK_ERR_IO;
	}
	sqlite3_busy_timeout(s->db, SQ_BUSY_MS);
	if ((r = exec(s, "PRAGMA journal_mode = WAL")) != 0 ||
	    (r = exec(s, "PRAGMA synchronous = FULL")) != 0 ||
	    (r = exec(s, "PRAGMA foreign_keys = ON")) != 0) {
		*why = "cannot set up the database (not a SQLite file?)";
		sq_close(&s->base);
		return r;
	}
	if ((r = migrate(s, why)) != 0) {
		sq_close(&s->base);
		return r;
	}
	*out = &s->base;
	return 0;
}
