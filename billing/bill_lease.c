/*
 * billing/bill_lease: quota leases — parts of a token's headroom (quota
 * minus used) set aside, in this process's memory, for one gateway
 * connection, so that its next reservations for the token go unwaited.
 *
 * A gateway worker asks for a lease with one reservation it waits for at
 * a time (IPC_CHARGE_F_LEASE_OK): that reservation first gives back what
 * is left of the connection's lease (the gateway zeroed its side when it
 * asked), is checked, and may come back with a new lease: at most
 * BILL_LEASE_REQS times its estimate and at most half of the headroom the
 * other connections' leases leave, and only when that covers one more
 * estimate.  The gateway then relays the token's next requests at once,
 * taking each estimate from the lease (IPC_CHARGE_F_LEASED), until it
 * runs out or BILL_LEASE_MS passed; then it asks again.  Both sides take
 * the same amounts in the same order (billing reads the connection in
 * order, and nothing is taken while an ask is out), so they agree on what
 * is left.  Every reservation, leased or not, is still recorded and
 * checked here in order: a leased one against the quota less the other
 * connections' leases, any other against the quota less every lease (its
 * own connection's included: a reservation the gateway took nothing
 * from, a video job's or a Realtime response's, leaves the lease alone).
 * So used plus every live lease never passes the quota, and leases never
 * let a token overrun it.  A leased reservation moves its estimate from
 * the lease to used.
 *
 * What can be lost: leases live only here.  Billing restarting drops them
 * all (the gateways drop theirs when billing.sock goes down); a leased
 * reservation lost with that connection is made again by its post, as an
 * unwaited one is (billing/bill_charge.c).  A gateway connection that
 * closes drops its leases; an expired lease is dropped when next looked
 * at and by the tick.  A quota lowered or a token disabled while a lease
 * is live lets that lease's holder go on for at most BILL_LEASE_MS (a
 * disabled token stops within the gateways' token cache TTL anyway): the
 * documented allowance, at most one lease per gateway worker.
 *
 * Looked up per reservation: tokens hashed into TOK_BUCKETS chains, each
 * token's holders a small array (one per gateway worker at most).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "billing/bill.h"
#include "lib/log.h"

#define TOK_BUCKETS	1024
#define LEASE_HOLDERS	16	/* connections holding one token's leases */

struct holder {
	uint32_t slot, serial;	/* the gateway's billing.sock client */
	int64_t left;		/* micro-units not yet taken */
	int64_t until_ms;	/* monotonic: dropped after */
};

struct tok {
	struct tok *next;
	uint64_t token_id;
	int n;
	struct holder h[LEASE_HOLDERS];
};

static struct tok *buckets[TOK_BUCKETS];

static unsigned
bucket_of(uint64_t token_id)
{
	token_id ^= token_id >> 33;
	token_id *= 0xff51afd7ed558ccdULL;
	token_id ^= token_id >> 33;
	return (unsigned)(token_id % TOK_BUCKETS);
}

static struct tok *
tok_find(uint64_t token_id)
{
	for (struct tok *t = buckets[bucket_of(token_id)]; t != NULL;
	    t = t->next)
		if (t->token_id == token_id)
			return t;
	return NULL;
}

static void
tok_unlink(struct tok *t)
{
	struct tok **pp = &buckets[bucket_of(t->token_id)];

	while (*pp != t)
		pp = &(*pp)->next;
	*pp = t->next;
	free(t);
}

/* Drop t's expired holders (and t when none is left): 1 when t is gone. */
static int
tok_expire(struct tok *t, int64_t now_ms)
{
	for (int i = 0; i < t->n; )
		if (t->h[i].until_ms <= now_ms || t->h[i].left <= 0)
			t->h[i] = t->h[--t->n];
		else
			i++;
	if (t->n == 0) {
		tok_unlink(t);
		return 1;
	}
	return 0;
}

static struct holder *
holder_of(struct tok *t, uint32_t slot, uint32_t serial)
{
	for (int i = 0; i < t->n; i++)
		if (t->h[i].slot == slot && t->h[i].serial == serial)
			return &t->h[i];
	return NULL;
}

int64_t
bill_lease_others(uint64_t token_id, uint32_t slot, uint32_t serial,
    int64_t now_ms)
{
	struct tok *t = tok_find(token_id);
	int64_t sum = 0;

	if (t == NULL || tok_expire(t, now_ms))
		return 0;
	for (int i = 0; i < t->n; i++)
		if (t->h[i].slot != slot || t->h[i].serial != serial)
			sum += t->h[i].left;
	return sum;
}

/* (slot, serial)'s live holder of token_id's lease, NULL when it holds
 * none (expired ones are dropped first); *tp the token's entry, NULL when
 * no lease of it is left. */
static struct holder *
live_holder(uint64_t token_id, uint32_t slot, uint32_t serial,
    int64_t now_ms, struct tok **tp)
{
	struct tok *t = tok_find(token_id);

	if (t != NULL && tok_expire(t, now_ms))
		t = NULL;
	*tp = t;
	return t != NULL ? holder_of(t, slot, serial) : NULL;
}

int64_t
bill_lease_own(uint64_t token_id, uint32_t slot, uint32_t serial,
    int64_t now_ms)
{
	struct tok *t;
	struct holder *h = live_holder(token_id, slot, serial, now_ms, &t);

	return h != NULL ? h->left : 0;
}

/* Take est (all of it: the ask's give-back) from (slot, serial)'s lease;
 * an empty lease goes. */
static void
take(uint64_t token_id, uint32_t slot, uint32_t serial, int64_t est,
    int64_t now_ms)
{
	struct tok *t;
	struct holder *h = live_holder(token_id, slot, serial, now_ms, &t);

	if (h == NULL)
		return;		/* gone (expired): the reservation is checked
				 * against the quota alone */
	h->left = est < h->left ? h->left - est : 0;
	(void)tok_expire(t, now_ms);
}

void
bill_lease_release(uint64_t token_id, uint32_t slot, uint32_t serial,
    int64_t now_ms)
{
	take(token_id, slot, serial, INT64_MAX, now_ms);
}

void
bill_lease_take(uint64_t token_id, uint32_t slot, uint32_t serial,
    int64_t est, int64_t now_ms)
{
	take(token_id, slot, serial, est, now_ms);
}

int64_t
bill_lease_grant(uint64_t token_id, uint32_t slot, uint32_t serial,
    int64_t est, int64_t free_micros, int64_t now_ms)
{
	struct tok *t;
	struct holder *h;
	int64_t target, own;

	if (est <= 0 || free_micros <= 0)
		return 0;
	target = free_micros / 2;
	if (est <= INT64_MAX / BILL_LEASE_REQS &&
	    target > est * BILL_LEASE_REQS)
		target = est * BILL_LEASE_REQS;
	if (target < est)
		return 0;	/* not even one more request */
	/* The ask gave the old lease back (bill_lease_release); should
	 * one be left, it is topped up, and the answer says by how much. */
	h = live_holder(token_id, slot, serial, now_ms, &t);
	own = h != NULL ? h->left : 0;
	if (own >= target)
		return 0;
	if (t == NULL) {
		unsigned b = bucket_of(token_id);

		if ((t = calloc(1, sizeof(*t))) == NULL)
			return 0;
		t->token_id = token_id;
		t->next = buckets[b];
		buckets[b] = t;
	}
	if (h == NULL) {
		if (t->n == LEASE_HOLDERS)
			return 0;	/* more gateway workers than holders */
		h = &t->h[t->n++];
		h->slot = slot;
		h->serial = serial;
	}
	h->left = target;
	h->until_ms = now_ms + BILL_LEASE_MS;
	return target - own;
}

/* Drop, in every token's entry, the leases of the connection (slot,
 * serial) (match 1), of every connection (match 2), or none (match 0);
 * then every lease expired by now_ms. */
static void
sweep(int match, uint32_t slot, uint32_t serial, int64_t now_ms)
{
	for (int b = 0; b < TOK_BUCKETS; b++) {
		struct tok *t = buckets[b], *next;

		for (; t != NULL; t = next) {
			next = t->next;
			for (int i = 0; match != 0 && i < t->n; i++)
				if (match == 2 || (t->h[i].slot == slot &&
				    t->h[i].serial == serial))
					t->h[i].left = 0;
			(void)tok_expire(t, now_ms);
		}
	}
}

void
bill_lease_drop_client(uint32_t slot, uint32_t serial)
{
	sweep(1, slot, serial, INT64_MIN);
}

void
bill_lease_drop_all(void)
{
	sweep(2, 0, 0, INT64_MIN);
}

void
bill_lease_tick(int64_t now_ms)
{
	sweep(0, 0, 0, now_ms);
}
