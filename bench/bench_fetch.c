/*
 * bench_fetch.c: Workload API fetch latency and rate.
 *
 *	bench_fetch -s SOCKET [-c CLIENTS] [-t SECONDS] [-n FETCHES]
 *	    [-r RATE] [-o SAMPLES] [-j]
 *
 * CLIENTS workloads each connect, open FetchX509SVID, wait for the first
 * response (the whole X509SVIDResponse), close the connection and start
 * again, as a short-lived process fetching its SVID does.  (Cancelling
 * streams on one connection thousands of times would trip HTTP/2 rapid-
 * reset protection, and is not what SPIFFE clients do.)  Prints fetches
 * per second and first-response latency percentiles, connection set-up
 * included.  The agent attests the caller on every call.  -n stops after
 * that many fetches (and ignores -t), -o writes every latency in
 * microseconds to a file, one a line, and -j prints the figures as one
 * JSON object.
 *
 * -r offers RATE fetches a second in all, spread evenly over the clients
 * (each starts its next fetch on its own schedule, not as soon as the
 * last one ends): latency at a given load rather than at saturation.  A
 * fetch that could not start on time because the client's previous one
 * was still running counts from when it was due, so a slow answer is
 * not hidden by the fetches it delayed.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "rpc_client.h"
#include "xmalloc.h"

#define MAX_SAMPLES	(4 * 1024 * 1024)

struct client {
	struct rpc_channel	*ch;
	struct rpc_ccall	*call;
	uv_timer_t		 retry;
	double			 t0;
	double			 due;		/* -r: the next fetch's time */
	int			 got;
};

static uv_loop_t	 loop;
static char		 target[1100];
static double		 t_end;
static double		*samples;
static size_t		 nsamples;
static long		 errors, limit, started;
static int		 active;
static double		 interval;	/* -r: each client's, in seconds */

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void	start(struct client *, double);

static void
retry_cb(uv_timer_t *t)
{
	start(t->data, 0);
}

/* The next fetch: now, or with -r at its time (from then if late). */
static void
next(struct client *c)
{
	double	now, wait;

	if (interval == 0) {
		start(c, 0);
		return;
	}
	c->due += interval;
	now = now_s();
	if (c->due <= now) {
		start(c, c->due);
		return;
	}
	wait = (c->due - now) * 1e3;
	uv_timer_start(&c->retry, retry_cb, (uint64_t)wait, 0);
}

static void
on_message(struct rpc_ccall *call, const uint8_t *p, size_t n, void *arg)
{
	struct client *c = arg;

	if (c->got++ == 0) {
		if (nsamples < MAX_SAMPLES)
			samples[nsamples++] = now_s() - c->t0;
		rpc_channel_close(c->ch, NULL, NULL);	/* ends the call */
		c->ch = NULL;
	}
}

static void
on_status(struct rpc_ccall *call, int status, const char *msg, void *arg)
{
	struct client	*c = arg;
	int		 failed = 0;

	c->call = NULL;
	if (status != RPC_CANCELLED || c->got == 0) {
		failed = 1;
		if (errors++ < 3)
			fprintf(stderr, "fetch: %d %s\n", status, msg);
		if (c->ch != NULL) {	/* the next try connects anew */
			rpc_channel_close(c->ch, NULL, NULL);
			c->ch = NULL;
		}
	}
	/* A failed call is counted and the client goes on; only an agent
	 * that never answers stops it. */
	if ((limit > 0 ? started < limit : now_s() < t_end) &&
	    (errors < 100 || nsamples > 0)) {
		if (failed)	/* as a client would, after a pause */
			uv_timer_start(&c->retry, retry_cb, 10, 0);
		else
			next(c);
	}
	else
		active--;
}

static const struct rpc_client_cbs cbs = { NULL, on_message, on_status };

/* A fetch, timed from t0 if it is given (a late one's due time). */
static void
start(struct client *c, double t0)
{
	static const struct rpc_md md = { "workload.spiffe.io",
	    (const uint8_t *)"true", 4 };
	int r;

	c->got = 0;
	c->t0 = t0 > 0 ? t0 : now_s();
	started++;
	if (c->ch == NULL && rpc_channel_new(&loop, target, NULL, 0,
	    &c->ch) != 0) {
		active--;
		return;
	}
	if ((r = rpc_ccall_start(c->ch, "/SpiffeWorkloadAPI/FetchX509SVID",
	    &md, 1, 10000, &cbs, c, &c->call)) != 0 ||
	    rpc_ccall_send(c->call, (const uint8_t *)"", 0) != 0 ||
	    rpc_ccall_half_close(c->call) != 0) {
		errors++;
		active--;
	}
}

static int
cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

int
main(int argc, char **argv)
{
	struct client	*cl;
	const char	*sock = NULL, *out = NULL;
	FILE		*f;
	double		 secs = 5, rate = 0, t0, el;
	size_t		 k;
	int		 n = 1, m, ch, i, json = 0;

	while ((ch = getopt(argc, argv, "s:c:t:n:r:o:j")) != -1) {
		switch (ch) {
		case 's': sock = optarg; break;
		case 'c': n = atoi(optarg); break;
		case 't': secs = atof(optarg); break;
		case 'n': limit = atol(optarg); break;
		case 'r': rate = atof(optarg); break;
		case 'o': out = optarg; break;
		case 'j': json = 1; break;
		default: goto usage;
		}
	}
	/* -r: from one call in 1,000 s to a million a second (NaN fails). */
	if (sock == NULL || n < 1 || n > 10000 || limit < 0 ||
	    !(rate == 0 || (rate >= 1e-3 && rate <= 1e6)))
		goto usage;
	log_init("bench", LOG_LEVEL_WARN, LOG_FORMAT_TEXT);
	/* A connection the agent refused is seen when writing to it. */
	signal(SIGPIPE, SIG_IGN);
	snprintf(target, sizeof(target), "unix://%s", sock);
	samples = xcalloc(MAX_SAMPLES, sizeof(*samples));
	cl = xcalloc((size_t)n, sizeof(*cl));
	uv_loop_init(&loop);
	t0 = now_s();
	t_end = t0 + secs;
	m = limit > 0 && limit < n ? (int)limit : n;
	active = m;
	if (rate > 0)		/* the clients that run share the rate */
		interval = m / rate;
	for (i = 0; i < n; i++) {
		uv_timer_init(&loop, &cl[i].retry);
		cl[i].retry.data = &cl[i];
	}
	for (i = 0; i < m; i++) {
		if (interval == 0) {
			start(&cl[i], 0);
			continue;
		}
		/* Spread over the first interval; next() adds one. */
		cl[i].due = t0 + interval * i / m - interval;
		next(&cl[i]);
	}
	while (active > 0 && uv_run(&loop, UV_RUN_ONCE) != 0)
		;
	el = now_s() - t0;
	for (i = 0; i < n; i++) {
		if (cl[i].ch != NULL)
			rpc_channel_close(cl[i].ch, NULL, NULL);
		uv_close((uv_handle_t *)&cl[i].retry, NULL);
	}
	uv_run(&loop, UV_RUN_DEFAULT);
	qsort(samples, nsamples, sizeof(*samples), cmp);
	if (nsamples == 0) {
		fprintf(stderr, "no fetch succeeded\n");
		return 1;
	}
	if (out != NULL) {
		if ((f = fopen(out, "w")) == NULL) {
			perror(out);
			return 1;
		}
		for (k = 0; k < nsamples; k++)
			fprintf(f, "%.1f\n", samples[k] * 1e6);
		if (fclose(f) != 0) {
			perror(out);
			return 1;
		}
	}
	if (json) {
		printf("{\"clients\":%d,\"fetches\":%zu,\"errors\":%ld,"
		    "\"seconds\":%.3f,\"rate\":%.1f,\"offered\":%.1f,"
		    "\"p50_us\":%.1f,"
		    "\"p99_us\":%.1f,\"p999_us\":%.1f}\n", n, nsamples, errors,
		    el, (double)nsamples / el, rate, samples[nsamples / 2] * 1e6,
		    samples[nsamples * 99 / 100] * 1e6,
		    samples[nsamples * 999 / 1000] * 1e6);
		return errors > 0;
	}
	printf("%4d clients: %8.0f fetches/s  first response p50 %7.0f us  "
	    "p99 %7.0f us  (%zu fetches, %ld errors)\n", n,
	    (double)nsamples / el, samples[nsamples / 2] * 1e6,
	    samples[nsamples * 99 / 100] * 1e6, nsamples, errors);
	return errors > 0;
usage:
	fprintf(stderr, "usage: bench_fetch -s SOCKET [-c CLIENTS] "
	    "[-t SECONDS] [-n FETCHES] [-r RATE] [-o SAMPLES] [-j]\n");
	return 1;
}
