/*
 * gateway/gw_rt: a Realtime session (GET /v1/realtime, op OP_REALTIME) on
 * the user port's HTTP/1.1 code (gw_h1.c, plain or TLS).  Owns the
 * session's life after the stages:
 *
 *   upgrade   the request ran auth, parse (model from ?model=), route,
 *             limit and reserve like any other (a small estimate: the
 *             session's own charge only proves the token has quota and is
 *             voided at the end, since a 101 is not a served answer); the
 *             relay's req_start makes the agent open the provider's
 *             WebSocket.  Only its resp_head 101 makes this file answer
 *             the user "101 Switching Protocols" (gw_req.c's head, with
 *             Sec-WebSocket-Accept) and switch the connection to
 *             WebSocket framing (gw_h1.c, phase WS, gw_ws.c's codec).
 *             Any other head is relayed as the HTTP answer it is.
 *   messages  the user's text/binary messages go to the tunnel whole
 *             (IPC_RELAY_WS_IN); pings are answered here, pongs dropped.
 *             The provider's (IPC_RELAY_WS_OUT) are framed to the user
 *             through the response queue, and count in the stream's
 *             window like relay chunks (gw_relay.c), so a user who stops
 *             reading stalls the provider side, not the hub.
 *   billing   every provider "response.done" with usage (lib/usage's
 *             usage_realtime_event) is charged at once, one ledger entry
 *             per response: gw_charge_response (gw_token.c) reserves
 *             then posts it as HUB under the response's own charge
 *             (ipc_response_charge of the session key and the response's
 *             number, the same id the agent records).  A refused
 *             reservation ends the session with an insufficient_quota
 *             error event and a close.
 *   the end   the user's close (or a protocol error: close 1002/1007/
 *             1009) cancels the relay, so the agent closes the provider
 *             side; the agent's end (the provider closed or failed, or
 *             the agent was lost) sends the user an error event when it
 *             was not clean, then a close.  Either way the connection
 *             closes once the close frame is written.
 *
 * Bounds: one user message is at most GW_WS_MAX_MSG; the user's bytes are
 * parsed as they come and each whole message leaves at once (nothing
 * accumulates here beyond one message); the user is not read while the
 * worker's tunnel.sock queue is above GW_RT_TUNNEL_HIGH (gw_h1.c) and the
 * tunnel ends a session whose messages would fill half its agent's link
 * queue; the provider's side is windowed.  Not done yet: the tokens of a
 * session do not count in the token's tpm rate limit (only its quota).
 * Over TLS the same code serves it: a client that does not offer HTTP/2
 * (every WebSocket client) is handed to gw_h1.c by gw_tls.c.  HTTP/2
 * (gw_lws.c, no RFC 8441) is refused with a 400 in OpenAI's shape.
 */
#include "gateway/gw.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <jansson.h>
#include "gateway/gw_ws.h"
#include "lib/log.h"

struct gw_rt {
	struct gw_ws_in in;
	char session_key[40];	/* the session's charge key */
	uint64_t responses;	/* response.done events billed so far */
	int proto_echo;		/* the user offered the "realtime" subprotocol */
	char accept[GW_WS_ACCEPT_LEN + 1];	/* Sec-WebSocket-Accept */
	int closing;		/* our close frame is queued */
};

/* ---- the handshake ------------------------------------------------------ */

/* parse stage of the route: the model from the query, the upgrade's
 * headers checked before anything is relayed. */
enum gw_verdict
gw_rt_parse(struct gw_req *r, const struct gw_body *b)
{
	char v[256];

	(void)b;
	if (r->tr != GW_TR_H1) {
		gw_reply_error(r, 400, "invalid_request_error",
		    "realtime_unsupported_transport", "Realtime sessions are "
		    "WebSocket upgrades over HTTP/1.1, not HTTP/2: connect "
		    "without offering h2 (as WebSocket clients do).");
		return GW_STOP;
	}
	if (gw_hdr(r, "upgrade", v, sizeof(v)) < 0 ||
	    strcasecmp(v, "websocket") != 0 ||
	    gw_hdr(r, "sec-websocket-version", v, sizeof(v)) < 0 ||
	    strcmp(v, "13") != 0 ||
	    gw_hdr(r, "sec-websocket-key", v, sizeof(v)) != 24) {
		gw_reply_error(r, 400, "invalid_request_error",
		    "websocket_required", "GET /v1/realtime must be a WebSocket "
		    "upgrade (Upgrade: websocket, Sec-WebSocket-Version: 13, "
		    "Sec-WebSocket-Key).");
		return GW_STOP;
	}
	if (gw_query(r, "model", r->model, sizeof(r->model)) <= 0) {
		gw_reply_error(r, 400, "invalid_request_error", "missing_model",
		    "You must provide a model parameter (?model=).");
		return GW_STOP;
	}
	/* No body goes upstream; an empty one keeps the relay's copy simple. */
	if (r->body == NULL && (r->body = calloc(1, 1)) == NULL) {
		gw_reply_error(r, 503, "hub_error", "out_of_memory",
		    "The hub is out of memory; retry shortly.");
		return GW_STOP;
	}
	r->stream = 1;
	r->user_usage = 0;
	r->close_after = 1;	/* never a keep-alive after a session */
	r->lim.est = GW_RT_EST_TOKENS;
	return GW_GO;
}

/* The browser's way to send the token: "Sec-WebSocket-Protocol:
 * realtime, openai-insecure-api-key.KEY".  0 with tok, or -1. */
int
gw_rt_token(struct gw_req *r, char *tok, size_t len)
{
	static const char pfx[] = "openai-insecure-api-key.";
	char buf[600], *p, *save = NULL;

	if (gw_hdr(r, "sec-websocket-protocol", buf, sizeof(buf)) <= 0)
		return -1;
	for (p = strtok_r(buf, ",", &save); p != NULL;
	    p = strtok_r(NULL, ",", &save)) {
		size_t n;
		while (*p == ' ' || *p == '\t')
			p++;
		n = strlen(p);
		while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\t'))
			p[--n] = '\0';
		if (n > sizeof(pfx) - 1 && strncmp(p, pfx, sizeof(pfx) - 1) == 0 &&
		    n - (sizeof(pfx) - 1) < len) {
			memcpy(tok, p + sizeof(pfx) - 1, n - (sizeof(pfx) - 1) + 1);
			return 0;
		}
	}
	return -1;
}

/* The 101's fields (gw_req.c's head; the request's head is gone by then:
 * what it needs was kept at the agent's head). */
int
gw_rt_head(struct gw_req *r, struct gw_head *h)
{
	if (r->rt == NULL)
		return -1;
	memset(h, 0, sizeof(*h));
	h->status = 101;
	h->h[h->n].name = "upgrade";
	snprintf(h->h[h->n++].value, sizeof(h->h[0].value), "websocket");
	h->h[h->n].name = "connection";
	snprintf(h->h[h->n++].value, sizeof(h->h[0].value), "Upgrade");
	h->h[h->n].name = "sec-websocket-accept";
	snprintf(h->h[h->n++].value, sizeof(h->h[0].value), "%s",
	    r->rt->accept);
	if (r->rt != NULL && r->rt->proto_echo) {
		h->h[h->n].name = "sec-websocket-protocol";
		snprintf(h->h[h->n++].value, sizeof(h->h[0].value), "realtime");
	}
	h->h[h->n].name = "x-request-id";
	gw_charge_key(r, h->h[h->n++].value, sizeof(h->h[0].value));
	return 0;
}

/* ---- frames to the user -------------------------------------------------- */

static void
send_frame(struct gw_req *r, enum gw_ws_op op, const void *p, size_t len)
{
	unsigned char hdr[10];
	size_t hl = gw_ws_header(hdr, op, len);

	gw_reply_data2(r, hdr, hl, p, len);
}

static void
send_close(struct gw_req *r, uint16_t code, const char *why)
{
	unsigned char b[2 + 123];
	size_t n = why != NULL ? strlen(why) : 0;

	if (r->rt == NULL || r->rt->closing)
		return;
	r->rt->closing = 1;
	if (n > sizeof(b) - 2)
		n = sizeof(b) - 2;
	b[0] = (unsigned char)(code >> 8);
	b[1] = (unsigned char)code;
	if (n > 0)
		memcpy(b + 2, why, n);
	send_frame(r, GW_WS_CLOSE, b, 2 + n);
}

/* An error event in the provider's shape, as a text message. */
static void
send_error_event(struct gw_req *r, const char *type, const char *code,
    const char *msg)
{
	json_t *o = json_pack("{s:s, s:{s:s, s:s, s:s}}", "type", "error",
	    "error", "type", type, "code", code, "message", msg);
	char *s = o != NULL ? json_dumps(o, JSON_COMPACT) : NULL;

	if (s != NULL)
		send_frame(r, GW_WS_TEXT, s, strlen(s));
	free(s);
	json_decref(o);
}

/* End the session: the user gets the close (already queued or now), the
 * relay is cancelled when the agent still has it, and the stage SETTLE
 * voids the session's own reservation and ends the answer. */
static void
finish(struct gw_req *r, int cancel, uint16_t code, const char *why)
{
	send_close(r, code, why);
	if (cancel)
		gw_relay_cancel(r, 1);
	if (gw_waits_in(r, GW_ST_RELAY))
		gw_resume(r, GW_GO);
}

/* ---- the tunnel's side ------------------------------------------------- */

/* The agent's head: 1 when it opened the session (the head is ours). */
int
gw_rt_relay_head(struct gw_req *r, const struct ipc_relay_head *h)
{
	char v[256];
	int n;

	if (r->op != OP_REALTIME || h->status != 101)
		return 0;
	if ((r->rt = calloc(1, sizeof(*r->rt))) == NULL) {
		struct ipc_relay_end e = { 0, 0, "out of memory", 0, 0, 0, 0, 0 };
		gw_relay_cancel(r, 1);
		gw_resp_end(r, &e);
		return 1;
	}
	gw_charge_key(r, r->rt->session_key, sizeof(r->rt->session_key));
	n = gw_hdr(r, "sec-websocket-key", v, sizeof(v));
	if (n < 0 || gw_ws_accept(v, (size_t)n, r->rt->accept) != 0) {
		/* Checked by the parse stage already; never here. */
		struct ipc_relay_end e = { 0, 0, "bad WebSocket key", 0, 0, 0, 0, 0 };
		gw_rt_free(r);
		gw_relay_cancel(r, 1);
		gw_resp_end(r, &e);
		return 1;
	}
	r->rt->proto_echo = gw_hdr(r, "sec-websocket-protocol", v,
	    sizeof(v)) > 0 && strstr(v, "realtime") != NULL;
	r->status = 101;
	r->close_after = 0;	/* the 101 says "Upgrade"; the phase closes */
	r->head_queued = 1;
	gw_h1_ws_begin(r);
	gw_tr_want_write(r);
	log_rinfo(r->reqid, "realtime session open (model %s)", r->model);
	return 1;
}

/* A provider message for the user; usage billed per response. */
void
gw_rt_relay_msg(struct gw_req *r, const unsigned char *p, size_t len)
{
	struct ipc_ws_msg wm;
	struct usage u;
	const unsigned char *data = p + sizeof(wm);
	size_t dlen = len - sizeof(wm);

	if (r->rt == NULL || r->rt->closing)
		return;
	memcpy(&wm, p, sizeof(wm));
	send_frame(r, wm.text ? GW_WS_TEXT : GW_WS_BIN, data, dlen);
	if (!wm.text)
		return;
	memset(&u, 0, sizeof(u));
	if (usage_realtime_event(&u, (const char *)data, dlen) != 1)
		return;
	r->rt->responses++;
	log_rinfo(r->reqid, "realtime response %llu: in=%lld out=%lld "
	    "cached=%lld", (unsigned long long)r->rt->responses,
	    (long long)u.input_tokens, (long long)u.output_tokens,
	    (long long)u.cached_tokens);
	if (gw_charge_response(r, r->rt->session_key, r->rt->responses, &u) != 0)
		log_rwarn(r->reqid, "realtime response %llu not charged",
		    (unsigned long long)r->rt->responses);
}

/* The agent ended the session (or was lost). */
void
gw_rt_relay_end(struct gw_req *r, const struct ipc_relay_end *e)
{
	if (r->rt == NULL)
		return;
	if (!e->ok && !r->rt->closing)
		send_error_event(r, "server_error", e->agent_lost ?
		    "agent_unavailable" : "upstream_error", e->error[0] ?
		    e->error : "the provider session failed");
	log_rinfo(r->reqid, "realtime session ended by the %s%s%s",
	    e->agent_lost ? "loss of the agent" : "agent", e->ok ? "" : ": ",
	    e->ok ? "" : e->error);
	finish(r, 0, e->ok ? 1000 : 1011, e->ok ? "" : "upstream ended");
}

/* Billing refused the charge of a response: the session ends. */
void
gw_rt_refused(uint64_t session_reqid, int insufficient)
{
	struct gw_req *r = gw_req_find(session_reqid);

	if (r == NULL || r->rt == NULL || r->rt->closing)
		return;
	log_rinfo(r->reqid, "realtime session closed: %s", insufficient ?
	    "the token's quota ran out" : "billing cannot charge");
	send_error_event(r, insufficient ? "insufficient_quota" :
	    "server_error", insufficient ? "insufficient_quota" :
	    "store_unavailable", insufficient ? "You exceeded your current "
	    "quota." : "The hub cannot check quotas right now.");
	finish(r, 1, 1008, insufficient ? "quota exceeded" : "billing");
}

/* ---- the user's side ---------------------------------------------------- */

/* Bytes the user sent after the upgrade: how many were consumed (the
 * rest is an incomplete frame; all of them once the session is closing:
 * what a user sends after its close is dropped). */
size_t
gw_rt_user_bytes(struct gw_req *r, const unsigned char *p, size_t len)
{
	struct gw_ws_event ev;
	struct ipc_ws_msg wm;
	size_t off = 0, used;
	int rc;

	if (r->rt == NULL)
		return len;
	while (off < len && !r->rt->closing) {
		rc = gw_ws_parse(&r->rt->in, p + off, len - off, &used, &ev);
		off += used;
		if (rc == -1) {
			log_rinfo(r->reqid, "realtime: the user broke the "
			    "WebSocket protocol (%s)", r->rt->in.err);
			finish(r, 1, r->rt->in.close_code, r->rt->in.err);
			return len;
		}
		if (rc == 0) {
			if (used == 0)
				break;
			continue;
		}
		switch (ev.op) {
		case GW_WS_TEXT:
		case GW_WS_BIN:
			memset(&wm, 0, sizeof(wm));
			wm.text = ev.op == GW_WS_TEXT;
			if (gw_relay_ws_in(r, &wm, ev.data, ev.len) != 0) {
				finish(r, 1, 1011, "tunnel unavailable");
				return len;
			}
			break;
		case GW_WS_PING:
			send_frame(r, GW_WS_PONG, ev.data, ev.len);
			break;
		case GW_WS_CLOSE:
			log_rinfo(r->reqid, "realtime session closed by the user");
			finish(r, 1, ev.code == 1005 ? 1000 : ev.code, "");
			return len;
		default:
			break;	/* pong */
		}
	}
	return r->rt->closing ? len : off;
}

void
gw_rt_free(struct gw_req *r)
{
	if (r->rt == NULL)
		return;
	gw_ws_in_free(&r->rt->in);
	free(r->rt);
	r->rt = NULL;
}
