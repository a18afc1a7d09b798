/*
 * httpd.c: GET and HEAD over HTTP/1.1 on the loop, one request per
 * connection; see httpd.h for the bounds and why this is ours.
 */
#include <sys/queue.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "httpd.h"
#include "log.h"

enum conn_state {
	CONN_READING = 0,	/* the request head */
	CONN_WRITING,		/* the response */
	CONN_LINGER,		/* shut down; discarding until EOF */
	CONN_CLOSING,
};

struct httpd_conn {
	uv_tcp_t		 tcp;
	uv_timer_t		 timer;
	uv_write_t		 wr;
	uv_shutdown_t		 sd;
	TAILQ_ENTRY(httpd_conn)	 entry;
	struct httpd		*h;
	enum conn_state		 state;
	int			 pending;	/* handles not yet closed */
	int			 eof;		/* the client is done sending */
	unsigned		 tag;
	struct buf		 out;
	size_t			 charged;	/* to h->out_held */
	size_t			 len;
	char			 head[HTTPD_MAX_HEAD];
};

TAILQ_HEAD(conn_list, httpd_conn);

struct httpd_listener {
	uv_tcp_t		 tcp;
	struct httpd		*h;
	unsigned		 tag;
};

struct httpd {
	uv_loop_t		*loop;
	httpd_handler_fn	*handler;
	void			*arg;
	struct httpd_listener	*listeners[HTTPD_MAX_LISTENERS];
	size_t			 nlisteners;
	struct conn_list	 conns;		/* oldest first */
	unsigned		 nconns;
	size_t			 out_held;
	int			 pending;	/* handles not yet closed */
	int			 closing;
	void			(*done)(void *);
	void			*done_arg;
	struct httpd_stats	 stats;
};

static struct log_ratelimit rl_full = LOG_RATELIMIT_DEFAULT;

static void	conn_read_cb(uv_stream_t *, ssize_t, const uv_buf_t *);

/* ---- parsing ---------------------------------------------------------- */

static int
is_tchar(unsigned char c)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9'))
		return 1;
	return c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/* Where the line that starts at p ends (its CR), or NULL if no CRLF
 * within n bytes; *bad when a lone CR or LF or a NUL comes first. */
static const char *
line_end(const char *p, size_t n, int *bad)
{
	size_t i;

	*bad = 0;
	for (i = 0; i < n; i++) {
		if (p[i] == '\r') {
			if (i + 1 == n)
				return NULL;
			if (p[i + 1] != '\n')
				break;
			return p + i;
		}
		if (p[i] == '\n' || p[i] == '\0')
			break;
	}
	if (i < n)
		*bad = 1;
	return NULL;
}

static int
parse_request_line(const char *p, size_t n, struct httpd_req *req)
{
	const char	*sp1, *sp2, *t;
	size_t		 mlen, tlen, i;

	if ((sp1 = memchr(p, ' ', n)) == NULL)
		return 400;
	mlen = (size_t)(sp1 - p);
	if (mlen == 0)
		return 400;
	for (i = 0; i < mlen; i++)
		if (!is_tchar((unsigned char)p[i]))
			return 400;
	t = sp1 + 1;
	if ((sp2 = memchr(t, ' ', n - (size_t)(t - p))) == NULL)
		return 400;
	tlen = (size_t)(sp2 - t);
	if (n - (size_t)(sp2 + 1 - p) != 8 ||
	    memcmp(sp2 + 1, "HTTP/1.", 7) != 0)
		return 400;
	if (sp2[8] != '0' && sp2[8] != '1')
		return (sp2[8] >= '0' && sp2[8] <= '9') ? 505 : 400;
	if (mlen == 3 && memcmp(p, "GET", 3) == 0)
		req->method = HTTPD_GET;
	else if (mlen == 4 && memcmp(p, "HEAD", 4) == 0)
		req->method = HTTPD_HEAD;
	else
		return 405;
	if (tlen == 0 || t[0] != '/')
		return 400;
	if (tlen > HTTPD_MAX_TARGET)
		return 414;
	for (i = 0; i < tlen; i++)
		if ((unsigned char)t[i] <= 0x20 || (unsigned char)t[i] >= 0x7f)
			return 400;
	for (i = 0; i < tlen && t[i] != '?' && t[i] != '#'; i++)
		req->path[i] = t[i];
	req->path[i] = '\0';
	return 0;
}

/* One header line; a body announced is refused (we never read one). */
static int
parse_header(const char *p, size_t n)
{
	const char	*colon, *v;
	size_t		 nlen, vlen, i;

	if ((colon = memchr(p, ':', n)) == NULL)
		return 400;
	nlen = (size_t)(colon - p);
	if (nlen == 0)
		return 400;
	for (i = 0; i < nlen; i++)
		if (!is_tchar((unsigned char)p[i]))
			return 400;
	v = colon + 1;
	vlen = n - nlen - 1;
	for (i = 0; i < vlen; i++) {
		unsigned char c = (unsigned char)v[i];

		if (c != '\t' && (c < 0x20 || c == 0x7f))
			return 400;
	}
	while (vlen > 0 && (*v == ' ' || *v == '\t')) {
		v++;
		vlen--;
	}
	while (vlen > 0 && (v[vlen - 1] == ' ' || v[vlen - 1] == '\t'))
		vlen--;
	if (nlen == 17 && strncasecmp(p, "transfer-encoding", 17) == 0)
		return 400;
	if (nlen == 14 && strncasecmp(p, "content-length", 14) == 0 &&
	    !(vlen == 1 && v[0] == '0'))
		return 400;
	return 0;
}

int
httpd_parse(const char *p, size_t n, struct httpd_req *req)
{
	const char	*end;
	size_t		 off, nheaders = 0;
	int		 bad, r;

	memset(req, 0, sizeof(*req));
	if (n > HTTPD_MAX_HEAD)
		return 431;
	if ((end = line_end(p, n, &bad)) == NULL)
		return bad ? 400 : HTTPD_MORE;
	if ((r = parse_request_line(p, (size_t)(end - p), req)) != 0)
		return r;
	off = (size_t)(end - p) + 2;
	for (;;) {
		if ((end = line_end(p + off, n - off, &bad)) == NULL)
			return bad ? 400 : HTTPD_MORE;
		if (end == p + off)
			break;		/* the empty line */
		if (p[off] == ' ' || p[off] == '\t')
			return 400;	/* obsolete line folding */
		if (++nheaders > HTTPD_MAX_HEADERS)
			return 431;
		if ((r = parse_header(p + off, (size_t)(end - p - off))) != 0)
			return r;
		off = (size_t)(end - p) + 2;
	}
	req->head_len = off + 2;
	return 0;
}

/* ---- connections ------------------------------------------------------ */

static const char *
reason(int status)
{
	switch (status) {
	case 200: return "OK";
	case 400: return "Bad Request";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 414: return "URI Too Long";
	case 431: return "Request Header Fields Too Large";
	case 500: return "Internal Server Error";
	case 503: return "Service Unavailable";
	case 505: return "HTTP Version Not Supported";
	default: return "Error";
	}
}

static void
server_maybe_done(struct httpd *h)
{
	if (!h->closing || h->pending > 0)
		return;
	if (h->done != NULL)
		h->done(h->done_arg);
	free(h);
}

static void
conn_closed_cb(uv_handle_t *hd)
{
	struct httpd_conn	*c = hd->data;
	struct httpd		*h = c->h;

	if (--c->pending > 0)
		return;
	buf_cleanup(&c->out);
	free(c);
	h->pending--;
	server_maybe_done(h);
}

static void
conn_close(struct httpd_conn *c)
{
	struct httpd *h = c->h;

	if (c->state == CONN_CLOSING)
		return;
	c->state = CONN_CLOSING;
	TAILQ_REMOVE(&h->conns, c, entry);
	h->nconns--;
	h->out_held -= c->charged;
	c->charged = 0;
	uv_close((uv_handle_t *)&c->timer, conn_closed_cb);
	uv_close((uv_handle_t *)&c->tcp, conn_closed_cb);
}

static void
conn_timer_cb(uv_timer_t *t)
{
	struct httpd_conn *c = t->data;

	if (c->state != CONN_LINGER)
		c->h->stats.timed_out++;
	conn_close(c);
}

static void
conn_alloc_cb(uv_handle_t *hd, size_t hint, uv_buf_t *b)
{
	struct httpd_conn *c = hd->data;

	/* After the head, what comes is discarded into the same space. */
	if (c->state == CONN_READING) {
		b->base = c->head + c->len;
		b->len = sizeof(c->head) - c->len;
	} else {
		b->base = c->head;
		b->len = sizeof(c->head);
	}
}

static void
conn_shutdown_cb(uv_shutdown_t *sd, int status)
{
	struct httpd_conn *c = sd->data;

	if (c->state == CONN_CLOSING)
		return;
	if (status != 0 || c->eof) {
		conn_close(c);
		return;
	}
	/* The client closes after reading; until then, and for a bounded
	 * time, its further bytes are read and dropped so that closing
	 * does not reset the connection before it has our answer. */
	c->state = CONN_LINGER;
	uv_timer_start(&c->timer, conn_timer_cb, HTTPD_LINGER_MS, 0);
	/* A refused newcomer was never read from. */
	(void)uv_read_start((uv_stream_t *)&c->tcp, conn_alloc_cb,
	    conn_read_cb);
}

static void
conn_written_cb(uv_write_t *wr, int status)
{
	struct httpd_conn	*c = wr->data;
	struct httpd		*h = c->h;

	if (c->state == CONN_CLOSING)
		return;
	h->out_held -= c->charged;
	c->charged = 0;
	buf_cleanup(&c->out);
	if (status != 0 || uv_shutdown(&c->sd, (uv_stream_t *)&c->tcp,
	    conn_shutdown_cb) != 0) {
		conn_close(c);
		return;
	}
}

/* Queue the response and stop parsing: one request per connection. */
static void
conn_respond(struct httpd_conn *c, int status, const char *ctype,
    const struct buf *body, int head_only)
{
	struct httpd	*h = c->h;
	size_t		 blen = body != NULL ? buf_len(body) : 0;
	uv_buf_t	 ub;

	h->stats.requests++;
	if (buf_putf(&c->out, "HTTP/1.1 %d %s\r\nContent-Type: %s\r\n"
	    "Content-Length: %zu\r\n%sCache-Control: no-store\r\n"
	    "Connection: close\r\n\r\n", status, reason(status), ctype, blen,
	    status == 405 ? "Allow: GET, HEAD\r\n" : "") != 0 ||
	    (!head_only && blen > 0 && buf_put(&c->out, buf_ptr(body),
	    blen) != 0)) {
		conn_close(c);
		return;
	}
	c->state = CONN_WRITING;
	c->charged = buf_len(&c->out);
	h->out_held += c->charged;
	ub = uv_buf_init((char *)buf_ptr(&c->out), (unsigned)buf_len(&c->out));
	c->wr.data = c;
	if (uv_write(&c->wr, (uv_stream_t *)&c->tcp, &ub, 1,
	    conn_written_cb) != 0)
		conn_close(c);
}

static void
conn_error(struct httpd_conn *c, int status)
{
	struct buf	body;

	buf_init(&body, 128);
	if (buf_putf(&body, "%d %s\n", status, reason(status)) != 0)
		buf_reset(&body);
	conn_respond(c, status, "text/plain; charset=utf-8", &body, 0);
	buf_cleanup(&body);
}

static void
conn_request(struct httpd_conn *c, const struct httpd_req *req)
{
	struct httpd		*h = c->h;
	struct httpd_resp	 resp;
	struct buf		 body;

	buf_init(&body, HTTPD_MAX_RESPONSE);
	memset(&resp, 0, sizeof(resp));
	resp.status = 200;
	resp.content_type = "text/plain; charset=utf-8";
	resp.body = &body;
	h->handler(h->arg, c->tag, req, &resp);
	if (h->out_held + buf_len(&body) > HTTPD_MAX_OUTPUT) {
		/* Answers nobody takes do not pile up. */
		h->stats.rejected++;
		buf_cleanup(&body);
		conn_error(c, 503);
		return;
	}
	conn_respond(c, resp.status, resp.content_type, &body,
	    req->method == HTTPD_HEAD);
	buf_cleanup(&body);
}

static void
conn_read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *b)
{
	struct httpd_conn	*c = s->data;
	struct httpd_req	 req;
	size_t			 n;
	int			 r, after_cr;

	if (c->state == CONN_CLOSING)
		return;
	/* A client that half-closes after its request still gets the
	 * answer being written. */
	if (nread == UV_EOF && c->state == CONN_WRITING) {
		c->eof = 1;
		(void)uv_read_stop(s);
		return;
	}
	if (nread < 0) {
		conn_close(c);
		return;
	}
	if (c->state != CONN_READING || nread == 0)
		return;		/* discarded */
	/* The head is parsed again from its start, so only when these bytes
	 * can end a line or make it bad (CR, LF, NUL, or whatever follows a
	 * CR): a head sent a byte at a time costs a parse per line, not a
	 * parse of up to HTTPD_MAX_HEAD bytes per byte. */
	after_cr = c->len > 0 && c->head[c->len - 1] == '\r';
	n = (size_t)nread;
	c->len += n;
	if (!after_cr && c->len < sizeof(c->head) &&
	    memchr(b->base, '\n', n) == NULL &&
	    memchr(b->base, '\r', n) == NULL &&
	    memchr(b->base, '\0', n) == NULL)
		return;
	c->h->stats.parses++;
	r = httpd_parse(c->head, c->len, &req);
	if (r == HTTPD_MORE) {
		if (c->len < sizeof(c->head))
			return;
		r = 431;
	}
	/* Nothing more is parsed; the rest is read and dropped. */
	if (r != 0)
		conn_error(c, r);
	else
		conn_request(c, &req);
}

/*
 * Full: the oldest connection still sending its head makes room; if
 * none is, the oldest that has its answer and lingers, then the oldest
 * still taking its answer.  Clients that send a request and then never
 * read or close (64 connects a second suffice) must not lock out the
 * others, such as a liveness probe, nor make every newcomer hold a
 * descriptor while it is told 503.
 */
static int
make_room(struct httpd *h)
{
	static const enum conn_state order[] = {
		CONN_READING, CONN_LINGER, CONN_WRITING
	};
	struct httpd_conn	*c;
	size_t			 i;

	for (i = 0; i < sizeof(order) / sizeof(order[0]); i++) {
		TAILQ_FOREACH(c, &h->conns, entry) {
			if (c->state == order[i]) {
				h->stats.evicted++;
				conn_close(c);
				return 0;
			}
		}
	}
	return WICK_ERR_LIMIT;
}

static void
listener_accept_cb(uv_stream_t *ls, int status)
{
	struct httpd_listener	*l = ls->data;
	struct httpd		*h = l->h;
	struct httpd_conn	*c;
	int			 full;

	if (status != 0 || h->closing)
		return;
	if ((c = calloc(1, sizeof(*c))) == NULL) {
		/* Take it off the backlog, or libuv stops accepting. */
		uv_tcp_t *tmp = malloc(sizeof(*tmp));

		if (tmp != NULL) {
			uv_tcp_init(h->loop, tmp);
			(void)uv_accept(ls, (uv_stream_t *)tmp);
			uv_close((uv_handle_t *)tmp, (uv_close_cb)free);
		}
		return;
	}
	full = h->nconns >= HTTPD_MAX_CONNS && make_room(h) != 0;
	c->h = h;
	c->tag = l->tag;
	uv_tcp_init(h->loop, &c->tcp);
	uv_timer_init(h->loop, &c->timer);
	c->tcp.data = c->timer.data = c->sd.data = c;
	c->pending = 2;
	h->pending++;
	TAILQ_INSERT_TAIL(&h->conns, c, entry);
	h->nconns++;
	buf_init(&c->out, HTTPD_MAX_RESPONSE + 1024);
	if (uv_accept(ls, (uv_stream_t *)&c->tcp) != 0) {
		conn_close(c);
		return;
	}
	uv_timer_start(&c->timer, conn_timer_cb, HTTPD_TIMEOUT_MS, 0);
	if (full) {
		h->stats.rejected++;
		log_warn_rl(&rl_full, "health/metrics listener: %u "
		    "connections open, refusing another", HTTPD_MAX_CONNS);
		conn_error(c, 503);
		return;
	}
	if (uv_read_start((uv_stream_t *)&c->tcp, conn_alloc_cb,
	    conn_read_cb) != 0)
		conn_close(c);
}

/* ---- server ----------------------------------------------------------- */

int
httpd_new(uv_loop_t *loop, httpd_handler_fn *handler, void *arg,
    struct httpd **out)
{
	struct httpd *h;

	*out = NULL;
	if ((h = calloc(1, sizeof(*h))) == NULL)
		return WICK_ERR_ALLOC;
	h->loop = loop;
	h->handler = handler;
	h->arg = arg;
	TAILQ_INIT(&h->conns);
	*out = h;
	return 0;
}

static void
listener_closed_cb(uv_handle_t *hd)
{
	struct httpd_listener	*l = hd->data;
	struct httpd		*h = l->h;

	free(l);
	h->pending--;
	server_maybe_done(h);
}

int
httpd_listen(struct httpd *h, const char *host, int port, unsigned tag,
    int *port_out)
{
	struct httpd_listener	*l;
	struct sockaddr_storage	 ss;
	int			 r, len = sizeof(ss);

	if (port_out != NULL)
		*port_out = 0;
	if (h->nlisteners >= HTTPD_MAX_LISTENERS)
		return WICK_ERR_LIMIT;
	/* SPIRE's default "localhost" without asking a resolver. */
	if (strcmp(host, "localhost") == 0)
		host = "127.0.0.1";
	if (port < 0 || port > 65535 ||
	    (uv_ip4_addr(host, port, (struct sockaddr_in *)&ss) != 0 &&
	    uv_ip6_addr(host, port, (struct sockaddr_in6 *)&ss) != 0))
		return WICK_ERR_INVALID;
	if ((l = calloc(1, sizeof(*l))) == NULL)
		return WICK_ERR_ALLOC;
	l->h = h;
	l->tag = tag;
	uv_tcp_init(h->loop, &l->tcp);
	l->tcp.data = l;
	h->listeners[h->nlisteners++] = l;
	h->pending++;
	if ((r = uv_tcp_bind(&l->tcp, (struct sockaddr *)&ss, 0)) != 0 ||
	    (r = uv_listen((uv_stream_t *)&l->tcp, 128,
	    listener_accept_cb)) != 0) {
		log_error("cannot listen on %s:%d: %s", host, port,
		    uv_strerror(r));
		return err_from_uv(r);
	}
	if (port_out != NULL && uv_tcp_getsockname(&l->tcp,
	    (struct sockaddr *)&ss, &len) == 0)
		*port_out = ntohs(ss.ss_family == AF_INET6 ?
		    ((struct sockaddr_in6 *)&ss)->sin6_port :
		    ((struct sockaddr_in *)&ss)->sin_port);
	return 0;
}

void
httpd_close(struct httpd *h, void (*done)(void *), void *arg)
{
	size_t i;

	if (h == NULL || h->closing)
		return;
	h->closing = 1;
	h->done = done;
	h->done_arg = arg;
	for (i = 0; i < h->nlisteners; i++)
		uv_close((uv_handle_t *)&h->listeners[i]->tcp,
		    listener_closed_cb);
	while (!TAILQ_EMPTY(&h->conns))
		conn_close(TAILQ_FIRST(&h->conns));
	server_maybe_done(h);
}

void
httpd_get_stats(const struct httpd *h, struct httpd_stats *st)
{
	*st = h->stats;
	st->conns = h->nconns;
}
