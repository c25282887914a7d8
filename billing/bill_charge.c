/*
 * billing/bill_charge: charging tokens' quotas for the gateways
 * (IPC_CHARGE_RESERVE / IPC_CHARGE_POST on billing.sock).
 *
 * The rule:
 *   - before the relay, the gateway reserves an estimate: its lib/tokest
 *     token estimate priced at the larger of the model's latest input and
 *     output prices.  The reservation is refused (429 insufficient_quota)
 *     unless used + estimate <= quota;
 *   - at the end, the cost of the usage the hub read replaces the
 *     reservation: money_cost of (uncached input, cached input, cache
 *     writes, output) at the model's latest price version (recorded with
 *     the charge).  The real cost is charged even if it overruns the quota.
 *     A request whose usage was never read (an error before any byte, a
 *     stream cut before its usage chunk) is voided: it costs nothing;
 *   - a model without a price costs 0 (estimate and amount);
 *   - settlement is idempotent by request id; the store commits before
 *     billing answers.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include "billing/bill.h"
#include "lib/log.h"
#include "lib/money.h"

/* The store's key of a charge: "NONCE-REQID" (see lib/ipc.h). */
static void
key_of(uint64_t nonce, uint64_t reqid, char *out, size_t len)
{
	snprintf(out, len, "%016" PRIx64 "-%016" PRIx64, nonce, reqid);
}

void
bill_charge_reserve(uint64_t reqid, const struct ipc_charge_reserve *q,
    struct ipc_charge_result *r)
{
	struct store_price pr;
	char key[40], model[sizeof(q->model)];
	int64_t est = 0, price;
	int rc;

	memset(r, 0, sizeof(*r));
	r->token_id = q->token_id;
	key_of(q->nonce, reqid, key, sizeof(key));
	memcpy(model, q->model, sizeof(model));
	model[sizeof(model) - 1] = '\0';
	rc = model[0] ? store_price_get(bill_store, model, 0, &pr) : 1;
	if (rc == -1) {
		log_rwarn(reqid, "charge reserve: price of %s: %s", model,
		    store_errmsg(bill_store));
		r->status = IPC_CHARGE_ERROR;
		return;
	}
	if (rc == 0) {
		price = pr.input > pr.output ? pr.input : pr.output;
		if (money_component(q->est_tokens < 0 ? 0 : q->est_tokens, price,
		    &est) != 0) {
			r->status = IPC_CHARGE_INSUFFICIENT;	/* beyond int64 */
			return;
		}
	}
	r->estimate_micros = est;
	rc = store_charge_reserve(bill_store, q->token_id, key, est);
	if (rc == 0)
		r->status = IPC_CHARGE_OK;
	else if (rc == 1)
		r->status = IPC_CHARGE_INSUFFICIENT;
	else {
		r->status = IPC_CHARGE_ERROR;
		log_rwarn(reqid, "charge reserve: %s", store_errmsg(bill_store));
	}
}

void
bill_charge_post(uint64_t reqid, const struct ipc_charge_post *p)
{
	struct store_charge_usage u;
	struct store_price pr;
	char key[40];
	int64_t tokens[4], prices[4];
	int rc;

	key_of(p->nonce, reqid, key, sizeof(key));
	memset(&u, 0, sizeof(u));
	memcpy(u.model, p->model, sizeof(u.model) - 1);
	u.model[sizeof(u.model) - 1] = '\0';
	if (!p->used) {
		rc = store_charge_settle(bill_store, key, NULL);
		if (rc == -1)
			log_rwarn(reqid, "charge void: %s", store_errmsg(bill_store));
		else
			log_rinfo(reqid, "charge voided%s", rc == 1 ?
			    " (nothing to void)" : "");
		return;
	}
	u.input_tokens = p->input_tokens < 0 ? 0 : p->input_tokens;
	u.output_tokens = p->output_tokens < 0 ? 0 : p->output_tokens;
	u.cached_tokens = p->cached_tokens < 0 ? 0 : p->cached_tokens;
	rc = u.model[0] ? store_price_get(bill_store, u.model, 0, &pr) : 1;
	if (rc == -1) {
		/* The reservation stays until an operator looks. */
		log_rwarn(reqid, "charge post: price of %s: %s", u.model,
		    store_errmsg(bill_store));
		return;
	}
	if (rc == 0) {
		int64_t cw = p->cache_write_tokens < 0 ? 0 : p->cache_write_tokens;
		int64_t unc = u.input_tokens - u.cached_tokens - cw;
		tokens[0] = unc < 0 ? 0 : unc;
		tokens[1] = u.cached_tokens;
		tokens[2] = cw;
		tokens[3] = u.output_tokens;
		prices[0] = pr.input;
		prices[1] = pr.cached_input;
		prices[2] = pr.cache_write;
		prices[3] = pr.output;
		if (money_cost(tokens, prices, 4, &u.amount) != 0) {
			log_rwarn(reqid, "charge post: cost overflows");
			return;
		}
		u.price_version = pr.version;
	}
	rc = store_charge_settle(bill_store, key, &u);
	if (rc == -1)
		log_rwarn(reqid, "charge post: %s", store_errmsg(bill_store));
	else
		log_rinfo(reqid, "charge posted%s: %lld micro-units (in=%lld "
		    "out=%lld cached=%lld, %s v%lld)", rc == 1 ?
		    " already (unchanged)" : "", (long long)u.amount,
		    (long long)u.input_tokens, (long long)u.output_tokens,
		    (long long)u.cached_tokens, u.model,
		    (long long)u.price_version);
}
