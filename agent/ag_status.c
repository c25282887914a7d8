/*
 * agent/ag_status: what agentd says about itself — the hello frame
 * (version, packing, OS, architecture, public address) at each welcome
 * and after each probe of its address, one metrics frame per channel on
 * every online link every AG_METRICS_EVERY_MS (agent/ag_metrics,
 * agent/ag_bucket, agent/ag_caps), and the local page's /api/status
 * (agent/ag_ui).  It reads the links and the figures and changes none.
 */
#include "agent/ag_tunnel_int.h"

#include <jansson.h>
#include "agent/ag_bucket.h"
#include "agent/ag_caps.h"
#include "agent/ag_metrics.h"
#include "agent/ag_probe.h"
#include "agent/ag_version.h"
#include "lib/frame.h"
#include "lib/release.h"
#include "lib/clock.h"

/* Its version and public address (lib/frame.h HELLO). */
void
ag_status_hello(struct ag_link *l)
{
	struct frame_enc e;
	const char *ip = l->t->probe.ip;

	if (!l->hub_hello)
		return;		/* an older hub would close on it */
	frame_enc_begin(&e, FRAME_HELLO, 0, ip[0] != '\0' ? 5 : 4);
	frame_enc_cstr(&e, "version", ag_version());
	frame_enc_bool(&e, "packed", true);	/* it reads packed messages */
	frame_enc_cstr(&e, "os", release_host_os());
	frame_enc_cstr(&e, "arch", release_host_arch());
	if (ip[0] != '\0')
		frame_enc_cstr(&e, "public_ip", ip);
	ag_tunnel_send(l, &e);
}

/* A probe ended: every online link tells its hub. */
void
ag_status_probe_done(void *arg, const char *ip)
{
	struct ag_tunnel *t = arg;

	if (ip == NULL)
		return;
	for (int i = 0; i < t->nlinks; i++)
		if (t->links[i]->state == LK_ONLINE)
			ag_status_hello(t->links[i]);
}

/* The local page's /api/status (agent/ag_ui): links and channels. */
json_t *
ag_status_ui(void *arg)
{
	static const char *const states[] = { "idle", "connecting",
	    "authenticating", "online" };
	struct ag_tunnel *t = arg;
	int64_t now = clock_wall_ms(), lat;
	struct ag_chan_metrics cm;
	json_t *links = json_array(), *chans = json_array();

	for (int i = 0; i < t->nlinks; i++) {
		struct ag_link *l = t->links[i];

		json_array_append_new(links, json_pack("{s:I, s:s, s:b, s:s}",
		    "agent_id", (json_int_t)l->agent_id, "state",
		    states[l->state], "online", l->state == LK_ONLINE,
		    "last_error", l->last_error));
	}
	for (int ci = 0; ci < t->cf->nchannels; ci++) {
		const struct ag_channel *ch = &t->cf->channels[ci];

		ag_metrics_get(&t->metrics, ci, now, &cm, &lat);
		json_array_append_new(chans, json_pack("{s:s, s:s, s:I, s:I, "
		    "s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}",
		    "name", ch->name, "provider", ag_provider_name(ch->provider),
		    "rpm", (json_int_t)ch->rpm, "tpm", (json_int_t)ch->tpm,
		    "requests_minute", (json_int_t)cm.requests,
		    "tokens_minute", (json_int_t)cm.tokens,
		    "errors_minute", (json_int_t)cm.errors,
		    "requests_total", (json_int_t)cm.total_requests,
		    "latency_ms", (json_int_t)lat,
		    "inflight", (json_int_t)t->caps.inflight[ci],
		    "max_concurrency", (json_int_t)ch->max_concurrency,
		    "max_tokens_per_request",
		    (json_int_t)ch->max_tokens_per_request,
		    "daily_budget", (json_int_t)ch->daily_budget,
		    "spent_today", (json_int_t)ag_caps_spent(&t->caps, ci,
		    now)));
	}
	return json_pack("{s:s, s:s, s:i, s:s, s:I, s:o, s:o}", "version",
	    ag_version(), "hub", t->cf->hub_url, "pins", t->cf->pins.n,
	    "public_ip", t->probe.ip, "public_ip_at",
	    (json_int_t)t->probe.at_ms, "links", links, "channels", chans);
}

/* One metrics frame per channel on every online link (lib/frame.h). */
void
ag_status_metrics(struct ag_tunnel *t)
{
	int64_t now = clock_wall_ms(), lat, breq, btok;
	struct ag_chan_metrics cm;
	struct frame_enc e;

	for (int i = 0; i < t->nlinks; i++) {
		struct ag_link *l = t->links[i];

		if (l->state != LK_ONLINE)
			continue;
		for (int ci = 0; ci < t->cf->nchannels; ci++) {
			ag_metrics_get(&t->metrics, ci, now, &cm, &lat);
			breq = ag_bucket_room(&t->buckets[ci], 0,
			    clock_mono_ms());
			btok = ag_bucket_room(&t->buckets[ci], 1,
			    clock_mono_ms());
			frame_enc_begin(&e, FRAME_METRICS, 0, (size_t)(7 +
			    (breq >= 0) + (btok >= 0)));
			frame_enc_cstr(&e, "channel", t->cf->channels[ci].name);
			frame_enc_u64(&e, "minute", (uint64_t)cm.minute);
			frame_enc_u64(&e, "requests", (uint64_t)cm.requests);
			frame_enc_u64(&e, "tokens", (uint64_t)cm.tokens);
			frame_enc_u64(&e, "errors", (uint64_t)cm.errors);
			frame_enc_u64(&e, "inflight",
			    (uint64_t)t->caps.inflight[ci]);
			frame_enc_u64(&e, "latency_ms", (uint64_t)lat);
			if (breq >= 0)
				frame_enc_u64(&e, "bucket_requests",
				    (uint64_t)breq);
			if (btok >= 0)
				frame_enc_u64(&e, "bucket_tokens",
				    (uint64_t)btok);
			ag_tunnel_send(l, &e);
		}
	}
}
