/*
 * testpki.c: a small test PKI made in memory with OpenSSL (tests only).
 */
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include "testpki.h"

static int
add_ext(X509 *x, X509 *issuer, int nid, const char *value)
{
	X509V3_CTX	 v3;
	X509_EXTENSION	*ext;
	int		 ok;

	X509V3_set_ctx(&v3, issuer, x, NULL, NULL, 0);
	if ((ext = X509V3_EXT_nconf_nid(NULL, &v3, nid, value)) == NULL)
		return WICK_ERR_CRYPTO;
	ok = X509_add_ext(x, ext, -1);
	X509_EXTENSION_free(ext);
	return ok ? 0 : WICK_ERR_CRYPTO;
}

static int
set_name(X509_NAME *name, const char *cn)
{
	if (!X509_NAME_add_entry_by_txt(name, "O", MBSTRING_UTF8,
	    (const unsigned char *)"wick test", -1, -1, 0) ||
	    !X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
	    (const unsigned char *)cn, -1, -1, 0))
		return WICK_ERR_CRYPTO;
	return 0;
}

/* A certificate for key, not yet signed; issuer NULL means self. */
static int
make_base(const char *cn, EVP_PKEY *key, X509 *issuer, X509 **out)
{
	X509		*x = NULL;
	BIGNUM		*bn = NULL;
	unsigned char	 rnd[16];
	int		 r = WICK_ERR_CRYPTO;

	*out = NULL;
	if ((x = X509_new()) == NULL ||
	    !X509_set_version(x, X509_VERSION_3) ||
	    RAND_bytes(rnd, sizeof(rnd)) != 1)
		goto out;
	rnd[0] &= 0x7f;
	if ((bn = BN_bin2bn(rnd, sizeof(rnd), NULL)) == NULL ||
	    BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) == NULL)
		goto out;
	if ((r = set_name(X509_get_subject_name(x), cn)) != 0)
		goto out;
	r = WICK_ERR_CRYPTO;
	if (!X509_set_issuer_name(x, issuer != NULL ?
	    X509_get_subject_name(issuer) : X509_get_subject_name(x)) ||
	    X509_gmtime_adj(X509_getm_notBefore(x), -60) == NULL ||
	    X509_time_adj_ex(X509_getm_notAfter(x), TESTPKI_DAYS, 0,
	    NULL) == NULL ||
	    !X509_set_pubkey(x, key))
		goto out;
	*out = x;
	x = NULL;
	r = 0;
out:
	BN_free(bn);
	X509_free(x);
	return r;
}

int
testpki_make_ca(const char *cn, const char *uri, X509 **cert,
    EVP_PKEY **key)
{
	EVP_PKEY	*k = NULL;
	X509		*x = NULL;
	char		 san[512];
	int		 r;

	*cert = NULL;
	*key = NULL;
	if ((k = EVP_EC_gen("P-256")) == NULL)
		return WICK_ERR_CRYPTO;
	if ((r = make_base(cn, k, NULL, &x)) != 0)
		goto out;
	if ((r = add_ext(x, x, NID_basic_constraints, "critical,CA:TRUE")) ||
	    (r = add_ext(x, x, NID_key_usage, "critical,keyCertSign,cRLSign")) ||
	    (r = add_ext(x, x, NID_subject_key_identifier, "hash")))
		goto out;
	if (uri != NULL) {
		if (snprintf(san, sizeof(san), "URI:%s", uri) >=
		    (int)sizeof(san)) {
			r = WICK_ERR_LIMIT;
			goto out;
		}
		if ((r = add_ext(x, x, NID_subject_alt_name, san)) != 0)
			goto out;
	}
	if (X509_sign(x, k, EVP_sha256()) <= 0) {
		r = WICK_ERR_CRYPTO;
		goto out;
	}
	*cert = x;
	*key = k;
	x = NULL;
	k = NULL;
	r = 0;
out:
	X509_free(x);
	EVP_PKEY_free(k);
	return r;
}

int
testpki_make_leaf(X509 *ca, EVP_PKEY *cakey, const char *cn,
    const char *sans, X509 **cert, EVP_PKEY **key)
{
	EVP_PKEY	*k = NULL;
	X509		*x = NULL;
	int		 r;

	*cert = NULL;
	*key = NULL;
	if ((k = EVP_EC_gen("P-256")) == NULL)
		return WICK_ERR_CRYPTO;
	if ((r = make_base(cn, k, ca, &x)) != 0)
		goto out;
	if ((r = add_ext(x, ca, NID_basic_constraints, "critical,CA:FALSE")) ||
	    (r = add_ext(x, ca, NID_key_usage,
	    "critical,digitalSignature")) ||
	    (r = add_ext(x, ca, NID_ext_key_usage, "serverAuth,clientAuth")) ||
	    (r = add_ext(x, ca, NID_authority_key_identifier, "keyid:always")))
		goto out;
	if (sans != NULL &&
	    (r = add_ext(x, ca, NID_subject_alt_name, sans)) != 0)
		goto out;
	if (X509_sign(x, cakey, EVP_sha256()) <= 0) {
		r = WICK_ERR_CRYPTO;
		goto out;
	}
	*cert = x;
	*key = k;
	x = NULL;
	k = NULL;
	r = 0;
out:
	X509_free(x);
	EVP_PKEY_free(k);
	return r;
}

static int
write_pem(const char *path, int mode, X509 *x, EVP_PKEY *k)
{
	BIO	*bio = NULL;
	int	 fd, ok, r = WICK_ERR_IO;

	(void)unlink(path);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW,
	    mode);
	if (fd == -1) {
		fprintf(stderr, "%s: %s\n", path, strerror(errno));
		return WICK_ERR_IO;
	}
	if ((bio = BIO_new_fd(fd, BIO_CLOSE)) == NULL) {
		close(fd);
		return WICK_ERR_ALLOC;
	}
	if (x != NULL)
		ok = PEM_write_bio_X509(bio, x);
	else	/* PKCS#8, unencrypted */
		ok = PEM_write_bio_PrivateKey(bio, k, NULL, NULL, 0, NULL,
		    NULL);
	if (ok && BIO_flush(bio) == 1)
		r = 0;
	BIO_free(bio);
	return r;
}

int
testpki_write_cert(const char *path, X509 *x)
{
	return write_pem(path, 0644, x, NULL);
}

int
testpki_write_key(const char *path, EVP_PKEY *k)
{
	return write_pem(path, 0600, NULL, k);
}

static int
write_pair(const char *dir, const char *name, X509 *x, EVP_PKEY *k)
{
	char	 path[PATH_MAX];
	int	 r;

	if (snprintf(path, sizeof(path), "%s/%s.pem", dir, name) >=
	    (int)sizeof(path))
		return WICK_ERR_LIMIT;
	if ((r = testpki_write_cert(path, x)) != 0 || k == NULL)
		return r;
	if (snprintf(path, sizeof(path), "%s/%s.key", dir, name) >=
	    (int)sizeof(path))
		return WICK_ERR_LIMIT;
	return testpki_write_key(path, k);
}

int
testpki_write_dir(const char *dir)
{
	X509		*ca = NULL, *oca = NULL, *srv = NULL, *cli = NULL;
	X509		*ocli = NULL;
	EVP_PKEY	*cak = NULL, *ocak = NULL, *srvk = NULL, *clik = NULL;
	EVP_PKEY	*oclik = NULL;
	int		 r;

	if (mkdir(dir, 0755) == -1 && errno != EEXIST) {
		fprintf(stderr, "%s: %s\n", dir, strerror(errno));
		return WICK_ERR_IO;
	}
	if ((r = testpki_make_ca("wick test CA", "spiffe://example.org",
	    &ca, &cak)) != 0 ||
	    (r = testpki_make_ca("wick other CA", "spiffe://example.org",
	    &oca, &ocak)) != 0 ||
	    (r = testpki_make_leaf(ca, cak, "server",
	    "URI:spiffe://example.org/server,DNS:localhost,IP:127.0.0.1",
	    &srv, &srvk)) != 0 ||
	    (r = testpki_make_leaf(ca, cak, "client",
	    "URI:spiffe://example.org/client", &cli, &clik)) != 0 ||
	    /* Same ID as the real client, from a CA nobody trusts. */
	    (r = testpki_make_leaf(oca, ocak, "other client",
	    "URI:spiffe://example.org/client", &ocli, &oclik)) != 0)
		goto out;
	if ((r = write_pair(dir, "ca", ca, NULL)) != 0 ||
	    (r = write_pair(dir, "other-ca", oca, NULL)) != 0 ||
	    (r = write_pair(dir, "server", srv, srvk)) != 0 ||
	    (r = write_pair(dir, "client", cli, clik)) != 0 ||
	    (r = write_pair(dir, "other-client", ocli, oclik)) != 0)
		goto out;
	r = 0;
out:
	X509_free(ca);
	X509_free(oca);
	X509_free(srv);
	X509_free(cli);
	X509_free(ocli);
	EVP_PKEY_free(cak);
	EVP_PKEY_free(ocak);
	EVP_PKEY_free(srvk);
	EVP_PKEY_free(clik);
	EVP_PKEY_free(oclik);
	return r;
}
