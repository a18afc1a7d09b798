/*
 * encode.h: small encodings several modules need: lower-case hex, a
 * SHA-256 as hex, and random UUIDv4 strings (entry IDs, join tokens).
 */
#ifndef WICK_ENCODE_H
#define WICK_ENCODE_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

#define SHA256_HEX_LEN	64
#define UUID_STR_LEN	36

/* n bytes as 2n lower-case hex digits and a NUL into out. */
void	 hex_encode(const uint8_t *, size_t n, char *out);
/* The value of one hex digit, either case, or -1. */
int	 hex_digit(int c);
/* 2n lower-case hex digits (hex_encode()'s form, nothing else) into n
 * bytes of out: 0, or WICK_ERR_INVALID. */
int	 hex_decode(const char *, size_t n, uint8_t *out) WICK_WUR;
/*
 * Unpadded base64url (RFC 4648 section 5), as JOSE writes it.
 * b64url_encode(): *out a NUL-terminated heap string.  b64url_digit():
 * the value of one character, or -1.  b64url_ok(): only base64url
 * characters, and a length some byte string encodes to (not 4k + 1).
 * b64url_decode(): the bytes into *out (heap); WICK_ERR_INVALID for
 * anything else, and with strict also for non-zero unused low bits in
 * the last character (then each byte string has one text only).
 */
int	 b64url_encode(const uint8_t *, size_t n, char **out) WICK_WUR;
int	 b64url_digit(int c);
int	 b64url_ok(const char *, size_t n);
int	 b64url_decode(const char *, size_t n, int strict, uint8_t **out,
	    size_t *len) WICK_WUR;
/* SHA-256 of the bytes as hex; the digest is wiped. */
int	 sha256_hex(const void *, size_t, char out[SHA256_HEX_LEN + 1])
	    WICK_WUR;
/* A random (version 4) UUID, "xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx". */
int	 uuid4(char out[UUID_STR_LEN + 1]) WICK_WUR;

#endif /* WICK_ENCODE_H */
