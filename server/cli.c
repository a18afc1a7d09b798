/*
 * cli.c: the admin commands' driver: dispatch, Go-style flags, the value
 * formats shared by every command, and synchronous unary calls to the
 * server's admin socket on a private libuv loop.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "cli_int.h"
#include "conf.h"
#include "flag.h"
#include "rpc.h"
#include "secpath.h"
#include "selector.h"
#include "xmalloc.h"

/* ---- flags --------------------------------------------------------------- */

static int
flag_index(const struct cli_args *a, const char *name, size_t len)
{
	size_t i;

	for (i = 0; i < a->ndefs; i++)
		if (strlen(a->defs[i].name) == len &&
		    strncmp(a->defs[i].name, name, len) == 0)
			return (int)i;
	return -1;
}

int
cli_args_parse(struct cli_args *a, const char *cmd,
    const struct cli_flag *defs, size_t ndefs, int argc, char **argv,
    char *err, size_t errlen)
{
	const struct cli_flag	*d;
	struct cli_val		*v;
	const char		*arg, *name, *eq, *value;
	size_t			 namelen;
	int			 i, k;

	memset(a, 0, sizeof(*a));
	a->cmd = cmd;
	a->defs = defs;
	a->ndefs = ndefs;
	if (ndefs > CLI_MAX_FLAGS) {
		snprintf(err, errlen, "%s: too many flags", cmd);
		return WICK_ERR_INTERNAL;
	}
	for (i = 0; i < argc; i++) {
		arg = argv[i];
		if (arg[0] != '-' || arg[1] == '\0') {
			snprintf(err, errlen, "unexpected argument \"%s\"",
			    arg);
			return WICK_ERR_INVALID;
		}
		name = arg + 1;
		if (*name == '-') {
			name++;
			if (*name == '\0') {	/* "--": end of the flags */
				if (i + 1 < argc) {
					snprintf(err, errlen, "unexpected "
					    "argument \"%s\"", argv[i + 1]);
					return WICK_ERR_INVALID;
				}
				break;
			}
		}
		if (*name == '-' || *name == '=') {
			snprintf(err, errlen, "bad flag syntax: %s", arg);
			return WICK_ERR_INVALID;
		}
		eq = strchr(name, '=');
		namelen = eq != NULL ? (size_t)(eq - name) : strlen(name);
		value = eq != NULL ? eq + 1 : NULL;
		if ((k = flag_index(a, name, namelen)) < 0) {
			if ((namelen == 1 && *name == 'h') || (namelen == 4 &&
			    strncmp(name, "help", 4) == 0))
				return CLI_HELP;
			snprintf(err, errlen, "flag provided but not defined: "
			    "-%.*s", (int)namelen, name);
			return WICK_ERR_INVALID;
		}
		d = &defs[k];
		v = &a->v[k];
		if (d->type == CLI_FLAG_BOOL) {
			if (value == NULL)
				v->on = 1;
			else if (flag_parse_bool(value, &v->on) != 0) {
				snprintf(err, errlen, "invalid boolean value "
				    "\"%s\" for -%s: parse error", value,
				    d->name);
				return WICK_ERR_INVALID;
			}
			v->set = 1;
			continue;
		}
		if (value == NULL) {
			if (i + 1 >= argc) {
				snprintf(err, errlen, "flag needs an argument: "
				    "-%s", d->name);
				return WICK_ERR_INVALID;
			}
			value = argv[++i];
		}
		v->set = 1;
		if (d->type == CLI_FLAG_STRING) {
			v->str = value;
			continue;
		}
		if (v->n == CLI_MAX_LIST) {
			snprintf(err, errlen, "too many -%s values (at most "
			    "%d)", d->name, CLI_MAX_LIST);
			return WICK_ERR_LIMIT;
		}
		v->list = xreallocarray(v->list, v->n + 1, sizeof(*v->list));
		v->list[v->n++] = value;
	}
	return 0;
}

void
cli_args_cleanup(struct cli_args *a)
{
	size_t i;

	for (i = 0; i < CLI_MAX_FLAGS; i++) {
		free(a->v[i].list);
		a->v[i].list = NULL;
		a->v[i].n = 0;
	}
}

void
cli_usage(FILE *f, const struct cli_args *a)
{
	const struct cli_flag	*order[CLI_MAX_FLAGS], *t;
	size_t			 i, j, n = 0;

	for (i = 0; i < a->ndefs && i < CLI_MAX_FLAGS; i++) {
		t = &a->defs[i];
		for (j = n; j > 0 && strcmp(order[j - 1]->name, t->name) > 0;
		    j--)
			order[j] = order[j - 1];
		order[j] = t;
		n++;
	}
	fprintf(f, "Usage of %s:\n", a->cmd);
	for (i = 0; i < n; i++) {
		t = order[i];
		fprintf(f, "  -%s", t->name);
		if (t->type != CLI_FLAG_BOOL && t->arg != NULL)
			fprintf(f, " %s", t->arg);
		fprintf(f, "\n    \t%s", t->help);
		if (t->def != NULL) {
			if (t->arg != NULL && strcmp(t->arg, "string") == 0)
				fprintf(f, " (default \"%s\")", t->def);
			else
				fprintf(f, " (default %s)", t->def);
		}
		fputc('\n', f);
	}
}

static const struct cli_val *
arg_val(const struct cli_args *a, const char *name)
{
	int k = flag_index(a, name, strlen(name));

	return k < 0 ? NULL : &a->v[k];
}

const char *
cli_arg_str(const struct cli_args *a, const char *name)
{
	const struct cli_val *v = arg_val(a, name);

	return v != NULL && v->set ? v->str : NULL;
}

int
cli_arg_bool(const struct cli_args *a, const char *name)
{
	const struct cli_val *v = arg_val(a, name);

	return v != NULL && v->on;
}

int
cli_arg_given(const struct cli_args *a, const char *name)
{
	const struct cli_val *v = arg_val(a, name);

	return v != NULL && v->set;
}

const char *const *
cli_arg_list(const struct cli_args *a, const char *name, size_t *n)
{
	const struct cli_val *v = arg_val(a, name);

	*n = v != NULL ? v->n : 0;
	return v != NULL ? v->list : NULL;
}

/* ---- values -------------------------------------------------------------- */

/* A plain decimal integer, optionally signed; 0 when s is not one. */
static int
decimal(const char *s, int64_t *out)
{
	const char	*p = s;
	long long	 v;
	char		*end;

	if (*p == '-' || *p == '+')
		p++;
	if (!isdigit((unsigned char)*p))
		return WICK_ERR_INVALID;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (*end != '\0')
		return WICK_ERR_INVALID;
	if (errno == ERANGE)
		return WICK_ERR_LIMIT;
	*out = v;
	return 0;
}

int
cli_parse_ttl(const char *flag, const char *s, int32_t *out, char *err,
    size_t errlen)
{
	const char	*why = NULL;
	int64_t		 v;
	int		 r;

	if ((r = decimal(s, &v)) == WICK_ERR_LIMIT)
		why = "value out of range";
	else if (r != 0 && conf_parse_duration(s, &v, &why) != 0) {
		if (why == NULL)
			why = "not a number of seconds or a duration";
	} else if (v < 0)
		why = "must not be negative";
	else if (v > INT32_MAX)
		why = "value out of range";
	if (why != NULL) {
		snprintf(err, errlen, "invalid value \"%s\" for -%s: %s", s,
		    flag, why);
		return WICK_ERR_INVALID;
	}
	*out = (int32_t)v;
	return 0;
}

int
cli_parse_int64(const char *flag, const char *s, int64_t min, int64_t *out,
    char *err, size_t errlen)
{
	int64_t	v;
	int	r;

	if ((r = decimal(s, &v)) != 0 || v < min) {
		snprintf(err, errlen, "invalid value \"%s\" for -%s: %s", s,
		    flag, r == WICK_ERR_LIMIT ? "value out of range" : r != 0 ?
		    "not an integer" : min == 0 ? "must not be negative" :
		    "too small");
		return WICK_ERR_INVALID;
	}
	*out = v;
	return 0;
}

/* n decimal digits at *pp. */
static int
digits(const char **pp, int n, int *out)
{
	const char	*p = *pp;
	int		 v = 0, i;

	for (i = 0; i < n; i++) {
		if (!isdigit((unsigned char)p[i]))
			return WICK_ERR_INVALID;
		v = v * 10 + (p[i] - '0');
	}
	*pp = p + n;
	*out = v;
	return 0;
}

/* "+hh:mm", "+hhmm", "Z" into seconds east of UTC. */
static int
zone_offset(const char **pp, int *off)
{
	const char	*p = *pp;
	int		 sign, hh, mm;

	if (*p == 'Z' || *p == 'z') {
		*off = 0;
		*pp = p + 1;
		return 0;
	}
	if (*p != '+' && *p != '-')
		return WICK_ERR_INVALID;
	sign = *p++ == '-' ? -1 : 1;
	if (digits(&p, 2, &hh) != 0)
		return WICK_ERR_INVALID;
	if (*p == ':')
		p++;
	if (digits(&p, 2, &mm) != 0 || hh > 23 || mm > 59)
		return WICK_ERR_INVALID;
	*off = sign * (hh * 3600 + mm * 60);
	*pp = p;
	return 0;
}

int
cli_parse_time(const char *s, int64_t *out)
{
	const char	*p = s;
	struct tm	 tm;
	time_t		 t;
	int		 y, mo, d, h, mi, sec, off;

	if (decimal(s, out) == 0)
		return *out >= 0 ? 0 : WICK_ERR_INVALID;
	if (digits(&p, 4, &y) != 0 || *p++ != '-' ||
	    digits(&p, 2, &mo) != 0 || *p++ != '-' ||
	    digits(&p, 2, &d) != 0 || (*p != 'T' && *p != 't' && *p != ' '))
		return WICK_ERR_INVALID;
	p++;
	if (digits(&p, 2, &h) != 0 || *p++ != ':' ||
	    digits(&p, 2, &mi) != 0 || *p++ != ':' ||
	    digits(&p, 2, &sec) != 0)
		return WICK_ERR_INVALID;
	if (*p == '.' || *p == ',') {	/* fraction of a second: dropped */
		p++;
		if (!isdigit((unsigned char)*p))
			return WICK_ERR_INVALID;
		while (isdigit((unsigned char)*p))
			p++;
	}
	if (*p == ' ')			/* SPIRE's "... -0700 -07" */
		p++;
	if (zone_offset(&p, &off) != 0)
		return WICK_ERR_INVALID;
	if (*p == ' ') {		/* a zone name: ignored */
		p++;
		if (*p == '\0')
			return WICK_ERR_INVALID;
		for (; *p != '\0'; p++)
			if (!isalnum((unsigned char)*p) && *p != '+' &&
			    *p != '-')
				return WICK_ERR_INVALID;
	}
	if (*p != '\0' || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 ||
	    mi > 59 || sec > 59)
		return WICK_ERR_INVALID;
	memset(&tm, 0, sizeof(tm));
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = sec;
	/* timegm() rolls "02-31" over into March: refuse what it moved. */
	if ((t = timegm(&tm)) == (time_t)-1 || gmtime_r(&t, &tm) == NULL ||
	    tm.tm_mday != d || tm.tm_mon != mo - 1)
		return WICK_ERR_INVALID;
	*out = (int64_t)t - off;
	return *out >= 0 ? 0 : WICK_ERR_INVALID;
}

void
cli_format_time(int64_t v, char *out, size_t outlen)
{
	struct tm	tm;
	time_t		t = (time_t)v;

	if (gmtime_r(&t, &tm) == NULL || tm.tm_year + 1900 > 9999 ||
	    tm.tm_year + 1900 < 0 || strftime(out, outlen,
	    "%Y-%m-%d %H:%M:%S +0000 UTC", &tm) == 0)
		snprintf(out, outlen, "%lld", (long long)v);
}

int
cli_parse_match(const char *s, int *out)
{
	if (strcmp(s, "exact") == 0)
		*out = WICK__ADMIN__MATCH_BEHAVIOR__MATCH_EXACT;
	else if (strcmp(s, "any") == 0)
		*out = WICK__ADMIN__MATCH_BEHAVIOR__MATCH_ANY;
	else if (strcmp(s, "superset") == 0)
		*out = WICK__ADMIN__MATCH_BEHAVIOR__MATCH_SUPERSET;
	else if (strcmp(s, "subset") == 0)
		*out = WICK__ADMIN__MATCH_BEHAVIOR__MATCH_SUBSET;
	else
		return WICK_ERR_INVALID;
	return 0;
}

const char *
cli_code_name(int code, char *buf, size_t buflen)
{
	static const char *const names[] = {
		"OK", "Canceled", "Unknown", "InvalidArgument",
		"DeadlineExceeded", "NotFound", "AlreadyExists",
		"PermissionDenied", "ResourceExhausted", "FailedPrecondition",
		"Aborted", "OutOfRange", "Unimplemented", "Internal",
		"Unavailable", "DataLoss", "Unauthenticated",
	};

	if (code >= 0 && (size_t)code < sizeof(names) / sizeof(names[0]))
		return names[code];
	snprintf(buf, buflen, "Code(%d)", code);
	return buf;
}

void
cli_print_quoted(FILE *f, const char *s)
{
	unsigned char c;

	fputc('"', f);
	for (; *s != '\0'; s++) {
		c = (unsigned char)*s;
		if (c == '"' || c == '\\')
			fprintf(f, "\\%c", c);
		else if (c == '\n')
			fputs("\\n", f);
		else if (c == '\r')
			fputs("\\r", f);
		else if (c == '\t')
			fputs("\\t", f);
		else if (c < 0x20 || c == 0x7f)
			fprintf(f, "\\x%02x", c);
		else
			fputc(c, f);
	}
	fputc('"', f);
}

int
cli_read_input(const char *path, size_t max, char **out, size_t *lenp,
    char *err, size_t errlen)
{
	const char	*name = path == NULL || strcmp(path, "-") == 0 ?
			    "standard input" : path;
	char		*b = NULL;
	size_t		 len = 0, cap = 0;
	ssize_t		 n;
	int		 fd, r = 0;

	*out = NULL;
	*lenp = 0;
	if (path == NULL || strcmp(path, "-") == 0)
		fd = STDIN_FILENO;
	else if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
		snprintf(err, errlen, "cannot open %s: %s", path,
		    strerror(errno));
		return WICK_ERR_IO;
	}
	for (;;) {
		if (len == cap) {
			cap = cap == 0 ? 64 * 1024 : cap * 2;
			if (cap > max + 1)
				cap = max + 1;
			b = xreallocarray(b, cap + 1, 1);
		}
		if ((n = read(fd, b + len, cap - len)) < 0) {
			if (errno == EINTR)
				continue;
			snprintf(err, errlen, "cannot read %s: %s", name,
			    strerror(errno));
			r = WICK_ERR_IO;
			break;
		}
		if (n == 0)
			break;
		len += (size_t)n;
		if (len > max) {
			snprintf(err, errlen, "%s is larger than %zu bytes",
			    name, max);
			r = WICK_ERR_LIMIT;
			break;
		}
	}
	if (fd != STDIN_FILENO)
		close(fd);
	if (r != 0) {
		free(b);
		return r;
	}
	b[len] = '\0';
	*out = b;
	*lenp = len;
	return 0;
}

void
cli_id_split(const char *id, const char **td, size_t *tdlen,
    const char **path)
{
	const char *p = id, *slash;

	if (strncmp(p, "spiffe://", 9) == 0)
		p += 9;
	slash = strchr(p, '/');
	*td = p;
	*tdlen = slash != NULL ? (size_t)(slash - p) : strlen(p);
	*path = slash != NULL ? slash : "";
}

/* ---- output helpers ------------------------------------------------------ */

int
cli_fail(struct cli_ctx *ctx, const char *fmt, ...)
{
	va_list ap;

	fflush(ctx->out);
	fputs("Error: ", ctx->err);
	va_start(ap, fmt);
	vfprintf(ctx->err, fmt, ap);
	va_end(ap);
	fputc('\n', ctx->err);
	return 1;
}

int
cli_print_json(struct cli_ctx *ctx, json_t *j)
{
	int r;

	if (j == NULL)
		return cli_fail(ctx, "out of memory");
	/* A write error shows on ctx->out; the caller reports it. */
	r = json_dumpf(j, ctx->out, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(j);
	fputc('\n', ctx->out);
	return r == 0 ? 0 : 1;
}

json_t *
cli_json_str(const char *s)
{
	json_t	*j;
	char	*c;
	size_t	 i;

	if (s == NULL)
		s = "";
	if ((j = json_string(s)) != NULL)
		return j;
	c = xstrdup(s);
	for (i = 0; c[i] != '\0'; i++)
		if ((unsigned char)c[i] >= 0x80)
			c[i] = '?';
	j = json_string(c);
	free(c);
	return j;
}

json_t *
cli_selectors_json(Wick__Types__Selector *const *v, size_t n)
{
	json_t	*a = json_array(), *o;
	size_t	 i;

	for (i = 0; i < n; i++) {
		o = json_object();
		json_object_set_new(o, "type", cli_json_str(v[i]->type));
		json_object_set_new(o, "value", cli_json_str(v[i]->value));
		json_array_append_new(a, o);
	}
	return a;
}

/* The one selector of a set as a heap message. */
static Wick__Types__Selector *
selector_out(const struct selector_set *set)
{
	Wick__Types__Selector *s;

	s = xmalloc(sizeof(*s));
	wick__types__selector__init(s);
	s->type = xstrdup(set->sel[0].type);
	s->value = xstrdup(set->sel[0].value);
	return s;
}

int
cli_selector_parse(const char *str, Wick__Types__Selector **out,
    const char **why)
{
	struct selector_set	set;
	int			r;

	*out = NULL;
	selector_set_init(&set);
	if ((r = selector_set_add_str(&set, str, why)) == 0)
		*out = selector_out(&set);
	selector_set_cleanup(&set);
	return r;
}

int
cli_selector_make(const char *type, const char *value,
    Wick__Types__Selector **out, const char **why)
{
	struct selector_set	set;
	int			r;

	*out = NULL;
	selector_set_init(&set);
	if ((r = selector_set_add(&set, type, value, why)) == 0)
		*out = selector_out(&set);
	selector_set_cleanup(&set);
	return r;
}

/* ---- calls --------------------------------------------------------------- */

struct cli_call {
	int		 done;
	int		 status;
	char		*msg;
	uint8_t		*data;
	size_t		 len;
	size_t		 nmsg;
};

static void
call_message_cb(struct rpc_ccall *c, const uint8_t *p, size_t n, void *arg)
{
	struct cli_call *cc = arg;

	if (cc->nmsg++ > 0)
		return;
	cc->data = xmalloc(n + 1);
	memcpy(cc->data, p, n);
	cc->len = n;
}

static void
call_status_cb(struct rpc_ccall *c, int status, const char *msg, void *arg)
{
	struct cli_call *cc = arg;

	cc->status = status;
	cc->msg = xstrdup(msg != NULL ? msg : "");
	cc->done = 1;
}

static const struct rpc_client_cbs call_cbs = {
	NULL, call_message_cb, call_status_cb,
};

/* Texts our client gives when the socket cannot be reached. */
static int
transport_error(const char *msg)
{
	static const int errs[] = {
		UV_ENOENT, UV_ECONNREFUSED, UV_EACCES, UV_EPERM, UV_ENOTSOCK,
		UV_ENOTDIR, UV_ENAMETOOLONG, UV_ECONNRESET, UV_EPIPE,
		UV_EAGAIN, UV_ETIMEDOUT, UV_ELOOP, UV_EPROTOTYPE,
	};
	size_t i;

	for (i = 0; i < sizeof(errs) / sizeof(errs[0]); i++)
		if (strcmp(msg, uv_strerror(errs[i])) == 0)
			return 1;
	return strcmp(msg, "connection closed by the server") == 0 ||
	    strcmp(msg, "connection failed") == 0 ||
	    strcmp(msg, "connection lost while writing") == 0 ||
	    strcmp(msg, "connection failed while sending") == 0;
}

static void
conn_error(struct cli_ctx *ctx, const char *why)
{
	ctx->status = RPC_UNAVAILABLE;
	snprintf(ctx->errmsg, sizeof(ctx->errmsg), "connection error: cannot "
	    "reach wick-server at %s: %s (is the server running? -socketPath "
	    "names its admin socket)", ctx->socket, why);
}

/* Not the server's socket, maybe a fake one: why names its owner. */
static void
conn_refused(struct cli_ctx *ctx, const char *why)
{
	ctx->status = RPC_UNAVAILABLE;
	/* Both bounded: the message is cut, not the build. */
	snprintf(ctx->errmsg, sizeof(ctx->errmsg), "connection error: "
	    "refusing the socket %.300s: %.600s", ctx->socket, why);
}

static int
cli_connect(struct cli_ctx *ctx)
{
	struct sockaddr_un	 sa;
	char			 cwd[PATH_MAX], target[PATH_MAX + 16];
	char			 why[SECPATH_MAX_WHY];
	int			 r;

	if (ctx->ch != NULL)
		return 0;
	if (*ctx->socket == '\0') {
		conn_error(ctx, "empty socket path");
		return WICK_ERR_INVALID;
	}
	if (*ctx->socket == '/')
		r = snprintf(target, sizeof(target), "unix:%s", ctx->socket);
	else if (getcwd(cwd, sizeof(cwd)) == NULL) {
		conn_error(ctx, strerror(errno));
		return WICK_ERR_IO;
	} else
		r = snprintf(target, sizeof(target), "unix:%s/%s", cwd,
		    ctx->socket);
	if (r < 0 || (size_t)r >= sizeof(target) ||
	    strlen(target + 5) >= sizeof(sa.sun_path)) {
		conn_error(ctx, "socket path too long");
		return WICK_ERR_LIMIT;
	}
	/*
	 * Another user's socket could be a fake server: refuse it.  A missing
	 * one is not dialled (it could appear in between).
	 */
	if ((r = secpath_check_socket(target + 5, why, sizeof(why))) != 0) {
		if (r == WICK_ERR_NOT_FOUND)
			conn_error(ctx, uv_strerror(UV_ENOENT));
		else
			conn_refused(ctx, why);
		return r;
	}
	if (uv_loop_init(&ctx->loop) != 0) {
		conn_error(ctx, "cannot start an event loop");
		return WICK_ERR_INTERNAL;
	}
	ctx->loop_open = 1;
	if ((r = rpc_channel_new(&ctx->loop, target, NULL, CLI_MAX_RECV,
	    &ctx->ch)) != 0) {
		conn_error(ctx, wick_strerror(r));
		return r;
	}
	return 0;
}

void
cli_ctx_close(struct cli_ctx *ctx)
{
	if (ctx->ch != NULL) {
		rpc_channel_close(ctx->ch, NULL, NULL);
		ctx->ch = NULL;
	}
	if (ctx->loop_open) {
		(void)uv_run(&ctx->loop, UV_RUN_DEFAULT);
		if (uv_loop_close(&ctx->loop) != 0)
			fprintf(ctx->err, "wick-server: event loop left "
			    "handles open\n");
		ctx->loop_open = 0;
	}
}

int
cli_rpc_raw(struct cli_ctx *ctx, const char *path, const uint8_t *req,
    size_t reqlen, uint8_t **resp, size_t *resplen)
{
	struct cli_call		 cc;
	struct rpc_ccall	*call;
	char			 nb[16];
	int			 r;

	*resp = NULL;
	*resplen = 0;
	ctx->status = 0;
	ctx->errmsg[0] = '\0';
	if ((r = cli_connect(ctx)) != 0)
		return r;
	memset(&cc, 0, sizeof(cc));
	if ((r = rpc_ccall_start(ctx->ch, path, NULL, 0, CLI_CALL_TIMEOUT_MS,
	    &call_cbs, &cc, &call)) != 0) {
		conn_error(ctx, wick_strerror(r));
		return WICK_ERR_UNAVAILABLE;
	}
	if (rpc_ccall_send(call, req, reqlen) != 0 ||
	    rpc_ccall_half_close(call) != 0)
		rpc_ccall_cancel(call);
	while (!cc.done)
		if (uv_run(&ctx->loop, UV_RUN_ONCE) == 0 && !cc.done)
			break;
	if (!cc.done) {
		/* Cannot happen: a call always ends with on_status. */
		snprintf(ctx->errmsg, sizeof(ctx->errmsg), "the call to %s "
		    "did not finish", path);
		ctx->status = RPC_INTERNAL;
		r = WICK_ERR_INTERNAL;
	} else if (cc.status == RPC_OK && cc.nmsg == 1) {
		*resp = cc.data;
		*resplen = cc.len;
		cc.data = NULL;
		r = 0;
	} else if (cc.status == RPC_OK) {
		snprintf(ctx->errmsg, sizeof(ctx->errmsg), "rpc error: code = "
		    "Internal desc = the server sent %zu replies to a unary "
		    "call", cc.nmsg);
		ctx->status = RPC_INTERNAL;
		r = WICK_ERR_PROTOCOL;
	} else if (cc.status == RPC_UNAVAILABLE && cc.nmsg == 0 &&
	    transport_error(cc.msg)) {
		conn_error(ctx, cc.msg);
		r = WICK_ERR_UNAVAILABLE;
	} else {
		ctx->status = cc.status;
		snprintf(ctx->errmsg, sizeof(ctx->errmsg), "rpc error: code = "
		    "%s desc = %s", cli_code_name(cc.status, nb, sizeof(nb)),
		    cc.msg);
		r = WICK_ERR_UNAVAILABLE;
	}
	if (cc.data != NULL)
		freezero(cc.data, cc.len + 1);
	free(cc.msg);
	return r;
}

int
cli_rpc(struct cli_ctx *ctx, const char *path, const ProtobufCMessage *req,
    const ProtobufCMessageDescriptor *rdesc, ProtobufCMessage **resp)
{
	uint8_t	*p, *rp = NULL;
	size_t	 n, rn = 0;
	int	 r;

	*resp = NULL;
	n = protobuf_c_message_get_packed_size(req);
	p = xmalloc(n + 1);
	protobuf_c_message_pack(req, p);
	r = cli_rpc_raw(ctx, path, p, n, &rp, &rn);
	freezero(p, n + 1);
	if (r != 0)
		return r;
	if ((*resp = protobuf_c_message_unpack(rdesc, NULL, rn, rp)) == NULL) {
		ctx->status = RPC_INTERNAL;
		snprintf(ctx->errmsg, sizeof(ctx->errmsg), "rpc error: code = "
		    "Internal desc = cannot decode the server's %s reply",
		    rdesc->short_name);
		r = WICK_ERR_PROTOCOL;
	}
	freezero(rp, rn + 1);
	return r;
}

/* ---- dispatch ------------------------------------------------------------ */

static const struct {
	const struct cli_cmd	*cmds;
	const size_t		*n;
} cmd_tables[] = {
	{ cli_agent_cmds, &cli_agent_ncmds },
	{ cli_audit_cmds, &cli_audit_ncmds },
	{ cli_bundle_cmds, &cli_bundle_ncmds },
	{ cli_entry_cmds, &cli_entry_ncmds },
};

#define NTABLES	(sizeof(cmd_tables) / sizeof(cmd_tables[0]))

int
cli_is_verb(const char *name)
{
	size_t t, i;

	for (t = 0; t < NTABLES; t++)
		for (i = 0; i < *cmd_tables[t].n; i++)
			if (strcmp(cmd_tables[t].cmds[i].verb, name) == 0)
				return 1;
	return 0;
}

static void
verb_usage(FILE *f, const char *verb)
{
	const struct cli_cmd	*c;
	size_t			 t, i;

	fprintf(f, "Usage: wick-server %s <subcommand> [flags]\n\n"
	    "Subcommands:\n", verb);
	for (t = 0; t < NTABLES; t++)
		for (i = 0; i < *cmd_tables[t].n; i++) {
			c = &cmd_tables[t].cmds[i];
			if (strcmp(c->verb, verb) == 0 && c->sub != NULL)
				fprintf(f, "    %-10s %s\n", c->sub,
				    c->synopsis);
		}
	fprintf(f, "\n'wick-server %s <subcommand> -h' lists a subcommand's "
	    "flags.\n", verb);
}

static const struct cli_cmd *
find_cmd(const char *verb, const char *sub)
{
	const struct cli_cmd	*c;
	size_t			 t, i;

	for (t = 0; t < NTABLES; t++)
		for (i = 0; i < *cmd_tables[t].n; i++) {
			c = &cmd_tables[t].cmds[i];
			if (strcmp(c->verb, verb) != 0)
				continue;
			if (c->sub == NULL || (sub != NULL &&
			    strcmp(c->sub, sub) == 0))
				return c;
		}
	return NULL;
}

static int
is_help(const char *s)
{
	return strcmp(s, "-h") == 0 || strcmp(s, "-help") == 0 ||
	    strcmp(s, "--help") == 0 || strcmp(s, "help") == 0;
}

static int
run_cmd(FILE *out, FILE *err, const struct cli_cmd *cmd, int argc,
    char **argv)
{
	struct cli_args	 a;
	struct cli_ctx	 ctx;
	const char	*output;
	char		 name[64], msg[CLI_ERRLEN];
	int		 r, rc;

	if (cmd->sub != NULL)
		snprintf(name, sizeof(name), "%s %s", cmd->verb, cmd->sub);
	else
		snprintf(name, sizeof(name), "%s", cmd->verb);
	r = cli_args_parse(&a, name, cmd->flags, cmd->nflags, argc, argv, msg,
	    sizeof(msg));
	if (r == CLI_HELP) {
		fprintf(out, "%s\n\n", cmd->synopsis);
		cli_usage(out, &a);
		rc = 0;
		goto done;
	}
	if (r == 0 && (output = cli_arg_str(&a, "output")) != NULL &&
	    strcasecmp(output, "json") != 0 &&
	    strcasecmp(output, "pretty") != 0) {
		snprintf(msg, sizeof(msg), "invalid value \"%s\" for flag "
		    "-output: unknown format (pretty, json)", output);
		r = WICK_ERR_INVALID;
	}
	if (r != 0) {
		fprintf(err, "%s\n", msg);
		cli_usage(err, &a);
		rc = 1;
		goto done;
	}
	memset(&ctx, 0, sizeof(ctx));
	ctx.out = out;
	ctx.err = err;
	ctx.socket = cli_arg_str(&a, "socketPath");
	if (ctx.socket == NULL)
		ctx.socket = CLI_DEFAULT_SOCKET;
	output = cli_arg_str(&a, "output");
	ctx.json = output != NULL && strcasecmp(output, "json") == 0;
	rc = cmd->run(&ctx, &a);
	cli_ctx_close(&ctx);
	if (fflush(out) != 0 || ferror(out)) {
		/* A closed pipe ("| head") ends us quietly, as SIGPIPE would. */
		if (errno != EPIPE)
			fprintf(err, "Error: cannot write the output: %s\n",
			    strerror(errno));
		rc = 1;
	}
done:
	cli_args_cleanup(&a);
	return rc;
}

int
cli_run(FILE *out, FILE *err, int argc, char **argv)
{
	const struct cli_cmd	*cmd;
	const char		*verb;

	if (argc < 1 || !cli_is_verb(argv[0])) {
		fprintf(err, "unknown command \"%s\"; the admin commands "
		    "are: token, entry, agent, bundle, healthcheck, audit, "
		    "backup\n",
		    argc < 1 ? "" : argv[0]);
		return 1;
	}
	verb = argv[0];
	if ((cmd = find_cmd(verb, NULL)) != NULL && cmd->sub == NULL)
		return run_cmd(out, err, cmd, argc - 1, argv + 1);
	if (argc < 2 || is_help(argv[1])) {
		verb_usage(argc < 2 ? err : out, verb);
		return argc < 2 ? 1 : 0;
	}
	if ((cmd = find_cmd(verb, argv[1])) == NULL) {
		fprintf(err, "unknown subcommand \"%s %s\"\n\n", verb,
		    argv[1]);
		verb_usage(err, verb);
		return 1;
	}
	return run_cmd(out, err, cmd, argc - 2, argv + 2);
}

int
cli_main(int argc, char **argv)
{
	/* A peer that goes away must not kill us while we write to it. */
	signal(SIGPIPE, SIG_IGN);
	return cli_run(stdout, stderr, argc, argv);
}
