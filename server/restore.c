/*
 * restore.c: "wick-server restore": put a backup written by "wick-server
 * backup" in the places a configuration names, on a stopped server (a new
 * machine, or this one after a loss).
 *
 * The datastore is copied with SQLite's backup API into a temporary file
 * beside its destination and renamed over it, so a failure leaves what
 * was there; the key file the same way, from a buffer wiped after.  What
 * a restore would replace is refused unless -force is given.  The result
 * is opened as the server would open it (migrated if the backup is older)
 * and its audit chain verified before the command says it is done.
 */
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <sqlite3.h>

#include "buf.h"
#include "config.h"
#include "ds.h"
#include "flag.h"
#include "keymgr.h"
#include "log.h"
#include "restore.h"
#include "secpath.h"

#define RESTORE_DS_FILE		"datastore.sqlite3"
#define RESTORE_KEYS_FILE	"keys.json"

static void
restore_usage(FILE *f)
{
	fprintf(f,
"usage: wick-server restore -from DIR [-config FILE] [-force]\n"
"  -from DIR           a directory written by 'wick-server backup'\n"
"  -config FILE        the server's configuration: where its datastore\n"
"                      and key file go\n"
"  -expandEnv          expand $VAR and ${VAR} in the configuration file\n"
"  -force              replace an existing datastore and key file (stop\n"
"                      the server first)\n");
}

/* Does a server answer on the admin socket?  Then it holds the files. */
static int
server_running(const char *sock)
{
	struct sockaddr_un	sa;
	int			fd, up;

	if (sock == NULL || strlen(sock) >= sizeof(sa.sun_path))
		return 0;
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	memcpy(sa.sun_path, sock, strlen(sock));
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
		return 0;
	up = connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
	close(fd);
	return up;
}

/* A file that exists and is not empty. */
static int
has_data(const char *path)
{
	struct stat sb;

	return lstat(path, &sb) == 0 && (!S_ISREG(sb.st_mode) ||
	    sb.st_size > 0);
}

static int
sync_path(const char *path, int flags)
{
	int fd, r = 0;

	if ((fd = open(path, flags | O_CLOEXEC)) < 0)
		return -1;
	if (fsync(fd) != 0)
		r = -1;
	close(fd);
	return r;
}

/* Make a rename in path's directory durable. */
static void
sync_parent(const char *path)
{
	char	dir[4096], *slash;

	snprintf(dir, sizeof(dir), "%s", path);
	if ((slash = strrchr(dir, '/')) == NULL)
		snprintf(dir, sizeof(dir), ".");
	else if (slash == dir)
		dir[1] = '\0';
	else
		*slash = '\0';
	if (sync_path(dir, O_RDONLY | O_DIRECTORY) != 0)
		fprintf(stderr, "restore: warning: cannot sync %s: %s\n", dir,
		    strerror(errno));
}

static int
copy_datastore(const char *from, const char *to)
{
	sqlite3		*src = NULL, *dst = NULL;
	sqlite3_backup	*op;
	char		 tmp[4096], side[4096];
	const char	*sfx[] = { "-wal", "-shm", "-journal" };
	size_t		 i;
	int		 fd, rc, ok = 0;

	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.restore", to) >=
	    sizeof(tmp)) {
		fprintf(stderr, "restore: %s: path too long\n", to);
		return 1;
	}
	(void)unlink(tmp);
	if ((fd = open(tmp, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW |
	    O_CLOEXEC, 0600)) < 0) {
		fprintf(stderr, "restore: %s: %s\n", tmp, strerror(errno));
		return 1;
	}
	close(fd);
	if (sqlite3_open_v2(from, &src, SQLITE_OPEN_READONLY, NULL) !=
	    SQLITE_OK || sqlite3_open_v2(tmp, &dst, SQLITE_OPEN_READWRITE,
	    NULL) != SQLITE_OK) {
		fprintf(stderr, "restore: cannot open %s\n", src == NULL ||
		    dst == NULL ? tmp : from);
		goto out;
	}
	if ((op = sqlite3_backup_init(dst, "main", src, "main")) == NULL) {
		fprintf(stderr, "restore: %s\n", sqlite3_errmsg(dst));
		goto out;
	}
	rc = sqlite3_backup_step(op, -1);
	if (sqlite3_backup_finish(op) != SQLITE_OK || rc != SQLITE_DONE) {
		fprintf(stderr, "restore: copying %s: %s\n", from,
		    sqlite3_errmsg(dst));
		goto out;
	}
	ok = 1;
out:
	sqlite3_close(src);
	if (dst != NULL && sqlite3_close(dst) != SQLITE_OK)
		ok = 0;
	if (ok && sync_path(tmp, O_RDONLY) != 0) {
		fprintf(stderr, "restore: %s: %s\n", tmp, strerror(errno));
		ok = 0;
	}
	if (!ok) {
		(void)unlink(tmp);
		return 1;
	}
	/* A journal of the replaced file must not be applied to ours. */
	for (i = 0; i < sizeof(sfx) / sizeof(sfx[0]); i++) {
		snprintf(side, sizeof(side), "%s%s", to, sfx[i]);
		if (unlink(side) != 0 && errno != ENOENT) {
			fprintf(stderr, "restore: %s: %s\n", side,
			    strerror(errno));
			(void)unlink(tmp);
			return 1;
		}
	}
	if (rename(tmp, to) != 0) {
		fprintf(stderr, "restore: %s: %s\n", to, strerror(errno));
		(void)unlink(tmp);
		return 1;
	}
	sync_parent(to);
	return 0;
}

static int
copy_keys(const char *from, const char *to)
{
	struct keymgr	*km = NULL;
	struct buf	 b;
	const char	*why = NULL;
	char		 tmp[4096];
	ssize_t		 w;
	size_t		 off;
	int		 fd = -1, r = 1;

	buf_init(&b, KEYMGR_MAX_FILE);
	buf_set_secret(&b);
	/* Read as the server will: mode, syntax and every key checked. */
	if (keymgr_open_disk(from, &km, &why) != 0) {
		fprintf(stderr, "restore: %s: %s\n", from, why != NULL ? why :
		    "cannot read the key file");
		goto out;
	}
	if (keymgr_export(km, &b) != 0) {
		fprintf(stderr, "restore: %s: cannot read the keys\n", from);
		goto out;
	}
	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.restore", to) >=
	    sizeof(tmp)) {
		fprintf(stderr, "restore: %s: path too long\n", to);
		goto out;
	}
	(void)unlink(tmp);
	if ((fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW |
	    O_CLOEXEC, 0600)) < 0) {
		fprintf(stderr, "restore: %s: %s\n", tmp, strerror(errno));
		goto out;
	}
	for (off = 0; off < buf_len(&b); off += (size_t)w)
		if ((w = write(fd, buf_ptr(&b) + off, buf_len(&b) - off)) <
		    0 && errno != EINTR) {
			fprintf(stderr, "restore: %s: %s\n", tmp,
			    strerror(errno));
			goto out;
		} else if (w < 0)
			w = 0;
	if (fsync(fd) != 0 || close(fd) != 0) {
		fd = -1;
		fprintf(stderr, "restore: %s: %s\n", tmp, strerror(errno));
		goto out;
	}
	fd = -1;
	if (rename(tmp, to) != 0) {
		fprintf(stderr, "restore: %s: %s\n", to, strerror(errno));
		goto out;
	}
	sync_parent(to);
	r = 0;
out:
	if (fd >= 0)
		close(fd);
	if (r != 0)
		(void)unlink(tmp);
	keymgr_free(km);
	buf_cleanup(&b);
	return r;
}

/* Open the result as the server would and walk its audit chain. */
static int
check_restored(const struct server_config *cfg)
{
	struct ds_audit_verify	 v;
	struct ds		*ds;
	const char		*why = NULL;
	int			 r;

	if ((r = ds_open(cfg->ds_type, cfg->ds_conn, &ds, &why)) != 0) {
		fprintf(stderr, "restore: the restored datastore does not "
		    "open: %s\n", why != NULL ? why : wick_strerror(r));
		return 1;
	}
	memset(&v, 0, sizeof(v));
	if ((r = ds_check(ds, &why)) == 0)
		while (!v.done && (r = ds_audit_verify_step(ds, &v, 0)) == 0)
			;
	ds_close(ds);
	if (r != 0) {
		fprintf(stderr, "restore: the restored datastore fails its "
		    "check: %s\n", why != NULL ? why : wick_strerror(r));
		return 1;
	}
	if (v.bad_seq != 0) {
		fprintf(stderr, "restore: the restored audit trail is broken "
		    "at seq %lld: %s\n", (long long)v.bad_seq, v.why);
		return 1;
	}
	printf("Restored the datastore into %s\n", cfg->ds_conn);
	printf("Audit trail OK: %lld events verified; head seq %lld, hash "
	    "%s\n", (long long)v.count, (long long)v.next_seq - 1,
	    v.prev_hash);
	return 0;
}

int
server_restore(int argc, char **argv)
{
	struct server_flags	 fl;
	struct server_config	 cfg;
	struct conf_error	 err;
	const char		*from = NULL;
	char			 dsfile[4096], keyfile[4096], why[512];
	int			 force = 0, i, r, rc = 1;

	memset(&fl, 0, sizeof(fl));
	for (i = 1; i < argc; i++) {
		if (flag_value(argc, argv, &i, "from", &from) ||
		    flag_value(argc, argv, &i, "config", &fl.config))
			continue;
		if (flag_bool(argv[i], "force")) {
			force = 1;
			continue;
		}
		if (flag_bool(argv[i], "expandEnv")) {
			fl.expand_env = 1;
			continue;
		}
		if (flag_bool(argv[i], "h") || flag_bool(argv[i], "help")) {
			restore_usage(stdout);
			return 0;
		}
		fprintf(stderr, "unknown flag %s\n", argv[i]);
		restore_usage(stderr);
		return 1;
	}
	if (from == NULL || *from == '\0') {
		fprintf(stderr, "restore needs -from DIR\n");
		restore_usage(stderr);
		return 1;
	}
	log_init("server", LOG_LEVEL_WARN, LOG_FORMAT_TEXT);
	if ((r = server_config_load(&fl, &cfg, &err)) != 0) {
		fprintf(stderr, "%s%s%s\n", fl.config != NULL ? fl.config : "",
		    fl.config != NULL ? ": " : "", err.msg[0] != '\0' ?
		    err.msg : wick_strerror(r));
		goto out;
	}
	if (strcmp(cfg.ds_type, "sqlite3") != 0 ||
	    strncmp(cfg.ds_conn, "file:", 5) == 0 ||
	    strcmp(cfg.ds_conn, ":memory:") == 0) {
		fprintf(stderr, "restore: the DataStore must be a sqlite3 file "
		    "named by its path\n");
		goto out;
	}
	snprintf(dsfile, sizeof(dsfile), "%s/%s", from, RESTORE_DS_FILE);
	snprintf(keyfile, sizeof(keyfile), "%s/%s", from, RESTORE_KEYS_FILE);
	if (access(dsfile, R_OK) != 0) {
		fprintf(stderr, "restore: %s: %s (not a wick-server backup?)\n",
		    dsfile, strerror(errno));
		goto out;
	}
	if (strcmp(cfg.keymgr, "disk") != 0 || cfg.keys_path == NULL) {
		fprintf(stderr, "restore: the KeyManager must be \"disk\": "
		    "the CA keys go into its keys_path\n");
		goto out;
	}
	if (access(keyfile, R_OK) != 0) {
		fprintf(stderr, "restore: %s: %s (a backup without keys "
		    "cannot restore the CA)\n", keyfile, strerror(errno));
		goto out;
	}
	if (server_running(cfg.socket_path)) {
		fprintf(stderr, "restore: a server answers on %s: stop it "
		    "first\n", cfg.socket_path);
		goto out;
	}
	if (!force && (has_data(cfg.ds_conn) || has_data(cfg.keys_path))) {
		fprintf(stderr, "restore: %s or %s already holds data; stop "
		    "the server and give -force to replace it\n", cfg.ds_conn,
		    cfg.keys_path);
		goto out;
	}
	if (secpath_mkdir_parent(cfg.ds_conn, 0700, why, sizeof(why)) != 0 ||
	    secpath_mkdir_parent(cfg.keys_path, 0700, why, sizeof(why)) !=
	    0) {
		fprintf(stderr, "restore: %s\n", why);
		goto out;
	}
	/* Keys first: a datastore whose CA journal names absent keys is
	 * worse than keys no datastore uses yet. */
	if (copy_keys(keyfile, cfg.keys_path) != 0 ||
	    copy_datastore(dsfile, cfg.ds_conn) != 0)
		goto out;
	printf("Restored the keys into %s\n", cfg.keys_path);
	rc = check_restored(&cfg);
out:
	server_config_cleanup(&cfg);
	return rc;
}
