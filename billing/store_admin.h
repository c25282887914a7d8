/*
 * billing/store_admin: the store calls of the operator's side — admin keys
 * (only their SHA-256 is kept), token edits, usage totals and a token's
 * request log from the charges table, dispute resolution, the channel a
 * charge was served by, and billing's backlog for /metrics.  Same
 * conventions as billing/store.h (0 ok, 1 not found, -1 error with
 * store_errmsg()).  Migration 5 (billing/schema.c) holds the tables.
 */
#ifndef SWB_BILLING_STORE_ADMIN_H
#define SWB_BILLING_STORE_ADMIN_H

#include <stdint.h>
#include "billing/store.h"

/* ---- admin keys ---------------------------------------------------------- */

struct store_admin_key {
	uint64_t id;
	char name[STORE_NAME_MAX + 1];
	char hash_hex[STORE_HASH_HEX_LEN + 1];
	int64_t created_at;
	int64_t revoked_at;		/* 0: valid */
	int64_t last_used_at;		/* 0: never */
};

/* name: printable, 1..63 bytes; hash_hex: 64 lowercase hex, unique. */
int store_admin_key_create(struct store *, const char *name,
    const char *hash_hex, uint64_t *out_id);
typedef int (*store_admin_key_cb)(const struct store_admin_key *, void *);
int store_admin_key_list(struct store *, store_admin_key_cb cb, void *arg);
/* 0 revoked now, 1 no such key or already revoked. */
int store_admin_key_revoke(struct store *, uint64_t id);
/* 0 a valid key (its last use noted, *id set), 1 unknown or revoked. */
int store_admin_key_check(struct store *, const char *hash_hex, uint64_t *id);

/* ---- tokens ------------------------------------------------------------- */

/* 0 found, 1 none. */
int store_token_get(struct store *, uint64_t id, struct store_token *out);
/*
 * Change what is given (NULL / INT64_MIN: unchanged): name, quota
 * (micro-units, -1 unlimited), models ("" any), expires_at (0 never).
 * 0 ok, 1 no such token, -1 bad input or error.
 */
int store_token_update(struct store *, uint64_t id, const char *name,
    int64_t quota_micros, const char *models_csv, int64_t expires_at);
int store_token_enable(struct store *, uint64_t id);
/* 0 deleted, 1 no such token, 2 it has charges (disable it instead). */
int store_token_delete(struct store *, uint64_t id);

/* ---- usage --------------------------------------------------------------- */

enum store_usage_by { STORE_BY_TOKEN = 0, STORE_BY_MODEL, STORE_BY_AGENT,
	STORE_BY_CHANNEL };

struct store_usage_row {
	int64_t bucket;			/* unix s: start of the hour or day */
	char key[STORE_MODEL_MAX + 1];	/* token id, model, agent id, channel */
	int64_t requests;
	int64_t input_tokens, output_tokens, cached_tokens;
	int64_t amount;			/* micro-units */
};
typedef int (*store_usage_cb)(const struct store_usage_row *, void *);
/* Posted charges created in [from, to), grouped by `by` and by bucket_s
 * (3600 or 86400), oldest bucket first. */
int store_usage(struct store *, enum store_usage_by by, int64_t from,
    int64_t to, int64_t bucket_s, store_usage_cb cb, void *arg);

struct store_request_row {
	int64_t created_at;
	char request_id[64];
	char model[STORE_MODEL_MAX + 1];
	char channel[32];
	uint64_t agent_id;
	int64_t input_tokens, output_tokens, cached_tokens;
	int64_t amount;
	char state[16];			/* reserved awaiting posted voided */
};
typedef int (*store_request_cb)(const struct store_request_row *, void *);
/* A token's charges, newest first: created before `before` (0: now) or,
 * at equal times, with a request id below before_id; at most limit. */
int store_token_requests(struct store *, uint64_t token_id, int64_t from,
    int64_t to, int64_t before, const char *before_id, int64_t limit,
    store_request_cb cb, void *arg);

/* The channel that served a charge (kept for usage by channel). */
int store_charge_set_channel(struct store *, const char *request_id,
    const char *channel);

/* ---- disputes ------------------------------------------------------------ */

/* status "accepted" or "rejected"; reason printable (may be "").  0 done
 * (*out filled), 1 no such dispute, 2 not open any more. */
int store_dispute_resolve(struct store *, uint64_t id, const char *status,
    const char *reason, struct store_dispute *out);
/* The resolution of a dispute ("" while open). */
int store_dispute_resolution(struct store *, uint64_t id, char *reason,
    size_t len, int64_t *resolved_at);

/* ---- metrics ------------------------------------------------------------- */

/* Charges reserved and awaiting, and the age (s) of the oldest of them.
 * Read every BACKLOG_EVERY_MS (billing/bill_admin.c): its plan must not
 * grow with the table (each state from its partial index, schema 8; the
 * unary plus keeps the awaiting rows' MIN off charges_created, which it
 * would walk from the oldest charge to the first awaiting one: the whole
 * table when none awaits).  Here for its plan's test. */
#define STORE_BACKLOG_SQL "SELECT (SELECT COUNT(*) FROM charges WHERE " \
	"state = 'reserved'), (SELECT COUNT(*) FROM charges WHERE state = " \
	"'awaiting'), COALESCE(MIN(c), 0) FROM (SELECT MIN(created_at) AS c " \
	"FROM charges WHERE state = 'reserved' UNION ALL SELECT " \
	"MIN(+created_at) FROM charges WHERE state = 'awaiting') AS m"
int store_backlog(struct store *, int64_t *reserved, int64_t *awaiting,
    int64_t *oldest_s);

#endif
