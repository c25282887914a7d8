/*
 * xlate/xl_oa_gm: an OpenAI chat completions user served by a Gemini
 * generateContent provider (AI Studio or Vertex's google publisher).  The
 * request goes OpenAI -> Gemini; the response, its stream chunks and its
 * usage come back Gemini -> OpenAI.  The rules are listed in xl.h.
 */
#include "xlate/xl_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

/* ---- request ---- */

/* The mime type of an image URL by its extension (fileData needs one). */
static const char *
mime_of_url(const char *url)
{
	static const struct { const char *ext, *mime; } t[] = {
		{ ".png", "image/png" }, { ".gif", "image/gif" },
		{ ".webp", "image/webp" }, { ".heic", "image/heic" },
		{ ".pdf", "application/pdf" },
	};
	size_t n = strcspn(url, "?#");

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		size_t el = strlen(t[i].ext);

		if (n >= el && strncasecmp(url + n - el, t[i].ext, el) == 0)
			return t[i].mime;
	}
	return "image/jpeg";
}

/* image_url -> inlineData (data: URLs) or fileData. */
static json_t *
image_part(json_t *p, size_t mi, size_t pi, char *err, size_t errlen)
{
	const char *url = xl_str(json_object_get(p, "image_url"), "url");
	const char *semi, *comma;

	if (url == NULL)
		return xl_fail(err, errlen, "messages[%zu].content[%zu]."
		    "image_url.url must be a string", mi, pi);
	if (strncmp(url, "data:", 5) == 0) {
		semi = strchr(url, ';');
		comma = strchr(url, ',');
		if (semi == NULL || comma == NULL || comma < semi ||
		    strncmp(semi, ";base64,", 8) != 0 || semi == url + 5)
			return xl_fail(err, errlen, "messages[%zu].content[%zu]: "
			    "a data URL must be data:TYPE;base64,DATA", mi, pi);
		return json_pack("{s:{s:s%, s:s}}", "inlineData", "mimeType",
		    url + 5, (size_t)(semi - url - 5), "data", comma + 1);
	}
	return json_pack("{s:{s:s, s:s}}", "fileData", "mimeType",
	    mime_of_url(url), "fileUri", url);
}

/* A message's content (string or parts) appended to parts. */
static int
content_parts(json_t *c, size_t mi, json_t *parts, int images, char *err,
    size_t errlen)
{
	json_t *p, *v;
	size_t i;

	if (json_is_string(c)) {
		if (json_string_length(c) > 0)
			json_array_append_new(parts, json_pack("{s:O}", "text",
			    c));
		return 0;
	}
	if (c == NULL || json_is_null(c))
		return 0;
	if (!json_is_array(c)) {
		xl_fail(err, errlen, "messages[%zu].content must be a string "
		    "or an array", mi);
		return -1;
	}
	json_array_foreach(c, i, p) {
		const char *t = xl_str(p, "type");

		if (t != NULL && (strcmp(t, "text") == 0 ||
		    strcmp(t, "refusal") == 0)) {
			v = json_object_get(p, strcmp(t, "text") == 0 ? "text" :
			    "refusal");
			if (!json_is_string(v)) {
				xl_fail(err, errlen, "messages[%zu].content[%zu] "
				    "has no text", mi, i);
				return -1;
			}
			json_array_append_new(parts, json_pack("{s:O}", "text",
			    v));
		} else if (images && t != NULL && strcmp(t, "image_url") == 0) {
			if ((v = image_part(p, mi, i, err, errlen)) == NULL)
				return -1;
			json_array_append_new(parts, v);
		} else {
			xl_fail(err, errlen, "messages[%zu].content[%zu]: content "
			    "of type %s cannot be served by this model's "
			    "provider", mi, i, t != NULL ? t : "?");
			return -1;
		}
	}
	return 0;
}

/* Append a turn; consecutive turns of one role are merged. */
static void
add_turn(json_t *contents, const char *role, json_t *parts)
{
	size_t n = json_array_size(contents);
	json_t *last = n > 0 ? json_array_get(contents, n - 1) : NULL;

	if (json_array_size(parts) == 0) {
		json_decref(parts);
		return;
	}
	if (last != NULL && strcmp(xl_str(last, "role"), role) == 0) {
		json_array_extend(json_object_get(last, "parts"), parts);
		json_decref(parts);
		return;
	}
	json_array_append_new(contents, json_pack("{s:s, s:o}", "role", role,
	    "parts", parts));
}

/* The name of the tool call id (from an earlier assistant message). */
static const char *
call_name(json_t *msgs, const char *id)
{
	json_t *m, *tc;
	size_t i, k;

	json_array_foreach(msgs, i, m) {
		json_array_foreach(json_object_get(m, "tool_calls"), k, tc) {
			const char *tid = xl_str(tc, "id");

			if (tid != NULL && id != NULL && strcmp(tid, id) == 0)
				return xl_str(json_object_get(tc, "function"),
				    "name");
		}
	}
	return NULL;
}

static int
assistant_turn(json_t *m, size_t mi, json_t *contents, char *err,
    size_t errlen)
{
	json_t *parts = json_array(), *tc, *args;
	size_t i;

	if (content_parts(json_object_get(m, "content"), mi, parts, 0, err,
	    errlen) != 0)
		goto fail;
	json_array_foreach(json_object_get(m, "tool_calls"), i, tc) {
		json_t *f = json_object_get(tc, "function");
		const char *name = xl_str(f, "name");
		const char *a = xl_str(f, "arguments");
		json_t *call;

		if (name == NULL) {
			xl_fail(err, errlen, "messages[%zu].tool_calls[%zu] has "
			    "no function name", mi, i);
			goto fail;
		}
		args = a == NULL || a[0] == '\0' ? json_object() :
		    json_loads(a, 0, NULL);
		if (!json_is_object(args)) {
			json_decref(args);
			xl_fail(err, errlen, "messages[%zu].tool_calls[%zu]."
			    "function.arguments must be a JSON object", mi, i);
			goto fail;
		}
		call = json_pack("{s:s, s:o}", "name", name, "args", args);
		if (xl_str(tc, "id") != NULL)
			json_object_set(call, "id", json_object_get(tc, "id"));
		json_array_append_new(parts, json_pack("{s:o}", "functionCall",
		    call));
	}
	add_turn(contents, "model", parts);
	return 0;
fail:
	json_decref(parts);
	return -1;
}

/* role tool -> a functionResponse part in a user turn. */
static int
tool_turn(json_t *msgs, json_t *m, size_t mi, json_t *contents, char *err,
    size_t errlen)
{
	const char *id = xl_str(m, "tool_call_id");
	const char *name = call_name(msgs, id);
	json_t *c = json_object_get(m, "content"), *resp, *parts, *text;
	json_t *txt = json_array(), *t;
	size_t i;

	if (name == NULL) {
		json_decref(txt);
		xl_fail(err, errlen, "messages[%zu]: tool_call_id names no "
		    "earlier tool call", mi);
		return -1;
	}
	if (content_parts(c, mi, txt, 0, err, errlen) != 0) {
		json_decref(txt);
		return -1;
	}
	/* The text of the result: one string. */
	{
		struct xl_buf b = { 0 };

		json_array_foreach(txt, i, t)
			xl_buf_adds(&b, json_string_value(json_object_get(t,
			    "text")));
		text = json_stringn(b.p ? b.p : "", b.len);
		xl_buf_free(&b);
	}
	json_decref(txt);
	resp = json_pack("{s:s, s:{s:o}}", "name", name, "response", "content",
	    text);
	if (id != NULL)
		json_object_set_new(resp, "id", json_string(id));
	parts = json_pack("[{s:o}]", "functionResponse", resp);
	add_turn(contents, "user", parts);
	return 0;
}

static int
tools_of(json_t *in, json_t *res, char *err, size_t errlen)
{
	json_t *tools = json_object_get(in, "tools"), *t, *decls;
	json_t *tc = json_object_get(in, "tool_choice");
	size_t i;

	if (json_array_size(tools) > 0) {
		decls = json_array();
		json_array_foreach(tools, i, t) {
			json_t *f = json_object_get(t, "function"), *d;
			const char *ty = xl_str(t, "type");

			if ((ty != NULL && strcmp(ty, "function") != 0) ||
			    xl_str(f, "name") == NULL) {
				json_decref(decls);
				xl_fail(err, errlen, "tools[%zu]: only function "
				    "tools can be served by this model's "
				    "provider", i);
				return -1;
			}
			d = json_pack("{s:O}", "name", json_object_get(f,
			    "name"));
			if (json_is_string(json_object_get(f, "description")))
				json_object_set(d, "description",
				    json_object_get(f, "description"));
			if (json_is_object(json_object_get(f, "parameters")))
				json_object_set(d, "parametersJsonSchema",
				    json_object_get(f, "parameters"));
			json_array_append_new(decls, d);
		}
		json_object_set_new(res, "tools", json_pack("[{s:o}]",
		    "functionDeclarations", decls));
	}
	if (tc == NULL || json_is_null(tc))
		return 0;
	if (json_is_string(tc)) {
		const char *v = json_string_value(tc);
		const char *mode = strcmp(v, "none") == 0 ? "NONE" :
		    strcmp(v, "required") == 0 ? "ANY" :
		    strcmp(v, "auto") == 0 ? "AUTO" : NULL;

		if (mode == NULL) {
			xl_fail(err, errlen, "tool_choice '%s' is not one of "
			    "none, auto, required", v);
			return -1;
		}
		json_object_set_new(res, "toolConfig", json_pack("{s:{s:s}}",
		    "functionCallingConfig", "mode", mode));
		return 0;
	}
	{
		const char *name = xl_str(json_object_get(tc, "function"),
		    "name");

		if (name == NULL) {
			xl_fail(err, errlen, "tool_choice must name a function");
			return -1;
		}
		json_object_set_new(res, "toolConfig", json_pack("{s:{s:s, "
		    "s:[s]}}", "functionCallingConfig", "mode", "ANY",
		    "allowedFunctionNames", name));
	}
	return 0;
}

/* Sampling and limits -> generationConfig. */
static int
gen_config(json_t *in, json_t *res, char *err, size_t errlen)
{
	static const struct { const char *oa, *gm; } same[] = {
		{ "temperature", "temperature" }, { "top_p", "topP" },
		{ "seed", "seed" }, { "presence_penalty", "presencePenalty" },
		{ "frequency_penalty", "frequencyPenalty" },
	};
	json_t *gc = json_object(), *v, *rf;
	const char *rt;

	for (size_t i = 0; i < sizeof(same) / sizeof(same[0]); i++)
		if (json_is_number(v = json_object_get(in, same[i].oa)))
			json_object_set(gc, same[i].gm, v);
	v = json_object_get(in, "max_completion_tokens");
	if (!json_is_integer(v))
		v = json_object_get(in, "max_tokens");
	if (json_is_integer(v))
		json_object_set(gc, "maxOutputTokens", v);
	v = json_object_get(in, "stop");
	if (json_is_string(v))
		json_object_set_new(gc, "stopSequences", json_pack("[O]", v));
	else if (json_is_array(v))
		json_object_set(gc, "stopSequences", v);
	v = json_object_get(in, "n");
	if (json_is_integer(v) && json_integer_value(v) > 1) {
		json_decref(gc);
		xl_fail(err, errlen, "n > 1 cannot be served by this model's "
		    "provider");
		return -1;
	}
	rf = json_object_get(in, "response_format");
	rt = xl_str(rf, "type");
	if (rt != NULL && strcmp(rt, "json_object") == 0)
		json_object_set_new(gc, "responseMimeType",
		    json_string("application/json"));
	else if (rt != NULL && strcmp(rt, "json_schema") == 0) {
		json_t *sch = json_object_get(json_object_get(rf,
		    "json_schema"), "schema");

		json_object_set_new(gc, "responseMimeType",
		    json_string("application/json"));
		if (json_is_object(sch))
			json_object_set(gc, "responseJsonSchema", sch);
	} else if (rt != NULL && strcmp(rt, "text") != 0) {
		json_decref(gc);
		xl_fail(err, errlen, "response_format %s cannot be served by "
		    "this model's provider", rt);
		return -1;
	}
	if (json_object_size(gc) > 0)
		json_object_set_new(res, "generationConfig", gc);
	else
		json_decref(gc);
	return 0;
}

json_t *
xl_oa_gm_request(json_t *in, const char *model, int stream, char *err,
    size_t errlen)
{
	json_t *msgs = json_object_get(in, "messages"), *m;
	json_t *res = json_object(), *contents = json_array(), *sys = NULL;
	size_t i;

	(void)model;		/* Gemini takes it from the path */
	(void)stream;		/* ... and the stream from the method */
	if (!json_is_array(msgs) || json_array_size(msgs) == 0) {
		xl_fail(err, errlen, "messages must be a non-empty array");
		goto fail;
	}
	json_array_foreach(msgs, i, m) {
		const char *role = xl_str(m, "role");
		json_t *parts;

		if (role == NULL) {
			xl_fail(err, errlen, "messages[%zu] has no role", i);
			goto fail;
		}
		if (strcmp(role, "system") == 0 ||
		    strcmp(role, "developer") == 0) {
			if (sys == NULL)
				sys = json_array();
			if (content_parts(json_object_get(m, "content"), i, sys,
			    0, err, errlen) != 0)
				goto fail;
		} else if (strcmp(role, "user") == 0) {
			parts = json_array();
			if (content_parts(json_object_get(m, "content"), i,
			    parts, 1, err, errlen) != 0) {
				json_decref(parts);
				goto fail;
			}
			add_turn(contents, "user", parts);
		} else if (strcmp(role, "assistant") == 0) {
			if (assistant_turn(m, i, contents, err, errlen) != 0)
				goto fail;
		} else if (strcmp(role, "tool") == 0) {
			if (tool_turn(msgs, m, i, contents, err, errlen) != 0)
				goto fail;
		} else {
			xl_fail(err, errlen, "messages[%zu]: role %s cannot be "
			    "served by this model's provider", i, role);
			goto fail;
		}
	}
	if (json_array_size(contents) == 0) {
		xl_fail(err, errlen, "messages must hold a user message");
		goto fail;
	}
	json_object_set_new(res, "contents", contents);
	contents = NULL;
	if (sys != NULL && json_array_size(sys) > 0)
		json_object_set_new(res, "systemInstruction", json_pack("{s:O}",
		    "parts", sys));
	json_decref(sys);
	sys = NULL;
	if (tools_of(in, res, err, errlen) != 0 ||
	    gen_config(in, res, err, errlen) != 0)
		goto fail;
	return res;
fail:
	json_decref(sys);
	json_decref(contents);
	json_decref(res);
	return NULL;
}

/* ---- response ---- */

/* Gemini's finishReason -> OpenAI's finish_reason. */
static const char *
finish_of(const char *f, int tools)
{
	static const struct { const char *gm, *oa; } t[] = {
		{ "STOP", "stop" }, { "MAX_TOKENS", "length" },
		{ "SAFETY", "content_filter" },
		{ "RECITATION", "content_filter" },
		{ "BLOCKLIST", "content_filter" },
		{ "PROHIBITED_CONTENT", "content_filter" },
		{ "SPII", "content_filter" },
		{ "IMAGE_SAFETY", "content_filter" },
	};

	if (tools)
		return "tool_calls";
	for (size_t i = 0; f != NULL && i < sizeof(t) / sizeof(t[0]); i++)
		if (strcmp(t[i].gm, f) == 0)
			return t[i].oa;
	return "stop";
}

/* usageMetadata as Anthropic-style counts (input excludes cached). */
static void
counts_of(json_t *u, long long *in, long long *out, long long *cached)
{
	long long prompt = xl_count(json_object_get(u, "promptTokenCount")) +
	    xl_count(json_object_get(u, "toolUsePromptTokenCount"));

	*cached = xl_count(json_object_get(u, "cachedContentTokenCount"));
	if (*cached > prompt)
		*cached = prompt;
	*in = prompt - *cached;
	*out = xl_count(json_object_get(u, "candidatesTokenCount")) +
	    xl_count(json_object_get(u, "thoughtsTokenCount"));
}

/* The parts of the first candidate: text, reasoning (thought parts) and
 * tool calls (OpenAI's shape; ids "call_N" when Gemini gives none). */
static void
parts_of(json_t *cand, struct xl_buf *text, struct xl_buf *think,
    json_t *calls, int *ncalls)
{
	json_t *parts = json_object_get(json_object_get(cand, "content"),
	    "parts"), *p, *fc;
	size_t i;

	json_array_foreach(parts, i, p) {
		json_t *t = json_object_get(p, "text");

		if (json_is_string(t))
			xl_buf_add(json_is_true(json_object_get(p, "thought")) ?
			    think : text, json_string_value(t),
			    json_string_length(t));
		else if (json_is_object(fc = json_object_get(p,
		    "functionCall")) && xl_str(fc, "name") != NULL) {
			char id[48], *args;
			json_t *a = json_object_get(fc, "args");

			if (xl_str(fc, "id") != NULL)
				xl_make_id(id, sizeof(id), "", xl_str(fc, "id"));
			else
				snprintf(id, sizeof(id), "call_%d", *ncalls);
			args = json_is_object(a) ? json_dumps(a, JSON_COMPACT) :
			    NULL;
			json_array_append_new(calls, json_pack("{s:i, s:s, s:s, "
			    "s:{s:s, s:s}}", "index", *ncalls, "id", id, "type",
			    "function", "function", "name", xl_str(fc, "name"),
			    "arguments", args ? args : "{}"));
			free(args);
			(*ncalls)++;
		}
	}
}

json_t *
xl_oa_gm_response(json_t *in, const char *model, char *err, size_t errlen)
{
	json_t *cands = json_object_get(in, "candidates");
	json_t *cand = json_array_get(cands, 0), *msg, *calls, *res;
	struct xl_buf text = { 0 }, think = { 0 };
	long long ci, co, cc;
	int ncalls = 0;
	char id[XL_MAX_ID + 16];
	const char *fr;

	if (!json_is_object(in) || (cands != NULL && !json_is_array(cands)) ||
	    (cands == NULL && json_object_get(in, "promptFeedback") == NULL &&
	    json_object_get(in, "usageMetadata") == NULL))
		return xl_fail(err, errlen, "not a generateContent response");
	calls = json_array();
	parts_of(cand, &text, &think, calls, &ncalls);
	fr = xl_str(cand, "finishReason");
	if (cand == NULL && json_object_get(in, "promptFeedback") != NULL)
		fr = "SAFETY";		/* the prompt was blocked */
	msg = json_pack("{s:s, s:s%, s:n}", "role", "assistant", "content",
	    text.p ? text.p : "", text.len, "refusal");
	if (think.len > 0)
		json_object_set_new(msg, "reasoning_content",
		    json_stringn(think.p, think.len));
	if (ncalls > 0)
		json_object_set_new(msg, "tool_calls", calls);
	else
		json_decref(calls);
	xl_buf_free(&text);
	xl_buf_free(&think);
	counts_of(json_object_get(in, "usageMetadata"), &ci, &co, &cc);
	xl_make_id(id, sizeof(id), "chatcmpl-", xl_str(in, "responseId"));
	res = json_pack("{s:s, s:s, s:I, s:s, s:[{s:i, s:o, s:n, s:s}], "
	    "s:o}", "id", id, "object", "chat.completion", "created",
	    (json_int_t)time(NULL), "model", model != NULL ? model :
	    (xl_str(in, "modelVersion") ? xl_str(in, "modelVersion") : ""),
	    "choices", "index", 0, "message", msg, "logprobs",
	    "finish_reason", finish_of(fr, ncalls > 0),
	    "usage", xl_openai_usage(ci, co, cc, 0));
	if (res == NULL)
		return xl_fail(err, errlen, "out of memory");
	return res;
}

/* ---- stream: Gemini chunks -> OpenAI chunks ---- */

int
xl_oa_gm_event(struct xl_stream *s, const char *name, const char *data,
    size_t len, struct xl_buf *out)
{
	json_t *j = json_loadb(data, len, 0, NULL), *cand, *calls, *u;
	struct xl_buf text = { 0 }, think = { 0 };
	int rc = 0, ncalls = 0;
	const char *fr;

	(void)name;
	if (!json_is_object(j)) {
		json_decref(j);
		return -1;
	}
	if (json_object_get(j, "error") != NULL) {	/* an error chunk */
		s->done = 1;
		rc = xl_stream_error_json(DIA_OPENAI, DIA_GEMINI, j, out);
		json_decref(j);
		return rc;
	}
	if (!s->started) {
		xl_make_id(s->id, sizeof(s->id), "chatcmpl-",
		    xl_str(j, "responseId"));
		if (s->model == NULL && xl_str(j, "modelVersion") != NULL &&
		    (s->model = strdup(xl_str(j, "modelVersion"))) == NULL) {
			json_decref(j);
			return -1;
		}
		s->started = 1;
		rc = xl_openai_chunk(s, json_pack("{s:s, s:s}", "role", "assistant",
		    "content", ""), NULL, out);
	}
	if (json_is_object(u = json_object_get(j, "usageMetadata"))) {
		/* every usageMetadata replaces the last (the last is final) */
		s->usage_seen = 1;
		counts_of(u, &s->in, &s->out, &s->cache_read);
	}
	cand = json_array_get(json_object_get(j, "candidates"), 0);
	calls = json_array();
	/* tool call indexes go on from the calls sent before */
	ncalls = s->ntools;
	parts_of(cand, &text, &think, calls, &ncalls);
	if (rc == 0 && think.len > 0)
		rc = xl_openai_chunk(s, json_pack("{s:s%}", "reasoning_content", think.p,
		    think.len), NULL, out);
	if (rc == 0 && text.len > 0)
		rc = xl_openai_chunk(s, json_pack("{s:s%}", "content", text.p, text.len),
		    NULL, out);
	if (rc == 0 && json_array_size(calls) > 0)
		rc = xl_openai_chunk(s, json_pack("{s:O}", "tool_calls", calls), NULL,
		    out);
	s->ntools = ncalls > XL_MAX_BLOCKS ? XL_MAX_BLOCKS : ncalls;
	json_decref(calls);
	xl_buf_free(&text);
	xl_buf_free(&think);
	fr = xl_str(cand, "finishReason");
	if (fr == NULL && cand == NULL &&
	    json_object_get(j, "promptFeedback") != NULL &&
	    xl_str(json_object_get(j, "promptFeedback"), "blockReason"))
		fr = "SAFETY";
	if (rc == 0 && fr != NULL && !s->finish_sent) {
		s->finished = 1;
		s->finish_sent = 1;
		s->stop = finish_of(fr, s->ntools > 0);
		rc = xl_openai_chunk(s, json_object(), s->stop, out);
	}
	json_decref(j);
	return rc;
}

/* Gemini sends no end marker: the upstream's end closes the stream. */
void
xl_oa_gm_end(struct xl_stream *s, int ok, struct xl_buf *out)
{
	int rc = 0;

	if (!ok || !s->finished) {
		xl_stream_error(DIA_OPENAI, "api_error", "the provider's "
		    "stream ended before the answer was complete", out);
		return;
	}
	if (s->include_usage)
		rc = xl_sse(out, NULL, json_pack("{s:s, s:s, s:I, s:s, s:[], "
		    "s:o}", "id", s->id[0] ? s->id : "chatcmpl-0", "object",
		    "chat.completion.chunk", "created", (json_int_t)s->created,
		    "model", s->model ? s->model : "", "choices", "usage",
		    xl_openai_usage(s->in, s->out, s->cache_read, 0)));
	if (rc == 0)
		xl_buf_adds(out, "data: [DONE]\n\n");
}
