/*
 * ds.c: the datastore interface: records, the limits of ds.h checked
 * before a backend sees anything (so no backend allocates or runs SQL
 * for a request that breaks them), matching shared by backends, and
 * dispatch to the backend's ops.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "ds_int.h"
#include "encode.h"
#include "spiffeid.h"

#define DS_TOKEN_MAX	1024	/* join token length */

/* ---- records ----------------------------------------------------------- */

struct ds_entry *
ds_entry_new(void)
{
	struct ds_entry *e;

	if ((e = calloc(1, sizeof(*e))) == NULL)
		return NULL;
	selector_set_init(&e->selectors);
	return e;
}

static void
free_strings(char **v, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

void
ds_entry_free(struct ds_entry *e)
{
	if (e == NULL)
		return;
	free(e->id);
	free(e->spiffe_id);
	free(e->parent_id);
	free(e->hint);
	selector_set_cleanup(&e->selectors);
	free_strings(e->federates_with, e->nfederates_with);
	free_strings(e->dns_names, e->ndns_names);
	free(e);
}

/* *dst gets a copy of s, or NULL for NULL. */
static int
dup_or_null(const char *s, char **dst)
{
	*dst = NULL;
	if (s != NULL && (*dst = strdup(s)) == NULL)
		return WICK_ERR_ALLOC;
	return 0;
}

/* Append a copy of s to *v (*n of them), at most max. */
static int
add_string(char ***v, size_t *n, size_t max, const char *s)
{
	char **nv, *copy;

	if (s == NULL)
		return WICK_ERR_INVALID;
	if (*n >= max)
		return WICK_ERR_LIMIT;
	if ((copy = strdup(s)) == NULL)
		return WICK_ERR_ALLOC;
	if ((nv = reallocarray(*v, *n + 1, sizeof(**v))) == NULL) {
		free(copy);
		return WICK_ERR_ALLOC;
	}
	*v = nv;
	(*v)[(*n)++] = copy;
	return 0;
}

int
ds_entry_add_federates_with(struct ds_entry *e, const char *td)
{
	return add_string(&e->federates_with, &e->nfederates_with,
	    DS_MAX_FEDERATES_WITH, td);
}

int
ds_entry_add_dns_name(struct ds_entry *e, const char *name)
{
	return add_string(&e->dns_names, &e->ndns_names, DS_MAX_DNS_NAMES,
	    name);
}

int
ds_entry_dup(const struct ds_entry *src, struct ds_entry **out)
{
	struct ds_entry	*e;
	size_t		 i;
	int		 r;

	*out = NULL;
	if ((e = ds_entry_new()) == NULL)
		return WICK_ERR_ALLOC;
	if ((r = dup_or_null(src->id, &e->id)) != 0 ||
	    (r = dup_or_null(src->spiffe_id, &e->spiffe_id)) != 0 ||
	    (r = dup_or_null(src->parent_id, &e->parent_id)) != 0 ||
	    (r = dup_or_null(src->hint, &e->hint)) != 0)
		goto fail;
	e->x509_svid_ttl = src->x509_svid_ttl;
	e->jwt_svid_ttl = src->jwt_svid_ttl;
	e->admin = src->admin;
	e->downstream = src->downstream;
	e->store_svid = src->store_svid;
	e->expires_at = src->expires_at;
	e->revision_number = src->revision_number;
	e->created_at = src->created_at;
	e->change_rev = src->change_rev;
	if ((r = selector_set_union(&e->selectors, &src->selectors)) != 0)
		goto fail;
	for (i = 0; i < src->nfederates_with; i++)
		if ((r = ds_entry_add_federates_with(e,
		    src->federates_with[i])) != 0)
			goto fail;
	for (i = 0; i < src->ndns_names; i++)
		if ((r = ds_entry_add_dns_name(e, src->dns_names[i])) != 0)
			goto fail;
	*out = e;
	return 0;
fail:
	ds_entry_free(e);
	return r;
}

struct ds_node *
ds_node_new(void)
{
	struct ds_node *n;

	if ((n = calloc(1, sizeof(*n))) == NULL)
		return NULL;
	selector_set_init(&n->selectors);
	return n;
}

void
ds_node_free(struct ds_node *n)
{
	if (n == NULL)
		return;
	free(n->spiffe_id);
	free(n->attestation_type);
	free(n->serial);
	free(n->new_serial);
	selector_set_cleanup(&n->selectors);
	free(n);
}

int
ds_node_banned(const struct ds_node *n)
{
	return (n->serial == NULL || *n->serial == '\0') &&
	    (n->new_serial == NULL || *n->new_serial == '\0');
}

void
ds_entry_list_free(struct ds_entry_list *l)
{
	size_t i;

	for (i = 0; i < l->n; i++)
		ds_entry_free(l->v[i]);
	free(l->v);
	free(l->next_token);
	memset(l, 0, sizeof(*l));
}

void
ds_node_list_free(struct ds_node_list *l)
{
	size_t i;

	for (i = 0; i < l->n; i++)
		ds_node_free(l->v[i]);
	free(l->v);
	free(l->next_token);
	memset(l, 0, sizeof(*l));
}

void
ds_audit_free_members(struct ds_audit *a)
{
	free(a->kind);
	free(a->actor);
	free(a->detail_json);
	memset(a, 0, sizeof(*a));
}

/* ---- matching, shared by backends -------------------------------------- */

/*
 * As SPIRE, whose queries join on the selector rows: a record with no
 * selectors (a node may have none) matches no selector filter.
 */
static int
sel_match(const struct selector_set *have, const struct selector_set *want,
    enum ds_match m)
{
	size_t i;

	if (have->n == 0)
		return 0;
	switch (m) {
	case DS_MATCH_EXACT:
		return selector_set_equal(have, want);
	case DS_MATCH_SUBSET:
		return selector_set_is_subset(have, want);
	case DS_MATCH_SUPERSET:
		return selector_set_is_subset(want, have);
	case DS_MATCH_ANY:
		for (i = 0; i < want->n; i++)
			if (selector_set_contains(have, want->sel[i].type,
			    want->sel[i].value))
				return 1;
		return 0;
	}
	return 0;
}

/* Compare trust domains as IDs: "td" and "spiffe://td" are the same. */
static int
td_eq(const char *a, const char *b)
{
	if (strncmp(a, "spiffe://", 9) == 0)
		a += 9;
	if (strncmp(b, "spiffe://", 9) == 0)
		b += 9;
	return strcmp(a, b) == 0;
}

static int
has_td(const char *const *v, size_t n, const char *td)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (td_eq(v[i], td))
			return 1;
	return 0;
}

/*
 * As SPIRE: an entry that federates with nothing never matches a
 * federates_with filter, not even SUBSET.
 */
static int
fed_match(const struct ds_entry *e, const char *const *want, size_t nwant,
    enum ds_match m)
{
	const char *const	*have = (const char *const *)e->federates_with;
	size_t			 i, hits = 0, inside = 0;

	if (e->nfederates_with == 0)
		return 0;
	for (i = 0; i < nwant; i++)
		hits += has_td(have, e->nfederates_with, want[i]);
	for (i = 0; i < e->nfederates_with; i++)
		inside += has_td(want, nwant, have[i]);
	switch (m) {
	case DS_MATCH_EXACT:
		return hits == nwant && inside == e->nfederates_with;
	case DS_MATCH_SUBSET:
		return inside == e->nfederates_with;
	case DS_MATCH_SUPERSET:
		return hits == nwant;
	case DS_MATCH_ANY:
		return hits > 0;
	}
	return 0;
}

int
ds_entry_matches(const struct ds_entry *e, const struct ds_entry_filter *f)
{
	if (f == NULL)
		return 1;
	if (f->spiffe_id != NULL && strcmp(f->spiffe_id, e->spiffe_id) != 0)
		return 0;
	if (f->parent_id != NULL && strcmp(f->parent_id, e->parent_id) != 0)
		return 0;
	if (f->hint != NULL && strcmp(f->hint, e->hint) != 0)
		return 0;
	if (f->downstream_only && !e->downstream)
		return 0;
	if (f->selectors != NULL && f->selectors->n > 0 &&
	    !sel_match(&e->selectors, f->selectors, f->selector_match))
		return 0;
	if (f->nfederates_with > 0 && !fed_match(e, f->federates_with,
	    f->nfederates_with, f->federates_match))
		return 0;
	return 1;
}

int
ds_node_matches(const struct ds_node *n, const struct ds_node_filter *f)
{
	if (f == NULL)
		return 1;
	if (f->attestation_type != NULL && strcmp(f->attestation_type,
	    n->attestation_type) != 0)
		return 0;
	if ((f->banned == 1 && !ds_node_banned(n)) || (f->banned == 2 &&
	    ds_node_banned(n)))
		return 0;
	if (f->expires_before > 0 && n->expires_at >= f->expires_before)
		return 0;
	if ((f->can_reattest == 1 && !n->can_reattest) ||
	    (f->can_reattest == 2 && n->can_reattest))
		return 0;
	if (f->selectors != NULL && f->selectors->n > 0 &&
	    !sel_match(&n->selectors, f->selectors, f->selector_match))
		return 0;
	return 1;
}

int
ds_selectors_hash(const struct selector_set *s, char out[65])
{
	EVP_MD_CTX	*ctx;
	uint8_t		 md[32];
	unsigned	 len;
	size_t		 i;
	int		 ok;

	if ((ctx = EVP_MD_CTX_new()) == NULL)
		return WICK_ERR_CRYPTO;
	ok = EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) == 1;
	/* NUL-separated: neither type nor value can hold a NUL. */
	for (i = 0; ok && i < s->n; i++)
		ok = EVP_DigestUpdate(ctx, s->sel[i].type,
		    strlen(s->sel[i].type) + 1) == 1 &&
		    EVP_DigestUpdate(ctx, s->sel[i].value,
		    strlen(s->sel[i].value) + 1) == 1;
	ok = ok && EVP_DigestFinal_ex(ctx, md, &len) == 1 && len == 32;
	EVP_MD_CTX_free(ctx);
	if (!ok)
		return WICK_ERR_CRYPTO;
	hex_encode(md, sizeof(md), out);
	return 0;
}

/* Backends see only the token's hash. */
static int
token_hash(const char *token, char out[65])
{
	return sha256_hex(token, strlen(token), out);
}

/* ---- opening ----------------------------------------------------------- */

static const struct {
	const char	*type;
	int		(*open)(const char *, struct ds **, const char **);
} backends[] = {
	{ "sqlite3", ds_sqlite_open },
};

int
ds_open(const char *type, const char *conn, struct ds **out,
    const char **why)
{
	const char	*w = NULL;
	size_t		 i;

	*out = NULL;
	if (why == NULL)
		why = &w;
	*why = NULL;
	if (conn == NULL || *conn == '\0') {
		*why = "empty connection string";
		return WICK_ERR_CONFIG;
	}
	for (i = 0; type != NULL && i < sizeof(backends) / sizeof(backends[0]);
	    i++)
		if (strcmp(type, backends[i].type) == 0)
			return backends[i].open(conn, out, why);
	*why = "unknown database type (wick supports sqlite3)";
	return WICK_ERR_CONFIG;
}

void
ds_close(struct ds *ds)
{
	if (ds != NULL)
		ds->ops->close(ds);
}

const char *
ds_backend(const struct ds *ds)
{
	return ds->ops->name;
}

/* ---- checks before the backend ----------------------------------------- */

/* A key that cannot exist is simply not found. */
static int
key_ok(const char *key, size_t max)
{
	return key == NULL || *key == '\0' || strlen(key) > max ?
	    WICK_ERR_NOT_FOUND : 0;
}

/* Every string of v is present and at most max long. */
static int
strings_ok(char *const *v, size_t n, size_t max)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (v[i] == NULL)
			return WICK_ERR_INVALID;
		if (strlen(v[i]) > max)
			return WICK_ERR_LIMIT;
	}
	return 0;
}

static int
entry_ok(const struct ds_entry *e, int need_id)
{
	int r;

	if (e == NULL || e->spiffe_id == NULL || *e->spiffe_id == '\0' ||
	    e->parent_id == NULL || *e->parent_id == '\0' ||
	    e->selectors.n == 0 || (need_id && (e->id == NULL ||
	    *e->id == '\0')))
		return WICK_ERR_INVALID;
	if (e->x509_svid_ttl < 0 || e->jwt_svid_ttl < 0 || e->expires_at < 0)
		return WICK_ERR_INVALID;
	if ((e->id != NULL && strlen(e->id) > DS_ENTRY_ID_MAX) ||
	    strlen(e->spiffe_id) > SPIFFEID_MAX_LEN ||
	    strlen(e->parent_id) > SPIFFEID_MAX_LEN ||
	    (e->hint != NULL && strlen(e->hint) > DS_HINT_MAX) ||
	    e->ndns_names > DS_MAX_DNS_NAMES ||
	    e->nfederates_with > DS_MAX_FEDERATES_WITH ||
	    e->selectors.n > SELECTOR_MAX_COUNT)
		return WICK_ERR_LIMIT;
	if ((r = strings_ok(e->dns_names, e->ndns_names,
	    SPIFFEID_MAX_LEN)) != 0)
		return r;
	return strings_ok(e->federates_with, e->nfederates_with,
	    SPIFFEID_MAX_LEN);
}

static int
batch(struct ds *ds, struct ds_entry **v, size_t n, int *res, int64_t now,
    int update)
{
	size_t	i;
	int	any = 0;

	if (n > DS_MAX_BATCH)
		return WICK_ERR_LIMIT;
	for (i = 0; i < n; i++) {
		res[i] = entry_ok(v[i], update);
		any |= res[i] == 0;
	}
	if (!any)
		return 0;
	/* Entries come back with hint "", never NULL. */
	for (i = 0; i < n; i++)
		if (res[i] == 0 && v[i]->hint == NULL &&
		    (v[i]->hint = strdup("")) == NULL) {
			/* Nothing written: no item may claim success. */
			for (i = 0; i < n; i++)
				if (res[i] == 0)
					res[i] = WICK_ERR_ALLOC;
			return WICK_ERR_ALLOC;
		}
	return update ? ds->ops->entries_update(ds, v, n, res, now) :
	    ds->ops->entries_create(ds, v, n, res, now);
}

int
ds_entries_create(struct ds *ds, struct ds_entry **v, size_t n, int *res,
    int64_t now)
{
	return batch(ds, v, n, res, now, 0);
}

int
ds_entries_update(struct ds *ds, struct ds_entry **v, size_t n, int *res,
    int64_t now)
{
	return batch(ds, v, n, res, now, 1);
}

int
ds_entries_delete(struct ds *ds, const char *const *ids, size_t n, int *res,
    int64_t now)
{
	size_t	i;
	int	any = 0;

	if (n > DS_MAX_BATCH)
		return WICK_ERR_LIMIT;
	for (i = 0; i < n; i++) {
		res[i] = key_ok(ids[i], DS_ENTRY_ID_MAX);
		any |= res[i] == 0;
	}
	return any ? ds->ops->entries_delete(ds, ids, n, res, now) : 0;
}

int
ds_entry_get(struct ds *ds, const char *id, struct ds_entry **out)
{
	int r = key_ok(id, DS_ENTRY_ID_MAX);

	*out = NULL;
	return r != 0 ? r : ds->ops->entry_get(ds, id, out);
}

static int
entry_filter_ok(const struct ds_entry_filter *f)
{
	if (f == NULL)
		return 0;
	if ((unsigned)f->selector_match > DS_MATCH_ANY ||
	    (unsigned)f->federates_match > DS_MATCH_ANY ||
	    (f->nfederates_with > 0 && f->federates_with == NULL))
		return WICK_ERR_INVALID;
	if (f->nfederates_with > DS_MAX_FEDERATES_WITH)
		return WICK_ERR_LIMIT;
	return strings_ok((char *const *)f->federates_with, f->nfederates_with,
	    SPIFFEID_MAX_LEN);
}

/* The page token is the last key returned: an entry ID or SPIFFE ID. */
static int
page_ok(const char *token, size_t max, size_t *limit)
{
	if (*limit == 0 || *limit > DS_MAX_PAGE)
		*limit = DS_MAX_PAGE;
	return token != NULL && strlen(token) > max ? WICK_ERR_INVALID : 0;
}

int
ds_entries_list(struct ds *ds, const struct ds_entry_filter *f,
    const char *token, size_t limit, struct ds_entry_list *out)
{
	int r;

	memset(out, 0, sizeof(*out));
	if ((r = entry_filter_ok(f)) != 0 ||
	    (r = page_ok(token, DS_ENTRY_ID_MAX, &limit)) != 0)
		return r;
	return ds->ops->entries_list(ds, f, token != NULL && *token != '\0' ?
	    token : NULL, limit, out);
}

int
ds_entries_count(struct ds *ds, const struct ds_entry_filter *f,
    int64_t *count)
{
	int r = entry_filter_ok(f);

	*count = 0;
	return r != 0 ? r : ds->ops->entries_count(ds, f, count);
}

int
ds_entries_prune(struct ds *ds, int64_t now, size_t *n)
{
	return ds->ops->entries_prune(ds, now, n);
}

int
ds_revision(struct ds *ds, int64_t *rev)
{
	*rev = 0;
	return ds->ops->revision(ds, rev);
}

int
ds_changes_since(struct ds *ds, int64_t since, size_t limit, ds_change_fn *fn,
    void *arg)
{
	return ds->ops->changes_since(ds, since, limit, fn, arg);
}

int
ds_node_create(struct ds *ds, const struct ds_node *n, int64_t now)
{
	if (n == NULL || n->spiffe_id == NULL || *n->spiffe_id == '\0' ||
	    n->attestation_type == NULL)
		return WICK_ERR_INVALID;
	if (strlen(n->spiffe_id) > SPIFFEID_MAX_LEN ||
	    n->selectors.n > SELECTOR_MAX_COUNT)
		return WICK_ERR_LIMIT;
	return ds->ops->node_create(ds, n, now);
}

int
ds_node_get(struct ds *ds, const char *id, struct ds_node **out)
{
	int r = key_ok(id, SPIFFEID_MAX_LEN);

	*out = NULL;
	return r != 0 ? r : ds->ops->node_get(ds, id, out);
}

int
ds_node_set_serials(struct ds *ds, const char *id, const char *serial,
    int64_t exp, const char *new_serial, int64_t new_exp, int64_t now)
{
	int r = key_ok(id, SPIFFEID_MAX_LEN);

	return r != 0 ? r : ds->ops->node_set_serials(ds, id, serial != NULL ?
	    serial : "", exp, new_serial != NULL ? new_serial : "", new_exp,
	    now);
}

int
ds_node_set_selectors(struct ds *ds, const char *id,
    const struct selector_set *s, int64_t now)
{
	int r = key_ok(id, SPIFFEID_MAX_LEN);

	if (r == 0 && (s == NULL || s->n > SELECTOR_MAX_COUNT))
		r = s == NULL ? WICK_ERR_INVALID : WICK_ERR_LIMIT;
	return r != 0 ? r : ds->ops->node_set_selectors(ds, id, s, now);
}

int
ds_node_ban(struct ds *ds, const char *id, int64_t now)
{
	int r = key_ok(id, SPIFFEID_MAX_LEN);

	return r != 0 ? r : ds->ops->node_ban(ds, id, now);
}

int
ds_node_delete(struct ds *ds, const char *id, int64_t now)
{
	int r = key_ok(id, SPIFFEID_MAX_LEN);

	return r != 0 ? r : ds->ops->node_delete(ds, id, now);
}

static int
node_filter_ok(const struct ds_node_filter *f)
{
	if (f != NULL && ((unsigned)f->selector_match > DS_MATCH_ANY ||
	    f->banned < 0 || f->banned > 2 || f->can_reattest < 0 ||
	    f->can_reattest > 2))
		return WICK_ERR_INVALID;
	return 0;
}

int
ds_nodes_list(struct ds *ds, const struct ds_node_filter *f,
    const char *token, size_t limit, struct ds_node_list *out)
{
	int r;

	memset(out, 0, sizeof(*out));
	if ((r = node_filter_ok(f)) != 0 ||
	    (r = page_ok(token, SPIFFEID_MAX_LEN, &limit)) != 0)
		return r;
	return ds->ops->nodes_list(ds, f, token != NULL && *token != '\0' ?
	    token : NULL, limit, out);
}

int
ds_nodes_count(struct ds *ds, const struct ds_node_filter *f, int64_t *count)
{
	int r = node_filter_ok(f);

	*count = 0;
	return r != 0 ? r : ds->ops->nodes_count(ds, f, count);
}

/* Hash a token for a backend call; fn is create or consume. */
static int
with_token_hash(struct ds *ds, const char *token, int64_t t, int bad,
    int (*fn)(struct ds *, const char *, int64_t))
{
	char	h[65];
	int	r;

	if (key_ok(token, DS_TOKEN_MAX) != 0)
		return bad;
	if ((r = token_hash(token, h)) == 0)
		r = fn(ds, h, t);
	OPENSSL_cleanse(h, sizeof(h));
	return r;
}

int
ds_join_token_create(struct ds *ds, const char *token, int64_t expires_at)
{
	return with_token_hash(ds, token, expires_at, WICK_ERR_INVALID,
	    ds->ops->join_token_create);
}

int
ds_join_token_consume(struct ds *ds, const char *token, int64_t now)
{
	return with_token_hash(ds, token, now, WICK_ERR_NOT_FOUND,
	    ds->ops->join_token_consume);
}

int
ds_join_tokens_prune(struct ds *ds, int64_t now, size_t *n)
{
	return ds->ops->join_tokens_prune(ds, now, n);
}

static int
blob_ok(const uint8_t *p, size_t n)
{
	if (p == NULL && n > 0)
		return WICK_ERR_INVALID;
	return n > DS_MAX_BLOB ? WICK_ERR_LIMIT : 0;
}

int
ds_bundle_set(struct ds *ds, const char *td, const uint8_t *p, size_t n,
    int64_t now)
{
	int r = blob_ok(p, n);

	if (r == 0 && key_ok(td, SPIFFEID_MAX_LEN) != 0)
		r = WICK_ERR_INVALID;
	return r != 0 ? r : ds->ops->bundle_set(ds, td, p, n, now);
}

int
ds_bundle_get(struct ds *ds, const char *td, uint8_t **p, size_t *n)
{
	int r = key_ok(td, SPIFFEID_MAX_LEN);

	*p = NULL;
	*n = 0;
	return r != 0 ? r : ds->ops->bundle_get(ds, td, p, n);
}

int
ds_bundle_delete(struct ds *ds, const char *td, int64_t now)
{
	int r = key_ok(td, SPIFFEID_MAX_LEN);

	return r != 0 ? r : ds->ops->bundle_delete(ds, td, now);
}

int
ds_bundles_foreach(struct ds *ds, ds_bundle_fn *fn, void *arg)
{
	return ds->ops->bundles_foreach(ds, fn, arg);
}

int
ds_ca_journal_set(struct ds *ds, const uint8_t *p, size_t n, int64_t now)
{
	int r = blob_ok(p, n);

	return r != 0 ? r : ds->ops->ca_journal_set(ds, p, n, now);
}

int
ds_ca_journal_get(struct ds *ds, uint8_t **p, size_t *n)
{
	*p = NULL;
	*n = 0;
	return ds->ops->ca_journal_get(ds, p, n);
}

int
ds_audit_append(struct ds *ds, int64_t at, const char *kind,
    const char *actor, int ok, const char *detail)
{
	if (kind == NULL || actor == NULL)
		return WICK_ERR_INVALID;
	if (detail != NULL && strlen(detail) > DS_MAX_BLOB)
		return WICK_ERR_LIMIT;
	return ds->ops->audit_append(ds, at, kind, actor, ok,
	    detail != NULL ? detail : "{}");
}

int
ds_audit_since(struct ds *ds, int64_t after, size_t limit, ds_audit_fn *fn,
    void *arg)
{
	return ds->ops->audit_since(ds, after, limit, fn, arg);
}

int
ds_check(struct ds *ds, const char **why)
{
	const char *w;

	return ds->ops->check(ds, why != NULL ? why : &w);
}
