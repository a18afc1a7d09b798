/*
 * cli_agent.c: "token generate", "agent list|show|count|evict|ban" and
 * "healthcheck".
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli_int.h"
#include "health.pb-c.h"
#include "rpc.h"
#include "spiffeid.h"
#include "xmalloc.h"

#define AGENT_FMT	"%-18s: "	/* SPIRE's label column */
#define HEALTH_SERVING	\
	GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING
#define HEALTH_STATUS_DESC \
	grpc__health__v1__health_check_response__serving_status__descriptor
#define S(x)		((x) != NULL ? (x) : "")

/* ---- token generate ------------------------------------------------------ */

static int
token_generate(struct cli_ctx *ctx, const struct cli_args *a)
{
	Wick__Admin__CreateJoinTokenRequest	 req =
	    WICK__ADMIN__CREATE_JOIN_TOKEN_REQUEST__INIT;
	Wick__Admin__CreateJoinTokenResponse	*resp;
	struct spiffeid				 id;
	const char				*s, *why;
	char					 buf[SPIFFEID_MAX_LEN + 1];
	char					 err[CLI_ERRLEN];
	int32_t					 ttl = 600;
	int					 rc;

	if ((s = cli_arg_str(a, "ttl")) != NULL) {
		if (cli_parse_ttl("ttl", s, &ttl, err, sizeof(err)) != 0)
			return cli_fail(ctx, "%s", err);
		if (ttl == 0)
			return cli_fail(ctx, "invalid value \"%s\" for -ttl: "
			    "must be positive", s);
	}
	if ((s = cli_arg_str(a, "spiffeID")) != NULL) {
		if (spiffeid_parse(s, 0, &id, &why) != 0)
			return cli_fail(ctx, "invalid value \"%s\" for "
			    "-spiffeID: %s", s, why);
		if (spiffeid_format(&id, buf, sizeof(buf)) != 0)
			return cli_fail(ctx, "invalid value for -spiffeID");
		req.agent_id = buf;
	}
	req.ttl = ttl;
	if (cli_rpc(ctx, "/wick.admin.Agents/CreateJoinToken", &req.base,
	    &wick__admin__create_join_token_response__descriptor,
	    (ProtobufCMessage **)&resp) != 0)
		return cli_fail(ctx, "%s", ctx->errmsg);
	if (ctx->json)
		rc = cli_print_json(ctx, json_pack("{s:o,s:I}", "value",
		    cli_json_str(resp->token), "expires_at",
		    (json_int_t)resp->expires_at));
	else {
		fprintf(ctx->out, "Token: %s\n", S(resp->token));
		if (s == NULL) {
			fflush(ctx->out);
			fprintf(ctx->err, "Warning: Missing SPIFFE ID.\n");
		}
		rc = 0;
	}
	if (resp->token != NULL)
		wipe(resp->token, strlen(resp->token));
	wick__admin__create_join_token_response__free_unpacked(resp, NULL);
	return rc;
}

/* ---- agents -------------------------------------------------------------- */

void
cli_print_agent(FILE *f, const Wick__Types__Agent *ag)
{
	char t[64];

	cli_format_time(ag->x509_svid_expires_at, t, sizeof(t));
	fprintf(f, AGENT_FMT "%s\n", "SPIFFE ID", S(ag->spiffe_id));
	fprintf(f, AGENT_FMT "%s\n", "Attestation type",
	    S(ag->attestation_type));
	fprintf(f, AGENT_FMT "%s\n", "Expiration time", t);
	/* A banned agent has no serial number. */
	if (ag->banned)
		fprintf(f, AGENT_FMT "true\n", "Banned");
	else
		fprintf(f, AGENT_FMT "%s\n", "Serial number",
		    S(ag->x509_svid_serial_number));
	fprintf(f, AGENT_FMT "%s\n", "Can re-attest",
	    ag->can_reattest ? "true" : "false");
	fputc('\n', f);
}

json_t *
cli_agent_json(const Wick__Types__Agent *ag)
{
	json_t *o = json_object();

	json_object_set_new(o, "spiffe_id", cli_json_str(ag->spiffe_id));
	json_object_set_new(o, "attestation_type",
	    cli_json_str(ag->attestation_type));
	json_object_set_new(o, "x509_svid_serial_number",
	    cli_json_str(ag->x509_svid_serial_number));
	json_object_set_new(o, "x509_svid_expires_at",
	    json_integer(ag->x509_svid_expires_at));
	json_object_set_new(o, "selectors", cli_selectors_json(ag->selectors,
	    ag->n_selectors));
	json_object_set_new(o, "banned", json_boolean(ag->banned));
	json_object_set_new(o, "can_reattest", json_boolean(ag->can_reattest));
	return o;
}

/* SPIRE's three-state flags: "true", "false", anything else is all. */
static int
tristate(const char *s)
{
	if (s == NULL)
		return 0;
	return strcmp(s, "true") == 0 ? 1 : strcmp(s, "false") == 0 ? 2 : 0;
}

/* A list request from the filter flags; filter_free() releases it. */
static int
filter_build(struct cli_ctx *ctx, const struct cli_args *a,
    Wick__Admin__ListAgentsRequest *req, int *reattest)
{
	const char *const	*sels;
	const char		*s, *why;
	size_t			 nsel, i;
	int64_t			 t;
	int			 m;

	wick__admin__list_agents_request__init(req);
	*reattest = tristate(cli_arg_str(a, "canReattest"));
	/* by_banned: 1 banned only, 2 not banned. */
	req->by_banned = tristate(cli_arg_str(a, "banned"));
	if ((s = cli_arg_str(a, "attestationType")) != NULL)
		req->by_attestation_type = (char *)s;
	if ((s = cli_arg_str(a, "expiresBefore")) != NULL) {
		if (cli_parse_time(s, &t) != 0)
			return cli_fail(ctx, "invalid value \"%s\" for "
			    "-expiresBefore: date is not valid (unix seconds, "
			    "RFC 3339, or \"2006-01-02 15:04:05 -0700 -07\")",
			    s);
		req->by_expires_before = t;
	}
	sels = cli_arg_list(a, "selector", &nsel);
	if (nsel == 0)
		return 0;
	s = cli_arg_str(a, "matchSelectorsOn");
	if (cli_parse_match(s != NULL ? s : "superset", &m) != 0)
		return cli_fail(ctx, "invalid value \"%s\" for "
		    "-matchSelectorsOn: unsupported match behavior (exact, "
		    "any, superset, subset)", s);
	req->selector_match = (Wick__Admin__MatchBehavior)m;
	req->by_selectors = xcalloc(nsel, sizeof(*req->by_selectors));
	for (i = 0; i < nsel; i++) {
		if (cli_selector_parse(sels[i], &req->by_selectors[i], &why) !=
		    0)
			return cli_fail(ctx, "error parsing selector \"%s\": "
			    "%s", sels[i], why);
		req->n_by_selectors++;
	}
	return 0;
}

static void
filter_free(Wick__Admin__ListAgentsRequest *req)
{
	size_t i;

	for (i = 0; i < req->n_by_selectors; i++)
		wick__types__selector__free_unpacked(req->by_selectors[i],
		    NULL);
	free(req->by_selectors);
}

struct agent_list {
	Wick__Admin__ListAgentsResponse	**pages;
	size_t				  npages;
	Wick__Types__Agent		**v;
	size_t				  n;
};

static void
agent_list_free(struct agent_list *l)
{
	size_t i;

	for (i = 0; i < l->npages; i++)
		wick__admin__list_agents_response__free_unpacked(l->pages[i],
		    NULL);
	free(l->pages);
	free(l->v);
	memset(l, 0, sizeof(*l));
}

/* Every page of the listing, -canReattest applied here. */
static int
fetch_agents(struct cli_ctx *ctx, Wick__Admin__ListAgentsRequest *req,
    int reattest, struct agent_list *l)
{
	Wick__Admin__ListAgentsResponse	*resp;
	Wick__Types__Agent		*ag;
	size_t				 i;

	memset(l, 0, sizeof(*l));
	req->page_size = CLI_AGENT_PAGE_SIZE;
	req->page_token = "";
	for (;;) {
		if (cli_rpc(ctx, "/wick.admin.Agents/ListAgents", &req->base,
		    &wick__admin__list_agents_response__descriptor,
		    (ProtobufCMessage **)&resp) != 0)
			return cli_fail(ctx, "%s", ctx->errmsg);
		l->pages = xreallocarray(l->pages, l->npages + 1,
		    sizeof(*l->pages));
		l->pages[l->npages++] = resp;
		if (resp->n_agents > CLI_MAX_LISTED - l->n)
			return cli_fail(ctx, "more than %d agents; narrow the "
			    "filters", CLI_MAX_LISTED);
		l->v = xreallocarray(l->v, l->n + resp->n_agents + 1,
		    sizeof(*l->v));
		for (i = 0; i < resp->n_agents; i++) {
			ag = resp->agents[i];
			if ((reattest == 1 && !ag->can_reattest) ||
			    (reattest == 2 && ag->can_reattest))
				continue;
			l->v[l->n++] = ag;
		}
		if (*S(resp->next_page_token) == '\0')
			return 0;
		if (strcmp(resp->next_page_token, req->page_token) == 0 ||
		    resp->n_agents == 0)
			return cli_fail(ctx, "the server repeated a page of "
			    "agents");
		req->page_token = resp->next_page_token;
	}
}

static int
agent_list(struct cli_ctx *ctx, const struct cli_args *a)
{
	Wick__Admin__ListAgentsRequest	 req;
	struct agent_list		 l;
	json_t				*arr;
	size_t				 i;
	int				 reattest, rc = 1;

	memset(&l, 0, sizeof(l));
	if (filter_build(ctx, a, &req, &reattest) != 0 ||
	    fetch_agents(ctx, &req, reattest, &l) != 0)
		goto out;
	if (ctx->json) {
		arr = json_array();
		for (i = 0; i < l.n; i++)
			json_array_append_new(arr, cli_agent_json(l.v[i]));
		rc = cli_print_json(ctx, json_pack("{s:o,s:s}", "agents", arr,
		    "next_page_token", ""));
		goto out;
	}
	if (l.n == 0)
		fprintf(ctx->out, "No attested agents found\n");
	else {
		fprintf(ctx->out, "Found %zu attested %s:\n\n", l.n,
		    l.n == 1 ? "agent" : "agents");
		for (i = 0; i < l.n; i++)
			cli_print_agent(ctx->out, l.v[i]);
	}
	rc = 0;
out:
	agent_list_free(&l);
	filter_free(&req);
	return rc;
}

static int
agent_count(struct cli_ctx *ctx, const struct cli_args *a)
{
	Wick__Admin__ListAgentsRequest	 req;
	Wick__Admin__CountResponse	*resp;
	struct agent_list		 l;
	int64_t				 count;
	int				 reattest, rc = 1;

	memset(&l, 0, sizeof(l));
	if (filter_build(ctx, a, &req, &reattest) != 0)
		goto out;
	if (reattest != 0) {
		/* The API has no such filter: count a listing. */
		if (fetch_agents(ctx, &req, reattest, &l) != 0)
			goto out;
		count = (int64_t)l.n;
	} else {
		if (cli_rpc(ctx, "/wick.admin.Agents/CountAgents", &req.base,
		    &wick__admin__count_response__descriptor,
		    (ProtobufCMessage **)&resp) != 0) {
			rc = cli_fail(ctx, "%s", ctx->errmsg);
			goto out;
		}
		count = resp->count;
		wick__admin__count_response__free_unpacked(resp, NULL);
	}
	if (ctx->json)
		rc = cli_print_json(ctx, json_pack("{s:I}", "count",
		    (json_int_t)count));
	else {
		fprintf(ctx->out, "%lld attested %s\n", (long long)count,
		    count == 1 ? "agent" : "agents");
		rc = 0;
	}
out:
	agent_list_free(&l);
	filter_free(&req);
	return rc;
}

/* -spiffeID of show, evict and ban, normalised into buf. */
static int
agent_id(struct cli_ctx *ctx, const struct cli_args *a, char *buf,
    size_t buflen)
{
	struct spiffeid	 id;
	const char	*s = cli_arg_str(a, "spiffeID"), *why;

	if (s == NULL || *s == '\0')
		return cli_fail(ctx, "a SPIFFE ID is required");
	if (spiffeid_parse(s, 0, &id, &why) != 0)
		return cli_fail(ctx, "invalid value \"%s\" for -spiffeID: %s",
		    s, why);
	if (spiffeid_format(&id, buf, buflen) != 0)
		return cli_fail(ctx, "invalid value for -spiffeID");
	return 0;
}

static int
agent_show(struct cli_ctx *ctx, const struct cli_args *a)
{
	Wick__Admin__GetAgentRequest	 req =
	    WICK__ADMIN__GET_AGENT_REQUEST__INIT;
	Wick__Types__Agent		*ag;
	char				 buf[SPIFFEID_MAX_LEN + 1];
	size_t				 i;
	int				 rc = 0;

	if (agent_id(ctx, a, buf, sizeof(buf)) != 0)
		return 1;
	req.spiffe_id = buf;
	if (cli_rpc(ctx, "/wick.admin.Agents/GetAgent", &req.base,
	    &wick__types__agent__descriptor, (ProtobufCMessage **)&ag) != 0)
		return cli_fail(ctx, "%s", ctx->errmsg);
	if (ctx->json)
		rc = cli_print_json(ctx, cli_agent_json(ag));
	else {
		fprintf(ctx->out, "Found an attested agent given its SPIFFE "
		    "ID\n\n");
		cli_print_agent(ctx->out, ag);
		for (i = 0; i < ag->n_selectors; i++)
			fprintf(ctx->out, AGENT_FMT "%s:%s\n", "Selectors",
			    S(ag->selectors[i]->type),
			    S(ag->selectors[i]->value));
	}
	wick__types__agent__free_unpacked(ag, NULL);
	return rc;
}

static int
agent_change(struct cli_ctx *ctx, const struct cli_args *a, int ban)
{
	Wick__Admin__GetAgentRequest	 req =
	    WICK__ADMIN__GET_AGENT_REQUEST__INIT;
	Wick__Admin__Empty		*resp;
	char				 buf[SPIFFEID_MAX_LEN + 1];

	if (agent_id(ctx, a, buf, sizeof(buf)) != 0)
		return 1;
	req.spiffe_id = buf;
	if (cli_rpc(ctx, ban ? "/wick.admin.Agents/BanAgent" :
	    "/wick.admin.Agents/EvictAgent", &req.base,
	    &wick__admin__empty__descriptor, (ProtobufCMessage **)&resp) != 0)
		return cli_fail(ctx, "%s", ctx->errmsg);
	wick__admin__empty__free_unpacked(resp, NULL);
	if (ctx->json)
		return cli_print_json(ctx, json_object());
	fprintf(ctx->out, "Agent %s successfully\n", ban ? "banned" :
	    "evicted");
	return 0;
}

static int
agent_evict(struct cli_ctx *ctx, const struct cli_args *a)
{
	return agent_change(ctx, a, 0);
}

static int
agent_ban(struct cli_ctx *ctx, const struct cli_args *a)
{
	return agent_change(ctx, a, 1);
}

/* ---- healthcheck --------------------------------------------------------- */

static int
healthcheck(struct cli_ctx *ctx, const struct cli_args *a)
{
	Grpc__Health__V1__HealthCheckRequest	 req =
	    GRPC__HEALTH__V1__HEALTH_CHECK_REQUEST__INIT;
	Grpc__Health__V1__HealthCheckResponse	*resp;
	const ProtobufCEnumValue		*ev;
	char					 name[32];
	int					 verbose, st;

	verbose = cli_arg_bool(a, "verbose");
	if (verbose) {
		fprintf(ctx->out, "Checking server health...\n");
		fflush(ctx->out);
	}
	if (cli_rpc(ctx, "/grpc.health.v1.Health/Check", &req.base,
	    &grpc__health__v1__health_check_response__descriptor,
	    (ProtobufCMessage **)&resp) != 0) {
		if (verbose) {
			fprintf(ctx->err, "Failed to check health: %s\n",
			    ctx->errmsg);
			return cli_fail(ctx, "server is unhealthy: unable to "
			    "determine health");
		}
		return cli_fail(ctx, "server is unhealthy: unable to determine "
		    "health (%s)", ctx->errmsg);
	}
	st = resp->status;
	grpc__health__v1__health_check_response__free_unpacked(resp, NULL);
	if (st != HEALTH_SERVING) {
		ev = protobuf_c_enum_descriptor_get_value(&HEALTH_STATUS_DESC,
		    st);
		if (ev != NULL)
			snprintf(name, sizeof(name), "%s", ev->name);
		else
			snprintf(name, sizeof(name), "%d", st);
		return cli_fail(ctx, "server is unhealthy: server returned "
		    "status \"%s\"", name);
	}
	fprintf(ctx->out, "Server is healthy.\n");
	return 0;
}

/* ---- command table ------------------------------------------------------- */

static const struct cli_flag token_flags[] = {
	CLI_FLAG_OUTPUT, CLI_FLAG_SOCKET,
	{ "spiffeID", CLI_FLAG_STRING, "string", NULL, "Additional SPIFFE ID "
	    "to assign the token owner (optional)" },
	{ "ttl", CLI_FLAG_STRING, "int", "600", "Token TTL in seconds (or a "
	    "duration such as 10m)" },
};

#define AGENT_FILTER_FLAGS						     \
	{ "attestationType", CLI_FLAG_STRING, "string", NULL, "Filter by "   \
	    "attestation type, like join_token or x509pop." },		     \
	{ "banned", CLI_FLAG_STRING, "value", NULL, "Filter based on "	     \
	    "string received, 'true': banned agents, 'false': not banned "   \
	    "agents, other value will return all." },			     \
	{ "canReattest", CLI_FLAG_STRING, "value", NULL, "Filter based on "  \
	    "string received, 'true': agents that can reattest, 'false': "   \
	    "agents that can't reattest, other value will return all." },    \
	{ "expiresBefore", CLI_FLAG_STRING, "string", NULL, "Filter by "     \
	    "expiration time (unix seconds, RFC 3339, or \"2006-01-02 "	     \
	    "15:04:05 -0700 -07\")" },					     \
	{ "matchSelectorsOn", CLI_FLAG_STRING, "string", "superset", "The "  \
	    "match mode used when filtering by selectors. Options: exact, "  \
	    "any, superset and subset" },				     \
	CLI_FLAG_OUTPUT,						     \
	{ "selector", CLI_FLAG_LIST, "value", NULL, "A colon-delimited "     \
	    "type:value selector. Can be used more than once" },	     \
	CLI_FLAG_SOCKET

static const struct cli_flag list_flags[] = {
	AGENT_FILTER_FLAGS,
};

#define AGENT_ID_FLAGS(what)						     \
	CLI_FLAG_OUTPUT, CLI_FLAG_SOCKET,				     \
	{ "spiffeID", CLI_FLAG_STRING, "string", NULL, "The SPIFFE ID of "   \
	    "the agent to " what " (agent identity)" }

static const struct cli_flag show_flags[] = { AGENT_ID_FLAGS("show") };
static const struct cli_flag evict_flags[] = { AGENT_ID_FLAGS("evict") };
static const struct cli_flag ban_flags[] = { AGENT_ID_FLAGS("ban") };

static const struct cli_flag health_flags[] = {
	{ "shallow", CLI_FLAG_BOOL, NULL, NULL, "Perform a less stringent "
	    "health check (accepted for compatibility: the server answers "
	    "the same check either way)" },
	CLI_FLAG_SOCKET,
	{ "verbose", CLI_FLAG_BOOL, NULL, NULL, "Print verbose information" },
};

#define NFLAGS(t)	(sizeof(t) / sizeof((t)[0]))

const struct cli_cmd cli_agent_cmds[] = {
	{ "token", "generate", "Generates a join token", token_flags,
	    NFLAGS(token_flags), token_generate },
	{ "agent", "ban", "Ban an attested agent given its SPIFFE ID",
	    ban_flags, NFLAGS(ban_flags), agent_ban },
	{ "agent", "count", "Count attested agents", list_flags,
	    NFLAGS(list_flags), agent_count },
	{ "agent", "evict", "Evicts an attested agent given its SPIFFE ID",
	    evict_flags, NFLAGS(evict_flags), agent_evict },
	{ "agent", "list", "Lists attested agents and their SPIFFE IDs",
	    list_flags, NFLAGS(list_flags), agent_list },
	{ "agent", "show", "Shows the details of an attested agent given its "
	    "SPIFFE ID", show_flags, NFLAGS(show_flags), agent_show },
	{ "healthcheck", NULL, "Determines server health status",
	    health_flags, NFLAGS(health_flags), healthcheck },
};

const size_t cli_agent_ncmds = NFLAGS(cli_agent_cmds);
