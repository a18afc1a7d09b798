/*
 * test_worker.c: the state thread's order of tasks and its group commit
 * (worker_set_flush()): a task that left work pending is not reported
 * done before a flush has covered it, a burst of them shares flushes, and
 * the thread never goes idle with a task held.
 */
#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <uv.h>

#include "worker.h"

#define NTASKS	300

struct fixture {
	pthread_mutex_t	 gate_mu;	/* the first task waits on it */
	int		 open;
	pthread_cond_t	 gate_cv;
	size_t		 pending;	/* left by tasks, state thread only */
	uint64_t	 added;		/* ever left */
	size_t		 nflushes;	/* state thread writes, under mu */
	size_t		 flushed;	/* pending items flushed so far */
	pthread_mutex_t	 mu;
	size_t		 ndone;
	size_t		 order_errors;
	size_t		 last_id;
};

struct task {
	struct worker_task	 t;
	struct fixture		*f;
	int			 adds;		/* leaves one item pending */
	size_t			 item;		/* its item's number, 1-based */
	int			 gate;		/* waits until the gate opens */
};

static uint64_t
added_cb(void *arg)
{
	return ((struct fixture *)arg)->added;
}

static void
flush_cb(void *arg)
{
	struct fixture *f = arg;

	pthread_mutex_lock(&f->mu);
	f->flushed += f->pending;
	f->nflushes++;
	pthread_mutex_unlock(&f->mu);
	f->pending = 0;
}

static void
run_cb(struct worker_task *wt)
{
	struct task	*t = (struct task *)wt;
	struct fixture	*f = t->f;

	if (t->gate) {
		pthread_mutex_lock(&f->gate_mu);
		while (!f->open)
			pthread_cond_wait(&f->gate_cv, &f->gate_mu);
		pthread_mutex_unlock(&f->gate_mu);
	}
	if (t->adds) {
		pthread_mutex_lock(&f->mu);
		t->item = f->flushed + ++f->pending;
		f->added++;
		pthread_mutex_unlock(&f->mu);
	}
}

static void
done_cb(struct worker_task *wt)
{
	struct task	*t = (struct task *)wt;
	struct fixture	*f = t->f;

	pthread_mutex_lock(&f->mu);
	/* Its item must be among those flushed already. */
	if (t->adds && t->item > f->flushed)
		f->order_errors++;
	f->ndone++;
	pthread_mutex_unlock(&f->mu);
}

/* A state thread with the flush hook of f, and NTASKS tasks for it. */
static void
fx_start(struct fixture *f, uv_loop_t *loop, struct worker **w,
    struct task **tasks)
{
	memset(f, 0, sizeof(*f));
	pthread_mutex_init(&f->gate_mu, NULL);
	pthread_cond_init(&f->gate_cv, NULL);
	pthread_mutex_init(&f->mu, NULL);
	assert_int_equal(uv_loop_init(loop), 0);
	assert_int_equal(worker_start(loop, w), 0);
	worker_set_flush(*w, added_cb, flush_cb, f);
	*tasks = calloc(NTASKS, sizeof(**tasks));
	assert_non_null(*tasks);
}

/*
 * Open the gate (the first task waits on it while the rest queue up
 * behind it) and run the loop until every done() has come, without
 * anything else to wake the thread: it never sleeps with a task held.
 */
static void
fx_run(struct fixture *f, uv_loop_t *loop)
{
	size_t n;

	pthread_mutex_lock(&f->gate_mu);
	f->open = 1;
	pthread_cond_signal(&f->gate_cv);
	pthread_mutex_unlock(&f->gate_mu);
	for (;;) {
		pthread_mutex_lock(&f->mu);
		n = f->ndone;
		pthread_mutex_unlock(&f->mu);
		if (n == NTASKS)
			break;
		uv_run(loop, UV_RUN_ONCE);
	}
	assert_int_equal(f->order_errors, 0);
}

static void
fx_finish(struct fixture *f, uv_loop_t *loop, struct worker *w,
    struct task *tasks)
{
	worker_stop(w);
	uv_run(loop, UV_RUN_DEFAULT);
	assert_int_equal(uv_loop_close(loop), 0);
	free(tasks);
	pthread_mutex_destroy(&f->mu);
	pthread_cond_destroy(&f->gate_cv);
	pthread_mutex_destroy(&f->gate_mu);
}

/* Task t of fixture f, filled and submitted. */
static void
submit(struct worker *w, struct fixture *f, struct task *t,
    void (*run)(struct worker_task *), void (*done)(struct worker_task *),
    int gate, int adds)
{
	memset(t, 0, sizeof(*t));
	t->t.run = run;
	t->t.done = done;
	t->f = f;
	t->gate = gate;
	t->adds = adds;
	worker_submit(w, &t->t);
}

static void
run_burst(size_t nadds_every, size_t *nflushes, size_t *nadding)
{
	struct fixture	 f;
	struct worker	*w;
	struct task	*tasks;
	uv_loop_t	 loop;
	size_t		 i;

	fx_start(&f, &loop, &w, &tasks);
	*nadding = 0;
	for (i = 0; i < NTASKS; i++) {
		*nadding += i % nadds_every == 0;
		submit(w, &f, &tasks[i], run_cb, done_cb, i == 0,
		    i % nadds_every == 0);
	}
	fx_run(&f, &loop);
	assert_int_equal(f.flushed, *nadding);
	assert_int_equal(f.pending, 0);
	*nflushes = f.nflushes;
	fx_finish(&f, &loop, w, tasks);
}

/* Every task leaves work: they are flushed in groups of at most
 * WORKER_HOLD_MAX, never one by one. */
static void
test_group_commit(void **state)
{
	size_t nflushes, nadding;

	run_burst(1, &nflushes, &nadding);
	assert_int_equal(nadding, NTASKS);
	assert_true(nflushes >= (NTASKS + WORKER_HOLD_MAX - 1) /
	    WORKER_HOLD_MAX);
	assert_true(nflushes < NTASKS / 4);
}

/* Tasks that leave nothing are not held; those that do still wait. */
static void
test_mixed_tasks(void **state)
{
	size_t nflushes, nadding;

	run_burst(3, &nflushes, &nadding);
	assert_int_equal(nadding, NTASKS / 3);
	assert_true(nflushes >= 1 && nflushes < nadding);
}

static void
spin_cb(struct worker_task *wt)
{
	uint64_t until = uv_hrtime() + 50 * 1000;	/* 50 us */

	run_cb(wt);
	while (uv_hrtime() < until)
		;
}

static void
order_cb(struct worker_task *wt)
{
	struct task	*t = (struct task *)wt;
	struct fixture	*f = t->f;

	done_cb(wt);
	pthread_mutex_lock(&f->mu);
	t->item = f->ndone;		/* reused: its place in the order */
	pthread_mutex_unlock(&f->mu);
}

/*
 * A queue that never empties (a flood of other calls): a held task is
 * still answered once it has waited WORKER_HOLD_NS, after a flush that
 * covered it, not after the flood.
 */
static void
test_hold_bounded(void **state)
{
	struct fixture	 f;
	struct worker	*w;
	struct task	*tasks;
	uv_loop_t	 loop;
	size_t		 i;

	fx_start(&f, &loop, &w, &tasks);
	/* Task 0 holds the gate; task 1 leaves work; every other one takes
	 * 50 us and leaves none: 1 ms is 20 of them. */
	for (i = 0; i < NTASKS; i++) {
		submit(w, &f, &tasks[i], i < 2 ? run_cb : spin_cb,
		    i == 1 ? order_cb : done_cb, i == 0, i == 1);
	}
	fx_run(&f, &loop);
	assert_int_equal(f.nflushes, 1);
	/* Answered among the first hundred, not last. */
	assert_true(tasks[1].item < 100);
	fx_finish(&f, &loop, w, tasks);
}

/* Without a flush hook, tasks complete as they always did. */
static void
test_no_hook(void **state)
{
	struct fixture	 f = { 0 };
	struct worker	*w;
	struct task	 t[3];
	uv_loop_t	 loop;
	size_t		 i, n;

	pthread_mutex_init(&f.mu, NULL);
	assert_int_equal(uv_loop_init(&loop), 0);
	assert_int_equal(worker_start(&loop, &w), 0);
	for (i = 0; i < 3; i++) {
		submit(w, &f, &t[i], run_cb, done_cb, 0, 0);
	}
	do {
		uv_run(&loop, UV_RUN_ONCE);
		pthread_mutex_lock(&f.mu);
		n = f.ndone;
		pthread_mutex_unlock(&f.mu);
	} while (n < 3);
	worker_stop(w);
	uv_run(&loop, UV_RUN_DEFAULT);
	assert_int_equal(uv_loop_close(&loop), 0);
	assert_int_equal(f.nflushes, 0);
	pthread_mutex_destroy(&f.mu);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_group_commit),
		cmocka_unit_test(test_mixed_tasks),
		cmocka_unit_test(test_hold_bounded),
		cmocka_unit_test(test_no_hook),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
