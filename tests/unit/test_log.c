/*
 * test_log.c: log levels, text and JSON lines, control characters
 * neutralised, and error texts.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <jansson.h>

#include "err.h"
#include "log.h"

static char *
capture(enum log_format fmt, enum log_level level, const char *msg)
{
	char	*buf = NULL;
	size_t	 len = 0;
	FILE	*f = open_memstream(&buf, &len);

	assert_non_null(f);
	log_init("test", LOG_LEVEL_INFO, fmt);
	log_set_stream(f);
	log_msg(level, NULL, "%s", msg);
	log_set_stream(NULL);
	fclose(f);
	return buf;
}

static void
test_levels_filter(void **state)
{
	char *out = capture(LOG_FORMAT_TEXT, LOG_LEVEL_DEBUG, "hidden");

	assert_string_equal(out, "");
	free(out);
	out = capture(LOG_FORMAT_TEXT, LOG_LEVEL_ERROR, "shown");
	assert_non_null(strstr(out, " test error: shown\n"));
	free(out);
}

static void
test_json_line(void **state)
{
	char		*out = capture(LOG_FORMAT_JSON, LOG_LEVEL_WARN,
			    "quote \" and\nnewline");
	json_t		*o;
	json_error_t	 err;

	o = json_loads(out, 0, &err);
	assert_non_null(o);
	assert_string_equal(json_string_value(json_object_get(o, "level")),
	    "warning");
	assert_string_equal(json_string_value(json_object_get(o, "role")),
	    "test");
	/* A peer cannot start a new log line with a newline. */
	assert_string_equal(json_string_value(json_object_get(o, "msg")),
	    "quote \" and?newline");
	assert_non_null(json_object_get(o, "time"));
	json_decref(o);
	free(out);
}

static void
test_parse_and_errors(void **state)
{
	enum log_level	l;
	enum log_format	f;

	assert_int_equal(log_level_parse("DEBUG", &l), 0);
	assert_int_equal(l, LOG_LEVEL_DEBUG);
	assert_int_equal(log_level_parse("warn", &l), 0);
	assert_int_equal(l, LOG_LEVEL_WARN);
	assert_int_equal(log_level_parse("loud", &l), WICK_ERR_INVALID);
	assert_int_equal(log_format_parse("json", &f), 0);
	assert_int_equal(f, LOG_FORMAT_JSON);
	assert_int_equal(log_format_parse("xml", &f), WICK_ERR_INVALID);
	assert_string_equal(wick_strerror(WICK_ERR_LIMIT), "limit exceeded");
	assert_string_equal(wick_strerror(-999), "unknown error");
	assert_string_equal(wick_strerror(1), "unknown error");
	assert_int_equal(err_from_errno(2), WICK_ERR_NOT_FOUND);
	assert_int_equal(err_from_uv(-4095), WICK_ERR_EOF);
}

/* A burst passes, the rest are dropped and counted, the next interval
 * says how many were. */
static void
test_ratelimit_decision(void **state)
{
	struct log_ratelimit	 rl = LOG_RATELIMIT_INIT(3, 10);
	unsigned		 dropped, i, passed = 0;

	for (i = 0; i < 100; i++)
		passed += (unsigned)log_ratelimit_pass(&rl, 1000 + i, &dropped);
	assert_int_equal(passed, 3);
	/* Still inside the interval: dropped. */
	assert_int_equal(log_ratelimit_pass(&rl, 10999, &dropped), 0);
	/* The next interval: passes, and reports the 98 dropped. */
	assert_int_equal(log_ratelimit_pass(&rl, 11000, &dropped), 1);
	assert_int_equal(dropped, 98);
	assert_int_equal(log_ratelimit_pass(&rl, 11001, &dropped), 1);
	assert_int_equal(dropped, 0);
}

static void
test_ratelimit_lines(void **state)
{
	static struct log_ratelimit	 rl = LOG_RATELIMIT_INIT(5, 3600);
	char				*buf = NULL, *p;
	size_t				 len = 0, lines = 0;
	FILE				*f = open_memstream(&buf, &len);
	int				 i;

	assert_non_null(f);
	log_init("test", LOG_LEVEL_INFO, LOG_FORMAT_TEXT);
	log_set_stream(f);
	for (i = 0; i < 1000; i++)
		log_warn_rl(&rl, "flood %d", i);
	log_set_stream(NULL);
	fclose(f);
	for (p = buf; (p = strchr(p, '\n')) != NULL; p++)
		lines++;
	assert_int_equal(lines, 5);
	assert_non_null(strstr(buf, "flood 4\n"));
	assert_null(strstr(buf, "flood 5\n"));
	free(buf);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_levels_filter),
		cmocka_unit_test(test_json_line),
		cmocka_unit_test(test_parse_and_errors),
		cmocka_unit_test(test_ratelimit_decision),
		cmocka_unit_test(test_ratelimit_lines),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
