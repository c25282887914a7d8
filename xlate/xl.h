/*
 * xlate/xl: the hub's chat translation library.  A user speaks one surface
 * dialect (`from`), the provider another (`to`); this turns the user's
 * request body into the provider's, and the provider's answer (a body, an
 * error body, or a stream event by event) back into the user's dialect.
 * Pure: no I/O, no global state (time(2) is read for OpenAI's `created`),
 * JSON through jansson.  One table of dialect pairs (xl.c) holds the
 * functions; a pair is added as a row.
 *
 * Pairs built: DIA_OPENAI <-> DIA_ANTHROPIC, both ways; DIA_OPENAI ->
 * DIA_GEMINI (xl_oa_gm.c) and DIA_GEMINI -> DIA_OPENAI (xl_gm_oa.c);
 * DIA_OPENAI -> DIA_CONVERSE (xl_oa_cv.c) and DIA_CONVERSE -> DIA_OPENAI
 * (xl_cv_oa.c); DIA_ANTHROPIC -> DIA_NATIVE (xl_an_br.c); streaming or
 * not.
 * Same-dialect traffic is the gateway's passthrough, not ours (xl_can is 0).
 *
 * Output buffers: every function APPENDS to `out` (a zeroed struct xl_buf
 * is an empty buffer); out->p stays NUL-terminated.  On -1 from
 * xl_request/xl_response, out is left as it was.
 *
 * ---- OpenAI user -> Anthropic provider (request) ----
 *   system/developer messages   -> top-level `system` (a string when there
 *                                  is one text, else an array of text blocks)
 *   user content string/parts   -> content string / text and image blocks;
 *                                  image_url "data:M;base64,D" -> image
 *                                  source {base64, M, D}, other URLs ->
 *                                  source {url}
 *   assistant content+tool_calls-> text blocks + tool_use blocks (arguments
 *                                  parsed; "" is {}, non-object -> 400)
 *   role tool                   -> tool_result block in a user turn;
 *                                  consecutive same-role turns are merged
 *   tools[].function            -> tools[]{name, description, input_schema}
 *                                  (no parameters: an empty object schema)
 *   tool_choice none/auto/required/{function} -> none/auto/any/{tool}
 *   parallel_tool_calls false   -> tool_choice.disable_parallel_tool_use
 *   max_completion_tokens, else max_tokens, else XL_DEFAULT_MAX_TOKENS
 *                               -> max_tokens (Anthropic requires it)
 *   temperature, top_p          -> as they are (Anthropic's temperature
 *                                  range is 0..1; it rejects more itself)
 *   stop (string or array)      -> stop_sequences
 *   user                        -> metadata.user_id
 *   stream                      -> from the `stream` argument
 *   400: n > 1, logprobs/top_logprobs, response_format other than text,
 *        audio output, functions/function_call (legacy), tools that are not
 *        functions, content parts other than text/image_url/refusal, role
 *        function, malformed shapes.
 *   Dropped (no Anthropic equivalent, harmless to omit): frequency_penalty,
 *        presence_penalty, logit_bias, seed, service_tier, store, metadata,
 *        prediction, reasoning_effort, stream_options, modalities ["text"],
 *        web_search_options, message names, reasoning_content, any key
 *        not listed here.
 *
 * ---- Anthropic user -> OpenAI provider (request) ----
 *   system (string or text blocks, joined with "\n\n") -> a system message
 *   text/image blocks           -> content string (one text) or parts;
 *                                  image source base64 -> data URL,
 *                                  source url -> image_url.url
 *   tool_use blocks             -> assistant tool_calls (input dumped as
 *                                  the arguments string)
 *   tool_result blocks          -> role tool messages, placed before the
 *                                  rest of that user turn (is_error is
 *                                  dropped; text content only)
 *   tools[]{name,description,input_schema} -> tools[].function
 *   tool_choice auto/any/tool/none -> auto/required/{function}/none;
 *   disable_parallel_tool_use   -> parallel_tool_calls false
 *   max_tokens                  -> max_tokens (the field every OpenAI-
 *                                  compatible provider reads)
 *   temperature, top_p          -> as they are;  stop_sequences -> stop
 *   metadata.user_id            -> user
 *   stream                      -> stream + stream_options.include_usage
 *   400: document/search_result/server-tool blocks, server tools (a tool
 *        with a type other than "custom"), images inside tool results.
 *   Dropped: top_k, thinking (and thinking/redacted_thinking blocks),
 *        cache_control, citations, service_tier, container, mcp_servers,
 *        any key not listed here.
 *
 * ---- Gemini user -> OpenAI provider (xl_gm_oa.c) ----
 *   Request (members read by lowerCamel name, else snake_case):
 *   model                       -> the `model` argument (else the body's
 *                                  "model"; Gemini names it in the path)
 *   systemInstruction (Content or string) -> a system message, texts
 *                                  joined with "\n"
 *   contents[] role user (or none, or "function") -> a user message: one
 *                                  text -> a string, else parts; inlineData
 *                                  image/... -> image_url "data:M;base64,D",
 *                                  fileData -> image_url {url: fileUri};
 *                                  functionResponse -> role tool messages
 *                                  placed before the rest of the turn,
 *                                  content = the JSON text of `response`
 *   contents[] role model       -> one assistant message: texts joined
 *                                  (thought parts dropped), functionCall ->
 *                                  tool_calls (arguments = JSON of args)
 *   tool call ids: a functionCall's own id, else call_<content index>_
 *        <call index in the turn>_<name> (40 bytes at most, characters
 *        other than [A-Za-z0-9_-] as '_'); a functionResponse takes the
 *        unanswered call of the model turn before with its id, else the
 *        first unanswered one of its name (none: 400).  The same history
 *        gives the same ids.  Parts with only a thoughtSignature are
 *        skipped.
 *   tools[].functionDeclarations -> tools[].function {name, description,
 *        parameters}: parametersJsonSchema as it is, else `parameters`
 *        (Gemini's Schema) as JSON schema: type names lowercased
 *        ("OBJECT" -> "object"), nullable:true -> type [T, "null"], int64
 *        strings (minItems...) -> integers, propertyOrdering dropped, in
 *        properties/items/anyOf alike
 *   toolConfig.functionCallingConfig.mode AUTO/VALIDATED -> "auto", NONE
 *        -> "none", ANY -> "required" with only the allowedFunctionNames
 *        kept in tools (one function left: tool_choice names it)
 *   generationConfig: temperature, topP -> top_p, maxOutputTokens ->
 *        max_tokens, stopSequences -> stop, seed, presencePenalty,
 *        frequencyPenalty; responseMimeType application/json ->
 *        response_format json_object (text/plain: nothing)
 *   stream                      -> stream + stream_options.include_usage
 *   400: candidateCount other than 1, other responseMimeTypes,
 *        responseModalities other than TEXT, cachedContent, tools other
 *        than functionDeclarations (googleSearch, codeExecution...), parts
 *        other than text/inlineData/fileData/functionCall/
 *        functionResponse (or in the wrong role), media other than
 *        images, mistyped numbers, an unknown mode, ANY with no function
 *        left.
 *   Dropped: topK, safetySettings, thinkingConfig, responseSchema,
 *        responseLogprobs/logprobs, labels, thought signatures, any key
 *        not listed here.
 *   Response: one candidate {content {role "model", parts}, finishReason,
 *   index 0}: reasoning_content -> a {text, thought:true} part first, then
 *   content and refusal texts, then tool_calls -> functionCall {name, args}
 *   (arguments that are not a JSON object -> {}; no id); no part at all ->
 *   {text:""}.  finishReason: stop/tool_calls/function_call -> STOP, length
 *   -> MAX_TOKENS, content_filter -> SAFETY, null -> STOP, else OTHER.
 *   usageMetadata: promptTokenCount = prompt_tokens (cache included),
 *   candidatesTokenCount = completion - reasoning tokens,
 *   thoughtsTokenCount = reasoning tokens and cachedContentTokenCount =
 *   cached_tokens (or DeepSeek's prompt_cache_hit_tokens) when not 0,
 *   totalTokenCount = prompt + completion.  modelVersion = the user's model
 *   (else the provider's), responseId = the completion id.
 *   Stream (`data: {...}` events, no [DONE]): each text, refusal or
 *   reasoning delta -> a chunk {candidates [{content {role, parts [{text}]},
 *   index 0}], modelVersion, responseId} at once; tool call pieces are
 *   gathered by index (no index: a new call when it has an id) and sent as
 *   functionCall parts in the last chunk, which carries finishReason and
 *   usageMetadata (from the usage chunk) and is sent at [DONE], or at
 *   xl_stream_end(ok) once finish_reason was seen.  An OpenAI error chunk
 *   -> Google's error event `data: {"error":{code, message, status}}`; a
 *   stream cut before the finish (or ended not ok) -> the same with 500
 *   INTERNAL.  Role-only chunks, second choices and "usage":null add
 *   nothing.  Errors (bodies) go through the one table: OpenAI types and
 *   statuses -> INVALID_ARGUMENT, UNAUTHENTICATED, PERMISSION_DENIED,
 *   NOT_FOUND, RESOURCE_EXHAUSTED, INTERNAL, UNAVAILABLE (code 503)...
 *
 * ---- Bedrock Converse user -> OpenAI provider (xl_cv_oa.c) ----
 *   Request: model              -> the `model` argument (the path's)
 *   system[] text blocks        -> one system message, joined with "\n"
 *                                  (cachePoint/guardContent dropped)
 *   messages[] role user        -> a user message: one text -> a string,
 *                                  else parts; image {format png/jpeg/gif/
 *                                  webp, source.bytes} -> image_url
 *                                  "data:image/F;base64,B"; toolResult
 *                                  {toolUseId, content [{text}|{json}]}
 *                                  -> role tool messages (texts and JSON
 *                                  texts joined with "\n"; status
 *                                  dropped) placed before the rest
 *   messages[] role assistant   -> texts joined as content (null when
 *                                  none), toolUse {toolUseId, name, input}
 *                                  -> tool_calls (arguments = JSON of input)
 *   inferenceConfig maxTokens -> max_tokens, temperature, topP -> top_p,
 *        stopSequences -> stop
 *   toolConfig.tools[].toolSpec {name, description, inputSchema.json} ->
 *        tools[].function {name, description, parameters} (no schema: an
 *        empty object schema); toolChoice auto/any/tool{name} ->
 *        "auto"/"required"/{type function, function {name}}
 *   stream                      -> stream + stream_options.include_usage
 *   400: roles other than user/assistant, content not an array, blocks
 *        other than text/image/toolUse/toolResult (document, video...) or
 *        in the wrong role, toolResult content other than text/json, image
 *        formats other than the four, maxTokens < 1, an unknown toolChoice.
 *   Dropped: cachePoint and reasoningContent blocks,
 *        additionalModelRequestFields, guardrailConfig, performanceConfig,
 *        promptVariables, requestMetadata, any key not listed here.
 *   Response: {output {message {role assistant, content: [{text}]
 *   (content, then refusal) + [{toolUse {toolUseId, name, input}}]
 *   (arguments that are not a JSON object -> {}); nothing: [{text:""}]}},
 *   stopReason (stop -> end_turn, length -> max_tokens, tool_calls/
 *   function_call -> tool_use, content_filter -> content_filtered; OpenAI
 *   never says a stop sequence matched), usage {inputTokens = prompt -
 *   cached, outputTokens, totalTokens = prompt + completion,
 *   cacheReadInputTokens = cached (or DeepSeek's prompt_cache_hit_tokens)
 *   when not 0}, metrics {latencyMs 0}}.
 *   Stream: the output is AWS event-stream frames (lib/evstream, each
 *   with :event-type, :content-type application/json, :message-type
 *   event), which the gateway writes as they are: messageStart {role} at
 *   the first chunk; each text (or refusal) delta -> contentBlockDelta
 *   {contentBlockIndex, delta {text}} at once; a tool call ->
 *   contentBlockStart {start {toolUse {toolUseId, name}}} and its argument
 *   pieces -> contentBlockDelta {delta {toolUse {input}}}; a block is
 *   closed with contentBlockStop when the next starts or at the finish;
 *   finish_reason -> messageStop {stopReason}; [DONE] (or xl_stream_end(ok)
 *   after the finish) -> metadata {usage (as above, from the usage chunk
 *   the request asked for), metrics {latencyMs 0}}.  An OpenAI error chunk
 *   -> an exception frame (:message-type exception, :exception-type
 *   throttlingException for rate limits, else modelStreamErrorException,
 *   payload {message}); a stream cut before the finish (or ended not ok)
 *   -> the same modelStreamErrorException.  Errors (bodies) -> Bedrock's
 *   {"message": ...}.
 *
 * ---- Responses and streams (OpenAI <-> Anthropic) ----
 *   stop reasons: end_turn/stop_sequence/pause_turn <-> stop, max_tokens
 *   <-> length, tool_use <-> tool_calls, refusal <-> content_filter
 *   (model_context_window_exceeded -> length).  OpenAI never says which
 *   stop sequence matched: Anthropic users get end_turn, stop_sequence null.
 *   usage: OpenAI prompt_tokens = input + cache_read + cache_creation,
 *   prompt_tokens_details.cached_tokens = cache_read; the reverse sets
 *   input_tokens = prompt - cached, cache_read_input_tokens = cached,
 *   cache_creation_input_tokens = 0.  Counts are clamped to 0..10^12.
 *   ids: "chatcmpl-" + the message id; "msg_" + the completion id.
 *   reasoning: Anthropic thinking is passed to OpenAI users as
 *   `reasoning_content` (message and delta; signatures dropped); OpenAI
 *   reasoning_content is dropped for Anthropic users (a thinking block
 *   without a signature could not be sent back).
 *   Tool arguments that are not a JSON object come to Anthropic users as
 *   input {} (non-stream; a stream passes the pieces as they are).
 *
 * ---- Streams (OpenAI <-> Anthropic) ----
 *   OpenAI user: first chunk delta {role:"assistant",content:""}; text
 *   deltas; a tool call's first delta has index, id, type, function.name
 *   and arguments ""; then arguments pieces (input_json_delta.partial_json);
 *   the finish chunk (delta {}, finish_reason) at message_delta; with
 *   include_usage every chunk has "usage":null and a last chunk
 *   "choices":[] with the usage comes just before "data: [DONE]".
 *   Anthropic user: message_start (usage input 0: OpenAI reports usage only
 *   at the end), content_block_start/delta/stop per text or tool_use block,
 *   message_delta (stop_reason; usage with output_tokens and the input and
 *   cache counts), message_stop.  Both are sent at [DONE] (which follows
 *   the usage chunk at once), or at xl_stream_end(ok) once the finish was
 *   seen; the request asks for stream_options.include_usage so the usage
 *   comes.
 *   Upstream errors in a stream (Anthropic `event: error`, an OpenAI chunk
 *   with "error") become the user's error event and end the stream (an
 *   OpenAI user gets `data: {"error":{...}}` and no [DONE]).
 *   ping, unknown events, "usage":null and empty choices are ignored.
 */
#ifndef SWB_XL_H
#define SWB_XL_H

#include <stddef.h>

#include "lib/prov.h"

/* max_tokens sent to Anthropic when the OpenAI request has neither
 * max_tokens nor max_completion_tokens. */
#define XL_DEFAULT_MAX_TOKENS	4096

/* Growable, NUL-terminated; zero it to start empty.  Owned by the caller. */
struct xl_buf {
	char	*p;
	size_t	 len, cap;
};
void	xl_buf_free(struct xl_buf *b);
/* Empty it, keeping the memory (after the bytes were written on). */
void	xl_buf_reset(struct xl_buf *b);

/* Supported pair? (from = the user's surface dialect, to = the provider's) */
int	xl_can(enum prov_dialect from, enum prov_dialect to);

/*
 * A request body in `from` -> a body in `to`.  model: the model name to put
 * in the translated body (NULL: the request's own); stream: ask the
 * provider for a stream (the request's own `stream` is ignored: the caller
 * decides).  0, or -1 with err set to a message fit for a 400 to the user
 * (make that body with xl_error_msg).
 */
int	xl_request(enum prov_dialect from, enum prov_dialect to,
	    const char *body, size_t len, const char *model, int stream,
	    struct xl_buf *out, char *err, size_t errlen);

/* 1 when an OpenAI request asked for stream_options.include_usage (what
 * xl_stream_new wants to know); 0 otherwise, for any other dialect, or
 * when the body is not JSON. */
int	xl_include_usage(enum prov_dialect from, const char *body, size_t len);

/*
 * A non-stream provider response body (dialect `to`, HTTP 2xx) -> the
 * user's dialect `from`.  model: the model name the user sees (NULL: the
 * provider's).  -1 with err when the body is not a response of `to` (an
 * error body included: use xl_error for those).
 */
int	xl_response(enum prov_dialect from, enum prov_dialect to,
	    const char *body, size_t len, const char *model,
	    struct xl_buf *out, char *err, size_t errlen);

/*
 * A provider error body (any status) -> the user's error shape; when the
 * body is not the provider's error JSON, its text (made valid UTF-8, at
 * most 1024 bytes) is the message.  Always produces a body.  The error
 * type is mapped through one table (xl.c), by the provider's type first,
 * else by status.  The caller keeps the HTTP status.  Works for any two
 * dialects that have an error row, same dialect included.
 */
void	xl_error(enum prov_dialect from, enum prov_dialect to, int status,
	    const char *body, size_t len, struct xl_buf *out);

/* The hub's own error (e.g. xl_request's err with status 400) in the
 * user's dialect's error shape. */
void	xl_error_msg(enum prov_dialect from, int status, const char *message,
	    struct xl_buf *out);

/*
 * Streaming: one translator per response.  NULL when the pair is not
 * supported or out of memory.  model: the name the user sees (NULL: the
 * provider's).  include_usage: the OpenAI user asked for
 * stream_options.include_usage (then the final usage chunk with
 * "choices":[] is emitted before [DONE]); ignored for other users.
 */
struct xl_stream *xl_stream_new(enum prov_dialect from, enum prov_dialect to,
	    const char *model, int include_usage);

/*
 * One upstream SSE event: name (NULL or "" when the event had no `event:`
 * line) and its data (the data lines joined with \n; need not be
 * NUL-terminated).  Appends zero or more COMPLETE SSE events in the user's
 * dialect to out (e.g. "data: {...}\n\n", or
 * "event: message_start\ndata: {...}\n\n").
 * Returns 0: go on; 1: the user's stream is complete (its last event was
 * appended now or earlier; later events are ignored and xl_stream_end adds
 * nothing); -1: the event is malformed (nothing appended; the caller ends
 * the stream, e.g. with xl_stream_end(s, 0, out)).
 */
int	xl_stream_event(struct xl_stream *s, const char *name,
	    const char *data, size_t len, struct xl_buf *out);

/*
 * Upstream ended (ok=0: cut short, or after -1).  Appends whatever closes
 * the user's stream if it was not closed yet: when ok and the provider's
 * finish was seen, the normal ending (OpenAI: finish chunk if not sent,
 * usage chunk if asked, "data: [DONE]"; Anthropic: content_block_stop,
 * message_delta, message_stop); otherwise an error event (OpenAI
 * `data: {"error":...}`, Anthropic `event: error`).  Idempotent.
 */
void	xl_stream_end(struct xl_stream *s, int ok, struct xl_buf *out);
void	xl_stream_free(struct xl_stream *s);

#endif
