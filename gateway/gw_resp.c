/*
 * gateway/gw_resp: the answer of a relayed request, as the tunnel brings
 * it — usage read from the provider's native stream (the same readers
 * agentd uses), each SSE event written to the user the moment it arrives
 * (passed through, or translated into the user's dialect by xlate/, never
 * coalesced), retries on the next candidate before the first byte, and
 * how the relay ended.
 *
 * AWS event-stream answers (Bedrock's ConverseStream and
 * InvokeModelWithResponseStream, application/vnd.amazon.eventstream) are
 * decoded frame by frame with lib/evstream: usage is read from each
 * event (usage_read_evs, as agentd does); passed through, the bytes go to
 * the user unchanged as they come; translated, each frame is handed to
 * xl_stream_event with its :event-type (or :exception-type) as the name
 * and its JSON payload as the data.  A Bedrock-surface stream cut short
 * ends with an exception frame (valid CRCs) of its own.
 */
#include "gateway/gw.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>
#include "lib/ipc.h"
#include "lib/log.h"
#include "lib/str.h"
#include "xlate/xl.h"

#define GW_SNIFF_MAX (8u * 1024 * 1024)
#define GW_RETRY_DEADLINE_MS 30000	/* no new attempt after this */

void
gw_resp_reset(struct gw_req *r)
{
	if (r->sse_mode)
		sse_free(&r->sse);
	r->sse_mode = 0;
	if (r->evs_mode)
		evs_free(&r->evs);
	r->evs_mode = 0;
	r->errtype[0] = '\0';
	if (r->xs != NULL)
		xl_stream_free(r->xs);
	r->xs = NULL;
	free(r->sniff);
	r->sniff = NULL;
	r->sniff_len = 0;
	memset(&r->usage, 0, sizeof(r->usage));
}

#define EVS_CTYPE "application/vnd.amazon.eventstream"

/* The content type of a stream in the user's dialect. */
static const char *
stream_ctype(enum prov_dialect d)
{
	return d == DIA_CONVERSE || d == DIA_NATIVE ? EVS_CTYPE :
	    "text/event-stream";
}

/* Usage from one native event / body: the reader of the upstream
 * operation's dialect, the same one agentd applies.  1 when the event is
 * an OpenAI chunk of usage only (usage_openai_chunk's *only: the one
 * reading of the chunk answers both). */
static int
read_usage_event(struct gw_req *r, const struct sse_event *ev)
{
	enum prov_dialect d = prov_op(r->fwd_op)->dialect;
	int only = 0;

	if (d == DIA_OPENAI)
		(void)usage_openai_chunk(&r->usage, ev->data, ev->data_len,
		    &only);
	else
		(void)usage_read_event(d, &r->usage, ev->event, ev->data,
		    ev->data_len);
	return only;
}

static void
read_usage_body(struct gw_req *r, const char *p, size_t len)
{
	(void)usage_read_body(prov_op(r->fwd_op)->dialect, &r->usage, p, len);
}

/*
 * Try the next candidate channel, before anything reached the user.  The
 * attempt gets a new request id so late messages of the old one are
 * recognised and dropped.  0: sent; -1: no retry (the caller answers).
 */
static int
retry_next(struct gw_req *r, const char *why)
{
	uint64_t old = r->reqid;
	int rc;

	/* Bounded: at most RT_MAX_CANDIDATES attempts, none started after
	 * GW_RETRY_DEADLINE_MS since the request arrived. */
	if (r->head_queued || r->cur + 1 >= r->ncand ||
	    clock_mono_ms() - r->started_ms > GW_RETRY_DEADLINE_MS)
		return -1;
	r->cur++;
	gw_req_rekey(r, gw_new_reqid());
	memset(&r->agent_usage, 0, sizeof(r->agent_usage));
	log_rinfo(old, "%s; retrying on channel %s of agent %llu as req=%016llx",
	    why, r->cand[r->cur].channel,
	    (unsigned long long)r->cand[r->cur].agent_id,
	    (unsigned long long)r->reqid);
	rc = gw_stage_relay_attempt(r);
	if (rc == -2) {			/* refused (a 400 was queued) */
		gw_charge_settle(r);
		gw_resume(r, GW_STOP);
		return 0;
	}
	return rc;
}

void
gw_resp_head(struct gw_req *r, const struct ipc_relay_head *h)
{
	if (h->status >= 500 && r->cur + 1 < r->ncand) {
		/* An upstream failure before the first byte: the user never
		 * sees it if another channel can serve. */
		char why[64];
		gw_relay_cancel(r, 2);
		snprintf(why, sizeof(why), "upstream answered %d", h->status);
		if (retry_next(r, why) == 0)
			return;
	}
	r->status = h->status;
	str_copy(r->ctype, sizeof(r->ctype), h->content_type);
	r->sse_mode = h->status == 200 &&
	    strncmp(h->content_type, "text/event-stream", 17) == 0;
	r->evs_mode = h->status == 200 && strncmp(h->content_type,
	    EVS_CTYPE, sizeof(EVS_CTYPE) - 1) == 0;
	if (r->sse_mode)
		sse_init(&r->sse, 0);
	if (r->evs_mode)
		evs_init(&r->evs, 0);
	if ((r->sse_mode || r->evs_mode) && r->xlate) {
		r->xs = xl_stream_new(prov_op(r->op)->dialect, r->up_dialect,
		    r->model, r->user_usage);
		if (r->xs == NULL)
			log_rwarn(r->reqid, "out of memory for the stream's "
			    "translation");
	}
	/* A Bedrock user's error names its exception in a header, whether
	 * the body is passed through or translated. */
	if (h->status >= 400 && r->surface != NULL &&
	    r->surface->errtype != NULL)
		str_copy(r->errtype, sizeof(r->errtype),
		    r->surface->errtype((unsigned)h->status));
	/* A translated answer that is not a stream is rewritten whole at
	 * the end: its head waits for it. */
	if (r->xlate && !r->sse_mode && !r->evs_mode)
		return;
	gw_reply_head(r, (unsigned)h->status, r->xlate ?
	    stream_ctype(prov_op(r->op)->dialect) : h->content_type[0] ?
	    h->content_type : "application/json");
}

/* Where un (",\"usage\":null") stands in raw when it is the last member
 * of the event's JSON: raw ends with un, "}", then the line ends; NULL
 * otherwise. */
static const char *
usage_null_at_end(const char *raw, size_t n, const char *un, size_t unlen)
{
	while (n > 0 && (raw[n - 1] == '\n' || raw[n - 1] == '\r'))
		n--;
	if (n < unlen + 1 || raw[n - 1] != '}' ||
	    memcmp(raw + n - 1 - unlen, un, unlen) != 0)
		return NULL;
	return raw + n - 1 - unlen;
}

/* One event, passed through (OpenAI chat: the hub's usage chunk kept from
 * users who did not ask for it; only: read_usage_event found it one). */
static void
pass_event(struct gw_req *r, const struct sse_event *ev, int only)
{
	static const char un[] = ",\"usage\":null";

	if (r->fwd_op == OP_CHAT && !r->user_usage && ev->data != NULL) {
		const char *hit;
		if (only)
			return;		/* the hub's, not the user's */
		/* Asking for usage made upstream add "usage":null to every
		 * chunk; the user who did not ask gets chunks without it.
		 * OpenAI writes it as the chunk's last member: the event's
		 * end is looked at first, the whole event only if not. */
		hit = usage_null_at_end(ev->raw, ev->raw_len, un,
		    sizeof(un) - 1);
		if (hit == NULL)
			hit = memmem(ev->raw, ev->raw_len, un, sizeof(un) - 1);
		if (hit != NULL) {
			size_t pre = (size_t)(hit - ev->raw);
			gw_reply_data2(r, ev->raw, pre, hit + sizeof(un) - 1,
			    ev->raw_len - pre - (sizeof(un) - 1));
			return;
		}
	}
	gw_reply_data(r, ev->raw, ev->raw_len);
}

static void
xlate_event(struct gw_req *r, const struct sse_event *ev)
{
	struct xl_buf out = { NULL, 0, 0 };

	if (r->xs == NULL || ev->data == NULL)
		return;
	/* 1: the user's stream is complete (later events add nothing). */
	if (xl_stream_event(r->xs, ev->event, ev->data, ev->data_len, &out) < 0)
		log_rwarn(r->reqid, "upstream event could not be translated");
	if (out.len > 0)
		gw_reply_data(r, out.p, out.len);
	xl_buf_free(&out);
}

/* An event-stream answer: passed through as it comes, or translated
 * frame by frame; usage read from every frame either way. */
static void
evs_chunk(struct gw_req *r, const unsigned char *p, size_t len)
{
	struct evs_msg m;
	int rc;

	if (!r->xlate)
		gw_reply_data(r, p, len);
	if (evs_feed(&r->evs, p, len) != 0) {
		log_rwarn(r->reqid, "upstream stream: %s", evs_error(&r->evs));
		return;
	}
	while ((rc = evs_next(&r->evs, &m)) == 1) {
		struct xl_buf out = { NULL, 0, 0 };
		char name[128];
		const char *v;
		size_t n;

		(void)usage_read_evs(prov_op(r->fwd_op)->dialect, &r->usage, &m);
		if (!r->xlate || r->xs == NULL)
			continue;
		if ((v = evs_str(&m, ":event-type", &n)) == NULL &&
		    (v = evs_str(&m, ":exception-type", &n)) == NULL)
			continue;
		if (n >= sizeof(name))
			n = sizeof(name) - 1;
		memcpy(name, v, n);
		name[n] = '\0';
		if (xl_stream_event(r->xs, name, (const char *)m.payload,
		    m.payload_len, &out) < 0)
			log_rwarn(r->reqid, "upstream event could not be "
			    "translated");
		if (out.len > 0)
			gw_reply_data(r, out.p, out.len);
		xl_buf_free(&out);
	}
	if (rc < 0)
		log_rwarn(r->reqid, "upstream stream: %s", evs_error(&r->evs));
}

/* A Bedrock-surface stream that broke: an exception frame ends it. */
static void
evs_error_frame(struct gw_req *r, const char *msg)
{
	unsigned char buf[1024];
	json_t *o = json_pack("{s:s}", "message", msg);
	char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
	size_t n;

	if (s != NULL && (n = evs_encode_event(buf, sizeof(buf),
	    "internalServerException", 1, s, strlen(s))) > 0 &&
	    n <= sizeof(buf))
		gw_reply_data(r, buf, n);
	free(s);
	json_decref(o);
}

void
gw_resp_chunk(struct gw_req *r, const unsigned char *p, size_t len)
{
	struct sse_event ev;
	int rc;

	if (r->evs_mode) {
		evs_chunk(r, p, len);
		return;
	}
	if (!r->sse_mode) {
		/* Keep a JSON answer (bounded) to read its usage at the end;
		 * a translated one is only sent then.  Binary answers (audio,
		 * video) are only relayed. */
		if ((r->xlate || strstr(r->ctype, "json") != NULL ||
		    r->ctype[0] == '\0') && r->sniff_len + len <= GW_SNIFF_MAX) {
			unsigned char *nb = realloc(r->sniff, r->sniff_len + len);
			if (nb != NULL) {
				r->sniff = nb;
				memcpy(nb + r->sniff_len, p, len);
				r->sniff_len += len;
			}
		}
		if (!r->xlate)
			gw_reply_data(r, p, len);
		return;
	}
	if (sse_feed(&r->sse, p, len) != 0) {
		log_rwarn(r->reqid, "upstream stream: %s", sse_error(&r->sse));
		return;
	}
	while ((rc = sse_next(&r->sse, &ev)) == 1) {
		int only = ev.data != NULL && read_usage_event(r, &ev) == 1;

		if (r->xlate)
			xlate_event(r, &ev);
		else
			pass_event(r, &ev, only);
	}
	if (rc < 0)
		log_rwarn(r->reqid, "upstream stream: %s", sse_error(&r->sse));
}

/* A translated answer that was not a stream: rewritten whole. */
static void
xlate_whole(struct gw_req *r)
{
	struct xl_buf out = { NULL, 0, 0 };
	char err[256];
	const char *body = r->sniff ? (const char *)r->sniff : "";

	if (r->status >= 200 && r->status < 300) {
		if (xl_response(prov_op(r->op)->dialect, r->up_dialect, body,
		    r->sniff_len, r->model, &out, err, sizeof(err)) != 0) {
			xl_buf_free(&out);
			log_rwarn(r->reqid, "answer could not be translated: %s", err);
			gw_reply_error(r, 502, "hub_error", "upstream_error",
			    "The provider's answer could not be translated.");
			return;
		}
	} else
		xl_error(prov_op(r->op)->dialect, r->up_dialect, r->status, body,
		    r->sniff_len, &out);
	gw_reply_head(r, (unsigned)r->status, "application/json");
	gw_reply_data(r, out.p, out.len);
	xl_buf_free(&out);
}

/* The stream broke after its head: end it with an error event in the
 * user's dialect, never a hang. */
static void
stream_error_event(struct gw_req *r, const char *msg, int agent_lost)
{
	char ev[512];
	json_t *o;
	char *s;
	int n;

	if (r->xs != NULL) {
		struct xl_buf out = { NULL, 0, 0 };
		xl_stream_end(r->xs, 0, &out);
		if (out.len > 0)
			gw_reply_data(r, out.p, out.len);
		xl_buf_free(&out);
		return;
	}
	if (stream_ctype(prov_op(r->op)->dialect)[0] == 'a') {
		evs_error_frame(r, msg);
		return;
	}
	if (prov_op(r->op)->dialect == DIA_ANTHROPIC)
		o = json_pack("{s:s, s:{s:s, s:s}}", "type", "error", "error",
		    "type", "api_error", "message", msg);
	else
		o = json_pack("{s:{s:s, s:s, s:n, s:s}}", "error", "message", msg,
		    "type", "hub_error", "param", "code", agent_lost ?
		    "agent_lost" : "upstream_error");
	s = json_dumps(o, JSON_COMPACT);
	n = snprintf(ev, sizeof(ev), "%sdata: %s\n\n",
	    prov_op(r->op)->dialect == DIA_ANTHROPIC ? "event: error\n" : "",
	    s ? s : "{}");
	free(s);
	json_decref(o);
	if (n > 0 && (size_t)n < sizeof(ev))
		gw_reply_data(r, ev, (size_t)n);
}

void
gw_resp_end(struct gw_req *r, const struct ipc_relay_end *e)
{
	char msg[256];

	if (e->ok && !r->sse_mode && !r->evs_mode && r->sniff_len > 0 &&
	    r->status == 200)
		read_usage_body(r, (const char *)r->sniff, r->sniff_len);
	/* Speech is billed by the characters it was asked to say (the
	 * answer is audio): counted in the body sent, as agentd counts it. */
	if (e->ok && r->fwd_op == OP_AUDIO_SPEECH && r->status >= 200 &&
	    r->status < 300 && r->fwd != NULL) {
		struct usage sp;

		memset(&sp, 0, sizeof(sp));
		if (usage_speech_request(&sp, (const char *)r->fwd,
		    r->fwd_len) == 1) {
			r->usage.audio_chars = sp.audio_chars;
			r->usage.seen = 1;
		}
	}
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
		if (r->xlate && !r->sse_mode && !r->evs_mode)
			xlate_whole(r);
		else if (r->xs != NULL) {
			struct xl_buf out = { NULL, 0, 0 };
			xl_stream_end(r->xs, 1, &out);
			if (out.len > 0)
				gw_reply_data(r, out.p, out.len);
			xl_buf_free(&out);
		}
		gw_resume(r, GW_GO);	/* settle */
		return;
	}
	str_copy(msg, sizeof(msg), e->error[0] ? e->error : "upstream failed");
	log_rwarn(r->reqid, "relay failed%s: %s", r->head_queued ?
	    " mid-stream" : "", msg);
	if (!r->head_queued) {
		/* Nothing reached the user yet: the next candidate may serve
		 * (unless this one already answered). */
		if (r->status == 0 && retry_next(r, msg) == 0)
			return;
		gw_charge_settle(r);
		gw_reply_error(r, e->agent_lost ? 503 : 502, "hub_error",
		    e->agent_lost ? "agent_unavailable" : "upstream_error", msg);
		gw_resume(r, GW_STOP);
		return;
	}
	if (r->sse_mode || r->evs_mode)
		stream_error_event(r, msg, e->agent_lost);
	gw_resume(r, GW_GO);		/* settle */
}
