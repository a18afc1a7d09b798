/*
 * test_cli.c: the admin commands: Go-style flags, entries from flags and
 * from -data JSON, value formats, SPIRE's output blocks, and whole
 * commands against a fake admin server on a Unix socket (run on its own
 * loop in a second thread, as the real server would be another process).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include <openssl/x509.h>

#include "cli.h"
#include "cli_int.h"
#include "health.pb-c.h"
#include "rpc.h"
#include "helpers/testpki.h"

#define ENTRY_NFLAGS	19

/* ---- helpers ------------------------------------------------------------- */

/* Output of a function printing into a FILE. */
struct mem {
	FILE	*f;
	char	*buf;
	size_t	 len;
};

static void
mem_open(struct mem *m)
{
	memset(m, 0, sizeof(*m));
	m->f = open_memstream(&m->buf, &m->len);
	assert_non_null(m->f);
}

static const char *
mem_text(struct mem *m)
{
	assert_int_equal(fflush(m->f), 0);
	return m->buf;
}

static int
starts_with(const char *s, const char *prefix)
{
	return strncmp(s, prefix, strlen(prefix)) == 0;
}

static void
mem_close(struct mem *m)
{
	fclose(m->f);
	free(m->buf);
}

/* The command table of a verb and subcommand. */
static const struct cli_cmd *
cmd_of(const char *verb, const char *sub)
{
	const struct cli_cmd	*t[] = { cli_entry_cmds, cli_agent_cmds,
				    cli_bundle_cmds };
	size_t			 n[] = { cli_entry_ncmds, cli_agent_ncmds,
				    cli_bundle_ncmds };
	size_t			 i, j;

	for (i = 0; i < 3; i++)
		for (j = 0; j < n[i]; j++)
			if (strcmp(t[i][j].verb, verb) == 0 &&
			    (t[i][j].sub == NULL ? sub == NULL :
			    sub != NULL && strcmp(t[i][j].sub, sub) == 0))
				return &t[i][j];
	fail_msg("no command %s %s", verb, sub != NULL ? sub : "");
	return NULL;
}

/* Parse argv (NULL-terminated) with a command's flags. */
static int
parse(struct cli_args *a, const char *verb, const char *sub,
    const char **argv, char *err, size_t errlen)
{
	const struct cli_cmd	*c = cmd_of(verb, sub);
	int			 argc = 0;

	while (argv[argc] != NULL)
		argc++;
	err[0] = '\0';
	return cli_args_parse(a, "test", c->flags, c->nflags, argc,
	    (char **)argv, err, errlen);
}

/* ---- flags --------------------------------------------------------------- */

static const struct cli_flag tflags[] = {
	{ "spiffeID", CLI_FLAG_STRING, "string", NULL, "the ID" },
	{ "selector", CLI_FLAG_LIST, "value", NULL, "a selector" },
	{ "admin", CLI_FLAG_BOOL, NULL, NULL, "admin" },
	{ "ttl", CLI_FLAG_STRING, "int", "600", "the TTL" },
	{ "socketPath", CLI_FLAG_STRING, "string", "/x.sock", "socket" },
};

static int
tparse(struct cli_args *a, char *err, ...)
{
	const char	*argv[32];
	va_list		 ap;
	int		 argc = 0;

	va_start(ap, err);
	while ((argv[argc] = va_arg(ap, const char *)) != NULL)
		argc++;
	va_end(ap);
	err[0] = '\0';
	return cli_args_parse(a, "entry create", tflags,
	    sizeof(tflags) / sizeof(tflags[0]), argc, (char **)argv, err,
	    CLI_ERRLEN);
}

static void
test_flags(void **state)
{
	struct cli_args		 a;
	struct mem		 m;
	const char *const	*l;
	char			 err[CLI_ERRLEN];
	size_t			 n;

	assert_int_equal(tparse(&a, err, "-spiffeID", "spiffe://a/b",
	    "--selector=unix:uid:0", "-selector", "k8s:ns:x", "-admin",
	    "-ttl=60", NULL), 0);
	assert_string_equal(cli_arg_str(&a, "spiffeID"), "spiffe://a/b");
	assert_string_equal(cli_arg_str(&a, "ttl"), "60");
	assert_true(cli_arg_bool(&a, "admin"));
	assert_true(cli_arg_given(&a, "admin"));
	assert_false(cli_arg_given(&a, "socketPath"));
	assert_null(cli_arg_str(&a, "socketPath"));
	assert_null(cli_arg_str(&a, "undefined"));
	l = cli_arg_list(&a, "selector", &n);
	assert_int_equal(n, 2);
	assert_string_equal(l[0], "unix:uid:0");
	assert_string_equal(l[1], "k8s:ns:x");
	cli_args_cleanup(&a);

	/* A string flag takes the next argument whatever it looks like. */
	assert_int_equal(tparse(&a, err, "-spiffeID", "-x", "--", NULL), 0);
	assert_string_equal(cli_arg_str(&a, "spiffeID"), "-x");
	cli_args_cleanup(&a);
	/* The last value of a string flag wins; -b=false clears. */
	assert_int_equal(tparse(&a, err, "-ttl", "1", "-ttl", "2", "-admin",
	    "-admin=false", NULL), 0);
	assert_string_equal(cli_arg_str(&a, "ttl"), "2");
	assert_false(cli_arg_bool(&a, "admin"));
	assert_true(cli_arg_given(&a, "admin"));
	cli_args_cleanup(&a);

	assert_int_equal(tparse(&a, err, "-h", NULL), CLI_HELP);
	cli_args_cleanup(&a);
	assert_int_equal(tparse(&a, err, "--help", NULL), CLI_HELP);
	cli_args_cleanup(&a);

	assert_int_equal(tparse(&a, err, "-nope", "x", NULL),
	    WICK_ERR_INVALID);
	assert_string_equal(err, "flag provided but not defined: -nope");
	cli_args_cleanup(&a);
	assert_int_equal(tparse(&a, err, "-spiffeID", NULL), WICK_ERR_INVALID);
	assert_string_equal(err, "flag needs an argument: -spiffeID");
	cli_args_cleanup(&a);
	assert_int_equal(tparse(&a, err, "-admin=maybe", NULL),
	    WICK_ERR_INVALID);
	assert_string_equal(err, "invalid boolean value \"maybe\" for -admin: "
	    "parse error");
	cli_args_cleanup(&a);
	assert_int_equal(tparse(&a, err, "-admin", "stray", NULL),
	    WICK_ERR_INVALID);
	assert_string_equal(err, "unexpected argument \"stray\"");
	cli_args_cleanup(&a);
	assert_int_equal(tparse(&a, err, "---x", NULL), WICK_ERR_INVALID);
	assert_string_equal(err, "bad flag syntax: ---x");
	cli_args_cleanup(&a);
	assert_int_equal(tparse(&a, err, "--", "x", NULL), WICK_ERR_INVALID);
	cli_args_cleanup(&a);
	assert_int_equal(tparse(&a, err, "-", NULL), WICK_ERR_INVALID);
	cli_args_cleanup(&a);

	/* Usage: sorted like Go's, defaults shown. */
	assert_int_equal(tparse(&a, err, NULL), 0);
	mem_open(&m);
	cli_usage(m.f, &a);
	assert_string_equal(mem_text(&m),
	    "Usage of entry create:\n"
	    "  -admin\n    \tadmin\n"
	    "  -selector value\n    \ta selector\n"
	    "  -socketPath string\n    \tsocket (default \"/x.sock\")\n"
	    "  -spiffeID string\n    \tthe ID\n"
	    "  -ttl int\n    \tthe TTL (default 600)\n");
	mem_close(&m);
	cli_args_cleanup(&a);
}

static void
test_command_tables(void **state)
{
	const struct cli_cmd	*tables[] = { cli_entry_cmds, cli_agent_cmds,
				    cli_bundle_cmds };
	size_t			 n[] = { cli_entry_ncmds, cli_agent_ncmds,
				    cli_bundle_ncmds };
	size_t			 t, i, j, k;

	for (t = 0; t < 3; t++)
		for (i = 0; i < n[t]; i++) {
			const struct cli_cmd *c = &tables[t][i];

			assert_true(c->nflags <= CLI_MAX_FLAGS);
			assert_true(cli_is_verb(c->verb));
			/* every command takes -socketPath; no duplicates */
			for (j = 0, k = 0; j < c->nflags; j++)
				if (strcmp(c->flags[j].name, "socketPath") ==
				    0)
					k++;
			assert_int_equal(k, 1);
			for (j = 0; j < c->nflags; j++)
				for (k = j + 1; k < c->nflags; k++)
					assert_string_not_equal(
					    c->flags[j].name,
					    c->flags[k].name);
		}
	assert_true(cli_is_verb("token"));
	assert_true(cli_is_verb("healthcheck"));
	assert_false(cli_is_verb("run"));
	assert_false(cli_is_verb("validate"));
	assert_int_equal(cmd_of("entry", "create")->nflags, ENTRY_NFLAGS);
}

/* ---- values -------------------------------------------------------------- */

static void
test_values(void **state)
{
	struct mem	 m;
	char		 err[CLI_ERRLEN], t[64], nb[16];
	int32_t		 ttl;
	int64_t		 v;
	int		 match;

	assert_int_equal(cli_parse_ttl("x509SVIDTTL", "3600", &ttl, err,
	    sizeof(err)), 0);
	assert_int_equal(ttl, 3600);
	assert_int_equal(cli_parse_ttl("x509SVIDTTL", "1h30m", &ttl, err,
	    sizeof(err)), 0);
	assert_int_equal(ttl, 5400);
	assert_int_equal(cli_parse_ttl("x509SVIDTTL", "0", &ttl, err,
	    sizeof(err)), 0);
	assert_int_equal(ttl, 0);
	assert_int_equal(cli_parse_ttl("x509SVIDTTL", "2147483647", &ttl, err,
	    sizeof(err)), 0);
	assert_int_not_equal(cli_parse_ttl("x509SVIDTTL", "-1", &ttl, err,
	    sizeof(err)), 0);
	assert_string_equal(err, "invalid value \"-1\" for -x509SVIDTTL: must "
	    "not be negative");
	assert_int_not_equal(cli_parse_ttl("jwtSVIDTTL", "2147483648", &ttl,
	    err, sizeof(err)), 0);
	assert_non_null(strstr(err, "-jwtSVIDTTL"));
	assert_int_not_equal(cli_parse_ttl("ttl", "soon", &ttl, err,
	    sizeof(err)), 0);
	assert_non_null(strstr(err, "invalid value \"soon\" for -ttl"));
	assert_int_not_equal(cli_parse_ttl("ttl", "", &ttl, err,
	    sizeof(err)), 0);
	assert_int_not_equal(cli_parse_ttl("ttl", "99999999999999999999",
	    &ttl, err, sizeof(err)), 0);

	assert_int_equal(cli_parse_int64("entryExpiry", "1714557600", 0, &v,
	    err, sizeof(err)), 0);
	assert_int_equal(v, 1714557600);
	assert_int_not_equal(cli_parse_int64("entryExpiry", "-5", 0, &v, err,
	    sizeof(err)), 0);
	assert_string_equal(err, "invalid value \"-5\" for -entryExpiry: must "
	    "not be negative");
	assert_int_not_equal(cli_parse_int64("entryExpiry", "12x", 0, &v, err,
	    sizeof(err)), 0);

	assert_int_equal(cli_parse_time("1714557600", &v), 0);
	assert_int_equal(v, 1714557600);
	assert_int_equal(cli_parse_time("2024-05-01T10:00:00Z", &v), 0);
	assert_int_equal(v, 1714557600);
	assert_int_equal(cli_parse_time("2024-05-01T12:00:00.123+02:00", &v),
	    0);
	assert_int_equal(v, 1714557600);
	assert_int_equal(cli_parse_time("2024-05-01 10:00:00 +0000 UTC", &v),
	    0);
	assert_int_equal(v, 1714557600);
	assert_int_equal(cli_parse_time("2024-05-01 05:00:00 -0500 -05", &v),
	    0);
	assert_int_equal(v, 1714557600);
	assert_int_not_equal(cli_parse_time("2024-02-30T00:00:00Z", &v), 0);
	assert_int_not_equal(cli_parse_time("2024-05-01T10:00:00", &v), 0);
	assert_int_not_equal(cli_parse_time("2024-05-01T25:00:00Z", &v), 0);
	assert_int_not_equal(cli_parse_time("yesterday", &v), 0);
	assert_int_not_equal(cli_parse_time("-1", &v), 0);

	/* audit show -since: a time, or a duration back from now. */
	assert_int_equal(cli_parse_since("2024-05-01T10:00:00Z", 1800000000,
	    &v, err, sizeof(err)), 0);
	assert_int_equal(v, 1714557600);
	assert_int_equal(cli_parse_since("24h", 1800000000, &v, err,
	    sizeof(err)), 0);
	assert_int_equal(v, 1800000000 - 86400);
	assert_int_equal(cli_parse_since("90m", 1800000000, &v, err,
	    sizeof(err)), 0);
	assert_int_equal(v, 1800000000 - 5400);
	assert_int_not_equal(cli_parse_since("yesterday", 1800000000, &v, err,
	    sizeof(err)), 0);
	assert_string_equal(err, "invalid value \"yesterday\" for -since: "
	    "not a time (RFC 3339, unix seconds) or a duration (24h)");
	assert_int_not_equal(cli_parse_since("-1h", 1800000000, &v, err,
	    sizeof(err)), 0);

	cli_format_time(1714557600, t, sizeof(t));
	assert_string_equal(t, "2024-05-01 10:00:00 +0000 UTC");
	cli_format_time(0, t, sizeof(t));
	assert_string_equal(t, "1970-01-01 00:00:00 +0000 UTC");

	assert_int_equal(cli_parse_match("exact", &match), 0);
	assert_int_equal(match, WICK__ADMIN__MATCH_BEHAVIOR__MATCH_EXACT);
	assert_int_equal(cli_parse_match("superset", &match), 0);
	assert_int_equal(match, WICK__ADMIN__MATCH_BEHAVIOR__MATCH_SUPERSET);
	assert_int_equal(cli_parse_match("subset", &match), 0);
	assert_int_equal(match, WICK__ADMIN__MATCH_BEHAVIOR__MATCH_SUBSET);
	assert_int_equal(cli_parse_match("any", &match), 0);
	assert_int_equal(match, WICK__ADMIN__MATCH_BEHAVIOR__MATCH_ANY);
	assert_int_not_equal(cli_parse_match("most", &match), 0);

	assert_string_equal(cli_code_name(6, nb, sizeof(nb)), "AlreadyExists");
	assert_string_equal(cli_code_name(1, nb, sizeof(nb)), "Canceled");
	assert_string_equal(cli_code_name(99, nb, sizeof(nb)), "Code(99)");

	mem_open(&m);
	cli_print_quoted(m.f, "a \"b\"\\\n\x01");
	assert_string_equal(mem_text(&m), "\"a \\\"b\\\"\\\\\\n\\x01\"");
	mem_close(&m);
}

/* ---- entries from flags -------------------------------------------------- */

static void
test_entry_from_flags(void **state)
{
	const char *full[] = { "-spiffeID", "spiffe://example.org/web",
	    "-parentID", "spiffe://example.org/spire/agent/x",
	    "-selector", "unix:uid:1000", "-selector", "unix:gid:0",
	    "-x509SVIDTTL", "1h", "-jwtSVIDTTL", "300", "-dns",
	    "web.example.org", "-dns", "www.example.org", "-federatesWith",
	    "other.org", "-federatesWith", "spiffe://third.org", "-admin",
	    "-downstream", "-storeSVID", "-hint", "blue", "-entryExpiry",
	    "1714557600", "-entryID", "my-id", NULL };
	struct cli_args		 a;
	Wick__Types__Entry	*e;
	char			 err[CLI_ERRLEN];

	assert_int_equal(parse(&a, "entry", "create", full, err,
	    sizeof(err)), 0);
	assert_string_equal(cli_entry_flag_given(&a), "admin");
	assert_int_equal(cli_entry_from_flags(&a, 0, &e, err, sizeof(err)),
	    0);
	assert_string_equal(e->spiffe_id, "spiffe://example.org/web");
	assert_string_equal(e->parent_id,
	    "spiffe://example.org/spire/agent/x");
	assert_int_equal(e->n_selectors, 2);
	assert_string_equal(e->selectors[0]->type, "unix");
	assert_string_equal(e->selectors[0]->value, "uid:1000");
	assert_string_equal(e->selectors[1]->value, "gid:0");
	assert_int_equal(e->x509_svid_ttl, 3600);
	assert_int_equal(e->jwt_svid_ttl, 300);
	assert_int_equal(e->n_dns_names, 2);
	assert_string_equal(e->dns_names[1], "www.example.org");
	assert_int_equal(e->n_federates_with, 2);
	assert_string_equal(e->federates_with[0], "spiffe://other.org");
	assert_string_equal(e->federates_with[1], "spiffe://third.org");
	assert_true(e->admin);
	assert_true(e->downstream);
	assert_true(e->store_svid);
	assert_string_equal(e->hint, "blue");
	assert_int_equal(e->expires_at, 1714557600);
	assert_string_equal(e->id, "my-id");
	cli_entry_free(e);
	cli_args_cleanup(&a);
}

struct flagcase {
	int		 update;
	const char	*argv[16];
	const char	*err;	/* expected text, or a substring after '~' */
};

static const struct flagcase flagcases[] = {
	{ 0, { "-spiffeID", "spiffe://td/x", "-parentID", "spiffe://td/p" },
	    "at least one selector is required" },
	{ 0, { "-spiffeID", "spiffe://td/x", "-selector", "a:b" },
	    "a parent ID is required if the node flag is not set" },
	{ 0, { "-parentID", "spiffe://td/p", "-selector", "a:b" },
	    "a SPIFFE ID is required" },
	{ 0, { "-node", "-spiffeID", "spiffe://td/x", "-selector", "a:b",
	    "-federatesWith", "o.org" }, "node entries can not federate" },
	{ 0, { "-node", "-parentID", "spiffe://td/p", "-spiffeID",
	    "spiffe://td/x", "-selector", "a:b" },
	    "~-parentID can't be combined with -node" },
	{ 0, { "-spiffeID", "http://td/x", "-parentID", "spiffe://td/p",
	    "-selector", "a:b" }, "~invalid value \"http://td/x\" for "
	    "-spiffeID: " },
	{ 0, { "-spiffeID", "spiffe://td/x", "-parentID", "td/p",
	    "-selector", "a:b" }, "~for -parentID: " },
	{ 0, { "-spiffeID", "spiffe://td/x", "-parentID", "spiffe://td/p",
	    "-selector", "nocolon" }, "~invalid value \"nocolon\" for "
	    "-selector: " },
	{ 0, { "-spiffeID", "spiffe://td/x", "-parentID", "spiffe://td/p",
	    "-selector", "a:b", "-x509SVIDTTL", "-5" }, "invalid value \"-5\" "
	    "for -x509SVIDTTL: must not be negative" },
	{ 0, { "-spiffeID", "spiffe://td/x", "-parentID", "spiffe://td/p",
	    "-selector", "a:b", "-jwtSVIDTTL", "1.5s" }, "~for -jwtSVIDTTL" },
	{ 0, { "-spiffeID", "spiffe://td/x", "-parentID", "spiffe://td/p",
	    "-selector", "a:b", "-federatesWith", "Bad TD" },
	    "~for -federatesWith" },
	{ 0, { "-spiffeID", "spiffe://td/x", "-parentID", "spiffe://td/p",
	    "-selector", "a:b", "-dns", "a b" }, "~for -dns" },
	{ 0, { "-spiffeID", "spiffe://td/x", "-parentID", "spiffe://td/p",
	    "-selector", "a:b", "-entryExpiry", "soon" },
	    "~for -entryExpiry" },
	{ 0, { "-spiffeID", "spiffe://td/x", "-parentID", "spiffe://td/p",
	    "-selector", "a:b", "-jwtSVIDIncludeJTI" },
	    "-jwtSVIDIncludeJTI is not supported by wick" },
	{ 1, { "-spiffeID", "spiffe://td/x", "-parentID", "spiffe://td/p",
	    "-selector", "a:b" }, "entry ID is required" },
};

static void
test_entry_flag_errors(void **state)
{
	struct cli_args		 a;
	Wick__Types__Entry	*e;
	char			 err[CLI_ERRLEN];
	size_t			 i;

	for (i = 0; i < sizeof(flagcases) / sizeof(flagcases[0]); i++) {
		const struct flagcase *c = &flagcases[i];

		assert_int_equal(parse(&a, "entry", c->update ? "update" :
		    "create", (const char **)c->argv, err, sizeof(err)), 0);
		assert_int_not_equal(cli_entry_from_flags(&a, c->update, &e,
		    err, sizeof(err)), 0);
		assert_null(e);
		if (c->err[0] == '~') {
			if (strstr(err, c->err + 1) == NULL)
				fail_msg("case %zu: \"%s\" lacks \"%s\"", i,
				    err, c->err + 1);
		} else
			assert_string_equal(err, c->err);
		cli_args_cleanup(&a);
	}
}

static void
test_entry_node(void **state)
{
	const char *argv[] = { "-node", "-spiffeID",
	    "spiffe://example.org/nodes/all", "-selector", "join_token:x",
	    NULL };
	struct cli_args		 a;
	Wick__Types__Entry	*e;
	char			 err[CLI_ERRLEN];

	assert_int_equal(parse(&a, "entry", "create", argv, err, sizeof(err)),
	    0);
	assert_int_equal(cli_entry_from_flags(&a, 0, &e, err, sizeof(err)),
	    0);
	assert_string_equal(e->parent_id, "spiffe://example.org/spire/server");
	assert_string_equal(e->id, "");
	assert_int_equal(e->x509_svid_ttl, 0);
	cli_entry_free(e);
	assert_string_equal(cli_entry_flag_given(&a), "node");
	cli_args_cleanup(&a);
}

/* ---- entries from -data JSON --------------------------------------------- */

static const char data_full[] =
	"{\"entries\": [\n"
	" {\"spiffe_id\": \"spiffe://example.org/web\",\n"
	"  \"parent_id\": \"spiffe://example.org/agent\",\n"
	"  \"selectors\": [{\"type\": \"unix\", \"value\": \"uid:1000\"},\n"
	"                {\"type\": \"unix\", \"value\": \"gid:0\"}],\n"
	"  \"x509_svid_ttl\": 3600, \"jwt_svid_ttl\": \"300\",\n"
	"  \"dns_names\": [\"web.example.org\"],\n"
	"  \"federates_with\": [\"other.org\", \"spiffe://third.org\"],\n"
	"  \"admin\": true, \"downstream\": true, \"store_svid\": true,\n"
	"  \"hint\": \"blue\", \"expires_at\": \"1714557600\",\n"
	"  \"entry_id\": \"custom-1\", \"revision_number\": \"7\",\n"
	"  \"created_at\": 5, \"additional_attributes\":\n"
	"    {\"disable_x509_svid_prefetch\": false}},\n"
	" {\"spiffe_id\": {\"trust_domain\": \"example.org\",\n"
	"                \"path\": \"/db\"},\n"
	"  \"parent_id\": {\"trust_domain\": \"example.org\",\n"
	"                \"path\": \"/spire/server\"},\n"
	"  \"selectors\": [{\"type\": \"k8s\", \"value\": \"ns:prod\"}],\n"
	"  \"ttl\": 60, \"entryExpiry\": 42, \"id\": \"x\", \"hint\": null}\n"
	"], \"next_page_token\": \"\"}\n";

static void
test_data_json(void **state)
{
	struct cli_entries	 l;
	Wick__Types__Entry	*e;
	char			 err[CLI_ERRLEN];

	cli_entries_init(&l);
	assert_int_equal(cli_entries_from_json(data_full, strlen(data_full), 0,
	    &l, err, sizeof(err)), 0);
	assert_int_equal(l.n, 2);
	e = l.v[0];
	assert_string_equal(e->spiffe_id, "spiffe://example.org/web");
	assert_string_equal(e->parent_id, "spiffe://example.org/agent");
	assert_int_equal(e->n_selectors, 2);
	assert_string_equal(e->selectors[0]->type, "unix");
	assert_string_equal(e->selectors[0]->value, "uid:1000");
	assert_string_equal(e->selectors[1]->value, "gid:0");
	assert_int_equal(e->x509_svid_ttl, 3600);
	assert_int_equal(e->jwt_svid_ttl, 300);
	assert_int_equal(e->n_dns_names, 1);
	assert_string_equal(e->dns_names[0], "web.example.org");
	assert_int_equal(e->n_federates_with, 2);
	assert_string_equal(e->federates_with[0], "spiffe://other.org");
	assert_string_equal(e->federates_with[1], "spiffe://third.org");
	assert_true(e->admin);
	assert_true(e->downstream);
	assert_true(e->store_svid);
	assert_string_equal(e->hint, "blue");
	assert_int_equal(e->expires_at, 1714557600);
	assert_string_equal(e->id, "custom-1");
	assert_int_equal(e->revision_number, 0);	/* the server's */
	e = l.v[1];
	assert_string_equal(e->spiffe_id, "spiffe://example.org/db");
	assert_string_equal(e->parent_id, "spiffe://example.org/spire/server");
	assert_int_equal(e->x509_svid_ttl, 60);		/* legacy "ttl" */
	assert_int_equal(e->expires_at, 42);
	assert_string_equal(e->id, "x");
	assert_string_equal(e->hint, "");
	assert_false(e->admin);
	cli_entries_cleanup(&l);

	/* With update, every entry needs an ID. */
	cli_entries_init(&l);
	assert_int_equal(cli_entries_from_json(data_full, strlen(data_full), 1,
	    &l, err, sizeof(err)), 0);
	assert_int_equal(l.n, 2);
	cli_entries_cleanup(&l);
}

struct datacase {
	const char	*json;
	int		 update;
	const char	*err;	/* substring */
};

#define E_OK	"\"spiffe_id\":\"spiffe://td/x\"," \
	"\"parent_id\":\"spiffe://td/p\""
#define SEL	"\"selectors\":[{\"type\":\"a\",\"value\":\"b\"}]"

static const struct datacase datacases[] = {
	{ "not json", 0, "invalid JSON at line 1" },
	{ "[]", 0, "must be an object" },
	{ "{}", 0, "\"entries\" must be an array" },
	{ "{\"entries\":[]}", 0, "\"entries\" is empty" },
	{ "{\"entries\":[1]}", 0, "entries[0]: must be an object" },
	{ "{\"entries\":[{" E_OK "," SEL "}],\"extra\":1}", 0,
	    "unknown field \"extra\"" },
	{ "{\"entries\":[{" E_OK "," SEL ",\"colour\":1}]}", 0,
	    "entries[0]: unknown field \"colour\"" },
	{ "{\"entries\":[{" E_OK "," SEL ",\"id\":\"a\",\"entry_id\":\"b\"}]}",
	    0, "\"id\" and \"entry_id\" both given" },
	{ "{\"entries\":[{" E_OK "}]}", 0,
	    "entries[0]: at least one selector is required" },
	{ "{\"entries\":[{\"parent_id\":\"spiffe://td/p\"," SEL "}]}", 0,
	    "entries[0]: spiffe_id is required" },
	{ "{\"entries\":[{" E_OK "," SEL "}]}", 1,
	    "entries[0]: an entry ID" },
	{ "{\"entries\":[{" E_OK "," SEL "},{\"spiffe_id\":\"td/x\"}]}", 0,
	    "entries[1].spiffe_id: " },
	{ "{\"entries\":[{" E_OK ",\"selectors\":[{\"type\":\"a\"}]}]}", 0,
	    "entries[0].selectors[0]: must be {\"type\"" },
	{ "{\"entries\":[{" E_OK ",\"selectors\":[{\"type\":\"a:b\","
	    "\"value\":\"c\"}]}]}", 0, "entries[0].selectors[0]: " },
	{ "{\"entries\":[{" E_OK "," SEL ",\"x509_svid_ttl\":-1}]}", 0,
	    "entries[0].x509_svid_ttl: must be an integer" },
	{ "{\"entries\":[{" E_OK "," SEL ",\"jwt_svid_ttl\":1.5}]}", 0,
	    "entries[0].jwt_svid_ttl: " },
	{ "{\"entries\":[{" E_OK "," SEL ",\"admin\":\"yes\"}]}", 0,
	    "entries[0].admin: must be true or false" },
	{ "{\"entries\":[{" E_OK "," SEL ",\"expires_at\":\"-3\"}]}", 0,
	    "entries[0].expires_at: " },
	{ "{\"entries\":[{" E_OK "," SEL ",\"federates_with\":[\"A B\"]}]}",
	    0, "entries[0].federates_with[0]: " },
	{ "{\"entries\":[{" E_OK "," SEL ",\"dns_names\":\"x\"}]}", 0,
	    "entries[0].dns_names: must be an array" },
	{ "{\"entries\":[{" E_OK "," SEL ",\"additional_attributes\":"
	    "{\"jwt_svid_include_jti\":true}}]}", 0,
	    "entries[0].additional_attributes.jwt_svid_include_jti: not "
	    "supported" },
	{ "{\"entries\":[{\"spiffe_id\":{\"trust_domain\":\"td\","
	    "\"path\":\"/x\",\"x\":1},\"parent_id\":\"spiffe://td/p\"," SEL
	    "}]}", 0, "entries[0].spiffe_id: unknown field in the ID object" },
	{ "{\"entries\":[{" E_OK "," SEL ",\"SPIFFE_ID\":\"spiffe://td/y\"}]}",
	    0, "both given" },
	{ "{\"entries\":[{\"spiffe_id\":\"spiffe://td/x\",\"parent_id\":"
	    "{\"trust_domain\":\"td\",\"path\":\"p\"}," SEL "}]}", 0,
	    "entries[0].parent_id: path must start with \"/\"" },
};

static void
test_data_json_errors(void **state)
{
	struct cli_entries	 l;
	char			 err[CLI_ERRLEN];
	size_t			 i;

	for (i = 0; i < sizeof(datacases) / sizeof(datacases[0]); i++) {
		cli_entries_init(&l);
		err[0] = '\0';
		assert_int_not_equal(cli_entries_from_json(datacases[i].json,
		    strlen(datacases[i].json), datacases[i].update, &l, err,
		    sizeof(err)), 0);
		if (strstr(err, datacases[i].err) == NULL)
			fail_msg("case %zu: \"%s\" lacks \"%s\"", i, err,
			    datacases[i].err);
		cli_entries_cleanup(&l);
	}
}

static void
test_data_json_limits(void **state)
{
	struct cli_entries	 l;
	char			 err[CLI_ERRLEN], *doc, *p;
	const char		*one = "{" E_OK "," SEL "},";
	size_t			 i, n = CLI_MAX_DATA_ENTRIES + 1;

	doc = malloc(strlen(one) * n + 32);
	assert_non_null(doc);
	p = doc + sprintf(doc, "{\"entries\":[");
	for (i = 0; i < n; i++)
		p += sprintf(p, "%s", one);
	sprintf(p - 1, "]}");
	cli_entries_init(&l);
	assert_int_not_equal(cli_entries_from_json(doc, strlen(doc), 0, &l,
	    err, sizeof(err)), 0);
	assert_non_null(strstr(err, "at most 10000"));
	cli_entries_cleanup(&l);
	/* Exactly the limit is fine. */
	sprintf(doc + strlen("{\"entries\":[") + strlen(one) * (n - 1) - 1,
	    "]}");
	cli_entries_init(&l);
	assert_int_equal(cli_entries_from_json(doc, strlen(doc), 0, &l, err,
	    sizeof(err)), 0);
	assert_int_equal(l.n, CLI_MAX_DATA_ENTRIES);
	cli_entries_cleanup(&l);
	free(doc);
}

static void
test_ids_json(void **state)
{
	const char	*ok = "{\"ids\": [\"a\", \"b\"]}";
	char		 err[CLI_ERRLEN], **ids;
	size_t		 n;

	assert_int_equal(cli_ids_from_json(ok, strlen(ok), &ids, &n, err,
	    sizeof(err)), 0);
	assert_int_equal(n, 2);
	assert_string_equal(ids[1], "b");
	free(ids[0]);
	free(ids[1]);
	free(ids);
	assert_int_not_equal(cli_ids_from_json("{\"ids\":[1]}", 11, &ids, &n,
	    err, sizeof(err)), 0);
	assert_string_equal(err, "ids[0]: must be a non-empty string");
	assert_null(ids);
}

/* ---- output -------------------------------------------------------------- */

/* A full entry on the stack (strings borrowed). */
struct sentry {
	Wick__Types__Entry	 e;
	Wick__Types__Selector	 s[2];
	Wick__Types__Selector	*sv[2];
	char			*fw[1];
	char			*dns[1];
};

static void
sentry_init(struct sentry *x)
{
	wick__types__entry__init(&x->e);
	wick__types__selector__init(&x->s[0]);
	wick__types__selector__init(&x->s[1]);
	x->s[0].type = "unix";
	x->s[0].value = "uid:1000";
	x->s[1].type = "unix";
	x->s[1].value = "gid:0";
	x->sv[0] = &x->s[0];
	x->sv[1] = &x->s[1];
	x->fw[0] = "spiffe://other.org";
	x->dns[0] = "web.example.org";
	x->e.id = "id-1";
	x->e.spiffe_id = "spiffe://example.org/web";
	x->e.parent_id = "spiffe://example.org/spire/agent/join_token/abc";
	x->e.revision_number = 3;
	x->e.downstream = 1;
	x->e.x509_svid_ttl = 3600;
	x->e.expires_at = 1714557600;
	x->e.selectors = x->sv;
	x->e.n_selectors = 2;
	x->e.federates_with = x->fw;
	x->e.n_federates_with = 1;
	x->e.dns_names = x->dns;
	x->e.n_dns_names = 1;
	x->e.admin = 1;
	x->e.store_svid = 1;
	x->e.hint = "blue";
	x->e.created_at = 1714550000;
}

static const char block_full[] =
	"Entry ID                : id-1\n"
	"SPIFFE ID               : spiffe://example.org/web\n"
	"Parent ID               : "
	    "spiffe://example.org/spire/agent/join_token/abc\n"
	"Revision                : 3\n"
	"Downstream              : true\n"
	"X509-SVID TTL           : 3600\n"
	"JWT-SVID TTL            : default\n"
	"Expiration time         : 2024-05-01 10:00:00 +0000 UTC\n"
	"Selector                : unix:uid:1000\n"
	"Selector                : unix:gid:0\n"
	"FederatesWith           : spiffe://other.org\n"
	"DNS name                : web.example.org\n"
	"Admin                   : true\n"
	"StoreSvid               : true\n"
	"Hint                    : blue\n"
	"\n";

static const char block_min[] =
	"Entry ID                : (none)\n"
	"SPIFFE ID               : spiffe://td/x\n"
	"Parent ID               : spiffe://td/p\n"
	"Revision                : 0\n"
	"X509-SVID TTL           : default\n"
	"JWT-SVID TTL            : 60\n"
	"Selector                : a:b\n"
	"\n";

static void
test_entry_block(void **state)
{
	struct sentry		 x;
	Wick__Types__Entry	 e = WICK__TYPES__ENTRY__INIT;
	Wick__Types__Selector	 s = WICK__TYPES__SELECTOR__INIT;
	Wick__Types__Selector	*sv[1] = { &s };
	struct mem		 m;

	sentry_init(&x);
	mem_open(&m);
	cli_print_entry(m.f, &x.e);
	assert_string_equal(mem_text(&m), block_full);
	mem_close(&m);

	e.spiffe_id = "spiffe://td/x";
	e.parent_id = "spiffe://td/p";
	e.jwt_svid_ttl = 60;
	s.type = "a";
	s.value = "b";
	e.selectors = sv;
	e.n_selectors = 1;
	mem_open(&m);
	cli_print_entry(m.f, &e);
	assert_string_equal(mem_text(&m), block_min);
	mem_close(&m);
}

static void
test_entry_json(void **state)
{
	struct sentry	 x;
	json_t		*j;
	char		*s;

	sentry_init(&x);
	j = cli_entry_json(&x.e);
	s = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
	assert_string_equal(s,
	    "{\"id\":\"id-1\",\"spiffe_id\":\"spiffe://example.org/web\","
	    "\"parent_id\":\"spiffe://example.org/spire/agent/join_token/abc\","
	    "\"selectors\":[{\"type\":\"unix\",\"value\":\"uid:1000\"},"
	    "{\"type\":\"unix\",\"value\":\"gid:0\"}],\"x509_svid_ttl\":3600,"
	    "\"federates_with\":[\"spiffe://other.org\"],\"admin\":true,"
	    "\"downstream\":true,\"expires_at\":1714557600,"
	    "\"dns_names\":[\"web.example.org\"],\"revision_number\":3,"
	    "\"store_svid\":true,\"jwt_svid_ttl\":0,\"hint\":\"blue\","
	    "\"created_at\":1714550000}");
	free(s);
	json_decref(j);
	/* Our JSON output reads back as -data. */
	{
		struct cli_entries	 l;
		char			 err[CLI_ERRLEN], *doc;

		j = json_pack("{s:[o]}", "entries", cli_entry_json(&x.e));
		doc = json_dumps(j, 0);
		cli_entries_init(&l);
		assert_int_equal(cli_entries_from_json(doc, strlen(doc), 1,
		    &l, err, sizeof(err)), 0);
		assert_string_equal(l.v[0]->id, "id-1");
		assert_int_equal(l.v[0]->expires_at, 1714557600);
		cli_entries_cleanup(&l);
		free(doc);
		json_decref(j);
	}
}

static void
test_agent_block(void **state)
{
	Wick__Types__Agent	ag = WICK__TYPES__AGENT__INIT;
	struct mem		m;

	ag.spiffe_id = "spiffe://example.org/spire/agent/join_token/t";
	ag.attestation_type = "join_token";
	ag.x509_svid_serial_number = "1234";
	ag.x509_svid_expires_at = 1714557600;
	mem_open(&m);
	cli_print_agent(m.f, &ag);
	ag.banned = 1;
	ag.can_reattest = 1;
	cli_print_agent(m.f, &ag);
	assert_string_equal(mem_text(&m),
	    "SPIFFE ID         : "
	    "spiffe://example.org/spire/agent/join_token/t\n"
	    "Attestation type  : join_token\n"
	    "Expiration time   : 2024-05-01 10:00:00 +0000 UTC\n"
	    "Serial number     : 1234\n"
	    "Can re-attest     : false\n"
	    "\n"
	    "SPIFFE ID         : "
	    "spiffe://example.org/spire/agent/join_token/t\n"
	    "Attestation type  : join_token\n"
	    "Expiration time   : 2024-05-01 10:00:00 +0000 UTC\n"
	    "Banned            : true\n"
	    "Can re-attest     : true\n"
	    "\n");
	mem_close(&m);
}

static void
test_sort(void **state)
{
	Wick__Types__Entry	 e[4], *v[4];
	Wick__Types__Selector	 s[2], *sv[2];
	size_t			 i;

	for (i = 0; i < 4; i++) {
		wick__types__entry__init(&e[i]);
		e[i].parent_id = "spiffe://td/p";
		v[i] = &e[i];
	}
	/* td "a.b" sorts after "a": by trust domain, then path. */
	e[0].spiffe_id = "spiffe://a.b/x";
	e[1].spiffe_id = "spiffe://a/z";
	e[2].spiffe_id = "spiffe://a/y";
	e[2].x509_svid_ttl = 5;
	e[3].spiffe_id = "spiffe://a/y";
	wick__types__selector__init(&s[0]);
	wick__types__selector__init(&s[1]);
	s[0].type = "z";
	s[0].value = "1";
	s[1].type = "a";
	s[1].value = "1";
	sv[0] = &s[0];
	sv[1] = &s[1];
	e[0].selectors = sv;
	e[0].n_selectors = 2;
	cli_sort_entries(v, 4);
	assert_ptr_equal(v[0], &e[3]);
	assert_ptr_equal(v[1], &e[2]);
	assert_ptr_equal(v[2], &e[1]);
	assert_ptr_equal(v[3], &e[0]);
	assert_string_equal(e[0].selectors[0]->type, "a");
}

/* ---- whole commands against a fake server -------------------------------- */

struct fake {
	uv_loop_t		 loop;
	uv_async_t		 stop;
	uv_thread_t		 thr;
	struct rpc_server	*srv;
	char			 dir[64];
	char			 path[128];
	/* what the server saw */
	int			 list_calls;
	int32_t			 page_size;
	int			 selector_match;
	size_t			 nsel;
	int			 downstream;
	int			 create_batches;
	size_t			 max_batch;
	size_t			 created;
	int32_t			 token_ttl;
	char			 token_agent[256];
	uint8_t			*bundle;
	size_t			 bundle_len;
};

static struct fake F;

/* The fake runs in its own thread: no cmocka asserts there. */
#define CHECK(x)	do { if (!(x)) abort(); } while (0)

static void
reply(struct rpc_call *call, const ProtobufCMessage *m)
{
	size_t	 n = protobuf_c_message_get_packed_size(m);
	uint8_t	*p = malloc(n + 1);

	CHECK(p);
	protobuf_c_message_pack(m, p);
	if (rpc_call_send_message(call, p, n) != 0)
		abort();
	free(p);
	(void)rpc_call_finish(call, RPC_OK, NULL);
}

static void
m_list(struct rpc_call *call, const uint8_t *p, size_t n)
{
	Wick__Admin__ListEntriesRequest		*req;
	Wick__Admin__ListEntriesResponse	 resp =
	    WICK__ADMIN__LIST_ENTRIES_RESPONSE__INIT;
	Wick__Types__Entry			 e[2], *ev[2];
	Wick__Types__Selector			 s;
	Wick__Types__Selector			*sv[1] = { &s };
	size_t					 i;

	wick__types__selector__init(&s);
	req = wick__admin__list_entries_request__unpack(NULL, n, p);
	CHECK(req);
	F.list_calls++;
	F.page_size = req->page_size;
	F.selector_match = req->selector_match;
	F.nsel = req->n_by_selectors;
	F.downstream = req->filter_downstream;
	s.type = "unix";
	s.value = "uid:0";
	for (i = 0; i < 2; i++) {
		wick__types__entry__init(&e[i]);
		e[i].parent_id = "spiffe://example.org/agent";
		e[i].selectors = sv;
		e[i].n_selectors = 1;
		ev[i] = &e[i];
	}
	if (*req->page_token == '\0') {
		e[0].id = "id-b";
		e[0].spiffe_id = "spiffe://example.org/b";
		e[1].id = "id-a";
		e[1].spiffe_id = "spiffe://example.org/a";
		resp.n_entries = 2;
		resp.next_page_token = "p2";
	} else {
		CHECK(strcmp(req->page_token, "p2") == 0);
		e[0].id = "id-c";
		e[0].spiffe_id = "spiffe://example.org/c";
		resp.n_entries = 1;
	}
	resp.entries = ev;
	reply(call, &resp.base);
	wick__admin__list_entries_request__free_unpacked(req, NULL);
}

static void
m_create(struct rpc_call *call, const uint8_t *p, size_t n)
{
	Wick__Admin__BatchCreateEntryRequest	*req;
	Wick__Admin__BatchCreateEntryResponse	 resp =
	    WICK__ADMIN__BATCH_CREATE_ENTRY_RESPONSE__INIT;
	Wick__Admin__EntryResult		*rv, **rp;
	Wick__Types__Status			*st;
	char					 id[32];
	size_t					 i;

	req = wick__admin__batch_create_entry_request__unpack(NULL, n, p);
	CHECK(req);
	F.create_batches++;
	if (req->n_entries > F.max_batch)
		F.max_batch = req->n_entries;
	rv = calloc(req->n_entries, sizeof(*rv));
	rp = calloc(req->n_entries, sizeof(*rp));
	st = calloc(req->n_entries, sizeof(*st));
	for (i = 0; i < req->n_entries; i++) {
		wick__admin__entry_result__init(&rv[i]);
		wick__types__status__init(&st[i]);
		rv[i].status = &st[i];
		rv[i].entry = req->entries[i];
		rp[i] = &rv[i];
		if (strstr(req->entries[i]->spiffe_id, "/dup") != NULL) {
			st[i].code = RPC_ALREADY_EXISTS;
			st[i].message = "similar entry already exists";
			continue;
		}
		st[i].message = "OK";
		snprintf(id, sizeof(id), "id-%zu", F.created++);
		if (req->entries[i]->id != (char *)protobuf_c_empty_string)
			free(req->entries[i]->id);
		req->entries[i]->id = strdup(id);
		req->entries[i]->revision_number = 1;
	}
	resp.results = rp;
	resp.n_results = req->n_entries;
	reply(call, &resp.base);
	free(rv);
	free(rp);
	free(st);
	wick__admin__batch_create_entry_request__free_unpacked(req, NULL);
}

static void
m_get_entry(struct rpc_call *call, const uint8_t *p, size_t n)
{
	(void)rpc_call_finish(call, RPC_NOT_FOUND, "entry \"nope\": not found");
}

static void
m_count(struct rpc_call *call, const uint8_t *p, size_t n)
{
	Wick__Admin__CountResponse resp = WICK__ADMIN__COUNT_RESPONSE__INIT;

	resp.count = 1;
	reply(call, &resp.base);
}

static void
m_delete(struct rpc_call *call, const uint8_t *p, size_t n)
{
	Wick__Admin__BatchDeleteEntryRequest	*req;
	Wick__Admin__BatchDeleteEntryResponse	 resp =
	    WICK__ADMIN__BATCH_DELETE_ENTRY_RESPONSE__INIT;
	Wick__Admin__EntryResult		 rv[4], *rp[4];
	Wick__Types__Status			 st[4];
	size_t					 i;

	req = wick__admin__batch_delete_entry_request__unpack(NULL, n, p);
	CHECK(req);
	CHECK(req->n_ids <= 4);
	for (i = 0; i < req->n_ids; i++) {
		wick__admin__entry_result__init(&rv[i]);
		wick__types__status__init(&st[i]);
		rv[i].status = &st[i];
		rp[i] = &rv[i];
		if (strcmp(req->ids[i], "a") != 0) {
			st[i].code = RPC_NOT_FOUND;
			st[i].message = "entry not found";
		}
	}
	resp.results = rp;
	resp.n_results = req->n_ids;
	reply(call, &resp.base);
	wick__admin__batch_delete_entry_request__free_unpacked(req, NULL);
}

static void
m_token(struct rpc_call *call, const uint8_t *p, size_t n)
{
	Wick__Admin__CreateJoinTokenRequest	*req;
	Wick__Admin__CreateJoinTokenResponse	 resp =
	    WICK__ADMIN__CREATE_JOIN_TOKEN_RESPONSE__INIT;

	req = wick__admin__create_join_token_request__unpack(NULL, n, p);
	CHECK(req);
	F.token_ttl = req->ttl;
	snprintf(F.token_agent, sizeof(F.token_agent), "%s", req->agent_id);
	resp.token = "tok-123";
	resp.expires_at = 1714557600;
	reply(call, &resp.base);
	wick__admin__create_join_token_request__free_unpacked(req, NULL);
}

static void
m_agents(struct rpc_call *call, const uint8_t *p, size_t n)
{
	Wick__Admin__ListAgentsResponse	resp =
	    WICK__ADMIN__LIST_AGENTS_RESPONSE__INIT;
	Wick__Types__Agent		a[2], *av[2];
	size_t				i;

	for (i = 0; i < 2; i++) {
		wick__types__agent__init(&a[i]);
		a[i].attestation_type = "join_token";
		a[i].x509_svid_expires_at = 1714557600;
		av[i] = &a[i];
	}
	a[0].spiffe_id = "spiffe://example.org/spire/agent/join_token/1";
	a[0].x509_svid_serial_number = "77";
	a[1].spiffe_id = "spiffe://example.org/spire/agent/join_token/2";
	a[1].banned = 1;
	a[1].can_reattest = 1;
	resp.agents = av;
	resp.n_agents = 2;
	reply(call, &resp.base);
}

static void
m_health(struct rpc_call *call, const uint8_t *p, size_t n)
{
	Grpc__Health__V1__HealthCheckResponse resp =
	    GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__INIT;

	resp.status =
	    GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING;
	reply(call, &resp.base);
}

static void
m_set_bundle(struct rpc_call *call, const uint8_t *p, size_t n)
{
	Wick__Admin__Empty resp = WICK__ADMIN__EMPTY__INIT;

	free(F.bundle);
	F.bundle = malloc(n + 1);
	CHECK(F.bundle);
	memcpy(F.bundle, p, n);
	F.bundle_len = n;
	reply(call, &resp.base);
}

static void
m_get_bundle(struct rpc_call *call, const uint8_t *p, size_t n)
{
	if (F.bundle == NULL) {
		(void)rpc_call_finish(call, RPC_UNAVAILABLE, "no bundle yet");
		return;
	}
	if (rpc_call_send_message(call, F.bundle, F.bundle_len) != 0)
		abort();
	(void)rpc_call_finish(call, RPC_OK, NULL);
}

#define UNARY(path, fn)	{ path, RPC_KIND_UNARY, NULL, fn, NULL, NULL, NULL, \
	NULL, 0 }

static const struct rpc_method fake_methods[] = {
	UNARY("/wick.admin.Entries/ListEntries", m_list),
	UNARY("/wick.admin.Entries/BatchCreateEntry", m_create),
	UNARY("/wick.admin.Entries/GetEntry", m_get_entry),
	UNARY("/wick.admin.Entries/CountEntries", m_count),
	UNARY("/wick.admin.Entries/BatchDeleteEntry", m_delete),
	UNARY("/wick.admin.Agents/CreateJoinToken", m_token),
	UNARY("/wick.admin.Agents/ListAgents", m_agents),
	UNARY("/wick.admin.Bundles/SetFederatedBundle", m_set_bundle),
	UNARY("/wick.admin.Bundles/GetBundle", m_get_bundle),
	UNARY("/grpc.health.v1.Health/Check", m_health),
};

static void
fake_thread(void *arg)
{
	(void)uv_run(&F.loop, UV_RUN_DEFAULT);
}

static void
fake_stop_cb(uv_async_t *a)
{
	rpc_server_shutdown(F.srv, 0, NULL, NULL);
	uv_close((uv_handle_t *)a, NULL);
}

static int
fake_setup(void **state)
{
	memset(&F, 0, sizeof(F));
	snprintf(F.dir, sizeof(F.dir), "/tmp/wick-test-cli.XXXXXX");
	assert_non_null(mkdtemp(F.dir));
	snprintf(F.path, sizeof(F.path), "%s/api.sock", F.dir);
	assert_int_equal(uv_loop_init(&F.loop), 0);
	assert_int_equal(rpc_server_new(&F.loop, NULL, fake_methods,
	    sizeof(fake_methods) / sizeof(fake_methods[0]), &F.srv), 0);
	assert_int_equal(rpc_server_listen_unix(F.srv, F.path, 0600), 0);
	assert_int_equal(uv_async_init(&F.loop, &F.stop, fake_stop_cb), 0);
	assert_int_equal(uv_thread_create(&F.thr, fake_thread, NULL), 0);
	return 0;
}

static int
fake_teardown(void **state)
{
	assert_int_equal(uv_async_send(&F.stop), 0);
	assert_int_equal(uv_thread_join(&F.thr), 0);
	rpc_server_free(F.srv);
	(void)uv_run(&F.loop, UV_RUN_DEFAULT);
	assert_int_equal(uv_loop_close(&F.loop), 0);
	free(F.bundle);
	(void)unlink(F.path);
	assert_int_equal(rmdir(F.dir), 0);
	return 0;
}

/* Run a command (NULL-terminated argv; -socketPath added). */
static int
run(struct mem *out, struct mem *err, ...)
{
	char	*argv[64];
	va_list	 ap;
	int	 argc = 0;

	va_start(ap, err);
	while ((argv[argc] = va_arg(ap, char *)) != NULL)
		argc++;
	va_end(ap);
	argv[argc++] = "-socketPath";
	argv[argc++] = F.path;
	argv[argc] = NULL;
	mem_open(out);
	mem_open(err);
	return cli_run(out->f, err->f, argc, argv);
}

static void
done(struct mem *out, struct mem *err)
{
	mem_close(out);
	mem_close(err);
}

static void
test_cmd_entry_show(void **state)
{
	struct mem	 o, e;
	const char	*t;

	assert_int_equal(run(&o, &e, "entry", "show", "-selector",
	    "unix:uid:0", "-matchSelectorsOn", "exact", "-downstream", NULL),
	    0);
	t = mem_text(&o);
	assert_non_null(strstr(t, "Found 3 entries\n"));
	/* sorted by SPIFFE ID across pages */
	assert_true(strstr(t, "spiffe://example.org/a") <
	    strstr(t, "spiffe://example.org/b"));
	assert_true(strstr(t, "spiffe://example.org/b") <
	    strstr(t, "spiffe://example.org/c"));
	assert_string_equal(mem_text(&e), "");
	assert_int_equal(F.list_calls, 2);
	assert_int_equal(F.page_size, CLI_PAGE_SIZE);
	assert_int_equal(F.nsel, 1);
	assert_int_equal(F.selector_match,
	    WICK__ADMIN__MATCH_BEHAVIOR__MATCH_EXACT);
	assert_true(F.downstream);
	done(&o, &e);

	assert_int_equal(run(&o, &e, "entry", "show", "-output", "json",
	    NULL), 0);
	t = mem_text(&o);
	assert_true(starts_with(t, "{\"entries\":[{\"id\":\"id-a\","));
	assert_non_null(strstr(t, "],\"next_page_token\":\"\"}\n"));
	done(&o, &e);

	assert_int_equal(run(&o, &e, "entry", "show", "-entryID", "nope",
	    NULL), 1);
	assert_string_equal(mem_text(&e), "Error: error fetching entry ID "
	    "nope: rpc error: code = NotFound desc = entry \"nope\": not "
	    "found\n");
	done(&o, &e);

	assert_int_equal(run(&o, &e, "entry", "show", "-entryID", "x",
	    "-spiffeID", "spiffe://td/x", NULL), 1);
	assert_string_equal(mem_text(&e), "Error: the -entryID flag can't be "
	    "combined with others\n");
	done(&o, &e);

	assert_int_equal(run(&o, &e, "entry", "count", NULL), 0);
	assert_string_equal(mem_text(&o), "1 registration entry\n");
	done(&o, &e);
	assert_int_equal(run(&o, &e, "entry", "count", "-output", "json",
	    NULL), 0);
	assert_string_equal(mem_text(&o), "{\"count\":1}\n");
	done(&o, &e);
}

static void
test_cmd_entry_create(void **state)
{
	struct mem	 o, e;
	const char	*t;
	char		 path[160];
	FILE		*f;
	int		 i;

	assert_int_equal(run(&o, &e, "entry", "create", "-spiffeID",
	    "spiffe://example.org/web", "-parentID",
	    "spiffe://example.org/agent", "-selector", "unix:uid:1000", NULL),
	    0);
	assert_string_equal(mem_text(&o),
	    "Entry ID                : id-0\n"
	    "SPIFFE ID               : spiffe://example.org/web\n"
	    "Parent ID               : spiffe://example.org/agent\n"
	    "Revision                : 1\n"
	    "X509-SVID TTL           : default\n"
	    "JWT-SVID TTL            : default\n"
	    "Selector                : unix:uid:1000\n"
	    "\n");
	assert_string_equal(mem_text(&e), "");
	done(&o, &e);

	/* A duplicate: the request entry on stderr, exit 1. */
	assert_int_equal(run(&o, &e, "entry", "create", "-spiffeID",
	    "spiffe://example.org/dup", "-parentID",
	    "spiffe://example.org/agent", "-selector", "unix:uid:1", NULL), 1);
	assert_string_equal(mem_text(&o), "");
	assert_string_equal(mem_text(&e),
	    "Failed to create the following entry (code: AlreadyExists, msg: "
	    "\"similar entry already exists\"):\n"
	    "Entry ID                : (none)\n"
	    "SPIFFE ID               : spiffe://example.org/dup\n"
	    "Parent ID               : spiffe://example.org/agent\n"
	    "Revision                : 0\n"
	    "X509-SVID TTL           : default\n"
	    "JWT-SVID TTL            : default\n"
	    "Selector                : unix:uid:1\n"
	    "\n"
	    "Error: failed to create one or more entries\n");
	done(&o, &e);

	/* -data with 1200 entries goes in batches of at most 500. */
	snprintf(path, sizeof(path), "%s/data.json", F.dir);
	assert_non_null(f = fopen(path, "w"));
	fprintf(f, "{\"entries\":[");
	for (i = 0; i < 1200; i++)
		fprintf(f, "%s{\"spiffe_id\":\"spiffe://example.org/%s%d\","
		    "\"parent_id\":\"spiffe://example.org/agent\","
		    "\"selectors\":[{\"type\":\"unix\",\"value\":\"uid:%d\"}]}",
		    i > 0 ? "," : "", i == 700 ? "dup" : "w", i, i);
	fprintf(f, "]}");
	assert_int_equal(fclose(f), 0);
	F.create_batches = 0;
	F.max_batch = 0;
	assert_int_equal(run(&o, &e, "entry", "create", "-data", path,
	    "-output", "json", NULL), 1);
	assert_int_equal(F.create_batches, 3);
	assert_int_equal(F.max_batch, CLI_MAX_BATCH_ENTRIES);
	t = mem_text(&o);
	assert_non_null(strstr(t, "{\"status\":{\"code\":6,\"message\":"
	    "\"similar entry already exists\"},\"entry\":{\"id\":\"\","
	    "\"spiffe_id\":\"spiffe://example.org/dup700\""));
	assert_string_equal(mem_text(&e), "Error: failed to create one or more "
	    "entries\n");
	done(&o, &e);

	/* -data can't be mixed with entry flags. */
	assert_int_equal(run(&o, &e, "entry", "create", "-data", path,
	    "-admin", NULL), 1);
	assert_string_equal(mem_text(&e), "Error: -data can't be combined with "
	    "-admin\n");
	done(&o, &e);
	assert_int_equal(unlink(path), 0);

	/* Bad flags: the message and the usage. */
	assert_int_equal(run(&o, &e, "entry", "create", "-bogus", NULL), 1);
	t = mem_text(&e);
	assert_true(starts_with(t, "flag provided but not defined: -bogus\n"
	    "Usage of entry create:\n"));
	assert_non_null(strstr(t, "  -x509SVIDTTL int\n"));
	done(&o, &e);
	assert_int_equal(run(&o, &e, "entry", "create", "-h", NULL), 0);
	assert_non_null(strstr(mem_text(&o), "Usage of entry create:\n"));
	done(&o, &e);
	assert_int_equal(run(&o, &e, "entry", "create", "-output", "yaml",
	    NULL), 1);
	assert_non_null(strstr(mem_text(&e), "for flag -output"));
	done(&o, &e);
}

static void
test_cmd_entry_delete(void **state)
{
	struct mem o, e;

	assert_int_equal(run(&o, &e, "entry", "delete", "-entryID", "a",
	    NULL), 0);
	assert_string_equal(mem_text(&o), "Deleted entry with ID: a\n\n\n"
	    "Deleted 1 entries successfully\n");
	done(&o, &e);
	assert_int_equal(run(&o, &e, "entry", "delete", "-entryID", "b",
	    NULL), 1);
	assert_string_equal(mem_text(&e), "Failed to delete entry with ID b "
	    "(code: NotFound, msg: \"entry not found\")\n"
	    "Error: failed to delete one or more entries\n");
	assert_string_equal(mem_text(&o), "\n\nFailed to delete 1 entries\n");
	done(&o, &e);
	assert_int_equal(run(&o, &e, "entry", "delete", NULL), 1);
	assert_string_equal(mem_text(&e), "Error: an entry ID is required\n");
	done(&o, &e);
}

static void
test_cmd_token_agent_health(void **state)
{
	struct mem	 o, e;
	const char	*t;

	assert_int_equal(run(&o, &e, "token", "generate", "-ttl", "1h",
	    "-spiffeID", "spiffe://example.org/host", NULL), 0);
	assert_string_equal(mem_text(&o), "Token: tok-123\n");
	assert_string_equal(mem_text(&e), "");
	assert_int_equal(F.token_ttl, 3600);
	assert_string_equal(F.token_agent, "spiffe://example.org/host");
	done(&o, &e);
	assert_int_equal(run(&o, &e, "token", "generate", NULL), 0);
	assert_string_equal(mem_text(&e), "Warning: Missing SPIFFE ID.\n");
	assert_int_equal(F.token_ttl, 600);
	done(&o, &e);
	assert_int_equal(run(&o, &e, "token", "generate", "-output", "json",
	    NULL), 0);
	assert_string_equal(mem_text(&o), "{\"value\":\"tok-123\","
	    "\"expires_at\":1714557600}\n");
	done(&o, &e);
	assert_int_equal(run(&o, &e, "token", "generate", "-ttl", "0", NULL),
	    1);
	done(&o, &e);

	assert_int_equal(run(&o, &e, "agent", "list", NULL), 0);
	t = mem_text(&o);
	assert_true(starts_with(t, "Found 2 attested agents:\n\nSPIFFE ID  "));
	assert_non_null(strstr(t, "Serial number     : 77\n"));
	assert_non_null(strstr(t, "Banned            : true\n"));
	done(&o, &e);
	assert_int_equal(run(&o, &e, "agent", "list", "-canReattest", "true",
	    NULL), 0);
	assert_true(starts_with(mem_text(&o), "Found 1 attested agent:\n"));
	done(&o, &e);
	assert_int_equal(run(&o, &e, "agent", "count", "-canReattest",
	    "false", NULL), 0);
	assert_string_equal(mem_text(&o), "1 attested agent\n");
	done(&o, &e);
	assert_int_equal(run(&o, &e, "agent", "list", "-expiresBefore",
	    "tomorrow", NULL), 1);
	assert_non_null(strstr(mem_text(&e), "-expiresBefore"));
	done(&o, &e);
	assert_int_equal(run(&o, &e, "agent", "evict", NULL), 1);
	assert_string_equal(mem_text(&e), "Error: a SPIFFE ID is required\n");
	done(&o, &e);
	/* Not in the fake: the server's own status comes through. */
	assert_int_equal(run(&o, &e, "agent", "ban", "-spiffeID",
	    "spiffe://example.org/spire/agent/x", NULL), 1);
	assert_non_null(strstr(mem_text(&e), "Error: rpc error: code = "
	    "Unimplemented desc = "));
	done(&o, &e);

	assert_int_equal(run(&o, &e, "healthcheck", "-verbose", NULL), 0);
	assert_string_equal(mem_text(&o), "Checking server health...\n"
	    "Server is healthy.\n");
	done(&o, &e);
}

static void
test_cmd_bundle(void **state)
{
	struct mem	 o, e;
	X509		*ca;
	EVP_PKEY	*key;
	char		 path[160];
	const char	*t;

	assert_int_equal(testpki_make_ca("fed", "spiffe://other.org", &ca,
	    &key), 0);
	snprintf(path, sizeof(path), "%s/fed.pem", F.dir);
	assert_int_equal(testpki_write_cert(path, ca), 0);
	assert_int_equal(run(&o, &e, "bundle", "set", "-id",
	    "spiffe://other.org", "-path", path, NULL), 0);
	assert_string_equal(mem_text(&o), "bundle set.\n");
	done(&o, &e);
	assert_non_null(F.bundle);
	/* The fake hands the stored bundle back as the server's own. */
	assert_int_equal(run(&o, &e, "bundle", "show", NULL), 0);
	t = mem_text(&o);
	assert_true(starts_with(t, "-----BEGIN CERTIFICATE-----\n"));
	done(&o, &e);
	assert_int_equal(run(&o, &e, "bundle", "show", "-format", "spiffe",
	    NULL), 0);
	t = mem_text(&o);
	assert_true(starts_with(t, "{\n    \""));
	assert_non_null(strstr(t, "\"use\": \"x509-svid\""));
	done(&o, &e);
	assert_int_equal(run(&o, &e, "bundle", "show", "-output", "json",
	    NULL), 0);
	assert_true(starts_with(mem_text(&o), "{\"trust_domain\":"
	    "\"spiffe://other.org\",\"x509_authorities\":[{\"asn1\":\""));
	done(&o, &e);
	assert_int_equal(run(&o, &e, "bundle", "set", "-path", path, NULL), 1);
	assert_string_equal(mem_text(&e), "Error: id flag is required\n");
	done(&o, &e);
	assert_int_equal(run(&o, &e, "bundle", "set", "-id", "other.org",
	    "-path", path, "-format", "spiffe", NULL), 1);
	assert_non_null(strstr(mem_text(&e), "Error: unable to parse bundle "
	    "data: "));
	done(&o, &e);
	assert_int_equal(unlink(path), 0);
	X509_free(ca);
	EVP_PKEY_free(key);
}

static void
test_cmd_no_server(void **state)
{
	struct mem	 o, e;
	char		*argv[] = { "entry", "show", "-socketPath",
			    "/nonexistent-wick/api.sock", NULL };
	char		*hc[] = { "healthcheck", "-socketPath",
			    "/nonexistent-wick/api.sock", NULL };

	mem_open(&o);
	mem_open(&e);
	assert_int_equal(cli_run(o.f, e.f, 4, argv), 1);
	assert_string_equal(mem_text(&e), "Error: error fetching entries: "
	    "connection error: cannot reach wick-server at "
	    "/nonexistent-wick/api.sock: no such file or directory (is the "
	    "server running? -socketPath names its admin socket)\n");
	done(&o, &e);
	mem_open(&o);
	mem_open(&e);
	assert_int_equal(cli_run(o.f, e.f, 3, hc), 1);
	assert_non_null(strstr(mem_text(&e), "Error: server is unhealthy: "
	    "unable to determine health (connection error: "));
	done(&o, &e);
}

static void
test_cmd_dispatch(void **state)
{
	struct mem	 o, e;
	char		*unknown[] = { "frobnicate" };
	char		*noverb[] = { "entry" };
	char		*badsub[] = { "entry", "frob" };
	char		*help[] = { "agent", "-h" };

	mem_open(&o);
	mem_open(&e);
	assert_int_equal(cli_run(o.f, e.f, 1, unknown), 1);
	assert_non_null(strstr(mem_text(&e), "token, entry, agent, bundle, "
	    "healthcheck"));
	done(&o, &e);
	mem_open(&o);
	mem_open(&e);
	assert_int_equal(cli_run(o.f, e.f, 1, noverb), 1);
	assert_non_null(strstr(mem_text(&e), "    create     Creates "
	    "registration entries\n"));
	done(&o, &e);
	mem_open(&o);
	mem_open(&e);
	assert_int_equal(cli_run(o.f, e.f, 2, badsub), 1);
	assert_true(starts_with(mem_text(&e),
	    "unknown subcommand \"entry frob\""));
	done(&o, &e);
	mem_open(&o);
	mem_open(&e);
	assert_int_equal(cli_run(o.f, e.f, 2, help), 0);
	assert_non_null(strstr(mem_text(&o), "    evict      "));
	done(&o, &e);
	{
		char	*audit[] = { "audit", "-h" };
		char	*nopath[] = { "backup", "-socketPath",
			    "/nonexistent" };
		char	*badsince[] = { "audit", "show", "-since", "soon",
			    "-socketPath", "/nonexistent" };
		char	*badid[] = { "audit", "show", "-spiffeID", "nope",
			    "-socketPath", "/nonexistent" };

		mem_open(&o);
		mem_open(&e);
		assert_int_equal(cli_run(o.f, e.f, 2, audit), 0);
		assert_non_null(strstr(mem_text(&o), "    show       "));
		assert_non_null(strstr(mem_text(&o), "    verify     "));
		done(&o, &e);
		mem_open(&o);
		mem_open(&e);
		assert_int_equal(cli_run(o.f, e.f, 3, nopath), 1);
		assert_string_equal(mem_text(&e), "Error: a backup directory "
		    "is required (-path)\n");
		done(&o, &e);
		mem_open(&o);
		mem_open(&e);
		assert_int_equal(cli_run(o.f, e.f, 6, badsince), 1);
		assert_non_null(strstr(mem_text(&e), "invalid value \"soon\" "
		    "for -since"));
		done(&o, &e);
		mem_open(&o);
		mem_open(&e);
		assert_int_equal(cli_run(o.f, e.f, 6, badid), 1);
		assert_non_null(strstr(mem_text(&e), "invalid value \"nope\" "
		    "for -spiffeID"));
		done(&o, &e);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_flags),
		cmocka_unit_test(test_command_tables),
		cmocka_unit_test(test_values),
		cmocka_unit_test(test_entry_from_flags),
		cmocka_unit_test(test_entry_flag_errors),
		cmocka_unit_test(test_entry_node),
		cmocka_unit_test(test_data_json),
		cmocka_unit_test(test_data_json_errors),
		cmocka_unit_test(test_data_json_limits),
		cmocka_unit_test(test_ids_json),
		cmocka_unit_test(test_entry_block),
		cmocka_unit_test(test_entry_json),
		cmocka_unit_test(test_agent_block),
		cmocka_unit_test(test_sort),
		cmocka_unit_test(test_cmd_no_server),
		cmocka_unit_test(test_cmd_dispatch),
		cmocka_unit_test_setup_teardown(test_cmd_entry_show,
		    fake_setup, fake_teardown),
		cmocka_unit_test_setup_teardown(test_cmd_entry_create,
		    fake_setup, fake_teardown),
		cmocka_unit_test_setup_teardown(test_cmd_entry_delete,
		    fake_setup, fake_teardown),
		cmocka_unit_test_setup_teardown(test_cmd_token_agent_health,
		    fake_setup, fake_teardown),
		cmocka_unit_test_setup_teardown(test_cmd_bundle,
		    fake_setup, fake_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
