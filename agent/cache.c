/*
 * cache.c: the agent's entries, SVIDs, bundles, JWT-SVIDs and subscribers
 * (cache.h).
 */
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "cache.h"
#include "log.h"
#include "spiffeid.h"
#include "xmalloc.h"

#define JWT_BUCKETS	256

struct jwt_cached {
	struct jwt_cached	*hnext;		/* in its bucket */
	struct jwt_cached	*older;		/* insertion order */
	struct jwt_cached	*newer;
	uint32_t		 hash;
	char			*entry_id;
	char			*aud_key;
	char			*token;		/* wiped */
	int64_t			 exp;
	int64_t			 rotate_at;
};

struct cache {
	/* entries, sorted by ID */
	struct cache_entry	**entries;
	size_t			  nentries;
	/* The match index: entries hashed by their first selector,
	 * chained through idx_next. */
	struct cache_entry	**idx;
	size_t			  idx_mask;
	/* Entries hashed by ID, chained through id_next (a binary search
	 * of 10,000 entries touched 14 of them, a cache miss each). */
	struct cache_entry	**by_id;
	int			  names_groups;	/* see cache_names_groups() */
	/* bundles */
	struct bundle		 *bundle;
	struct buf		  bundle_der;	/* its X.509 CAs */
	struct bundle		 *fed[CACHE_MAX_FEDERATED];
	size_t			  nfed;
	/* The JWT keys of the bundles above, decoded on first use (a key's
	 * DER through OpenSSL's decoders costs more than verifying). */
	struct {
		const struct bundle	*of;
		struct cache_keyset	*k;
	}			  jwks[CACHE_MAX_FEDERATED + 1];
	size_t			  njwks;
	/* JWT-SVIDs: hashed by (entry, audiences), oldest first to go */
	struct jwt_cached	 *jwt[JWT_BUCKETS];
	struct jwt_cached	 *oldest, *newest;
	size_t			  njwts;
	struct cache_sub	 *subs;
	struct cache_sub	 *notifying;	/* the next to tell */
};

static void	jwks_clear(struct cache *);

struct cache *
cache_new(void)
{
	struct cache *c = xcalloc(1, sizeof(*c));

	buf_init(&c->bundle_der, BUNDLE_MAX_DOC);
	return c;
}

void
cache_entry_free(struct cache_entry *e)
{
	size_t i;

	if (e == NULL)
		return;
	free(e->id);
	free(e->spiffe_id);
	free(e->hint);
	selector_set_cleanup(&e->selectors);
	for (i = 0; i < e->nfederates_with; i++)
		free(e->federates_with[i]);
	free(e->federates_with);
	free(e->chain_der);
	if (e->key_der != NULL)
		freezero(e->key_der, e->key_len);
	free(e->wit);
	if (e->wit_key != NULL)
		freezero(e->wit_key, strlen(e->wit_key));
	free(e);
}

static void
jwt_free(struct jwt_cached *j)
{
	free(j->entry_id);
	free(j->aud_key);
	if (j->token != NULL)
		freezero(j->token, strlen(j->token));
	free(j);
}

void
cache_free(struct cache *c)
{
	struct jwt_cached	*j;
	size_t			 i;

	if (c == NULL)
		return;
	for (i = 0; i < c->nentries; i++)
		cache_entry_free(c->entries[i]);
	free(c->entries);
	free(c->idx);
	free(c->by_id);
	cache_clear_federated(c);
	bundle_free(c->bundle);
	buf_cleanup(&c->bundle_der);
	jwks_clear(c);
	while ((j = c->oldest) != NULL) {
		c->oldest = j->newer;
		jwt_free(j);
	}
	free(c);
}

/* ---- entries ------------------------------------------------------------ */

size_t
cache_count(const struct cache *c)
{
	return c->nentries;
}

struct cache_entry *
cache_entry_at(struct cache *c, size_t i)
{
	return i < c->nentries ? c->entries[i] : NULL;
}

static uint32_t	str_hash(const char *);

struct cache_entry *
cache_find(struct cache *c, const char *id)
{
	struct cache_entry *e;

	if (c->by_id == NULL)
		return NULL;
	for (e = c->by_id[str_hash(id) & c->idx_mask]; e != NULL;
	    e = e->id_next)
		if (strcmp(e->id, id) == 0)
			return e;
	return NULL;
}

static int
cmp_entry(const void *x, const void *y)
{
	return strcmp((*(struct cache_entry *const *)x)->id,
	    (*(struct cache_entry *const *)y)->id);
}

/*
 * Sorts v by ID.  A sync's entries come as two sorted runs (the changed
 * entries, then the unchanged ones): those are merged in linear time;
 * any other order is sorted.
 */
static void
sort_entries(struct cache_entry **v, size_t n)
{
	struct cache_entry	**t;
	size_t			  k, i, j, o;

	for (k = 1; k < n && strcmp(v[k - 1]->id, v[k]->id) <= 0; k++)
		;
	if (k >= n)
		return;
	for (i = k + 1; i < n && strcmp(v[i - 1]->id, v[i]->id) <= 0; i++)
		;
	if (i < n || (t = reallocarray(NULL, k, sizeof(*t))) == NULL) {
		qsort(v, n, sizeof(*v), cmp_entry);
		return;
	}
	/* v[0..k) and v[k..n) are sorted: merge, the first run moved out. */
	memcpy(t, v, k * sizeof(*t));
	for (i = 0, j = k, o = 0; i < k; o++)
		if (j < n && strcmp(v[j]->id, t[i]->id) < 0)
			v[o] = v[j++];
		else
			v[o] = t[i++];
	free(t);
}

/* FNV-1a of a string, and of a selector. */
static uint32_t
fnv_more(uint32_t h, const char *p)
{
	for (; *p != '\0'; p++)
		h = (h ^ (uint8_t)*p) * 16777619u;
	return h;
}

static uint32_t
str_hash(const char *s)
{
	return fnv_more(2166136261u, s);
}

static uint32_t
sel_hash(const char *type, const char *value)
{
	return fnv_more((fnv_more(2166136261u, type) ^ ':') * 16777619u,
	    value);
}

/*
 * An entry applies when all its selectors are the workload's, so its
 * first selector is one of them: index entries by their first selector
 * and look up only the workload's own selectors, not every entry.  A
 * hash, built in linear time: sorting a sync of 10,000 new entries by
 * ID and by selector held the loop 6-8 ms, merging and hashing 1.2 ms.
 * The hash by ID is built beside it.
 */
static void
index_entries(struct cache *c)
{
	const struct selector_set	*ss;
	struct cache_entry		*e;
	size_t				 i, j, nb = 16;
	uint32_t			 h;

	while (nb < c->nentries)
		nb *= 2;
	free(c->idx);
	free(c->by_id);
	c->idx = xcalloc(nb, sizeof(*c->idx));
	c->by_id = xcalloc(nb, sizeof(*c->by_id));
	c->idx_mask = nb - 1;
	c->names_groups = 0;
	/* Backwards: each chain in ID order. */
	for (i = c->nentries; i-- > 0; ) {
		e = c->entries[i];
		h = str_hash(e->id) & c->idx_mask;
		e->id_next = c->by_id[h];
		c->by_id[h] = e;
		e->idx_next = NULL;
		ss = &e->selectors;
		if (ss->n == 0)
			continue;
		h = sel_hash(ss->sel[0].type, ss->sel[0].value) & c->idx_mask;
		e->idx_next = c->idx[h];
		c->idx[h] = e;
		for (j = 0; j < ss->n && !c->names_groups; j++)
			c->names_groups = strcmp(ss->sel[j].type, "unix") ==
			    0 && strncmp(ss->sel[j].value, "supplementary_",
			    14) == 0;
	}
}

void
cache_set_entries(struct cache *c, struct cache_entry **v, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		v[i]->kept = 1;
	for (i = 0; i < c->nentries; i++)
		if (!c->entries[i]->kept)
			cache_entry_free(c->entries[i]);
	for (i = 0; i < n; i++)
		v[i]->kept = 0;
	free(c->entries);
	sort_entries(v, n);
	c->entries = v;
	c->nentries = n;
	index_entries(c);
}

int
cache_names_groups(const struct cache *c)
{
	return c->names_groups;
}

int
cache_match(struct cache *c, const struct selector_set *sel, int with_svid,
    struct cache_entry ***out, size_t *n)
{
	static struct log_ratelimit	  rl_hint = LOG_RATELIMIT_DEFAULT;
	struct cache_entry		**v = NULL, **nv, *e;
	const struct selector		 *ws, *f;
	size_t				  i, j, s, k = 0, cap = 0;

	*out = NULL;
	*n = 0;
	for (s = 0; s < sel->n; s++) {
		ws = &sel->sel[s];
		if (c->idx == NULL)
			break;
		e = c->idx[sel_hash(ws->type, ws->value) & c->idx_mask];
		for (; e != NULL; e = e->idx_next) {
			f = &e->selectors.sel[0];
			if (strcmp(f->type, ws->type) != 0 ||
			    strcmp(f->value, ws->value) != 0)
				continue;
			if (!selector_set_is_subset(&e->selectors, sel) ||
			    (with_svid && e->chain_der == NULL))
				continue;
			if (k == cap) {
				cap = cap == 0 ? 16 : cap * 2;
				if ((nv = reallocarray(v, cap + 1,
				    sizeof(*v))) == NULL) {
					free(v);
					return WICK_ERR_ALLOC;
				}
				v = nv;
			}
			v[k++] = e;
		}
	}
	if (v == NULL && (v = calloc(1, sizeof(*v))) == NULL)
		return WICK_ERR_ALLOC;
	/* Duplicate hints: keep the oldest entry (then the lower ID). */
	for (i = 0; i < k; i++) {
		if (v[i] == NULL || *v[i]->hint == '\0')
			continue;
		for (j = i + 1; j < k; j++) {
			if (v[j] == NULL || strcmp(v[i]->hint, v[j]->hint) != 0)
				continue;
			if (v[j]->created_at < v[i]->created_at ||
			    (v[j]->created_at == v[i]->created_at &&
			    strcmp(v[j]->id, v[i]->id) < 0)) {
				log_warn_rl(&rl_hint, "entries %s and %s "
				    "share the hint \"%s\"; serving the older",
				    v[i]->id, v[j]->id, v[i]->hint);
				v[i] = v[j];
			}
			v[j] = NULL;
		}
	}
	for (i = j = 0; i < k; i++)
		if (v[i] != NULL)
			v[j++] = v[i];
	if (j > 1)
		qsort(v, j, sizeof(*v), cmp_entry);
	*out = v;
	*n = j;
	return 0;
}

/* ---- bundles ------------------------------------------------------------ */

/* The bundles change: their decoded keys go (a new bundle may even
 * reuse a freed one's address). */
static void
jwks_clear(struct cache *c)
{
	size_t i;

	for (i = 0; i < c->njwks; i++)
		cache_keyset_release(c->jwks[i].k);
	c->njwks = 0;
}

/* A keyset held by the cache and by validations still running. */
struct cache_keyset {
	struct jose_keyset	 ks;
	unsigned		 refs;
};

struct cache_keyset *
cache_jwt_keyset_hold(struct cache *c, const struct bundle *b,
    const struct jose_keyset **ks)
{
	struct cache_keyset	*k;
	size_t			 i;

	*ks = NULL;
	for (i = 0; i < c->njwks; i++)
		if (c->jwks[i].of == b)
			break;
	if (i == c->njwks) {
		if (c->njwks == sizeof(c->jwks) / sizeof(c->jwks[0]))
			jwks_clear(c);
		if ((k = calloc(1, sizeof(*k))) == NULL)
			return NULL;
		jose_keyset_init(&k->ks);
		if (bundle_keyset(b, BUNDLE_USE_JWT, &k->ks) != 0) {
			jose_keyset_cleanup(&k->ks);
			free(k);
			return NULL;
		}
		k->refs = 1;
		i = c->njwks++;
		c->jwks[i].of = b;
		c->jwks[i].k = k;
	}
	k = c->jwks[i].k;
	k->refs++;
	*ks = &k->ks;
	return k;
}

void
cache_keyset_release(struct cache_keyset *k)
{
	if (k != NULL && --k->refs == 0) {
		jose_keyset_cleanup(&k->ks);
		free(k);
	}
}

const struct jose_keyset *
cache_jwt_keyset(struct cache *c, const struct bundle *b)
{
	const struct jose_keyset	*ks;
	struct cache_keyset		*k;

	/* The cache's own reference keeps it until the bundles change. */
	if ((k = cache_jwt_keyset_hold(c, b, &ks)) == NULL)
		return NULL;
	cache_keyset_release(k);
	return ks;
}

void
cache_set_bundle(struct cache *c, struct bundle *b)
{
	jwks_clear(c);
	if (b != c->bundle) {
		bundle_free(c->bundle);
		c->bundle = b;
	}
	buf_reset(&c->bundle_der);
	if (b != NULL && bundle_x509_der(b, &c->bundle_der) != 0)
		log_error("cannot encode the trust bundle");
}

struct bundle *
cache_bundle(const struct cache *c)
{
	return c->bundle;
}

const uint8_t *
cache_bundle_der(const struct cache *c, size_t *len)
{
	*len = buf_len(&c->bundle_der);
	return buf_ptr(&c->bundle_der);
}

void
cache_clear_federated(struct cache *c)
{
	size_t i;

	jwks_clear(c);
	for (i = 0; i < c->nfed; i++)
		bundle_free(c->fed[i]);
	c->nfed = 0;
}

void
cache_add_federated(struct cache *c, struct bundle *b)
{
	if (c->nfed < CACHE_MAX_FEDERATED)
		c->fed[c->nfed++] = b;
	else
		bundle_free(b);
}

struct bundle *
cache_bundle_for(struct cache *c, const char *td_id)
{
	char	id[SPIFFEID_MAX_TD_LEN + 16];
	size_t	i;

	if (c->bundle == NULL)
		return NULL;
	bundle_td_id(c->bundle, id, sizeof(id));
	if (strcmp(id, td_id) == 0)
		return c->bundle;
	for (i = 0; i < c->nfed; i++) {
		bundle_td_id(c->fed[i], id, sizeof(id));
		if (strcmp(id, td_id) == 0)
			return c->fed[i];
	}
	return NULL;
}

/* ---- JWT-SVIDs ---------------------------------------------------------- */

static int
cmp_str(const void *x, const void *y)
{
	return strcmp(*(char *const *)x, *(char *const *)y);
}

char *
cache_aud_key(char **aud, size_t n)
{
	char	**s, *out, *p;
	size_t	  i, len = 1;

	if (n == 1) {
		/* The usual case: one audience, nothing to sort. */
		len = strlen(aud[0]);
		if ((out = malloc(len + 2)) == NULL)
			return NULL;
		memcpy(out, aud[0], len);
		out[len] = '\n';
		out[len + 1] = '\0';
		return out;
	}
	if ((s = calloc(n + 1, sizeof(*s))) == NULL)
		return NULL;
	for (i = 0; i < n; i++) {
		s[i] = aud[i];
		len += strlen(aud[i]) + 1;
	}
	qsort(s, n, sizeof(*s), cmp_str);
	if ((out = malloc(len)) != NULL) {
		for (i = 0, p = out; i < n; i++) {
			len = strlen(s[i]);
			memcpy(p, s[i], len);
			p[len] = '\n';
			p += len + 1;
		}
		*p = '\0';
	}
	free(s);
	return out;
}

/* FNV-1a of the entry ID and the audiences. */
static uint32_t
jwt_hash(const char *entry_id, const char *aud_key)
{
	return fnv_more((str_hash(entry_id) ^ 0xff) * 16777619u, aud_key);
}

static struct jwt_cached *
jwt_find(struct cache *c, const char *entry_id, const char *aud_key,
    uint32_t h)
{
	struct jwt_cached *j;

	for (j = c->jwt[h % JWT_BUCKETS]; j != NULL; j = j->hnext)
		if (j->hash == h && strcmp(j->entry_id, entry_id) == 0 &&
		    strcmp(j->aud_key, aud_key) == 0)
			return j;
	return NULL;
}

static void
jwt_unlink(struct cache *c, struct jwt_cached *j)
{
	struct jwt_cached **pp;

	for (pp = &c->jwt[j->hash % JWT_BUCKETS]; *pp != j; pp = &(*pp)->hnext)
		;
	*pp = j->hnext;
	if (j->older != NULL)
		j->older->newer = j->newer;
	else
		c->oldest = j->newer;
	if (j->newer != NULL)
		j->newer->older = j->older;
	else
		c->newest = j->older;
	c->njwts--;
}

const char *
cache_jwt_get(struct cache *c, const char *entry_id, const char *aud_key,
    int64_t now, int *fresh)
{
	struct jwt_cached *j;

	*fresh = 0;
	j = jwt_find(c, entry_id, aud_key, jwt_hash(entry_id, aud_key));
	if (j == NULL || j->token == NULL || now >= j->exp)
		return NULL;
	*fresh = now < j->rotate_at;
	return j->token;
}

void
cache_jwt_put(struct cache *c, const char *entry_id, const char *aud_key,
    const char *token, int64_t exp, int64_t now)
{
	struct jwt_cached	*j;
	uint32_t		 h = jwt_hash(entry_id, aud_key);

	if ((j = jwt_find(c, entry_id, aud_key, h)) != NULL) {
		freezero(j->token, strlen(j->token));
		if ((j->token = strdup(token)) == NULL) {
			/* Short of memory: the token is served, not kept. */
			jwt_unlink(c, j);
			jwt_free(j);
			return;
		}
	} else {
		if (c->njwts >= CACHE_MAX_JWTS && c->oldest != NULL) {
			j = c->oldest;
			jwt_unlink(c, j);
			jwt_free(j);
		}
		if ((j = calloc(1, sizeof(*j))) == NULL ||
		    (j->entry_id = strdup(entry_id)) == NULL ||
		    (j->aud_key = strdup(aud_key)) == NULL ||
		    (j->token = strdup(token)) == NULL) {
			if (j != NULL)
				jwt_free(j);
			return;
		}
		j->hash = h;
		j->hnext = c->jwt[h % JWT_BUCKETS];
		c->jwt[h % JWT_BUCKETS] = j;
		j->older = c->newest;
		if (c->newest != NULL)
			c->newest->newer = j;
		else
			c->oldest = j;
		c->newest = j;
		c->njwts++;
	}
	j->exp = exp;
	j->rotate_at = now + (exp - now) / 2;
}

/* ---- subscribers -------------------------------------------------------- */

void
cache_subscribe(struct cache *c, struct cache_sub *s)
{
	s->next = c->subs;
	c->subs = s;
}

void
cache_unsubscribe(struct cache *c, struct cache_sub *s)
{
	struct cache_sub **pp;

	if (c->notifying == s)
		c->notifying = s->next;
	for (pp = &c->subs; *pp != NULL; pp = &(*pp)->next)
		if (*pp == s) {
			*pp = s->next;
			break;
		}
}

void
cache_notify(struct cache *c)
{
	struct cache_sub *s;

	for (s = c->subs; s != NULL; s = c->notifying) {
		c->notifying = s->next;
		s->changed(s);
	}
	c->notifying = NULL;
}
