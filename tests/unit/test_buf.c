/*
 * test_buf.c: bounded buffer.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <string.h>
#include <stdlib.h>
#include <cmocka.h>

#include "buf.h"
#include "encode.h"

static void
test_put_get_roundtrip(void **state)
{
	struct buf	b;
	uint32_t	v;
	uint8_t		u, raw[3];

	buf_init(&b, 64);
	assert_int_equal(buf_put_u32be(&b, 0x01020304), 0);
	assert_int_equal(buf_put_u8(&b, 0xfe), 0);
	assert_int_equal(buf_put(&b, "abc", 3), 0);
	assert_int_equal(buf_len(&b), 8);
	assert_memory_equal(buf_ptr(&b), "\x01\x02\x03\x04\xfe" "abc", 8);
	assert_int_equal(buf_get_u32be(&b, &v), 0);
	assert_int_equal(v, 0x01020304);
	assert_int_equal(buf_get_u8(&b, &u), 0);
	assert_int_equal(u, 0xfe);
	assert_int_equal(buf_get(&b, raw, 3), 0);
	assert_memory_equal(raw, "abc", 3);
	assert_int_equal(buf_len(&b), 0);
	assert_int_equal(buf_get_u8(&b, &u), WICK_ERR_INVALID);
	buf_cleanup(&b);
}

static void
test_limit_is_enforced(void **state)
{
	struct buf	b;
	uint8_t		big[100];

	memset(big, 'x', sizeof(big));
	buf_init(&b, 64);
	assert_int_equal(buf_put(&b, big, 64), 0);
	assert_int_equal(buf_put_u8(&b, 1), WICK_ERR_LIMIT);
	assert_int_equal(buf_len(&b), 64);
	/* Consuming makes room again. */
	assert_int_equal(buf_consume(&b, 10), 0);
	assert_int_equal(buf_put(&b, big, 10), 0);
	assert_int_equal(buf_len(&b), 64);
	assert_int_equal(buf_put(&b, big, 1), WICK_ERR_LIMIT);
	assert_int_equal(buf_consume(&b, 65), WICK_ERR_INVALID);
	buf_cleanup(&b);
}

static void
test_putf_and_steal(void **state)
{
	struct buf	 b;
	uint8_t		*s = NULL;
	size_t		 n;

	buf_init(&b, 0);
	buf_set_secret(&b);
	assert_int_equal(buf_putf(&b, "%s=%d", "k", 42), 0);
	assert_int_equal(buf_steal(&b, &s, &n), 0);
	assert_int_equal(n, 4);
	assert_string_equal((char *)s, "k=42");
	assert_int_equal(buf_len(&b), 0);
	free(s);
	buf_cleanup(&b);
}

static void
test_grows_across_many_writes(void **state)
{
	struct buf	 b;
	int		 i;
	uint32_t	 v;

	buf_init(&b, 1 << 20);
	for (i = 0; i < 10000; i++)
		assert_int_equal(buf_put_u32be(&b, (uint32_t)i), 0);
	for (i = 0; i < 10000; i++) {
		assert_int_equal(buf_get_u32be(&b, &v), 0);
		assert_int_equal(v, (uint32_t)i);
	}
	buf_cleanup(&b);
}

/*
 * A secret buffer wipes every byte that may hold data, and only those:
 * a reservation counts as written until buf_commit() says how much was.
 */
static void
test_secret_wipes_what_was_used(void **state)
{
	struct buf	 b;
	uint8_t		*p;
	size_t		 i;

	buf_init(&b, 0);
	buf_set_secret(&b);
	/* Reserved and written, never committed (a failed read): all of
	 * it is wiped. */
	assert_int_equal(buf_reserve(&b, 4096, &p), 0);
	memset(p, 'S', 4096);
	buf_reset(&b);
	for (i = 0; i < 4096; i++)
		assert_int_equal(b.data[i], 0);
	/* 10 bytes of a large reservation used: those are wiped, memory
	 * never written is left alone (the marker stands in for it). */
	assert_int_equal(buf_reserve(&b, 4096, &p), 0);
	memcpy(p, "0123456789", 10);
	buf_commit(&b, 10);
	b.data[100] = 0xaa;
	buf_reset(&b);
	for (i = 0; i < 10; i++)
		assert_int_equal(b.data[i], 0);
	assert_int_equal(b.data[100], 0xaa);
	/* An empty commit gives the whole reservation back. */
	assert_int_equal(buf_put(&b, "key", 3), 0);
	assert_int_equal(buf_reserve(&b, 4000, &p), 0);
	buf_commit(&b, 0);
	buf_reset(&b);
	for (i = 0; i < 3; i++)
		assert_int_equal(b.data[i], 0);
	assert_int_equal(b.data[100], 0xaa);
	/* Growth copies what is there; the put bytes go on being wiped. */
	for (i = 0; i < 500; i++)
		assert_int_equal(buf_put(&b, "secret-bytes", 12), 0);
	assert_int_equal(buf_len(&b), 6000);
	buf_reset(&b);
	for (i = 0; i < 6000; i++)
		assert_int_equal(b.data[i], 0);
	buf_cleanup(&b);
}

/* hex_encode() and hex_decode() are inverses; only the lower-case
 * spelling decodes, so one value has one text form. */
static void
test_hex_roundtrip_and_spelling(void **state)
{
	uint8_t	in[256], out[256];
	char	h[513];
	size_t	i;

	(void)state;
	for (i = 0; i < sizeof(in); i++)
		in[i] = (uint8_t)i;
	hex_encode(in, sizeof(in), h);
	assert_int_equal(hex_decode(h, sizeof(in), out), 0);
	assert_memory_equal(in, out, sizeof(in));
	assert_int_equal(hex_decode("0aFf", 2, out), WICK_ERR_INVALID);
	assert_int_equal(hex_decode("0g", 1, out), WICK_ERR_INVALID);
	assert_int_equal(hex_decode("0a\0b", 2, out), WICK_ERR_INVALID);
	assert_int_equal(hex_digit('F'), 15);
	assert_int_equal(hex_digit('a'), 10);
	assert_int_equal(hex_digit('/'), -1);
	assert_int_equal(hex_digit(0xff), -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_put_get_roundtrip),
		cmocka_unit_test(test_hex_roundtrip_and_spelling),
		cmocka_unit_test(test_limit_is_enforced),
		cmocka_unit_test(test_putf_and_steal),
		cmocka_unit_test(test_grows_across_many_writes),
		cmocka_unit_test(test_secret_wipes_what_was_used),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
