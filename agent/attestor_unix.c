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
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "attestor.h"
#include "encode.h"
#include "xmalloc.h"

#define STATUS_MAX	8192	/* bytes of /proc/<pid>/status read */

static int
add_num(struct selector_set *set, const char *what, unsigned long v,
    char *why, size_t whylen)
{
	char		 val[64], digits[24];
	const char	*w;
	size_t		 n = strlen(what), d = 0;

	/* By hand: this runs several times on every call. */
	do {
		digits[d++] = (char)('0' + v % 10);
		v /= 10;
	} while (v != 0);
	if (n + 1 + d >= sizeof(val))
		return WICK_ERR_INVALID;
	memcpy(val, what, n);
	val[n++] = ':';
	while (d > 0)
		val[n++] = digits[--d];
	val[n] = '\0';
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
	size_t		 n = strlen(what), m = strlen(name);

	if (n + 1 + m >= sizeof(val))
		return 0;	/* absurd name: skip it, as a failed lookup */
	memcpy(val, what, n);
	val[n] = ':';
	memcpy(val + n + 1, name, m + 1);
	if (selector_set_add(set, "unix", val, &w) != 0) {
		snprintf(why, whylen, "selector %s: %s", val, w);
		return WICK_ERR_LIMIT;
	}
	return 0;
}

/* proc/pid/leaf into buf (by hand: on every call); "" if it is too long. */
static void
proc_path(char *buf, size_t len, const char *proc, pid_t pid,
    const char *leaf)
{
	char		 digits[24];
	size_t		 n = strlen(proc), m = strlen(leaf), d = 0;
	unsigned long	 v = (unsigned long)pid;

	do {
		digits[d++] = (char)('0' + v % 10);
		v /= 10;
	} while (v != 0);
	if (n + d + m + 3 > len) {
		*buf = '\0';
		return;
	}
	memcpy(buf, proc, n);
	buf[n++] = '/';
	while (d > 0)
		buf[n++] = digits[--d];
	buf[n++] = '/';
	memcpy(buf + n, leaf, m + 1);
}

/*
 * What the agent keeps between calls: names of ids (looked up through NSS,
 * which reads /etc/passwd or asks a daemon: the largest cost of a call
 * before) for ATTESTOR_NAME_TTL_MS, and digests of binaries already
 * hashed, keyed by what identifies a file's contents: device, inode,
 * size, and modification and change times (a process cannot set the
 * change time, so a rewrite in place shows).  Only the loop's thread
 * touches it.
 */
#define NAME_CACHE	64
#define DIGEST_CACHE	32

struct name_entry {
	int		 group;		/* a gid, else a uid */
	unsigned long	 id;
	int		 found;
	uint64_t	 at_ms;
	unsigned	 used;
	char		 name[ATTESTOR_MAX_NAME + 1];
};

struct digest_entry {
	dev_t		 dev;
	ino_t		 ino;
	off_t		 size;
	struct timespec	 mtime;
	struct timespec	 ctime;
	char		 hex[65];
	unsigned	 used;
};

struct attestor_unix_cache {
	struct name_entry	 names[NAME_CACHE];
	unsigned		 name_clock;
	struct digest_entry	 digests[DIGEST_CACHE];
	unsigned		 digest_clock;
};

struct attestor_unix_cache *
attestor_unix_cache_new(void)
{
	return xcalloc(1, sizeof(struct attestor_unix_cache));
}

void
attestor_unix_cache_free(struct attestor_unix_cache *c)
{
	free(c);
}

static uint64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* NSS, with a buffer on the stack (a name longer than the cache keeps is
 * treated as one that does not resolve). */
static int
lookup_name(int group, unsigned long id, char *out, size_t outlen)
{
	struct passwd	 pw, *pwr = NULL;
	struct group	 gr, *grr = NULL;
	char		 buf[16384];
	const char	*name;

	if (group) {
		if (getgrgid_r((gid_t)id, &gr, buf, sizeof(buf), &grr) != 0 ||
		    grr == NULL)
			return -1;
		name = grr->gr_name;
	} else {
		if (getpwuid_r((uid_t)id, &pw, buf, sizeof(buf), &pwr) != 0 ||
		    pwr == NULL)
			return -1;
		name = pwr->pw_name;
	}
	if (strlen(name) >= outlen)
		return -1;
	memcpy(out, name, strlen(name) + 1);
	return 0;
}

/* The name of a uid or gid, NULL when it does not resolve. */
static const char *
id_name(struct attestor_unix_cache *c, int group, unsigned long id,
    char *buf, size_t len)
{
	struct name_entry	*e, *victim;
	uint64_t		 now;
	size_t			 i;

	if (c == NULL)
		return lookup_name(group, id, buf, len) == 0 ? buf : NULL;
	now = now_ms();
	victim = &c->names[0];
	for (i = 0; i < NAME_CACHE; i++) {
		e = &c->names[i];
		if (e->used != 0 && e->group == group && e->id == id &&
		    now - e->at_ms < ATTESTOR_NAME_TTL_MS) {
			e->used = ++c->name_clock;
			return e->found ? e->name : NULL;
		}
		if (e->used < victim->used)
			victim = e;
	}
	victim->group = group;
	victim->id = id;
	victim->at_ms = now;
	victim->used = ++c->name_clock;
	victim->found = lookup_name(group, id, victim->name,
	    sizeof(victim->name)) == 0;
	return victim->found ? victim->name : NULL;
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

/* A decimal at *pp after blanks, ending before end; -1 if none or too big. */
static int
parse_ulong(const char **pp, const char *end, unsigned long *out)
{
	const char	*p = *pp;
	unsigned long	 v = 0, d;

	while (p < end && (*p == ' ' || *p == '\t'))
		p++;
	if (p == end || *p < '0' || *p > '9')
		return -1;
	for (; p < end && *p >= '0' && *p <= '9'; p++) {
		d = (unsigned long)(*p - '0');
		if (v > (ULONG_MAX - d) / 10)
			return -1;
		v = v * 10 + d;
	}
	*pp = p;
	*out = v;
	return 0;
}

/* "Uid:" or "Gid:" and four numbers, the whole line. */
static int
parse_ids(const char *p, const char *eol, unsigned long v[4])
{
	size_t i;

	for (i = 0; i < 4; i++)
		if (parse_ulong(&p, eol, &v[i]) != 0)
			return -1;
	while (p < eol && (*p == ' ' || *p == '\t'))
		p++;
	return p == eol ? 0 : -1;
}

/*
 * The fields wanted from a status file in buf (n bytes, NUL-terminated),
 * by hand: this runs on every Workload API call.  A line the buffer cut
 * short is not trusted, but for Groups, whose complete numbers count.
 */
static int
parse_status(const char *buf, size_t n, struct proc_ids *ids)
{
	const char	*p = buf, *end = buf + n, *eol, *q;
	unsigned long	 v;
	int		 have = 0;

	ids->ngroups = 0;
	while (p < end && have != 7) {
		if ((eol = memchr(p, '\n', (size_t)(end - p))) == NULL)
			eol = end;
		if (eol - p > 4 && memcmp(p, "Uid:", 4) == 0) {
			if (eol != end && parse_ids(p + 4, eol, ids->uid) == 0)
				have |= 1;
		} else if (eol - p > 4 && memcmp(p, "Gid:", 4) == 0) {
			if (eol != end && parse_ids(p + 4, eol, ids->gid) == 0)
				have |= 2;
		} else if (eol - p >= 7 && memcmp(p, "Groups:", 7) == 0) {
			for (q = p + 7; ids->ngroups < ATTESTOR_MAX_GROUPS;) {
				if (parse_ulong(&q, eol, &v) != 0 ||
				    (q == end) || v > (gid_t)-1)
					break;
				ids->groups[ids->ngroups++] = (gid_t)v;
			}
			have |= 4;
		}
		p = eol + 1;
	}
	return (have & 3) == 3 ? 0 : -1;
}

static int
read_status(const char *proc, const struct peercred *cred, unsigned int flags,
    struct proc_ids *ids, char *why, size_t whylen)
{
	struct peercred_ids pids;
	char		 path[64], buf[STATUS_MAX];
	ssize_t		 got;
	size_t		 n, i;
	int		 fd, r;

	/*
	 * The groups not wanted: the ids from the kernel through the pidfd
	 * held since accept, where it gives them.  The status file is a page
	 * the kernel renders whole (signal masks, CPU lists, memory counters)
	 * for every read, the largest cost of a call; this is one ioctl.
	 */
	if (proc == NULL && (flags & ATTEST_NO_GROUPS) &&
	    (r = peercred_pidfd_ids(cred, &pids)) != WICK_ERR_UNSUPPORTED) {
		if (r != 0) {
			snprintf(why, whylen, "the process %ld is gone",
			    (long)cred->pid);
			return WICK_ERR_STATE;
		}
		for (i = 0; i < 4; i++) {
			ids->uid[i] = pids.uid[i];
			ids->gid[i] = pids.gid[i];
		}
		ids->ngroups = 0;
		return 0;
	}
	if (proc == NULL) {
		/* The real /proc: through the descriptor held since accept. */
		if (peercred_read_status(cred, buf, sizeof(buf), &n) != 0) {
			snprintf(why, whylen, "cannot read /proc/%ld/status: "
			    "the process is gone", (long)cred->pid);
			return WICK_ERR_STATE;
		}
		if (parse_status(buf, n, ids) != 0) {
			snprintf(why, whylen, "/proc/%ld/status has no Uid or "
			    "Gid line", (long)cred->pid);
			return WICK_ERR_STATE;
		}
		return 0;
	} else {
		snprintf(path, sizeof(path), "%s/%ld/status", proc,
		    (long)cred->pid);
		if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1) {
			snprintf(why, whylen, "cannot read %s: %s", path,
			    strerror(errno));
			return WICK_ERR_STATE;
		}
		got = read(fd, buf, sizeof(buf) - 1);
		close(fd);
		if (got < 0) {
			snprintf(why, whylen, "cannot read %s: %s", path,
			    strerror(errno));
			return WICK_ERR_STATE;
		}
		buf[got] = '\0';
		n = (size_t)got;
	}
	if (parse_status(buf, n, ids) != 0) {
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

/* The digest of the file st describes, if it was hashed before. */
static int
digest_get(struct attestor_unix_cache *c, const struct stat *st,
    char hex[65])
{
	size_t i;

	if (c == NULL)
		return -1;
	for (i = 0; i < DIGEST_CACHE; i++)
		if (same_file(&c->digests[i], st)) {
			c->digests[i].used = ++c->digest_clock;
			memcpy(hex, c->digests[i].hex, 65);
			return 0;
		}
	return -1;
}

static void
digest_put(struct attestor_unix_cache *c, const struct stat *st,
    const char hex[65])
{
	struct digest_entry	*victim;
	size_t			 i;

	if (c == NULL)
		return;
	victim = &c->digests[0];
	for (i = 1; i < DIGEST_CACHE; i++)
		if (c->digests[i].used < victim->used)
			victim = &c->digests[i];
	victim->dev = st->st_dev;
	victim->ino = st->st_ino;
	victim->size = st->st_size;
	victim->mtime = st->st_mtim;
	victim->ctime = st->st_ctim;
	memcpy(victim->hex, hex, 65);
	victim->used = ++c->digest_clock;
}

static int
size_ok(int64_t limit, const struct stat *st, char *why, size_t whylen)
{
	if (limit > 0 && st->st_size > limit) {
		snprintf(why, whylen, "workload binary larger than "
		    "workload_size_limit (%lld bytes)", (long long)limit);
		return WICK_ERR_LIMIT;
	}
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

/* Open what link (a /proc/<pid>/exe) names: the binary the process runs
 * now, which must be the one it ran at accept.  -1 with why set. */
static int
open_exe(const struct peercred *cred, const char *link, const char *exe,
    struct stat *st, int *err, char *why, size_t whylen)
{
	int fd;

	if ((fd = open(link, O_RDONLY | O_CLOEXEC)) < 0) {
		snprintf(why, whylen, "cannot open %s: %s", link,
		    strerror(errno));
		*err = WICK_ERR_STATE;
		return -1;
	}
	if (fstat(fd, st) != 0) {
		snprintf(why, whylen, "cannot stat %s: %s", link,
		    strerror(errno));
		*err = WICK_ERR_STATE;
	} else if ((*err = check_exe(cred, st, exe, why, whylen)) == 0)
		return fd;
	close(fd);
	return -1;
}

/*
 * unix:path and unix:sha256 of /proc/<pid>/exe.  The name is read first and
 * the file checked after it, so a name read before an exec is refused.  A
 * binary hashed before (the same file, unchanged) is not opened again.
 */
static int
add_path(const struct attestor_unix_opts *o, const char *proc,
    const struct peercred *cred, struct selector_set *set, char *why,
    size_t whylen)
{
	struct stat	 st;
	char		 link[PATH_MAX], exe[PATH_MAX], hex[65];
	ssize_t		 n;
	int		 fd, r;

	proc_path(link, sizeof(link), proc, cred->pid, "exe");
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
	if ((r = size_ok(o->workload_size_limit, &st, why, whylen)) != 0)
		return r;
	if (digest_get(o->cache, &st, hex) != 0) {
		/* Hash what the process runs, not whatever now has its
		 * name; the file opened is the one hashed: it too must be
		 * the same. */
		if ((fd = open_exe(cred, link, exe, &st, &r, why,
		    whylen)) < 0)
			return r;
		if ((r = size_ok(o->workload_size_limit, &st, why,
		    whylen)) == 0 && (r = digest_get(o->cache, &st,
		    hex)) != 0 && (r = sha256_file(fd, o->workload_size_limit,
		    hex, why, whylen)) == 0)
			digest_put(o->cache, &st, hex);
		close(fd);
		if (r != 0)
			return r;
	}
	return add_name(set, "sha256", hex, why, whylen);
}

/* The binary must be hashed before the caller can be attested: 1. */
static int
needs_hash(const struct attestor_unix_opts *o, const char *proc,
    const struct peercred *cred)
{
	struct stat	 st;
	char		 link[PATH_MAX], hex[65];

	if (!o->discover_workload_path || o->workload_size_limit < 0 ||
	    o->cache == NULL)
		return 0;
	proc_path(link, sizeof(link), proc, cred->pid, "exe");
	/* Unreadable or too large: attestation says why. */
	if (stat(link, &st) != 0 || size_ok(o->workload_size_limit, &st,
	    NULL, 0) != 0)
		return 0;
	return digest_get(o->cache, &st, hex) != 0;
}

int
attestor_unix(const struct attestor *a, const struct peercred *cred,
    unsigned int flags, struct selector_set *set, char *why, size_t whylen)
{
	const struct attestor_unix_opts *o = a->opts;
	const char	*proc = o->proc_root;
	const char	*name;
	struct proc_ids	 ids;
	size_t		 i;
	char		 buf[ATTESTOR_MAX_NAME + 1];
	int		 r;

	if ((r = read_status(proc, cred, flags, &ids, why, whylen)) != 0)
		return r;
	if ((r = check_ids(cred, &ids, why, whylen)) != 0)
		return r;
	/* Before any selector is added: the call comes back here. */
	if (needs_hash(o, proc != NULL ? proc : "/proc", cred)) {
		snprintf(why, whylen, "the workload's binary is not hashed "
		    "yet");
		return WICK_ERR_AGAIN;
	}
	/* Who connected, as the kernel recorded it (now confirmed). */
	if ((r = add_num(set, "uid", cred->uid, why, whylen)) != 0 ||
	    (r = add_num(set, "gid", cred->gid, why, whylen)) != 0)
		return r;
	if ((name = id_name(o->cache, 0, cred->uid, buf,
	    sizeof(buf))) != NULL &&
	    (r = add_name(set, "user", name, why, whylen)) != 0)
		return r;
	if ((name = id_name(o->cache, 1, cred->gid, buf,
	    sizeof(buf))) != NULL &&
	    (r = add_name(set, "group", name, why, whylen)) != 0)
		return r;
	for (i = 0; i < ids.ngroups; i++) {
		if ((r = add_num(set, "supplementary_gid", ids.groups[i], why,
		    whylen)) != 0)
			return r;
		if ((name = id_name(o->cache, 1, ids.groups[i], buf,
		    sizeof(buf))) != NULL &&
		    (r = add_name(set, "supplementary_group", name, why,
		    whylen)) != 0)
			return r;
	}
	if (o->discover_workload_path && (r = add_path(o, proc != NULL ?
	    proc : "/proc", cred, set, why, whylen)) != 0)
		return r;
	/*
	 * Everything above must describe the process that called.  When
	 * its only source was the status file or pidfd held since accept
	 * (which name that process, not its pid; a status file read by pid
	 * is checked against the pidfd right after), the read that succeeded
	 * above proved it; anything else read by pid (the binary, or a /proc
	 * of the tests') needs the check that the pid still names it.
	 * Through a held status file that check reads the file again.
	 */
	if ((proc != NULL || !(cred->status_held || cred->pidfd_held) ||
	    o->discover_workload_path) && peercred_check_alive(cred) != 0) {
		snprintf(why, whylen, "the calling process %ld is gone or was "
		    "replaced", (long)cred->pid);
		return WICK_ERR_STATE;
	}
	return 0;
}

/* ---- hashing a binary off the loop -------------------------------------- */

struct attestor_hash {
	int		 fd;
	int64_t		 limit;
	struct stat	 st;
	int		 r;
	char		 hex[65];
	char		 why[256];
};

int
attestor_unix_hash_new(const struct attestor *a, const struct peercred *cred,
    struct attestor_hash **out, char *why, size_t whylen)
{
	const struct attestor_unix_opts *o = a->opts;
	struct attestor_hash	*h;
	char			 link[PATH_MAX], exe[PATH_MAX];
	ssize_t			 n;
	int			 r;

	*out = NULL;
	snprintf(link, sizeof(link), "%s/%ld/exe", o->proc_root != NULL ?
	    o->proc_root : "/proc", (long)cred->pid);
	if ((n = readlink(link, exe, sizeof(exe) - 1)) < 0) {
		snprintf(why, whylen, "cannot read %s: %s", link,
		    strerror(errno));
		return WICK_ERR_STATE;
	}
	exe[n] = '\0';
	if ((h = calloc(1, sizeof(*h))) == NULL) {
		snprintf(why, whylen, "out of memory");
		return WICK_ERR_ALLOC;
	}
	h->limit = o->workload_size_limit;
	if ((h->fd = open_exe(cred, link, exe, &h->st, &r, why,
	    whylen)) < 0) {
		free(h);
		return r;
	}
	*out = h;
	return 0;
}

int
attestor_unix_hash_same(const struct attestor_hash *x,
    const struct attestor_hash *y)
{
	struct digest_entry d;

	memset(&d, 0, sizeof(d));
	d.used = 1;
	d.dev = x->st.st_dev;
	d.ino = x->st.st_ino;
	d.size = x->st.st_size;
	d.mtime = x->st.st_mtim;
	d.ctime = x->st.st_ctim;
	return x->limit == y->limit && same_file(&d, &y->st);
}

void
attestor_unix_hash_run(struct attestor_hash *h)
{
	h->r = size_ok(h->limit, &h->st, h->why, sizeof(h->why));
	if (h->r == 0)
		h->r = sha256_file(h->fd, h->limit, h->hex, h->why,
		    sizeof(h->why));
}

int
attestor_unix_hash_done(const struct attestor *a, struct attestor_hash *h,
    char *why, size_t whylen)
{
	const struct attestor_unix_opts *o = a->opts;
	int				 r = h->r;

	if (r == 0)
		digest_put(o->cache, &h->st, h->hex);
	else
		snprintf(why, whylen, "%s", h->why);
	attestor_unix_hash_free(h);
	return r;
}

void
attestor_unix_hash_free(struct attestor_hash *h)
{
	if (h == NULL)
		return;
	close(h->fd);
	free(h);
}
