/*
 * test_jwtcache.c: the JWT-SVIDs ValidateJWTSVID verified, remembered by
 * digest and keys: hits and misses, the bound, a change of keys, expiry,
 * and the per-call checks that still run on a hit.
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
#include "jose.h"
#include "jwtcache.h"
#include "pkey.h"
#include "helpers/testjwt.h"

#define NOW	1700000000

/* Token-shaped bytes: only their digest matters here. */
#define TOKEN	"eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJzcGlmZmU6Ly9leGFtcGxlLm9y" \
		"Zy93In0.MEUCIQDk4WbqzRRvNPBBl2vCfUUb0oRSqU4QfG0yN3gJ1aAbCd"


struct fixture {
	struct cache	*c;
	struct bundle	*own;
	struct jwtcache	*jc;
};

static int
setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	f->c = cache_new();
	f->own = testjwt_bundle("example.org", "k1");
	cache_set_bundle(f->c, f->own);
	assert_non_null(f->jc = jwtcache_new(JWTCACHE_MAX));
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;

	jwtcache_free(f->jc);
	cache_free(f->c);
	free(f);
	return 0;
}

/* The keys of the own bundle, held for one call. */
static struct cache_keyset *
hold(struct fixture *f)
{
	const struct jose_keyset	*ks;
	struct cache_keyset		*k;

	assert_non_null(k = cache_jwt_keyset_hold(f->c, cache_bundle(f->c),
	    &ks));
	return k;
}

static json_t *
claims(const char *aud, int64_t exp)
{
	json_t *c = json_pack("{s:s, s:[s], s:I, s:I}", "sub",
	    "spiffe://example.org/w", "aud", aud, "exp", (json_int_t)exp,
	    "iat", (json_int_t)NOW);

	assert_non_null(c);
	return c;
}

static void
digest(struct fixture *f, const char *token, uint8_t d[JWTCACHE_DIGEST_LEN])
{
	assert_int_equal(jwtcache_digest(f->jc, token, d), 0);
}

/* Look token up with its claims for aud at now, the keys held as a call
 * holds them. */
static int
check(struct fixture *f, const char *token, json_t *c, const char *aud,
    int64_t now)
{
	struct cache_keyset	*k = hold(f);
	uint8_t			 d[JWTCACHE_DIGEST_LEN];
	char			 why[200];
	int			 r;

	digest(f, token, d);
	r = jwtcache_check(f->jc, d, k, c, aud, now, why, sizeof(why));
	cache_keyset_release(k);
	return r;
}

static void
put(struct fixture *f, const char *token, json_t *c, int64_t now)
{
	uint8_t d[JWTCACHE_DIGEST_LEN];

	digest(f, token, d);
	jwtcache_put(f->jc, d, hold(f), c, now);
}

static void
test_hit_and_miss(void **state)
{
	struct fixture		*f = *state;
	struct jwtcache_stats	 st;
	json_t			*c = claims("svc", NOW + 300);

	assert_int_equal(check(f, TOKEN, c, "svc", NOW), WICK_ERR_NOT_FOUND);
	put(f, TOKEN, c, NOW);
	assert_int_equal(check(f, TOKEN, c, "svc", NOW), 0);
	assert_int_equal(check(f, TOKEN, c, "svc", NOW + 10), 0);
	jwtcache_stats(f->jc, &st);
	assert_int_equal(st.entries, 1);
	assert_int_equal(st.hits, 2);
	assert_int_equal(st.misses, 1);
	json_decref(c);
}

/* One byte of the signature changed: another token, not known. */
static void
test_other_token_misses(void **state)
{
	struct fixture	*f = *state;
	json_t		*c = claims("svc", NOW + 300);
	char		*t = strdup(TOKEN);
	uint8_t		 d1[JWTCACHE_DIGEST_LEN], d2[JWTCACHE_DIGEST_LEN];

	assert_non_null(t);
	put(f, TOKEN, c, NOW);
	t[strlen(t) - 1] ^= 1;
	digest(f, TOKEN, d1);
	digest(f, t, d2);
	assert_memory_not_equal(d1, d2, sizeof(d1));
	assert_int_equal(check(f, t, c, "svc", NOW), WICK_ERR_NOT_FOUND);
	/* Nor is a prefix of it. */
	t[strlen(t) - 1] = '\0';
	assert_int_equal(check(f, t, c, "svc", NOW), WICK_ERR_NOT_FOUND);
	assert_int_equal(check(f, TOKEN, c, "svc", NOW), 0);
	free(t);
	json_decref(c);
}

/* The audience is the call's: a token remembered for one is refused for
 * another, and still answers for its own. */
static void
test_audience_each_call(void **state)
{
	struct fixture		*f = *state;
	struct cache_keyset	*k;
	json_t			*c = claims("svc", NOW + 300);
	uint8_t			 d[JWTCACHE_DIGEST_LEN];
	char			 why[200];

	put(f, TOKEN, c, NOW);
	k = hold(f);
	digest(f, TOKEN, d);
	assert_int_equal(jwtcache_check(f->jc, d, k, c, "other", NOW, why,
	    sizeof(why)), WICK_ERR_INVALID);
	assert_non_null(strstr(why, "audience \"other\""));
	cache_keyset_release(k);
	assert_int_equal(check(f, TOKEN, c, "svc", NOW), 0);
	json_decref(c);
}

/* New bundle keys: what verified under the old ones is not known. */
static void
test_keyset_change(void **state)
{
	struct fixture		*f = *state;
	struct jwtcache_stats	 st;
	json_t			*c = claims("svc", NOW + 300);

	put(f, TOKEN, c, NOW);
	assert_int_equal(check(f, TOKEN, c, "svc", NOW), 0);
	cache_set_bundle(f->c, testjwt_bundle("example.org", "k2"));
	assert_int_equal(check(f, TOKEN, c, "svc", NOW), WICK_ERR_NOT_FOUND);
	jwtcache_stats(f->jc, &st);
	assert_int_equal(st.entries, 0);
	/* Verified again under the new keys: known under those. */
	put(f, TOKEN, c, NOW);
	assert_int_equal(check(f, TOKEN, c, "svc", NOW), 0);
	/* The same bundle set again decodes its keys again: not known
	 * either (only slower, never wrong). */
	cache_set_bundle(f->c, cache_bundle(f->c));
	assert_int_equal(check(f, TOKEN, c, "svc", NOW), WICK_ERR_NOT_FOUND);
	json_decref(c);
}

/* Past exp (and the skew) an entry goes; so does one older than
 * JWTCACHE_MAX_AGE, whatever its exp. */
static void
test_expiry(void **state)
{
	struct fixture		*f = *state;
	struct jwtcache_stats	 st;
	json_t			*c = claims("svc", NOW + 100);
	json_t			*lng = claims("svc", NOW + 100000);
	int64_t			 end = NOW + 100 + JOSE_CLOCK_SKEW;

	put(f, TOKEN, c, NOW);
	assert_int_equal(check(f, TOKEN, c, "svc", end), 0);
	assert_int_equal(check(f, TOKEN, c, "svc", end + 1),
	    WICK_ERR_NOT_FOUND);
	jwtcache_stats(f->jc, &st);
	assert_int_equal(st.entries, 0);
	/* Gone from the old end too, without being shown again. */
	put(f, TOKEN, c, NOW);
	put(f, "a.b.c", lng, end + 1);
	jwtcache_stats(f->jc, &st);
	assert_int_equal(st.entries, 1);
	assert_int_equal(check(f, "a.b.c", lng, "svc",
	    end + 1 + JWTCACHE_MAX_AGE), 0);
	assert_int_equal(check(f, "a.b.c", lng, "svc",
	    end + 2 + JWTCACHE_MAX_AGE), WICK_ERR_NOT_FOUND);
	json_decref(c);
	json_decref(lng);
}

/* At the limit the least recently used goes. */
static void
test_bound(void **state)
{
	struct fixture		*f = *state;
	struct jwtcache_stats	 st;
	json_t			*c = claims("svc", NOW + 300);
	char			 t[64];
	size_t			 i;

	for (i = 0; i < JWTCACHE_MAX; i++) {
		snprintf(t, sizeof(t), "h.p.%zu", i);
		put(f, t, c, NOW);
	}
	jwtcache_stats(f->jc, &st);
	assert_int_equal(st.entries, JWTCACHE_MAX);
	/* Token 0 used again: token 1 is now the oldest. */
	assert_int_equal(check(f, "h.p.0", c, "svc", NOW), 0);
	put(f, "h.p.new", c, NOW);
	jwtcache_stats(f->jc, &st);
	assert_int_equal(st.entries, JWTCACHE_MAX);
	assert_int_equal(check(f, "h.p.0", c, "svc", NOW), 0);
	assert_int_equal(check(f, "h.p.1", c, "svc", NOW), WICK_ERR_NOT_FOUND);
	assert_int_equal(check(f, "h.p.2", c, "svc", NOW), 0);
	assert_int_equal(check(f, "h.p.new", c, "svc", NOW), 0);
	/* Put twice (two checks that both missed): one entry. */
	put(f, "h.p.new", c, NOW);
	jwtcache_stats(f->jc, &st);
	assert_int_equal(st.entries, JWTCACHE_MAX);
	json_decref(c);
}

/* A small limit, and no limit at all; a token above
 * JWTCACHE_MAX_TOKEN has no digest (it is verified each time). */
static void
test_limits(void **state)
{
	struct fixture		*f = *state;
	struct jwtcache		*two = jwtcache_new(2), *none = jwtcache_new(0);
	struct jwtcache_stats	 st;
	json_t			*c = claims("svc", NOW + 300);
	uint8_t			 d[JWTCACHE_DIGEST_LEN];
	char			*big = malloc(JWTCACHE_MAX_TOKEN + 2);

	assert_non_null(two);
	assert_non_null(none);
	assert_non_null(big);
	digest(f, "x.y.1", d);
	jwtcache_put(two, d, hold(f), c, NOW);
	digest(f, "x.y.2", d);
	jwtcache_put(two, d, hold(f), c, NOW);
	digest(f, "x.y.3", d);
	jwtcache_put(two, d, hold(f), c, NOW);
	jwtcache_stats(two, &st);
	assert_int_equal(st.entries, 2);
	jwtcache_put(none, d, hold(f), c, NOW);
	jwtcache_stats(none, &st);
	assert_int_equal(st.entries, 0);
	memset(big, 'a', JWTCACHE_MAX_TOKEN);
	big[JWTCACHE_MAX_TOKEN] = '\0';
	assert_int_equal(jwtcache_digest(f->jc, big, d), 0);
	big[JWTCACHE_MAX_TOKEN] = 'a';
	big[JWTCACHE_MAX_TOKEN + 1] = '\0';
	assert_int_equal(jwtcache_digest(f->jc, big, d), WICK_ERR_LIMIT);
	/* Claims without exp are not remembered. */
	json_object_del(c, "exp");
	digest(f, "x.y.4", d);
	jwtcache_put(f->jc, d, hold(f), c, NOW);
	jwtcache_stats(f->jc, &st);
	assert_int_equal(st.entries, 0);
	/* Freed with the keys they hold, after the cache that made them. */
	cache_free(f->c);
	f->c = NULL;
	jwtcache_free(two);
	jwtcache_free(none);
	free(big);
	json_decref(c);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_hit_and_miss, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_other_token_misses,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_audience_each_call,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_keyset_change, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_expiry, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bound, setup, teardown),
		cmocka_unit_test_setup_teardown(test_limits, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
