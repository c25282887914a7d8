/*
 * Unit tests of the user port's HTTP/1.1 parser (gateway/gw_h1p): heads,
 * the framing decisions of RFC 9112 (smuggling shapes refused), limits,
 * persistence, and the chunked body decoder fed in every split.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>
#include "gateway/gw_h1p.h"

static int
parse(const char *s, struct h1_head *h)
{
	const char *why;

	return h1_parse_head(s, strlen(s), 32768, h, &why);
}

static void
test_simple(void **state)
{
	struct h1_head h;
	const char *s = "POST /v1/chat/completions?a=1 HTTP/1.1\r\nHost: x\r\n"
	    "Content-Length: 12\r\nX-Api-Key:  sk-1 \r\n\r\nbody";
	size_t vlen;
	const char *v;

	assert_int_equal(parse(s, &h), 1);
	assert_int_equal(h.head_len, strlen(s) - 4);
	assert_int_equal(h.method.len, 4);
	assert_memory_equal(s + h.path.off, "/v1/chat/completions", h.path.len);
	assert_memory_equal(s + h.query.off, "a=1", h.query.len);
	assert_int_equal(h.content_length, 12);
	assert_int_equal(h.chunked, 0);
	assert_int_equal(h.keep_alive, 1);
	assert_int_equal(h.minor, 1);
	v = h1_field(s, &h, "x-api-key", &vlen);
	assert_non_null(v);
	assert_int_equal(vlen, 4);
	assert_memory_equal(v, "sk-1", 4);
	assert_null(h1_field(s, &h, "authorization", &vlen));
}

static void
test_incomplete(void **state)
{
	struct h1_head h;
	const char *s = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";

	for (size_t n = 0; n < strlen(s); n++) {
		const char *why;
		assert_int_equal(h1_parse_head(s, n, 32768, &h, &why), 0);
	}
}

static void
test_framing_refused(void **state)
{
	static const struct { const char *head; int status; } cases[] = {
		{ "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n"
		  "Transfer-Encoding: chunked\r\n\r\n", -400 },
		{ "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
		  "Content-Length: 4\r\n\r\n", -400 },
		{ "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n"
		  "Content-Length: 4\r\n\r\n", -400 },
		{ "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n", -400 },
		{ "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1,2\r\n\r\n", -400 },
		{ "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: +4\r\n\r\n", -400 },
		{ "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: "
		  "99999999999999999999\r\n\r\n", -400 },
		{ "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n"
		  "\r\n", -501 },
		{ "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, gzip\r\n"
		  "\r\n", -400 },
		{ "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
		  "Transfer-Encoding: chunked\r\n\r\n", -400 },
		{ "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", -400 },
		{ "GET / HTTP/1.1\r\n\r\n", -400 },			/* no Host */
		{ "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", -400 },
		{ "GET / HTTP/1.1\r\nHost: x\r\nX-A : b\r\n\r\n", -400 },
		{ "GET / HTTP/1.1\r\nHost: x\r\nX-A: b\r\n c\r\n\r\n", -400 },
		{ "GET / HTTP/1.1\r\nHost: x\r\nX-A: b\rc\r\n\r\n", -400 },
		{ "GET / HTTP/1.1\r\nHost: x\r\nX-A: b\001\r\n\r\n", -400 },
		{ "GET / HTTP/2.0\r\nHost: x\r\n\r\n", -505 },
		{ "GET / HTTP/1.1 \r\nHost: x\r\n\r\n", -400 },
		{ "GET http://x/ HTTP/1.1\r\nHost: x\r\n\r\n", -400 },
		{ "GET  / HTTP/1.1\r\nHost: x\r\n\r\n", -400 },
		{ "G(T / HTTP/1.1\r\nHost: x\r\n\r\n", -400 },
	};
	struct h1_head h;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int rc = parse(cases[i].head, &h);
		if (rc != cases[i].status)
			fail_msg("case %zu: %d, want %d", i, rc, cases[i].status);
	}
}

static void
test_limits(void **state)
{
	static char buf[200000];
	struct h1_head h;
	const char *why;
	size_t n;

	n = (size_t)snprintf(buf, sizeof(buf), "GET /x HTTP/1.1\r\nHost: x\r\nX: ");
	memset(buf + n, 'a', 100000);
	n += 100000;
	/* Over the limit, with or without the end of the head. */
	assert_int_equal(h1_parse_head(buf, n, 32768, &h, &why), -431);
	memcpy(buf + n, "\r\n\r\n", 4);
	assert_int_equal(h1_parse_head(buf, n + 4, 32768, &h, &why), -431);
	n = (size_t)snprintf(buf, sizeof(buf), "GET /x HTTP/1.1\r\nHost: x\r\n");
	for (int i = 0; i < 200; i++)
		n += (size_t)snprintf(buf + n, sizeof(buf) - n, "X-%d: y\r\n", i);
	n += (size_t)snprintf(buf + n, sizeof(buf) - n, "\r\n");
	assert_int_equal(h1_parse_head(buf, n, 32768, &h, &why), -431);
	n = (size_t)snprintf(buf, sizeof(buf), "GET /");
	memset(buf + n, 'a', 9000);
	n += 9000;
	assert_int_equal(h1_parse_head(buf, n, 32768, &h, &why), -414);
}

static void
test_persistence(void **state)
{
	struct h1_head h;

	assert_int_equal(parse("GET / HTTP/1.0\r\n\r\n", &h), 1);
	assert_int_equal(h.keep_alive, 0);
	assert_int_equal(parse("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
	    &h), 1);
	assert_int_equal(h.keep_alive, 1);
	assert_int_equal(parse("GET / HTTP/1.1\r\nHost: x\r\nConnection: "
	    "keep-alive, close\r\n\r\n", &h), 1);
	assert_int_equal(h.keep_alive, 0);
	assert_int_equal(parse("GET / HTTP/1.1\nHost: x\n\n", &h), 1);
	assert_int_equal(h.keep_alive, 1);
	assert_int_equal(parse("POST / HTTP/1.1\r\nHost: x\r\nExpect: "
	    "100-continue\r\nUpgrade: websocket\r\nTransfer-Encoding: Chunked"
	    "\r\n\r\n", &h), 1);
	assert_int_equal(h.expect_continue, 1);
	assert_int_equal(h.upgrade, 1);
	assert_int_equal(h.chunked, 1);
	assert_int_equal(h.content_length, -1);
}

/* Decode a chunked body that arrives `step` bytes at a time: 0 done
 * (*rest: bytes after it), 1 unfinished, -1 malformed. */
static int
decode(const char *in, size_t len, size_t step, char *out, size_t *outlen,
    size_t *rest)
{
	struct h1_chunked c;
	size_t off = 0, have = 0, o = 0;

	memset(&c, 0, sizeof(c));
	*outlen = 0;
	while (have < len) {
		have = have + step > len ? len : have + step;
		for (;;) {
			size_t used;
			const char *d;
			size_t dl;
			int rc = h1_chunked_step(&c, in + off, have - off, &used,
			    &d, &dl);
			if (rc < 0)
				return -1;
			if (rc == 1) {
				memcpy(out + o, d, dl);
				o += dl;
			}
			off += used;
			*outlen = o;
			if (rc == 2) {
				*rest = len - off;
				return 0;
			}
			if (rc == 0)
				break;
		}
	}
	return 1;
}

static void
test_chunked(void **state)
{
	const char *body = "5\r\nhello\r\n6;ext=\"v\"\r\n world\r\n0\r\n"
	    "X-Trailer: 1\r\n\r\nNEXT";
	char out[64];
	size_t n, rest;

	for (size_t step = 1; step <= strlen(body); step++) {
		memset(out, 0, sizeof(out));
		assert_int_equal(decode(body, strlen(body), step, out, &n, &rest), 0);
		assert_int_equal(n, 11);
		assert_memory_equal(out, "hello world", 11);
		assert_int_equal(rest, 4);	/* "NEXT" is the next request's */
	}
	assert_int_equal(decode("zz\r\n", 4, 4, out, &n, &rest), -1);
	assert_int_equal(decode("5\r\nhelloXX", 10, 10, out, &n, &rest), -1);
	assert_int_equal(decode("ffffffffffffffffff\r\n", 20, 20, out, &n, &rest),
	    -1);
	assert_int_equal(decode("\r\n", 2, 2, out, &n, &rest), -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_simple),
		cmocka_unit_test(test_incomplete),
		cmocka_unit_test(test_framing_refused),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_persistence),
		cmocka_unit_test(test_chunked),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
