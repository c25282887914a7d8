/*
 * agent/prov_qwen: the Qwen adapter of agentd's upstream engine —
 * DashScope's OpenAI-compatible mode on the channel's region host
 * (dashscope.aliyuncs.com or dashscope-intl.aliyuncs.com, the only two
 * allowed), chat completions and embeddings under /compatible-mode/v1,
 * and "Authorization: Bearer KEY".
 */
#include "agent/ag_prov.h"

static const char *const qwen_hosts[] = {
	"dashscope.aliyuncs.com",
	"dashscope-intl.aliyuncs.com",
	NULL
};

static const char *const qwen_paths[] = {
	"/compatible-mode/v1/chat/completions",
	"/compatible-mode/v1/embeddings",
	NULL
};

static const char *const qwen_op_paths[OP_COUNT] = {
	[OP_CHAT] = "/compatible-mode/v1/chat/completions",
	[OP_EMBEDDINGS] = "/compatible-mode/v1/embeddings",
};

static int
qwen_op_path(char *method, size_t mlen, char *path, size_t plen,
    const struct ag_channel *ch, const struct ag_prov_op *rq, char *err,
    size_t errlen)
{
	(void)ch;
	return ag_prov_op_table("qwen", qwen_op_paths, method, mlen, path,
	    plen, rq, err, errlen);
}

static int
qwen_add_auth(struct curl_slist **h, const struct ag_channel *ch,
    const struct ag_prov_req *rq, char *err, size_t errlen)
{
	(void)rq;
	return ag_prov_header(h, "Authorization", "Bearer ", ch->key, err,
	    errlen);
}

const struct ag_prov ag_prov_qwen = {
	.name = "qwen",
	.provider = AG_PROV_QWEN,
	.base_url = NULL,
	.make_url = ag_prov_host_url,
	.hosts = qwen_hosts,
	.allowed_paths = qwen_paths,
	.allow_query = 0,
	.model_in_body = 1,
	.op_path = qwen_op_path,
	.add_auth = qwen_add_auth,
};
