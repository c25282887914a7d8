/*
 * agent/prov_openai: the OpenAI adapter of agentd's upstream engine —
 * api.openai.com, the API paths the hub may relay to it, and the
 * "Authorization: Bearer KEY" header carrying the channel's key.
 */
#include "agent/ag_prov.h"

#include <stdio.h>
#include <string.h>

static const char *const openai_hosts[] = {
	"api.openai.com",
	NULL
};

static const char *const openai_paths[] = {
	"/v1/chat/completions",
	"/v1/completions",
	"/v1/embeddings",
	"/v1/models",
	"/v1/responses",
	"/v1/moderations",
	"/v1/images/generations",
	"/v1/images/edits",
	"/v1/audio/speech",
	"/v1/audio/transcriptions",
	"/v1/audio/translations",
	"/v1/videos",
	"/v1/videos/*",
	"/v1/videos/*/content",
	"/v1/realtime",		/* a WebSocket (agent/ag_ws), ?model= */
	NULL
};

/* The OpenAI path of each operation it serves (lib/prov.h). */
static const char *const openai_op_paths[OP_COUNT] = {
	[OP_CHAT] = "/v1/chat/completions",
	[OP_RESPONSES] = "/v1/responses",
	[OP_EMBEDDINGS] = "/v1/embeddings",
	[OP_IMAGES_GEN] = "/v1/images/generations",
	[OP_IMAGES_EDIT] = "/v1/images/edits",
	[OP_AUDIO_SPEECH] = "/v1/audio/speech",
	[OP_AUDIO_TRANSCRIBE] = "/v1/audio/transcriptions",
	[OP_AUDIO_TRANSLATE] = "/v1/audio/translations",
	[OP_VIDEO_CREATE] = "/v1/videos",
};

/* A job id as a path segment: letters, digits, '_' and '-' only. */
static int
resource_ok(const char *id)
{
	size_t n = strlen(id);

	if (n == 0 || n > 64)
		return 0;
	return strspn(id, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
	    "0123456789_-") == n;
}

static int
openai_op_path(char *method, size_t mlen, char *path, size_t plen,
    const struct ag_channel *ch, const struct ag_prov_op *rq, char *err,
    size_t errlen)
{
	(void)ch;
	if (rq->op == OP_REALTIME) {
		/* The model goes in the query: only URL-safe characters. */
		size_t n = rq->model != NULL ? strlen(rq->model) : 0;
		if (n == 0 || n > 100 || strspn(rq->model, "abcdefghijklmnopqrstu"
		    "vwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-:") != n) {
			snprintf(err, errlen, "openai: bad realtime model");
			return -1;
		}
		snprintf(method, mlen, "GET");
		snprintf(path, plen, "/v1/realtime?model=%s", rq->model);
		return 0;
	}
	if (rq->op == OP_VIDEO_GET || rq->op == OP_VIDEO_CONTENT) {
		if (rq->resource == NULL || !resource_ok(rq->resource)) {
			snprintf(err, errlen, "openai: bad video id");
			return -1;
		}
		snprintf(method, mlen, "GET");
		snprintf(path, plen, "/v1/videos/%s%s", rq->resource,
		    rq->op == OP_VIDEO_CONTENT ? "/content" : "");
		return 0;
	}
	return ag_prov_op_table("openai", openai_op_paths, method, mlen, path,
	    plen, rq, err, errlen);
}

static int
openai_add_auth(struct curl_slist **h, const struct ag_channel *ch,
    const struct ag_prov_req *rq, char *err, size_t errlen)
{
	(void)rq;
	return ag_prov_header(h, "Authorization", "Bearer ", ch->key, err,
	    errlen);
}

const struct ag_prov ag_prov_openai = {
	.name = "openai",
	.provider = AG_PROV_OPENAI,
	.base_url = "https://api.openai.com",
	.make_url = NULL,
	.hosts = openai_hosts,
	.allowed_paths = openai_paths,
	.allow_query = 0,
	.model_in_body = 1,
	.op_path = openai_op_path,
	.add_auth = openai_add_auth,
};
