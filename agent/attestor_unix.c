/*
 * attestor_unix.c: the unix workload attestor.
 */
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "attestor.h"
#include "encode.h"

#define STATUS_MAX	(64 * 1024)

static int
add_num(struct selector_set *set, const char *what, unsigned long v,
    char *why, size_t whylen)
{
	char		 val[64];
	const char	*w;

	snprintf(val, sizeof(val), "%s:%lu", what, v);
	if (selector_set_add(set, "unix", val, &w) != 0) {
		snprintf(why, whylen, "selector %s: %s", val, w);
		return WICK_ERR_LIMIT;
	}
	return 0;
}

static int
add_name(struct selector_set *set, const char *what, const char *name,
    char *why, size_t whylen)
{
	char		 val[SELECTOR_MAX_VALUE_LEN];
	const char	*w;

	if (snprintf(val, sizeof(val), "%s:%s", what, name) >=
	    (int)sizeof(val))
		return 0;	/* absurd name: skip it, as a failed lookup */
	if (selector_set_add(set, "unix", val, &w) != 0) {
		snprintf(why, whylen, "selector %s: %s", val, w);
		return WICK_ERR_LIMIT;
	}
	return 0;
}

static const char *
user_name(uid_t uid, char *buf, size_t len)
{
	struct passwd	pw, *res = NULL;

	if (getpwuid_r(uid, &pw, buf, len, &res) != 0 || res == NULL)
		return NULL;
	return res->pw_name;
}

static const char *
group_name(gid_t gid, char *buf, size_t len)
{
	struct group	gr, *res = NULL;

	if (getgrgid_r(gid, &gr, buf, len, &res) != 0 || res == NULL)
		return NULL;
	return res->gr_name;
}

/* Read /proc/<pid>/status: effective uid and gid, supplementary groups. */
static int
read_status(const char *proc, pid_t pid, uid_t *uid, gid_t *gid,
    gid_t *groups, size_t *ngroups, char *why, size_t whylen)
{
	char		 path[64], line[4096], *p, *end;
	unsigned long	 v[4];
	FILE		*f;
	int		 have = 0;

	snprintf(path, sizeof(path), "%s/%ld/status", proc, (long)pid);
	if ((f = fopen(path, "re")) == NULL) {
		snprintf(why, whylen, "cannot read %s: %s", path,
		    strerror(errno));
		return WICK_ERR_STATE;
	}
	*ngroups = 0;
	while (fgets(line, sizeof(line), f) != NULL) {
		if (sscanf(line, "Uid: %lu %lu %lu %lu", &v[0], &v[1], &v[2],
		    &v[3]) == 4) {
			*uid = (uid_t)v[1];
			have |= 1;
		} else if (sscanf(line, "Gid: %lu %lu %lu %lu", &v[0], &v[1],
		    &v[2], &v[3]) == 4) {
			*gid = (gid_t)v[1];
			have |= 2;
		} else if (strncmp(line, "Groups:", 7) == 0) {
			for (p = line + 7; *ngroups < ATTESTOR_MAX_GROUPS;
			    p = end) {
				errno = 0;
				v[0] = strtoul(p, &end, 10);
				if (end == p || errno != 0)
					break;
				groups[(*ngroups)++] = (gid_t)v[0];
			}
		}
	}
	fclose(f);
	if (have != 3) {
		snprintf(why, whylen, "%s has no Uid or Gid line", path);
		return WICK_ERR_STATE;
	}
	return 0;
}

static int
sha256_file(int fd, int64_t limit, char hex[65], char *why, size_t whylen)
{
	EVP_MD_CTX	*ctx = EVP_MD_CTX_new();
	uint8_t		 buf[65536], md[32];
	unsigned	 mdlen;
	int64_t		 total = 0;
	ssize_t		 n;
	int		 r = 0;

	if (ctx == NULL || !EVP_DigestInit_ex(ctx, EVP_sha256(), NULL)) {
		EVP_MD_CTX_free(ctx);
		return WICK_ERR_CRYPTO;
	}
	while ((n = read(fd, buf, sizeof(buf))) > 0) {
		total += n;
		if (limit > 0 && total > limit) {
			snprintf(why, whylen, "workload binary larger than "
			    "workload_size_limit (%lld bytes)",
			    (long long)limit);
			r = WICK_ERR_LIMIT;
			break;
		}
		EVP_DigestUpdate(ctx, buf, (size_t)n);
	}
	if (r == 0 && n < 0) {
		snprintf(why, whylen, "cannot read the workload binary: %s",
		    strerror(errno));
		r = WICK_ERR_IO;
	}
	if (r == 0 && EVP_DigestFinal_ex(ctx, md, &mdlen))
		hex_encode(md, sizeof(md), hex);
	EVP_MD_CTX_free(ctx);
	return r;
}

/*
 * Digests of binaries already hashed, keyed by what identifies the file's
 * contents: device, inode, size, and modification and change times (a
 * process cannot set the change time, so a rewrite in place shows).  The
 * agent is one thread; without this every Workload API call with
 * discover_workload_path would read the caller's whole binary.
 */
#define DIGEST_CACHE	32

static struct digest_entry {
	dev_t		 dev;
	ino_t		 ino;
	off_t		 size;
	struct timespec	 mtime;
	struct timespec	 ctime;
	char		 hex[65];
	unsigned	 used;
} digests[DIGEST_CACHE];
static unsigned digest_clock;

static int
same_file(const struct digest_entry *d, const struct stat *st)
{
	return d->used != 0 && d->dev == st->st_dev && d->ino == st->st_ino &&
	    d->size == st->st_size &&
	    d->mtime.tv_sec == st->st_mtim.tv_sec &&
	    d->mtime.tv_nsec == st->st_mtim.tv_nsec &&
	    d->ctime.tv_sec == st->st_ctim.tv_sec &&
	    d->ctime.tv_nsec == st->st_ctim.tv_nsec;
}

static int
cached_sha256(int fd, int64_t limit, char hex[65], char *why, size_t whylen)
{
	struct digest_entry	*d, *victim = &digests[0];
	struct stat		 st;
	size_t			 i;
	int			 r;

	if (fstat(fd, &st) != 0)
		return sha256_file(fd, limit, hex, why, whylen);
	if (limit > 0 && st.st_size > limit) {
		snprintf(why, whylen, "workload binary larger than "
		    "workload_size_limit (%lld bytes)", (long long)limit);
		return WICK_ERR_LIMIT;
	}
	for (i = 0; i < DIGEST_CACHE; i++) {
		d = &digests[i];
		if (same_file(d, &st)) {
			d->used = ++digest_clock;
			memcpy(hex, d->hex, 65);
			return 0;
		}
		if (d->used < victim->used)
			victim = d;
	}
	if ((r = sha256_file(fd, limit, hex, why, whylen)) != 0)
		return r;
	victim->dev = st.st_dev;
	victim->ino = st.st_ino;
	victim->size = st.st_size;
	victim->mtime = st.st_mtim;
	victim->ctime = st.st_ctim;
	memcpy(victim->hex, hex, 65);
	victim->used = ++digest_clock;
	return 0;
}

/* unix:path and unix:sha256 of /proc/<pid>/exe. */
static int
add_path(const struct attestor_unix_opts *o, const char *proc, pid_t pid,
    struct selector_set *set, char *why, size_t whylen)
{
	char		 link[64], exe[PATH_MAX], hex[65];
	ssize_t		 n;
	int		 fd, r;

	snprintf(link, sizeof(link), "%s/%ld/exe", proc, (long)pid);
	if ((n = readlink(link, exe, sizeof(exe) - 1)) < 0) {
		snprintf(why, whylen, "cannot read %s: %s", link,
		    strerror(errno));
		return WICK_ERR_STATE;
	}
	exe[n] = '\0';
	if ((r = add_name(set, "path", exe, why, whylen)) != 0)
		return r;
	if (o->workload_size_limit < 0)
		return 0;
	/* Hash what the process runs, not whatever now has its name. */
	if ((fd = open(link, O_RDONLY | O_CLOEXEC)) < 0) {
		snprintf(why, whylen, "cannot open %s: %s", link,
		    strerror(errno));
		return WICK_ERR_STATE;
	}
	r = cached_sha256(fd, o->workload_size_limit, hex, why, whylen);
	close(fd);
	if (r != 0)
		return r;
	return add_name(set, "sha256", hex, why, whylen);
}

int
attestor_unix(const struct attestor *a, const struct peercred *cred,
    struct selector_set *set, char *why, size_t whylen)
{
	const struct attestor_unix_opts *o = a->opts;
	const char	*proc = o->proc_root != NULL ? o->proc_root : "/proc";
	const char	*name;
	gid_t		 groups[ATTESTOR_MAX_GROUPS];
	size_t		 ngroups, i;
	uid_t		 uid;
	gid_t		 gid;
	char		 buf[16384];
	int		 r;

	if ((r = read_status(proc, cred->pid, &uid, &gid, groups, &ngroups,
	    why, whylen)) != 0)
		return r;
	if ((r = add_num(set, "uid", uid, why, whylen)) != 0 ||
	    (r = add_num(set, "gid", gid, why, whylen)) != 0)
		return r;
	if ((name = user_name(uid, buf, sizeof(buf))) != NULL &&
	    (r = add_name(set, "user", name, why, whylen)) != 0)
		return r;
	if ((name = group_name(gid, buf, sizeof(buf))) != NULL &&
	    (r = add_name(set, "group", name, why, whylen)) != 0)
		return r;
	for (i = 0; i < ngroups; i++) {
		if ((r = add_num(set, "supplementary_gid", groups[i], why,
		    whylen)) != 0)
			return r;
		if ((name = group_name(groups[i], buf, sizeof(buf))) != NULL &&
		    (r = add_name(set, "supplementary_group", name, why,
		    whylen)) != 0)
			return r;
	}
	if (o->discover_workload_path && (r = add_path(o, proc, cred->pid,
	    set, why, whylen)) != 0)
		return r;
	/* Everything above must describe the process that called. */
	if (peercred_check_alive(cred) != 0) {
		snprintf(why, whylen, "the calling process %ld is gone or was "
		    "replaced", (long)cred->pid);
		return WICK_ERR_STATE;
	}
	return 0;
}
