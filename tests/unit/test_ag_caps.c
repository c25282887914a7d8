/*
 * tests/unit/test_ag_caps: the caps a channel's owner sets (agent/ag_caps)
 * — concurrency counted and released, tokens = input estimate + the
 * body's max output, the daily budget priced with the latest announced
 * price, reset at 00:00 UTC — and the metrics minute counters
 * (agent/ag_metrics).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "agent/ag_caps.h"
#include "agent/ag_metrics.h"

#define DAY	INT64_C(86400000)
#define T0	(INT64_C(20000) * DAY + 3600000)	/* 01:00 UTC */

static struct ag_conf cf;

static void
one_channel(int64_t conc, int64_t maxtok, int64_t budget)
{
	memset(&cf, 0, sizeof(cf));
	cf.nchannels = 1;
	snprintf(cf.channels[0].name, sizeof(cf.channels[0].name), "main");
	cf.channels[0].nmodels = 1;
	snprintf(cf.channels[0].models[0], AG_MODEL_MAX, "gpt-4o");
	cf.channels[0].max_concurrency = conc;
	cf.channels[0].max_tokens_per_request = maxtok;
	cf.channels[0].daily_budget = budget;
}

static void
test_concurrency(void **state)
{
	struct ag_caps c;
	char msg[320];

	(void)state;
	one_channel(2, 0, 0);
	ag_caps_init(&c, &cf);
	assert_int_equal(ag_caps_admit(&c, 0, "gpt-4o", 10, 0, T0, msg,
	    sizeof(msg)), AG_CAPS_OK);
	assert_int_equal(ag_caps_admit(&c, 0, "gpt-4o", 10, 0, T0, msg,
	    sizeof(msg)), AG_CAPS_OK);
	assert_int_equal(ag_caps_admit(&c, 0, "gpt-4o", 10, 0, T0, msg,
	    sizeof(msg)), AG_CAPS_CONCURRENCY);
	assert_non_null(strstr(msg, "at most 2 requests at once"));
	ag_caps_release(&c, 0);
	assert_int_equal(ag_caps_admit(&c, 0, "gpt-4o", 10, 0, T0, msg,
	    sizeof(msg)), AG_CAPS_OK);
	/* Releasing more than was admitted never goes below zero. */
	for (int i = 0; i < 5; i++)
		ag_caps_release(&c, 0);
	assert_int_equal(c.inflight[0], 0);
}

static void
test_tokens(void **state)
{
	struct ag_caps c;
	char msg[320];
	static const char body[] = "{\"max_tokens\": 300, "
	    "\"max_completion_tokens\": 200, \"max_output_tokens\": \"9999\"}";
	static const char *const keys[AG_CAPS_OUT_KEYS] = {
		"max_tokens", "max_completion_tokens", "max_output_tokens"
	};
	struct jscan_v b, v[AG_CAPS_OUT_KEYS], none[AG_CAPS_OUT_KEYS];

	(void)state;
	memset(none, 0, sizeof(none));
	assert_int_equal(jscan_check_getv(body, sizeof(body) - 1, &b, keys,
	    AG_CAPS_OUT_KEYS, v), 0);
	assert_int_equal(ag_caps_max_out(v), 300);
	assert_int_equal(ag_caps_max_out(none), 0);
	one_channel(0, 500, 0);
	ag_caps_init(&c, &cf);
	assert_int_equal(ag_caps_admit(&c, 0, "gpt-4o", 200, 300, T0, msg,
	    sizeof(msg)), AG_CAPS_OK);
	assert_int_equal(ag_caps_admit(&c, 0, "gpt-4o", 201, 300, T0, msg,
	    sizeof(msg)), AG_CAPS_TOKENS);
	assert_non_null(strstr(msg, "may use 501 tokens"));
	assert_non_null(strstr(msg, "at most 500 per request"));
}

static void
test_budget(void **state)
{
	struct ag_caps c;
	struct money_prices p1 = { .output = 1000000000 };	/* 1000/1M */
	struct money_prices p0 = { .output = 1 };
	char msg[320];

	(void)state;
	one_channel(0, 0, 100000);			/* 0.1 */
	ag_caps_init(&c, &cf);
	/* Unpriced: costs nothing. */
	assert_int_equal(ag_caps_cost(&c, 0, "gpt-4o", 10, 40, 0, 0), 0);
	ag_caps_price(&c, "gpt-4o", 2, &p1);
	ag_caps_price(&c, "gpt-4o", 1, &p0);		/* older: ignored */
	ag_caps_price(&c, "other", 3, &p0);		/* not announced */
	assert_int_equal(ag_caps_cost(&c, 0, "gpt-4o", 10, 40, 0, 0), 40000);
	ag_caps_spend(&c, 0, 40000, T0);
	ag_caps_spend(&c, 0, 40000, T0 + 1000);
	assert_int_equal(ag_caps_spent(&c, 0, T0 + 2000), 80000);
	/* 0.02 left: 40 tokens (0.04) do not fit, 20 do. */
	assert_int_equal(ag_caps_admit(&c, 0, "gpt-4o", 0, 40, T0 + 3000, msg,
	    sizeof(msg)), AG_CAPS_BUDGET);
	assert_non_null(strstr(msg, "spent 0.080000 of its daily budget of "
	    "0.100000"));
	assert_int_equal(ag_caps_admit(&c, 0, "gpt-4o", 0, 20, T0 + 3000, msg,
	    sizeof(msg)), AG_CAPS_OK);
	ag_caps_release(&c, 0);
	ag_caps_spend(&c, 0, 20000, T0 + 4000);
	assert_int_equal(ag_caps_admit(&c, 0, "gpt-4o", 0, 0, T0 + 5000, msg,
	    sizeof(msg)), AG_CAPS_BUDGET);		/* spent it all */
	/* A new UTC day starts from zero. */
	assert_int_equal(ag_caps_spent(&c, 0, T0 + DAY), 0);
	assert_int_equal(ag_caps_admit(&c, 0, "gpt-4o", 0, 40, T0 + DAY, msg,
	    sizeof(msg)), AG_CAPS_OK);
}

static void
test_metrics_minute(void **state)
{
	struct ag_metrics m;
	struct ag_chan_metrics cm;
	int64_t lat;

	(void)state;
	memset(&m, 0, sizeof(m));
	ag_metrics_request(&m, 0, 100, T0);
	ag_metrics_request(&m, 0, 50, T0 + 1000);
	ag_metrics_tokens(&m, 0, 8, T0 + 2000);
	ag_metrics_error(&m, 0, T0 + 2000);
	ag_metrics_latency(&m, 0, 100, T0 + 2000);
	ag_metrics_latency(&m, 0, 300, T0 + 2000);
	ag_metrics_get(&m, 0, T0 + 3000, &cm, &lat);
	assert_int_equal(cm.requests, 2);
	assert_int_equal(cm.tokens, 158);
	assert_int_equal(cm.errors, 1);
	assert_int_equal(lat, 200);
	/* Next minute: counters read zero, the last latency stays. */
	ag_metrics_get(&m, 0, T0 + 60000, &cm, &lat);
	assert_int_equal(cm.requests, 0);
	assert_int_equal(cm.tokens, 0);
	assert_int_equal(lat, 200);
	assert_int_equal(cm.total_requests, 2);
	/* Bad indexes are ignored. */
	ag_metrics_request(&m, -1, 1, T0);
	ag_metrics_request(&m, AG_MAX_CHANNELS, 1, T0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_concurrency),
		cmocka_unit_test(test_tokens),
		cmocka_unit_test(test_budget),
		cmocka_unit_test(test_metrics_minute),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
