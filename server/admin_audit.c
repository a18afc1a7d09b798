/*
 * admin_audit.c: the admin API's audit trail (list, verify) and backup.
 *
 * Two of these calls may be long: walking a large chain and copying the
 * datastore.  Neither holds the loop: both run on the state thread
 * (worker.h), which owns the store's connection.  Verify walks the chain
 * in slices of AUDIT_VERIFY_SLICE events, each slice a task of its own,
 * so that other calls queued meanwhile run between slices.  Backup pins a
 * snapshot of the datastore and exports the keys in the same step, so the
 * two agree (the CA journal names only keys the export holds), then
 * copies the snapshot and writes the files; calls queued behind it wait
 * for the copy.
 */
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "admin.pb-c.h"
#include "admin_audit.h"
#include "buf.h"
#include "log.h"
#include "server.h"
#include "svc.h"

#define AUDIT_PAGE_DEFAULT	500
#define AUDIT_PAGE_MAX		2000
/* Bytes of events in one page: a reply stays well under a client's
 * message limit (gRPC's default 4 MiB) however large the details. */
#define AUDIT_PAGE_BYTES	(2u * 1024 * 1024)
#define AUDIT_VERIFY_SLICE	2000
#define BACKUP_DS_FILE		"datastore.sqlite3"
#define BACKUP_KEYS_FILE	"keys.json"
#define BACKUP_MADE_DS		1
#define BACKUP_MADE_KEYS	2

/* One Backup or VerifyAudit call; freed in on_done, or when the work the
 * call queued has come back if that is later. */
struct audit_job {
	struct server		*srv;
	struct rpc_call		*call;	/* NULL: call over */
	char			 actor[128];
	struct worker_task	 task;		/* a verify slice */
	int			 queued;	/* the task is queued */
	struct ds_audit_verify	 v;
	char			*dir;
	int			 dirfd;		/* dir as made; -1: none */
	int			 made;		/* BACKUP_MADE_* written */
	char			*dbfile;
	char			*keyfile;
	struct ds_backup	*bk;
	struct buf		 keys;		/* secret */
	int			 r;
	const char		*why;
};

static void
job_free(struct audit_job *j)
{
	ds_backup_free(j->bk);
	buf_cleanup(&j->keys);
	if (j->dirfd >= 0)
		close(j->dirfd);
	free(j->dir);
	free(j->dbfile);
	free(j->keyfile);
	free(j);
}

void
admin_job_start(struct rpc_call *call, void *arg)
{
	struct server		*srv = arg;
	struct audit_job	*j;

	rpc_call_set_data(call, NULL);
	if (!admin_peer_allowed(srv, rpc_call_peer(call))) {
		svc_fail(call, RPC_PERMISSION_DENIED, "uid %lu may not use the "
		    "admin API (allowed: root, the server's uid and "
		    "admin_uids)", (unsigned long)rpc_call_peer(call)->uid);
		return;
	}
	if ((j = calloc(1, sizeof(*j))) == NULL) {
		svc_fail(call, RPC_RESOURCE_EXHAUSTED, "out of memory");
		return;
	}
	j->srv = srv;
	j->call = call;
	j->dirfd = -1;
	buf_init(&j->keys, KEYMGR_MAX_FILE);
	buf_set_secret(&j->keys);
	svc_actor(call, j->actor, sizeof(j->actor));
	rpc_call_set_data(call, j);
}

void
admin_job_done(struct rpc_call *call, enum rpc_end why)
{
	struct audit_job *j = rpc_call_data(call);

	if (j == NULL)
		return;
	j->call = NULL;
	if (!j->queued)
		job_free(j);
}

/* ---- ListAuditEvents --------------------------------------------------- */

struct list_page {
	Wick__Admin__AuditEvent	**v;
	size_t			  n;
	size_t			  max;
	size_t			  bytes;
	int64_t			  last_seq;
};

static int
list_cb(void *arg, const struct ds_audit *a)
{
	struct list_page	*pg = arg;
	Wick__Admin__AuditEvent	*e;
	size_t			 size;

	size = strlen(a->kind) + strlen(a->actor) + strlen(a->subject) +
	    strlen(a->detail_json) + 2 * DS_AUDIT_HASH_HEX + 64;
	/* Full, by count or by size (one event at least, to go on). */
	if (pg->n == pg->max || (pg->n > 0 && pg->bytes + size >
	    AUDIT_PAGE_BYTES))
		return 1;
	pg->bytes += size;
	if ((e = calloc(1, sizeof(*e))) == NULL)
		return WICK_ERR_ALLOC;
	wick__admin__audit_event__init(e);
	e->seq = a->seq;
	e->at = a->at;
	e->ok = a->ok != 0;
	e->kind = strdup(a->kind);
	e->actor = strdup(a->actor);
	e->subject = strdup(a->subject);
	e->detail_json = strdup(a->detail_json);
	e->prev_hash = strdup(a->prev_hash);
	e->hash = strdup(a->hash);
	pg->v[pg->n++] = e;
	pg->last_seq = a->seq;
	if (e->kind == NULL || e->actor == NULL || e->subject == NULL ||
	    e->detail_json == NULL || e->prev_hash == NULL || e->hash == NULL)
		return WICK_ERR_ALLOC;
	return 0;
}

static void
list_page_free(struct list_page *pg)
{
	size_t i;

	for (i = 0; i < pg->n; i++) {
		free(pg->v[i]->kind);
		free(pg->v[i]->actor);
		free(pg->v[i]->subject);
		free(pg->v[i]->detail_json);
		free(pg->v[i]->prev_hash);
		free(pg->v[i]->hash);
		free(pg->v[i]);
	}
	free(pg->v);
}

void
admin_m_list_audit(struct rpc_call *call, const uint8_t *p, size_t n)
{
	struct audit_job			*j = rpc_call_data(call);
	Wick__Admin__ListAuditEventsRequest	*req;
	Wick__Admin__ListAuditEventsResponse	 resp =
	    WICK__ADMIN__LIST_AUDIT_EVENTS_RESPONSE__INIT;
	struct ds_audit_filter			 f;
	struct list_page			 pg;
	char					 next[32], *end;
	long long				 after;
	int					 r;

	if ((req = wick__admin__list_audit_events_request__unpack(NULL, n,
	    p)) == NULL) {
		svc_fail(call, RPC_INVALID_ARGUMENT, "malformed "
		    "ListAuditEventsRequest message");
		return;
	}
	memset(&f, 0, sizeof(f));
	memset(&pg, 0, sizeof(pg));
	if (req->page_size < 0) {
		svc_fail(call, RPC_INVALID_ARGUMENT, "page_size must not be "
		    "negative");
		goto out;
	}
	pg.max = req->page_size == 0 ? AUDIT_PAGE_DEFAULT :
	    req->page_size > AUDIT_PAGE_MAX ? AUDIT_PAGE_MAX :
	    (size_t)req->page_size;
	if (*req->page_token != '\0') {
		errno = 0;
		after = strtoll(req->page_token, &end, 10);
		if (*end != '\0' || errno != 0 || after < 0) {
			svc_fail(call, RPC_INVALID_ARGUMENT, "invalid "
			    "page_token");
			goto out;
		}
		f.after_seq = after;
	}
	f.since = req->since;
	f.spiffe_id = req->spiffe_id;
	if ((pg.v = calloc(pg.max + 1, sizeof(*pg.v))) == NULL) {
		svc_fail(call, RPC_RESOURCE_EXHAUSTED, "out of memory");
		goto out;
	}
	/* One more than a page tells whether another page follows. */
	r = ds_audit_list(j->srv->ds, &f, pg.max + 1, list_cb, &pg);
	if (r != 0 && r != 1) {
		svc_fail(call, rpc_status_from_err(r), "cannot read the audit "
		    "trail: %s", wick_strerror(r));
		goto out;
	}
	resp.events = pg.v;
	resp.n_events = pg.n;
	if (r == 1) {
		snprintf(next, sizeof(next), "%" PRId64, pg.last_seq);
		resp.next_page_token = next;
	}
	svc_reply(call, &resp.base);
out:
	list_page_free(&pg);
	wick__admin__list_audit_events_request__free_unpacked(req, NULL);
}

/* ---- VerifyAudit ------------------------------------------------------- */

/* State thread: one slice of the walk.  j->call is the loop's to read:
 * a call gone meanwhile is seen when the slice is back. */
static void
verify_slice_run(struct worker_task *t)
{
	struct audit_job *j = t->arg;

	j->r = ds_audit_verify_step(j->srv->ds, &j->v, AUDIT_VERIFY_SLICE);
}

static void
verify_slice_done(struct worker_task *t)
{
	struct audit_job			*j = t->arg;
	Wick__Admin__VerifyAuditResponse	 resp =
	    WICK__ADMIN__VERIFY_AUDIT_RESPONSE__INIT;

	j->queued = 0;
	if (j->call == NULL) {
		job_free(j);
		return;
	}
	if (j->r != 0) {
		svc_fail(j->call, rpc_status_from_err(j->r), "cannot read the "
		    "audit trail: %s", wick_strerror(j->r));
		return;
	}
	if (!j->v.done) {
		/* The next slice after what was queued meanwhile. */
		j->queued = 1;
		worker_submit(j->srv->worker, &j->task);
		return;
	}
	resp.ok = j->v.bad_seq == 0;
	resp.count = j->v.count;
	resp.head_seq = j->v.next_seq - 1;
	resp.head_hash = j->v.prev_hash;
	resp.anchor_seq = j->v.anchor_seq;
	resp.bad_seq = j->v.bad_seq;
	resp.reason = j->v.why;
	if (j->v.bad_seq != 0)
		log_warn("audit: verify by %s: the chain is broken at seq "
		    "%lld: %s", j->actor, (long long)j->v.bad_seq, j->v.why);
	svc_reply(j->call, &resp.base);
}

void
admin_m_verify_audit(struct rpc_call *call, const uint8_t *p, size_t n)
{
	struct audit_job	*j = rpc_call_data(call);
	Wick__Admin__Empty	*req;

	if ((req = wick__admin__empty__unpack(NULL, n, p)) == NULL) {
		svc_fail(call, RPC_INVALID_ARGUMENT, "malformed Empty message");
		return;
	}
	wick__admin__empty__free_unpacked(req, NULL);
	/* This step runs on the state thread; the slices follow it there,
	 * each answered on the loop.  The call stays open meanwhile. */
	j->task.run = verify_slice_run;
	j->task.done = verify_slice_done;
	j->task.arg = j;
	j->queued = 1;
	worker_submit(j->srv->worker, &j->task);
}

/* ---- Backup ------------------------------------------------------------ */

static int
write_file(int dirfd, const char *name, const uint8_t *p, size_t len)
{
	ssize_t	w;
	int	fd, r = 0;

	if ((fd = openat(dirfd, name, O_WRONLY | O_CREAT | O_EXCL |
	    O_NOFOLLOW | O_CLOEXEC, 0600)) < 0)
		return WICK_ERR_IO;
	while (len > 0) {
		if ((w = write(fd, p, len)) < 0) {
			if (errno == EINTR)
				continue;
			r = WICK_ERR_IO;
			break;
		}
		p += w;
		len -= (size_t)w;
	}
	if (fsync(fd) != 0)
		r = WICK_ERR_IO;
	if (close(fd) != 0)
		r = WICK_ERR_IO;
	return r;
}

/* The copy and the files, after the snapshot. */
static void
backup_write(struct audit_job *j)
{
	struct stat		 sb;

	if ((j->r = ds_backup_run(j->bk, &j->why)) != 0)
		return;
	/* SQLite writes by path: it must have landed in the directory
	 * made, not wherever a swapped-in symlink points. */
	if (fstatat(j->dirfd, BACKUP_DS_FILE, &sb, AT_SYMLINK_NOFOLLOW) !=
	    0 || !S_ISREG(sb.st_mode) || sb.st_uid != geteuid()) {
		j->r = WICK_ERR_STATE;
		j->why = "the backup directory was replaced during the backup";
		return;
	}
	j->made |= BACKUP_MADE_DS;
	if (j->keyfile != NULL) {
		if ((j->r = write_file(j->dirfd, BACKUP_KEYS_FILE,
		    buf_ptr(&j->keys), buf_len(&j->keys))) != 0) {
			j->why = "cannot write the key file";
			return;
		}
		j->made |= BACKUP_MADE_KEYS;
	}
	if (fsync(j->dirfd) != 0) {
		j->r = WICK_ERR_IO;
		j->why = "cannot sync the backup directory";
	}
}

static void
backup_finish(struct rpc_call *call, struct audit_job *j)
{
	Wick__Admin__BackupResponse	 resp =
	    WICK__ADMIN__BACKUP_RESPONSE__INIT;

	ds_backup_free(j->bk);
	j->bk = NULL;
	/* The keys leave memory now, whatever happens to the call. */
	buf_cleanup(&j->keys);
	if (j->r != 0) {
		log_error("backup into %s failed: %s", j->dir, j->why != NULL ?
		    j->why : wick_strerror(j->r));
		/* Only what this backup wrote, in the directory it made:
		 * never a file a swapped-in symlink names. */
		if (j->made & BACKUP_MADE_DS)
			(void)unlinkat(j->dirfd, BACKUP_DS_FILE, 0);
		if (j->made & BACKUP_MADE_KEYS)
			(void)unlinkat(j->dirfd, BACKUP_KEYS_FILE, 0);
		(void)rmdir(j->dir);
	} else
		log_info("backup of the datastore%s written into %s",
		    j->keyfile != NULL ? " and the keys" : "", j->dir);
	server_audit(j->srv, "server.backup", j->actor, j->r == 0, json_pack(
	    "{s:s,s:s,s:s?}", "path", j->dir, "result", j->r == 0 ? "ok" :
	    j->why != NULL ? j->why : wick_strerror(j->r), "keys",
	    j->keyfile != NULL ? BACKUP_KEYS_FILE : NULL));
	if (j->r != 0) {
		svc_fail(call, j->r == WICK_ERR_EXISTS ?
		    RPC_ALREADY_EXISTS : RPC_INTERNAL, "backup into %.300s "
		    "failed: %s", j->dir, j->why != NULL ? j->why :
		    wick_strerror(j->r));
		return;
	}
	resp.path = j->dir;
	resp.datastore_file = BACKUP_DS_FILE;
	resp.keys_file = j->keyfile != NULL ? BACKUP_KEYS_FILE : "";
	resp.created_at = server_now();
	svc_reply(call, &resp.base);
}

/* Only an absolute path without "." or ".." components: the server's
 * working directory is not the caller's. */
static int
backup_path_ok(const char *path)
{
	const char *c;

	if (*path != '/' || strlen(path) >= PATH_MAX - 32)
		return 0;
	for (c = path; (c = strstr(c, "/.")) != NULL; c++)
		if (c[2] == '/' || c[2] == '\0' || (c[2] == '.' &&
		    (c[3] == '/' || c[3] == '\0')))
			return 0;
	return 1;
}

void
admin_m_backup(struct rpc_call *call, const uint8_t *p, size_t n)
{
	struct audit_job		*j = rpc_call_data(call);
	struct server			*srv = j->srv;
	Wick__Admin__BackupRequest	*req;
	struct stat			 sb;
	const char			*why = NULL;
	int				 r;

	if ((req = wick__admin__backup_request__unpack(NULL, n, p)) == NULL) {
		svc_fail(call, RPC_INVALID_ARGUMENT, "malformed BackupRequest "
		    "message");
		return;
	}
	if (!backup_path_ok(req->path)) {
		svc_fail(call, RPC_INVALID_ARGUMENT, "the backup path must be "
		    "absolute, without \".\" or \"..\": \"%.200s\"", req->path);
		goto out;
	}
	if (mkdir(req->path, 0700) != 0) {
		r = errno;
		svc_fail(call, r == EEXIST ? RPC_ALREADY_EXISTS :
		    RPC_FAILED_PRECONDITION, "cannot create the backup "
		    "directory %.300s: %s", req->path, r == EEXIST ?
		    "it already exists (a backup never overwrites)" :
		    strerror(r));
		goto out;
	}
	/* What was made, not what the path names by now; 0700 whatever
	 * the umask, without following a symlink swapped in. */
	if ((j->dirfd = open(req->path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
	    O_CLOEXEC)) < 0 || fstat(j->dirfd, &sb) != 0 ||
	    sb.st_uid != geteuid() || fchmod(j->dirfd, 0700) != 0) {
		svc_fail(call, RPC_FAILED_PRECONDITION, "the backup directory "
		    "%.300s was replaced as it was made", req->path);
		goto out;
	}
	if (asprintf(&j->dir, "%s", req->path) < 0 ||
	    asprintf(&j->dbfile, "%s/%s", req->path, BACKUP_DS_FILE) < 0 ||
	    asprintf(&j->keyfile, "%s/%s", req->path, BACKUP_KEYS_FILE) < 0) {
		(void)rmdir(req->path);
		svc_fail(call, RPC_RESOURCE_EXHAUSTED, "out of memory");
		goto out;
	}
	/* The snapshot and the keys in the same loop turn: they agree. */
	if ((r = ds_backup_begin(srv->ds, j->dbfile, &j->bk, &why)) != 0 ||
	    (r = keymgr_export(srv->km, &j->keys)) != 0) {
		(void)rmdir(req->path);
		svc_fail(call, r == WICK_ERR_UNSUPPORTED ?
		    RPC_FAILED_PRECONDITION : RPC_INTERNAL, "cannot back up: "
		    "%s", why != NULL ? why : wick_strerror(r));
		goto out;
	}
	if (strcmp(keymgr_name(srv->km), "disk") != 0) {
		/* Keys in memory die with the server: nothing to restore. */
		log_warn("backup into %s: the KeyManager is \"%s\": no key "
		    "file is written", j->dir, keymgr_name(srv->km));
		buf_cleanup(&j->keys);
		free(j->keyfile);
		j->keyfile = NULL;
	}
	backup_write(j);
	backup_finish(call, j);
out:
	wick__admin__backup_request__free_unpacked(req, NULL);
}
