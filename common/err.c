/*
 * err.c: text for wick error codes and translation of library codes.
 */
#include <stdarg.h>
#include <stdio.h>
#include <errno.h>
#include <stddef.h>

#include <uv.h>

#include "err.h"

static const char *const err_text[] = {
	[0] = "success",
	[-WICK_ERR_INTERNAL] = "internal error",
	[-WICK_ERR_ALLOC] = "out of memory",
	[-WICK_ERR_INVALID] = "invalid input",
	[-WICK_ERR_LIMIT] = "limit exceeded",
	[-WICK_ERR_NOT_FOUND] = "not found",
	[-WICK_ERR_EXISTS] = "already exists",
	[-WICK_ERR_PERM] = "permission denied",
	[-WICK_ERR_IO] = "input/output error",
	[-WICK_ERR_CRYPTO] = "cryptographic operation failed",
	[-WICK_ERR_UNAVAILABLE] = "unavailable",
	[-WICK_ERR_TIMEOUT] = "timed out",
	[-WICK_ERR_CANCELLED] = "cancelled",
	[-WICK_ERR_UNSUPPORTED] = "not supported",
	[-WICK_ERR_AGAIN] = "try again",
	[-WICK_ERR_EOF] = "end of stream",
	[-WICK_ERR_PROTOCOL] = "protocol error",
	[-WICK_ERR_EXPIRED] = "expired",
	[-WICK_ERR_SIGNATURE] = "bad signature",
	[-WICK_ERR_CONFIG] = "configuration error",
	[-WICK_ERR_STATE] = "invalid state",
};

const char *
wick_strerror(int r)
{
	if (r > 0 || r < WICK_ERR_MIN || err_text[-r] == NULL)
		return "unknown error";
	return err_text[-r];
}

int
err_from_errno(int e)
{
	if (e > 0)
		e = -e;
	switch (e) {
	case 0:
		return WICK_OK;
	case -ENOMEM:
		return WICK_ERR_ALLOC;
	case -EINVAL:
		return WICK_ERR_INVALID;
	case -ENOENT:
		return WICK_ERR_NOT_FOUND;
	case -EEXIST:
		return WICK_ERR_EXISTS;
	case -EACCES:
	case -EPERM:
		return WICK_ERR_PERM;
	case -EAGAIN:
		return WICK_ERR_AGAIN;
	case -ETIMEDOUT:
		return WICK_ERR_TIMEOUT;
	case -ECANCELED:
		return WICK_ERR_CANCELLED;
	case -ECONNREFUSED:
	case -ECONNRESET:
	case -EPIPE:
	case -ENOTCONN:
		return WICK_ERR_UNAVAILABLE;
	case -ENOSYS:
	case -EOPNOTSUPP:
		return WICK_ERR_UNSUPPORTED;
	case -EMFILE:
	case -ENFILE:
		return WICK_ERR_LIMIT;
	default:
		return WICK_ERR_IO;
	}
}

int
err_from_uv(int uverr)
{
	if (uverr == UV_EOF)
		return WICK_ERR_EOF;
	if (uverr == UV_ECANCELED)
		return WICK_ERR_CANCELLED;
	/* On Unix libuv error codes are negated errno values. */
	return err_from_errno(uverr);
}

int
err_why(char *why, size_t whylen, int r, const char *fmt, ...)
{
	va_list ap;

	if (why != NULL && whylen > 0) {
		va_start(ap, fmt);
		(void)vsnprintf(why, whylen, fmt, ap);
		va_end(ap);
	}
	return r;
}
