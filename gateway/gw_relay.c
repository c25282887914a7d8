/*
 * gateway/gw_relay: the worker's connection to the tunnel process and the
 * translation of relay messages into the user's HTTP response.  SSE
 * answers are split into events and each event is queued for the user's
 * socket the moment it arrives (no coalescing); the usage-only chunk the
 * hub asked for is dropped for users who did not ask for it.
 *
 * Flow control (lib/frame.h, FLOW CONTROL): the tunnel socket is always
 * read; each stream's window comes back to its agent (IPC_RELAY_CREDIT)
 * only as its own user's socket takes the answer (gw_relay_credit), so a
 * user who stops reading stalls their stream alone.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>
#include "gateway/gw.h"
#include "lib/prov.h"
#include "lib/log.h"

#define GW_SNIFF_MAX (4u * 1024 * 1024)
#define GW_RETRY_DEADLINE_MS 30000	/* no new attempt after this */

static void on_tunnel_msg(struct child_peer *p, const struct msg *m);
static void on_tunnel_down(struct child_peer *p);

static struct child_peer tunnel = {
	.sock = "tunnel.sock",
	.rules = &relay_rules,
	.on_msg = on_tunnel_msg,
	.on_down = on_tunnel_down,
};

void
gw_relay_init(struct lws_vhost *vh)
{
	child_peer_start(&tunnel, gw_env(), vh);
}

void
gw_relay_tick(void)
{
	child_peer_tick(&tunnel);
}

int
gw_relay_send(struct gw_req *r)
{
	struct ipc_relay_start rs;
	const struct rt_candidate *c = &r->cand[r->cur];

	memset(&rs, 0, sizeof(rs));
	rs.agent_id = c->agent_id;
	rs.chan_slot = c->slot;
	rs.body_len = (uint32_t)r->fwd_len;
	snprintf(rs.channel, sizeof(rs.channel), "%s", c->channel);
	snprintf(rs.op, sizeof(rs.op), "%s", prov_op(OP_CHAT)->name);
	snprintf(rs.model, sizeof(rs.model), "%s", r->model);
	rs.stream = (uint32_t)r->stream;
	snprintf(rs.content_type, sizeof(rs.content_type), "application/json");
	gw_charge_key(r, rs.request_id, sizeof(rs.request_id));
	r->state = GW_RELAY;
	r->relayed = 1;
	r->flow.unacked = 0;		/* a new stream: its whole window */
	r->paused = 1;			/* interim: see gw_relay_flow() */
	return child_peer_send2(&tunnel, IPC_RELAY_START, r->reqid, &rs,
	    sizeof(rs), r->fwd, r->fwd_len);
}

void
gw_relay_cancel(struct gw_req *r)
{
	struct ipc_relay_cancel c = { 1, 0 };

	(void)child_peer_send(&tunnel, IPC_RELAY_CANCEL, r->reqid, &c, sizeof(c));
}

/* Give the window back while the user's socket keeps up (struct gw_flow). */
static void
flow_check(struct gw_req *r)
{
	struct gw_flow *fl = &r->flow;
	struct ipc_relay_credit cr;
	size_t give;

	if (r->state != GW_RELAY || fl->unacked <= fl->pending)
		return;
	give = fl->unacked - fl->pending;
	if (give < GW_FLOW_BATCH)
		return;
	memset(&cr, 0, sizeof(cr));
	cr.bytes = (uint32_t)(give < FRAME_WINDOW ? give : FRAME_WINDOW);
	fl->unacked -= cr.bytes;
	(void)child_peer_send(&tunnel, IPC_RELAY_CREDIT, r->reqid, &cr,
	    sizeof(cr));
}

void
gw_relay_credit(struct gw_req *r, size_t n)
{
	r->flow.pending -= n < r->flow.pending ? n : r->flow.pending;
	flow_check(r);
}

void
gw_relay_flow(struct gw_req *r, int paused)
{
	(void)paused;
	if (r->flow.pending > r->out.bytes)
		gw_relay_credit(r, r->flow.pending - r->out.bytes);
}

/* Queue part of the answer for the user, counted until it is written. */
static void
reply(struct gw_req *r, const void *a, size_t alen, const void *b, size_t blen)
{
	r->flow.pending += alen + blen;
	gw_reply_data2(r, a, alen, b, blen);
}

/*
 * Try the next candidate channel, before anything reached the user.  The
 * attempt gets a new request id so late messages of the old one are
 * recognised and dropped.
 */
static int
retry_next(struct gw_req *r, const char *why)
{
	uint64_t old = r->reqid;

	/* Bounded: at most RT_MAX_CANDIDATES attempts, none started after
	 * GW_RETRY_DEADLINE_MS since the request arrived. */
	if (r->head_queued || r->cur + 1 >= r->ncand ||
	    clock_mono_ms() - r->started_ms > GW_RETRY_DEADLINE_MS)
		return -1;
	r->cur++;
	r->reqid = gw_new_reqid();
	memset(&r->agent_usage, 0, sizeof(r->agent_usage));
	log_rinfo(old, "%s; retrying on channel %s of agent %llu as req=%016llx",
	    why, r->cand[r->cur].channel,
	    (unsigned long long)r->cand[r->cur].agent_id,
	    (unsigned long long)r->reqid);
	return gw_relay_send(r);
}

static void
relay_head(struct gw_req *r, const struct ipc_relay_head *h)
{
	if (h->status >= 500 && r->cur + 1 < r->ncand) {
		/* An upstream failure before the first byte: the user never
		 * sees it if another channel can serve. */
		char why[64];
		struct ipc_relay_cancel c = { 2, 0 };
		(void)child_peer_send(&tunnel, IPC_RELAY_CANCEL, r->reqid, &c,
		    sizeof(c));
		snprintf(why, sizeof(why), "upstream answered %d", h->status);
		if (retry_next(r, why) == 0)
			return;
	}
	r->status = h->status;
	snprintf(r->ctype, sizeof(r->ctype), "%s", h->content_type);
	r->sse_mode = h->status == 200 &&
	    strncmp(h->content_type, "text/event-stream", 17) == 0;
	if (r->sse_mode)
		sse_init(&r->sse, 0);
	gw_reply_head(r, (unsigned)h->status, h->content_type[0] ?
	    h->content_type : "application/json");
}

static void
relay_chunk(struct gw_req *r, const unsigned char *p, size_t len)
{
	struct sse_event ev;
	int rc;

	if (!r->sse_mode) {
		/* Keep a JSON answer (bounded) to read its usage at the end. */
		if (r->sniff_len + len <= GW_SNIFF_MAX) {
			unsigned char *nb = realloc(r->sniff, r->sniff_len + len);
			if (nb != NULL) {
				r->sniff = nb;
				memcpy(nb + r->sniff_len, p, len);
				r->sniff_len += len;
			}
		}
		reply(r, p, len, NULL, 0);
		return;
	}
	if (sse_feed(&r->sse, p, len) != 0) {
		log_rwarn(r->reqid, "upstream stream: %s", sse_error(&r->sse));
		return;
	}
	while ((rc = sse_next(&r->sse, &ev)) == 1) {
		if (ev.data != NULL) {
			(void)usage_openai_event(&r->usage, ev.data, ev.data_len);
			if (!r->user_usage &&
			    usage_openai_is_usage_only_chunk(ev.data, ev.data_len) == 1)
				continue;	/* the hub's, not the user's */
		}
		if (!r->user_usage && ev.data != NULL) {
			/* Asking for usage made upstream add "usage":null to every
			 * chunk; the user who did not ask gets chunks without it. */
			static const char un[] = ",\"usage\":null";
			const char *hit = memmem(ev.raw, ev.raw_len, un, sizeof(un) - 1);
			if (hit != NULL) {
				size_t pre = (size_t)(hit - ev.raw);
				reply(r, ev.raw, pre, hit + sizeof(un) - 1,
				    ev.raw_len - pre - (sizeof(un) - 1));
				continue;
			}
		}
		reply(r, ev.raw, ev.raw_len, NULL, 0);
	}
	if (rc < 0)
		log_rwarn(r->reqid, "upstream stream: %s", sse_error(&r->sse));
}

static void
relay_end(struct gw_req *r, const struct ipc_relay_end *e)
{
	char msg[256], ev[512];

	if (e->ok && !r->sse_mode && r->sniff_len > 0 && r->status == 200)
		(void)usage_openai_body(&r->usage, (const char *)r->sniff,
		    r->sniff_len);
	if (e->usage_seen) {	/* the agent's witness, for the ledger */
		r->agent_usage.input_tokens = e->input_tokens;
		r->agent_usage.output_tokens = e->output_tokens;
		r->agent_usage.cached_tokens = e->cached_tokens;
		r->agent_usage.seen = 1;
	}
	gw_limit_done(r);	/* the real usage replaces the estimate */
	if (e->ok) {
		log_rinfo(r->reqid, "done: %d, usage in=%lld out=%lld cached=%lld",
		    r->status, (long long)r->usage.input_tokens,
		    (long long)r->usage.output_tokens,
		    (long long)r->usage.cached_tokens);
		gw_charge_settle(r);
		gw_reply_end(r);
		return;
	}
	snprintf(msg, sizeof(msg), "%s", e->error[0] ? e->error : "upstream failed");
	log_rwarn(r->reqid, "relay failed%s: %s", r->head_queued ?
	    " mid-stream" : "", msg);
	if (!r->head_queued) {
		/* Nothing reached the user yet: the next candidate may serve. */
		if (retry_next(r, msg) == 0)
			return;
		gw_charge_settle(r);
		gw_reply_error(r, e->agent_lost ? 503 : 502, "hub_error",
		    e->agent_lost ? "agent_unavailable" : "upstream_error", msg);
		return;
	}
	if (r->sse_mode) {
		/* The stream ends with an error event, never a hang. */
		json_t *o = json_pack("{s:{s:s, s:s, s:n, s:s}}", "error",
		    "message", msg, "type", "hub_error", "param",
		    "code", e->agent_lost ? "agent_lost" : "upstream_error");
		char *s = json_dumps(o, JSON_COMPACT);
		int n = snprintf(ev, sizeof(ev), "data: %s\n\n", s ? s : "{}");
		free(s);
		json_decref(o);
		if (n > 0 && (size_t)n < sizeof(ev))
			reply(r, ev, (size_t)n, NULL, 0);
	}
	gw_charge_settle(r);
	gw_reply_end(r);
}

static void
on_tunnel_msg(struct child_peer *p, const struct msg *m)
{
	struct gw_req *r = gw_req_find(m->hdr.reqid);

	if (r == NULL || r->state != GW_RELAY)
		return;		/* the user left; the tunnel was told */
	switch (m->hdr.type) {
	case IPC_RELAY_HEAD: {
		struct ipc_relay_head h;
		memcpy(&h, m->data, sizeof(h));
		h.content_type[sizeof(h.content_type) - 1] = '\0';
		relay_head(r, &h);
		break;
	}
	case IPC_RELAY_CHUNK:
		r->flow.unacked += m->hdr.len;
		relay_chunk(r, m->data, m->hdr.len);
		flow_check(r);
		if (r->flow.unacked > FRAME_WINDOW - GW_FLOW_BATCH &&
		    !r->flow.waited) {
			r->flow.waited = 1;
			log_rinfo(r->reqid, "the user reads slowly (%zu bytes "
			    "queued): the stream waits for them", r->flow.pending);
		}
		break;
	case IPC_RELAY_END: {
		struct ipc_relay_end e;
		memcpy(&e, m->data, sizeof(e));
		e.error[sizeof(e.error) - 1] = '\0';
		relay_end(r, &e);
		break;
	}
	default:
		fatal("tunnel sent an unexpected %s",
		    msg_type_name(&relay_rules, m->hdr.type));
	}
}

/* The tunnel process went away: every relayed request ends with an error. */
static void
on_tunnel_down(struct child_peer *p)
{
	struct ipc_relay_end e;

	memset(&e, 0, sizeof(e));
	e.agent_lost = 1;
	snprintf(e.error, sizeof(e.error), "the hub's tunnel process restarted");
	for (struct gw_req *r = gw_live; r != NULL; r = r->next)
		if (r->state == GW_RELAY) {
			r->ncand = 0;		/* no retry through a dead tunnel */
			relay_end(r, &e);
		}
}
