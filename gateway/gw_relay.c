/*
 * gateway/gw_relay: the worker's connection to the tunnel process — a
 * relay's start (the operation, model and body for the chosen channel),
 * cancels, flow control, and the relay messages handed to gw_resp.c.
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
#include "lib/str.h"


static void on_tunnel_msg(struct child_peer *p, const struct msg *m);
static void on_tunnel_down(struct child_peer *p);

static struct child_peer tunnel = {
	.sock = "tunnel.sock",
	.rules = &relay_gw_rules,
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
	str_copy(rs.channel, sizeof(rs.channel), c->channel);
	str_copy(rs.op, sizeof(rs.op), prov_op(r->fwd_op)->name);
	str_copy(rs.model, sizeof(rs.model), r->model);
	rs.stream = (uint32_t)r->stream;
	/* A translated body is JSON; a passed-through one keeps the user's
	 * type (a multipart upload's boundary with it). */
	str_copy(rs.content_type, sizeof(rs.content_type),
	    !r->xlate && r->req_ctype[0] != '\0' ? r->req_ctype :
	    "application/json");
	str_copy(rs.anthropic_version, sizeof(rs.anthropic_version),
	    r->anthropic_version);
	str_copy(rs.anthropic_beta, sizeof(rs.anthropic_beta),
	    r->anthropic_beta);
	gw_charge_key(r, rs.request_id, sizeof(rs.request_id));
	str_copy(rs.resource, sizeof(rs.resource), gw_video_resource(r));
	r->relayed = 1;
	r->flow.unacked = 0;		/* a new stream: its whole window */
	return child_peer_send2(&tunnel, IPC_RELAY_START, r->reqid, &rs,
	    sizeof(rs), r->fwd, r->fwd_len);
}

size_t
gw_relay_queued(void)
{
	return tunnel.conn.out.len - tunnel.conn.out.off;
}

int
gw_relay_ws_in(struct gw_req *r, const struct ipc_ws_msg *wm,
    const void *data, size_t len)
{
	return child_peer_send2(&tunnel, IPC_RELAY_WS_IN, r->reqid, wm,
	    sizeof(*wm), data, len);
}

void
gw_relay_cancel(struct gw_req *r, int why)
{
	struct ipc_relay_cancel c = { (uint32_t)why, 0 };

	(void)child_peer_send(&tunnel, IPC_RELAY_CANCEL, r->reqid, &c, sizeof(c));
}

/* Give the window back while the user's socket keeps up (struct gw_flow). */
static void
flow_check(struct gw_req *r)
{
	struct gw_flow *fl = &r->flow;
	struct ipc_relay_credit cr;
	size_t give;

	if (r->stage != GW_ST_RELAY || fl->unacked <= fl->pending)
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

/*
 * The user reads slowly (logged once): a batch or more waits for their
 * socket, so that much credit is held back.  Not "the window is nearly
 * spent": the agent pauses at a full window but resumes only below half
 * of it, so a stream can wait with as little as half the window here.
 */
static void
slow_note(struct gw_req *r)
{
	if (r->flow.pending >= GW_FLOW_BATCH && !r->flow.waited) {
		r->flow.waited = 1;
		log_rinfo(r->reqid, "the user reads slowly (%zu bytes queued): "
		    "the stream waits for them", r->flow.pending);
	}
}

static void
on_tunnel_msg(struct child_peer *p, const struct msg *m)
{
	struct gw_req *r = gw_req_find(m->hdr.reqid);

	if (r == NULL || !gw_waits_in(r, GW_ST_RELAY))
		return;		/* the user left; the tunnel was told */
	switch (m->hdr.type) {
	case IPC_RELAY_HEAD: {
		struct ipc_relay_head h;
		memcpy(&h, m->data, sizeof(h));
		h.content_type[sizeof(h.content_type) - 1] = '\0';
		if (!gw_rt_relay_head(r, &h))
			gw_resp_head(r, &h);
		break;
	}
	case IPC_RELAY_WS_OUT:	/* a Realtime session's provider message */
		r->flow.unacked += m->hdr.len - sizeof(struct ipc_ws_msg);
		gw_rt_relay_msg(r, m->data, m->hdr.len);
		flow_check(r);
		slow_note(r);
		break;
	case IPC_RELAY_CHUNK:
		r->flow.unacked += m->hdr.len;
		gw_resp_chunk(r, m->data, m->hdr.len);
		flow_check(r);
		slow_note(r);
		break;
	case IPC_RELAY_END: {
		struct ipc_relay_end e;
		memcpy(&e, m->data, sizeof(e));
		e.error[sizeof(e.error) - 1] = '\0';
		if (r->rt != NULL)
			gw_rt_relay_end(r, &e);
		else
			gw_resp_end(r, &e);
		break;
	}
	default:	/* the receive rules admit no other type */
		child_peer_drop(p, "the tunnel sent an unexpected %s",
		    msg_type_name(&relay_gw_rules, m->hdr.type));
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
	for (struct gw_req *r = gw_live, *next; r != NULL; r = next) {
		next = r->next;
		if (gw_waits_in(r, GW_ST_RELAY)) {
			r->ncand = 0;		/* no retry through a dead tunnel */
			if (r->rt != NULL)
				gw_rt_relay_end(r, &e);
			else
				gw_resp_end(r, &e);
		}
	}
}
