/*
 * attestor_docker.c: the docker workload attestor: container IDs from
 * /proc, the engine's API over libcurl's multi interface on the agent's
 * libuv loop, and a cache of the answers.  attestor_docker.h has the
 * rules.
 */
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <curl/curl.h>

#include "attestor_docker.h"
#include "dynlib.h"
#include "log.h"
#include "xmalloc.h"

#define WHY_LEN		256
#define VERSION_LEN	15	/* "1.51"; longer is not a version */

/*
 * libcurl, loaded by the first docker_new() rather than linked: with its
 * TLS, Kerberos, LDAP and SSH libraries it would add megabytes to every
 * agent's resident memory, and only an agent with this attestor speaks
 * HTTP.  <curl/curl.h> still gives the types and constants; the calls go
 * through this table, each pointer of the type curl declares.  Loaded
 * once and never unloaded: the process keeps it until it exits.
 */
#define CURL_LIB	"libcurl.so.4"

static struct curl_fns {
	__typeof__(curl_global_init)		*global_init;
	__typeof__(curl_global_cleanup)		*global_cleanup;
	__typeof__(curl_easy_init)		*easy_init;
	__typeof__(curl_easy_setopt)		*easy_setopt;
	__typeof__(curl_easy_getinfo)		*easy_getinfo;
	__typeof__(curl_easy_cleanup)		*easy_cleanup;
	__typeof__(curl_easy_strerror)		*easy_strerror;
	__typeof__(curl_multi_init)		*multi_init;
	__typeof__(curl_multi_setopt)		*multi_setopt;
	__typeof__(curl_multi_add_handle)	*multi_add_handle;
	__typeof__(curl_multi_remove_handle)	*multi_remove_handle;
	__typeof__(curl_multi_cleanup)		*multi_cleanup;
	__typeof__(curl_multi_info_read)	*multi_info_read;
	__typeof__(curl_multi_socket_action)	*multi_socket_action;
	__typeof__(curl_multi_assign)		*multi_assign;
} curl;

#define CURL_SYM(f)	{ "curl_" #f, offsetof(struct curl_fns, f) }
static const struct dynlib_sym curl_syms[] = {
	CURL_SYM(global_init),
	CURL_SYM(global_cleanup),
	CURL_SYM(easy_init),
	CURL_SYM(easy_setopt),
	CURL_SYM(easy_getinfo),
	CURL_SYM(easy_cleanup),
	CURL_SYM(easy_strerror),
	CURL_SYM(multi_init),
	CURL_SYM(multi_setopt),
	CURL_SYM(multi_add_handle),
	CURL_SYM(multi_remove_handle),
	CURL_SYM(multi_cleanup),
	CURL_SYM(multi_info_read),
	CURL_SYM(multi_socket_action),
	CURL_SYM(multi_assign),
};
#undef CURL_SYM

static uv_once_t	curl_once = UV_ONCE_INIT;
static int		curl_loaded;
static char		curl_why[WHY_LEN];

/* Fill the table, once per process whichever thread comes first (uv_once
 * makes the others wait): curl_loaded, or curl_why says what is missing. */
static void
curl_load_once(void)
{
	curl_loaded = dynlib_load(CURL_LIB, curl_syms,
	    sizeof(curl_syms) / sizeof(curl_syms[0]), &curl, sizeof(curl),
	    curl_why, sizeof(curl_why)) == 0;
}

/* 0 with the table filled, or WICK_ERR_CONFIG logged with the reason. */
static int
curl_load(void)
{
	uv_once(&curl_once, curl_load_once);
	if (!curl_loaded) {
		log_error("docker: the workload attestor needs libcurl: %s",
		    curl_why);
		return WICK_ERR_CONFIG;
	}
	return 0;
}

/*
 * Pure parsing: IDs, cgroup lines, matchers, mountinfo lines.
 */

static int
is_id(const char *s, size_t n)
{
	size_t	 i;

	if (n != DOCKER_ID_LEN)
		return 0;
	for (i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') ||
		    (s[i] >= 'a' && s[i] <= 'f')))
			return 0;
	return 1;
}

/* The engines' own forms of a container's cgroup, before the ID. */
static const char *const id_prefixes[] = {
	"docker-", "libpod-", "cri-containerd-", "crio-", NULL
};

/*
 * A path element that names a container: the ID alone, or one of the
 * prefixes above, the ID, and an optional ".scope".  libpod-conmon-<id>
 * (podman's monitor) and crio-conmon-<id> are not containers and do not
 * match: after the prefix comes "conmon-", not hex.
 */
static const char *
element_id(const char *e, size_t n)
{
	const char *const	*p;
	size_t			 pl;

	if (is_id(e, n))
		return e;
	if (n > 6 && memcmp(e + n - 6, ".scope", 6) == 0 &&
	    n - 6 > DOCKER_ID_LEN && is_id(e + n - 6 - DOCKER_ID_LEN,
	    DOCKER_ID_LEN))
		n -= 6;
	for (p = id_prefixes; *p != NULL; p++) {
		pl = strlen(*p);
		if (n == pl + DOCKER_ID_LEN && memcmp(e, *p, pl) == 0 &&
		    is_id(e + pl, DOCKER_ID_LEN))
			return e + pl;
	}
	return NULL;
}

/*
 * The first element of path (from the root) that names a container:
 * *id points at its ID, *elem and *elemlen at the whole element.
 */
static int
path_id(const char *path, size_t len, const char **id, size_t *elem,
    size_t *elemlen)
{
	size_t		 i = 0, j;
	const char	*p;

	while (i < len) {
		while (i < len && path[i] == '/')
			i++;
		for (j = i; j < len && path[j] != '/'; j++)
			;
		if (j > i && (p = element_id(path + i, j - i)) != NULL) {
			*id = p;
			*elem = i;
			*elemlen = j - i;
			return 1;
		}
		i = j;
	}
	return 0;
}

/* SPIRE's test for a podman cgroup. */
static int
path_is_podman(const char *path, size_t len)
{
	return memmem(path, len, "libpod-", 7) != NULL ||
	    memmem(path, len, "/libpod/", 8) != NULL;
}

/* Next '/'-separated element of s[*i..len): start and length. */
static int
next_element(const char *s, size_t len, size_t *i, size_t *start,
    size_t *n)
{
	size_t	 j;

	if (*i > len)
		return 0;
	for (j = *i; j < len && s[j] != '/'; j++)
		;
	*start = *i;
	*n = j - *i;
	*i = j + 1;
	return 1;
}

/*
 * A container_id_cgroup_matchers pattern against a whole path, element
 * by element: "*" is any one element, "<id>" the captured one.
 */
static int
matcher_match(const char *pat, const char *path, size_t len, size_t *cap,
    size_t *caplen)
{
	size_t	 pi = 0, xi = 0, plen = strlen(pat), ps, pn, xs, xn;
	int	 got = 0, pm, xm;

	for (;;) {
		pm = next_element(pat, plen, &pi, &ps, &pn);
		xm = next_element(path, len, &xi, &xs, &xn);
		if (!pm || !xm)
			return pm == xm && got;
		if (pn == 4 && memcmp(pat + ps, "<id>", 4) == 0) {
			*cap = xs;
			*caplen = xn;
			got = 1;
		} else if (!(pn == 1 && pat[ps] == '*') && (pn != xn ||
		    memcmp(pat + ps, path + xs, pn) != 0))
			return 0;
	}
}

/* One line of /proc/<pid>/cgroup: "hierarchy:controllers:path". */
struct cg_line {
	const char	*hier, *ctrl, *path;
	size_t		 hierlen, ctrllen, pathlen;
};

/*
 * The next line from text[*pos..len).  0 and a line, WICK_ERR_NOT_FOUND
 * at the end, WICK_ERR_INVALID for a line that is not one.
 */
static int
cg_next(const char *text, size_t len, size_t *pos, struct cg_line *l)
{
	const char	*s, *nl, *c1, *c2;
	size_t		 n, i;

	if (*pos >= len)
		return WICK_ERR_NOT_FOUND;
	s = text + *pos;
	nl = memchr(s, '\n', len - *pos);
	n = nl != NULL ? (size_t)(nl - s) : len - *pos;
	*pos += n + 1;
	if ((c1 = memchr(s, ':', n)) == NULL ||
	    (c2 = memchr(c1 + 1, ':', n - (size_t)(c1 + 1 - s))) == NULL)
		return WICK_ERR_INVALID;
	l->hier = s;
	l->hierlen = (size_t)(c1 - s);
	l->ctrl = c1 + 1;
	l->ctrllen = (size_t)(c2 - c1 - 1);
	l->path = c2 + 1;
	l->pathlen = n - (size_t)(c2 + 1 - s);
	if (l->hierlen == 0 || l->hierlen > 10 || l->pathlen == 0 ||
	    l->path[0] != '/')
		return WICK_ERR_INVALID;
	for (i = 0; i < l->hierlen; i++)
		if (l->hier[i] < '0' || l->hier[i] > '9')
			return WICK_ERR_INVALID;
	return 0;
}

/*
 * The container a cgroup line names: 1 and its ID, element offset and
 * length; 0 for none; WICK_ERR_INVALID for a matcher whose <id> is not
 * an ID.
 */
static int
line_id(const struct docker_opts *o, const struct cg_line *l,
    const char **id, size_t *elem, size_t *elemlen)
{
	size_t	 i;

	if (o == NULL || o->nmatchers == 0)
		return path_id(l->path, l->pathlen, id, elem, elemlen);
	for (i = 0; i < o->nmatchers; i++) {
		if (!matcher_match(o->matchers[i], l->path, l->pathlen, elem,
		    elemlen))
			continue;
		if (!is_id(l->path + *elem, *elemlen))
			return WICK_ERR_INVALID;
		*id = l->path + *elem;
		return 1;
	}
	return 0;
}

int
docker_container_id(const char *text, size_t len,
    const struct docker_opts *o, struct docker_found *f, char *why,
    size_t whylen)
{
	struct cg_line	 l;
	unsigned long	 hiers[DOCKER_MAX_CGROUP_LINES];
	const char	*id;
	size_t		 pos = 0, nlines = 0, i, elem, elemlen;
	int		 r, allroot = 1;

	memset(f, 0, sizeof(*f));
	if (memchr(text, '\0', len) != NULL)
		return err_why(why, whylen, WICK_ERR_INVALID,
		    "cgroup file holds a NUL byte");
	while ((r = cg_next(text, len, &pos, &l)) != WICK_ERR_NOT_FOUND) {
		if (r != 0) {
			r = err_why(why, whylen, r, "cgroup line %zu is not "
			    "hierarchy:controllers:/path", nlines + 1);
			goto out;
		}
		if (nlines == DOCKER_MAX_CGROUP_LINES) {
			r = err_why(why, whylen, WICK_ERR_LIMIT, "more than %d "
			    "cgroup lines", DOCKER_MAX_CGROUP_LINES);
			goto out;
		}
		for (hiers[nlines] = 0, i = 0; i < l.hierlen; i++)
			hiers[nlines] = hiers[nlines] * 10 +
			    (unsigned long)(l.hier[i] - '0');
		for (i = 0; i < nlines; i++)
			if (hiers[i] == hiers[nlines]) {
				r = err_why(why, whylen, WICK_ERR_INVALID,
				    "cgroup hierarchy %lu is listed twice",
				    hiers[i]);
				goto out;
			}
		if (l.pathlen != 1)
			allroot = 0;
		if ((r = line_id(o, &l, &id, &elem, &elemlen)) < 0) {
			r = err_why(why, whylen, r, "cgroup line %zu matches a "
			    "container_id_cgroup_matchers pattern but its <id> "
			    "is not a 64-hex container ID", nlines + 1);
			goto out;
		}
		if (r == 1 && f->id[0] != '\0' &&
		    memcmp(f->id, id, DOCKER_ID_LEN) != 0) {
			r = err_why(why, whylen, WICK_ERR_INVALID, "cgroup "
			    "lines name two containers, %.12s and %.12s",
			    f->id, id);
			goto out;
		}
		if (r == 1 && f->id[0] == '\0')
			memcpy(f->id, id, DOCKER_ID_LEN);
		if (r == 1 && path_is_podman(l.path, l.pathlen))
			f->podman = 1;
		nlines++;
	}
	if (f->id[0] != '\0')
		return 0;
	f->hidden = nlines > 0 && allroot &&
	    (o == NULL || o->nmatchers == 0);
	return WICK_ERR_NOT_FOUND;
out:
	memset(f, 0, sizeof(*f));
	return r;
}

/* One line of a mountinfo file, the fields we use. */
struct mi_line {
	char		 root[PATH_MAX];	/* unescaped */
	char		 mnt[PATH_MAX];		/* unescaped */
	const char	*fstype, *opts;		/* super options */
	size_t		 fstypelen, optslen;
};

/* Undo the kernel's \\ooo escapes of a mountinfo field. */
static int
mi_unescape(const char *s, size_t n, char *out, size_t outlen)
{
	size_t	 i, o = 0;

	for (i = 0; i < n; i++) {
		if (o + 1 >= outlen)
			return WICK_ERR_LIMIT;
		if (s[i] == '\\' && i + 3 < n && s[i + 1] >= '0' &&
		    s[i + 1] <= '3' && s[i + 2] >= '0' && s[i + 2] <= '7' &&
		    s[i + 3] >= '0' && s[i + 3] <= '7') {
			out[o++] = (char)((s[i + 1] - '0') * 64 +
			    (s[i + 2] - '0') * 8 + (s[i + 3] - '0'));
			i += 3;
		} else
			out[o++] = s[i];
	}
	out[o] = '\0';
	return 0;
}

/*
 * The next line of a mountinfo text (proc(5): mount ID, parent ID,
 * major:minor, root, mount point, options, optional fields, "-", type,
 * source, super options).  Fields are separated by single spaces; the
 * source may be empty.
 */
static int
mi_next(const char *text, size_t len, size_t *pos, struct mi_line *m)
{
	const char	*s, *nl, *f[64];
	size_t		 n, fl[64], nf = 0, i, sep;
	const char	*p, *sp;

	for (;;) {
		if (*pos >= len)
			return WICK_ERR_NOT_FOUND;
		s = text + *pos;
		nl = memchr(s, '\n', len - *pos);
		n = nl != NULL ? (size_t)(nl - s) : len - *pos;
		*pos += n + 1;
		if (n > 0)
			break;
	}
	for (p = s; p <= s + n; p = sp + 1) {
		if ((sp = memchr(p, ' ', (size_t)(s + n - p))) == NULL)
			sp = s + n;
		if (nf == 64)
			return WICK_ERR_INVALID;
		f[nf] = p;
		fl[nf++] = (size_t)(sp - p);
	}
	for (sep = 6; sep < nf; sep++)
		if (fl[sep] == 1 && f[sep][0] == '-')
			break;
	if (sep + 4 > nf || fl[sep + 1] == 0)
		return WICK_ERR_INVALID;
	for (i = 0; i < 5; i++)
		if (fl[i] == 0)
			return WICK_ERR_INVALID;
	if (mi_unescape(f[3], fl[3], m->root, sizeof(m->root)) != 0 ||
	    mi_unescape(f[4], fl[4], m->mnt, sizeof(m->mnt)) != 0)
		return WICK_ERR_INVALID;
	m->fstype = f[sep + 1];
	m->fstypelen = fl[sep + 1];
	m->opts = f[sep + 3];
	m->optslen = fl[sep + 3];
	return 0;
}

static int
mi_is(const struct mi_line *m, const char *fstype)
{
	return m->fstypelen == strlen(fstype) &&
	    memcmp(m->fstype, fstype, m->fstypelen) == 0;
}

/*
 * The container a mount's root names: a cgroup mount's root as a cgroup
 * path; any mount's root holding .../containers/<id>/<file> (Docker's
 * hostname, hosts, resolv.conf) or .../<driver>-containers/<id>/userdata/
 * (podman's and CRI-O's storage).
 */
static int
root_id(const struct mi_line *m, const char **id, int *podman)
{
	const char	*r = m->root, *e[3];
	size_t		 len = strlen(m->root), i = 0, s, n, el[3], k;
	size_t		 elem, elemlen;

	*podman = 0;
	if (mi_is(m, "cgroup") || mi_is(m, "cgroup2")) {
		if (strcmp(r, "/") == 0 || !path_id(r, len, id, &elem,
		    &elemlen))
			return 0;
		*podman = path_is_podman(r, len);
		return 1;
	}
	/* A sliding window of three elements. */
	for (k = 0; next_element(r, len, &i, &s, &n); ) {
		if (k == 3) {
			e[0] = e[1];
			el[0] = el[1];
			e[1] = e[2];
			el[1] = el[2];
			k = 2;
		}
		e[k] = r + s;
		el[k++] = n;
		if (k < 3 || !is_id(e[1], el[1]) || el[2] == 0)
			continue;
		if (el[0] == 10 && memcmp(e[0], "containers", 10) == 0) {
			*id = e[1];
			return 1;
		}
		if (el[0] > 11 && memcmp(e[0] + el[0] - 11, "-containers",
		    11) == 0 && el[2] == 8 && memcmp(e[2], "userdata",
		    8) == 0) {
			*id = e[1];
			*podman = 1;
			return 1;
		}
	}
	return 0;
}

int
docker_mountinfo_id(const char *text, size_t len, struct docker_found *f,
    char *why, size_t whylen)
{
	struct mi_line	*m;
	const char	*id;
	size_t		 pos = 0, line = 0;
	int		 r, podman;

	memset(f, 0, sizeof(*f));
	if (memchr(text, '\0', len) != NULL)
		return err_why(why, whylen, WICK_ERR_INVALID,
		    "mountinfo holds a NUL byte");
	if ((m = malloc(sizeof(*m))) == NULL)
		return err_why(why, whylen, WICK_ERR_ALLOC, "out of memory");
	while ((r = mi_next(text, len, &pos, m)) != WICK_ERR_NOT_FOUND) {
		line++;
		if (r != 0) {
			r = err_why(why, whylen, r, "mountinfo line %zu is "
			    "malformed", line);
			goto out;
		}
		if (!root_id(m, &id, &podman))
			continue;
		if (f->id[0] == '\0')
			memcpy(f->id, id, DOCKER_ID_LEN);
		else if (memcmp(f->id, id, DOCKER_ID_LEN) != 0) {
			r = err_why(why, whylen, WICK_ERR_INVALID, "mounts "
			    "name two containers, %.12s and %.12s", f->id, id);
			goto out;
		}
		f->podman |= podman;
	}
	r = f->id[0] != '\0' ? 0 : WICK_ERR_NOT_FOUND;
out:
	if (r != 0 && r != WICK_ERR_NOT_FOUND)
		memset(f, 0, sizeof(*f));
	free(m);
	return r;
}

/*
 * The engine's inspect answer.
 */

/* docker:<kind>:<a>[:<b>], or skipped when it cannot be a selector. */
static int
add_sel(struct docker_info *info, const char *kind, const char *a,
    const char *b)
{
	char	 val[SELECTOR_MAX_VALUE_LEN + 1];
	int	 n, r;

	n = snprintf(val, sizeof(val), "%s:%s%s%s", kind, a,
	    b != NULL ? ":" : "", b != NULL ? b : "");
	if (n < 0 || (size_t)n >= sizeof(val)) {
		info->skipped++;
		return 0;
	}
	r = selector_set_add(&info->sel, "docker", val, NULL);
	if (r == WICK_ERR_INVALID || r == WICK_ERR_LIMIT) {
		/* A control character, or too long: not a selector. */
		info->skipped++;
		return 0;
	}
	return r;
}

static int
opt_string(const json_t *obj, const char *key, const char **out)
{
	const json_t	*v = json_object_get(obj, key);

	*out = NULL;
	if (v == NULL || json_is_null(v))
		return 0;
	if (!json_is_string(v))
		return WICK_ERR_INVALID;
	*out = json_string_value(v);
	return 0;
}

void
docker_info_cleanup(struct docker_info *info)
{
	selector_set_cleanup(&info->sel);
	memset(info, 0, sizeof(*info));
}

static int
inspect_config(const json_t *cfg, struct docker_info *info, char *why,
    size_t whylen)
{
	const json_t	*labels, *env, *v;
	const char	*k, *s;
	size_t		 i;
	int		 r;

	labels = json_object_get(cfg, "Labels");
	if (labels != NULL && !json_is_null(labels)) {
		if (!json_is_object(labels))
			return err_why(why, whylen, WICK_ERR_INVALID,
			    "Config.Labels is not an object");
		if (json_object_size(labels) > DOCKER_MAX_LABELS)
			return err_why(why, whylen, WICK_ERR_LIMIT, "more than "
			    "%d labels", DOCKER_MAX_LABELS);
		json_object_foreach((json_t *)labels, k, v) {
			if (!json_is_string(v))
				return err_why(why, whylen, WICK_ERR_INVALID,
				    "a label's value is not a string");
			/* label:a:b:c would not say which ':' ends the key. */
			if (k[0] == '\0' || strchr(k, ':') != NULL) {
				info->skipped++;
				continue;
			}
			if ((r = add_sel(info, "label", k,
			    json_string_value(v))) != 0)
				return err_why(why, whylen, r, "out of memory");
		}
	}
	env = json_object_get(cfg, "Env");
	if (env != NULL && !json_is_null(env)) {
		if (!json_is_array(env))
			return err_why(why, whylen, WICK_ERR_INVALID,
			    "Config.Env is not an array");
		if (json_array_size(env) > DOCKER_MAX_ENV)
			return err_why(why, whylen, WICK_ERR_LIMIT, "more than "
			    "%d environment variables", DOCKER_MAX_ENV);
		json_array_foreach(env, i, v) {
			if (!json_is_string(v))
				return err_why(why, whylen, WICK_ERR_INVALID,
				    "Config.Env holds a value that is not a "
				    "string");
			s = json_string_value(v);
			if (s[0] == '\0')
				continue;
			if ((r = add_sel(info, "env", s, NULL)) != 0)
				return err_why(why, whylen, r, "out of memory");
		}
	}
	if (opt_string(cfg, "Image", &s) != 0)
		return err_why(why, whylen, WICK_ERR_INVALID,
		    "Config.Image is not a string");
	if (s != NULL && s[0] != '\0' &&
	    (r = add_sel(info, "image_id", s, NULL)) != 0)
		return err_why(why, whylen, r, "out of memory");
	return 0;
}

int
docker_parse_inspect(const uint8_t *buf, size_t len,
    struct docker_info *info, char *why, size_t whylen)
{
	json_t		*root = NULL;
	const json_t	*cfg, *st, *v;
	const char	*s;
	json_error_t	 jerr;
	int		 r;

	memset(info, 0, sizeof(*info));
	selector_set_init(&info->sel);
	if (len > DOCKER_MAX_RESPONSE)
		return err_why(why, whylen, WICK_ERR_LIMIT, "answer larger "
		    "than %d bytes", DOCKER_MAX_RESPONSE);
	root = json_loadb((const char *)buf, len, JSON_REJECT_DUPLICATES,
	    &jerr);
	if (root == NULL)
		return err_why(why, whylen, WICK_ERR_INVALID, "answer is not "
		    "JSON: %.80s (line %d)", jerr.text, jerr.line);
	r = WICK_ERR_INVALID;
	if (!json_is_object(root)) {
		(void)err_why(why, whylen, r, "answer is not a JSON object");
		goto out;
	}
	if (opt_string(root, "Id", &s) != 0 || s == NULL ||
	    !is_id(s, strlen(s))) {
		(void)err_why(why, whylen, r, "Id is not a 64-hex container "
		    "ID");
		goto out;
	}
	memcpy(info->id, s, DOCKER_ID_LEN + 1);
	st = json_object_get(root, "State");
	if (!json_is_object(st)) {
		(void)err_why(why, whylen, r, "State is not an object");
		goto out;
	}
	v = json_object_get(st, "Running");
	if (!json_is_boolean(v)) {
		(void)err_why(why, whylen, r, "State.Running is not a "
		    "boolean");
		goto out;
	}
	info->running = json_is_true(v);
	v = json_object_get(st, "Pid");
	if (!json_is_integer(v) || json_integer_value(v) < 0) {
		(void)err_why(why, whylen, r, "State.Pid is not a process ID");
		goto out;
	}
	info->pid = json_integer_value(v);
	cfg = json_object_get(root, "Config");
	if (!json_is_object(cfg)) {
		(void)err_why(why, whylen, r, "Config is not an object");
		goto out;
	}
	if ((r = inspect_config(cfg, info, why, whylen)) != 0)
		goto out;
	/* The image the container runs, by ID: its config's digest. */
	if (opt_string(root, "Image", &s) != 0) {
		r = err_why(why, whylen, WICK_ERR_INVALID, "Image is not a "
		    "string");
		goto out;
	}
	if (s != NULL && strncmp(s, "sha256:", 7) == 0 &&
	    is_id(s + 7, strlen(s + 7)) &&
	    (r = add_sel(info, "image_config_digest", s,
	    NULL)) != 0) {
		(void)err_why(why, whylen, r, "out of memory");
		goto out;
	}
	r = 0;
out:
	json_decref(root);
	return r;
}

/*
 * Configuration.
 */

static const char *const docker_known[] = {
	"docker_socket_path", "podman_socket_path", "docker_version",
	"container_id_cgroup_matchers", "use_new_container_locator",
	"verbose_container_locator_logs", NULL
};
static const char *const docker_unimpl[] = {
	"podman_socket_path_template", "sigstore", "docker_host", NULL
};

void
docker_opts_cleanup(struct docker_opts *o)
{
	size_t	 i;

	free(o->socket_path);
	free(o->podman_socket_path);
	free(o->version);
	for (i = 0; i < o->nmatchers; i++)
		free(o->matchers[i]);
	free(o->matchers);
	memset(o, 0, sizeof(*o));
}

static int
socket_opt(const struct conf *c, const json_t *d, const char *key,
    const char *def, char **out, struct conf_error *err)
{
	const char	*s;
	int		 r;

	if ((r = conf_get_string(c, d, key, def, &s, err)) != 0)
		return r;
	if (strncmp(s, "unix://", 7) == 0)
		s += 7;
	if (s[0] != '/')
		return conf_error_at(c, d, key, err, "\"%s\" must be "
		    "unix://<absolute path> or an absolute path (wick speaks "
		    "to engines over Unix sockets only)", key);
	if (strlen(s) > DOCKER_MAX_SOCKET_PATH)
		return conf_error_at(c, d, key, err, "\"%s\" is longer than "
		    "%d bytes", key, DOCKER_MAX_SOCKET_PATH);
	*out = xstrdup(s);
	return 0;
}

/* "1.41" or "v1.41": major and minor, each 1 to 3 digits. */
static int
version_parse(const char *s, unsigned *v)
{
	unsigned	 maj = 0, min = 0, nd = 0;

	if (*s == 'v')
		s++;
	for (; *s >= '0' && *s <= '9' && nd < 3; s++, nd++)
		maj = maj * 10 + (unsigned)(*s - '0');
	if (nd == 0 || *s++ != '.')
		return WICK_ERR_INVALID;
	for (nd = 0; *s >= '0' && *s <= '9' && nd < 3; s++, nd++)
		min = min * 10 + (unsigned)(*s - '0');
	if (nd == 0 || *s != '\0')
		return WICK_ERR_INVALID;
	*v = maj * 1000 + min;
	return 0;
}

/* Two patterns that could match one path (SPIRE's rule). */
static int
matchers_overlap(const char *a, const char *b)
{
	size_t	 ai = 0, bi = 0, al = strlen(a), bl = strlen(b);
	size_t	 as, an, bs, bn;
	int	 am, bm;

	for (;;) {
		am = next_element(a, al, &ai, &as, &an);
		bm = next_element(b, bl, &bi, &bs, &bn);
		if (!am || !bm)
			return am == bm;
		if ((an == 1 && a[as] == '*') || (bn == 1 && b[bs] == '*') ||
		    (an == 4 && memcmp(a + as, "<id>", 4) == 0) ||
		    (bn == 4 && memcmp(b + bs, "<id>", 4) == 0))
			continue;
		if (an != bn || memcmp(a + as, b + bs, an) != 0)
			return 0;
	}
}

static int
matcher_check(const char *p)
{
	size_t	 i = 0, len = strlen(p), s, n, ids = 0;

	while (next_element(p, len, &i, &s, &n))
		if (n == 4 && memcmp(p + s, "<id>", 4) == 0)
			ids++;
	return ids == 1 ? 0 : WICK_ERR_CONFIG;
}

static int
matchers_opt(const struct conf *c, const json_t *d, struct docker_opts *o,
    struct conf_error *err)
{
	const char	*key = "container_id_cgroup_matchers";
	const json_t	*a, *v;
	const char	*s;
	size_t		 i, j;

	if ((a = json_object_get(d, key)) == NULL)
		return 0;
	if (!json_is_array(a) || json_array_size(a) > DOCKER_MAX_MATCHERS)
		return conf_error_at(c, d, key, err, "\"%s\" must be a list "
		    "of at most %d strings", key, DOCKER_MAX_MATCHERS);
	o->matchers = xcalloc(json_array_size(a) + 1, sizeof(char *));
	json_array_foreach(a, i, v) {
		if (!json_is_string(v) || (s = json_string_value(v),
		    strlen(s) > DOCKER_MAX_MATCHER_LEN))
			return conf_error_at(c, d, key, err, "\"%s\" must "
			    "hold strings of at most %d bytes", key,
			    DOCKER_MAX_MATCHER_LEN);
		if (matcher_check(s) != 0)
			return conf_error_at(c, d, key, err, "pattern "
			    "\"%.80s\" must hold the element <id> exactly "
			    "once", s);
		for (j = 0; j < o->nmatchers; j++)
			if (matchers_overlap(o->matchers[j], s))
				return conf_error_at(c, d, key, err, "patterns "
				    "\"%.80s\" and \"%.80s\" are ambiguous: "
				    "both could match one cgroup",
				    o->matchers[j], s);
		o->matchers[o->nmatchers++] = xstrdup(s);
	}
	return 0;
}

int
docker_opts_parse(const struct conf *c, const json_t *d,
    struct docker_opts *o, struct conf_error *err)
{
	const char	*s;
	unsigned	 v;
	int		 r, newloc;

	memset(o, 0, sizeof(*o));
	memset(err, 0, sizeof(*err));
	o->timeout_ms = DOCKER_DEFAULT_TIMEOUT_MS;
	o->proc_root = "/proc";
	if (d != NULL && (r = conf_check_keys(c, d,
	    "WorkloadAttestor \"docker\"", docker_known, docker_unimpl, NULL,
	    NULL, err)) != 0)
		return r;
	if ((r = socket_opt(c, d, "docker_socket_path",
	    "unix://" DOCKER_DEFAULT_SOCKET, &o->socket_path, err)) != 0 ||
	    (r = socket_opt(c, d, "podman_socket_path",
	    "unix://" DOCKER_DEFAULT_PODMAN_SOCKET, &o->podman_socket_path,
	    err)) != 0)
		return r;
	if ((r = conf_get_string(c, d, "docker_version", "", &s, err)) != 0)
		return r;
	if (s[0] != '\0' && version_parse(s, &v) != 0)
		return conf_error_at(c, d, "docker_version", err,
		    "\"docker_version\" must be an API version such as "
		    "\"1.41\"");
	o->version = xstrdup(s[0] == 'v' ? s + 1 : s);
	if ((r = conf_get_bool(c, d, "verbose_container_locator_logs", 0,
	    &o->verbose, err)) != 0 ||
	    (r = conf_get_bool(c, d, "use_new_container_locator", 1, &newloc,
	    err)) != 0)
		return r;
	if (d != NULL && (r = matchers_opt(c, d, o, err)) != 0)
		return r;
	if (o->nmatchers > 0 && newloc)
		return conf_error_at(c, d, "container_id_cgroup_matchers", err,
		    "the new container locator and custom cgroup matchers "
		    "cannot both be used: to use \"container_id_cgroup_"
		    "matchers\" set use_new_container_locator = false");
	return 0;
}

/*
 * The agent's own view: where its cgroup hierarchies are mounted, and
 * which container (if any) it runs in.
 */

struct cg_mount {
	int	 v2;
	char	*opts;	/* v1 super options, ",rw,cpu,cpuacct," */
	char	*dir;
};

/* An engine: where it listens, the API version we speak with it. */
struct engine {
	char		*socket;
	const char	*opt;		/* its option, for messages */
	char		 version[VERSION_LEN + 1]; /* "" to negotiate */
	int		 fixed;		/* docker_version */
};

enum { ENGINE_DOCKER = 0, ENGINE_PODMAN, NENGINES };

enum fetch_state { FETCH_QUEUED = 0, FETCH_PING, FETCH_INSPECT };

/* One engine request, shared by the attestations of one container. */
struct fetch {
	struct docker		*d;
	struct fetch		*next, **prevp;	/* active or queued */
	enum fetch_state	 state;
	int			 engine;
	char			 id[DOCKER_ID_LEN + 1];
	int			 cg_known;	/* its cgroup's */
	dev_t			 cg_dev;
	ino_t			 cg_ino;
	uint64_t		 deadline;
	CURL			*easy;
	uint8_t			*body;
	size_t			 len, cap;
	int			 over, nomem;
	long			 oserr;		/* connect's errno */
	char			 api[VERSION_LEN + 1];	/* /_ping's */
	char			 errbuf[CURL_ERROR_SIZE];
	struct docker_req	*waiters;
};

struct docker_req {
	struct docker		*d;
	struct docker_req	*next, **prevp;
	struct selector_set	*out;
	docker_done_fn		*done;
	void			*arg;
};

/* A container's selectors, as long as its cgroup is the same. */
struct centry {
	int			 engine;
	char			 id[DOCKER_ID_LEN + 1];
	int			 cg_known;
	dev_t			 cg_dev;
	ino_t			 cg_ino;
	uint64_t		 fetched, used;
	size_t			 bytes;
	struct selector_set	 sel;
};

/* A socket curl asked us to watch. */
struct dsock {
	uv_poll_t		 poll;
	struct docker		*d;
	curl_socket_t		 fd;
	struct dsock		*next, **prevp;
};

struct docker {
	uv_loop_t		*loop;
	CURLM			*multi;
	uv_timer_t		 timer;		/* curl's timeout */
	uv_timer_t		 qtimer;	/* first queued deadline */
	struct engine		 eng[NENGINES];
	char			**matchers;
	size_t			 nmatchers;
	struct docker_opts	 o;		/* borrows the above */
	char			*proc_root;
	struct cg_mount		 mounts[DOCKER_MAX_CGROUP_LINES];
	size_t			 nmounts;
	char			 self_id[DOCKER_ID_LEN + 1];
	struct fetch		*active;
	struct fetch		*qhead, **qtail;
	size_t			 nactive, nqueued, nreqs;
	struct centry		*cache[DOCKER_MAX_CACHE];
	size_t			 ncache, cache_bytes;
	struct dsock		*socks;
	struct log_ratelimit	 rl;
	unsigned		 busy;		/* in us or a callback */
	int			 closing, torn, global;
	unsigned		 pending;	/* uv handles closing */
	void			(*close_done)(void *);
	void			*close_arg;
};

/* Read a whole /proc file, at most max bytes, into a NUL-ended buffer. */
static int
read_proc(const char *path, size_t max, char **out, size_t *outlen,
    char *why, size_t whylen)
{
	char	*buf = NULL, *nb;
	size_t	 len = 0, cap = 0;
	ssize_t	 n;
	int	 fd, r = 0;

	*out = NULL;
	*outlen = 0;
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return err_why(why, whylen, errno == ENOENT || errno == ESRCH ?
		    WICK_ERR_STATE : WICK_ERR_IO, "cannot read %s: %s", path,
		    strerror(errno));
	for (;;) {
		if (len == cap) {
			if (cap > max) {
				r = err_why(why, whylen, WICK_ERR_LIMIT,
				    "%s is larger than %zu bytes", path, max);
				goto out;
			}
			cap = cap == 0 ? 4096 : cap * 2;
			if (cap > max + 1)
				cap = max + 1;
			if ((nb = realloc(buf, cap + 1)) == NULL) {
				r = err_why(why, whylen, WICK_ERR_ALLOC,
				    "out of memory");
				goto out;
			}
			buf = nb;
		}
		if ((n = read(fd, buf + len, cap - len)) < 0) {
			if (errno == EINTR)
				continue;
			r = err_why(why, whylen, errno == ESRCH ?
			    WICK_ERR_STATE : WICK_ERR_IO, "cannot read %s: %s",
			    path, strerror(errno));
			goto out;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	if (len > max) {
		r = err_why(why, whylen, WICK_ERR_LIMIT, "%s is larger than "
		    "%zu bytes", path, max);
		goto out;
	}
	buf[len] = '\0';
	*out = buf;
	*outlen = len;
	buf = NULL;
out:
	close(fd);
	free(buf);
	return r;
}

/* The cgroup hierarchies mounted in the agent's view, from its mountinfo. */
static int
mounts_load(struct docker *d, const char *text, size_t len, char *why,
    size_t whylen)
{
	struct mi_line	*m;
	struct cg_mount	*cm;
	size_t		 pos = 0;
	int		 r, v2;

	if ((m = malloc(sizeof(*m))) == NULL)
		return err_why(why, whylen, WICK_ERR_ALLOC, "out of memory");
	while ((r = mi_next(text, len, &pos, m)) != WICK_ERR_NOT_FOUND) {
		if (r != 0)
			continue;	/* not ours to judge; skip it */
		v2 = mi_is(m, "cgroup2");
		if ((!v2 && !mi_is(m, "cgroup")) || strcmp(m->root, "/") != 0 ||
		    d->nmounts == DOCKER_MAX_CGROUP_LINES)
			continue;
		cm = &d->mounts[d->nmounts];
		cm->v2 = v2;
		if ((cm->dir = strdup(m->mnt)) == NULL ||
		    asprintf(&cm->opts, ",%.*s,", (int)m->optslen,
		    m->opts) < 0) {
			free(cm->dir);
			cm->dir = NULL;
			cm->opts = NULL;
			free(m);
			return err_why(why, whylen, WICK_ERR_ALLOC,
			    "out of memory");
		}
		d->nmounts++;
	}
	free(m);
	return 0;
}

/* The mount of the hierarchy a cgroup line is in, or NULL. */
static const struct cg_mount *
mount_of(const struct docker *d, const struct cg_line *l)
{
	const struct cg_mount	*cm;
	const char		*c, *e, *end = l->ctrl + l->ctrllen;
	char			 tok[80];
	size_t			 i;
	int			 all;

	for (i = 0; i < d->nmounts; i++) {
		cm = &d->mounts[i];
		if (l->ctrllen == 0) {
			if (cm->v2 && l->hierlen == 1 && l->hier[0] == '0')
				return cm;
			continue;
		}
		if (cm->v2)
			continue;
		for (all = 1, c = l->ctrl; all && c < end; c = e + 1) {
			if ((e = memchr(c, ',', (size_t)(end - c))) == NULL)
				e = end;
			if ((size_t)(e - c) + 3 > sizeof(tok)) {
				all = 0;
				break;
			}
			snprintf(tok, sizeof(tok), ",%.*s,", (int)(e - c), c);
			all = strstr(cm->opts, tok) != NULL;
		}
		if (all)
			return cm;
	}
	return NULL;
}

/*
 * Every directory from the hierarchy's mount point down to the parent of
 * the container's cgroup must be one only root or the agent's own user
 * can create cgroups in; the container's cgroup must exist (*st).
 */
static int
check_dirs(const struct cg_mount *cm, const struct cg_line *l,
    size_t elem, size_t elemlen, struct stat *st, char *why, size_t whylen)
{
	char	 path[PATH_MAX];
	size_t	 n, i = 0, s, en;
	uid_t	 me = geteuid();

	if ((n = strlen(cm->dir)) >= sizeof(path))
		return err_why(why, whylen, WICK_ERR_LIMIT, "cgroup mount "
		    "path too long");
	memcpy(path, cm->dir, n + 1);
	for (;;) {
		if (lstat(path, st) != 0)
			return err_why(why, whylen, errno == ENOENT ?
			    WICK_ERR_STATE : WICK_ERR_IO, "cannot stat %s: %s",
			    path, strerror(errno));
		if (!S_ISDIR(st->st_mode))
			return err_why(why, whylen, WICK_ERR_PERM, "%s is not "
			    "a directory", path);
		if (i > elem)
			return 0;	/* the container's own cgroup */
		if ((st->st_uid != 0 && st->st_uid != me) ||
		    (st->st_mode & (S_IWGRP | S_IWOTH)) != 0)
			return err_why(why, whylen, WICK_ERR_PERM, "cgroup %s "
			    "(owner uid %lu, mode %03o) is not one only root "
			    "creates cgroups in: a container there cannot be "
			    "trusted", path, (unsigned long)st->st_uid,
			    (unsigned)(st->st_mode & 07777));
		do {
			if (!next_element(l->path, l->pathlen, &i, &s, &en))
				return err_why(why, whylen, WICK_ERR_INTERNAL,
				    "cgroup path ends early");
		} while (en == 0);
		if (n + 1 + en >= sizeof(path))
			return err_why(why, whylen, WICK_ERR_LIMIT, "cgroup "
			    "path too long");
		path[n++] = '/';
		memcpy(path + n, l->path + s, en);
		n += en;
		path[n] = '\0';
		if (s == elem && en == elemlen)
			i = elem + elemlen + 1;	/* the last to stat */
	}
}

/*
 * Where the process's container is, as the kernel says and we trust it.
 */
struct where {
	int	 engine;
	char	 id[DOCKER_ID_LEN + 1];
	int	 cg_known;
	dev_t	 cg_dev;
	ino_t	 cg_ino;
};

/* A "." or ".." element: a path we cannot follow. */
static int
has_dots(const char *path, size_t len)
{
	size_t	 i = 0, s, n;

	while (next_element(path, len, &i, &s, &n))
		if ((n == 1 && path[s] == '.') ||
		    (n == 2 && path[s] == '.' && path[s + 1] == '.'))
			return 1;
	return 0;
}

/*
 * The cgroup that holds the container's: checked on every line that
 * names it and whose hierarchy the agent sees (at least one).
 */
static int
verify_cgroup(struct docker *d, const char *text, size_t len,
    const struct docker_found *f, struct where *w, char *why, size_t whylen)
{
	const struct cg_mount	*cm;
	struct cg_line		 l;
	struct stat		 st;
	const char		*id;
	size_t			 pos = 0, elem, elemlen, checked = 0;
	int			 r;

	while (cg_next(text, len, &pos, &l) == 0) {
		if (line_id(&d->o, &l, &id, &elem, &elemlen) != 1 ||
		    memcmp(id, f->id, DOCKER_ID_LEN) != 0)
			continue;
		/* "/..": above the agent's cgroup namespace, not in view. */
		if (has_dots(l.path, l.pathlen))
			continue;
		if ((cm = mount_of(d, &l)) == NULL)
			continue;
		if ((r = check_dirs(cm, &l, elem, elemlen, &st, why,
		    whylen)) != 0)
			return r;
		if (!w->cg_known) {
			w->cg_known = 1;
			w->cg_dev = st.st_dev;
			w->cg_ino = st.st_ino;
		}
		checked++;
	}
	if (checked == 0)
		return err_why(why, whylen, WICK_ERR_PERM, "cannot check who "
		    "created the cgroup of container %.12s: no hierarchy it "
		    "is in is mounted in the agent's view (run the agent in "
		    "the host's cgroup namespace)", f->id);
	return 0;
}

/* verbose_container_locator_logs: each line, control bytes as '?'. */
static void
log_lines(pid_t pid, const char *what, const char *text, size_t len)
{
	const char	*nl;
	char		 line[512];
	size_t		 n, i;

	while (len > 0) {
		nl = memchr(text, '\n', len);
		n = nl != NULL ? (size_t)(nl - text) : len;
		snprintf(line, sizeof(line), "%.*s", (int)n, text);
		for (i = 0; line[i] != '\0'; i++)
			if ((unsigned char)line[i] < 0x20 || line[i] == 0x7f)
				line[i] = '?';
		log_debug("docker: pid %ld %s: %s", (long)pid, what, line);
		if (nl == NULL)
			break;
		len -= n + 1;
		text = nl + 1;
	}
}

/* Which container the process is in: 0, WICK_ERR_NOT_FOUND, or an error. */
static int
locate(struct docker *d, const struct peercred *cred, struct where *w,
    char *why, size_t whylen)
{
	struct docker_found	 f, mf;
	char			 path[PATH_MAX], *text = NULL, *mi = NULL;
	size_t			 len, milen;
	int			 r;

	memset(w, 0, sizeof(*w));
	snprintf(path, sizeof(path), "%s/%ld/cgroup", d->proc_root,
	    (long)cred->pid);
	if ((r = read_proc(path, DOCKER_MAX_CGROUP_FILE, &text, &len, why,
	    whylen)) != 0)
		goto out;
	if (d->o.verbose)
		log_lines(cred->pid, "cgroup", text, len);
	r = docker_container_id(text, len, &d->o, &f, why, whylen);
	if (r == 0) {
		memcpy(w->id, f.id, sizeof(w->id));
		w->engine = f.podman ? ENGINE_PODMAN : ENGINE_DOCKER;
		r = verify_cgroup(d, text, len, &f, w, why, whylen);
	} else if (r == WICK_ERR_NOT_FOUND && f.hidden &&
	    d->self_id[0] != '\0') {
		/* Only the agent's own container can be the answer: in no
		 * container, the agent need not read (on the loop) mounts
		 * any process can make megabytes of. */
		snprintf(path, sizeof(path), "%s/%ld/mountinfo", d->proc_root,
		    (long)cred->pid);
		if ((r = read_proc(path, DOCKER_MAX_MOUNTINFO, &mi, &milen,
		    why, whylen)) != 0 ||
		    (r = docker_mountinfo_id(mi, milen, &mf, why,
		    whylen)) != 0)
			goto out;
		if (d->o.verbose)
			log_debug("docker: pid %ld sits at its cgroup "
			    "namespace's root; its mounts name container "
			    "%.12s", (long)cred->pid, mf.id);
		if (strcmp(mf.id, d->self_id) != 0) {
			r = err_why(why, whylen, WICK_ERR_PERM, "pid %ld "
			    "shares the agent's cgroup, but its mounts name "
			    "container %.12s, which the agent is not in",
			    (long)cred->pid, mf.id);
			goto out;
		}
		memcpy(w->id, mf.id, sizeof(w->id));
		w->engine = mf.podman ? ENGINE_PODMAN : ENGINE_DOCKER;
	}
	if (r != 0)
		goto out;
	/* What was read describes the process that called. */
	if (peercred_check_alive(cred) != 0)
		r = err_why(why, whylen, WICK_ERR_STATE, "the calling process "
		    "%ld is gone or was replaced", (long)cred->pid);
out:
	free(text);
	free(mi);
	return r;
}

/*
 * The cache.
 */

static void
centry_free(struct centry *e)
{
	if (e == NULL)
		return;
	selector_set_cleanup(&e->sel);
	free(e);
}

static void
cache_remove(struct docker *d, size_t i)
{
	d->cache_bytes -= d->cache[i]->bytes;
	centry_free(d->cache[i]);
	d->cache[i] = d->cache[--d->ncache];
	d->cache[d->ncache] = NULL;
}

static void
cache_drop(struct docker *d, int engine, const char *id)
{
	size_t	 i;

	for (i = 0; i < d->ncache; i++)
		if (d->cache[i]->engine == engine &&
		    strcmp(d->cache[i]->id, id) == 0) {
			cache_remove(d, i);
			return;
		}
}

static struct centry *
cache_find(struct docker *d, const struct where *w, uint64_t now)
{
	struct centry	*e;
	size_t		 i;

	for (i = 0; i < d->ncache; i++) {
		e = d->cache[i];
		if (e->engine != w->engine || strcmp(e->id, w->id) != 0)
			continue;
		if (now - e->fetched >= DOCKER_CACHE_TTL_MS ||
		    e->cg_known != w->cg_known || (e->cg_known &&
		    (e->cg_dev != w->cg_dev || e->cg_ino != w->cg_ino))) {
			/* Expired, or another incarnation of the container. */
			cache_remove(d, i);
			return NULL;
		}
		e->used = now;
		return e;
	}
	return NULL;
}

/* Keep sel (moved out of *sel) for the container f asked about. */
static void
cache_put(struct docker *d, const struct fetch *f, struct selector_set *sel)
{
	struct centry	*e;
	uint64_t	 now = uv_now(d->loop);
	size_t		 i, lru, bytes = sizeof(*e);

	for (i = 0; i < sel->n; i++)
		bytes += strlen(sel->sel[i].type) + strlen(sel->sel[i].value) +
		    2 + sizeof(sel->sel[i]);
	if (bytes > DOCKER_MAX_CACHE_BYTES)
		return;
	cache_drop(d, f->engine, f->id);
	for (i = 0; i < d->ncache; )
		if (now - d->cache[i]->fetched >= DOCKER_CACHE_TTL_MS)
			cache_remove(d, i);
		else
			i++;
	while (d->ncache > 0 && (d->ncache == DOCKER_MAX_CACHE ||
	    d->cache_bytes + bytes > DOCKER_MAX_CACHE_BYTES)) {
		for (lru = 0, i = 1; i < d->ncache; i++)
			if (d->cache[i]->used < d->cache[lru]->used)
				lru = i;
		cache_remove(d, lru);
	}
	if ((e = calloc(1, sizeof(*e))) == NULL)
		return;		/* not cached, no harm */
	e->engine = f->engine;
	memcpy(e->id, f->id, sizeof(e->id));
	e->cg_known = f->cg_known;
	e->cg_dev = f->cg_dev;
	e->cg_ino = f->cg_ino;
	e->fetched = e->used = now;
	e->bytes = bytes;
	e->sel = *sel;
	selector_set_init(sel);
	d->cache[d->ncache++] = e;
	d->cache_bytes += bytes;
}

/*
 * Requests and their completion.
 */

static void
req_unlink(struct docker_req *q)
{
	if (q->prevp == NULL)
		return;
	if (q->next != NULL)
		q->next->prevp = q->prevp;
	*q->prevp = q->next;
	q->next = NULL;
	q->prevp = NULL;
}

static void
req_link(struct docker_req **head, struct docker_req *q)
{
	q->next = *head;
	if (q->next != NULL)
		q->next->prevp = &q->next;
	q->prevp = head;
	*head = q;
}

/* out becomes out + sel, or stays as it was. */
static int
apply(struct selector_set *out, const struct selector_set *sel, char *why,
    size_t whylen)
{
	struct selector_set	 tmp;
	int			 r;

	selector_set_init(&tmp);
	if ((r = selector_set_union(&tmp, out)) != 0 ||
	    (r = selector_set_union(&tmp, sel)) != 0) {
		selector_set_cleanup(&tmp);
		if (r == WICK_ERR_LIMIT)
			return err_why(why, whylen, r, "with the container's "
			    "selectors the workload would have more than %d",
			    SELECTOR_MAX_COUNT);
		return err_why(why, whylen, r, "out of memory");
	}
	selector_set_cleanup(out);
	*out = tmp;
	return 0;
}

/*
 * Complete every request of *list with r (and sel when r is 0).  The
 * list is taken first, so a callback may cancel requests still on it or
 * start new ones.
 */
static void
deliver(struct docker *d, struct docker_req **list, int r, const char *why,
    const struct selector_set *sel)
{
	struct docker_req	*head = *list, *q;
	docker_done_fn		*done;
	void			*arg;
	char			 buf[WHY_LEN];
	int			 rr;

	*list = NULL;
	if (head != NULL)
		head->prevp = &head;
	while ((q = head) != NULL) {
		req_unlink(q);
		rr = r;
		if (rr == 0 && sel != NULL &&
		    (rr = apply(q->out, sel, buf, sizeof(buf))) != 0)
			why = buf;
		done = q->done;
		arg = q->arg;
		free(q);
		d->nreqs--;
		done(arg, rr, rr == 0 ? NULL : why);
	}
}

static void teardown(struct docker *);

static void
busy_done(struct docker *d)
{
	if (--d->busy == 0 && d->closing && !d->torn)
		teardown(d);
}

static void
fetch_free(struct fetch *f)
{
	if (f == NULL)
		return;
	if (f->easy != NULL) {
		(void)curl.multi_remove_handle(f->d->multi, f->easy);
		curl.easy_cleanup(f->easy);
	}
	free(f->body);
	free(f);
}

static void
fetch_unlink(struct fetch *f)
{
	if (f->prevp == NULL)
		return;
	if (f->next != NULL)
		f->next->prevp = f->prevp;
	*f->prevp = f->next;
	f->next = NULL;
	f->prevp = NULL;
}

static void
queue_push(struct docker *d, struct fetch *f)
{
	f->next = NULL;
	f->prevp = d->qtail;
	*d->qtail = f;
	d->qtail = &f->next;
	d->nqueued++;
}

static struct fetch *
queue_pop(struct docker *d)
{
	struct fetch	*f = d->qhead;

	if (f == NULL)
		return NULL;
	d->qhead = f->next;
	if (d->qhead != NULL)
		d->qhead->prevp = &d->qhead;
	else
		d->qtail = &d->qhead;
	f->next = NULL;
	f->prevp = NULL;
	d->nqueued--;
	return f;
}

/* Engine trouble: logged once per request, rate-limited. */
static void
fetch_log(struct fetch *f, int r, const char *why)
{
	struct docker	*d = f->d;

	if (r == 0 || r == WICK_ERR_NOT_FOUND || r == WICK_ERR_STATE ||
	    r == WICK_ERR_CANCELLED)
		return;
	log_warn_rl(&d->rl, "docker: container %.12s, engine at %s: %s",
	    f->id, d->eng[f->engine].socket, why);
}

/* f (in no list) is done: its requests get r, and sel is cached. */
static void
fetch_finish(struct fetch *f, int r, const char *why,
    struct selector_set *sel)
{
	struct docker	*d = f->d;

	fetch_log(f, r, why);
	deliver(d, &f->waiters, r, why, sel);
	if (r == 0 && sel != NULL && !d->closing)
		cache_put(d, f, sel);
	fetch_free(f);
}

static size_t
write_cb(char *p, size_t size, size_t nmemb, void *arg)
{
	struct fetch	*f = arg;
	size_t		 n = size * nmemb, ncap;
	uint8_t		*nb;

	if (n == 0)
		return 0;
	if (n > DOCKER_MAX_RESPONSE - f->len) {
		f->over = 1;
		return 0;
	}
	if (f->len + n > f->cap) {
		ncap = f->cap == 0 ? 16384 : f->cap;
		while (ncap < f->len + n)
			ncap *= 2;
		if (ncap > DOCKER_MAX_RESPONSE)
			ncap = DOCKER_MAX_RESPONSE;
		if ((nb = realloc(f->body, ncap)) == NULL) {
			f->nomem = 1;
			return 0;
		}
		f->body = nb;
		f->cap = ncap;
	}
	memcpy(f->body + f->len, p, n);
	f->len += n;
	return n;
}

/* /_ping's "API-Version: 1.41" header. */
static size_t
header_cb(char *p, size_t size, size_t nitems, void *arg)
{
	struct fetch	*f = arg;
	size_t		 n = size * nitems, i;

	if (n < 12 || strncasecmp(p, "API-Version:", 12) != 0)
		return n;
	for (i = 12; i < n && (p[i] == ' ' || p[i] == '\t'); i++)
		;
	for (; n > i && (p[n - 1] == '\r' || p[n - 1] == '\n' ||
	    p[n - 1] == ' ' || p[n - 1] == '\t'); n--)
		;
	if (n - i > 0 && n - i <= VERSION_LEN) {
		memcpy(f->api, p + i, n - i);
		f->api[n - i] = '\0';
	}
	return size * nitems;
}

/* Start f's next HTTP request (its state says which). */
static int
transfer_start(struct fetch *f, char *why, size_t whylen)
{
	struct docker	*d = f->d;
	struct engine	*e = &d->eng[f->engine];
	uint64_t	 now = uv_now(d->loop);
	char		 url[128];
	long		 left;
	CURL		*h;
	CURLcode	 c = CURLE_OK;

	if (f->deadline <= now)
		return err_why(why, whylen, WICK_ERR_TIMEOUT, "no answer "
		    "within %lld ms", (long long)d->o.timeout_ms);
	left = (long)(f->deadline - now);
	if (f->state == FETCH_PING)
		snprintf(url, sizeof(url), "http://localhost/_ping");
	else
		snprintf(url, sizeof(url), "http://localhost/v%s/containers/"
		    "%s/json", e->version, f->id);
	if ((h = curl.easy_init()) == NULL)
		return err_why(why, whylen, WICK_ERR_ALLOC, "out of memory");
	f->len = 0;
	f->over = f->nomem = 0;
	f->api[0] = '\0';
	f->errbuf[0] = '\0';
#define SET(opt, v)	do {						\
		if (c == CURLE_OK)					\
			c = curl.easy_setopt(h, opt, v);		\
	} while (0)
	SET(CURLOPT_URL, url);
	SET(CURLOPT_UNIX_SOCKET_PATH, e->socket);
	SET(CURLOPT_PRIVATE, (void *)f);
	SET(CURLOPT_WRITEFUNCTION, write_cb);
	SET(CURLOPT_WRITEDATA, (void *)f);
	SET(CURLOPT_ERRORBUFFER, f->errbuf);
	SET(CURLOPT_TIMEOUT_MS, left);
	SET(CURLOPT_CONNECTTIMEOUT_MS, left);
	SET(CURLOPT_NOSIGNAL, 1L);
	SET(CURLOPT_FOLLOWLOCATION, 0L);
	SET(CURLOPT_PROXY, "");
	SET(CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
	SET(CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)DOCKER_MAX_RESPONSE);
	SET(CURLOPT_USERAGENT, "wick-agent");
#if LIBCURL_VERSION_NUM >= 0x075500
	SET(CURLOPT_PROTOCOLS_STR, "http");
#else
	SET(CURLOPT_PROTOCOLS, (long)CURLPROTO_HTTP);
#endif
	if (f->state == FETCH_PING) {
		SET(CURLOPT_HEADERFUNCTION, header_cb);
		SET(CURLOPT_HEADERDATA, (void *)f);
	}
#undef SET
	if (c != CURLE_OK) {
		curl.easy_cleanup(h);
		return err_why(why, whylen, WICK_ERR_INTERNAL, "curl: %s",
		    curl.easy_strerror(c));
	}
	if (curl.multi_add_handle(d->multi, h) != CURLM_OK) {
		curl.easy_cleanup(h);
		return err_why(why, whylen, WICK_ERR_INTERNAL, "curl: cannot "
		    "add a transfer");
	}
	f->easy = h;
	return 0;
}

static void qtimer_cb(uv_timer_t *);

/*
 * Send f's first request and count it in flight.  Starting a request
 * never completes it (that happens on the loop), so no callback runs.
 */
static int
fetch_activate(struct fetch *f, char *why, size_t whylen)
{
	struct docker	*d = f->d;
	int		 r;

	f->state = d->eng[f->engine].version[0] != '\0' ? FETCH_INSPECT :
	    FETCH_PING;
	if ((r = transfer_start(f, why, whylen)) != 0)
		return r;
	f->next = d->active;
	if (f->next != NULL)
		f->next->prevp = &f->next;
	f->prevp = &d->active;
	d->active = f;
	d->nactive++;
	return 0;
}

/* Wake up for the first queued request's deadline. */
static void
qtimer_arm(struct docker *d)
{
	uint64_t	 now = uv_now(d->loop);

	if (d->qhead == NULL)
		(void)uv_timer_stop(&d->qtimer);
	else
		(void)uv_timer_start(&d->qtimer, qtimer_cb,
		    d->qhead->deadline > now ? d->qhead->deadline - now : 0,
		    0);
}

/*
 * Start queued requests while there is room; fail those whose deadline
 * passed.
 */
static void
pump(struct docker *d)
{
	struct fetch	*f;
	char		 why[WHY_LEN];
	int		 r;

	while (!d->torn && (f = d->qhead) != NULL) {
		if (f->deadline <= uv_now(d->loop)) {
			(void)queue_pop(d);
			(void)err_why(why, sizeof(why), WICK_ERR_TIMEOUT, "no "
			    "room for an engine request within %lld ms (%d in "
			    "flight)", (long long)d->o.timeout_ms,
			    DOCKER_MAX_FETCHES);
			fetch_finish(f, WICK_ERR_TIMEOUT, why, NULL);
			continue;
		}
		if (d->nactive >= DOCKER_MAX_FETCHES)
			break;
		(void)queue_pop(d);
		if ((r = fetch_activate(f, why, sizeof(why))) != 0)
			fetch_finish(f, r, why, NULL);
	}
	if (!d->torn)
		qtimer_arm(d);
}

/* An active request ended. */
static void
active_end(struct fetch *f, int r, const char *why, struct selector_set *sel)
{
	struct docker	*d = f->d;

	fetch_unlink(f);
	d->nactive--;
	fetch_finish(f, r, why, sel);
	pump(d);
}

/* The engine's own words, from an error answer {"message": "..."}. */
static void
engine_message(const struct fetch *f, char *out, size_t outlen)
{
	json_t		*j;
	const char	*s = NULL;
	size_t		 i;

	out[0] = '\0';
	j = json_loadb((const char *)f->body, f->len, JSON_REJECT_DUPLICATES,
	    NULL);
	if (json_is_object(j))
		(void)opt_string(j, "message", &s);
	if (s != NULL) {
		snprintf(out, outlen, ": %s", s);
		for (i = 0; out[i] != '\0'; i++)
			if ((unsigned char)out[i] < 0x20 ||
			    (unsigned char)out[i] >= 0x7f)
				out[i] = '?';
	}
	json_decref(j);
}

static int
curl_error(const struct fetch *f, CURLcode c, char *why, size_t whylen)
{
	const struct docker	*d = f->d;
	const char		*msg = f->errbuf[0] != '\0' ? f->errbuf :
				    curl.easy_strerror(c);

	if (f->over || c == CURLE_FILESIZE_EXCEEDED)
		return err_why(why, whylen, WICK_ERR_LIMIT, "answer larger "
		    "than %d bytes", DOCKER_MAX_RESPONSE);
	if (f->nomem || c == CURLE_OUT_OF_MEMORY)
		return err_why(why, whylen, WICK_ERR_ALLOC, "out of memory");
	switch (c) {
	case CURLE_OPERATION_TIMEDOUT:
		return err_why(why, whylen, WICK_ERR_TIMEOUT, "no answer "
		    "within %lld ms", (long long)d->o.timeout_ms);
	case CURLE_COULDNT_CONNECT:
		if (f->oserr != 0)
			return err_why(why, whylen, WICK_ERR_UNAVAILABLE,
			    "cannot connect to %s: %s",
			    d->eng[f->engine].socket, strerror((int)f->oserr));
		return err_why(why, whylen, WICK_ERR_UNAVAILABLE, "engine "
		    "not reachable: %s", msg);
	case CURLE_SEND_ERROR:
	case CURLE_RECV_ERROR:
	case CURLE_GOT_NOTHING:
		return err_why(why, whylen, WICK_ERR_UNAVAILABLE, "engine "
		    "not reachable: %s", msg);
	default:
		return err_why(why, whylen, WICK_ERR_PROTOCOL, "not an "
		    "answer from a container engine: %s", msg);
	}
}

/* Lower of ours and the engine's; DOCKER_API_VERSION_OLD if it is mute. */
static void
negotiate(struct engine *e, const char *theirs)
{
	unsigned	 ours = 0, v = 0;

	(void)version_parse(DOCKER_API_VERSION, &ours);
	if (theirs[0] == '\0' || version_parse(theirs, &v) != 0)
		snprintf(e->version, sizeof(e->version), "%s",
		    DOCKER_API_VERSION_OLD);
	else if (v < ours)
		snprintf(e->version, sizeof(e->version), "%u.%u", v / 1000,
		    v % 1000);
	else
		snprintf(e->version, sizeof(e->version), "%s",
		    DOCKER_API_VERSION);
}

/* One HTTP request of f ended (curl says c). */
static void
transfer_done(struct fetch *f, CURLcode c)
{
	struct docker		*d = f->d;
	struct engine		*e = &d->eng[f->engine];
	struct docker_info	 info;
	char			 why[WHY_LEN], msg[160];
	long			 status = 0;
	int			 r;

	(void)curl.easy_getinfo(f->easy, CURLINFO_RESPONSE_CODE, &status);
	f->oserr = 0;
	(void)curl.easy_getinfo(f->easy, CURLINFO_OS_ERRNO, &f->oserr);
	(void)curl.multi_remove_handle(d->multi, f->easy);
	curl.easy_cleanup(f->easy);
	f->easy = NULL;
	if (c != CURLE_OK) {
		r = curl_error(f, c, why, sizeof(why));
		/* Speak again after the engine is back: it may be another. */
		if (!e->fixed)
			e->version[0] = '\0';
		active_end(f, r, why, NULL);
		return;
	}
	if (f->state == FETCH_PING) {
		if (status != 200) {
			(void)err_why(why, sizeof(why), WICK_ERR_PROTOCOL,
			    "GET /_ping answered %ld", status);
			active_end(f, WICK_ERR_PROTOCOL, why, NULL);
			return;
		}
		negotiate(e, f->api);
		f->state = FETCH_INSPECT;
		if ((r = transfer_start(f, why, sizeof(why))) != 0)
			active_end(f, r, why, NULL);
		return;
	}
	if (status == 404) {
		cache_drop(d, f->engine, f->id);
		(void)err_why(why, sizeof(why), WICK_ERR_NOT_FOUND, "container "
		    "%.12s is not known to the engine at %s", f->id, e->socket);
		active_end(f, WICK_ERR_NOT_FOUND, why, NULL);
		return;
	}
	if (status != 200) {
		engine_message(f, msg, sizeof(msg));
		(void)err_why(why, sizeof(why), WICK_ERR_PROTOCOL, "GET "
		    "/v%s/containers/<id>/json answered %ld%s", e->version,
		    status, msg);
		/* A version the engine refuses: ask it again next time. */
		if (status == 400 && !e->fixed)
			e->version[0] = '\0';
		active_end(f, WICK_ERR_PROTOCOL, why, NULL);
		return;
	}
	if ((r = docker_parse_inspect(f->body, f->len, &info, why,
	    sizeof(why))) == 0) {
		if (strcmp(info.id, f->id) != 0)
			r = err_why(why, sizeof(why), WICK_ERR_INVALID, "the "
			    "engine answered for container %.12s",
			    info.id);
		else if (!info.running)
			r = err_why(why, sizeof(why), WICK_ERR_STATE,
			    "container %.12s is not running", f->id);
		else if (info.skipped > 0)
			log_warn_rl(&d->rl, "docker: container %.12s: %zu "
			    "labels or environment variables cannot be "
			    "selectors (too long, a control character, a "
			    "label key with ':') and were skipped", f->id,
			    info.skipped);
	}
	if (r == 0)
		active_end(f, 0, NULL, &info.sel);
	else
		active_end(f, r, why, NULL);
	docker_info_cleanup(&info);
}

static void
check_done(struct docker *d)
{
	CURLMsg		*m;
	char		*p;
	int		 left;

	while (!d->torn && (m = curl.multi_info_read(d->multi,
	    &left)) != NULL) {
		if (m->msg != CURLMSG_DONE)
			continue;
		p = NULL;
		(void)curl.easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, &p);
		if (p != NULL)
			transfer_done((struct fetch *)(void *)p,
			    m->data.result);
	}
}

/*
 * libuv and libcurl glue.
 */

/* The last handle of a torn-down attestor closed: free it, say so. */
static void
handle_closed(struct docker *d)
{
	void	(*done)(void *);
	void	*arg;

	if (--d->pending > 0 || !d->torn)
		return;
	done = d->close_done;
	arg = d->close_arg;
	free(d);
	curl.global_cleanup();
	if (done != NULL)
		done(arg);
}

static void
dsock_close_cb(uv_handle_t *h)
{
	struct dsock	*ds = h->data;
	struct docker	*d = ds->d;

	free(ds);
	handle_closed(d);
}

static void
dsock_close(struct dsock *ds)
{
	if (ds->prevp != NULL) {
		if (ds->next != NULL)
			ds->next->prevp = ds->prevp;
		*ds->prevp = ds->next;
		ds->next = NULL;
		ds->prevp = NULL;
	}
	(void)uv_poll_stop(&ds->poll);
	ds->d->pending++;
	uv_close((uv_handle_t *)&ds->poll, dsock_close_cb);
}

static void
poll_cb(uv_poll_t *h, int status, int events)
{
	struct dsock	*ds = h->data;
	struct docker	*d = ds->d;
	int		 flags = 0, running;

	if (d->torn)
		return;
	if (status < 0)
		flags = CURL_CSELECT_ERR;
	else {
		if (events & UV_READABLE)
			flags |= CURL_CSELECT_IN;
		if (events & UV_WRITABLE)
			flags |= CURL_CSELECT_OUT;
	}
	d->busy++;
	(void)curl.multi_socket_action(d->multi, ds->fd, flags, &running);
	check_done(d);
	busy_done(d);
}

static void
timeout_cb(uv_timer_t *t)
{
	struct docker	*d = t->data;
	int		 running;

	if (d->torn)
		return;
	d->busy++;
	(void)curl.multi_socket_action(d->multi, CURL_SOCKET_TIMEOUT, 0,
	    &running);
	check_done(d);
	busy_done(d);
}

static void
qtimer_cb(uv_timer_t *t)
{
	struct docker	*d = t->data;

	if (d->torn)
		return;
	d->busy++;
	pump(d);
	busy_done(d);
}

static int
curl_sock_cb(CURL *e, curl_socket_t s, int what, void *userp, void *sockp)
{
	struct docker	*d = userp;
	struct dsock	*ds = sockp;
	int		 ev = 0;

	if (what == CURL_POLL_REMOVE) {
		if (ds != NULL) {
			if (!d->torn)
				(void)curl.multi_assign(d->multi, s, NULL);
			dsock_close(ds);
		}
		return 0;
	}
	if (d->torn)
		return -1;
	if (ds == NULL) {
		if ((ds = calloc(1, sizeof(*ds))) == NULL)
			return -1;
		if (uv_poll_init_socket(d->loop, &ds->poll, s) != 0) {
			free(ds);
			return -1;
		}
		ds->d = d;
		ds->fd = s;
		ds->poll.data = ds;
		ds->next = d->socks;
		if (ds->next != NULL)
			ds->next->prevp = &ds->next;
		ds->prevp = &d->socks;
		d->socks = ds;
		(void)curl.multi_assign(d->multi, s, ds);
	}
	if (what & CURL_POLL_IN)
		ev |= UV_READABLE;
	if (what & CURL_POLL_OUT)
		ev |= UV_WRITABLE;
	return uv_poll_start(&ds->poll, ev, poll_cb) == 0 ? 0 : -1;
}

static int
curl_timer_cb(CURLM *m, long ms, void *userp)
{
	struct docker	*d = userp;

	if (d->torn)
		return 0;
	if (ms < 0)
		(void)uv_timer_stop(&d->timer);
	else
		(void)uv_timer_start(&d->timer, timeout_cb, (uint64_t)ms, 0);
	return 0;
}

/*
 * The interface.
 */

static void
timer_close_cb(uv_handle_t *h)
{
	handle_closed(h->data);
}

static void
docker_free_state(struct docker *d)
{
	size_t	 i;

	for (i = 0; i < d->ncache; i++)
		centry_free(d->cache[i]);
	d->ncache = 0;
	for (i = 0; i < d->nmounts; i++) {
		free(d->mounts[i].dir);
		free(d->mounts[i].opts);
	}
	d->nmounts = 0;
	for (i = 0; i < d->nmatchers; i++)
		free(d->matchers[i]);
	free(d->matchers);
	d->matchers = NULL;
	for (i = 0; i < NENGINES; i++)
		free(d->eng[i].socket);
	free(d->proc_root);
}

static void
teardown(struct docker *d)
{
	struct fetch	*f;

	d->torn = 1;
	while ((f = d->active) != NULL) {
		fetch_unlink(f);
		fetch_free(f);
	}
	while ((f = queue_pop(d)) != NULL)
		fetch_free(f);
	(void)curl.multi_cleanup(d->multi);
	d->multi = NULL;
	while (d->socks != NULL)
		dsock_close(d->socks);
	docker_free_state(d);
	d->pending += 2;
	uv_close((uv_handle_t *)&d->timer, timer_close_cb);
	uv_close((uv_handle_t *)&d->qtimer, timer_close_cb);
}

void
docker_close(struct docker *d, void (*done)(void *), void *arg)
{
	struct fetch	*f;

	if (d == NULL || d->closing)
		return;
	d->closing = 1;
	d->close_done = done;
	d->close_arg = arg;
	d->busy++;
	for (f = d->active; f != NULL; f = f->next)
		deliver(d, &f->waiters, WICK_ERR_CANCELLED, "the docker "
		    "attestor is closing", NULL);
	for (f = d->qhead; f != NULL; f = f->next)
		deliver(d, &f->waiters, WICK_ERR_CANCELLED, "the docker "
		    "attestor is closing", NULL);
	busy_done(d);
}

static int
copy_opts(struct docker *d, const struct docker_opts *o)
{
	size_t	 i;

	d->o = *o;
	d->o.matchers = NULL;
	d->o.nmatchers = 0;
	d->o.socket_path = d->o.podman_socket_path = d->o.version = NULL;
	if (d->o.timeout_ms <= 0)
		d->o.timeout_ms = DOCKER_DEFAULT_TIMEOUT_MS;
	if ((d->proc_root = strdup(o->proc_root != NULL ? o->proc_root :
	    "/proc")) == NULL)
		return WICK_ERR_ALLOC;
	d->o.proc_root = d->proc_root;
	d->eng[ENGINE_DOCKER].opt = "docker_socket_path";
	d->eng[ENGINE_PODMAN].opt = "podman_socket_path";
	if ((d->eng[ENGINE_DOCKER].socket = strdup(o->socket_path != NULL ?
	    o->socket_path : DOCKER_DEFAULT_SOCKET)) == NULL ||
	    (d->eng[ENGINE_PODMAN].socket = strdup(o->podman_socket_path !=
	    NULL ? o->podman_socket_path : DOCKER_DEFAULT_PODMAN_SOCKET)) ==
	    NULL)
		return WICK_ERR_ALLOC;
	for (i = 0; i < NENGINES; i++) {
		if (o->version != NULL && o->version[0] != '\0') {
			snprintf(d->eng[i].version, sizeof(d->eng[i].version),
			    "%s", o->version);
			d->eng[i].fixed = 1;
		}
	}
	if (o->nmatchers > 0) {
		if ((d->matchers = calloc(o->nmatchers,
		    sizeof(char *))) == NULL)
			return WICK_ERR_ALLOC;
		for (i = 0; i < o->nmatchers; i++) {
			if ((d->matchers[i] = strdup(o->matchers[i])) == NULL)
				return WICK_ERR_ALLOC;
			d->nmatchers++;
		}
	}
	d->o.matchers = d->matchers;
	d->o.nmatchers = d->nmatchers;
	return 0;
}

int
docker_new(uv_loop_t *loop, const struct docker_opts *o,
    struct docker **out)
{
	struct docker		*d;
	struct docker_found	 f;
	char			 path[PATH_MAX], why[WHY_LEN], *mi = NULL;
	size_t			 milen;
	int			 r;

	*out = NULL;
	if ((r = curl_load()) != 0)
		return r;
	if ((d = calloc(1, sizeof(*d))) == NULL)
		return WICK_ERR_ALLOC;
	d->loop = loop;
	d->qtail = &d->qhead;
	d->rl = (struct log_ratelimit)LOG_RATELIMIT_DEFAULT;
	if ((r = copy_opts(d, o)) != 0)
		goto out;
	snprintf(path, sizeof(path), "%s/self/mountinfo", d->proc_root);
	if ((r = read_proc(path, DOCKER_MAX_MOUNTINFO, &mi, &milen, why,
	    sizeof(why))) != 0 ||
	    (r = mounts_load(d, mi, milen, why, sizeof(why))) != 0) {
		log_error("docker: %s", why);
		goto out;
	}
	r = docker_mountinfo_id(mi, milen, &f, why, sizeof(why));
	if (r == 0)
		memcpy(d->self_id, f.id, sizeof(d->self_id));
	else if (r != WICK_ERR_NOT_FOUND)
		log_warn("docker: which container the agent runs in is "
		    "unclear (%s): processes that share its cgroup get no "
		    "docker selectors", why);
	if (curl.global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		r = WICK_ERR_INTERNAL;
		goto out;
	}
	d->global = 1;
	if ((d->multi = curl.multi_init()) == NULL ||
	    curl.multi_setopt(d->multi, CURLMOPT_SOCKETFUNCTION,
	    curl_sock_cb) != CURLM_OK ||
	    curl.multi_setopt(d->multi, CURLMOPT_SOCKETDATA, d) != CURLM_OK ||
	    curl.multi_setopt(d->multi, CURLMOPT_TIMERFUNCTION,
	    curl_timer_cb) != CURLM_OK ||
	    curl.multi_setopt(d->multi, CURLMOPT_TIMERDATA, d) != CURLM_OK ||
	    curl.multi_setopt(d->multi, CURLMOPT_MAXCONNECTS,
	    (long)DOCKER_MAX_FETCHES) != CURLM_OK) {
		r = WICK_ERR_ALLOC;
		goto out;
	}
	if ((r = uv_timer_init(loop, &d->timer)) != 0 ||
	    (r = uv_timer_init(loop, &d->qtimer)) != 0) {
		/* Never fails on Linux; handles cannot be half-made here. */
		r = err_from_uv(r);
		goto out;
	}
	d->timer.data = d;
	d->qtimer.data = d;
	*out = d;
	d = NULL;
	r = 0;
out:
	free(mi);
	if (d != NULL) {
		if (d->multi != NULL)
			(void)curl.multi_cleanup(d->multi);
		if (d->global)
			curl.global_cleanup();
		docker_free_state(d);
		free(d);
	}
	return r;
}

int
docker_attest(struct docker *d, const struct peercred *cred,
    struct selector_set *out, docker_done_fn *done, void *arg,
    struct docker_req **reqp)
{
	struct docker_req	*q, *o;
	struct centry		*ce;
	struct fetch		*f;
	struct where		 w;
	char			 why[WHY_LEN];
	size_t			 n;
	int			 r;

	*reqp = NULL;
	if (d->closing)
		return WICK_ERR_STATE;
	d->busy++;
	uv_update_time(d->loop);
	if ((r = locate(d, cred, &w, why, sizeof(why))) != 0) {
		/* No container: no docker selectors, and no error. */
		if (r == WICK_ERR_NOT_FOUND)
			done(arg, 0, NULL);
		else
			done(arg, r, why);
		goto out;
	}
	if ((ce = cache_find(d, &w, uv_now(d->loop))) != NULL) {
		r = apply(out, &ce->sel, why, sizeof(why));
		done(arg, r, r == 0 ? NULL : why);
		goto out;
	}
	if (d->nreqs >= DOCKER_MAX_REQS) {
		done(arg, WICK_ERR_LIMIT, "too many attestations are waiting "
		    "for the container engine");
		goto out;
	}
	if ((q = calloc(1, sizeof(*q))) == NULL) {
		done(arg, WICK_ERR_ALLOC, "out of memory");
		goto out;
	}
	q->d = d;
	q->out = out;
	q->done = done;
	q->arg = arg;
	/* One request per container: join one in flight or queued. */
	for (f = d->active; f != NULL; f = f->next)
		if (f->engine == w.engine && strcmp(f->id, w.id) == 0)
			break;
	if (f == NULL)
		for (f = d->qhead; f != NULL; f = f->next)
			if (f->engine == w.engine && strcmp(f->id, w.id) == 0)
				break;
	for (n = 0, o = f != NULL ? f->waiters : NULL; o != NULL &&
	    n < DOCKER_MAX_WAITERS; o = o->next)
		n++;
	if (n == DOCKER_MAX_WAITERS) {
		free(q);
		done(arg, WICK_ERR_LIMIT, "too many attestations of this "
		    "container are waiting for the container engine");
		goto out;
	}
	if (f == NULL) {
		if (d->nqueued >= DOCKER_MAX_QUEUED) {
			free(q);
			done(arg, WICK_ERR_LIMIT, "too many engine requests "
			    "are waiting");
			goto out;
		}
		if ((f = calloc(1, sizeof(*f))) == NULL) {
			free(q);
			done(arg, WICK_ERR_ALLOC, "out of memory");
			goto out;
		}
		f->d = d;
		f->engine = w.engine;
		memcpy(f->id, w.id, sizeof(f->id));
		f->cg_known = w.cg_known;
		f->cg_dev = w.cg_dev;
		f->cg_ino = w.cg_ino;
		f->deadline = uv_now(d->loop) + (uint64_t)d->o.timeout_ms;
		if (d->qhead != NULL || d->nactive >= DOCKER_MAX_FETCHES) {
			queue_push(d, f);
			if (!uv_is_active((uv_handle_t *)&d->qtimer))
				qtimer_arm(d);
		} else if ((r = fetch_activate(f, why, sizeof(why))) != 0) {
			fetch_log(f, r, why);
			fetch_free(f);
			free(q);
			done(arg, r, why);
			goto out;
		}
	}
	req_link(&f->waiters, q);
	d->nreqs++;
	*reqp = q;
out:
	busy_done(d);
	return 0;
}

void
docker_cancel(struct docker_req *q)
{
	if (q == NULL)
		return;
	req_unlink(q);
	q->d->nreqs--;
	free(q);
}
