/*
 * tests/fuzz/fuzz_h1p: libFuzzer target for what a stranger sends to the
 * user port first — the HTTP/1.1 head parser and the chunked body decoder
 * (gateway/gw_h1p), then the JSON body parse the gateway does.  Checks:
 * every span of an accepted head lies inside it; the head parsed again
 * from exactly its own bytes is the same head; framing is never both
 * chunked and Content-Length; a chunked body decodes to the same bytes
 * and the same end whether it arrives at once or a byte at a time.
 *
 * Built with -DFUZZ_SEEDGEN it writes its seeds into DIR.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>

#include "gateway/gw_h1p.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

_Noreturn static void
die(const char *why)
{
	fprintf(stderr, "fuzz_h1p: %s\n", why);
	abort();
}

static void
span_in(struct h1_span s, size_t len)
{
	if ((size_t)s.off + s.len > len)
		die("a span lies outside the head");
}

/* Decode with pieces of `step` bytes; returns the end state. */
static int
decode(const char *in, size_t len, size_t step, char *out, size_t *olen,
    size_t *used_total)
{
	struct h1_chunked c;
	size_t off = 0, have = 0;

	memset(&c, 0, sizeof(c));
	*olen = 0;
	while (have < len) {
		have = have + step > len ? len : have + step;
		for (;;) {
			size_t used;
			const char *d;
			size_t dl;
			int rc = h1_chunked_step(&c, in + off, have - off, &used,
			    &d, &dl);
			if (used > have - off)
				die("chunked decoder used more than it was given");
			if (rc < 0) {
				*used_total = off;
				return -1;
			}
			if (rc == 1) {
				if (d < in + off || d + dl > in + off + used)
					die("chunk data outside the input");
				memcpy(out + *olen, d, dl);
				*olen += dl;
			}
			off += used;
			if (rc == 2) {
				*used_total = off;
				return 2;
			}
			if (rc == 0)
				break;
		}
	}
	*used_total = off;
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *buf = (const char *)data, *why;
	struct h1_head h, h2;
	int rc;

	rc = h1_parse_head(buf, size, 4096, &h, &why);
	if (rc < 0 && (why == NULL || why[0] == '\0'))
		die("a refusal without a reason");
	if (rc != 1)
		return 0;
	if (h.head_len > size || h.head_len > 4096)
		die("head_len past the input or the limit");
	span_in(h.method, h.head_len);
	span_in(h.target, h.head_len);
	span_in(h.path, h.head_len);
	span_in(h.query, h.head_len);
	for (int i = 0; i < h.nfield; i++) {
		span_in(h.field[i].name, h.head_len);
		span_in(h.field[i].value, h.head_len);
	}
	if (h.chunked && h.content_length >= 0)
		die("both chunked and Content-Length");
	if (h.method.len == 0 || h.path.len == 0 || buf[h.path.off] != '/')
		die("empty method or path");
	if (h1_parse_head(buf, h.head_len, 4096, &h2, &why) != 1 ||
	    h2.head_len != h.head_len || h2.nfield != h.nfield ||
	    h2.content_length != h.content_length || h2.chunked != h.chunked)
		die("the head parsed again from its own bytes differs");
	if (h.chunked) {
		const char *rest = buf + h.head_len;
		size_t n = size - h.head_len, l1, l2, u1, u2;
		char *o1 = malloc(n + 1), *o2 = malloc(n + 1);
		int r1, r2;

		if (o1 == NULL || o2 == NULL)
			die("out of memory");
		r1 = decode(rest, n, n ? n : 1, o1, &l1, &u1);
		r2 = decode(rest, n, 1, o2, &l2, &u2);
		if (r1 != r2 || (r1 == 2 && (l1 != l2 || u1 != u2 ||
		    memcmp(o1, o2, l1) != 0)))
			die("chunked decoding depends on how bytes arrive");
		if (r1 == 2)
			json_decref(json_loadb(o1, l1, JSON_REJECT_DUPLICATES, NULL));
		free(o1);
		free(o2);
	} else if (h.content_length > 0) {
		size_t n = size - h.head_len;
		if ((uint64_t)h.content_length < n)
			n = (size_t)h.content_length;
		json_decref(json_loadb(buf + h.head_len, n, JSON_REJECT_DUPLICATES,
		    NULL));
	}
	return 0;
}

#ifdef FUZZ_SEEDGEN
int
main(int argc, char **argv)
{
	static const char *const seeds[] = {
		"GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n",
		"POST /v1/chat/completions HTTP/1.1\r\nHost: a\r\nAuthorization: "
		"Bearer sk-x\r\nContent-Length: 17\r\n\r\n{\"model\":\"gpt-4o\"}",
		"POST /v1/messages HTTP/1.1\r\nHost: a\r\nx-api-key: k\r\n"
		"Transfer-Encoding: chunked\r\n\r\n5\r\n{\"a\":\r\n2;x=y\r\n1}\r\n"
		"0\r\nT: v\r\n\r\n",
		"POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\n{}POST /x "
		"HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\n{}",
		"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\n"
		"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
		"GET /v1/models?key=abc&x=%41 HTTP/1.0\r\nConnection: keep-alive\n\n",
	};
	char path[512];

	if (argc != 2) {
		fprintf(stderr, "usage: %s DIR\n", argv[0]);
		return 2;
	}
	for (size_t i = 0; i < sizeof(seeds) / sizeof(seeds[0]); i++) {
		FILE *fp;
		snprintf(path, sizeof(path), "%s/seed%zu", argv[1], i);
		LLVMFuzzerTestOneInput((const uint8_t *)seeds[i], strlen(seeds[i]));
		if ((fp = fopen(path, "wb")) == NULL ||
		    fwrite(seeds[i], 1, strlen(seeds[i]), fp) != strlen(seeds[i]) ||
		    fclose(fp) != 0)
			die("cannot write a seed");
	}
	return 0;
}
#endif
