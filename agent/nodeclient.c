/*
 * nodeclient.c: the agent's TLS channel to the server.
 *
 * The server's name is resolved off the loop (uv_getaddrinfo) to at most
 * NODECLIENT_MAX_ADDRS addresses, tried in turn: a connection that fails
 * before its TLS handshake is done moves to the next address, and so
 * does one that drops later.  After a round in which no address answered
 * the name is resolved again and no connection is tried for a backoff
 * (1 s doubling to 30 s, jittered, reset by a handshake).  A unary call
 * whose connection never got through is sent again to the next address:
 * the server never saw it.  Whichever address answers, it must present
 * the server's SVID.  A new identity of the agent's (a renewed SVID) is
 * presented from the next connection on; calls in flight on the current
 * one finish there, and it closes after the last of them.
 */
#include <sys/queue.h>
#include <sys/socket.h>
#include <netdb.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/rand.h>

#include "log.h"
#include "nodeclient.h"
#include "tls.h"
#include "xmalloc.h"

struct nc_resolve {
	uv_getaddrinfo_t	 req;
	struct nodeclient	*nc;	/* NULL once the client is freed */
};

/* A unary call, kept encoded to be sent again to the next address. */
struct nc_call {
	struct nodeclient	*nc;
	struct rpc_channel	*ch;	/* the channel it went on */
	char			*path;
	uint8_t			*req;
	size_t			 len;
	int64_t			 timeout_ms;
	rpc_unary_fn		*fn;
	void			*arg;
	unsigned		 tries;
	TAILQ_ENTRY(nc_call)	 entry;	/* on the live list */
	struct nc_call		*next;	/* on the retry list */
};

struct nodeclient {
	uv_loop_t		*loop;
	char			*addr;
	char			 host[256];
	char			 port[8];
	char			 server_id[SPIFFEID_MAX_TD_LEN + 32];
	struct tls_ctx		*tls;
	struct rpc_channel	*ch;
	struct rpc_channel	*retiring;	/* old identity, calls on it */
	int			 ch_stale;	/* never connected: replace */
	int			 ch_up;		/* ch answered (logged) */
	size_t			 ch_idx;	/* address of ch */
	/* The addresses of the last resolution, as "ip:port". */
	char			 targets[NODECLIENT_MAX_ADDRS]
				    [NODECLIENT_TARGET_LEN];
	size_t			 ntargets;
	size_t			 cur;		/* next address to try */
	size_t			 tried;		/* failed in this round */
	unsigned		 rounds;	/* failed rounds in a row */
	uint64_t		 retry_at;	/* uv_now(): none before */
	struct nc_resolve	*resolving;
	struct log_ratelimit	 rl;		/* failure lines */
	struct log_ratelimit	 rl_try;	/* "trying" lines */
	void			(*resolved)(void *);	/* once, first time */
	void			*resolved_arg;
	TAILQ_HEAD(, nc_call)	 live;		/* unary calls in flight */
	uv_timer_t		*retry_timer;
	struct nc_call		*retries;
};

uint64_t
nodeclient_backoff_ms(unsigned rounds, uint32_t rnd)
{
	uint64_t ms = NODECLIENT_BACKOFF_MIN_MS;

	if (rounds == 0)
		return 0;
	while (--rounds > 0 && ms < NODECLIENT_BACKOFF_MAX_MS)
		ms *= 2;
	if (ms > NODECLIENT_BACKOFF_MAX_MS)
		ms = NODECLIENT_BACKOFF_MAX_MS;
	/* Jitter: uniform in [0.8, 1.0] of the step. */
	return ms - ms / 5 * (rnd % 1001) / 1000;
}

size_t
nodeclient_addrs(const struct addrinfo *res, const char *port,
    char out[][NODECLIENT_TARGET_LEN], size_t max)
{
	const struct addrinfo	*ai;
	char			 ip[INET6_ADDRSTRLEN];
	size_t			 n = 0, i;

	for (ai = res; ai != NULL && n < max; ai = ai->ai_next) {
		if ((ai->ai_family != AF_INET && ai->ai_family != AF_INET6) ||
		    getnameinfo(ai->ai_addr, ai->ai_addrlen, ip, sizeof(ip),
		    NULL, 0, NI_NUMERICHOST) != 0 || strchr(ip, '%') != NULL)
			continue;
		snprintf(out[n], NODECLIENT_TARGET_LEN, "%s:%s", ip, port);
		for (i = 0; i < n && strcmp(out[i], out[n]) != 0; i++)
			;
		if (i == n)
			n++;
	}
	return n;
}

static int
verify_server(const char *peer_id, X509 *leaf, void *arg)
{
	struct nodeclient *nc = arg;

	if (peer_id == NULL || strcmp(peer_id, nc->server_id) != 0) {
		log_warn("server at %s (%s) presented %s, not %s", nc->addr,
		    nc->ch != NULL ? nc->targets[nc->ch_idx] : "?",
		    peer_id != NULL ? peer_id : "no SPIFFE ID", nc->server_id);
		return WICK_ERR_PERM;
	}
	return 0;
}

static void	retry_cb(uv_timer_t *);

static void
resolve_cb(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
	struct nc_resolve	*rs = req->data;
	struct nodeclient	*nc = rs->nc;
	char			 t[NODECLIENT_MAX_ADDRS][NODECLIENT_TARGET_LEN];
	size_t			 n = 0;

	if (nc != NULL) {
		nc->resolving = NULL;
		if (status == 0)
			n = nodeclient_addrs(res, nc->port, t,
			    NODECLIENT_MAX_ADDRS);
		if (n == 0)
			log_warn_rl(&nc->rl, "cannot resolve the server's "
			    "name %s: %s", nc->host, status != 0 ?
			    uv_strerror(status) : "no address");
		else {
			memcpy(nc->targets, t, sizeof(t));
			nc->ntargets = n;
			nc->cur = 0;
			nc->tried = 0;
			log_debug("server %s: %zu address%s", nc->host, n,
			    n == 1 ? "" : "es");
		}
		if (nc->retries != NULL)
			uv_timer_start(nc->retry_timer, retry_cb, 0, 0);
		if (nc->resolved != NULL) {
			void (*cb)(void *) = nc->resolved;

			nc->resolved = NULL;
			cb(nc->resolved_arg);
		}
	}
	uv_freeaddrinfo(res);
	free(rs);
}

/* Resolve the name again (off the loop); the old list stays until then. */
static void
resolve(struct nodeclient *nc)
{
	struct addrinfo		 hints;
	struct nc_resolve	*rs;
	int			 r;

	if (nc->resolving != NULL)
		return;
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICSERV;
	rs = xcalloc(1, sizeof(*rs));
	rs->nc = nc;
	rs->req.data = rs;
	if ((r = uv_getaddrinfo(nc->loop, &rs->req, resolve_cb, nc->host,
	    nc->port, &hints)) != 0) {
		log_warn_rl(&nc->rl, "cannot resolve the server's name %s: %s",
		    nc->host, uv_strerror(r));
		free(rs);
		return;
	}
	nc->resolving = rs;
}

int
nodeclient_new(uv_loop_t *loop, const char *addr, const char *td,
    STACK_OF(X509) *roots, struct nodeclient **out)
{
	struct nodeclient	*nc;
	const char		*colon, *name = addr;
	size_t			 hl;
	int			 r;

	*out = NULL;
	if ((colon = strrchr(addr, ':')) == NULL || colon[1] == '\0' ||
	    strlen(colon + 1) >= sizeof(nc->port) || colon == addr)
		return WICK_ERR_INVALID;
	hl = (size_t)(colon - addr);
	/* An IPv6 literal may come bracketed. */
	if (addr[0] == '[' && hl > 2 && addr[hl - 1] == ']') {
		name = addr + 1;
		hl -= 2;
	}
	nc = xcalloc(1, sizeof(*nc));
	if (hl >= sizeof(nc->host)) {
		free(nc);
		return WICK_ERR_INVALID;
	}
	memcpy(nc->host, name, hl);
	snprintf(nc->port, sizeof(nc->port), "%s", colon + 1);
	nc->loop = loop;
	nc->rl = (struct log_ratelimit)LOG_RATELIMIT_INIT(5, 60);
	nc->rl_try = (struct log_ratelimit)LOG_RATELIMIT_INIT(5, 60);
	TAILQ_INIT(&nc->live);
	nc->addr = xstrdup(addr);
	snprintf(nc->server_id, sizeof(nc->server_id),
	    "spiffe://%s/spire/server", td);
	if ((r = tls_ctx_new(TLS_ROLE_CLIENT, TLS_PEER_CERT_REQUIRED,
	    &nc->tls)) != 0 || (r = tls_ctx_set_roots(nc->tls, roots)) != 0) {
		nodeclient_free(nc);
		return r;
	}
	tls_ctx_set_verify(nc->tls, verify_server, nc);
	nc->retry_timer = xcalloc(1, sizeof(*nc->retry_timer));
	uv_timer_init(loop, nc->retry_timer);
	nc->retry_timer->data = nc;
	resolve(nc);
	*out = nc;
	return 0;
}

/*
 * Let the channel go.  One that never got through its TLS handshake
 * counts against its address: the next one is tried, and after a whole
 * round of failures the name is resolved again and a backoff starts.
 */
static void
drop_channel(struct nodeclient *nc)
{
	uint32_t rnd;

	if (nc->ch == NULL)
		return;
	if (rpc_channel_peer_id(nc->ch) != NULL) {
		nc->rounds = 0;
		nc->tried = 0;
	} else if (++nc->tried >= nc->ntargets) {
		if (RAND_bytes((uint8_t *)&rnd, sizeof(rnd)) != 1)
			rnd = (uint32_t)rand();
		if (nc->rounds < 64)
			nc->rounds++;
		nc->retry_at = uv_now(nc->loop) +
		    nodeclient_backoff_ms(nc->rounds, rnd);
		nc->tried = 0;
		log_warn_rl(&nc->rl, "no address of the server %s answered; "
		    "next round in %llu ms", nc->addr, (unsigned long long)
		    (nc->retry_at - uv_now(nc->loop)));
		resolve(nc);
	}
	if (nc->ntargets > 0)
		nc->cur = (nc->ch_idx + 1) % nc->ntargets;
	rpc_channel_close(nc->ch, NULL, NULL);
	nc->ch = NULL;
	nc->ch_stale = 0;
}

/* A channel to the next address, unless backing off or unresolved. */
static int
open_channel(struct nodeclient *nc)
{
	int r;

	if (nc->ch != NULL && nc->ch_stale)
		drop_channel(nc);
	if (nc->ch != NULL)
		return 0;
	if (nc->ntargets == 0) {
		resolve(nc);
		return WICK_ERR_UNAVAILABLE;
	}
	if (uv_now(nc->loop) < nc->retry_at)
		return WICK_ERR_UNAVAILABLE;
	if (nc->cur >= nc->ntargets)
		nc->cur = 0;
	nc->ch_idx = nc->cur;
	nc->ch_up = 0;
	if ((r = rpc_channel_new(nc->loop, nc->targets[nc->ch_idx], nc->tls,
	    0, &nc->ch)) != 0)
		return r;
	if (nc->rounds > 0 || nc->tried > 0)
		log_info_rl(&nc->rl_try, "server %s: trying %s", nc->addr,
		    nc->targets[nc->ch_idx]);
	else
		log_debug("server %s: connecting to %s", nc->addr,
		    nc->targets[nc->ch_idx]);
	return 0;
}

static void
nc_call_free(struct nc_call *c)
{
	if (c->req != NULL)
		freezero(c->req, c->len);	/* may carry a CSR or token */
	free(c->path);
	free(c);
}

static void	call_done(int, const char *, const uint8_t *, size_t, void *);

static int
channel_busy(struct nodeclient *nc, struct rpc_channel *ch)
{
	struct nc_call *c;

	TAILQ_FOREACH(c, &nc->live, entry)
		if (c->ch == ch)
			return 1;
	return 0;
}

static void
close_retiring(struct nodeclient *nc)
{
	struct rpc_channel *ch = nc->retiring;

	nc->retiring = NULL;
	if (ch != NULL)
		rpc_channel_close(ch, NULL, NULL);
}

/* To the end of the retry list: calls go in the order they were made. */
static void
retry_later(struct nodeclient *nc, struct nc_call *c)
{
	struct nc_call **pp;

	for (pp = &nc->retries; *pp != NULL; pp = &(*pp)->next)
		;
	c->next = NULL;
	*pp = c;
}

static int
send_call(struct nodeclient *nc, struct nc_call *c)
{
	int r, tries;

	for (tries = 0; tries < 2; tries++) {
		if ((r = open_channel(nc)) != 0)
			return r;
		c->ch = nc->ch;
		r = rpc_unary_start_raw(nc->ch, c->path, c->req, c->len,
		    c->timeout_ms, call_done, c);
		if (r != WICK_ERR_UNAVAILABLE)
			return r;
		drop_channel(nc);	/* failed or went away: a new one */
	}
	return r;
}

static void
retry_cb(uv_timer_t *t)
{
	struct nodeclient	*nc = t->data;
	struct nc_call		*c, *list = nc->retries;
	int			 r;

	/* Calls the callbacks make wait for the next turn. */
	nc->retries = NULL;
	while ((c = list) != NULL) {
		list = c->next;
		c->next = NULL;
		if ((r = send_call(nc, c)) != 0) {
			TAILQ_REMOVE(&nc->live, c, entry);
			c->fn(RPC_UNAVAILABLE, "the server is unreachable",
			    NULL, 0, c->arg);
			nc_call_free(c);
		}
	}
}

static void
call_done(int status, const char *msg, const uint8_t *p, size_t n, void *arg)
{
	struct nc_call		*c = arg;
	struct nodeclient	*nc = c->nc;
	int			 never = 0;

	if (nc != NULL)
		TAILQ_REMOVE(&nc->live, c, entry);
	/* The last call on a connection with the old identity: close it. */
	if (nc != NULL && nc->retiring != NULL && c->ch == nc->retiring &&
	    !channel_busy(nc, nc->retiring))
		close_retiring(nc);
	if (nc != NULL && c->ch == nc->ch &&
	    rpc_channel_peer_id(c->ch) != NULL) {
		nc->rounds = nc->tried = 0;	/* this address answers */
		if (!nc->ch_up) {
			nc->ch_up = 1;
			log_info_rl(&nc->rl_try, "server %s: connected to %s",
			    nc->addr, nc->targets[nc->ch_idx]);
		}
	}
	if (nc != NULL && c->ch == nc->ch && (status == RPC_UNAVAILABLE ||
	    status == RPC_DEADLINE_EXCEEDED) &&
	    rpc_channel_peer_id(c->ch) == NULL) {
		/* Never got through: this address is replaced next time. */
		never = 1;
		nc->ch_stale = 1;
		log_warn_rl(&nc->rl, "cannot reach the server at %s: %s",
		    nc->targets[nc->ch_idx], msg);
	}
	if (never && status == RPC_UNAVAILABLE && nc != NULL &&
	    ++c->tries < nc->ntargets) {
		/* Not from inside the channel's callback: a timer. */
		TAILQ_INSERT_TAIL(&nc->live, c, entry);
		retry_later(nc, c);
		uv_timer_start(nc->retry_timer, retry_cb, 0, 0);
		return;
	}
	c->fn(status, msg, p, n, c->arg);
	nc_call_free(c);
}

static void
timer_free_cb(uv_handle_t *h)
{
	free(h);
}

void
nodeclient_free(struct nodeclient *nc)
{
	struct nc_call *c;

	if (nc == NULL)
		return;
	if (nc->resolving != NULL)
		nc->resolving->nc = NULL;
	while ((c = nc->retries) != NULL) {
		nc->retries = c->next;
		TAILQ_REMOVE(&nc->live, c, entry);
		c->fn(RPC_CANCELLED, "the agent is stopping", NULL, 0, c->arg);
		nc_call_free(c);
	}
	/* Calls still on the channel end as it closes, without us. */
	TAILQ_FOREACH(c, &nc->live, entry)
		c->nc = NULL;
	if (nc->retry_timer != NULL)
		uv_close((uv_handle_t *)nc->retry_timer, timer_free_cb);
	if (nc->ch != NULL) {
		rpc_channel_close(nc->ch, NULL, NULL);
		nc->ch = NULL;
	}
	close_retiring(nc);
	tls_ctx_free(nc->tls);
	free(nc->addr);
	free(nc);
}

int
nodeclient_unreached(struct nodeclient *nc)
{
	if (nc->ch == NULL || rpc_channel_peer_id(nc->ch) != NULL)
		return 0;
	nc->ch_stale = 1;
	log_warn_rl(&nc->rl, "cannot reach the server at %s",
	    nc->targets[nc->ch_idx]);
	return nc->tried + 1 < nc->ntargets;
}

void
nodeclient_on_resolved(struct nodeclient *nc, void (*cb)(void *), void *arg)
{
	if (nc->resolving == NULL) {
		cb(arg);
		return;
	}
	nc->resolved = cb;
	nc->resolved_arg = arg;
}

int
nodeclient_set_roots(struct nodeclient *nc, STACK_OF(X509) *roots)
{
	return tls_ctx_set_roots(nc->tls, roots);
}

int
nodeclient_set_identity(struct nodeclient *nc, STACK_OF(X509) *chain,
    EVP_PKEY *key)
{
	int r;

	if ((r = tls_ctx_set_identity(nc->tls, chain, key)) != 0)
		return r;
	if (nc->ch == NULL)
		return 0;
	/*
	 * The next connection presents it.  Calls in flight on this one
	 * (a sync, an SVID batch) finish there first: it closes with the
	 * last of them (call_done).  One that never got through closes at
	 * once (its calls are sent again elsewhere), and so does one still
	 * retiring from an earlier renewal.
	 */
	close_retiring(nc);
	if (rpc_channel_peer_id(nc->ch) != NULL) {
		nc->rounds = nc->tried = 0;
		if (channel_busy(nc, nc->ch)) {
			nc->retiring = nc->ch;
			log_debug("server %s: new identity; the connection to "
			    "%s closes after its calls in flight", nc->addr,
			    nc->targets[nc->ch_idx]);
		}
	}
	if (nc->retiring != nc->ch)
		rpc_channel_close(nc->ch, NULL, NULL);
	nc->ch = NULL;
	nc->ch_stale = 0;
	return 0;
}

/* Call through the channel; see the top of the file. */
static int
call(struct nodeclient *nc, const char *path, const ProtobufCMessage *req,
    const uint8_t *raw, size_t rawlen, int64_t timeout_ms, rpc_unary_fn *fn,
    void *arg)
{
	struct nc_call	*c;
	int		 r;

	c = xcalloc(1, sizeof(*c));
	c->nc = nc;
	c->path = xstrdup(path);
	c->len = req != NULL ? protobuf_c_message_get_packed_size(req) :
	    rawlen;
	c->req = xmalloc(c->len + 1);
	if (req != NULL)
		(void)protobuf_c_message_pack(req, c->req);
	else if (rawlen > 0)
		memcpy(c->req, raw, rawlen);
	c->timeout_ms = timeout_ms;
	c->fn = fn;
	c->arg = arg;
	if ((r = send_call(nc, c)) != 0) {
		if (r != WICK_ERR_UNAVAILABLE || nc->ntargets > 0 ||
		    nc->resolving == NULL) {
			nc_call_free(c);
			return r;
		}
		/* Sent once the first resolution is over (resolve_cb). */
		retry_later(nc, c);
	}
	TAILQ_INSERT_TAIL(&nc->live, c, entry);
	return 0;
}

int
nodeclient_stream(struct nodeclient *nc, const char *path, int64_t timeout_ms,
    const struct rpc_client_cbs *cbs, void *arg, struct rpc_ccall **out)
{
	int r, tries;

	*out = NULL;
	for (tries = 0; tries < 2; tries++) {
		if ((r = open_channel(nc)) != 0)
			return r;
		r = rpc_ccall_start(nc->ch, path, NULL, 0, timeout_ms, cbs, arg,
		    out);
		if (r != WICK_ERR_UNAVAILABLE)
			return r;
		drop_channel(nc);	/* failed or went away: a new one */
	}
	return r;
}

int
nodeclient_call(struct nodeclient *nc, const char *path,
    const ProtobufCMessage *req, int64_t timeout_ms, rpc_unary_fn *fn,
    void *arg)
{
	return call(nc, path, req, NULL, 0, timeout_ms, fn, arg);
}

int
nodeclient_call_raw(struct nodeclient *nc, const char *path,
    const uint8_t *req, size_t len, int64_t timeout_ms, rpc_unary_fn *fn,
    void *arg)
{
	return call(nc, path, NULL, req, len, timeout_ms, fn, arg);
}
