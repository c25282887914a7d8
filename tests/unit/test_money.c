/*
 * tests/unit/test_money: property tests of lib/money against an independent
 * reference, OpenSSL's arbitrary-precision BIGNUM: the component rule
 * (tokens * price + 500000) / 1000000, the sum of components, exact decimal
 * parsing and formatting.  Random cases come from a fixed seed (printed;
 * SWB_SEED=N overrides it) so that a failure can be replayed.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>

#include "lib/money.h"

#define RANDOM_CASES	200000

static uint64_t rng_state;

/* xorshift64*: small, deterministic, good enough to spread test values. */
static uint64_t
rnd(void)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 2685821657736338717ULL;
}

/* A non-negative int64 whose magnitude is spread over every bit length. */
static int64_t
rnd_i64(void)
{
	unsigned bits = (unsigned)(rnd() % 64);	/* 0..63 */
	uint64_t v = rnd();

	v = bits == 0 ? 0 : v >> (64 - bits);
	return (int64_t)v;
}

static BIGNUM *
bn_of(int64_t v)
{
	BIGNUM *b = BN_new();

	assert_non_null(b);
	assert_true(v >= 0);
	assert_int_equal(BN_set_word(b, (BN_ULONG)v), 1);
	return b;
}

/*
 * Reference for one component, added to acc (which may be NULL):
 * acc += (t * p + 500000) / 1000000, in BIGNUM.
 */
static void
ref_component(BIGNUM *acc, int64_t t, int64_t p, BIGNUM *out)
{
	BN_CTX *ctx = BN_CTX_new();
	BIGNUM *bt = bn_of(t), *bp = bn_of(p), *half = bn_of(500000),
	    *scale = bn_of(1000000), *prod = BN_new();

	assert_non_null(ctx);
	assert_non_null(prod);
	assert_int_equal(BN_mul(prod, bt, bp, ctx), 1);
	assert_int_equal(BN_add(prod, prod, half), 1);
	assert_int_equal(BN_div(out, NULL, prod, scale, ctx), 1);
	if (acc != NULL)
		assert_int_equal(BN_add(acc, acc, out), 1);
	BN_free(bt);
	BN_free(bp);
	BN_free(half);
	BN_free(scale);
	BN_free(prod);
	BN_CTX_free(ctx);
}

/* 1 when b fits an int64 (b >= 0 here), its value in *v. */
static int
bn_fits(const BIGNUM *b, int64_t *v)
{
	BIGNUM *max = bn_of(INT64_MAX);
	int fits = BN_cmp(b, max) <= 0;

	BN_free(max);
	if (fits)
		*v = (int64_t)BN_get_word(b);
	return fits;
}

static void
check_component(int64_t t, int64_t p)
{
	BIGNUM *r = BN_new();
	int64_t want = 0, got = -7;
	int rc;

	assert_non_null(r);
	ref_component(NULL, t, p, r);
	rc = money_component(t, p, &got);
	if (bn_fits(r, &want)) {
		if (rc != 0 || got != want)
			fail_msg("money_component(%" PRId64 ", %" PRId64 ") = %d/%"
			    PRId64 ", reference %" PRId64, t, p, rc, got, want);
	} else {
		if (rc != -1 || got != -7)
			fail_msg("money_component(%" PRId64 ", %" PRId64 ") = %d/%"
			    PRId64 ": should refuse (result > INT64_MAX)", t, p,
			    rc, got);
	}
	BN_free(r);
}

static void
test_component_edges(void **state)
{
	static const int64_t v[] = { 0, 1, 2, 3, 499999, 500000, 500001,
	    999999, 1000000, 1000001, 1999999, 2000000, 4611686018427387904LL,
	    9223372036854LL, 9223372036855LL, 9223372036854775LL,
	    9223372036854776LL, INT64_MAX / 1000000, INT64_MAX / 2,
	    INT64_MAX - 1, INT64_MAX, 3037000499LL, 3037000500LL,
	    9223372036854275807LL, 9223372036854275808LL };
	size_t n = sizeof(v) / sizeof(v[0]);
	int64_t c = 42;

	(void)state;
	for (size_t i = 0; i < n; i++)
		for (size_t j = 0; j < n; j++)
			check_component(v[i], v[j]);
	/* Rounding, spelled out: half a micro-unit rounds up. */
	assert_int_equal(money_component(1, 499999, &c), 0);
	assert_true(c == 0);
	assert_int_equal(money_component(1, 500000, &c), 0);
	assert_true(c == 1);
	assert_int_equal(money_component(1, 1499999, &c), 0);
	assert_true(c == 1);
	assert_int_equal(money_component(1, 1500000, &c), 0);
	assert_true(c == 2);
	assert_int_equal(money_component(1000000, 2500000, &c), 0);
	assert_true(c == 2500000);
	/* The largest tokens * price that still fits, and one more. */
	assert_int_equal(money_component(1000000, INT64_MAX, &c), 0);
	assert_true(c == INT64_MAX);
	assert_int_equal(money_component(1000001, INT64_MAX, &c), -1);
	/* Negative inputs are refused, the output untouched. */
	c = 42;
	assert_int_equal(money_component(-1, 1, &c), -1);
	assert_int_equal(money_component(1, -1, &c), -1);
	assert_int_equal(money_component(INT64_MIN, INT64_MIN, &c), -1);
	assert_true(c == 42);
}

static void
test_component_random(void **state)
{
	(void)state;
	for (int i = 0; i < RANDOM_CASES; i++) {
		int64_t t = rnd_i64(), p = rnd_i64();

		check_component(t, p);
		/* Near the half-micro boundary: t * p ~ k * 1e6 + 500000. */
		if (p > 0 && i % 4 == 0) {
			int64_t k = rnd_i64() % 100000000;

			check_component(k * 1000000 + 499999, 1);
			check_component(k * 1000000 + 500000, 1);
			check_component(k * 1000000 + 500001, 1);
		}
	}
}

/* money_cost against the BIGNUM sum of the reference components. */
static void
check_cost(const int64_t *t, const int64_t *p, size_t n)
{
	BIGNUM *acc = bn_of(0), *one = BN_new();
	int64_t want = 0, got = -7;
	int rc, fits = 1;

	assert_non_null(one);
	for (size_t i = 0; i < n; i++) {
		int64_t tmp;

		ref_component(acc, t[i], p[i], one);
		if (!bn_fits(one, &tmp))
			fits = 0;
	}
	if (fits)
		fits = bn_fits(acc, &want);
	rc = money_cost(t, p, n, &got);
	if (fits) {
		if (rc != 0 || got != want)
			fail_msg("money_cost(n=%zu) = %d/%" PRId64 ", reference %"
			    PRId64, n, rc, got, want);
	} else if (rc != -1 || got != -7)
		fail_msg("money_cost(n=%zu) = %d/%" PRId64 ": should refuse",
		    n, rc, got);
	BN_free(acc);
	BN_free(one);
}

static void
test_cost(void **state)
{
	int64_t t[4] = { 0 }, p[4] = { 0 }, c = 42;

	(void)state;
	assert_int_equal(money_cost(t, p, 0, &c), 0);
	assert_true(c == 0);
	/* 1000 input at 2.5/M, 500 output at 10/M: 2500 + 5000 micro-units. */
	t[0] = 1000, p[0] = 2500000, t[1] = 500, p[1] = 10000000;
	assert_int_equal(money_cost(t, p, 2, &c), 0);
	assert_true(c == 7500);
	/* Each component rounds on its own: 0.5 + 0.5 micro -> 1 + 1. */
	t[0] = 1, p[0] = 500000, t[1] = 1, p[1] = 500000;
	assert_int_equal(money_cost(t, p, 2, &c), 0);
	assert_true(c == 2);
	/* Two halves of INT64_MAX fit; one micro-unit more does not. */
	t[0] = 1000000, p[0] = INT64_MAX / 2;
	t[1] = 1000000, p[1] = INT64_MAX / 2 + 1;
	assert_int_equal(money_cost(t, p, 2, &c), 0);
	assert_true(c == INT64_MAX);
	t[2] = 1, p[2] = 500000;
	c = 42;
	assert_int_equal(money_cost(t, p, 3, &c), -1);
	assert_true(c == 42);
	t[2] = -1, p[2] = 0;
	assert_int_equal(money_cost(t, p, 3, &c), -1);
	for (int i = 0; i < RANDOM_CASES / 4; i++) {
		size_t n = (size_t)(rnd() % 5);

		for (size_t k = 0; k < n; k++) {
			t[k] = rnd_i64();
			p[k] = rnd_i64();
		}
		check_cost(t, p, n);
	}
}

/*
 * money_usage_cost: the components are written out here again (uncached
 * input = input - cached - cache_write, never below 0) and priced by the
 * BIGNUM reference.
 */
static void
test_usage_cost(void **state)
{
	struct money_prices mp = { .input = 2500000, .output = 10000000,
	    .cached_input = 1250000, .cache_write = 3000000 };
	int64_t c = 42;

	(void)state;
	/* 1000 in (200 cached), 100 out: 800*2.5 + 200*1.25 + 100*10 = 3250 */
	assert_int_equal(money_usage_cost(&mp, 1000, 100, 200, 0, &c), 0);
	assert_true(c == 3250);
	/* More cached than input (a provider's rounding): uncached is 0. */
	assert_int_equal(money_usage_cost(&mp, 10, 0, 20, 0, &c), 0);
	assert_true(c == 25);
	c = 42;
	assert_int_equal(money_usage_cost(&mp, -1, 0, 0, 0, &c), -1);
	assert_int_equal(money_usage_cost(NULL, 1, 0, 0, 0, &c), -1);
	assert_true(c == 42);
	for (int i = 0; i < RANDOM_CASES / 4; i++) {
		int64_t in = rnd_i64() % 4000000000000LL, out = rnd_i64(),
		    cached = rnd_i64() % (in + 1), cw = rnd_i64() % (in + 1);
		int64_t t[4], p[4], unc, ref, got = -7;
		BIGNUM *acc = bn_of(0), *one = BN_new();
		int fits = 1;

		assert_non_null(one);
		mp.input = rnd_i64();
		mp.output = rnd_i64();
		mp.cached_input = rnd_i64();
		mp.cache_write = rnd_i64();
		unc = in - cached - cw;
		t[0] = unc < 0 ? 0 : unc, p[0] = mp.input;
		t[1] = cached, p[1] = mp.cached_input;
		t[2] = cw, p[2] = mp.cache_write;
		t[3] = out, p[3] = mp.output;
		for (int k = 0; k < 4; k++) {
			int64_t tmp;
			ref_component(acc, t[k], p[k], one);
			fits &= bn_fits(one, &tmp);
		}
		fits = fits && bn_fits(acc, &ref);
		if (fits) {
			if (money_usage_cost(&mp, in, out, cached, cw, &got) != 0 ||
			    got != ref)
				fail_msg("money_usage_cost(%" PRId64 ", %" PRId64 ", %"
				    PRId64 ", %" PRId64 ") = %" PRId64 ", reference %"
				    PRId64, in, out, cached, cw, got, ref);
		} else if (money_usage_cost(&mp, in, out, cached, cw, &got) != -1)
			fail_msg("money_usage_cost should refuse an overflow");
		BN_free(acc);
		BN_free(one);
	}
}

static void
test_format(void **state)
{
	char b[64];

	(void)state;
	money_format(0, b, sizeof(b));
	assert_string_equal(b, "0.000000");
	money_format(1, b, sizeof(b));
	assert_string_equal(b, "0.000001");
	money_format(2500000, b, sizeof(b));
	assert_string_equal(b, "2.500000");
	money_format(-1, b, sizeof(b));
	assert_string_equal(b, "-0.000001");
	money_format(-1000000, b, sizeof(b));
	assert_string_equal(b, "-1.000000");
	money_format(-2500001, b, sizeof(b));
	assert_string_equal(b, "-2.500001");
	money_format(INT64_MAX, b, sizeof(b));
	assert_string_equal(b, "9223372036854.775807");
	money_format(INT64_MIN, b, sizeof(b));
	assert_string_equal(b, "-9223372036854.775808");
	money_format(INT64_MIN + 1, b, sizeof(b));
	assert_string_equal(b, "-9223372036854.775807");
	/* A short buffer is truncated, never overrun. */
	memset(b, 'x', sizeof(b));
	money_format(INT64_MAX, b, 5);
	assert_string_equal(b, "9223");
	assert_true(b[5] == 'x');
}

/* The reference formatting: BIGNUM's decimal, the point put in by hand. */
static void
ref_format(int64_t m, char *out, size_t len)
{
	BIGNUM *b = bn_of(m);
	char *dec = BN_bn2dec(b), pad[32];
	size_t n;

	assert_non_null(dec);
	snprintf(pad, sizeof(pad), "%07d", 0);
	n = strlen(dec);
	if (n < 7) {
		memcpy(pad + 7 - n, dec, n);
		pad[7] = '\0';
	} else
		snprintf(pad, sizeof(pad), "%s", dec);
	n = strlen(pad);
	snprintf(out, len, "%.*s.%s", (int)(n - 6), pad, pad + n - 6);
	OPENSSL_free(dec);
	BN_free(b);
}

static void
test_roundtrip_random(void **state)
{
	char got[64], want[64];
	int64_t m, back;

	(void)state;
	for (int i = 0; i < RANDOM_CASES; i++) {
		m = i == 0 ? INT64_MAX : rnd_i64();
		money_format(m, got, sizeof(got));
		ref_format(m, want, sizeof(want));
		if (strcmp(got, want) != 0)
			fail_msg("money_format(%" PRId64 ") = %s, reference %s",
			    m, got, want);
		back = -7;
		if (money_parse(got, &back) != 0 || back != m)
			fail_msg("money_parse(\"%s\") = %" PRId64 ", want %" PRId64,
			    got, back, m);
		/* Negative values format with a sign and parse is refused. */
		if (m > 0) {
			money_format(-m, got, sizeof(got));
			if (got[0] != '-' || strcmp(got + 1, want) != 0)
				fail_msg("money_format(%" PRId64 ") = %s", -m, got);
			assert_int_equal(money_parse(got, &back), -1);
		}
	}
}

/*
 * Random decimal strings (1..21 whole digits, 0..7 decimals) parsed by
 * money_parse and by BIGNUM: equal, or refused exactly when the reference
 * says the amount does not fit or has more than 6 decimals.
 */
static void
test_parse_random(void **state)
{
	char s[64], digits[64];
	BIGNUM *ref = NULL;
	int64_t want, got;

	(void)state;
	for (int i = 0; i < RANDOM_CASES; i++) {
		int w = 1 + (int)(rnd() % 21), f = (int)(rnd() % 8), n = 0, k;
		int fits;

		for (k = 0; k < w; k++)
			s[n++] = (char)('0' + (k == 0 && w > 1 && rnd() % 4 ?
			    1 + rnd() % 9 : rnd() % 10));
		if (f > 0) {
			s[n++] = '.';
			for (k = 0; k < f; k++)
				s[n++] = (char)('0' + rnd() % 10);
		}
		s[n] = '\0';
		/* digits: the whole part then exactly 6 decimals. */
		snprintf(digits, sizeof(digits), "%.*s%.*s%.*s", w, s,
		    f > 6 ? 6 : f, f > 0 ? s + w + 1 : "", 6 - (f > 6 ? 6 : f),
		    "000000");
		assert_true(BN_dec2bn(&ref, digits) > 0);
		fits = f <= 6 && bn_fits(ref, &want);
		got = -7;
		if (fits) {
			if (money_parse(s, &got) != 0 || got != want)
				fail_msg("money_parse(\"%s\") = %" PRId64 ", reference %"
				    PRId64, s, got, want);
		} else if (money_parse(s, &got) != -1 || got != -7)
			fail_msg("money_parse(\"%s\") = %" PRId64 ": should refuse",
			    s, got);
	}
	BN_free(ref);
}

static void
test_parse_refusals(void **state)
{
	static const char *const bad[] = { "", ".", "1.", ".5", "-1", "+1",
	    "-0", "1e3", "1E3", " 1", "1 ", "1.1234567", "0.0000001", "abc",
	    "1,5", "1..2", "1.2.3", "0x10", "\xd9\xa1", "1\n", "9223372036854.775808",
	    "9223372036855", "99999999999999999999", "18446744073709551616",
	    "100000000000000000000000000000", "inf", "nan", NULL };
	int64_t v = 42;

	(void)state;
	for (const char *const *p = bad; *p != NULL; p++)
		if (money_parse(*p, &v) != -1)
			fail_msg("money_parse(\"%s\") accepted: %" PRId64, *p, v);
	assert_true(v == 42);
	assert_int_equal(money_parse(NULL, &v), -1);
	/* The edges that must pass. */
	assert_int_equal(money_parse("0", &v), 0);
	assert_true(v == 0);
	assert_int_equal(money_parse("0.000001", &v), 0);
	assert_true(v == 1);
	assert_int_equal(money_parse("2.5", &v), 0);
	assert_true(v == 2500000);
	assert_int_equal(money_parse("007.10", &v), 0);
	assert_true(v == 7100000);
	assert_int_equal(money_parse("9223372036854.775807", &v), 0);
	assert_true(v == INT64_MAX);
	assert_int_equal(money_parse("9223372036854", &v), 0);
	assert_true(v == 9223372036854000000LL);
	assert_int_equal(money_parse("0000000000000000000000001", &v), 0);
	assert_true(v == 1000000);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_component_edges),
		cmocka_unit_test(test_component_random),
		cmocka_unit_test(test_cost),
		cmocka_unit_test(test_usage_cost),
		cmocka_unit_test(test_format),
		cmocka_unit_test(test_roundtrip_random),
		cmocka_unit_test(test_parse_random),
		cmocka_unit_test(test_parse_refusals),
	};
	const char *seed = getenv("SWB_SEED");

	rng_state = seed != NULL && *seed != '\0' ?
	    strtoull(seed, NULL, 10) : 20261126ULL;
	if (rng_state == 0)
		rng_state = 1;
	printf("test_money: seed %" PRIu64 " (SWB_SEED=N to replay)\n",
	    rng_state);
	fflush(stdout);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
