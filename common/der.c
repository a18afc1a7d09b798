/*
 * der.c: DER elements read and written by hand (der.h).
 */
#include <string.h>

#include "der.h"

int
der_next(const uint8_t **p, const uint8_t *end, struct der *d)
{
	const uint8_t	*q = *p;
	size_t		 n, i, k;

	if (q > end || end - q < 2 || (q[0] & 0x1f) == 0x1f)
		return -1;
	d->tlv = q;
	d->tag = q[0];
	n = q[1];
	q += 2;
	if (n & 0x80) {
		k = n & 0x7f;
		if (k == 0 || k > 2 || (size_t)(end - q) < k || q[0] == 0)
			return -1;
		for (n = 0, i = 0; i < k; i++)
			n = n << 8 | q[i];
		q += k;
		if (n < 0x80 || (k == 2 && n < 0x100))
			return -1;
	}
	if ((size_t)(end - q) < n)
		return -1;
	d->v = q;
	d->len = n;
	d->tlvlen = (size_t)(q + n - d->tlv);
	*p = q + n;
	return 0;
}

int
der_is(const struct der *d, int tag, const void *v, size_t len)
{
	return d->tag == tag && d->len == len && memcmp(d->v, v, len) == 0;
}

int
der_put(struct buf *b, int tag, const void *v, size_t n)
{
	uint8_t	h[4];
	size_t	hl;
	int	r;

	if (n > DER_MAX_LEN)
		return WICK_ERR_LIMIT;
	h[0] = (uint8_t)tag;
	if (n < 0x80) {
		h[1] = (uint8_t)n;
		hl = 2;
	} else if (n < 0x100) {
		h[1] = 0x81;
		h[2] = (uint8_t)n;
		hl = 3;
	} else {
		h[1] = 0x82;
		h[2] = (uint8_t)(n >> 8);
		h[3] = (uint8_t)n;
		hl = 4;
	}
	if ((r = buf_put(b, h, hl)) != 0)
		return r;
	return n == 0 ? 0 : buf_put(b, v, n);
}

int
der_wrap(struct buf *b, int tag, struct buf *inner)
{
	int r;

	r = der_put(b, tag, buf_ptr(inner), buf_len(inner));
	buf_reset(inner);
	return r;
}
