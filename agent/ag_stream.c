/*
 * agent/ag_stream: the requests the hub relays through this agent, one
 * stream each on a link: req_start/req_body/req_end in; the checks before
 * the provider is called (channel, operation, the owner's caps, the
 * channel's rpm/tpm bucket); the upstream engine's events out as
 * resp_head/resp_chunk/resp_end within the stream's window (what it does
 * not take is held until credit comes); cancels; Realtime sessions (the
 * provider's WebSocket, agent/ag_ws); the usage read off each answer, the
 * metrics counted (agent/ag_metrics), and each served stream's record in
 * the ledger when it ends, however it ends.  Owns struct ag_stream and
 * the tunnel's stream list and indexes.  lws thread only.
 */
#include "agent/ag_tunnel_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>
#include "agent/ag_bucket.h"
#include "agent/ag_caps.h"
#include "agent/ag_metrics.h"
#include "agent/ag_ledger.h"
#include "agent/ag_prov.h"
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
#include "lib/clock.h"

#define AG_STREAMS_MAX	16384		/* per link (>= 10,000 concurrent streams) */
#define AG_PIECE	(512u * 1024)	/* resp_chunk payload at most */
#define AG_BODY_SNIFF	(4u * 1024 * 1024)	/* non-SSE body kept for usage */

/* One relayed request: hub stream <-> upstream transfer.  Only this file
 * sees it, and writes it; lws thread only. */
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

static void stream_prepare(struct ag_stream *s);
static void stream_record(struct ag_stream *s);
static void served_write(struct ag_tunnel *t, const struct ag_served *sv);

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
	ag_tunnel_send(s->l, &e);
}

/* A request that cannot start (why): logged, ended with the error, freed. */
static void
stream_refuse(struct ag_stream *s, const char *why)
{
	log_warn("agent %llu: stream %u refused: %s",
	    (unsigned long long)s->l->agent_id, s->id, why);
	stream_end(s, 0, why);
	stream_free(s);
}

/*
 * Send up to len bytes of s's response data as resp_chunk frames, as far
 * as the window allows; returns how many went.  Bytes the link refuses
 * are dropped (logged by ag_tunnel_send) and count as sent.
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
		if (ag_tunnel_send(s->l, &e) == 0) {
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
void
ag_stream_drop_link(struct ag_link *l)
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
	ag_tunnel_send(s->l, &e);
	(void)frame_window_spend(&s->win, n);	/* a fresh window */
	frame_enc_begin(&e, FRAME_RESP_CHUNK, s->id, 1);
	frame_enc_bin(&e, "data", body, n);
	ag_tunnel_send(s->l, &e);
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
		ag_tunnel_send(s->l, &e);
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
	ag_tunnel_send(s->l, &e);
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

int
ag_stream_on_req(struct ag_link *l, const struct frame *f)
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
			stream_refuse(s, err);
			return 0;
		}
		stream_prepare(s);
		if (caps_refuses(s, ch) || bucket_refuses(s, ch))
			return 0;
		if (s->op == OP_REALTIME) {
			if (rt_start(s, ch, err, sizeof(err)) != 0) {
				stream_refuse(s, err);
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
			stream_refuse(s, err);
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
	/* The members of the body read here, in place and in the check's
	 * pass: the model, then the caps' output members (ag_caps.h's
	 * order), max_completion_tokens and max_tokens among them. */
	static const char *const keys[1 + AG_CAPS_OUT_KEYS] = {
		"model", "max_tokens", "max_completion_tokens",
		"max_output_tokens"
	};
	struct jscan_v root, v[1 + AG_CAPS_OUT_KEYS], m;
	char model[LEDGER_MODEL_MAX + 2];	/* one more: too long shows */

	if (s->body == NULL || s->body_len == 0 ||
	    jscan_check_getv((const char *)s->body, s->body_len, &root, keys,
	    1 + AG_CAPS_OUT_KEYS, v) != 0)
		memset(v, 0, sizeof(v));
	/* The number the hub's gateway makes of the bytes it sent. */
	s->input_est = tokest_budget(s->body_len, v[2], v[1]);
	s->prompt_est = tokest_prompt(s->body_len);
	if (s->op == OP_AUDIO_SPEECH && s->body != NULL)
		(void)usage_speech_request(&s->speech, (const char *)s->body,
		    s->body_len);
	s->max_out = ag_caps_max_out(&v[1]);
	m = v[0];
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
	struct ag_tunnel *t = s->l->t;
	struct ag_served sv, *q;
	size_t cap;

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
	ag_caps_spend(&t->caps, s->ci, ag_caps_cost(&t->caps,
	    s->ci, s->model[0] != '\0' ? s->model : s->up_model,
	    sv.input_tokens, sv.output_tokens, sv.cached_tokens,
	    sv.cache_write_tokens), sv.created_at);
	if (t->nserved_due == t->served_due_cap) {
		cap = t->served_due_cap ? t->served_due_cap * 2 : 16;
		if ((q = realloc(t->served_due, cap * sizeof(*q))) == NULL) {
			served_write(t, &sv);	/* now, then */
			return;
		}
		t->served_due = q;
		t->served_due_cap = cap;
	}
	t->served_due[t->nserved_due++] = sv;
	if (t->nserved_due == 1)
		ag_tunnel_flush_soon(t);
}

static void
served_write(struct ag_tunnel *t, const struct ag_served *sv)
{
	int r;

	if ((r = ag_ledger_served_record(t->lg, sv)) == -1)
		log_warn("agent %llu: request %s served but not recorded: %s",
		    (unsigned long long)sv->agent_id, sv->request_id,
		    ag_ledger_error(t->lg));
	else
		log_debug("agent %llu: request %s served%s: in %lld out %lld "
		    "cached %lld%s", (unsigned long long)sv->agent_id,
		    sv->request_id, r == 1 ? " (already recorded)" : "",
		    (long long)sv->input_tokens, (long long)sv->output_tokens,
		    (long long)sv->cached_tokens, sv->estimated ?
		    " (estimated: the stream was cut)" : "");
}

void
ag_stream_served_flush(struct ag_tunnel *t)
{
	for (size_t i = 0; i < t->nserved_due; i++)
		served_write(t, &t->served_due[i]);
	t->nserved_due = 0;
	/* A link lost with thousands of streams queued as many records at
	 * once: that much is not kept for the next turns. */
	if (t->served_due_cap > 64) {
		free(t->served_due);
		t->served_due = NULL;
		t->served_due_cap = 0;
	}
}

/* Upstream events, on the lws thread (after each run of the engine). */
void
ag_stream_drain_upstream(void *arg)
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
			ag_tunnel_send(s->l, &e);
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

/* Every stream at shutdown: recorded when served (cut by the shutdown),
 * then freed. */
void
ag_stream_free_all(struct ag_tunnel *t)
{
	while (t->streams != NULL) {
		stream_record(t->streams);	/* cut by the shutdown */
		stream_free(t->streams);
	}
	ag_stream_served_flush(t);
	free(t->served_due);
	t->served_due = NULL;
	t->served_due_cap = 0;
}
