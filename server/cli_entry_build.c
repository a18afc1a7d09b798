/*
 * cli_entry_build.c: registration entries for "entry create|update", from
 * the command's flags or from SPIRE's -data JSON, checked before sending.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cli_int.h"
#include "x509.h"
#include "selector.h"
#include "spiffeid.h"
#include "xmalloc.h"

/* ---- building entries ---------------------------------------------------- */

/*
 * Entries built here hold heap strings and arrays only, in protobuf-c's
 * layout, so that free_unpacked() with the default allocator frees them
 * (it leaves the shared empty-string default alone).
 */
static Wick__Types__Entry *
entry_new(void)
{
	Wick__Types__Entry *e = xmalloc(sizeof(*e));

	wick__types__entry__init(e);
	return e;
}

void
cli_entry_free(Wick__Types__Entry *e)
{
	if (e != NULL)
		wick__types__entry__free_unpacked(e, NULL);
}

static void
str_set(char **field, const char *v)
{
	if (*field != NULL && *field != (char *)protobuf_c_empty_string)
		free(*field);
	*field = xstrdup(v);
}

static void
strv_add(char ***v, size_t *n, const char *s)
{
	*v = xreallocarray(*v, *n + 1, sizeof(**v));
	(*v)[(*n)++] = xstrdup(s);
}

static void
sel_add(Wick__Types__Entry *e, Wick__Types__Selector *s)
{
	e->selectors = xreallocarray(e->selectors, e->n_selectors + 1,
	    sizeof(*e->selectors));
	e->selectors[e->n_selectors++] = s;
}

void
cli_entries_init(struct cli_entries *l)
{
	memset(l, 0, sizeof(*l));
}

void
cli_entries_cleanup(struct cli_entries *l)
{
	size_t i;

	for (i = 0; i < l->n; i++)
		cli_entry_free(l->v[i]);
	free(l->v);
	memset(l, 0, sizeof(*l));
}

void
cli_entries_add(struct cli_entries *l, Wick__Types__Entry *e)
{
	if (l->n == l->cap) {
		l->cap = l->cap == 0 ? 16 : l->cap * 2;
		l->v = xreallocarray(l->v, l->cap, sizeof(*l->v));
	}
	l->v[l->n++] = e;
}

/* A DNS name as far as the CLI checks it; the server checks the rest. */
static const char *
dns_why(const char *s)
{
	/* The same rule the server and the CA apply. */
	return x509_dns_name_ok(s) ? NULL : "not a DNS name (LDH labels of at "
	    "most 63 characters, at most 253 in all, an optional leading "
	    "\"*.\")";
}

int
cli_td_id(const char *s, char *out, size_t outlen, const char **why)
{
	char	td[SPIFFEID_MAX_TD_LEN + 1];
	int	r;

	if ((r = spiffeid_td_parse(s, 0, td, why)) != 0)
		return r;
	snprintf(out, outlen, "spiffe://%s", td);
	return 0;
}

/* Flags that describe an entry (all but -data, -output, -socketPath). */
static const char *const entry_flag_names[] = {
	"admin", "disableX509SVIDPrefetch", "dns", "downstream",
	"entryExpiry", "entryID", "federatesWith", "hint",
	"jwtSVIDIncludeJTI", "jwtSVIDTTL", "node", "parentID", "selector",
	"spiffeID", "storeSVID", "x509SVIDTTL",
};

const char *
cli_entry_flag_given(const struct cli_args *a)
{
	size_t i;

	for (i = 0; i < sizeof(entry_flag_names) / sizeof(entry_flag_names[0]);
	    i++)
		if (cli_arg_given(a, entry_flag_names[i]))
			return entry_flag_names[i];
	return NULL;
}

int
cli_entry_from_flags(const struct cli_args *a, int update,
    Wick__Types__Entry **out, char *err, size_t errlen)
{
	Wick__Types__Entry	*e = NULL;
	Wick__Types__Selector	*sel;
	struct spiffeid		 id, parent;
	const char *const	*sels, *const *fed, *const *dns;
	const char		*spiffe, *parent_s, *s, *why;
	char			 buf[SPIFFEID_MAX_LEN + 1];
	size_t			 nsel, nfed, ndns, i;
	int64_t			 exp;
	int			 node = cli_arg_bool(a, "node");

	*out = NULL;
	sels = cli_arg_list(a, "selector", &nsel);
	fed = cli_arg_list(a, "federatesWith", &nfed);
	dns = cli_arg_list(a, "dns", &ndns);
	spiffe = cli_arg_str(a, "spiffeID");
	parent_s = cli_arg_str(a, "parentID");
	if (cli_arg_bool(a, "disableX509SVIDPrefetch") ||
	    cli_arg_bool(a, "jwtSVIDIncludeJTI")) {
		snprintf(err, errlen, "-%s is not supported by wick",
		    cli_arg_bool(a, "jwtSVIDIncludeJTI") ? "jwtSVIDIncludeJTI" :
		    "disableX509SVIDPrefetch");
		return WICK_ERR_UNSUPPORTED;
	}
	if (update && cli_arg_str(a, "entryID") == NULL) {
		snprintf(err, errlen, "entry ID is required");
		return WICK_ERR_INVALID;
	}
	if (nsel < 1) {
		snprintf(err, errlen, "at least one selector is required");
		return WICK_ERR_INVALID;
	}
	if (nsel > SELECTOR_MAX_COUNT) {
		snprintf(err, errlen, "too many selectors (at most %d)",
		    SELECTOR_MAX_COUNT);
		return WICK_ERR_LIMIT;
	}
	if (node && nfed > 0) {
		snprintf(err, errlen, "node entries can not federate");
		return WICK_ERR_INVALID;
	}
	if (parent_s == NULL && !node) {
		snprintf(err, errlen, "a parent ID is required if the node "
		    "flag is not set");
		return WICK_ERR_INVALID;
	}
	if (parent_s != NULL && node) {
		snprintf(err, errlen, "-parentID can't be combined with -node "
		    "(a node entry's parent is the server)");
		return WICK_ERR_INVALID;
	}
	if (spiffe == NULL) {
		snprintf(err, errlen, "a SPIFFE ID is required");
		return WICK_ERR_INVALID;
	}
	e = entry_new();
	if (spiffeid_parse(spiffe, 0, &id, &why) != 0) {
		snprintf(err, errlen, "invalid value \"%s\" for -spiffeID: %s",
		    spiffe, why);
		goto fail;
	}
	if (spiffeid_format(&id, buf, sizeof(buf)) != 0)
		goto internal;
	str_set(&e->spiffe_id, buf);
	if (node) {
		if (spiffeid_server(id.td, &parent) != 0)
			goto internal;
	} else if (spiffeid_parse(parent_s, SPIFFEID_ALLOW_ROOT, &parent,
	    &why) != 0) {
		snprintf(err, errlen, "invalid value \"%s\" for -parentID: %s",
		    parent_s, why);
		goto fail;
	}
	if (spiffeid_format(&parent, buf, sizeof(buf)) != 0)
		goto internal;
	str_set(&e->parent_id, buf);
	if ((s = cli_arg_str(a, "x509SVIDTTL")) != NULL &&
	    cli_parse_ttl("x509SVIDTTL", s, &e->x509_svid_ttl, err,
	    errlen) != 0)
		goto fail;
	if ((s = cli_arg_str(a, "jwtSVIDTTL")) != NULL &&
	    cli_parse_ttl("jwtSVIDTTL", s, &e->jwt_svid_ttl, err,
	    errlen) != 0)
		goto fail;
	if ((s = cli_arg_str(a, "entryExpiry")) != NULL) {
		if (cli_parse_int64("entryExpiry", s, 0, &exp, err,
		    errlen) != 0)
			goto fail;
		e->expires_at = exp;
	}
	for (i = 0; i < nsel; i++) {
		if (cli_selector_parse(sels[i], &sel, &why) != 0) {
			snprintf(err, errlen, "invalid value \"%s\" for "
			    "-selector: %s", sels[i], why);
			goto fail;
		}
		sel_add(e, sel);
	}
	for (i = 0; i < nfed; i++) {
		if (cli_td_id(fed[i], buf, sizeof(buf), &why) != 0) {
			snprintf(err, errlen, "invalid value \"%s\" for "
			    "-federatesWith: %s", fed[i], why);
			goto fail;
		}
		strv_add(&e->federates_with, &e->n_federates_with, buf);
	}
	for (i = 0; i < ndns; i++) {
		if ((why = dns_why(dns[i])) != NULL) {
			snprintf(err, errlen, "invalid value \"%s\" for -dns: "
			    "%s", dns[i], why);
			goto fail;
		}
		strv_add(&e->dns_names, &e->n_dns_names, dns[i]);
	}
	if ((s = cli_arg_str(a, "hint")) != NULL) {
		if (strlen(s) > CLI_MAX_HINT_LEN) {
			snprintf(err, errlen, "invalid value for -hint: longer "
			    "than %d characters", CLI_MAX_HINT_LEN);
			goto fail;
		}
		str_set(&e->hint, s);
	}
	if ((s = cli_arg_str(a, "entryID")) != NULL) {
		if (*s == '\0' || strlen(s) > CLI_MAX_ENTRY_ID_LEN) {
			snprintf(err, errlen, "invalid value for -entryID: "
			    "empty or longer than %d characters",
			    CLI_MAX_ENTRY_ID_LEN);
			goto fail;
		}
		str_set(&e->id, s);
	}
	e->admin = cli_arg_bool(a, "admin");
	e->downstream = cli_arg_bool(a, "downstream");
	e->store_svid = cli_arg_bool(a, "storeSVID");
	*out = e;
	return 0;
internal:
	snprintf(err, errlen, "internal error building the entry");
fail:
	cli_entry_free(e);
	return WICK_ERR_INVALID;
}

/* ---- -data JSON ---------------------------------------------------------- */

enum jfield {
	JF_ID = 0,
	JF_SPIFFE_ID,
	JF_PARENT_ID,
	JF_SELECTORS,
	JF_X509_TTL,
	JF_LEGACY_TTL,
	JF_JWT_TTL,
	JF_FEDERATES,
	JF_ADMIN,
	JF_DOWNSTREAM,
	JF_EXPIRES,
	JF_DNS,
	JF_STORE_SVID,
	JF_HINT,
	JF_REVISION,
	JF_CREATED,
	JF_ATTRS,
	JF_COUNT
};

/* Matched without regard to case, as Go's encoding/json does. */
static const struct {
	const char	*name;
	enum jfield	 f;
} jfields[] = {
	{ "id", JF_ID },
	{ "entry_id", JF_ID },
	{ "spiffe_id", JF_SPIFFE_ID },
	{ "parent_id", JF_PARENT_ID },
	{ "selectors", JF_SELECTORS },
	{ "x509_svid_ttl", JF_X509_TTL },
	{ "ttl", JF_LEGACY_TTL },
	{ "jwt_svid_ttl", JF_JWT_TTL },
	{ "federates_with", JF_FEDERATES },
	{ "admin", JF_ADMIN },
	{ "downstream", JF_DOWNSTREAM },
	{ "expires_at", JF_EXPIRES },
	{ "entryExpiry", JF_EXPIRES },
	{ "dns_names", JF_DNS },
	{ "store_svid", JF_STORE_SVID },
	{ "hint", JF_HINT },
	{ "revision_number", JF_REVISION },
	{ "created_at", JF_CREATED },
	{ "additional_attributes", JF_ATTRS },
};

/* An integer, or a string holding one (protojson's int64). */
static int
json_int64(const json_t *v, int64_t *out)
{
	const char	*s;
	char		*end;
	long long	 x;

	if (json_is_integer(v)) {
		*out = json_integer_value(v);
		return 0;
	}
	if (!json_is_string(v))
		return WICK_ERR_INVALID;
	s = json_string_value(v);
	if (*s == '\0' || (*s != '-' && (*s < '0' || *s > '9')))
		return WICK_ERR_INVALID;
	errno = 0;
	x = strtoll(s, &end, 10);
	if (*end != '\0' || errno == ERANGE)
		return WICK_ERR_INVALID;
	*out = x;
	return 0;
}

/* A SPIFFE ID as a string or as {"trust_domain": .., "path": ..}. */
static int
json_id(const json_t *v, unsigned flags, char *out, size_t outlen,
    const char **why)
{
	struct spiffeid	 id;
	const json_t	*td = NULL, *path = NULL, *x;
	const char	*k, *s;
	char		 buf[SPIFFEID_MAX_LEN + 1];
	int		 n;

	if (json_is_string(v))
		s = json_string_value(v);
	else if (json_is_object(v)) {
		json_object_foreach((json_t *)v, k, x) {
			if (strcasecmp(k, "trust_domain") == 0)
				td = x;
			else if (strcasecmp(k, "path") == 0)
				path = x;
			else {
				*why = "unknown field in the ID object";
				return WICK_ERR_INVALID;
			}
		}
		if (!json_is_string(td) || (path != NULL &&
		    !json_is_string(path) && !json_is_null(path))) {
			*why = "trust_domain and path must be strings";
			return WICK_ERR_INVALID;
		}
		if (json_is_string(path) && *json_string_value(path) != '\0' &&
		    *json_string_value(path) != '/') {
			*why = "path must start with \"/\"";
			return WICK_ERR_INVALID;
		}
		n = snprintf(buf, sizeof(buf), "spiffe://%s%s",
		    json_string_value(td), json_is_string(path) ?
		    json_string_value(path) : "");
		if (n < 0 || (size_t)n >= sizeof(buf)) {
			*why = "SPIFFE ID is too long";
			return WICK_ERR_INVALID;
		}
		s = buf;
	} else {
		*why = "must be a string or {\"trust_domain\", \"path\"}";
		return WICK_ERR_INVALID;
	}
	if (spiffeid_parse(s, flags, &id, why) != 0)
		return WICK_ERR_INVALID;
	return spiffeid_format(&id, out, outlen);
}

/* Array of strings, each passed through check (may be NULL). */
static int
json_strv(const json_t *v, const char *field, size_t idx, size_t max,
    char ***out, size_t *n, int fed, char *err, size_t errlen)
{
	const json_t	*x;
	const char	*why;
	char		 buf[SPIFFEID_MAX_LEN + 1];
	size_t		 i;

	if (!json_is_array(v)) {
		snprintf(err, errlen, "entries[%zu].%s: must be an array of "
		    "strings", idx, field);
		return WICK_ERR_INVALID;
	}
	if (json_array_size(v) > max) {
		snprintf(err, errlen, "entries[%zu].%s: more than %zu values",
		    idx, field, max);
		return WICK_ERR_LIMIT;
	}
	json_array_foreach(v, i, x) {
		if (!json_is_string(x)) {
			snprintf(err, errlen, "entries[%zu].%s[%zu]: must be a "
			    "string", idx, field, i);
			return WICK_ERR_INVALID;
		}
		if (fed) {
			if (cli_td_id(json_string_value(x), buf, sizeof(buf),
			    &why) != 0) {
				snprintf(err, errlen, "entries[%zu].%s[%zu]: "
				    "%s", idx, field, i, why);
				return WICK_ERR_INVALID;
			}
			strv_add(out, n, buf);
			continue;
		}
		if ((why = dns_why(json_string_value(x))) != NULL) {
			snprintf(err, errlen, "entries[%zu].%s[%zu]: %s", idx,
			    field, i, why);
			return WICK_ERR_INVALID;
		}
		strv_add(out, n, json_string_value(x));
	}
	return 0;
}

static int
json_selectors(const json_t *v, size_t idx, Wick__Types__Entry *e, char *err,
    size_t errlen)
{
	Wick__Types__Selector	*sel;
	const json_t		*x, *t, *val;
	const char		*why;
	size_t			 i;

	if (!json_is_array(v)) {
		snprintf(err, errlen, "entries[%zu].selectors: must be an "
		    "array of {\"type\", \"value\"}", idx);
		return WICK_ERR_INVALID;
	}
	if (json_array_size(v) > SELECTOR_MAX_COUNT) {
		snprintf(err, errlen, "entries[%zu].selectors: more than %d",
		    idx, SELECTOR_MAX_COUNT);
		return WICK_ERR_LIMIT;
	}
	json_array_foreach(v, i, x) {
		t = json_object_get(x, "type");
		val = json_object_get(x, "value");
		if (!json_is_object(x) || json_object_size(x) != 2 ||
		    !json_is_string(t) || !json_is_string(val)) {
			snprintf(err, errlen, "entries[%zu].selectors[%zu]: "
			    "must be {\"type\": string, \"value\": string}",
			    idx, i);
			return WICK_ERR_INVALID;
		}
		if (cli_selector_make(json_string_value(t),
		    json_string_value(val), &sel, &why) != 0) {
			snprintf(err, errlen, "entries[%zu].selectors[%zu]: %s",
			    idx, i, why);
			return WICK_ERR_INVALID;
		}
		sel_add(e, sel);
	}
	return 0;
}

static int
json_ttl(const json_t *v, int32_t *out)
{
	int64_t x;

	if (json_int64(v, &x) != 0 || x < 0 || x > INT32_MAX)
		return WICK_ERR_INVALID;
	*out = (int32_t)x;
	return 0;
}

static int
json_field(const json_t *v, enum jfield f, const char *key, size_t idx,
    Wick__Types__Entry *e, int32_t *legacy_ttl, char *err, size_t errlen)
{
	const json_t	*x;
	const char	*k, *why = NULL;
	char		 buf[SPIFFEID_MAX_LEN + 1];
	int64_t		 n;

	switch (f) {
	case JF_ID:
		if (!json_is_string(v))
			why = "must be a string";
		else if (json_string_length(v) == 0 ||
		    json_string_length(v) > CLI_MAX_ENTRY_ID_LEN)
			why = "empty or longer than 255 characters";
		else
			str_set(&e->id, json_string_value(v));
		break;
	case JF_SPIFFE_ID:
	case JF_PARENT_ID:
		if (json_id(v, f == JF_SPIFFE_ID ? 0 : SPIFFEID_ALLOW_ROOT, buf,
		    sizeof(buf), &why) == 0)
			str_set(f == JF_SPIFFE_ID ? &e->spiffe_id :
			    &e->parent_id, buf);
		else if (why == NULL)
			why = "invalid SPIFFE ID";
		break;
	case JF_SELECTORS:
		return json_selectors(v, idx, e, err, errlen);
	case JF_X509_TTL:
	case JF_LEGACY_TTL:
	case JF_JWT_TTL:
		if (json_ttl(v, f == JF_X509_TTL ? &e->x509_svid_ttl :
		    f == JF_JWT_TTL ? &e->jwt_svid_ttl : legacy_ttl) != 0)
			why = "must be an integer from 0 to 2147483647";
		break;
	case JF_FEDERATES:
		return json_strv(v, key, idx, CLI_MAX_LIST, &e->federates_with,
		    &e->n_federates_with, 1, err, errlen);
	case JF_DNS:
		return json_strv(v, key, idx, CLI_MAX_LIST, &e->dns_names,
		    &e->n_dns_names, 0, err, errlen);
	case JF_ADMIN:
	case JF_DOWNSTREAM:
	case JF_STORE_SVID:
		if (!json_is_boolean(v))
			why = "must be true or false";
		else if (f == JF_ADMIN)
			e->admin = json_is_true(v);
		else if (f == JF_DOWNSTREAM)
			e->downstream = json_is_true(v);
		else
			e->store_svid = json_is_true(v);
		break;
	case JF_EXPIRES:
		if (json_int64(v, &n) != 0 || n < 0)
			why = "must be a non-negative integer (unix seconds)";
		else
			e->expires_at = n;
		break;
	case JF_HINT:
		if (!json_is_string(v))
			why = "must be a string";
		else if (json_string_length(v) > CLI_MAX_HINT_LEN)
			why = "longer than 1024 characters";
		else
			str_set(&e->hint, json_string_value(v));
		break;
	case JF_REVISION:
	case JF_CREATED:
		/* Set by the server; accepted for round trips. */
		if (json_int64(v, &n) != 0)
			why = "must be an integer";
		break;
	case JF_ATTRS:
		if (!json_is_object(v)) {
			why = "must be an object";
			break;
		}
		json_object_foreach((json_t *)v, k, x)
			if (!json_is_false(x) && !json_is_null(x)) {
				snprintf(err, errlen, "entries[%zu].%s.%s: not "
				    "supported by wick", idx, key, k);
				return WICK_ERR_UNSUPPORTED;
			}
		break;
	case JF_COUNT:
		why = "unknown field";
		break;
	}
	if (why != NULL) {
		snprintf(err, errlen, "entries[%zu].%s: %s", idx, key, why);
		return WICK_ERR_INVALID;
	}
	return 0;
}

static int
entry_from_json(const json_t *o, size_t idx, int update,
    Wick__Types__Entry **out, char *err, size_t errlen)
{
	Wick__Types__Entry	*e;
	const json_t		*v;
	const char		*key, *seen[JF_COUNT];
	int32_t			 legacy_ttl = -1;
	size_t			 i;
	int			 f, r;

	*out = NULL;
	if (!json_is_object(o)) {
		snprintf(err, errlen, "entries[%zu]: must be an object", idx);
		return WICK_ERR_INVALID;
	}
	memset(seen, 0, sizeof(seen));
	e = entry_new();
	json_object_foreach((json_t *)o, key, v) {
		f = -1;
		for (i = 0; i < sizeof(jfields) / sizeof(jfields[0]); i++)
			if (strcasecmp(key, jfields[i].name) == 0)
				f = (int)jfields[i].f;
		if (f < 0) {
			snprintf(err, errlen, "entries[%zu]: unknown field "
			    "\"%s\"", idx, key);
			goto fail;
		}
		if (seen[f] != NULL) {
			snprintf(err, errlen, "entries[%zu]: \"%s\" and \"%s\" "
			    "both given", idx, seen[f], key);
			goto fail;
		}
		seen[f] = key;
		if (json_is_null(v))
			continue;
		if ((r = json_field(v, (enum jfield)f, key, idx, e,
		    &legacy_ttl, err, errlen)) != 0)
			goto fail;
	}
	if (seen[JF_X509_TTL] == NULL && legacy_ttl >= 0)
		e->x509_svid_ttl = legacy_ttl;
	if (*e->spiffe_id == '\0' || *e->parent_id == '\0') {
		snprintf(err, errlen, "entries[%zu]: %s is required", idx,
		    *e->spiffe_id == '\0' ? "spiffe_id" : "parent_id");
		goto fail;
	}
	if (e->n_selectors == 0) {
		snprintf(err, errlen, "entries[%zu]: at least one selector is "
		    "required", idx);
		goto fail;
	}
	if (update && *e->id == '\0') {
		snprintf(err, errlen, "entries[%zu]: an entry ID (\"id\" or "
		    "\"entry_id\") is required to update", idx);
		goto fail;
	}
	*out = e;
	return 0;
fail:
	cli_entry_free(e);
	return WICK_ERR_INVALID;
}

/* The document as a JSON object whose only array member is key. */
static json_t *
load_doc(const char *text, size_t len, const char *key, json_t **arr,
    char *err, size_t errlen)
{
	json_error_t	 jerr;
	json_t		*root, *v;
	const char	*k;

	*arr = NULL;
	if ((root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr)) ==
	    NULL) {
		snprintf(err, errlen, "invalid JSON at line %d, column %d: %s",
		    jerr.line, jerr.column, jerr.text);
		return NULL;
	}
	if (!json_is_object(root)) {
		snprintf(err, errlen, "the JSON must be an object: "
		    "{\"%s\": [...]}", key);
		goto fail;
	}
	json_object_foreach(root, k, v) {
		if (strcasecmp(k, key) == 0)
			*arr = v;
		else if (strcasecmp(k, "next_page_token") != 0) {
			snprintf(err, errlen, "unknown field \"%s\"", k);
			goto fail;
		}
	}
	if (!json_is_array(*arr)) {
		snprintf(err, errlen, "\"%s\" must be an array", key);
		goto fail;
	}
	if (json_array_size(*arr) == 0) {
		snprintf(err, errlen, "\"%s\" is empty", key);
		goto fail;
	}
	if (json_array_size(*arr) > CLI_MAX_DATA_ENTRIES) {
		snprintf(err, errlen, "%zu %s; at most %d in one command",
		    json_array_size(*arr), key, CLI_MAX_DATA_ENTRIES);
		goto fail;
	}
	return root;
fail:
	json_decref(root);
	*arr = NULL;
	return NULL;
}

int
cli_entries_from_json(const char *text, size_t len, int update,
    struct cli_entries *out, char *err, size_t errlen)
{
	Wick__Types__Entry	*e;
	json_t			*root, *arr, *v;
	size_t			 i;
	int			 r = 0;

	if ((root = load_doc(text, len, "entries", &arr, err, errlen)) ==
	    NULL)
		return WICK_ERR_INVALID;
	json_array_foreach(arr, i, v) {
		if ((r = entry_from_json(v, i, update, &e, err, errlen)) != 0)
			break;
		cli_entries_add(out, e);
	}
	json_decref(root);
	return r;
}

int
cli_ids_from_json(const char *text, size_t len, char ***ids, size_t *n,
    char *err, size_t errlen)
{
	json_t	*root, *arr, *v;
	size_t	 i;

	*ids = NULL;
	*n = 0;
	if ((root = load_doc(text, len, "ids", &arr, err, errlen)) == NULL)
		return WICK_ERR_INVALID;
	json_array_foreach(arr, i, v)
		if (!json_is_string(v) || json_string_length(v) == 0) {
			snprintf(err, errlen, "ids[%zu]: must be a non-empty "
			    "string", i);
			json_decref(root);
			return WICK_ERR_INVALID;
		}
	*ids = xcalloc(json_array_size(arr), sizeof(**ids));
	json_array_foreach(arr, i, v)
		(*ids)[i] = xstrdup(json_string_value(v));
	*n = json_array_size(arr);
	json_decref(root);
	return 0;
}
