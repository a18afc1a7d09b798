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
#include <openssl/pem.h>

#include "keymgr.h"
#include "log.h"
#include "x509.h"
#include "xmalloc.h"

struct keymgr {
	char		*path;		/* NULL for "memory" */
	char		*ids[KEYMGR_MAX_KEYS];
	EVP_PKEY	*keys[KEYMGR_MAX_KEYS];
	size_t		 n;
};

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

/* Read the whole file (at most KEYMGR_MAX_FILE) into a secret buf. */
static int
read_file(const char *path, struct buf *b, const char **why)
{
	struct stat	 st;
	uint8_t		*p;
	ssize_t		 n;
	int		 fd, r = 0;

	if ((fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) < 0) {
		if (errno == ENOENT)
			return WICK_ERR_NOT_FOUND;
		*why = "cannot open the key file (or it is a symbolic link)";
		return WICK_ERR_IO;
	}
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
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
	while (r == 0) {
		if ((r = buf_reserve(b, 65536, &p)) != 0)
			break;
		if ((n = read(fd, p, 65536)) < 0) {
			*why = "cannot read the key file";
			r = WICK_ERR_IO;
			break;
		}
		if (n == 0)
			break;
		buf_commit(b, (size_t)n);
	}
	close(fd);
	return r;
}

static int
load(struct keymgr *km, const char **why)
{
	struct buf	 b;
	json_error_t	 jerr;
	json_t		*doc = NULL, *keys, *v;
	const char	*id, *pem;
	EVP_PKEY	*pk;
	int		 r;

	buf_init(&b, KEYMGR_MAX_FILE + 65536);
	buf_set_secret(&b);
	if ((r = read_file(km->path, &b, why)) != 0) {
		buf_cleanup(&b);
		return r == WICK_ERR_NOT_FOUND ? 0 : r;
	}
	*why = "the key file is not valid JSON";
	r = WICK_ERR_INVALID;
	if ((doc = json_loadb((const char *)buf_ptr(&b), buf_len(&b), 0,
	    &jerr)) == NULL)
		goto out;
	*why = "the key file has no \"keys\" object";
	if (!json_is_object(keys = json_object_get(doc, "keys")))
		goto out;
	*why = "the key file holds too many keys";
	if (json_object_size(keys) > KEYMGR_MAX_KEYS)
		goto out;
	json_object_foreach(keys, id, v) {
		*why = "a key ID in the key file is not [A-Za-z0-9_-]{1,64}";
		if (!id_ok(id))
			goto out;
		*why = "a key in the key file is not a PEM private key";
		if ((pem = json_string_value(v)) == NULL ||
		    x509_key_from_pem((const uint8_t *)pem, strlen(pem),
		    &pk) != 0)
			goto out;
		km->ids[km->n] = xstrdup(id);
		km->keys[km->n++] = pk;
	}
	*why = NULL;
	r = 0;
out:
	if (doc != NULL) {
		/* Wipe the PEM text held by jansson before it is freed. */
		json_object_foreach(json_object_get(doc, "keys"), id, v)
			if (json_is_string(v))
				wipe((char *)json_string_value(v),
				    json_string_length(v));
		json_decref(doc);
	}
	buf_cleanup(&b);
	return r;
}

/* Write every key to a new file and rename it over the old one. */
static int
persist(struct keymgr *km)
{
	struct buf	 pem, out;
	json_t		*doc, *keys;
	char		*tmp, *dir, *dcopy;
	size_t		 i;
	int		 fd = -1, dfd, r = 0;

	if (km->path == NULL)
		return 0;
	doc = json_object();
	keys = json_object();
	json_object_set_new(doc, "keys", keys);
	for (i = 0; i < km->n && r == 0; i++) {
		buf_init(&pem, PKEY_MAX_DER * 2);
		if ((r = pkey_to_pkcs8_pem(km->keys[i], &pem)) == 0 &&
		    (r = buf_put_u8(&pem, 0)) == 0)
			json_object_set_new(keys, km->ids[i], json_string(
			    (const char *)buf_ptr(&pem)));
		buf_cleanup(&pem);
	}
	buf_init(&out, KEYMGR_MAX_FILE);
	buf_set_secret(&out);
	if (r == 0) {
		char *s = json_dumps(doc, JSON_INDENT(2) | JSON_SORT_KEYS);

		r = s == NULL ? WICK_ERR_ALLOC : buf_put_cstr(&out, s);
		if (s != NULL)
			freezero(s, strlen(s));
	}
	{
		const char	*k;
		json_t		*v;

		json_object_foreach(keys, k, v)
			wipe((char *)json_string_value(v),
			    json_string_length(v));
	}
	json_decref(doc);
	if (r != 0) {
		buf_cleanup(&out);
		return r;
	}
	if (asprintf(&tmp, "%s.tmp", km->path) < 0)
		fatal("out of memory");
	(void)unlink(tmp);
	if ((fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW |
	    O_CLOEXEC, 0600)) < 0 || write(fd, buf_ptr(&out), buf_len(&out)) !=
	    (ssize_t)buf_len(&out) || fsync(fd) != 0) {
		log_error("key file %s: %s", tmp, strerror(errno));
		r = WICK_ERR_IO;
	}
	if (fd >= 0 && close(fd) != 0)
		r = WICK_ERR_IO;
	if (r == 0 && rename(tmp, km->path) != 0) {
		log_error("key file %s: rename: %s", km->path, strerror(errno));
		r = WICK_ERR_IO;
	}
	if (r != 0)
		(void)unlink(tmp);
	else {
		/* The rename itself must survive a crash. */
		dcopy = xstrdup(km->path);
		dir = dirname(dcopy);
		if ((dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) >= 0) {
			(void)fsync(dfd);
			close(dfd);
		}
		free(dcopy);
	}
	free(tmp);
	buf_cleanup(&out);
	return r;
}

int
keymgr_open_disk(const char *path, struct keymgr **out, const char **why)
{
	struct keymgr	*km = xcalloc(1, sizeof(*km));
	int		 r;

	*why = NULL;
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
	return 0;
}

void
keymgr_free(struct keymgr *km)
{
	size_t i;

	if (km == NULL)
		return;
	for (i = 0; i < km->n; i++) {
		free(km->ids[i]);
		EVP_PKEY_free(km->keys[i]);
	}
	free(km->path);
	free(km);
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

	for (i = 0; i < km->n; i++)
		if (strcmp(km->ids[i], id) == 0) {
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

	if (!id_ok(id))
		return WICK_ERR_INVALID;
	if ((r = pkey_generate(type, &pk)) != 0)
		return r;
	for (i = 0; i < km->n; i++)
		if (strcmp(km->ids[i], id) == 0)
			break;
	if (i == km->n) {
		if (km->n == KEYMGR_MAX_KEYS) {
			EVP_PKEY_free(pk);
			return WICK_ERR_LIMIT;
		}
		km->ids[km->n++] = xstrdup(id);
	} else
		old = km->keys[i];
	km->keys[i] = pk;
	if ((r = persist(km)) != 0) {
		/* Keep memory and disk the same: undo. */
		km->keys[i] = old;
		if (old == NULL) {
			free(km->ids[i]);
			km->n--;
		}
		EVP_PKEY_free(pk);
		return r;
	}
	EVP_PKEY_free(old);
	if (out != NULL) {
		if (!EVP_PKEY_up_ref(pk))
			return WICK_ERR_CRYPTO;
		*out = pk;
	}
	return 0;
}
