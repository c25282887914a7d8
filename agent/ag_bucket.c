/*
 * agent/ag_bucket: per-channel token buckets of agentd (see ag_bucket.h).
 */
#include "agent/ag_bucket.h"

#define UNIT	INT64_C(60000)		/* ms per minute */

void
ag_bucket_init(struct ag_bucket *b, int64_t rpm, int64_t tpm, int64_t now_ms)
{
	b->rpm = rpm > 0 ? rpm : 0;
	b->tpm = tpm > 0 ? tpm : 0;
	b->req_level = b->rpm * UNIT;
	b->tok_level = b->tpm * UNIT;
	b->last_ms = now_ms;
}

static void
refill(int64_t *level, int64_t limit, int64_t dt)
{
	int64_t cap = limit * UNIT;

	if (limit == 0)
		return;
	/* dt * limit cannot overflow over a minute's cap: clamp dt first. */
	if (dt > UNIT)
		dt = UNIT;
	*level += dt * limit;
	if (*level > cap)
		*level = cap;
}

static int64_t
wait_s(int64_t level, int64_t cost, int64_t limit)
{
	int64_t ms = (cost - level + limit - 1) / limit;	/* ceil */
	int64_t s = (ms + 999) / 1000;

	return s < 1 ? 1 : s;
}

enum ag_bucket_result
ag_bucket_take(struct ag_bucket *b, int64_t est, int64_t now_ms,
    int64_t *retry_s)
{
	int64_t dt = now_ms - b->last_ms, tcost;

	if (dt > 0) {
		refill(&b->req_level, b->rpm, dt);
		refill(&b->tok_level, b->tpm, dt);
		b->last_ms = now_ms;
	}
	if (est < 0)
		est = 0;
	if (b->tpm > 0 && est > b->tpm)
		est = b->tpm;
	tcost = est * UNIT;
	if (b->rpm > 0 && b->req_level < UNIT) {
		*retry_s = wait_s(b->req_level, UNIT, b->rpm);
		return AG_BUCKET_REQUESTS;
	}
	if (b->tpm > 0 && b->tok_level < tcost) {
		*retry_s = wait_s(b->tok_level, tcost, b->tpm);
		return AG_BUCKET_TOKENS;
	}
	if (b->rpm > 0)
		b->req_level -= UNIT;
	if (b->tpm > 0)
		b->tok_level -= tcost;
	return AG_BUCKET_OK;
}

int64_t
ag_bucket_room(const struct ag_bucket *b, int tokens, int64_t now_ms)
{
	int64_t limit = tokens ? b->tpm : b->rpm;
	int64_t level = tokens ? b->tok_level : b->req_level;

	if (limit == 0)
		return -1;
	if (now_ms > b->last_ms)
		refill(&level, limit, now_ms - b->last_ms);
	return level / UNIT;
}
