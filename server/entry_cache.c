/*
 * entry_cache.c: registration entries in memory.
 *
 * Two sorted arrays of the same pointers: by entry ID (lookups, updates)
 * and by parent ID (the authorization crawl).  A refresh reads the change
 * log, re-reads each changed entry and merges it in; with no change it
 * costs one indexed query.  A prune removes every change below the one it
 * keeps as the log's floor (ds_changes_prune()), so a cache whose revision
 * is below floor - 1 has lost changes (its server stopped or cut off for
 * longer than the retention) and reads everything again.  The floor is
 * asked only when the first change read is not the next revision (a gap
 * that may as well be a transaction rolled back).
 */
#include <stdint.h>
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

/*
 * Sorting 100,000 entries with strcmp() through their pointers was most
 * of a load's time once the reads were done, and every refresh with a
 * change sorts again.  Each entry is read once, in the order the array
 * holds them (the order they were allocated in, kind to the memory
 * cache), into a key: its ID's first 8 bytes big-endian (keys order as
 * the strings do; strcmp() only on a tie) and its parent's group.
 * Parents repeat (an agent's workloads), so each distinct parent
 * becomes a group once, through a hash table, and only the groups are
 * sorted by string.  Once the keys are sorted by ID, a counting sort
 * places the entries by group, in ID order within each: the order
 * cmp_parent() gives.  Short of memory for that, the plain sorts give
 * the same order, only slower: a start or a refresh still succeeds.
 */
struct sortkey {
	uint64_t		 pre;
	struct ds_entry		*e;
	uint32_t		 group;
};

struct pgroup {
	const char	*parent;
	uint64_t	 hash;
	size_t		 n;		/* entries in the group */
	size_t		 at;		/* the next one's index in byparent */
};

static uint64_t
prefix8(const char *s)
{
	uint64_t	k = 0;
	int		i;

	for (i = 0; i < 8; i++) {
		k = k << 8 | (unsigned char)*s;
		if (*s != '\0')
			s++;
	}
	return k;
}

static int
cmp_key(const void *a, const void *b)
{
	const struct sortkey *x = a, *y = b;

	if (x->pre != y->pre)
		return x->pre < y->pre ? -1 : 1;
	return strcmp(x->e->id, y->e->id);
}

static int
cmp_group(const void *a, const void *b)
{
	return strcmp((*(struct pgroup *const *)a)->parent,
	    (*(struct pgroup *const *)b)->parent);
}

/* Eight bytes a step (parents are long and share long prefixes), each
 * step multiplied and folded so that every byte reaches the low bits the
 * table uses. */
static uint64_t
hash_str(const char *s)
{
	uint64_t	h = 0x9e3779b97f4a7c15ULL, w;
	size_t		len = strlen(s), i;

	for (i = 0; i + 8 <= len; i += 8) {
		memcpy(&w, s + i, 8);
		h = (h ^ w) * 0xff51afd7ed558ccdULL;
		h ^= h >> 29;
	}
	w = 0;
	memcpy(&w, s + i, len - i);
	h = (h ^ w ^ len) * 0xff51afd7ed558ccdULL;
	return h ^ h >> 32;
}

/* Both arrays sorted by keys; -1 (nothing changed) when out of memory. */
static int
sort_keyed(struct entry_cache *ec)
{
	struct sortkey	 *k = NULL;
	struct pgroup	 *g = NULL, **gp = NULL;
	uint32_t	 *slot = NULL;
	const char	 *p;
	size_t		  cap = 16, i, j, ng = 0, at;
	uint64_t	  h;
	int		  r = -1;

	/* Slots hold a group's index + 1 in 32 bits, and stay half empty. */
	if (ec->n > UINT32_MAX / 4)
		return -1;
	while (cap < 2 * ec->n)
		cap *= 2;
	if ((slot = calloc(cap, sizeof(*slot))) == NULL ||
	    (k = reallocarray(NULL, ec->n, sizeof(*k))) == NULL ||
	    (g = reallocarray(NULL, ec->n, sizeof(*g))) == NULL ||
	    (gp = reallocarray(NULL, ec->n, sizeof(*gp))) == NULL)
		goto out;
	for (i = 0; i < ec->n; i++) {
		k[i].e = ec->byid[i];
		k[i].pre = prefix8(k[i].e->id);
		p = k[i].e->parent_id;
		h = hash_str(p);
		for (j = h & (cap - 1); slot[j] != 0; j = (j + 1) & (cap - 1))
			if (g[slot[j] - 1].hash == h &&
			    strcmp(g[slot[j] - 1].parent, p) == 0)
				break;
		if (slot[j] == 0) {
			g[ng].parent = p;
			g[ng].hash = h;
			g[ng].n = 0;
			gp[ng] = &g[ng];
			slot[j] = (uint32_t)++ng;
		}
		k[i].group = slot[j] - 1;
		g[k[i].group].n++;
	}
	qsort(k, ec->n, sizeof(*k), cmp_key);
	qsort(gp, ng, sizeof(*gp), cmp_group);
	for (i = at = 0; i < ng; i++) {
		gp[i]->at = at;
		at += gp[i]->n;
	}
	for (i = 0; i < ec->n; i++) {
		ec->byid[i] = k[i].e;
		ec->byparent[g[k[i].group].at++] = k[i].e;
	}
	r = 0;
out:
	free(slot);
	free(k);
	free(g);
	free(gp);
	return r;
}

static void
resort(struct entry_cache *ec)
{
	memo_clear(ec);
	if (ec->n == 0 || sort_keyed(ec) == 0)
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
load_one(void *arg, struct ds_entry *e)
{
	struct entry_cache	*ec = arg;
	int			 r;

	if (ec->n == ec->cap && (r = grow(ec)) != 0) {
		ds_entry_free(e);
		return r;
	}
	ec->byid[ec->n++] = e;
	return 0;
}

static int
load_all(struct entry_cache *ec)
{
	int r;

	if ((r = ds_entries_load(ec->ds, load_one, ec)) != 0)
		return r;
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

/* The index in byparent of e, among its first n (sorted) pointers; -1
 * when it is not there. */
static ssize_t
find_parent_in(const struct entry_cache *ec, const struct ds_entry *e,
    size_t n)
{
	size_t	lo = 0, hi = n, mid;
	int	c;

	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		if ((c = cmp_parent(&ec->byparent[mid], &e)) == 0)
			return ec->byparent[mid] == e ? (ssize_t)mid : -1;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return -1;
}

/*
 * Merge the k pointers of add (sorted by cmp) into the first m (sorted)
 * of v, from the back: v has room for m + k.
 */
static void
merge_into(struct ds_entry **v, size_t m, struct ds_entry **add, size_t k,
    int (*cmp)(const void *, const void *))
{
	size_t	w = m + k;

	while (k > 0) {
		if (m > 0 && cmp(&v[m - 1], &add[k - 1]) > 0)
			v[--w] = v[--m];
		else
			v[--w] = add[--k];
	}
}

/*
 * Re-read the changed entries (each once): replace those the cache has,
 * drop the deleted ones, append new ones, then compact both arrays and
 * merge in the changed entries, sorted by themselves: a few changes cost
 * a pass over the arrays, where sorting all of them again took 30 ms at
 * 100,000 entries.  Dropped and replaced entries are freed only once
 * the sorted parts, whose searches compare them, are done with.  Short
 * of memory for the merge, the whole sort (resort()).  On an error the
 * cache stays consistent with what was applied so far; applying the same
 * changes again is harmless.
 */
static int
apply_changes(struct entry_cache *ec)
{
	static struct log_ratelimit	 rl = LOG_RATELIMIT_DEFAULT;
	struct ds_entry			*e, **add = NULL, **old = NULL;
	uint8_t				*gone, *pgone = NULL;
	size_t				 i, j, nsorted = ec->n, nadd = 0, nold = 0;
	size_t				 m = 0;
	ssize_t				 at, pat;
	int				 r = 0, merge;

	if (ec->nchanged == 0)
		return 0;
	if ((gone = calloc(nsorted + 1, 1)) == NULL)
		return WICK_ERR_ALLOC;
	/* add: the entries to merge in; old: those they replace, freed
	 * only once byparent, which the searches compare them with, no
	 * longer holds them. */
	merge = (pgone = calloc(nsorted + 1, 1)) != NULL &&
	    (add = reallocarray(NULL, ec->nchanged, 2 * sizeof(*add))) !=
	    NULL;
	if (merge)
		old = add + ec->nchanged;
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
		if (merge && at >= 0) {
			/* Out of byparent, to come back in at its (maybe
			 * new) parent. */
			if ((pat = find_parent_in(ec, ec->byid[at],
			    nsorted)) >= 0)
				pgone[pat] = 1;
			else
				merge = 0;	/* not sorted: a bug */
		}
		if (at >= 0 && e != NULL) {
			/* The same ID: the order by ID holds. */
			if (merge)
				old[nold++] = ec->byid[at];
			else
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
		if (merge && e != NULL)
			add[nadd++] = e;
	}
	for (i = j = 0; i < ec->n; i++) {
		if (i < nsorted && gone[i])
			ds_entry_free(ec->byid[i]);
		else
			ec->byid[j++] = ec->byid[i];
		/* The sorted part's end, once compacted. */
		if (i + 1 == nsorted)
			m = j;
	}
	ec->n = j;
	if (merge) {
		memo_clear(ec);
		for (i = j = 0; i < nsorted; i++)
			if (!pgone[i])
				ec->byparent[j++] = ec->byparent[i];
		qsort(add, nadd, sizeof(*add), cmp_parent);
		merge_into(ec->byparent, j, add, nadd, cmp_parent);
		/* The new ones (past m) into the order by ID. */
		memcpy(add, ec->byid + m, (ec->n - m) * sizeof(*add));
		qsort(add, ec->n - m, sizeof(*add), cmp_id);
		merge_into(ec->byid, m, add, ec->n - m, cmp_id);
	} else
		resort(ec);
	for (i = 0; i < nold; i++)
		ds_entry_free(old[i]);
	free(gone);
	free(pgone);
	free(add);
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
