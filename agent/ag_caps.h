/*
 * agent/ag_caps: the caps a channel's owner sets in agentd.ini and the hub
 * cannot exceed (max_concurrency, max_tokens_per_request, daily_budget).
 * Checked for every request after its body arrived and before the
 * provider is called; a refused request never reaches the provider.
 *
 * The daily budget is spent by what this agentd served since 00:00 UTC,
 * priced with its own copy of the hub's price table (price_update frames,
 * the highest version per model): counted in memory as streams are
 * recorded, seeded at start from the ledger (agent/ag_ledger_read; a
 * served row names a model, not a channel: it counts against the first
 * channel announcing that model).  A model the hub never priced costs 0.
 * lws thread only; time comes in.
 */
#ifndef SWB_AG_CAPS_H
#define SWB_AG_CAPS_H

#include <stddef.h>
#include <stdint.h>
#include "lib/jscan.h"
#include "agent/ag_conf.h"
#include "lib/money.h"

struct ag_ledger_rd;

struct ag_caps {
	const struct ag_conf *cf;
	int64_t inflight[AG_MAX_CHANNELS];	/* admitted, not released */
	int64_t spent[AG_MAX_CHANNELS];		/* micro-units, day below */
	int64_t day;				/* UTC day (unix ms / 86400000) */
	/* The latest price of channels[ci].models[m]; version 0: none. */
	struct {
		int64_t version;
		struct money_prices p;
	} price[AG_MAX_CHANNELS][AG_MAX_MODELS];
};

enum ag_caps_result {
	AG_CAPS_OK = 0, AG_CAPS_CONCURRENCY, AG_CAPS_TOKENS, AG_CAPS_BUDGET
};

void ag_caps_init(struct ag_caps *c, const struct ag_conf *cf);
/* Prices and today's spending from the ledger.  0, or -1 (rd's error). */
int ag_caps_seed(struct ag_caps *c, struct ag_ledger_rd *rd, int64_t now_ms);
/* A price_update: kept for every channel announcing model when version is
 * the highest seen. */
void ag_caps_price(struct ag_caps *c, const char *model, int64_t version,
    const struct money_prices *p);
/* The cost of usage of model on channel ci at its latest price; 0 when
 * it has none (or on overflow, INT64_MAX). */
int64_t ag_caps_cost(const struct ag_caps *c, int ci, const char *model,
    int64_t input, int64_t output, int64_t cached, int64_t cache_write);
/* What a request body asks for at most as output (0: none said), from
 * its members max_tokens, max_completion_tokens and max_output_tokens, in
 * that order, read from checked text ({NULL, 0}: absent). */
#define AG_CAPS_OUT_KEYS	3
int64_t ag_caps_max_out(const struct jscan_v v[AG_CAPS_OUT_KEYS]);
/*
 * Admit one request of model on channel ci: input_est estimated input
 * tokens and at most max_out output tokens.  OK counts it in flight
 * (ag_caps_release when it is over); else nothing changes and msg says
 * which cap and its value, for the user.
 */
enum ag_caps_result ag_caps_admit(struct ag_caps *c, int ci,
    const char *model, int64_t input_est, int64_t max_out, int64_t now_ms,
    char *msg, size_t msglen);
void ag_caps_release(struct ag_caps *c, int ci);
/* A served stream's cost counts against ci's budget of the day of now_ms. */
void ag_caps_spend(struct ag_caps *c, int ci, int64_t amount, int64_t now_ms);
/* ci's spending today (0 after midnight UTC until something is spent). */
int64_t ag_caps_spent(const struct ag_caps *c, int ci, int64_t now_ms);

#endif
