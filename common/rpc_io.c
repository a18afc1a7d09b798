/*
 * rpc_io.c: copy bytes into libuv write requests, through TLS if set.
 * What passes here may be private keys and tokens: every copy is wiped
 * before its memory goes back.
 */
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "rpc_io.h"
#include "xmalloc.h"

#define RPC_IO_TLS_CHUNK	(1024 * 1024)

struct rpc_io_write {
	uv_write_t	 req;
	struct rpc_io	*io;
	size_t		 len;
	uint8_t		 data[];
};

static void
rpc_io_write_cb(uv_write_t *req, int status)
{
	struct rpc_io_write	*w = (struct rpc_io_write *)req;
	struct rpc_io		*io = w->io;

	io->pending -= w->len;
	freezero(w, sizeof(*w) + w->len);
	if (io->written != NULL)
		io->written(io, status);
}

static int
rpc_io_raw(struct rpc_io *io, const uint8_t *p, size_t n)
{
	struct rpc_io_write	*w;
	uv_buf_t		 b;
	int			 sent;

	if (n == 0)
		return 0;
	/*
	 * Most writes fit the socket at once: then no request, no copy to
	 * wipe, and no re-arming of the watcher, which libuv does with a
	 * system call after every request it completes.  uv_try_write()
	 * takes nothing while requests are queued, so the order holds.
	 */
	b = uv_buf_init((char *)p, (unsigned int)n);
	if ((sent = uv_try_write(io->stream, &b, 1)) >= 0) {
		if ((size_t)sent == n)
			return 0;
		p += sent;
		n -= (size_t)sent;
	} else if (sent != UV_EAGAIN)
		return WICK_ERR_IO;
	if ((w = malloc(sizeof(*w) + n)) == NULL)
		return WICK_ERR_ALLOC;
	w->io = io;
	w->len = n;
	memcpy(w->data, p, n);
	b = uv_buf_init((char *)w->data, (unsigned int)n);
	if (uv_write(&w->req, io->stream, &b, 1, rpc_io_write_cb) != 0) {
		freezero(w, sizeof(*w) + n);
		return WICK_ERR_IO;
	}
	io->pending += n;
	return 0;
}

int
rpc_io_tls_flush(struct rpc_io *io)
{
	struct buf	 out;
	int		 r, r2;

	buf_init(&out, RPC_IO_TLS_CHUNK);
	do {
		r = tls_conn_take_output(io->tls, &out);
		if (r != 0 && r != WICK_ERR_LIMIT)
			break;
		if ((r2 = rpc_io_raw(io, buf_ptr(&out), buf_len(&out))) != 0) {
			r = r2;
			break;
		}
		buf_reset(&out);
	} while (r == WICK_ERR_LIMIT);
	buf_cleanup(&out);
	return r;
}

int
rpc_io_send(struct rpc_io *io, const uint8_t *p, size_t n)
{
	int r;

	if (io->tls == NULL)
		return rpc_io_raw(io, p, n);
	if ((r = tls_conn_write(io->tls, p, n)) != 0)
		return r;
	return rpc_io_tls_flush(io);
}

int
rpc_io_tls_recv(struct rpc_io *io, const uint8_t *p, size_t n,
    int *handshaken, int (*ready)(void *),
    int (*plain)(void *, const uint8_t *, size_t), void *arg)
{
	struct buf	 clear;
	int		 r;

	if ((r = tls_conn_feed(io->tls, p, n)) != 0)
		return r;
	if (!*handshaken) {
		r = tls_conn_handshake(io->tls);
		/* Send handshake records or the alert, whatever r says. */
		if (rpc_io_tls_flush(io) != 0 && (r == 0 ||
		    r == WICK_ERR_AGAIN))
			return WICK_ERR_IO;
		if (r == WICK_ERR_AGAIN)
			return 0;
		if (r != 0)
			return r;
		*handshaken = 1;
		if ((r = ready(arg)) != 0)
			return r;
	}
	buf_init(&clear, RPC_IO_TLS_CHUNK / 4);
	buf_set_secret(&clear);
	for (;;) {
		r = tls_conn_read(io->tls, &clear);
		if ((r != 0 && r != WICK_ERR_LIMIT) || buf_len(&clear) == 0)
			break;
		if ((r = plain(arg, buf_ptr(&clear), buf_len(&clear))) != 0) {
			if (r == WICK_ERR_STATE)
				r = 0;
			buf_cleanup(&clear);
			return r;
		}
		buf_reset(&clear);
		/* Asking again when nothing is left costs a record buffer
		 * set up and released (tls_conn_readable()). */
		if (!tls_conn_readable(io->tls))
			break;
	}
	buf_cleanup(&clear);
	if (r == WICK_ERR_LIMIT)
		r = 0;
	/* Alerts, key updates or a close_notify answer. */
	if (rpc_io_tls_flush(io) != 0 && r == 0)
		r = WICK_ERR_IO;
	return r;
}

/*
 * nghttp2 copies frames (our DATA included) into buffers of its own:
 * they are wiped when it frees them.  malloc_usable_size() tells how much
 * there is to wipe.
 */
static void *
ngmem_malloc(size_t n, void *arg)
{
	return malloc(n);
}

static void
ngmem_free(void *p, void *arg)
{
	secret_free(p);
}

static void *
ngmem_calloc(size_t nmemb, size_t size, void *arg)
{
	return calloc(nmemb, size);
}

static void *
ngmem_realloc(void *p, size_t n, void *arg)
{
	return secret_realloc(p, n);
}

static nghttp2_mem secret_mem = {
	NULL, ngmem_malloc, ngmem_free, ngmem_calloc, ngmem_realloc
};

nghttp2_mem *
rpc_secret_mem(void)
{
	return &secret_mem;
}
