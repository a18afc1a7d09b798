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

/*
 * The ids a process runs with now, from /proc/<pid>/status: real,
 * effective, saved and filesystem uid and gid, supplementary groups.
 */
struct proc_ids {
	unsigned long	 uid[4];
	unsigned long	 gid[4];
	gid_t		 groups[ATTESTOR_MAX_GROUPS];
	size_t		 ngroups;
};

static int
read_status(const char *proc, pid_t pid, struct proc_ids *ids, char *why,
    size_t whylen)
{
	char		 path[64], line[4096], *p, *end;
	unsigned long	 v;
	FILE		*f;
	int		 have = 0;

	snprintf(path, sizeof(path), "%s/%ld/status", proc, (long)pid);
	if ((f = fopen(path, "re")) == NULL) {
		snprintf(why, whylen, "cannot read %s: %s", path,
		    strerror(errno));
		return WICK_ERR_STATE;
	}
	ids->ngroups = 0;
	while (fgets(line, sizeof(line), f) != NULL) {
		if (sscanf(line, "Uid: %lu %lu %lu %lu", &ids->uid[0],
		    &ids->uid[1], &ids->uid[2], &ids->uid[3]) == 4)
			have |= 1;
		else if (sscanf(line, "Gid: %lu %lu %lu %lu", &ids->gid[0],
		    &ids->gid[1], &ids->gid[2], &ids->gid[3]) == 4)
			have |= 2;
		else if (strncmp(line, "Groups:", 7) == 0) {
			for (p = line + 7; ids->ngroups < ATTESTOR_MAX_GROUPS;
			    p = end) {
				errno = 0;
				v = strtoul(p, &end, 10);
				if (end == p || errno != 0)
					break;
				ids->groups[ids->ngroups++] = (gid_t)v;
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

/*
 * The process must run now with exactly the ids the kernel recorded when
 * it connected.  A process that connected and then exec'd a setuid or
 * setgid program (or changed ids itself) no longer agrees: the socket may
 * be in the hands of whoever connected, so the new ids prove nothing.
 */
static int
check_ids(const struct peercred *cred, const struct proc_ids *ids,
    char *why, size_t whylen)
{
	size_t	 i;

	for (i = 0; i < 4; i++)
		if (ids->uid[i] != (unsigned long)cred->uid ||
		    ids->gid[i] != (unsigned long)cred->gid)
			break;
	if (i == 4)
		return 0;
	snprintf(why, whylen, "pid %ld connected as uid %lu gid %lu but now "
	    "runs as uid %lu/%lu/%lu/%lu gid %lu/%lu/%lu/%lu (real/effective/"
	    "saved/filesystem)", (long)cred->pid, (unsigned long)cred->uid,
	    (unsigned long)cred->gid, ids->uid[0], ids->uid[1], ids->uid[2],
	    ids->uid[3], ids->gid[0], ids->gid[1], ids->gid[2], ids->gid[3]);
	return WICK_ERR_PERM;
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

/*
 * The binary behind link (a /proc/<pid>/exe) must be the one the process
 * ran when its connection was accepted: a process that exec'd another
 * binary since then would otherwise be attested as that binary.
 */
static int
check_exe(const struct peercred *cred, const struct stat *st,
    const char *exe, char *why, size_t whylen)
{
	if (peercred_check_exe(cred, st->st_dev, st->st_ino) == 0)
		return 0;
	if (!cred->exe_known)
		snprintf(why, whylen, "pid %ld: its binary at connect is "
		    "unknown; it now runs %s", (long)cred->pid, exe);
	else
		snprintf(why, whylen, "pid %ld: binary changed since connect "
		    "(dev %lu inode %lu, now dev %lu inode %lu): it now runs "
		    "%s", (long)cred->pid, (unsigned long)cred->exe_dev,
		    (unsigned long)cred->exe_ino, (unsigned long)st->st_dev,
		    (unsigned long)st->st_ino, exe);
	return WICK_ERR_PERM;
}

/*
 * unix:path and unix:sha256 of /proc/<pid>/exe.  The name is read first and
 * the file checked after it, so a name read before an exec is refused.
 */
static int
add_path(const struct attestor_unix_opts *o, const char *proc,
    const struct peercred *cred, struct selector_set *set, char *why,
    size_t whylen)
{
	struct stat	 st;
	char		 link[64], exe[PATH_MAX], hex[65];
	ssize_t		 n;
	int		 fd, r;

	snprintf(link, sizeof(link), "%s/%ld/exe", proc, (long)cred->pid);
	if ((n = readlink(link, exe, sizeof(exe) - 1)) < 0) {
		snprintf(why, whylen, "cannot read %s: %s", link,
		    strerror(errno));
		return WICK_ERR_STATE;
	}
	exe[n] = '\0';
	if (stat(link, &st) != 0) {
		snprintf(why, whylen, "cannot stat %s: %s", link,
		    strerror(errno));
		return WICK_ERR_STATE;
	}
	if ((r = check_exe(cred, &st, exe, why, whylen)) != 0)
		return r;
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
	/* The file opened is the one hashed: it too must be the same. */
	if (fstat(fd, &st) != 0) {
		snprintf(why, whylen, "cannot stat %s: %s", link,
		    strerror(errno));
		r = WICK_ERR_STATE;
	} else {
		r = check_exe(cred, &st, exe, why, whylen);
	}
	if (r == 0)
		r = cached_sha256(fd, o->workload_size_limit, hex, why,
		    whylen);
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
	struct proc_ids	 ids;
	size_t		 i;
	char		 buf[16384];
	int		 r;

	if ((r = read_status(proc, cred->pid, &ids, why, whylen)) != 0)
		return r;
	if ((r = check_ids(cred, &ids, why, whylen)) != 0)
		return r;
	/* Who connected, as the kernel recorded it (now confirmed). */
	if ((r = add_num(set, "uid", cred->uid, why, whylen)) != 0 ||
	    (r = add_num(set, "gid", cred->gid, why, whylen)) != 0)
		return r;
	if ((name = user_name(cred->uid, buf, sizeof(buf))) != NULL &&
	    (r = add_name(set, "user", name, why, whylen)) != 0)
		return r;
	if ((name = group_name(cred->gid, buf, sizeof(buf))) != NULL &&
	    (r = add_name(set, "group", name, why, whylen)) != 0)
		return r;
	for (i = 0; i < ids.ngroups; i++) {
		if ((r = add_num(set, "supplementary_gid", ids.groups[i], why,
		    whylen)) != 0)
			return r;
		if ((name = group_name(ids.groups[i], buf,
		    sizeof(buf))) != NULL &&
		    (r = add_name(set, "supplementary_group", name, why,
		    whylen)) != 0)
			return r;
	}
	if (o->discover_workload_path && (r = add_path(o, proc, cred, set,
	    why, whylen)) != 0)
		return r;
	/* Everything above must describe the process that called. */
	if (peercred_check_alive(cred) != 0) {
		snprintf(why, whylen, "the calling process %ld is gone or was "
		    "replaced", (long)cred->pid);
		return WICK_ERR_STATE;
	}
	return 0;
}
