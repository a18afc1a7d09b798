/*
 * ds_common.c: what the datastore backends share above their engines:
 * list walks, the checks and batching of entry writes, and the audit
 * chain's bookkeeping.  A backend keeps its SQL, binding, fetching of
 * rows and transactions, and calls these with decoded values.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "ds_int.h"
#include "encode.h"
#include "log.h"

/* ---- list walks -------------------------------------------------------- */

int
ds_walk_run(struct ds_walk *w, const char *after, size_t chunk,
    ds_walk_fetch_fn *fetch, void *arg)
{
	size_t	rows;
	int	r;

	if ((w->last = strdup(after != NULL ? after : "")) == NULL)
		return WICK_ERR_ALLOC;
	do {
		rows = 0;
		r = fetch(arg, w->last, &rows);
	} while (r == 0 && !w->more && rows == chunk);
	free(w->last);
	w->last = NULL;
	return r;
}

int
ds_walk_row(struct ds_walk *w, struct ds_entry *e, struct ds_node *n)
{
	char	*key;
	int	 ok;

	if ((key = strdup(e != NULL ? e->id : n->spiffe_id)) == NULL) {
		ds_entry_free(e);
		ds_node_free(n);
		return WICK_ERR_ALLOC;
	}
	free(w->last);
	w->last = key;
	ok = e != NULL ? ds_entry_matches(e, w->f) : ds_node_matches(n, w->f);
	if (ok && w->n == w->limit)
		w->more = 1;
	else if (ok && w->ev != NULL)
		w->ev[w->n++] = e;
	else if (ok && w->nv != NULL)
		w->nv[w->n++] = n;
	else if (ok)
		w->n++;
	if (!ok || w->more || (w->ev == NULL && w->nv == NULL)) {
		ds_entry_free(e);
		ds_node_free(n);
	}
	return 0;
}

/* ---- records ----------------------------------------------------------- */

int
ds_entry_decode(const struct ds_cols *c, const void *row, int base,
    struct ds_entry **out)
{
	struct ds_entry	*e;

	*out = NULL;
	if ((e = ds_entry_new()) == NULL)
		return WICK_ERR_ALLOC;
	if ((e->id = c->text(row, base)) == NULL ||
	    (e->spiffe_id = c->text(row, base + 1)) == NULL ||
	    (e->parent_id = c->text(row, base + 2)) == NULL ||
	    (e->hint = c->text(row, base + 9)) == NULL) {
		ds_entry_free(e);
		return WICK_ERR_ALLOC;
	}
	e->x509_svid_ttl = (int32_t)c->num(row, base + 3);
	e->jwt_svid_ttl = (int32_t)c->num(row, base + 4);
	e->admin = (int)c->num(row, base + 5);
	e->downstream = (int)c->num(row, base + 6);
	e->store_svid = (int)c->num(row, base + 7);
	e->expires_at = c->num(row, base + 8);
	e->revision_number = c->num(row, base + 10);
	e->created_at = c->num(row, base + 11);
	e->change_rev = c->num(row, base + 12);
	*out = e;
	return 0;
}

int
ds_node_decode(const struct ds_cols *c, const void *row, int base,
    struct ds_node **out)
{
	struct ds_node	*n;

	*out = NULL;
	if ((n = ds_node_new()) == NULL)
		return WICK_ERR_ALLOC;
	if ((n->spiffe_id = c->text(row, base)) == NULL ||
	    (n->attestation_type = c->text(row, base + 1)) == NULL ||
	    (n->serial = c->text(row, base + 2)) == NULL ||
	    (n->new_serial = c->text(row, base + 4)) == NULL) {
		ds_node_free(n);
		return WICK_ERR_ALLOC;
	}
	n->expires_at = c->num(row, base + 3);
	n->new_expires_at = c->num(row, base + 5);
	n->can_reattest = (int)c->num(row, base + 6);
	n->created_at = c->num(row, base + 7);
	*out = n;
	return 0;
}

char *
ds_selectors_json(const struct selector_set *set)
{
	json_t	*a = json_array(), *pair;
	char	*out = NULL;
	size_t	 i;

	if (a == NULL)
		return NULL;
	for (i = 0; i < set->n; i++) {
		pair = json_pack("[ss]", set->sel[i].type, set->sel[i].value);
		if (pair == NULL || json_array_append_new(a, pair) != 0)
			goto out;
	}
	out = json_dumps(a, JSON_COMPACT);
out:
	json_decref(a);
	return out;
}

/* ---- entry writes ------------------------------------------------------ */

int
ds_entry_prepare(struct ds *ds, struct ds_entry *e, int create,
    char hash[65], ds_similar_fn *similar)
{
	char	uuid[37], *other = NULL, *id;
	int	r, differs;

	if ((r = ds_selectors_hash(&e->selectors, hash)) != 0)
		return r;
	if ((r = similar(ds, e, hash, &other)) == 0) {
		if (create) {
			free(e->id);
			e->id = other;
			return WICK_ERR_EXISTS;
		}
		differs = strcmp(other, e->id) != 0;
		free(other);
		return differs ? WICK_ERR_EXISTS : 0;
	} else if (r != WICK_ERR_NOT_FOUND)
		return r;
	if (create && (e->id == NULL || *e->id == '\0')) {
		if ((r = uuid4(uuid)) != 0)
			return r;
		if ((id = strdup(uuid)) == NULL)
			return WICK_ERR_ALLOC;
		free(e->id);
		e->id = id;
	}
	return 0;
}

void
ds_entry_stamp(struct ds_entry *e, int64_t created, int64_t revno,
    int64_t rev)
{
	e->created_at = created;
	e->revision_number = revno;
	e->change_rev = rev;
}

/* Item errors a savepoint cannot contain: they doom the whole batch. */
static int
fatal_item(int r)
{
	return r == WICK_ERR_IO || r == WICK_ERR_INTERNAL ||
	    r == WICK_ERR_UNAVAILABLE || r == WICK_ERR_ALLOC;
}

int
ds_batch_run(struct ds *ds, const struct ds_batch_ops *ops,
    enum ds_batch_op op, struct ds_entry **v, const char *const *ids,
    size_t n, int *res, int64_t now)
{
	size_t	i;
	int	r, tried = 0;

	if ((r = ops->begin(ds)) != 0)
		goto fail;
	for (i = 0; i < n; i++) {
		if (res[i] != 0)
			continue;
		if ((r = ops->exec(ds, "SAVEPOINT item")) != 0)
			goto fail;
		tried = 1;
		switch (op) {
		case DS_BATCH_CREATE:
			res[i] = ops->create(ds, v[i], now);
			break;
		case DS_BATCH_UPDATE:
			res[i] = ops->update(ds, v[i], now);
			break;
		case DS_BATCH_DELETE:
			res[i] = ops->delete(ds, ids[i], now);
			break;
		}
		if (fatal_item(res[i])) {
			r = res[i];
			goto fail;
		}
		if ((res[i] != 0 &&
		    (r = ops->exec(ds, "ROLLBACK TO item")) != 0) ||
		    (r = ops->exec(ds, "RELEASE item")) != 0)
			goto fail;
	}
	/* A failed commit has rolled back already. */
	if ((r = ops->finish(ds, 0)) == 0 || !tried)
		return r;
	goto failed;
fail:
	(void)ops->finish(ds, r);
failed:
	/* Nothing was written: no item may claim success. */
	for (i = 0; i < n; i++)
		if (res[i] == 0 || fatal_item(res[i]))
			res[i] = r;
	return r;
}

/* ---- audit chain ------------------------------------------------------- */

/* r from reading the audit anchor: WICK_ERR_NOT_FOUND (no anchor yet)
 * becomes seq 0 and the genesis hash, and 0. */
static int
audit_no_anchor(int r, int64_t *seq, char hash[DS_AUDIT_HASH_HEX])
{
	if (r != WICK_ERR_NOT_FOUND)
		return r;
	*seq = 0;
	snprintf(hash, DS_AUDIT_HASH_HEX, "%s", DS_AUDIT_GENESIS);
	return 0;
}


int
ds_audit_chain(struct ds *ds, const struct ds_audit_ops *ops, int64_t at,
    const char *kind, const char *actor, const char *subject, int ok,
    const char *detail)
{
	struct ds_audit	 a;
	int64_t		 head;
	int		 r;

	memset(&a, 0, sizeof(a));
	if ((r = ops->last(ds, &head, a.prev_hash)) == WICK_ERR_NOT_FOUND)
		r = audit_no_anchor(ops->anchor(ds, &head, a.prev_hash),
		    &head, a.prev_hash);
	if (r != 0)
		return r;
	a.seq = head + 1;
	a.at = at;
	a.kind = (char *)kind;
	a.actor = (char *)actor;
	a.subject = (char *)subject;
	a.ok = ok != 0;
	a.detail_json = (char *)detail;
	if ((r = ds_audit_hash(&a, a.hash)) != 0) {
		/* A head that is not a hash: the chain was damaged. */
		log_error("audit: the chain's head (seq %lld) holds no valid "
		    "hash", (long long)head);
		return r == WICK_ERR_INVALID ? WICK_ERR_STATE : r;
	}
	return ops->put(ds, &a);
}

int
ds_audit_anchor_edited(struct ds_audit_verify *v, int64_t seq, int64_t aseq)
{
	v->bad_seq = seq;
	snprintf(v->why, sizeof(v->why), "anchor edited: seq %lld is still "
	    "there but the anchor says events up to seq %lld were pruned",
	    (long long)seq, (long long)aseq);
	return WICK_ERR_STATE;
}

/* Check each event of a verify slice. */
static int
verify_cb(void *arg, const struct ds_audit *a)
{
	return ds_audit_verify_event(arg, a);
}

int
ds_audit_verify_run(struct ds *ds, const struct ds_audit_ops *ops,
    struct ds_audit_verify *v, size_t max_rows)
{
	char	ahash[DS_AUDIT_HASH_HEX];
	int64_t	aseq, before;
	int	r;

	if ((r = audit_no_anchor(ops->anchor(ds, &aseq, ahash), &aseq,
	    ahash)) != 0)
		return r;
	if (!v->started || aseq >= v->next_seq) {
		v->started = 1;
		v->anchor_seq = aseq;
		v->next_seq = aseq + 1;
		memcpy(v->prev_hash, ahash, sizeof(v->prev_hash));
	}
	if ((r = ops->anchor_check(ds, aseq, v)) == WICK_ERR_STATE) {
		v->done = 1;
		return 0;
	}
	if (r != 0)
		return r;
	before = v->count;
	r = ops->rows(ds, v->next_seq - 1, max_rows, verify_cb, v);
	if (r == WICK_ERR_STATE) {
		v->done = 1;
		r = 0;
	} else if (r == 0 && v->count - before < (int64_t)max_rows)
		v->done = 1;
	return r;
}

struct prune_walk {
	struct ds_audit_verify	 v;
	int64_t			 before;
	int64_t			 last_at;
	size_t			 n;
};

/* Events to drop: oldest first, while older than the cut-off. */
static int
prune_cb(void *arg, const struct ds_audit *a)
{
	struct prune_walk	*w = arg;
	int			 r;

	if (a->at >= w->before)
		return 1;
	if ((r = ds_audit_verify_event(&w->v, a)) != 0)
		return r;
	w->last_at = a->at;
	w->n++;
	return 0;
}

int
ds_audit_prune_run(struct ds *ds, const struct ds_audit_ops *ops,
    int64_t before, size_t max_rows, int64_t now, size_t *pruned)
{
	static struct log_ratelimit	 rl = LOG_RATELIMIT_DEFAULT;
	struct prune_walk		 w;
	char				 detail[256];
	int64_t				 aseq;
	int				 r;

	*pruned = 0;
	memset(&w, 0, sizeof(w));
	w.before = before;
	if ((r = audit_no_anchor(ops->anchor(ds, &aseq, w.v.prev_hash),
	    &aseq, w.v.prev_hash)) != 0)
		return r;
	w.v.next_seq = aseq + 1;
	if ((r = ops->anchor_check(ds, aseq, &w.v)) == 0 &&
	    (r = ops->rows(ds, aseq, max_rows, prune_cb, &w)) == 1)
		r = 0;
	if (r == WICK_ERR_STATE) {
		/* Dropping them would destroy the evidence. */
		log_error_rl(&rl, "audit: not pruning: the chain is broken at "
		    "seq %lld: %s", (long long)w.v.bad_seq, w.v.why);
		return r;
	}
	if (r != 0 || w.n == 0)
		return r;
	if ((r = ops->cut(ds, w.v.next_seq - 1, w.v.prev_hash,
	    w.last_at)) != 0)
		return r;
	snprintf(detail, sizeof(detail), "{\"anchor_hash\":\"%s\","
	    "\"anchor_seq\":%lld,\"before\":%lld,\"pruned\":%zu}",
	    w.v.prev_hash, (long long)(w.v.next_seq - 1), (long long)before,
	    w.n);
	if ((r = ds_audit_chain(ds, ops, now, "audit.prune", "server", "", 1,
	    detail)) != 0)
		return r;
	*pruned = w.n;
	return 0;
}
