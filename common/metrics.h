/*
 * metrics.h: a small registry of counters, gauges and histograms, and
 * its rendering in the Prometheus text exposition format (version 0.0.4).
 *
 * Owner: the daemon.  A struct metrics holds every family the daemon
 * registered at start-up and nothing else; there is no global registry.
 * Loop thread only: updates are plain stores, not atomics.
 *
 * Label sets are bounded by construction: a family has at most
 * METRICS_MAX_LABELS label names, and each label has a fixed list of
 * values given at registration (method names from a method table, gRPC
 * status names, "ok"/"failed").  Every series is allocated at
 * registration; an update names its series by the values' indexes
 * (metric_series()), so an event never allocates, never compares
 * strings, and nothing a peer sends can become a label value.  An index
 * out of range goes to no series (the update is dropped).
 *
 * Rendering (metrics_render()) first runs the collect callbacks, through
 * which the daemon sets gauges that are cheaper to read when scraped
 * (connections open, entries held), then writes, per family in
 * registration order:
 *	# HELP <name> <help, with \ and newline escaped>
 *	# TYPE <name> counter|gauge|histogram
 *	<name>{<label>="<value, with \ " and newline escaped>",...} <value>
 * Histograms give cumulative <name>_bucket{...,le="<bound>"} lines ending
 * with le="+Inf", then <name>_sum and <name>_count.
 */
#ifndef WICK_METRICS_H
#define WICK_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "err.h"

#define METRICS_MAX_LABELS	2
#define METRICS_MAX_VALUES	64	/* values of one label */
#define METRICS_MAX_SERIES	512	/* series of one family */
#define METRICS_MAX_BUCKETS	24	/* finite bounds of a histogram */
#define METRICS_MAX_FAMILIES	128
#define METRICS_MAX_COLLECT	8
#define METRICS_MAX_NAME	128
/* Bytes of one rendering. */
#define METRICS_MAX_OUTPUT	(1024u * 1024)

enum metric_type {
	METRIC_COUNTER = 0,
	METRIC_GAUGE,
	METRIC_HISTOGRAM,
};

/* One label: its name and the only values it can take. */
struct metric_label {
	const char		*name;
	const char *const	*values;
	size_t			 nvalues;
};

struct metrics;
struct metric;

typedef void metrics_collect_fn(void *arg);

/* A registry; exits on allocation failure (daemon-internal state). */
struct metrics *metrics_new(void);
void	 metrics_free(struct metrics *);

/*
 * Register a family.  name must match [a-zA-Z_:][a-zA-Z0-9_:]* (and not
 * end in _bucket, _sum or _count for histograms), label names
 * [a-zA-Z_][a-zA-Z0-9_]* without a leading "__" and not "le"; buckets
 * (histograms only) strictly increasing finite upper bounds.  The name
 * is copied; help and the labels' strings are borrowed and must outlive
 * the registry (string constants, a method table).  WICK_ERR_INVALID
 * for a bad name, label or bucket list, WICK_ERR_LIMIT past the
 * METRICS_MAX_* bounds, WICK_ERR_EXISTS for a name taken.
 */
int	 metrics_add(struct metrics *, enum metric_type, const char *name,
	    const char *help, const struct metric_label *labels,
	    size_t nlabels, const double *buckets, size_t nbuckets,
	    struct metric **out) WICK_WUR;

/* Run fn(arg) at the start of every rendering. */
int	 metrics_on_collect(struct metrics *, metrics_collect_fn *fn,
	    void *arg) WICK_WUR;

/*
 * The series of the given value indexes, one per label in order (a
 * family without labels has series 0).  Out of range: (size_t)-1, which
 * every update ignores.
 */
size_t	 metric_series(const struct metric *, size_t i0, size_t i1);

/* Updates; m may be NULL (metrics off), a series out of range is
 * ignored, and a counter never goes down (negative adds are dropped). */
void	 metric_inc(struct metric *m, size_t series);
void	 metric_add(struct metric *m, size_t series, double v);
void	 metric_set(struct metric *m, size_t series, double v);
/* Gauges: keep the larger of the current value and v. */
void	 metric_set_max(struct metric *m, size_t series, double v);
void	 metric_observe(struct metric *m, size_t series, double v);
/* A gauge's or counter's current value (tests, collect callbacks). */
double	 metric_value(const struct metric *m, size_t series);
/* A histogram's observation count. */
uint64_t metric_count(const struct metric *m, size_t series);

/*
 * Render every family into out (appended; out's own maximum applies,
 * and at most METRICS_MAX_OUTPUT bytes are written).  WICK_ERR_LIMIT if
 * it does not fit.
 */
int	 metrics_render(struct metrics *, struct buf *out) WICK_WUR;

/* Bucket bounds, in seconds, for latencies from 0.5 ms to 10 s. */
extern const double metrics_latency_buckets[];
extern const size_t metrics_nlatency_buckets;

#endif /* WICK_METRICS_H */
