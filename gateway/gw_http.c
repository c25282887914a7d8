/*
 * gateway/gw_http: the user-facing HTTP API of a gateway worker — routes,
 * authentication, body limits, and the response queue that writes every
 * piece to the user's socket as soon as it can.  Every error a user sees
 * is in OpenAI's error JSON shape.
 */
#include "gateway/gw.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <jansson.h>
#include "lib/hash.h"
#include "lib/log.h"
#include "lib/tokest.h"

static struct child_env *env_;
static uint64_t next_req;
struct gw_req *gw_live;
static int nlive;

enum route { R_NONE = 0, R_HEALTH, R_MODELS, R_CHAT };

void
gw_set_env(struct child_env *env)
{
	env_ = env;
}

struct child_env *
gw_env(void)
{
	return env_;
}

int
gw_inflight(void)
{
	return nlive;
}

uint64_t
gw_new_reqid(void)
{
	return ((uint64_t)getpid() << 32) | ++next_req;
}

struct gw_req *
gw_req_find(uint64_t reqid)
{
	for (struct gw_req *r = gw_live; r != NULL; r = r->next)
		if (r->reqid == reqid)
			return r;
	return NULL;
}

static void
live_add(struct gw_req *r)
{
	r->prev = NULL;
	r->next = gw_live;
	if (gw_live != NULL)
		gw_live->prev = r;
	gw_live = r;
	nlive++;
}

static void
req_reset(struct gw_req *r)
{
	if (r->reqid != 0)
		gw_charge_settle(r);	/* a user who left: what was read */
	if (r->reqid != 0) {
		if (r->prev != NULL)
			r->prev->next = r->next;
		else if (gw_live == r)
			gw_live = r->next;
		if (r->next != NULL)
			r->next->prev = r->prev;
		nlive--;
	}
	outq_clear(&r->out);
	free(r->body);
	free(r->fwd);
	free(r->sniff);
	if (r->sse_mode)
		sse_free(&r->sse);
	memset(r, 0, sizeof(*r));
}

/* ---- the response queue ---------------------------------------------- */

static void
queue(struct gw_req *r, const void *a, size_t alen, const void *b, size_t blen)
{
	if (outq_push(&r->out, LWS_PRE, a, alen, b, blen) == NULL)
		return;
	if (r->out.bytes > GW_OUT_HIGH)
		gw_relay_flow(r, 1);
	lws_callback_on_writable(r->wsi);
}

void
gw_reply_head(struct gw_req *r, unsigned status, const char *ctype)
{
	if (r->head_queued)
		return;
	r->status = (int)status;
	snprintf(r->ctype, sizeof(r->ctype), "%s", ctype);
	r->head_queued = 1;
	lws_callback_on_writable(r->wsi);
}

void
gw_reply_data(struct gw_req *r, const void *p, size_t len)
{
	if (len > 0)
		queue(r, p, len, NULL, 0);
}

void
gw_reply_data2(struct gw_req *r, const void *a, size_t alen, const void *b,
    size_t blen)
{
	if (alen + blen > 0)
		queue(r, a, alen, b, blen);
}

void
gw_reply_end(struct gw_req *r)
{
	r->final_queued = 1;
	r->state = GW_DONE;
	lws_callback_on_writable(r->wsi);
}

void
gw_reply_error(struct gw_req *r, unsigned status, const char *type,
    const char *code, const char *message)
{
	json_t *o = json_pack("{s:{s:s, s:s, s:n, s:s*}}", "error", "message",
	    message, "type", type, "param", "code", code);
	char *s = json_dumps(o, JSON_COMPACT);

	json_decref(o);
	if (r->head_queued) {		/* too late for a status: end it */
		free(s);
		gw_reply_end(r);
		return;
	}
	if (r->reqid != 0)
		log_rinfo(r->reqid, "%u %s", status, code ? code : type);
	gw_reply_head(r, status, "application/json");
	if (s != NULL)
		gw_reply_data(r, s, strlen(s));
	free(s);
	gw_reply_end(r);
}

/*
 * The head.  A complete short answer gets a content-length.  A stream on
 * HTTP/1.1 is sent chunked (framed here), so the connection stays open
 * for the next request; lws's own helper would close it instead.
 */
static int
write_head(struct gw_req *r)
{
	unsigned char buf[LWS_PRE + 1024], *start = buf + LWS_PRE, *p = start,
	    *end = buf + sizeof(buf);
	static const char nocache[] = "no-cache", noacc[] = "no",
	    chunked[] = "chunked";
	int h1 = lws_get_network_wsi(r->wsi) == r->wsi;

	r->chunked = 0;
	if (r->final_queued && (r->out.head == NULL || r->out.head->next == NULL)) {
		lws_filepos_t clen = r->out.head ? r->out.head->len : 0;
		if (lws_add_http_common_headers(r->wsi, (unsigned)r->status,
		    r->ctype, clen, &p, end))
			return -1;
	} else {
		if (lws_add_http_header_status(r->wsi, (unsigned)r->status, &p, end) ||
		    lws_add_http_header_by_token(r->wsi, WSI_TOKEN_HTTP_CONTENT_TYPE,
		    (const unsigned char *)r->ctype, (int)strlen(r->ctype), &p, end) ||
		    lws_add_http_header_by_name(r->wsi,
		    (const unsigned char *)"x-accel-buffering:",
		    (const unsigned char *)noacc, sizeof(noacc) - 1, &p, end))
			return -1;
		if (h1) {
			if (lws_add_http_header_by_token(r->wsi,
			    WSI_TOKEN_HTTP_TRANSFER_ENCODING,
			    (const unsigned char *)chunked, sizeof(chunked) - 1, &p, end))
				return -1;
			r->chunked = 1;
		}
	}
	if (lws_add_http_header_by_name(r->wsi, (const unsigned char *)"cache-control:",
	    (const unsigned char *)nocache, sizeof(nocache) - 1, &p, end))
		return -1;
	if (r->charge_id != 0) {	/* the ledger's id of this request */
		char key[40];
		gw_charge_key(r, key, sizeof(key));
		if (lws_add_http_header_by_name(r->wsi,
		    (const unsigned char *)"x-request-id:",
		    (const unsigned char *)key, (int)strlen(key), &p, end))
			return -1;
	}
	if (r->lim.retry_after > 0) {	/* a 429 of the rate limiter */
		char ra[16];
		int n = snprintf(ra, sizeof(ra), "%d", r->lim.retry_after);
		if (lws_add_http_header_by_name(r->wsi,
		    (const unsigned char *)"retry-after:", (const unsigned char *)ra,
		    n, &p, end))
			return -1;
	}
	if (lws_finalize_write_http_header(r->wsi, start, &p, end))
		return -1;
	r->head_sent = 1;
	return 0;
}

/* Write one piece (chunk-framed when the answer is chunked). */
static int
write_piece(struct gw_req *r, struct outq_item *o, int final)
{
	unsigned char *frame;
	size_t n;
	int rc;

	if (!r->chunked)
		return lws_write(r->wsi, o->data, o->len, final ?
		    LWS_WRITE_HTTP_FINAL : LWS_WRITE_HTTP) < (int)o->len ? -1 : 0;
	frame = malloc(LWS_PRE + o->len + 32);
	if (frame == NULL)
		return -1;
	n = (size_t)sprintf((char *)frame + LWS_PRE, "%zx\r\n", o->len);
	memcpy(frame + LWS_PRE + n, o->data, o->len);
	n += o->len;
	memcpy(frame + LWS_PRE + n, final ? "\r\n0\r\n\r\n" : "\r\n",
	    final ? 7 : 2);
	n += final ? 7 : 2;
	rc = lws_write(r->wsi, frame + LWS_PRE, n, final ?
	    LWS_WRITE_HTTP_FINAL : LWS_WRITE_HTTP) < (int)n ? -1 : 0;
	free(frame);
	return rc;
}

static int
on_writeable(struct gw_req *r)
{
	struct outq_item *o;
	int final;

	if (!r->head_queued)
		return 0;
	if (!r->head_sent) {
		if (write_head(r) != 0)
			return -1;
		if (r->out.head != NULL || r->final_queued)
			lws_callback_on_writable(r->wsi);
		return 0;
	}
	o = r->out.head;
	if (o != NULL) {
		final = r->final_queued && o->next == NULL;
		if (write_piece(r, o, final) != 0)
			return -1;
		outq_pop(&r->out);
		if (r->paused && r->out.bytes < GW_OUT_LOW)
			gw_relay_flow(r, 0);
		if (!final) {
			if (r->out.head != NULL || r->final_queued)
				lws_callback_on_writable(r->wsi);
			return 0;
		}
	} else if (r->final_queued) {
		unsigned char z[LWS_PRE + 8];
		memcpy(z + LWS_PRE, "0\r\n\r\n", 5);
		if (lws_write(r->wsi, z + LWS_PRE, r->chunked ? 5 : 0,
		    LWS_WRITE_HTTP_FINAL) < 0)
			return -1;
	} else
		return 0;
	/* The response is complete: keep the connection for the next one,
	 * unless a body we refused may still be on its way. */
	{
		struct lws *wsi = r->wsi;
		int close_it = r->too_big;
		req_reset(r);
		if (close_it)
			return -1;
		return lws_http_transaction_completed(wsi) ? -1 : 0;
	}
}

/* ---- requests ----------------------------------------------------------- */

static int
bearer(struct lws *wsi, char *tok, int len)
{
	char buf[512];
	int n;

	n = lws_hdr_copy(wsi, buf, sizeof(buf), WSI_TOKEN_HTTP_AUTHORIZATION);
	if (n > 7 && strncasecmp(buf, "Bearer ", 7) == 0) {
		snprintf(tok, (size_t)len, "%s", buf + 7);
		return 0;
	}
	if (lws_hdr_custom_copy(wsi, tok, len, "x-api-key:", 10) > 0 ||
	    lws_hdr_custom_copy(wsi, tok, len, "api-key:", 8) > 0)
		return 0;
	/* ?key= (Gemini-style SDKs); lws copies "key=VALUE" */
	{
		const char *v = lws_get_urlarg_by_name(wsi, "key=", buf,
		    (int)sizeof(buf));
		if (v != NULL && *v != '\0') {
			snprintf(tok, (size_t)len, "%s", v);
			return 0;
		}
	}
	return -1;
}

static void
list_model(const char *model, void *arg)
{
	json_t **a = arg;

	json_array_append_new(a[0], json_pack("{s:s, s:s, s:i, s:s}", "id",
	    model, "object", "model", "created", 0, "owned_by", "switchboard"));
}

static void
reply_models(struct gw_req *r, const struct gw_token *t)
{
	json_t *all = json_array(), *mine = json_array(), *o;
	size_t i;
	json_t *m;
	char *s;

	rt_models(&env_->sb, list_model, &all);
	json_array_foreach(all, i, m)
		if (rt_model_in(t->models, json_string_value(json_object_get(m, "id")), 1))
			json_array_append(mine, m);
	json_decref(all);
	o = json_pack("{s:s, s:o}", "object", "list", "data", mine);
	s = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	gw_reply_head(r, 200, "application/json");
	if (s != NULL)
		gw_reply_data(r, s, strlen(s));
	free(s);
	gw_reply_end(r);
}

static void
start_chat(struct gw_req *r, const struct gw_token *t)
{
	struct rt_weights w;
	int policy;
	struct rt_request rq = { .model = r->model, .allowed_models = t->models,
	    .min_grade = t->min_grade, .bound = t->channels, .weights = &w };
	char msg[256];
	char *fwd = NULL;
	size_t fwdlen = 0;
	enum rt_result rr;

	if (!rt_model_in(t->models, r->model, 1)) {
		snprintf(msg, sizeof(msg), "The model `%s` does not exist or you do "
		    "not have access to it.", r->model);
		gw_reply_error(r, 404, "invalid_request_error", "model_not_found", msg);
		return;
	}
	/* The token's strategy, with this config generation's weights; an
	 * unknown policy admits no channel (404), never a wider choice. */
	policy = rt_policy_parse(t->policy);
	rq.policy = policy < 0 ? RT_NPOLICIES : (enum rt_policy)policy;
	hub_conf_rt_weights(&env_->conf, &w);
	rr = rt_candidates(&env_->sb, &rq, r->cand, RT_MAX_CANDIDATES, &r->ncand);
	if (rr == RT_NO_CHANNELS) {
		gw_reply_error(r, 503, "hub_error", "no_channel_available",
		    "No channel is online right now; retry shortly.");
		return;
	}
	if (rr == RT_NO_MODEL) {
		snprintf(msg, sizeof(msg), "The model `%s` does not exist or you do "
		    "not have access to it.", r->model);
		gw_reply_error(r, 404, "invalid_request_error", "model_not_found", msg);
		return;
	}
	if (usage_openai_force_include_usage((const char *)r->body, r->body_len,
	    &fwd, &fwdlen, &r->user_usage) != 0) {
		gw_reply_error(r, 400, "invalid_request_error", "invalid_request",
		    "The request body is not a valid chat completions request.");
		return;
	}
	r->fwd = (unsigned char *)fwd;
	r->fwd_len = fwdlen;
	r->cur = 0;
	gw_limit_check(r, t);	/* then moderation and the relay, or 429 */
}

void
gw_mod_passed(struct gw_req *r)
{
	if (gw_charge_reserve(r) != 0)
		gw_reply_error(r, 503, "hub_error", "store_unavailable",
		    "The hub cannot check quotas right now; retry shortly.");
}

void
gw_charge_reserved(struct gw_req *r)
{
	if (gw_relay_send(r) != 0) {
		gw_charge_settle(r);	/* nothing was used: void */
		gw_reply_error(r, 503, "hub_error", "tunnel_unavailable",
		    "The hub cannot reach its agents right now; retry shortly.");
	}
}

void
gw_token_ready(struct gw_req *r, const struct gw_token *t, int found)
{
	if (!found || !t->enabled) {
		gw_reply_error(r, 401, "invalid_request_error", "invalid_api_key",
		    found ? "This API key has been disabled." :
		    "Incorrect API key provided.");
		return;
	}
	if (t->expires_at != 0 && t->expires_at < clock_wall_ms() / 1000) {
		gw_reply_error(r, 401, "invalid_request_error", "invalid_api_key",
		    "This API key has expired.");
		return;
	}
	if (t->quota_micros >= 0 && t->used_micros >= t->quota_micros) {
		gw_reply_error(r, 429, "insufficient_quota", "insufficient_quota",
		    "You exceeded your current quota.");
		return;
	}
	r->token_id = t->id;
	if (r->route == R_MODELS)
		reply_models(r, t);
	else
		start_chat(r, t);
}

static void
authenticate(struct gw_req *r)
{
	struct gw_token t;
	char tok[512];
	int rc;

	if (bearer(r->wsi, tok, sizeof(tok)) != 0 || tok[0] == '\0') {
		gw_reply_error(r, 401, "invalid_request_error", "missing_api_key",
		    "You didn't provide an API key. Provide it in the Authorization "
		    "header (Authorization: Bearer YOUR_KEY).");
		return;
	}
	hash_sha256_hex(tok, strlen(tok), r->token_hash);
	memset(tok, 0, sizeof(tok));
	rc = gw_token_lookup(r, &t);
	if (rc == 1)
		gw_token_ready(r, &t, 1);
	else if (rc == 2)
		gw_token_ready(r, &t, 0);
	else if (rc < 0)
		gw_reply_error(r, 503, "hub_error", "store_unavailable",
		    "The hub cannot check tokens right now; retry shortly.");
}

static void
body_complete(struct gw_req *r)
{
	json_t *o, *m;
	json_error_t jerr;

	if (r->too_big) {
		char msg[128];
		snprintf(msg, sizeof(msg), "Request body exceeds the limit of %lld "
		    "bytes.", (long long)env_->conf.gw_max_body);
		gw_reply_error(r, 413, "invalid_request_error", "request_too_large", msg);
		return;
	}
	o = json_loadb((const char *)r->body, r->body_len, 0, &jerr);
	if (o == NULL || !json_is_object(o)) {
		json_decref(o);
		gw_reply_error(r, 400, "invalid_request_error", "invalid_json",
		    "We could not parse the JSON body of your request.");
		return;
	}
	m = json_object_get(o, "model");
	if (!json_is_string(m) || json_string_length(m) == 0 ||
	    json_string_length(m) >= sizeof(r->model)) {
		json_decref(o);
		gw_reply_error(r, 400, "invalid_request_error", "missing_model",
		    "You must provide a model parameter.");
		return;
	}
	snprintf(r->model, sizeof(r->model), "%s", json_string_value(m));
	r->stream = json_is_true(json_object_get(o, "stream"));
	r->lim.est = tokest_json(r->body_len, o);
	json_decref(o);
	authenticate(r);
}

static int
on_http(struct gw_req *r, struct lws *wsi, const char *uri)
{
	int post = lws_hdr_total_length(wsi, WSI_TOKEN_POST_URI) > 0;
	int get = lws_hdr_total_length(wsi, WSI_TOKEN_GET_URI) > 0;
	char cl[32];

	req_reset(r);
	r->wsi = wsi;
	r->reqid = gw_new_reqid();
	r->started_ms = clock_mono_ms();
	live_add(r);
	if (strcmp(uri, "/healthz") == 0 && get)
		r->route = R_HEALTH;
	else if (strcmp(uri, "/v1/models") == 0 && get)
		r->route = R_MODELS;
	else if (strcmp(uri, "/v1/chat/completions") == 0 && post)
		r->route = R_CHAT;
	if (r->route == R_HEALTH) {
		char body[256];
		snprintf(body, sizeof(body), "{\"status\":\"ok\",\"worker\":%u,"
		    "\"pid\":%d,\"config_generation\":%llu}", env_->instance,
		    (int)getpid(), (unsigned long long)env_->conf_gen);
		gw_reply_head(r, 200, "application/json");
		gw_reply_data(r, body, strlen(body));
		gw_reply_end(r);
		return 0;
	}
	if (r->route == R_NONE) {
		gw_reply_error(r, 404, "invalid_request_error", "unknown_url",
		    "Unknown request URL. Please check the URL and method.");
		return 0;
	}
	if (r->route == R_MODELS) {
		authenticate(r);
		return 0;
	}
	/* A declared length over the limit is refused before reading it. */
	if (lws_hdr_copy(wsi, cl, sizeof(cl), WSI_TOKEN_HTTP_CONTENT_LENGTH) > 0 &&
	    strtoll(cl, NULL, 10) > env_->conf.gw_max_body) {
		r->too_big = 1;
		body_complete(r);
		return 0;
	}
	r->state = GW_BODY;
	return 0;
}

static int
on_body(struct gw_req *r, const void *in, size_t len)
{
	unsigned char *nb;

	if (r->state != GW_BODY || r->too_big)
		return 0;
	if ((int64_t)(r->body_len + len) > env_->conf.gw_max_body) {
		r->too_big = 1;
		free(r->body);
		r->body = NULL;
		r->body_len = 0;
		return 0;
	}
	nb = realloc(r->body, r->body_len + len + 1);
	if (nb == NULL)
		return -1;
	r->body = nb;
	memcpy(r->body + r->body_len, in, len);
	r->body_len += len;
	r->body[r->body_len] = '\0';
	return 0;
}

static int
cb_http(struct lws *wsi, enum lws_callback_reasons reason, void *user,
    void *in, size_t len)
{
	struct gw_req *r = user;

	switch (reason) {
	case LWS_CALLBACK_HTTP:
		return on_http(r, wsi, (const char *)in);
	case LWS_CALLBACK_HTTP_BODY:
		return on_body(r, in, len);
	case LWS_CALLBACK_HTTP_BODY_COMPLETION:
		if (r->state == GW_BODY)
			body_complete(r);
		return 0;
	case LWS_CALLBACK_HTTP_WRITEABLE:
		if (r == NULL || r->wsi != wsi)
			return 0;
		return on_writeable(r);
	case LWS_CALLBACK_CLOSED_HTTP:
	case LWS_CALLBACK_HTTP_DROP_PROTOCOL:
		if (r != NULL && r->reqid != 0) {
			if (r->state == GW_RELAY) {
				log_rinfo(r->reqid, "user disconnected; cancelling");
				gw_relay_cancel(r);
			}
			req_reset(r);
		}
		return 0;
	default:
		break;
	}
	return lws_callback_http_dummy(wsi, reason, user, in, len);
}

struct lws_protocols
gw_http_protocol(void)
{
	struct lws_protocols p = { "http", cb_http, sizeof(struct gw_req),
		0, 0, NULL, 0 };
	return p;
}
