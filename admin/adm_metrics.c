/*
 * admin/adm_metrics: GET /metrics in the Prometheus text format (0.0.4).
 * Reads the scoreboard like any reader (seqlock copies, atomic loads):
 * the gateway workers' request series and histograms and the billing
 * figures of the metrics area (shm/sb_metrics.h), agents online, child
 * restarts; per channel the figures and scores of the "channels" command
 * (master/admin_channels.c), whose answer the master sent after it
 * accepted the key.  Series of all workers are summed per label set.
 */
#include "admin/adm.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "shm/sb_metrics.h"

static void
out(struct adm_buf *b, const char *fmt, ...)
{
	char line[1024];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (n > 0)
		adm_buf_add(b, line, (size_t)n < sizeof(line) ? (size_t)n :
		    sizeof(line) - 1);
}

static void
help(struct adm_buf *b, const char *name, const char *type, const char *text)
{
	out(b, "# HELP %s %s\n# TYPE %s %s\n", name, text, name, type);
}

/* A label value: backslash, quote and newline escaped; bounded. */
static const char *
lv(const char *s, size_t max, char *buf, size_t len)
{
	size_t o = 0;

	for (size_t i = 0; i < max && s[i] && o + 3 < len; i++) {
		if (s[i] == '\\' || s[i] == '"') {
			buf[o++] = '\\';
			buf[o++] = s[i];
		} else if (s[i] == '\n') {
			buf[o++] = '\\';
			buf[o++] = 'n';
		} else
			buf[o++] = s[i];
	}
	buf[o] = '\0';
	return buf;
}

/* The request series of every worker, summed per label set. */
struct agg {
	char surface[16], model[64], provider[16];
	unsigned status;
	uint64_t count;
};

static void
requests(struct adm_buf *b, struct sb_metrics *mt)
{
	size_t cap = SBM_WORKERS * SBM_SERIES, n = 0;
	struct agg *a = calloc(cap, sizeof(*a));
	uint64_t unlabeled = 0;
	char s1[40], s2[140], s3[40];

	help(b, "swb_requests_total", "counter",
	    "Requests ended, by surface, model, provider and HTTP status.");
	if (a == NULL)
		return;
	for (int w = 0; w < SBM_WORKERS; w++) {
		struct sbm_worker *wk = &mt->gw[w];
		unlabeled += atomic_load_explicit(&wk->unlabeled,
		    memory_order_relaxed);
		for (int i = 0; i < SBM_SERIES; i++) {
			struct sbm_series *s = &wk->series[i];
			struct agg x;
			size_t j;
			if (atomic_load_explicit(&s->used, memory_order_acquire) == 0)
				continue;
			memset(&x, 0, sizeof(x));
			memcpy(x.surface, s->surface, sizeof(x.surface) - 1);
			memcpy(x.model, s->model, sizeof(x.model) - 1);
			memcpy(x.provider, s->provider, sizeof(x.provider) - 1);
			x.status = s->status;
			x.count = atomic_load_explicit(&s->count, memory_order_relaxed);
			for (j = 0; j < n; j++)
				if (a[j].status == x.status &&
				    strcmp(a[j].surface, x.surface) == 0 &&
				    strcmp(a[j].model, x.model) == 0 &&
				    strcmp(a[j].provider, x.provider) == 0)
					break;
			if (j == n)
				a[n++] = x;
			else
				a[j].count += x.count;
		}
	}
	for (size_t j = 0; j < n; j++)
		out(b, "swb_requests_total{surface=\"%s\",model=\"%s\","
		    "provider=\"%s\",status=\"%u\"} %llu\n",
		    lv(a[j].surface, sizeof(a[j].surface), s1, sizeof(s1)),
		    lv(a[j].model, sizeof(a[j].model), s2, sizeof(s2)),
		    lv(a[j].provider, sizeof(a[j].provider), s3, sizeof(s3)),
		    a[j].status, (unsigned long long)a[j].count);
	free(a);
	help(b, "swb_requests_unlabeled_total", "counter",
	    "Requests counted with no room left for their label set.");
	out(b, "swb_requests_unlabeled_total %llu\n",
	    (unsigned long long)unlabeled);
}

static void
histogram(struct adm_buf *b, struct sb_metrics *mt, const char *name,
    const char *text, size_t off)
{
	uint64_t bucket[SBM_BUCKETS] = { 0 }, count = 0, sum = 0, cum = 0;

	for (int w = 0; w < SBM_WORKERS; w++) {
		struct sbm_hist *h = (struct sbm_hist *)(void *)
		    ((char *)&mt->gw[w] + off);
		for (int i = 0; i < SBM_BUCKETS; i++)
			bucket[i] += atomic_load_explicit(&h->bucket[i],
			    memory_order_relaxed);
		count += atomic_load_explicit(&h->count, memory_order_relaxed);
		sum += atomic_load_explicit(&h->sum_ms, memory_order_relaxed);
	}
	help(b, name, "histogram", text);
	for (int i = 0; i < SBM_BUCKETS; i++) {
		cum += bucket[i];
		out(b, "%s_bucket{le=\"%g\"} %llu\n", name,
		    (double)sbm_bucket_ms[i] / 1000.0, (unsigned long long)cum);
	}
	/* +Inf is the count: read last, it is never below the buckets. */
	if (count < cum)
		count = cum;
	out(b, "%s_bucket{le=\"+Inf\"} %llu\n", name, (unsigned long long)count);
	out(b, "%s_sum %.3f\n", name, (double)sum / 1000.0);
	out(b, "%s_count %llu\n", name, (unsigned long long)count);
}

static void
gauges(struct adm_buf *b, const struct sb *sb, struct sb_metrics *mt)
{
	int64_t inflight = 0, streams = 0, redis_fb = 0, redis_up = 0;
	int64_t relaying = 0;
	uint64_t waited = 0, leased = 0;
	uint32_t online = 0;

	for (int w = 0; w < SBM_WORKERS; w++) {
		struct sbm_worker *wk = &mt->gw[w];
		int r = atomic_load_explicit(&wk->redis, memory_order_relaxed);
		if (atomic_load_explicit(&wk->pid, memory_order_relaxed) == 0)
			continue;
		inflight += atomic_load_explicit(&wk->inflight, memory_order_relaxed);
		streams += atomic_load_explicit(&wk->streams, memory_order_relaxed);
		redis_fb += r == SBM_REDIS_FALLBACK;
		redis_up += r == SBM_REDIS_UP;
		waited += atomic_load_explicit(&wk->quota_waited,
		    memory_order_relaxed);
		leased += atomic_load_explicit(&wk->quota_leased,
		    memory_order_relaxed);
	}
	for (uint32_t i = 0; i < sb->hdr->max_channels; i++)
		relaying += atomic_load(&sb_channel(sb, i)->hot.inflight);
	for (uint32_t i = 0; i < sb->hdr->max_agents; i++) {
		struct sb_agent a;
		sb_read_agent(sb, i, &a);
		online += a.state == SB_AGENT_ONLINE;
	}
	help(b, "swb_inflight_requests", "gauge", "Requests being served by the "
	    "gateway workers (as of each worker's last finished request).");
	out(b, "swb_inflight_requests %lld\n", (long long)inflight);
	help(b, "swb_inflight_streams", "gauge", "Of those, streams.");
	out(b, "swb_inflight_streams %lld\n", (long long)streams);
	help(b, "swb_relaying_requests", "gauge",
	    "Requests relayed to a channel right now (scoreboard).");
	out(b, "swb_relaying_requests %lld\n", (long long)relaying);
	help(b, "swb_agents_online", "gauge", "Agents connected and welcomed.");
	out(b, "swb_agents_online %u\n", online);
	help(b, "swb_redis_fallback", "gauge", "Gateway workers counting rate "
	    "limits locally because Redis is configured but unreachable.");
	out(b, "swb_redis_fallback %lld\n", (long long)redis_fb);
	help(b, "swb_redis_up", "gauge", "Gateway workers with Redis reachable.");
	out(b, "swb_redis_up %lld\n", (long long)redis_up);
	help(b, "swb_quota_reservations_total", "counter", "Reservations of "
	    "tokens with a quota: waited for billing's answer, or taken from "
	    "the gateway worker's quota lease.");
	out(b, "swb_quota_reservations_total{how=\"waited\"} %llu\n",
	    (unsigned long long)waited);
	out(b, "swb_quota_reservations_total{how=\"leased\"} %llu\n",
	    (unsigned long long)leased);
}

static void
billing(struct adm_buf *b, struct sb_metrics *mt)
{
	struct sbm_billing *bl = &mt->bill;

	help(b, "swb_billing_reserved", "gauge",
	    "Charges reserved and not yet posted (billing's queue).");
	out(b, "swb_billing_reserved %lld\n",
	    (long long)atomic_load(&bl->reserved));
	help(b, "swb_billing_awaiting", "gauge",
	    "Charges waiting for their agent's usage report.");
	out(b, "swb_billing_awaiting %lld\n",
	    (long long)atomic_load(&bl->awaiting));
	help(b, "swb_billing_settlement_lag_seconds", "gauge",
	    "Age of the oldest charge not yet settled.");
	out(b, "swb_billing_settlement_lag_seconds %lld\n",
	    (long long)atomic_load(&bl->lag_s));
}

static void
procs(struct adm_buf *b, const struct sb *sb)
{
	help(b, "swb_child_restarts_total", "counter",
	    "Restarts of each hub child since hubd started.");
	for (uint32_t i = 0; i < sb->hdr->max_procs; i++) {
		struct sb_proc p;
		char nm[40];
		sb_read_proc(sb, i, &p);
		if (p.state == SB_PROC_FREE)
			continue;
		out(b, "swb_child_restarts_total{kind=\"%s\",instance=\"%u\"} %u\n",
		    lv(p.name, sizeof(p.name), nm, sizeof(nm)), p.instance,
		    p.restarts);
	}
	help(b, "swb_child_up", "gauge", "1 while a hub child runs.");
	for (uint32_t i = 0; i < sb->hdr->max_procs; i++) {
		struct sb_proc p;
		char nm[40];
		sb_read_proc(sb, i, &p);
		if (p.state == SB_PROC_FREE)
			continue;
		out(b, "swb_child_up{kind=\"%s\",instance=\"%u\"} %d\n",
		    lv(p.name, sizeof(p.name), nm, sizeof(nm)), p.instance,
		    p.state == SB_PROC_RUNNING);
	}
}

static void
channels(struct adm_buf *b, json_t *list)
{
	static const struct { const char *name, *type, *key, *help; } f[] = {
		{ "swb_channel_score", "gauge", NULL,
		  "Router score (0..1000) of a channel under each strategy." },
		{ "swb_channel_ejected", "gauge", "ejected",
		  "1 while a channel cools down after errors." },
		{ "swb_channel_ejections_total", "counter", "ejections",
		  "How often a channel was ejected." },
		{ "swb_channel_cooldown_seconds", "gauge", "ejected_until_ms",
		  "Cool-down left." },
		{ "swb_channel_inflight", "gauge", "inflight",
		  "Requests relayed on the channel now." },
		{ "swb_channel_ok_total", "counter", "ok",
		  "Upstream calls that succeeded." },
		{ "swb_channel_errors_total", "counter", "err",
		  "Upstream calls that failed." },
	};
	size_t i;
	json_t *c;
	json_int_t now = 0;

	(void)now;
	for (size_t k = 0; k < sizeof(f) / sizeof(f[0]); k++) {
		help(b, f[k].name, f[k].type, f[k].help);
		json_array_foreach(list, i, c) {
			char ag[32], ch[80], pv[40];
			const char *chan = json_string_value(json_object_get(c, "channel"));
			const char *prov = json_string_value(json_object_get(c, "provider"));
			snprintf(ag, sizeof(ag), "%lld", (long long)json_integer_value(
			    json_object_get(c, "agent_id")));
			lv(chan ? chan : "", 64, ch, sizeof(ch));
			lv(prov ? prov : "", 16, pv, sizeof(pv));
			if (f[k].key == NULL) {
				const char *pol;
				json_t *s;
				json_object_foreach(json_object_get(c, "scores"), pol, s)
					out(b, "%s{agent=\"%s\",channel=\"%s\","
					    "provider=\"%s\",strategy=\"%s\"} %lld\n",
					    f[k].name, ag, ch, pv, pol, (long long)
					    json_integer_value(json_object_get(s, "score")));
				continue;
			}
			json_t *v = json_object_get(c, f[k].key);
			long long x = json_is_boolean(v) ? json_is_true(v) :
			    (long long)json_integer_value(v);
			if (strcmp(f[k].key, "ejected_until_ms") == 0) {
				long long nowms = (long long)clock_wall_ms();
				x = x > nowms ? (x - nowms + 999) / 1000 : 0;
			}
			out(b, "%s{agent=\"%s\",channel=\"%s\",provider=\"%s\"} %lld\n",
			    f[k].name, ag, ch, pv, x);
		}
	}
}

void
adm_metrics_render(const struct sb *sb, json_t *chans, struct adm_buf *b)
{
	struct sb_metrics *mt = sb_metrics(sb);

	requests(b, mt);
	histogram(b, mt, "swb_request_duration_seconds",
	    "Time from a request's head to its end.",
	    offsetof(struct sbm_worker, latency));
	histogram(b, mt, "swb_time_to_first_byte_seconds",
	    "Time from a request's head to its response head.",
	    offsetof(struct sbm_worker, ttfb));
	gauges(b, sb, mt);
	billing(b, mt);
	procs(b, sb);
	channels(b, chans);
}
