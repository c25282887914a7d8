/*
 * agent/prov_anthropic: the Anthropic adapter of agentd's upstream engine
 * — api.anthropic.com, the Messages operations (messages, count_tokens),
 * and the headers: "x-api-key: KEY" (the channel's key), anthropic-version
 * (the user's value passed on by the hub, else the channel's, default
 * 2023-06-01) and anthropic-beta when the user gave one.  Values from the
 * hub are checked to a strict alphabet before they become headers.
 */
#include "agent/ag_prov.h"

#include <stdio.h>
#include <string.h>

#define BETA_MAX	128

static const char *const anthropic_hosts[] = {
	"api.anthropic.com",
	NULL
};

static const char *const anthropic_paths[] = {
	"/v1/messages",
	"/v1/messages/count_tokens",
	NULL
};

static const char *const anthropic_op_paths[OP_COUNT] = {
	[OP_MESSAGES] = "/v1/messages",
	[OP_COUNT_TOKENS] = "/v1/messages/count_tokens",
};

static int
anthropic_op_path(char *method, size_t mlen, char *path, size_t plen,
    const struct ag_channel *ch, const struct ag_prov_op *rq, char *err,
    size_t errlen)
{
	(void)ch;
	return ag_prov_op_table("anthropic", anthropic_op_paths, method, mlen,
	    path, plen, rq, err, errlen);
}

/* A version "2023-06-01": 1..31 of A-Z a-z 0-9 . - */
static int
version_ok(const char *v)
{
	size_t n = strlen(v);

	if (n == 0 || n >= AG_VERSION_MAX)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!((v[i] >= '0' && v[i] <= '9') || (v[i] >= 'a' && v[i] <= 'z') ||
		    (v[i] >= 'A' && v[i] <= 'Z') || v[i] == '-' || v[i] == '.'))
			return 0;
	return 1;
}

/*
 * anthropic-beta "a,b" (spaces after commas dropped) into out: names of
 * A-Z a-z 0-9 . _ - separated by single commas.  0, or -1.
 */
static int
beta_clean(const char *v, char *out, size_t outlen)
{
	size_t o = 0;
	int prev = ',';

	for (; *v != '\0'; v++) {
		int c = (unsigned char)*v;

		if (c == ' ' || c == '\t')
			continue;
		if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
		    (c >= 'A' && c <= 'Z') || c == '-' || c == '.' ||
		    c == '_' || c == ','))
			return -1;
		if (c == ',' && prev == ',')
			return -1;
		if (o + 1 >= outlen)
			return -1;
		out[o++] = (char)c;
		prev = c;
	}
	out[o] = '\0';
	return o == 0 || prev == ',' ? -1 : 0;
}

static int
anthropic_add_auth(struct curl_slist **h, const struct ag_channel *ch,
    const struct ag_prov_req *rq, char *err, size_t errlen)
{
	const struct ag_prov_op *op = rq != NULL ? rq->op : NULL;
	const char *ver = ch->anthropic_version[0] != '\0' ?
	    ch->anthropic_version : "2023-06-01";
	char beta[BETA_MAX];

	if (op != NULL && op->anthropic_version != NULL &&
	    op->anthropic_version[0] != '\0') {
		if (!version_ok(op->anthropic_version)) {
			snprintf(err, errlen, "anthropic: the anthropic-version "
			    "asked for is not a version");
			return -1;
		}
		ver = op->anthropic_version;
	}
	if (ag_prov_header(h, "x-api-key", "", ch->key, err, errlen) != 0 ||
	    ag_prov_header(h, "anthropic-version", "", ver, err, errlen) != 0)
		return -1;
	if (op != NULL && op->anthropic_beta != NULL &&
	    op->anthropic_beta[0] != '\0') {
		if (beta_clean(op->anthropic_beta, beta, sizeof(beta)) != 0) {
			snprintf(err, errlen, "anthropic: the anthropic-beta "
			    "asked for is not a list of names");
			return -1;
		}
		if (ag_prov_header(h, "anthropic-beta", "", beta, err,
		    errlen) != 0)
			return -1;
	}
	return 0;
}

const struct ag_prov ag_prov_anthropic = {
	.name = "anthropic",
	.provider = AG_PROV_ANTHROPIC,
	.base_url = "https://api.anthropic.com",
	.make_url = NULL,
	.hosts = anthropic_hosts,
	.allowed_paths = anthropic_paths,
	.allow_query = 0,
	.model_in_body = 1,
	.op_path = anthropic_op_path,
	.add_auth = anthropic_add_auth,
};
