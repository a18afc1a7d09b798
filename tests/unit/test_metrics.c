/*
 * test_metrics.c: the metrics registry and its Prometheus text
 * rendering, the health/metrics HTTP request parser, and the
 * health_checks / telemetry configuration.
 */
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "conf.h"
#include "httpd.h"
#include "metrics.h"
#include "telemetry.h"

static const char *const methods[] = { "Fetch", "Validate" };
static const char *const statuses[] = { "OK", "CANCELLED", "INTERNAL" };

/* The rendering as a NUL-terminated string (caller frees). */
static char *
render(struct metrics *reg)
{
	struct buf	 b;
	char		*s;

	buf_init(&b, 0);
	assert_int_equal(metrics_render(reg, &b), 0);
	s = calloc(1, buf_len(&b) + 1);
	assert_non_null(s);
	memcpy(s, buf_ptr(&b), buf_len(&b));
	buf_cleanup(&b);
	return s;
}

static void
test_counter_and_gauge_render(void **state)
{
	struct metrics		*reg = metrics_new();
	struct metric		*c, *g;
	struct metric_label	 l[2] = {
		{ "method", methods, 2 },
		{ "status", statuses, 3 },
	};
	char			*s;

	assert_int_equal(metrics_add(reg, METRIC_COUNTER, "wick_calls_total",
	    "Calls ended.", l, 2, NULL, 0, &c), 0);
	assert_int_equal(metrics_add(reg, METRIC_GAUGE, "wick_open",
	    "Open now.", NULL, 0, NULL, 0, &g), 0);
	metric_inc(c, metric_series(c, 1, 2));
	metric_inc(c, metric_series(c, 1, 2));
	metric_add(c, metric_series(c, 0, 0), 5);
	metric_set(g, 0, 2.5);
	s = render(reg);
	assert_string_equal(s,
	    "# HELP wick_calls_total Calls ended.\n"
	    "# TYPE wick_calls_total counter\n"
	    "wick_calls_total{method=\"Fetch\",status=\"OK\"} 5\n"
	    "wick_calls_total{method=\"Fetch\",status=\"CANCELLED\"} 0\n"
	    "wick_calls_total{method=\"Fetch\",status=\"INTERNAL\"} 0\n"
	    "wick_calls_total{method=\"Validate\",status=\"OK\"} 0\n"
	    "wick_calls_total{method=\"Validate\",status=\"CANCELLED\"} 0\n"
	    "wick_calls_total{method=\"Validate\",status=\"INTERNAL\"} 2\n"
	    "# HELP wick_open Open now.\n"
	    "# TYPE wick_open gauge\n"
	    "wick_open 2.5\n");
	free(s);
	metrics_free(reg);
}

/* The calls of an RPC service as both daemons count them; the label
 * values shared by the daemons. */
static void
test_rpc_calls(void **state)
{
	static const struct rpc_method	 tab[] = {
		{ .path = "/pkg.Svc/Fetch" },
		{ .path = "Validate" },
	};
	static const struct rpc_method	 big[TELEMETRY_MAX_METHODS + 1];
	struct metrics			*reg = metrics_new();
	struct telemetry_rpc		 tr, tr2;
	char				*s;

	memset(&tr, 0, sizeof(tr));
	memset(&tr2, 0, sizeof(tr2));
	assert_int_equal(telemetry_rpc_add(reg, &tr, tab, 2,
	    "wick_rpc_calls_total", "Calls.", "wick_rpc_seconds",
	    "Durations."), 0);
	assert_int_equal(telemetry_rpc_add(reg, &tr2, big,
	    TELEMETRY_MAX_METHODS + 1, "wick_big_total", "Calls.",
	    "wick_big_seconds", "Durations."), WICK_ERR_LIMIT);
	telemetry_rpc_observe(&tr, 1, RPC_INTERNAL, 2000000);
	telemetry_rpc_observe(&tr, 2, RPC_OK, 1000);
	/* Out of range: dropped. */
	telemetry_rpc_observe(&tr, 3, RPC_OK, 1000);
	s = render(reg);
	assert_non_null(strstr(s, "wick_rpc_calls_total{method=\"Fetch\","
	    "status=\"OK\"} 0\n"));
	assert_non_null(strstr(s, "wick_rpc_calls_total{method=\"Validate\","
	    "status=\"INTERNAL\"} 1\n"));
	assert_non_null(strstr(s, "wick_rpc_calls_total{method=\"unknown\","
	    "status=\"OK\"} 1\n"));
	assert_non_null(strstr(s,
	    "wick_rpc_seconds_sum{method=\"Validate\"} 0.002\n"));
	assert_null(strstr(s, "wick_big"));
	free(s);
	metrics_free(reg);

	assert_string_equal(telemetry_svid_types[TELEMETRY_SVID_AGENT],
	    "agent");
	assert_int_equal(telemetry_attest_type("tpm"), 1);
	assert_string_equal(telemetry_attest_types[telemetry_attest_type(
	    "join_token")], "join_token");
	assert_string_equal(telemetry_attest_types[telemetry_attest_type(
	    "x509pop")], "unknown");
	assert_string_equal(telemetry_attest_types[telemetry_attest_type(
	    NULL)], "unknown");
}

static void
test_histogram_is_cumulative(void **state)
{
	static const double	 bounds[] = { 0.1, 1 };
	struct metrics		*reg = metrics_new();
	struct metric		*h;
	struct metric_label	 l = { "method", methods, 2 };
	char			*s;

	assert_int_equal(metrics_add(reg, METRIC_HISTOGRAM, "wick_seconds",
	    "Durations.", &l, 1, bounds, 2, &h), 0);
	metric_observe(h, metric_series(h, 0, 0), 0.05);
	/* le is inclusive. */
	metric_observe(h, metric_series(h, 0, 0), 0.1);
	metric_observe(h, metric_series(h, 0, 0), 0.5);
	metric_observe(h, metric_series(h, 0, 0), 7);
	assert_int_equal(metric_count(h, 0), 4);
	s = render(reg);
	assert_non_null(strstr(s,
	    "wick_seconds_bucket{method=\"Fetch\",le=\"0.1\"} 2\n"
	    "wick_seconds_bucket{method=\"Fetch\",le=\"1\"} 3\n"
	    "wick_seconds_bucket{method=\"Fetch\",le=\"+Inf\"} 4\n"
	    "wick_seconds_sum{method=\"Fetch\"} 7.65\n"
	    "wick_seconds_count{method=\"Fetch\"} 4\n"));
	assert_non_null(strstr(s,
	    "wick_seconds_bucket{method=\"Validate\",le=\"+Inf\"} 0\n"
	    "wick_seconds_sum{method=\"Validate\"} 0\n"
	    "wick_seconds_count{method=\"Validate\"} 0\n"));
	assert_non_null(strstr(s, "# TYPE wick_seconds histogram\n"));
	free(s);
	metrics_free(reg);
}

static void
test_escaping(void **state)
{
	static const char *const odd[] = { "a\"b\\c\nd" };
	struct metrics		*reg = metrics_new();
	struct metric		*c;
	struct metric_label	 l = { "v", odd, 1 };
	char			*s;

	assert_int_equal(metrics_add(reg, METRIC_COUNTER, "wick_x_total",
	    "Help with \\ and\nnewline and \"quotes\".", &l, 1, NULL, 0, &c),
	    0);
	metric_inc(c, 0);
	s = render(reg);
	/* HELP escapes \ and newline only; label values also ". */
	assert_string_equal(s,
	    "# HELP wick_x_total Help with \\\\ and\\nnewline and "
	    "\"quotes\".\n"
	    "# TYPE wick_x_total counter\n"
	    "wick_x_total{v=\"a\\\"b\\\\c\\nd\"} 1\n");
	free(s);
	metrics_free(reg);
}

static void
test_bounded_updates(void **state)
{
	struct metrics		*reg = metrics_new();
	struct metric		*c, *g;
	struct metric_label	 l = { "method", methods, 2 };

	assert_int_equal(metrics_add(reg, METRIC_COUNTER, "wick_c_total", "C.",
	    &l, 1, NULL, 0, &c), 0);
	assert_int_equal(metrics_add(reg, METRIC_GAUGE, "wick_g", "G.", NULL,
	    0, NULL, 0, &g), 0);
	/* An index beyond the fixed values goes nowhere. */
	assert_true(metric_series(c, 2, 0) == (size_t)-1);
	metric_inc(c, metric_series(c, 2, 0));
	metric_inc(c, 99);
	assert_true(metric_value(c, 0) == 0 && metric_value(c, 1) == 0);
	/* Counters only go up. */
	metric_add(c, 0, -3);
	metric_set(c, 0, 10);
	assert_true(metric_value(c, 0) == 0);
	metric_set_max(g, 0, 3);
	metric_set_max(g, 0, 1);
	assert_true(metric_value(g, 0) == 3);
	/* NULL is "metrics off". */
	metric_inc(NULL, 0);
	metric_observe(NULL, 0, 1);
	metrics_free(reg);
}

static void
test_registration_rules(void **state)
{
	static const double	 good[] = { 1, 2 }, bad[] = { 2, 1 };
	static const char *const many[] = {
		"0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11",
		"12", "13", "14", "15", "16", "17", "18", "19", "20", "21",
		"22", "23", "24", "25", "26", "27", "28", "29", "30", "31",
		"32", "33", "34", "35", "36", "37", "38", "39", "40", "41",
		"42", "43", "44", "45", "46", "47", "48", "49", "50", "51",
		"52", "53", "54", "55", "56", "57", "58", "59", "60", "61",
		"62", "63"
	};
	struct metrics		*reg = metrics_new();
	struct metric		*m;
	struct metric_label	 le = { "le", methods, 2 };
	struct metric_label	 dunder = { "__x", methods, 2 };
	struct metric_label	 big[2] = {
		{ "a", many, 64 },
		{ "b", many, 64 },
	};

	assert_int_equal(metrics_add(reg, METRIC_COUNTER, "1bad", "x", NULL,
	    0, NULL, 0, &m), WICK_ERR_INVALID);
	assert_null(m);
	assert_int_equal(metrics_add(reg, METRIC_COUNTER, "bad-name", "x",
	    NULL, 0, NULL, 0, &m), WICK_ERR_INVALID);
	assert_int_equal(metrics_add(reg, METRIC_COUNTER, "ok", "x", &le, 1,
	    NULL, 0, &m), WICK_ERR_INVALID);
	assert_int_equal(metrics_add(reg, METRIC_COUNTER, "ok", "x", &dunder,
	    1, NULL, 0, &m), WICK_ERR_INVALID);
	assert_int_equal(metrics_add(reg, METRIC_HISTOGRAM, "h", "x", NULL, 0,
	    bad, 2, &m), WICK_ERR_INVALID);
	assert_int_equal(metrics_add(reg, METRIC_HISTOGRAM, "h_count", "x",
	    NULL, 0, good, 2, &m), WICK_ERR_INVALID);
	assert_int_equal(metrics_add(reg, METRIC_COUNTER, "c", "x", NULL, 0,
	    good, 2, &m), WICK_ERR_INVALID);
	/* 64 x 64 series is past METRICS_MAX_SERIES. */
	assert_int_equal(metrics_add(reg, METRIC_COUNTER, "big", "x", big, 2,
	    NULL, 0, &m), WICK_ERR_LIMIT);
	assert_int_equal(metrics_add(reg, METRIC_COUNTER, "ok:sub", "x", NULL,
	    0, NULL, 0, &m), 0);
	assert_int_equal(metrics_add(reg, METRIC_GAUGE, "ok:sub", "x", NULL,
	    0, NULL, 0, &m), WICK_ERR_EXISTS);
	metrics_free(reg);
}

static int collected;

static void
collect_cb(void *arg)
{
	metric_set(arg, 0, 42);
	collected++;
}

static void
test_collect_runs_first(void **state)
{
	struct metrics	*reg = metrics_new();
	struct metric	*g;
	char		*s;

	assert_int_equal(metrics_add(reg, METRIC_GAUGE, "wick_entries", "E.",
	    NULL, 0, NULL, 0, &g), 0);
	assert_int_equal(metrics_on_collect(reg, collect_cb, g), 0);
	s = render(reg);
	assert_int_equal(collected, 1);
	assert_non_null(strstr(s, "wick_entries 42\n"));
	free(s);
	metrics_free(reg);
}

static void
test_output_bound(void **state)
{
	struct metrics	*reg = metrics_new();
	struct metric	*g;
	struct buf	 b;

	assert_int_equal(metrics_add(reg, METRIC_GAUGE, "wick_g", "G.", NULL,
	    0, NULL, 0, &g), 0);
	buf_init(&b, 16);
	assert_int_equal(metrics_render(reg, &b), WICK_ERR_LIMIT);
	buf_cleanup(&b);
	metrics_free(reg);
}

/* ---- the HTTP request parser ------------------------------------------ */

static int
parse(const char *s, struct httpd_req *req)
{
	return httpd_parse(s, strlen(s), req);
}

static void
test_parse_requests(void **state)
{
	struct httpd_req	 req;
	const char		*ok = "GET /metrics?x=1 HTTP/1.1\r\n"
	    "Host: 127.0.0.1\r\nAccept: */*\r\n\r\nextra";

	assert_int_equal(parse(ok, &req), 0);
	assert_int_equal(req.method, HTTPD_GET);
	assert_string_equal(req.path, "/metrics");
	assert_int_equal(req.head_len, strlen(ok) - strlen("extra"));
	assert_int_equal(parse("HEAD /live HTTP/1.0\r\n\r\n", &req), 0);
	assert_int_equal(req.method, HTTPD_HEAD);
	assert_string_equal(req.path, "/live");
	assert_int_equal(parse("GET /ready HTTP/1.1\r\nContent-Length: 0\r\n"
	    "\r\n", &req), 0);
	/* Not complete yet. */
	assert_int_equal(parse("", &req), HTTPD_MORE);
	assert_int_equal(parse("GET /live HTTP/1.1\r\nHost: x\r\n", &req),
	    HTTPD_MORE);
	assert_int_equal(parse("GET /live HTTP/1.1\r", &req), HTTPD_MORE);
	/* Refused, with the status to answer. */
	assert_int_equal(parse("POST /live HTTP/1.1\r\n\r\n", &req), 405);
	assert_int_equal(parse("DELETE / HTTP/1.1\r\n\r\n", &req), 405);
	assert_int_equal(parse("GET /live HTTP/2.0\r\n\r\n", &req), 400);
	assert_int_equal(parse("GET /live HTTP/1.2\r\n\r\n", &req), 505);
	assert_int_equal(parse("GET live HTTP/1.1\r\n\r\n", &req), 400);
	assert_int_equal(parse("GET /li ve HTTP/1.1\r\n\r\n", &req), 400);
	assert_int_equal(parse("GET /live HTTP/1.1\n\n", &req), 400);
	assert_int_equal(parse("GET /live HTTP/1.1\r\r\n", &req), 400);
	assert_int_equal(parse("GET /live HTTP/1.1\r\nBad Name: x\r\n\r\n",
	    &req), 400);
	assert_int_equal(parse("GET /live HTTP/1.1\r\nNoColon\r\n\r\n", &req),
	    400);
	assert_int_equal(parse("GET /live HTTP/1.1\r\nA: b\r\n c\r\n\r\n",
	    &req), 400);
	assert_int_equal(parse("GET /live HTTP/1.1\r\nA: \x01\r\n\r\n", &req),
	    400);
	assert_int_equal(parse("GET /live HTTP/1.1\r\nContent-Length: 5\r\n"
	    "\r\nhello", &req), 400);
	assert_int_equal(parse("GET /live HTTP/1.1\r\ntransfer-encoding: "
	    "chunked\r\n\r\n", &req), 400);
	assert_int_equal(httpd_parse("GET /\0 HTTP/1.1\r\n\r\n", 19, &req),
	    400);
}

static void
test_parse_limits(void **state)
{
	struct httpd_req	 req;
	char			*s;
	size_t			 i, n;

	/* A target over HTTPD_MAX_TARGET. */
	s = calloc(1, 2 * HTTPD_MAX_TARGET);
	assert_non_null(s);
	memcpy(s, "GET /", 5);
	memset(s + 5, 'a', HTTPD_MAX_TARGET);
	strcat(s, " HTTP/1.1\r\n\r\n");
	assert_int_equal(parse(s, &req), 414);
	free(s);
	/* More header lines than HTTPD_MAX_HEADERS. */
	s = calloc(1, HTTPD_MAX_HEAD);
	assert_non_null(s);
	strcpy(s, "GET / HTTP/1.1\r\n");
	for (i = 0; i <= HTTPD_MAX_HEADERS; i++)
		strcat(s, "A: b\r\n");
	strcat(s, "\r\n");
	assert_int_equal(parse(s, &req), 431);
	free(s);
	/* A head longer than HTTPD_MAX_HEAD. */
	n = HTTPD_MAX_HEAD + 1;
	s = malloc(n);
	assert_non_null(s);
	memset(s, 'a', n);
	assert_int_equal(httpd_parse(s, n, &req), 431);
	free(s);
}

/* ---- the listener on a loop ------------------------------------------ */

static void
live_handler(void *arg, unsigned tag, const struct httpd_req *req,
    struct httpd_resp *resp)
{
	(void)arg;
	(void)tag;
	(void)req;
	assert_int_equal(buf_put_cstr(resp->body, "live\n"), 0);
}

/* A blocking connect to 127.0.0.1:port: the kernel completes it from
 * the listen backlog, before the loop accepts. */
static int
dial(int port)
{
	struct sockaddr_in	sin;
	int			fd;

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons((uint16_t)port);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(fd >= 0);
	assert_int_equal(connect(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	return fd;
}

/* Turn the loop without blocking for about ms milliseconds. */
static void
spin(uv_loop_t *loop, int ms)
{
	uint64_t end = uv_hrtime() + (uint64_t)ms * 1000000;

	while (uv_hrtime() < end) {
		(void)uv_run(loop, UV_RUN_NOWAIT);
		usleep(500);
	}
}

static void
closed_done(void *arg)
{
	*(int *)arg = 1;
}

/*
 * Clients that send a request and then neither read nor close hold their
 * connections past the answer (the linger), so none is still sending its
 * head.  A newcomer (a liveness probe) still displaces one and is
 * served, and however many connect the descriptors held stay within
 * HTTPD_MAX_CONNS, not one more per refused newcomer.
 */
static void
test_listener_full_of_lingerers(void **state)
{
	uv_loop_t		 loop;
	struct httpd		*h;
	struct httpd_stats	 st;
	int			 fds[HTTPD_MAX_CONNS + 200];
	int			 port, probe, done = 0;
	char			 answer[256];
	size_t			 i, n = 0;
	unsigned		 most = 0;
	const char		*req = "GET /live HTTP/1.1\r\n\r\n";

	assert_int_equal(uv_loop_init(&loop), 0);
	assert_int_equal(httpd_new(&loop, live_handler, NULL, &h), 0);
	assert_int_equal(httpd_listen(h, "127.0.0.1", 0, 1, &port), 0);
	for (i = 0; i < HTTPD_MAX_CONNS; i++) {
		fds[n] = dial(port);
		assert_int_equal(write(fds[n], req, strlen(req)),
		    (ssize_t)strlen(req));
		n++;
	}
	spin(&loop, 50);
	httpd_get_stats(h, &st);
	assert_int_equal(st.conns, HTTPD_MAX_CONNS);
	assert_int_equal(st.requests, HTTPD_MAX_CONNS);
	/* Well within the linger of those. */
	while (n < sizeof(fds) / sizeof(fds[0])) {
		for (i = 0; i < 20 && n < sizeof(fds) / sizeof(fds[0]); i++)
			fds[n++] = dial(port);
		spin(&loop, 5);
		httpd_get_stats(h, &st);
		if (st.conns > most)
			most = st.conns;
	}
	assert_true(most <= HTTPD_MAX_CONNS);
	assert_int_equal(st.rejected, 0);
	probe = dial(port);
	assert_int_equal(write(probe, req, strlen(req)), (ssize_t)strlen(req));
	spin(&loop, 50);
	memset(answer, 0, sizeof(answer));
	assert_true(recv(probe, answer, sizeof(answer) - 1, MSG_DONTWAIT) > 0);
	assert_non_null(strstr(answer, "HTTP/1.1 200 "));
	close(probe);
	for (i = 0; i < n; i++)
		close(fds[i]);
	httpd_close(h, closed_done, &done);
	while (!done)
		(void)uv_run(&loop, UV_RUN_ONCE);
	(void)uv_run(&loop, UV_RUN_NOWAIT);
	assert_int_equal(uv_loop_close(&loop), 0);
}

/*
 * A head sent a byte at a time (slowloris) is not parsed again from its
 * start at each byte, which would cost the loop up to HTTPD_MAX_HEAD
 * bytes of parsing per byte received; it still gets its answer.
 */
static void
test_listener_byte_at_a_time(void **state)
{
	uv_loop_t		 loop;
	struct httpd		*h;
	struct httpd_stats	 st;
	int			 fd, port, done = 0;
	char			 answer[256];
	const char		*start = "GET /live HTTP/1.1\r\nX: ";
	size_t			 i;

	assert_int_equal(uv_loop_init(&loop), 0);
	assert_int_equal(httpd_new(&loop, live_handler, NULL, &h), 0);
	assert_int_equal(httpd_listen(h, "127.0.0.1", 0, 1, &port), 0);
	fd = dial(port);
	assert_int_equal(write(fd, start, strlen(start)),
	    (ssize_t)strlen(start));
	spin(&loop, 5);
	for (i = 0; i < 2000; i++) {
		assert_int_equal(write(fd, "a", 1), 1);
		(void)uv_run(&loop, UV_RUN_NOWAIT);
	}
	assert_int_equal(write(fd, "\r\n\r\n", 4), 4);
	spin(&loop, 50);
	memset(answer, 0, sizeof(answer));
	assert_true(recv(fd, answer, sizeof(answer) - 1, MSG_DONTWAIT) > 0);
	assert_non_null(strstr(answer, "HTTP/1.1 200 "));
	httpd_get_stats(h, &st);
	assert_true(st.parses <= 4);
	close(fd);
	httpd_close(h, closed_done, &done);
	while (!done)
		(void)uv_run(&loop, UV_RUN_ONCE);
	(void)uv_run(&loop, UV_RUN_NOWAIT);
	assert_int_equal(uv_loop_close(&loop), 0);
}

/* ---- configuration ---------------------------------------------------- */

static int
load(const char *text, struct telemetry_config *tc, struct conf_error *err)
{
	struct conf	*c;
	int		 r;

	telemetry_config_init(tc);
	assert_int_equal(conf_parse(text, strlen(text), 0, &c, err), 0);
	r = telemetry_config_load(c, conf_root(c), tc, err);
	conf_free(c);
	return r;
}

/* ---- the loop's own measures ------------------------------------------ */

static uint64_t
cpu_ns(void)
{
	struct timespec ts;

	assert_int_equal(clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts), 0);
	return (uint64_t)ts.tv_sec * 1000000000 + (uint64_t)ts.tv_nsec;
}

/* Use ms milliseconds of this thread's CPU. */
static void
burn(int ms)
{
	uint64_t end = cpu_ns() + (uint64_t)ms * 1000000;

	while (cpu_ns() < end)
		;
}

static void
burn_cb(uv_timer_t *tm)
{
	burn(30);
	*(int *)tm->data = 1;
}

static int
ready_yes(void *arg, char *why, size_t len)
{
	(void)arg;
	(void)why;
	(void)len;
	return 1;
}

static void
stopped_cb(uv_handle_t *h)
{
	(void)h;
}

/* The value of a metric without labels in a rendering. */
static double
gauge_in(const char *text, const char *name)
{
	const char	*p = text;
	size_t		 n = strlen(name);

	while ((p = strstr(p, name)) != NULL) {
		if ((p == text || p[-1] == '\n') && p[n] == ' ')
			return strtod(p + n + 1, NULL);
		p += n;
	}
	fail_msg("%s not rendered", name);
	return 0;
}

/*
 * The longest turn's CPU time: a timer callback that uses 30 ms of CPU
 * is one turn of at least that; the work before the loop first turns
 * (start-up, here 300 ms) is nobody's turn.
 */
static void
test_turn_cpu(void **state)
{
	struct telemetry_config	 tc;
	struct telemetry	*t;
	struct metrics		*reg;
	uv_loop_t		 loop;
	uv_timer_t		 tm;
	char			*text;
	double			 v;
	int			 fired = 0;

	(void)state;
	assert_int_equal(uv_loop_init(&loop), 0);
	assert_non_null(reg = metrics_new());
	telemetry_config_init(&tc);
	tc.health = 1;
	free(tc.health_address);
	tc.health_address = strdup("127.0.0.1");
	tc.health_port = 0;
	assert_int_equal(telemetry_start(&loop, &tc, reg, "test_", ready_yes,
	    NULL, &t), 0);
	assert_non_null(t);
	burn(300);
	/* The first turn, counted from the start. */
	(void)uv_run(&loop, UV_RUN_NOWAIT);
	assert_int_equal(uv_timer_init(&loop, &tm), 0);
	tm.data = &fired;
	assert_int_equal(uv_timer_start(&tm, burn_cb, 5, 0), 0);
	while (!fired)
		(void)uv_run(&loop, UV_RUN_ONCE);
	/* The turn is counted when the next begins. */
	(void)uv_run(&loop, UV_RUN_NOWAIT);
	text = render(reg);
	v = gauge_in(text, "test_event_loop_turn_cpu_max_seconds");
	free(text);
	assert_true(v >= 0.030);
	assert_true(v < 0.300);
	uv_close((uv_handle_t *)&tm, stopped_cb);
	telemetry_stop(t);
	while (uv_run(&loop, UV_RUN_NOWAIT) != 0)
		;
	assert_int_equal(uv_loop_close(&loop), 0);
	metrics_free(reg);
	telemetry_config_cleanup(&tc);
}

static void
test_config(void **state)
{
	struct telemetry_config	tc;
	struct conf_error	err;

	assert_int_equal(load("health_checks {\n listener_enabled = true\n"
	    " bind_address = \"127.0.0.1\"\n bind_port = \"8080\"\n"
	    " live_path = \"/l\"\n ready_path = \"/r\"\n}\n"
	    "telemetry {\n Prometheus {\n host = \"::1\"\n port = 9988\n"
	    " }\n}\n", &tc, &err), 0);
	assert_true(tc.health);
	assert_string_equal(tc.health_address, "127.0.0.1");
	assert_int_equal(tc.health_port, 8080);
	assert_string_equal(tc.live_path, "/l");
	assert_string_equal(tc.ready_path, "/r");
	assert_true(tc.prometheus);
	assert_string_equal(tc.prom_host, "::1");
	assert_int_equal(tc.prom_port, 9988);
	telemetry_config_cleanup(&tc);

	/* SPIRE's defaults. */
	assert_int_equal(load("health_checks { listener_enabled = true }\n",
	    &tc, &err), 0);
	assert_string_equal(tc.health_address, "localhost");
	assert_int_equal(tc.health_port, 80);
	assert_string_equal(tc.live_path, "/live");
	assert_false(tc.prometheus);
	telemetry_config_cleanup(&tc);

	/* Errors name the option. */
	assert_int_equal(load("health_checks { bind_port = 70000 }\n", &tc,
	    &err), WICK_ERR_CONFIG);
	assert_non_null(strstr(err.msg, "bind_port"));
	telemetry_config_cleanup(&tc);
	assert_int_equal(load("health_checks { bind_address = \"example.com\""
	    " }\n", &tc, &err), WICK_ERR_CONFIG);
	assert_non_null(strstr(err.msg, "example.com"));
	telemetry_config_cleanup(&tc);
	assert_int_equal(load("health_checks { live_path = \"live\" }\n", &tc,
	    &err), WICK_ERR_CONFIG);
	assert_non_null(strstr(err.msg, "live_path"));
	telemetry_config_cleanup(&tc);
	assert_int_equal(load("health_checks { colour = 1 }\n", &tc, &err),
	    WICK_ERR_CONFIG);
	assert_non_null(strstr(err.msg, "colour"));
	telemetry_config_cleanup(&tc);
	assert_int_equal(load("telemetry { Prometheus { host = \"127.0.0.1\" "
	    "} }\n", &tc, &err), WICK_ERR_CONFIG);
	assert_non_null(strstr(err.msg, "port is required"));
	telemetry_config_cleanup(&tc);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_counter_and_gauge_render),
		cmocka_unit_test(test_histogram_is_cumulative),
		cmocka_unit_test(test_rpc_calls),
		cmocka_unit_test(test_escaping),
		cmocka_unit_test(test_bounded_updates),
		cmocka_unit_test(test_registration_rules),
		cmocka_unit_test(test_collect_runs_first),
		cmocka_unit_test(test_output_bound),
		cmocka_unit_test(test_parse_requests),
		cmocka_unit_test(test_parse_limits),
		cmocka_unit_test(test_listener_full_of_lingerers),
		cmocka_unit_test(test_listener_byte_at_a_time),
		cmocka_unit_test(test_turn_cpu),
		cmocka_unit_test(test_config),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
