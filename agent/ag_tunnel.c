/*
 * agent/ag_tunnel: the libwebsockets client of agentd's tunnel and its
 * loop: the lws context and its protocols, the links to the hub (connect,
 * the pin check, challenge and welcome, heartbeats, reconnects with
 * back-off, frames in and their dispatch, frames out written at the end
 * of each turn), the test builds' misbehaviours, and a turn of the loop
 * (ag_tunnel_service).  What the frames do is elsewhere: relayed streams
 * in agent/ag_stream; billing on stream 0 in agent/ag_bill, its frames
 * applied a slice a turn by agent/ag_ledq; hello, metrics and the local
 * page's status in agent/ag_status.  Everything runs on the lws thread;
 * the ledger's SQLite commits are local and short (see agent/ag_ledger.c).
 */
#include "agent/ag_tunnel_int.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <libwebsockets.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <sodium.h>
#include "agent/ag_bucket.h"
#include "agent/ag_caps.h"
#include "agent/ag_probe.h"
#include "agent/ag_update.h"
#include "agent/ag_ui.h"
#include "agent/ag_ledger_read.h"
#include "agent/ag_ledger.h"
#include "agent/ag_uploop.h"
#include "agent/ag_upstream.h"
#include "agent/ag_ws.h"
#include "lib/frame.h"
#include "lib/outq.h"
#include "lib/log.h"
#include "lib/tunauth.h"
#include "lib/clock.h"
#include "lib/ltimer.h"

#define AG_OUT_MAX	(8u * 1024 * 1024)

int64_t
ag_backoff_ms(int64_t min_ms, int64_t max_ms, unsigned attempt, uint32_t rnd)
{
	int64_t d = clock_backoff_ms(min_ms, max_ms, attempt);

	/* "Equal jitter": never less than half, so a fleet spreads out but
	 * no agent hammers the hub. */
	return d / 2 + (int64_t)(rnd % (uint32_t)(d / 2 + 1));
}

static void
link_log_error(struct ag_link *l, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
link_log_error(struct ag_link *l, const char *fmt, ...)
{
	char buf[160];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (strcmp(buf, l->last_error) == 0) {
		/* The same failure again: say so rarely, not in a loop. */
		l->same_errors++;
		if ((l->same_errors & (l->same_errors - 1)) == 0)
			log_warn("agent %llu: still failing (%u times): %s",
			    (unsigned long long)l->agent_id, l->same_errors + 1, buf);
		return;
	}
	snprintf(l->last_error, sizeof(l->last_error), "%s", buf);
	l->same_errors = 0;
	log_warn("agent %llu: %s", (unsigned long long)l->agent_id, buf);
}

static void
link_schedule(struct ag_link *l)
{
	const struct ag_conf *cf = l->t->cf;
	int64_t d = ag_backoff_ms(cf->reconnect_min, cf->reconnect_max,
	    l->attempt, randombytes_random());

	l->attempt++;
	l->state = LK_IDLE;
	l->wsi = NULL;
	l->next_try = clock_mono_ms() + d;
	log_debug("agent %llu: reconnecting in %lld ms",
	    (unsigned long long)l->agent_id, (long long)d);
}

static void
link_reset(struct ag_link *l)
{
	outq_clear(&l->out);
	ag_ledq_drop(l);
	free(l->rx);
	l->rx = NULL;
	l->rx_len = 0;
}

/* Several frames in one message when packed: one write, one read.  -1
 * when the write failed (the link must close). */
static int
link_write(struct ag_link *l)
{
	/* lws keeps what a partial write left, so one buffer serves all
	 * links (all on the lws thread). */
	static unsigned char pack[LWS_PRE + FRAME_PACK_MAX];
	struct outq_item *o;
	const unsigned char *data;
	size_t n, plen;

	n = outq_next(&l->out, l->hub_packed, pack + LWS_PRE, FRAME_PACK_MAX,
	    &data, &plen);
	if (n == 0)
		return 0;
	if (lws_write(l->wsi, (unsigned char *)(uintptr_t)data, plen,
	    LWS_WRITE_BINARY) < (int)plen)
		return -1;
	while (n-- > 0) {
		o = l->out.head;
		if (o->tag != 0)
			ag_up_sent(l->t->up, o->tag, o->credit);
		outq_pop(&l->out);
	}
	if (l->out.head != NULL)
		lws_callback_on_writable(l->wsi);
	return 0;
}

/*
 * An online link's frames are written at the end of the loop's turn
 * that queued them (links_flush), straight to the socket: no wait for
 * POLLOUT and one turn less per answer.  A link that is not online yet,
 * one whose socket lws still holds a partial write for, and what one
 * write did not take wait for POLLOUT as before.
 *
 * A turn of lws_service() runs its due timers (lws_sul: the upstream
 * engine's kick, the ledger and metrics timers), then waits in poll(),
 * then serves the descriptors that woke it.  Frames queued by a
 * descriptor are written when lws_service() returns (ag_tunnel_service);
 * frames queued by a timer, before the wait, by sul_flush, a timer due
 * at once that lws runs in the same pass.
 */
static void links_flush(struct ag_tunnel *t);

static void
on_flush_sul(lws_sorted_usec_list_t *sul)
{
	struct ag_tunnel *t = lws_container_of(sul, struct ag_tunnel,
	    sul_flush);

	links_flush(t);
	ag_stream_served_flush(t);
}

void
ag_tunnel_flush_soon(struct ag_tunnel *t)
{
	lws_sul_schedule(t->ctx, 0, &t->sul_flush, on_flush_sul, 0);
}

static void
link_want_write(struct ag_link *l)
{
	struct ag_tunnel *t = l->t;

	if (!lws_dll2_is_detached(&l->due))
		return;
	if (t->flushing || l->state != LK_ONLINE) {
		lws_callback_on_writable(l->wsi);
		return;
	}
	if (t->due.count == 0)
		lws_sul_schedule(t->ctx, 0, &t->sul_flush, on_flush_sul, 0);
	lws_dll2_add_tail(&l->due, &t->due);
}

static void
links_flush(struct ag_tunnel *t)
{
	struct ag_link *l;

	if (t->due.count == 0)
		return;
	lws_sul_cancel(&t->sul_flush);
	t->flushing = 1;
	while (t->due.head != NULL) {
		l = lws_container_of(t->due.head, struct ag_link, due);
		lws_dll2_remove(&l->due);
		if (l->wsi == NULL)
			continue;	/* closed since: its queue is gone */
		if (l->state != LK_ONLINE || lws_partial_buffered(l->wsi))
			lws_callback_on_writable(l->wsi);
		else if (link_write(l) != 0) {
			link_log_error(l, "cannot write to the hub");
			lws_set_timeout(l->wsi, PENDING_TIMEOUT_KILLED_BY_PARENT,
			    LWS_TO_KILL_ASYNC);
		}
	}
	t->flushing = 0;
}

int
ag_tunnel_send(struct ag_link *l, struct frame_enc *e)
{
	const void *data;
	size_t len;

	if (frame_enc_finish(e, &data, &len) != 0 || l->wsi == NULL ||
	    l->out.bytes + len > AG_OUT_MAX ||
	    outq_push(&l->out, LWS_PRE, data, len, NULL, 0) == NULL) {
		log_warn("agent %llu: cannot send a %s frame",
		    (unsigned long long)l->agent_id, frame_type_name(e->type));
		frame_enc_free(e);
		return -1;
	}
	frame_enc_free(e);
	link_want_write(l);
	return 0;
}

static void
link_connect(struct ag_link *l)
{
	const struct ag_conf *cf = l->t->cf;
	struct lws_client_connect_info ci;

	memset(&ci, 0, sizeof(ci));
	ci.context = l->t->ctx;
	ci.address = cf->hub_host;
	ci.port = cf->hub_port;
	ci.path = cf->hub_path;
	ci.host = cf->hub_host;
	ci.origin = cf->hub_host;
	ci.protocol = "swb-tunnel";
	ci.local_protocol_name = "swb-agent";
	/* The pins, checked in the verify callback, are the trust anchor;
	 * the name check adds nothing to a pinned key. */
	ci.ssl_connection = LCCSCF_USE_SSL | LCCSCF_SKIP_SERVER_CERT_HOSTNAME_CHECK;
	ci.opaque_user_data = l;
	ci.pwsi = &l->wsi;
	l->state = LK_CONNECTING;
	l->pin_refused = 0;
	l->kicked = 0;
	if (lws_client_connect_via_info(&ci) == NULL) {
		link_log_error(l, "cannot start a connection to %s:%d",
		    cf->hub_host, cf->hub_port);
		link_schedule(l);
	}
}

static void
send_channels(struct ag_link *l)
{
	const struct ag_conf *cf = l->t->cf;
	struct frame_enc e;

	for (int i = 0; i < cf->nchannels; i++) {
		const struct ag_channel *ch = &cf->channels[i];
		struct frame_str models[AG_MAX_MODELS];
		for (int m = 0; m < ch->nmodels; m++) {
			models[m].ptr = ch->models[m];
			models[m].len = strlen(ch->models[m]);
		}
		/* Name, provider, models, grade and limits: never the key. */
		frame_enc_begin(&e, FRAME_CHANNELS, 0, 7);
		frame_enc_bool(&e, "done", false);
		frame_enc_cstr(&e, "name", ch->name);
		frame_enc_cstr(&e, "provider", ag_provider_name(ch->provider));
		frame_enc_strv(&e, "models", models, (size_t)ch->nmodels);
		frame_enc_cstr(&e, "grade", ag_grade_name(ch->grade));
		frame_enc_u64(&e, "rpm", (uint64_t)ch->rpm);
		frame_enc_u64(&e, "tpm", (uint64_t)ch->tpm);
		ag_tunnel_send(l, &e);
	}
	frame_enc_begin(&e, FRAME_CHANNELS, 0, 1);
	frame_enc_bool(&e, "done", true);
	ag_tunnel_send(l, &e);
}

#if SWB_TEST_BUILD
static void
test_misbehave(struct ag_link *l)
{
	static const unsigned char junk[] = { 0x94, 0x01, 0xc1, 0xff, 0x00 };
	struct frame_enc e;
	unsigned char zero[64] = { 0 };

	if (l->misbehaved)
		return;
	switch (l->t->test_mode) {
	case AG_TEST_REPLAY:
		/* Drop this good connection; the next one replays. */
		l->misbehaved = 1;
		lws_set_timeout(l->wsi, PENDING_TIMEOUT_KILLED_BY_PARENT,
		    LWS_TO_KILL_ASYNC);
		break;
	case AG_TEST_JUNK:
		l->misbehaved = 1;
		if (outq_push(&l->out, LWS_PRE, junk, sizeof(junk), NULL, 0) != NULL)
			lws_callback_on_writable(l->wsi);
		break;
	case AG_TEST_ORDER:
		l->misbehaved = 1;
		frame_enc_begin(&e, FRAME_AUTH, 0, 2);
		frame_enc_u64(&e, "agent_id", l->agent_id);
		frame_enc_bin(&e, "sig", zero, sizeof(zero));
		ag_tunnel_send(l, &e);
		break;
	default:
		break;
	}
}

void
ag_tunnel_test_mode(struct ag_tunnel *t, enum ag_test_mode mode)
{
	t->test_mode = (int)mode;
}
#endif

int
ag_tunnel_on_frame(struct ag_link *l, const struct frame *f)
{
	struct frame_enc e;
	const unsigned char *nonce;
	const char *s;
	size_t len;
	uint64_t v;
	unsigned char sig[TUNAUTH_SIG_LEN];
#if SWB_TEST_BUILD
	struct frame replay;
	char err[128];
#endif

	switch (f->type) {
	case FRAME_CHALLENGE:
		if (l->state != LK_CONNECTING)
			break;
		frame_get_bin(f, "nonce", &nonce, &len);
		if (len != TUNAUTH_NONCE_LEN)
			return -1;
		tunauth_sign(sig, l->sk, l->agent_id, nonce, l->exporter);
		frame_enc_begin(&e, FRAME_AUTH, 0, 3);
		frame_enc_u64(&e, "agent_id", l->agent_id);
		frame_enc_bin(&e, "nonce", nonce, len);
		frame_enc_bin(&e, "sig", sig, sizeof(sig));
#if SWB_TEST_BUILD
		if (l->t->test_mode == AG_TEST_REPLAY && l->saved_auth_len > 0) {
			log_warn("agent %llu: TEST: replaying the first handshake",
			    (unsigned long long)l->agent_id);
			frame_enc_free(&e);
			frame_decode(l->saved_auth, l->saved_auth_len, &replay,
			    err, sizeof(err));
			frame_enc_begin(&e, FRAME_AUTH, 0, replay.nfields);
			frame_enc_frame(&e, &replay);
			frame_free(&replay);
		} else if (l->t->test_mode == AG_TEST_REPLAY) {
			const void *d;
			size_t dl;
			if (frame_enc_finish(&e, &d, &dl) == 0 &&
			    dl <= sizeof(l->saved_auth)) {
				memcpy(l->saved_auth, d, dl);
				l->saved_auth_len = dl;
			}
		}
#endif
		ag_tunnel_send(l, &e);
		l->state = LK_AUTH;
		return 0;
	case FRAME_WELCOME:
		if (l->state != LK_AUTH)
			break;
		frame_get_u64(f, "session", &v);
		l->state = LK_ONLINE;
		l->attempt = 0;
		l->last_error[0] = '\0';
		log_info("agent %llu: online (session %llu)",
		    (unsigned long long)l->agent_id, (unsigned long long)v);
		ag_bill_learn_key(l, f);
		send_channels(l);
		ag_bill_send_sync(l);
		{
			bool b = false;

			(void)frame_get_bool(f, "hello", &b);
			l->hub_hello = b;
			b = false;
			(void)frame_get_bool(f, "packed", &b);
			l->hub_packed = b;
		}
		ag_status_hello(l);
		(void)ag_probe_start(&l->t->probe, l->t->ctx);
		ag_update_online(l->t->upd);
#if SWB_TEST_BUILD
		test_misbehave(l);
#endif
		return 0;
	case FRAME_PING:
		frame_get_u64(f, "ts", &v);
		frame_enc_begin(&e, FRAME_PONG, 0, 1);
		frame_enc_u64(&e, "ts", v);
		ag_tunnel_send(l, &e);
		return 0;
	case FRAME_PONG:
		return 0;
	case FRAME_ECHO:
		if (l->state != LK_ONLINE)
			break;
		frame_get_str(f, "text", &s, &len);
		frame_enc_begin(&e, FRAME_ECHO_REPLY, f->stream_id, 1);
		frame_enc_str(&e, "text", s, len);
		ag_tunnel_send(l, &e);
		return 0;
	case FRAME_REQ_START:
	case FRAME_REQ_BODY:
	case FRAME_REQ_END:
	case FRAME_CANCEL:
	case FRAME_CREDIT:
	case FRAME_WS_MSG:
		if (l->state != LK_ONLINE)
			break;
		return ag_stream_on_req(l, f);
	case FRAME_DISPUTE_RESULT:
		if (l->state == LK_ONLINE)
			ag_bill_frame(l, f);
		return 0;
	case FRAME_RECEIPT:
	case FRAME_PRICE_UPDATE:
	case FRAME_USAGE_ACK:
	case FRAME_SYNC:
		if (l->state != LK_ONLINE)
			break;
		/* Bad input from the hub is logged; the link carries on. */
		ag_bill_frame(l, f);
		return 0;
	case FRAME_UPDATE_AVAILABLE:
		if (l->state == LK_ONLINE) {
			char ver[32];

			frame_get_str(f, "version", &s, &len);
			snprintf(ver, sizeof(ver), "%.*s", (int)len, s);
			ag_update_available(l->t->upd, ver);
		}
		return 0;
	case FRAME_KICK:
		frame_get_str(f, "reason", &s, &len);
		log_warn("agent %llu: kicked by the hub: %.*s",
		    (unsigned long long)l->agent_id, (int)len, s);
		l->kicked = 1;
		return 0;
	case FRAME_ERROR:
		frame_get_str(f, "message", &s, &len);
		log_warn("agent %llu: hub error: %.*s",
		    (unsigned long long)l->agent_id, (int)len, s);
		return 0;
	default:
		log_debug("agent %llu: ignoring a %s frame",
		    (unsigned long long)l->agent_id, frame_type_name(f->type));
		return 0;
	}
	log_warn("agent %llu: out-of-order %s frame from the hub",
	    (unsigned long long)l->agent_id, frame_type_name(f->type));
	return -1;
}

static int
on_receive(struct ag_link *l, const void *in, size_t len)
{
	struct frame f;
	char err[160];
	size_t used;
	int rc;

	if (l->rx_len + len > FRAME_MAX)
		return -1;
	if (!lws_is_final_fragment(l->wsi) || l->rx_len > 0) {
		unsigned char *nb = realloc(l->rx, l->rx_len + len);
		if (nb == NULL)
			return -1;
		l->rx = nb;
		memcpy(l->rx + l->rx_len, in, len);
		l->rx_len += len;
		if (!lws_is_final_fragment(l->wsi))
			return 0;
		in = l->rx;
		len = l->rx_len;
	}
	l->last_rx = clock_mono_ms();
	/* One frame, or several packed (lib/frame.h PACKING). */
	rc = 0;
	for (const unsigned char *p = in, *end = p + len; p < end && rc == 0;
	    p += used) {
		if (frame_decode_next(p, (size_t)(end - p), &f, &used, err,
		    sizeof(err)) != 0) {
			log_warn("agent %llu: malformed frame from the hub: %s",
			    (unsigned long long)l->agent_id, err);
			rc = -1;
			break;
		}
		rc = ag_ledq_defer(l, &f, p, used);
		if (rc == 0)
			rc = ag_tunnel_on_frame(l, &f);
		else if (rc == 1)
			rc = 0;
		frame_free(&f);
	}
	free(l->rx);
	l->rx = NULL;
	l->rx_len = 0;
	return rc;
}

/* OpenSSL's verify callback, through lws: the pin decides. */
static int
verify_pin(struct ag_link *l, X509_STORE_CTX *x, int preverify_ok)
{
	const struct ag_conf *cf = l->t->cf;
	unsigned char h[32];
	X509 *cert;

	if (X509_STORE_CTX_get_error_depth(x) != 0) {
		/* Issuers: the leaf's pin is what we trust. */
		X509_STORE_CTX_set_error(x, X509_V_OK);
		return 0;
	}
	cert = X509_STORE_CTX_get_current_cert(x);
	if (cert != NULL && tunauth_spki_sha256(cert, h) == 0)
		for (int i = 0; i < cf->pins.n; i++)
			if (sodium_memcmp(h, cf->pins.sha256[i], 32) == 0) {
				X509_STORE_CTX_set_error(x, X509_V_OK);
				return 0;
			}
	l->pin_refused = 1;
	if (cert != NULL) {
		char pin[80] = "?";
		tunauth_spki_pin(cert, pin, sizeof(pin));
		link_log_error(l, "refusing the hub at %s:%d: its certificate key "
		    "%s matches none of the %d pinned key(s)", cf->hub_host,
		    cf->hub_port, pin, cf->pins.n);
	}
	X509_STORE_CTX_set_error(x, X509_V_ERR_CERT_REJECTED);
	return 1;
}

static int
cb_agent(struct lws *wsi, enum lws_callback_reasons reason, void *user,
    void *in, size_t len)
{
	struct ag_link *l = wsi ? lws_get_opaque_user_data(wsi) : NULL;

	{	/* a Realtime session's provider WebSocket (agent/ag_ws) */
		int ret;
		if (ag_ws_dispatch(wsi, reason, user, in, len, &ret))
			return ret;
	}
	if (l == NULL)
		return reason == LWS_CALLBACK_OPENSSL_PERFORM_SERVER_CERT_VERIFICATION;
	/* lws hands TLS callbacks to the first protocol: the probe's too. */
	if ((void *)l == &((struct ag_tunnel *)lws_context_user(
	    lws_get_context(wsi)))->probe)
		return ag_probe_callback(wsi, reason, user, in, len);
	if (ag_update_owns(((struct ag_tunnel *)lws_context_user(
	    lws_get_context(wsi)))->upd, l))
		return ag_update_callback(wsi, reason, user, in, len);
	switch (reason) {
	case LWS_CALLBACK_OPENSSL_PERFORM_SERVER_CERT_VERIFICATION:
		/* user: the X509_STORE_CTX; len: OpenSSL's own verdict. */
		return verify_pin(l, user, (int)len);
	case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
		if (!l->pin_refused)
			link_log_error(l, "cannot connect to the hub at %s:%d: %s",
			    l->t->cf->hub_host, l->t->cf->hub_port,
			    in ? (const char *)in : "unknown error");
		link_reset(l);
		link_schedule(l);
		return 0;
	case LWS_CALLBACK_CLIENT_ESTABLISHED:
		if (tunauth_exporter(lws_get_ssl(wsi), l->exporter) != 0) {
			link_log_error(l, "the hub did not negotiate TLS 1.3");
			return -1;
		}
		/* lws asks OpenSSL to give a connection's 16 KB read and
		 * write buffers back after every record.  Right for many idle
		 * connections, wrong for this one: it carries every request,
		 * and each record then cost two 16 KB allocations. */
		SSL_clear_mode(lws_get_ssl(wsi), SSL_MODE_RELEASE_BUFFERS);
		l->last_rx = l->last_ping = clock_mono_ms();
		{
			int one = 1;
			(void)setsockopt(lws_get_socket_fd(wsi), IPPROTO_TCP,
			    TCP_NODELAY, &one, sizeof(one));
		}
		log_info("agent %llu: connected to %s:%d, authenticating",
		    (unsigned long long)l->agent_id, l->t->cf->hub_host,
		    l->t->cf->hub_port);
		return 0;
	case LWS_CALLBACK_CLIENT_RECEIVE:
		if (on_receive(l, in, len) != 0)
			return -1;
		return l->kicked ? -1 : 0;
	case LWS_CALLBACK_CLIENT_WRITEABLE:
		return link_write(l);
	case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE:
		if (len > 2)
			link_log_error(l, "the hub closed the tunnel: %.*s",
			    (int)(len - 2), (const char *)in + 2);
		return 0;
	case LWS_CALLBACK_CLIENT_CLOSED:
		if (l->state == LK_ONLINE)
			log_warn("agent %llu: tunnel lost; reconnecting",
			    (unsigned long long)l->agent_id);
		else if (l->state == LK_AUTH)
			link_log_error(l, "the hub refused the handshake");
		ag_stream_drop_link(l);
		link_reset(l);
		link_schedule(l);
		return 0;
	default:
		return 0;
	}
}

static const struct lws_protocols protocols[] = {
	{ "swb-agent", cb_agent, 0, 4096, 0, NULL, 0 },
	{ AG_PROBE_PROTOCOL, ag_probe_callback, 0, 4096, 0, NULL, 0 },
	{ AG_UPDATE_PROTOCOL, ag_update_callback, 0, 4096, 0, NULL, 0 },
	{ AG_UPLOOP_PROTOCOL, ag_uploop_callback, 0, 0, 0, NULL, 0 },
	{ LTIMER_PROTOCOL, ltimer_callback, 0, 0, 0, NULL, 0 },
	{ NULL, NULL, 0, 0, 0, NULL, 0 },
};

static void
on_timer(struct ltimer *lt)
{
	struct ag_tunnel *t = lt->arg;
	int64_t now = clock_mono_ms();
	int64_t hb = t->cf->heartbeat_interval;
	struct frame_enc e;

	for (int i = 0; i < t->nlinks; i++) {
		struct ag_link *l = t->links[i];
		if (l->state == LK_IDLE && now >= l->next_try) {
			link_connect(l);
			continue;
		}
		if (l->state != LK_ONLINE || l->wsi == NULL)
			continue;
		if (now - l->last_rx > 3 * hb) {
			link_log_error(l, "the hub has been silent for %lld ms",
			    (long long)(now - l->last_rx));
			lws_set_timeout(l->wsi, PENDING_TIMEOUT_KILLED_BY_PARENT,
			    LWS_TO_KILL_ASYNC);
			continue;
		}
		if (now - l->last_ping >= hb) {
			l->last_ping = now;
			frame_enc_begin(&e, FRAME_PING, 0, 1);
			frame_enc_u64(&e, "ts", (uint64_t)clock_wall_ms());
			ag_tunnel_send(l, &e);
		}
	}
	/* The usage reports and the metrics ride on this tick: an lws
	 * timer of their own ended each wait in a burst of zero-timeout
	 * polls (lib/ltimer.h). */
	if (now >= t->next_report_ms) {
		t->next_report_ms = now + AG_LEDGER_TICK;
		ag_bill_report_due(t);
	}
	if (now >= t->next_metrics_ms) {
		t->next_metrics_ms = now + AG_METRICS_EVERY_MS;
		ag_status_metrics(t);
	}
	ltimer_arm(&t->tick, 100 * LWS_US_PER_MS);
}

struct ag_tunnel *
ag_tunnel_new(const struct ag_conf *cf, char *err, size_t errlen)
{
	struct lws_context_creation_info info;
	struct ag_up_loop loop;
	struct lws_vhost *vh;
	struct ag_tunnel *t;

	if (sodium_init() < 0) {
		snprintf(err, errlen, "libsodium failed to initialise");
		return NULL;
	}
	if (cf->pins.n == 0) {
		snprintf(err, errlen, "no hub pin: %s", SWB_TEST_BUILD ?
		    "set [agent] hub_pin" : "this build was made without HUB_PINS");
		return NULL;
	}
	t = calloc(1, sizeof(*t));
	if (t == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	t->cf = cf;
	t->lg = ag_ledger_open(cf->state_dir, AG_LEDGER_CREATE |
	    AG_LEDGER_CHECKPOINTER, err, errlen);
	if (t->lg == NULL) {
		free(t);
		return NULL;
	}
	ag_caps_init(&t->caps, cf);
	t->probe.cf = cf;
	t->probe.done = ag_status_probe_done;
	t->probe.arg = t;
	t->rd = ag_ledger_rd_open(cf->state_dir, err, errlen);
	if (t->rd == NULL || ag_caps_seed(&t->caps, t->rd,
	    clock_wall_ms()) != 0) {
		if (t->rd != NULL)
			snprintf(err, errlen, "ledger: %s",
			    ag_ledger_rd_error(t->rd));
		ag_ledger_rd_close(t->rd);
		ag_ledger_close(t->lg);
		free(t);
		return NULL;
	}
	for (int i = 0; i < cf->nchannels; i++)
		ag_bucket_init(&t->buckets[i], cf->channels[i].rpm,
		    cf->channels[i].tpm, clock_mono_ms());
	lws_set_log_level(LLL_ERR, NULL);
	memset(&info, 0, sizeof(info));
	info.port = CONTEXT_PORT_NO_LISTEN;
	info.protocols = protocols;
	info.options = LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
	/* TLS 1.3 only: the handshake signs its channel binding. */
	info.ssl_client_options_set = SSL_OP_NO_TLSv1 | SSL_OP_NO_TLSv1_1 |
	    SSL_OP_NO_TLSv1_2;
#if SWB_TEST_BUILD
	if (cf->ca_file[0] != '\0')
		info.client_ssl_ca_filepath = cf->ca_file;
#endif
	info.fd_limit_per_thread = 4096;
	info.user = t;
	t->ctx = lws_create_context(&info);
	if (t->ctx == NULL) {
		snprintf(err, errlen, "cannot create the TLS client context");
		ag_ledger_rd_close(t->rd);
		ag_ledger_close(t->lg);
		free(t);
		return NULL;
	}
	ag_uploop_init(&t->uploop, t->ctx, ag_stream_drain_upstream, t, &loop);
	t->up = ag_up_new(cf, &loop, err, errlen);
	if (t->up != NULL && ag_uploop_start(&t->uploop, t->up, err,
	    errlen) != 0) {
		ag_up_free(t->up);
		t->up = NULL;
	}
	t->upd = t->up != NULL ? ag_update_new(cf, t->ctx) : NULL;
	vh = lws_get_vhost_by_name(t->ctx, "default");
	if (t->up != NULL && t->upd == NULL)
		snprintf(err, errlen, "out of memory");
	else if (t->up != NULL && (ltimer_start(&t->tick, vh, on_timer,
	    t) != 0 || ltimer_start(&t->flush, vh, ag_bill_flush_timer, t) != 0)) {
		snprintf(err, errlen, "timers: %s", strerror(errno));
		ag_update_free(t->upd);
		t->upd = NULL;
	}
	if (t->up == NULL || t->upd == NULL) {
		ltimer_stop(&t->tick);
		ltimer_stop(&t->flush);
		ag_uploop_stop(&t->uploop);
		ag_up_free(t->up);
		lws_context_destroy(t->ctx);
		ag_ledger_rd_close(t->rd);
		ag_ledger_close(t->lg);
		free(t);
		return NULL;
	}
	t->next_report_ms = clock_mono_ms() + AG_LEDGER_TICK;
	t->next_metrics_ms = clock_mono_ms() + AG_METRICS_EVERY_MS;
	ltimer_arm(&t->tick, 0);
	ag_ledger_group(t->lg, ag_bill_ledger_armed, t);
#if SWB_TEST_BUILD
	{
		const char *v = getenv("SWB_TEST_LEDGER_SLICE");

		if (v != NULL && atoi(v) > 0)
			ag_ledger_test_slice(t->lg, (size_t)atoi(v));
	}
#endif
	{
		char why[300] = "";

		t->ui = ag_ui_start(t->ctx, cf, ag_status_ui, t, why, sizeof(why));
		if (t->ui != NULL)
			log_set_sink(ag_ui_log_line);
		else if (why[0] != '\0')
			log_warn("no local page: %s", why);
	}
	return t;
}

int
ag_tunnel_add(struct ag_tunnel *t, uint64_t agent_id, const unsigned char sk[64])
{
	struct ag_link **nl, *l;

	nl = realloc(t->links, sizeof(*nl) * (size_t)(t->nlinks + 1));
	if (nl == NULL)
		return -1;
	t->links = nl;
	l = calloc(1, sizeof(*l));
	if (l == NULL)
		return -1;
	l->t = t;
	l->agent_id = agent_id;
	memcpy(l->sk, sk, sizeof(l->sk));
	l->state = LK_IDLE;
	/* Spread a fleet's first dial over a few ms. */
	l->next_try = clock_mono_ms() + (t->nlinks % 50);
	t->links[t->nlinks++] = l;
	return 0;
}

/* Each turn first writes what was queued since the last (in its
 * callbacks, or by the caller between turns). */
void
ag_tunnel_service(struct ag_tunnel *t)
{
	int more;

	/* The last turn's answers go out first, and the requests it took go
	 * to the provider; then what it served is recorded, before any
	 * receipt for it could be applied. */
	links_flush(t);
	ag_uploop_kick_now(&t->uploop);
	ag_stream_served_flush(t);
	more = ag_ledq_turn(t);

	/* Ledger frames still waiting: the CPU goes to whoever else waits
	 * for it, then a poll that does not wait.  The kernel does not
	 * preempt a busy agentd for a process it woke on the same CPU (the
	 * hub's tunnel or gateway, on one host): without the yield the
	 * slices changed nothing measurable, with it the p99 at c=1 fell
	 * from about 2.7 to 1.7 ms. */
	if (more)
		sched_yield();
	links_flush(t);
	lws_service(t->ctx, more ? -1 : 0);
}

void
ag_tunnel_channels_changed(struct ag_tunnel *t)
{
	for (int i = 0; i < t->cf->nchannels; i++)
		ag_bucket_init(&t->buckets[i], t->cf->channels[i].rpm,
		    t->cf->channels[i].tpm, clock_mono_ms());
	for (int i = 0; i < t->nlinks; i++)
		if (t->links[i]->state == LK_ONLINE)
			send_channels(t->links[i]);
}

struct ag_update *
ag_tunnel_update(struct ag_tunnel *t)
{
	return t->upd;
}

int
ag_tunnel_online(const struct ag_tunnel *t)
{
	int n = 0;

	for (int i = 0; i < t->nlinks; i++)
		if (t->links[i]->state == LK_ONLINE)
			n++;
	return n;
}

void
ag_tunnel_free(struct ag_tunnel *t)
{
	if (t == NULL)
		return;
	ltimer_stop(&t->tick);
	ltimer_stop(&t->flush);
	lws_sul_cancel(&t->sul_flush);
	ag_uploop_stop(&t->uploop);	/* first: no run after this */
	ag_up_free(t->up);
	ag_stream_free_all(t);
	lws_sul_cancel(&t->sul_flush);	/* the records' flush: done */
	lws_context_destroy(t->ctx);
	ag_update_free(t->upd);
	log_set_sink(NULL);
	ag_ui_free(t->ui);
	for (int i = 0; i < t->nlinks; i++) {
		link_reset(t->links[i]);
		sodium_memzero(t->links[i]->sk, sizeof(t->links[i]->sk));
		free(t->links[i]);
	}
	free(t->links);
	ag_ledger_rd_close(t->rd);
	ag_ledger_close(t->lg);
	free(t);
}
