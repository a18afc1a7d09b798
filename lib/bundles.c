/*
 * bundles.c: sets of trust bundles by trust domain (X.509 authorities,
 * or JWT-SVID keys, or WIT-SVID keys), immutable once shared.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/pem.h>

#include "spiffeid.h"
#include "x509.h"
#include "wick_int.h"

int
wick_bundles_new(enum wick_bundle_kind kind, struct wick_bundles **out)
{
	struct wick_bundles *b;

	*out = NULL;
	if (kind != WICK_BUNDLE_X509 && kind != WICK_BUNDLE_JWT &&
	    kind != WICK_BUNDLE_WIT)
		return WICK_E_INVALID;
	if ((b = calloc(1, sizeof(*b))) == NULL)
		return WICK_E_ALLOC;
	atomic_init(&b->refs, 1);
	b->kind = kind;
	*out = b;
	return 0;
}

static void
td_cleanup(struct wick_td_bundle *t)
{
	size_t i;

	sk_X509_pop_free(t->certs, X509_free);
	for (i = 0; i < t->nkeys; i++)
		wick_jwk_cleanup(&t->keys[i]);
	free(t->keys);
	memset(t, 0, sizeof(*t));
}

struct wick_bundles *
wick_bundles_ref(struct wick_bundles *b)
{
	if (b != NULL)
		atomic_fetch_add(&b->refs, 1);
	return b;
}

void
wick_bundles_free(struct wick_bundles *b)
{
	size_t i;

	if (b == NULL || atomic_fetch_sub(&b->refs, 1) != 1)
		return;
	for (i = 0; i < b->n; i++)
		td_cleanup(&b->v[i]);
	free(b->v);
	free(b);
}

enum wick_bundle_kind
wick_bundles_kind(const struct wick_bundles *b)
{
	return b->kind;
}

size_t
wick_bundles_count(const struct wick_bundles *b)
{
	return b == NULL ? 0 : b->n;
}

const char *
wick_bundles_td(const struct wick_bundles *b, size_t i)
{
	return b == NULL || i >= b->n ? NULL : b->v[i].td;
}

const struct wick_td_bundle *
wick_bundles_find(const struct wick_bundles *b, const char *td)
{
	size_t i;

	if (b == NULL || td == NULL)
		return NULL;
	for (i = 0; i < b->n; i++)
		if (strcmp(b->v[i].td, td) == 0)
			return &b->v[i];
	return NULL;
}

size_t
wick_bundles_size(const struct wick_bundles *b, const char *td)
{
	const struct wick_td_bundle	*t;
	char				 name[SPIFFEID_MAX_TD_LEN + 1];

	if (td == NULL || spiffeid_td_parse(td, 0, name, NULL) != 0 ||
	    (t = wick_bundles_find(b, name)) == NULL)
		return 0;
	return t->certs != NULL ? (size_t)sk_X509_num(t->certs) : t->nkeys;
}

const struct wick_jwk *
wick_bundles_key(const struct wick_bundles *b, const char *td,
    const char *kid)
{
	const struct wick_td_bundle	*t = wick_bundles_find(b, td);
	size_t				 i;

	if (t == NULL)
		return NULL;
	for (i = 0; i < t->nkeys; i++)
		if (kid != NULL && strcmp(t->keys[i].kid, kid) == 0)
			return &t->keys[i];
	/* No kid in the token: only a single key is unambiguous. */
	if (kid == NULL && t->nkeys == 1 && t->keys[0].kid[0] == '\0')
		return &t->keys[0];
	return NULL;
}

/* Find or make the slot for td (already normalised). */
static int
td_slot(struct wick_bundles *b, const char *td, struct wick_td_bundle **out)
{
	struct wick_td_bundle	*v;
	size_t			 i;

	for (i = 0; i < b->n; i++)
		if (strcmp(b->v[i].td, td) == 0) {
			td_cleanup(&b->v[i]);
			memcpy(b->v[i].td, td, strlen(td) + 1);
			*out = &b->v[i];
			return 0;
		}
	if (b->n >= WICK_MAX_BUNDLES)
		return WICK_E_LIMIT;
	if ((v = realloc(b->v, (b->n + 1) * sizeof(*v))) == NULL)
		return WICK_E_ALLOC;
	b->v = v;
	memset(&v[b->n], 0, sizeof(v[b->n]));
	memcpy(v[b->n].td, td, strlen(td) + 1);
	*out = &v[b->n++];
	return 0;
}

int
wick_bundles_add_certs(struct wick_bundles *b, const char *td,
    STACK_OF(X509) *sk)
{
	struct wick_td_bundle	*t;
	int			 r;

	if ((r = td_slot(b, td, &t)) != 0)
		return r;
	t->certs = sk;
	return 0;
}

/* Keys of a JWKS or SPIFFE bundle that fit the set's kind. */
static int
add_jwks(struct wick_bundles *b, const char *td, json_t *doc)
{
	struct wick_td_bundle	*t;
	struct wick_jwk		*keys = NULL, k;
	json_t			*arr, *o;
	const char		*want, *use, *why;
	size_t			 i, n = 0;
	int			 r;

	want = b->kind == WICK_BUNDLE_JWT ? "jwt-svid" : "wit-svid";
	if (!json_is_object(doc) || !json_is_array(arr = json_object_get(doc,
	    "keys")))
		return WICK_E_INVALID;
	if (json_array_size(arr) > WICK_MAX_BUNDLE_KEYS)
		return WICK_E_LIMIT;
	if ((keys = calloc(json_array_size(arr) + 1, sizeof(*keys))) == NULL)
		return WICK_E_ALLOC;
	json_array_foreach(arr, i, o) {
		use = json_string_value(json_object_get(o, "use"));
		if (use != NULL && strcmp(use, want) != 0)
			continue;	/* another use: not for this set */
		if ((r = wick_jwk_parse(o, 0, &k, &why)) != 0) {
			if (r == WICK_E_UNSUPPORTED)
				continue;	/* as the SPIFFE spec says */
			goto fail;
		}
		if (k.kid[0] == '\0' && json_array_size(arr) > 1) {
			wick_jwk_cleanup(&k);
			r = WICK_E_INVALID;	/* kid needed to choose */
			goto fail;
		}
		keys[n++] = k;
	}
	if ((r = td_slot(b, td, &t)) != 0)
		goto fail;
	t->keys = keys;
	t->nkeys = n;
	return 0;
fail:
	for (i = 0; i < n; i++)
		wick_jwk_cleanup(&keys[i]);
	free(keys);
	return r;
}

int
wick_bundles_add(struct wick_bundles *b, const char *td, const void *doc,
    size_t len)
{
	char		 name[SPIFFEID_MAX_TD_LEN + 1];
	STACK_OF(X509)	*sk = NULL;
	json_t		*j;
	int		 r;

	if (b == NULL || td == NULL || doc == NULL)
		return WICK_E_INVALID;
	if (atomic_load(&b->refs) != 1)
		return WICK_E_STATE;	/* shared: immutable */
	if (spiffeid_td_parse(td, 0, name, NULL) != 0)
		return WICK_E_INVALID;
	if (len > 1024 * 1024)
		return WICK_E_LIMIT;
	if (b->kind == WICK_BUNDLE_X509) {
		if (len > 10 && memmem(doc, len, "-----BEGIN", 10) != NULL)
			r = x509_certs_from_pem(doc, len, WICK_MAX_BUNDLE_CERTS,
			    &sk);
		else
			r = x509_chain_from_der(doc, len,
			    WICK_MAX_BUNDLE_CERTS, &sk);
		ERR_clear_error();
		if (r != 0)
			return r == WICK_ERR_LIMIT ? WICK_E_LIMIT :
			    WICK_E_INVALID;
		if ((r = wick_bundles_add_certs(b, name, sk)) != 0)
			sk_X509_pop_free(sk, X509_free);
		return r;
	}
	if ((j = json_loadb(doc, len, JSON_REJECT_DUPLICATES, NULL)) == NULL)
		return WICK_E_INVALID;
	r = add_jwks(b, name, j);
	json_decref(j);
	return r;
}

int
wick_bundles_from_json_map(enum wick_bundle_kind kind, const char *s,
    size_t len, struct wick_bundles **out)
{
	struct wick_bundles	*b = NULL;
	json_t			*j = NULL, *v;
	const char		*td;
	char			 name[SPIFFEID_MAX_TD_LEN + 1];
	int			 r;

	*out = NULL;
	if (kind == WICK_BUNDLE_X509 || s == NULL)
		return WICK_E_INVALID;
	if (len > 16 * 1024 * 1024)
		return WICK_E_LIMIT;
	if ((j = json_loadb(s, len, JSON_REJECT_DUPLICATES, NULL)) == NULL ||
	    !json_is_object(j)) {
		r = WICK_E_INVALID;
		goto out;
	}
	if (json_object_size(j) > WICK_MAX_BUNDLES) {
		r = WICK_E_LIMIT;
		goto out;
	}
	if ((r = wick_bundles_new(kind, &b)) != 0)
		goto out;
	json_object_foreach(j, td, v) {
		if (spiffeid_td_parse(td, 0, name, NULL) != 0) {
			r = WICK_E_INVALID;
			goto out;
		}
		if ((r = add_jwks(b, name, v)) != 0)
			goto out;
	}
	*out = b;
	b = NULL;
	r = 0;
out:
	json_decref(j);
	wick_bundles_free(b);
	return r;
}
