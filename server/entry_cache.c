/*
 * entry_cache.c: registration entries in memory.
 *
 * Two sorted arrays of the same pointers: by entry ID (lookups, updates)
 * and by parent ID (the authorization crawl).  A refresh reads the change
 * log, re-reads each changed entry and re-sorts; with no change it costs
 * one indexed query.  A prune removes every change below the one it
 * keeps as the log's floor (ds_changes_prune()), so a cache whose revision
 * is below floor - 1 has lost changes (its server stopped or cut off for
 * longer than the retention) and reads everything again.  The floor is
 * asked only when the first change read is not the next revision (a gap
 * that may as well be a transaction rolled back).
 */
#include <stdlib.h>
#include <string.h>

#include "entry_cache.h"

#define ENTRY_CACHE_MEMO	64	/* agents whose sets are kept */
#define ENTRY_CACHE_BATCH	10000	/* change-log rows per read */
#include "log.h"

struct entry_cache {
	struct ds	 *ds;
	struct ds_entry	**byid;
	struct ds_entry	**byparent;
	size_t		  n;
	size_t		  cap;
	int64_t		  rev;
	/* IDs changed since rev, collected by the change-log callback,
	 * the rows read and the newest revision among them. */
	char		**changed;
	size_t		  nchanged;
	size_t		  capchanged;
	size_t		  nrows;
	int64_t		  seen;
	int		  gap;		/* the first change read skipped */
	int64_t		  gap_first;	/* ... to this revision */
	/* A gap found above the floor: from gap_rev to gap_to exactly. */
	int64_t		  gap_rev;
	int64_t		  gap_to;
	uint64_t	  resyncs;
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

static int
grow(struct entry_cache *ec)
{
	struct ds_entry	**v;
	size_t		  cap = ec->cap == 0 ? 256 : ec->cap * 2;

	if ((v = reallocarray(ec->byid, cap, sizeof(*v))) == NULL)
		return WICK_ERR_ALLOC;
	ec->byid = v;
	if ((v = reallocarray(ec->byparent, cap, sizeof(*v))) == NULL)
		return WICK_ERR_ALLOC;
	ec->byparent = v;
	ec->cap = cap;
	return 0;
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
			if (ec->n == ec->cap && (r = grow(ec)) != 0) {
				ds_entry_list_free(&l);
				return r;
			}
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

	*out = NULL;
	if ((ec = calloc(1, sizeof(*ec))) == NULL)
		return WICK_ERR_ALLOC;
	ec->ds = ds;
	ec->gap_rev = -1;
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
	struct entry_cache	 *ec = arg;
	char			**v;
	size_t			  cap;

	if (ec->nrows == 0 && rev > ec->rev + 1 &&
	    !(ec->gap_rev == ec->rev && ec->gap_to == rev)) {
		ec->gap = 1;
		ec->gap_first = rev;
		return WICK_ERR_STATE;
	}
	ec->nrows++;
	ec->seen = rev;
	if (kind != DS_CHANGE_ENTRY)
		return 0;
	if (ec->nchanged == ec->capchanged) {
		cap = ec->capchanged == 0 ? 64 : ec->capchanged * 2;
		if ((v = reallocarray(ec->changed, cap, sizeof(*v))) == NULL)
			return WICK_ERR_ALLOC;
		ec->changed = v;
		ec->capchanged = cap;
	}
	if ((ec->changed[ec->nchanged] = strdup(object)) == NULL)
		return WICK_ERR_ALLOC;
	ec->nchanged++;
	return 0;
}

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/*
 * Re-read the changed entries (each once): replace those the cache has,
 * drop the deleted ones, append new ones, then compact and re-sort.
 * Dropped entries are only marked while the sorted part is still being
 * searched.  On an error the cache stays consistent with what was
 * applied so far; applying the same changes again is harmless.
 */
static int
apply_changes(struct entry_cache *ec)
{
	static struct log_ratelimit	 rl = LOG_RATELIMIT_DEFAULT;
	struct ds_entry			*e;
	uint8_t				*gone;
	size_t				 i, j, nsorted = ec->n;
	ssize_t				 at;
	int				 r = 0;

	if (ec->nchanged == 0)
		return 0;
	if ((gone = calloc(nsorted + 1, 1)) == NULL)
		return WICK_ERR_ALLOC;
	qsort(ec->changed, ec->nchanged, sizeof(*ec->changed), cmp_str);
	for (i = 0; i < ec->nchanged; i++) {
		if (i > 0 && strcmp(ec->changed[i], ec->changed[i - 1]) == 0)
			continue;
		e = NULL;
		if ((r = ds_entry_get(ec->ds, ec->changed[i], &e)) ==
		    WICK_ERR_NOT_FOUND)
			r = 0;
		else if (r != 0) {
			log_warn_rl(&rl, "entry cache: cannot read entry %s: "
			    "%s", ec->changed[i], wick_strerror(r));
			break;
		}
		at = find_id_in(ec, ec->changed[i], nsorted);
		if (at >= 0 && e != NULL) {
			/* The same ID: the order holds. */
			ds_entry_free(ec->byid[at]);
			ec->byid[at] = e;
		} else if (at >= 0)
			gone[at] = 1;
		else if (e != NULL) {
			if (ec->n == ec->cap && (r = grow(ec)) != 0) {
				ds_entry_free(e);
				break;
			}
			ec->byid[ec->n++] = e;
		}
	}
	for (i = j = 0; i < ec->n; i++) {
		if (i < nsorted && gone[i])
			ds_entry_free(ec->byid[i]);
		else
			ec->byid[j++] = ec->byid[i];
	}
	ec->n = j;
	free(gone);
	resort(ec);
	return r;
}

/*
 * The revision moves on only once its changes are applied, so a refresh
 * that failed (a busy datastore, no memory) is done again by the next.
 */
/* Everything again: the revision first, as at start. */
static int
resync(struct entry_cache *ec)
{
	static struct log_ratelimit	 rl = LOG_RATELIMIT_DEFAULT;
	struct ds_entry			**byid = ec->byid, **byparent = ec->byparent;
	size_t				  i, n = ec->n, cap = ec->cap;
	int64_t				  rev;
	int				  r;

	if ((r = ds_revision(ec->ds, &rev)) != 0)
		return r;
	log_warn_rl(&rl, "entry cache: the change log no longer holds the "
	    "changes after revision %lld: reading all entries again",
	    (long long)ec->rev);
	ec->byid = ec->byparent = NULL;
	ec->n = ec->cap = 0;
	if ((r = load_all(ec)) != 0) {
		/* Keep serving what we had, as it was. */
		for (i = 0; i < ec->n; i++)
			ds_entry_free(ec->byid[i]);
		free(ec->byid);
		free(ec->byparent);
		ec->byid = byid;
		ec->byparent = byparent;
		ec->n = n;
		ec->cap = cap;
		return r;
	}
	for (i = 0; i < n; i++)
		ds_entry_free(byid[i]);
	free(byid);
	free(byparent);
	ec->rev = rev;
	ec->gap_rev = -1;
	ec->resyncs++;
	return 0;
}

int
entry_cache_refresh(struct entry_cache *ec)
{
	size_t	i, rows;
	int64_t	floor;
	int	r;

	do {
		ec->nchanged = 0;
		ec->nrows = 0;
		ec->seen = ec->rev;
		ec->gap = 0;
		r = ds_changes_since(ec->ds, ec->rev, ENTRY_CACHE_BATCH,
		    collect_change, ec);
		rows = ec->nrows;
		if (ec->gap) {
			if ((r = ds_changes_floor(ec->ds, &floor)) != 0)
				return r;
			if (ec->rev < floor - 1)
				return resync(ec);
			/* Rolled back, not pruned: read on, accepting this
			 * gap only (a prune meanwhile moves the first change
			 * read, and the floor is asked again). */
			ec->gap_rev = ec->rev;
			ec->gap_to = ec->gap_first;
			rows = ENTRY_CACHE_BATCH;
			continue;
		}
		if (r == 0)
			r = apply_changes(ec);
		for (i = 0; i < ec->nchanged; i++)
			free(ec->changed[i]);
		ec->nchanged = 0;
		if (r != 0)
			return r;
		ec->rev = ec->seen;
	} while (rows == ENTRY_CACHE_BATCH);
	return 0;
}

uint64_t
entry_cache_resyncs(const struct entry_cache *ec)
{
	return ec->resyncs;
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

static int
crawl_push(struct crawl *c, const char *id)
{
	const char	**v;
	size_t		  cap;

	if (c->nq == c->capq) {
		cap = c->capq == 0 ? 64 : c->capq * 2;
		if ((v = reallocarray(c->queue, cap, sizeof(*v))) == NULL)
			return WICK_ERR_ALLOC;
		c->queue = v;
		c->capq = cap;
	}
	c->queue[c->nq++] = id;
	return 0;
}

static int
crawl_children(const struct entry_cache *ec, struct crawl *c,
    const char *parent)
{
	const struct ds_entry	**v;
	size_t			  i, cap;

	for (i = first_child(ec, parent); i < ec->n &&
	    strcmp(ec->byparent[i]->parent_id, parent) == 0; i++) {
		if (c->taken[i])
			continue;	/* also ends cycles */
		c->taken[i] = 1;
		if (c->nout == c->capout) {
			cap = c->capout == 0 ? 64 : c->capout * 2;
			if ((v = reallocarray(c->out, cap, sizeof(*v))) ==
			    NULL)
				return WICK_ERR_ALLOC;
			c->out = v;
			c->capout = cap;
		}
		c->out[c->nout++] = ec->byparent[i];
		if (crawl_push(c, ec->byparent[i]->spiffe_id) != 0)
			return WICK_ERR_ALLOC;
	}
	return 0;
}

static int
crawl_authorized(struct entry_cache *ec, const char *agent_id,
    const struct selector_set *node_sel, const char *server_id,
    const struct ds_entry ***out, size_t *n)
{
	struct crawl	 c;
	size_t		 i, qi;
	int		 r;

	*out = NULL;
	*n = 0;
	memset(&c, 0, sizeof(c));
	if ((c.taken = calloc(ec->n + 1, 1)) == NULL)
		return WICK_ERR_ALLOC;
	if ((r = crawl_push(&c, agent_id)) != 0)
		goto out;
	/* Node aliases whose selectors the agent's node has. */
	for (i = first_child(ec, server_id); i < ec->n &&
	    strcmp(ec->byparent[i]->parent_id, server_id) == 0; i++)
		if (node_sel != NULL && ec->byparent[i]->selectors.n > 0 &&
		    selector_set_is_subset(&ec->byparent[i]->selectors,
		    node_sel) && (r = crawl_push(&c,
		    ec->byparent[i]->spiffe_id)) != 0)
			goto out;
	for (qi = 0; qi < c.nq; qi++) {
		/* Never hand out node aliases themselves, nor crawl the
		 * server's own children from a descendant. */
		if (strcmp(c.queue[qi], server_id) == 0)
			continue;
		if ((r = crawl_children(ec, &c, c.queue[qi])) != 0)
			goto out;
	}
	/* The caller frees *out: never NULL on success, even when empty. */
	if (c.out == NULL && (c.out = calloc(1, sizeof(*c.out))) == NULL) {
		r = WICK_ERR_ALLOC;
		goto out;
	}
	if (c.nout > 1)
		qsort(c.out, c.nout, sizeof(*c.out), cmp_id);
	*out = c.out;
	*n = c.nout;
	c.out = NULL;
out:
	free(c.out);
	free(c.queue);
	free(c.taken);
	return r;
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

	*out = NULL;
	*n = 0;
	if (node_sel != NULL && (r = selector_set_format(node_sel, &sel)) != 0)
		return r;
	if (sel == NULL && (sel = strdup("")) == NULL)
		return WICK_ERR_ALLOC;
	for (i = 0; i < ENTRY_CACHE_MEMO; i++) {
		m = &ec->memo[i];
		if (m->agent_id != NULL && strcmp(m->agent_id, agent_id) == 0 &&
		    strcmp(m->node_sel, sel) == 0) {
			m->used = ++ec->clock;
			free(sel);
			if ((*out = calloc(m->n + 1, sizeof(**out))) == NULL)
				return WICK_ERR_ALLOC;
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
	/* Remember the set; without memory for that, crawl again next time. */
	free(victim->agent_id);
	free(victim->node_sel);
	free(victim->v);
	memset(victim, 0, sizeof(*victim));
	if ((victim->v = calloc(*n + 1, sizeof(*victim->v))) == NULL ||
	    (victim->agent_id = strdup(agent_id)) == NULL) {
		free(victim->v);
		victim->v = NULL;
		free(sel);
		return 0;
	}
	victim->node_sel = sel;
	if (*n > 0)
		memcpy(victim->v, *out, *n * sizeof(*victim->v));
	victim->n = *n;
	victim->used = ++ec->clock;
	return 0;
}
