/*
 * test_ds.c: the datastore conformance suite.
 *
 * Written once against ds.h and run for every backend in backends[]; a
 * PostgreSQL backend adds one row.  The row's optional hooks cover what
 * only some backends have: files on disk (modes, secrecy of join tokens)
 * and a way to fake a database written by a newer build.
 */
#include <sys/stat.h>
#include <sys/wait.h>

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include <libpq-fe.h>
#include <openssl/evp.h>
#include <sqlite3.h>

#include "bundle.h"
#include "ca_manager.h"
#include "ds.h"
#include "ds_int.h"
#include "entry_cache.h"
#include "keymgr.h"
#include "server.h"

struct backend {
	const char		*type;
	/* The connection string of fresh store number n under dir. */
	void			(*conn)(char *, size_t, const char *, int);
	/* Suffixes naming the store's files (conn + suffix), or NULL. */
	const char *const	*files;
	/* Record schema version v in a closed store; NULL: skip. */
	int			(*set_version)(const char *, int);
	/* Run statements on a closed store (tampering, old schemas);
	 * NULL: skip. */
	int			(*sql)(const char *, const char *);
};

static void
sqlite_conn(char *out, size_t len, const char *dir, int n)
{
	snprintf(out, len, "%s/ds-%d.sqlite3", dir, n);
}

static int
sqlite_set_version(const char *conn, int v)
{
	sqlite3		*db = NULL;
	sqlite3_stmt	*p = NULL;
	int		 ok;

	ok = sqlite3_open_v2(conn, &db, SQLITE_OPEN_READWRITE, NULL) ==
	    SQLITE_OK && sqlite3_prepare_v2(db, "INSERT INTO schema_migrations"
	    " (version) VALUES (?)", -1, &p, NULL) == SQLITE_OK &&
	    sqlite3_bind_int(p, 1, v) == SQLITE_OK &&
	    sqlite3_step(p) == SQLITE_DONE;
	sqlite3_finalize(p);
	sqlite3_close(db);
	return ok ? 0 : -1;
}

static int
sqlite_sql(const char *conn, const char *sql)
{
	sqlite3	*db = NULL;
	char	*err = NULL;
	int	 ok;

	ok = sqlite3_open_v2(conn, &db, SQLITE_OPEN_READWRITE, NULL) ==
	    SQLITE_OK && sqlite3_exec(db, sql, NULL, NULL, &err) == SQLITE_OK;
	if (!ok)
		print_message("sql: %s\n", err != NULL ? err : "cannot open");
	sqlite3_free(err);
	sqlite3_close(db);
	return ok ? 0 : -1;
}

static const char *const sqlite_files[] = { "", "-wal", "-shm", NULL };

/*
 * PostgreSQL: WICK_TEST_PG names a scratch server and a superuser
 * ("host=... user=..."; tests/integration/pg.py starts one), and each
 * store is a database of its own, created here.
 */
static PGconn *
pg_admin(const char *dbname)
{
	const char	*base = getenv("WICK_TEST_PG");
	char		 ci[1024];
	PGconn		*c;

	if (base == NULL || *base == '\0')
		fail_msg("WICK_TEST_PG is not set: run this test through "
		    "tests/integration/pg.py (ctest does)");
	snprintf(ci, sizeof(ci), "%s dbname=%s", base, dbname);
	c = PQconnectdb(ci);
	if (PQstatus(c) != CONNECTION_OK)
		fail_msg("cannot connect to the test PostgreSQL: %s",
		    PQerrorMessage(c));
	return c;
}

static int
pg_exec(PGconn *c, const char *sql)
{
	PGresult	*res = PQexec(c, sql);
	int		 ok = PQresultStatus(res) == PGRES_COMMAND_OK ||
			    PQresultStatus(res) == PGRES_TUPLES_OK;

	if (!ok)
		print_message("sql: %s\n", PQresultErrorMessage(res));
	PQclear(res);
	return ok ? 0 : -1;
}

static void
pg_conn(char *out, size_t len, const char *dir, int n)
{
	PGconn	*c = pg_admin("postgres");
	char	 db[64], sql[128];

	snprintf(db, sizeof(db), "wick_test_%ld_%d", (long)getpid(), n);
	snprintf(sql, sizeof(sql), "CREATE DATABASE %s", db);
	if (pg_exec(c, sql) != 0)
		fail_msg("cannot create database %s", db);
	PQfinish(c);
	snprintf(out, len, "%s dbname=%s", getenv("WICK_TEST_PG"), db);
}

/* conn's database, on an admin connection. */
static PGconn *
pg_store(const char *conn)
{
	const char *db = strstr(conn, "dbname=");

	assert_non_null(db);
	return pg_admin(db + 7);
}

static int
pg_set_version(const char *conn, int v)
{
	PGconn	*c = pg_store(conn);
	char	 sql[128];
	int	 r;

	snprintf(sql, sizeof(sql), "INSERT INTO schema_version (version)"
	    " VALUES (%d)", v);
	r = pg_exec(c, sql);
	PQfinish(c);
	return r;
}

static int
pg_sql(const char *conn, const char *sql)
{
	PGconn	*c = pg_store(conn);
	int	 r = pg_exec(c, sql);

	PQfinish(c);
	return r;
}

/*
 * Rows run by main()'s argument: "sqlite3" (the default) or "postgres".
 * PostgreSQL has no files (no modes, no file-level secrecy check, no
 * SQLite backup) and no schema from before the audit chain.
 */
static const struct backend backends[] = {
	{ "sqlite3", sqlite_conn, sqlite_files, sqlite_set_version,
	    sqlite_sql },
	{ "postgres", pg_conn, NULL, pg_set_version, pg_sql },
};

static struct {
	const struct backend	*b;
	char			 dir[256];
	char			 conn[512];
	int			 n;
	struct ds		*ds;
} t;

/* A fresh, empty store in t.ds. */
static void
fresh(void)
{
	const char *why = NULL;

	ds_close(t.ds);
	t.ds = NULL;
	t.b->conn(t.conn, sizeof(t.conn), t.dir, t.n++);
	assert_int_equal(ds_open(t.b->type, t.conn, &t.ds, &why), 0);
	assert_null(why);
}

static void
reopen(void)
{
	const char *why;

	ds_close(t.ds);
	t.ds = NULL;
	assert_int_equal(ds_open(t.b->type, t.conn, &t.ds, &why), 0);
}

static int
group_setup(void **state)
{
	const char *tmp = getenv("TMPDIR");

	snprintf(t.dir, sizeof(t.dir), "%s/wick-ds-XXXXXX",
	    tmp != NULL && *tmp != '\0' ? tmp : "/tmp");
	return mkdtemp(t.dir) != NULL ? 0 : -1;
}

static int
group_teardown(void **state)
{
	struct dirent	*d;
	DIR		*dir;
	char		 path[768];

	ds_close(t.ds);
	t.ds = NULL;
	if ((dir = opendir(t.dir)) == NULL)
		return -1;
	while ((d = readdir(dir)) != NULL) {
		if (strcmp(d->d_name, ".") == 0 || strcmp(d->d_name, "..") == 0)
			continue;
		snprintf(path, sizeof(path), "%s/%s", t.dir, d->d_name);
		(void)unlink(path);
	}
	closedir(dir);
	return rmdir(t.dir) == 0 ? 0 : -1;
}

/* ---- helpers ----------------------------------------------------------- */

static void
add_sels(struct selector_set *set, const char *sels)
{
	char		*copy = strdup(sels), *tok, *save = NULL;
	const char	*why;

	for (tok = strtok_r(copy, " ", &save); tok != NULL;
	    tok = strtok_r(NULL, " ", &save))
		assert_int_equal(selector_set_add_str(set, tok, &why), 0);
	free(copy);
}

/* An entry; sels is space-separated "type:value"s. */
static struct ds_entry *
mk(const char *id, const char *spiffe, const char *parent, const char *sels)
{
	struct ds_entry *e = ds_entry_new();

	e->id = id != NULL ? strdup(id) : NULL;
	e->spiffe_id = strdup(spiffe);
	e->parent_id = strdup(parent);
	add_sels(&e->selectors, sels);
	return e;
}

static void
create_ok(struct ds_entry *e, int64_t now)
{
	int res = 1;

	assert_int_equal(ds_entries_create(t.ds, &e, 1, &res, now), 0);
	assert_int_equal(res, 0);
}

static int
create_one(struct ds_entry *e, int64_t now)
{
	int res = 1;

	assert_int_equal(ds_entries_create(t.ds, &e, 1, &res, now), 0);
	return res;
}

static int
update_one(struct ds_entry *e, int64_t now)
{
	int res = 1;

	assert_int_equal(ds_entries_update(t.ds, &e, 1, &res, now), 0);
	return res;
}

static int64_t
revision(void)
{
	int64_t rev = -1;

	assert_int_equal(ds_revision(t.ds, &rev), 0);
	return rev;
}

static int64_t
count_entries(const struct ds_entry_filter *f)
{
	int64_t n = -1;

	assert_int_equal(ds_entries_count(t.ds, f, &n), 0);
	return n;
}

static void
append(char *buf, size_t len, const char *s)
{
	if (*buf != '\0')
		strncat(buf, " ", len - strlen(buf) - 1);
	strncat(buf, s, len - strlen(buf) - 1);
}

/*
 * The entries matching f are exactly want (IDs in order), listed in one
 * page, page by page with limit 1, and counted.
 */
static void
expect_entries(const struct ds_entry_filter *f, const char *want)
{
	struct ds_entry_list	 l;
	char			 got[1024] = "", paged[1024] = "", *tok = NULL;
	size_t			 i;

	assert_int_equal(ds_entries_list(t.ds, f, NULL, 0, &l), 0);
	for (i = 0; i < l.n; i++)
		append(got, sizeof(got), l.v[i]->id);
	assert_null(l.next_token);
	assert_string_equal(got, want);
	assert_int_equal(count_entries(f), (int64_t)l.n);
	ds_entry_list_free(&l);
	do {
		assert_int_equal(ds_entries_list(t.ds, f, tok, 1, &l), 0);
		free(tok);
		tok = l.next_token != NULL ? strdup(l.next_token) : NULL;
		assert_true(l.n <= 1);
		if (l.n == 1)
			append(paged, sizeof(paged), l.v[0]->id);
		ds_entry_list_free(&l);
	} while (tok != NULL);
	assert_string_equal(paged, want);
}

static void
expect_nodes(const struct ds_node_filter *f, const char *want)
{
	struct ds_node_list	 l;
	char			 got[1024] = "";
	int64_t			 n;
	size_t			 i;

	assert_int_equal(ds_nodes_list(t.ds, f, NULL, 0, &l), 0);
	/* Short names: the last path segment. */
	for (i = 0; i < l.n; i++)
		append(got, sizeof(got), strrchr(l.v[i]->spiffe_id, '/') + 1);
	assert_null(l.next_token);
	assert_string_equal(got, want);
	assert_int_equal(ds_nodes_count(t.ds, f, &n), 0);
	assert_int_equal(n, (int64_t)l.n);
	ds_node_list_free(&l);
}

/* Whether needle occurs in any file of the store. */
static int
store_contains(const char *needle)
{
	const char *const	*sfx;
	char			 path[600], *buf;
	FILE			*f;
	long			 n;
	int			 hit = 0;

	for (sfx = t.b->files; *sfx != NULL && !hit; sfx++) {
		snprintf(path, sizeof(path), "%s%s", t.conn, *sfx);
		if ((f = fopen(path, "rb")) == NULL)
			continue;
		assert_int_equal(fseek(f, 0, SEEK_END), 0);
		n = ftell(f);
		rewind(f);
		buf = malloc((size_t)n + 1);
		assert_non_null(buf);
		assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
		fclose(f);
		hit = memmem(buf, (size_t)n, needle, strlen(needle)) != NULL;
		free(buf);
	}
	return hit;
}

/* ---- records and opening ----------------------------------------------- */

static void
test_open_and_records(void **state)
{
	struct ds_entry		*e, *d;
	struct ds_node		*n;
	struct ds_entry_list	 el;
	struct ds_node_list	 nl;
	struct ds_audit		 a;
	struct ds		*x = (struct ds *)&x;
	const char		*why = NULL;
	char			 name[32];
	int			 i;

	assert_int_equal(ds_open("oracle", "x", &x, &why), WICK_ERR_CONFIG);
	assert_null(x);
	assert_non_null(why);
	assert_int_equal(ds_open(NULL, "x", &x, &why), WICK_ERR_CONFIG);
	assert_int_equal(ds_open(t.b->type, "", &x, &why), WICK_ERR_CONFIG);
	assert_int_equal(ds_open(t.b->type, NULL, &x, NULL), WICK_ERR_CONFIG);
	fresh();
	assert_string_equal(ds_backend(t.ds), t.b->type);
	assert_true(ds_schema_version() >= 1);
	assert_int_equal(revision(), 0);

	e = mk("id", "spiffe://td/a", "spiffe://td/p", "a:1 b:2");
	e->hint = strdup("h");
	e->admin = e->expires_at = e->change_rev = 3;
	for (i = 0; i < DS_MAX_DNS_NAMES; i++) {
		snprintf(name, sizeof(name), "n%d.example", i);
		assert_int_equal(ds_entry_add_dns_name(e, name), 0);
	}
	assert_int_equal(ds_entry_add_dns_name(e, "x"), WICK_ERR_LIMIT);
	for (i = 0; i < DS_MAX_FEDERATES_WITH; i++)
		assert_int_equal(ds_entry_add_federates_with(e, "spiffe://f"),
		    0);
	assert_int_equal(ds_entry_add_federates_with(e, "spiffe://f"),
	    WICK_ERR_LIMIT);
	assert_int_equal(ds_entry_dup(e, &d), 0);
	assert_string_equal(d->id, "id");
	assert_string_equal(d->hint, "h");
	assert_true(selector_set_equal(&d->selectors, &e->selectors));
	assert_int_equal(d->ndns_names, DS_MAX_DNS_NAMES);
	assert_string_equal(d->dns_names[5], "n5.example");
	assert_int_equal(d->nfederates_with, DS_MAX_FEDERATES_WITH);
	assert_int_equal(d->admin, 3);
	assert_int_equal(d->change_rev, 3);
	ds_entry_free(d);
	ds_entry_free(e);
	ds_entry_free(NULL);

	n = ds_node_new();
	assert_true(ds_node_banned(n));		/* no serials at all */
	n->serial = strdup("");
	n->new_serial = strdup("ab");
	assert_false(ds_node_banned(n));
	ds_node_free(n);
	ds_node_free(NULL);

	memset(&el, 0, sizeof(el));
	ds_entry_list_free(&el);
	memset(&nl, 0, sizeof(nl));
	ds_node_list_free(&nl);
	memset(&a, 0, sizeof(a));
	a.kind = strdup("k");
	ds_audit_free_members(&a);
	assert_null(a.kind);
}

/* ---- entries ----------------------------------------------------------- */

static void
test_entry_round_trip(void **state)
{
	struct ds_entry	*e, *g, *h;
	int64_t		 rev;

	fresh();
	e = mk(NULL, "spiffe://td/a", "spiffe://td/p", "unix:uid:1 unix:gid:2");
	e->x509_svid_ttl = 600;
	e->jwt_svid_ttl = 60;
	e->admin = e->downstream = e->store_svid = 1;
	e->expires_at = 4000000000LL;
	e->hint = strdup("h");
	assert_int_equal(ds_entry_add_dns_name(e, "b.example"), 0);
	assert_int_equal(ds_entry_add_dns_name(e, "a.example"), 0);
	assert_int_equal(ds_entry_add_federates_with(e, "spiffe://y.org"), 0);
	assert_int_equal(ds_entry_add_federates_with(e, "spiffe://x.org"), 0);
	create_ok(e, 1000);
	/* A UUIDv4 was made, and the create filled in the rest. */
	assert_int_equal(strlen(e->id), 36);
	assert_int_equal(e->id[14], '4');
	assert_non_null(strchr("89ab", e->id[19]));
	assert_int_equal(e->created_at, 1000);
	assert_int_equal(e->revision_number, 0);
	rev = revision();
	assert_int_equal(e->change_rev, rev);
	assert_true(rev > 0);

	assert_int_equal(ds_entry_get(t.ds, e->id, &g), 0);
	assert_string_equal(g->id, e->id);
	assert_string_equal(g->spiffe_id, "spiffe://td/a");
	assert_string_equal(g->parent_id, "spiffe://td/p");
	assert_true(selector_set_equal(&g->selectors, &e->selectors));
	assert_int_equal(g->x509_svid_ttl, 600);
	assert_int_equal(g->jwt_svid_ttl, 60);
	assert_true(g->admin && g->downstream && g->store_svid);
	assert_int_equal(g->expires_at, 4000000000LL);
	assert_string_equal(g->hint, "h");
	assert_int_equal(g->ndns_names, 2);
	assert_string_equal(g->dns_names[0], "b.example");	/* order kept */
	assert_string_equal(g->dns_names[1], "a.example");
	assert_int_equal(g->nfederates_with, 2);
	assert_string_equal(g->federates_with[0], "spiffe://y.org");
	assert_string_equal(g->federates_with[1], "spiffe://x.org");
	assert_int_equal(g->created_at, 1000);
	assert_int_equal(g->revision_number, 0);
	assert_int_equal(g->change_rev, rev);
	ds_entry_free(g);

	/* A caller-chosen ID is kept; no hint comes back as "", flags 0. */
	h = mk("my-entry", "spiffe://td/b", "spiffe://td/p", "unix:uid:1");
	create_ok(h, 1001);
	assert_string_equal(h->id, "my-entry");
	assert_int_equal(ds_entry_get(t.ds, "my-entry", &g), 0);
	assert_string_equal(g->hint, "");
	assert_false(g->admin || g->downstream || g->store_svid);
	assert_int_equal(g->ndns_names + g->nfederates_with, 0);
	assert_int_equal(g->expires_at, 0);
	ds_entry_free(g);

	assert_int_equal(ds_entry_get(t.ds, "nope", &g), WICK_ERR_NOT_FOUND);
	assert_null(g);
	assert_int_equal(ds_entry_get(t.ds, "", &g), WICK_ERR_NOT_FOUND);
	assert_int_equal(ds_entry_get(t.ds, NULL, &g), WICK_ERR_NOT_FOUND);
	ds_entry_free(e);
	ds_entry_free(h);
}

static void
test_entry_duplicates(void **state)
{
	struct ds_entry	*a, *b;
	int64_t		 rev;

	fresh();
	a = mk(NULL, "spiffe://td/a", "spiffe://td/p", "unix:uid:1 unix:gid:1");
	create_ok(a, 1);
	rev = revision();
	/* Same SPIFFE ID, parent and selector set: EXISTS, ID handed back. */
	b = mk("other-id", "spiffe://td/a", "spiffe://td/p",
	    "unix:gid:1 unix:uid:1");
	assert_int_equal(create_one(b, 2), WICK_ERR_EXISTS);
	assert_string_equal(b->id, a->id);
	ds_entry_free(b);
	/* The same ID twice. */
	b = mk(a->id, "spiffe://td/z", "spiffe://td/p", "unix:uid:9");
	assert_int_equal(create_one(b, 2), WICK_ERR_EXISTS);
	assert_string_equal(b->id, a->id);
	ds_entry_free(b);
	assert_int_equal(revision(), rev);	/* nothing was logged */
	assert_int_equal(count_entries(NULL), 1);
	/* Any difference makes a new entry. */
	b = mk(NULL, "spiffe://td/a", "spiffe://td/p", "unix:uid:1");
	create_ok(b, 3);
	ds_entry_free(b);
	b = mk(NULL, "spiffe://td/a", "spiffe://td/q", "unix:uid:1 unix:gid:1");
	create_ok(b, 3);
	ds_entry_free(b);
	b = mk(NULL, "spiffe://td/b", "spiffe://td/p", "unix:uid:1 unix:gid:1");
	create_ok(b, 3);
	ds_entry_free(b);
	assert_int_equal(count_entries(NULL), 4);
	ds_entry_free(a);
}

static void
test_entry_update(void **state)
{
	struct ds_entry	*e, *o, *g;
	const char	*why;
	int64_t		 rev;

	fresh();
	e = mk(NULL, "spiffe://td/a", "spiffe://td/p", "unix:uid:1");
	o = mk(NULL, "spiffe://td/o", "spiffe://td/p", "unix:uid:9");
	assert_int_equal(ds_entry_add_dns_name(e, "old.example"), 0);
	create_ok(e, 10);
	create_ok(o, 10);

	/* Every field but id and created_at is replaced. */
	free(e->spiffe_id);
	e->spiffe_id = strdup("spiffe://td/a2");
	free(e->parent_id);
	e->parent_id = strdup("spiffe://td/p2");
	selector_set_cleanup(&e->selectors);
	selector_set_init(&e->selectors);
	add_sels(&e->selectors, "k8s:ns:x k8s:sa:y");
	free(e->dns_names[0]);
	e->dns_names[0] = strdup("new.example");
	assert_int_equal(ds_entry_add_federates_with(e, "spiffe://f.org"), 0);
	free(e->hint);
	e->hint = strdup("hint2");
	e->x509_svid_ttl = 7;
	e->jwt_svid_ttl = 8;
	e->admin = e->downstream = e->store_svid = 1;
	e->expires_at = 99;
	e->created_at = 12345;		/* ignored */
	assert_int_equal(update_one(e, 20), 0);
	rev = revision();
	assert_int_equal(e->revision_number, 1);
	assert_int_equal(e->created_at, 10);
	assert_int_equal(e->change_rev, rev);
	assert_int_equal(ds_entry_get(t.ds, e->id, &g), 0);
	assert_string_equal(g->spiffe_id, "spiffe://td/a2");
	assert_string_equal(g->parent_id, "spiffe://td/p2");
	assert_true(selector_set_equal(&g->selectors, &e->selectors));
	assert_int_equal(g->ndns_names, 1);
	assert_string_equal(g->dns_names[0], "new.example");
	assert_int_equal(g->nfederates_with, 1);
	assert_string_equal(g->hint, "hint2");
	assert_int_equal(g->x509_svid_ttl, 7);
	assert_int_equal(g->jwt_svid_ttl, 8);
	assert_true(g->admin && g->downstream && g->store_svid);
	assert_int_equal(g->expires_at, 99);
	assert_int_equal(g->revision_number, 1);
	assert_int_equal(g->created_at, 10);
	assert_int_equal(g->change_rev, rev);
	ds_entry_free(g);
	/* Writing it back unchanged is still an update. */
	assert_int_equal(update_one(e, 21), 0);
	assert_int_equal(e->revision_number, 2);
	assert_true(e->change_rev > rev);

	/* Updating into a duplicate of another entry is refused. */
	rev = revision();
	free(e->spiffe_id);
	e->spiffe_id = strdup("spiffe://td/o");
	free(e->parent_id);
	e->parent_id = strdup("spiffe://td/p");
	selector_set_cleanup(&e->selectors);
	selector_set_init(&e->selectors);
	assert_int_equal(selector_set_add_str(&e->selectors, "unix:uid:9",
	    &why), 0);
	assert_int_equal(update_one(e, 30), WICK_ERR_EXISTS);
	free(e->id);
	e->id = strdup("unknown");
	assert_int_equal(update_one(e, 30), WICK_ERR_NOT_FOUND);
	free(e->id);
	e->id = NULL;
	assert_int_equal(update_one(e, 30), WICK_ERR_INVALID);
	assert_int_equal(revision(), rev);
	assert_int_equal(ds_entry_get(t.ds, o->id, &g), 0);
	assert_int_equal(g->revision_number, 0);
	ds_entry_free(g);
	ds_entry_free(e);
	ds_entry_free(o);
}

static void
test_entry_batches(void **state)
{
	struct ds_entry	*v[4], *g;
	const char	*ids[4];
	char		*keep[4];
	int		 res[4], i;

	fresh();
	/* Middle items fail (no selectors; a duplicate of item 0 in the
	 * same batch); the others land. */
	v[0] = mk(NULL, "spiffe://td/a", "spiffe://td/p", "u:1");
	v[1] = mk(NULL, "spiffe://td/b", "spiffe://td/p", "u:2");
	selector_set_cleanup(&v[1]->selectors);
	selector_set_init(&v[1]->selectors);
	v[2] = mk(NULL, "spiffe://td/a", "spiffe://td/p", "u:1");
	v[3] = mk(NULL, "spiffe://td/d", "spiffe://td/p", "u:4");
	assert_int_equal(ds_entries_create(t.ds, v, 4, res, 5), 0);
	assert_int_equal(res[0], 0);
	assert_int_equal(res[1], WICK_ERR_INVALID);
	assert_int_equal(res[2], WICK_ERR_EXISTS);
	assert_string_equal(v[2]->id, v[0]->id);
	assert_int_equal(res[3], 0);
	assert_int_equal(count_entries(NULL), 2);
	assert_int_equal(ds_entry_get(t.ds, v[3]->id, &g), 0);
	ds_entry_free(g);

	/* A batch update with an unknown middle item. */
	for (i = 0; i < 4; i++)
		keep[i] = strdup(v[i]->id != NULL ? v[i]->id : "");
	free(v[1]->id);
	v[1]->id = strdup("missing");
	add_sels(&v[1]->selectors, "u:2");
	v[2]->x509_svid_ttl = 5;		/* v[2] is v[0] by ID now */
	v[0]->x509_svid_ttl = 3;
	assert_int_equal(ds_entries_update(t.ds, v, 3, res, 6), 0);
	assert_int_equal(res[0], 0);
	assert_int_equal(res[1], WICK_ERR_NOT_FOUND);
	assert_int_equal(res[2], 0);
	assert_int_equal(v[2]->revision_number, 2);
	assert_int_equal(ds_entry_get(t.ds, keep[0], &g), 0);
	assert_int_equal(g->x509_svid_ttl, 5);
	assert_int_equal(g->revision_number, 2);
	ds_entry_free(g);

	/* A batch delete with unknown and empty middle items. */
	ids[0] = keep[0];
	ids[1] = "missing";
	ids[2] = "";
	ids[3] = keep[3];
	assert_int_equal(ds_entries_delete(t.ds, ids, 4, res, 7), 0);
	assert_int_equal(res[0], 0);
	assert_int_equal(res[1], WICK_ERR_NOT_FOUND);
	assert_int_equal(res[2], WICK_ERR_NOT_FOUND);
	assert_int_equal(res[3], 0);
	assert_int_equal(count_entries(NULL), 0);
	assert_int_equal(ds_entries_delete(t.ds, ids, 1, res, 8), 0);
	assert_int_equal(res[0], WICK_ERR_NOT_FOUND);
	/* Empty batches are fine. */
	assert_int_equal(ds_entries_create(t.ds, v, 0, res, 9), 0);
	assert_int_equal(ds_entries_delete(t.ds, ids, 0, res, 9), 0);
	for (i = 0; i < 4; i++) {
		ds_entry_free(v[i]);
		free(keep[i]);
	}
}

/* ---- entry filters and paging ------------------------------------------ */

static void
filter_set(void)
{
	static const struct {
		const char	*id, *spiffe, *parent, *sels, *fed, *hint;
		int		 downstream;
	} rows[] = {
		{ "e1", "spiffe://td/s1", "spiffe://td/p1", "unix:uid:1", NULL,
		    "h1", 0 },
		{ "e2", "spiffe://td/s2", "spiffe://td/p1",
		    "unix:uid:1 unix:gid:1", "spiffe://a.org", NULL, 1 },
		{ "e3", "spiffe://td/s3", "spiffe://td/p2", "unix:gid:1",
		    "spiffe://a.org spiffe://b.org", NULL, 0 },
		{ "e4", "spiffe://td/s4", "spiffe://td/p2", "k8s:ns:x",
		    "spiffe://b.org", "h1", 0 },
		{ "e5", "spiffe://td/s1", "spiffe://td/p1",
		    "unix:uid:1 unix:gid:1 k8s:ns:x", NULL, NULL, 0 },
		{ "e6", "spiffe://td/s6", "spiffe://td/p3", "docker:label:y",
		    "spiffe://c.org", NULL, 1 },
	};
	struct ds_entry	*e;
	char		*fed, *tok, *save;
	size_t		 i;

	fresh();
	/* Created out of ID order: lists come back in ID order anyway. */
	for (i = sizeof(rows) / sizeof(rows[0]); i-- > 0;) {
		e = mk(rows[i].id, rows[i].spiffe, rows[i].parent,
		    rows[i].sels);
		e->hint = rows[i].hint != NULL ? strdup(rows[i].hint) : NULL;
		e->downstream = rows[i].downstream;
		fed = strdup(rows[i].fed != NULL ? rows[i].fed : "");
		for (tok = strtok_r(fed, " ", &save); tok != NULL;
		    tok = strtok_r(NULL, " ", &save))
			assert_int_equal(ds_entry_add_federates_with(e, tok),
			    0);
		free(fed);
		create_ok(e, 1);
		ds_entry_free(e);
	}
}

static void
test_entry_filters(void **state)
{
	static const char *const modes[4][2] = {
		/* {uid:1, gid:1}, then {uid:1}, per DS_MATCH_* */
		{ "e2", "e1" },
		{ "e1 e2 e3", "e1" },
		{ "e2 e5", "e1 e2 e5" },
		{ "e1 e2 e3 e5", "e1 e2 e5" },
	};
	static const char *const fmodes[4][2] = {
		/* {a.org, b.org}, then {a.org} */
		{ "e3", "e2" },
		{ "e2 e3 e4", "e2" },
		{ "e3", "e2 e3" },
		{ "e2 e3 e4", "e2 e3" },
	};
	const char		*fed2[] = { "spiffe://a.org",
				    "spiffe://b.org" };
	struct ds_entry_filter	 f;
	struct selector_set	 two, one, none;
	int			 m;

	filter_set();
	selector_set_init(&two);
	selector_set_init(&one);
	selector_set_init(&none);
	add_sels(&two, "unix:uid:1 unix:gid:1");
	add_sels(&one, "unix:uid:1");

	expect_entries(NULL, "e1 e2 e3 e4 e5 e6");
	memset(&f, 0, sizeof(f));
	expect_entries(&f, "e1 e2 e3 e4 e5 e6");
	f.selectors = &none;			/* empty: no filter */
	expect_entries(&f, "e1 e2 e3 e4 e5 e6");
	for (m = DS_MATCH_EXACT; m <= DS_MATCH_ANY; m++) {
		memset(&f, 0, sizeof(f));
		f.selector_match = (enum ds_match)m;
		f.selectors = &two;
		expect_entries(&f, modes[m][0]);
		f.selectors = &one;
		expect_entries(&f, modes[m][1]);
		memset(&f, 0, sizeof(f));
		f.federates_match = (enum ds_match)m;
		f.federates_with = fed2;
		f.nfederates_with = 2;
		expect_entries(&f, fmodes[m][0]);
		f.nfederates_with = 1;
		expect_entries(&f, fmodes[m][1]);
	}
	memset(&f, 0, sizeof(f));
	f.parent_id = "spiffe://td/p1";
	expect_entries(&f, "e1 e2 e5");
	f.spiffe_id = "spiffe://td/s1";
	expect_entries(&f, "e1 e5");
	f.parent_id = NULL;
	expect_entries(&f, "e1 e5");
	f.spiffe_id = "spiffe://td/none";
	expect_entries(&f, "");
	memset(&f, 0, sizeof(f));
	f.hint = "h1";
	expect_entries(&f, "e1 e4");
	f.hint = "";				/* entries without a hint */
	expect_entries(&f, "e2 e3 e5 e6");
	memset(&f, 0, sizeof(f));
	f.downstream_only = 1;
	expect_entries(&f, "e2 e6");
	/* Filters are ANDed. */
	memset(&f, 0, sizeof(f));
	f.parent_id = "spiffe://td/p1";
	f.selectors = &two;
	f.selector_match = DS_MATCH_ANY;
	expect_entries(&f, "e1 e2 e5");
	f.selector_match = DS_MATCH_SUPERSET;
	f.federates_with = fed2;
	f.nfederates_with = 1;
	f.federates_match = DS_MATCH_ANY;
	expect_entries(&f, "e2");
	f.downstream_only = 1;
	f.hint = "h1";
	expect_entries(&f, "");
	/* Bad match modes. */
	{
		struct ds_entry_list	l;
		int64_t			n;

		memset(&f, 0, sizeof(f));
		f.selectors = &one;
		f.selector_match = (enum ds_match)7;
		assert_int_equal(ds_entries_list(t.ds, &f, NULL, 0, &l),
		    WICK_ERR_INVALID);
		assert_int_equal(ds_entries_count(t.ds, &f, &n),
		    WICK_ERR_INVALID);
	}
	selector_set_cleanup(&two);
	selector_set_cleanup(&one);
}

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Walk every page of f with limit; the IDs must be created[] (sorted)
 * exactly, ascending, each once, in `pages` pages. */
static void
page_all(const struct ds_entry_filter *f, size_t limit, char **want,
    size_t nwant, size_t pages)
{
	struct ds_entry_list	 l;
	char			*tok = NULL, *prev = NULL;
	size_t			 seen = 0, np = 0, i;

	if (limit == 0 || limit > DS_MAX_PAGE)
		limit = DS_MAX_PAGE;
	do {
		assert_int_equal(ds_entries_list(t.ds, f, tok, limit, &l), 0);
		free(tok);
		tok = l.next_token != NULL ? strdup(l.next_token) : NULL;
		np++;
		assert_true(l.n <= limit);
		if (tok != NULL) {
			assert_int_equal(l.n, limit);
			assert_string_equal(tok, l.v[l.n - 1]->id);
		}
		for (i = 0; i < l.n; i++) {
			assert_true(seen < nwant);
			assert_string_equal(l.v[i]->id, want[seen]);
			assert_true(prev == NULL || strcmp(prev,
			    l.v[i]->id) < 0);
			free(prev);
			prev = strdup(l.v[i]->id);
			seen++;
		}
		ds_entry_list_free(&l);
	} while (tok != NULL);
	free(prev);
	assert_int_equal(seen, nwant);
	assert_int_equal(np, pages);
}

#define NBIG	1100	/* more than a backend would fetch in one go */

static void
test_entry_paging(void **state)
{
	struct ds_entry_filter	  f;
	struct ds_entry_list	  l;
	struct ds_entry		**v;
	const char		 *fw[] = { "spiffe://fed.org" };
	char			**all, **p, **fed, sp[64];
	char			  big[DS_ENTRY_ID_MAX + 2];
	size_t			  np = 0, nf = 0, i;
	int			 *res;

	fresh();
	v = calloc(NBIG, sizeof(*v));
	res = calloc(NBIG, sizeof(*res));
	all = calloc(NBIG, sizeof(*all));
	p = calloc(NBIG, sizeof(*p));
	fed = calloc(NBIG, sizeof(*fed));
	assert_true(v != NULL && res != NULL && all != NULL && p != NULL &&
	    fed != NULL);
	for (i = 0; i < NBIG; i++) {
		snprintf(sp, sizeof(sp), "spiffe://td/w%zu", i);
		v[i] = mk(NULL, sp, i % 3 == 0 ? "spiffe://td/p" :
		    "spiffe://td/q", "unix:uid:1");
		if (i % 97 == 0)
			assert_int_equal(ds_entry_add_federates_with(v[i],
			    fw[0]), 0);
	}
	assert_int_equal(ds_entries_create(t.ds, v, NBIG, res, 1), 0);
	for (i = 0; i < NBIG; i++) {
		assert_int_equal(res[i], 0);
		all[i] = v[i]->id;
		if (i % 3 == 0)
			p[np++] = v[i]->id;
		if (i % 97 == 0)
			fed[nf++] = v[i]->id;
	}
	qsort(all, NBIG, sizeof(*all), cmp_str);
	qsort(p, np, sizeof(*p), cmp_str);
	qsort(fed, nf, sizeof(*fed), cmp_str);

	assert_int_equal(count_entries(NULL), NBIG);
	page_all(NULL, 250, all, NBIG, 5);
	page_all(NULL, 0, all, NBIG, 1);		/* 0: DS_MAX_PAGE */
	page_all(NULL, DS_MAX_PAGE + 5, all, NBIG, 1);
	page_all(NULL, NBIG, all, NBIG, 1);		/* exact fit */
	memset(&f, 0, sizeof(f));
	f.parent_id = "spiffe://td/p";
	page_all(&f, 7, p, np, (np + 6) / 7);
	assert_int_equal(count_entries(&f), (int64_t)np);
	/* A filter only C can apply, matching a dozen rows far apart. */
	memset(&f, 0, sizeof(f));
	f.federates_with = fw;
	f.nfederates_with = 1;
	f.federates_match = DS_MATCH_EXACT;
	page_all(&f, 5, fed, nf, (nf + 4) / 5);
	page_all(&f, nf, fed, nf, 1);
	assert_int_equal(count_entries(&f), (int64_t)nf);
	/* A token past the end is an empty last page. */
	assert_int_equal(ds_entries_list(t.ds, NULL, "~", 5, &l), 0);
	assert_int_equal(l.n, 0);
	assert_null(l.next_token);
	ds_entry_list_free(&l);
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	assert_int_equal(ds_entries_list(t.ds, NULL, big, 5, &l),
	    WICK_ERR_INVALID);
	for (i = 0; i < NBIG; i++)
		ds_entry_free(v[i]);
	free(v);
	free(res);
	free(all);
	free(p);
	free(fed);
}

static void
test_entry_prune(void **state)
{
	struct ds_entry	*a, *b, *c, *g;
	size_t		 n = 99;
	int64_t		 rev;

	fresh();
	a = mk(NULL, "spiffe://td/a", "spiffe://td/p", "x:1");
	b = mk(NULL, "spiffe://td/b", "spiffe://td/p", "x:2");
	c = mk(NULL, "spiffe://td/c", "spiffe://td/p", "x:3");
	a->expires_at = 100;
	c->expires_at = 200;
	create_ok(a, 1);
	create_ok(b, 1);
	create_ok(c, 1);
	rev = revision();
	assert_int_equal(ds_entries_prune(t.ds, 50, &n), 0);
	assert_int_equal(n, 0);
	assert_int_equal(ds_entries_prune(t.ds, 100, &n), 0);
	assert_int_equal(n, 0);			/* expires_at == now stays */
	assert_int_equal(revision(), rev);
	assert_int_equal(ds_entries_prune(t.ds, 101, &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(revision(), rev + 1);	/* a delete is logged */
	assert_int_equal(ds_entry_get(t.ds, a->id, &g), WICK_ERR_NOT_FOUND);
	assert_int_equal(ds_entries_prune(t.ds, 1000000, &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(count_entries(NULL), 1);	/* b never expires */
	assert_int_equal(ds_entry_get(t.ds, b->id, &g), 0);
	ds_entry_free(g);
	ds_entry_free(a);
	ds_entry_free(b);
	ds_entry_free(c);
}

/* ---- change log -------------------------------------------------------- */

struct change {
	int64_t			rev;
	enum ds_change_kind	kind;
	enum ds_change_op	op;
	char			obj[128];
};

struct changes {
	struct change	v[32];
	int		n;
	int		stop_at;	/* return 42 at this call (1-based) */
};

static int
collect(void *arg, int64_t rev, enum ds_change_kind kind,
    enum ds_change_op op, const char *obj)
{
	struct changes *c = arg;

	assert_true(c->n < 32);
	assert_true(c->n == 0 || rev > c->v[c->n - 1].rev);
	c->v[c->n].rev = rev;
	c->v[c->n].kind = kind;
	c->v[c->n].op = op;
	snprintf(c->v[c->n].obj, sizeof(c->v[c->n].obj), "%s", obj);
	return ++c->n == c->stop_at ? 42 : 0;
}

static void
test_change_log(void **state)
{
	static const struct {
		enum ds_change_kind	kind;
		enum ds_change_op	op;	/* 0: create or update */
		const char		*obj;	/* NULL: the entry ID */
	} want[] = {
		{ DS_CHANGE_ENTRY, DS_OP_CREATE, NULL },
		{ DS_CHANGE_ENTRY, DS_OP_UPDATE, NULL },
		{ DS_CHANGE_NODE, DS_OP_CREATE, "spiffe://td/agent" },
		{ DS_CHANGE_NODE, DS_OP_UPDATE, "spiffe://td/agent" },
		{ DS_CHANGE_NODE, DS_OP_UPDATE, "spiffe://td/agent" },
		{ DS_CHANGE_NODE, DS_OP_UPDATE, "spiffe://td/agent" },
		{ DS_CHANGE_NODE, DS_OP_DELETE, "spiffe://td/agent" },
		{ DS_CHANGE_BUNDLE, 0, "spiffe://b.org" },
		{ DS_CHANGE_BUNDLE, DS_OP_UPDATE, "spiffe://b.org" },
		{ DS_CHANGE_BUNDLE, DS_OP_DELETE, "spiffe://b.org" },
		{ DS_CHANGE_ENTRY, DS_OP_DELETE, NULL },
	};
	struct ds_entry		*e, *d;
	struct ds_node		*n;
	struct selector_set	 sel;
	struct changes		 c;
	const char		*id;
	int64_t			 rev;
	size_t			 i;
	int			 res;

	fresh();
	memset(&c, 0, sizeof(c));
	assert_int_equal(ds_changes_since(t.ds, 0, 0, collect, &c), 0);
	assert_int_equal(c.n, 0);

	e = mk(NULL, "spiffe://td/a", "spiffe://td/p", "x:1");
	create_ok(e, 1);
	d = mk(NULL, "spiffe://td/a", "spiffe://td/p", "x:1");
	assert_int_equal(create_one(d, 1), WICK_ERR_EXISTS);
	assert_int_equal(update_one(e, 2), 0);
	free(d->id);
	d->id = strdup("unknown");
	assert_int_equal(update_one(d, 2), WICK_ERR_NOT_FOUND);

	n = ds_node_new();
	n->spiffe_id = strdup("spiffe://td/agent");
	n->attestation_type = strdup("join_token");
	n->serial = strdup("01");
	assert_int_equal(ds_node_create(t.ds, n, 3), 0);
	assert_int_equal(ds_node_create(t.ds, n, 3), WICK_ERR_EXISTS);
	assert_int_equal(ds_node_set_serials(t.ds, n->spiffe_id, "01", 9,
	    "02", 10, 4), 0);
	selector_set_init(&sel);
	add_sels(&sel, "a:b");
	assert_int_equal(ds_node_set_selectors(t.ds, n->spiffe_id, &sel, 5),
	    0);
	assert_int_equal(ds_node_ban(t.ds, n->spiffe_id, 6), 0);
	assert_int_equal(ds_node_delete(t.ds, n->spiffe_id, 7), 0);
	assert_int_equal(ds_node_delete(t.ds, n->spiffe_id, 7),
	    WICK_ERR_NOT_FOUND);
	assert_int_equal(ds_node_ban(t.ds, n->spiffe_id, 7),
	    WICK_ERR_NOT_FOUND);

	assert_int_equal(ds_bundle_set(t.ds, "spiffe://b.org",
	    (const uint8_t *)"1", 1, 8), 0);
	assert_int_equal(ds_bundle_set(t.ds, "spiffe://b.org",
	    (const uint8_t *)"2", 1, 9), 0);
	assert_int_equal(ds_bundle_delete(t.ds, "spiffe://b.org", 10), 0);
	assert_int_equal(ds_bundle_delete(t.ds, "spiffe://b.org", 10),
	    WICK_ERR_NOT_FOUND);
	id = e->id;
	assert_int_equal(ds_entries_delete(t.ds, &id, 1, &res, 11), 0);
	assert_int_equal(res, 0);

	/* Neither the journal, the audit trail nor tokens are logged. */
	rev = revision();
	assert_int_equal(ds_ca_journal_set(t.ds, "s1", (const uint8_t *)"j", 1,
	    12), 0);
	assert_int_equal(ds_audit_append(t.ds, 12, "k", "a", 1, NULL), 0);
	assert_int_equal(ds_join_token_create(t.ds, "tok", 100), 0);
	assert_int_equal(ds_join_token_consume(t.ds, "tok", 13), 0);
	assert_int_equal(revision(), rev);

	assert_int_equal(ds_changes_since(t.ds, 0, 0, collect, &c), 0);
	assert_int_equal(c.n, (int)(sizeof(want) / sizeof(want[0])));
	for (i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		assert_int_equal(c.v[i].kind, want[i].kind);
		if (want[i].op != 0)
			assert_int_equal(c.v[i].op, want[i].op);
		else
			assert_true(c.v[i].op == DS_OP_CREATE ||
			    c.v[i].op == DS_OP_UPDATE);
		assert_string_equal(c.v[i].obj, want[i].obj != NULL ?
		    want[i].obj : e->id);
	}
	assert_int_equal(c.v[c.n - 1].rev, rev);
	assert_int_equal(e->change_rev, c.v[1].rev);	/* the update */

	/* since and limit (revisions may have gaps: take them as logged). */
	i = (size_t)c.v[c.n - 4].rev;
	memset(&c, 0, sizeof(c));
	assert_int_equal(ds_changes_since(t.ds, (int64_t)i, 0, collect, &c),
	    0);
	assert_int_equal(c.n, 3);
	memset(&c, 0, sizeof(c));
	assert_int_equal(ds_changes_since(t.ds, 0, 4, collect, &c), 0);
	assert_int_equal(c.n, 4);
	i = (size_t)c.v[3].rev;
	memset(&c, 0, sizeof(c));
	assert_int_equal(ds_changes_since(t.ds, (int64_t)i, 2, collect, &c),
	    0);
	assert_int_equal(c.n, 2);
	assert_true(c.v[0].rev > (int64_t)i);
	memset(&c, 0, sizeof(c));
	assert_int_equal(ds_changes_since(t.ds, rev, 0, collect, &c), 0);
	assert_int_equal(c.n, 0);
	memset(&c, 0, sizeof(c));
	c.stop_at = 2;
	assert_int_equal(ds_changes_since(t.ds, 0, 0, collect, &c), 42);
	assert_int_equal(c.n, 2);

	/* Revisions only grow, even after everything is deleted. */
	ds_entry_free(d);
	d = mk(NULL, "spiffe://td/new", "spiffe://td/p", "x:1");
	create_ok(d, 14);
	assert_true(d->change_rev > rev);
	assert_int_equal(revision(), d->change_rev);
	selector_set_cleanup(&sel);
	ds_node_free(n);
	ds_entry_free(e);
	ds_entry_free(d);
}

/* ---- nodes ------------------------------------------------------------- */

static struct ds_node *
mk_node(const char *name, const char *type, const char *serial,
    const char *new_serial, int64_t exp, int reattest, const char *sels)
{
	struct ds_node	*n = ds_node_new();
	char		 id[128];

	snprintf(id, sizeof(id), "spiffe://td/spire/agent/%s/%s", type, name);
	n->spiffe_id = strdup(id);
	n->attestation_type = strdup(type);
	n->serial = strdup(serial);
	n->new_serial = strdup(new_serial);
	n->expires_at = exp;
	n->new_expires_at = new_serial[0] != '\0' ? exp + 100 : 0;
	n->can_reattest = reattest;
	add_sels(&n->selectors, sels);
	return n;
}

static void
test_nodes(void **state)
{
	struct ds_node		*n, *g, *bad;
	struct selector_set	 sel;
	const char		*id;

	fresh();
	n = mk_node("a", "x509pop", "0a", "", 500, 1,
	    "x509pop:ca:1 x509pop:cn:a");
	id = n->spiffe_id;
	assert_int_equal(ds_node_create(t.ds, n, 7), 0);
	assert_int_equal(ds_node_create(t.ds, n, 8), WICK_ERR_EXISTS);
	assert_int_equal(ds_node_get(t.ds, id, &g), 0);
	assert_string_equal(g->spiffe_id, id);
	assert_string_equal(g->attestation_type, "x509pop");
	assert_string_equal(g->serial, "0a");
	assert_int_equal(g->expires_at, 500);
	assert_string_equal(g->new_serial, "");
	assert_int_equal(g->new_expires_at, 0);
	assert_int_equal(g->can_reattest, 1);
	assert_int_equal(g->created_at, 7);
	assert_true(selector_set_equal(&g->selectors, &n->selectors));
	assert_false(ds_node_banned(g));
	ds_node_free(g);

	/* Serials as given, NULL as "". */
	assert_int_equal(ds_node_set_serials(t.ds, id, "0a", 500, "0b", 900,
	    9), 0);
	assert_int_equal(ds_node_get(t.ds, id, &g), 0);
	assert_string_equal(g->serial, "0a");
	assert_string_equal(g->new_serial, "0b");
	assert_int_equal(g->new_expires_at, 900);
	assert_int_equal(g->created_at, 7);
	ds_node_free(g);
	assert_int_equal(ds_node_set_serials(t.ds, id, "0b", 900, NULL, 0,
	    10), 0);
	assert_int_equal(ds_node_get(t.ds, id, &g), 0);
	assert_string_equal(g->serial, "0b");
	assert_string_equal(g->new_serial, "");
	ds_node_free(g);

	/* Selectors are replaced, not merged. */
	selector_set_init(&sel);
	add_sels(&sel, "tpm:pub_hash:1");
	assert_int_equal(ds_node_set_selectors(t.ds, id, &sel, 11), 0);
	assert_int_equal(ds_node_get(t.ds, id, &g), 0);
	assert_true(selector_set_equal(&g->selectors, &sel));
	ds_node_free(g);
	selector_set_cleanup(&sel);
	selector_set_init(&sel);
	assert_int_equal(ds_node_set_selectors(t.ds, id, &sel, 12), 0);
	assert_int_equal(ds_node_get(t.ds, id, &g), 0);
	assert_int_equal(g->selectors.n, 0);
	ds_node_free(g);

	/* Ban keeps the record without serials. */
	assert_int_equal(ds_node_ban(t.ds, id, 13), 0);
	assert_int_equal(ds_node_get(t.ds, id, &g), 0);
	assert_true(ds_node_banned(g));
	assert_string_equal(g->serial, "");
	assert_string_equal(g->new_serial, "");
	assert_string_equal(g->attestation_type, "x509pop");
	ds_node_free(g);

	/* Unknown agents. */
	id = "spiffe://td/spire/agent/none";
	assert_int_equal(ds_node_get(t.ds, id, &g), WICK_ERR_NOT_FOUND);
	assert_null(g);
	assert_int_equal(ds_node_set_serials(t.ds, id, "1", 1, "", 0, 14),
	    WICK_ERR_NOT_FOUND);
	assert_int_equal(ds_node_set_selectors(t.ds, id, &sel, 14),
	    WICK_ERR_NOT_FOUND);
	assert_int_equal(ds_node_ban(t.ds, id, 14), WICK_ERR_NOT_FOUND);
	assert_int_equal(ds_node_delete(t.ds, id, 14), WICK_ERR_NOT_FOUND);
	assert_int_equal(ds_node_get(t.ds, "", &g), WICK_ERR_NOT_FOUND);

	/* Evict. */
	assert_int_equal(ds_node_delete(t.ds, n->spiffe_id, 15), 0);
	assert_int_equal(ds_node_get(t.ds, n->spiffe_id, &g),
	    WICK_ERR_NOT_FOUND);
	assert_int_equal(ds_node_create(t.ds, n, 16), 0);	/* again */

	bad = ds_node_new();
	bad->spiffe_id = strdup("spiffe://td/x");
	assert_int_equal(ds_node_create(t.ds, bad, 1), WICK_ERR_INVALID);
	free(bad->spiffe_id);
	bad->spiffe_id = strdup("");
	bad->attestation_type = strdup("t");
	assert_int_equal(ds_node_create(t.ds, bad, 1), WICK_ERR_INVALID);
	ds_node_free(bad);
	selector_set_cleanup(&sel);
	ds_node_free(n);
}

static void
test_node_lists(void **state)
{
	struct ds_node_filter	 f;
	struct ds_node_list	 l;
	struct ds_node		*n;
	struct selector_set	 one, three;
	char			 name[16], *tok = NULL, *prev = NULL;
	size_t			 seen = 0, pages = 0, i;
	int			 m;
	static const char *const modes[4][2] = {
		/* {ca:a}, then {ca:a, cn:b, tpm:pub:1}, per DS_MATCH_* */
		{ "n02", "" },
		{ "n02", "n04 n02 n03" },
		{ "n02 n03", "" },
		{ "n02 n03", "n04 n02 n03" },
	};

	fresh();
	n = mk_node("n01", "join_token", "01", "", 100, 0, "");
	assert_int_equal(ds_node_create(t.ds, n, 1), 0);
	ds_node_free(n);
	n = mk_node("n02", "x509pop", "02", "", 200, 1, "x509pop:ca:a");
	assert_int_equal(ds_node_create(t.ds, n, 1), 0);
	ds_node_free(n);
	n = mk_node("n03", "x509pop", "", "", 300, 1,
	    "x509pop:ca:a x509pop:cn:b");
	assert_int_equal(ds_node_create(t.ds, n, 1), 0);
	ds_node_free(n);
	n = mk_node("n04", "tpm", "", "04", 50, 1, "tpm:pub:1");
	assert_int_equal(ds_node_create(t.ds, n, 1), 0);
	ds_node_free(n);
	for (i = 5; i <= 12; i++) {
		snprintf(name, sizeof(name), "n%02zu", i);
		n = mk_node(name, "join_token", name, "", 1000 + (int64_t)i,
		    0, "");
		assert_int_equal(ds_node_create(t.ds, n, 1), 0);
		ds_node_free(n);
	}

	memset(&f, 0, sizeof(f));
	f.attestation_type = "x509pop";
	expect_nodes(&f, "n02 n03");
	memset(&f, 0, sizeof(f));
	f.banned = 1;
	expect_nodes(&f, "n03");		/* n04 has a new serial */
	f.banned = 2;				/* in SPIFFE ID order */
	expect_nodes(&f, "n01 n05 n06 n07 n08 n09 n10 n11 n12 n04 n02");
	f.banned = 0;
	f.expires_before = 201;
	expect_nodes(&f, "n01 n04 n02");
	memset(&f, 0, sizeof(f));
	f.can_reattest = 1;
	expect_nodes(&f, "n04 n02 n03");
	f.can_reattest = 2;
	f.attestation_type = "join_token";
	expect_nodes(&f, "n01 n05 n06 n07 n08 n09 n10 n11 n12");
	memset(&f, 0, sizeof(f));
	f.attestation_type = "x509pop";
	f.banned = 2;
	expect_nodes(&f, "n02");

	selector_set_init(&one);
	selector_set_init(&three);
	add_sels(&one, "x509pop:ca:a");
	add_sels(&three, "x509pop:ca:a x509pop:cn:b tpm:pub:1");
	for (m = DS_MATCH_EXACT; m <= DS_MATCH_ANY; m++) {
		/* Nodes without selectors match no selector filter. */
		memset(&f, 0, sizeof(f));
		f.selector_match = (enum ds_match)m;
		f.selectors = &one;
		expect_nodes(&f, modes[m][0]);
		f.selectors = &three;
		expect_nodes(&f, modes[m][1]);
	}
	memset(&f, 0, sizeof(f));
	f.banned = 3;
	assert_int_equal(ds_nodes_list(t.ds, &f, NULL, 0, &l),
	    WICK_ERR_INVALID);

	/* Pages of 5 in SPIFFE ID order. */
	do {
		assert_int_equal(ds_nodes_list(t.ds, NULL, tok, 5, &l), 0);
		free(tok);
		tok = l.next_token != NULL ? strdup(l.next_token) : NULL;
		pages++;
		for (i = 0; i < l.n; i++) {
			assert_true(prev == NULL || strcmp(prev,
			    l.v[i]->spiffe_id) < 0);
			free(prev);
			prev = strdup(l.v[i]->spiffe_id);
			seen++;
		}
		ds_node_list_free(&l);
	} while (tok != NULL);
	free(prev);
	assert_int_equal(seen, 12);
	assert_int_equal(pages, 3);
	selector_set_cleanup(&one);
	selector_set_cleanup(&three);
}

/* ---- join tokens ------------------------------------------------------- */

static void
sha256_hex(const char *s, char out[65])
{
	uint8_t		md[32];
	unsigned	len, i;

	assert_int_equal(EVP_Digest(s, strlen(s), md, &len, EVP_sha256(),
	    NULL), 1);
	for (i = 0; i < 32; i++)
		snprintf(out + 2 * i, 3, "%02x", md[i]);
}

/* n children race to consume token; how many succeeded. */
static int
race_consume(const char *token, int n)
{
	pid_t	pids[8];
	int	i, status, wins = 0;

	for (i = 0; i < n; i++) {
		if ((pids[i] = fork()) == 0) {
			struct ds	*d;
			const char	*why;
			int		 r;

			if (ds_open(t.b->type, t.conn, &d, &why) != 0)
				_exit(2);
			r = ds_join_token_consume(d, token, 10);
			ds_close(d);
			_exit(r == 0 ? 0 : r == WICK_ERR_NOT_FOUND ? 1 : 3);
		}
		assert_true(pids[i] > 0);
	}
	for (i = 0; i < n; i++) {
		assert_int_equal(waitpid(pids[i], &status, 0), pids[i]);
		assert_true(WIFEXITED(status));
		assert_true(WEXITSTATUS(status) <= 1);
		wins += WEXITSTATUS(status) == 0;
	}
	return wins;
}

static void
test_join_tokens(void **state)
{
	const char	*tok = "4f1c2d9a-5b7e-4c1d-9e8f-0a1b2c3d4e5f";
	char		 hash[65];
	size_t		 n = 99;

	fresh();
	assert_int_equal(ds_join_token_create(t.ds, tok, 100), 0);
	assert_int_equal(ds_join_token_create(t.ds, tok, 200),
	    WICK_ERR_EXISTS);
	assert_int_equal(ds_join_token_create(t.ds, "", 100),
	    WICK_ERR_INVALID);
	assert_int_equal(ds_join_token_create(t.ds, NULL, 100),
	    WICK_ERR_INVALID);
	if (t.b->files != NULL) {
		/* Stored as its SHA-256 in hex; the token is nowhere. */
		sha256_hex(tok, hash);
		assert_true(store_contains(hash));
		assert_false(store_contains(tok));
	}
	assert_int_equal(ds_join_token_consume(t.ds, "other", 50),
	    WICK_ERR_NOT_FOUND);
	assert_int_equal(ds_join_token_consume(t.ds, "", 50),
	    WICK_ERR_NOT_FOUND);
	assert_int_equal(ds_join_token_consume(t.ds, tok, 50), 0);
	assert_int_equal(ds_join_token_consume(t.ds, tok, 50),
	    WICK_ERR_NOT_FOUND);

	/* Expired: refused and gone; expires_at == now is expired. */
	assert_int_equal(ds_join_token_create(t.ds, "old", 50), 0);
	assert_int_equal(ds_join_token_consume(t.ds, "old", 50),
	    WICK_ERR_EXPIRED);
	assert_int_equal(ds_join_token_consume(t.ds, "old", 10),
	    WICK_ERR_NOT_FOUND);

	assert_int_equal(ds_join_token_create(t.ds, "stale1", 10), 0);
	assert_int_equal(ds_join_token_create(t.ds, "stale2", 20), 0);
	assert_int_equal(ds_join_token_create(t.ds, "fresh", 100), 0);
	assert_int_equal(ds_join_tokens_prune(t.ds, 30, &n), 0);
	assert_int_equal(n, 2);
	assert_int_equal(ds_join_token_consume(t.ds, "stale1", 5),
	    WICK_ERR_NOT_FOUND);
	assert_int_equal(ds_join_tokens_prune(t.ds, 30, &n), 0);
	assert_int_equal(n, 0);

	/* Single use under concurrent callers, each with a connection. */
	assert_int_equal(ds_join_token_create(t.ds, "race", 100), 0);
	ds_close(t.ds);
	t.ds = NULL;
	assert_int_equal(race_consume("race", 6), 1);
	reopen();
	assert_int_equal(ds_join_token_consume(t.ds, "fresh", 50), 0);
	if (t.b->files != NULL) {
		ds_close(t.ds);		/* checkpointed into the main file */
		t.ds = NULL;
		assert_false(store_contains(tok));
		assert_false(store_contains("fresh"));
		reopen();
	}
}

/* ---- bundles, CA journal, audit ---------------------------------------- */

struct seen_bundles {
	char	names[256];
	size_t	bytes;
	int	stop;		/* return 7 after this many */
	int	n;
};

static int
bundle_cb(void *arg, const char *td, const uint8_t *p, size_t n)
{
	struct seen_bundles *s = arg;

	append(s->names, sizeof(s->names), td);
	s->bytes += n;
	assert_true(n == 0 || p != NULL);
	return ++s->n == s->stop ? 7 : 0;
}

static void
test_bundles(void **state)
{
	static const uint8_t	 bin[] = { 0, 1, 0, 255, 0 };
	struct seen_bundles	 s;
	uint8_t			*p = (uint8_t *)&p;
	size_t			 n = 5;

	fresh();
	assert_int_equal(ds_bundle_get(t.ds, "spiffe://a.org", &p, &n),
	    WICK_ERR_NOT_FOUND);
	assert_null(p);
	assert_int_equal(n, 0);
	memset(&s, 0, sizeof(s));
	assert_int_equal(ds_bundles_foreach(t.ds, bundle_cb, &s), 0);
	assert_int_equal(s.n, 0);
	assert_int_equal(ds_bundle_set(t.ds, "spiffe://c.org",
	    (const uint8_t *)"one", 3, 1), 0);
	assert_int_equal(ds_bundle_set(t.ds, "spiffe://c.org",
	    (const uint8_t *)"two!", 4, 2), 0);		/* replaced */
	assert_int_equal(ds_bundle_set(t.ds, "spiffe://a.org", bin,
	    sizeof(bin), 2), 0);
	assert_int_equal(ds_bundle_set(t.ds, "spiffe://b.org", NULL, 0, 2),
	    0);
	assert_int_equal(ds_bundle_get(t.ds, "spiffe://c.org", &p, &n), 0);
	assert_int_equal(n, 4);
	assert_memory_equal(p, "two!", 4);
	free(p);
	assert_int_equal(ds_bundle_get(t.ds, "spiffe://a.org", &p, &n), 0);
	assert_int_equal(n, sizeof(bin));
	assert_memory_equal(p, bin, sizeof(bin));
	free(p);
	assert_int_equal(ds_bundle_get(t.ds, "spiffe://b.org", &p, &n), 0);
	assert_int_equal(n, 0);
	free(p);
	/* Ordered by trust domain; a non-zero return stops and is returned. */
	memset(&s, 0, sizeof(s));
	assert_int_equal(ds_bundles_foreach(t.ds, bundle_cb, &s), 0);
	assert_string_equal(s.names,
	    "spiffe://a.org spiffe://b.org spiffe://c.org");
	assert_int_equal(s.bytes, sizeof(bin) + 4);
	memset(&s, 0, sizeof(s));
	s.stop = 2;
	assert_int_equal(ds_bundles_foreach(t.ds, bundle_cb, &s), 7);
	assert_int_equal(s.n, 2);
	assert_int_equal(ds_bundle_delete(t.ds, "spiffe://b.org", 3), 0);
	assert_int_equal(ds_bundle_delete(t.ds, "spiffe://b.org", 3),
	    WICK_ERR_NOT_FOUND);
	assert_int_equal(ds_bundle_get(t.ds, "spiffe://b.org", &p, &n),
	    WICK_ERR_NOT_FOUND);
	assert_int_equal(ds_bundle_set(t.ds, "", bin, 1, 3),
	    WICK_ERR_INVALID);
}

static void
test_ca_journal(void **state)
{
	uint8_t	*p = (uint8_t *)&p;
	size_t	 n = 5;

	fresh();
	assert_int_equal(ds_ca_journal_get(t.ds, "s1", &p, &n),
	    WICK_ERR_NOT_FOUND);
	assert_null(p);
	assert_int_equal(n, 0);
	assert_int_equal(ds_ca_journal_set(t.ds, "s1", (const uint8_t *)"{}",
	    2, 1), 0);
	assert_int_equal(ds_ca_journal_get(t.ds, "s1", &p, &n), 0);
	assert_int_equal(n, 2);
	assert_memory_equal(p, "{}", 2);
	free(p);
	assert_int_equal(ds_ca_journal_set(t.ds, "s1",
	    (const uint8_t *)"{\"a\":1}", 7, 2), 0);
	assert_int_equal(ds_ca_journal_get(t.ds, "s1", &p, &n), 0);
	assert_int_equal(n, 7);
	assert_memory_equal(p, "{\"a\":1}", 7);
	free(p);
	/* Another server on the same store: its own journal. */
	assert_int_equal(ds_ca_journal_get(t.ds, "s2", &p, &n),
	    WICK_ERR_NOT_FOUND);
	assert_int_equal(ds_ca_journal_set(t.ds, "s2", (const uint8_t *)"[2]",
	    3, 3), 0);
	assert_int_equal(ds_ca_journal_get(t.ds, "s2", &p, &n), 0);
	assert_memory_equal(p, "[2]", 3);
	free(p);
	assert_int_equal(ds_ca_journal_get(t.ds, "s1", &p, &n), 0);
	assert_memory_equal(p, "{\"a\":1}", 7);
	free(p);
	assert_int_equal(ds_ca_journal_get(t.ds, "", &p, &n),
	    WICK_ERR_INVALID);
	assert_int_equal(ds_ca_journal_set(t.ds, NULL, (const uint8_t *)"x",
	    1, 3), WICK_ERR_INVALID);
}

/* SQLite: the single journal of schema 3 goes to the first server. */
/*
 * For the migration cases, SQLite only: a fresh store, closed, so that
 * its schema can be put back to an older build's.  0 on another backend.
 */
static int
fresh_sqlite_closed(void)
{
	if (t.b->sql == NULL || strcmp(t.b->type, "sqlite3") != 0)
		return 0;
	fresh();
	ds_close(t.ds);
	t.ds = NULL;
	return 1;
}

static void
test_ca_journal_migration(void **state)
{
	uint8_t	*p = NULL;
	size_t	 n = 0;

	if (!fresh_sqlite_closed())
		return;
	assert_int_equal(t.b->sql(t.conn,
	    "DROP TABLE ca_journals; CREATE TABLE ca_journal ("
	    " id INTEGER PRIMARY KEY CHECK (id = 1), data BLOB NOT NULL,"
	    " updated_at INTEGER NOT NULL);"
	    "INSERT INTO ca_journal VALUES (1, X'6f6c64', 5);"
	    "DELETE FROM schema_migrations WHERE version > 3;"), 0);
	reopen();
	assert_int_equal(ds_ca_journal_get(t.ds, "s1", &p, &n), 0);
	assert_int_equal(n, 3);
	assert_memory_equal(p, "old", 3);
	free(p);
	assert_int_equal(ds_ca_journal_set(t.ds, "s1", (const uint8_t *)"new",
	    3, 6), 0);
	/* Claimed: no other server gets it any more. */
	assert_int_equal(ds_ca_journal_get(t.ds, "s2", &p, &n),
	    WICK_ERR_NOT_FOUND);
	assert_int_equal(ds_ca_journal_get(t.ds, "s1", &p, &n), 0);
	assert_memory_equal(p, "new", 3);
	free(p);
}

/* ---- two servers' authorities in one trust bundle ---- */

#define MC_DAY	86400
#define MC_T0	1700000000

static int
bundle_has_cert(const struct bundle *b, const struct ca_manager *m,
    enum ca_kind kind)
{
	const struct ca_authority	*a = ca_manager_active(m, kind);
	size_t				 i;
	int				 j;

	assert_non_null(a);
	if (kind == CA_KIND_X509) {
		for (j = 0; j < sk_X509_num(b->x509); j++)
			if (X509_cmp(sk_X509_value(b->x509, j), a->cert) == 0)
				return 1;
		return 0;
	}
	for (i = 0; i < b->nkeys[BUNDLE_USE_JWT]; i++)
		if (strcmp(b->keys[BUNDLE_USE_JWT][i].kid, a->kid) == 0)
			return 1;
	return 0;
}

static struct bundle *
merge(struct ca_manager *m, struct keymgr *km, int64_t now)
{
	struct bundle	*b = NULL;
	int		 stored;

	assert_int_equal(server_bundle_merge(t.ds, "example.org", m, km,
	    NULL, now, &b, &stored), 0);
	assert_non_null(b);
	return b;
}

static void
test_bundle_two_servers(void **state)
{
	struct ca_manager_config	 c;
	struct ca_manager		*m1, *m2;
	struct keymgr			*k1, *k2;
	struct bundle			*b;
	X509				*old1;
	int				 changed;

	fresh();
	memset(&c, 0, sizeof(c));
	c.trust_domain = "example.org";
	c.ca_key_type = PKEY_EC_P256;
	c.jwt_key_type = PKEY_EC_P256;
	c.ca_ttl = MC_DAY;
	assert_int_equal(keymgr_open_memory(&k1), 0);
	assert_int_equal(keymgr_open_memory(&k2), 0);
	assert_string_not_equal(keymgr_server_id(k1), keymgr_server_id(k2));
	assert_int_equal(ca_manager_new(&c, k1, NULL, 0, &m1), 0);
	assert_int_equal(ca_manager_new(&c, k2, NULL, 0, &m2), 0);
	assert_int_equal(ca_manager_tick(m1, MC_T0, &changed), 0);
	assert_int_equal(ca_manager_tick(m2, MC_T0 + 10, &changed), 0);

	/* Both servers' authorities, whichever stores last. */
	bundle_free(merge(m1, k1, MC_T0));
	b = merge(m2, k2, MC_T0 + 10);
	assert_int_equal(sk_X509_num(b->x509), 2);
	assert_int_equal(b->nkeys[BUNDLE_USE_JWT], 2);
	assert_int_equal(b->nkeys[BUNDLE_USE_WIT], 2);
	assert_int_equal(b->sequence, 2);
	bundle_free(b);
	b = merge(m1, k1, MC_T0 + 20);
	assert_int_equal(sk_X509_num(b->x509), 2);
	assert_int_equal(b->sequence, 2);	/* nothing new */
	assert_true(bundle_has_cert(b, m2, CA_KIND_X509));
	assert_true(bundle_has_cert(b, m2, CA_KIND_JWT));
	bundle_free(b);

	/* Server 1 rotates: its new CA joins, server 2's stays. */
	old1 = X509_dup(ca_manager_active(m1, CA_KIND_X509)->cert);
	assert_non_null(old1);
	assert_int_equal(ca_manager_tick(m1, MC_T0 + MC_DAY / 2 + 60,
	    &changed), 0);
	bundle_free(merge(m1, k1, MC_T0 + MC_DAY / 2 + 60));
	assert_int_equal(ca_manager_tick(m1, MC_T0 + MC_DAY * 5 / 6 + 60,
	    &changed), 0);
	assert_int_equal(changed, 1);
	assert_int_not_equal(X509_cmp(old1,
	    ca_manager_active(m1, CA_KIND_X509)->cert), 0);
	b = merge(m1, k1, MC_T0 + MC_DAY * 5 / 6 + 60);
	assert_int_equal(sk_X509_num(b->x509), 3);
	assert_int_equal(b->nkeys[BUNDLE_USE_JWT], 3);
	assert_true(bundle_has_cert(b, m1, CA_KIND_X509));
	assert_true(bundle_has_cert(b, m2, CA_KIND_X509));
	assert_true(bundle_has_cert(b, m2, CA_KIND_JWT));
	bundle_free(b);
	/* Server 2 storing again keeps server 1's rotation. */
	b = merge(m2, k2, MC_T0 + MC_DAY * 5 / 6 + 70);
	assert_int_equal(sk_X509_num(b->x509), 3);
	bundle_free(b);

	/* Past expiry and the grace: the retired authority of server 1
	 * and the expired one of server 2 (not rotated) are pruned; server
	 * 1's current CA stays. */
	b = merge(m1, k1, MC_T0 + 2 * MC_DAY + 120);
	assert_int_equal(sk_X509_num(b->x509), 1);
	assert_true(bundle_has_cert(b, m1, CA_KIND_X509));
	assert_int_not_equal(X509_cmp(sk_X509_value(b->x509, 0), old1), 0);
	assert_int_equal(b->nkeys[BUNDLE_USE_JWT], 1);
	bundle_free(b);

	X509_free(old1);
	ca_manager_free(m1);
	ca_manager_free(m2);
	keymgr_free(k1);
	keymgr_free(k2);
}

struct seen_audit {
	struct ds_audit	v[8];
	int		n;
	int		stop;
};

static int
audit_cb(void *arg, const struct ds_audit *a)
{
	struct seen_audit *s = arg;

	assert_true(s->n < 8);
	s->v[s->n].id = a->id;
	s->v[s->n].at = a->at;
	s->v[s->n].ok = a->ok;
	s->v[s->n].kind = strdup(a->kind);
	s->v[s->n].actor = strdup(a->actor);
	s->v[s->n].detail_json = strdup(a->detail_json);
	return ++s->n == s->stop ? 5 : 0;
}

static void
audit_clear(struct seen_audit *s)
{
	int i;

	for (i = 0; i < s->n; i++)
		ds_audit_free_members(&s->v[i]);
	memset(s, 0, sizeof(*s));
}

static void
test_audit(void **state)
{
	struct seen_audit	s;
	int64_t			third;
	int			i;

	fresh();
	memset(&s, 0, sizeof(s));
	assert_int_equal(ds_audit_since(t.ds, 0, 0, audit_cb, &s), 0);
	assert_int_equal(s.n, 0);
	assert_int_equal(ds_audit_append(t.ds, 5, "entry.create", "uid:0", 1,
	    "{\"id\":\"x\"}"), 0);
	assert_int_equal(ds_audit_append(t.ds, 6, "agent.attest",
	    "spiffe://td/agent", 0, NULL), 0);
	for (i = 0; i < 3; i++)
		assert_int_equal(ds_audit_append(t.ds, 7 + i, "svid.x509",
		    "a", 1, "{}"), 0);
	assert_int_equal(ds_audit_append(t.ds, 9, NULL, "a", 1, "{}"),
	    WICK_ERR_INVALID);
	assert_int_equal(ds_audit_since(t.ds, 0, 0, audit_cb, &s), 0);
	assert_int_equal(s.n, 5);
	assert_int_equal(s.v[0].at, 5);
	assert_string_equal(s.v[0].kind, "entry.create");
	assert_string_equal(s.v[0].actor, "uid:0");
	assert_string_equal(s.v[0].detail_json, "{\"id\":\"x\"}");
	assert_int_equal(s.v[0].ok, 1);
	assert_string_equal(s.v[1].kind, "agent.attest");
	assert_int_equal(s.v[1].ok, 0);
	assert_string_equal(s.v[1].detail_json, "{}");	/* NULL detail */
	for (i = 1; i < 5; i++)
		assert_true(s.v[i].id > s.v[i - 1].id);
	third = s.v[2].id;
	audit_clear(&s);
	assert_int_equal(ds_audit_since(t.ds, third, 0, audit_cb, &s), 0);
	assert_int_equal(s.n, 2);
	assert_true(s.v[0].id > third);
	audit_clear(&s);
	assert_int_equal(ds_audit_since(t.ds, 0, 2, audit_cb, &s), 0);
	assert_int_equal(s.n, 2);
	audit_clear(&s);
	s.stop = 3;
	assert_int_equal(ds_audit_since(t.ds, 0, 0, audit_cb, &s), 5);
	assert_int_equal(s.n, 3);
	audit_clear(&s);
}


/* ---- the audit chain ---------------------------------------------------- */

struct chain_seen {
	struct ds_audit	v[64];
	int		n;
};

static int
chain_cb(void *arg, const struct ds_audit *a)
{
	struct chain_seen *c = arg;

	assert_true(c->n < 64);
	c->v[c->n] = *a;
	c->v[c->n].kind = strdup(a->kind);
	c->v[c->n].actor = strdup(a->actor);
	c->v[c->n].subject = strdup(a->subject);
	c->v[c->n].detail_json = strdup(a->detail_json);
	c->n++;
	return 0;
}

static void
chain_clear(struct chain_seen *c)
{
	int i;

	for (i = 0; i < c->n; i++)
		ds_audit_free_members(&c->v[i]);
	c->n = 0;
}

/* Walk the whole chain in slices of max rows. */
static void
verify_all(struct ds_audit_verify *v, size_t max)
{
	int steps = 0;

	memset(v, 0, sizeof(*v));
	while (!v->done) {
		assert_int_equal(ds_audit_verify_step(t.ds, v, max), 0);
		assert_true(++steps < 100000);
	}
}

/* n events at times from at on, subject spiffe://td/w<i>. */
static void
append_n(int n, int64_t at)
{
	char	subj[64], detail[64];
	int	i;

	for (i = 0; i < n; i++) {
		snprintf(subj, sizeof(subj), "spiffe://td/w%d", i);
		snprintf(detail, sizeof(detail), "{\"i\":%d,\"a\":\"x\"}", i);
		assert_int_equal(ds_audit_record(t.ds, at + i, "svid.x509",
		    "spiffe://td/agent", subj, i % 2, detail), 0);
	}
}

/*
 * Details the server wrote in canonical form are stored as they are: the
 * same bytes, and so the same hash, as through ds_audit_record(); the
 * chain verifies.  What is not an object's encoding is refused.
 */
static void
test_audit_canonical(void **state)
{
	static const char	 canon[] = "{\"a\":\"x\",\"i\":[1,2]}";
	struct ds_audit_verify	 v;
	struct chain_seen	 c;
	char			 h[DS_AUDIT_HASH_HEX];

	fresh();
	assert_int_equal(ds_audit_record(t.ds, 100, "svid.x509", "a", "s", 1,
	    "{\"i\": [1, 2], \"a\": \"x\"}"), 0);
	assert_int_equal(ds_audit_record_canonical(t.ds, 100, "svid.x509",
	    "a", "s", 1, canon), 0);
	assert_int_equal(ds_audit_record_canonical(t.ds, 1, "k", "a", NULL, 1,
	    "[1]"), WICK_ERR_INVALID);
	assert_int_equal(ds_audit_record_canonical(t.ds, 1, "k", "a", NULL, 1,
	    "{"), WICK_ERR_INVALID);
	assert_int_equal(ds_audit_record_canonical(t.ds, 1, "k", "a", NULL, 1,
	    NULL), WICK_ERR_INVALID);
	memset(&c, 0, sizeof(c));
	assert_int_equal(ds_audit_list(t.ds, NULL, 0, chain_cb, &c), 0);
	assert_int_equal(c.n, 2);
	assert_string_equal(c.v[0].detail_json, canon);
	assert_string_equal(c.v[1].detail_json, canon);
	assert_string_equal(c.v[1].prev_hash, c.v[0].hash);
	/* The same event but for its place in the chain. */
	c.v[1].seq = c.v[0].seq;
	memcpy(c.v[1].prev_hash, c.v[0].prev_hash, sizeof(c.v[1].prev_hash));
	assert_int_equal(ds_audit_hash(&c.v[1], h), 0);
	assert_string_equal(h, c.v[0].hash);
	chain_clear(&c);
	verify_all(&v, 0);
	assert_int_equal(v.bad_seq, 0);
	assert_int_equal(v.count, 2);
}

static void
test_audit_chain(void **state)
{
	struct ds_audit_filter	f;
	struct ds_audit_verify	v;
	struct chain_seen	c;
	char			h[DS_AUDIT_HASH_HEX];
	int			i;

	fresh();
	verify_all(&v, 0);
	assert_int_equal(v.bad_seq, 0);
	assert_int_equal(v.count, 0);
	append_n(5, 100);
	assert_int_equal(ds_audit_record(t.ds, 1, "k", "a", NULL, 1, "[1]"),
	    WICK_ERR_INVALID);
	assert_int_equal(ds_audit_record(t.ds, 1, "k", "a", NULL, 1, "{x"),
	    WICK_ERR_INVALID);
	memset(&c, 0, sizeof(c));
	assert_int_equal(ds_audit_list(t.ds, NULL, 0, chain_cb, &c), 0);
	assert_int_equal(c.n, 5);
	for (i = 0; i < 5; i++) {
		assert_int_equal(c.v[i].seq, i + 1);
		assert_int_equal(strlen(c.v[i].hash), 64);
		if (i == 0)
			assert_string_equal(c.v[i].prev_hash, "0000000000000000"
			    "000000000000000000000000000000000000000000000000");
		else
			assert_string_equal(c.v[i].prev_hash,
			    c.v[i - 1].hash);
		assert_int_equal(ds_audit_hash(&c.v[i], h), 0);
		assert_string_equal(h, c.v[i].hash);
	}
	/* Canonical details: compact, keys sorted. */
	assert_string_equal(c.v[1].detail_json, "{\"a\":\"x\",\"i\":1}");
	assert_string_equal(c.v[3].subject, "spiffe://td/w3");
	/* Any field changes the hash. */
	c.v[2].ok = !c.v[2].ok;
	assert_int_equal(ds_audit_hash(&c.v[2], h), 0);
	assert_string_not_equal(h, c.v[2].hash);
	c.v[2].ok = !c.v[2].ok;
	c.v[2].seq++;
	assert_int_equal(ds_audit_hash(&c.v[2], h), 0);
	assert_string_not_equal(h, c.v[2].hash);
	chain_clear(&c);

	/* Filters and paging. */
	memset(&f, 0, sizeof(f));
	f.spiffe_id = "spiffe://td/w2";
	assert_int_equal(ds_audit_list(t.ds, &f, 0, chain_cb, &c), 0);
	assert_int_equal(c.n, 1);
	assert_int_equal(c.v[0].seq, 3);
	chain_clear(&c);
	f.spiffe_id = "spiffe://td/agent";
	f.since = 103;
	assert_int_equal(ds_audit_list(t.ds, &f, 0, chain_cb, &c), 0);
	assert_int_equal(c.n, 2);
	chain_clear(&c);
	memset(&f, 0, sizeof(f));
	f.after_seq = 2;
	assert_int_equal(ds_audit_list(t.ds, &f, 2, chain_cb, &c), 0);
	assert_int_equal(c.n, 2);
	assert_int_equal(c.v[0].seq, 3);
	assert_int_equal(c.v[1].seq, 4);
	chain_clear(&c);

	verify_all(&v, 0);
	assert_int_equal(v.bad_seq, 0);
	assert_int_equal(v.count, 5);
	verify_all(&v, 2);
	assert_int_equal(v.bad_seq, 0);
	assert_int_equal(v.count, 5);
	reopen();
	append_n(1, 200);
	verify_all(&v, 1);
	assert_int_equal(v.bad_seq, 0);
	assert_int_equal(v.count, 6);
}

/* Tamper with a closed store, reopen, verify: the first broken seq. */
static void
tamper(const char *sql, int64_t bad, const char *why)
{
	struct ds_audit_verify v;

	fresh();
	append_n(6, 100);
	ds_close(t.ds);
	t.ds = NULL;
	assert_int_equal(t.b->sql(t.conn, sql), 0);
	reopen();
	verify_all(&v, 2);
	assert_int_equal(v.bad_seq, bad);
	assert_non_null(strstr(v.why, why));
	print_message("%s -> seq %lld: %s\n", sql, (long long)v.bad_seq,
	    v.why);
	/* A broken chain is never pruned away. */
	{
		size_t n = 99;

		assert_int_equal(ds_audit_prune(t.ds, 1000, 0, 1000, &n),
		    WICK_ERR_STATE);
		assert_int_equal(n, 0);
	}
}

static void
test_audit_tamper(void **state)
{
	if (t.b->sql == NULL)
		return;
	tamper("UPDATE audit SET detail = '{\"i\":9}' WHERE seq = 3", 3,
	    "hash mismatch");
	tamper("UPDATE audit SET ok = 1 - ok WHERE seq = 4", 4,
	    "hash mismatch");
	tamper("UPDATE audit SET at = at + 1 WHERE seq = 1", 1,
	    "hash mismatch");
	tamper("DELETE FROM audit WHERE seq = 3", 3, "missing");
	tamper("DELETE FROM audit WHERE seq = 1", 1, "missing");
	/* Two events swapped: their places in the chain. */
	tamper("UPDATE audit SET seq = -1 WHERE seq = 2;"
	    "UPDATE audit SET seq = 2 WHERE seq = 5;"
	    "UPDATE audit SET seq = 5 WHERE seq = -1", 2, "broken link");
	/* A changed event with a recomputed-looking hash: its successor's
	 * link no longer holds. */
	tamper("UPDATE audit SET hash = (SELECT hash FROM audit WHERE"
	    " seq = 1) WHERE seq = 3", 3, "hash mismatch");
	tamper("UPDATE audit SET prev_hash = '00' WHERE seq = 6", 6,
	    "broken link");
	/* Changes the values read back would hide. */
	tamper("UPDATE audit SET hash = hash || 'ff' WHERE seq = 2", 2,
	    "hash mismatch");
	/* PostgreSQL's text cannot hold a NUL at all. */
	if (strcmp(t.b->type, "sqlite3") == 0)
		tamper("UPDATE audit SET kind = kind || char(0) || 'x'"
		    " WHERE seq = 5", 5, "hash mismatch");
	tamper("UPDATE audit SET ok = 7 WHERE seq = 2", 2, "hash mismatch");
	/* Out of the chain is missing from it. */
	tamper("UPDATE audit SET seq = NULL WHERE seq = 4", 4, "missing");
	/* An anchor edited to skip events still there, or past the head:
	 * the walk would start after them and find nothing wrong. */
	tamper("INSERT INTO audit_anchor (id, seq, hash, at)"
	    " SELECT 1, seq, hash, at FROM audit WHERE seq = 3", 3,
	    "anchor edited");
	tamper("INSERT INTO audit_anchor (id, seq, hash, at)"
	    " SELECT 1, 100, hash, at FROM audit WHERE seq = 6", 6,
	    "anchor edited");
}

static void
test_audit_prune(void **state)
{
	struct ds_audit_verify	v;
	struct chain_seen	c;
	size_t			n;

	fresh();
	append_n(10, 100);		/* at 100..109, seq 1..10 */
	assert_int_equal(ds_audit_prune(t.ds, 100, 0, 500, &n), 0);
	assert_int_equal(n, 0);
	/* At most 3 at a time. */
	assert_int_equal(ds_audit_prune(t.ds, 105, 3, 500, &n), 0);
	assert_int_equal(n, 3);
	verify_all(&v, 2);
	assert_int_equal(v.bad_seq, 0);
	assert_int_equal(v.anchor_seq, 3);
	assert_int_equal(v.count, 8);	/* 4..10 and the prune event */
	assert_int_equal(ds_audit_prune(t.ds, 105, 3, 501, &n), 0);
	assert_int_equal(n, 2);
	reopen();
	verify_all(&v, 0);
	assert_int_equal(v.bad_seq, 0);
	assert_int_equal(v.anchor_seq, 5);
	assert_int_equal(v.count, 7);
	memset(&c, 0, sizeof(c));
	assert_int_equal(ds_audit_list(t.ds, NULL, 0, chain_cb, &c), 0);
	assert_int_equal(c.n, 7);
	assert_int_equal(c.v[0].seq, 6);
	assert_string_equal(c.v[c.n - 1].kind, "audit.prune");
	assert_string_equal(c.v[c.n - 1].actor, "server");
	assert_non_null(strstr(c.v[c.n - 1].detail_json,
	    "\"anchor_seq\":5"));
	chain_clear(&c);
	/* Everything old goes, the prune events too; the chain goes on. */
	assert_int_equal(ds_audit_prune(t.ds, 10000, 0, 10000, &n), 0);
	assert_int_equal(n, 7);
	append_n(2, 20000);
	verify_all(&v, 1);
	assert_int_equal(v.bad_seq, 0);
	assert_int_equal(v.anchor_seq, 12);
	assert_int_equal(v.count, 3);
	/* The first kept event removed after a prune: still caught. */
	if (t.b->sql == NULL)
		return;
	ds_close(t.ds);
	t.ds = NULL;
	assert_int_equal(t.b->sql(t.conn, "DELETE FROM audit WHERE seq = 13"),
	    0);
	reopen();
	verify_all(&v, 0);
	assert_int_equal(v.bad_seq, 13);
}

/* Events recorded before the chain existed are chained by migration. */
static void
test_audit_migration(void **state)
{
	struct ds_audit_verify	v;
	struct chain_seen	c;

	/* SQLite only: PostgreSQL's first schema has the chain. */
	if (!fresh_sqlite_closed())
		return;
	/* Back to schema 2 as an older build left it. */
	assert_int_equal(t.b->sql(t.conn,
	    "DROP TABLE audit_anchor; DROP INDEX audit_seq;"
	    "DROP INDEX audit_at; ALTER TABLE audit DROP COLUMN seq;"
	    "ALTER TABLE audit DROP COLUMN subject;"
	    "ALTER TABLE audit DROP COLUMN prev_hash;"
	    "ALTER TABLE audit DROP COLUMN hash;"
	    "DROP TABLE ca_journals; CREATE TABLE ca_journal ("
	    " id INTEGER PRIMARY KEY CHECK (id = 1), data BLOB NOT NULL,"
	    " updated_at INTEGER NOT NULL);"
	    "DELETE FROM schema_migrations WHERE version > 2;"
	    "INSERT INTO audit (at, kind, actor, ok, detail) VALUES"
	    " (1, 'entry.create', 'uid:0', 1, '{\"n\":1}'),"
	    " (2, 'agent.attest', '127.0.0.1:5', 0, '{}'),"
	    " (3, 'svid.x509', 'spiffe://td/a', 1, '{\"z\":1,\"a\":2}');"),
	    0);
	reopen();
	verify_all(&v, 0);
	assert_int_equal(v.bad_seq, 0);
	assert_int_equal(v.count, 3);
	append_n(2, 10);
	memset(&c, 0, sizeof(c));
	assert_int_equal(ds_audit_list(t.ds, NULL, 0, chain_cb, &c), 0);
	assert_int_equal(c.n, 5);
	assert_int_equal(c.v[2].seq, 3);
	/* As stored: the migration rewrites nothing. */
	assert_string_equal(c.v[2].detail_json, "{\"z\":1,\"a\":2}");
	assert_int_equal(c.v[3].seq, 4);
	assert_string_equal(c.v[3].prev_hash, c.v[2].hash);
	chain_clear(&c);
	verify_all(&v, 0);
	assert_int_equal(v.count, 5);
	assert_int_equal(v.bad_seq, 0);
}

/* Appenders in other processes, and one killed mid-append. */
static void
test_audit_concurrent_and_kill9(void **state)
{
	struct ds_audit_verify	 v;
	struct ds		*d;
	const char		*why;
	pid_t			 pid[3];
	char			 c;
	int			 i, k, r, status[3], tries, fds[2];

	fresh();
	assert_int_equal(pipe(fds), 0);
	for (k = 0; k < 3; k++) {
		if ((pid[k] = fork()) == 0) {
			tries = 0;
			while ((r = ds_open(t.b->type, t.conn, &d, &why)) ==
			    WICK_ERR_UNAVAILABLE && ++tries < 20)
				;
			if (r != 0)
				_exit(2);
			/* The third runs until killed, pausing between
			 * events so that it cannot starve the others of the
			 * lock.  A writer kept waiting past the busy timeout
			 * tries again, as a caller told UNAVAILABLE would. */
			close(fds[0]);
			for (i = 0; k == 2 || i < 100; i++) {
				/* Well under way: the parent may kill it. */
				if (k == 2 && i == 20 && write(fds[1], "x",
				    1) != 1)
					_exit(4);
				if (k == 2)
					usleep(1000);
				tries = 0;
				while ((r = ds_audit_record(d, 1000 + i,
				    "svid.x509", k == 0 ? "a" : "b", "s", 1,
				    "{}")) == WICK_ERR_UNAVAILABLE &&
				    ++tries < 20)
					;
				if (r != 0)
					_exit(3);
			}
			ds_close(d);
			_exit(0);
		}
		if (pid[k] < 0)
			break;
	}
	for (i = 0; k == 3 && i < 100; i++) {
		tries = 0;
		while ((r = ds_audit_append(t.ds, 500 + i, "k", "p", 1,
		    "{}")) == WICK_ERR_UNAVAILABLE && ++tries < 20)
			;
		if (r != 0)
			break;
	}
	/* The endless writer goes whatever happened, before any assert. */
	for (i = 0; i < 2 && i < k; i++)
		if (waitpid(pid[i], &status[i], 0) != pid[i])
			status[i] = -1;
	close(fds[1]);
	if (k == 3) {
		/* A byte once it has appended 20; EOF if it died. */
		if (read(fds[0], &c, 1) != 1)
			r = -1;
		/* Let it run on, so that the kill lands anywhere in an
		 * append (most of which is the commit's fsync). */
		usleep(50 * 1000);
		(void)kill(pid[2], SIGKILL);
		(void)waitpid(pid[2], &status[2], 0);
	}
	close(fds[0]);
	assert_int_equal(k, 3);
	assert_int_equal(r, 0);
	for (i = 0; i < 2; i++)
		assert_true(WIFEXITED(status[i]) && WEXITSTATUS(status[i]) ==
		    0);
	reopen();
	verify_all(&v, 97);
	assert_int_equal(v.bad_seq, 0);
	assert_true(v.count >= 320);
	print_message("%lld events from 4 writers, one killed: chain ok\n",
	    (long long)v.count);
	assert_int_equal(ds_audit_append(t.ds, 9, "k", "p", 1, "{}"), 0);
	verify_all(&v, 0);
	assert_int_equal(v.bad_seq, 0);
}

/* A change and its audit record commit together, or neither does. */
static void
test_audit_tx(void **state)
{
	struct ds_audit_verify	 v;
	struct ds_entry		*e;
	struct ds		*d;
	const char		*why;
	char			 c;
	int			 fds[2], status, res;
	pid_t			 pid;

	fresh();
	assert_int_equal(ds_tx_end(t.ds, 1), WICK_ERR_STATE);
	assert_int_equal(ds_tx_begin(t.ds), 0);
	assert_int_equal(ds_tx_begin(t.ds), WICK_ERR_STATE);
	e = mk("tx-1", "spiffe://td/tx1", "spiffe://td/agent", "unix:uid:1");
	create_ok(e, 10);
	assert_int_equal(ds_audit_record(t.ds, 10, "entry.create", "uid:0",
	    "spiffe://td/tx1", 1, "{}"), 0);
	memset(&v, 0, sizeof(v));
	assert_int_equal(ds_audit_verify_step(t.ds, &v, 0), WICK_ERR_STATE);
	assert_int_equal(ds_tx_end(t.ds, 0), 0);	/* rolled back */
	assert_int_equal(count_entries(NULL), 0);
	verify_all(&v, 0);
	assert_int_equal(v.count, 0);

	assert_int_equal(ds_tx_begin(t.ds), 0);
	create_ok(e, 11);
	/* A failed item inside keeps the rest. */
	assert_int_equal(create_one(e, 11), WICK_ERR_EXISTS);
	assert_int_equal(ds_audit_record(t.ds, 11, "entry.create", "uid:0",
	    "spiffe://td/tx1", 1, "{}"), 0);
	assert_int_equal(ds_tx_end(t.ds, 1), 0);
	ds_entry_free(e);
	assert_int_equal(count_entries(NULL), 1);
	verify_all(&v, 0);
	assert_int_equal(v.bad_seq, 0);
	assert_int_equal(v.count, 1);

	/* Killed between the change and the commit: neither is there. */
	assert_int_equal(pipe(fds), 0);
	if ((pid = fork()) == 0) {
		close(fds[0]);
		if (ds_open(t.b->type, t.conn, &d, &why) != 0 ||
		    ds_tx_begin(d) != 0)
			_exit(2);
		e = mk("tx-2", "spiffe://td/tx2", "spiffe://td/agent",
		    "unix:uid:2");
		if (ds_entries_create(d, &e, 1, &res, 12) != 0 || res != 0 ||
		    ds_audit_record(d, 12, "entry.create", "uid:0",
		    "spiffe://td/tx2", 1, "{}") != 0)
			_exit(3);
		if (write(fds[1], "x", 1) != 1)
			_exit(4);
		for (;;)
			pause();
	}
	assert_true(pid > 0);
	close(fds[1]);
	assert_int_equal(read(fds[0], &c, 1), 1);
	close(fds[0]);
	assert_int_equal(kill(pid, SIGKILL), 0);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	reopen();
	assert_int_equal(ds_entry_get(t.ds, "tx-2", &e), WICK_ERR_NOT_FOUND);
	verify_all(&v, 0);
	assert_int_equal(v.bad_seq, 0);
	assert_int_equal(v.count, 1);
	assert_int_equal(ds_audit_append(t.ds, 13, "k", "a", 1, "{}"), 0);
	verify_all(&v, 0);
	assert_int_equal(v.count, 2);
}

static void
make_entry_n(int i)
{
	struct ds_entry	*e;
	char		 id[64], sp[64];

	snprintf(id, sizeof(id), "backup-entry-%d", i);
	snprintf(sp, sizeof(sp), "spiffe://td/b%d", i);
	e = mk(id, sp, "spiffe://td/agent", "unix:uid:1");
	create_ok(e, 100);
	ds_entry_free(e);
}

static void
test_backup(void **state)
{
	struct ds_audit_verify	 v;
	struct ds_backup	*b;
	struct ds_entry		*e;
	struct ds		*copy;
	struct stat		 sb;
	const char		*why;
	char			 dest[768];
	int			 i;

	if (t.b->files == NULL) {
		/* A database server's own tools back it up (pg_dump). */
		fresh();
		why = NULL;
		assert_int_equal(ds_backup_begin(t.ds, "x", &b, &why),
		    WICK_ERR_UNSUPPORTED);
		assert_null(b);
		assert_non_null(strstr(why, "pg_dump"));
		return;
	}
	fresh();
	append_n(5, 100);
	for (i = 0; i < 3; i++)
		make_entry_n(i);
	snprintf(dest, sizeof(dest), "%s/backup-%d.db", t.dir, t.n++);
	assert_int_equal(ds_backup_begin(t.ds, dest, &b, &why), 0);
	/* Written after the snapshot: not in the copy. */
	append_n(3, 200);
	make_entry_n(10);
	assert_int_equal(ds_backup_run(b, &why), 0);
	ds_backup_free(b);
	assert_int_equal(stat(dest, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0600);
	assert_int_equal(ds_backup_begin(t.ds, dest, &b, &why),
	    WICK_ERR_EXISTS);
	assert_null(b);
	assert_int_equal(ds_open(t.b->type, dest, &copy, &why), 0);
	assert_int_equal(ds_check(copy, &why), 0);
	memset(&v, 0, sizeof(v));
	while (!v.done)
		assert_int_equal(ds_audit_verify_step(copy, &v, 2), 0);
	assert_int_equal(v.bad_seq, 0);
	assert_int_equal(v.count, 5);
	{
		int64_t n;

		assert_int_equal(ds_entries_count(copy, NULL, &n), 0);
		assert_int_equal(n, 3);
		assert_int_equal(ds_entries_count(t.ds, NULL, &n), 0);
		assert_int_equal(n, 4);
	}
	assert_int_equal(ds_entry_get(copy, "backup-entry-1", &e), 0);
	ds_entry_free(e);
	/* The copy is a working store of its own. */
	assert_int_equal(ds_audit_append(copy, 300, "k", "a", 1, "{}"), 0);
	ds_close(copy);
	assert_int_equal(ds_backup_begin(t.ds, "", &b, &why),
	    WICK_ERR_INVALID);
}

/* ---- limits: refused before the store is touched ----------------------- */

static void
test_limits(void **state)
{
	struct ds_entry		*e, **nulls;
	struct ds_entry_filter	 f;
	struct ds_entry_list	 l;
	struct ds_node		*n;
	const char		*fw[DS_MAX_FEDERATES_WITH + 1];
	char			*big, name[32];
	uint8_t			 small[4] = { 0 };
	size_t			 i;
	int			 res = 1;

	fresh();
	big = malloc(DS_MAX_BLOB + 2);
	assert_non_null(big);
	memset(big, 'h', DS_MAX_BLOB + 1);
	big[DS_MAX_BLOB + 1] = '\0';

	e = mk(NULL, "spiffe://td/a", "spiffe://td/p", "x:1");
	e->hint = strndup(big, DS_HINT_MAX + 1);
	assert_int_equal(ds_entries_create(t.ds, &e, 1, &res, 1), 0);
	assert_int_equal(res, WICK_ERR_LIMIT);
	e->hint[DS_HINT_MAX] = '\0';		/* exactly the limit is fine */
	create_ok(e, 1);
	assert_int_equal(update_one(e, 2), 0);
	e->hint[0] = '\0';
	free(e->id);
	e->id = strndup(big, DS_ENTRY_ID_MAX + 1);
	assert_int_equal(create_one(e, 1), WICK_ERR_LIMIT);
	assert_int_equal(update_one(e, 1), WICK_ERR_LIMIT);
	free(e->id);
	e->id = NULL;
	/* More DNS names / federated domains than allowed, set by hand. */
	e->dns_names = calloc(DS_MAX_DNS_NAMES + 1, sizeof(char *));
	for (i = 0; i <= DS_MAX_DNS_NAMES; i++) {
		snprintf(name, sizeof(name), "n%zu.example", i);
		e->dns_names[i] = strdup(name);
	}
	e->ndns_names = DS_MAX_DNS_NAMES + 1;
	assert_int_equal(create_one(e, 1), WICK_ERR_LIMIT);
	e->ndns_names = DS_MAX_DNS_NAMES;
	free(e->dns_names[DS_MAX_DNS_NAMES]);
	e->federates_with = calloc(DS_MAX_FEDERATES_WITH + 1, sizeof(char *));
	for (i = 0; i <= DS_MAX_FEDERATES_WITH; i++)
		e->federates_with[i] = strdup("spiffe://f.org");
	e->nfederates_with = DS_MAX_FEDERATES_WITH + 1;
	assert_int_equal(create_one(e, 1), WICK_ERR_LIMIT);
	e->nfederates_with = DS_MAX_FEDERATES_WITH;
	free(e->federates_with[DS_MAX_FEDERATES_WITH]);
	e->x509_svid_ttl = -1;
	assert_int_equal(create_one(e, 1), WICK_ERR_INVALID);
	e->x509_svid_ttl = 0;
	free(e->spiffe_id);
	e->spiffe_id = strdup("");
	assert_int_equal(create_one(e, 1), WICK_ERR_INVALID);
	ds_entry_free(e);

	/* A batch too big is refused before any item is looked at. */
	res = 1;
	nulls = calloc(DS_MAX_BATCH + 1, sizeof(*nulls));
	assert_int_equal(ds_entries_create(t.ds, nulls, DS_MAX_BATCH + 1,
	    &res, 1), WICK_ERR_LIMIT);
	assert_int_equal(ds_entries_update(t.ds, nulls, DS_MAX_BATCH + 1,
	    &res, 1), WICK_ERR_LIMIT);
	assert_int_equal(ds_entries_delete(t.ds, (const char *const *)nulls,
	    DS_MAX_BATCH + 1, &res, 1), WICK_ERR_LIMIT);
	assert_int_equal(res, 1);		/* results untouched */
	assert_int_equal(ds_entries_create(t.ds, nulls, 1, &res, 1), 0);
	assert_int_equal(res, WICK_ERR_INVALID);	/* a NULL entry */
	free(nulls);

	/* Blobs past DS_MAX_BLOB are refused unread. */
	assert_int_equal(ds_bundle_set(t.ds, "spiffe://a.org", small,
	    (size_t)DS_MAX_BLOB + 1, 1), WICK_ERR_LIMIT);
	assert_int_equal(ds_ca_journal_set(t.ds, "s1", small,
	    (size_t)DS_MAX_BLOB + 1, 1), WICK_ERR_LIMIT);
	assert_int_equal(ds_audit_append(t.ds, 1, "k", "a", 1, big),
	    WICK_ERR_LIMIT);

	/* Filters. */
	for (i = 0; i <= DS_MAX_FEDERATES_WITH; i++)
		fw[i] = "spiffe://f.org";
	memset(&f, 0, sizeof(f));
	f.federates_with = fw;
	f.nfederates_with = DS_MAX_FEDERATES_WITH + 1;
	assert_int_equal(ds_entries_list(t.ds, &f, NULL, 0, &l),
	    WICK_ERR_LIMIT);
	n = ds_node_new();
	n->spiffe_id = strdup(big);
	n->attestation_type = strdup("t");
	assert_int_equal(ds_node_create(t.ds, n, 1), WICK_ERR_LIMIT);
	ds_node_free(n);

	/* Only the one valid create and its update were written. */
	assert_int_equal(count_entries(NULL), 1);
	assert_int_equal(revision(), 2);
	{
		uint8_t	*p;
		size_t	 len;

		assert_int_equal(ds_bundle_get(t.ds, "spiffe://a.org", &p,
		    &len), WICK_ERR_NOT_FOUND);
		assert_int_equal(ds_ca_journal_get(t.ds, "s1", &p, &len),
		    WICK_ERR_NOT_FOUND);
	}
	free(big);
}

/* ---- persistence, files, schema ---------------------------------------- */

static void
test_reopen(void **state)
{
	struct ds_entry		*e, *g;
	struct ds_node		*n, *gn;
	struct seen_audit	 s;
	uint8_t			*p;
	size_t			 len;
	int64_t			 rev;
	const char		*why;

	fresh();
	e = mk(NULL, "spiffe://td/a", "spiffe://td/p", "x:1 y:2");
	assert_int_equal(ds_entry_add_dns_name(e, "a.example"), 0);
	create_ok(e, 7);
	n = mk_node("a", "join_token", "01", "", 100, 0, "s:1");
	assert_int_equal(ds_node_create(t.ds, n, 7), 0);
	assert_int_equal(ds_join_token_create(t.ds, "keep-me", 100), 0);
	assert_int_equal(ds_bundle_set(t.ds, "spiffe://td",
	    (const uint8_t *)"bundle", 6, 7), 0);
	assert_int_equal(ds_ca_journal_set(t.ds, "s1", (const uint8_t *)"jj", 2,
	    7), 0);
	assert_int_equal(ds_audit_append(t.ds, 7, "k", "a", 1, "{}"), 0);
	rev = revision();

	reopen();
	reopen();				/* and a second, idle, time */
	assert_int_equal(revision(), rev);
	assert_int_equal(ds_entry_get(t.ds, e->id, &g), 0);
	assert_true(selector_set_equal(&g->selectors, &e->selectors));
	assert_string_equal(g->dns_names[0], "a.example");
	assert_int_equal(g->change_rev, e->change_rev);
	ds_entry_free(g);
	assert_int_equal(ds_node_get(t.ds, n->spiffe_id, &gn), 0);
	assert_true(selector_set_equal(&gn->selectors, &n->selectors));
	ds_node_free(gn);
	assert_int_equal(ds_bundle_get(t.ds, "spiffe://td", &p, &len), 0);
	assert_memory_equal(p, "bundle", 6);
	free(p);
	assert_int_equal(ds_ca_journal_get(t.ds, "s1", &p, &len), 0);
	assert_memory_equal(p, "jj", 2);
	free(p);
	memset(&s, 0, sizeof(s));
	assert_int_equal(ds_audit_since(t.ds, 0, 0, audit_cb, &s), 0);
	assert_int_equal(s.n, 1);
	audit_clear(&s);
	assert_int_equal(ds_join_token_consume(t.ds, "keep-me", 50), 0);
	assert_int_equal(ds_check(t.ds, &why), 0);
	ds_entry_free(e);
	ds_node_free(n);
}

static void
test_file_modes(void **state)
{
	const char *const	*sfx;
	struct ds_entry		*e;
	struct stat		 sb;
	mode_t			 old;
	char			 path[600];
	int			 fd;

	if (t.b->files == NULL)
		skip();
	old = umask(022);			/* a careless caller */
	fresh();
	e = mk(NULL, "spiffe://td/a", "spiffe://td/p", "x:1");
	create_ok(e, 1);
	ds_entry_free(e);
	for (sfx = t.b->files; *sfx != NULL; sfx++) {
		snprintf(path, sizeof(path), "%s%s", t.conn, *sfx);
		assert_int_equal(stat(path, &sb), 0);	/* all exist now */
		assert_int_equal(sb.st_mode & 0777, 0600);
	}
	/* An existing store that others could read is made private. */
	ds_close(t.ds);
	t.ds = NULL;
	t.b->conn(t.conn, sizeof(t.conn), t.dir, t.n++);
	fd = open(t.conn, O_CREAT | O_WRONLY, 0644);
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(chmod(t.conn, 0644), 0);
	reopen();
	assert_int_equal(stat(t.conn, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0600);
	umask(old);
}

static void
test_future_schema_refused(void **state)
{
	struct ds	*d = (struct ds *)&d;
	const char	*why = NULL;

	if (t.b->set_version == NULL)
		skip();
	fresh();
	ds_close(t.ds);
	t.ds = NULL;
	assert_int_equal(t.b->set_version(t.conn, ds_schema_version() + 1), 0);
	assert_int_equal(ds_open(t.b->type, t.conn, &d, &why),
	    WICK_ERR_UNSUPPORTED);
	assert_null(d);
	assert_non_null(why);
	/* Refused again: nothing was changed by the failed open. */
	assert_int_equal(ds_open(t.b->type, t.conn, &d, &why),
	    WICK_ERR_UNSUPPORTED);
}

static void
test_check(void **state)
{
	const char *why = "x";

	fresh();
	assert_int_equal(ds_check(t.ds, &why), 0);
	assert_null(why);
	assert_int_equal(ds_check(t.ds, NULL), 0);
}

/*
 * A child creates entries one at a time and reports each ID once the
 * call has returned; it is killed -9 after about 200 ms.  Every ID it
 * reported must be in the reopened store, which must check clean.
 */
static void
test_kill9_keeps_committed(void **state)
{
	struct ds_entry	*e;
	const char	*why;
	char		*buf, *line, *save;
	size_t		 got = 0, cap = 1 << 20, found = 0;
	ssize_t		 n;
	pid_t		 pid;
	int		 fds[2], status;

	fresh();
	ds_close(t.ds);
	t.ds = NULL;
	assert_int_equal(pipe(fds), 0);
	if ((pid = fork()) == 0) {
		struct ds	*d;
		char		 sp[64], out[300];
		int		 i, res;

		close(fds[0]);
		if (ds_open(t.b->type, t.conn, &d, &why) != 0)
			_exit(2);
		for (i = 0;; i++) {
			snprintf(sp, sizeof(sp), "spiffe://td/k%d", i);
			e = ds_entry_new();
			e->spiffe_id = strdup(sp);
			e->parent_id = strdup("spiffe://td/p");
			if (selector_set_add_str(&e->selectors, "unix:uid:1",
			    &why) != 0 || ds_entries_create(d, &e, 1, &res,
			    i) != 0 || res != 0)
				_exit(3);
			snprintf(out, sizeof(out), "%s\n", e->id);
			if (write(fds[1], out, strlen(out)) !=
			    (ssize_t)strlen(out))
				_exit(4);
			ds_entry_free(e);
		}
	}
	assert_true(pid > 0);
	close(fds[1]);
	usleep(200 * 1000);
	assert_int_equal(kill(pid, SIGKILL), 0);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFSIGNALED(status));
	buf = malloc(cap);
	assert_non_null(buf);
	while ((n = read(fds[0], buf + got, cap - got - 1)) > 0)
		got += (size_t)n;
	close(fds[0]);
	buf[got] = '\0';

	reopen();
	assert_int_equal(ds_check(t.ds, &why), 0);
	for (line = strtok_r(buf, "\n", &save); line != NULL;
	    line = strtok_r(NULL, "\n", &save)) {
		assert_int_equal(strlen(line), 36);	/* writes are atomic */
		assert_int_equal(ds_entry_get(t.ds, line, &e), 0);
		assert_int_equal(e->selectors.n, 1);
		ds_entry_free(e);
		found++;
	}
	assert_true(found > 0);
	/* At most the one being created when killed is extra. */
	assert_true(count_entries(NULL) - (int64_t)found <= 1);
	print_message("%zu entries reported before kill -9, all present\n",
	    found);
	free(buf);
}

/*
 * Revisions follow commit order, even between processes (several
 * servers): a writer that starts while another's transaction is open
 * gets a larger revision than anything that transaction commits, so a
 * reader that has seen revision R never misses a smaller one later.
 */
static void
test_revision_commit_order(void **state)
{
	struct ds_entry	*e;
	char		 buf[64];
	ssize_t		 n;
	int64_t		 ra, rb;
	pid_t		 pid;
	int		 up[2], go[2], status;

	fresh();
	assert_int_equal(pipe(up), 0);
	assert_int_equal(pipe(go), 0);
	/* Forked with the parent idle: a child must not inherit a
	 * transaction (SQLite's locks are per process). */
	if ((pid = fork()) == 0) {
		struct ds	*d;
		const char	*why;
		int		 r, res, tries = 0;

		close(up[0]);
		close(go[1]);
		while ((r = ds_open(t.b->type, t.conn, &d, &why)) ==
		    WICK_ERR_UNAVAILABLE && ++tries < 20)
			;
		if (r != 0 || write(up[1], "r", 1) != 1 ||
		    read(go[0], buf, 1) != 1)
			_exit(2);
		tries = 0;
		e = mk("order-b", "spiffe://td/b", "spiffe://td/p", "x:1");
		while ((r = ds_entries_create(d, &e, 1, &res, 2)) ==
		    WICK_ERR_UNAVAILABLE && ++tries < 20)
			;
		if (r != 0 || res != 0)
			_exit(3);
		snprintf(buf, sizeof(buf), "%lld", (long long)e->change_rev);
		if (write(up[1], buf, strlen(buf)) != (ssize_t)strlen(buf))
			_exit(4);
		ds_close(d);
		_exit(0);
	}
	assert_true(pid > 0);
	close(up[1]);
	close(go[0]);
	assert_int_equal(read(up[0], buf, 1), 1);	/* its store is open */
	assert_int_equal(ds_tx_begin(t.ds), 0);
	assert_int_equal(write(go[1], "g", 1), 1);
	close(go[1]);
	/* Give the other writer every chance to go first. */
	usleep(200 * 1000);
	e = mk("order-a", "spiffe://td/a", "spiffe://td/p", "x:1");
	create_ok(e, 1);
	ra = e->change_rev;
	ds_entry_free(e);
	assert_int_equal(ds_tx_end(t.ds, 1), 0);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	n = read(up[0], buf, sizeof(buf) - 1);
	close(up[0]);
	assert_true(n > 0);
	buf[n] = '\0';
	rb = strtoll(buf, NULL, 10);
	assert_true(ra > 0);
	assert_true(rb > ra);
	assert_int_equal(revision(), rb);
}

/*
 * Inside a caller's transaction, a call that fails (a single statement
 * with no transaction of its own) leaves the rest to commit: PostgreSQL
 * aborts a transaction on any error unless the statement had a savepoint.
 */
static void
test_tx_survives_failed_call(void **state)
{
	struct ds_audit_verify	 v;
	struct ds_entry		*e;
	uint8_t			*p;
	size_t			 len;

	fresh();
	assert_int_equal(ds_join_token_create(t.ds, "dup", 100), 0);
	assert_int_equal(ds_tx_begin(t.ds), 0);
	e = mk("txf-1", "spiffe://td/f", "spiffe://td/p", "x:1");
	create_ok(e, 1);
	ds_entry_free(e);
	assert_int_equal(ds_join_token_create(t.ds, "dup", 100),
	    WICK_ERR_EXISTS);
	assert_int_equal(ds_join_token_consume(t.ds, "none", 1),
	    WICK_ERR_NOT_FOUND);
	assert_int_equal(ds_bundle_delete(t.ds, "spiffe://none", 1),
	    WICK_ERR_NOT_FOUND);
	assert_int_equal(ds_ca_journal_set(t.ds, "s1", (const uint8_t *)"j", 1,
	    1), 0);
	assert_int_equal(ds_audit_record(t.ds, 1, "entry.create", "uid:0",
	    "spiffe://td/f", 1, "{}"), 0);
	assert_int_equal(ds_tx_end(t.ds, 1), 0);
	assert_int_equal(ds_entry_get(t.ds, "txf-1", &e), 0);
	ds_entry_free(e);
	assert_int_equal(ds_ca_journal_get(t.ds, "s1", &p, &len), 0);
	free(p);
	verify_all(&v, 0);
	assert_int_equal(v.bad_seq, 0);
	assert_int_equal(v.count, 1);
	assert_int_equal(ds_join_token_consume(t.ds, "dup", 50), 0);
}

/* Run fn with stderr (the log) going to a file; what was written. */
static char *
capture_stderr(void (*fn)(void))
{
	char	 path[600], *buf;
	FILE	*f;
	long	 n;
	int	 fd, saved;

	snprintf(path, sizeof(path), "%s/stderr-%d", t.dir, t.n++);
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	fflush(stderr);
	saved = dup(2);
	assert_int_equal(dup2(fd, 2), 2);
	fn();
	fflush(stderr);
	assert_int_equal(dup2(saved, 2), 2);
	close(saved);
	close(fd);
	f = fopen(path, "r");
	assert_non_null(f);
	assert_int_equal(fseek(f, 0, SEEK_END), 0);
	n = ftell(f);
	rewind(f);
	buf = calloc(1, (size_t)n + 1);
	assert_non_null(buf);
	assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
	fclose(f);
	(void)unlink(path);
	return buf;
}

#define PG_SECRET	"hunter2-not-logged"

static void
pg_bad_opens(void)
{
	struct ds	*d = (struct ds *)&d;
	const char	*why = NULL;

	/* Not a connection string at all. */
	assert_int_equal(ds_open("postgres", "password=" PG_SECRET
	    " nonsense", &d, &why), WICK_ERR_CONFIG);
	assert_null(d);
	assert_non_null(why);
	assert_null(strstr(why, PG_SECRET));
	/* No server there. */
	why = NULL;
	assert_int_equal(ds_open("postgres", "host=/nonexistent/dir"
	    " dbname=wick user=wick password=" PG_SECRET
	    " connect_timeout=5", &d, &why), WICK_ERR_UNAVAILABLE);
	assert_null(d);
	assert_non_null(strstr(why, "cannot connect"));
	assert_null(strstr(why, PG_SECRET));
	why = NULL;
	assert_int_equal(ds_open_readonly("postgres", "postgresql://wick:"
	    PG_SECRET "@/wick?host=/nonexistent/dir", &d, &why),
	    WICK_ERR_UNAVAILABLE);
	assert_null(strstr(why, PG_SECRET));
}

/* Bad connection strings: clear errors naming the server, never the
 * password. */
static void
test_pg_connect_errors(void **state)
{
	char *log;

	if (strcmp(t.b->type, "postgres") != 0)
		skip();
	log = capture_stderr(pg_bad_opens);
	print_message("%s", log);
	assert_non_null(strstr(log, "/nonexistent/dir"));
	assert_null(strstr(log, PG_SECRET));
	free(log);
	assert_string_equal(ds_conn_shown("postgres", "password=x"),
	    "the PostgreSQL database");
}

/* A connection the server dropped is made again, once, by the next call
 * outside a transaction; inside one the call fails. */
static void
test_pg_reconnect(void **state)
{
	struct ds_entry	*e;
	PGconn		*c;
	int64_t		 rev;
	char		 sql[256];

	if (strcmp(t.b->type, "postgres") != 0)
		skip();
	fresh();
	e = mk("re-1", "spiffe://td/r", "spiffe://td/p", "x:1");
	create_ok(e, 1);
	ds_entry_free(e);
	c = pg_store(t.conn);
	snprintf(sql, sizeof(sql), "SELECT pg_terminate_backend(pid) FROM"
	    " pg_stat_activity WHERE datname = current_database() AND"
	    " pid <> pg_backend_pid()");
	assert_int_equal(pg_exec(c, sql), 0);
	assert_int_equal(ds_revision(t.ds, &rev), 0);
	assert_true(rev > 0);
	assert_int_equal(ds_entry_get(t.ds, "re-1", &e), 0);
	ds_entry_free(e);
	/* Dropped inside a transaction: the transaction is lost. */
	assert_int_equal(ds_tx_begin(t.ds), 0);
	assert_int_equal(pg_exec(c, sql), 0);
	e = mk("re-2", "spiffe://td/r2", "spiffe://td/p", "x:1");
	{
		int res = 1;

		assert_int_equal(ds_entries_create(t.ds, &e, 1, &res, 2),
		    WICK_ERR_UNAVAILABLE);
	}
	ds_entry_free(e);
	assert_int_equal(ds_tx_end(t.ds, 1), WICK_ERR_UNAVAILABLE);
	PQfinish(c);
	/* And the store works again. */
	assert_int_equal(ds_entry_get(t.ds, "re-2", &e), WICK_ERR_NOT_FOUND);
	assert_int_equal(ds_check(t.ds, NULL), 0);
}

/*
 * The change log is pruned below a floor, the newest change always kept;
 * an entry cache that fell below the floor reads everything again, and
 * one that sees a gap left by a rolled-back transaction (PostgreSQL's
 * sequence) does not.
 */
static void
test_changes_prune_and_resync(void **state)
{
	struct entry_cache	*ec, *ec0;
	struct ds_entry		*e;
	const char		*id;
	int64_t			 floor, r5, r6;
	size_t			 n;
	int			 res;

	fresh();
	/* A cache of the empty store, not refreshed until the end. */
	assert_int_equal(entry_cache_new(t.ds, &ec0), 0);
	e = mk("cp-1", "spiffe://td/1", "spiffe://td/p", "x:1");
	create_ok(e, 10);
	ds_entry_free(e);
	e = mk("cp-2", "spiffe://td/2", "spiffe://td/p", "x:2");
	create_ok(e, 20);
	ds_entry_free(e);
	e = mk("cp-3", "spiffe://td/3", "spiffe://td/p", "x:3");
	create_ok(e, 30);
	ds_entry_free(e);
	assert_int_equal(entry_cache_new(t.ds, &ec), 0);
	assert_int_equal(entry_cache_count(ec), 3);

	/* Nothing older than 5: nothing goes. */
	assert_int_equal(ds_changes_prune(t.ds, 5, &n), 0);
	assert_int_equal(n, 0);
	e = mk("cp-4", "spiffe://td/4", "spiffe://td/p", "x:4");
	create_ok(e, 40);
	ds_entry_free(e);
	id = "cp-1";
	assert_int_equal(ds_entries_delete(t.ds, &id, 1, &res, 50), 0);
	assert_int_equal(res, 0);
	r5 = revision();
	e = mk("cp-5", "spiffe://td/5", "spiffe://td/p", "x:5");
	create_ok(e, 60);
	ds_entry_free(e);
	r6 = revision();

	/* Before 55: the delete (at 50) is the floor, the four below go. */
	assert_int_equal(ds_changes_prune(t.ds, 55, &n), 0);
	assert_int_equal(n, 4);
	assert_int_equal(ds_changes_floor(t.ds, &floor), 0);
	assert_int_equal(floor, r5);
	assert_int_equal(revision(), r6);

	/* The cache saw revision r3 only: it reads everything again. */
	assert_int_equal(entry_cache_refresh(ec), 0);
	assert_int_equal(entry_cache_resyncs(ec), 1);
	assert_int_equal(entry_cache_revision(ec), r6);
	assert_int_equal(entry_cache_count(ec), 4);
	assert_null(entry_cache_get(ec, "cp-1"));
	assert_non_null(entry_cache_get(ec, "cp-4"));
	assert_non_null(entry_cache_get(ec, "cp-5"));

	/* A transaction rolled back, then a change: no reload for a gap
	 * above the floor. */
	assert_int_equal(ds_tx_begin(t.ds), 0);
	e = mk("cp-x", "spiffe://td/x", "spiffe://td/p", "x:x");
	create_ok(e, 70);
	ds_entry_free(e);
	assert_int_equal(ds_tx_end(t.ds, 0), 0);
	e = mk("cp-6", "spiffe://td/6", "spiffe://td/p", "x:6");
	create_ok(e, 80);
	ds_entry_free(e);
	assert_int_equal(entry_cache_refresh(ec), 0);
	assert_int_equal(entry_cache_resyncs(ec), 1);
	assert_null(entry_cache_get(ec, "cp-x"));
	assert_non_null(entry_cache_get(ec, "cp-6"));
	assert_int_equal(entry_cache_count(ec), 5);

	/* Everything is old: the newest change stays, the counter too. */
	assert_int_equal(ds_changes_prune(t.ds, 1000, &n), 0);
	assert_int_equal(ds_changes_floor(t.ds, &floor), 0);
	assert_int_equal(floor, revision());
	assert_true(revision() > r6);
	/* Up to date: the prune costs the cache nothing. */
	assert_int_equal(entry_cache_refresh(ec), 0);
	assert_int_equal(entry_cache_resyncs(ec), 1);
	/* The cache from revision 0 lost everything: it reads it all. */
	assert_int_equal(entry_cache_refresh(ec0), 0);
	assert_int_equal(entry_cache_resyncs(ec0), 1);
	assert_int_equal(entry_cache_count(ec0), 5);
	assert_non_null(entry_cache_get(ec0, "cp-6"));
	assert_null(entry_cache_get(ec0, "cp-1"));
	entry_cache_free(ec0);
	entry_cache_free(ec);
}

/* ---- every entry at once (the entry cache's load) ---------------------- */

static int
collect_entry(void *arg, struct ds_entry *e)
{
	struct ds_entry_list	 *l = arg;
	struct ds_entry		**v;

	v = reallocarray(l->v, l->n + 1, sizeof(*v));
	assert_non_null(v);
	l->v = v;
	l->v[l->n++] = e;
	return 0;
}

/* A callback that stops the load at the fourth entry. */
static int
collect_three(void *arg, struct ds_entry *e)
{
	struct ds_entry_list *l = arg;

	if (l->n == 3) {
		ds_entry_free(e);
		return WICK_ERR_STATE;
	}
	return collect_entry(arg, e);
}

static int
cmp_entry_id(const void *a, const void *b)
{
	return strcmp((*(struct ds_entry *const *)a)->id,
	    (*(struct ds_entry *const *)b)->id);
}

/* Every field, the lists in their order. */
static void
assert_same_entry(const struct ds_entry *a, const struct ds_entry *b)
{
	size_t i;

	assert_string_equal(a->id, b->id);
	assert_string_equal(a->spiffe_id, b->spiffe_id);
	assert_string_equal(a->parent_id, b->parent_id);
	assert_string_equal(a->hint, b->hint);
	assert_true(selector_set_equal(&a->selectors, &b->selectors));
	assert_int_equal(a->x509_svid_ttl, b->x509_svid_ttl);
	assert_int_equal(a->jwt_svid_ttl, b->jwt_svid_ttl);
	assert_int_equal(a->admin, b->admin);
	assert_int_equal(a->downstream, b->downstream);
	assert_int_equal(a->store_svid, b->store_svid);
	assert_int_equal(a->expires_at, b->expires_at);
	assert_int_equal(a->revision_number, b->revision_number);
	assert_int_equal(a->created_at, b->created_at);
	assert_int_equal(a->change_rev, b->change_rev);
	assert_int_equal(a->ndns_names, b->ndns_names);
	for (i = 0; i < a->ndns_names; i++)
		assert_string_equal(a->dns_names[i], b->dns_names[i]);
	assert_int_equal(a->nfederates_with, b->nfederates_with);
	for (i = 0; i < a->nfederates_with; i++)
		assert_string_equal(a->federates_with[i],
		    b->federates_with[i]);
}

/*
 * ds_entries_load() gives want entries, exactly those of the list walk
 * and of ds_entry_get(), field for field (both sorted here with
 * strcmp(): a PostgreSQL collation may order the walk otherwise).
 */
static void
expect_load_as_walk(size_t want)
{
	struct ds_entry_list	 got, all, page;
	struct ds_entry		*e;
	char			*tok = NULL;
	size_t			 i;

	memset(&got, 0, sizeof(got));
	memset(&all, 0, sizeof(all));
	assert_int_equal(ds_entries_load(t.ds, collect_entry, &got), 0);
	assert_int_equal(got.n, want);
	do {
		assert_int_equal(ds_entries_list(t.ds, NULL, tok, 7, &page),
		    0);
		free(tok);
		for (i = 0; i < page.n; i++) {
			collect_entry(&all, page.v[i]);
			page.v[i] = NULL;
		}
		tok = page.next_token;
		page.next_token = NULL;
		ds_entry_list_free(&page);
	} while (tok != NULL);
	assert_int_equal(all.n, got.n);
	if (got.n > 1) {
		qsort(got.v, got.n, sizeof(*got.v), cmp_entry_id);
		qsort(all.v, all.n, sizeof(*all.v), cmp_entry_id);
	}
	for (i = 0; i < got.n; i++) {
		assert_same_entry(got.v[i], all.v[i]);
		assert_int_equal(ds_entry_get(t.ds, got.v[i]->id, &e), 0);
		assert_same_entry(got.v[i], e);
		ds_entry_free(e);
	}
	ds_entry_list_free(&got);
	ds_entry_list_free(&all);
}

/*
 * The entry cache over the same store: each entry as the walk has it,
 * and each parent's children (no entry's SPIFFE ID is a parent here, so
 * an agent's authorized set is its children) by the parent index.
 */
static void
expect_cache_as_walk(const char *const *parents, size_t nparents)
{
	struct entry_cache	 *ec;
	struct ds_entry_list	  all;
	const struct ds_entry	**v;
	size_t			  i, k, n, m;

	memset(&all, 0, sizeof(all));
	assert_int_equal(ds_entries_load(t.ds, collect_entry, &all), 0);
	if (all.n > 1)
		qsort(all.v, all.n, sizeof(*all.v), cmp_entry_id);
	assert_int_equal(entry_cache_new(t.ds, &ec), 0);
	assert_int_equal(entry_cache_count(ec), all.n);
	for (i = 0; i < all.n; i++) {
		assert_non_null(entry_cache_get(ec, all.v[i]->id));
		assert_same_entry(entry_cache_get(ec, all.v[i]->id),
		    all.v[i]);
	}
	for (k = 0; k <= nparents; k++) {
		/* The last: a parent no entry has. */
		assert_int_equal(entry_cache_authorized(ec, k < nparents ?
		    parents[k] : "spiffe://td/agent/none", NULL,
		    "spiffe://td/spire/server", &v, &n), 0);
		for (i = m = 0; i < all.n; i++) {
			if (k == nparents ||
			    strcmp(all.v[i]->parent_id, parents[k]) != 0)
				continue;
			assert_true(m < n);
			assert_ptr_equal(v[m], entry_cache_get(ec,
			    all.v[i]->id));
			m++;
		}
		assert_int_equal(m, n);
		free(v);
	}
	entry_cache_free(ec);
	ds_entry_list_free(&all);
}

static void
test_entries_load(void **state)
{
	/* Sharing long prefixes, one a prefix of another, upper case
	 * below lower, a byte above 0x7f. */
	static const char *const parents[] = {
		"spiffe://td/agent/a", "spiffe://td/agent/a/b",
		"spiffe://td/agent/ab", "spiffe://td/agent/B",
		"spiffe://td/agent/\xc3\xa9", "spiffe://td/p",
	};
	const size_t		  np = sizeof(parents) / sizeof(parents[0]);
	const size_t		  n = 300;
	struct ds_entry		**v, *e;
	struct ds_entry_list	  l;
	const char		**del;
	char			  id[32], sp[64], name[64], sels[256];
	size_t			  i, j, ndel = 0;
	int			 *res;

	fresh();
	expect_load_as_walk(0);
	expect_cache_as_walk(parents, np);
	v = calloc(n, sizeof(*v));
	res = calloc(n, sizeof(*res));
	del = calloc(n, sizeof(*del));
	assert_true(v != NULL && res != NULL && del != NULL);
	for (i = 0; i < n; i++) {
		/*
		 * IDs against creation order, so that row ID order is not
		 * ID order; short ones, ones sharing their first 8 bytes,
		 * one a prefix of others, one above 0x7f.
		 */
		j = (i * 7) % n;
		if (j == 0)
			snprintf(id, sizeof(id), "entry-id");
		else if (j == 1)
			snprintf(id, sizeof(id), "\xc3\xa9-%03zu", j);
		else
			snprintf(id, sizeof(id), j % 2 ? "e%zu" :
			    "entry-id-%03zu", j);
		snprintf(sp, sizeof(sp), "spiffe://td/w/%zu", i);
		sels[0] = '\0';
		for (j = 0; j <= i % 4; j++) {
			snprintf(name, sizeof(name), "unix:uid:%zu", i + j);
			append(sels, sizeof(sels), name);
		}
		v[i] = mk(id, sp, parents[(i / 3) % np], sels);
		/* 0..4 DNS names and 0..2 trust domains, out of sorted
		 * order: the stored order must come back. */
		for (j = i % 5; j > 0; j--) {
			snprintf(name, sizeof(name), "n%zu.w%zu.example", j, i);
			assert_int_equal(ds_entry_add_dns_name(v[i], name), 0);
		}
		for (j = i % 3; j > 0; j--) {
			snprintf(name, sizeof(name), "spiffe://fed%zu.example",
			    j);
			assert_int_equal(ds_entry_add_federates_with(v[i],
			    name), 0);
		}
		if (i % 2)
			v[i]->hint = strdup("h");
		v[i]->x509_svid_ttl = (int32_t)i;
		v[i]->jwt_svid_ttl = (int32_t)(n - i);
		v[i]->admin = i % 5 == 1;
		v[i]->downstream = i % 6 == 1;
		v[i]->store_svid = i % 7 == 1;
		v[i]->expires_at = i % 4 ? 0 : 4000000000 + (int64_t)i;
	}
	for (j = 0; j < DS_MAX_DNS_NAMES - 4; j++) {
		snprintf(name, sizeof(name), "z%zu.max.example", 99 - j);
		assert_int_equal(ds_entry_add_dns_name(v[4], name), 0);
	}
	assert_int_equal(ds_entries_create(t.ds, v, n, res, 100), 0);
	for (i = 0; i < n; i++)
		assert_int_equal(res[i], 0);
	expect_load_as_walk(n);
	expect_cache_as_walk(parents, np);

	/* Lists rewritten (their rows now at the end of their tables),
	 * entries deleted (rows gone between others). */
	for (i = 0; i < n; i += 10) {
		snprintf(name, sizeof(name), "a%zu.late.example", i);
		assert_int_equal(ds_entry_add_dns_name(v[i], name), 0);
		assert_int_equal(selector_set_add_str(&v[i]->selectors,
		    "k8s:ns:late", NULL), 0);
		assert_int_equal(update_one(v[i], 200), 0);
	}
	for (i = 0; i < n; i += 13)
		del[ndel++] = v[i]->id;
	assert_int_equal(ds_entries_delete(t.ds, del, ndel, res, 300), 0);
	expect_load_as_walk(n - ndel);
	expect_cache_as_walk(parents, np);

	/* A callback's error stops the load; the store goes on (the read
	 * has ended: a write can take the lock). */
	memset(&l, 0, sizeof(l));
	assert_int_equal(ds_entries_load(t.ds, collect_three, &l),
	    WICK_ERR_STATE);
	assert_int_equal(l.n, 3);
	ds_entry_list_free(&l);
	e = mk("after-stop", "spiffe://td/after", parents[0], "a:1");
	create_ok(e, 400);
	ds_entry_free(e);
	expect_load_as_walk(n - ndel + 1);

	/* In a caller's transaction: its own writes, then not after a
	 * rollback. */
	assert_int_equal(ds_tx_begin(t.ds), 0);
	e = mk("in-tx", "spiffe://td/tx", parents[1], "a:1");
	create_ok(e, 500);
	ds_entry_free(e);
	expect_load_as_walk(n - ndel + 2);
	assert_int_equal(ds_tx_end(t.ds, 0), 0);
	expect_load_as_walk(n - ndel + 1);

	/*
	 * Child rows of no entry (a file written with foreign keys off):
	 * before the first entry, at a deleted entry's row ID (14, the
	 * 14th created, between live ones) and past the last.  The walk's
	 * lookups never see them; neither may the load.
	 */
	if (strcmp(t.b->type, "sqlite3") == 0) {
		ds_close(t.ds);
		t.ds = NULL;
		assert_int_equal(t.b->sql(t.conn, "PRAGMA foreign_keys = OFF;"
		    "INSERT INTO entry_selectors VALUES (0, 'o', 'a'),"
		    " (14, 'o', 'b'), (1000000, 'o', 'c');"
		    "INSERT INTO entry_dns_names VALUES (0, 0, 'o.example'),"
		    " (14, 0, 'o.example'), (1000000, 0, 'o.example');"
		    "INSERT INTO entry_federates_with VALUES"
		    " (0, 0, 'spiffe://o'), (14, 0, 'spiffe://o'),"
		    " (1000000, 0, 'spiffe://o');"), 0);
		reopen();
		expect_load_as_walk(n - ndel + 1);
		expect_cache_as_walk(parents, np);
	}
	for (i = 0; i < n; i++)
		ds_entry_free(v[i]);
	free(v);
	free(res);
	free(del);
}

/* ---- a page's lists read by chunk (ds_entries_list()) ------------------- */

/*
 * Walk f's pages of limit from token: the entries of all[from..] (as
 * ds_entry_get() reads them: walk_all()) that ds_entry_matches() keeps,
 * field for field, in the order of the unfiltered walk, with a token
 * after each full page but the last.
 */
static void
expect_pages(const struct ds_entry_filter *f, const struct ds_entry_list *all,
    size_t from, const char *token, size_t limit)
{
	struct ds_entry_list	 l;
	char			*tok = token != NULL ? strdup(token) : NULL;
	size_t			 i, at = from, pages = 0, seen = 0, want = 0;
	size_t			 lim = limit == 0 ? DS_MAX_PAGE : limit;

	for (i = from; i < all->n; i++)
		want += ds_entry_matches(all->v[i], f);
	do {
		assert_int_equal(ds_entries_list(t.ds, f, tok, limit, &l), 0);
		free(tok);
		tok = NULL;
		pages++;
		assert_true(l.n <= lim);
		for (i = 0; i < l.n; i++) {
			while (at < all->n && !ds_entry_matches(all->v[at], f))
				at++;
			assert_true(at < all->n);
			assert_same_entry(l.v[i], all->v[at]);
			at++;
			seen++;
		}
		if (l.next_token != NULL) {
			assert_int_equal(l.n, lim);
			assert_string_equal(l.next_token, l.v[l.n - 1]->id);
			tok = strdup(l.next_token);
		}
		ds_entry_list_free(&l);
	} while (tok != NULL);
	assert_int_equal(seen, want);
	assert_int_equal(pages, want == 0 ? 1 : (want + lim - 1) / lim);
	if (token == NULL)
		assert_int_equal(count_entries(f), (int64_t)want);
}

/* Every entry by the unfiltered walk, each as ds_entry_get() reads it
 * (by lookups of its own). */
static void
walk_all(struct ds_entry_list *all, size_t want)
{
	struct ds_entry	*e;
	size_t		 i;

	assert_int_equal(ds_entries_list(t.ds, NULL, NULL, 0, all), 0);
	assert_int_equal(all->n, want);
	assert_null(all->next_token);
	for (i = 0; i < all->n; i++) {
		assert_int_equal(ds_entry_get(t.ds, all->v[i]->id, &e), 0);
		assert_same_entry(all->v[i], e);
		ds_entry_free(e);
	}
}

#define NLISTS	1300	/* over two chunks of a walk, and a part */

static void
expect_filtered(size_t n)
{
	static const size_t	  limits[] = { 0, 1000, 513, 512, 511, 7 };
	const char		 *fa[] = { "spiffe://fed-a.example" };
	const char		 *fab[] = { "spiffe://fed-a.example",
				    "spiffe://fed-b.example" };
	struct ds_entry_filter	  f[32];
	struct ds_entry_list	  all;
	struct selector_set	  one, two;
	size_t			  nf = 0, i, j;
	int			  m;

	walk_all(&all, n);
	selector_set_init(&one);
	selector_set_init(&two);
	add_sels(&one, "unix:uid:3");
	add_sels(&two, "unix:uid:3 k8s:ns:a");
	memset(f, 0, sizeof(f));
	nf++;					/* no filter */
	f[nf++].parent_id = "spiffe://td/agent/1";
	f[nf++].spiffe_id = "spiffe://td/w/7";
	f[nf++].hint = "h";
	f[nf++].hint = "";
	f[nf++].downstream_only = 1;
	f[nf].parent_id = "spiffe://td/agent/2";
	f[nf++].hint = "h";
	for (m = DS_MATCH_EXACT; m <= DS_MATCH_ANY; m++) {
		f[nf].selectors = &one;
		f[nf++].selector_match = (enum ds_match)m;
		f[nf].selectors = &two;
		f[nf++].selector_match = (enum ds_match)m;
		f[nf].federates_with = fa;
		f[nf].nfederates_with = 1;
		f[nf++].federates_match = (enum ds_match)m;
		f[nf].federates_with = fab;
		f[nf].nfederates_with = 2;
		f[nf++].federates_match = (enum ds_match)m;
	}
	f[nf].parent_id = "spiffe://td/agent/3";
	f[nf].selectors = &two;
	f[nf].selector_match = DS_MATCH_SUPERSET;
	f[nf].federates_with = fab;
	f[nf].nfederates_with = 2;
	f[nf++].federates_match = DS_MATCH_ANY;
	assert_true(nf <= sizeof(f) / sizeof(f[0]));
	for (i = 0; i < nf; i++) {
		/* Every limit unfiltered and by parent, three others. */
		for (j = 0; j < sizeof(limits) / sizeof(limits[0]); j++)
			if (i < 2 || limits[j] == 0 || limits[j] == 512 ||
			    limits[j] == 7)
				expect_pages(&f[i], &all, 0, NULL, limits[j]);
		/* From a token mid-way: an entry's ID, and past it. */
		if (all.n > 600) {
			expect_pages(&f[i], &all, 601, all.v[600]->id, 0);
			expect_pages(&f[i], &all, 601, all.v[600]->id, 100);
		}
	}
	/* Pages of one where they are few. */
	expect_pages(&f[2], &all, 0, NULL, 1);
	expect_pages(&f[nf - 1], &all, 0, NULL, 1);
	selector_set_cleanup(&one);
	selector_set_cleanup(&two);
	ds_entry_list_free(&all);
}

static void
test_entry_list_lists(void **state)
{
	struct ds_entry		**v, *e;
	struct ds_entry_list	  all;
	const char		**del;
	char			  id[32], sp[64], parent[64], name[64];
	size_t			  i, j, k, ndel = 0;
	int			 *res;

	fresh();
	expect_filtered(0);
	v = calloc(NLISTS, sizeof(*v));
	res = calloc(NLISTS, sizeof(*res));
	del = calloc(NLISTS, sizeof(*del));
	assert_true(v != NULL && res != NULL && del != NULL);
	for (i = 0; i < NLISTS; i++) {
		/* IDs against creation order: row ID order is not ID
		 * order, and a chunk's row IDs are far apart. */
		k = (i * 7919) % NLISTS;
		snprintf(id, sizeof(id), k % 3 ? "e-%04zu" : "entry-%zu", k);
		/* One SPIFFE ID shared (told apart by a selector). */
		snprintf(sp, sizeof(sp), "spiffe://td/w/%zu", i % 50 == 7 ? 7 :
		    1000 + i);
		snprintf(parent, sizeof(parent), "spiffe://td/agent/%zu",
		    i % 4);
		snprintf(name, sizeof(name), "unix:uid:%zu", i % 10);
		v[i] = mk(id, sp, parent, name);
		if (i % 3 == 0)
			add_sels(&v[i]->selectors, "k8s:ns:a");
		if (i % 50 == 7) {
			snprintf(name, sizeof(name), "unix:gid:%zu", i);
			add_sels(&v[i]->selectors, name);
		}
		/* Many rows: a set of 200 selectors, 128 DNS names. */
		for (j = 0; i % 100 == 5 && j < 200; j++) {
			snprintf(name, sizeof(name), "many:s:%zu", j);
			add_sels(&v[i]->selectors, name);
		}
		/* Empty lists (i % 5 == 0, i % 4 == 0), out of sorted order
		 * otherwise. */
		k = i % 250 == 3 ? DS_MAX_DNS_NAMES : i % 5;
		for (j = k; j > 0; j--) {
			snprintf(name, sizeof(name), "n%zu.w%zu.example", j, i);
			assert_int_equal(ds_entry_add_dns_name(v[i], name), 0);
		}
		if (i % 4 == 1 || i % 4 == 2)
			assert_int_equal(ds_entry_add_federates_with(v[i],
			    "spiffe://fed-a.example"), 0);
		if (i % 4 == 2 || i % 4 == 3)
			assert_int_equal(ds_entry_add_federates_with(v[i],
			    "spiffe://fed-b.example"), 0);
		if (i % 4 == 3)
			assert_int_equal(ds_entry_add_federates_with(v[i],
			    "spiffe://fed-c.example"), 0);
		if (i % 3 == 1)
			v[i]->hint = strdup("h");
		v[i]->downstream = i % 6 == 1;
		v[i]->admin = i % 7 == 2;
		v[i]->x509_svid_ttl = (int32_t)i;
		v[i]->expires_at = i % 9 ? 0 : 4000000000 + (int64_t)i;
	}
	assert_int_equal(ds_entries_create(t.ds, v, NLISTS, res, 100), 0);
	for (i = 0; i < NLISTS; i++)
		assert_int_equal(res[i], 0);
	expect_filtered(NLISTS);

	/* Lists rewritten (their rows now last in their tables) and
	 * entries deleted (row IDs missing between others). */
	for (i = 0; i < NLISTS; i += 11) {
		snprintf(name, sizeof(name), "a%zu.late.example", i);
		if (v[i]->ndns_names < DS_MAX_DNS_NAMES)
			assert_int_equal(ds_entry_add_dns_name(v[i], name), 0);
		assert_int_equal(ds_entry_add_federates_with(v[i],
		    "spiffe://fed-late.example"), 0);
		assert_int_equal(update_one(v[i], 200), 0);
	}
	for (i = 0; i < NLISTS; i += 17)
		del[ndel++] = v[i]->id;
	assert_int_equal(ds_entries_delete(t.ds, del, ndel, res, 300), 0);
	expect_filtered(NLISTS - ndel);

	/* In a caller's transaction: its own write is listed, then not
	 * after the rollback. */
	assert_int_equal(ds_tx_begin(t.ds), 0);
	e = mk("in-tx", "spiffe://td/w/7", "spiffe://td/agent/1", "a:1");
	create_ok(e, 400);
	ds_entry_free(e);
	walk_all(&all, NLISTS - ndel + 1);
	ds_entry_list_free(&all);
	assert_int_equal(ds_tx_end(t.ds, 0), 0);
	walk_all(&all, NLISTS - ndel);
	ds_entry_list_free(&all);
	for (i = 0; i < NLISTS; i++)
		ds_entry_free(v[i]);
	free(v);
	free(res);
	free(del);
}

/* ---- the entry cache's refresh: changes merged in ---------------------- */

#define MERGE_PARENTS	6

static const char *const merge_parents[MERGE_PARENTS] = {
	"spiffe://td/agent/a", "spiffe://td/agent/a/b", "spiffe://td/agent/B",
	"spiffe://td/agent/\xc3\xa9", "spiffe://td/w/r1", "spiffe://td/p",
};

static uint32_t merge_seed = 12345;

static uint32_t
merge_rand(uint32_t n)
{
	merge_seed = merge_seed * 1103515245u + 12345u;
	return (merge_seed >> 8) % n;
}

/* A random entry: its ID new (counter) or given; one parent is an
 * entry's SPIFFE ID, so that a crawl goes down a level. */
static struct ds_entry *
merge_entry(const char *id, unsigned counter)
{
	struct ds_entry	*e;
	char		 buf[64], sp[64];
	uint32_t	 j;

	if (id == NULL) {
		/* Spread over the order by ID, not in creation order. */
		snprintf(buf, sizeof(buf), "%c%u", 'a' + (int)merge_rand(26),
		    counter);
		id = buf;
	}
	snprintf(sp, sizeof(sp), "spiffe://td/w/r%u", counter);
	snprintf(buf + 32, 32, "unix:uid:%u", counter);
	e = mk(id, sp, merge_parents[merge_rand(MERGE_PARENTS)], buf + 32);
	for (j = merge_rand(3); j > 0; j--) {
		snprintf(buf, sizeof(buf), "n%u.r%u.example", j, counter);
		assert_int_equal(ds_entry_add_dns_name(e, buf), 0);
	}
	return e;
}

/*
 * ec, refreshed, is the cache a fresh load builds: the same entries,
 * field for field, and the same authorized sets (through the order by
 * parent), before and after a crawl was remembered.
 */
static void
expect_cache_fresh(struct entry_cache *ec)
{
	struct entry_cache	 *fresh;
	struct ds_entry_list	  all;
	const struct ds_entry	**v, **w;
	size_t			  i, k, n, nw;
	int			  pass;

	assert_int_equal(entry_cache_new(t.ds, &fresh), 0);
	assert_int_equal(entry_cache_revision(ec),
	    entry_cache_revision(fresh));
	memset(&all, 0, sizeof(all));
	assert_int_equal(ds_entries_load(t.ds, collect_entry, &all), 0);
	assert_int_equal(entry_cache_count(ec), all.n);
	assert_int_equal(entry_cache_count(fresh), all.n);
	for (i = 0; i < all.n; i++) {
		assert_non_null(entry_cache_get(ec, all.v[i]->id));
		assert_same_entry(entry_cache_get(ec, all.v[i]->id),
		    entry_cache_get(fresh, all.v[i]->id));
	}
	for (pass = 0; pass < 2; pass++)
		for (k = 0; k <= MERGE_PARENTS; k++) {
			assert_int_equal(entry_cache_authorized(ec,
			    k < MERGE_PARENTS ? merge_parents[k] :
			    "spiffe://td/agent/none", NULL,
			    "spiffe://td/spire/server", &v, &n), 0);
			assert_int_equal(entry_cache_authorized(fresh,
			    k < MERGE_PARENTS ? merge_parents[k] :
			    "spiffe://td/agent/none", NULL,
			    "spiffe://td/spire/server", &w, &nw), 0);
			assert_int_equal(n, nw);
			for (i = 0; i < n; i++)
				assert_string_equal(v[i]->id, w[i]->id);
			free(v);
			free(w);
		}
	entry_cache_free(fresh);
	ds_entry_list_free(&all);
}

static void
test_entry_cache_merge(void **state)
{
	struct entry_cache	 *ec;
	struct ds_entry_list	  all;
	struct ds_entry		**v, *e;
	const char		**del;
	unsigned		  counter = 0;
	size_t			  nv, nd, nu, i, size, round;
	int			 *res;

	fresh();
	assert_int_equal(entry_cache_new(t.ds, &ec), 0);
	v = calloc(DS_MAX_BATCH, sizeof(*v));
	del = calloc(DS_MAX_BATCH, sizeof(*del));
	res = calloc(DS_MAX_BATCH, sizeof(*res));
	assert_true(v != NULL && del != NULL && res != NULL);
	/* From empty: the first changes merge into nothing. */
	for (round = 0; round < 30; round++) {
		memset(&all, 0, sizeof(all));
		assert_int_equal(ds_entries_load(t.ds, collect_entry, &all),
		    0);
		/* Mostly a few changes; at times none, or more changes
		 * than entries. */
		size = round == 0 ? 300 : round % 10 == 9 ? 0 :
		    round % 10 == 5 ? all.n + 50 : 1 + merge_rand(20);
		nv = nd = nu = 0;
		for (i = 0; i < size; i++) {
			switch (all.n == 0 ? 0 : merge_rand(3)) {
			case 0:
				v[nv++] = merge_entry(NULL, ++counter);
				break;
			case 1:		/* maybe to another parent */
				e = all.v[merge_rand((uint32_t)all.n)];
				v[size + nu++] = merge_entry(e->id, ++counter);
				break;
			default:
				del[nd++] = all.v[merge_rand((uint32_t)
				    all.n)]->id;
				break;
			}
		}
		/* One commit (and one sync to disk) a round. */
		assert_int_equal(ds_tx_begin(t.ds), 0);
		if (nv > 0)
			assert_int_equal(ds_entries_create(t.ds, v, nv, res,
			    1000 + (int64_t)round), 0);
		/* An ID picked twice: the second update may find it
		 * deleted (NOT_FOUND), as may a delete. */
		if (nu > 0)
			assert_int_equal(ds_entries_update(t.ds, v + size, nu,
			    res, 1000 + (int64_t)round), 0);
		if (nd > 0)
			assert_int_equal(ds_entries_delete(t.ds, del, nd, res,
			    1000 + (int64_t)round), 0);
		assert_int_equal(ds_tx_end(t.ds, 1), 0);
		/* A crawl remembered before the refresh must not outlive
		 * it. */
		{
			const struct ds_entry	**w;
			size_t			  nw;

			assert_int_equal(entry_cache_authorized(ec,
			    merge_parents[0], NULL,
			    "spiffe://td/spire/server", &w, &nw), 0);
			free(w);
		}
		assert_int_equal(entry_cache_refresh(ec), 0);
		expect_cache_fresh(ec);
		for (i = 0; i < nv; i++)
			ds_entry_free(v[i]);
		for (i = 0; i < nu; i++)
			ds_entry_free(v[size + i]);
		ds_entry_list_free(&all);
	}
	entry_cache_free(ec);
	free(v);
	free(del);
	free(res);
}

int
main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_open_and_records),
		cmocka_unit_test(test_entry_round_trip),
		cmocka_unit_test(test_entry_duplicates),
		cmocka_unit_test(test_entry_update),
		cmocka_unit_test(test_entry_batches),
		cmocka_unit_test(test_entry_filters),
		cmocka_unit_test(test_entry_paging),
		cmocka_unit_test(test_entry_prune),
		cmocka_unit_test(test_change_log),
		cmocka_unit_test(test_changes_prune_and_resync),
		cmocka_unit_test(test_entries_load),
		cmocka_unit_test(test_entry_list_lists),
		cmocka_unit_test(test_entry_cache_merge),
		cmocka_unit_test(test_nodes),
		cmocka_unit_test(test_node_lists),
		cmocka_unit_test(test_join_tokens),
		cmocka_unit_test(test_bundles),
		cmocka_unit_test(test_ca_journal),
		cmocka_unit_test(test_audit),
		cmocka_unit_test(test_audit_canonical),
		cmocka_unit_test(test_audit_chain),
		cmocka_unit_test(test_audit_tamper),
		cmocka_unit_test(test_audit_prune),
		cmocka_unit_test(test_audit_migration),
		cmocka_unit_test(test_ca_journal_migration),
		cmocka_unit_test(test_bundle_two_servers),
		cmocka_unit_test(test_audit_concurrent_and_kill9),
		cmocka_unit_test(test_audit_tx),
		cmocka_unit_test(test_backup),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_reopen),
		cmocka_unit_test(test_file_modes),
		cmocka_unit_test(test_future_schema_refused),
		cmocka_unit_test(test_check),
		cmocka_unit_test(test_kill9_keeps_committed),
		cmocka_unit_test(test_revision_commit_order),
		cmocka_unit_test(test_tx_survives_failed_call),
		cmocka_unit_test(test_pg_connect_errors),
		cmocka_unit_test(test_pg_reconnect),
	};
	const char	*only = argc > 1 ? argv[1] : "sqlite3";
	size_t		 i;
	int		 fails = 0, ran = 0;

	for (i = 0; i < sizeof(backends) / sizeof(backends[0]); i++) {
		if (strcmp(backends[i].type, only) != 0)
			continue;
		ran++;
		t.b = &backends[i];
		fails += cmocka_run_group_tests_name(backends[i].type, tests,
		    group_setup, group_teardown);
	}
	if (ran == 0) {
		fprintf(stderr, "test_ds: no backend \"%s\"\n", only);
		return 1;
	}
	return fails;
}
