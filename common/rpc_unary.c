/*
 * rpc_unary.c: unary calls for clients.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "rpc_unary.h"
#include "xmalloc.h"

struct unary {
	rpc_unary_fn	*fn;
	void		*arg;
	uint8_t		*resp;
	size_t		 len;
	int		 nmsgs;
};

static void
unary_message(struct rpc_ccall *c, const uint8_t *p, size_t n, void *arg)
{
	struct unary *u = arg;

	if (u->nmsgs++ > 0)
		return;		/* checked in unary_status */
	u->resp = xmalloc(n + 1);
	memcpy(u->resp, p, n);
	u->len = n;
}

static void
unary_status(struct rpc_ccall *c, int status, const char *msg, void *arg)
{
	struct unary *u = arg;

	if (status == RPC_OK && u->nmsgs != 1)
		u->fn(RPC_INTERNAL, u->nmsgs == 0 ? "no response message" :
		    "more than one response message", NULL, 0, u->arg);
	else
		u->fn(status, msg, status == RPC_OK ? u->resp : NULL, u->len,
		    u->arg);
	/* Answers carry JWT-SVIDs and other bearer tokens. */
	if (u->resp != NULL)
		freezero(u->resp, u->len + 1);
	free(u);
}

static const struct rpc_client_cbs unary_cbs = {
	NULL, unary_message, unary_status
};

int
rpc_unary_start_raw(struct rpc_channel *ch, const char *path,
    const uint8_t *req, size_t len, int64_t timeout_ms, rpc_unary_fn *fn,
    void *arg)
{
	struct rpc_ccall	*call;
	struct unary		*u;
	int			 r;

	u = xcalloc(1, sizeof(*u));
	u->fn = fn;
	u->arg = arg;
	if ((r = rpc_ccall_start(ch, path, NULL, 0, timeout_ms, &unary_cbs, u,
	    &call)) != 0) {
		free(u);
		return r;
	}
	if (rpc_ccall_send(call, req, len) != 0 ||
	    rpc_ccall_half_close(call) != 0)
		rpc_ccall_cancel(call);	/* on_status frees u */
	return 0;
}

int
rpc_unary_start(struct rpc_channel *ch, const char *path,
    const ProtobufCMessage *req, int64_t timeout_ms, rpc_unary_fn *fn,
    void *arg)
{
	size_t	 len = protobuf_c_message_get_packed_size(req);
	uint8_t	*p = xmalloc(len + 1);
	int	 r;

	protobuf_c_message_pack(req, p);
	r = rpc_unary_start_raw(ch, path, p, len, timeout_ms, fn, arg);
	freezero(p, len + 1);	/* a request may carry a join token */
	return r;
}

struct unary_run {
	int		 status;
	char		*msg;
	size_t		 msglen;
	struct buf	*resp;
	int		 done;
};

static void
run_done(int status, const char *msg, const uint8_t *p, size_t n, void *arg)
{
	struct unary_run *ur = arg;

	ur->status = status;
	snprintf(ur->msg, ur->msglen, "%s", msg != NULL ? msg : "");
	if (p != NULL && ur->resp != NULL && buf_put(ur->resp, p, n) != 0) {
		ur->status = RPC_RESOURCE_EXHAUSTED;
		snprintf(ur->msg, ur->msglen, "response too large");
	}
	ur->done = 1;
}

int
rpc_unary_run(const char *target, struct tls_ctx *tls, const char *path,
    const ProtobufCMessage *req, int64_t timeout_ms, struct buf *resp,
    char *msg, size_t msglen)
{
	struct rpc_channel	*ch;
	struct unary_run	 ur;
	uv_loop_t		 loop;
	int			 r;

	memset(&ur, 0, sizeof(ur));
	ur.msg = msg;
	ur.msglen = msglen;
	ur.resp = resp;
	*msg = '\0';
	if (uv_loop_init(&loop) != 0) {
		snprintf(msg, msglen, "cannot create an event loop");
		return RPC_INTERNAL;
	}
	if ((r = rpc_channel_new(&loop, target, tls, 0, &ch)) != 0) {
		snprintf(msg, msglen, "cannot connect to %s: %s", target,
		    wick_strerror(r));
		(void)uv_loop_close(&loop);
		return RPC_UNAVAILABLE;
	}
	if ((r = rpc_unary_start(ch, path, req, timeout_ms, run_done,
	    &ur)) != 0) {
		snprintf(msg, msglen, "cannot start the call: %s",
		    wick_strerror(r));
		ur.status = RPC_UNAVAILABLE;
	} else
		while (!ur.done && uv_run(&loop, UV_RUN_ONCE) != 0)
			;
	rpc_channel_close(ch, NULL, NULL);
	uv_run(&loop, UV_RUN_DEFAULT);
	(void)uv_loop_close(&loop);
	if (!ur.done && r == 0) {
		snprintf(msg, msglen, "no answer from %s", target);
		return RPC_UNAVAILABLE;
	}
	return ur.status;
}
