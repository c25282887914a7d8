/*
 * gateway/gw_h1: the user port's plain HTTP/1.1 connections — each
 * accepted socket is a raw lws connection whose bytes this file reads with
 * its own parser (gw_h1p).  One request at a time per connection:
 *
 *   HEAD   read the request head (header_timeout once a byte came,
 *          keepalive_timeout while idle); a bad head is answered 400/414/
 *          431/501/505 and the connection closed
 *   AUTH   the stages run from the headers alone; the body is NOT read
 *          until the token passed (gw_h1_body_want), so a tokenless client
 *          can make the worker hold at most one head
 *   BODY   body bytes (Content-Length or chunked) go to the request within
 *          the worker's body budget; 100 Continue when asked
 *   SERVE  the body is complete; the answer is being made and written.
 *          Bytes after it are the next (pipelined) request: they wait in
 *          the buffer (reading pauses past GW_H1_BACKLOG) and are parsed
 *          when this answer is written.
 *   LINGER the answer was written and the connection is closing: what the
 *          client still sends is read and dropped for a moment, so the
 *          answer is not lost to a reset (as nginx's lingering close).
 *
 *   WS     a Realtime session (GET /v1/realtime) after its 101: the
 *          bytes are WebSocket frames, handed to gw_rt.c; no timeout
 *          here (the session ends by a close on either side).
 *
 * A refusal written before the body was read closes the connection (its
 * framing is unknown).  A WebSocket upgrade is accepted only on the
 * Realtime route once its stages passed and the agent's provider
 * WebSocket is open (gw_rt.c); any other upgrade, and one without a
 * token, is answered as plain HTTP (so 401/404 without a token or route).
 */
#include "gateway/gw.h"
#include "lib/hex.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include "gateway/gw_h1p.h"
#include "lib/log.h"
#include "lib/str.h"

#define GW_H1_BACKLOG	(64u * 1024)	/* pipelined bytes held at most */
#define GW_H1_LINGER_MS	2000

enum h1_phase { P_HEAD = 0, P_AUTH, P_BODY, P_SERVE, P_LINGER, P_WS };

struct gw_conn {
	struct gw_conn *next, *prev;	/* every connection, for timeouts */
	struct lws *wsi;
	char *in;			/* bytes read and not yet consumed */
	size_t in_len, in_cap;
	enum h1_phase phase;
	struct h1_head head;		/* spans into in[0..head.head_len) */
	struct h1_chunked ch;
	int64_t body_left;		/* Content-Length bytes still to come */
	int body_on;			/* the stages want the body */
	int64_t deadline;		/* monotonic ms; 0 none */
	int rx_off;			/* reading paused */
	int sent_continue;
	size_t scan;			/* head: searched for its end up to here */
	int closing;			/* closing: linger, then close */
	int shut_pending;		/* shut down writing once flushed */
	lws_dll2_t due;			/* on the due list (gw_h1_flush) */
	struct gw_req req;
};

static struct gw_conn *conns;
/* Connections whose request queued something to write in this turn of
 * the loop: gw_h1_flush() writes it at the turn's end, straight to the
 * socket, instead of asking the loop for POLLOUT (two epoll_ctl and one
 * more turn per answer).  Only what lws already holds unsent (a partial
 * write) waits for POLLOUT, as before. */
static lws_dll2_owner_t due;
static int flushing;		/* in gw_h1_flush: re-queued work waits */
/* The same at once for an answer queued by one of lws's timers, which
 * run before its wait for events: on libwebsockets' poll() loop
 * ([hub] event_loop = poll) the turn's end comes only after that wait.
 * Cancelled by gw_h1_flush when the turn's end came first.  Not armed on
 * libev, whose turns always end before the wait (and where arming it
 * every turn measured about 1.7 more system calls per request at c=32,
 * over the whole hub). */
static lws_sorted_usec_list_t flush_sul;
static void on_flush_sul(lws_sorted_usec_list_t *sul);

static const struct hub_conf *
conf(void)
{
	return &gw_env()->conf;
}

static void
rx(struct gw_conn *c, int on)
{
	if (c->rx_off == !on)
		return;
	c->rx_off = !on;
	lws_rx_flow_control(c->wsi, on);
}

/* Drop n bytes at offset off of the input buffer. */
static void
in_drop(struct gw_conn *c, size_t off, size_t n)
{
	if (off + n > c->in_len)
		n = c->in_len - off;
	memmove(c->in + off, c->in + off + n, c->in_len - off - n);
	c->in_len -= n;
}

static int
in_append(struct gw_conn *c, const void *p, size_t len)
{
	if (c->in_len + len > c->in_cap) {
		size_t cap = c->in_cap ? c->in_cap : 4096;
		char *nb;
		while (cap < c->in_len + len)
			cap *= 2;
		if ((nb = realloc(c->in, cap)) == NULL)
			return -1;
		c->in = nb;
		c->in_cap = cap;
	}
	memcpy(c->in + c->in_len, p, len);
	c->in_len += len;
	return 0;
}

/* Shrink a buffer that grew for a large body once it is done. */
static void
in_trim(struct gw_conn *c)
{
	if (c->in_cap > 65536 && c->in_len < 4096) {
		char *nb = realloc(c->in, 4096);
		if (nb != NULL) {
			c->in = nb;
			c->in_cap = 4096;
		}
	}
}

/* ---- writing -------------------------------------------------------------- */

int
gw_h1_write(struct gw_req *r, const void *p, size_t len)
{
	unsigned char small[LWS_PRE + 32];

	if (len == 0)
		return 0;
	if (len <= 32) {
		memcpy(small + LWS_PRE, p, len);
		p = small + LWS_PRE;
	}
	return lws_write(r->wsi, (unsigned char *)(uintptr_t)p, len,
	    LWS_WRITE_RAW) < (int)len ? -1 : 0;
}

static const char *
status_text(unsigned s)
{
	static const struct { unsigned s; const char *t; } t[] = {
		{ 100, "Continue" }, { 101, "Switching Protocols" },
		{ 200, "OK" }, { 201, "Created" },
		{ 202, "Accepted" }, { 204, "No Content" },
		{ 400, "Bad Request" }, { 401, "Unauthorized" },
		{ 402, "Payment Required" }, { 403, "Forbidden" },
		{ 404, "Not Found" }, { 405, "Method Not Allowed" },
		{ 408, "Request Timeout" }, { 409, "Conflict" },
		{ 411, "Length Required" }, { 413, "Content Too Large" },
		{ 414, "URI Too Long" }, { 415, "Unsupported Media Type" },
		{ 422, "Unprocessable Content" }, { 429, "Too Many Requests" },
		{ 431, "Request Header Fields Too Large" },
		{ 500, "Internal Server Error" }, { 501, "Not Implemented" },
		{ 502, "Bad Gateway" }, { 503, "Service Unavailable" },
		{ 504, "Gateway Timeout" }, { 505, "HTTP Version Not Supported" },
		{ 529, "Overloaded" },
	};

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		if (t[i].s == s)
			return t[i].t;
	return s < 300 ? "OK" : s < 500 ? "Client Error" : "Server Error";
}

int
gw_h1_write_head(struct gw_req *r, const struct gw_head *h, const void *body,
    size_t blen)
{
	char stack[LWS_PRE + 4096], *buf = stack, *p, *end, *lim;
	size_t cap = sizeof(stack);
	int rc;

	if (body != NULL && blen > sizeof(stack) - LWS_PRE - 2048) {
		cap = LWS_PRE + 2048 + blen;
		if ((buf = malloc(cap)) == NULL)
			return -1;
	}
	p = buf + LWS_PRE;
	end = buf + cap;
	lim = end - 64;		/* room for the connection line and the CRLF */
	/* No printf: these lines are written for every answer. */
	p = str_puts(p, lim, r->http10 ? "HTTP/1.0 " : "HTTP/1.1 ");
	if (p != NULL)
		p += str_dec(p, h->status % 1000);
	p = str_put(p, lim, " ", 1);
	p = str_puts(p, lim, status_text(h->status));
	p = str_put(p, lim, "\r\n", 2);
	for (int i = 0; i < h->n && p != NULL; i++) {
		p = str_puts(p, lim, h->h[i].name);
		p = str_put(p, lim, ": ", 2);
		p = str_puts(p, lim, h->h[i].value);
		p = str_put(p, lim, "\r\n", 2);
	}
	if (p == NULL)
		goto fail;
	if (r->close_after)
		p = str_puts(p, end, "connection: close\r\n");
	else if (r->http10)
		p = str_puts(p, end, "connection: keep-alive\r\n");
	if (p == NULL || end - p < 2)
		goto fail;
	*p++ = '\r';
	*p++ = '\n';
	if (body != NULL && blen > 0) {
		if ((size_t)(end - p) < blen)
			goto fail;
		memcpy(p, body, blen);
		p += blen;
	}
	rc = gw_h1_write(r, buf + LWS_PRE, (size_t)(p - (buf + LWS_PRE)));
	if (buf != stack)
		free(buf);
	return rc;
fail:
	if (buf != stack)
		free(buf);
	return -1;
}

void
gw_h1_want_write(struct gw_req *r)
{
	struct gw_conn *c = r->conn;

	if (c == NULL || c->wsi == NULL || !lws_dll2_is_detached(&c->due))
		return;
	if (flushing) {
		/* More after this turn's write (a partial one, or a piece
		 * that did not fit): the loop says when the socket takes it. */
		lws_callback_on_writable(c->wsi);
		return;
	}
	if (due.count == 0 && !child_lws_ends_turns())
		lws_sul_schedule(lws_get_context(c->wsi), 0, &flush_sul,
		    on_flush_sul, 0);
	lws_dll2_add_tail(&c->due, &due);
}

static void
on_flush_sul(lws_sorted_usec_list_t *sul)
{
	(void)sul;
	child_peer_flush();	/* the turn's posts before its answers */
	gw_h1_flush();
	child_peer_flush();	/* what the writes queued (credit, ...) */
}

void
gw_h1_flush(void)
{
	struct gw_conn *c;

	if (due.count == 0)
		return;
	lws_sul_cancel(&flush_sul);
	flushing = 1;
	while (due.head != NULL) {
		c = lws_container_of(due.head, struct gw_conn, due);
		lws_dll2_remove(&c->due);
		if (c->req.reqid == 0 || c->req.wsi != c->wsi ||
		    c->phase == P_LINGER)
			continue;
		if (lws_partial_buffered(c->wsi)) {
			lws_callback_on_writable(c->wsi);
			continue;
		}
		if (gw_req_writable(&c->req) != 0) {
			/* As a writeable callback's -1: the connection goes
			 * (RAW_CLOSE cancels and resets its request). */
			log_rinfo(c->req.reqid, "user port: write failed; "
			    "closing the connection");
			lws_set_timeout(c->wsi, PENDING_TIMEOUT_KILLED_BY_PARENT,
			    LWS_TO_KILL_ASYNC);
		}
	}
	flushing = 0;
}

/* Stop writing once what lws holds is flushed; read and drop what the
 * client still sends for a moment, then close. */
static void
linger(struct gw_conn *c)
{
	c->closing = 1;
	c->phase = P_LINGER;
	c->in_len = 0;
	c->deadline = clock_mono_ms() + GW_H1_LINGER_MS;
	if (lws_partial_buffered(c->wsi)) {
		c->shut_pending = 1;
		lws_callback_on_writable(c->wsi);
	} else
		shutdown(lws_get_socket_fd(c->wsi), SHUT_WR);
	rx(c, 1);
}

/* A refusal of the framing itself: no request is made of it. */
static void
refuse_raw(struct gw_conn *c, unsigned status, const char *why)
{
	char body[512], msg[256];
	struct gw_head h;
	struct gw_req *r = &c->req;

	log_info("user port: %u %s; closing the connection", status, why);
	snprintf(msg, sizeof(msg), "Malformed HTTP request: %s.", why);
	gw_err_body(&gw_surface_openai, status, "invalid_request_error",
	    status == 431 ? "request_header_fields_too_large" :
	    status == 408 ? "request_timeout" : "invalid_http_request", msg,
	    body, sizeof(body));
	memset(&h, 0, sizeof(h));
	h.status = status;
	h.n = 2;
	h.h[0].name = "content-type";
	snprintf(h.h[0].value, sizeof(h.h[0].value), "application/json");
	h.h[1].name = "content-length";
	snprintf(h.h[1].value, sizeof(h.h[1].value), "%zu", strlen(body));
	/* r is not a live request here: only its transport fields count. */
	memset(r, 0, sizeof(*r));
	r->wsi = c->wsi;
	r->tr = GW_TR_H1;
	r->close_after = 1;
	(void)gw_h1_write_head(r, &h, body, strlen(body));
	memset(r, 0, sizeof(*r));
	linger(c);
}

/* ---- reading ------------------------------------------------------------- */

static void process(struct gw_conn *c);

static void
start_request(struct gw_conn *c)
{
	struct gw_req *r = &c->req;

	gw_req_begin(r, GW_TR_H1, c, c->wsi);
	r->http10 = c->head.minor == 0;
	r->close_after = !c->head.keep_alive;
	c->phase = P_AUTH;
	c->body_on = 0;
	c->sent_continue = 0;
	c->deadline = 0;
	memset(&c->ch, 0, sizeof(c->ch));
	c->body_left = c->head.chunked ? -1 : c->head.content_length > 0 ?
	    c->head.content_length : 0;
	gw_req_route(r, c->in + c->head.method.off, c->head.method.len,
	    c->in + c->head.path.off, c->head.path.len);
	gw_run(r);
}

/* Feed body bytes from the buffer to the request (within the budget). */
static int
feed_body(struct gw_conn *c)
{
	struct gw_req *r = &c->req;
	size_t off = c->head.head_len;

	while (c->phase == P_BODY && r->reqid != 0) {
		size_t avail = c->in_len - off;
		if (c->body_left == 0 && !c->head.chunked) {
			c->phase = P_SERVE;
			gw_body_done(r);
			return 0;
		}
		if (avail == 0)
			return 0;
		if (c->head.chunked) {
			size_t used;
			const char *data;
			size_t dlen;
			int rc = h1_chunked_step(&c->ch, c->in + off, avail,
			    &used, &data, &dlen);
			if (rc < 0) {
				gw_reply_error(r, 400, "invalid_request_error",
				    "invalid_http_request",
				    "Malformed chunked request body.");
				r->close_after = 1;
				return -1;
			}
			if (rc == 1 && dlen > 0) {
				if (gw_budget_take(r, (int64_t)dlen) != 0) {
					rx(c, 0);	/* the tick retries */
					return 0;
				}
				gw_body_data(r, data, dlen);
				if (r->reqid == 0 || c->phase != P_BODY)
					return 0;
			}
			in_drop(c, off, used);
			if (rc == 2) {
				c->phase = P_SERVE;
				gw_body_done(r);
				return 0;
			}
			if (rc == 0)
				return 0;
		} else {
			size_t n = avail;
			if ((int64_t)n > c->body_left)
				n = (size_t)c->body_left;
			if (gw_budget_take(r, (int64_t)n) != 0) {
				rx(c, 0);
				return 0;
			}
			gw_body_data(r, c->in + off, n);
			if (r->reqid == 0 || c->phase != P_BODY)
				return 0;
			in_drop(c, off, n);
			c->body_left -= (int64_t)n;
		}
		c->deadline = clock_mono_ms() + conf()->gw_body_timeout_ms;
	}
	return 0;
}

void
gw_h1_body_want(struct gw_req *r)
{
	struct gw_conn *c = r->conn;

	if (c == NULL || c->phase != P_AUTH)
		return;
	if (c->head.content_length > conf()->gw_max_body) {
		char msg[128];
		snprintf(msg, sizeof(msg), "Request body exceeds the limit of "
		    "%lld bytes.", (long long)conf()->gw_max_body);
		r->close_after = 1;
		gw_reply_error(r, 413, "invalid_request_error",
		    "request_too_large", msg);
		return;
	}
	c->phase = P_BODY;
	c->body_on = 1;
	c->deadline = clock_mono_ms() + conf()->gw_body_timeout_ms;
	if (c->head.expect_continue && !c->sent_continue && !r->http10 &&
	    c->in_len == c->head.head_len && c->body_left != 0) {
		static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
		c->sent_continue = 1;
		(void)gw_h1_write(r, cont, sizeof(cont) - 1);
	}
	rx(c, 1);
	(void)feed_body(c);
}

/* Does p[0, n) hold a blank line ("\n\n" or "\n\r\n"), the end of a
 * head?  Line to line: two memmem calls walked the body that arrived
 * with the head as well, byte by byte. */
static int
blank_line(const char *p, size_t n)
{
	const char *end = p + n, *q;

	while ((q = memchr(p, '\n', (size_t)(end - p))) != NULL) {
		if (end - q > 1 && q[1] == '\n')
			return 1;
		if (end - q > 2 && q[1] == '\r' && q[2] == '\n')
			return 1;
		p = q + 1;
	}
	return 0;
}

static void
process(struct gw_conn *c)
{
	const char *why;
	int rc;

	while (c->phase == P_HEAD && c->in_len > 0 && !c->closing) {
		size_t max = (size_t)conf()->gw_max_header_bytes;
		/* Parse only once the head's end may be here (a head sent a
		 * byte at a time is not parsed once per byte). */
		size_t from = c->scan > 2 ? c->scan - 2 : 0;
		if (!blank_line(c->in + from, c->in_len - from) &&
		    c->in_len <= max) {
			c->scan = c->in_len;
			return;
		}
		rc = h1_parse_head(c->in, c->in_len, max, &c->head, &why);
		if (rc == 0) {
			c->scan = c->in_len;
			return;
		}
		if (rc < 0) {
			refuse_raw(c, (unsigned)-rc, why);
			return;
		}
		c->scan = 0;
		start_request(c);
		if (c->phase == P_BODY)
			(void)feed_body(c);
	}
	if ((c->phase == P_AUTH || c->phase == P_SERVE) &&
	    c->in_len > c->head.head_len + GW_H1_BACKLOG)
		rx(c, 0);	/* pipelined bytes wait for this answer */
}

/* The answer of c->req was written. */
int
gw_h1_done(struct gw_req *r)
{
	struct gw_conn *c = r->conn;
	int body_read, close_it;

	if (c == NULL)
		return -1;
	body_read = c->phase == P_SERVE || (c->phase == P_AUTH &&
	    c->body_left == 0 && !c->head.chunked);
	close_it = !body_read || r->close_after || c->closing;
	gw_req_reset(r);
	if (close_it) {
		/* The framing is unknown (a body we did not read) or the
		 * client asked to close. */
		linger(c);
		return 0;
	}
	in_drop(c, 0, c->head.head_len);
	memset(&c->head, 0, sizeof(c->head));
	c->phase = P_HEAD;
	c->scan = 0;
	c->deadline = clock_mono_ms() + (c->in_len > 0 ?
	    conf()->gw_header_timeout_ms : conf()->gw_keepalive_timeout_ms);
	in_trim(c);
	rx(c, 1);
	process(c);		/* a pipelined request may be waiting */
	return 0;
}

/* The Realtime session of r got its 101: what follows the head is
 * WebSocket frames (a client may have sent some already). */
void
gw_h1_ws_begin(struct gw_req *r)
{
	struct gw_conn *c = r->conn;

	if (c == NULL)
		return;
	c->phase = P_WS;
	c->deadline = 0;
	in_drop(c, 0, c->head.head_len);
	memset(&c->head, 0, sizeof(c->head));
	rx(c, 1);
	if (c->in_len > 0)
		in_drop(c, 0, gw_rt_user_bytes(r, (unsigned char *)c->in,
		    c->in_len));
}

/* ---- request-side accessors -------------------------------------------- */

int
gw_h1_hdr(struct gw_req *r, const char *lname, char *out, size_t outlen)
{
	struct gw_conn *c = r->conn;
	const char *v;
	size_t vlen;

	if (c == NULL || outlen == 0 ||
	    (v = h1_field(c->in, &c->head, lname, &vlen)) == NULL)
		return -1;
	if (vlen >= outlen)
		vlen = outlen - 1;
	memcpy(out, v, vlen);
	out[vlen] = '\0';
	return (int)vlen;
}

/* Copy a query value, %-decoded ('+' is a space). */
int
gw_h1_query(struct gw_req *r, const char *name, char *out, size_t outlen)
{
	struct gw_conn *c = r->conn;
	const char *q, *e, *p;
	size_t nlen = strlen(name);

	if (c == NULL || outlen == 0 || c->head.query.len == 0)
		return -1;
	q = c->in + c->head.query.off;
	e = q + c->head.query.len;
	for (p = q; p < e;) {
		const char *amp = memchr(p, '&', (size_t)(e - p));
		const char *end = amp ? amp : e;
		if ((size_t)(end - p) > nlen && memcmp(p, name, nlen) == 0 &&
		    p[nlen] == '=') {
			size_t o = 0;
			for (const char *s = p + nlen + 1; s < end && o + 1 < outlen; s++) {
				if (*s == '%' && end - s > 2 && hex_digit(s[1]) >= 0 &&
				    hex_digit(s[2]) >= 0) {
					out[o++] = (char)(hex_digit(s[1]) * 16 + hex_digit(s[2]));
					s += 2;
				} else
					out[o++] = *s == '+' ? ' ' : *s;
			}
			out[o] = '\0';
			return (int)o;
		}
		p = end + 1;
	}
	return -1;
}

/* ---- the connection ------------------------------------------------------ */

static void
conn_close(struct gw_conn *c)
{
	struct gw_req *r = &c->req;

	lws_dll2_remove(&c->due);
	if (r->reqid != 0) {
		if (r->stage == GW_ST_RELAY) {
			log_rinfo(r->reqid, "user disconnected; cancelling");
			gw_relay_cancel(r, 1);
		}
		gw_req_reset(r);
	}
	if (c->prev != NULL)
		c->prev->next = c->next;
	else if (conns == c)
		conns = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	free(c->in);
	memset(c, 0, sizeof(*c));
}

static int
cb_h1(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
    size_t len)
{
	struct gw_conn *c = user;

	switch (reason) {
	case LWS_CALLBACK_RAW_ADOPT:
		memset(c, 0, sizeof(*c));
		c->wsi = wsi;
		c->next = conns;
		if (conns != NULL)
			conns->prev = c;
		conns = c;
		c->deadline = clock_mono_ms() + conf()->gw_keepalive_timeout_ms;
		return 0;
	case LWS_CALLBACK_RAW_RX:
		if (c->phase == P_LINGER)
			return 0;	/* dropped */
		if (c->phase == P_HEAD && c->in_len + len >
		    (size_t)conf()->gw_max_header_bytes + GW_H1_BACKLOG) {
			refuse_raw(c, 431, "request head too large");
			return 0;
		}
		if (c->phase == P_HEAD && c->in_len == 0)
			c->deadline = clock_mono_ms() + conf()->gw_header_timeout_ms;
		if (in_append(c, in, len) != 0) {
			log_warn("user port: out of memory; closing a connection");
			return -1;
		}
		if (c->phase == P_BODY)
			(void)feed_body(c);
		else if (c->phase == P_WS) {
			in_drop(c, 0, gw_rt_user_bytes(&c->req,
			    (unsigned char *)c->in, c->in_len));
			if (gw_relay_queued() > GW_RT_TUNNEL_HIGH)
				rx(c, 0);	/* the tick reads on */
		}
		else
			process(c);
		return 0;
	case LWS_CALLBACK_RAW_WRITEABLE:
		if (c->phase == P_LINGER) {
			if (c->shut_pending && lws_partial_buffered(wsi))
				lws_callback_on_writable(wsi);
			else if (c->shut_pending) {
				c->shut_pending = 0;
				shutdown(lws_get_socket_fd(wsi), SHUT_WR);
			}
			return 0;
		}
		if (c->req.reqid == 0 || c->req.wsi != wsi)
			return 0;
		return gw_req_writable(&c->req) != 0 ? -1 : 0;
	case LWS_CALLBACK_RAW_CLOSE:
		conn_close(c);
		return 0;
	default:
		return 0;
	}
}

struct lws_protocols
gw_h1_protocol(void)
{
	struct lws_protocols p = { "swb-h1", cb_h1, sizeof(struct gw_conn),
		0, 0, NULL, 0 };
	return p;
}

/* Timeouts: idle keep-alive, slow heads and bodies, lingering closes;
 * bodies that waited for the budget are retried. */
void
gw_h1_tick(void)
{
	int64_t now = clock_mono_ms();

	for (struct gw_conn *c = conns, *next; c != NULL; c = next) {
		next = c->next;
		if (c->phase == P_BODY && c->rx_off && c->req.reqid != 0) {
			rx(c, 1);
			(void)feed_body(c);
		}
		if (c->phase == P_WS && c->rx_off &&
		    gw_relay_queued() <= GW_RT_TUNNEL_HIGH / 2)
			rx(c, 1);
		if (c->deadline == 0 || now < c->deadline)
			continue;
		c->deadline = 0;
		switch (c->phase) {
		case P_HEAD:
			if (c->in_len == 0) {	/* idle keep-alive: just close */
				lws_set_timeout(c->wsi,
				    PENDING_TIMEOUT_KILLED_BY_PARENT,
				    LWS_TO_KILL_ASYNC);
				break;
			}
			refuse_raw(c, 408, "the request head did not arrive in time");
			break;
		case P_BODY:
			log_rinfo(c->req.reqid, "request body timed out");
			c->req.close_after = 1;
			gw_reply_error(&c->req, 408, "invalid_request_error",
			    "request_timeout",
			    "The request body did not arrive in time.");
			break;
		case P_LINGER:
			lws_set_timeout(c->wsi, PENDING_TIMEOUT_KILLED_BY_PARENT,
			    LWS_TO_KILL_ASYNC);
			break;
		default:
			break;
		}
	}
}
