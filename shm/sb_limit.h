/*
 * shm/sb_limit: the local (one hub) fixed-window rate limiter over the
 * scoreboard's minute counters — a channel's hot counters and the per-token
 * slots (struct sb_token).  Used by the gateways when no Redis is
 * configured or while it is unreachable.  Every call takes the time, so
 * tests drive the clock.
 *
 * Windows are unix minutes (now_ms / 60000).  A check takes one request
 * and `est` tokens from each counter set of the list, and when any set is
 * over its limit it gives back what it took from all of them: a refused
 * request counts nowhere.  Exactness: concurrent checks are linearised by
 * the atomic adds; only at a minute's turn may a few increments racing
 * with the zeroing be lost (the limiter errs towards admitting).
 */
#ifndef SWB_SB_LIMIT_H
#define SWB_SB_LIMIT_H

#include "shm/sb.h"

/* One set of minute counters and its limits (0 = none). */
struct sb_lim_ctr {
	_Atomic int64_t *minute, *req, *tok;
	int64_t rpm, tpm;
};

enum sb_lim_result { SB_LIM_OK = 0, SB_LIM_REQUESTS, SB_LIM_TOKENS };

/* The counters of a channel slot / of a token slot. */
void sb_lim_chan(const struct sb *sb, uint32_t slot, int64_t rpm, int64_t tpm,
    struct sb_lim_ctr *out);
void sb_lim_tok(struct sb_token *t, int64_t rpm, int64_t tpm,
    struct sb_lim_ctr *out);
/*
 * The token's slot: found by id, else claimed (a free slot or one unused
 * for over a minute).  Its index, or -1 when the probed slots are all busy
 * (the token then goes unlimited locally; the caller logs it).
 */
int sb_lim_token_slot(const struct sb *sb, uint64_t id, int64_t now_ms);
/*
 * Take one request and est tokens from every set in c[0..n).  SB_LIM_OK,
 * or the limit that refused with *which = its index (nothing taken).
 */
enum sb_lim_result sb_lim_take(const struct sb_lim_ctr *c, int n, int64_t est,
    int64_t now_ms, int *which);
/* Correct a set's counters of the given minute (ignored once it passed). */
void sb_lim_adjust(const struct sb_lim_ctr *c, int64_t minute, int64_t dreq,
    int64_t dtok);
/* Seconds until the current window ends (1..60): the retry-after. */
int64_t sb_lim_retry_after(int64_t now_ms);
int64_t sb_lim_minute(int64_t now_ms);

#endif
