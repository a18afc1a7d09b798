/*
 * secpath.c: the walk from / down behind every check of secpath.h.
 *
 * The path is resolved one component at a time, as the kernel resolves
 * it, but with lstat(): cur is the part resolved so far (no symbolic
 * links, no "." or ".."), rest what is left.  A symbolic link that passes
 * the owner rule has its target put in front of what is left.
 */
#include <sys/stat.h>

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "secpath.h"

enum walk_kind {
	WALK_DIR = 0,
	WALK_FILE,
	WALK_SOCKET,
};

struct walk {
	enum walk_kind	 kind;
	uid_t		 euid;
	int		 create;	/* mkdir() what is missing */
	mode_t		 mode;		/* of the last directory */
	int		 delegate;	/* see secpath_check_socket() */
	char		 cur[PATH_MAX];
	size_t		 curlen;
	int		 cur_open;	/* cur is writable by others */
	int		 root_open;	/* so is / */
	int		 created;	/* cur was made by this walk */
	int		 nlinks;
	char		*why;
	size_t		 whylen;
};

static int	say(struct walk *, int, const char *, ...)
		    __attribute__((format(printf, 3, 4)));

static int
say(struct walk *w, int r, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	(void)vsnprintf(w->why, w->whylen, fmt, ap);
	va_end(ap);
	return r;
}

static const char *
cur_name(const struct walk *w)
{
	return w->curlen == 0 ? "/" : w->cur;
}

static unsigned
perm(const struct stat *st)
{
	return (unsigned)(st->st_mode & 07777);
}

static int
say_owner(struct walk *w, const char *name, const struct stat *st)
{
	if (S_ISLNK(st->st_mode))
		return say(w, WICK_ERR_PERM, "%s: symbolic link owned by uid "
		    "%u, not by root or uid %u", name, (unsigned)st->st_uid,
		    (unsigned)w->euid);
	return say(w, WICK_ERR_PERM, "%s: owned by uid %u (mode %04o), not by "
	    "root or uid %u", name, (unsigned)st->st_uid, perm(st),
	    (unsigned)w->euid);
}

static int
say_writable(struct walk *w, const char *name, const struct stat *st)
{
	return say(w, WICK_ERR_PERM, "%s: writable by group or others (owner "
	    "uid %u, mode %04o)", name, (unsigned)st->st_uid, perm(st));
}

/* root or us: whose sticky directories are acceptable parents */
static int
trusted(const struct walk *w, uid_t uid)
{
	return uid == 0 || uid == w->euid;
}

/* The owner rule for a component of cur. */
static int
owner_ok(const struct walk *w, uid_t uid)
{
	return trusted(w, uid) || (w->delegate && !w->cur_open);
}

/* A directory above the last component: closed, or sticky and trusted. */
static int
check_parent_dir(struct walk *w, const char *name, const struct stat *st,
    int *open)
{
	*open = 0;
	if (!S_ISDIR(st->st_mode))
		return say(w, WICK_ERR_INVALID, "%s: not a directory", name);
	if ((st->st_mode & 022) == 0)
		return 0;
	if ((st->st_mode & S_ISVTX) == 0 || !trusted(w, st->st_uid))
		return say_writable(w, name, st);
	*open = 1;
	return 0;
}

/* Make a missing component, with its mode set exactly. */
static int
make_dir(struct walk *w, const char *name, int last)
{
	mode_t mode = last ? w->mode : SECPATH_PARENT_MODE;

	if (mkdir(name, mode) != 0) {
		if (errno == EEXIST)
			return 0;	/* someone was first: examined again */
		return say(w, WICK_ERR_IO, "%s: cannot create: %s", name,
		    strerror(errno));
	}
	/* Nobody else can remove or rename it: cur is closed or sticky. */
	if (chmod(name, mode) != 0)
		return say(w, WICK_ERR_IO, "%s: cannot set mode %04o: %s",
		    name, (unsigned)mode, strerror(errno));
	w->created = last;
	return 0;
}

/* Put a symbolic link's target in front of what is left of the path. */
static int
follow(struct walk *w, const char *name, const char *left, char **rest)
{
	char	 target[PATH_MAX], *p;
	ssize_t	 n;
	size_t	 len;

	if (++w->nlinks > SECPATH_MAX_LINKS)
		return say(w, WICK_ERR_LIMIT, "%s: more than %d symbolic links",
		    name, SECPATH_MAX_LINKS);
	if ((n = readlink(name, target, sizeof(target))) < 0)
		return say(w, WICK_ERR_IO, "%s: %s", name, strerror(errno));
	if (n == 0 || (size_t)n >= sizeof(target))
		return say(w, WICK_ERR_LIMIT, "%s: link target too long",
		    name);
	len = (size_t)n + 1 + strlen(left) + 1;
	if ((p = malloc(len)) == NULL)
		return say(w, WICK_ERR_ALLOC, "out of memory");
	(void)snprintf(p, len, "%.*s/%s", (int)n, target, left);
	free(*rest);
	*rest = p;
	if (target[0] == '/') {
		w->cur[0] = '\0';
		w->curlen = 0;
		w->cur_open = w->root_open;
	}
	return 0;
}

/* "..": back to cur's parent, which was checked on the way down. */
static int
up(struct walk *w)
{
	struct stat	 st;
	char		*slash;

	if ((slash = strrchr(w->cur, '/')) != NULL) {
		*slash = '\0';
		w->curlen = (size_t)(slash - w->cur);
	}
	w->created = 0;
	if (lstat(cur_name(w), &st) != 0)
		return say(w, WICK_ERR_IO, "%s: %s", cur_name(w),
		    strerror(errno));
	w->cur_open = (st.st_mode & 022) != 0;
	return 0;
}

/*
 * One component: lstat(), create, then follow it (*rest is new) or check
 * it and append it to cur.
 */
static int
step(struct walk *w, const char *name, size_t len, int last,
    const char *left, char **rest)
{
	struct stat	 st;
	char		 cand[PATH_MAX];
	int		 tries = 0, open = 0, r;

	if (w->curlen + 1 + len >= sizeof(cand))
		return say(w, WICK_ERR_LIMIT, "%s/%.*s: path too long",
		    w->cur, (int)len, name);
	memcpy(cand, w->cur, w->curlen);
	cand[w->curlen] = '/';
	memcpy(cand + w->curlen + 1, name, len);
	cand[w->curlen + 1 + len] = '\0';
	w->created = 0;
	while (lstat(cand, &st) != 0) {
		if (errno != ENOENT)
			return say(w, WICK_ERR_IO, "%s: %s", cand,
			    strerror(errno));
		if (!w->create)
			return say(w, WICK_ERR_NOT_FOUND, "%s: no such file "
			    "or directory", cand);
		if (tries++ > 0)
			return say(w, WICK_ERR_IO, "%s: removed while being "
			    "created", cand);
		if ((r = make_dir(w, cand, last)) != 0)
			return r;
	}
	if (!owner_ok(w, st.st_uid))
		return say_owner(w, cand, &st);
	if (S_ISLNK(st.st_mode))
		return follow(w, cand, left, rest);
	if (!last && (r = check_parent_dir(w, cand, &st, &open)) != 0)
		return r;
	memcpy(w->cur, cand, strlen(cand) + 1);
	w->curlen = strlen(cand);
	w->cur_open = open;
	return 0;
}

/* The last component, whatever path led to it. */
static int
check_last(struct walk *w)
{
	struct stat	 st;
	const char	*name = cur_name(w);

	if (lstat(name, &st) != 0)
		return say(w, WICK_ERR_IO, "%s: %s", name, strerror(errno));
	switch (w->kind) {
	case WALK_DIR:
		if (!S_ISDIR(st.st_mode))
			return say(w, WICK_ERR_INVALID, "%s: not a directory",
			    name);
		if ((st.st_mode & 022) != 0)
			return say_writable(w, name, &st);
		if (w->created)
			return 0;
		if (st.st_uid != w->euid)
			return say(w, WICK_ERR_PERM, "%s: owned by uid %u "
			    "(mode %04o), not by this process (uid %u)", name,
			    (unsigned)st.st_uid, perm(&st), (unsigned)w->euid);
		if ((st.st_mode & 0777 & ~w->mode) != 0)
			return say(w, WICK_ERR_PERM, "%s: mode %04o is more "
			    "open than %04o (owner uid %u)", name, perm(&st),
			    (unsigned)w->mode, (unsigned)st.st_uid);
		return 0;
	case WALK_FILE:
		if (!S_ISREG(st.st_mode))
			return say(w, WICK_ERR_INVALID, "%s: not a regular "
			    "file", name);
		if ((st.st_mode & 022) != 0)
			return say_writable(w, name, &st);
		return 0;
	case WALK_SOCKET:
		if (!S_ISSOCK(st.st_mode))
			return say(w, WICK_ERR_INVALID, "%s: not a socket",
			    name);
		return 0;
	}
	return say(w, WICK_ERR_INTERNAL, "%s: unknown kind", name);
}

static int
walk(struct walk *w, const char *path)
{
	struct stat	 st;
	char		 cwd[PATH_MAX], *rest = NULL;
	const char	*p, *name, *q;
	size_t		 len;
	int		 n, last, r;

	w->euid = geteuid();
	w->cur[0] = '\0';
	w->curlen = 0;
	(void)snprintf(w->why, w->whylen, "%s", "");
	if (*path == '\0')
		return say(w, WICK_ERR_INVALID, "empty path");
	if (*path != '/' && getcwd(cwd, sizeof(cwd)) == NULL)
		return say(w, WICK_ERR_IO, "%s: cannot find the working "
		    "directory: %s", path, strerror(errno));
	len = (*path == '/' ? 0 : strlen(cwd) + 1) + strlen(path) + 1;
	if ((rest = malloc(len)) == NULL)
		return say(w, WICK_ERR_ALLOC, "out of memory");
	(void)snprintf(rest, len, "%s%s%s", *path == '/' ? "" : cwd,
	    *path == '/' ? "" : "/", path);
	if (lstat("/", &st) != 0) {
		r = say(w, WICK_ERR_IO, "/: %s", strerror(errno));
		goto out;
	}
	if (!trusted(w, st.st_uid)) {
		r = say_owner(w, "/", &st);
		goto out;
	}
	if ((r = check_parent_dir(w, "/", &st, &w->root_open)) != 0)
		goto out;
	w->cur_open = w->root_open;
	p = rest;
	for (;;) {
		while (*p == '/')
			p++;
		if (*p == '\0')
			break;
		name = p;
		while (*p != '\0' && *p != '/')
			p++;
		len = (size_t)(p - name);
		for (q = p; *q == '/'; q++)
			;
		last = *q == '\0';
		if (len == 1 && name[0] == '.')
			continue;
		if (len == 2 && name[0] == '.' && name[1] == '.') {
			if ((r = up(w)) != 0)
				goto out;
			continue;
		}
		n = w->nlinks;
		if ((r = step(w, name, len, last, p, &rest)) != 0)
			goto out;
		if (w->nlinks != n)	/* a link was followed: rest is new */
			p = rest;
	}
	r = check_last(w);
out:
	free(rest);
	return r;
}

int
secpath_mkdir(const char *dir, mode_t mode, char *why, size_t whylen)
{
	struct walk w;

	memset(&w, 0, sizeof(w));
	w.kind = WALK_DIR;
	w.create = 1;
	w.mode = mode & 0777;
	w.why = why;
	w.whylen = whylen;
	return walk(&w, dir);
}

int
secpath_mkdir_parent(const char *path, mode_t mode, char *why,
    size_t whylen)
{
	char	*d, *slash;
	size_t	 len;
	int	 r;

	(void)snprintf(why, whylen, "%s", "");
	if ((d = strdup(path)) == NULL) {
		(void)snprintf(why, whylen, "out of memory");
		return WICK_ERR_ALLOC;
	}
	for (len = strlen(d); len > 1 && d[len - 1] == '/'; len--)
		d[len - 1] = '\0';
	if ((slash = strrchr(d, '/')) == NULL)
		r = secpath_mkdir(".", mode, why, whylen);
	else if (slash == d)
		r = secpath_mkdir("/", mode, why, whylen);
	else {
		*slash = '\0';
		r = secpath_mkdir(d, mode, why, whylen);
	}
	free(d);
	return r;
}

int
secpath_check_file(const char *path, char *why, size_t whylen)
{
	struct walk w;

	memset(&w, 0, sizeof(w));
	w.kind = WALK_FILE;
	w.why = why;
	w.whylen = whylen;
	return walk(&w, path);
}

int
secpath_check_socket(const char *path, char *why, size_t whylen)
{
	struct walk w;

	memset(&w, 0, sizeof(w));
	w.kind = WALK_SOCKET;
	w.delegate = 1;
	w.why = why;
	w.whylen = whylen;
	return walk(&w, path);
}
