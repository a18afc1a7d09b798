/*
 * test_x509.c: PEM/DER loading, SPIFFE ID extraction, fingerprints.
 */
#include <sys/stat.h>

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <string.h>
#include <stdlib.h>
#include <unistd.h>
#include <cmocka.h>

#include <openssl/pem.h>

#include "buf.h"
#include "tls.h"
#include "x509.h"
#include "helpers/testpki.h"

static struct {
	X509		*ca, *leaf;
	EVP_PKEY	*cak, *leafk;
	char		 dir[64];
} t;

static int
setup(void **state)
{
	snprintf(t.dir, sizeof(t.dir), "/tmp/wick-x509-XXXXXX");
	if (mkdtemp(t.dir) == NULL)
		return -1;
	if (testpki_make_ca("ca", "spiffe://example.org", &t.ca, &t.cak) ||
	    testpki_make_leaf(t.ca, t.cak, "leaf",
	    "URI:spiffe://example.org/w,DNS:localhost", &t.leaf, &t.leafk))
		return -1;
	return 0;
}

static int
teardown(void **state)
{
	char	 cmd[128];

	X509_free(t.ca);
	X509_free(t.leaf);
	EVP_PKEY_free(t.cak);
	EVP_PKEY_free(t.leafk);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", t.dir);
	return system(cmd) == 0 ? 0 : -1;
}

/* PEM of the leaf and CA, n times over, in a buf. */
static void
pem_of(struct buf *b, int n)
{
	BIO	*bio = BIO_new(BIO_s_mem());
	char	*p;
	long	 len;
	int	 i;

	assert_non_null(bio);
	for (i = 0; i < n; i++) {
		assert_int_equal(PEM_write_bio_X509(bio, t.leaf), 1);
		assert_int_equal(PEM_write_bio_X509(bio, t.ca), 1);
	}
	len = BIO_get_mem_data(bio, &p);
	assert_int_equal(buf_put(b, p, (size_t)len), 0);
	BIO_free(bio);
}

static void
write_file(const char *path, const void *p, size_t len, int mode)
{
	FILE	*f;

	(void)unlink(path);
	f = fopen(path, "w");
	assert_non_null(f);
	assert_int_equal(fwrite(p, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
	assert_int_equal(chmod(path, mode), 0);
}

static void
test_pem_certs(void **state)
{
	STACK_OF(X509)	*sk = NULL;
	struct buf	 b;
	char		 path[128];

	buf_init(&b, 0);
	pem_of(&b, 1);
	assert_int_equal(x509_certs_from_pem(buf_ptr(&b), buf_len(&b), 8,
	    &sk), 0);
	assert_int_equal(sk_X509_num(sk), 2);
	assert_int_equal(X509_cmp(sk_X509_value(sk, 0), t.leaf), 0);
	assert_int_equal(X509_cmp(sk_X509_value(sk, 1), t.ca), 0);
	sk_X509_pop_free(sk, X509_free);
	assert_int_equal(x509_certs_from_pem(buf_ptr(&b), buf_len(&b), 1,
	    &sk), WICK_ERR_LIMIT);
	assert_null(sk);
	/* Truncated inside the second certificate. */
	assert_int_equal(x509_certs_from_pem(buf_ptr(&b), buf_len(&b) - 40,
	    8, &sk), WICK_ERR_INVALID);
	assert_int_equal(x509_certs_from_pem((const uint8_t *)"hello", 5, 8,
	    &sk), WICK_ERR_INVALID);
	assert_int_equal(x509_certs_from_pem((const uint8_t *)"", 0, 8, &sk),
	    WICK_ERR_INVALID);

	/* Files: a chain, too many certificates, too big a file. */
	snprintf(path, sizeof(path), "%s/chain.pem", t.dir);
	write_file(path, buf_ptr(&b), buf_len(&b), 0644);
	assert_int_equal(x509_load_chain_file(path, &sk), 0);
	assert_int_equal(sk_X509_num(sk), 2);
	sk_X509_pop_free(sk, X509_free);
	buf_reset(&b);
	pem_of(&b, TLS_MAX_CHAIN / 2 + 1);
	write_file(path, buf_ptr(&b), buf_len(&b), 0644);
	assert_int_equal(x509_load_chain_file(path, &sk), WICK_ERR_LIMIT);
	assert_int_equal(x509_load_certs_file(path, TLS_MAX_ROOTS, &sk), 0);
	assert_int_equal(sk_X509_num(sk), TLS_MAX_CHAIN + 2);
	sk_X509_pop_free(sk, X509_free);
	buf_reset(&b);
	while (buf_len(&b) <= TLS_MAX_PEM_FILE)
		pem_of(&b, 50);
	write_file(path, buf_ptr(&b), buf_len(&b), 0644);
	assert_int_equal(x509_load_certs_file(path, TLS_MAX_ROOTS, &sk),
	    WICK_ERR_LIMIT);
	snprintf(path, sizeof(path), "%s/missing.pem", t.dir);
	assert_int_equal(x509_load_chain_file(path, &sk), WICK_ERR_NOT_FOUND);
	buf_cleanup(&b);
}

static void
test_key_files(void **state)
{
	EVP_PKEY	*k = NULL;
	BIO		*bio;
	char		 path[128], *p;
	long		 len;

	/* PKCS#8, as wick-testcerts writes it. */
	snprintf(path, sizeof(path), "%s/k8.key", t.dir);
	assert_int_equal(testpki_write_key(path, t.leafk), 0);
	assert_int_equal(x509_load_key_file(path, &k), 0);
	assert_int_equal(EVP_PKEY_eq(k, t.leafk), 1);
	EVP_PKEY_free(k);
	k = NULL;
	/* Readable by others: refused. */
	assert_int_equal(chmod(path, 0644), 0);
	assert_int_equal(x509_load_key_file(path, &k), WICK_ERR_PERM);
	assert_null(k);

	/* Traditional "EC PRIVATE KEY" form. */
	bio = BIO_new(BIO_s_mem());
	assert_non_null(bio);
	assert_int_equal(PEM_write_bio_PrivateKey_traditional(bio, t.leafk,
	    NULL, NULL, 0, NULL, NULL), 1);
	len = BIO_get_mem_data(bio, &p);
	/* The BIO's memory is not NUL-terminated: search within len. */
	assert_non_null(memmem(p, (size_t)len, "BEGIN EC PRIVATE KEY", 20));
	snprintf(path, sizeof(path), "%s/trad.key", t.dir);
	write_file(path, p, (size_t)len, 0600);
	BIO_free(bio);
	assert_int_equal(x509_load_key_file(path, &k), 0);
	assert_int_equal(EVP_PKEY_eq(k, t.leafk), 1);
	EVP_PKEY_free(k);
	k = NULL;

	/* A certificate is not a key. */
	snprintf(path, sizeof(path), "%s/notkey.key", t.dir);
	assert_int_equal(testpki_write_cert(path, t.ca), 0);
	assert_int_equal(chmod(path, 0600), 0);
	assert_int_equal(x509_load_key_file(path, &k), WICK_ERR_INVALID);
	assert_null(k);
}

static void
test_der_chain(void **state)
{
	STACK_OF(X509)	*sk, *back = NULL;
	struct buf	 b;

	sk = sk_X509_new_null();
	assert_non_null(sk);
	assert_true(sk_X509_push(sk, t.leaf) > 0);
	assert_true(sk_X509_push(sk, t.ca) > 0);
	buf_init(&b, 0);
	assert_int_equal(x509_chain_to_der(sk, &b), 0);
	assert_int_equal(buf_len(&b), (size_t)(i2d_X509(t.leaf, NULL) +
	    i2d_X509(t.ca, NULL)));
	assert_int_equal(x509_chain_from_der(buf_ptr(&b), buf_len(&b), 4,
	    &back), 0);
	assert_int_equal(sk_X509_num(back), 2);
	assert_int_equal(X509_cmp(sk_X509_value(back, 0), t.leaf), 0);
	assert_int_equal(X509_cmp(sk_X509_value(back, 1), t.ca), 0);
	sk_X509_pop_free(back, X509_free);
	back = NULL;
	assert_int_equal(x509_chain_from_der(buf_ptr(&b), buf_len(&b), 1,
	    &back), WICK_ERR_LIMIT);
	assert_int_equal(x509_chain_from_der(buf_ptr(&b), buf_len(&b) - 1, 4,
	    &back), WICK_ERR_INVALID);
	assert_int_equal(x509_chain_from_der(buf_ptr(&b), 0, 4, &back),
	    WICK_ERR_INVALID);
	/* A trailing byte is not a certificate. */
	assert_int_equal(buf_put_u8(&b, 0x30), 0);
	assert_int_equal(x509_chain_from_der(buf_ptr(&b), buf_len(&b), 4,
	    &back), WICK_ERR_INVALID);
	assert_null(back);
	/* The output buffer's limit holds. */
	buf_cleanup(&b);
	buf_init(&b, 10);
	assert_int_equal(x509_chain_to_der(sk, &b), WICK_ERR_LIMIT);
	buf_cleanup(&b);
	sk_X509_free(sk);
}

static int
id_of(const char *sans, char **id, const char **why)
{
	X509		*x = NULL;
	EVP_PKEY	*k = NULL;
	int		 r;

	assert_int_equal(testpki_make_leaf(t.ca, t.cak, "x", sans, &x, &k),
	    0);
	r = x509_spiffe_id(x, id, why);
	X509_free(x);
	EVP_PKEY_free(k);
	return r;
}

static void
test_spiffe_id(void **state)
{
	const char	*why = NULL;
	char		*id = NULL;

	assert_int_equal(x509_spiffe_id(t.leaf, &id, &why), 0);
	assert_string_equal(id, "spiffe://example.org/w");
	assert_null(why);
	free(id);
	id = NULL;
	assert_int_equal(x509_spiffe_id(t.ca, &id, NULL), 0);
	assert_string_equal(id, "spiffe://example.org");
	free(id);
	id = NULL;

	assert_int_equal(id_of(NULL, &id, &why), WICK_ERR_NOT_FOUND);
	assert_non_null(why);
	assert_int_equal(id_of("DNS:a.example", &id, &why),
	    WICK_ERR_NOT_FOUND);
	assert_int_equal(id_of("URI:spiffe://example.org/a,"
	    "URI:spiffe://example.org/b", &id, &why), WICK_ERR_INVALID);
	assert_non_null(strstr(why, "more than one"));
	assert_int_equal(id_of("URI:https://example.org/a", &id, &why),
	    WICK_ERR_INVALID);
	assert_non_null(strstr(why, "not a SPIFFE ID"));
	assert_int_equal(id_of("URI:spiffe://", &id, &why), WICK_ERR_INVALID);
	assert_null(id);
}

static void
test_fingerprint(void **state)
{
	unsigned char	*der = NULL, md[32];
	char		 fp[X509_FINGERPRINT_LEN + 1], fp2[sizeof(fp)], hex[3];
	unsigned int	 mdlen = 0;
	int		 len, i;

	assert_int_equal(x509_fingerprint(t.leaf, fp), 0);
	assert_int_equal(strlen(fp), X509_FINGERPRINT_LEN);
	/* Independently: SHA-256 over the DER encoding. */
	len = i2d_X509(t.leaf, &der);
	assert_true(len > 0);
	assert_int_equal(EVP_Digest(der, (size_t)len, md, &mdlen,
	    EVP_sha256(), NULL), 1);
	OPENSSL_free(der);
	for (i = 0; i < 32; i++) {
		snprintf(hex, sizeof(hex), "%02x", md[i]);
		assert_memory_equal(fp + 2 * i, hex, 2);
	}
	assert_int_equal(x509_fingerprint(t.ca, fp2), 0);
	assert_string_not_equal(fp, fp2);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pem_certs),
		cmocka_unit_test(test_key_files),
		cmocka_unit_test(test_der_chain),
		cmocka_unit_test(test_spiffe_id),
		cmocka_unit_test(test_fingerprint),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
