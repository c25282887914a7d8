/*
 * Unit tests of the back-off rule (lib/clock) and agentd's jittered
 * reconnect delay on top of it (agent/ag_tunnel).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include "agent/ag_tunnel.h"
#include "lib/clock.h"

static void
test_doubling_and_cap(void **state)
{
	assert_int_equal(clock_backoff_ms(100, 30000, 0), 100);
	assert_int_equal(clock_backoff_ms(100, 30000, 1), 200);
	assert_int_equal(clock_backoff_ms(100, 30000, 4), 1600);
	assert_int_equal(clock_backoff_ms(100, 30000, 9), 30000);
	/* No overflow however many attempts. */
	assert_int_equal(clock_backoff_ms(100, 30000, 4000000000u), 30000);
	assert_int_equal(clock_backoff_ms(500, 500, 3), 500);
}

static void
test_jitter_bounds(void **state)
{
	int64_t lo = INT64_MAX, hi = 0;

	for (uint32_t rnd = 0; rnd < 100000; rnd += 7) {
		int64_t d = ag_backoff_ms(200, 2000, 2, rnd * 2654435761u);
		assert_true(d >= 400 && d <= 800);
		lo = d < lo ? d : lo;
		hi = d > hi ? d : hi;
	}
	/* The jitter really spreads over the range. */
	assert_true(lo < 450 && hi > 750);
	assert_true(ag_backoff_ms(200, 2000, 30, 12345) <= 2000);
	assert_true(ag_backoff_ms(200, 2000, 30, 12345) >= 1000);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_doubling_and_cap),
		cmocka_unit_test(test_jitter_bounds),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
