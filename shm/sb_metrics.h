/*
 * shm/sb_metrics: the metrics area of the scoreboard — counters and
 * histogram buckets the hub's processes write as they work and that the
 * admin child reads to serve GET /metrics (admin/adm_metrics.c).  Like the
 * rest of the scoreboard it holds no pointers, and every field has one
 * writer:
 *
 *   sbm_worker[i]   gateway worker #i (gateway/gw_metrics.c), at the end of
 *                   each request (the quota reservations' counters at
 *                   each reservation); `pid` once at start.
 *   sbm_series      the same worker: a series (surface, model, provider,
 *                   status) is claimed by writing its labels, then
 *                   publishing `used` with a release store; readers load
 *                   `used` with acquire before reading the labels.  Labels
 *                   never change once published; `count` is an atomic.
 *   sbm_billing     billing (billing/bill_admin.c, every few seconds).
 *
 * Readers take relaxed snapshots: a scrape may see a request counted in
 * one counter and not yet in another, never a torn value.
 */
#ifndef SWB_SB_METRICS_H
#define SWB_SB_METRICS_H

#include <stdalign.h>
#include <stdatomic.h>
#include <stdint.h>

#define SBM_WORKERS	64	/* [gateway] workers is at most 64 */
#define SBM_SERIES	128	/* request series per worker */
#define SBM_BUCKETS	12

/* Upper bounds (ms) of the latency and TTFB histogram buckets; the
 * +Inf bucket is the count. */
extern const int64_t sbm_bucket_ms[SBM_BUCKETS];

struct sbm_series {
	alignas(64) _Atomic uint32_t used;	/* 1: labels published */
	uint16_t status;
	uint16_t pad;
	char surface[16];
	char model[64];
	char provider[16];	/* "" before a channel was chosen */
	_Atomic uint64_t count;
};

struct sbm_hist {
	_Atomic uint64_t bucket[SBM_BUCKETS];	/* not cumulative */
	_Atomic uint64_t count;
	_Atomic uint64_t sum_ms;
};

enum sbm_redis { SBM_REDIS_OFF = 0, SBM_REDIS_UP, SBM_REDIS_FALLBACK };

struct sbm_worker {
	alignas(64) _Atomic int32_t pid;	/* 0: never ran */
	_Atomic int32_t redis;			/* enum sbm_redis */
	_Atomic int64_t inflight;		/* requests live at the last end */
	_Atomic int64_t streams;		/* ... of which streams */
	_Atomic uint64_t unlabeled;		/* counted with no series room */
	/* Reservations of tokens with a quota (video jobs aside), at the
	 * reservation (gateway/gw_token.c): waited for billing's answer, or
	 * taken from the worker's quota lease (gateway/gw_lease.c). */
	_Atomic uint64_t quota_waited;
	_Atomic uint64_t quota_leased;
	struct sbm_hist latency;		/* request start -> end */
	struct sbm_hist ttfb;			/* start -> response head */
	struct sbm_series series[SBM_SERIES];
};

struct sbm_billing {
	alignas(64) _Atomic int64_t updated_ms;	/* wall clock; 0: never */
	_Atomic int64_t reserved;		/* charges waiting for a post */
	_Atomic int64_t awaiting;		/* charges waiting for an agent */
	_Atomic int64_t lag_s;			/* age of the oldest of those */
};

struct sb_metrics {
	struct sbm_billing bill;
	struct sbm_worker gw[SBM_WORKERS];
};

struct sb;
struct sb_metrics *sb_metrics(const struct sb *sb);
/* Count v (ms) into h. */
void sbm_observe(struct sbm_hist *h, int64_t v);

#endif
