/*
 * billing/bill_charge: reserving against tokens' quotas for the gateways
 * (IPC_CHARGE_RESERVE on billing.sock); posts are billing/bill_ledger.c.
 *
 * The rule:
 *   - before the relay, the gateway reserves an estimate: its lib/tokest
 *     token estimate priced at the larger of the model's latest input and
 *     output prices.  The reservation is refused (429 insufficient_quota)
 *     unless used + estimate <= quota.  A token without a quota cannot
 *     be refused for want of it: its gateway relays without waiting for
 *     the answer (IPC_CHARGE_F_UNWAITED, not answered), and the
 *     reservation is still recorded here, in order, before the request's
 *     post: a row of 0 (store_charge_reserve_unlimited), as nothing is
 *     held against an unlimited quota — or, when the token got a quota
 *     since, as any other, a refusal being logged.  A reservation its
 *     gateway waits for (a token never charged, or a backlog to billing)
 *     is recorded the same way when the token is still unlimited
 *     (IPC_CHARGE_F_UNLIMITED), and answered.  A token with a quota is
 *     checked against it less what other gateway connections hold in
 *     quota leases (billing/bill_lease.c); a reservation waited for may
 *     come back with a lease of its own, from which the gateway's next
 *     reservations go unwaited (IPC_CHARGE_F_LEASED), checked the same
 *     way, a refusal only logged;
 *   - at the end, the real cost replaces the reservation
 *     (billing/bill_ledger.c says whose usage and which price); it is
 *     charged even if it overruns the quota — the documented overrun
 *     allowance is a request's real cost beyond its reservation.  A
 *     request that served nothing (an error before any byte) is voided;
 *   - a model without a price costs 0 (estimate and amount);
 *   - settlement is idempotent by request id; the store commits before
 *     billing answers.
 */
#include <stdio.h>
#include <string.h>
#include "billing/bill.h"
#include "lib/clock.h"
#include "lib/log.h"
#include "lib/money.h"

void
bill_charge_reserve(const struct msg_client *c, uint64_t reqid,
    const struct ipc_charge_reserve *q, struct ipc_charge_result *r)
{
	struct store_price pr;
	char key[40], model[sizeof(q->model)];
	int64_t est = 0, price = 0, held, headroom, now;
	int rc;

	memset(r, 0, sizeof(*r));
	r->token_id = q->token_id;
	ipc_charge_key(q->nonce, reqid, key, sizeof(key));
	if (q->flags & (IPC_CHARGE_F_UNWAITED | IPC_CHARGE_F_UNLIMITED)) {
		/* Still unlimited: the row alone.  Otherwise as any other. */
		rc = store_charge_reserve_unlimited(bill_store, q->token_id,
		    key);
		if (rc == 0) {
			r->status = IPC_CHARGE_OK;
			return;
		}
		if (rc == -1)
			log_rwarn(reqid, "charge reserve: %s",
			    store_errmsg(bill_store));
	}
	memcpy(model, q->model, sizeof(model));
	model[sizeof(model) - 1] = '\0';
	rc = model[0] ? bill_price_get(model, 0, &pr) : 1;
	if (rc == -1) {
		log_rwarn(reqid, "charge reserve: price of %s: %s", model,
		    store_errmsg(bill_store));
		r->status = IPC_CHARGE_ERROR;
		return;
	}
	if (rc == 0) {
		struct money_prices mp;
		struct money_units un;

		price = pr.input > pr.output ? pr.input : pr.output;
		if (money_component(q->est_tokens < 0 ? 0 : q->est_tokens, price,
		    &est) != 0) {
			r->status = IPC_CHARGE_INSUFFICIENT;	/* beyond int64 */
			return;
		}
		/* A video job: its seconds at the model's price per second. */
		memset(&mp, 0, sizeof(mp));
		memset(&un, 0, sizeof(un));
		mp.video_second = pr.video_second;
		un.video_seconds = q->est_video_seconds < 0 ? 0 :
		    q->est_video_seconds;
		if (un.video_seconds > 0) {
			int64_t v;
			if (money_usage_cost_units(&mp, 0, 0, 0, 0, &un, &v) != 0 ||
			    v > INT64_MAX - est) {
				r->status = IPC_CHARGE_INSUFFICIENT;
				return;
			}
			est += v;
		}
	}
	r->estimate_micros = est;
	/* Quota leases (bill_lease.c): a leased reservation comes out of
	 * this connection's lease, an ask gives it back first, any other
	 * reservation leaves it alone; none touches another connection's.
	 * A gateway's deferred connection spends the lease its other one
	 * was granted (lib/msgsrv.h). */
	c = msg_srv_sibling(c);
	now = clock_mono_ms();
	if (q->flags & IPC_CHARGE_F_LEASED)
		bill_lease_take(q->token_id, c->slot, c->serial, est, now);
	else if (q->flags & IPC_CHARGE_F_LEASE_OK)
		bill_lease_release(q->token_id, c->slot, c->serial, now);
	held = bill_lease_others(q->token_id, c->slot, c->serial, now);
	if (!(q->flags & (IPC_CHARGE_F_LEASED | IPC_CHARGE_F_LEASE_OK)))
		held += bill_lease_own(q->token_id, c->slot, c->serial, now);
	rc = store_charge_reserve_held(bill_store, q->token_id, key, est, held,
	    &headroom);
	if (rc == 0 && (q->flags & IPC_CHARGE_F_LEASE_OK) &&
	    !(q->flags & IPC_CHARGE_F_UNWAITED) && headroom >= 0 &&
	    q->est_video_seconds <= 0 && price > 0 &&
	    (r->lease_micros = bill_lease_grant(q->token_id, c->slot,
	    c->serial, est, headroom - held, now)) > 0) {
		r->lease_ms = BILL_LEASE_MS;
		r->price_micros = price;
	}
	if (rc == 0)
		r->status = IPC_CHARGE_OK;
	else if (rc == 1)
		r->status = IPC_CHARGE_INSUFFICIENT;
	else {
		r->status = IPC_CHARGE_ERROR;
		log_rwarn(reqid, "charge reserve: %s", store_errmsg(bill_store));
	}
	if (rc == 1 && (q->flags & IPC_CHARGE_F_UNWAITED))
		log_rwarn(reqid, "charge reserve: token %llu refused a "
		    "reservation its gateway did not wait for (%s): the "
		    "request's post charges what it used",
		    (unsigned long long)q->token_id,
		    q->flags & IPC_CHARGE_F_LEASED ? "its lease was gone and "
		    "the quota is spent" : "a quota set since?");
}
