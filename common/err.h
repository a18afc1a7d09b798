/*
 * err.h: the one error space of wick.
 *
 * Every function that can fail returns 0 on success or a negative
 * WICK_ERR_* code.  wick_strerror() gives the text.  Library errors are
 * translated once, at the boundary (err_from_uv(), err_from_nghttp2()).
 */
#ifndef WICK_ERR_H
#define WICK_ERR_H

#define WICK_WUR __attribute__((warn_unused_result))

enum wick_err {
	WICK_OK = 0,
	WICK_ERR_INTERNAL = -1,		/* broken invariant or unexpected */
	WICK_ERR_ALLOC = -2,		/* out of memory */
	WICK_ERR_INVALID = -3,		/* malformed input */
	WICK_ERR_LIMIT = -4,		/* a named limit was exceeded */
	WICK_ERR_NOT_FOUND = -5,
	WICK_ERR_EXISTS = -6,
	WICK_ERR_PERM = -7,		/* permission denied */
	WICK_ERR_IO = -8,		/* system call failed, see errno text in log */
	WICK_ERR_CRYPTO = -9,		/* OpenSSL failure */
	WICK_ERR_UNAVAILABLE = -10,	/* peer or service not reachable */
	WICK_ERR_TIMEOUT = -11,
	WICK_ERR_CANCELLED = -12,
	WICK_ERR_UNSUPPORTED = -13,
	WICK_ERR_AGAIN = -14,		/* would block, try later */
	WICK_ERR_EOF = -15,		/* peer closed */
	WICK_ERR_PROTOCOL = -16,	/* peer violated the protocol */
	WICK_ERR_EXPIRED = -17,
	WICK_ERR_SIGNATURE = -18,	/* signature does not verify */
	WICK_ERR_CONFIG = -19,		/* configuration error */
	WICK_ERR_STATE = -20,		/* operation not valid in this state */
};

#define WICK_ERR_MIN	WICK_ERR_STATE

/* Text for a WICK_ERR_* code; never NULL. */
const char	*wick_strerror(int);

/* Translate a libuv error code (negative errno) into WICK_ERR_*. */
int		 err_from_uv(int);

/* Translate a negative errno value into WICK_ERR_*. */
int		 err_from_errno(int);

#include <stddef.h>

/*
 * Put a sentence into why (whylen bytes; why may be NULL) and return r:
 * for functions that say why they failed, "return err_why(why, len,
 * WICK_ERR_INVALID, "...", ...);".
 */
int		 err_why(char *why, size_t whylen, int r, const char *fmt, ...)
		    __attribute__((format(printf, 4, 5)));

#endif /* WICK_ERR_H */
