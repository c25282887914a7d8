/*
 * agent/prov_openai: the OpenAI adapter of agentd's upstream engine —
 * api.openai.com, the API paths the hub may relay to it, and the
 * "Authorization: Bearer KEY" header carrying the channel's key.
 */
#include "agent/ag_prov.h"

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
	NULL
};

/* The OpenAI path of each operation it serves (lib/prov.h). */
static const char *const openai_op_paths[OP_COUNT] = {
	[OP_CHAT] = "/v1/chat/completions",
	[OP_RESPONSES] = "/v1/responses",
	[OP_EMBEDDINGS] = "/v1/embeddings",
};

static int
openai_op_path(char *method, size_t mlen, char *path, size_t plen,
    const struct ag_channel *ch, const struct ag_prov_op *rq, char *err,
    size_t errlen)
{
	(void)ch;
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
