/*
 * fuzz_conf.c: the HCL configuration parser on arbitrary bytes.  Whatever
 * parses must have a position for every member, and the schema checker
 * and getters must cope with any tree.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static const char *const known[] = { "server", "agent", "plugins", NULL };
static const char *const unimpl[] = { "telemetry", NULL };

static void
quiet(void *arg, const struct conf_error *w)
{
	(void)arg;
	if (w->msg[0] == '\0')
		abort();
}

/* A failure always says why; a success leaves no message. */
static void
check(int r, const struct conf_error *err)
{
	if ((r != 0) != (err->msg[0] != '\0'))
		abort();
}

static void
check_duration(int r, int64_t n, const char *why)
{
	if ((r != 0 && why == NULL) || (r == 0 && n < 0))
		abort();
}

/* Every member of every object and array has a recorded position. */
static void
walk(const struct conf *c, const json_t *v, int depth)
{
	const char	*key;
	json_t		*m;
	struct conf_pos	 pos;
	size_t		 i;

	if (depth > (CONF_MAX_LABELS + 1) * CONF_MAX_DEPTH + 1)
		abort();
	if (json_is_object(v)) {
		json_object_foreach((json_t *)v, key, m) {
			if (conf_lookup_pos(c, v, key, &pos) != 0 ||
			    pos.line < 1 || pos.col < 1)
				abort();
			walk(c, m, depth + 1);
		}
	} else if (json_is_array(v)) {
		json_array_foreach(v, i, m) {
			if (conf_lookup_index_pos(c, v, i, &pos) != 0 ||
			    pos.line < 1)
				abort();
			walk(c, m, depth + 1);
		}
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	struct conf		*c = NULL;
	struct conf_error	 err;
	const json_t		*root;
	const char		*s, *why = NULL;
	int64_t			 n = 0;
	int			 b, r;

	/* The first bytes as a duration. */
	if (len < 64) {
		char	buf[64];

		memcpy(buf, data, len);
		buf[len] = '\0';
		r = conf_parse_duration(buf, &n, &why);
		check_duration(r, n, why);
		r = conf_parse_duration_ms(buf, &n, &why);
		check_duration(r, n, why);
	}

	if (conf_parse((const char *)data, len, 0, &c, &err) != 0) {
		if (c != NULL || err.msg[0] == '\0')
			abort();
		return 0;
	}
	root = conf_root(c);
	walk(c, root, 0);
	check(conf_check_keys(c, root, "top level", known, unimpl, quiet,
	    NULL, &err), &err);
	check(conf_get_string(c, json_object_get(root, "server"),
	    "trust_domain", "", &s, &err), &err);
	check(conf_get_int(c, json_object_get(root, "server"), "bind_port", 0,
	    &n, &err), &err);
	check(conf_get_bool(c, json_object_get(root, "agent"),
	    "insecure_bootstrap", 0, &b, &err), &err);
	check(conf_get_duration(c, json_object_get(root, "server"), "ca_ttl",
	    0, &n, &err), &err);
	conf_free(c);
	return 0;
}
