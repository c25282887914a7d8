/*
 * tests/fuzz/fuzz_sigv4: libFuzzer target for agent/ag_sigv4's
 * canonicalisation.  The input is split at '\n' into a method, a path, a
 * query and up to AG_SIGV4_MAX_HEADERS "name:value" headers (the rest is
 * the payload): whatever the bytes, canonicalisation and signing never
 * crash, give the same result twice, agree with each other (the
 * signature in the Authorization header is the one returned), and an
 * accepted canonical request holds no byte the headers could not carry.
 *
 * Built with -DFUZZ_SEEDGEN instead of -fsanitize=fuzzer it becomes the
 * seed generator: `fuzz_sigv4-seedgen DIR` writes a few requests.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/ag_sigv4.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

_Noreturn static void
die(const char *why)
{
	fprintf(stderr, "fuzz_sigv4: %s\n", why);
	abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *copy, *line[3 + AG_SIGV4_MAX_HEADERS], *p, *end;
	struct ag_sigv4_hdr h[AG_SIGV4_MAX_HEADERS];
	struct ag_sigv4_req rq;
	char hash[AG_SIGV4_HEX_LEN], s1[AG_SIGV4_HEX_LEN], s2[AG_SIGV4_HEX_LEN];
	char *c1, *c2, a1[1024], a2[1024];
	int nl = 0, nh = 0, r1, r2;
	long n1, n2;

	if ((copy = malloc(size + 1)) == NULL)
		return 0;
	memcpy(copy, data, size);
	copy[size] = '\0';
	end = copy + strlen(copy);	/* a NUL ends the text part */
	for (p = copy; nl < (int)(sizeof(line) / sizeof(line[0])) && p < end; ) {
		char *e = strchr(p, '\n');
		line[nl++] = p;
		if (e == NULL) {
			p = end;
			break;
		}
		*e = '\0';
		p = e + 1;
	}
	for (int i = 3; i < nl; i++) {
		char *colon = strchr(line[i], ':');
		if (colon == NULL)
			continue;
		*colon = '\0';
		h[nh].name = line[i];
		h[nh++].value = colon + 1;
	}
	ag_sigv4_sha256_hex(p, (size_t)(end - p), hash);
	rq = (struct ag_sigv4_req){ .method = nl > 0 ? line[0] : "POST",
	    .path = nl > 1 ? line[1] : "/", .query = nl > 2 ? line[2] : NULL,
	    .hdrs = h, .nhdrs = nh, .payload_hash = hash,
	    .amz_date = "20150830T123600Z", .region = "us-east-1",
	    .service = "bedrock" };
	c1 = malloc(AG_SIGV4_MAX_CANON);
	c2 = malloc(AG_SIGV4_MAX_CANON);
	if (c1 == NULL || c2 == NULL)
		die("oom");
	n1 = ag_sigv4_canonical(&rq, c1, AG_SIGV4_MAX_CANON);
	n2 = ag_sigv4_canonical(&rq, c2, AG_SIGV4_MAX_CANON);
	if (n1 != n2 || (n1 >= 0 && memcmp(c1, c2, (size_t)n1 + 1) != 0))
		die("canonical request not deterministic");
	if (n1 >= 0) {
		if ((size_t)n1 != strlen(c1))
			die("length differs from the text");
		for (long i = 0; i < n1; i++)
			if (c1[i] == '\r' || c1[i] == '\0')
				die("CR or NUL in the canonical request");
	}
	r1 = ag_sigv4_sign(&rq, "AKIDEXAMPLE",
	    "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", s1, a1, sizeof(a1));
	r2 = ag_sigv4_sign(&rq, "AKIDEXAMPLE",
	    "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", s2, a2, sizeof(a2));
	if (r1 != r2 || (r1 == 0 && (strcmp(s1, s2) != 0 ||
	    strcmp(a1, a2) != 0)))
		die("signature not deterministic");
	if (r1 == 0) {
		const char *sig = strstr(a1, "Signature=");
		if (n1 < 0)
			die("signed what it could not canonicalise");
		if (sig == NULL || strcmp(sig + 10, s1) != 0 ||
		    strlen(s1) != 64)
			die("Authorization does not carry the signature");
		for (const char *q = a1; *q != '\0'; q++)
			if ((unsigned char)*q < 0x20 || *q == 0x7f)
				die("control byte in the Authorization header");
	}
	free(c1);
	free(c2);
	free(copy);
	return 0;
}

#ifdef FUZZ_SEEDGEN
static void
seed(const char *dir, const char *name, const char *text)
{
	char path[512];
	FILE *fp;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if ((fp = fopen(path, "wb")) == NULL ||
	    fwrite(text, 1, strlen(text), fp) != strlen(text) || fclose(fp) != 0)
		die("cannot write a seed");
	LLVMFuzzerTestOneInput((const uint8_t *)text, strlen(text));
}

int
main(int argc, char **argv)
{
	if (argc != 2)
		die("usage: fuzz_sigv4-seedgen DIR");
	seed(argv[1], "converse", "POST\n/model/amazon.nova-lite-v1%3A0/"
	    "converse\n\nhost:bedrock-runtime.us-east-1.amazonaws.com\n"
	    "x-amz-date:20150830T123600Z\n{\"messages\":[]}");
	seed(argv[1], "query", "GET\n/a b/\xe1\x88\xb4\nb=2&a=1&%E1%88%B4=x&"
	    "c\nhost:example.amazonaws.com\nMy-Header1:  a   b  \n"
	    "my-header1:c\n");
	seed(argv[1], "token", "POST\n/model/anthropic.claude-3-5-haiku-"
	    "20241022-v1%3A0/invoke-with-response-stream\n\nhost:x\n"
	    "x-amz-security-token:abc/+=\n");
	return 0;
}
#endif
