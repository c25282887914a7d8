/*
 * gateway/gw_lease: the worker's quota leases (billing/bill_lease.c says
 * what billing sets aside and why the quota holds).  A request of a token
 * with a quota whose estimate its lease does not cover asks for a new one
 * (gateway/gw_token.c: its reservation, waited for, carries
 * IPC_CHARGE_F_LEASE_OK) — one ask out per token at a time; what was left
 * is given back (zeroed here, released in billing) when it is asked.
 * Billing's answer may bring a lease: until it runs out, or its life
 * (less GW_LEASE_MARGIN_MS, so that it ends here before it ends in
 * billing) has passed, the token's next requests for the same model go
 * unwaited, each taking its estimate — priced as billing priced the ask —
 * from it.  Nothing is taken while an ask is out, so both sides agree on
 * what is left.  Leases are dropped when billing.sock goes down: its
 * successor holds none.  Looked up per request: hashed by token id.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "gateway/gw.h"
#include "lib/money.h"

#define LEASE_BUCKETS		256
#define GW_LEASE_MARGIN_MS	250

struct lease {
	struct lease *next;
	uint64_t token_id;
	int64_t left;		/* micro-units */
	int64_t until_ms;	/* monotonic */
	int64_t price;		/* micro-units per 1,000,000 estimated tokens */
	int asking;		/* an ask is out: ask_reqid's reservation */
	uint64_t ask_reqid;
	char model[128];	/* the model it was asked and priced for */
};

static struct lease *buckets[LEASE_BUCKETS];

static struct lease **
slot_of(uint64_t token_id)
{
	return &buckets[(token_id * 0x9e3779b97f4a7c15ULL) >> 56];
}

static struct lease *
find(uint64_t token_id)
{
	for (struct lease *l = *slot_of(token_id); l != NULL; l = l->next)
		if (l->token_id == token_id)
			return l;
	return NULL;
}

int
gw_lease_take(uint64_t token_id, const char *model, int64_t est_tokens,
    int64_t now_ms)
{
	struct lease *l = find(token_id);
	int64_t est;

	if (l == NULL || l->asking || now_ms >= l->until_ms ||
	    strcmp(l->model, model) != 0 ||
	    money_component(est_tokens < 0 ? 0 : est_tokens, l->price,
	    &est) != 0 || est > l->left)
		return 0;
	l->left -= est;
	return 1;
}

int
gw_lease_ask(uint64_t token_id, const char *model, uint64_t reqid)
{
	struct lease *l = find(token_id);

	if (strlen(model) >= sizeof(l->model))
		return 0;
	if (l == NULL) {
		struct lease **pp = slot_of(token_id);

		if ((l = calloc(1, sizeof(*l))) == NULL)
			return 0;	/* it waits, as without leases */
		l->token_id = token_id;
		l->next = *pp;
		*pp = l;
	} else if (l->asking)
		return 0;
	l->left = 0;		/* given back with the ask */
	l->until_ms = 0;
	l->asking = 1;
	l->ask_reqid = reqid;
	snprintf(l->model, sizeof(l->model), "%s", model);
	return 1;
}

void
gw_lease_answer(uint64_t token_id, uint64_t reqid, int64_t micros,
    int64_t ms, int64_t price, int64_t now_ms)
{
	struct lease *l = find(token_id);

	if (l == NULL || !l->asking || l->ask_reqid != reqid)
		return;		/* not the ask's answer */
	l->asking = 0;
	if (micros <= 0 || ms <= GW_LEASE_MARGIN_MS || price <= 0)
		return;		/* none: it stays at nothing */
	l->left = micros;
	l->until_ms = now_ms + ms - GW_LEASE_MARGIN_MS;
	l->price = price;
}

/* Every lease ended by now_ms and not asking (all of them, asks too, with
 * INT64_MAX). */
void
gw_lease_tick(int64_t now_ms)
{
	for (int b = 0; b < LEASE_BUCKETS; b++) {
		struct lease **pp = &buckets[b], *l;

		while ((l = *pp) != NULL)
			if (now_ms >= l->until_ms &&
			    (!l->asking || now_ms == INT64_MAX)) {
				*pp = l->next;
				free(l);
			} else
				pp = &l->next;
	}
}

void
gw_lease_drop_all(void)
{
	gw_lease_tick(INT64_MAX);
}
