/*
 * gateway/gw_limit: the RPM/TPM gate of a chat request (see gw_limit.h):
 * which counters a request is charged on, the local check on the
 * scoreboard, the Redis check through gw_redis.c with its fallback, the
 * 429 answer, and the usage correction when the relay ends.
 */
#include <stdio.h>
#include <string.h>
#include <hiredis/hiredis.h>
#include "gateway/gw.h"
#include "lib/log.h"
#include "shm/sb_limit.h"

#define REDIS_WAIT_MS	500	/* a verdict later than this: Redis stalls */

static int slot_warned, reply_warned;

static const struct sb *
sb(void)
{
	return &gw_env()->sb;
}

/* Candidate i's limits as its agent announced them. */
static void
chan_limits(const struct gw_req *r, int i, int64_t *rpm, int64_t *tpm)
{
	struct sb_channel c;

	sb_read_channel(sb(), r->cand[i].slot, &c);
	if (c.state != SB_CHAN_UP || c.agent_id != r->cand[i].agent_id) {
		*rpm = *tpm = 0;	/* it went away meanwhile */
		return;
	}
	*rpm = c.rpm_limit;
	*tpm = c.tpm_limit;
}

static int
tok_limited(const struct gw_req *r)
{
	return r->lim.tok_rpm > 0 || r->lim.tok_tpm > 0;
}

static void
admitted(struct gw_req *r, int chan)
{
	r->cur = chan;
	r->lim.chan = chan;
	gw_resume(r, GW_GO);
}

/* why: SB_LIM_REQUESTS / SB_LIM_TOKENS; chan -1: the token's limit. */
static void
refuse(struct gw_req *r, int why, int chan, int64_t limit, int retry)
{
	const char *what = why == SB_LIM_REQUESTS ? "requests" : "tokens";
	char msg[320];

	if (retry < 1 || retry > 60)
		retry = 60;
	r->lim.retry_after = retry;
	if (chan < 0)
		snprintf(msg, sizeof(msg), "Rate limit reached for %s per minute "
		    "(RPM/TPM) on this API key: limit %lld. Please try again in "
		    "%ds.", what, (long long)limit, retry);
	else
		snprintf(msg, sizeof(msg), "Rate limit reached for %s per minute "
		    "on every channel serving `%s` (channel %s of agent %llu: "
		    "limit %lld). Please try again in %ds.", what, r->model,
		    r->cand[chan].channel,
		    (unsigned long long)r->cand[chan].agent_id,
		    (long long)limit, retry);
	gw_reply_error(r, 429, what, "rate_limit_exceeded", msg);
	gw_resume(r, GW_STOP);
}

/* The token's scoreboard counters, or n = 0 (no limits, or no slot). */
static int
tok_ctr(struct gw_req *r, int64_t now, int64_t rpm, int64_t tpm,
    struct sb_lim_ctr *c)
{
	int s;

	r->lim.tok_slot = -1;
	if (!tok_limited(r))
		return 0;
	s = sb_lim_token_slot(sb(), r->lim.token_id, now);
	if (s < 0) {
		if (!slot_warned)
			log_rwarn(r->reqid, "the scoreboard's token slots are busy: "
			    "token %llu is not limited locally this minute",
			    (unsigned long long)r->lim.token_id);
		slot_warned = 1;
		return 0;
	}
	r->lim.tok_slot = s;
	sb_lim_tok(sb_token(sb(), (uint32_t)s), rpm, tpm, c);
	return 1;
}

/* Count an admitted request locally, no check (Redis decided). */
static void
count_local(struct gw_req *r, int chan, int64_t now)
{
	struct sb_lim_ctr c[2];
	int n = tok_ctr(r, now, 0, 0, &c[0]);

	sb_lim_chan(sb(), r->cand[chan].slot, 0, 0, &c[n]);
	(void)sb_lim_take(c, n + 1, r->lim.est, now, NULL);
	r->lim.minute = sb_lim_minute(now);
}

static void
local_check(struct gw_req *r)
{
	int64_t now = clock_wall_ms(), rpm, tpm;
	struct sb_lim_ctr c[2];
	int n = tok_ctr(r, now, r->lim.tok_rpm, r->lim.tok_tpm, &c[0]);
	int first = -1, first_why = 0, which = 0;
	int64_t first_limit = 0;

	for (int i = 0; i < r->ncand; i++) {
		enum sb_lim_result why;
		chan_limits(r, i, &rpm, &tpm);
		sb_lim_chan(sb(), r->cand[i].slot, rpm, tpm, &c[n]);
		why = sb_lim_take(c, n + 1, r->lim.est, now, &which);
		if (why == SB_LIM_OK) {
			r->lim.where = 1;
			r->lim.minute = sb_lim_minute(now);
			r->lim.chan_limited = rpm > 0 || tpm > 0;
			admitted(r, i);
			return;
		}
		if (which < n) {	/* the token's own limit */
			refuse(r, why, -1, why == SB_LIM_REQUESTS ?
			    r->lim.tok_rpm : r->lim.tok_tpm,
			    (int)sb_lim_retry_after(now));
			return;
		}
		if (first < 0) {
			first = i;
			first_why = why;
			first_limit = why == SB_LIM_REQUESTS ? rpm : tpm;
		}
	}
	refuse(r, first_why, first, first_limit, (int)sb_lim_retry_after(now));
}

static void
on_verdict(const redisReply *rep, void *arg)
{
	struct gw_req *r = gw_req_find((uint64_t)(uintptr_t)arg);
	long long v[4];
	int64_t rpm = 0, tpm = 0;

	if (r == NULL || !gw_waits_in(r, GW_ST_LIMIT))
		return;		/* the user left */
	if (rep == NULL || rep->type != REDIS_REPLY_ARRAY || rep->elements != 4) {
		if (rep != NULL && !reply_warned)
			log_rwarn(r->reqid, "redis answered the limit script with "
			    "%s: limits checked locally", rep->type ==
			    REDIS_REPLY_ERROR ? rep->str : "something else");
		reply_warned |= rep != NULL;
		local_check(r);
		return;
	}
	for (int i = 0; i < 4; i++)
		v[i] = rep->element[i]->type == REDIS_REPLY_INTEGER ?
		    rep->element[i]->integer : -1;
	if (v[0] == 0 && v[1] >= 1 && v[1] <= r->ncand) {
		int chan = (int)v[1] - 1;
		count_local(r, chan, clock_wall_ms());
		chan_limits(r, chan, &rpm, &tpm);
		r->lim.where = 2;
		r->lim.redis_minute = v[3];
		r->lim.chan_limited = rpm > 0 || tpm > 0;
		admitted(r, chan);
		return;
	}
	if ((v[0] == 1 || v[0] == 2) && v[1] >= 0 && v[1] <= r->ncand) {
		int why = v[0] == 1 ? SB_LIM_REQUESTS : SB_LIM_TOKENS;
		if (v[1] == 0) {
			refuse(r, why, -1, why == SB_LIM_REQUESTS ? r->lim.tok_rpm :
			    r->lim.tok_tpm, (int)v[2]);
			return;
		}
		chan_limits(r, (int)v[1] - 1, &rpm, &tpm);
		refuse(r, why, (int)v[1] - 1, why == SB_LIM_REQUESTS ? rpm : tpm,
		    (int)v[2]);
		return;
	}
	log_rwarn(r->reqid, "redis limit script answered {%lld,%lld,%lld,%lld}: "
	    "limits checked locally", v[0], v[1], v[2], v[3]);
	local_check(r);
}

static void
tok_key(const struct gw_req *r, char *buf, size_t len)
{
	snprintf(buf, len, "swb:rl:tok:%llu", (unsigned long long)r->lim.token_id);
}

static void
chan_key(const struct gw_req *r, int i, char *buf, size_t len)
{
	snprintf(buf, len, "swb:rl:ch:%llu:%s",
	    (unsigned long long)r->cand[i].agent_id, r->cand[i].channel);
}

static int
redis_check(struct gw_req *r)
{
	char keys[1 + RT_MAX_CANDIDATES][96];
	const char *kp[1 + RT_MAX_CANDIDATES];
	long long args[3 + 2 * RT_MAX_CANDIDATES];
	int64_t rpm, tpm;

	tok_key(r, keys[0], sizeof(keys[0]));
	args[0] = r->lim.est;
	args[1] = r->lim.tok_rpm;
	args[2] = r->lim.tok_tpm;
	for (int i = 0; i < r->ncand; i++) {
		chan_key(r, i, keys[1 + i], sizeof(keys[1 + i]));
		chan_limits(r, i, &rpm, &tpm);
		args[3 + 2 * i] = rpm;
		args[4 + 2 * i] = tpm;
	}
	for (int i = 0; i <= r->ncand; i++)
		kp[i] = keys[i];
	if (gw_redis_eval(1 + r->ncand, kp, 3 + 2 * r->ncand, args, on_verdict,
	    (void *)(uintptr_t)r->reqid) != 0)
		return -1;
	r->lim.deadline = clock_mono_ms() + REDIS_WAIT_MS;
	return 0;
}

/* Every path ends in admitted() or refuse() (gw_resume), now or when
 * Redis answers: the stage waits either way. */
enum gw_verdict
gw_limit_check(struct gw_req *r, const struct gw_token *t)
{
	int64_t rpm, tpm;
	int any;

	r->lim.token_id = t->id;
	r->lim.tok_rpm = t->rpm > 0 ? t->rpm : 0;
	r->lim.tok_tpm = t->tpm > 0 ? t->tpm : 0;
	r->lim.chan = -1;
	r->lim.tok_slot = -1;
	r->lim.where = 0;
	any = tok_limited(r);
	for (int i = 0; i < r->ncand && !any; i++) {
		chan_limits(r, i, &rpm, &tpm);
		any = rpm > 0 || tpm > 0;
	}
	if (!any) {
		/* Nothing to enforce; the channel's counters still count (the
		 * router reads them). */
		count_local(r, 0, clock_wall_ms());
		r->lim.where = 1;
		admitted(r, 0);
		return GW_WAIT;
	}
	if (gw_redis_up() && redis_check(r) == 0)
		return GW_WAIT;
	local_check(r);
	return GW_WAIT;
}

void
gw_limit_done(struct gw_req *r)
{
	struct sb_lim_ctr c;
	int64_t delta;
	char key[96];
	int ch = r->lim.chan, where = r->lim.where;

	if (where == 0 || ch < 0 || ch >= r->ncand || !r->usage.seen)
		return;
	r->lim.where = 0;		/* once */
	delta = r->usage.input_tokens + r->usage.output_tokens - r->lim.est;
	if (delta == 0)
		return;
	if (r->lim.tok_slot >= 0) {
		sb_lim_tok(sb_token(sb(), (uint32_t)r->lim.tok_slot), 0, 0, &c);
		sb_lim_adjust(&c, r->lim.minute, 0, delta);
	}
	sb_lim_chan(sb(), r->cand[ch].slot, 0, 0, &c);
	sb_lim_adjust(&c, r->lim.minute, 0, delta);
	/* In Redis only while the window's keys surely still live (they
	 * expire 120 s after their last check): HINCRBY would otherwise
	 * create a key that never expires. */
	if (where != 2 || sb_lim_minute(clock_wall_ms()) - r->lim.redis_minute > 1)
		return;
	if (tok_limited(r)) {
		tok_key(r, key, sizeof(key) - 24);
		snprintf(key + strlen(key), 24, ":%lld", (long long)r->lim.redis_minute);
		gw_redis_incr(key, "t", delta);
	}
	if (r->lim.chan_limited) {
		chan_key(r, ch, key, sizeof(key) - 24);
		snprintf(key + strlen(key), 24, ":%lld", (long long)r->lim.redis_minute);
		gw_redis_incr(key, "t", delta);
	}
}

void
gw_limit_init(struct lws_vhost *vh)
{
	gw_redis_init(vh, gw_env()->conf.redis_url);
}

void
gw_limit_tick(void)
{
	int64_t now = clock_mono_ms();
	struct gw_req *r;

	for (r = gw_live; r != NULL; r = r->next)
		if (gw_waits_in(r, GW_ST_LIMIT) && now >= r->lim.deadline)
			break;
	if (r != NULL)		/* pending verdicts are decided locally */
		gw_redis_fail("no answer within 500 ms");
	/* Anything still waiting (its command never left): decide here. */
	for (;;) {
		for (r = gw_live; r != NULL; r = r->next)
			if (gw_waits_in(r, GW_ST_LIMIT) && now >= r->lim.deadline)
				break;
		if (r == NULL)
			break;
		local_check(r);
	}
	gw_redis_tick();
}
