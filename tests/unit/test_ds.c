/*
 * test_ds.c: the datastore conformance suite.  Written once against ds.h
 * and run for every backend in the table below; a PostgreSQL backend adds
 * one row.
 */
#include <sys/stat.h>
#include <sys/wait.h>

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

#include "ds.h"

struct backend {
	const char	*type;
	/* A fresh, empty store's connection string. */
	void		(*conn)(char *out, size_t len, const char *dir, int n);
};

static void
sqlite_conn(char *out, size_t len, const char *dir, int n)
{
	snprintf(out, len, "%s/ds-%d.sqlite3", dir, n);
}

static const struct backend backends[] = {
	{ "sqlite3", sqlite_conn },
};

static struct {
	const struct backend	*b;
	char			 dir[64];
	char			 conn[256];
	int			 n;
	struct ds		*ds;
} t;

static void
fresh(void)
{
	const char *why;

	if (t.ds != NULL)
		ds_close(t.ds);
	t.b->conn(t.conn, sizeof(t.conn), t.dir, t.n++);
	assert_int_equal(ds_open(t.b->type, t.conn, &t.ds, &why), 0);
}

static int
setup(void **state)
{
	snprintf(t.dir, sizeof(t.dir), "/tmp/wick-ds-XXXXXX");
	if (mkdtemp(t.dir) == NULL)
		return -1;
	return 0;
}

static int
teardown(void **state)
{
	char cmd[128];

	ds_close(t.ds);
	t.ds = NULL;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", t.dir);
	return system(cmd) == 0 ? 0 : -1;
}

static struct ds_entry *
mk(const char *spiffe, const char *parent, const char *sel1,
    const char *sel2)
{
	struct ds_entry	*e = ds_entry_new();
	const char	*why;

	e->spiffe_id = strdup(spiffe);
	e->parent_id = strdup(parent);
	assert_int_equal(selector_set_add_str(&e->selectors, sel1, &why), 0);
	if (sel2 != NULL)
		assert_int_equal(selector_set_add_str(&e->selectors, sel2,
		    &why), 0);
	return e;
}

static char *
create(struct ds_entry *e, int64_t now)
{
	int res = -1;

	assert_int_equal(ds_entries_create(t.ds, &e, 1, &res, now), 0);
	assert_int_equal(res, 0);
	return strdup(e->id);
}

static void
test_entry_round_trip(void **state)
{
	struct ds_entry	*e = mk("spiffe://td/a", "spiffe://td/p", "unix:uid:1",
	    "unix:gid:2"), *g;
	char		*id;

	fresh();
	e->x509_svid_ttl = 600;
	e->jwt_svid_ttl = 60;
	e->admin = e->downstream = e->store_svid = 1;
	e->expires_at = 4000000000LL;
	e->hint = strdup("h");
	assert_int_equal(ds_entry_add_dns_name(e, "b.example"), 0);
	assert_int_equal(ds_entry_add_dns_name(e, "a.example"), 0);
	assert_int_equal(ds_entry_add_federates_with(e, "spiffe://x.org"), 0);
	id = create(e, 1000);
	assert_int_equal(strlen(id), 36);	/* a UUID was made */
	assert_int_equal(ds_entry_get(t.ds, id, &g), 0);
	assert_string_equal(g->spiffe_id, "spiffe://td/a");
	assert_string_equal(g->parent_id, "spiffe://td/p");
	assert_int_equal(g->selectors.n, 2);
	assert_true(selector_set_equal(&g->selectors, &e->selectors));
	assert_int_equal(g->x509_svid_ttl, 600);
	assert_int_equal(g->jwt_svid_ttl, 60);
	assert_true(g->admin && g->downstream && g->store_svid);
	assert_int_equal(g->expires_at, 4000000000LL);
	assert_string_equal(g->hint, "h");
	assert_int_equal(g->ndns_names, 2);
	assert_string_equal(g->dns_names[0], "b.example");	/* order kept */
	assert_string_equal(g->federates_with[0], "spiffe://x.org");
	assert_int_equal(g->created_at, 1000);
	assert_int_equal(g->revision_number, 0);
	assert_true(g->change_rev > 0);
	ds_entry_free(g);
	assert_int_equal(ds_entry_get(t.ds, "nope", &g), WICK_ERR_NOT_FOUND);
	ds_entry_free(e);
	free(id);
}

static void
test_entry_duplicates_and_batches(void **state)
{
	struct ds_entry	*v[3], *dup;
	char		*first;
	int		 res[3];

	fresh();
	v[0] = mk("spiffe://td/a", "spiffe://td/p", "unix:uid:1", NULL);
	first = create(v[0], 1);
	/* Same IDs and selectors: EXISTS, and the existing ID comes back. */
	dup = mk("spiffe://td/a", "spiffe://td/p", "unix:uid:1", NULL);
	assert_int_equal(ds_entries_create(t.ds, &dup, 1, res, 2), 0);
	assert_int_equal(res[0], WICK_ERR_EXISTS);
	assert_string_equal(dup->id, first);
	ds_entry_free(dup);
	ds_entry_free(v[0]);
	/* A batch with a bad middle item: the others land. */
	v[0] = mk("spiffe://td/b", "spiffe://td/p", "unix:uid:2", NULL);
	v[1] = mk("spiffe://td/c", "spiffe://td/p", "unix:uid:3", NULL);
	selector_set_cleanup(&v[1]->selectors);	/* no selectors */
	selector_set_init(&v[1]->selectors);
	v[2] = mk("spiffe://td/d", "spiffe://td/p", "unix:uid:4", NULL);
	v[2]->id = strdup(first);		/* an ID already taken */
	assert_int_equal(ds_entries_create(t.ds, v, 3, res, 3), 0);
	assert_int_equal(res[0], 0);
	assert_int_equal(res[1], WICK_ERR_INVALID);
	assert_int_equal(res[2], WICK_ERR_EXISTS);
	{
		int64_t n;

		assert_int_equal(ds_entries_count(t.ds, NULL, &n), 0);
		assert_int_equal(n, 2);
	}
	ds_entry_free(v[0]);
	ds_entry_free(v[1]);
	ds_entry_free(v[2]);
	free(first);
}

static void
test_entry_update_delete(void **state)
{
	struct ds_entry	*e = mk("spiffe://td/a", "spiffe://td/p", "unix:uid:1",
	    NULL), *o = mk("spiffe://td/o", "spiffe://td/p", "unix:uid:9", NULL);
	struct ds_entry	*g;
	const char	*ids[2];
	char		*id, *oid;
	int		 res[2];
	int64_t		 rev0, rev1;

	fresh();
	id = create(e, 10);
	oid = create(o, 10);
	assert_int_equal(ds_revision(t.ds, &rev0), 0);
	free(e->spiffe_id);
	e->spiffe_id = strdup("spiffe://td/a2");
	assert_int_equal(ds_entries_update(t.ds, &e, 1, res, 20), 0);
	assert_int_equal(res[0], 0);
	assert_int_equal(e->revision_number, 1);
	assert_int_equal(ds_entry_get(t.ds, id, &g), 0);
	assert_string_equal(g->spiffe_id, "spiffe://td/a2");
	assert_int_equal(g->revision_number, 1);
	assert_int_equal(g->created_at, 10);		/* kept */
	assert_int_equal(ds_revision(t.ds, &rev1), 0);
	assert_true(rev1 > rev0);
	assert_int_equal(g->change_rev, rev1);
	ds_entry_free(g);
	/* Updating into a duplicate of another entry is refused. */
	free(e->spiffe_id);
	e->spiffe_id = strdup("spiffe://td/o");
	selector_set_cleanup(&e->selectors);
	selector_set_init(&e->selectors);
	{
		const char *why;

		assert_int_equal(selector_set_add_str(&e->selectors,
		    "unix:uid:9", &why), 0);
	}
	assert_int_equal(ds_entries_update(t.ds, &e, 1, res, 30), 0);
	assert_int_equal(res[0], WICK_ERR_EXISTS);
	free(e->id);
	e->id = strdup("unknown");
	assert_int_equal(ds_entries_update(t.ds, &e, 1, res, 30), 0);
	assert_int_equal(res[0], WICK_ERR_NOT_FOUND);
	ids[0] = id;
	ids[1] = "unknown";
	assert_int_equal(ds_entries_delete(t.ds, ids, 2, res, 40), 0);
	assert_int_equal(res[0], 0);
	assert_int_equal(res[1], WICK_ERR_NOT_FOUND);
	assert_int_equal(ds_entry_get(t.ds, id, &g), WICK_ERR_NOT_FOUND);
	ds_entry_free(e);
	ds_entry_free(o);
	free(id);
	free(oid);
}

static void
test_filters_and_paging(void **state)
{
	struct ds_entry_filter	 f;
	struct ds_entry_list	 l;
	struct selector_set	 sel;
	const char		*why, *fw[1] = { "spiffe://fed.org" };
	char			 sp[64], u[32], *tok = NULL;
	int64_t			 n;
	size_t			 seen = 0, pages = 0;
	int			 i;

	fresh();
	for (i = 0; i < 25; i++) {
		struct ds_entry *e;

		snprintf(sp, sizeof(sp), "spiffe://td/w%d", i);
		snprintf(u, sizeof(u), "unix:uid:%d", i);
		e = mk(sp, i < 20 ? "spiffe://td/p" : "spiffe://td/q", u,
		    "unix:gid:7");
		if (i == 3)
			assert_int_equal(ds_entry_add_federates_with(e,
			    "spiffe://fed.org"), 0);
		if (i == 4) {
			e->downstream = 1;
			e->hint = strdup("hinted");
		}
		free(create(e, i));
		ds_entry_free(e);
	}
	memset(&f, 0, sizeof(f));
	f.parent_id = "spiffe://td/p";
	assert_int_equal(ds_entries_count(t.ds, &f, &n), 0);
	assert_int_equal(n, 20);
	/* Pages of 7: no duplicates, no gaps, a token until the end. */
	do {
		assert_int_equal(ds_entries_list(t.ds, &f, tok, 7, &l), 0);
		free(tok);
		tok = l.next_token != NULL ? strdup(l.next_token) : NULL;
		seen += l.n;
		pages++;
		ds_entry_list_free(&l);
	} while (tok != NULL);
	assert_int_equal(seen, 20);
	assert_int_equal(pages, 3);
	/* Selector match modes. */
	selector_set_init(&sel);
	assert_int_equal(selector_set_add_str(&sel, "unix:uid:3", &why), 0);
	memset(&f, 0, sizeof(f));
	f.selectors = &sel;
	f.selector_match = DS_MATCH_SUPERSET;
	assert_int_equal(ds_entries_count(t.ds, &f, &n), 0);
	assert_int_equal(n, 1);
	f.selector_match = DS_MATCH_EXACT;
	assert_int_equal(ds_entries_count(t.ds, &f, &n), 0);
	assert_int_equal(n, 0);
	assert_int_equal(selector_set_add_str(&sel, "unix:gid:7", &why), 0);
	assert_int_equal(ds_entries_count(t.ds, &f, &n), 0);
	assert_int_equal(n, 1);
	f.selector_match = DS_MATCH_ANY;
	assert_int_equal(ds_entries_count(t.ds, &f, &n), 0);
	assert_int_equal(n, 25);
	f.selector_match = DS_MATCH_SUBSET;
	assert_int_equal(selector_set_add_str(&sel, "unix:uid:4", &why), 0);
	assert_int_equal(ds_entries_count(t.ds, &f, &n), 0);
	assert_int_equal(n, 2);		/* uid:3+gid:7 and uid:4+gid:7 */
	selector_set_cleanup(&sel);
	memset(&f, 0, sizeof(f));
	f.federates_with = fw;
	f.nfederates_with = 1;
	f.federates_match = DS_MATCH_ANY;
	assert_int_equal(ds_entries_count(t.ds, &f, &n), 0);
	assert_int_equal(n, 1);
	memset(&f, 0, sizeof(f));
	f.downstream_only = 1;
	assert_int_equal(ds_entries_count(t.ds, &f, &n), 0);
	assert_int_equal(n, 1);
	memset(&f, 0, sizeof(f));
	f.hint = "hinted";
	f.spiffe_id = "spiffe://td/w4";
	assert_int_equal(ds_entries_list(t.ds, &f, NULL, 0, &l), 0);
	assert_int_equal(l.n, 1);
	assert_null(l.next_token);
	ds_entry_list_free(&l);
}

static void
test_prune(void **state)
{
	struct ds_entry	*a = mk("spiffe://td/a", "spiffe://td/p", "x:1", NULL);
	struct ds_entry	*b = mk("spiffe://td/b", "spiffe://td/p", "x:2", NULL);
	size_t		 n;
	int64_t		 count = 0;

	fresh();
	a->expires_at = 100;
	free(create(a, 1));
	free(create(b, 1));
	assert_int_equal(ds_entries_prune(t.ds, 50, &n), 0);
	assert_int_equal(n, 0);
	assert_int_equal(ds_entries_prune(t.ds, 101, &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(ds_entries_count(t.ds, NULL, &count), 0);
	assert_int_equal(count, 1);	/* b never expires */
	ds_entry_free(a);
	ds_entry_free(b);
}

struct changes {
	int		n;
	int64_t		last;
	enum ds_change_op ops[8];
};

static int
collect(void *arg, int64_t rev, enum ds_change_kind kind,
    enum ds_change_op op, const char *obj)
{
	struct changes *c = arg;

	assert_true(rev > c->last);
	c->last = rev;
	if (c->n < 8)
		c->ops[c->n] = op;
	c->n++;
	return 0;
}

static void
test_change_log(void **state)
{
	struct ds_entry	*a = mk("spiffe://td/a", "spiffe://td/p", "x:1", NULL);
	struct changes	 c;
	const char	*id;
	int		 res;

	fresh();
	free(create(a, 1));
	id = a->id;
	assert_int_equal(ds_entries_update(t.ds, &a, 1, &res, 2), 0);
	assert_int_equal(ds_entries_delete(t.ds, &id, 1, &res, 3), 0);
	memset(&c, 0, sizeof(c));
	assert_int_equal(ds_changes_since(t.ds, 0, 0, collect, &c), 0);
	assert_int_equal(c.n, 3);
	assert_int_equal(c.ops[0], DS_OP_CREATE);
	assert_int_equal(c.ops[1], DS_OP_UPDATE);
	assert_int_equal(c.ops[2], DS_OP_DELETE);
	memset(&c, 0, sizeof(c));
	assert_int_equal(ds_changes_since(t.ds, 1, 1, collect, &c), 0);
	assert_int_equal(c.n, 1);
	assert_int_equal(c.last, 2);
	ds_entry_free(a);
}

static void
test_nodes(void **state)
{
	struct ds_node		*n = ds_node_new(), *g;
	struct ds_node_filter	 f;
	struct ds_node_list	 l;
	struct selector_set	 sel;
	const char		*why;
	int64_t			 count;

	fresh();
	n->spiffe_id = strdup("spiffe://td/spire/agent/join_token/x");
	n->attestation_type = strdup("join_token");
	n->serial = strdup("aa");
	n->expires_at = 500;
	n->new_serial = strdup("");
	assert_int_equal(ds_node_create(t.ds, n, 1), 0);
	assert_int_equal(ds_node_create(t.ds, n, 1), WICK_ERR_EXISTS);
	assert_int_equal(ds_node_get(t.ds, n->spiffe_id, &g), 0);
	assert_string_equal(g->serial, "aa");
	assert_false(ds_node_banned(g));
	ds_node_free(g);
	assert_int_equal(ds_node_set_serials(t.ds, n->spiffe_id, "aa", 500,
	    "bb", 900, 2), 0);
	selector_set_init(&sel);
	assert_int_equal(selector_set_add_str(&sel, "tpm:pub_hash:1", &why), 0);
	assert_int_equal(ds_node_set_selectors(t.ds, n->spiffe_id, &sel, 3), 0);
	assert_int_equal(ds_node_get(t.ds, n->spiffe_id, &g), 0);
	assert_string_equal(g->new_serial, "bb");
	assert_int_equal(g->new_expires_at, 900);
	assert_true(selector_set_equal(&g->selectors, &sel));
	ds_node_free(g);
	memset(&f, 0, sizeof(f));
	f.selectors = &sel;
	f.selector_match = DS_MATCH_EXACT;
	assert_int_equal(ds_nodes_count(t.ds, &f, &count), 0);
	assert_int_equal(count, 1);
	memset(&f, 0, sizeof(f));
	f.expires_before = 400;
	assert_int_equal(ds_nodes_count(t.ds, &f, &count), 0);
	assert_int_equal(count, 0);
	assert_int_equal(ds_node_ban(t.ds, n->spiffe_id, 4), 0);
	assert_int_equal(ds_node_get(t.ds, n->spiffe_id, &g), 0);
	assert_true(ds_node_banned(g));
	ds_node_free(g);
	memset(&f, 0, sizeof(f));
	f.banned = 1;
	f.attestation_type = "join_token";
	assert_int_equal(ds_nodes_list(t.ds, &f, NULL, 0, &l), 0);
	assert_int_equal(l.n, 1);
	ds_node_list_free(&l);
	f.banned = 2;
	assert_int_equal(ds_nodes_count(t.ds, &f, &count), 0);
	assert_int_equal(count, 0);
	assert_int_equal(ds_node_delete(t.ds, n->spiffe_id, 5), 0);
	assert_int_equal(ds_node_get(t.ds, n->spiffe_id, &g),
	    WICK_ERR_NOT_FOUND);
	assert_int_equal(ds_node_delete(t.ds, n->spiffe_id, 5),
	    WICK_ERR_NOT_FOUND);
	selector_set_cleanup(&sel);
	ds_node_free(n);
}

static int
file_contains(const char *path, const char *needle)
{
	FILE	*f = fopen(path, "rb");
	char	*buf;
	long	 n;
	int	 hit;

	if (f == NULL)
		return 0;
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	buf = calloc(1, (size_t)n + 1);
	n = (long)fread(buf, 1, (size_t)n, f);
	fclose(f);
	hit = memmem(buf, (size_t)n, needle, strlen(needle)) != NULL;
	free(buf);
	return hit;
}

static void
test_join_tokens(void **state)
{
	const char	*tok = "4f1c2d9a-secret-token";
	char		 wal[300];
	size_t		 n;

	fresh();
	assert_int_equal(ds_join_token_create(t.ds, tok, 100), 0);
	assert_int_equal(ds_join_token_create(t.ds, tok, 100),
	    WICK_ERR_EXISTS);
	assert_int_equal(ds_join_token_create(t.ds, "old", 10), 0);
	assert_int_equal(ds_join_token_consume(t.ds, tok, 50), 0);
	assert_int_equal(ds_join_token_consume(t.ds, tok, 50),
	    WICK_ERR_NOT_FOUND);
	assert_int_equal(ds_join_token_consume(t.ds, "old", 50),
	    WICK_ERR_EXPIRED);
	assert_int_equal(ds_join_token_consume(t.ds, "old", 50),
	    WICK_ERR_NOT_FOUND);	/* expired ones are gone too */
	assert_int_equal(ds_join_token_create(t.ds, "stale", 10), 0);
	assert_int_equal(ds_join_tokens_prune(t.ds, 50, &n), 0);
	assert_int_equal(n, 1);
	/* The token text is in no file of the store. */
	assert_false(file_contains(t.conn, tok));
	snprintf(wal, sizeof(wal), "%s-wal", t.conn);
	assert_false(file_contains(wal, tok));
}

static int
count_bundle(void *arg, const char *td, const uint8_t *p, size_t n)
{
	(*(int *)arg)++;
	return 0;
}

static void
test_bundles_journal_audit(void **state)
{
	uint8_t	*p;
	size_t	 n;
	int	 count = 0;

	fresh();
	assert_int_equal(ds_bundle_get(t.ds, "spiffe://a", &p, &n),
	    WICK_ERR_NOT_FOUND);
	assert_int_equal(ds_bundle_set(t.ds, "spiffe://a",
	    (const uint8_t *)"one", 3, 1), 0);
	assert_int_equal(ds_bundle_set(t.ds, "spiffe://a",
	    (const uint8_t *)"two!", 4, 2), 0);
	assert_int_equal(ds_bundle_set(t.ds, "spiffe://b",
	    (const uint8_t *)"b", 1, 2), 0);
	assert_int_equal(ds_bundle_get(t.ds, "spiffe://a", &p, &n), 0);
	assert_int_equal(n, 4);
	assert_memory_equal(p, "two!", 4);
	free(p);
	assert_int_equal(ds_bundles_foreach(t.ds, count_bundle, &count), 0);
	assert_int_equal(count, 2);
	assert_int_equal(ds_bundle_delete(t.ds, "spiffe://b", 3), 0);
	assert_int_equal(ds_bundle_delete(t.ds, "spiffe://b", 3),
	    WICK_ERR_NOT_FOUND);
	assert_int_equal(ds_ca_journal_get(t.ds, &p, &n), WICK_ERR_NOT_FOUND);
	assert_int_equal(ds_ca_journal_set(t.ds, (const uint8_t *)"{}", 2, 1),
	    0);
	assert_int_equal(ds_ca_journal_set(t.ds, (const uint8_t *)"{\"a\":1}",
	    7, 2), 0);
	assert_int_equal(ds_ca_journal_get(t.ds, &p, &n), 0);
	assert_int_equal(n, 7);
	free(p);
	assert_int_equal(ds_audit_append(t.ds, 5, "entry.create", "uid:0", 1,
	    "{\"id\":\"x\"}"), 0);
	assert_int_equal(ds_audit_append(t.ds, 6, "agent.attest", "1.2.3.4",
	    0, NULL), 0);
}

static int
audit_cb(void *arg, const struct ds_audit *a)
{
	int *n = arg;

	if (*n == 0) {
		assert_string_equal(a->kind, "entry.create");
		assert_int_equal(a->ok, 1);
	} else {
		assert_string_equal(a->kind, "agent.attest");
		assert_int_equal(a->ok, 0);
		assert_string_equal(a->detail_json, "{}");
	}
	(*n)++;
	return 0;
}

static void
test_reopen_and_limits(void **state)
{
	struct ds_entry	*e = mk("spiffe://td/a", "spiffe://td/p", "x:1", NULL);
	struct ds	*again;
	struct stat	 st;
	const char	*why;
	char		*id, big[DS_HINT_MAX + 2];
	int		 res, n = 0;

	test_bundles_journal_audit(state);
	id = create(e, 7);
	/* Everything is still there after a reopen. */
	ds_close(t.ds);
	assert_int_equal(ds_open(t.b->type, t.conn, &t.ds, &why), 0);
	ds_entry_free(e);
	assert_int_equal(ds_entry_get(t.ds, id, &e), 0);
	assert_int_equal(ds_audit_since(t.ds, 0, 0, audit_cb, &n), 0);
	assert_int_equal(n, 2);
	assert_int_equal(stat(t.conn, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal(ds_check(t.ds, &why), 0);
	/* Limits refuse before the backend. */
	memset(big, 'h', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	free(e->hint);
	e->hint = strdup(big);
	free(e->id);
	e->id = NULL;
	assert_int_equal(ds_entries_create(t.ds, &e, 1, &res, 8), 0);
	assert_int_equal(res, WICK_ERR_LIMIT);
	assert_int_equal(ds_entries_create(t.ds, &e, DS_MAX_BATCH + 1, &res,
	    8), WICK_ERR_LIMIT);
	assert_int_equal(ds_open("oracle", "x", &again, &why),
	    WICK_ERR_CONFIG);
	ds_entry_free(e);
	free(id);
}

static void
test_future_schema_refused(void **state)
{
	struct ds	*d;
	const char	*why;
	char		 cmd[512];

	fresh();
	ds_close(t.ds);
	t.ds = NULL;
	snprintf(cmd, sizeof(cmd), "/usr/bin/python3 -c \"import sqlite3; "
	    "c = sqlite3.connect('%s'); c.execute('UPDATE schema_migrations "
	    "SET version = 999'); c.commit()\"", t.conn);
	if (system(cmd) != 0)
		skip();
	assert_int_equal(ds_open(t.b->type, t.conn, &d, &why),
	    WICK_ERR_UNSUPPORTED);
	assert_non_null(strstr(why, "newer"));
	assert_int_equal(ds_schema_version(), 1);
}

/* A child creates entries one by one and reports each ID after the call
 * returned; it is killed -9 mid-way.  Every reported ID must be there. */
static void
test_kill9_keeps_committed(void **state)
{
	char	 buf[64 * 1024], *line, *save;
	size_t	 got = 0, found = 0;
	ssize_t	 n;
	pid_t	 pid;
	int	 fds[2], status;

	fresh();
	ds_close(t.ds);
	t.ds = NULL;
	assert_int_equal(pipe(fds), 0);
	if ((pid = fork()) == 0) {
		struct ds	*d;
		const char	*why;
		char		 sp[64], out[64];
		int		 i, res;

		close(fds[0]);
		if (ds_open(t.b->type, t.conn, &d, &why) != 0)
			_exit(2);
		for (i = 0;; i++) {
			struct ds_entry *e;

			snprintf(sp, sizeof(sp), "spiffe://td/k%d", i);
			e = mk(sp, "spiffe://td/p", "unix:uid:1", NULL);
			if (ds_entries_create(d, &e, 1, &res, i) != 0 ||
			    res != 0)
				_exit(3);
			snprintf(out, sizeof(out), "%s\n", e->id);
			if (write(fds[1], out, strlen(out)) < 0)
				_exit(4);
			ds_entry_free(e);
		}
	}
	close(fds[1]);
	usleep(300 * 1000);
	kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
	while ((n = read(fds[0], buf + got, sizeof(buf) - got - 1)) > 0)
		got += (size_t)n;
	close(fds[0]);
	buf[got] = '\0';
	assert_true(WIFSIGNALED(status));
	{
		const char *why;

		assert_int_equal(ds_open(t.b->type, t.conn, &t.ds, &why), 0);
		assert_int_equal(ds_check(t.ds, &why), 0);
	}
	for (line = strtok_r(buf, "\n", &save); line != NULL;
	    line = strtok_r(NULL, "\n", &save)) {
		struct ds_entry *e;

		if (strlen(line) != 36)
			continue;	/* a line cut by the kill */
		assert_int_equal(ds_entry_get(t.ds, line, &e), 0);
		assert_int_equal(e->selectors.n, 1);
		ds_entry_free(e);
		found++;
	}
	assert_true(found > 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_entry_round_trip),
		cmocka_unit_test(test_entry_duplicates_and_batches),
		cmocka_unit_test(test_entry_update_delete),
		cmocka_unit_test(test_filters_and_paging),
		cmocka_unit_test(test_prune),
		cmocka_unit_test(test_change_log),
		cmocka_unit_test(test_nodes),
		cmocka_unit_test(test_join_tokens),
		cmocka_unit_test(test_reopen_and_limits),
		cmocka_unit_test(test_future_schema_refused),
		cmocka_unit_test(test_kill9_keeps_committed),
	};
	size_t	i;
	int	fails = 0;

	for (i = 0; i < sizeof(backends) / sizeof(backends[0]); i++) {
		t.b = &backends[i];
		fails += _cmocka_run_group_tests(backends[i].type, tests,
		    sizeof(tests) / sizeof(tests[0]), setup, teardown);
	}
	return fails;
}
