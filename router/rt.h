/*
 * router/rt: the one call that chooses channels for a request, reading the
 * live scoreboard without locks (seqlock copies).  Strategies are entries
 * in a table (rt.c): each has a name, a filter (which channels it may use)
 * and the scoring terms it weighs.  bound, graded and best are the entries
 * today; a new rule is a new entry.
 */
#ifndef SWB_RT_H
#define SWB_RT_H

#include <stdint.h>
#include "shm/sb.h"

#define RT_MAX_CANDIDATES 8
#define RT_WEIGHT_MAX	1000		/* each weight is 0..RT_WEIGHT_MAX */
#define RT_TERM_MAX	1000		/* each term reads 0..RT_TERM_MAX */

/* A token's routing policy: the index of its strategy in the table. */
enum rt_policy {
	RT_POLICY_BEST = 0,	/* any grade (the default) */
	RT_POLICY_BOUND,	/* only the token's agents/channels */
	RT_POLICY_GRADED,	/* only channels at or above a minimum grade */
	RT_NPOLICIES
};

/* Scoring terms; every one is normalised to 0..RT_TERM_MAX, higher better. */
enum rt_term {
	RT_T_HEADROOM = 0,	/* rpm/tpm limits vs this minute's counters */
	RT_T_LOAD,		/* requests in flight */
	RT_T_STABILITY,		/* error rate (ok/err) and error streak */
	RT_T_AVAILABILITY,	/* agent connected, heartbeat fresh */
	RT_T_SPEED,		/* time to first byte, tokens per second */
	RT_T_PRICE,		/* neutral until there is a price table */
	RT_T_RATING,		/* the channel's grade */
	RT_NTERMS
};

enum rt_tie { RT_TIE_ROUND_ROBIN = 0, RT_TIE_RANDOM };

/* The operator's knobs ([router] in hubd.ini; they change on reload). */
struct rt_weights {
	int w[RT_NTERMS];	/* 0..RT_WEIGHT_MAX per term */
	int tie_break;		/* enum rt_tie */
	int tie_margin;		/* channels scoring within this of the best
				 * (0..1000) count as equal and take turns */
};
extern const struct rt_weights rt_default_weights;

struct rt_request {
	const char *model;		/* as the user asked */
	const char *allowed_models;	/* the token's list, "" = any */
	enum rt_policy policy;		/* 0 = best */
	char min_grade;			/* graded: 'A'..'Z', "at least" */
	const char *bound;		/* bound: "AGENT_ID[:CHANNEL],..." */
	const struct rt_weights *weights;	/* NULL: rt_default_weights */
};

struct rt_candidate {
	uint32_t slot;			/* scoreboard channel slot */
	uint64_t agent_id;
	char channel[32];
	char provider[16];
	int score;			/* 0..1000 under the request's strategy */
};

enum rt_result {
	RT_OK = 0,		/* candidates filled, best first */
	RT_NO_CHANNELS,		/* no channel online, or all that would serve
				 * are cooling down after errors: 503 */
	RT_NO_MODEL,		/* no online channel this token may use serves
				 * this model: 404 */
};

/*
 * Fill out[] (at most max) with channels for rq, best first.  Channels in
 * their cool-down are skipped; when every channel that could serve rq
 * cools, one of them whose probe is free (rt_probe_claim) is the single
 * candidate, a probe, and RT_OK is returned.
 */
enum rt_result rt_candidates(const struct sb *sb, const struct rt_request *rq,
    struct rt_candidate *out, int max, int *n);
/* The same at a given wall-clock time (tests). */
enum rt_result rt_candidates_at(const struct sb *sb, const struct rt_request *rq,
    int64_t now_ms, struct rt_candidate *out, int max, int *n);
/* Is model in the comma-separated list?  An empty list allows all. */
int rt_model_in(const char *csv, const char *model, int empty_is_all);
/* Call fn once per distinct model an online channel serves. */
void rt_models(const struct sb *sb, void (*fn)(const char *model, void *arg),
    void *arg);

/* "best"/"bound"/"graded" -> policy; "" is best; -1 when unknown. */
int rt_policy_parse(const char *name);
const char *rt_policy_name(int policy);
const char *rt_term_name(int term);
/* Does the policy's strategy weigh term? */
int rt_policy_uses(int policy, int term);
/* Is agent_id (and channel name) in a bound list "ID[:CH],..."? */
int rt_bound_has(const char *list, uint64_t agent_id, const char *channel);

/* Why a channel scores what it does (hubctl channels). */
struct rt_explain {
	int term[RT_NTERMS];		/* each 0..RT_TERM_MAX */
	int score[RT_NPOLICIES];	/* under each strategy, 0..1000 */
	int ejected;			/* skipped until its cool-down ends */
};
/* Terms and scores of channel slot i as the router sees it now. */
void rt_explain(const struct sb *sb, uint32_t i, const struct rt_weights *w,
    struct rt_explain *out);

/*
 * Ejection (router/rt_eject.c): what one finished request says about its
 * channel.  Called by the tunnel, the single writer of the health fields
 * (ok, err, err_streak, ejections, ejected_at_ms, ejected_until_ms).
 */
#define RT_EJECT_STREAK		3	/* consecutive failures that eject */
#define RT_EJECT_BASE_MS	5000	/* first cool-down */
#define RT_EJECT_MAX_MS		300000	/* longest cool-down */
#define RT_PROBE_INTERVAL_MS	1000	/* ms between probes of a cooling channel */

enum rt_health {
	RT_H_OK = 0,		/* a success: streak and repeat count reset */
	RT_H_FAILED,		/* a failure counted towards the streak */
	RT_H_EJECTED,		/* this failure ejected the channel (*cool_ms) */
	RT_H_READMITTED,	/* a probe succeeded: the cool-down is over */
	RT_H_COOLING,		/* a probe failed: the cool-down stands */
	RT_H_STALE,		/* in flight when the channel was ejected:
				 * counted in ok/err, nothing else */
};
/* Record one request of the channel: ok or not, when it started and now
 * (wall-clock ms).  *cool_ms is set when RT_H_EJECTED is returned. */
enum rt_health rt_health_record(struct sb_chan_hot *h, int ok,
    int64_t started_ms, int64_t now_ms, int64_t *cool_ms);
/* The cool-down of a channel ejected `ejections` times in a row before. */
int64_t rt_eject_cool_ms(int64_t ejections);
/* Claim the channel's probe for now (gateways race; one wins per
 * RT_PROBE_INTERVAL_MS).  1 when claimed. */
int rt_probe_claim(struct sb_chan_hot *h, int64_t now_ms);

#endif
