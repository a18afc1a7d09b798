/*
 * test_ca.c: CA and X.509-SVID certificates in SPIRE's profile, checked
 * field by field and verified with X509_verify_cert.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <pthread.h>

#include <openssl/bn.h>
#include <openssl/x509v3.h>

#include "ca.h"
#include "x509.h"
#include "pkey.h"

#define T0	1800000000LL	/* an arbitrary "now" */
#define DAY	86400

static struct {
	EVP_PKEY	*cak;		/* P-256 CA key */
	EVP_PKEY	*k;		/* P-256 SVID key */
	X509		*ca;		/* root, T0 - 10 .. T0 + DAY */
} t;

static int
setup(void **state)
{
	if (pkey_generate(PKEY_EC_P256, &t.cak) != 0 ||
	    pkey_generate(PKEY_EC_P256, &t.k) != 0 ||
	    ca_make_root(t.cak, "example.org", NULL, T0, DAY, &t.ca) != 0)
		return -1;
	return 0;
}

static int
teardown(void **state)
{
	X509_free(t.ca);
	EVP_PKEY_free(t.cak);
	EVP_PKEY_free(t.k);
	return 0;
}

/* X509_verify_cert of leaf against root (+ one intermediate) at time at. */
static int
verify(X509 *root, X509 *inter, X509 *leaf, int64_t at)
{
	X509_STORE	*st;
	X509_STORE_CTX	*ctx;
	STACK_OF(X509)	*chain;
	int		 ok;

	assert_non_null(st = X509_STORE_new());
	assert_non_null(ctx = X509_STORE_CTX_new());
	assert_non_null(chain = sk_X509_new_null());
	assert_int_equal(X509_STORE_add_cert(st, root), 1);
	if (inter != NULL)
		assert_true(sk_X509_push(chain, inter) > 0);
	assert_int_equal(X509_STORE_CTX_init(ctx, st, leaf, chain), 1);
	X509_STORE_CTX_set_time(ctx, 0, (time_t)at);
	ok = X509_verify_cert(ctx) == 1;
	X509_STORE_CTX_free(ctx);
	X509_STORE_free(st);
	sk_X509_free(chain);
	return ok;
}

/* The subject as "C=US, O=SPIRE, CN=..." (RFC 2253 order reversed). */
static void
subject_is(X509 *c, const char *want)
{
	BIO	*bio = BIO_new(BIO_s_mem());
	char	*p;
	long	 n;

	assert_non_null(bio);
	assert_true(X509_NAME_print_ex(bio, X509_get_subject_name(c), 0,
	    XN_FLAG_ONELINE & ~ASN1_STRFLGS_ESC_MSB) >= 0);
	n = BIO_get_mem_data(bio, &p);
	assert_int_equal(n, (long)strlen(want));
	assert_memory_equal(p, want, (size_t)n);
	BIO_free(bio);
}

/* 1 <= serial <= 2^128. */
static void
serial_in_range(X509 *c)
{
	BIGNUM	*bn, *max;

	assert_non_null(bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(c),
	    NULL));
	assert_non_null(max = BN_new());
	assert_int_equal(BN_set_bit(max, 128), 1);
	assert_false(BN_is_negative(bn));
	assert_false(BN_is_zero(bn));
	assert_true(BN_cmp(bn, max) <= 0);
	BN_free(bn);
	BN_free(max);
}

/* The SANs: n_uri URIs (the first is uri), DNS names dns[0..ndns). */
static void
sans_are(X509 *c, const char *uri, const char *const *dns, int ndns)
{
	GENERAL_NAMES	*san;
	GENERAL_NAME	*g;
	int		 crit, i, nuri = 0, nd = 0;

	assert_non_null(san = X509_get_ext_d2i(c, NID_subject_alt_name, &crit,
	    NULL));
	for (i = 0; i < sk_GENERAL_NAME_num(san); i++) {
		g = sk_GENERAL_NAME_value(san, i);
		if (g->type == GEN_URI) {
			assert_string_equal((const char *)ASN1_STRING_get0_data(
			    g->d.uniformResourceIdentifier), uri);
			nuri++;
		} else if (g->type == GEN_DNS) {
			assert_true(nd < ndns);
			assert_string_equal((const char *)ASN1_STRING_get0_data(
			    g->d.dNSName), dns[nd]);
			nd++;
		} else
			fail_msg("unexpected SAN type %d", g->type);
	}
	assert_int_equal(nuri, 1);
	assert_int_equal(nd, ndns);
	GENERAL_NAMES_free(san);
}

static void
key_ids_chain(X509 *c, X509 *issuer)
{
	const ASN1_OCTET_STRING	*skid = X509_get0_subject_key_id(c);
	const ASN1_OCTET_STRING	*akid = X509_get0_authority_key_id(c);

	assert_non_null(skid);
	assert_non_null(akid);
	assert_int_equal(ASN1_OCTET_STRING_cmp(akid,
	    X509_get0_subject_key_id(issuer)), 0);
}

static void
test_root_profile(void **state)
{
	static const char *const c[] = { "DE", "FR" }, *const o[] = { "Acme" };
	struct ca_subject	 subj = { c, 2, o, 1, "Acme CA" };
	BASIC_CONSTRAINTS	*bc;
	BIGNUM			*bn;
	X509			*ca;
	EVP_PKEY		*k;
	char			*dec, want[256], *hex;
	int			 crit;

	/* Issuer = subject, self-signed, verifies as its own trust anchor. */
	assert_int_equal(X509_NAME_cmp(X509_get_subject_name(t.ca),
	    X509_get_issuer_name(t.ca)), 0);
	assert_int_equal(X509_verify(t.ca, t.cak), 1);
	assert_true(verify(t.ca, NULL, t.ca, T0));
	assert_int_equal(X509_get_version(t.ca), X509_VERSION_3);
	serial_in_range(t.ca);
	/* Subject C=US, O=SPIFFE, serialNumber = the serial in decimal. */
	assert_non_null(bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(t.ca),
	    NULL));
	assert_non_null(dec = BN_bn2dec(bn));
	snprintf(want, sizeof(want), "C = US, O = SPIFFE, serialNumber = %s",
	    dec);
	subject_is(t.ca, want);
	OPENSSL_free(dec);
	BN_free(bn);
	/* URI SAN spiffe://example.org and nothing else. */
	sans_are(t.ca, "spiffe://example.org", NULL, 0);
	/* CA:TRUE critical without a path length. */
	assert_non_null(bc = X509_get_ext_d2i(t.ca, NID_basic_constraints,
	    &crit, NULL));
	assert_true(bc->ca);
	assert_true(crit);
	assert_null(bc->pathlen);
	BASIC_CONSTRAINTS_free(bc);
	/* keyCertSign + cRLSign, critical, nothing more; no EKU. */
	assert_int_equal(X509_get_key_usage(t.ca), KU_KEY_CERT_SIGN |
	    KU_CRL_SIGN);
	assert_int_equal(X509_get_ext_by_NID(t.ca, NID_key_usage, -1) >= 0, 1);
	assert_int_equal(X509_EXTENSION_get_critical(X509_get_ext(t.ca,
	    X509_get_ext_by_NID(t.ca, NID_key_usage, -1))), 1);
	assert_int_equal(X509_get_ext_by_NID(t.ca, NID_ext_key_usage, -1), -1);
	key_ids_chain(t.ca, t.ca);
	/* NotBefore = now - 10, NotAfter = now + ttl. */
	assert_int_equal(x509_not_before(t.ca), T0 - CA_BACKDATE);
	assert_int_equal(x509_not_after(t.ca), T0 + DAY);
	assert_int_equal(X509_get_signature_nid(t.ca), NID_ecdsa_with_SHA256);
	/* The hex helpers. */
	assert_int_equal(ca_skid_hex(t.ca, &hex), 0);
	assert_int_equal(strlen(hex), 40);
	assert_int_equal(strspn(hex, "0123456789abcdef"), 40);
	free(hex);
	assert_int_equal(ca_serial_hex(t.ca, &hex), 0);
	assert_true(strlen(hex) >= 1 && strlen(hex) <= 33 && hex[0] != '0');
	assert_int_equal(strspn(hex, "0123456789abcdef"), strlen(hex));
	free(hex);
	/* A configured subject is used as given; P-384 signs with SHA-384. */
	assert_int_equal(pkey_generate(PKEY_EC_P384, &k), 0);
	assert_int_equal(ca_make_root(k, "spiffe://example.org", &subj, T0,
	    3600, &ca), 0);
	assert_non_null(bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(ca),
	    NULL));
	assert_non_null(dec = BN_bn2dec(bn));
	snprintf(want, sizeof(want), "C = DE, C = FR, O = Acme, CN = Acme CA, "
	    "serialNumber = %s", dec);
	subject_is(ca, want);
	OPENSSL_free(dec);
	BN_free(bn);
	assert_int_equal(X509_get_signature_nid(ca), NID_ecdsa_with_SHA384);
	X509_free(ca);
	EVP_PKEY_free(k);
	/* Bad trust domain or TTL. */
	assert_int_equal(ca_make_root(t.cak, "Example.org/x", NULL, T0, DAY,
	    &ca), WICK_ERR_INVALID);
	assert_null(ca);
	assert_int_equal(ca_make_root(t.cak, "example.org", NULL, T0, 0, &ca),
	    WICK_ERR_INVALID);
}

static void
test_svid_profile(void **state)
{
	static const char *const dns[] = { "web.example.org",
	    "*.example.org" };
	struct ca_svid_params	 p;
	BASIC_CONSTRAINTS	*bc;
	ASN1_BIT_STRING		*ku;
	EXTENDED_KEY_USAGE	*eku;
	X509			*leaf;
	int			 crit, i;

	memset(&p, 0, sizeof(p));
	p.spiffe_id = "spiffe://example.org/web";
	p.dns_names = dns;
	p.ndns_names = 2;
	p.now = T0 + 100;
	p.ttl = 3600;
	assert_int_equal(ca_sign_x509_svid(t.ca, t.cak, t.k, &p, &leaf), 0);
	assert_true(verify(t.ca, NULL, leaf, T0 + 200));
	assert_true(pkey_public_equal(X509_get0_pubkey(leaf), t.k));
	assert_int_equal(X509_get_version(leaf), X509_VERSION_3);
	assert_int_equal(X509_NAME_cmp(X509_get_issuer_name(leaf),
	    X509_get_subject_name(t.ca)), 0);
	serial_in_range(leaf);
	subject_is(leaf, "C = US, O = SPIRE, CN = web.example.org");
	/* One URI SAN, the DNS SANs in order. */
	sans_are(leaf, "spiffe://example.org/web", dns, 2);
	/* CA:FALSE, critical. */
	assert_non_null(bc = X509_get_ext_d2i(leaf, NID_basic_constraints,
	    &crit, NULL));
	assert_false(bc->ca);
	assert_true(crit);
	BASIC_CONSTRAINTS_free(bc);
	/* digitalSignature + keyEncipherment + keyAgreement, critical. */
	assert_non_null(ku = X509_get_ext_d2i(leaf, NID_key_usage, &crit,
	    NULL));
	assert_true(crit);
	ASN1_BIT_STRING_free(ku);
	assert_int_equal(X509_get_key_usage(leaf), KU_DIGITAL_SIGNATURE |
	    KU_KEY_ENCIPHERMENT | KU_KEY_AGREEMENT);
	/* EKU serverAuth + clientAuth, not critical. */
	assert_non_null(eku = X509_get_ext_d2i(leaf, NID_ext_key_usage, &crit,
	    NULL));
	assert_false(crit);
	assert_int_equal(sk_ASN1_OBJECT_num(eku), 2);
	for (i = 0; i < 2; i++)
		assert_int_equal(OBJ_obj2nid(sk_ASN1_OBJECT_value(eku, i)),
		    i == 0 ? NID_server_auth : NID_client_auth);
	sk_ASN1_OBJECT_pop_free(eku, ASN1_OBJECT_free);
	key_ids_chain(leaf, t.ca);
	/* NotBefore = now - 10, NotAfter = now + ttl. */
	assert_int_equal(x509_not_before(leaf), T0 + 100 - CA_BACKDATE);
	assert_int_equal(x509_not_after(leaf), T0 + 100 + 3600);
	assert_false(verify(t.ca, NULL, leaf, T0 + 100 + 3601));
	X509_free(leaf);
	/* No DNS names: no CN. */
	p.ndns_names = 0;
	assert_int_equal(ca_sign_x509_svid(t.ca, t.cak, t.k, &p, &leaf), 0);
	subject_is(leaf, "C = US, O = SPIRE");
	sans_are(leaf, "spiffe://example.org/web", NULL, 0);
	X509_free(leaf);
	/* NotAfter capped at the CA's. */
	p.ttl = 10 * DAY;
	assert_int_equal(ca_sign_x509_svid(t.ca, t.cak, t.k, &p, &leaf), 0);
	assert_int_equal(x509_not_after(leaf), x509_not_after(t.ca));
	assert_true(verify(t.ca, NULL, leaf, T0 + DAY - 1));
	X509_free(leaf);
}

/* The TBSCertificate of c, DER. */
static size_t
tbs_of(X509 *c, uint8_t **out)
{
	int n;

	*out = NULL;
	assert_true((n = i2d_re_X509_tbs(c, out)) > 0);
	return (size_t)n;
}

/*
 * ca_svid_der() writes the certificate ca_sign_x509_svid() makes, byte
 * for byte up to the (randomized) ECDSA signature, for P-256 and P-384
 * keys and CAs, with and without DNS names, long ones, a TTL past the
 * CA's and times on both sides of 2050; and its signature verifies.  So
 * does one signer of the CA, made once and used for every SVID.
 */
static void
test_svid_der_same(void **state)
{
	static const char *const dns[] = { "web.example.org",
	    "*.example.org", "a-name-longer-than.the-64-characters.a-common-"
	    "name-may-hold.example.org" };
	static const enum pkey_type kt[] = { PKEY_EC_P256, PKEY_EC_P384 };
	static const int64_t nows[] = { T0 + 100, 2524607990LL };
	struct ca_svid_params	 p;
	struct ca_svid_signer	*sg;
	EVP_PKEY		*cak, *k;
	X509			*ca, *old, *neu;
	BIGNUM			*bn;
	uint8_t			 rnd[CA_SERIAL_RAND], *spki = NULL, *der;
	uint8_t			*a, *b;
	const uint8_t		*q;
	char			 serial[CA_SERIAL_HEX], *hex;
	size_t			 derlen, na, nb, ci, ki, ni, d;
	int64_t			 not_after;
	int			 spkilen, ttl, way;

	for (ci = 0; ci < 2; ci++)
	for (ni = 0; ni < 2; ni++) {
		assert_int_equal(pkey_generate(kt[ci], &cak), 0);
		assert_int_equal(ca_make_root(cak, "example.org", NULL,
		    nows[ni] - 100, DAY, &ca), 0);
		assert_int_equal(ca_svid_signer_new(ca, cak, &sg), 0);
		for (way = 0; way < 2; way++)
		for (ki = 0; ki < 2; ki++)
		for (d = 0; d <= 3; d++)
		for (ttl = 3600; ttl <= 2 * DAY; ttl += 2 * DAY - 3600) {
			assert_int_equal(pkey_generate(kt[ki], &k), 0);
			assert_true((spkilen = i2d_PUBKEY(k, &spki)) > 0);
			memset(&p, 0, sizeof(p));
			p.spiffe_id = "spiffe://example.org/web/x";
			p.dns_names = dns;
			p.ndns_names = d;
			p.now = nows[ni];
			p.ttl = ttl;
			p.encode_only = 1;
			assert_int_equal(ca_sign_x509_svid(ca, cak, k, &p,
			    &old), 0);
			/* The same serial: the old one's, less the one
			 * added to the random bytes. */
			assert_non_null(bn = ASN1_INTEGER_to_BN(
			    X509_get0_serialNumber(old), NULL));
			assert_true(BN_sub_word(bn, 1));
			assert_int_equal(BN_bn2binpad(bn, rnd, sizeof(rnd)),
			    (int)sizeof(rnd));
			BN_free(bn);
			if (way == 0)
				assert_int_equal(ca_svid_der(ca, cak, spki,
				    (size_t)spkilen, &p, rnd, &der, &derlen,
				    serial, &not_after), 0);
			else
				assert_int_equal(ca_svid_signer_der(sg, spki,
				    (size_t)spkilen, &p, rnd, &der, &derlen,
				    serial, &not_after), 0);
			q = der;
			assert_non_null(neu = d2i_X509(NULL, &q,
			    (long)derlen));
			assert_ptr_equal(q, der + derlen);
			na = tbs_of(old, &a);
			nb = tbs_of(neu, &b);
			assert_int_equal(na, nb);
			assert_memory_equal(a, b, na);
			assert_int_equal(X509_verify(neu, cak), 1);
			assert_int_equal(not_after, x509_not_after(old));
			assert_int_equal(ca_serial_hex(old, &hex), 0);
			assert_string_equal(serial, hex);
			free(hex);
			OPENSSL_free(a);
			OPENSSL_free(b);
			OPENSSL_free(der);
			OPENSSL_free(spki);
			spki = NULL;
			X509_free(old);
			X509_free(neu);
			EVP_PKEY_free(k);
		}
		ca_svid_signer_free(sg);
		X509_free(ca);
		EVP_PKEY_free(cak);
	}
}

/* What each thread of test_svid_signer_threads() signs. */
struct signer_job {
	const struct ca_svid_signer	*sg;
	const uint8_t			*spki;
	size_t				 spkilen;
	int				 bad;
};

#define SIGNER_EACH	40

static void *
signer_thread(void *arg)
{
	struct signer_job	*j = arg;
	struct ca_svid_params	 p;
	uint8_t			*der;
	const uint8_t		*q;
	char			 serial[CA_SERIAL_HEX];
	size_t			 derlen;
	int64_t			 na;
	X509			*c;
	int			 i;

	memset(&p, 0, sizeof(p));
	p.spiffe_id = "spiffe://example.org/web";
	p.now = T0 + 100;
	p.ttl = 3600;
	for (i = 0; i < SIGNER_EACH; i++) {
		if (ca_svid_signer_der(j->sg, j->spki, j->spkilen, &p, NULL,
		    &der, &derlen, serial, &na) != 0) {
			j->bad++;
			continue;
		}
		q = der;
		if ((c = d2i_X509(NULL, &q, (long)derlen)) == NULL ||
		    X509_verify(c, t.cak) != 1)
			j->bad++;
		X509_free(c);
		OPENSSL_free(der);
	}
	return NULL;
}

/*
 * One signer, shared by threads signing at once (the batch's signing
 * threads): every certificate verifies.  A CA key that is not EC has no
 * signer.
 */
static void
test_svid_signer_threads(void **state)
{
	struct ca_svid_signer	*sg;
	struct signer_job	 j[3];
	pthread_t		 th[3];
	EVP_PKEY		*rk;
	X509			*rca;
	uint8_t			*spki = NULL;
	int			 spkilen, i;

	assert_true((spkilen = i2d_PUBKEY(t.k, &spki)) > 0);
	assert_int_equal(ca_svid_signer_new(t.ca, t.cak, &sg), 0);
	for (i = 0; i < 3; i++) {
		j[i].sg = sg;
		j[i].spki = spki;
		j[i].spkilen = (size_t)spkilen;
		j[i].bad = 0;
		assert_int_equal(pthread_create(&th[i], NULL, signer_thread,
		    &j[i]), 0);
	}
	for (i = 0; i < 3; i++) {
		assert_int_equal(pthread_join(th[i], NULL), 0);
		assert_int_equal(j[i].bad, 0);
	}
	ca_svid_signer_free(sg);
	OPENSSL_free(spki);
	assert_int_equal(pkey_generate(PKEY_RSA_2048, &rk), 0);
	assert_int_equal(ca_make_root(rk, "example.org", NULL, T0, DAY, &rca),
	    0);
	assert_int_equal(ca_svid_signer_new(rca, rk, &sg),
	    WICK_ERR_UNSUPPORTED);
	assert_null(sg);
	X509_free(rca);
	EVP_PKEY_free(rk);
}

/*
 * The validity as ASN1_TIME_set() writes it, over a century of times
 * (UTCTime through 2049, GeneralizedTime after), leap days and the ends
 * of days and years among them.
 */
static void
test_svid_der_times(void **state)
{
	static const int64_t	 edges[] = { 951782400, 951868799, 951868800,
	    1703980800 + 86399, 2524607999, 2524608009, 2524608010,
	    3981311999, 3981312000 + 86399 };
	struct ca_svid_signer	*sg;
	struct ca_svid_params	 p;
	EVP_PKEY		*cak;
	X509			*ca, *c;
	ASN1_TIME		*want;
	uint8_t			*spki = NULL, *der, *a, *b;
	const uint8_t		*q;
	char			 serial[CA_SERIAL_HEX];
	uint64_t		 x = 0x2545f4914f6cdd1dULL;
	size_t			 derlen, i;
	size_t			 n = sizeof(edges) / sizeof(edges[0]);
	int64_t			 na, t0 = 946684800;	/* 2000-01-01 */
	int			 spkilen, la, lb;

	assert_int_equal(pkey_generate(PKEY_EC_P256, &cak), 0);
	assert_int_equal(ca_make_root(cak, "example.org", NULL, t0,
	    100LL * 365 * DAY, &ca), 0);
	assert_int_equal(ca_svid_signer_new(ca, cak, &sg), 0);
	assert_true((spkilen = i2d_PUBKEY(t.k, &spki)) > 0);
	memset(&p, 0, sizeof(p));
	p.spiffe_id = "spiffe://example.org/w";
	p.ttl = 1;
	for (i = 0; i < n + 300; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		/* notBefore is now less 10 s: the edges are notBefore's */
		p.now = (i < n ? edges[i] : t0 + (int64_t)(x % (99ULL * 365 *
		    DAY))) + CA_BACKDATE;
		assert_int_equal(ca_svid_signer_der(sg, spki, (size_t)spkilen,
		    &p, NULL, &der, &derlen, serial, &na), 0);
		q = der;
		assert_non_null(c = d2i_X509(NULL, &q, (long)derlen));
		assert_non_null(want = ASN1_TIME_set(NULL,
		    (time_t)(p.now - CA_BACKDATE)));
		a = b = NULL;
		assert_true((la = i2d_ASN1_TIME(want, &a)) > 0);
		assert_true((lb = i2d_ASN1_TIME(X509_get0_notBefore(c),
		    &b)) > 0);
		assert_int_equal(la, lb);
		assert_memory_equal(a, b, (size_t)la);
		OPENSSL_free(a);
		OPENSSL_free(b);
		ASN1_TIME_free(want);
		X509_free(c);
		OPENSSL_free(der);
	}
	OPENSSL_free(spki);
	ca_svid_signer_free(sg);
	X509_free(ca);
	EVP_PKEY_free(cak);
}

/* Serials at the edges: a carry through every byte, a high first byte. */
static void
test_svid_der_serials(void **state)
{
	struct ca_svid_params	 p;
	uint8_t			 rnd[CA_SERIAL_RAND], *spki = NULL, *der;
	const uint8_t		*q;
	char			 serial[CA_SERIAL_HEX], *hex;
	size_t			 derlen;
	int64_t			 na;
	X509			*c;
	int			 spkilen, i;

	assert_true((spkilen = i2d_PUBKEY(t.k, &spki)) > 0);
	memset(&p, 0, sizeof(p));
	p.spiffe_id = "spiffe://example.org/web";
	p.now = T0 + 100;
	p.ttl = 3600;
	for (i = 0; i < 3; i++) {
		memset(rnd, i == 0 ? 0xff : i == 1 ? 0x80 : 0, sizeof(rnd));
		assert_int_equal(ca_svid_der(t.ca, t.cak, spki,
		    (size_t)spkilen, &p, rnd, &der, &derlen, serial, &na), 0);
		q = der;
		assert_non_null(c = d2i_X509(NULL, &q, (long)derlen));
		assert_int_equal(ca_serial_hex(c, &hex), 0);
		assert_string_equal(serial, hex);
		assert_string_equal(serial, i == 0 ?
		    "100000000000000000000000000000000" : i == 1 ?
		    "80808080808080808080808080808081" : "1");
		assert_true(verify(t.ca, NULL, c, T0 + 200));
		free(hex);
		X509_free(c);
		OPENSSL_free(der);
	}
	/* Not EC, or a compressed point: the other path. */
	spki[spkilen - 65] = 0x02;
	assert_int_equal(ca_svid_der(t.ca, t.cak, spki, (size_t)spkilen, &p,
	    rnd, &der, &derlen, serial, &na), WICK_ERR_UNSUPPORTED);
	OPENSSL_free(spki);
}

static void
test_svid_long_cn(void **state)
{
	char			 name[256];
	const char		*dns[1] = { name };
	struct ca_svid_params	 p;
	X509			*leaf;
	char			 cn[256];

	/* Four labels of 62: 251 characters, longer than X.520's 64. */
	memset(name, 'a', 251);
	name[62] = name[125] = name[188] = '.';
	name[251] = '\0';
	memset(&p, 0, sizeof(p));
	p.spiffe_id = "spiffe://example.org/long";
	p.dns_names = dns;
	p.ndns_names = 1;
	p.now = T0;
	p.ttl = 60;
	assert_int_equal(ca_sign_x509_svid(t.ca, t.cak, t.k, &p, &leaf), 0);
	assert_int_equal(X509_NAME_get_text_by_NID(X509_get_subject_name(leaf),
	    NID_commonName, cn, sizeof(cn)), 251);
	assert_string_equal(cn, name);
	X509_free(leaf);
}

static void
test_svid_refused(void **state)
{
	static const char *const bad_ids[] = {
		"spiffe://example.org",			/* no path */
		"spiffe://example.org/",
		"http://example.org/a",
		"spiffe://example.org/a/../b",
		"spiffe://Example.org/a",
		"",
	};
	static const char *const good_dns[] = {
		"localhost", "*.example.org", "a-b.example.org", "xn--d1a.org",
		"1.2.3.4",
	};
	static const char *const bad_dns[] = {
		"", "bad..name", "-a.org", "a-.org", "*", "*.", "a.*.org",
		"**.org", "a_b.org", "trailing.", ".leading", "sp ace.org",
		"a.org\n", "*.-x.org",
	};
	char			 label[80], total[300];
	const char		*one[1];
	struct ca_svid_params	 p;
	X509			*leaf;
	size_t			 i;

	memset(&p, 0, sizeof(p));
	p.now = T0 + 100;
	p.ttl = 60;
	for (i = 0; i < sizeof(bad_ids) / sizeof(bad_ids[0]); i++) {
		p.spiffe_id = bad_ids[i];
		assert_int_equal(ca_sign_x509_svid(t.ca, t.cak, t.k, &p,
		    &leaf), WICK_ERR_INVALID);
		assert_null(leaf);
	}
	p.spiffe_id = NULL;
	assert_int_equal(ca_sign_x509_svid(t.ca, t.cak, t.k, &p, &leaf),
	    WICK_ERR_INVALID);
	p.spiffe_id = "spiffe://example.org/ok";
	p.dns_names = one;
	p.ndns_names = 1;
	for (i = 0; i < sizeof(good_dns) / sizeof(good_dns[0]); i++) {
		one[0] = good_dns[i];
		assert_int_equal(ca_sign_x509_svid(t.ca, t.cak, t.k, &p,
		    &leaf), 0);
		X509_free(leaf);
	}
	for (i = 0; i < sizeof(bad_dns) / sizeof(bad_dns[0]); i++) {
		one[0] = bad_dns[i];
		assert_int_equal(ca_sign_x509_svid(t.ca, t.cak, t.k, &p,
		    &leaf), WICK_ERR_INVALID);
	}
	/* Labels up to 63, names up to 253 ("*." included). */
	memset(label, 'a', 63);
	memcpy(label + 63, ".org", 5);
	one[0] = label;
	assert_int_equal(ca_sign_x509_svid(t.ca, t.cak, t.k, &p, &leaf), 0);
	X509_free(leaf);
	memset(label, 'a', 64);
	memcpy(label + 64, ".org", 5);
	assert_int_equal(ca_sign_x509_svid(t.ca, t.cak, t.k, &p, &leaf),
	    WICK_ERR_INVALID);
	memset(total, 'a', 253);
	total[0] = '*';
	for (i = 1; i < 253; i += 50)
		total[i] = '.';
	total[253] = '\0';
	one[0] = total;
	assert_int_equal(ca_sign_x509_svid(t.ca, t.cak, t.k, &p, &leaf), 0);
	X509_free(leaf);
	total[253] = 'a';
	total[254] = '\0';
	assert_int_equal(ca_sign_x509_svid(t.ca, t.cak, t.k, &p, &leaf),
	    WICK_ERR_INVALID);
	/* Too many names, TTL <= 0. */
	one[0] = "ok.org";
	p.ndns_names = CA_MAX_DNS_NAMES + 1;
	assert_int_equal(ca_sign_x509_svid(t.ca, t.cak, t.k, &p, &leaf),
	    WICK_ERR_INVALID);
	p.ndns_names = 1;
	p.ttl = 0;
	assert_int_equal(ca_sign_x509_svid(t.ca, t.cak, t.k, &p, &leaf),
	    WICK_ERR_INVALID);
	/* The CA is not valid at now: expired, or not yet valid. */
	p.ttl = 60;
	p.now = T0 + DAY;
	assert_int_equal(ca_sign_x509_svid(t.ca, t.cak, t.k, &p, &leaf),
	    WICK_ERR_EXPIRED);
	p.now = T0 + 2 * DAY;
	assert_int_equal(ca_sign_x509_svid(t.ca, t.cak, t.k, &p, &leaf),
	    WICK_ERR_EXPIRED);
	p.now = T0 - 60;
	assert_int_equal(ca_sign_x509_svid(t.ca, t.cak, t.k, &p, &leaf),
	    WICK_ERR_EXPIRED);
	assert_null(leaf);
}

static void
test_intermediate(void **state)
{
	struct ca_svid_params	 p;
	X509			*up, *inter, *leaf, *other;
	EVP_PKEY		*upk, *ik, *wrong;

	/* An RSA upstream root; the intermediate is P-256. */
	assert_int_equal(pkey_generate(PKEY_RSA_2048, &upk), 0);
	assert_int_equal(pkey_generate(PKEY_EC_P256, &ik), 0);
	assert_int_equal(ca_make_root(upk, "upstream.test", NULL, T0, DAY,
	    &up), 0);
	assert_int_equal(X509_get_signature_nid(up),
	    NID_sha256WithRSAEncryption);
	assert_int_equal(ca_make_intermediate(ik, "example.org", NULL, up, upk,
	    T0 + 10, 7 * DAY, &inter), 0);
	/* Signed by upstream, capped at its NotAfter, the CA profile. */
	assert_int_equal(X509_NAME_cmp(X509_get_issuer_name(inter),
	    X509_get_subject_name(up)), 0);
	assert_int_equal(X509_check_issued(up, inter), X509_V_OK);
	assert_int_equal(x509_not_before(inter), T0 + 10 - CA_BACKDATE);
	assert_int_equal(x509_not_after(inter), x509_not_after(up));
	assert_int_equal(X509_get_key_usage(inter), KU_KEY_CERT_SIGN |
	    KU_CRL_SIGN);
	sans_are(inter, "spiffe://example.org", NULL, 0);
	key_ids_chain(inter, up);
	serial_in_range(inter);
	assert_true(verify(up, NULL, inter, T0 + 30));
	/* An SVID under it verifies as a chain up to the upstream root. */
	memset(&p, 0, sizeof(p));
	p.spiffe_id = "spiffe://example.org/w";
	p.now = T0 + 20;
	p.ttl = 600;
	assert_int_equal(ca_sign_x509_svid(inter, ik, t.k, &p, &leaf), 0);
	assert_true(verify(up, inter, leaf, T0 + 30));
	assert_false(verify(up, NULL, leaf, T0 + 30));
	assert_false(verify(t.ca, inter, leaf, T0 + 30));
	key_ids_chain(leaf, inter);
	X509_free(leaf);
	/* The upstream key must match; the upstream must be valid now. */
	assert_int_equal(pkey_generate(PKEY_EC_P256, &wrong), 0);
	assert_int_equal(ca_make_intermediate(ik, "example.org", NULL, up,
	    wrong, T0 + 10, DAY, &other), WICK_ERR_INVALID);
	assert_null(other);
	assert_int_equal(ca_make_intermediate(ik, "example.org", NULL, up, upk,
	    T0 + 2 * DAY, DAY, &other), WICK_ERR_EXPIRED);
	/* A leaf is no upstream authority. */
	assert_int_equal(ca_make_intermediate(ik, "example.org", NULL, inter,
	    ik, T0 + 20, DAY, &other), 0);
	X509_free(other);
	p.now = T0 + 20;
	assert_int_equal(ca_sign_x509_svid(inter, ik, wrong, &p, &leaf), 0);
	assert_int_equal(ca_make_intermediate(ik, "example.org", NULL, leaf,
	    wrong, T0 + 20, DAY, &other), WICK_ERR_INVALID);
	X509_free(leaf);
	EVP_PKEY_free(wrong);
	X509_free(up);
	X509_free(inter);
	EVP_PKEY_free(upk);
	EVP_PKEY_free(ik);
}

/* encode_only: the same certificate bytes a normal signing would give in
 * shape, verifiable once parsed, with the workload's key in it. */
static void
test_svid_encode_only(void **state)
{
	struct ca_svid_params	 p;
	EVP_PKEY		*k;
	X509			*leaf, *parsed;
	uint8_t			*der = NULL;
	const uint8_t		*q;
	int			 len;

	assert_int_equal(pkey_generate(PKEY_EC_P256, &k), 0);
	memset(&p, 0, sizeof(p));
	p.spiffe_id = "spiffe://example.org/fast";
	p.now = T0 + 100;
	p.ttl = 600;
	p.encode_only = 1;
	assert_int_equal(ca_sign_x509_svid(t.ca, t.cak, k, &p, &leaf), 0);
	assert_true((len = i2d_X509(leaf, &der)) > 0);
	q = der;
	assert_non_null(parsed = d2i_X509(NULL, &q, len));
	assert_true(verify(t.ca, NULL, parsed, T0 + 200));
	assert_int_equal(EVP_PKEY_eq(X509_get0_pubkey(parsed), k), 1);
	assert_non_null(X509_get0_subject_key_id(parsed));
	X509_free(parsed);
	X509_free(leaf);
	OPENSSL_free(der);
	/* RSA keys take the general path and verify in memory too. */
	EVP_PKEY_free(k);
	assert_int_equal(pkey_generate(PKEY_RSA_2048, &k), 0);
	assert_int_equal(ca_sign_x509_svid(t.ca, t.cak, k, &p, &leaf), 0);
	assert_true(verify(t.ca, NULL, leaf, T0 + 200));
	X509_free(leaf);
	EVP_PKEY_free(k);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_root_profile),
		cmocka_unit_test(test_svid_profile),
		cmocka_unit_test(test_svid_encode_only),
		cmocka_unit_test(test_svid_long_cn),
		cmocka_unit_test(test_svid_der_same),
		cmocka_unit_test(test_svid_der_times),
		cmocka_unit_test(test_svid_der_serials),
		cmocka_unit_test(test_svid_signer_threads),
		cmocka_unit_test(test_svid_refused),
		cmocka_unit_test(test_intermediate),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
