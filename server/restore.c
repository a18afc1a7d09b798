/*
 * restore.c: "wick-server restore": put a backup written by "wick-server
 * backup" in the places a configuration names, on a stopped server (a new
 * machine, or this one after a loss).
 *
 * The datastore is copied with SQLite's backup API into a temporary file
 * beside its destination, the key file the same way from a buffer wiped
 * after.  The copy is opened as the server would open it (migrated if the
 * backup is older), its audit chain verified, its trust domain and CA
 * journal checked against the configuration and the key file; only then
 * are both renamed into place, so a bad backup leaves what was there.
 * What a restore would replace is refused unless -force is given, and a
 * datastore some process holds open always is.
 *
 * With PostgreSQL the database is restored with the engine's own tools
 * first; restore then checks it and puts the key file in place
 * (restore_pg()).
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

#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <sqlite3.h>

#include "buf.h"
#include "config.h"
#include "ds.h"
#include "flag.h"
#include "keymgr.h"
#include "log.h"
#include "pkey.h"
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
"                      (PostgreSQL: the directory holding the saved\n"
"                      keys.json; restore the database first)\n"
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

/*
 * The pid of a process holding the datastore open, else 0.  Every SQLite
 * connection to a WAL database keeps a read lock on the -shm file's
 * locking bytes (120 to 128) while it is open: a server still draining,
 * or one whose admin socket is elsewhere, is seen too.
 */
static pid_t
ds_in_use(const char *path)
{
	struct flock	fl;
	char		shm[4096];
	int		fd;

	if ((size_t)snprintf(shm, sizeof(shm), "%s-shm", path) >=
	    sizeof(shm) || (fd = open(shm, O_RDONLY | O_NOFOLLOW |
	    O_CLOEXEC)) < 0)
		return 0;
	memset(&fl, 0, sizeof(fl));
	fl.l_type = F_WRLCK;
	fl.l_whence = SEEK_SET;
	fl.l_start = 120;
	fl.l_len = 9;
	if (fcntl(fd, F_GETLK, &fl) != 0)
		fl.l_type = F_UNLCK;
	close(fd);
	return fl.l_type != F_UNLCK ? (fl.l_pid > 0 ? fl.l_pid : -1) : 0;
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

/* The backup's datastore into tmp (beside its destination). */
static int
copy_datastore(const char *from, const char *tmp)
{
	sqlite3		*src = NULL, *dst = NULL;
	sqlite3_backup	*op;
	sqlite3_stmt	*p = NULL;
	int		 fd, rc, ok = 0;

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
	/* Code that would run on the server's writes: wick makes none. */
	if (sqlite3_prepare_v2(dst, "SELECT name FROM sqlite_master WHERE"
	    " type IN ('trigger', 'view') LIMIT 1", -1, &p, NULL) !=
	    SQLITE_OK || sqlite3_step(p) != SQLITE_DONE) {
		fprintf(stderr, "restore: %s holds a trigger or view that "
		    "wick never makes, or cannot be read\n", from);
		sqlite3_finalize(p);
		goto out;
	}
	sqlite3_finalize(p);
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
	return 0;
}

/* The checked copy in tmp renamed over the datastore at to. */
static int
install_datastore(const char *tmp, const char *to)
{
	char		 side[4096];
	const char	*sfx[] = { "-wal", "-shm", "-journal" };
	size_t		 i;

	/* A journal of the replaced file must not be applied to ours. */
	for (i = 0; i < sizeof(sfx) / sizeof(sfx[0]); i++) {
		snprintf(side, sizeof(side), "%s%s", to, sfx[i]);
		if (unlink(side) != 0 && errno != ENOENT) {
			fprintf(stderr, "restore: %s: %s\n", side,
			    strerror(errno));
			return 1;
		}
	}
	if (rename(tmp, to) != 0) {
		fprintf(stderr, "restore: %s: %s\n", to, strerror(errno));
		return 1;
	}
	sync_parent(to);
	return 0;
}

/* The backup's key file, read and checked, into tmp; *kmp keeps it. */
static int
copy_keys(const char *from, const char *tmp, struct keymgr **kmp)
{
	struct keymgr	*km = NULL;
	struct buf	 b;
	const char	*why = NULL;
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
	r = 0;
	*kmp = km;
	km = NULL;
out:
	if (fd >= 0)
		close(fd);
	if (r != 0)
		(void)unlink(tmp);
	keymgr_free(km);
	buf_cleanup(&b);
	return r;
}

static int
count_bundle(void *arg, const char *td_id, const uint8_t *data, size_t len)
{
	(*(int *)arg)++;
	return 0;
}

/*
 * Every key the CA journal names is in the key file, and each X.509
 * authority's certificate is of its key: else the server would drop the
 * CA and make a new one, and no agent would trust it.
 */
static int
journal_matches(struct ds *ds, struct keymgr *km)
{
	json_t		*j = NULL, *o;
	uint8_t		*data = NULL, *der = NULL;
	const uint8_t	*q;
	const char	*kind, *slot, *b64;
	EVP_PKEY	*key = NULL;
	X509		*cert = NULL;
	char		 id[16];
	size_t		 len, i, blen;
	int		 n, r, bad = 1;

	if ((r = ds_ca_journal_get(ds, keymgr_server_id(km), &data,
	    &len)) == WICK_ERR_NOT_FOUND) {
		/* No journal of this key file's server: fine for a
		 * datastore no server has run on (no bundle yet). */
		n = 0;
		if ((r = ds_bundles_foreach(ds, count_bundle, &n)) == 0 &&
		    n == 0)
			return 0;
		fprintf(stderr, "restore: the backup's key file does not "
		    "match its datastore (no CA journal of server %s)\n",
		    keymgr_server_id(km));
		return 1;
	}
	if (r != 0 || (j = json_loadb((const char *)data, len, 0,
	    NULL)) == NULL || !json_is_array(json_object_get(j,
	    "authorities"))) {
		fprintf(stderr, "restore: the backup's CA journal cannot be "
		    "read\n");
		goto out;
	}
	json_array_foreach(json_object_get(j, "authorities"), i, o) {
		kind = json_string_value(json_object_get(o, "kind"));
		slot = json_string_value(json_object_get(o, "slot"));
		if (kind == NULL || slot == NULL || strlen(kind) > 8 ||
		    strlen(slot) != 1) {
			fprintf(stderr, "restore: the backup's CA journal is "
			    "malformed\n");
			goto out;
		}
		snprintf(id, sizeof(id), "%s-%s", kind, slot);
		if (keymgr_get(km, id, &key) != 0) {
			fprintf(stderr, "restore: the backup's CA journal "
			    "names key %s, which its key file does not hold\n",
			    id);
			goto out;
		}
		if (strcmp(kind, "x509") == 0) {
			b64 = json_string_value(json_object_get(o, "cert"));
			if (b64 == NULL || (blen = strlen(b64)) < 4 ||
			    blen % 4 != 0 || blen > 65536)
				n = -1;
			else {
				der = malloc(blen / 4 * 3);
				n = der == NULL ? -1 : EVP_DecodeBlock(der,
				    (const unsigned char *)b64, (int)blen);
			}
			if (n > 0) {
				n -= (b64[blen - 1] == '=') +
				    (b64[blen - 2] == '=');
				q = der;
				cert = d2i_X509(NULL, &q, n);
			}
			if (cert == NULL || !pkey_public_equal(
			    X509_get0_pubkey(cert), key)) {
				fprintf(stderr, "restore: key %s in the backup's "
				    "key file does not match the CA certificate "
				    "in its datastore\n", id);
				goto out;
			}
			X509_free(cert);
			cert = NULL;
			free(der);
			der = NULL;
		}
		EVP_PKEY_free(key);
		key = NULL;
	}
	bad = 0;
out:
	EVP_PKEY_free(key);
	X509_free(cert);
	free(der);
	json_decref(j);
	free(data);
	return bad;
}

/*
 * The datastore ds checked before anything is replaced: its audit chain
 * walked, and it is a datastore of this trust domain whose CA the key
 * file holds.  ds stays open.
 */
static int
check_ds(const struct server_config *cfg, struct ds *ds, struct keymgr *km,
    struct ds_audit_verify *v)
{
	uint8_t		*data = NULL;
	size_t		 len;
	const char	*why = NULL;
	char		 td[512];
	int		 r;

	memset(v, 0, sizeof(*v));
	if ((r = ds_check(ds, &why)) == 0)
		while (!v->done && (r = ds_audit_verify_step(ds, v, 0)) == 0)
			;
	if (r != 0) {
		fprintf(stderr, "restore: the backup's datastore fails its "
		    "check: %s\n", why != NULL ? why : wick_strerror(r));
		return 1;
	}
	if (v->bad_seq != 0) {
		fprintf(stderr, "restore: the backup's audit trail is broken "
		    "at seq %lld: %s\n", (long long)v->bad_seq, v->why);
		return 1;
	}
	snprintf(td, sizeof(td), "spiffe://%s", cfg->trust_domain);
	if ((r = ds_bundle_get(ds, td, &data, &len)) != 0) {
		fprintf(stderr, "restore: the backup holds no bundle of %s: "
		    "%s\n", td, r == WICK_ERR_NOT_FOUND ? "a datastore of "
		    "another trust domain, or an empty one?" :
		    wick_strerror(r));
		return 1;
	}
	free(data);
	return journal_matches(ds, km);
}

/* The copy in tmp opened as the server would (migrating it), checked. */
static int
check_backup(const struct server_config *cfg, const char *tmp,
    struct keymgr *km, struct ds_audit_verify *v)
{
	struct ds	*ds;
	const char	*why = NULL;
	int		 r, bad;

	if ((r = ds_open(cfg->ds_type, tmp, &ds, &why)) != 0) {
		fprintf(stderr, "restore: the backup's datastore does not "
		    "open: %s\n", why != NULL ? why : wick_strerror(r));
		return 1;
	}
	bad = check_ds(cfg, ds, km, v);
	ds_close(ds);
	return bad;
}

/*
 * PostgreSQL: the database is the engine's to back up and restore
 * (pg_dump, then pg_restore or psql into an empty database); what wick
 * adds is the server's key file.  The restored database is read, never
 * written (nothing is created in a database not restored yet), checked
 * against the key file as a SQLite backup is, and only then is the key
 * file put in place.
 */
static int
restore_pg(const struct server_config *cfg, const char *from, int force)
{
	struct ds_audit_verify	 v;
	struct keymgr		*km = NULL;
	struct ds		*ds = NULL;
	const char		*why = NULL;
	char			 keyfile[4096], keytmp[4096], msg[512];
	int			 r, rc = 1;

	if ((size_t)snprintf(keyfile, sizeof(keyfile), "%s/%s", from,
	    RESTORE_KEYS_FILE) >= sizeof(keyfile) || (size_t)snprintf(keytmp,
	    sizeof(keytmp), "%s.restore", cfg->keys_path != NULL ?
	    cfg->keys_path : "") >= sizeof(keytmp)) {
		fprintf(stderr, "restore: path too long\n");
		return 1;
	}
	if (strcmp(cfg->keymgr, "disk") != 0 || cfg->keys_path == NULL) {
		fprintf(stderr, "restore: the KeyManager must be \"disk\": "
		    "the CA keys go into its keys_path\n");
		return 1;
	}
	if (access(keyfile, R_OK) != 0) {
		fprintf(stderr, "restore: %s: %s (with PostgreSQL, -from names "
		    "the directory holding the server's saved key file; the "
		    "database itself is restored with pg_restore or psql)\n",
		    keyfile, strerror(errno));
		return 1;
	}
	if (server_running(cfg->socket_path)) {
		fprintf(stderr, "restore: a server answers on %s: stop it "
		    "first\n", cfg->socket_path);
		return 1;
	}
	if (!force && has_data(cfg->keys_path)) {
		fprintf(stderr, "restore: %s already holds keys; stop the "
		    "server and give -force to replace them\n", cfg->keys_path);
		return 1;
	}
	if (secpath_mkdir_parent(cfg->keys_path, 0700, msg, sizeof(msg)) !=
	    0) {
		fprintf(stderr, "restore: %s\n", msg);
		return 1;
	}
	if (copy_keys(keyfile, keytmp, &km) != 0)
		return 1;
	if ((r = ds_open_readonly(cfg->ds_type, cfg->ds_conn, &ds, &why)) !=
	    0) {
		fprintf(stderr, "restore: the PostgreSQL database cannot be "
		    "read: %s (restore it first: pg_restore or psql into an "
		    "empty database, then run this again)\n", why != NULL ?
		    why : wick_strerror(r));
		goto out;
	}
	if (check_ds(cfg, ds, km, &v) != 0)
		goto out;
	if (rename(keytmp, cfg->keys_path) != 0) {
		fprintf(stderr, "restore: %s: %s\n", cfg->keys_path,
		    strerror(errno));
		goto out;
	}
	sync_parent(cfg->keys_path);
	printf("Restored the keys into %s (server ID %s)\n", cfg->keys_path,
	    keymgr_server_id(km));
	printf("The PostgreSQL database holds their CA journal\n");
	printf("Audit trail OK: %lld events verified; head seq %lld, hash "
	    "%s\n", (long long)v.count, (long long)v.next_seq - 1,
	    v.prev_hash);
	rc = 0;
out:
	if (rc != 0)
		(void)unlink(keytmp);
	if (ds != NULL)
		ds_close(ds);
	keymgr_free(km);
	return rc;
}

int
server_restore(int argc, char **argv)
{
	struct server_flags	 fl;
	struct server_config	 cfg;
	struct conf_error	 err;
	struct ds_audit_verify	 v;
	struct keymgr		*km = NULL;
	const char		*from = NULL;
	char			 dsfile[4096], keyfile[4096], why[512];
	char			 dstmp[4096], keytmp[4096];
	pid_t			 pid;
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
	if (strcmp(cfg.ds_type, "postgres") == 0) {
		rc = restore_pg(&cfg, from, force);
		goto out;
	}
	if (strcmp(cfg.ds_type, "sqlite3") != 0 ||
	    strncmp(cfg.ds_conn, "file:", 5) == 0 ||
	    strcmp(cfg.ds_conn, ":memory:") == 0) {
		fprintf(stderr, "restore: the DataStore must be a sqlite3 file "
		    "named by its path, or postgres\n");
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
	if ((pid = ds_in_use(cfg.ds_conn)) != 0) {
		fprintf(stderr, "restore: %s is in use (process %ld has it "
		    "open): stop the server first\n", cfg.ds_conn,
		    (long)pid);
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
	if ((size_t)snprintf(dstmp, sizeof(dstmp), "%s.restore",
	    cfg.ds_conn) >= sizeof(dstmp) || (size_t)snprintf(keytmp,
	    sizeof(keytmp), "%s.restore", cfg.keys_path) >= sizeof(keytmp)) {
		fprintf(stderr, "restore: path too long\n");
		goto out;
	}
	/* Both copied and checked beside their places, then renamed in:
	 * a bad backup leaves what was there. */
	if (copy_keys(keyfile, keytmp, &km) != 0)
		goto out;
	if (copy_datastore(dsfile, dstmp) != 0 ||
	    check_backup(&cfg, dstmp, km, &v) != 0) {
		(void)unlink(dstmp);
		(void)unlink(keytmp);
		goto out;
	}
	/* Keys first: a datastore whose CA journal names absent keys is
	 * worse than keys no datastore uses yet. */
	if (rename(keytmp, cfg.keys_path) != 0) {
		fprintf(stderr, "restore: %s: %s\n", cfg.keys_path,
		    strerror(errno));
		(void)unlink(dstmp);
		(void)unlink(keytmp);
		goto out;
	}
	sync_parent(cfg.keys_path);
	printf("Restored the keys into %s\n", cfg.keys_path);
	if (install_datastore(dstmp, cfg.ds_conn) != 0) {
		(void)unlink(dstmp);
		goto out;
	}
	printf("Restored the datastore into %s\n", cfg.ds_conn);
	printf("Audit trail OK: %lld events verified; head seq %lld, hash "
	    "%s\n", (long long)v.count, (long long)v.next_seq - 1,
	    v.prev_hash);
	rc = 0;
out:
	keymgr_free(km);
	server_config_cleanup(&cfg);
	return rc;
}
