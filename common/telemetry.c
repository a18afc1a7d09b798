/*
 * telemetry.c: health_checks and telemetry { Prometheus } for both
 * daemons; see telemetry.h.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "httpd.h"
#include "log.h"
#include "telemetry.h"
#include "xmalloc.h"

#define TAG_HEALTH	0x1
#define TAG_METRICS	0x2

static const char *const health_known[] = {
	"listener_enabled", "bind_address", "bind_port", "live_path",
	"ready_path", NULL
};
static const char *const telemetry_known[] = { "Prometheus", NULL };
static const char *const telemetry_unimpl[] = {
	"DogStatsd", "Statsd", "M3", "InMem", "MetricPrefix",
	"EnableTrustDomainLabel", "EnableHostnameLabel", "AllowedPrefixes",
	"BlockedPrefixes", "AllowedLabels", "BlockedLabels", NULL
};
static const char *const prometheus_known[] = { "host", "port", NULL };

struct telemetry {
	uv_loop_t		*loop;
	struct httpd		*httpd;
	struct metrics		*reg;
	telemetry_ready_fn	*ready;
	void			*arg;
	char			 live_path[TELEMETRY_MAX_PATH + 1];
	char			 ready_path[TELEMETRY_MAX_PATH + 1];
	uv_timer_t		 lag_timer;
	uint64_t		 lag_armed;	/* uv_hrtime() when armed */
	struct metric		*lag;
	struct metric		*lag_max;
	uv_prepare_t		 turn;
	uint64_t		 turn_cpu;	/* the thread's, at the last */
	int			 turn_seen;
	struct metric		*turn_max;
	int			 pending;	/* httpd, timer, prepare */
};

void
telemetry_config_init(struct telemetry_config *tc)
{
	memset(tc, 0, sizeof(*tc));
	tc->health_address = xstrdup("localhost");
	tc->health_port = 80;
	tc->live_path = xstrdup("/live");
	tc->ready_path = xstrdup("/ready");
	tc->prom_host = xstrdup("localhost");
}

void
telemetry_config_cleanup(struct telemetry_config *tc)
{
	free(tc->health_address);
	free(tc->live_path);
	free(tc->ready_path);
	free(tc->prom_host);
	memset(tc, 0, sizeof(*tc));
}

unsigned
telemetry_config_diff(const struct telemetry_config *a,
    const struct telemetry_config *b)
{
	unsigned d = 0;

	if (a->health != b->health || a->health_port != b->health_port ||
	    !conf_str_eq(a->health_address, b->health_address) ||
	    !conf_str_eq(a->live_path, b->live_path) ||
	    !conf_str_eq(a->ready_path, b->ready_path))
		d |= TELEMETRY_DIFF_HEALTH;
	if (a->prometheus != b->prometheus || a->prom_port != b->prom_port ||
	    !conf_str_eq(a->prom_host, b->prom_host))
		d |= TELEMETRY_DIFF_PROMETHEUS;
	return d;
}

/* We bind without a resolver: an address, or "localhost". */
static int
address_ok(const char *s)
{
	struct sockaddr_in	sin;
	struct sockaddr_in6	sin6;

	return strcmp(s, "localhost") == 0 || uv_ip4_addr(s, 0, &sin) == 0 ||
	    uv_ip6_addr(s, 0, &sin6) == 0;
}

static int
path_ok(const char *s)
{
	size_t i;

	if (s[0] != '/' || strlen(s) > TELEMETRY_MAX_PATH)
		return 0;
	for (i = 0; s[i] != '\0'; i++)
		if ((unsigned char)s[i] <= 0x20 ||
		    (unsigned char)s[i] >= 0x7f || s[i] == '?' || s[i] == '#')
			return 0;
	return 1;
}

/* HCL 1 may give a block as a one-element list. */
static const json_t *
block(const json_t *v)
{
	if (json_is_array(v) && json_array_size(v) == 1)
		return json_array_get(v, 0);
	return v;
}

static int
load_health(const struct conf *c, const json_t *h,
    struct telemetry_config *tc, struct conf_error *err)
{
	int64_t	port;
	int	r;

	if ((r = conf_check_keys(c, h, "health_checks", health_known, NULL,
	    NULL, NULL, err)) != 0 ||
	    (r = conf_get_bool(c, h, "listener_enabled", 0, &tc->health,
	    err)) != 0 ||
	    (r = conf_get_string_dup(c, h, "bind_address", tc->health_address,
	    &tc->health_address, err)) != 0 ||
	    (r = conf_get_int_range(c, h, "bind_port", tc->health_port, 1,
	    65535, &port, err)) != 0 ||
	    (r = conf_get_string_dup(c, h, "live_path", tc->live_path,
	    &tc->live_path, err)) != 0 ||
	    (r = conf_get_string_dup(c, h, "ready_path", tc->ready_path,
	    &tc->ready_path, err)) != 0)
		return r;
	tc->health_port = (int)port;
	if (!address_ok(tc->health_address))
		return conf_error_at(c, h, "bind_address", err,
		    "health_checks: bind_address \"%s\" is not an IP address "
		    "or \"localhost\"", tc->health_address);
	if (!path_ok(tc->live_path))
		return conf_error_at(c, h, "live_path", err, "health_checks: "
		    "live_path \"%s\" must be \"/\" and up to %d visible "
		    "characters", tc->live_path, TELEMETRY_MAX_PATH);
	if (!path_ok(tc->ready_path))
		return conf_error_at(c, h, "ready_path", err, "health_checks: "
		    "ready_path \"%s\" must be \"/\" and up to %d visible "
		    "characters", tc->ready_path, TELEMETRY_MAX_PATH);
	if (strcmp(tc->live_path, tc->ready_path) == 0)
		return conf_error_at(c, h, "ready_path", err, "health_checks: "
		    "live_path and ready_path are both \"%s\"", tc->live_path);
	return 0;
}

static int
load_prometheus(const struct conf *c, const json_t *tel, const json_t *p,
    struct telemetry_config *tc, struct conf_error *err)
{
	int64_t	port;
	int	r;

	if ((r = conf_check_keys(c, p, "Prometheus", prometheus_known, NULL,
	    NULL, NULL, err)) != 0 ||
	    (r = conf_get_string_dup(c, p, "host", tc->prom_host,
	    &tc->prom_host, err)) != 0 ||
	    (r = conf_get_int_range(c, p, "port", 0, 0, 65535, &port,
	    err)) != 0)
		return r;
	if (json_object_get(p, "port") == NULL || port == 0)
		return conf_error_at(c, tel, "Prometheus", err, "telemetry "
		    "Prometheus: port is required (1-65535)");
	tc->prom_port = (int)port;
	tc->prometheus = 1;
	if (!address_ok(tc->prom_host))
		return conf_error_at(c, p, "host", err, "telemetry Prometheus: "
		    "host \"%s\" is not an IP address or \"localhost\"",
		    tc->prom_host);
	return 0;
}

int
telemetry_config_load(const struct conf *c, const json_t *root,
    struct telemetry_config *tc, struct conf_error *err)
{
	const json_t	*h, *t, *p;
	int		 r;

	if ((h = json_object_get(root, "health_checks")) != NULL &&
	    (r = load_health(c, block(h), tc, err)) != 0)
		return r;
	if ((t = json_object_get(root, "telemetry")) == NULL)
		return 0;
	t = block(t);
	if ((r = conf_check_keys(c, t, "telemetry", telemetry_known,
	    telemetry_unimpl, NULL, NULL, err)) != 0)
		return r;
	if ((p = json_object_get(t, "Prometheus")) != NULL &&
	    (r = load_prometheus(c, t, block(p), tc, err)) != 0)
		return r;
	return 0;
}

/* ---- what both daemons count ------------------------------------------ */

const char *const telemetry_svid_types[TELEMETRY_NSVID_TYPES] = {
	"x509", "jwt", "wit", "agent"
};
const char *const telemetry_attest_types[TELEMETRY_NATTEST_TYPES] = {
	"join_token", "tpm", "unknown"
};

size_t
telemetry_attest_type(const char *type)
{
	size_t	i;

	for (i = 0; i < TELEMETRY_NATTEST_TYPES - 1; i++)
		if (type != NULL &&
		    strcmp(type, telemetry_attest_types[i]) == 0)
			break;
	return i;
}

int
telemetry_rpc_add(struct metrics *reg, struct telemetry_rpc *tr,
    const struct rpc_method *tab, size_t ntab, const char *calls_name,
    const char *calls_help, const char *seconds_name,
    const char *seconds_help)
{
	struct metric_label	 l_call[2], l_method;
	const char		*p;
	size_t			 i;
	int			 r;

	if (ntab > TELEMETRY_MAX_METHODS)
		return WICK_ERR_LIMIT;
	for (i = 0; i < ntab; i++) {
		p = strrchr(tab[i].path, '/');
		tr->methods[i] = p != NULL ? p + 1 : tab[i].path;
	}
	tr->methods[ntab] = "unknown";
	for (i = 0; i <= RPC_UNAUTHENTICATED; i++)
		tr->statuses[i] = rpc_status_name((int)i);
	l_method.name = "method";
	l_method.values = tr->methods;
	l_method.nvalues = ntab + 1;
	l_call[0] = l_method;
	l_call[1].name = "status";
	l_call[1].values = tr->statuses;
	l_call[1].nvalues = RPC_UNAUTHENTICATED + 1;
	if ((r = metrics_add(reg, METRIC_COUNTER, calls_name, calls_help,
	    l_call, 2, NULL, 0, &tr->calls)) != 0 ||
	    (r = metrics_add(reg, METRIC_HISTOGRAM, seconds_name,
	    seconds_help, &l_method, 1, metrics_latency_buckets,
	    metrics_nlatency_buckets, &tr->seconds)) != 0)
		return r;
	return 0;
}

void
telemetry_rpc_observe(struct telemetry_rpc *tr, size_t method, int status,
    uint64_t ns)
{
	metric_inc(tr->calls, metric_series(tr->calls, method,
	    (size_t)status));
	metric_observe(tr->seconds, metric_series(tr->seconds, method, 0),
	    (double)ns / 1e9);
}

/* ---- serving ---------------------------------------------------------- */

/* A short text body; the buffer holds far more than these. */
static void
say(struct httpd_resp *resp, int status, const char *text)
{
	resp->status = status;
	buf_reset(resp->body);
	if (buf_put_cstr(resp->body, text) != 0)
		buf_reset(resp->body);
}

static void
handle_metrics(struct telemetry *t, struct httpd_resp *resp)
{
	if (metrics_render(t->reg, resp->body) != 0) {
		say(resp, 500, "metrics do not fit\n");
		return;
	}
	/* The max is over the time between two scrapes. */
	metric_set(t->lag_max, 0, 0);
	metric_set(t->turn_max, 0, 0);
	resp->content_type = "text/plain; version=0.0.4; charset=utf-8";
}

static void
handle_cb(void *arg, unsigned tag, const struct httpd_req *req,
    struct httpd_resp *resp)
{
	struct telemetry	*t = arg;
	char			 why[256];

	if ((tag & TAG_HEALTH) && strcmp(req->path, t->live_path) == 0) {
		say(resp, 200, "live\n");
		return;
	}
	if ((tag & TAG_HEALTH) && strcmp(req->path, t->ready_path) == 0) {
		why[0] = '\0';
		if (t->ready(t->arg, why, sizeof(why)))
			say(resp, 200, "ready\n");
		else if (buf_putf(resp->body, "not ready: %s\n", why) == 0)
			resp->status = 503;
		else
			say(resp, 503, "not ready\n");
		return;
	}
	if ((tag & TAG_METRICS) && (strcmp(req->path, "/metrics") == 0 ||
	    strcmp(req->path, "/") == 0)) {
		handle_metrics(t, resp);
		return;
	}
	say(resp, 404, "404 Not Found\n");
}

static void
lag_cb(uv_timer_t *tm)
{
	struct telemetry	*t = tm->data;
	uint64_t		 due = t->lag_armed +
	    (uint64_t)TELEMETRY_LAG_MS * 1000000;
	uint64_t		 now = uv_hrtime();
	double			 lag;

	/* libuv may fire up to a millisecond early (its clock is cached
	 * at the start of an iteration): that is no lag. */
	lag = now > due ? (double)(now - due) / 1e9 : 0;
	metric_observe(t->lag, 0, lag);
	metric_set_max(t->lag_max, 0, lag);
	t->lag_armed = now;
	uv_timer_start(&t->lag_timer, lag_cb, TELEMETRY_LAG_MS, 0);
}

static uint64_t
thread_cpu_ns(void)
{
	struct timespec ts;

	if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts) != 0)
		return 0;
	return (uint64_t)ts.tv_sec * 1000000000 + (uint64_t)ts.tv_nsec;
}

/*
 * Before each wait for events: the CPU time the loop's thread used since
 * the last is one turn's work (waiting uses none).  Unlike the lag, it
 * does not count time spent waiting for a core other processes hold.
 */
static void
turn_cb(uv_prepare_t *p)
{
	struct telemetry	*t = p->data;
	uint64_t		 now = thread_cpu_ns();

	/* The first turn holds whatever ran before it (start-up). */
	if (t->turn_seen && now > t->turn_cpu)
		metric_set_max(t->turn_max, 0,
		    (double)(now - t->turn_cpu) / 1e9);
	t->turn_seen = 1;
	t->turn_cpu = now;
}

static int
listen_one(struct telemetry *t, const char *what, const char *host, int port,
    unsigned tag)
{
	int r, bound;

	if ((r = httpd_listen(t->httpd, host, port, tag, &bound)) != 0) {
		log_error("%s: cannot listen on %s:%d: %s", what, host, port,
		    wick_strerror(r));
		return r;
	}
	log_info("%s on %s:%d", what, host, bound);
	return 0;
}

int
telemetry_start(uv_loop_t *loop, const struct telemetry_config *tc,
    struct metrics *reg, const char *prefix, telemetry_ready_fn *ready,
    void *arg, struct telemetry **out)
{
	struct telemetry	*t;
	char			 lag_name[METRICS_MAX_NAME + 1];
	char			 lag_max_name[METRICS_MAX_NAME + 1];
	char			 turn_name[METRICS_MAX_NAME + 1];
	int			 same, r = 0;

	*out = NULL;
	if (!tc->health && !tc->prometheus)
		return 0;
	t = xcalloc(1, sizeof(*t));
	t->loop = loop;
	t->reg = reg;
	t->ready = ready;
	t->arg = arg;
	snprintf(t->live_path, sizeof(t->live_path), "%s", tc->live_path);
	snprintf(t->ready_path, sizeof(t->ready_path), "%s", tc->ready_path);
	snprintf(lag_name, sizeof(lag_name), "%sevent_loop_lag_seconds",
	    prefix);
	snprintf(lag_max_name, sizeof(lag_max_name),
	    "%sevent_loop_lag_max_seconds", prefix);
	snprintf(turn_name, sizeof(turn_name),
	    "%sevent_loop_turn_cpu_max_seconds", prefix);
	if ((r = metrics_add(reg, METRIC_HISTOGRAM, lag_name, "How late "
	    "the event loop ran a timer due every 500 ms.", NULL, 0,
	    metrics_latency_buckets, metrics_nlatency_buckets, &t->lag)) != 0 ||
	    (r = metrics_add(reg, METRIC_GAUGE, lag_max_name, "The largest "
	    "event loop lag since the previous scrape.", NULL, 0, NULL, 0,
	    &t->lag_max)) != 0 ||
	    (r = metrics_add(reg, METRIC_GAUGE, turn_name, "The most CPU "
	    "time one turn of the event loop used since the previous "
	    "scrape.", NULL, 0, NULL, 0, &t->turn_max)) != 0) {
		free(t);
		return r;
	}
	if ((r = httpd_new(loop, handle_cb, t, &t->httpd)) != 0) {
		free(t);
		return r;
	}
	t->pending = 3;
	uv_timer_init(loop, &t->lag_timer);
	t->lag_timer.data = t;
	uv_prepare_init(loop, &t->turn);
	t->turn.data = t;
	*out = t;
	same = tc->health && tc->prometheus && tc->health_port ==
	    tc->prom_port && strcmp(tc->health_address, tc->prom_host) == 0;
	if (same)
		r = listen_one(t, "health checks and metrics",
		    tc->health_address, tc->health_port,
		    TAG_HEALTH | TAG_METRICS);
	else if ((!tc->health || (r = listen_one(t, "health checks",
	    tc->health_address, tc->health_port, TAG_HEALTH)) == 0) &&
	    tc->prometheus)
		r = listen_one(t, "Prometheus metrics", tc->prom_host,
		    tc->prom_port, TAG_METRICS);
	if (r != 0) {
		telemetry_stop(t);
		*out = NULL;
		return r;
	}
	t->lag_armed = uv_hrtime();
	uv_timer_start(&t->lag_timer, lag_cb, TELEMETRY_LAG_MS, 0);
	uv_prepare_start(&t->turn, turn_cb);
	return 0;
}

static void
closed_cb(void *arg)
{
	struct telemetry *t = arg;

	if (--t->pending == 0)
		free(t);
}

static void
timer_closed_cb(uv_handle_t *h)
{
	closed_cb(h->data);
}

void
telemetry_stop(struct telemetry *t)
{
	if (t == NULL)
		return;
	uv_timer_stop(&t->lag_timer);
	uv_close((uv_handle_t *)&t->lag_timer, timer_closed_cb);
	uv_prepare_stop(&t->turn);
	uv_close((uv_handle_t *)&t->turn, timer_closed_cb);
	httpd_close(t->httpd, closed_cb, t);
}
