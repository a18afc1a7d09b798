/*
 * spiffeid.c: SPIFFE ID and trust-domain parsing.
 */
#include <stdio.h>
#include <string.h>

#include "spiffeid.h"

static int
td_char(int c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	    c == '.' || c == '-' || c == '_';
}

static int
path_char(int c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9') || c == '.' || c == '-' || c == '_';
}

static int
fail(const char **why, const char *msg)
{
	if (why != NULL)
		*why = msg;
	return WICK_ERR_INVALID;
}

/* A trust domain name of n bytes at s. */
static int
td_check(const char *s, size_t n, unsigned flags, const char **why)
{
	size_t i;

	if (n == 0)
		return fail(why, "trust domain is missing");
	if (n > SPIFFEID_MAX_TD_LEN)
		return fail(why, "trust domain is longer than 255 bytes");
	for (i = 0; i < n; i++) {
		if (s[i] == '%')
			return fail(why, "trust domain cannot be "
			    "percent-encoded");
		if (s[i] == ':' || s[i] == '@')
			return fail(why, "trust domain cannot contain a port "
			    "or user info");
		if (!td_char((unsigned char)s[i]))
			return fail(why, "trust domain characters are limited "
			    "to lowercase letters, numbers, dots, dashes, and "
			    "underscores");
	}
	if (flags & SPIFFEID_STRICT) {
		if (memchr(s, '_', n) != NULL)
			return fail(why, "trust domain cannot contain "
			    "underscores (strict mode)");
		if (s[0] == '-' || s[0] == '.' || s[n - 1] == '-' ||
		    s[n - 1] == '.')
			return fail(why, "trust domain cannot start or end "
			    "with a dash or a dot (strict mode)");
		for (i = 0; i + 1 < n; i++)
			if (s[i] == '.' && s[i + 1] == '.')
				return fail(why, "trust domain cannot contain "
				    "empty labels (strict mode)");
	}
	return 0;
}

int
spiffeid_path_check(const char *p, const char **why)
{
	const char	*seg, *end;
	size_t		 len;

	if (*p == '\0')
		return 0;
	if (*p != '/')
		return fail(why, "path must have a leading slash");
	while (*p == '/') {
		seg = p + 1;
		end = strchr(seg, '/');
		len = end != NULL ? (size_t)(end - seg) : strlen(seg);
		if (len == 0)
			return fail(why, end == NULL ? "path cannot have a "
			    "trailing slash" : "path cannot contain empty "
			    "segments");
		if ((len == 1 && seg[0] == '.') ||
		    (len == 2 && seg[0] == '.' && seg[1] == '.'))
			return fail(why, "path cannot contain dot segments");
		for (p = seg; p < seg + len; p++) {
			if (*p == '%')
				return fail(why, "path cannot be "
				    "percent-encoded");
			if (!path_char((unsigned char)*p))
				return fail(why, "path segment characters are "
				    "limited to letters, numbers, dots, "
				    "dashes, and underscores");
		}
		if (end == NULL)
			break;
		p = end;
	}
	return 0;
}

int
spiffeid_parse(const char *s, unsigned flags, struct spiffeid *out,
    const char **why)
{
	const char	*rest, *slash;
	size_t		 len, tdlen;
	int		 r;

	memset(out, 0, sizeof(*out));
	if (s == NULL || *s == '\0')
		return fail(why, "cannot be empty");
	len = strlen(s);
	if (len > SPIFFEID_MAX_LEN)
		return fail(why, "SPIFFE ID is longer than 2048 bytes");
	if (strncmp(s, SPIFFEID_SCHEME, strlen(SPIFFEID_SCHEME)) != 0)
		return fail(why, "scheme is missing or invalid");
	rest = s + strlen(SPIFFEID_SCHEME);
	if (strpbrk(rest, "?#") != NULL)
		return fail(why, "SPIFFE ID cannot contain a query or a "
		    "fragment");
	slash = strchr(rest, '/');
	tdlen = slash != NULL ? (size_t)(slash - rest) : strlen(rest);
	if ((r = td_check(rest, tdlen, flags, why)) != 0)
		return r;
	if (slash != NULL && (r = spiffeid_path_check(slash, why)) != 0)
		return r;
	if (slash == NULL && !(flags & SPIFFEID_ALLOW_ROOT))
		return fail(why, "SPIFFE ID has no path (it names a trust "
		    "domain, not a workload)");
	memcpy(out->td, rest, tdlen);
	out->td[tdlen] = '\0';
	if (slash != NULL)
		snprintf(out->path, sizeof(out->path), "%s", slash);
	return 0;
}

int
spiffeid_td_parse(const char *s, unsigned flags,
    char td[SPIFFEID_MAX_TD_LEN + 1], const char **why)
{
	struct spiffeid	 id;
	size_t		 n;
	int		 r;

	td[0] = '\0';
	if (s == NULL || *s == '\0')
		return fail(why, "trust domain is missing");
	if (strncmp(s, SPIFFEID_SCHEME, strlen(SPIFFEID_SCHEME)) == 0) {
		if ((r = spiffeid_parse(s, flags | SPIFFEID_ALLOW_ROOT, &id,
		    why)) != 0)
			return r;
		if (id.path[0] != '\0')
			return fail(why, "a trust domain ID has no path");
		memcpy(td, id.td, strlen(id.td) + 1);
		return 0;
	}
	if (strstr(s, "://") != NULL)
		return fail(why, "scheme is missing or invalid");
	n = strlen(s);
	if ((r = td_check(s, n, flags, why)) != 0)
		return r;
	memcpy(td, s, n + 1);
	return 0;
}

int
spiffeid_format(const struct spiffeid *id, char *out, size_t outlen)
{
	int n;

	n = snprintf(out, outlen, "%s%s%s", SPIFFEID_SCHEME, id->td, id->path);
	if (n < 0 || (size_t)n >= outlen)
		return WICK_ERR_LIMIT;
	return 0;
}

int
spiffeid_member_of(const struct spiffeid *id, const char *td)
{
	return strcmp(id->td, td) == 0;
}

int
spiffeid_is_reserved(const struct spiffeid *id)
{
	return strcmp(id->path, "/spire") == 0 ||
	    strncmp(id->path, "/spire/", 7) == 0;
}

static int
spiffeid_build(const char *td, const char *path, struct spiffeid *out)
{
	char		 buf[SPIFFEID_MAX_LEN + 2];
	const char	*why;
	int		 n;

	n = snprintf(buf, sizeof(buf), "%s%s%s", SPIFFEID_SCHEME, td, path);
	if (n < 0 || (size_t)n >= sizeof(buf))
		return WICK_ERR_LIMIT;
	return spiffeid_parse(buf, 0, out, &why);
}

int
spiffeid_join_token_agent(const char *td, const char *token,
    struct spiffeid *out)
{
	char path[SPIFFEID_MAX_LEN + 1];
	int  n;

	n = snprintf(path, sizeof(path), "/spire/agent/join_token/%s", token);
	if (n < 0 || (size_t)n >= sizeof(path))
		return WICK_ERR_LIMIT;
	return spiffeid_build(td, path, out);
}

int
spiffeid_server(const char *td, struct spiffeid *out)
{
	return spiffeid_build(td, "/spire/server", out);
}
