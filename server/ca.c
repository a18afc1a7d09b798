/*
 * ca.c: X.509 CA and SVID certificates in SPIRE's profile.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <openssl/x509v3.h>

#include "ca.h"
#include "der.h"
#include "x509.h"
#include "encode.h"
#include "pkey.h"
#include "spiffeid.h"

/* A sanity bound on CA lifetimes, seconds. */
#define CA_MAX_TTL	(100LL * 365 * 86400)

/* A random serial in [1, 2^128], SPIRE's: 128 random bits plus one. */
static int
random_serial(X509 *c, BIGNUM **out)
{
	uint8_t	 b[16];
	BIGNUM	*bn;

	if (RAND_bytes(b, sizeof(b)) != 1)
		return WICK_ERR_CRYPTO;
	if ((bn = BN_bin2bn(b, sizeof(b), NULL)) == NULL)
		return WICK_ERR_ALLOC;
	if (!BN_add_word(bn, 1) ||
	    BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(c)) == NULL) {
		BN_free(bn);
		return WICK_ERR_CRYPTO;
	}
	*out = bn;
	return 0;
}

static const EVP_MD *
digest_for(EVP_PKEY *signer)
{
	enum pkey_type t;

	if (pkey_type_of(signer, &t) == 0 && t == PKEY_EC_P384)
		return EVP_sha384();
	return EVP_sha256();
}

/* One extension from its OpenSSL config text; issuer NULL: c itself. */
static int
add_ext(X509 *c, X509 *issuer, int nid, const char *value)
{
	X509V3_CTX	 ctx;
	X509_EXTENSION	*ext;
	int		 ok;

	X509V3_set_ctx(&ctx, issuer != NULL ? issuer : c, c, NULL, NULL, 0);
	if ((ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value)) == NULL)
		return WICK_ERR_CRYPTO;
	ok = X509_add_ext(c, ext, -1);
	X509_EXTENSION_free(ext);
	return ok ? 0 : WICK_ERR_CRYPTO;
}

/* A SAN extension built directly: URI and DNS values may hold commas. */
static int
add_san(X509 *c, const char *uri, const char *const *dns, size_t ndns)
{
	GENERAL_NAMES	*gens = GENERAL_NAMES_new();
	GENERAL_NAME	*g;
	ASN1_IA5STRING	*s;
	size_t		 i;
	int		 r = WICK_ERR_CRYPTO;

	if (gens == NULL)
		return WICK_ERR_ALLOC;
	for (i = 0; i < 1 + ndns; i++) {
		const char *v = i == 0 ? uri : dns[i - 1];

		if ((g = GENERAL_NAME_new()) == NULL ||
		    (s = ASN1_IA5STRING_new()) == NULL) {
			GENERAL_NAME_free(g);
			goto out;
		}
		if (!ASN1_STRING_set(s, v, (int)strlen(v))) {
			ASN1_IA5STRING_free(s);
			GENERAL_NAME_free(g);
			goto out;
		}
		GENERAL_NAME_set0_value(g, i == 0 ? GEN_URI : GEN_DNS, s);
		if (!sk_GENERAL_NAME_push(gens, g)) {
			GENERAL_NAME_free(g);
			goto out;
		}
	}
	if (X509_add1_ext_i2d(c, NID_subject_alt_name, gens, 0,
	    X509V3_ADD_DEFAULT) == 1)
		r = 0;
out:
	GENERAL_NAMES_free(gens);
	return r;
}

static int
set_times(X509 *c, int64_t nb, int64_t na)
{
	if (ASN1_TIME_set(X509_getm_notBefore(c), (time_t)nb) == NULL ||
	    ASN1_TIME_set(X509_getm_notAfter(c), (time_t)na) == NULL)
		return WICK_ERR_CRYPTO;
	return 0;
}

static int
name_add(X509_NAME *n, const char *field, const char *v)
{
	if (v == NULL || *v == '\0')
		return 0;
	if (X509_NAME_add_entry_by_txt(n, field, MBSTRING_UTF8,
	    (const unsigned char *)v, -1, -1, 0) != 1) {
		ERR_clear_error();	/* e.g. a country that is not 2 letters */
		return WICK_ERR_INVALID;
	}
	return 0;
}

/*
 * The CA subject: subj as configured, C=US, O=SPIFFE when subj is NULL or
 * empty; then serialNumber = the serial in decimal.
 */
static int
set_ca_subject(X509 *c, const struct ca_subject *subj, const BIGNUM *serial)
{
	static const char *const us[] = { "US" };
	static const char *const spiffe[] = { "SPIFFE" };
	static const struct ca_subject dflt = { us, 1, spiffe, 1, NULL };
	X509_NAME	*n = X509_get_subject_name(c);
	char		*dec;
	size_t		 i;
	int		 r = 0;

	if (subj == NULL || (subj->ncountry == 0 && subj->norganization == 0 &&
	    (subj->common_name == NULL || *subj->common_name == '\0')))
		subj = &dflt;
	for (i = 0; i < subj->ncountry && r == 0; i++)
		r = name_add(n, "C", subj->country[i]);
	for (i = 0; i < subj->norganization && r == 0; i++)
		r = name_add(n, "O", subj->organization[i]);
	if (r == 0)
		r = name_add(n, "CN", subj->common_name);
	if (r != 0)
		return r;
	if ((dec = BN_bn2dec(serial)) == NULL)
		return WICK_ERR_ALLOC;
	r = name_add(n, "serialNumber", dec);
	OPENSSL_free(dec);
	return r;
}

/* SKID from the key; AKID = the issuer's SKID when it has one. */
static int
add_key_ids(X509 *c, X509 *issuer)
{
	int r;

	if ((r = add_ext(c, issuer, NID_subject_key_identifier, "hash")) != 0)
		return r;
	/* Not on c: that would cache its extensions before they are all in. */
	if (issuer != NULL && X509_get0_subject_key_id(issuer) == NULL)
		return 0;
	return add_ext(c, issuer, NID_authority_key_identifier,
	    "keyid:always");
}

static int
make_ca(EVP_PKEY *key, const char *td, const struct ca_subject *subj,
    X509 *issuer, EVP_PKEY *issuer_key, int64_t now, int64_t ttl, X509 **out)
{
	char		 uri[SPIFFEID_MAX_TD_LEN + 16];
	char		 tdn[SPIFFEID_MAX_TD_LEN + 1];
	const char	*why;
	EVP_PKEY	*signer = issuer_key != NULL ? issuer_key : key;
	BIGNUM		*serial = NULL;
	X509		*c = NULL;
	int64_t		 na;
	int		 r = WICK_ERR_CRYPTO;

	*out = NULL;
	if (ttl <= 0 || ttl > CA_MAX_TTL ||
	    spiffeid_td_parse(td, 0, tdn, &why) != 0)
		return WICK_ERR_INVALID;
	na = now + ttl;
	if (issuer != NULL) {
		if (X509_check_private_key(issuer, issuer_key) != 1 ||
		    X509_check_ca(issuer) == 0) {
			ERR_clear_error();
			return WICK_ERR_INVALID;
		}
		if (x509_not_before(issuer) > now || x509_not_after(issuer) <= now)
			return WICK_ERR_EXPIRED;
		if (na > x509_not_after(issuer))
			na = x509_not_after(issuer);
	}
	snprintf(uri, sizeof(uri), "spiffe://%s", tdn);
	if ((c = X509_new()) == NULL)
		return WICK_ERR_ALLOC;
	if (!X509_set_version(c, X509_VERSION_3) ||
	    (r = random_serial(c, &serial)) != 0 ||
	    (r = set_ca_subject(c, subj, serial)) != 0 ||
	    (r = set_times(c, now - CA_BACKDATE, na)) != 0 ||
	    !X509_set_pubkey(c, key) ||
	    !X509_set_issuer_name(c, issuer != NULL ?
	    X509_get_subject_name(issuer) : X509_get_subject_name(c))) {
		r = r != 0 ? r : WICK_ERR_CRYPTO;
		goto out;
	}
	if ((r = add_ext(c, issuer, NID_basic_constraints,
	    "critical,CA:TRUE")) != 0 ||
	    (r = add_ext(c, issuer, NID_key_usage,
	    "critical,keyCertSign,cRLSign")) != 0 ||
	    (r = add_key_ids(c, issuer)) != 0 ||
	    (r = add_san(c, uri, NULL, 0)) != 0)
		goto out;
	if (X509_sign(c, signer, digest_for(signer)) <= 0) {
		r = WICK_ERR_CRYPTO;
		goto out;
	}
	*out = c;
	c = NULL;
	r = 0;
out:
	BN_free(serial);
	X509_free(c);
	return r;
}

int
ca_make_root(EVP_PKEY *key, const char *td, const struct ca_subject *subj,
    int64_t now, int64_t ttl, X509 **out)
{
	return make_ca(key, td, subj, NULL, NULL, now, ttl, out);
}

int
ca_make_intermediate(EVP_PKEY *key, const char *td,
    const struct ca_subject *subj, X509 *upstream_cert,
    EVP_PKEY *upstream_key, int64_t now, int64_t ttl, X509 **out)
{
	return make_ca(key, td, subj, upstream_cert, upstream_key, now, ttl,
	    out);
}

/* C=US, O=SPIRE, CN = the first DNS name (UTF8String, any length). */
static int
svid_subject(X509 *c, const struct ca_svid_params *p)
{
	X509_NAME	*n = X509_get_subject_name(c);
	int		 r;

	if ((r = name_add(n, "C", "US")) != 0 ||
	    (r = name_add(n, "O", "SPIRE")) != 0)
		return r;
	if (p->ndns_names > 0 && X509_NAME_add_entry_by_NID(n, NID_commonName,
	    V_ASN1_UTF8STRING, (const unsigned char *)p->dns_names[0], -1, -1,
	    0) != 1)
		return WICK_ERR_CRYPTO;
	return 0;
}

/*
 * With encode_only, set an EC public key from its encoded point and
 * curve, without X509_set_pubkey(): on OpenSSL 3.0 that encodes the key
 * and decodes it again through the provider machinery, which profiles as
 * almost half the cost of issuing an SVID.  Other key types, and
 * certificates this process will use, take the general path.
 */
static int
set_pubkey(X509 *c, EVP_PKEY *pub, int encode_only)
{
	uint8_t		 point[1 + 2 * 66], *copy;
	char		 group[64];
	size_t		 len;
	int		 nid;

	if (!encode_only || !EVP_PKEY_is_a(pub, "EC") ||
	    !EVP_PKEY_get_utf8_string_param(pub, OSSL_PKEY_PARAM_GROUP_NAME,
	    group, sizeof(group), NULL) ||
	    (nid = OBJ_sn2nid(group)) == NID_undef ||
	    !EVP_PKEY_get_octet_string_param(pub,
	    OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, point, sizeof(point), &len) ||
	    len == 0 || point[0] != 0x04)
		return X509_set_pubkey(c, pub) ? 0 : WICK_ERR_CRYPTO;
	if ((copy = OPENSSL_malloc(len)) == NULL)
		return WICK_ERR_ALLOC;
	memcpy(copy, point, len);
	if (!X509_PUBKEY_set0_param(X509_get_X509_PUBKEY(c),
	    OBJ_nid2obj(NID_X9_62_id_ecPublicKey), V_ASN1_OBJECT,
	    OBJ_nid2obj(nid), copy, (int)len)) {
		OPENSSL_free(copy);
		return WICK_ERR_CRYPTO;
	}
	return 0;
}

/* What an SVID may be made of, and its NotAfter. */
static int
svid_check(X509 *ca_cert, const struct ca_svid_params *p, int64_t *na)
{
	struct spiffeid	 id;
	int64_t		 ca_na = x509_not_after(ca_cert);
	size_t		 i;

	if (p->spiffe_id == NULL || spiffeid_parse(p->spiffe_id, 0, &id,
	    NULL) != 0 || *id.path == '\0' || p->ttl <= 0 ||
	    p->ndns_names > CA_MAX_DNS_NAMES)
		return WICK_ERR_INVALID;
	for (i = 0; i < p->ndns_names; i++)
		if (p->dns_names[i] == NULL || !x509_dns_name_ok(p->dns_names[i]))
			return WICK_ERR_INVALID;
	if (x509_not_before(ca_cert) > p->now || ca_na <= p->now)
		return WICK_ERR_EXPIRED;
	*na = p->ttl < ca_na - p->now ? p->now + p->ttl : ca_na;
	return 0;
}

int
ca_sign_x509_svid(X509 *ca_cert, EVP_PKEY *ca_key, EVP_PKEY *pub,
    const struct ca_svid_params *p, X509 **out)
{
	BIGNUM		*serial = NULL;
	X509		*c = NULL;
	int64_t		 na;
	int		 r = WICK_ERR_CRYPTO;

	*out = NULL;
	if ((r = svid_check(ca_cert, p, &na)) != 0)
		return r;
	if ((c = X509_new()) == NULL)
		return WICK_ERR_ALLOC;
	if (!X509_set_version(c, X509_VERSION_3) ||
	    (r = random_serial(c, &serial)) != 0 ||
	    (r = svid_subject(c, p)) != 0 ||
	    (r = set_times(c, p->now - CA_BACKDATE, na)) != 0 ||
	    (r = set_pubkey(c, pub, p->encode_only)) != 0 ||
	    !X509_set_issuer_name(c, X509_get_subject_name(ca_cert))) {
		r = r != 0 ? r : WICK_ERR_CRYPTO;
		goto out;
	}
	if ((r = add_ext(c, ca_cert, NID_basic_constraints,
	    "critical,CA:FALSE")) != 0 ||
	    (r = add_ext(c, ca_cert, NID_key_usage, "critical,"
	    "digitalSignature,keyEncipherment,keyAgreement")) != 0 ||
	    (r = add_ext(c, ca_cert, NID_ext_key_usage,
	    "serverAuth,clientAuth")) != 0 ||
	    (r = add_key_ids(c, ca_cert)) != 0 ||
	    (r = add_san(c, p->spiffe_id, p->dns_names, p->ndns_names)) != 0)
		goto out;
	if (X509_sign(c, ca_key, digest_for(ca_key)) <= 0) {
		r = WICK_ERR_CRYPTO;
		goto out;
	}
	*out = c;
	c = NULL;
	r = 0;
out:
	BN_free(serial);
	X509_free(c);
	return r;
}

/* ---- the same SVID, written as DER ------------------------------------ */

static const uint8_t oid_ec_pub[] = { 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02,
    0x01 };
static const uint8_t oid_c[] = { 0x55, 0x04, 0x06 };
static const uint8_t oid_o[] = { 0x55, 0x04, 0x0a };
static const uint8_t oid_cn[] = { 0x55, 0x04, 0x03 };
/* The fixed extensions, whole: basicConstraints critical CA:FALSE;
 * keyUsage critical digitalSignature, keyEncipherment, keyAgreement;
 * extKeyUsage serverAuth, clientAuth. */
static const uint8_t ext_fixed[] = {
	0x30, 0x0c, 0x06, 0x03, 0x55, 0x1d, 0x13, 0x01, 0x01, 0xff, 0x04, 0x02,
	0x30, 0x00,
	0x30, 0x0e, 0x06, 0x03, 0x55, 0x1d, 0x0f, 0x01, 0x01, 0xff, 0x04, 0x04,
	0x03, 0x02, 0x03, 0xa8,
	0x30, 0x1d, 0x06, 0x03, 0x55, 0x1d, 0x25, 0x04, 0x16, 0x30, 0x14, 0x06,
	0x08, 0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x01, 0x06, 0x08, 0x2b,
	0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x02,
};
static const uint8_t oid_skid[] = { 0x55, 0x1d, 0x0e };
static const uint8_t oid_akid[] = { 0x55, 0x1d, 0x23 };
static const uint8_t oid_san[] = { 0x55, 0x1d, 0x11 };
/* AlgorithmIdentifiers of ECDSA (no parameters). */
static const uint8_t alg_ecdsa_sha256[] = { 0x30, 0x0a, 0x06, 0x08, 0x2a,
    0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02 };
static const uint8_t alg_ecdsa_sha384[] = { 0x30, 0x0a, 0x06, 0x08, 0x2a,
    0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x03 };

/* One RDN of one attribute. */
static int
der_rdn(struct buf *b, const uint8_t *oid, size_t oidlen, int tag,
    const char *v)
{
	struct buf	 atv, set;
	int		 r;

	buf_init(&atv, DER_MAX_LEN);
	buf_init(&set, DER_MAX_LEN);
	if ((r = der_put(&atv, DER_OID, oid, oidlen)) == 0 &&
	    (r = der_put(&atv, tag, v, strlen(v))) == 0 &&
	    (r = der_wrap(&set, DER_SEQ, &atv)) == 0)
		r = der_wrap(b, DER_SET, &set);
	buf_cleanup(&atv);
	buf_cleanup(&set);
	return r;
}

/* UTCTime through 2049, GeneralizedTime after, as ASN1_TIME_set(). */
static int
der_time(struct buf *b, int64_t t)
{
	struct tm	 tm;
	time_t		 tt = (time_t)t;
	char		 s[32];
	int		 y;

	if ((int64_t)tt != t || gmtime_r(&tt, &tm) == NULL)
		return WICK_ERR_INVALID;
	y = tm.tm_year + 1900;
	if (y >= 1950 && y < 2050) {
		snprintf(s, sizeof(s), "%02d%02d%02d%02d%02d%02dZ", y % 100,
		    tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
		    tm.tm_sec);
		return der_put(b, DER_UTCTIME, s, strlen(s));
	}
	if (y < 0 || y > 9999)
		return WICK_ERR_INVALID;
	snprintf(s, sizeof(s), "%04d%02d%02d%02d%02d%02dZ", y, tm.tm_mon + 1,
	    tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
	return der_put(b, DER_GENTIME, s, strlen(s));
}

/* One extension: its OID, critical or not, the value's DER. */
static int
der_ext(struct buf *b, const uint8_t *oid, size_t oidlen,
    const uint8_t *v, size_t n)
{
	struct buf	 e;
	int		 r;

	buf_init(&e, DER_MAX_LEN);
	if ((r = der_put(&e, DER_OID, oid, oidlen)) == 0 &&
	    (r = der_put(&e, DER_OCTETS, v, n)) == 0)
		r = der_wrap(b, DER_SEQ, &e);
	buf_cleanup(&e);
	return r;
}

/* The serial rnd + 1 as a DER INTEGER into b, and in hex into hex. */
static int
der_serial(struct buf *b, const uint8_t rnd[CA_SERIAL_RAND],
    char hex[CA_SERIAL_HEX])
{
	static const char	 digits[] = "0123456789abcdef";
	uint8_t			 v[1 + CA_SERIAL_RAND + 1], *m;
	unsigned		 carry = 1;
	size_t			 i, n;
	char			*h = hex;

	v[0] = 0;
	v[1] = 0;
	for (i = CA_SERIAL_RAND; i > 0; i--) {
		carry += rnd[i - 1];
		v[i + 1] = (uint8_t)carry;
		carry >>= 8;
	}
	v[1] = (uint8_t)carry;
	/* Minimal, and positive: a 0 before a first byte >= 0x80. */
	for (m = v + 1, n = sizeof(v) - 1; n > 1 && *m == 0; m++, n--)
		;
	for (i = 0; i < n; i++) {
		if (i > 0 || m[i] >> 4 != 0)
			*h++ = digits[m[i] >> 4];
		*h++ = digits[m[i] & 0xf];
	}
	*h = '\0';
	if (*m & 0x80) {
		m--;
		n++;
	}
	return der_put(b, DER_INT, m, n);
}

int
ca_svid_der(X509 *ca_cert, EVP_PKEY *ca_key, const uint8_t *spki,
    size_t spkilen, const struct ca_svid_params *p,
    const uint8_t rnd[CA_SERIAL_RAND], uint8_t **der, size_t *derlen,
    char serial[CA_SERIAL_HEX], int64_t *not_after)
{
	const ASN1_OCTET_STRING	*ca_skid;
	struct der		 d, alg, oid, bits;
	struct buf		 tbs, x, y, cert;
	enum pkey_type		 t;
	const uint8_t		*q, *end, *sigalg;
	uint8_t			 own[CA_SERIAL_RAND], skid[SHA_DIGEST_LENGTH];
	uint8_t			*issuer = NULL, *sig = NULL;
	EVP_MD_CTX		*mctx = NULL;
	const char		*md;
	size_t			 i, sigalglen, siglen;
	int64_t			 na;
	int			 r, ilen;

	*der = NULL;
	*derlen = 0;
	*serial = '\0';
	if (pkey_type_of(ca_key, &t) != 0 || (t != PKEY_EC_P256 &&
	    t != PKEY_EC_P384))
		return WICK_ERR_UNSUPPORTED;
	sigalg = t == PKEY_EC_P384 ? alg_ecdsa_sha384 : alg_ecdsa_sha256;
	sigalglen = sizeof(alg_ecdsa_sha256);
	md = t == PKEY_EC_P384 ? "SHA384" : "SHA256";
	/* SEQ { SEQ { id-ecPublicKey, curve }, BIT STRING 0, 04 X Y } */
	q = spki;
	end = spki + spkilen;
	if (der_next(&q, end, &d) != 0 || d.tag != DER_SEQ || q != end)
		return WICK_ERR_UNSUPPORTED;
	q = d.v;
	end = d.v + d.len;
	if (der_next(&q, end, &alg) != 0 || alg.tag != DER_SEQ ||
	    der_next(&q, end, &bits) != 0 || bits.tag != DER_BITS ||
	    q != end || bits.len < 2 || bits.v[0] != 0 || bits.v[1] != 0x04)
		return WICK_ERR_UNSUPPORTED;
	q = alg.v;
	if (der_next(&q, alg.v + alg.len, &oid) != 0 ||
	    !der_is(&oid, DER_OID, oid_ec_pub, sizeof(oid_ec_pub)))
		return WICK_ERR_UNSUPPORTED;
	if ((r = svid_check(ca_cert, p, &na)) != 0)
		return r;
	if (rnd == NULL) {
		if (RAND_bytes(own, sizeof(own)) != 1)
			return WICK_ERR_CRYPTO;
		rnd = own;
	}
	/* SKID as OpenSSL's "hash": SHA-1 of the key's bits. */
	if (SHA1(bits.v + 1, bits.len - 1, skid) == NULL)
		return WICK_ERR_CRYPTO;
	if ((ilen = i2d_X509_NAME(X509_get_subject_name(ca_cert), &issuer)) <=
	    0)
		return WICK_ERR_CRYPTO;
	ca_skid = X509_get0_subject_key_id(ca_cert);
	buf_init(&tbs, DER_MAX_LEN);
	buf_init(&x, DER_MAX_LEN);
	buf_init(&y, DER_MAX_LEN);
	buf_init(&cert, DER_MAX_LEN);
	/* version v3, serial, signature, issuer, validity */
	if ((r = buf_put(&tbs, "\xa0\x03\x02\x01\x02", 5)) != 0 ||
	    (r = der_serial(&tbs, rnd, serial)) != 0 ||
	    (r = buf_put(&tbs, sigalg, sigalglen)) != 0 ||
	    (r = buf_put(&tbs, issuer, (size_t)ilen)) != 0 ||
	    (r = der_time(&x, p->now - CA_BACKDATE)) != 0 ||
	    (r = der_time(&x, na)) != 0 ||
	    (r = der_wrap(&tbs, DER_SEQ, &x)) != 0)
		goto out;
	/* subject C=US, O=SPIRE, CN = the first DNS name */
	if ((r = der_rdn(&x, oid_c, sizeof(oid_c), DER_PRINTABLE, "US")) != 0 ||
	    (r = der_rdn(&x, oid_o, sizeof(oid_o), DER_UTF8, "SPIRE")) != 0 ||
	    (p->ndns_names > 0 && (r = der_rdn(&x, oid_cn, sizeof(oid_cn),
	    DER_UTF8, p->dns_names[0])) != 0) ||
	    (r = der_wrap(&tbs, DER_SEQ, &x)) != 0 ||
	    (r = buf_put(&tbs, spki, spkilen)) != 0)
		goto out;
	/* extensions, in ca_sign_x509_svid()'s order */
	if ((r = buf_put(&x, ext_fixed, sizeof(ext_fixed))) != 0 ||
	    (r = der_put(&y, DER_OCTETS, skid, sizeof(skid))) != 0 ||
	    (r = der_ext(&x, oid_skid, sizeof(oid_skid), buf_ptr(&y),
	    buf_len(&y))) != 0)
		goto out;
	buf_reset(&y);
	if (ca_skid != NULL) {
		struct buf kid;

		buf_init(&kid, DER_MAX_LEN);
		if ((r = der_put(&kid, 0x80, ASN1_STRING_get0_data(ca_skid),
		    (size_t)ASN1_STRING_length(ca_skid))) == 0 &&
		    (r = der_wrap(&y, DER_SEQ, &kid)) == 0)
			r = der_ext(&x, oid_akid, sizeof(oid_akid),
			    buf_ptr(&y), buf_len(&y));
		buf_cleanup(&kid);
		buf_reset(&y);
		if (r != 0)
			goto out;
	}
	{
		struct buf names;

		buf_init(&names, DER_MAX_LEN);
		r = der_put(&names, 0x86, p->spiffe_id, strlen(p->spiffe_id));
		for (i = 0; r == 0 && i < p->ndns_names; i++)
			r = der_put(&names, 0x82, p->dns_names[i],
			    strlen(p->dns_names[i]));
		if (r == 0 && (r = der_wrap(&y, DER_SEQ, &names)) == 0)
			r = der_ext(&x, oid_san, sizeof(oid_san), buf_ptr(&y),
			    buf_len(&y));
		buf_cleanup(&names);
		buf_reset(&y);
		if (r != 0)
			goto out;
	}
	if ((r = der_wrap(&y, DER_SEQ, &x)) != 0 ||
	    (r = der_wrap(&tbs, 0xa3, &y)) != 0 ||
	    (r = der_wrap(&x, DER_SEQ, &tbs)) != 0)
		goto out;
	/* x is the TBSCertificate now: sign it */
	r = WICK_ERR_CRYPTO;
	if ((mctx = EVP_MD_CTX_new()) == NULL ||
	    EVP_DigestSignInit_ex(mctx, NULL, md, NULL, NULL, ca_key,
	    NULL) <= 0 ||
	    EVP_DigestSign(mctx, NULL, &siglen, buf_ptr(&x), buf_len(&x)) <= 0 ||
	    (sig = OPENSSL_malloc(siglen + 1)) == NULL ||
	    EVP_DigestSign(mctx, sig + 1, &siglen, buf_ptr(&x),
	    buf_len(&x)) <= 0)
		goto out;
	sig[0] = 0;	/* no unused bits */
	if ((r = buf_put(&cert, buf_ptr(&x), buf_len(&x))) != 0 ||
	    (r = buf_put(&cert, sigalg, sigalglen)) != 0 ||
	    (r = der_put(&cert, DER_BITS, sig, siglen + 1)) != 0 ||
	    (r = der_wrap(&y, DER_SEQ, &cert)) != 0)
		goto out;
	r = WICK_ERR_ALLOC;
	if ((*der = OPENSSL_malloc(buf_len(&y))) == NULL)
		goto out;
	memcpy(*der, buf_ptr(&y), buf_len(&y));
	*derlen = buf_len(&y);
	*not_after = na;
	r = 0;
out:
	if (r != 0)
		*serial = '\0';
	EVP_MD_CTX_free(mctx);
	OPENSSL_free(sig);
	OPENSSL_free(issuer);
	buf_cleanup(&tbs);
	buf_cleanup(&x);
	buf_cleanup(&y);
	buf_cleanup(&cert);
	return r;
}

int
ca_serial_hex(X509 *c, char **out)
{
	BIGNUM	*bn;
	char	*hex, *p;

	if ((bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(c), NULL)) ==
	    NULL)
		return WICK_ERR_CRYPTO;
	hex = BN_bn2hex(bn);
	BN_free(bn);
	if (hex == NULL)
		return WICK_ERR_ALLOC;
	for (p = hex; *p == '0' && p[1] != '\0'; p++)
		;
	*out = strdup(p);
	OPENSSL_free(hex);
	if (*out == NULL)
		return WICK_ERR_ALLOC;
	for (p = *out; *p != '\0'; p++)
		if (*p >= 'A' && *p <= 'F')
			*p = (char)(*p - 'A' + 'a');
	return 0;
}

int
ca_skid_hex(X509 *c, char **out)
{
	const ASN1_OCTET_STRING *skid = X509_get0_subject_key_id(c);

	if (skid == NULL)
		return WICK_ERR_NOT_FOUND;
	if ((*out = malloc(2 * (size_t)ASN1_STRING_length(skid) + 1)) == NULL)
		return WICK_ERR_ALLOC;
	hex_encode(ASN1_STRING_get0_data(skid),
	    (size_t)ASN1_STRING_length(skid), *out);
	return 0;
}
