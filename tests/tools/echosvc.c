/*
 * echosvc.c: wick-testsvc, the Echo test service (tests/interop/echo.proto)
 * on wick's gRPC server, for the interop tests, the demo and benchmarks.
 *
 * wick-testsvc [-u UNIX_PATH] [-t HOST:PORT [-c CERT -k KEY -a CA_PEM]]
 *     [-m MAX_MESSAGE_BYTES] [-s MAX_STREAMS] [-n MAX_CONNECTIONS]
 *     [-i HANDSHAKE_TIMEOUT_MS] [-I IDLE_TIMEOUT_MS]
 * -i drops connections that send no HTTP/2 frame (or finish no TLS
 * handshake) in time; -I sends GOAWAY to connections without calls.
 * Prints "ready unix=PATH tcp=HOST:PORT" once listening; SIGTERM or SIGINT
 * shut it down gracefully (at most 5 s) and it exits 0.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <uv.h>

#include "echo.pb-c.h"
#include "log.h"
#include "rpc.h"
#include "tls.h"

#define ECHO_GRACE_MS	5000

struct echo_call {
	struct rpc_call	*call;
	uv_timer_t	*timer;
	int		 kind;		/* 0 unary, 1 stream, 2 bidi */
	/* unary: the answer waiting for sleep_ms */
	Wick__Test__EchoReply reply;
	int		 status;
	char		*status_message;
	uint8_t		*payload;
	char		*message;
	/* stream */
	uint32_t	 count, sent, interval_ms, payload_size;
	uint32_t	 seq;
	int		 blocked;
};

static struct rpc_server	*server;
static uv_loop_t		*loop;

static void
timer_close_cb(uv_handle_t *h)
{
	free(h);
}

static void
echo_call_free(struct echo_call *ec)
{
	if (ec == NULL)
		return;
	if (ec->timer != NULL) {
		uv_timer_stop(ec->timer);
		uv_close((uv_handle_t *)ec->timer, timer_close_cb);
	}
	free(ec->status_message);
	free(ec->payload);
	free(ec->message);
	free(ec);
}

static struct echo_call *
echo_call_new(struct rpc_call *call, int kind)
{
	struct echo_call *ec;

	if ((ec = calloc(1, sizeof(*ec))) == NULL)
		return NULL;
	ec->call = call;
	ec->kind = kind;
	if ((ec->timer = malloc(sizeof(*ec->timer))) == NULL) {
		free(ec);
		return NULL;
	}
	uv_timer_init(loop, ec->timer);
	ec->timer->data = ec;
	rpc_call_set_data(call, ec);
	return ec;
}

static void
on_done(struct rpc_call *call, enum rpc_end why)
{
	echo_call_free(rpc_call_data(call));
}

static int
send_reply(struct rpc_call *call, const Wick__Test__EchoReply *r)
{
	size_t	 n = wick__test__echo_reply__get_packed_size(r);
	uint8_t	*p;
	int	 rv;

	if ((p = malloc(n > 0 ? n : 1)) == NULL)
		return WICK_ERR_ALLOC;
	wick__test__echo_reply__pack(r, p);
	rv = rpc_call_send_message(call, p, n);
	free(p);
	return rv;
}

/* Fill reply.metadata, deadline_ms and peer from the call. */
static int
fill_common(struct rpc_call *call, Wick__Test__EchoReply *r,
    Wick__Test__EchoReply__MetadataEntry **ents,
    Wick__Test__EchoReply__MetadataEntry *storage, size_t max, char *peer,
    size_t peerlen)
{
	const struct rpc_peer	*p = rpc_call_peer(call);
	const struct rpc_md	*md;
	size_t			 i, n = 0, len;
	int64_t			 left;

	for (i = 0; i < rpc_call_md_count(call) && n < max; i++) {
		md = rpc_call_md(call, i);
		len = strlen(md->name);
		if (len > 4 && strcmp(md->name + len - 4, "-bin") == 0)
			continue;
		wick__test__echo_reply__metadata_entry__init(&storage[n]);
		storage[n].key = (char *)md->name;
		storage[n].value = (char *)md->value;
		ents[n] = &storage[n];
		n++;
	}
	r->n_metadata = n;
	r->metadata = ents;
	left = rpc_call_deadline_left(call);
	r->deadline_ms = left < 0 ? 0 : (uint64_t)left;
	if (p->is_unix)
		snprintf(peer, peerlen, "uid:%u", (unsigned)p->uid);
	else if (p->spiffe_id != NULL)
		snprintf(peer, peerlen, "%s", p->spiffe_id);
	else
		peer[0] = '\0';
	r->peer = peer;
	return 0;
}

static void
echo_metadata_out(struct rpc_call *call)
{
	const struct rpc_md	*md;
	size_t			 i;

	for (i = 0; i < rpc_call_md_count(call); i++) {
		md = rpc_call_md(call, i);
		if (strncmp(md->name, "x-echo-", 7) == 0)
			if (rpc_call_add_header(call, md->name, md->value,
			    md->len) != 0)
				log_warn("cannot echo header %s", md->name);
	}
	if ((md = rpc_call_md_get(call, "x-echo-trailer")) != NULL)
		if (rpc_call_add_trailer(call, "x-trailer", md->value,
		    md->len) != 0)
			log_warn("cannot echo the trailer");
}

/* ---- Unary -------------------------------------------------------------- */

static void
unary_answer(struct echo_call *ec)
{
	struct rpc_call *call = ec->call;

	if (ec->status != 0) {
		(void)rpc_call_finish(call, ec->status, ec->status_message);
		return;
	}
	if (send_reply(call, &ec->reply) != 0) {
		(void)rpc_call_finish(call, RPC_INTERNAL, "reply failed");
		return;
	}
	(void)rpc_call_finish(call, RPC_OK, NULL);
}

static void
unary_timer_cb(uv_timer_t *t)
{
	unary_answer(t->data);
}

static void
unary_start(struct rpc_call *call, void *arg)
{
	if (echo_call_new(call, 0) == NULL)
		(void)rpc_call_finish(call, RPC_RESOURCE_EXHAUSTED, "no memory");
}

static void
unary_message(struct rpc_call *call, const uint8_t *p, size_t n)
{
	struct echo_call			*ec = rpc_call_data(call);
	Wick__Test__EchoRequest			*req;
	Wick__Test__EchoReply			 r = WICK__TEST__ECHO_REPLY__INIT;
	Wick__Test__EchoReply__MetadataEntry	*ents[RPC_MAX_METADATA_ENTRIES];
	Wick__Test__EchoReply__MetadataEntry	 st[RPC_MAX_METADATA_ENTRIES];
	char					 peer[512];
	size_t					 plen;

	if (ec == NULL)
		return;
	if ((req = wick__test__echo_request__unpack(NULL, n, p)) == NULL) {
		(void)rpc_call_finish(call, RPC_INVALID_ARGUMENT,
		    "cannot parse EchoRequest");
		return;
	}
	echo_metadata_out(call);
	ec->status = req->status;
	if (req->status_message != NULL &&
	    (ec->status_message = strdup(req->status_message)) == NULL)
		goto oom;
	if ((ec->message = strdup(req->message != NULL ? req->message : ""))
	    == NULL)
		goto oom;
	plen = req->reply_size > 0 ? req->reply_size : req->payload.len;
	if ((ec->payload = malloc(plen > 0 ? plen : 1)) == NULL)
		goto oom;
	if (req->reply_size > 0)
		memset(ec->payload, 'r', plen);
	else if (plen > 0)
		memcpy(ec->payload, req->payload.data, plen);
	fill_common(call, &r, ents, st, RPC_MAX_METADATA_ENTRIES, peer,
	    sizeof(peer));
	r.message = ec->message;
	r.payload.data = ec->payload;
	r.payload.len = plen;
	ec->reply = r;
	if (req->sleep_ms > 0) {
		/* The metadata entries live on this stack: drop them. */
		ec->reply.n_metadata = 0;
		ec->reply.metadata = NULL;
		ec->reply.peer = "";
		uv_timer_start(ec->timer, unary_timer_cb, req->sleep_ms, 0);
	} else {
		unary_answer(ec);
		ec->reply.n_metadata = 0;
		ec->reply.metadata = NULL;
		ec->reply.peer = "";
	}
	wick__test__echo_request__free_unpacked(req, NULL);
	return;
oom:
	wick__test__echo_request__free_unpacked(req, NULL);
	(void)rpc_call_finish(call, RPC_RESOURCE_EXHAUSTED, "no memory");
}

/* ---- ServerStream ------------------------------------------------------- */

static void stream_next(struct echo_call *);

static void
stream_timer_cb(uv_timer_t *t)
{
	stream_next(t->data);
}

static void
stream_next(struct echo_call *ec)
{
	Wick__Test__EchoReply	 r = WICK__TEST__ECHO_REPLY__INIT;
	int			 rv;

	while (ec->sent < ec->count) {
		r.seq = ec->sent;
		r.payload.data = ec->payload;
		r.payload.len = ec->payload_size;
		rv = send_reply(ec->call, &r);
		if (rv == WICK_ERR_AGAIN) {
			ec->blocked = 1;	/* on_writable resumes */
			return;
		}
		if (rv != 0) {
			(void)rpc_call_finish(ec->call, RPC_INTERNAL,
			    "send failed");
			return;
		}
		ec->sent++;
		if (ec->interval_ms > 0 && ec->sent < ec->count) {
			uv_timer_start(ec->timer, stream_timer_cb,
			    ec->interval_ms, 0);
			return;
		}
	}
	(void)rpc_call_finish(ec->call, ec->status, ec->status_message);
}

static void
stream_writable(struct rpc_call *call)
{
	struct echo_call *ec = rpc_call_data(call);

	if (ec != NULL && ec->blocked) {
		ec->blocked = 0;
		stream_next(ec);
	}
}

static void
stream_message(struct rpc_call *call, const uint8_t *p, size_t n)
{
	struct echo_call		*ec;
	Wick__Test__StreamRequest	*req;

	if ((ec = echo_call_new(call, 1)) == NULL) {
		(void)rpc_call_finish(call, RPC_RESOURCE_EXHAUSTED, "no memory");
		return;
	}
	if ((req = wick__test__stream_request__unpack(NULL, n, p)) == NULL) {
		(void)rpc_call_finish(call, RPC_INVALID_ARGUMENT,
		    "cannot parse StreamRequest");
		return;
	}
	echo_metadata_out(call);
	ec->count = req->count;
	ec->interval_ms = req->interval_ms;
	ec->payload_size = req->payload_size;
	ec->status = req->status;
	if (req->status_message != NULL && *req->status_message != '\0')
		ec->status_message = strdup(req->status_message);
	wick__test__stream_request__free_unpacked(req, NULL);
	if ((ec->payload = malloc(ec->payload_size + 1)) == NULL) {
		(void)rpc_call_finish(call, RPC_RESOURCE_EXHAUSTED, "no memory");
		return;
	}
	memset(ec->payload, 's', ec->payload_size);
	stream_next(ec);
}

/* ---- Bidi --------------------------------------------------------------- */

static void
bidi_start(struct rpc_call *call, void *arg)
{
	if (echo_call_new(call, 2) == NULL)
		(void)rpc_call_finish(call, RPC_RESOURCE_EXHAUSTED, "no memory");
	else
		echo_metadata_out(call);
}

static void
bidi_message(struct rpc_call *call, const uint8_t *p, size_t n)
{
	struct echo_call	*ec = rpc_call_data(call);
	Wick__Test__EchoRequest	*req;
	Wick__Test__EchoReply	 r = WICK__TEST__ECHO_REPLY__INIT;
	int			 rv;

	if (ec == NULL)
		return;
	if ((req = wick__test__echo_request__unpack(NULL, n, p)) == NULL) {
		(void)rpc_call_finish(call, RPC_INVALID_ARGUMENT,
		    "cannot parse EchoRequest");
		return;
	}
	if (req->status != 0) {
		(void)rpc_call_finish(call, req->status, req->status_message);
		wick__test__echo_request__free_unpacked(req, NULL);
		return;
	}
	r.message = req->message;
	r.payload = req->payload;
	r.seq = ec->seq++;
	rv = send_reply(call, &r);
	wick__test__echo_request__free_unpacked(req, NULL);
	if (rv != 0 && rv != WICK_ERR_AGAIN)
		(void)rpc_call_finish(call, RPC_INTERNAL, "send failed");
	else if (rv == WICK_ERR_AGAIN)
		(void)rpc_call_finish(call, RPC_RESOURCE_EXHAUSTED,
		    "client does not read its replies");
}

static void
bidi_half_close(struct rpc_call *call)
{
	(void)rpc_call_finish(call, RPC_OK, NULL);
}

/* ---- Stats -------------------------------------------------------------- */

static void
stats_message(struct rpc_call *call, const uint8_t *p, size_t n)
{
	Wick__Test__StatsReply	 r = WICK__TEST__STATS_REPLY__INIT;
	struct rpc_server_stats	 st;
	uint8_t			 buf[256];
	size_t			 len;

	rpc_server_get_stats(server, &st);
	r.calls_started = st.calls_started;
	r.calls_completed = st.calls_completed;
	r.calls_cancelled = st.calls_cancelled;
	r.deadlines_exceeded = st.deadlines_exceeded;
	r.calls_active = st.calls_active;
	r.connections_active = st.connections_active;
	r.connections_total = st.connections_total;
	len = wick__test__stats_reply__pack(&r, buf);
	if (rpc_call_send_message(call, buf, len) != 0)
		(void)rpc_call_finish(call, RPC_INTERNAL, "send failed");
	else
		(void)rpc_call_finish(call, RPC_OK, NULL);
}

static const struct rpc_method methods[] = {
	{ "/wick.test.Echo/Unary", RPC_KIND_UNARY, unary_start, unary_message,
	    NULL, NULL, on_done, NULL, 1 },
	{ "/wick.test.Echo/ServerStream", RPC_KIND_SERVER_STREAM, NULL,
	    stream_message, NULL, stream_writable, on_done, NULL, 1 },
	{ "/wick.test.Echo/Bidi", RPC_KIND_BIDI, bidi_start, bidi_message,
	    bidi_half_close, NULL, on_done, NULL, 1 },
	{ "/wick.test.Echo/Stats", RPC_KIND_UNARY, NULL, stats_message, NULL,
	    NULL, NULL, NULL, 1 },
};

/* ---- main --------------------------------------------------------------- */

static uv_signal_t	sigterm, sigint;

static void
shutdown_done(struct rpc_server *srv, void *arg)
{
	uv_close((uv_handle_t *)&sigterm, NULL);
	uv_close((uv_handle_t *)&sigint, NULL);
}

static void
signal_cb(uv_signal_t *s, int signum)
{
	uv_signal_stop(&sigterm);
	uv_signal_stop(&sigint);
	rpc_server_shutdown(server, ECHO_GRACE_MS, shutdown_done, NULL);
}

static void
usage(void)
{
	fprintf(stderr, "usage: wick-testsvc [-u UNIX_PATH] [-t HOST:PORT "
	    "[-c CERT -k KEY -a CA_PEM]] [-m MAX_MESSAGE_BYTES]\n"
	    "                    [-s MAX_STREAMS] [-n MAX_CONNECTIONS] "
	    "[-i HANDSHAKE_MS] [-I IDLE_MS]\n");
	exit(2);
}

int
main(int argc, char **argv)
{
	struct rpc_server_opts	 opts;
	struct tls_ctx		*tls = NULL;
	const char		*upath = NULL, *tcp = NULL, *cert = NULL;
	const char		*key = NULL, *ca = NULL;
	char			 host[256], *colon, line[1024];
	int			 ch, port = 0, bound = 0, r;

	memset(&opts, 0, sizeof(opts));
	log_init("testsvc", LOG_LEVEL_WARN, LOG_FORMAT_TEXT);
	while ((ch = getopt(argc, argv, "u:t:c:k:a:m:s:n:i:I:")) != -1) {
		switch (ch) {
		case 'u': upath = optarg; break;
		case 't': tcp = optarg; break;
		case 'c': cert = optarg; break;
		case 'k': key = optarg; break;
		case 'a': ca = optarg; break;
		case 'm': opts.known.max_message = strtoul(optarg, NULL, 10);
			break;
		case 's': opts.known.max_streams = strtoul(optarg, NULL, 10);
			break;
		case 'n': opts.max_conns = strtoul(optarg, NULL, 10); break;
		case 'i': opts.handshake_ms = strtoull(optarg, NULL, 10); break;
		case 'I': opts.idle_ms = strtoull(optarg, NULL, 10); break;
		default: usage();
		}
	}
	if (upath == NULL && tcp == NULL)
		usage();
	/* A test service: peers without a certificate get what others get. */
	opts.anon = opts.known;
	opts.anon_max_conns = UINT32_MAX;
	if ((cert != NULL || key != NULL || ca != NULL) &&
	    (cert == NULL || key == NULL || ca == NULL || tcp == NULL))
		usage();
	signal(SIGPIPE, SIG_IGN);
	loop = uv_default_loop();
	if (rpc_server_new(loop, &opts, methods,
	    sizeof(methods) / sizeof(methods[0]), &server) != 0)
		fatal("cannot create the server");
	if (cert != NULL) {
		if (tls_ctx_new(TLS_ROLE_SERVER, TLS_PEER_CERT_REQUIRED,
		    &tls) != 0 || tls_ctx_load_files(tls, cert, key, ca) != 0)
			fatal("cannot load TLS files %s %s %s", cert, key, ca);
	}
	line[0] = '\0';
	snprintf(line, sizeof(line), "ready");
	if (upath != NULL) {
		if ((r = rpc_server_listen_unix(server, upath, 0777)) != 0)
			fatal("listen %s: %s", upath, wick_strerror(r));
		snprintf(line + strlen(line), sizeof(line) - strlen(line),
		    " unix=%s", upath);
	}
	if (tcp != NULL) {
		snprintf(host, sizeof(host), "%s", tcp);
		if ((colon = strrchr(host, ':')) == NULL)
			usage();
		*colon = '\0';
		port = atoi(colon + 1);
		if ((r = rpc_server_listen_tcp(server, host, port, tls,
		    &bound)) != 0)
			fatal("listen %s: %s", tcp, wick_strerror(r));
		snprintf(line + strlen(line), sizeof(line) - strlen(line),
		    " tcp=%s:%d", host, bound);
	}
	uv_signal_init(loop, &sigterm);
	uv_signal_init(loop, &sigint);
	uv_signal_start(&sigterm, signal_cb, SIGTERM);
	uv_signal_start(&sigint, signal_cb, SIGINT);
	printf("%s\n", line);
	fflush(stdout);
	uv_run(loop, UV_RUN_DEFAULT);
	rpc_server_free(server);
	tls_ctx_free(tls);
	if (uv_loop_close(loop) != 0) {
		log_error("loop still has open handles at exit");
		return 1;
	}
	return 0;
}
