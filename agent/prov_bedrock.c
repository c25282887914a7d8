/*
 * agent/prov_bedrock: the AWS Bedrock runtime adapter of agentd's upstream
 * engine — bedrock-runtime.{region}.amazonaws.com (the channel's region;
 * the only hosts allowed match bedrock-runtime.*.amazonaws.com), the four
 * model operations with the provider's model id URL-encoded in the path
 * (a ':' travels as %3A):
 *
 *   converse         POST /model/{id}/converse
 *   converse_stream  POST /model/{id}/converse-stream
 *   invoke           POST /model/{id}/invoke
 *   invoke_stream    POST /model/{id}/invoke-with-response-stream
 *
 * and AWS Signature Version 4 (agent/ag_sigv4, service "bedrock") over
 * the exact bytes sent: host, x-amz-date, x-amz-content-sha256 and, with
 * temporary credentials, x-amz-security-token are signed.  The body is
 * never rewritten (the model is in the path).
 */
#include "agent/ag_prov.h"

#include <stdio.h>
#include <string.h>
#include <time.h>
#include <openssl/crypto.h>
#include "agent/ag_sigv4.h"

#define BEDROCK_SERVICE	"bedrock"

static const char *const bedrock_hosts[] = {
	"bedrock-runtime.*.amazonaws.com",
	NULL
};

static const char *const bedrock_paths[] = {
	"/model/*/converse",
	"/model/*/converse-stream",
	"/model/*/invoke",
	"/model/*/invoke-with-response-stream",
	NULL
};

/* The part after /model/{id} of each operation. */
static const char *const bedrock_op_paths[OP_COUNT] = {
	[OP_CONVERSE] = "/converse",
	[OP_CONVERSE_STREAM] = "/converse-stream",
	[OP_INVOKE] = "/invoke",
	[OP_INVOKE_STREAM] = "/invoke-with-response-stream",
};

static int
unreserved(int c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
	    (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' ||
	    c == '~';
}

static int
bedrock_op_path(char *method, size_t mlen, char *path, size_t plen,
    const struct ag_channel *ch, const struct ag_prov_op *rq, char *err,
    size_t errlen)
{
	static const char hex[] = "0123456789ABCDEF";
	char tail[64], enc[3 * AG_MODEL_MAX + 1];
	const char *id;
	size_t o = 0;
	int n;

	if (ag_prov_op_table("bedrock", bedrock_op_paths, method, mlen, tail,
	    sizeof(tail), rq, err, errlen) != 0)
		return -1;
	id = rq->model != NULL ? ag_channel_model_id(ch, rq->model) : NULL;
	if (id == NULL || id[0] == '\0') {
		snprintf(err, errlen, "bedrock: channel %s does not serve model "
		    "'%.64s'", ch->name, rq->model != NULL ? rq->model : "");
		return -1;
	}
	for (const unsigned char *c = (const unsigned char *)id; *c != '\0' &&
	    o + 4 < sizeof(enc); c++) {
		if (unreserved(*c))
			enc[o++] = (char)*c;
		else {
			enc[o++] = '%';
			enc[o++] = hex[*c >> 4];
			enc[o++] = hex[*c & 15];
		}
	}
	enc[o] = '\0';
	n = snprintf(path, plen, "/model/%s%s", enc, tail);
	if (n < 0 || (size_t)n >= plen) {
		snprintf(err, errlen, "bedrock: path too long");
		return -1;
	}
	return 0;
}

/*
 * Append "NAME: VALUE" (VALUE printable ASCII, spaces allowed: the
 * Authorization value has some; a session token is longer than
 * ag_prov_header takes).  The line is wiped after curl copied it.
 */
static int
header(struct curl_slist **h, const char *name, const char *value,
    char *err, size_t errlen)
{
	char line[AG_AWS_TOKEN_MAX + 64];
	struct curl_slist *n;
	int len;

	for (const char *p = value; *p != '\0'; p++)
		if ((unsigned char)*p < 0x20 || (unsigned char)*p > 0x7e) {
			snprintf(err, errlen, "bedrock: %s has a byte that "
			    "cannot go in a header", name);
			return -1;
		}
	len = snprintf(line, sizeof(line), "%s: %s", name, value);
	if (value[0] == '\0' || len < 0 || (size_t)len >= sizeof(line)) {
		snprintf(err, errlen, "bedrock: %s is empty or too long", name);
		return -1;
	}
	n = curl_slist_append(*h, line);
	OPENSSL_cleanse(line, sizeof(line));
	if (n == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	*h = n;
	return 0;
}

static int
bedrock_add_auth(struct curl_slist **h, const struct ag_channel *ch,
    const struct ag_prov_req *rq, char *err, size_t errlen)
{
	struct ag_sigv4_hdr sh[4];
	struct ag_sigv4_req sr;
	char date[AG_SIGV4_DATE_LEN], hash[AG_SIGV4_HEX_LEN];
	char sig[AG_SIGV4_HEX_LEN], auth[512], path[2048];
	int n = 0;
	size_t pl;

	if (rq == NULL || ch->access_key_id[0] == '\0' || ch->key[0] == '\0' ||
	    ch->region[0] == '\0') {
		snprintf(err, errlen, "bedrock: channel %s has no credentials",
		    ch->name);
		return -1;
	}
	pl = strcspn(rq->path, "?");
	if (pl >= sizeof(path)) {
		snprintf(err, errlen, "bedrock: path too long");
		return -1;
	}
	memcpy(path, rq->path, pl);
	path[pl] = '\0';
	ag_sigv4_date(time(NULL), date);
	ag_sigv4_sha256_hex(rq->body, rq->len, hash);
	sh[n++] = (struct ag_sigv4_hdr){ "host", ch->host };
	sh[n++] = (struct ag_sigv4_hdr){ "x-amz-date", date };
	sh[n++] = (struct ag_sigv4_hdr){ "x-amz-content-sha256", hash };
	if (ch->session_token[0] != '\0')
		sh[n++] = (struct ag_sigv4_hdr){ "x-amz-security-token",
		    ch->session_token };
	sr = (struct ag_sigv4_req){ .method = rq->method, .path = path,
	    .query = rq->path[pl] == '?' ? rq->path + pl + 1 : NULL,
	    .hdrs = sh, .nhdrs = n, .payload_hash = hash, .amz_date = date,
	    .region = ch->region, .service = BEDROCK_SERVICE };
	if (ag_sigv4_sign(&sr, ch->access_key_id, ch->key, sig, auth,
	    sizeof(auth)) != 0) {
		snprintf(err, errlen, "bedrock: the request could not be signed");
		return -1;
	}
	if (header(h, "X-Amz-Date", date, err, errlen) != 0 ||
	    header(h, "X-Amz-Content-Sha256", hash, err, errlen) != 0 ||
	    (ch->session_token[0] != '\0' && header(h,
	    "X-Amz-Security-Token", ch->session_token, err, errlen) != 0) ||
	    header(h, "Authorization", auth, err, errlen) != 0)
		return -1;
	return 0;
}

const struct ag_prov ag_prov_bedrock = {
	.name = "bedrock",
	.provider = AG_PROV_BEDROCK,
	.base_url = NULL,
	.make_url = ag_prov_host_url,
	.hosts = bedrock_hosts,
	.allowed_paths = bedrock_paths,
	.allow_query = 0,
	.model_in_body = 0,
	.op_path = bedrock_op_path,
	.add_auth = bedrock_add_auth,
};
