/*
 * agent/ag_metrics: per-channel minute counters of agentd (see
 * ag_metrics.h).
 */
#include "agent/ag_metrics.h"

#include <string.h>

/* ci's counters, moved to the minute of now_ms; NULL for a bad index. */
static struct ag_chan_metrics *
at(struct ag_metrics *m, int ci, int64_t now_ms)
{
	struct ag_chan_metrics *c;
	int64_t minute = now_ms / 60000;

	if (ci < 0 || ci >= AG_MAX_CHANNELS)
		return NULL;
	c = &m->ch[ci];
	if (c->minute != minute) {
		if (c->lat_n > 0)
			c->last_latency_ms = c->lat_sum_ms / c->lat_n;
		c->minute = minute;
		c->requests = c->tokens = c->errors = 0;
		c->lat_sum_ms = c->lat_n = 0;
	}
	return c;
}

void
ag_metrics_request(struct ag_metrics *m, int ci, int64_t tokens,
    int64_t now_ms)
{
	struct ag_chan_metrics *c = at(m, ci, now_ms);

	if (c == NULL)
		return;
	c->requests++;
	c->total_requests++;
	c->tokens += tokens > 0 ? tokens : 0;
}

void
ag_metrics_tokens(struct ag_metrics *m, int ci, int64_t tokens, int64_t now_ms)
{
	struct ag_chan_metrics *c = at(m, ci, now_ms);

	if (c != NULL && tokens > 0)
		c->tokens += tokens;
}

void
ag_metrics_error(struct ag_metrics *m, int ci, int64_t now_ms)
{
	struct ag_chan_metrics *c = at(m, ci, now_ms);

	if (c == NULL)
		return;
	c->errors++;
	c->total_errors++;
}

void
ag_metrics_latency(struct ag_metrics *m, int ci, int64_t ms, int64_t now_ms)
{
	struct ag_chan_metrics *c = at(m, ci, now_ms);

	if (c == NULL || ms < 0)
		return;
	c->lat_sum_ms += ms;
	c->lat_n++;
}

void
ag_metrics_get(const struct ag_metrics *m, int ci, int64_t now_ms,
    struct ag_chan_metrics *out, int64_t *latency_ms)
{
	memset(out, 0, sizeof(*out));
	*latency_ms = 0;
	if (ci < 0 || ci >= AG_MAX_CHANNELS)
		return;
	*out = m->ch[ci];
	if (out->minute != now_ms / 60000) {
		if (out->lat_n > 0)
			out->last_latency_ms = out->lat_sum_ms / out->lat_n;
		out->requests = out->tokens = out->errors = 0;
		out->lat_sum_ms = out->lat_n = 0;
		out->minute = now_ms / 60000;
	}
	*latency_ms = out->lat_n > 0 ? out->lat_sum_ms / out->lat_n :
	    out->last_latency_ms;
}
