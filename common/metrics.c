/*
 * metrics.c: the registry and the Prometheus text exposition format.
 */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "metrics.h"
#include "xmalloc.h"

#define NO_SERIES	((size_t)-1)

const double metrics_latency_buckets[] = {
	0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
	1, 2.5, 5, 10
};
const size_t metrics_nlatency_buckets = sizeof(metrics_latency_buckets) /
    sizeof(metrics_latency_buckets[0]);

struct metric {
	enum metric_type	 type;
	char			*name;		/* a copy */
	const char		*help;
	struct metric_label	 labels[METRICS_MAX_LABELS];
	size_t			 nlabels;
	size_t			 nseries;
	double			 bounds[METRICS_MAX_BUCKETS];
	size_t			 nbounds;
	/* Counters and gauges: one value per series.  Histograms: per
	 * series nbounds + 1 bucket counts (not cumulative; the last is
	 * above every bound), a sum and a count. */
	double			*values;
	uint64_t		*buckets;
	double			*sums;
	uint64_t		*counts;
	pthread_mutex_t		*mu;		/* the registry's */
};

struct metrics {
	struct metric		*families[METRICS_MAX_FAMILIES];
	size_t			 nfamilies;
	struct {
		metrics_collect_fn	*fn;
		void			*arg;
	}			 collect[METRICS_MAX_COLLECT];
	size_t			 ncollect;
	/* Updates may come from a daemon's other threads (a server's
	 * state thread): every value is read and written under it. */
	pthread_mutex_t		 mu;
};

struct metrics *
metrics_new(void)
{
	struct metrics *reg = xcalloc(1, sizeof(struct metrics));

	if (pthread_mutex_init(&reg->mu, NULL) != 0)
		fatal("cannot initialise a mutex");
	return reg;
}

static void
metric_free(struct metric *m)
{
	free(m->name);
	free(m->values);
	free(m->buckets);
	free(m->sums);
	free(m->counts);
	free(m);
}

void
metrics_free(struct metrics *reg)
{
	size_t i;

	if (reg == NULL)
		return;
	for (i = 0; i < reg->nfamilies; i++)
		metric_free(reg->families[i]);
	pthread_mutex_destroy(&reg->mu);
	free(reg);
}

static int
name_ok(const char *s, int colon)
{
	size_t i;

	if (s == NULL || *s == '\0' || strlen(s) > METRICS_MAX_NAME)
		return 0;
	for (i = 0; s[i] != '\0'; i++) {
		char c = s[i];

		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    c == '_' || (colon && c == ':'))
			continue;
		if (i > 0 && c >= '0' && c <= '9')
			continue;
		return 0;
	}
	return 1;
}

static int
ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), k = strlen(suffix);

	return n >= k && strcmp(s + n - k, suffix) == 0;
}

int
metrics_add(struct metrics *reg, enum metric_type type, const char *name,
    const char *help, const struct metric_label *labels, size_t nlabels,
    const double *buckets, size_t nbuckets, struct metric **out)
{
	struct metric	*m;
	size_t		 i, j, nseries = 1;

	*out = NULL;
	if (!name_ok(name, 1) || help == NULL || (type != METRIC_COUNTER &&
	    type != METRIC_GAUGE && type != METRIC_HISTOGRAM))
		return WICK_ERR_INVALID;
	if (type == METRIC_HISTOGRAM && (ends_with(name, "_bucket") ||
	    ends_with(name, "_sum") || ends_with(name, "_count")))
		return WICK_ERR_INVALID;
	if (type != METRIC_HISTOGRAM && nbuckets != 0)
		return WICK_ERR_INVALID;
	if (nlabels > METRICS_MAX_LABELS || nbuckets > METRICS_MAX_BUCKETS)
		return WICK_ERR_LIMIT;
	for (i = 0; i < nbuckets; i++)
		if (!isfinite(buckets[i]) || (i > 0 &&
		    buckets[i] <= buckets[i - 1]))
			return WICK_ERR_INVALID;
	for (i = 0; i < nlabels; i++) {
		if (!name_ok(labels[i].name, 0) ||
		    strncmp(labels[i].name, "__", 2) == 0 ||
		    strcmp(labels[i].name, "le") == 0 ||
		    labels[i].nvalues == 0 || labels[i].values == NULL)
			return WICK_ERR_INVALID;
		for (j = 0; j < i; j++)
			if (strcmp(labels[i].name, labels[j].name) == 0)
				return WICK_ERR_INVALID;
		for (j = 0; j < labels[i].nvalues; j++)
			if (labels[i].values[j] == NULL)
				return WICK_ERR_INVALID;
		if (labels[i].nvalues > METRICS_MAX_VALUES)
			return WICK_ERR_LIMIT;
		nseries *= labels[i].nvalues;
	}
	if (nseries > METRICS_MAX_SERIES)
		return WICK_ERR_LIMIT;
	if (reg->nfamilies >= METRICS_MAX_FAMILIES)
		return WICK_ERR_LIMIT;
	for (i = 0; i < reg->nfamilies; i++)
		if (strcmp(reg->families[i]->name, name) == 0)
			return WICK_ERR_EXISTS;
	m = xcalloc(1, sizeof(*m));
	m->type = type;
	m->name = xstrdup(name);
	m->mu = &reg->mu;
	m->help = help;
	for (i = 0; i < nlabels; i++)
		m->labels[i] = labels[i];
	m->nlabels = nlabels;
	m->nseries = nseries;
	if (type == METRIC_HISTOGRAM) {
		memcpy(m->bounds, buckets, nbuckets * sizeof(*buckets));
		m->nbounds = nbuckets;
		m->buckets = xcalloc(nseries * (nbuckets + 1),
		    sizeof(*m->buckets));
		m->sums = xcalloc(nseries, sizeof(*m->sums));
		m->counts = xcalloc(nseries, sizeof(*m->counts));
	} else
		m->values = xcalloc(nseries, sizeof(*m->values));
	reg->families[reg->nfamilies++] = m;
	*out = m;
	return 0;
}

int
metrics_on_collect(struct metrics *reg, metrics_collect_fn *fn, void *arg)
{
	if (reg->ncollect >= METRICS_MAX_COLLECT)
		return WICK_ERR_LIMIT;
	reg->collect[reg->ncollect].fn = fn;
	reg->collect[reg->ncollect++].arg = arg;
	return 0;
}

size_t
metric_series(const struct metric *m, size_t i0, size_t i1)
{
	if (m == NULL)
		return NO_SERIES;
	switch (m->nlabels) {
	case 0:
		return 0;
	case 1:
		return i0 < m->labels[0].nvalues ? i0 : NO_SERIES;
	default:
		if (i0 >= m->labels[0].nvalues || i1 >= m->labels[1].nvalues)
			return NO_SERIES;
		return i0 * m->labels[1].nvalues + i1;
	}
}

static int
scalar(const struct metric *m, size_t s)
{
	return m != NULL && m->type != METRIC_HISTOGRAM && s < m->nseries;
}

void
metric_inc(struct metric *m, size_t s)
{
	metric_add(m, s, 1);
}

void
metric_add(struct metric *m, size_t s, double v)
{
	if (!scalar(m, s) || isnan(v) || (m->type == METRIC_COUNTER && v < 0))
		return;
	pthread_mutex_lock(m->mu);
	m->values[s] += v;
	pthread_mutex_unlock(m->mu);
}

void
metric_set(struct metric *m, size_t s, double v)
{
	if (!scalar(m, s) || m->type != METRIC_GAUGE)
		return;
	pthread_mutex_lock(m->mu);
	m->values[s] = v;
	pthread_mutex_unlock(m->mu);
}

void
metric_set_max(struct metric *m, size_t s, double v)
{
	if (!scalar(m, s) || m->type != METRIC_GAUGE)
		return;
	pthread_mutex_lock(m->mu);
	if (v > m->values[s])
		m->values[s] = v;
	pthread_mutex_unlock(m->mu);
}

void
metric_observe(struct metric *m, size_t s, double v)
{
	size_t i;

	if (m == NULL || m->type != METRIC_HISTOGRAM || s >= m->nseries ||
	    isnan(v))
		return;
	/* Few bounds: a linear scan is as quick as a search. */
	for (i = 0; i < m->nbounds; i++)
		if (v <= m->bounds[i])
			break;
	pthread_mutex_lock(m->mu);
	m->buckets[s * (m->nbounds + 1) + i]++;
	m->sums[s] += v;
	m->counts[s]++;
	pthread_mutex_unlock(m->mu);
}

double
metric_value(const struct metric *m, size_t s)
{
	double v;

	if (!scalar(m, s))
		return 0;
	pthread_mutex_lock(m->mu);
	v = m->values[s];
	pthread_mutex_unlock(m->mu);
	return v;
}

uint64_t
metric_count(const struct metric *m, size_t s)
{
	uint64_t n;

	if (m == NULL || m->type != METRIC_HISTOGRAM || s >= m->nseries)
		return 0;
	pthread_mutex_lock(m->mu);
	n = m->counts[s];
	pthread_mutex_unlock(m->mu);
	return n;
}

/* ---- rendering -------------------------------------------------------- */

/* HELP text escapes \ and newline; label values also ". */
static int
put_escaped(struct buf *b, const char *s, int quote)
{
	const char	*run = s;
	int		 r;

	for (; *s != '\0'; s++) {
		const char *esc = NULL;

		if (*s == '\\')
			esc = "\\\\";
		else if (*s == '\n')
			esc = "\\n";
		else if (quote && *s == '"')
			esc = "\\\"";
		if (esc == NULL)
			continue;
		if ((r = buf_put(b, run, (size_t)(s - run))) != 0 ||
		    (r = buf_put_cstr(b, esc)) != 0)
			return r;
		run = s + 1;
	}
	return buf_put(b, run, (size_t)(s - run));
}

/* The shortest of %.15g..%.17g that reads back as v: "0.1", not
 * "0.10000000000000001". */
static void
fmt_double(char *s, size_t len, double v)
{
	int prec;

	for (prec = 15; prec < 17; prec++) {
		snprintf(s, len, "%.*g", prec, v);
		if (strtod(s, NULL) == v)
			return;
	}
	snprintf(s, len, "%.17g", v);
}

/* A float as Go's strconv (and so Prometheus) reads it. */
static int
put_float(struct buf *b, double v)
{
	char s[64];

	if (isnan(v))
		return buf_put_cstr(b, "NaN");
	if (isinf(v))
		return buf_put_cstr(b, v > 0 ? "+Inf" : "-Inf");
	/* Integral values print exactly, without an exponent. */
	if (v == floor(v) && fabs(v) < 1e15)
		return buf_putf(b, "%.0f", v);
	fmt_double(s, sizeof(s), v);
	return buf_put_cstr(b, s);
}

/* {a="x",b="y" then le="..." if le != NULL, and }; nothing if empty. */
static int
put_labels(struct buf *b, const struct metric *m, size_t s, const char *le)
{
	size_t	idx[METRICS_MAX_LABELS], i;
	int	r;

	if (m->nlabels == 0 && le == NULL)
		return 0;
	if (m->nlabels == 2) {
		idx[0] = s / m->labels[1].nvalues;
		idx[1] = s % m->labels[1].nvalues;
	} else if (m->nlabels == 1)
		idx[0] = s;
	if ((r = buf_put_cstr(b, "{")) != 0)
		return r;
	for (i = 0; i < m->nlabels; i++) {
		if ((r = buf_putf(b, "%s%s=\"", i > 0 ? "," : "",
		    m->labels[i].name)) != 0 ||
		    (r = put_escaped(b, m->labels[i].values[idx[i]], 1)) != 0 ||
		    (r = buf_put_cstr(b, "\"")) != 0)
			return r;
	}
	if (le != NULL && (r = buf_putf(b, "%sle=\"%s\"", m->nlabels > 0 ?
	    "," : "", le)) != 0)
		return r;
	return buf_put_cstr(b, "}");
}

static int
render_histogram(struct buf *b, const struct metric *m, size_t s)
{
	const uint64_t	*bk = m->buckets + s * (m->nbounds + 1);
	uint64_t	 cum = 0;
	char		 le[64];
	size_t		 i;
	int		 r;

	for (i = 0; i <= m->nbounds; i++) {
		cum += bk[i];
		if (i < m->nbounds)
			fmt_double(le, sizeof(le), m->bounds[i]);
		else
			snprintf(le, sizeof(le), "+Inf");
		if ((r = buf_putf(b, "%s_bucket", m->name)) != 0 ||
		    (r = put_labels(b, m, s, le)) != 0 ||
		    (r = buf_putf(b, " %llu\n", (unsigned long long)cum)) != 0)
			return r;
	}
	if ((r = buf_putf(b, "%s_sum", m->name)) != 0 ||
	    (r = put_labels(b, m, s, NULL)) != 0 ||
	    (r = buf_put_cstr(b, " ")) != 0 ||
	    (r = put_float(b, m->sums[s])) != 0 ||
	    (r = buf_putf(b, "\n%s_count", m->name)) != 0 ||
	    (r = put_labels(b, m, s, NULL)) != 0 ||
	    (r = buf_putf(b, " %llu\n", (unsigned long long)m->counts[s])) != 0)
		return r;
	return 0;
}

static int
render_family(struct buf *b, const struct metric *m)
{
	static const char *const types[] = { "counter", "gauge", "histogram" };
	size_t	s;
	int	r;

	if ((r = buf_putf(b, "# HELP %s ", m->name)) != 0 ||
	    (r = put_escaped(b, m->help, 0)) != 0 ||
	    (r = buf_putf(b, "\n# TYPE %s %s\n", m->name, types[m->type])) != 0)
		return r;
	for (s = 0; s < m->nseries; s++) {
		if (m->type == METRIC_HISTOGRAM) {
			if ((r = render_histogram(b, m, s)) != 0)
				return r;
			continue;
		}
		if ((r = buf_put_cstr(b, m->name)) != 0 ||
		    (r = put_labels(b, m, s, NULL)) != 0 ||
		    (r = buf_put_cstr(b, " ")) != 0 ||
		    (r = put_float(b, m->values[s])) != 0 ||
		    (r = buf_put_cstr(b, "\n")) != 0)
			return r;
	}
	return 0;
}

int
metrics_render(struct metrics *reg, struct buf *out)
{
	size_t	start = buf_len(out), i;
	int	r;

	for (i = 0; i < reg->ncollect; i++)
		reg->collect[i].fn(reg->collect[i].arg);
	r = 0;
	pthread_mutex_lock(&reg->mu);
	for (i = 0; i < reg->nfamilies; i++) {
		if ((r = render_family(out, reg->families[i])) != 0)
			break;
		if (buf_len(out) - start > METRICS_MAX_OUTPUT) {
			r = WICK_ERR_LIMIT;
			break;
		}
	}
	pthread_mutex_unlock(&reg->mu);
	return r;
}
