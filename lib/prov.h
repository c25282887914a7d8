/*
 * lib/prov: the one table of providers and operations, shared by the hub
 * and agentd.  The hub names an operation (never a URL): the gateway's
 * surface parser yields one, the router checks which providers can do it,
 * and agentd's adapter alone turns (operation, model, channel config) into
 * the official URL.  Adding a provider or an operation is a line here.
 *
 * A provider speaks one "chat" dialect (the body shape of its chat-like
 * operation); translation between dialects lives in the hub (xlate/).
 */
#ifndef SWB_PROV_H
#define SWB_PROV_H

#include <stddef.h>

enum prov_id {
	PROV_OPENAI = 0, PROV_ANTHROPIC, PROV_AZURE, PROV_BEDROCK,
	PROV_GEMINI, PROV_VERTEX, PROV_DEEPSEEK, PROV_QWEN,
	PROV_COUNT
};

enum prov_dialect {
	DIA_OPENAI = 0,		/* OpenAI chat completions (and compatibles) */
	DIA_ANTHROPIC,		/* Anthropic messages */
	DIA_GEMINI,		/* Gemini generateContent */
	DIA_CONVERSE,		/* Bedrock Converse */
	DIA_NATIVE,		/* model-native body (Bedrock invoke): no translation */
	DIA_COUNT
};

enum prov_op {
	OP_CHAT = 0,		/* POST /v1/chat/completions */
	OP_RESPONSES,		/* POST /v1/responses */
	OP_EMBEDDINGS,		/* POST /v1/embeddings */
	OP_MESSAGES,		/* POST /v1/messages */
	OP_COUNT_TOKENS,	/* POST /v1/messages/count_tokens */
	OP_GEM_GENERATE,	/* :generateContent */
	OP_GEM_STREAM,		/* :streamGenerateContent?alt=sse */
	OP_GEM_EMBED,		/* :embedContent */
	OP_GEM_BATCH_EMBED,	/* :batchEmbedContents */
	OP_GEM_COUNT,		/* :countTokens */
	OP_CONVERSE,		/* /model/{id}/converse */
	OP_CONVERSE_STREAM,	/* /model/{id}/converse-stream */
	OP_INVOKE,		/* /model/{id}/invoke */
	OP_INVOKE_STREAM,	/* /model/{id}/invoke-with-response-stream */
	OP_IMAGES_GEN,		/* POST /v1/images/generations */
	OP_IMAGES_EDIT,		/* POST /v1/images/edits (multipart) */
	OP_AUDIO_SPEECH,	/* POST /v1/audio/speech */
	OP_AUDIO_TRANSCRIBE,	/* POST /v1/audio/transcriptions (multipart) */
	OP_AUDIO_TRANSLATE,	/* POST /v1/audio/translations (multipart) */
	OP_VIDEO_CREATE,	/* POST /v1/videos */
	OP_VIDEO_GET,		/* GET /v1/videos/{id} */
	OP_VIDEO_CONTENT,	/* GET /v1/videos/{id}/content */
	OP_REALTIME,		/* GET /v1/realtime (WebSocket) */
	OP_COUNT
};

struct prov_op_info {
	const char *name;		/* on the wire (req_start op:str) */
	const char *method;		/* "POST" or "GET" */
	enum prov_dialect dialect;	/* the body's shape */
	int chat;			/* a chat-like operation (translatable) */
};

/* Names as in agentd.ini and the channels frame ("openai", ...). */
const char *prov_name(int prov);
int prov_parse(const char *name, size_t len);	/* -1 when unknown */

const struct prov_op_info *prov_op(int op);	/* NULL when out of range */
int prov_op_parse(const char *name, size_t len);	/* -1 when unknown */

/* The dialect of provider prov's chat-like operations. */
enum prov_dialect prov_dialect(int prov);
/* Nonzero when provider prov serves operation op natively. */
int prov_can(int prov, int op);
/* Provider prov's chat-like operation (streaming or not), or -1. */
int prov_chat_op(int prov, int stream);
/*
 * The operation a chat user of dialect `user` is served by on provider
 * prov, and the dialect of the body it takes (*body): the provider's chat
 * operation and dialect, unless a row of the table of other routes says
 * otherwise — Anthropic's messages on Bedrock go to InvokeModel with
 * Claude's own body (DIA_NATIVE), not to Converse.  -1 when none.
 */
int prov_chat_route(int prov, const char *model, enum prov_dialect user,
    int stream, enum prov_dialect *body);

/*
 * The same three, for one model of the provider.  A provider that serves
 * models of several publishers (Vertex: Google's Gemini models and
 * Anthropic's Claude models, by rawPredict) has a row per publisher in
 * lib/prov.c's publisher table, chosen by the model name's prefix; the
 * other providers (and models no row names) answer as above.  model may
 * be NULL (then: the provider's own row).
 */
enum prov_dialect prov_dialect_model(int prov, const char *model);
int prov_can_model(int prov, const char *model, int op);
int prov_chat_op_model(int prov, const char *model, int stream);

#endif
