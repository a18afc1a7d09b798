/*
 * test_ca.c: the key manager, SPIRE's certificate profile, and CA / JWT /
 * WIT key rotation driven by an injected clock.
 */
#include <sys/stat.h>

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include <openssl/x509v3.h>

#include "ca.h"
#include "ca_manager.h"
#include "keymgr.h"
#include "pkey.h"

#define T0	1800000000LL	/* an arbitrary "now" */
#define DAY	86400

static char dir[64];

static int
setup(void **state)
{
	snprintf(dir, sizeof(dir), "/tmp/wick-ca-XXXXXX");
	return mkdtemp(dir) == NULL ? -1 : 0;
}

static int
teardown(void **state)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}

/* ---- keymgr --------------------------------------------------------------- */

static void
test_keymgr_disk(void **state)
{
	struct keymgr	*km, *again;
	EVP_PKEY	*k1, *k2;
	struct stat	 st;
	const char	*why;
	char		 path[128], tmp[140];

	snprintf(path, sizeof(path), "%s/keys.json", dir);
	assert_int_equal(keymgr_open_disk(path, &km, &why), 0);
	assert_string_equal(keymgr_name(km), "disk");
	assert_int_equal(keymgr_get(km, "x509-A", &k1), WICK_ERR_NOT_FOUND);
	assert_int_equal(keymgr_generate(km, "x509-A", PKEY_EC_P256, &k1), 0);
	assert_int_equal(keymgr_generate(km, "bad id!", PKEY_EC_P256, NULL),
	    WICK_ERR_INVALID);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	assert_int_not_equal(access(tmp, F_OK), 0);	/* nothing left over */
	/* A new manager on the same file has the same key. */
	assert_int_equal(keymgr_open_disk(path, &again, &why), 0);
	assert_int_equal(keymgr_get(again, "x509-A", &k2), 0);
	assert_true(pkey_public_equal(k1, k2));
	EVP_PKEY_free(k2);
	/* Replacing a key persists the new one. */
	assert_int_equal(keymgr_generate(km, "x509-A", PKEY_EC_P384, NULL), 0);
	keymgr_free(again);
	assert_int_equal(keymgr_open_disk(path, &again, &why), 0);
	assert_int_equal(keymgr_get(again, "x509-A", &k2), 0);
	assert_false(pkey_public_equal(k1, k2));
	EVP_PKEY_free(k2);
	keymgr_free(again);
	EVP_PKEY_free(k1);
	keymgr_free(km);
	/* A key file others can read is refused, as is garbage. */
	assert_int_equal(chmod(path, 0644), 0);
	assert_int_equal(keymgr_open_disk(path, &km, &why), WICK_ERR_PERM);
	assert_non_null(why);
	assert_int_equal(chmod(path, 0600), 0);
	{
		FILE *f = fopen(path, "w");

		fputs("{\"keys\":{\"x\":\"not a key\"}}", f);
		fclose(f);
	}
	assert_int_equal(keymgr_open_disk(path, &km, &why), WICK_ERR_INVALID);
	assert_int_equal(keymgr_open_memory(&km), 0);
	assert_string_equal(keymgr_name(km), "memory");
	assert_int_equal(keymgr_generate(km, "jwt-A", PKEY_RSA_2048, &k1), 0);
	assert_int_equal(EVP_PKEY_get_bits(k1), 2048);
	EVP_PKEY_free(k1);
	keymgr_free(km);
}

/* ---- certificates --------------------------------------------------------- */

static int
verify(X509 *root, X509 *inter, X509 *leaf, int64_t at)
{
	X509_STORE	*st = X509_STORE_new();
	X509_STORE_CTX	*ctx = X509_STORE_CTX_new();
	STACK_OF(X509)	*chain = sk_X509_new_null();
	int		 ok;

	X509_STORE_add_cert(st, root);
	if (inter != NULL)
		sk_X509_push(chain, inter);
	X509_STORE_CTX_init(ctx, st, leaf, chain);
	X509_STORE_CTX_set_time(ctx, 0, (time_t)at);
	ok = X509_verify_cert(ctx) == 1;
	X509_STORE_CTX_free(ctx);
	X509_STORE_free(st);
	sk_X509_free(chain);
	return ok;
}

static void
test_svid_profile(void **state)
{
	const char *const	 dns[] = { "web.example.org", "*.example.org" };
	struct ca_svid_params	 p;
	X509			*ca, *leaf;
	EVP_PKEY		*cak, *k;
	BASIC_CONSTRAINTS	*bc;
	GENERAL_NAMES		*san;
	ASN1_BIT_STRING		*ku;
	EXTENDED_KEY_USAGE	*eku;
	char			*hex, cn[256];
	int			 crit, i, uris = 0, dnss = 0;

	assert_int_equal(pkey_generate(PKEY_EC_P256, &cak), 0);
	assert_int_equal(pkey_generate(PKEY_EC_P256, &k), 0);
	assert_int_equal(ca_make_root(cak, "example.org", NULL, T0, DAY, &ca),
	    0);
	bc = X509_get_ext_d2i(ca, NID_basic_constraints, &crit, NULL);
	assert_true(bc->ca && crit);
	BASIC_CONSTRAINTS_free(bc);
	assert_true(X509_get_key_usage(ca) & KU_KEY_CERT_SIGN);
	memset(&p, 0, sizeof(p));
	p.spiffe_id = "spiffe://example.org/web";
	p.dns_names = dns;
	p.ndns_names = 2;
	p.now = T0 + 100;
	p.ttl = 3600;
	assert_int_equal(ca_sign_x509_svid(ca, cak, k, &p, &leaf), 0);
	assert_true(verify(ca, NULL, leaf, T0 + 200));
	assert_int_equal(ca_not_before(leaf), T0 + 100 - CA_BACKDATE);
	assert_int_equal(ca_not_after(leaf), T0 + 100 + 3600);
	bc = X509_get_ext_d2i(leaf, NID_basic_constraints, &crit, NULL);
	assert_false(bc->ca);
	BASIC_CONSTRAINTS_free(bc);
	ku = X509_get_ext_d2i(leaf, NID_key_usage, &crit, NULL);
	assert_true(crit);
	assert_true(ASN1_BIT_STRING_get_bit(ku, 0));	/* digitalSignature */
	assert_false(ASN1_BIT_STRING_get_bit(ku, 5));	/* keyCertSign */
	ASN1_BIT_STRING_free(ku);
	eku = X509_get_ext_d2i(leaf, NID_ext_key_usage, &crit, NULL);
	assert_int_equal(sk_ASN1_OBJECT_num(eku), 2);
	sk_ASN1_OBJECT_pop_free(eku, ASN1_OBJECT_free);
	san = X509_get_ext_d2i(leaf, NID_subject_alt_name, &crit, NULL);
	for (i = 0; i < sk_GENERAL_NAME_num(san); i++) {
		GENERAL_NAME *g = sk_GENERAL_NAME_value(san, i);

		uris += g->type == GEN_URI;
		dnss += g->type == GEN_DNS;
	}
	GENERAL_NAMES_free(san);
	assert_int_equal(uris, 1);
	assert_int_equal(dnss, 2);
	X509_NAME_get_text_by_NID(X509_get_subject_name(leaf), NID_commonName,
	    cn, sizeof(cn));
	assert_string_equal(cn, "web.example.org");
	assert_int_equal(ca_serial_hex(leaf, &hex), 0);
	assert_true(strlen(hex) >= 1 && strlen(hex) <= 32);
	free(hex);
	X509_free(leaf);
	/* Capped at the CA's NotAfter; refused once the CA expired. */
	p.ttl = 10 * DAY;
	assert_int_equal(ca_sign_x509_svid(ca, cak, k, &p, &leaf), 0);
	assert_int_equal(ca_not_after(leaf), ca_not_after(ca));
	X509_free(leaf);
	p.now = T0 + 2 * DAY;
	assert_int_equal(ca_sign_x509_svid(ca, cak, k, &p, &leaf),
	    WICK_ERR_EXPIRED);
	/* Bad names. */
	p.now = T0 + 100;
	p.ttl = 60;
	p.spiffe_id = "spiffe://example.org";		/* root ID */
	assert_int_equal(ca_sign_x509_svid(ca, cak, k, &p, &leaf),
	    WICK_ERR_INVALID);
	p.spiffe_id = "spiffe://example.org/ok";
	{
		const char *const bad[] = { "bad..name" };

		p.dns_names = bad;
		p.ndns_names = 1;
		assert_int_equal(ca_sign_x509_svid(ca, cak, k, &p, &leaf),
		    WICK_ERR_INVALID);
	}
	X509_free(ca);
	EVP_PKEY_free(cak);
	EVP_PKEY_free(k);
}

static void
test_intermediate(void **state)
{
	struct ca_svid_params	 p;
	X509			*up, *inter, *leaf;
	EVP_PKEY		*upk, *ik, *k;

	assert_int_equal(pkey_generate(PKEY_EC_P384, &upk), 0);
	assert_int_equal(pkey_generate(PKEY_EC_P256, &ik), 0);
	assert_int_equal(pkey_generate(PKEY_EC_P256, &k), 0);
	assert_int_equal(ca_make_root(upk, "example.org", NULL, T0, DAY, &up),
	    0);
	assert_int_equal(ca_make_intermediate(ik, "example.org", NULL, up, upk,
	    T0 + 10, 7 * DAY, &inter), 0);
	assert_int_equal(ca_not_after(inter), ca_not_after(up));  /* capped */
	memset(&p, 0, sizeof(p));
	p.spiffe_id = "spiffe://example.org/w";
	p.now = T0 + 20;
	p.ttl = 600;
	assert_int_equal(ca_sign_x509_svid(inter, ik, k, &p, &leaf), 0);
	assert_true(verify(up, inter, leaf, T0 + 30));
	X509_free(up);
	X509_free(inter);
	X509_free(leaf);
	EVP_PKEY_free(upk);
	EVP_PKEY_free(ik);
	EVP_PKEY_free(k);
}

/* ---- rotation ------------------------------------------------------------- */

static void
config(struct ca_manager_config *c, enum pkey_type kt)
{
	static const char *const country[] = { "US" }, *const org[] = { "T" };

	memset(c, 0, sizeof(*c));
	c->trust_domain = "example.org";
	c->ca_key_type = kt;
	c->jwt_key_type = kt;
	c->ca_ttl = DAY;
	c->subject.country = country;
	c->subject.ncountry = 1;
	c->subject.organization = org;
	c->subject.norganization = 1;
}

struct census {
	int	n[CA_NKINDS][5];	/* by status */
};

static void
count(void *arg, const struct ca_authority *a)
{
	((struct census *)arg)->n[a->kind][a->status]++;
}

static void
census(struct ca_manager *m, struct census *c)
{
	memset(c, 0, sizeof(*c));
	ca_manager_foreach(m, count, c);
}

static void
test_rotation(void **state)
{
	struct ca_manager_config	 cfg;
	struct ca_manager		*m, *m2;
	struct keymgr			*km;
	struct census			 c;
	const struct ca_authority	*a, *x0, *j0;
	struct buf			 j;
	const char			*why;
	char				 path[128], kid0[CA_KID_LEN + 1];
	X509				*cert0;
	int				 changed, k;

	snprintf(path, sizeof(path), "%s/rot.json", dir);
	assert_int_equal(keymgr_open_disk(path, &km, &why), 0);
	config(&cfg, PKEY_EC_P256);
	assert_int_equal(ca_manager_new(&cfg, km, NULL, 0, &m), 0);
	assert_null(ca_manager_active(m, CA_KIND_X509));
	assert_int_equal(ca_manager_tick(m, T0, &changed), 0);
	assert_true(changed);
	census(m, &c);
	for (k = 0; k < CA_NKINDS; k++)
		assert_int_equal(c.n[k][CA_STATUS_ACTIVE], 1);
	x0 = ca_manager_active(m, CA_KIND_X509);
	j0 = ca_manager_active(m, CA_KIND_JWT);
	cert0 = x0->cert;
	X509_up_ref(cert0);
	snprintf(kid0, sizeof(kid0), "%s", j0->kid);
	assert_int_equal(strlen(kid0), CA_KID_LEN);
	assert_string_not_equal(kid0,
	    ca_manager_active(m, CA_KIND_WIT)->kid);
	assert_int_equal(ca_manager_max_svid_ttl(m), DAY / 6);
	/* Before half life: nothing new. */
	assert_int_equal(ca_manager_tick(m, T0 + 12 * 3600 - 60, &changed), 0);
	assert_false(changed);
	/* Past half life: one prepared per kind, in the bundle already. */
	assert_int_equal(ca_manager_tick(m, T0 + 12 * 3600 + 60, &changed), 0);
	assert_true(changed);
	census(m, &c);
	for (k = 0; k < CA_NKINDS; k++) {
		assert_int_equal(c.n[k][CA_STATUS_ACTIVE], 1);
		assert_int_equal(c.n[k][CA_STATUS_PREPARED], 1);
	}
	assert_ptr_equal(ca_manager_active(m, CA_KIND_X509)->cert, cert0);
	/* Past 5/6 of the life: activation; the old one is OLD. */
	assert_int_equal(ca_manager_tick(m, T0 + 20 * 3600 + 60, &changed), 0);
	assert_true(changed);
	census(m, &c);
	for (k = 0; k < CA_NKINDS; k++) {
		assert_int_equal(c.n[k][CA_STATUS_ACTIVE], 1);
		assert_int_equal(c.n[k][CA_STATUS_OLD], 1);
	}
	a = ca_manager_active(m, CA_KIND_X509);
	assert_ptr_not_equal(a->cert, cert0);
	assert_string_not_equal(ca_manager_active(m, CA_KIND_JWT)->kid, kid0);
	/* The journal brings the same authorities back. */
	buf_init(&j, CA_MANAGER_MAX_JOURNAL);
	assert_int_equal(ca_manager_journal(m, &j), 0);
	assert_int_equal(ca_manager_new(&cfg, km, buf_ptr(&j), buf_len(&j),
	    &m2), 0);
	assert_int_equal(X509_cmp(ca_manager_active(m2, CA_KIND_X509)->cert,
	    a->cert), 0);
	assert_string_equal(ca_manager_active(m2, CA_KIND_JWT)->kid,
	    ca_manager_active(m, CA_KIND_JWT)->kid);
	census(m2, &c);
	assert_int_equal(c.n[CA_KIND_X509][CA_STATUS_OLD], 1);
	ca_manager_free(m2);
	/* A journal whose keys are gone drops those authorities. */
	{
		struct keymgr *empty;

		assert_int_equal(keymgr_open_memory(&empty), 0);
		assert_int_equal(ca_manager_new(&cfg, empty, buf_ptr(&j),
		    buf_len(&j), &m2), 0);
		assert_null(ca_manager_active(m2, CA_KIND_X509));
		assert_int_equal(ca_manager_tick(m2, T0 + 21 * 3600,
		    &changed), 0);
		assert_non_null(ca_manager_active(m2, CA_KIND_X509));
		ca_manager_free(m2);
		keymgr_free(empty);
	}
	/* A damaged journal is an error, not a silent reset. */
	assert_int_not_equal(ca_manager_new(&cfg, km, (const uint8_t *)
	    "{\"version\":99}", 14, &m2), 0);
	buf_cleanup(&j);
	/* Down past the active's end: a fresh one at once. */
	assert_int_equal(ca_manager_tick(m, T0 + 10 * DAY, &changed), 0);
	assert_true(changed);
	assert_true(ca_manager_active(m, CA_KIND_X509)->not_after >
	    T0 + 10 * DAY);
	X509_free(cert0);
	ca_manager_free(m);
	keymgr_free(km);
}

static void
test_key_types(void **state)
{
	static const enum pkey_type kts[] = { PKEY_EC_P384, PKEY_RSA_2048 };
	struct ca_manager_config	 cfg;
	struct ca_manager		*m;
	struct keymgr			*km;
	const struct ca_authority	*a;
	enum pkey_type			 t;
	size_t				 i;

	for (i = 0; i < sizeof(kts) / sizeof(kts[0]); i++) {
		assert_int_equal(keymgr_open_memory(&km), 0);
		config(&cfg, kts[i]);
		assert_int_equal(ca_manager_new(&cfg, km, NULL, 0, &m), 0);
		assert_int_equal(ca_manager_tick(m, T0, NULL), 0);
		a = ca_manager_active(m, CA_KIND_X509);
		assert_int_equal(pkey_type_of(X509_get0_pubkey(a->cert), &t),
		    0);
		assert_int_equal(t, kts[i]);
		a = ca_manager_active(m, CA_KIND_JWT);
		assert_string_equal(jose_key_alg(a->jkey), kts[i] ==
		    PKEY_EC_P384 ? "ES384" : "RS256");
		ca_manager_free(m);
		keymgr_free(km);
	}
}

static void
test_upstream_chain(void **state)
{
	struct ca_manager_config	 cfg;
	struct ca_manager		*m;
	struct keymgr			*km;
	STACK_OF(X509)			*chain;
	X509				*up;
	EVP_PKEY			*upk;

	assert_int_equal(pkey_generate(PKEY_EC_P256, &upk), 0);
	assert_int_equal(ca_make_root(upk, "example.org", NULL, T0, 30 * DAY,
	    &up), 0);
	assert_int_equal(keymgr_open_memory(&km), 0);
	config(&cfg, PKEY_EC_P256);
	cfg.upstream_cert = up;
	cfg.upstream_key = upk;
	assert_int_equal(ca_manager_new(&cfg, km, NULL, 0, &m), 0);
	assert_int_equal(ca_manager_tick(m, T0 + 100, NULL), 0);
	chain = ca_manager_svid_chain(m);
	/* Our intermediate follows every SVID; the root is the bundle's. */
	assert_int_equal(sk_X509_num(chain), 1);
	assert_int_equal(X509_cmp(sk_X509_value(chain, 0),
	    ca_manager_active(m, CA_KIND_X509)->cert), 0);
	assert_int_equal(X509_check_issued(up, sk_X509_value(chain, 0)),
	    X509_V_OK);
	ca_manager_free(m);
	keymgr_free(km);
	X509_free(up);
	EVP_PKEY_free(upk);
}

/* ---- CSRs ----------------------------------------------------------------- */

static void
test_csr(void **state)
{
	static const enum pkey_type kts[] = { PKEY_EC_P256, PKEY_EC_P384,
	    PKEY_RSA_2048 };
	struct buf	 csr, der;
	EVP_PKEY	*k, *pub;
	const char	*why;
	uint8_t		*p;
	size_t		 i;

	for (i = 0; i < sizeof(kts) / sizeof(kts[0]); i++) {
		buf_init(&csr, PKEY_MAX_DER);
		assert_int_equal(pkey_generate(kts[i], &k), 0);
		assert_int_equal(csr_make(k, &csr), 0);
		assert_int_equal(csr_parse(buf_ptr(&csr), buf_len(&csr), &pub,
		    &why), 0);
		assert_true(pkey_public_equal(k, pub));
		EVP_PKEY_free(pub);
		/* Tampered, truncated, trailing bytes. */
		p = malloc(buf_len(&csr) + 1);
		memcpy(p, buf_ptr(&csr), buf_len(&csr));
		p[buf_len(&csr) - 3] ^= 1;
		assert_int_not_equal(csr_parse(p, buf_len(&csr), &pub, &why), 0);
		assert_int_equal(csr_parse(buf_ptr(&csr), buf_len(&csr) - 1,
		    &pub, &why), WICK_ERR_INVALID);
		memcpy(p, buf_ptr(&csr), buf_len(&csr));
		p[buf_len(&csr)] = 0;
		assert_int_equal(csr_parse(p, buf_len(&csr) + 1, &pub, &why),
		    WICK_ERR_INVALID);
		free(p);
		/* PKCS#8 round trip. */
		buf_init(&der, PKEY_MAX_DER);
		assert_int_equal(pkey_to_pkcs8_der(k, &der), 0);
		assert_int_equal(pkey_from_pkcs8_der(buf_ptr(&der),
		    buf_len(&der), &pub), 0);
		assert_true(pkey_public_equal(k, pub));
		EVP_PKEY_free(pub);
		buf_cleanup(&der);
		EVP_PKEY_free(k);
		buf_cleanup(&csr);
	}
	assert_int_equal(csr_parse((const uint8_t *)"x", PKEY_MAX_DER + 1, &pub,
	    &why), WICK_ERR_LIMIT);
	/* RSA-1024 is refused. */
	k = EVP_RSA_gen(1024);
	buf_init(&csr, PKEY_MAX_DER);
	assert_int_equal(csr_make(k, &csr), 0);
	assert_int_equal(csr_parse(buf_ptr(&csr), buf_len(&csr), &pub, &why),
	    WICK_ERR_UNSUPPORTED);
	buf_cleanup(&csr);
	EVP_PKEY_free(k);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_keymgr_disk),
		cmocka_unit_test(test_svid_profile),
		cmocka_unit_test(test_intermediate),
		cmocka_unit_test(test_rotation),
		cmocka_unit_test(test_key_types),
		cmocka_unit_test(test_upstream_chain),
		cmocka_unit_test(test_csr),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
