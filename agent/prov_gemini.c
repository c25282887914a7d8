/*
 * agent/prov_gemini: the Gemini (Google AI Studio) adapter of agentd's
 * upstream engine — generativelanguage.googleapis.com, the model in the
 * path (/v1beta/models/{model}:{method}, a stream with ?alt=sse), and the
 * channel's key in "x-goog-api-key" (never "?key=" in a URL, which would
 * end up in logs).  The model in the path is the channel's id for the
 * public name; Gemini bodies carry none.
 */
#include "agent/ag_prov.h"

#include <stdio.h>
#include <string.h>

static const char *const gemini_hosts[] = {
	"generativelanguage.googleapis.com",
	NULL
};

static const char *const gemini_paths[] = {
	"/v1beta/models/*:generateContent",
	"/v1beta/models/*:streamGenerateContent",
	"/v1beta/models/*:embedContent",
	"/v1beta/models/*:batchEmbedContents",
	"/v1beta/models/*:countTokens",
	NULL
};

/* The ":method" (+ query) after the model, per operation. */
static const char *const gemini_op_paths[OP_COUNT] = {
	[OP_GEM_GENERATE] = ":generateContent",
	[OP_GEM_STREAM] = ":streamGenerateContent?alt=sse",
	[OP_GEM_EMBED] = ":embedContent",
	[OP_GEM_BATCH_EMBED] = ":batchEmbedContents",
	[OP_GEM_COUNT] = ":countTokens",
};

static int
gemini_op_path(char *method, size_t mlen, char *path, size_t plen,
    const struct ag_channel *ch, const struct ag_prov_op *rq, char *err,
    size_t errlen)
{
	char tail[64];
	const char *id;
	int n;

	if (ag_prov_op_table("gemini", gemini_op_paths, method, mlen, tail,
	    sizeof(tail), rq, err, errlen) != 0)
		return -1;
	if (rq->model == NULL ||
	    (id = ag_channel_model_id(ch, rq->model)) == NULL) {
		snprintf(err, errlen, "gemini: channel %s does not serve model "
		    "'%.64s'", ch->name, rq->model != NULL ? rq->model : "");
		return -1;
	}
	n = snprintf(path, plen, "/v1beta/models/%s%s", id, tail);
	if (n < 0 || (size_t)n >= plen) {
		snprintf(err, errlen, "gemini: path too long");
		return -1;
	}
	return 0;
}

static int
gemini_add_auth(struct curl_slist **h, const struct ag_channel *ch,
    const struct ag_prov_req *rq, char *err, size_t errlen)
{
	(void)rq;
	return ag_prov_header(h, "x-goog-api-key", "", ch->key, err, errlen);
}

const struct ag_prov ag_prov_gemini = {
	.name = "gemini",
	.provider = AG_PROV_GEMINI,
	.base_url = "https://generativelanguage.googleapis.com",
	.make_url = NULL,
	.hosts = gemini_hosts,
	.allowed_paths = gemini_paths,
	.allow_query = 1,
	.model_in_body = 0,
	.op_path = gemini_op_path,
	.add_auth = gemini_add_auth,
};
