/*
 * xlate/xl_an_oa: an Anthropic Messages user served by an OpenAI chat
 * completions provider (or a compatible one).  The request goes Anthropic
 * -> OpenAI; the response, its stream chunks and its usage come back
 * OpenAI -> Anthropic.  The rules are listed in xl.h.
 */
#include "xlate/xl_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- request ---- */

/* Texts of a string or an array of text blocks, joined with sep.  NULL
 * (err set) when a block is not text. */
static json_t *
join_text(json_t *c, const char *sep, const char *what, char *err,
    size_t errlen)
{
	struct xl_buf b = { 0 };
	json_t *blk, *t, *res;
	size_t i;

	if (json_is_string(c))
		return json_incref(c);
	if (c == NULL || json_is_null(c))
		return json_string("");
	if (!json_is_array(c))
		return xl_fail(err, errlen, "%s must be a string or an array "
		    "of text blocks", what);
	json_array_foreach(c, i, blk) {
		const char *bt = xl_str(blk, "type");

		t = json_object_get(blk, "text");
		if (bt == NULL || strcmp(bt, "text") != 0 ||
		    !json_is_string(t)) {
			xl_buf_free(&b);
			return xl_fail(err, errlen, "%s[%zu]: only text can be "
			    "served by this model's provider here", what, i);
		}
		if ((i > 0 && xl_buf_adds(&b, sep) == -1) ||
		    xl_buf_add(&b, json_string_value(t),
		    json_string_length(t)) == -1) {
			xl_buf_free(&b);
			return xl_fail(err, errlen, "out of memory");
		}
	}
	res = json_stringn(b.p ? b.p : "", b.len);
	xl_buf_free(&b);
	return res;
}

/* image source base64 -> a data URL, url -> the URL. */
static json_t *
image_part(json_t *blk, size_t mi, size_t bi, char *err, size_t errlen)
{
	json_t *src = json_object_get(blk, "source"), *res;
	const char *st = xl_str(src, "type");
	json_t *mt = json_object_get(src, "media_type");
	json_t *data = json_object_get(src, "data");
	struct xl_buf b = { 0 };

	if (st != NULL && strcmp(st, "url") == 0 &&
	    json_is_string(json_object_get(src, "url")))
		return json_pack("{s:s, s:{s:O}}", "type", "image_url",
		    "image_url", "url", json_object_get(src, "url"));
	if (st == NULL || strcmp(st, "base64") != 0 || !json_is_string(mt) ||
	    !json_is_string(data))
		return xl_fail(err, errlen, "messages[%zu].content[%zu]: only "
		    "base64 and url image sources can be served by this "
		    "model's provider", mi, bi);
	if (xl_buf_adds(&b, "data:") == -1 || xl_buf_add(&b,
	    json_string_value(mt), json_string_length(mt)) == -1 ||
	    xl_buf_adds(&b, ";base64,") == -1 || xl_buf_add(&b,
	    json_string_value(data), json_string_length(data)) == -1) {
		xl_buf_free(&b);
		return xl_fail(err, errlen, "out of memory");
	}
	res = json_pack("{s:s, s:{s:s%}}", "type", "image_url", "image_url",
	    "url", b.p, b.len);
	xl_buf_free(&b);
	return res;
}

/* A user turn: tool results become tool messages first, the rest one
 * user message (a string when it is one text). */
static int
user_turn(json_t *c, size_t mi, json_t *msgs, char *err, size_t errlen)
{
	json_t *parts, *blk, *p, *t;
	size_t i;

	if (json_is_string(c)) {
		json_array_append_new(msgs, json_pack("{s:s, s:O}", "role",
		    "user", "content", c));
		return 0;
	}
	if (!json_is_array(c)) {
		xl_fail(err, errlen, "messages[%zu].content must be a string "
		    "or an array", mi);
		return -1;
	}
	parts = json_array();
	json_array_foreach(c, i, blk) {
		const char *bt = xl_str(blk, "type");

		t = json_object_get(blk, "text");
		p = NULL;
		if (bt != NULL && strcmp(bt, "text") == 0 &&
		    json_is_string(t)) {
			p = json_pack("{s:s, s:O}", "type", "text", "text", t);
		} else if (bt != NULL && strcmp(bt, "image") == 0) {
			if ((p = image_part(blk, mi, i, err, errlen)) == NULL)
				goto fail;
		} else if (bt != NULL && strcmp(bt, "tool_result") == 0) {
			json_t *id = json_object_get(blk, "tool_use_id");
			char what[96];

			snprintf(what, sizeof(what), "messages[%zu].content"
			    "[%zu].content", mi, i);
			if (!json_is_string(id)) {
				xl_fail(err, errlen, "messages[%zu].content"
				    "[%zu].tool_use_id must be a string", mi,
				    i);
				goto fail;
			}
			if ((t = join_text(json_object_get(blk, "content"),
			    "\n\n", what, err, errlen)) == NULL)
				goto fail;
			json_array_append_new(msgs, json_pack("{s:s, s:O, "
			    "s:o}", "role", "tool", "tool_call_id", id,
			    "content", t));
			continue;
		} else {
			xl_fail(err, errlen, "messages[%zu].content[%zu]: "
			    "block type %s cannot be served by this model's "
			    "provider", mi, i, bt ? bt : "(none)");
			goto fail;
		}
		json_array_append_new(parts, p);
	}
	if (json_array_size(parts) == 1 && json_is_string(t =
	    json_object_get(json_array_get(parts, 0), "text")))
		json_array_append_new(msgs, json_pack("{s:s, s:O}", "role",
		    "user", "content", t));
	else if (json_array_size(parts) > 0 || json_array_size(c) == 0)
		json_array_append_new(msgs, json_pack("{s:s, s:O}", "role",
		    "user", "content", parts));
	json_decref(parts);
	return 0;
fail:
	json_decref(parts);
	return -1;
}

static int
assistant_turn(json_t *c, size_t mi, json_t *msgs, char *err, size_t errlen)
{
	struct xl_buf text = { 0 };
	json_t *calls, *blk, *m;
	int has_text = 0;
	size_t i;

	if (json_is_string(c)) {
		json_array_append_new(msgs, json_pack("{s:s, s:O}", "role",
		    "assistant", "content", c));
		return 0;
	}
	if (!json_is_array(c)) {
		xl_fail(err, errlen, "messages[%zu].content must be a string "
		    "or an array", mi);
		return -1;
	}
	calls = json_array();
	json_array_foreach(c, i, blk) {
		const char *bt = xl_str(blk, "type");
		json_t *t = json_object_get(blk, "text");

		if (bt != NULL && strcmp(bt, "text") == 0 &&
		    json_is_string(t)) {
			xl_buf_add(&text, json_string_value(t),
			    json_string_length(t));
			has_text = 1;
		} else if (bt != NULL && strcmp(bt, "tool_use") == 0) {
			json_t *id = json_object_get(blk, "id");
			json_t *name = json_object_get(blk, "name");
			json_t *input = json_object_get(blk, "input");
			char *args;

			if (!json_is_string(id) || !json_is_string(name)) {
				xl_fail(err, errlen, "messages[%zu].content"
				    "[%zu]: tool_use needs an id and a name",
				    mi, i);
				goto fail;
			}
			args = json_dumps(input ? input : json_null(),
			    JSON_COMPACT | JSON_REAL_PRECISION(15) |
			    JSON_ENCODE_ANY);
			json_array_append_new(calls, json_pack(
			    "{s:O, s:s, s:{s:O, s:s}}", "id", id, "type",
			    "function", "function", "name", name, "arguments",
			    args && input ? args : "{}"));
			free(args);
		} else if (bt != NULL && (strcmp(bt, "thinking") == 0 ||
		    strcmp(bt, "redacted_thinking") == 0)) {
			continue;
		} else {
			xl_fail(err, errlen, "messages[%zu].content[%zu]: "
			    "block type %s cannot be served by this model's "
			    "provider", mi, i, bt ? bt : "(none)");
			goto fail;
		}
	}
	m = json_pack("{s:s}", "role", "assistant");
	if (has_text || json_array_size(calls) == 0)
		xl_set(m, "content", json_stringn(text.p ? text.p : "",
		    text.len));
	else
		json_object_set_new(m, "content", json_null());
	if (json_array_size(calls) > 0)
		json_object_set(m, "tool_calls", calls);
	json_array_append_new(msgs, m);
	json_decref(calls);
	xl_buf_free(&text);
	return 0;
fail:
	json_decref(calls);
	xl_buf_free(&text);
	return -1;
}

static int
an_messages(json_t *in, json_t *out, char *err, size_t errlen)
{
	json_t *ms = json_object_get(in, "messages"), *m, *sys;
	json_t *msgs = json_array();
	size_t i;

	if (!json_is_array(ms)) {
		xl_fail(err, errlen, "messages must be an array");
		goto fail;
	}
	sys = json_object_get(in, "system");
	if (sys != NULL && !json_is_null(sys)) {
		if ((sys = join_text(sys, "\n\n", "system", err, errlen)) ==
		    NULL)
			goto fail;
		json_array_append_new(msgs, json_pack("{s:s, s:o}", "role",
		    "system", "content", sys));
	}
	json_array_foreach(ms, i, m) {
		const char *role = xl_str(m, "role");
		json_t *c = json_object_get(m, "content");
		int rc;

		if (role != NULL && strcmp(role, "user") == 0)
			rc = user_turn(c, i, msgs, err, errlen);
		else if (role != NULL && strcmp(role, "assistant") == 0)
			rc = assistant_turn(c, i, msgs, err, errlen);
		else {
			xl_fail(err, errlen, "messages[%zu].role must be user "
			    "or assistant", i);
			rc = -1;
		}
		if (rc == -1)
			goto fail;
	}
	json_object_set_new(out, "messages", msgs);
	return 0;
fail:
	json_decref(msgs);
	return -1;
}

static int
an_tools(json_t *in, json_t *out, char *err, size_t errlen)
{
	json_t *tools = json_object_get(in, "tools"), *t, *res, *fn;
	json_t *tc = json_object_get(in, "tool_choice");
	const char *tct = xl_str(tc, "type");
	size_t i;

	if (tools != NULL && !json_is_null(tools)) {
		if (!json_is_array(tools)) {
			xl_fail(err, errlen, "tools must be an array");
			return -1;
		}
		res = json_array();
		json_array_foreach(tools, i, t) {
			json_t *name = json_object_get(t, "name");
			json_t *schema = json_object_get(t, "input_schema");
			json_t *desc = json_object_get(t, "description");
			const char *type = xl_str(t, "type");

			if ((type != NULL && strcmp(type, "custom") != 0) ||
			    !json_is_string(name) || !json_is_object(schema)) {
				json_decref(res);
				xl_fail(err, errlen, "tools[%zu]: only custom "
				    "tools with a name and an input_schema can "
				    "be served by this model's provider", i);
				return -1;
			}
			fn = json_pack("{s:O}", "name", name);
			if (json_is_string(desc))
				json_object_set(fn, "description", desc);
			json_object_set(fn, "parameters", schema);
			json_array_append_new(res, json_pack("{s:s, s:o}",
			    "type", "function", "function", fn));
		}
		json_object_set_new(out, "tools", res);
	}
	if (tc == NULL || json_is_null(tc))
		return 0;
	if (tct != NULL && (strcmp(tct, "auto") == 0 ||
	    strcmp(tct, "none") == 0))
		json_object_set_new(out, "tool_choice", json_string(tct));
	else if (tct != NULL && strcmp(tct, "any") == 0)
		json_object_set_new(out, "tool_choice", json_string(
		    "required"));
	else if (tct != NULL && strcmp(tct, "tool") == 0 &&
	    json_is_string(json_object_get(tc, "name")))
		xl_set(out, "tool_choice", json_pack("{s:s, s:{s:O}}", "type",
		    "function", "function", "name", json_object_get(tc,
		    "name")));
	else {
		xl_fail(err, errlen, "tool_choice.type must be auto, any, tool "
		    "or none");
		return -1;
	}
	if (json_is_true(json_object_get(tc, "disable_parallel_tool_use")) &&
	    strcmp(tct, "none") != 0)
		json_object_set_new(out, "parallel_tool_calls", json_false());
	return 0;
}

json_t *
xl_an_oa_request(json_t *in, const char *model, int stream, char *err,
    size_t errlen)
{
	json_t *out, *m = json_object_get(in, "model"), *v, *s;
	json_t *uid = json_object_get(json_object_get(in, "metadata"),
	    "user_id");
	static const char *const nums[] = { "temperature", "top_p" };
	size_t i;

	if (model == NULL && !json_is_string(m))
		return xl_fail(err, errlen, "model must be a string");
	if ((out = json_object()) == NULL)
		return xl_fail(err, errlen, "out of memory");
	if (model != NULL)
		json_object_set_new(out, "model", json_string(model));
	else
		json_object_set(out, "model", m);
	if (an_messages(in, out, err, errlen) == -1 ||
	    an_tools(in, out, err, errlen) == -1)
		goto fail;
	v = json_object_get(in, "max_tokens");
	if (json_is_integer(v))
		json_object_set(out, "max_tokens", v);
	else if (v != NULL && !json_is_null(v)) {
		xl_fail(err, errlen, "max_tokens must be an integer");
		goto fail;
	}
	for (i = 0; i < 2; i++) {
		v = json_object_get(in, nums[i]);
		if (json_is_number(v))
			json_object_set(out, nums[i], v);
		else if (v != NULL && !json_is_null(v)) {
			xl_fail(err, errlen, "%s must be a number", nums[i]);
			goto fail;
		}
	}
	v = json_object_get(in, "stop_sequences");
	if (json_is_array(v) && json_array_size(v) > 0) {
		json_array_foreach(v, i, s)
			if (!json_is_string(s)) {
				xl_fail(err, errlen, "stop_sequences must be "
				    "strings");
				goto fail;
			}
		json_object_set(out, "stop", v);
	} else if (v != NULL && !json_is_null(v) && !json_is_array(v)) {
		xl_fail(err, errlen, "stop_sequences must be an array");
		goto fail;
	}
	if (json_is_string(uid))
		json_object_set(out, "user", uid);
	if (stream) {
		json_object_set_new(out, "stream", json_true());
		xl_set(out, "stream_options", json_pack("{s:b}",
		    "include_usage", 1));
	}
	return out;
fail:
	json_decref(out);
	return NULL;
}

/* ---- response ---- */

/* OpenAI usage -> the stream's Anthropic counts. */
static void
read_usage(struct xl_stream *s, json_t *u)
{
	json_t *cached = json_object_get(json_object_get(u,
	    "prompt_tokens_details"), "cached_tokens");
	long long prompt = xl_count(json_object_get(u, "prompt_tokens"));

	if (cached == NULL || json_is_null(cached))	/* DeepSeek */
		cached = json_object_get(u, "prompt_cache_hit_tokens");
	s->cache_read = xl_count(cached);
	if (s->cache_read > prompt)
		s->cache_read = prompt;
	s->in = prompt - s->cache_read;
	s->cache_write = 0;
	s->out = xl_count(json_object_get(u, "completion_tokens"));
	s->usage_seen = 1;
}

static json_t *
an_usage(const struct xl_stream *s)
{
	return json_pack("{s:I, s:I, s:I, s:I}",
	    "input_tokens", (json_int_t)s->in,
	    "cache_creation_input_tokens", (json_int_t)s->cache_write,
	    "cache_read_input_tokens", (json_int_t)s->cache_read,
	    "output_tokens", (json_int_t)s->out);
}

json_t *
xl_an_oa_response(json_t *in, const char *model, char *err, size_t errlen)
{
	json_t *ch = json_array_get(json_object_get(in, "choices"), 0);
	json_t *msg = json_object_get(ch, "message"), *content, *v, *tc;
	json_t *calls = json_object_get(msg, "tool_calls"), *res;
	const char *m = model ? model : xl_str(in, "model");
	struct xl_stream u = { 0 };
	char id[XL_MAX_ID + 16];
	size_t i;

	if (json_object_get(in, "error") != NULL || !json_is_object(msg))
		return xl_fail(err, errlen, "provider response has no "
		    "message");
	if ((content = json_array()) == NULL)
		return xl_fail(err, errlen, "out of memory");
	if (json_is_string(v = json_object_get(msg, "content")) &&
	    json_string_length(v) > 0)
		json_array_append_new(content, json_pack("{s:s, s:O}", "type",
		    "text", "text", v));
	if (json_is_string(v = json_object_get(msg, "refusal")) &&
	    json_string_length(v) > 0)
		json_array_append_new(content, json_pack("{s:s, s:O}", "type",
		    "text", "text", v));
	json_array_foreach(calls, i, tc) {
		json_t *fn = json_object_get(tc, "function");
		json_t *tid = json_object_get(tc, "id");
		json_t *name = json_object_get(fn, "name");
		json_t *args = json_object_get(fn, "arguments"), *input = NULL;

		if (!json_is_string(tid) || !json_is_string(name))
			continue;
		if (json_is_string(args))
			input = json_loadb(json_string_value(args),
			    json_string_length(args), 0, NULL);
		if (!json_is_object(input)) {
			json_decref(input);
			input = json_object();
		}
		json_array_append_new(content, json_pack("{s:s, s:O, s:O, s:o}",
		    "type", "tool_use", "id", tid, "name", name, "input",
		    input));
	}
	read_usage(&u, json_object_get(in, "usage"));
	xl_make_id(id, sizeof(id), "msg_", xl_str(in, "id"));
	res = json_pack("{s:s, s:s, s:s, s:s, s:o, s:s, s:n, s:o}", "id", id,
	    "type", "message", "role", "assistant", "model", m ? m : "",
	    "content", content, "stop_reason", xl_stop_to_anthropic(
	    xl_str(ch, "finish_reason")), "stop_sequence", "usage",
	    an_usage(&u));
	if (res == NULL)
		return xl_fail(err, errlen, "out of memory");
	return res;
}

/* ---- stream: OpenAI chunks -> Anthropic events ---- */

static int
an_start(struct xl_stream *s, json_t *j, struct xl_buf *out)
{
	const char *model = xl_str(j, "model");

	if (s->started)
		return 0;
	s->started = 1;
	xl_make_id(s->id, sizeof(s->id), "msg_", xl_str(j, "id"));
	if (s->model == NULL && model != NULL &&
	    (s->model = strdup(model)) == NULL)
		return -1;
	return xl_sse(out, "message_start", json_pack("{s:s, s:{s:s, s:s, "
	    "s:s, s:s, s:[], s:n, s:n, s:{s:i, s:i}}}", "type",
	    "message_start", "message", "id", s->id, "type", "message",
	    "role", "assistant", "model", s->model ? s->model : "",
	    "content", "stop_reason", "stop_sequence", "usage",
	    "input_tokens", 0, "output_tokens", 0));
}

static int
close_block(struct xl_stream *s, struct xl_buf *out)
{
	if (s->open == XK_NONE)
		return 0;
	s->open = XK_NONE;
	return xl_sse(out, "content_block_stop", json_pack("{s:s, s:i}",
	    "type", "content_block_stop", "index", s->nblocks - 1));
}

/* Open a block of kind k (closing another) with content_block cb
 * (stolen). */
static int
open_block(struct xl_stream *s, int k, json_t *cb, struct xl_buf *out)
{
	if (close_block(s, out) == -1) {
		json_decref(cb);
		return -1;
	}
	s->open = k;
	return xl_sse(out, "content_block_start", json_pack("{s:s, s:i, s:o}",
	    "type", "content_block_start", "index", s->nblocks++,
	    "content_block", cb));
}

static int
text_delta(struct xl_stream *s, json_t *t, struct xl_buf *out)
{
	if (s->open != XK_TEXT && open_block(s, XK_TEXT, json_pack("{s:s, "
	    "s:s}", "type", "text", "text", ""), out) == -1)
		return -1;
	return xl_sse(out, "content_block_delta", json_pack("{s:s, s:i, "
	    "s:{s:s, s:O}}", "type", "content_block_delta", "index",
	    s->nblocks - 1, "delta", "type", "text_delta", "text", t));
}

static int
tool_delta(struct xl_stream *s, json_t *tc, struct xl_buf *out)
{
	json_t *iv = json_object_get(tc, "index");
	json_t *fn = json_object_get(tc, "function");
	json_t *args = json_object_get(fn, "arguments");
	const char *id = xl_str(tc, "id"), *name = xl_str(fn, "name");
	long long idx;
	char gen[32];

	if (!json_is_object(tc))
		return -1;
	if (json_is_integer(iv))
		idx = json_integer_value(iv);
	else if (iv != NULL && !json_is_null(iv))
		return -1;
	else			/* no index: a new call when it has an id */
		idx = s->open == XK_TOOL && id == NULL ? s->cur_tool :
		    s->ntools;
	if (idx < 0 || idx >= XL_MAX_BLOCKS)
		return -1;
	if (s->open != XK_TOOL || idx != s->cur_tool) {
		if (s->tool_seen[idx])
			return -1;	/* back to a closed call: cannot */
		s->tool_seen[idx] = 1;
		if (idx >= s->ntools)
			s->ntools = (int)idx + 1;
		s->cur_tool = (int)idx;
		if (id == NULL) {
			snprintf(gen, sizeof(gen), "toolu_%lld", idx);
			id = gen;
		}
		if (open_block(s, XK_TOOL, json_pack("{s:s, s:s, s:s, s:{}}",
		    "type", "tool_use", "id", id, "name", name ? name : "",
		    "input"), out) == -1)
			return -1;
	}
	if (!json_is_string(args) || json_string_length(args) == 0)
		return 0;
	return xl_sse(out, "content_block_delta", json_pack("{s:s, s:i, "
	    "s:{s:s, s:O}}", "type", "content_block_delta", "index",
	    s->nblocks - 1, "delta", "type", "input_json_delta",
	    "partial_json", args));
}

/* The end of a complete answer: message_delta and message_stop. */
static int
an_close(struct xl_stream *s, struct xl_buf *out)
{
	json_t *u;
	int rc;

	s->done = 1;
	if (an_start(s, NULL, out) == -1 || close_block(s, out) == -1)
		return -1;
	u = s->usage_seen ? an_usage(s) : json_pack("{s:i}",
	    "output_tokens", 0);
	rc = xl_sse(out, "message_delta", json_pack("{s:s, s:{s:s, s:n}, "
	    "s:o}", "type", "message_delta", "delta", "stop_reason",
	    s->stop ? s->stop : "end_turn", "stop_sequence", "usage", u));
	if (rc == 0)
		rc = xl_sse(out, "message_stop", json_pack("{s:s}", "type",
		    "message_stop"));
	return rc;
}

static int
choice(struct xl_stream *s, json_t *ch, struct xl_buf *out)
{
	json_t *d = json_object_get(ch, "delta"), *v, *tc;
	json_t *idx = json_object_get(ch, "index");
	const char *fr = xl_str(ch, "finish_reason");
	size_t i;

	if (!json_is_object(ch))
		return -1;
	if (json_is_integer(idx) && json_integer_value(idx) != 0)
		return 0;		/* n > 1 was refused */
	if (json_is_string(v = json_object_get(d, "content")) &&
	    json_string_length(v) > 0 && text_delta(s, v, out) == -1)
		return -1;
	if (json_is_string(v = json_object_get(d, "refusal")) &&
	    json_string_length(v) > 0 && text_delta(s, v, out) == -1)
		return -1;
	v = json_object_get(d, "tool_calls");
	if (v != NULL && !json_is_null(v) && !json_is_array(v))
		return -1;
	json_array_foreach(v, i, tc)
		if (tool_delta(s, tc, out) == -1)
			return -1;
	if (fr != NULL) {
		s->stop = xl_stop_to_anthropic(fr);
		s->finished = 1;
		return close_block(s, out);
	}
	return 0;
}

int
xl_an_oa_event(struct xl_stream *s, const char *name, const char *data,
    size_t len, struct xl_buf *out)
{
	json_t *j, *chs, *ch, *u;
	size_t i;
	int rc = 0, k;

	(void)name;		/* OpenAI events are data-only */
	if (len == 6 && memcmp(data, "[DONE]", 6) == 0)
		return an_close(s, out);
	if ((k = xl_openai_event_parse(s, DIA_ANTHROPIC, data, len, &j, out,
	    &rc)) <= 0)
		return k < 0 ? -1 : rc;
	chs = json_object_get(j, "choices");
	u = json_object_get(j, "usage");
	rc = an_start(s, j, out);
	if (json_is_object(u))
		read_usage(s, u);
	json_array_foreach(chs, i, ch)
		if (rc == 0)
			rc = choice(s, ch, out);
	json_decref(j);
	return rc;
}

void
xl_an_oa_end(struct xl_stream *s, int ok, struct xl_buf *out)
{
	if (ok && s->finished)
		an_close(s, out);
	else
		xl_stream_error(DIA_ANTHROPIC, "api_error", "the provider's "
		    "stream ended before the answer was complete", out);
}
