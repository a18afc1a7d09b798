/*
 * log.h: levelled logging to stderr in text or JSON lines.
 *
 * Lines carry the role ("server", "agent", ...) set by log_init().  Never
 * pass secrets (keys, tokens) to these functions, at any level.
 */
#ifndef WICK_LOG_H
#define WICK_LOG_H

#include <stdint.h>
#include <stdio.h>

enum log_level {
	LOG_LEVEL_FATAL = 0,
	LOG_LEVEL_ERROR,
	LOG_LEVEL_WARN,
	LOG_LEVEL_INFO,
	LOG_LEVEL_DEBUG,
};

enum log_format {
	LOG_FORMAT_TEXT = 0,
	LOG_FORMAT_JSON,
};

void	 log_init(const char *role, enum log_level, enum log_format);
void	 log_set_level(enum log_level);
enum log_level log_get_level(void);
/* Redirect output (default stderr); NULL restores stderr. */
void	 log_set_stream(FILE *);
/* Parse "debug", "info", "warn", "error" (SPIRE's names, any case). */
int	 log_level_parse(const char *, enum log_level *);
/* Parse "text" or "json". */
int	 log_format_parse(const char *, enum log_format *);

void	 log_msg(enum log_level, const char *func, const char *fmt, ...)
	    __attribute__((format(printf, 3, 4)));
void	 log_fatal_exit(const char *func, const char *fmt, ...)
	    __attribute__((format(printf, 2, 3), noreturn));

/*
 * Rate limits for lines a peer can trigger (OpenSSH's log_ratelimit_ctx):
 * one context per call site, at most burst lines per interval; the rest
 * are counted, and the next line after the interval says how many were
 * suppressed.  Loop thread only (the contexts are not locked).
 *
 *	static struct log_ratelimit rl = LOG_RATELIMIT_INIT(10, 60);
 *	log_warn_rl(&rl, "workload %ld: ...", (long)pid);
 */
struct log_ratelimit {
	unsigned	 burst;		/* lines per interval */
	unsigned	 interval_s;
	/* private */
	uint64_t	 window_ms;	/* start of the current interval */
	unsigned	 count;		/* lines logged in it */
	unsigned	 suppressed;	/* lines dropped since the last one */
};
#define LOG_RATELIMIT_INIT(burst, secs)	{ (burst), (secs), 0, 0, 0 }
#define LOG_RATELIMIT_DEFAULT		LOG_RATELIMIT_INIT(10, 60)

/*
 * The decision alone, at monotonic time now_ms: 1 to log (then
 * *suppressed gets the count of lines dropped before it, and the count
 * restarts), 0 to drop.
 */
int	 log_ratelimit_pass(struct log_ratelimit *, uint64_t now_ms,
	    unsigned *suppressed);
void	 log_msg_rl(struct log_ratelimit *, enum log_level, const char *func,
	    const char *fmt, ...) __attribute__((format(printf, 4, 5)));

#define log_error_rl(rl, ...) log_msg_rl((rl), LOG_LEVEL_ERROR, NULL, \
	__VA_ARGS__)
#define log_warn_rl(rl, ...) log_msg_rl((rl), LOG_LEVEL_WARN, NULL, \
	__VA_ARGS__)
#define log_info_rl(rl, ...) log_msg_rl((rl), LOG_LEVEL_INFO, NULL, \
	__VA_ARGS__)
#define log_debug_rl(rl, ...) log_msg_rl((rl), LOG_LEVEL_DEBUG, NULL, \
	__VA_ARGS__)

#define log_error(...)	log_msg(LOG_LEVEL_ERROR, NULL, __VA_ARGS__)
#define log_warn(...)	log_msg(LOG_LEVEL_WARN, NULL, __VA_ARGS__)
#define log_info(...)	log_msg(LOG_LEVEL_INFO, NULL, __VA_ARGS__)
#define log_debug(...)	log_msg(LOG_LEVEL_DEBUG, NULL, __VA_ARGS__)
/* _f variants prefix the calling function's name. */
#define log_error_f(...) log_msg(LOG_LEVEL_ERROR, __func__, __VA_ARGS__)
#define log_warn_f(...)	log_msg(LOG_LEVEL_WARN, __func__, __VA_ARGS__)
#define log_info_f(...)	log_msg(LOG_LEVEL_INFO, __func__, __VA_ARGS__)
#define log_debug_f(...) log_msg(LOG_LEVEL_DEBUG, __func__, __VA_ARGS__)
/* fatal: startup, config and broken invariants only; never for peer input. */
#define fatal(...)	log_fatal_exit(__func__, __VA_ARGS__)

#endif /* WICK_LOG_H */
