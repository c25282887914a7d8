/*
 * tunnel/tun_relay: relaying user requests between the gateways (on
 * tunnel.sock) and the agents (streams on their tunnel connections).
 *
 * A stream lives from IPC_RELAY_START to RESP_END / cancel / loss of
 * either side.  Whatever ends it, the gateway hears exactly one
 * IPC_RELAY_END (unless the gateway itself is gone), and an agent whose
 * gateway went away gets a CANCEL so it aborts the upstream call.
 *
 * Flow control (lib/frame.h, FLOW CONTROL): response data is forwarded
 * the moment it arrives; each stream's window bounds what its agent may
 * send until the gateway's IPC_RELAY_CREDIT (passed on as a credit frame)
 * gives bytes back.  This process always reads the agents' and the
 * gateways' sockets, so a stream whose user stopped reading holds at most
 * its window here and in its gateway, and every other stream goes on.
 * Streams are found by hash (agent connection + stream id, and gateway
 * request id), never by walking them.
 *
 * tunnel.sock is served by lib/msgsrv, as billing.sock is: the server end's
 * rules refuse a type the tunnel sends (a reply the wrong way) at its
 * header, relay_dispatch below takes the rest, and a gateway that breaks
 * the protocol is logged and dropped (its streams end as when it goes
 * away) while the others go on.  msgsrv owns the gateways' fds; the lws
 * loop only polls the server's epoll descriptor (msg_srv_epoll), so
 * POLLOUT is on exactly while output waits for a gateway.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include "tunnel/tun.h"
#include "lib/log.h"
#include "lib/msgsrv.h"
#include "router/rt.h"

#define BODY_PIECE (512u * 1024)
#define STREAM_HASH_BITS 12

/* Most gateways served at once: every worker, and room for restarted
 * ones whose predecessors' hang-up is not read yet. */
#define TUN_GW_MAX 256

/* One gateway on tunnel.sock: its msgsrv client's user data. */
struct tun_gw {
	struct msg_client *cl;
	/* Its queue overflowed: nothing more is queued for it, and it is
	 * dropped from a zero-delay timer (not from inside a walk of the
	 * streams that its drop would unlink). */
	int dying;
	lws_sorted_usec_list_t kill;
	/* Messages queued this turn of the loop (tun_relay_flush). */
	int queued;
	struct tun_gw *qnext;
};

struct tun_stream {
	struct tun_stream *next, *prev;	/* all streams */
	struct tun_stream *hnext_id;	/* by_id chain: agent + id */
	struct tun_stream *hnext_req;	/* by_req chain: gateway reqid */
	uint32_t id;			/* stream id on the agent connection */
	struct tun_conn *agent;
	struct tun_gw *gw;
	uint64_t reqid;			/* the gateway's request id */
	uint32_t chan_slot;
	int64_t started_ms;		/* monotonic */
	int64_t first_ms;		/* monotonic: first response byte */
	int got_first;
	int head_status;
	struct frame_window win;	/* what the agent may still send */
};

static struct msg_srv gw_srv;	/* tunnel.sock */
static struct tun_gw *gw_queued;	/* written at the end of the turn */
static struct lws *gw_wsi;	/* gw_srv's epoll descriptor, adopted */
static struct tun_stream *streams;
static struct tun_stream *by_id[1u << STREAM_HASH_BITS];
static struct tun_stream *by_req[1u << STREAM_HASH_BITS];

static unsigned
hash_u64(uint64_t v)
{
	return (unsigned)((v * UINT64_C(0x9e3779b97f4a7c15)) >>
	    (64 - STREAM_HASH_BITS));
}

static unsigned
hash_id(const struct tun_conn *agent, uint32_t id)
{
	return hash_u64(agent->serial << 32 ^ id);
}

static void
gw_kill(lws_sorted_usec_list_t *sul)
{
	struct tun_gw *g = lws_container_of(sul, struct tun_gw, kill);

	msg_srv_drop(g->cl, NULL);	/* logged when it was doomed */
}

/*
 * Queue for the end of this turn of the loop (tun_relay_flush): an
 * answer's head, body and end, read from the agent in one go, reach the
 * gateway in one write.  Never closes g (callers walk streams).
 */
static void
gw_send(struct tun_gw *g, uint16_t type, uint64_t reqid, const void *p,
    size_t len)
{
	if (g == NULL || g->dying)
		return;
	if (msg_srv_queue(g->cl, type, reqid, p, len) == 0) {
		if (!g->queued) {
			g->queued = 1;
			g->qnext = gw_queued;
			gw_queued = g;
		}
	} else {
		log_rwarn(reqid, "%s: queue of gateway pid %d full; dropping "
		    "that gateway", gw_srv.ops->name, (int)g->cl->pid);
		g->dying = 1;
		lws_sul_schedule(lws_get_context(gw_wsi), 0, &g->kill, gw_kill,
		    1);
	}
}

static void
gw_end(struct tun_gw *g, uint64_t reqid, int agent_lost, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void
gw_end(struct tun_gw *g, uint64_t reqid, int agent_lost, const char *fmt, ...)
{
	struct ipc_relay_end e;
	va_list ap;

	memset(&e, 0, sizeof(e));
	e.agent_lost = (uint32_t)agent_lost;
	va_start(ap, fmt);
	vsnprintf(e.error, sizeof(e.error), fmt, ap);
	va_end(ap);
	gw_send(g, IPC_RELAY_END, reqid, &e, sizeof(e));
}

static void
stream_link(struct tun_stream *s)
{
	unsigned hi = hash_id(s->agent, s->id), hr = hash_u64(s->reqid);

	s->prev = NULL;
	s->next = streams;
	if (streams != NULL)
		streams->prev = s;
	streams = s;
	s->hnext_id = by_id[hi];
	by_id[hi] = s;
	s->hnext_req = by_req[hr];
	by_req[hr] = s;
	tun_tls_busy(s->agent, 1);
}

static void
stream_unlink(struct tun_stream *s)
{
	struct tun_stream **pp;

	if (s->prev != NULL)
		s->prev->next = s->next;
	else
		streams = s->next;
	if (s->next != NULL)
		s->next->prev = s->prev;
	for (pp = &by_id[hash_id(s->agent, s->id)]; *pp != NULL;
	    pp = &(*pp)->hnext_id)
		if (*pp == s) {
			*pp = s->hnext_id;
			break;
		}
	for (pp = &by_req[hash_u64(s->reqid)]; *pp != NULL;
	    pp = &(*pp)->hnext_req)
		if (*pp == s) {
			*pp = s->hnext_req;
			break;
		}
	if (s->chan_slot != UINT32_MAX) {
		struct sb_channel *ch = sb_channel(&tun_env->sb, s->chan_slot);
		atomic_fetch_sub(&ch->hot.inflight, 1);
	}
	tun_tls_busy(s->agent, 0);
	free(s);
}

static struct tun_stream *
stream_find(const struct tun_conn *agent, uint32_t id)
{
	for (struct tun_stream *s = by_id[hash_id(agent, id)]; s != NULL;
	    s = s->hnext_id)
		if (s->agent == agent && s->id == id)
			return s;
	return NULL;
}

static struct tun_stream *
stream_by_req(const struct tun_gw *g, uint64_t reqid)
{
	for (struct tun_stream *s = by_req[hash_u64(reqid)]; s != NULL;
	    s = s->hnext_req)
		if (s->gw == g && s->reqid == reqid)
			return s;
	return NULL;
}

/*
 * Health figures of the channel: this process is their one writer, through
 * rt_health_record (router/rt_eject.c holds the ejection rules).  The
 * stream's start goes in as wall-clock time, to compare with the ejection.
 */
static void
chan_result(struct tun_stream *s, int ok)
{
	int64_t now, cool = 0;
	unsigned long long agent = s->agent ? s->agent->agent_id : 0;

	if (s->chan_slot == UINT32_MAX)
		return;
	now = clock_wall_ms();
	switch (rt_health_record(&sb_channel(&tun_env->sb, s->chan_slot)->hot,
	    ok, now - (clock_mono_ms() - s->started_ms), now, &cool)) {
	case RT_H_EJECTED:
		log_rwarn(s->reqid, "channel slot %u (agent %llu) failed %d times "
		    "in a row: ejected for %lld ms", s->chan_slot, agent,
		    RT_EJECT_STREAK, (long long)cool);
		break;
	case RT_H_READMITTED:
		log_rinfo(s->reqid, "channel slot %u (agent %llu): probe "
		    "succeeded, back in service", s->chan_slot, agent);
		break;
	default:
		break;
	}
}

/* Throughput: output tokens per second from first byte to end (EWMA). */
static void
tps_sample(struct tun_stream *s, int64_t out_tokens)
{
	struct sb_chan_hot *h;
	int64_t dur, tps, old;

	if (!s->got_first || out_tokens <= 0 || s->chan_slot == UINT32_MAX)
		return;
	dur = clock_mono_ms() - s->first_ms;
	if (dur < 1)
		dur = 1;
	tps = out_tokens * 1000 * 1000 / dur;		/* tokens/s * 1000 */
	h = &sb_channel(&tun_env->sb, s->chan_slot)->hot;
	old = atomic_load(&h->ewma_tps_milli);
	atomic_store(&h->ewma_tps_milli, old == 0 ? tps : (old * 7 + tps) / 8);
}

static void
send_cancel(struct tun_stream *s)
{
	struct frame_enc e;

	if (s->agent == NULL || s->agent->state != TC_ONLINE)
		return;
	frame_enc_begin(&e, FRAME_CANCEL, s->id, 0);
	tun_send(s->agent, &e);
}

/* 0, or -1: the gateway broke the protocol (it is dropped). */
static int
relay_start(struct tun_gw *g, const struct msg *m)
{
	struct ipc_relay_start rs;
	const unsigned char *body = m->data + sizeof(rs);
	size_t blen = m->hdr.len - sizeof(rs);
	struct tun_conn *c;
	struct tun_stream *s;
	struct sb_channel ch;
	struct frame_enc e;

	memcpy(&rs, m->data, sizeof(rs));
	if (rs.body_len != blen)
		return -1;	/* on_start names it; msgsrv drops the gateway */
	rs.channel[sizeof(rs.channel) - 1] = '\0';
	rs.op[sizeof(rs.op) - 1] = '\0';
	rs.model[sizeof(rs.model) - 1] = '\0';
	rs.content_type[sizeof(rs.content_type) - 1] = '\0';
	rs.resource[sizeof(rs.resource) - 1] = '\0';
	rs.anthropic_version[sizeof(rs.anthropic_version) - 1] = '\0';
	rs.anthropic_beta[sizeof(rs.anthropic_beta) - 1] = '\0';
	c = tun_find_agent(rs.agent_id);
	if (c == NULL || rs.chan_slot >= tun_env->sb.hdr->max_channels) {
		gw_end(g, m->hdr.reqid, 1, "agent %llu is not connected",
		    (unsigned long long)rs.agent_id);
		return 0;
	}
	sb_read_channel(&tun_env->sb, rs.chan_slot, &ch);
	if (ch.state != SB_CHAN_UP || ch.agent_id != rs.agent_id) {
		gw_end(g, m->hdr.reqid, 1, "channel is no longer announced");
		return 0;
	}
	s = calloc(1, sizeof(*s));
	if (s == NULL) {
		gw_end(g, m->hdr.reqid, 0, "out of memory");
		return 0;
	}
	s->id = ++c->next_stream;
	if (s->id == 0)
		s->id = ++c->next_stream;
	s->agent = c;
	s->gw = g;
	s->reqid = m->hdr.reqid;
	s->chan_slot = rs.chan_slot;
	s->started_ms = clock_mono_ms();
	frame_window_init(&s->win);
	stream_link(s);
	atomic_fetch_add(&sb_channel(&tun_env->sb, rs.chan_slot)->hot.inflight, 1);

	rs.request_id[sizeof(rs.request_id) - 1] = '\0';
	frame_enc_begin(&e, FRAME_REQ_START, s->id, 5 + !!rs.request_id[0] +
	    !!rs.resource[0] + !!rs.anthropic_version[0] +
	    !!rs.anthropic_beta[0]);
	if (rs.request_id[0])
		frame_enc_cstr(&e, "request_id", rs.request_id);
	frame_enc_cstr(&e, "channel", rs.channel);
	frame_enc_cstr(&e, "op", rs.op);
	frame_enc_cstr(&e, "model", rs.model);
	frame_enc_bool(&e, "stream", rs.stream != 0);
	frame_enc_cstr(&e, "content_type", rs.content_type);
	if (rs.resource[0])
		frame_enc_cstr(&e, "resource", rs.resource);
	if (rs.anthropic_version[0])
		frame_enc_cstr(&e, "anthropic_version", rs.anthropic_version);
	if (rs.anthropic_beta[0])
		frame_enc_cstr(&e, "anthropic_beta", rs.anthropic_beta);
	tun_send(c, &e);
	for (size_t off = 0; off < blen; off += BODY_PIECE) {
		size_t n = blen - off < BODY_PIECE ? blen - off : BODY_PIECE;
		frame_enc_begin(&e, FRAME_REQ_BODY, s->id, 1);
		frame_enc_bin(&e, "data", body + off, n);
		tun_send(c, &e);
	}
	frame_enc_begin(&e, FRAME_REQ_END, s->id, 0);
	tun_send(c, &e);
	log_rinfo(s->reqid, "relaying to agent %llu channel %s as stream %u",
	    (unsigned long long)rs.agent_id, rs.channel, s->id);
	return 0;
}

/* The gateway no longer holds n bytes of the stream: the agent may send
 * them again.  Late credit for a stream that ended is normal. */
static void
relay_credit(struct tun_gw *g, const struct msg *m)
{
	struct ipc_relay_credit cr;
	struct tun_stream *s = stream_by_req(g, m->hdr.reqid);
	struct frame_enc e;

	memcpy(&cr, m->data, sizeof(cr));
	if (s == NULL || cr.bytes == 0)
		return;
	if (frame_window_grant(&s->win, cr.bytes) != 0)
		log_rwarn(s->reqid, "gateway credited %u bytes beyond the window "
		    "of stream %u; clamped", cr.bytes, s->id);
	if (s->agent == NULL || s->agent->state != TC_ONLINE)
		return;
	frame_enc_begin(&e, FRAME_CREDIT, s->id, 1);
	frame_enc_u64(&e, "bytes", cr.bytes);
	tun_send(s->agent, &e);
}

/* A Realtime user's message for the agent (a stream that ended: dropped). */
static void
relay_ws_in(struct tun_gw *g, const struct msg *m)
{
	struct ipc_ws_msg wm;
	struct tun_stream *s = stream_by_req(g, m->hdr.reqid);
	struct frame_enc e;

	memcpy(&wm, m->data, sizeof(wm));
	if (s == NULL || s->agent == NULL || s->agent->state != TC_ONLINE)
		return;
	if (s->agent->out.bytes + m->hdr.len > TUN_OUT_MAX_BYTES / 2) {
		/* The agent's link is not taking this session's messages:
		 * the session ends, not the link (and its other streams). */
		log_rwarn(s->reqid, "realtime messages outrun agent %llu's link; "
		    "ending the session", (unsigned long long)s->agent->agent_id);
		send_cancel(s);
		gw_end(g, s->reqid, 0, "the agent's link is not taking the "
		    "session's messages fast enough");
		stream_unlink(s);
		return;
	}
	frame_enc_begin(&e, FRAME_WS_MSG, s->id, 2);
	frame_enc_bin(&e, "data", m->data + sizeof(wm),
	    m->hdr.len - sizeof(wm));
	frame_enc_bool(&e, "text", wm.text != 0);
	tun_send(s->agent, &e);
}

static void
relay_cancel(struct tun_gw *g, uint64_t reqid)
{
	struct tun_stream *s = stream_by_req(g, reqid);

	if (s == NULL)
		return;
	log_rinfo(reqid, "cancelled by the gateway");
	if (s->head_status >= 500)
		chan_result(s, 0);	/* a retry after a 5xx */
	send_cancel(s);
	stream_unlink(s);
}

/* An agent sent a response frame for one of its streams. */
void
tun_relay_frame(struct tun_conn *c, const struct frame *f)
{
	struct tun_stream *s = stream_find(c, f->stream_id);
	const unsigned char *data;
	const char *str;
	size_t len;
	uint64_t v;
	bool ok = false;

	if (s == NULL)
		return;		/* cancelled meanwhile: late frames are normal */
	switch (f->type) {
	case FRAME_RESP_HEAD: {
		struct ipc_relay_head h;
		memset(&h, 0, sizeof(h));
		frame_get_u64(f, "status", &v);
		h.status = v > 999 ? 502 : (int32_t)v;
		s->head_status = h.status;
		frame_get_str(f, "content_type", &str, &len);
		snprintf(h.content_type, sizeof(h.content_type), "%.*s", (int)len, str);
		gw_send(s->gw, IPC_RELAY_HEAD, s->reqid, &h, sizeof(h));
		break;
	}
	case FRAME_RESP_CHUNK:
		frame_get_bin(f, "data", &data, &len);
		if (frame_window_spend(&s->win, len) != 0) {
			/* Its streams end with agent_lost when it is gone. */
			log_rwarn(s->reqid, "agent %llu sent %zu bytes on stream %u "
			    "with %u left in its window",
			    (unsigned long long)c->agent_id, len, s->id,
			    s->win.avail);
			tun_close(c, "stream %u: %zu data bytes beyond its window",
			    s->id, len);
			return;
		}
		if (!s->got_first) {
			struct sb_chan_hot *h = &sb_channel(&tun_env->sb,
			    s->chan_slot)->hot;
			int64_t ttfb = (clock_mono_ms() - s->started_ms) * 1000;
			int64_t old = atomic_load(&h->ewma_ttfb_us);
			atomic_store(&h->ewma_ttfb_us, old == 0 ? ttfb :
			    (old * 7 + ttfb) / 8);
			s->got_first = 1;
			s->first_ms = clock_mono_ms();
		}
		if (len > 0)
			gw_send(s->gw, IPC_RELAY_CHUNK, s->reqid, data, len);
		break;
	case FRAME_WS_MSG: {
		/* A Realtime session's provider message: windowed as
		 * resp_chunk data is, passed on whole with its kind. */
		struct ipc_ws_msg wm;
		unsigned char *buf;
		frame_get_bin(f, "data", &data, &len);
		frame_get_bool(f, "text", &ok);
		if (frame_window_spend(&s->win, len) != 0) {
			tun_close(c, "stream %u: %zu message bytes beyond its "
			    "window", s->id, len);
			return;
		}
		if ((buf = malloc(sizeof(wm) + len)) == NULL) {
			log_rwarn(s->reqid, "out of memory: a Realtime message "
			    "lost");
			break;
		}
		memset(&wm, 0, sizeof(wm));
		wm.text = ok;
		memcpy(buf, &wm, sizeof(wm));
		if (len > 0)
			memcpy(buf + sizeof(wm), data, len);
		gw_send(s->gw, IPC_RELAY_WS_OUT, s->reqid, buf, sizeof(wm) + len);
		free(buf);
		break;
	}
	case FRAME_RESP_END: {
		struct ipc_relay_end e;
		memset(&e, 0, sizeof(e));
		frame_get_bool(f, "ok", &ok);
		e.ok = ok;
		if (frame_get_str(f, "error", &str, &len) == 0)
			snprintf(e.error, sizeof(e.error), "%.*s", (int)len, str);
		if (frame_get_u64(f, "input_tokens", &v) == 0) {
			e.input_tokens = v > INT64_MAX ? 0 : (int64_t)v;
			e.usage_seen = 1;
		}
		if (frame_get_u64(f, "output_tokens", &v) == 0)
			e.output_tokens = v > INT64_MAX ? 0 : (int64_t)v;
		if (frame_get_u64(f, "cached_tokens", &v) == 0)
			e.cached_tokens = v > INT64_MAX ? 0 : (int64_t)v;
		gw_send(s->gw, IPC_RELAY_END, s->reqid, &e, sizeof(e));
		tps_sample(s, e.output_tokens);
		/* User errors (4xx) do not count against the channel. */
		chan_result(s, ok && s->head_status < 500);
		stream_unlink(s);
		break;
	}
	default:
		break;
	}
}

/* The agent connection closed: every stream on it ends with an error. */
void
tun_relay_agent_gone(struct tun_conn *c)
{
	struct tun_stream *s = streams, *next;

	for (; s != NULL; s = next) {
		next = s->next;
		if (s->agent != c)
			continue;
		log_rwarn(s->reqid, "agent %llu lost mid-stream",
		    (unsigned long long)c->agent_id);
		gw_end(s->gw, s->reqid, 1, "the agent serving this request was lost");
		chan_result(s, 0);
		stream_unlink(s);
	}
}

int
tun_relay_busy(void)
{
	return streams != NULL;
}

/* A gateway left or was dropped: its streams end, their agents cancel. */
static void
gw_gone(struct tun_gw *g)
{
	struct tun_stream *s = streams, *next;

	for (; s != NULL; s = next) {
		next = s->next;
		if (s->gw == g) {
			send_cancel(s);
			stream_unlink(s);
		}
	}
}

/* relay_dispatch: one handler per type the gateways may send (the
 * server end's rules, relay_tun_rules, allow exactly these). */
static int
on_start(struct msg_client *cl, const struct msg *m, char *err, size_t errlen)
{
	if (relay_start(cl->user, m) != 0) {
		snprintf(err, errlen, "relay-start whose body_len is not the "
		    "%zu bytes that follow it", m->hdr.len -
		    sizeof(struct ipc_relay_start));
		return -1;
	}
	return 0;
}

static int
on_cancel(struct msg_client *cl, const struct msg *m, char *err, size_t errlen)
{
	relay_cancel(cl->user, m->hdr.reqid);
	return 0;
}

static int
on_credit(struct msg_client *cl, const struct msg *m, char *err, size_t errlen)
{
	relay_credit(cl->user, m);
	return 0;
}

static int
on_ws_in(struct msg_client *cl, const struct msg *m, char *err, size_t errlen)
{
	relay_ws_in(cl->user, m);
	return 0;
}

static const msg_srv_fn relay_dispatch[IPC_TYPE_MAX] = {
	[IPC_RELAY_START] = on_start,
	[IPC_RELAY_CANCEL] = on_cancel,
	[IPC_RELAY_CREDIT] = on_credit,
	[IPC_RELAY_WS_IN] = on_ws_in,
};

static void
gw_open(struct msg_client *cl)
{
	struct tun_gw *g = calloc(1, sizeof(*g));

	if (g == NULL) {
		msg_srv_drop(cl, "out of memory");
		return;
	}
	g->cl = cl;
	cl->user = g;
	log_debug("%s: gateway pid %d connected", gw_srv.ops->name,
	    (int)cl->pid);
}

static void
gw_close(struct msg_client *cl)
{
	struct tun_gw *g = cl->user;

	if (g == NULL)
		return;
	lws_sul_cancel(&g->kill);
	gw_gone(g);
	if (g->queued) {
		struct tun_gw **pp;

		for (pp = &gw_queued; *pp != g; pp = &(*pp)->qnext)
			;
		*pp = g->qnext;
	}
	cl->user = NULL;
	free(g);
}

static const struct msg_srv_ops gw_srv_ops = {
	.name = "tunnel.sock",
	.rules = &relay_tun_rules,
	.dispatch = relay_dispatch,
	.max_clients = TUN_GW_MAX,
	.on_open = gw_open,
	.on_close = gw_close,
};

/* The lws side: the epoll descriptor is readable. */
static int
cb_gw(struct lws *wsi, enum lws_callback_reasons reason, void *user,
    void *in, size_t len)
{
	switch (reason) {
	case LWS_CALLBACK_RAW_RX_FILE:
		msg_srv_epoll_events(&gw_srv);
		return 0;
	case LWS_CALLBACK_RAW_CLOSE_FILE:
		if (wsi == gw_wsi)
			gw_wsi = NULL;
		return 0;
	default:
		return 0;
	}
}

struct lws_protocols
tun_gw_protocol(void)
{
	struct lws_protocols p = { "tun-gw", cb_gw, 0, 0, 0, NULL, 0 };
	return p;
}

void
tun_relay_init(struct lws_vhost *vh)
{
	lws_sock_file_fd_type u;
	char err[256];
	int fd;

	if (msg_srv_init(&gw_srv, &gw_srv_ops, tun_env->fds.tun_sock, err,
	    sizeof(err)) != 0 || (fd = msg_srv_epoll(&gw_srv, err,
	    sizeof(err))) < 0)
		fatal("%s", err);
	u.filefd = fd;
	gw_wsi = lws_adopt_descriptor_vhost(vh, LWS_ADOPT_RAW_FILE_DESC, u,
	    "tun-gw", NULL);
	if (gw_wsi == NULL)
		fatal("cannot adopt tunnel.sock's epoll descriptor");
}

void
tun_relay_flush(void)
{
	struct tun_gw *g;

	/* Unlinked before its write, which may close it (gw_close). */
	while ((g = gw_queued) != NULL) {
		gw_queued = g->qnext;
		g->queued = 0;
		msg_srv_write(g->cl);
	}
}

void
tun_relay_free(void)
{
	tun_relay_flush();
	msg_srv_free(&gw_srv);
}
