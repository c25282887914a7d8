/*
 * tests/unit/test_xlate: xlate/, OpenAI chat completions <-> Anthropic
 * messages.  Requests both ways (system, history, images, tools and
 * tool_choice, tool calls and merged tool results, max_tokens default,
 * sampling, stop, stream), refusals with a 400 text, responses both ways
 * (stop reasons, usage with cache tokens, reasoning), error bodies both
 * ways (type table, wrapped non-JSON), and streams event by event both
 * ways, cut and failing streams, malformed input.  JSON is compared
 * parsed (key order aside); OpenAI's `created` is checked to be a recent
 * integer, then removed.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <jansson.h>

#include "lib/evstream.h"
#include "xlate/xl.h"

/* JSON written bare in the source: J({"a":"b"}) */
#define J(...)	#__VA_ARGS__
#define S(x)	(x), strlen(x)
#define OA	DIA_OPENAI
#define AN	DIA_ANTHROPIC
#define S_IU	J({"stream": true, "stream_options": {"include_usage": true}})

/* Drop a top-level "created", checking it is a recent integer. */
static void
drop_created(json_t *j)
{
	json_t *c = json_object_get(j, "created");

	if (c == NULL)
		return;
	assert_true(json_is_integer(c));
	assert_true(json_integer_value(c) > (json_int_t)time(NULL) - 60);
	json_object_del(j, "created");
}

static void
json_eq(const char *got, size_t len, const char *want)
{
	json_error_t e;
	json_t *g = json_loadb(got, len, 0, &e), *w = json_loads(want, 0, &e);

	if (w == NULL)
		fail_msg("bad expectation: %s: %s", e.text, want);
	if (g == NULL)
		fail_msg("output is not JSON: %.*s", (int)len, got);
	drop_created(g);
	if (!json_equal(g, w)) {
		char *gs = json_dumps(g, JSON_COMPACT | JSON_SORT_KEYS);
		char *ws = json_dumps(w, JSON_COMPACT | JSON_SORT_KEYS);

		fail_msg("JSON differs\n got: %s\nwant: %s", gs, ws);
	}
	json_decref(g);
	json_decref(w);
}

/* Heap copy of exactly the bytes, so ASan sees reads past len. */
static char *
dup_exact(const char *s, size_t *n)
{
	char *c;

	*n = strlen(s);
	c = malloc(*n ? *n : 1);
	assert_non_null(c);
	memcpy(c, s, *n);
	return c;
}

static void
req_ok(enum prov_dialect from, enum prov_dialect to, const char *in,
    const char *model, int stream, const char *want)
{
	struct xl_buf out = { 0 };
	char err[256] = "", *c;
	size_t n;

	c = dup_exact(in, &n);
	if (xl_request(from, to, c, n, model, stream, &out, err,
	    sizeof(err)) != 0)
		fail_msg("refused: %s", err);
	json_eq(out.p, out.len, want);
	free(c);
	xl_buf_free(&out);
}

/* Refused with an error text containing what; out untouched. */
static void
req_bad(enum prov_dialect from, enum prov_dialect to, const char *in,
    const char *what)
{
	struct xl_buf out = { 0 };
	char err[256] = "", *c;
	size_t n;

	xl_buf_free(&out);
	c = dup_exact(in, &n);
	if (xl_request(from, to, c, n, "m", 0, &out, err, sizeof(err)) != -1)
		fail_msg("accepted: %s -> %s", in, out.p);
	if (strstr(err, what) == NULL)
		fail_msg("error \"%s\" does not say \"%s\"", err, what);
	assert_int_equal(out.len, 0);
	free(c);
}

static void
resp_ok(enum prov_dialect from, enum prov_dialect to, const char *in,
    const char *model, const char *want)
{
	struct xl_buf out = { 0 };
	char err[256] = "", *c;
	size_t n;

	c = dup_exact(in, &n);
	if (xl_response(from, to, c, n, model, &out, err, sizeof(err)) != 0)
		fail_msg("refused: %s", err);
	json_eq(out.p, out.len, want);
	free(c);
	xl_buf_free(&out);
}

static void
err_ok(enum prov_dialect from, enum prov_dialect to, int status,
    const char *in, const char *want)
{
	struct xl_buf out = { 0 };
	char *c;
	size_t n;

	c = dup_exact(in, &n);
	xl_error(from, to, status, c, n, &out);
	json_eq(out.p, out.len, want);
	free(c);
	xl_buf_free(&out);
}

/*
 * Feed one upstream event and check what it produced: want is the list of
 * expected SSE events, each "NAME JSON" ("- JSON" for a data-only event,
 * "[DONE]" for the end marker), NULL-terminated.
 */
static int
feed(struct xl_stream *s, const char *name, const char *data,
    const char *const *want)
{
	struct xl_buf out = { 0 };
	char *c, *p;
	size_t n, k = 0;
	int rc;

	c = dup_exact(data, &n);
	rc = xl_stream_event(s, name, c, n, &out);
	free(c);
	p = out.p;
	for (; want[k] != NULL; k++) {
		const char *w = want[k], *sp = strchr(w, ' ');
		char *end;

		if (p == NULL || *p == '\0')
			fail_msg("missing event %zu: %s", k, w);
		if ((end = strstr(p, "\n\n")) == NULL)
			fail_msg("event not terminated: %s", p);
		*end = '\0';
		if (strcmp(w, "[DONE]") == 0) {
			assert_string_equal(p, "data: [DONE]");
		} else if (strncmp(w, "- ", 2) == 0) {
			if (strncmp(p, "data: ", 6) != 0)
				fail_msg("want a data-only event: %s", p);
			json_eq(p + 6, strlen(p + 6), w + 2);
		} else {
			char pre[128];

			snprintf(pre, sizeof(pre), "event: %.*s\ndata: ",
			    (int)(sp - w), w);
			if (strncmp(p, pre, strlen(pre)) != 0)
				fail_msg("want \"%s\": %s", pre, p);
			json_eq(p + strlen(pre), strlen(p + strlen(pre)),
			    sp + 1);
		}
		p = end + 2;
	}
	if (p != NULL && *p != '\0')
		fail_msg("unexpected output: %s", p);
	xl_buf_free(&out);
	return rc;
}

static const char *const none[] = { NULL };

/* ---------------- requests: OpenAI user -> Anthropic ---------------- */

static void
test_req_oa_an_full(void **state)
{
	req_ok(OA, AN, J({
	    "model": "gpt-4o", "max_completion_tokens": 100, "max_tokens": 7,
	    "temperature": 0.7, "top_p": 0.9, "stop": "END", "user": "u1",
	    "stream": false, "stream_options": {"include_usage": true},
	    "frequency_penalty": 0.1, "seed": 3, "n": 1, "logprobs": false,
	    "response_format": {"type": "text"}, "parallel_tool_calls": false,
	    "messages": [
	      {"role": "system", "content": "Be brief."},
	      {"role": "user", "content": [
	        {"type": "text", "text": "Weather here?"},
	        {"type": "image_url", "image_url": {"url": "https://x.test/a.png", "detail": "low"}},
	        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0K"}}]},
	      {"role": "assistant", "content": "Checking.", "tool_calls": [
	        {"id": "call_1", "type": "function", "function": {"name": "weather", "arguments": "{\"city\":\"Paris\"}"}},
	        {"id": "call_2", "type": "function", "function": {"name": "time", "arguments": ""}}]},
	      {"role": "tool", "tool_call_id": "call_1", "content": "18C"},
	      {"role": "tool", "tool_call_id": "call_2", "content": [{"type": "text", "text": "noon"}]},
	      {"role": "user", "content": "Thanks"}],
	    "tools": [
	      {"type": "function", "function": {"name": "weather", "description": "Weather by city",
	        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}},
	      {"type": "function", "function": {"name": "time"}}],
	    "tool_choice": "required"}), "claude-x", 1, J({
	    "model": "claude-x", "max_tokens": 100, "system": "Be brief.",
	    "messages": [
	      {"role": "user", "content": [
	        {"type": "text", "text": "Weather here?"},
	        {"type": "image", "source": {"type": "url", "url": "https://x.test/a.png"}},
	        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0K"}}]},
	      {"role": "assistant", "content": [
	        {"type": "text", "text": "Checking."},
	        {"type": "tool_use", "id": "call_1", "name": "weather", "input": {"city": "Paris"}},
	        {"type": "tool_use", "id": "call_2", "name": "time", "input": {}}]},
	      {"role": "user", "content": [
	        {"type": "tool_result", "tool_use_id": "call_1", "content": "18C"},
	        {"type": "tool_result", "tool_use_id": "call_2", "content": [{"type": "text", "text": "noon"}]},
	        {"type": "text", "text": "Thanks"}]}],
	    "tools": [
	      {"name": "weather", "description": "Weather by city",
	        "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}},
	      {"name": "time", "input_schema": {"type": "object", "properties": {}}}],
	    "tool_choice": {"type": "any", "disable_parallel_tool_use": true},
	    "temperature": 0.7, "top_p": 0.9, "stop_sequences": ["END"],
	    "metadata": {"user_id": "u1"}, "stream": true}));
}

static void
test_req_oa_an_small(void **state)
{
	/* no max tokens: the documented default; model from the body;
	 * several system texts: an array; developer counts as system */
	req_ok(OA, AN, J({"model": "m1", "messages": [
	    {"role": "system", "content": "A"},
	    {"role": "developer", "content": [{"type": "text", "text": "B"}]},
	    {"role": "user", "content": "hi"},
	    {"role": "assistant", "content": ""},
	    {"role": "user", "content": "again"}],
	    "stop": ["x", "y"], "tool_choice": "none"}), NULL, 0, J({
	    "model": "m1", "max_tokens": 4096,
	    "system": [{"type": "text", "text": "A"}, {"type": "text", "text": "B"}],
	    "messages": [{"role": "user", "content": [
	      {"type": "text", "text": "hi"}, {"type": "text", "text": "again"}]}],
	    "stop_sequences": ["x", "y"], "tool_choice": {"type": "none"}}));
	req_ok(OA, AN, J({"model": "m1", "max_tokens": 50, "messages": [
	    {"role": "user", "content": "hi"}], "tool_choice":
	    {"type": "function", "function": {"name": "f"}}}), "c", 0, J({
	    "model": "c", "max_tokens": 50, "messages": [
	    {"role": "user", "content": "hi"}], "tool_choice":
	    {"type": "tool", "name": "f"}}));
	req_ok(OA, AN, J({"messages": [{"role": "user", "content": "hi"}],
	    "tool_choice": "auto", "parallel_tool_calls": true}), "c", 0, J({
	    "model": "c", "max_tokens": 4096, "messages": [
	    {"role": "user", "content": "hi"}], "tool_choice": {"type": "auto"}}));
}

static void
test_req_oa_an_refused(void **state)
{
	const char *u = J("messages": [{"role": "user", "content": "hi"}]);
	char b[512];

#define BAD(extra, what) do { \
	snprintf(b, sizeof(b), "{%s,%s}", u, extra); \
	req_bad(OA, AN, b, what); \
} while (0)
	BAD(J("n": 2), "n other than 1");
	BAD(J("logprobs": true), "logprobs");
	BAD(J("top_logprobs": 3), "top_logprobs");
	BAD(J("response_format": {"type": "json_object"}), "response_format");
	BAD(J("functions": [{"name": "f"}]), "functions");
	BAD(J("audio": {"voice": "x"}), "audio");
	BAD(J("modalities": ["text", "audio"]), "only text");
	BAD(J("tools": [{"type": "web_search"}]), "tools[0]");
	BAD(J("tool_choice": "sometimes"), "tool_choice");
	BAD(J("max_tokens": "10"), "max_tokens");
	BAD(J("temperature": "hot"), "temperature");
	BAD(J("stop": 5), "stop");
#undef BAD
	req_bad(OA, AN, J({"messages": []}), "messages");
	req_bad(OA, AN, J({"model": "m"}), "messages");
	req_bad(OA, AN, J({"messages": [{"role": "function", "content": "x"}]}),
	    "role function");
	req_bad(OA, AN, J({"messages": [{"content": "x"}]}), "role");
	req_bad(OA, AN, J({"messages": [{"role": "user", "content": [
	    {"type": "input_audio", "input_audio": {}}]}]}), "input_audio");
	req_bad(OA, AN, J({"messages": [{"role": "user", "content": [
	    {"type": "image_url", "image_url": {"url": "data:image/png,abc"}}]}]}),
	    "data URL");
	req_bad(OA, AN, J({"messages": [{"role": "assistant", "tool_calls": [
	    {"id": "c", "type": "function", "function": {"name": "f",
	    "arguments": "[1]"}}]}]}), "arguments");
	req_bad(OA, AN, J({"messages": [{"role": "assistant", "tool_calls": [
	    {"type": "function", "function": {"name": "f"}}]}]}), "id");
	req_bad(OA, AN, J({"messages": [{"role": "tool", "content": "x"}]}),
	    "tool_call_id");
	req_bad(OA, AN, "[1]", "not a JSON object");
	req_bad(OA, AN, "{\"messages\":", "not JSON");
	req_bad(OA, AN, "", "not JSON");
	req_bad(DIA_CONVERSE, DIA_GEMINI, J({"messages": []}), "no translation");
}

/* ---------------- requests: Anthropic user -> OpenAI ---------------- */

static void
test_req_an_oa_full(void **state)
{
	req_ok(AN, OA, J({
	    "model": "claude-x", "max_tokens": 256, "temperature": 0.5, "top_p": 0.8,
	    "top_k": 5, "stop_sequences": ["STOP"], "metadata": {"user_id": "u9"},
	    "thinking": {"type": "enabled", "budget_tokens": 1024}, "stream": false,
	    "system": [{"type": "text", "text": "Rule one."},
	      {"type": "text", "text": "Rule two.", "cache_control": {"type": "ephemeral"}}],
	    "messages": [
	      {"role": "user", "content": "Look"},
	      {"role": "user", "content": [
	        {"type": "text", "text": "this:"},
	        {"type": "image", "source": {"type": "base64", "media_type": "image/jpeg", "data": "/9j/4AAQ"}},
	        {"type": "image", "source": {"type": "url", "url": "https://x.test/b.jpg"}}]},
	      {"role": "assistant", "content": [
	        {"type": "thinking", "thinking": "hmm", "signature": "sig"},
	        {"type": "text", "text": "Let me "}, {"type": "text", "text": "check."},
	        {"type": "tool_use", "id": "toolu_1", "name": "weather", "input": {"city": "Paris", "n": 1.5}},
	        {"type": "tool_use", "id": "toolu_2", "name": "time", "input": {}}]},
	      {"role": "user", "content": [
	        {"type": "tool_result", "tool_use_id": "toolu_1", "content": "18C"},
	        {"type": "tool_result", "tool_use_id": "toolu_2", "is_error": true,
	          "content": [{"type": "text", "text": "no"}, {"type": "text", "text": "clock"}]},
	        {"type": "text", "text": "And so?"}]},
	      {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_3", "name": "time", "input": {}}]},
	      {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_3"}]}],
	    "tools": [{"name": "weather", "description": "Weather",
	      "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}},
	      {"name": "time", "input_schema": {"type": "object"}, "cache_control": {"type": "ephemeral"}}],
	    "tool_choice": {"type": "any", "disable_parallel_tool_use": true}}),
	    "gpt-4o", 1, J({
	    "model": "gpt-4o",
	    "messages": [
	      {"role": "system", "content": "Rule one.\n\nRule two."},
	      {"role": "user", "content": "Look"},
	      {"role": "user", "content": [
	        {"type": "text", "text": "this:"},
	        {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,/9j/4AAQ"}},
	        {"type": "image_url", "image_url": {"url": "https://x.test/b.jpg"}}]},
	      {"role": "assistant", "content": "Let me check.", "tool_calls": [
	        {"id": "toolu_1", "type": "function", "function": {"name": "weather",
	          "arguments": "{\"city\":\"Paris\",\"n\":1.5}"}},
	        {"id": "toolu_2", "type": "function", "function": {"name": "time", "arguments": "{}"}}]},
	      {"role": "tool", "tool_call_id": "toolu_1", "content": "18C"},
	      {"role": "tool", "tool_call_id": "toolu_2", "content": "no\n\nclock"},
	      {"role": "user", "content": "And so?"},
	      {"role": "assistant", "content": null, "tool_calls": [
	        {"id": "toolu_3", "type": "function", "function": {"name": "time", "arguments": "{}"}}]},
	      {"role": "tool", "tool_call_id": "toolu_3", "content": ""}],
	    "tools": [
	      {"type": "function", "function": {"name": "weather", "description": "Weather",
	        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}},
	      {"type": "function", "function": {"name": "time", "parameters": {"type": "object"}}}],
	    "tool_choice": "required", "parallel_tool_calls": false,
	    "max_tokens": 256, "temperature": 0.5, "top_p": 0.8, "stop": ["STOP"],
	    "user": "u9", "stream": true, "stream_options": {"include_usage": true}}));
	req_ok(AN, OA, J({"model": "c", "max_tokens": 9, "system": "S",
	    "messages": [{"role": "user", "content": "hi"}],
	    "tool_choice": {"type": "tool", "name": "f"}}), NULL, 0, J({
	    "model": "c", "max_tokens": 9, "messages": [
	    {"role": "system", "content": "S"}, {"role": "user", "content": "hi"}],
	    "tool_choice": {"type": "function", "function": {"name": "f"}}}));
	req_ok(AN, OA, J({"model": "c", "messages": [{"role": "user",
	    "content": "hi"}], "tool_choice": {"type": "auto"}}), "o", 0, J({
	    "model": "o", "messages": [{"role": "user", "content": "hi"}],
	    "tool_choice": "auto"}));
}

static void
test_req_an_oa_refused(void **state)
{
	req_bad(AN, OA, J({"model": "c", "messages": [{"role": "user", "content": "hi"}],
	    "tools": [{"type": "web_search_20250305", "name": "web_search"}]}),
	    "tools[0]");
	req_bad(AN, OA, J({"model": "c", "messages": [{"role": "user", "content": [
	    {"type": "document", "source": {}}]}]}), "document");
	req_bad(AN, OA, J({"model": "c", "messages": [{"role": "user", "content": [
	    {"type": "tool_result", "tool_use_id": "t", "content": [
	    {"type": "image", "source": {}}]}]}]}), "only text");
	req_bad(AN, OA, J({"model": "c", "messages": [{"role": "user", "content": [
	    {"type": "image", "source": {"type": "file", "file_id": "f"}}]}]}),
	    "image sources");
	req_bad(AN, OA, J({"model": "c", "messages": [{"role": "system", "content": "x"}]}),
	    "role");
	req_bad(AN, OA, J({"model": "c", "messages": [{"role": "assistant", "content": [
	    {"type": "tool_use", "name": "f", "input": {}}]}]}), "id");
	req_bad(AN, OA, J({"model": "c", "messages": 1}), "messages");
	{
		struct xl_buf out = { 0 };
		char err[128] = "";

		assert_int_equal(xl_request(AN, OA, S(J({"messages": []})),
		    NULL, 0, &out, err, sizeof(err)), -1);
		assert_non_null(strstr(err, "model"));
		assert_int_equal(xl_request(OA, AN, S(J({"messages": [
		    {"role": "user", "content": "x"}]})), NULL, 0, &out, err,
		    sizeof(err)), -1);
		assert_non_null(strstr(err, "model"));
		assert_int_equal(out.len, 0);
	}
	req_bad(AN, OA, J({"model": "c", "messages": [], "system": 5}), "system");
	req_bad(AN, OA, J({"model": "c", "messages": [], "tool_choice": {"type": "x"}}),
	    "tool_choice");
	req_bad(AN, OA, J({"model": "c", "messages": [], "stop_sequences": [1]}),
	    "stop_sequences");
}

/* ---------------- responses ---------------- */

static void
test_resp_an_to_oa(void **state)
{
	resp_ok(OA, AN, J({"id": "msg_01", "type": "message", "role": "assistant",
	    "model": "claude-x", "content": [
	      {"type": "thinking", "thinking": "ponder", "signature": "s"},
	      {"type": "text", "text": "Checking "}, {"type": "text", "text": "now."},
	      {"type": "tool_use", "id": "toolu_1", "name": "weather", "input": {"city": "Paris"}}],
	    "stop_reason": "tool_use", "stop_sequence": null,
	    "usage": {"input_tokens": 10, "cache_read_input_tokens": 100,
	      "cache_creation_input_tokens": 5, "output_tokens": 20}}), "gpt-4o", J({
	    "id": "chatcmpl-msg_01", "object": "chat.completion", "model": "gpt-4o",
	    "choices": [{"index": 0, "logprobs": null, "finish_reason": "tool_calls",
	      "message": {"role": "assistant", "content": "Checking now.", "refusal": null,
	        "reasoning_content": "ponder", "tool_calls": [{"id": "toolu_1",
	        "type": "function", "function": {"name": "weather",
	        "arguments": "{\"city\":\"Paris\"}"}}]}}],
	    "usage": {"prompt_tokens": 115, "completion_tokens": 20, "total_tokens": 135,
	      "prompt_tokens_details": {"cached_tokens": 100}}}));
	/* stop reasons; tool calls only: content null; no usage: zeros */
	resp_ok(OA, AN, J({"id": "m", "type": "message", "model": "c", "content": [
	    {"type": "text", "text": "cut"}], "stop_reason": "max_tokens"}), NULL, J({
	    "id": "chatcmpl-m", "object": "chat.completion", "model": "c",
	    "choices": [{"index": 0, "logprobs": null, "finish_reason": "length",
	      "message": {"role": "assistant", "content": "cut", "refusal": null}}],
	    "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0,
	      "prompt_tokens_details": {"cached_tokens": 0}}}));
	resp_ok(OA, AN, J({"id": "m", "type": "message", "content": [
	    {"type": "tool_use", "id": "t", "name": "f", "input": {}}],
	    "stop_reason": "stop_sequence", "usage": {"input_tokens": 1, "output_tokens": 2}}),
	    "g", J({"id": "chatcmpl-m", "object": "chat.completion", "model": "g",
	    "choices": [{"index": 0, "logprobs": null, "finish_reason": "stop",
	      "message": {"role": "assistant", "content": null, "refusal": null,
	      "tool_calls": [{"id": "t", "type": "function", "function": {"name": "f",
	      "arguments": "{}"}}]}}],
	    "usage": {"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3,
	      "prompt_tokens_details": {"cached_tokens": 0}}}));
}

static void
test_resp_oa_to_an(void **state)
{
	resp_ok(AN, OA, J({"id": "chatcmpl-9", "object": "chat.completion", "created": 1,
	    "model": "gpt-4o", "choices": [{"index": 0, "finish_reason": "tool_calls",
	      "message": {"role": "assistant", "content": "Sure.", "tool_calls": [
	        {"id": "call_1", "type": "function", "function": {"name": "weather",
	          "arguments": "{\"city\":\"Rome\"}"}},
	        {"id": "call_2", "type": "function", "function": {"name": "bad",
	          "arguments": "{\"unfinished"}}]}}],
	    "usage": {"prompt_tokens": 120, "completion_tokens": 30, "total_tokens": 150,
	      "prompt_tokens_details": {"cached_tokens": 100}}}), "claude-x", J({
	    "id": "msg_chatcmpl-9", "type": "message", "role": "assistant",
	    "model": "claude-x", "content": [
	      {"type": "text", "text": "Sure."},
	      {"type": "tool_use", "id": "call_1", "name": "weather", "input": {"city": "Rome"}},
	      {"type": "tool_use", "id": "call_2", "name": "bad", "input": {}}],
	    "stop_reason": "tool_use", "stop_sequence": null,
	    "usage": {"input_tokens": 20, "cache_creation_input_tokens": 0,
	      "cache_read_input_tokens": 100, "output_tokens": 30}}));
	resp_ok(AN, OA, J({"id": "c", "model": "ds", "choices": [{"finish_reason": "length",
	    "message": {"content": "abc", "reasoning_content": "think"}}],
	    "usage": {"prompt_tokens": 10, "completion_tokens": 3,
	      "prompt_cache_hit_tokens": 4, "prompt_cache_miss_tokens": 6}}), NULL, J({
	    "id": "msg_c", "type": "message", "role": "assistant", "model": "ds",
	    "content": [{"type": "text", "text": "abc"}], "stop_reason": "max_tokens",
	    "stop_sequence": null, "usage": {"input_tokens": 6,
	      "cache_creation_input_tokens": 0, "cache_read_input_tokens": 4,
	      "output_tokens": 3}}));
	resp_ok(AN, OA, J({"id": "c", "choices": [{"finish_reason": "content_filter",
	    "message": {"content": null, "refusal": "I can't."}}]}), "m", J({
	    "id": "msg_c", "type": "message", "role": "assistant", "model": "m",
	    "content": [{"type": "text", "text": "I can't."}], "stop_reason": "refusal",
	    "stop_sequence": null, "usage": {"input_tokens": 0,
	      "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0,
	      "output_tokens": 0}}));
}

static void
test_resp_malformed(void **state)
{
	static const struct {
		enum prov_dialect from, to;
		const char *body;
	} bad[] = {
		{ OA, AN, "" }, { OA, AN, "nope" }, { OA, AN, "[]" },
		{ OA, AN, J({"type": "error", "error": {"type": "x", "message": "y"}}) },
		{ OA, AN, J({"type": "message", "content": "text"}) },
		{ AN, OA, J({"error": {"message": "x"}}) },
		{ AN, OA, J({"choices": []}) },
		{ AN, OA, J({"choices": [{"message": "hi"}]}) },
		{ AN, OA, "{\"choices\":[{\"message\":{\"content\":\"a\"}}]" },
		{ OA, DIA_CONVERSE, "{}" },
	};
	struct xl_buf out = { 0 };
	char err[128];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		size_t n;
		char *c = dup_exact(bad[i].body, &n);

		err[0] = '\0';
		if (xl_response(bad[i].from, bad[i].to, c, n, "m", &out, err,
		    sizeof(err)) != -1)
			fail_msg("accepted %s", bad[i].body);
		assert_true(err[0] != '\0');
		assert_int_equal(out.len, 0);
		free(c);
	}
	xl_buf_free(&out);
}

/* ---------------- errors ---------------- */

static void
test_errors(void **state)
{
	struct xl_buf out = { 0 };

	/* Anthropic -> OpenAI users: the type decides; code says which */
	err_ok(OA, AN, 529, J({"type": "error", "error": {"type": "overloaded_error",
	    "message": "Overloaded"}}), J({"error": {"message": "Overloaded",
	    "type": "server_error", "param": null, "code": "overloaded_error"}}));
	err_ok(OA, AN, 400, J({"type": "error", "error": {"type": "invalid_request_error",
	    "message": "max_tokens: too big"}}), J({"error": {"message": "max_tokens: too big",
	    "type": "invalid_request_error", "param": null, "code": "invalid_request_error"}}));
	err_ok(OA, AN, 401, J({"type": "error", "error": {"type": "authentication_error",
	    "message": "bad key"}}), J({"error": {"message": "bad key",
	    "type": "authentication_error", "param": null, "code": "authentication_error"}}));
	err_ok(OA, AN, 429, J({"type": "error", "error": {"type": "rate_limit_error",
	    "message": "slow"}}), J({"error": {"message": "slow", "type": "rate_limit_error",
	    "param": null, "code": "rate_limit_error"}}));
	err_ok(OA, AN, 413, J({"type": "error", "error": {"type": "request_too_large",
	    "message": "big"}}), J({"error": {"message": "big", "type": "invalid_request_error",
	    "param": null, "code": "request_too_large"}}));
	/* unknown type: by status */
	err_ok(OA, AN, 404, J({"type": "error", "error": {"type": "odd", "message": "m"}}),
	    J({"error": {"message": "m", "type": "not_found_error", "param": null,
	    "code": "odd"}}));

	/* OpenAI -> Anthropic users: a status of its own decides */
	err_ok(AN, OA, 401, J({"error": {"message": "Incorrect API key",
	    "type": "invalid_request_error", "param": null, "code": "invalid_api_key"}}),
	    J({"type": "error", "error": {"type": "authentication_error",
	    "message": "Incorrect API key"}}));
	err_ok(AN, OA, 429, J({"error": {"message": "quota", "type": "insufficient_quota",
	    "param": null, "code": "insufficient_quota"}}), J({"type": "error",
	    "error": {"type": "billing_error", "message": "quota"}}));
	err_ok(AN, OA, 429, J({"error": {"message": "rpm", "type": "requests"}}),
	    J({"type": "error", "error": {"type": "rate_limit_error", "message": "rpm"}}));
	err_ok(AN, OA, 400, J({"error": {"message": "bad", "type": "invalid_request_error",
	    "param": "messages", "code": null}}), J({"type": "error",
	    "error": {"type": "invalid_request_error", "message": "bad"}}));
	err_ok(AN, OA, 500, J({"error": {"message": "oops", "type": "server_error"}}),
	    J({"type": "error", "error": {"type": "api_error", "message": "oops"}}));
	err_ok(AN, OA, 503, J({"error": {"message": "busy", "type": "server_error"}}),
	    J({"type": "error", "error": {"type": "overloaded_error", "message": "busy"}}));
	err_ok(AN, OA, 400, J({"error": "plain string"}), J({"type": "error",
	    "error": {"type": "invalid_request_error", "message": "plain string"}}));
	/* same dialect: param and code kept */
	err_ok(OA, OA, 400, J({"error": {"message": "bad", "type": "invalid_request_error",
	    "param": "messages", "code": "x"}}), J({"error": {"message": "bad",
	    "type": "invalid_request_error", "param": "messages", "code": "x"}}));

	/* not the provider's error JSON: its text is the message */
	err_ok(OA, AN, 502, "<html>Bad Gateway</html>", J({"error": {
	    "message": "<html>Bad Gateway</html>", "type": "server_error",
	    "param": null, "code": null}}));
	err_ok(AN, OA, 504, J({"detail": "timeout"}), J({"type": "error",
	    "error": {"type": "timeout_error", "message": "{\"detail\": \"timeout\"}"}}));
	err_ok(AN, OA, 503, "", J({"type": "error", "error": {
	    "type": "overloaded_error", "message": "provider returned HTTP 503"}}));
	err_ok(OA, AN, 500, "bad \xff\xfe utf8", J({"error": {
	    "message": "bad ?? utf8", "type": "server_error", "param": null,
	    "code": null}}));
	/* Gemini's error shape is read (its status names the class). */
	err_ok(AN, DIA_GEMINI, 403, J({"error": {"code": 403, "message": "denied"}}),
	    J({"type": "error", "error": {"type": "permission_error",
	    "message": "denied"}}));
	/* NUL bytes in a non-JSON body: '?' (a C reader of the body would
	 * stop at an escaped NUL) */
	xl_error(AN, OA, 500, "a\0b", 3, &out);
	json_eq(out.p, out.len, J({"type": "error", "error": {
	    "type": "api_error", "message": "a?b"}}));
	xl_buf_free(&out);
	xl_error(OA, AN, 500, NULL, 0, &out);
	json_eq(out.p, out.len, J({"error": {"message": "provider returned HTTP 500",
	    "type": "server_error", "param": null, "code": null}}));
	xl_buf_free(&out);

	/* the hub's own errors */
	xl_error_msg(OA, 400, "n other than 1 ...", &out);
	json_eq(out.p, out.len, J({"error": {"message": "n other than 1 ...",
	    "type": "invalid_request_error", "param": null, "code": null}}));
	xl_buf_free(&out);
	xl_error_msg(AN, 400, "bad", &out);
	json_eq(out.p, out.len, J({"type": "error", "error": {
	    "type": "invalid_request_error", "message": "bad"}}));
	xl_buf_free(&out);
}

/* ---------------- streams: Anthropic provider -> OpenAI user ---------------- */

#define CH(delta, fin) \
	"- {\"id\":\"chatcmpl-msg_01\",\"object\":\"chat.completion.chunk\"," \
	"\"model\":\"gpt-4o\",\"usage\":null,\"choices\":[{\"index\":0," \
	"\"delta\":" delta ",\"logprobs\":null,\"finish_reason\":" fin "}]}"

static void
test_stream_an_to_oa(void **state)
{
	struct xl_stream *s = xl_stream_new(OA, AN, "gpt-4o", 1);
	struct xl_buf out = { 0 };

	assert_non_null(s);
	feed(s, "message_start", J({"type": "message_start", "message": {
	    "id": "msg_01", "type": "message", "role": "assistant",
	    "model": "claude-x", "content": [], "stop_reason": null,
	    "stop_sequence": null, "usage": {"input_tokens": 25,
	    "cache_creation_input_tokens": 3, "cache_read_input_tokens": 100,
	    "output_tokens": 1}}}), (const char *const[]){
	    CH("{\"role\":\"assistant\",\"content\":\"\"}", "null"), NULL });
	feed(s, "ping", J({"type": "ping"}), none);
	feed(s, "content_block_start", J({"type": "content_block_start",
	    "index": 0, "content_block": {"type": "text", "text": ""}}), none);
	feed(s, "content_block_delta", J({"type": "content_block_delta",
	    "index": 0, "delta": {"type": "text_delta", "text": "Hello"}}),
	    (const char *const[]){ CH("{\"content\":\"Hello\"}", "null"),
	    NULL });
	feed(s, "content_block_delta", J({"type": "content_block_delta",
	    "index": 0, "delta": {"type": "text_delta", "text": " there"}}),
	    (const char *const[]){ CH("{\"content\":\" there\"}", "null"),
	    NULL });
	feed(s, "content_block_stop", J({"type": "content_block_stop",
	    "index": 0}), none);
	feed(s, "content_block_start", J({"type": "content_block_start",
	    "index": 1, "content_block": {"type": "tool_use", "id": "toolu_1",
	    "name": "weather", "input": {}}}), (const char *const[]){
	    CH("{\"tool_calls\":[{\"index\":0,\"id\":\"toolu_1\",\"type\":"
	    "\"function\",\"function\":{\"name\":\"weather\",\"arguments\":"
	    "\"\"}}]}", "null"), NULL });
	feed(s, "content_block_delta", J({"type": "content_block_delta",
	    "index": 1, "delta": {"type": "input_json_delta",
	    "partial_json": ""}}), none);
	feed(s, "content_block_delta", J({"type": "content_block_delta",
	    "index": 1, "delta": {"type": "input_json_delta",
	    "partial_json": "{\"city\": "}}), (const char *const[]){
	    CH("{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":"
	    "\"{\\\"city\\\": \"}}]}", "null"), NULL });
	feed(s, "content_block_delta", J({"type": "content_block_delta",
	    "index": 1, "delta": {"type": "input_json_delta",
	    "partial_json": "\"Paris\"}"}}), (const char *const[]){
	    CH("{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":"
	    "\"\\\"Paris\\\"}\"}}]}", "null"), NULL });
	feed(s, "content_block_stop", J({"type": "content_block_stop",
	    "index": 1}), none);
	/* a second tool call gets index 1 */
	feed(s, "content_block_start", J({"type": "content_block_start",
	    "index": 2, "content_block": {"type": "tool_use", "id": "toolu_2",
	    "name": "time", "input": {}}}), (const char *const[]){
	    CH("{\"tool_calls\":[{\"index\":1,\"id\":\"toolu_2\",\"type\":"
	    "\"function\",\"function\":{\"name\":\"time\",\"arguments\":"
	    "\"\"}}]}", "null"), NULL });
	feed(s, "content_block_stop", J({"type": "content_block_stop",
	    "index": 2}), none);
	feed(s, "some_future_event", J({"type": "some_future_event"}), none);
	assert_int_equal(feed(s, "message_delta", J({"type": "message_delta",
	    "delta": {"stop_reason": "tool_use", "stop_sequence": null},
	    "usage": {"output_tokens": 42}}), (const char *const[]){
	    CH("{}", "\"tool_calls\""), NULL }), 0);
	/* usage: prompt = 25 + 100 + 3, cached = 100 */
	assert_int_equal(feed(s, "message_stop", J({"type": "message_stop"}),
	    (const char *const[]){ "- {\"id\":\"chatcmpl-msg_01\",\"object\":"
	    "\"chat.completion.chunk\",\"model\":\"gpt-4o\",\"choices\":[],"
	    "\"usage\":{\"prompt_tokens\":128,\"completion_tokens\":42,"
	    "\"total_tokens\":170,\"prompt_tokens_details\":{\"cached_tokens\""
	    ":100}}}", "[DONE]", NULL }), 1);
	/* closed: more events and the end add nothing */
	assert_int_equal(feed(s, "ping", J({"type": "ping"}), none), 1);
	xl_stream_end(s, 1, &out);
	assert_int_equal(out.len, 0);
	xl_stream_free(s);
}

#undef CH
#define CH(delta, fin) \
	"- {\"id\":\"chatcmpl-m2\",\"object\":\"chat.completion.chunk\"," \
	"\"model\":\"claude-x\",\"choices\":[{\"index\":0," \
	"\"delta\":" delta ",\"logprobs\":null,\"finish_reason\":" fin "}]}"

static void
test_stream_an_to_oa_more(void **state)
{
	struct xl_stream *s = xl_stream_new(OA, AN, NULL, 0);
	struct xl_buf out = { 0 };

	/* no event names (type decides), the provider's model, thinking as
	 * reasoning_content, no usage chunk when not asked */
	feed(s, NULL, J({"type": "message_start", "message": {"id": "m2",
	    "model": "claude-x", "usage": {"input_tokens": 5}}}),
	    (const char *const[]){ CH("{\"role\":\"assistant\","
	    "\"content\":\"\"}", "null"), NULL });
	feed(s, "", J({"type": "content_block_start", "index": 0,
	    "content_block": {"type": "thinking", "thinking": ""}}), none);
	feed(s, NULL, J({"type": "content_block_delta", "index": 0,
	    "delta": {"type": "thinking_delta", "thinking": "hmm"}}),
	    (const char *const[]){ CH("{\"reasoning_content\":\"hmm\"}",
	    "null"), NULL });
	feed(s, NULL, J({"type": "content_block_delta", "index": 0,
	    "delta": {"type": "signature_delta", "signature": "x"}}), none);
	feed(s, NULL, J({"type": "message_delta", "delta": {"stop_reason":
	    "max_tokens"}, "usage": {"output_tokens": 9}}),
	    (const char *const[]){ CH("{}", "\"length\""), NULL });
	/* upstream ended without message_stop, but the finish was seen */
	xl_stream_end(s, 1, &out);
	assert_string_equal(out.p, "data: [DONE]\n\n");
	xl_buf_free(&out);
	xl_stream_free(s);

	/* an error mid-stream: the user's error event, and the end */
	s = xl_stream_new(OA, AN, "g", 1);
	feed(s, "message_start", J({"type": "message_start", "message":
	    {"id": "m3", "usage": {}}}), (const char *const[]){
	    "- {\"id\":\"chatcmpl-m3\",\"object\":\"chat.completion.chunk\","
	    "\"model\":\"g\",\"usage\":null,\"choices\":[{\"index\":0,"
	    "\"delta\":{\"role\":\"assistant\",\"content\":\"\"},"
	    "\"logprobs\":null,\"finish_reason\":null}]}", NULL });
	assert_int_equal(feed(s, "error", J({"type": "error", "error": {
	    "type": "overloaded_error", "message": "Overloaded"}}),
	    (const char *const[]){ "- {\"error\":{\"message\":\"Overloaded\","
	    "\"type\":\"server_error\",\"param\":null,\"code\":"
	    "\"overloaded_error\"}}", NULL }), 1);
	assert_int_equal(feed(s, "message_stop", J({"type": "message_stop"}),
	    none), 1);
	xl_stream_end(s, 0, &out);
	assert_int_equal(out.len, 0);
	xl_stream_free(s);

	/* cut short: an error event, no [DONE]; even with ok=1 when the
	 * finish never came */
	for (int ok = 0; ok < 2; ok++) {
		s = xl_stream_new(OA, AN, "g", 0);
		xl_stream_end(s, ok, &out);
		json_eq(out.p + 6, out.len - 8, J({"error": {"message":
		    "the provider's stream ended before the answer was complete",
		    "type": "server_error", "param": null, "code": null}}));
		assert_memory_equal(out.p, "data: ", 6);
		xl_stream_end(s, ok, &out);	/* idempotent */
		assert_int_equal(out.len, strlen(out.p));
		assert_string_equal(out.p + out.len - 2, "\n\n");
		assert_null(strstr(out.p + 6, "data:"));
		xl_buf_free(&out);
		xl_stream_free(s);
	}
}

static void
test_stream_an_malformed(void **state)
{
	static const char *const bad[] = {
		"", "not json", "[1]", J({"no": "type"}),
		J({"type": "message_start"}),
		J({"type": "message_start", "message": 1}),
		J({"type": "content_block_start", "index": -1,
		    "content_block": {"type": "text"}}),
		J({"type": "content_block_start", "index": 99999,
		    "content_block": {"type": "text"}}),
		J({"type": "content_block_start", "index": 0}),
		J({"type": "content_block_delta", "index": "0",
		    "delta": {"type": "text_delta", "text": "x"}}),
		J({"type": "content_block_delta", "index": 0,
		    "delta": {"type": "text_delta", "text": 5}}),
		J({"type": "content_block_delta", "index": 0,
		    "delta": {"type": "input_json_delta"}}),
		J({"type": "message_delta", "delta": 3}),
	};
	struct xl_stream *s = xl_stream_new(OA, AN, "g", 1);
	struct xl_buf out = { 0 };

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		size_t n;
		char *c = dup_exact(bad[i], &n);

		if (xl_stream_event(s, NULL, c, n, &out) != -1)
			fail_msg("accepted %s", bad[i]);
		assert_int_equal(out.len, 0);
		free(c);
	}
	/* a comment-only block (no data) is nothing */
	assert_int_equal(xl_stream_event(s, NULL, NULL, 0, &out), 0);
	assert_int_equal(out.len, 0);
	xl_stream_free(s);
	xl_buf_free(&out);
}

/* ---------------- streams: OpenAI provider -> Anthropic user ---------------- */

static void
test_stream_oa_to_an(void **state)
{
	struct xl_stream *s = xl_stream_new(AN, OA, "claude-x", 0);
	struct xl_buf out = { 0 };

#define OCH(body) "{\"id\":\"c1\",\"object\":\"chat.completion.chunk\"," \
	"\"model\":\"gpt-4o\",\"usage\":null,\"choices\":[" body "]}"
	assert_non_null(s);
	feed(s, NULL, OCH("{\"index\":0,\"delta\":{\"role\":\"assistant\","
	    "\"content\":\"\"},\"finish_reason\":null}"),
	    (const char *const[]){ "message_start {\"type\":\"message_start\","
	    "\"message\":{\"id\":\"msg_c1\",\"type\":\"message\",\"role\":"
	    "\"assistant\",\"model\":\"claude-x\",\"content\":[],"
	    "\"stop_reason\":null,\"stop_sequence\":null,\"usage\":{"
	    "\"input_tokens\":0,\"output_tokens\":0}}}", NULL });
	feed(s, NULL, OCH("{\"index\":0,\"delta\":{\"content\":\"Let me\"},"
	    "\"finish_reason\":null}"), (const char *const[]){
	    "content_block_start {\"type\":\"content_block_start\",\"index\":0,"
	    "\"content_block\":{\"type\":\"text\",\"text\":\"\"}}",
	    "content_block_delta {\"type\":\"content_block_delta\",\"index\":0,"
	    "\"delta\":{\"type\":\"text_delta\",\"text\":\"Let me\"}}", NULL });
	feed(s, NULL, OCH("{\"index\":0,\"delta\":{\"content\":\" check.\"},"
	    "\"finish_reason\":null}"), (const char *const[]){
	    "content_block_delta {\"type\":\"content_block_delta\",\"index\":0,"
	    "\"delta\":{\"type\":\"text_delta\",\"text\":\" check.\"}}", NULL });
	feed(s, NULL, OCH("{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,"
	    "\"id\":\"call_a\",\"type\":\"function\",\"function\":{\"name\":"
	    "\"weather\",\"arguments\":\"\"}}]},\"finish_reason\":null}"),
	    (const char *const[]){
	    "content_block_stop {\"type\":\"content_block_stop\",\"index\":0}",
	    "content_block_start {\"type\":\"content_block_start\",\"index\":1,"
	    "\"content_block\":{\"type\":\"tool_use\",\"id\":\"call_a\","
	    "\"name\":\"weather\",\"input\":{}}}", NULL });
	feed(s, NULL, OCH("{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,"
	    "\"function\":{\"arguments\":\"{\\\"city\\\":\"}}]},"
	    "\"finish_reason\":null}"), (const char *const[]){
	    "content_block_delta {\"type\":\"content_block_delta\",\"index\":1,"
	    "\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":"
	    "\"{\\\"city\\\":\"}}", NULL });
	feed(s, NULL, OCH("{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,"
	    "\"function\":{\"arguments\":\"\\\"Rome\\\"}\"}}]},"
	    "\"finish_reason\":null}"), (const char *const[]){
	    "content_block_delta {\"type\":\"content_block_delta\",\"index\":1,"
	    "\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":"
	    "\"\\\"Rome\\\"}\"}}", NULL });
	feed(s, NULL, OCH("{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":1,"
	    "\"id\":\"call_b\",\"type\":\"function\",\"function\":{\"name\":"
	    "\"time\",\"arguments\":\"{}\"}}]},\"finish_reason\":null}"),
	    (const char *const[]){
	    "content_block_stop {\"type\":\"content_block_stop\",\"index\":1}",
	    "content_block_start {\"type\":\"content_block_start\",\"index\":2,"
	    "\"content_block\":{\"type\":\"tool_use\",\"id\":\"call_b\","
	    "\"name\":\"time\",\"input\":{}}}",
	    "content_block_delta {\"type\":\"content_block_delta\",\"index\":2,"
	    "\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":"
	    "\"{}\"}}", NULL });
	feed(s, NULL, OCH("{\"index\":0,\"delta\":{},\"finish_reason\":"
	    "\"tool_calls\"}"), (const char *const[]){
	    "content_block_stop {\"type\":\"content_block_stop\",\"index\":2}",
	    NULL });
	/* the usage chunk: input = prompt - cached */
	feed(s, NULL, "{\"id\":\"c1\",\"object\":\"chat.completion.chunk\","
	    "\"model\":\"gpt-4o\",\"choices\":[],\"usage\":{\"prompt_tokens\":"
	    "50,\"completion_tokens\":12,\"total_tokens\":62,"
	    "\"prompt_tokens_details\":{\"cached_tokens\":30}}}", none);
	assert_int_equal(feed(s, NULL, "[DONE]", (const char *const[]){
	    "message_delta {\"type\":\"message_delta\",\"delta\":{"
	    "\"stop_reason\":\"tool_use\",\"stop_sequence\":null},\"usage\":{"
	    "\"input_tokens\":20,\"cache_creation_input_tokens\":0,"
	    "\"cache_read_input_tokens\":30,\"output_tokens\":12}}",
	    "message_stop {\"type\":\"message_stop\"}", NULL }), 1);
	xl_stream_end(s, 1, &out);
	assert_int_equal(out.len, 0);
	xl_stream_free(s);
#undef OCH
}

static void
test_stream_oa_to_an_more(void **state)
{
	struct xl_stream *s;
	struct xl_buf out = { 0 };
	const char *start = "message_start {\"type\":\"message_start\","
	    "\"message\":{\"id\":\"msg_c2\",\"type\":\"message\",\"role\":"
	    "\"assistant\",\"model\":\"ds\",\"content\":[],"
	    "\"stop_reason\":null,\"stop_sequence\":null,\"usage\":{"
	    "\"input_tokens\":0,\"output_tokens\":0}}}";

	/* Azure's first chunk has no choices; reasoning is dropped; the
	 * provider's model; finish without usage, then upstream ends
	 * without [DONE] */
	s = xl_stream_new(AN, OA, NULL, 0);
	feed(s, NULL, J({"id": "c2", "model": "ds", "choices": [],
	    "prompt_filter_results": []}), (const char *const[]){ start,
	    NULL });
	feed(s, NULL, J({"id": "c2", "choices": [{"index": 0, "delta":
	    {"reasoning_content": "hmm"}}]}), none);
	feed(s, NULL, J({"id": "c2", "choices": [{"index": 0, "delta":
	    {"content": "Hi"}, "finish_reason": "length"}]}),
	    (const char *const[]){
	    "content_block_start {\"type\":\"content_block_start\",\"index\":0,"
	    "\"content_block\":{\"type\":\"text\",\"text\":\"\"}}",
	    "content_block_delta {\"type\":\"content_block_delta\",\"index\":0,"
	    "\"delta\":{\"type\":\"text_delta\",\"text\":\"Hi\"}}",
	    "content_block_stop {\"type\":\"content_block_stop\",\"index\":0}",
	    NULL });
	xl_stream_end(s, 1, &out);
	assert_non_null(strstr(out.p, "event: message_delta\ndata: "
	    "{\"type\":\"message_delta\",\"delta\":{\"stop_reason\":"
	    "\"max_tokens\",\"stop_sequence\":null},\"usage\":"
	    "{\"output_tokens\":0}}\n\nevent: message_stop\n"));
	xl_buf_free(&out);
	xl_stream_free(s);

	/* an error chunk mid-stream */
	s = xl_stream_new(AN, OA, "c", 0);
	assert_int_equal(feed(s, NULL, J({"error": {"message": "boom",
	    "type": "server_error", "code": null}}), (const char *const[]){
	    "error {\"type\":\"error\",\"error\":{\"type\":\"api_error\","
	    "\"message\":\"boom\"}}", NULL }), 1);
	xl_stream_end(s, 0, &out);
	assert_int_equal(out.len, 0);
	xl_stream_free(s);

	/* cut: event error */
	s = xl_stream_new(AN, OA, "c", 0);
	xl_stream_end(s, 0, &out);
	assert_string_equal(out.p, "event: error\ndata: {\"type\":\"error\","
	    "\"error\":{\"type\":\"api_error\",\"message\":\"the provider's "
	    "stream ended before the answer was complete\"}}\n\n");
	xl_buf_free(&out);
	xl_stream_free(s);

	/* tool calls without index; going back to a closed call is -1 */
	s = xl_stream_new(AN, OA, "c", 0);
	assert_int_equal(xl_stream_event(s, NULL, J({"id": "x", "choices": [{
	    "delta": {"tool_calls": [{"id": "t1", "function": {"name": "f",
	    "arguments": "{"}}]}}]}), strlen(J({"id": "x", "choices": [{
	    "delta": {"tool_calls": [{"id": "t1", "function": {"name": "f",
	    "arguments": "{"}}]}}]})), &out), 0);
	assert_non_null(strstr(out.p, "\"id\":\"t1\""));
	xl_buf_reset(&out);
	assert_string_equal(out.p, "");
	feed(s, NULL, J({"choices": [{"delta": {"tool_calls": [{"function":
	    {"arguments": "}"}}]}}]}), (const char *const[]){
	    "content_block_delta {\"type\":\"content_block_delta\",\"index\":0,"
	    "\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"}\"}}",
	    NULL });
	feed(s, NULL, J({"choices": [{"delta": {"tool_calls": [{"index": 1,
	    "function": {"name": "g"}}]}}]}), (const char *const[]){
	    "content_block_stop {\"type\":\"content_block_stop\",\"index\":0}",
	    "content_block_start {\"type\":\"content_block_start\",\"index\":1,"
	    "\"content_block\":{\"type\":\"tool_use\",\"id\":\"toolu_1\","
	    "\"name\":\"g\",\"input\":{}}}", NULL });
	xl_buf_reset(&out);
	assert_int_equal(xl_stream_event(s, NULL, J({"choices": [{"delta":
	    {"tool_calls": [{"index": 0, "function": {"arguments": "x"}}]}}]}),
	    strlen(J({"choices": [{"delta": {"tool_calls": [{"index": 0,
	    "function": {"arguments": "x"}}]}}]})), &out), -1);
	assert_int_equal(out.len, 0);
	xl_buf_free(&out);
	xl_stream_free(s);
}

static void
test_stream_oa_malformed(void **state)
{
	static const char *const bad[] = {
		"", "[DONE", "nope", "7", J({"choices": 1}),
		J({"choices": [1]}), J({"usage": "x"}),
		J({"choices": [{"delta": {"tool_calls": {}}}]}),
		J({"choices": [{"delta": {"tool_calls": [1]}}]}),
		J({"choices": [{"delta": {"tool_calls": [{"index": -1}]}}]}),
		J({"choices": [{"delta": {"tool_calls": [{"index": 5000}]}}]}),
		J({"choices": [{"delta": {"tool_calls": [{"index": "0"}]}}]}),
	};
	struct xl_buf out = { 0 };

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct xl_stream *s = xl_stream_new(AN, OA, "c", 0);
		size_t n;
		char *c = dup_exact(bad[i], &n);

		if (xl_stream_event(s, NULL, c, n, &out) != -1)
			fail_msg("accepted %s", bad[i]);
		assert_int_equal(out.len, 0);
		free(c);
		xl_stream_free(s);
	}
	xl_buf_free(&out);
}

/* ---------------- OpenAI user -> Gemini provider ---------------- */

#define GM	DIA_GEMINI

static void
test_req_oa_gm(void **state)
{
	(void)state;
	req_ok(OA, GM, J({"model": "g", "stream": true,
	    "messages": [
	      {"role": "system", "content": "sys one"},
	      {"role": "developer", "content": [{"type": "text", "text": "dev"}]},
	      {"role": "user", "content": [{"type": "text", "text": "look"},
	        {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
	        {"type": "image_url", "image_url": {"url": "https://x.test/a.webp"}}]},
	      {"role": "assistant", "content": "calling",
	       "tool_calls": [{"id": "c1", "type": "function",
	         "function": {"name": "f", "arguments": "{\"a\":1}"}}]},
	      {"role": "tool", "tool_call_id": "c1", "content": "42"},
	      {"role": "user", "content": "and?"}],
	    "tools": [{"type": "function", "function": {"name": "f",
	      "description": "d", "parameters": {"type": "object"}}}],
	    "tool_choice": {"type": "function", "function": {"name": "f"}},
	    "max_completion_tokens": 9, "temperature": 0.7, "top_p": 0.5,
	    "stop": "END", "seed": 3, "response_format": {"type": "json_object"}}),
	    "g", 1, J({
	    "contents": [
	      {"role": "user", "parts": [{"text": "look"},
	        {"inlineData": {"mimeType": "image/png", "data": "AAAA"}},
	        {"fileData": {"mimeType": "image/webp", "fileUri": "https://x.test/a.webp"}}]},
	      {"role": "model", "parts": [{"text": "calling"},
	        {"functionCall": {"name": "f", "args": {"a": 1}, "id": "c1"}}]},
	      {"role": "user", "parts": [
	        {"functionResponse": {"name": "f", "id": "c1", "response": {"content": "42"}}},
	        {"text": "and?"}]}],
	    "systemInstruction": {"parts": [{"text": "sys one"}, {"text": "dev"}]},
	    "tools": [{"functionDeclarations": [{"name": "f", "description": "d",
	      "parametersJsonSchema": {"type": "object"}}]}],
	    "toolConfig": {"functionCallingConfig": {"mode": "ANY",
	      "allowedFunctionNames": ["f"]}},
	    "generationConfig": {"temperature": 0.7, "topP": 0.5, "seed": 3,
	      "maxOutputTokens": 9, "stopSequences": ["END"],
	      "responseMimeType": "application/json"}}));
	req_ok(OA, GM, J({"model": "g", "messages": [{"role": "user", "content": "hi"}],
	    "tool_choice": "none", "max_tokens": 4}), NULL, 0,
	    J({"contents": [{"role": "user", "parts": [{"text": "hi"}]}],
	    "toolConfig": {"functionCallingConfig": {"mode": "NONE"}},
	    "generationConfig": {"maxOutputTokens": 4}}));
	req_bad(OA, GM, J({"messages": []}), "non-empty");
	req_bad(OA, GM, J({"messages": [{"role": "user", "content": "x"}], "n": 2}), "n > 1");
	req_bad(OA, GM, J({"messages": [{"role": "tool", "tool_call_id": "zz",
	    "content": "x"}]}), "tool_call_id");
	req_bad(OA, GM, J({"messages": [{"role": "user", "content": [
	    {"type": "input_audio", "input_audio": {}}]}]}), "input_audio");
	req_bad(OA, GM, J({"messages": [{"role": "user", "content": [
	    {"type": "image_url", "image_url": {"url": "data:nope"}}]}]}), "data URL");
	req_bad(OA, GM, J({"messages": [{"role": "system", "content": "only"}]}),
	    "user message");
	req_bad(OA, GM, J({"messages": [{"role": "user", "content": "x"}],
	    "tools": [{"type": "web_search"}]}), "function tools");
	req_bad(OA, GM, J({"messages": [{"role": "assistant", "content": "",
	    "tool_calls": [{"id": "a", "function": {"name": "f", "arguments": "[1]"}}]}]}),
	    "JSON object");
}

static void
test_resp_gm_to_oa(void **state)
{
	(void)state;
	resp_ok(OA, GM, J({"candidates": [{"content": {"role": "model", "parts": [
	    {"text": "think", "thought": true}, {"text": "Hi "}, {"text": "there"},
	    {"functionCall": {"name": "f", "args": {"q": 1}}}]},
	    "finishReason": "STOP", "index": 0}],
	    "usageMetadata": {"promptTokenCount": 10, "cachedContentTokenCount": 4,
	      "candidatesTokenCount": 3, "thoughtsTokenCount": 2, "totalTokenCount": 15},
	    "modelVersion": "gemini-x", "responseId": "r1"}), "pub", J({
	    "id": "chatcmpl-r1", "object": "chat.completion", "model": "pub",
	    "choices": [{"index": 0, "logprobs": null, "finish_reason": "tool_calls",
	      "message": {"role": "assistant", "content": "Hi there", "refusal": null,
	        "reasoning_content": "think",
	        "tool_calls": [{"index": 0, "id": "call_0", "type": "function",
	          "function": {"name": "f", "arguments": "{\"q\":1}"}}]}}],
	    "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15,
	      "prompt_tokens_details": {"cached_tokens": 4}}}));
	resp_ok(OA, GM, J({"candidates": [{"content": {"parts": [{"text": "x"}]},
	    "finishReason": "MAX_TOKENS"}], "responseId": "r2"}), "m", J({
	    "id": "chatcmpl-r2", "object": "chat.completion", "model": "m",
	    "choices": [{"index": 0, "logprobs": null, "finish_reason": "length",
	      "message": {"role": "assistant", "content": "x", "refusal": null}}],
	    "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0,
	      "prompt_tokens_details": {"cached_tokens": 0}}}));
	/* A blocked prompt: no candidates, content_filter. */
	resp_ok(OA, GM, J({"promptFeedback": {"blockReason": "SAFETY"},
	    "usageMetadata": {"promptTokenCount": 2}}), "m", J({
	    "id": "chatcmpl-", "object": "chat.completion", "model": "m",
	    "choices": [{"index": 0, "logprobs": null, "finish_reason": "content_filter",
	      "message": {"role": "assistant", "content": "", "refusal": null}}],
	    "usage": {"prompt_tokens": 2, "completion_tokens": 0, "total_tokens": 2,
	      "prompt_tokens_details": {"cached_tokens": 0}}}));
	/* Google's errors in OpenAI's shape, by status first. */
	err_ok(OA, GM, 400, J({"error": {"code": 400, "message": "API key not valid.",
	    "status": "INVALID_ARGUMENT"}}), J({"error": {"message": "API key not valid.",
	    "type": "invalid_request_error", "param": null, "code": "INVALID_ARGUMENT"}}));
	err_ok(OA, GM, 429, J({"error": {"code": 429, "message": "slow",
	    "status": "RESOURCE_EXHAUSTED"}}), J({"error": {"message": "slow",
	    "type": "rate_limit_error", "param": null, "code": "RESOURCE_EXHAUSTED"}}));
	err_ok(GM, OA, 401, J({"error": {"message": "bad key", "type":
	    "invalid_request_error", "code": "invalid_api_key"}}),
	    J({"error": {"code": 401, "message": "bad key", "status": "UNAUTHENTICATED"}}));
}

static void
test_stream_gm_to_oa(void **state)
{
	struct xl_stream *s = xl_stream_new(OA, GM, "pub", 1);
	struct xl_buf out = { 0 };
	static const char *const first[] = {
		"- " J({"id": "chatcmpl-r9", "object": "chat.completion.chunk",
		  "model": "pub", "choices": [{"index": 0, "delta": {"role": "assistant",
		  "content": ""}, "logprobs": null, "finish_reason": null}], "usage": null}),
		"- " J({"id": "chatcmpl-r9", "object": "chat.completion.chunk",
		  "model": "pub", "choices": [{"index": 0, "delta": {"content": "Hel"},
		  "logprobs": null, "finish_reason": null}], "usage": null}),
		NULL };
	static const char *const second[] = {
		"- " J({"id": "chatcmpl-r9", "object": "chat.completion.chunk",
		  "model": "pub", "choices": [{"index": 0, "delta": {"content": "lo"},
		  "logprobs": null, "finish_reason": null}], "usage": null}),
		"- " J({"id": "chatcmpl-r9", "object": "chat.completion.chunk",
		  "model": "pub", "choices": [{"index": 0, "delta": {"tool_calls": [
		  {"index": 0, "id": "call_0", "type": "function", "function":
		  {"name": "f", "arguments": "{}"}}]}, "logprobs": null,
		  "finish_reason": null}], "usage": null}),
		"- " J({"id": "chatcmpl-r9", "object": "chat.completion.chunk",
		  "model": "pub", "choices": [{"index": 0, "delta": {},
		  "logprobs": null, "finish_reason": "tool_calls"}], "usage": null}),
		NULL };

	(void)state;
	assert_int_equal(feed(s, NULL, J({"candidates": [{"content": {"parts":
	    [{"text": "Hel"}], "role": "model"}}], "usageMetadata":
	    {"promptTokenCount": 5}, "responseId": "r9"}), first), 0);
	assert_int_equal(feed(s, NULL, J({"candidates": [{"content": {"parts":
	    [{"text": "lo"}, {"functionCall": {"name": "f", "args": {}}}]},
	    "finishReason": "STOP"}], "usageMetadata": {"promptTokenCount": 5,
	    "candidatesTokenCount": 2, "cachedContentTokenCount": 1}}), second), 0);
	/* The end: the usage chunk (the last usageMetadata), then [DONE]. */
	xl_stream_end(s, 1, &out);
	assert_non_null(strstr(out.p, "\"prompt_tokens\":5"));
	assert_non_null(strstr(out.p, "\"completion_tokens\":2"));
	assert_non_null(strstr(out.p, "\"cached_tokens\":1"));
	assert_non_null(strstr(out.p, "\"choices\":[]"));
	assert_non_null(strstr(out.p, "data: [DONE]\n\n"));
	xl_buf_free(&out);
	xl_stream_free(s);

	/* Cut before a finishReason: an error event, no [DONE]. */
	s = xl_stream_new(OA, GM, "pub", 0);
	assert_int_equal(feed(s, NULL, J({"candidates": [{"content": {"parts":
	    [{"text": ""}]}}]}), (const char *const[]){ "- " J({"id": "chatcmpl-",
	    "object": "chat.completion.chunk", "model": "pub", "choices": [{"index": 0,
	    "delta": {"role": "assistant", "content": ""}, "logprobs": null,
	    "finish_reason": null}]}), NULL }), 0);
	xl_stream_end(s, 1, &out);
	assert_non_null(strstr(out.p, "\"error\""));
	assert_null(strstr(out.p, "[DONE]"));
	xl_buf_free(&out);
	xl_stream_free(s);
	/* Malformed chunks are refused with nothing written. */
	s = xl_stream_new(OA, GM, "pub", 0);
	assert_int_equal(xl_stream_event(s, NULL, "[1]", 3, &out), -1);
	assert_int_equal(xl_stream_event(s, NULL, "nope", 4, &out), -1);
	assert_int_equal(out.len, 0);
	xl_stream_free(s);
}

/* ---------------- Gemini user -> OpenAI provider ---------------- */

static void
test_req_gm_oa(void **state)
{
	(void)state;
	req_ok(GM, OA, J({
	    "systemInstruction": {"role": "user", "parts": [{"text": "be"}, {"text": "brief"}]},
	    "contents": [
	      {"role": "user", "parts": [{"text": "look"},
	        {"inlineData": {"mimeType": "image/png", "data": "AAAA"}},
	        {"fileData": {"mimeType": "image/jpeg", "fileUri": "https://x.test/a.jpg"}}]},
	      {"role": "model", "parts": [{"text": "hmm", "thought": true},
	        {"text": "calling"},
	        {"functionCall": {"name": "f", "args": {"a": 1}}},
	        {"functionCall": {"name": "g"}},
	        {"functionCall": {"name": "f", "args": {"a": 2}}}]},
	      {"role": "user", "parts": [
	        {"functionResponse": {"name": "f", "response": {"r": 1}}},
	        {"functionResponse": {"name": "f", "response": {"r": 2}}},
	        {"functionResponse": {"name": "g", "response": {"r": 3}}},
	        {"text": "and?"}]},
	      {"role": "model", "parts": [{"functionCall": {"id": "own-1",
	        "name": "weird.name:x", "args": {}}}, {"thoughtSignature": "c2ln"},
	        {"functionCall": {"name": "k"}}]},
	      {"parts": [{"functionResponse": {"id": "nomatch", "name": "k",
	        "response": {}}},
	        {"function_response": {"id": "own-1", "name": "weird.name:x",
	        "response": {}}}]}],
	    "tools": [{"functionDeclarations": [
	      {"name": "f", "description": "d", "parameters": {"type": "OBJECT",
	        "propertyOrdering": ["q"], "required": ["q"],
	        "properties": {"q": {"type": "STRING", "nullable": true},
	          "l": {"type": "ARRAY", "minItems": "1", "items": {"type": "INTEGER"}},
	          "u": {"anyOf": [{"type": "NUMBER"}, {"type": "BOOLEAN"}]}}}},
	      {"name": "g", "parametersJsonSchema": {"type": "object",
	        "properties": {"Z": {"type": "string"}}}},
	      {"name": "h"}]}],
	    "toolConfig": {"functionCallingConfig": {"mode": "ANY",
	      "allowedFunctionNames": ["f", "g"]}},
	    "generationConfig": {"temperature": 0.7, "topP": 0.5, "topK": 40,
	      "maxOutputTokens": 9, "stopSequences": ["END"], "candidateCount": 1,
	      "seed": 3, "presencePenalty": 0.25, "frequencyPenalty": 0.5,
	      "responseMimeType": "application/json", "responseModalities": ["TEXT"]},
	    "safetySettings": [{"category": "HARM_CATEGORY_HARASSMENT",
	      "threshold": "BLOCK_NONE"}]}),
	    "gpt-4o-mini", 1, J({"model": "gpt-4o-mini",
	    "messages": [
	      {"role": "system", "content": "be\nbrief"},
	      {"role": "user", "content": [{"type": "text", "text": "look"},
	        {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
	        {"type": "image_url", "image_url": {"url": "https://x.test/a.jpg"}}]},
	      {"role": "assistant", "content": "calling", "tool_calls": [
	        {"id": "call_1_0_f", "type": "function",
	         "function": {"name": "f", "arguments": "{\"a\":1}"}},
	        {"id": "call_1_1_g", "type": "function",
	         "function": {"name": "g", "arguments": "{}"}},
	        {"id": "call_1_2_f", "type": "function",
	         "function": {"name": "f", "arguments": "{\"a\":2}"}}]},
	      {"role": "tool", "tool_call_id": "call_1_0_f", "content": "{\"r\":1}"},
	      {"role": "tool", "tool_call_id": "call_1_2_f", "content": "{\"r\":2}"},
	      {"role": "tool", "tool_call_id": "call_1_1_g", "content": "{\"r\":3}"},
	      {"role": "user", "content": "and?"},
	      {"role": "assistant", "content": null, "tool_calls": [
	        {"id": "own-1", "type": "function",
	         "function": {"name": "weird.name:x", "arguments": "{}"}},
	        {"id": "call_3_1_k", "type": "function",
	         "function": {"name": "k", "arguments": "{}"}}]},
	      {"role": "tool", "tool_call_id": "call_3_1_k", "content": "{}"},
	      {"role": "tool", "tool_call_id": "own-1", "content": "{}"}],
	    "tools": [
	      {"type": "function", "function": {"name": "f", "description": "d",
	        "parameters": {"type": "object", "required": ["q"], "properties": {
	          "q": {"type": ["string", "null"]},
	          "l": {"type": "array", "minItems": 1, "items": {"type": "integer"}},
	          "u": {"anyOf": [{"type": "number"}, {"type": "boolean"}]}}}}},
	      {"type": "function", "function": {"name": "g", "parameters":
	        {"type": "object", "properties": {"Z": {"type": "string"}}}}}],
	    "tool_choice": "required",
	    "temperature": 0.7, "top_p": 0.5, "max_tokens": 9, "stop": ["END"],
	    "seed": 3, "presence_penalty": 0.25, "frequency_penalty": 0.5,
	    "response_format": {"type": "json_object"},
	    "stream": true, "stream_options": {"include_usage": true}}));
	/* The smallest: no stream, a string systemInstruction, ANY of one
	 * function names it, AUTO and NONE. */
	req_ok(GM, OA, J({"contents": [{"role": "user", "parts": [{"text": "hi"}]}],
	    "system_instruction": "s",
	    "tools": [{"functionDeclarations": [{"name": "f"}, {"name": "g"}]}],
	    "toolConfig": {"functionCallingConfig": {"mode": "ANY",
	      "allowedFunctionNames": ["g"]}}}), "deepseek-chat", 0,
	    J({"model": "deepseek-chat", "messages": [{"role": "system", "content": "s"},
	      {"role": "user", "content": "hi"}],
	    "tools": [{"type": "function", "function": {"name": "g"}}],
	    "tool_choice": {"type": "function", "function": {"name": "g"}}}));
	req_ok(GM, OA, J({"contents": [{"parts": [{"text": "hi"}]}],
	    "tools": [{"functionDeclarations": [{"name": "f"}]}],
	    "toolConfig": {"functionCallingConfig": {"mode": "NONE"}}}), "m", 0,
	    J({"model": "m", "messages": [{"role": "user", "content": "hi"}],
	    "tools": [{"type": "function", "function": {"name": "f"}}],
	    "tool_choice": "none"}));
	req_ok(GM, OA, J({"contents": [{"parts": [{"text": "hi"}]}],
	    "tools": [{"functionDeclarations": [{"name": "f"}]}],
	    "toolConfig": {"functionCallingConfig": {"mode": "AUTO"}}}), "m", 0,
	    J({"model": "m", "messages": [{"role": "user", "content": "hi"}],
	    "tools": [{"type": "function", "function": {"name": "f"}}],
	    "tool_choice": "auto"}));
	/* No model argument: the body's own. */
	req_ok(GM, OA, J({"model": "x", "contents": [{"parts": [{"text": "hi"}]}]}),
	    NULL, 0, J({"model": "x", "messages": [{"role": "user", "content": "hi"}]}));
}

static void
test_req_gm_oa_refused(void **state)
{
	(void)state;
	req_bad(GM, OA, J({"contents": []}), "non-empty");
	req_bad(GM, OA, J({"contents": "hi"}), "non-empty");
	req_bad(GM, OA, J({"contents": [{"role": "user"}]}), "contents[0]");
	req_bad(GM, OA, J({"contents": [{"role": "tool", "parts": []}]}), "role");
	req_bad(GM, OA, J({"contents": [{"parts": [{"text": "x"}]}],
	    "generationConfig": {"candidateCount": 2}}), "candidateCount");
	req_bad(GM, OA, J({"contents": [{"parts": [{"text": "x"}]}],
	    "generationConfig": {"temperature": "hot"}}), "temperature");
	req_bad(GM, OA, J({"contents": [{"parts": [{"text": "x"}]}],
	    "generationConfig": {"maxOutputTokens": 1.5}}), "maxOutputTokens");
	req_bad(GM, OA, J({"contents": [{"parts": [{"text": "x"}]}],
	    "generationConfig": {"responseMimeType": "text/x.enum"}}), "text/x.enum");
	req_bad(GM, OA, J({"contents": [{"parts": [{"text": "x"}]}],
	    "generationConfig": {"responseModalities": ["IMAGE"]}}), "responseModalities");
	req_bad(GM, OA, J({"contents": [{"parts": [{"text": "x"}]}],
	    "generationConfig": {"stopSequences": [1]}}), "stopSequences");
	req_bad(GM, OA, J({"contents": [{"parts": [{"inlineData":
	    {"mimeType": "audio/wav", "data": "AA"}}]}]}), "audio/wav");
	req_bad(GM, OA, J({"contents": [{"parts": [{"inlineData":
	    {"mimeType": "image/png"}}]}]}), "data");
	req_bad(GM, OA, J({"contents": [{"parts": [{}]}]}), "unknown");
	req_bad(GM, OA, J({"contents": [{"parts": [{"executableCode":
	    {"code": "1"}}]}]}), "executableCode");
	req_bad(GM, OA, J({"contents": [{"parts": [{"functionResponse":
	    {"name": "f", "response": {}}}]}]}), "answers no functionCall");
	req_bad(GM, OA, J({"contents": [{"role": "model", "parts": [{"functionCall":
	    {"name": "f", "args": [1]}}]}]}), "object args");
	req_bad(GM, OA, J({"contents": [{"role": "model", "parts": [{"inlineData":
	    {"mimeType": "image/png", "data": "A"}}]}]}), "inlineData");
	req_bad(GM, OA, J({"contents": [{"parts": [{"text": "x"}]}],
	    "tools": [{"googleSearch": {}}]}), "functionDeclarations");
	req_bad(GM, OA, J({"contents": [{"parts": [{"text": "x"}]}],
	    "tools": [{"functionDeclarations": [{"description": "no name"}]}]}), "no name");
	req_bad(GM, OA, J({"contents": [{"parts": [{"text": "x"}]}],
	    "tools": [{"functionDeclarations": [{"name": "f"}]}],
	    "toolConfig": {"functionCallingConfig": {"mode": "SOMETIMES"}}}), "SOMETIMES");
	req_bad(GM, OA, J({"contents": [{"parts": [{"text": "x"}]}],
	    "tools": [{"functionDeclarations": [{"name": "f"}]}],
	    "toolConfig": {"functionCallingConfig": {"mode": "ANY",
	      "allowedFunctionNames": ["zz"]}}}), "ANY");
	req_bad(GM, OA, J({"contents": [{"parts": [{"text": "x"}]}],
	    "systemInstruction": {"parts": [{"inlineData": {}}]}}), "systemInstruction");
	req_bad(GM, OA, J({"contents": [{"parts": [{"text": "x"}]}],
	    "cachedContent": "cachedContents/1"}), "cachedContent");
	req_bad(GM, OA, J([1]), "JSON object");
	req_bad(GM, OA, "{", "not JSON");
}

static void
test_resp_oa_to_gm(void **state)
{
	(void)state;
	resp_ok(GM, OA, J({"id": "chatcmpl-1", "object": "chat.completion",
	    "model": "gpt-4o-mini-2024", "choices": [{"index": 0,
	    "finish_reason": "tool_calls", "message": {"role": "assistant",
	    "content": "Hi", "reasoning_content": "why",
	    "tool_calls": [
	      {"id": "c1", "type": "function", "function": {"name": "f",
	        "arguments": "{\"q\":1}"}},
	      {"id": "c2", "type": "function", "function": {"name": "g",
	        "arguments": "[1]"}},
	      {"id": "c3", "type": "function", "function": {"arguments": "{}"}}]}}],
	    "usage": {"prompt_tokens": 10, "completion_tokens": 7, "total_tokens": 17,
	      "prompt_tokens_details": {"cached_tokens": 4},
	      "completion_tokens_details": {"reasoning_tokens": 2}}}), NULL, J({
	    "candidates": [{"content": {"role": "model", "parts": [
	      {"text": "why", "thought": true}, {"text": "Hi"},
	      {"functionCall": {"name": "f", "args": {"q": 1}}},
	      {"functionCall": {"name": "g", "args": {}}}]},
	      "finishReason": "STOP", "index": 0}],
	    "usageMetadata": {"promptTokenCount": 10, "candidatesTokenCount": 5,
	      "totalTokenCount": 17, "cachedContentTokenCount": 4,
	      "thoughtsTokenCount": 2},
	    "modelVersion": "gpt-4o-mini-2024", "responseId": "chatcmpl-1"}));
	/* length, the user's model name, DeepSeek's cache count. */
	resp_ok(GM, OA, J({"id": "x", "model": "deepseek-chat", "choices": [{
	    "finish_reason": "length", "message": {"content": "ab"}}],
	    "usage": {"prompt_tokens": 3, "completion_tokens": 2,
	      "prompt_cache_hit_tokens": 1}}), "pub", J({
	    "candidates": [{"content": {"role": "model", "parts": [{"text": "ab"}]},
	      "finishReason": "MAX_TOKENS", "index": 0}],
	    "usageMetadata": {"promptTokenCount": 3, "candidatesTokenCount": 2,
	      "totalTokenCount": 5, "cachedContentTokenCount": 1},
	    "modelVersion": "pub", "responseId": "x"}));
	/* content_filter, an empty answer, an unknown finish, no usage. */
	resp_ok(GM, OA, J({"choices": [{"finish_reason": "content_filter",
	    "message": {"content": null}}]}), "m", J({
	    "candidates": [{"content": {"role": "model", "parts": [{"text": ""}]},
	      "finishReason": "SAFETY", "index": 0}],
	    "usageMetadata": {"promptTokenCount": 0, "candidatesTokenCount": 0,
	      "totalTokenCount": 0}, "modelVersion": "m", "responseId": ""}));
	resp_ok(GM, OA, J({"choices": [{"finish_reason": "insufficient_system_resource",
	    "message": {"content": "a", "refusal": "no"}}]}), "m", J({
	    "candidates": [{"content": {"role": "model", "parts": [{"text": "a"},
	      {"text": "no"}]}, "finishReason": "OTHER", "index": 0}],
	    "usageMetadata": {"promptTokenCount": 0, "candidatesTokenCount": 0,
	      "totalTokenCount": 0}, "modelVersion": "m", "responseId": ""}));
	/* OpenAI errors in Google's shape: the status decides first. */
	err_ok(GM, OA, 400, J({"error": {"message": "bad", "type":
	    "invalid_request_error", "param": "messages", "code": null}}),
	    J({"error": {"code": 400, "message": "bad", "status": "INVALID_ARGUMENT"}}));
	err_ok(GM, OA, 403, J({"error": {"message": "no", "type": "invalid_request_error"}}),
	    J({"error": {"code": 403, "message": "no", "status": "PERMISSION_DENIED"}}));
	err_ok(GM, OA, 404, J({"error": {"message": "gone", "type": "invalid_request_error",
	    "code": "model_not_found"}}),
	    J({"error": {"code": 404, "message": "gone", "status": "NOT_FOUND"}}));
	err_ok(GM, OA, 429, J({"error": {"message": "slow", "type": "requests"}}),
	    J({"error": {"code": 429, "message": "slow", "status": "RESOURCE_EXHAUSTED"}}));
	err_ok(GM, OA, 500, J({"error": {"message": "oops", "type": "server_error"}}),
	    J({"error": {"code": 500, "message": "oops", "status": "INTERNAL"}}));
	err_ok(GM, OA, 503, J({"error": "busy"}),
	    J({"error": {"code": 503, "message": "busy", "status": "UNAVAILABLE"}}));
	err_ok(GM, OA, 502, "<html>bad gateway</html>",
	    J({"error": {"code": 500, "message": "<html>bad gateway</html>",
	    "status": "INTERNAL"}}));
}

static void
test_resp_oa_to_gm_malformed(void **state)
{
	static const char *const bad[] = {
		J({"error": {"message": "x"}}), J({"choices": []}),
		J({"choices": [{"message": "hi"}]}), J({"choices": {}}), "[]",
		"{", "",
	};
	struct xl_buf out = { 0 };
	char err[256];

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		assert_int_equal(xl_response(GM, OA, bad[i], strlen(bad[i]), "m",
		    &out, err, sizeof(err)), -1);
		assert_true(err[0] != '\0');
		assert_int_equal(out.len, 0);
	}
}

#define OAC(...)	J({"id": "cc1", "object": "chat.completion.chunk", \
	"model": "gpt-4o-mini", "choices": [__VA_ARGS__], "usage": null})
#define GMC(...)	"- " J({"candidates": [{"content": {"role": "model", \
	"parts": [__VA_ARGS__]}, "index": 0}], "modelVersion": "pub", \
	"responseId": "cc1"})

static void
test_stream_oa_to_gm(void **state)
{
	struct xl_stream *s = xl_stream_new(GM, OA, "pub", 0);
	struct xl_buf out = { 0 };

	(void)state;
	assert_non_null(s);
	/* The role chunk: nothing. */
	assert_int_equal(feed(s, NULL, OAC({"index": 0, "delta": {"role":
	    "assistant", "content": ""}, "finish_reason": null}), none), 0);
	assert_int_equal(feed(s, NULL, OAC({"index": 0, "delta": {"content":
	    "Hel"}, "finish_reason": null}), (const char *const[]){
	    GMC({"text": "Hel"}), NULL }), 0);
	assert_int_equal(feed(s, NULL, OAC({"index": 0, "delta": {
	    "reasoning_content": "hm"}}), (const char *const[]){
	    GMC({"text": "hm", "thought": true}), NULL }), 0);
	assert_int_equal(feed(s, NULL, OAC({"index": 0, "delta": {"content":
	    "lo"}}), (const char *const[]){ GMC({"text": "lo"}), NULL }), 0);
	/* Tool calls: pieces gathered, nothing sent until the end. */
	assert_int_equal(feed(s, NULL, OAC({"index": 0, "delta": {"tool_calls": [
	    {"index": 0, "id": "c1", "type": "function", "function": {"name": "f",
	    "arguments": ""}}]}}), none), 0);
	assert_int_equal(feed(s, NULL, OAC({"index": 0, "delta": {"tool_calls": [
	    {"index": 0, "function": {"arguments": "{\"q\":"}}]}}), none), 0);
	assert_int_equal(feed(s, NULL, OAC({"index": 0, "delta": {"tool_calls": [
	    {"index": 1, "id": "c2", "type": "function", "function": {"name": "g",
	    "arguments": "not json"}}]}}), none), 0);
	assert_int_equal(feed(s, NULL, OAC({"index": 0, "delta": {"tool_calls": [
	    {"index": 0, "function": {"arguments": "1}"}}]}}), none), 0);
	/* A second choice (n > 1 is refused) is ignored. */
	assert_int_equal(feed(s, NULL, OAC({"index": 1, "delta": {"content":
	    "other"}}), none), 0);
	assert_int_equal(feed(s, NULL, OAC({"index": 0, "delta": {},
	    "finish_reason": "tool_calls"}), none), 0);
	/* The usage chunk, then [DONE]: the last chunk with both. */
	assert_int_equal(feed(s, NULL, J({"id": "cc1", "choices": [], "usage": {
	    "prompt_tokens": 9, "completion_tokens": 4, "total_tokens": 13,
	    "prompt_tokens_details": {"cached_tokens": 3},
	    "completion_tokens_details": {"reasoning_tokens": 1}}}), none), 0);
	assert_int_equal(feed(s, NULL, "[DONE]", (const char *const[]){
	    "- " J({"candidates": [{"content": {"role": "model", "parts": [
	      {"functionCall": {"name": "f", "args": {"q": 1}}},
	      {"functionCall": {"name": "g", "args": {}}}]},
	      "finishReason": "STOP", "index": 0}],
	      "usageMetadata": {"promptTokenCount": 9, "candidatesTokenCount": 3,
	        "totalTokenCount": 13, "cachedContentTokenCount": 3,
	        "thoughtsTokenCount": 1},
	      "modelVersion": "pub", "responseId": "cc1"}), NULL }), 1);
	/* Complete: later events and the end add nothing. */
	assert_int_equal(xl_stream_event(s, NULL, "{}", 2, &out), 1);
	xl_stream_end(s, 1, &out);
	assert_int_equal(out.len, 0);
	xl_stream_free(s);

	/* No model given: the provider's; length; the end without [DONE]
	 * after the finish closes it (usage on the finish chunk). */
	s = xl_stream_new(GM, OA, NULL, 0);
	assert_int_equal(feed(s, NULL, J({"id": "z", "model": "deepseek-chat",
	    "choices": [{"index": 0, "delta": {"content": "a"},
	    "finish_reason": "length"}], "usage": {"prompt_tokens": 2,
	    "completion_tokens": 1, "prompt_cache_hit_tokens": 1}}),
	    (const char *const[]){ "- " J({"candidates": [{"content": {"role":
	    "model", "parts": [{"text": "a"}]}, "index": 0}], "modelVersion":
	    "deepseek-chat", "responseId": "z"}), NULL }), 0);
	xl_stream_end(s, 1, &out);
	json_eq(out.p + 6, out.len - 8, J({"candidates": [{"content": {"role":
	    "model", "parts": [{"text": ""}]}, "finishReason": "MAX_TOKENS",
	    "index": 0}], "usageMetadata": {"promptTokenCount": 2,
	    "candidatesTokenCount": 1, "totalTokenCount": 3,
	    "cachedContentTokenCount": 1}, "modelVersion": "deepseek-chat",
	    "responseId": "z"}));
	assert_int_equal(strncmp(out.p, "data: ", 6), 0);
	assert_int_equal(strcmp(out.p + out.len - 2, "\n\n"), 0);
	assert_null(strstr(out.p, "[DONE]"));
	xl_buf_free(&out);
	xl_stream_free(s);
}

static void
test_stream_oa_to_gm_errors(void **state)
{
	struct xl_stream *s;
	struct xl_buf out = { 0 };

	(void)state;
	/* An upstream error chunk: Google's error event, the stream closed. */
	s = xl_stream_new(GM, OA, "pub", 0);
	assert_int_equal(feed(s, NULL, OAC({"index": 0, "delta": {"content":
	    "a"}}), (const char *const[]){ GMC({"text": "a"}), NULL }), 0);
	assert_int_equal(feed(s, NULL, J({"error": {"message": "slow down",
	    "type": "rate_limit_error"}}), (const char *const[]){
	    "- " J({"error": {"code": 429, "message": "slow down",
	    "status": "RESOURCE_EXHAUSTED"}}), NULL }), 1);
	xl_stream_end(s, 0, &out);
	assert_int_equal(out.len, 0);
	xl_stream_free(s);
	/* Cut before the finish (ok or not), or after it but not ok: an
	 * INTERNAL error event. */
	for (int ok = 0; ok < 2; ok++) {
		s = xl_stream_new(GM, OA, "pub", 0);
		assert_int_equal(feed(s, NULL, OAC({"index": 0, "delta": {
		    "tool_calls": [{"index": 0, "id": "c", "function": {"name":
		    "f", "arguments": "{"}}]}}), none), 0);
		xl_stream_end(s, ok, &out);
		json_eq(out.p + 6, out.len - 8, J({"error": {"code": 500,
		    "message": "the provider's stream ended before the answer was complete",
		    "status": "INTERNAL"}}));
		xl_buf_free(&out);
		xl_stream_free(s);
	}
	s = xl_stream_new(GM, OA, "pub", 0);
	assert_int_equal(feed(s, NULL, OAC({"index": 0, "delta": {},
	    "finish_reason": "stop"}), none), 0);
	xl_stream_end(s, 0, &out);
	assert_non_null(strstr(out.p, "\"INTERNAL\""));
	xl_buf_free(&out);
	xl_stream_free(s);
	/* Malformed chunks: -1, nothing written. */
	s = xl_stream_new(GM, OA, "pub", 0);
	static const char *const bad[] = {
		"[1]", "nope", J({"choices": {}}), J({"usage": 3}),
		J({"choices": [1]}), J({"choices": [{"delta": {"tool_calls": 1}}]}),
		J({"choices": [{"delta": {"tool_calls": [{"index": -1}]}}]}),
		J({"choices": [{"delta": {"tool_calls": [{"index": 5000}]}}]}),
		J({"choices": [{"delta": {"tool_calls": [{"index": "a"}]}}]}),
		J({"choices": [{"delta": {"tool_calls": [7]}}]}),
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(xl_stream_event(s, NULL, bad[i], strlen(bad[i]),
		    &out), -1);
		assert_int_equal(out.len, 0);
	}
	xl_stream_free(s);
	/* A tool call without an index: a new call per id, pieces to the
	 * last one. */
	s = xl_stream_new(GM, OA, "pub", 0);
	assert_int_equal(feed(s, NULL, OAC({"index": 0, "delta": {"tool_calls": [
	    {"id": "a", "function": {"name": "f", "arguments": "{\"x\""}},
	    {"function": {"arguments": ":1}"}},
	    {"id": "b", "function": {"name": "g", "arguments": "{}"}}]},
	    "finish_reason": "tool_calls"}), none), 0);
	assert_int_equal(feed(s, NULL, "[DONE]", (const char *const[]){
	    "- " J({"candidates": [{"content": {"role": "model", "parts": [
	      {"functionCall": {"name": "f", "args": {"x": 1}}},
	      {"functionCall": {"name": "g", "args": {}}}]},
	      "finishReason": "STOP", "index": 0}],
	      "modelVersion": "pub", "responseId": "cc1"}), NULL }), 1);
	xl_stream_free(s);
}

/* ---------------- the table ---------------- */


/* ---------------- Bedrock: OpenAI user -> Converse, Anthropic -> invoke -- */
#define CV	DIA_CONVERSE

static void
test_req_oa_cv(void **state)
{
	(void)state;
	req_ok(OA, CV, J({"model": "amazon.nova-lite-v1:0", "max_tokens": 50,
	    "temperature": 0.5, "top_p": 0.9, "stop": "END", "stream": true,
	    "messages": [{"role": "system", "content": "terse"},
	    {"role": "user", "content": [{"type": "text", "text": "what is"},
	    {"type": "image_url", "image_url": {"url":
	    "data:image/png;base64,iVBO"}}]},
	    {"role": "assistant", "content": "calling", "tool_calls": [{"id":
	    "t1", "type": "function", "function": {"name": "get", "arguments":
	    "{\"q\":1}"}}]},
	    {"role": "tool", "tool_call_id": "t1", "content": "42"},
	    {"role": "user", "content": "thanks"}],
	    "tools": [{"type": "function", "function": {"name": "get",
	    "description": "d", "parameters": {"type": "object"}}}],
	    "tool_choice": "required"}), "amazon.nova-lite-v1:0", 1,
	    J({"system": [{"text": "terse"}],
	    "messages": [{"role": "user", "content": [{"text": "what is"},
	    {"image": {"format": "png", "source": {"bytes": "iVBO"}}}]},
	    {"role": "assistant", "content": [{"text": "calling"}, {"toolUse":
	    {"toolUseId": "t1", "name": "get", "input": {"q": 1}}}]},
	    {"role": "user", "content": [{"toolResult": {"toolUseId": "t1",
	    "content": [{"text": "42"}]}}, {"text": "thanks"}]}],
	    "toolConfig": {"tools": [{"toolSpec": {"name": "get",
	    "description": "d", "inputSchema": {"json": {"type": "object"}}}}],
	    "toolChoice": {"any": {}}},
	    "inferenceConfig": {"maxTokens": 50, "temperature": 0.5,
	    "topP": 0.9, "stopSequences": ["END"]}}));
	req_bad(OA, CV, J({"model": "m", "n": 2, "messages": [{"role": "user",
	    "content": "x"}]}), "n other than 1");
	req_bad(OA, CV, J({"model": "m", "messages": [{"role": "user",
	    "content": [{"type": "image_url", "image_url": {"url":
	    "https://example.com/a.png"}}]}]}), "data URLs");
	req_bad(OA, CV, J({"model": "m", "messages": []}), "non-empty");
}

/* The id carries the time: checked for its prefix, then dropped. */
static void
resp_cv(const char *in, const char *want)
{
	struct xl_buf out = { 0 };
	char err[256] = "";
	json_t *j;
	char *d;

	if (xl_response(OA, CV, S(in), "amazon.nova-lite-v1:0", &out, err,
	    sizeof(err)) != 0)
		fail_msg("refused: %s", err);
	j = json_loads(out.p, 0, NULL);
	assert_non_null(j);
	assert_memory_equal(json_string_value(json_object_get(j, "id")),
	    "chatcmpl-", 9);
	json_object_del(j, "id");
	d = json_dumps(j, JSON_COMPACT);
	json_eq(d, strlen(d), want);
	free(d);
	json_decref(j);
	xl_buf_free(&out);
}

static void
test_resp_cv_to_oa(void **state)
{
	(void)state;
	resp_cv(J({"output": {"message": {"role": "assistant", "content":
	    [{"text": "Hi "}, {"text": "there"}]}}, "stopReason": "max_tokens",
	    "usage": {"inputTokens": 5, "outputTokens": 2, "totalTokens": 10,
	    "cacheReadInputTokens": 3}}),
	    J({"object": "chat.completion", "model": "amazon.nova-lite-v1:0",
	    "choices": [{"index": 0, "message": {"role": "assistant", "content":
	    "Hi there"}, "logprobs": null, "finish_reason": "length"}],
	    "usage": {"prompt_tokens": 8, "completion_tokens": 2,
	    "total_tokens": 10, "prompt_tokens_details": {"cached_tokens": 3}}}));
	resp_cv(J({"output": {"message": {"role": "assistant", "content":
	    [{"toolUse": {"toolUseId": "t", "name": "f", "input": {"a": 1}}}]}},
	    "stopReason": "tool_use", "usage": {"inputTokens": 1,
	    "outputTokens": 1}}),
	    J({"object": "chat.completion", "model": "amazon.nova-lite-v1:0",
	    "choices": [{"index": 0, "message": {"role": "assistant", "content":
	    null, "tool_calls": [{"id": "t", "type": "function", "function":
	    {"name": "f", "arguments": "{\"a\":1}"}}]}, "logprobs": null,
	    "finish_reason": "tool_calls"}], "usage": {"prompt_tokens": 1,
	    "completion_tokens": 1, "total_tokens": 2,
	    "prompt_tokens_details": {"cached_tokens": 0}}}));
	/* Bedrock's error body in OpenAI's shape, the class by status */
	err_ok(OA, CV, 429, J({"message": "Too many requests"}),
	    J({"error": {"message": "Too many requests", "type":
	    "rate_limit_error", "param": null, "code": null}}));
	err_ok(DIA_ANTHROPIC, DIA_NATIVE, 400, J({"message": "bad"}),
	    J({"type": "error", "error": {"type": "invalid_request_error",
	    "message": "bad"}}));
}

/* Collect what a list of (name, data) events makes. */
static char *
cv_stream(struct xl_stream *s, const char *const *ev, int *last_rc)
{
	struct xl_buf out = { 0 };

	for (; ev[0] != NULL; ev += 2)
		*last_rc = xl_stream_event(s, ev[0], S(ev[1]), &out);
	return out.p;
}

static void
test_stream_cv_to_oa(void **state)
{
	static const char *const ev[] = {
		"messageStart", J({"role": "assistant"}),
		"contentBlockDelta", J({"delta": {"text": "Hel"},
		    "contentBlockIndex": 0}),
		"contentBlockDelta", J({"delta": {"text": "lo"},
		    "contentBlockIndex": 0}),
		"contentBlockStop", J({"contentBlockIndex": 0}),
		"contentBlockStart", J({"start": {"toolUse": {"toolUseId": "t9",
		    "name": "f"}}, "contentBlockIndex": 1}),
		"contentBlockDelta", J({"delta": {"toolUse": {"input":
		    "{\"a\":"}}, "contentBlockIndex": 1}),
		"messageStop", J({"stopReason": "tool_use"}),
		"metadata", J({"usage": {"inputTokens": 4, "outputTokens": 6,
		    "totalTokens": 10}, "metrics": {"latencyMs": 1}}),
		NULL };
	struct xl_stream *s = xl_stream_new(OA, CV, "amazon.nova-lite-v1:0", 1);
	int rc = 0;
	char *o;

	(void)state;
	o = cv_stream(s, ev, &rc);
	assert_int_equal(rc, 1);	/* complete at metadata */
	assert_non_null(strstr(o, "\"delta\":{\"role\":\"assistant\","
	    "\"content\":\"\"}"));
	assert_non_null(strstr(o, "\"delta\":{\"content\":\"Hel\"}"));
	assert_non_null(strstr(o, "\"delta\":{\"content\":\"lo\"}"));
	assert_non_null(strstr(o, "\"tool_calls\":[{\"index\":0,\"id\":\"t9\","
	    "\"type\":\"function\",\"function\":{\"name\":\"f\",\"arguments\":"
	    "\"\"}}]"));
	assert_non_null(strstr(o, "\"arguments\":\"{\\\"a\\\":\"}"));
	assert_non_null(strstr(o, "\"finish_reason\":\"tool_calls\""));
	assert_non_null(strstr(o, "\"choices\":[],\"usage\":{"
	    "\"prompt_tokens\":4,\"completion_tokens\":6,\"total_tokens\":10"));
	assert_non_null(strstr(o, "\"model\":\"amazon.nova-lite-v1:0\""));
	assert_string_equal(o + strlen(o) - 14, "data: [DONE]\n\n");
	free(o);
	xl_stream_free(s);

	/* an exception frame: the OpenAI error event, the stream over */
	s = xl_stream_new(OA, CV, "m", 0);
	{
		static const char *const ex[] = { "messageStart", "{}",
		    "throttlingException", J({"message": "slow down"}), NULL };
		o = cv_stream(s, ex, &rc);
		assert_int_equal(rc, 1);
		assert_non_null(strstr(o, "data: {\"error\":{\"message\":"
		    "\"slow down\",\"type\":\"rate_limit_error\""));
		assert_null(strstr(o, "[DONE]"));
		free(o);
	}
	xl_stream_free(s);
	/* cut before messageStop: an error at the end */
	s = xl_stream_new(OA, CV, "m", 0);
	{
		struct xl_buf out = { 0 };
		assert_int_equal(xl_stream_event(s, "contentBlockDelta",
		    S(J({"delta": {"text": "x"}})), &out), 0);
		xl_stream_end(s, 1, &out);
		assert_non_null(strstr(out.p, "\"error\""));
		xl_buf_free(&out);
	}
	xl_stream_free(s);
}

/* ---------------- Bedrock Converse user -> OpenAI provider -------------- */

static void
test_req_cv_oa(void **state)
{
	(void)state;
	req_ok(CV, OA, J({"system": [{"text": "terse"}, {"cachePoint":
	    {"type": "default"}}, {"text": "kind"}],
	    "messages": [{"role": "user", "content": [{"text": "what is"},
	    {"image": {"format": "png", "source": {"bytes": "iVBO"}}}]},
	    {"role": "assistant", "content": [{"text": "calling"}, {"toolUse":
	    {"toolUseId": "t1", "name": "get", "input": {"q": 1}}},
	    {"toolUse": {"toolUseId": "t2", "name": "get", "input": {}}}]},
	    {"role": "user", "content": [{"toolResult": {"toolUseId": "t1",
	    "content": [{"text": "42"}, {"json": {"a": [1]}}], "status":
	    "success"}}, {"toolResult": {"toolUseId": "t2", "content": [],
	    "status": "error"}}, {"text": "thanks"}]}],
	    "inferenceConfig": {"maxTokens": 50, "temperature": 0.5,
	    "topP": 0.9, "stopSequences": ["END"]},
	    "toolConfig": {"tools": [{"toolSpec": {"name": "get",
	    "description": "d", "inputSchema": {"json": {"type": "object",
	    "properties": {"q": {"type": "integer"}}}}}}],
	    "toolChoice": {"any": {}}},
	    "additionalModelRequestFields": {"x": 1}}), "gpt-4o-mini", 1,
	    J({"model": "gpt-4o-mini", "stream": true, "stream_options":
	    {"include_usage": true}, "max_tokens": 50, "temperature": 0.5,
	    "top_p": 0.9, "stop": ["END"],
	    "messages": [{"role": "system", "content": "terse\nkind"},
	    {"role": "user", "content": [{"type": "text", "text": "what is"},
	    {"type": "image_url", "image_url": {"url":
	    "data:image/png;base64,iVBO"}}]},
	    {"role": "assistant", "content": "calling", "tool_calls": [{"id":
	    "t1", "type": "function", "function": {"name": "get", "arguments":
	    "{\"q\":1}"}}, {"id": "t2", "type": "function", "function":
	    {"name": "get", "arguments": "{}"}}]},
	    {"role": "tool", "tool_call_id": "t1", "content":
	    "42\n{\"a\":[1]}"},
	    {"role": "tool", "tool_call_id": "t2", "content": ""},
	    {"role": "user", "content": "thanks"}],
	    "tools": [{"type": "function", "function": {"name": "get",
	    "description": "d", "parameters": {"type": "object",
	    "properties": {"q": {"type": "integer"}}}}}],
	    "tool_choice": "required"}));
	/* small: no stream, auto and named tool choices, no schema */
	req_ok(CV, OA, J({"messages": [{"role": "user", "content":
	    [{"text": "hi"}]}], "toolConfig": {"tools": [{"toolSpec":
	    {"name": "f"}}], "toolChoice": {"tool": {"name": "f"}}}}),
	    "gpt-4o-mini", 0,
	    J({"model": "gpt-4o-mini", "messages": [{"role": "user",
	    "content": "hi"}], "tools": [{"type": "function", "function":
	    {"name": "f", "parameters": {"type": "object", "properties":
	    {}}}}], "tool_choice": {"type": "function", "function":
	    {"name": "f"}}}));
	req_ok(CV, OA, J({"messages": [{"role": "user", "content":
	    [{"text": "hi"}]}, {"role": "assistant", "content": [{"toolUse":
	    {"toolUseId": "a", "name": "f"}}]}],
	    "toolConfig": {"tools": [{"toolSpec": {"name": "f"}}],
	    "toolChoice": {"auto": {}}}}), "m", 0,
	    J({"model": "m", "messages": [{"role": "user", "content": "hi"},
	    {"role": "assistant", "content": null, "tool_calls": [{"id": "a",
	    "type": "function", "function": {"name": "f", "arguments":
	    "{}"}}]}], "tools": [{"type": "function", "function": {"name": "f",
	    "parameters": {"type": "object", "properties": {}}}}],
	    "tool_choice": "auto"}));
	/* refused */
	req_bad(CV, OA, J({"messages": []}), "non-empty");
	req_bad(CV, OA, J({"messages": "x"}), "non-empty");
	req_bad(CV, OA, J({"messages": [{"role": "system", "content":
	    [{"text": "x"}]}]}), "user or assistant");
	req_bad(CV, OA, J({"messages": [{"role": "user", "content": "x"}]}),
	    "must be an array");
	req_bad(CV, OA, J({"messages": [{"role": "user", "content":
	    [{"document": {"format": "pdf"}}]}]}), "not supported");
	req_bad(CV, OA, J({"messages": [{"role": "user", "content":
	    [{"image": {"format": "bmp", "source": {"bytes": "AA"}}}]}]}),
	    "format");
	req_bad(CV, OA, J({"messages": [{"role": "assistant", "content":
	    [{"toolUse": {"name": "f"}}]}]}), "toolUseId");
	req_bad(CV, OA, J({"messages": [{"role": "user", "content":
	    [{"toolResult": {"toolUseId": "a", "content": [{"image": {}}]}}]}]}),
	    "only text and json");
	req_bad(CV, OA, J({"messages": [{"role": "user", "content":
	    [{"text": "x"}]}], "inferenceConfig": {"maxTokens": 0}}),
	    "maxTokens");
	req_bad(CV, OA, J({"messages": [{"role": "user", "content":
	    [{"text": "x"}]}], "toolConfig": {"tools": [{"toolSpec": {"name":
	    "f"}}], "toolChoice": {"maybe": {}}}}), "toolChoice");
	req_bad(CV, OA, J({"messages": [{"role": "user", "content":
	    [{"text": "x"}]}], "toolConfig": {"tools": [{"other": {}}]}}),
	    "toolSpec");
	req_bad(CV, OA, "[1]", "not a JSON object");
}

static void
test_resp_oa_to_cv(void **state)
{
	(void)state;
	resp_ok(CV, OA, J({"id": "chatcmpl-1", "object": "chat.completion",
	    "created": 1, "model": "gpt-4o-mini-2024-07-18", "choices":
	    [{"index": 0, "message": {"role": "assistant", "content": "Hi",
	    "tool_calls": [{"id": "call_1", "type": "function", "function":
	    {"name": "get", "arguments": "{\"q\":1}"}}, {"id": "call_2",
	    "type": "function", "function": {"name": "bad", "arguments":
	    "[1"}}]}, "finish_reason": "tool_calls"}], "usage":
	    {"prompt_tokens": 10, "completion_tokens": 4, "total_tokens": 14,
	    "prompt_tokens_details": {"cached_tokens": 3}}}), "gpt-4o-mini",
	    J({"output": {"message": {"role": "assistant", "content":
	    [{"text": "Hi"}, {"toolUse": {"toolUseId": "call_1", "name": "get",
	    "input": {"q": 1}}}, {"toolUse": {"toolUseId": "call_2", "name":
	    "bad", "input": {}}}]}}, "stopReason": "tool_use", "usage":
	    {"inputTokens": 7, "outputTokens": 4, "totalTokens": 14,
	    "cacheReadInputTokens": 3}, "metrics": {"latencyMs": 0}}));
	resp_ok(CV, OA, J({"choices": [{"index": 0, "message": {"role":
	    "assistant", "content": "long"}, "finish_reason": "length"}],
	    "usage": {"prompt_tokens": 2, "completion_tokens": 1,
	    "prompt_cache_hit_tokens": 0}}), NULL,
	    J({"output": {"message": {"role": "assistant", "content":
	    [{"text": "long"}]}}, "stopReason": "max_tokens", "usage":
	    {"inputTokens": 2, "outputTokens": 1, "totalTokens": 3},
	    "metrics": {"latencyMs": 0}}));
	resp_ok(CV, OA, J({"choices": [{"index": 0, "message": {"role":
	    "assistant", "content": null}, "finish_reason": "content_filter"}]}),
	    NULL, J({"output": {"message": {"role": "assistant", "content":
	    [{"text": ""}]}}, "stopReason": "content_filtered", "usage":
	    {"inputTokens": 0, "outputTokens": 0, "totalTokens": 0},
	    "metrics": {"latencyMs": 0}}));
	/* not a completion */
	{
		struct xl_buf out = { 0 };
		char err[128];

		assert_int_equal(xl_response(CV, OA, S(J({"error": {"message":
		    "x"}})), "m", &out, err, sizeof(err)), -1);
		assert_int_equal(xl_response(CV, OA, S("nope"), "m", &out, err,
		    sizeof(err)), -1);
		assert_int_equal(out.len, 0);
	}
	/* errors: OpenAI's body in Bedrock's shape */
	err_ok(CV, OA, 429, J({"error": {"message": "Rate limit reached",
	    "type": "requests", "param": null, "code": "rate_limit_exceeded"}}),
	    J({"message": "Rate limit reached"}));
	err_ok(CV, OA, 401, J({"error": {"message": "Incorrect API key",
	    "type": "invalid_request_error", "code": "invalid_api_key"}}),
	    J({"message": "Incorrect API key"}));
	err_ok(CV, OA, 502, "<html>bad gateway</html>",
	    J({"message": "<html>bad gateway</html>"}));
}

/* Decode event-stream frames into [{"t": type, "x": 1 when exception,
 * "p": payload}], checking every frame has valid CRCs and nothing is
 * left over. */
static json_t *
cv_frames(const struct xl_buf *b)
{
	json_t *arr = json_array();
	struct evs d;
	struct evs_msg m;
	int rc;

	evs_init(&d, 0);
	if (b->len > 0)
		assert_int_equal(evs_feed(&d, b->p, b->len), 0);
	while ((rc = evs_next(&d, &m)) == 1) {
		const char *t, *mt;
		size_t n, mn;
		json_t *p, *f;
		int x;

		mt = evs_str(&m, ":message-type", &mn);
		assert_non_null(mt);
		x = mn == 9 && memcmp(mt, "exception", 9) == 0;
		t = evs_str(&m, x ? ":exception-type" : ":event-type", &n);
		assert_non_null(t);
		assert_true(evs_str_is(&m, ":content-type",
		    "application/json"));
		p = json_loadb((const char *)m.payload, m.payload_len, 0, NULL);
		assert_non_null(p);
		f = json_pack("{s:s#, s:o}", "t", t, n, "p", p);
		if (x)
			json_object_set_new(f, "x", json_integer(1));
		json_array_append_new(arr, f);
	}
	assert_int_equal(rc, 0);
	assert_int_equal(evs_pending(&d), 0);
	evs_free(&d);
	return arr;
}

static void
frames_eq(const struct xl_buf *b, const char *want)
{
	json_t *f = cv_frames(b);
	char *s = json_dumps(f, JSON_COMPACT);

	json_eq(s, strlen(s), want);
	free(s);
	json_decref(f);
}

static void
test_stream_oa_to_cv(void **state)
{
	static const char *const ev[] = {
		J({"id": "c1", "choices": [{"index": 0, "delta": {"role":
		    "assistant", "content": ""}}], "usage": null}),
		J({"id": "c1", "choices": [{"index": 0, "delta": {"content":
		    "Hel"}}], "usage": null}),
		J({"id": "c1", "choices": [{"index": 0, "delta": {"content":
		    "lo"}}], "usage": null}),
		J({"id": "c1", "choices": [{"index": 0, "delta": {"tool_calls":
		    [{"index": 0, "id": "call_1", "type": "function", "function":
		    {"name": "get", "arguments": ""}}]}}], "usage": null}),
		J({"id": "c1", "choices": [{"index": 0, "delta": {"tool_calls":
		    [{"index": 0, "function": {"arguments": "{\"q\":"}}]}}]}),
		J({"id": "c1", "choices": [{"index": 0, "delta": {"tool_calls":
		    [{"index": 0, "function": {"arguments": "1}"}}]}}]}),
		J({"id": "c1", "choices": [{"index": 0, "delta": {"tool_calls":
		    [{"index": 1, "id": "call_2", "function": {"name": "put",
		    "arguments": "{}"}}]}}]}),
		J({"id": "c1", "choices": [{"index": 0, "delta": {},
		    "finish_reason": "tool_calls"}], "usage": null}),
		J({"id": "c1", "choices": [], "usage": {"prompt_tokens": 12,
		    "completion_tokens": 5, "total_tokens": 17,
		    "prompt_tokens_details": {"cached_tokens": 2}}}),
		NULL };
	struct xl_stream *s = xl_stream_new(CV, OA, "gpt-4o-mini", 0);
	struct xl_buf out = { 0 };
	size_t i;

	(void)state;
	assert_non_null(s);
	for (i = 0; ev[i] != NULL; i++)
		assert_int_equal(xl_stream_event(s, NULL, S(ev[i]), &out), 0);
	/* text and tool deltas went out as they came */
	assert_int_equal(xl_stream_event(s, NULL, S("[DONE]"), &out), 1);
	frames_eq(&out, J([
	    {"t": "messageStart", "p": {"role": "assistant"}},
	    {"t": "contentBlockDelta", "p": {"contentBlockIndex": 0,
	    "delta": {"text": "Hel"}}},
	    {"t": "contentBlockDelta", "p": {"contentBlockIndex": 0,
	    "delta": {"text": "lo"}}},
	    {"t": "contentBlockStop", "p": {"contentBlockIndex": 0}},
	    {"t": "contentBlockStart", "p": {"contentBlockIndex": 1,
	    "start": {"toolUse": {"toolUseId": "call_1", "name": "get"}}}},
	    {"t": "contentBlockDelta", "p": {"contentBlockIndex": 1,
	    "delta": {"toolUse": {"input": "{\"q\":"}}}},
	    {"t": "contentBlockDelta", "p": {"contentBlockIndex": 1,
	    "delta": {"toolUse": {"input": "1}"}}}},
	    {"t": "contentBlockStop", "p": {"contentBlockIndex": 1}},
	    {"t": "contentBlockStart", "p": {"contentBlockIndex": 2,
	    "start": {"toolUse": {"toolUseId": "call_2", "name": "put"}}}},
	    {"t": "contentBlockDelta", "p": {"contentBlockIndex": 2,
	    "delta": {"toolUse": {"input": "{}"}}}},
	    {"t": "contentBlockStop", "p": {"contentBlockIndex": 2}},
	    {"t": "messageStop", "p": {"stopReason": "tool_use"}},
	    {"t": "metadata", "p": {"usage": {"inputTokens": 10,
	    "outputTokens": 5, "totalTokens": 17, "cacheReadInputTokens": 2},
	    "metrics": {"latencyMs": 0}}}]));
	/* complete: later events and the end add nothing */
	xl_buf_reset(&out);
	assert_int_equal(xl_stream_event(s, NULL, S(ev[1]), &out), 1);
	xl_stream_end(s, 1, &out);
	assert_int_equal(out.len, 0);
	xl_stream_free(s);

	/* one text delta is written at once, before the stream goes on */
	s = xl_stream_new(CV, OA, "gpt-4o-mini", 0);
	assert_int_equal(xl_stream_event(s, NULL, S(ev[1]), &out), 0);
	frames_eq(&out, J([{"t": "messageStart", "p": {"role": "assistant"}},
	    {"t": "contentBlockDelta", "p": {"contentBlockIndex": 0,
	    "delta": {"text": "Hel"}}}]));
	xl_buf_reset(&out);
	/* finish then the end of the upstream without [DONE]: ok */
	assert_int_equal(xl_stream_event(s, NULL, S(J({"choices": [{"index":
	    0, "delta": {}, "finish_reason": "length"}]})), &out), 0);
	xl_stream_end(s, 1, &out);
	frames_eq(&out, J([{"t": "contentBlockStop", "p":
	    {"contentBlockIndex": 0}},
	    {"t": "messageStop", "p": {"stopReason": "max_tokens"}},
	    {"t": "metadata", "p": {"usage": {"inputTokens": 0,
	    "outputTokens": 0, "totalTokens": 0}, "metrics":
	    {"latencyMs": 0}}}]));
	xl_buf_free(&out);
	xl_stream_free(s);
}

static void
test_stream_oa_to_cv_errors(void **state)
{
	struct xl_stream *s;
	struct xl_buf out = { 0 };

	(void)state;
	/* an OpenAI error chunk: an exception frame, the stream over */
	s = xl_stream_new(CV, OA, "m", 0);
	assert_int_equal(xl_stream_event(s, NULL, S(J({"error": {"message":
	    "Rate limit", "type": "rate_limit_error"}})), &out), 1);
	frames_eq(&out, J([{"t": "throttlingException", "x": 1, "p":
	    {"message": "Rate limit"}}]));
	xl_buf_reset(&out);
	xl_stream_end(s, 0, &out);
	assert_int_equal(out.len, 0);
	xl_stream_free(s);
	s = xl_stream_new(CV, OA, "m", 0);
	assert_int_equal(xl_stream_event(s, NULL, S(J({"error": {"message":
	    "boom", "type": "server_error"}})), &out), 1);
	frames_eq(&out, J([{"t": "modelStreamErrorException", "x": 1, "p":
	    {"message": "boom"}}]));
	xl_buf_reset(&out);
	xl_stream_free(s);
	/* malformed: nothing written, -1; the end is an exception */
	s = xl_stream_new(CV, OA, "m", 0);
	assert_int_equal(xl_stream_event(s, NULL, S("{not json"), &out), -1);
	assert_int_equal(xl_stream_event(s, NULL, S("[1]"), &out), -1);
	assert_int_equal(out.len, 0);
	xl_stream_end(s, 0, &out);
	frames_eq(&out, J([{"t": "modelStreamErrorException", "x": 1, "p":
	    {"message":
	    "the provider's stream ended before the answer was complete"}}]));
	xl_buf_reset(&out);
	xl_stream_free(s);
	/* cut before the finish ([DONE] or a clean end): an exception */
	s = xl_stream_new(CV, OA, "m", 0);
	assert_int_equal(xl_stream_event(s, NULL, S(J({"choices": [{"index":
	    0, "delta": {"content": "x"}}]})), &out), 0);
	xl_buf_reset(&out);
	assert_int_equal(xl_stream_event(s, NULL, S("[DONE]"), &out), 1);
	frames_eq(&out, J([{"t": "modelStreamErrorException", "x": 1, "p":
	    {"message":
	    "the provider's stream ended before the answer was complete"}}]));
	xl_buf_reset(&out);
	xl_stream_free(s);
	s = xl_stream_new(CV, OA, "m", 0);
	xl_stream_end(s, 1, &out);
	frames_eq(&out, J([{"t": "modelStreamErrorException", "x": 1, "p":
	    {"message":
	    "the provider's stream ended before the answer was complete"}}]));
	xl_buf_free(&out);
	xl_stream_free(s);
}

/* Anthropic user, Claude on Bedrock's InvokeModel */
static void
test_anthropic_on_bedrock(void **state)
{
	struct xl_stream *s;
	struct xl_buf out = { 0 };

	(void)state;
	req_ok(AN, DIA_NATIVE, J({"model": "claude-haiku-4-5", "max_tokens": 9,
	    "stream": true, "system": "s", "messages": [{"role": "user",
	    "content": "hi"}]}), "claude-haiku-4-5", 1,
	    J({"max_tokens": 9, "system": "s", "messages": [{"role": "user",
	    "content": "hi"}], "anthropic_version": "bedrock-2023-05-31"}));
	resp_ok(AN, DIA_NATIVE, J({"id": "msg_1", "type": "message", "role":
	    "assistant", "model": "claude-3-5-haiku-20241022", "content": [],
	    "stop_reason": "end_turn", "usage": {"input_tokens": 1,
	    "output_tokens": 1}}), "claude-haiku-4-5",
	    J({"id": "msg_1", "type": "message", "role": "assistant", "model":
	    "claude-haiku-4-5", "content": [], "stop_reason": "end_turn",
	    "usage": {"input_tokens": 1, "output_tokens": 1}}));
	s = xl_stream_new(AN, DIA_NATIVE, "claude-haiku-4-5", 0);
	/* {"type":"message_start","message":{"id":"m"}} */
	assert_int_equal(xl_stream_event(s, "chunk", S(J({"bytes":
	    "eyJ0eXBlIjoibWVzc2FnZV9zdGFydCIsIm1lc3NhZ2UiOnsiaWQiOiJtIn19"})),
	    &out), 0);
	assert_string_equal(out.p, "event: message_start\ndata: {\"type\":"
	    "\"message_start\",\"message\":{\"id\":\"m\",\"model\":"
	    "\"claude-haiku-4-5\"}}\n\n");
	xl_buf_reset(&out);
	/* {"type":"message_stop"} ends it */
	assert_int_equal(xl_stream_event(s, "chunk", S(J({"bytes":
	    "eyJ0eXBlIjoibWVzc2FnZV9zdG9wIn0="})), &out), 1);
	assert_string_equal(out.p, "event: message_stop\ndata: {\"type\":"
	    "\"message_stop\"}\n\n");
	xl_buf_reset(&out);
	xl_stream_end(s, 1, &out);
	assert_int_equal(out.len, 0);
	xl_stream_free(s);
	/* not base64: malformed, nothing written */
	s = xl_stream_new(AN, DIA_NATIVE, NULL, 0);
	assert_int_equal(xl_stream_event(s, "chunk", S(J({"bytes": "!!"})),
	    &out), -1);
	assert_int_equal(out.len, 0);
	xl_stream_end(s, 0, &out);
	assert_non_null(strstr(out.p, "event: error"));
	xl_buf_free(&out);
	xl_stream_free(s);
}

static void
test_pairs(void **state)
{
	assert_true(xl_can(OA, AN));
	assert_true(xl_can(AN, OA));
	assert_false(xl_can(OA, OA));
	assert_false(xl_can(AN, AN));
	assert_true(xl_can(OA, DIA_GEMINI));
	assert_true(xl_can(DIA_GEMINI, OA));
	assert_false(xl_can(DIA_GEMINI, AN));
	assert_false(xl_can(DIA_CONVERSE, AN));
	assert_null(xl_stream_new(OA, DIA_NATIVE, "m", 0));
	assert_true(xl_can(OA, DIA_CONVERSE));
	assert_true(xl_can(DIA_CONVERSE, OA));
	assert_true(xl_can(AN, DIA_NATIVE));
	assert_null(xl_stream_new(OA, OA, "m", 0));
	xl_stream_free(NULL);
	assert_int_equal(xl_include_usage(OA, S_IU, strlen(S_IU)), 1);
	assert_int_equal(xl_include_usage(OA, "{\"stream\":true}", 15), 0);
	assert_int_equal(xl_include_usage(AN, S_IU, strlen(S_IU)), 0);
	assert_int_equal(xl_include_usage(OA, "{", 1), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_req_oa_an_full),
		cmocka_unit_test(test_req_oa_an_small),
		cmocka_unit_test(test_req_oa_an_refused),
		cmocka_unit_test(test_req_an_oa_full),
		cmocka_unit_test(test_req_an_oa_refused),
		cmocka_unit_test(test_resp_an_to_oa),
		cmocka_unit_test(test_resp_oa_to_an),
		cmocka_unit_test(test_resp_malformed),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_stream_an_to_oa),
		cmocka_unit_test(test_stream_an_to_oa_more),
		cmocka_unit_test(test_stream_an_malformed),
		cmocka_unit_test(test_stream_oa_to_an),
		cmocka_unit_test(test_stream_oa_to_an_more),
		cmocka_unit_test(test_stream_oa_malformed),
		cmocka_unit_test(test_req_oa_gm),
		cmocka_unit_test(test_resp_gm_to_oa),
		cmocka_unit_test(test_stream_gm_to_oa),
		cmocka_unit_test(test_req_oa_cv),
		cmocka_unit_test(test_resp_cv_to_oa),
		cmocka_unit_test(test_stream_cv_to_oa),
		cmocka_unit_test(test_anthropic_on_bedrock),
		cmocka_unit_test(test_req_cv_oa),
		cmocka_unit_test(test_resp_oa_to_cv),
		cmocka_unit_test(test_stream_oa_to_cv),
		cmocka_unit_test(test_stream_oa_to_cv_errors),
		cmocka_unit_test(test_req_gm_oa),
		cmocka_unit_test(test_req_gm_oa_refused),
		cmocka_unit_test(test_resp_oa_to_gm),
		cmocka_unit_test(test_resp_oa_to_gm_malformed),
		cmocka_unit_test(test_stream_oa_to_gm),
		cmocka_unit_test(test_stream_oa_to_gm_errors),
		cmocka_unit_test(test_pairs),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
