/*
 * fuzz_httpd.c: the health/metrics listener's request parser.  Whatever
 * the bytes, the answer is one of the statuses httpd.h names; a complete
 * head lies within the input, has a path starting with '/', and parses
 * the same when cut off just after it.  The listener parses again only
 * once a CR, LF or NUL (or the byte after a CR) has come: bytes without
 * those never change the answer.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "httpd.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	struct httpd_req	 req, again;
	char			*p;
	size_t			 j;
	int			 r;

	if (len > HTTPD_MAX_HEAD)
		len = HTTPD_MAX_HEAD;
	/* An exact-size copy, so reading past the end is caught. */
	if ((p = malloc(len > 0 ? len : 1)) == NULL)
		return 0;
	memcpy(p, data, len);
	r = httpd_parse(p, len, &req);
	switch (r) {
	case 0:
		if (req.head_len > len || req.path[0] != '/' ||
		    strlen(req.path) > HTTPD_MAX_TARGET ||
		    (req.method != HTTPD_GET && req.method != HTTPD_HEAD))
			abort();
		if (httpd_parse(p, req.head_len, &again) != 0 ||
		    strcmp(again.path, req.path) != 0 ||
		    again.head_len != req.head_len)
			abort();
		break;
	case HTTPD_MORE:
	case 400:
	case 405:
	case 414:
	case 431:
	case 505:
		break;
	default:
		abort();
	}
	for (j = len; j > 0; j--)
		if (p[j - 1] == '\n' || p[j - 1] == '\r' || p[j - 1] == '\0')
			break;
	if (j > 0 && j < len && p[j - 1] == '\r')
		j++;
	if (j < len && r != HTTPD_MORE && httpd_parse(p, j, &again) ==
	    HTTPD_MORE)
		abort();
	free(p);
	return 0;
}
