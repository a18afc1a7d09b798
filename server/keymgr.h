/*
 * keymgr.h: the server's key manager, SPIRE's KeyManager plugins.
 *
 * "disk": every key in one JSON file ({"keys":{"<id>":"<PKCS#8 PEM>"}}),
 * mode 0600 in a directory that group and others cannot write, replaced
 * atomically (temporary file, fsync, rename, fsync of the directory) on
 * every change, so a crash leaves the old or the new set, never a mix.
 * "memory": the same without the file; a restart loses every key.
 *
 * The key file also names the server ("server_id", a random UUID made on
 * first start): several servers share one datastore, each with its own
 * keys, and the CA journal is stored under this ID.  A file from before
 * server IDs gets one when opened, written by keymgr_keep_server_id().
 *
 * Key IDs are short names the CA manager chooses ("x509-A", "jwt-B", ...).
 * Keys are wiped from memory when freed.
 */
#ifndef WICK_KEYMGR_H
#define WICK_KEYMGR_H

#include <openssl/evp.h>

#include "err.h"
#include "pkey.h"

#define KEYMGR_MAX_FILE		(1024 * 1024)
#define KEYMGR_MAX_KEYS		64
#define KEYMGR_MAX_ID		64
#define KEYMGR_SERVER_ID_LEN	36	/* a UUID */

struct keymgr;

/*
 * Open (or create on first change) the key file at path.  A file that
 * group or others can read, that is not a regular file, or that does not
 * parse is refused with *why naming the problem (WICK_ERR_PERM,
 * WICK_ERR_INVALID).
 */
int	 keymgr_open_disk(const char *path, struct keymgr **out,
	    const char **why) WICK_WUR;
int	 keymgr_open_memory(struct keymgr **out) WICK_WUR;
void	 keymgr_free(struct keymgr *);
/* The server ID of the key file (random per start for "memory"). */
const char *keymgr_server_id(const struct keymgr *);
/* Write a server ID made at open into the key file, so that it does not
 * change between starts (nothing to do when the file had one). */
int	 keymgr_keep_server_id(struct keymgr *) WICK_WUR;
/* "disk" or "memory". */
const char *keymgr_name(const struct keymgr *);

/* A new reference to the key stored under id; WICK_ERR_NOT_FOUND. */
int	 keymgr_get(struct keymgr *, const char *id, EVP_PKEY **out) WICK_WUR;
/*
 * Generate a key of type under id, replacing any previous one, and
 * persist it before returning; *out (if not NULL) gets a reference.
 */
int	 keymgr_generate(struct keymgr *, const char *id, enum pkey_type,
	    EVP_PKEY **out) WICK_WUR;
/*
 * Every key in the disk file's format ({"keys":{...}}) appended to out,
 * from memory: the set the CA manager uses now.  out must be a secret
 * buf (buf_set_secret()), and so must every copy the caller makes.
 */
struct buf;
int	 keymgr_export(struct keymgr *, struct buf *out) WICK_WUR;

#endif /* WICK_KEYMGR_H */
