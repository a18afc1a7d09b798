/*
 * cli_bundle.c: "bundle show|list|set|delete|count": the server's own
 * trust bundle and the federated ones, as PEM or SPIFFE bundle JSON.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "bundle.h"
#include "cli_int.h"
#include "log.h"
#include "rpc.h"
#include "spiffeid.h"
#include "xmalloc.h"

#define BUNDLE_HEADER							\
	"****************************************\n"			\
	"* %s\n"							\
	"****************************************\n"

enum bformat {
	BFORMAT_PEM = 0,
	BFORMAT_SPIFFE,
};

/* -format: pem (the default) or spiffe, in any case. */
static int
get_format(struct cli_ctx *ctx, const struct cli_args *a, enum bformat *f)
{
	const char *s = cli_arg_str(a, "format");

	*f = BFORMAT_PEM;
	if (s == NULL || *s == '\0' || strcasecmp(s, "pem") == 0)
		*f = BFORMAT_PEM;
	else if (strcasecmp(s, "spiffe") == 0)
		*f = BFORMAT_SPIFFE;
	else
		return cli_fail(ctx, "invalid format: \"%s\" (pem, spiffe)", s);
	return 0;
}

/* -id as a trust domain name into td; "spiffe://<td>" into id. */
static int
get_td(struct cli_ctx *ctx, const struct cli_args *a, const char *missing,
    char td[SPIFFEID_MAX_TD_LEN + 1], char *id, size_t idlen)
{
	const char *s = cli_arg_str(a, "id"), *why;

	if (s == NULL || *s == '\0')
		return cli_fail(ctx, "%s", missing);
	if (spiffeid_td_parse(s, 0, td, &why) != 0)
		return cli_fail(ctx, "invalid value \"%s\" for -id: %s", s,
		    why);
	snprintf(id, idlen, "spiffe://%s", td);
	return 0;
}

static json_t *
keys_json(Wick__Types__PublicKey *const *v, size_t n)
{
	json_t	*arr = json_array(), *o;
	char	*b64;
	size_t	 i;

	for (i = 0; i < n; i++) {
		if (rpc_base64_encode(v[i]->public_key.data,
		    v[i]->public_key.len, &b64) != 0)
			fatal("out of memory");
		o = json_object();
		json_object_set_new(o, "public_key", json_string(b64));
		json_object_set_new(o, "key_id", cli_json_str(v[i]->key_id));
		json_object_set_new(o, "expires_at",
		    json_integer(v[i]->expires_at));
		json_array_append_new(arr, o);
		free(b64);
	}
	return arr;
}

/* The wick.types.Bundle message, byte fields in base64. */
static json_t *
bundle_json(const Wick__Types__Bundle *b)
{
	json_t	*o = json_object(), *x509 = json_array();
	char	*b64;
	size_t	 i;

	for (i = 0; i < b->n_x509_authorities; i++) {
		if (rpc_base64_encode(b->x509_authorities[i].data,
		    b->x509_authorities[i].len, &b64) != 0)
			fatal("out of memory");
		json_array_append_new(x509, json_pack("{s:s}", "asn1", b64));
		free(b64);
	}
	json_object_set_new(o, "trust_domain", cli_json_str(b->trust_domain));
	json_object_set_new(o, "x509_authorities", x509);
	json_object_set_new(o, "jwt_authorities", keys_json(b->jwt_authorities,
	    b->n_jwt_authorities));
	json_object_set_new(o, "wit_authorities", keys_json(b->wit_authorities,
	    b->n_wit_authorities));
	json_object_set_new(o, "refresh_hint", json_integer(b->refresh_hint));
	json_object_set_new(o, "sequence_number",
	    json_integer((json_int_t)b->sequence_number));
	return o;
}

/* One bundle (wick.types.Bundle bytes) as PEM or SPIFFE JSON. */
static int
print_bundle(struct cli_ctx *ctx, const uint8_t *p, size_t n,
    enum bformat f, int header)
{
	struct bundle	*b = NULL;
	struct buf	 pem;
	json_t		*doc;
	const char	*why;
	char		*js = NULL, tdid[SPIFFEID_MAX_TD_LEN + 16];
	int		 rc = 0;

	if (bundle_unpack(p, n, &b, &why) != 0)
		return cli_fail(ctx, "cannot read the server's bundle: %s",
		    why);
	if (header) {
		bundle_td_id(b, tdid, sizeof(tdid));
		fprintf(ctx->out, BUNDLE_HEADER, tdid);
	}
	if (f == BFORMAT_PEM) {
		buf_init(&pem, BUNDLE_MAX_DOC * 2);
		if (bundle_to_pem(b, &pem) != 0)
			rc = cli_fail(ctx, "cannot encode the bundle as PEM");
		else
			fwrite(buf_ptr(&pem), 1, buf_len(&pem), ctx->out);
		buf_cleanup(&pem);
	} else if (bundle_to_spiffe_json(b, &js) != 0)
		rc = cli_fail(ctx, "cannot encode the bundle as SPIFFE JSON");
	else if ((doc = json_loads(js, 0, NULL)) == NULL)
		fprintf(ctx->out, "%s\n", js);
	else {
		/* Indented by four spaces, as spire-server prints it. */
		(void)json_dumpf(doc, ctx->out, JSON_INDENT(4) |
		    JSON_PRESERVE_ORDER);
		fputc('\n', ctx->out);
		json_decref(doc);
	}
	free(js);
	bundle_free(b);
	return rc;
}

static int
print_bundle_msg(struct cli_ctx *ctx, const Wick__Types__Bundle *m,
    enum bformat f, int header)
{
	uint8_t	*p;
	size_t	 n;
	int	 rc;

	n = wick__types__bundle__get_packed_size(m);
	p = xmalloc(n + 1);
	wick__types__bundle__pack(m, p);
	rc = print_bundle(ctx, p, n, f, header);
	free(p);
	return rc;
}

static int
bundle_show(struct cli_ctx *ctx, const struct cli_args *a)
{
	Wick__Types__Bundle	*m;
	enum bformat		 f;
	uint8_t			*p;
	size_t			 n;
	int			 rc;

	if (get_format(ctx, a, &f) != 0)
		return 1;
	if (cli_rpc_raw(ctx, "/wick.admin.Bundles/GetBundle",
	    (const uint8_t *)"", 0, &p, &n) != 0)
		return cli_fail(ctx, "%s", ctx->errmsg);
	if (!ctx->json)
		rc = print_bundle(ctx, p, n, f, 0);
	else if ((m = wick__types__bundle__unpack(NULL, n, p)) == NULL)
		rc = cli_fail(ctx, "cannot read the server's bundle");
	else {
		rc = cli_print_json(ctx, bundle_json(m));
		wick__types__bundle__free_unpacked(m, NULL);
	}
	free(p);
	return rc;
}

struct bundle_list {
	Wick__Admin__ListFederatedBundlesResponse	**pages;
	size_t						  npages;
	Wick__Types__Bundle				**v;
	size_t						  n;
};

static void
bundle_list_free(struct bundle_list *l)
{
	size_t i;

	for (i = 0; i < l->npages; i++)
		wick__admin__list_federated_bundles_response__free_unpacked(
		    l->pages[i], NULL);
	free(l->pages);
	free(l->v);
	memset(l, 0, sizeof(*l));
}

static int
fetch_bundles(struct cli_ctx *ctx, struct bundle_list *l)
{
	Wick__Admin__ListFederatedBundlesRequest	 req =
	    WICK__ADMIN__LIST_FEDERATED_BUNDLES_REQUEST__INIT;
	Wick__Admin__ListFederatedBundlesResponse	*resp;
	size_t						 i;

	memset(l, 0, sizeof(*l));
	req.page_size = CLI_PAGE_SIZE;
	req.page_token = "";
	for (;;) {
		if (cli_rpc(ctx, "/wick.admin.Bundles/ListFederatedBundles",
		    &req.base,
		    &wick__admin__list_federated_bundles_response__descriptor,
		    (ProtobufCMessage **)&resp) != 0)
			return cli_fail(ctx, "%s", ctx->errmsg);
		l->pages = xreallocarray(l->pages, l->npages + 1,
		    sizeof(*l->pages));
		l->pages[l->npages++] = resp;
		if (resp->n_bundles > CLI_MAX_LISTED - l->n)
			return cli_fail(ctx, "more than %d bundles",
			    CLI_MAX_LISTED);
		l->v = xreallocarray(l->v, l->n + resp->n_bundles + 1,
		    sizeof(*l->v));
		for (i = 0; i < resp->n_bundles; i++)
			l->v[l->n++] = resp->bundles[i];
		if (resp->next_page_token == NULL ||
		    *resp->next_page_token == '\0')
			return 0;
		if (strcmp(resp->next_page_token, req.page_token) == 0 ||
		    resp->n_bundles == 0)
			return cli_fail(ctx, "the server repeated a page of "
			    "bundles");
		req.page_token = resp->next_page_token;
	}
}

/* Non-zero when the message's trust domain is td. */
static int
bundle_is(const Wick__Types__Bundle *m, const char *td)
{
	char		 mtd[SPIFFEID_MAX_TD_LEN + 1];
	const char	*why;

	return m->trust_domain != NULL && spiffeid_td_parse(m->trust_domain,
	    0, mtd, &why) == 0 && strcmp(mtd, td) == 0;
}

static int
bundle_list(struct cli_ctx *ctx, const struct cli_args *a)
{
	struct bundle_list	 l;
	json_t			*arr;
	enum bformat		 f;
	char			 td[SPIFFEID_MAX_TD_LEN + 1];
	char			 id[SPIFFEID_MAX_TD_LEN + 16];
	size_t			 i;
	int			 rc = 1, one = cli_arg_str(a, "id") != NULL;

	memset(&l, 0, sizeof(l));
	if (get_format(ctx, a, &f) != 0 || (one && get_td(ctx, a,
	    "id is required", td, id, sizeof(id)) != 0) ||
	    fetch_bundles(ctx, &l) != 0)
		goto out;
	if (one) {
		for (i = 0; i < l.n && !bundle_is(l.v[i], td); i++)
			;
		if (i == l.n) {
			rc = cli_fail(ctx, "rpc error: code = NotFound desc = "
			    "no federated bundle for %s", id);
			goto out;
		}
		rc = ctx->json ? cli_print_json(ctx, bundle_json(l.v[i])) :
		    print_bundle_msg(ctx, l.v[i], f, 0);
		goto out;
	}
	if (ctx->json) {
		arr = json_array();
		for (i = 0; i < l.n; i++)
			json_array_append_new(arr, bundle_json(l.v[i]));
		rc = cli_print_json(ctx, json_pack("{s:o,s:s}", "bundles", arr,
		    "next_page_token", ""));
		goto out;
	}
	rc = 0;
	for (i = 0; i < l.n && rc == 0; i++) {
		if (i > 0)
			fputc('\n', ctx->out);
		rc = print_bundle_msg(ctx, l.v[i], f, 1);
	}
out:
	bundle_list_free(&l);
	return rc;
}

static int
bundle_count(struct cli_ctx *ctx, const struct cli_args *a)
{
	struct bundle_list	l;
	size_t			n;
	int			rc = 1;

	if (fetch_bundles(ctx, &l) != 0)
		goto out;
	n = l.n + 1;	/* the federated ones and the server's own */
	if (ctx->json)
		rc = cli_print_json(ctx, json_pack("{s:I}", "count",
		    (json_int_t)n));
	else {
		fprintf(ctx->out, "%zu %s\n", n, n == 1 ? "bundle" :
		    "bundles");
		rc = 0;
	}
out:
	bundle_list_free(&l);
	return rc;
}

static int
print_result(struct cli_ctx *ctx, const char *id, const char *text)
{
	if (!ctx->json) {
		fprintf(ctx->out, "%s\n", text);
		return 0;
	}
	return cli_print_json(ctx, json_pack("{s:[{s:{s:i,s:s},s:s}]}",
	    "results", "status", "code", 0, "message", "OK", "trust_domain",
	    id));
}

static int
bundle_set(struct cli_ctx *ctx, const struct cli_args *a)
{
	struct bundle	*b = NULL;
	struct buf	 pb;
	enum bformat	 f;
	const char	*why;
	char		 td[SPIFFEID_MAX_TD_LEN + 1];
	char		 id[SPIFFEID_MAX_TD_LEN + 16], err[CLI_ERRLEN];
	char		*data = NULL;
	uint8_t		*resp;
	size_t		 len, rlen;
	int		 rc = 1, r;

	buf_init(&pb, BUNDLE_MAX_DOC);
	if (get_td(ctx, a, "id flag is required", td, id, sizeof(id)) != 0 ||
	    get_format(ctx, a, &f) != 0)
		goto out;
	if (cli_read_input(cli_arg_str(a, "path"), BUNDLE_MAX_DOC, &data,
	    &len, err, sizeof(err)) != 0) {
		rc = cli_fail(ctx, "unable to load bundle data: %s", err);
		goto out;
	}
	r = f == BFORMAT_PEM ? bundle_from_pem(td, (const uint8_t *)data, len,
	    &b, &why) : bundle_from_spiffe_json(td, data, len, &b, &why);
	if (r != 0) {
		rc = cli_fail(ctx, "unable to parse bundle data: %s",
		    why != NULL ? why : wick_strerror(r));
		goto out;
	}
	if (bundle_pack(b, &pb) != 0) {
		rc = cli_fail(ctx, "cannot encode the bundle");
		goto out;
	}
	if (cli_rpc_raw(ctx, "/wick.admin.Bundles/SetFederatedBundle",
	    buf_ptr(&pb), buf_len(&pb), &resp, &rlen) != 0) {
		rc = cli_fail(ctx, "failed to set federated bundle: %s",
		    ctx->errmsg);
		goto out;
	}
	free(resp);
	rc = print_result(ctx, id, "bundle set.");
out:
	buf_cleanup(&pb);
	bundle_free(b);
	free(data);
	return rc;
}

static int
bundle_delete(struct cli_ctx *ctx, const struct cli_args *a)
{
	Wick__Admin__DeleteFederatedBundleRequest	 req =
	    WICK__ADMIN__DELETE_FEDERATED_BUNDLE_REQUEST__INIT;
	Wick__Admin__Empty				*resp;
	const char	*mode = cli_arg_str(a, "mode");
	char		 td[SPIFFEID_MAX_TD_LEN + 1];
	char		 id[SPIFFEID_MAX_TD_LEN + 16];

	if (get_td(ctx, a, "id is required", td, id, sizeof(id)) != 0)
		return 1;
	if (mode != NULL && *mode != '\0' && strcmp(mode, "restrict") != 0) {
		if (strcmp(mode, "delete") == 0 ||
		    strcmp(mode, "dissociate") == 0)
			return cli_fail(ctx, "mode \"%s\" is not supported by "
			    "wick: only restrict (the server refuses while "
			    "entries federate with the trust domain)", mode);
		return cli_fail(ctx, "unsupported mode \"%s\"", mode);
	}
	req.trust_domain = id;
	if (cli_rpc(ctx, "/wick.admin.Bundles/DeleteFederatedBundle",
	    &req.base, &wick__admin__empty__descriptor,
	    (ProtobufCMessage **)&resp) != 0)
		return cli_fail(ctx, "failed to delete federated bundle: %s",
		    ctx->errmsg);
	wick__admin__empty__free_unpacked(resp, NULL);
	return print_result(ctx, id, "bundle deleted.");
}

/* ---- command table ------------------------------------------------------- */

#define F_FORMAT(what) { "format", CLI_FLAG_STRING, "string", "pem", "The "  \
	"format " what ". Either \"pem\" or \"spiffe\"." }
#define F_ID { "id", CLI_FLAG_STRING, "string", NULL, "SPIFFE ID of the "    \
	"trust domain" }

static const struct cli_flag show_flags[] = {
	F_FORMAT("to show the bundle (only pretty output format supports "
	    "this flag)"),
	CLI_FLAG_OUTPUT, CLI_FLAG_SOCKET,
};

static const struct cli_flag list_flags[] = {
	F_FORMAT("to list federated bundles (only pretty output format "
	    "supports this flag)"),
	F_ID, CLI_FLAG_OUTPUT, CLI_FLAG_SOCKET,
};

static const struct cli_flag set_flags[] = {
	F_FORMAT("of the bundle data"), F_ID, CLI_FLAG_OUTPUT,
	{ "path", CLI_FLAG_STRING, "string", NULL, "Path to the bundle data "
	    "(standard input when not set)" },
	CLI_FLAG_SOCKET,
};

static const struct cli_flag delete_flags[] = {
	F_ID,
	{ "mode", CLI_FLAG_STRING, "string", "restrict", "Deletion mode: "
	    "only restrict (refuse while entries federate with the trust "
	    "domain) is supported" },
	CLI_FLAG_OUTPUT, CLI_FLAG_SOCKET,
};

static const struct cli_flag count_flags[] = {
	CLI_FLAG_OUTPUT, CLI_FLAG_SOCKET,
};

#define NFLAGS(t)	(sizeof(t) / sizeof((t)[0]))

const struct cli_cmd cli_bundle_cmds[] = {
	{ "bundle", "count", "Count bundles", count_flags,
	    NFLAGS(count_flags), bundle_count },
	{ "bundle", "delete", "Deletes federated bundle data", delete_flags,
	    NFLAGS(delete_flags), bundle_delete },
	{ "bundle", "list", "Lists federated bundle data", list_flags,
	    NFLAGS(list_flags), bundle_list },
	{ "bundle", "set", "Creates or updates federated bundle data",
	    set_flags, NFLAGS(set_flags), bundle_set },
	{ "bundle", "show", "Prints server CA bundle to stdout", show_flags,
	    NFLAGS(show_flags), bundle_show },
};

const size_t cli_bundle_ncmds = NFLAGS(cli_bundle_cmds);
