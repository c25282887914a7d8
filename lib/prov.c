/*
 * lib/prov: the provider and operation tables (see prov.h).
 */
#include "lib/prov.h"

#include <string.h>
#include <strings.h>

#define B(op) (1u << (op))

struct prov_info {
	const char *name;
	enum prov_dialect dialect;
	unsigned ops;			/* bit per enum prov_op served natively */
	int chat_op, chat_stream_op;	/* its chat-like operation */
};

static const struct prov_info provs[PROV_COUNT] = {
	[PROV_OPENAI] = { "openai", DIA_OPENAI,
	    B(OP_CHAT) | B(OP_RESPONSES) | B(OP_EMBEDDINGS) | B(OP_IMAGES_GEN) |
	    B(OP_IMAGES_EDIT) | B(OP_AUDIO_SPEECH) | B(OP_AUDIO_TRANSCRIBE) |
	    B(OP_AUDIO_TRANSLATE) | B(OP_VIDEO_CREATE) | B(OP_VIDEO_GET) |
	    B(OP_VIDEO_CONTENT) | B(OP_REALTIME), OP_CHAT, OP_CHAT },
	[PROV_ANTHROPIC] = { "anthropic", DIA_ANTHROPIC,
	    B(OP_MESSAGES) | B(OP_COUNT_TOKENS), OP_MESSAGES, OP_MESSAGES },
	[PROV_AZURE] = { "azure", DIA_OPENAI,
	    B(OP_CHAT) | B(OP_EMBEDDINGS), OP_CHAT, OP_CHAT },
	[PROV_BEDROCK] = { "bedrock", DIA_CONVERSE,
	    B(OP_CONVERSE) | B(OP_CONVERSE_STREAM) | B(OP_INVOKE) |
	    B(OP_INVOKE_STREAM), OP_CONVERSE, OP_CONVERSE_STREAM },
	[PROV_GEMINI] = { "gemini", DIA_GEMINI,
	    B(OP_GEM_GENERATE) | B(OP_GEM_STREAM) | B(OP_GEM_EMBED) |
	    B(OP_GEM_BATCH_EMBED) | B(OP_GEM_COUNT), OP_GEM_GENERATE,
	    OP_GEM_STREAM },
	[PROV_VERTEX] = { "vertex", DIA_GEMINI,
	    B(OP_GEM_GENERATE) | B(OP_GEM_STREAM) | B(OP_GEM_COUNT),
	    OP_GEM_GENERATE, OP_GEM_STREAM },
	[PROV_DEEPSEEK] = { "deepseek", DIA_OPENAI, B(OP_CHAT), OP_CHAT,
	    OP_CHAT },
	[PROV_QWEN] = { "qwen", DIA_OPENAI, B(OP_CHAT) | B(OP_EMBEDDINGS),
	    OP_CHAT, OP_CHAT },
};

/*
 * Models of another publisher on a provider, by model-name prefix (the
 * public name the hub routes by, or the provider's id: both start the
 * same way).  Vertex serves Claude with Anthropic's Messages body through
 * publishers/anthropic/...:rawPredict|streamRawPredict.
 */
static const struct {
	int prov;
	const char *prefix;
	struct prov_info info;
} publishers[] = {
	{ PROV_VERTEX, "claude-", { "vertex", DIA_ANTHROPIC, B(OP_MESSAGES),
	    OP_MESSAGES, OP_MESSAGES } },
};

static const struct prov_op_info ops[OP_COUNT] = {
	[OP_CHAT]		= { "chat", "POST", DIA_OPENAI, 1 },
	[OP_RESPONSES]		= { "responses", "POST", DIA_OPENAI, 0 },
	[OP_EMBEDDINGS]		= { "embeddings", "POST", DIA_OPENAI, 0 },
	[OP_MESSAGES]		= { "messages", "POST", DIA_ANTHROPIC, 1 },
	[OP_COUNT_TOKENS]	= { "count_tokens", "POST", DIA_ANTHROPIC, 0 },
	[OP_GEM_GENERATE]	= { "generate", "POST", DIA_GEMINI, 1 },
	[OP_GEM_STREAM]		= { "stream_generate", "POST", DIA_GEMINI, 1 },
	[OP_GEM_EMBED]		= { "embed", "POST", DIA_GEMINI, 0 },
	[OP_GEM_BATCH_EMBED]	= { "batch_embed", "POST", DIA_GEMINI, 0 },
	[OP_GEM_COUNT]		= { "gemini_count_tokens", "POST", DIA_GEMINI, 0 },
	[OP_CONVERSE]		= { "converse", "POST", DIA_CONVERSE, 1 },
	[OP_CONVERSE_STREAM]	= { "converse_stream", "POST", DIA_CONVERSE, 1 },
	[OP_INVOKE]		= { "invoke", "POST", DIA_NATIVE, 0 },
	[OP_INVOKE_STREAM]	= { "invoke_stream", "POST", DIA_NATIVE, 0 },
	[OP_IMAGES_GEN]		= { "images_generations", "POST", DIA_OPENAI, 0 },
	[OP_IMAGES_EDIT]	= { "images_edits", "POST", DIA_OPENAI, 0 },
	[OP_AUDIO_SPEECH]	= { "audio_speech", "POST", DIA_OPENAI, 0 },
	[OP_AUDIO_TRANSCRIBE]	= { "audio_transcriptions", "POST", DIA_OPENAI, 0 },
	[OP_AUDIO_TRANSLATE]	= { "audio_translations", "POST", DIA_OPENAI, 0 },
	[OP_VIDEO_CREATE]	= { "videos_create", "POST", DIA_OPENAI, 0 },
	[OP_VIDEO_GET]		= { "videos_get", "GET", DIA_OPENAI, 0 },
	[OP_VIDEO_CONTENT]	= { "videos_content", "GET", DIA_OPENAI, 0 },
	[OP_REALTIME]		= { "realtime", "GET", DIA_OPENAI, 0 },
};

const char *
prov_name(int prov)
{
	return prov >= 0 && prov < PROV_COUNT ? provs[prov].name : "?";
}

int
prov_parse(const char *name, size_t len)
{
	for (int i = 0; i < PROV_COUNT; i++)
		if (strlen(provs[i].name) == len &&
		    strncasecmp(provs[i].name, name, len) == 0)
			return i;
	return -1;
}

const struct prov_op_info *
prov_op(int op)
{
	return op >= 0 && op < OP_COUNT ? &ops[op] : NULL;
}

int
prov_op_parse(const char *name, size_t len)
{
	for (int i = 0; i < OP_COUNT; i++)
		if (strlen(ops[i].name) == len && memcmp(ops[i].name, name, len) == 0)
			return i;
	return -1;
}

enum prov_dialect
prov_dialect(int prov)
{
	return prov >= 0 && prov < PROV_COUNT ? provs[prov].dialect : DIA_COUNT;
}

int
prov_can(int prov, int op)
{
	if (prov < 0 || prov >= PROV_COUNT || op < 0 || op >= OP_COUNT)
		return 0;
	return (provs[prov].ops & B(op)) != 0;
}

int
prov_chat_op(int prov, int stream)
{
	if (prov < 0 || prov >= PROV_COUNT)
		return -1;
	return stream ? provs[prov].chat_stream_op : provs[prov].chat_op;
}

/* The row serving model on prov: a publisher's, else the provider's. */
static const struct prov_info *
info_of(int prov, const char *model)
{
	if (prov < 0 || prov >= PROV_COUNT)
		return NULL;
	for (size_t i = 0; model != NULL &&
	    i < sizeof(publishers) / sizeof(publishers[0]); i++)
		if (publishers[i].prov == prov &&
		    strncmp(model, publishers[i].prefix,
		    strlen(publishers[i].prefix)) == 0)
			return &publishers[i].info;
	return &provs[prov];
}

enum prov_dialect
prov_dialect_model(int prov, const char *model)
{
	const struct prov_info *p = info_of(prov, model);

	return p != NULL ? p->dialect : DIA_COUNT;
}

int
prov_can_model(int prov, const char *model, int op)
{
	const struct prov_info *p = info_of(prov, model);

	if (p == NULL || op < 0 || op >= OP_COUNT)
		return 0;
	return (p->ops & B(op)) != 0;
}

int
prov_chat_op_model(int prov, const char *model, int stream)
{
	const struct prov_info *p = info_of(prov, model);

	if (p == NULL)
		return -1;
	return stream ? p->chat_stream_op : p->chat_op;
}

/* Other routes for a user dialect: (provider, user dialect) -> operations
 * and the dialect of their body. */
static const struct {
	int prov;
	enum prov_dialect user;
	int op, stream_op;
	enum prov_dialect body;
} routes[] = {
	/* Claude on Bedrock speaks its own Messages body via InvokeModel */
	{ PROV_BEDROCK, DIA_ANTHROPIC, OP_INVOKE, OP_INVOKE_STREAM, DIA_NATIVE },
};

int
prov_chat_route(int prov, const char *model, enum prov_dialect user,
    int stream, enum prov_dialect *body)
{
	for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++)
		if (routes[i].prov == prov && routes[i].user == user) {
			*body = routes[i].body;
			return stream ? routes[i].stream_op : routes[i].op;
		}
	*body = prov_dialect_model(prov, model);
	return prov_chat_op_model(prov, model, stream);
}
