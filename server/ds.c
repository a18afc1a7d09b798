/*
 * ds.c: the datastore interface: records, the limits of ds.h checked
 * before a backend sees anything (so no backend allocates or runs SQL
 * for a request that breaks them), matching shared by backends, and
 * dispatch to the backend's ops.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "ds_int.h"
#include "encode.h"
#include "spiffeid.h"

/*
 * Backend calls, timed when the daemon asked (ds_set_timer()):
 *	return TIMED(ds, ds->ops->entry_get(ds, id, out));
 * The conditional sequences the start before the call.
 */
#define TIMED(ds, call)	timed_end((ds), timed_begin(ds) ? 0 : (call))

static int
timed_begin(struct ds *ds)
{
	struct timespec ts;

	if (ds->timer != NULL && ds->depth++ == 0) {
		clock_gettime(CLOCK_MONOTONIC, &ts);
		ds->t0 = (uint64_t)ts.tv_sec * 1000000000u +
		    (uint64_t)ts.tv_nsec;
	}
	return 0;
}

static int
timed_end(struct ds *ds, int r)
{
	struct timespec	ts;
	uint64_t	now;

	if (ds->timer != NULL && ds->depth > 0 && --ds->depth == 0) {
		clock_gettime(CLOCK_MONOTONIC, &ts);
		now = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
		ds->timer(ds->timer_arg, now > ds->t0 ? now - ds->t0 : 0);
	}
	return r;
}

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
	free(a->subject);
	free(a->detail_json);
	memset(a, 0, sizeof(*a));
}

/* ---- the audit chain, shared by backends -------------------------------- */

static int
hash_field(EVP_MD_CTX *ctx, const char *v)
{
	uint8_t		len[4];
	size_t		n = v != NULL ? strlen(v) : 0;

	if (n > UINT32_MAX)
		return 0;
	len[0] = (uint8_t)(n >> 24);
	len[1] = (uint8_t)(n >> 16);
	len[2] = (uint8_t)(n >> 8);
	len[3] = (uint8_t)n;
	return EVP_DigestUpdate(ctx, len, 4) == 1 && (n == 0 ||
	    EVP_DigestUpdate(ctx, v, n) == 1);
}

static int
unhex(const char *h, uint8_t out[32])
{
	if (h == NULL || strlen(h) != 64)
		return WICK_ERR_INVALID;
	return hex_decode(h, 32, out);
}

int
ds_audit_hash(const struct ds_audit *a, char out[DS_AUDIT_HASH_HEX])
{
	static const char	 tag[] = "wick-audit-v1";
	EVP_MD_CTX		*ctx;
	uint8_t			 num[16], prev[32], md[32], ok;
	unsigned		 len;
	uint64_t		 seq = (uint64_t)a->seq, at = (uint64_t)a->at;
	int			 i, good;

	out[0] = '\0';
	if (unhex(a->prev_hash, prev) != 0)
		return WICK_ERR_INVALID;
	for (i = 0; i < 8; i++) {
		num[i] = (uint8_t)(seq >> (56 - 8 * i));
		num[8 + i] = (uint8_t)(at >> (56 - 8 * i));
	}
	ok = a->ok != 0;
	if ((ctx = EVP_MD_CTX_new()) == NULL)
		return WICK_ERR_CRYPTO;
	good = EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) == 1 &&
	    EVP_DigestUpdate(ctx, tag, sizeof(tag)) == 1 &&
	    EVP_DigestUpdate(ctx, num, sizeof(num)) == 1 &&
	    hash_field(ctx, a->kind) && hash_field(ctx, a->actor) &&
	    hash_field(ctx, a->subject) &&
	    EVP_DigestUpdate(ctx, &ok, 1) == 1 &&
	    hash_field(ctx, a->detail_json) &&
	    EVP_DigestUpdate(ctx, prev, sizeof(prev)) == 1 &&
	    EVP_DigestFinal_ex(ctx, md, &len) == 1 && len == 32;
	EVP_MD_CTX_free(ctx);
	if (!good)
		return WICK_ERR_CRYPTO;
	hex_encode(md, sizeof(md), out);
	return 0;
}

int
ds_audit_verify_event(struct ds_audit_verify *v, const struct ds_audit *a)
{
	char	h[DS_AUDIT_HASH_HEX];
	int	r;

	if (a->seq != v->next_seq) {
		v->bad_seq = v->next_seq;
		if (a->seq > v->next_seq)
			snprintf(v->why, sizeof(v->why), "missing: the chain "
			    "jumps from seq %lld to %lld (events removed)",
			    (long long)v->next_seq - 1, (long long)a->seq);
		else
			snprintf(v->why, sizeof(v->why), "out of order: seq "
			    "%lld found where %lld was expected",
			    (long long)a->seq, (long long)v->next_seq);
		return WICK_ERR_STATE;
	}
	if (strcmp(a->prev_hash, v->prev_hash) != 0) {
		v->bad_seq = a->seq;
		snprintf(v->why, sizeof(v->why), "broken link: its prev_hash "
		    "is not the hash of seq %lld (events reordered or "
		    "replaced, or seq %lld changed with its hash)",
		    (long long)a->seq - 1, (long long)a->seq - 1);
		return WICK_ERR_STATE;
	}
	if ((r = ds_audit_hash(a, h)) != 0 && r != WICK_ERR_INVALID)
		return r;
	if (r != 0 || strcmp(h, a->hash) != 0) {
		v->bad_seq = a->seq;
		snprintf(v->why, sizeof(v->why), "hash mismatch: the event "
		    "was changed after it was recorded");
		return WICK_ERR_STATE;
	}
	memcpy(v->prev_hash, a->hash, sizeof(v->prev_hash));
	v->next_seq++;
	v->count++;
	return 0;
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
	int		(*open_readonly)(const char *, struct ds **,
			    const char **);
} backends[] = {
	{ "sqlite3", ds_sqlite_open, ds_sqlite_open_readonly },
	{ "postgres", ds_pg_open, ds_pg_open_readonly },
};

/* The backend of type, opened read-only or not. */
static int
open_backend(const char *type, const char *conn, int readonly,
    struct ds **out, const char **why)
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
			return readonly ? backends[i].open_readonly(conn, out,
			    why) : backends[i].open(conn, out, why);
	*why = "unknown database type (wick supports sqlite3 and postgres)";
	return WICK_ERR_CONFIG;
}

int
ds_open_readonly(const char *type, const char *conn, struct ds **out,
    const char **why)
{
	return open_backend(type, conn, 1, out, why);
}

int
ds_open(const char *type, const char *conn, struct ds **out,
    const char **why)
{
	return open_backend(type, conn, 0, out, why);
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

const char *
ds_conn_shown(const char *type, const char *conn)
{
	/* A PostgreSQL connection string may hold a password. */
	if (type != NULL && strcmp(type, "postgres") == 0)
		return "the PostgreSQL database";
	return conn != NULL ? conn : "";
}

void
ds_set_timer(struct ds *ds, void (*fn)(void *, uint64_t), void *arg)
{
	ds->timer = fn;
	ds->timer_arg = arg;
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
	return TIMED(ds, ds_batch_run(ds, ds->ops->batch, update ?
	    DS_BATCH_UPDATE : DS_BATCH_CREATE, v, NULL, n, res, now));
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
	return any ? TIMED(ds, ds_batch_run(ds, ds->ops->batch,
	    DS_BATCH_DELETE, NULL, ids, n, res, now)) : 0;
}

int
ds_entry_get(struct ds *ds, const char *id, struct ds_entry **out)
{
	int r = key_ok(id, DS_ENTRY_ID_MAX);

	*out = NULL;
	return r != 0 ? r : TIMED(ds, ds->ops->entry_get(ds, id, out));
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

/* List entries (limit > 0) or count them (out NULL) through the
 * backend's walk op. */
static int
walk_entries(struct ds *ds, const struct ds_entry_filter *f,
    const char *token, size_t limit, struct ds_entry_list *out,
    int64_t *count)
{
	struct ds_walk	w = { 1, f, NULL, NULL, 0, limit, 0, NULL };
	int		r;

	if (out == NULL) {
		r = ds->ops->walk(ds, &w, NULL);
		*count = r == 0 ? (int64_t)w.n : 0;
		return r;
	}
	if ((w.ev = out->v = calloc(limit, sizeof(*out->v))) == NULL)
		return WICK_ERR_ALLOC;
	r = ds->ops->walk(ds, &w, token);
	out->n = w.n;
	if (r == 0 && w.more && (out->next_token = strdup(out->v[out->n -
	    1]->id)) == NULL)
		r = WICK_ERR_ALLOC;
	if (r != 0)
		ds_entry_list_free(out);
	return r;
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
	return TIMED(ds, walk_entries(ds, f, token != NULL &&
	    *token != '\0' ? token : NULL, limit, out, NULL));
}

int
ds_entries_count(struct ds *ds, const struct ds_entry_filter *f,
    int64_t *count)
{
	int r = entry_filter_ok(f);

	*count = 0;
	return r != 0 ? r : TIMED(ds, walk_entries(ds, f, NULL, SIZE_MAX, NULL,
	    count));
}

/* ds_entries_load() for a backend without its own: page by page. */
static int
load_paged(struct ds *ds, ds_entry_fn *fn, void *arg)
{
	struct ds_entry_list	 l;
	char			*tok = NULL;
	size_t			 i;
	int			 r;

	do {
		memset(&l, 0, sizeof(l));
		r = walk_entries(ds, NULL, tok, DS_MAX_PAGE, &l, NULL);
		free(tok);
		tok = NULL;
		if (r != 0)
			return r;
		for (i = 0; i < l.n && r == 0; i++) {
			r = fn(arg, l.v[i]);
			l.v[i] = NULL;
		}
		tok = l.next_token;
		l.next_token = NULL;
		ds_entry_list_free(&l);
	} while (r == 0 && tok != NULL);
	free(tok);
	return r;
}

int
ds_entries_load(struct ds *ds, ds_entry_fn *fn, void *arg)
{
	return TIMED(ds, ds->ops->entries_load != NULL ?
	    ds->ops->entries_load(ds, fn, arg) : load_paged(ds, fn, arg));
}

int
ds_entries_prune(struct ds *ds, int64_t now, size_t *n)
{
	return TIMED(ds, ds->ops->entries_prune(ds, now, n));
}

int
ds_revision(struct ds *ds, int64_t *rev)
{
	*rev = 0;
	return TIMED(ds, ds->ops->revision(ds, rev));
}

int
ds_changes_since(struct ds *ds, int64_t since, size_t limit, ds_change_fn *fn,
    void *arg)
{
	return TIMED(ds, ds->ops->changes_since(ds, since, limit, fn, arg));
}

int
ds_changes_prune(struct ds *ds, int64_t before, size_t *n)
{
	*n = 0;
	return TIMED(ds, ds->ops->changes_prune(ds, before, n));
}

int
ds_changes_floor(struct ds *ds, int64_t *rev)
{
	*rev = 0;
	return TIMED(ds, ds->ops->changes_floor(ds, rev));
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
	return TIMED(ds, ds->ops->node_create(ds, n, now));
}

int
ds_node_get(struct ds *ds, const char *id, struct ds_node **out)
{
	int r = key_ok(id, SPIFFEID_MAX_LEN);

	*out = NULL;
	return r != 0 ? r : TIMED(ds, ds->ops->node_get(ds, id, out));
}

int
ds_node_set_serials(struct ds *ds, const char *id, const char *serial,
    int64_t exp, const char *new_serial, int64_t new_exp, int64_t now)
{
	int r = key_ok(id, SPIFFEID_MAX_LEN);

	return r != 0 ? r : TIMED(ds, ds->ops->node_set_serials(ds, id,
	    serial != NULL ? serial : "", exp, new_serial != NULL ?
	    new_serial : "", new_exp, now));
}

int
ds_node_set_selectors(struct ds *ds, const char *id,
    const struct selector_set *s, int64_t now)
{
	int r = key_ok(id, SPIFFEID_MAX_LEN);

	if (r == 0 && (s == NULL || s->n > SELECTOR_MAX_COUNT))
		r = s == NULL ? WICK_ERR_INVALID : WICK_ERR_LIMIT;
	return r != 0 ? r : TIMED(ds, ds->ops->node_set_selectors(ds, id, s,
	    now));
}

int
ds_node_ban(struct ds *ds, const char *id, int64_t now)
{
	int r = key_ok(id, SPIFFEID_MAX_LEN);

	return r != 0 ? r : TIMED(ds, ds->ops->node_ban(ds, id, now));
}

int
ds_node_delete(struct ds *ds, const char *id, int64_t now)
{
	int r = key_ok(id, SPIFFEID_MAX_LEN);

	return r != 0 ? r : TIMED(ds, ds->ops->node_delete(ds, id, now));
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

/* As walk_entries(), for nodes. */
static int
walk_nodes(struct ds *ds, const struct ds_node_filter *f, const char *token,
    size_t limit, struct ds_node_list *out, int64_t *count)
{
	struct ds_walk	w = { 0, f, NULL, NULL, 0, limit, 0, NULL };
	int		r;

	if (out == NULL) {
		r = ds->ops->walk(ds, &w, NULL);
		*count = r == 0 ? (int64_t)w.n : 0;
		return r;
	}
	if ((w.nv = out->v = calloc(limit, sizeof(*out->v))) == NULL)
		return WICK_ERR_ALLOC;
	r = ds->ops->walk(ds, &w, token);
	out->n = w.n;
	if (r == 0 && w.more && (out->next_token = strdup(out->v[out->n -
	    1]->spiffe_id)) == NULL)
		r = WICK_ERR_ALLOC;
	if (r != 0)
		ds_node_list_free(out);
	return r;
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
	return TIMED(ds, walk_nodes(ds, f, token != NULL &&
	    *token != '\0' ? token : NULL, limit, out, NULL));
}

int
ds_nodes_count(struct ds *ds, const struct ds_node_filter *f, int64_t *count)
{
	int r = node_filter_ok(f);

	*count = 0;
	return r != 0 ? r : TIMED(ds, walk_nodes(ds, f, NULL, SIZE_MAX, NULL,
	    count));
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
		r = TIMED(ds, fn(ds, h, t));
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
	return TIMED(ds, ds->ops->join_tokens_prune(ds, now, n));
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
	return r != 0 ? r : TIMED(ds, ds->ops->bundle_set(ds, td, p, n, now));
}

int
ds_bundle_get(struct ds *ds, const char *td, uint8_t **p, size_t *n)
{
	int r = key_ok(td, SPIFFEID_MAX_LEN);

	*p = NULL;
	*n = 0;
	return r != 0 ? r : TIMED(ds, ds->ops->bundle_get(ds, td, p, n));
}

int
ds_bundle_delete(struct ds *ds, const char *td, int64_t now)
{
	int r = key_ok(td, SPIFFEID_MAX_LEN);

	return r != 0 ? r : TIMED(ds, ds->ops->bundle_delete(ds, td, now));
}

int
ds_bundles_foreach(struct ds *ds, ds_bundle_fn *fn, void *arg)
{
	return TIMED(ds, ds->ops->bundles_foreach(ds, fn, arg));
}

static int
server_id_ok(const char *id)
{
	size_t n = id != NULL ? strlen(id) : 0;

	return n > 0 && n <= DS_MAX_SERVER_ID ? 0 : WICK_ERR_INVALID;
}

int
ds_ca_journal_set(struct ds *ds, const char *server_id, const uint8_t *p,
    size_t n, int64_t now)
{
	int r;

	if ((r = server_id_ok(server_id)) != 0 || (r = blob_ok(p, n)) != 0)
		return r;
	return TIMED(ds, ds->ops->ca_journal_set(ds, server_id, p, n, now));
}

int
ds_ca_journal_get(struct ds *ds, const char *server_id, uint8_t **p,
    size_t *n)
{
	int r;

	*p = NULL;
	*n = 0;
	if ((r = server_id_ok(server_id)) != 0)
		return r;
	return TIMED(ds, ds->ops->ca_journal_get(ds, server_id, p, n));
}

int
ds_tx_begin(struct ds *ds)
{
	return TIMED(ds, ds->ops->tx_begin(ds));
}

int
ds_tx_end(struct ds *ds, int commit)
{
	return TIMED(ds, ds->ops->tx_end(ds, commit));
}

int
ds_audit_append(struct ds *ds, int64_t at, const char *kind,
    const char *actor, int ok, const char *detail)
{
	return ds_audit_record(ds, at, kind, actor, NULL, ok, detail);
}

/* The hash covers the bytes stored, so they are made canonical first:
 * the same details always hash alike, whoever wrote them. */
int
ds_audit_record(struct ds *ds, int64_t at, const char *kind,
    const char *actor, const char *subject, int ok, const char *detail)
{
	json_error_t	 jerr;
	json_t		*j;
	char		*canon;
	int		 r;

	if (kind == NULL || actor == NULL)
		return WICK_ERR_INVALID;
	if (detail != NULL && strlen(detail) > DS_MAX_BLOB)
		return WICK_ERR_LIMIT;
	if (subject != NULL && strlen(subject) > DS_MAX_BLOB)
		return WICK_ERR_LIMIT;
	if ((j = json_loads(detail != NULL ? detail : "{}",
	    JSON_REJECT_DUPLICATES, &jerr)) == NULL)
		return WICK_ERR_INVALID;
	if (!json_is_object(j)) {
		json_decref(j);
		return WICK_ERR_INVALID;
	}
	canon = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(j);
	if (canon == NULL)
		return WICK_ERR_ALLOC;
	r = TIMED(ds, ds->ops->audit_append(ds, at, kind, actor,
	    subject != NULL ? subject : "", ok, canon));
	free(canon);
	return r;
}

int
ds_audit_record_canonical(struct ds *ds, int64_t at, const char *kind,
    const char *actor, const char *subject, int ok, const char *detail)
{
	size_t n;

	if (kind == NULL || actor == NULL || detail == NULL)
		return WICK_ERR_INVALID;
	if ((n = strlen(detail)) > DS_MAX_BLOB)
		return WICK_ERR_LIMIT;
	if (subject != NULL && strlen(subject) > DS_MAX_BLOB)
		return WICK_ERR_LIMIT;
	/* What a JSON object's compact encoding at least looks like. */
	if (n < 2 || detail[0] != '{' || detail[n - 1] != '}')
		return WICK_ERR_INVALID;
	return TIMED(ds, ds->ops->audit_append(ds, at, kind, actor,
	    subject != NULL ? subject : "", ok, detail));
}

int
ds_audit_list(struct ds *ds, const struct ds_audit_filter *f, size_t limit,
    ds_audit_fn *fn, void *arg)
{
	static const struct ds_audit_filter none;

	if (limit == 0 || limit > DS_MAX_PAGE)
		limit = DS_MAX_PAGE;
	return TIMED(ds, ds->ops->audit_list(ds, f != NULL ? f : &none, limit,
	    fn, arg));
}

int
ds_audit_verify_step(struct ds *ds, struct ds_audit_verify *v,
    size_t max_rows)
{
	if (v->done)
		return 0;
	if (max_rows == 0 || max_rows > DS_MAX_PAGE)
		max_rows = DS_MAX_PAGE;
	return TIMED(ds, ds->ops->audit_verify_step(ds, v, max_rows));
}

int
ds_audit_prune(struct ds *ds, int64_t before, size_t max_rows, int64_t now,
    size_t *n)
{
	*n = 0;
	if (max_rows == 0 || max_rows > DS_MAX_PAGE)
		max_rows = DS_MAX_PAGE;
	return TIMED(ds, ds->ops->audit_prune(ds, before, max_rows, now, n));
}

int
ds_backup_begin(struct ds *ds, const char *dest, struct ds_backup **out,
    const char **why)
{
	const char *w;

	*out = NULL;
	if (dest == NULL || *dest == '\0')
		return WICK_ERR_INVALID;
	return TIMED(ds, ds->ops->backup_begin(ds, dest, out, why != NULL ?
	    why : &w));
}

int
ds_backup_run(struct ds_backup *b, const char **why)
{
	const char *w;

	return b->ops->backup_run(b, why != NULL ? why : &w);
}

void
ds_backup_free(struct ds_backup *b)
{
	if (b != NULL)
		b->ops->backup_free(b);
}

int
ds_audit_since(struct ds *ds, int64_t after, size_t limit, ds_audit_fn *fn,
    void *arg)
{
	return TIMED(ds, ds->ops->audit_since(ds, after, limit, fn, arg));
}

int
ds_check(struct ds *ds, const char **why)
{
	const char *w;

	return TIMED(ds, ds->ops->check(ds, why != NULL ? why : &w));
}
