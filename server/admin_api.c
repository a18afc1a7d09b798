/*
 * admin_api.c: the admin API on the server's private Unix socket.
 *
 * Callers are authorised by their SO_PEERCRED uid: root, the server's own
 * uid, or a uid listed in admin_uids.  Every change is audited.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/rand.h>

#include "admin.pb-c.h"
#include "admin_audit.h"
#include "encode.h"
#include "entry_cache.h"
#include "health.pb-c.h"
#include "log.h"
#include "pbconv.h"
#include "server.h"
#include "svc.h"
#include "xmalloc.h"

#define ADMIN_PAGE_DEFAULT	1000
#define ADMIN_PAGE_MAX		5000
#define JOIN_TOKEN_MAX		128

int
admin_peer_allowed(struct server *srv, const struct rpc_peer *p)
{
	size_t i;

	if (!p->is_unix)
		return 0;
	if (p->uid == 0 || p->uid == geteuid())
		return 1;
	for (i = 0; i < srv->cfg->nadmin_uids; i++)
		if (srv->cfg->admin_uids[i] == p->uid)
			return 1;
	return 0;
}

static void
admin_start(struct rpc_call *call, void *arg)
{
	struct server		*srv = arg;
	const struct rpc_peer	*p = rpc_call_peer(call);

	rpc_call_set_data(call, srv);
	if (admin_peer_allowed(srv, p))
		return;
	/* Logged (rate-limited) with the uid, pid and method. */
	svc_fail(call, RPC_PERMISSION_DENIED, "uid %lu may not use the admin "
	    "API (allowed: root, the server's uid and admin_uids)",
	    (unsigned long)p->uid);
}

#define SRV(call)	((struct server *)rpc_call_data(call))

#define UNPACK(type, fn, call, p, n, req) do {				\
	if (((req) = fn##__unpack(NULL, (n), (p))) == NULL) {		\
		svc_fail((call), RPC_INVALID_ARGUMENT,			\
		    "malformed " #type " message");			\
		return;							\
	}								\
} while (0)

/* Refresh the entry cache after a change; a failure only delays it
 * (the next refresh applies the same changes). */
static void
refresh_cache(struct server *srv)
{
	static struct log_ratelimit	rl = LOG_RATELIMIT_DEFAULT;
	int				r;

	if ((r = entry_cache_refresh(srv->cache)) != 0)
		log_warn_rl(&rl, "entry cache refresh failed: %s",
		    wick_strerror(r));
}

static const char *
err_msg(int r)
{
	switch (r) {
	case WICK_ERR_EXISTS:
		return "similar entry already exists";
	case WICK_ERR_NOT_FOUND:
		return "entry not found";
	default:
		return wick_strerror(r);
	}
}

/* ---- entries ------------------------------------------------------------ */

struct batch {
	struct ds_entry		**v;
	int			 *res;
	char			**msg;
	Wick__Admin__EntryResult **results;
	Wick__Admin__EntryResult *rbuf;
	Wick__Types__Status	 *sbuf;
	Wick__Types__Entry	 *ebuf;
	size_t			  n;
};

static void batch_free(struct batch *);

static int
batch_init(struct batch *b, size_t n)
{
	size_t i;

	memset(b, 0, sizeof(*b));
	b->n = n;
	if ((b->v = calloc(n + 1, sizeof(*b->v))) == NULL ||
	    (b->res = calloc(n + 1, sizeof(*b->res))) == NULL ||
	    (b->msg = calloc(n + 1, sizeof(*b->msg))) == NULL ||
	    (b->results = calloc(n + 1, sizeof(*b->results))) == NULL ||
	    (b->rbuf = calloc(n + 1, sizeof(*b->rbuf))) == NULL ||
	    (b->sbuf = calloc(n + 1, sizeof(*b->sbuf))) == NULL ||
	    (b->ebuf = calloc(n + 1, sizeof(*b->ebuf))) == NULL) {
		batch_free(b);
		return WICK_ERR_ALLOC;
	}
	for (i = 0; i < n; i++) {
		wick__admin__entry_result__init(&b->rbuf[i]);
		wick__types__status__init(&b->sbuf[i]);
		b->rbuf[i].status = &b->sbuf[i];
		b->results[i] = &b->rbuf[i];
	}
	return 0;
}

/* Also after a batch_init() that failed half way. */
static void
batch_free(struct batch *b)
{
	size_t i;

	for (i = 0; b->ebuf != NULL && i < b->n; i++) {
		ds_entry_free(b->v[i]);
		free(b->msg[i]);
		if (b->rbuf[i].entry != NULL)
			pb_entry_clear(&b->ebuf[i]);
	}
	free(b->v);
	free(b->res);
	free(b->msg);
	free(b->results);
	free(b->rbuf);
	free(b->sbuf);
	free(b->ebuf);
	memset(b, 0, sizeof(*b));
}

/* Fill result i from the batch's outcome. */
static int
batch_result(struct batch *b, size_t i)
{
	enum rpc_status	st = b->res[i] == 0 ? RPC_OK :
	    rpc_status_from_err(b->res[i]);
	int		r;

	if (b->res[i] == WICK_ERR_EXISTS)
		st = RPC_ALREADY_EXISTS;
	b->sbuf[i].code = (int32_t)st;
	/* err_msg() is static text: borrowed, never freed. */
	b->sbuf[i].message = b->msg[i] != NULL ? b->msg[i] : b->res[i] != 0 ?
	    (char *)err_msg(b->res[i]) : "";
	if (b->v[i] != NULL && (b->res[i] == 0 ||
	    b->res[i] == WICK_ERR_EXISTS)) {
		if ((r = pb_from_entry(b->v[i], &b->ebuf[i])) != 0)
			return r;
		b->rbuf[i].entry = &b->ebuf[i];
	}
	return 0;
}

/* Convert and check the request's entries; bad ones get their result. */
static void
batch_load(struct server *srv, struct batch *b, Wick__Types__Entry **in)
{
	const char	*why;
	char		 msg[512];
	size_t		 i;
	int		 r;

	/* Without memory for a message, the result says err_msg(). */
	for (i = 0; i < b->n; i++) {
		if ((r = pb_to_entry(in[i], &b->v[i], &why)) != 0) {
			b->res[i] = r;
			snprintf(msg, sizeof(msg), "invalid entry: %s",
			    why != NULL ? why : wick_strerror(r));
			b->msg[i] = strdup(msg);
			continue;
		}
		if ((r = svc_check_entry(srv, b->v[i], msg, sizeof(msg))) !=
		    0) {
			b->res[i] = r;
			b->msg[i] = strdup(msg);
		}
	}
}

/* Run op on the entries that passed the checks, in one datastore call. */
static int
batch_apply(struct server *srv, struct batch *b, int update)
{
	struct ds_entry	**ok;
	int		 *res;
	size_t		 *idx, n = 0, i;
	int		  r = WICK_ERR_ALLOC;

	ok = calloc(b->n + 1, sizeof(*ok));
	res = calloc(b->n + 1, sizeof(*res));
	idx = calloc(b->n + 1, sizeof(*idx));
	if (ok == NULL || res == NULL || idx == NULL)
		goto out;
	for (i = 0; i < b->n; i++)
		if (b->res[i] == 0) {
			idx[n] = i;
			ok[n++] = b->v[i];
		}
	r = n == 0 ? 0 : update ? ds_entries_update(srv->ds, ok, n, res,
	    server_now()) : ds_entries_create(srv->ds, ok, n, res,
	    server_now());
	for (i = 0; i < n; i++)
		b->res[idx[i]] = r != 0 ? r : res[i];
out:
	free(ok);
	free(res);
	free(idx);
	return r;
}

/* The audit detail of a batch; NULL without memory (server_audit()
 * then records the event without its details). */
static json_t *
batch_audit(struct batch *b, size_t *nok)
{
	json_t	*list = json_array();
	size_t	 i;

	*nok = 0;
	for (i = 0; i < b->n; i++) {
		if (b->res[i] != 0 || b->v[i] == NULL)
			continue;
		(*nok)++;
		if (list != NULL && json_array_append_new(list, json_pack(
		    "{s:s,s:s,s:s}", "id", b->v[i]->id, "spiffe_id",
		    b->v[i]->spiffe_id, "parent_id",
		    b->v[i]->parent_id)) != 0) {
			json_decref(list);
			list = NULL;
		}
	}
	return list != NULL ? json_pack("{s:o}", "entries", list) : NULL;
}

/* The audit record of what a batch changed, if anything. */
static void
batch_record(struct rpc_call *call, struct batch *b, const char *kind)
{
	char	 actor[128];
	json_t	*detail;
	size_t	 nok;

	svc_actor(call, actor, sizeof(actor));
	detail = batch_audit(b, &nok);
	if (nok > 0)
		server_audit(SRV(call), kind, actor, 1, detail);
	else
		json_decref(detail);
}

/*
 * Apply a batch and record it in one transaction; an error when the
 * whole batch failed (then nothing was written, nor recorded).
 */
static int
batch_commit(struct rpc_call *call, struct batch *b, int update)
{
	struct server	*srv = SRV(call);
	int		 tx, r, c;

	tx = server_tx_begin(srv);
	if ((r = batch_apply(srv, b, update)) == 0)
		batch_record(call, b, update ? "entry.update" :
		    "entry.create");
	if ((c = server_tx_end(srv, tx)) != 0 && r == 0)
		r = c;
	return r;
}

static int
batch_finish(struct rpc_call *call, struct batch *b, int update)
{
	struct server	*srv = SRV(call);
	size_t		 i;
	int		 r;

	refresh_cache(srv);
	for (i = 0; i < b->n; i++) {
		/* Return the existing entry for a duplicate, as SPIRE. */
		if (!update && b->res[i] == WICK_ERR_EXISTS && b->v[i] != NULL &&
		    b->v[i]->id != NULL) {
			struct ds_entry *old = NULL;

			if (ds_entry_get(srv->ds, b->v[i]->id, &old) == 0) {
				ds_entry_free(b->v[i]);
				b->v[i] = old;
			}
		}
		if ((r = batch_result(b, i)) != 0)
			return r;
	}
	return 0;
}

static void
m_batch_create(struct rpc_call *call, const uint8_t *p, size_t n)
{
	Wick__Admin__BatchCreateEntryRequest	*req;
	Wick__Admin__BatchCreateEntryResponse	 resp =
	    WICK__ADMIN__BATCH_CREATE_ENTRY_RESPONSE__INIT;
	struct batch				 b;
	int					 r;

	UNPACK(BatchCreateEntryRequest, wick__admin__batch_create_entry_request,
	    call, p, n, req);
	if (req->n_entries > DS_MAX_BATCH) {
		svc_fail(call, RPC_INVALID_ARGUMENT, "batch of %zu entries "
		    "exceeds the limit of %d", req->n_entries, DS_MAX_BATCH);
		goto out;
	}
	if ((r = batch_init(&b, req->n_entries)) != 0) {
		svc_fail(call, rpc_status_from_err(r), "out of memory for a "
		    "batch of %zu entries", req->n_entries);
		goto out;
	}
	batch_load(SRV(call), &b, req->entries);
	if ((r = batch_commit(call, &b, 0)) != 0)
		svc_fail(call, rpc_status_from_err(r), "datastore: cannot "
		    "create the entries: %s", wick_strerror(r));
	else if ((r = batch_finish(call, &b, 0)) != 0)
		svc_fail(call, rpc_status_from_err(r), "entries created, but "
		    "the reply cannot be built: %s", wick_strerror(r));
	else {
		resp.results = b.results;
		resp.n_results = b.n;
		svc_reply(call, &resp.base);
	}
	batch_free(&b);
out:
	wick__admin__batch_create_entry_request__free_unpacked(req, NULL);
}

static void
m_batch_update(struct rpc_call *call, const uint8_t *p, size_t n)
{
	Wick__Admin__BatchUpdateEntryRequest	*req;
	Wick__Admin__BatchUpdateEntryResponse	 resp =
	    WICK__ADMIN__BATCH_UPDATE_ENTRY_RESPONSE__INIT;
	struct batch				 b;
	size_t					 i;
	int					 r;

	UNPACK(BatchUpdateEntryRequest, wick__admin__batch_update_entry_request,
	    call, p, n, req);
	if (req->n_entries > DS_MAX_BATCH) {
		svc_fail(call, RPC_INVALID_ARGUMENT, "batch of %zu entries "
		    "exceeds the limit of %d", req->n_entries, DS_MAX_BATCH);
		goto out;
	}
	if ((r = batch_init(&b, req->n_entries)) != 0) {
		svc_fail(call, rpc_status_from_err(r), "out of memory for a "
		    "batch of %zu entries", req->n_entries);
		goto out;
	}
	batch_load(SRV(call), &b, req->entries);
	for (i = 0; i < b.n; i++)
		if (b.res[i] == 0 && (b.v[i]->id == NULL || *b.v[i]->id ==
		    '\0')) {
			b.res[i] = WICK_ERR_INVALID;
			b.msg[i] = strdup("invalid entry: missing id");
		}
	if ((r = batch_commit(call, &b, 1)) != 0)
		svc_fail(call, rpc_status_from_err(r), "datastore: cannot "
		    "update the entries: %s", wick_strerror(r));
	else if ((r = batch_finish(call, &b, 1)) != 0)
		svc_fail(call, rpc_status_from_err(r), "entries updated, but "
		    "the reply cannot be built: %s", wick_strerror(r));
	else {
		resp.results = b.results;
		resp.n_results = b.n;
		svc_reply(call, &resp.base);
	}
	batch_free(&b);
out:
	wick__admin__batch_update_entry_request__free_unpacked(req, NULL);
}

static void
m_batch_delete(struct rpc_call *call, const uint8_t *p, size_t n)
{
	Wick__Admin__BatchDeleteEntryRequest	*req;
	Wick__Admin__BatchDeleteEntryResponse	 resp =
	    WICK__ADMIN__BATCH_DELETE_ENTRY_RESPONSE__INIT;
	struct server				*srv = SRV(call);
	struct batch				 b;
	char					 actor[128];
	json_t					*ids;
	size_t					 i, nok = 0;
	int					 r, tx;

	UNPACK(BatchDeleteEntryRequest, wick__admin__batch_delete_entry_request,
	    call, p, n, req);
	if (req->n_ids > DS_MAX_BATCH) {
		svc_fail(call, RPC_INVALID_ARGUMENT, "batch of %zu IDs "
		    "exceeds the limit of %d", req->n_ids, DS_MAX_BATCH);
		goto out;
	}
	if ((r = batch_init(&b, req->n_ids)) != 0) {
		svc_fail(call, rpc_status_from_err(r), "out of memory for a "
		    "batch of %zu IDs", req->n_ids);
		goto out;
	}
	tx = server_tx_begin(srv);
	r = req->n_ids == 0 ? 0 : ds_entries_delete(srv->ds,
	    (const char *const *)req->ids, req->n_ids, b.res, server_now());
	if (r != 0) {
		server_tx_abort(srv, tx);
		svc_fail(call, rpc_status_from_err(r), "datastore: cannot "
		    "delete the entries: %s", wick_strerror(r));
		batch_free(&b);
		goto out;
	}
	ids = json_array();
	for (i = 0; i < b.n; i++) {
		(void)batch_result(&b, i);	/* no entry: cannot fail */
		if (b.res[i] == 0) {
			nok++;
			if (ids != NULL && json_array_append_new(ids,
			    json_string(req->ids[i])) != 0) {
				json_decref(ids);
				ids = NULL;
			}
		}
		/* Echo the ID so that the caller can match results. */
		wick__types__entry__init(&b.ebuf[i]);
		b.ebuf[i].id = req->ids[i];
		b.rbuf[i].entry = &b.ebuf[i];
	}
	svc_actor(call, actor, sizeof(actor));
	if (nok > 0)
		server_audit(srv, "entry.delete", actor, 1, ids != NULL ?
		    json_pack("{s:o}", "ids", ids) : NULL);
	else
		json_decref(ids);
	r = server_tx_end(srv, tx);
	refresh_cache(srv);
	resp.results = b.results;
	resp.n_results = b.n;
	if (r != 0)
		svc_fail(call, rpc_status_from_err(r), "datastore: cannot "
		    "delete the entries: %s", wick_strerror(r));
	else
		svc_reply(call, &resp.base);
	batch_free(&b);
out:
	wick__admin__batch_delete_entry_request__free_unpacked(req, NULL);
}

static void
m_get_entry(struct rpc_call *call, const uint8_t *p, size_t n)
{
	Wick__Admin__GetEntryRequest	*req;
	Wick__Types__Entry		 pb;
	struct ds_entry			*e = NULL;
	int				 r;

	UNPACK(GetEntryRequest, wick__admin__get_entry_request, call, p, n,
	    req);
	if ((r = ds_entry_get(SRV(call)->ds, req->id, &e)) != 0) {
		svc_fail(call, r == WICK_ERR_NOT_FOUND ? RPC_NOT_FOUND :
		    rpc_status_from_err(r), "entry \"%.200s\": %s", req->id,
		    r == WICK_ERR_NOT_FOUND ? "not found" : wick_strerror(r));
		goto out;
	}
	if ((r = pb_from_entry(e, &pb)) != 0)
		svc_fail(call, rpc_status_from_err(r), "cannot encode entry "
		    "\"%.200s\": %s", req->id, wick_strerror(r));
	else {
		svc_reply(call, &pb.base);
		pb_entry_clear(&pb);
	}
	ds_entry_free(e);
out:
	wick__admin__get_entry_request__free_unpacked(req, NULL);
}

/* Build a datastore filter from a list request; *why on bad input. */
static int
entry_filter(Wick__Admin__ListEntriesRequest *req, struct ds_entry_filter *f,
    struct selector_set *sel, char *msg, size_t msglen)
{
	const char	*why;
	int		 r;

	memset(f, 0, sizeof(*f));
	if (*req->by_spiffe_id != '\0')
		f->spiffe_id = req->by_spiffe_id;
	if (*req->by_parent_id != '\0')
		f->parent_id = req->by_parent_id;
	if (*req->by_hint != '\0')
		f->hint = req->by_hint;
	if (req->n_by_selectors > 0) {
		if ((r = pb_to_selectors(req->by_selectors,
		    req->n_by_selectors, sel, &why)) != 0) {
			snprintf(msg, msglen, "invalid selector filter: %s",
			    why);
			return r;
		}
		f->selectors = sel;
		f->selector_match = (enum ds_match)req->selector_match;
	}
	if (req->n_by_federates_with > 0) {
		f->federates_with = (const char *const *)req->by_federates_with;
		f->nfederates_with = req->n_by_federates_with;
		f->federates_match = (enum ds_match)req->federates_with_match;
	}
	if ((unsigned)req->selector_match > DS_MATCH_ANY ||
	    (unsigned)req->federates_with_match > DS_MATCH_ANY) {
		snprintf(msg, msglen, "unknown match behaviour");
		return WICK_ERR_INVALID;
	}
	f->downstream_only = req->filter_downstream;
	return 0;
}

static void
m_list_entries(struct rpc_call *call, const uint8_t *p, size_t n)
{
	Wick__Admin__ListEntriesRequest		*req;
	Wick__Admin__ListEntriesResponse	 resp =
	    WICK__ADMIN__LIST_ENTRIES_RESPONSE__INIT;
	struct ds_entry_filter			 f;
	struct ds_entry_list			 l;
	struct selector_set			 sel;
	Wick__Types__Entry			*pbs = NULL, **pv = NULL;
	char					 msg[256];
	size_t					 i, lim;
	int					 r;

	UNPACK(ListEntriesRequest, wick__admin__list_entries_request, call, p,
	    n, req);
	selector_set_init(&sel);
	memset(&l, 0, sizeof(l));
	if ((r = entry_filter(req, &f, &sel, msg, sizeof(msg))) != 0) {
		svc_fail(call, RPC_INVALID_ARGUMENT, "%s", msg);
		goto out;
	}
	if (req->page_size < 0) {
		svc_fail(call, RPC_INVALID_ARGUMENT, "page_size must not be "
		    "negative");
		goto out;
	}
	lim = req->page_size == 0 ? ADMIN_PAGE_DEFAULT :
	    (size_t)req->page_size > ADMIN_PAGE_MAX ? ADMIN_PAGE_MAX :
	    (size_t)req->page_size;
	if ((r = ds_entries_list(SRV(call)->ds, &f, req->page_token, lim,
	    &l)) != 0) {
		svc_fail(call, r == WICK_ERR_INVALID ? RPC_INVALID_ARGUMENT :
		    rpc_status_from_err(r), "cannot list entries: %s",
		    wick_strerror(r));
		goto out;
	}
	if ((pbs = calloc(l.n + 1, sizeof(*pbs))) == NULL ||
	    (pv = calloc(l.n + 1, sizeof(*pv))) == NULL) {
		svc_fail(call, RPC_RESOURCE_EXHAUSTED, "out of memory for %zu "
		    "entries", l.n);
		goto out;
	}
	for (i = 0; i < l.n; i++) {
		if ((r = pb_from_entry(l.v[i], &pbs[i])) != 0) {
			svc_fail(call, rpc_status_from_err(r), "cannot encode "
			    "the entries: %s", wick_strerror(r));
			goto out;
		}
		pv[i] = &pbs[i];
	}
	resp.entries = pv;
	resp.n_entries = l.n;
	resp.next_page_token = l.next_token != NULL ? l.next_token : "";
	svc_reply(call, &resp.base);
out:
	/* Zeroed or converted: clearing either is right. */
	for (i = 0; pbs != NULL && i < l.n; i++)
		pb_entry_clear(&pbs[i]);
	free(pbs);
	free(pv);
	ds_entry_list_free(&l);
	selector_set_cleanup(&sel);
	wick__admin__list_entries_request__free_unpacked(req, NULL);
}

static void
m_count_entries(struct rpc_call *call, const uint8_t *p, size_t n)
{
	Wick__Admin__ListEntriesRequest	*req;
	Wick__Admin__CountResponse	 resp = WICK__ADMIN__COUNT_RESPONSE__INIT;
	struct ds_entry_filter		 f;
	struct selector_set		 sel;
	char				 msg[256];
	int64_t				 count;
	int				 r;

	UNPACK(ListEntriesRequest, wick__admin__list_entries_request, call, p,
	    n, req);
	selector_set_init(&sel);
	if ((r = entry_filter(req, &f, &sel, msg, sizeof(msg))) != 0)
		svc_fail(call, RPC_INVALID_ARGUMENT, "%s", msg);
	else if ((r = ds_entries_count(SRV(call)->ds, &f, &count)) != 0)
		svc_fail(call, rpc_status_from_err(r), "cannot count entries: "
		    "%s", wick_strerror(r));
	else {
		resp.count = count;
		svc_reply(call, &resp.base);
	}
	selector_set_cleanup(&sel);
	wick__admin__list_entries_request__free_unpacked(req, NULL);
}

/* ---- join tokens and agents --------------------------------------------- */

static int
token_ok(const char *t)
{
	size_t i, n = strlen(t);

	if (n == 0 || n > JOIN_TOKEN_MAX)
		return 0;
	for (i = 0; i < n; i++)
		if (!((t[i] >= 'a' && t[i] <= 'z') || (t[i] >= 'A' &&
		    t[i] <= 'Z') || (t[i] >= '0' && t[i] <= '9') ||
		    t[i] == '-' || t[i] == '_' || t[i] == '.'))
			return 0;
	return strcmp(t, ".") != 0 && strcmp(t, "..") != 0;
}

/* token generate -spiffeID: an entry for the ID, parented to the agent. */
static int
token_alias(struct server *srv, const char *agent_id, const char *spiffe_id,
    char *msg, size_t msglen)
{
	struct ds_entry	*e;
	const char	*why = NULL;
	int		 res = 0, r;

	if ((e = ds_entry_new()) == NULL ||
	    (e->id = strdup("")) == NULL ||
	    (e->spiffe_id = strdup(spiffe_id)) == NULL ||
	    (e->parent_id = strdup(agent_id)) == NULL ||
	    (e->hint = strdup("")) == NULL) {
		snprintf(msg, msglen, "out of memory");
		ds_entry_free(e);
		return WICK_ERR_ALLOC;
	}
	if ((r = selector_set_add(&e->selectors, "spiffe_id", agent_id,
	    &why)) != 0) {
		snprintf(msg, msglen, "%s", why != NULL ? why :
		    wick_strerror(r));
		ds_entry_free(e);
		return r;
	}
	if ((r = svc_check_entry(srv, e, msg, msglen)) == 0 &&
	    (r = ds_entries_create(srv->ds, &e, 1, &res, server_now())) == 0)
		r = res;
	if (r != 0 && *msg == '\0')
		snprintf(msg, msglen, "%s", err_msg(r));
	ds_entry_free(e);
	return r;
}

static void
m_create_join_token(struct rpc_call *call, const uint8_t *p, size_t n)
{
	Wick__Admin__CreateJoinTokenRequest	*req;
	Wick__Admin__CreateJoinTokenResponse	 resp =
	    WICK__ADMIN__CREATE_JOIN_TOKEN_RESPONSE__INIT;
	struct server				*srv = SRV(call);
	struct spiffeid				 aid;
	char					 tok[JOIN_TOKEN_MAX + 1];
	char					 agent[SPIFFEID_MAX_LEN + 1];
	char					 actor[128];
	char					 tag[SVC_TOKEN_TAG_LEN + 1];
	char					 msg[512] = "";
	int64_t					 exp;
	int					 r, ra = 0, tx;

	UNPACK(CreateJoinTokenRequest, wick__admin__create_join_token_request,
	    call, p, n, req);
	if (req->ttl <= 0 || req->ttl > SERVER_TOKEN_TTL_MAX) {
		svc_fail(call, RPC_INVALID_ARGUMENT, "ttl is required and must "
		    "be between 1 and %d seconds", SERVER_TOKEN_TTL_MAX);
		goto out;
	}
	if (*req->token != '\0') {
		if (!token_ok(req->token)) {
			svc_fail(call, RPC_INVALID_ARGUMENT, "invalid token: at "
			    "most %d characters of [A-Za-z0-9._-]",
			    JOIN_TOKEN_MAX);
			goto out;
		}
		snprintf(tok, sizeof(tok), "%s", req->token);
	} else if (uuid4(tok) != 0) {
		svc_fail(call, RPC_INTERNAL, "no randomness for a token");
		goto out;
	}
	if (spiffeid_join_token_agent(srv->cfg->trust_domain, tok, &aid) !=
	    0 || spiffeid_format(&aid, agent, sizeof(agent)) != 0) {
		svc_fail(call, RPC_INVALID_ARGUMENT, "invalid token");
		goto out;
	}
	exp = server_now() + req->ttl;
	tx = server_tx_begin(srv);
	if ((r = ds_join_token_create(srv->ds, tok, exp)) != 0) {
		server_tx_abort(srv, tx);
		svc_fail(call, r == WICK_ERR_EXISTS ? RPC_ALREADY_EXISTS :
		    rpc_status_from_err(r), "cannot create the token: %s",
		    r == WICK_ERR_EXISTS ? "it already exists" :
		    wick_strerror(r));
		goto wipe;
	}
	if (*req->agent_id != '\0')
		ra = token_alias(srv, agent, req->agent_id, msg, sizeof(msg));
	/* A short, non-reversible tag for the audit trail. */
	svc_token_tag(tok, tag);
	svc_actor(call, actor, sizeof(actor));
	server_audit(srv, "join_token.create", actor, 1, json_pack(
	    "{s:s,s:I,s:s,s:b}", "token_sha256_prefix", tag, "expires_at",
	    (json_int_t)exp, "alias", req->agent_id, "alias_created",
	    *req->agent_id != '\0' && ra == 0));
	r = server_tx_end(srv, tx);
	refresh_cache(srv);
	if (r != 0)
		svc_fail(call, rpc_status_from_err(r), "cannot create the "
		    "token: %s", wick_strerror(r));
	else if (ra != 0)
		svc_fail(call, ra == WICK_ERR_EXISTS ? RPC_ALREADY_EXISTS :
		    ra == WICK_ERR_INVALID || ra == WICK_ERR_LIMIT ?
		    RPC_INVALID_ARGUMENT : rpc_status_from_err(ra), "token "
		    "created but its entry for %.200s was not: %s",
		    req->agent_id, msg);
	else {
		resp.token = tok;
		resp.expires_at = exp;
		svc_reply(call, &resp.base);
	}
wipe:
	wipe(tok, sizeof(tok));
	wipe(agent, sizeof(agent));
out:
	if (req->token != NULL)
		wipe(req->token, strlen(req->token));
	wick__admin__create_join_token_request__free_unpacked(req, NULL);
}

static int
node_filter(Wick__Admin__ListAgentsRequest *req, struct ds_node_filter *f,
    struct selector_set *sel, char *msg, size_t msglen)
{
	const char	*why;
	int		 r;

	memset(f, 0, sizeof(*f));
	if (*req->by_attestation_type != '\0')
		f->attestation_type = req->by_attestation_type;
	if (req->by_banned < 0 || req->by_banned > 2 ||
	    (unsigned)req->selector_match > DS_MATCH_ANY) {
		snprintf(msg, msglen, "invalid filter");
		return WICK_ERR_INVALID;
	}
	f->banned = req->by_banned;
	f->expires_before = req->by_expires_before;
	if (req->n_by_selectors > 0) {
		if ((r = pb_to_selectors(req->by_selectors,
		    req->n_by_selectors, sel, &why)) != 0) {
			snprintf(msg, msglen, "invalid selector filter: %s",
			    why);
			return r;
		}
		f->selectors = sel;
		f->selector_match = (enum ds_match)req->selector_match;
	}
	return 0;
}

static void
m_list_agents(struct rpc_call *call, const uint8_t *p, size_t n)
{
	Wick__Admin__ListAgentsRequest	*req;
	Wick__Admin__ListAgentsResponse	 resp =
	    WICK__ADMIN__LIST_AGENTS_RESPONSE__INIT;
	struct ds_node_filter		 f;
	struct ds_node_list		 l;
	struct selector_set		 sel;
	Wick__Types__Agent		*pbs = NULL, **pv = NULL;
	char				 msg[256];
	size_t				 i, lim;
	int				 r;

	UNPACK(ListAgentsRequest, wick__admin__list_agents_request, call, p, n,
	    req);
	selector_set_init(&sel);
	memset(&l, 0, sizeof(l));
	if ((r = node_filter(req, &f, &sel, msg, sizeof(msg))) != 0 ||
	    req->page_size < 0) {
		svc_fail(call, RPC_INVALID_ARGUMENT, "%s", r != 0 ? msg :
		    "page_size must not be negative");
		goto out;
	}
	lim = req->page_size == 0 ? ADMIN_PAGE_DEFAULT :
	    (size_t)req->page_size > ADMIN_PAGE_MAX ? ADMIN_PAGE_MAX :
	    (size_t)req->page_size;
	if ((r = ds_nodes_list(SRV(call)->ds, &f, req->page_token, lim,
	    &l)) != 0) {
		svc_fail(call, rpc_status_from_err(r), "cannot list agents: %s",
		    wick_strerror(r));
		goto out;
	}
	if ((pbs = calloc(l.n + 1, sizeof(*pbs))) == NULL ||
	    (pv = calloc(l.n + 1, sizeof(*pv))) == NULL) {
		svc_fail(call, RPC_RESOURCE_EXHAUSTED, "out of memory for %zu "
		    "agents", l.n);
		goto out;
	}
	for (i = 0; i < l.n; i++) {
		if ((r = pb_from_node(l.v[i], &pbs[i])) != 0) {
			svc_fail(call, rpc_status_from_err(r), "cannot encode "
			    "the agents: %s", wick_strerror(r));
			goto out;
		}
		pv[i] = &pbs[i];
	}
	resp.agents = pv;
	resp.n_agents = l.n;
	resp.next_page_token = l.next_token != NULL ? l.next_token : "";
	svc_reply(call, &resp.base);
out:
	/* Zeroed or converted: clearing either is right. */
	for (i = 0; pbs != NULL && i < l.n; i++)
		pb_agent_clear(&pbs[i]);
	free(pbs);
	free(pv);
	ds_node_list_free(&l);
	selector_set_cleanup(&sel);
	wick__admin__list_agents_request__free_unpacked(req, NULL);
}

static void
m_count_agents(struct rpc_call *call, const uint8_t *p, size_t n)
{
	Wick__Admin__ListAgentsRequest	*req;
	Wick__Admin__CountResponse	 resp = WICK__ADMIN__COUNT_RESPONSE__INIT;
	struct ds_node_filter		 f;
	struct selector_set		 sel;
	char				 msg[256];
	int64_t				 count;
	int				 r;

	UNPACK(ListAgentsRequest, wick__admin__list_agents_request, call, p, n,
	    req);
	selector_set_init(&sel);
	if ((r = node_filter(req, &f, &sel, msg, sizeof(msg))) != 0)
		svc_fail(call, RPC_INVALID_ARGUMENT, "%s", msg);
	else if ((r = ds_nodes_count(SRV(call)->ds, &f, &count)) != 0)
		svc_fail(call, rpc_status_from_err(r), "cannot count agents: %s",
		    wick_strerror(r));
	else {
		resp.count = count;
		svc_reply(call, &resp.base);
	}
	selector_set_cleanup(&sel);
	wick__admin__list_agents_request__free_unpacked(req, NULL);
}

static void
m_get_agent(struct rpc_call *call, const uint8_t *p, size_t n)
{
	Wick__Admin__GetAgentRequest	*req;
	Wick__Types__Agent		 pb;
	struct ds_node			*node = NULL;
	int				 r;

	UNPACK(GetAgentRequest, wick__admin__get_agent_request, call, p, n,
	    req);
	if ((r = ds_node_get(SRV(call)->ds, req->spiffe_id, &node)) != 0)
		svc_fail(call, r == WICK_ERR_NOT_FOUND ? RPC_NOT_FOUND :
		    rpc_status_from_err(r), "agent \"%.200s\": %s",
		    req->spiffe_id, r == WICK_ERR_NOT_FOUND ? "not found" :
		    wick_strerror(r));
	else if ((r = pb_from_node(node, &pb)) != 0)
		svc_fail(call, rpc_status_from_err(r), "cannot encode the "
		    "agent: %s", wick_strerror(r));
	else {
		svc_reply(call, &pb.base);
		pb_agent_clear(&pb);
	}
	ds_node_free(node);
	wick__admin__get_agent_request__free_unpacked(req, NULL);
}

/* Evict drops the node and the entries "token generate -spiffeID" made. */
static int
drop_token_aliases(struct server *srv, const char *agent_id)
{
	struct ds_entry_filter	 f;
	struct ds_entry_list	 l;
	struct selector_set	 sel;
	const char		*why, **ids = NULL;
	size_t			 i;
	int			*res = NULL, r;

	selector_set_init(&sel);
	memset(&f, 0, sizeof(f));
	memset(&l, 0, sizeof(l));
	f.parent_id = agent_id;
	if ((r = selector_set_add(&sel, "spiffe_id", agent_id, &why)) != 0)
		goto out;
	f.selectors = &sel;
	f.selector_match = DS_MATCH_EXACT;
	if ((r = ds_entries_list(srv->ds, &f, NULL, 0, &l)) != 0 || l.n == 0)
		goto out;
	if ((ids = calloc(l.n, sizeof(*ids))) == NULL ||
	    (res = calloc(l.n, sizeof(*res))) == NULL) {
		r = WICK_ERR_ALLOC;
		goto out;
	}
	for (i = 0; i < l.n; i++)
		ids[i] = l.v[i]->id;
	r = ds_entries_delete(srv->ds, ids, l.n, res, server_now());
out:
	free(ids);
	free(res);
	ds_entry_list_free(&l);
	selector_set_cleanup(&sel);
	return r;
}

static void
agent_change(struct rpc_call *call, const uint8_t *p, size_t n, int ban)
{
	Wick__Admin__GetAgentRequest	*req;
	Wick__Admin__Empty		 resp = WICK__ADMIN__EMPTY__INIT;
	struct server			*srv = SRV(call);
	char				 actor[128];
	int				 r, tx, c;

	UNPACK(GetAgentRequest, wick__admin__get_agent_request, call, p, n,
	    req);
	tx = server_tx_begin(srv);
	r = ban ? ds_node_ban(srv->ds, req->spiffe_id, server_now()) :
	    ds_node_delete(srv->ds, req->spiffe_id, server_now());
	if (r != 0) {
		server_tx_abort(srv, tx);
		svc_fail(call, r == WICK_ERR_NOT_FOUND ? RPC_NOT_FOUND :
		    rpc_status_from_err(r), "agent \"%.200s\": %s",
		    req->spiffe_id, r == WICK_ERR_NOT_FOUND ? "not found" :
		    wick_strerror(r));
		goto out;
	}
	if (!ban && strstr(req->spiffe_id, "/spire/agent/join_token/") != NULL)
		r = drop_token_aliases(srv, req->spiffe_id);
	svc_actor(call, actor, sizeof(actor));
	server_audit(srv, ban ? "agent.ban" : "agent.evict", actor, 1,
	    json_pack("{s:s}", "spiffe_id", req->spiffe_id));
	if ((c = server_tx_end(srv, tx)) != 0) {
		refresh_cache(srv);
		svc_fail(call, rpc_status_from_err(c), "agent \"%.200s\": "
		    "datastore: %s", req->spiffe_id, wick_strerror(c));
		goto out;
	}
	refresh_cache(srv);
	if (r != 0)
		svc_fail(call, rpc_status_from_err(r), "agent \"%.200s\" "
		    "evicted, but its alias entries were not deleted: %s",
		    req->spiffe_id, wick_strerror(r));
	else
		svc_reply(call, &resp.base);
out:
	wick__admin__get_agent_request__free_unpacked(req, NULL);
}

static void
m_evict_agent(struct rpc_call *call, const uint8_t *p, size_t n)
{
	agent_change(call, p, n, 0);
}

static void
m_ban_agent(struct rpc_call *call, const uint8_t *p, size_t n)
{
	agent_change(call, p, n, 1);
}

/* ---- bundles ------------------------------------------------------------ */

static void
send_raw(struct rpc_call *call, const uint8_t *p, size_t n)
{
	if (rpc_call_send_message(call, p, n) != 0)
		(void)rpc_call_finish(call, RPC_INTERNAL, "cannot send reply");
	else
		(void)rpc_call_finish(call, RPC_OK, NULL);
}

static void
m_get_bundle(struct rpc_call *call, const uint8_t *p, size_t n)
{
	struct server	*srv = SRV(call);
	struct buf	 b;

	buf_init(&b, BUNDLE_MAX_DOC);
	if (bundle_pack(srv->bundle, &b) != 0)
		svc_fail(call, RPC_INTERNAL, "cannot encode the bundle");
	else
		send_raw(call, buf_ptr(&b), buf_len(&b));
	buf_cleanup(&b);
}

struct fed_list {
	const char		 *own;
	Wick__Types__Bundle	**v;
	size_t			  n, cap;
};

static int
collect_fed(void *arg, const char *td_id, const uint8_t *p, size_t n)
{
	struct fed_list		 *fl = arg;
	Wick__Types__Bundle	**v;
	size_t			  cap;

	if (strcmp(td_id, fl->own) == 0)
		return 0;
	if (fl->n == fl->cap) {
		cap = fl->cap == 0 ? 16 : fl->cap * 2;
		if ((v = reallocarray(fl->v, cap, sizeof(*v))) == NULL)
			return WICK_ERR_ALLOC;
		fl->v = v;
		fl->cap = cap;
	}
	/* Written by us (checked when set): only memory can fail here. */
	if ((fl->v[fl->n] = wick__types__bundle__unpack(NULL, n, p)) == NULL)
		return WICK_ERR_ALLOC;
	fl->n++;
	return 0;
}

static void
m_list_federated(struct rpc_call *call, const uint8_t *p, size_t n)
{
	Wick__Admin__ListFederatedBundlesResponse resp =
	    WICK__ADMIN__LIST_FEDERATED_BUNDLES_RESPONSE__INIT;
	struct server		*srv = SRV(call);
	struct fed_list		 fl;
	size_t			 i;
	int			 r;

	memset(&fl, 0, sizeof(fl));
	fl.own = srv->td_id;
	if ((r = ds_bundles_foreach(srv->ds, collect_fed, &fl)) != 0)
		svc_fail(call, rpc_status_from_err(r), "cannot list bundles: "
		    "%s", wick_strerror(r));
	else {
		resp.bundles = fl.v;
		resp.n_bundles = fl.n;
		resp.next_page_token = "";
		svc_reply(call, &resp.base);
	}
	for (i = 0; i < fl.n; i++)
		wick__types__bundle__free_unpacked(fl.v[i], NULL);
	free(fl.v);
}

static void
m_set_federated(struct rpc_call *call, const uint8_t *p, size_t n)
{
	Wick__Admin__Empty	 resp = WICK__ADMIN__EMPTY__INIT;
	struct server		*srv = SRV(call);
	struct bundle		*b = NULL;
	struct buf		 out;
	const char		*why;
	char			 tdid[SPIFFEID_MAX_TD_LEN + 16], actor[128];
	int			 r, tx;

	if ((r = bundle_unpack(p, n, &b, &why)) != 0) {
		svc_fail(call, RPC_INVALID_ARGUMENT, "invalid bundle: %s", why);
		return;
	}
	bundle_td_id(b, tdid, sizeof(tdid));
	if (strcmp(b->td, srv->cfg->trust_domain) == 0) {
		svc_fail(call, RPC_INVALID_ARGUMENT, "%s is the server's own "
		    "trust domain; its bundle cannot be set", tdid);
		goto out;
	}
	if (sk_X509_num(b->x509) == 0 && b->nkeys[0] == 0 &&
	    b->nkeys[1] == 0) {
		svc_fail(call, RPC_INVALID_ARGUMENT, "bundle for %s has no "
		    "authorities", tdid);
		goto out;
	}
	buf_init(&out, BUNDLE_MAX_DOC);
	/* The bundle and its audit record: both or neither. */
	tx = server_tx_begin(srv);
	if ((r = bundle_pack(b, &out)) == 0)
		r = ds_bundle_set(srv->ds, tdid, buf_ptr(&out), buf_len(&out),
		    server_now());
	buf_cleanup(&out);
	if (r != 0) {
		server_tx_abort(srv, tx);
		svc_fail(call, rpc_status_from_err(r), "cannot store the "
		    "bundle: %s", wick_strerror(r));
		goto out;
	}
	svc_actor(call, actor, sizeof(actor));
	server_audit(srv, "bundle.set", actor, 1, json_pack("{s:s,s:i}",
	    "trust_domain", tdid, "x509_authorities", sk_X509_num(b->x509)));
	if ((r = server_tx_end(srv, tx)) != 0) {
		svc_fail(call, rpc_status_from_err(r), "cannot store the "
		    "bundle: %s", wick_strerror(r));
		goto out;
	}
	svc_reply(call, &resp.base);
out:
	bundle_free(b);
}

static void
m_delete_federated(struct rpc_call *call, const uint8_t *p, size_t n)
{
	Wick__Admin__DeleteFederatedBundleRequest *req;
	Wick__Admin__Empty	 resp = WICK__ADMIN__EMPTY__INIT;
	struct server		*srv = SRV(call);
	struct ds_entry_filter	 f;
	char			 td[SPIFFEID_MAX_TD_LEN + 1];
	char			 tdid[SPIFFEID_MAX_TD_LEN + 16], actor[128];
	const char		*why, *fw[1];
	int64_t			 users = 0;
	int			 r, tx = 0;

	UNPACK(DeleteFederatedBundleRequest,
	    wick__admin__delete_federated_bundle_request, call, p, n, req);
	if (spiffeid_td_parse(req->trust_domain, 0, td, &why) != 0) {
		svc_fail(call, RPC_INVALID_ARGUMENT, "invalid trust domain "
		    "\"%.200s\": %s", req->trust_domain, why);
		goto out;
	}
	snprintf(tdid, sizeof(tdid), "spiffe://%s", td);
	if (strcmp(td, srv->cfg->trust_domain) == 0) {
		svc_fail(call, RPC_INVALID_ARGUMENT, "%s is the server's own "
		    "trust domain; its bundle cannot be deleted", tdid);
		goto out;
	}
	memset(&f, 0, sizeof(f));
	fw[0] = tdid;
	f.federates_with = fw;
	f.nfederates_with = 1;
	f.federates_match = DS_MATCH_ANY;
	if ((r = ds_entries_count(srv->ds, &f, &users)) == 0 && users > 0) {
		svc_fail(call, RPC_FAILED_PRECONDITION, "%lld registration "
		    "entries federate with %s; update them first",
		    (long long)users, tdid);
		goto out;
	}
	/* The deletion and its audit record: both or neither. */
	if (r == 0) {
		tx = server_tx_begin(srv);
		r = ds_bundle_delete(srv->ds, tdid, server_now());
	}
	if (r != 0) {
		server_tx_abort(srv, tx);
		svc_fail(call, r == WICK_ERR_NOT_FOUND ? RPC_NOT_FOUND :
		    rpc_status_from_err(r), "bundle for %s: %s", tdid,
		    r == WICK_ERR_NOT_FOUND ? "not found" : wick_strerror(r));
		goto out;
	}
	svc_actor(call, actor, sizeof(actor));
	server_audit(srv, "bundle.delete", actor, 1, json_pack("{s:s}",
	    "trust_domain", tdid));
	if ((r = server_tx_end(srv, tx)) != 0) {
		svc_fail(call, rpc_status_from_err(r), "bundle for %s: "
		    "datastore: %s", tdid, wick_strerror(r));
		goto out;
	}
	svc_reply(call, &resp.base);
out:
	wick__admin__delete_federated_bundle_request__free_unpacked(req, NULL);
}

/* ---- server ------------------------------------------------------------- */

static void
m_set_log_level(struct rpc_call *call, const uint8_t *p, size_t n)
{
	Wick__Admin__SetLogLevelRequest	*req;
	Wick__Admin__Empty		 resp = WICK__ADMIN__EMPTY__INIT;
	enum log_level			 lvl;
	char				 actor[128];

	UNPACK(SetLogLevelRequest, wick__admin__set_log_level_request, call, p,
	    n, req);
	if (log_level_parse(req->level, &lvl) != 0)
		svc_fail(call, RPC_INVALID_ARGUMENT, "unknown log level "
		    "\"%.50s\"", req->level);
	else {
		log_set_level(lvl);
		svc_actor(call, actor, sizeof(actor));
		server_audit(SRV(call), "server.log_level", actor, 1,
		    json_pack("{s:s}", "level", req->level));
		svc_reply(call, &resp.base);
	}
	wick__admin__set_log_level_request__free_unpacked(req, NULL);
}

static void
m_health_check(struct rpc_call *call, const uint8_t *p, size_t n)
{
	Grpc__Health__V1__HealthCheckRequest	*req;
	Grpc__Health__V1__HealthCheckResponse	 resp =
	    GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__INIT;
	struct server				*srv = SRV(call);
	int64_t					 rev;

	UNPACK(HealthCheckRequest, grpc__health__v1__health_check_request,
	    call, p, n, req);
	resp.status = ds_revision(srv->ds, &rev) == 0 &&
	    ca_manager_active(srv->cam, CA_KIND_X509) != NULL ?
	    GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING :
	    GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__NOT_SERVING;
	svc_reply(call, &resp.base);
	grpc__health__v1__health_check_request__free_unpacked(req, NULL);
}

/* Every handler runs on the state thread (worker.h, server_offload()). */
#define UNARY(path, fn) { path, RPC_KIND_UNARY, admin_start, fn, NULL, NULL, \
	NULL, NULL, 0 }
/* Calls with state of their own (admin_audit.c). */
#define JOB(path, fn) { path, RPC_KIND_UNARY, admin_job_start, fn, NULL, \
	NULL, admin_job_done, NULL, 0 }

static struct rpc_method admin_methods[] = {
	UNARY("/wick.admin.Entries/BatchCreateEntry", m_batch_create),
	UNARY("/wick.admin.Entries/BatchUpdateEntry", m_batch_update),
	UNARY("/wick.admin.Entries/BatchDeleteEntry", m_batch_delete),
	UNARY("/wick.admin.Entries/GetEntry", m_get_entry),
	UNARY("/wick.admin.Entries/ListEntries", m_list_entries),
	UNARY("/wick.admin.Entries/CountEntries", m_count_entries),
	UNARY("/wick.admin.Agents/CreateJoinToken", m_create_join_token),
	UNARY("/wick.admin.Agents/ListAgents", m_list_agents),
	UNARY("/wick.admin.Agents/GetAgent", m_get_agent),
	UNARY("/wick.admin.Agents/EvictAgent", m_evict_agent),
	UNARY("/wick.admin.Agents/BanAgent", m_ban_agent),
	UNARY("/wick.admin.Agents/CountAgents", m_count_agents),
	UNARY("/wick.admin.Bundles/GetBundle", m_get_bundle),
	UNARY("/wick.admin.Bundles/ListFederatedBundles", m_list_federated),
	UNARY("/wick.admin.Bundles/SetFederatedBundle", m_set_federated),
	UNARY("/wick.admin.Bundles/DeleteFederatedBundle", m_delete_federated),
	UNARY("/wick.admin.Server/SetLogLevel", m_set_log_level),
	JOB("/wick.admin.Server/Backup", admin_m_backup),
	JOB("/wick.admin.Audit/ListAuditEvents", admin_m_list_audit),
	JOB("/wick.admin.Audit/VerifyAudit", admin_m_verify_audit),
	UNARY("/grpc.health.v1.Health/Check", m_health_check),
};

int
admin_api_methods(struct server *srv, const struct rpc_method **m, size_t *n)
{
	size_t i;

	for (i = 0; i < sizeof(admin_methods) / sizeof(admin_methods[0]); i++)
		admin_methods[i].arg = srv;
	*m = admin_methods;
	*n = i;
	return 0;
}
