/*
 * router/rt: the one call that chooses channels for a request, reading the
 * live scoreboard without locks (seqlock copies).  Strategies are entries
 * in a table (rt.c); today there is one, "least-loaded", and the scored
 * bound/graded/best strategies of DESIGN.md join it as entries.
 */
#ifndef SWB_RT_H
#define SWB_RT_H

#include <stdint.h>
#include "shm/sb.h"

#define RT_MAX_CANDIDATES 8

struct rt_request {
	const char *model;		/* as the user asked */
	const char *allowed_models;	/* the token's list, "" = any */
};

struct rt_candidate {
	uint32_t slot;			/* scoreboard channel slot */
	uint64_t agent_id;
	char channel[32];
	char provider[16];
};

enum rt_result {
	RT_OK = 0,		/* candidates filled, best first */
	RT_NO_CHANNELS,		/* no channel is online at all: 503 */
	RT_NO_MODEL,		/* no online channel serves this model: 404 */
};

/* Fill out[] (at most max) with channels for rq, best first. */
enum rt_result rt_candidates(const struct sb *sb, const struct rt_request *rq,
    struct rt_candidate *out, int max, int *n);
/* Is model in the comma-separated list?  An empty list allows all. */
int rt_model_in(const char *csv, const char *model, int empty_is_all);
/* Call fn once per distinct model an online channel serves. */
void rt_models(const struct sb *sb, void (*fn)(const char *model, void *arg),
    void *arg);

#endif
