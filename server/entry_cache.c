/*
 * entry_cache.c: registration entries in memory.
 *
 * Two sorted arrays of the same pointers: by entry ID (lookups, updates)
 * and by parent ID (the authorization crawl).  A refresh reads the change
 * log, re-reads each changed entry and re-sorts; with no change it costs
 * one indexed query.
 */
#include <stdlib.h>
#include <string.h>

#include "entry_cache.h"

#define ENTRY_CACHE_MEMO	64	/* agents whose sets are kept */
#include "log.h"
#include "xmalloc.h"

struct entry_cache {
	struct ds	 *ds;
	struct ds_entry	**byid;
	struct ds_entry	**byparent;
	size_t		  n;
	size_t		  cap;
	int64_t		  rev;
	/* IDs changed since rev, collected by the change-log callback. */
	char		**changed;
	size_t		  nchanged;
	size_t		  capchanged;
	/* The last authorized sets, so that the pages of one sync (and
	 * agents syncing with nothing changed) do not crawl again. */
	struct memo {
		char			 *agent_id;
		char			 *node_sel;	/* formatted */
		const struct ds_entry	**v;
		size_t			  n;
		uint64_t		  used;
	}		  memo[ENTRY_CACHE_MEMO];
	uint64_t	  clock;
};

static int
cmp_id(const void *a, const void *b)
{
	const struct ds_entry *x = *(struct ds_entry *const *)a;
	const struct ds_entry *y = *(struct ds_entry *const *)b;

	return strcmp(x->id, y->id);
}

static int
cmp_parent(const void *a, const void *b)
{
	const struct ds_entry *x = *(struct ds_entry *const *)a;
	const struct ds_entry *y = *(struct ds_entry *const *)b;
	int c;

	if ((c = strcmp(x->parent_id, y->parent_id)) != 0)
		return c;
	return strcmp(x->id, y->id);
}

static void
memo_clear(struct entry_cache *ec)
{
	size_t i;

	for (i = 0; i < ENTRY_CACHE_MEMO; i++) {
		free(ec->memo[i].agent_id);
		free(ec->memo[i].node_sel);
		free(ec->memo[i].v);
		memset(&ec->memo[i], 0, sizeof(ec->memo[i]));
	}
}

static void
resort(struct entry_cache *ec)
{
	memo_clear(ec);
	if (ec->n == 0)
		return;
	qsort(ec->byid, ec->n, sizeof(*ec->byid), cmp_id);
	memcpy(ec->byparent, ec->byid, ec->n * sizeof(*ec->byid));
	qsort(ec->byparent, ec->n, sizeof(*ec->byparent), cmp_parent);
}

static void
grow(struct entry_cache *ec)
{
	size_t cap = ec->cap == 0 ? 256 : ec->cap * 2;

	ec->byid = xreallocarray(ec->byid, cap, sizeof(*ec->byid));
	ec->byparent = xreallocarray(ec->byparent, cap, sizeof(*ec->byparent));
	ec->cap = cap;
}

/* Binary search among the first n (sorted) pointers of byid. */
static ssize_t
find_id_in(const struct entry_cache *ec, const char *id, size_t n)
{
	size_t	lo = 0, hi = n, mid;
	int	c;

	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		if ((c = strcmp(ec->byid[mid]->id, id)) == 0)
			return (ssize_t)mid;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return -1;
}

static int
load_all(struct entry_cache *ec)
{
	struct ds_entry_list	 l;
	struct ds_entry_filter	 f;
	char			*tok = NULL;
	size_t			 i;
	int			 r;

	memset(&f, 0, sizeof(f));
	for (;;) {
		memset(&l, 0, sizeof(l));
		r = ds_entries_list(ec->ds, &f, tok, 0, &l);
		free(tok);
		tok = NULL;
		if (r != 0)
			return r;
		for (i = 0; i < l.n; i++) {
			if (ec->n == ec->cap)
				grow(ec);
			ec->byid[ec->n++] = l.v[i];
			l.v[i] = NULL;
		}
		tok = l.next_token;
		l.next_token = NULL;
		ds_entry_list_free(&l);
		if (tok == NULL)
			break;
	}
	resort(ec);
	return 0;
}

int
entry_cache_new(struct ds *ds, struct entry_cache **out)
{
	struct entry_cache	*ec;
	int			 r;

	ec = xcalloc(1, sizeof(*ec));
	ec->ds = ds;
	/* Revision first: a change racing the load is applied again. */
	if ((r = ds_revision(ds, &ec->rev)) != 0 || (r = load_all(ec)) != 0) {
		entry_cache_free(ec);
		return r;
	}
	*out = ec;
	return 0;
}

void
entry_cache_free(struct entry_cache *ec)
{
	size_t i;

	if (ec == NULL)
		return;
	for (i = 0; i < ec->n; i++)
		ds_entry_free(ec->byid[i]);
	for (i = 0; i < ec->nchanged; i++)
		free(ec->changed[i]);
	free(ec->changed);
	memo_clear(ec);
	free(ec->byid);
	free(ec->byparent);
	free(ec);
}

static int
collect_change(void *arg, int64_t rev, enum ds_change_kind kind,
    enum ds_change_op op, const char *object)
{
	struct entry_cache *ec = arg;

	ec->rev = rev;
	if (kind != DS_CHANGE_ENTRY)
		return 0;
	if (ec->nchanged == ec->capchanged) {
		ec->capchanged = ec->capchanged == 0 ? 64 :
		    ec->capchanged * 2;
		ec->changed = xreallocarray(ec->changed, ec->capchanged,
		    sizeof(*ec->changed));
	}
	ec->changed[ec->nchanged++] = xstrdup(object);
	return 0;
}

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/*
 * Re-read the changed entries (each once): replace or drop those the
 * cache has, append new ones, then compact and re-sort.
 */
static void
apply_changes(struct entry_cache *ec)
{
	struct ds_entry	*e;
	size_t		 i, j, nsorted = ec->n;
	ssize_t		 at;
	int		 r;

	if (ec->nchanged == 0)
		return;
	qsort(ec->changed, ec->nchanged, sizeof(*ec->changed), cmp_str);
	for (i = 0; i < ec->nchanged; i++) {
		if (i > 0 && strcmp(ec->changed[i], ec->changed[i - 1]) == 0)
			continue;
		e = NULL;
		r = ds_entry_get(ec->ds, ec->changed[i], &e);
		if (r != 0 && r != WICK_ERR_NOT_FOUND) {
			log_warn("entry cache: cannot read entry %s: %s",
			    ec->changed[i], wick_strerror(r));
			continue;
		}
		at = find_id_in(ec, ec->changed[i], nsorted);
		if (at >= 0) {
			ds_entry_free(ec->byid[at]);
			ec->byid[at] = e;	/* NULL: dropped below */
		} else if (e != NULL) {
			if (ec->n == ec->cap)
				grow(ec);
			ec->byid[ec->n++] = e;
		}
	}
	for (i = j = 0; i < ec->n; i++)
		if (ec->byid[i] != NULL)
			ec->byid[j++] = ec->byid[i];
	ec->n = j;
	resort(ec);
}

int
entry_cache_refresh(struct entry_cache *ec)
{
	size_t	i, batch;
	int	r;

	do {
		ec->nchanged = 0;
		if ((r = ds_changes_since(ec->ds, ec->rev, 10000,
		    collect_change, ec)) != 0)
			return r;
		batch = ec->nchanged;
		apply_changes(ec);
		for (i = 0; i < ec->nchanged; i++)
			free(ec->changed[i]);
		ec->nchanged = 0;
	} while (batch == 10000);
	return 0;
}

int64_t
entry_cache_revision(const struct entry_cache *ec)
{
	return ec->rev;
}

size_t
entry_cache_count(const struct entry_cache *ec)
{
	return ec->n;
}

const struct ds_entry *
entry_cache_get(const struct entry_cache *ec, const char *id)
{
	ssize_t at = find_id_in(ec, id, ec->n);

	return at < 0 ? NULL : ec->byid[at];
}

/* First index in byparent whose parent_id is parent. */
static size_t
first_child(const struct entry_cache *ec, const char *parent)
{
	size_t lo = 0, hi = ec->n, mid;

	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		if (strcmp(ec->byparent[mid]->parent_id, parent) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

struct crawl {
	const char		**queue;	/* SPIFFE IDs to expand */
	size_t			  nq, capq;
	const struct ds_entry	**out;
	size_t			  nout, capout;
	uint8_t			 *taken;	/* per byparent index */
};

static void
crawl_push(struct crawl *c, const char *id)
{
	if (c->nq == c->capq) {
		c->capq = c->capq == 0 ? 64 : c->capq * 2;
		c->queue = xreallocarray(c->queue, c->capq, sizeof(*c->queue));
	}
	c->queue[c->nq++] = id;
}

static void
crawl_children(const struct entry_cache *ec, struct crawl *c,
    const char *parent)
{
	size_t i;

	for (i = first_child(ec, parent); i < ec->n &&
	    strcmp(ec->byparent[i]->parent_id, parent) == 0; i++) {
		if (c->taken[i])
			continue;	/* also ends cycles */
		c->taken[i] = 1;
		if (c->nout == c->capout) {
			c->capout = c->capout == 0 ? 64 : c->capout * 2;
			c->out = xreallocarray(c->out, c->capout,
			    sizeof(*c->out));
		}
		c->out[c->nout++] = ec->byparent[i];
		crawl_push(c, ec->byparent[i]->spiffe_id);
	}
}

static int
crawl_authorized(struct entry_cache *ec, const char *agent_id,
    const struct selector_set *node_sel, const char *server_id,
    const struct ds_entry ***out, size_t *n)
{
	struct crawl	 c;
	size_t		 i, qi;

	memset(&c, 0, sizeof(c));
	c.taken = xcalloc(ec->n + 1, 1);
	crawl_push(&c, agent_id);
	/* Node aliases whose selectors the agent's node has. */
	for (i = first_child(ec, server_id); i < ec->n &&
	    strcmp(ec->byparent[i]->parent_id, server_id) == 0; i++)
		if (node_sel != NULL && ec->byparent[i]->selectors.n > 0 &&
		    selector_set_is_subset(&ec->byparent[i]->selectors,
		    node_sel))
			crawl_push(&c, ec->byparent[i]->spiffe_id);
	for (qi = 0; qi < c.nq; qi++) {
		/* Never hand out node aliases themselves, nor crawl the
		 * server's own children from a descendant. */
		if (strcmp(c.queue[qi], server_id) == 0)
			continue;
		crawl_children(ec, &c, c.queue[qi]);
	}
	free(c.queue);
	free(c.taken);
	if (c.nout > 1)
		qsort(c.out, c.nout, sizeof(*c.out), cmp_id);
	*out = c.out;
	*n = c.nout;
	return 0;
}

int
entry_cache_authorized(struct entry_cache *ec, const char *agent_id,
    const struct selector_set *node_sel, const char *server_id,
    const struct ds_entry ***out, size_t *n)
{
	struct memo	*m, *victim = &ec->memo[0];
	char		*sel = NULL;
	size_t		 i;
	int		 r;

	if (node_sel != NULL && (r = selector_set_format(node_sel, &sel)) != 0)
		return r;
	if (sel == NULL)
		sel = xstrdup("");
	for (i = 0; i < ENTRY_CACHE_MEMO; i++) {
		m = &ec->memo[i];
		if (m->agent_id != NULL && strcmp(m->agent_id, agent_id) == 0 &&
		    strcmp(m->node_sel, sel) == 0) {
			m->used = ++ec->clock;
			free(sel);
			*out = xcalloc(m->n + 1, sizeof(**out));
			if (m->n > 0)
				memcpy(*out, m->v, m->n * sizeof(**out));
			*n = m->n;
			return 0;
		}
		if (m->used < victim->used)
			victim = m;
	}
	if ((r = crawl_authorized(ec, agent_id, node_sel, server_id, out,
	    n)) != 0) {
		free(sel);
		return r;
	}
	free(victim->agent_id);
	free(victim->node_sel);
	free(victim->v);
	victim->agent_id = xstrdup(agent_id);
	victim->node_sel = sel;
	victim->v = xcalloc(*n + 1, sizeof(*victim->v));
	if (*n > 0)
		memcpy(victim->v, *out, *n * sizeof(*victim->v));
	victim->n = *n;
	victim->used = ++ec->clock;
	return 0;
}
