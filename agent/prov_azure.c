/*
 * agent/prov_azure: the Azure OpenAI adapter of agentd's upstream engine
 * — the channel's resource host (NAME.openai.azure.com, the only hosts
 * allowed), the deployment of each model in the path with the channel's
 * api-version in the query, and "api-key: KEY".  The body is OpenAI's
 * dialect; Azure takes the model from the path, so the body is left as
 * it is.
 */
#include "agent/ag_prov.h"

#include <stdio.h>
#include <string.h>

static const char *const azure_hosts[] = {
	"*.openai.azure.com",
	NULL
};

static const char *const azure_paths[] = {
	"/openai/deployments/*/chat/completions",
	"/openai/deployments/*/embeddings",
	NULL
};

/* The part after /openai/deployments/{deployment} of each operation. */
static const char *const azure_op_paths[OP_COUNT] = {
	[OP_CHAT] = "/chat/completions",
	[OP_EMBEDDINGS] = "/embeddings",
};

static int
azure_op_path(char *method, size_t mlen, char *path, size_t plen,
    const struct ag_channel *ch, const struct ag_prov_op *rq, char *err,
    size_t errlen)
{
	char tail[64];
	int m, n;

	if (ag_prov_op_table("azure", azure_op_paths, method, mlen, tail,
	    sizeof(tail), rq, err, errlen) != 0)
		return -1;
	m = rq->model != NULL ? ag_channel_model(ch, rq->model) : -1;
	if (m < 0 || ch->deployments[m][0] == '\0') {
		snprintf(err, errlen, "azure: channel %s has no deployment for "
		    "model '%.64s'", ch->name, rq->model != NULL ? rq->model : "");
		return -1;
	}
	n = snprintf(path, plen, "/openai/deployments/%s%s?api-version=%s",
	    ch->deployments[m], tail, ch->api_version);
	if (n < 0 || (size_t)n >= plen) {
		snprintf(err, errlen, "azure: path too long");
		return -1;
	}
	return 0;
}

static int
azure_add_auth(struct curl_slist **h, const struct ag_channel *ch,
    const struct ag_prov_req *rq, char *err, size_t errlen)
{
	(void)rq;
	return ag_prov_header(h, "api-key", "", ch->key, err, errlen);
}

const struct ag_prov ag_prov_azure = {
	.name = "azure",
	.provider = AG_PROV_AZURE,
	.base_url = NULL,
	.make_url = ag_prov_host_url,
	.hosts = azure_hosts,
	.allowed_paths = azure_paths,
	.allow_query = 1,
	.model_in_body = 0,
	.op_path = azure_op_path,
	.add_auth = azure_add_auth,
};
