/*
 * ds_pg.c: the PostgreSQL datastore backend (libpq), for several servers
 * sharing one database.
 *
 * One connection per struct ds, used by one thread at a time; nothing
 * here is global, so a worker thread can own a store.  Every value is a
 * parameter, never formatted into SQL; queries are prepared once per
 * session (prepared()).  A connection found broken outside a transaction
 * is reset once before the call fails.
 *
 * Concurrency between servers:
 *  - Change log: every transaction that logs a change takes the
 *    transaction-level advisory lock PG_LOCK_CHANGES first and holds it to
 *    its commit, and draws its revisions from a sequence under it.  So
 *    revisions are assigned in commit order: once a reader sees revision
 *    R, every change with a smaller revision is committed and visible, and
 *    "changes since R" never misses one committed later.
 *  - Audit chain: an append takes PG_LOCK_AUDIT before it reads the
 *    chain's head, so two writers never chain to the same event.
 *  - Join tokens: one DELETE ... RETURNING; of concurrent callers exactly
 *    one gets the row.
 *  - ds_tx_begin() takes both locks, changes first (the one order every
 *    path uses), as SQLite's writer lock does for the whole span.  Inside
 *    it every call or statement runs under a savepoint, so a failed one
 *    does not abort the caller's transaction.
 *  - A lock is awaited at most PG_LOCK_WAIT (lock_timeout), as SQLite's
 *    busy timeout; then the call fails WICK_ERR_UNAVAILABLE.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <libpq-fe.h>
#include <openssl/crypto.h>

#include "ds_int.h"
#include "log.h"
#include "xmalloc.h"

#define PG_CHUNK	512	/* rows per query while walking */
#define PG_MAX_PARAMS	16
#define PG_LOCK_WAIT	"5s"	/* lock_timeout */
/* A statement that runs longer is cancelled by the server: a stuck query
 * holds the state thread (and the calls behind it) no longer. */
#define PG_STATEMENT_WAIT "30s"	/* statement_timeout */
/* Unless the connection string says otherwise: how long a connection
 * attempt may take, and TCP keepalives that find a server gone. */
#define PG_CONNECT_TIMEOUT "5"
/* Statements prepared per session, by their text: the fixed ones and the
 * few shapes the filters make.  Past it a statement is sent unprepared. */
#define PG_MAX_PREPARED	256
#define PG_RETRY_MIN_MS	1000	/* reconnection backoff, doubling */
#define PG_RETRY_MAX_MS	30000
/* Advisory lock keys: "wick" and a number. */
#define PG_LOCK_MIGRATE	"7165064483209216001"
#define PG_LOCK_CHANGES	"7165064483209216002"
#define PG_LOCK_AUDIT	"7165064483209216003"


/*
 * Forward-only schema steps; step i takes version i to i + 1 in its own
 * transaction.  Never edit a released step: append a new one.  Keys
 * compare as bytes (COLLATE "C"), as SQLite's do, so list order and page
 * tokens are the same on every server whatever the database's locale.
 */
static const char *const pg_migrations[] = {
	/* 1: the schema of SQLite's version 3, the audit chain included. */
	"CREATE TABLE entries ("
	" id BIGSERIAL PRIMARY KEY,"
	" entry_id TEXT COLLATE \"C\" NOT NULL UNIQUE,"
	" spiffe_id TEXT COLLATE \"C\" NOT NULL,"
	" parent_id TEXT COLLATE \"C\" NOT NULL,"
	" selector_hash TEXT NOT NULL,"
	" x509_svid_ttl INTEGER NOT NULL, jwt_svid_ttl INTEGER NOT NULL,"
	" admin INTEGER NOT NULL, downstream INTEGER NOT NULL,"
	" store_svid INTEGER NOT NULL, expires_at BIGINT NOT NULL,"
	" hint TEXT COLLATE \"C\" NOT NULL, revision_number BIGINT NOT NULL,"
	" created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL,"
	" change_rev BIGINT NOT NULL);"
	"CREATE UNIQUE INDEX entries_similar ON entries"
	" (spiffe_id, parent_id, selector_hash);"
	"CREATE INDEX entries_parent ON entries (parent_id);"
	"CREATE INDEX entries_expires ON entries (expires_at);"
	"CREATE INDEX entries_hint ON entries (hint);"
	"CREATE TABLE entry_selectors ("
	" entry BIGINT NOT NULL REFERENCES entries (id) ON DELETE CASCADE,"
	" type TEXT NOT NULL, value TEXT NOT NULL,"
	" UNIQUE (entry, type, value));"
	"CREATE INDEX entry_selectors_tv ON entry_selectors (type, value);"
	"CREATE TABLE entry_dns_names ("
	" entry BIGINT NOT NULL REFERENCES entries (id) ON DELETE CASCADE,"
	" pos INTEGER NOT NULL, value TEXT NOT NULL, UNIQUE (entry, pos));"
	"CREATE TABLE entry_federates_with ("
	" entry BIGINT NOT NULL REFERENCES entries (id) ON DELETE CASCADE,"
	" pos INTEGER NOT NULL, td TEXT NOT NULL, UNIQUE (entry, pos));"
	"CREATE TABLE nodes ("
	" id BIGSERIAL PRIMARY KEY,"
	" spiffe_id TEXT COLLATE \"C\" NOT NULL UNIQUE,"
	" attestation_type TEXT NOT NULL,"
	" serial TEXT NOT NULL, expires_at BIGINT NOT NULL,"
	" new_serial TEXT NOT NULL, new_expires_at BIGINT NOT NULL,"
	" can_reattest INTEGER NOT NULL,"
	" created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL);"
	"CREATE INDEX nodes_expires ON nodes (expires_at);"
	"CREATE TABLE node_selectors ("
	" node BIGINT NOT NULL REFERENCES nodes (id) ON DELETE CASCADE,"
	" type TEXT NOT NULL, value TEXT NOT NULL,"
	" UNIQUE (node, type, value));"
	"CREATE INDEX node_selectors_tv ON node_selectors (type, value);"
	/* The SHA-256 of the token, never the token. */
	"CREATE TABLE join_tokens ("
	" token_hash TEXT PRIMARY KEY, expires_at BIGINT NOT NULL);"
	"CREATE TABLE bundles ("
	" td_id TEXT COLLATE \"C\" PRIMARY KEY, data BYTEA NOT NULL,"
	" updated_at BIGINT NOT NULL);"
	"CREATE TABLE ca_journal ("
	" id INTEGER PRIMARY KEY CHECK (id = 1), data BYTEA NOT NULL,"
	" updated_at BIGINT NOT NULL);"
	"CREATE TABLE audit ("
	" id BIGSERIAL PRIMARY KEY, seq BIGINT UNIQUE,"
	" at BIGINT NOT NULL, kind TEXT NOT NULL, actor TEXT NOT NULL,"
	" subject TEXT NOT NULL DEFAULT '', ok INTEGER NOT NULL,"
	" detail TEXT NOT NULL, prev_hash TEXT, hash TEXT);"
	"CREATE INDEX audit_at ON audit (at);"
	"CREATE TABLE audit_anchor ("
	" id INTEGER PRIMARY KEY CHECK (id = 1), seq BIGINT NOT NULL,"
	" hash TEXT NOT NULL, at BIGINT NOT NULL);"
	/* Drawn only under PG_LOCK_CHANGES: never reused, commit order. */
	"CREATE SEQUENCE changes_revision;"
	"CREATE TABLE changes ("
	" revision BIGINT PRIMARY KEY,"
	" kind INTEGER NOT NULL, op INTEGER NOT NULL, object TEXT NOT NULL,"
	" at BIGINT NOT NULL);",
	/*
	 * 2: one CA journal per server (ds.h); the single journal so far
	 * gets the server ID '' until its server next saves it.
	 */
	"CREATE TABLE ca_journals ("
	" server_id TEXT COLLATE \"C\" PRIMARY KEY, data BYTEA NOT NULL,"
	" updated_at BIGINT NOT NULL);"
	"INSERT INTO ca_journals (server_id, data, updated_at)"
	" SELECT '', data, updated_at FROM ca_journal;"
	"DROP TABLE ca_journal;",
};
#define PG_NMIGRATIONS	((int)(sizeof(pg_migrations) / \
	sizeof(pg_migrations[0])))

struct pg {
	struct ds	 base;
	PGconn		*conn;
	char		*conninfo;	/* holds the password: never logged */
	char		*where;		/* the server, for messages */
	int		 tx;		/* in a caller's ds_tx_begin() */
	int		 intx;		/* a transaction is open */
	int		 readonly;	/* ds_open_readonly() */
	int		 unset;		/* a new session not yet set up */
	int		 calls;		/* begin()s not yet finish()ed */
	uint64_t	 retry_at;	/* no reconnection before (ms) */
	uint64_t	 retry_ms;	/* the next backoff */
	/* This session's prepared statements, named s<index>. */
	struct pg_stmt {
		char		*sql;
		uint64_t	 hash;
	}		 stmts[PG_MAX_PREPARED];
	size_t		 nstmts;
};

/* The parameters of one statement. */
struct pgp {
	const char	*v[PG_MAX_PARAMS];
	int		 len[PG_MAX_PARAMS];
	int		 fmt[PG_MAX_PARAMS];
	char		 num[PG_MAX_PARAMS][24];
	int		 n;
};

static void
p_text(struct pgp *p, const char *v)
{
	if (p->n >= PG_MAX_PARAMS)
		fatal("postgres: more than %d parameters", PG_MAX_PARAMS);
	p->v[p->n] = v != NULL ? v : "";
	p->len[p->n] = 0;
	p->fmt[p->n++] = 0;
}

static void
p_int(struct pgp *p, int64_t v)
{
	if (p->n >= PG_MAX_PARAMS)
		fatal("postgres: more than %d parameters", PG_MAX_PARAMS);
	snprintf(p->num[p->n], sizeof(p->num[p->n]), "%lld", (long long)v);
	p->v[p->n] = p->num[p->n];
	p->len[p->n] = 0;
	p->fmt[p->n++] = 0;
}

static void
p_blob(struct pgp *p, const uint8_t *data, size_t n)
{
	if (p->n >= PG_MAX_PARAMS)
		fatal("postgres: more than %d parameters", PG_MAX_PARAMS);
	p->v[p->n] = n > 0 ? (const char *)data : "";
	p->len[p->n] = (int)n;
	p->fmt[p->n++] = 1;
}

/* One line of a libpq message: no trailing newline. */
static void
one_line(const char *msg, char *out, size_t len)
{
	char *nl;

	snprintf(out, len, "%s", msg != NULL && *msg != '\0' ? msg :
	    "no message");
	if ((nl = strchr(out, '\n')) != NULL)
		*nl = '\0';
}

/*
 * A failed result into our codes; a constraint is the one expected
 * failure.  Requests reach here: the line is rate-limited.
 */
static int
pg_err(struct pg *s, const PGresult *res, const char *what)
{
	static struct log_ratelimit	 rl = LOG_RATELIMIT_DEFAULT;
	const char			*state;
	char				 msg[256];

	state = res != NULL ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
	if (state != NULL && strncmp(state, "23", 2) == 0)
		return WICK_ERR_EXISTS;
	one_line(res != NULL ? PQresultErrorMessage(res) :
	    PQerrorMessage(s->conn), msg, sizeof(msg));
	log_error_rl(&rl, "postgres %s: %s: %s", s->where, what, msg);
	if (state == NULL || PQstatus(s->conn) == CONNECTION_BAD ||
	    strncmp(state, "08", 2) == 0 || strncmp(state, "57", 2) == 0 ||
	    strcmp(state, "40001") == 0 || strcmp(state, "40P01") == 0 ||
	    strcmp(state, "55P03") == 0)
		return WICK_ERR_UNAVAILABLE;
	if (strncmp(state, "22", 2) == 0)
		return WICK_ERR_INVALID;	/* e.g. not UTF-8 */
	if (strncmp(state, "53", 2) == 0 || strncmp(state, "58", 2) == 0)
		return WICK_ERR_IO;
	if (strncmp(state, "54", 2) == 0)
		return WICK_ERR_LIMIT;
	return WICK_ERR_INTERNAL;
}

/*
 * What every session needs: a writer waits for a lock at most
 * PG_LOCK_WAIT, then the call fails WICK_ERR_UNAVAILABLE (as SQLite's
 * busy timeout); a read-only store's session is read only.
 */
static int
session_setup(struct pg *s)
{
	PGresult	*res;
	int		 ok;

	res = PQexec(s->conn, s->readonly ? "SET lock_timeout = '"
	    PG_LOCK_WAIT "'; SET statement_timeout = '" PG_STATEMENT_WAIT
	    "'; SET default_transaction_read_only = on" :
	    "SET lock_timeout = '" PG_LOCK_WAIT "'; SET statement_timeout = '"
	    PG_STATEMENT_WAIT "'");
	ok = PQresultStatus(res) == PGRES_COMMAND_OK;
	PQclear(res);
	return ok ? 0 : WICK_ERR_UNAVAILABLE;
}

static uint64_t
mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* A new session has none of the old one's prepared statements. */
static void
forget_prepared(struct pg *s)
{
	size_t i;

	for (i = 0; i < s->nstmts; i++)
		free(s->stmts[i].sql);
	s->nstmts = 0;
}

/*
 * The name of sql prepared in this session, preparing it the first time
 * (statements are not transactional: one prepared in a transaction that
 * rolls back stays).  NULL with *r == 0: not to be prepared (not a
 * query, or the table is full); NULL with *r set: preparing failed.
 */
static const char *
prepared(struct pg *s, const char *sql, int nparams, char name[24], int *r)
{
	PGresult	*res;
	uint64_t	 h = 1469598103934665603ULL;
	const char	*c;
	size_t		 i;

	*r = 0;
	if (strncmp(sql, "SELECT", 6) != 0 && strncmp(sql, "INSERT", 6) != 0 &&
	    strncmp(sql, "UPDATE", 6) != 0 && strncmp(sql, "DELETE", 6) != 0)
		return NULL;
	for (c = sql; *c != '\0'; c++)
		h = (h ^ (uint8_t)*c) * 1099511628211ULL;
	for (i = 0; i < s->nstmts; i++)
		if (s->stmts[i].hash == h && strcmp(s->stmts[i].sql, sql) == 0) {
			snprintf(name, 24, "s%zu", i);
			return name;
		}
	if (s->nstmts == PG_MAX_PREPARED)
		return NULL;
	if ((s->stmts[s->nstmts].sql = strdup(sql)) == NULL)
		return NULL;
	snprintf(name, 24, "s%zu", s->nstmts);
	res = PQprepare(s->conn, name, sql, nparams, NULL);
	if (res == NULL || PQresultStatus(res) != PGRES_COMMAND_OK) {
		*r = pg_err(s, res, "prepare");
		PQclear(res);
		free(s->stmts[s->nstmts].sql);
		return NULL;
	}
	PQclear(res);
	s->stmts[s->nstmts++].hash = h;
	return name;
}

/*
 * A broken connection, outside any transaction: reset it, at most once
 * per backoff (1 s doubling to 30 s): in between, calls fail at once
 * with WICK_ERR_UNAVAILABLE instead of each waiting for a connection
 * attempt to time out.
 */
static int
reconnect(struct pg *s)
{
	static struct log_ratelimit	rl = LOG_RATELIMIT_DEFAULT;
	char				msg[256];
	uint64_t			now = mono_ms();

	if (now < s->retry_at)
		return WICK_ERR_UNAVAILABLE;
	forget_prepared(s);
	PQreset(s->conn);
	if (PQstatus(s->conn) == CONNECTION_OK) {
		log_info_rl(&rl, "postgres %s: reconnected", s->where);
		/* A new session: set up again, or not used at all. */
		s->unset = session_setup(s) != 0;
		if (!s->unset) {
			s->retry_ms = 0;
			s->retry_at = 0;
			return 0;
		}
	}
	s->retry_ms = s->retry_ms == 0 ? PG_RETRY_MIN_MS :
	    s->retry_ms * 2 > PG_RETRY_MAX_MS ? PG_RETRY_MAX_MS :
	    s->retry_ms * 2;
	s->retry_at = mono_ms() + s->retry_ms;
	one_line(PQerrorMessage(s->conn), msg, sizeof(msg));
	log_error_rl(&rl, "postgres %s: cannot reconnect (next attempt in "
	    "%llu ms): %s", s->where, (unsigned long long)s->retry_ms, msg);
	return WICK_ERR_UNAVAILABLE;
}

/*
 * Run sql with parameters p (NULL: none); *out gets the result (clear
 * it with PQclear) when out is not NULL.  binary: results in binary
 * (only for queries of text and bytea columns).
 */
static int
q_raw(struct pg *s, const char *sql, const struct pgp *p, int binary,
    PGresult **out, const char *what)
{
	PGresult	*res;
	ExecStatusType	 st;
	const char	*name;
	char		 buf[24];
	int		 tries, r;

	if (out != NULL)
		*out = NULL;
	for (tries = 0;; tries++) {
		if (!s->intx && (PQstatus(s->conn) == CONNECTION_BAD ||
		    s->unset) && (r = reconnect(s)) != 0)
			return r;
		name = prepared(s, sql, p != NULL ? p->n : 0, buf, &r);
		if (name == NULL && r != 0) {
			/* Nothing was under way: the one retry is safe. */
			if (tries == 0 && !s->intx &&
			    PQstatus(s->conn) == CONNECTION_BAD)
				continue;
			return r;
		}
		res = name != NULL ? PQexecPrepared(s->conn, name,
		    p != NULL ? p->n : 0, p != NULL ? p->v : NULL,
		    p != NULL ? p->len : NULL, p != NULL ? p->fmt : NULL,
		    binary) : PQexecParams(s->conn, sql, p != NULL ? p->n : 0,
		    NULL, p != NULL ? p->v : NULL, p != NULL ? p->len : NULL,
		    p != NULL ? p->fmt : NULL, binary);
		st = res != NULL ? PQresultStatus(res) : PGRES_FATAL_ERROR;
		if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK)
			break;
		/* Nothing was under way: the one retry is safe. */
		if (tries == 0 && !s->intx &&
		    PQstatus(s->conn) == CONNECTION_BAD) {
			PQclear(res);
			continue;
		}
		r = pg_err(s, res, what);
		PQclear(res);
		return r;
	}
	if (out != NULL)
		*out = res;
	else
		PQclear(res);
	return 0;
}

/*
 * q_raw(), but a statement of its own inside a caller's transaction
 * (ds_tx_begin()) runs under a savepoint: a failed statement aborts a
 * PostgreSQL transaction, and the caller's must go on, as with SQLite.
 */
static int
q(struct pg *s, const char *sql, const struct pgp *p, int binary,
    PGresult **out, const char *what)
{
	int r, r2;

	if (!s->tx || s->calls > 0)
		return q_raw(s, sql, p, binary, out, what);
	if ((r = q_raw(s, "SAVEPOINT ds_stmt", NULL, 0, NULL, "savepoint")) !=
	    0)
		return r;
	if ((r = q_raw(s, sql, p, binary, out, what)) != 0)
		PQclear(PQexec(s->conn, "ROLLBACK TO ds_stmt"));
	if ((r2 = q_raw(s, "RELEASE ds_stmt", NULL, 0, NULL, "savepoint")) !=
	    0 && r == 0) {
		if (out != NULL) {
			PQclear(*out);
			*out = NULL;
		}
		r = r2;
	}
	return r;
}

static int
exec(struct pg *s, const char *sql)
{
	return q(s, sql, NULL, 0, NULL, sql);
}

/* Column c of row i as an integer. */
static int64_t
g_int(const PGresult *res, int i, int c)
{
	return strtoll(PQgetvalue(res, i, c), NULL, 10);
}

/* A copy of column c of row i; NULL when out of memory. */
static char *
g_text(const PGresult *res, int i, int c)
{
	return strdup(PQgetvalue(res, i, c));
}

/* Rows a DELETE or UPDATE touched. */
static int64_t
affected(const PGresult *res)
{
	const char *t = PQcmdTuples((PGresult *)res);

	return t != NULL && *t != '\0' ? strtoll(t, NULL, 10) : 0;
}

enum pg_lock {
	LOCK_NONE = 0,
	LOCK_CHANGES = 1,
	LOCK_AUDIT = 2,
};

static int
take_lock(struct pg *s, const char *key)
{
	struct pgp p = { .n = 0 };

	p_text(&p, key);
	return q(s, "SELECT pg_advisory_xact_lock($1::bigint)", &p, 0, NULL,
	    "advisory lock");
}

/*
 * Begin a call's transaction, or its savepoint inside a caller's; take
 * the lock it needs first (a caller's transaction holds both).
 */
static int
begin(struct pg *s, enum pg_lock lock)
{
	int r;

	if (s->tx) {
		if ((r = q_raw(s, "SAVEPOINT ds_call", NULL, 0, NULL,
		    "savepoint")) == 0)
			s->calls++;
		return r;
	}
	if ((r = exec(s, "BEGIN")) != 0)
		return r;
	s->intx = 1;
	if (lock == LOCK_CHANGES)
		r = take_lock(s, PG_LOCK_CHANGES);
	else if (lock == LOCK_AUDIT)
		r = take_lock(s, PG_LOCK_AUDIT);
	if (r != 0) {
		PQclear(PQexec(s->conn, "ROLLBACK"));
		s->intx = 0;
		return r;
	}
	s->calls++;
	return 0;
}

/* COMMIT, which PostgreSQL answers "ROLLBACK" when the transaction had
 * failed: that is no commit. */
static int
tx_commit(struct pg *s)
{
	PGresult	*res;
	int		 r;

	if ((r = q_raw(s, "COMMIT", NULL, 0, &res, "commit")) != 0)
		return r;
	if (strcmp(PQcmdStatus(res), "COMMIT") != 0) {
		log_error("postgres %s: commit: the transaction had failed "
		    "and was rolled back", s->where);
		r = WICK_ERR_INTERNAL;
	}
	PQclear(res);
	return r;
}

/* Commit when r is 0, else (or when that fails) roll back. */
static int
finish(struct pg *s, int r)
{
	if (s->calls > 0)
		s->calls--;
	if (s->tx) {
		if (r == 0)
			r = q_raw(s, "RELEASE ds_call", NULL, 0, NULL,
			    "savepoint");
		if (r != 0)
			PQclear(PQexec(s->conn, "ROLLBACK TO ds_call;"
			    " RELEASE ds_call"));
		return r;
	}
	if (r == 0)
		r = tx_commit(s);
	if (r != 0)
		PQclear(PQexec(s->conn, "ROLLBACK"));
	s->intx = 0;
	return r;
}

static int
pg_tx_begin(struct ds *ds)
{
	struct pg	*s = (struct pg *)ds;
	int		 r;

	if (s->tx)
		return WICK_ERR_STATE;
	if ((r = begin(s, LOCK_CHANGES)) != 0)
		return r;
	if ((r = take_lock(s, PG_LOCK_AUDIT)) != 0)
		return finish(s, r);
	s->tx = 1;
	s->calls = 0;	/* the caller's span is no call of ours */
	return 0;
}

static int
pg_tx_end(struct ds *ds, int commit)
{
	struct pg *s = (struct pg *)ds;

	if (!s->tx)
		return WICK_ERR_STATE;
	s->tx = 0;
	s->calls = 0;
	if (!commit) {
		PQclear(PQexec(s->conn, "ROLLBACK"));
		s->intx = 0;
		return 0;
	}
	return finish(s, 0);
}

/*
 * Append a change-log row; *rev (if not NULL) gets its revision.  The
 * caller's transaction holds PG_LOCK_CHANGES (begin(s, LOCK_CHANGES)).
 */
static int
log_change(struct pg *s, enum ds_change_kind kind, enum ds_change_op op,
    const char *object, int64_t now, int64_t *rev)
{
	struct pgp	 p = { .n = 0 };
	PGresult	*res;
	int		 r;

	p_int(&p, kind);
	p_int(&p, op);
	p_text(&p, object);
	p_int(&p, now);
	if ((r = q(s, "INSERT INTO changes (revision, kind, op, object, at)"
	    " VALUES (nextval('changes_revision'), $1, $2, $3, $4)"
	    " RETURNING revision", &p, 0, &res, "change log")) != 0)
		return r;
	if (rev != NULL)
		*rev = PQntuples(res) == 1 ? g_int(res, 0, 0) : 0;
	PQclear(res);
	return 0;
}

/* ---- entries ----------------------------------------------------------- */

/* Insert rows (entry, pos, value) for each string of v. */
static int
write_strings(struct pg *s, const char *sql, const char *row,
    char *const *v, size_t n)
{
	struct pgp	p;
	size_t		i;
	int		r;

	for (i = 0; i < n; i++) {
		p.n = 0;
		p_text(&p, row);
		p_int(&p, (int64_t)i);
		p_text(&p, v[i]);
		if ((r = q(s, sql, &p, 0, NULL, "insert entry list")) != 0)
			return r;
	}
	return 0;
}

static int
write_selectors(struct pg *s, const char *sql, const char *row,
    const struct selector_set *set)
{
	struct pgp	p;
	size_t		i;
	int		r;

	for (i = 0; i < set->n; i++) {
		p.n = 0;
		p_text(&p, row);
		p_text(&p, set->sel[i].type);
		p_text(&p, set->sel[i].value);
		if ((r = q(s, sql, &p, 0, NULL, "insert selector")) != 0)
			return r;
	}
	return 0;
}

static int
write_children(struct pg *s, const char *row, const struct ds_entry *e)
{
	int r;

	if ((r = write_selectors(s, "INSERT INTO entry_selectors (entry, type,"
	    " value) VALUES ($1, $2, $3)", row, &e->selectors)) != 0 ||
	    (r = write_strings(s, "INSERT INTO entry_dns_names (entry, pos,"
	    " value) VALUES ($1, $2, $3)", row, e->dns_names,
	    e->ndns_names)) != 0)
		return r;
	return write_strings(s, "INSERT INTO entry_federates_with (entry, pos,"
	    " td) VALUES ($1, $2, $3)", row, e->federates_with,
	    e->nfederates_with);
}

/* The entry ID of an entry similar to e (same IDs and selectors). */
static int
find_similar(struct ds *ds, const struct ds_entry *e, const char *hash,
    char **id)
{
	struct pg	*s = (struct pg *)ds;
	struct pgp	 p = { .n = 0 };
	PGresult	*res;
	int		 r;

	*id = NULL;
	p_text(&p, e->spiffe_id);
	p_text(&p, e->parent_id);
	p_text(&p, hash);
	if ((r = q(s, "SELECT entry_id FROM entries WHERE spiffe_id = $1"
	    " AND parent_id = $2 AND selector_hash = $3", &p, 0, &res,
	    "find similar entry")) != 0)
		return r;
	if (PQntuples(res) == 0)
		r = WICK_ERR_NOT_FOUND;
	else if ((*id = g_text(res, 0, 0)) == NULL)
		r = WICK_ERR_ALLOC;
	PQclear(res);
	return r;
}

/* The columns create and update share, as parameters $1..$8. */
static void
entry_params(struct pgp *p, const struct ds_entry *e, const char *hash)
{
	p_text(p, e->spiffe_id);
	p_text(p, e->parent_id);
	p_text(p, hash);
	p_int(p, e->x509_svid_ttl);
	p_int(p, e->jwt_svid_ttl);
	p_int(p, e->admin != 0);
	p_int(p, e->downstream != 0);
	p_int(p, e->store_svid != 0);
}

static int
pg_create_one(struct ds *ds, struct ds_entry *e, int64_t now)
{
	struct pg	*s = (struct pg *)ds;
	struct pgp	 p = { .n = 0 };
	PGresult	*res;
	char		 hash[65], row[24];
	int64_t		 rev;
	int		 r;

	if ((r = ds_entry_prepare(ds, e, 1, hash, find_similar)) != 0 ||
	    (r = log_change(s, DS_CHANGE_ENTRY, DS_OP_CREATE, e->id, now,
	    &rev)) != 0)
		return r;
	entry_params(&p, e, hash);
	p_int(&p, e->expires_at);
	p_text(&p, e->hint);
	p_text(&p, e->id);
	p_int(&p, now);
	p_int(&p, rev);
	/* A constraint here is the same entry ID: EXISTS, id unchanged. */
	r = q(s, "INSERT INTO entries (spiffe_id, parent_id, selector_hash,"
	    " x509_svid_ttl, jwt_svid_ttl, admin, downstream, store_svid,"
	    " expires_at, hint, entry_id, revision_number, created_at,"
	    " updated_at, change_rev) VALUES ($1, $2, $3, $4, $5, $6, $7, $8,"
	    " $9, $10, $11, 0, $12, $12, $13) RETURNING id", &p, 0, &res,
	    "insert entry");
	if (r != 0)
		return r;
	snprintf(row, sizeof(row), "%s", PQgetvalue(res, 0, 0));
	PQclear(res);
	if ((r = write_children(s, row, e)) != 0)
		return r;
	ds_entry_stamp(e, now, 0, rev);
	return 0;
}

static int
pg_update_one(struct ds *ds, struct ds_entry *e, int64_t now)
{
	struct pg	*s = (struct pg *)ds;
	static const char *const clear[] = {
		"DELETE FROM entry_selectors WHERE entry = $1",
		"DELETE FROM entry_dns_names WHERE entry = $1",
		"DELETE FROM entry_federates_with WHERE entry = $1",
	};
	struct pgp	 p = { .n = 0 };
	PGresult	*res;
	char		 hash[65], row[24];
	int64_t		 rev, created, revno;
	size_t		 i;
	int		 r;

	p_text(&p, e->id);
	if ((r = q(s, "SELECT id, created_at, revision_number FROM entries"
	    " WHERE entry_id = $1 FOR UPDATE", &p, 0, &res,
	    "find entry")) != 0)
		return r;
	if (PQntuples(res) != 1) {
		PQclear(res);
		return WICK_ERR_NOT_FOUND;
	}
	snprintf(row, sizeof(row), "%s", PQgetvalue(res, 0, 0));
	created = g_int(res, 0, 1);
	revno = g_int(res, 0, 2) + 1;
	PQclear(res);
	if ((r = ds_entry_prepare(ds, e, 0, hash, find_similar)) != 0 ||
	    (r = log_change(s, DS_CHANGE_ENTRY, DS_OP_UPDATE, e->id, now,
	    &rev)) != 0)
		return r;
	p.n = 0;
	entry_params(&p, e, hash);
	p_int(&p, e->expires_at);
	p_text(&p, e->hint);
	p_int(&p, revno);
	p_int(&p, now);
	p_int(&p, rev);
	p_text(&p, row);
	if ((r = q(s, "UPDATE entries SET spiffe_id = $1, parent_id = $2,"
	    " selector_hash = $3, x509_svid_ttl = $4, jwt_svid_ttl = $5,"
	    " admin = $6, downstream = $7, store_svid = $8, expires_at = $9,"
	    " hint = $10, revision_number = $11, updated_at = $12,"
	    " change_rev = $13 WHERE id = $14", &p, 0, NULL,
	    "update entry")) != 0)
		return r;
	for (i = 0; i < sizeof(clear) / sizeof(clear[0]); i++) {
		p.n = 0;
		p_text(&p, row);
		if ((r = q(s, clear[i], &p, 0, NULL, "clear entry lists")) != 0)
			return r;
	}
	if ((r = write_children(s, row, e)) == 0)
		ds_entry_stamp(e, created, revno, rev);
	return r;
}

static int
pg_delete_one(struct ds *ds, const char *id, int64_t now)
{
	struct pg	*s = (struct pg *)ds;
	struct pgp	 p = { .n = 0 };
	PGresult	*res;
	int64_t		 n;
	int		 r;

	p_text(&p, id);
	if ((r = q(s, "DELETE FROM entries WHERE entry_id = $1", &p, 0, &res,
	    "delete entry")) != 0)
		return r;
	n = affected(res);
	PQclear(res);
	if (n == 0)
		return WICK_ERR_NOT_FOUND;
	return log_change(s, DS_CHANGE_ENTRY, DS_OP_DELETE, id, now, NULL);
}

static int
batch_begin(struct ds *ds)
{
	return begin((struct pg *)ds, LOCK_CHANGES);
}

static int
batch_exec(struct ds *ds, const char *sql)
{
	return exec((struct pg *)ds, sql);
}

static int
batch_finish(struct ds *ds, int r)
{
	return finish((struct pg *)ds, r);
}

static const struct ds_batch_ops batch_ops = {
	batch_begin, batch_exec, batch_finish, pg_create_one, pg_update_one,
	pg_delete_one
};

/*
 * An entry row with its child rows as JSON arrays, so that a page of
 * entries is one query.
 */
#define ENTRY_SEL "SELECT e.entry_id, e.spiffe_id, e.parent_id," \
	" e.x509_svid_ttl, e.jwt_svid_ttl, e.admin, e.downstream," \
	" e.store_svid, e.expires_at, e.hint, e.revision_number," \
	" e.created_at, e.change_rev," \
	" coalesce((SELECT json_agg(json_build_array(x.type, x.value))" \
	" FROM entry_selectors x WHERE x.entry = e.id), '[]')," \
	" coalesce((SELECT json_agg(x.value ORDER BY x.pos)" \
	" FROM entry_dns_names x WHERE x.entry = e.id), '[]')," \
	" coalesce((SELECT json_agg(x.td ORDER BY x.pos)" \
	" FROM entry_federates_with x WHERE x.entry = e.id), '[]')" \
	" FROM entries e"

#define NODE_SEL "SELECT n.spiffe_id, n.attestation_type, n.serial," \
	" n.expires_at, n.new_serial, n.new_expires_at, n.can_reattest," \
	" n.created_at," \
	" coalesce((SELECT json_agg(json_build_array(x.type, x.value))" \
	" FROM node_selectors x WHERE x.node = n.id), '[]')" \
	" FROM nodes n"

/* Selectors from a JSON array of [type, value] pairs. */
static int
parse_selectors(const char *js, struct selector_set *set)
{
	json_t		*a, *pair;
	const char	*t, *v, *why;
	size_t		 i;
	int		 r = 0;

	if ((a = json_loads(js, 0, NULL)) == NULL || !json_is_array(a)) {
		json_decref(a);
		return WICK_ERR_INTERNAL;
	}
	json_array_foreach(a, i, pair) {
		t = json_string_value(json_array_get(pair, 0));
		v = json_string_value(json_array_get(pair, 1));
		if (t == NULL || v == NULL) {
			r = WICK_ERR_INTERNAL;
			break;
		}
		if ((r = selector_set_add(set, t, v, &why)) != 0)
			break;
	}
	json_decref(a);
	return r;
}

static int
parse_strings(const char *js, struct ds_entry *e,
    int (*add)(struct ds_entry *, const char *))
{
	json_t		*a, *x;
	const char	*v;
	size_t		 i;
	int		 r = 0;

	if ((a = json_loads(js, 0, NULL)) == NULL || !json_is_array(a)) {
		json_decref(a);
		return WICK_ERR_INTERNAL;
	}
	json_array_foreach(a, i, x) {
		if ((v = json_string_value(x)) == NULL) {
			r = WICK_ERR_INTERNAL;
			break;
		}
		if ((r = add(e, v)) != 0)
			break;
	}
	json_decref(a);
	return r;
}

/* Row i of a result, for ds_entry_decode() and ds_node_decode(). */
struct pg_row {
	const PGresult	*res;
	int		 i;
};

static char *
row_text(const void *row, int col)
{
	const struct pg_row *pr = row;

	return g_text(pr->res, pr->i, col);
}

static int64_t
row_num(const void *row, int col)
{
	const struct pg_row *pr = row;

	return g_int(pr->res, pr->i, col);
}

static const struct ds_cols cols = { row_text, row_num };

/* Row i of a result of ENTRY_SEL. */
static int
load_entry(const PGresult *res, int i, struct ds_entry **out)
{
	struct pg_row	 row = { res, i };
	struct ds_entry	*e;
	int		 r;

	if ((r = ds_entry_decode(&cols, &row, 0, out)) != 0)
		return r;
	e = *out;
	if ((r = parse_selectors(PQgetvalue(res, i, 13), &e->selectors)) != 0 ||
	    (r = parse_strings(PQgetvalue(res, i, 14), e,
	    ds_entry_add_dns_name)) != 0 ||
	    (r = parse_strings(PQgetvalue(res, i, 15), e,
	    ds_entry_add_federates_with)) != 0) {
		ds_entry_free(e);
		*out = NULL;
	}
	return r;
}

/* Row i of a result of NODE_SEL. */
static int
load_node(const PGresult *res, int i, struct ds_node **out)
{
	struct pg_row	row = { res, i };
	int		r;

	if ((r = ds_node_decode(&cols, &row, 0, out)) != 0)
		return r;
	if ((r = parse_selectors(PQgetvalue(res, i, 8),
	    &(*out)->selectors)) != 0) {
		ds_node_free(*out);
		*out = NULL;
	}
	return r;
}

static int
pg_entry_get(struct ds *ds, const char *id, struct ds_entry **out)
{
	struct pg	*s = (struct pg *)ds;
	struct pgp	 p = { .n = 0 };
	PGresult	*res;
	int		 r;

	p_text(&p, id);
	if ((r = q(s, ENTRY_SEL " WHERE e.entry_id = $1", &p, 0, &res,
	    "get entry")) != 0)
		return r;
	r = PQntuples(res) == 1 ? load_entry(res, 0, out) : WICK_ERR_NOT_FOUND;
	PQclear(res);
	return r;
}

/* ---- listing entries and nodes ----------------------------------------- */

/* A walk (see ds_int.h) by one query text, PG_CHUNK rows a query. */
struct pg_walk {
	struct pg	*s;
	struct ds_walk	*w;
	struct pgp	 p;		/* $1: the key to start after */
	char		 sql[2048];
};

/* Append a constant fragment to sql, its "$%d" (if any) numbered n. */
static void
frag(char *sql, size_t len, const char *text, int n)
{
	const char	*mark = strstr(text, "$%d");
	size_t		 used = strlen(sql);

	if (mark == NULL) {
		snprintf(sql + used, len - used, "%s", text);
		return;
	}
	snprintf(sql + used, len - used, "%.*s$%d%s", (int)(mark - text),
	    text, n, mark + 3);
}

/* One chunk: the rows after the key "after", each to ds_walk_row(). */
static int
walk_fetch(void *arg, const char *after, size_t *rows)
{
	struct pg_walk	*pw = arg;
	struct ds_entry	*e;
	struct ds_node	*n;
	PGresult	*res;
	int		 k, i, r;

	pw->p.v[0] = after;
	if ((r = q(pw->s, pw->sql, &pw->p, 0, &res, "list")) != 0)
		return r;
	k = PQntuples(res);
	for (i = 0; i < k && r == 0 && !pw->w->more; i++) {
		e = NULL;
		n = NULL;
		if (pw->w->entries)
			r = load_entry(res, i, &e);
		else
			r = load_node(res, i, &n);
		if (r == 0)
			r = ds_walk_row(pw->w, e, n);
	}
	PQclear(res);
	*rows = (size_t)k;
	return r;
}

static int
pg_walk(struct ds *ds, struct ds_walk *w, const char *after)
{
	const struct ds_entry_filter	*ef = w->entries ? w->f : NULL;
	const struct ds_node_filter	*nf = w->entries ? NULL : w->f;
	const struct selector_set	*sel = NULL;
	struct pg_walk			 pw;
	struct pgp			*p = &pw.p;
	char				*sql = pw.sql, *selj = NULL;
	size_t				 len = sizeof(pw.sql);
	int				 r;

	pw.s = (struct pg *)ds;
	pw.w = w;
	p->n = 0;
	snprintf(sql, len, "%s", w->entries ? ENTRY_SEL : NODE_SEL);
	p_text(p, "");		/* $1: the last key, set per chunk */
	frag(sql, len, w->entries ? " WHERE e.entry_id > $%d" :
	    " WHERE n.spiffe_id > $%d", 1);
	if (ef != NULL) {
		if (ef->spiffe_id != NULL) {
			p_text(p, ef->spiffe_id);
			frag(sql, len, " AND e.spiffe_id = $%d", p->n);
		}
		if (ef->parent_id != NULL) {
			p_text(p, ef->parent_id);
			frag(sql, len, " AND e.parent_id = $%d", p->n);
		}
		if (ef->hint != NULL) {
			p_text(p, ef->hint);
			frag(sql, len, " AND e.hint = $%d", p->n);
		}
		if (ef->downstream_only)
			frag(sql, len, " AND e.downstream = 1", 0);
		if (ef->selectors != NULL && ef->selectors->n > 0)
			sel = ef->selectors;
	} else if (nf != NULL) {
		if (nf->attestation_type != NULL) {
			p_text(p, nf->attestation_type);
			frag(sql, len, " AND n.attestation_type = $%d",
			    p->n);
		}
		if (nf->expires_before > 0) {
			p_int(p, nf->expires_before);
			frag(sql, len, " AND n.expires_at < $%d", p->n);
		}
		if (nf->banned == 1)
			frag(sql, len, " AND n.serial = '' AND"
			    " n.new_serial = ''", 0);
		else if (nf->banned == 2)
			frag(sql, len, " AND (n.serial != '' OR"
			    " n.new_serial != '')", 0);
		if (nf->selectors != NULL && nf->selectors->n > 0)
			sel = nf->selectors;
	}
	/* No JSON (out of memory): C does all the work. */
	if (sel != NULL && (selj = ds_selectors_json(sel)) != NULL) {
		p_text(p, selj);
		frag(sql, len, w->entries ?
		    " AND e.id IN (SELECT x.entry FROM entry_selectors x,"
		    " json_array_elements($%d::json) j"
		    " WHERE x.type = j ->> 0 AND x.value = j ->> 1)" :
		    " AND n.id IN (SELECT x.node FROM node_selectors x,"
		    " json_array_elements($%d::json) j"
		    " WHERE x.type = j ->> 0 AND x.value = j ->> 1)", p->n);
	}
	p_int(p, PG_CHUNK);
	frag(sql, len, w->entries ? " ORDER BY e.entry_id LIMIT $%d" :
	    " ORDER BY n.spiffe_id LIMIT $%d", p->n);
	r = ds_walk_run(w, after, PG_CHUNK, walk_fetch, &pw);
	free(selj);
	return r;
}

static int
pg_entries_prune(struct ds *ds, int64_t now, size_t *n)
{
	struct pg	*s = (struct pg *)ds;
	struct pgp	 p = { .n = 0 };
	PGresult	*res = NULL;
	int		 i, k = 0, r;

	*n = 0;
	if ((r = begin(s, LOCK_CHANGES)) != 0)
		return r;
	p_int(&p, now);
	p_int(&p, DS_MAX_BATCH);
	if ((r = q(s, "SELECT entry_id FROM entries WHERE expires_at > 0"
	    " AND expires_at < $1 ORDER BY entry_id LIMIT $2", &p, 0, &res,
	    "find expired entries")) != 0)
		return finish(s, r);
	/* One delete and one change row each, as a delete by ID does. */
	k = PQntuples(res);
	for (i = 0; i < k && r == 0; i++)
		r = pg_delete_one(ds, PQgetvalue(res, i, 0), now);
	PQclear(res);
	if ((r = finish(s, r)) == 0)
		*n = (size_t)k;
	return r;
}

/* ---- change log -------------------------------------------------------- */

/* Only committed revisions are read, and (PG_LOCK_CHANGES) every smaller
 * one is committed before a larger one: see the top of the file. */
static int
pg_revision(struct ds *ds, int64_t *rev)
{
	struct pg	*s = (struct pg *)ds;
	PGresult	*res;
	int		 r;

	if ((r = q(s, "SELECT coalesce(max(revision), 0) FROM changes", NULL,
	    0, &res, "revision")) != 0)
		return r;
	*rev = g_int(res, 0, 0);
	PQclear(res);
	return 0;
}

static int
pg_changes_since(struct ds *ds, int64_t since, size_t limit,
    ds_change_fn *fn, void *arg)
{
	struct pg	*s = (struct pg *)ds;
	struct pgp	 p;
	PGresult	*res;
	size_t		 left = limit == 0 ? SIZE_MAX : limit;
	int		 rows, i, r = 0;

	do {
		p.n = 0;
		p_int(&p, since);
		p_int(&p, left < PG_CHUNK ? (int64_t)left : PG_CHUNK);
		if ((r = q(s, "SELECT revision, kind, op, object FROM changes"
		    " WHERE revision > $1 ORDER BY revision LIMIT $2", &p, 0,
		    &res, "changes")) != 0)
			return r;
		rows = PQntuples(res);
		for (i = 0; i < rows && r == 0; i++) {
			since = g_int(res, i, 0);
			r = fn(arg, since,
			    (enum ds_change_kind)g_int(res, i, 1),
			    (enum ds_change_op)g_int(res, i, 2),
			    PQgetvalue(res, i, 3));
		}
		PQclear(res);
		left -= (size_t)rows;
	} while (r == 0 && rows == PG_CHUNK && left > 0);
	return r;
}

static int
pg_changes_prune(struct ds *ds, int64_t before, size_t *n)
{
	struct pgp	 p = { .n = 0 };
	PGresult	*res;
	int		 r;

	p_int(&p, before);
	/* As ds_sqlite.c's: what the walk from the oldest reads is what
	 * goes, not every change kept (there is no index on at). */
	if ((r = q((struct pg *)ds, "DELETE FROM changes WHERE revision <"
	    " (SELECT revision FROM changes WHERE revision <"
	    " coalesce((SELECT revision FROM changes WHERE at >= $1"
	    " ORDER BY revision LIMIT 1),"
	    " (SELECT max(revision) FROM changes) + 1)"
	    " ORDER BY revision DESC LIMIT 1)", &p, 0, &res,
	    "prune changes")) != 0)
		return r;
	*n = (size_t)affected(res);
	PQclear(res);
	return 0;
}

static int
pg_changes_floor(struct ds *ds, int64_t *rev)
{
	PGresult	*res;
	int		 r;

	if ((r = q((struct pg *)ds, "SELECT coalesce(min(revision), 0) FROM"
	    " changes", NULL, 0, &res, "changes floor")) != 0)
		return r;
	*rev = g_int(res, 0, 0);
	PQclear(res);
	return 0;
}

/* ---- nodes ------------------------------------------------------------- */

static const char SQL_INS_NSEL[] = "INSERT INTO node_selectors"
    " (node, type, value) VALUES ($1, $2, $3)";

static int
pg_node_create(struct ds *ds, const struct ds_node *n, int64_t now)
{
	struct pg	*s = (struct pg *)ds;
	struct pgp	 p = { .n = 0 };
	PGresult	*res;
	char		 row[24];
	int		 r;

	if ((r = begin(s, LOCK_CHANGES)) != 0)
		return r;
	p_text(&p, n->spiffe_id);
	p_text(&p, n->attestation_type);
	p_text(&p, n->serial);
	p_int(&p, n->expires_at);
	p_text(&p, n->new_serial);
	p_int(&p, n->new_expires_at);
	p_int(&p, n->can_reattest != 0);
	p_int(&p, now);
	if ((r = q(s, "INSERT INTO nodes (spiffe_id, attestation_type,"
	    " serial, expires_at, new_serial, new_expires_at, can_reattest,"
	    " created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8,"
	    " $8) RETURNING id", &p, 0, &res, "insert node")) != 0)
		return finish(s, r);
	snprintf(row, sizeof(row), "%s", PQgetvalue(res, 0, 0));
	PQclear(res);
	if ((r = write_selectors(s, SQL_INS_NSEL, row, &n->selectors)) == 0)
		r = log_change(s, DS_CHANGE_NODE, DS_OP_CREATE, n->spiffe_id,
		    now, NULL);
	return finish(s, r);
}

static int
pg_node_get(struct ds *ds, const char *id, struct ds_node **out)
{
	struct pg	*s = (struct pg *)ds;
	struct pgp	 p = { .n = 0 };
	PGresult	*res;
	int		 r;

	p_text(&p, id);
	if ((r = q(s, NODE_SEL " WHERE n.spiffe_id = $1", &p, 0, &res,
	    "get node")) != 0)
		return r;
	r = PQntuples(res) == 1 ? load_node(res, 0, out) : WICK_ERR_NOT_FOUND;
	PQclear(res);
	return r;
}

/*
 * Run sql (an UPDATE/DELETE of one node whose last parameter is its
 * SPIFFE ID) and log it, in a transaction; sel (if not NULL) replaces the
 * node's selectors.
 */
static int
node_write(struct pg *s, const char *sql, struct pgp *p, const char *id,
    const struct selector_set *sel, enum ds_change_op op, int64_t now)
{
	struct pgp	 k = { .n = 0 };
	PGresult	*res;
	char		 row[24];
	int		 r;

	if ((r = begin(s, LOCK_CHANGES)) != 0)
		return r;
	p_text(&k, id);
	if ((r = q(s, "SELECT id FROM nodes WHERE spiffe_id = $1 FOR UPDATE",
	    &k, 0, &res, "find node")) != 0)
		return finish(s, r);
	if (PQntuples(res) != 1) {
		PQclear(res);
		return finish(s, WICK_ERR_NOT_FOUND);
	}
	snprintf(row, sizeof(row), "%s", PQgetvalue(res, 0, 0));
	PQclear(res);
	if ((r = q(s, sql, p, 0, NULL, "write node")) != 0)
		return finish(s, r);
	if (sel != NULL) {
		k.n = 0;
		p_text(&k, row);
		if ((r = q(s, "DELETE FROM node_selectors WHERE node = $1", &k,
		    0, NULL, "clear node selectors")) != 0 ||
		    (r = write_selectors(s, SQL_INS_NSEL, row, sel)) != 0)
			return finish(s, r);
	}
	return finish(s, log_change(s, DS_CHANGE_NODE, op, id, now, NULL));
}

static int
pg_node_set_serials(struct ds *ds, const char *id, const char *serial,
    int64_t exp, const char *new_serial, int64_t new_exp, int64_t now)
{
	struct pgp p = { .n = 0 };

	p_text(&p, serial);
	p_int(&p, exp);
	p_text(&p, new_serial);
	p_int(&p, new_exp);
	p_int(&p, now);
	p_text(&p, id);
	return node_write((struct pg *)ds, "UPDATE nodes SET serial = $1,"
	    " expires_at = $2, new_serial = $3, new_expires_at = $4,"
	    " updated_at = $5 WHERE spiffe_id = $6", &p, id, NULL,
	    DS_OP_UPDATE, now);
}

static int
pg_node_set_selectors(struct ds *ds, const char *id,
    const struct selector_set *sel, int64_t now)
{
	struct pgp p = { .n = 0 };

	p_int(&p, now);
	p_text(&p, id);
	return node_write((struct pg *)ds, "UPDATE nodes SET updated_at = $1"
	    " WHERE spiffe_id = $2", &p, id, sel, DS_OP_UPDATE, now);
}

static int
pg_node_ban(struct ds *ds, const char *id, int64_t now)
{
	struct pgp p = { .n = 0 };

	p_int(&p, now);
	p_text(&p, id);
	return node_write((struct pg *)ds, "UPDATE nodes SET serial = '',"
	    " new_serial = '', updated_at = $1 WHERE spiffe_id = $2", &p, id,
	    NULL, DS_OP_UPDATE, now);
}

static int
pg_node_delete(struct ds *ds, const char *id, int64_t now)
{
	struct pgp p = { .n = 0 };

	p_text(&p, id);
	return node_write((struct pg *)ds, "DELETE FROM nodes"
	    " WHERE spiffe_id = $1", &p, id, NULL, DS_OP_DELETE, now);
}

/* ---- join tokens ------------------------------------------------------- */

static int
pg_join_token_create(struct ds *ds, const char *hash, int64_t exp)
{
	struct pgp p = { .n = 0 };

	p_text(&p, hash);
	p_int(&p, exp);
	return q((struct pg *)ds, "INSERT INTO join_tokens (token_hash,"
	    " expires_at) VALUES ($1, $2)", &p, 0, NULL, "insert join token");
}

/*
 * One DELETE ... RETURNING: of concurrent callers (on any server) the
 * first takes the row lock and deletes; the others wait for it, then find
 * the row gone.  The hash returned is compared in constant time.
 */
static int
pg_join_token_consume(struct ds *ds, const char *hash, int64_t now)
{
	struct pg	*s = (struct pg *)ds;
	struct pgp	 p = { .n = 0 };
	PGresult	*res;
	const char	*t;
	int64_t		 exp;
	int		 r, same;

	p_text(&p, hash);
	if ((r = q(s, "DELETE FROM join_tokens WHERE token_hash = $1"
	    " RETURNING token_hash, expires_at", &p, 0, &res,
	    "use join token")) != 0)
		return r;
	if (PQntuples(res) != 1) {
		PQclear(res);
		return WICK_ERR_NOT_FOUND;
	}
	t = PQgetvalue(res, 0, 0);
	same = strlen(t) == 64 && CRYPTO_memcmp(t, hash, 64) == 0;
	exp = g_int(res, 0, 1);
	PQclear(res);
	if (!same)
		return WICK_ERR_NOT_FOUND;
	return exp <= now ? WICK_ERR_EXPIRED : 0;
}

static int
pg_join_tokens_prune(struct ds *ds, int64_t now, size_t *n)
{
	struct pgp	 p = { .n = 0 };
	PGresult	*res;
	int		 r;

	*n = 0;
	p_int(&p, now);
	if ((r = q((struct pg *)ds, "DELETE FROM join_tokens"
	    " WHERE expires_at <= $1", &p, 0, &res, "prune join tokens")) != 0)
		return r;
	*n = (size_t)affected(res);
	PQclear(res);
	return 0;
}

/* ---- bundles and the CA journal ---------------------------------------- */

static int
pg_bundle_set(struct ds *ds, const char *td, const uint8_t *data, size_t n,
    int64_t now)
{
	struct pg	*s = (struct pg *)ds;
	struct pgp	 p = { .n = 0 };
	PGresult	*res;
	int		 r, had;

	if ((r = begin(s, LOCK_CHANGES)) != 0)
		return r;
	p_text(&p, td);
	if ((r = q(s, "SELECT 1 FROM bundles WHERE td_id = $1", &p, 0, &res,
	    "find bundle")) != 0)
		return finish(s, r);
	had = PQntuples(res) > 0;
	PQclear(res);
	p_blob(&p, data, n);
	p_int(&p, now);
	if ((r = q(s, "INSERT INTO bundles (td_id, data, updated_at) VALUES"
	    " ($1, $2, $3) ON CONFLICT (td_id) DO UPDATE SET"
	    " data = excluded.data, updated_at = excluded.updated_at", &p, 0,
	    NULL, "store bundle")) == 0)
		r = log_change(s, DS_CHANGE_BUNDLE, had ? DS_OP_UPDATE :
		    DS_OP_CREATE, td, now, NULL);
	return finish(s, r);
}

/* A copy of binary column c of row i, bounded by DS_MAX_BLOB. */
static int
g_blob(const PGresult *res, int i, int c, uint8_t **data, size_t *n)
{
	size_t len = (size_t)PQgetlength(res, i, c);

	*data = NULL;
	*n = 0;
	if (len > DS_MAX_BLOB)
		return WICK_ERR_LIMIT;
	if ((*data = malloc(len + 1)) == NULL)
		return WICK_ERR_ALLOC;
	if (len > 0)
		memcpy(*data, PQgetvalue(res, i, c), len);
	*n = len;
	return 0;
}

static int
pg_bundle_get(struct ds *ds, const char *td, uint8_t **data, size_t *n)
{
	struct pgp	 p = { .n = 0 };
	PGresult	*res;
	int		 r;

	p_text(&p, td);
	if ((r = q((struct pg *)ds, "SELECT data FROM bundles WHERE"
	    " td_id = $1", &p, 1, &res, "get bundle")) != 0)
		return r;
	r = PQntuples(res) == 1 ? g_blob(res, 0, 0, data, n) :
	    WICK_ERR_NOT_FOUND;
	PQclear(res);
	return r;
}

static int
pg_bundle_delete(struct ds *ds, const char *td, int64_t now)
{
	struct pg	*s = (struct pg *)ds;
	struct pgp	 p = { .n = 0 };
	PGresult	*res;
	int		 r;

	if ((r = begin(s, LOCK_CHANGES)) != 0)
		return r;
	p_text(&p, td);
	if ((r = q(s, "DELETE FROM bundles WHERE td_id = $1", &p, 0, &res,
	    "delete bundle")) != 0)
		return finish(s, r);
	if (affected(res) == 0)
		r = WICK_ERR_NOT_FOUND;
	PQclear(res);
	if (r == 0)
		r = log_change(s, DS_CHANGE_BUNDLE, DS_OP_DELETE, td, now,
		    NULL);
	return finish(s, r);
}

/* A few bundles per query (each may be DS_MAX_BLOB); rows are copied
 * out before fn runs, so fn may use the datastore. */
static int
pg_bundles_foreach(struct ds *ds, ds_bundle_fn *fn, void *arg)
{
	struct pg	*s = (struct pg *)ds;
	struct pgp	 p;
	PGresult	*res;
	uint8_t		*data;
	char		*last, *td;
	size_t		 n;
	int		 rows, i, r = 0;

	if ((last = strdup("")) == NULL)
		return WICK_ERR_ALLOC;
	do {
		p.n = 0;
		p_text(&p, last);
		if ((r = q(s, "SELECT td_id, data FROM bundles WHERE td_id > $1"
		    " ORDER BY td_id LIMIT 8", &p, 1, &res,
		    "list bundles")) != 0)
			break;
		rows = PQntuples(res);
		for (i = 0; i < rows && r == 0; i++) {
			/* Binary text is its bytes, without a NUL. */
			if ((td = strndup(PQgetvalue(res, i, 0),
			    (size_t)PQgetlength(res, i, 0))) == NULL) {
				r = WICK_ERR_ALLOC;
				break;
			}
			if ((r = g_blob(res, i, 1, &data, &n)) == 0)
				r = fn(arg, td, data, n);
			free(data);
			free(last);
			last = td;
		}
		PQclear(res);
	} while (r == 0 && rows == 8);
	free(last);
	return r;
}

/* The journal and the removal of the unowned one, together. */
static int
pg_ca_journal_set(struct ds *ds, const char *server_id, const uint8_t *data,
    size_t n, int64_t now)
{
	struct pg	*s = (struct pg *)ds;
	struct pgp	 p = { .n = 0 };
	int		 r;

	if ((r = begin(s, LOCK_NONE)) != 0)
		return r;
	p_text(&p, server_id);
	p_blob(&p, data, n);
	p_int(&p, now);
	if ((r = q(s, "INSERT INTO ca_journals (server_id, data, updated_at)"
	    " VALUES ($1, $2, $3) ON CONFLICT (server_id) DO UPDATE SET"
	    " data = excluded.data, updated_at = excluded.updated_at", &p, 0,
	    NULL, "store CA journal")) == 0)
		r = q(s, "DELETE FROM ca_journals WHERE server_id = ''", NULL,
		    0, NULL, "store CA journal");
	return finish(s, r);
}

static int
pg_ca_journal_get(struct ds *ds, const char *server_id, uint8_t **data,
    size_t *n)
{
	struct pgp	 p = { .n = 0 };
	PGresult	*res;
	int		 r;

	/* Its own journal, else the unowned one ('' sorts first). */
	p_text(&p, server_id);
	if ((r = q((struct pg *)ds, "SELECT data FROM ca_journals WHERE"
	    " server_id IN ($1, '') ORDER BY server_id DESC LIMIT 1", &p, 1,
	    &res, "get CA journal")) != 0)
		return r;
	r = PQntuples(res) == 1 ? g_blob(res, 0, 0, data, n) :
	    WICK_ERR_NOT_FOUND;
	PQclear(res);
	return r;
}

/* ---- audit ------------------------------------------------------------- */

#define AUDIT_COLS \
	"id, seq, at, kind, actor, subject, ok, detail, prev_hash, hash"

/*
 * A stored hash into out; "-" (which no hash equals) for anything but 64
 * characters, so that a value cut to fit would not pass for the real one.
 */
static void
g_hash(const PGresult *res, int i, int c, char out[DS_AUDIT_HASH_HEX])
{
	const char *t = PQgetvalue(res, i, c);

	if (!PQgetisnull(res, i, c) && strlen(t) == DS_AUDIT_HASH_HEX - 1)
		memcpy(out, t, DS_AUDIT_HASH_HEX);
	else
		snprintf(out, DS_AUDIT_HASH_HEX, "-");
}

/* Row i of a result selecting AUDIT_COLS. */
static int
audit_row(const PGresult *res, int i, struct ds_audit *a)
{
	memset(a, 0, sizeof(*a));
	a->id = g_int(res, i, 0);
	a->seq = PQgetisnull(res, i, 1) ? 0 : g_int(res, i, 1);
	a->at = g_int(res, i, 2);
	a->kind = g_text(res, i, 3);
	a->actor = g_text(res, i, 4);
	a->subject = g_text(res, i, 5);
	a->ok = (int)g_int(res, i, 6);
	a->detail_json = g_text(res, i, 7);
	/* Whatever is stored is shown; verify judges it. */
	g_hash(res, i, 8, a->prev_hash);
	g_hash(res, i, 9, a->hash);
	if (a->kind == NULL || a->actor == NULL || a->subject == NULL ||
	    a->detail_json == NULL) {
		ds_audit_free_members(a);
		return WICK_ERR_ALLOC;
	}
	/* An outcome other than 0 or 1 reads as one: it cannot match. */
	if (a->ok != 0 && a->ok != 1)
		snprintf(a->hash, sizeof(a->hash), "-");
	return 0;
}

/* The anchor of the last prune; WICK_ERR_NOT_FOUND when none. */
static int
audit_anchor(struct ds *ds, int64_t *seq, char hash[DS_AUDIT_HASH_HEX])
{
	struct pg	*s = (struct pg *)ds;
	PGresult	*res;
	int		 r;

	if ((r = q(s, "SELECT seq, hash FROM audit_anchor WHERE id = 1", NULL,
	    0, &res, "audit anchor")) != 0)
		return r;
	if (PQntuples(res) == 1) {
		*seq = g_int(res, 0, 0);
		snprintf(hash, DS_AUDIT_HASH_HEX, "%s", PQgetvalue(res, 0, 1));
	} else
		r = WICK_ERR_NOT_FOUND;
	PQclear(res);
	return r;
}

/* The newest chained event's seq and hash; WICK_ERR_NOT_FOUND when none. */
static int
audit_last(struct ds *ds, int64_t *seq, char hash[DS_AUDIT_HASH_HEX])
{
	struct pg	*s = (struct pg *)ds;
	PGresult	*res;
	int		 r;

	if ((r = q(s, "SELECT seq, hash FROM audit WHERE seq IS NOT NULL"
	    " ORDER BY seq DESC LIMIT 1", NULL, 0, &res, "audit head")) != 0)
		return r;
	if (PQntuples(res) == 1) {
		*seq = g_int(res, 0, 0);
		snprintf(hash, DS_AUDIT_HASH_HEX, "%s", PQgetvalue(res, 0, 1));
	} else
		r = WICK_ERR_NOT_FOUND;
	PQclear(res);
	return r;
}

/* Insert a chained event: the caller holds PG_LOCK_AUDIT. */
static int
audit_put(struct ds *ds, const struct ds_audit *a)
{
	struct pgp	p = { .n = 0 };

	p_int(&p, a->seq);
	p_int(&p, a->at);
	p_text(&p, a->kind);
	p_text(&p, a->actor);
	p_text(&p, a->subject);
	p_int(&p, a->ok);
	p_text(&p, a->detail_json);
	p_text(&p, a->prev_hash);
	p_text(&p, a->hash);
	return q((struct pg *)ds, "INSERT INTO audit (seq, at, kind, actor,"
	    " subject, ok, detail, prev_hash, hash) VALUES ($1, $2, $3, $4,"
	    " $5, $6, $7, $8, $9)", &p, 0, NULL, "audit");
}




/*
 * Run fn over the events of sql, PG_CHUNK rows per query: $1 is the key
 * (column key: 0 id, 1 seq) after which to go on, $2 the rows wanted,
 * the rest are p's from its third on.  At most limit (0 = all); fn's
 * non-zero is returned.
 */
static int
audit_walk(struct pg *s, const char *sql, struct pgp *p, int key,
    int64_t after, size_t limit, ds_audit_fn *fn, void *arg)
{
	struct ds_audit	 a;
	PGresult	*res;
	size_t		 left = limit == 0 ? SIZE_MAX : limit;
	int		 rows, i, r = 0;

	do {
		snprintf(p->num[0], sizeof(p->num[0]), "%lld",
		    (long long)after);
		snprintf(p->num[1], sizeof(p->num[1]), "%lld",
		    (long long)(left < PG_CHUNK ? (int64_t)left : PG_CHUNK));
		p->v[0] = p->num[0];
		p->v[1] = p->num[1];
		if ((r = q(s, sql, p, 0, &res, "audit")) != 0)
			return r;
		rows = PQntuples(res);
		for (i = 0; i < rows && r == 0; i++) {
			if ((r = audit_row(res, i, &a)) != 0)
				break;
			after = key == 0 ? a.id : a.seq;
			r = fn(arg, &a);
			ds_audit_free_members(&a);
		}
		PQclear(res);
		left -= (size_t)rows;
	} while (r == 0 && rows == PG_CHUNK && left > 0);
	return r;
}

static int
pg_audit_since(struct ds *ds, int64_t after, size_t limit, ds_audit_fn *fn,
    void *arg)
{
	struct pgp p = { .n = 2 };

	return audit_walk((struct pg *)ds, "SELECT " AUDIT_COLS " FROM audit"
	    " WHERE id > $1 ORDER BY id LIMIT $2", &p, 0, after, limit, fn,
	    arg);
}

static int
pg_audit_list(struct ds *ds, const struct ds_audit_filter *f, size_t limit,
    ds_audit_fn *fn, void *arg)
{
	struct pgp p = { .n = 2 };

	p_int(&p, f->since > 0 ? f->since : INT64_MIN);
	p_text(&p, f->spiffe_id);
	return audit_walk((struct pg *)ds, "SELECT " AUDIT_COLS " FROM audit"
	    " WHERE seq > $1 AND at >= $3"
	    " AND ($4 = '' OR actor = $4 OR subject = $4"
	    " OR strpos(detail, '\"' || $4 || '\"') > 0)"
	    " ORDER BY seq LIMIT $2", &p, 1, f->after_seq, limit, fn, arg);
}

/*
 * A prune deletes the events up to its anchor in the transaction that
 * sets it, so an event still there at or below the anchor means the
 * anchor was edited to hide it from the walk.
 */
static int
audit_anchor_check(struct ds *ds, int64_t aseq, struct ds_audit_verify *v)
{
	struct pg	*s = (struct pg *)ds;
	struct pgp	 p = { .n = 0 };
	PGresult	*res;
	int64_t		 seq;
	int		 r;

	p_int(&p, aseq);
	if ((r = q(s, "SELECT seq FROM audit WHERE seq <= $1"
	    " ORDER BY seq DESC LIMIT 1", &p, 0, &res, "audit anchor")) != 0)
		return r;
	if (PQntuples(res) == 0) {
		PQclear(res);
		return 0;
	}
	seq = g_int(res, 0, 0);
	PQclear(res);
	return ds_audit_anchor_edited(v, seq, aseq);
}

static int
audit_chain_rows(struct ds *ds, int64_t after, size_t max, ds_audit_fn *fn,
    void *arg)
{
	struct pgp	p = { .n = 2 };

	return audit_walk((struct pg *)ds, "SELECT " AUDIT_COLS " FROM audit"
	    " WHERE seq > $1 ORDER BY seq LIMIT $2", &p, 1, after, max, fn,
	    arg);
}

static int
audit_cut(struct ds *ds, int64_t seq, const char *hash, int64_t at)
{
	struct pg	*s = (struct pg *)ds;
	struct pgp	 p = { .n = 0 };
	int		 r;

	p_int(&p, seq);
	if ((r = q(s, "DELETE FROM audit WHERE seq <= $1", &p, 0, NULL,
	    "audit prune")) != 0)
		return r;
	p_text(&p, hash);
	p_int(&p, at);
	return q(s, "INSERT INTO audit_anchor (id, seq, hash, at)"
	    " VALUES (1, $1, $2, $3) ON CONFLICT (id) DO UPDATE SET"
	    " seq = excluded.seq, hash = excluded.hash, at = excluded.at", &p,
	    0, NULL, "audit anchor");
}

static const struct ds_audit_ops audit_ops = {
	audit_last, audit_anchor, audit_anchor_check, audit_chain_rows,
	audit_cut, audit_put
};

static int
pg_audit_append(struct ds *ds, int64_t at, const char *kind,
    const char *actor, const char *subject, int ok, const char *detail)
{
	struct pg	*s = (struct pg *)ds;
	int		 r;

	if ((r = begin(s, LOCK_AUDIT)) != 0)
		return r;
	return finish(s, ds_audit_chain(ds, &audit_ops, at, kind, actor,
	    subject, ok, detail));
}

/* One slice of a chain walk, in one read-only snapshot. */
static int
pg_audit_verify_step(struct ds *ds, struct ds_audit_verify *v,
    size_t max_rows)
{
	struct pg	*s = (struct pg *)ds;
	int		 r;

	/* Its own read transaction: never inside a caller's. */
	if (s->tx)
		return WICK_ERR_STATE;
	if ((r = exec(s, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"))
	    != 0)
		return r;
	s->intx = 1;
	r = ds_audit_verify_run(ds, &audit_ops, v, max_rows);
	PQclear(PQexec(s->conn, "COMMIT"));
	s->intx = 0;
	return r;
}

static int
pg_audit_prune(struct ds *ds, int64_t before, size_t max_rows, int64_t now,
    size_t *n)
{
	struct pg	*s = (struct pg *)ds;
	size_t		 k;
	int		 r;

	if ((r = begin(s, LOCK_AUDIT)) != 0)
		return r;
	r = ds_audit_prune_run(ds, &audit_ops, before, max_rows, now, &k);
	if ((r = finish(s, r)) == 0)
		*n = k;
	return r;
}

/* ---- backup, check, close ---------------------------------------------- */

static int
pg_backup_begin(struct ds *ds, const char *dest, struct ds_backup **out,
    const char **why)
{
	*why = "a PostgreSQL datastore is backed up with pg_dump "
	    "(or the database's own backup), not by wick: save that and "
	    "each server's key file (keys_path)";
	return WICK_ERR_UNSUPPORTED;
}

static int
pg_backup_run(struct ds_backup *b, const char **why)
{
	*why = "a PostgreSQL datastore is backed up with pg_dump";
	return WICK_ERR_UNSUPPORTED;
}

static void
pg_backup_free(struct ds_backup *b)
{
	free(b);
}

static int
pg_check(struct ds *ds, const char **why)
{
	int r;

	*why = NULL;
	if ((r = exec((struct pg *)ds, "SELECT 1")) != 0)
		*why = "the PostgreSQL server does not answer";
	return r;
}

static void
pg_close(struct ds *ds)
{
	struct pg *s = (struct pg *)ds;

	PQfinish(s->conn);
	forget_prepared(s);
	if (s->conninfo != NULL) {
		OPENSSL_cleanse(s->conninfo, strlen(s->conninfo));
		free(s->conninfo);
	}
	free(s->where);
	free(s);
}

static const struct ds_ops pg_ops = {
	"postgres",
	pg_close,
	&batch_ops,
	pg_entry_get,
	pg_walk,
	pg_entries_prune,
	pg_revision,
	pg_changes_since,
	pg_changes_prune,
	pg_changes_floor,
	pg_node_create,
	pg_node_get,
	pg_node_set_serials,
	pg_node_set_selectors,
	pg_node_ban,
	pg_node_delete,
	pg_join_token_create,
	pg_join_token_consume,
	pg_join_tokens_prune,
	pg_bundle_set,
	pg_bundle_get,
	pg_bundle_delete,
	pg_bundles_foreach,
	pg_ca_journal_set,
	pg_ca_journal_get,
	pg_tx_begin,
	pg_tx_end,
	pg_audit_append,
	pg_audit_since,
	pg_audit_list,
	pg_audit_verify_step,
	pg_audit_prune,
	pg_backup_begin,
	pg_backup_run,
	pg_backup_free,
	pg_check,
	NULL,		/* entries_load: a walk query reads the lists too */
};

/* ---- open, migrate ----------------------------------------------------- */

/*
 * The server named without secrets, for messages: database, host, port
 * and user from the parsed connection string (never its password).
 */
static char *
describe(const char *conninfo)
{
	PQconninfoOption	*opts, *o;
	const char		*host = NULL, *port = NULL, *db = NULL;
	const char		*user = NULL;
	char			*out = NULL;

	if ((opts = PQconninfoParse(conninfo, NULL)) == NULL)
		return xstrdup("(unparsable connection string)");
	for (o = opts; o->keyword != NULL; o++) {
		if (o->val == NULL || *o->val == '\0')
			continue;
		if (strcmp(o->keyword, "host") == 0)
			host = o->val;
		else if (strcmp(o->keyword, "port") == 0)
			port = o->val;
		else if (strcmp(o->keyword, "dbname") == 0)
			db = o->val;
		else if (strcmp(o->keyword, "user") == 0)
			user = o->val;
	}
	if (asprintf(&out, "database %s on %s%s%s as %s",
	    db != NULL ? db : "(default)", host != NULL ? host :
	    "(default host)", port != NULL ? ":" : "", port != NULL ? port :
	    "", user != NULL ? user : "(default user)") == -1)
		out = NULL;
	PQconninfoFree(opts);
	return out != NULL ? out : xstrdup("(server)");
}

/*
 * Apply the missing steps, each in its own transaction under an advisory
 * lock, so that servers starting together on a fresh database run each
 * step once.  A database newer than this build is refused untouched.
 */
static int
migrate(struct pg *s, const char **why)
{
	struct pgp	 p;
	PGresult	*res;
	int64_t		 v;
	int		 r;

	for (;;) {
		if ((r = begin(s, LOCK_NONE)) != 0 ||
		    (r = take_lock(s, PG_LOCK_MIGRATE)) != 0) {
			*why = "cannot lock the database for migration";
			return finish(s, r != 0 ? r : WICK_ERR_INTERNAL);
		}
		if ((r = exec(s, "CREATE TABLE IF NOT EXISTS schema_version"
		    " (version INTEGER PRIMARY KEY)")) != 0 ||
		    (r = q(s, "SELECT coalesce(max(version), 0) FROM"
		    " schema_version", NULL, 0, &res, "schema version")) != 0) {
			*why = "cannot read the schema version";
			return finish(s, r);
		}
		v = g_int(res, 0, 0);
		PQclear(res);
		if (v > PG_NMIGRATIONS) {
			*why = "the database was written by a newer wick "
			    "(schema version too new)";
			return finish(s, WICK_ERR_UNSUPPORTED);
		}
		if (v == PG_NMIGRATIONS)
			return finish(s, 0);
		p.n = 0;
		p_int(&p, v + 1);
		/* Constant SQL of several statements: the simple protocol. */
		res = PQexec(s->conn, pg_migrations[v]);
		if (PQresultStatus(res) != PGRES_COMMAND_OK)
			r = pg_err(s, res, "schema migration");
		PQclear(res);
		if (r == 0)
			r = q(s, "INSERT INTO schema_version (version)"
			    " VALUES ($1)", &p, 0, NULL,
			    "record schema version");
		if (r != 0 || (r = finish(s, 0)) != 0) {
			/* finish() has rolled back or committed: once. */
			if (s->intx)
				(void)finish(s, r);
			*why = "a schema migration failed";
			return r;
		}
		log_info("datastore migrated to schema version %lld",
		    (long long)v + 1);
	}
}

/* The server's notices ("no transaction in progress"...) are for
 * debugging: they never go to stderr on their own. */
static void
notice_cb(void *arg, const char *msg)
{
	struct pg	*s = arg;
	char		 line[256];

	one_line(msg, line, sizeof(line));
	log_debug("postgres %s: %s", s->where, line);
}

/*
 * Connect, never naming the password: *why is static, the details go to
 * the log with the server described by describe().
 */
static int
pg_connect(const char *conninfo, int readonly, struct pg **out,
    const char **why)
{
	struct pg	*s;
	char		*err = NULL, msg[256];
	PQconninfoOption *opts;

	*out = NULL;
	if ((opts = PQconninfoParse(conninfo, &err)) == NULL) {
		/* libpq's message may quote the string: not logged. */
		PQfreemem(err);
		*why = "the connection_string is not a valid PostgreSQL "
		    "connection string or URI";
		return WICK_ERR_CONFIG;
	}
	PQconninfoFree(opts);
	s = xcalloc(1, sizeof(*s));
	s->base.ops = &pg_ops;
	s->conninfo = xstrdup(conninfo);
	s->where = describe(conninfo);
	/*
	 * The caller's string, expanded, then what wick needs of every
	 * session (later keywords win); PQreset() keeps them all.
	 */
	{
		/* Defaults first, so that the caller's string wins. */
		static const char *const kw[] = { "connect_timeout",
		    "keepalives", "keepalives_idle", "keepalives_interval",
		    "keepalives_count", "dbname", "client_encoding",
		    "fallback_application_name", NULL };
		const char *val[] = { PG_CONNECT_TIMEOUT, "1", "10", "5", "3",
		    conninfo, "UTF8", "wick-server", NULL };

		s->conn = PQconnectdbParams(kw, val, 1);
	}
	if (s->conn == NULL || PQstatus(s->conn) != CONNECTION_OK) {
		one_line(s->conn != NULL ? PQerrorMessage(s->conn) :
		    "out of memory", msg, sizeof(msg));
		log_error("postgres %s: cannot connect: %s", s->where, msg);
		*why = "cannot connect to the PostgreSQL server (see the log)";
		pg_close(&s->base);
		return WICK_ERR_UNAVAILABLE;
	}
	PQsetNoticeProcessor(s->conn, notice_cb, s);
	s->readonly = readonly;
	if (session_setup(s) != 0) {
		*why = "cannot set up the PostgreSQL session";
		pg_close(&s->base);
		return WICK_ERR_UNAVAILABLE;
	}
	*out = s;
	return 0;
}

int
ds_pg_open(const char *conninfo, struct ds **out, const char **why)
{
	struct pg	*s;
	int		 r;

	*out = NULL;
	if ((r = pg_connect(conninfo, 0, &s, why)) != 0)
		return r;
	if ((r = migrate(s, why)) != 0) {
		pg_close(&s->base);
		return r;
	}
	*out = &s->base;
	return 0;
}

/*
 * Read only: a read-only session on a database of this build's schema;
 * nothing is created or migrated.
 */
int
ds_pg_open_readonly(const char *conninfo, struct ds **out, const char **why)
{
	struct pg	*s;
	PGresult	*res;
	int64_t		 v;
	int		 r;

	*out = NULL;
	if ((r = pg_connect(conninfo, 1, &s, why)) != 0)
		return r;
	if ((r = q(s, "SELECT coalesce(max(version), 0) FROM schema_version",
	    NULL, 0, &res, "schema version")) != 0) {
		*why = "cannot read the schema version (not a wick database?)";
		pg_close(&s->base);
		return r;
	}
	v = g_int(res, 0, 0);
	PQclear(res);
	if (v != PG_NMIGRATIONS) {
		*why = v < PG_NMIGRATIONS ? "the database has an older "
		    "schema: start the server on it once to migrate it" :
		    "the database was written by a newer wick";
		pg_close(&s->base);
		return WICK_ERR_UNSUPPORTED;
	}
	*out = &s->base;
	return 0;
}
