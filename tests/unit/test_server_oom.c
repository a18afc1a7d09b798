/*
 * test_server_oom.c: the server code a request reaches, run with each of
 * its allocations failing in turn (nghttp2's failmalloc idea).
 *
 * This binary alone is linked with --wrap for malloc, calloc, realloc,
 * reallocarray, strdup and asprintf, so the server library's own calls
 * come here; SQLite, OpenSSL and jansson allocate as usual.  Every
 * operation must then answer WICK_ERR_ALLOC (or succeed), leak nothing
 * (the sanitizer build checks) and never stop the process: a leftover
 * exit-on-failure allocator would end the test.  Once the count of
 * allocations runs past the failure point, the operation must succeed
 * and its result be whole.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "ds.h"
#include "entry_cache.h"
#include "pbconv.h"
#include "server.h"
#include "svc.h"

#define TD	"example.org"
#define SERVER	"spiffe://example.org/spire/server"
#define AGENT	"spiffe://example.org/spire/agent/join_token/t1"

/* ---- the hook: fail allocation number fail_at (1-based), once ---------- */

static unsigned	fail_at;	/* 0: never */
static unsigned	nalloc;
static unsigned	absorbed;	/* failures an absorbing op survived */

void	*__real_malloc(size_t);
void	*__real_calloc(size_t, size_t);
void	*__real_realloc(void *, size_t);
void	*__real_reallocarray(void *, size_t, size_t);
char	*__real_strdup(const char *);
void	*__wrap_malloc(size_t);
void	*__wrap_calloc(size_t, size_t);
void	*__wrap_realloc(void *, size_t);
void	*__wrap_reallocarray(void *, size_t, size_t);
char	*__wrap_strdup(const char *);
int	 __wrap_asprintf(char **, const char *, ...)
	    __attribute__((format(printf, 2, 3)));

static int
fail_now(void)
{
	return fail_at != 0 && ++nalloc == fail_at;
}

void *
__wrap_malloc(size_t n)
{
	return fail_now() ? NULL : __real_malloc(n);
}

void *
__wrap_calloc(size_t n, size_t m)
{
	return fail_now() ? NULL : __real_calloc(n, m);
}

void *
__wrap_realloc(void *p, size_t n)
{
	return fail_now() ? NULL : __real_realloc(p, n);
}

void *
__wrap_reallocarray(void *p, size_t n, size_t m)
{
	return fail_now() ? NULL : __real_reallocarray(p, n, m);
}

char *
__wrap_strdup(const char *s)
{
	return fail_now() ? NULL : __real_strdup(s);
}

int
__wrap_asprintf(char **out, const char *fmt, ...)
{
	va_list	ap;
	int	n;

	if (fail_now())
		return -1;
	va_start(ap, fmt);
	n = vasprintf(out, fmt, ap);
	va_end(ap);
	return n;
}

/*
 * Run op with allocation 1, 2, ... failing until a run allocates fewer
 * times than the failure point; op returns what it got and checks its
 * own result when that is 0.  A failed allocation must give
 * WICK_ERR_ALLOC, unless absorbing is set: then success is right too
 * (a cache that simply does not remember, a slower sort), and absorbed
 * counts those.  Returns the number of runs.
 */
static unsigned
each_failure(int (*op)(void *), void *arg, int absorbing)
{
	unsigned	k;
	int		r;

	absorbed = 0;
	for (k = 1; k < 100000; k++) {
		nalloc = 0;
		fail_at = k;
		r = op(arg);
		fail_at = 0;
		if (nalloc < k) {
			assert_int_equal(r, 0);
			return k;
		}
		if (absorbing && r == 0)
			absorbed++;
		else if (r != WICK_ERR_ALLOC)
			fail_msg("allocation %u of %u failed: got %d (%s), "
			    "not WICK_ERR_ALLOC", k, nalloc, r,
			    wick_strerror(r));
	}
	fail_msg("no end to the allocations");
	return 0;
}

/* Each test starts with the hook off (a failed one may leave it on). */
static int
hook_off(void **state)
{
	(void)state;
	fail_at = 0;
	return 0;
}

/* ---- a datastore to work on --------------------------------------------- */

static struct ds *
open_ds(void)
{
	struct ds *ds = NULL;

	assert_int_equal(ds_open("sqlite3", ":memory:", &ds, NULL), 0);
	return ds;
}

static struct ds_entry *
mk(const char *id, const char *spiffe, const char *parent, const char *sel)
{
	struct ds_entry	*e = ds_entry_new();
	const char	*why;

	assert_non_null(e);
	e->id = strdup(id);
	e->spiffe_id = strdup(spiffe);
	e->parent_id = strdup(parent);
	assert_int_equal(selector_set_add_str(&e->selectors, sel, &why), 0);
	return e;
}

static void
create(struct ds *ds, struct ds_entry *e)
{
	int res = 1;

	assert_int_equal(ds_entries_create(ds, &e, 1, &res, 100), 0);
	assert_int_equal(res, 0);
	ds_entry_free(e);
}

/* Entries: two parented to AGENT, one below the first of those, a node
 * alias AGENT's node matches and one below it, one for another agent;
 * AGENT's node record; a bundle and an audit row. */
static struct ds *
seeded(void)
{
	struct ds	*ds = open_ds();
	struct ds_entry	*e;
	struct ds_node	*n;
	const char	*why;

	e = mk("e1", "spiffe://example.org/w1", AGENT, "unix:uid:1");
	assert_int_equal(ds_entry_add_dns_name(e, "w1.example.org"), 0);
	assert_int_equal(ds_entry_add_federates_with(e, "spiffe://fed.org"),
	    0);
	create(ds, e);
	create(ds, mk("e2", "spiffe://example.org/w2", AGENT, "unix:uid:2"));
	create(ds, mk("e3", "spiffe://example.org/w3",
	    "spiffe://example.org/w1", "unix:uid:3"));
	create(ds, mk("e4", "spiffe://example.org/alias", SERVER,
	    "tpm:pub_hash:ab"));
	create(ds, mk("e5", "spiffe://example.org/w5",
	    "spiffe://example.org/alias", "unix:uid:5"));
	create(ds, mk("e6", "spiffe://example.org/w6",
	    "spiffe://example.org/spire/agent/join_token/other",
	    "unix:uid:6"));
	n = ds_node_new();
	assert_non_null(n);
	n->spiffe_id = strdup(AGENT);
	n->attestation_type = strdup("join_token");
	n->serial = strdup("01");
	n->new_serial = strdup("");
	n->expires_at = 1000;
	assert_int_equal(selector_set_add_str(&n->selectors,
	    "tpm:pub_hash:ab", &why), 0);
	assert_int_equal(ds_node_create(ds, n, 100), 0);
	ds_node_free(n);
	assert_int_equal(ds_bundle_set(ds, "spiffe://fed.org",
	    (const uint8_t *)"x", 1, 100), 0);
	assert_int_equal(ds_audit_append(ds, 100, "test", "uid:0", 1, "{}"),
	    0);
	return ds;
}

/* ---- the datastore ------------------------------------------------------- */

static struct selector_set	filter_sel;

static int
op_list_by_selector(void *arg)
{
	struct ds_entry_filter	f;
	struct ds_entry_list	l;
	int			r;

	memset(&f, 0, sizeof(f));
	f.selectors = &filter_sel;
	f.selector_match = DS_MATCH_ANY;
	/* Pages of 1: next_token is built too. */
	if ((r = ds_entries_list(arg, &f, NULL, 1, &l)) == 0) {
		assert_int_equal(l.n, 1);
		assert_string_equal(l.v[0]->id, "e1");
		assert_int_equal(l.v[0]->ndns_names, 1);
		assert_int_equal(l.v[0]->nfederates_with, 1);
		ds_entry_list_free(&l);
	}
	return r;
}

static int
op_list_all(void *arg)
{
	struct ds_entry_list	l;
	int			r;

	if ((r = ds_entries_list(arg, NULL, NULL, 2, &l)) == 0) {
		assert_int_equal(l.n, 2);
		assert_non_null(l.next_token);
		ds_entry_list_free(&l);
	}
	return r;
}

static int
op_entry_get(void *arg)
{
	struct ds_entry	*e;
	int		 r;

	if ((r = ds_entry_get(arg, "e1", &e)) == 0) {
		assert_string_equal(e->hint, "");
		assert_int_equal(e->selectors.n, 1);
		ds_entry_free(e);
	} else
		assert_null(e);
	return r;
}

static int
op_entry_dup(void *arg)
{
	struct ds_entry	*e = arg, *d;
	int		 r;

	if ((r = ds_entry_dup(e, &d)) == 0) {
		assert_string_equal(d->spiffe_id, e->spiffe_id);
		assert_int_equal(d->ndns_names, 1);
		assert_int_equal(d->nfederates_with, 1);
		ds_entry_free(d);
	} else
		assert_null(d);
	return r;
}

static int
op_nodes(void *arg)
{
	struct ds_node_list	 l;
	struct ds_node		*n;
	int			 r;

	if ((r = ds_node_get(arg, AGENT, &n)) != 0)
		return r;
	assert_int_equal(n->selectors.n, 1);
	ds_node_free(n);
	if ((r = ds_nodes_list(arg, NULL, NULL, 0, &l)) == 0) {
		assert_int_equal(l.n, 1);
		ds_node_list_free(&l);
	}
	return r;
}

static int
count_cb(void *arg, int64_t rev, enum ds_change_kind kind,
    enum ds_change_op op, const char *object)
{
	(*(int *)arg)++;
	return 0;
}

static int
bundle_cb(void *arg, const char *td, const uint8_t *p, size_t n)
{
	(*(int *)arg)++;
	return 0;
}

static int
audit_cb(void *arg, const struct ds_audit *a)
{
	(*(int *)arg)++;
	return 0;
}

static int
op_logs(void *arg)
{
	int n = 0, r;

	if ((r = ds_changes_since(arg, 0, 0, count_cb, &n)) != 0)
		return r;
	assert_true(n >= 7);
	n = 0;
	if ((r = ds_bundles_foreach(arg, bundle_cb, &n)) != 0)
		return r;
	assert_int_equal(n, 1);
	n = 0;
	if ((r = ds_audit_since(arg, 0, 0, audit_cb, &n)) != 0)
		return r;
	assert_int_equal(n, 1);
	return 0;
}

static void
test_ds(void **state)
{
	struct ds	*ds = seeded();
	struct ds_entry	*e;
	const char	*why;

	(void)state;
	selector_set_init(&filter_sel);
	assert_int_equal(selector_set_add_str(&filter_sel, "unix:uid:1",
	    &why), 0);
	each_failure(op_list_by_selector, ds, 0);
	selector_set_cleanup(&filter_sel);
	each_failure(op_list_all, ds, 0);
	each_failure(op_entry_get, ds, 0);
	each_failure(op_nodes, ds, 0);
	each_failure(op_logs, ds, 0);
	assert_int_equal(ds_entry_get(ds, "e1", &e), 0);
	each_failure(op_entry_dup, e, 0);
	ds_entry_free(e);
	ds_close(ds);
}

/* Creation: a failed batch writes nothing, a later one goes through. */
static struct ds *create_ds;

static int
op_create_entry(void *arg)
{
	struct ds_entry	*e = arg;
	int64_t		 count;
	int		 res = 1, r;

	r = ds_entries_create(create_ds, &e, 1, &res, 200);
	if (r == 0)
		r = res;
	if (r != 0) {
		/* All or nothing. */
		unsigned saved = fail_at;

		fail_at = 0;
		assert_int_equal(ds_entries_count(create_ds, NULL, &count), 0);
		assert_int_equal(count, 6);
		fail_at = saved;
	}
	return r;
}

static void
test_ds_create(void **state)
{
	struct ds_entry	*proto;
	int64_t		 count;

	(void)state;
	create_ds = seeded();
	/* No ID (the store picks a UUID), no hint (it stores ""). */
	proto = mk("", "spiffe://example.org/new", AGENT, "unix:uid:99");
	free(proto->id);
	proto->id = NULL;
	assert_int_equal(ds_entry_add_dns_name(proto, "new.example.org"), 0);
	each_failure(op_create_entry, proto, 0);
	assert_int_equal(ds_entries_count(create_ds, NULL, &count), 0);
	assert_int_equal(count, 7);
	ds_entry_free(proto);
	ds_close(create_ds);
}

/* ---- the entry cache ----------------------------------------------------- */

struct cache_case {
	struct ds		*ds;
	struct entry_cache	*ec;
	struct selector_set	 node_sel;
};

static int
op_authorized(void *arg)
{
	struct cache_case	 *c = arg;
	const struct ds_entry	**v;
	size_t			  n;
	int			  r;

	if ((r = entry_cache_authorized(c->ec, AGENT, &c->node_sel, SERVER,
	    &v, &n)) == 0) {
		/* e1, e2, e3 (below w1), e5 (through the alias). */
		assert_int_equal(n, 4);
		assert_string_equal(v[0]->id, "e1");
		assert_string_equal(v[3]->id, "e5");
		free(v);
	}
	return r;
}

/*
 * ec holds exactly the entries ids (space-separated), each found
 * by ID (the order by ID), and AGENT's authorized set is want (the order
 * by parent).
 */
static void
expect_cache(struct entry_cache *ec, struct cache_case *c, const char *ids,
    const char *want)
{
	const struct ds_entry	**v;
	char			  got[256] = "", *copy, *tok, *save = NULL;
	size_t			  i, n = 0;

	copy = strdup(ids);
	for (tok = strtok_r(copy, " ", &save); tok != NULL;
	    tok = strtok_r(NULL, " ", &save), n++)
		assert_non_null(entry_cache_get(ec, tok));
	free(copy);
	assert_int_equal(entry_cache_count(ec), n);
	assert_int_equal(entry_cache_authorized(ec, AGENT, &c->node_sel,
	    SERVER, &v, &n), 0);
	for (i = 0; i < n; i++) {
		if (i > 0)
			strcat(got, " ");
		strcat(got, v[i]->id);
	}
	free(v);
	assert_string_equal(got, want);
}

/*
 * A refresh applying a creation (e7, AGENT's), a deletion (e2), a move
 * to another parent (e3, from below w1 to AGENT) and a change of lists
 * (e5), to a cache loaded just before (the hook paused for the setup and
 * for the undoing after, so that every run fails the same allocations).
 * A refresh that succeeds must leave the cache whole.
 */
static int
op_refresh(void *arg)
{
	struct cache_case	*c = arg;
	struct ds_entry		*e, *e5;
	const char		*del[1] = { "e2" };
	unsigned		 at = fail_at;
	int			 res[1], r;

	fail_at = 0;
	entry_cache_free(c->ec);
	assert_int_equal(entry_cache_new(c->ds, &c->ec), 0);
	create(c->ds, mk("e7", "spiffe://example.org/w7", AGENT,
	    "unix:uid:7"));
	assert_int_equal(ds_entries_delete(c->ds, del, 1, res, 300), 0);
	assert_int_equal(res[0], 0);
	assert_int_equal(ds_entry_get(c->ds, "e3", &e), 0);
	free(e->parent_id);
	e->parent_id = strdup(AGENT);
	assert_int_equal(ds_entries_update(c->ds, &e, 1, res, 300), 0);
	assert_int_equal(res[0], 0);
	ds_entry_free(e);
	assert_int_equal(ds_entry_get(c->ds, "e5", &e), 0);
	assert_int_equal(e->ndns_names, 0);
	assert_int_equal(ds_entry_add_dns_name(e, "w5.example.org"), 0);
	assert_int_equal(ds_entries_update(c->ds, &e, 1, res, 300), 0);
	/* Kept for the undoing, without its name. */
	free(e->dns_names[0]);
	e->ndns_names = 0;
	e5 = e;
	fail_at = at;
	r = entry_cache_refresh(c->ec);
	fail_at = 0;
	if (r == 0) {
		expect_cache(c->ec, c, "e1 e3 e4 e5 e6 e7", "e1 e3 e5 e7");
		assert_int_equal(entry_cache_get(c->ec, "e5")->ndns_names, 1);
	}
	/* Back to the seeded entries for the next run. */
	del[0] = "e7";
	assert_int_equal(ds_entries_delete(c->ds, del, 1, res, 400), 0);
	create(c->ds, mk("e2", "spiffe://example.org/w2", AGENT,
	    "unix:uid:2"));
	assert_int_equal(ds_entry_get(c->ds, "e3", &e), 0);
	free(e->parent_id);
	e->parent_id = strdup("spiffe://example.org/w1");
	assert_int_equal(ds_entries_update(c->ds, &e, 1, res, 400), 0);
	ds_entry_free(e);
	assert_int_equal(ds_entries_update(c->ds, &e5, 1, res, 400), 0);
	ds_entry_free(e5);
	fail_at = at;
	return r;
}

static int
op_refresh_plain(void *arg)
{
	struct cache_case *c = arg;

	return entry_cache_refresh(c->ec);
}

/* The whole load, e1 with its lists, each entry where it belongs. */
static int
op_cache_new(void *arg)
{
	struct cache_case	*c = arg;
	const struct ds_entry	*e;
	unsigned		 at = fail_at;
	int			 r;

	if ((r = entry_cache_new(c->ds, &c->ec)) != 0)
		return r;
	fail_at = 0;
	expect_cache(c->ec, c, "e1 e2 e3 e4 e5 e6", "e1 e2 e3 e5");
	assert_non_null(e = entry_cache_get(c->ec, "e1"));
	assert_int_equal(e->ndns_names, 1);
	assert_string_equal(e->dns_names[0], "w1.example.org");
	assert_int_equal(e->nfederates_with, 1);
	assert_int_equal(e->selectors.n, 1);
	entry_cache_free(c->ec);
	c->ec = NULL;
	fail_at = at;
	return 0;
}

static void
test_entry_cache(void **state)
{
	struct cache_case	 c;
	const char		*why;
	const char		*del[2] = { "e2", "e6" };
	int			 res[2];
	int64_t			 rev;

	(void)state;
	memset(&c, 0, sizeof(c));
	c.ds = seeded();
	selector_set_init(&c.node_sel);
	assert_int_equal(selector_set_add_str(&c.node_sel, "tpm:pub_hash:ab",
	    &why), 0);
	/* Only the four arrays of the keyed sort may fail and still load
	 * (sorted the plain way): a slower start, not a failed one. */
	each_failure(op_cache_new, &c, 1);
	assert_int_equal(absorbed, 4);
	assert_int_equal(entry_cache_new(c.ds, &c.ec), 0);
	assert_int_equal(entry_cache_count(c.ec), 6);
	/* The crawl (keeping the set is optional); then the memo. */
	each_failure(op_authorized, &c, 1);
	each_failure(op_authorized, &c, 0);
	/* Changes merged in under failures; only the merge's two arrays
	 * may fail and still refresh (by sorting everything again). */
	each_failure(op_refresh, &c, 1);
	assert_int_equal(absorbed, 2);
	/* A failed refresh leaves the revision where it was and the next
	 * one catches up. */
	create(c.ds, mk("e7", "spiffe://example.org/w7", AGENT,
	    "unix:uid:7"));
	assert_int_equal(ds_entries_delete(c.ds, del, 2, res, 300), 0);
	each_failure(op_refresh_plain, &c, 1);
	assert_int_equal(ds_revision(c.ds, &rev), 0);
	assert_int_equal(entry_cache_revision(c.ec), rev);
	assert_int_equal(entry_cache_count(c.ec), 5);
	assert_null(entry_cache_get(c.ec, "e2"));
	assert_null(entry_cache_get(c.ec, "e6"));
	assert_non_null(entry_cache_get(c.ec, "e7"));
	selector_set_cleanup(&c.node_sel);
	entry_cache_free(c.ec);
	ds_close(c.ds);
}

/*
 * Deleting several entries in one refresh: the ones found first must not
 * blind the search for the next (a hole in the sorted array did).
 */
static void
test_entry_cache_deletes(void **state)
{
	static const char *const ids[] = { "a", "b", "c", "d", "e", "f", "g",
	    "h" };
	const char		*del[2] = { "e", "g" };
	struct ds		*ds = open_ds();
	struct entry_cache	*ec;
	char			 spiffe[64];
	int			 res[2];
	size_t			 i;

	(void)state;
	for (i = 0; i < 8; i++) {
		snprintf(spiffe, sizeof(spiffe), "spiffe://example.org/%s",
		    ids[i]);
		create(ds, mk(ids[i], spiffe, AGENT, "unix:uid:1"));
	}
	assert_int_equal(entry_cache_new(ds, &ec), 0);
	assert_int_equal(ds_entries_delete(ds, del, 2, res, 300), 0);
	assert_int_equal(entry_cache_refresh(ec), 0);
	assert_int_equal(entry_cache_count(ec), 6);
	assert_null(entry_cache_get(ec, "e"));
	assert_null(entry_cache_get(ec, "g"));
	assert_non_null(entry_cache_get(ec, "h"));
	entry_cache_free(ec);
	ds_close(ds);
}

/* ---- protobuf conversion and entry checks -------------------------------- */

static int
op_pb(void *arg)
{
	Wick__Types__Entry	 *in = arg, out;
	struct ds_entry		 *e;
	const char		 *why;
	int			  r;

	if ((r = pb_to_entry(in, &e, &why)) != 0)
		return r;
	if ((r = pb_from_entry(e, &out)) == 0) {
		assert_int_equal(out.n_selectors, 2);
		assert_string_equal(out.selectors[1]->value, "uid:2");
		pb_entry_clear(&out);
	}
	ds_entry_free(e);
	return r;
}

static void
test_pbconv(void **state)
{
	Wick__Types__Entry	 pb;
	Wick__Types__Selector	 s1, s2, *sv[2] = { &s1, &s2 };
	char			*dns[1] = { "a.example.org" };
	char			*fed[1] = { "spiffe://fed.org" };

	(void)state;
	wick__types__entry__init(&pb);
	wick__types__selector__init(&s1);
	wick__types__selector__init(&s2);
	s1.type = "unix";
	s1.value = "uid:1";
	s2.type = "unix";
	s2.value = "uid:2";
	pb.id = "x";
	pb.spiffe_id = "spiffe://example.org/x";
	pb.parent_id = AGENT;
	pb.selectors = sv;
	pb.n_selectors = 2;
	pb.dns_names = dns;
	pb.n_dns_names = 1;
	pb.federates_with = fed;
	pb.n_federates_with = 1;
	each_failure(op_pb, &pb, 0);
}

struct check_case {
	struct server	*srv;
};

static int
op_check_entry(void *arg)
{
	struct check_case	*c = arg;
	struct ds_entry		*e;
	char			 msg[256];
	int			 r;
	unsigned		 saved = fail_at;

	/* The entry is made outside the failures: only the check counts. */
	fail_at = 0;
	e = mk("", "spiffe://example.org/checked", AGENT, "unix:uid:1");
	assert_int_equal(ds_entry_add_federates_with(e, "fed.org"), 0);
	fail_at = saved;
	r = svc_check_entry(c->srv, e, msg, sizeof(msg));
	if (r == 0)
		assert_string_equal(e->federates_with[0], "spiffe://fed.org");
	else
		assert_true(*msg != '\0');
	ds_entry_free(e);
	return r;
}

static void
test_check_entry(void **state)
{
	struct server_config	cfg;
	struct server		srv;
	struct check_case	c;

	(void)state;
	memset(&cfg, 0, sizeof(cfg));
	memset(&srv, 0, sizeof(srv));
	cfg.trust_domain = TD;
	srv.cfg = &cfg;
	snprintf(srv.server_id, sizeof(srv.server_id), "%s", SERVER);
	srv.ds = seeded();
	c.srv = &srv;
	each_failure(op_check_entry, &c, 0);
	ds_close(srv.ds);
}

/* The redaction that keeps live join tokens out of failure lines. */
static void
test_redact(void **state)
{
	char out[256], *dup;

	(void)state;
	svc_redact("agent \"spiffe://example.org/spire/agent/join_token/"
	    "abc-123\": not found", out, sizeof(out));
	assert_null(strstr(out, "abc-123"));
	/* sha256("abc-123") begins with these digits. */
	assert_non_null(strstr(out, "join_token/<token sha256 "));
	assert_non_null(strstr(out, ">\": not found"));
	svc_redact("no token here", out, sizeof(out));
	assert_string_equal(out, "no token here");
	svc_redact("a /spire/agent/join_token/x and /spire/agent/join_token/y",
	    out, sizeof(out));
	assert_null(strstr(out, "/x "));
	assert_true(out[strlen(out) - 1] == '>');
	/* Truncation cuts the line, never shows a token. */
	svc_redact("spiffe://example.org/spire/agent/join_token/secret-token",
	    out, 20);
	assert_null(strstr(out, "secret"));
	/* The copy is sized for the longest result: one-letter tokens. */
	assert_int_equal(svc_redact_dup("{\"a\":\"/spire/agent/join_token/x\","
	    "\"b\":\"/spire/agent/join_token/y\"}", &dup), 0);
	assert_null(strstr(dup, "/x\""));
	assert_null(strstr(dup, "/y\""));
	assert_non_null(strstr(dup, ">\"}"));
	free(dup);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_ds, hook_off),
		cmocka_unit_test_setup(test_ds_create, hook_off),
		cmocka_unit_test_setup(test_entry_cache, hook_off),
		cmocka_unit_test_setup(test_entry_cache_deletes, hook_off),
		cmocka_unit_test_setup(test_pbconv, hook_off),
		cmocka_unit_test_setup(test_check_entry, hook_off),
		cmocka_unit_test_setup(test_redact, hook_off),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
