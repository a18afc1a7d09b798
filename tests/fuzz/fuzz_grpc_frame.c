/*
 * fuzz_grpc_frame.c: the gRPC message framing decoder fed in chunks whose
 * sizes come from the input, and the text encodings of gRPC headers.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "rpc.h"
#include "rpc_frame.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static int
count_cb(const uint8_t *p, size_t n, void *arg)
{
	size_t *total = arg;

	*total += n;
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	struct rpc_frame_dec	 d;
	size_t			 off = 0, chunk, total = 0;
	char			*s = NULL, *out = NULL;
	uint8_t			*bin = NULL;
	size_t			 binlen;
	int64_t			 ms;

	if (len < 2)
		return 0;
	chunk = (size_t)data[0] + 1;
	rpc_frame_init(&d, (size_t)data[1] * 97);
	data += 2;
	len -= 2;
	while (off < len) {
		size_t n = len - off < chunk ? len - off : chunk;

		if (rpc_frame_feed(&d, data + off, n, count_cb, &total) != 0)
			break;
		off += n;
	}
	rpc_frame_cleanup(&d);

	/* The same bytes as header text. */
	if ((s = malloc(len + 1)) == NULL)
		return 0;
	memcpy(s, data, len);
	s[len] = '\0';
	if (rpc_parse_timeout(s, &ms) == 0 && ms < 0)
		abort();
	if (rpc_percent_encode(s, &out) == 0) {
		char *back = NULL;

		if (rpc_percent_decode(out, &back) == 0 && strcmp(back, s) != 0)
			abort();	/* encode then decode must round-trip */
		free(back);
		free(out);
	}
	if (rpc_base64_decode(s, strlen(s), &bin, &binlen) == 0)
		free(bin);
	free(s);
	return 0;
}
