/*
 * cli_audit.c: "audit show|verify" (the tamper-evident audit trail) and
 * "backup" (an online copy of the datastore and the keys), through the
 * admin API like every other admin command.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli_int.h"
#include "conf.h"
#include "config.h"
#include "ds.h"
#include "rpc.h"
#include "spiffeid.h"
#include "xmalloc.h"

#define AUDIT_CLI_PAGE		500
#define AUDIT_CLI_MAX		1000000	/* events in one listing */

/* -since: a point in time (cli_parse_time()) or a duration back from now
 * ("24h"). */
int
cli_parse_since(const char *s, int64_t now, int64_t *out, char *err,
    size_t errlen)
{
	const char	*why = NULL;
	int64_t		 d;

	if (cli_parse_time(s, out) == 0)
		return 0;
	if (conf_parse_duration(s, &d, &why) == 0 && d >= 0 && d <= now) {
		*out = now - d;
		return 0;
	}
	snprintf(err, errlen, "invalid value \"%s\" for -since: not a time "
	    "(RFC 3339, unix seconds) or a duration (24h)", s);
	return WICK_ERR_INVALID;
}

static json_t *
event_json(const Wick__Admin__AuditEvent *e)
{
	json_t	*o = json_object(), *d;
	char	 t[64];

	cli_format_time(e->at, t, sizeof(t));
	json_object_set_new(o, "seq", json_integer(e->seq));
	json_object_set_new(o, "at", json_integer(e->at));
	json_object_set_new(o, "time", json_string(t));
	json_object_set_new(o, "kind", cli_json_str(e->kind));
	json_object_set_new(o, "actor", cli_json_str(e->actor));
	json_object_set_new(o, "subject", cli_json_str(e->subject));
	json_object_set_new(o, "outcome", json_string(e->ok ? "ok" :
	    "failed"));
	/* The details as an object; as text if they were stored damaged. */
	if ((d = json_loads(e->detail_json, 0, NULL)) == NULL)
		d = cli_json_str(e->detail_json);
	json_object_set_new(o, "detail", d);
	json_object_set_new(o, "prev_hash", cli_json_str(e->prev_hash));
	json_object_set_new(o, "hash", cli_json_str(e->hash));
	return o;
}

static void
print_event(FILE *f, const Wick__Admin__AuditEvent *e)
{
	char t[64];

	cli_format_time(e->at, t, sizeof(t));
	fprintf(f, "Seq           : %lld\n", (long long)e->seq);
	fprintf(f, "Time          : %s\n", t);
	fprintf(f, "Kind          : %s\n", e->kind);
	fprintf(f, "Outcome       : %s\n", e->ok ? "ok" : "failed");
	fprintf(f, "Actor         : %s\n", e->actor);
	if (*e->subject != '\0')
		fprintf(f, "Subject       : %s\n", e->subject);
	fprintf(f, "Detail        : %s\n", e->detail_json);
	fprintf(f, "Hash          : %s\n\n", e->hash);
}

static int
audit_show(struct cli_ctx *ctx, const struct cli_args *a)
{
	Wick__Admin__ListAuditEventsRequest	 req =
	    WICK__ADMIN__LIST_AUDIT_EVENTS_REQUEST__INIT;
	Wick__Admin__ListAuditEventsResponse	*resp = NULL;
	const char				*s, *why;
	struct spiffeid				 id;
	json_t					*all = NULL;
	char					 err[CLI_ERRLEN];
	char					*token = NULL;
	size_t					 i, total = 0;
	int					 rc = 0;

	if ((s = cli_arg_str(a, "since")) != NULL && cli_parse_since(s,
	    (int64_t)time(NULL), &req.since, err, sizeof(err)) != 0)
		return cli_fail(ctx, "%s", err);
	if ((s = cli_arg_str(a, "spiffeID")) != NULL) {
		if (spiffeid_parse(s, 0, &id, &why) != 0)
			return cli_fail(ctx, "invalid value \"%s\" for "
			    "-spiffeID: %s", s, why);
		req.spiffe_id = (char *)s;
	}
	if (ctx->json)
		all = json_array();
	req.page_size = AUDIT_CLI_PAGE;
	for (;;) {
		req.page_token = token != NULL ? token : "";
		if (cli_rpc(ctx, "/wick.admin.Audit/ListAuditEvents",
		    &req.base,
		    &wick__admin__list_audit_events_response__descriptor,
		    (ProtobufCMessage **)&resp) != 0) {
			rc = cli_fail(ctx, "%s", ctx->errmsg);
			break;
		}
		for (i = 0; i < resp->n_events; i++) {
			if (all != NULL)
				json_array_append_new(all,
				    event_json(resp->events[i]));
			else
				print_event(ctx->out, resp->events[i]);
		}
		total += resp->n_events;
		free(token);
		token = NULL;
		if (*resp->next_page_token != '\0')
			token = xstrdup(resp->next_page_token);
		wick__admin__list_audit_events_response__free_unpacked(resp,
		    NULL);
		resp = NULL;
		if (token == NULL)
			break;
		if (total >= AUDIT_CLI_MAX) {
			rc = cli_fail(ctx, "more than %d events: narrow the "
			    "listing with -since or -spiffeID", AUDIT_CLI_MAX);
			break;
		}
	}
	free(token);
	if (rc != 0) {
		json_decref(all);
		return rc;
	}
	if (all != NULL)
		return cli_print_json(ctx, json_pack("{s:o}", "events", all));
	if (total == 0)
		fprintf(ctx->out, "No audit events found\n");
	return 0;
}

/*
 * -config or -dataDir: walk the chain of a stopped server's datastore
 * here, read only (ds_open_readonly()), into the reply the server would
 * give.
 */
static int
verify_offline(struct cli_ctx *ctx, const struct cli_args *a,
    Wick__Admin__VerifyAuditResponse **out)
{
	Wick__Admin__VerifyAuditResponse	*resp;
	struct server_flags			 fl;
	struct server_config			 cfg;
	struct conf_error			 err;
	struct ds_audit_verify			 v;
	struct ds				*ds = NULL;
	const char				*why = NULL;
	int					 r, rc = 1;

	memset(&fl, 0, sizeof(fl));
	fl.config = cli_arg_str(a, "config");
	fl.data_dir = cli_arg_str(a, "dataDir");
	fl.expand_env = cli_arg_bool(a, "expandEnv");
	if ((r = server_config_load(&fl, &cfg, &err)) != 0) {
		rc = cli_fail(ctx, "%s%s%s", fl.config != NULL ? fl.config :
		    "", fl.config != NULL ? ": " : "", err.msg[0] != '\0' ?
		    err.msg : wick_strerror(r));
		goto out;
	}
	if ((r = ds_open_readonly(cfg.ds_type, cfg.ds_conn, &ds, &why)) !=
	    0) {
		rc = cli_fail(ctx, "%s: %s", ds_conn_shown(cfg.ds_type,
		    cfg.ds_conn), why != NULL ? why :
		    wick_strerror(r));
		goto out;
	}
	memset(&v, 0, sizeof(v));
	while (!v.done)
		if ((r = ds_audit_verify_step(ds, &v, 0)) != 0) {
			rc = cli_fail(ctx, "%s: cannot read the audit trail: "
			    "%s", ds_conn_shown(cfg.ds_type, cfg.ds_conn),
			    wick_strerror(r));
			goto out;
		}
	resp = xcalloc(1, sizeof(*resp));
	wick__admin__verify_audit_response__init(resp);
	resp->ok = v.bad_seq == 0;
	resp->count = v.count;
	resp->head_seq = v.next_seq - 1;
	resp->head_hash = xstrdup(v.prev_hash);
	resp->anchor_seq = v.anchor_seq;
	resp->bad_seq = v.bad_seq;
	resp->reason = xstrdup(v.why);
	*out = resp;
	rc = 0;
out:
	ds_close(ds);
	server_config_cleanup(&cfg);
	return rc;
}

static int
audit_verify(struct cli_ctx *ctx, const struct cli_args *a)
{
	Wick__Admin__Empty			 req =
	    WICK__ADMIN__EMPTY__INIT;
	Wick__Admin__VerifyAuditResponse	*resp = NULL;
	int					 rc;

	if (cli_arg_given(a, "config") || cli_arg_given(a, "dataDir")) {
		if ((rc = verify_offline(ctx, a, &resp)) != 0)
			return rc;
	} else if (cli_rpc(ctx, "/wick.admin.Audit/VerifyAudit", &req.base,
	    &wick__admin__verify_audit_response__descriptor,
	    (ProtobufCMessage **)&resp) != 0)
		return cli_fail(ctx, "%s", ctx->errmsg);
	if (ctx->json) {
		rc = cli_print_json(ctx, json_pack("{s:b,s:I,s:I,s:s,s:I,s:I,"
		    "s:s}", "ok", resp->ok, "count", (json_int_t)resp->count,
		    "head_seq", (json_int_t)resp->head_seq, "head_hash",
		    resp->head_hash, "anchor_seq",
		    (json_int_t)resp->anchor_seq, "bad_seq",
		    (json_int_t)resp->bad_seq, "reason", resp->reason));
		if (rc == 0 && !resp->ok)
			rc = 1;
	} else if (resp->ok) {
		fprintf(ctx->out, "Audit trail OK: %lld events verified",
		    (long long)resp->count);
		if (resp->anchor_seq > 0)
			fprintf(ctx->out, " from the prune anchor at seq %lld",
			    (long long)resp->anchor_seq);
		fprintf(ctx->out, "\nHead seq      : %lld\n"
		    "Head hash     : %s\n", (long long)resp->head_seq,
		    resp->head_hash);
		rc = 0;
	} else {
		fprintf(ctx->out, "Audit trail BROKEN at seq %lld: %s\n"
		    "Events verified before it: %lld\n",
		    (long long)resp->bad_seq, resp->reason,
		    (long long)resp->count);
		rc = 1;
	}
	wick__admin__verify_audit_response__free_unpacked(resp, NULL);
	return rc;
}

static int
backup(struct cli_ctx *ctx, const struct cli_args *a)
{
	Wick__Admin__BackupRequest	 req =
	    WICK__ADMIN__BACKUP_REQUEST__INIT;
	Wick__Admin__BackupResponse	*resp;
	const char			*path = cli_arg_str(a, "path");
	char				 cwd[PATH_MAX], *abs = NULL;
	int				 rc = 0;

	if (path == NULL || *path == '\0')
		return cli_fail(ctx, "a backup directory is required (-path)");
	/* The server resolves paths from its own working directory. */
	if (*path != '/') {
		if (getcwd(cwd, sizeof(cwd)) == NULL)
			return cli_fail(ctx, "cannot resolve %s: %s", path,
			    strerror(errno));
		if (asprintf(&abs, "%s/%s", cwd, path) < 0)
			return cli_fail(ctx, "out of memory");
		path = abs;
	}
	req.path = (char *)path;
	if (cli_rpc(ctx, "/wick.admin.Server/Backup", &req.base,
	    &wick__admin__backup_response__descriptor,
	    (ProtobufCMessage **)&resp) != 0) {
		rc = cli_fail(ctx, "%s", ctx->errmsg);
		goto out;
	}
	if (ctx->json)
		rc = cli_print_json(ctx, json_pack("{s:s,s:s,s:s,s:I}", "path",
		    resp->path, "datastore_file", resp->datastore_file,
		    "keys_file", resp->keys_file, "created_at",
		    (json_int_t)resp->created_at));
	else {
		fprintf(ctx->out, "Backup written to %s\n", resp->path);
		fprintf(ctx->out, "Datastore     : %s\n", resp->datastore_file);
		fprintf(ctx->out, "Keys          : %s\n",
		    *resp->keys_file != '\0' ? resp->keys_file :
		    "(none: the KeyManager keeps its keys in memory)");
	}
	wick__admin__backup_response__free_unpacked(resp, NULL);
out:
	free(abs);
	return rc;
}

/* ---- command table ------------------------------------------------------- */

static const struct cli_flag show_flags[] = {
	CLI_FLAG_OUTPUT, CLI_FLAG_SOCKET,
	{ "since", CLI_FLAG_STRING, "string", NULL, "Only events at or after "
	    "this time (RFC 3339 or unix seconds) or within this duration "
	    "back from now (24h)" },
	{ "spiffeID", CLI_FLAG_STRING, "string", NULL, "Only events whose "
	    "actor or subject is this SPIFFE ID" },
};

static const struct cli_flag verify_flags[] = {
	{ "config", CLI_FLAG_STRING, "string", NULL, "Verify the datastore "
	    "this server configuration names, here and read only, instead "
	    "of asking the server (which must be stopped)" },
	{ "dataDir", CLI_FLAG_STRING, "string", NULL, "The same, for the "
	    "datastore in this data directory (with -config: overrides its "
	    "data_dir)" },
	{ "expandEnv", CLI_FLAG_BOOL, NULL, NULL, "Expand $VAR and ${VAR} in "
	    "the -config file" },
	CLI_FLAG_OUTPUT, CLI_FLAG_SOCKET,
};

static const struct cli_flag backup_flags[] = {
	CLI_FLAG_OUTPUT,
	{ "path", CLI_FLAG_STRING, "string", NULL, "A new directory to write "
	    "the backup into (created 0700; never overwritten)" },
	CLI_FLAG_SOCKET,
};

#define NFLAGS(t)	(sizeof(t) / sizeof((t)[0]))

const struct cli_cmd cli_audit_cmds[] = {
	{ "audit", "show", "Lists audit events, oldest first", show_flags,
	    NFLAGS(show_flags), audit_show },
	{ "audit", "verify", "Verifies the audit trail's hash chain and "
	    "reports the first broken link", verify_flags,
	    NFLAGS(verify_flags), audit_verify },
	{ "backup", NULL, "Writes an online backup of the datastore and the "
	    "keys", backup_flags, NFLAGS(backup_flags), backup },
};

const size_t cli_audit_ncmds = NFLAGS(cli_audit_cmds);
