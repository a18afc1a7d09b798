/*
 * par.c: a parallel for (par.h).
 *
 * A job is published under the mutex with a new generation number; the
 * threads take indexes one at a time under the same mutex (items are
 * signatures of tens of microseconds: the lock is not the cost) and the
 * caller, working too, waits until no thread is inside the job.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>

#include "log.h"
#include "par.h"

struct par;

struct par_thread {
	struct par	*p;
	pthread_t	 tid;
	int		 slot;
};

struct par {
	struct par_thread threads[PAR_MAX_THREADS];
	int		 nthreads;
	pthread_mutex_t	 mu;
	pthread_cond_t	 work;		/* a job, or stop */
	pthread_cond_t	 idle;		/* busy reached 0 */
	uint64_t	 gen;
	par_fn		*fn;
	void		*arg;
	size_t		 n;
	size_t		 next;
	int		 busy;		/* threads inside the job */
	int		 stop;
};

/* Take indexes until none is left; called with the mutex held. */
static void
drain(struct par *p, int slot)
{
	size_t i;

	while (p->next < p->n) {
		i = p->next++;
		pthread_mutex_unlock(&p->mu);
		p->fn(p->arg, i, slot);
		pthread_mutex_lock(&p->mu);
	}
}

static void *
par_main(void *arg)
{
	struct par_thread	*t = arg;
	struct par		*p = t->p;
	uint64_t		 seen = 0;

	pthread_mutex_lock(&p->mu);
	for (;;) {
		while (!p->stop && p->gen == seen)
			pthread_cond_wait(&p->work, &p->mu);
		if (p->stop)
			break;
		seen = p->gen;
		p->busy++;
		drain(p, t->slot);
		if (--p->busy == 0)
			pthread_cond_signal(&p->idle);
	}
	pthread_mutex_unlock(&p->mu);
	return NULL;
}

int
par_new(int threads, struct par **out)
{
	struct par	*p;
	int		 i;

	*out = NULL;
	if (threads < 0)
		threads = 0;
	if (threads > PAR_MAX_THREADS)
		threads = PAR_MAX_THREADS;
	if ((p = calloc(1, sizeof(*p))) == NULL)
		return WICK_ERR_ALLOC;
	if (pthread_mutex_init(&p->mu, NULL) != 0 ||
	    pthread_cond_init(&p->work, NULL) != 0 ||
	    pthread_cond_init(&p->idle, NULL) != 0) {
		free(p);
		return WICK_ERR_ALLOC;
	}
	for (i = 0; i < threads; i++) {
		p->threads[i].p = p;
		p->threads[i].slot = i + 1;
		if (pthread_create(&p->threads[i].tid, NULL, par_main,
		    &p->threads[i]) != 0) {
			log_warn("signing threads: only %d of %d started", i,
			    threads);
			break;
		}
		p->nthreads++;
	}
	*out = p;
	return 0;
}

void
par_free(struct par *p)
{
	int i;

	if (p == NULL)
		return;
	pthread_mutex_lock(&p->mu);
	p->stop = 1;
	pthread_cond_broadcast(&p->work);
	pthread_mutex_unlock(&p->mu);
	for (i = 0; i < p->nthreads; i++)
		(void)pthread_join(p->threads[i].tid, NULL);
	pthread_cond_destroy(&p->idle);
	pthread_cond_destroy(&p->work);
	pthread_mutex_destroy(&p->mu);
	free(p);
}

void
par_run(struct par *p, size_t n, par_fn *fn, void *arg)
{
	size_t i;

	if (p == NULL || p->nthreads == 0 || n < 2) {
		for (i = 0; i < n; i++)
			fn(arg, i, 0);
		return;
	}
	pthread_mutex_lock(&p->mu);
	p->fn = fn;
	p->arg = arg;
	p->n = n;
	p->next = 0;
	p->gen++;
	pthread_cond_broadcast(&p->work);
	drain(p, 0);
	while (p->busy > 0)
		pthread_cond_wait(&p->idle, &p->mu);
	p->fn = NULL;
	p->arg = NULL;
	p->n = p->next = 0;
	pthread_mutex_unlock(&p->mu);
}

int
par_threads(const struct par *p)
{
	return p != NULL ? p->nthreads : 0;
}
