/*
 * test_log.c: log levels, text and JSON lines, control characters
 * neutralised, the log file and its reopening, and error texts.
 */
#include <sys/stat.h>

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include <jansson.h>

#include "err.h"
#include "log.h"

/* Not inlined: GCC 12 at -O2 takes open_memstream()'s buffer, returned
 * here, for a dangling pointer to the local that held it. */
static __attribute__((noinline)) char *
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
	    "quote \" and\\nnewline");
	assert_non_null(json_object_get(o, "time"));
	json_decref(o);
	free(out);
}

/*
 * Whatever a peer puts in a message (a workload's path, an agent's SPIFFE
 * ID, a header) shows on one line: controls, C1 controls, Unicode line
 * separators and bytes that are not UTF-8 are escaped; UTF-8 text stays.
 */
static const char hostile[] =
    "a\nb\rc\td\x1b[31me\x7f" "f\xc2\x85g\xe2\x80\xa8h\xe2\x80\xa9i"
    "\xff" "j\xc0\xafk\xed\xa0\x80l\xe2\x82" "m \xc3\xa9\xe6\x97\xa5 \\n";
static const char hostile_shown[] =
    "a\\nb\\rc\\td\\x1b[31me\\x7f" "f\\xc2\\x85g\\xe2\\x80\\xa8h"
    "\\xe2\\x80\\xa9i\\xff" "j\\xc0\\xafk\\xed\\xa0\\x80l\\xe2\\x82"
    "m \xc3\xa9\xe6\x97\xa5 \\n";

static size_t
count_lines(const char *s)
{
	size_t n = 0;

	for (; *s != '\0'; s++)
		n += *s == '\n';
	return n;
}

static void
test_escape_text(void **state)
{
	char	*out = capture(LOG_FORMAT_TEXT, LOG_LEVEL_ERROR, hostile);
	char	 small[8];

	assert_int_equal(count_lines(out), 1);
	assert_int_equal(out[strlen(out) - 1], '\n');
	out[strlen(out) - 1] = '\0';
	assert_non_null(strstr(out, " test error: "));
	assert_string_equal(strstr(out, " test error: ") + 13, hostile_shown);
	free(out);
	/* Too small for everything: cut between escapes, never inside. */
	assert_int_equal(log_escape("ab\ncd", small, sizeof(small)), 6);
	assert_string_equal(small, "ab\\ncd");
	assert_int_equal(log_escape("ab\ncd", small, 5), 2);
	assert_string_equal(small, "ab");
	assert_int_equal(log_escape("\n\n", small, 3), 0);
	assert_string_equal(small, "");
}

static void
test_escape_json(void **state)
{
	const char	*keys[] = { "time", "level", "role", "msg" };
	const char	*key, *ts;
	json_t		*o, *v;
	json_error_t	 err;
	size_t		 i = 0;
	char		*out;

	out = capture(LOG_FORMAT_JSON, LOG_LEVEL_ERROR, hostile);
	assert_int_equal(count_lines(out), 1);
	o = json_loads(out, 0, &err);
	assert_non_null(o);
	/* Stable keys, in a stable order. */
	json_object_foreach(o, key, v) {
		assert_true(i < 4);
		assert_string_equal(key, keys[i++]);
	}
	assert_int_equal(i, 4);
	assert_string_equal(json_string_value(json_object_get(o, "msg")),
	    hostile_shown);
	/* RFC 3339, UTC, milliseconds: 2024-01-02T03:04:05.678Z */
	ts = json_string_value(json_object_get(o, "time"));
	assert_non_null(ts);
	assert_int_equal(strlen(ts), 24);
	assert_true(ts[4] == '-' && ts[7] == '-' && ts[10] == 'T' &&
	    ts[13] == ':' && ts[16] == ':' && ts[19] == '.' && ts[23] == 'Z');
	json_decref(o);
	free(out);
}

/* The _f macros name the function: a "src" key in JSON, a prefix in
 * text. */
static void
test_src(void **state)
{
	char		*buf = NULL;
	size_t		 len = 0;
	FILE		*f = open_memstream(&buf, &len);
	json_t		*o;
	json_error_t	 err;

	assert_non_null(f);
	log_init("test", LOG_LEVEL_INFO, LOG_FORMAT_JSON);
	log_set_stream(f);
	log_info_f("with %s", "source");
	log_set_stream(NULL);
	fclose(f);
	o = json_loads(buf, 0, &err);
	assert_non_null(o);
	assert_string_equal(json_string_value(json_object_get(o, "src")),
	    "test_src");
	assert_string_equal(json_string_value(json_object_get(o, "msg")),
	    "with source");
	json_decref(o);
	free(buf);
	buf = NULL;
	f = open_memstream(&buf, &len);
	assert_non_null(f);
	log_set_format(LOG_FORMAT_TEXT);
	log_set_stream(f);
	log_info_f("with %s", "source");
	log_set_stream(NULL);
	fclose(f);
	assert_non_null(strstr(buf, " test info: test_src: with source\n"));
	free(buf);
}

static char *
slurp(const char *path)
{
	FILE	*f = fopen(path, "r");
	char	*buf;
	long	 n;

	assert_non_null(f);
	assert_int_equal(fseek(f, 0, SEEK_END), 0);
	n = ftell(f);
	rewind(f);
	buf = calloc(1, (size_t)n + 1);
	assert_non_null(buf);
	assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
	fclose(f);
	return buf;
}

/*
 * log_file: created 0600 in a directory it makes, appended to; renamed
 * away and opened again (logrotate, then SIGHUP), the old file keeps what
 * was written before and the new one gets the rest; unsafe files are
 * refused and the current output stays.
 */
static void
test_log_file(void **state)
{
	char		 dir[] = "/tmp/wick-test-log-XXXXXX";
	char		 path[256], old[256], other[256], why[LOG_MAX_WHY];
	char		*a, *b;
	struct stat	 st;
	mode_t		 um;

	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/logs/wick.log", dir);
	snprintf(old, sizeof(old), "%s/logs/wick.log.1", dir);
	snprintf(other, sizeof(other), "%s/open.log", dir);
	log_init("test", LOG_LEVEL_INFO, LOG_FORMAT_TEXT);
	um = umask(022);
	assert_int_equal(log_open_file(path, why, sizeof(why)), 0);
	(void)umask(um);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	log_info("line one");
	log_info("line two");
	assert_int_equal(rename(path, old), 0);
	log_info("line three, still to the renamed file");
	assert_int_equal(log_open_file(path, why, sizeof(why)), 0);
	log_info("line four");
	a = slurp(old);
	b = slurp(path);
	assert_int_equal(count_lines(a), 3);
	assert_non_null(strstr(a, "line one\n"));
	assert_non_null(strstr(a, "line three, still to the renamed file\n"));
	assert_int_equal(count_lines(b), 1);
	assert_non_null(strstr(b, "line four\n"));
	free(a);
	free(b);

	/* A file others may write is refused; lines still go to the
	 * current one. */
	fclose(fopen(other, "w"));
	assert_int_equal(chmod(other, 0666), 0);
	assert_int_equal(log_open_file(other, why, sizeof(why)),
	    WICK_ERR_PERM);
	assert_non_null(strstr(why, "writable by group or others"));
	/* So is a symbolic link in place of the file. */
	assert_int_equal(unlink(old), 0);
	assert_int_equal(symlink(other, old), 0);
	assert_int_not_equal(log_open_file(old, why, sizeof(why)), 0);
	log_info("line five");
	b = slurp(path);
	assert_int_equal(count_lines(b), 2);
	free(b);
	/* A FIFO is refused at once, not waited on until a reader comes
	 * (which would hang the daemon's loop on SIGHUP). */
	assert_int_equal(unlink(old), 0);
	assert_int_equal(mkfifo(old, 0600), 0);
	alarm(10);
	assert_int_not_equal(log_open_file(old, why, sizeof(why)), 0);
	alarm(0);
	log_info("line six");
	b = slurp(path);
	assert_int_equal(count_lines(b), 3);
	free(b);

	assert_int_equal(log_open_file(NULL, why, sizeof(why)), 0);
	assert_int_equal(unlink(old), 0);
	assert_int_equal(unlink(other), 0);
	assert_int_equal(unlink(path), 0);
	snprintf(path, sizeof(path), "%s/logs", dir);
	assert_int_equal(rmdir(path), 0);
	assert_int_equal(rmdir(dir), 0);
}

/*
 * SIGHUP's log settings: a new log file that cannot be opened applies
 * nothing; otherwise each change is applied and counted, the new file's
 * name taken over.
 */
static void
test_reload_apply(void **state)
{
	char			 dir[] = "/tmp/wick-test-reload-XXXXXX";
	char			 path[256], bad[256];
	char			*file = NULL, *nfile;
	enum log_format		 fmt = LOG_FORMAT_TEXT;
	enum log_level		 lvl = LOG_LEVEL_INFO;
	const struct log_reload_change t[] = {
		{ "a", 0 }, { "b", 1 }, { "c", 1 },
	};
	int			 n = 0;

	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/wick.log", dir);
	snprintf(bad, sizeof(bad), "%s/wick.log/under.log", dir);
	log_init("test", LOG_LEVEL_INFO, LOG_FORMAT_TEXT);
	fclose(fopen(path, "w"));
	assert_int_equal(chmod(path, 0600), 0);

	/* Nothing differs. */
	nfile = NULL;
	assert_int_equal(log_reload_apply(&file, &fmt, &lvl, &nfile,
	    LOG_FORMAT_TEXT, LOG_LEVEL_INFO, &n), 0);
	assert_int_equal(n, 0);
	/* A log file that cannot be opened: nothing else is applied. */
	nfile = strdup(bad);
	assert_int_not_equal(log_reload_apply(&file, &fmt, &lvl, &nfile,
	    LOG_FORMAT_JSON, LOG_LEVEL_DEBUG, &n), 0);
	assert_int_equal(n, 0);
	assert_null(file);
	assert_int_equal(fmt, LOG_FORMAT_TEXT);
	assert_int_equal(lvl, LOG_LEVEL_INFO);
	assert_string_equal(nfile, bad);
	free(nfile);
	/* All three change. */
	nfile = strdup(path);
	assert_int_equal(log_reload_apply(&file, &fmt, &lvl, &nfile,
	    LOG_FORMAT_JSON, LOG_LEVEL_DEBUG, &n), 0);
	assert_int_equal(n, 3);
	assert_null(nfile);
	assert_string_equal(file, path);
	assert_int_equal(fmt, LOG_FORMAT_JSON);
	assert_int_equal(lvl, LOG_LEVEL_DEBUG);
	assert_int_equal(log_get_level(), LOG_LEVEL_DEBUG);
	/* Back to stderr. */
	assert_int_equal(log_reload_apply(&file, &fmt, &lvl, &nfile,
	    LOG_FORMAT_JSON, LOG_LEVEL_DEBUG, &n), 0);
	assert_int_equal(n, 4);
	assert_null(file);

	assert_int_equal(log_reload_restart(t, 3), 2);
	log_init("test", LOG_LEVEL_INFO, LOG_FORMAT_TEXT);
	assert_int_equal(unlink(path), 0);
	assert_int_equal(rmdir(dir), 0);
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
		cmocka_unit_test(test_escape_text),
		cmocka_unit_test(test_escape_json),
		cmocka_unit_test(test_src),
		cmocka_unit_test(test_log_file),
		cmocka_unit_test(test_reload_apply),
		cmocka_unit_test(test_parse_and_errors),
		cmocka_unit_test(test_ratelimit_decision),
		cmocka_unit_test(test_ratelimit_lines),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
