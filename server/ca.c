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

/* What an SVID may be made of, and its NotAfter, under a CA valid from
 * ca_nb to ca_na. */
static int
svid_check(int64_t ca_nb, int64_t ca_na, const struct ca_svid_params *p,
    int64_t *na)
{
	struct spiffeid	 id;
	size_t		 i;

	if (p->spiffe_id == NULL || spiffeid_parse(p->spiffe_id, 0, &id,
	    NULL) != 0 || *id.path == '\0' || p->ttl <= 0 ||
	    p->ndns_names > CA_MAX_DNS_NAMES)
		return WICK_ERR_INVALID;
	for (i = 0; i < p->ndns_names; i++)
		if (p->dns_names[i] == NULL || !x509_dns_name_ok(p->dns_names[i]))
			return WICK_ERR_INVALID;
	if (ca_nb > p->now || ca_na <= p->now)
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
	if ((r = svid_check(x509_not_before(ca_cert), x509_not_after(ca_cert),
	    p, &na)) != 0)
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

/* Two decimal digits of v (0-99) at p. */
static void
put2(char *p, int v)
{
	p[0] = (char)('0' + v / 10);
	p[1] = (char)('0' + v % 10);
}

/*
 * UTCTime through 2049, GeneralizedTime after, as ASN1_TIME_set(); years
 * 1 to 9999.  The civil date is computed here, not by gmtime_r(), which
 * takes glibc's time zone lock: the signing threads met there for every
 * SVID.  Days count from 0000-03-01 in 400-year eras, so that the leap
 * day ends each year.
 */
static int
der_time(struct buf *b, int64_t t)
{
	int64_t		 days, secs, era, doe, yoe, doy, mp, y, m, d;
	char		 s[16], *p = s;

	if (t < -62135596800LL || t > 253402300799LL)	/* 0001 .. 9999 */
		return WICK_ERR_INVALID;
	days = t / 86400;
	secs = t % 86400;
	if (secs < 0) {
		secs += 86400;
		days--;
	}
	days += 719468;			/* 1970-01-01 to 0000-03-01 */
	era = (days >= 0 ? days : days - 146096) / 146097;
	doe = days - era * 146097;
	yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	mp = (5 * doy + 2) / 153;
	d = doy - (153 * mp + 2) / 5 + 1;
	m = mp < 10 ? mp + 3 : mp - 9;
	y = yoe + era * 400 + (m <= 2);
	if (y < 1950 || y >= 2050) {
		put2(p, (int)(y / 100));
		p += 2;
	}
	put2(p, (int)(y % 100));
	put2(p + 2, (int)m);
	put2(p + 4, (int)d);
	put2(p + 6, (int)(secs / 3600));
	put2(p + 8, (int)(secs / 60 % 60));
	put2(p + 10, (int)(secs % 60));
	p[12] = 'Z';
	return der_put(b, y >= 1950 && y < 2050 ? DER_UTCTIME : DER_GENTIME,
	    s, (size_t)(p + 13 - s));
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

/*
 * What every SVID of a CA shares: its name as the issuer, its key
 * identifier as the AKID extension, the signature algorithm, the digests
 * and a signing context set up once (on OpenSSL 3.0, setting one up finds
 * the signature method and the digest by name: a tenth of a signature).
 * Read-only once made: ca_svid_signer_der() dups the context.
 */
struct ca_svid_signer {
	int64_t		 ca_nb, ca_na;
	uint8_t		*issuer;
	size_t		 issuerlen;
	struct buf	 akid;		/* the whole extension; empty: none */
	const uint8_t	*sigalg;
	EVP_MD		*md, *sha1;
	EVP_PKEY_CTX	*sign;
};

/* An ECDSA signature, DER, the most P-384 takes. */
#define CA_MAX_SIG	(3 + 2 * (2 + 1 + 48))

int
ca_svid_signer_new(X509 *ca_cert, EVP_PKEY *ca_key,
    struct ca_svid_signer **out)
{
	const ASN1_OCTET_STRING	*ca_skid;
	struct ca_svid_signer	*s;
	struct buf		 kid, y;
	enum pkey_type		 t;
	int			 r, ilen;

	*out = NULL;
	if (pkey_type_of(ca_key, &t) != 0 || (t != PKEY_EC_P256 &&
	    t != PKEY_EC_P384) || EVP_PKEY_get_size(ca_key) > CA_MAX_SIG)
		return WICK_ERR_UNSUPPORTED;
	if ((s = calloc(1, sizeof(*s))) == NULL)
		return WICK_ERR_ALLOC;
	buf_init(&s->akid, DER_MAX_LEN);
	s->ca_nb = x509_not_before(ca_cert);
	s->ca_na = x509_not_after(ca_cert);
	s->sigalg = t == PKEY_EC_P384 ? alg_ecdsa_sha384 : alg_ecdsa_sha256;
	r = WICK_ERR_CRYPTO;
	if ((ilen = i2d_X509_NAME(X509_get_subject_name(ca_cert),
	    &s->issuer)) <= 0)
		goto out;
	s->issuerlen = (size_t)ilen;
	if ((s->md = EVP_MD_fetch(NULL, t == PKEY_EC_P384 ? "SHA384" :
	    "SHA256", NULL)) == NULL ||
	    (s->sha1 = EVP_MD_fetch(NULL, "SHA1", NULL)) == NULL ||
	    (s->sign = EVP_PKEY_CTX_new_from_pkey(NULL, ca_key, NULL)) ==
	    NULL || EVP_PKEY_sign_init(s->sign) <= 0 ||
	    EVP_PKEY_CTX_set_signature_md(s->sign, s->md) <= 0)
		goto out;
	/* AKID = the CA's SKID, when it has one */
	if ((ca_skid = X509_get0_subject_key_id(ca_cert)) != NULL) {
		buf_init(&kid, DER_MAX_LEN);
		buf_init(&y, DER_MAX_LEN);
		if ((r = der_put(&kid, 0x80, ASN1_STRING_get0_data(ca_skid),
		    (size_t)ASN1_STRING_length(ca_skid))) == 0 &&
		    (r = der_wrap(&y, DER_SEQ, &kid)) == 0)
			r = der_ext(&s->akid, oid_akid, sizeof(oid_akid),
			    buf_ptr(&y), buf_len(&y));
		buf_cleanup(&kid);
		buf_cleanup(&y);
		if (r != 0)
			goto out;
	}
	*out = s;
	s = NULL;
	r = 0;
out:
	if (r != 0)
		ERR_clear_error();
	ca_svid_signer_free(s);
	return r;
}

void
ca_svid_signer_free(struct ca_svid_signer *s)
{
	if (s == NULL)
		return;
	OPENSSL_free(s->issuer);
	buf_cleanup(&s->akid);
	EVP_MD_free(s->md);
	EVP_MD_free(s->sha1);
	EVP_PKEY_CTX_free(s->sign);
	free(s);
}

int
ca_svid_signer_der(const struct ca_svid_signer *s, const uint8_t *spki,
    size_t spkilen, const struct ca_svid_params *p,
    const uint8_t rnd[CA_SERIAL_RAND], uint8_t **der, size_t *derlen,
    char serial[CA_SERIAL_HEX], int64_t *not_after)
{
	struct der		 d, alg, oid, bits;
	struct buf		 tbs, x, y, cert;
	const uint8_t		*q, *end;
	uint8_t			 own[CA_SERIAL_RAND], skid[SHA_DIGEST_LENGTH];
	uint8_t			 dig[EVP_MAX_MD_SIZE], sig[1 + CA_MAX_SIG];
	EVP_PKEY_CTX		*sctx = NULL;
	unsigned int		 diglen;
	size_t			 i, siglen;
	int64_t			 na;
	int			 r;

	*der = NULL;
	*derlen = 0;
	*serial = '\0';
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
	if ((r = svid_check(s->ca_nb, s->ca_na, p, &na)) != 0)
		return r;
	if (rnd == NULL) {
		if (RAND_bytes(own, sizeof(own)) != 1)
			return WICK_ERR_CRYPTO;
		rnd = own;
	}
	/* SKID as OpenSSL's "hash": SHA-1 of the key's bits. */
	if (EVP_Digest(bits.v + 1, bits.len - 1, skid, NULL, s->sha1,
	    NULL) != 1)
		return WICK_ERR_CRYPTO;
	buf_init(&tbs, DER_MAX_LEN);
	buf_init(&x, DER_MAX_LEN);
	buf_init(&y, DER_MAX_LEN);
	buf_init(&cert, DER_MAX_LEN);
	/* version v3, serial, signature, issuer, validity */
	if ((r = buf_put(&tbs, "\xa0\x03\x02\x01\x02", 5)) != 0 ||
	    (r = der_serial(&tbs, rnd, serial)) != 0 ||
	    (r = buf_put(&tbs, s->sigalg, sizeof(alg_ecdsa_sha256))) != 0 ||
	    (r = buf_put(&tbs, s->issuer, s->issuerlen)) != 0 ||
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
	    buf_len(&y))) != 0 ||
	    (r = buf_put(&x, buf_ptr(&s->akid), buf_len(&s->akid))) != 0)
		goto out;
	buf_reset(&y);
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
	/* x is the TBSCertificate now: sign its digest, on a copy of the
	 * set-up context (this one is shared by the signing threads). */
	r = WICK_ERR_CRYPTO;
	siglen = CA_MAX_SIG;
	if (EVP_Digest(buf_ptr(&x), buf_len(&x), dig, &diglen, s->md,
	    NULL) != 1 || (sctx = EVP_PKEY_CTX_dup(s->sign)) == NULL ||
	    EVP_PKEY_sign(sctx, sig + 1, &siglen, dig, diglen) != 1)
		goto out;
	sig[0] = 0;	/* no unused bits */
	if ((r = buf_put(&cert, buf_ptr(&x), buf_len(&x))) != 0 ||
	    (r = buf_put(&cert, s->sigalg, sizeof(alg_ecdsa_sha256))) != 0 ||
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
	EVP_PKEY_CTX_free(sctx);
	buf_cleanup(&tbs);
	buf_cleanup(&x);
	buf_cleanup(&y);
	buf_cleanup(&cert);
	return r;
}

int
ca_svid_der(X509 *ca_cert, EVP_PKEY *ca_key, const uint8_t *spki,
    size_t spkilen, const struct ca_svid_params *p,
    const uint8_t rnd[CA_SERIAL_RAND], uint8_t **der, size_t *derlen,
    char serial[CA_SERIAL_HEX], int64_t *not_after)
{
	struct ca_svid_signer	*s;
	int			 r;

	*der = NULL;
	*derlen = 0;
	*serial = '\0';
	if ((r = ca_svid_signer_new(ca_cert, ca_key, &s)) != 0)
		return r;
	r = ca_svid_signer_der(s, spki, spkilen, p, rnd, der, derlen, serial,
	    not_after);
	ca_svid_signer_free(s);
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
