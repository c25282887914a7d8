/*
 * tests/fuzz/fuzz_xlate: libFuzzer target for xlate/ (the hub's chat
 * translation).  The first input byte picks the pair, the call and two
 * flags; the rest is the payload:
 *
 *   bit 0      pair: 0 OpenAI user / Anthropic provider, 1 the reverse
 *   bits 5-6   1: a Bedrock Converse pair; bit 0 then picks 0 OpenAI user
 *              / Converse provider (the stream's events being
 *              event-stream frames handed over as NAME = :event-type,
 *              DATA = payload), 1 Converse user / OpenAI provider (the
 *              user's stream being event-stream frames),
 *              2: Anthropic user / Claude on Bedrock's InvokeModel,
 *              3: a Gemini pair; bit 0 then picks 0 OpenAI user /
 *              Gemini provider, 1 Gemini user / OpenAI provider
 *   bits 1-2   0 xl_request, 1 xl_response, 2 xl_error, 3 a stream
 *   bit 3      stream flag (request) / include_usage (stream)
 *   bit 4      ok passed to xl_stream_end
 *
 * A stream payload is events separated by 0x1e; an event is
 * "NAME\x1fDATA" or just DATA.  Checks: a request or response that is
 * accepted is one JSON object, a refused one says why and leaves the
 * output alone; an error body is always one JSON object; a stream only
 * ever appends complete SSE events whose data is JSON (or [DONE]) — for a
 * Converse user whole event-stream frames with valid CRCs and a JSON
 * object payload —, nothing after it said the stream is complete,
 * nothing on -1.
 *
 * Built with -DFUZZ_SEEDGEN it becomes the seed generator:
 * `fuzz_xlate-seedgen DIR` writes the seeds of tests/fuzz/corpus/xlate/.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "lib/evstream.h"
#include "xlate/xl.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

_Noreturn static void
die(const char *what, const char *why)
{
	fprintf(stderr, "fuzz_xlate: %s: %s\n", what, why);
	abort();
}

static void
check_object(const char *p, size_t n, const char *what)
{
	json_t *j;

	if (p == NULL || strlen(p) != n)
		die(what, "output not NUL-terminated at its length");
	if ((j = json_loadb(p, n, 0, NULL)) == NULL || !json_is_object(j))
		die(what, "output is not a JSON object");
	json_decref(j);
}

/* p[0..n) is whole SSE events: ["event: NAME\n"] "data: JSON\n\n". */
static void
check_sse(const char *p, size_t n)
{
	if (p == NULL && n == 0)
		return;
	while (n > 0) {
		const char *end = memmem(p, n, "\n\n", 2), *d = p, *nl;
		size_t len;

		if (end == NULL)
			die("stream", "event not terminated");
		if (strncmp(d, "event: ", 7) == 0) {
			if ((nl = memchr(d, '\n', (size_t)(end - d))) == NULL)
				die("stream", "event line without data");
			d = nl + 1;
		}
		if (strncmp(d, "data: ", 6) != 0)
			die("stream", "no data line");
		d += 6;
		len = (size_t)(end - d);
		if (memchr(d, '\n', len) != NULL)
			die("stream", "newline inside data");
		if (!(len == 6 && memcmp(d, "[DONE]", 6) == 0))
			check_object(strndupa(d, len), len, "stream data");
		n -= (size_t)(end + 2 - p);
		p = end + 2;
	}
}

/* p[0..n) is whole event-stream frames (a Converse user's stream), each
 * an event or exception with a JSON object payload. */
static void
check_frames(const char *p, size_t n)
{
	struct evs d;
	struct evs_msg m;
	int rc;

	if (n == 0)
		return;
	evs_init(&d, 0);
	if (evs_feed(&d, p, n) != 0)
		die("stream", "out of memory");
	while ((rc = evs_next(&d, &m)) == 1) {
		if (!evs_str_is(&m, ":message-type", "event") &&
		    !evs_str_is(&m, ":message-type", "exception"))
			die("stream", "frame without a message type");
		if (evs_str(&m, ":event-type", NULL) == NULL &&
		    evs_str(&m, ":exception-type", NULL) == NULL)
			die("stream", "frame without a type");
		check_object(strndupa((const char *)m.payload, m.payload_len),
		    m.payload_len, "frame payload");
	}
	if (rc != 0 || evs_pending(&d) != 0)
		die("stream", "not whole, valid frames");
	evs_free(&d);
}

static void
check_out(enum prov_dialect from, const char *p, size_t n)
{
	if (from == DIA_CONVERSE)
		check_frames(p, n);
	else
		check_sse(p, n);
}

static void
run_stream(enum prov_dialect from, enum prov_dialect to, int flags,
    const char *p, size_t n)
{
	struct xl_stream *s = xl_stream_new(from, to, flags & 8 ? NULL :
	    "model-x", flags & 8);
	struct xl_buf out = { 0 };
	int closed = 0, failed = 0;

	if (s == NULL)
		die("stream", "no translator for a supported pair");
	while (n > 0 && !failed) {
		const char *rs = memchr(p, 0x1e, n);
		size_t ev = rs ? (size_t)(rs - p) : n;
		const char *us = memchr(p, 0x1f, ev);
		char *name = NULL;
		const char *data = p;
		size_t dlen = ev, was = out.len;
		int rc;

		if (us != NULL) {
			name = strndup(p, (size_t)(us - p));
			data = us + 1;
			dlen = ev - (size_t)(us - p) - 1;
		}
		rc = xl_stream_event(s, name, data, dlen, &out);
		free(name);
		if (rc < -1 || rc > 1)
			die("stream", "bad return");
		if ((rc == -1 || closed) && out.len != was)
			die("stream", "output after -1 or after the end");
		if (rc == -1)
			failed = 1;
		if (rc == 1)
			closed = 1;
		if (closed && rc != 1)
			die("stream", "reopened");
		check_out(from, out.p ? out.p + was : NULL, out.len - was);
		p += ev + (rs != NULL);
		n -= ev + (rs != NULL);
	}
	{
		size_t was = out.len;

		xl_stream_end(s, failed ? 0 : flags & 16, &out);
		if (closed && out.len != was)
			die("stream", "end after the end");
		if (!closed && out.len == was)
			die("stream", "end closed nothing");
		check_out(from, out.p ? out.p + was : NULL, out.len - was);
		was = out.len;
		xl_stream_end(s, 1, &out);
		if (out.len != was)
			die("stream", "end twice");
	}
	xl_stream_free(s);
	xl_buf_free(&out);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	enum prov_dialect from, to;
	struct xl_buf out = { 0 };
	const char *p = (const char *)data + 1;
	size_t n;
	char err[256];
	int flags, rc;

	if (size < 1)
		return 0;
	flags = data[0];
	n = size - 1;
	from = flags & 1 ? DIA_ANTHROPIC : DIA_OPENAI;
	to = flags & 1 ? DIA_OPENAI : DIA_ANTHROPIC;
	if (((flags >> 5) & 3) == 1) {
		from = flags & 1 ? DIA_CONVERSE : DIA_OPENAI;
		to = flags & 1 ? DIA_OPENAI : DIA_CONVERSE;
	} else if (((flags >> 5) & 3) == 2) {
		from = DIA_ANTHROPIC;
		to = DIA_NATIVE;
	} else if (((flags >> 5) & 3) == 3) {
		from = flags & 1 ? DIA_GEMINI : DIA_OPENAI;
		to = flags & 1 ? DIA_OPENAI : DIA_GEMINI;
	}
	err[0] = '\0';
	switch ((flags >> 1) & 3) {
	case 0:
	case 1:
		if ((flags >> 1) & 3)
			rc = xl_response(from, to, p, n, flags & 8 ? NULL :
			    "model-x", &out, err, sizeof(err));
		else
			rc = xl_request(from, to, p, n, flags & 8 ? NULL :
			    "model-x", flags & 16, &out, err, sizeof(err));
		if (rc == 0)
			check_object(out.p, out.len, "translated body");
		else if (rc != -1 || out.len != 0 || err[0] == '\0')
			die("translate", "refused without a reason or with "
			    "output");
		break;
	case 2:
		xl_error(from, to, 400 + (flags >> 3) * 8, p, n, &out);
		check_object(out.p, out.len, "error body");
		break;
	default:
		run_stream(from, to, flags, p, n);
		break;
	}
	xl_buf_free(&out);
	return 0;
}

#ifdef FUZZ_SEEDGEN
static void
seed(const char *dir, const char *name, int flags, const char *body)
{
	char path[512];
	FILE *fp;
	unsigned char f = (unsigned char)flags;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if ((fp = fopen(path, "wb")) == NULL)
		die(path, "cannot create");
	if (fwrite(&f, 1, 1, fp) != 1 ||
	    fwrite(body, 1, strlen(body), fp) != strlen(body) ||
	    fclose(fp) != 0)
		die(path, "cannot write");
	{
		size_t n = strlen(body) + 1;
		uint8_t *b = malloc(n);

		b[0] = f;
		memcpy(b + 1, body, n - 1);
		LLVMFuzzerTestOneInput(b, n);	/* seeds pass the checks */
		free(b);
	}
}

#define RS "\x1e"
#define US "\x1f"

int
main(int argc, char **argv)
{
	const char *d;

	if (argc != 2) {
		fprintf(stderr, "usage: %s DIR\n", argv[0]);
		return 2;
	}
	d = argv[1];
	seed(d, "gm_request", 96, "{\"model\":\"g\",\"messages\":[{\"role\":"
	    "\"system\",\"content\":\"s\"},{\"role\":\"user\",\"content\":"
	    "\"hi\"}],\"max_tokens\":5,\"stop\":[\"x\"]}");
	seed(d, "gm_response", 96 | 2, "{\"candidates\":[{\"content\":{"
	    "\"parts\":[{\"text\":\"b\"},{\"functionCall\":{\"name\":\"f\","
	    "\"args\":{}}}]},\"finishReason\":\"STOP\"}],\"usageMetadata\":"
	    "{\"promptTokenCount\":3,\"candidatesTokenCount\":2}}");
	seed(d, "gm_error", 96 | 4, "{\"error\":{\"code\":429,\"message\":"
	    "\"slow\",\"status\":\"RESOURCE_EXHAUSTED\"}}");
	seed(d, "gm_stream", 96 | 6 | 8 | 16, "{\"candidates\":[{\"content\":"
	    "{\"parts\":[{\"text\":\"a\"}]}}],\"responseId\":\"r\"}" RS
	    "{\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"b\"}]},"
	    "\"finishReason\":\"STOP\"}],\"usageMetadata\":"
	    "{\"promptTokenCount\":3}}");
	seed(d, "gmoa_request", 96 | 1 | 16, "{\"systemInstruction\":{"
	    "\"parts\":[{\"text\":\"s\"}]},\"contents\":[{\"role\":\"user\","
	    "\"parts\":[{\"text\":\"hi\"},{\"inlineData\":{\"mimeType\":"
	    "\"image/png\",\"data\":\"AA\"}}]},{\"role\":\"model\",\"parts\":"
	    "[{\"functionCall\":{\"name\":\"f\",\"args\":{\"a\":1}}}]},"
	    "{\"role\":\"user\",\"parts\":[{\"functionResponse\":{\"name\":"
	    "\"f\",\"response\":{\"r\":1}}}]}],\"tools\":[{"
	    "\"functionDeclarations\":[{\"name\":\"f\",\"parameters\":{"
	    "\"type\":\"OBJECT\",\"properties\":{\"a\":{\"type\":"
	    "\"INTEGER\",\"nullable\":true}}}}]}],\"toolConfig\":{"
	    "\"functionCallingConfig\":{\"mode\":\"ANY\","
	    "\"allowedFunctionNames\":[\"f\"]}},\"generationConfig\":{"
	    "\"temperature\":0.5,\"maxOutputTokens\":9,\"stopSequences\":"
	    "[\"x\"],\"responseMimeType\":\"application/json\"}}");
	seed(d, "gmoa_response", 96 | 1 | 2, "{\"id\":\"c\",\"model\":\"g\","
	    "\"choices\":[{\"index\":0,\"finish_reason\":\"tool_calls\","
	    "\"message\":{\"role\":\"assistant\",\"content\":\"hi\","
	    "\"reasoning_content\":\"r\",\"tool_calls\":[{\"id\":\"c1\","
	    "\"type\":\"function\",\"function\":{\"name\":\"f\","
	    "\"arguments\":\"{}\"}}]}}],\"usage\":{\"prompt_tokens\":5,"
	    "\"completion_tokens\":2,\"completion_tokens_details\":{"
	    "\"reasoning_tokens\":1}}}");
	seed(d, "gmoa_error", 96 | 1 | 4, "{\"error\":{\"message\":\"bad\","
	    "\"type\":\"invalid_request_error\",\"code\":\"x\"}}");
	seed(d, "gmoa_stream", 96 | 1 | 6 | 16,
	    "{\"id\":\"c\",\"model\":\"g\",\"choices\":[{\"index\":0,"
	    "\"delta\":{\"role\":\"assistant\",\"content\":\"Hi\"}}]}" RS
	    "{\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{"
	    "\"tool_calls\":[{\"index\":0,\"id\":\"c1\",\"type\":"
	    "\"function\",\"function\":{\"name\":\"f\",\"arguments\":"
	    "\"{\\\"a\\\"\"}}]}}]}" RS
	    "{\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{"
	    "\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":"
	    "\":1}\"}}]},\"finish_reason\":\"tool_calls\"}]}" RS
	    "{\"id\":\"c\",\"choices\":[],\"usage\":{\"prompt_tokens\":5,"
	    "\"completion_tokens\":2}}" RS "[DONE]");
	seed(d, "req-oa", 0 | 16, "{\"model\":\"gpt-4o\",\"max_tokens\":9,"
	    "\"temperature\":0.7,\"stop\":[\"x\"],\"user\":\"u\","
	    "\"messages\":[{\"role\":\"system\",\"content\":\"S\"},"
	    "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"hi\"},"
	    "{\"type\":\"image_url\",\"image_url\":{\"url\":"
	    "\"data:image/png;base64,AAAA\"}},{\"type\":\"image_url\","
	    "\"image_url\":{\"url\":\"https://x.test/i.png\"}}]},"
	    "{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[{\"id\":"
	    "\"c1\",\"type\":\"function\",\"function\":{\"name\":\"f\","
	    "\"arguments\":\"{\\\"a\\\":1}\"}}]},{\"role\":\"tool\","
	    "\"tool_call_id\":\"c1\",\"content\":\"ok\"}],\"tools\":[{\"type\":"
	    "\"function\",\"function\":{\"name\":\"f\",\"parameters\":"
	    "{\"type\":\"object\"}}}],\"tool_choice\":\"required\","
	    "\"parallel_tool_calls\":false}");
	seed(d, "req-an", 1 | 16, "{\"model\":\"c\",\"max_tokens\":9,"
	    "\"system\":[{\"type\":\"text\",\"text\":\"S\"}],\"stop_sequences\":"
	    "[\"x\"],\"metadata\":{\"user_id\":\"u\"},\"messages\":[{\"role\":"
	    "\"user\",\"content\":[{\"type\":\"text\",\"text\":\"hi\"},"
	    "{\"type\":\"image\",\"source\":{\"type\":\"base64\",\"media_type\":"
	    "\"image/png\",\"data\":\"AAAA\"}}]},{\"role\":\"assistant\","
	    "\"content\":[{\"type\":\"text\",\"text\":\"t\"},{\"type\":"
	    "\"tool_use\",\"id\":\"t1\",\"name\":\"f\",\"input\":{\"a\":1}}]},"
	    "{\"role\":\"user\",\"content\":[{\"type\":\"tool_result\","
	    "\"tool_use_id\":\"t1\",\"content\":[{\"type\":\"text\",\"text\":"
	    "\"ok\"}]}]}],\"tools\":[{\"name\":\"f\",\"input_schema\":{\"type\":"
	    "\"object\"}}],\"tool_choice\":{\"type\":\"tool\",\"name\":\"f\","
	    "\"disable_parallel_tool_use\":true}}");
	seed(d, "resp-an", 2, "{\"id\":\"msg_1\",\"type\":\"message\",\"role\":"
	    "\"assistant\",\"model\":\"c\",\"content\":[{\"type\":\"thinking\","
	    "\"thinking\":\"h\"},{\"type\":\"text\",\"text\":\"hi\"},{\"type\":"
	    "\"tool_use\",\"id\":\"t\",\"name\":\"f\",\"input\":{}}],"
	    "\"stop_reason\":\"tool_use\",\"usage\":{\"input_tokens\":1,"
	    "\"cache_read_input_tokens\":2,\"cache_creation_input_tokens\":3,"
	    "\"output_tokens\":4}}");
	seed(d, "resp-oa", 3, "{\"id\":\"c\",\"model\":\"g\",\"choices\":[{"
	    "\"index\":0,\"finish_reason\":\"tool_calls\",\"message\":{\"role\":"
	    "\"assistant\",\"content\":\"hi\",\"tool_calls\":[{\"id\":\"c1\","
	    "\"type\":\"function\",\"function\":{\"name\":\"f\",\"arguments\":"
	    "\"{}\"}}]}}],\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":"
	    "2,\"prompt_tokens_details\":{\"cached_tokens\":1}}}");
	seed(d, "err-an", 4, "{\"type\":\"error\",\"error\":{\"type\":"
	    "\"overloaded_error\",\"message\":\"Overloaded\"}}");
	seed(d, "err-oa", 5, "{\"error\":{\"message\":\"bad\",\"type\":"
	    "\"invalid_request_error\",\"param\":null,\"code\":\"x\"}}");
	seed(d, "stream-an", 6 | 8 | 16,
	    "message_start" US "{\"type\":\"message_start\",\"message\":{\"id\":"
	    "\"msg_1\",\"model\":\"c\",\"usage\":{\"input_tokens\":3,"
	    "\"cache_read_input_tokens\":1,\"output_tokens\":1}}}" RS
	    "ping" US "{\"type\":\"ping\"}" RS
	    "content_block_start" US "{\"type\":\"content_block_start\","
	    "\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}" RS
	    "content_block_delta" US "{\"type\":\"content_block_delta\","
	    "\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Hi\"}}" RS
	    "content_block_stop" US "{\"type\":\"content_block_stop\","
	    "\"index\":0}" RS
	    "content_block_start" US "{\"type\":\"content_block_start\","
	    "\"index\":1,\"content_block\":{\"type\":\"tool_use\",\"id\":\"t\","
	    "\"name\":\"f\",\"input\":{}}}" RS
	    "content_block_delta" US "{\"type\":\"content_block_delta\","
	    "\"index\":1,\"delta\":{\"type\":\"input_json_delta\","
	    "\"partial_json\":\"{\\\"a\\\":1}\"}}" RS
	    "content_block_stop" US "{\"type\":\"content_block_stop\","
	    "\"index\":1}" RS
	    "message_delta" US "{\"type\":\"message_delta\",\"delta\":{"
	    "\"stop_reason\":\"tool_use\"},\"usage\":{\"output_tokens\":7}}" RS
	    "message_stop" US "{\"type\":\"message_stop\"}");
	seed(d, "stream-an-error", 6,
	    "message_start" US "{\"type\":\"message_start\",\"message\":{\"id\":"
	    "\"m\"}}" RS "error" US "{\"type\":\"error\",\"error\":{\"type\":"
	    "\"overloaded_error\",\"message\":\"Overloaded\"}}");
	seed(d, "stream-oa", 7 | 16,
	    "{\"id\":\"c\",\"model\":\"g\",\"choices\":[{\"index\":0,\"delta\":"
	    "{\"role\":\"assistant\",\"content\":\"\"}}]}" RS
	    "{\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{\"content\":"
	    "\"Hi\"}}]}" RS
	    "{\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":"
	    "[{\"index\":0,\"id\":\"c1\",\"type\":\"function\",\"function\":{"
	    "\"name\":\"f\",\"arguments\":\"\"}}]}}]}" RS
	    "{\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":"
	    "[{\"index\":0,\"function\":{\"arguments\":\"{}\"}}]}}]}" RS
	    "{\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{},"
	    "\"finish_reason\":\"tool_calls\"}]}" RS
	    "{\"id\":\"c\",\"choices\":[],\"usage\":{\"prompt_tokens\":5,"
	    "\"completion_tokens\":2,\"prompt_tokens_details\":{"
	    "\"cached_tokens\":1}}}" RS "[DONE]");
	seed(d, "stream-oa-error", 7,
	    "{\"error\":{\"message\":\"boom\",\"type\":\"server_error\"}}");
	/* OpenAI user, Bedrock Converse provider */
	seed(d, "req-cv", 32 | 16, "{\"model\":\"amazon.nova-lite-v1:0\","
	    "\"max_tokens\":9,\"stop\":\"x\",\"messages\":[{\"role\":\"system\","
	    "\"content\":\"be\"},{\"role\":\"user\",\"content\":[{\"type\":"
	    "\"text\",\"text\":\"hi\"},{\"type\":\"image_url\",\"image_url\":"
	    "{\"url\":\"data:image/png;base64,AAAA\"}}]},{\"role\":\"assistant\","
	    "\"tool_calls\":[{\"id\":\"t1\",\"type\":\"function\",\"function\":"
	    "{\"name\":\"f\",\"arguments\":\"{}\"}}]},{\"role\":\"tool\","
	    "\"tool_call_id\":\"t1\",\"content\":\"r\"}],\"tools\":[{\"type\":"
	    "\"function\",\"function\":{\"name\":\"f\",\"parameters\":{}}}],"
	    "\"tool_choice\":\"required\"}");
	seed(d, "resp-cv", 32 | 2, "{\"output\":{\"message\":{\"role\":"
	    "\"assistant\",\"content\":[{\"text\":\"Hi\"},{\"toolUse\":{"
	    "\"toolUseId\":\"t\",\"name\":\"f\",\"input\":{}}}]}},\"stopReason\":"
	    "\"tool_use\",\"usage\":{\"inputTokens\":3,\"outputTokens\":2}}");
	seed(d, "err-cv", 32 | 4, "{\"message\":\"The provided model identifier "
	    "is invalid.\"}");
	seed(d, "stream-cv", 32 | 6 | 8 | 16,
	    "messageStart" US "{\"role\":\"assistant\"}" RS
	    "contentBlockDelta" US "{\"delta\":{\"text\":\"Hi\"},"
	    "\"contentBlockIndex\":0}" RS
	    "contentBlockStart" US "{\"start\":{\"toolUse\":{\"toolUseId\":"
	    "\"t\",\"name\":\"f\"}},\"contentBlockIndex\":1}" RS
	    "contentBlockDelta" US "{\"delta\":{\"toolUse\":{\"input\":"
	    "\"{}\"}},\"contentBlockIndex\":1}" RS
	    "messageStop" US "{\"stopReason\":\"tool_use\"}" RS
	    "metadata" US "{\"usage\":{\"inputTokens\":3,\"outputTokens\":2}}");
	seed(d, "stream-cv-error", 32 | 6,
	    "throttlingException" US "{\"message\":\"slow down\"}");
	/* Bedrock Converse user, OpenAI provider */
	seed(d, "cvoa_request", 32 | 1 | 16, "{\"system\":[{\"text\":\"s\"}],"
	    "\"messages\":[{\"role\":\"user\",\"content\":[{\"text\":\"hi\"},"
	    "{\"image\":{\"format\":\"png\",\"source\":{\"bytes\":\"AA\"}}}]},"
	    "{\"role\":\"assistant\",\"content\":[{\"toolUse\":{\"toolUseId\":"
	    "\"t\",\"name\":\"f\",\"input\":{\"a\":1}}}]},{\"role\":\"user\","
	    "\"content\":[{\"toolResult\":{\"toolUseId\":\"t\",\"content\":"
	    "[{\"json\":{\"r\":1}}]}}]}],\"inferenceConfig\":{\"maxTokens\":9,"
	    "\"topP\":0.5,\"stopSequences\":[\"x\"]},\"toolConfig\":{\"tools\":"
	    "[{\"toolSpec\":{\"name\":\"f\",\"inputSchema\":{\"json\":{"
	    "\"type\":\"object\"}}}}],\"toolChoice\":{\"tool\":{\"name\":"
	    "\"f\"}}}}");
	seed(d, "cvoa_response", 32 | 1 | 2, "{\"id\":\"c\",\"choices\":[{"
	    "\"index\":0,\"finish_reason\":\"tool_calls\",\"message\":{"
	    "\"role\":\"assistant\",\"content\":\"hi\",\"tool_calls\":[{"
	    "\"id\":\"c1\",\"type\":\"function\",\"function\":{\"name\":"
	    "\"f\",\"arguments\":\"{}\"}}]}}],\"usage\":{\"prompt_tokens\":5,"
	    "\"completion_tokens\":2,\"prompt_tokens_details\":{"
	    "\"cached_tokens\":1}}}");
	seed(d, "cvoa_error", 32 | 1 | 4, "{\"error\":{\"message\":\"bad\","
	    "\"type\":\"invalid_request_error\",\"code\":\"x\"}}");
	seed(d, "cvoa_stream", 32 | 1 | 6 | 16,
	    "{\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{\"role\":"
	    "\"assistant\",\"content\":\"Hi\"}}]}" RS
	    "{\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{"
	    "\"tool_calls\":[{\"index\":0,\"id\":\"c1\",\"type\":"
	    "\"function\",\"function\":{\"name\":\"f\",\"arguments\":"
	    "\"{\\\"a\\\"\"}}]}}]}" RS
	    "{\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{},"
	    "\"finish_reason\":\"tool_calls\"}]}" RS
	    "{\"id\":\"c\",\"choices\":[],\"usage\":{\"prompt_tokens\":5,"
	    "\"completion_tokens\":2}}" RS "[DONE]");
	seed(d, "cvoa_stream_error", 32 | 1 | 6,
	    "{\"error\":{\"message\":\"boom\",\"type\":\"server_error\"}}");
	/* Anthropic user, Claude on Bedrock's InvokeModel */
	seed(d, "req-br", 64 | 1 | 16, "{\"model\":\"c\",\"max_tokens\":9,"
	    "\"stream\":true,\"messages\":[{\"role\":\"user\",\"content\":"
	    "\"hi\"}]}");
	seed(d, "stream-br", 64 | 6 | 16,
	    "chunk" US "{\"bytes\":\"eyJ0eXBlIjoibWVzc2FnZV9zdGFydCIsIm1lc3Nh"
	    "Z2UiOnsiaWQiOiJtIn19\"}" RS
	    "chunk" US "{\"bytes\":\"eyJ0eXBlIjoibWVzc2FnZV9zdG9wIn0=\"}");
	return 0;
}
#endif
