/*
 * agent/ag_metrics: agentd's own per-channel figures, counted over every
 * link (every hub) it serves: requests admitted, tokens (the input
 * estimate at admission, the output when the answer ends) and failed
 * upstream calls in the current UTC minute, and the mean time to the
 * provider's response head.  agent/ag_stream counts into it and
 * agent/ag_status sends one metrics frame per channel every
 * AG_METRICS_EVERY_MS (lib/frame.h says the fields); the hub's tunnel
 * writes them into the scoreboard beside its own figures.  lws thread
 * only; time comes in.
 */
#ifndef SWB_AG_METRICS_H
#define SWB_AG_METRICS_H

#include <stdint.h>
#include "agent/ag_conf.h"

#define AG_METRICS_EVERY_MS	2000

struct ag_chan_metrics {
	int64_t minute;			/* unix minute of the counters */
	int64_t requests, tokens, errors;	/* this minute */
	int64_t lat_sum_ms, lat_n;	/* this minute's heads */
	int64_t last_latency_ms;	/* the previous minute's mean, kept */
	int64_t total_requests, total_errors;	/* since start */
};

struct ag_metrics {
	struct ag_chan_metrics ch[AG_MAX_CHANNELS];
};

void ag_metrics_request(struct ag_metrics *m, int ci, int64_t tokens,
    int64_t now_ms);
void ag_metrics_tokens(struct ag_metrics *m, int ci, int64_t tokens,
    int64_t now_ms);
void ag_metrics_error(struct ag_metrics *m, int ci, int64_t now_ms);
void ag_metrics_latency(struct ag_metrics *m, int ci, int64_t ms,
    int64_t now_ms);
/* ci's figures as of now_ms (zero counters once their minute passed). */
void ag_metrics_get(const struct ag_metrics *m, int ci, int64_t now_ms,
    struct ag_chan_metrics *out, int64_t *latency_ms);

#endif
