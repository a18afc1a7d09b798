/*
 * rpc_util.c: gRPC wire encodings: grpc-timeout, percent-encoded
 * grpc-message, base64 for -bin metadata, and status mapping.
 */
#include <ctype.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "encode.h"
#include "rpc.h"
#include "rpc_int.h"

#define RPC_TIMEOUT_MAX_DIGITS	8

static const char *const status_names[] = {
	"OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED",
	"NOT_FOUND", "ALREADY_EXISTS", "PERMISSION_DENIED",
	"RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "ABORTED", "OUT_OF_RANGE",
	"UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS",
	"UNAUTHENTICATED",
};

const char *
rpc_status_name(int s)
{
	if (s < 0 || s > RPC_UNAUTHENTICATED)
		return "UNKNOWN";
	return status_names[s];
}

enum rpc_status
rpc_status_from_err(int r)
{
	switch (r) {
	case 0:
		return RPC_OK;
	case WICK_ERR_INVALID:
	case WICK_ERR_CONFIG:
		return RPC_INVALID_ARGUMENT;
	case WICK_ERR_LIMIT:
	case WICK_ERR_ALLOC:
		return RPC_RESOURCE_EXHAUSTED;
	case WICK_ERR_NOT_FOUND:
		return RPC_NOT_FOUND;
	case WICK_ERR_EXISTS:
		return RPC_ALREADY_EXISTS;
	case WICK_ERR_PERM:
	case WICK_ERR_SIGNATURE:
		return RPC_PERMISSION_DENIED;
	case WICK_ERR_UNAVAILABLE:
	case WICK_ERR_AGAIN:
	case WICK_ERR_IO:
		return RPC_UNAVAILABLE;
	case WICK_ERR_TIMEOUT:
		return RPC_DEADLINE_EXCEEDED;
	case WICK_ERR_CANCELLED:
		return RPC_CANCELLED;
	case WICK_ERR_UNSUPPORTED:
		return RPC_UNIMPLEMENTED;
	case WICK_ERR_EXPIRED:
	case WICK_ERR_STATE:
		return RPC_FAILED_PRECONDITION;
	default:
		return RPC_INTERNAL;
	}
}

int
rpc_parse_timeout(const char *s, int64_t *ms_out)
{
	size_t		 n = 0;
	int64_t		 v = 0;
	char		 unit;

	*ms_out = 0;
	while (isdigit((unsigned char)s[n])) {
		if (n == RPC_TIMEOUT_MAX_DIGITS)
			return WICK_ERR_INVALID;
		v = v * 10 + (s[n] - '0');
		n++;
	}
	if (n == 0 || s[n] == '\0' || s[n + 1] != '\0')
		return WICK_ERR_INVALID;
	unit = s[n];
	switch (unit) {
	case 'H':
		*ms_out = v * 3600 * 1000;
		break;
	case 'M':
		*ms_out = v * 60 * 1000;
		break;
	case 'S':
		*ms_out = v * 1000;
		break;
	case 'm':
		*ms_out = v;
		break;
	case 'u':
		*ms_out = (v + 999) / 1000;
		break;
	case 'n':
		*ms_out = (v + 999999) / 1000000;
		break;
	default:
		return WICK_ERR_INVALID;
	}
	return 0;
}

int
rpc_percent_encode(const char *s, char **out)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t		 n = strlen(s), i, o = 0;
	char		*p;
	unsigned char	 c;

	*out = NULL;
	if (n > SIZE_MAX / 3 - 1)
		return WICK_ERR_LIMIT;
	if ((p = malloc(n * 3 + 1)) == NULL)
		return WICK_ERR_ALLOC;
	for (i = 0; i < n; i++) {
		c = (unsigned char)s[i];
		if (c < 0x20 || c > 0x7e || c == '%') {
			p[o++] = '%';
			p[o++] = hex[c >> 4];
			p[o++] = hex[c & 0xf];
		} else
			p[o++] = (char)c;
	}
	p[o] = '\0';
	*out = p;
	return 0;
}

int
rpc_percent_decode(const char *s, char **out)
{
	size_t	 n = strlen(s), i, o = 0;
	char	*p;
	int	 hi, lo;

	*out = NULL;
	if ((p = malloc(n + 1)) == NULL)
		return WICK_ERR_ALLOC;
	for (i = 0; i < n; i++) {
		/* A malformed escape is kept as it is (gRPC's rule). */
		if (s[i] == '%' && i + 2 < n &&
		    (hi = hex_digit((unsigned char)s[i + 1])) >= 0 &&
		    (lo = hex_digit((unsigned char)s[i + 2])) >= 0) {
			p[o++] = (char)(hi << 4 | lo);
			i += 2;
		} else
			p[o++] = s[i];
	}
	p[o] = '\0';
	*out = p;
	return 0;
}

static const char b64chars[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

int
rpc_base64_encode(const uint8_t *in, size_t n, char **out)
{
	size_t	 i, o = 0;
	char	*p;
	uint32_t v;

	*out = NULL;
	if (n > (SIZE_MAX / 4) * 3 - 3)
		return WICK_ERR_LIMIT;
	if ((p = malloc((n + 2) / 3 * 4 + 1)) == NULL)
		return WICK_ERR_ALLOC;
	for (i = 0; i + 2 < n; i += 3) {
		v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
		p[o++] = b64chars[v >> 18 & 63];
		p[o++] = b64chars[v >> 12 & 63];
		p[o++] = b64chars[v >> 6 & 63];
		p[o++] = b64chars[v & 63];
	}
	if (n - i == 1) {
		v = (uint32_t)in[i] << 16;
		p[o++] = b64chars[v >> 18 & 63];
		p[o++] = b64chars[v >> 12 & 63];
		p[o++] = '=';
		p[o++] = '=';
	} else if (n - i == 2) {
		v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
		p[o++] = b64chars[v >> 18 & 63];
		p[o++] = b64chars[v >> 12 & 63];
		p[o++] = b64chars[v >> 6 & 63];
		p[o++] = '=';
	}
	p[o] = '\0';
	*out = p;
	return 0;
}

static int
b64val(int c)
{
	const char *q;

	if (c == '\0' || (q = strchr(b64chars, c)) == NULL)
		return -1;
	return (int)(q - b64chars);
}

/* Padded or unpadded standard base64, as gRPC accepts for -bin headers. */
int
rpc_base64_decode(const char *s, size_t n, uint8_t **out, size_t *lenp)
{
	uint8_t	*p;
	size_t	 i, o = 0, bits = 0;
	uint32_t acc = 0;
	int	 v;

	*out = NULL;
	*lenp = 0;
	while (n > 0 && s[n - 1] == '=')
		n--;
	if (n % 4 == 1)
		return WICK_ERR_INVALID;
	if ((p = malloc(n / 4 * 3 + 3)) == NULL)
		return WICK_ERR_ALLOC;
	for (i = 0; i < n; i++) {
		if ((v = b64val((unsigned char)s[i])) < 0) {
			free(p);
			return WICK_ERR_INVALID;
		}
		acc = acc << 6 | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			p[o++] = (uint8_t)(acc >> bits);
		}
	}
	*out = p;
	*lenp = o;
	return 0;
}

int
rpc_md_set(struct rpc_md *m, const char *name, size_t namelen,
    const uint8_t *value, size_t len, enum rpc_md_dir dir)
{
	char	*nm;
	uint8_t	*v = NULL;
	size_t	 vlen = len;
	int	 bin = namelen > 4 && memcmp(name + namelen - 4, "-bin", 4) == 0;

	if (bin && dir == RPC_MD_TO_WIRE) {
		if (rpc_base64_encode(value, len, (char **)&v) != 0)
			return WICK_ERR_ALLOC;
		vlen = strlen((char *)v);
	} else if (bin) {
		if (rpc_base64_decode((const char *)value, len, &v, &vlen) != 0)
			return WICK_ERR_INVALID;
	} else {
		if ((v = malloc(len + 1)) == NULL)
			return WICK_ERR_ALLOC;
		memcpy(v, value, len);
		v[len] = '\0';
	}
	if ((nm = strndup(name, namelen)) == NULL) {
		free(v);
		return WICK_ERR_ALLOC;
	}
	m->name = nm;
	m->value = v;
	m->len = vlen;
	return 0;
}

void
rpc_md_free(struct rpc_md *md, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		free((void *)md[i].name);
		free((void *)md[i].value);
	}
}

void
rpc_handle_free_cb(uv_handle_t *h)
{
	free(h);
}
