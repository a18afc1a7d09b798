/*
 * cli_entry.c: "entry create|update|delete|show|count" and the entry
 * block that spire-server prints.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cli_int.h"
#include "rpc.h"
#include "selector.h"
#include "spiffeid.h"
#include "xmalloc.h"

#define ENTRY_FMT	"%-24s: "	/* SPIRE's label column */

/* ---- output -------------------------------------------------------------- */

#define S(x)	((x) != NULL ? (x) : "")

void
cli_print_entry(FILE *f, const Wick__Types__Entry *e)
{
	char	t[64];
	size_t	i;

	fprintf(f, ENTRY_FMT "%s\n", "Entry ID", *S(e->id) != '\0' ? e->id :
	    "(none)");
	fprintf(f, ENTRY_FMT "%s\n", "SPIFFE ID", S(e->spiffe_id));
	fprintf(f, ENTRY_FMT "%s\n", "Parent ID", S(e->parent_id));
	fprintf(f, ENTRY_FMT "%lld\n", "Revision",
	    (long long)e->revision_number);
	if (e->downstream)
		fprintf(f, ENTRY_FMT "true\n", "Downstream");
	if (e->x509_svid_ttl == 0)
		fprintf(f, ENTRY_FMT "default\n", "X509-SVID TTL");
	else
		fprintf(f, ENTRY_FMT "%d\n", "X509-SVID TTL",
		    (int)e->x509_svid_ttl);
	if (e->jwt_svid_ttl == 0)
		fprintf(f, ENTRY_FMT "default\n", "JWT-SVID TTL");
	else
		fprintf(f, ENTRY_FMT "%d\n", "JWT-SVID TTL",
		    (int)e->jwt_svid_ttl);
	if (e->expires_at != 0) {
		cli_format_time(e->expires_at, t, sizeof(t));
		fprintf(f, ENTRY_FMT "%s\n", "Expiration time", t);
	}
	for (i = 0; i < e->n_selectors; i++)
		fprintf(f, ENTRY_FMT "%s:%s\n", "Selector",
		    S(e->selectors[i]->type), S(e->selectors[i]->value));
	for (i = 0; i < e->n_federates_with; i++)
		fprintf(f, ENTRY_FMT "%s\n", "FederatesWith",
		    S(e->federates_with[i]));
	for (i = 0; i < e->n_dns_names; i++)
		fprintf(f, ENTRY_FMT "%s\n", "DNS name", S(e->dns_names[i]));
	if (e->admin)
		fprintf(f, ENTRY_FMT "true\n", "Admin");
	if (e->store_svid)
		fprintf(f, ENTRY_FMT "true\n", "StoreSvid");
	if (*S(e->hint) != '\0')
		fprintf(f, ENTRY_FMT "%s\n", "Hint", e->hint);
	fputc('\n', f);
}

static json_t *
strv_json(char *const *v, size_t n)
{
	json_t	*a = json_array();
	size_t	 i;

	for (i = 0; i < n; i++)
		json_array_append_new(a, cli_json_str(v[i]));
	return a;
}

json_t *
cli_entry_json(const Wick__Types__Entry *e)
{
	json_t *o = json_object();

	json_object_set_new(o, "id", cli_json_str(e->id));
	json_object_set_new(o, "spiffe_id", cli_json_str(e->spiffe_id));
	json_object_set_new(o, "parent_id", cli_json_str(e->parent_id));
	json_object_set_new(o, "selectors", cli_selectors_json(e->selectors,
	    e->n_selectors));
	json_object_set_new(o, "x509_svid_ttl",
	    json_integer(e->x509_svid_ttl));
	json_object_set_new(o, "federates_with", strv_json(e->federates_with,
	    e->n_federates_with));
	json_object_set_new(o, "admin", json_boolean(e->admin));
	json_object_set_new(o, "downstream", json_boolean(e->downstream));
	json_object_set_new(o, "expires_at", json_integer(e->expires_at));
	json_object_set_new(o, "dns_names", strv_json(e->dns_names,
	    e->n_dns_names));
	json_object_set_new(o, "revision_number",
	    json_integer(e->revision_number));
	json_object_set_new(o, "store_svid", json_boolean(e->store_svid));
	json_object_set_new(o, "jwt_svid_ttl", json_integer(e->jwt_svid_ttl));
	json_object_set_new(o, "hint", cli_json_str(e->hint));
	json_object_set_new(o, "created_at", json_integer(e->created_at));
	return o;
}

/* strings.Compare of two byte strings. */
static int
bytes_cmp(const char *a, size_t alen, const char *b, size_t blen)
{
	int c = memcmp(a, b, alen < blen ? alen : blen);

	if (c != 0)
		return c;
	return alen < blen ? -1 : alen > blen;
}

static int
id_cmp(const char *a, const char *b)
{
	const char	*ta, *tb, *pa, *pb;
	size_t		 la, lb;
	int		 c;

	cli_id_split(S(a), &ta, &la, &pa);
	cli_id_split(S(b), &tb, &lb, &pb);
	if ((c = bytes_cmp(ta, la, tb, lb)) != 0)
		return c;
	return strcmp(pa, pb);
}

static int
sel_cmp(const void *pa, const void *pb)
{
	const Wick__Types__Selector *a = *(Wick__Types__Selector *const *)pa;
	const Wick__Types__Selector *b = *(Wick__Types__Selector *const *)pb;
	int c;

	if ((c = strcmp(S(a->type), S(b->type))) != 0)
		return c;
	return strcmp(S(a->value), S(b->value));
}

static int
entry_cmp(const void *pa, const void *pb)
{
	const Wick__Types__Entry *a = *(Wick__Types__Entry *const *)pa;
	const Wick__Types__Entry *b = *(Wick__Types__Entry *const *)pb;
	size_t	i;
	int	c;

	if ((c = id_cmp(a->spiffe_id, b->spiffe_id)) != 0 ||
	    (c = id_cmp(a->parent_id, b->parent_id)) != 0)
		return c;
	if (a->x509_svid_ttl != b->x509_svid_ttl)
		return a->x509_svid_ttl < b->x509_svid_ttl ? -1 : 1;
	if (a->jwt_svid_ttl != b->jwt_svid_ttl)
		return a->jwt_svid_ttl < b->jwt_svid_ttl ? -1 : 1;
	if (a->n_selectors != b->n_selectors)
		return a->n_selectors < b->n_selectors ? -1 : 1;
	for (i = 0; i < a->n_selectors; i++)
		if ((c = sel_cmp(&a->selectors[i], &b->selectors[i])) != 0)
			return c;
	/* Not SPIRE's: a stable order for entries equal so far. */
	return strcmp(S(a->id), S(b->id));
}

void
cli_sort_entries(Wick__Types__Entry **v, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (v[i]->n_selectors > 1)
			qsort(v[i]->selectors, v[i]->n_selectors,
			    sizeof(*v[i]->selectors), sel_cmp);
	if (n > 1)
		qsort(v, n, sizeof(*v), entry_cmp);
}

/* ---- entry create / update ----------------------------------------------- */

struct wresult {
	const Wick__Admin__EntryResult	*res;
	const Wick__Types__Entry	*req;
};

static int
result_code(const Wick__Admin__EntryResult *r)
{
	return r != NULL && r->status != NULL ? r->status->code : RPC_UNKNOWN;
}

static const char *
result_msg(const Wick__Admin__EntryResult *r)
{
	return r != NULL && r->status != NULL ? S(r->status->message) :
	    "the server sent no status";
}

/* End of the batch starting at start: count and size limits. */
static size_t
batch_end(const struct cli_entries *l, size_t start)
{
	size_t i, bytes = 0, sz;

	for (i = start; i < l->n && i - start < CLI_MAX_BATCH_ENTRIES; i++) {
		sz = wick__types__entry__get_packed_size(l->v[i]) + 8;
		if (i > start && bytes + sz > CLI_MAX_BATCH_BYTES)
			break;
		bytes += sz;
	}
	return i;
}

/* Send entries [start, end); results into the response message. */
static int
send_batch(struct cli_ctx *ctx, int update, const struct cli_entries *l,
    size_t start, size_t end, ProtobufCMessage **resp,
    Wick__Admin__EntryResult ***res, size_t *nres)
{
	Wick__Admin__BatchCreateEntryRequest	 creq =
	    WICK__ADMIN__BATCH_CREATE_ENTRY_REQUEST__INIT;
	Wick__Admin__BatchUpdateEntryRequest	 ureq =
	    WICK__ADMIN__BATCH_UPDATE_ENTRY_REQUEST__INIT;
	int					 r;

	if (update) {
		Wick__Admin__BatchUpdateEntryResponse *u;

		ureq.entries = &l->v[start];
		ureq.n_entries = end - start;
		if ((r = cli_rpc(ctx, "/wick.admin.Entries/BatchUpdateEntry",
		    &ureq.base,
		    &wick__admin__batch_update_entry_response__descriptor,
		    resp)) != 0)
			return r;
		u = (Wick__Admin__BatchUpdateEntryResponse *)*resp;
		*res = u->results;
		*nres = u->n_results;
	} else {
		Wick__Admin__BatchCreateEntryResponse *c;

		creq.entries = &l->v[start];
		creq.n_entries = end - start;
		if ((r = cli_rpc(ctx, "/wick.admin.Entries/BatchCreateEntry",
		    &creq.base,
		    &wick__admin__batch_create_entry_response__descriptor,
		    resp)) != 0)
			return r;
		c = (Wick__Admin__BatchCreateEntryResponse *)*resp;
		*res = c->results;
		*nres = c->n_results;
	}
	if (*nres != end - start) {
		snprintf(ctx->errmsg, sizeof(ctx->errmsg), "the server "
		    "answered %zu entries with %zu results", end - start,
		    *nres);
		return WICK_ERR_PROTOCOL;
	}
	return 0;
}

static void
print_write_results(struct cli_ctx *ctx, int update,
    const struct wresult *res, size_t n)
{
	json_t	*arr, *o;
	char	 nb[16];
	size_t	 i;
	int	 code;

	if (ctx->json) {
		arr = json_array();
		for (i = 0; i < n; i++) {
			code = result_code(res[i].res);
			o = json_object();
			json_object_set_new(o, "status", json_pack("{s:i,s:o}",
			    "code", code, "message",
			    cli_json_str(result_msg(res[i].res))));
			json_object_set_new(o, "entry", cli_entry_json(code ==
			    RPC_OK && res[i].res->entry != NULL ?
			    res[i].res->entry : res[i].req));
			json_array_append_new(arr, o);
		}
		(void)cli_print_json(ctx, json_pack("{s:o}", "results", arr));
		return;
	}
	for (i = 0; i < n; i++)
		if (result_code(res[i].res) == RPC_OK)
			cli_print_entry(ctx->out, res[i].res->entry != NULL ?
			    res[i].res->entry : res[i].req);
	fflush(ctx->out);
	for (i = 0; i < n; i++) {
		if ((code = result_code(res[i].res)) == RPC_OK)
			continue;
		fprintf(ctx->err, "Failed to %s the following entry (code: %s, "
		    "msg: ", update ? "update" : "create",
		    cli_code_name(code, nb, sizeof(nb)));
		cli_print_quoted(ctx->err, result_msg(res[i].res));
		fputs("):\n", ctx->err);
		cli_print_entry(ctx->err, res[i].req);
	}
}

static int
entry_write(struct cli_ctx *ctx, const struct cli_args *a, int update)
{
	struct cli_entries	  req;
	Wick__Types__Entry	 *e;
	Wick__Admin__EntryResult **rv;
	ProtobufCMessage	**resps = NULL;
	struct wresult		 *res = NULL;
	const char		 *data, *given;
	char			  err[CLI_ERRLEN], *text = NULL;
	size_t			  len, nresps = 0, nres = 0, nrv, start, end;
	size_t			  i, failed = 0;
	int			  rc = 1, r = 0;

	cli_entries_init(&req);
	if ((data = cli_arg_str(a, "data")) != NULL) {
		if ((given = cli_entry_flag_given(a)) != NULL) {
			rc = cli_fail(ctx, "-data can't be combined with -%s",
			    given);
			goto out;
		}
		if (cli_read_input(data, CLI_MAX_DATA_SIZE, &text, &len, err,
		    sizeof(err)) != 0 || cli_entries_from_json(text, len,
		    update, &req, err, sizeof(err)) != 0) {
			rc = cli_fail(ctx, "%s", err);
			goto out;
		}
	} else {
		if (cli_entry_from_flags(a, update, &e, err, sizeof(err)) !=
		    0) {
			rc = cli_fail(ctx, "%s", err);
			goto out;
		}
		cli_entries_add(&req, e);
	}
	res = xcalloc(req.n, sizeof(*res));
	resps = xcalloc(req.n, sizeof(*resps));
	for (start = 0; start < req.n; start = end) {
		end = batch_end(&req, start);
		r = send_batch(ctx, update, &req, start, end, &resps[nresps],
		    &rv, &nrv);
		if (resps[nresps] != NULL)
			nresps++;
		if (r != 0)
			break;
		for (i = 0; i < nrv; i++) {
			res[nres].res = rv[i];
			res[nres++].req = req.v[start + i];
			if (result_code(rv[i]) != RPC_OK)
				failed++;
		}
	}
	print_write_results(ctx, update, res, nres);
	if (r != 0)
		rc = nres > 0 || start > 0 ? cli_fail(ctx, "%s (%zu of %zu "
		    "entries were not sent)", ctx->errmsg, req.n - start,
		    req.n) : cli_fail(ctx, "%s", ctx->errmsg);
	else if (failed > 0)
		rc = cli_fail(ctx, "failed to %s one or more entries",
		    update ? "update" : "create");
	else
		rc = 0;
out:
	for (i = 0; i < nresps; i++)
		protobuf_c_message_free_unpacked(resps[i], NULL);
	free(resps);
	free(res);
	free(text);
	cli_entries_cleanup(&req);
	return rc;
}

static int
entry_create(struct cli_ctx *ctx, const struct cli_args *a)
{
	return entry_write(ctx, a, 0);
}

static int
entry_update(struct cli_ctx *ctx, const struct cli_args *a)
{
	return entry_write(ctx, a, 1);
}

/* ---- entry delete -------------------------------------------------------- */

static int
entry_delete(struct cli_ctx *ctx, const struct cli_args *a)
{
	Wick__Admin__BatchDeleteEntryRequest	 req =
	    WICK__ADMIN__BATCH_DELETE_ENTRY_REQUEST__INIT;
	Wick__Admin__BatchDeleteEntryResponse	*resp = NULL;
	Wick__Admin__BatchDeleteEntryResponse	**resps = NULL;
	const Wick__Admin__EntryResult		**res = NULL;
	const char	*id = cli_arg_str(a, "entryID");
	const char	*file = cli_arg_str(a, "file");
	char		 err[CLI_ERRLEN], nb[16], *text = NULL, **ids = NULL;
	size_t		 len, n = 0, nresps = 0, nres = 0, start, end, i;
	size_t		 ok = 0, failed = 0;
	json_t		*arr;
	int		 rc = 1, r = 0;

	if (id != NULL && file != NULL) {
		rc = cli_fail(ctx, "-entryID can't be combined with -file");
		goto out;
	}
	if (id == NULL && file == NULL) {
		rc = cli_fail(ctx, "an entry ID is required");
		goto out;
	}
	if (file != NULL) {
		if (cli_read_input(file, CLI_MAX_DATA_SIZE, &text, &len, err,
		    sizeof(err)) != 0 || cli_ids_from_json(text, len, &ids, &n,
		    err, sizeof(err)) != 0) {
			rc = cli_fail(ctx, "%s", err);
			goto out;
		}
	} else {
		if (*id == '\0') {
			rc = cli_fail(ctx, "an entry ID is required");
			goto out;
		}
		ids = xcalloc(1, sizeof(*ids));
		ids[0] = xstrdup(id);
		n = 1;
	}
	res = xcalloc(n, sizeof(*res));
	resps = xcalloc(n, sizeof(*resps));
	for (start = 0; start < n; start = end) {
		end = start + CLI_MAX_BATCH_ENTRIES < n ?
		    start + CLI_MAX_BATCH_ENTRIES : n;
		req.ids = &ids[start];
		req.n_ids = end - start;
		if ((r = cli_rpc(ctx, "/wick.admin.Entries/BatchDeleteEntry",
		    &req.base,
		    &wick__admin__batch_delete_entry_response__descriptor,
		    (ProtobufCMessage **)&resp)) != 0)
			break;
		resps[nresps++] = resp;
		if (resp->n_results != end - start) {
			snprintf(ctx->errmsg, sizeof(ctx->errmsg), "the server "
			    "answered %zu IDs with %zu results", end - start,
			    resp->n_results);
			r = WICK_ERR_PROTOCOL;
			break;
		}
		for (i = 0; i < resp->n_results; i++) {
			res[nres++] = resp->results[i];
			if (result_code(resp->results[i]) == RPC_OK)
				ok++;
			else
				failed++;
		}
	}
	if (ctx->json) {
		arr = json_array();
		for (i = 0; i < nres; i++)
			json_array_append_new(arr, json_pack("{s:{s:i,s:o},"
			    "s:o}", "status", "code", result_code(res[i]),
			    "message", cli_json_str(result_msg(res[i])), "id",
			    cli_json_str(ids[i])));
		(void)cli_print_json(ctx, json_pack("{s:o}", "results", arr));
	} else {
		for (i = 0; i < nres; i++)
			if (result_code(res[i]) == RPC_OK)
				fprintf(ctx->out, "Deleted entry with ID: %s\n",
				    ids[i]);
		if (ok > 0)
			fprintf(ctx->out, "\n\n");
		fflush(ctx->out);
		for (i = 0; i < nres; i++) {
			if (result_code(res[i]) == RPC_OK)
				continue;
			fprintf(ctx->err, "Failed to delete entry with ID %s "
			    "(code: %s, msg: ", ids[i],
			    cli_code_name(result_code(res[i]), nb, sizeof(nb)));
			cli_print_quoted(ctx->err, result_msg(res[i]));
			fputs(")\n", ctx->err);
		}
		if (failed > 0 && ok > 0)
			fprintf(ctx->out, "\n\nDeleted %zu entries "
			    "successfully, but failed to delete %zu entries\n",
			    ok, failed);
		else if (failed > 0)
			fprintf(ctx->out, "\n\nFailed to delete %zu entries\n",
			    failed);
		else if (r == 0)
			fprintf(ctx->out, "Deleted %zu entries successfully\n",
			    ok);
	}
	if (r != 0)
		rc = nres > 0 ? cli_fail(ctx, "%s (%zu of %zu IDs were not "
		    "sent)", ctx->errmsg, n - start, n) :
		    cli_fail(ctx, "%s", ctx->errmsg);
	else if (failed > 0)
		rc = cli_fail(ctx, "failed to delete one or more entries");
	else
		rc = 0;
out:
	for (i = 0; i < nresps; i++)
		wick__admin__batch_delete_entry_response__free_unpacked(
		    resps[i], NULL);
	free(resps);
	free(res);
	for (i = 0; i < n; i++)
		free(ids[i]);
	free(ids);
	free(text);
	return rc;
}

/* ---- entry show / count -------------------------------------------------- */

/* A list request from the filter flags; filter_free() releases it. */
static int
filter_build(struct cli_ctx *ctx, const struct cli_args *a,
    Wick__Admin__ListEntriesRequest *req)
{
	struct spiffeid		 id;
	const char *const	*sels, *const *fed;
	const char		*s, *why;
	char			 buf[SPIFFEID_MAX_LEN + 1];
	size_t			 nsel, nfed, i;
	int			 m;

	wick__admin__list_entries_request__init(req);
	sels = cli_arg_list(a, "selector", &nsel);
	fed = cli_arg_list(a, "federatesWith", &nfed);
	if ((s = cli_arg_str(a, "spiffeID")) != NULL) {
		if (spiffeid_parse(s, SPIFFEID_ALLOW_ROOT, &id, &why) != 0)
			return cli_fail(ctx, "invalid value \"%s\" for "
			    "-spiffeID: %s", s, why);
		req->by_spiffe_id = (char *)s;
	}
	if ((s = cli_arg_str(a, "parentID")) != NULL) {
		if (spiffeid_parse(s, SPIFFEID_ALLOW_ROOT, &id, &why) != 0)
			return cli_fail(ctx, "invalid value \"%s\" for "
			    "-parentID: %s", s, why);
		req->by_parent_id = (char *)s;
	}
	if ((s = cli_arg_str(a, "hint")) != NULL)
		req->by_hint = (char *)s;
	req->filter_downstream = cli_arg_bool(a, "downstream");
	if (nsel > 0) {
		s = cli_arg_str(a, "matchSelectorsOn");
		if (cli_parse_match(s != NULL ? s : "superset", &m) != 0)
			return cli_fail(ctx, "invalid value \"%s\" for "
			    "-matchSelectorsOn: match behavior unknown "
			    "(exact, any, superset, subset)", s);
		req->selector_match = (Wick__Admin__MatchBehavior)m;
		req->by_selectors = xcalloc(nsel, sizeof(*req->by_selectors));
		for (i = 0; i < nsel; i++) {
			if (cli_selector_parse(sels[i],
			    &req->by_selectors[i], &why) != 0)
				return cli_fail(ctx, "invalid value \"%s\" for "
				    "-selector: %s", sels[i], why);
			req->n_by_selectors++;
		}
	}
	if (nfed > 0) {
		s = cli_arg_str(a, "matchFederatesWithOn");
		if (cli_parse_match(s != NULL ? s : "superset", &m) != 0)
			return cli_fail(ctx, "invalid value \"%s\" for "
			    "-matchFederatesWithOn: match behavior unknown "
			    "(exact, any, superset, subset)", s);
		req->federates_with_match = (Wick__Admin__MatchBehavior)m;
		req->by_federates_with = xcalloc(nfed,
		    sizeof(*req->by_federates_with));
		for (i = 0; i < nfed; i++) {
			if (cli_td_id(fed[i], buf, sizeof(buf), &why) != 0)
				return cli_fail(ctx, "invalid value \"%s\" for "
				    "-federatesWith: %s", fed[i], why);
			req->by_federates_with[i] = xstrdup(buf);
			req->n_by_federates_with++;
		}
	}
	return 0;
}

static void
filter_free(Wick__Admin__ListEntriesRequest *req)
{
	size_t i;

	for (i = 0; i < req->n_by_selectors; i++)
		wick__types__selector__free_unpacked(req->by_selectors[i],
		    NULL);
	free(req->by_selectors);
	for (i = 0; i < req->n_by_federates_with; i++)
		free(req->by_federates_with[i]);
	free(req->by_federates_with);
}

static void
print_entries(struct cli_ctx *ctx, Wick__Types__Entry **v, size_t n)
{
	json_t	*arr;
	size_t	 i;

	cli_sort_entries(v, n);
	if (ctx->json) {
		arr = json_array();
		for (i = 0; i < n; i++)
			json_array_append_new(arr, cli_entry_json(v[i]));
		(void)cli_print_json(ctx, json_pack("{s:o,s:s}", "entries",
		    arr, "next_page_token", ""));
		return;
	}
	fprintf(ctx->out, "Found %zu %s\n", n, n == 1 ? "entry" : "entries");
	for (i = 0; i < n; i++)
		cli_print_entry(ctx->out, v[i]);
}

static int
show_one(struct cli_ctx *ctx, const char *id)
{
	Wick__Admin__GetEntryRequest	 req =
	    WICK__ADMIN__GET_ENTRY_REQUEST__INIT;
	Wick__Types__Entry		*e = NULL;

	req.id = (char *)id;
	if (cli_rpc(ctx, "/wick.admin.Entries/GetEntry", &req.base,
	    &wick__types__entry__descriptor, (ProtobufCMessage **)&e) != 0)
		return cli_fail(ctx, "error fetching entry ID %s: %s", id,
		    ctx->errmsg);
	print_entries(ctx, &e, 1);
	cli_entry_free(e);
	return 0;
}

static int
entry_show(struct cli_ctx *ctx, const struct cli_args *a)
{
	Wick__Admin__ListEntriesRequest		  req;
	Wick__Admin__ListEntriesResponse	 *resp;
	Wick__Admin__ListEntriesResponse	**pages = NULL;
	Wick__Types__Entry			**all = NULL;
	const char	*id = cli_arg_str(a, "entryID");
	size_t		 npages = 0, n = 0, i;
	int		 rc = 1;

	if (id != NULL) {
		if (cli_arg_given(a, "parentID") ||
		    cli_arg_given(a, "spiffeID") ||
		    cli_arg_given(a, "selector"))
			return cli_fail(ctx, "the -entryID flag can't be "
			    "combined with others");
		return show_one(ctx, id);
	}
	if (filter_build(ctx, a, &req) != 0)
		goto out;
	req.page_size = CLI_PAGE_SIZE;
	req.page_token = "";
	for (;;) {
		if (cli_rpc(ctx, "/wick.admin.Entries/ListEntries", &req.base,
		    &wick__admin__list_entries_response__descriptor,
		    (ProtobufCMessage **)&resp) != 0) {
			rc = cli_fail(ctx, "error fetching entries: %s",
			    ctx->errmsg);
			goto out;
		}
		pages = xreallocarray(pages, npages + 1, sizeof(*pages));
		pages[npages++] = resp;
		if (resp->n_entries > CLI_MAX_LISTED - n) {
			rc = cli_fail(ctx, "more than %d entries; narrow the "
			    "filters", CLI_MAX_LISTED);
			goto out;
		}
		all = xreallocarray(all, n + resp->n_entries + 1,
		    sizeof(*all));
		for (i = 0; i < resp->n_entries; i++)
			all[n++] = resp->entries[i];
		if (*S(resp->next_page_token) == '\0')
			break;
		if (strcmp(resp->next_page_token, req.page_token) == 0 ||
		    resp->n_entries == 0) {
			rc = cli_fail(ctx, "error fetching entries: the server "
			    "repeated a page");
			goto out;
		}
		req.page_token = resp->next_page_token;
	}
	print_entries(ctx, all, n);
	rc = 0;
out:
	filter_free(&req);
	for (i = 0; i < npages; i++)
		wick__admin__list_entries_response__free_unpacked(pages[i],
		    NULL);
	free(pages);
	free(all);
	return rc;
}

static int
entry_count(struct cli_ctx *ctx, const struct cli_args *a)
{
	Wick__Admin__ListEntriesRequest	 req;
	Wick__Admin__CountResponse	*resp;
	int				 rc = 1;

	if (filter_build(ctx, a, &req) != 0)
		goto out;
	if (cli_rpc(ctx, "/wick.admin.Entries/CountEntries", &req.base,
	    &wick__admin__count_response__descriptor,
	    (ProtobufCMessage **)&resp) != 0) {
		rc = cli_fail(ctx, "%s", ctx->errmsg);
		goto out;
	}
	if (ctx->json)
		rc = cli_print_json(ctx, json_pack("{s:I}", "count",
		    (json_int_t)resp->count));
	else {
		fprintf(ctx->out, "%lld registration %s\n",
		    (long long)resp->count, resp->count == 1 ? "entry" :
		    "entries");
		rc = 0;
	}
	wick__admin__count_response__free_unpacked(resp, NULL);
out:
	filter_free(&req);
	return rc;
}

/* ---- command table ------------------------------------------------------- */

#define F_ADMIN { "admin", CLI_FLAG_BOOL, NULL, NULL, "If set, marks " \
	"the entry as admin, as SPIRE does (wick records the flag; its " \
	"admin API is authorised by Unix uid)" }
#define F_DATA { "data", CLI_FLAG_STRING, "string", NULL, "Path to a file " \
	"containing registration JSON (optional). If set to '-', read the " \
	"JSON from stdin." }
#define F_NOPREFETCH { "disableX509SVIDPrefetch", CLI_FLAG_BOOL, NULL, \
	NULL, "Not supported by wick; refused when set" }
#define F_DNS { "dns", CLI_FLAG_LIST, "value", NULL, "A DNS name that " \
	"will be included in SVIDs issued based on this entry, where " \
	"appropriate. Can be used more than once" }
#define F_DOWNSTREAM { "downstream", CLI_FLAG_BOOL, NULL, NULL, "A " \
	"boolean value that, when set, marks the entry as describing a " \
	"downstream server (recorded with the entry)" }
#define F_EXPIRY { "entryExpiry", CLI_FLAG_STRING, "int", NULL, "An " \
	"expiry, from epoch in seconds, after which the registration entry " \
	"may be pruned" }
#define F_FED { "federatesWith", CLI_FLAG_LIST, "value", NULL, "SPIFFE ID " \
	"of a trust domain to federate with. Can be used more than once" }
#define F_HINT { "hint", CLI_FLAG_STRING, "string", NULL, "The entry hint, " \
	"used to disambiguate entries with the same SPIFFE ID" }
#define F_JTI { "jwtSVIDIncludeJTI", CLI_FLAG_BOOL, NULL, NULL, "Not " \
	"supported by wick; refused when set" }
#define F_JWTTTL { "jwtSVIDTTL", CLI_FLAG_STRING, "int", NULL, "The " \
	"lifetime, in seconds (or a duration such as 5m), for JWT-SVIDs " \
	"issued based on this registration entry; 0 means the server's " \
	"default" }
#define F_NODE { "node", CLI_FLAG_BOOL, NULL, NULL, "If set, this entry " \
	"will be applied to matching nodes rather than workloads (its " \
	"parent is spiffe://<trust domain of -spiffeID>/spire/server)" }
#define F_PARENT { "parentID", CLI_FLAG_STRING, "string", NULL, "The " \
	"SPIFFE ID of this record's parent" }
#define F_SELECTOR { "selector", CLI_FLAG_LIST, "value", NULL, "A " \
	"colon-delimited type:value selector. Can be used more than once" }
#define F_SPIFFE { "spiffeID", CLI_FLAG_STRING, "string", NULL, "The " \
	"SPIFFE ID that this record represents" }
#define F_STORE { "storeSVID", CLI_FLAG_BOOL, NULL, NULL, "A boolean value " \
	"that, when set, marks the entry's SVIDs as meant for an SVID store " \
	"rather than for workloads (recorded with the entry)" }
#define F_X509TTL { "x509SVIDTTL", CLI_FLAG_STRING, "int", NULL, "The " \
	"lifetime, in seconds (or a duration such as 1h), for x509-SVIDs " \
	"issued based on this registration entry; 0 means the server's " \
	"default" }

static const struct cli_flag create_flags[] = {
	F_ADMIN, F_DATA, F_NOPREFETCH, F_DNS, F_DOWNSTREAM, F_EXPIRY,
	{ "entryID", CLI_FLAG_STRING, "string", NULL, "A custom ID for this "
	    "registration entry (optional). If not set, a new entry ID will "
	    "be generated" },
	F_FED, F_HINT, F_JTI, F_JWTTTL, F_NODE, CLI_FLAG_OUTPUT, F_PARENT,
	F_SELECTOR, CLI_FLAG_SOCKET, F_SPIFFE, F_STORE, F_X509TTL,
};

static const struct cli_flag update_flags[] = {
	F_ADMIN, F_DATA, F_NOPREFETCH, F_DNS, F_DOWNSTREAM, F_EXPIRY,
	{ "entryID", CLI_FLAG_STRING, "string", NULL, "The Registration "
	    "Entry ID of the record to update" },
	F_FED, F_HINT, F_JTI, F_JWTTTL, F_NODE, CLI_FLAG_OUTPUT, F_PARENT,
	F_SELECTOR, CLI_FLAG_SOCKET, F_SPIFFE, F_STORE, F_X509TTL,
};

static const struct cli_flag delete_flags[] = {
	{ "entryID", CLI_FLAG_STRING, "string", NULL, "The Registration "
	    "Entry ID of the record to delete." },
	{ "file", CLI_FLAG_STRING, "string", NULL, "Path to a file "
	    "containing a JSON structure for batch deletion (optional): "
	    "{\"ids\": [...]}. If set to '-', read from stdin." },
	CLI_FLAG_OUTPUT, CLI_FLAG_SOCKET,
};

#define FILTER_FLAGS(what)						     \
	{ "downstream", CLI_FLAG_BOOL, NULL, NULL, "A boolean value that, "  \
	    "when set, selects only entries that describe a downstream "     \
	    "server" },							     \
	{ "federatesWith", CLI_FLAG_LIST, "value", NULL, "SPIFFE ID of a "   \
	    "trust domain an entry is federate with. Can be used more than " \
	    "once" },							     \
	{ "hint", CLI_FLAG_STRING, "string", NULL, "The Hint of the "	     \
	    "records to " what " (optional)" },				     \
	{ "matchFederatesWithOn", CLI_FLAG_STRING, "string", "superset",     \
	    "The match mode used when filtering by federates with. "	     \
	    "Options: exact, any, superset and subset" },		     \
	{ "matchSelectorsOn", CLI_FLAG_STRING, "string", "superset", "The "  \
	    "match mode used when filtering by selectors. Options: exact, "  \
	    "any, superset and subset" },				     \
	CLI_FLAG_OUTPUT,						     \
	{ "parentID", CLI_FLAG_STRING, "string", NULL, "The Parent ID of "   \
	    "the records to " what },					     \
	F_SELECTOR, CLI_FLAG_SOCKET,					     \
	{ "spiffeID", CLI_FLAG_STRING, "string", NULL, "The SPIFFE ID of "   \
	    "the records to " what }

static const struct cli_flag show_flags[] = {
	{ "entryID", CLI_FLAG_STRING, "string", NULL, "The Entry ID of the "
	    "records to show" },
	FILTER_FLAGS("show"),
};

static const struct cli_flag count_flags[] = {
	FILTER_FLAGS("count"),
};

#define NFLAGS(t)	(sizeof(t) / sizeof((t)[0]))

const struct cli_cmd cli_entry_cmds[] = {
	{ "entry", "count", "Count registration entries", count_flags,
	    NFLAGS(count_flags), entry_count },
	{ "entry", "create", "Creates registration entries", create_flags,
	    NFLAGS(create_flags), entry_create },
	{ "entry", "delete", "Deletes registration entries", delete_flags,
	    NFLAGS(delete_flags), entry_delete },
	{ "entry", "show", "Displays configured registration entries",
	    show_flags, NFLAGS(show_flags), entry_show },
	{ "entry", "update", "Updates registration entries", update_flags,
	    NFLAGS(update_flags), entry_update },
};

const size_t cli_entry_ncmds = NFLAGS(cli_entry_cmds);
