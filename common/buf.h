/*
 * buf.h: a bounded byte buffer for all wire parsing and building.
 *
 * A buffer holds the bytes [off, len) of data; writes append at len,
 * reads consume from off.  It never grows beyond max (WICK_ERR_LIMIT).
 * Fields are private: use the functions.  A buffer marked secret is wiped
 * whenever its memory is released or reused: the bytes it may hold, that
 * is every byte put or reserved since the last wipe, not all it has
 * allocated (a 16 KiB read buffer that took a 100-byte record costs a
 * 100-byte wipe).
 */
#ifndef WICK_BUF_H
#define WICK_BUF_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

#define BUF_MAX_SIZE	(256u * 1024 * 1024)	/* hard ceiling for any buf */

struct buf {
	uint8_t	*data;
	size_t	 off;
	size_t	 len;
	size_t	 cap;
	size_t	 max;
	size_t	 dirty;		/* [0, dirty) may hold data; past it none */
	size_t	 resv_dirty;	/* dirty before the last buf_reserve() */
	int	 secret;
};

/* Embedded use: init with a maximum size (0 means BUF_MAX_SIZE). */
void	 buf_init(struct buf *, size_t max);
void	 buf_cleanup(struct buf *);
/* Heap use; buf_free(NULL) does nothing. */
struct buf *buf_new(size_t max);
void	 buf_free(struct buf *);

void	 buf_set_secret(struct buf *);
/* Drop all content (wipes if secret), keep the memory. */
void	 buf_reset(struct buf *);

/* Readable bytes and their count; the pointer is valid until next write. */
const uint8_t *buf_ptr(const struct buf *);
size_t	 buf_len(const struct buf *);
/*
 * Space for n more bytes; returns a pointer to write into, or NULL.
 * All n count as written (wiped if secret) until buf_commit() says how
 * many were.
 */
int	 buf_reserve(struct buf *, size_t n, uint8_t **out) WICK_WUR;
/* Commit n bytes written after buf_reserve; none past them were. */
void	 buf_commit(struct buf *, size_t n);

int	 buf_put(struct buf *, const void *, size_t) WICK_WUR;
int	 buf_put_u8(struct buf *, uint8_t) WICK_WUR;
int	 buf_put_u32be(struct buf *, uint32_t) WICK_WUR;
int	 buf_put_cstr(struct buf *, const char *) WICK_WUR;
int	 buf_putf(struct buf *, const char *fmt, ...)
	    __attribute__((format(printf, 2, 3))) WICK_WUR;

/* Consume n bytes (WICK_ERR_INVALID if fewer are there). */
int	 buf_consume(struct buf *, size_t n) WICK_WUR;
int	 buf_get(struct buf *, void *, size_t) WICK_WUR;
int	 buf_get_u8(struct buf *, uint8_t *) WICK_WUR;
int	 buf_get_u32be(struct buf *, uint32_t *) WICK_WUR;
/* Peek without consuming. */
int	 buf_peek_u32be(const struct buf *, size_t at, uint32_t *) WICK_WUR;

/*
 * Hand the readable bytes to the caller as a NUL-terminated heap string
 * (the buffer is left empty).  *lenp gets the length without the NUL.
 */
int	 buf_steal(struct buf *, uint8_t **out, size_t *lenp) WICK_WUR;

#endif /* WICK_BUF_H */
