/*
 * http_min.h: the little of HTTP/1.1 the WPT example needs: read a
 * message head (at most HTTP_MAX_HEAD bytes) from a socket and find a
 * header in it.  Not a general HTTP implementation.
 */
#ifndef WPT_HTTP_MIN_H
#define WPT_HTTP_MIN_H

#include <stddef.h>

#define HTTP_MAX_HEAD	(32 * 1024)

/* Read until the blank line; 0, or -1 (closed, too long, I/O error). */
int	 http_read_head(int fd, char *buf, size_t buflen);
/*
 * The value of header name (case-insensitive) into out; 0 when present
 * once, 1 when absent, -1 when repeated or too long.
 */
int	 http_header(const char *head, const char *name, char *out,
	    size_t outlen);
int	 http_write_all(int fd, const char *s, size_t n);

#endif
