/*
 * tests/unit/test_lease: quota leases on both sides — what billing grants
 * (billing/bill_lease.c: a lease topped up to at most BILL_LEASE_REQS
 * estimates and half the free headroom, at least one estimate, the answer
 * saying how much was added; the others' sum leaves the holder's own out;
 * taken by leased reservations; gone when expired, when its connection
 * closes, or all at once) and what a gateway worker takes from one
 * (gateway/gw_lease.c: one ask out at a time, which gives the rest back;
 * only the ask's answer brings a lease; only for the model it was priced
 * for, each estimate priced as billing priced it, never past what is
 * left or its life less the margin, never while an ask is out).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "billing/bill.h"
#include "gateway/gw.h"

#define T1	11u
#define T2	12u

static void
test_bill_grant_bounds(void **state)
{
	(void)state;
	bill_lease_drop_all();
	/* Half the free headroom, when that is under 32 estimates. */
	assert_int_equal(bill_lease_grant(T1, 1, 1, 100, 1000, 0), 500);
	/* Topped up to 32 estimates at most: what is added is said. */
	assert_int_equal(bill_lease_grant(T1, 1, 1, 100, 1000000, 0),
	    100 * BILL_LEASE_REQS - 500);
	assert_int_equal(bill_lease_others(T1, 2, 2, 0), 100 * BILL_LEASE_REQS);
	/* Holding as much as it would get, or not one more estimate: nothing
	 * added, and the lease stays as it was. */
	assert_int_equal(bill_lease_grant(T1, 1, 1, 100, 1000, 0), 0);
	assert_int_equal(bill_lease_grant(T1, 1, 1, 100, 150, 0), 0);
	assert_int_equal(bill_lease_others(T1, 2, 2, 0), 100 * BILL_LEASE_REQS);
	/* Taken from, then topped up: the two sides agree. */
	bill_lease_take(T1, 1, 1, 3000, 1);
	assert_int_equal(bill_lease_grant(T1, 1, 1, 100, 1000000, 1), 3000);
	assert_int_equal(bill_lease_others(T1, 2, 2, 1), 100 * BILL_LEASE_REQS);
	assert_int_equal(bill_lease_grant(T1, 1, 1, 0, 1000, 0), 0);
	assert_int_equal(bill_lease_grant(T1, 1, 1, 100, 0, 0), 0);
	assert_int_equal(bill_lease_grant(T1, 1, 1, 100, -5, 0), 0);
}

static void
test_bill_others_take_expire(void **state)
{
	(void)state;
	bill_lease_drop_all();
	assert_int_equal(bill_lease_grant(T1, 1, 1, 10, 600, 0), 300);
	assert_int_equal(bill_lease_grant(T1, 2, 7, 10, 200, 0), 100);
	assert_int_equal(bill_lease_grant(T2, 2, 7, 10, 200, 0), 100);
	/* Each connection sees the other's, never its own; a reused slot
	 * (another serial) is another connection. */
	assert_int_equal(bill_lease_others(T1, 1, 1, 1), 100);
	assert_int_equal(bill_lease_others(T1, 2, 7, 1), 300);
	assert_int_equal(bill_lease_others(T1, 2, 8, 1), 400);
	/* A leased reservation comes out of its own lease only. */
	bill_lease_take(T1, 1, 1, 120, 1);
	assert_int_equal(bill_lease_others(T1, 2, 7, 1), 180);
	bill_lease_take(T1, 1, 1, 1000, 1);	/* past it: empty, gone */
	assert_int_equal(bill_lease_others(T1, 2, 7, 1), 0);
	/* Expired: gone. */
	assert_int_equal(bill_lease_others(T1, 1, 1, BILL_LEASE_MS - 1), 100);
	assert_int_equal(bill_lease_others(T1, 1, 1, BILL_LEASE_MS), 0);
	/* A closed connection's leases go; the others' stay. */
	assert_int_equal(bill_lease_grant(T1, 1, 1, 10, 600, 0), 300);
	bill_lease_drop_client(2, 7);
	assert_int_equal(bill_lease_others(T2, 1, 1, 1), 0);
	assert_int_equal(bill_lease_others(T1, 2, 7, 1), 300);
	bill_lease_tick(BILL_LEASE_MS);
	assert_int_equal(bill_lease_others(T1, 2, 7, 0), 0);
}

static void
test_bill_own_release(void **state)
{
	(void)state;
	bill_lease_drop_all();
	assert_int_equal(bill_lease_grant(T1, 1, 1, 10, 600, 0), 300);
	assert_int_equal(bill_lease_own(T1, 1, 1, 1), 300);
	assert_int_equal(bill_lease_own(T1, 1, 2, 1), 0);
	bill_lease_take(T1, 1, 1, 40, 1);
	assert_int_equal(bill_lease_own(T1, 1, 1, 1), 260);
	/* An ask gives the rest back: the next grant is the whole target. */
	bill_lease_release(T1, 1, 1, 2);
	assert_int_equal(bill_lease_own(T1, 1, 1, 2), 0);
	assert_int_equal(bill_lease_others(T1, 9, 9, 2), 0);
	assert_int_equal(bill_lease_grant(T1, 1, 1, 10, 400, 2), 200);
	assert_int_equal(bill_lease_own(T1, 1, 1, BILL_LEASE_MS + 2), 0);
}

static void
test_gw_take(void **state)
{
	(void)state;
	gw_lease_drop_all();
	/* No lease: nothing to take; an ask goes out, one at a time. */
	assert_int_equal(gw_lease_take(T1, "gpt-4o", 10, 0), 0);
	assert_int_equal(gw_lease_ask(T1, "gpt-4o", 100), 1);
	assert_int_equal(gw_lease_ask(T1, "gpt-4o", 101), 0);
	/* Another reservation's answer is not the ask's. */
	gw_lease_answer(T1, 101, 100, 2000, 1000000, 0);
	assert_int_equal(gw_lease_take(T1, "gpt-4o", 10, 1), 0);
	/* Price 1,000,000 micro-units per Mtok: an estimated token costs 1. */
	gw_lease_answer(T1, 100, 100, 2000, 1000000, 0);
	assert_int_equal(gw_lease_take(T1, "gpt-4o-mini", 10, 1), 0);
	assert_int_equal(gw_lease_take(T2, "gpt-4o", 10, 1), 0);
	assert_int_equal(gw_lease_take(T1, "gpt-4o", 60, 1), 1);
	assert_int_equal(gw_lease_take(T1, "gpt-4o", 60, 1), 0);	/* 40 left */
	assert_int_equal(gw_lease_take(T1, "gpt-4o", 40, 1), 1);
	assert_int_equal(gw_lease_take(T1, "gpt-4o", 1, 1), 0);
	/* An ask gives the rest back and nothing is taken while it is out;
	 * an answer without a lease leaves nothing. */
	gw_lease_answer(T1, 100, 100, 2000, 1000000, 0);	/* answered */
	assert_int_equal(gw_lease_take(T1, "gpt-4o", 1, 1), 0);
	assert_int_equal(gw_lease_ask(T1, "gpt-4o", 102), 1);
	assert_int_equal(gw_lease_take(T1, "gpt-4o", 1, 1), 0);
	gw_lease_answer(T1, 102, 0, 0, 0, 1);
	assert_int_equal(gw_lease_take(T1, "gpt-4o", 1, 1), 0);
	/* Its life here ends before billing's. */
	assert_int_equal(gw_lease_ask(T1, "gpt-4o", 103), 1);
	gw_lease_answer(T1, 103, 100, 2000, 1000000, 0);
	assert_int_equal(gw_lease_take(T1, "gpt-4o", 1, 1749), 1);
	assert_int_equal(gw_lease_take(T1, "gpt-4o", 1, 1750), 0);
	/* The tick drops ended leases, never an ask that is out; billing
	 * going away drops everything. */
	gw_lease_tick(5000);
	assert_int_equal(gw_lease_ask(T1, "gpt-4o", 104), 1);
	gw_lease_tick(10000);
	assert_int_equal(gw_lease_ask(T1, "gpt-4o", 105), 0);
	gw_lease_drop_all();
	assert_int_equal(gw_lease_ask(T1, "gpt-4o", 106), 1);
	gw_lease_answer(T1, 106, 100, 2000, 1000000, 0);
	assert_int_equal(gw_lease_ask(T2, "gpt-4o", 107), 1);
	gw_lease_answer(T2, 107, 100, 2000, 1000000, 0);
	gw_lease_drop_all();
	assert_int_equal(gw_lease_take(T1, "gpt-4o", 1, 1), 0);
	assert_int_equal(gw_lease_take(T2, "gpt-4o", 1, 1), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bill_grant_bounds),
		cmocka_unit_test(test_bill_others_take_expire),
		cmocka_unit_test(test_bill_own_release),
		cmocka_unit_test(test_gw_take),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
