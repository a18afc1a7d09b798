/*
 * log.c: levelled logging, text or JSON lines.
 */
#include <sys/stat.h>
#include <sys/uio.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "err.h"
#include "log.h"
#include "secpath.h"

#define LOG_MAX_LINE	2048
/* Each byte of a message becomes at most 4 ("\xNN"). */
#define LOG_MAX_ESCAPED	(LOG_MAX_LINE * 4 + 1)

static const char	*log_role = "wick";
static pthread_mutex_t	 rl_mu = PTHREAD_MUTEX_INITIALIZER;
/* Read and set with atomics: a server's state thread may change them
 * (reload, SetLogLevel) while its loop logs. */
static enum log_level	 log_level = LOG_LEVEL_INFO;
static enum log_format	 log_format = LOG_FORMAT_TEXT;
#define LEVEL()		__atomic_load_n(&log_level, __ATOMIC_RELAXED)
#define FORMAT()	__atomic_load_n(&log_format, __ATOMIC_RELAXED)
static FILE		*log_stream;
/* log_file's descriptor, or -1 for stderr before one was opened.  Its
 * file is replaced under the same number with dup3(), never closed, so
 * that a line written from another thread goes whole to one file or the
 * other, and never to whatever might reuse the number. */
static int		 log_fd = -1;

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
	__atomic_store_n(&log_level, level, __ATOMIC_RELAXED);
	__atomic_store_n(&log_format, format, __ATOMIC_RELAXED);
}

void
log_set_level(enum log_level level)
{
	__atomic_store_n(&log_level, level, __ATOMIC_RELAXED);
}

enum log_level
log_get_level(void)
{
	return LEVEL();
}

void
log_set_format(enum log_format format)
{
	__atomic_store_n(&log_format, format, __ATOMIC_RELAXED);
}

const char *
log_level_name(enum log_level level)
{
	if ((unsigned)level >= sizeof(level_names) / sizeof(level_names[0]))
		return "unknown";
	return level_names[level];
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

/*
 * The length of the well-formed UTF-8 sequence at p (at most n bytes), or
 * 0: overlong forms, surrogates and code points past U+10FFFF are not
 * (JSON encoders refuse them).  *cp gets the code point.
 */
static size_t
utf8_seq(const unsigned char *p, size_t n, unsigned *cp)
{
	size_t		len, i;
	unsigned	c = p[0], min;

	if (c < 0x80) {
		*cp = c;
		return 1;
	}
	if (c >= 0xc2 && c <= 0xdf) {
		len = 2;
		c &= 0x1f;
		min = 0x80;
	} else if (c >= 0xe0 && c <= 0xef) {
		len = 3;
		c &= 0x0f;
		min = 0x800;
	} else if (c >= 0xf0 && c <= 0xf4) {
		len = 4;
		c &= 0x07;
		min = 0x10000;
	} else
		return 0;
	if (n < len)
		return 0;
	for (i = 1; i < len; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		c = (c << 6) | (p[i] & 0x3f);
	}
	if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
		return 0;
	*cp = c;
	return len;
}

/*
 * Copy s into out (outlen >= 4 * strlen(s) + 1 holds any s) with what
 * could end or forge a line made visible, so that no message, whatever
 * a peer put in it, spans more than one line or breaks the JSON:
 * C0 and C1 controls, DEL, U+2028 and U+2029 (line breaks to some
 * readers) and bytes that are not UTF-8 become \n, \r, \t or \xNN.
 * Backslashes are left alone: they cannot split a line.
 */
size_t
log_escape(const char *s, char *out, size_t outlen)
{
	static const char	 hex[] = "0123456789abcdef";
	const unsigned char	*p = (const unsigned char *)s;
	size_t			 n = strlen(s), o = 0, len, k;
	unsigned		 cp;

	if (outlen == 0)
		return 0;
	while (n > 0) {
		len = utf8_seq(p, n, &cp);
		if (len > 0 && cp >= 0x20 && cp != 0x7f &&
		    !(cp >= 0x80 && cp <= 0x9f) && cp != 0x2028 &&
		    cp != 0x2029) {
			if (o + len >= outlen)
				break;
			memcpy(out + o, p, len);
			o += len;
		} else {
			/* A refused sequence is shown byte by byte. */
			if (len == 0)
				len = 1;
			if (o + 4 * len >= outlen)
				break;
			for (k = 0; k < len; k++) {
				out[o++] = '\\';
				if (p[k] == '\n')
					out[o++] = 'n';
				else if (p[k] == '\r')
					out[o++] = 'r';
				else if (p[k] == '\t')
					out[o++] = 't';
				else {
					out[o++] = 'x';
					out[o++] = hex[p[k] >> 4];
					out[o++] = hex[p[k] & 0xf];
				}
			}
		}
		p += len;
		n -= len;
	}
	out[o] = '\0';
	return o;
}

/*
 * One line, in one write(2): with O_APPEND the kernel puts it whole after
 * whatever another writer (another thread, a previous daemon) appended.
 */
static void
log_write(const char *a, size_t alen, const char *b, size_t blen)
{
	struct iovec	iov[3];
	ssize_t		n;
	int		fd, i = 0, cnt;

	if (log_stream != NULL) {
		(void)fwrite(a, 1, alen, log_stream);
		(void)fwrite(b, 1, blen, log_stream);
		(void)fputc('\n', log_stream);
		(void)fflush(log_stream);
		return;
	}
	fd = log_fd >= 0 ? log_fd : STDERR_FILENO;
	iov[0].iov_base = (void *)a;
	iov[0].iov_len = alen;
	iov[1].iov_base = (void *)b;
	iov[1].iov_len = blen;
	iov[2].iov_base = (void *)"\n";
	iov[2].iov_len = 1;
	cnt = 3;
	while (i < cnt) {
		n = writev(fd, iov + i, cnt - i);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return;	/* nowhere to say so */
		while (i < cnt && (size_t)n >= iov[i].iov_len)
			n -= (ssize_t)iov[i++].iov_len;
		if (i < cnt) {
			iov[i].iov_base = (char *)iov[i].iov_base + n;
			iov[i].iov_len -= (size_t)n;
		}
	}
}

static void log_vmsg(enum log_level, const char *, const char *, va_list)
    __attribute__((format(printf, 3, 0)));

/*
 * Text: "<time> <role> <level>: [<func>: ]<msg>".  JSON, one object a
 * line, keys always in this order: time (RFC 3339, UTC, milliseconds),
 * level, role, src (the function, only for the _f macros), msg.
 */
static void
log_vmsg(enum log_level level, const char *func, const char *fmt, va_list ap)
{
	char		 msg[LOG_MAX_LINE], esc[LOG_MAX_ESCAPED], ts[96];
	char		 head[256];
	struct timespec	 now;
	struct tm	 tm;
	json_t		*o = NULL;
	char		*js = NULL;
	int		 n;

	(void)vsnprintf(msg, sizeof(msg), fmt, ap);
	(void)log_escape(msg, esc, sizeof(esc));

	clock_gettime(CLOCK_REALTIME, &now);
	gmtime_r(&now.tv_sec, &tm);
	snprintf(ts, sizeof(ts), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ",
	    tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
	    tm.tm_min, tm.tm_sec, now.tv_nsec / 1000000);

	if (FORMAT() == LOG_FORMAT_JSON) {
		o = func != NULL ?
		    json_pack("{s:s, s:s, s:s, s:s, s:s}", "time", ts,
		    "level", level_names[level], "role", log_role, "src", func,
		    "msg", esc) :
		    json_pack("{s:s, s:s, s:s, s:s}", "time", ts,
		    "level", level_names[level], "role", log_role, "msg", esc);
		if (o != NULL)
			js = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
		json_decref(o);
		if (js != NULL) {
			log_write(js, strlen(js), "", 0);
			free(js);
			return;
		}
		/* Out of memory: the line goes out as text rather than not
		 * at all. */
	}
	n = snprintf(head, sizeof(head), "%s %s %s: %s%s", ts, log_role,
	    level_names[level], func != NULL ? func : "",
	    func != NULL ? ": " : "");
	if (n < 0)
		n = 0;
	else if ((size_t)n >= sizeof(head))
		n = sizeof(head) - 1;
	log_write(head, (size_t)n, esc, strlen(esc));
}

int
log_open_file(const char *path, char *why, size_t whylen)
{
	struct stat	st;
	int		fd, r;

	(void)snprintf(why, whylen, "%s", "");
	if (path == NULL) {
		/* Not close(): a thread may be writing, and the number could
		 * be reused by a socket. */
		if (log_fd >= 0 && dup3(STDERR_FILENO, log_fd, O_CLOEXEC) < 0) {
			r = err_from_errno(errno);
			(void)snprintf(why, whylen, "stderr: dup3: %s",
			    strerror(errno));
			return r;
		}
		return 0;
	}
	/* Its directory as for the daemon's other files (secpath.h); mode
	 * 0755 admits /var/log. */
	if ((r = secpath_mkdir_parent(path, 0755, why, whylen)) != 0)
		return r;
	/* O_NONBLOCK: a FIFO in its place would block the open (and the
	 * loop, on SIGHUP) until a reader came; it is refused below.  It
	 * changes nothing for a regular file. */
	if ((fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW |
	    O_NOCTTY | O_NONBLOCK | O_CLOEXEC, 0600)) < 0) {
		r = err_from_errno(errno);
		(void)snprintf(why, whylen, "%s: %s", path, strerror(errno));
		return r;
	}
	if (fstat(fd, &st) != 0) {
		r = err_from_errno(errno);
		(void)snprintf(why, whylen, "%s: %s", path, strerror(errno));
		goto fail;
	}
	r = WICK_ERR_PERM;
	if (!S_ISREG(st.st_mode)) {
		r = WICK_ERR_INVALID;
		(void)snprintf(why, whylen, "%s: not a regular file", path);
		goto fail;
	}
	if (st.st_uid != 0 && st.st_uid != geteuid()) {
		(void)snprintf(why, whylen, "%s: owned by uid %u, not by "
		    "root or this process", path, (unsigned)st.st_uid);
		goto fail;
	}
	if ((st.st_mode & 022) != 0) {
		(void)snprintf(why, whylen, "%s: writable by group or others "
		    "(mode %04o)", path, (unsigned)(st.st_mode & 07777));
		goto fail;
	}
	if (log_fd < 0) {
		log_fd = fd;
		return 0;
	}
	/* Swap the file under the same descriptor: no line is lost. */
	if (dup3(fd, log_fd, O_CLOEXEC) < 0) {
		r = err_from_errno(errno);
		(void)snprintf(why, whylen, "%s: dup3: %s", path,
		    strerror(errno));
		goto fail;
	}
	(void)close(fd);
	return 0;
fail:
	(void)close(fd);
	return r;
}

int
log_reload_begin(const char *file, const char *config)
{
	char	why[LOG_MAX_WHY];

	if (file != NULL && log_open_file(file, why, sizeof(why)) != 0)
		log_error("reload: cannot open log_file again: %s; lines go "
		    "to the file open before", why);
	if (config == NULL) {
		log_info("reload: the log file was opened again; there is no "
		    "configuration file to read");
		return 0;
	}
	return 1;
}

int
log_reload_apply(char **file, enum log_format *format, enum log_level *level,
    char **new_file, enum log_format new_format, enum log_level new_level,
    int *napplied)
{
	char	why[LOG_MAX_WHY];
	int	r;

	/* The one step that can still fail comes first: then nothing else
	 * has been applied yet. */
	if (*file == NULL || *new_file == NULL ? *file != *new_file :
	    strcmp(*file, *new_file) != 0) {
		if ((r = log_open_file(*new_file, why, sizeof(why))) != 0) {
			log_error("reload: log_file: %s; nothing was changed",
			    why);
			return r;
		}
		log_info("reload: log_file is now %s (was %s)",
		    *new_file != NULL ? *new_file : "stderr",
		    *file != NULL ? *file : "stderr");
		free(*file);
		*file = *new_file;
		*new_file = NULL;
		(*napplied)++;
	}
	if (*format != new_format) {
		log_set_format(new_format);
		log_info("reload: log_format is now %s",
		    new_format == LOG_FORMAT_JSON ? "json" : "text");
		*format = new_format;
		(*napplied)++;
	}
	if (*level != new_level) {
		log_set_level(new_level);
		log_info("reload: log_level is now %s (was %s)",
		    log_level_name(new_level), log_level_name(*level));
		*level = new_level;
		(*napplied)++;
	}
	return 0;
}

int
log_reload_restart(const struct log_reload_change *t, size_t n)
{
	size_t	i;
	int	count = 0;

	for (i = 0; i < n; i++) {
		if (!t[i].changed)
			continue;
		log_warn("reload: %s changed: it needs a restart to take "
		    "effect; the running value stays", t[i].name);
		count++;
	}
	return count;
}

void
log_reload_done(const char *config, int napplied, int nrestart)
{
	log_info("reload: %s read again: %d setting%s applied, %d need%s a "
	    "restart", config, napplied, napplied == 1 ? "" : "s", nrestart,
	    nrestart == 1 ? "s" : "");
}

void
log_msg(enum log_level level, const char *func, const char *fmt, ...)
{
	va_list ap;

	if (level > LEVEL())
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
	int		 pass;

	if (level > LEVEL())
		return;
	clock_gettime(CLOCK_MONOTONIC, &now);
	/* One call site's limiter may be reached from two threads (a
	 * server's loop and its state thread). */
	pthread_mutex_lock(&rl_mu);
	pass = log_ratelimit_pass(rl, (uint64_t)now.tv_sec * 1000 +
	    (uint64_t)now.tv_nsec / 1000000, &dropped);
	pthread_mutex_unlock(&rl_mu);
	if (!pass)
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
