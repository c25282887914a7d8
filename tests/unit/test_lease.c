/*
 * tests/unit/test_lease: quota leases on both sides — what billing grants
 * (billing/bill_lease.c: at most BILL_LEASE_REQS estimates and half the
 * free headroom, at least one estimate; the others' sum leaves the
 * holder's own out; taken by leased reservations; gone when expired,
 * when its connection closes, or all at once) and what a gateway worker
 * takes from one (gateway/gw_lease.c: only for the model it was priced
 * for, each estimate priced as billing priced it, never past what is
 * left or its life less the margin).
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
	/* 32 estimates at most. */
	assert_int_equal(bill_lease_grant(T1, 1, 1, 100, 1000000, 0),
	    100 * BILL_LEASE_REQS);
	/* Not one more estimate: none, and the old one is given back. */
	assert_int_equal(bill_lease_grant(T1, 1, 1, 100, 150, 0), 0);
	assert_int_equal(bill_lease_others(T1, 2, 2, 0), 0);
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
test_gw_take(void **state)
{
	(void)state;
	gw_lease_drop_all();
	/* Price 1,000,000 micro-units per Mtok: an estimated token costs 1. */
	gw_lease_set(T1, "gpt-4o", 100, 2000, 1000000, 0);
	assert_int_equal(gw_lease_take(T1, "gpt-4o-mini", 10, 1), 0);
	assert_int_equal(gw_lease_take(T2, "gpt-4o", 10, 1), 0);
	assert_int_equal(gw_lease_take(T1, "gpt-4o", 60, 1), 1);
	assert_int_equal(gw_lease_take(T1, "gpt-4o", 60, 1), 0);	/* 40 left */
	assert_int_equal(gw_lease_take(T1, "gpt-4o", 40, 1), 1);
	assert_int_equal(gw_lease_take(T1, "gpt-4o", 1, 1), 0);
	/* Its life here ends before billing's. */
	gw_lease_set(T1, "gpt-4o", 100, 2000, 1000000, 0);
	assert_int_equal(gw_lease_take(T1, "gpt-4o", 1, 1749), 1);
	assert_int_equal(gw_lease_take(T1, "gpt-4o", 1, 1750), 0);
	/* A waited answer without a lease ends the one there was. */
	gw_lease_set(T1, "gpt-4o", 100, 2000, 1000000, 0);
	gw_lease_set(T1, "gpt-4o", 0, 0, 0, 0);
	assert_int_equal(gw_lease_take(T1, "gpt-4o", 1, 1), 0);
	/* Billing went away: none left. */
	gw_lease_set(T1, "gpt-4o", 100, 2000, 1000000, 0);
	gw_lease_set(T2, "gpt-4o", 100, 2000, 1000000, 0);
	gw_lease_drop_all();
	assert_int_equal(gw_lease_take(T1, "gpt-4o", 1, 1), 0);
	assert_int_equal(gw_lease_take(T2, "gpt-4o", 1, 1), 0);
	gw_lease_set(T1, "gpt-4o", 100, 2000, 1000000, 0);
	gw_lease_tick(1750);
	assert_int_equal(gw_lease_take(T1, "gpt-4o", 1, 1), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bill_grant_bounds),
		cmocka_unit_test(test_bill_others_take_expire),
		cmocka_unit_test(test_gw_take),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
