/*
 * Unit tests of the rate limiters with a driven clock: the hub's local
 * fixed-window limiter over the scoreboard (shm/sb_limit: token slots,
 * channel counters, refusal with roll-back, minute rollover, retry-after,
 * usage correction) and agentd's per-channel token buckets (agent/ag_bucket).
 */
#include <stdarg.h>
#include <string.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include "agent/ag_bucket.h"
#include "lib/tokest.h"
#include "shm/sb_limit.h"

#define T0	(INT64_C(1700000000) * 1000 - 1700000000 % 60 * 1000)	/* a minute's start */

static void
test_fixed_window(void **state)
{
	struct sb sb;
	struct sb_lim_ctr c[2];
	int which = -1, slot;

	assert_int_equal(T0 % 60000, 0);
	assert_int_equal(sb_create(&sb, 4, 4), 0);
	slot = sb_lim_token_slot(&sb, 42, T0);
	assert_true(slot >= 0);
	assert_int_equal(sb_lim_token_slot(&sb, 42, T0 + 5), slot);	/* found again */
	sb_lim_tok(sb_token(&sb, (uint32_t)slot), 5, 0, &c[0]);
	sb_lim_chan(&sb, 1, 0, 0, &c[1]);
	for (int i = 0; i < 5; i++)
		assert_int_equal(sb_lim_take(c, 2, 10, T0 + 1000 * i, &which), SB_LIM_OK);
	/* The sixth in the same minute is refused, on the token (index 0). */
	assert_int_equal(sb_lim_take(c, 2, 10, T0 + 59999, &which), SB_LIM_REQUESTS);
	assert_int_equal(which, 0);
	/* ... and counted nowhere: the channel saw exactly five. */
	assert_int_equal(atomic_load(c[1].req), 5);
	assert_int_equal(atomic_load(c[1].tok), 50);
	assert_int_equal(atomic_load(c[0].req), 5);
	/* retry-after: seconds to the minute's end. */
	assert_int_equal(sb_lim_retry_after(T0 + 1000 * 26), 34);
	assert_int_equal(sb_lim_retry_after(T0 + 59999), 1);
	assert_int_equal(sb_lim_retry_after(T0), 60);
	/* The next minute starts from zero. */
	assert_int_equal(sb_lim_take(c, 2, 10, T0 + 60000, &which), SB_LIM_OK);
	assert_int_equal(atomic_load(c[0].req), 1);
	assert_int_equal(atomic_load(c[1].req), 1);
	assert_int_equal(atomic_load(c[0].minute), (T0 + 60000) / 60000);
	sb_destroy(&sb);
}

static void
test_tokens_and_rollback(void **state)
{
	struct sb sb;
	struct sb_lim_ctr c[2];
	int which = -1;

	assert_int_equal(sb_create(&sb, 4, 4), 0);
	/* Token without limits; channel 2 with tpm 100. */
	sb_lim_tok(sb_token(&sb, 7), 0, 0, &c[0]);
	sb_lim_chan(&sb, 2, 0, 100, &c[1]);
	assert_int_equal(sb_lim_take(c, 2, 60, T0, &which), SB_LIM_OK);
	assert_int_equal(sb_lim_take(c, 2, 60, T0 + 1, &which), SB_LIM_TOKENS);
	assert_int_equal(which, 1);
	/* Rolled back on both: the token's counters hold the first only. */
	assert_int_equal(atomic_load(c[0].req), 1);
	assert_int_equal(atomic_load(c[0].tok), 60);
	assert_int_equal(atomic_load(c[1].tok), 60);
	/* The real usage was 20: the correction makes room for 80 more. */
	sb_lim_adjust(&c[1], T0 / 60000, 0, -40);
	sb_lim_adjust(&c[0], T0 / 60000, 0, -40);
	assert_int_equal(sb_lim_take(c, 2, 80, T0 + 2, &which), SB_LIM_OK);
	assert_int_equal(sb_lim_take(c, 2, 1, T0 + 3, &which), SB_LIM_TOKENS);
	/* A correction for a minute that is over changes nothing. */
	sb_lim_adjust(&c[1], T0 / 60000 - 1, 0, -1000);
	assert_int_equal(atomic_load(c[1].tok), 100);
	sb_destroy(&sb);
}

static void
test_token_slots(void **state)
{
	struct sb sb;
	int a, b, got = 0;

	assert_int_equal(sb_create(&sb, 1, 1), 0);
	a = sb_lim_token_slot(&sb, 1, T0);
	b = sb_lim_token_slot(&sb, 2, T0);
	assert_true(a >= 0 && b >= 0 && a != b);
	assert_int_equal(sb_lim_token_slot(&sb, 0, T0), -1);
	/* Fill every slot this minute: some ids find no room... */
	for (uint64_t id = 3; id < 3 + 2 * SB_TOKEN_SLOTS; id++) {
		int s = sb_lim_token_slot(&sb, id, T0);
		if (s >= 0)
			atomic_store(&sb_token(&sb, (uint32_t)s)->minute, T0 / 60000);
		got += s < 0;
	}
	assert_true(got > 0);
	/* ... and two minutes later stale slots are reused. */
	assert_true(sb_lim_token_slot(&sb, 999999999, T0 + 120000) >= 0);
	sb_destroy(&sb);
}

static void
test_bucket(void **state)
{
	struct ag_bucket b;
	int64_t retry = 0;

	ag_bucket_init(&b, 6, 0, 1000);		/* one request every 10 s */
	for (int i = 0; i < 6; i++)
		assert_int_equal(ag_bucket_take(&b, 100, 1000, &retry), AG_BUCKET_OK);
	assert_int_equal(ag_bucket_take(&b, 100, 1000, &retry), AG_BUCKET_REQUESTS);
	assert_int_equal(retry, 10);
	assert_int_equal(ag_bucket_take(&b, 100, 7500, &retry), AG_BUCKET_REQUESTS);
	assert_int_equal(retry, 4);		/* 3.5 s left, rounded up */
	assert_int_equal(ag_bucket_take(&b, 100, 11000, &retry), AG_BUCKET_OK);
	assert_int_equal(ag_bucket_take(&b, 100, 11000, &retry), AG_BUCKET_REQUESTS);
	/* A long pause refills to one minute's worth, not more. */
	for (int i = 0; i < 6; i++)
		assert_int_equal(ag_bucket_take(&b, 0, 3600000, &retry), AG_BUCKET_OK);
	assert_int_equal(ag_bucket_take(&b, 0, 3600000, &retry), AG_BUCKET_REQUESTS);

	ag_bucket_init(&b, 0, 600, 0);		/* 10 tokens a second */
	assert_int_equal(ag_bucket_take(&b, 500, 0, &retry), AG_BUCKET_OK);
	assert_int_equal(ag_bucket_take(&b, 200, 0, &retry), AG_BUCKET_TOKENS);
	assert_int_equal(retry, 10);		/* 100 short at 10/s */
	assert_int_equal(ag_bucket_take(&b, 200, 10000, &retry), AG_BUCKET_OK);
	/* Bigger than the whole bucket: waits for a full one, then passes. */
	assert_int_equal(ag_bucket_take(&b, 5000, 10000, &retry), AG_BUCKET_TOKENS);
	assert_int_equal(ag_bucket_take(&b, 5000, 80000, &retry), AG_BUCKET_OK);
	/* No limits: always. */
	ag_bucket_init(&b, 0, 0, 0);
	for (int i = 0; i < 1000; i++)
		assert_int_equal(ag_bucket_take(&b, 1 << 20, 0, &retry), AG_BUCKET_OK);
}

/* The estimate of a whole body, read as the gateway and agentd read it:
 * its members in the check's pass; junk counts by its bytes. */
static int64_t
est(const char *body, size_t len)
{
	static const char *const keys[] = {
		"max_completion_tokens", "max_tokens"
	};
	struct jscan_v root, v[2];

	if (body == NULL || jscan_check_getv(body, len, &root, keys, 2, v) != 0)
		memset(v, 0, sizeof(v));
	return tokest_budget(len, v[0], v[1]);
}

static void
test_estimate(void **state)
{
	static const char body[] = "{\"model\":\"m\",\"max_tokens\":100,"
	    "\"messages\":[]}";
	static const char body2[] = "{\"model\":\"m\",\"max_tokens\":100,"
	    "\"max_completion_tokens\":7}";

	assert_int_equal(est(body, sizeof(body) - 1),
	    (int64_t)((sizeof(body) - 1) / 4 + 100));
	assert_int_equal(est(body2, sizeof(body2) - 1),
	    (int64_t)((sizeof(body2) - 1) / 4 + 7));
	assert_int_equal(est("junkjunk", 8), 2);
	assert_int_equal(est(NULL, 0), 0);
	/* The rule, member for member: max_completion_tokens when it is an
	 * integer (even one that adds nothing), else max_tokens; only
	 * 1 .. 2^40 - 1 counts; the last of a repeated key; the root
	 * object's members only. */
	static const struct {
		const char *body;
		int64_t budget;
	} rule[] = {
		{ "{\"max_completion_tokens\":-5,\"max_tokens\":10}", 0 },
		{ "{\"max_completion_tokens\":\"7\",\"max_tokens\":10}", 10 },
		{ "{\"max_completion_tokens\":null,\"max_tokens\":12}", 12 },
		{ "{\"max_tokens\":1.5}", 0 },
		{ "{\"max_tokens\":1099511627776}", 0 },
		{ "{\"max_tokens\":1099511627775}", 1099511627775 },
		{ "{\"max_tokens\":3,\"max_tokens\":40}", 40 },
		{ "[{\"max_tokens\":3}]", 0 },
		{ "{\"a\":{\"max_tokens\":3}}", 0 },
		{ "{\"max_tokens\":3", 0 },
	};
	for (size_t i = 0; i < sizeof(rule) / sizeof(rule[0]); i++) {
		size_t n = strlen(rule[i].body);

		assert_int_equal(est(rule[i].body, n),
		    (int64_t)(n / 4) + rule[i].budget);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fixed_window),
		cmocka_unit_test(test_tokens_and_rollback),
		cmocka_unit_test(test_token_slots),
		cmocka_unit_test(test_bucket),
		cmocka_unit_test(test_estimate),
	};

	return cmocka_run_group_tests_name("limits", tests, NULL, NULL);
}
