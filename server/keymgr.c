/*
 * keymgr.c: the server's key manager, "disk" and "memory".
 */
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rand.h>

#include "keymgr.h"
#include "log.h"
#include "xmalloc.h"

/* One key as PEM. */
#define KEYMGR_MAX_PEM		(2 * PKEY_MAX_DER)

struct keymgr {
	char		*path;		/* NULL for "memory" */
	char		*ids[KEYMGR_MAX_KEYS];
	EVP_PKEY	*keys[KEYMGR_MAX_KEYS];
	size_t		 n;
	char		 server_id[KEYMGR_SERVER_ID_LEN + 1];
	int		 need_id;	/* a file from before server IDs */
};

/* A random UUID (version 4) as the server ID. */
static void
new_server_id(struct keymgr *km)
{
	uint8_t	u[16];

	if (RAND_bytes(u, sizeof(u)) != 1)
		fatal("RAND_bytes failed");
	u[6] = (u[6] & 0x0f) | 0x40;
	u[8] = (u[8] & 0x3f) | 0x80;
	snprintf(km->server_id, sizeof(km->server_id),
	    "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-"
	    "%02x%02x%02x%02x%02x%02x", u[0], u[1], u[2], u[3], u[4], u[5],
	    u[6], u[7], u[8], u[9], u[10], u[11], u[12], u[13], u[14], u[15]);
}

/* [0-9a-f-]{36} */
static int
server_id_ok(const char *s)
{
	size_t	i;

	if (strlen(s) != KEYMGR_SERVER_ID_LEN)
		return 0;
	for (i = 0; s[i] != '\0'; i++)
		if (!((s[i] >= '0' && s[i] <= '9') ||
		    (s[i] >= 'a' && s[i] <= 'f') || s[i] == '-'))
			return 0;
	return 1;
}

static int
id_ok(const char *id)
{
	size_t i, n = strlen(id);

	if (n == 0 || n > KEYMGR_MAX_ID)
		return 0;
	for (i = 0; i < n; i++)
		if (!((id[i] >= 'a' && id[i] <= 'z') || (id[i] >= 'A' &&
		    id[i] <= 'Z') || (id[i] >= '0' && id[i] <= '9') ||
		    id[i] == '-' || id[i] == '_'))
			return 0;
	return 1;
}

/*
 * Read the whole key file (at most KEYMGR_MAX_FILE bytes) into the secret
 * buf b.  WICK_ERR_NOT_FOUND when there is no file yet.
 */
static int
read_file(const char *path, struct buf *b, const char **why)
{
	struct stat	 st;
	uint8_t		*p = NULL;
	size_t		 size = 0, got = 0;
	ssize_t		 n;
	int		 fd, r = 0;

	/* O_NONBLOCK: a FIFO planted at path must not hang us. */
	if ((fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK |
	    O_CLOEXEC)) < 0) {
		if (errno == ENOENT)
			return WICK_ERR_NOT_FOUND;
		if (errno == ELOOP) {
			*why = "the key file is a symbolic link";
			return WICK_ERR_INVALID;
		}
		log_error("key file %s: %s", path, strerror(errno));
		*why = "cannot open the key file";
		return WICK_ERR_IO;
	}
	if (fstat(fd, &st) != 0) {
		*why = "cannot stat the key file";
		r = WICK_ERR_IO;
	} else if (!S_ISREG(st.st_mode)) {
		*why = "the key file is not a regular file";
		r = WICK_ERR_INVALID;
	} else if ((st.st_mode & 077) != 0) {
		*why = "the key file is open to group or others (want 0600)";
		r = WICK_ERR_PERM;
	} else if (st.st_uid != geteuid()) {
		*why = "the key file belongs to another user";
		r = WICK_ERR_PERM;
	} else if (st.st_size > KEYMGR_MAX_FILE) {
		*why = "the key file is larger than 1 MiB";
		r = WICK_ERR_LIMIT;
	}
	if (r == 0) {
		size = (size_t)st.st_size;
		if ((r = buf_reserve(b, size + 1, &p)) != 0) {
			*why = "no memory for the key file";
			goto out;
		}
	}
	/* Up to one byte more than fstat said, to notice a growing file. */
	while (r == 0 && got <= size) {
		if ((n = read(fd, p + got, size + 1 - got)) < 0) {
			if (errno == EINTR)
				continue;
			*why = "cannot read the key file";
			r = WICK_ERR_IO;
		} else if (n == 0)
			break;
		else
			got += (size_t)n;
	}
	if (r == 0 && got > size) {
		*why = "the key file changed while it was read";
		r = WICK_ERR_INVALID;
	}
	if (r == 0)
		buf_commit(b, got);
out:
	close(fd);
	return r;
}

/* One PKCS#8 PEM block ("PRIVATE KEY") of a supported type. */
static int
key_from_pem(const char *pem, size_t len, EVP_PKEY **out)
{
	BIO		*bio;
	char		*name = NULL, *hdr = NULL;
	unsigned char	*der = NULL;
	long		 dlen = 0;
	int		 r = WICK_ERR_INVALID;

	*out = NULL;
	if (len > KEYMGR_MAX_PEM)
		return WICK_ERR_LIMIT;
	if ((bio = BIO_new_mem_buf(pem, (int)len)) == NULL)
		return WICK_ERR_ALLOC;
	if (PEM_read_bio_ex(bio, &name, &hdr, &der, &dlen,
	    PEM_FLAG_SECURE | PEM_FLAG_ONLY_B64) == 1 &&
	    strcmp(name, PEM_STRING_PKCS8INF) == 0 && *hdr == '\0')
		r = pkey_from_pkcs8_der(der, (size_t)dlen, out);
	OPENSSL_secure_free(name);
	OPENSSL_secure_free(hdr);
	OPENSSL_secure_clear_free(der, (size_t)dlen);
	BIO_free(bio);
	ERR_clear_error();
	return r;
}

/* Wipe every string member of the "keys" object of doc. */
static void
wipe_keys(json_t *doc)
{
	const char	*id;
	json_t		*v;

	json_object_foreach(json_object_get(doc, "keys"), id, v)
		if (json_is_string(v))
			wipe((char *)json_string_value(v),
			    json_string_length(v));
}

static int
load(struct keymgr *km, const char **why)
{
	struct buf	 b;
	json_error_t	 jerr;
	json_t		*doc = NULL, *keys, *v;
	const char	*id;
	EVP_PKEY	*pk;
	int		 r;

	new_server_id(km);

	buf_init(&b, KEYMGR_MAX_FILE + 1);
	buf_set_secret(&b);
	if ((r = read_file(km->path, &b, why)) != 0) {
		buf_cleanup(&b);
		return r == WICK_ERR_NOT_FOUND ? 0 : r;
	}
	*why = "the key file is not valid JSON";
	r = WICK_ERR_INVALID;
	if ((doc = json_loadb((const char *)buf_ptr(&b), buf_len(&b),
	    JSON_REJECT_DUPLICATES, &jerr)) == NULL)
		goto out;
	*why = "the key file has no \"keys\" object";
	if (!json_is_object(keys = json_object_get(doc, "keys")))
		goto out;
	*why = "the key file's \"server_id\" is not a UUID";
	if ((v = json_object_get(doc, "server_id")) != NULL) {
		if (!json_is_string(v) || !server_id_ok(json_string_value(v)))
			goto out;
		snprintf(km->server_id, sizeof(km->server_id), "%s",
		    json_string_value(v));
	} else
		km->need_id = 1;
	*why = "the key file holds more than 64 keys";
	if (json_object_size(keys) > KEYMGR_MAX_KEYS)
		goto out;
	json_object_foreach(keys, id, v) {
		*why = "a key ID in the key file is not [A-Za-z0-9_-]{1,64}";
		if (!id_ok(id))
			goto out;
		*why = "a key in the key file is not a PKCS#8 PEM private "
		    "key of a supported type";
		if (!json_is_string(v) || key_from_pem(json_string_value(v),
		    json_string_length(v), &pk) != 0)
			goto out;
		km->ids[km->n] = xstrdup(id);
		km->keys[km->n++] = pk;
	}
	*why = NULL;
	r = 0;
out:
	if (doc != NULL) {
		wipe_keys(doc);
		json_decref(doc);
	}
	buf_cleanup(&b);
	return r;
}

/* Every key as {"keys":{id:PEM}} into the secret buf out. */
static int
serialize(struct keymgr *km, struct buf *out)
{
	struct buf	 pem;
	json_t		*doc, *keys;
	char		*s;
	size_t		 i;
	int		 r = 0;

	doc = json_object();
	keys = json_object();
	if (doc == NULL || keys == NULL || json_object_set_new(doc, "keys",
	    keys) != 0 || json_object_set_new(doc, "server_id",
	    json_string(km->server_id)) != 0) {
		json_decref(doc);
		return WICK_ERR_ALLOC;
	}
	for (i = 0; i < km->n && r == 0; i++) {
		buf_init(&pem, KEYMGR_MAX_PEM);
		if ((r = pkey_to_pkcs8_pem(km->keys[i], &pem)) == 0 &&
		    (r = buf_put_u8(&pem, 0)) == 0 &&
		    json_object_set_new(keys, km->ids[i], json_string(
		    (const char *)buf_ptr(&pem))) != 0)
			r = WICK_ERR_ALLOC;
		buf_cleanup(&pem);
	}
	if (r == 0) {
		if ((s = json_dumps(doc, JSON_INDENT(2) | JSON_SORT_KEYS)) ==
		    NULL)
			r = WICK_ERR_ALLOC;
		else {
			r = buf_put_cstr(out, s);
			freezero(s, strlen(s));
		}
	}
	wipe_keys(doc);
	json_decref(doc);
	return r;
}

static int
write_all(int fd, const uint8_t *p, size_t len)
{
	ssize_t n;

	while (len > 0) {
		if ((n = write(fd, p, len)) < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Make the rename durable; a failure here leaves a valid file either way. */
static void
sync_dir(const char *path)
{
	char	*copy = xstrdup(path);
	int	 dfd;

	if ((dfd = open(dirname(copy), O_RDONLY | O_DIRECTORY |
	    O_CLOEXEC)) < 0 || fsync(dfd) != 0)
		log_warn("key file %s: cannot sync its directory: %s", path,
		    strerror(errno));
	if (dfd >= 0)
		close(dfd);
	free(copy);
}

/* Write every key to a new file and rename it over the old one. */
static int
persist(struct keymgr *km)
{
	struct buf	 out;
	char		*tmp = NULL;
	int		 fd = -1, r;

	if (km->path == NULL)
		return 0;
	buf_init(&out, KEYMGR_MAX_FILE);
	buf_set_secret(&out);
	if ((r = serialize(km, &out)) != 0)
		goto out;
	if (asprintf(&tmp, "%s.tmp", km->path) < 0)
		fatal("out of memory");
	/* A leftover from a crash; O_EXCL then refuses anything planted. */
	if (unlink(tmp) != 0 && errno != ENOENT)
		log_warn("key file %s: %s", tmp, strerror(errno));
	r = WICK_ERR_IO;
	if ((fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW |
	    O_CLOEXEC, 0600)) < 0) {
		log_error("key file %s: %s", tmp, strerror(errno));
		goto out;
	}
	if (write_all(fd, buf_ptr(&out), buf_len(&out)) != 0 ||
	    fsync(fd) != 0) {
		log_error("key file %s: %s", tmp, strerror(errno));
		goto out;
	}
	if (close(fd) != 0) {
		fd = -1;
		log_error("key file %s: %s", tmp, strerror(errno));
		goto out;
	}
	fd = -1;
	if (rename(tmp, km->path) != 0) {
		log_error("key file %s: rename: %s", km->path,
		    strerror(errno));
		goto out;
	}
	sync_dir(km->path);
	r = 0;
out:
	if (fd >= 0)
		close(fd);
	if (r != 0 && tmp != NULL)
		(void)unlink(tmp);
	free(tmp);
	buf_cleanup(&out);
	return r;
}

int
keymgr_export(struct keymgr *km, struct buf *out)
{
	return serialize(km, out);
}

int
keymgr_open_disk(const char *path, struct keymgr **out, const char **why)
{
	struct keymgr	*km;
	int		 r;

	*out = NULL;
	*why = NULL;
	km = xcalloc(1, sizeof(*km));
	km->path = xstrdup(path);
	if ((r = load(km, why)) != 0) {
		keymgr_free(km);
		return r;
	}
	*out = km;
	return 0;
}

int
keymgr_open_memory(struct keymgr **out)
{
	*out = xcalloc(1, sizeof(**out));
	new_server_id(*out);
	return 0;
}

void
keymgr_free(struct keymgr *km)
{
	size_t i;

	if (km == NULL)
		return;
	/* EVP_PKEY_free clears the private parts. */
	for (i = 0; i < km->n; i++) {
		free(km->ids[i]);
		EVP_PKEY_free(km->keys[i]);
	}
	free(km->path);
	free(km);
}

const char *
keymgr_server_id(const struct keymgr *km)
{
	return km->server_id;
}

int
keymgr_keep_server_id(struct keymgr *km)
{
	int r;

	if (!km->need_id)
		return 0;
	if ((r = persist(km)) == 0)
		km->need_id = 0;
	return r;
}

const char *
keymgr_name(const struct keymgr *km)
{
	return km->path != NULL ? "disk" : "memory";
}

int
keymgr_get(struct keymgr *km, const char *id, EVP_PKEY **out)
{
	size_t i;

	*out = NULL;
	for (i = 0; i < km->n; i++)
		if (strcmp(km->ids[i], id) == 0) {
			/* The caller drops this reference. */
			if (!EVP_PKEY_up_ref(km->keys[i]))
				return WICK_ERR_CRYPTO;
			*out = km->keys[i];
			return 0;
		}
	return WICK_ERR_NOT_FOUND;
}

int
keymgr_generate(struct keymgr *km, const char *id, enum pkey_type type,
    EVP_PKEY **out)
{
	EVP_PKEY	*pk, *old = NULL;
	size_t		 i;
	int		 r;

	if (out != NULL)
		*out = NULL;
	if (!id_ok(id))
		return WICK_ERR_INVALID;
	for (i = 0; i < km->n; i++)
		if (strcmp(km->ids[i], id) == 0)
			break;
	if (i == km->n && km->n == KEYMGR_MAX_KEYS)
		return WICK_ERR_LIMIT;
	if ((r = pkey_generate(type, &pk)) != 0)
		return r;
	if (i == km->n)
		km->ids[km->n++] = xstrdup(id);
	else
		old = km->keys[i];
	km->keys[i] = pk;
	if ((r = persist(km)) != 0) {
		/* Keep memory and disk the same: undo. */
		km->keys[i] = old;
		if (old == NULL) {
			free(km->ids[i]);
			km->ids[i] = NULL;
			km->n--;
		}
		EVP_PKEY_free(pk);
		return r;
	}
	EVP_PKEY_free(old);
	if (out != NULL) {
		/* The caller drops this reference. */
		if (!EVP_PKEY_up_ref(pk))
			return WICK_ERR_CRYPTO;
		*out = pk;
	}
	return 0;
}
