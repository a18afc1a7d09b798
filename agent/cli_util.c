/*
 * cli_util.c: the pure helpers of the Workload API command-line client:
 * Go-style flags, SPIFFE_ENDPOINT_SOCKET, time and duration text,
 * google.protobuf.Struct to JSON, token payloads and atomic file writes.
 */
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <openssl/asn1.h>

#include "cli_int.h"
#include "encode.h"
#include "flag.h"
#include "conf.h"
#include "config.h"
#include "jose.h"
#include "rpc.h"

/* ---- flags --------------------------------------------------------------- */

static const struct cli_flag *
flag_lookup(const struct cli_flag *fl, size_t nfl, const char *name,
    size_t len)
{
	size_t i;

	for (i = 0; i < nfl; i++)
		if (strlen(fl[i].name) == len &&
		    strncmp(fl[i].name, name, len) == 0)
			return &fl[i];
	return NULL;
}

static int
list_add(struct cli_list *l, const char *val, const char *name, char *err,
    size_t errlen)
{
	const char	*p = val, *comma;
	size_t		 n;

	for (;;) {
		comma = strchr(p, ',');
		n = comma != NULL ? (size_t)(comma - p) : strlen(p);
		if (n == 0) {
			snprintf(err, errlen, "invalid value \"%s\" for flag "
			    "-%s: empty item", val, name);
			return WICK_ERR_INVALID;
		}
		if (l->n >= CLI_MAX_LIST) {
			snprintf(err, errlen, "invalid value \"%s\" for flag "
			    "-%s: more than %d values", val, name,
			    CLI_MAX_LIST);
			return WICK_ERR_LIMIT;
		}
		if ((l->v[l->n] = strndup(p, n)) == NULL) {
			snprintf(err, errlen, "out of memory");
			return WICK_ERR_ALLOC;
		}
		l->n++;
		if (comma == NULL)
			return 0;
		p = comma + 1;
	}
}

int
cli_flags_parse(const struct cli_flag *fl, size_t nfl, int argc, char **argv,
    int *next, char *err, size_t errlen)
{
	const struct cli_flag	*f;
	const char		*a, *name, *eq, *val, *why;
	size_t			 nlen;
	int64_t			 ms;
	int			 i, b, r;

	*err = '\0';
	for (i = 0; i < argc; i++) {
		a = argv[i];
		if (a[0] != '-' || a[1] == '\0')
			break;
		name = a + 1;
		if (name[0] == '-') {
			name++;
			if (name[0] == '\0') {
				i++;	/* "--" ends the flags */
				break;
			}
		}
		if (name[0] == '-' || name[0] == '=') {
			snprintf(err, errlen, "bad flag syntax: %s", a);
			return WICK_ERR_INVALID;
		}
		eq = strchr(name, '=');
		nlen = eq != NULL ? (size_t)(eq - name) : strlen(name);
		val = eq != NULL ? eq + 1 : NULL;
		if ((f = flag_lookup(fl, nfl, name, nlen)) == NULL) {
			if ((nlen == 1 && name[0] == 'h') ||
			    (nlen == 4 && strncmp(name, "help", 4) == 0)) {
				*next = i;
				return CLI_FLAGS_HELP;
			}
			snprintf(err, errlen, "flag provided but not defined: "
			    "-%.*s", (int)nlen, name);
			return WICK_ERR_INVALID;
		}
		if (f->type == CLI_FLAG_BOOL) {
			b = 1;
			if (val != NULL && flag_parse_bool(val, &b) != 0) {
				snprintf(err, errlen, "invalid boolean value "
				    "\"%s\" for -%s: parse error", val,
				    f->name);
				return WICK_ERR_INVALID;
			}
			*(int *)f->dst = b;
			continue;
		}
		if (val == NULL) {
			if (i + 1 >= argc) {
				snprintf(err, errlen, "flag needs an argument: "
				    "-%s", f->name);
				return WICK_ERR_INVALID;
			}
			val = argv[++i];
		}
		switch (f->type) {
		case CLI_FLAG_STRING:
			*(const char **)f->dst = val;
			break;
		case CLI_FLAG_DURATION:
			if (conf_parse_duration_ms(val, &ms, &why) != 0) {
				snprintf(err, errlen, "invalid value \"%s\" "
				    "for flag -%s: %s", val, f->name,
				    why != NULL ? why : "parse error");
				return WICK_ERR_INVALID;
			}
			*(int64_t *)f->dst = ms;
			break;
		case CLI_FLAG_LIST:
			if ((r = list_add(f->dst, val, f->name, err,
			    errlen)) != 0)
				return r;
			break;
		default:
			snprintf(err, errlen, "internal error: flag -%s",
			    f->name);
			return WICK_ERR_INTERNAL;
		}
	}
	*next = i;
	return 0;
}

void
cli_flags_usage(FILE *f, const char *synopsis, const struct cli_flag *fl,
    size_t nfl)
{
	size_t i;

	fprintf(f, "Usage: %s\n", synopsis);
	for (i = 0; i < nfl; i++) {
		fprintf(f, "  -%s", fl[i].name);
		if (fl[i].arg != NULL && fl[i].type != CLI_FLAG_BOOL)
			fprintf(f, " %s", fl[i].arg);
		fprintf(f, "\n    \t%s\n", fl[i].help);
	}
}

void
cli_list_clear(struct cli_list *l)
{
	size_t i;

	for (i = 0; i < l->n; i++)
		free(l->v[i]);
	l->n = 0;
}

/* ---- the endpoint -------------------------------------------------------- */

int
cli_endpoint_parse(const char *uri, char *path, size_t pathlen,
    const char **why)
{
	const char	*rest, *slash, *colon;

	*why = NULL;
	if (pathlen > 0)
		*path = '\0';
	if (strncasecmp(uri, "unix:", 5) != 0) {
		colon = strchr(uri, ':');
		if (strncasecmp(uri, "tcp:", 4) == 0)
			*why = "TCP endpoints are not supported by this "
			    "client; give a unix:///path URI";
		else if (colon == NULL || colon == uri)
			*why = "workload endpoint socket URI must have a "
			    "\"unix\" scheme (unix:///path/to/socket)";
		else
			*why = "workload endpoint socket URI must have a "
			    "\"unix\" scheme";
		return WICK_ERR_INVALID;
	}
	rest = uri + 5;
	if (strncmp(rest, "//", 2) == 0) {
		rest += 2;
		slash = strchr(rest, '/');
		if (slash == NULL)
			slash = rest + strlen(rest);
		if (slash != rest) {
			*why = memchr(rest, '@', (size_t)(slash - rest)) !=
			    NULL ? "workload endpoint unix socket URI must "
			    "not include user info" : "workload endpoint "
			    "unix socket URI must not include a host";
			return WICK_ERR_INVALID;
		}
	} else if (rest[0] != '/' && rest[0] != '\0') {
		*why = "workload endpoint unix socket URI must not be opaque "
		    "(the path must be absolute)";
		return WICK_ERR_INVALID;
	}
	if (strchr(rest, '?') != NULL) {
		*why = "workload endpoint unix socket URI must not include "
		    "query values";
		return WICK_ERR_INVALID;
	}
	if (strchr(rest, '#') != NULL) {
		*why = "workload endpoint unix socket URI must not include a "
		    "fragment";
		return WICK_ERR_INVALID;
	}
	if (strchr(rest, '%') != NULL) {
		*why = "percent-encoded socket paths are not supported";
		return WICK_ERR_INVALID;
	}
	if (rest[0] != '/' || rest[1] == '\0') {
		*why = "workload endpoint unix socket URI must include a path";
		return WICK_ERR_INVALID;
	}
	if (strlen(rest) >= pathlen) {
		*why = "socket path too long";
		return WICK_ERR_LIMIT;
	}
	memcpy(path, rest, strlen(rest) + 1);
	return 0;
}

int
cli_socket_resolve(const char *flag, const char *env, char *path,
    size_t pathlen, char *err, size_t errlen)
{
	char		 cwd[PATH_MAX], buf[PATH_MAX];
	const char	*why;
	int		 r;

	*err = '\0';
	if (flag != NULL) {
		if (*flag == '\0') {
			snprintf(err, errlen, "-socketPath: empty path");
			return WICK_ERR_INVALID;
		}
		if (*flag == '/')
			snprintf(buf, sizeof(buf), "%s", flag);
		else if (getcwd(cwd, sizeof(cwd)) == NULL ||
		    snprintf(buf, sizeof(buf), "%s/%s", cwd, flag) >=
		    (int)sizeof(buf)) {
			snprintf(err, errlen, "-socketPath: cannot make %s "
			    "absolute", flag);
			return WICK_ERR_INVALID;
		}
	} else if (env != NULL && *env != '\0') {
		if ((r = cli_endpoint_parse(env, buf, sizeof(buf), &why)) !=
		    0) {
			snprintf(err, errlen, "invalid %s \"%s\": %s",
			    CLI_ENDPOINT_ENV, env, why);
			return r;
		}
	} else
		snprintf(buf, sizeof(buf), "%s", AGENT_DEFAULT_SOCKET);
	if (strlen(buf) > CLI_MAX_SOCKET_PATH || strlen(buf) >= pathlen) {
		snprintf(err, errlen, "socket path %s is too long (at most %d "
		    "bytes)", buf, CLI_MAX_SOCKET_PATH);
		return WICK_ERR_LIMIT;
	}
	memcpy(path, buf, strlen(buf) + 1);
	return 0;
}

/* ---- formatting ---------------------------------------------------------- */

/* v / 10^prec with the fraction's trailing zeros (and '.') dropped. */
static int
put_frac(char *out, size_t outlen, uint64_t v, int prec)
{
	uint64_t	 div = 1;
	char		 frac[24];
	int		 i, n;

	for (i = 0; i < prec; i++)
		div *= 10;
	n = snprintf(frac, sizeof(frac), "%0*llu", prec,
	    (unsigned long long)(v % div));
	while (n > 0 && frac[n - 1] == '0')
		frac[--n] = '\0';
	return snprintf(out, outlen, "%llu%s%s", (unsigned long long)(v / div),
	    n > 0 ? "." : "", frac);
}

void
cli_go_duration(uint64_t ns, char *out, size_t outlen)
{
	uint64_t	 secs, h, m;
	char		 s[48];

	if (outlen == 0)
		return;
	if (ns == 0)
		snprintf(out, outlen, "0s");
	else if (ns < 1000)
		snprintf(out, outlen, "%lluns", (unsigned long long)ns);
	else if (ns < 1000000) {
		(void)put_frac(s, sizeof(s), ns, 3);
		snprintf(out, outlen, "%s\xc2\xb5s", s);
	} else if (ns < 1000000000) {
		(void)put_frac(s, sizeof(s), ns, 6);
		snprintf(out, outlen, "%sms", s);
	} else {
		secs = ns / 1000000000;
		h = secs / 3600;
		m = secs / 60 % 60;
		(void)put_frac(s, sizeof(s), secs % 60 * 1000000000 +
		    ns % 1000000000, 9);
		if (h > 0)
			snprintf(out, outlen, "%lluh%llum%ss",
			    (unsigned long long)h, (unsigned long long)m, s);
		else if (m > 0)
			snprintf(out, outlen, "%llum%ss", (unsigned long long)m,
			    s);
		else
			snprintf(out, outlen, "%ss", s);
	}
}

static int
tm_format(const struct tm *tm, int rfc3339, char *out, size_t outlen)
{
	if (strftime(out, outlen, rfc3339 ? "%Y-%m-%dT%H:%M:%SZ" :
	    "%Y-%m-%d %H:%M:%S +0000 UTC", tm) == 0)
		return WICK_ERR_LIMIT;
	return 0;
}

int
cli_asn1_time(const ASN1_TIME *t, int rfc3339, char *out, size_t outlen)
{
	struct tm tm;

	memset(&tm, 0, sizeof(tm));
	if (t == NULL || ASN1_TIME_to_tm(t, &tm) != 1)
		return WICK_ERR_INVALID;
	return tm_format(&tm, rfc3339, out, outlen);
}

int
cli_unix_time(int64_t secs, int rfc3339, char *out, size_t outlen)
{
	struct tm	tm;
	time_t		t = (time_t)secs;

	/* Years 0001..9999 only, like RFC 3339. */
	if (secs < -62135596800LL || secs > 253402300799LL ||
	    gmtime_r(&t, &tm) == NULL)
		return WICK_ERR_INVALID;
	return tm_format(&tm, rfc3339, out, outlen);
}

void
cli_put_safe(FILE *f, const char *s)
{
	for (; *s != '\0'; s++)
		fputc((unsigned char)*s < 0x20 || *s == 0x7f ? '?' : *s, f);
}

void
cli_safe_copy(const char *s, char *out, size_t outlen)
{
	size_t i;

	if (outlen == 0)
		return;
	for (i = 0; s[i] != '\0' && i + 1 < outlen; i++)
		out[i] = (unsigned char)s[i] < 0x20 || s[i] == 0x7f ? '?' :
		    s[i];
	out[i] = '\0';
}

const char *
cli_code_name(int st)
{
	static const char *const names[] = {
		"OK", "Canceled", "Unknown", "InvalidArgument",
		"DeadlineExceeded", "NotFound", "AlreadyExists",
		"PermissionDenied", "ResourceExhausted", "FailedPrecondition",
		"Aborted", "OutOfRange", "Unimplemented", "Internal",
		"Unavailable", "DataLoss", "Unauthenticated",
	};

	if (st < 0 || st > RPC_UNAUTHENTICATED)
		return "Unknown";
	return names[st];
}

/* ---- google.protobuf.Struct ---------------------------------------------- */

static int	struct_json(const Google__Protobuf__Struct *, int, json_t **,
		    const char **);

static int
value_json(const Google__Protobuf__Value *v, int depth, json_t **out,
    const char **why)
{
	const Google__Protobuf__ListValue	*l;
	json_t					*a = NULL, *e;
	double					 d;
	size_t					 i;
	int					 r;

	*out = NULL;
	if (v == NULL) {
		*out = json_null();
		return 0;
	}
	switch (v->kind_case) {
	case GOOGLE__PROTOBUF__VALUE__KIND__NOT_SET:
	case GOOGLE__PROTOBUF__VALUE__KIND_NULL_VALUE:
		*out = json_null();
		return 0;
	case GOOGLE__PROTOBUF__VALUE__KIND_NUMBER_VALUE:
		d = v->number_value;
		if (isnan(d))
			*out = json_string("NaN");
		else if (isinf(d))
			*out = json_string(d > 0 ? "Infinity" : "-Infinity");
		else if (d >= -9007199254740992.0 &&
		    d <= 9007199254740992.0 && d == (double)(json_int_t)d)
			*out = json_integer((json_int_t)d);
		else
			*out = json_real(d);
		break;
	case GOOGLE__PROTOBUF__VALUE__KIND_STRING_VALUE:
		if (v->string_value == NULL ||
		    (*out = json_string(v->string_value)) == NULL) {
			*why = "a claim string is not valid UTF-8";
			return WICK_ERR_INVALID;
		}
		return 0;
	case GOOGLE__PROTOBUF__VALUE__KIND_BOOL_VALUE:
		*out = json_boolean(v->bool_value);
		break;
	case GOOGLE__PROTOBUF__VALUE__KIND_STRUCT_VALUE:
		return struct_json(v->struct_value, depth + 1, out, why);
	case GOOGLE__PROTOBUF__VALUE__KIND_LIST_VALUE:
		if (depth + 1 > CLI_MAX_STRUCT_DEPTH) {
			*why = "claims are nested too deeply";
			return WICK_ERR_LIMIT;
		}
		if ((a = json_array()) == NULL)
			goto oom;
		l = v->list_value;
		for (i = 0; l != NULL && i < l->n_values; i++) {
			if ((r = value_json(l->values[i], depth + 1, &e,
			    why)) != 0) {
				json_decref(a);
				return r;
			}
			if (json_array_append_new(a, e) != 0) {
				json_decref(a);
				goto oom;
			}
		}
		*out = a;
		return 0;
	default:
		*why = "a claim has an unknown value kind";
		return WICK_ERR_INVALID;
	}
	if (*out == NULL)
		goto oom;
	return 0;
oom:
	*why = "out of memory";
	return WICK_ERR_ALLOC;
}

static int
struct_json(const Google__Protobuf__Struct *s, int depth, json_t **out,
    const char **why)
{
	json_t	*o, *v;
	size_t	 i;
	int	 r;

	*out = NULL;
	if (depth > CLI_MAX_STRUCT_DEPTH) {
		*why = "claims are nested too deeply";
		return WICK_ERR_LIMIT;
	}
	if ((o = json_object()) == NULL) {
		*why = "out of memory";
		return WICK_ERR_ALLOC;
	}
	for (i = 0; s != NULL && i < s->n_fields; i++) {
		if (s->fields[i] == NULL || s->fields[i]->key == NULL)
			continue;
		if ((r = value_json(s->fields[i]->value, depth, &v, why)) !=
		    0) {
			json_decref(o);
			return r;
		}
		if (json_object_set_new(o, s->fields[i]->key, v) != 0) {
			json_decref(o);
			*why = "a claim name is not valid UTF-8";
			return WICK_ERR_INVALID;
		}
	}
	*out = o;
	return 0;
}

int
cli_struct_to_json(const Google__Protobuf__Struct *s, json_t **out,
    const char **why)
{
	*why = NULL;
	return struct_json(s, 1, out, why);
}

/* ---- wire nesting of ValidateJWTSVIDResponse ----------------------------- */

enum pb_kind {
	PB_RESPONSE = 0,	/* ValidateJWTSVIDResponse */
	PB_STRUCT,		/* google.protobuf.Struct */
	PB_ENTRY,		/* Struct.FieldsEntry */
	PB_VALUE,		/* google.protobuf.Value */
	PB_LIST,		/* google.protobuf.ListValue */
	PB_NONE,
};

static enum pb_kind
pb_child(enum pb_kind k, uint64_t field)
{
	switch (k) {
	case PB_RESPONSE:
		return field == 2 ? PB_STRUCT : PB_NONE;
	case PB_STRUCT:
		return field == 1 ? PB_ENTRY : PB_NONE;
	case PB_ENTRY:
		return field == 2 ? PB_VALUE : PB_NONE;
	case PB_VALUE:
		return field == 5 ? PB_STRUCT : field == 6 ? PB_LIST : PB_NONE;
	case PB_LIST:
		return field == 1 ? PB_VALUE : PB_NONE;
	default:
		return PB_NONE;
	}
}

static int
pb_varint(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
	int shift;

	*v = 0;
	for (shift = 0; shift < 64 && *p < end; shift += 7) {
		*v |= (uint64_t)(**p & 0x7f) << shift;
		if ((*(*p)++ & 0x80) == 0)
			return 0;
	}
	return WICK_ERR_INVALID;
}

static int
pb_scan(const uint8_t *p, const uint8_t *end, enum pb_kind k, int depth,
    int max)
{
	uint64_t	 key, v;
	enum pb_kind	 c;
	int		 r;

	if (depth > max)
		return WICK_ERR_LIMIT;
	while (p < end) {
		if (pb_varint(&p, end, &key) != 0 || key >> 3 == 0)
			return WICK_ERR_INVALID;
		switch (key & 7) {
		case 0:
			if (pb_varint(&p, end, &v) != 0)
				return WICK_ERR_INVALID;
			break;
		case 1:
			if (end - p < 8)
				return WICK_ERR_INVALID;
			p += 8;
			break;
		case 5:
			if (end - p < 4)
				return WICK_ERR_INVALID;
			p += 4;
			break;
		case 2:
			if (pb_varint(&p, end, &v) != 0 ||
			    v > (uint64_t)(end - p))
				return WICK_ERR_INVALID;
			if ((c = pb_child(k, key >> 3)) != PB_NONE &&
			    (r = pb_scan(p, p + v, c, depth + 1, max)) != 0)
				return r;
			p += v;
			break;
		default:
			return WICK_ERR_INVALID;	/* groups: not ours */
		}
	}
	return 0;
}

int
cli_claims_depth_check(const uint8_t *p, size_t n, int max_depth)
{
	if (n == 0)
		return 0;
	return pb_scan(p, p + n, PB_RESPONSE, 1, max_depth);
}

/* ---- token payloads ------------------------------------------------------ */

int
cli_jwt_payload(const char *token, json_t **claims, const char **why)
{
	const char	*d1, *d2;
	uint8_t		*raw = NULL;
	size_t		 len, rawlen;
	json_error_t	 jerr;
	json_t		*j;
	int		 r;

	*claims = NULL;
	*why = NULL;
	len = strnlen(token, JOSE_MAX_TOKEN_SIZE + 1);
	if (len > JOSE_MAX_TOKEN_SIZE) {
		*why = "token too large";
		return WICK_ERR_LIMIT;
	}
	if ((d1 = strchr(token, '.')) == NULL ||
	    (d2 = strchr(d1 + 1, '.')) == NULL ||
	    strchr(d2 + 1, '.') != NULL) {
		*why = "not a compact JWS (three dot-separated parts)";
		return WICK_ERR_INVALID;
	}
	if (d1 == token || d2 == d1 + 1 || d2[1] == '\0' ||
	    !b64url_ok(token, (size_t)(d1 - token)) ||
	    !b64url_ok(d1 + 1, (size_t)(d2 - d1 - 1)) ||
	    !b64url_ok(d2 + 1, strlen(d2 + 1))) {
		*why = "a token part is not base64url";
		return WICK_ERR_INVALID;
	}
	if ((r = b64url_decode(d1 + 1, (size_t)(d2 - d1 - 1), 0, &raw,
	    &rawlen)) != 0) {
		*why = r == WICK_ERR_ALLOC ? "out of memory" :
		    "the token payload is not base64url";
		return r;
	}
	j = json_loadb((const char *)raw, rawlen, JSON_REJECT_DUPLICATES,
	    &jerr);
	free(raw);
	if (j == NULL || !json_is_object(j)) {
		json_decref(j);
		*why = "the token payload is not a JSON object";
		return WICK_ERR_INVALID;
	}
	*claims = j;
	return 0;
}

/* ---- files --------------------------------------------------------------- */

int
cli_path_join(const char *dir, const char *name, char *out, size_t outlen)
{
	size_t	n = strlen(dir);
	int	w;

	w = snprintf(out, outlen, "%s%s%s", dir,
	    n > 0 && dir[n - 1] == '/' ? "" : "/", name);
	if (w < 0 || (size_t)w >= outlen)
		return WICK_ERR_LIMIT;
	return 0;
}

int
cli_write_file(const char *path, const void *data, size_t len, mode_t mode,
    char *err, size_t errlen)
{
	char		 tmp[PATH_MAX];
	const char	*slash, *p = data;
	size_t		 off = 0;
	ssize_t		 w;
	int		 fd, r, saved;

	slash = strrchr(path, '/');
	if (slash == NULL)
		r = snprintf(tmp, sizeof(tmp), ".%s.XXXXXX", path);
	else
		r = snprintf(tmp, sizeof(tmp), "%.*s/.%s.XXXXXX",
		    (int)(slash - path), path, slash + 1);
	if (r < 0 || (size_t)r >= sizeof(tmp)) {
		snprintf(err, errlen, "cannot write %s: path too long", path);
		return WICK_ERR_LIMIT;
	}
	/* Created with mode 0600; widened below for public files only. */
	if ((fd = mkostemp(tmp, O_CLOEXEC)) == -1) {
		snprintf(err, errlen, "cannot write %s: %s", path,
		    strerror(errno));
		return WICK_ERR_IO;
	}
	if (fchmod(fd, mode) != 0)
		goto fail;
	while (off < len) {
		w = write(fd, p + off, len - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			goto fail;
		off += (size_t)w;
	}
	if (fsync(fd) != 0)
		goto fail;
	if (close(fd) != 0) {
		fd = -1;
		goto fail;
	}
	fd = -1;
	if (rename(tmp, path) != 0)
		goto fail;
	return 0;
fail:
	saved = errno;
	if (fd != -1)
		(void)close(fd);
	(void)unlink(tmp);
	snprintf(err, errlen, "cannot write %s: %s", path, strerror(saved));
	return WICK_ERR_IO;
}
