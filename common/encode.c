/*
 * encode.c: hex, base64url, SHA-256 hex and UUIDv4.
 *
 * Nothing here logs or exits: libwick links it too.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "encode.h"

void
hex_encode(const uint8_t *p, size_t n, char *out)
{
	static const char	digits[] = "0123456789abcdef";
	size_t			i;

	for (i = 0; i < n; i++) {
		out[2 * i] = digits[p[i] >> 4];
		out[2 * i + 1] = digits[p[i] & 0xf];
	}
	out[2 * n] = '\0';
}

static const char b64url[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

int
b64url_encode(const uint8_t *p, size_t n, char **out)
{
	char		*s, *o;
	size_t		 i;
	uint32_t	 v;

	*out = NULL;
	if (n > SIZE_MAX / 2)
		return WICK_ERR_LIMIT;
	if ((s = malloc(n / 3 * 4 + 5)) == NULL)
		return WICK_ERR_ALLOC;
	o = s;
	for (i = 0; i + 3 <= n; i += 3) {
		v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
		*o++ = b64url[v >> 18 & 63];
		*o++ = b64url[v >> 12 & 63];
		*o++ = b64url[v >> 6 & 63];
		*o++ = b64url[v & 63];
	}
	if (n - i >= 1) {
		v = (uint32_t)p[i] << 16;
		if (n - i == 2)
			v |= (uint32_t)p[i + 1] << 8;
		*o++ = b64url[v >> 18 & 63];
		*o++ = b64url[v >> 12 & 63];
		if (n - i == 2)
			*o++ = b64url[v >> 6 & 63];
	}
	*o = '\0';
	*out = s;
	return 0;
}

int
b64url_digit(int c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '-')
		return 62;
	if (c == '_')
		return 63;
	return -1;
}

int
b64url_ok(const char *s, size_t n)
{
	size_t i;

	if (n % 4 == 1)
		return 0;
	for (i = 0; i < n; i++)
		if (b64url_digit((unsigned char)s[i]) < 0)
			return 0;
	return 1;
}

int
b64url_decode(const char *s, size_t n, int strict, uint8_t **out,
    size_t *len)
{
	uint8_t		*p;
	size_t		 i, o = 0;
	uint32_t	 v = 0;
	int		 c, bits = 0;

	*out = NULL;
	*len = 0;
	if (n % 4 == 1)
		return WICK_ERR_INVALID;
	if ((p = malloc(n / 4 * 3 + 3)) == NULL)
		return WICK_ERR_ALLOC;
	for (i = 0; i < n; i++) {
		if ((c = b64url_digit((unsigned char)s[i])) < 0) {
			free(p);
			return WICK_ERR_INVALID;
		}
		v = v << 6 | (uint32_t)c;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			p[o++] = (uint8_t)(v >> bits);
			v &= (1u << bits) - 1;
		}
	}
	if (strict && v != 0) {
		free(p);
		return WICK_ERR_INVALID;
	}
	*out = p;
	*len = o;
	return 0;
}

int
hex_digit(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int
hex_decode(const char *s, size_t n, uint8_t *out)
{
	size_t	i;
	int	hi, lo;

	for (i = 0; i < n; i++) {
		/* Upper case is refused: one value, one spelling. */
		if ((hi = hex_digit((unsigned char)s[2 * i])) < 0 ||
		    (lo = hex_digit((unsigned char)s[2 * i + 1])) < 0 ||
		    (s[2 * i] >= 'A' && s[2 * i] <= 'F') ||
		    (s[2 * i + 1] >= 'A' && s[2 * i + 1] <= 'F'))
			return WICK_ERR_INVALID;
		out[i] = (uint8_t)(hi << 4 | lo);
	}
	return 0;
}

int
sha256_hex(const void *p, size_t n, char out[SHA256_HEX_LEN + 1])
{
	uint8_t		md[32];
	unsigned	len = 0;

	out[0] = '\0';
	if (EVP_Digest(p, n, md, &len, EVP_sha256(), NULL) != 1 || len != 32)
		return WICK_ERR_CRYPTO;
	hex_encode(md, sizeof(md), out);
	OPENSSL_cleanse(md, sizeof(md));
	return 0;
}

int
uuid4(char out[UUID_STR_LEN + 1])
{
	uint8_t	b[16];
	char	h[33];

	if (RAND_bytes(b, sizeof(b)) != 1)
		return WICK_ERR_CRYPTO;
	b[6] = (b[6] & 0x0f) | 0x40;
	b[8] = (b[8] & 0x3f) | 0x80;
	hex_encode(b, sizeof(b), h);
	memcpy(out, h, 8);
	out[8] = '-';
	memcpy(out + 9, h + 8, 4);
	out[13] = '-';
	memcpy(out + 14, h + 12, 4);
	out[18] = '-';
	memcpy(out + 19, h + 16, 4);
	out[23] = '-';
	memcpy(out + 24, h + 20, 12);
	out[36] = '\0';
	return 0;
}
