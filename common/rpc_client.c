/*
 * rpc_client.c: gRPC client over nghttp2 on a libuv loop.
 *
 * Ownership: the channel owns its connection, nghttp2 session, TLS state
 * and calls.  A call is freed right after its on_status callback; the
 * channel is freed from the close callback of its last handle.
 */
#include <sys/queue.h>

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nghttp2/nghttp2.h>
#include <uv.h>

#include "buf.h"
#include "log.h"
#include "rpc_client.h"
#include "rpc_frame.h"
#include "rpc_int.h"
#include "rpc_io.h"
#include "xmalloc.h"

#define CH_READ_CHUNK	(64 * 1024)
#define CH_MAX_OUTPUT	(1024 * 1024)
#define CH_MAX_QUEUE	(8u * 1024 * 1024)	/* per call, unsent */

struct rpc_ccall {
	TAILQ_ENTRY(rpc_ccall)	 entry;
	struct rpc_channel	*ch;
	int32_t			 stream_id;	/* 0 until submitted */
	char			*path;
	struct rpc_md		 md[RPC_MAX_METADATA_ENTRIES];
	size_t			 nmd;
	int64_t			 timeout_ms;
	uv_timer_t		*timer;
	struct buf		 out;
	int			 half_closed;
	int			 deferred;
	struct rpc_frame_dec	 dec;
	struct rpc_md		 hdrs[2][RPC_MAX_METADATA_ENTRIES];
	size_t			 nhdrs[2];
	int			 got_headers;
	int			 http_status;
	int			 status;	/* -1: none yet */
	char			*status_msg;
	int			 local_status;	/* -1: none */
	char			 local_msg[160];
	int			 ended;
	const struct rpc_client_cbs *cbs;
	void			*arg;
};

TAILQ_HEAD(rpc_ccall_list, rpc_ccall);

struct rpc_channel {
	uv_loop_t		*loop;
	union {
		uv_handle_t	 handle;
		uv_stream_t	 stream;
		uv_tcp_t	 tcp;
		uv_pipe_t	 pipe;
	} h;
	uv_connect_t		 creq;
	struct tls_ctx		*tls;
	struct tls_conn		*tlsc;
	struct rpc_io		 io;
	char			*peer_id;
	nghttp2_session		*ngh;
	size_t			 max_recv;
	char			 authority[160];
	int			 is_unix;
	int			 ready;		/* h2 session up */
	int			 closing;
	int			 pending_closes;
	int			 in_io;
	int			 close_requested;
	int			 failed;	/* connection gone */
	int			 goaway;	/* the server sent GOAWAY */
	struct rpc_ccall_list	 calls;
	struct rpc_ccall_list	 zombies;	/* ended inside nghttp2 */
	void			(*done)(void *);
	void			*done_arg;
};

static const struct rpc_client_cbs no_cbs;

static void	ch_flush(struct rpc_channel *);
static void	ccall_free(struct rpc_ccall *);
static void	ch_do_close(struct rpc_channel *);
static void	ch_fail(struct rpc_channel *, const char *);

/* ---- calls ------------------------------------------------------------ */

static void
ccall_free(struct rpc_ccall *c)
{
	rpc_md_free(c->md, c->nmd);
	rpc_md_free(c->hdrs[0], c->nhdrs[0]);
	rpc_md_free(c->hdrs[1], c->nhdrs[1]);
	free(c->path);
	free(c->status_msg);
	rpc_frame_cleanup(&c->dec);
	buf_cleanup(&c->out);
	free(c);
}

static void
ch_reap(struct rpc_channel *ch)
{
	struct rpc_ccall *c;

	while ((c = TAILQ_FIRST(&ch->zombies)) != NULL) {
		TAILQ_REMOVE(&ch->zombies, c, entry);
		ccall_free(c);
	}
}

/* Report the final status once and free the call. */
static void
ccall_end(struct rpc_ccall *c)
{
	struct rpc_channel	*ch = c->ch;
	int			 st;
	const char		*msg;

	if (c->ended)
		return;
	c->ended = 1;
	if (c->timer != NULL) {
		c->timer->data = NULL;
		uv_close((uv_handle_t *)c->timer, rpc_handle_free_cb);
		c->timer = NULL;
	}
	if (c->stream_id > 0 && ch->ngh != NULL)
		(void)nghttp2_session_set_stream_user_data(ch->ngh,
		    c->stream_id, NULL);
	if (c->local_status >= 0) {
		st = c->local_status;
		msg = c->local_msg;
	} else if (c->status >= 0) {
		st = c->status;
		msg = c->status_msg != NULL ? c->status_msg : "";
	} else if (c->http_status != 0 && c->http_status != 200) {
		st = c->http_status == 404 ? RPC_UNIMPLEMENTED :
		    c->http_status == 503 ? RPC_UNAVAILABLE : RPC_INTERNAL;
		snprintf(c->local_msg, sizeof(c->local_msg),
		    "HTTP status %d", c->http_status);
		msg = c->local_msg;
	} else {
		st = RPC_INTERNAL;
		msg = "stream closed without a gRPC status";
	}
	TAILQ_REMOVE(&ch->calls, c, entry);
	if (c->cbs->on_status != NULL)
		c->cbs->on_status(c, st, msg, c->arg);
	/*
	 * Inside nghttp2 (or the frame decoder) the call may still be on the
	 * stack: free it once the library has returned.
	 */
	if (ch->in_io)
		TAILQ_INSERT_TAIL(&ch->zombies, c, entry);
	else
		ccall_free(c);
}

static void
ccall_local_end(struct rpc_ccall *c, int st, const char *msg)
{
	if (c->ended)
		return;
	c->local_status = st;
	snprintf(c->local_msg, sizeof(c->local_msg), "%s", msg);
	if (c->stream_id > 0 && c->ch->ngh != NULL)
		(void)nghttp2_submit_rst_stream(c->ch->ngh, NGHTTP2_FLAG_NONE,
		    c->stream_id, NGHTTP2_CANCEL);
	ccall_end(c);
}

static ssize_t
ccall_read_cb(nghttp2_session *ngh, int32_t sid, uint8_t *dst, size_t len,
    uint32_t *flags, nghttp2_data_source *src, void *arg)
{
	struct rpc_ccall	*c = src->ptr;
	size_t			 n = buf_len(&c->out);

	if (n > len)
		n = len;
	if (n > 0) {
		memcpy(dst, buf_ptr(&c->out), n);
		if (buf_consume(&c->out, n) != 0)
			return NGHTTP2_ERR_CALLBACK_FAILURE;
		return (ssize_t)n;
	}
	if (c->half_closed) {
		*flags |= NGHTTP2_DATA_FLAG_EOF;
		return 0;
	}
	c->deferred = 1;
	return NGHTTP2_ERR_DEFERRED;
}

static int
ccall_submit(struct rpc_ccall *c)
{
	struct rpc_channel	*ch = c->ch;
	nghttp2_nv		 nva[RPC_MAX_METADATA_ENTRIES + 8];
	nghttp2_data_provider	 prd;
	char			 tmo[32];
	size_t			 n = 0, i;
	int32_t			 sid;

#define CNV(nm, v, l) (nghttp2_nv){ (uint8_t *)(nm), (uint8_t *)(v), \
	strlen(nm), (l), NGHTTP2_NV_FLAG_NONE }
	nva[n++] = CNV(":method", "POST", 4);
	nva[n++] = CNV(":scheme", ch->tls != NULL ? "https" : "http",
	    ch->tls != NULL ? 5 : 4);
	nva[n++] = CNV(":path", c->path, strlen(c->path));
	nva[n++] = CNV(":authority", ch->authority, strlen(ch->authority));
	nva[n++] = CNV("content-type", "application/grpc", 16);
	nva[n++] = CNV("te", "trailers", 8);
	if (c->timeout_ms >= 0) {
		snprintf(tmo, sizeof(tmo), "%lldm", (long long)c->timeout_ms);
		nva[n++] = CNV("grpc-timeout", tmo, strlen(tmo));
	}
	for (i = 0; i < c->nmd; i++)
		nva[n++] = CNV(c->md[i].name, c->md[i].value, c->md[i].len);
	prd.source.ptr = c;
	prd.read_callback = ccall_read_cb;
	sid = nghttp2_submit_request(ch->ngh, NULL, nva, n, &prd, c);
	if (sid < 0)
		return WICK_ERR_PROTOCOL;
	c->stream_id = sid;
	return 0;
}

static void
ccall_deadline_cb(uv_timer_t *t)
{
	struct rpc_ccall	*c = t->data;
	struct rpc_channel	*ch;

	if (c == NULL)
		return;
	ch = c->ch;
	ccall_local_end(c, RPC_DEADLINE_EXCEEDED, "deadline exceeded");
	ch_flush(ch);
}

int
rpc_ccall_start(struct rpc_channel *ch, const char *path,
    const struct rpc_md *md, size_t nmd, int64_t timeout_ms,
    const struct rpc_client_cbs *cbs, void *arg, struct rpc_ccall **out)
{
	struct rpc_ccall	*c;
	size_t			 i;

	*out = NULL;
	if (ch->closing)
		return WICK_ERR_STATE;
	if (ch->failed || ch->goaway)
		return WICK_ERR_UNAVAILABLE;
	if (nmd > RPC_MAX_METADATA_ENTRIES)
		return WICK_ERR_LIMIT;
	if ((c = calloc(1, sizeof(*c))) == NULL)
		return WICK_ERR_ALLOC;
	c->ch = ch;
	c->cbs = cbs;
	c->arg = arg;
	c->status = -1;
	c->local_status = -1;
	c->timeout_ms = timeout_ms;
	/* Requests may carry join tokens, answers keys and tokens: every
	 * buffer on the way is wiped (rpc_io.h). */
	buf_init(&c->out, CH_MAX_QUEUE);
	buf_set_secret(&c->out);
	rpc_frame_init(&c->dec, ch->max_recv);
	TAILQ_INSERT_TAIL(&ch->calls, c, entry);
	if ((c->path = strdup(path)) == NULL)
		goto oom;
	for (i = 0; i < nmd; i++) {
		if (rpc_md_set(&c->md[i], md[i].name, strlen(md[i].name),
		    md[i].value, md[i].len, RPC_MD_TO_WIRE) != 0)
			goto oom;
		c->nmd++;
	}
	if (timeout_ms >= 0) {
		if ((c->timer = malloc(sizeof(*c->timer))) == NULL)
			goto oom;
		uv_timer_init(ch->loop, c->timer);
		c->timer->data = c;
		uv_timer_start(c->timer, ccall_deadline_cb, (uint64_t)timeout_ms,
		    0);
	}
	if (ch->ready && ccall_submit(c) != 0) {
		/* The caller learns it from the return value alone. */
		c->cbs = &no_cbs;
		ccall_end(c);
		return WICK_ERR_PROTOCOL;
	}
	*out = c;
	ch_flush(ch);
	return 0;
oom:
	c->cbs = &no_cbs;
	ccall_end(c);
	return WICK_ERR_ALLOC;
}

int
rpc_ccall_send(struct rpc_ccall *c, const uint8_t *p, size_t n)
{
	int r;

	if (c->half_closed || c->ended)
		return WICK_ERR_STATE;
	if (n > UINT32_MAX)
		return WICK_ERR_LIMIT;
	if ((r = buf_put_u8(&c->out, 0)) != 0 ||
	    (r = buf_put_u32be(&c->out, (uint32_t)n)) != 0 ||
	    (r = buf_put(&c->out, p, n)) != 0)
		return r;
	if (c->deferred && c->stream_id > 0) {
		c->deferred = 0;
		(void)nghttp2_session_resume_data(c->ch->ngh, c->stream_id);
	}
	ch_flush(c->ch);
	return 0;
}

int
rpc_ccall_half_close(struct rpc_ccall *c)
{
	if (c->half_closed || c->ended)
		return WICK_ERR_STATE;
	c->half_closed = 1;
	if (c->deferred && c->stream_id > 0) {
		c->deferred = 0;
		(void)nghttp2_session_resume_data(c->ch->ngh, c->stream_id);
	}
	ch_flush(c->ch);
	return 0;
}

void
rpc_ccall_cancel(struct rpc_ccall *c)
{
	struct rpc_channel *ch = c->ch;

	ccall_local_end(c, RPC_CANCELLED, "cancelled by the client");
	ch_flush(ch);
}

size_t
rpc_ccall_header_count(const struct rpc_ccall *c, int trailers)
{
	return c->nhdrs[trailers ? 1 : 0];
}

const struct rpc_md *
rpc_ccall_header(const struct rpc_ccall *c, int trailers, size_t i)
{
	int t = trailers ? 1 : 0;

	return i < c->nhdrs[t] ? &c->hdrs[t][i] : NULL;
}

/* ---- nghttp2 callbacks -------------------------------------------------- */

static int
cl_on_header_cb(nghttp2_session *ngh, const nghttp2_frame *frame,
    const uint8_t *name, size_t namelen, const uint8_t *value,
    size_t valuelen, uint8_t flags, void *arg)
{
	struct rpc_ccall	*c;
	const char		*n = (const char *)name;
	const char		*v = (const char *)value;
	int			 t, r;

	if (frame->hd.type != NGHTTP2_HEADERS || (c =
	    nghttp2_session_get_stream_user_data(ngh, frame->hd.stream_id)) ==
	    NULL)
		return 0;
	/* A trailers-only response (END_STREAM on the first) is trailers. */
	t = c->got_headers || (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) ?
	    1 : 0;
	if (strcmp(n, ":status") == 0) {
		c->http_status = atoi(v);
		return 0;
	}
	if (strcmp(n, "grpc-status") == 0) {
		c->status = atoi(v);
		return 0;
	}
	if (strcmp(n, "grpc-message") == 0) {
		free(c->status_msg);
		c->status_msg = NULL;
		if (rpc_percent_decode(v, &c->status_msg) != 0)
			return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
		return 0;
	}
	if (n[0] == ':' || strcmp(n, "content-type") == 0 ||
	    strncmp(n, "grpc-", 5) == 0 ||
	    c->nhdrs[t] >= RPC_MAX_METADATA_ENTRIES)
		return 0;
	r = rpc_md_set(&c->hdrs[t][c->nhdrs[t]], n, namelen, value, valuelen,
	    RPC_MD_FROM_WIRE);
	if (r == WICK_ERR_INVALID)
		return 0;	/* undecodable -bin value: dropped */
	if (r != 0)
		return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
	c->nhdrs[t]++;
	return 0;
}

static int
cl_on_frame_recv_cb(nghttp2_session *ngh, const nghttp2_frame *frame,
    void *arg)
{
	struct rpc_channel	*ch = arg;
	struct rpc_ccall	*c;

	if (frame->hd.type == NGHTTP2_GOAWAY) {
		/* Streams above last_stream_id end with REFUSED_STREAM. */
		ch->goaway = 1;
		return 0;
	}
	if ((frame->hd.type != NGHTTP2_HEADERS &&
	    frame->hd.type != NGHTTP2_DATA) || (c =
	    nghttp2_session_get_stream_user_data(ngh, frame->hd.stream_id)) ==
	    NULL)
		return 0;
	/*
	 * The server ended the response while we still had our side open
	 * (it answered before we half-closed): the call is over, so reset
	 * our side with NO_ERROR rather than wait for a stream close that
	 * the server need not send.
	 */
	if ((frame->hd.flags & NGHTTP2_FLAG_END_STREAM) &&
	    nghttp2_session_get_stream_local_close(ngh,
	    frame->hd.stream_id) == 0)
		(void)nghttp2_submit_rst_stream(ngh, NGHTTP2_FLAG_NONE,
		    frame->hd.stream_id, NGHTTP2_NO_ERROR);
	if (frame->hd.type != NGHTTP2_HEADERS)
		return 0;
	if (!c->got_headers) {
		c->got_headers = 1;
		if (c->status < 0 && c->cbs->on_headers != NULL)
			c->cbs->on_headers(c, c->arg);
	}
	return 0;
}

static int
cl_message_cb(const uint8_t *p, size_t n, void *arg)
{
	struct rpc_ccall *c = arg;

	if (c->cbs->on_message != NULL)
		c->cbs->on_message(c, p, n, c->arg);
	return c->ended ? WICK_ERR_STATE : 0;
}

static int
cl_on_data_chunk_recv_cb(nghttp2_session *ngh, uint8_t flags, int32_t sid,
    const uint8_t *data, size_t len, void *arg)
{
	struct rpc_ccall	*c;
	char			 msg[128];
	int			 r;

	if ((c = nghttp2_session_get_stream_user_data(ngh, sid)) == NULL)
		return 0;
	r = rpc_frame_feed(&c->dec, data, len, cl_message_cb, c);
	if (r == 0 || r == WICK_ERR_STATE)
		return 0;
	if (r == WICK_ERR_LIMIT) {
		snprintf(msg, sizeof(msg), "received message of %u bytes "
		    "exceeds the limit of %zu", c->dec.declared, c->dec.max);
		ccall_local_end(c, RPC_RESOURCE_EXHAUSTED, msg);
	} else if (r == WICK_ERR_UNSUPPORTED)
		ccall_local_end(c, RPC_UNIMPLEMENTED,
		    "compressed message received");
	else
		ccall_local_end(c, RPC_RESOURCE_EXHAUSTED, "out of memory");
	return 0;
}

static int
cl_on_stream_close_cb(nghttp2_session *ngh, int32_t sid, uint32_t err,
    void *arg)
{
	struct rpc_ccall *c;

	if ((c = nghttp2_session_get_stream_user_data(ngh, sid)) == NULL)
		return 0;
	if (c->status < 0 && c->local_status < 0 && err != NGHTTP2_NO_ERROR) {
		c->local_status = err == NGHTTP2_REFUSED_STREAM ?
		    RPC_UNAVAILABLE : err == NGHTTP2_CANCEL ? RPC_CANCELLED :
		    RPC_INTERNAL;
		snprintf(c->local_msg, sizeof(c->local_msg),
		    "stream reset by the server: %s",
		    nghttp2_http2_strerror(err));
	}
	ccall_end(c);
	return 0;
}

/* ---- connection ---------------------------------------------------------- */

static void
ch_handle_close_cb(uv_handle_t *h)
{
	struct rpc_channel *ch = h->data;

	if (--ch->pending_closes > 0)
		return;
	ch_reap(ch);
	if (ch->done != NULL)
		ch->done(ch->done_arg);
	tls_conn_free(ch->tlsc);
	free(ch->peer_id);
	free(ch);
}

/* End every call with st and tear the connection down (not freed yet). */
static void
ch_fail_all(struct rpc_channel *ch, int st, const char *why)
{
	struct rpc_ccall *c;

	while ((c = TAILQ_FIRST(&ch->calls)) != NULL) {
		c->stream_id = 0;
		c->local_status = st;
		snprintf(c->local_msg, sizeof(c->local_msg), "%s", why);
		ccall_end(c);
	}
	if (ch->ngh != NULL) {
		nghttp2_session_del(ch->ngh);
		ch->ngh = NULL;
	}
	ch->ready = 0;
}

static void
ch_fail(struct rpc_channel *ch, const char *why)
{
	if (ch->closing)
		return;
	ch->failed = 1;
	ch_fail_all(ch, RPC_UNAVAILABLE, why);
}

/* A write finished (rpc_io). */
static void
ch_written(struct rpc_io *io, int status)
{
	struct rpc_channel *ch = (struct rpc_channel *)((char *)io -
	    offsetof(struct rpc_channel, io));

	if (ch->closing)
		return;
	if (status != 0) {
		ch_fail(ch, "connection lost while writing");
		return;
	}
	ch_flush(ch);
}

static void
ch_flush(struct rpc_channel *ch)
{
	const uint8_t	*data;
	ssize_t		 n;
	int		 r = 0;

	if (ch->closing || !ch->ready || ch->in_io)
		return;
	ch->in_io = 1;
	while (ch->io.pending < CH_MAX_OUTPUT) {
		n = nghttp2_session_mem_send(ch->ngh, &data);
		if (n <= 0) {
			if (n < 0)
				r = WICK_ERR_PROTOCOL;
			break;
		}
		if ((r = rpc_io_send(&ch->io, data, (size_t)n)) != 0)
			break;
	}
	ch->in_io = 0;
	ch_reap(ch);
	if (ch->close_requested)
		ch_do_close(ch);
	else if (r != 0)
		ch_fail(ch, "connection failed while sending");
}

static int
ch_start_h2(struct rpc_channel *ch)
{
	nghttp2_session_callbacks	*cbs;
	nghttp2_settings_entry		 iv[2];
	struct rpc_ccall		*c;
	int				 rv;

	if (nghttp2_session_callbacks_new(&cbs) != 0)
		return WICK_ERR_ALLOC;
	nghttp2_session_callbacks_set_on_header_callback(cbs, cl_on_header_cb);
	nghttp2_session_callbacks_set_on_frame_recv_callback(cbs,
	    cl_on_frame_recv_cb);
	nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs,
	    cl_on_data_chunk_recv_cb);
	nghttp2_session_callbacks_set_on_stream_close_callback(cbs,
	    cl_on_stream_close_cb);
	rv = nghttp2_session_client_new3(&ch->ngh, cbs, ch, NULL,
	    rpc_secret_mem());
	nghttp2_session_callbacks_del(cbs);
	if (rv != 0)
		return WICK_ERR_ALLOC;
	iv[0].settings_id = NGHTTP2_SETTINGS_ENABLE_PUSH;
	iv[0].value = 0;
	iv[1].settings_id = NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE;
	iv[1].value = 1024 * 1024;
	if (nghttp2_submit_settings(ch->ngh, NGHTTP2_FLAG_NONE, iv, 2) != 0)
		return WICK_ERR_PROTOCOL;
	(void)nghttp2_session_set_local_window_size(ch->ngh, NGHTTP2_FLAG_NONE,
	    0, 8 * 1024 * 1024);
	ch->ready = 1;
	TAILQ_FOREACH(c, &ch->calls, entry)
		if (c->stream_id == 0 && ccall_submit(c) != 0)
			return WICK_ERR_PROTOCOL;
	return 0;
}

static int
ch_recv_h2(struct rpc_channel *ch, const uint8_t *p, size_t n)
{
	ssize_t rv;

	ch->in_io = 1;
	rv = nghttp2_session_mem_recv(ch->ngh, p, n);
	ch->in_io = 0;
	ch_reap(ch);
	if (ch->close_requested)
		ch_do_close(ch);
	return rv < 0 && !ch->closing ? WICK_ERR_PROTOCOL : 0;
}

static int
ch_tls_ready(void *arg)
{
	struct rpc_channel *ch = arg;

	if (tls_conn_peer_id(ch->tlsc) != NULL &&
	    (ch->peer_id = strdup(tls_conn_peer_id(ch->tlsc))) == NULL)
		return WICK_ERR_ALLOC;
	return ch_start_h2(ch);
}

static int
ch_tls_plain(void *arg, const uint8_t *p, size_t n)
{
	struct rpc_channel	*ch = arg;
	int			 r;

	if ((r = ch_recv_h2(ch, p, n)) != 0)
		return r;
	return ch->ngh == NULL || ch->closing ? WICK_ERR_STATE : 0;
}

static int
ch_recv_tls(struct rpc_channel *ch, const uint8_t *p, size_t n)
{
	int handshaken = ch->ready;

	return rpc_io_tls_recv(&ch->io, p, n, &handshaken, ch_tls_ready,
	    ch_tls_plain, ch);
}

static void
ch_alloc_cb(uv_handle_t *h, size_t hint, uv_buf_t *b)
{
	static char slab[CH_READ_CHUNK];	/* loop thread only */

	*b = uv_buf_init(slab, sizeof(slab));
}

static void
ch_read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *b)
{
	struct rpc_channel	*ch = s->data;
	char			 why[160];
	int			 r;

	if (nread == 0 || ch->closing)
		return;
	if (nread < 0) {
		ch_fail(ch, "connection closed by the server");
		(void)uv_read_stop(s);
		return;
	}
	if (ch->tlsc != NULL)
		r = ch_recv_tls(ch, (const uint8_t *)b->base, (size_t)nread);
	else if (ch->ngh != NULL)
		r = ch_recv_h2(ch, (const uint8_t *)b->base, (size_t)nread);
	else
		r = WICK_ERR_STATE;
	/* Answers may carry keys and tokens: the shared slab keeps none. */
	wipe(b->base, (size_t)nread);
	if (ch->closing)
		return;
	if (r != 0) {
		/* TLS 1.3: a server that refuses our certificate says so in
		 * an alert after our side of the handshake is done. */
		if (ch->tlsc != NULL)
			snprintf(why, sizeof(why), "%s: %s", !ch->ready ?
			    "TLS handshake failed" : "connection failed",
			    tls_conn_error(ch->tlsc));
		else
			snprintf(why, sizeof(why), "connection failed");
		ch_fail(ch, why);
		(void)uv_read_stop(s);
		return;
	}
	ch_flush(ch);
}

static void
ch_connect_cb(uv_connect_t *req, int status)
{
	struct rpc_channel	*ch = req->data;
	int			 r;

	if (ch->closing)
		return;
	if (status != 0) {
		ch_fail(ch, uv_strerror(status));
		return;
	}
	if (uv_read_start(&ch->h.stream, ch_alloc_cb, ch_read_cb) != 0) {
		ch_fail(ch, "cannot read from the connection");
		return;
	}
	if (ch->tls != NULL) {
		if (tls_conn_new(ch->tls, NULL, &ch->tlsc) != 0) {
			ch_fail(ch, "cannot start TLS");
			return;
		}
		ch->io.tls = ch->tlsc;
		r = tls_conn_handshake(ch->tlsc);
		if ((r != 0 && r != WICK_ERR_AGAIN) ||
		    rpc_io_tls_flush(&ch->io) != 0)
			ch_fail(ch, "TLS handshake failed");
		return;
	}
	if (ch_start_h2(ch) != 0) {
		ch_fail(ch, "cannot start HTTP/2");
		return;
	}
	ch_flush(ch);
}

int
rpc_channel_new(uv_loop_t *loop, const char *target, struct tls_ctx *tls,
    size_t max_recv, struct rpc_channel **out)
{
	struct rpc_channel	*ch;
	struct sockaddr_storage	 ss;
	char			 host[128], *colon;
	const char		*path = NULL;
	int			 port, r;

	*out = NULL;
	if ((ch = calloc(1, sizeof(*ch))) == NULL)
		return WICK_ERR_ALLOC;
	ch->loop = loop;
	ch->tls = tls;
	ch->max_recv = max_recv > 0 ? max_recv : RPC_DEFAULT_MAX_MESSAGE;
	TAILQ_INIT(&ch->calls);
	TAILQ_INIT(&ch->zombies);
	if (strncmp(target, "unix://", 7) == 0)
		path = target + 7;
	else if (strncmp(target, "unix:", 5) == 0)
		path = target + 5;
	if (path != NULL) {
		if (*path != '/' || tls != NULL) {
			free(ch);
			return WICK_ERR_INVALID;
		}
		ch->is_unix = 1;
		snprintf(ch->authority, sizeof(ch->authority), "localhost");
		uv_pipe_init(loop, &ch->h.pipe, 0);
		ch->h.handle.data = ch;
		ch->io.stream = &ch->h.stream;
		ch->io.written = ch_written;
		ch->creq.data = ch;
		uv_pipe_connect(&ch->creq, &ch->h.pipe, path, ch_connect_cb);
		*out = ch;
		return 0;
	}
	if (snprintf(host, sizeof(host), "%s", target) >= (int)sizeof(host) ||
	    (colon = strrchr(host, ':')) == NULL) {
		free(ch);
		return WICK_ERR_INVALID;
	}
	*colon = '\0';
	port = atoi(colon + 1);
	snprintf(ch->authority, sizeof(ch->authority), "%s:%d", host, port);
	if (strcmp(host, "localhost") == 0)
		snprintf(host, sizeof(host), "127.0.0.1");
	if (uv_ip4_addr(host, port, (struct sockaddr_in *)&ss) != 0 &&
	    uv_ip6_addr(host, port, (struct sockaddr_in6 *)&ss) != 0) {
		free(ch);
		return WICK_ERR_INVALID;
	}
	uv_tcp_init(loop, &ch->h.tcp);
	ch->h.handle.data = ch;
	ch->io.stream = &ch->h.stream;
	ch->io.written = ch_written;
	ch->creq.data = ch;
	if ((r = uv_tcp_connect(&ch->creq, &ch->h.tcp, (struct sockaddr *)&ss,
	    ch_connect_cb)) != 0) {
		ch->creq.data = ch;
		*out = ch;
		ch_fail(ch, uv_strerror(r));
		return 0;
	}
	(void)uv_tcp_nodelay(&ch->h.tcp, 1);
	*out = ch;
	return 0;
}

const char *
rpc_channel_peer_id(const struct rpc_channel *ch)
{
	return ch->peer_id;
}

/* Never from inside nghttp2: ch_recv_h2 and ch_flush call it after. */
static void
ch_do_close(struct rpc_channel *ch)
{
	ch->close_requested = 0;
	ch->closing = 1;
	ch_fail_all(ch, RPC_CANCELLED, "channel closed");
	ch->pending_closes = 1;
	uv_close(&ch->h.handle, ch_handle_close_cb);
}

void
rpc_channel_close(struct rpc_channel *ch, void (*done)(void *), void *arg)
{
	if (ch->closing || ch->close_requested)
		return;
	ch->done = done;
	ch->done_arg = arg;
	if (ch->in_io) {
		ch->close_requested = 1;
		return;
	}
	ch_do_close(ch);
}
