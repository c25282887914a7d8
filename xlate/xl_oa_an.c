/*
 * xlate/xl_oa_an: an OpenAI chat completions user served by an Anthropic
 * Messages provider.  The request goes OpenAI -> Anthropic; the response,
 * its stream events and its usage come back Anthropic -> OpenAI.  The
 * rules are listed in xl.h.
 */
#include "xlate/xl_int.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- request: refusals and drops ---- */

/* NULL when the value is acceptable, else why not. */
typedef const char *(*oa_check)(json_t *v);

static const char *
chk_n(json_t *v)
{
	return json_is_null(v) || (json_is_integer(v) &&
	    json_integer_value(v) == 1) ? NULL :
	    "n other than 1 cannot be served by this model's provider";
}

static const char *
chk_logprobs(json_t *v)
{
	return json_is_null(v) || json_is_false(v) ? NULL :
	    "logprobs cannot be served by this model's provider";
}

static const char *
chk_top_logprobs(json_t *v)
{
	return json_is_null(v) || (json_is_integer(v) &&
	    json_integer_value(v) == 0) ? NULL :
	    "top_logprobs cannot be served by this model's provider";
}

static const char *
chk_format(json_t *v)
{
	const char *t = xl_str(v, "type");

	return json_is_null(v) || (t != NULL && strcmp(t, "text") == 0) ?
	    NULL : "response_format other than text cannot be served by "
	    "this model's provider";
}

static const char *
chk_null(json_t *v)
{
	return json_is_null(v) ? NULL :
	    "audio, functions and function_call cannot be served by this "
	    "model's provider (use tools)";
}

static const char *
chk_modalities(json_t *v)
{
	size_t i;
	json_t *m;

	if (json_is_null(v))
		return NULL;
	if (!json_is_array(v))
		return "modalities must be an array";
	json_array_foreach(v, i, m)
		if (!json_is_string(m) || strcmp(json_string_value(m),
		    "text") != 0)
			return "only text output can be served by this "
			    "model's provider";
	return NULL;
}

static const struct {
	const char *key;
	oa_check check;
} oa_checks[] = {
	{ "n", chk_n },
	{ "logprobs", chk_logprobs },
	{ "top_logprobs", chk_top_logprobs },
	{ "response_format", chk_format },
	{ "audio", chk_null },
	{ "functions", chk_null },
	{ "function_call", chk_null },
	{ "modalities", chk_modalities },
};

/* ---- request: messages ---- */

/* "data:M;base64,D" -> source {base64, M, D}; other URLs -> {url}. */
static json_t *
image_block(json_t *part, size_t mi, char *err, size_t errlen)
{
	json_t *iu = json_object_get(part, "image_url");
	const char *url = json_is_string(iu) ? json_string_value(iu) :
	    xl_str(iu, "url");
	const char *semi, *comma;

	if (url == NULL)
		return xl_fail(err, errlen, "messages[%zu]: image_url.url "
		    "must be a string", mi);
	if (strncmp(url, "data:", 5) != 0)
		return json_pack("{s:s, s:{s:s, s:s}}", "type", "image",
		    "source", "type", "url", "url", url);
	semi = strchr(url + 5, ';');
	comma = strchr(url + 5, ',');
	if (semi == NULL || comma == NULL || semi > comma ||
	    strncmp(semi, ";base64,", 8) != 0 || semi == url + 5)
		return xl_fail(err, errlen, "messages[%zu]: an image data URL "
		    "must be data:<media type>;base64,<data>", mi);
	return json_pack("{s:s, s:{s:s, s:s%, s:s}}", "type", "image",
	    "source", "type", "base64", "media_type", url + 5,
	    (size_t)(semi - (url + 5)), "data", comma + 1);
}

/*
 * OpenAI content (string, parts or null) -> Anthropic blocks.  images: the
 * role may carry images (user).  Empty texts are skipped when skip_empty
 * (Anthropic refuses them in assistant turns).
 */
static json_t *
content_blocks(json_t *c, size_t mi, int images, int skip_empty, char *err,
    size_t errlen)
{
	json_t *blocks = json_array(), *part, *b;
	size_t i;

	if (blocks == NULL)
		return xl_fail(err, errlen, "out of memory");
	if (json_is_string(c)) {
		if (!skip_empty || json_string_length(c) > 0)
			json_array_append_new(blocks, json_pack("{s:s, s:O}",
			    "type", "text", "text", c));
		return blocks;
	}
	if (json_is_null(c) || c == NULL)
		return blocks;
	if (!json_is_array(c)) {
		json_decref(blocks);
		return xl_fail(err, errlen, "messages[%zu].content must be a "
		    "string or an array", mi);
	}
	json_array_foreach(c, i, part) {
		const char *t = xl_str(part, "type");
		json_t *txt;

		b = NULL;
		if (t != NULL && (strcmp(t, "text") == 0 ||
		    strcmp(t, "refusal") == 0)) {
			txt = json_object_get(part, t);
			if (!json_is_string(txt)) {
				json_decref(blocks);
				return xl_fail(err, errlen, "messages[%zu]."
				    "content[%zu].%s must be a string", mi, i,
				    t);
			}
			if (skip_empty && json_string_length(txt) == 0)
				continue;
			b = json_pack("{s:s, s:O}", "type", "text", "text",
			    txt);
		} else if (t != NULL && images &&
		    strcmp(t, "image_url") == 0) {
			if ((b = image_block(part, mi, err, errlen)) == NULL) {
				json_decref(blocks);
				return NULL;
			}
		} else {
			json_decref(blocks);
			return xl_fail(err, errlen, "messages[%zu].content[%zu]"
			    ": part type %s cannot be served by this model's "
			    "provider", mi, i, t ? t : "(none)");
		}
		json_array_append_new(blocks, b);
	}
	return blocks;
}

/* tool_calls -> tool_use blocks appended to blocks. */
static int
tool_uses(json_t *calls, json_t *blocks, size_t mi, char *err, size_t errlen)
{
	json_t *tc, *input;
	size_t i;

	if (json_is_null(calls) || calls == NULL)
		return 0;
	if (!json_is_array(calls)) {
		xl_fail(err, errlen, "messages[%zu].tool_calls must be an "
		    "array", mi);
		return -1;
	}
	json_array_foreach(calls, i, tc) {
		json_t *fn = json_object_get(tc, "function");
		json_t *id = json_object_get(tc, "id");
		json_t *name = json_object_get(fn, "name");
		json_t *args = json_object_get(fn, "arguments");
		const char *t = xl_str(tc, "type");

		if ((t != NULL && strcmp(t, "function") != 0) ||
		    !json_is_string(id) || !json_is_string(name)) {
			xl_fail(err, errlen, "messages[%zu].tool_calls[%zu] "
			    "needs an id and a function name", mi, i);
			return -1;
		}
		input = NULL;
		if (json_is_object(args))
			input = json_incref(args);
		else if (args == NULL || json_is_null(args) ||
		    (json_is_string(args) && strspn(json_string_value(args),
		    " \t\r\n") == json_string_length(args)))
			input = json_object();
		else if (json_is_string(args))
			input = json_loadb(json_string_value(args),
			    json_string_length(args), 0, NULL);
		if (!json_is_object(input)) {
			json_decref(input);
			xl_fail(err, errlen, "messages[%zu].tool_calls[%zu]."
			    "function.arguments must be a JSON object", mi, i);
			return -1;
		}
		json_array_append_new(blocks, json_pack("{s:s, s:O, s:O, s:o}",
		    "type", "tool_use", "id", id, "name", name, "input",
		    input));
	}
	return 0;
}

/* A role tool message -> one tool_result block. */
static json_t *
tool_result(json_t *m, size_t mi, char *err, size_t errlen)
{
	json_t *id = json_object_get(m, "tool_call_id");
	json_t *c = json_object_get(m, "content"), *blocks;

	if (!json_is_string(id))
		return xl_fail(err, errlen, "messages[%zu].tool_call_id must "
		    "be a string", mi);
	if (json_is_string(c))
		return json_pack("{s:s, s:O, s:O}", "type", "tool_result",
		    "tool_use_id", id, "content", c);
	if ((blocks = content_blocks(c, mi, 0, 0, err, errlen)) == NULL)
		return NULL;
	return json_pack("{s:s, s:O, s:o}", "type", "tool_result",
	    "tool_use_id", id, "content", blocks);
}

/*
 * Append a turn.  A turn with the last one's role merges into it (its
 * content made an array), so consecutive tool results (and what follows
 * them in the same role) are one user turn, as Anthropic wants.
 * content: a string kept as is, or an array of blocks (stolen).
 */
static void
add_turn(json_t *msgs, const char *role, json_t *content)
{
	size_t n = json_array_size(msgs);
	json_t *last = n ? json_array_get(msgs, n - 1) : NULL;
	json_t *lc;

	if (last == NULL || strcmp(xl_str(last, "role"), role) != 0) {
		json_array_append_new(msgs, json_pack("{s:s, s:o}", "role",
		    role, "content", content));
		return;
	}
	lc = json_object_get(last, "content");
	if (json_is_string(lc)) {
		json_t *arr = json_pack("[{s:s, s:O}]", "type", "text", "text",
		    lc);

		json_object_set_new(last, "content", arr);
		lc = arr;
	}
	if (json_is_string(content)) {
		json_array_append_new(lc, json_pack("{s:s, s:o}", "type",
		    "text", "text", content));
	} else {
		json_array_extend(lc, content);
		json_decref(content);
	}
}

static int
oa_messages(json_t *in, json_t *out, char *err, size_t errlen)
{
	json_t *ms = json_object_get(in, "messages"), *m;
	json_t *sys = json_array(), *msgs = json_array(), *b;
	size_t i;

	if (!json_is_array(ms) || json_array_size(ms) == 0) {
		xl_fail(err, errlen, "messages must be a non-empty array");
		goto fail;
	}
	json_array_foreach(ms, i, m) {
		const char *role = xl_str(m, "role");
		json_t *c = json_object_get(m, "content");

		if (role == NULL) {
			xl_fail(err, errlen, "messages[%zu].role must be a "
			    "string", i);
			goto fail;
		}
		if (strcmp(role, "system") == 0 ||
		    strcmp(role, "developer") == 0) {
			if ((b = content_blocks(c, i, 0, 1, err, errlen)) ==
			    NULL)
				goto fail;
			json_array_extend(sys, b);
			json_decref(b);
		} else if (strcmp(role, "user") == 0) {
			if (json_is_string(c))
				add_turn(msgs, "user", json_incref(c));
			else if ((b = content_blocks(c, i, 1, 0, err,
			    errlen)) == NULL)
				goto fail;
			else
				add_turn(msgs, "user", b);
		} else if (strcmp(role, "assistant") == 0) {
			if ((b = content_blocks(c, i, 0, 1, err, errlen)) ==
			    NULL)
				goto fail;
			if (tool_uses(json_object_get(m, "tool_calls"), b, i,
			    err, errlen) == -1) {
				json_decref(b);
				goto fail;
			}
			if (json_array_size(b) > 0)
				add_turn(msgs, "assistant", b);
			else
				json_decref(b);
		} else if (strcmp(role, "tool") == 0) {
			if ((b = tool_result(m, i, err, errlen)) == NULL)
				goto fail;
			add_turn(msgs, "user", json_pack("[o]", b));
		} else {
			xl_fail(err, errlen, "messages[%zu]: role %s cannot be "
			    "served by this model's provider", i, role);
			goto fail;
		}
	}
	if (json_array_size(sys) == 1)
		json_object_set(out, "system", json_object_get(
		    json_array_get(sys, 0), "text"));
	else if (json_array_size(sys) > 1)
		json_object_set(out, "system", sys);
	json_object_set(out, "messages", msgs);
	json_decref(sys);
	json_decref(msgs);
	return 0;
fail:
	json_decref(sys);
	json_decref(msgs);
	return -1;
}

/* ---- request: tools ---- */

static int
oa_tools(json_t *in, json_t *out, char *err, size_t errlen)
{
	json_t *tools = json_object_get(in, "tools"), *t, *res;
	json_t *tc = json_object_get(in, "tool_choice"), *choice = NULL;
	json_t *ptc = json_object_get(in, "parallel_tool_calls");
	size_t i;

	if (tools != NULL && !json_is_null(tools)) {
		if (!json_is_array(tools)) {
			xl_fail(err, errlen, "tools must be an array");
			return -1;
		}
		res = json_array();
		json_array_foreach(tools, i, t) {
			json_t *fn = json_object_get(t, "function");
			json_t *params = json_object_get(fn, "parameters");
			json_t *name = json_object_get(fn, "name");
			json_t *desc = json_object_get(fn, "description");
			const char *type = xl_str(t, "type");
			json_t *at;

			if ((type != NULL && strcmp(type, "function") != 0) ||
			    !json_is_string(name) || (params != NULL &&
			    !json_is_null(params) && !json_is_object(params))) {
				json_decref(res);
				xl_fail(err, errlen, "tools[%zu]: only function "
				    "tools with a name and object parameters "
				    "can be served by this model's provider", i);
				return -1;
			}
			at = json_pack("{s:O}", "name", name);
			if (json_is_string(desc))
				json_object_set(at, "description", desc);
			if (json_is_object(params))
				json_object_set(at, "input_schema", params);
			else
				xl_set(at, "input_schema", json_pack(
				    "{s:s, s:{}}", "type", "object",
				    "properties"));
			json_array_append_new(res, at);
		}
		json_object_set_new(out, "tools", res);
	}
	if (json_is_string(tc)) {
		const char *s = json_string_value(tc);

		if (strcmp(s, "none") == 0 || strcmp(s, "auto") == 0)
			choice = json_pack("{s:s}", "type", s);
		else if (strcmp(s, "required") == 0)
			choice = json_pack("{s:s}", "type", "any");
	} else if (json_is_object(tc)) {
		json_t *name = json_object_get(json_object_get(tc,
		    "function"), "name");

		if (json_is_string(name))
			choice = json_pack("{s:s, s:O}", "type", "tool",
			    "name", name);
	}
	if (choice == NULL && tc != NULL && !json_is_null(tc)) {
		xl_fail(err, errlen, "tool_choice must be none, auto, required "
		    "or a function");
		return -1;
	}
	if (json_is_false(ptc) && (choice == NULL ||
	    strcmp(xl_str(choice, "type"), "none") != 0)) {
		if (choice == NULL)
			choice = json_pack("{s:s}", "type", "auto");
		json_object_set_new(choice, "disable_parallel_tool_use",
		    json_true());
	}
	if (choice != NULL)
		json_object_set_new(out, "tool_choice", choice);
	return 0;
}

/* ---- request: the rest ---- */

static int
oa_number(json_t *in, json_t *out, const char *key, char *err,
    size_t errlen)
{
	json_t *v = json_object_get(in, key);

	if (v == NULL || json_is_null(v))
		return 0;
	if (!json_is_number(v)) {
		xl_fail(err, errlen, "%s must be a number", key);
		return -1;
	}
	json_object_set(out, key, v);
	return 0;
}

static int
oa_max_tokens(json_t *in, json_t *out, char *err, size_t errlen)
{
	static const char *const keys[] = { "max_completion_tokens",
	    "max_tokens" };

	for (size_t i = 0; i < 2; i++) {
		json_t *v = json_object_get(in, keys[i]);

		if (v == NULL || json_is_null(v))
			continue;
		if (!json_is_integer(v) || json_integer_value(v) < 1) {
			xl_fail(err, errlen, "%s must be a positive integer",
			    keys[i]);
			return -1;
		}
		json_object_set(out, "max_tokens", v);
		return 0;
	}
	json_object_set_new(out, "max_tokens",
	    json_integer(XL_DEFAULT_MAX_TOKENS));
	return 0;
}

static int
oa_stop(json_t *in, json_t *out, char *err, size_t errlen)
{
	json_t *v = json_object_get(in, "stop"), *seq, *s;
	size_t i;

	if (v == NULL || json_is_null(v))
		return 0;
	seq = json_array();
	if (json_is_string(v)) {
		if (json_string_length(v) > 0)
			json_array_append(seq, v);
	} else if (json_is_array(v)) {
		json_array_foreach(v, i, s) {
			if (!json_is_string(s)) {
				json_decref(seq);
				xl_fail(err, errlen, "stop must be a string or "
				    "an array of strings");
				return -1;
			}
			if (json_string_length(s) > 0)
				json_array_append(seq, s);
		}
	} else {
		json_decref(seq);
		xl_fail(err, errlen, "stop must be a string or an array of "
		    "strings");
		return -1;
	}
	if (json_array_size(seq) > 0)
		json_object_set_new(out, "stop_sequences", seq);
	else
		json_decref(seq);
	return 0;
}

json_t *
xl_oa_an_request(json_t *in, const char *model, int stream, char *err,
    size_t errlen)
{
	json_t *out, *m = json_object_get(in, "model");
	json_t *user = json_object_get(in, "user");

	for (size_t i = 0; i < sizeof(oa_checks) / sizeof(oa_checks[0]); i++) {
		json_t *v = json_object_get(in, oa_checks[i].key);
		const char *why = v ? oa_checks[i].check(v) : NULL;

		if (why != NULL)
			return xl_fail(err, errlen, "%s", why);
	}
	if (model == NULL && !json_is_string(m))
		return xl_fail(err, errlen, "model must be a string");
	if ((out = json_object()) == NULL)
		return xl_fail(err, errlen, "out of memory");
	if (model != NULL)
		json_object_set_new(out, "model", json_string(model));
	else
		json_object_set(out, "model", m);
	if (oa_max_tokens(in, out, err, errlen) == -1 ||
	    oa_messages(in, out, err, errlen) == -1 ||
	    oa_tools(in, out, err, errlen) == -1 ||
	    oa_number(in, out, "temperature", err, errlen) == -1 ||
	    oa_number(in, out, "top_p", err, errlen) == -1 ||
	    oa_stop(in, out, err, errlen) == -1) {
		json_decref(out);
		return NULL;
	}
	if (json_is_string(user))
		xl_set(out, "metadata", json_pack("{s:O}", "user_id", user));
	if (stream)
		json_object_set_new(out, "stream", json_true());
	return out;
}

/* ---- response ---- */

static json_t *
usage_of(json_t *u)
{
	return xl_openai_usage(xl_count(json_object_get(u, "input_tokens")),
	    xl_count(json_object_get(u, "output_tokens")),
	    xl_count(json_object_get(u, "cache_read_input_tokens")),
	    xl_count(json_object_get(u, "cache_creation_input_tokens")));
}

static json_t *
join_buf(struct xl_buf *b)
{
	json_t *j = json_stringn(b->p ? b->p : "", b->len);

	xl_buf_free(b);
	return j;
}

json_t *
xl_oa_an_response(json_t *in, const char *model, char *err, size_t errlen)
{
	json_t *content = json_object_get(in, "content"), *blk, *msg, *res;
	json_t *calls = json_array();
	struct xl_buf text = { 0 }, think = { 0 };
	const char *type = xl_str(in, "type");
	const char *m = model ? model : xl_str(in, "model");
	int has_text = 0, has_think = 0;
	char id[XL_MAX_ID + 16];
	size_t i;

	if (type == NULL || strcmp(type, "message") != 0 ||
	    !json_is_array(content)) {
		json_decref(calls);
		return xl_fail(err, errlen, "provider response is not a "
		    "message");
	}
	json_array_foreach(content, i, blk) {
		const char *bt = xl_str(blk, "type");
		json_t *s;

		if (bt == NULL)
			continue;
		if (strcmp(bt, "text") == 0 &&
		    json_is_string(s = json_object_get(blk, "text"))) {
			xl_buf_add(&text, json_string_value(s),
			    json_string_length(s));
			has_text = 1;
		} else if (strcmp(bt, "thinking") == 0 &&
		    json_is_string(s = json_object_get(blk, "thinking"))) {
			xl_buf_add(&think, json_string_value(s),
			    json_string_length(s));
			has_think = 1;
		} else if (strcmp(bt, "tool_use") == 0) {
			json_t *tid = json_object_get(blk, "id");
			json_t *name = json_object_get(blk, "name");
			json_t *input = json_object_get(blk, "input");
			char *args;

			if (!json_is_string(tid) || !json_is_string(name))
				continue;
			args = input ? json_dumps(input, JSON_COMPACT |
			    JSON_REAL_PRECISION(15) | JSON_ENCODE_ANY) : NULL;
			json_array_append_new(calls, json_pack(
			    "{s:O, s:s, s:{s:O, s:s}}", "id", tid, "type",
			    "function", "function", "name", name, "arguments",
			    args ? args : "{}"));
			free(args);
		}
	}
	msg = json_pack("{s:s}", "role", "assistant");
	if (has_text || json_array_size(calls) == 0)
		xl_set(msg, "content", join_buf(&text));
	else
		json_object_set_new(msg, "content", json_null());
	xl_buf_free(&text);
	if (has_think)
		xl_set(msg, "reasoning_content", join_buf(&think));
	xl_buf_free(&think);
	json_object_set_new(msg, "refusal", json_null());
	if (json_array_size(calls) > 0)
		json_object_set(msg, "tool_calls", calls);
	json_decref(calls);
	xl_make_id(id, sizeof(id), "chatcmpl-", xl_str(in, "id"));
	res = json_pack("{s:s, s:s, s:I, s:s, s:[{s:i, s:o, s:n, s:s}], s:o}",
	    "id", id, "object", "chat.completion",
	    "created", (json_int_t)time(NULL), "model", m ? m : "",
	    "choices", "index", 0, "message", msg, "logprobs",
	    "finish_reason", xl_stop_to_openai(xl_str(in, "stop_reason")),
	    "usage", usage_of(json_object_get(in, "usage")));
	if (res == NULL)
		return xl_fail(err, errlen, "out of memory");
	return res;
}

/* ---- stream: Anthropic events -> OpenAI chunks ---- */

/* The role chunk, once, before anything else. */
static int
start(struct xl_stream *s, struct xl_buf *out)
{
	if (s->started)
		return 0;
	s->started = 1;
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
		    "s:o}", "id", s->id[0] ? s->id : "chatcmpl-0", "object",
		    "chat.completion.chunk", "created", (json_int_t)s->created,
		    "model", s->model ? s->model : "", "choices", "usage",
		    xl_openai_usage(s->in, s->out, s->cache_read,
		    s->cache_write)));
	if (rc == 0)
		rc = xl_buf_adds(out, "data: [DONE]\n\n");
	s->done = 1;
	return rc;
}

static void
read_usage(struct xl_stream *s, json_t *u)
{
	json_t *v;

	if (!json_is_object(u))
		return;
	s->usage_seen = 1;
	if ((v = json_object_get(u, "input_tokens")) != NULL)
		s->in = xl_count(v);
	if ((v = json_object_get(u, "output_tokens")) != NULL)
		s->out = xl_count(v);
	if ((v = json_object_get(u, "cache_read_input_tokens")) != NULL)
		s->cache_read = xl_count(v);
	if ((v = json_object_get(u, "cache_creation_input_tokens")) != NULL)
		s->cache_write = xl_count(v);
}

static int
ev_message_start(struct xl_stream *s, json_t *j, struct xl_buf *out)
{
	json_t *m = json_object_get(j, "message");
	const char *model = xl_str(m, "model");

	if (!json_is_object(m))
		return -1;
	if (!s->started) {
		xl_make_id(s->id, sizeof(s->id), "chatcmpl-", xl_str(m, "id"));
		if (s->model == NULL && model != NULL &&
		    (s->model = strdup(model)) == NULL)
			return -1;
	}
	read_usage(s, json_object_get(m, "usage"));
	return start(s, out);
}

/* The block index of an event: 0..XL_MAX_BLOCKS-1, else -1. */
static int
block_index(json_t *j)
{
	json_t *v = json_object_get(j, "index");

	if (!json_is_integer(v) || json_integer_value(v) < 0 ||
	    json_integer_value(v) >= XL_MAX_BLOCKS)
		return -1;
	return (int)json_integer_value(v);
}

static int
ev_block_start(struct xl_stream *s, json_t *j, struct xl_buf *out)
{
	json_t *cb = json_object_get(j, "content_block");
	int bi = block_index(j);
	const char *t = xl_str(cb, "type");
	json_t *txt;

	if (bi < 0 || t == NULL)
		return -1;
	if (start(s, out) == -1)
		return -1;
	if (strcmp(t, "text") == 0) {
		s->kind[bi] = XK_TEXT;
		txt = json_object_get(cb, "text");
		if (json_is_string(txt) && json_string_length(txt) > 0)
			return xl_openai_chunk(s, json_pack("{s:O}", "content", txt),
			    NULL, out);
	} else if (strcmp(t, "tool_use") == 0) {
		const char *id = xl_str(cb, "id"), *name = xl_str(cb, "name");

		if (s->ntools >= XL_MAX_BLOCKS)
			return -1;
		s->kind[bi] = XK_TOOL;
		s->tool[bi] = (short)s->ntools++;
		return xl_openai_chunk(s, json_pack("{s:[{s:i, s:s, s:s, s:{s:s, s:s}}]}",
		    "tool_calls", "index", s->tool[bi], "id", id ? id : "",
		    "type", "function", "function", "name", name ? name : "",
		    "arguments", ""), NULL, out);
	} else if (strcmp(t, "thinking") == 0) {
		s->kind[bi] = XK_THINK;
	} else {
		s->kind[bi] = XK_OTHER;
	}
	return 0;
}

static int
ev_block_delta(struct xl_stream *s, json_t *j, struct xl_buf *out)
{
	json_t *d = json_object_get(j, "delta"), *v;
	int bi = block_index(j);
	const char *t = xl_str(d, "type");

	if (bi < 0 || t == NULL)
		return -1;
	if (strcmp(t, "text_delta") == 0) {
		if (!json_is_string(v = json_object_get(d, "text")))
			return -1;
		if (json_string_length(v) == 0)
			return 0;
		if (start(s, out) == -1)
			return -1;
		return xl_openai_chunk(s, json_pack("{s:O}", "content", v), NULL, out);
	}
	if (strcmp(t, "input_json_delta") == 0) {
		if (!json_is_string(v = json_object_get(d, "partial_json")))
			return -1;
		if (s->kind[bi] != XK_TOOL || json_string_length(v) == 0)
			return 0;
		return xl_openai_chunk(s, json_pack("{s:[{s:i, s:{s:O}}]}", "tool_calls",
		    "index", s->tool[bi], "function", "arguments", v), NULL,
		    out);
	}
	if (strcmp(t, "thinking_delta") == 0) {
		if (!json_is_string(v = json_object_get(d, "thinking")))
			return -1;
		if (json_string_length(v) == 0)
			return 0;
		if (start(s, out) == -1)
			return -1;
		return xl_openai_chunk(s, json_pack("{s:O}", "reasoning_content", v),
		    NULL, out);
	}
	return 0;		/* signature_delta, citations_delta, ... */
}

static int
ev_message_delta(struct xl_stream *s, json_t *j, struct xl_buf *out)
{
	json_t *d = json_object_get(j, "delta");
	const char *stop = xl_str(d, "stop_reason");

	if (!json_is_object(d))
		return -1;
	read_usage(s, json_object_get(j, "usage"));
	if (stop == NULL)
		return 0;
	s->stop = xl_stop_to_openai(stop);
	s->finished = 1;
	if (s->finish_sent)
		return 0;
	if (start(s, out) == -1)
		return -1;
	s->finish_sent = 1;
	return xl_openai_chunk(s, json_object(), s->stop, out);
}

static int
ev_message_stop(struct xl_stream *s, json_t *j, struct xl_buf *out)
{
	(void)j;
	s->finished = 1;
	return close_ok(s, out);
}

static int
ev_error(struct xl_stream *s, json_t *j, struct xl_buf *out)
{
	s->done = 1;
	return xl_stream_error_json(DIA_OPENAI, DIA_ANTHROPIC, j, out);
}

static int
ev_ignore(struct xl_stream *s, json_t *j, struct xl_buf *out)
{
	(void)s, (void)j, (void)out;
	return 0;
}

static const struct {
	const char *name;
	int (*fn)(struct xl_stream *, json_t *, struct xl_buf *);
} an_events[] = {
	{ "message_start", ev_message_start },
	{ "content_block_start", ev_block_start },
	{ "content_block_delta", ev_block_delta },
	{ "content_block_stop", ev_ignore },
	{ "message_delta", ev_message_delta },
	{ "message_stop", ev_message_stop },
	{ "error", ev_error },
	{ "ping", ev_ignore },
};

int
xl_oa_an_event(struct xl_stream *s, const char *name, const char *data,
    size_t len, struct xl_buf *out)
{
	json_t *j = json_loadb(data, len, 0, NULL);
	const char *t;
	int rc = 0;

	if (!json_is_object(j)) {
		json_decref(j);
		return -1;
	}
	t = name != NULL && name[0] != '\0' ? name : xl_str(j, "type");
	if (t == NULL) {
		json_decref(j);
		return -1;
	}
	for (size_t i = 0; i < sizeof(an_events) / sizeof(an_events[0]); i++)
		if (strcmp(an_events[i].name, t) == 0) {
			rc = an_events[i].fn(s, j, out);
			break;
		}
	json_decref(j);
	return rc;
}

void
xl_oa_an_end(struct xl_stream *s, int ok, struct xl_buf *out)
{
	if (ok && s->finished)
		close_ok(s, out);
	else
		xl_stream_error(DIA_OPENAI, "api_error", "the provider's "
		    "stream ended before the answer was complete", out);
}
