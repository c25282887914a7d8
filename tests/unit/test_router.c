/*
 * Unit tests of router/rt on constructed scoreboards: model matching,
 * the 404/503 distinction, least-loaded first, round-robin fairness among
 * equals, and ejected channels skipped until their cool-down ends.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>
#include "router/rt.h"

static struct sb sb;

static void
chan(uint32_t slot, uint64_t agent, const char *models)
{
	struct sb_channel *c = sb_channel(&sb, slot);

	sb_write_begin(&c->seq);
	c->state = SB_CHAN_UP;
	c->agent_id = agent;
	snprintf(c->name, sizeof(c->name), "ch%u", slot);
	snprintf(c->models, sizeof(c->models), "%s", models);
	sb_write_end(&c->seq);
}

static int
setup(void **state)
{
	return sb_create(&sb, 8, 16);
}

static int
teardown(void **state)
{
	sb_destroy(&sb);
	return 0;
}

static void
test_results(void **state)
{
	struct rt_candidate c[RT_MAX_CANDIDATES];
	struct rt_request rq = { "gpt-4o", "" };
	int n;

	assert_int_equal(rt_candidates(&sb, &rq, c, RT_MAX_CANDIDATES, &n), RT_NO_CHANNELS);
	chan(3, 7, "gpt-4o-mini,gpt-4o");
	chan(5, 8, "gpt-4o-mini");
	assert_int_equal(rt_candidates(&sb, &rq, c, RT_MAX_CANDIDATES, &n), RT_OK);
	assert_int_equal(n, 1);
	assert_int_equal(c[0].slot, 3);
	assert_int_equal(c[0].agent_id, 7);
	rq.model = "gpt-4";		/* a prefix of a served model is not it */
	assert_int_equal(rt_candidates(&sb, &rq, c, RT_MAX_CANDIDATES, &n), RT_NO_MODEL);
	assert_int_equal(n, 0);
	assert_true(rt_model_in("a,b,c", "b", 0));
	assert_false(rt_model_in("a,bb,c", "b", 0));
	assert_true(rt_model_in("", "x", 1));
	assert_false(rt_model_in("", "x", 0));
}

static void
test_least_loaded_and_fair(void **state)
{
	struct rt_candidate c[RT_MAX_CANDIDATES];
	struct rt_request rq = { "m", "" };
	int n, hits[3] = { 0 };

	chan(0, 1, "m");
	chan(1, 2, "m");
	chan(2, 3, "m");
	/* The busiest goes last. */
	atomic_store(&sb_channel(&sb, 0)->hot.inflight, 5);
	for (int i = 0; i < 30; i++) {
		rt_candidates(&sb, &rq, c, RT_MAX_CANDIDATES, &n);
		assert_int_equal(n, 3);
		assert_int_equal(c[2].slot, 0);
	}
	atomic_store(&sb_channel(&sb, 0)->hot.inflight, 0);
	/* Equal load: each gets a third of 10,000 first picks, within 5%. */
	for (int i = 0; i < 10000; i++) {
		rt_candidates(&sb, &rq, c, RT_MAX_CANDIDATES, &n);
		hits[c[0].slot]++;
	}
	for (int i = 0; i < 3; i++) {
		print_message("slot %d: %d\n", i, hits[i]);
		assert_true(hits[i] >= 3333 * 95 / 100 && hits[i] <= 3334 * 105 / 100);
	}
}

static void
test_ejected_skipped(void **state)
{
	struct rt_candidate c[RT_MAX_CANDIDATES];
	struct rt_request rq = { "m", "" };
	int n;

	chan(0, 1, "m");
	chan(1, 2, "m");
	atomic_store(&sb_channel(&sb, 1)->hot.ejected_until_ms, clock_wall_ms() + 60000);
	for (int i = 0; i < 100; i++) {
		rt_candidates(&sb, &rq, c, RT_MAX_CANDIDATES, &n);
		assert_int_equal(n, 1);
		assert_int_equal(c[0].slot, 0);
	}
	/* Cool-down over: it is back. */
	atomic_store(&sb_channel(&sb, 1)->hot.ejected_until_ms, clock_wall_ms() - 1);
	rt_candidates(&sb, &rq, c, RT_MAX_CANDIDATES, &n);
	assert_int_equal(n, 2);
	/* Only ejected channels serve the model: it counts as not served. */
	atomic_store(&sb_channel(&sb, 0)->hot.ejected_until_ms, clock_wall_ms() + 60000);
	atomic_store(&sb_channel(&sb, 1)->hot.ejected_until_ms, clock_wall_ms() + 60000);
	assert_int_equal(rt_candidates(&sb, &rq, c, RT_MAX_CANDIDATES, &n), RT_NO_MODEL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_results, setup, teardown),
		cmocka_unit_test_setup_teardown(test_least_loaded_and_fair, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ejected_skipped, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
