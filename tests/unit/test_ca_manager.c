/*
 * test_ca_manager.c: X.509 CA, JWT and WIT key rotation driven by an
 * injected clock, the journal, upstream authorities.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include <jansson.h>
#include <openssl/x509v3.h>

#include "ca.h"
#include "x509.h"
#include "ca_manager.h"
#include "keymgr.h"
#include "log.h"
#include "pkey.h"

#define T0	1800000000LL	/* an arbitrary "now" */
#define HOUR	3600
#define DAY	86400

static char dir[64];
static char path[128];

static int
setup(void **state)
{
	log_set_level(LOG_LEVEL_WARN);		/* no audit lines */
	snprintf(dir, sizeof(dir), "/tmp/wick-cam-XXXXXX");
	if (mkdtemp(dir) == NULL)
		return -1;
	snprintf(path, sizeof(path), "%s/keys.json", dir);
	return 0;
}

static int
teardown(void **state)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}

static int
fresh(void **state)
{
	(void)unlink(path);
	return 0;
}

static void
config(struct ca_manager_config *c, enum pkey_type kt)
{
	memset(c, 0, sizeof(*c));
	c->trust_domain = "example.org";
	c->ca_key_type = kt;
	c->jwt_key_type = kt;
	c->ca_ttl = DAY;
}

/* Authorities by kind and status, and the order foreach gives them in. */
struct census {
	int	n[CA_NKINDS][5];
	int	order[2 * CA_NKINDS];
	int	count;
};

static void
count_cb(void *arg, const struct ca_authority *a)
{
	struct census *c = arg;

	c->n[a->kind][a->status]++;
	c->order[c->count++] = a->kind * 2 + (a->slot - 'A');
}

static void
census(struct ca_manager *m, struct census *c)
{
	int i;

	memset(c, 0, sizeof(*c));
	ca_manager_foreach(m, count_cb, c);
	for (i = 1; i < c->count; i++)
		assert_true(c->order[i - 1] < c->order[i]);
}

/* Every kind has exactly these many authorities of these statuses. */
static void
expect(struct ca_manager *m, int active, int prepared, int old)
{
	struct census	c;
	int		k;

	census(m, &c);
	for (k = 0; k < CA_NKINDS; k++) {
		assert_int_equal(c.n[k][CA_STATUS_ACTIVE], active);
		assert_int_equal(c.n[k][CA_STATUS_PREPARED], prepared);
		assert_int_equal(c.n[k][CA_STATUS_OLD], old);
	}
}

static void
tick(struct ca_manager *m, int64_t now, int want_changed)
{
	int changed = -1;

	assert_int_equal(ca_manager_tick(m, now, &changed), 0);
	assert_int_equal(changed, want_changed);
}

/* with_status: the authority of a kind with a status, or NULL. */
static struct {
	enum ca_kind			 kind;
	enum ca_status			 status;
	const struct ca_authority	*a;
} seen;

static void
find_cb(void *arg, const struct ca_authority *a)
{
	if (a->kind == seen.kind && a->status == seen.status)
		seen.a = a;
}

static const struct ca_authority *
with_status(struct ca_manager *m, enum ca_kind kind, enum ca_status status)
{
	seen.kind = kind;
	seen.status = status;
	seen.a = NULL;
	ca_manager_foreach(m, find_cb, NULL);
	return seen.a;
}

static void
check_kids(struct ca_manager *m)
{
	const struct ca_authority	*a;
	char				*skid;
	int				 k;

	a = ca_manager_active(m, CA_KIND_X509);
	assert_int_equal(ca_skid_hex(a->cert, &skid), 0);
	assert_int_equal(strlen(a->kid), CA_KID_LEN);
	assert_memory_equal(a->kid, skid, CA_KID_LEN);
	free(skid);
	assert_true(pkey_public_equal(X509_get0_pubkey(a->cert), a->key));
	for (k = CA_KIND_JWT; k <= CA_KIND_WIT; k++) {
		a = ca_manager_active(m, (enum ca_kind)k);
		assert_non_null(a->jkey);
		assert_int_equal(strlen(a->kid), CA_KID_LEN);
		assert_int_equal(strspn(a->kid, "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
		    "abcdefghijklmnopqrstuvwxyz0123456789"), CA_KID_LEN);
		assert_int_equal(a->not_after - a->not_before, DAY);
	}
	assert_string_not_equal(ca_manager_active(m, CA_KIND_JWT)->kid,
	    ca_manager_active(m, CA_KIND_WIT)->kid);
}

/*
 * The manager's SVID signer signs for the active X.509 authority at now:
 * its certificates verify with that authority's key and name it as
 * issuer; asked again, the same signer.
 */
static void
signer_is_active(struct ca_manager *m, int64_t now)
{
	const struct ca_authority	*a = ca_manager_active(m, CA_KIND_X509);
	const struct ca_svid_signer	*sg;
	struct ca_svid_params		 p;
	EVP_PKEY			*k;
	X509				*leaf;
	uint8_t				*spki = NULL, *der;
	const uint8_t			*q;
	char				 serial[CA_SERIAL_HEX];
	size_t				 derlen;
	int64_t				 na;
	int				 spkilen;

	assert_non_null(a);
	assert_non_null(sg = ca_manager_svid_signer(m));
	assert_ptr_equal(ca_manager_svid_signer(m), sg);
	assert_int_equal(pkey_generate(PKEY_EC_P256, &k), 0);
	assert_true((spkilen = i2d_PUBKEY(k, &spki)) > 0);
	memset(&p, 0, sizeof(p));
	p.spiffe_id = "spiffe://example.org/w";
	p.now = now;
	p.ttl = HOUR;
	assert_int_equal(ca_svid_signer_der(sg, spki, (size_t)spkilen, &p,
	    NULL, &der, &derlen, serial, &na), 0);
	q = der;
	assert_non_null(leaf = d2i_X509(NULL, &q, (long)derlen));
	assert_int_equal(X509_verify(leaf, X509_get0_pubkey(a->cert)), 1);
	assert_int_equal(X509_NAME_cmp(X509_get_issuer_name(leaf),
	    X509_get_subject_name(a->cert)), 0);
	X509_free(leaf);
	OPENSSL_free(der);
	OPENSSL_free(spki);
	EVP_PKEY_free(k);
}

static void
test_rotation(void **state)
{
	struct ca_manager_config	 cfg;
	struct ca_manager		*m;
	struct keymgr			*km;
	const struct ca_authority	*a;
	const char			*why;
	char				 kid0[CA_NKINDS][CA_KID_LEN + 1];
	char				 kid1[CA_NKINDS][CA_KID_LEN + 1];
	X509				*cert0, *cert1;
	int				 k;

	assert_int_equal(keymgr_open_disk(path, &km, &why), 0);
	config(&cfg, PKEY_EC_P256);
	assert_int_equal(ca_manager_new(&cfg, km, NULL, 0, &m), 0);
	for (k = 0; k < CA_NKINDS; k++)
		assert_null(ca_manager_active(m, (enum ca_kind)k));
	assert_int_equal(sk_X509_num(ca_manager_svid_chain(m)), 0);
	assert_int_equal(ca_manager_max_svid_ttl(m), 4 * HOUR);

	/* t0: one active of each kind at once. */
	tick(m, T0, 1);
	expect(m, 1, 0, 0);
	check_kids(m);
	a = ca_manager_active(m, CA_KIND_X509);
	assert_int_equal(a->slot, 'A');
	assert_int_equal(a->not_before, T0 - CA_BACKDATE);
	assert_int_equal(a->not_after, T0 + DAY);
	assert_int_equal(X509_get_ext_by_NID(a->cert, NID_basic_constraints,
	    -1) >= 0, 1);
	assert_int_equal(sk_X509_num(ca_manager_svid_chain(m)), 0);
	cert0 = a->cert;
	assert_int_equal(X509_up_ref(cert0), 1);
	for (k = 0; k < CA_NKINDS; k++)
		snprintf(kid0[k], sizeof(kid0[k]), "%s",
		    ca_manager_active(m, (enum ca_kind)k)->kid);
	assert_string_equal(jose_key_alg(ca_manager_active(m,
	    CA_KIND_JWT)->jkey), "ES256");
	signer_is_active(m, T0);
	tick(m, T0 + 10, 0);

	/* t0 + 11h59m: before half life, nothing new. */
	tick(m, T0 + 11 * HOUR + 59 * 60, 0);
	expect(m, 1, 0, 0);

	/* t0 + 12h01m: one prepared per kind, the active unchanged. */
	tick(m, T0 + 12 * HOUR + 60, 1);
	expect(m, 1, 1, 0);
	assert_ptr_equal(ca_manager_active(m, CA_KIND_X509)->cert, cert0);
	for (k = 0; k < CA_NKINDS; k++) {
		a = with_status(m, (enum ca_kind)k, CA_STATUS_PREPARED);
		assert_non_null(a);
		assert_int_equal(a->slot, 'B');
		assert_string_not_equal(a->kid, kid0[k]);
		snprintf(kid1[k], sizeof(kid1[k]), "%s", a->kid);
	}
	cert1 = with_status(m, CA_KIND_X509, CA_STATUS_PREPARED)->cert;
	assert_int_equal(X509_up_ref(cert1), 1);
	tick(m, T0 + 20 * HOUR - 60, 0);
	expect(m, 1, 1, 0);

	/* t0 + 20h01m: the prepared ones are active, the others OLD. */
	tick(m, T0 + 20 * HOUR + 60, 1);
	expect(m, 1, 0, 1);
	for (k = 0; k < CA_NKINDS; k++) {
		assert_string_equal(ca_manager_active(m,
		    (enum ca_kind)k)->kid, kid1[k]);
		assert_string_equal(with_status(m, (enum ca_kind)k,
		    CA_STATUS_OLD)->kid, kid0[k]);
	}
	assert_ptr_equal(ca_manager_active(m, CA_KIND_X509)->cert, cert1);
	check_kids(m);
	signer_is_active(m, T0 + 20 * HOUR + 60);

	/* t0 + 36h: the next one is prepared (slot A again); it is past
	 * the activation point of the active one too, so it is active. */
	tick(m, T0 + 36 * HOUR, 1);
	expect(m, 1, 0, 1);
	a = ca_manager_active(m, CA_KIND_X509);
	assert_int_equal(a->slot, 'A');
	assert_int_not_equal(X509_cmp(a->cert, cert0), 0);
	assert_int_not_equal(X509_cmp(a->cert, cert1), 0);
	assert_ptr_equal(with_status(m, CA_KIND_X509, CA_STATUS_OLD)->cert,
	    cert1);
	/* Slot A holds another authority now, with a signer of its own. */
	signer_is_active(m, T0 + 36 * HOUR);
	for (k = 0; k < CA_NKINDS; k++) {
		a = ca_manager_active(m, (enum ca_kind)k);
		assert_string_not_equal(a->kid, kid0[k]);
		assert_string_not_equal(a->kid, kid1[k]);
	}
	check_kids(m);

	/* Down past the end of everything: a fresh one at once. */
	tick(m, T0 + 10 * DAY, 1);
	expect(m, 1, 0, 1);
	assert_int_equal(ca_manager_active(m, CA_KIND_X509)->not_before,
	    T0 + 10 * DAY - CA_BACKDATE);
	X509_free(cert0);
	X509_free(cert1);
	ca_manager_free(m);
	keymgr_free(km);
}

static void
test_rotation_steps(void **state)
{
	struct ca_manager_config	 cfg;
	struct ca_manager		*m;
	struct keymgr			*km;
	const struct ca_authority	*a;
	int64_t				 now;
	int				 changes = 0, changed, k;

	/* Tick every 10 minutes for three days: always an active one with
	 * at least min(life/6) left, about 4h (the tick rounds it). */
	assert_int_equal(keymgr_open_memory(&km), 0);
	config(&cfg, PKEY_EC_P256);
	assert_int_equal(ca_manager_new(&cfg, km, NULL, 0, &m), 0);
	for (now = T0; now < T0 + 3 * DAY; now += 600) {
		assert_int_equal(ca_manager_tick(m, now, &changed), 0);
		changes += changed;
		for (k = 0; k < CA_NKINDS; k++) {
			assert_non_null(a = ca_manager_active(m,
			    (enum ca_kind)k));
			assert_true(a->not_after - now >= 4 * HOUR - 600);
			assert_true(a->not_before <= now);
		}
	}
	/* The first tick, then a prepare and an activation every 12 h
	 * (kinds may fall on neighbouring ticks). */
	assert_true(changes >= 11 && changes <= 3 * 11);
	ca_manager_free(m);
	keymgr_free(km);
}

/* Read the key file, delete key id from it, write it back (0600). */
static void
drop_key(const char *id)
{
	json_t	*doc;
	FILE	*f;

	assert_non_null(doc = json_load_file(path, 0, NULL));
	assert_int_equal(json_object_del(json_object_get(doc, "keys"), id), 0);
	assert_non_null(f = fopen(path, "w"));
	assert_int_equal(json_dumpf(doc, f, 0), 0);
	fclose(f);
	json_decref(doc);
}

static void
test_journal(void **state)
{
	struct ca_manager_config	 cfg;
	struct ca_manager		*m, *m2;
	struct keymgr			*km, *km2;
	const struct ca_authority	*a, *b;
	struct buf			 j;
	json_t				*doc;
	const char			*why;
	int				 k;

	assert_int_equal(keymgr_open_disk(path, &km, &why), 0);
	config(&cfg, PKEY_EC_P256);
	assert_int_equal(ca_manager_new(&cfg, km, NULL, 0, &m), 0);
	tick(m, T0, 1);
	tick(m, T0 + 12 * HOUR + 60, 1);
	tick(m, T0 + 20 * HOUR + 60, 1);
	tick(m, T0 + 24 * HOUR + 120, 1);	/* prepared again */
	buf_init(&j, CA_MANAGER_MAX_JOURNAL);
	assert_int_equal(ca_manager_journal(m, &j), 0);
	assert_non_null(doc = json_loadb((const char *)buf_ptr(&j),
	    buf_len(&j), 0, NULL));
	assert_int_equal(json_integer_value(json_object_get(doc, "version")),
	    1);
	assert_int_equal(json_array_size(json_object_get(doc, "authorities")),
	    6);
	json_decref(doc);

	/* A restart: new key manager on the same file, same authorities. */
	assert_int_equal(keymgr_open_disk(path, &km2, &why), 0);
	assert_int_equal(ca_manager_new(&cfg, km2, buf_ptr(&j), buf_len(&j),
	    &m2), 0);
	expect(m2, 1, 1, 0);
	for (k = 0; k < CA_NKINDS; k++) {
		a = ca_manager_active(m, (enum ca_kind)k);
		b = ca_manager_active(m2, (enum ca_kind)k);
		assert_int_equal(a->slot, b->slot);
		assert_string_equal(a->kid, b->kid);
		assert_int_equal(a->not_before, b->not_before);
		assert_int_equal(a->not_after, b->not_after);
		assert_int_equal(EVP_PKEY_eq(a->key, b->key), 1);
		a = with_status(m, (enum ca_kind)k, CA_STATUS_PREPARED);
		b = with_status(m2, (enum ca_kind)k, CA_STATUS_PREPARED);
		assert_string_equal(a->kid, b->kid);
	}
	assert_int_equal(X509_cmp(ca_manager_active(m, CA_KIND_X509)->cert,
	    ca_manager_active(m2, CA_KIND_X509)->cert), 0);
	assert_string_equal(jose_key_alg(ca_manager_active(m2,
	    CA_KIND_JWT)->jkey), "ES256");
	/* It goes on rotating from there. */
	tick(m2, T0 + 24 * HOUR + 120, 0);
	tick(m2, T0 + 32 * HOUR + 120, 1);
	expect(m2, 1, 0, 1);
	ca_manager_free(m2);
	keymgr_free(km2);
	ca_manager_free(m);
	keymgr_free(km);

	/* A key missing from the key manager drops that authority. */
	drop_key("jwt-B");	/* the active JWT key */
	assert_int_equal(keymgr_open_disk(path, &km, &why), 0);
	assert_int_equal(ca_manager_new(&cfg, km, buf_ptr(&j), buf_len(&j),
	    &m), 0);
	assert_null(ca_manager_active(m, CA_KIND_JWT));
	assert_non_null(with_status(m, CA_KIND_JWT, CA_STATUS_PREPARED));
	assert_non_null(ca_manager_active(m, CA_KIND_X509));
	assert_non_null(ca_manager_active(m, CA_KIND_WIT));
	/* The next tick activates the prepared one. */
	tick(m, T0 + 24 * HOUR + 120, 1);
	assert_non_null(ca_manager_active(m, CA_KIND_JWT));
	ca_manager_free(m);
	/* A key that no longer matches its certificate: dropped too. */
	assert_int_equal(keymgr_generate(km, "x509-B", PKEY_EC_P256, NULL), 0);
	assert_int_equal(ca_manager_new(&cfg, km, buf_ptr(&j), buf_len(&j),
	    &m), 0);
	assert_null(ca_manager_active(m, CA_KIND_X509));
	assert_non_null(with_status(m, CA_KIND_X509, CA_STATUS_PREPARED));
	ca_manager_free(m);
	keymgr_free(km);
	/* An empty key manager: everything is dropped and made anew. */
	assert_int_equal(keymgr_open_memory(&km), 0);
	assert_int_equal(ca_manager_new(&cfg, km, buf_ptr(&j), buf_len(&j),
	    &m), 0);
	expect(m, 0, 0, 0);
	tick(m, T0 + 25 * HOUR, 1);
	expect(m, 1, 0, 0);
	ca_manager_free(m);
	keymgr_free(km);
	buf_cleanup(&j);
}

static void
test_journal_bad(void **state)
{
	static const struct {
		const char	*text;
		int		 err;
	} bad[] = {
		{ "not json", WICK_ERR_INVALID },
		{ "[]", WICK_ERR_INVALID },
		{ "{\"authorities\":[]}", WICK_ERR_INVALID },
		{ "{\"version\":\"1\",\"authorities\":[]}", WICK_ERR_INVALID },
		{ "{\"version\":99,\"authorities\":[]}", WICK_ERR_UNSUPPORTED },
		{ "{\"version\":1}", WICK_ERR_INVALID },
		{ "{\"version\":1,\"authorities\":{}}", WICK_ERR_INVALID },
		{ "{\"version\":1,\"authorities\":[1]}", WICK_ERR_INVALID },
		{ "{\"version\":1,\"authorities\":[{\"kind\":\"jwt\","
		    "\"slot\":\"A\",\"status\":\"active\",\"not_before\":1,"
		    "\"not_after\":2,\"kid\":\"k\"}]}", WICK_ERR_INVALID },
		{ "{\"version\":1,\"authorities\":[{\"kind\":\"rsa\","
		    "\"slot\":\"A\",\"status\":3,\"not_before\":1,"
		    "\"not_after\":2,\"kid\":\"k\"}]}", WICK_ERR_INVALID },
		{ "{\"version\":1,\"authorities\":[{\"kind\":\"jwt\","
		    "\"slot\":\"C\",\"status\":3,\"not_before\":1,"
		    "\"not_after\":2,\"kid\":\"k\"}]}", WICK_ERR_INVALID },
		{ "{\"version\":1,\"authorities\":[{\"kind\":\"jwt\","
		    "\"slot\":\"A\",\"status\":1,\"not_before\":1,"
		    "\"not_after\":2,\"kid\":\"k\"}]}", WICK_ERR_INVALID },
		{ "{\"version\":1,\"authorities\":[{\"kind\":\"jwt\","
		    "\"slot\":\"A\",\"status\":3,\"not_before\":2,"
		    "\"not_after\":2,\"kid\":\"k\"}]}", WICK_ERR_INVALID },
		{ "{\"version\":1,\"authorities\":[{\"kind\":\"jwt\","
		    "\"slot\":\"A\",\"status\":3,\"not_before\":1,"
		    "\"not_after\":2,\"kid\":\"k/../x\"}]}", WICK_ERR_INVALID },
		{ "{\"version\":1,\"authorities\":[{\"kind\":\"x509\","
		    "\"slot\":\"A\",\"status\":3,\"not_before\":1,"
		    "\"not_after\":2,\"kid\":\"k\"}]}", WICK_ERR_INVALID },
		{ "{\"version\":1,\"authorities\":[{\"kind\":\"x509\","
		    "\"slot\":\"A\",\"status\":3,\"not_before\":1,"
		    "\"not_after\":2,\"kid\":\"k\",\"cert\":\"AAAA\"}]}",
		    WICK_ERR_INVALID },
		{ "{\"version\":1,\"version\":1,\"authorities\":[]}",
		    WICK_ERR_INVALID },
	};
	struct ca_manager_config	 cfg;
	struct ca_manager		*m, *m2;
	struct keymgr			*km;
	struct buf			 j;
	json_t				*doc, *list;
	char				*s, *big;
	size_t				 i;

	assert_int_equal(keymgr_open_memory(&km), 0);
	config(&cfg, PKEY_EC_P256);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(ca_manager_new(&cfg, km, (const uint8_t *)
		    bad[i].text, strlen(bad[i].text), &m), bad[i].err);
		assert_null(m);
	}
	big = calloc(1, CA_MANAGER_MAX_JOURNAL + 1);
	memset(big, ' ', CA_MANAGER_MAX_JOURNAL + 1);
	assert_int_equal(ca_manager_new(&cfg, km, (const uint8_t *)big,
	    CA_MANAGER_MAX_JOURNAL + 1, &m), WICK_ERR_LIMIT);
	free(big);
	/* Two entries for one slot, or two active ones in a kind. */
	assert_int_equal(ca_manager_new(&cfg, km, NULL, 0, &m), 0);
	tick(m, T0, 1);
	buf_init(&j, CA_MANAGER_MAX_JOURNAL);
	assert_int_equal(ca_manager_journal(m, &j), 0);
	assert_non_null(doc = json_loadb((const char *)buf_ptr(&j),
	    buf_len(&j), 0, NULL));
	list = json_object_get(doc, "authorities");
	assert_int_equal(json_array_size(list), 3);
	assert_int_equal(json_array_append_new(list, json_deep_copy(
	    json_array_get(list, 0))), 0);
	assert_non_null(s = json_dumps(doc, 0));
	assert_int_equal(ca_manager_new(&cfg, km, (const uint8_t *)s,
	    strlen(s), &m2), WICK_ERR_INVALID);
	free(s);
	/* Entry 0 is x509-A, active; its copy as x509-B, active too (even
	 * though there is no key for x509-B). */
	assert_int_equal(json_object_set_new(json_array_get(list, 3), "slot",
	    json_string("B")), 0);
	assert_non_null(s = json_dumps(doc, 0));
	assert_int_equal(ca_manager_new(&cfg, km, (const uint8_t *)s,
	    strlen(s), &m2), WICK_ERR_INVALID);
	free(s);
	json_decref(doc);
	buf_cleanup(&j);
	ca_manager_free(m);
	/* A bad configuration. */
	cfg.ca_ttl = 0;
	assert_int_equal(ca_manager_new(&cfg, km, NULL, 0, &m),
	    WICK_ERR_CONFIG);
	config(&cfg, PKEY_EC_P256);
	cfg.trust_domain = "not a td";
	assert_int_equal(ca_manager_new(&cfg, km, NULL, 0, &m),
	    WICK_ERR_CONFIG);
	config(&cfg, (enum pkey_type)0);
	assert_int_equal(ca_manager_new(&cfg, km, NULL, 0, &m),
	    WICK_ERR_CONFIG);
	keymgr_free(km);
}

static void
test_key_types(void **state)
{
	static const struct {
		enum pkey_type	 type;
		const char	*alg;
		int		 sig;
	} kts[] = {
		{ PKEY_EC_P384, "ES384", NID_ecdsa_with_SHA384 },
		{ PKEY_RSA_2048, "RS256", NID_sha256WithRSAEncryption },
	};
	struct ca_manager_config	 cfg;
	struct ca_manager		*m, *m2;
	struct keymgr			*km;
	const struct ca_authority	*a;
	struct buf			 j;
	enum pkey_type			 t;
	size_t				 i;
	int				 k;

	for (i = 0; i < sizeof(kts) / sizeof(kts[0]); i++) {
		assert_int_equal(keymgr_open_memory(&km), 0);
		config(&cfg, kts[i].type);
		assert_int_equal(ca_manager_new(&cfg, km, NULL, 0, &m), 0);
		tick(m, T0, 1);
		a = ca_manager_active(m, CA_KIND_X509);
		assert_int_equal(pkey_type_of(X509_get0_pubkey(a->cert), &t),
		    0);
		assert_int_equal(t, kts[i].type);
		assert_int_equal(X509_get_signature_nid(a->cert), kts[i].sig);
		for (k = CA_KIND_JWT; k <= CA_KIND_WIT; k++) {
			a = ca_manager_active(m, (enum ca_kind)k);
			assert_int_equal(pkey_type_of(a->key, &t), 0);
			assert_int_equal(t, kts[i].type);
			assert_string_equal(jose_key_alg(a->jkey), kts[i].alg);
		}
		check_kids(m);
		/* The journal comes back with these types as well. */
		buf_init(&j, CA_MANAGER_MAX_JOURNAL);
		assert_int_equal(ca_manager_journal(m, &j), 0);
		assert_int_equal(ca_manager_new(&cfg, km, buf_ptr(&j),
		    buf_len(&j), &m2), 0);
		expect(m2, 1, 0, 0);
		assert_string_equal(jose_key_alg(ca_manager_active(m2,
		    CA_KIND_JWT)->jkey), kts[i].alg);
		ca_manager_free(m2);
		buf_cleanup(&j);
		ca_manager_free(m);
		keymgr_free(km);
	}
}

static int
verify_chain(X509 *root, STACK_OF(X509) *chain, X509 *leaf, int64_t at)
{
	X509_STORE	*st;
	X509_STORE_CTX	*ctx;
	int		 ok;

	assert_non_null(st = X509_STORE_new());
	assert_non_null(ctx = X509_STORE_CTX_new());
	assert_int_equal(X509_STORE_add_cert(st, root), 1);
	assert_int_equal(X509_STORE_CTX_init(ctx, st, leaf, chain), 1);
	X509_STORE_CTX_set_time(ctx, 0, (time_t)at);
	ok = X509_verify_cert(ctx) == 1;
	X509_STORE_CTX_free(ctx);
	X509_STORE_free(st);
	return ok;
}

static void
test_upstream(void **state)
{
	struct ca_manager_config	 cfg, self;
	struct ca_manager		*m, *m2;
	struct keymgr			*km;
	struct ca_svid_params		 p;
	const struct ca_authority	*a;
	STACK_OF(X509)			*chain, *upchain;
	struct buf			 j;
	X509				*root, *up, *leaf;
	EVP_PKEY			*rootk, *upk, *k;

	/* root -> up (the upstream authority) -> our CA -> SVIDs. */
	assert_int_equal(pkey_generate(PKEY_EC_P256, &rootk), 0);
	assert_int_equal(pkey_generate(PKEY_EC_P256, &upk), 0);
	assert_int_equal(pkey_generate(PKEY_EC_P256, &k), 0);
	assert_int_equal(ca_make_root(rootk, "upstream.test", NULL, T0 - DAY,
	    30 * DAY, &root), 0);
	assert_int_equal(ca_make_intermediate(upk, "upstream.test", NULL,
	    root, rootk, T0 - DAY, 10 * HOUR + DAY, &up), 0);
	assert_non_null(upchain = sk_X509_new_null());
	assert_int_equal(keymgr_open_memory(&km), 0);
	config(&cfg, PKEY_EC_P256);
	cfg.upstream_cert = up;
	cfg.upstream_key = upk;
	cfg.upstream_chain = upchain;
	assert_int_equal(ca_manager_new(&cfg, km, NULL, 0, &m), 0);
	tick(m, T0, 1);
	a = ca_manager_active(m, CA_KIND_X509);
	assert_int_equal(X509_check_issued(up, a->cert), X509_V_OK);
	/* Capped at the upstream's NotAfter (T0 + 10h, not T0 + 24h). */
	assert_int_equal(a->not_after, x509_not_after(up));
	assert_int_equal(a->not_after, T0 + 10 * HOUR);
	/* The chain: our CA, then the upstream (not a root). */
	chain = ca_manager_svid_chain(m);
	assert_int_equal(sk_X509_num(chain), 2);
	assert_ptr_equal(sk_X509_value(chain, 0), a->cert);
	assert_int_equal(X509_cmp(sk_X509_value(chain, 1), up), 0);
	memset(&p, 0, sizeof(p));
	p.spiffe_id = "spiffe://example.org/w";
	p.now = T0 + 60;
	p.ttl = HOUR;
	assert_int_equal(ca_sign_x509_svid(a->cert, a->key, k, &p, &leaf), 0);
	assert_true(verify_chain(root, chain, leaf, T0 + 120));
	X509_free(leaf);
	/* Rotation follows the capped lifetime: prepare past half of it. */
	tick(m, T0 + 5 * HOUR - 60, 0);
	tick(m, T0 + 5 * HOUR + 60, 1);
	assert_non_null(with_status(m, CA_KIND_X509, CA_STATUS_PREPARED));
	/* The journal comes back under the same upstream... */
	buf_init(&j, CA_MANAGER_MAX_JOURNAL);
	assert_int_equal(ca_manager_journal(m, &j), 0);
	assert_int_equal(ca_manager_new(&cfg, km, buf_ptr(&j), buf_len(&j),
	    &m2), 0);
	assert_non_null(ca_manager_active(m2, CA_KIND_X509));
	assert_int_equal(sk_X509_num(ca_manager_svid_chain(m2)), 2);
	ca_manager_free(m2);
	/* ...but not as a self-signed root: those authorities are dropped. */
	config(&self, PKEY_EC_P256);
	assert_int_equal(ca_manager_new(&self, km, buf_ptr(&j), buf_len(&j),
	    &m2), 0);
	assert_null(ca_manager_active(m2, CA_KIND_X509));
	assert_non_null(ca_manager_active(m2, CA_KIND_JWT));
	ca_manager_free(m2);
	buf_cleanup(&j);
	ca_manager_free(m);
	/* A self-signed upstream: only our CA follows the SVIDs. */
	cfg.upstream_cert = root;
	cfg.upstream_key = rootk;
	cfg.upstream_chain = NULL;
	assert_int_equal(ca_manager_new(&cfg, km, NULL, 0, &m), 0);
	tick(m, T0, 1);
	chain = ca_manager_svid_chain(m);
	assert_int_equal(sk_X509_num(chain), 1);
	assert_int_equal(X509_check_issued(root, sk_X509_value(chain, 0)),
	    X509_V_OK);
	assert_int_equal(ca_manager_active(m, CA_KIND_X509)->not_after,
	    T0 + DAY);
	ca_manager_free(m);
	/* Upstream cert without its key is a configuration error. */
	cfg.upstream_key = NULL;
	assert_int_equal(ca_manager_new(&cfg, km, NULL, 0, &m),
	    WICK_ERR_CONFIG);
	keymgr_free(km);
	sk_X509_free(upchain);
	X509_free(root);
	X509_free(up);
	EVP_PKEY_free(rootk);
	EVP_PKEY_free(upk);
	EVP_PKEY_free(k);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_rotation, fresh),
		cmocka_unit_test_setup(test_rotation_steps, fresh),
		cmocka_unit_test_setup(test_journal, fresh),
		cmocka_unit_test_setup(test_journal_bad, fresh),
		cmocka_unit_test_setup(test_key_types, fresh),
		cmocka_unit_test_setup(test_upstream, fresh),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
