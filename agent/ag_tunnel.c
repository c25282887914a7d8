/*
 * agent/ag_tunnel: the libwebsockets client of agentd's tunnel: links,
 * relayed streams, and the agent's side of billing on stream 0 (served
 * streams recorded in agent/ag_ledger, receipts checked and acked, sync,
 * prices, usage reports).  Everything runs on the lws thread; the ledger's
 * SQLite commits are local and short (see agent/ag_ledger.c).
 */
#include "agent/ag_tunnel.h"

#include <errno.h>
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
#include <jansson.h>
#include "agent/ag_bucket.h"
#include "agent/ag_caps.h"
#include "agent/ag_metrics.h"
#include "agent/ag_probe.h"
#include "agent/ag_update.h"
#include "agent/ag_version.h"
#include "agent/ag_ui.h"
#include "agent/ag_ledger_read.h"
#include "agent/ag_ledger.h"
#include "agent/ag_prov.h"
#include "agent/ag_uploop.h"
#include "agent/ag_upstream.h"
#include "agent/ag_ws.h"
#include "lib/ipc.h"
#include "lib/frame.h"
#include "lib/tokest.h"
#include "lib/outq.h"
#include "lib/evstream.h"
#include "lib/sse.h"
#include "lib/usage.h"
#include "lib/log.h"
#include "lib/tunauth.h"
#include "lib/release.h"
#include "lib/clock.h"
#include "lib/ltimer.h"

#define AG_OUT_MAX	(8u * 1024 * 1024)
#define AG_STREAM_BUCKETS 4096	/* stream index buckets (power of 2) */
#define AG_STREAMS_MAX	16384		/* per link (>= 10,000 concurrent streams) */
#define AG_PIECE	(512u * 1024)	/* resp_chunk payload at most */
#define AG_BODY_SNIFF	(4u * 1024 * 1024)	/* non-SSE body kept for usage */
#define AG_REPORT_AGAIN_MIN 1000	/* ms between reports of one stream, at least */
#define AG_REPORT_BATCH	64		/* usage reports per tick at most */
#define AG_LEDGER_TICK	1000		/* ms: the usage report timer */

/* One relayed request: hub stream <-> upstream transfer.  lws thread only. */
struct ag_stream {
	struct ag_stream *next, *prev;	/* t->streams */
	struct ag_stream *knext;	/* t->by_key chain */
	struct ag_stream *inext;	/* t->by_id chain (link, id) */
	struct ag_link *l;
	uint32_t id;			/* hub's stream id on this link */
	uint64_t key;			/* ag_upstream key, unique per process */
	char channel[AG_CHAN_NAME_MAX];
	char method[8];			/* made by the adapter at req_end */
	char path[256];
	int op;				/* req_start: enum prov_op */
	char up_model[128];		/* req_start: the model asked for */
	int stream_flag;
	char resource[64];
	char anthropic_version[32];	/* req_start, or "" */
	char anthropic_beta[128];	/* req_start, or "" */
	char ctype[128];
	unsigned char *body;		/* request body while it arrives */
	size_t body_len;
	int started;			/* handed to the upstream engine */
	int sse_mode;
	struct sse sse;
	int evs_mode;			/* AWS event-stream answer (Bedrock) */
	struct evs evs;
	struct usage usage;
	unsigned char *sniff;		/* non-SSE response, for its usage */
	size_t sniff_len;
	int sniffed;			/* sniff read for usage (once) */
	/* Flow control (lib/frame.h, FLOW CONTROL). */
	struct frame_window win;	/* resp_chunk bytes the hub still takes */
	struct outq hold;		/* upstream data beyond the window */
	int ended;			/* END taken while data was held: */
	int end_ok;			/* ...resp_end goes after the data */
	char end_error[160];
	/* Billing: a stream with a request_id and a 2xx head is recorded
	 * in the ledger's served table when it ends, however it ends. */
	char request_id[LEDGER_REQID_MAX + 1];	/* "": none, not recorded */
	char model[LEDGER_MODEL_MAX + 1];	/* the body's "model" or "" */
	int64_t input_est;		/* tokest of the body, at the start */
	int64_t prompt_est;		/* tokest_prompt: a cut stream's input */
	struct usage speech;		/* OP_AUDIO_SPEECH: its input's characters
					 * (usage_speech_request), billed once served */
	long status;			/* upstream HTTP status; 0 before head */
	int recorded;
	/* A Realtime session (op realtime): the provider's WebSocket, its
	 * messages the window holds back (tag: 1 text), responses billed. */
	struct ag_ws *ws;
	struct outq rt_hold;
	size_t rt_held;			/* bytes in rt_hold */
	uint64_t rt_responses;
	/* Caps (agent/ag_caps). */
	int ci;				/* its channel's index; -1 unknown */
	int capped;			/* counted in flight by ag_caps_admit */
	int64_t max_out;		/* the body's max_tokens or 0 */
	int64_t started_ms;		/* monotonic, handed upstream */
};

enum link_state { LK_IDLE, LK_CONNECTING, LK_AUTH, LK_ONLINE };

struct ag_link {
	int nstreams;			/* its streams in t->streams */
	struct ag_tunnel *t;
	uint64_t agent_id;
	unsigned char sk[64];
	struct lws *wsi;
	enum link_state state;
	unsigned attempt;		/* failed attempts since the last welcome */
	int64_t next_try;		/* monotonic ms */
	int64_t last_rx, last_ping;	/* monotonic ms */
	unsigned char exporter[TUNAUTH_EXPORTER_LEN];
	/* Frames for the hub.  A resp_chunk's tag is its upstream transfer and
	 * its credit the payload bytes, reported sent (ag_up_sent) once
	 * written. */
	struct outq out;
	lws_dll2_t due;			/* on t->due (links_flush) */
	unsigned char *rx;
	size_t rx_len;
	/* The hub's ledger frames not applied yet, in arrival order, each
	 * as it came (ledger_defer); applied a slice per turn of the loop. */
	struct outq ledq;
	lws_dll2_t ledq_due;		/* on t->ledq_due while ledq holds any,
					   or while storing */
	int storing;			/* a signed receipt of this link is
					   storing its batch, a slice a turn
					   (ag_ledger_receipt_continue) */
	char last_error[160];		/* logged once until it changes */
	unsigned same_errors;
	int pin_refused;		/* set by the verify callback */
	int kicked;
	uint64_t gap_head;		/* our head when we last sent sync */
	int hub_hello;			/* the welcome said it takes hello */
	int hub_packed;			/* ... and packed messages
					   (lib/frame.h PACKING) */
#if SWB_TEST_BUILD
	unsigned char saved_auth[256];	/* AG_TEST_REPLAY */
	size_t saved_auth_len;
	int misbehaved;
#endif
};

struct ag_tunnel {
	const struct ag_conf *cf;
	struct lws_context *ctx;
	struct ag_link **links;
	int nlinks;
	int test_mode;
	struct ag_upstream *up;
	struct ag_uploop uploop;	/* runs up on this (the lws) thread */
	struct ag_stream *streams;
	uint64_t next_key;
	struct ltimer tick;		/* links, heartbeats: every 100 ms */
	lws_sorted_usec_list_t sul_ledger;	/* usage reports, every second */
	struct ltimer flush;		/* the ledger's grouped writes */
	/* Every stream by key (upstream events) and by (link, hub's id)
	 * (frames): looked up per frame and per event. */
	struct ag_stream *by_key[AG_STREAM_BUCKETS];
	struct ag_stream *by_id[AG_STREAM_BUCKETS];
	struct ag_ledger *lg;		/* <state_dir>/ledger.db */
	struct ag_bucket buckets[AG_MAX_CHANNELS];	/* per cf->channels[i] */
	struct ag_caps caps;		/* the owner's caps per channel */
	struct ag_ledger_rd *rd;	/* read-only ledger (seeding, the UI) */
	struct ag_metrics metrics;	/* its own figures per channel */
	lws_sorted_usec_list_t sul_metrics;	/* metrics frames */
	struct ag_probe probe;		/* its public address, per welcome */
	struct ag_ui *ui;		/* the local page, or NULL */
	struct ag_update *upd;		/* signed self-updates (ag_update) */
	/* Links with frames queued since the last turn of the loop: written
	 * straight to the socket before the next wait (links_flush). */
	lws_dll2_owner_t due;
	int flushing;
	lws_sorted_usec_list_t sul_flush;	/* the same, for frames queued
						   in lws's timers (before its
						   poll) */
	/* Links with ledger frames waiting (ledger_defer), and how many more
	 * this turn of the loop may still apply. */
	lws_dll2_owner_t ledq_due;
	int ledger_budget;
};

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
static void stream_prepare(struct ag_stream *s);
static void stream_record(struct ag_stream *s);

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

static void ledger_finish(struct ag_link *l);
static void links_replay(struct ag_tunnel *t, const char *why);

/* The hub's ledger frames l still held (ledger_defer): not applied, not
 * acked, so the next link's sync brings them again.  A batch it was
 * storing is stored whole first (verified; the committed chain must end
 * on a signed entry), without acks. */
static void
ledq_drop(struct ag_link *l)
{
	ledger_finish(l);
	outq_clear(&l->ledq);
	lws_dll2_remove(&l->ledq_due);
}

static void
link_reset(struct ag_link *l)
{
	outq_clear(&l->out);
	ledq_drop(l);
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
	links_flush(lws_container_of(sul, struct ag_tunnel, sul_flush));
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

static int
link_send(struct ag_link *l, struct frame_enc *e)
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
		link_send(l, &e);
	}
	frame_enc_begin(&e, FRAME_CHANNELS, 0, 1);
	frame_enc_bool(&e, "done", true);
	link_send(l, &e);
}


/* ---- relayed requests ------------------------------------------------ */

static size_t
key_bucket(uint64_t key)
{
	return (size_t)((key * UINT64_C(0x9e3779b97f4a7c15)) >> 52) &
	    (AG_STREAM_BUCKETS - 1);
}

static size_t
id_bucket(const struct ag_link *l, uint32_t id)
{
	return (size_t)((((uint64_t)(uintptr_t)l >> 4) ^ id) *
	    UINT64_C(0x9e3779b97f4a7c15) >> 52) & (AG_STREAM_BUCKETS - 1);
}

static struct ag_stream *
stream_by_id(struct ag_link *l, uint32_t id)
{
	for (struct ag_stream *s = l->t->by_id[id_bucket(l, id)]; s != NULL;
	    s = s->inext)
		if (s->l == l && s->id == id)
			return s;
	return NULL;
}

static struct ag_stream *
stream_by_key(struct ag_tunnel *t, uint64_t key)
{
	for (struct ag_stream *s = t->by_key[key_bucket(key)]; s != NULL;
	    s = s->knext)
		if (s->key == key)
			return s;
	return NULL;
}

/* s (its link, id and key set) joins the list and both indexes. */
static void
stream_add(struct ag_stream *s)
{
	struct ag_tunnel *t = s->l->t;
	size_t k = key_bucket(s->key), i = id_bucket(s->l, s->id);

	s->prev = NULL;
	s->next = t->streams;
	if (t->streams != NULL)
		t->streams->prev = s;
	t->streams = s;
	s->knext = t->by_key[k];
	t->by_key[k] = s;
	s->inext = t->by_id[i];
	t->by_id[i] = s;
	s->l->nstreams++;
}

static void
stream_free(struct ag_stream *s)
{
	struct ag_tunnel *t = s->l->t;
	struct ag_stream **pp;

	if (s->prev != NULL)
		s->prev->next = s->next;
	else
		t->streams = s->next;
	if (s->next != NULL)
		s->next->prev = s->prev;
	for (pp = &t->by_key[key_bucket(s->key)]; *pp != NULL;
	    pp = &(*pp)->knext)
		if (*pp == s) {
			*pp = s->knext;
			break;
		}
	for (pp = &t->by_id[id_bucket(s->l, s->id)]; *pp != NULL;
	    pp = &(*pp)->inext)
		if (*pp == s) {
			*pp = s->inext;
			break;
		}
	s->l->nstreams--;
	if (s->capped)
		ag_caps_release(&s->l->t->caps, s->ci);
	if (s->sse_mode)
		sse_free(&s->sse);
	outq_clear(&s->hold);
	if (s->evs_mode)
		evs_free(&s->evs);
	ag_ws_close(s->ws);		/* a Realtime session's provider side */
	outq_clear(&s->rt_hold);
	free(s->body);
	free(s->sniff);
	free(s);
}

static void
stream_end(struct ag_stream *s, int ok, const char *error)
{
	struct frame_enc e;
	int n = 1 + (error != NULL) + (s->usage.seen ? 3 : 0);

	frame_enc_begin(&e, FRAME_RESP_END, s->id, (size_t)n);
	frame_enc_bool(&e, "ok", ok);
	if (error != NULL)
		frame_enc_cstr(&e, "error", error);
	if (s->usage.seen) {
		frame_enc_u64(&e, "input_tokens", (uint64_t)s->usage.input_tokens);
		frame_enc_u64(&e, "output_tokens", (uint64_t)s->usage.output_tokens);
		frame_enc_u64(&e, "cached_tokens", (uint64_t)s->usage.cached_tokens);
	}
	link_send(s->l, &e);
}

/*
 * Send up to len bytes of s's response data as resp_chunk frames, as far
 * as the window allows; returns how many went.  Bytes the link refuses
 * are dropped (logged by link_send) and count as sent.
 */
static size_t
send_data(struct ag_stream *s, const unsigned char *p, size_t len)
{
	struct frame_enc e;
	size_t off = 0, n;

	while (off < len) {
		n = len - off < AG_PIECE ? len - off : AG_PIECE;
#if SWB_TEST_BUILD
		if (s->l->t->test_mode == AG_TEST_GREEDY)
			ag_up_credit(s->l->t->up, s->key, n);	/* never pause */
		else
#endif
		{
			if (n > s->win.avail)
				n = s->win.avail;
			if (n == 0)
				break;
			(void)frame_window_spend(&s->win, n);
		}
		frame_enc_begin(&e, FRAME_RESP_CHUNK, s->id, 1);
		frame_enc_bin(&e, "data", p + off, n);
		if (link_send(s->l, &e) == 0) {
			/* Sent (for the engine's total) once on the wire. */
			s->l->out.tail->tag = s->key;
			s->l->out.tail->credit = n;
		} else
			ag_up_sent(s->l->t->up, s->key, n);
		off += n;
	}
	return off;
}

/* Send what the window now allows of the held data; a stream whose END
 * came meanwhile ends once all of it went.  0, or -1 when s was freed. */
static int
stream_pump(struct ag_stream *s)
{
	struct outq_item *o;
	size_t n;

	while ((o = s->hold.head) != NULL) {
		n = send_data(s, o->data, o->len);
		outq_consume(&s->hold, n);
		if (n == 0 || s->hold.head == o)
			break;
	}
	if (s->hold.head == NULL && s->ended) {
		stream_end(s, s->end_ok, s->end_ok ? NULL : s->end_error);
		stream_free(s);
		return -1;
	}
	return 0;
}

/* Upstream data for s: what the window allows goes now, the rest waits. */
static void
stream_data(struct ag_stream *s, const unsigned char *p, size_t len)
{
	size_t n = s->hold.head == NULL ? send_data(s, p, len) : 0;

	if (n < len && outq_push(&s->hold, 0, p + n, len - n, NULL, 0) == NULL) {
		log_warn("agent %llu: stream %u: out of memory; %zu bytes lost",
		    (unsigned long long)s->l->agent_id, s->id, len - n);
		ag_up_sent(s->l->t->up, s->key, len - n);
	}
}

/* The link went away: its upstream calls are aborted. */
static void
streams_drop(struct ag_link *l)
{
	struct ag_stream *s = l->t->streams, *next;

	for (; s != NULL; s = next) {
		next = s->next;
		if (s->l != l)
			continue;
		if (s->started && s->op != OP_REALTIME)
			ag_up_cancel(l->t->up, s->key);
		stream_record(s);	/* after a 2xx head: served, cut */
		stream_free(s);
	}
}

/* Answer s with status and a JSON body of its own, and end it. */
static void
answer_error(struct ag_stream *s, int status, const char *body, size_t n)
{
	struct frame_enc e;

	frame_enc_begin(&e, FRAME_RESP_HEAD, s->id, 2);
	frame_enc_u64(&e, "status", (uint64_t)status);
	frame_enc_cstr(&e, "content_type", "application/json");
	link_send(s->l, &e);
	(void)frame_window_spend(&s->win, n);	/* a fresh window */
	frame_enc_begin(&e, FRAME_RESP_CHUNK, s->id, 1);
	frame_enc_bin(&e, "data", body, n);
	link_send(s->l, &e);
	stream_end(s, 1, NULL);
	stream_free(s);
}

/*
 * The channel's own limits (ag_bucket): with an empty bucket the stream is
 * answered 429 here, in OpenAI's shape, and the provider is not called.
 */
static int
bucket_refuses(struct ag_stream *s, const struct ag_channel *ch)
{
	struct ag_bucket *b = &s->l->t->buckets[ch - s->l->t->cf->channels];
	int64_t retry = 0;
	enum ag_bucket_result why;
	char body[400];
	int n;

	why = ag_bucket_take(b, s->input_est, clock_mono_ms(), &retry);
	if (why == AG_BUCKET_OK)
		return 0;
	log_warn("agent %llu: stream %u: channel %s is at its %s limit "
	    "(%lld per minute): answering 429", (unsigned long long)s->l->agent_id,
	    s->id, ch->name, why == AG_BUCKET_REQUESTS ? "rpm" : "tpm",
	    (long long)(why == AG_BUCKET_REQUESTS ? ch->rpm : ch->tpm));
	n = snprintf(body, sizeof(body), "{\"error\":{\"message\":\"Rate limit "
	    "reached for %s per minute on this agent's channel %s: limit %lld. "
	    "Please try again in %llds.\",\"type\":\"%s\",\"param\":null,"
	    "\"code\":\"rate_limit_exceeded\"}}",
	    why == AG_BUCKET_REQUESTS ? "requests" : "tokens", ch->name,
	    (long long)(why == AG_BUCKET_REQUESTS ? ch->rpm : ch->tpm),
	    (long long)retry, why == AG_BUCKET_REQUESTS ? "requests" : "tokens");
	answer_error(s, 429, body, n > 0 && (size_t)n < sizeof(body) ?
	    (size_t)n : 0);
	return 1;
}

/*
 * The owner's caps (agent/ag_caps): a request beyond one is answered here
 * with an OpenAI-shaped error the hub passes through to the user, and the
 * provider is not called.
 */
static int
caps_refuses(struct ag_stream *s, const struct ag_channel *ch)
{
	static const struct {
		int status;
		const char *type, *code;
	} how[] = {
		[AG_CAPS_CONCURRENCY] = { 429, "requests", "rate_limit_exceeded" },
		[AG_CAPS_TOKENS] = { 400, "invalid_request_error",
		    "max_tokens_per_request" },
		[AG_CAPS_BUDGET] = { 429, "insufficient_quota",
		    "insufficient_quota" },
	};
	struct ag_tunnel *t = s->l->t;
	enum ag_caps_result why;
	char msg[320], body[512];
	json_t *o;
	char *txt;

	s->ci = (int)(ch - t->cf->channels);
	why = ag_caps_admit(&t->caps, s->ci, s->model[0] != '\0' ? s->model :
	    s->up_model, s->input_est, s->max_out, clock_wall_ms(), msg,
	    sizeof(msg));
	if (why == AG_CAPS_OK) {
		s->capped = 1;
		return 0;
	}
	log_warn("agent %llu: stream %u refused by a cap: %s",
	    (unsigned long long)s->l->agent_id, s->id, msg);
	o = json_pack("{s:{s:s,s:s,s:n,s:s}}", "error", "message", msg, "type",
	    how[why].type, "param", "code", how[why].code);
	txt = o != NULL ? json_dumps(o, JSON_COMPACT) : NULL;
	snprintf(body, sizeof(body), "%s", txt != NULL ? txt : "{}");
	free(txt);
	json_decref(o);
	answer_error(s, how[why].status, body, strlen(body));
	return 1;
}

/* ---- Realtime sessions (op realtime; agent/ag_ws, lib/frame.h ws_msg) --- */

/* Provider messages go as ws_msg frames while the window allows; past it
 * they wait in rt_hold (credit sends them on), at most AG_WS_HOLD_MAX
 * bytes: a user who reads slower than the provider speaks for that long
 * loses the session (rt_msg).  The provider is not paused: lws 4.1's rx
 * flow control on a client WebSocket stalled the whole loop here. */
static void
rt_pump(struct ag_stream *s)
{
	struct outq_item *o;
	struct frame_enc e;

	while ((o = s->rt_hold.head) != NULL && o->len <= s->win.avail) {
		(void)frame_window_spend(&s->win, o->len);
		frame_enc_begin(&e, FRAME_WS_MSG, s->id, 2);
		frame_enc_bin(&e, "data", o->data, o->len);
		frame_enc_bool(&e, "text", o->tag != 0);
		link_send(s->l, &e);
		s->rt_held -= o->len;
		outq_pop(&s->rt_hold);
	}
}

static void
rt_open(void *arg)
{
	struct ag_stream *s = arg;
	struct frame_enc e;

	s->status = 101;
	frame_enc_begin(&e, FRAME_RESP_HEAD, s->id, 2);
	frame_enc_u64(&e, "status", 101);
	frame_enc_cstr(&e, "content_type", "");
	link_send(s->l, &e);
}

/* Each response.done with usage is one served response in the ledger,
 * named as the hub names its charge (ipc_response_charge). */
static void
rt_record(struct ag_stream *s, const struct usage *u)
{
	struct ag_served sv;
	uint64_t nonce, reqid;

	s->rt_responses++;
	if (s->request_id[0] == '\0' || ipc_response_charge(s->request_id,
	    s->rt_responses, &nonce, &reqid) != 0)
		return;
	memset(&sv, 0, sizeof(sv));
	ipc_charge_key(nonce, reqid, sv.request_id, sizeof(sv.request_id));
	sv.agent_id = s->l->agent_id;
	if (ag_ledger_text_ok(s->up_model, strlen(s->up_model),
	    LEDGER_MODEL_MAX))
		snprintf(sv.model, sizeof(sv.model), "%s", s->up_model);
	sv.input_tokens = u->input_tokens;
	sv.output_tokens = u->output_tokens;
	sv.cached_tokens = u->cached_tokens;
	sv.cache_write_tokens = u->cache_write_tokens;
	sv.created_at = clock_wall_ms();
	if (ag_ledger_served_record(s->l->t->lg, &sv) == -1)
		log_warn("agent %llu: realtime response %s served but not "
		    "recorded: %s", (unsigned long long)s->l->agent_id,
		    sv.request_id, ag_ledger_error(s->l->t->lg));
}

static void
rt_msg(void *arg, const unsigned char *p, size_t len, int text)
{
	struct ag_stream *s = arg;
	struct outq_item *o;
	struct usage u;

	memset(&u, 0, sizeof(u));
	if (text && usage_realtime_event(&u, (const char *)p, len) == 1)
		rt_record(s, &u);
	if (s->rt_held + len > AG_WS_HOLD_MAX) {
		log_warn("agent %llu: stream %u: the user reads slower than the "
		    "provider sends (%zu bytes held): ending the session",
		    (unsigned long long)s->l->agent_id, s->id, s->rt_held);
		stream_end(s, 0, "the user does not read the session's messages");
		stream_free(s);		/* closes the provider's side */
		return;
	}
	if ((o = outq_push(&s->rt_hold, 0, p, len, NULL, 0)) == NULL) {
		log_warn("agent %llu: stream %u: out of memory; a realtime "
		    "message lost", (unsigned long long)s->l->agent_id, s->id);
		return;
	}
	o->tag = text != 0;
	s->rt_held += len;
	rt_pump(s);
}

static void
rt_closed(void *arg, int ok, const char *why)
{
	struct ag_stream *s = arg;

	s->ws = NULL;		/* ag_ws frees its side */
	log_info("agent %llu: stream %u: realtime session over: %s",
	    (unsigned long long)s->l->agent_id, s->id, why);
	rt_pump(s);		/* what the window takes goes before the end */
	stream_end(s, ok, ok ? NULL : why);
	stream_free(s);
}

static const struct ag_ws_cb rt_cb = { rt_open, rt_msg, rt_closed };

/* The hub's req_end of a Realtime session: open the provider's side. */
static int
rt_start(struct ag_stream *s, const struct ag_channel *ch, char *err,
    size_t errlen)
{
	s->ws = ag_ws_open(s->l->t->ctx, s->l->t->cf, ch, s->path, &rt_cb, s,
	    err, errlen);
	return s->ws != NULL ? 0 : -1;
}

/* A user message for the provider; past the agent's bound the session
 * ends (the provider does not read as fast as the user sends). */
static void
rt_user_msg(struct ag_stream *s, const struct frame *f)
{
	const unsigned char *data;
	size_t len;
	bool text = false;

	if (s->ws == NULL)
		return;
	frame_get_bin(f, "data", &data, &len);
	frame_get_bool(f, "text", &text);
	if (ag_ws_send(s->ws, data, len, text) != 0) {
		stream_end(s, 0, "the provider does not take the session's "
		    "messages fast enough");
		stream_free(s);
	}
}

/* What the hub asked for in req_start, for the adapter. */
static void
stream_op(const struct ag_stream *s, struct ag_prov_op *rq)
{
	rq->op = s->op;
	rq->model = s->up_model;
	rq->stream = s->stream_flag;
	rq->resource = s->resource;
	rq->anthropic_version = s->anthropic_version;
	rq->anthropic_beta = s->anthropic_beta;
}

/*
 * The adapter turns the hub's operation into s->method and s->path; done
 * again by ag_up_start_op(), checked here first so that a refused
 * operation costs no bucket token.
 */
static int
op_path(struct ag_stream *s, const struct ag_channel *ch, char *err,
    size_t errlen)
{
	const struct ag_prov *p = ag_prov_find(ch->provider);
	struct ag_prov_op rq;

	stream_op(s, &rq);

	if (p == NULL || p->op_path == NULL) {
		snprintf(err, errlen, "provider %s: no adapter yet",
		    ag_provider_name(ch->provider));
		return -1;
	}
	if (s->op < 0) {
		snprintf(err, errlen, "unknown operation");
		return -1;
	}
	return p->op_path(s->method, sizeof(s->method), s->path,
	    sizeof(s->path), ch, &rq, err, errlen);
}

static int
on_req(struct ag_link *l, const struct frame *f)
{
	struct ag_stream *s;
	const char *str;
	const unsigned char *data;
	size_t len, n = 0;
	char err[200];
	const struct ag_channel *ch;
	struct ag_prov_op rq;

	switch (f->type) {
	case FRAME_REQ_START:
		if (stream_by_id(l, f->stream_id) != NULL)
			return -1;	/* the hub reused a live id */
		n = l->nstreams;
		s = calloc(1, sizeof(*s));
		if (s == NULL)
			return -1;
		s->l = l;
		s->id = f->stream_id;
		s->ci = -1;
		s->key = ++l->t->next_key;
		frame_window_init(&s->win);
		frame_get_str(f, "channel", &str, &len);
		snprintf(s->channel, sizeof(s->channel), "%.*s", (int)len, str);
		frame_get_str(f, "op", &str, &len);
		s->op = prov_op_parse(str, len);
		frame_get_str(f, "model", &str, &len);
		snprintf(s->up_model, sizeof(s->up_model), "%.*s", (int)len, str);
		{
			bool b = false;
			(void)frame_get_bool(f, "stream", &b);
			s->stream_flag = b;
		}
		if (frame_get_str(f, "resource", &str, &len) == 0)
			snprintf(s->resource, sizeof(s->resource), "%.*s",
			    (int)len, str);
		if (frame_get_str(f, "anthropic_version", &str, &len) == 0)
			snprintf(s->anthropic_version,
			    sizeof(s->anthropic_version), "%.*s", (int)len, str);
		if (frame_get_str(f, "anthropic_beta", &str, &len) == 0)
			snprintf(s->anthropic_beta, sizeof(s->anthropic_beta),
			    "%.*s", (int)len, str);
		frame_get_str(f, "content_type", &str, &len);
		snprintf(s->ctype, sizeof(s->ctype), "%.*s", (int)len, str);
		if (frame_get_str(f, "request_id", &str, &len) == 0) {
			if (ag_ledger_text_ok(str, len, LEDGER_REQID_MAX))
				memcpy(s->request_id, str, len + 1);
			else
				log_warn("agent %llu: stream %u: unusable "
				    "request_id (%zu bytes): not recorded",
				    (unsigned long long)l->agent_id, s->id, len);
		}
		stream_add(s);
		if (n >= AG_STREAMS_MAX) {
			stream_end(s, 0, "agent busy: too many streams");
			stream_free(s);
		}
		return 0;
	case FRAME_REQ_BODY:
		s = stream_by_id(l, f->stream_id);
		if (s == NULL || s->started)
			return 0;
		frame_get_bin(f, "data", &data, &len);
		if (s->body_len + len > AG_UP_BODY_MAX) {
			stream_end(s, 0, "request body too large for the agent");
			stream_free(s);
			return 0;
		}
		{
			unsigned char *nb = realloc(s->body, s->body_len + len + 1);
			if (nb == NULL)
				return -1;
			s->body = nb;
			memcpy(s->body + s->body_len, data, len);
			s->body_len += len;
		}
		return 0;
	case FRAME_REQ_END:
		s = stream_by_id(l, f->stream_id);
		if (s == NULL || s->started)
			return 0;
		ch = ag_conf_channel(l->t->cf, s->channel);
		if (ch == NULL) {
			snprintf(err, sizeof(err), "no channel '%s' on this agent",
			    s->channel);
			stream_end(s, 0, err);
			stream_free(s);
			return 0;
		}
		if (op_path(s, ch, err, sizeof(err)) != 0) {
			log_warn("agent %llu: stream %u refused: %s",
			    (unsigned long long)l->agent_id, s->id, err);
			stream_end(s, 0, err);
			stream_free(s);
			return 0;
		}
		stream_prepare(s);
		if (caps_refuses(s, ch) || bucket_refuses(s, ch))
			return 0;
		if (s->op == OP_REALTIME) {
			if (rt_start(s, ch, err, sizeof(err)) != 0) {
				log_warn("agent %llu: stream %u refused: %s",
				    (unsigned long long)l->agent_id, s->id, err);
				stream_end(s, 0, err);
				stream_free(s);
				return 0;
			}
			s->started = 1;
			return 0;
		}
		stream_op(s, &rq);
		ag_metrics_request(&l->t->metrics, s->ci, s->input_est,
		    clock_wall_ms());
		s->started_ms = clock_mono_ms();
		if (ag_up_start_op(l->t->up, s->key, ch, &rq, s->ctype, s->body,
		    s->body_len, err, sizeof(err)) != 0) {
			ag_metrics_error(&l->t->metrics, s->ci, clock_wall_ms());
			log_warn("agent %llu: stream %u refused: %s",
			    (unsigned long long)l->agent_id, s->id, err);
			stream_end(s, 0, err);
			stream_free(s);
			return 0;
		}
		s->started = 1;
		free(s->body);
		s->body = NULL;
		s->body_len = 0;
		return 0;
	case FRAME_CREDIT: {
		uint64_t v = 0;
		s = stream_by_id(l, f->stream_id);
		if (s == NULL)
			return 0;	/* ended meanwhile: late credit is normal */
		frame_get_u64(f, "bytes", &v);
		if (frame_window_grant(&s->win, v) != 0)
			log_warn("agent %llu: stream %u: the hub credited %llu "
			    "bytes beyond the window; clamped",
			    (unsigned long long)l->agent_id, s->id,
			    (unsigned long long)v);
		if (s->op == OP_REALTIME) {
			rt_pump(s);
			return 0;
		}
		ag_up_credit(l->t->up, s->key, v > SIZE_MAX ? SIZE_MAX : (size_t)v);
		(void)stream_pump(s);
		return 0;
	}
	case FRAME_WS_MSG:
		s = stream_by_id(l, f->stream_id);
		if (s != NULL && s->op == OP_REALTIME)
			rt_user_msg(s, f);
		return 0;
	case FRAME_CANCEL:
		s = stream_by_id(l, f->stream_id);
		if (s == NULL)
			return 0;
		log_info("agent %llu: stream %u cancelled by the hub",
		    (unsigned long long)l->agent_id, s->id);
		if (s->started && s->op != OP_REALTIME)
			ag_up_cancel(l->t->up, s->key);
		stream_record(s);	/* the user went away after a 2xx head */
		stream_free(s);
		return 0;
	default:
		return -1;
	}
}

/* The response's dialect is the operation's (lib/prov.h). */
static enum prov_dialect
stream_dialect(const struct ag_stream *s)
{
	const struct prov_op_info *oi = prov_op(s->op);

	return oi != NULL ? oi->dialect : DIA_OPENAI;
}

static void
sniff_usage(struct ag_stream *s, const unsigned char *p, size_t len)
{
	struct sse_event ev;

	if (s->sse_mode) {
		if (sse_feed(&s->sse, p, len) != 0)
			return;
		while (sse_next(&s->sse, &ev) == 1)
			(void)usage_read_event(stream_dialect(s), &s->usage,
			    ev.event, ev.data, ev.data_len);
		return;
	}
	if (s->evs_mode) {
		struct evs_msg m;

		if (evs_feed(&s->evs, p, len) != 0)
			return;
		while (evs_next(&s->evs, &m) == 1)
			(void)usage_read_evs(stream_dialect(s), &s->usage, &m);
		return;
	}
	if (s->sniff_len + len > AG_BODY_SNIFF)
		return;
	{
		unsigned char *nb = realloc(s->sniff, s->sniff_len + len);
		if (nb == NULL)
			return;
		s->sniff = nb;
		memcpy(s->sniff + s->sniff_len, p, len);
		s->sniff_len += len;
	}
}

/* A non-SSE answer is read for usage once it is all there (or cut). */
static void
sniff_finish(struct ag_stream *s)
{
	if (s->sniffed)
		return;
	s->sniffed = 1;
	if (!s->sse_mode && !s->evs_mode && s->sniff_len > 0)
		(void)usage_read_body(stream_dialect(s), &s->usage,
		    (const char *)s->sniff, s->sniff_len);
	if (s->speech.seen && s->status >= 200 && s->status < 300) {
		s->usage.audio_chars = s->speech.audio_chars;
		s->usage.seen = 1;
	}
}

/*
 * The request body is complete and about to go upstream (it is freed
 * then): the pre-call estimate (lib/tokest, the same number the hub
 * computes from the bytes it sent) and the model the body names.
 */
static void
stream_prepare(struct ag_stream *s)
{
	/* Three members of the body, read in place: no tree built. */
	struct jscan_v root = { NULL, 0 }, m;
	char model[LEDGER_MODEL_MAX + 2];	/* one more: too long shows */

	if (s->body == NULL || s->body_len == 0 || jscan_check((const char *)
	    s->body, s->body_len, &root) != 0)
		root.p = NULL, root.n = 0;
	s->input_est = tokest_scan(s->body_len, root);	/* = tokest_body */
	s->prompt_est = tokest_prompt(s->body_len);
	if (s->op == OP_AUDIO_SPEECH && s->body != NULL)
		(void)usage_speech_request(&s->speech, (const char *)s->body,
		    s->body_len);
	s->max_out = ag_caps_max_out(root);
	m = jscan_get(root, "model");
	if (jscan_type(m) == JS_STRING) {
		/* Read as a C string, up to a first \u0000. */
		size_t k;

		(void)jscan_string_copy(m, model, sizeof(model));
		k = strlen(model);
		if (k < sizeof(s->model) &&
		    ag_ledger_text_ok(model, k, LEDGER_MODEL_MAX))
			memcpy(s->model, model, k + 1);
	}
}

/*
 * A stream is over (ended, cancelled by the hub, or dropped with its
 * link).  Served after a 2xx head and named by the hub: record its usage
 * in the ledger, estimated by THE rule for cut streams
 * (usage_estimate_cut) when the provider's never came.  Once per stream.
 */
static void
stream_record(struct ag_stream *s)
{
	struct ag_served sv;
	int r;

	if (s->recorded || s->request_id[0] == '\0' || s->status < 200 ||
	    s->status > 299)
		return;
	s->recorded = 1;
	sniff_finish(s);
	usage_estimate_cut(&s->usage, s->prompt_est);
	memset(&sv, 0, sizeof(sv));
	memcpy(sv.request_id, s->request_id, sizeof(sv.request_id));
	sv.agent_id = s->l->agent_id;
	memcpy(sv.model, s->model, sizeof(sv.model));
	sv.input_tokens = s->usage.input_tokens;
	sv.output_tokens = s->usage.output_tokens;
	sv.cached_tokens = s->usage.cached_tokens;
	sv.cache_write_tokens = s->usage.cache_write_tokens;
	sv.images = s->usage.images;
	sv.audio_seconds = s->usage.audio_seconds;
	sv.audio_chars = s->usage.audio_chars;
	sv.video_seconds = s->usage.video_seconds;
	sv.estimated = s->usage.estimated;
	sv.created_at = clock_wall_ms();
	ag_caps_spend(&s->l->t->caps, s->ci, ag_caps_cost(&s->l->t->caps,
	    s->ci, s->model[0] != '\0' ? s->model : s->up_model,
	    sv.input_tokens, sv.output_tokens, sv.cached_tokens,
	    sv.cache_write_tokens), sv.created_at);
	if ((r = ag_ledger_served_record(s->l->t->lg, &sv)) == -1)
		log_warn("agent %llu: request %s served but not recorded: %s",
		    (unsigned long long)s->l->agent_id, sv.request_id,
		    ag_ledger_error(s->l->t->lg));
	else
		log_debug("agent %llu: request %s served%s: in %lld out %lld "
		    "cached %lld%s", (unsigned long long)s->l->agent_id,
		    sv.request_id, r == 1 ? " (already recorded)" : "",
		    (long long)sv.input_tokens, (long long)sv.output_tokens,
		    (long long)sv.cached_tokens, sv.estimated ?
		    " (estimated: the stream was cut)" : "");
}

/* Upstream events, on the lws thread (after each run of the engine). */
static void
drain_upstream(void *arg)
{
	struct ag_tunnel *t = arg;
	struct ag_up_event ev;
	struct ag_stream *s;
	struct frame_enc e;

	while (ag_up_next_event(t->up, &ev) == 1) {
		s = stream_by_key(t, ev.key);
		if (s == NULL || s->l->state != LK_ONLINE) {
			ag_up_event_free(&ev);
			continue;
		}
		switch (ev.type) {
		case AG_UP_HEAD:
			s->status = ev.status;
			ag_metrics_latency(&t->metrics, s->ci, clock_mono_ms() -
			    s->started_ms, clock_wall_ms());
			if (ev.status >= 500 || ev.status == 429)
				ag_metrics_error(&t->metrics, s->ci,
				    clock_wall_ms());
			s->sse_mode = strncmp(ev.content_type, "text/event-stream", 17) == 0;
			if (s->sse_mode)
				sse_init(&s->sse, 0);
			s->evs_mode = strncmp(ev.content_type,
			    "application/vnd.amazon.eventstream", 34) == 0;
			if (s->evs_mode)
				evs_init(&s->evs, 0);
			frame_enc_begin(&e, FRAME_RESP_HEAD, s->id, 2);
			frame_enc_u64(&e, "status", (uint64_t)ev.status);
			frame_enc_cstr(&e, "content_type", ev.content_type);
			link_send(s->l, &e);
			break;
		case AG_UP_DATA:
			sniff_usage(s, ev.data, ev.len);
			stream_data(s, ev.data, ev.len);
			break;
		case AG_UP_END:
			sniff_finish(s);
			ag_metrics_tokens(&t->metrics, s->ci,
			    s->usage.output_tokens, clock_wall_ms());
			if (!ev.ok && s->status < 500 && s->status != 429)
				ag_metrics_error(&t->metrics, s->ci,
				    clock_wall_ms());
			stream_record(s);	/* 2xx, also when it failed later */
			s->ended = 1;
			s->end_ok = ev.ok;
			snprintf(s->end_error, sizeof(s->end_error), "%s",
			    ev.ok ? "" : ev.error);
			(void)stream_pump(s);	/* ends it, after held data */
			break;
		}
		ag_up_event_free(&ev);
	}
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
		link_send(l, &e);
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

/* ---- billing, all on stream 0 (lib/frame.h) ------------------------- */

/* sync: the end of this agent's chain; the hub replays what we lack. */
static void
send_sync(struct ag_link *l)
{
	struct ledger_entry h;
	struct frame_enc e;

	if (ag_ledger_head(l->t->lg, l->agent_id, &h) == -1) {
		log_error("agent %llu: cannot read the ledger's head: %s",
		    (unsigned long long)l->agent_id, ag_ledger_error(l->t->lg));
		return;
	}
	frame_enc_begin(&e, FRAME_SYNC, 0, 2);
	frame_enc_u64(&e, "last_seq", h.seq);
	frame_enc_cstr(&e, "last_hash", h.hash);
	if (link_send(l, &e) == 0)
		l->gap_head = h.seq;
}

/* welcome's ledger_key: learned once per agent id, never replaced. */
static void
learn_hub_key(struct ag_link *l, const struct frame *f)
{
	const unsigned char *pk;
	size_t len;
	int r;

	if (frame_get_bin(f, "ledger_key", &pk, &len) != 0 ||
	    len != LEDGER_PK_LEN) {
		log_warn("agent %llu: the hub's welcome carries no ledger key: "
		    "its receipts cannot be checked and will be refused",
		    (unsigned long long)l->agent_id);
		return;
	}
	r = ag_ledger_hub_key_set(l->t->lg, l->agent_id, pk);
	if (r == -1)
		log_error("agent %llu: cannot store the hub's ledger key: %s",
		    (unsigned long long)l->agent_id, ag_ledger_error(l->t->lg));
	else if (r == 1)
		log_error("agent %llu: the hub sent a ledger key other than the "
		    "one this agent learned first; refusing it: receipts signed "
		    "by it will be refused", (unsigned long long)l->agent_id);
}

static void
send_receipt_ack(struct ag_link *l, uint64_t seq, const char *hash,
    size_t hlen, const struct ag_receipt_result *r)
{
	struct frame_enc e;
	int with_reason = r->reason[0] != '\0';
	/* agent_amount: a dispute's, when the agent could price it; absent
	 * means it could not (-1 in its disputes table). */
	int with_amount = !r->ok && r->stored && r->agent_amount >= 0;

	frame_enc_begin(&e, FRAME_RECEIPT_ACK, 0,
	    (size_t)(4 + with_reason + with_amount));
	frame_enc_u64(&e, "seq", seq);
	frame_enc_str(&e, "hash", hash, hlen);
	frame_enc_bool(&e, "ok", r->ok);
	frame_enc_bool(&e, "stored", r->stored);
	if (with_reason)
		frame_enc_cstr(&e, "reason", r->reason);
	if (with_amount)
		frame_enc_u64(&e, "agent_amount", (uint64_t)r->agent_amount);
	link_send(l, &e);
}

/* Copy a str field of 1..max bytes (no NUL inside).  0 or -1. */
static int
get_text(const struct frame *f, const char *key, char *out, size_t max)
{
	const char *s;
	size_t len;

	if (frame_get_str(f, key, &s, &len) != 0 || len == 0 || len > max ||
	    memchr(s, '\0', len) != NULL)
		return -1;
	memcpy(out, s, len);
	out[len] = '\0';
	return 0;
}

/* A receipt frame as a ledger entry of this link's chain.  0, or -1
 * with the field at fault in why. */
static int
receipt_entry(struct ag_link *l, const struct frame *f, struct ledger_entry *e,
    char *why, size_t whylen)
{
	static const char *const keys[] = {
		"input_tokens", "output_tokens", "cached_tokens",
		"cache_write_tokens", "price_version", "amount", "created_at"
	};
	int64_t *const dst[] = {
		&e->input_tokens, &e->output_tokens, &e->cached_tokens,
		&e->cache_write_tokens, &e->price_version, &e->amount,
		&e->created_at
	};
	const unsigned char *sig = NULL;
	size_t len = 0;
	bool rep;
	const char *bad = NULL;

	memset(e, 0, sizeof(*e));
	e->agent_id = l->agent_id;
	/* Units that are not tokens: present only when not 0. */
	if (frame_get_i64(f, "images", &e->images) != 0)
		e->images = 0;
	if (frame_get_i64(f, "audio_seconds", &e->audio_seconds) != 0)
		e->audio_seconds = 0;
	if (frame_get_i64(f, "audio_chars", &e->audio_chars) != 0)
		e->audio_chars = 0;
	if (frame_get_i64(f, "video_seconds", &e->video_seconds) != 0)
		e->video_seconds = 0;
	if (frame_get_u64(f, "seq", &e->seq) != 0)
		bad = "seq";
	else if (get_text(f, "prev_hash", e->prev_hash, LEDGER_HEX_LEN) != 0)
		bad = "prev_hash";
	else if (get_text(f, "hash", e->hash, LEDGER_HEX_LEN) != 0)
		bad = "hash";
	else if (get_text(f, "request_id", e->request_id,
	    LEDGER_REQID_MAX) != 0)
		bad = "request_id";
	else if (frame_get_u64(f, "token_id", &e->token_id) != 0)
		bad = "token_id";
	else if (get_text(f, "model", e->model, LEDGER_MODEL_MAX) != 0)
		bad = "model";
	else if (frame_get_bool(f, "agent_reported", &rep) != 0)
		bad = "agent_reported";
	else if (frame_get_bin(f, "sig", &sig, &len) == 0 &&
	    len != LEDGER_SIG_LEN)
		bad = "sig";	/* absent: a batch's later entry signs it */
	for (size_t i = 0; bad == NULL && i < sizeof(keys) / sizeof(keys[0]);
	    i++)
		if (frame_get_i64(f, keys[i], dst[i]) != 0)
			bad = keys[i];
	if (bad != NULL) {
		snprintf(why, whylen, "bad %s", bad);
		return -1;
	}
	e->agent_reported = rep;
	if (sig != NULL && len == LEDGER_SIG_LEN)
		memcpy(e->sig, sig, LEDGER_SIG_LEN);
	return 0;
}

/*
 * The entries a signed receipt stored with it (its batch): the ack of the
 * last one acknowledges them all (the hub keeps the highest seq); each
 * dispute among them is acked on its own.
 */
static void
batch_acks(struct ag_link *l)
{
	const struct ledger_entry *es;
	const struct ag_receipt_result *rs;
	size_t n = ag_ledger_batch_done(l->t->lg, &es, &rs);

	for (size_t i = 0; i < n; i++) {
		if (rs[i].ok)
			continue;
		log_warn("agent %llu: dispute on receipt seq %llu for request "
		    "%s: %s", (unsigned long long)l->agent_id,
		    (unsigned long long)es[i].seq, es[i].request_id,
		    rs[i].reason);
		send_receipt_ack(l, es[i].seq, es[i].hash, LEDGER_HEX_LEN,
		    &rs[i]);
	}
}

static void receipt_failed(struct ag_link *l, uint64_t seq);
static void receipt_answer(struct ag_link *l, const struct ledger_entry *e,
    const struct ag_receipt_result *r, const char *hash, size_t hlen);

static void
on_receipt(struct ag_link *l, const struct frame *f)
{
	struct ag_receipt_result r;
	struct ledger_entry e;
	const char *hash = "";
	size_t hlen = 0;
	uint64_t seq = 0;

	memset(&r, 0, sizeof(r));
	(void)frame_get_u64(f, "seq", &seq);
	(void)frame_get_str(f, "hash", &hash, &hlen);
	if (receipt_entry(l, f, &e, r.reason, sizeof(r.reason)) != 0) {
		log_warn("agent %llu: receipt seq %llu refused: %s",
		    (unsigned long long)l->agent_id, (unsigned long long)seq,
		    r.reason);
		r.agent_amount = -1;
		send_receipt_ack(l, seq, hash, hlen, &r);
		return;
	}
	if (ag_ledger_receipt_apply(l->t->lg, &e, &r) != 0) {
		receipt_failed(l, seq);
		return;
	}
	receipt_answer(l, &e, &r, hash, hlen);
}

/* A receipt not applied (the database failed): no answer, the next sync
 * brings it again; when the failure took the open group of writes with
 * it, every link goes, as for a failed commit. */
static void
receipt_failed(struct ag_link *l, uint64_t seq)
{
	log_error("agent %llu: receipt seq %llu not applied: %s",
	    (unsigned long long)l->agent_id, (unsigned long long)seq,
	    ag_ledger_error(l->t->lg));
	if (ag_ledger_lost(l->t->lg))
		links_replay(l->t, "a signed batch's slice failed");
}

/* What a receipt (e, with the hash the hub sent) came to: logged, and
 * acked with its batch (none while pending or storing). */
static void
receipt_answer(struct ag_link *l, const struct ledger_entry *e,
    const struct ag_receipt_result *r, const char *hash, size_t hlen)
{
	uint64_t seq = e->seq;
	char hub[32], mine[32];

	money_format(e->amount, hub, sizeof(hub));
	if (r->verdict == AG_RCPT_STORED || r->verdict == AG_RCPT_DISPUTE ||
	    r->verdict == AG_RCPT_STORING)
		batch_acks(l);
	switch (r->verdict) {
	case AG_RCPT_PENDING:
		return;		/* acked with its batch's signed last entry */
	case AG_RCPT_STORING:
		/* The rest in the next turns (ledger_apply_one); this slice
		 * was this turn's share. */
		if (!l->storing)
			log_debug("agent %llu: receipt seq %llu closes a batch "
			    "longer than a slice: stored a slice a turn",
			    (unsigned long long)l->agent_id,
			    (unsigned long long)seq);
		l->storing = 1;
		l->t->ledger_budget = 0;
		if (lws_dll2_is_detached(&l->ledq_due))
			lws_dll2_add_tail(&l->ledq_due, &l->t->ledq_due);
		return;
	case AG_RCPT_GAP:
		if (l->gap_head == r->head_seq)
			return;		/* synced for this gap already */
		log_info("agent %llu: receipt seq %llu, but our chain ends at "
		    "%llu: syncing", (unsigned long long)l->agent_id,
		    (unsigned long long)seq, (unsigned long long)r->head_seq);
		send_sync(l);
		return;
	case AG_RCPT_STORED:
		if (!r->served)
			log_info("agent %llu: receipt seq %llu for request %s "
			    "(%s): no served record here (lost in a restart?); "
			    "the amount recomputes, accepted",
			    (unsigned long long)l->agent_id,
			    (unsigned long long)seq, e->request_id, hub);
		else
			log_debug("agent %llu: receipt seq %llu for request %s "
			    "(%s) stored", (unsigned long long)l->agent_id,
			    (unsigned long long)seq, e->request_id, hub);
		break;
	case AG_RCPT_DISPUTE:
		if (r->agent_amount >= 0)
			money_format(r->agent_amount, mine, sizeof(mine));
		else
			snprintf(mine, sizeof(mine), "unknown");
		log_warn("agent %llu: dispute on receipt seq %llu for request "
		    "%s: %s (hub %s, agent %s)", (unsigned long long)l->agent_id,
		    (unsigned long long)seq, e->request_id, r->reason, hub, mine);
		break;
	case AG_RCPT_REPLAY:
		log_debug("agent %llu: receipt seq %llu again (already stored)",
		    (unsigned long long)l->agent_id, (unsigned long long)seq);
		break;
	case AG_RCPT_CONFLICT:
	case AG_RCPT_REFUSED:
		log_warn("agent %llu: receipt seq %llu refused: %s",
		    (unsigned long long)l->agent_id, (unsigned long long)seq,
		    r->reason);
		break;
	case AG_RCPT_ERROR:
		return;
	}
	send_receipt_ack(l, seq, hash, hlen, r);
}

static void
on_price_update(struct ag_link *l, const struct frame *f)
{
	struct money_prices p;
	char model[LEDGER_MODEL_MAX + 1];
	int64_t version;
	int r;

	memset(&p, 0, sizeof(p));
	/* Unit prices: present only when not 0. */
	(void)frame_get_i64(f, "image", &p.image);
	(void)frame_get_i64(f, "audio_second", &p.audio_second);
	(void)frame_get_i64(f, "audio_char", &p.audio_char);
	(void)frame_get_i64(f, "video_second", &p.video_second);
	if (get_text(f, "model", model, LEDGER_MODEL_MAX) != 0 ||
	    frame_get_i64(f, "version", &version) != 0 ||
	    frame_get_i64(f, "input", &p.input) != 0 ||
	    frame_get_i64(f, "output", &p.output) != 0 ||
	    frame_get_i64(f, "cached_input", &p.cached_input) != 0 ||
	    frame_get_i64(f, "cache_write", &p.cache_write) != 0) {
		log_warn("agent %llu: malformed price_update ignored",
		    (unsigned long long)l->agent_id);
		return;
	}
	r = ag_ledger_price_put(l->t->lg, model, version, &p);
	if (r == 0)
		ag_caps_price(&l->t->caps, model, version, &p);
	if (r == 1)
		log_warn("agent %llu: the hub announced other prices for %s "
		    "version %lld; a version never changes: kept the first",
		    (unsigned long long)l->agent_id, model, (long long)version);
	else if (r == -1)
		log_warn("agent %llu: price of %s version %lld not stored: %s",
		    (unsigned long long)l->agent_id, model, (long long)version,
		    ag_ledger_error(l->t->lg));
}

/* The hub's operator resolved one of our disputes: note it, log it. */
static void
on_dispute_result(struct ag_link *l, const struct frame *f)
{
	char rid[LEDGER_REQID_MAX + 1], st[16], why[160];
	const char *p;
	size_t n;
	uint64_t seq;

	if (frame_get_u64(f, "seq", &seq) != 0 ||
	    get_text(f, "request_id", rid, LEDGER_REQID_MAX) != 0 ||
	    frame_get_str(f, "status", &p, &n) != 0 || n >= sizeof(st)) {
		log_warn("agent %llu: malformed dispute_result ignored",
		    (unsigned long long)l->agent_id);
		return;
	}
	memcpy(st, p, n + 1);
	frame_get_str(f, "reason", &p, &n);
	snprintf(why, sizeof(why), "%.*s", (int)n, p);
	for (char *c = why; *c; c++)
		if ((unsigned char)*c < 0x20 || (unsigned char)*c > 0x7e)
			*c = '?';
	if (ag_ledger_dispute_resolved(l->t->lg, l->agent_id, seq, st, why) != 0)
		log_warn("agent %llu: dispute of seq %llu: %s",
		    (unsigned long long)l->agent_id, (unsigned long long)seq,
		    ag_ledger_error(l->t->lg));
	else
		log_info("agent %llu: the hub %s our dispute of seq %llu (%s): %s",
		    (unsigned long long)l->agent_id, st, (unsigned long long)seq,
		    rid, why);
}

static void
on_usage_ack(struct ag_link *l, const struct frame *f)
{
	char rid[LEDGER_REQID_MAX + 1];
	const char *res;
	size_t len;

	if (get_text(f, "request_id", rid, LEDGER_REQID_MAX) != 0 ||
	    frame_get_str(f, "result", &res, &len) != 0) {
		log_warn("agent %llu: malformed usage_ack ignored",
		    (unsigned long long)l->agent_id);
		return;
	}
	if (strcmp(res, "retry") == 0) {
		log_debug("agent %llu: usage of request %s: the hub asks to "
		    "retry", (unsigned long long)l->agent_id, rid);
		return;
	}
	if (strcmp(res, "settled") != 0 && strcmp(res, "already") != 0 &&
	    strcmp(res, "ignored") != 0) {
		log_warn("agent %llu: usage of request %s: unknown result "
		    "'%.*s'", (unsigned long long)l->agent_id, rid,
		    (int)(len > 32 ? 32 : len), res);
		return;
	}
	if (strcmp(res, "ignored") == 0)
		log_info("agent %llu: usage of request %s: the hub ignored it "
		    "(not this agent's to settle)",
		    (unsigned long long)l->agent_id, rid);
	if (ag_ledger_served_mark(l->t->lg, l->agent_id, rid,
	    AG_SERVED_REPORTED) == -1)
		log_warn("agent %llu: request %s: %s",
		    (unsigned long long)l->agent_id, rid,
		    ag_ledger_error(l->t->lg));
}

/* The hub's sync: the end of its replay, with its head. */
static void
on_hub_sync(struct ag_link *l, const struct frame *f)
{
	struct ledger_entry h;
	uint64_t seq;
	bool fin = false;

	(void)frame_get_bool(f, "done", &fin);
	if (!fin || frame_get_u64(f, "last_seq", &seq) != 0)
		return;
	if (ag_ledger_head(l->t->lg, l->agent_id, &h) == -1) {
		log_warn("agent %llu: %s", (unsigned long long)l->agent_id,
		    ag_ledger_error(l->t->lg));
		return;
	}
	if (seq < h.seq)
		log_warn("agent %llu: the hub's ledger ends at seq %llu, ours "
		    "at %llu: the hub has lost entries this agent holds",
		    (unsigned long long)l->agent_id, (unsigned long long)seq,
		    (unsigned long long)h.seq);
	else if (seq > h.seq && h.seq > l->gap_head) {
		/* One answer replays a bounded number of entries: ask for
		 * the rest while each round makes progress. */
		log_info("agent %llu: hub at seq %llu, ours at %llu: syncing "
		    "on", (unsigned long long)l->agent_id,
		    (unsigned long long)seq, (unsigned long long)h.seq);
		send_sync(l);
	} else if (seq > h.seq)
		log_warn("agent %llu: the hub's ledger runs to seq %llu but ours "
		    "stays at %llu: its entries do not link here (see the "
		    "refusals above)", (unsigned long long)l->agent_id,
		    (unsigned long long)seq, (unsigned long long)h.seq);
	else
		log_info("agent %llu: ledger synced: hub at seq %llu, ours at "
		    "%llu", (unsigned long long)l->agent_id,
		    (unsigned long long)seq, (unsigned long long)h.seq);
}

static struct ag_link *
link_by_agent(struct ag_tunnel *t, uint64_t agent_id)
{
	for (int i = 0; i < t->nlinks; i++)
		if (t->links[i]->agent_id == agent_id)
			return t->links[i];
	return NULL;
}

/*
 * Usage reports: each served stream still open report_after after its
 * end (no receipt came), on an online link of its agent, again every
 * report_after (at least AG_REPORT_AGAIN_MIN) until the hub's usage_ack
 * settles it — a report lost with a restarting billing is sent again well
 * inside the hub's report_grace.
 */
static void
report_due(struct ag_tunnel *t)
{
	struct ag_served due[AG_REPORT_BATCH];
	struct frame_enc e;
	struct ag_link *l;
	int64_t now = clock_wall_ms();
	int n;

	n = ag_ledger_served_due(t->lg, now - t->cf->report_after,
	    now - (t->cf->report_after > AG_REPORT_AGAIN_MIN ?
	    t->cf->report_after : AG_REPORT_AGAIN_MIN), due, AG_REPORT_BATCH);
	if (n == -1) {
		log_warn("ledger: %s", ag_ledger_error(t->lg));
		return;
	}
	for (int i = 0; i < n; i++) {
		const struct ag_served *sv = &due[i];

		l = link_by_agent(t, sv->agent_id);
		if (l == NULL || l->state != LK_ONLINE || l->wsi == NULL)
			continue;
		frame_enc_begin(&e, FRAME_USAGE, 0, 7);
		frame_enc_cstr(&e, "request_id", sv->request_id);
		frame_enc_cstr(&e, "model", sv->model);
		frame_enc_u64(&e, "input_tokens", (uint64_t)sv->input_tokens);
		frame_enc_u64(&e, "output_tokens", (uint64_t)sv->output_tokens);
		frame_enc_u64(&e, "cached_tokens", (uint64_t)sv->cached_tokens);
		frame_enc_u64(&e, "cache_write_tokens",
		    (uint64_t)sv->cache_write_tokens);
		frame_enc_bool(&e, "estimated", sv->estimated != 0);
		if (link_send(l, &e) != 0)
			continue;
		log_info("agent %llu: no receipt for request %s yet: reporting "
		    "its usage (in %lld out %lld cached %lld%s)",
		    (unsigned long long)l->agent_id, sv->request_id,
		    (long long)sv->input_tokens, (long long)sv->output_tokens,
		    (long long)sv->cached_tokens, sv->estimated ?
		    ", estimated" : "");
		if (ag_ledger_served_sent(t->lg, sv->request_id, now) != 0)
			log_warn("ledger: %s", ag_ledger_error(t->lg));
	}
}

/* Its version and public address (lib/frame.h HELLO). */
static void
send_hello(struct ag_link *l)
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
	link_send(l, &e);
}

/* A probe ended: every online link tells its hub. */
static void
on_probe_done(void *arg, const char *ip)
{
	struct ag_tunnel *t = arg;

	if (ip == NULL)
		return;
	for (int i = 0; i < t->nlinks; i++)
		if (t->links[i]->state == LK_ONLINE)
			send_hello(t->links[i]);
}

/* The local page's /api/status (agent/ag_ui): links and channels. */
static json_t *
ui_status(void *arg)
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
static void
on_metrics_timer(lws_sorted_usec_list_t *sul)
{
	struct ag_tunnel *t = lws_container_of(sul, struct ag_tunnel,
	    sul_metrics);
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
			link_send(l, &e);
		}
	}
	lws_sul_schedule(t->ctx, 0, &t->sul_metrics, on_metrics_timer,
	    AG_METRICS_EVERY_MS * LWS_US_PER_MS);
}

static void
on_ledger_timer(lws_sorted_usec_list_t *sul)
{
	struct ag_tunnel *t = lws_container_of(sul, struct ag_tunnel,
	    sul_ledger);

	report_due(t);
	lws_sul_schedule(t->ctx, 0, &t->sul_ledger, on_ledger_timer,
	    AG_LEDGER_TICK * LWS_US_PER_MS);
}

/*
 * The ledger's writes are grouped (ag_ledger_group): committed
 * AG_LEDGER_FLUSH_MS after the first, so the writes of every request in
 * that window share one commit.  A commit that fails lost its writes:
 * every connection is dropped, and the sync of the next one replays the
 * hub's receipts from what is really stored.  30 ms rather than 10:
 * each commit writes the pages it dirtied once, so fewer commits write
 * fewer pages per request (agentd 6-36 % less CPU per request at c=1).
 */
#define AG_LEDGER_FLUSH_MS	30

/* The open group of ledger writes was lost (why): every link is dropped,
 * and the sync of the next one replays the hub's receipts from what is
 * really stored. */
static void
links_replay(struct ag_tunnel *t, const char *why)
{
	log_warn("ledger: %s (%s): reconnecting, so that the hub replays "
	    "what was lost", why, ag_ledger_error(t->lg));
	for (int i = 0; i < t->nlinks; i++)
		if (t->links[i]->wsi != NULL)
			lws_set_timeout(t->links[i]->wsi,
			    PENDING_TIMEOUT_KILLED_BY_PARENT, LWS_TO_KILL_ASYNC);
}

static void
on_flush_timer(struct ltimer *lt)
{
	struct ag_tunnel *t = lt->arg;

	if (ag_ledger_flush(t->lg) != 0)
		links_replay(t, "a grouped commit failed");
}

static void
ledger_armed(void *arg)
{
	struct ag_tunnel *t = arg;

	ltimer_arm(&t->flush, AG_LEDGER_FLUSH_MS * LWS_US_PER_MS);
}

static int
on_frame(struct ag_link *l, const struct frame *f)
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
		link_send(l, &e);
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
		learn_hub_key(l, f);
		send_channels(l);
		send_sync(l);
		{
			bool b = false;

			(void)frame_get_bool(f, "hello", &b);
			l->hub_hello = b;
			b = false;
			(void)frame_get_bool(f, "packed", &b);
			l->hub_packed = b;
		}
		send_hello(l);
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
		link_send(l, &e);
		return 0;
	case FRAME_PONG:
		return 0;
	case FRAME_ECHO:
		if (l->state != LK_ONLINE)
			break;
		frame_get_str(f, "text", &s, &len);
		frame_enc_begin(&e, FRAME_ECHO_REPLY, f->stream_id, 1);
		frame_enc_str(&e, "text", s, len);
		link_send(l, &e);
		return 0;
	case FRAME_REQ_START:
	case FRAME_REQ_BODY:
	case FRAME_REQ_END:
	case FRAME_CANCEL:
	case FRAME_CREDIT:
	case FRAME_WS_MSG:
		if (l->state != LK_ONLINE)
			break;
		return on_req(l, f);
	case FRAME_DISPUTE_RESULT:
		if (l->state == LK_ONLINE)
			on_dispute_result(l, f);
		return 0;
	case FRAME_RECEIPT:
	case FRAME_PRICE_UPDATE:
	case FRAME_USAGE_ACK:
	case FRAME_SYNC:
		if (l->state != LK_ONLINE)
			break;
		/* Bad input from the hub is logged; the link carries on. */
		if (f->type == FRAME_RECEIPT)
			on_receipt(l, f);
		else if (f->type == FRAME_PRICE_UPDATE)
			on_price_update(l, f);
		else if (f->type == FRAME_USAGE_ACK)
			on_usage_ack(l, f);
		else
			on_hub_sync(l, f);
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

/*
 * The hub's ledger frames (receipts, usage acks, syncs, prices, dispute
 * results) come in bursts: billing answers a whole group commit at once,
 * some 150 receipts every 30 ms at c=1, about 10 us of SQLite each.
 * Applied in the callback that read them, such a burst held the loop
 * and its CPU for 1-2 ms, and the requests and answers ready meanwhile
 * waited (most of the p99 at c=1).  So a turn of the loop applies at
 * most AG_LEDGER_SLICE of them; the rest wait, in arrival order, on
 * their link's ledq and are applied in the next turns, between the
 * other work (ag_tunnel_service).  Nothing else depends on them being
 * applied at once: their acks go out when they are, and a link that
 * closes drops what it held unacked (the next sync replays it).  A
 * backlog over AG_LEDGER_QUEUED bytes is applied at once: the hub cannot
 * make the queue grow without bound.  A signed receipt stores the batch
 * it closes AG_LEDGER_STORE_SLICE entries a turn (a batch is about 120
 * entries at c=1, 0.8-1.1 ms stored at once): that slice is its turn's
 * share, and the link's later frames wait until the batch is whole
 * (ledger_continue).
 */
#define AG_LEDGER_SLICE		8
#define AG_LEDGER_QUEUED	(4u * 1024 * 1024)

static int
ledger_frame(uint16_t type)
{
	return type == FRAME_RECEIPT || type == FRAME_PRICE_UPDATE ||
	    type == FRAME_USAGE_ACK || type == FRAME_SYNC ||
	    type == FRAME_DISPUTE_RESULT;
}

/*
 * The next slice of the batch l's signed receipt is storing: its acks,
 * and the signed entry's answer with the last slice.  The slice is this
 * turn's share of ledger work.
 */
static void
ledger_continue(struct ag_link *l)
{
	struct ag_receipt_result r;
	struct ledger_entry e;
	int k = ag_ledger_receipt_continue(l->t->lg, &e, &r);

	l->t->ledger_budget = 0;
	if (k == 0 && r.verdict == AG_RCPT_STORING) {
		batch_acks(l);
		return;
	}
	l->storing = 0;
	if (l->ledq.head == NULL)
		lws_dll2_remove(&l->ledq_due);
	if (k == 1)
		return;		/* finished by another call: the hub replays */
	if (k != 0) {
		receipt_failed(l, e.seq);
		return;
	}
	receipt_answer(l, &e, &r, e.hash, strlen(e.hash));
}

/* A batch l was storing, stored to its end now (its acks not sent: the
 * link is going; the next sync replays them). */
static void
ledger_finish(struct ag_link *l)
{
	struct ag_receipt_result r;
	struct ledger_entry e;
	int k;

	while (l->storing) {
		k = ag_ledger_receipt_continue(l->t->lg, &e, &r);
		if (k != 0 || r.verdict != AG_RCPT_STORING)
			l->storing = 0;
		if (k < 0)
			receipt_failed(l, e.seq);
	}
}

/* Apply l's first queued ledger frame, or the next slice of the batch it
 * is storing.  -1 when the frame was malformed (it was checked when it
 * came, so never) or broke the protocol.  The frame leaves the queue
 * first: whatever on_frame does to the link, the queue is whole and the
 * frame's bytes stay until it returns. */
static int
ledger_apply_one(struct ag_link *l)
{
	struct outq_item *o;
	struct frame f;
	char err[160];
	size_t used;
	int rc = -1;

	/* A batch being stored goes on before any later frame. */
	if (l->storing) {
		ledger_continue(l);
		return 0;
	}
	if ((o = outq_take(&l->ledq)) == NULL) {
		lws_dll2_remove(&l->ledq_due);
		return 0;
	}
	if (l->ledq.head == NULL)
		lws_dll2_remove(&l->ledq_due);
	if (frame_decode_next(o->data, o->len, &f, &used, err,
	    sizeof(err)) == 0) {
		rc = on_frame(l, &f);
		frame_free(&f);
	}
	free(o);
	return rc;
}

/* Apply up to budget queued ledger frames of every link, in turn.  Whether
 * some still wait. */
static int
ledger_drain(struct ag_tunnel *t)
{
	while (t->ledq_due.head != NULL && t->ledger_budget > 0) {
		struct ag_link *l = lws_container_of(t->ledq_due.head,
		    struct ag_link, ledq_due);

		/* Round robin: the link goes to the back of the line. */
		lws_dll2_remove(&l->ledq_due);
		lws_dll2_add_tail(&l->ledq_due, &t->ledq_due);
		t->ledger_budget--;
		if (ledger_apply_one(l) != 0) {
			/* It broke the protocol: the link ends, and what it
			 * held with it. */
			ledq_drop(l);
			if (l->wsi != NULL)
				lws_set_timeout(l->wsi,
				    PENDING_TIMEOUT_KILLED_BY_PARENT,
				    LWS_TO_KILL_ASYNC);
		}
	}
	return t->ledq_due.head != NULL;
}

/* f (its bytes p, len) is a ledger frame this turn cannot apply: queued
 * (1).  0: apply it now.  -1: a frame applied to make room broke the
 * protocol (the link ends). */
static int
ledger_defer(struct ag_link *l, const struct frame *f, const void *p,
    size_t len)
{
	struct ag_tunnel *t = l->t;

	if (!ledger_frame(f->type) || l->state != LK_ONLINE)
		return 0;
	if (l->ledq.head == NULL && !l->storing && t->ledger_budget > 0) {
		t->ledger_budget--;
		return 0;
	}
	if (l->ledq.bytes + len > AG_LEDGER_QUEUED)
		while (l->ledq.head != NULL || l->storing)
			if (ledger_apply_one(l) != 0)
				return -1;
	if (l->ledq.head == NULL && !l->storing)
		log_debug("agent %llu: ledger frames wait for the next turns of "
		    "the loop (more than %d in this one)",
		    (unsigned long long)l->agent_id, AG_LEDGER_SLICE);
	if (outq_push(&l->ledq, 0, p, len, NULL, 0) == NULL)
		return 0;	/* no memory: apply it now */
	if (lws_dll2_is_detached(&l->ledq_due))
		lws_dll2_add_tail(&l->ledq_due, &t->ledq_due);
	return 1;
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
		rc = ledger_defer(l, &f, p, used);
		if (rc == 0)
			rc = on_frame(l, &f);
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
		streams_drop(l);
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
			link_send(l, &e);
		}
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
	t->lg = ag_ledger_open(cf->state_dir, AG_LEDGER_CREATE, err, errlen);
	if (t->lg == NULL) {
		free(t);
		return NULL;
	}
	ag_caps_init(&t->caps, cf);
	t->probe.cf = cf;
	t->probe.done = on_probe_done;
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
	ag_uploop_init(&t->uploop, t->ctx, drain_upstream, t, &loop);
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
	    t) != 0 || ltimer_start(&t->flush, vh, on_flush_timer, t) != 0)) {
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
	ltimer_arm(&t->tick, 0);
	lws_sul_schedule(t->ctx, 0, &t->sul_ledger, on_ledger_timer,
	    AG_LEDGER_TICK * LWS_US_PER_MS);
	ag_ledger_group(t->lg, ledger_armed, t);
#if SWB_TEST_BUILD
	{
		const char *v = getenv("SWB_TEST_LEDGER_SLICE");

		if (v != NULL && atoi(v) > 0)
			ag_ledger_test_slice(t->lg, (size_t)atoi(v));
	}
#endif
	lws_sul_schedule(t->ctx, 0, &t->sul_metrics, on_metrics_timer,
	    AG_METRICS_EVERY_MS * LWS_US_PER_MS);
	{
		char why[300] = "";

		t->ui = ag_ui_start(t->ctx, cf, ui_status, t, why, sizeof(why));
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

	t->ledger_budget = AG_LEDGER_SLICE;
	more = ledger_drain(t);
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
	lws_sul_cancel(&t->sul_ledger);
	ltimer_stop(&t->flush);
	lws_sul_cancel(&t->sul_metrics);
	lws_sul_cancel(&t->sul_flush);
	ag_uploop_stop(&t->uploop);	/* first: no run after this */
	ag_up_free(t->up);
	while (t->streams != NULL) {
		stream_record(t->streams);	/* cut by the shutdown */
		stream_free(t->streams);
	}
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
