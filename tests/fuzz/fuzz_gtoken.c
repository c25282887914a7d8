/*
 * tests/fuzz/fuzz_gtoken: libFuzzer target for agent/ag_token's inputs
 * from outside: a service-account JSON file (ag_sa_parse, then an
 * assertion signed with what it accepted) and the token endpoint's answer
 * (ag_tok_answer).  The first input byte picks which, and for an answer
 * the HTTP status (200 when even); the rest is the payload.  Checks: a
 * refused file leaves no key and says why; an accepted one signs a JWT of
 * three base64url segments; an answer either caches a printable token
 * with the use/refresh times in order, or fails the cache with a reason.
 *
 * Built with -DFUZZ_SEEDGEN it becomes the seed generator:
 * `fuzz_gtoken-seedgen DIR` writes the seeds of tests/fuzz/corpus/gtoken/.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/ag_token.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
die(const char *what)
{
	fprintf(stderr, "fuzz_gtoken: %s\n", what);
	abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *p = (const char *)data + 1;
	size_t n;
	char err[256];

	if (size < 1)
		return 0;
	n = size - 1;
	err[0] = '\0';
	if (data[0] & 1) {
		struct ag_tok t;
		long status = data[0] & 2 ? 400 + (data[0] >> 2) : 200;
		int rc;

		memset(&t, 0, sizeof(t));
		rc = ag_tok_answer(&t, 1000, status, p, n);
		if (rc == 0) {
			if (t.token[0] == '\0' || t.refresh_ms <= 1000 ||
			    t.use_until_ms <= t.refresh_ms || t.failed)
				die("a cached token with bad times");
			for (const char *c = t.token; *c; c++)
				if (*c <= 0x20 || *c >= 0x7f)
					die("a token that cannot go in a header");
			if (ag_tok_state(&t, 1000) != AG_TOK_VALID)
				die("a fresh token is not valid");
		} else if (rc != 1 || t.reason[0] == '\0' || t.token[0] != '\0' ||
		    ag_tok_state(&t, 1000) != AG_TOK_FAILED)
			die("a failed answer without a reason or a failed state");
		return 0;
	}
	{
		struct ag_sa sa;
		char *jwt, *d1, *d2;

		if (ag_sa_parse(p, n, &sa, err, sizeof(err)) != 0) {
			if (sa.key != NULL || err[0] == '\0')
				die("refused without a reason, or a key kept");
			return 0;
		}
		if ((jwt = ag_jwt_make(&sa, 1700000000, err, sizeof(err))) ==
		    NULL)
			die("an accepted service account cannot sign");
		if ((d1 = strchr(jwt, '.')) == NULL ||
		    (d2 = strchr(d1 + 1, '.')) == NULL ||
		    strchr(d2 + 1, '.') != NULL ||
		    strspn(jwt, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstu"
		    "vwxyz0123456789-_.") != strlen(jwt))
			die("not a JWT");
		free(jwt);
		ag_sa_free(&sa);
	}
	return 0;
}

#ifdef FUZZ_SEEDGEN
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <jansson.h>

static void
seed(const char *dir, const char *name, int flag, const char *body)
{
	char path[512];
	FILE *fp;
	unsigned char f = (unsigned char)flag;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if ((fp = fopen(path, "wb")) == NULL ||
	    fwrite(&f, 1, 1, fp) != 1 ||
	    fwrite(body, 1, strlen(body), fp) != strlen(body) || fclose(fp))
		die("cannot write a seed");
}

int
main(int argc, char **argv)
{
	EVP_PKEY *k;
	BIO *b;
	char *pem, *doc;
	long len;
	json_t *o;

	if (argc != 2)
		return 2;
	k = EVP_RSA_gen(2048);
	b = BIO_new(BIO_s_mem());
	PEM_write_bio_PrivateKey(b, k, NULL, NULL, 0, NULL, NULL);
	len = BIO_get_mem_data(b, &pem);
	o = json_pack("{s:s, s:s%, s:s, s:s}", "type", "service_account",
	    "private_key", pem, (size_t)len, "client_email",
	    "a@p.iam.gserviceaccount.com", "token_uri", AG_SA_TOKEN_URI);
	doc = json_dumps(o, JSON_COMPACT);
	seed(argv[1], "sa", 0, doc);
	seed(argv[1], "sa-bad-uri", 0, "{\"type\":\"service_account\","
	    "\"client_email\":\"a@b\",\"private_key\":\"x\",\"token_uri\":"
	    "\"https://example.test/token\"}");
	seed(argv[1], "answer-ok", 1, "{\"access_token\":\"ya29.x\","
	    "\"expires_in\":3599,\"token_type\":\"Bearer\"}");
	seed(argv[1], "answer-refused", 3, "{\"error\":\"invalid_grant\","
	    "\"error_description\":\"Invalid JWT Signature.\"}");
	free(doc);
	json_decref(o);
	BIO_free(b);
	EVP_PKEY_free(k);
	return 0;
}
#endif
