/*
 * shm/sb_limit: fixed-window minute counters in the scoreboard for the
 * local rate limiter (token slots and channel hot counters); see
 * sb_limit.h for the rules and sb.h for who writes what.
 */
#include "shm/sb_limit.h"

#define PROBE	32		/* token slots looked at per id */

int64_t
sb_lim_minute(int64_t now_ms)
{
	return now_ms / 60000;
}

int64_t
sb_lim_retry_after(int64_t now_ms)
{
	return 60 - (now_ms / 1000) % 60;
}

void
sb_lim_chan(const struct sb *sb, uint32_t slot, int64_t rpm, int64_t tpm,
    struct sb_lim_ctr *out)
{
	struct sb_chan_hot *h = &sb_channel(sb, slot)->hot;

	out->minute = &h->minute;
	out->req = &h->req_minute;
	out->tok = &h->tok_minute;
	out->rpm = rpm;
	out->tpm = tpm;
}

void
sb_lim_tok(struct sb_token *t, int64_t rpm, int64_t tpm, struct sb_lim_ctr *out)
{
	out->minute = &t->minute;
	out->req = &t->req_minute;
	out->tok = &t->tok_minute;
	out->rpm = rpm;
	out->tpm = tpm;
}

int
sb_lim_token_slot(const struct sb *sb, uint64_t id, int64_t now_ms)
{
	uint32_t h = (uint32_t)((id * UINT64_C(0x9E3779B97F4A7C15)) >> 40);
	int64_t min = sb_lim_minute(now_ms);

	if (id == 0)
		return -1;
	for (uint32_t k = 0; k < PROBE; k++) {
		uint32_t i = (h + k) % SB_TOKEN_SLOTS;
		if (atomic_load(&sb_token(sb, i)->id) == id)
			return (int)i;
	}
	for (uint32_t k = 0; k < PROBE; k++) {
		uint32_t i = (h + k) % SB_TOKEN_SLOTS;
		struct sb_token *t = sb_token(sb, i);
		uint64_t cur = atomic_load(&t->id);
		/* Free, or not used in this minute nor the last one. */
		if (cur != 0 && atomic_load(&t->minute) >= min - 1)
			continue;
		if (atomic_compare_exchange_strong(&t->id, &cur, id))
			return (int)i;
		if (cur == id)		/* another gateway claimed it for us */
			return (int)i;
	}
	return -1;
}

/* The first to see a new minute moves the window and zeroes it. */
static void
roll(const struct sb_lim_ctr *c, int64_t min)
{
	int64_t m = atomic_load(c->minute);

	while (m < min) {
		if (atomic_compare_exchange_weak(c->minute, &m, min)) {
			atomic_store(c->req, 0);
			atomic_store(c->tok, 0);
			return;
		}
	}
}

enum sb_lim_result
sb_lim_take(const struct sb_lim_ctr *c, int n, int64_t est, int64_t now_ms,
    int *which)
{
	int64_t min = sb_lim_minute(now_ms);

	for (int i = 0; i < n; i++)
		roll(&c[i], min);
	for (int i = 0; i < n; i++) {
		int64_t r = atomic_fetch_add(c[i].req, 1) + 1;
		int64_t t = atomic_fetch_add(c[i].tok, est) + est;
		enum sb_lim_result why = SB_LIM_OK;

		if (c[i].rpm > 0 && r > c[i].rpm)
			why = SB_LIM_REQUESTS;
		else if (c[i].tpm > 0 && t > c[i].tpm)
			why = SB_LIM_TOKENS;
		if (why == SB_LIM_OK)
			continue;
		for (int j = 0; j <= i; j++) {
			atomic_fetch_sub(c[j].req, 1);
			atomic_fetch_sub(c[j].tok, est);
		}
		if (which != NULL)
			*which = i;
		return why;
	}
	return SB_LIM_OK;
}

void
sb_lim_adjust(const struct sb_lim_ctr *c, int64_t minute, int64_t dreq,
    int64_t dtok)
{
	if (atomic_load(c->minute) != minute)
		return;
	if (dreq != 0)
		atomic_fetch_add(c->req, dreq);
	if (dtok != 0)
		atomic_fetch_add(c->tok, dtok);
}
