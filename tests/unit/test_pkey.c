/*
 * test_pkey.c: key types, PKCS#8 and SPKI encodings, PKCS#10 requests.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/sha.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "buf.h"
#include "pkey.h"

#define NTYPES	4

static const enum pkey_type types[NTYPES] = {
	PKEY_EC_P256, PKEY_EC_P384, PKEY_RSA_2048, PKEY_RSA_4096,
};
static EVP_PKEY *keys[NTYPES];	/* one of each, made once */

static int
setup(void **state)
{
	size_t i;

	for (i = 0; i < NTYPES; i++)
		if (pkey_generate(types[i], &keys[i]) != 0)
			return -1;
	return 0;
}

static int
teardown(void **state)
{
	size_t i;

	for (i = 0; i < NTYPES; i++)
		EVP_PKEY_free(keys[i]);
	return 0;
}

static void
test_type_names(void **state)
{
	static const char *const names[NTYPES] = {
		"ec-p256", "ec-p384", "rsa-2048", "rsa-4096",
	};
	enum pkey_type	t;
	EVP_PKEY	*k;
	size_t		i;

	for (i = 0; i < NTYPES; i++) {
		assert_int_equal(pkey_type_parse(names[i], &t), 0);
		assert_int_equal(t, types[i]);
		assert_string_equal(pkey_type_name(types[i]), names[i]);
		assert_int_equal(pkey_type_of(keys[i], &t), 0);
		assert_int_equal(t, types[i]);
	}
	assert_int_equal(pkey_type_parse("ec-p521", &t), WICK_ERR_INVALID);
	assert_int_equal(pkey_type_parse("EC-P256", &t), WICK_ERR_INVALID);
	assert_int_equal(pkey_type_parse("", &t), WICK_ERR_INVALID);
	assert_int_equal(pkey_generate((enum pkey_type)99, &k),
	    WICK_ERR_INVALID);
	assert_null(k);
	assert_non_null(k = EVP_EC_gen("P-521"));
	assert_int_equal(pkey_type_of(k, &t), WICK_ERR_UNSUPPORTED);
	EVP_PKEY_free(k);
}

static void
test_pkcs8_roundtrip(void **state)
{
	struct buf	 der, pem, spki;
	EVP_PKEY	*k;
	enum pkey_type	 t;
	size_t		 i;

	for (i = 0; i < NTYPES; i++) {
		buf_init(&der, 0);
		buf_init(&pem, 0);
		buf_init(&spki, 0);
		assert_int_equal(pkey_to_pkcs8_der(keys[i], &der), 0);
		assert_true(der.secret);
		assert_int_equal(pkey_from_pkcs8_der(buf_ptr(&der),
		    buf_len(&der), &k), 0);
		assert_int_equal(EVP_PKEY_eq(k, keys[i]), 1);
		assert_int_equal(pkey_type_of(k, &t), 0);
		assert_int_equal(t, types[i]);
		EVP_PKEY_free(k);
		assert_int_equal(pkey_to_pkcs8_pem(keys[i], &pem), 0);
		assert_true(pem.secret);
		assert_true(buf_len(&pem) > 28);
		assert_memory_equal(buf_ptr(&pem),
		    "-----BEGIN PRIVATE KEY-----\n", 28);
		assert_int_equal(pkey_public_der(keys[i], &spki), 0);
		assert_int_equal(pkey_from_public_der(buf_ptr(&spki),
		    buf_len(&spki), &k), 0);
		assert_true(pkey_public_equal(k, keys[i]));
		assert_false(pkey_public_equal(k, keys[(i + 1) % NTYPES]));
		EVP_PKEY_free(k);
		/* Truncated, trailing bytes, empty, oversize. */
		assert_int_equal(pkey_from_pkcs8_der(buf_ptr(&der),
		    buf_len(&der) - 1, &k), WICK_ERR_INVALID);
		assert_null(k);
		assert_int_equal(buf_put_u8(&der, 0), 0);
		assert_int_equal(pkey_from_pkcs8_der(buf_ptr(&der),
		    buf_len(&der), &k), WICK_ERR_INVALID);
		assert_int_equal(pkey_from_pkcs8_der(buf_ptr(&der), 0, &k),
		    WICK_ERR_INVALID);
		assert_int_equal(pkey_from_pkcs8_der(buf_ptr(&der),
		    PKEY_MAX_DER + 1, &k), WICK_ERR_LIMIT);
		assert_int_equal(pkey_from_public_der(buf_ptr(&spki),
		    buf_len(&spki) - 1, &k), WICK_ERR_INVALID);
		assert_int_equal(pkey_from_public_der(buf_ptr(&spki),
		    PKEY_MAX_DER + 1, &k), WICK_ERR_LIMIT);
		assert_null(k);
		buf_cleanup(&der);
		buf_cleanup(&pem);
		buf_cleanup(&spki);
	}
}

/* A CSR for k, DER into b. */
static void
make(EVP_PKEY *k, struct buf *b)
{
	buf_init(b, PKEY_MAX_DER);
	assert_int_equal(csr_make(k, b), 0);
}

static void
test_csr_roundtrip(void **state)
{
	struct buf	 csr;
	X509_REQ	*req;
	const uint8_t	*q;
	EVP_PKEY	*pub;
	const char	*why;
	size_t		 i;

	for (i = 0; i < NTYPES; i++) {
		make(keys[i], &csr);
		why = "unset";
		assert_int_equal(csr_parse(buf_ptr(&csr), buf_len(&csr), &pub,
		    &why), 0);
		assert_null(why);
		assert_true(pkey_public_equal(pub, keys[i]));
		EVP_PKEY_free(pub);
		/* Empty subject; the digest follows the key. */
		q = buf_ptr(&csr);
		assert_non_null(req = d2i_X509_REQ(NULL, &q,
		    (long)buf_len(&csr)));
		assert_int_equal(X509_NAME_entry_count(
		    X509_REQ_get_subject_name(req)), 0);
		assert_int_equal(X509_REQ_get_signature_nid(req),
		    types[i] == PKEY_EC_P256 ? NID_ecdsa_with_SHA256 :
		    types[i] == PKEY_EC_P384 ? NID_ecdsa_with_SHA384 :
		    NID_sha256WithRSAEncryption);
		X509_REQ_free(req);
		buf_cleanup(&csr);
	}
}

/* What OpenSSL's own PKCS#10 reader says of a request: 1 to accept. */
static int
csr_reference(const uint8_t *p, size_t n, EVP_PKEY **pub)
{
	const uint8_t	*q = p;
	X509_REQ	*req;
	EVP_PKEY	*pk = NULL;
	int		 ok = 0;

	*pub = NULL;
	if ((req = d2i_X509_REQ(NULL, &q, (long)n)) == NULL) {
		ERR_clear_error();
		return 0;
	}
	if (q == p + n && X509_REQ_get_version(req) == 0 &&
	    (pk = X509_REQ_get_pubkey(req)) != NULL &&
	    X509_REQ_verify(req, pk) == 1)
		ok = 1;
	X509_REQ_free(req);
	ERR_clear_error();
	if (ok)
		*pub = pk;
	else
		EVP_PKEY_free(pk);
	return ok;
}

/* A request with a subject and an extension request attribute. */
static void
make_rich(EVP_PKEY *k, const EVP_MD *md, struct buf *b)
{
	X509_REQ			*req;
	X509_NAME			*name;
	STACK_OF(X509_EXTENSION)	*exts;
	X509_EXTENSION			*ext;
	uint8_t				*der = NULL;
	int				 len;

	assert_non_null(req = X509_REQ_new());
	assert_non_null(name = X509_NAME_new());
	assert_true(X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC,
	    (const unsigned char *)"wick", -1, -1, 0));
	assert_true(X509_REQ_set_subject_name(req, name));
	X509_NAME_free(name);
	assert_non_null(exts = sk_X509_EXTENSION_new_null());
	assert_non_null(ext = X509V3_EXT_conf_nid(NULL, NULL,
	    NID_subject_alt_name, "URI:spiffe://example.org/w"));
	assert_true(sk_X509_EXTENSION_push(exts, ext));
	assert_true(X509_REQ_add_extensions(req, exts));
	sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
	assert_true(X509_REQ_set_version(req, 0));
	assert_true(X509_REQ_set_pubkey(req, k));
	assert_true(X509_REQ_sign(req, k, md) > 0);
	assert_true((len = i2d_X509_REQ(req, &der)) > 0);
	buf_init(b, PKEY_MAX_DER);
	assert_int_equal(buf_put(b, der, (size_t)len), 0);
	OPENSSL_free(der);
	X509_REQ_free(req);
}

/*
 * EC requests are read without OpenSSL's PKCS#10 decoder (csr_parse()'s
 * fast path): over thousands of damaged requests of every kind, it
 * accepts exactly what that decoder and X509_REQ_verify() accept, with
 * the same key.
 */
static void
test_csr_same_as_openssl(void **state)
{
	struct buf		 csr[NTYPES + 3];
	struct csr_verifier	*v;
	EVP_PKEY		*pub, *ref;
	const uint8_t		*spki;
	const char		*why;
	uint64_t		 x = 0x9e3779b97f4a7c15ULL;
	uint8_t			*p;
	size_t			 i, n, ncsr = 0, pos, spkilen;
	int			 j, r, want, accepted = 0;

	/* One verifier for every request, good and bad, as a signing
	 * thread uses it. */
	assert_int_equal(csr_verifier_new(&v), 0);

	for (i = 0; i < NTYPES; i++)
		make(keys[i], &csr[ncsr++]);
	for (i = 0; i < NTYPES; i++)
		if (types[i] == PKEY_EC_P256) {
			make_rich(keys[i], EVP_sha256(), &csr[ncsr++]);
			make_rich(keys[i], EVP_sha512(), &csr[ncsr++]);
			make_rich(keys[i], EVP_sha1(), &csr[ncsr++]);
		}
	for (i = 0; i < ncsr; i++) {
		n = buf_len(&csr[i]);
		assert_non_null(p = malloc(n + 2));
		for (j = 0; j < 1500; j++) {
			memcpy(p, buf_ptr(&csr[i]), n);
			x ^= x << 13;
			x ^= x >> 7;
			x ^= x << 17;
			/* The first try as made; then one byte changed,
			 * most often in the header bytes. */
			if (j > 0) {
				pos = (size_t)(x % (j % 3 == 0 ? n : 48 < n ?
				    48 : n));
				p[pos] = (uint8_t)(x >> 32);
			}
			want = csr_reference(p, n, &ref);
			r = csr_parse(p, n, &pub, &why);
			if (want != (r == 0))
				fail_msg("request %zu try %d: csr_parse %d, "
				    "OpenSSL %d", i, j, r, want);
			if (want) {
				accepted++;
				assert_true(pkey_public_equal(pub, ref));
			} else
				assert_non_null(why);
			EVP_PKEY_free(pub);
			assert_int_equal(ERR_peek_error(), 0);
			/* csr_check(): the same answer, the same key. */
			r = csr_check(v, p, n, &pub, &spki, &spkilen, &why);
			if (want != (r == 0))
				fail_msg("request %zu try %d: csr_check %d, "
				    "OpenSSL %d", i, j, r, want);
			if (want && spki != NULL) {
				assert_null(pub);
				assert_int_equal(pkey_from_public_der(spki,
				    spkilen, &pub), 0);
			}
			if (want)
				assert_true(pkey_public_equal(pub, ref));
			else
				assert_non_null(why);
			EVP_PKEY_free(pub);
			EVP_PKEY_free(ref);
			assert_int_equal(ERR_peek_error(), 0);
		}
		free(p);
		buf_cleanup(&csr[i]);
	}
	csr_verifier_free(v);
	/* The undamaged ones at least. */
	assert_true(accepted >= (int)ncsr);
}

/* A request for pub, signed with signer's key (its own or not). */
static void
make_signed_by(EVP_PKEY *pub, EVP_PKEY *signer, struct buf *b)
{
	X509_REQ	*req;
	uint8_t		*der = NULL;
	int		 len;

	assert_non_null(req = X509_REQ_new());
	assert_true(X509_REQ_set_version(req, 0));
	assert_true(X509_REQ_set_pubkey(req, pub));
	assert_true(X509_REQ_sign(req, signer, EVP_sha256()) > 0);
	assert_true((len = i2d_X509_REQ(req, &der)) > 0);
	buf_init(b, PKEY_MAX_DER);
	assert_int_equal(buf_put(b, der, (size_t)len), 0);
	OPENSSL_free(der);
	X509_REQ_free(req);
}

/*
 * A verifier checks every request against that request's own key, never
 * one left from the request before: a request for B signed with the key
 * of A, the request just checked, is refused; so is one after a point
 * that was not on the curve, and the point at infinity is refused too.
 */
static void
test_csr_check_own_key(void **state)
{
	struct csr_verifier	*v;
	struct buf		 a, b, forged, offcurve;
	EVP_PKEY		*ka, *kb, *pub, *got;
	const uint8_t		*spki;
	const char		*why;
	uint8_t			*pb = NULL, *q;
	size_t			 spkilen, n, k;
	int			 pblen, round;

	assert_int_equal(pkey_generate(PKEY_EC_P256, &ka), 0);
	assert_int_equal(pkey_generate(PKEY_EC_P256, &kb), 0);
	make_signed_by(ka, ka, &a);
	make_signed_by(kb, kb, &b);
	make_signed_by(kb, ka, &forged);
	/* B's request with the last byte of its point's Y changed. */
	make_signed_by(kb, kb, &offcurve);
	assert_true((pblen = i2d_PUBKEY(kb, &pb)) > 0);
	q = (uint8_t *)buf_ptr(&offcurve);
	n = buf_len(&offcurve);
	for (k = 0; k + (size_t)pblen <= n; k++)
		if (memcmp(q + k, pb, (size_t)pblen) == 0)
			break;
	assert_true(k + (size_t)pblen <= n);
	q[k + (size_t)pblen - 1] ^= 0x01;
	OPENSSL_free(pb);

	assert_int_equal(csr_verifier_new(&v), 0);
	for (round = 0; round < 2; round++) {
		assert_int_equal(csr_check(v, buf_ptr(&a), buf_len(&a), &pub,
		    &spki, &spkilen, &why), 0);
		assert_null(pub);
		assert_non_null(spki);
		assert_int_equal(pkey_from_public_der(spki, spkilen, &got), 0);
		assert_true(pkey_public_equal(got, ka));
		EVP_PKEY_free(got);
		assert_int_equal(csr_check(v, buf_ptr(&forged),
		    buf_len(&forged), &pub, &spki, &spkilen, &why),
		    WICK_ERR_SIGNATURE);
		assert_null(pub);
		assert_null(spki);
		assert_string_equal(why, "request signature does not verify");
		assert_int_equal(csr_check(v, buf_ptr(&offcurve),
		    buf_len(&offcurve), &pub, &spki, &spkilen, &why),
		    WICK_ERR_INVALID);
		assert_string_equal(why, "request without a usable public key");
		assert_int_equal(csr_check(v, buf_ptr(&forged),
		    buf_len(&forged), &pub, &spki, &spkilen, &why),
		    WICK_ERR_SIGNATURE);
		assert_int_equal(csr_check(v, buf_ptr(&b), buf_len(&b), &pub,
		    &spki, &spkilen, &why), 0);
		assert_int_equal(pkey_from_public_der(spki, spkilen, &got), 0);
		assert_true(pkey_public_equal(got, kb));
		EVP_PKEY_free(got);
		assert_int_equal(ERR_peek_error(), 0);
	}
	/* The full path's requests through a verifier: RSA. */
	buf_cleanup(&a);
	make_signed_by(keys[2], keys[2], &a);
	assert_int_equal(csr_check(v, buf_ptr(&a), buf_len(&a), &pub, &spki,
	    &spkilen, &why), 0);
	assert_null(spki);
	assert_non_null(pub);
	assert_true(pkey_public_equal(pub, keys[2]));
	EVP_PKEY_free(pub);
	csr_verifier_free(v);
	buf_cleanup(&a);
	buf_cleanup(&b);
	buf_cleanup(&forged);
	buf_cleanup(&offcurve);
	EVP_PKEY_free(ka);
	EVP_PKEY_free(kb);
}

/* DER of tag and n bytes, appended at *p. */
static void
put_tlv(uint8_t **p, int tag, const uint8_t *v, size_t n)
{
	uint8_t *q = *p;

	*q++ = (uint8_t)tag;
	if (n >= 0x80) {
		*q++ = 0x81;
		assert_true(n < 0x100);
	}
	*q++ = (uint8_t)n;
	if (n > 0)
		memcpy(q, v, n);
	*p = q + n;
}

/*
 * A P-256 request whose key is the point at infinity, with a signature
 * made for it without any private key (r = x(kG), s = e/k): refused,
 * whether it takes the fast path (strict DER) or the full one (an outer
 * length in non-minimal form).
 */
static void
test_csr_point_at_infinity(void **state)
{
	/* The point is the one byte 00. */
	static const uint8_t spki[] = { 0x30, 0x19, 0x30, 0x13, 0x06, 0x07,
	    0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a, 0x86,
	    0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x02, 0x00, 0x00 };
	static const uint8_t alg[] = { 0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86,
	    0x48, 0xce, 0x3d, 0x04, 0x03, 0x02 };
	uint8_t		 info[128], body[256], csr[300], sigbits[128];
	uint8_t		 dig[32], *p, *q, *sder = NULL;
	EC_GROUP	*g;
	EC_POINT	*R;
	BIGNUM		*k, *r, *sv, *e, *n, *kinv, *x;
	BN_CTX		*bc;
	ECDSA_SIG	*sig;
	EVP_PKEY	*pub;
	struct csr_verifier *v;
	const uint8_t	*spkip;
	const char	*why;
	size_t		 infolen, bodylen, csrlen, spkilen;
	int		 slen;

	/* CertificationRequestInfo: v1, empty subject, the key, no
	 * attributes ([0] empty). */
	p = body;
	put_tlv(&p, 0x02, (const uint8_t *)"", 1);
	put_tlv(&p, 0x30, NULL, 0);
	memcpy(p, spki, sizeof(spki));
	p += sizeof(spki);
	put_tlv(&p, 0xa0, NULL, 0);
	q = info;
	put_tlv(&q, 0x30, body, (size_t)(p - body));
	infolen = (size_t)(q - info);
	/* The forgery. */
	assert_non_null(bc = BN_CTX_new());
	assert_non_null(g = EC_GROUP_new_by_curve_name(NID_X9_62_prime256v1));
	assert_non_null(R = EC_POINT_new(g));
	assert_non_null(n = BN_dup(EC_GROUP_get0_order(g)));
	assert_non_null(k = BN_new());
	assert_non_null(x = BN_new());
	assert_non_null(r = BN_new());
	assert_non_null(sv = BN_new());
	assert_true(BN_rand_range(k, n));
	assert_true(EC_POINT_mul(g, R, k, NULL, NULL, bc));
	assert_true(EC_POINT_get_affine_coordinates(g, R, x, NULL, bc));
	assert_true(BN_nnmod(r, x, n, bc));
	assert_non_null(SHA256(info, infolen, dig));
	assert_non_null(e = BN_bin2bn(dig, sizeof(dig), NULL));
	assert_non_null(kinv = BN_mod_inverse(NULL, k, n, bc));
	assert_true(BN_mod_mul(sv, e, kinv, n, bc));
	assert_non_null(sig = ECDSA_SIG_new());
	assert_true(ECDSA_SIG_set0(sig, r, sv));
	assert_true((slen = i2d_ECDSA_SIG(sig, &sder)) > 0);
	sigbits[0] = 0;
	memcpy(sigbits + 1, sder, (size_t)slen);
	/* The request, then the same with a long-form outer length. */
	p = body;
	memcpy(p, info, infolen);
	p += infolen;
	memcpy(p, alg, sizeof(alg));
	p += sizeof(alg);
	put_tlv(&p, 0x03, sigbits, (size_t)slen + 1);
	bodylen = (size_t)(p - body);
	assert_true(bodylen < 0x80);
	q = csr;
	put_tlv(&q, 0x30, body, bodylen);
	csrlen = (size_t)(q - csr);
	assert_int_equal(csr_parse(csr, csrlen, &pub, &why), WICK_ERR_INVALID);
	assert_null(pub);
	assert_string_equal(why, "request without a usable public key");
	assert_int_equal(csr_verifier_new(&v), 0);
	assert_int_equal(csr_check(v, csr, csrlen, &pub, &spkip, &spkilen,
	    &why), WICK_ERR_INVALID);
	assert_null(pub);
	assert_null(spkip);
	csr_verifier_free(v);
	csr[1] = 0x81;
	csr[2] = (uint8_t)bodylen;
	memcpy(csr + 3, body, bodylen);
	assert_int_equal(csr_parse(csr, csrlen + 1, &pub, &why),
	    WICK_ERR_INVALID);
	assert_null(pub);
	assert_int_equal(ERR_peek_error(), 0);
	OPENSSL_free(sder);
	ECDSA_SIG_free(sig);
	BN_free(kinv);
	BN_free(e);
	BN_free(x);
	BN_free(k);
	BN_free(n);
	EC_POINT_free(R);
	EC_GROUP_free(g);
	BN_CTX_free(bc);
}

static void
test_csr_bad(void **state)
{
	static const uint8_t garbage[] = "\x30\x03\x02\x01\x00 not a CSR";
	struct buf	 csr;
	EVP_PKEY	*pub, *k;
	const char	*why;
	uint8_t		*p;
	size_t		 i, n;

	for (i = 0; i < NTYPES; i++) {
		make(keys[i], &csr);
		n = buf_len(&csr);
		p = malloc(n + 1);
		/* The last byte is inside the signature: SIGNATURE. */
		memcpy(p, buf_ptr(&csr), n);
		p[n - 1] ^= 0x01;
		assert_int_equal(csr_parse(p, n, &pub, &why),
		    WICK_ERR_SIGNATURE);
		assert_null(pub);
		assert_non_null(why);
		/* Truncated, trailing bytes: INVALID. */
		assert_int_equal(csr_parse(buf_ptr(&csr), n - 1, &pub, &why),
		    WICK_ERR_INVALID);
		assert_non_null(why);
		memcpy(p, buf_ptr(&csr), n);
		p[n] = 0;
		assert_int_equal(csr_parse(p, n + 1, &pub, &why),
		    WICK_ERR_INVALID);
		assert_string_equal(why, "trailing bytes after the request");
		free(p);
		buf_cleanup(&csr);
	}
	assert_int_equal(csr_parse(garbage, sizeof(garbage) - 1, &pub, &why),
	    WICK_ERR_INVALID);
	assert_int_equal(csr_parse(garbage, 0, &pub, &why), WICK_ERR_INVALID);
	/* Oversize is refused before anything is parsed. */
	p = calloc(1, PKEY_MAX_DER + 1);
	assert_int_equal(csr_parse(p, PKEY_MAX_DER + 1, &pub, &why),
	    WICK_ERR_LIMIT);
	assert_null(pub);
	assert_non_null(why);
	free(p);
	/* RSA-1024 and P-521: valid requests, keys we do not accept. */
	assert_non_null(k = EVP_RSA_gen(1024));
	make(k, &csr);
	assert_int_equal(csr_parse(buf_ptr(&csr), buf_len(&csr), &pub, &why),
	    WICK_ERR_UNSUPPORTED);
	assert_null(pub);
	assert_non_null(why);
	buf_cleanup(&csr);
	EVP_PKEY_free(k);
	assert_non_null(k = EVP_EC_gen("P-521"));
	make(k, &csr);
	assert_int_equal(csr_parse(buf_ptr(&csr), buf_len(&csr), &pub, &why),
	    WICK_ERR_UNSUPPORTED);
	buf_cleanup(&csr);
	EVP_PKEY_free(k);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_type_names),
		cmocka_unit_test(test_pkcs8_roundtrip),
		cmocka_unit_test(test_csr_roundtrip),
		cmocka_unit_test(test_csr_bad),
		cmocka_unit_test(test_csr_same_as_openssl),
		cmocka_unit_test(test_csr_point_at_infinity),
		cmocka_unit_test(test_csr_check_own_key),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
