/*
 * xlate/xl_oa_cv: an OpenAI chat user, a Bedrock Converse provider —
 * the request (chat completions -> Converse), the non-stream response
 * (Converse -> chat.completion) and the stream (ConverseStream events ->
 * chat.completion.chunk SSE).  See xl.h for the mapping.
 *
 * ConverseStream is AWS event-stream, not SSE: the gateway decodes each
 * frame and calls xl_stream_event with the frame's :event-type (or
 * :exception-type) as the name and its JSON payload as the data.
 */
#include "xlate/xl_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- request ---- */

/* "data:image/png;base64,DATA" -> {image:{format, source:{bytes}}}. */
static json_t *
cv_image(json_t *part, size_t mi, char *err, size_t errlen)
{
	const char *url = xl_str(json_object_get(part, "image_url"), "url");
	static const char *const fmts[] = { "png", "jpeg", "gif", "webp" };
	const char *comma, *sub;

	if (url == NULL)
		url = xl_str(part, "image_url");
	if (url == NULL || strncmp(url, "data:image/", 11) != 0 ||
	    (comma = strchr(url, ',')) == NULL ||
	    strstr(url, ";base64,") != comma - 7)
		return xl_fail(err, errlen, "messages[%zu]: Bedrock takes images "
		    "as data URLs (data:image/png;base64,...) only", mi);
	sub = url + 11;
	for (size_t i = 0; i < sizeof(fmts) / sizeof(fmts[0]); i++) {
		size_t n = strlen(fmts[i]);
		if (strncmp(sub, fmts[i], n) == 0 && sub[n] == ';')
			return json_pack("{s:{s:s, s:{s:s}}}", "image", "format",
			    fmts[i], "source", "bytes", comma + 1);
	}
	if (strncmp(sub, "jpg;", 4) == 0)
		return json_pack("{s:{s:s, s:{s:s}}}", "image", "format", "jpeg",
		    "source", "bytes", comma + 1);
	return xl_fail(err, errlen, "messages[%zu]: image type not one of png, "
	    "jpeg, gif, webp", mi);
}

/* OpenAI content (string or parts) -> Converse content blocks. */
static json_t *
cv_content(json_t *c, size_t mi, int images, char *err, size_t errlen)
{
	json_t *blocks = json_array(), *p;
	size_t i;

	if (blocks == NULL)
		return xl_fail(err, errlen, "out of memory");
	if (json_is_string(c)) {
		if (json_string_length(c) > 0)
			json_array_append_new(blocks, json_pack("{s:O}", "text",
			    c));
		return blocks;
	}
	if (c == NULL || json_is_null(c))
		return blocks;
	if (!json_is_array(c)) {
		json_decref(blocks);
		return xl_fail(err, errlen, "messages[%zu].content must be a "
		    "string or an array", mi);
	}
	json_array_foreach(c, i, p) {
		const char *t = xl_str(p, "type");
		json_t *b = NULL;

		if (t != NULL && strcmp(t, "text") == 0 &&
		    json_is_string(json_object_get(p, "text")))
			b = json_pack("{s:O}", "text", json_object_get(p, "text"));
		else if (t != NULL && strcmp(t, "image_url") == 0 && images)
			b = cv_image(p, mi, err, errlen);
		else {
			json_decref(blocks);
			return xl_fail(err, errlen, "messages[%zu].content[%zu]: "
			    "part type not supported here", mi, i);
		}
		if (b == NULL) {
			json_decref(blocks);
			return NULL;
		}
		json_array_append_new(blocks, b);
	}
	return blocks;
}

/* Append blocks to the last turn if it has the same role, else a turn. */
static int
cv_turn(json_t *msgs, const char *role, json_t *blocks)
{
	size_t n = json_array_size(msgs);
	json_t *last = n > 0 ? json_array_get(msgs, n - 1) : NULL;

	if (json_array_size(blocks) == 0) {
		json_decref(blocks);
		return 0;
	}
	if (last != NULL && strcmp(xl_str(last, "role"), role) == 0) {
		json_array_extend(json_object_get(last, "content"), blocks);
		json_decref(blocks);
		return 0;
	}
	return json_array_append_new(msgs, json_pack("{s:s, s:o}", "role", role,
	    "content", blocks));
}

static int
cv_messages(json_t *in, json_t *out, char *err, size_t errlen)
{
	json_t *msgs = json_array(), *system = json_array(), *m;
	json_t *ms = json_object_get(in, "messages");
	size_t i;

	if (!json_is_array(ms) || json_array_size(ms) == 0) {
		xl_fail(err, errlen, "messages must be a non-empty array");
		goto fail;
	}
	json_array_foreach(ms, i, m) {
		const char *role = xl_str(m, "role");
		json_t *b;

		if (role == NULL) {
			xl_fail(err, errlen, "messages[%zu].role is missing", i);
			goto fail;
		}
		if (strcmp(role, "system") == 0 || strcmp(role, "developer") == 0) {
			if ((b = cv_content(json_object_get(m, "content"), i, 0,
			    err, errlen)) == NULL)
				goto fail;
			json_array_extend(system, b);
			json_decref(b);
		} else if (strcmp(role, "user") == 0) {
			if ((b = cv_content(json_object_get(m, "content"), i, 1,
			    err, errlen)) == NULL || cv_turn(msgs, "user", b) != 0)
				goto fail;
		} else if (strcmp(role, "assistant") == 0) {
			json_t *calls = json_object_get(m, "tool_calls"), *tc;
			size_t k;

			if ((b = cv_content(json_object_get(m, "content"), i, 0,
			    err, errlen)) == NULL)
				goto fail;
			json_array_foreach(calls, k, tc) {
				json_t *f = json_object_get(tc, "function"), *args;
				const char *a = xl_str(f, "arguments");

				args = a == NULL || a[0] == '\0' ? json_object() :
				    json_loads(a, 0, NULL);
				if (!json_is_object(args) || xl_str(tc, "id") == NULL ||
				    xl_str(f, "name") == NULL) {
					json_decref(args);
					json_decref(b);
					xl_fail(err, errlen, "messages[%zu].tool_calls"
					    "[%zu]: needs an id, a name and object "
					    "arguments", i, k);
					goto fail;
				}
				json_array_append_new(b, json_pack("{s:{s:s, s:s, "
				    "s:o}}", "toolUse", "toolUseId", xl_str(tc, "id"),
				    "name", xl_str(f, "name"), "input", args));
			}
			if (cv_turn(msgs, "assistant", b) != 0)
				goto fail;
		} else if (strcmp(role, "tool") == 0) {
			json_t *c = json_object_get(m, "content"), *txt;

			if ((txt = cv_content(c, i, 0, err, errlen)) == NULL)
				goto fail;
			if (xl_str(m, "tool_call_id") == NULL) {
				json_decref(txt);
				xl_fail(err, errlen, "messages[%zu].tool_call_id is "
				    "missing", i);
				goto fail;
			}
			if (json_array_size(txt) == 0)
				json_array_append_new(txt, json_pack("{s:s}", "text",
				    ""));
			b = json_pack("[{s:{s:s, s:o}}]", "toolResult", "toolUseId",
			    xl_str(m, "tool_call_id"), "content", txt);
			if (b == NULL || cv_turn(msgs, "user", b) != 0)
				goto fail;
		} else {
			xl_fail(err, errlen, "messages[%zu].role '%s' is not "
			    "supported", i, role);
			goto fail;
		}
	}
	xl_set(out, "messages", msgs);
	if (json_array_size(system) > 0)
		xl_set(out, "system", system);
	else
		json_decref(system);
	return 0;
fail:
	json_decref(msgs);
	json_decref(system);
	return -1;
}

static int
cv_tools(json_t *in, json_t *out, char *err, size_t errlen)
{
	json_t *tools = json_object_get(in, "tools"), *tc, *t, *list, *cfg;
	const char *choice = xl_str(in, "tool_choice");
	size_t i;

	tc = json_object_get(in, "tool_choice");
	if (tools == NULL || json_array_size(tools) == 0 ||
	    (choice != NULL && strcmp(choice, "none") == 0))
		return 0;
	if (!json_is_array(tools)) {
		xl_fail(err, errlen, "tools must be an array");
		return -1;
	}
	list = json_array();
	json_array_foreach(tools, i, t) {
		json_t *f = json_object_get(t, "function"), *params;
		const char *name = xl_str(f, "name");

		if (xl_str(t, "type") == NULL || strcmp(xl_str(t, "type"),
		    "function") != 0 || name == NULL) {
			json_decref(list);
			xl_fail(err, errlen, "tools[%zu]: only function tools with "
			    "a name", i);
			return -1;
		}
		params = json_object_get(f, "parameters");
		params = json_is_object(params) ? json_incref(params) :
		    json_pack("{s:s}", "type", "object");
		json_array_append_new(list, json_pack("{s:{s:s, s:s?, s:{s:o}}}",
		    "toolSpec", "name", name, "description", xl_str(f,
		    "description"), "inputSchema", "json", params));
	}
	cfg = json_pack("{s:o}", "tools", list);
	if (choice != NULL && strcmp(choice, "required") == 0)
		json_object_set_new(cfg, "toolChoice", json_pack("{s:{}}", "any"));
	else if (choice != NULL && strcmp(choice, "auto") == 0)
		json_object_set_new(cfg, "toolChoice", json_pack("{s:{}}",
		    "auto"));
	else if (json_is_object(tc) && xl_str(json_object_get(tc, "function"),
	    "name") != NULL)
		json_object_set_new(cfg, "toolChoice", json_pack("{s:{s:s}}",
		    "tool", "name", xl_str(json_object_get(tc, "function"),
		    "name")));
	return xl_set(out, "toolConfig", cfg);
}

json_t *
xl_oa_cv_request(json_t *in, const char *model, int stream, char *err,
    size_t errlen)
{
	json_t *out = json_object(), *ic = json_object(), *v, *stop;
	json_int_t n;

	(void)model;		/* in the path, not the body */
	(void)stream;		/* the operation says it */
	if ((v = json_object_get(in, "n")) != NULL && !json_is_null(v) &&
	    (!json_is_integer(v) || json_integer_value(v) != 1)) {
		xl_fail(err, errlen, "n other than 1 is not supported by this "
		    "model's provider");
		goto fail;
	}
	if (cv_messages(in, out, err, errlen) != 0 ||
	    cv_tools(in, out, err, errlen) != 0)
		goto fail;
	v = json_object_get(in, "max_completion_tokens");
	if (v == NULL || json_is_null(v))
		v = json_object_get(in, "max_tokens");
	if (json_is_integer(v) && (n = json_integer_value(v)) > 0)
		json_object_set_new(ic, "maxTokens", json_integer(n));
	if (json_is_number(v = json_object_get(in, "temperature")))
		json_object_set(ic, "temperature", v);
	if (json_is_number(v = json_object_get(in, "top_p")))
		json_object_set(ic, "topP", v);
	stop = json_object_get(in, "stop");
	if (json_is_string(stop))
		json_object_set_new(ic, "stopSequences", json_pack("[O]", stop));
	else if (json_is_array(stop) && json_array_size(stop) > 0)
		json_object_set(ic, "stopSequences", stop);
	if (json_object_size(ic) > 0)
		json_object_set_new(out, "inferenceConfig", ic);
	else
		json_decref(ic);
	return out;
fail:
	json_decref(ic);
	json_decref(out);
	return NULL;
}

/* ---- response ---- */

const char *
xl_stop_cv_to_openai(const char *r)
{
	if (r == NULL || strcmp(r, "end_turn") == 0 ||
	    strcmp(r, "stop_sequence") == 0)
		return "stop";
	if (strcmp(r, "max_tokens") == 0 ||
	    strcmp(r, "model_context_window_exceeded") == 0)
		return "length";
	if (strcmp(r, "tool_use") == 0)
		return "tool_calls";
	if (strcmp(r, "content_filtered") == 0 ||
	    strcmp(r, "guardrail_intervened") == 0)
		return "content_filter";
	return "stop";
}

/* Converse usage -> Anthropic-like counts (input excludes the cache). */
static void
cv_counts(json_t *u, long long *in, long long *out, long long *rd,
    long long *wr)
{
	*in = xl_count(json_object_get(u, "inputTokens"));
	*out = xl_count(json_object_get(u, "outputTokens"));
	*rd = xl_count(json_object_get(u, "cacheReadInputTokens"));
	*wr = xl_count(json_object_get(u, "cacheWriteInputTokens"));
}

json_t *
xl_oa_cv_response(json_t *in, const char *model, char *err, size_t errlen)
{
	json_t *content = json_object_get(json_object_get(json_object_get(in,
	    "output"), "message"), "content"), *b, *calls = json_array(), *msg;
	struct xl_buf text = { NULL, 0, 0 };
	long long ui, uo, ur, uw;
	char id[64];
	size_t i;
	json_t *res;

	if (!json_is_array(content)) {
		json_decref(calls);
		return xl_fail(err, errlen, "not a Converse response");
	}
	json_array_foreach(content, i, b) {
		json_t *tu = json_object_get(b, "toolUse");
		const char *t = xl_str(b, "text");

		if (t != NULL)
			xl_buf_adds(&text, t);
		else if (json_is_object(tu)) {
			json_t *inp = json_object_get(tu, "input");
			char *args = inp != NULL ? json_dumps(inp, JSON_COMPACT |
			    JSON_ENCODE_ANY) : NULL;
			json_array_append_new(calls, json_pack("{s:s, s:s, s:{s:s, "
			    "s:s}}", "id", xl_str(tu, "toolUseId") ?
			    xl_str(tu, "toolUseId") : "", "type", "function",
			    "function", "name", xl_str(tu, "name") ? xl_str(tu,
			    "name") : "", "arguments", args ? args : "{}"));
			free(args);
		}
	}
	msg = json_pack("{s:s, s:s?}", "role", "assistant", "content",
	    text.p != NULL || json_array_size(calls) == 0 ?
	    (text.p ? text.p : "") : NULL);
	if (json_array_size(calls) > 0)
		json_object_set_new(msg, "tool_calls", calls);
	else
		json_decref(calls);
	if (json_object_get(msg, "content") == NULL)
		json_object_set_new(msg, "content", json_null());
	xl_buf_free(&text);
	cv_counts(json_object_get(in, "usage"), &ui, &uo, &ur, &uw);
	snprintf(id, sizeof(id), "chatcmpl-bedrock-%lld", (long long)time(NULL));
	res = json_pack("{s:s, s:s, s:I, s:s, s:[{s:i, s:o, s:n, s:s}], s:o}",
	    "id", id, "object", "chat.completion", "created",
	    (json_int_t)time(NULL), "model", model ? model : "", "choices",
	    "index", 0, "message", msg, "logprobs", "finish_reason",
	    xl_stop_cv_to_openai(xl_str(in, "stopReason")), "usage",
	    xl_openai_usage(ui, uo, ur, uw));
	if (res == NULL)
		return xl_fail(err, errlen, "out of memory");
	return res;
}

/* ---- stream: ConverseStream events -> OpenAI chunks ---- */

static int
start(struct xl_stream *s, struct xl_buf *out)
{
	if (s->started)
		return 0;
	s->started = 1;
	if (s->id[0] == '\0')
		snprintf(s->id, sizeof(s->id), "chatcmpl-bedrock-%lld",
		    s->created);
	return xl_openai_chunk(s, json_pack("{s:s, s:s}", "role", "assistant",
	    "content", ""), NULL, out);
}

static int
close_ok(struct xl_stream *s, struct xl_buf *out)
{
	int rc = start(s, out);

	if (rc == 0 && !s->finish_sent) {
		s->finish_sent = 1;
		rc = xl_openai_chunk(s, json_object(), s->stop ? s->stop : "stop", out);
	}
	if (rc == 0 && s->include_usage)
		rc = xl_sse(out, NULL, json_pack("{s:s, s:s, s:I, s:s, s:[], "
		    "s:o}", "id", s->id, "object", "chat.completion.chunk",
		    "created", (json_int_t)s->created, "model", s->model ?
		    s->model : "", "choices", "usage", xl_openai_usage(s->in,
		    s->out, s->cache_read, s->cache_write)));
	if (rc == 0)
		rc = xl_buf_adds(out, "data: [DONE]\n\n");
	s->done = 1;
	return rc;
}

int
xl_oa_cv_event(struct xl_stream *s, const char *name, const char *data,
    size_t len, struct xl_buf *out)
{
	json_t *j = json_loadb(data, len, 0, NULL), *v;
	int rc = 0, bi;

	if (!json_is_object(j) || name == NULL) {
		json_decref(j);
		return -1;
	}
	bi = (int)xl_count(json_object_get(j, "contentBlockIndex"));
	if (bi >= XL_MAX_BLOCKS)
		bi = XL_MAX_BLOCKS - 1;
	if (strlen(name) > 9 && strcmp(name + strlen(name) - 9,
	    "Exception") == 0) {
		const char *msg = xl_str(j, "message");

		rc = xl_stream_error(DIA_OPENAI, strstr(name, "hrottl") ?
		    "rate_limit_error" : "api_error", msg ? msg :
		    "the provider's stream failed", out);
		s->done = rc == 0;
	} else if (strcmp(name, "messageStart") == 0)
		rc = start(s, out);
	else if (strcmp(name, "contentBlockStart") == 0) {
		json_t *tu = json_object_get(json_object_get(j, "start"),
		    "toolUse");

		if ((rc = start(s, out)) == 0 && json_is_object(tu) &&
		    s->ntools < XL_MAX_BLOCKS) {
			s->kind[bi] = XK_TOOL;
			s->tool[bi] = (short)s->ntools++;
			rc = xl_openai_chunk(s, json_pack("{s:[{s:i, s:s, s:s, s:{s:s, "
			    "s:s}}]}", "tool_calls", "index", s->tool[bi], "id",
			    xl_str(tu, "toolUseId") ? xl_str(tu, "toolUseId") :
			    "", "type", "function", "function", "name",
			    xl_str(tu, "name") ? xl_str(tu, "name") : "",
			    "arguments", ""), NULL, out);
		}
	} else if (strcmp(name, "contentBlockDelta") == 0) {
		json_t *d = json_object_get(j, "delta");

		if ((rc = start(s, out)) != 0)
			;
		else if (json_is_string(v = json_object_get(d, "text")))
			rc = xl_openai_chunk(s, json_pack("{s:O}", "content", v), NULL, out);
		else if (json_is_string(v = json_object_get(json_object_get(d,
		    "toolUse"), "input")) && s->kind[bi] == XK_TOOL)
			rc = xl_openai_chunk(s, json_pack("{s:[{s:i, s:{s:O}}]}",
			    "tool_calls", "index", s->tool[bi], "function",
			    "arguments", v), NULL, out);
	} else if (strcmp(name, "messageStop") == 0) {
		s->finished = 1;
		s->stop = xl_stop_cv_to_openai(xl_str(j, "stopReason"));
		if ((rc = start(s, out)) == 0 && !s->finish_sent) {
			s->finish_sent = 1;
			rc = xl_openai_chunk(s, json_object(), s->stop, out);
		}
	} else if (strcmp(name, "metadata") == 0) {
		long long in, o, rd, wr;

		if (json_is_object(v = json_object_get(j, "usage"))) {
			cv_counts(v, &in, &o, &rd, &wr);
			s->in = in;
			s->out = o;
			s->cache_read = rd;
			s->cache_write = wr;
			s->usage_seen = 1;
		}
		if (s->finished)
			rc = close_ok(s, out);
	}
	json_decref(j);
	return rc;
}

void
xl_oa_cv_end(struct xl_stream *s, int ok, struct xl_buf *out)
{
	if (ok && s->finished)
		close_ok(s, out);
	else
		xl_stream_error(DIA_OPENAI, "api_error", "the provider's "
		    "stream ended before the answer was complete", out);
}
