/*
 * agent/prov_deepseek: the DeepSeek adapter of agentd's upstream engine —
 * api.deepseek.com (OpenAI-compatible chat completions, at /chat/completions
 * or /v1/chat/completions) and "Authorization: Bearer KEY".
 */
#include "agent/ag_prov.h"

static const char *const deepseek_hosts[] = {
	"api.deepseek.com",
	NULL
};

static const char *const deepseek_paths[] = {
	"/chat/completions",
	"/v1/chat/completions",
	NULL
};

static const char *const deepseek_op_paths[OP_COUNT] = {
	[OP_CHAT] = "/chat/completions",
};

static int
deepseek_op_path(char *method, size_t mlen, char *path, size_t plen,
    const struct ag_channel *ch, const struct ag_prov_op *rq, char *err,
    size_t errlen)
{
	(void)ch;
	return ag_prov_op_table("deepseek", deepseek_op_paths, method, mlen,
	    path, plen, rq, err, errlen);
}

static int
deepseek_add_auth(struct curl_slist **h, const struct ag_channel *ch,
    const struct ag_prov_req *rq, char *err, size_t errlen)
{
	(void)rq;
	return ag_prov_header(h, "Authorization", "Bearer ", ch->key, err,
	    errlen);
}

const struct ag_prov ag_prov_deepseek = {
	.name = "deepseek",
	.provider = AG_PROV_DEEPSEEK,
	.base_url = "https://api.deepseek.com",
	.make_url = NULL,
	.hosts = deepseek_hosts,
	.allowed_paths = deepseek_paths,
	.allow_query = 0,
	.model_in_body = 1,
	.op_path = deepseek_op_path,
	.add_auth = deepseek_add_auth,
};
