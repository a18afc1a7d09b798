/*
 * buf.c: bounded byte buffer.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "log.h"
#include "xmalloc.h"

#define BUF_MIN_ALLOC	256

static void
buf_check_sanity(const struct buf *b)
{
	if (b->off > b->len || b->len > b->cap || b->cap > b->max ||
	    b->max > BUF_MAX_SIZE || (b->data == NULL && b->cap != 0) ||
	    b->len > b->dirty || b->dirty > b->cap)
		fatal("buf invariant broken: off %zu len %zu cap %zu max %zu "
		    "dirty %zu", b->off, b->len, b->cap, b->max, b->dirty);
}

void
buf_init(struct buf *b, size_t max)
{
	memset(b, 0, sizeof(*b));
	b->max = (max == 0 || max > BUF_MAX_SIZE) ? BUF_MAX_SIZE : max;
}

void
buf_cleanup(struct buf *b)
{
	if (b == NULL)
		return;
	if (b->data != NULL) {
		if (b->secret)
			freezero(b->data, b->dirty);
		else
			free(b->data);
	}
	b->data = NULL;
	b->off = b->len = b->cap = b->dirty = b->resv_dirty = 0;
}

struct buf *
buf_new(size_t max)
{
	struct buf *b;

	if ((b = malloc(sizeof(*b))) == NULL)
		return NULL;
	buf_init(b, max);
	return b;
}

void
buf_free(struct buf *b)
{
	if (b == NULL)
		return;
	buf_cleanup(b);
	free(b);
}

void
buf_set_secret(struct buf *b)
{
	b->secret = 1;
}

void
buf_reset(struct buf *b)
{
	if (b->secret && b->data != NULL)
		wipe(b->data, b->dirty);
	b->off = b->len = b->dirty = b->resv_dirty = 0;
}

const uint8_t *
buf_ptr(const struct buf *b)
{
	buf_check_sanity(b);
	return b->data + b->off;
}

size_t
buf_len(const struct buf *b)
{
	return b->len - b->off;
}

/* Move unread bytes to the front once more than half the space is read. */
static void
buf_pack(struct buf *b)
{
	if (b->off == 0)
		return;
	if (b->off == b->len) {
		b->off = b->len = 0;
		return;
	}
	memmove(b->data, b->data + b->off, b->len - b->off);
	b->len -= b->off;
	if (b->secret)
		wipe(b->data + b->len, b->off);
	b->off = 0;
}

int
buf_reserve(struct buf *b, size_t n, uint8_t **out)
{
	size_t	 need, ncap;
	uint8_t	*p;

	*out = NULL;
	buf_check_sanity(b);
	if (n > b->max - buf_len(b))
		return WICK_ERR_LIMIT;
	if (n > b->cap - b->len)
		buf_pack(b);
	if (n > b->cap - b->len) {
		need = b->len + n;
		ncap = b->cap < BUF_MIN_ALLOC ? BUF_MIN_ALLOC : b->cap;
		while (ncap < need)
			ncap = ncap > b->max / 2 ? b->max : ncap * 2;
		if (ncap > b->max)
			ncap = b->max;
		if (b->secret) {
			/* Never leave a copy of a secret in freed memory. */
			if ((p = malloc(ncap)) == NULL)
				return WICK_ERR_ALLOC;
			if (b->len > 0)
				memcpy(p, b->data, b->len);
			freezero(b->data, b->dirty);
			/* Only what was copied is in the new block. */
			b->dirty = b->len;
		} else if ((p = realloc(b->data, ncap)) == NULL)
			return WICK_ERR_ALLOC;
		b->data = p;
		b->cap = ncap;
	}
	b->resv_dirty = b->dirty;
	if (b->len + n > b->dirty)
		b->dirty = b->len + n;
	*out = b->data + b->len;
	return 0;
}

void
buf_commit(struct buf *b, size_t n)
{
	if (n > b->cap - b->len)
		fatal("buf_commit past reserved space");
	b->len += n;
	/* What the reservation held beyond the n bytes was not written. */
	b->dirty = b->resv_dirty > b->len ? b->resv_dirty : b->len;
	b->resv_dirty = b->dirty;
}

int
buf_put(struct buf *b, const void *p, size_t n)
{
	uint8_t	*d;
	int	 r;

	if (n == 0)
		return 0;
	if ((r = buf_reserve(b, n, &d)) != 0)
		return r;
	memcpy(d, p, n);
	b->len += n;
	return 0;
}

int
buf_put_u8(struct buf *b, uint8_t v)
{
	return buf_put(b, &v, 1);
}

int
buf_put_u32be(struct buf *b, uint32_t v)
{
	uint8_t d[4];

	d[0] = v >> 24;
	d[1] = v >> 16;
	d[2] = v >> 8;
	d[3] = v;
	return buf_put(b, d, sizeof(d));
}

int
buf_put_cstr(struct buf *b, const char *s)
{
	return buf_put(b, s, strlen(s));
}

int
buf_putf(struct buf *b, const char *fmt, ...)
{
	va_list	 ap;
	int	 n, r;
	uint8_t	*d;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		return WICK_ERR_INVALID;
	if ((r = buf_reserve(b, (size_t)n + 1, &d)) != 0)
		return r;
	va_start(ap, fmt);
	(void)vsnprintf((char *)d, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
	return 0;
}

int
buf_consume(struct buf *b, size_t n)
{
	if (n > buf_len(b))
		return WICK_ERR_INVALID;
	if (b->secret)
		wipe(b->data + b->off, n);
	b->off += n;
	if (b->off == b->len)
		b->off = b->len = 0;
	return 0;
}

int
buf_get(struct buf *b, void *p, size_t n)
{
	if (n > buf_len(b))
		return WICK_ERR_INVALID;
	if (n > 0)
		memcpy(p, b->data + b->off, n);
	return buf_consume(b, n);
}

int
buf_get_u8(struct buf *b, uint8_t *v)
{
	return buf_get(b, v, 1);
}

int
buf_peek_u32be(const struct buf *b, size_t at, uint32_t *v)
{
	const uint8_t *d;

	if (at > buf_len(b) || buf_len(b) - at < 4)
		return WICK_ERR_INVALID;
	d = b->data + b->off + at;
	*v = (uint32_t)d[0] << 24 | (uint32_t)d[1] << 16 |
	    (uint32_t)d[2] << 8 | d[3];
	return 0;
}

int
buf_get_u32be(struct buf *b, uint32_t *v)
{
	int r;

	if ((r = buf_peek_u32be(b, 0, v)) != 0)
		return r;
	return buf_consume(b, 4);
}

int
buf_steal(struct buf *b, uint8_t **out, size_t *lenp)
{
	uint8_t	*p;
	size_t	 n = buf_len(b);

	*out = NULL;
	if (lenp != NULL)
		*lenp = 0;
	if ((p = malloc(n + 1)) == NULL)
		return WICK_ERR_ALLOC;
	if (n > 0)
		memcpy(p, buf_ptr(b), n);
	p[n] = '\0';
	buf_reset(b);
	*out = p;
	if (lenp != NULL)
		*lenp = n;
	return 0;
}
