/*
 * agent/ag_caps: per-channel caps the hub cannot exceed (see ag_caps.h).
 */
#include "agent/ag_caps.h"
#include "agent/ag_ledger_read.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#define DAY_MS	INT64_C(86400000)

void
ag_caps_init(struct ag_caps *c, const struct ag_conf *cf)
{
	memset(c, 0, sizeof(*c));
	c->cf = cf;
}

/* Start a new UTC day when now_ms is past the one spent[] counts. */
static void
roll_day(struct ag_caps *c, int64_t now_ms)
{
	int64_t day = now_ms / DAY_MS;

	if (day != c->day) {
		memset(c->spent, 0, sizeof(c->spent));
		c->day = day;
	}
}

void
ag_caps_price(struct ag_caps *c, const char *model, int64_t version,
    const struct money_prices *p)
{
	for (int ci = 0; ci < c->cf->nchannels; ci++) {
		int m = ag_channel_model(&c->cf->channels[ci], model);

		if (m < 0 || c->price[ci][m].version > version)
			continue;
		c->price[ci][m].version = version;
		c->price[ci][m].p = *p;
	}
}

int64_t
ag_caps_cost(const struct ag_caps *c, int ci, const char *model,
    int64_t input, int64_t output, int64_t cached, int64_t cache_write)
{
	int m;
	int64_t cost;

	if (ci < 0 || ci >= c->cf->nchannels ||
	    (m = ag_channel_model(&c->cf->channels[ci], model)) < 0 ||
	    c->price[ci][m].version == 0)
		return 0;
	if (money_usage_cost(&c->price[ci][m].p, input, output, cached,
	    cache_write, &cost) != 0)
		return INT64_MAX;
	return cost;
}

static int
seed_price(const char *model, int64_t version, const struct money_prices *p,
    void *arg)
{
	ag_caps_price(arg, model, version, p);
	return 0;
}

static int
seed_usage(const struct ag_ledger_usage *u, void *arg)
{
	struct ag_caps *c = arg;

	for (int ci = 0; ci < c->cf->nchannels; ci++) {
		if (ag_channel_model(&c->cf->channels[ci], u->model) < 0)
			continue;
		ag_caps_spend(c, ci, ag_caps_cost(c, ci, u->model, u->input,
		    u->output, u->cached, u->cache_write), c->day * DAY_MS);
		break;
	}
	return 0;
}

int
ag_caps_seed(struct ag_caps *c, struct ag_ledger_rd *rd, int64_t now_ms)
{
	roll_day(c, now_ms);
	if (ag_ledger_rd_prices(rd, seed_price, c) < 0 ||
	    ag_ledger_rd_served_since(rd, c->day * DAY_MS, seed_usage, c) < 0)
		return -1;
	return 0;
}

int64_t
ag_caps_max_out(const struct jscan_v v[AG_CAPS_OUT_KEYS])
{
	int64_t n, best = 0;

	for (size_t i = 0; i < AG_CAPS_OUT_KEYS; i++)
		if (jscan_integer(v[i], &n) == 0 && n > best)
			best = n;
	return best;
}

enum ag_caps_result
ag_caps_admit(struct ag_caps *c, int ci, const char *model, int64_t input_est,
    int64_t max_out, int64_t now_ms, char *msg, size_t msglen)
{
	const struct ag_channel *ch;
	int64_t tokens, cost;
	char a[32], b[32];

	if (ci < 0 || ci >= c->cf->nchannels)
		return AG_CAPS_OK;
	ch = &c->cf->channels[ci];
	roll_day(c, now_ms);
	if (ch->max_concurrency > 0 &&
	    c->inflight[ci] >= ch->max_concurrency) {
		snprintf(msg, msglen, "this agent's channel %s serves at most "
		    "%" PRId64 " requests at once (its max_concurrency); please "
		    "try again shortly", ch->name, ch->max_concurrency);
		return AG_CAPS_CONCURRENCY;
	}
	tokens = input_est + max_out;
	if (ch->max_tokens_per_request > 0 &&
	    tokens > ch->max_tokens_per_request) {
		snprintf(msg, msglen, "this request may use %" PRId64 " tokens "
		    "(about %" PRId64 " input + %" PRId64 " max output); this "
		    "agent's channel %s takes at most %" PRId64 " per request "
		    "(its max_tokens_per_request)", tokens, input_est, max_out,
		    ch->name, ch->max_tokens_per_request);
		return AG_CAPS_TOKENS;
	}
	if (ch->daily_budget > 0) {
		cost = ag_caps_cost(c, ci, model, input_est, max_out, 0, 0);
		if (c->spent[ci] >= ch->daily_budget ||
		    cost > ch->daily_budget - c->spent[ci]) {
			money_format(ch->daily_budget, a, sizeof(a));
			money_format(c->spent[ci], b, sizeof(b));
			snprintf(msg, msglen, "this agent's channel %s has spent "
			    "%s of its daily budget of %s (UTC day); this "
			    "request could cost more than is left", ch->name, b,
			    a);
			return AG_CAPS_BUDGET;
		}
	}
	c->inflight[ci]++;
	return AG_CAPS_OK;
}

void
ag_caps_release(struct ag_caps *c, int ci)
{
	if (ci >= 0 && ci < c->cf->nchannels && c->inflight[ci] > 0)
		c->inflight[ci]--;
}

void
ag_caps_spend(struct ag_caps *c, int ci, int64_t amount, int64_t now_ms)
{
	if (ci < 0 || ci >= c->cf->nchannels || amount <= 0)
		return;
	roll_day(c, now_ms);
	c->spent[ci] = amount > INT64_MAX - c->spent[ci] ? INT64_MAX :
	    c->spent[ci] + amount;
}

int64_t
ag_caps_spent(const struct ag_caps *c, int ci, int64_t now_ms)
{
	if (ci < 0 || ci >= c->cf->nchannels || now_ms / DAY_MS != c->day)
		return 0;
	return c->spent[ci];
}
