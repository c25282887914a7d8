/*
 * Unit tests of router/rt on constructed scoreboards: model matching,
 * the 404/503 distinction, least-loaded first, round-robin (and random)
 * fairness among equals, ejected channels skipped until their cool-down
 * ends, bound never leaving its set, graded never going below its grade,
 * best following the configured weights, rt_explain's terms, and the
 * ejection rules (a burst ejects once, the cool-down doubles only on a
 * repeat after re-admission, probes trickle through when all cool).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
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
	if (slot + 1 > atomic_load(&sb.hdr->chan_hwm))	/* as the tunnel does */
		atomic_store(&sb.hdr->chan_hwm, slot + 1);
}

/* A channel with a grade, its agent online in agent slot `agent`. */
static void
chan_g(uint32_t slot, uint64_t agent, const char *models, char grade)
{
	struct sb_channel *c = sb_channel(&sb, slot);
	struct sb_agent *a = sb_agent(&sb, (uint32_t)agent);

	chan(slot, agent, models);
	sb_write_begin(&c->seq);
	c->grade = grade;
	c->agent_slot = (uint32_t)agent;
	sb_write_end(&c->seq);
	sb_write_begin(&a->seq);
	a->state = SB_AGENT_ONLINE;
	a->agent_id = agent;
	a->since_ms = clock_wall_ms();
	a->last_heartbeat_ms = clock_wall_ms();
	sb_write_end(&a->seq);
}

/* Random live figures, so scores move between picks. */
static void
shake(uint32_t nslots)
{
	for (uint32_t i = 0; i < nslots; i++) {
		struct sb_chan_hot *h = &sb_channel(&sb, i)->hot;
		atomic_store(&h->inflight, rand() % 4);
		atomic_store(&h->ewma_ttfb_us, 1000 + rand() % 3000000);
		atomic_store(&h->ok, rand() % 100);
		atomic_store(&h->err, rand() % 20);
	}
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
	struct rt_request rq = { .model = "gpt-4o", .allowed_models = "" };
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
	struct rt_request rq = { .model = "m", .allowed_models = "" };
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
	struct rt_request rq = { .model = "m", .allowed_models = "" };
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
	/* Only ejected channels serve the model: one probe each, then
	 * unavailable for now (503). */
	atomic_store(&sb_channel(&sb, 0)->hot.ejected_until_ms, clock_wall_ms() + 60000);
	atomic_store(&sb_channel(&sb, 1)->hot.ejected_until_ms, clock_wall_ms() + 60000);
	assert_int_equal(rt_candidates(&sb, &rq, c, RT_MAX_CANDIDATES, &n), RT_OK);
	assert_int_equal(n, 1);
	assert_int_equal(rt_candidates(&sb, &rq, c, RT_MAX_CANDIDATES, &n), RT_OK);
	assert_int_equal(n, 1);
	assert_int_equal(rt_candidates(&sb, &rq, c, RT_MAX_CANDIDATES, &n), RT_NO_CHANNELS);
	assert_int_equal(n, 0);
}

static void
test_bound_stays_in_set(void **state)
{
	struct rt_candidate c[RT_MAX_CANDIDATES];
	struct rt_request rq = { .model = "m", .allowed_models = "",
	    .policy = RT_POLICY_BOUND, .bound = "2" };
	int n;

	chan_g(0, 1, "m", 'A');
	chan_g(1, 2, "m", 'C');
	chan_g(2, 3, "m", 'B');
	chan_g(3, 2, "m,other", 'C');
	/* The bound set is the worst by every term; it is still all it gets. */
	for (int i = 0; i < 10000; i++) {
		shake(4);
		atomic_store(&sb_channel(&sb, 1)->hot.inflight, 50);
		assert_int_equal(rt_candidates(&sb, &rq, c, RT_MAX_CANDIDATES, &n), RT_OK);
		assert_true(n >= 1 && n <= 2);
		for (int k = 0; k < n; k++)
			assert_int_equal(c[k].agent_id, 2);
	}
	/* AGENT:CHANNEL narrows to one channel; blanks are ignored. */
	rq.bound = "9, 2:ch3";
	for (int i = 0; i < 1000; i++) {
		assert_int_equal(rt_candidates(&sb, &rq, c, RT_MAX_CANDIDATES, &n), RT_OK);
		assert_int_equal(n, 1);
		assert_int_equal(c[0].slot, 3);
	}
	/* No member serves the model, or nothing is bound: 404, not elsewhere. */
	rq.model = "other";
	rq.bound = "1,3";
	assert_int_equal(rt_candidates(&sb, &rq, c, RT_MAX_CANDIDATES, &n), RT_NO_MODEL);
	assert_int_equal(n, 0);
	rq.model = "m";
	rq.bound = "";
	assert_int_equal(rt_candidates(&sb, &rq, c, RT_MAX_CANDIDATES, &n), RT_NO_MODEL);
	rq.bound = NULL;
	assert_int_equal(rt_candidates(&sb, &rq, c, RT_MAX_CANDIDATES, &n), RT_NO_MODEL);
	rq.bound = "2x,-1,:ch1";
	assert_int_equal(rt_candidates(&sb, &rq, c, RT_MAX_CANDIDATES, &n), RT_NO_MODEL);
	/* Ejected members are skipped like anywhere else: with every member
	 * cooling down the token's channels are unavailable (503), and the
	 * others are still never used. */
	rq.bound = "2:ch1";
	atomic_store(&sb_channel(&sb, 1)->hot.ejected_until_ms, clock_wall_ms() + 60000);
	atomic_store(&sb_channel(&sb, 1)->hot.probe_ms, clock_wall_ms());
	assert_int_equal(rt_candidates(&sb, &rq, c, RT_MAX_CANDIDATES, &n), RT_NO_CHANNELS);
	assert_int_equal(n, 0);
	assert_true(rt_bound_has("7:main,8", 7, "main"));
	assert_false(rt_bound_has("7:main,8", 7, "other"));
	assert_true(rt_bound_has("7:main,8", 8, "any"));
	assert_false(rt_bound_has("17", 7, "main"));
}

static void
test_graded_never_below(void **state)
{
	struct rt_candidate c[RT_MAX_CANDIDATES];
	struct rt_request rq = { .model = "m", .allowed_models = "",
	    .policy = RT_POLICY_GRADED, .min_grade = 'B' };
	int n, seen[4] = { 0 };

	chan_g(0, 1, "m", 'A');
	chan_g(1, 2, "m", 'B');
	chan_g(2, 3, "m", 'C');
	chan_g(3, 4, "m", 'D');
	for (int i = 0; i < 10000; i++) {
		shake(4);
		/* The grade-C channel is idle and fast: still not allowed. */
		atomic_store(&sb_channel(&sb, 2)->hot.inflight, 0);
		atomic_store(&sb_channel(&sb, 2)->hot.ewma_ttfb_us, 1);
		assert_int_equal(rt_candidates(&sb, &rq, c, RT_MAX_CANDIDATES, &n), RT_OK);
		for (int k = 0; k < n; k++) {
			assert_true(c[k].slot == 0 || c[k].slot == 1);
			seen[c[k].slot]++;
		}
	}
	assert_true(seen[0] > 0 && seen[1] > 0);	/* A and B both qualify */
	rq.min_grade = 'A';
	rt_candidates(&sb, &rq, c, RT_MAX_CANDIDATES, &n);
	assert_int_equal(n, 1);
	assert_int_equal(c[0].slot, 0);
	/* A graded token without a grade admits nothing (fail closed). */
	rq.min_grade = 0;
	assert_int_equal(rt_candidates(&sb, &rq, c, RT_MAX_CANDIDATES, &n), RT_NO_MODEL);
	/* Only ejected channels of the grade: unavailable, never a lower one. */
	rq.min_grade = 'B';
	atomic_store(&sb_channel(&sb, 0)->hot.ejected_until_ms, clock_wall_ms() + 60000);
	atomic_store(&sb_channel(&sb, 1)->hot.ejected_until_ms, clock_wall_ms() + 60000);
	atomic_store(&sb_channel(&sb, 0)->hot.probe_ms, clock_wall_ms());
	atomic_store(&sb_channel(&sb, 1)->hot.probe_ms, clock_wall_ms());
	assert_int_equal(rt_candidates(&sb, &rq, c, RT_MAX_CANDIDATES, &n), RT_NO_CHANNELS);
	assert_int_equal(n, 0);
	/* best takes any grade. */
	rq.policy = RT_POLICY_BEST;
	rt_candidates(&sb, &rq, c, RT_MAX_CANDIDATES, &n);
	assert_int_equal(n, 2);
}

static int
first_of(struct rt_request *rq)
{
	struct rt_candidate c[RT_MAX_CANDIDATES];
	int n;

	assert_int_equal(rt_candidates(&sb, rq, c, RT_MAX_CANDIDATES, &n), RT_OK);
	return (int)c[0].slot;
}

static void
test_best_follows_weights(void **state)
{
	struct rt_weights w = rt_default_weights;
	struct rt_request rq = { .model = "m", .allowed_models = "",
	    .policy = RT_POLICY_BEST, .weights = &w };

	/* 0: fast (50 ms) but busy (2 in flight); 1: slow (3 s) and idle. */
	chan_g(0, 1, "m", 'B');
	chan_g(1, 2, "m", 'B');
	atomic_store(&sb_channel(&sb, 0)->hot.ewma_ttfb_us, 50000);
	atomic_store(&sb_channel(&sb, 0)->hot.inflight, 2);
	atomic_store(&sb_channel(&sb, 1)->hot.ewma_ttfb_us, 3000000);
	w.tie_margin = 0;
	for (int t = 0; t < RT_NTERMS; t++)
		w.w[t] = 0;
	w.w[RT_T_SPEED] = 1000;
	for (int i = 0; i < 100; i++)
		assert_int_equal(first_of(&rq), 0);
	w.w[RT_T_SPEED] = 0;
	w.w[RT_T_LOAD] = 1000;
	for (int i = 0; i < 100; i++)
		assert_int_equal(first_of(&rq), 1);
	/* Mixed: speed weighs more than load, then the other way. */
	w.w[RT_T_SPEED] = 900;
	w.w[RT_T_LOAD] = 100;
	assert_int_equal(first_of(&rq), 0);
	w.w[RT_T_SPEED] = 100;
	w.w[RT_T_LOAD] = 900;
	assert_int_equal(first_of(&rq), 1);
	/* Stability: the channel that errs goes behind. */
	w.w[RT_T_SPEED] = 0;
	w.w[RT_T_LOAD] = 0;
	w.w[RT_T_STABILITY] = 1000;
	atomic_store(&sb_channel(&sb, 1)->hot.ok, 10);
	atomic_store(&sb_channel(&sb, 1)->hot.err, 40);
	for (int i = 0; i < 100; i++)
		assert_int_equal(first_of(&rq), 0);
	/* Price reads neutral for everyone (no price table yet): with only
	 * price weighed, the channels tie and take turns. */
	w.w[RT_T_STABILITY] = 0;
	w.w[RT_T_PRICE] = 1000;
	{
		int hits[2] = { 0 };
		for (int i = 0; i < 1000; i++)
			hits[first_of(&rq)]++;
		assert_int_equal(hits[0], 500);
	}
	/* A margin makes near scores equal: 5% apart on speed alone. */
	w.w[RT_T_PRICE] = 0;
	w.w[RT_T_SPEED] = 1000;
	atomic_store(&sb_channel(&sb, 0)->hot.ewma_ttfb_us, 10000);
	atomic_store(&sb_channel(&sb, 1)->hot.ewma_ttfb_us, 60000);
	assert_int_equal(first_of(&rq), 0);
	assert_int_equal(first_of(&rq), 0);
	w.tie_margin = 100;
	assert_int_not_equal(first_of(&rq), first_of(&rq));
}

static void
test_random_tie_break(void **state)
{
	struct rt_weights w = rt_default_weights;
	struct rt_request rq = { .model = "m", .allowed_models = "",
	    .weights = &w };
	int hits[3] = { 0 };

	chan_g(0, 1, "m", 'B');
	chan_g(1, 2, "m", 'B');
	chan_g(2, 3, "m", 'B');
	w.tie_break = RT_TIE_RANDOM;
	for (int i = 0; i < 10000; i++)
		hits[first_of(&rq)]++;
	for (int i = 0; i < 3; i++) {
		print_message("slot %d: %d\n", i, hits[i]);
		assert_true(hits[i] >= 3333 * 95 / 100 && hits[i] <= 3334 * 105 / 100);
	}
	/* Random among equals only: a busy channel still goes last. */
	atomic_store(&sb_channel(&sb, 2)->hot.inflight, 9);
	for (int i = 0; i < 1000; i++)
		assert_int_not_equal(first_of(&rq), 2);
}

/* The agent's own minute counters (metrics frames, several hubs sharing
 * its provider) lower headroom when tighter than the gateway's; stale or
 * last-minute ones do not count, nor looser ones. */
static void
test_agent_metrics_headroom(void **state)
{
	struct rt_explain e;
	struct sb_channel *c = sb_channel(&sb, 0);
	int64_t now = clock_wall_ms();

	chan_g(0, 1, "m", 'A');
	sb_write_begin(&c->seq);
	c->rpm_limit = 100;
	c->tpm_limit = 0;
	sb_write_end(&c->seq);
	atomic_store(&c->hot.minute, now / 60000);
	atomic_store(&c->hot.req_minute, 10);
	rt_explain(&sb, 0, NULL, &e);
	assert_int_equal(e.term[RT_T_HEADROOM], 900);	/* the hub's view */
	/* Another hub sent it 80 more this minute: 90 of 100 used. */
	atomic_store(&c->hot.ag_minute, now / 60000);
	atomic_store(&c->hot.ag_req_minute, 90);
	atomic_store(&c->hot.ag_updated_ms, now);
	rt_explain(&sb, 0, NULL, &e);
	assert_int_equal(e.term[RT_T_HEADROOM], 100);
	/* The agent's tokens count against tpm the same way. */
	sb_write_begin(&c->seq);
	c->tpm_limit = 1000;
	sb_write_end(&c->seq);
	atomic_store(&c->hot.ag_req_minute, 0);
	atomic_store(&c->hot.ag_tok_minute, 950);
	rt_explain(&sb, 0, NULL, &e);
	assert_int_equal(e.term[RT_T_HEADROOM], 50);
	/* Looser than the hub's own count: the hub's stands. */
	atomic_store(&c->hot.ag_tok_minute, 0);
	atomic_store(&c->hot.req_minute, 60);
	atomic_store(&c->hot.ag_req_minute, 20);
	rt_explain(&sb, 0, NULL, &e);
	assert_int_equal(e.term[RT_T_HEADROOM], 400);
	/* A report from last minute, or a stale one, does not count. */
	atomic_store(&c->hot.req_minute, 10);
	atomic_store(&c->hot.ag_req_minute, 90);
	atomic_store(&c->hot.ag_minute, now / 60000 - 1);
	rt_explain(&sb, 0, NULL, &e);
	assert_int_equal(e.term[RT_T_HEADROOM], 900);
	atomic_store(&c->hot.ag_minute, now / 60000);
	atomic_store(&c->hot.ag_updated_ms, now - 60000);
	rt_explain(&sb, 0, NULL, &e);
	assert_int_equal(e.term[RT_T_HEADROOM], 900);
}

static void
test_explain_terms(void **state)
{
	struct rt_explain e;
	struct sb_channel *c = sb_channel(&sb, 0);
	int64_t now = clock_wall_ms();

	chan_g(0, 1, "m", 'A');
	sb_write_begin(&c->seq);
	c->rpm_limit = 100;
	c->tpm_limit = 1000;
	sb_write_end(&c->seq);
	atomic_store(&c->hot.minute, now / 60000);
	atomic_store(&c->hot.req_minute, 25);
	atomic_store(&c->hot.tok_minute, 900);
	atomic_store(&c->hot.inflight, 1);
	rt_explain(&sb, 0, NULL, &e);
	assert_int_equal(e.term[RT_T_HEADROOM], 100);	/* tpm: 10% left */
	assert_int_equal(e.term[RT_T_LOAD], 500);
	assert_int_equal(e.term[RT_T_STABILITY], 1000);
	assert_int_equal(e.term[RT_T_AVAILABILITY], 1000);
	assert_int_equal(e.term[RT_T_SPEED], 1000);	/* not measured yet */
	assert_int_equal(e.term[RT_T_PRICE], 500);	/* neutral */
	assert_int_equal(e.term[RT_T_RATING], 1000);
	assert_false(e.ejected);
	/* Last minute's counters do not count; no limits: full headroom. */
	atomic_store(&c->hot.minute, now / 60000 - 1);
	rt_explain(&sb, 0, NULL, &e);
	assert_int_equal(e.term[RT_T_HEADROOM], 1000);
	/* Errors and a streak lower stability; ejection shows. */
	atomic_store(&c->hot.ok, 0);
	atomic_store(&c->hot.err, 20);
	atomic_store(&c->hot.err_streak, 2);
	atomic_store(&c->hot.ejected_until_ms, now + 5000);
	rt_explain(&sb, 0, NULL, &e);
	assert_int_equal(e.term[RT_T_STABILITY], 500 - 50);
	assert_true(e.ejected);
	/* Score under each strategy is the weighted mean of its terms. */
	for (int p = 0; p < RT_NPOLICIES; p++)
		assert_true(e.score[p] >= 0 && e.score[p] <= 1000);
	assert_true(rt_policy_uses(RT_POLICY_GRADED, RT_T_RATING));
	assert_false(rt_policy_uses(RT_POLICY_BEST, RT_T_RATING));
	assert_true(rt_policy_uses(RT_POLICY_BEST, RT_T_PRICE));
	assert_int_equal(rt_policy_parse(""), RT_POLICY_BEST);
	assert_int_equal(rt_policy_parse("bound"), RT_POLICY_BOUND);
	assert_int_equal(rt_policy_parse("graded"), RT_POLICY_GRADED);
	assert_int_equal(rt_policy_parse("nope"), -1);
	/* The agent went away: the channel reads unavailable. */
	sb_agent(&sb, 1)->state = SB_AGENT_FREE;
	rt_explain(&sb, 0, NULL, &e);
	assert_int_equal(e.term[RT_T_AVAILABILITY], 0);
}

/* Outcomes of n requests of slot 0, all started at `started`, ending at now. */
static enum rt_health
outcomes(int n, int ok, int64_t started, int64_t now, int64_t *cool)
{
	enum rt_health last = RT_H_OK;

	for (int i = 0; i < n; i++)
		last = rt_health_record(&sb_channel(&sb, 0)->hot, ok, started,
		    now, cool);
	return last;
}

/*
 * A burst of 16 parallel failures ejects once, for the first cool-down;
 * the failures of requests in flight at the ejection count as errors but
 * neither eject again nor lengthen it.
 */
static void
test_burst_ejects_once(void **state)
{
	struct sb_chan_hot *h = &sb_channel(&sb, 0)->hot;
	int64_t t0 = 1700000000000, cool = 0;
	int ejected = 0;

	chan(0, 1, "m");
	for (int i = 0; i < 16; i++) {
		enum rt_health r = rt_health_record(h, 0, t0, t0 + 20 + i, &cool);
		if (r == RT_H_EJECTED) {
			ejected++;
			assert_int_equal(i, RT_EJECT_STREAK - 1);
			assert_int_equal(cool, RT_EJECT_BASE_MS);
		} else if (i < RT_EJECT_STREAK - 1) {
			assert_int_equal(r, RT_H_FAILED);
		} else {
			assert_int_equal(r, RT_H_STALE);
		}
	}
	assert_int_equal(ejected, 1);
	assert_int_equal(atomic_load(&h->ejections), 1);
	assert_int_equal(atomic_load(&h->err), 16);
	assert_int_equal(atomic_load(&h->ejected_until_ms),
	    t0 + 22 + RT_EJECT_BASE_MS);
	assert_int_equal(atomic_load(&h->err_streak), 0);
	/* A stale success changes nothing either: no re-admission. */
	assert_int_equal(outcomes(1, 1, t0, t0 + 100, &cool), RT_H_STALE);
	assert_int_equal(atomic_load(&h->ejected_until_ms),
	    t0 + 22 + RT_EJECT_BASE_MS);
	assert_int_equal(atomic_load(&h->ejections), 1);
	/* Failed probes (started after the ejection, ended while cooling)
	 * leave the cool-down as it is. */
	assert_int_equal(outcomes(5, 0, t0 + 1000, t0 + 1100, &cool), RT_H_COOLING);
	assert_int_equal(atomic_load(&h->ejected_until_ms),
	    t0 + 22 + RT_EJECT_BASE_MS);
	assert_int_equal(atomic_load(&h->ejections), 1);
	assert_int_equal(atomic_load(&h->err_streak), 0);
}

/*
 * The cool-down doubles only when a re-admitted channel fails again with
 * no success in between; a success after re-admission resets it.  A probe
 * that succeeds ends the cool-down at once.
 */
static void
test_cooldown_doubles_on_repeat(void **state)
{
	struct sb_chan_hot *h = &sb_channel(&sb, 0)->hot;
	int64_t t = 1700000000000, cool = 0;

	chan(0, 1, "m");
	assert_int_equal(outcomes(3, 0, t, t + 10, &cool), RT_H_EJECTED);
	assert_int_equal(cool, RT_EJECT_BASE_MS);
	/* Re-admitted by time; three more failures: twice as long. */
	t += RT_EJECT_BASE_MS + 100;
	assert_int_equal(outcomes(2, 0, t, t + 10, &cool), RT_H_FAILED);
	assert_int_equal(outcomes(1, 0, t, t + 10, &cool), RT_H_EJECTED);
	assert_int_equal(cool, 2 * RT_EJECT_BASE_MS);
	t += 2 * RT_EJECT_BASE_MS + 100;
	assert_int_equal(outcomes(3, 0, t, t + 10, &cool), RT_H_EJECTED);
	assert_int_equal(cool, 4 * RT_EJECT_BASE_MS);
	/* A success after re-admission: the next ejection is the first again. */
	t += 4 * RT_EJECT_BASE_MS + 100;
	assert_int_equal(outcomes(1, 1, t, t + 10, &cool), RT_H_OK);
	assert_int_equal(atomic_load(&h->ejections), 0);
	assert_int_equal(outcomes(3, 0, t + 20, t + 30, &cool), RT_H_EJECTED);
	assert_int_equal(cool, RT_EJECT_BASE_MS);
	/* A probe (started after the ejection) that succeeds re-admits. */
	assert_int_equal(outcomes(1, 1, t + 1000, t + 1200, &cool), RT_H_READMITTED);
	assert_int_equal(atomic_load(&h->ejected_until_ms), 0);
	assert_int_equal(atomic_load(&h->ejections), 0);
	/* A success interrupts a streak: 2 + ok + 2 is no ejection. */
	t += 10000;
	assert_int_equal(outcomes(2, 0, t, t + 10, &cool), RT_H_FAILED);
	assert_int_equal(outcomes(1, 1, t, t + 10, &cool), RT_H_OK);
	assert_int_equal(outcomes(2, 0, t, t + 10, &cool), RT_H_FAILED);
	/* The cap. */
	assert_int_equal(rt_eject_cool_ms(0), RT_EJECT_BASE_MS);
	assert_int_equal(rt_eject_cool_ms(3), 8 * RT_EJECT_BASE_MS);
	assert_int_equal(rt_eject_cool_ms(40), RT_EJECT_MAX_MS);
}

/*
 * Every channel of the model cooling: one probe per channel per
 * RT_PROBE_INTERVAL_MS gets through, the rest is refused (503); with a
 * channel ready no probe is taken.
 */
static void
test_probe_trickle(void **state)
{
	struct rt_candidate c[RT_MAX_CANDIDATES];
	struct rt_request rq = { .model = "m", .allowed_models = "" };
	int64_t t = 1700000000000;
	int n, seen[2] = { 0 };

	chan(0, 1, "m");
	chan(1, 2, "m");
	atomic_store(&sb_channel(&sb, 0)->hot.ejected_until_ms, t + 60000);
	/* One ready channel: the cooling one gets nothing, no probe. */
	for (int i = 0; i < 50; i++) {
		assert_int_equal(rt_candidates_at(&sb, &rq, t, c, RT_MAX_CANDIDATES, &n), RT_OK);
		assert_int_equal(n, 1);
		assert_int_equal(c[0].slot, 1);
	}
	assert_int_equal(atomic_load(&sb_channel(&sb, 0)->hot.probe_ms), 0);
	atomic_store(&sb_channel(&sb, 1)->hot.ejected_until_ms, t + 60000);
	/* Both cool: over 10 s of 100 requests a second, 10 probes each. */
	for (int64_t ms = 0; ms < 10000; ms += 10) {
		if (rt_candidates_at(&sb, &rq, t + ms, c, RT_MAX_CANDIDATES, &n) == RT_OK) {
			assert_int_equal(n, 1);
			seen[c[0].slot]++;
		} else {
			assert_int_equal(n, 0);
		}
	}
	assert_int_equal(seen[0], 10);
	assert_int_equal(seen[1], 10);
	/* A model no channel serves is still 404, not a probe. */
	rq.model = "other";
	assert_int_equal(rt_candidates_at(&sb, &rq, t + 20000, c, RT_MAX_CANDIDATES, &n), RT_NO_MODEL);
	/* Two gateways racing for one probe: one wins. */
	assert_int_equal(rt_probe_claim(&sb_channel(&sb, 0)->hot, t + 30000), 1);
	assert_int_equal(rt_probe_claim(&sb_channel(&sb, 0)->hot, t + 30000), 0);
	assert_int_equal(rt_probe_claim(&sb_channel(&sb, 0)->hot, t + 30999), 0);
	assert_int_equal(rt_probe_claim(&sb_channel(&sb, 0)->hot, t + 31000), 1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_results, setup, teardown),
		cmocka_unit_test_setup_teardown(test_least_loaded_and_fair, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ejected_skipped, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bound_stays_in_set, setup, teardown),
		cmocka_unit_test_setup_teardown(test_graded_never_below, setup, teardown),
		cmocka_unit_test_setup_teardown(test_best_follows_weights, setup, teardown),
		cmocka_unit_test_setup_teardown(test_random_tie_break, setup, teardown),
		cmocka_unit_test_setup_teardown(test_explain_terms, setup, teardown),
		cmocka_unit_test_setup_teardown(test_agent_metrics_headroom, setup, teardown),
		cmocka_unit_test_setup_teardown(test_burst_ejects_once, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cooldown_doubles_on_repeat, setup, teardown),
		cmocka_unit_test_setup_teardown(test_probe_trickle, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
