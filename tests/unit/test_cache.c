/*
 * test_cache.c: the agent's cache on its own: entries replaced and
 * matched by selectors, federated bundles, JWT-SVIDs kept and evicted,
 * subscribers told of changes.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "cache.h"
#include "pkey.h"
#include "helpers/testjwt.h"
#include "xmalloc.h"

/* An entry with its ID, SPIFFE ID, hint, creation time and selectors
 * ("type:value", NULL-terminated). */
static struct cache_entry *
entry(const char *id, const char *hint, int64_t created, ...)
{
	struct cache_entry	*e = xcalloc(1, sizeof(*e));
	const char		*sel;
	char			 sid[128];
	va_list			 ap;

	snprintf(sid, sizeof(sid), "spiffe://example.org/%s", id);
	e->id = xstrdup(id);
	e->spiffe_id = xstrdup(sid);
	e->hint = xstrdup(hint);
	e->created_at = created;
	selector_set_init(&e->selectors);
	va_start(ap, created);
	while ((sel = va_arg(ap, const char *)) != NULL)
		assert_int_equal(selector_set_add_str(&e->selectors, sel,
		    NULL), 0);
	va_end(ap);
	return e;
}

static void
workload(struct selector_set *s, ...)
{
	const char	*sel;
	va_list		 ap;

	selector_set_init(s);
	va_start(ap, s);
	while ((sel = va_arg(ap, const char *)) != NULL)
		assert_int_equal(selector_set_add_str(s, sel, NULL), 0);
	va_end(ap);
}

static void
test_entries_and_matching(void **state)
{
	struct cache		 *c = cache_new();
	struct cache_entry	**v, **m = NULL, *kept;
	struct selector_set	  w;
	size_t			  n;

	v = xcalloc(5, sizeof(*v));
	v[0] = entry("d", "", 1, "unix:uid:1000", "unix:gid:1000", NULL);
	v[1] = entry("b", "", 1, "unix:uid:1000", NULL);
	v[2] = entry("c", "web", 2, "unix:gid:1000", NULL);
	v[3] = entry("a", "web", 1, "unix:uid:1000", NULL);
	v[4] = entry("e", "", 1, "unix:uid:2000", NULL);
	cache_set_entries(c, v, 5);
	assert_int_equal(cache_count(c), 5);
	/* In ID order, found by ID. */
	assert_string_equal(cache_entry_at(c, 0)->id, "a");
	assert_string_equal(cache_entry_at(c, 4)->id, "e");
	assert_null(cache_entry_at(c, 5));
	assert_string_equal(cache_find(c, "c")->id, "c");
	assert_null(cache_find(c, "zz"));
	/* Every selector of an entry must be the workload's; the older of
	 * two entries with one hint wins. */
	workload(&w, "unix:uid:1000", "unix:gid:1000", NULL);
	assert_int_equal(cache_match(c, &w, 0, &m, &n), 0);
	assert_int_equal(n, 3);
	assert_string_equal(m[0]->id, "a");
	assert_string_equal(m[1]->id, "b");
	assert_string_equal(m[2]->id, "d");
	free(m);
	/* Only entries with an SVID when asked. */
	assert_int_equal(cache_match(c, &w, 1, &m, &n), 0);
	assert_int_equal(n, 0);
	free(m);
	selector_set_cleanup(&w);
	workload(&w, "unix:gid:1000", NULL);
	assert_int_equal(cache_match(c, &w, 0, &m, &n), 0);
	assert_int_equal(n, 1);
	assert_string_equal(m[0]->id, "c");
	free(m);
	selector_set_cleanup(&w);
	/* A new set: what is kept stays (same object), the rest is freed. */
	kept = cache_find(c, "e");
	v = xcalloc(2, sizeof(*v));
	v[0] = kept;
	v[1] = entry("f", "", 3, "unix:uid:3000", NULL);
	cache_set_entries(c, v, 2);
	assert_int_equal(cache_count(c), 2);
	assert_ptr_equal(cache_find(c, "e"), kept);
	assert_null(cache_find(c, "a"));
	workload(&w, "unix:uid:1000", NULL);
	assert_int_equal(cache_match(c, &w, 0, &m, &n), 0);
	assert_int_equal(n, 0);
	free(m);
	selector_set_cleanup(&w);
	cache_free(c);
}

/* Whether any entry names a supplementary group, as sets come and go;
 * a selector of another type or another unix selector does not count. */
static void
test_names_groups(void **state)
{
	struct cache		 *c = cache_new();
	struct cache_entry	**v;

	assert_false(cache_names_groups(c));
	v = xcalloc(3, sizeof(*v));
	v[0] = entry("a", "", 1, "unix:uid:1000", NULL);
	v[1] = entry("b", "", 1, "docker:label:supplementary_gid:1", NULL);
	v[2] = entry("c", "", 1, "unix:gid:5", "unix:user:supplementary_x",
	    NULL);
	cache_set_entries(c, v, 3);
	assert_false(cache_names_groups(c));
	v = xcalloc(2, sizeof(*v));
	v[0] = entry("d", "", 1, "unix:uid:1000", NULL);
	v[1] = entry("e", "", 1, "unix:uid:1000",
	    "unix:supplementary_group:wheel", NULL);
	cache_set_entries(c, v, 2);
	assert_true(cache_names_groups(c));
	v = xcalloc(1, sizeof(*v));
	v[0] = entry("f", "", 1, "unix:supplementary_gid:10", NULL);
	cache_set_entries(c, v, 1);
	assert_true(cache_names_groups(c));
	cache_set_entries(c, xcalloc(1, sizeof(*v)), 0);
	assert_false(cache_names_groups(c));
	cache_free(c);
}

/* Entry i of test_many_entries: its ID is a scrambled i (so that sorted
 * runs take merging), its selectors a few of a small pool (so that many
 * share a first selector and chains of the index are long). */
#define MANY		3000
#define MANY_POOL	7

static struct cache_entry *
many_entry(size_t i)
{
	struct cache_entry	*e;
	char			 id[32], s1[32], s2[32];

	snprintf(id, sizeof(id), "%08zx", (i * 2654435761u) % 1000003);
	snprintf(s1, sizeof(s1), "unix:uid:%zu", i % MANY_POOL);
	snprintf(s2, sizeof(s2), "unix:gid:%zu", (i / MANY_POOL) % 3);
	e = i % 5 == 0 ? entry(id, "", 1, s1, NULL) :
	    i % 5 == 1 ? entry(id, "", 1, s2, s1, NULL) :
	    i % 5 == 2 ? entry(id, "", 1, NULL) :
	    entry(id, "", 1, s1, s2, NULL);
	return e;
}

static int
cmp_id(const void *x, const void *y)
{
	return strcmp((*(struct cache_entry *const *)x)->id,
	    (*(struct cache_entry *const *)y)->id);
}

/* The cache against a scan of every entry: its order, its lookups, and
 * every workload's matches. */
static void
check_many(struct cache *c, size_t n)
{
	struct cache_entry	**m, *e;
	struct selector_set	  w;
	char			  s1[32], s2[32];
	size_t			  i, k, nm, want;
	int			  uid, gid;

	assert_int_equal(cache_count(c), n);
	for (i = 0; i < n; i++) {
		e = cache_entry_at(c, i);
		if (i > 0)
			assert_true(strcmp(cache_entry_at(c, i - 1)->id,
			    e->id) < 0);
		assert_ptr_equal(cache_find(c, e->id), e);
	}
	for (uid = 0; uid <= MANY_POOL; uid++)
		for (gid = -1; gid < 3; gid++) {
			snprintf(s1, sizeof(s1), "unix:uid:%d", uid);
			snprintf(s2, sizeof(s2), "unix:gid:%d", gid);
			if (gid < 0)
				workload(&w, s1, NULL);
			else
				workload(&w, s1, s2, NULL);
			assert_int_equal(cache_match(c, &w, 0, &m, &nm), 0);
			for (i = k = want = 0; i < n; i++) {
				e = cache_entry_at(c, i);
				if (e->selectors.n == 0 ||
				    !selector_set_is_subset(&e->selectors, &w))
					continue;
				want++;
				assert_true(k < nm);
				assert_ptr_equal(m[k], e);
				k++;
			}
			assert_int_equal(nm, want);
			free(m);
			selector_set_cleanup(&w);
		}
}

/* Thousands of entries: given as a sync gives them (two sorted runs),
 * in any order, and sorted; each time held in ID order and matched as a
 * scan of every entry would. */
static void
test_many_entries(void **state)
{
	struct cache		 *c = cache_new();
	struct cache_entry	**v, *t;
	size_t			  i, j, n;

	/* Two sorted runs: the changed entries, then the unchanged ones
	 * (every third of the set before, kept). */
	v = xcalloc(MANY, sizeof(*v));
	for (i = 0; i < MANY; i++)
		v[i] = many_entry(i);
	qsort(v, MANY, sizeof(*v), cmp_id);
	cache_set_entries(c, v, MANY);
	check_many(c, MANY);
	v = xcalloc(MANY, sizeof(*v));
	for (i = n = 0; i < MANY; i++)
		if (i % 3 == 0)
			v[n++] = cache_entry_at(c, i);
	j = n;
	for (i = MANY; i < MANY + 1000; i++)
		v[n++] = many_entry(i);
	qsort(v + j, n - j, sizeof(*v), cmp_id);
	cache_set_entries(c, v, n);
	check_many(c, n);
	/* Any order: reversed, then shuffled. */
	v = xcalloc(n, sizeof(*v));
	for (i = 0; i < n; i++)
		v[i] = cache_entry_at(c, n - 1 - i);
	cache_set_entries(c, v, n);
	check_many(c, n);
	v = xcalloc(n, sizeof(*v));
	for (i = 0; i < n; i++)
		v[i] = cache_entry_at(c, i);
	for (i = n - 1; i > 0; i--) {
		j = (i * 7919) % (i + 1);
		t = v[i];
		v[i] = v[j];
		v[j] = t;
	}
	cache_set_entries(c, v, n);
	check_many(c, n);
	cache_free(c);
}

static void
test_bundles(void **state)
{
	struct cache	*c = cache_new();
	struct bundle	*own, *fed;
	size_t		 len = 1;

	assert_null(cache_bundle(c));
	assert_null(cache_bundle_for(c, "spiffe://example.org"));
	assert_int_equal(bundle_new("example.org", &own), 0);
	assert_int_equal(bundle_new("other.org", &fed), 0);
	cache_set_bundle(c, own);
	cache_add_federated(c, fed);
	assert_ptr_equal(cache_bundle(c), own);
	assert_ptr_equal(cache_bundle_for(c, "spiffe://example.org"), own);
	assert_ptr_equal(cache_bundle_for(c, "spiffe://other.org"), fed);
	assert_null(cache_bundle_for(c, "spiffe://third.org"));
	/* No X.509 authority: nothing to send. */
	(void)cache_bundle_der(c, &len);
	assert_int_equal(len, 0);
	cache_clear_federated(c);
	assert_null(cache_bundle_for(c, "spiffe://other.org"));
	cache_free(c);
}


/* JWT keys are decoded once per bundle held, and again for a new one. */
static void
test_jwt_keysets(void **state)
{
	struct cache			*c = cache_new();
	struct bundle			*own = testjwt_bundle("example.org", "k1");
	struct bundle			*fed = testjwt_bundle("other.org", "f1");
	const struct jose_keyset	*ks, *again, *fks;

	cache_set_bundle(c, own);
	cache_add_federated(c, fed);
	assert_non_null(ks = cache_jwt_keyset(c, own));
	assert_int_equal(ks->n, 1);
	assert_string_equal(jose_key_kid(ks->keys[0]), "k1");
	assert_ptr_equal(cache_jwt_keyset(c, own), ks);
	assert_non_null(fks = cache_jwt_keyset(c, fed));
	assert_string_equal(jose_key_kid(fks->keys[0]), "f1");
	/* A new own bundle: its keys, not the old ones'. */
	own = testjwt_bundle("example.org", "k2");
	cache_set_bundle(c, own);
	assert_non_null(again = cache_jwt_keyset(c, own));
	assert_int_equal(again->n, 1);
	assert_string_equal(jose_key_kid(again->keys[0]), "k2");
	cache_free(c);
}

static void
test_jwt_svids(void **state)
{
	struct cache	*c = cache_new();
	char		*aud[] = { "b", "a" }, *one[] = { "x" }, *k, *k2;
	char		 id[32];
	const char	*t;
	int		 fresh, i;

	k = cache_aud_key(aud, 2);
	assert_string_equal(k, "a\nb\n");
	k2 = cache_aud_key(one, 1);
	assert_string_equal(k2, "x\n");
	assert_null(cache_jwt_get(c, "e1", k, 100, &fresh));
	/* Fresh for half its life, then only valid, then gone. */
	cache_jwt_put(c, "e1", k, "token-1", 200, 100);
	t = cache_jwt_get(c, "e1", k, 120, &fresh);
	assert_string_equal(t, "token-1");
	assert_true(fresh);
	t = cache_jwt_get(c, "e1", k, 160, &fresh);
	assert_string_equal(t, "token-1");
	assert_false(fresh);
	assert_null(cache_jwt_get(c, "e1", k, 200, &fresh));
	assert_null(cache_jwt_get(c, "e1", k2, 120, &fresh));
	assert_null(cache_jwt_get(c, "e2", k, 120, &fresh));
	/* A renewal replaces the token. */
	cache_jwt_put(c, "e1", k, "token-2", 400, 200);
	assert_string_equal(cache_jwt_get(c, "e1", k, 210, &fresh),
	    "token-2");
	/* Full: the oldest goes first. */
	for (i = 0; i < CACHE_MAX_JWTS; i++) {
		snprintf(id, sizeof(id), "n%d", i);
		cache_jwt_put(c, id, k2, "t", 1000, 300);
	}
	assert_null(cache_jwt_get(c, "e1", k, 310, &fresh));
	assert_non_null(cache_jwt_get(c, "n0", k2, 310, &fresh));
	assert_non_null(cache_jwt_get(c, "n999", k2, 310, &fresh));
	cache_jwt_put(c, "late", k2, "t", 1000, 300);
	assert_null(cache_jwt_get(c, "n0", k2, 310, &fresh));
	assert_non_null(cache_jwt_get(c, "late", k2, 310, &fresh));
	free(k);
	free(k2);
	cache_free(c);
}

struct sub {
	struct cache_sub	 sub;
	struct cache		*c;
	int			 calls;
	int			 leave;		/* when told */
};

static void
changed(struct cache_sub *cs)
{
	struct sub *s = (struct sub *)cs;

	s->calls++;
	if (s->leave)
		cache_unsubscribe(s->c, &s->sub);
}

static void
test_subscribers(void **state)
{
	struct cache	*c = cache_new();
	struct sub	 a = { { NULL, changed }, c, 0, 0 };
	struct sub	 b = { { NULL, changed }, c, 0, 1 };
	struct sub	 d = { { NULL, changed }, c, 0, 0 };

	cache_subscribe(c, &a.sub);
	cache_subscribe(c, &b.sub);
	cache_subscribe(c, &d.sub);
	cache_notify(c);
	assert_int_equal(a.calls, 1);
	assert_int_equal(b.calls, 1);
	assert_int_equal(d.calls, 1);
	/* b left while being told; the others are still told. */
	cache_notify(c);
	assert_int_equal(a.calls, 2);
	assert_int_equal(b.calls, 1);
	assert_int_equal(d.calls, 2);
	cache_unsubscribe(c, &d.sub);
	cache_notify(c);
	assert_int_equal(a.calls, 3);
	assert_int_equal(d.calls, 2);
	cache_unsubscribe(c, &a.sub);
	cache_free(c);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_entries_and_matching),
		cmocka_unit_test(test_names_groups),
		cmocka_unit_test(test_many_entries),
		cmocka_unit_test(test_bundles),
		cmocka_unit_test(test_jwt_keysets),
		cmocka_unit_test(test_jwt_svids),
		cmocka_unit_test(test_subscribers),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
