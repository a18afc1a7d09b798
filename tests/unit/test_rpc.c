/*
 * test_rpc.c: our gRPC client calls our gRPC server in one libuv loop,
 * over a Unix socket, TCP (h2c) and TCP with mutual TLS; hostile bytes
 * come from raw sockets (some built with a bare nghttp2 client session).
 * Every test ends with uv_loop_close() == 0.
 */
#include <sys/stat.h>

#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include <nghttp2/nghttp2.h>
#include <openssl/x509.h>
#include <uv.h>

#include "rpc.h"
#include "rpc_client.h"
#include "tls.h"
#include "helpers/testpki.h"

#define ID_CA		"spiffe://example.org"
#define ID_SERVER	"spiffe://example.org/server"
#define ID_CLIENT	"spiffe://example.org/client"

#define P_UNARY		"/wick.test.T/Unary"
#define P_STREAM	"/wick.test.T/Stream"
#define P_BIDI		"/wick.test.T/Bidi"
#define P_HANG		"/THang/Hang"		/* no package, like the Workload API */

#define WAIT_MS		5000	/* any wait longer than this is a failure */

enum tr { TR_UNIX = 0, TR_TCP, TR_TLS };

/* ---- server-side handlers -------------------------------------------- */

/* Per-call handler state: owned by the handler, freed in on_done. */
struct hstate {
	struct rpc_call	*call;
	uv_timer_t	*timer;
	uint8_t		*msg;
	size_t		 len;
	uint32_t	 count;
	uint32_t	 size;
	uint32_t	 sent;
	int		 blocked;
	int		 hang;
};

/* What the handlers saw, for the tests to check. */
static struct {
	uv_loop_t	*loop;
	int		 starts;
	int		 done[3];	/* by enum rpc_end */
	int		 again;		/* WICK_ERR_AGAIN from send_message */
	uint32_t	 stream_sent;
	int		 reserved_refused;
	int		 timer_fired;
	int		 hang_starts;
	int		 hang_done;
} S;

static void
h_timer_close_cb(uv_handle_t *h)
{
	free(h);
}

static void
h_start(struct rpc_call *call, void *arg)
{
	struct hstate *h;

	S.starts++;
	h = calloc(1, sizeof(*h));
	assert_non_null(h);
	h->call = call;
	h->timer = malloc(sizeof(*h->timer));
	assert_non_null(h->timer);
	assert_int_equal(uv_timer_init(S.loop, h->timer), 0);
	h->timer->data = h;
	rpc_call_set_data(call, h);
}

static void
h_done(struct rpc_call *call, enum rpc_end why)
{
	struct hstate *h = rpc_call_data(call);

	assert_true(why <= RPC_END_DEADLINE);
	S.done[why]++;
	if (h->hang)
		S.hang_done++;
	/* The timer may be armed: stop it here, the call is gone. */
	uv_close((uv_handle_t *)h->timer, h_timer_close_cb);
	free(h->msg);
	free(h);
}

static const char *
md_str(struct rpc_call *call, const char *name)
{
	const struct rpc_md *m = rpc_call_md_get(call, name);

	return m != NULL ? (const char *)m->value : NULL;
}

static void
unary_reply(struct hstate *h)
{
	assert_int_equal(rpc_call_send_message(h->call, h->msg, h->len), 0);
	assert_int_equal(rpc_call_finish(h->call, RPC_OK, NULL), 0);
}

static void
unary_timer_cb(uv_timer_t *t)
{
	S.timer_fired++;
	unary_reply(t->data);
}

/*
 * Unary: echo the message; x-mode selects: "status" (finish with x-status
 * and x-message), "sleep" (answer after x-sleep ms), "big" (reply x-size
 * bytes), "reserved" (try reserved names); x-echo-* come back as headers,
 * x-echo-trailer as trailer x-trailer, the peer as x-peer-uid/x-peer-id.
 */
static void
unary_message(struct rpc_call *call, const uint8_t *p, size_t n)
{
	struct hstate		*h = rpc_call_data(call);
	const struct rpc_peer	*peer = rpc_call_peer(call);
	const struct rpc_md	*m;
	const char		*mode = md_str(call, "x-mode");
	char			 tmp[64];
	size_t			 i;

	if (mode != NULL && strcmp(mode, "status") == 0) {
		char text[256];

		/* Binary, so that any byte can be carried to the handler. */
		m = rpc_call_md_get(call, "x-message-bin");
		assert_non_null(m);
		assert_true(m->len < sizeof(text));
		memcpy(text, m->value, m->len);
		text[m->len] = '\0';
		assert_int_equal(rpc_call_add_trailer(call, "x-why", "because",
		    7), 0);
		assert_int_equal(rpc_call_finish(call,
		    atoi(md_str(call, "x-status")), text), 0);
		return;
	}
	if (mode != NULL && strcmp(mode, "reserved") == 0) {
		static const char *const bad[] = { "grpc-status",
		    "grpc-message", "content-type", ":status", "te", "Upper",
		    "" };

		for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
			if (rpc_call_add_header(call, bad[i], "x", 1) ==
			    WICK_ERR_INVALID &&
			    rpc_call_add_trailer(call, bad[i], "x", 1) ==
			    WICK_ERR_INVALID)
				S.reserved_refused++;
		}
	}
	for (i = 0; i < rpc_call_md_count(call); i++) {
		m = rpc_call_md(call, i);
		if (strncmp(m->name, "x-echo-", 7) == 0)
			assert_int_equal(rpc_call_add_header(call, m->name,
			    m->value, m->len), 0);
	}
	if ((m = rpc_call_md_get(call, "x-echo-trailer")) != NULL)
		assert_int_equal(rpc_call_add_trailer(call, "x-trailer",
		    m->value, m->len), 0);
	if (peer->is_unix) {
		snprintf(tmp, sizeof(tmp), "%u", (unsigned)peer->uid);
		assert_int_equal(rpc_call_add_header(call, "x-peer-uid", tmp,
		    strlen(tmp)), 0);
	}
	if (peer->spiffe_id != NULL)
		assert_int_equal(rpc_call_add_header(call, "x-peer-id",
		    peer->spiffe_id, strlen(peer->spiffe_id)), 0);
	if (mode != NULL && strcmp(mode, "big") == 0) {
		h->len = (size_t)atol(md_str(call, "x-size"));
		h->msg = malloc(h->len + 1);
		assert_non_null(h->msg);
		memset(h->msg, 'b', h->len);
	} else {
		h->msg = malloc(n + 1);
		assert_non_null(h->msg);
		if (n > 0)
			memcpy(h->msg, p, n);
		h->len = n;
	}
	/* "spin": hold the loop that long (microseconds), as a turn with
	 * many busy peers does. */
	if (mode != NULL && strcmp(mode, "spin") == 0) {
		uint64_t until = uv_hrtime() +
		    (uint64_t)atoi(md_str(call, "x-spin")) * 1000;

		while (uv_hrtime() < until)
			;
	}
	if (mode != NULL && strcmp(mode, "sleep") == 0) {
		assert_int_equal(uv_timer_start(h->timer, unary_timer_cb,
		    (uint64_t)atoi(md_str(call, "x-sleep")), 0), 0);
		return;
	}
	unary_reply(h);
}

/* Server stream: the request is u32 count, u32 size (big-endian). */
static void
stream_pump(struct hstate *h)
{
	uint8_t	*p;
	int	 r;

	p = malloc(h->size + 4);
	assert_non_null(p);
	memset(p, 's', h->size + 4);
	while (h->sent < h->count) {
		p[0] = (uint8_t)(h->sent >> 24);
		p[1] = (uint8_t)(h->sent >> 16);
		p[2] = (uint8_t)(h->sent >> 8);
		p[3] = (uint8_t)h->sent;
		r = rpc_call_send_message(h->call, p, h->size + 4);
		if (r == WICK_ERR_AGAIN) {
			S.again++;
			h->blocked = 1;
			break;
		}
		assert_int_equal(r, 0);
		h->sent++;
		S.stream_sent = h->sent;
	}
	free(p);
	if (h->sent == h->count)
		assert_int_equal(rpc_call_finish(h->call, RPC_OK, "done"), 0);
}

static void
stream_message(struct rpc_call *call, const uint8_t *p, size_t n)
{
	struct hstate *h = rpc_call_data(call);

	assert_int_equal(n, 8);
	h->count = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	    (uint32_t)p[2] << 8 | p[3];
	h->size = (uint32_t)p[4] << 24 | (uint32_t)p[5] << 16 |
	    (uint32_t)p[6] << 8 | p[7];
	stream_pump(h);
}

static void
stream_writable(struct rpc_call *call)
{
	struct hstate *h = rpc_call_data(call);

	if (h->blocked) {
		h->blocked = 0;
		stream_pump(h);
	}
}

/* Bidi: echo each message; "fail" ends the call at once with status 9. */
static void
bidi_message(struct rpc_call *call, const uint8_t *p, size_t n)
{
	const char *what;

	if (n == 4 && memcmp(p, "fail", 4) == 0) {
		assert_int_equal(rpc_call_finish(call, RPC_FAILED_PRECONDITION,
		    "asked to fail"), 0);
		return;
	}
	/* "wait": hold state for the peer and wait for its next message
	 * (a challenge sent, its answer due). */
	if (n == 4 && memcmp(p, "wait", 4) == 0) {
		assert_int_equal(rpc_call_hold(call, 1000, &what), 0);
		rpc_call_await_message(call);
	}
	assert_int_equal(rpc_call_send_message(call, p, n), 0);
}

static void
bidi_half_close(struct rpc_call *call)
{
	assert_int_equal(rpc_call_finish(call, RPC_OK, NULL), 0);
}

/* Hang: never answers by itself (a 60 s timer must never fire). */
static void
hang_timer_cb(uv_timer_t *t)
{
	S.timer_fired++;
	fail_msg("a hanging call's timer fired");
}

static void
hang_start(struct rpc_call *call, void *arg)
{
	struct hstate *h;

	h_start(call, arg);
	h = rpc_call_data(call);
	h->hang = 1;
	S.hang_starts++;
	assert_int_equal(uv_timer_start(h->timer, hang_timer_cb, 60000, 0),
	    0);
}

static const struct rpc_method methods[] = {
	{ P_UNARY, RPC_KIND_UNARY, h_start, unary_message, NULL, NULL,
	    h_done, NULL, 1 },
	{ P_STREAM, RPC_KIND_SERVER_STREAM, h_start, stream_message, NULL,
	    stream_writable, h_done, NULL, 1 },
	{ P_BIDI, RPC_KIND_BIDI, h_start, bidi_message, bidi_half_close, NULL,
	    h_done, NULL, 1 },
	{ P_HANG, RPC_KIND_BIDI, hang_start, NULL, NULL, NULL, h_done, NULL,
	    1 },
};

/* ---- fixture ------------------------------------------------------------ */

static struct {
	X509		*ca, *srv, *cli, *oca, *ocli;
	EVP_PKEY	*cak, *srvk, *clik, *ocak, *oclik;
} pki;

struct fx {
	uv_loop_t	 loop;
	struct rpc_server *srv;
	char		 dir[64];
	char		 path[128];
	int		 port;
	int		 tls_port;
	struct tls_ctx	*stls;
	struct tls_ctx	*ctls;
	int		 srv_done;
	int		 shut;
};

static int
setup_pki(void **state)
{
	if (testpki_make_ca("ca", ID_CA, &pki.ca, &pki.cak) != 0 ||
	    testpki_make_ca("other", ID_CA, &pki.oca, &pki.ocak) != 0 ||
	    testpki_make_leaf(pki.ca, pki.cak, "srv", "URI:" ID_SERVER
	    ",DNS:localhost,IP:127.0.0.1", &pki.srv, &pki.srvk) != 0 ||
	    testpki_make_leaf(pki.ca, pki.cak, "cli", "URI:" ID_CLIENT,
	    &pki.cli, &pki.clik) != 0 ||
	    testpki_make_leaf(pki.oca, pki.ocak, "ocli", "URI:" ID_CLIENT,
	    &pki.ocli, &pki.oclik) != 0)
		return -1;
	return 0;
}

static int
teardown_pki(void **state)
{
	X509_free(pki.ca);
	X509_free(pki.srv);
	X509_free(pki.cli);
	X509_free(pki.oca);
	X509_free(pki.ocli);
	EVP_PKEY_free(pki.cak);
	EVP_PKEY_free(pki.srvk);
	EVP_PKEY_free(pki.clik);
	EVP_PKEY_free(pki.ocak);
	EVP_PKEY_free(pki.oclik);
	return 0;
}

static struct tls_ctx *
make_tls(enum tls_role role, X509 *leaf, EVP_PKEY *key, X509 *root)
{
	struct tls_ctx	*ctx = NULL;
	STACK_OF(X509)	*sk;

	assert_int_equal(tls_ctx_new(role, TLS_PEER_CERT_REQUIRED, &ctx), 0);
	sk = sk_X509_new_null();
	assert_non_null(sk);
	assert_true(X509_up_ref(leaf));
	assert_true(sk_X509_push(sk, leaf) > 0);
	assert_int_equal(tls_ctx_set_identity(ctx, sk, key), 0);
	sk_X509_pop_free(sk, X509_free);
	sk = sk_X509_new_null();
	assert_non_null(sk);
	assert_true(X509_up_ref(root));
	assert_true(sk_X509_push(sk, root) > 0);
	assert_int_equal(tls_ctx_set_roots(ctx, sk), 0);
	sk_X509_pop_free(sk, X509_free);
	return ctx;
}

static void
guard_cb(uv_timer_t *t)
{
	*(int *)t->data = 1;
}

/* Run the loop until *flag is set; fail after ms. */
static void
run_until(struct fx *f, const int *flag, uint64_t ms)
{
	uv_timer_t	 guard;
	int		 expired = 0;

	assert_int_equal(uv_timer_init(&f->loop, &guard), 0);
	guard.data = &expired;
	assert_int_equal(uv_timer_start(&guard, guard_cb, ms, 0), 0);
	while (!*flag && !expired)
		(void)uv_run(&f->loop, UV_RUN_ONCE);
	uv_close((uv_handle_t *)&guard, NULL);
	(void)uv_run(&f->loop, UV_RUN_NOWAIT);
	assert_true(*flag);
}

/* Let the loop run for ms whatever happens. */
static void
run_for(struct fx *f, uint64_t ms)
{
	int never = 0, expired = 0;
	uv_timer_t guard;

	assert_int_equal(uv_timer_init(&f->loop, &guard), 0);
	guard.data = &expired;
	assert_int_equal(uv_timer_start(&guard, guard_cb, ms, 0), 0);
	while (!never && !expired)
		(void)uv_run(&f->loop, UV_RUN_ONCE);
	uv_close((uv_handle_t *)&guard, NULL);
	(void)uv_run(&f->loop, UV_RUN_NOWAIT);
}

static void
fx_start(struct fx *f, const struct rpc_server_opts *opts)
{
	memset(f, 0, sizeof(*f));
	memset(&S, 0, sizeof(S));
	assert_int_equal(uv_loop_init(&f->loop), 0);
	S.loop = &f->loop;
	snprintf(f->dir, sizeof(f->dir), "/tmp/wick-test-rpc.XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->path, sizeof(f->path), "%s/s.sock", f->dir);
	f->stls = make_tls(TLS_ROLE_SERVER, pki.srv, pki.srvk, pki.ca);
	f->ctls = make_tls(TLS_ROLE_CLIENT, pki.cli, pki.clik, pki.ca);
	assert_int_equal(rpc_server_new(&f->loop, opts, methods,
	    sizeof(methods) / sizeof(methods[0]), &f->srv), 0);
	assert_int_equal(rpc_server_listen_unix(f->srv, f->path, 0600), 0);
	assert_int_equal(rpc_server_listen_tcp(f->srv, "127.0.0.1", 0, NULL,
	    &f->port), 0);
	assert_int_equal(rpc_server_listen_tcp(f->srv, "127.0.0.1", 0,
	    f->stls, &f->tls_port), 0);
	assert_true(f->port > 0 && f->tls_port > 0);
}

static void
srv_done_cb(struct rpc_server *srv, void *arg)
{
	((struct fx *)arg)->srv_done = 1;
}

static void
fx_shutdown(struct fx *f, uint64_t grace_ms)
{
	f->shut = 1;
	rpc_server_shutdown(f->srv, grace_ms, srv_done_cb, f);
}

static void
fx_finish(struct fx *f)
{
	if (!f->shut)
		fx_shutdown(f, 1000);
	run_until(f, &f->srv_done, WAIT_MS);
	rpc_server_free(f->srv);
	(void)uv_run(&f->loop, UV_RUN_DEFAULT);
	assert_int_equal(uv_loop_close(&f->loop), 0);
	tls_ctx_free(f->stls);
	tls_ctx_free(f->ctls);
	(void)unlink(f->path);
	assert_int_equal(rmdir(f->dir), 0);
	/* Every call that started was ended for its handler exactly once. */
	assert_int_equal(S.starts, S.done[0] + S.done[1] + S.done[2]);
}

/* ---- client side -------------------------------------------------------- */

#define CR_MAX_HDRS	16

struct chdr {
	char	 name[64];
	uint8_t	 value[256];
	size_t	 len;
};

struct cres {
	struct rpc_ccall *call;
	int		 ended;
	int		 status;
	char		 msg[256];
	int		 got_headers;
	int		 nmsgs;
	uint8_t		*last;
	size_t		 lastlen;
	struct chdr	 hdrs[2][CR_MAX_HDRS];
	size_t		 nhdrs[2];
	/* bidi ping-pong */
	int		 bidi_left;
	/* stream checks */
	uint32_t	 next_seq;
	int		 seq_bad;
	int		 cancel_after;
	int		 check_seq;
};

static void
cl_headers(struct rpc_ccall *c, void *arg)
{
	((struct cres *)arg)->got_headers++;
}

static void
cl_message(struct rpc_ccall *c, const uint8_t *p, size_t n, void *arg)
{
	struct cres *r = arg;
	uint32_t seq;

	r->nmsgs++;
	free(r->last);
	r->last = malloc(n + 1);
	assert_non_null(r->last);
	if (n > 0)
		memcpy(r->last, p, n);
	r->last[n] = '\0';
	r->lastlen = n;
	if (r->check_seq && n >= 4) {
		seq = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
		    (uint32_t)p[2] << 8 | p[3];
		if (seq != r->next_seq)
			r->seq_bad = 1;
		r->next_seq++;
	}
	if (r->cancel_after > 0 && r->nmsgs == r->cancel_after) {
		rpc_ccall_cancel(c);
		return;
	}
	if (r->bidi_left > 0) {
		char buf[32];

		r->bidi_left--;
		if (r->bidi_left == 0)
			assert_int_equal(rpc_ccall_half_close(c), 0);
		else {
			snprintf(buf, sizeof(buf), "ping %d", r->bidi_left);
			assert_int_equal(rpc_ccall_send(c, (uint8_t *)buf,
			    strlen(buf)), 0);
		}
	}
}

static void
cl_status(struct rpc_ccall *c, int st, const char *msg, void *arg)
{
	struct cres		*r = arg;
	const struct rpc_md	*m;
	size_t			 i;
	int			 t;

	assert_false(r->ended);
	r->ended = 1;
	r->status = st;
	snprintf(r->msg, sizeof(r->msg), "%s", msg != NULL ? msg : "");
	for (t = 0; t < 2; t++) {
		for (i = 0; i < rpc_ccall_header_count(c, t) &&
		    r->nhdrs[t] < CR_MAX_HDRS; i++) {
			m = rpc_ccall_header(c, t, i);
			snprintf(r->hdrs[t][r->nhdrs[t]].name, 64, "%s",
			    m->name);
			assert_true(m->len <= 256);
			memcpy(r->hdrs[t][r->nhdrs[t]].value, m->value, m->len);
			r->hdrs[t][r->nhdrs[t]].len = m->len;
			r->nhdrs[t]++;
		}
	}
	r->call = NULL;
}

static const struct rpc_client_cbs ccbs = { cl_headers, cl_message,
    cl_status };

static const struct chdr *
cres_hdr(const struct cres *r, int trailers, const char *name)
{
	size_t i;

	for (i = 0; i < r->nhdrs[trailers]; i++)
		if (strcmp(r->hdrs[trailers][i].name, name) == 0)
			return &r->hdrs[trailers][i];
	return NULL;
}

static void
cres_free(struct cres *r)
{
	free(r->last);
	r->last = NULL;
}

static struct rpc_channel *
open_ch(struct fx *f, enum tr tr, size_t max_recv)
{
	struct rpc_channel	*ch = NULL;
	char			 target[160];

	switch (tr) {
	case TR_UNIX:
		snprintf(target, sizeof(target), "unix://%s", f->path);
		assert_int_equal(rpc_channel_new(&f->loop, target, NULL,
		    max_recv, &ch), 0);
		break;
	case TR_TCP:
		snprintf(target, sizeof(target), "127.0.0.1:%d", f->port);
		assert_int_equal(rpc_channel_new(&f->loop, target, NULL,
		    max_recv, &ch), 0);
		break;
	case TR_TLS:
		snprintf(target, sizeof(target), "localhost:%d", f->tls_port);
		assert_int_equal(rpc_channel_new(&f->loop, target, f->ctls,
		    max_recv, &ch), 0);
		break;
	}
	return ch;
}

static void
ch_closed_cb(void *arg)
{
	*(int *)arg = 1;
}

static void
close_ch(struct fx *f, struct rpc_channel *ch)
{
	int closed = 0;

	rpc_channel_close(ch, ch_closed_cb, &closed);
	run_until(f, &closed, WAIT_MS);
}

/* Start a call with nmd metadata pairs (name, value) and one message. */
static void
start_call(struct fx *f, struct rpc_channel *ch, const char *path,
    int64_t timeout_ms, const uint8_t *msg, size_t len, int half_close,
    struct cres *r, size_t nmd, ...)
{
	struct rpc_md	 md[8];
	va_list		 ap;
	size_t		 i;

	assert_true(nmd <= 8);
	va_start(ap, nmd);
	for (i = 0; i < nmd; i++) {
		md[i].name = va_arg(ap, const char *);
		md[i].value = va_arg(ap, const uint8_t *);
		md[i].len = va_arg(ap, size_t);
	}
	va_end(ap);
	assert_int_equal(rpc_ccall_start(ch, path, md, nmd, timeout_ms, &ccbs,
	    r, &r->call), 0);
	if (msg != NULL)
		assert_int_equal(rpc_ccall_send(r->call, msg, len), 0);
	if (half_close)
		assert_int_equal(rpc_ccall_half_close(r->call), 0);
}

#define S_(s)	(const uint8_t *)(s), strlen(s)

static void
unary_ok(struct fx *f, struct rpc_channel *ch, const char *text)
{
	struct cres r;

	memset(&r, 0, sizeof(r));
	start_call(f, ch, P_UNARY, 5000, S_(text), 1, &r, 0);
	run_until(f, &r.ended, WAIT_MS);
	assert_int_equal(r.status, RPC_OK);
	assert_int_equal(r.nmsgs, 1);
	assert_int_equal(r.lastlen, strlen(text));
	assert_memory_equal(r.last, text, strlen(text));
	cres_free(&r);
}

/* ---- raw connections (hostile peers) ------------------------------------ */

struct raw {
	struct fx	*f;
	union {
		uv_handle_t	 handle;
		uv_stream_t	 stream;
		uv_pipe_t	 pipe;
		uv_tcp_t	 tcp;
	} h;
	uv_connect_t	 creq;
	int		 connected;
	int		 eof;
	int		 closed;
	size_t		 nread;
	int		 reading;
	/* optional HTTP/2 client that parses what comes back */
	nghttp2_session	*ngh;
	int		 stream_closed;
	int		 http_status;
	int		 grpc_status;
	char		 grpc_message[256];
	uint32_t	 close_code;
	/* request body served by the data provider */
	uint8_t		 body[64];
	size_t		 body_len;
	size_t		 body_off;
	int		 keep_open;	/* no END_STREAM after the body */
	/* xcount extra request headers "x-big-<i>: <xlen bytes>" */
	int		 xcount;
	size_t		 xlen;
};

struct raw_write {
	uv_write_t	 req;
	uint8_t		 data[];
};

static void
raw_connect_cb(uv_connect_t *req, int status)
{
	struct raw *r = req->data;

	assert_int_equal(status, 0);
	r->connected = 1;
}

static void
raw_alloc_cb(uv_handle_t *h, size_t hint, uv_buf_t *b)
{
	static char slab[65536];

	*b = uv_buf_init(slab, sizeof(slab));
}

static void
raw_read_cb(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
	struct raw *r = s->data;

	if (n < 0) {
		r->eof = 1;
		(void)uv_read_stop(s);
		return;
	}
	r->nread += (size_t)n;
	if (r->ngh != NULL && n > 0)
		assert_true(nghttp2_session_mem_recv(r->ngh,
		    (const uint8_t *)b->base, (size_t)n) >= 0);
}

static void
raw_write_cb(uv_write_t *req, int status)
{
	free(req);
}

static void
raw_open(struct fx *f, struct raw *r, int read)
{
	memset(r, 0, sizeof(*r));
	r->f = f;
	r->grpc_status = -1;
	assert_int_equal(uv_pipe_init(&f->loop, &r->h.pipe, 0), 0);
	r->h.handle.data = r;
	r->creq.data = r;
	uv_pipe_connect(&r->creq, &r->h.pipe, f->path, raw_connect_cb);
	run_until(f, &r->connected, WAIT_MS);
	if (read) {
		r->reading = 1;
		assert_int_equal(uv_read_start(&r->h.stream, raw_alloc_cb,
		    raw_read_cb), 0);
	}
}

/* A raw TCP connection to the plaintext listener from address src
 * (127.0.0.0/8 all reach loopback): peers told apart by address. */
static void
raw_open_tcp(struct fx *f, struct raw *r, const char *src)
{
	struct sockaddr_in	 sa, da;

	memset(r, 0, sizeof(*r));
	r->f = f;
	r->grpc_status = -1;
	assert_int_equal(uv_tcp_init(&f->loop, &r->h.tcp), 0);
	r->h.handle.data = r;
	r->creq.data = r;
	assert_int_equal(uv_ip4_addr(src, 0, &sa), 0);
	assert_int_equal(uv_ip4_addr("127.0.0.1", f->port, &da), 0);
	assert_int_equal(uv_tcp_bind(&r->h.tcp, (struct sockaddr *)&sa, 0),
	    0);
	assert_int_equal(uv_tcp_connect(&r->creq, &r->h.tcp,
	    (struct sockaddr *)&da, raw_connect_cb), 0);
	run_until(f, &r->connected, WAIT_MS);
	r->reading = 1;
	assert_int_equal(uv_read_start(&r->h.stream, raw_alloc_cb,
	    raw_read_cb), 0);
}

static void
raw_send(struct raw *r, const void *p, size_t n)
{
	struct raw_write	*w;
	uv_buf_t		 b;

	w = malloc(sizeof(*w) + n);
	assert_non_null(w);
	memcpy(w->data, p, n);
	b = uv_buf_init((char *)w->data, (unsigned)n);
	assert_int_equal(uv_write(&w->req, &r->h.stream, &b, 1,
	    raw_write_cb), 0);
}

static void
raw_close_cb(uv_handle_t *h)
{
	((struct raw *)h->data)->closed = 1;
}

static void
raw_close(struct raw *r)
{
	uv_close(&r->h.handle, raw_close_cb);
	run_until(r->f, &r->closed, WAIT_MS);
	if (r->ngh != NULL)
		nghttp2_session_del(r->ngh);
	r->ngh = NULL;
}

static int
raw_on_header(nghttp2_session *s, const nghttp2_frame *fr,
    const uint8_t *name, size_t nlen, const uint8_t *value, size_t vlen,
    uint8_t flags, void *arg)
{
	struct raw *r = arg;

	if (strcmp((const char *)name, ":status") == 0)
		r->http_status = atoi((const char *)value);
	else if (strcmp((const char *)name, "grpc-status") == 0)
		r->grpc_status = atoi((const char *)value);
	else if (strcmp((const char *)name, "grpc-message") == 0)
		snprintf(r->grpc_message, sizeof(r->grpc_message), "%s",
		    (const char *)value);
	return 0;
}

static int
raw_on_close(nghttp2_session *s, int32_t sid, uint32_t code, void *arg)
{
	struct raw *r = arg;

	r->stream_closed = 1;
	r->close_code = code;
	return 0;
}

static ssize_t
raw_body_cb(nghttp2_session *s, int32_t sid, uint8_t *dst, size_t len,
    uint32_t *flags, nghttp2_data_source *src, void *arg)
{
	struct raw	*r = arg;
	size_t		 n = r->body_len - r->body_off;

	if (n > len)
		n = len;
	memcpy(dst, r->body + r->body_off, n);
	r->body_off += n;
	if (r->body_off == r->body_len) {
		*flags |= NGHTTP2_DATA_FLAG_EOF;
		if (r->keep_open)
			*flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
	}
	return (ssize_t)n;
}

/* Push what the raw HTTP/2 session wants to send onto the socket. */
static void
raw_h2_flush(struct raw *r)
{
	const uint8_t	*data;
	ssize_t		 n;

	while ((n = nghttp2_session_mem_send(r->ngh, &data)) > 0)
		raw_send(r, data, (size_t)n);
	assert_true(n == 0);
}

/*
 * A request from a bare nghttp2 client: the given content-type and method,
 * and body as the DATA (with END_STREAM).
 */
static void
raw_h2_request(struct raw *r, const char *method, const char *path,
    const char *ctype, const void *body, size_t blen)
{
	nghttp2_session_callbacks	*cbs;
	nghttp2_option			*opt;
	nghttp2_data_provider		 prd;
	nghttp2_nv			 nva[6 + 8];
	char				 xnames[8][32], *xval = NULL;
	size_t				 n = 0;
	int				 i;

#define RNV(a, b) (nghttp2_nv){ (uint8_t *)(a), (uint8_t *)(b), strlen(a), \
	strlen(b), NGHTTP2_NV_FLAG_NONE }
	assert_int_equal(nghttp2_session_callbacks_new(&cbs), 0);
	nghttp2_session_callbacks_set_on_header_callback(cbs, raw_on_header);
	nghttp2_session_callbacks_set_on_stream_close_callback(cbs,
	    raw_on_close);
	assert_int_equal(nghttp2_option_new(&opt), 0);
	nghttp2_option_set_max_send_header_block_length(opt, 1024 * 1024);
	/* Until the server's SETTINGS are read, send as many as asked. */
	nghttp2_option_set_peer_max_concurrent_streams(opt, 1u << 30);
	assert_int_equal(nghttp2_session_client_new2(&r->ngh, cbs, r, opt), 0);
	nghttp2_option_del(opt);
	nghttp2_session_callbacks_del(cbs);
	assert_int_equal(nghttp2_submit_settings(r->ngh, NGHTTP2_FLAG_NONE,
	    NULL, 0), 0);
	nva[n++] = RNV(":method", method);
	nva[n++] = RNV(":scheme", "http");
	nva[n++] = RNV(":path", path);
	nva[n++] = RNV(":authority", "localhost");
	nva[n++] = RNV("content-type", ctype);
	nva[n++] = RNV("te", "trailers");
	assert_true(r->xcount <= 8);
	if (r->xcount > 0) {
		xval = malloc(r->xlen + 1);
		assert_non_null(xval);
		memset(xval, 'v', r->xlen);
		xval[r->xlen] = '\0';
	}
	for (i = 0; i < r->xcount; i++) {
		snprintf(xnames[i], sizeof(xnames[i]), "x-big-%d", i);
		nva[n++] = RNV(xnames[i], xval);
	}
	assert_true(blen <= sizeof(r->body));
	memcpy(r->body, body, blen);
	r->body_len = blen;
	prd.source.ptr = r;
	prd.read_callback = raw_body_cb;
	assert_true(nghttp2_submit_request(r->ngh, NULL, nva, n, &prd, r) > 0);
	free(xval);
	raw_h2_flush(r);
}

/* ---- tests ------------------------------------------------------------- */

static void
unary_metadata_on(enum tr tr)
{
	struct fx		 f;
	struct rpc_channel	*ch;
	struct cres		 r;
	const struct chdr	*h;
	static const uint8_t	 bin[] = { 0x00, 0xff, 0x10, '\n', 0x80 };
	char			 uid[32];

	fx_start(&f, NULL);
	ch = open_ch(&f, tr, 0);
	memset(&r, 0, sizeof(r));
	start_call(&f, ch, P_UNARY, 5000, S_("hello"), 1, &r, 3,
	    "x-echo-text", S_("some value"),
	    "x-echo-data-bin", bin, sizeof(bin),
	    "x-echo-trailer", S_("end"));
	run_until(&f, &r.ended, WAIT_MS);
	assert_int_equal(r.status, RPC_OK);
	assert_int_equal(r.got_headers, 1);
	assert_int_equal(r.nmsgs, 1);
	assert_string_equal((char *)r.last, "hello");
	assert_non_null(h = cres_hdr(&r, 0, "x-echo-text"));
	assert_int_equal(h->len, 10);
	assert_memory_equal(h->value, "some value", 10);
	/* Binary metadata survives base64 both ways. */
	assert_non_null(h = cres_hdr(&r, 0, "x-echo-data-bin"));
	assert_int_equal(h->len, sizeof(bin));
	assert_memory_equal(h->value, bin, sizeof(bin));
	assert_non_null(h = cres_hdr(&r, 1, "x-trailer"));
	assert_memory_equal(h->value, "end", 3);
	/* No gRPC-reserved names leak into what the caller sees. */
	assert_null(cres_hdr(&r, 1, "grpc-status"));
	assert_null(cres_hdr(&r, 0, "content-type"));
	if (tr == TR_UNIX) {
		snprintf(uid, sizeof(uid), "%u", (unsigned)getuid());
		assert_non_null(h = cres_hdr(&r, 0, "x-peer-uid"));
		assert_int_equal(h->len, strlen(uid));
		assert_memory_equal(h->value, uid, strlen(uid));
	} else
		assert_null(cres_hdr(&r, 0, "x-peer-uid"));
	if (tr == TR_TLS) {
		assert_non_null(h = cres_hdr(&r, 0, "x-peer-id"));
		assert_int_equal(h->len, strlen(ID_CLIENT));
		assert_memory_equal(h->value, ID_CLIENT, strlen(ID_CLIENT));
		assert_non_null(rpc_channel_peer_id(ch));
		assert_string_equal(rpc_channel_peer_id(ch), ID_SERVER);
	} else
		assert_null(cres_hdr(&r, 0, "x-peer-id"));
	cres_free(&r);
	/* An empty message is a message too. */
	memset(&r, 0, sizeof(r));
	start_call(&f, ch, P_UNARY, -1, (const uint8_t *)"", 0, 1, &r, 0);
	run_until(&f, &r.ended, WAIT_MS);
	assert_int_equal(r.status, RPC_OK);
	assert_int_equal(r.nmsgs, 1);
	assert_int_equal(r.lastlen, 0);
	cres_free(&r);
	close_ch(&f, ch);
	fx_finish(&f);
	assert_int_equal(S.done[RPC_END_FINISHED], 2);
}

static void
test_unary_unix(void **state)
{
	unary_metadata_on(TR_UNIX);
}

static void
test_unary_tcp(void **state)
{
	unary_metadata_on(TR_TCP);
}

static void
test_unary_tls(void **state)
{
	unary_metadata_on(TR_TLS);
}

/* A client certificate from a foreign CA never gets a call through. */
static void
test_tls_foreign_client(void **state)
{
	struct fx		 f;
	struct rpc_channel	*ch = NULL;
	struct tls_ctx		*bad;
	struct cres		 r;
	char			 target[64];

	fx_start(&f, NULL);
	bad = make_tls(TLS_ROLE_CLIENT, pki.ocli, pki.oclik, pki.ca);
	snprintf(target, sizeof(target), "127.0.0.1:%d", f.tls_port);
	assert_int_equal(rpc_channel_new(&f.loop, target, bad, 0, &ch), 0);
	memset(&r, 0, sizeof(r));
	start_call(&f, ch, P_UNARY, 5000, S_("x"), 1, &r, 0);
	run_until(&f, &r.ended, WAIT_MS);
	assert_int_equal(r.status, RPC_UNAVAILABLE);
	assert_int_equal(S.starts, 0);
	cres_free(&r);
	close_ch(&f, ch);
	tls_ctx_free(bad);
	fx_finish(&f);
}

static void
test_status_and_message(void **state)
{
	struct fx		 f;
	struct rpc_channel	*ch;
	struct cres		 r;
	const char		*text = "bad \"thing\" 100% caf\xc3\xa9\n";

	fx_start(&f, NULL);
	ch = open_ch(&f, TR_UNIX, 0);
	memset(&r, 0, sizeof(r));
	start_call(&f, ch, P_UNARY, 5000, S_("x"), 1, &r, 3,
	    "x-mode", S_("status"), "x-status", S_("7"),
	    "x-message-bin", S_(text));
	run_until(&f, &r.ended, WAIT_MS);
	/* Trailers-only response: the status arrives, no message. */
	assert_int_equal(r.status, RPC_PERMISSION_DENIED);
	assert_string_equal(r.msg, text);
	assert_int_equal(r.nmsgs, 0);
	assert_int_equal(r.got_headers, 0);
	assert_non_null(cres_hdr(&r, 1, "x-why"));
	assert_null(cres_hdr(&r, 0, "x-why"));
	cres_free(&r);
	/* Reserved names are refused to handlers. */
	memset(&r, 0, sizeof(r));
	start_call(&f, ch, P_UNARY, 5000, S_("x"), 1, &r, 1,
	    "x-mode", S_("reserved"));
	run_until(&f, &r.ended, WAIT_MS);
	assert_int_equal(r.status, RPC_OK);
	assert_int_equal(S.reserved_refused, 7);
	cres_free(&r);
	/* Unknown method. */
	memset(&r, 0, sizeof(r));
	start_call(&f, ch, "/wick.test.T/Nope", 5000, S_("x"), 1, &r, 0);
	run_until(&f, &r.ended, WAIT_MS);
	assert_int_equal(r.status, RPC_UNIMPLEMENTED);
	cres_free(&r);
	close_ch(&f, ch);
	fx_finish(&f);
}

static void
test_server_stream_backpressure(void **state)
{
	struct fx		 f;
	struct rpc_channel	*ch;
	struct cres		 r;
	/* 600 messages of 4 KiB: more than the per-call queue holds. */
	static const uint8_t	 req[8] = { 0, 0, 0x02, 0x58, 0, 0, 0x10, 0 };

	fx_start(&f, NULL);
	ch = open_ch(&f, TR_TCP, 0);
	memset(&r, 0, sizeof(r));
	r.check_seq = 1;
	start_call(&f, ch, P_STREAM, 10000, req, sizeof(req), 1, &r, 0);
	run_until(&f, &r.ended, 10000);
	assert_int_equal(r.status, RPC_OK);
	assert_string_equal(r.msg, "done");
	assert_int_equal(r.nmsgs, 600);
	assert_false(r.seq_bad);
	assert_int_equal(r.lastlen, 4096 + 4);
	assert_true(S.again > 0);	/* the handler was paced */
	cres_free(&r);
	close_ch(&f, ch);
	fx_finish(&f);
}

static void
test_bidi(void **state)
{
	struct fx		 f;
	struct rpc_channel	*ch;
	struct cres		 r;

	fx_start(&f, NULL);
	ch = open_ch(&f, TR_TLS, 0);
	memset(&r, 0, sizeof(r));
	r.bidi_left = 10;
	start_call(&f, ch, P_BIDI, 5000, S_("ping 10"), 0, &r, 0);
	run_until(&f, &r.ended, WAIT_MS);
	assert_int_equal(r.status, RPC_OK);
	assert_int_equal(r.nmsgs, 10);
	assert_string_equal((char *)r.last, "ping 1");
	cres_free(&r);
	/*
	 * The server ends the call while the client still sends: the handler
	 * hears on_done at once (the stream is reset with NO_ERROR).
	 */
	memset(&r, 0, sizeof(r));
	start_call(&f, ch, P_BIDI, 5000, S_("fail"), 0, &r, 0);
	run_until(&f, &r.ended, WAIT_MS);
	assert_int_equal(r.status, RPC_FAILED_PRECONDITION);
	assert_string_equal(r.msg, "asked to fail");
	run_until(&f, &S.done[RPC_END_FINISHED], WAIT_MS);
	assert_int_equal(S.done[RPC_END_FINISHED], 2);
	cres_free(&r);
	close_ch(&f, ch);
	/* The same from a client that would keep its side open forever. */
	{
		static const uint8_t fail[] = { 0, 0, 0, 0, 4, 'f', 'a', 'i',
		    'l' };
		struct raw raw;

		raw_open(&f, &raw, 1);
		raw.keep_open = 1;
		raw_h2_request(&raw, "POST", P_BIDI, "application/grpc", fail,
		    sizeof(fail));
		run_until(&f, &raw.stream_closed, WAIT_MS);
		assert_int_equal(raw.grpc_status, RPC_FAILED_PRECONDITION);
		assert_int_equal(raw.close_code, NGHTTP2_NO_ERROR);
		assert_int_equal(S.done[RPC_END_FINISHED], 3);
		raw_close(&raw);
	}
	fx_finish(&f);
}

static void
test_deadline(void **state)
{
	struct fx		 f;
	struct rpc_channel	*ch;
	struct cres		 r;
	uint64_t		 t0;

	fx_start(&f, NULL);
	ch = open_ch(&f, TR_UNIX, 0);
	/* Enforced by the server: grpc-timeout sent, no local deadline. */
	memset(&r, 0, sizeof(r));
	t0 = uv_now(&f.loop);
	start_call(&f, ch, P_HANG, -1, NULL, 0, 0, &r, 1,
	    "grpc-timeout", S_("150m"));
	run_until(&f, &r.ended, WAIT_MS);
	assert_int_equal(r.status, RPC_DEADLINE_EXCEEDED);
	assert_true(uv_now(&f.loop) - t0 >= 140);
	assert_int_equal(S.done[RPC_END_DEADLINE], 1);
	cres_free(&r);
	/* Enforced by the client too (it sends the timeout). */
	memset(&r, 0, sizeof(r));
	t0 = uv_now(&f.loop);
	start_call(&f, ch, P_HANG, 100, NULL, 0, 0, &r, 0);
	run_until(&f, &r.ended, WAIT_MS);
	assert_int_equal(r.status, RPC_DEADLINE_EXCEEDED);
	assert_true(uv_now(&f.loop) - t0 >= 90);
	cres_free(&r);
	/* The unary handler sleeps past the deadline: its timer is stopped. */
	memset(&r, 0, sizeof(r));
	start_call(&f, ch, P_UNARY, -1, S_("late"), 1, &r, 3,
	    "x-mode", S_("sleep"), "x-sleep", S_("300"),
	    "grpc-timeout", S_("100000u"));
	run_until(&f, &r.ended, WAIT_MS);
	assert_int_equal(r.status, RPC_DEADLINE_EXCEEDED);
	run_for(&f, 400);
	assert_int_equal(S.timer_fired, 0);
	assert_int_equal(S.done[RPC_END_DEADLINE] +
	    S.done[RPC_END_CANCELLED], 3);
	cres_free(&r);
	unary_ok(&f, ch, "after deadlines");
	close_ch(&f, ch);
	fx_finish(&f);
}

static void
test_cancel(void **state)
{
	struct fx		 f;
	struct rpc_channel	*ch;
	struct cres		 r;
	/* 40 MB: far more than flow control lets through at once */
	static const uint8_t	 req[8] = { 0, 0, 0x27, 0x10, 0, 0, 0x10, 0 };

	fx_start(&f, NULL);
	ch = open_ch(&f, TR_TCP, 0);
	memset(&r, 0, sizeof(r));
	start_call(&f, ch, P_HANG, -1, NULL, 0, 0, &r, 0);
	run_until(&f, &S.starts, WAIT_MS);
	rpc_ccall_cancel(r.call);
	assert_true(r.ended);
	assert_int_equal(r.status, RPC_CANCELLED);
	run_until(&f, &S.done[RPC_END_CANCELLED], WAIT_MS);
	cres_free(&r);
	/* Cancel a server stream from inside the message callback. */
	memset(&r, 0, sizeof(r));
	r.cancel_after = 3;
	start_call(&f, ch, P_STREAM, -1, req, sizeof(req), 1, &r, 0);
	run_until(&f, &r.ended, WAIT_MS);
	assert_int_equal(r.status, RPC_CANCELLED);
	assert_int_equal(r.nmsgs, 3);
	cres_free(&r);
	unary_ok(&f, ch, "still fine");
	close_ch(&f, ch);
	fx_finish(&f);
	assert_int_equal(S.done[RPC_END_CANCELLED], 2);
}

static void
test_message_limits(void **state)
{
	struct rpc_server_opts	 opts;
	struct fx		 f;
	struct rpc_channel	*ch;
	struct cres		 r;
	uint8_t			 big[2000];

	memset(&opts, 0, sizeof(opts));
	opts.known.max_message = 1024;
	fx_start(&f, &opts);
	ch = open_ch(&f, TR_UNIX, 1500);
	memset(big, 'x', sizeof(big));
	memset(&r, 0, sizeof(r));
	start_call(&f, ch, P_UNARY, 5000, big, sizeof(big), 1, &r, 0);
	run_until(&f, &r.ended, WAIT_MS);
	assert_int_equal(r.status, RPC_RESOURCE_EXHAUSTED);
	assert_non_null(strstr(r.msg, "2000"));
	assert_non_null(strstr(r.msg, "1024"));
	cres_free(&r);
	/* At the limit exactly it passes. */
	memset(&r, 0, sizeof(r));
	start_call(&f, ch, P_UNARY, 5000, big, 1024, 1, &r, 0);
	run_until(&f, &r.ended, WAIT_MS);
	assert_int_equal(r.status, RPC_OK);
	assert_int_equal(r.lastlen, 1024);
	cres_free(&r);
	/* The client's own receive limit. */
	memset(&r, 0, sizeof(r));
	start_call(&f, ch, P_UNARY, 5000, S_("x"), 1, &r, 2,
	    "x-mode", S_("big"), "x-size", S_("3000"));
	run_until(&f, &r.ended, WAIT_MS);
	assert_int_equal(r.status, RPC_RESOURCE_EXHAUSTED);
	assert_non_null(strstr(r.msg, "3000"));
	assert_non_null(strstr(r.msg, "1500"));
	assert_int_equal(r.nmsgs, 0);
	cres_free(&r);
	unary_ok(&f, ch, "small");
	close_ch(&f, ch);
	fx_finish(&f);
}

static void
test_concurrent_calls(void **state)
{
	struct fx		 f;
	struct rpc_channel	*ch;
	struct cres		 r[20];
	char			 text[20][16];
	int			 i, all;

	fx_start(&f, NULL);
	ch = open_ch(&f, TR_TLS, 0);
	memset(r, 0, sizeof(r));
	for (i = 0; i < 20; i++) {
		snprintf(text[i], sizeof(text[i]), "call %d", i);
		start_call(&f, ch, P_UNARY, 5000, S_(text[i]), 1, &r[i], 2,
		    "x-mode", S_("sleep"), "x-sleep", S_(i % 2 ? "50" : "10"));
	}
	for (i = 0; i < 20; i++)
		run_until(&f, &r[i].ended, WAIT_MS);
	for (all = 1, i = 0; i < 20; i++) {
		all &= r[i].status == RPC_OK;
		assert_string_equal((char *)r[i].last, text[i]);
		cres_free(&r[i]);
	}
	assert_true(all);
	assert_int_equal(S.timer_fired, 20);
	close_ch(&f, ch);
	fx_finish(&f);
}

static void
wait_eof(struct raw *r)
{
	run_until(r->f, &r->eof, WAIT_MS);
}

static void
test_hostile_input(void **state)
{
	struct fx		 f;
	struct rpc_channel	*ch;
	struct raw		 raw;
	static const char	 preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
	static const char	 http1[] = "POST /wick.test.T/Unary HTTP/1.1\r\n"
	    "Host: localhost\r\nContent-Length: 0\r\n\r\n";
	static const uint8_t	 huge[] = { 0, 0xff, 0xff, 0xff, 0xff, 1, 2 };
	static const uint8_t	 zipped[] = { 1, 0, 0, 0, 1, 'x' };
	static const uint8_t	 one[] = { 0, 0, 0, 0, 1, 'x' };
	uint8_t			 junk[512];
	size_t			 i;

	fx_start(&f, NULL);
	ch = open_ch(&f, TR_UNIX, 0);
	unary_ok(&f, ch, "before");

	/* Garbage bytes: the connection is dropped. */
	for (i = 0; i < sizeof(junk); i++)
		junk[i] = (uint8_t)(i * 37 + 11);
	raw_open(&f, &raw, 1);
	raw_send(&raw, junk, sizeof(junk));
	wait_eof(&raw);
	raw_close(&raw);
	unary_ok(&f, ch, "after garbage");

	/* An HTTP/1.1 request: the preface check fails, the server closes. */
	raw_open(&f, &raw, 1);
	raw_send(&raw, http1, strlen(http1));
	wait_eof(&raw);
	raw_close(&raw);

	/* A truncated frame (preface, half a SETTINGS header), then gone. */
	raw_open(&f, &raw, 0);
	raw_send(&raw, preface, strlen(preface));
	raw_send(&raw, "\x00\x00\x06\x04", 4);
	run_for(&f, 50);
	raw_close(&raw);
	unary_ok(&f, ch, "after truncation");

	/* A 4 GiB length prefix: RESOURCE_EXHAUSTED, nothing allocated. */
	raw_open(&f, &raw, 1);
	raw_h2_request(&raw, "POST", P_UNARY, "application/grpc", huge,
	    sizeof(huge));
	run_until(&f, &raw.stream_closed, WAIT_MS);
	assert_int_equal(raw.http_status, 200);
	assert_int_equal(raw.grpc_status, RPC_RESOURCE_EXHAUSTED);
	assert_non_null(strstr(raw.grpc_message, "4294967295"));
	raw_close(&raw);

	/* A compressed message. */
	raw_open(&f, &raw, 1);
	raw_h2_request(&raw, "POST", P_UNARY, "application/grpc", zipped,
	    sizeof(zipped));
	run_until(&f, &raw.stream_closed, WAIT_MS);
	assert_int_equal(raw.grpc_status, RPC_UNIMPLEMENTED);
	raw_close(&raw);

	/* Not gRPC: HTTP 415; not POST: 405; +proto is fine. */
	raw_open(&f, &raw, 1);
	raw_h2_request(&raw, "POST", P_UNARY, "text/plain", one, sizeof(one));
	run_until(&f, &raw.stream_closed, WAIT_MS);
	assert_int_equal(raw.http_status, 415);
	assert_int_equal(raw.grpc_status, -1);
	raw_close(&raw);
	raw_open(&f, &raw, 1);
	raw_h2_request(&raw, "GET", P_UNARY, "application/grpc", one,
	    sizeof(one));
	run_until(&f, &raw.stream_closed, WAIT_MS);
	assert_int_equal(raw.http_status, 405);
	raw_close(&raw);
	raw_open(&f, &raw, 1);
	raw_h2_request(&raw, "POST", P_UNARY, "application/grpc+proto", one,
	    sizeof(one));
	run_until(&f, &raw.stream_closed, WAIT_MS);
	assert_int_equal(raw.http_status, 200);
	assert_int_equal(raw.grpc_status, RPC_OK);
	raw_close(&raw);

	/* Request metadata over the limit; then a header flood. */
	raw_open(&f, &raw, 1);
	raw.xcount = 1;
	raw.xlen = RPC_MAX_METADATA + 100;
	raw_h2_request(&raw, "POST", P_UNARY, "application/grpc", one,
	    sizeof(one));
	run_until(&f, &raw.stream_closed, WAIT_MS);
	assert_int_equal(raw.grpc_status, RPC_RESOURCE_EXHAUSTED);
	raw_close(&raw);
	raw_open(&f, &raw, 1);
	raw.xcount = 5;
	raw.xlen = RPC_MAX_METADATA_FLOOD / 4;
	raw_h2_request(&raw, "POST", P_UNARY, "application/grpc", one,
	    sizeof(one));
	wait_eof(&raw);
	assert_int_equal(raw.grpc_status, -1);
	raw_close(&raw);

	/* An abrupt disconnect in the middle of a call. */
	raw_open(&f, &raw, 1);
	raw_h2_request(&raw, "POST", P_HANG, "application/grpc", one,
	    sizeof(one));
	run_until(&f, &S.hang_starts, WAIT_MS);
	raw_close(&raw);
	run_until(&f, &S.hang_done, WAIT_MS);

	unary_ok(&f, ch, "after all of it");
	close_ch(&f, ch);
	fx_finish(&f);
}

/* A client that never reads: the server's queues stay bounded. */
static void
test_client_never_reads(void **state)
{
	struct fx		 f;
	struct raw		 raw;
	struct rpc_channel	*ch;
	/* 10000 messages of 4 KiB = 40 MB if nothing held it back */
	static const uint8_t	 req[] = { 0, 0, 0, 0, 8,
	    0, 0, 0x27, 0x10, 0, 0, 0x10, 0 };
	uint32_t		 sent;

	fx_start(&f, NULL);
	raw_open(&f, &raw, 0);
	raw_h2_request(&raw, "POST", P_STREAM, "application/grpc", req,
	    sizeof(req));
	run_until(&f, &S.again, WAIT_MS);
	run_for(&f, 300);
	sent = S.stream_sent;
	run_for(&f, 300);
	/* Stalled: flow control plus the per-call queue bound. */
	assert_int_equal(S.stream_sent, sent);
	assert_true(sent < 1000);
	/* Others are still served meanwhile. */
	ch = open_ch(&f, TR_UNIX, 0);
	unary_ok(&f, ch, "served");
	close_ch(&f, ch);
	raw_close(&raw);
	run_until(&f, &S.done[RPC_END_CANCELLED], WAIT_MS);
	fx_finish(&f);
}

static void
test_connection_limits(void **state)
{
	struct rpc_server_opts	 opts;
	struct fx		 f;
	struct rpc_channel	*ch, *ch2;
	struct raw		 raw;
	struct cres		 r;
	uint64_t		 t0;

	memset(&opts, 0, sizeof(opts));
	opts.max_conns = 2;
	opts.handshake_ms = 200;
	fx_start(&f, &opts);
	ch = open_ch(&f, TR_UNIX, 0);
	unary_ok(&f, ch, "first");
	/* A connection that never speaks HTTP/2 is dropped in time. */
	t0 = uv_now(&f.loop);
	raw_open(&f, &raw, 1);
	wait_eof(&raw);
	assert_true(uv_now(&f.loop) - t0 >= 150);
	raw_close(&raw);
	/* Over the connection limit: closed at once. */
	raw_open(&f, &raw, 1);
	run_for(&f, 50);
	ch2 = open_ch(&f, TR_UNIX, 0);
	memset(&r, 0, sizeof(r));
	start_call(&f, ch2, P_UNARY, 5000, S_("x"), 1, &r, 0);
	run_until(&f, &r.ended, WAIT_MS);
	assert_int_equal(r.status, RPC_UNAVAILABLE);
	cres_free(&r);
	/* A failed channel refuses new calls at once. */
	assert_int_equal(rpc_ccall_start(ch2, P_UNARY, NULL, 0, -1, &ccbs, &r,
	    &r.call), WICK_ERR_UNAVAILABLE);
	close_ch(&f, ch2);
	raw_close(&raw);
	unary_ok(&f, ch, "still first");
	close_ch(&f, ch);
	fx_finish(&f);
}

/*
 * More connections at once than one turn of the loop accepts: the rest
 * wait for the next turns (libuv stops watching the listener meanwhile)
 * and every one is served.
 */
static void
test_accept_burst(void **state)
{
	enum { N = 3 * RPC_ACCEPT_BURST + 5 };
	struct rpc_server_stats	 st;
	struct fx		 f;
	struct rpc_channel	*ch[N];
	struct cres		*r;
	char			 text[N][16];
	int			 i;

	fx_start(&f, NULL);
	r = calloc(N, sizeof(*r));
	assert_non_null(r);
	/* Connected (a Unix connect completes in the call) and asked
	 * before the loop runs: all N wait in the listen queue together. */
	for (i = 0; i < N; i++) {
		ch[i] = open_ch(&f, TR_UNIX, 0);
		snprintf(text[i], sizeof(text[i]), "conn %d", i);
		start_call(&f, ch[i], P_UNARY, 10000, S_(text[i]), 1, &r[i],
		    0);
	}
	for (i = 0; i < N; i++)
		run_until(&f, &r[i].ended, WAIT_MS);
	for (i = 0; i < N; i++) {
		assert_int_equal(r[i].status, RPC_OK);
		assert_string_equal((char *)r[i].last, text[i]);
		cres_free(&r[i]);
	}
	rpc_server_get_stats(f.srv, &st);
	assert_true(st.accepts_deferred >= 2);
	assert_int_equal(st.connections_refused, 0);
	for (i = 0; i < N; i++)
		close_ch(&f, ch[i]);
	free(r);
	fx_finish(&f);
}

/*
 * More busy connections than one turn of the loop may read in
 * RPC_TURN_BUDGET_NS: those left are read in the next turns (their bytes
 * wait in the kernel), and every call is answered.
 */
static void
test_read_budget(void **state)
{
	enum { N = 32 };
	struct rpc_server_stats	 st;
	struct fx		 f;
	struct rpc_channel	*ch[N];
	struct cres		*r;
	char			 text[N][16];
	int			 i;

	fx_start(&f, NULL);
	r = calloc(N, sizeof(*r));
	assert_non_null(r);
	for (i = 0; i < N; i++) {
		ch[i] = open_ch(&f, TR_UNIX, 0);
		unary_ok(&f, ch[i], "connected");
	}
	rpc_server_get_stats(f.srv, &st);
	assert_int_equal(st.reads_deferred, 0);
	/* Asked before the loop runs again: all N are ready together, and
	 * each call holds the loop 1 ms. */
	for (i = 0; i < N; i++) {
		snprintf(text[i], sizeof(text[i]), "busy %d", i);
		start_call(&f, ch[i], P_UNARY, 10000, S_(text[i]), 1, &r[i],
		    2, "x-mode", S_("spin"), "x-spin", S_("1000"));
	}
	for (i = 0; i < N; i++)
		run_until(&f, &r[i].ended, WAIT_MS);
	for (i = 0; i < N; i++) {
		assert_int_equal(r[i].status, RPC_OK);
		assert_string_equal((char *)r[i].last, text[i]);
		cres_free(&r[i]);
	}
	rpc_server_get_stats(f.srv, &st);
	assert_true(st.reads_deferred >= 1);
	/* Put off, not dropped: every connection still works. */
	for (i = 0; i < N; i++) {
		unary_ok(&f, ch[i], "still here");
		close_ch(&f, ch[i]);
	}
	free(r);
	fx_finish(&f);
}

static void
idle_timer_cb(uv_timer_t *t)
{
}

/*
 * A server whose listen failed is freed without a shutdown (as a daemon
 * does when its socket cannot be made): its handles are closed and the
 * memory goes when the loop next runs, leaving nothing behind (under
 * ASan, a callback into the freed server would be reported).
 */
static void
test_free_after_failed_listen(void **state)
{
	struct rpc_server_opts	 opts;
	struct rpc_server	*srv;
	uv_loop_t		 loop;
	uv_timer_t		 t;
	int			 i;

	assert_int_equal(uv_loop_init(&loop), 0);
	memset(&opts, 0, sizeof(opts));
	opts.hold_peer_status = 1;
	assert_int_equal(rpc_server_new(&loop, &opts, methods,
	    sizeof(methods) / sizeof(methods[0]), &srv), 0);
	assert_int_not_equal(rpc_server_listen_unix(srv,
	    "/nonexistent-wick-test-dir/s.sock", 0700), 0);
	rpc_server_free(srv);
	/* Another handle keeps the loop turning, as a daemon's would. */
	assert_int_equal(uv_timer_init(&loop, &t), 0);
	assert_int_equal(uv_timer_start(&t, idle_timer_cb, 1000, 0), 0);
	for (i = 0; i < 5; i++)
		(void)uv_run(&loop, UV_RUN_NOWAIT);
	uv_close((uv_handle_t *)&t, NULL);
	(void)uv_run(&loop, UV_RUN_DEFAULT);
	assert_int_equal(uv_loop_close(&loop), 0);
}

/* The HTTP/2 preface and SETTINGS, and no call. */
static void
raw_h2_hello(struct raw *r)
{
	nghttp2_session_callbacks	*cbs;

	assert_int_equal(nghttp2_session_callbacks_new(&cbs), 0);
	assert_int_equal(nghttp2_session_client_new(&r->ngh, cbs, r), 0);
	nghttp2_session_callbacks_del(cbs);
	assert_int_equal(nghttp2_submit_settings(r->ngh, NGHTTP2_FLAG_NONE,
	    NULL, 0), 0);
	raw_h2_flush(r);
}

/* A unary call whose message declares declared bytes and sends sent. */
static void
raw_partial_call(struct raw *r, uint32_t declared, size_t sent)
{
	uint8_t b[64];

	assert_true(sent + 5 <= sizeof(b));
	memset(b, 'x', sizeof(b));
	b[0] = 0;
	b[1] = (uint8_t)(declared >> 24);
	b[2] = (uint8_t)(declared >> 16);
	b[3] = (uint8_t)(declared >> 8);
	b[4] = (uint8_t)declared;
	r->keep_open = 1;
	raw_h2_request(r, "POST", P_UNARY, "application/grpc", b, 5 + sent);
}

/* A connection that speaks HTTP/2 but starts no call is dropped after
 * first_call_ms; one that never speaks, after handshake_ms. */
static void
test_first_call_timeout(void **state)
{
	struct rpc_server_opts	 opts;
	struct rpc_server_stats	 st;
	struct fx		 f;
	struct raw		 raw;
	uint64_t		 t0;

	memset(&opts, 0, sizeof(opts));
	opts.first_call_ms = 150;
	opts.handshake_ms = 100;
	fx_start(&f, &opts);
	t0 = uv_now(&f.loop);
	raw_open(&f, &raw, 1);
	raw_h2_hello(&raw);
	wait_eof(&raw);
	assert_true(uv_now(&f.loop) - t0 >= 140);
	raw_close(&raw);
	raw_open(&f, &raw, 1);
	wait_eof(&raw);
	raw_close(&raw);
	rpc_server_get_stats(f.srv, &st);
	assert_int_equal(st.connections_timed_out, 2);
	fx_finish(&f);
}

/* A request message begun and never finished ends the call after
 * message_ms, and what it held is released. */
static void
test_message_timeout(void **state)
{
	struct rpc_server_opts	 opts;
	struct rpc_server_stats	 st;
	struct fx		 f;
	struct raw		 raw;

	memset(&opts, 0, sizeof(opts));
	opts.message_ms = 100;
	fx_start(&f, &opts);
	raw_open(&f, &raw, 1);
	raw_partial_call(&raw, 1000, 10);
	run_until(&f, &raw.stream_closed, WAIT_MS);
	assert_int_equal(raw.grpc_status, RPC_RESOURCE_EXHAUSTED);
	assert_non_null(strstr(raw.grpc_message, "not complete after 100"));
	rpc_server_get_stats(f.srv, &st);
	assert_int_equal(st.messages_timed_out, 1);
	raw_close(&raw);
	run_for(&f, 50);
	rpc_server_get_stats(f.srv, &st);
	assert_int_equal(st.bytes_held, 0);
	fx_finish(&f);
}

/*
 * Budgets: a connection holds a partial message; a second connection of
 * the same peer (uid) cannot hold another past the peer's budget, and is
 * told which budget said no; once the first is gone, it can.
 */
static void
test_budgets(void **state)
{
	struct rpc_server_opts	 opts;
	struct rpc_server_stats	 st;
	struct fx		 f;
	struct raw		 a, b;

	memset(&opts, 0, sizeof(opts));
	opts.known.max_message = 1000;
	opts.known.conn_budget = 4000;
	opts.known.peer_budget = 2500;
	fx_start(&f, &opts);
	raw_open(&f, &a, 1);
	raw_partial_call(&a, 900, 10);
	run_for(&f, 50);
	rpc_server_get_stats(f.srv, &st);
	assert_true(st.bytes_held > 905 && st.bytes_held < 2500);
	raw_open(&f, &b, 1);
	raw_partial_call(&b, 900, 10);
	run_until(&f, &b.stream_closed, WAIT_MS);
	assert_int_equal(b.grpc_status, RPC_RESOURCE_EXHAUSTED);
	assert_non_null(strstr(b.grpc_message, "peer budget of 2500"));
	raw_close(&b);
	/* Over the message limit: refused before any budget. */
	raw_open(&f, &b, 1);
	raw_partial_call(&b, 1001, 10);
	run_until(&f, &b.stream_closed, WAIT_MS);
	assert_int_equal(b.grpc_status, RPC_RESOURCE_EXHAUSTED);
	assert_non_null(strstr(b.grpc_message, "exceeds the limit of 1000"));
	raw_close(&b);
	raw_close(&a);
	run_for(&f, 50);
	rpc_server_get_stats(f.srv, &st);
	assert_int_equal(st.bytes_held, 0);
	assert_int_equal(st.budget_refusals, 1);
	raw_open(&f, &b, 1);
	raw_partial_call(&b, 900, 10);
	run_for(&f, 50);
	assert_int_equal(b.stream_closed, 0);
	raw_close(&b);
	fx_finish(&f);
}

/*
 * A peer that asks and asks but never reads: its answers pile up to the
 * output limit, then nothing more is read, and after stall_ms without
 * progress the connection goes.
 */
static void
test_stalled_output(void **state)
{
	struct rpc_server_opts	 opts;
	struct rpc_server_stats	 st;
	struct fx		 f;
	struct raw		 raw;
	nghttp2_nv		 nva[5];
	int			 i;

	memset(&opts, 0, sizeof(opts));
	opts.known.max_output = 4096;
	opts.stall_ms = 200;
	fx_start(&f, &opts);
	raw_open(&f, &raw, 0);
	raw_h2_request(&raw, "POST", "/no.Such/Method", "application/grpc",
	    "", 0);
	nva[0] = RNV(":method", "POST");
	nva[1] = RNV(":scheme", "http");
	nva[2] = RNV(":path", "/no.Such/Method");
	nva[3] = RNV(":authority", "localhost");
	nva[4] = RNV("content-type", "application/grpc");
	for (i = 0; i < 40000; i++)
		assert_true(nghttp2_submit_request(raw.ngh, NULL, nva, 5, NULL,
		    NULL) > 0);
	raw_h2_flush(&raw);
	raw.reading = 1;
	run_for(&f, 1500);
	rpc_server_get_stats(f.srv, &st);
	assert_int_equal(st.connections_timed_out, 1);
	assert_int_equal(st.connections_active, 0);
	raw_close(&raw);
	fx_finish(&f);
}

/* A header block begun and never finished: the connection goes after
 * message_ms (nothing else may come on it). */
static void
test_unfinished_headers(void **state)
{
	struct rpc_server_opts	 opts;
	struct rpc_server_stats	 st;
	struct fx		 f;
	struct raw		 raw;
	static const char	 preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
	/* SETTINGS (empty), then HEADERS on stream 1 without END_HEADERS
	 * carrying ":method: POST" (static table index 3). */
	static const uint8_t	 frames[] = {
	    0, 0, 0, 0x4, 0, 0, 0, 0, 0,
	    0, 0, 1, 0x1, 0, 0, 0, 0, 1, 0x83 };

	memset(&opts, 0, sizeof(opts));
	opts.message_ms = 100;
	fx_start(&f, &opts);
	raw_open(&f, &raw, 1);
	raw_send(&raw, preface, strlen(preface));
	raw_send(&raw, frames, sizeof(frames));
	wait_eof(&raw);
	rpc_server_get_stats(f.srv, &st);
	assert_int_equal(st.connections_timed_out, 1);
	raw_close(&raw);
	fx_finish(&f);
}

/*
 * A streaming call waiting for the peer's next message (rpc_call_hold,
 * rpc_call_await_message): what it holds is charged, and it ends after
 * message_ms without that message.
 */
static void
test_await_message(void **state)
{
	struct rpc_server_opts	 opts;
	struct rpc_server_stats	 st;
	struct fx		 f;
	struct rpc_channel	*ch;
	struct cres		 r;

	memset(&opts, 0, sizeof(opts));
	opts.message_ms = 100;
	fx_start(&f, &opts);
	ch = open_ch(&f, TR_UNIX, 0);
	memset(&r, 0, sizeof(r));
	start_call(&f, ch, P_BIDI, 5000, S_("wait"), 0, &r, 0);
	run_until(&f, &r.nmsgs, WAIT_MS);
	rpc_server_get_stats(f.srv, &st);
	assert_true(st.bytes_held >= 1000);
	run_until(&f, &r.ended, WAIT_MS);
	assert_int_equal(r.status, RPC_RESOURCE_EXHAUSTED);
	rpc_server_get_stats(f.srv, &st);
	assert_int_equal(st.messages_timed_out, 1);
	cres_free(&r);
	close_ch(&f, ch);
	run_for(&f, 50);
	rpc_server_get_stats(f.srv, &st);
	assert_int_equal(st.bytes_held, 0);
	fx_finish(&f);
}

/*
 * A full server: a peer holding the most connections loses its oldest to
 * a newcomer; a peer cannot push out one that holds fewer than itself;
 * and no peer holds more than its share.
 */
static void
test_fair_share(void **state)
{
	struct rpc_server_opts	 opts;
	struct rpc_server_stats	 st;
	struct fx		 f;
	struct raw		 a[4], b, c;
	int			 i;

	memset(&opts, 0, sizeof(opts));
	opts.max_conns = 4;
	opts.known.max_conns = 4;
	fx_start(&f, &opts);
	for (i = 0; i < 4; i++)
		raw_open_tcp(&f, &a[i], "127.0.0.2");
	run_for(&f, 50);
	/* Full: the newcomer gets in, a's oldest goes. */
	raw_open_tcp(&f, &b, "127.0.0.3");
	wait_eof(&a[0]);
	run_for(&f, 50);
	assert_int_equal(b.eof, 0);
	for (i = 1; i < 4; i++)
		assert_int_equal(a[i].eof, 0);
	/* a (3) cannot push out b (1): refused. */
	raw_open_tcp(&f, &c, "127.0.0.2");
	wait_eof(&c);
	assert_int_equal(b.eof, 0);
	rpc_server_get_stats(f.srv, &st);
	assert_int_equal(st.connections_evicted, 1);
	assert_int_equal(st.connections_refused, 1);
	raw_close(&c);
	raw_close(&b);
	for (i = 0; i < 4; i++)
		raw_close(&a[i]);
	/* Over the per-peer share (2 of 4): refused though there is room. */
	fx_finish(&f);
	opts.known.max_conns = 2;
	fx_start(&f, &opts);
	raw_open_tcp(&f, &a[0], "127.0.0.2");
	raw_open_tcp(&f, &a[1], "127.0.0.2");
	raw_open_tcp(&f, &a[2], "127.0.0.2");
	wait_eof(&a[2]);
	run_for(&f, 50);
	assert_int_equal(a[0].eof, 0);
	assert_int_equal(a[1].eof, 0);
	for (i = 0; i < 3; i++)
		raw_close(&a[i]);
	fx_finish(&f);
}

/* Shutdown: GOAWAY, the open call finishes, new ones are refused. */
static void
test_shutdown_graceful(void **state)
{
	struct fx		 f;
	struct rpc_channel	*ch;
	struct cres		 r, r2;

	fx_start(&f, NULL);
	ch = open_ch(&f, TR_UNIX, 0);
	memset(&r, 0, sizeof(r));
	start_call(&f, ch, P_UNARY, 5000, S_("last one"), 1, &r, 2,
	    "x-mode", S_("sleep"), "x-sleep", S_("300"));
	run_until(&f, &S.starts, WAIT_MS);
	fx_shutdown(&f, 3000);
	/* Started before the client saw the GOAWAY: refused by the server. */
	memset(&r2, 0, sizeof(r2));
	start_call(&f, ch, P_UNARY, 5000, S_("too late"), 1, &r2, 0);
	run_until(&f, &r2.ended, WAIT_MS);
	assert_int_equal(r2.status, RPC_UNAVAILABLE);
	assert_false(r.ended);
	run_until(&f, &r.ended, WAIT_MS);
	assert_int_equal(r.status, RPC_OK);
	assert_string_equal((char *)r.last, "last one");
	cres_free(&r);
	cres_free(&r2);
	/* The server closes the connection once the call is over. */
	run_until(&f, &f.srv_done, WAIT_MS);
	run_for(&f, 100);
	assert_int_equal(rpc_ccall_start(ch, P_UNARY, NULL, 0, -1, &ccbs, &r,
	    &r.call), WICK_ERR_UNAVAILABLE);
	close_ch(&f, ch);
	fx_finish(&f);
	assert_int_equal(S.done[RPC_END_FINISHED], 1);
}

/* Shutdown whose grace period ends: the hanging call is ended with
 * UNAVAILABLE and its handler sees it cancelled. */
static void
test_shutdown_grace_expires(void **state)
{
	struct fx		 f;
	struct rpc_channel	*ch;
	struct cres		 r;

	fx_start(&f, NULL);
	ch = open_ch(&f, TR_TLS, 0);
	memset(&r, 0, sizeof(r));
	start_call(&f, ch, P_HANG, -1, NULL, 0, 0, &r, 0);
	run_until(&f, &S.starts, WAIT_MS);
	fx_shutdown(&f, 100);
	run_until(&f, &r.ended, WAIT_MS);
	assert_int_equal(r.status, RPC_UNAVAILABLE);
	/* A status in trailers, not a connection gone from under it. */
	assert_string_equal(r.msg, "server shutting down");
	assert_int_equal(S.done[RPC_END_CANCELLED], 1);
	cres_free(&r);
	close_ch(&f, ch);
	fx_finish(&f);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_unary_unix),
		cmocka_unit_test(test_unary_tcp),
		cmocka_unit_test(test_unary_tls),
		cmocka_unit_test(test_tls_foreign_client),
		cmocka_unit_test(test_status_and_message),
		cmocka_unit_test(test_server_stream_backpressure),
		cmocka_unit_test(test_bidi),
		cmocka_unit_test(test_deadline),
		cmocka_unit_test(test_cancel),
		cmocka_unit_test(test_message_limits),
		cmocka_unit_test(test_concurrent_calls),
		cmocka_unit_test(test_hostile_input),
		cmocka_unit_test(test_client_never_reads),
		cmocka_unit_test(test_connection_limits),
		cmocka_unit_test(test_accept_burst),
		cmocka_unit_test(test_read_budget),
		cmocka_unit_test(test_free_after_failed_listen),
		cmocka_unit_test(test_first_call_timeout),
		cmocka_unit_test(test_message_timeout),
		cmocka_unit_test(test_budgets),
		cmocka_unit_test(test_fair_share),
		cmocka_unit_test(test_stalled_output),
		cmocka_unit_test(test_unfinished_headers),
		cmocka_unit_test(test_await_message),
		cmocka_unit_test(test_shutdown_graceful),
		cmocka_unit_test(test_shutdown_grace_expires),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, setup_pki, teardown_pki);
}
