/*
 * xlate/xl_cv_oa: a Bedrock Converse user, an OpenAI-dialect provider —
 * the request (Converse -> chat completions), the non-stream response
 * (chat.completion -> Converse) and the stream (chat.completion.chunk SSE
 * -> ConverseStream).  See xl.h for the mapping.
 *
 * A ConverseStream user reads AWS event-stream, not SSE: this file's
 * stream functions append whole event-stream frames (lib/evstream, valid
 * CRCs) to `out`, which the gateway writes to the user as they are.
 */
#include "xlate/xl_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/evstream.h"

/* ---- request ---- */

/* {image:{format, source:{bytes}}} -> an image_url part (data URL). */
static json_t *
oa_image(json_t *img, size_t mi, size_t bi, char *err, size_t errlen)
{
	static const char *const fmts[] = { "png", "jpeg", "gif", "webp" };
	const char *fmt = xl_str(img, "format");
	const char *bytes = xl_str(json_object_get(img, "source"), "bytes");
	struct xl_buf url = { NULL, 0, 0 };
	json_t *part;
	size_t i;

	for (i = 0; fmt != NULL && i < sizeof(fmts) / sizeof(fmts[0]); i++)
		if (strcmp(fmt, fmts[i]) == 0)
			break;
	if (fmt == NULL || i == sizeof(fmts) / sizeof(fmts[0]) ||
	    bytes == NULL)
		return xl_fail(err, errlen, "messages[%zu].content[%zu]: an "
		    "image needs a format (png, jpeg, gif, webp) and "
		    "source.bytes", mi, bi);
	if (xl_buf_adds(&url, "data:image/") == -1 ||
	    xl_buf_adds(&url, fmt) == -1 ||
	    xl_buf_adds(&url, ";base64,") == -1 ||
	    xl_buf_adds(&url, bytes) == -1) {
		xl_buf_free(&url);
		return xl_fail(err, errlen, "out of memory");
	}
	part = json_pack("{s:s, s:{s:s}}", "type", "image_url", "image_url",
	    "url", url.p);
	xl_buf_free(&url);
	return part ? part : xl_fail(err, errlen, "out of memory");
}

/* A toolResult's content -> the tool message's text: texts as they are,
 * json blocks as their JSON text, joined with "\n". */
static json_t *
oa_tool_result(json_t *tr, size_t mi, size_t bi, char *err, size_t errlen)
{
	json_t *c = json_object_get(tr, "content"), *b, *m;
	struct xl_buf t = { NULL, 0, 0 };
	const char *id = xl_str(tr, "toolUseId");
	size_t i;

	if (id == NULL || (c != NULL && !json_is_array(c)))
		return xl_fail(err, errlen, "messages[%zu].content[%zu]: a "
		    "toolResult needs a toolUseId and a content array", mi, bi);
	json_array_foreach(c, i, b) {
		const char *s = xl_str(b, "text");
		json_t *js = json_object_get(b, "json");
		char *d = NULL;

		if (s == NULL && js != NULL)
			s = d = json_dumps(js, JSON_COMPACT | JSON_ENCODE_ANY);
		if (s == NULL) {
			xl_buf_free(&t);
			return xl_fail(err, errlen, "messages[%zu].content[%zu]."
			    "content[%zu]: only text and json results", mi, bi,
			    i);
		}
		if ((t.len > 0 && xl_buf_adds(&t, "\n") == -1) ||
		    xl_buf_adds(&t, s) == -1) {
			free(d);
			xl_buf_free(&t);
			return xl_fail(err, errlen, "out of memory");
		}
		free(d);
	}
	m = json_pack("{s:s, s:s, s:s}", "role", "tool", "tool_call_id", id,
	    "content", t.p ? t.p : "");
	xl_buf_free(&t);
	return m ? m : xl_fail(err, errlen, "out of memory");
}

/* parts of a user turn: one text part -> a string. */
static json_t *
oa_user_content(json_t *parts)
{
	json_t *p0 = json_array_get(parts, 0);

	if (json_array_size(parts) == 1 &&
	    strcmp(xl_str(p0, "type"), "text") == 0) {
		json_t *s = json_incref(json_object_get(p0, "text"));
		json_decref(parts);
		return s;
	}
	return parts;
}

/* One Converse message -> OpenAI messages appended to msgs. */
static int
oa_message(json_t *m, size_t mi, json_t *msgs, char *err, size_t errlen)
{
	const char *role = xl_str(m, "role");
	json_t *c = json_object_get(m, "content"), *b;
	json_t *parts = json_array(), *calls = json_array();
	struct xl_buf text = { NULL, 0, 0 };
	int user, rc = -1;
	size_t i;

	if (role == NULL || (strcmp(role, "user") != 0 &&
	    strcmp(role, "assistant") != 0)) {
		xl_fail(err, errlen, "messages[%zu].role must be user or "
		    "assistant", mi);
		goto out;
	}
	if (!json_is_array(c)) {
		xl_fail(err, errlen, "messages[%zu].content must be an array",
		    mi);
		goto out;
	}
	user = role[0] == 'u';
	json_array_foreach(c, i, b) {
		const char *t = xl_str(b, "text");
		json_t *v;

		if (!json_is_object(b)) {
			xl_fail(err, errlen, "messages[%zu].content[%zu] must be "
			    "an object", mi, i);
			goto out;
		}
		if (t != NULL) {
			if (user)
				json_array_append_new(parts, json_pack("{s:s, s:s}",
				    "type", "text", "text", t));
			else if (xl_buf_adds(&text, t) == -1)
				goto oom;
		} else if (user && json_is_object(v = json_object_get(b,
		    "image"))) {
			json_t *p = oa_image(v, mi, i, err, errlen);
			if (p == NULL)
				goto out;
			json_array_append_new(parts, p);
		} else if (user && json_is_object(v = json_object_get(b,
		    "toolResult"))) {
			/* tool messages answer the assistant turn before:
			 * they go before the rest of this turn */
			json_t *tm = oa_tool_result(v, mi, i, err, errlen);
			if (tm == NULL)
				goto out;
			json_array_append_new(msgs, tm);
		} else if (!user && json_is_object(v = json_object_get(b,
		    "toolUse"))) {
			json_t *inp = json_object_get(v, "input");
			char *args;

			if (xl_str(v, "toolUseId") == NULL ||
			    xl_str(v, "name") == NULL) {
				xl_fail(err, errlen, "messages[%zu].content[%zu]: a "
				    "toolUse needs a toolUseId and a name", mi, i);
				goto out;
			}
			/* no input: no arguments, "{}" */
			args = inp != NULL ? json_dumps(inp, JSON_COMPACT |
			    JSON_ENCODE_ANY) : strdup("{}");
			if (args == NULL)
				goto oom;
			json_array_append_new(calls, json_pack("{s:s, s:s, "
			    "s:{s:s, s:s}}", "id", xl_str(v, "toolUseId"), "type",
			    "function", "function", "name", xl_str(v, "name"),
			    "arguments", args));
			free(args);
		} else if (json_object_get(b, "cachePoint") != NULL ||
		    json_object_get(b, "reasoningContent") != NULL) {
			;	/* no equivalent; harmless to drop */
		} else {
			xl_fail(err, errlen, "messages[%zu].content[%zu]: block "
			    "type not supported by this model's provider", mi, i);
			goto out;
		}
	}
	if (user) {
		if (json_array_size(parts) > 0) {
			json_array_append_new(msgs, json_pack("{s:s, s:o}", "role",
			    "user", "content", oa_user_content(parts)));
			parts = NULL;
		}
	} else if (text.p != NULL || json_array_size(calls) > 0) {
		json_t *am = json_pack("{s:s}", "role", "assistant");

		json_object_set_new(am, "content", text.p ? json_string(text.p) :
		    json_null());
		if (json_array_size(calls) > 0)
			json_object_set(am, "tool_calls", calls);
		json_array_append_new(msgs, am);
	}
	rc = 0;
	goto out;
oom:
	xl_fail(err, errlen, "out of memory");
out:
	json_decref(parts);
	json_decref(calls);
	xl_buf_free(&text);
	return rc;
}

static int
oa_tools(json_t *in, json_t *out, char *err, size_t errlen)
{
	json_t *tc = json_object_get(in, "toolConfig"), *tools, *t, *list, *ch;
	size_t i;

	if (tc == NULL || json_is_null(tc))
		return 0;
	tools = json_object_get(tc, "tools");
	if (!json_is_object(tc) || (tools != NULL && !json_is_array(tools))) {
		xl_fail(err, errlen, "toolConfig.tools must be an array");
		return -1;
	}
	if (json_array_size(tools) == 0)
		return 0;
	list = json_array();
	json_array_foreach(tools, i, t) {
		json_t *spec = json_object_get(t, "toolSpec"), *schema;
		const char *name = xl_str(spec, "name");

		if (json_object_get(t, "cachePoint") != NULL)
			continue;
		if (name == NULL) {
			json_decref(list);
			xl_fail(err, errlen, "toolConfig.tools[%zu]: only toolSpec "
			    "tools with a name", i);
			return -1;
		}
		schema = json_object_get(json_object_get(spec, "inputSchema"),
		    "json");
		schema = json_is_object(schema) ? json_incref(schema) :
		    json_pack("{s:s, s:{}}", "type", "object", "properties");
		json_array_append_new(list, json_pack("{s:s, s:{s:s, s:s*, "
		    "s:o}}", "type", "function", "function", "name", name,
		    "description", xl_str(spec, "description"), "parameters",
		    schema));
	}
	json_object_set_new(out, "tools", list);
	ch = json_object_get(tc, "toolChoice");
	if (ch == NULL || json_is_null(ch))
		return 0;
	if (json_object_get(ch, "auto") != NULL)
		json_object_set_new(out, "tool_choice", json_string("auto"));
	else if (json_object_get(ch, "any") != NULL)
		json_object_set_new(out, "tool_choice", json_string("required"));
	else if (xl_str(json_object_get(ch, "tool"), "name") != NULL)
		json_object_set_new(out, "tool_choice", json_pack("{s:s, s:{s:s}}",
		    "type", "function", "function", "name",
		    xl_str(json_object_get(ch, "tool"), "name")));
	else {
		xl_fail(err, errlen, "toolConfig.toolChoice must be auto, any "
		    "or tool {name}");
		return -1;
	}
	return 0;
}

json_t *
xl_cv_oa_request(json_t *in, const char *model, int stream, char *err,
    size_t errlen)
{
	json_t *out = json_object(), *msgs = json_array(), *sys, *ms, *m, *v;
	json_t *ic = json_object_get(in, "inferenceConfig");
	struct xl_buf st = { NULL, 0, 0 };
	size_t i;

	if (out == NULL || msgs == NULL)
		goto oom;
	if (model != NULL)
		json_object_set_new(out, "model", json_string(model));
	sys = json_object_get(in, "system");
	if (sys != NULL && !json_is_array(sys)) {
		xl_fail(err, errlen, "system must be an array");
		goto fail;
	}
	json_array_foreach(sys, i, m) {
		const char *t = xl_str(m, "text");

		if (t == NULL)		/* cachePoint, guardContent */
			continue;
		if ((st.len > 0 && xl_buf_adds(&st, "\n") == -1) ||
		    xl_buf_adds(&st, t) == -1)
			goto oom;
	}
	if (st.p != NULL)
		json_array_append_new(msgs, json_pack("{s:s, s:s}", "role",
		    "system", "content", st.p));
	ms = json_object_get(in, "messages");
	if (!json_is_array(ms) || json_array_size(ms) == 0) {
		xl_fail(err, errlen, "messages must be a non-empty array");
		goto fail;
	}
	json_array_foreach(ms, i, m)
		if (oa_message(m, i, msgs, err, errlen) != 0)
			goto fail;
	json_object_set(out, "messages", msgs);
	if (ic != NULL && !json_is_null(ic) && !json_is_object(ic)) {
		xl_fail(err, errlen, "inferenceConfig must be an object");
		goto fail;
	}
	if ((v = json_object_get(ic, "maxTokens")) != NULL) {
		if (!json_is_integer(v) || json_integer_value(v) < 1) {
			xl_fail(err, errlen, "inferenceConfig.maxTokens must be a "
			    "positive integer");
			goto fail;
		}
		json_object_set(out, "max_tokens", v);
	}
	if (json_is_number(v = json_object_get(ic, "temperature")))
		json_object_set(out, "temperature", v);
	if (json_is_number(v = json_object_get(ic, "topP")))
		json_object_set(out, "top_p", v);
	if ((v = json_object_get(ic, "stopSequences")) != NULL &&
	    json_array_size(v) > 0) {
		size_t k;
		json_t *s;

		json_array_foreach(v, k, s)
			if (!json_is_string(s)) {
				xl_fail(err, errlen, "inferenceConfig."
				    "stopSequences must be strings");
				goto fail;
			}
		json_object_set(out, "stop", v);
	}
	if (oa_tools(in, out, err, errlen) != 0)
		goto fail;
	if (stream) {
		json_object_set_new(out, "stream", json_true());
		json_object_set_new(out, "stream_options", json_pack("{s:b}",
		    "include_usage", 1));
	}
	json_decref(msgs);
	xl_buf_free(&st);
	return out;
oom:
	xl_fail(err, errlen, "out of memory");
fail:
	json_decref(msgs);
	json_decref(out);
	xl_buf_free(&st);
	return NULL;
}

/* ---- response ---- */

static const char *
stop_of(const char *finish)
{
	if (finish == NULL || strcmp(finish, "stop") == 0)
		return "end_turn";
	if (strcmp(finish, "length") == 0)
		return "max_tokens";
	if (strcmp(finish, "tool_calls") == 0 ||
	    strcmp(finish, "function_call") == 0)
		return "tool_use";
	if (strcmp(finish, "content_filter") == 0)
		return "content_filtered";
	return "end_turn";
}

/* OpenAI usage -> Converse usage: inputTokens exclude the cache reads. */
struct cv_usage {
	long long prompt, completion, cached;
};

static void
usage_read(json_t *u, struct cv_usage *c)
{
	json_t *cached = json_object_get(json_object_get(u,
	    "prompt_tokens_details"), "cached_tokens");

	if (cached == NULL || json_is_null(cached))	/* DeepSeek */
		cached = json_object_get(u, "prompt_cache_hit_tokens");
	c->prompt = xl_count(json_object_get(u, "prompt_tokens"));
	c->completion = xl_count(json_object_get(u, "completion_tokens"));
	c->cached = xl_count(cached);
	if (c->cached > c->prompt)
		c->cached = c->prompt;
}

static json_t *
usage_json(const struct cv_usage *c)
{
	json_t *u = json_pack("{s:I, s:I, s:I}", "inputTokens",
	    (json_int_t)(c->prompt - c->cached), "outputTokens",
	    (json_int_t)c->completion, "totalTokens",
	    (json_int_t)(c->prompt + c->completion));

	if (u != NULL && c->cached > 0)
		json_object_set_new(u, "cacheReadInputTokens",
		    json_integer(c->cached));
	return u;
}

json_t *
xl_cv_oa_response(json_t *in, const char *model, char *err, size_t errlen)
{
	json_t *ch = json_array_get(json_object_get(in, "choices"), 0);
	json_t *msg = json_object_get(ch, "message"), *calls, *tc, *blocks;
	struct cv_usage u = { 0, 0, 0 };
	const char *s;
	size_t i;

	(void)model;
	if (!json_is_object(msg))
		return xl_fail(err, errlen, "not a chat completion");
	if ((blocks = json_array()) == NULL)
		return xl_fail(err, errlen, "out of memory");
	if ((s = xl_str(msg, "content")) != NULL && s[0] != '\0')
		json_array_append_new(blocks, json_pack("{s:s}", "text", s));
	if ((s = xl_str(msg, "refusal")) != NULL && s[0] != '\0')
		json_array_append_new(blocks, json_pack("{s:s}", "text", s));
	calls = json_object_get(msg, "tool_calls");
	json_array_foreach(calls, i, tc) {
		json_t *f = json_object_get(tc, "function"), *args;
		const char *a = xl_str(f, "arguments");

		args = a != NULL ? json_loads(a, JSON_DECODE_ANY, NULL) : NULL;
		if (!json_is_object(args)) {
			json_decref(args);
			args = json_object();
		}
		json_array_append_new(blocks, json_pack("{s:{s:s, s:s, s:o}}",
		    "toolUse", "toolUseId", xl_str(tc, "id") ? xl_str(tc, "id") :
		    "", "name", xl_str(f, "name") ? xl_str(f, "name") : "",
		    "input", args));
	}
	if (json_array_size(blocks) == 0)
		json_array_append_new(blocks, json_pack("{s:s}", "text", ""));
	usage_read(json_object_get(in, "usage"), &u);
	return json_pack("{s:{s:{s:s, s:o}}, s:s, s:o, s:{s:i}}", "output",
	    "message", "role", "assistant", "content", blocks, "stopReason",
	    stop_of(xl_str(ch, "finish_reason")), "usage", usage_json(&u),
	    "metrics", "latencyMs", 0);
}

/* ---- stream: chat.completion.chunk SSE -> ConverseStream frames ---- */

/* The pair's stream state (s->priv). */
struct cv_state {
	int	 block;		/* index of the open block, -1: none */
	int	 nblocks;	/* blocks started */
	int	 tool_open;	/* the open block is a tool call */
	int	 cur;		/* OpenAI index of the open tool call */
	int	 stop_sent;	/* messageStop sent */
	struct cv_usage u;
	int	 usage_seen;
	/* OpenAI tool index -> block index + 1 (0: not started) */
	int	 tblock[XL_MAX_BLOCKS];
};

/* One event-stream frame; steals o. */
static int
frame(struct xl_buf *out, const char *name, int exception, json_t *o)
{
	char *p = o ? json_dumps(o, JSON_COMPACT | JSON_REAL_PRECISION(15)) :
	    NULL;
	unsigned char *f = NULL;
	size_t n;
	int rc = -1;

	json_decref(o);
	if (p == NULL)
		return -1;
	n = evs_encode_event(NULL, 0, name, exception, p, strlen(p));
	if (n > 0 && (f = malloc(n)) != NULL &&
	    evs_encode_event(f, n, name, exception, p, strlen(p)) == n)
		rc = xl_buf_add(out, f, n);
	free(f);
	free(p);
	return rc;
}

static int
exception(struct xl_stream *s, const char *name, const char *msg,
    struct xl_buf *out)
{
	s->done = 1;
	return frame(out, name, 1, json_pack("{s:s}", "message", msg));
}

static struct cv_state *
state(struct xl_stream *s)
{
	struct cv_state *st = s->priv;

	if (st == NULL) {
		if ((st = calloc(1, sizeof(*st))) == NULL)
			return NULL;
		st->block = -1;
		st->cur = -1;
		s->priv = st;
		s->priv_free = free;
	}
	return st;
}

static int
start(struct xl_stream *s, struct xl_buf *out)
{
	if (s->started)
		return 0;
	s->started = 1;
	return frame(out, "messageStart", 0, json_pack("{s:s}", "role",
	    "assistant"));
}

static int
close_block(struct cv_state *st, struct xl_buf *out)
{
	int b = st->block;

	if (b < 0)
		return 0;
	st->block = -1;
	st->tool_open = 0;
	return frame(out, "contentBlockStop", 0, json_pack("{s:i}",
	    "contentBlockIndex", b));
}

static int
text_delta(struct cv_state *st, json_t *v, struct xl_buf *out)
{
	if (json_string_length(v) == 0)
		return 0;
	if (st->tool_open && close_block(st, out) != 0)
		return -1;
	if (st->block < 0) {
		if (st->nblocks >= XL_MAX_BLOCKS)
			return 0;
		st->block = st->nblocks++;
	}
	return frame(out, "contentBlockDelta", 0, json_pack("{s:i, s:{s:O}}",
	    "contentBlockIndex", st->block, "delta", "text", v));
}

static int
tool_delta(struct cv_state *st, json_t *tc, struct xl_buf *out)
{
	json_t *f = json_object_get(tc, "function"), *iv;
	const char *args = xl_str(f, "arguments");
	int idx, b;

	iv = json_object_get(tc, "index");
	if (json_is_integer(iv))
		idx = (int)xl_count(iv);
	else	/* no index: a new call when it has an id */
		idx = xl_str(tc, "id") != NULL || st->cur < 0 ? st->cur + 1 :
		    st->cur;
	if (idx < 0 || idx >= XL_MAX_BLOCKS)
		return 0;
	if (st->tblock[idx] == 0) {
		if (st->nblocks >= XL_MAX_BLOCKS || close_block(st, out) != 0)
			return st->nblocks >= XL_MAX_BLOCKS ? 0 : -1;
		st->block = st->nblocks++;
		st->tool_open = 1;
		st->tblock[idx] = st->block + 1;
		st->cur = idx;
		if (frame(out, "contentBlockStart", 0, json_pack("{s:i, "
		    "s:{s:{s:s, s:s}}}", "contentBlockIndex", st->block,
		    "start", "toolUse", "toolUseId", xl_str(tc, "id") ?
		    xl_str(tc, "id") : "", "name", xl_str(f, "name") ?
		    xl_str(f, "name") : "")) != 0)
			return -1;
	}
	b = st->tblock[idx] - 1;
	if (args == NULL || args[0] == '\0')
		return 0;
	return frame(out, "contentBlockDelta", 0, json_pack("{s:i, "
	    "s:{s:{s:s}}}", "contentBlockIndex", b, "delta", "toolUse",
	    "input", args));
}

static int
stop(struct xl_stream *s, struct cv_state *st, struct xl_buf *out)
{
	if (st->stop_sent)
		return 0;
	st->stop_sent = 1;
	if (start(s, out) != 0 || close_block(st, out) != 0)
		return -1;
	return frame(out, "messageStop", 0, json_pack("{s:s}", "stopReason",
	    s->stop ? s->stop : "end_turn"));
}

/* The normal ending: messageStop if not sent, then metadata. */
static int
close_ok(struct xl_stream *s, struct cv_state *st, struct xl_buf *out)
{
	int rc = stop(s, st, out);

	if (rc == 0)
		rc = frame(out, "metadata", 0, json_pack("{s:o, s:{s:i}}",
		    "usage", usage_json(&st->u), "metrics", "latencyMs", 0));
	s->done = 1;
	return rc;
}

int
xl_cv_oa_event(struct xl_stream *s, const char *name, const char *data,
    size_t len, struct xl_buf *out)
{
	struct cv_state *st = state(s);
	json_t *j, *chs, *c, *d, *v, *tc;
	const char *fin;
	size_t i;
	int rc = 0;

	(void)name;
	if (st == NULL)
		return -1;
	if (len == 6 && memcmp(data, "[DONE]", 6) == 0) {
		if (s->finished)
			return close_ok(s, st, out);
		return exception(s, "modelStreamErrorException", "the "
		    "provider's stream ended before the answer was complete",
		    out);
	}
	j = json_loadb(data, len, 0, NULL);
	if (!json_is_object(j)) {
		json_decref(j);
		return -1;
	}
	if ((v = json_object_get(j, "error")) != NULL && !json_is_null(v)) {
		const char *msg = xl_str(v, "message");
		const char *t = xl_str(v, "type");

		if (msg == NULL)
			msg = json_is_string(v) ? json_string_value(v) :
			    "provider stream error";
		rc = exception(s, t != NULL && strstr(t, "rate") != NULL ?
		    "throttlingException" : "modelStreamErrorException", msg,
		    out);
		json_decref(j);
		return rc;
	}
	if (json_is_object(v = json_object_get(j, "usage"))) {
		usage_read(v, &st->u);
		st->usage_seen = 1;
	}
	chs = json_object_get(j, "choices");
	c = json_array_get(chs, 0);
	if (json_is_object(c) && xl_count(json_object_get(c, "index")) == 0) {
		d = json_object_get(c, "delta");
		rc = start(s, out);
		if (rc == 0 && !st->stop_sent) {
			if (json_is_string(v = json_object_get(d, "content")))
				rc = text_delta(st, v, out);
			if (rc == 0 && json_is_string(v = json_object_get(d,
			    "refusal")))
				rc = text_delta(st, v, out);
			json_array_foreach(json_object_get(d, "tool_calls"), i,
			    tc) {
				if (rc != 0)
					break;
				rc = tool_delta(st, tc, out);
			}
		}
		if (rc == 0 && (fin = xl_str(c, "finish_reason")) != NULL) {
			s->finished = 1;
			s->stop = stop_of(fin);
			rc = stop(s, st, out);
		}
	}
	json_decref(j);
	return rc;
}

void
xl_cv_oa_end(struct xl_stream *s, int ok, struct xl_buf *out)
{
	struct cv_state *st = state(s);

	if (st != NULL && ok && s->finished)
		(void)close_ok(s, st, out);
	else
		(void)exception(s, "modelStreamErrorException", "the provider's "
		    "stream ended before the answer was complete", out);
}
