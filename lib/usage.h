/*
 * lib/usage: reads token usage out of provider responses, the same way in
 * the hub and in the agent (both bill from what this returns), and the
 * request rewrite that makes OpenAI-compatible streams report usage.
 * Owns the per-provider normalisation rules below.  No I/O, no global
 * state, no floating point: counts are JSON integers only.
 *
 * Normalised counts (struct usage):
 *   input_tokens        every prompt token, cached reads and cache writes
 *                       included;
 *   cached_tokens       the part of input_tokens read from a prompt cache;
 *   cache_write_tokens  the part of input_tokens written to a prompt cache;
 *   output_tokens       every generated token, reasoning/thinking included.
 * So uncached input = input - cached - cache_write, never negative.
 *
 * Per format, one rule a line:
 *   OpenAI    input = prompt_tokens (already includes cached).
 *   OpenAI    output = completion_tokens (already includes reasoning); absent = 0 (embeddings).
 *   OpenAI    cached = prompt_tokens_details.cached_tokens, else DeepSeek's prompt_cache_hit_tokens, else 0.
 *   OpenAI    stream: usage is read from any chunk whose usage is an object, the last one wins; "usage":null and [DONE] are ignored.
 *             So Qwen's cumulative usage on every chunk is taken from the last chunk, never summed.
 *   OpenAI    Responses API: input = input_tokens, output = output_tokens (includes reasoning), cached =
 *             input_tokens_details.cached_tokens; a stream's "response.*" events carry it in their "response".
 *   DeepSeek  prompt_cache_hit_tokens is the cached part (prompt_cache_miss_tokens the rest of prompt_tokens);
 *             reasoning is inside completion_tokens.
 *   Anthropic input = input_tokens + cache_read_input_tokens + cache_creation_input_tokens (its input_tokens excludes both).
 *   Anthropic cached = cache_read_input_tokens; cache_write = cache_creation_input_tokens.
 *   Anthropic message_start (message.usage) replaces everything, its output_tokens being interim.
 *   Anthropic message_delta (usage) is cumulative: each count present replaces the one held, never adds.
 *   Gemini    input = promptTokenCount (includes cached) + toolUsePromptTokenCount.
 *   Gemini    output = candidatesTokenCount + thoughtsTokenCount (thinking is billed as output).
 *   Gemini    cached = cachedContentTokenCount; every usageMetadata replaces the last one, never adds.
 *   Converse  input = inputTokens + cacheReadInputTokens + cacheWriteInputTokens (inputTokens excludes both);
 *             cached = cacheReadInputTokens, cache_write = cacheWriteInputTokens; output = outputTokens.
 *             A stream's usage is its `metadata` event's; a body's is its top-level usage.
 *   Invoke    (Bedrock InvokeModel, model-native): a stream's `chunk` events carry {"bytes": base64 of
 *             the model's own event}; Claude's are Anthropic events (read as above), and the last one
 *             carries amazon-bedrock-invocationMetrics {inputTokenCount, outputTokenCount,
 *             cacheRead/WriteInputTokenCount}, which replaces everything (input = the three inputs).
 *             A body: Claude's usage as Anthropic's, else Converse's names (Nova).
 *   Event-stream answers (application/vnd.amazon.eventstream) are read message by message with
 *   usage_read_evs: the event name is the :event-type header, the data the payload.
 *
 * Units that are not tokens, OpenAI bodies only (usage_openai_body):
 *   Images    a body with a "data" array, no "object" member and no usage
 *             object (an images answer of a model that reports no tokens):
 *             images = the array's length.  With usage, tokens as above.
 *   Audio     transcriptions/translations: usage {"type":"duration",
 *             "seconds":N} gives audio_seconds = N (its token form is the
 *             Responses rule above).
 *   Video     a video job object ("object":"video") whose status is
 *             "completed": video_seconds = its "seconds" (a string of
 *             decimal digits, as OpenAI sends it, or an integer).  Any
 *             other status: no usage (0).  Billed once per job by the hub
 *             (billing/bill_job.c), which is why only "completed" counts.
 *   Speech    usage_speech_request: audio_chars = the Unicode characters
 *             of the request's "input" string.
 *
 * Values: a count must be a JSON integer, 0 <= n <= USAGE_MAX_TOKENS; a
 * JSON null or absent count is 0; anything else (real, string, negative,
 * huge) makes the whole payload malformed, as does cached + cache_write >
 * input.
 *
 * Return values of the readers: 1 usage was read and *u updated (seen set);
 * 0 the payload carries no usage (the counts untouched); -1 malformed (u
 * untouched, content_chars included).
 *
 * Content seen, for streams cut short (OpenAI readers; Anthropic: the
 * text, partial_json and thinking of content_block_delta events and of a
 * body's content blocks): every
 * payload that is not malformed adds to content_chars the byte length
 * (UTF-8, after JSON unescaping) of each string choices[].delta.content
 * (a body: choices[].message.content) and each string
 * choices[].delta.tool_calls[].function.arguments (a body: .message.),
 * whether or not it also carries usage.  A later usage keeps the count;
 * it saturates at 4 * USAGE_MAX_TOKENS.
 *
 * THE RULE FOR CUT STREAMS, one function both the hub's gateway (on what
 * it relayed) and the agent (on what it served) apply, so both sides bill
 * the same numbers: when the provider's usage never arrived (seen == 0),
 * usage_estimate_cut() sets input = the prompt's estimate (lib/tokest's
 * tokest_prompt of the request body as sent upstream: bytes / 4, without
 * the completion budget), output = (content_chars + 3) / 4, cached =
 * cache_write = 0, and estimated = 1.
 * When the provider's usage was seen it changes nothing.
 */
#ifndef SWB_USAGE_H
#define SWB_USAGE_H

#include <stddef.h>
#include <stdint.h>
#include "lib/prov.h"

#define USAGE_MAX_TOKENS	INT64_C(1000000000000)	/* 10^12 per count */

struct usage {
	int64_t	input_tokens;		/* includes cached and cache_write */
	int64_t	output_tokens;
	int64_t	cached_tokens;
	int64_t	cache_write_tokens;
	int	seen;			/* a reader returned 1 at least once */
	int	estimated;		/* usage_estimate_cut filled the counts */
	int64_t	content_chars;		/* bytes of content seen (OpenAI) */
	/* Units that are not tokens (OpenAI media; rules below). */
	int64_t	images;			/* images made, no usage tokens given */
	int64_t	audio_seconds;		/* audio transcribed or translated */
	int64_t	audio_chars;		/* speech input (usage_speech_request) */
	int64_t	video_seconds;		/* a video job seen completed */
};

/* OpenAI chat.completions (and DeepSeek, Qwen compatible mode, Azure). */
int	usage_openai_event(struct usage *, const char *data, size_t len);
/* usage_openai_event, and from the same reading of the chunk *only: 1
 * when choices is an empty array and usage an object (the final chunk
 * only include_usage asks for); 0 for any other chunk and [DONE]; -1
 * when it is not a JSON object. */
int	usage_openai_chunk(struct usage *, const char *data, size_t len,
	    int *only);
int	usage_openai_body(struct usage *, const char *json, size_t len);

/*
 * Rewrite a chat.completions request so a stream reports usage.  The body
 * must be a JSON object that names stream, stream_options and its
 * include_usage at most once each (a repeat elsewhere is the provider's to
 * read).  "stream": true sets stream_options.include_usage to true, every
 * other byte of the request kept as it was (the edit is spliced into the
 * original text, then checked by reading it again; lib/jscan, no tree);
 * *user_asked is 1 when include_usage was already true (the body is then
 * copied unchanged), else 0.  "stream" absent, null or false: the body is
 * copied unchanged, *user_asked = 0.  -1: not a JSON object, one of those
 * members repeated, stream not a bool, stream_options not an object,
 * include_usage not a bool, or out of memory.  On 0, *out is a malloc'd
 * copy, NUL-terminated, *outlen bytes without the NUL; on -1 *out is NULL.
 */
int	usage_openai_force_include_usage(const char *body, size_t len,
	    char **out, size_t *outlen, int *user_asked);

/* Anthropic Messages stream; event_name may be NULL (the JSON "type" is
 * used; if both are given they must agree).  Events other than
 * message_start and message_delta return 0. */
int	usage_anthropic_event(struct usage *, const char *event_name,
	    const char *data, size_t len);
/* Anthropic non-stream body: a message with usage, same rule as
 * message_start. */
int	usage_anthropic_body(struct usage *, const char *json, size_t len);

/* Gemini / Vertex: one SSE data payload or a non-stream body (an object
 * with usageMetadata). */
int	usage_gemini_event(struct usage *, const char *data, size_t len);
/* Gemini streamGenerateContent without alt=sse: a JSON array of such
 * objects (or a single one); the last usageMetadata wins. */
int	usage_gemini_body(struct usage *, const char *json, size_t len);

/*
 * OpenAI Realtime: one WebSocket message (a JSON event).  Only
 * "response.done" carries usage, in response.usage: input = input_tokens
 * (includes cached, text and audio), output = output_tokens (text and
 * audio), cached = input_token_details.cached_tokens.  Each response.done
 * is one response's own usage (not cumulative): it replaces *u, and the
 * caller bills it at once (one ledger entry per response) and resets *u.
 * 1 read; 0 any other event, or a response.done without usage; -1 not a
 * JSON object, or bad counts.  Content is not counted.
 */
int	usage_realtime_event(struct usage *, const char *data, size_t len);

/*
 * THE entry points, for hub and agent alike: read one SSE event (name may
 * be NULL; data as the SSE parser joined it) or a whole non-SSE body of a
 * response in dialect d (lib/prov.h: the operation's dialect) with the
 * reader above for it.  Same return values.
 */
int	usage_read_event(enum prov_dialect d, struct usage *, const char *event_name,
	    const char *data, size_t len);
int	usage_read_body(enum prov_dialect d, struct usage *, const char *json,
	    size_t len);

/* Bedrock Converse (event name = the :event-type) and InvokeModel. */
int	usage_converse_event(struct usage *, const char *event_name,
	    const char *data, size_t len);
int	usage_converse_body(struct usage *, const char *json, size_t len);
int	usage_bedrock_invoke_event(struct usage *, const char *event_name,
	    const char *data, size_t len);
int	usage_bedrock_invoke_body(struct usage *, const char *json, size_t len);
/* One decoded event-stream message of an answer in dialect d: an event
 * (:message-type event) goes to usage_read_event with its :event-type as
 * the name; exceptions and errors give 0. */
struct evs_msg;
int	usage_read_evs(enum prov_dialect d, struct usage *u,
	    const struct evs_msg *m);

/*
 * Speech (POST /v1/audio/speech): the request body's "input" as
 * audio_chars (code points of the UTF-8 string); the answer is audio with
 * no usage.  1 read (seen set), 0 no string input, -1 not a JSON object.
 */
int	usage_speech_request(struct usage *u, const char *json, size_t len);

/* The unit counts of u (lib/money.h's struct money_units). */
struct money_units;
void	usage_units(const struct usage *u, struct money_units *out);

/*
 * The agent's model rewrite: set the top-level "model" of a JSON object
 * request (no duplicate keys; "model" a string) to model, every other
 * byte kept (spliced, then checked by parsing again).  0 with *out a
 * malloc'd NUL-terminated copy of *outlen bytes, or -1 (*out NULL).
 */
int	usage_set_model(const char *body, size_t len, const char *model,
	    char **out, size_t *outlen);

/*
 * The rule for a stream cut short (above): when u->seen is 0, input =
 * input_est (clamped to 0..USAGE_MAX_TOKENS), output = (content_chars + 3)
 * / 4, cached = cache_write = 0, estimated = 1 (seen stays 0: these are
 * not the provider's numbers).  When u->seen is 1: nothing changes.
 */
void	usage_estimate_cut(struct usage *u, int64_t input_est);

#endif
