/*
 * gateway/gw_route: the table of routes of the user API — method and path
 * pattern to the surface that speaks there, the operation it asks for
 * (lib/prov.h), and the parser that reads model and stream from its body —
 * and the answers made here (health, the model list).  Adding an endpoint
 * is a row here (and an operation in lib/prov if it is new).
 */
#include "gateway/gw.h"
#include "lib/hex.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <jansson.h>
#include "lib/log.h"
#include "lib/tokest.h"
#include "lib/str.h"
#include "gateway/gw_form.h"

/* Body parsers: model (unless the path named it) and stream. */
static enum gw_verdict
parse_common(struct gw_req *r, const struct gw_body *b)
{
	enum jscan_type st;

	if (r->path_model[0] != '\0')
		str_copy(r->model, sizeof(r->model), r->path_model);
	else if (b == NULL ||
	    !gw_body_str(b->f[GW_BK_MODEL], r->model, sizeof(r->model))) {
		gw_reply_error(r, 400, "invalid_request_error", "missing_model",
		    "You must provide a model parameter.");
		return GW_STOP;
	}
	st = b != NULL ? jscan_type(b->f[GW_BK_STREAM]) : JS_NONE;
	if (st != JS_NONE && st != JS_TRUE && st != JS_FALSE && st != JS_NULL) {
		gw_reply_error(r, 400, "invalid_request_error", "invalid_type",
		    "stream must be a boolean.");
		return GW_STOP;
	}
	r->stream = st == JS_TRUE;
	r->user_usage = r->stream && jscan_type(jscan_get(
	    b->f[GW_BK_STREAM_OPTIONS], "include_usage")) == JS_TRUE;
	r->lim.est = gw_body_est(r, b);
	return GW_GO;
}

/* Embeddings, token counts: never a stream. */
static enum gw_verdict
parse_nostream(struct gw_req *r, const struct gw_body *b)
{
	enum gw_verdict v = parse_common(r, b);

	r->stream = 0;
	r->user_usage = 0;
	return v;
}

/* multipart/form-data uploads: model (and stream) from the form's
 * fields; the body goes upstream unchanged. */
static enum gw_verdict
parse_form(struct gw_req *r, const struct gw_body *b)
{
	char v[16];

	(void)b;
	if (gw_form_field(r->req_ctype, r->body, r->body_len, "model", r->model,
	    sizeof(r->model)) <= 0) {
		gw_reply_error(r, 400, "invalid_request_error", "missing_model",
		    "You must provide a model parameter (a form field).");
		return GW_STOP;
	}
	r->stream = gw_form_field(r->req_ctype, r->body, r->body_len, "stream",
	    v, sizeof(v)) > 0 && strcmp(v, "true") == 0;
	r->user_usage = 0;
	r->lim.est = (int64_t)(r->body_len / 4);
	return GW_GO;
}

/*
 * Gemini (the model is the path's "{model}" of "/v1beta/models/{model}:op",
 * as the SDKs send it; a "models/" prefix in a body is never read): the
 * stream is the operation, and streamGenerateContent is served as SSE only
 * (alt=sse, which every official SDK sends).
 */
static enum gw_verdict
parse_gemini(struct gw_req *r, const struct gw_body *b)
{
	char alt[16];

	if (r->path_model[0] == '\0') {
		gw_reply_error(r, 400, "invalid_request_error", "missing_model",
		    "The path must name a model: /v1beta/models/{model}:...");
		return GW_STOP;
	}
	str_copy(r->model, sizeof(r->model), r->path_model);
	r->stream = r->op == OP_GEM_STREAM;
	r->user_usage = 0;
	if (r->stream && (gw_query(r, "alt", alt, sizeof(alt)) <= 0 ||
	    strcmp(alt, "sse") != 0)) {
		gw_reply_error(r, 400, "invalid_request_error", "invalid_request",
		    "streamGenerateContent is served as server-sent events "
		    "only: add ?alt=sse.");
		return GW_STOP;
	}
	r->lim.est = gw_body_est(r, b);
	return GW_GO;
}

/*
 * Bedrock: the model is the path's segment, URL-decoded
 * ("amazon.nova-lite-v1%3A0" is amazon.nova-lite-v1:0); the route says
 * whether it streams.  No NUL, control byte, '/' or bad escape.
 */
static enum gw_verdict
parse_bedrock(struct gw_req *r, const struct gw_body *b)
{
	const char *p = r->path_model;
	size_t o = 0;

	for (size_t i = 0; p[i] != '\0'; i++) {
		int c = (unsigned char)p[i];

		if (c == '%') {
			int h = p[i + 1], l = h ? p[i + 2] : 0;

			h = hex_digit(h);
			l = hex_digit(l);
			if (h < 0 || l < 0) {
				o = 0;
				break;
			}
			c = h << 4 | l;
			i += 2;
		}
		if (c < 0x21 || c == 0x7f || c == '/' || o + 1 >= sizeof(r->model)) {
			o = 0;
			break;
		}
		r->model[o++] = (char)c;
	}
	r->model[o] = '\0';
	if (o == 0) {
		gw_reply_error(r, 400, "invalid_request_error", "invalid_model",
		    "The provided model identifier is invalid.");
		return GW_STOP;
	}
	r->stream = r->op == OP_CONVERSE_STREAM || r->op == OP_INVOKE_STREAM;
	r->user_usage = 0;
	r->lim.est = gw_body_est(r, b);
	return GW_GO;
}

static void
answer_health(struct gw_req *r)
{
	char body[256];

	snprintf(body, sizeof(body), "{\"status\":\"ok\",\"worker\":%u,"
	    "\"pid\":%d,\"config_generation\":%llu}", gw_env()->instance,
	    (int)getpid(), (unsigned long long)gw_env()->conf_gen);
	gw_reply_json(r, 200, body);
}

static void
list_model(const char *model, void *arg)
{
	json_t **a = arg;

	json_array_append_new(a[0], json_pack("{s:s, s:s, s:i, s:s}", "id",
	    model, "object", "model", "created", 0, "owned_by", "switchboard"));
}

/* Every model an online channel serves that the token may use. */
static void
answer_models(struct gw_req *r)
{
	const struct gw_token *t = gw_req_token(r);
	json_t *all = json_array(), *mine = json_array(), *o, *m;
	size_t i;
	char *s;

	rt_models(&gw_env()->sb, list_model, &all);
	json_array_foreach(all, i, m)
		if (rt_model_in(t->models, json_string_value(json_object_get(m,
		    "id")), 1))
			json_array_append(mine, m);
	json_decref(all);
	o = json_pack("{s:s, s:o}", "object", "list", "data", mine);
	s = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	gw_reply_json(r, 200, s);
	free(s);
}

#define RELAY (GW_RF_BODY | GW_RF_RELAY)

static const struct gw_route routes[] = {
	{ "GET", "/healthz", &gw_surface_openai, -1, GW_RF_NOAUTH, NULL,
	    answer_health },
	{ "GET", "/v1/models", &gw_surface_openai, -1, 0, NULL, answer_models },
	/* OpenAI */
	{ "POST", "/v1/chat/completions", &gw_surface_openai, OP_CHAT, RELAY,
	    parse_common, NULL },
	{ "POST", "/v1/responses", &gw_surface_openai, OP_RESPONSES, RELAY,
	    parse_common, NULL },
	{ "POST", "/v1/embeddings", &gw_surface_openai, OP_EMBEDDINGS, RELAY,
	    parse_nostream, NULL },
	/* Anthropic */
	{ "POST", "/v1/messages", &gw_surface_anthropic, OP_MESSAGES, RELAY,
	    parse_common, NULL },
	{ "POST", "/v1/messages/count_tokens", &gw_surface_anthropic,
	    OP_COUNT_TOKENS, RELAY, parse_nostream, NULL },
	/* OpenAI media: JSON or multipart uploads, binary answers */
	{ "POST", "/v1/images/generations", &gw_surface_openai, OP_IMAGES_GEN,
	    RELAY, parse_common, NULL },
	{ "POST", "/v1/images/edits", &gw_surface_openai, OP_IMAGES_EDIT,
	    RELAY | GW_RF_FORM, parse_form, NULL },
	{ "POST", "/v1/audio/speech", &gw_surface_openai, OP_AUDIO_SPEECH,
	    RELAY, parse_common, NULL },
	{ "POST", "/v1/audio/transcriptions", &gw_surface_openai,
	    OP_AUDIO_TRANSCRIBE, RELAY | GW_RF_FORM, parse_form, NULL },
	{ "POST", "/v1/audio/translations", &gw_surface_openai,
	    OP_AUDIO_TRANSLATE, RELAY | GW_RF_FORM, parse_form, NULL },
	/* OpenAI video jobs (gw_video.c): the job's channel, found in the
	 * store, serves its follow-ups */
	{ "POST", "/v1/videos", &gw_surface_openai, OP_VIDEO_CREATE,
	    RELAY | GW_RF_FORM_OR_JSON, gw_video_parse_create, NULL },
	{ "GET", "/v1/videos/*", &gw_surface_openai, OP_VIDEO_GET,
	    GW_RF_RELAY, gw_video_parse_get, NULL },
	{ "GET", "/v1/videos/*/content", &gw_surface_openai, OP_VIDEO_CONTENT,
	    GW_RF_RELAY, gw_video_parse_get, NULL },
	/* Gemini: "*:op" is one segment, the model then ":op" */
	{ "POST", "/v1beta/models/*:generateContent", &gw_surface_gemini,
	    OP_GEM_GENERATE, RELAY, parse_gemini, NULL },
	{ "POST", "/v1beta/models/*:streamGenerateContent", &gw_surface_gemini,
	    OP_GEM_STREAM, RELAY, parse_gemini, NULL },
	{ "POST", "/v1beta/models/*:embedContent", &gw_surface_gemini,
	    OP_GEM_EMBED, RELAY, parse_gemini, NULL },
	{ "POST", "/v1beta/models/*:batchEmbedContents", &gw_surface_gemini,
	    OP_GEM_BATCH_EMBED, RELAY, parse_gemini, NULL },
	{ "POST", "/v1beta/models/*:countTokens", &gw_surface_gemini,
	    OP_GEM_COUNT, RELAY, parse_gemini, NULL },
	/* OpenAI Realtime: a WebSocket upgrade, no body (gw_rt.c) */
	{ "GET", "/v1/realtime", &gw_surface_openai, OP_REALTIME, GW_RF_RELAY,
	    gw_rt_parse, NULL },
	/* Azure-style: the deployment in the path is the model */
	{ "POST", "/openai/deployments/*/chat/completions", &gw_surface_openai,
	    OP_CHAT, RELAY, parse_common, NULL },
	{ "POST", "/openai/deployments/*/embeddings", &gw_surface_openai,
	    OP_EMBEDDINGS, RELAY, parse_nostream, NULL },
	/* Bedrock runtime: the model id in the path */
	{ "POST", "/model/*/converse", &gw_surface_bedrock, OP_CONVERSE, RELAY,
	    parse_bedrock, NULL },
	{ "POST", "/model/*/converse-stream", &gw_surface_bedrock,
	    OP_CONVERSE_STREAM, RELAY, parse_bedrock, NULL },
	{ "POST", "/model/*/invoke", &gw_surface_bedrock, OP_INVOKE, RELAY,
	    parse_bedrock, NULL },
	{ "POST", "/model/*/invoke-with-response-stream", &gw_surface_bedrock,
	    OP_INVOKE_STREAM, RELAY, parse_bedrock, NULL },
};

/*
 * Match path against pattern.  A '*' is one non-empty path segment, or,
 * when the pattern goes on in the same segment ("*:generateContent"),
 * the non-empty part of the segment before that fixed suffix (the suffix
 * must end the segment).  What it matched is copied to star (%-decoded
 * bytes are kept as they are); a capture holding a NUL, a control byte or
 * a space, or one that does not fit starlen, matches nothing.
 */
static int
match(const char *pat, const char *path, size_t plen, char *star,
    size_t starlen)
{
	size_t i = 0;

	for (; *pat != '\0'; pat++) {
		if (*pat == '*') {
			size_t s = i, e, suf = strcspn(pat + 1, "/");

			while (i < plen && path[i] != '/') {
				unsigned char c = (unsigned char)path[i++];
				/* It becomes a C string (the model): a NUL
				 * would cut it short, a control byte or a
				 * space names no model. */
				if (c < 0x21 || c == 0x7f)
					return 0;
			}
			e = i;			/* the segment is path[s..e) */
			if (e - s <= suf || memcmp(path + e - suf, pat + 1,
			    suf) != 0)
				return 0;
			e -= suf;
			if (e - s >= starlen)
				return 0;
			memcpy(star, path + s, e - s);
			star[e - s] = '\0';
			pat += suf;
			continue;
		}
		if (i >= plen || path[i] != *pat)
			return 0;
		i++;
	}
	return i == plen;
}

#if SWB_TEST_BUILD
int
gw_route_match(const char *pat, const char *path, size_t plen, char *star,
    size_t starlen)
{
	return match(pat, path, plen, star, starlen);
}
#endif

const struct gw_route *
gw_route_find(const char *method, size_t mlen, const char *path, size_t plen,
    char *star, size_t starlen)
{
	star[0] = '\0';
	for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++)
		if (strlen(routes[i].method) == mlen &&
		    memcmp(routes[i].method, method, mlen) == 0 &&
		    match(routes[i].pattern, path, plen, star, starlen))
			return &routes[i];
	return NULL;
}

const struct gw_surface *
gw_route_surface_of(const char *path, size_t plen)
{
	if (plen >= 12 && memcmp(path, "/v1/messages", 12) == 0)
		return &gw_surface_anthropic;
	if (plen >= 8 && memcmp(path, "/v1beta/", 8) == 0)
		return &gw_surface_gemini;
	if (plen >= 7 && memcmp(path, "/model/", 7) == 0)
		return &gw_surface_bedrock;
	return &gw_surface_openai;
}
