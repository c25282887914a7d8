/*
 * tests/unit/test_gtoken: Google's providers in agentd and the hub's
 * Gemini routing — service-account files (agent/ag_token: mode, shape,
 * token_uri, key type), the RS256 assertion verified with OpenSSL, the
 * access-token cache's timing and back-off, the vertex/gemini channel keys
 * and refusals (agent/ag_conf), the adapters' paths and Vertex's Claude
 * body, lib/prov's publisher rows, and the gateway's "*:suffix" segment
 * matcher.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <sodium.h>

#include "agent/ag_conf.h"
#include "agent/ag_prov.h"
#include "agent/ag_token.h"
#include "gateway/gw.h"
#include "lib/prov.h"

#define EMAIL	"svc@proj.iam.gserviceaccount.com"

static char dir[64];
static EVP_PKEY *key;		/* the test's RSA key */
static char *key_pem;
static char sa_json[8192];

static char *
pem_of(EVP_PKEY *k)
{
	BIO *b = BIO_new(BIO_s_mem());
	char *p, *out;
	long n;

	assert_int_equal(PEM_write_bio_PrivateKey(b, k, NULL, NULL, 0, NULL,
	    NULL), 1);
	n = BIO_get_mem_data(b, &p);
	out = strndup(p, (size_t)n);
	BIO_free(b);
	return out;
}

/* A service-account JSON with this PEM and token_uri. */
static void
make_sa(char *out, size_t outlen, const char *pem, const char *uri,
    const char *type)
{
	json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:s}", "type", type,
	    "project_id", "proj", "private_key", pem, "client_email", EMAIL,
	    "token_uri", uri);
	char *s = json_dumps(o, JSON_COMPACT);

	snprintf(out, outlen, "%s", s);
	free(s);
	json_decref(o);
}

static void
write_file(const char *path, const char *text, mode_t mode)
{
	int fd;

	unlink(path);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	assert_int_equal(chmod(path, mode), 0);
}

static int
setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/swb-gtoken.XXXXXX");
	if (mkdtemp(dir) == NULL || sodium_init() < 0)
		return -1;
	if ((key = EVP_RSA_gen(2048)) == NULL)
		return -1;
	key_pem = pem_of(key);
	make_sa(sa_json, sizeof(sa_json), key_pem, AG_SA_TOKEN_URI,
	    "service_account");
	return 0;
}

static int
teardown(void **state)
{
	char cmd[128];

	(void)state;
	EVP_PKEY_free(key);
	free(key_pem);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	return system(cmd) == 0 ? 0 : -1;
}

/* base64url segment i of jwt, decoded (NUL-terminated, malloc'd). */
static unsigned char *
segment(const char *jwt, int i, size_t *len)
{
	const char *s = jwt, *e;
	unsigned char *out;

	while (i-- > 0)
		s = strchr(s, '.') + 1;
	e = strchr(s, '.');
	if (e == NULL)
		e = s + strlen(s);
	out = malloc((size_t)(e - s) + 1);
	assert_int_equal(sodium_base642bin(out, (size_t)(e - s) + 1, s,
	    (size_t)(e - s), NULL, len, NULL,
	    sodium_base64_VARIANT_URLSAFE_NO_PADDING), 0);
	out[*len] = '\0';
	return out;
}

static void
test_jwt_verifies(void **state)
{
	struct ag_sa sa;
	char err[256];
	char *jwt;
	unsigned char *hdr, *claims, *sig;
	size_t hl, cl, sl;
	EVP_MD_CTX *ctx;
	json_t *c;

	(void)state;
	assert_int_equal(ag_sa_parse(sa_json, strlen(sa_json), &sa, err,
	    sizeof(err)), 0);
	assert_string_equal(sa.client_email, EMAIL);
	jwt = ag_jwt_make(&sa, 1700000000, err, sizeof(err));
	assert_non_null(jwt);
	hdr = segment(jwt, 0, &hl);
	claims = segment(jwt, 1, &cl);
	sig = segment(jwt, 2, &sl);
	assert_string_equal((char *)hdr, "{\"alg\":\"RS256\",\"typ\":\"JWT\"}");
	c = json_loads((char *)claims, 0, NULL);
	assert_non_null(c);
	assert_string_equal(json_string_value(json_object_get(c, "iss")),
	    EMAIL);
	assert_string_equal(json_string_value(json_object_get(c, "aud")),
	    "https://oauth2.googleapis.com/token");
	assert_string_equal(json_string_value(json_object_get(c, "scope")),
	    "https://www.googleapis.com/auth/cloud-platform");
	assert_int_equal(json_integer_value(json_object_get(c, "iat")),
	    1700000000);
	assert_int_equal(json_integer_value(json_object_get(c, "exp")),
	    1700000000 + 3600);
	json_decref(c);
	/* RS256 over "header.claims", checked with the public key. */
	ctx = EVP_MD_CTX_new();
	assert_int_equal(EVP_DigestVerifyInit(ctx, NULL, EVP_sha256(), NULL,
	    key), 1);
	assert_int_equal(EVP_DigestVerify(ctx, sig, sl,
	    (const unsigned char *)jwt, (size_t)(strrchr(jwt, '.') - jwt)), 1);
	/* One flipped byte of the claims fails. */
	jwt[strchr(jwt, '.') - jwt + 3] ^= 1;
	EVP_MD_CTX_free(ctx);
	ctx = EVP_MD_CTX_new();
	assert_int_equal(EVP_DigestVerifyInit(ctx, NULL, EVP_sha256(), NULL,
	    key), 1);
	assert_int_not_equal(EVP_DigestVerify(ctx, sig, sl,
	    (const unsigned char *)jwt, (size_t)(strrchr(jwt, '.') - jwt)), 1);
	EVP_MD_CTX_free(ctx);
	{
		char *form = ag_jwt_form("a.b.c");

		assert_string_equal(form, "grant_type=urn%3Aietf%3Aparams%3A"
		    "oauth%3Agrant-type%3Ajwt-bearer&assertion=a.b.c");
		free(form);
	}
	free(hdr);
	free(claims);
	free(sig);
	free(jwt);
	ag_sa_free(&sa);
}

static void
test_sa_refusals(void **state)
{
	struct ag_sa sa;
	char err[512], path[128], doc[8192];
	EVP_PKEY *ec, *small;
	char *pem;

	(void)state;
	snprintf(path, sizeof(path), "%s/sa.json", dir);
	/* Group or others may read it: refused, whatever it holds. */
	write_file(path, sa_json, 0640);
	assert_int_equal(ag_sa_load(path, &sa, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "group or others"));
	write_file(path, sa_json, 0604);
	assert_int_equal(ag_sa_load(path, &sa, err, sizeof(err)), -1);
	write_file(path, sa_json, 0600);
	assert_int_equal(ag_sa_load(path, &sa, err, sizeof(err)), 0);
	ag_sa_free(&sa);
	/* token_uri elsewhere: the assertion would go there. */
	make_sa(doc, sizeof(doc), key_pem, "https://evil.example/token",
	    "service_account");
	assert_int_equal(ag_sa_parse(doc, strlen(doc), &sa, err, sizeof(err)),
	    -1);
	assert_non_null(strstr(err, "token_uri"));
	make_sa(doc, sizeof(doc), key_pem, AG_SA_TOKEN_URI, "authorized_user");
	assert_int_equal(ag_sa_parse(doc, strlen(doc), &sa, err, sizeof(err)),
	    -1);
	/* Not RSA, or too small. */
	ec = EVP_EC_gen("P-256");
	pem = pem_of(ec);
	make_sa(doc, sizeof(doc), pem, AG_SA_TOKEN_URI, "service_account");
	assert_int_equal(ag_sa_parse(doc, strlen(doc), &sa, err, sizeof(err)),
	    -1);
	assert_non_null(strstr(err, "RSA"));
	free(pem);
	EVP_PKEY_free(ec);
	small = EVP_RSA_gen(1024);
	pem = pem_of(small);
	make_sa(doc, sizeof(doc), pem, AG_SA_TOKEN_URI, "service_account");
	assert_int_equal(ag_sa_parse(doc, strlen(doc), &sa, err, sizeof(err)),
	    -1);
	free(pem);
	EVP_PKEY_free(small);
	make_sa(doc, sizeof(doc), "not a key", AG_SA_TOKEN_URI,
	    "service_account");
	assert_int_equal(ag_sa_parse(doc, strlen(doc), &sa, err, sizeof(err)),
	    -1);
	assert_int_equal(ag_sa_parse("[1]", 3, &sa, err, sizeof(err)), -1);
	assert_null(sa.key);
}

static void
test_token_cache(void **state)
{
	struct ag_tok t;
	const char *ok = "{\"access_token\":\"ya29.abc\",\"expires_in\":3600,"
	    "\"token_type\":\"Bearer\"}";
	const char *bad = "{\"error\":\"invalid_grant\",\"error_description\":"
	    "\"Invalid JWT Signature.\"}";
	int64_t t0 = 1000000;

	(void)state;
	memset(&t, 0, sizeof(t));
	assert_int_equal(ag_tok_state(&t, t0), AG_TOK_NONE);
	assert_int_equal(ag_tok_answer(&t, t0, 200, ok, strlen(ok)), 0);
	assert_string_equal(t.token, "ya29.abc");
	/* Used as it is until 80% of expires_in, then refreshed in the
	 * background, and no longer used from 90% on. */
	assert_int_equal(ag_tok_state(&t, t0 + 2879999), AG_TOK_VALID);
	assert_int_equal(ag_tok_state(&t, t0 + 2880000), AG_TOK_REFRESH);
	assert_int_equal(ag_tok_state(&t, t0 + 3239999), AG_TOK_REFRESH);
	assert_int_equal(ag_tok_state(&t, t0 + 3240000), AG_TOK_NONE);
	/* A refusal: logged once (1), then 2; back-off 5 s, doubling. */
	assert_int_equal(ag_tok_answer(&t, t0, 400, bad, strlen(bad)), 1);
	assert_string_equal(t.token, "");
	assert_non_null(strstr(t.reason, "invalid_grant"));
	assert_non_null(strstr(t.reason, "Invalid JWT Signature."));
	assert_non_null(strstr(t.reason, "400"));
	assert_int_equal(ag_tok_state(&t, t0 + 4999), AG_TOK_FAILED);
	assert_int_equal(ag_tok_state(&t, t0 + 5000), AG_TOK_RETRY);
	assert_int_equal(ag_tok_fail(&t, t0 + 5000, "timeout"), 2);
	assert_int_equal(ag_tok_state(&t, t0 + 14999), AG_TOK_FAILED);
	assert_int_equal(ag_tok_state(&t, t0 + 15000), AG_TOK_RETRY);
	for (int i = 0; i < 20; i++)
		ag_tok_fail(&t, t0, "again");
	assert_int_equal(t.backoff_ms, AG_TOK_BACKOFF_MAX_MS);
	/* A 200 without a usable token is a failure too; a good one ends
	 * the episode. */
	assert_int_equal(ag_tok_answer(&t, t0, 200, "{\"access_token\":\"a b\","
	    "\"expires_in\":10}", 38), 2);
	assert_int_equal(ag_tok_answer(&t, t0, 200, "{\"access_token\":\"x\","
	    "\"expires_in\":0}", 36), 2);
	assert_int_equal(ag_tok_answer(&t, t0, 200, "not json", 8), 2);
	assert_int_equal(ag_tok_answer(&t, t0, 200, ok, strlen(ok)), 0);
	assert_int_equal(ag_tok_state(&t, t0 + 1), AG_TOK_VALID);
	assert_int_equal(ag_tok_fail(&t, t0, "down"), 1);
}

static int
load(const char *text, struct ag_conf *cf, char *err, size_t errlen)
{
	char path[128];

	snprintf(path, sizeof(path), "%s/agentd.ini", dir);
	write_file(path, text, 0600);
	return ag_conf_load(path, cf, err, errlen);
}

#define AGENT "[agent]\nid = 7\nkey_file = /x/agent.key\n" \
	"hub_url = wss://127.0.0.1:8443/t\n" \
	"hub_pin = sha256//AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n"

static void
test_conf_vertex(void **state)
{
	static struct ag_conf cf;
	char err[1024], sa[128], ini[2048];

	(void)state;
	if (!SWB_TEST_BUILD)
		skip();
	snprintf(sa, sizeof(sa), "%s/vsa.json", dir);
	write_file(sa, sa_json, 0600);
	snprintf(ini, sizeof(ini), AGENT "[channel.v]\nprovider = vertex\n"
	    "models = gemini-2.5-pro, claude-sonnet-4-5=claude-sonnet-4-5@20250929\n"
	    "project = swb-test\nlocation = us-central1\nkey = %s\n"
	    "[channel.g]\nprovider = gemini\nmodels = gemini-2.5-flash\n"
	    "key = gkey\n", sa);
	assert_int_equal(load(ini, &cf, err, sizeof(err)), 0);
	assert_string_equal(cf.channels[0].host,
	    "us-central1-aiplatform.googleapis.com");
	assert_string_equal(cf.channels[0].project, "swb-test");
	/* The service-account file readable by others: refused, naming it. */
	chmod(sa, 0644);
	assert_int_equal(load(ini, &cf, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "group or others"));
	assert_non_null(strstr(err, "[channel.v]"));
	assert_non_null(strstr(err, ":11:"));	/* the key's line */
	chmod(sa, 0600);
	/* No project; a bad location; vertex keys on another provider. */
	snprintf(ini, sizeof(ini), AGENT "[channel.v]\nprovider = vertex\n"
	    "models = m\nlocation = us-central1\nkey = %s\n", sa);
	assert_int_equal(load(ini, &cf, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "project and location"));
	snprintf(ini, sizeof(ini), AGENT "[channel.v]\nprovider = vertex\n"
	    "models = m\nproject = p\nlocation = Us_1\nkey = %s\n", sa);
	assert_int_equal(load(ini, &cf, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "location"));
	assert_int_equal(load(AGENT "[channel.o]\nprovider = openai\n"
	    "models = m\nkey = k\nproject = p\n", &cf, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "does not apply"));
	snprintf(ini, sizeof(ini), AGENT "[channel.v]\nprovider = vertex\n"
	    "models = m\nproject = p\nlocation = global\nkey = %s\n", sa);
	assert_int_equal(load(ini, &cf, err, sizeof(err)), 0);
	assert_string_equal(cf.channels[0].host, "aiplatform.googleapis.com");
}

static void
test_adapters(void **state)
{
	struct ag_channel ch;
	struct ag_prov_op op = { .op = OP_GEM_STREAM, .model = "gemini-2.5-pro",
	    .stream = 1 };
	const struct ag_prov *v = ag_prov_find(AG_PROV_VERTEX);
	const struct ag_prov *g = ag_prov_find(AG_PROV_GEMINI);
	char method[8], path[512], err[256], *out;
	size_t olen;

	(void)state;
	assert_non_null(v);
	assert_non_null(g);
	memset(&ch, 0, sizeof(ch));
	snprintf(ch.name, sizeof(ch.name), "v");
	ch.nmodels = 2;
	snprintf(ch.models[0], sizeof(ch.models[0]), "gemini-2.5-pro");
	snprintf(ch.models[1], sizeof(ch.models[1]), "claude-sonnet-4-5");
	snprintf(ch.model_ids[1], sizeof(ch.model_ids[1]),
	    "claude-sonnet-4-5@20250929");
	snprintf(ch.project, sizeof(ch.project), "p1");
	snprintf(ch.location, sizeof(ch.location), "europe-west4");
	assert_int_equal(v->op_path(method, sizeof(method), path, sizeof(path),
	    &ch, &op, err, sizeof(err)), 0);
	assert_string_equal(path, "/v1/projects/p1/locations/europe-west4/"
	    "publishers/google/models/gemini-2.5-pro:streamGenerateContent"
	    "?alt=sse");
	op.op = OP_MESSAGES;
	op.model = "claude-sonnet-4-5";
	assert_int_equal(v->op_path(method, sizeof(method), path, sizeof(path),
	    &ch, &op, err, sizeof(err)), 0);
	assert_string_equal(path, "/v1/projects/p1/locations/europe-west4/"
	    "publishers/anthropic/models/claude-sonnet-4-5@20250929:"
	    "streamRawPredict");
	op.stream = 0;
	assert_int_equal(v->op_path(method, sizeof(method), path, sizeof(path),
	    &ch, &op, err, sizeof(err)), 0);
	assert_non_null(strstr(path, ":rawPredict"));
	/* A Gemini operation on a Claude model, an unknown model. */
	op.op = OP_GEM_GENERATE;
	assert_int_equal(v->op_path(method, sizeof(method), path, sizeof(path),
	    &ch, &op, err, sizeof(err)), -1);
	op.model = "gemini-9";
	assert_int_equal(v->op_path(method, sizeof(method), path, sizeof(path),
	    &ch, &op, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "does not serve"));
	op.op = OP_CHAT;
	op.model = "gemini-2.5-pro";
	assert_int_equal(v->op_path(method, sizeof(method), path, sizeof(path),
	    &ch, &op, err, sizeof(err)), -1);
	/* Claude's body: no model, Vertex's anthropic_version. */
	op.op = OP_MESSAGES;
	{
		const char *b = "{\"model\":\"m\",\"max_tokens\":5,\"messages\":[]}";

		assert_int_equal(v->fix_body(&ch, &op, b, strlen(b), &out,
		    &olen, err, sizeof(err)), 0);
	}
	assert_string_equal(out, "{\"max_tokens\":5,\"messages\":[],"
	    "\"anthropic_version\":\"vertex-2023-10-16\"}");
	free(out);
	assert_int_equal(v->fix_body(&ch, &op, "[]", 2, &out, &olen, err,
	    sizeof(err)), -1);
	op.op = OP_GEM_GENERATE;
	assert_int_equal(v->fix_body(&ch, &op, "{}", 2, &out, &olen, err,
	    sizeof(err)), 0);
	assert_null(out);
	/* Gemini: the model in the path, each method. */
	ch.nmodels = 1;
	snprintf(ch.models[0], sizeof(ch.models[0]), "gemini-embedding-001");
	op.model = "gemini-embedding-001";
	op.op = OP_GEM_BATCH_EMBED;
	assert_int_equal(g->op_path(method, sizeof(method), path, sizeof(path),
	    &ch, &op, err, sizeof(err)), 0);
	assert_string_equal(path,
	    "/v1beta/models/gemini-embedding-001:batchEmbedContents");
	op.op = OP_GEM_STREAM;
	assert_int_equal(g->op_path(method, sizeof(method), path, sizeof(path),
	    &ch, &op, err, sizeof(err)), 0);
	assert_string_equal(path,
	    "/v1beta/models/gemini-embedding-001:streamGenerateContent?alt=sse");
	op.op = OP_MESSAGES;
	assert_int_equal(g->op_path(method, sizeof(method), path, sizeof(path),
	    &ch, &op, err, sizeof(err)), -1);
}

static void
test_prov_publishers(void **state)
{
	(void)state;
	assert_int_equal(prov_dialect_model(PROV_VERTEX, "gemini-2.5-pro"),
	    DIA_GEMINI);
	assert_int_equal(prov_dialect_model(PROV_VERTEX, "claude-sonnet-4-5"),
	    DIA_ANTHROPIC);
	assert_true(prov_can_model(PROV_VERTEX, "claude-sonnet-4-5",
	    OP_MESSAGES));
	assert_false(prov_can_model(PROV_VERTEX, "claude-sonnet-4-5",
	    OP_GEM_GENERATE));
	assert_true(prov_can_model(PROV_VERTEX, "gemini-2.5-pro",
	    OP_GEM_STREAM));
	assert_false(prov_can_model(PROV_VERTEX, "gemini-2.5-pro", OP_MESSAGES));
	assert_int_equal(prov_chat_op_model(PROV_VERTEX, "claude-x", 1),
	    OP_MESSAGES);
	assert_int_equal(prov_chat_op_model(PROV_VERTEX, "gemini-x", 1),
	    OP_GEM_STREAM);
	/* Other providers: their own row, whatever the name. */
	assert_int_equal(prov_dialect_model(PROV_ANTHROPIC, "claude-x"),
	    DIA_ANTHROPIC);
	assert_int_equal(prov_dialect_model(PROV_GEMINI, "claude-x"),
	    DIA_GEMINI);
	assert_true(prov_can_model(PROV_GEMINI, NULL, OP_GEM_EMBED));
	assert_int_equal(prov_dialect_model(PROV_COUNT, "x"), DIA_COUNT);
}

static int
m(const char *pat, const char *path, char *star)
{
	return gw_route_match(pat, path, strlen(path), star, 64);
}

static void
test_route_match(void **state)
{
	char star[64];
	char small[8];
	const char *gen = "/v1beta/models/*:generateContent";

	(void)state;
	assert_true(m(gen, "/v1beta/models/gemini-2.5-flash:generateContent",
	    star));
	assert_string_equal(star, "gemini-2.5-flash");
	/* The suffix must end the segment; the model is not empty. */
	assert_false(m(gen, "/v1beta/models/:generateContent", star));
	assert_false(m(gen, "/v1beta/models/g:generateContentX", star));
	assert_false(m(gen, "/v1beta/models/g:generateContent/x", star));
	assert_false(m(gen, "/v1beta/models/g:streamGenerateContent", star) &&
	    strcmp(star, "g:stream") != 0);
	assert_false(m(gen, "/v1beta/models/g", star));
	assert_false(m(gen, "/v1beta/models/a/b:generateContent", star));
	/* The last ':' before the suffix belongs to the model. */
	assert_true(m(gen, "/v1beta/models/a:b:generateContent", star));
	assert_string_equal(star, "a:b");
	/* A whole-segment '*' as before. */
	assert_true(m("/openai/deployments/*/embeddings",
	    "/openai/deployments/dep-1/embeddings", star));
	assert_string_equal(star, "dep-1");
	assert_false(m("/openai/deployments/*/embeddings",
	    "/openai/deployments//embeddings", star));
	assert_true(m("/v1/x/*", "/v1/x/abc", star));
	assert_false(m("/v1/x/*", "/v1/x/abc/", star));
	/* Too long for the capture: no match. */
	assert_false(gw_route_match(gen, "/v1beta/models/0123456789:"
	    "generateContent", 40, small, sizeof(small)));
	/* The route table finds the Gemini rows. */
	assert_non_null(gw_route_find("POST", 4, "/v1beta/models/m:countTokens",
	    28, star, sizeof(star)));
	assert_string_equal(star, "m");
	assert_null(gw_route_find("POST", 4, "/v1beta/models/m:deleteModel",
	    28, star, sizeof(star)));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_jwt_verifies),
		cmocka_unit_test(test_sa_refusals),
		cmocka_unit_test(test_token_cache),
		cmocka_unit_test(test_conf_vertex),
		cmocka_unit_test(test_adapters),
		cmocka_unit_test(test_prov_publishers),
		cmocka_unit_test(test_route_match),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
