/*
 * tests/unit/test_usage: lib/usage.  Usage read from OpenAI streams (run
 * through lib/sse as the relay will) and bodies, cached tokens, ignored
 * "usage":null chunks, the usage-only chunk detector, the include_usage
 * rewrite (byte-exact outputs, user_asked, refusals), Anthropic and Gemini
 * samples, and malformed input that must leave the usage untouched.
 * Content bytes counted for cut streams and usage_estimate_cut, the rule
 * hub and agent both bill a cut stream by.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/sse.h"
#include "lib/usage.h"
#include "lib/evstream.h"

#define S(x)	(x), strlen(x)

static void
assert_usage(const struct usage *u, int64_t in, int64_t out, int64_t cached,
    int64_t cwrite)
{
	assert_int_equal(u->seen, 1);
	assert_int_equal(u->input_tokens, in);
	assert_int_equal(u->output_tokens, out);
	assert_int_equal(u->cached_tokens, cached);
	assert_int_equal(u->cache_write_tokens, cwrite);
}

typedef int (*reader)(struct usage *, const char *, size_t);

/* What usage_openai_chunk says of a chunk in *only (the gateway drops a
 * chunk of usage only that the user did not ask for). */
static int
only_of(const char *data, size_t len)
{
	struct usage u;
	int only = 2;

	memset(&u, 0, sizeof(u));
	(void)usage_openai_chunk(&u, data, len, &only);
	return only;
}

/* Exact heap copy, so ASan sees any read past len. */
static int
call(reader f, struct usage *u, const char *s)
{
	size_t n = strlen(s);
	char *c = malloc(n > 0 ? n : 1);
	int rc;

	assert_non_null(c);
	memcpy(c, s, n);
	rc = f(u, c, n);
	free(c);
	return rc;
}

/* f refuses s and leaves *u as it was. */
static void
expect_bad(reader f, const char *s)
{
	struct usage u = { .input_tokens = 1, .output_tokens = 2, .seen = 1 }, was = u;

	if (call(f, &u, s) != -1)
		fail_msg("accepted: %s", s);
	assert_memory_equal(&u, &was, sizeof(u));
}

/* ---- OpenAI ---- */

static const char openai_stream[] =
	"data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"model\":\"m\","
	"\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\","
	"\"content\":\"\"},\"finish_reason\":null}],\"usage\":null}\r\n\r\n"
	"data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"model\":\"m\","
	"\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hi\"},"
	"\"finish_reason\":null}],\"usage\":null}\r\n\r\n"
	": keep-alive\r\n\r\n"
	"data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"model\":\"m\","
	"\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}],"
	"\"usage\":null}\r\n\r\n"
	"data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"model\":\"m\","
	"\"choices\":[],\"usage\":{\"prompt_tokens\":1200,"
	"\"completion_tokens\":42,\"total_tokens\":1242,"
	"\"prompt_tokens_details\":{\"cached_tokens\":1024},"
	"\"completion_tokens_details\":{\"reasoning_tokens\":10}}}\r\n\r\n"
	"data: [DONE]\r\n\r\n";

/* Relay-style: split, read usage, count usage-only chunks. */
static void
test_openai_stream(void **state)
{
	struct sse s;
	struct sse_event ev;
	struct usage u;
	size_t i, nev = 0, nonly = 0, nread = 0;
	int rc;

	(void)state;
	memset(&u, 0, sizeof(u));
	sse_init(&s, 0);
	/* In blocks of 7 bytes, as a slow socket would deliver it. */
	for (i = 0; i < sizeof(openai_stream) - 1; i += 7) {
		size_t n = sizeof(openai_stream) - 1 - i;

		assert_int_equal(sse_feed(&s, openai_stream + i,
		    n < 7 ? n : 7), 0);
		while ((rc = sse_next(&s, &ev)) == 1) {
			nev++;
			if (ev.data == NULL)
				continue;
			rc = usage_openai_event(&u, ev.data, ev.data_len);
			assert_true(rc == 0 || rc == 1);
			if (rc == 1) {
				nread++;
				/* Only the final chunk: all else is 0. */
				assert_non_null(strstr(ev.data, "\"choices\":[]"));
			} else if (nread == 0)
				assert_int_equal(u.seen, 0);
			if (only_of(ev.data, ev.data_len) == 1)
				nonly++;
		}
		assert_int_equal(rc, 0);
	}
	sse_free(&s);
	assert_int_equal(nev, 6);
	assert_int_equal(nread, 1);
	assert_int_equal(nonly, 1);
	assert_usage(&u, 1200, 42, 1024, 0);
}

static void
test_openai_events(void **state)
{
	struct usage u;

	(void)state;
	memset(&u, 0, sizeof(u));
	assert_int_equal(call(usage_openai_event, &u, "[DONE]"), 0);
	assert_int_equal(call(usage_openai_event, &u, " [DONE]\n"), 0);
	assert_int_equal(call(usage_openai_event, &u,
	    "{\"choices\":[{\"delta\":{\"content\":\"x\"}}],\"usage\":null}"), 0);
	assert_int_equal(call(usage_openai_event, &u,
	    "{\"choices\":[{\"delta\":{\"content\":\"x\"}}]}"), 0);
	/* An error object in the stream carries no usage. */
	assert_int_equal(call(usage_openai_event, &u,
	    "{\"error\":{\"message\":\"m\",\"type\":\"t\"}}"), 0);
	assert_int_equal(u.seen, 0);

	/* No details: cached is 0. */
	assert_int_equal(call(usage_openai_event, &u,
	    "{\"choices\":[],\"usage\":{\"prompt_tokens\":9,"
	    "\"completion_tokens\":2,\"total_tokens\":11}}"), 1);
	assert_usage(&u, 9, 2, 0, 0);

	/* Cumulative usage on several chunks: the last wins, no sum. */
	assert_int_equal(call(usage_openai_event, &u,
	    "{\"choices\":[{\"delta\":{}}],\"usage\":{\"prompt_tokens\":9,"
	    "\"completion_tokens\":5}}"), 1);
	assert_usage(&u, 9, 5, 0, 0);

	/* details null, and a DeepSeek-style cache split. */
	assert_int_equal(call(usage_openai_event, &u,
	    "{\"choices\":[],\"usage\":{\"prompt_tokens\":100,"
	    "\"completion_tokens\":7,\"prompt_tokens_details\":null,"
	    "\"prompt_cache_hit_tokens\":64,\"prompt_cache_miss_tokens\":36}}"),
	    1);
	assert_usage(&u, 100, 7, 64, 0);
	/* cached_tokens, when present, is what counts. */
	assert_int_equal(call(usage_openai_event, &u,
	    "{\"usage\":{\"prompt_tokens\":100,\"completion_tokens\":7,"
	    "\"prompt_tokens_details\":{\"cached_tokens\":32},"
	    "\"prompt_cache_hit_tokens\":64}}"), 1);
	assert_usage(&u, 100, 7, 32, 0);
}

static void
test_openai_body(void **state)
{
	struct usage u;

	(void)state;
	memset(&u, 0, sizeof(u));
	assert_int_equal(call(usage_openai_body, &u,
	    "{\"id\":\"chatcmpl-1\",\"object\":\"chat.completion\","
	    "\"model\":\"gpt-4o\",\"choices\":[{\"index\":0,\"message\":"
	    "{\"role\":\"assistant\",\"content\":\"Hello\"},"
	    "\"finish_reason\":\"stop\"}],\"usage\":{\"prompt_tokens\":2006,"
	    "\"completion_tokens\":300,\"total_tokens\":2306,"
	    "\"prompt_tokens_details\":{\"cached_tokens\":1920,"
	    "\"audio_tokens\":0},\"completion_tokens_details\":"
	    "{\"reasoning_tokens\":0}}}"), 1);
	assert_usage(&u, 2006, 300, 1920, 0);

	/* Embeddings: no completion_tokens. */
	assert_int_equal(call(usage_openai_body, &u,
	    "{\"object\":\"list\",\"data\":[],\"usage\":{\"prompt_tokens\":8,"
	    "\"total_tokens\":8}}"), 1);
	assert_usage(&u, 8, 0, 0, 0);

	/* An error body: no usage, nothing changes. */
	assert_int_equal(call(usage_openai_body, &u,
	    "{\"error\":{\"message\":\"bad\",\"type\":\"invalid_request_error\","
	    "\"param\":null,\"code\":null}}"), 0);
	assert_usage(&u, 8, 0, 0, 0);
}

static void
test_openai_malformed(void **state)
{
	static const char *const bad[] = {
		"",
		"{",
		"{\"usage\":{\"prompt_tokens\":9}",
		"{\"usage\":{\"prompt_tokens\":9}} x",
		"data: {}",
		"[1,2]",
		"\"str\"",
		"{\"usage\":[]}",
		"{\"usage\":5}",
		"{\"usage\":{\"prompt_tokens\":-1}}",
		"{\"usage\":{\"prompt_tokens\":9.0}}",
		"{\"usage\":{\"prompt_tokens\":1e3}}",
		"{\"usage\":{\"prompt_tokens\":\"9\"}}",
		"{\"usage\":{\"prompt_tokens\":true}}",
		"{\"usage\":{\"prompt_tokens\":9,\"completion_tokens\":-2}}",
		"{\"usage\":{\"prompt_tokens\":99999999999999999999}}",
		"{\"usage\":{\"prompt_tokens\":1000000000001}}",
		"{\"usage\":{\"prompt_tokens\":9,\"prompt_tokens_details\":7}}",
		"{\"usage\":{\"prompt_tokens\":9,\"prompt_tokens_details\":"
		    "{\"cached_tokens\":10}}}",
		"{\"usage\":{\"prompt_tokens\":9,\"prompt_tokens_details\":"
		    "{\"cached_tokens\":-1}}}",
		"{\"usage\":{\"prompt_tokens\":9,\"prompt_cache_hit_tokens\":1.5}}",
		"[DONE",
	};
	struct usage u;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		expect_bad(usage_openai_event, bad[i]);
		expect_bad(usage_openai_body, bad[i]);
	}
	memset(&u, 0, sizeof(u));
	assert_int_equal(usage_openai_event(&u, NULL, 0), -1);
	assert_int_equal(usage_openai_body(&u, NULL, 0), -1);
	/* The limit itself passes. */
	assert_int_equal(call(usage_openai_body, &u,
	    "{\"usage\":{\"prompt_tokens\":1000000000000}}"), 1);
	assert_usage(&u, USAGE_MAX_TOKENS, 0, 0, 0);
	/* "[DONE]" is not a body. */
	assert_int_equal(call(usage_openai_body, &u, "[DONE]"), -1);
}

/*
 * The OpenAI readers work on the text in place (lib/jscan): escaped keys
 * and values, repeated keys (the last wins, as jansson keeps), what
 * jansson refuses anywhere in the document, and nesting to its limit.
 */
static void
test_openai_in_place(void **state)
{
	static const char *const bad[] = {
		/* invalid UTF-8, a lone surrogate, a raw control byte, a bad
		 * escape, a leading zero, a trailing comma: all far from usage */
		"{\"x\":\"\xc0\x80\",\"usage\":{\"prompt_tokens\":1}}",
		"{\"x\":\"\\ud800\",\"usage\":{\"prompt_tokens\":1}}",
		"{\"x\":\"a\x01\",\"usage\":{\"prompt_tokens\":1}}",
		"{\"x\":\"\\q\",\"usage\":{\"prompt_tokens\":1}}",
		"{\"x\":01,\"usage\":{\"prompt_tokens\":1}}",
		"{\"x\":[1,],\"usage\":{\"prompt_tokens\":1}}",
		"{\"x\":1e999,\"usage\":{\"prompt_tokens\":1}}",
		"{\"x\":9223372036854775808,\"usage\":{\"prompt_tokens\":1}}",
		"{\"k\\u0000\":1,\"usage\":{\"prompt_tokens\":1}}",
	};
	static const char nulbody[] = "{\"usage\":{\"prompt_tokens\":4\0,"
	    "\"completion_tokens\":1}}";
	struct usage u;
	char *deep;
	size_t i, off;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		expect_bad(usage_openai_body, bad[i]);

	memset(&u, 0, sizeof(u));
	assert_int_equal(call(usage_openai_body, &u,
	    " {\"\\u0075sage\" : {\"prompt_tokens\":5,\"completion_tokens\""
	    ":2}, \"usage\":{\"prompt_tokens\":7,\"prompt_tokens\":8,"
	    "\"completion_tokens\":3},\"choices\":[{\"message\":{\"content\""
	    ":\"h\\u00e9\\ud83d\\ude00\\n\"}}]} \n"), 1);
	assert_usage(&u, 8, 3, 0, 0);
	assert_int_equal(u.content_chars, 1 + 2 + 4 + 1);

	/* A NUL byte right after a number: jansson reads past it. */
	memset(&u, 0, sizeof(u));
	assert_int_equal(usage_openai_body(&u, nulbody, sizeof(nulbody) - 1), 1);
	assert_usage(&u, 4, 1, 0, 0);

	/* A Responses event whose type holds a \u0000: the C string
	 * before it is what counts. */
	memset(&u, 0, sizeof(u));
	assert_int_equal(call(usage_openai_event, &u, "{\"type\":\"response."
	    "completed\\u0000x\",\"response\":{\"usage\":{\"input_tokens\""
	    ":6,\"output_tokens\":2}}}"), 1);
	assert_usage(&u, 6, 2, 0, 0);

	/* Nesting: 2048 levels deep (the scalar counting as one) is read,
	 * one more is not. */
	deep = malloc(8192);
	assert_non_null(deep);
	for (int levels = 2047; levels <= 2048; levels++) {
		off = (size_t)snprintf(deep, 8192, "{\"usage\":{\"prompt_tokens\""
		    ":3},\"x\":");
		for (int k = 0; k < levels - 1; k++)
			deep[off++] = '[';
		deep[off++] = '1';
		for (int k = 0; k < levels - 1; k++)
			deep[off++] = ']';
		deep[off++] = '}';
		deep[off] = '\0';
		memset(&u, 0, sizeof(u));
		assert_int_equal(call(usage_openai_body, &u, deep),
		    levels == 2047 ? 1 : -1);
	}
	free(deep);
}

static void
test_usage_only_chunk(void **state)
{
	(void)state;
	assert_int_equal(only_of(S(
	    "{\"id\":\"c1\",\"choices\":[],\"usage\":{\"prompt_tokens\":9,"
	    "\"completion_tokens\":2}}")), 1);
	/* Azure's first chunk: empty choices, no usage. */
	assert_int_equal(only_of(S(
	    "{\"id\":\"\",\"choices\":[],\"prompt_filter_results\":"
	    "[{\"prompt_index\":0,\"content_filter_results\":{}}]}")), 0);
	assert_int_equal(only_of(S(
	    "{\"choices\":[],\"usage\":null}")), 0);
	/* Usage on a chunk that still has content: never drop it. */
	assert_int_equal(only_of(S(
	    "{\"choices\":[{\"delta\":{\"content\":\"x\"}}],\"usage\":"
	    "{\"prompt_tokens\":9}}")), 0);
	assert_int_equal(only_of(S(
	    "{\"choices\":[{\"delta\":{}}],\"usage\":null}")), 0);
	assert_int_equal(only_of(S(
	    "{\"choices\":{},\"usage\":{}}")), 0);
	assert_int_equal(only_of(S(
	    "{\"usage\":{\"prompt_tokens\":9}}")), 0);
	assert_int_equal(only_of(S("[DONE]")), 0);
	assert_int_equal(only_of(S("{\"choices\":[]")),
	    -1);
	assert_int_equal(only_of(S("[]")), -1);
	assert_int_equal(only_of(NULL, 0), -1);
}

/* ---- the include_usage rewrite ---- */

static int
rewrite(const char *in, char **out, size_t *outlen, int *asked)
{
	size_t n = strlen(in);
	char *c = malloc(n > 0 ? n : 1);
	int rc;

	assert_non_null(c);
	memcpy(c, in, n);
	*asked = -7;
	rc = usage_openai_force_include_usage(c, n, out, outlen, asked);
	free(c);
	return rc;
}

/* in becomes exactly want, with user_asked as given. */
static void
expect_rewrite(const char *in, const char *want, int asked_want)
{
	char *out;
	size_t outlen;
	int asked;

	if (rewrite(in, &out, &outlen, &asked) != 0)
		fail_msg("refused: %s", in);
	assert_non_null(out);
	assert_int_equal(out[outlen], '\0');
	if (outlen != strlen(want) || memcmp(out, want, outlen) != 0)
		fail_msg("rewrote\n  %s\ninto\n  %s\nwant\n  %s", in, out, want);
	assert_int_equal(asked, asked_want);
	free(out);
}

static void
expect_refused(const char *in)
{
	char *out = (char *)1;
	size_t outlen = 99;
	int asked;

	if (rewrite(in, &out, &outlen, &asked) != -1)
		fail_msg("accepted: %s", in);
	assert_null(out);
	assert_int_equal(outlen, 0);
}

static void
test_force_include_usage(void **state)
{
	(void)state;
	/* Absent: added, every other byte kept (floats too). */
	expect_rewrite(
	    "{\"model\":\"gpt-4o\",\"temperature\":0.7,\"stream\":true,"
	    "\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}",
	    "{\"stream_options\":{\"include_usage\":true},\"model\":\"gpt-4o\","
	    "\"temperature\":0.7,\"stream\":true,"
	    "\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}", 0);
	/* False: flipped, the other stream_options stay. */
	expect_rewrite(
	    "{\"stream\":true,\"stream_options\":{\"include_usage\":false,"
	    "\"continuous_usage_stats\":true},\"top_p\":1e-1}",
	    "{\"stream\":true,\"stream_options\":{\"include_usage\":true,"
	    "\"continuous_usage_stats\":true},\"top_p\":1e-1}", 0);
	expect_rewrite(
	    "{\"stream\":true,\"stream_options\":{\"x\":[1,{\"y\":\"}\"}],"
	    "\"include_usage\" : null }}",
	    "{\"stream\":true,\"stream_options\":{\"x\":[1,{\"y\":\"}\"}],"
	    "\"include_usage\" : true }}", 0);
	/* True: the user asked; the body is untouched. */
	expect_rewrite(
	    "{\"stream\":true,\"stream_options\":{\"include_usage\":true},"
	    "\"n\":2.50}",
	    "{\"stream\":true,\"stream_options\":{\"include_usage\":true},"
	    "\"n\":2.50}", 1);
	/* stream_options without include_usage, empty, or null. */
	expect_rewrite(
	    "{\"stream\":true,\"stream_options\":{\"a\":1}}",
	    "{\"stream\":true,\"stream_options\":{\"include_usage\":true,"
	    "\"a\":1}}", 0);
	expect_rewrite(
	    "{\"stream\":true,\"stream_options\":{ }}",
	    "{\"stream\":true,\"stream_options\":{\"include_usage\":true }}", 0);
	expect_rewrite(
	    "{\"stream\":true,\"stream_options\":null}",
	    "{\"stream\":true,\"stream_options\":{\"include_usage\":true}}", 0);
	/* Pretty-printed, with a nested look-alike key and escapes. */
	expect_rewrite(
	    "\n {\n  \"messages\": [{\"content\": \"\\\"stream_options\\\"\","
	    " \"stream_options\": 1}],\n  \"s\\u00e9\": \"\\u0000\",\n"
	    "  \"stream\": true\n }\n",
	    "\n {\"stream_options\":{\"include_usage\":true},\n"
	    "  \"messages\": [{\"content\": \"\\\"stream_options\\\"\","
	    " \"stream_options\": 1}],\n  \"s\\u00e9\": \"\\u0000\",\n"
	    "  \"stream\": true\n }\n", 0);
	/* The key spelled with an escape is the same key. */
	expect_rewrite(
	    "{\"stream\":true,\"stream\\u005foptions\":{\"include\\u005fusage\""
	    ":false}}",
	    "{\"stream\":true,\"stream\\u005foptions\":{\"include\\u005fusage\""
	    ":true}}", 0);

	/* A repeat below the root, or of a root member the rewrite does
	 * not read, is the provider's to read: kept. */
	expect_rewrite(
	    "{\"stream\":true,\"messages\":[{\"a\":1,\"a\":2}],\"n\":1,"
	    "\"n\":2}",
	    "{\"stream_options\":{\"include_usage\":true},\"stream\":true,"
	    "\"messages\":[{\"a\":1,\"a\":2}],\"n\":1,\"n\":2}", 0);
	/* Not streaming: copied as is, whatever stream_options says. */
	expect_rewrite("{\"model\":\"m\",\"temperature\":0.7}",
	    "{\"model\":\"m\",\"temperature\":0.7}", 0);
	expect_rewrite("{\"stream\":false,\"stream_options\":{}}",
	    "{\"stream\":false,\"stream_options\":{}}", 0);
	expect_rewrite("{\"stream\":null}", "{\"stream\":null}", 0);
	expect_rewrite("{\"stream\":false,\"stream_options\":\"x\"}",
	    "{\"stream\":false,\"stream_options\":\"x\"}", 0);
	expect_rewrite("{}", "{}", 0);
}

static void
test_force_include_usage_refused(void **state)
{
	(void)state;
	expect_refused("");
	expect_refused("{");
	expect_refused("{\"stream\":true");
	expect_refused("{\"stream\":true}}");
	expect_refused("[{\"stream\":true}]");
	expect_refused("\"stream\"");
	expect_refused("{\"stream\":true,}");
	expect_refused("{'stream':true}");
	/* Two "stream" keys could be read differently upstream. */
	expect_refused("{\"stream\":false,\"stream\":true}");
	expect_refused("{\"stream\":true,\"stream_options\":"
	    "{\"include_usage\":true,\"include_usage\":false}}");
	expect_refused("{\"stream\":true,\"stream\\u005foptions\":{},"
	    "\"stream_options\":{}}");
	expect_refused("{\"stream\":\"true\"}");
	expect_refused("{\"stream\":1}");
	expect_refused("{\"stream\":true,\"stream_options\":\"x\"}");
	expect_refused("{\"stream\":true,\"stream_options\":[]}");
	expect_refused("{\"stream\":true,\"stream_options\":"
	    "{\"include_usage\":1}}");
	expect_refused("{\"stream\":true,\"seed\":99999999999999999999}");
}

/* ---- Anthropic ---- */

static const char anthropic_stream[] =
	"event: message_start\n"
	"data: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\","
	"\"type\":\"message\",\"role\":\"assistant\",\"content\":[],"
	"\"model\":\"claude-x\",\"stop_reason\":null,\"usage\":"
	"{\"input_tokens\":25,\"cache_creation_input_tokens\":300,"
	"\"cache_read_input_tokens\":2000,\"output_tokens\":1}}}\n\n"
	"event: content_block_start\n"
	"data: {\"type\":\"content_block_start\",\"index\":0,"
	"\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n"
	"event: ping\n"
	"data: {\"type\": \"ping\"}\n\n"
	"event: content_block_delta\n"
	"data: {\"type\":\"content_block_delta\",\"index\":0,"
	"\"delta\":{\"type\":\"text_delta\",\"text\":\"Hello\"}}\n\n"
	"event: message_delta\n"
	"data: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":null},"
	"\"usage\":{\"output_tokens\":10}}\n\n"
	"event: content_block_stop\n"
	"data: {\"type\":\"content_block_stop\",\"index\":0}\n\n"
	"event: message_delta\n"
	"data: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":"
	"\"end_turn\",\"stop_sequence\":null},\"usage\":{\"output_tokens\":15}}"
	"\n\n"
	"event: message_stop\n"
	"data: {\"type\":\"message_stop\"}\n\n";

static void
test_anthropic_stream(void **state)
{
	struct sse s;
	struct sse_event ev;
	struct usage u;
	int rc, got[8], n = 0;

	(void)state;
	memset(&u, 0, sizeof(u));
	sse_init(&s, 0);
	assert_int_equal(sse_feed(&s, anthropic_stream,
	    sizeof(anthropic_stream) - 1), 0);
	while (sse_next(&s, &ev) == 1) {
		rc = usage_anthropic_event(&u, ev.event, ev.data, ev.data_len);
		assert_true(n < 8);
		got[n++] = rc;
		if (n == 1)	/* message_start: output is interim */
			assert_usage(&u, 2325, 1, 2000, 300);
		if (n == 5)
			assert_usage(&u, 2325, 10, 2000, 300);
	}
	sse_free(&s);
	assert_int_equal(n, 8);
	assert_int_equal(got[0], 1);
	assert_int_equal(got[1], 0);
	assert_int_equal(got[2], 0);
	assert_int_equal(got[3], 0);
	assert_int_equal(got[4], 1);
	assert_int_equal(got[5], 0);
	assert_int_equal(got[6], 1);
	assert_int_equal(got[7], 0);
	/* Cumulative: 15, not 1 + 10 + 15. */
	assert_usage(&u, 2325, 15, 2000, 300);
}

static void
test_anthropic_events(void **state)
{
	struct usage u, was;

	(void)state;
	memset(&u, 0, sizeof(u));
	/* No event name: the JSON type decides. */
	assert_int_equal(usage_anthropic_event(&u, NULL, S(
	    "{\"type\":\"message_start\",\"message\":{\"usage\":"
	    "{\"input_tokens\":12,\"output_tokens\":1}}}")), 1);
	assert_usage(&u, 12, 1, 0, 0);
	/* message_delta may carry input and cache counts: they replace. */
	assert_int_equal(usage_anthropic_event(&u, "message_delta", S(
	    "{\"type\":\"message_delta\",\"usage\":{\"input_tokens\":14,"
	    "\"cache_read_input_tokens\":6,\"output_tokens\":30}}")), 1);
	assert_usage(&u, 20, 30, 6, 0);
	assert_int_equal(usage_anthropic_event(&u, "message_delta", S(
	    "{\"type\":\"message_delta\",\"usage\":{\"output_tokens\":31,"
	    "\"cache_creation_input_tokens\":null}}")), 1);
	assert_usage(&u, 20, 31, 6, 0);
	/* No type in the JSON: the event name decides. */
	assert_int_equal(usage_anthropic_event(&u, "message_delta", S(
	    "{\"usage\":{\"output_tokens\":32}}")), 1);
	assert_usage(&u, 20, 32, 6, 0);

	/* An error after HTTP 200 carries no usage. */
	was = u;
	assert_int_equal(usage_anthropic_event(&u, "error", S(
	    "{\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\","
	    "\"message\":\"Overloaded\"}}")), 0);
	assert_int_equal(usage_anthropic_event(&u, "message_stop", S(
	    "{\"type\":\"message_stop\"}")), 0);
	assert_int_equal(usage_anthropic_event(&u, "message_delta", S(
	    "{\"type\":\"message_delta\",\"delta\":{}}")), 0);
	assert_memory_equal(&u, &was, sizeof(u));

	/* Refused, u untouched. */
	assert_int_equal(usage_anthropic_event(&u, "message_start", S(
	    "{\"type\":\"message_delta\",\"usage\":{\"output_tokens\":1}}")),
	    -1);
	assert_int_equal(usage_anthropic_event(&u, NULL, S(
	    "{\"usage\":{\"output_tokens\":1}}")), -1);
	assert_int_equal(usage_anthropic_event(&u, "message_delta", S(
	    "{\"type\":\"message_delta\",\"usage\":{\"output_tokens\":-1}}")),
	    -1);
	assert_int_equal(usage_anthropic_event(&u, "message_delta", S(
	    "{\"type\":\"message_delta\",\"usage\":{\"output_tokens\":2.0}}")),
	    -1);
	assert_int_equal(usage_anthropic_event(&u, "message_start", S(
	    "{\"type\":\"message_start\",\"message\":[]}")), -1);
	assert_int_equal(usage_anthropic_event(&u, "message_start", S(
	    "{\"type\":\"message_start\",\"message\":{\"usage\":\"x\"}}")), -1);
	assert_int_equal(usage_anthropic_event(&u, "message_start", S(
	    "{\"type\":\"message_start\"")), -1);
	assert_int_equal(usage_anthropic_event(&u, "message_start", NULL, 0),
	    -1);
	assert_memory_equal(&u, &was, sizeof(u));

	/* A delta before any start still counts what it says. */
	memset(&u, 0, sizeof(u));
	assert_int_equal(usage_anthropic_event(&u, "message_delta", S(
	    "{\"type\":\"message_delta\",\"usage\":{\"output_tokens\":3}}")), 1);
	assert_usage(&u, 0, 3, 0, 0);
}

static void
test_anthropic_body(void **state)
{
	struct usage u;

	(void)state;
	memset(&u, 0, sizeof(u));
	assert_int_equal(call(usage_anthropic_body, &u,
	    "{\"id\":\"msg_1\",\"type\":\"message\",\"role\":\"assistant\","
	    "\"content\":[{\"type\":\"text\",\"text\":\"Hi\"}],"
	    "\"stop_reason\":\"end_turn\",\"usage\":{\"input_tokens\":50,"
	    "\"cache_creation_input_tokens\":0,\"cache_read_input_tokens\":100,"
	    "\"output_tokens\":20}}"), 1);
	assert_usage(&u, 150, 20, 100, 0);
	assert_int_equal(call(usage_anthropic_body, &u,
	    "{\"type\":\"error\",\"error\":{\"type\":\"invalid_request_error\","
	    "\"message\":\"x\"}}"), 0);
	assert_usage(&u, 150, 20, 100, 0);
	expect_bad(usage_anthropic_body, "{\"type\":\"message\",\"usage\":"
	    "{\"input_tokens\":\"50\"}}");
	expect_bad(usage_anthropic_body, "{\"type\":\"message\"");
	expect_bad(usage_anthropic_body, "[]");
}

/* ---- Gemini ---- */

static const char gemini_stream[] =
	"data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"Hel\"}],"
	"\"role\":\"model\"},\"index\":0}],\"usageMetadata\":"
	"{\"promptTokenCount\":800,\"totalTokenCount\":800},"
	"\"modelVersion\":\"gemini-x\"}\r\n\r\n"
	"data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"lo\"}],"
	"\"role\":\"model\"},\"finishReason\":\"STOP\",\"index\":0}],"
	"\"usageMetadata\":{\"promptTokenCount\":800,"
	"\"candidatesTokenCount\":12,\"totalTokenCount\":862,"
	"\"cachedContentTokenCount\":512,\"thoughtsTokenCount\":50,"
	"\"promptTokensDetails\":[{\"modality\":\"TEXT\","
	"\"tokenCount\":800}]},\"modelVersion\":\"gemini-x\"}\r\n\r\n";

static void
test_gemini_stream(void **state)
{
	struct sse s;
	struct sse_event ev;
	struct usage u;
	int n = 0;

	(void)state;
	memset(&u, 0, sizeof(u));
	sse_init(&s, 0);
	assert_int_equal(sse_feed(&s, gemini_stream, sizeof(gemini_stream) - 1),
	    0);
	sse_finish(&s);
	while (sse_next(&s, &ev) == 1) {
		assert_int_equal(usage_gemini_event(&u, ev.data, ev.data_len),
		    1);
		if (++n == 1)
			assert_usage(&u, 800, 0, 0, 0);
	}
	sse_free(&s);
	assert_int_equal(n, 2);
	/* Last one wins; thinking is output. */
	assert_usage(&u, 800, 62, 512, 0);
}

static void
test_gemini_misc(void **state)
{
	struct usage u;

	(void)state;
	memset(&u, 0, sizeof(u));
	assert_int_equal(call(usage_gemini_event, &u,
	    "{\"candidates\":[{\"content\":{\"parts\":[]}}]}"), 0);
	assert_int_equal(call(usage_gemini_event, &u,
	    "{\"candidates\":[],\"usageMetadata\":null}"), 0);
	assert_int_equal(u.seen, 0);
	assert_int_equal(call(usage_gemini_event, &u,
	    "{\"usageMetadata\":{\"promptTokenCount\":10,"
	    "\"toolUsePromptTokenCount\":5,\"candidatesTokenCount\":3}}"), 1);
	assert_usage(&u, 15, 3, 0, 0);

	/* Without alt=sse: a JSON array, the last usageMetadata wins. */
	memset(&u, 0, sizeof(u));
	assert_int_equal(call(usage_gemini_body, &u,
	    "[{\"candidates\":[],\"usageMetadata\":{\"promptTokenCount\":7}},"
	    "{\"candidates\":[],\"usageMetadata\":{\"promptTokenCount\":7,"
	    "\"candidatesTokenCount\":4}},{\"candidates\":[]}]"), 1);
	assert_usage(&u, 7, 4, 0, 0);
	assert_int_equal(call(usage_gemini_body, &u,
	    "{\"usageMetadata\":{\"promptTokenCount\":9,"
	    "\"candidatesTokenCount\":1,\"cachedContentTokenCount\":9}}"), 1);
	assert_usage(&u, 9, 1, 9, 0);
	assert_int_equal(call(usage_gemini_body, &u, "[]"), 0);
	assert_int_equal(call(usage_gemini_body, &u, "[{\"candidates\":[]}]"),
	    0);
	assert_usage(&u, 9, 1, 9, 0);

	expect_bad(usage_gemini_event, "{\"usageMetadata\":"
	    "{\"promptTokenCount\":-3}}");
	expect_bad(usage_gemini_event, "{\"usageMetadata\":"
	    "{\"promptTokenCount\":3.5}}");
	expect_bad(usage_gemini_event, "{\"usageMetadata\":"
	    "{\"promptTokenCount\":3,\"cachedContentTokenCount\":4}}");
	expect_bad(usage_gemini_event, "{\"usageMetadata\":[]}");
	expect_bad(usage_gemini_event, "[{\"usageMetadata\":{}}]");
	expect_bad(usage_gemini_event, "{\"usageMetadata\":{");
	/* One bad element spoils the whole body. */
	expect_bad(usage_gemini_body, "[{\"usageMetadata\":{\"promptTokenCount\""
	    ":3}},{\"usageMetadata\":{\"promptTokenCount\":\"x\"}}]");
	expect_bad(usage_gemini_body, "[1]");
}

/* ---- content bytes and cut streams ---- */

static void
test_content_chars(void **state)
{
	struct usage u;

	(void)state;
	memset(&u, 0, sizeof(u));
	/* The stream above: "" and "Hi". */
	assert_int_equal(call(usage_openai_event, &u,
	    "{\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\","
	    "\"content\":\"\"}}],\"usage\":null}"), 0);
	assert_int_equal(call(usage_openai_event, &u,
	    "{\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hi\"}}],"
	    "\"usage\":null}"), 0);
	assert_int_equal(u.content_chars, 2);
	/* Bytes after unescaping: "h\u00e9" is h + two UTF-8 bytes. */
	assert_int_equal(call(usage_openai_event, &u,
	    "{\"choices\":[{\"delta\":{\"content\":\"h\\u00e9\"}}]}"), 0);
	assert_int_equal(u.content_chars, 5);
	/* Two choices, and a tool call's arguments. */
	assert_int_equal(call(usage_openai_event, &u,
	    "{\"choices\":[{\"index\":0,\"delta\":{\"content\":\"abc\"}},"
	    "{\"index\":1,\"delta\":{\"tool_calls\":[{\"index\":0,"
	    "\"function\":{\"name\":\"f\",\"arguments\":\"{\\\"a\\\":1}\"}}]}}"
	    "]}"), 0);
	assert_int_equal(u.content_chars, 5 + 3 + 7);
	/* Not strings, not shaped so, [DONE]: nothing. */
	assert_int_equal(call(usage_openai_event, &u,
	    "{\"choices\":[{\"delta\":{\"content\":null,\"tool_calls\":"
	    "[{\"function\":{\"arguments\":5}},7]}},3,{\"delta\":\"x\"}]}"), 0);
	assert_int_equal(call(usage_openai_event, &u,
	    "{\"choices\":{\"delta\":{\"content\":\"abc\"}}}"), 0);
	assert_int_equal(call(usage_openai_event, &u, "[DONE]"), 0);
	/* A message is not a delta in a stream. */
	assert_int_equal(call(usage_openai_event, &u,
	    "{\"choices\":[{\"message\":{\"content\":\"abc\"}}]}"), 0);
	assert_int_equal(u.content_chars, 15);
	/* A malformed chunk adds nothing, even around good content. */
	expect_bad(usage_openai_event, "{\"choices\":[{\"delta\":{\"content\":"
	    "\"abc\"}}],\"usage\":{\"prompt_tokens\":-1}}");
	assert_int_equal(call(usage_openai_event, &u,
	    "{\"choices\":[{\"delta\":{\"content\":\"abc\"}}],\"usage\":"
	    "{\"prompt_tokens\":-1}}"), -1);
	assert_int_equal(u.content_chars, 15);
	assert_int_equal(u.seen, 0);
	/* Usage in the same chunk: counted, and the count survives usage. */
	assert_int_equal(call(usage_openai_event, &u,
	    "{\"choices\":[{\"delta\":{\"content\":\"!\"}}],\"usage\":"
	    "{\"prompt_tokens\":9,\"completion_tokens\":4}}"), 1);
	assert_usage(&u, 9, 4, 0, 0);
	assert_int_equal(u.content_chars, 16);
	assert_int_equal(u.estimated, 0);

	/* A body: message content and tool calls. */
	memset(&u, 0, sizeof(u));
	assert_int_equal(call(usage_openai_body, &u,
	    "{\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\","
	    "\"content\":\"Hello\",\"tool_calls\":[{\"id\":\"c\",\"type\":"
	    "\"function\",\"function\":{\"name\":\"f\",\"arguments\":\"{}\"}}]"
	    "}}],\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":2}}"), 1);
	assert_usage(&u, 5, 2, 0, 0);
	assert_int_equal(u.content_chars, 7);
	assert_int_equal(call(usage_openai_body, &u,
	    "{\"choices\":[{\"delta\":{\"content\":\"abc\"}}]}"), 0);
	assert_int_equal(u.content_chars, 7);
}


/* ---- by dialect: the one entry point hub and agent share ---- */

/* Feed a whole SSE text through usage_read_event in dialect d. */
static void
read_stream(enum prov_dialect d, struct usage *u, const char *text)
{
	struct sse s;
	struct sse_event ev;

	sse_init(&s, 0);
	assert_int_equal(sse_feed(&s, text, strlen(text)), 0);
	while (sse_next(&s, &ev) == 1)
		(void)usage_read_event(d, u, ev.event, ev.data, ev.data_len);
	sse_free(&s);
}

static void
test_read_by_dialect(void **state)
{
	struct usage u;

	(void)state;
	/* Anthropic through the entry point: cache read/write, cumulative
	 * output, and the text seen. */
	memset(&u, 0, sizeof(u));
	read_stream(DIA_ANTHROPIC, &u, anthropic_stream);
	assert_usage(&u, 2325, 15, 2000, 300);
	assert_int_equal(u.content_chars, 5);		/* "Hello" */
	/* Read as OpenAI it would bill wrong numbers: the dialect matters. */
	memset(&u, 0, sizeof(u));
	read_stream(DIA_OPENAI, &u, anthropic_stream);
	assert_true(u.input_tokens != 2325);

	/* An error event after a 200 carries no usage; a ping neither. */
	memset(&u, 0, sizeof(u));
	assert_int_equal(usage_read_event(DIA_ANTHROPIC, &u, "error", S(
	    "{\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\","
	    "\"message\":\"Overloaded\"}}")), 0);
	assert_int_equal(usage_read_event(DIA_ANTHROPIC, &u, "ping",
	    S("{\"type\":\"ping\"}")), 0);
	assert_int_equal(u.seen, 0);
	/* Tool input and thinking count as content for a cut stream. */
	assert_int_equal(usage_read_event(DIA_ANTHROPIC, &u,
	    "content_block_delta", S("{\"type\":\"content_block_delta\","
	    "\"index\":1,\"delta\":{\"type\":\"input_json_delta\","
	    "\"partial_json\":\"{\\\"q\\\":\"}}")), 0);
	assert_int_equal(usage_read_event(DIA_ANTHROPIC, &u, NULL, S(
	    "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":"
	    "\"thinking_delta\",\"thinking\":\"hmm\"}}")), 0);
	assert_int_equal(u.content_chars, 5 + 3);
	assert_int_equal(usage_read_event(DIA_ANTHROPIC, &u, "x", NULL, 0), 0);

	/* An Anthropic body: counts and the text of its blocks. */
	memset(&u, 0, sizeof(u));
	assert_int_equal(usage_read_body(DIA_ANTHROPIC, &u, S(
	    "{\"id\":\"m\",\"type\":\"message\",\"content\":[{\"type\":\"text\","
	    "\"text\":\"tok0 \"},{\"type\":\"tool_use\",\"id\":\"t\",\"name\":"
	    "\"f\",\"input\":{}}],\"usage\":{\"input_tokens\":9,"
	    "\"cache_creation_input_tokens\":2,\"cache_read_input_tokens\":5,"
	    "\"output_tokens\":3}}")), 1);
	assert_usage(&u, 16, 3, 5, 2);
	assert_int_equal(u.content_chars, 5);
	/* count_tokens answers are not usage. */
	memset(&u, 0, sizeof(u));
	assert_int_equal(usage_read_body(DIA_ANTHROPIC, &u,
	    S("{\"input_tokens\":3}")), 0);
	assert_int_equal(u.seen, 0);

	/* Gemini and OpenAI bodies through the entry point. */
	memset(&u, 0, sizeof(u));
	assert_int_equal(usage_read_body(DIA_GEMINI, &u, S("{\"usageMetadata\":"
	    "{\"promptTokenCount\":4,\"candidatesTokenCount\":2,"
	    "\"thoughtsTokenCount\":3}}")), 1);
	assert_usage(&u, 4, 5, 0, 0);
	assert_int_equal(usage_read_event(DIA_GEMINI, &u, NULL, S(
	    "{\"usageMetadata\":{\"promptTokenCount\":4,"
	    "\"candidatesTokenCount\":7}}")), 1);
	assert_usage(&u, 4, 7, 0, 0);
	memset(&u, 0, sizeof(u));
	assert_int_equal(usage_read_body(DIA_OPENAI, &u, S("{\"usage\":"
	    "{\"prompt_tokens\":3,\"total_tokens\":3}}")), 1);	/* embeddings */
	assert_usage(&u, 3, 0, 0, 0);
}

/* Bedrock: Converse bodies and metadata events (cache counts added to
 * input), InvokeModel chunks of Claude (Anthropic events, then Bedrock's
 * invocationMetrics win), Nova's native body, and event-stream frames. */
#define CHUNK(b64) "{\"bytes\":\"" b64 "\"}"
#define C_MS "eyJ0eXBlIjoibWVzc2FnZV9zdGFydCIsIm1lc3NhZ2UiOnsiaWQiOiJtc2dfMSIs" \
	"InR5cGUiOiJtZXNzYWdlIiwicm9sZSI6ImFzc2lzdGFudCIsIm1vZGVsIjoiY2xhdWRl" \
	"LTMtNS1oYWlrdS0yMDI0MTAyMiIsImNvbnRlbnQiOltdLCJ1c2FnZSI6eyJpbnB1dF90" \
	"b2tlbnMiOjEyLCJvdXRwdXRfdG9rZW5zIjoxfX19"
#define C_MD "eyJ0eXBlIjoibWVzc2FnZV9kZWx0YSIsImRlbHRhIjp7InN0b3BfcmVhc29uIjoi" \
	"ZW5kX3R1cm4ifSwidXNhZ2UiOnsib3V0cHV0X3Rva2VucyI6NH19"
#define C_ST "eyJ0eXBlIjoibWVzc2FnZV9zdG9wIiwiYW1hem9uLWJlZHJvY2staW52b2NhdGlv" \
	"bk1ldHJpY3MiOnsiaW5wdXRUb2tlbkNvdW50IjoxMiwib3V0cHV0VG9rZW5Db3VudCI6" \
	"NSwiaW52b2NhdGlvbkxhdGVuY3kiOjEwMCwiZmlyc3RCeXRlTGF0ZW5jeSI6NTB9fQ=="
#define C_CD "eyJ0eXBlIjoiY29udGVudF9ibG9ja19kZWx0YSIsImluZGV4IjowLCJkZWx0YSI6" \
	"eyJ0eXBlIjoidGV4dF9kZWx0YSIsInRleHQiOiJIZWxsbyJ9fQ=="

static void
test_bedrock(void **state)
{
	struct usage u;

	(void)state;
	/* Converse body */
	memset(&u, 0, sizeof(u));
	assert_int_equal(usage_read_body(DIA_CONVERSE, &u, S("{\"output\":"
	    "{\"message\":{\"role\":\"assistant\",\"content\":[{\"text\":"
	    "\"Hi there\"}]}},\"stopReason\":\"end_turn\",\"usage\":"
	    "{\"inputTokens\":10,\"outputTokens\":3,\"totalTokens\":19,"
	    "\"cacheReadInputTokens\":4,\"cacheWriteInputTokens\":2}}")), 1);
	assert_usage(&u, 16, 3, 4, 2);
	assert_int_equal(u.content_chars, 8);
	/* an error body: nothing */
	memset(&u, 0, sizeof(u));
	assert_int_equal(usage_read_body(DIA_CONVERSE, &u,
	    S("{\"message\":\"bad\"}")), 0);
	assert_int_equal(u.seen, 0);
	assert_int_equal(usage_read_body(DIA_CONVERSE, &u, S("{\"usage\":"
	    "{\"inputTokens\":-1}}")), -1);
	assert_int_equal(u.seen, 0);
	/* ConverseStream events */
	memset(&u, 0, sizeof(u));
	assert_int_equal(usage_read_event(DIA_CONVERSE, &u, "messageStart",
	    S("{\"role\":\"assistant\"}")), 0);
	assert_int_equal(usage_read_event(DIA_CONVERSE, &u, "contentBlockDelta",
	    S("{\"delta\":{\"text\":\"Hello\"},\"contentBlockIndex\":0}")), 0);
	assert_int_equal(u.content_chars, 5);
	assert_int_equal(u.seen, 0);
	assert_int_equal(usage_read_event(DIA_CONVERSE, &u, "metadata",
	    S("{\"usage\":{\"inputTokens\":7,\"outputTokens\":2,"
	    "\"totalTokens\":9},\"metrics\":{\"latencyMs\":12}}")), 1);
	assert_usage(&u, 7, 2, 0, 0);
	assert_int_equal(u.content_chars, 5);

	/* InvokeModelWithResponseStream of Claude */
	memset(&u, 0, sizeof(u));
	assert_int_equal(usage_read_event(DIA_NATIVE, &u, "chunk",
	    S(CHUNK(C_MS))), 1);
	assert_usage(&u, 12, 1, 0, 0);
	assert_int_equal(usage_read_event(DIA_NATIVE, &u, "chunk",
	    S(CHUNK(C_CD))), 0);
	assert_int_equal(u.content_chars, 5);
	assert_int_equal(usage_read_event(DIA_NATIVE, &u, "chunk",
	    S(CHUNK(C_MD))), 1);
	assert_usage(&u, 12, 4, 0, 0);
	/* the metrics (output 5) replace the model's count (4) */
	assert_int_equal(usage_read_event(DIA_NATIVE, &u, "chunk",
	    S(CHUNK(C_ST))), 1);
	assert_usage(&u, 12, 5, 0, 0);
	/* not base64, not a chunk */
	assert_int_equal(usage_read_event(DIA_NATIVE, &u, "chunk",
	    S(CHUNK("e!!"))), -1);
	assert_int_equal(usage_read_event(DIA_NATIVE, &u, "chunk",
	    S("{\"bytes\":3}")), -1);
	assert_int_equal(usage_read_event(DIA_NATIVE, &u,
	    "throttlingException", S("{\"message\":\"slow\"}")), 0);
	assert_usage(&u, 12, 5, 0, 0);
	/* InvokeModel bodies: Claude's, Nova's */
	memset(&u, 0, sizeof(u));
	assert_int_equal(usage_read_body(DIA_NATIVE, &u, S("{\"id\":\"m\","
	    "\"type\":\"message\",\"content\":[{\"type\":\"text\",\"text\":"
	    "\"Hi\"}],\"usage\":{\"input_tokens\":9,\"output_tokens\":3,"
	    "\"cache_read_input_tokens\":1}}")), 1);
	assert_usage(&u, 10, 3, 1, 0);
	memset(&u, 0, sizeof(u));
	assert_int_equal(usage_read_body(DIA_NATIVE, &u, S("{\"output\":"
	    "{\"message\":{\"content\":[{\"text\":\"Hi\"}]}},\"usage\":"
	    "{\"inputTokens\":5,\"outputTokens\":1,\"totalTokens\":6}}")), 1);
	assert_usage(&u, 5, 1, 0, 0);

	/* a frame: :event-type is the name; an exception is no usage */
	{
		unsigned char f[512];
		struct evs_msg m;
		char err[96];
		static const char md[] = "{\"usage\":{\"inputTokens\":3,"
		    "\"outputTokens\":1,\"totalTokens\":4}}";
		size_t n = evs_encode_event(f, sizeof(f), "metadata", 0, md,
		    sizeof(md) - 1);

		assert_int_equal(evs_parse(f, n, &m, err, sizeof(err)), 0);
		memset(&u, 0, sizeof(u));
		assert_int_equal(usage_read_evs(DIA_CONVERSE, &u, &m), 1);
		assert_usage(&u, 3, 1, 0, 0);
		n = evs_encode_event(f, sizeof(f), "metadata", 1, md,
		    sizeof(md) - 1);
		assert_int_equal(evs_parse(f, n, &m, err, sizeof(err)), 0);
		memset(&u, 0, sizeof(u));
		assert_int_equal(usage_read_evs(DIA_CONVERSE, &u, &m), 0);
		assert_int_equal(u.seen, 0);
	}
}

/* DeepSeek, Qwen and OpenAI's Responses API: the OpenAI dialect. */
static void
test_openai_compatibles(void **state)
{
	struct usage u;

	(void)state;
	/* DeepSeek: cache hits, reasoning inside completion_tokens. */
	memset(&u, 0, sizeof(u));
	read_stream(DIA_OPENAI, &u,
	    ": keep-alive\n\n"
	    "data: {\"choices\":[{\"delta\":{\"reasoning_content\":\"think\"}}],"
	    "\"usage\":null}\n\n"
	    "data: {\"choices\":[{\"delta\":{\"content\":\"ok\"}}],"
	    "\"usage\":null}\n\n"
	    "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":10,"
	    "\"completion_tokens\":7,\"total_tokens\":17,"
	    "\"prompt_cache_hit_tokens\":4,\"prompt_cache_miss_tokens\":6,"
	    "\"completion_tokens_details\":{\"reasoning_tokens\":5}}}\n\n"
	    "data: [DONE]\n\n");
	assert_usage(&u, 10, 7, 4, 0);
	assert_int_equal(u.content_chars, 2);
	/* prompt_tokens_details wins over prompt_cache_hit_tokens. */
	memset(&u, 0, sizeof(u));
	assert_int_equal(usage_read_body(DIA_OPENAI, &u, S("{\"usage\":"
	    "{\"prompt_tokens\":10,\"completion_tokens\":1,"
	    "\"prompt_tokens_details\":{\"cached_tokens\":2},"
	    "\"prompt_cache_hit_tokens\":4}}")), 1);
	assert_usage(&u, 10, 1, 2, 0);

	/* Qwen: usage on every chunk, cumulative: the last, never a sum. */
	memset(&u, 0, sizeof(u));
	read_stream(DIA_OPENAI, &u,
	    "data: {\"choices\":[{\"delta\":{\"content\":\"a\"}}],\"usage\":"
	    "{\"prompt_tokens\":8,\"completion_tokens\":1,\"total_tokens\":9}}\n\n"
	    "data: {\"choices\":[{\"delta\":{\"content\":\"b\"}}],\"usage\":"
	    "{\"prompt_tokens\":8,\"completion_tokens\":2,\"total_tokens\":10}}\n\n"
	    "data: {\"choices\":[{\"delta\":{\"content\":\"c\"}}],\"usage\":"
	    "{\"prompt_tokens\":8,\"completion_tokens\":3,\"total_tokens\":11}}\n\n"
	    "data: [DONE]\n\n");
	assert_usage(&u, 8, 3, 0, 0);
	assert_int_equal(u.content_chars, 3);

	/* The Responses API: stream events and a body. */
	memset(&u, 0, sizeof(u));
	read_stream(DIA_OPENAI, &u,
	    "event: response.created\n"
	    "data: {\"type\":\"response.created\",\"sequence_number\":0,"
	    "\"response\":{\"id\":\"r\",\"status\":\"in_progress\","
	    "\"usage\":null}}\n\n"
	    "event: response.output_text.delta\n"
	    "data: {\"type\":\"response.output_text.delta\",\"sequence_number\":1,"
	    "\"delta\":\"Hi!\"}\n\n"
	    "event: response.completed\n"
	    "data: {\"type\":\"response.completed\",\"sequence_number\":2,"
	    "\"response\":{\"id\":\"r\",\"status\":\"completed\",\"usage\":"
	    "{\"input_tokens\":12,\"input_tokens_details\":{\"cached_tokens\":"
	    "8},\"output_tokens\":30,\"output_tokens_details\":"
	    "{\"reasoning_tokens\":20},\"total_tokens\":42}}}\n\n");
	assert_usage(&u, 12, 30, 8, 0);
	assert_int_equal(u.content_chars, 3);
	memset(&u, 0, sizeof(u));
	assert_int_equal(usage_read_body(DIA_OPENAI, &u, S("{\"object\":"
	    "\"response\",\"usage\":{\"input_tokens\":5,\"output_tokens\":2}}")),
	    1);
	assert_usage(&u, 5, 2, 0, 0);
	expect_bad(usage_openai_body, "{\"usage\":{\"input_tokens\":5,"
	    "\"output_tokens\":-2}}");
	expect_bad(usage_openai_body, "{\"usage\":{\"input_tokens\":5,"
	    "\"input_tokens_details\":{\"cached_tokens\":6}}}");
}

/* The agent's model rewrite: only the top-level model, every other byte
 * kept. */
static void
test_set_model(void **state)
{
	static const struct { const char *in, *out; } ok[] = {
		{ "{\"model\":\"a\"}", "{\"model\":\"claude-3-5-haiku-latest\"}" },
		{ " { \"messages\" : [{\"model\":\"a\"}] ,\n \"model\" : \"pub\", "
		    "\"x\":{\"model\":\"q\"} }",
		  " { \"messages\" : [{\"model\":\"a\"}] ,\n \"model\" : "
		    "\"claude-3-5-haiku-latest\", \"x\":{\"model\":\"q\"} }" },
		{ "{\"mo\\u0064el\":\"a\",\"k\":1.50}",
		  "{\"mo\\u0064el\":\"claude-3-5-haiku-latest\",\"k\":1.50}" },
	};
	static const char *const bad[] = {
		"", "[]", "{\"model\":1}", "{\"x\":1}", "{\"model\":\"a\","
		"\"model\":\"b\"}", "{\"model\":\"a\"", "\"model\"",
	};
	char *out;
	size_t n;

	(void)state;
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		assert_int_equal(usage_set_model(S(ok[i].in),
		    "claude-3-5-haiku-latest", &out, &n), 0);
		assert_string_equal(out, ok[i].out);
		assert_int_equal(n, strlen(ok[i].out));
		free(out);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (usage_set_model(S(bad[i]), "m", &out, &n) != -1)
			fail_msg("accepted: %s", bad[i]);
		assert_null(out);
	}
}

static void
test_estimate_cut(void **state)
{
	static const int64_t chars[] = { 0, 1, 4, 5, 8 };
	static const int64_t outs[] = { 0, 1, 1, 2, 2 };
	struct usage u, was;

	(void)state;
	/* Cut after 10 bytes of content: output ceil(10 / 4) = 3. */
	memset(&u, 0, sizeof(u));
	assert_int_equal(call(usage_openai_event, &u,
	    "{\"choices\":[{\"delta\":{\"content\":\"0123456789\"}}],"
	    "\"usage\":null}"), 0);
	usage_estimate_cut(&u, 123);
	assert_int_equal(u.seen, 0);
	assert_int_equal(u.estimated, 1);
	assert_int_equal(u.input_tokens, 123);
	assert_int_equal(u.output_tokens, 3);
	assert_int_equal(u.cached_tokens, 0);
	assert_int_equal(u.cache_write_tokens, 0);
	/* Applying the rule twice gives the same numbers. */
	was = u;
	usage_estimate_cut(&u, 123);
	assert_memory_equal(&u, &was, sizeof(u));

	/* The rounding: 0 -> 0, 1 -> 1, 4 -> 1, 5 -> 2, 8 -> 2. */
	for (size_t i = 0; i < sizeof(chars) / sizeof(chars[0]); i++) {
		memset(&u, 0, sizeof(u));
		u.content_chars = chars[i];
		usage_estimate_cut(&u, 7);
		assert_int_equal(u.output_tokens, outs[i]);
	}
	/* Input is clamped into a valid count. */
	memset(&u, 0, sizeof(u));
	usage_estimate_cut(&u, -5);
	assert_int_equal(u.input_tokens, 0);
	usage_estimate_cut(&u, USAGE_MAX_TOKENS + 1);
	assert_int_equal(u.input_tokens, USAGE_MAX_TOKENS);

	/* Stale numbers from before the cut (a cached part) are cleared. */
	memset(&u, 0, sizeof(u));
	u.cached_tokens = 4;
	u.cache_write_tokens = 2;
	usage_estimate_cut(&u, 10);
	assert_int_equal(u.cached_tokens, 0);
	assert_int_equal(u.cache_write_tokens, 0);

	/* The provider's usage arrived: nothing changes. */
	memset(&u, 0, sizeof(u));
	assert_int_equal(call(usage_openai_event, &u,
	    "{\"choices\":[{\"delta\":{\"content\":\"0123456789\"}}],"
	    "\"usage\":{\"prompt_tokens\":100,\"completion_tokens\":42,"
	    "\"prompt_tokens_details\":{\"cached_tokens\":64}}}"), 1);
	was = u;
	usage_estimate_cut(&u, 5);
	assert_memory_equal(&u, &was, sizeof(u));
	assert_usage(&u, 100, 42, 64, 0);
	assert_int_equal(u.estimated, 0);

	/* Anthropic usage counts as seen too. */
	memset(&u, 0, sizeof(u));
	assert_int_equal(usage_anthropic_event(&u, NULL, S(
	    "{\"type\":\"message_start\",\"message\":{\"usage\":"
	    "{\"input_tokens\":3,\"output_tokens\":1}}}")), 1);
	was = u;
	usage_estimate_cut(&u, 5);
	assert_memory_equal(&u, &was, sizeof(u));
}

/* OpenAI Realtime: only response.done carries usage, one response's own. */
static void
test_realtime(void **state)
{
	struct usage u = { 0 };

	(void)state;
	assert_int_equal(call(usage_realtime_event, &u,
	    "{\"type\":\"session.created\",\"session\":{}}"), 0);
	assert_int_equal(call(usage_realtime_event, &u,
	    "{\"type\":\"response.output_text.delta\",\"delta\":\"hi\"}"), 0);
	assert_int_equal(u.seen, 0);
	assert_int_equal(call(usage_realtime_event, &u,
	    "{\"type\":\"response.done\",\"response\":{\"id\":\"r1\","
	    "\"usage\":{\"total_tokens\":60,\"input_tokens\":40,"
	    "\"output_tokens\":20,\"input_token_details\":{"
	    "\"cached_tokens\":8,\"text_tokens\":30,\"audio_tokens\":10},"
	    "\"output_token_details\":{\"text_tokens\":20}}}}"), 1);
	assert_usage(&u, 40, 20, 8, 0);
	/* The next response replaces, never adds. */
	assert_int_equal(call(usage_realtime_event, &u,
	    "{\"type\":\"response.done\",\"response\":{\"usage\":"
	    "{\"input_tokens\":5,\"output_tokens\":1}}}"), 1);
	assert_usage(&u, 5, 1, 0, 0);
	/* A response.done without usage (e.g. cancelled early): nothing. */
	assert_int_equal(call(usage_realtime_event, &u,
	    "{\"type\":\"response.done\",\"response\":{\"usage\":null}}"), 0);
	assert_usage(&u, 5, 1, 0, 0);
	expect_bad(usage_realtime_event, "not json");
	expect_bad(usage_realtime_event, "[1]");
	expect_bad(usage_realtime_event,
	    "{\"type\":\"response.done\",\"response\":7}");
	expect_bad(usage_realtime_event,
	    "{\"type\":\"response.done\",\"response\":{\"usage\":[]}}");
	expect_bad(usage_realtime_event,
	    "{\"type\":\"response.done\",\"response\":{\"usage\":"
	    "{\"input_tokens\":-1}}}");
	expect_bad(usage_realtime_event,
	    "{\"type\":\"response.done\",\"response\":{\"usage\":"
	    "{\"input_tokens\":1,\"input_token_details\":{\"cached_tokens\":2}}}}");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_openai_stream),
		cmocka_unit_test(test_openai_events),
		cmocka_unit_test(test_openai_body),
		cmocka_unit_test(test_openai_malformed),
		cmocka_unit_test(test_openai_in_place),
		cmocka_unit_test(test_usage_only_chunk),
		cmocka_unit_test(test_force_include_usage),
		cmocka_unit_test(test_force_include_usage_refused),
		cmocka_unit_test(test_anthropic_stream),
		cmocka_unit_test(test_anthropic_events),
		cmocka_unit_test(test_anthropic_body),
		cmocka_unit_test(test_gemini_stream),
		cmocka_unit_test(test_gemini_misc),
		cmocka_unit_test(test_content_chars),
		cmocka_unit_test(test_estimate_cut),
		cmocka_unit_test(test_read_by_dialect),
		cmocka_unit_test(test_bedrock),
		cmocka_unit_test(test_openai_compatibles),
		cmocka_unit_test(test_set_model),
		cmocka_unit_test(test_realtime),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
