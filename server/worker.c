/*
 * worker.c: the server's state thread (worker.h).
 *
 * One mutex guards two FIFO lists: tasks to run and tasks run whose
 * done() the loop has not called yet.  The thread sleeps on a condition
 * variable; the loop is woken with a uv_async_t (coalescing: one wake-up
 * may bring many completions).
 */
#include <pthread.h>
#include <stdlib.h>

#include "log.h"
#include "worker.h"

STAILQ_HEAD(task_list, worker_task);

struct worker {
	uv_async_t		 async;
	pthread_t		 thread;
	pthread_mutex_t		 mu;
	pthread_cond_t		 cv;
	struct task_list	 todo;
	struct task_list	 done;
	size_t			 ntodo;
	uint64_t		 epoch;		/* tasks taken (atomic) */
	uint64_t		 max_wait;
	int			 stop;
	int			 joined;
	/* worker_set_flush() */
	uint64_t		(*added)(void *);
	void			(*flush)(void *);
	void			*flush_arg;
};

static void *
worker_main(void *arg)
{
	struct worker		*w = arg;
	struct worker_task	*t;
	struct task_list	 held;
	size_t			 nheld = 0;
	uint64_t		 waited, before = 0, held_since = 0;

	STAILQ_INIT(&held);
	pthread_mutex_lock(&w->mu);
	for (;;) {
		while (STAILQ_EMPTY(&w->todo) && !w->stop)
			pthread_cond_wait(&w->cv, &w->mu);
		if ((t = STAILQ_FIRST(&w->todo)) == NULL)
			break;			/* stopping, nothing left */
		STAILQ_REMOVE_HEAD(&w->todo, entry);
		w->ntodo--;
		__atomic_add_fetch(&w->epoch, 1, __ATOMIC_SEQ_CST);
		waited = uv_hrtime() - t->queued_ns;
		if (waited > w->max_wait)
			w->max_wait = waited;
		pthread_mutex_unlock(&w->mu);
		if (w->added != NULL)
			before = w->added(w->flush_arg);
		if (t->run != NULL)
			t->run(t);
		/* What it left undone is done before anyone hears of it. */
		if (w->added != NULL && w->added(w->flush_arg) != before) {
			if (nheld++ == 0)
				held_since = uv_hrtime();
			STAILQ_INSERT_TAIL(&held, t, entry);
			t = NULL;
		}
		pthread_mutex_lock(&w->mu);
		if (nheld > 0 && (STAILQ_EMPTY(&w->todo) ||
		    nheld >= WORKER_HOLD_MAX ||
		    uv_hrtime() - held_since >= WORKER_HOLD_NS)) {
			pthread_mutex_unlock(&w->mu);
			w->flush(w->flush_arg);
			pthread_mutex_lock(&w->mu);
			STAILQ_CONCAT(&w->done, &held);
			nheld = 0;
		}
		if (t != NULL)
			STAILQ_INSERT_TAIL(&w->done, t, entry);
		uv_async_send(&w->async);
	}
	pthread_mutex_unlock(&w->mu);
	return NULL;
}

void
worker_set_flush(struct worker *w, uint64_t (*added)(void *),
    void (*flush)(void *), void *arg)
{
	w->added = added;
	w->flush = flush;
	w->flush_arg = arg;
}

static void
worker_completions(uv_async_t *a)
{
	struct worker		*w = a->data;
	struct task_list	 l;
	struct worker_task	*t;

	pthread_mutex_lock(&w->mu);
	STAILQ_INIT(&l);
	STAILQ_CONCAT(&l, &w->done);
	pthread_mutex_unlock(&w->mu);
	while ((t = STAILQ_FIRST(&l)) != NULL) {
		STAILQ_REMOVE_HEAD(&l, entry);
		if (t->done != NULL)
			t->done(t);
	}
}

int
worker_start(uv_loop_t *loop, struct worker **out)
{
	struct worker	*w;
	int		 r;

	*out = NULL;
	if ((w = calloc(1, sizeof(*w))) == NULL)
		return WICK_ERR_ALLOC;
	STAILQ_INIT(&w->todo);
	STAILQ_INIT(&w->done);
	if (pthread_mutex_init(&w->mu, NULL) != 0) {
		free(w);
		return WICK_ERR_ALLOC;
	}
	if (pthread_cond_init(&w->cv, NULL) != 0) {
		pthread_mutex_destroy(&w->mu);
		free(w);
		return WICK_ERR_ALLOC;
	}
	if (uv_async_init(loop, &w->async, worker_completions) != 0) {
		pthread_cond_destroy(&w->cv);
		pthread_mutex_destroy(&w->mu);
		free(w);
		return WICK_ERR_INTERNAL;
	}
	w->async.data = w;
	if ((r = pthread_create(&w->thread, NULL, worker_main, w)) != 0) {
		log_error("cannot start the state thread: error %d", r);
		/* The handle is closed by the caller's worker_stop(). */
		w->joined = 1;
		*out = w;
		return WICK_ERR_INTERNAL;
	}
	*out = w;
	return 0;
}

void
worker_submit(struct worker *w, struct worker_task *t)
{
	t->queued_ns = uv_hrtime();
	pthread_mutex_lock(&w->mu);
	STAILQ_INSERT_TAIL(&w->todo, t, entry);
	w->ntodo++;
	pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->mu);
}

int
worker_on_thread(const struct worker *w)
{
	return !w->joined && pthread_equal(pthread_self(), w->thread);
}

uint64_t
worker_epoch(const struct worker *w)
{
	return __atomic_load_n(&w->epoch, __ATOMIC_SEQ_CST);
}

size_t
worker_queued(struct worker *w)
{
	size_t n;

	pthread_mutex_lock(&w->mu);
	n = w->ntodo;
	pthread_mutex_unlock(&w->mu);
	return n;
}

uint64_t
worker_take_max_wait(struct worker *w)
{
	uint64_t v;

	pthread_mutex_lock(&w->mu);
	v = w->max_wait;
	w->max_wait = 0;
	pthread_mutex_unlock(&w->mu);
	return v;
}

void
worker_release(struct worker *w)
{
	if (w != NULL)
		uv_unref((uv_handle_t *)&w->async);
}

static void
worker_closed(uv_handle_t *h)
{
	struct worker *w = h->data;

	pthread_cond_destroy(&w->cv);
	pthread_mutex_destroy(&w->mu);
	free(w);
}

void
worker_stop(struct worker *w)
{
	if (w == NULL)
		return;
	pthread_mutex_lock(&w->mu);
	w->stop = 1;
	pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->mu);
	if (!w->joined) {
		(void)pthread_join(w->thread, NULL);
		w->joined = 1;
	}
	/* What finished after the loop last looked. */
	worker_completions(&w->async);
	uv_close((uv_handle_t *)&w->async, worker_closed);
}
