/*
 * test_keymgr.c: the "disk" and "memory" key managers.
 */
#include <sys/stat.h>

#include <dirent.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include <jansson.h>

#include "keymgr.h"
#include "pkey.h"

static char dir[64];
static char path[128];

static int
setup(void **state)
{
	snprintf(dir, sizeof(dir), "/tmp/wick-keymgr-XXXXXX");
	if (mkdtemp(dir) == NULL)
		return -1;
	snprintf(path, sizeof(path), "%s/keys.json", dir);
	return 0;
}

static int
teardown(void **state)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}

/* Start each test without a key file. */
static int
fresh(void **state)
{
	(void)unlink(path);
	return 0;
}

/* Write text as the key file with mode. */
static void
put_file(const char *text, mode_t mode)
{
	int fd;

	(void)unlink(path);
	assert_true((fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600)) >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	assert_int_equal(fchmod(fd, mode), 0);
	close(fd);
}

/* The number of directory entries other than "." and "..". */
static int
dir_entries(void)
{
	DIR		*d;
	struct dirent	*de;
	int		 n = 0;

	assert_non_null(d = opendir(dir));
	while ((de = readdir(d)) != NULL)
		n += strcmp(de->d_name, ".") != 0 &&
		    strcmp(de->d_name, "..") != 0;
	closedir(d);
	return n;
}

static void
test_disk(void **state)
{
	struct keymgr	*km, *again;
	EVP_PKEY	*k1, *k2, *k3;
	struct stat	 st;
	json_t		*doc;
	const char	*why = "unset", *pem;
	enum pkey_type	 t;

	/* No file yet: an empty manager; the file appears on first change. */
	assert_int_equal(keymgr_open_disk(path, &km, &why), 0);
	assert_null(why);
	assert_string_equal(keymgr_name(km), "disk");
	assert_int_equal(keymgr_get(km, "x509-A", &k1), WICK_ERR_NOT_FOUND);
	assert_null(k1);
	assert_int_not_equal(access(path, F_OK), 0);
	assert_int_equal(keymgr_generate(km, "x509-A", PKEY_EC_P256, &k1), 0);
	assert_int_equal(keymgr_generate(km, "jwt-A", PKEY_EC_P384, NULL), 0);
	assert_int_equal(keymgr_get(km, "x509-A", &k2), 0);
	assert_ptr_equal(k1, k2);
	EVP_PKEY_free(k2);
	assert_int_equal(stat(path, &st), 0);
	assert_true(S_ISREG(st.st_mode));
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal(dir_entries(), 1);	/* no temporary file */
	/* The documented format: {"keys":{"<id>":"<PKCS#8 PEM>"}}. */
	assert_non_null(doc = json_load_file(path, 0, NULL));
	assert_int_equal(json_object_size(json_object_get(doc, "keys")), 2);
	assert_non_null(pem = json_string_value(json_object_get(
	    json_object_get(doc, "keys"), "x509-A")));
	assert_int_equal(strncmp(pem, "-----BEGIN PRIVATE KEY-----\n", 28), 0);
	json_decref(doc);
	/* A new manager on the same file has the same keys. */
	assert_int_equal(keymgr_open_disk(path, &again, &why), 0);
	assert_int_equal(keymgr_get(again, "x509-A", &k2), 0);
	assert_int_equal(EVP_PKEY_eq(k1, k2), 1);
	EVP_PKEY_free(k2);
	assert_int_equal(keymgr_get(again, "jwt-A", &k2), 0);
	assert_int_equal(pkey_type_of(k2, &t), 0);
	assert_int_equal(t, PKEY_EC_P384);
	EVP_PKEY_free(k2);
	keymgr_free(again);
	/* Replacing a key persists the new one, the others stay. */
	assert_int_equal(keymgr_generate(km, "x509-A", PKEY_RSA_2048, &k3), 0);
	assert_false(pkey_public_equal(k1, k3));
	assert_int_equal(dir_entries(), 1);
	assert_int_equal(keymgr_open_disk(path, &again, &why), 0);
	assert_int_equal(keymgr_get(again, "x509-A", &k2), 0);
	assert_true(pkey_public_equal(k2, k3));
	EVP_PKEY_free(k2);
	assert_int_equal(keymgr_get(again, "jwt-A", &k2), 0);
	EVP_PKEY_free(k2);
	keymgr_free(again);
	/* Bad IDs are refused and change nothing. */
	assert_int_equal(keymgr_generate(km, "bad id", PKEY_EC_P256, NULL),
	    WICK_ERR_INVALID);
	assert_int_equal(keymgr_generate(km, "", PKEY_EC_P256, NULL),
	    WICK_ERR_INVALID);
	EVP_PKEY_free(k1);
	EVP_PKEY_free(k3);
	keymgr_free(km);
}

static void
test_disk_refused(void **state)
{
	struct keymgr	*km;
	const char	*why;
	char		 big[128];
	int		 fd;

	/* Readable by group or others: WICK_ERR_PERM. */
	assert_int_equal(keymgr_open_disk(path, &km, &why), 0);
	assert_int_equal(keymgr_generate(km, "a", PKEY_EC_P256, NULL), 0);
	keymgr_free(km);
	assert_int_equal(chmod(path, 0644), 0);
	assert_int_equal(keymgr_open_disk(path, &km, &why), WICK_ERR_PERM);
	assert_null(km);
	assert_non_null(why);
	assert_int_equal(chmod(path, 0640), 0);
	assert_int_equal(keymgr_open_disk(path, &km, &why), WICK_ERR_PERM);
	assert_int_equal(chmod(path, 0600), 0);
	assert_int_equal(keymgr_open_disk(path, &km, &why), 0);
	keymgr_free(km);
	/* Corrupt files: WICK_ERR_INVALID, each with a reason. */
	put_file("{\"keys\":", 0600);
	assert_int_equal(keymgr_open_disk(path, &km, &why), WICK_ERR_INVALID);
	assert_non_null(why);
	put_file("{\"other\":{}}", 0600);
	assert_int_equal(keymgr_open_disk(path, &km, &why), WICK_ERR_INVALID);
	put_file("{\"keys\":{\"x\":\"not a key\"}}", 0600);
	assert_int_equal(keymgr_open_disk(path, &km, &why), WICK_ERR_INVALID);
	put_file("{\"keys\":{\"x\":7}}", 0600);
	assert_int_equal(keymgr_open_disk(path, &km, &why), WICK_ERR_INVALID);
	put_file("{\"keys\":{\"bad id\":\"x\"}}", 0600);
	assert_int_equal(keymgr_open_disk(path, &km, &why), WICK_ERR_INVALID);
	put_file("{\"keys\":{\"x\":\"-----BEGIN CERTIFICATE-----\\nAAAA\\n"
	    "-----END CERTIFICATE-----\\n\"}}", 0600);
	assert_int_equal(keymgr_open_disk(path, &km, &why), WICK_ERR_INVALID);
	put_file("{\"keys\":{\"a\":\"x\",\"a\":\"y\"}}", 0600);
	assert_int_equal(keymgr_open_disk(path, &km, &why), WICK_ERR_INVALID);
	/* Larger than KEYMGR_MAX_FILE: refused before it is read. */
	put_file("", 0600);
	assert_int_equal(truncate(path, KEYMGR_MAX_FILE + 1), 0);
	assert_int_equal(keymgr_open_disk(path, &km, &why), WICK_ERR_LIMIT);
	/* Not a regular file: a symbolic link, a directory, a FIFO. */
	assert_int_equal(unlink(path), 0);
	snprintf(big, sizeof(big), "%s/target", dir);
	assert_true((fd = open(big, O_WRONLY | O_CREAT, 0600)) >= 0);
	close(fd);
	assert_int_equal(symlink(big, path), 0);
	assert_int_equal(keymgr_open_disk(path, &km, &why), WICK_ERR_INVALID);
	assert_non_null(why);
	assert_int_equal(unlink(path), 0);
	assert_int_equal(unlink(big), 0);
	assert_int_equal(mkdir(path, 0700), 0);
	assert_int_equal(keymgr_open_disk(path, &km, &why), WICK_ERR_INVALID);
	assert_int_equal(rmdir(path), 0);
	assert_int_equal(mkfifo(path, 0600), 0);
	assert_int_equal(keymgr_open_disk(path, &km, &why), WICK_ERR_INVALID);
	assert_int_equal(unlink(path), 0);
}

static void
test_disk_limits(void **state)
{
	struct keymgr	*km;
	const char	*why;
	char		 id[KEYMGR_MAX_ID + 2];
	int		 i;

	assert_int_equal(keymgr_open_disk(path, &km, &why), 0);
	memset(id, 'k', sizeof(id) - 1);
	id[sizeof(id) - 1] = '\0';
	assert_int_equal(keymgr_generate(km, id, PKEY_EC_P256, NULL),
	    WICK_ERR_INVALID);
	id[KEYMGR_MAX_ID] = '\0';
	assert_int_equal(keymgr_generate(km, id, PKEY_EC_P256, NULL), 0);
	for (i = 1; i < KEYMGR_MAX_KEYS; i++) {
		snprintf(id, sizeof(id), "k%d", i);
		assert_int_equal(keymgr_generate(km, id, PKEY_EC_P256, NULL),
		    0);
	}
	assert_int_equal(keymgr_generate(km, "one-more", PKEY_EC_P256, NULL),
	    WICK_ERR_LIMIT);
	/* Replacing an existing key is still fine when full. */
	assert_int_equal(keymgr_generate(km, "k1", PKEY_EC_P256, NULL), 0);
	keymgr_free(km);
	assert_int_equal(keymgr_open_disk(path, &km, &why), 0);
	keymgr_free(km);
}

static void
test_disk_write_fails(void **state)
{
	struct keymgr	*km;
	EVP_PKEY	*k;
	const char	*why;
	char		 gone[160];

	/* The directory does not exist: the change is undone. */
	snprintf(gone, sizeof(gone), "%s/missing/keys.json", dir);
	assert_int_equal(keymgr_open_disk(gone, &km, &why), 0);
	assert_int_equal(keymgr_generate(km, "a", PKEY_EC_P256, &k),
	    WICK_ERR_IO);
	assert_null(k);
	assert_int_equal(keymgr_get(km, "a", &k), WICK_ERR_NOT_FOUND);
	keymgr_free(km);
}

static void
test_memory(void **state)
{
	struct keymgr	*km;
	EVP_PKEY	*k1, *k2;

	assert_int_equal(keymgr_open_memory(&km), 0);
	assert_string_equal(keymgr_name(km), "memory");
	assert_int_equal(keymgr_get(km, "jwt-A", &k1), WICK_ERR_NOT_FOUND);
	assert_int_equal(keymgr_generate(km, "jwt-A", PKEY_RSA_2048, &k1), 0);
	assert_int_equal(EVP_PKEY_get_bits(k1), 2048);
	assert_int_equal(keymgr_get(km, "jwt-A", &k2), 0);
	assert_ptr_equal(k1, k2);
	EVP_PKEY_free(k2);
	assert_int_equal(keymgr_generate(km, "jwt-A", PKEY_EC_P256, &k2), 0);
	assert_false(pkey_public_equal(k1, k2));
	EVP_PKEY_free(k1);
	EVP_PKEY_free(k2);
	keymgr_free(km);
	assert_int_equal(dir_entries(), 0);	/* nothing written */
}

/* The key file names its server, the same on every open. */
static void
test_server_id(void **state)
{
	struct keymgr	*km;
	const char	*why;
	char		 id[KEYMGR_SERVER_ID_LEN + 1];

	assert_int_equal(keymgr_open_disk(path, &km, &why), 0);
	assert_int_equal(strlen(keymgr_server_id(km)), KEYMGR_SERVER_ID_LEN);
	snprintf(id, sizeof(id), "%s", keymgr_server_id(km));
	assert_int_equal(keymgr_generate(km, "x509-A", PKEY_EC_P256, NULL), 0);
	keymgr_free(km);
	assert_int_equal(keymgr_open_disk(path, &km, &why), 0);
	assert_string_equal(keymgr_server_id(km), id);
	keymgr_free(km);

	/* A file from before server IDs: one is made and kept. */
	put_file("{\"keys\":{}}", 0600);
	assert_int_equal(keymgr_open_disk(path, &km, &why), 0);
	snprintf(id, sizeof(id), "%s", keymgr_server_id(km));
	assert_int_equal(keymgr_keep_server_id(km), 0);
	keymgr_free(km);
	assert_int_equal(keymgr_open_disk(path, &km, &why), 0);
	assert_string_equal(keymgr_server_id(km), id);
	keymgr_free(km);

	put_file("{\"keys\":{},\"server_id\":\"../x\"}", 0600);
	assert_int_equal(keymgr_open_disk(path, &km, &why), WICK_ERR_INVALID);
	assert_non_null(why);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_disk, fresh),
		cmocka_unit_test_setup(test_disk_refused, fresh),
		cmocka_unit_test_setup(test_disk_limits, fresh),
		cmocka_unit_test_setup(test_disk_write_fails, fresh),
		cmocka_unit_test_setup(test_memory, fresh),
		cmocka_unit_test_setup(test_server_id, fresh),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
