/*
 * worker.h: the server's state thread.
 *
 * The event loop does I/O only: accepting, TLS, HTTP/2, timers, signals.
 * Everything that touches the server's state (the datastore and its
 * connection, the entry cache, the CA manager and key manager, the
 * configuration's reloadable parts) runs on one dedicated thread, one
 * task at a time, in the order submitted.  A slow or unreachable database,
 * an fsync, a batch of signatures or a TPM verification then delays the
 * calls queued behind it, never the loop: handshakes, health checks,
 * metrics and deadlines keep being served.
 *
 * A task's run() runs on the state thread, then its done() (may be NULL)
 * on the loop thread.  worker_submit() may be called from either thread.
 */
#ifndef WICK_WORKER_H
#define WICK_WORKER_H

#include <sys/queue.h>

#include <stdint.h>

#include <uv.h>

#include "err.h"

struct worker;

struct worker_task {
	void	(*run)(struct worker_task *);	/* state thread; NULL: none */
	void	(*done)(struct worker_task *);	/* loop thread; NULL: none */
	void	 *arg;
	STAILQ_ENTRY(worker_task) entry;
	uint64_t  queued_ns;			/* set by worker_submit() */
};

/* Start the thread; the loop gets a handle for the completions. */
int	 worker_start(uv_loop_t *, struct worker **) WICK_WUR;
/*
 * Work a task may leave for later, to be done for several tasks at once
 * (a group commit): added(arg) counts what was ever left (it only grows);
 * a task that added to it has its done() held until flush(arg) has run,
 * which the thread does as soon as no task is queued, WORKER_HOLD_MAX
 * tasks are held or the first of them has waited WORKER_HOLD_NS (so it
 * never sleeps with a task held, and a queue that never empties holds
 * none for long).  flush() must do all that is left.  Set before the
 * first submit.
 */
#define WORKER_HOLD_MAX	64
#define WORKER_HOLD_NS	(1000 * 1000)
void	 worker_set_flush(struct worker *, uint64_t (*added)(void *),
	    void (*flush)(void *), void *arg);
/* Queue a task (either thread).  Never fails: tasks are intrusive. */
void	 worker_submit(struct worker *, struct worker_task *);
/* 1 when called on the state thread. */
int	 worker_on_thread(const struct worker *);
/*
 * Tasks taken by the state thread so far, the one running included
 * (either thread, without a lock): while it does not move, the state
 * thread has done nothing new, so what it published still holds.
 */
uint64_t worker_epoch(const struct worker *);
/* Tasks queued and not yet run. */
size_t	 worker_queued(struct worker *);
/* The longest a task waited in the queue since the last call, in ns. */
uint64_t worker_take_max_wait(struct worker *);
/*
 * Loop thread: the completions' handle stops keeping the loop running.
 * Until then a server draining with a step stuck on the state thread
 * keeps its loop, so the drain's time limit and a second signal act.
 */
void	 worker_release(struct worker *);
/*
 * Loop thread: run what is queued, join the thread, run the last
 * completions and close the handle; the loop must then be run once more
 * for the close.  No task may be submitted after this.
 */
void	 worker_stop(struct worker *);

#endif /* WICK_WORKER_H */
