/*
 * gateway/gw_metrics: what a gateway worker counts about each request,
 * called once when a request ends (gw_req_reset): the request series
 * (surface, model, provider, status), the latency and time-to-first-byte
 * histograms and the in-flight gauges of this worker's area of the
 * scoreboard (shm/sb_metrics.h: this worker is the only writer of
 * sbm_worker[instance]), and the access log line when [gateway] access_log
 * is on.  GET /metrics on the admin listener reads them.
 */
#include <string.h>
#include <stdio.h>
#include <unistd.h>
#include "gateway/gw.h"
#include "gateway/gw_limit.h"
#include "lib/hash.h"
#include "lib/log.h"
#include "shm/sb_metrics.h"

static struct sbm_worker *
my_area(void)
{
	struct child_env *env = gw_env();
	struct sbm_worker *w;

	if (env == NULL || env->sb.hdr == NULL || env->instance >= SBM_WORKERS)
		return NULL;
	w = &sb_metrics(&env->sb)->gw[env->instance];
	if (gw_pid() != atomic_load_explicit(&w->pid, memory_order_relaxed))
		atomic_store_explicit(&w->pid, gw_pid(), memory_order_relaxed);
	return w;
}

/* FNV-1a over the labels: where the series lives in the open table. */
static uint32_t
series_hash(const char *surface, const char *model, const char *prov,
    unsigned status)
{
	uint32_t h = HASH_FNV_INIT;
	const char *parts[3] = { surface, model, prov };

	for (int i = 0; i < 3; i++)
		h = (hash_fnv1a_str(h, parts[i]) ^ 0xff) * 16777619u;
	return (h ^ status) * 16777619u;
}

static int
same(const struct sbm_series *s, const char *surface, const char *model,
    const char *prov, unsigned status)
{
	return s->status == status && strncmp(s->surface, surface,
	    sizeof(s->surface) - 1) == 0 && strncmp(s->model, model,
	    sizeof(s->model) - 1) == 0 && strncmp(s->provider, prov,
	    sizeof(s->provider) - 1) == 0;
}

/* A label, cut to its field (labels are names, never partial UTF-8 we
 * care about: a model name is printable ASCII). */
static void
put(char *dst, size_t size, const char *src)
{
	size_t n = strnlen(src, size - 1);

	memcpy(dst, src, n);
	dst[n] = '\0';
}

static void
count_series(struct sbm_worker *w, const char *surface, const char *model,
    const char *prov, unsigned status)
{
	uint32_t h = series_hash(surface, model, prov, status);

	for (uint32_t i = 0; i < SBM_SERIES; i++) {
		struct sbm_series *s = &w->series[(h + i) % SBM_SERIES];
		if (atomic_load_explicit(&s->used, memory_order_acquire) == 0) {
			/* This worker is the only writer: claim, then publish. */
			s->status = (uint16_t)status;
			put(s->surface, sizeof(s->surface), surface);
			put(s->model, sizeof(s->model), model);
			put(s->provider, sizeof(s->provider), prov);
			atomic_store_explicit(&s->used, 1, memory_order_release);
		} else if (!same(s, surface, model, prov, status))
			continue;
		atomic_fetch_add_explicit(&s->count, 1, memory_order_relaxed);
		return;
	}
	atomic_fetch_add_explicit(&w->unlabeled, 1, memory_order_relaxed);
}

/* The gauges, from the gateway's tick (200 ms), not per request: a walk
 * of the live requests per request would cost O(n) at every end. */
void
gw_metrics_tick(void)
{
	struct sbm_worker *w = my_area();
	int64_t live = 0, streams = 0;

	if (w == NULL)
		return;
	for (const struct gw_req *q = gw_live; q != NULL; q = q->next) {
		live++;
		streams += q->stream != 0;
	}
	atomic_store_explicit(&w->inflight, live, memory_order_relaxed);
	atomic_store_explicit(&w->streams, streams, memory_order_relaxed);
	atomic_store_explicit(&w->redis, !gw_redis_enabled() ?
	    SBM_REDIS_OFF : gw_redis_up() ? SBM_REDIS_UP :
	    SBM_REDIS_FALLBACK, memory_order_relaxed);
}

void
gw_metrics_end(const struct gw_req *r)
{
	struct sbm_worker *w = my_area();
	struct child_env *env = gw_env();
	const char *surface = r->surface != NULL ? r->surface->name : "none";
	const char *prov = "";
	char chan[64] = "-";
	int64_t now = clock_mono_ms(), dur = now - r->started_ms, ttfb = -1;
	unsigned status = r->status > 0 ? (unsigned)r->status : 499;

	if (r->relayed && r->cur < r->ncand) {
		prov = r->cand[r->cur].provider;
		snprintf(chan, sizeof(chan), "%.31s@%llu", r->cand[r->cur].channel,
		    (unsigned long long)r->cand[r->cur].agent_id);
	}
	if (r->head_ms > 0)
		ttfb = r->head_ms - r->started_ms;
	if (w != NULL) {
		count_series(w, surface, r->model, prov, status);
		sbm_observe(&w->latency, dur);
		if (ttfb >= 0)
			sbm_observe(&w->ttfb, ttfb);
	}
	if (env != NULL && env->conf.gw_access_log) {
		char line[512];

		snprintf(line, sizeof(line), "access status=%u surface=%s "
		    "model=%s provider=%s channel=%s ttfb_ms=%lld "
		    "duration_ms=%lld stream=%d input_tokens=%lld "
		    "output_tokens=%lld cached_tokens=%lld",
		    status, surface, r->model[0] ? r->model : "-",
		    prov[0] ? prov : "-", chan,
		    (long long)ttfb, (long long)dur, r->stream,
		    (long long)r->usage.input_tokens,
		    (long long)r->usage.output_tokens,
		    (long long)r->usage.cached_tokens);
		/* A charged request's line waits for billing's amount. */
		if (r->posted)
			gw_access_log(r->reqid, line, r->posted_state,
			    r->posted_amount);
		else if (r->charge != GW_CH_SETTLED ||
		    gw_charge_hold_line(r->charge_id, line) != 0)
			gw_access_log(r->reqid, line, IPC_POSTED_VOIDED, 0);
	}
}

void
gw_access_log(uint64_t reqid, const char *line, uint32_t state,
    int64_t amount)
{
	if (state == IPC_POSTED_AWAITING)
		log_rinfo(reqid, "%s amount=awaiting estimate=%lld", line,
		    (long long)amount);
	else
		log_rinfo(reqid, "%s amount=%lld", line,
		    state == IPC_POSTED_CHARGED ? (long long)amount : 0LL);
}

void
gw_metrics_quota_reserve(int leased)
{
	struct sbm_worker *w = my_area();

	if (w != NULL)
		atomic_fetch_add_explicit(leased ? &w->quota_leased :
		    &w->quota_waited, 1, memory_order_relaxed);
}
