/*
 * rpc_server.c: gRPC server over nghttp2 on a libuv loop.
 *
 * Ownership: the server owns its listeners and connections; a connection
 * owns its nghttp2 session, its TLS state and its calls.  A connection is
 * freed only from the close callback of its last libuv handle.  A call is
 * allocated when a request's headers begin and freed when its stream
 * closes (or its connection goes away); the handler is told once, through
 * on_done, before that.
 */
#include <sys/queue.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <nghttp2/nghttp2.h>
#include <uv.h>

#include "buf.h"
#include "log.h"
#include "peercred.h"
#include "rpc.h"
#include "rpc_frame.h"
#include "rpc_int.h"
#include "rpc_io.h"
#include "tls.h"
#include "xmalloc.h"

#ifndef TAILQ_FOREACH_SAFE
#define TAILQ_FOREACH_SAFE(var, head, field, tvar)			\
	for ((var) = TAILQ_FIRST(head);					\
	    (var) != NULL && ((tvar) = TAILQ_NEXT(var, field), 1);	\
	    (var) = (tvar))
#endif

#define RPC_READ_CHUNK		(64 * 1024)
#define RPC_WRITE_CHUNK		(64 * 1024)
#define RPC_MAX_STREAM_RESETS	1000	/* per second, per connection */
#define RPC_FRAME_HDLEN		9	/* an HTTP/2 frame header */
#define RPC_SWEEP_MS		1000	/* message and anonymous timeouts */
#define RPC_MD_CHARGE		32	/* per entry, as HTTP/2 counts */
#define RPC_SPARE_FDS		128	/* kept for files, the datastore */
#define RPC_MAX_FDS		65536	/* the most we raise the limit to */

struct rpc_conn;
struct peer_acct;

struct rpc_call {
	TAILQ_ENTRY(rpc_call)	 entry;
	struct rpc_conn		*conn;
	const struct rpc_method	*method;
	int32_t			 stream_id;
	void			*data;

	/* Request headers as they arrive. */
	char			*path;
	int			 is_post;
	int			 content_type_ok;
	int			 has_content_type;
	int			 bad_encoding;
	int64_t			 timeout_ms;	/* -1: none */
	uint64_t		 deadline;	/* uv_now() ms, 0: none */
	struct rpc_md		*md;		/* grown to
						   RPC_MAX_METADATA_ENTRIES */
	size_t			 nmd;
	size_t			 md_bytes;
	int			 md_overflow;

	/* Request message decoding, and what it holds. */
	struct rpc_frame_dec	 dec;
	uint32_t		 nmsgs;
	size_t			 held;		/* charged to the budgets */
	size_t			 msg_held;	/* of which the message */
	const char		*over_budget;	/* which one, at start */
	uint64_t		 msg_since;	/* a message is awaited since;
						   0: none */
	uint64_t		 begun_at;	/* its HEADERS began */
	uint64_t		 begun_ns;	/* the same, uv_hrtime() */
	int			 observed;	/* opts.observe hears its end */
	uint64_t		 recv;		/* DATA bytes received */
	uint64_t		 acked;		/* ... given back to the
						   flow-control windows */

	/* Response. */
	struct rpc_md		*out_hdrs;
	size_t			 nout_hdrs;
	struct rpc_md		*out_trls;
	size_t			 nout_trls;
	struct buf		 out;
	int			 headers_sent;
	int			 data_deferred;
	int			 finished;	/* status decided */
	int			 status;
	char			*status_msg;	/* percent-encoded */
	char			 status_str[8];

	uv_timer_t		*timer;		/* deadline, or NULL */
	int			 timer_due;	/* to arm (conn_arm_deadlines()) */
	int			 started;	/* on_start ran */
	int			 handler_gone;	/* on_done ran */
	int			 want_writable;
	size_t			 wake_below;	/* on_writable once the queue
						   is shorter */
	int			 counted_end;

	/*
	 * Offloaded handler steps (opts.offload).  While busy, the other
	 * thread runs the handler and writes only the pend_* fields (and
	 * data, out_hdrs, out_trls, which the loop leaves alone then);
	 * the loop records what happens to the call meanwhile (dead,
	 * abort_*) and queues further steps, then applies both in
	 * rpc_job_done().
	 */
	int			 busy;
	int			 cancelled;	/* atomic: its step need not run */
	int			 dead;		/* stream or connection gone */
	enum rpc_end		 dead_why;
	struct rpc_offload	*off;		/* made at the first step */
	uint64_t		 deadline_ns;	/* uv_hrtime(), 0: none */
};

/* What an offloaded call keeps besides (struct rpc_call's comment). */
struct rpc_offload {
	struct rpc_job		*inbox;		/* steps waiting, FIFO */
	struct rpc_job		*inbox_tail;
	int			 aborted;	/* the layer ended it */
	int			 abort_status;
	char			*abort_msg;
	enum rpc_end		 abort_why;
	struct buf		 pend_out;
	int			 pend_finish;
	int			 pend_status;
	char			*pend_msg;
	size_t			 pend_hold;
	int			 pend_await;
	int			 pend_note_set;
	uint64_t		 pend_note;
};

/* One handler step of an offloaded call. */
struct rpc_job {
	struct rpc_call		*call;
	struct rpc_job		*next;
	int			 half_close;	/* else a message */
	uint8_t			*msg;		/* a copy, wiped on free */
	size_t			 len;
	size_t			 charged;	/* to the call's budgets */
};

TAILQ_HEAD(rpc_call_list, rpc_call);

struct rpc_listener {
	union {
		uv_handle_t	 handle;
		uv_stream_t	 stream;
		uv_tcp_t	 tcp;
		uv_pipe_t	 pipe;
	} h;
	struct rpc_server	*srv;
	struct tls_ctx		*tls;
	int			 is_unix;
	int			 open;
	int			 deferred;	/* a connection waits (turn) */
	int			 relisten;	/* an accept failed (turn) */
};

struct rpc_conn {
	union {
		uv_handle_t	 handle;
		uv_stream_t	 stream;
		uv_tcp_t	 tcp;
		uv_pipe_t	 pipe;
	} h;
	uv_timer_t		 idle;
	uint64_t		 idle_from;	/* uv_now() the last call ended */
	uv_timer_t		 flush;		/* deferred flush */
	int			 flush_scheduled;
	TAILQ_ENTRY(rpc_conn)	 entry;
	TAILQ_ENTRY(rpc_conn)	 peer_entry;	/* in acct->conns */
	TAILQ_ENTRY(rpc_conn)	 defer_entry;	/* in srv->deferred */
	int			 queued;	/* in it */
	uint8_t			*stash;		/* read, handled next turn */
	size_t			 nstash;
	int			 stash_stopped;	/* unwatched while queued */
	struct rpc_server	*srv;
	struct peer_acct	*acct;		/* NULL once closing */
	int			 anon;		/* TLS, no verified peer */
	size_t			 held;		/* request bytes charged */
	uint64_t		 accepted_at;	/* uv_now() */
	uint64_t		 progress_at;	/* output last moved */
	int			 had_call;
	struct buf		*out;		/* while conn_send_pending()
						   runs */
	nghttp2_session		*ngh;
	struct tls_conn		*tls;
	struct rpc_io		 io;
	int			 handshaken;
	struct rpc_peer		 peer;
	char			*peer_id;
	struct rpc_call_list	 calls;
	size_t			 ncalls;
	size_t			 busy_calls;	/* offloaded, not yet back */
	int			 closing;
	int			 pending_closes;
	int			 goaway_sent;
	int			 in_recv;
	int			 in_flush;
	int			 read_stopped;
	int			 out_full;	/* conn_send_data_cb() said so */
	int			 established;	/* a frame came in */
	int			 deadlines_due;	/* a call's timer is to arm */
	uint64_t		 note;		/* rpc_call_set_conn_note() */
};

TAILQ_HEAD(rpc_conn_list, rpc_conn);

/*
 * A peer (a uid, a SPIFFE ID, an address) and what it holds on this
 * server: its open connections, oldest first, and request bytes.  Freed
 * when it holds nothing.
 */
struct peer_acct {
	TAILQ_ENTRY(peer_acct)	 entry;
	struct rpc_conn_list	 conns;
	uint32_t		 nconns;
	size_t			 held;
	uint32_t		 queued;	/* busy calls (offload) */
	int			 anon;
	char			 key[];
};

TAILQ_HEAD(peer_acct_list, peer_acct);

struct rpc_server {
	uv_loop_t		*loop;
	const struct rpc_method	*methods;
	size_t			 nmethods;
	struct rpc_server_opts	 opts;
	struct rpc_listener	*listeners[RPC_MAX_LISTENERS];
	size_t			 nlisteners;
	int			 listeners_open;
	struct rpc_conn_list	 conns;
	uint32_t		 nopen;		/* connections not closing */
	uint32_t		 nanon;		/* ... of which anonymous */
	struct peer_acct_list	 peers;
	struct rpc_budget	 own_budget;
	struct rpc_budget	*budget;	/* own_budget or shared */
	struct rpc_server_stats	 stats;
	nghttp2_session_callbacks *cbs;
	nghttp2_option		*ngopt;
	int			 shutting_down;
	uv_timer_t		 grace;
	uv_timer_t		 sweep;
	uv_check_t		 turn;		/* after each poll */
	uint32_t		 accepted_turn;	/* accepts since then */
	uint64_t		 turn_start;	/* its first read, uv_hrtime() */
	int			 turn_reading;	/* turn_start is set */
	struct rpc_conn_list	 deferred;	/* queued: stashed or unread,
						   oldest first */
	uv_idle_t		 resume;	/* handles them, while any */
	int			 handles_open;	/* grace, sweep, turn, resume */
	int			 grace_active;
	int			 grace_over;	/* calls ended, output flushing */
	void			(*done)(struct rpc_server *, void *);
	void			*done_arg;
	int			 done_called;
	int			 free_on_done;	/* rpc_server_free() came first */
};

static void	conn_close(struct rpc_conn *);
static void	server_turn_cb(uv_check_t *);
static void	server_resume_cb(uv_idle_t *);
static void	conn_unstash(struct rpc_conn *);
static void	server_free_now(struct rpc_server *);
static void	conn_maybe_free(struct rpc_conn *);
static void	conn_schedule_flush(struct rpc_conn *);
static void	conn_idle_cb(uv_timer_t *);
static void	conn_alloc_cb(uv_handle_t *, size_t, uv_buf_t *);
static void	conn_read_cb(uv_stream_t *, ssize_t, const uv_buf_t *);
static void	conn_flush(struct rpc_conn *);
static void	call_end_handler(struct rpc_call *, enum rpc_end);
static void	call_queue_step(struct rpc_call *, int, const uint8_t *,
		    size_t);
static void	call_abort(struct rpc_call *, enum rpc_status, const char *,
		    enum rpc_end);
static void	server_check_done(struct rpc_server *);
static int	conn_admit(struct rpc_conn *, const char *, int);

static struct log_ratelimit rl_refused = LOG_RATELIMIT_DEFAULT;
static struct log_ratelimit rl_budget = LOG_RATELIMIT_DEFAULT;
static struct log_ratelimit rl_timeout = LOG_RATELIMIT_DEFAULT;
/* Debug lines, one per call: a peer could make many. */
static struct log_ratelimit rl_calls = LOG_RATELIMIT_INIT(100, 10);

/* ---- peers and budgets ---------------------------------------------- */

static const struct rpc_limits *
conn_limits(const struct rpc_conn *c)
{
	return c->anon ? &c->srv->opts.anon : &c->srv->opts.known;
}

/* Who the connection's peer is, for logs. */
static const char *
conn_who(const struct rpc_conn *c)
{
	return c->acct != NULL ? c->acct->key : "a closing connection";
}

static struct peer_acct *
peer_get(struct rpc_server *srv, const char *key, int anon)
{
	struct peer_acct	*a;
	size_t			 n = strlen(key);

	TAILQ_FOREACH(a, &srv->peers, entry)
		if (a->anon == anon && strcmp(a->key, key) == 0)
			return a;
	if ((a = calloc(1, sizeof(*a) + n + 1)) == NULL)
		return NULL;
	TAILQ_INIT(&a->conns);
	a->anon = anon;
	memcpy(a->key, key, n + 1);
	TAILQ_INSERT_TAIL(&srv->peers, a, entry);
	return a;
}

static void
peer_put(struct rpc_server *srv, struct peer_acct *a)
{
	if (a->nconns == 0 && a->held == 0) {
		TAILQ_REMOVE(&srv->peers, a, entry);
		free(a);
	}
}

static void
conn_attach(struct rpc_conn *c, struct peer_acct *a)
{
	c->acct = a;
	TAILQ_INSERT_TAIL(&a->conns, c, peer_entry);
	a->nconns++;
}

static void
conn_detach(struct rpc_conn *c)
{
	struct peer_acct *a = c->acct;

	if (a == NULL)
		return;
	TAILQ_REMOVE(&a->conns, c, peer_entry);
	a->nconns--;
	c->srv->nopen--;
	if (a->anon)
		c->srv->nanon--;
	c->acct = NULL;
	peer_put(c->srv, a);
}

/*
 * Charge n bytes the peer makes us hold to its connection, the peer and
 * the process; WICK_ERR_LIMIT names in *what the budget that said no.
 */
static int
conn_charge(struct rpc_conn *c, size_t n, const char **what)
{
	const struct rpc_limits	*l = conn_limits(c);
	struct rpc_server	*srv = c->srv;
	struct rpc_budget	*b = srv->budget;

	if (c->acct == NULL) {
		*what = "connection";
		return WICK_ERR_STATE;
	}
	if (n > l->conn_budget || c->held > l->conn_budget - n) {
		*what = "connection";
		return WICK_ERR_LIMIT;
	}
	if (n > l->peer_budget || c->acct->held > l->peer_budget - n) {
		*what = "peer";
		return WICK_ERR_LIMIT;
	}
	if (n > b->max || b->used > b->max - n) {
		*what = "process";
		return WICK_ERR_LIMIT;
	}
	c->held += n;
	c->acct->held += n;
	b->used += n;
	if (b->used > b->peak)
		b->peak = b->used;
	srv->stats.bytes_held += n;
	if (srv->stats.bytes_held > srv->stats.bytes_held_peak)
		srv->stats.bytes_held_peak = srv->stats.bytes_held;
	return 0;
}

static void
conn_release(struct rpc_conn *c, size_t n)
{
	c->held -= n;
	if (c->acct != NULL)
		c->acct->held -= n;
	c->srv->budget->used -= n;
	c->srv->stats.bytes_held -= n;
}

/* A budget said no: the limit that applied, for the message. */
static size_t
budget_limit(const struct rpc_conn *c, const char *what)
{
	if (strcmp(what, "connection") == 0)
		return conn_limits(c)->conn_budget;
	if (strcmp(what, "peer") == 0)
		return conn_limits(c)->peer_budget;
	return c->srv->budget->max;
}

/* ---- calls ------------------------------------------------------------ */

static void
call_stop_timer(struct rpc_call *call)
{
	if (call->timer != NULL) {
		call->timer->data = NULL;
		uv_close((uv_handle_t *)call->timer, rpc_handle_free_cb);
		call->timer = NULL;
	}
}

static void
job_free(struct rpc_job *job)
{
	if (job == NULL)
		return;
	if (job->msg != NULL)
		freezero(job->msg, job->len);
	free(job);
}

static void
call_free(struct rpc_call *call)
{
	struct rpc_conn *c = call->conn;
	struct rpc_job	*job;

	call_stop_timer(call);
	if (call->off != NULL) {
		while ((job = call->off->inbox) != NULL) {
			call->off->inbox = job->next;
			job_free(job);
		}
		buf_cleanup(&call->off->pend_out);
		free(call->off->pend_msg);
		free(call->off->abort_msg);
		free(call->off);
	}
	if (call->observed && c->srv->opts.observe != NULL)
		c->srv->opts.observe(c->srv->opts.observe_arg,
		    call->method != NULL ? (size_t)(call->method -
		    c->srv->methods) : c->srv->nmethods, call->finished ?
		    call->status : RPC_CANCELLED, uv_hrtime() - call->begun_ns);
	TAILQ_REMOVE(&c->calls, call, entry);
	c->ncalls--;
	if (c->srv->stats.calls_active > 0 && call->started)
		c->srv->stats.calls_active--;
	conn_release(c, call->held);
	rpc_md_free(call->md, call->nmd);
	rpc_md_free(call->out_hdrs, call->nout_hdrs);
	rpc_md_free(call->out_trls, call->nout_trls);
	free(call->md);
	free(call->out_hdrs);
	free(call->out_trls);
	free(call->path);
	rpc_frame_cleanup(&call->dec);
	free(call->status_msg);
	buf_cleanup(&call->out);
	free(call);
	if (c->ncalls == 0)
		c->idle_from = uv_now(c->srv->loop);
}

static void
call_end_handler(struct rpc_call *call, enum rpc_end why)
{
	struct rpc_server *srv = call->conn->srv;

	if (call->handler_gone)
		return;
	call->handler_gone = 1;
	if (!call->counted_end && call->started) {
		call->counted_end = 1;
		if (why == RPC_END_CANCELLED)
			srv->stats.calls_cancelled++;
		else if (why == RPC_END_DEADLINE)
			srv->stats.deadlines_exceeded++;
		else
			srv->stats.calls_completed++;
	}
	if (call->started)
		log_debug_rl(&rl_calls, "call %s from %s ended: %s", call->path,
		    conn_who(call->conn), why == RPC_END_CANCELLED ?
		    "cancelled" : why == RPC_END_DEADLINE ?
		    "deadline exceeded" : rpc_status_name(call->status));
	if (call->started && call->method != NULL &&
	    call->method->on_done != NULL)
		call->method->on_done(call, why);
}

static const struct rpc_method *
server_find_method(struct rpc_server *srv, const char *path)
{
	size_t i;

	for (i = 0; i < srv->nmethods; i++)
		if (strcmp(srv->methods[i].path, path) == 0)
			return &srv->methods[i];
	return NULL;
}

static int
md_reserved(const char *name)
{
	return name[0] == ':' || strncmp(name, "grpc-", 5) == 0 ||
	    strcmp(name, "content-type") == 0 || strcmp(name, "te") == 0 ||
	    strcmp(name, "user-agent") == 0 || strcmp(name, "host") == 0 ||
	    strcmp(name, "connection") == 0;
}

static int
md_name_ok(const char *name)
{
	const char *p;

	if (*name == '\0')
		return 0;
	for (p = name; *p != '\0'; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
		    *p == '-' || *p == '_' || *p == '.'))
			return 0;
	return 1;
}

/* Room for one more entry in a metadata array (grown in steps of 8). */
static int
md_grow(struct rpc_md **arr, size_t n)
{
	struct rpc_md *p;

	if (n >= RPC_MAX_METADATA_ENTRIES)
		return WICK_ERR_LIMIT;
	if (n % 8 != 0)
		return 0;
	if ((p = reallocarray(*arr, n + 8, sizeof(**arr))) == NULL)
		return WICK_ERR_ALLOC;
	*arr = p;
	return 0;
}

static int
call_add_md(struct rpc_call *call, struct rpc_md **arr, size_t *n,
    const char *name, const void *value, size_t len)
{
	int	 r;

	if (call->headers_sent && arr == &call->out_hdrs)
		return WICK_ERR_STATE;
	if (call->finished)
		return WICK_ERR_STATE;
	if (!md_name_ok(name) || md_reserved(name))
		return WICK_ERR_INVALID;
	if ((r = md_grow(arr, *n)) != 0 ||
	    (r = rpc_md_set(&(*arr)[*n], name, strlen(name), value, len,
	    RPC_MD_TO_WIRE)) != 0)
		return r;
	(*n)++;
	return 0;
}

int
rpc_call_add_header(struct rpc_call *call, const char *name,
    const void *value, size_t len)
{
	return call_add_md(call, &call->out_hdrs, &call->nout_hdrs, name,
	    value, len);
}

int
rpc_call_add_trailer(struct rpc_call *call, const char *name,
    const void *value, size_t len)
{
	return call_add_md(call, &call->out_trls, &call->nout_trls, name,
	    value, len);
}

size_t
rpc_call_queued(const struct rpc_call *call)
{
	if (call->busy)
		return buf_len(&call->off->pend_out);
	return buf_len(&call->out);
}

int
rpc_call_hold(struct rpc_call *call, size_t n, const char **what)
{
	int r;

	*what = NULL;
	if (call->busy) {
		/* Charged when the step is back (rpc_job_done()). */
		if (call->off->pend_finish || n > SIZE_MAX - call->off->pend_hold)
			return WICK_ERR_STATE;
		call->off->pend_hold += n;
		return 0;
	}
	if (call->finished || call->handler_gone)
		return WICK_ERR_STATE;
	if ((r = conn_charge(call->conn, n, what)) != 0) {
		call->conn->srv->stats.budget_refusals++;
		return r;
	}
	call->held += n;
	return 0;
}

void
rpc_call_await_message(struct rpc_call *call)
{
	if (call->busy) {
		call->off->pend_await = 1;
		return;
	}
	if (!call->finished && !call->handler_gone && call->msg_since == 0)
		call->msg_since = uv_now(call->conn->srv->loop);
}

#define NV(n, v, l) { (uint8_t *)(n), (uint8_t *)(v), strlen(n), (l), \
	NGHTTP2_NV_FLAG_NONE }

static ssize_t	call_data_read_cb(nghttp2_session *, int32_t, uint8_t *,
		    size_t, uint32_t *, nghttp2_data_source *, void *);

/* Response headers: always with a data provider unless trailers-only. */
static int
call_submit_headers(struct rpc_call *call, int trailers_only)
{
	nghttp2_nv		 nva[RPC_MAX_METADATA_ENTRIES * 2 + 8];
	size_t			 n = 0, i;
	nghttp2_data_provider	 prd;
	int			 rv;

	nva[n++] = (nghttp2_nv)NV(":status", "200", 3);
	nva[n++] = (nghttp2_nv)NV("content-type", "application/grpc", 16);
	nva[n++] = (nghttp2_nv)NV("grpc-accept-encoding", "identity", 8);
	for (i = 0; i < call->nout_hdrs; i++)
		nva[n++] = (nghttp2_nv)NV(call->out_hdrs[i].name,
		    call->out_hdrs[i].value, call->out_hdrs[i].len);
	if (trailers_only) {
		nva[n++] = (nghttp2_nv)NV("grpc-status", call->status_str,
		    strlen(call->status_str));
		if (call->status_msg != NULL && *call->status_msg != '\0')
			nva[n++] = (nghttp2_nv)NV("grpc-message",
			    call->status_msg, strlen(call->status_msg));
		for (i = 0; i < call->nout_trls; i++)
			nva[n++] = (nghttp2_nv)NV(call->out_trls[i].name,
			    call->out_trls[i].value, call->out_trls[i].len);
		rv = nghttp2_submit_response(call->conn->ngh, call->stream_id,
		    nva, n, NULL);
	} else {
		prd.source.ptr = call;
		prd.read_callback = call_data_read_cb;
		rv = nghttp2_submit_response(call->conn->ngh, call->stream_id,
		    nva, n, &prd);
	}
	call->headers_sent = 1;
	return rv == 0 ? 0 : WICK_ERR_PROTOCOL;
}

static int
call_submit_trailers(struct rpc_call *call)
{
	nghttp2_nv	 nva[RPC_MAX_METADATA_ENTRIES + 2];
	size_t		 n = 0, i;

	nva[n++] = (nghttp2_nv)NV("grpc-status", call->status_str,
	    strlen(call->status_str));
	if (call->status_msg != NULL && *call->status_msg != '\0')
		nva[n++] = (nghttp2_nv)NV("grpc-message", call->status_msg,
		    strlen(call->status_msg));
	for (i = 0; i < call->nout_trls; i++)
		nva[n++] = (nghttp2_nv)NV(call->out_trls[i].name,
		    call->out_trls[i].value, call->out_trls[i].len);
	return nghttp2_submit_trailer(call->conn->ngh, call->stream_id, nva,
	    n) == 0 ? 0 : WICK_ERR_PROTOCOL;
}

/*
 * DATA goes out without a copy into nghttp2's buffers (NO_COPY): the
 * bytes may be private keys, and this way they pass from the call's
 * queue (wiped) straight to the connection's output (wiped), see
 * conn_send_data_cb().
 */
static ssize_t
call_data_read_cb(nghttp2_session *ngh, int32_t stream_id, uint8_t *dst,
    size_t length, uint32_t *flags, nghttp2_data_source *src, void *arg)
{
	struct rpc_call	*call = src->ptr;
	size_t		 n = buf_len(&call->out);

	if (n > length)
		n = length;
	if (n > 0) {
		*flags |= NGHTTP2_DATA_FLAG_NO_COPY;
		return (ssize_t)n;
	}
	if (call->finished) {
		*flags |= NGHTTP2_DATA_FLAG_EOF | NGHTTP2_DATA_FLAG_NO_END_STREAM;
		if (call_submit_trailers(call) != 0)
			return NGHTTP2_ERR_CALLBACK_FAILURE;
		return 0;
	}
	if (call->data_deferred != 2)
		call->data_deferred = 1;
	return NGHTTP2_ERR_DEFERRED;
}

/* nghttp2 sends a DATA frame of ours: header and bytes to the output. */
static int
conn_send_data_cb(nghttp2_session *ngh, nghttp2_frame *frame,
    const uint8_t *framehd, size_t length, nghttp2_data_source *src,
    void *arg)
{
	struct rpc_conn	*c = arg;
	struct rpc_call	*call = src->ptr;

	/* Enough queued for the socket: nghttp2 asks again later. */
	if (c->out != NULL && c->io.pending + buf_len(c->out) >=
	    conn_limits(c)->max_output) {
		c->out_full = 1;
		return NGHTTP2_ERR_WOULDBLOCK;
	}
	if (c->out == NULL || length > buf_len(&call->out) ||
	    frame->data.padlen != 0 ||
	    buf_put(c->out, framehd, RPC_FRAME_HDLEN) != 0 ||
	    buf_put(c->out, buf_ptr(&call->out), length) != 0 ||
	    buf_consume(&call->out, length) != 0)
		return NGHTTP2_ERR_CALLBACK_FAILURE;
	if (call->want_writable && buf_len(&call->out) < call->wake_below) {
		call->want_writable = 0;
		call->data_deferred = 2;	/* tell handler later */
	}
	return 0;
}

static void
call_resume(struct rpc_call *call)
{
	if (call->data_deferred) {
		if (call->data_deferred == 1)
			call->data_deferred = 0;
		(void)nghttp2_session_resume_data(call->conn->ngh,
		    call->stream_id);
	}
}

int
rpc_call_send_message(struct rpc_call *call, const uint8_t *p, size_t n)
{
	int r;

	if (call->busy) {
		if (call->off->pend_finish || call->finished)
			return WICK_ERR_STATE;
		/* As below, one message of any size fits an empty queue. */
		if (n > UINT32_MAX || (buf_len(&call->off->pend_out) > 0 &&
		    buf_len(&call->off->pend_out) + n > RPC_MAX_CALL_QUEUE))
			return WICK_ERR_LIMIT;
		if ((r = buf_put_u8(&call->off->pend_out, 0)) != 0 ||
		    (r = buf_put_u32be(&call->off->pend_out, (uint32_t)n)) != 0 ||
		    (r = buf_put(&call->off->pend_out, p, n)) != 0)
			return r;
		return 0;
	}
	if (call->finished || call->handler_gone)
		return WICK_ERR_STATE;
	if (n > UINT32_MAX)
		return WICK_ERR_LIMIT;
	if (buf_len(&call->out) > 0 &&
	    buf_len(&call->out) + n > RPC_MAX_CALL_QUEUE) {
		call->want_writable = 1;
		call->wake_below = RPC_MAX_CALL_QUEUE / 2;
		return WICK_ERR_AGAIN;
	}
	if ((r = buf_put_u8(&call->out, 0)) != 0 ||
	    (r = buf_put_u32be(&call->out, (uint32_t)n)) != 0 ||
	    (r = buf_put(&call->out, p, n)) != 0)
		return r;
	if (!call->headers_sent) {
		if ((r = call_submit_headers(call, 0)) != 0)
			return r;
	} else
		call_resume(call);
	conn_schedule_flush(call->conn);
	return 0;
}

int
rpc_call_send_latest(struct rpc_call *call, const uint8_t *p, size_t n)
{
	if (call->busy && buf_len(&call->off->pend_out) > 0)
		return WICK_ERR_AGAIN;
	if (call->busy)
		return rpc_call_send_message(call, p, n);
	if (call->finished || call->handler_gone)
		return WICK_ERR_STATE;
	if (buf_len(&call->out) > 0) {
		call->want_writable = 1;
		call->wake_below = 1;
		return WICK_ERR_AGAIN;
	}
	return rpc_call_send_message(call, p, n);
}

static int
call_set_status(struct rpc_call *call, enum rpc_status st, const char *msg)
{
	call->finished = 1;
	call->status = st;
	snprintf(call->status_str, sizeof(call->status_str), "%d", (int)st);
	free(call->status_msg);
	call->status_msg = NULL;
	if (msg != NULL && rpc_percent_encode(msg, &call->status_msg) != 0)
		call->status_msg = NULL;
	if (!call->headers_sent)
		return call_submit_headers(call, 1);
	call_resume(call);
	return 0;
}

int
rpc_call_finish(struct rpc_call *call, enum rpc_status st, const char *msg)
{
	int r;

	if (call->busy) {
		if (call->off->pend_finish || call->finished)
			return WICK_ERR_STATE;
		call->off->pend_finish = 1;
		call->off->pend_status = st;
		if (msg != NULL && (call->off->pend_msg = strdup(msg)) == NULL)
			return WICK_ERR_ALLOC;
		return 0;
	}
	if (call->finished || call->handler_gone)
		return WICK_ERR_STATE;
	call_stop_timer(call);
	r = call_set_status(call, st, msg);
	conn_schedule_flush(call->conn);
	return r;
}

/* The layer ends a call on its own (errors, deadline). */
static void
call_abort(struct rpc_call *call, enum rpc_status st, const char *msg,
    enum rpc_end why)
{
	call_stop_timer(call);
	if (call->busy) {
		/* The handler's step is still running: the end waits for
		 * it (rpc_job_done()); the first reason wins. */
		__atomic_store_n(&call->cancelled, 1, __ATOMIC_RELEASE);
		if (!call->off->aborted) {
			call->off->aborted = 1;
			call->off->abort_status = st;
			call->off->abort_why = why;
			call->off->abort_msg = msg != NULL ? strdup(msg) : NULL;
		}
	} else {
		call_end_handler(call, why);
		if (!call->finished)
			(void)call_set_status(call, st, msg);
	}
	/* Nothing more is read: what a partial message held goes now. */
	rpc_frame_cleanup(&call->dec);
	conn_release(call->conn, call->msg_held);
	call->held -= call->msg_held;
	call->msg_held = 0;
	call->msg_since = 0;
}

static void
call_deadline_cb(uv_timer_t *t)
{
	struct rpc_call *call = t->data;
	struct rpc_conn *c;

	if (call == NULL)
		return;
	c = call->conn;
	call_abort(call, RPC_DEADLINE_EXCEEDED, "deadline exceeded",
	    RPC_END_DEADLINE);
	conn_flush(c);
}

const char *
rpc_call_path(const struct rpc_call *call)
{
	return call->path;
}

enum rpc_kind
rpc_call_kind(const struct rpc_call *call)
{
	return call->method->kind;
}

const struct rpc_peer *
rpc_call_peer(const struct rpc_call *call)
{
	return &call->conn->peer;
}

void
rpc_call_set_data(struct rpc_call *call, void *d)
{
	call->data = d;
}

void *
rpc_call_data(const struct rpc_call *call)
{
	return call->data;
}

void
rpc_call_set_conn_note(struct rpc_call *call, uint64_t v)
{
	if (call->busy) {
		/* The connection is the loop's: applied in rpc_job_done(). */
		call->off->pend_note = v;
		call->off->pend_note_set = 1;
		return;
	}
	call->conn->note = v;
}

uint64_t
rpc_call_conn_note(const struct rpc_call *call)
{
	return call->conn->note;
}

int64_t
rpc_call_deadline_left(const struct rpc_call *call)
{
	uint64_t now;

	/* Either thread: the monotonic clock, not the loop's. */
	if (call->deadline_ns == 0)
		return -1;
	now = uv_hrtime();
	return call->deadline_ns > now ? (int64_t)((call->deadline_ns - now) /
	    1000000) : 0;
}

size_t
rpc_call_md_count(const struct rpc_call *call)
{
	return call->nmd;
}

const struct rpc_md *
rpc_call_md(const struct rpc_call *call, size_t i)
{
	return i < call->nmd ? &call->md[i] : NULL;
}

const struct rpc_md *
rpc_call_md_get(const struct rpc_call *call, const char *name)
{
	size_t i;

	for (i = 0; i < call->nmd; i++)
		if (strcmp(call->md[i].name, name) == 0)
			return &call->md[i];
	return NULL;
}

/* ---- nghttp2 callbacks -------------------------------------------------- */

static int
on_begin_headers_cb(nghttp2_session *ngh, const nghttp2_frame *frame,
    void *arg)
{
	struct rpc_conn	*c = arg;
	struct rpc_call	*call;

	if (frame->hd.type != NGHTTP2_HEADERS ||
	    frame->headers.cat != NGHTTP2_HCAT_REQUEST)
		return 0;
	/* Over the class's stream limit (the peer may not have seen our
	 * SETTINGS yet): refused, which a client may retry. */
	if (c->srv->shutting_down || c->ncalls >= conn_limits(c)->max_streams) {
		(void)nghttp2_submit_rst_stream(ngh, NGHTTP2_FLAG_NONE,
		    frame->hd.stream_id, NGHTTP2_REFUSED_STREAM);
		return 0;
	}
	if ((call = calloc(1, sizeof(*call))) == NULL) {
		(void)nghttp2_submit_rst_stream(ngh, NGHTTP2_FLAG_NONE,
		    frame->hd.stream_id, NGHTTP2_INTERNAL_ERROR);
		return 0;
	}
	call->conn = c;
	call->stream_id = frame->hd.stream_id;
	call->timeout_ms = -1;
	call->begun_at = uv_now(c->srv->loop);
	call->begun_ns = uv_hrtime();
	/* Responses may carry private keys and tokens: every copy is wiped
	 * on its way out (here, the write path, nghttp2's buffers). */
	buf_init(&call->out, 0);
	buf_set_secret(&call->out);
	TAILQ_INSERT_TAIL(&c->calls, call, entry);
	c->ncalls++;
	c->had_call = 1;
	if (nghttp2_session_set_stream_user_data(ngh, frame->hd.stream_id,
	    call) != 0) {
		call_free(call);
		return NGHTTP2_ERR_CALLBACK_FAILURE;
	}
	return 0;
}

static int
on_header_cb(nghttp2_session *ngh, const nghttp2_frame *frame,
    const uint8_t *name, size_t namelen, const uint8_t *value,
    size_t valuelen, uint8_t flags, void *arg)
{
	struct rpc_call	*call;
	const char	*n = (const char *)name, *v = (const char *)value;
	int		 r;

	if (frame->hd.type != NGHTTP2_HEADERS ||
	    (call = nghttp2_session_get_stream_user_data(ngh,
	    frame->hd.stream_id)) == NULL)
		return 0;
	if (frame->headers.cat != NGHTTP2_HCAT_REQUEST)
		return 0;	/* request trailers carry nothing we use */
	call->md_bytes += namelen + valuelen + RPC_MD_CHARGE;
	if (call->md_bytes > RPC_MAX_METADATA) {
		/*
		 * Answered with RESOURCE_EXHAUSTED; a peer that keeps
		 * sending (a CONTINUATION flood) loses the connection.
		 */
		if (call->md_bytes > RPC_MAX_METADATA_FLOOD)
			return NGHTTP2_ERR_CALLBACK_FAILURE;
		call->md_overflow = 1;
		return 0;
	}
	if (strcmp(n, ":path") == 0) {
		free(call->path);
		call->path = strndup(v, valuelen);
		if (call->path == NULL)
			return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
	} else if (strcmp(n, ":method") == 0)
		call->is_post = strcmp(v, "POST") == 0;
	else if (strcmp(n, "content-type") == 0) {
		call->has_content_type = 1;
		call->content_type_ok = strcmp(v, "application/grpc") == 0 ||
		    strncmp(v, "application/grpc+", 17) == 0 ||
		    strncmp(v, "application/grpc;", 17) == 0;
	} else if (strcmp(n, "grpc-timeout") == 0) {
		if (rpc_parse_timeout(v, &call->timeout_ms) != 0)
			call->timeout_ms = -1;
	} else if (strcmp(n, "grpc-encoding") == 0) {
		if (strcmp(v, "identity") != 0)
			call->bad_encoding = 1;
	} else if (n[0] != ':' && !md_reserved(n)) {
		if ((r = md_grow(&call->md, call->nmd)) != 0) {
			if (r != WICK_ERR_LIMIT)
				return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
			call->md_overflow = 1;
			return 0;
		}
		r = rpc_md_set(&call->md[call->nmd], n, namelen, value,
		    valuelen, RPC_MD_FROM_WIRE);
		if (r == WICK_ERR_INVALID)
			return 0;	/* undecodable -bin value: dropped */
		if (r != 0)
			return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
		call->nmd++;
	}
	return 0;
}

static void
call_http_error(struct rpc_call *call, const char *status)
{
	nghttp2_nv nva[1];

	nva[0] = (nghttp2_nv)NV(":status", status, strlen(status));
	call->finished = 1;
	call->headers_sent = 1;
	(void)nghttp2_submit_response(call->conn->ngh, call->stream_id, nva, 1,
	    NULL);
}

/* A budget refused what the call would hold: say which, and log it. */
static void
call_over_budget(struct rpc_call *call, const char *what, size_t n)
{
	struct rpc_conn	*c = call->conn;
	char		 msg[200];

	c->srv->stats.budget_refusals++;
	snprintf(msg, sizeof(msg), "request would hold %zu more bytes, over "
	    "the %s budget of %zu bytes", n, what, budget_limit(c, what));
	log_warn_rl(&rl_budget, "call %s from %s refused: %s",
	    call->path != NULL ? call->path : "?", conn_who(c), msg);
	if (call->busy)
		call_abort(call, RPC_RESOURCE_EXHAUSTED, msg,
		    RPC_END_CANCELLED);
	else if (!call->finished)
		(void)call_set_status(call, RPC_RESOURCE_EXHAUSTED, msg);
}

/* A request message is about to be buffered: charge it first. */
static int
call_reserve_cb(void *arg, size_t n)
{
	struct rpc_call	*call = arg;
	const char	*what;
	int		 r;

	if ((r = conn_charge(call->conn, n, &what)) != 0) {
		call->over_budget = what;
		call->msg_held = n;	/* for the message only; not held */
		return r;
	}
	call->held += n;
	call->msg_held = n;
	call->msg_since = uv_now(call->conn->srv->loop);
	return 0;
}

static void
call_start(struct rpc_call *call)
{
	struct rpc_conn		*c = call->conn;
	struct rpc_server	*srv = c->srv;
	const struct rpc_method	*m;
	const char		*what;
	size_t			 n;

	if (!call->is_post || call->path == NULL) {
		call_http_error(call, "405");
		return;
	}
	if (!call->has_content_type || !call->content_type_ok) {
		call_http_error(call, "415");
		return;
	}
	srv->stats.calls_started++;
	call->observed = 1;
	if (call->md_overflow) {
		(void)call_set_status(call, RPC_RESOURCE_EXHAUSTED,
		    "request metadata too large");
		return;
	}
	/* The call's own state and metadata count against the budgets. */
	n = sizeof(*call) + call->md_bytes;
	if (conn_charge(c, n, &what) != 0) {
		call_over_budget(call, what, n);
		return;
	}
	call->held = n;
	if ((m = server_find_method(srv, call->path)) == NULL) {
		(void)call_set_status(call, RPC_UNIMPLEMENTED,
		    "unknown method");
		return;
	}
	if (c->anon && !m->anonymous) {
		(void)call_set_status(call, RPC_PERMISSION_DENIED,
		    "this method needs a verified client certificate");
		return;
	}
	if (call->bad_encoding) {
		(void)call_set_status(call, RPC_UNIMPLEMENTED,
		    "compression not supported");
		return;
	}
	call->method = m;
	rpc_frame_init(&call->dec, conn_limits(c)->max_message);
	rpc_frame_set_reserve(&call->dec, call_reserve_cb, call);
	/* A unary or server-streaming request message must come in time. */
	if (m->kind == RPC_KIND_UNARY || m->kind == RPC_KIND_SERVER_STREAM)
		call->msg_since = uv_now(srv->loop);
	if (call->timeout_ms >= 0) {
		call->deadline = uv_now(srv->loop) + (uint64_t)call->timeout_ms;
		call->deadline_ns = uv_hrtime() + (uint64_t)call->timeout_ms *
		    1000000;
		/* Armed once the bytes read are dealt with: a call answered
		 * by then needs no timer (conn_arm_deadlines()). */
		call->timer_due = 1;
		c->deadlines_due = 1;
	}
	call->started = 1;
	srv->stats.calls_active++;
	if (m->on_start != NULL)
		m->on_start(call, m->arg);
}

/* ---- offloaded handler steps (opts.offload) ---------------------------- */

static void
job_release(struct rpc_call *call, struct rpc_job *job)
{
	conn_release(call->conn, job->charged);
	call->held -= job->charged;
	job_free(job);
}

static void
call_start_step(struct rpc_call *call, struct rpc_job *job)
{
	struct rpc_conn *c = call->conn;
	char		 msg[128];
	uint32_t	 cap = c->anon ? RPC_MAX_ANON_QUEUED : RPC_MAX_PEER_QUEUED;

	if (c->acct == NULL || c->acct->queued >= cap) {
		job_release(call, job);
		snprintf(msg, sizeof(msg), "%u calls of this peer are waiting "
		    "for the server already (the limit)", cap);
		c->srv->stats.budget_refusals++;
		call_abort(call, RPC_RESOURCE_EXHAUSTED, msg,
		    RPC_END_CANCELLED);
		return;
	}
	c->acct->queued++;
	call->busy = 1;
	c->busy_calls++;
	if (c->srv->opts.offload(c->srv->opts.offload_arg, job) != 0) {
		call->busy = 0;
		c->busy_calls--;
		c->acct->queued--;
		job_release(call, job);
		call_abort(call, RPC_RESOURCE_EXHAUSTED, "cannot queue the call",
		    RPC_END_CANCELLED);
	}
}

/*
 * A message (a copy, charged like the call's other state) or the
 * half-close for the handler: run now, or after the step under way.
 */
static void
call_queue_step(struct rpc_call *call, int half_close, const uint8_t *p,
    size_t n)
{
	struct rpc_conn	*c = call->conn;
	struct rpc_job	*job;
	const char	*what;
	size_t		 charge = sizeof(*job) + n;

	if (call->off == NULL) {
		if ((call->off = calloc(1, sizeof(*call->off))) == NULL) {
			call_abort(call, RPC_RESOURCE_EXHAUSTED,
			    "out of memory", RPC_END_CANCELLED);
			return;
		}
		buf_init(&call->off->pend_out, 0);
		buf_set_secret(&call->off->pend_out);
	}
	if (conn_charge(c, charge, &what) != 0) {
		call_over_budget(call, what, charge);
		call_abort(call, RPC_RESOURCE_EXHAUSTED, NULL,
		    RPC_END_CANCELLED);
		return;
	}
	call->held += charge;
	if ((job = calloc(1, sizeof(*job))) == NULL ||
	    (n > 0 && (job->msg = malloc(n)) == NULL)) {
		free(job);
		conn_release(c, charge);
		call->held -= charge;
		call_abort(call, RPC_RESOURCE_EXHAUSTED, "out of memory",
		    RPC_END_CANCELLED);
		return;
	}
	job->call = call;
	job->half_close = half_close;
	if (n > 0)
		memcpy(job->msg, p, n);
	job->len = n;
	job->charged = charge;
	if (call->busy) {
		if (call->off->inbox_tail != NULL)
			call->off->inbox_tail->next = job;
		else
			call->off->inbox = job;
		call->off->inbox_tail = job;
		return;
	}
	call_start_step(call, job);
}

void
rpc_job_run(struct rpc_job *job)
{
	struct rpc_call		*call = job->call;
	const struct rpc_method	*m = call->method;

	/* Nobody waits for it any more: a reset, a closed connection, a
	 * deadline passed while the step was queued. */
	if (__atomic_load_n(&call->cancelled, __ATOMIC_ACQUIRE) ||
	    (call->deadline_ns != 0 && uv_hrtime() >= call->deadline_ns))
		return;
	if (job->half_close) {
		if (m->on_half_close != NULL)
			m->on_half_close(call);
	} else if (m->on_message != NULL)
		m->on_message(call, job->msg != NULL ? job->msg :
		    (const uint8_t *)"", job->len);
}

static void
call_drop_pending(struct rpc_call *call)
{
	buf_reset(&call->off->pend_out);
	call->off->pend_finish = 0;
	free(call->off->pend_msg);
	call->off->pend_msg = NULL;
	call->off->pend_hold = 0;
	call->off->pend_await = 0;
}

void
rpc_job_done(struct rpc_job *job)
{
	struct rpc_call	*call = job->call;
	struct rpc_conn	*c = call->conn;
	const char	*what;
	char		*msg;
	size_t		 hold;
	int		 r;

	call->busy = 0;
	c->busy_calls--;
	if (c->acct != NULL)
		c->acct->queued--;
	job_release(call, job);
	/* What the step learnt about the peer holds whatever became of
	 * the call. */
	if (call->off->pend_note_set) {
		call->off->pend_note_set = 0;
		c->note = call->off->pend_note;
	}
	if (call->dead) {
		call_drop_pending(call);
		call_end_handler(call, call->dead_why);
		call_free(call);
		if (c->closing && c->busy_calls == 0) {
			conn_detach(c);
			if (c->pending_closes == 0 && c->io.pending == 0) {
				/* The connection only waited for this call. */
				c->pending_closes = 1;
				conn_maybe_free(c);
			}
		}
		return;
	}
	if (call->off->aborted) {
		/* The layer ended the call meanwhile: that end stands and
		 * what the handler did is dropped. */
		call_drop_pending(call);
		call->off->aborted = 0;
		msg = call->off->abort_msg;
		call->off->abort_msg = NULL;
		call_abort(call, call->off->abort_status, msg, call->off->abort_why);
		free(msg);
		conn_flush(c);
		return;
	}
	hold = call->off->pend_hold;
	call->off->pend_hold = 0;
	if (hold > 0 && conn_charge(c, hold, &what) != 0) {
		call_drop_pending(call);
		call_over_budget(call, what, hold);
		call_abort(call, RPC_RESOURCE_EXHAUSTED, NULL,
		    RPC_END_CANCELLED);
		conn_flush(c);
		return;
	}
	call->held += hold;
	if (call->off->pend_await) {
		call->off->pend_await = 0;
		rpc_call_await_message(call);
	}
	if (buf_len(&call->off->pend_out) > 0 && !call->finished) {
		r = buf_put(&call->out, buf_ptr(&call->off->pend_out),
		    buf_len(&call->off->pend_out));
		buf_reset(&call->off->pend_out);
		if (r == 0) {
			if (!call->headers_sent)
				r = call_submit_headers(call, 0);
			else
				call_resume(call);
		}
		if (r != 0) {
			call_drop_pending(call);
			call_abort(call, RPC_RESOURCE_EXHAUSTED, "cannot queue "
			    "the reply", RPC_END_CANCELLED);
			conn_flush(c);
			return;
		}
	}
	if (call->off->pend_finish) {
		call->off->pend_finish = 0;
		msg = call->off->pend_msg;
		call->off->pend_msg = NULL;
		(void)rpc_call_finish(call, call->off->pend_status, msg);
		free(msg);
	}
	/* The next step, unless the call is over. */
	if ((job = call->off->inbox) != NULL) {
		call->off->inbox = job->next;
		if (call->off->inbox == NULL)
			call->off->inbox_tail = NULL;
		job->next = NULL;
		if (call->finished || call->handler_gone) {
			job_release(call, job);
			while ((job = call->off->inbox) != NULL) {
				call->off->inbox = job->next;
				job_release(call, job);
			}
			call->off->inbox_tail = NULL;
		} else
			call_start_step(call, job);
	}
	conn_flush(c);
}

/* One complete request message: hand it to the handler. */
static int
call_message_cb(const uint8_t *p, size_t n, void *arg)
{
	struct rpc_call		*call = arg;
	const struct rpc_method	*m = call->method;
	const struct rpc_server_opts *o = &call->conn->srv->opts;

	if ((m->kind == RPC_KIND_UNARY || m->kind == RPC_KIND_SERVER_STREAM) &&
	    call->nmsgs >= 1) {
		call_abort(call, RPC_UNIMPLEMENTED, "more than one request "
		    "message for a unary request", RPC_END_CANCELLED);
		return WICK_ERR_PROTOCOL;
	}
	call->nmsgs++;
	/* The message leaves our buffer when this returns. */
	conn_release(call->conn, call->msg_held);
	call->held -= call->msg_held;
	call->msg_held = 0;
	call->msg_since = 0;
	if (m->on_message != NULL && o->offload != NULL) {
		/* Offered on the loop first; never past a step under way,
		 * whose messages keep their order. */
		if (o->on_loop != NULL && !call->busy &&
		    o->on_loop(o->on_loop_arg, m, call, p, n))
			return call->finished || call->handler_gone ?
			    WICK_ERR_STATE : 0;
		call_queue_step(call, 0, p, n);
		return call->finished || call->handler_gone ||
		    (call->off != NULL && call->off->aborted) ?
		    WICK_ERR_STATE : 0;
	}
	if (m->on_message != NULL)
		m->on_message(call, p, n);
	/* The handler may have finished, or been told to stop. */
	return call->finished || call->handler_gone ? WICK_ERR_STATE : 0;
}

/* Feed request DATA through the gRPC message framing. */
static void
call_data(struct rpc_call *call, const uint8_t *p, size_t n)
{
	char	 msg[128];
	int	 r;

	if (call->finished || call->handler_gone ||
	    (call->off != NULL && call->off->aborted))
		return;
	r = rpc_frame_feed(&call->dec, p, n, call_message_cb, call);
	switch (r) {
	case 0:
	case WICK_ERR_STATE:
	case WICK_ERR_PROTOCOL:
		break;
	case WICK_ERR_LIMIT:
		if (call->over_budget != NULL) {
			call_over_budget(call, call->over_budget,
			    call->msg_held);
			call->msg_held = 0;
			call_abort(call, RPC_RESOURCE_EXHAUSTED, NULL,
			    RPC_END_CANCELLED);
			break;
		}
		snprintf(msg, sizeof(msg), "request message of %u bytes exceeds "
		    "the limit of %zu", call->dec.declared, call->dec.max);
		call_abort(call, RPC_RESOURCE_EXHAUSTED, msg, RPC_END_CANCELLED);
		break;
	case WICK_ERR_UNSUPPORTED:
		call_abort(call, RPC_UNIMPLEMENTED, "compression not supported",
		    RPC_END_CANCELLED);
		break;
	default:
		call_abort(call, RPC_RESOURCE_EXHAUSTED, "out of memory",
		    RPC_END_CANCELLED);
		break;
	}
}

static void
call_half_close(struct rpc_call *call)
{
	const struct rpc_method *m = call->method;

	if (call->finished || call->handler_gone || m == NULL ||
	    (call->off != NULL && call->off->aborted))
		return;
	if (rpc_frame_partial(&call->dec)) {
		call_abort(call, RPC_INTERNAL, "truncated request message",
		    RPC_END_CANCELLED);
		return;
	}
	if ((m->kind == RPC_KIND_UNARY || m->kind == RPC_KIND_SERVER_STREAM) &&
	    call->nmsgs != 1) {
		call_abort(call, RPC_UNIMPLEMENTED,
		    "expected exactly one request message", RPC_END_CANCELLED);
		return;
	}
	if (m->on_half_close != NULL &&
	    call->conn->srv->opts.offload != NULL) {
		call_queue_step(call, 1, NULL, 0);
		return;
	}
	if (m->on_half_close != NULL)
		m->on_half_close(call);
}

/*
 * Give received bytes back to the flow-control windows once we no longer
 * hold them: all of them, but for a request message still coming in.
 */
static void
call_ack(struct rpc_call *call)
{
	uint64_t	 keep = 0, n;

	if (!call->finished && !call->handler_gone)
		keep = rpc_frame_held(&call->dec);
	if (call->recv - call->acked <= keep)
		return;
	n = call->recv - call->acked - keep;
	if (nghttp2_session_consume(call->conn->ngh, call->stream_id,
	    (size_t)n) == 0)
		call->acked += n;
}

static int
on_data_chunk_recv_cb(nghttp2_session *ngh, uint8_t flags, int32_t stream_id,
    const uint8_t *data, size_t len, void *arg)
{
	struct rpc_call *call;

	if ((call = nghttp2_session_get_stream_user_data(ngh, stream_id)) ==
	    NULL || !call->started) {
		(void)nghttp2_session_consume(ngh, stream_id, len);
		return 0;
	}
	call->recv += len;
	call_data(call, data, len);
	call_ack(call);
	return 0;
}

static int
on_frame_recv_cb(nghttp2_session *ngh, const nghttp2_frame *frame, void *arg)
{
	struct rpc_conn *c = arg;
	struct rpc_call *call;

	if (!c->established) {
		c->established = 1;
		if (!c->had_call)
			uv_timer_start(&c->idle, conn_idle_cb,
			    c->srv->opts.first_call_ms, c->srv->opts.idle_ms);
	}

	switch (frame->hd.type) {
	case NGHTTP2_HEADERS:
	case NGHTTP2_DATA:
		break;
	default:
		return 0;
	}
	if ((call = nghttp2_session_get_stream_user_data(ngh,
	    frame->hd.stream_id)) == NULL)
		return 0;
	if (frame->hd.type == NGHTTP2_HEADERS &&
	    frame->headers.cat == NGHTTP2_HCAT_REQUEST)
		call_start(call);
	if ((frame->hd.flags & NGHTTP2_FLAG_END_STREAM) && call->started)
		call_half_close(call);
	return 0;
}

/*
 * The response ended (trailers, trailers-only or an HTTP error) while the
 * client still had its side open: reset the stream with NO_ERROR (RFC 9113
 * section 8.1) so that it closes now and the handler hears on_done, rather
 * than holding a stream slot until the client half-closes.
 */
static int
on_frame_send_cb(nghttp2_session *ngh, const nghttp2_frame *frame, void *arg)
{
	if (frame->hd.type != NGHTTP2_HEADERS ||
	    !(frame->hd.flags & NGHTTP2_FLAG_END_STREAM))
		return 0;
	if (nghttp2_session_get_stream_remote_close(ngh,
	    frame->hd.stream_id) == 0)
		(void)nghttp2_submit_rst_stream(ngh, NGHTTP2_FLAG_NONE,
		    frame->hd.stream_id, NGHTTP2_NO_ERROR);
	return 0;
}

static int
on_stream_close_cb(nghttp2_session *ngh, int32_t stream_id, uint32_t err,
    void *arg)
{
	struct rpc_call *call;

	if ((call = nghttp2_session_get_stream_user_data(ngh, stream_id)) ==
	    NULL)
		return 0;
	(void)nghttp2_session_set_stream_user_data(ngh, stream_id, NULL);
	if (call->recv > call->acked)
		(void)nghttp2_session_consume_connection(ngh,
		    (size_t)(call->recv - call->acked));
	if (call->busy) {
		/* Freed when its step is back. */
		__atomic_store_n(&call->cancelled, 1, __ATOMIC_RELEASE);
		call->dead = 1;
		call->dead_why = call->finished && err == NGHTTP2_NO_ERROR ?
		    RPC_END_FINISHED : RPC_END_CANCELLED;
		return 0;
	}
	call_end_handler(call, call->finished && err == NGHTTP2_NO_ERROR ?
	    RPC_END_FINISHED : RPC_END_CANCELLED);
	call_free(call);
	return 0;
}

/* ---- connections -------------------------------------------------------- */

static void
conn_maybe_free(struct rpc_conn *c)
{
	struct rpc_server *srv = c->srv;

	if (--c->pending_closes > 0 || c->io.pending > 0 ||
	    c->busy_calls > 0)
		return;
	TAILQ_REMOVE(&srv->conns, c, entry);
	srv->stats.connections_active--;
	tls_conn_free(c->tls);
	peercred_release(&c->peer.cred);
	free(c->peer_id);
	free(c);
	server_check_done(srv);
}

static void
conn_handle_close_cb(uv_handle_t *h)
{
	conn_maybe_free(h->data);
}

static void
conn_close(struct rpc_conn *c)
{
	struct rpc_call *call, *next;

	if (c->closing)
		return;
	c->closing = 1;
	conn_unstash(c);
	TAILQ_FOREACH_SAFE(call, &c->calls, entry, next) {
		if (call->busy) {
			/* Freed when its step is back; the connection
			 * waits for it (conn_maybe_free()), and keeps its
			 * peer's account until then, so that what the call
			 * holds goes back to it (rpc_job_done()). */
			__atomic_store_n(&call->cancelled, 1,
			    __ATOMIC_RELEASE);
			call->dead = 1;
			call->dead_why = RPC_END_CANCELLED;
			continue;
		}
		call_end_handler(call, RPC_END_CANCELLED);
		call_free(call);
	}
	if (c->busy_calls == 0)
		conn_detach(c);
	if (c->ngh != NULL) {
		nghttp2_session_del(c->ngh);
		c->ngh = NULL;
	}
	c->pending_closes = 3;
	uv_close(&c->h.handle, conn_handle_close_cb);
	uv_close((uv_handle_t *)&c->idle, conn_handle_close_cb);
	uv_close((uv_handle_t *)&c->flush, conn_handle_close_cb);
}

/* A write finished (rpc_io): resume what waited for the socket. */
static void
conn_written(struct rpc_io *io, int status)
{
	struct rpc_conn	*c = (struct rpc_conn *)((char *)io -
			    offsetof(struct rpc_conn, io));

	if (c->closing) {
		if (c->io.pending == 0 && c->pending_closes == 0) {
			/* All handles closed already; finish the free. */
			c->pending_closes = 1;
			conn_maybe_free(c);
		}
		return;
	}
	if (status != 0) {
		conn_close(c);
		return;
	}
	c->progress_at = uv_now(c->srv->loop);
	conn_flush(c);
	/* A connection queued unwatched is watched again by the queue
	 * (server_resume_cb()): starting it twice would fail. */
	if (!c->closing && c->read_stopped &&
	    c->io.pending < conn_limits(c)->max_output / 2) {
		c->read_stopped = 0;
		if (!c->stash_stopped && uv_read_start(&c->h.stream,
		    conn_alloc_cb, conn_read_cb) != 0)
			conn_close(c);
	}
}

static void
conn_flush_timer_cb(uv_timer_t *t)
{
	struct rpc_conn *c = t->data;

	c->flush_scheduled = 0;
	conn_flush(c);
}

/*
 * Handlers never flush synchronously: a flush can end calls and free their
 * state, which must not happen under a handler's feet.  Inside nghttp2
 * callbacks the read path flushes afterwards anyway.
 */
static void
conn_schedule_flush(struct rpc_conn *c)
{
	if (c->closing || c->in_recv || c->in_flush || c->flush_scheduled)
		return;
	c->flush_scheduled = 1;
	uv_timer_start(&c->flush, conn_flush_timer_cb, 0, 0);
}

/* Serialize what nghttp2 has queued, up to the output limit. */
static int
conn_send_pending(struct rpc_conn *c)
{
	struct buf	 acc;
	const uint8_t	*data;
	ssize_t		 n;
	int		 r = 0;

	buf_init(&acc, 0);
	buf_set_secret(&acc);
	c->out = &acc;		/* for conn_send_data_cb() */
	while (c->io.pending < conn_limits(c)->max_output) {
		c->out_full = 0;
		n = nghttp2_session_mem_send(c->ngh, &data);
		if (n < 0) {
			r = WICK_ERR_PROTOCOL;
			break;
		}
		if (n > 0 && (r = buf_put(&acc, data, (size_t)n)) != 0)
			break;
		if (buf_len(&acc) > 0 &&
		    (n == 0 || buf_len(&acc) >= RPC_WRITE_CHUNK)) {
			/* A new stretch of output: the stall clock starts. */
			if (c->io.pending == 0)
				c->progress_at = uv_now(c->srv->loop);
			if ((r = rpc_io_send(&c->io, buf_ptr(&acc),
			    buf_len(&acc))) != 0)
				break;
			buf_reset(&acc);
		}
		/*
		 * DATA frames go into acc inside one call, until it holds
		 * max_output (out_full).  acc is on its way now, and when the
		 * socket took all of it no write will complete to call us
		 * again: go on while there is room, or the rest of a reply
		 * waits for the peer's next frame.
		 */
		if (n == 0 && !c->out_full)
			break;
	}
	c->out = NULL;
	buf_cleanup(&acc);
	return r;
}

static void
conn_flush(struct rpc_conn *c)
{
	struct rpc_call	*call, *next;
	int		 notified;

	if (c->closing || c->ngh == NULL || c->in_flush)
		return;
	c->in_flush = 1;
	do {
		notified = 0;
		if (conn_send_pending(c) != 0) {
			c->in_flush = 0;
			conn_close(c);
			return;
		}
		/* Tell handlers whose send queue drained. */
		TAILQ_FOREACH_SAFE(call, &c->calls, entry, next) {
			if (call->data_deferred != 2 || call->handler_gone ||
			    call->busy)
				continue;
			call->data_deferred = 1;
			if (call->method != NULL &&
			    call->method->on_writable != NULL) {
				call->method->on_writable(call);
				notified = 1;
			}
			if (c->closing) {
				c->in_flush = 0;
				return;
			}
		}
	} while (notified && c->io.pending < conn_limits(c)->max_output);
	c->in_flush = 0;
	if (!nghttp2_session_want_read(c->ngh) &&
	    !nghttp2_session_want_write(c->ngh) && c->io.pending == 0)
		conn_close(c);
}

/*
 * A loop turn reads and handles for RPC_TURN_BUDGET_NS; what is read
 * after that is stashed (RPC_STASH_MAX bytes at most a connection, the
 * rest left in the kernel) and handled in the next turns, oldest first,
 * after their timers (server_resume_cb()): a thousand busy peers neither
 * hold up the loop's timers for tens of milliseconds nor lose their turn.
 * A connection with a stash reads nothing more until it is handled; the
 * stash is charged to its budgets like request bytes.  One whose budgets
 * (or memory) leave no room for a stash reads nothing this turn and waits
 * in the same queue, its bytes in the kernel.
 */
static int
turn_over(struct rpc_server *srv)
{
	uint64_t now = uv_hrtime();

	if (!srv->turn_reading) {
		srv->turn_reading = 1;
		srv->turn_start = now;
		return 0;
	}
	return now - srv->turn_start >= RPC_TURN_BUDGET_NS &&
	    !srv->shutting_down;
}

static void
conn_alloc_cb(uv_handle_t *h, size_t hint, uv_buf_t *b)
{
	static char		 slab[RPC_READ_CHUNK];	/* loop thread only */
	struct rpc_conn		*c = h->data;

	const char		*what;

	if (c->queued) {
		*b = uv_buf_init(NULL, 0);	/* UV_ENOBUFS: later */
		return;
	}
	if (turn_over(c->srv)) {
		*b = uv_buf_init(NULL, 0);	/* no room: queued unread */
		if (conn_charge(c, RPC_STASH_MAX, &what) != 0)
			return;
		if ((c->stash = malloc(RPC_STASH_MAX)) == NULL) {
			conn_release(c, RPC_STASH_MAX);
			return;
		}
		*b = uv_buf_init((char *)c->stash, RPC_STASH_MAX);
		return;
	}
	*b = uv_buf_init(slab, sizeof(slab));
}

/* Put c in the queue of the next turns; with stop, unwatched till then. */
static void
conn_queue(struct rpc_conn *c, int stop)
{
	struct rpc_server *srv = c->srv;

	if (stop && !c->stash_stopped) {
		c->stash_stopped = 1;
		(void)uv_read_stop(&c->h.stream);
	}
	if (c->queued)
		return;
	c->queued = 1;
	TAILQ_INSERT_TAIL(&srv->deferred, c, defer_entry);
	srv->stats.reads_deferred++;
	if (!uv_is_active((uv_handle_t *)&srv->resume))
		(void)uv_idle_start(&srv->resume, server_resume_cb);
}

/* Drop c's stash (it may hold a token: wiped). */
static void
conn_unstash(struct rpc_conn *c)
{
	if (c->queued) {
		TAILQ_REMOVE(&c->srv->deferred, c, defer_entry);
		c->queued = 0;
	}
	if (c->stash == NULL)
		return;
	freezero(c->stash, RPC_STASH_MAX);
	conn_release(c, RPC_STASH_MAX);
	c->stash = NULL;
	c->nstash = 0;
}

/*
 * HTTP/2 with the windows of the peer's class: a stream may send one
 * whole message ahead, the connection its budget; bytes are given back
 * as they leave our buffers (call_ack), so what a peer can make us hold
 * is what the windows allow.
 */
static int
conn_start_h2(struct rpc_conn *c)
{
	struct rpc_server	*srv = c->srv;
	const struct rpc_limits	*l = conn_limits(c);
	nghttp2_settings_entry	 iv[3];
	size_t			 win;

	/* DATA never enters nghttp2's buffers (conn_send_data_cb()). */
	if (nghttp2_session_server_new2(&c->ngh, srv->cbs, c, srv->ngopt) != 0)
		return WICK_ERR_ALLOC;
	win = l->max_message + RPC_FRAME_HEADER;
	iv[0].settings_id = NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS;
	iv[0].value = l->max_streams;
	iv[1].settings_id = NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE;
	iv[1].value = RPC_MAX_METADATA;
	iv[2].settings_id = NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE;
	iv[2].value = (uint32_t)(win > NGHTTP2_MAX_WINDOW_SIZE ?
	    NGHTTP2_MAX_WINDOW_SIZE : win);
	if (nghttp2_submit_settings(c->ngh, NGHTTP2_FLAG_NONE, iv, 3) != 0)
		return WICK_ERR_PROTOCOL;
	win = l->conn_budget > NGHTTP2_MAX_WINDOW_SIZE ?
	    NGHTTP2_MAX_WINDOW_SIZE : l->conn_budget;
	if (nghttp2_session_set_local_window_size(c->ngh, NGHTTP2_FLAG_NONE,
	    0, (int32_t)win) != 0)
		return WICK_ERR_PROTOCOL;
	return 0;
}

static int
conn_recv_h2(struct rpc_conn *c, const uint8_t *p, size_t n)
{
	ssize_t rv;

	c->in_recv = 1;
	rv = nghttp2_session_mem_recv(c->ngh, p, n);
	c->in_recv = 0;
	if (rv < 0) {
		log_debug("connection dropped: %s", nghttp2_strerror((int)rv));
		return WICK_ERR_PROTOCOL;
	}
	return 0;
}

/* The TLS handshake is done: record the peer and start HTTP/2. */
static int
conn_tls_ready(void *arg)
{
	struct rpc_conn	*c = arg;

	int		 r;

	if (tls_conn_peer_id(c->tls) != NULL &&
	    (c->peer_id = strdup(tls_conn_peer_id(c->tls))) == NULL)
		return WICK_ERR_ALLOC;
	c->peer.spiffe_id = c->peer_id;
	c->peer.cert = tls_conn_peer_cert(c->tls);
	/* A verified peer is counted by its ID from now on. */
	if (c->peer_id != NULL) {
		conn_detach(c);
		if ((r = conn_admit(c, c->peer_id, 0)) != 0)
			return r;
	}
	return conn_start_h2(c);
}

static int
conn_tls_plain(void *arg, const uint8_t *p, size_t n)
{
	struct rpc_conn	*c = arg;
	int		 r;

	if ((r = conn_recv_h2(c, p, n)) != 0)
		return r;
	return c->closing ? WICK_ERR_STATE : 0;
}

static int
conn_recv_tls(struct rpc_conn *c, const uint8_t *p, size_t n)
{
	int r;

	r = rpc_io_tls_recv(&c->io, p, n, &c->handshaken, conn_tls_ready,
	    conn_tls_plain, c);
	if (r != 0 && !c->handshaken)
		log_debug("TLS handshake from %s failed: %s", c->peer.addr,
		    tls_conn_error(c->tls));
	return r;
}

/*
 * The deadline timers of the calls this read began that are still open:
 * most calls are answered within the read that brought them, and a timer
 * each would cost an allocation, a heap insertion and removal and one
 * more loop iteration for its close.
 */
static void
conn_arm_deadlines(struct rpc_conn *c)
{
	struct rpc_call	*call, *next;
	uint64_t	 now;

	if (!c->deadlines_due)
		return;
	c->deadlines_due = 0;
	now = uv_now(c->srv->loop);
	TAILQ_FOREACH_SAFE(call, &c->calls, entry, next) {
		if (!call->timer_due)
			continue;
		call->timer_due = 0;
		if (call->finished || call->handler_gone || call->timer != NULL)
			continue;
		if ((call->timer = malloc(sizeof(*call->timer))) == NULL) {
			call_abort(call, RPC_RESOURCE_EXHAUSTED, "out of memory",
			    RPC_END_CANCELLED);
			continue;
		}
		uv_timer_init(c->srv->loop, call->timer);
		call->timer->data = call;
		uv_timer_start(call->timer, call_deadline_cb,
		    call->deadline > now ? call->deadline - now : 0, 0);
	}
}

/* Bytes from the peer: through TLS and HTTP/2 to the calls. */
static void
conn_input(struct rpc_conn *c, uint8_t *p, size_t n)
{
	int r;

	if (c->tls != NULL)
		r = conn_recv_tls(c, p, n);
	else
		r = conn_recv_h2(c, p, n);
	/* Requests may carry tokens: the buffer keeps no copy. */
	wipe(p, n);
	if (r != 0) {
		/* Let nghttp2 send its GOAWAY where it queued one. */
		if (c->ngh != NULL && !c->closing)
			conn_flush(c);
		conn_close(c);
		return;
	}
	conn_flush(c);
	if (!c->closing)
		conn_arm_deadlines(c);
	/* Stop reading while the peer does not take our output. */
	if (!c->closing && c->io.pending >= conn_limits(c)->max_output) {
		c->read_stopped = 1;
		(void)uv_read_stop(&c->h.stream);
	}
}

static void
conn_read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *b)
{
	struct rpc_conn	*c = s->data;

	/*
	 * Nothing read: queued already (a stash waits and the peer sent
	 * more), or the turn is over and there is no room for a stash.
	 * Either way the bytes stay in the kernel, unwatched until the
	 * queue comes to c (server_resume_cb()).
	 */
	if (nread == UV_ENOBUFS && !c->closing) {
		conn_queue(c, 1);
		return;
	}
	if (b->base != NULL && (uint8_t *)b->base == c->stash &&
	    !c->queued) {
		if (nread > 0 && !c->closing) {
			c->nstash = (size_t)nread;
			conn_queue(c, 0);
			return;
		}
		conn_unstash(c);	/* nothing read into it */
	}
	if (nread == 0 || c->closing)
		return;
	if (nread < 0) {
		conn_close(c);
		return;
	}
	conn_input(c, (uint8_t *)b->base, (size_t)nread);
}

static void
conn_idle_cb(uv_timer_t *t)
{
	struct rpc_conn	*c = t->data;
	uint64_t	 idle, left;

	if (c->ncalls > 0)
		return;
	/* Calls leave the timer running (restarting it is a heap operation
	 * on every call): how long this one has been idle is told here. */
	if (c->had_call && (idle = uv_now(c->srv->loop) - c->idle_from) <
	    c->srv->opts.idle_ms) {
		left = c->srv->opts.idle_ms - idle;
		uv_timer_start(&c->idle, conn_idle_cb, left,
		    c->srv->opts.idle_ms);
		return;
	}
	if (!c->established || !c->had_call) {
		log_debug("dropping the connection of %s: %s", conn_who(c),
		    c->established ? "no call in time" :
		    "it never spoke HTTP/2");
		c->srv->stats.connections_timed_out++;
		conn_close(c);
		return;
	}
	log_debug("closing idle connection");
	if (c->ngh == NULL || c->goaway_sent) {
		conn_close(c);
		return;
	}
	/* GOAWAY first, so that the client knows to open a new one. */
	(void)nghttp2_submit_goaway(c->ngh, NGHTTP2_FLAG_NONE,
	    nghttp2_session_get_last_proc_stream_id(c->ngh), NGHTTP2_NO_ERROR,
	    NULL, 0);
	c->goaway_sent = 1;
	conn_flush(c);
}

/* The oldest connection of an anonymous peer, or NULL. */
static struct rpc_conn *
oldest_anon(struct rpc_server *srv)
{
	struct peer_acct	*a;
	struct rpc_conn		*c, *oldest = NULL;

	TAILQ_FOREACH(a, &srv->peers, entry)
		if (a->anon && (c = TAILQ_FIRST(&a->conns)) != NULL &&
		    (oldest == NULL || c->accepted_at < oldest->accepted_at))
			oldest = c;
	return oldest;
}

/*
 * The server (or its share for anonymous peers) is full: close a
 * connection to make room for the newcomer, or refuse it.
 *
 * Anonymous (a TLS peer before or without a certificate): the oldest
 * anonymous connection goes, whoever holds it.  Every agent's connection
 * starts anonymous, so counting shares here would let a few hundred
 * addresses holding one connection each keep agents out; this way a
 * flood only churns itself, each of its connections living as long as
 * the flood's own rate allows, and a newcomer finishes its handshake in
 * the meantime.  Anonymous connections never displace verified ones.
 *
 * Verified (Unix peers): an anonymous connection first, else one of the
 * peer holding the most, if that is more than the newcomer's (its
 * oldest connection without a call), so that one peer cannot starve
 * the others.
 */
static int
server_make_room(struct rpc_server *srv, const struct peer_acct *newcomer,
    int anon_only)
{
	struct peer_acct	*a, *best = NULL;
	struct rpc_conn		*c, *victim;

	if ((victim = oldest_anon(srv)) == NULL &&
	    !(newcomer->anon || anon_only)) {
		TAILQ_FOREACH(a, &srv->peers, entry)
			if (a != newcomer && a->nconns > 0 && (best == NULL ||
			    a->nconns > best->nconns))
				best = a;
		if (best == NULL || best->nconns <= newcomer->nconns + 1)
			return WICK_ERR_LIMIT;
		TAILQ_FOREACH(c, &best->conns, peer_entry)
			if (c->ncalls == 0) {
				victim = c;
				break;
			}
		if (victim == NULL)
			victim = TAILQ_FIRST(&best->conns);
	}
	if (victim == NULL)
		return WICK_ERR_LIMIT;
	log_warn_rl(&rl_refused, "closing the oldest connection of %s (%u "
	    "open) to serve %s: %u connections is the limit",
	    victim->acct->key, victim->acct->nconns, newcomer->key, anon_only ?
	    srv->opts.anon_max_conns : srv->opts.max_conns);
	srv->stats.connections_evicted++;
	conn_close(victim);
	return 0;
}

/* Count a new or newly identified connection against its peer's share. */
static int
conn_admit(struct rpc_conn *c, const char *key, int anon)
{
	struct rpc_server	*srv = c->srv;
	const struct rpc_limits	*l = anon ? &srv->opts.anon : &srv->opts.known;
	struct peer_acct	*a;

	if ((a = peer_get(srv, key, anon)) == NULL) {
		log_error("out of memory accepting a connection");
		return WICK_ERR_ALLOC;
	}
	if (a->nconns >= l->max_conns) {
		log_warn_rl(&rl_refused, "connection from %s refused: it has "
		    "%u open, the most one peer may have", key, a->nconns);
		srv->stats.connections_refused++;
		peer_put(srv, a);
		return WICK_ERR_LIMIT;
	}
	if (srv->nopen >= srv->opts.max_conns &&
	    server_make_room(srv, a, 0) != 0) {
		log_warn_rl(&rl_refused, "connection from %s refused: %u "
		    "connections open, none to spare", key, srv->nopen);
		srv->stats.connections_refused++;
		peer_put(srv, a);
		return WICK_ERR_LIMIT;
	}
	if (anon && srv->nanon >= srv->opts.anon_max_conns &&
	    server_make_room(srv, a, 1) != 0) {
		log_warn_rl(&rl_refused, "connection from %s refused: %u "
		    "connections without a verified certificate open, none "
		    "to spare", key, srv->nanon);
		srv->stats.connections_refused++;
		peer_put(srv, a);
		return WICK_ERR_LIMIT;
	}
	c->anon = anon;
	conn_attach(c, a);
	srv->nopen++;
	if (anon)
		srv->nanon++;
	return 0;
}

/* The peer's key: "uid N" on Unix sockets, else its address. */
static void
conn_identify(struct rpc_conn *c, int is_unix, char *key, size_t len)
{
	struct sockaddr_storage	 ss;
	char			 host[INET6_ADDRSTRLEN];
	int			 sslen = sizeof(ss), port;

	if (is_unix) {
		snprintf(key, len, "uid %lu", (unsigned long)c->peer.uid);
		return;
	}
	snprintf(key, len, "an unknown address");
	if (uv_tcp_getpeername(&c->h.tcp, (struct sockaddr *)&ss,
	    &sslen) != 0)
		return;
	if (ss.ss_family == AF_INET6) {
		uv_ip6_name((struct sockaddr_in6 *)&ss, host, sizeof(host));
		port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
		snprintf(c->peer.addr, sizeof(c->peer.addr), "[%s]:%d", host,
		    port);
	} else {
		uv_ip4_name((struct sockaddr_in *)&ss, host, sizeof(host));
		port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
		snprintf(c->peer.addr, sizeof(c->peer.addr), "%s:%d", host,
		    port);
	}
	snprintf(key, len, "address %s", host);
}

static void
listener_accept_cb(uv_stream_t *ls, int status)
{
	struct rpc_listener	*l = ls->data;
	struct rpc_server	*srv = l->srv;
	struct rpc_conn		*c;
	char			 key[64];
	int			 fd;

	if (status != 0)
		return;
	/*
	 * At most RPC_ACCEPT_BURST a turn of the loop: clients that close
	 * and connect again as fast as we accept would otherwise keep us in
	 * libuv's accept loop while the connections we have wait.  Not
	 * accepting now makes libuv stop watching the listener; the turn
	 * callback accepts it after this poll's other events.
	 */
	if (srv->accepted_turn >= RPC_ACCEPT_BURST && !srv->shutting_down) {
		l->deferred = 1;
		srv->stats.accepts_deferred++;
		return;
	}
	srv->accepted_turn++;
	if ((c = calloc(1, sizeof(*c))) == NULL) {
		/* Not accepted: tried again next turn (libuv waits). */
		log_error("out of memory accepting a connection");
		l->deferred = 1;
		return;
	}
	c->srv = srv;
	TAILQ_INIT(&c->calls);
	if (l->is_unix)
		uv_pipe_init(srv->loop, &c->h.pipe, 0);
	else
		uv_tcp_init(srv->loop, &c->h.tcp);
	c->h.handle.data = c;
	c->io.stream = &c->h.stream;
	c->io.written = conn_written;
	c->accepted_at = c->progress_at = uv_now(srv->loop);
	uv_timer_init(srv->loop, &c->idle);
	c->idle.data = c;
	uv_timer_init(srv->loop, &c->flush);
	c->flush.data = c;
	TAILQ_INSERT_TAIL(&srv->conns, c, entry);
	srv->stats.connections_active++;
	srv->stats.connections_total++;
	if (uv_accept(ls, &c->h.stream) != 0) {
		/* From the turn callback libuv would not watch the
		 * listener again after a failed accept: listen anew. */
		l->relisten = 1;
		conn_close(c);
		return;
	}
	if (srv->shutting_down) {
		conn_close(c);
		return;
	}
	if (l->is_unix) {
		c->peer.is_unix = 1;
		if (uv_fileno(&c->h.handle, &fd) != 0 ||
		    peercred_ucred(fd, &c->peer.cred) != 0) {
			conn_close(c);
			return;
		}
		c->peer.pid = c->peer.cred.pid;
		c->peer.uid = c->peer.cred.uid;
		c->peer.gid = c->peer.cred.gid;
	} else
		(void)uv_tcp_nodelay(&c->h.tcp, 1);
	conn_identify(c, l->is_unix, key, sizeof(key));
	/* Until a certificate is verified, a TLS peer is anonymous. */
	if (conn_admit(c, key, l->tls != NULL) != 0) {
		conn_close(c);
		return;
	}
	/* Admitted by the kernel's record of its uid: now the reads of
	 * /proc, which a refused connection does not cost. */
	if (l->is_unix && peercred_complete(&c->peer.cred,
	    srv->opts.hold_peer_status) != 0) {
		conn_close(c);
		return;
	}
	if (l->tls != NULL) {
		if (tls_conn_new(l->tls, NULL, &c->tls) != 0) {
			conn_close(c);
			return;
		}
		c->io.tls = c->tls;
	} else if (conn_start_h2(c) != 0) {
		conn_close(c);
		return;
	}
	uv_timer_start(&c->idle, conn_idle_cb, srv->opts.handshake_ms,
	    srv->opts.idle_ms);
	if (uv_read_start(&c->h.stream, conn_alloc_cb, conn_read_cb) != 0) {
		conn_close(c);
		return;
	}
	if (c->tls == NULL)
		conn_flush(c);
}

/*
 * Once a second: incomplete request messages past message_ms, anonymous
 * connections past anon_ms.
 */
static void
server_sweep_cb(uv_timer_t *t)
{
	struct rpc_server	*srv = t->data;
	struct rpc_conn		*c, *next;
	struct rpc_call		*call, *cnext;
	uint64_t		 now = uv_now(srv->loop);
	char			 msg[128];
	int			 ended;

	TAILQ_FOREACH_SAFE(c, &srv->conns, entry, next) {
		if (c->closing)
			continue;
		if (c->anon && now - c->accepted_at >= srv->opts.anon_ms) {
			log_info_rl(&rl_timeout, "closing the connection of "
			    "%s: no verified certificate after %llu ms",
			    conn_who(c), (unsigned long long)srv->opts.anon_ms);
			srv->stats.connections_timed_out++;
			conn_close(c);
			continue;
		}
		if ((c->io.pending > 0 || c->read_stopped) &&
		    now - c->progress_at >= srv->opts.stall_ms) {
			log_info_rl(&rl_timeout, "closing the connection of "
			    "%s: it took none of our output for %llu ms",
			    conn_who(c), (unsigned long long)srv->opts.stall_ms);
			srv->stats.connections_timed_out++;
			conn_close(c);
			continue;
		}
		ended = 0;
		TAILQ_FOREACH_SAFE(call, &c->calls, entry, cnext) {
			/* A header block never finished: nothing else may
			 * come on the connection (RFC 9113 6.10). */
			if (!call->started && !call->finished &&
			    now - call->begun_at >= srv->opts.message_ms) {
				log_info_rl(&rl_timeout, "closing the "
				    "connection of %s: request headers not "
				    "complete after %llu ms", conn_who(c),
				    (unsigned long long)srv->opts.message_ms);
				srv->stats.connections_timed_out++;
				conn_close(c);
				break;
			}
			if (call->msg_since == 0 || call->finished ||
			    call->handler_gone ||
			    now - call->msg_since < srv->opts.message_ms)
				continue;
			snprintf(msg, sizeof(msg), "request message not "
			    "complete after %llu ms",
			    (unsigned long long)srv->opts.message_ms);
			log_info_rl(&rl_timeout, "call %s from %s ended: %s",
			    call->path, conn_who(c), msg);
			srv->stats.messages_timed_out++;
			call_abort(call, RPC_RESOURCE_EXHAUSTED, msg,
			    RPC_END_CANCELLED);
			ended = 1;
		}
		if (ended && !c->closing)
			conn_flush(c);
	}
}

/* ---- server ------------------------------------------------------------- */

/*
 * File descriptors for max_conns connections: a refused accept (EMFILE)
 * would turn every peer away alike.  Raise the soft limit towards the
 * hard one; if that is not enough, serve fewer connections and say so.
 */
static void
server_fit_fds(struct rpc_server *srv)
{
	struct rlimit	 rl;
	rlim_t		 per = srv->opts.hold_peer_status ? 2 : 1;
	rlim_t		 want = (rlim_t)srv->opts.max_conns * per +
			    RPC_SPARE_FDS;

	if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
		return;
	if (rl.rlim_cur < RPC_MAX_FDS && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max < RPC_MAX_FDS ? rl.rlim_max :
		    RPC_MAX_FDS;
		(void)setrlimit(RLIMIT_NOFILE, &rl);
		if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
			return;
	}
	if (rl.rlim_cur >= want || rl.rlim_cur <= 2 * RPC_SPARE_FDS)
		return;
	log_warn("only %llu file descriptors: serving %llu connections "
	    "instead of %u", (unsigned long long)rl.rlim_cur,
	    (unsigned long long)((rl.rlim_cur - RPC_SPARE_FDS) / per),
	    srv->opts.max_conns);
	srv->opts.max_conns = (uint32_t)((rl.rlim_cur - RPC_SPARE_FDS) /
	    per);
}

static void
limits_defaults(struct rpc_limits *l, size_t max_message, size_t conn_budget,
    size_t peer_budget, uint32_t max_streams, uint32_t max_conns,
    size_t max_output)
{
	if (l->max_output == 0)
		l->max_output = max_output;
	if (l->max_message == 0)
		l->max_message = max_message;
	if (l->conn_budget == 0)
		l->conn_budget = conn_budget;
	if (l->peer_budget == 0)
		l->peer_budget = peer_budget;
	if (l->max_streams == 0)
		l->max_streams = max_streams;
	if (l->max_conns == 0)
		l->max_conns = max_conns;
}

int
rpc_server_new(uv_loop_t *loop, const struct rpc_server_opts *opts,
    const struct rpc_method *methods, size_t nmethods,
    struct rpc_server **out)
{
	struct rpc_server *srv;

	*out = NULL;
	if ((srv = calloc(1, sizeof(*srv))) == NULL)
		return WICK_ERR_ALLOC;
	srv->loop = loop;
	srv->methods = methods;
	srv->nmethods = nmethods;
	if (opts != NULL)
		srv->opts = *opts;
	limits_defaults(&srv->opts.known, RPC_DEFAULT_MAX_MESSAGE,
	    RPC_DEFAULT_CONN_BUDGET, RPC_DEFAULT_PEER_BUDGET,
	    RPC_DEFAULT_MAX_STREAMS, RPC_DEFAULT_PEER_CONNS,
	    RPC_DEFAULT_MAX_OUTPUT);
	limits_defaults(&srv->opts.anon, RPC_DEFAULT_ANON_MAX_MESSAGE,
	    RPC_DEFAULT_ANON_CONN_BUDGET, RPC_DEFAULT_ANON_PEER_BUDGET,
	    RPC_DEFAULT_ANON_STREAMS, RPC_DEFAULT_ANON_PEER_CONNS,
	    RPC_DEFAULT_ANON_OUTPUT);
	if (srv->opts.max_conns == 0)
		srv->opts.max_conns = RPC_DEFAULT_MAX_CONNS;
	server_fit_fds(srv);
	if (srv->opts.anon_max_conns == 0)
		srv->opts.anon_max_conns = srv->opts.max_conns / 4 > 0 ?
		    srv->opts.max_conns / 4 : 1;
	if (srv->opts.anon_max_conns > srv->opts.max_conns)
		srv->opts.anon_max_conns = srv->opts.max_conns;
	if (srv->opts.idle_ms == 0)
		srv->opts.idle_ms = RPC_DEFAULT_IDLE_MS;
	if (srv->opts.handshake_ms == 0)
		srv->opts.handshake_ms = RPC_DEFAULT_HANDSHAKE_MS;
	if (srv->opts.first_call_ms == 0)
		srv->opts.first_call_ms = RPC_DEFAULT_FIRST_CALL_MS;
	if (srv->opts.message_ms == 0)
		srv->opts.message_ms = RPC_DEFAULT_MESSAGE_MS;
	if (srv->opts.anon_ms == 0)
		srv->opts.anon_ms = RPC_DEFAULT_ANON_MS;
	if (srv->opts.stall_ms == 0)
		srv->opts.stall_ms = RPC_DEFAULT_STALL_MS;
	srv->own_budget.max = RPC_DEFAULT_BUDGET;
	srv->budget = srv->opts.budget != NULL ? srv->opts.budget :
	    &srv->own_budget;
	TAILQ_INIT(&srv->conns);
	TAILQ_INIT(&srv->deferred);
	TAILQ_INIT(&srv->peers);
	if (nghttp2_session_callbacks_new(&srv->cbs) != 0 ||
	    nghttp2_option_new(&srv->ngopt) != 0) {
		rpc_server_free(srv);
		return WICK_ERR_ALLOC;
	}
	nghttp2_session_callbacks_set_on_begin_headers_callback(srv->cbs,
	    on_begin_headers_cb);
	nghttp2_session_callbacks_set_on_header_callback(srv->cbs,
	    on_header_cb);
	nghttp2_session_callbacks_set_on_frame_recv_callback(srv->cbs,
	    on_frame_recv_cb);
	nghttp2_session_callbacks_set_on_data_chunk_recv_callback(srv->cbs,
	    on_data_chunk_recv_cb);
	nghttp2_session_callbacks_set_on_stream_close_callback(srv->cbs,
	    on_stream_close_cb);
	nghttp2_session_callbacks_set_send_data_callback(srv->cbs,
	    conn_send_data_cb);
	nghttp2_session_callbacks_set_on_frame_send_callback(srv->cbs,
	    on_frame_send_cb);
	/* Hardening that nghttp2 1.52 offers. */
	nghttp2_option_set_max_settings(srv->ngopt, 32);
	nghttp2_option_set_max_outbound_ack(srv->ngopt, 1000);
	nghttp2_option_set_stream_reset_rate_limit(srv->ngopt,
	    RPC_MAX_STREAM_RESETS, RPC_MAX_STREAM_RESETS);
	nghttp2_option_set_max_send_header_block_length(srv->ngopt,
	    RPC_MAX_METADATA * 4);
	nghttp2_option_set_max_deflate_dynamic_table_size(srv->ngopt, 4096);
	/* Windows follow what we hold (call_ack); closed streams are not
	 * kept around. */
	nghttp2_option_set_no_auto_window_update(srv->ngopt, 1);
	nghttp2_option_set_no_closed_streams(srv->ngopt, 1);
	uv_timer_init(loop, &srv->grace);
	srv->grace.data = srv;
	uv_timer_init(loop, &srv->sweep);
	srv->sweep.data = srv;
	uv_timer_start(&srv->sweep, server_sweep_cb, RPC_SWEEP_MS,
	    RPC_SWEEP_MS);
	uv_unref((uv_handle_t *)&srv->sweep);
	uv_check_init(loop, &srv->turn);
	srv->turn.data = srv;
	uv_check_start(&srv->turn, server_turn_cb);
	uv_unref((uv_handle_t *)&srv->turn);
	uv_idle_init(loop, &srv->resume);
	srv->resume.data = srv;
	uv_unref((uv_handle_t *)&srv->resume);
	srv->handles_open = 4;
	*out = srv;
	return 0;
}

/*
 * Before the poll of each turn, after its timers, while any connection
 * is queued: handle their stashes and watch them again, oldest first,
 * within the turn's budget (what the poll then reads shares it).
 */
static void
server_resume_cb(uv_idle_t *h)
{
	struct rpc_server	*srv = h->data;
	struct rpc_conn		*c;
	uint8_t			*p;
	size_t			 n;

	srv->turn_reading = 0;
	while ((c = TAILQ_FIRST(&srv->deferred)) != NULL) {
		if (turn_over(srv))
			return;
		TAILQ_REMOVE(&srv->deferred, c, defer_entry);
		c->queued = 0;
		if ((p = c->stash) != NULL) {
			n = c->nstash;
			c->stash = NULL;
			c->nstash = 0;
			conn_release(c, RPC_STASH_MAX);
			conn_input(c, p, n);	/* wipes what it had */
			free(p);
		}
		if (c->stash_stopped) {
			c->stash_stopped = 0;
			if (!c->closing && !c->read_stopped &&
			    uv_read_start(&c->h.stream, conn_alloc_cb,
			    conn_read_cb) != 0)
				conn_close(c);
		}
	}
	(void)uv_idle_stop(h);
}

/* After each poll: a new accept budget, and deferred listeners resumed. */
static void
server_turn_cb(uv_check_t *t)
{
	struct rpc_server	*srv = t->data;
	struct rpc_listener	*l;
	size_t			 i;

	srv->accepted_turn = 0;
	srv->turn_reading = 0;	/* a new budget for the next turn */
	for (i = 0; i < srv->nlisteners; i++) {
		l = srv->listeners[i];
		if (l->deferred) {
			l->deferred = 0;
			if (l->open)
				listener_accept_cb(&l->h.stream, 0);
		}
		if (l->relisten) {
			l->relisten = 0;
			if (l->open && !srv->shutting_down)
				(void)uv_listen(&l->h.stream,
				    RPC_LISTEN_BACKLOG, listener_accept_cb);
		}
	}
}

static void
listener_close_cb(uv_handle_t *h)
{
	struct rpc_listener *l = h->data;
	struct rpc_server *srv = l->srv;

	srv->listeners_open--;
	server_check_done(srv);
}

int
rpc_server_listen_unix(struct rpc_server *srv, const char *path, int mode)
{
	struct rpc_listener	*l;
	struct stat		 st;
	int			 r;

	if (srv->nlisteners >= RPC_MAX_LISTENERS)
		return WICK_ERR_LIMIT;
	if (lstat(path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode)) {
			log_error("%s exists and is not a socket", path);
			return WICK_ERR_EXISTS;
		}
		(void)unlink(path);
	}
	if ((l = calloc(1, sizeof(*l))) == NULL)
		return WICK_ERR_ALLOC;
	l->srv = srv;
	l->is_unix = 1;
	uv_pipe_init(srv->loop, &l->h.pipe, 0);
	l->h.handle.data = l;
	srv->listeners[srv->nlisteners++] = l;
	srv->listeners_open++;
	l->open = 1;
	if ((r = uv_pipe_bind(&l->h.pipe, path)) != 0 ||
	    (r = uv_listen(&l->h.stream, RPC_LISTEN_BACKLOG,
	    listener_accept_cb)) != 0) {
		log_error("listen on %s: %s", path, uv_strerror(r));
		return err_from_uv(r);
	}
	if (chmod(path, (mode_t)mode) == -1) {
		log_error("chmod %s: %s", path, strerror(errno));
		return WICK_ERR_IO;
	}
	return 0;
}

int
rpc_server_listen_tcp(struct rpc_server *srv, const char *host, int port,
    struct tls_ctx *tls, int *port_out)
{
	struct rpc_listener	*l;
	struct sockaddr_storage	 ss;
	int			 r, len = sizeof(ss);

	if (port_out != NULL)
		*port_out = 0;
	if (srv->nlisteners >= RPC_MAX_LISTENERS)
		return WICK_ERR_LIMIT;
	if (uv_ip4_addr(host, port, (struct sockaddr_in *)&ss) != 0 &&
	    uv_ip6_addr(host, port, (struct sockaddr_in6 *)&ss) != 0) {
		log_error("bad listen address %s", host);
		return WICK_ERR_INVALID;
	}
	if ((l = calloc(1, sizeof(*l))) == NULL)
		return WICK_ERR_ALLOC;
	l->srv = srv;
	l->tls = tls;
	uv_tcp_init(srv->loop, &l->h.tcp);
	l->h.handle.data = l;
	srv->listeners[srv->nlisteners++] = l;
	srv->listeners_open++;
	l->open = 1;
	if ((r = uv_tcp_bind(&l->h.tcp, (struct sockaddr *)&ss, 0)) != 0 ||
	    (r = uv_listen(&l->h.stream, RPC_LISTEN_BACKLOG,
	    listener_accept_cb)) != 0) {
		log_error("listen on %s:%d: %s", host, port, uv_strerror(r));
		return err_from_uv(r);
	}
	if (port_out != NULL && uv_tcp_getsockname(&l->h.tcp,
	    (struct sockaddr *)&ss, &len) == 0)
		*port_out = ntohs(((struct sockaddr_in *)&ss)->sin_port);
	return 0;
}

/* The last handle of the server is closed: it may be freed now. */
static void
server_grace_close_cb(uv_handle_t *h)
{
	struct rpc_server *srv = h->data;

	if (--srv->handles_open != 0)
		return;
	if (srv->done != NULL)
		srv->done(srv, srv->done_arg);	/* may free srv */
	else if (srv->free_on_done)
		server_free_now(srv);
}

static void
server_check_done(struct rpc_server *srv)
{
	if (!srv->shutting_down || srv->done_called ||
	    srv->listeners_open > 0 || !TAILQ_EMPTY(&srv->conns))
		return;
	if (srv->grace_active) {
		srv->grace_active = 0;
		uv_timer_stop(&srv->grace);
	}
	srv->done_called = 1;
	uv_close((uv_handle_t *)&srv->grace, server_grace_close_cb);
	uv_close((uv_handle_t *)&srv->sweep, server_grace_close_cb);
	uv_close((uv_handle_t *)&srv->turn, server_grace_close_cb);
	uv_close((uv_handle_t *)&srv->resume, server_grace_close_cb);
}

/*
 * End the calls of c that are still open with UNAVAILABLE: the client
 * reads a status, not a reset, and knows to try again (elsewhere, or
 * after the restart).  With streams_only, the server-streaming calls
 * alone: in wick's APIs those are watches, which never end by themselves.
 */
static void
conn_end_calls(struct rpc_conn *c, int streams_only)
{
	struct rpc_call	*call, *next;

	TAILQ_FOREACH_SAFE(call, &c->calls, entry, next) {
		if (!call->started || call->finished || call->handler_gone ||
		    call->method == NULL)
			continue;
		if (streams_only && call->method->kind !=
		    RPC_KIND_SERVER_STREAM)
			continue;
		call_abort(call, RPC_UNAVAILABLE, "server shutting down",
		    RPC_END_CANCELLED);
		if (c->closing)
			return;
	}
	conn_flush(c);
}

/*
 * The grace period is over: what is still open ends with a status, and
 * the connections close once that is written; the few that do not take
 * it within RPC_SHUTDOWN_FLUSH_MS are closed then.
 */
static void
server_grace_cb(uv_timer_t *t)
{
	struct rpc_server	*srv = t->data;
	struct rpc_conn		*c, *next;

	srv->grace_active = 0;
	if (!srv->grace_over) {
		srv->grace_over = 1;
		TAILQ_FOREACH_SAFE(c, &srv->conns, entry, next)
			if (!c->closing && c->ngh != NULL)
				conn_end_calls(c, 0);
		if (!TAILQ_EMPTY(&srv->conns)) {
			srv->grace_active = 1;
			uv_timer_start(&srv->grace, server_grace_cb,
			    RPC_SHUTDOWN_FLUSH_MS, 0);
		}
		server_check_done(srv);
		return;
	}
	TAILQ_FOREACH_SAFE(c, &srv->conns, entry, next)
		conn_close(c);
}

void
rpc_server_shutdown_now(struct rpc_server *srv)
{
	struct rpc_conn	*c, *next;

	if (!srv->shutting_down || srv->done_called)
		return;
	srv->grace_over = 1;
	TAILQ_FOREACH_SAFE(c, &srv->conns, entry, next)
		conn_close(c);
	server_check_done(srv);
}

void
rpc_server_shutdown(struct rpc_server *srv, uint64_t grace_ms,
    void (*done)(struct rpc_server *, void *), void *arg)
{
	struct rpc_conn	*c, *next;
	size_t		 i;

	if (srv->shutting_down)
		return;
	srv->shutting_down = 1;
	srv->done = done;
	srv->done_arg = arg;
	for (i = 0; i < srv->nlisteners; i++) {
		if (srv->listeners[i]->open) {
			srv->listeners[i]->open = 0;
			uv_close(&srv->listeners[i]->h.handle,
			    listener_close_cb);
		}
	}
	TAILQ_FOREACH_SAFE(c, &srv->conns, entry, next) {
		if (c->closing)
			continue;
		if (c->ngh == NULL) {
			conn_close(c);
			continue;
		}
		(void)nghttp2_submit_goaway(c->ngh, NGHTTP2_FLAG_NONE,
		    nghttp2_session_get_last_proc_stream_id(c->ngh),
		    NGHTTP2_NO_ERROR, NULL, 0);
		c->goaway_sent = 1;
		conn_flush(c);
		if (!c->closing && c->ncalls == 0)
			conn_close(c);
		else if (!c->closing && srv->opts.streams_are_watches)
			conn_end_calls(c, 1);
	}
	srv->grace_active = 1;
	uv_timer_start(&srv->grace, server_grace_cb, grace_ms, 0);
	server_check_done(srv);
}

static void
server_free_now(struct rpc_server *srv)
{
	size_t i;

	for (i = 0; i < srv->nlisteners; i++)
		free(srv->listeners[i]);
	nghttp2_session_callbacks_del(srv->cbs);
	nghttp2_option_del(srv->ngopt);
	free(srv);
}

void
rpc_server_free(struct rpc_server *srv)
{
	if (srv == NULL)
		return;
	if (srv->handles_open > 0) {
		/*
		 * Not shut down (a listen that failed): its timers, turn
		 * handle and listeners are still the loop's.  They are
		 * closed now and srv freed by the last close callback, when
		 * the loop next runs; no done callback is called.
		 */
		rpc_server_shutdown(srv, 0, NULL, NULL);
		srv->done = NULL;
		srv->free_on_done = 1;
		rpc_server_shutdown_now(srv);
		return;
	}
	server_free_now(srv);
}

void
rpc_server_get_stats(const struct rpc_server *srv,
    struct rpc_server_stats *st)
{
	*st = srv->stats;
}
