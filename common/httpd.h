/*
 * httpd.h: a minimal HTTP/1.1 server on the daemon's libuv loop, for the
 * health and metrics endpoints.
 *
 * Why our own and not a library: the answers (is the datastore there,
 * the counters) live in state only the loop thread may touch.
 * libmicrohttpd (packaged by Debian) runs its own threads or its own
 * select loop, so every handler would need locks around the daemon's
 * state or a hand-off to the loop and back; libuv has no HTTP/1 server,
 * and nghttp2 speaks HTTP/2 only, which Prometheus and load-balancer
 * health checks do not speak in cleartext.  What is needed is small:
 * GET and HEAD, no bodies, one request per connection, three paths.
 * That is a few hundred lines that share the loop and the bounds of
 * every other listener, and the parser is fuzzed (tests/fuzz).
 *
 * Bounds: at most HTTPD_MAX_CONNS connections (when full, the oldest
 * connection still sending its request makes room, else the oldest that
 * has its answer, else the oldest still taking it); a request head of at most HTTPD_MAX_HEAD bytes
 * (431 beyond), that must arrive within HTTPD_TIMEOUT_MS of the accept;
 * the response must be taken within the same time; responses queued on
 * all connections at most HTTPD_MAX_OUTPUT bytes (503 beyond).  One
 * request per connection: the answer says "Connection: close", the
 * connection is shut down once it is written, and what the client sends
 * after its head is read and discarded for at most HTTPD_LINGER_MS.
 * Anything malformed gets 400 (405 for another method, 414 for a long
 * target, 505 for another version) and the connection is closed.
 *
 * Threads: loop thread only.
 */
#ifndef WICK_HTTPD_H
#define WICK_HTTPD_H

#include <stddef.h>

#include <uv.h>

#include "buf.h"
#include "err.h"

#define HTTPD_MAX_HEAD		8192	/* request line and headers */
#define HTTPD_MAX_TARGET	1024	/* request target */
#define HTTPD_MAX_HEADERS	64	/* header lines */
#define HTTPD_MAX_CONNS		64
#define HTTPD_TIMEOUT_MS	5000	/* accept to response written */
#define HTTPD_LINGER_MS		1000	/* after the response */
#define HTTPD_MAX_RESPONSE	(2u * 1024 * 1024)	/* one response */
#define HTTPD_MAX_OUTPUT	(8u * 1024 * 1024)	/* all connections */
#define HTTPD_MAX_LISTENERS	2

/* httpd_parse(): the head is not complete yet. */
#define HTTPD_MORE		1

enum httpd_method {
	HTTPD_GET = 0,
	HTTPD_HEAD,
};

struct httpd_req {
	enum httpd_method	 method;
	char			 path[HTTPD_MAX_TARGET + 1]; /* no query */
	size_t			 head_len;	/* bytes of the head */
};

/*
 * Parse a request head from the n bytes at p (n <= HTTPD_MAX_HEAD; no
 * NUL needed).  0: *req is filled; HTTPD_MORE: the head goes on (the
 * caller answers 431 once it holds HTTPD_MAX_HEAD bytes); otherwise the
 * HTTP status to answer: 400, 405, 414, 431 or 505.
 *
 * Accepted: "GET" or "HEAD", an origin-form target ("/" then visible
 * ASCII; the query is dropped from path), "HTTP/1.0" or "HTTP/1.1",
 * lines ending in CRLF, header names of token characters, values of
 * visible ASCII, space and tab; at most HTTPD_MAX_HEADERS of them, none
 * continued on the next line; no body (Content-Length other than 0 or
 * Transfer-Encoding is 400).
 */
int	 httpd_parse(const char *p, size_t n, struct httpd_req *req);

/* What a handler answers: status (200 unless set), a static content
 * type, and a body appended to body (at most HTTPD_MAX_RESPONSE). */
struct httpd_resp {
	int		 status;
	const char	*content_type;
	struct buf	*body;
};

/*
 * The handler runs on the loop for each well-formed request; tag is the
 * one given to httpd_listen() for the listener it came in on.  For HEAD
 * the body is built and its length sent, but not the body itself.
 */
typedef void httpd_handler_fn(void *arg, unsigned tag,
    const struct httpd_req *, struct httpd_resp *);

struct httpd;

int	 httpd_new(uv_loop_t *, httpd_handler_fn *, void *arg,
	    struct httpd **out) WICK_WUR;
/*
 * Listen on host (an address or a name, resolved now: call before the
 * loop runs) and port; *port_out (may be NULL) gets the bound port.
 * WICK_ERR_LIMIT past HTTPD_MAX_LISTENERS.
 */
int	 httpd_listen(struct httpd *, const char *host, int port,
	    unsigned tag, int *port_out) WICK_WUR;
/*
 * Close the listeners and every connection; done (may be NULL) runs
 * once every handle is closed, and the server is freed then.
 */
void	 httpd_close(struct httpd *, void (*done)(void *), void *arg);

struct httpd_stats {
	unsigned	 conns;		/* open now */
	unsigned long long requests;	/* answered, whatever the status */
	unsigned long long rejected;	/* full, or output budget */
	unsigned long long evicted;
	unsigned long long timed_out;
	unsigned long long parses;	/* of request heads, whole or not */
};
void	 httpd_get_stats(const struct httpd *, struct httpd_stats *);

#endif /* WICK_HTTPD_H */
