/*
 * par.h: a parallel for, for the state thread's CPU-bound batches (the
 * signatures of a BatchNewX509SVID call).
 *
 * par_run() calls fn(arg, i, slot) for every i in [0, n), on the calling
 * thread and on the pool's threads at once, and returns when all calls are
 * done.  fn must touch nothing but its own item, what no thread writes
 * while par_run() runs, and what belongs to its slot (state reused from
 * item to item): slot is 0 on the calling thread and 1 to par_threads()
 * on the pool's, and no two calls running at once have the same.  One
 * par_run() at a time (the state thread's).
 */
#ifndef WICK_PAR_H
#define WICK_PAR_H

#include <stddef.h>

#include "err.h"

#define PAR_MAX_THREADS	16

struct par;

typedef void par_fn(void *arg, size_t i, int slot);

/* threads: the pool's (the caller makes one more); 0 is fine. */
int	 par_new(int threads, struct par **) WICK_WUR;
void	 par_free(struct par *);			/* NULL ok */
void	 par_run(struct par *, size_t n, par_fn *, void *arg);
/* Threads working beside the caller. */
int	 par_threads(const struct par *);

#endif /* WICK_PAR_H */
