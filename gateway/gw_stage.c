/*
 * gateway/gw_stage: the table of stages every request walks, and the one
 * driver that walks it.  A stage returns GW_GO (the next one runs),
 * GW_WAIT (an answer will come: whoever brings it calls gw_resume) or
 * GW_STOP (a reply was queued).  r->stage and r->waiting are written here
 * only; the modules say what happened and never call the next stage.
 *
 *   auth      the token from the headers, before any body byte is read
 *   body      read the body, within max_body and the worker's budget
 *   parse     the route's surface parser (model, stream), or the answer
 *             made here (health, models)
 *   route     the channels serving the model that can do the operation,
 *             natively or by translation (xlate/); none: 404/400/503
 *   limit     rpm/tpm (gw_limit.c, may wait for Redis)
 *   moderate  (gw_mod.c, may wait for the moderation process)
 *   reserve   the quota reservation (gw_token.c, waits for billing)
 *   relay     the body for the chosen channel's provider (passthrough or
 *             translated), sent through the tunnel; waits for its end
 *   settle    post the charge (how it ended) and end the answer
 */
#include "gateway/gw.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "lib/hash.h"
#include "lib/log.h"
#include "xlate/xl.h"

static enum gw_verdict st_auth(struct gw_req *r);
static enum gw_verdict st_body(struct gw_req *r);
static enum gw_verdict st_parse(struct gw_req *r);
static enum gw_verdict st_route(struct gw_req *r);
static enum gw_verdict st_limit(struct gw_req *r);
static enum gw_verdict st_moderate(struct gw_req *r);
static enum gw_verdict st_reserve(struct gw_req *r);
static enum gw_verdict st_relay(struct gw_req *r);
static enum gw_verdict st_settle(struct gw_req *r);

static const struct {
	const char *name;
	enum gw_verdict (*run)(struct gw_req *r);
} stages[GW_ST_DONE] = {
	[GW_ST_AUTH] = { "authenticate", st_auth },
	[GW_ST_BODY] = { "body", st_body },
	[GW_ST_PARSE] = { "parse", st_parse },
	[GW_ST_ROUTE] = { "route", st_route },
	[GW_ST_LIMIT] = { "limit", st_limit },
	[GW_ST_MODERATE] = { "moderate", st_moderate },
	[GW_ST_RESERVE] = { "reserve", st_reserve },
	[GW_ST_RELAY] = { "relay", st_relay },
	[GW_ST_SETTLE] = { "settle", st_settle },
};

void
gw_run(struct gw_req *r)
{
	enum gw_verdict v;

	while (r->reqid != 0 && r->stage < GW_ST_DONE) {
		r->running = 1;
		r->early = 0;
		v = stages[r->stage].run(r);
		r->running = 0;
		if (v == GW_WAIT && r->early)
			v = r->early_v;		/* it answered at once */
		if (r->stage >= GW_ST_DONE)
			return;			/* a reply ended it */
		if (v == GW_WAIT) {
			r->waiting = 1;
			return;
		}
		if (v == GW_STOP) {
			r->stage = GW_ST_DONE;
			return;
		}
		r->stage++;
	}
}

void
gw_resume(struct gw_req *r, enum gw_verdict v)
{
	if (r->running) {		/* from inside the stage itself */
		r->early = 1;
		r->early_v = v;
		return;
	}
	if (!r->waiting || r->stage >= GW_ST_DONE)
		return;
	r->waiting = 0;
	if (v == GW_STOP) {
		r->stage = GW_ST_DONE;
		return;
	}
	r->stage++;
	gw_run(r);
}

int
gw_waits_in(const struct gw_req *r, enum gw_stage st)
{
	return r->reqid != 0 && r->stage == st && (r->waiting || r->running);
}

void
gw_req_route(struct gw_req *r, const char *method, size_t mlen,
    const char *path, size_t plen)
{
	r->route = gw_route_find(method, mlen, path, plen, r->path_model,
	    sizeof(r->path_model));
	r->surface = r->route ? r->route->surface :
	    gw_route_surface_of(path, plen);
	r->op = r->route ? r->route->op : -1;
}

const struct gw_token *
gw_req_token(const struct gw_req *r)
{
	return &r->tok;
}

/* ---- auth ----------------------------------------------------------------- */

/* The user's hub token: Bearer, x-api-key (Anthropic), api-key (Azure),
 * x-goog-api-key or ?key= (Google). */
static int
token_of(struct gw_req *r, char *tok, size_t len)
{
	char buf[600];

	int n = gw_hdr(r, "authorization", buf, sizeof(buf));

	if (n > 7 && strncasecmp(buf, "Bearer ", 7) == 0) {
		if ((size_t)(n - 7) >= len)
			return -1;
		memcpy(tok, buf + 7, (size_t)(n - 7) + 1);
		return 0;
	}
	if (gw_hdr(r, "x-api-key", tok, len) > 0 ||
	    gw_hdr(r, "api-key", tok, len) > 0 ||
	    gw_hdr(r, "x-goog-api-key", tok, len) > 0 ||
	    gw_query(r, "key", tok, len) > 0 ||
	    gw_rt_token(r, tok, len) == 0)
		return 0;
	return -1;
}

/* The token is known: may it be used? */
static enum gw_verdict
token_check(struct gw_req *r, const struct gw_token *t, int found)
{
	if (!found || !t->enabled) {
		gw_reply_error(r, 401, "invalid_request_error", "invalid_api_key",
		    found ? "This API key has been disabled." :
		    "Incorrect API key provided.");
		return GW_STOP;
	}
	if (t->expires_at != 0 && t->expires_at < clock_wall_ms() / 1000) {
		gw_reply_error(r, 401, "invalid_request_error", "invalid_api_key",
		    "This API key has expired.");
		return GW_STOP;
	}
	if (t->quota_micros >= 0 && t->used_micros >= t->quota_micros) {
		gw_reply_error(r, 429, "insufficient_quota", "insufficient_quota",
		    "You exceeded your current quota.");
		return GW_STOP;
	}
	r->tok = *t;
	r->token_id = t->id;
	return GW_GO;
}

void
gw_token_ready(struct gw_req *r, const struct gw_token *t, int found)
{
	gw_resume(r, token_check(r, t, found));
}

static enum gw_verdict
st_auth(struct gw_req *r)
{
	struct gw_token t;
	char tok[512];
	int rc;

	if (r->route == NULL) {
		gw_reply_error(r, 404, "invalid_request_error", "unknown_url",
		    "Unknown request URL. Please check the URL and method.");
		return GW_STOP;
	}
	if (r->route->flags & GW_RF_NOAUTH)
		return GW_GO;
	(void)gw_hdr(r, "anthropic-version", r->anthropic_version,
	    sizeof(r->anthropic_version));
	(void)gw_hdr(r, "anthropic-beta", r->anthropic_beta,
	    sizeof(r->anthropic_beta));
	(void)gw_hdr(r, "content-type", r->req_ctype, sizeof(r->req_ctype));
	if (token_of(r, tok, sizeof(tok)) != 0 || tok[0] == '\0') {
		gw_reply_error(r, 401, "invalid_request_error", "missing_api_key",
		    "You didn't provide an API key. Provide it in the Authorization "
		    "header (Authorization: Bearer YOUR_KEY).");
		return GW_STOP;
	}
	hash_sha256_hex(tok, strlen(tok), r->token_hash);
	memset(tok, 0, sizeof(tok));
	rc = gw_token_lookup(r, &t);
	if (rc == 1)
		return token_check(r, &t, 1);
	if (rc == 2)
		return token_check(r, &t, 0);
	if (rc < 0) {
		gw_reply_error(r, 503, "hub_error", "store_unavailable",
		    "The hub cannot check tokens right now; retry shortly.");
		return GW_STOP;
	}
	return GW_WAIT;
}

/* ---- body ----------------------------------------------------------------- */

static enum gw_verdict
st_body(struct gw_req *r)
{
	if (!(r->route->flags & GW_RF_BODY))
		return GW_GO;
	gw_body_want(r);
	if (r->stage >= GW_ST_DONE)
		return GW_STOP;		/* refused (413) */
	return r->body_complete ? GW_GO : GW_WAIT;
}

void
gw_body_data(struct gw_req *r, const void *p, size_t len)
{
	unsigned char *nb;

	if (r->body_complete || r->stage >= GW_ST_DONE)
		return;
	if ((int64_t)(r->body_len + len) > gw_env()->conf.gw_max_body) {
		char msg[128];
		snprintf(msg, sizeof(msg), "Request body exceeds the limit of "
		    "%lld bytes.", (long long)gw_env()->conf.gw_max_body);
		r->close_after = 1;
		gw_reply_error(r, 413, "invalid_request_error",
		    "request_too_large", msg);
		return;
	}
	nb = realloc(r->body, r->body_len + len + 1);
	if (nb == NULL) {
		r->close_after = 1;
		gw_reply_error(r, 503, "hub_error", "out_of_memory",
		    "The hub is out of memory; retry shortly.");
		return;
	}
	r->body = nb;
	memcpy(r->body + r->body_len, p, len);
	r->body_len += len;
	r->body[r->body_len] = '\0';
}

void
gw_body_done(struct gw_req *r)
{
	if (r->body_complete || r->stage >= GW_ST_DONE)
		return;
	r->body_complete = 1;
	if (r->stage == GW_ST_BODY)
		gw_resume(r, GW_GO);
}

/* ---- parse ---------------------------------------------------------------- */

static enum gw_verdict
st_parse(struct gw_req *r)
{
	struct gw_body b;
	char msg[128];

	if (!(r->route->flags & GW_RF_RELAY)) {
		r->route->answer(r);
		return GW_STOP;
	}
	if (!(r->route->flags & GW_RF_BODY))	/* no body: headers, query */
		return r->route->parse(r, NULL);
	if ((r->route->flags & GW_RF_FORM_OR_JSON) &&
	    strncasecmp(r->req_ctype, "multipart/form-data", 19) == 0)
		return r->route->parse(r, NULL);
	if (r->route->flags & GW_RF_FORM) {
		if (strncasecmp(r->req_ctype, "multipart/form-data", 19) != 0) {
			gw_reply_error(r, 400, "invalid_request_error",
			    "invalid_content_type", "This endpoint takes a "
			    "multipart/form-data body.");
			return GW_STOP;
		}
		return r->route->parse(r, NULL);
	}
	switch (gw_body_read(&b, r->body, r->body_len, msg, sizeof(msg))) {
	case 0:
		break;
	case -2:
		gw_reply_error(r, 400, "invalid_request_error", "invalid_json",
		    msg);
		return GW_STOP;
	default:
		gw_reply_error(r, 400, "invalid_request_error", "invalid_json",
		    "We could not parse the JSON body of your request.");
		return GW_STOP;
	}
	return r->route->parse(r, &b);
}

/* ---- route ---------------------------------------------------------------- */

/* Can a channel of provider prov do r's operation, natively or by
 * translating its chat dialect? */
static int
can_serve(const struct gw_req *r, int prov)
{
	const struct prov_op_info *op = prov_op(r->op);

	if (prov < 0 || op == NULL)
		return 0;
	enum prov_dialect body;

	if (prov_can_model(prov, r->model, r->op))
		return 1;
	return op->chat && prov_chat_route(prov, r->model, op->dialect,
	    r->stream, &body) >= 0 && xl_can(op->dialect, body);
}

static void
model_not_found(struct gw_req *r)
{
	char msg[256];

	snprintf(msg, sizeof(msg), "The model `%s` does not exist or you do not "
	    "have access to it.", r->model);
	gw_reply_error(r, 404, "invalid_request_error", "model_not_found", msg);
}

static enum gw_verdict
st_route(struct gw_req *r)
{
	const struct gw_token *t = &r->tok;
	struct rt_weights w;
	struct rt_request rq = { .model = r->model, .allowed_models = t->models,
	    .min_grade = t->min_grade, .bound = t->channels, .weights = &w };
	enum rt_result rr;
	int policy, n = 0;
	char msg[256];

	if (!rt_model_in(t->models, r->model, 1)) {
		model_not_found(r);
		return GW_STOP;
	}
	/* The token's strategy, with this config generation's weights; an
	 * unknown policy admits no channel (404), never a wider choice. */
	policy = rt_policy_parse(t->policy);
	rq.policy = policy < 0 ? RT_NPOLICIES : (enum rt_policy)policy;
	if (gw_video_bound(r) != NULL) {	/* the job's own channel only */
		rq.policy = RT_POLICY_BOUND;
		rq.bound = gw_video_bound(r);
	}
	hub_conf_rt_weights(&gw_env()->conf, &w);
	rr = rt_candidates(&gw_env()->sb, &rq, r->cand, RT_MAX_CANDIDATES,
	    &r->ncand);
	if (rr == RT_NO_CHANNELS) {
		gw_reply_error(r, 503, "hub_error", "no_channel_available",
		    "No channel is online right now; retry shortly.");
		return GW_STOP;
	}
	if (rr == RT_NO_MODEL) {
		model_not_found(r);
		return GW_STOP;
	}
	/* Keep the candidates whose provider can do the operation, in the
	 * router's order. */
	for (int i = 0; i < r->ncand; i++) {
		const char *p = r->cand[i].provider;
		if (can_serve(r, prov_parse(p, strnlen(p, sizeof(r->cand[i].provider)))))
			r->cand[n++] = r->cand[i];
	}
	if (n == 0) {
		snprintf(msg, sizeof(msg), "The model `%s` does not support %s "
		    "(its providers: %s).", r->model, prov_op(r->op)->name,
		    r->cand[0].provider);
		r->ncand = 0;
		gw_reply_error(r, 400, "invalid_request_error",
		    "unsupported_operation", msg);
		return GW_STOP;
	}
	r->ncand = n;
	r->cur = 0;
	return GW_GO;
}

/* ---- limit, moderate, reserve --------------------------------------------- */

static enum gw_verdict
st_limit(struct gw_req *r)
{
	return gw_limit_check(r, &r->tok);
}

static enum gw_verdict
st_moderate(struct gw_req *r)
{
	return gw_mod_check(r);
}

static enum gw_verdict
st_reserve(struct gw_req *r)
{
	return gw_charge_reserve(r);
}

/* ---- relay ---------------------------------------------------------------- */

/* The body for the current candidate: its provider's dialect, the
 * operation it calls, and usage asked of an OpenAI-dialect stream. */
int
gw_stage_relay_attempt(struct gw_req *r)
{
	const struct rt_candidate *c = &r->cand[r->cur];
	int prov = prov_parse(c->provider, strnlen(c->provider,
	    sizeof(c->provider)));
	const struct prov_op_info *op = prov_op(r->op);
	char err[256];
	char *fwd = NULL;
	size_t fwdlen = 0;
	int asked;

	free(r->fwd);
	r->fwd = NULL;
	r->fwd_len = 0;
	gw_resp_reset(r);
	r->up_dialect = prov_dialect_model(prov, r->model);
	if (prov_can_model(prov, r->model, r->op)) {
		r->xlate = 0;
		r->fwd_op = r->op;
		/* A chat stream asks for its usage; anything else goes as
		 * it came (st_parse checked "stream": a boolean or null). */
		if (r->op == OP_CHAT && r->stream) {
			if (usage_openai_force_include_usage((const char *)r->body,
			    r->body_len, &fwd, &fwdlen, &asked) != 0) {
				gw_reply_error(r, 400, "invalid_request_error",
				    "invalid_request", "The request body is not a "
				    "valid chat completions request.");
				return -2;
			}
		} else {
			if ((fwd = malloc(r->body_len + 1)) == NULL)
				return -1;
			if (r->body_len > 0)	/* a GET has none */
				memcpy(fwd, r->body, r->body_len);
			fwd[r->body_len] = '\0';
			fwdlen = r->body_len;
		}
	} else {
		struct xl_buf b = { NULL, 0, 0 };
		r->xlate = 1;
		r->fwd_op = prov_chat_route(prov, r->model, op->dialect, r->stream,
		    &r->up_dialect);
		if (xl_request(op->dialect, r->up_dialect, (const char *)r->body,
		    r->body_len, r->model, r->stream, &b, err, sizeof(err)) != 0) {
			xl_buf_free(&b);
			gw_reply_error(r, 400, "invalid_request_error",
			    "invalid_request", err);
			return -2;
		}
		if (r->up_dialect == DIA_OPENAI && r->stream) {
			if (usage_openai_force_include_usage(b.p, b.len, &fwd,
			    &fwdlen, &asked) != 0) {
				xl_buf_free(&b);
				gw_reply_error(r, 500, "hub_error", "translation_failed",
				    "The hub could not translate this request.");
				return -2;
			}
			xl_buf_free(&b);
		} else {
			fwd = b.p;
			fwdlen = b.len;
		}
	}
	r->fwd = (unsigned char *)fwd;
	r->fwd_len = fwdlen;
	return gw_relay_send(r);
}

static enum gw_verdict
st_relay(struct gw_req *r)
{
	int rc = gw_stage_relay_attempt(r);

	if (rc == -2) {			/* refused (400) */
		gw_charge_settle(r);
		return GW_STOP;
	}
	if (rc != 0) {
		gw_charge_settle(r);	/* nothing was used: void */
		gw_reply_error(r, 503, "hub_error", "tunnel_unavailable",
		    "The hub cannot reach its agents right now; retry shortly.");
		return GW_STOP;
	}
	return GW_WAIT;
}

static enum gw_verdict
st_settle(struct gw_req *r)
{
	gw_charge_settle(r);
	gw_reply_end(r);
	return GW_STOP;
}
