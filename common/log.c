/*
 * log.c: levelled logging, text or JSON lines.
 */
#include <ctype.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <jansson.h>

#include "err.h"
#include "log.h"

#define LOG_MAX_LINE	2048

static const char	*log_role = "wick";
static enum log_level	 log_level = LOG_LEVEL_INFO;
static enum log_format	 log_format = LOG_FORMAT_TEXT;
static FILE		*log_stream;

static const char *const level_names[] = {
	[LOG_LEVEL_FATAL] = "fatal",
	[LOG_LEVEL_ERROR] = "error",
	[LOG_LEVEL_WARN] = "warning",
	[LOG_LEVEL_INFO] = "info",
	[LOG_LEVEL_DEBUG] = "debug",
};

void
log_init(const char *role, enum log_level level, enum log_format format)
{
	log_role = role;
	log_level = level;
	log_format = format;
}

void
log_set_level(enum log_level level)
{
	log_level = level;
}

enum log_level
log_get_level(void)
{
	return log_level;
}

void
log_set_stream(FILE *f)
{
	log_stream = f;
}

int
log_level_parse(const char *s, enum log_level *out)
{
	if (strcasecmp(s, "debug") == 0 || strcasecmp(s, "trace") == 0)
		*out = LOG_LEVEL_DEBUG;
	else if (strcasecmp(s, "info") == 0)
		*out = LOG_LEVEL_INFO;
	else if (strcasecmp(s, "warn") == 0 || strcasecmp(s, "warning") == 0)
		*out = LOG_LEVEL_WARN;
	else if (strcasecmp(s, "error") == 0)
		*out = LOG_LEVEL_ERROR;
	else
		return WICK_ERR_INVALID;
	return 0;
}

int
log_format_parse(const char *s, enum log_format *out)
{
	if (strcasecmp(s, "text") == 0)
		*out = LOG_FORMAT_TEXT;
	else if (strcasecmp(s, "json") == 0)
		*out = LOG_FORMAT_JSON;
	else
		return WICK_ERR_INVALID;
	return 0;
}

/* Replace control characters so a peer cannot forge log lines. */
static void
log_sanitize(char *s)
{
	for (; *s != '\0'; s++)
		if (iscntrl((unsigned char)*s))
			*s = '?';
}

static void log_vmsg(enum log_level, const char *, const char *, va_list)
    __attribute__((format(printf, 3, 0)));

static void
log_vmsg(enum log_level level, const char *func, const char *fmt, va_list ap)
{
	char		 msg[LOG_MAX_LINE], ts[96];
	struct timespec	 now;
	struct tm	 tm;
	FILE		*f = log_stream != NULL ? log_stream : stderr;
	json_t		*o = NULL;
	char		*js = NULL;
	int		 off = 0;

	if (func != NULL)
		off = snprintf(msg, sizeof(msg), "%s: ", func);
	if (off < 0 || (size_t)off >= sizeof(msg))
		off = 0;
	(void)vsnprintf(msg + off, sizeof(msg) - off, fmt, ap);
	log_sanitize(msg);

	clock_gettime(CLOCK_REALTIME, &now);
	gmtime_r(&now.tv_sec, &tm);
	snprintf(ts, sizeof(ts), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ",
	    tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
	    tm.tm_min, tm.tm_sec, now.tv_nsec / 1000000);

	if (log_format == LOG_FORMAT_JSON) {
		o = json_pack("{s:s, s:s, s:s, s:s}", "time", ts,
		    "level", level_names[level], "role", log_role, "msg", msg);
		if (o != NULL)
			js = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
		if (js != NULL)
			fprintf(f, "%s\n", js);
		free(js);
		json_decref(o);
	} else {
		fprintf(f, "%s %s %s: %s\n", ts, log_role, level_names[level],
		    msg);
	}
	fflush(f);
}

void
log_msg(enum log_level level, const char *func, const char *fmt, ...)
{
	va_list ap;

	if (level > log_level)
		return;
	va_start(ap, fmt);
	log_vmsg(level, func, fmt, ap);
	va_end(ap);
}

int
log_ratelimit_pass(struct log_ratelimit *rl, uint64_t now_ms,
    unsigned *suppressed)
{
	*suppressed = 0;
	if (rl->count == 0 || now_ms - rl->window_ms >=
	    (uint64_t)rl->interval_s * 1000) {
		rl->window_ms = now_ms;
		rl->count = 0;
	}
	if (rl->count >= rl->burst) {
		if (rl->suppressed < UINT_MAX)
			rl->suppressed++;
		return 0;
	}
	rl->count++;
	*suppressed = rl->suppressed;
	rl->suppressed = 0;
	return 1;
}

void
log_msg_rl(struct log_ratelimit *rl, enum log_level level, const char *func,
    const char *fmt, ...)
{
	struct timespec	 now;
	unsigned	 dropped;
	va_list		 ap;

	if (level > log_level)
		return;
	clock_gettime(CLOCK_MONOTONIC, &now);
	if (!log_ratelimit_pass(rl, (uint64_t)now.tv_sec * 1000 +
	    (uint64_t)now.tv_nsec / 1000000, &dropped))
		return;
	if (dropped > 0)
		log_msg(level, NULL, "(%u lines like the next suppressed by "
		    "the rate limit of %u per %u s)", dropped, rl->burst,
		    rl->interval_s);
	va_start(ap, fmt);
	log_vmsg(level, func, fmt, ap);
	va_end(ap);
}

void
log_fatal_exit(const char *func, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vmsg(LOG_LEVEL_FATAL, func, fmt, ap);
	va_end(ap);
	exit(1);
}
