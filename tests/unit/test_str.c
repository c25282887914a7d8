/*
 * tests/unit/test_str: lib/str against snprintf, the reference it
 * replaces on the request paths: hex and decimal of random and edge
 * values, bounded copies of every length around the buffer's (cut as
 * snprintf cuts), and appends that must refuse what does not fit.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "lib/str.h"

static uint64_t seed = 88172645463325252ULL;

static uint64_t
rnd(void)
{
	seed ^= seed << 13;
	seed ^= seed >> 7;
	seed ^= seed << 17;
	return seed;
}

static void
check_num(uint64_t v)
{
	char a[32], b[32];
	size_t n;

	n = str_hex(a, v);
	a[n] = '\0';
	snprintf(b, sizeof(b), "%" PRIx64, v);
	assert_string_equal(a, b);
	str_hex16(a, v);
	a[16] = '\0';
	snprintf(b, sizeof(b), "%016" PRIx64, v);
	assert_string_equal(a, b);
	n = str_dec(a, v);
	a[n] = '\0';
	snprintf(b, sizeof(b), "%" PRIu64, v);
	assert_string_equal(a, b);
}

static void
t_numbers(void **state)
{
	static const uint64_t edge[] = { 0, 1, 9, 10, 15, 16, 255, 256, 999,
	    1000, UINT32_MAX, (uint64_t)UINT32_MAX + 1, UINT64_MAX - 1,
	    UINT64_MAX, 10000000000000000000ULL };

	(void)state;
	for (size_t i = 0; i < sizeof(edge) / sizeof(edge[0]); i++)
		check_num(edge[i]);
	for (int i = 0; i < 100000; i++)
		check_num(rnd() >> (rnd() % 64));
}

static void
t_copy(void **state)
{
	char src[64], a[16], b[16];

	(void)state;
	for (size_t len = 0; len < 40; len++) {
		memset(src, 'x', len);
		src[len] = '\0';
		for (size_t size = 1; size <= sizeof(a); size++) {
			memset(a, '#', sizeof(a));
			memset(b, '#', sizeof(b));
			size_t n = str_copy(a, size, src);
			size_t k = len < size - 1 ? len : size - 1;
			memcpy(b, src, k);	/* what snprintf(b, size, "%s") writes */
			b[k] = '\0';
			assert_memory_equal(a, b, sizeof(a));
			assert_int_equal(n, strlen(b));
		}
	}
	assert_int_equal(str_copy(a, 0, "abc"), 0);
}

static void
t_put(void **state)
{
	char buf[8], *p = buf, *end = buf + sizeof(buf);

	(void)state;
	p = str_puts(p, end, "abc");
	assert_ptr_equal(p, buf + 3);
	p = str_put(p, end, "defgh", 5);
	assert_ptr_equal(p, end);
	assert_memory_equal(buf, "abcdefgh", 8);
	assert_null(str_put(p, end, "i", 1));	/* full */
	assert_ptr_equal(str_put(p, end, "", 0), end);
	assert_null(str_puts(NULL, end, "a"));	/* a failed append carries on */
	assert_null(str_puts(buf + 6, end, "xyz"));
	assert_memory_equal(buf, "abcdefgh", 8);	/* nothing written */
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(t_numbers),
		cmocka_unit_test(t_copy),
		cmocka_unit_test(t_put),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
