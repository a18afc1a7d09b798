/*
 * pkey.c: key pairs and certificate requests.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "pkey.h"

static const struct {
	enum pkey_type	 type;
	const char	*name;
} types[] = {
	{ PKEY_EC_P256, "ec-p256" },
	{ PKEY_EC_P384, "ec-p384" },
	{ PKEY_RSA_2048, "rsa-2048" },
	{ PKEY_RSA_4096, "rsa-4096" },
};

int
pkey_type_parse(const char *s, enum pkey_type *out)
{
	size_t i;

	for (i = 0; i < sizeof(types) / sizeof(types[0]); i++)
		if (strcmp(s, types[i].name) == 0) {
			*out = types[i].type;
			return 0;
		}
	return WICK_ERR_INVALID;
}

const char *
pkey_type_name(enum pkey_type t)
{
	size_t i;

	for (i = 0; i < sizeof(types) / sizeof(types[0]); i++)
		if (types[i].type == t)
			return types[i].name;
	return "unknown";
}

int
pkey_type_of(EVP_PKEY *pk, enum pkey_type *out)
{
	char	group[64];
	int	bits = EVP_PKEY_get_bits(pk);

	if (EVP_PKEY_is_a(pk, "EC")) {
		if (!EVP_PKEY_get_utf8_string_param(pk,
		    OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group), NULL))
			return WICK_ERR_UNSUPPORTED;
		if (strcmp(group, "prime256v1") == 0)
			*out = PKEY_EC_P256;
		else if (strcmp(group, "secp384r1") == 0)
			*out = PKEY_EC_P384;
		else
			return WICK_ERR_UNSUPPORTED;
		return 0;
	}
	if (EVP_PKEY_is_a(pk, "RSA") && (bits == 2048 || bits == 4096)) {
		*out = bits == 2048 ? PKEY_RSA_2048 : PKEY_RSA_4096;
		return 0;
	}
	return WICK_ERR_UNSUPPORTED;
}

int
pkey_generate(enum pkey_type t, EVP_PKEY **out)
{
	switch (t) {
	case PKEY_EC_P256:
		*out = EVP_EC_gen("P-256");
		break;
	case PKEY_EC_P384:
		*out = EVP_EC_gen("P-384");
		break;
	case PKEY_RSA_2048:
		*out = EVP_RSA_gen(2048);
		break;
	case PKEY_RSA_4096:
		*out = EVP_RSA_gen(4096);
		break;
	default:
		*out = NULL;
		return WICK_ERR_INVALID;
	}
	return *out == NULL ? WICK_ERR_CRYPTO : 0;
}

int
pkey_to_pkcs8_der(EVP_PKEY *pk, struct buf *out)
{
	PKCS8_PRIV_KEY_INFO	*p8;
	uint8_t			*der = NULL;
	int			 len, r;

	buf_set_secret(out);
	if ((p8 = EVP_PKEY2PKCS8(pk)) == NULL)
		return WICK_ERR_CRYPTO;
	len = i2d_PKCS8_PRIV_KEY_INFO(p8, &der);
	PKCS8_PRIV_KEY_INFO_free(p8);
	if (len <= 0)
		return WICK_ERR_CRYPTO;
	r = buf_put(out, der, (size_t)len);
	OPENSSL_clear_free(der, (size_t)len);
	return r;
}

int
pkey_to_pkcs8_pem(EVP_PKEY *pk, struct buf *out)
{
	BIO	*bio;
	char	*p;
	long	 n;
	int	 r;

	buf_set_secret(out);
	if ((bio = BIO_new(BIO_s_secmem())) == NULL &&
	    (bio = BIO_new(BIO_s_mem())) == NULL)
		return WICK_ERR_ALLOC;
	if (!PEM_write_bio_PKCS8PrivateKey(bio, pk, NULL, NULL, 0, NULL,
	    NULL) || (n = BIO_get_mem_data(bio, &p)) <= 0) {
		BIO_free(bio);
		return WICK_ERR_CRYPTO;
	}
	r = buf_put(out, p, (size_t)n);
	OPENSSL_cleanse(p, (size_t)n);
	BIO_free(bio);
	return r;
}

static int
supported(EVP_PKEY *pk)
{
	enum pkey_type	t;
	int		bits;

	if (pkey_type_of(pk, &t) == 0)
		return 1;
	bits = EVP_PKEY_get_bits(pk);
	return EVP_PKEY_is_a(pk, "RSA") && bits >= 2048 && bits <= 8192;
}

int
pkey_from_pkcs8_der(const uint8_t *p, size_t len, EVP_PKEY **out)
{
	PKCS8_PRIV_KEY_INFO	*p8;
	const uint8_t		*q = p;
	EVP_PKEY		*pk = NULL;
	int			 r = WICK_ERR_INVALID;

	*out = NULL;
	if (len > PKEY_MAX_DER)
		return WICK_ERR_LIMIT;
	if (len == 0)
		return WICK_ERR_INVALID;
	if ((p8 = d2i_PKCS8_PRIV_KEY_INFO(NULL, &q, (long)len)) == NULL ||
	    q != p + len || (pk = EVP_PKCS82PKEY(p8)) == NULL)
		goto out;
	if (!supported(pk)) {
		r = WICK_ERR_UNSUPPORTED;
		goto out;
	}
	*out = pk;
	pk = NULL;
	r = 0;
out:
	PKCS8_PRIV_KEY_INFO_free(p8);
	EVP_PKEY_free(pk);
	if (r != 0)
		ERR_clear_error();
	return r;
}

int
pkey_public_der(EVP_PKEY *pk, struct buf *out)
{
	uint8_t	*der = NULL;
	int	 len, r;

	if ((len = i2d_PUBKEY(pk, &der)) <= 0)
		return WICK_ERR_CRYPTO;
	r = buf_put(out, der, (size_t)len);
	OPENSSL_free(der);
	return r;
}

int
pkey_from_public_der(const uint8_t *p, size_t len, EVP_PKEY **out)
{
	const uint8_t	*q = p;
	EVP_PKEY	*pk = NULL;
	int		 r = WICK_ERR_INVALID;

	*out = NULL;
	if (len > PKEY_MAX_DER)
		return WICK_ERR_LIMIT;
	if (len == 0)
		return WICK_ERR_INVALID;
	if ((pk = d2i_PUBKEY(NULL, &q, (long)len)) == NULL || q != p + len)
		goto out;
	if (!supported(pk)) {
		r = WICK_ERR_UNSUPPORTED;
		goto out;
	}
	*out = pk;
	return 0;
out:
	EVP_PKEY_free(pk);
	ERR_clear_error();
	return r;
}

int
pkey_public_equal(EVP_PKEY *a, EVP_PKEY *b)
{
	return EVP_PKEY_eq(a, b) == 1;
}

static const EVP_MD *
digest_for(EVP_PKEY *pk)
{
	enum pkey_type t;

	if (pkey_type_of(pk, &t) == 0 && t == PKEY_EC_P384)
		return EVP_sha384();
	return EVP_sha256();
}

int
csr_make(EVP_PKEY *pk, struct buf *out)
{
	X509_REQ	*req;
	uint8_t		*der = NULL;
	int		 len, r = WICK_ERR_CRYPTO;

	if ((req = X509_REQ_new()) == NULL)
		return WICK_ERR_ALLOC;
	if (X509_REQ_set_version(req, 0) && X509_REQ_set_pubkey(req, pk) &&
	    X509_REQ_sign(req, pk, digest_for(pk)) > 0 &&
	    (len = i2d_X509_REQ(req, &der)) > 0) {
		r = buf_put(out, der, (size_t)len);
		OPENSSL_free(der);
	}
	X509_REQ_free(req);
	return r;
}

int
csr_parse(const uint8_t *p, size_t len, EVP_PKEY **pub, const char **why)
{
	X509_REQ	*req = NULL;
	const uint8_t	*q = p;
	EVP_PKEY	*pk = NULL;
	int		 r = WICK_ERR_INVALID;

	*pub = NULL;
	*why = "CSR larger than 16 KiB";
	if (len > PKEY_MAX_DER)
		return WICK_ERR_LIMIT;
	*why = "not a DER PKCS#10 request";
	if (len == 0 || (req = d2i_X509_REQ(NULL, &q, (long)len)) == NULL)
		goto out;
	*why = "trailing bytes after the request";
	if (q != p + len)
		goto out;
	*why = "request version is not 1";
	if (X509_REQ_get_version(req) != 0)
		goto out;
	*why = "request without a usable public key";
	if ((pk = X509_REQ_get_pubkey(req)) == NULL)
		goto out;
	*why = "key type not supported (EC P-256/P-384, RSA 2048-8192)";
	if (!supported(pk)) {
		r = WICK_ERR_UNSUPPORTED;
		goto out;
	}
	*why = "request signature does not verify";
	if (X509_REQ_verify(req, pk) != 1) {
		r = WICK_ERR_SIGNATURE;
		goto out;
	}
	*why = NULL;
	*pub = pk;
	pk = NULL;
	r = 0;
out:
	EVP_PKEY_free(pk);
	X509_REQ_free(req);
	/* Peer input: leave no stale errors behind. */
	if (r != 0)
		ERR_clear_error();
	return r;
}
