/*
 * log.h: levelled logging to stderr or a file, in text or JSON lines.
 *
 * Lines carry the role ("server", "agent", ...) set by log_init().  Never
 * pass secrets (keys, tokens) to these functions, at any level.
 */
#ifndef WICK_LOG_H
#define WICK_LOG_H

#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "err.h"

#define LOG_MAX_WHY	(PATH_MAX + 256)	/* log_open_file()'s why */

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
void	 log_set_format(enum log_format);
/* "debug", "info", "warning", ...: as lines show it. */
const char *log_level_name(enum log_level);
/* Redirect output (default stderr); NULL restores stderr. */
void	 log_set_stream(FILE *);
/*
 * Lines go to the file at path (SPIRE's log_file) instead of stderr.  Its
 * directory is checked, and made when missing, as secpath.h says; the
 * file is opened for appending, created 0600 (the umask may take more
 * away), and must be a regular file, root's or ours, that group and
 * others cannot write.  Called again (logrotate renamed the file and sent
 * SIGHUP) it opens the path anew and swaps it in under the same
 * descriptor: each line goes whole to the old file or the new one.  NULL
 * goes back to stderr.  Loop thread only; on error the current output
 * stays and why says what is wrong.
 */
int	 log_open_file(const char *path, char *why, size_t whylen) WICK_WUR;
/*
 * SIGHUP in either daemon.  log_reload_begin() opens the running log
 * file again (logrotate renamed it; an error is logged and the old file
 * kept) and returns 0 when there is no configuration file to read
 * (config NULL), 1 when there is.  log_reload_apply() then applies a new
 * configuration's log settings over the running ones, the new log file
 * first: if it cannot be opened, that is logged, nothing is applied and
 * an error is returned.  Otherwise *file takes *new_file (which becomes
 * NULL), and each setting applied is logged and counted in *napplied.
 * log_reload_restart() names the settings that changed but need a
 * restart, and log_reload_done() logs the summary line.
 */
int	 log_reload_begin(const char *file, const char *config);
int	 log_reload_apply(char **file, enum log_format *format,
	    enum log_level *level, char **new_file, enum log_format new_format,
	    enum log_level new_level, int *napplied) WICK_WUR;
/* A setting that only a restart applies, and whether it changed. */
struct log_reload_change {
	const char	*name;
	int		 changed;
};
/* One warning per setting of t that changed (values are never logged:
 * some may be secrets); returns how many. */
int	 log_reload_restart(const struct log_reload_change *t, size_t n);
void	 log_reload_done(const char *config, int napplied, int nrestart);
/*
 * What a line shows of a message (exposed for tests): control
 * characters, U+2028/U+2029 and bytes that are not UTF-8 become \n, \r,
 * \t or \xNN, so a message never spans two lines.  out holds at most
 * outlen - 1 bytes and a NUL; 4 * strlen(s) + 1 is always enough.
 */
size_t	 log_escape(const char *s, char *out, size_t outlen);
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
