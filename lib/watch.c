/*
 * watch.c: a FetchX509SVID stream kept open on a thread of the watch's
 * own, with its own libuv loop; the latest context is kept under a mutex
 * and announced through the callback, a condition variable and an
 * eventfd.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include <uv.h>

#include "rpc.h"
#include "rpc_client.h"
#include "wick_int.h"

#define WATCH_PATH		"/SpiffeWorkloadAPI/FetchX509SVID"
#define WATCH_BACKOFF_MIN	200	/* ms */
#define WATCH_BACKOFF_MAX	5000

struct wick_x509_watch {
	char			 addr[WICK_MAX_ADDR + 16];
	wick_x509_watch_fn	*cb;
	void			*arg;
	pthread_t		 th;
	pthread_mutex_t		 mu;
	pthread_cond_t		 cv;
	struct wick_x509_context *cur;
	uint64_t		 updates;
	int			 efd;
	/* loop thread only */
	uv_loop_t		 loop;
	uv_async_t		 stop;
	uv_timer_t		 retry;
	struct rpc_channel	*ch;
	struct rpc_ccall	*cc;
	int			 stopping;
	uint64_t		 backoff;
};

static void	watch_start(struct wick_x509_watch *);
static void	retry_cb(uv_timer_t *);

static void
watch_message_cb(struct rpc_ccall *c, const uint8_t *p, size_t n, void *arg)
{
	struct wick_x509_watch		*w = arg;
	struct wick_x509_context	*ctx = NULL, *old;
	uint64_t			 one = 1;
	char				 why[128];
	int				 r;

	(void)c;
	if ((r = wick_x509_context_decode(p, n, &ctx, why, sizeof(why))) != 0) {
		if (w->cb != NULL)
			w->cb(NULL, r, w->arg);
		return;
	}
	w->backoff = WATCH_BACKOFF_MIN;
	pthread_mutex_lock(&w->mu);
	old = w->cur;
	w->cur = ctx;
	w->updates++;
	pthread_cond_broadcast(&w->cv);
	pthread_mutex_unlock(&w->mu);
	if (write(w->efd, &one, sizeof(one)) < 0) {
		/* EAGAIN: the counter is full, the fd readable anyway */
	}
	wick_x509_context_free(old);
	if (w->cb != NULL)
		w->cb(ctx, 0, w->arg);
}

static void
watch_status_cb(struct rpc_ccall *c, int status, const char *msg, void *arg)
{
	struct wick_x509_watch *w = arg;

	(void)c;
	(void)msg;
	w->cc = NULL;
	if (w->stopping)
		return;
	if (w->cb != NULL)
		w->cb(NULL, status == RPC_OK ? WICK_E_EOF :
		    wick_err_from_status(status), w->arg);
	(void)uv_timer_start(&w->retry, retry_cb, w->backoff, 0);
	w->backoff = w->backoff * 2 > WATCH_BACKOFF_MAX ? WATCH_BACKOFF_MAX :
	    w->backoff * 2;
}

static const struct rpc_client_cbs watch_cbs = {
	NULL, watch_message_cb, watch_status_cb,
};

static void
retry_cb(uv_timer_t *t)
{
	struct wick_x509_watch *w = t->data;

	if (w->ch != NULL) {
		rpc_channel_close(w->ch, NULL, NULL);
		w->ch = NULL;
	}
	if (!w->stopping)
		watch_start(w);
}

static void
watch_start(struct wick_x509_watch *w)
{
	static const struct rpc_md md = {
		"workload.spiffe.io", (const uint8_t *)"true", 4
	};
	static const uint8_t empty[1];

	if (rpc_channel_new(&w->loop, w->addr, NULL, WICK_MAX_RESPONSE,
	    &w->ch) != 0 || rpc_ccall_start(w->ch, WATCH_PATH, &md, 1, -1,
	    &watch_cbs, w, &w->cc) != 0) {
		if (w->cb != NULL)
			w->cb(NULL, WICK_E_UNAVAILABLE, w->arg);
		(void)uv_timer_start(&w->retry, retry_cb, w->backoff, 0);
		return;
	}
	if (rpc_ccall_send(w->cc, empty, 0) != 0 ||
	    rpc_ccall_half_close(w->cc) != 0)
		rpc_ccall_cancel(w->cc);	/* status_cb retries */
}

static void
stop_cb(uv_async_t *a)
{
	struct wick_x509_watch *w = a->data;

	w->stopping = 1;
	if (w->cc != NULL)
		rpc_ccall_cancel(w->cc);
	if (w->ch != NULL) {
		rpc_channel_close(w->ch, NULL, NULL);
		w->ch = NULL;
	}
	uv_close((uv_handle_t *)&w->retry, NULL);
	uv_close((uv_handle_t *)&w->stop, NULL);
}

static void *
watch_main(void *arg)
{
	struct wick_x509_watch *w = arg;

	watch_start(w);
	(void)uv_run(&w->loop, UV_RUN_DEFAULT);
	return NULL;
}

int
wick_x509_watch_new(struct wick_client *cl, wick_x509_watch_fn *cb, void *arg,
    struct wick_x509_watch **out)
{
	struct wick_x509_watch	*w;
	struct wick_sigpipe	 sp;
	int			 stage = 0, r;

	*out = NULL;
	if (cl == NULL)
		return WICK_E_INVALID;
	if ((w = calloc(1, sizeof(*w))) == NULL)
		return WICK_E_ALLOC;
	memcpy(w->addr, cl->addr, sizeof(w->addr));
	w->cb = cb;
	w->arg = arg;
	w->backoff = WATCH_BACKOFF_MIN;
	if ((w->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) == -1)
		goto fail;
	stage = 1;
	if (pthread_mutex_init(&w->mu, NULL) != 0)
		goto fail;
	stage = 2;
	if (pthread_cond_init(&w->cv, NULL) != 0)
		goto fail;
	stage = 3;
	if (uv_loop_init(&w->loop) != 0)
		goto fail;
	stage = 4;
	if (uv_async_init(&w->loop, &w->stop, stop_cb) != 0)
		goto fail;
	w->stop.data = w;
	(void)uv_timer_init(&w->loop, &w->retry);
	w->retry.data = w;
	stage = 5;
	/* The thread starts with SIGPIPE blocked, and keeps it so. */
	wick_sigpipe_block(&sp);
	r = pthread_create(&w->th, NULL, watch_main, w);
	(void)pthread_sigmask(SIG_SETMASK, &sp.old, NULL);
	if (r != 0)
		goto fail;
	*out = w;
	return 0;
fail:
	if (stage >= 5) {
		uv_close((uv_handle_t *)&w->stop, NULL);
		uv_close((uv_handle_t *)&w->retry, NULL);
		(void)uv_run(&w->loop, UV_RUN_DEFAULT);
	}
	if (stage >= 4)
		(void)uv_loop_close(&w->loop);
	if (stage >= 3)
		pthread_cond_destroy(&w->cv);
	if (stage >= 2)
		pthread_mutex_destroy(&w->mu);
	if (stage >= 1)
		close(w->efd);
	free(w);
	return stage == 0 ? WICK_E_IO : WICK_E_ALLOC;
}

void
wick_x509_watch_free(struct wick_x509_watch *w)
{
	if (w == NULL)
		return;
	(void)uv_async_send(&w->stop);
	(void)pthread_join(w->th, NULL);
	(void)uv_run(&w->loop, UV_RUN_DEFAULT);
	(void)uv_loop_close(&w->loop);
	wick_x509_context_free(w->cur);
	pthread_cond_destroy(&w->cv);
	pthread_mutex_destroy(&w->mu);
	close(w->efd);
	free(w);
}

int
wick_x509_watch_fd(const struct wick_x509_watch *w)
{
	return w->efd;
}

int
wick_x509_watch_current(struct wick_x509_watch *w,
    struct wick_x509_context **out)
{
	uint64_t v;

	*out = NULL;
	if (read(w->efd, &v, sizeof(v)) < 0) {
		/* EAGAIN: nothing new since the last call */
	}
	pthread_mutex_lock(&w->mu);
	*out = wick_x509_context_ref(w->cur);
	pthread_mutex_unlock(&w->mu);
	return *out != NULL ? 0 : WICK_E_AGAIN;
}

int
wick_x509_watch_wait(struct wick_x509_watch *w, int64_t timeout_ms)
{
	struct timespec	ts;
	int		r = 0;

	clock_gettime(CLOCK_REALTIME, &ts);
	if (timeout_ms >= 0) {
		ts.tv_sec += timeout_ms / 1000;
		ts.tv_nsec += (timeout_ms % 1000) * 1000000;
		if (ts.tv_nsec >= 1000000000) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000;
		}
	}
	pthread_mutex_lock(&w->mu);
	while (w->cur == NULL && r == 0)
		r = timeout_ms < 0 ? pthread_cond_wait(&w->cv, &w->mu) :
		    pthread_cond_timedwait(&w->cv, &w->mu, &ts);
	r = w->cur != NULL ? 0 : WICK_E_TIMEOUT;
	pthread_mutex_unlock(&w->mu);
	return r;
}

uint64_t
wick_x509_watch_updates(struct wick_x509_watch *w)
{
	uint64_t n;

	pthread_mutex_lock(&w->mu);
	n = w->updates;
	pthread_mutex_unlock(&w->mu);
	return n;
}

/* For tls.c: the current context, referenced (NULL before the first). */
struct wick_x509_context *wick_x509_watch_peek(struct wick_x509_watch *);

struct wick_x509_context *
wick_x509_watch_peek(struct wick_x509_watch *w)
{
	struct wick_x509_context *c;

	pthread_mutex_lock(&w->mu);
	c = wick_x509_context_ref(w->cur);
	pthread_mutex_unlock(&w->mu);
	return c;
}
