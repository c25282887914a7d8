/*
 * agent/prov_vertex: the Vertex AI adapter of agentd's upstream engine —
 * the channel's regional host ({location}-aiplatform.googleapis.com, or
 * aiplatform.googleapis.com for "global"), the project/location/publisher
 * path of each operation, and an OAuth access token the engine gets from
 * the channel's service account (oauth_token; agent/ag_token).
 *
 * Two publishers, told apart by the operation the hub names (lib/prov.c
 * picks it from the model name): Google's Gemini models take Gemini
 * bodies at publishers/google/models/{m}:generateContent,
 * :streamGenerateContent?alt=sse and :countTokens; Anthropic's Claude
 * models take Anthropic Messages bodies at
 * publishers/anthropic/models/{m}:rawPredict (:streamRawPredict for a
 * stream), without "model" and with anthropic_version "vertex-2023-10-16"
 * in the body (fix_body).
 */
#include "agent/ag_prov.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>

#define VERTEX_ANTHROPIC_VERSION	"vertex-2023-10-16"

static const char *const vertex_hosts[] = {
	"*-aiplatform.googleapis.com",
	"aiplatform.googleapis.com",
	NULL
};

static const char *const vertex_paths[] = {
	"/v1/projects/*/locations/*/publishers/google/models/*:generateContent",
	"/v1/projects/*/locations/*/publishers/google/models/"
	    "*:streamGenerateContent",
	"/v1/projects/*/locations/*/publishers/google/models/*:countTokens",
	"/v1/projects/*/locations/*/publishers/anthropic/models/*:rawPredict",
	"/v1/projects/*/locations/*/publishers/anthropic/models/"
	    "*:streamRawPredict",
	NULL
};

/* Per operation: the publisher and the method (+ query) after the model;
 * a stream of OP_MESSAGES takes the second. */
static const struct {
	const char *publisher, *method, *stream_method;
} vertex_ops[OP_COUNT] = {
	[OP_GEM_GENERATE] = { "google", ":generateContent", NULL },
	[OP_GEM_STREAM] = { "google", ":streamGenerateContent?alt=sse", NULL },
	[OP_GEM_COUNT] = { "google", ":countTokens", NULL },
	[OP_MESSAGES] = { "anthropic", ":rawPredict", ":streamRawPredict" },
};

static int
vertex_op_path(char *method, size_t mlen, char *path, size_t plen,
    const struct ag_channel *ch, const struct ag_prov_op *rq, char *err,
    size_t errlen)
{
	const struct prov_op_info *oi = prov_op(rq->op);
	const char *id, *m;
	int n;

	if (oi == NULL || vertex_ops[rq->op].publisher == NULL) {
		snprintf(err, errlen, "vertex: operation %s not supported",
		    oi != NULL ? oi->name : "?");
		return -1;
	}
	if (rq->model == NULL ||
	    (id = ag_channel_model_id(ch, rq->model)) == NULL) {
		snprintf(err, errlen, "vertex: channel %s does not serve model "
		    "'%.64s'", ch->name, rq->model != NULL ? rq->model : "");
		return -1;
	}
	/* The publisher must be the model's (lib/prov's table). */
	if (prov_dialect_model(PROV_VERTEX, rq->model) != oi->dialect) {
		snprintf(err, errlen, "vertex: model '%.64s' does not take %s "
		    "requests", rq->model, oi->name);
		return -1;
	}
	m = rq->stream && vertex_ops[rq->op].stream_method != NULL ?
	    vertex_ops[rq->op].stream_method : vertex_ops[rq->op].method;
	snprintf(method, mlen, "%s", oi->method);
	n = snprintf(path, plen, "/v1/projects/%s/locations/%s/publishers/%s/"
	    "models/%s%s", ch->project, ch->location,
	    vertex_ops[rq->op].publisher, id, m);
	if (n < 0 || (size_t)n >= plen) {
		snprintf(err, errlen, "vertex: path too long");
		return -1;
	}
	return 0;
}

/* The engine adds the Bearer token (oauth_token). */
static int
vertex_add_auth(struct curl_slist **h, const struct ag_channel *ch,
    const struct ag_prov_req *rq, char *err, size_t errlen)
{
	(void)h;
	(void)ch;
	(void)rq;
	(void)err;
	(void)errlen;
	return 0;
}

/* Claude on Vertex: the model is in the URL, the version in the body. */
static int
vertex_fix_body(const struct ag_channel *ch, const struct ag_prov_op *rq,
    const void *body, size_t len, char **out, size_t *outlen, char *err,
    size_t errlen)
{
	json_t *o;
	char *s;

	(void)ch;
	*out = NULL;
	*outlen = 0;
	if (rq->op != OP_MESSAGES)
		return 0;
	o = json_loadb(body, len, JSON_REJECT_DUPLICATES, NULL);
	if (!json_is_object(o)) {
		json_decref(o);
		snprintf(err, errlen, "vertex: the Messages body is not a JSON "
		    "object");
		return -1;
	}
	json_object_del(o, "model");
	if (json_object_set_new(o, "anthropic_version",
	    json_string(VERTEX_ANTHROPIC_VERSION)) != 0 ||
	    (s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER)) == NULL) {
		json_decref(o);
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	json_decref(o);
	*out = s;
	*outlen = strlen(s);
	return 0;
}

const struct ag_prov ag_prov_vertex = {
	.name = "vertex",
	.provider = AG_PROV_VERTEX,
	.base_url = NULL,
	.make_url = ag_prov_host_url,
	.hosts = vertex_hosts,
	.allowed_paths = vertex_paths,
	.allow_query = 1,
	.model_in_body = 0,
	.op_path = vertex_op_path,
	.add_auth = vertex_add_auth,
	.oauth_token = 1,
	.fix_body = vertex_fix_body,
};
