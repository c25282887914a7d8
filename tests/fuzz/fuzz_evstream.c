/*
 * tests/fuzz/fuzz_evstream: libFuzzer target for the AWS event-stream
 * decoder (lib/evstream).  The first input byte picks a cut; the rest is
 * decoded whole (one feed) and in two pieces split there, and in 7-byte
 * pieces: the three must yield the same messages and fail alike.  Every
 * message decoded must re-encode to exactly the bytes it came from (its
 * CRCs recomputed by the encoder), and every header lie inside it.
 *
 * Built with -DFUZZ_SEEDGEN instead of -fsanitize=fuzzer it becomes the
 * seed generator: `fuzz_evstream-seedgen DIR` writes a few valid streams
 * (ConverseStream events, an exception, a Claude chunk) into DIR.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/evstream.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAXMSG	64

_Noreturn static void
die(const char *why)
{
	fprintf(stderr, "fuzz_evstream: %s\n", why);
	abort();
}

struct seen {
	int n, failed;
	size_t off[MAXMSG], len[MAXMSG];
};

/* Decode p[0..n) fed in pieces of `step` bytes (0: one piece, or cut at
 * `cut` when cut > 0). */
static void
run(const uint8_t *p, size_t n, size_t step, size_t cut, struct seen *s)
{
	struct evs d;
	struct evs_msg m;
	size_t fed = 0, consumed = 0;
	int rc;

	memset(s, 0, sizeof(*s));
	evs_init(&d, 1u << 20);
	while (fed < n || fed == 0) {
		size_t k = step > 0 ? step : (cut > 0 && fed < cut ? cut : n - fed);
		if (k > n - fed)
			k = n - fed;
		if (evs_feed(&d, p + fed, k) != 0) {
			s->failed = 1;
			break;
		}
		fed += k;
		while ((rc = evs_next(&d, &m)) == 1) {
			unsigned char *re;
			size_t rl;

			if (s->n == MAXMSG)
				break;
			if (m.total_len > n - consumed)
				die("message longer than the input");
			if (m.payload < d.buf || m.payload + m.payload_len >
			    d.buf + d.len)
				die("payload outside the buffer");
			for (int i = 0; i < m.nheaders; i++)
				if ((const unsigned char *)m.h[i].name < d.buf ||
				    (const unsigned char *)m.h[i].name +
				    m.h[i].name_len > d.buf + d.len)
					die("header outside the buffer");
			rl = evs_encode(NULL, 0, m.h, m.nheaders, m.payload,
			    m.payload_len);
			if (rl != m.total_len)
				die("re-encoded length differs");
			if ((re = malloc(rl)) == NULL)
				die("oom");
			if (evs_encode(re, rl, m.h, m.nheaders, m.payload,
			    m.payload_len) != rl || memcmp(re, p + consumed,
			    rl) != 0)
				die("re-encoded bytes differ");
			free(re);
			s->off[s->n] = consumed;
			s->len[s->n++] = m.total_len;
			consumed += m.total_len;
		}
		if (rc < 0) {
			if (strlen(evs_error(&d)) == 0)
				die("failure without a reason");
			s->failed = 1;
			break;
		}
		if (s->n == MAXMSG || n == 0)
			break;
	}
	evs_free(&d);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct seen a, b, c;

	if (size < 1)
		return 0;
	run(data + 1, size - 1, 0, 0, &a);
	run(data + 1, size - 1, 0, data[0] % (size), &b);
	run(data + 1, size - 1, 7, 0, &c);
	if (a.n != b.n || a.n != c.n ||
	    memcmp(a.len, b.len, sizeof(a.len)) != 0 ||
	    memcmp(a.len, c.len, sizeof(a.len)) != 0)
		die("cuts give other messages");
	if (a.n < MAXMSG && (a.failed != b.failed || a.failed != c.failed))
		die("cuts fail differently");
	return 0;
}

#ifdef FUZZ_SEEDGEN
static void
seed(const char *dir, const char *name, const unsigned char *p, size_t n)
{
	char path[512];
	FILE *fp;
	unsigned char one = 5;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if ((fp = fopen(path, "wb")) == NULL || fwrite(&one, 1, 1, fp) != 1 ||
	    fwrite(p, 1, n, fp) != n || fclose(fp) != 0)
		die("cannot write a seed");
}

static size_t
ev(unsigned char *o, const char *type, int exc, const char *json)
{
	return evs_encode_event(o, 4096, type, exc, json, strlen(json));
}

int
main(int argc, char **argv)
{
	unsigned char buf[16384];
	size_t n = 0;

	if (argc != 2)
		die("usage: fuzz_evstream-seedgen DIR");
	n += ev(buf + n, "messageStart", 0, "{\"role\":\"assistant\"}");
	n += ev(buf + n, "contentBlockDelta", 0, "{\"delta\":{\"text\":\"Hi\"},"
	    "\"contentBlockIndex\":0}");
	n += ev(buf + n, "contentBlockStop", 0, "{\"contentBlockIndex\":0}");
	n += ev(buf + n, "messageStop", 0, "{\"stopReason\":\"end_turn\"}");
	n += ev(buf + n, "metadata", 0, "{\"usage\":{\"inputTokens\":5,"
	    "\"outputTokens\":1,\"totalTokens\":6},\"metrics\":{\"latencyMs\":1}}");
	seed(argv[1], "converse", buf, n);
	n = ev(buf, "throttlingException", 1, "{\"message\":\"slow down\"}");
	seed(argv[1], "exception", buf, n);
	n = ev(buf, "chunk", 0, "{\"bytes\":\"eyJ0eXBlIjoibWVzc2FnZV9zdG9wIn0=\"}");
	seed(argv[1], "chunk", buf, n);
	return 0;
}
#endif
