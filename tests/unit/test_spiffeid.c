/*
 * test_spiffeid.c: SPIFFE ID rules (spec and go-spiffe), py-spiffe's
 * strict trust domains, and selector sets.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "selector.h"
#include "spiffeid.h"

struct idcase {
	const char	*in;
	unsigned	 flags;
	int		 ok;
	const char	*why;	/* substring of the error */
};

static const struct idcase idcases[] = {
	{ "spiffe://example.org/workload", 0, 1, NULL },
	{ "spiffe://example.org/a/b.c/d-e/f_g/H9", 0, 1, NULL },
	{ "spiffe://ex-am_ple.org/x", 0, 1, NULL },
	{ "spiffe://1.2.3.4/x", 0, 1, NULL },
	{ "spiffe://example.org", 0, 0, "no path" },
	{ "spiffe://example.org", SPIFFEID_ALLOW_ROOT, 1, NULL },
	{ "", 0, 0, "empty" },
	{ "example.org/x", 0, 0, "scheme" },
	{ "SPIFFE://example.org/x", 0, 0, "scheme" },
	{ "spiffe:/example.org/x", 0, 0, "scheme" },
	{ "https://example.org/x", 0, 0, "scheme" },
	{ "spiffe:///x", 0, 0, "trust domain is missing" },
	{ "spiffe://Example.org/x", 0, 0, "lowercase letters" },
	{ "spiffe://exa mple.org/x", 0, 0, "lowercase letters" },
	{ "spiffe://example.org:8080/x", 0, 0, "port" },
	{ "spiffe://user@example.org/x", 0, 0, "port or user info" },
	{ "spiffe://ex%41mple.org/x", 0, 0, "percent" },
	{ "spiffe://[::1]/x", 0, 0, "lowercase letters" },
	{ "spiffe://example.org/x/", 0, 0, "trailing slash" },
	{ "spiffe://example.org/", 0, 0, "trailing slash" },
	{ "spiffe://example.org//x", 0, 0, "empty segments" },
	{ "spiffe://example.org/./x", 0, 0, "dot segments" },
	{ "spiffe://example.org/x/..", 0, 0, "dot segments" },
	{ "spiffe://example.org/.../x", 0, 1, NULL },
	{ "spiffe://example.org/x%20y", 0, 0, "percent" },
	{ "spiffe://example.org/x y", 0, 0, "path segment characters" },
	{ "spiffe://example.org/x?q=1", 0, 0, "query" },
	{ "spiffe://example.org/x#f", 0, 0, "fragment" },
	{ "spiffe://ex_ample.org/x", SPIFFEID_STRICT, 0, "underscores" },
	{ "spiffe://-example.org/x", SPIFFEID_STRICT, 0, "start or end" },
	{ "spiffe://example.org./x", SPIFFEID_STRICT, 0, "start or end" },
	{ "spiffe://example..org/x", SPIFFEID_STRICT, 0, "empty labels" },
	{ "spiffe://example..org/x", 0, 1, NULL },
	{ "spiffe://example.org/x", SPIFFEID_STRICT, 1, NULL },
};

static void
test_id_rules(void **state)
{
	struct spiffeid	 id;
	const char	*why;
	size_t		 i;
	int		 r;

	for (i = 0; i < sizeof(idcases) / sizeof(idcases[0]); i++) {
		why = NULL;
		r = spiffeid_parse(idcases[i].in, idcases[i].flags, &id, &why);
		if (idcases[i].ok) {
			if (r != 0)
				fail_msg("%s: unexpected error: %s",
				    idcases[i].in, why);
		} else {
			if (r == 0)
				fail_msg("%s: accepted", idcases[i].in);
			if (why == NULL || strstr(why, idcases[i].why) == NULL)
				fail_msg("%s: error \"%s\", want \"%s\"",
				    idcases[i].in, why, idcases[i].why);
		}
	}
}

static void
test_length_limits(void **state)
{
	char		 s[SPIFFEID_MAX_LEN + 8], td[300];
	char		 tdout[SPIFFEID_MAX_TD_LEN + 1];
	struct spiffeid	 id;
	const char	*why;
	size_t		 n;

	strcpy(s, "spiffe://example.org/");
	n = strlen(s);
	memset(s + n, 'a', SPIFFEID_MAX_LEN - n);
	s[SPIFFEID_MAX_LEN] = '\0';
	assert_int_equal(spiffeid_parse(s, 0, &id, &why), 0);
	assert_int_equal(strlen(id.path), SPIFFEID_MAX_LEN - 20);
	s[SPIFFEID_MAX_LEN] = 'a';
	s[SPIFFEID_MAX_LEN + 1] = '\0';
	assert_int_equal(spiffeid_parse(s, 0, &id, &why), WICK_ERR_INVALID);
	assert_non_null(strstr(why, "2048"));

	memset(td, 'a', 255);
	td[255] = '\0';
	assert_int_equal(spiffeid_td_parse(td, 0, tdout, &why), 0);
	td[255] = 'a';
	td[256] = '\0';
	assert_int_equal(spiffeid_td_parse(td, 0, tdout, &why),
	    WICK_ERR_INVALID);
	assert_non_null(strstr(why, "255"));
}

static void
test_td_and_helpers(void **state)
{
	char		 td[SPIFFEID_MAX_TD_LEN + 1], out[SPIFFEID_MAX_LEN + 1];
	struct spiffeid	 id;
	const char	*why;

	assert_int_equal(spiffeid_td_parse("example.org", 0, td, &why), 0);
	assert_string_equal(td, "example.org");
	assert_int_equal(spiffeid_td_parse("spiffe://example.org", 0, td,
	    &why), 0);
	assert_string_equal(td, "example.org");
	assert_int_equal(spiffeid_td_parse("spiffe://example.org/x", 0, td,
	    &why), WICK_ERR_INVALID);
	assert_int_equal(spiffeid_td_parse("http://example.org", 0, td, &why),
	    WICK_ERR_INVALID);

	assert_int_equal(spiffeid_join_token_agent("example.org", "abc-123",
	    &id), 0);
	assert_int_equal(spiffeid_format(&id, out, sizeof(out)), 0);
	assert_string_equal(out,
	    "spiffe://example.org/spire/agent/join_token/abc-123");
	assert_true(spiffeid_is_reserved(&id));
	assert_true(spiffeid_member_of(&id, "example.org"));
	assert_false(spiffeid_member_of(&id, "example.com"));
	assert_int_equal(spiffeid_join_token_agent("example.org", "bad/../x",
	    &id), WICK_ERR_INVALID);
	assert_int_equal(spiffeid_server("example.org", &id), 0);
	assert_int_equal(spiffeid_format(&id, out, sizeof(out)), 0);
	assert_string_equal(out, "spiffe://example.org/spire/server");
	assert_int_equal(spiffeid_parse("spiffe://example.org/spirex", 0, &id,
	    &why), 0);
	assert_false(spiffeid_is_reserved(&id));
	assert_int_equal(spiffeid_format(&id, out, 10), WICK_ERR_LIMIT);
}

static void
test_selector_sets(void **state)
{
	struct selector_set	 entry, wl, empty;
	const char		*why;
	char			*text = NULL;

	selector_set_init(&entry);
	selector_set_init(&wl);
	selector_set_init(&empty);
	assert_int_equal(selector_set_add_str(&wl, "unix:uid:1000", &why), 0);
	assert_int_equal(selector_set_add_str(&wl, "docker:label:app:web",
	    &why), 0);
	assert_int_equal(selector_set_add_str(&wl, "unix:gid:1000", &why), 0);
	assert_int_equal(selector_set_add_str(&wl, "unix:uid:1000", &why), 0);
	assert_int_equal(wl.n, 3);
	assert_int_equal(selector_set_format(&wl, &text), 0);
	assert_string_equal(text, "docker:label:app:web\nunix:gid:1000\n"
	    "unix:uid:1000\n");
	free(text);

	assert_true(selector_set_is_subset(&empty, &wl));
	assert_true(selector_set_is_subset(&empty, &empty));
	assert_int_equal(selector_set_add_str(&entry, "unix:uid:1000", &why),
	    0);
	assert_true(selector_set_is_subset(&entry, &wl));
	assert_false(selector_set_is_subset(&wl, &entry));
	assert_int_equal(selector_set_add_str(&entry, "unix:UID:1000", &why),
	    0);
	assert_false(selector_set_is_subset(&entry, &wl));	/* case matters */
	assert_true(selector_set_contains(&wl, "docker", "label:app:web"));
	assert_false(selector_set_contains(&wl, "docker", "label:app"));

	assert_int_equal(selector_set_union(&empty, &wl), 0);
	assert_true(selector_set_equal(&empty, &wl));

	assert_int_equal(selector_set_add_str(&wl, "nocolon", &why),
	    WICK_ERR_INVALID);
	assert_non_null(strstr(why, "type:value"));
	assert_int_equal(selector_set_add_str(&wl, ":value", &why),
	    WICK_ERR_INVALID);
	assert_int_equal(selector_set_add_str(&wl, "unix:", &why),
	    WICK_ERR_INVALID);
	assert_int_equal(selector_set_add_str(&wl, "unix:a\nb", &why),
	    WICK_ERR_INVALID);
	selector_set_cleanup(&entry);
	selector_set_cleanup(&wl);
	selector_set_cleanup(&empty);
}

static void
test_selector_limits(void **state)
{
	struct selector_set	 s;
	const char		*why;
	char			 buf[32];
	int			 i;

	selector_set_init(&s);
	for (i = 0; i < SELECTOR_MAX_COUNT; i++) {
		snprintf(buf, sizeof(buf), "t:%d", i);
		assert_int_equal(selector_set_add_str(&s, buf, &why), 0);
	}
	assert_int_equal(selector_set_add_str(&s, "t:one-more", &why),
	    WICK_ERR_LIMIT);
	assert_int_equal(s.n, SELECTOR_MAX_COUNT);
	selector_set_cleanup(&s);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_id_rules),
		cmocka_unit_test(test_length_limits),
		cmocka_unit_test(test_td_and_helpers),
		cmocka_unit_test(test_selector_sets),
		cmocka_unit_test(test_selector_limits),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
