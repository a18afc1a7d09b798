/*
 * pkey.c: key pairs and certificate requests.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "der.h"
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

/*
 * The fast path of csr_parse(): an EC P-256 or P-384 request signed with
 * ECDSA, in strict DER, read here.  OpenSSL 3's d2i_X509_REQ() builds a
 * decoder context for the key of every request (a search over every
 * provider's decoders), which cost twice the signature checks and the
 * certificate's signature together; the key is made from its curve and
 * point instead, and the signature checked over the request's own
 * bytes.  What is not this shape returns 1 and goes the full way, so the
 * fast path accepts nothing the full one refuses (the subject and the
 * attributes are still decoded by OpenSSL, only not used).
 */
#define DER_ATTRS	0xa0	/* [0] IMPLICIT SET OF Attribute */

static const uint8_t oid_ec_pub[] = { 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02,
    0x01 };
static const struct {
	uint8_t		 oid[8];
	size_t		 len;
	const char	*name;
} ec_groups[] = {
	{ { 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07 }, 8, "prime256v1" },
	{ { 0x2b, 0x81, 0x04, 0x00, 0x22 }, 5, "secp384r1" },
};
#define EC_NGROUPS	(sizeof(ec_groups) / sizeof(ec_groups[0]))

/*
 * A key of each curve with no point, made once and never changed: a
 * request's key is a copy with its point set, which skips building the
 * curve anew (a quarter of the cost of making the key from its name).
 * Only read after the once; OpenSSL keys may be read by many threads.
 */
static EVP_PKEY		*ec_params[EC_NGROUPS];
static pthread_once_t	 ec_params_once = PTHREAD_ONCE_INIT;

static void
ec_params_init(void)
{
	OSSL_PARAM	 params[2];
	EVP_PKEY_CTX	*ctx;
	size_t		 i;

	for (i = 0; i < EC_NGROUPS; i++) {
		params[0] = OSSL_PARAM_construct_utf8_string(
		    OSSL_PKEY_PARAM_GROUP_NAME, (char *)ec_groups[i].name, 0);
		params[1] = OSSL_PARAM_construct_end();
		if ((ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL)) ==
		    NULL || EVP_PKEY_fromdata_init(ctx) <= 0 ||
		    EVP_PKEY_fromdata(ctx, &ec_params[i],
		    EVP_PKEY_KEY_PARAMETERS, params) <= 0)
			ec_params[i] = NULL;	/* then the full path */
		EVP_PKEY_CTX_free(ctx);
	}
	ERR_clear_error();
}
static const struct {
	uint8_t		 oid[8];
	const char	*md;
} ecdsa_algs[] = {
	{ { 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02 }, "SHA256" },
	{ { 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x03 }, "SHA384" },
	{ { 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x04 }, "SHA512" },
};
#define ECDSA_NALGS	(sizeof(ecdsa_algs) / sizeof(ecdsa_algs[0]))

/* The subject and attributes decode (as d2i_X509_REQ() would insist). */
static int
csr_rest_decodes(const struct der *subject, const struct der *attrs)
{
	X509_NAME	*name;
	X509_ATTRIBUTE	*a;
	const uint8_t	*q, *end;
	int		 ok;

	/* An empty name and no attribute, as agents send: nothing that
	 * could fail to decode. */
	if (subject->len == 0 && (attrs == NULL || attrs->len == 0))
		return 1;
	q = subject->tlv;
	if ((name = d2i_X509_NAME(NULL, &q, (long)subject->tlvlen)) == NULL)
		return 0;
	X509_NAME_free(name);
	ok = q == subject->tlv + subject->tlvlen;
	if (!ok || attrs == NULL)
		return ok;
	for (q = attrs->v, end = attrs->v + attrs->len; ok && q < end;) {
		if ((a = d2i_X509_ATTRIBUTE(NULL, &q, (long)(end - q))) ==
		    NULL)
			return 0;
		X509_ATTRIBUTE_free(a);
	}
	return ok;
}

/* What the fast path reads out of a request. */
struct csr_ec {
	struct der	 info;		/* CertificationRequestInfo */
	struct der	 spki;
	const uint8_t	*point;		/* 04 X Y, or compressed */
	size_t		 pointlen;
	const uint8_t	*sig;		/* ECDSA-Sig-Value DER */
	size_t		 siglen;
	size_t		 group;		/* in ec_groups[] */
	size_t		 alg;		/* in ecdsa_algs[] */
};

/* 0: the request has the fast path's shape, read into c; 1: it has not. */
static int
csr_read_ec(const uint8_t *p, size_t len, struct csr_ec *c)
{
	struct der	 req, ver, subj, alg, aoid, curve, key;
	struct der	 sigalg, sigoid, sig, attrs;
	const uint8_t	*q = p, *end = p + len, *iq, *iend;
	size_t		 i;
	int		 have_attrs = 0;

	/* CertificationRequest, CertificationRequestInfo */
	if (der_next(&q, end, &req) != 0 || req.tag != DER_SEQ || q != end)
		return 1;
	q = req.v;
	end = req.v + req.len;
	if (der_next(&q, end, &c->info) != 0 || c->info.tag != DER_SEQ ||
	    der_next(&q, end, &sigalg) != 0 || sigalg.tag != DER_SEQ ||
	    der_next(&q, end, &sig) != 0 || sig.tag != DER_BITS || q != end)
		return 1;
	iq = c->info.v;
	iend = c->info.v + c->info.len;
	if (der_next(&iq, iend, &ver) != 0 ||
	    !der_is(&ver, DER_INT, (const uint8_t *)"", 1) ||
	    der_next(&iq, iend, &subj) != 0 || subj.tag != DER_SEQ ||
	    der_next(&iq, iend, &c->spki) != 0 || c->spki.tag != DER_SEQ)
		return 1;
	if (iq != iend) {
		if (der_next(&iq, iend, &attrs) != 0 ||
		    attrs.tag != DER_ATTRS || iq != iend)
			return 1;
		have_attrs = 1;
	}
	/* SubjectPublicKeyInfo: id-ecPublicKey, a named curve, the point */
	q = c->spki.v;
	end = c->spki.v + c->spki.len;
	if (der_next(&q, end, &alg) != 0 || alg.tag != DER_SEQ ||
	    der_next(&q, end, &key) != 0 || key.tag != DER_BITS ||
	    q != end || key.len < 2 || key.v[0] != 0 || key.v[1] == 0)
		return 1;
	q = alg.v;
	end = alg.v + alg.len;
	if (der_next(&q, end, &aoid) != 0 ||
	    !der_is(&aoid, DER_OID, oid_ec_pub, sizeof(oid_ec_pub)) ||
	    der_next(&q, end, &curve) != 0 || q != end)
		return 1;
	for (c->group = 0; c->group < EC_NGROUPS; c->group++)
		if (der_is(&curve, DER_OID, ec_groups[c->group].oid,
		    ec_groups[c->group].len))
			break;
	if (c->group == EC_NGROUPS || pthread_once(&ec_params_once,
	    ec_params_init) != 0 || ec_params[c->group] == NULL)
		return 1;
	c->point = key.v + 1;
	c->pointlen = key.len - 1;
	/* ECDSA with SHA-2, no parameters; a whole-byte signature */
	q = sigalg.v;
	end = sigalg.v + sigalg.len;
	if (der_next(&q, end, &sigoid) != 0 || q != end)
		return 1;
	c->alg = ECDSA_NALGS;
	for (i = 0; i < ECDSA_NALGS; i++)
		if (der_is(&sigoid, DER_OID, ecdsa_algs[i].oid,
		    sizeof(ecdsa_algs[i].oid)))
			c->alg = i;
	if (c->alg == ECDSA_NALGS || sig.len < 1 || sig.v[0] != 0)
		return 1;
	c->sig = sig.v + 1;
	c->siglen = sig.len - 1;
	if (!csr_rest_decodes(&subj, have_attrs ? &attrs : NULL))
		return 1;
	return 0;
}

/* 0: parsed (r says how it went), 1: not for this path. */
static int
csr_parse_ec(const uint8_t *p, size_t len, EVP_PKEY **pub,
    struct der *spki_out, const char **why, int *r)
{
	struct csr_ec	 c;
	EVP_MD_CTX	*mctx = NULL;
	EVP_PKEY	*pk = NULL;

	if (csr_read_ec(p, len, &c) != 0)
		return 1;
	*r = WICK_ERR_INVALID;
	*why = "request without a usable public key";
	/* The point is checked to be on the curve as it is set (the point
	 * at infinity, 00, went the full way above). */
	if ((pk = EVP_PKEY_dup(ec_params[c.group])) == NULL ||
	    EVP_PKEY_set1_encoded_public_key(pk, c.point, c.pointlen) != 1)
		goto out;
	*why = "key type not supported (EC P-256/P-384, RSA 2048-8192)";
	if (!supported(pk)) {
		*r = WICK_ERR_UNSUPPORTED;
		goto out;
	}
	/* Over the request's own encoding of CertificationRequestInfo,
	 * as X509_REQ_verify() does with the bytes it read. */
	*why = "request signature does not verify";
	*r = WICK_ERR_SIGNATURE;
	if ((mctx = EVP_MD_CTX_new()) == NULL ||
	    EVP_DigestVerifyInit_ex(mctx, NULL, ecdsa_algs[c.alg].md, NULL,
	    NULL, pk, NULL) <= 0 ||
	    EVP_DigestVerify(mctx, c.sig, c.siglen, c.info.tlv,
	    c.info.tlvlen) != 1)
		goto out;
	*why = NULL;
	*pub = pk;
	*spki_out = c.spki;
	pk = NULL;
	*r = 0;
out:
	EVP_MD_CTX_free(mctx);
	EVP_PKEY_free(pk);
	return 0;
}

/*
 * The state csr_check() reuses from request to request, for one thread at
 * a time: per curve, a key whose point each request replaces and a
 * verification context made for it once, and the digests, fetched once.
 * Making a key and setting up a context for every request (OpenSSL 3.0
 * finds its key manager and signature method by name each time) cost a
 * fifth of the signature check itself.  The context holds the very key
 * object whose point is replaced (EVP_PKEY_verify() reads it when it
 * runs); a key that fails to take a point is dropped, with its context,
 * so no request is ever checked against a point that is not its own.
 */
struct csr_verifier {
	EVP_PKEY	*key[EC_NGROUPS];
	EVP_PKEY_CTX	*ctx[EC_NGROUPS];
	EVP_MD		*md[ECDSA_NALGS];
};

int
csr_verifier_new(struct csr_verifier **out)
{
	if ((*out = calloc(1, sizeof(**out))) == NULL)
		return WICK_ERR_ALLOC;
	return 0;
}

static void
verifier_drop(struct csr_verifier *v, size_t g)
{
	EVP_PKEY_CTX_free(v->ctx[g]);
	EVP_PKEY_free(v->key[g]);
	v->ctx[g] = NULL;
	v->key[g] = NULL;
}

void
csr_verifier_free(struct csr_verifier *v)
{
	size_t i;

	if (v == NULL)
		return;
	for (i = 0; i < EC_NGROUPS; i++)
		verifier_drop(v, i);
	for (i = 0; i < ECDSA_NALGS; i++)
		EVP_MD_free(v->md[i]);
	free(v);
}

/* csr_parse_ec() with v's key of the request's curve; r as there. */
static int
csr_check_ec(struct csr_verifier *v, const uint8_t *p, size_t len,
    struct der *spki_out, const char **why, int *r)
{
	struct csr_ec	 c;
	uint8_t		 dig[EVP_MAX_MD_SIZE];
	unsigned int	 diglen;
	size_t		 g;

	if (csr_read_ec(p, len, &c) != 0)
		return 1;
	g = c.group;
	*r = WICK_ERR_INVALID;
	*why = "request without a usable public key";
	if (v->key[g] == NULL &&
	    (v->key[g] = EVP_PKEY_dup(ec_params[g])) == NULL)
		return 0;
	/* On the curve, as in csr_parse_ec(); a failure may leave part of
	 * the point set: the key goes. */
	if (EVP_PKEY_set1_encoded_public_key(v->key[g], c.point,
	    c.pointlen) != 1) {
		verifier_drop(v, g);
		return 0;
	}
	*why = "request signature does not verify";
	*r = WICK_ERR_SIGNATURE;
	if (v->ctx[g] == NULL) {
		if ((v->ctx[g] = EVP_PKEY_CTX_new_from_pkey(NULL, v->key[g],
		    NULL)) == NULL)
			return 0;
		if (EVP_PKEY_verify_init(v->ctx[g]) <= 0) {
			verifier_drop(v, g);
			return 0;
		}
	}
	if (v->md[c.alg] == NULL && (v->md[c.alg] = EVP_MD_fetch(NULL,
	    ecdsa_algs[c.alg].md, NULL)) == NULL)
		return 0;
	/* The digest of the request's own encoding, as in csr_parse_ec(). */
	if (EVP_Digest(c.info.tlv, c.info.tlvlen, dig, &diglen, v->md[c.alg],
	    NULL) != 1 || EVP_PKEY_verify(v->ctx[g], c.sig, c.siglen, dig,
	    diglen) != 1)
		return 0;
	*why = NULL;
	*spki_out = c.spki;
	*r = 0;
	return 0;
}

/*
 * An EC key that is a point of its curve other than the point at
 * infinity: OpenSSL 3.0 reads that point (the one byte 00) as a public
 * key, and any signature whose r is the x of a multiple of the generator
 * verifies against it.
 */
static int
ec_public_ok(EVP_PKEY *pk)
{
	EVP_PKEY_CTX	*ctx;
	int		 ok;

	if (!EVP_PKEY_is_a(pk, "EC"))
		return 1;
	ok = (ctx = EVP_PKEY_CTX_new_from_pkey(NULL, pk, NULL)) != NULL &&
	    EVP_PKEY_public_check_quick(ctx) == 1;
	EVP_PKEY_CTX_free(ctx);
	return ok;
}

/* Every request OpenSSL reads, through its full PKCS#10 decoder. */
static int
csr_parse_full(const uint8_t *p, size_t len, EVP_PKEY **pub, const char **why)
{
	X509_REQ	*req = NULL;
	const uint8_t	*q = p;
	EVP_PKEY	*pk = NULL;
	int		 r = WICK_ERR_INVALID;

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
	if ((pk = X509_REQ_get_pubkey(req)) == NULL || !ec_public_ok(pk))
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

int
csr_parse_spki(const uint8_t *p, size_t len, EVP_PKEY **pub,
    const uint8_t **spki, size_t *spkilen, const char **why)
{
	struct der	 d;
	int		 r;

	*pub = NULL;
	*spki = NULL;
	*spkilen = 0;
	*why = "CSR larger than 16 KiB";
	if (len > PKEY_MAX_DER)
		return WICK_ERR_LIMIT;
	if (csr_parse_ec(p, len, pub, &d, why, &r) != 0)
		return csr_parse_full(p, len, pub, why);
	if (r == 0) {
		*spki = d.tlv;
		*spkilen = d.tlvlen;
	} else	/* Peer input: leave no stale errors behind. */
		ERR_clear_error();
	return r;
}

int
csr_check(struct csr_verifier *v, const uint8_t *p, size_t len,
    EVP_PKEY **pub, const uint8_t **spki, size_t *spkilen, const char **why)
{
	struct der	 d;
	int		 r;

	*pub = NULL;
	*spki = NULL;
	*spkilen = 0;
	*why = "CSR larger than 16 KiB";
	if (len > PKEY_MAX_DER)
		return WICK_ERR_LIMIT;
	if (csr_check_ec(v, p, len, &d, why, &r) != 0)
		return csr_parse_full(p, len, pub, why);
	if (r == 0) {
		*spki = d.tlv;
		*spkilen = d.tlvlen;
	} else	/* Peer input: leave no stale errors behind. */
		ERR_clear_error();
	return r;
}

int
csr_parse(const uint8_t *p, size_t len, EVP_PKEY **pub, const char **why)
{
	const uint8_t	*spki;
	size_t		 spkilen;

	return csr_parse_spki(p, len, pub, &spki, &spkilen, why);
}
