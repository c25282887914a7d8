/*
 * agent/ag_ledger_read: read-only queries on the agent's ledger database
 * (<state_dir>/ledger.db, written by agent/ag_ledger) for what agentd shows
 * and enforces: the latest announced price of each model, and the usage it
 * served since a time, per model (the daily budget of agent/ag_caps).  It
 * opens its own read-only SQLite connection (WAL lets it read beside the
 * writer) and never writes.  One thread per handle.
 */
#ifndef SWB_AG_LEDGER_READ_H
#define SWB_AG_LEDGER_READ_H

#include <stddef.h>
#include <stdint.h>
#include "lib/money.h"

struct ag_ledger_rd;

/* Open <state_dir>/ledger.db read-only (it must exist).  NULL, err filled. */
struct ag_ledger_rd *ag_ledger_rd_open(const char *state_dir, char *err,
    size_t errlen);
void ag_ledger_rd_close(struct ag_ledger_rd *rd);
const char *ag_ledger_rd_error(const struct ag_ledger_rd *rd);

/* Each model's prices at its highest stored version; cb's non-zero return
 * stops the walk.  Returns how many were visited, or -1. */
int ag_ledger_rd_prices(struct ag_ledger_rd *rd,
    int (*cb)(const char *model, int64_t version,
    const struct money_prices *p, void *arg), void *arg);

/* Usage served since since_ms (unix ms, inclusive), summed per model over
 * every agent id.  Returns how many models were visited, or -1. */
struct ag_ledger_usage {
	const char *model;
	int64_t requests, input, output, cached, cache_write;
};
int ag_ledger_rd_served_since(struct ag_ledger_rd *rd, int64_t since_ms,
    int (*cb)(const struct ag_ledger_usage *u, void *arg), void *arg);

/*
 * For the local page (agent/ag_ui), each an array of objects (a new
 * reference), or NULL on error:
 *   recent    the last max served streams, newest first: request_id,
 *             model, tokens, estimated, state, created_at (unix ms) and
 *             amount / price_version of their receipt (null: none yet)
 *   earnings  receipted amounts per UTC day (YYYY-MM-DD) and model over
 *             the last days days: day, model, requests, amount
 *   disputes  every dispute, newest first
 */
#include <jansson.h>
json_t *ag_ledger_rd_recent(struct ag_ledger_rd *rd, int max);
json_t *ag_ledger_rd_earnings(struct ag_ledger_rd *rd, int days);
json_t *ag_ledger_rd_disputes(struct ag_ledger_rd *rd);

#endif
