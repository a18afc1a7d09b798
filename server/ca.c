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
#include <openssl/x509v3.h>

#include "ca.h"
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

int
ca_sign_x509_svid(X509 *ca_cert, EVP_PKEY *ca_key, EVP_PKEY *pub,
    const struct ca_svid_params *p, X509 **out)
{
	struct spiffeid	 id;
	BIGNUM		*serial = NULL;
	X509		*c = NULL;
	int64_t		 ca_na = x509_not_after(ca_cert), na;
	size_t		 i;
	int		 r = WICK_ERR_CRYPTO;

	*out = NULL;
	if (p->spiffe_id == NULL || spiffeid_parse(p->spiffe_id, 0, &id,
	    NULL) != 0 || *id.path == '\0' || p->ttl <= 0 ||
	    p->ndns_names > CA_MAX_DNS_NAMES)
		return WICK_ERR_INVALID;
	for (i = 0; i < p->ndns_names; i++)
		if (p->dns_names[i] == NULL || !x509_dns_name_ok(p->dns_names[i]))
			return WICK_ERR_INVALID;
	if (x509_not_before(ca_cert) > p->now || ca_na <= p->now)
		return WICK_ERR_EXPIRED;
	na = p->ttl < ca_na - p->now ? p->now + p->ttl : ca_na;
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
