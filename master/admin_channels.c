/*
 * master/admin_channels: builds the answer of `hubctl channels` from the
 * scoreboard (seqlock copies and atomic loads, like any reader) and
 * rt_explain(): per channel its figures and, per strategy, the score and
 * the terms that made it ("why": value 0..1000, weight, points).
 */
#include "master/admin_channels.h"

#include <stdio.h>
#include "router/rt.h"

/* The agent's own figures (metrics frames; shm/sb.h ag_*), or null
 * before its first report. */
static json_t *
agent_metrics_json(const struct sb_chan_hot *h, int64_t now)
{
	int64_t upd = atomic_load(&h->ag_updated_ms);
	int cur = atomic_load(&h->ag_minute) == now / 60000;

	if (upd == 0)
		return json_null();
	return json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I}",
	    "age_ms", (json_int_t)(now - upd),
	    "requests_minute", (json_int_t)(cur ?
	    atomic_load(&h->ag_req_minute) : 0),
	    "tokens_minute", (json_int_t)(cur ?
	    atomic_load(&h->ag_tok_minute) : 0),
	    "errors_minute", (json_int_t)(cur ?
	    atomic_load(&h->ag_err_minute) : 0),
	    "inflight", (json_int_t)atomic_load(&h->ag_inflight),
	    "latency_ms", (json_int_t)atomic_load(&h->ag_latency_ms),
	    "bucket_requests", (json_int_t)atomic_load(&h->ag_bucket_req));
}

static json_t *
weights_json(const struct rt_weights *w)
{
	json_t *o = json_object();

	for (int t = 0; t < RT_NTERMS; t++)
		json_object_set_new(o, rt_term_name(t), json_integer(w->w[t]));
	json_object_set_new(o, "tie_break", json_string(
	    w->tie_break == RT_TIE_RANDOM ? "random" : "round_robin"));
	json_object_set_new(o, "tie_margin", json_integer(w->tie_margin));
	return o;
}

/* Per strategy: its score and each weighed term's share of it. */
static json_t *
scores_json(const struct rt_explain *e, const struct rt_weights *w)
{
	json_t *o = json_object();

	for (int p = 0; p < RT_NPOLICIES; p++) {
		json_t *why = json_object();
		int64_t wsum = 0;

		for (int t = 0; t < RT_NTERMS; t++)
			if (rt_policy_uses(p, t))
				wsum += w->w[t];
		for (int t = 0; t < RT_NTERMS; t++) {
			if (!rt_policy_uses(p, t))
				continue;
			json_object_set_new(why, rt_term_name(t), json_pack(
			    "{s:i, s:i, s:I}", "value", e->term[t],
			    "weight", w->w[t], "points", (json_int_t)(wsum > 0 ?
			    (int64_t)w->w[t] * e->term[t] / wsum : 0)));
		}
		json_object_set_new(o, rt_policy_name(p), json_pack("{s:i, s:o}",
		    "score", e->score[p], "why", why));
	}
	return o;
}

json_t *
admin_channels_json(const struct sb *sb, const struct hub_conf *cf)
{
	struct rt_weights w;
	json_t *list = json_array();
	int64_t now = clock_wall_ms();

	hub_conf_rt_weights(cf, &w);
	for (uint32_t i = 0; i < sb->hdr->max_channels; i++) {
		const struct sb_chan_hot *h = &sb_channel(sb, i)->hot;
		struct sb_channel ch;
		struct sb_agent a;
		struct rt_explain e;
		char grade[2] = { 0, 0 };
		const char *agent = "";
		int64_t req = 0, tok = 0, until;
		json_t *o;

		sb_read_channel(sb, i, &ch);
		if (ch.state != SB_CHAN_UP)
			continue;
		if (ch.agent_slot < sb->hdr->max_agents) {
			sb_read_agent(sb, ch.agent_slot, &a);
			if (a.state != SB_AGENT_FREE && a.agent_id == ch.agent_id) {
				a.name[sizeof(a.name) - 1] = '\0';
				agent = a.name;
			}
		}
		rt_explain(sb, i, &w, &e);
		if (atomic_load(&h->minute) == now / 60000) {
			req = atomic_load(&h->req_minute);
			tok = atomic_load(&h->tok_minute);
		}
		until = atomic_load(&h->ejected_until_ms);
		grade[0] = ch.grade;
		o = json_object();
		json_object_set_new(o, "slot", json_integer(i));
		json_object_set_new(o, "agent_id", json_integer((json_int_t)ch.agent_id));
		json_object_set_new(o, "agent", json_string(agent));
		json_object_set_new(o, "channel", json_string(ch.name));
		json_object_set_new(o, "provider", json_string(ch.provider));
		json_object_set_new(o, "models", json_string(ch.models));
		json_object_set_new(o, "grade", json_string(grade));
		json_object_set_new(o, "rpm_limit", json_integer(ch.rpm_limit));
		json_object_set_new(o, "tpm_limit", json_integer(ch.tpm_limit));
		json_object_set_new(o, "inflight", json_integer(atomic_load(&h->inflight)));
		json_object_set_new(o, "requests_minute", json_integer(req));
		json_object_set_new(o, "tokens_minute", json_integer(tok));
		json_object_set_new(o, "ok", json_integer(atomic_load(&h->ok)));
		json_object_set_new(o, "err", json_integer(atomic_load(&h->err)));
		json_object_set_new(o, "err_streak",
		    json_integer(atomic_load(&h->err_streak)));
		json_object_set_new(o, "ejected", json_boolean(e.ejected));
		json_object_set_new(o, "ejected_until_ms",
		    json_integer(until > now ? until : 0));
		json_object_set_new(o, "ejections",
		    json_integer(atomic_load(&h->ejections)));
		json_object_set_new(o, "ttfb_ms",
		    json_real((double)atomic_load(&h->ewma_ttfb_us) / 1000.0));
		json_object_set_new(o, "tokens_per_s",
		    json_real((double)atomic_load(&h->ewma_tps_milli) / 1000.0));
		json_object_set_new(o, "scores", scores_json(&e, &w));
		json_object_set_new(o, "agent_metrics", agent_metrics_json(h,
		    now));
		json_array_append_new(list, o);
	}
	return json_pack("{s:b, s:I, s:o, s:o}", "ok", 1, "now_ms",
	    (json_int_t)now, "weights", weights_json(&w), "channels", list);
}
