/*
 * gateway/gw_lease: the worker's quota leases (billing/bill_lease.c says
 * what billing sets aside and why the quota holds).  A reservation this
 * worker waited for may come back with a lease of the token's headroom:
 * until it runs out, or its life (less GW_LEASE_MARGIN_MS, so that it
 * ends here before it ends in billing) has passed, the token's next
 * requests for the same model go unwaited, each taking its estimate —
 * priced as billing priced the waited one — from the lease
 * (gateway/gw_token.c).  Leases are dropped when billing.sock goes down:
 * its successor holds none.  Looked up per request: hashed by token id.
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
	char model[128];	/* the model it was priced for */
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

static void
unlink_lease(struct lease *l)
{
	struct lease **pp = slot_of(l->token_id);

	while (*pp != l)
		pp = &(*pp)->next;
	*pp = l->next;
	free(l);
}

int
gw_lease_take(uint64_t token_id, const char *model, int64_t est_tokens,
    int64_t now_ms)
{
	struct lease *l = find(token_id);
	int64_t est;

	if (l == NULL)
		return 0;
	if (now_ms >= l->until_ms) {
		unlink_lease(l);
		return 0;
	}
	if (strcmp(l->model, model) != 0 ||
	    money_component(est_tokens < 0 ? 0 : est_tokens, l->price,
	    &est) != 0 || est > l->left)
		return 0;
	l->left -= est;
	return 1;
}

void
gw_lease_set(uint64_t token_id, const char *model, int64_t micros,
    int64_t ms, int64_t price, int64_t now_ms)
{
	struct lease *l = find(token_id);

	if (micros <= 0 || ms <= GW_LEASE_MARGIN_MS || price <= 0 ||
	    strlen(model) >= sizeof(l->model)) {
		if (l != NULL)
			unlink_lease(l);	/* billing replaced it by none */
		return;
	}
	if (l == NULL) {
		struct lease **pp = slot_of(token_id);

		if ((l = calloc(1, sizeof(*l))) == NULL)
			return;		/* requests wait, as without one */
		l->token_id = token_id;
		l->next = *pp;
		*pp = l;
	}
	l->left = micros;
	l->until_ms = now_ms + ms - GW_LEASE_MARGIN_MS;
	l->price = price;
	snprintf(l->model, sizeof(l->model), "%s", model);
}

/* Every lease ended by now_ms (all of them with INT64_MAX). */
void
gw_lease_tick(int64_t now_ms)
{
	for (int b = 0; b < LEASE_BUCKETS; b++) {
		struct lease **pp = &buckets[b], *l;

		while ((l = *pp) != NULL)
			if (now_ms >= l->until_ms) {
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
