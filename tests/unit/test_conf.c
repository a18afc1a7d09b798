/*
 * test_conf.c: the HCL configuration loader: SPIRE-style server and agent
 * files, tree shape, positions, every error class with its exact place,
 * limits, durations, getters, the schema checker and -expandEnv.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <cmocka.h>

#include "conf.h"

static const char server_conf[] =
    "# wick server configuration, SPIRE syntax\n"		/* 1 */
    "server {\n"						/* 2 */
    "  trust_domain = \"example.org\"\n"			/* 3 */
    "  bind_address = \"0.0.0.0\"  bind_port = \"8081\"\n"	/* 4 */
    "  socket_path  = \"/tmp/spire-server/private/api.sock\"\n"	/* 5 */
    "  data_dir = \"/opt/spire/.data\"\n"			/* 6 */
    "  log_level = \"INFO\"\n"					/* 7 */
    "  default_x509_svid_ttl = \"1h\"\n"			/* 8 */
    "  default_jwt_svid_ttl = \"5m\"\n"				/* 9 */
    "  ca_ttl = \"24h\"\n"					/* 10 */
    "  ca_key_type = \"ec-p256\"\n"				/* 11 */
    "  ca_subject = {\n"					/* 12 */
    "    country = [\"US\"]\n"					/* 13 */
    "    organization = [\"SPIFFE\"]\n"				/* 14 */
    "    common_name = \"\"\n"					/* 15 */
    "  }\n"							/* 16 */
    "  admin_ids = []\n"					/* 17 */
    "  audit_log_enabled = false\n"				/* 18 */
    "  ratelimit { attestation = true signing = true }\n"	/* 19 */
    "  federation {\n"						/* 20 */
    "    bundle_endpoint {\n"					/* 21 */
    "      address = \"0.0.0.0\"\n"				/* 22 */
    "      port = 8443\n"						/* 23 */
    "      profile \"https_spiffe\" {}\n"			/* 24 */
    "    }\n"							/* 25 */
    "    federates_with \"td2.org\" {\n"			/* 26 */
    "      bundle_endpoint_url = \"https://td2.org:8443\"\n"	/* 27 */
    "      bundle_endpoint_profile \"https_spiffe\" {\n"		/* 28 */
    "        endpoint_spiffe_id = \"spiffe://td2.org/spire/server\"\n"
    "      }\n"							/* 30 */
    "    }\n"							/* 31 */
    "  }\n"							/* 32 */
    "}\n"							/* 33 */
    "\n"							/* 34 */
    "plugins {\n"						/* 35 */
    "  DataStore \"sql\" {\n"					/* 36 */
    "    plugin_data {\n"					/* 37 */
    "      database_type = \"sqlite3\"\n"			/* 38 */
    "      connection_string = \"/opt/spire/.data/datastore.sqlite3\"\n"
    "    }\n"							/* 40 */
    "  }\n"							/* 41 */
    "  KeyManager \"disk\" {\n"					/* 42 */
    "    plugin_data { keys_path = \"/opt/spire/.data/keys.json\" }\n"
    "  }\n"							/* 44 */
    "  NodeAttestor \"join_token\" { plugin_data {} }\n"	/* 45 */
    "  NodeAttestor \"x509pop\" {\n"				/* 46 */
    "    plugin_data { ca_bundle_path = \"/opt/ca.pem\" }\n"	/* 47 */
    "  }\n"							/* 48 */
    "}\n"							/* 49 */
    "health_checks {\n"						/* 50 */
    "  listener_enabled = true\n"				/* 51 */
    "  bind_port = \"8080\"\n"					/* 52 */
    "}\n";							/* 53 */

static const char agent_conf[] =
    "agent {\n"							/* 1 */
    "  trust_domain = \"example.org\"\n"			/* 2 */
    "  server_address = \"spire-server\"\n"			/* 3 */
    "  server_port = \"8081\"\n"				/* 4 */
    "  socket_path = \"/tmp/spire-agent/public/api.sock\"\n"	/* 5 */
    "  data_dir = \"/opt/spire/.data\"\n"			/* 6 */
    "  trust_bundle_path = \"/opt/spire/conf/initial_bundle.crt\"\n"
    "  join_token = \"4f3c0a2e\"\n"				/* 8 */
    "  x509_svid_cache_max_size = 1000\n"			/* 9 */
    "  disable_sds_api = false\n"				/* 10 */
    "  sds {\n"							/* 11 */
    "    default_svid_name = \"default\"\n"			/* 12 */
    "    default_bundle_name = \"ROOTCA\"\n"			/* 13 */
    "  }\n"							/* 14 */
    "  experimental { sync_interval = \"5s\" }\n"		/* 15 */
    "}\n"							/* 16 */
    "plugins {\n"						/* 17 */
    "  NodeAttestor \"join_token\" { plugin_data {} }\n"	/* 18 */
    "  KeyManager \"disk\" { plugin_data { directory = \"/opt/spire/.data\" } }\n"
    "  WorkloadAttestor \"unix\" {\n"				/* 20 */
    "    plugin_data { discover_workload_path = false workload_size_limit = 0 }\n"
    "  }\n"							/* 22 */
    "  WorkloadAttestor \"docker\" {\n"				/* 23 */
    "    plugin_data { docker_socket_path = \"unix:///var/run/docker.sock\" }\n"
    "  }\n"							/* 25 */
    "}\n";							/* 26 */

static struct conf *
parse_ok(const char *text)
{
	struct conf		*c = NULL;
	struct conf_error	 err;
	int			 r;

	r = conf_parse(text, strlen(text), 0, &c, &err);
	if (r != 0)
		fail_msg("parse failed (%d): %s", r, err.msg);
	assert_non_null(c);
	assert_string_equal(err.msg, "");
	return c;
}

static void
expect_errn(const char *text, size_t len, int rc, int line, int col,
    const char *msg)
{
	struct conf		*c = (struct conf *)1;
	struct conf_error	 err;
	int			 r;

	r = conf_parse(text, len, 0, &c, &err);
	assert_null(c);
	if (r != rc || err.line != line || err.col != col ||
	    strcmp(err.msg, msg) != 0)
		fail_msg("input %.40s: got %d %d:%d [%s], want %d %d:%d [%s]",
		    text, r, err.line, err.col, err.msg, rc, line, col, msg);
}

static void
expect_err(const char *text, int rc, int line, int col, const char *msg)
{
	expect_errn(text, strlen(text), rc, line, col, msg);
}

static const json_t *
path(const json_t *v, const char *a, const char *b, const char *c,
    const char *d)
{
	const char	*keys[4] = { a, b, c, d };
	int		 i;

	for (i = 0; i < 4 && keys[i] != NULL; i++) {
		assert_true(json_is_object(v));
		v = json_object_get(v, keys[i]);
		if (v == NULL)
			fail_msg("no member \"%s\"", keys[i]);
	}
	return v;
}

static void
assert_pos(const struct conf *c, const json_t *parent, const char *key,
    int line, int col)
{
	struct conf_pos	pos;

	assert_int_equal(conf_lookup_pos(c, parent, key, &pos), 0);
	if (pos.line != line || pos.col != col)
		fail_msg("%s at %d:%d, want %d:%d", key, pos.line, pos.col,
		    line, col);
}

static void
test_server_conf(void **state)
{
	struct conf	*c = parse_ok(server_conf);
	const json_t	*root = conf_root(c), *srv, *subj, *na, *v;
	struct conf_pos	 pos;

	srv = path(root, "server", NULL, NULL, NULL);
	assert_string_equal(json_string_value(json_object_get(srv,
	    "trust_domain")), "example.org");
	assert_string_equal(json_string_value(json_object_get(srv,
	    "bind_port")), "8081");
	assert_true(json_is_false(json_object_get(srv, "audit_log_enabled")));
	assert_int_equal(json_array_size(json_object_get(srv, "admin_ids")),
	    0);
	/* ca_subject = { } is an object like a block. */
	subj = path(srv, "ca_subject", NULL, NULL, NULL);
	assert_string_equal(json_string_value(json_array_get(
	    json_object_get(subj, "country"), 0)), "US");
	assert_string_equal(json_string_value(json_array_get(
	    json_object_get(subj, "organization"), 0)), "SPIFFE");
	assert_string_equal(json_string_value(json_object_get(subj,
	    "common_name")), "");
	assert_true(json_is_true(path(srv, "ratelimit", "signing", NULL,
	    NULL)));
	assert_int_equal(json_integer_value(path(srv, "federation",
	    "bundle_endpoint", "port", NULL)), 8443);
	assert_true(json_is_object(path(srv, "federation", "bundle_endpoint",
	    "profile", "https_spiffe")));
	v = path(srv, "federation", "federates_with", "td2.org",
	    "bundle_endpoint_profile");
	assert_string_equal(json_string_value(path(v, "https_spiffe",
	    "endpoint_spiffe_id", NULL, NULL)), "spiffe://td2.org/spire/server");

	/* Every plugin is kept, under its type then its name. */
	assert_string_equal(json_string_value(path(root, "plugins",
	    "DataStore", "sql", "plugin_data") != NULL ? json_object_get(
	    path(root, "plugins", "DataStore", "sql", "plugin_data"),
	    "database_type") : NULL), "sqlite3");
	na = path(root, "plugins", "NodeAttestor", NULL, NULL);
	assert_int_equal(json_object_size(na), 2);
	assert_int_equal(json_object_size(path(na, "join_token",
	    "plugin_data", NULL, NULL)), 0);
	assert_string_equal(json_string_value(path(na, "x509pop",
	    "plugin_data", "ca_bundle_path", NULL)), "/opt/ca.pem");
	assert_true(json_is_true(path(root, "health_checks",
	    "listener_enabled", NULL, NULL)));

	/* Positions. */
	assert_pos(c, root, "server", 2, 1);
	assert_pos(c, srv, "trust_domain", 3, 3);
	assert_pos(c, srv, "bind_port", 4, 29);
	assert_pos(c, subj, "organization", 14, 5);
	assert_pos(c, path(root, "plugins", NULL, NULL, NULL), "NodeAttestor",
	    45, 3);
	assert_pos(c, na, "join_token", 45, 16);
	assert_pos(c, na, "x509pop", 46, 16);
	assert_int_equal(conf_lookup_index_pos(c, json_object_get(subj,
	    "country"), 0, &pos), 0);
	assert_int_equal(pos.line, 13);
	assert_int_equal(pos.col, 16);
	assert_int_equal(conf_lookup_index_pos(c, json_object_get(subj,
	    "country"), 1, &pos), WICK_ERR_NOT_FOUND);
	assert_int_equal(conf_lookup_pos(c, srv, "nope", &pos),
	    WICK_ERR_NOT_FOUND);
	conf_free(c);
}

static const char *const agent_known[] = {
	"trust_domain", "server_address", "server_port", "socket_path",
	"data_dir", "trust_bundle_path", "join_token",
	"x509_svid_cache_max_size", "experimental", NULL
};
static const char *const agent_unimpl[] = {
	"sds", "disable_sds_api", "admin_socket_path", NULL
};

struct warnings {
	int			n;
	struct conf_error	w[4];
};

static void
collect(void *arg, const struct conf_error *w)
{
	struct warnings	*ws = arg;

	assert_true(ws->n < 4);
	ws->w[ws->n++] = *w;
}

static void
test_agent_conf_and_schema(void **state)
{
	struct conf		*c = parse_ok(agent_conf);
	const json_t		*root = conf_root(c), *agent, *wla;
	struct conf_error	 err;
	struct warnings		 ws;
	static const char *const top[] = { "agent", "plugins", NULL };
	static const char *const few[] = { "trust_domain", NULL };

	agent = path(root, "agent", NULL, NULL, NULL);
	wla = path(root, "plugins", "WorkloadAttestor", NULL, NULL);
	assert_int_equal(json_object_size(wla), 2);
	assert_string_equal(json_string_value(path(wla, "docker",
	    "plugin_data", "docker_socket_path", NULL)),
	    "unix:///var/run/docker.sock");
	assert_int_equal(json_integer_value(path(wla, "unix", "plugin_data",
	    "workload_size_limit", NULL)), 0);
	assert_int_equal(json_integer_value(json_object_get(agent,
	    "x509_svid_cache_max_size")), 1000);

	/* All known, two SPIRE-only options: warnings in file order. */
	memset(&ws, 0, sizeof(ws));
	assert_int_equal(conf_check_keys(c, agent, "agent", agent_known,
	    agent_unimpl, collect, &ws, &err), 0);
	assert_string_equal(err.msg, "");
	assert_int_equal(ws.n, 2);
	assert_int_equal(ws.w[0].line, 10);
	assert_int_equal(ws.w[0].col, 3);
	assert_string_equal(ws.w[0].msg, "line 10, column 3: option "
	    "\"disable_sds_api\" in \"agent\" is not implemented by wick "
	    "and is ignored");
	assert_string_equal(ws.w[1].msg, "line 11, column 3: option \"sds\" "
	    "in \"agent\" is not implemented by wick and is ignored");

	/* Unknown options: the first one in the file is the error. */
	memset(&ws, 0, sizeof(ws));
	assert_int_equal(conf_check_keys(c, agent, "agent", few, agent_unimpl,
	    collect, &ws, &err), WICK_ERR_CONFIG);
	assert_int_equal(err.line, 3);
	assert_int_equal(err.col, 3);
	assert_string_equal(err.msg, "line 3, column 3: unknown option "
	    "\"server_address\" in \"agent\"");
	assert_int_equal(conf_check_keys(c, root, "top level", top, NULL,
	    NULL, NULL, &err), 0);
	assert_int_equal(conf_check_keys(c, json_object_get(agent,
	    "join_token"), "join_token", top, NULL, NULL, NULL, &err),
	    WICK_ERR_CONFIG);
	assert_string_equal(err.msg, "\"join_token\" must be a block");
	conf_free(c);
}

static void
test_comments(void **state)
{
	struct conf	*c = parse_ok(
	    "# hash comment\n"
	    "// slash comment\n"
	    "/* block\n"
	    "   comment */ s { /* inline */ a = \"x # not // a /* comment\""
	    " // trailing\n"
	    "  b = \"unix:///var/run/x.sock\" # trailing\n"
	    "  c = 1 /* mid */ d = 2 /**/\n"
	    "}#end");
	const json_t	*s = path(conf_root(c), "s", NULL, NULL, NULL);

	assert_int_equal(json_object_size(s), 4);
	assert_string_equal(json_string_value(json_object_get(s, "a")),
	    "x # not // a /* comment");
	assert_string_equal(json_string_value(json_object_get(s, "b")),
	    "unix:///var/run/x.sock");
	assert_int_equal(json_integer_value(json_object_get(s, "d")), 2);
	assert_pos(c, conf_root(c), "s", 4, 15);
	assert_pos(c, s, "c", 6, 3);
	assert_pos(c, s, "d", 6, 19);
	conf_free(c);
}

static void
test_values(void **state)
{
	struct conf	*c = parse_ok(
	    "s = \"caf\\u00e9 \\ud83d\\ude00 \\t\\n\\\"q\\\" \\\\ \\/\"\n"
	    "raw = \"caf\xc3\xa9\"\n"
	    "i = 42  n = -17  z = 0  h = 0x1F  o = 0755  p = +3\n"
	    "big = 9223372036854775807  small = -9223372036854775808\n"
	    "f = 1.5  e = 2e3  g = -0.25E-2\n"
	    "t = true  u = false\n"
	    "l = [1, \"two\", [3, 4,], { k = \"v\" }, ]\n"
	    "empty = []\n"
	    "q = { a = 1, b = 2 }\n"
	    "\"quoted key\" = 1\n");
	const json_t	*r = conf_root(c), *l;

	assert_string_equal(json_string_value(json_object_get(r, "s")),
	    "caf\xc3\xa9 \xf0\x9f\x98\x80 \t\n\"q\" \\ /");
	assert_string_equal(json_string_value(json_object_get(r, "raw")),
	    "caf\xc3\xa9");
	assert_int_equal(json_integer_value(json_object_get(r, "i")), 42);
	assert_int_equal(json_integer_value(json_object_get(r, "n")), -17);
	assert_int_equal(json_integer_value(json_object_get(r, "z")), 0);
	assert_int_equal(json_integer_value(json_object_get(r, "h")), 31);
	assert_int_equal(json_integer_value(json_object_get(r, "o")), 0755);
	assert_int_equal(json_integer_value(json_object_get(r, "p")), 3);
	assert_true(json_integer_value(json_object_get(r, "big")) ==
	    INT64_MAX);
	assert_true(json_integer_value(json_object_get(r, "small")) ==
	    INT64_MIN);
	assert_true(json_is_real(json_object_get(r, "f")));
	assert_true(json_real_value(json_object_get(r, "f")) == 1.5);
	assert_true(json_real_value(json_object_get(r, "e")) == 2000.0);
	assert_true(json_real_value(json_object_get(r, "g")) == -0.0025);
	assert_true(json_is_true(json_object_get(r, "t")));
	assert_true(json_is_false(json_object_get(r, "u")));
	l = json_object_get(r, "l");
	assert_int_equal(json_array_size(l), 4);
	assert_string_equal(json_string_value(json_array_get(l, 1)), "two");
	assert_int_equal(json_array_size(json_array_get(l, 2)), 2);
	assert_string_equal(json_string_value(json_object_get(
	    json_array_get(l, 3), "k")), "v");
	assert_int_equal(json_array_size(json_object_get(r, "empty")), 0);
	assert_int_equal(json_integer_value(path(r, "q", "b", NULL, NULL)), 2);
	assert_int_equal(json_integer_value(json_object_get(r, "quoted key")),
	    1);
	conf_free(c);
}

static void
test_heredoc(void **state)
{
	struct conf	*c = parse_ok(
	    "a = <<EOF\n"
	    "  first \"line\"\n"
	    "second\n"
	    "EOF\n"
	    "b = <<-PEM\n"
	    "    -----BEGIN-----\n"
	    "      body\n"
	    "\n"
	    "    -----END-----\n"
	    "    PEM\n"
	    "c = 1\n"
	    "d = <<E\n"
	    "E\n");
	const json_t	*r = conf_root(c);

	assert_string_equal(json_string_value(json_object_get(r, "a")),
	    "  first \"line\"\nsecond\n");
	assert_string_equal(json_string_value(json_object_get(r, "b")),
	    "-----BEGIN-----\n  body\n\n-----END-----\n");
	assert_string_equal(json_string_value(json_object_get(r, "d")), "");
	assert_pos(c, r, "c", 11, 1);
	conf_free(c);
}

static void
test_labelled_blocks(void **state)
{
	struct conf	*c = parse_ok(
	    "p {\n"
	    "  T \"a\" { x = 1 }\n"
	    "  T \"b\" { y = 2 }\n"
	    "  U \"a\" \"one\" { }\n"
	    "  U \"a\" \"two\" { z = 3 }\n"
	    "}\n");
	const json_t	*p = path(conf_root(c), "p", NULL, NULL, NULL);

	assert_int_equal(json_object_size(json_object_get(p, "T")), 2);
	assert_int_equal(json_integer_value(path(p, "T", "a", "x", NULL)), 1);
	assert_int_equal(json_integer_value(path(p, "T", "b", "y", NULL)), 2);
	assert_int_equal(json_object_size(path(p, "U", "a", NULL, NULL)), 2);
	assert_int_equal(json_integer_value(path(p, "U", "a", "two", "z")), 3);
	assert_pos(c, p, "T", 2, 3);
	assert_pos(c, path(p, "U", "a", NULL, NULL), "two", 5, 9);
	conf_free(c);
}

static void
test_json_input(void **state)
{
	struct conf	*c = parse_ok(
	    "{\n"
	    "  \"server\": {\"trust_domain\": \"example.org\", \"bind_port\": 8081},\n"
	    "  \"plugins\": {\"NodeAttestor\": {\"join_token\": "
	    "{\"plugin_data\": {}}}}\n"
	    "}\n");
	const json_t	*r = conf_root(c);

	assert_int_equal(json_integer_value(path(r, "server", "bind_port",
	    NULL, NULL)), 8081);
	assert_true(json_is_object(path(r, "plugins", "NodeAttestor",
	    "join_token", "plugin_data")));
	assert_pos(c, json_object_get(r, "server"), "bind_port", 2, 45);
	conf_free(c);
}

static void
test_syntax_errors(void **state)
{
	const int	C = WICK_ERR_CONFIG;

	expect_err("server {\n  trust_domain = \"example.org\n}\n", C, 2, 18,
	    "line 2, column 18: unterminated string");
	expect_err("a = \"abc", C, 1, 5, "line 1, column 5: unterminated string");
	expect_err("server {\n  bind_port 8081\n}\n", C, 2, 13,
	    "line 2, column 13: expected '=' or '{' after \"bind_port\", "
	    "found a number");
	expect_err("a = 1\n/* open\n\n", C, 2, 1,
	    "line 2, column 1: unterminated comment");
	expect_err("a = \"x\\qy\"", C, 1, 7,
	    "line 1, column 7: invalid escape sequence \"\\q\" in string");
	expect_err("a = \"\\u12G4\"", C, 1, 6,
	    "line 1, column 6: invalid \\u escape in string");
	expect_err("a = \"\\uD800x\"", C, 1, 6,
	    "line 1, column 6: unpaired surrogate in \\u escape");
	expect_err("a = \"\\uDC00\"", C, 1, 6,
	    "line 1, column 6: unpaired surrogate in \\u escape");
	expect_err("a = \"\\u0000\"", C, 1, 6,
	    "line 1, column 6: NUL character in string");
	expect_err("a = \"ok\xff\"", C, 1, 8,
	    "line 1, column 8: invalid UTF-8 in string");
	expect_err("a = \"\xc0\xaf\"", C, 1, 6,
	    "line 1, column 6: invalid UTF-8 in string");
	expect_err("a = \"x\x01\"", C, 1, 7,
	    "line 1, column 7: control character 0x01 in string");
	expect_err("a = <<EOF\nx\x02y\nEOF\n", C, 2, 2,
	    "line 2, column 2: control character 0x02 in heredoc");
	expect_err("a = 1\nb = 2\na = 3\n", C, 3, 1,
	    "line 3, column 1: duplicate attribute \"a\" (first defined at "
	    "line 1, column 1)");
	expect_err("s {}\n  s { }\n", C, 2, 3,
	    "line 2, column 3: duplicate block \"s\" (first defined at line 1, "
	    "column 1)");
	expect_err("s = {}\ns { }\n", C, 2, 1,
	    "line 2, column 1: duplicate block \"s\" (first defined at line 1, "
	    "column 1)");
	expect_err("p {\n  T \"a\" {}\n  T \"b\" {}\n  T \"a\" {}\n}\n", C, 4, 5,
	    "line 4, column 5: duplicate block T \"a\" (first defined at "
	    "line 2, column 5)");
	expect_err("x = 1\nx \"l\" {}\n", C, 2, 1,
	    "line 2, column 1: duplicate definition of \"x\" (first defined "
	    "at line 1, column 1)");
	expect_err("x \"l\" {}\nx = 2\n", C, 2, 1,
	    "line 2, column 1: duplicate attribute \"x\" (first defined "
	    "at line 1, column 1)");
	expect_err("s {\n  a = 1\n", C, 3, 1,
	    "line 3, column 1: expected '}' to close the block opened at "
	    "line 1, column 3, found end of input");
	expect_err("a = {\n b = 1\n", C, 3, 1,
	    "line 3, column 1: expected '}' to close the block opened at "
	    "line 1, column 5, found end of input");
	expect_err("a = 1\n}\n", C, 2, 1,
	    "line 2, column 1: expected an attribute or block name, found '}'");
	expect_err("= 1", C, 1, 1,
	    "line 1, column 1: expected an attribute or block name, found '='");
	expect_err("a = [1 2]", C, 1, 8,
	    "line 1, column 8: expected ',' or ']' in list \"a\" opened at "
	    "line 1, column 5, found a number");
	expect_err("a = [1,\n", C, 2, 1,
	    "line 2, column 1: expected a value for \"a\", found end of input");
	expect_err("a = [1\n", C, 2, 1,
	    "line 2, column 1: expected ',' or ']' in list \"a\" opened at "
	    "line 1, column 5, found end of input");
	expect_err("a = foo", C, 1, 5,
	    "line 1, column 5: expected a value for \"a\", found \"foo\"");
	expect_err("a =", C, 1, 4,
	    "line 1, column 4: expected a value for \"a\", found end of input");
	expect_err("a = 12abc", C, 1, 5, "line 1, column 5: invalid number "
	    "\"12abc\"");
	expect_err("a = 1.5.3", C, 1, 5, "line 1, column 5: invalid number "
	    "\"1.5.3\"");
	expect_err("a = 08", C, 1, 5, "line 1, column 5: invalid number "
	    "\"08\"");
	expect_err("a = 1.", C, 1, 5, "line 1, column 5: invalid number "
	    "\"1.\"");
	expect_err("a = 9223372036854775808", C, 1, 5, "line 1, column 5: "
	    "integer out of range \"9223372036854775808\"");
	expect_err("a = -9223372036854775809", C, 1, 5, "line 1, column 5: "
	    "integer out of range \"-9223372036854775809\"");
	expect_err("a = 1e999", C, 1, 5, "line 1, column 5: number out of "
	    "range \"1e999\"");
	expect_err("a = -", C, 1, 5, "line 1, column 5: unexpected character "
	    "'-'");
	expect_err("a = <<EOF\nxx\n", C, 1, 5, "line 1, column 5: "
	    "unterminated heredoc, missing closing \"EOF\"");
	expect_err("a = <<\nx\n", C, 1, 5, "line 1, column 5: expected a "
	    "heredoc marker after '<<'");
	expect_err("a = <<EOF x\nEOF\n", C, 1, 10, "line 1, column 10: "
	    "expected a newline after heredoc marker");
	expect_err("T \"a\" = 1", C, 1, 7, "line 1, column 7: expected '{' "
	    "after label \"a\" of block \"T\", found '='");
	expect_err("a = @", C, 1, 5, "line 1, column 5: unexpected character "
	    "'@'");
	expect_err("a = 1 / 2", C, 1, 7, "line 1, column 7: unexpected "
	    "character '/'");
	expect_err("a = <", C, 1, 5, "line 1, column 5: unexpected character "
	    "'<'");
	expect_errn("a = \0", 5, C, 1, 5, "line 1, column 5: unexpected byte "
	    "0x00");
	expect_err("\xc3\xa9 = 1", C, 1, 1, "line 1, column 1: unexpected byte "
	    "0xc3");
	expect_err("\"\" = 1", C, 1, 1, "line 1, column 1: empty name");
	expect_err("T \"\" {}", C, 1, 3, "line 1, column 3: empty block label");
	expect_err("a <<EOF\nEOF\n", C, 1, 3, "line 1, column 3: expected "
	    "'=' or '{' after \"a\", found a heredoc");
	expect_err("{\"a\": 1} x", C, 1, 10, "line 1, column 10: unexpected "
	    "\"x\" after the closing '}'");
	expect_err("{\"a\": 1", C, 1, 8, "line 1, column 8: expected '}' to "
	    "close the block opened at line 1, column 1, found end of input");
	expect_err("\ttab = \"x", C, 1, 8, "line 1, column 8: unterminated "
	    "string");
}

static char *
repeat(const char *head, const char *unit, size_t n, const char *tail)
{
	size_t	hl = strlen(head), ul = strlen(unit), tl = strlen(tail), i;
	char	*s = malloc(hl + ul * n + tl + 1), *p;

	assert_non_null(s);
	memcpy(s, head, hl);
	p = s + hl;
	for (i = 0; i < n; i++, p += ul)
		memcpy(p, unit, ul);
	memcpy(p, tail, tl + 1);
	return s;
}

/* s = head + unit*n + mid + unit2*n + tail */
static char *
nest(const char *head, const char *open, size_t n, const char *mid,
    const char *close)
{
	char	*a = repeat(head, open, n, mid), *b;

	b = repeat(a, close, n, "");
	free(a);
	return b;
}

static void
test_limits(void **state)
{
	const int	 L = WICK_ERR_LIMIT;
	struct conf	*c;
	char		*s, msg[128];

	/* Nesting: 32 levels parse, 33 do not. */
	s = nest("a = ", "[", CONF_MAX_DEPTH, "1", "]");
	conf_free(parse_ok(s));
	free(s);
	s = nest("a = ", "[", CONF_MAX_DEPTH + 1, "1", "]");
	expect_err(s, L, 1, 5 + CONF_MAX_DEPTH,
	    "line 1, column 37: nesting deeper than 32 levels");
	free(s);
	s = nest("", "b {\n", CONF_MAX_DEPTH + 1, "", "}\n");
	expect_err(s, L, CONF_MAX_DEPTH + 1, 3,
	    "line 33, column 3: nesting deeper than 32 levels");
	free(s);
	s = nest("", "b = {", CONF_MAX_DEPTH, "", "}");
	conf_free(parse_ok(s));
	free(s);

	/* List length. */
	s = repeat("a = [", "1,", CONF_MAX_LIST_LEN, "]");
	c = parse_ok(s);
	assert_int_equal(json_array_size(json_object_get(conf_root(c), "a")),
	    CONF_MAX_LIST_LEN);
	conf_free(c);
	free(s);
	s = repeat("a = [", "1,", CONF_MAX_LIST_LEN + 1, "]");
	expect_err(s, L, 1, 6 + 2 * CONF_MAX_LIST_LEN,
	    "line 1, column 8198: list \"a\" has more than 4096 elements");
	free(s);

	/* String length, also when escapes make the text longer. */
	s = repeat("a = \"", "x", CONF_MAX_STRING_LEN, "\"");
	conf_free(parse_ok(s));
	free(s);
	s = repeat("a = \"", "x", CONF_MAX_STRING_LEN + 1, "\"");
	expect_err(s, L, 1, 5, "line 1, column 5: string longer than 65536 "
	    "bytes");
	free(s);
	s = repeat("a = \"", "\\u00e9", CONF_MAX_STRING_LEN / 2 + 1, "\"");
	expect_err(s, L, 1, 5, "line 1, column 5: string longer than 65536 "
	    "bytes");
	free(s);
	s = repeat("a = <<EOF\n", "0123456789abcde\n",
	    CONF_MAX_STRING_LEN / 16 + 1, "EOF\n");
	expect_err(s, L, 1, 5, "line 1, column 5: heredoc longer than 65536 "
	    "bytes");
	free(s);

	/* Names, labels, numbers. */
	s = repeat("", "n", CONF_MAX_NAME_LEN, " = 1");
	conf_free(parse_ok(s));
	free(s);
	s = repeat("", "n", CONF_MAX_NAME_LEN + 1, " = 1");
	expect_err(s, L, 1, 1, "line 1, column 1: name longer than 256 bytes");
	free(s);
	s = repeat("T \"", "n", CONF_MAX_NAME_LEN + 1, "\" {}");
	expect_err(s, L, 1, 3, "line 1, column 3: block label longer than 256 "
	    "bytes");
	free(s);
	expect_err("T \"a\" \"b\" \"c\" \"d\" \"e\" {}", L, 1, 19,
	    "line 1, column 19: block \"T\" has more than 4 labels");
	conf_free(parse_ok("T \"a\" \"b\" \"c\" \"d\" {}"));
	s = repeat("a = ", "1", CONF_MAX_NUMBER_LEN + 1, "");
	expect_err(s, L, 1, 5, "line 1, column 5: number longer than 64 bytes");
	free(s);

	/* Whole text. */
	s = repeat("", " ", CONF_MAX_FILE_SIZE + 1, "");
	snprintf(msg, sizeof(msg), "configuration is larger than %u bytes",
	    CONF_MAX_FILE_SIZE);
	expect_err(s, L, 0, 0, msg);
	free(s);
}

struct dur_case {
	const char	*in;
	int64_t		 secs;		/* -1: error */
	const char	*why;
};

static void
test_durations(void **state)
{
	static const struct dur_case cases[] = {
		{ "1h", 3600, NULL },
		{ "1h30m", 5400, NULL },
		{ "1h30m15s", 5415, NULL },
		{ "90s", 90, NULL },
		{ "5m", 300, NULL },
		{ "24h", 86400, NULL },
		{ "8760h", 31536000, NULL },
		{ "1.5h", 5400, NULL },
		{ ".5m", 30, NULL },
		{ "1.h", 3600, NULL },
		{ "0", 0, NULL },
		{ "0s", 0, NULL },
		{ "+5s", 5, NULL },
		{ "2000ms", 2, NULL },
		{ "1000000us", 1, NULL },
		{ "1000000\xc2\xb5s", 1, NULL },
		{ "1000000\xce\xbcs", 1, NULL },
		{ "1000000000ns", 1, NULL },
		{ "1h1h", 7200, NULL },
		{ "2562047h", 2562047LL * 3600, NULL },
		{ "", -1, "empty duration" },
		{ "+", -1, "empty duration" },
		{ "-1h", -1, "negative duration" },
		{ "-0", -1, "negative duration" },
		{ "1", -1, "missing unit" },
		{ "1h5", -1, "missing unit" },
		{ "1x", -1, "unknown unit" },
		{ "1H", -1, "unknown unit" },
		{ "1 h", -1, "unknown unit" },
		{ "1h ", -1, "unknown unit" },
		{ "h", -1, "expected a number" },
		{ " 1h", -1, "expected a number" },
		{ ".h", -1, "expected a number" },
		{ "1h-5m", -1, "unknown unit" },
		{ "1500ms", -1, "fraction of a second not allowed" },
		{ "0.5s", -1, "fraction of a second not allowed" },
		{ "2562048h", -1, "duration out of range" },
		{ "9223372036s", 9223372036LL, NULL },
		{ "9223372037s", -1, "duration out of range" },
		{ "99999999999999999999s", -1, "duration out of range" },
		{ "9223372036854775807ns1ns", -1, "duration out of range" },
	};
	const char	*why;
	int64_t		 v;
	size_t		 i;
	int		 r;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		why = "unset";
		r = conf_parse_duration(cases[i].in, &v, &why);
		if (cases[i].secs >= 0) {
			if (r != 0 || v != cases[i].secs)
				fail_msg("\"%s\": r=%d v=%lld why=%s",
				    cases[i].in, r, (long long)v, why);
			assert_null(why);
		} else {
			if (r != WICK_ERR_INVALID || v != 0 || why == NULL ||
			    strcmp(why, cases[i].why) != 0)
				fail_msg("\"%s\": r=%d v=%lld why=%s, want %s",
				    cases[i].in, r, (long long)v,
				    why ? why : "(null)", cases[i].why);
		}
	}
	assert_int_equal(conf_parse_duration_ms("1500ms", &v, NULL), 0);
	assert_int_equal(v, 1500);
	assert_int_equal(conf_parse_duration_ms("1.5s", &v, NULL), 0);
	assert_int_equal(v, 1500);
	assert_int_equal(conf_parse_duration_ms("1m", &v, NULL), 0);
	assert_int_equal(v, 60000);
	assert_int_equal(conf_parse_duration_ms("1500us", &v, &why),
	    WICK_ERR_INVALID);
	assert_string_equal(why, "fraction of a millisecond not allowed");
	assert_int_equal(conf_parse_duration(NULL, &v, &why),
	    WICK_ERR_INVALID);
}

static void
test_getters(void **state)
{
	struct conf		*c = parse_ok(
	    "s {\n"
	    "  str = \"x\"\n"
	    "  port = \"8081\"\n"
	    "  num = 12\n"
	    "  neg = -3\n"
	    "  flag = true\n"
	    "  ttl = \"1h\"\n"
	    "  bad_ttl = \"1x\"\n"
	    "  f = 1.5\n"
	    "  sp = \" 12\"\n"
	    "}\n");
	const json_t		*s = path(conf_root(c), "s", NULL, NULL, NULL);
	struct conf_error	 err;
	const char		*str;
	int64_t			 n;
	int			 b;

	assert_int_equal(conf_get_string(c, s, "str", "d", &str, &err), 0);
	assert_string_equal(str, "x");
	assert_int_equal(conf_get_string(c, s, "missing", "d", &str, &err), 0);
	assert_string_equal(str, "d");
	assert_int_equal(conf_get_string(c, NULL, "str", "d", &str, &err), 0);
	assert_string_equal(str, "d");
	assert_int_equal(conf_get_string(c, s, "num", "d", &str, &err),
	    WICK_ERR_CONFIG);
	assert_string_equal(err.msg, "line 4, column 3: \"num\" must be a "
	    "string");
	assert_string_equal(str, "d");

	assert_int_equal(conf_get_int(c, s, "port", 1, &n, &err), 0);
	assert_int_equal(n, 8081);
	assert_int_equal(conf_get_int(c, s, "num", 1, &n, &err), 0);
	assert_int_equal(n, 12);
	assert_int_equal(conf_get_int(c, s, "neg", 1, &n, &err), 0);
	assert_int_equal(n, -3);
	assert_int_equal(conf_get_int(c, s, "missing", 7, &n, &err), 0);
	assert_int_equal(n, 7);
	assert_int_equal(conf_get_int(c, s, "str", 1, &n, &err),
	    WICK_ERR_CONFIG);
	assert_int_equal(err.line, 2);
	assert_int_equal(err.col, 3);
	assert_string_equal(err.msg, "line 2, column 3: \"str\" must be an "
	    "integer");
	assert_int_equal(conf_get_int(c, s, "f", 1, &n, &err),
	    WICK_ERR_CONFIG);
	assert_string_equal(err.msg, "line 9, column 3: \"f\" must be an "
	    "integer");
	assert_int_equal(conf_get_int(c, s, "sp", 1, &n, &err),
	    WICK_ERR_CONFIG);
	assert_int_equal(conf_get_int_range(c, s, "port", 0, 1, 65535, &n,
	    &err), 0);
	assert_int_equal(n, 8081);
	assert_int_equal(conf_get_int_range(c, s, "neg", 5, 0, 10, &n, &err),
	    WICK_ERR_CONFIG);
	assert_int_equal(n, 5);
	assert_string_equal(err.msg, "line 5, column 3: \"neg\" must be "
	    "between 0 and 10");

	assert_int_equal(conf_get_bool(c, s, "flag", 0, &b, &err), 0);
	assert_int_equal(b, 1);
	assert_int_equal(conf_get_bool(c, s, "missing", 1, &b, &err), 0);
	assert_int_equal(b, 1);
	assert_int_equal(conf_get_bool(c, s, "str", 0, &b, &err),
	    WICK_ERR_CONFIG);
	assert_string_equal(err.msg, "line 2, column 3: \"str\" must be true "
	    "or false");

	assert_int_equal(conf_get_duration(c, s, "ttl", 5, &n, &err), 0);
	assert_int_equal(n, 3600);
	assert_int_equal(conf_get_duration(c, s, "missing", 5, &n, &err), 0);
	assert_int_equal(n, 5);
	assert_int_equal(conf_get_duration(c, s, "bad_ttl", 5, &n, &err),
	    WICK_ERR_CONFIG);
	assert_string_equal(err.msg, "line 8, column 3: invalid duration "
	    "\"1x\" for \"bad_ttl\": unknown unit");
	assert_int_equal(conf_get_duration(c, s, "num", 5, &n, &err),
	    WICK_ERR_CONFIG);
	assert_string_equal(err.msg, "line 4, column 3: \"num\" must be a "
	    "duration string such as \"1h\"");

	/* Callers' own checks at a value's place. */
	assert_int_equal(conf_error_at(c, s, "port", &err, "port %s is taken",
	    "8081"), WICK_ERR_CONFIG);
	assert_string_equal(err.msg, "line 3, column 3: port 8081 is taken");
	assert_int_equal(conf_error_at(c, s, "nope", &err, "no place"),
	    WICK_ERR_CONFIG);
	assert_int_equal(err.line, 0);
	assert_string_equal(err.msg, "no place");
	conf_free(c);
}

static void
test_expand_env(void **state)
{
	static const char text[] =
	    "server {\n"
	    "  trust_domain = \"$WICK_TEST_TD\"\n"
	    "  data_dir = \"${WICK_TEST_TD}/x$WICK_TEST_UNSET/y\"\n"
	    "  price = \"$5 and $ and $\"\n"
	    "}\n";
	struct conf		*c = NULL;
	struct conf_error	 err;
	const json_t		*srv;
	char			*out = NULL;
	size_t			 outlen;

	assert_int_equal(setenv("WICK_TEST_TD", "example.org", 1), 0);
	assert_int_equal(unsetenv("WICK_TEST_UNSET"), 0);

	/* Off by default. */
	assert_int_equal(conf_parse(text, strlen(text), 0, &c, &err), 0);
	assert_string_equal(json_string_value(path(conf_root(c), "server",
	    "trust_domain", NULL, NULL)), "$WICK_TEST_TD");
	conf_free(c);

	assert_int_equal(conf_parse(text, strlen(text), CONF_EXPAND_ENV, &c,
	    &err), 0);
	srv = path(conf_root(c), "server", NULL, NULL, NULL);
	assert_string_equal(json_string_value(json_object_get(srv,
	    "trust_domain")), "example.org");
	assert_string_equal(json_string_value(json_object_get(srv,
	    "data_dir")), "example.org/x/y");
	assert_string_equal(json_string_value(json_object_get(srv, "price")),
	    "$5 and $ and $");
	conf_free(c);

	/* A value can supply syntax too, as in SPIRE. */
	assert_int_equal(setenv("WICK_TEST_PORT", "8081", 1), 0);
	assert_int_equal(conf_expand_env("p = $WICK_TEST_PORT$", 20, &out,
	    &outlen, &err), 0);
	assert_string_equal(out, "p = 8081$");
	assert_int_equal(outlen, 9);
	free(out);

	assert_int_equal(conf_expand_env("a = 1\nb = \"${9X}\"", 17, &out,
	    &outlen, &err), WICK_ERR_CONFIG);
	assert_null(out);
	assert_string_equal(err.msg, "line 2, column 6: invalid ${...} "
	    "environment reference");
	assert_int_equal(conf_expand_env("a = ${A", 7, &out, &outlen, &err),
	    WICK_ERR_CONFIG);
	assert_int_equal(conf_expand_env("a = ${}", 7, &out, &outlen, &err),
	    WICK_ERR_CONFIG);
	assert_int_equal(conf_parse("x = \"${\"", 8, CONF_EXPAND_ENV, &c,
	    &err), WICK_ERR_CONFIG);
	assert_null(c);
	assert_string_equal(err.msg, "line 1, column 6: invalid ${...} "
	    "environment reference");
}

static void
test_expand_env_limit(void **state)
{
	struct conf_error	 err;
	char			*big, *text, *out = NULL;
	size_t			 outlen, n = 17;

	/* 17 references to a 64 KiB value exceed 1 MiB. */
	big = repeat("", "v", 65536, "");
	assert_int_equal(setenv("WICK_TEST_BIG", big, 1), 0);
	text = repeat("", "$WICK_TEST_BIG", n, "");
	assert_int_equal(conf_expand_env(text, strlen(text), &out, &outlen,
	    &err), WICK_ERR_LIMIT);
	assert_null(out);
	assert_string_equal(err.msg, "configuration is larger than 1048576 "
	    "bytes after expanding environment variables");
	free(text);
	free(big);
	assert_int_equal(unsetenv("WICK_TEST_BIG"), 0);
}

static char *
tmpfile_with(const char *content, size_t len)
{
	const char	*dir = getenv("TMPDIR");
	char		*p;
	int		 fd;

	if (dir == NULL || *dir == '\0')
		dir = "/tmp";
	assert_true(asprintf(&p, "%s/wick-test-conf-XXXXXX", dir) > 0);
	assert_true((fd = mkstemp(p)) >= 0);
	if (content != NULL)
		assert_int_equal(write(fd, content, len), (ssize_t)len);
	else
		assert_int_equal(ftruncate(fd, (off_t)len), 0);
	assert_int_equal(close(fd), 0);
	return p;
}

static void
test_load_file(void **state)
{
	struct conf		*c = NULL;
	struct conf_error	 err;
	char			*p, *d, msg[128];
	const char		*dir;

	p = tmpfile_with(agent_conf, strlen(agent_conf));
	assert_int_equal(conf_load_file(p, 0, &c, &err), 0);
	assert_string_equal(json_string_value(path(conf_root(c), "agent",
	    "join_token", NULL, NULL)), "4f3c0a2e");
	assert_pos(c, path(conf_root(c), "agent", NULL, NULL, NULL),
	    "join_token", 8, 3);
	conf_free(c);
	assert_int_equal(unlink(p), 0);
	free(p);

	/* Exactly the limit is fine, one byte more is not. */
	p = tmpfile_with(NULL, CONF_MAX_FILE_SIZE);
	assert_int_equal(conf_load_file(p, 0, &c, &err), WICK_ERR_CONFIG);
	assert_string_equal(err.msg, "line 1, column 1: unexpected byte 0x00");
	assert_int_equal(unlink(p), 0);
	free(p);
	p = tmpfile_with(NULL, CONF_MAX_FILE_SIZE + 1);
	assert_int_equal(conf_load_file(p, 0, &c, &err), WICK_ERR_LIMIT);
	assert_null(c);
	snprintf(msg, sizeof(msg), "file is larger than %u bytes",
	    CONF_MAX_FILE_SIZE);
	assert_string_equal(err.msg, msg);
	assert_int_equal(err.line, 0);
	assert_int_equal(unlink(p), 0);
	free(p);

	p = tmpfile_with("a = 1\nb = \"x\n", 12);
	assert_int_equal(conf_load_file(p, 0, &c, &err), WICK_ERR_CONFIG);
	assert_string_equal(err.msg, "line 2, column 5: unterminated string");
	assert_int_equal(unlink(p), 0);
	free(p);

	assert_int_equal(conf_load_file("/nonexistent/wick.conf", 0, &c,
	    &err), WICK_ERR_IO);
	assert_string_equal(err.msg, "cannot open: No such file or directory");
	dir = getenv("TMPDIR");
	if (dir == NULL || *dir == '\0')
		dir = "/tmp";
	assert_true(asprintf(&d, "%s/wick-test-confdir-XXXXXX", dir) > 0);
	assert_non_null(mkdtemp(d));
	assert_int_equal(conf_load_file(d, 0, &c, &err), WICK_ERR_CONFIG);
	assert_string_equal(err.msg, "not a regular file");
	assert_int_equal(rmdir(d), 0);
	free(d);
}

static void
test_empty_and_bom(void **state)
{
	struct conf	*c;

	c = parse_ok("");
	assert_int_equal(json_object_size(conf_root(c)), 0);
	conf_free(c);
	c = parse_ok("  # only a comment\n\n");
	assert_int_equal(json_object_size(conf_root(c)), 0);
	conf_free(c);
	c = parse_ok("\xef\xbb\xbf" "a = 1\n");
	assert_pos(c, conf_root(c), "a", 1, 1);
	conf_free(c);
	conf_free(NULL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_server_conf),
		cmocka_unit_test(test_agent_conf_and_schema),
		cmocka_unit_test(test_comments),
		cmocka_unit_test(test_values),
		cmocka_unit_test(test_heredoc),
		cmocka_unit_test(test_labelled_blocks),
		cmocka_unit_test(test_json_input),
		cmocka_unit_test(test_syntax_errors),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_durations),
		cmocka_unit_test(test_getters),
		cmocka_unit_test(test_expand_env),
		cmocka_unit_test(test_expand_env_limit),
		cmocka_unit_test(test_load_file),
		cmocka_unit_test(test_empty_and_bom),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
