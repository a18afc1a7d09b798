/*
 * echocli.c: wick-testcli, our gRPC client driving the Echo service
 * (tests/interop/echo.proto), for the interop tests and benchmarks.
 *
 * wick-testcli TARGET [-c CERT -k KEY -a CA_PEM] [-T TIMEOUT_MS]
 *     [-m MAX_RECV] CMD [options]
 *   unary [-M MESSAGE] [-P PAYLOAD_BYTES] [-S STATUS] [-E STATUS_MESSAGE]
 *         [-D SLEEP_MS] [-R REPLY_SIZE] [-H key=value]...
 *   stream -n COUNT [-i INTERVAL_MS] [-P PAYLOAD_SIZE] [-S STATUS]
 *         [-E MSG] [-x CANCEL_AFTER_N]
 *   bidi -n COUNT [-P PAYLOAD_BYTES]
 *   concurrent -n N
 *   stats
 *   bench -n N [-C CONCURRENCY]     (unary calls; prints rate and latency)
 * Prints one JSON object; exit 0 when the call(s) completed with any
 * status, 1 on a transport failure, 2 on a usage error.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>
#include <uv.h>

#include "echo.pb-c.h"
#include "log.h"
#include "rpc_client.h"

#define CLI_MAX_HDRS	16

struct cli {
	struct rpc_channel	*ch;
	struct tls_ctx		*tls;
	int64_t			 timeout_ms;
	/* result of a single call */
	int			 status;
	char			*status_msg;
	unsigned		 messages;
	json_t			*last;
	json_t			*headers;
	json_t			*trailers;
	/* streaming control */
	unsigned		 cancel_after;
	unsigned		 bidi_left;
	size_t			 payload;
	/* concurrent / bench */
	unsigned		 outstanding;
	unsigned		 to_start;
	unsigned		 done;
	json_t			*statuses;
	uint64_t		*lat;
	uint64_t		*started;
	const char		*cmd;
};

static struct cli cli;
static struct rpc_md hdrs[CLI_MAX_HDRS];
static size_t nhdrs;

static void
usage(void)
{
	fprintf(stderr, "usage: wick-testcli TARGET [-c CERT -k KEY -a CA] "
	    "[-T TIMEOUT_MS] [-m MAX_RECV]\n"
	    "         unary|stream|bidi|concurrent|stats|bench [options]\n");
	exit(2);
}

static json_t *
md_json(struct rpc_ccall *c, int trailers)
{
	json_t			*o = json_object();
	const struct rpc_md	*m;
	size_t			 i;

	for (i = 0; i < rpc_ccall_header_count(c, trailers); i++) {
		m = rpc_ccall_header(c, trailers, i);
		json_object_set_new(o, m->name,
		    json_stringn((const char *)m->value, m->len));
	}
	return o;
}

static void
reply_json(const uint8_t *p, size_t n)
{
	Wick__Test__EchoReply	*r;
	json_t			*md;
	size_t			 i;

	if ((r = wick__test__echo_reply__unpack(NULL, n, p)) == NULL)
		return;
	md = json_object();
	for (i = 0; i < r->n_metadata; i++)
		json_object_set_new(md, r->metadata[i]->key,
		    json_string(r->metadata[i]->value));
	json_decref(cli.last);
	cli.last = json_pack("{s:s, s:I, s:I, s:o, s:I, s:s}",
	    "message", r->message, "payload_len", (json_int_t)r->payload.len,
	    "seq", (json_int_t)r->seq, "metadata", md,
	    "deadline_ms", (json_int_t)r->deadline_ms, "peer", r->peer);
	wick__test__echo_reply__free_unpacked(r, NULL);
}

static int
send_echo(struct rpc_ccall *c, const Wick__Test__EchoRequest *req)
{
	size_t	 n = wick__test__echo_request__get_packed_size(req);
	uint8_t	*p;
	int	 r;

	if ((p = malloc(n + 1)) == NULL)
		return WICK_ERR_ALLOC;
	wick__test__echo_request__pack(req, p);
	r = rpc_ccall_send(c, p, n);
	free(p);
	return r;
}

/* ---- single calls ------------------------------------------------------- */

static void
one_headers(struct rpc_ccall *c, void *arg)
{
	json_decref(cli.headers);
	cli.headers = md_json(c, 0);
}

static void
one_message(struct rpc_ccall *c, const uint8_t *p, size_t n, void *arg)
{
	Wick__Test__EchoRequest req = WICK__TEST__ECHO_REQUEST__INIT;
	uint8_t *buf;

	cli.messages++;
	if (strcmp(cli.cmd, "stats") == 0) {
		Wick__Test__StatsReply *s;

		if ((s = wick__test__stats_reply__unpack(NULL, n, p)) != NULL) {
			json_decref(cli.last);
			cli.last = json_pack("{s:I,s:I,s:I,s:I,s:I,s:I,s:I}",
			    "calls_started", (json_int_t)s->calls_started,
			    "calls_completed", (json_int_t)s->calls_completed,
			    "calls_cancelled", (json_int_t)s->calls_cancelled,
			    "deadlines_exceeded",
			    (json_int_t)s->deadlines_exceeded,
			    "calls_active", (json_int_t)s->calls_active,
			    "connections_active",
			    (json_int_t)s->connections_active,
			    "connections_total",
			    (json_int_t)s->connections_total);
			wick__test__stats_reply__free_unpacked(s, NULL);
		}
		return;
	}
	reply_json(p, n);
	if (cli.cancel_after > 0 && cli.messages == cli.cancel_after) {
		rpc_ccall_cancel(c);
		return;
	}
	if (cli.bidi_left > 0) {
		cli.bidi_left--;
		if (cli.bidi_left == 0) {
			if (rpc_ccall_half_close(c) != 0)
				rpc_ccall_cancel(c);
			return;
		}
		if ((buf = calloc(1, cli.payload + 1)) == NULL)
			return;
		req.message = "bidi";
		req.payload.data = buf;
		req.payload.len = cli.payload;
		if (send_echo(c, &req) != 0)
			rpc_ccall_cancel(c);
		free(buf);
	}
}

static void
one_status(struct rpc_ccall *c, int st, const char *msg, void *arg)
{
	cli.status = st;
	cli.status_msg = strdup(msg);
	cli.trailers = md_json(c, 1);
	rpc_channel_close(cli.ch, NULL, NULL);
}

static const struct rpc_client_cbs one_cbs = {
	one_headers, one_message, one_status,
};

/* ---- many unary calls --------------------------------------------------- */

static void many_start(void);

static void
many_status(struct rpc_ccall *c, int st, const char *msg, void *arg)
{
	char		 key[16];
	json_t		*v;
	uintptr_t	 idx = (uintptr_t)arg;

	if (cli.lat != NULL)
		cli.lat[idx] = uv_hrtime() - cli.started[idx];
	snprintf(key, sizeof(key), "%d", st);
	v = json_object_get(cli.statuses, key);
	json_object_set_new(cli.statuses, key,
	    json_integer(v != NULL ? json_integer_value(v) + 1 : 1));
	cli.done++;
	cli.outstanding--;
	if (cli.to_start > 0)
		many_start();
	else if (cli.outstanding == 0)
		rpc_channel_close(cli.ch, NULL, NULL);
}

static const struct rpc_client_cbs many_cbs = { NULL, NULL, many_status };

static unsigned total_calls;

static void
many_start(void)
{
	Wick__Test__EchoRequest	 req = WICK__TEST__ECHO_REQUEST__INIT;
	struct rpc_ccall	*c;
	uint8_t			 pay[64];
	uintptr_t		 idx = total_calls - cli.to_start;

	memset(pay, 'p', sizeof(pay));
	req.message = "bench";
	req.payload.data = pay;
	req.payload.len = sizeof(pay);
	cli.to_start--;
	cli.outstanding++;
	if (cli.started != NULL)
		cli.started[idx] = uv_hrtime();
	if (rpc_ccall_start(cli.ch, "/wick.test.Echo/Unary", hdrs, nhdrs,
	    cli.timeout_ms, &many_cbs, (void *)idx, &c) != 0 ||
	    send_echo(c, &req) != 0 || rpc_ccall_half_close(c) != 0)
		fatal("cannot start a call");
}

static int
cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

int
main(int argc, char **argv)
{
	Wick__Test__EchoRequest		 req = WICK__TEST__ECHO_REQUEST__INIT;
	Wick__Test__StreamRequest	 sreq = WICK__TEST__STREAM_REQUEST__INIT;
	Wick__Test__StatsRequest	 streq = WICK__TEST__STATS_REQUEST__INIT;
	struct rpc_ccall		*c = NULL;
	const char			*target, *cert = NULL, *key = NULL;
	const char			*ca = NULL, *path;
	size_t				 max_recv = 0, plen = 0;
	uint8_t				*pay = NULL, *packed;
	unsigned			 n = 1, conc = 1, i;
	uint64_t			 t0;
	json_t				*out;
	char				*js, *eq;
	int				 ch, rc = 0;
	uv_loop_t			*loop;

	log_init("testcli", LOG_LEVEL_ERROR, LOG_FORMAT_TEXT);
	signal(SIGPIPE, SIG_IGN);
	if (argc < 3)
		usage();
	target = argv[1];
	optind = 2;
	cli.timeout_ms = -1;
	while ((ch = getopt(argc, argv, "+c:k:a:T:m:")) != -1) {
		switch (ch) {
		case 'c': cert = optarg; break;
		case 'k': key = optarg; break;
		case 'a': ca = optarg; break;
		case 'T': cli.timeout_ms = strtoll(optarg, NULL, 10); break;
		case 'm': max_recv = strtoul(optarg, NULL, 10); break;
		default: usage();
		}
	}
	if (optind >= argc)
		usage();
	cli.cmd = argv[optind];
	argv += optind;
	argc -= optind;
	optind = 1;
	req.message = "";
	while ((ch = getopt(argc, argv, "M:P:S:E:D:R:H:n:i:x:C:")) != -1) {
		switch (ch) {
		case 'M': req.message = optarg; break;
		case 'P': plen = strtoul(optarg, NULL, 10); break;
		case 'S': req.status = sreq.status = atoi(optarg); break;
		case 'E': req.status_message = sreq.status_message = optarg;
			break;
		case 'D': req.sleep_ms = strtoul(optarg, NULL, 10); break;
		case 'R': req.reply_size = strtoul(optarg, NULL, 10); break;
		case 'n': n = strtoul(optarg, NULL, 10); break;
		case 'i': sreq.interval_ms = strtoul(optarg, NULL, 10); break;
		case 'x': cli.cancel_after = strtoul(optarg, NULL, 10); break;
		case 'C': conc = strtoul(optarg, NULL, 10); break;
		case 'H':
			if (nhdrs == CLI_MAX_HDRS ||
			    (eq = strchr(optarg, '=')) == NULL)
				usage();
			*eq = '\0';
			hdrs[nhdrs].name = optarg;
			hdrs[nhdrs].value = (const uint8_t *)(eq + 1);
			hdrs[nhdrs].len = strlen(eq + 1);
			nhdrs++;
			break;
		default: usage();
		}
	}
	loop = uv_default_loop();
	if (cert != NULL || key != NULL || ca != NULL) {
		if (cert == NULL || key == NULL || ca == NULL ||
		    tls_ctx_new(TLS_ROLE_CLIENT, TLS_PEER_CERT_REQUIRED,
		    &cli.tls) != 0 ||
		    tls_ctx_load_files(cli.tls, cert, key, ca) != 0)
			fatal("cannot load TLS files");
	}
	if (rpc_channel_new(loop, target, cli.tls, max_recv, &cli.ch) != 0)
		usage();
	if ((pay = calloc(1, plen + 1)) == NULL)
		fatal("out of memory");
	memset(pay, 'q', plen);
	cli.status = -1;
	cli.payload = plen;
	if (strcmp(cli.cmd, "concurrent") == 0 || strcmp(cli.cmd, "bench") == 0) {
		cli.statuses = json_object();
		total_calls = cli.to_start = n;
		if (strcmp(cli.cmd, "concurrent") == 0)
			conc = n;
		else {
			cli.lat = calloc(n, sizeof(*cli.lat));
			cli.started = calloc(n, sizeof(*cli.started));
			if (cli.lat == NULL || cli.started == NULL)
				fatal("out of memory");
		}
		t0 = uv_hrtime();
		for (i = 0; i < conc && cli.to_start > 0; i++)
			many_start();
		uv_run(loop, UV_RUN_DEFAULT);
		if (cli.lat != NULL) {
			double secs = (double)(uv_hrtime() - t0) / 1e9;

			qsort(cli.lat, n, sizeof(*cli.lat), cmp_u64);
			out = json_pack("{s:I, s:I, s:f, s:f, s:f, s:o}",
			    "calls", (json_int_t)n, "concurrency",
			    (json_int_t)conc, "calls_per_s", n / secs,
			    "p50_us", cli.lat[n / 2] / 1e3,
			    "p99_us", cli.lat[n * 99 / 100] / 1e3,
			    "statuses", cli.statuses);
		} else {
			json_t *ok = json_object_get(cli.statuses, "0");

			out = json_pack("{s:I, s:I, s:o}", "calls",
			    (json_int_t)n, "ok", (json_int_t)(ok != NULL ?
			    json_integer_value(ok) : 0), "statuses",
			    cli.statuses);
		}
		goto print;
	}
	if (strcmp(cli.cmd, "unary") == 0) {
		path = "/wick.test.Echo/Unary";
		req.payload.data = pay;
		req.payload.len = plen;
	} else if (strcmp(cli.cmd, "stream") == 0) {
		path = "/wick.test.Echo/ServerStream";
		sreq.count = n;
		sreq.payload_size = plen;
	} else if (strcmp(cli.cmd, "bidi") == 0) {
		path = "/wick.test.Echo/Bidi";
		req.payload.data = pay;
		req.payload.len = plen;
		req.message = "bidi";
		cli.bidi_left = n;
	} else if (strcmp(cli.cmd, "stats") == 0)
		path = "/wick.test.Echo/Stats";
	else
		usage();
	if (rpc_ccall_start(cli.ch, path, hdrs, nhdrs, cli.timeout_ms,
	    &one_cbs, NULL, &c) != 0)
		fatal("cannot start the call");
	if (strcmp(cli.cmd, "stream") == 0) {
		size_t sz = wick__test__stream_request__get_packed_size(&sreq);

		if ((packed = malloc(sz + 1)) == NULL)
			fatal("out of memory");
		wick__test__stream_request__pack(&sreq, packed);
		if (rpc_ccall_send(c, packed, sz) != 0)
			fatal("send failed");
		free(packed);
	} else if (strcmp(cli.cmd, "stats") == 0) {
		uint8_t b[8];
		size_t sz = wick__test__stats_request__pack(&streq, b);

		if (rpc_ccall_send(c, b, sz) != 0)
			fatal("send failed");
	} else if (send_echo(c, &req) != 0)
		fatal("send failed");
	if (strcmp(cli.cmd, "bidi") != 0 && rpc_ccall_half_close(c) != 0)
		fatal("half-close failed");
	uv_run(loop, UV_RUN_DEFAULT);
	if (strcmp(cli.cmd, "stats") == 0 && cli.last != NULL) {
		out = json_incref(cli.last);
		goto print;
	}
	out = json_pack("{s:i, s:s, s:I, s:o, s:o, s:o}", "status", cli.status,
	    "status_message", cli.status_msg != NULL ? cli.status_msg : "",
	    "messages", (json_int_t)cli.messages,
	    "last", cli.last != NULL ? json_incref(cli.last) : json_object(),
	    "headers", cli.headers != NULL ? json_incref(cli.headers) :
	    json_object(),
	    "trailers", cli.trailers != NULL ? json_incref(cli.trailers) :
	    json_object());
	if (cli.status == RPC_UNAVAILABLE && cli.messages == 0 &&
	    cli.headers == NULL)
		rc = 1;
print:
	js = json_dumps(out, JSON_COMPACT | JSON_SORT_KEYS);
	printf("%s\n", js);
	free(js);
	json_decref(out);
	json_decref(cli.last);
	json_decref(cli.headers);
	json_decref(cli.trailers);
	free(cli.status_msg);
	free(cli.lat);
	free(cli.started);
	free(pay);
	tls_ctx_free(cli.tls);
	if (uv_loop_close(loop) != 0) {
		fprintf(stderr, "wick-testcli: handles left open\n");
		return 1;
	}
	return rc;
}
