/*
 * router/rt_eject: a channel's health from the outcomes of its requests —
 * ejection, cool-down, probes and re-admission.  The tunnel reports every
 * finished request here (rt_health_record, the one writer of the health
 * fields of sb_chan_hot); the router reads them in rt_candidates and
 * claims probes (rt_probe_claim, the one writer of probe_ms).
 *
 * The rules, as a half-open circuit breaker:
 *  - three consecutive failures eject a channel for a cool-down;
 *  - a request that was already in flight when the channel was ejected
 *    (it started at or before the ejection) tells nothing new: its failure
 *    neither counts towards a streak nor ejects again, so a burst of
 *    parallel failures ejects once;
 *  - a failure while the channel cools (a probe) leaves the cool-down as
 *    it is;
 *  - a success of a request started after the ejection resets the streak
 *    and the repeat count and, when it was a probe, re-admits the channel
 *    at once;
 *  - the cool-down doubles (up to RT_EJECT_MAX_MS) only when a channel
 *    that was re-admitted without a success since is ejected again;
 *  - while every channel that could serve a request cools, one request per
 *    channel per RT_PROBE_INTERVAL_MS goes through as a probe instead of
 *    all being refused.
 */
#include "router/rt.h"

int64_t
rt_eject_cool_ms(int64_t ejections)
{
	int64_t n = ejections < 0 ? 0 : ejections > 16 ? 16 : ejections;
	int64_t cool = (int64_t)RT_EJECT_BASE_MS << n;

	return cool > RT_EJECT_MAX_MS ? RT_EJECT_MAX_MS : cool;
}

enum rt_health
rt_health_record(struct sb_chan_hot *h, int ok, int64_t started_ms,
    int64_t now_ms, int64_t *cool_ms)
{
	int64_t at = atomic_load(&h->ejected_at_ms);
	int64_t until = atomic_load(&h->ejected_until_ms);
	int64_t streak, n;

	/* In flight when the channel was ejected: counted, nothing more. */
	if (at > 0 && started_ms <= at) {
		atomic_fetch_add(ok ? &h->ok : &h->err, 1);
		return RT_H_STALE;
	}
	if (ok) {
		atomic_fetch_add(&h->ok, 1);
		atomic_store(&h->err_streak, 0);
		atomic_store(&h->ejections, 0);
		if (until > now_ms) {
			atomic_store(&h->ejected_until_ms, 0);
			return RT_H_READMITTED;
		}
		return RT_H_OK;
	}
	atomic_fetch_add(&h->err, 1);
	if (until > now_ms)
		return RT_H_COOLING;	/* a failed probe: the cool-down stands */
	streak = atomic_load(&h->err_streak) + 1;
	if (streak < RT_EJECT_STREAK) {
		atomic_store(&h->err_streak, streak);
		return RT_H_FAILED;
	}
	n = atomic_load(&h->ejections);
	*cool_ms = rt_eject_cool_ms(n);
	atomic_store(&h->ejections, n + 1);
	atomic_store(&h->err_streak, 0);
	atomic_store(&h->ejected_at_ms, now_ms);
	atomic_store(&h->ejected_until_ms, now_ms + *cool_ms);
	return RT_H_EJECTED;
}

int
rt_probe_claim(struct sb_chan_hot *h, int64_t now_ms)
{
	int64_t last = atomic_load(&h->probe_ms);

	if (last > 0 && now_ms - last < RT_PROBE_INTERVAL_MS &&
	    now_ms >= last)
		return 0;
	/* Gateways race for the probe: one compare-and-swap wins it. */
	return atomic_compare_exchange_strong(&h->probe_ms, &last, now_ms);
}
