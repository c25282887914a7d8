/*
 * router/rt: channel selection.  One function (rt_candidates) filters the
 * online channels with the request's strategy, scores each as a weighted
 * sum of normalised terms read from the scoreboard, and orders them best
 * first; channels within tie_margin of the best take turns (round-robin,
 * or random).  Channels cooling down after errors are skipped, except for
 * a trickle of probes when nothing else could serve (rt_eject.c has the
 * ejection rules).  The strategy table below is the only place a rule
 * lives.
 */
#include "router/rt.h"
#include "lib/csv.h"
#include "lib/str.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define T(t)	(1u << (t))
#define STAB_PRIOR	20	/* virtual successes: a young channel's first
				 * errors move its score a little, not a lot */
#define STAB_STREAK	25	/* term points lost per consecutive error */
#define HB_STALE_MS	10000	/* heartbeat older than this: half available */
#define AG_METRICS_STALE_MS 15000 /* an agent's metrics older: ignored */
#define SPEED_TTFB_US	1000000	/* TTFB that reads half speed */
#define SPEED_TPS_MILLI	50000	/* tokens/s (x1000) that read half speed */
#define PRICE_NEUTRAL	(RT_TERM_MAX / 2)

const struct rt_weights rt_default_weights = {
	.w = {
		[RT_T_HEADROOM] = 200, [RT_T_LOAD] = 250,
		[RT_T_STABILITY] = 300, [RT_T_AVAILABILITY] = 150,
		[RT_T_SPEED] = 200, [RT_T_PRICE] = 100, [RT_T_RATING] = 100,
	},
	.tie_break = RT_TIE_ROUND_ROBIN,
	.tie_margin = 50,
};

static const char *const term_names[RT_NTERMS] = {
	[RT_T_HEADROOM] = "headroom", [RT_T_LOAD] = "load",
	[RT_T_STABILITY] = "stability", [RT_T_AVAILABILITY] = "availability",
	[RT_T_SPEED] = "speed", [RT_T_PRICE] = "price", [RT_T_RATING] = "rating",
};

int
rt_model_in(const char *csv, const char *model, int empty_is_all)
{
	if (csv[0] == '\0')
		return empty_is_all;
	return csv_has(csv, model);
}

int
rt_bound_has(const char *list, uint64_t agent_id, const char *channel)
{
	const char *p = list;

	while (p != NULL && *p != '\0') {
		const char *end = strchr(p, ',');
		size_t len = end ? (size_t)(end - p) : strlen(p);
		char item[96], *colon, *stop;
		unsigned long long id;

		while (len > 0 && (*p == ' ' || *p == '\t'))
			p++, len--;
		while (len > 0 && (p[len - 1] == ' ' || p[len - 1] == '\t'))
			len--;
		if (len > 0 && len < sizeof(item)) {
			memcpy(item, p, len);
			item[len] = '\0';
			colon = strchr(item, ':');
			if (colon != NULL)
				*colon++ = '\0';
			id = strtoull(item, &stop, 10);
			if (stop != item && *stop == '\0' && id == agent_id &&
			    (colon == NULL || strcmp(colon, channel) == 0))
				return 1;
		}
		p = end ? end + 1 : NULL;
	}
	return 0;
}

/* Filters: may the strategy use this channel for rq? */
static int
admit_any(const struct rt_request *rq, const struct sb_channel *ch)
{
	return 1;
}

static int
admit_bound(const struct rt_request *rq, const struct sb_channel *ch)
{
	return rq->bound != NULL && rt_bound_has(rq->bound, ch->agent_id, ch->name);
}

/* 'A' is the best grade; "at least B" admits A and B.  No grade: none. */
static int
admit_graded(const struct rt_request *rq, const struct sb_channel *ch)
{
	return rq->min_grade >= 'A' && rq->min_grade <= 'Z' &&
	    ch->grade >= 'A' && ch->grade <= rq->min_grade;
}

/*
 * The strategies, indexed by enum rt_policy: a filter and the terms
 * weighed.  bound keeps to its set and orders it by how much room and
 * health each member has; graded adds the rating; best looks at every
 * grade and adds speed and price.
 */
static const struct rt_strategy {
	const char *name;
	int (*admit)(const struct rt_request *rq, const struct sb_channel *ch);
	unsigned terms;
} strategies[RT_NPOLICIES] = {
	[RT_POLICY_BEST] = { "best", admit_any,
	    T(RT_T_AVAILABILITY) | T(RT_T_STABILITY) | T(RT_T_PRICE) |
	    T(RT_T_LOAD) | T(RT_T_SPEED) },
	[RT_POLICY_BOUND] = { "bound", admit_bound,
	    T(RT_T_HEADROOM) | T(RT_T_LOAD) | T(RT_T_STABILITY) |
	    T(RT_T_AVAILABILITY) },
	[RT_POLICY_GRADED] = { "graded", admit_graded,
	    T(RT_T_HEADROOM) | T(RT_T_LOAD) | T(RT_T_STABILITY) |
	    T(RT_T_AVAILABILITY) | T(RT_T_RATING) },
};

int
rt_policy_parse(const char *name)
{
	if (name == NULL || name[0] == '\0')
		return RT_POLICY_BEST;
	for (int i = 0; i < RT_NPOLICIES; i++)
		if (strcmp(strategies[i].name, name) == 0)
			return i;
	return -1;
}

const char *
rt_policy_name(int policy)
{
	return policy >= 0 && policy < RT_NPOLICIES ? strategies[policy].name : "?";
}

const char *
rt_term_name(int term)
{
	return term >= 0 && term < RT_NTERMS ? term_names[term] : "?";
}

int
rt_policy_uses(int policy, int term)
{
	return policy >= 0 && policy < RT_NPOLICIES && term >= 0 &&
	    term < RT_NTERMS && (strategies[policy].terms & T(term)) != 0;
}

static int
clamp_term(int64_t v)
{
	return v < 0 ? 0 : v > RT_TERM_MAX ? RT_TERM_MAX : (int)v;
}

/* Share of a per-minute limit still free; no limit: all of it. */
static int
room(int64_t used, uint32_t limit)
{
	if (limit == 0)
		return RT_TERM_MAX;
	return clamp_term(RT_TERM_MAX - used * RT_TERM_MAX / (int64_t)limit);
}

/* Every term of one channel, from its descriptive copy and hot counters. */
static void
terms_of(const struct sb *sb, const struct sb_channel *ch,
    const struct sb_chan_hot *h, int64_t now, int *t)
{
	int64_t inflight = atomic_load(&h->inflight);
	int64_t ok = atomic_load(&h->ok), err = atomic_load(&h->err);
	int64_t streak = atomic_load(&h->err_streak);
	int64_t ttfb = atomic_load(&h->ewma_ttfb_us);
	int64_t tps = atomic_load(&h->ewma_tps_milli);
	int64_t req = 0, tok = 0;
	struct sb_agent a;

	/* Minute counters count only in their own minute. */
	if (atomic_load(&h->minute) == now / 60000) {
		req = atomic_load(&h->req_minute);
		tok = atomic_load(&h->tok_minute);
	}
	/* The agent's own count covers every hub it serves: the tighter
	 * figure wins (a stale or last-minute report does not count). */
	if (atomic_load(&h->ag_minute) == now / 60000 &&
	    now - atomic_load(&h->ag_updated_ms) <= AG_METRICS_STALE_MS) {
		if (atomic_load(&h->ag_req_minute) > req)
			req = atomic_load(&h->ag_req_minute);
		if (atomic_load(&h->ag_tok_minute) > tok)
			tok = atomic_load(&h->ag_tok_minute);
	}
	t[RT_T_HEADROOM] = room(req, ch->rpm_limit);
	if (room(tok, ch->tpm_limit) < t[RT_T_HEADROOM])
		t[RT_T_HEADROOM] = room(tok, ch->tpm_limit);

	t[RT_T_LOAD] = (int)(RT_TERM_MAX / (1 + (inflight > 0 ? inflight : 0)));

	if (ok < 0)
		ok = 0;
	if (err < 0)
		err = 0;
	t[RT_T_STABILITY] = clamp_term((ok + STAB_PRIOR) * RT_TERM_MAX /
	    (ok + err + STAB_PRIOR) - STAB_STREAK * streak);

	/* Cooling channels are scored too (a probe carries its score); an
	 * agent whose slot no longer shows it online is on its way out. */
	t[RT_T_AVAILABILITY] = 0;
	if (ch->agent_slot < sb->hdr->max_agents) {
		sb_read_agent(sb, ch->agent_slot, &a);
		if (a.state == SB_AGENT_ONLINE && a.agent_id == ch->agent_id) {
			int64_t seen = a.last_heartbeat_ms > a.since_ms ?
			    a.last_heartbeat_ms : a.since_ms;
			t[RT_T_AVAILABILITY] = now - seen > HB_STALE_MS ?
			    RT_TERM_MAX / 2 : RT_TERM_MAX;
		}
	}

	/* Not measured yet reads as fast, so a new channel gets tried. */
	{
		int64_t s = RT_TERM_MAX, parts = 0, sum = 0;
		if (ttfb > 0) {
			sum += (int64_t)RT_TERM_MAX * SPEED_TTFB_US /
			    (SPEED_TTFB_US + ttfb);
			parts++;
		}
		if (tps > 0) {
			sum += (int64_t)RT_TERM_MAX * tps / (tps + SPEED_TPS_MILLI);
			parts++;
		}
		if (parts > 0)
			s = sum / parts;
		t[RT_T_SPEED] = clamp_term(s);
	}

	/* There is no price table yet: every channel reads the same neutral
	 * value, so the term never changes an order.  When channels carry a
	 * price, cheaper reads higher here. */
	t[RT_T_PRICE] = PRICE_NEUTRAL;

	t[RT_T_RATING] = ch->grade >= 'A' && ch->grade <= 'Z' ?
	    clamp_term(RT_TERM_MAX - (ch->grade - 'A') * (RT_TERM_MAX / 4)) : 0;
}

/* Weighted mean of the strategy's terms, 0..1000 (0 when all weigh 0). */
static int
score_of(int policy, const int *t, const struct rt_weights *w)
{
	int64_t sum = 0, wsum = 0;

	for (int i = 0; i < RT_NTERMS; i++) {
		int wi;
		if (!rt_policy_uses(policy, i))
			continue;
		wi = w->w[i] < 0 ? 0 : w->w[i] > RT_WEIGHT_MAX ? RT_WEIGHT_MAX : w->w[i];
		sum += (int64_t)wi * t[i];
		wsum += wi;
	}
	return wsum > 0 ? (int)(sum / wsum) : 0;
}

void
rt_explain(const struct sb *sb, uint32_t i, const struct rt_weights *w,
    struct rt_explain *out)
{
	struct sb_channel ch;
	const struct sb_chan_hot *h = &sb_channel(sb, i)->hot;
	int64_t now = clock_wall_ms();

	if (w == NULL)
		w = &rt_default_weights;
	memset(out, 0, sizeof(*out));
	sb_read_channel(sb, i, &ch);
	terms_of(sb, &ch, h, now, out->term);
	for (int p = 0; p < RT_NPOLICIES; p++)
		out->score[p] = score_of(p, out->term, w);
	out->ejected = atomic_load(&h->ejected_until_ms) > now;
}

struct scored {
	struct rt_candidate c;
	int top;			/* within tie_margin of the best */
	uint32_t tiebreak;
};

/* The top group first (in tie-break order), then by score. */
static int
cmp_scored(const void *a, const void *b)
{
	const struct scored *x = a, *y = b;

	if (x->top != y->top)
		return x->top ? -1 : 1;
	if (!x->top && x->c.score != y->c.score)
		return x->c.score > y->c.score ? -1 : 1;
	return x->tiebreak < y->tiebreak ? -1 : x->tiebreak > y->tiebreak;
}

static uint32_t
rand32(void)
{
	static uint64_t x;

	if (x == 0)
		x = ((uint64_t)clock_mono_ms() << 20) ^ (uint64_t)getpid() ^
		    0x9e3779b97f4a7c15ull;
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return (uint32_t)(x >> 32);
}

/* One channel as a candidate, scored under the request's strategy. */
static void
fill(struct scored *d, uint32_t i, const struct sb_channel *ch, int score)
{
	d->c.slot = i;
	d->c.agent_id = ch->agent_id;
	str_copy(d->c.channel, sizeof(d->c.channel), ch->name);
	str_copy(d->c.provider, sizeof(d->c.provider), ch->provider);
	d->c.score = score;
}

enum rt_result
rt_candidates(const struct sb *sb, const struct rt_request *rq,
    struct rt_candidate *out, int max, int *n)
{
	return rt_candidates_at(sb, rq, clock_wall_ms(), out, max, n);
}

enum rt_result
rt_candidates_at(const struct sb *sb, const struct rt_request *rq,
    int64_t now, struct rt_candidate *out, int max, int *n)
{
	static uint32_t rr;
	const struct rt_weights *w = rq->weights ? rq->weights : &rt_default_weights;
	const struct rt_strategy *st;
	struct scored *s;
	struct sb_channel ch;
	uint32_t up = 0, count = 0, ntop = 0, j = 0, cooling = 0;
	uint32_t nslots = sb_chan_slots(sb);
	int best = -1, t[RT_NTERMS];

	*n = 0;
	/* Channels ready to serve fill s[] from the front, cooling ones from
	 * the back (the probe candidates); together at most nslots. */
	s = calloc(nslots ? nslots : 1, sizeof(*s));
	if (s == NULL)
		return RT_NO_CHANNELS;
	st = (unsigned)rq->policy < RT_NPOLICIES ? &strategies[rq->policy] : NULL;
	rr++;
	for (uint32_t i = 0; i < nslots; i++) {
		const struct sb_chan_hot *h = &sb_channel(sb, i)->hot;
		sb_read_channel(sb, i, &ch);
		if (ch.state != SB_CHAN_UP)
			continue;
		up++;
		/* An unknown policy admits nothing (fail closed). */
		if (st == NULL || !rt_model_in(ch.models, rq->model, 0) ||
		    !st->admit(rq, &ch))
			continue;
		terms_of(sb, &ch, h, now, t);
		if (atomic_load(&h->ejected_until_ms) > now) {
			fill(&s[nslots - 1 - cooling], i, &ch,
			    score_of(rq->policy, t, w));
			cooling++;
			continue;
		}
		fill(&s[count], i, &ch, score_of(rq->policy, t, w));
		if (s[count].c.score > best)
			best = s[count].c.score;
		count++;
	}
	/* Every channel that could serve cools: let one probe through, on the
	 * first (in turn) whose probe is free.  None free: unavailable (503),
	 * not unknown (404) — the user may retry shortly. */
	if (count == 0 && cooling > 0) {
		for (uint32_t k = 0; k < cooling && max > 0 && *n == 0; k++) {
			struct scored *p = &s[nslots - 1 - (k + rr) % cooling];
			if (rt_probe_claim(&sb_channel(sb, p->c.slot)->hot, now))
				out[(*n)++] = p->c;
		}
		free(s);
		return *n > 0 ? RT_OK : RT_NO_CHANNELS;
	}
	for (uint32_t k = 0; k < count; k++)
		if (s[k].c.score >= best - (w->tie_margin > 0 ? w->tie_margin : 0)) {
			s[k].top = 1;
			ntop++;
		}
	/* Round-robin among equals: the rotation moves by one each call, over
	 * the equals only, so each of them leads equally often. */
	for (uint32_t k = 0; k < count; k++) {
		if (w->tie_break == RT_TIE_RANDOM)
			s[k].tiebreak = rand32();
		else if (s[k].top)
			s[k].tiebreak = (j++ + ntop - rr % ntop) % ntop;
		else
			s[k].tiebreak = (k + count - rr % count) % count;
	}
	if (count > 0) {
		qsort(s, count, sizeof(*s), cmp_scored);
		for (uint32_t i = 0; i < count && (int)i < max; i++)
			out[(*n)++] = s[i].c;
	}
	free(s);
	if (up == 0)
		return RT_NO_CHANNELS;
	return count == 0 ? RT_NO_MODEL : RT_OK;
}

void
rt_models(const struct sb *sb, void (*fn)(const char *model, void *arg),
    void *arg)
{
	struct sb_channel ch;
	char seen[8192] = "";
	size_t used = 0;

	for (uint32_t i = 0; i < sb_chan_slots(sb); i++) {
		sb_read_channel(sb, i, &ch);
		if (ch.state != SB_CHAN_UP)
			continue;
		for (char *save = NULL, *m = strtok_r(ch.models, ",", &save);
		    m != NULL; m = strtok_r(NULL, ",", &save)) {
			if (rt_model_in(seen, m, 0))
				continue;
			if (used + strlen(m) + 2 < sizeof(seen))
				used += (size_t)snprintf(seen + used, sizeof(seen) - used,
				    "%s%s", used ? "," : "", m);
			fn(m, arg);
		}
	}
}
