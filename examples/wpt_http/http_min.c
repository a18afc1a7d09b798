/*
 * http_min.c: see http_min.h.
 */
#include <errno.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "http_min.h"

int
http_read_head(int fd, char *buf, size_t buflen)
{
	size_t	n = 0;
	ssize_t	r;

	while (n + 1 < buflen) {
		/* A byte at a time: stop right after the head. */
		r = read(fd, buf + n, 1);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		n++;
		buf[n] = '\0';
		if (n >= 4 && memcmp(buf + n - 4, "\r\n\r\n", 4) == 0)
			return 0;
	}
	return -1;
}

int
http_header(const char *head, const char *name, char *out, size_t outlen)
{
	const char	*p = strstr(head, "\r\n"), *v, *e;
	size_t		 nl = strlen(name), vl;
	int		 found = 0;

	while (p != NULL && p[2] != '\r') {
		p += 2;
		e = strstr(p, "\r\n");
		if (e == NULL)
			return -1;
		if ((size_t)(e - p) > nl && strncasecmp(p, name, nl) == 0 &&
		    p[nl] == ':') {
			if (found++)
				return -1;	/* repeated */
			for (v = p + nl + 1; *v == ' ' || *v == '\t'; v++)
				;
			vl = (size_t)(e - v);
			while (vl > 0 && (v[vl - 1] == ' ' ||
			    v[vl - 1] == '\t'))
				vl--;
			if (vl + 1 > outlen)
				return -1;
			memcpy(out, v, vl);
			out[vl] = '\0';
		}
		p = e;
	}
	return found ? 0 : 1;
}

int
http_write_all(int fd, const char *s, size_t n)
{
	ssize_t r;

	while (n > 0) {
		if ((r = write(fd, s, n)) < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		s += r;
		n -= (size_t)r;
	}
	return 0;
}
