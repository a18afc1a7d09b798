/*
 * test_rpc_frame.c: gRPC message framing decoder and the wire encodings
 * of rpc_util.c (grpc-timeout, grpc-message, -bin metadata).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "rpc.h"
#include "rpc_frame.h"

struct seen {
	int	 count;
	size_t	 lens[16];
	uint8_t	 last[64];
};

static int
collect(const uint8_t *p, size_t n, void *arg)
{
	struct seen *s = arg;

	if (s->count < 16)
		s->lens[s->count] = n;
	s->count++;
	if (n <= sizeof(s->last))
		memcpy(s->last, p, n);
	return 0;
}

static void
test_split_at_every_byte(void **state)
{
	const uint8_t	 wire[] = { 0, 0, 0, 0, 3, 'a', 'b', 'c',
			    0, 0, 0, 0, 0,	/* an empty message */
			    0, 0, 0, 0, 1, 'z' };
	struct rpc_frame_dec d;
	struct seen	 s;
	size_t		 i;

	for (i = 1; i <= sizeof(wire); i++) {
		size_t off;

		memset(&s, 0, sizeof(s));
		rpc_frame_init(&d, 100);
		for (off = 0; off < sizeof(wire); off += i) {
			size_t n = sizeof(wire) - off < i ? sizeof(wire) - off : i;
			assert_int_equal(rpc_frame_feed(&d, wire + off, n,
			    collect, &s), 0);
		}
		assert_int_equal(s.count, 3);
		assert_int_equal(s.lens[0], 3);
		assert_int_equal(s.lens[1], 0);
		assert_int_equal(s.lens[2], 1);
		assert_int_equal(s.last[0], 'z');
		assert_false(rpc_frame_partial(&d));
		rpc_frame_cleanup(&d);
	}
}

static void
test_4gib_prefix_is_refused_before_allocating(void **state)
{
	const uint8_t	 wire[] = { 0, 0xff, 0xff, 0xff, 0xff, 'x' };
	struct rpc_frame_dec d;
	struct seen	 s;

	memset(&s, 0, sizeof(s));
	rpc_frame_init(&d, 4u * 1024 * 1024);
	assert_int_equal(rpc_frame_feed(&d, wire, sizeof(wire), collect, &s),
	    WICK_ERR_LIMIT);
	assert_int_equal(d.declared, 0xffffffffu);
	assert_null(d.msg);
	assert_int_equal(s.count, 0);
	rpc_frame_cleanup(&d);
}

static void
test_limit_boundary_and_compressed_flag(void **state)
{
	uint8_t		 wire[5 + 10] = { 0, 0, 0, 0, 10 };
	struct rpc_frame_dec d;
	struct seen	 s;

	memset(&s, 0, sizeof(s));
	rpc_frame_init(&d, 10);
	assert_int_equal(rpc_frame_feed(&d, wire, sizeof(wire), collect, &s), 0);
	assert_int_equal(s.count, 1);
	rpc_frame_cleanup(&d);
	rpc_frame_init(&d, 9);
	assert_int_equal(rpc_frame_feed(&d, wire, sizeof(wire), collect, &s),
	    WICK_ERR_LIMIT);
	rpc_frame_cleanup(&d);
	wire[0] = 1;
	rpc_frame_init(&d, 10);
	assert_int_equal(rpc_frame_feed(&d, wire, sizeof(wire), collect, &s),
	    WICK_ERR_UNSUPPORTED);
	rpc_frame_cleanup(&d);
}

static void
test_truncated_is_partial(void **state)
{
	const uint8_t	 wire[] = { 0, 0, 0, 0, 4, 'a', 'b' };
	struct rpc_frame_dec d;
	struct seen	 s;

	memset(&s, 0, sizeof(s));
	rpc_frame_init(&d, 100);
	assert_int_equal(rpc_frame_feed(&d, wire, sizeof(wire), collect, &s), 0);
	assert_true(rpc_frame_partial(&d));
	assert_int_equal(s.count, 0);
	rpc_frame_cleanup(&d);
}

static void
test_timeout_units(void **state)
{
	int64_t ms;

	assert_int_equal(rpc_parse_timeout("1H", &ms), 0);
	assert_int_equal(ms, 3600000);
	assert_int_equal(rpc_parse_timeout("2M", &ms), 0);
	assert_int_equal(ms, 120000);
	assert_int_equal(rpc_parse_timeout("3S", &ms), 0);
	assert_int_equal(ms, 3000);
	assert_int_equal(rpc_parse_timeout("250m", &ms), 0);
	assert_int_equal(ms, 250);
	assert_int_equal(rpc_parse_timeout("1500u", &ms), 0);
	assert_int_equal(ms, 2);
	assert_int_equal(rpc_parse_timeout("99999999n", &ms), 0);
	assert_int_equal(ms, 100);
	assert_int_equal(rpc_parse_timeout("123456789S", &ms),
	    WICK_ERR_INVALID);
	assert_int_equal(rpc_parse_timeout("S", &ms), WICK_ERR_INVALID);
	assert_int_equal(rpc_parse_timeout("10", &ms), WICK_ERR_INVALID);
	assert_int_equal(rpc_parse_timeout("10x", &ms), WICK_ERR_INVALID);
	assert_int_equal(rpc_parse_timeout("10SS", &ms), WICK_ERR_INVALID);
	assert_int_equal(rpc_parse_timeout("-1S", &ms), WICK_ERR_INVALID);
}

static void
test_percent_encoding(void **state)
{
	char *enc = NULL, *dec = NULL;

	assert_int_equal(rpc_percent_encode("a b%\n\xc3\xa9~", &enc), 0);
	assert_string_equal(enc, "a b%25%0A%C3%A9~");
	assert_int_equal(rpc_percent_decode(enc, &dec), 0);
	assert_string_equal(dec, "a b%\n\xc3\xa9~");
	free(enc);
	free(dec);
	/* Malformed escapes are kept as they are. */
	assert_int_equal(rpc_percent_decode("100%zz%4", &dec), 0);
	assert_string_equal(dec, "100%zz%4");
	free(dec);
}

static void
test_base64(void **state)
{
	const uint8_t	 raw[] = { 0, 1, 0xfe, 0xff, 'x' };
	char		*enc = NULL;
	uint8_t		*dec = NULL;
	size_t		 n, i;

	for (i = 0; i <= sizeof(raw); i++) {
		assert_int_equal(rpc_base64_encode(raw, i, &enc), 0);
		assert_int_equal(rpc_base64_decode(enc, strlen(enc), &dec, &n),
		    0);
		assert_int_equal(n, i);
		assert_memory_equal(dec, raw, i);
		free(enc);
		free(dec);
	}
	/* Unpadded is accepted, as gRPC requires. */
	assert_int_equal(rpc_base64_decode("AAH+", 4, &dec, &n), 0);
	assert_int_equal(n, 3);
	free(dec);
	assert_int_equal(rpc_base64_decode("AAE", 3, &dec, &n), 0);
	assert_int_equal(n, 2);
	free(dec);
	assert_int_equal(rpc_base64_decode("A", 1, &dec, &n), WICK_ERR_INVALID);
	assert_int_equal(rpc_base64_decode("A*==", 4, &dec, &n),
	    WICK_ERR_INVALID);
}

static void
test_status_mapping(void **state)
{
	assert_int_equal(rpc_status_from_err(0), RPC_OK);
	assert_int_equal(rpc_status_from_err(WICK_ERR_INVALID),
	    RPC_INVALID_ARGUMENT);
	assert_int_equal(rpc_status_from_err(WICK_ERR_PERM),
	    RPC_PERMISSION_DENIED);
	assert_int_equal(rpc_status_from_err(WICK_ERR_LIMIT),
	    RPC_RESOURCE_EXHAUSTED);
	assert_int_equal(rpc_status_from_err(WICK_ERR_NOT_FOUND),
	    RPC_NOT_FOUND);
	assert_int_equal(rpc_status_from_err(WICK_ERR_INTERNAL), RPC_INTERNAL);
	assert_string_equal(rpc_status_name(RPC_UNAUTHENTICATED),
	    "UNAUTHENTICATED");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_split_at_every_byte),
		cmocka_unit_test(test_4gib_prefix_is_refused_before_allocating),
		cmocka_unit_test(test_limit_boundary_and_compressed_flag),
		cmocka_unit_test(test_truncated_is_partial),
		cmocka_unit_test(test_timeout_units),
		cmocka_unit_test(test_percent_encoding),
		cmocka_unit_test(test_base64),
		cmocka_unit_test(test_status_mapping),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
