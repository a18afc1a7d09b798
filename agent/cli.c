/*
 * cli.c: the Workload API command-line client of wick-agent ("api fetch",
 * "api validate", "api watch", "healthcheck"), spire-agent's commands
 * of the same names.
 *
 * "tpm pubhash" prints the TPM's EK hash for the server's allow-list; it
 * talks to the TPM, not to the agent.
 *
 * Each command opens one h2c channel to the agent's Unix socket on a
 * private libuv loop and runs its calls one after the other, blocking.
 * Every call carries "workload.spiffe.io: true".  -timeout bounds each
 * unary call and the wait for the first message of a stream; a stream
 * read once (fetch) is cancelled after its first message.  The answers
 * are checked and printed by cli_out.c.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>
#include <uv.h>

#include "buf.h"
#include "cli.h"
#include "cli_int.h"
#include "health.pb-c.h"
#include "log.h"
#include "na_tpm.h"
#include "rpc.h"
#include "rpc_client.h"
#include "secpath.h"
#include "spiffeid.h"
#include "workload.pb-c.h"

#define CLI_PATH_X509		"/SpiffeWorkloadAPI/FetchX509SVID"
#define CLI_PATH_JWT		"/SpiffeWorkloadAPI/FetchJWTSVID"
#define CLI_PATH_JWT_BUNDLES	"/SpiffeWorkloadAPI/FetchJWTBundles"
#define CLI_PATH_VALIDATE	"/SpiffeWorkloadAPI/ValidateJWTSVID"
#define CLI_PATH_WIT		"/SpiffeWorkloadAPI/FetchWITSVID"
#define CLI_PATH_WIT_BUNDLES	"/SpiffeWorkloadAPI/FetchWITBundles"
#define CLI_PATH_HEALTH		"/grpc.health.v1.Health/Check"
#define CLI_MAX_RESPONSE	RPC_DEFAULT_MAX_MESSAGE
#define CLI_NO_WIT		"the agent does not serve WIT-SVIDs"

struct cli {
	FILE			*out;
	FILE			*err;
	/* flags */
	const char		*socket_flag;
	int64_t			 timeout_ms;
	const char		*write_dir;
	int			 silent;
	const char		*output;
	int			 json;
	struct cli_list		 audiences;
	const char		*audience;
	const char		*spiffe_id;
	const char		*svid;
	int			 shallow;
	int			 verbose;
	/* the connection */
	char			 path[CLI_MAX_SOCKET_PATH + 1];
	char			 target[CLI_MAX_SOCKET_PATH + 16];
	uv_loop_t		 loop;
	int			 loop_ok;
	struct rpc_channel	*ch;
};

enum call_mode {
	CALL_UNARY = 0,
	CALL_FIRST,		/* stream: keep the first message, cancel */
	CALL_WATCH,		/* stream: each message to watch_update() */
};

struct call {
	struct cli		*cli;
	struct rpc_ccall	*c;
	enum call_mode		 mode;
	int			 done;
	int			 status;
	char			 msg[CLI_MAX_ERR];
	unsigned		 nmsgs;
	struct buf		 resp;		/* the first message */
	/* watch */
	uv_timer_t		 timer;
	uv_signal_t		 sigint;
	uv_signal_t		 sigterm;
	int			 interrupted;
	int			 deadline;
	uint64_t		 last;
};

/* ---- the connection and calls -------------------------------------------- */

static int
cli_connect(struct cli *cli)
{
	char	err[CLI_MAX_ERR], why[SECPATH_MAX_WHY];
	int	r;

	if (cli_socket_resolve(cli->socket_flag, getenv(CLI_ENDPOINT_ENV),
	    cli->path, sizeof(cli->path), err, sizeof(err)) != 0) {
		fprintf(cli->err, "%s\n", err);
		return -1;
	}
	snprintf(cli->target, sizeof(cli->target), "unix://%s", cli->path);
	/*
	 * Another user's socket could be a fake agent: refuse it.  A missing
	 * one is not dialled (it could appear in between): the calls fail as
	 * a dial would, see call_start().
	 */
	if ((r = secpath_check_socket(cli->path, why, sizeof(why))) != 0 &&
	    r != WICK_ERR_NOT_FOUND) {
		fprintf(cli->err, "refusing the Workload API socket %s: %s\n",
		    cli->path, why);
		return -1;
	}
	if (uv_loop_init(&cli->loop) != 0) {
		fprintf(cli->err, "cannot create an event loop\n");
		return -1;
	}
	cli->loop_ok = 1;
	if (r == WICK_ERR_NOT_FOUND)
		return 0;
	if ((r = rpc_channel_new(&cli->loop, cli->target, NULL,
	    CLI_MAX_RESPONSE, &cli->ch)) != 0) {
		fprintf(cli->err, "cannot connect to %s: %s\n", cli->path,
		    wick_strerror(r));
		return -1;
	}
	return 0;
}

static void
cli_disconnect(struct cli *cli)
{
	if (cli->ch != NULL) {
		rpc_channel_close(cli->ch, NULL, NULL);
		cli->ch = NULL;
	}
	if (cli->loop_ok) {
		(void)uv_run(&cli->loop, UV_RUN_DEFAULT);
		if (uv_loop_close(&cli->loop) != 0)
			fprintf(cli->err, "internal error: handles left "
			    "open\n");
		cli->loop_ok = 0;
	}
}

static void	watch_update(struct call *, const uint8_t *, size_t);

static void
call_message_cb(struct rpc_ccall *c, const uint8_t *p, size_t n, void *arg)
{
	struct call *call = arg;

	if (call->mode == CALL_WATCH) {
		call->nmsgs++;
		watch_update(call, p, n);
		return;
	}
	if (call->nmsgs++ > 0)
		return;		/* a second answer: see call_status_cb */
	if (buf_put(&call->resp, p, n) != 0) {
		call->status = RPC_RESOURCE_EXHAUSTED;
		snprintf(call->msg, sizeof(call->msg), "response too large");
		call->nmsgs = 0;
		rpc_ccall_cancel(c);
		return;
	}
	if (call->mode == CALL_FIRST)
		rpc_ccall_cancel(c);
}

static void
call_status_cb(struct rpc_ccall *c, int status, const char *msg, void *arg)
{
	struct call *call = arg;

	call->c = NULL;
	call->done = 1;
	if (call->status == RPC_RESOURCE_EXHAUSTED && call->nmsgs == 0 &&
	    call->msg[0] != '\0')
		return;		/* set by call_message_cb */
	if (call->mode == CALL_FIRST && call->nmsgs > 0) {
		call->status = RPC_OK;
		return;
	}
	call->status = status;
	snprintf(call->msg, sizeof(call->msg), "%s", msg != NULL ? msg : "");
	if (status == RPC_OK && call->mode == CALL_UNARY && call->nmsgs != 1) {
		call->status = RPC_INTERNAL;
		snprintf(call->msg, sizeof(call->msg), "%s", call->nmsgs == 0 ?
		    "no response message" : "more than one response message");
	}
	if (status == RPC_OK && call->mode == CALL_FIRST) {
		call->status = RPC_INTERNAL;
		snprintf(call->msg, sizeof(call->msg), "the stream ended "
		    "without a response");
	}
}

static const struct rpc_client_cbs call_cbs = {
	NULL, call_message_cb, call_status_cb,
};

static void
call_init(struct call *call, struct cli *cli, enum call_mode mode)
{
	memset(call, 0, sizeof(*call));
	call->cli = cli;
	call->mode = mode;
	call->status = -1;
	buf_init(&call->resp, CLI_MAX_RESPONSE);
	buf_set_secret(&call->resp);	/* may hold private keys */
}

static void
call_cleanup(struct call *call)
{
	buf_cleanup(&call->resp);
}

/* Start a call: the request is sent and our side half-closed. */
static int
call_start(struct call *call, const char *path, const ProtobufCMessage *req,
    int64_t timeout_ms)
{
	static const struct rpc_md md = {
		"workload.spiffe.io", (const uint8_t *)"true", 4
	};
	uint8_t	*p;
	size_t	 len = protobuf_c_message_get_packed_size(req);
	int	 r;

	if (call->cli->ch == NULL) {	/* no socket: see cli_connect() */
		call->status = RPC_UNAVAILABLE;
		snprintf(call->msg, sizeof(call->msg), "%s",
		    uv_strerror(UV_ENOENT));
		call->done = 1;
		return -1;
	}
	if ((p = malloc(len + 1)) == NULL) {
		call->status = RPC_RESOURCE_EXHAUSTED;
		snprintf(call->msg, sizeof(call->msg), "out of memory");
		call->done = 1;
		return -1;
	}
	protobuf_c_message_pack(req, p);
	if ((r = rpc_ccall_start(call->cli->ch, path, &md, 1,
	    timeout_ms > 0 ? timeout_ms : -1, &call_cbs, call,
	    &call->c)) != 0) {
		OPENSSL_clear_free(p, len + 1);
		call->status = RPC_UNAVAILABLE;
		snprintf(call->msg, sizeof(call->msg), "cannot start the "
		    "call: %s", wick_strerror(r));
		call->done = 1;
		return -1;
	}
	r = rpc_ccall_send(call->c, p, len);
	OPENSSL_clear_free(p, len + 1);
	if (r == 0)
		r = rpc_ccall_half_close(call->c);
	if (r != 0) {
		rpc_ccall_cancel(call->c);	/* runs call_status_cb */
		call->status = RPC_INTERNAL;
		snprintf(call->msg, sizeof(call->msg), "cannot send the "
		    "request: %s", wick_strerror(r));
		return -1;
	}
	return 0;
}

static void
call_wait(struct call *call)
{
	while (!call->done && uv_run(&call->cli->loop, UV_RUN_ONCE) != 0)
		;
	if (!call->done) {
		call->status = RPC_INTERNAL;
		snprintf(call->msg, sizeof(call->msg), "the call never ended");
	}
}

/* One blocking call; 0 when it ended OK (the answer is in call->resp). */
static int
call_run(struct call *call, const char *path, const ProtobufCMessage *req)
{
	if (call_start(call, path, req, call->cli->timeout_ms) == 0)
		call_wait(call);
	return call->status == RPC_OK ? 0 : -1;
}

/* Failures of the connection itself, as libuv words them. */
static int
is_dial_error(const char *msg)
{
	static const int codes[] = {
		UV_ENOENT, UV_ECONNREFUSED, UV_EACCES, UV_EPERM, UV_ENOTSOCK,
		UV_ENOTDIR, UV_ENAMETOOLONG, UV_ECONNRESET, UV_EPROTOTYPE,
	};
	size_t i;

	for (i = 0; i < sizeof(codes) / sizeof(codes[0]); i++)
		if (strcmp(msg, uv_strerror(codes[i])) == 0)
			return 1;
	return 0;
}

/* "rpc error: code = Unavailable desc = ..." as Go's gRPC prints it. */
static void
print_rpc_error(struct cli *cli, const char *prefix, const struct call *call)
{
	fprintf(cli->err, "%srpc error: code = %s desc = ", prefix,
	    cli_code_name(call->status));
	if (call->status == RPC_UNAVAILABLE && is_dial_error(call->msg))
		fprintf(cli->err, "connection error: dial unix %s: connect: ",
		    cli->path);
	cli_put_safe(cli->err, call->msg);
	fputc('\n', cli->err);
}

static int
print_json(struct cli *cli, json_t *j)
{
	char *s;

	if ((s = json_dumps(j, JSON_COMPACT)) == NULL) {
		fprintf(cli->err, "cannot encode JSON\n");
		return -1;
	}
	fprintf(cli->out, "%s\n", s);
	free(s);
	return 0;
}

/* ---- flags --------------------------------------------------------------- */

#define FLAG_SOCKET(c) { "socketPath", CLI_FLAG_STRING, &(c)->socket_flag, \
	"PATH", "Path to the Workload API socket (default: " \
	CLI_ENDPOINT_ENV ", else the agent's default socket)" }
#define FLAG_TIMEOUT(c) { "timeout", CLI_FLAG_DURATION, &(c)->timeout_ms, \
	"DURATION", "Time to wait for a response (default 5s)" }
#define FLAG_OUTPUT(c) { "output", CLI_FLAG_STRING, &(c)->output, \
	"FORMAT", "Output format: pretty or json (default pretty)" }

/* Parse a command's flags; returns -1 to stop with exit status *rc. */
static int
parse_flags(struct cli *cli, const char *synopsis, const struct cli_flag *fl,
    size_t nfl, int argc, char **argv, int *rc)
{
	char	err[CLI_MAX_ERR];
	int	next, r;

	r = cli_flags_parse(fl, nfl, argc, argv, &next, err, sizeof(err));
	if (r == CLI_FLAGS_HELP) {
		cli_flags_usage(cli->out, synopsis, fl, nfl);
		*rc = 0;
		return -1;
	}
	if (r == 0 && next < argc) {
		snprintf(err, sizeof(err), "unexpected argument \"%s\"",
		    argv[next]);
		r = WICK_ERR_INVALID;
	}
	if (r == 0 && cli->output != NULL) {
		if (strcmp(cli->output, "json") == 0)
			cli->json = 1;
		else if (strcmp(cli->output, "pretty") != 0) {
			snprintf(err, sizeof(err), "invalid value \"%s\" for "
			    "flag -output: use pretty or json", cli->output);
			r = WICK_ERR_INVALID;
		}
	}
	if (r == 0 && cli->timeout_ms < 0) {
		snprintf(err, sizeof(err), "-timeout must not be negative");
		r = WICK_ERR_INVALID;
	}
	if (r != 0) {
		fprintf(cli->err, "%s\n", err);
		cli_flags_usage(cli->err, synopsis, fl, nfl);
		*rc = 1;
		return -1;
	}
	return 0;
}

static int
check_spiffe_id(struct cli *cli, const char *id)
{
	struct spiffeid	 sid;
	const char	*why;

	if (id == NULL)
		return 0;
	if (spiffeid_parse(id, 0, &sid, &why) != 0) {
		fprintf(cli->err, "invalid value \"%s\" for flag -spiffeID: "
		    "%s\n", id, why);
		return -1;
	}
	return 0;
}

/* ---- api fetch x509 ------------------------------------------------------ */

/* Wipe the private keys held by an unpacked response. */
static void
wipe_x509_keys(X509SVIDResponse *resp)
{
	size_t i;

	for (i = 0; i < resp->n_svids; i++)
		if (resp->svids[i]->x509_svid_key.data != NULL)
			OPENSSL_cleanse(resp->svids[i]->x509_svid_key.data,
			    resp->svids[i]->x509_svid_key.len);
}

/* Decode and check one FetchX509SVID message. */
static int
decode_x509(struct cli *cli, const uint8_t *p, size_t n, struct cli_x509 **x)
{
	X509SVIDResponse	*resp;
	char			 err[CLI_MAX_ERR];
	int			 r;

	*x = NULL;
	if ((resp = x509_svidresponse__unpack(NULL, n, p)) == NULL) {
		fprintf(cli->err, "malformed X509SVIDResponse from the "
		    "agent\n");
		return -1;
	}
	r = cli_x509_parse(resp, (int64_t)time(NULL), x, err, sizeof(err));
	wipe_x509_keys(resp);
	x509_svidresponse__free_unpacked(resp, NULL);
	if (r != 0) {
		fprintf(cli->err, "%s\n", err);
		return -1;
	}
	return 0;
}

static int
cmd_fetch_x509(struct cli *cli, int argc, char **argv)
{
	const struct cli_flag fl[] = {
		FLAG_SOCKET(cli),
		FLAG_TIMEOUT(cli),
		{ "write", CLI_FLAG_STRING, &cli->write_dir, "DIR",
		    "Write the SVIDs, keys and bundles into DIR" },
		{ "silent", CLI_FLAG_BOOL, &cli->silent, NULL,
		    "Suppress stdout" },
		FLAG_OUTPUT(cli),
	};
	X509SVIDRequest	 req = X509_SVIDREQUEST__INIT;
	struct call	 call;
	struct cli_x509	*x = NULL;
	json_t		*j = NULL;
	char		 err[CLI_MAX_ERR];
	uint64_t	 t0, elapsed;
	int		 rc = 1;

	if (parse_flags(cli, "wick-agent api fetch x509 [flags]", fl,
	    sizeof(fl) / sizeof(fl[0]), argc, argv, &rc) != 0)
		return rc;
	call_init(&call, cli, CALL_FIRST);
	if (cli_connect(cli) != 0)
		goto out;
	t0 = uv_hrtime();
	if (call_run(&call, CLI_PATH_X509, &req.base) != 0) {
		print_rpc_error(cli, "", &call);
		goto out;
	}
	elapsed = uv_hrtime() - t0;
	if (decode_x509(cli, buf_ptr(&call.resp), buf_len(&call.resp),
	    &x) != 0)
		goto out;
	if (cli->json) {
		if (cli_x509_json(x, &j) != 0) {
			fprintf(cli->err, "out of memory\n");
			goto out;
		}
		if (!cli->silent && print_json(cli, j) != 0)
			goto out;
	} else if (!cli->silent && cli_x509_print(cli->out, x, elapsed) != 0) {
		fprintf(cli->err, "cannot format a certificate's dates\n");
		goto out;
	}
	if (cli->write_dir != NULL && cli_x509_write(x, cli->write_dir,
	    cli->json ? cli->err : cli->out, err, sizeof(err)) != 0) {
		fprintf(cli->err, "%s\n", err);
		goto out;
	}
	rc = 0;
out:
	json_decref(j);
	cli_x509_free(x);
	call_cleanup(&call);
	cli_disconnect(cli);
	return rc;
}

/* ---- api fetch jwt ------------------------------------------------------- */

static int
fetch_jwt_bundles(struct cli *cli, struct cli_tokens *ts)
{
	JWTBundlesRequest	 req = JWTBUNDLES_REQUEST__INIT;
	JWTBundlesResponse	*resp = NULL;
	struct call		 call;
	char			 err[CLI_MAX_ERR];
	size_t			 i;
	int			 r = -1;

	call_init(&call, cli, CALL_FIRST);
	if (call_run(&call, CLI_PATH_JWT_BUNDLES, &req.base) != 0) {
		print_rpc_error(cli, "failed to receive JWT bundles: ", &call);
		goto out;
	}
	if ((resp = jwtbundles_response__unpack(NULL, buf_len(&call.resp),
	    buf_ptr(&call.resp))) == NULL) {
		fprintf(cli->err, "malformed JWTBundlesResponse from the "
		    "agent\n");
		goto out;
	}
	for (i = 0; i < resp->n_bundles; i++)
		if (cli_tokens_add_bundle(ts, resp->bundles[i]->key,
		    resp->bundles[i]->value.data, resp->bundles[i]->value.len,
		    err, sizeof(err)) != 0) {
			fprintf(cli->err, "%s\n", err);
			goto out;
		}
	if (cli_tokens_finish(ts, err, sizeof(err)) != 0) {
		fprintf(cli->err, "%s\n", err);
		goto out;
	}
	r = 0;
out:
	if (resp != NULL)
		jwtbundles_response__free_unpacked(resp, NULL);
	call_cleanup(&call);
	return r;
}

static int
cmd_fetch_jwt(struct cli *cli, int argc, char **argv)
{
	const struct cli_flag fl[] = {
		FLAG_SOCKET(cli),
		FLAG_TIMEOUT(cli),
		{ "audience", CLI_FLAG_LIST, &cli->audiences, "A[,B...]",
		    "Comma separated list of audience values (required)" },
		{ "spiffeID", CLI_FLAG_STRING, &cli->spiffe_id, "ID",
		    "SPIFFE ID subject (optional)" },
		FLAG_OUTPUT(cli),
	};
	JWTSVIDRequest	 req = JWTSVIDREQUEST__INIT;
	JWTSVIDResponse	*resp = NULL;
	struct cli_tokens ts;
	struct call	 call;
	json_t		*j = NULL;
	char		 err[CLI_MAX_ERR];
	size_t		 i;
	int		 rc = 1;

	cli_tokens_init(&ts);
	if (parse_flags(cli, "wick-agent api fetch jwt -audience A[,B...] "
	    "[flags]", fl, sizeof(fl) / sizeof(fl[0]), argc, argv, &rc) != 0)
		return rc;
	call_init(&call, cli, CALL_UNARY);
	if (cli->audiences.n == 0) {
		fprintf(cli->err, "audience must be specified\n");
		goto out;
	}
	if (check_spiffe_id(cli, cli->spiffe_id) != 0 || cli_connect(cli) != 0)
		goto out;
	req.n_audience = cli->audiences.n;
	req.audience = cli->audiences.v;
	if (cli->spiffe_id != NULL)
		req.spiffe_id = (char *)cli->spiffe_id;
	if (call_run(&call, CLI_PATH_JWT, &req.base) != 0) {
		print_rpc_error(cli, "", &call);
		goto out;
	}
	if ((resp = jwtsvidresponse__unpack(NULL, buf_len(&call.resp),
	    buf_ptr(&call.resp))) == NULL) {
		fprintf(cli->err, "malformed JWTSVIDResponse from the agent\n");
		goto out;
	}
	if (resp->n_svids == 0) {
		fprintf(cli->err, "the agent returned no JWT-SVID\n");
		goto out;
	}
	for (i = 0; i < resp->n_svids; i++)
		if (cli_tokens_add(&ts, resp->svids[i]->spiffe_id,
		    resp->svids[i]->hint, resp->svids[i]->svid, NULL, err,
		    sizeof(err)) != 0) {
			fprintf(cli->err, "%s\n", err);
			goto out;
		}
	if (fetch_jwt_bundles(cli, &ts) != 0)
		goto out;
	if (cli->json) {
		if (cli_tokens_json(&ts, 0, &j) != 0 || print_json(cli, j) != 0)
			goto out;
	} else if (cli_tokens_print(cli->out, &ts, 0) != 0)
		goto out;
	rc = 0;
out:
	json_decref(j);
	if (resp != NULL)
		jwtsvidresponse__free_unpacked(resp, NULL);
	call_cleanup(&call);
	cli_tokens_cleanup(&ts);
	cli_list_clear(&cli->audiences);
	cli_disconnect(cli);
	return rc;
}

/* ---- api fetch wit ------------------------------------------------------- */

static int
fetch_wit_bundles(struct cli *cli, struct cli_tokens *ts)
{
	WITBundlesRequest	 req = WITBUNDLES_REQUEST__INIT;
	WITBundlesResponse	*resp = NULL;
	struct call		 call;
	char			 err[CLI_MAX_ERR];
	size_t			 i;
	int			 r = -1;

	call_init(&call, cli, CALL_FIRST);
	if (call_run(&call, CLI_PATH_WIT_BUNDLES, &req.base) != 0) {
		if (call.status == RPC_UNIMPLEMENTED)
			fprintf(cli->err, "%s\n", CLI_NO_WIT);
		else
			print_rpc_error(cli, "failed to receive WIT bundles: ",
			    &call);
		goto out;
	}
	if ((resp = witbundles_response__unpack(NULL, buf_len(&call.resp),
	    buf_ptr(&call.resp))) == NULL) {
		fprintf(cli->err, "malformed WITBundlesResponse from the "
		    "agent\n");
		goto out;
	}
	for (i = 0; i < resp->n_bundles; i++)
		if (cli_tokens_add_bundle(ts, resp->bundles[i]->key,
		    (const uint8_t *)resp->bundles[i]->value,
		    strlen(resp->bundles[i]->value), err, sizeof(err)) != 0) {
			fprintf(cli->err, "%s\n", err);
			goto out;
		}
	if (cli_tokens_finish(ts, err, sizeof(err)) != 0) {
		fprintf(cli->err, "%s\n", err);
		goto out;
	}
	r = 0;
out:
	if (resp != NULL)
		witbundles_response__free_unpacked(resp, NULL);
	call_cleanup(&call);
	return r;
}

static void
wit_response_free(WITSVIDResponse *resp)
{
	size_t i;

	if (resp == NULL)
		return;
	for (i = 0; i < resp->n_svids; i++)
		if (resp->svids[i]->wit_svid_key != NULL)
			OPENSSL_cleanse(resp->svids[i]->wit_svid_key,
			    strlen(resp->svids[i]->wit_svid_key));
	witsvidresponse__free_unpacked(resp, NULL);
}

static int
cmd_fetch_wit(struct cli *cli, int argc, char **argv)
{
	const struct cli_flag fl[] = {
		FLAG_SOCKET(cli),
		FLAG_TIMEOUT(cli),
		{ "spiffeID", CLI_FLAG_STRING, &cli->spiffe_id, "ID",
		    "SPIFFE ID subject (optional)" },
		{ "write", CLI_FLAG_STRING, &cli->write_dir, "DIR",
		    "Write the WIT-SVIDs and their private keys into DIR" },
		FLAG_OUTPUT(cli),
	};
	WITSVIDRequest	 req = WITSVIDREQUEST__INIT;
	WITSVIDResponse	*resp = NULL;
	struct cli_tokens ts;
	struct call	 call;
	json_t		*j = NULL;
	char		 err[CLI_MAX_ERR];
	size_t		 i;
	int		 rc = 1;

	cli_tokens_init(&ts);
	if (parse_flags(cli, "wick-agent api fetch wit [flags]", fl,
	    sizeof(fl) / sizeof(fl[0]), argc, argv, &rc) != 0)
		return rc;
	call_init(&call, cli, CALL_FIRST);
	if (check_spiffe_id(cli, cli->spiffe_id) != 0 || cli_connect(cli) != 0)
		goto out;
	if (cli->spiffe_id != NULL)
		req.spiffe_id = (char *)cli->spiffe_id;
	if (call_run(&call, CLI_PATH_WIT, &req.base) != 0) {
		if (call.status == RPC_UNIMPLEMENTED)
			fprintf(cli->err, "%s\n", CLI_NO_WIT);
		else
			print_rpc_error(cli, "", &call);
		goto out;
	}
	if ((resp = witsvidresponse__unpack(NULL, buf_len(&call.resp),
	    buf_ptr(&call.resp))) == NULL) {
		fprintf(cli->err, "malformed WITSVIDResponse from the agent\n");
		goto out;
	}
	if (resp->n_svids == 0) {
		fprintf(cli->err, "the agent returned no WIT-SVID\n");
		goto out;
	}
	for (i = 0; i < resp->n_svids; i++)
		if (cli_tokens_add(&ts, resp->svids[i]->spiffe_id,
		    resp->svids[i]->hint, resp->svids[i]->wit_svid,
		    resp->svids[i]->wit_svid_key, err, sizeof(err)) != 0) {
			fprintf(cli->err, "%s\n", err);
			goto out;
		}
	if (fetch_wit_bundles(cli, &ts) != 0)
		goto out;
	if (cli->json) {
		if (cli_tokens_json(&ts, 1, &j) != 0 || print_json(cli, j) != 0)
			goto out;
	} else if (cli_tokens_print(cli->out, &ts, 1) != 0)
		goto out;
	if (cli->write_dir != NULL && cli_tokens_write(&ts, cli->write_dir,
	    cli->json ? cli->err : cli->out, err, sizeof(err)) != 0) {
		fprintf(cli->err, "%s\n", err);
		goto out;
	}
	rc = 0;
out:
	json_decref(j);
	wit_response_free(resp);
	call_cleanup(&call);
	cli_tokens_cleanup(&ts);
	cli_disconnect(cli);
	return rc;
}

/* ---- api validate jwt ---------------------------------------------------- */

static int
cmd_validate_jwt(struct cli *cli, int argc, char **argv)
{
	const struct cli_flag fl[] = {
		FLAG_SOCKET(cli),
		FLAG_TIMEOUT(cli),
		{ "audience", CLI_FLAG_STRING, &cli->audience, "A",
		    "Expected audience value (required)" },
		{ "svid", CLI_FLAG_STRING, &cli->svid, "TOKEN",
		    "JWT-SVID to validate (required)" },
		FLAG_OUTPUT(cli),
	};
	ValidateJWTSVIDRequest	 req = VALIDATE_JWTSVIDREQUEST__INIT;
	ValidateJWTSVIDResponse	*resp = NULL;
	struct spiffeid		 sid;
	struct call		 call;
	json_t			*claims = NULL, *j = NULL;
	const char		*why;
	char			*s = NULL, safe[128];
	int			 rc = 1;

	if (parse_flags(cli, "wick-agent api validate jwt -audience A "
	    "-svid TOKEN [flags]", fl, sizeof(fl) / sizeof(fl[0]), argc, argv,
	    &rc) != 0)
		return rc;
	call_init(&call, cli, CALL_UNARY);
	if (cli->audience == NULL || cli->audience[0] == '\0') {
		fprintf(cli->err, "audience must be specified\n");
		goto out;
	}
	if (cli->svid == NULL || cli->svid[0] == '\0') {
		fprintf(cli->err, "svid must be specified\n");
		goto out;
	}
	if (cli_connect(cli) != 0)
		goto out;
	req.audience = (char *)cli->audience;
	req.svid = (char *)cli->svid;
	if (call_run(&call, CLI_PATH_VALIDATE, &req.base) != 0) {
		if (call.status == RPC_INVALID_ARGUMENT) {
			fprintf(cli->err, "SVID is not valid: ");
			cli_put_safe(cli->err, call.msg);
			fputc('\n', cli->err);
		} else
			print_rpc_error(cli, "unable to validate JWT SVID: ",
			    &call);
		goto out;
	}
	if (cli_claims_depth_check(buf_ptr(&call.resp), buf_len(&call.resp),
	    CLI_MAX_PB_DEPTH) != 0 || (resp = validate_jwtsvidresponse__unpack(
	    NULL, buf_len(&call.resp), buf_ptr(&call.resp))) == NULL) {
		fprintf(cli->err, "malformed ValidateJWTSVIDResponse from the "
		    "agent\n");
		goto out;
	}
	if (spiffeid_parse(resp->spiffe_id, 0, &sid, &why) != 0) {
		cli_safe_copy(resp->spiffe_id, safe, sizeof(safe));
		fprintf(cli->err, "the agent returned an invalid SPIFFE ID "
		    "\"%s\": %s\n", safe, why);
		goto out;
	}
	if (cli_struct_to_json(resp->claims, &claims, &why) != 0) {
		fprintf(cli->err, "cannot convert the claims: %s\n", why);
		goto out;
	}
	if (cli->json) {
		if ((j = json_pack("{s:s, s:O}", "spiffe_id", resp->spiffe_id,
		    "claims", claims)) == NULL || print_json(cli, j) != 0)
			goto out;
	} else {
		if ((s = json_dumps(claims, JSON_COMPACT | JSON_SORT_KEYS)) ==
		    NULL)
			goto out;
		fprintf(cli->out, "SVID is valid.\n");
		fprintf(cli->out, "SPIFFE ID : %s\n", resp->spiffe_id);
		fprintf(cli->out, "Claims    : %s\n", s);
	}
	rc = 0;
out:
	free(s);
	json_decref(j);
	json_decref(claims);
	if (resp != NULL)
		validate_jwtsvidresponse__free_unpacked(resp, NULL);
	call_cleanup(&call);
	cli_disconnect(cli);
	return rc;
}

/* ---- api watch ----------------------------------------------------------- */

static void
watch_update(struct call *call, const uint8_t *p, size_t n)
{
	struct cli	*cli = call->cli;
	struct cli_x509	*x = NULL;
	uint64_t	 now = uv_hrtime();

	(void)uv_timer_stop(&call->timer);
	/* A bad update is reported; the watch goes on, as go-spiffe's. */
	if (decode_x509(cli, p, n, &x) == 0 &&
	    cli_x509_print(cli->out, x, now - call->last) != 0)
		fprintf(cli->err, "cannot format a certificate's dates\n");
	call->last = now;
	cli_x509_free(x);
	fflush(cli->out);
	fflush(cli->err);
}

static void
watch_timer_cb(uv_timer_t *t)
{
	struct call *call = t->data;

	if (call->c != NULL && call->nmsgs == 0) {
		call->deadline = 1;
		rpc_ccall_cancel(call->c);
	}
}

static void
watch_signal_cb(uv_signal_t *s, int signum)
{
	struct call *call = s->data;

	call->interrupted = 1;
	if (call->c != NULL)
		rpc_ccall_cancel(call->c);
}

static int
cmd_watch(struct cli *cli, int argc, char **argv)
{
	const struct cli_flag fl[] = {
		FLAG_SOCKET(cli),
		{ "timeout", CLI_FLAG_DURATION, &cli->timeout_ms, "DURATION",
		    "Time to wait for the first update (default 5s; 0: "
		    "forever)" },
	};
	X509SVIDRequest	 req = X509_SVIDREQUEST__INIT;
	struct call	 call;
	char		 d[48];
	int		 rc = 1, handles = 0;

	if (parse_flags(cli, "wick-agent api watch [flags]", fl,
	    sizeof(fl) / sizeof(fl[0]), argc, argv, &rc) != 0)
		return rc;
	call_init(&call, cli, CALL_WATCH);
	if (cli_connect(cli) != 0)
		goto out;
	uv_timer_init(&cli->loop, &call.timer);
	uv_signal_init(&cli->loop, &call.sigint);
	uv_signal_init(&cli->loop, &call.sigterm);
	call.timer.data = call.sigint.data = call.sigterm.data = &call;
	handles = 1;
	if (uv_signal_start(&call.sigint, watch_signal_cb, SIGINT) != 0 ||
	    uv_signal_start(&call.sigterm, watch_signal_cb, SIGTERM) != 0) {
		fprintf(cli->err, "cannot handle signals\n");
		goto out;
	}
	call.last = uv_hrtime();
	/* The deadline is ours, for the first message only. */
	if (call_start(&call, CLI_PATH_X509, &req.base, -1) == 0) {
		if (cli->timeout_ms > 0)
			(void)uv_timer_start(&call.timer, watch_timer_cb,
			    (uint64_t)cli->timeout_ms, 0);
		call_wait(&call);
	}
	if (call.interrupted)
		rc = 0;
	else if (call.deadline) {
		cli_go_duration((uint64_t)cli->timeout_ms * 1000000, d,
		    sizeof(d));
		fprintf(cli->err, "rpc error: code = DeadlineExceeded desc = "
		    "no update from the agent within %s\n", d);
	} else if (call.status == RPC_OK)
		fprintf(cli->err, "the agent ended the stream\n");
	else
		print_rpc_error(cli, "", &call);
out:
	if (handles) {
		uv_close((uv_handle_t *)&call.timer, NULL);
		uv_close((uv_handle_t *)&call.sigint, NULL);
		uv_close((uv_handle_t *)&call.sigterm, NULL);
	}
	call_cleanup(&call);
	cli_disconnect(cli);
	return rc;
}

/* ---- healthcheck --------------------------------------------------------- */

/* grpc.health.v1 ServingStatus names, by value. */
static const char *
serving_name(int st)
{
	static const char *const names[] = {
		"UNKNOWN", "SERVING", "NOT_SERVING", "SERVICE_UNKNOWN",
	};

	if (st < 0 || st >= (int)(sizeof(names) / sizeof(names[0])))
		return "INVALID";
	return names[st];
}

static int
cmd_healthcheck(struct cli *cli, int argc, char **argv)
{
	const struct cli_flag fl[] = {
		FLAG_SOCKET(cli),
		FLAG_TIMEOUT(cli),
		{ "shallow", CLI_FLAG_BOOL, &cli->shallow, NULL,
		    "Perform a less stringent health check" },
		{ "verbose", CLI_FLAG_BOOL, &cli->verbose, NULL,
		    "Print verbose information" },
	};
	Grpc__Health__V1__HealthCheckRequest	 req =
	    GRPC__HEALTH__V1__HEALTH_CHECK_REQUEST__INIT;
	Grpc__Health__V1__HealthCheckResponse	*resp = NULL;
	struct call				 call;
	int					 rc = 1;

	if (parse_flags(cli, "wick-agent healthcheck [flags]", fl,
	    sizeof(fl) / sizeof(fl[0]), argc, argv, &rc) != 0)
		return rc;
	call_init(&call, cli, CALL_UNARY);
	if (cli->verbose)
		fprintf(cli->out, "Checking agent health...\n");
	if (cli_connect(cli) != 0) {
		fprintf(cli->err, "Agent is unhealthy: unable to determine "
		    "health\n");
		goto out;
	}
	if (call_run(&call, CLI_PATH_HEALTH, &req.base) != 0) {
		print_rpc_error(cli, cli->verbose ? "Failed to check health: " :
		    "Agent is unhealthy: unable to determine health: ", &call);
		if (cli->verbose)
			fprintf(cli->err, "Agent is unhealthy: unable to "
			    "determine health\n");
		goto out;
	}
	if ((resp = grpc__health__v1__health_check_response__unpack(NULL,
	    buf_len(&call.resp), buf_ptr(&call.resp))) == NULL) {
		fprintf(cli->err, "Agent is unhealthy: malformed "
		    "HealthCheckResponse\n");
		goto out;
	}
	if (resp->status !=
	    GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING) {
		fprintf(cli->err, "Agent is unhealthy: agent returned status "
		    "\"%s\"\n", serving_name(resp->status));
		goto out;
	}
	fprintf(cli->out, "Agent is healthy.\n");
	rc = 0;
out:
	if (resp != NULL)
		grpc__health__v1__health_check_response__free_unpacked(resp,
		    NULL);
	call_cleanup(&call);
	cli_disconnect(cli);
	return rc;
}

/* ---- tpm pubhash --------------------------------------------------------- */

/*
 * SPIRE's get_tpm_pubhash: the EK's pub hash, as the server's hash_path
 * allow-list names it and the agent ID ends.
 */
static int
cmd_tpm_pubhash(struct cli *cli, int argc, char **argv)
{
	const char		*tcti = NA_TPM_DEFAULT_TCTI;
	const struct cli_flag	 fl[] = {
		{ "tcti", CLI_FLAG_STRING, &tcti, "TCTI",
		    "TPM connection, tpm2-tss TCTI syntax (default "
		    NA_TPM_DEFAULT_TCTI ")" },
	};
	struct na_tpm		*t = NULL;
	struct buf		 ek_cert, ek_pub;
	char			 why[NA_TPM_MAX_WHY];
	char			 hash[NA_TPM_PUB_HASH_LEN + 1];
	int			 r, rc = 1;

	buf_init(&ek_cert, NA_TPM_MAX_EK_CERT);
	buf_init(&ek_pub, NA_TPM_MAX_PUBLIC);
	if (parse_flags(cli, "wick-agent tpm pubhash [flags]", fl,
	    sizeof(fl) / sizeof(fl[0]), argc, argv, &rc) != 0)
		goto out;
	rc = 1;
	why[0] = '\0';
	if ((r = na_tpm_open(tcti, &t, why, sizeof(why))) != 0 ||
	    (r = na_tpm_endorsement(t, &ek_cert, &ek_pub, why,
	    sizeof(why))) != 0) {
		fprintf(cli->err, "cannot read the EK from the TPM at %s: %s\n",
		    tcti, why[0] != '\0' ? why : wick_strerror(r));
		goto out;
	}
	if ((r = na_tpm_pub_hash(buf_ptr(&ek_pub), buf_len(&ek_pub),
	    hash)) != 0) {
		fprintf(cli->err, "cannot hash the EK: %s\n",
		    wick_strerror(r));
		goto out;
	}
	fprintf(cli->out, "%s\n", hash);
	rc = 0;
out:
	na_tpm_close(t);
	buf_cleanup(&ek_cert);
	buf_cleanup(&ek_pub);
	return rc;
}

static void
tpm_usage(FILE *f)
{
	fprintf(f,
"Usage: wick-agent tpm <command> [flags]\n"
"\n"
"Commands:\n"
"  pubhash        print the TPM's EK hash (for the server's hash_path)\n"
"\n"
"'-h' after a command lists its flags.\n");
}

static int	is_help(const char *);

static int
cmd_tpm(struct cli *cli, int argc, char **argv)
{
	if (argc < 2) {
		tpm_usage(cli->err);
		return 1;
	}
	if (is_help(argv[1])) {
		tpm_usage(cli->out);
		return 0;
	}
	if (strcmp(argv[1], "pubhash") == 0)
		return cmd_tpm_pubhash(cli, argc - 2, argv + 2);
	fprintf(cli->err, "unknown command \"tpm %s\"\n", argv[1]);
	tpm_usage(cli->err);
	return 1;
}

/* ---- dispatch ------------------------------------------------------------ */

static void
api_usage(FILE *f)
{
	fprintf(f,
"Usage: wick-agent api <command> [flags]\n"
"\n"
"Commands:\n"
"  fetch [x509]   fetch X.509-SVIDs (-write DIR, -silent, -output json)\n"
"  fetch jwt      fetch JWT-SVIDs and JWT bundles (-audience, -spiffeID)\n"
"  fetch wit      fetch WIT-SVIDs and WIT bundles (-spiffeID, -write DIR)\n"
"  validate jwt   validate a JWT-SVID (-audience, -svid)\n"
"  watch          print X.509-SVID updates as they arrive\n"
"  wpt sign       print WIT and WPT headers for a request (-method, -url)\n"
"  wpt verify     verify a WIT and WPT pair (-wit, -wpt, -bundle, -audience)\n"
"\n"
"Every command takes -socketPath PATH and -timeout DURATION; "
"'-h' after a\ncommand lists its flags.\n");
}

static int
is_help(const char *a)
{
	return strcmp(a, "-h") == 0 || strcmp(a, "-help") == 0 ||
	    strcmp(a, "--help") == 0 || strcmp(a, "--h") == 0 ||
	    strcmp(a, "help") == 0;
}

static int
cmd_api(struct cli *cli, int argc, char **argv)
{
	const char *c, *sub;

	if (argc < 2) {
		api_usage(cli->err);
		return 1;
	}
	c = argv[1];
	sub = argc >= 3 ? argv[2] : NULL;
	if (is_help(c)) {
		api_usage(cli->out);
		return 0;
	}
	if (strcmp(c, "fetch") == 0) {
		if (sub == NULL || sub[0] == '-')
			return cmd_fetch_x509(cli, argc - 2, argv + 2);
		if (strcmp(sub, "x509") == 0)
			return cmd_fetch_x509(cli, argc - 3, argv + 3);
		if (strcmp(sub, "jwt") == 0)
			return cmd_fetch_jwt(cli, argc - 3, argv + 3);
		if (strcmp(sub, "wit") == 0)
			return cmd_fetch_wit(cli, argc - 3, argv + 3);
	} else if (strcmp(c, "validate") == 0) {
		if (sub != NULL && strcmp(sub, "jwt") == 0)
			return cmd_validate_jwt(cli, argc - 3, argv + 3);
	} else if (strcmp(c, "watch") == 0)
		return cmd_watch(cli, argc - 2, argv + 2);
	else if (strcmp(c, "wpt") == 0)
		return cli_wpt_run(cli->out, cli->err, argc - 2, argv + 2);
	fprintf(cli->err, "unknown command \"api %s%s%s\"\n", c,
	    sub != NULL ? " " : "", sub != NULL ? sub : "");
	api_usage(cli->err);
	return 1;
}

int
agent_cli_run(int argc, char **argv, FILE *out, FILE *errf)
{
	struct cli	cli;
	int		rc;

	if (argc < 1)
		return 1;
	memset(&cli, 0, sizeof(cli));
	cli.out = out;
	cli.err = errf;
	cli.timeout_ms = CLI_DEFAULT_TIMEOUT_MS;
	if (strcmp(argv[0], "healthcheck") == 0)
		rc = cmd_healthcheck(&cli, argc - 1, argv + 1);
	else if (strcmp(argv[0], "api") == 0)
		rc = cmd_api(&cli, argc, argv);
	else if (strcmp(argv[0], "tpm") == 0)
		rc = cmd_tpm(&cli, argc, argv);
	else {
		fprintf(errf, "unknown command \"%s\"\n", argv[0]);
		rc = 1;
	}
	cli_list_clear(&cli.audiences);
	fflush(out);
	fflush(errf);
	return rc;
}

int
agent_cli_main(int argc, char **argv)
{
	log_init("agent", LOG_LEVEL_ERROR, LOG_FORMAT_TEXT);
	/* A write to a socket the agent closed must not kill us. */
	signal(SIGPIPE, SIG_IGN);
	return agent_cli_run(argc, argv, stdout, stderr);
}

int
agent_cli_is_verb(const char *v)
{
	return v != NULL && (strcmp(v, "api") == 0 ||
	    strcmp(v, "healthcheck") == 0 || strcmp(v, "tpm") == 0);
}
