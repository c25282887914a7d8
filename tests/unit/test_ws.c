/*
 * tests/unit/test_ws: the gateway's RFC 6455 codec (gateway/gw_ws): the
 * handshake accept of RFC 6455 section 1.3, masked frames of every length
 * encoding, fragmentation, control frames between fragments, refusals
 * (unmasked, reserved bits, non-minimal lengths, oversized control
 * frames, orphan continuations, too big, bad UTF-8, bad close codes), and
 * frames fed a byte at a time.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include "gateway/gw_ws.h"

/* A client frame: fin, op, masked with a fixed key. */
static size_t
mk(unsigned char *out, int fin, int op, const void *p, size_t n)
{
	static const unsigned char key[4] = { 0x37, 0xfa, 0x21, 0x3d };
	size_t h = gw_ws_header(out, (enum gw_ws_op)op, n);

	if (!fin)
		out[0] &= 0x7f;
	out[1] |= 0x80;
	memcpy(out + h, key, 4);
	for (size_t i = 0; i < n; i++)
		out[h + 4 + i] = ((const unsigned char *)p)[i] ^ key[i & 3];
	return h + 4 + n;
}

static void
test_accept(void **state)
{
	char out[GW_WS_ACCEPT_LEN + 1];

	(void)state;
	assert_int_equal(gw_ws_accept("dGhlIHNhbXBsZSBub25jZQ==", 24, out), 0);
	assert_string_equal(out, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
	assert_int_equal(gw_ws_accept("dGhlIHNhbXBsZSBub25jZQ", 22, out), -1);
	assert_int_equal(gw_ws_accept("dGhlIHNhbXBsZSBub25j!Q==", 24, out), -1);
	assert_int_equal(gw_ws_accept("dGhlIHNhbXBsZSBub25jZQAA", 24, out), -1);
}

static void
test_lengths(void **state)
{
	static const size_t sizes[] = { 0, 1, 125, 126, 65535, 65536, 200000 };
	struct gw_ws_in in = { 0 };
	struct gw_ws_event ev;
	size_t used;
	unsigned char *p = malloc(200000), *f = malloc(200000 + 14);

	(void)state;
	for (size_t i = 0; i < 200000; i++)
		p[i] = (unsigned char)(i * 7);
	for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
		size_t n = mk(f, 1, GW_WS_BIN, p, sizes[k]);

		/* Every proper prefix asks for more and consumes nothing. */
		for (size_t cut = 0; cut < n; cut += (cut < 20 ? 1 : 4099)) {
			assert_int_equal(gw_ws_parse(&in, f, cut, &used, &ev), 0);
			assert_int_equal(used, 0);
		}
		assert_int_equal(gw_ws_parse(&in, f, n, &used, &ev), 1);
		assert_int_equal(used, n);
		assert_int_equal(ev.op, GW_WS_BIN);
		assert_int_equal(ev.len, sizes[k]);
		if (sizes[k] > 0)
			assert_memory_equal(ev.data, p, sizes[k]);
	}
	gw_ws_in_free(&in);
	free(p);
	free(f);
}

static void
test_fragments(void **state)
{
	struct gw_ws_in in = { 0 };
	struct gw_ws_event ev;
	unsigned char buf[256];
	size_t n = 0, used, off = 0;

	(void)state;
	n += mk(buf + n, 0, GW_WS_TEXT, "{\"type\":", 8);
	n += mk(buf + n, 1, GW_WS_PING, "hi", 2);
	n += mk(buf + n, 1, GW_WS_CONT, "\"x\"}", 4);
	assert_int_equal(gw_ws_parse(&in, buf, n, &used, &ev), 0);
	off += used;
	assert_int_equal(gw_ws_parse(&in, buf + off, n - off, &used, &ev), 1);
	assert_int_equal(ev.op, GW_WS_PING);
	assert_memory_equal(ev.data, "hi", 2);
	off += used;
	assert_int_equal(gw_ws_parse(&in, buf + off, n - off, &used, &ev), 1);
	off += used;
	assert_int_equal(off, n);
	assert_int_equal(ev.op, GW_WS_TEXT);
	assert_int_equal(ev.len, 12);
	assert_memory_equal(ev.data, "{\"type\":\"x\"}", 12);
	/* A close with a code and a reason. */
	n = mk(buf, 1, GW_WS_CLOSE, "\x03\xe8" "bye", 5);
	assert_int_equal(gw_ws_parse(&in, buf, n, &used, &ev), 1);
	assert_int_equal(ev.op, GW_WS_CLOSE);
	assert_int_equal(ev.code, 1000);
	assert_int_equal(ev.len, 3);
	n = mk(buf, 1, GW_WS_CLOSE, "", 0);
	assert_int_equal(gw_ws_parse(&in, buf, n, &used, &ev), 1);
	assert_int_equal(ev.code, 1005);
	gw_ws_in_free(&in);
}

static void
expect_refused(const unsigned char *f, size_t n, uint16_t code, size_t max)
{
	struct gw_ws_in in = { 0 };
	struct gw_ws_event ev;
	size_t used;

	in.max_msg = max;
	assert_int_equal(gw_ws_parse(&in, f, n, &used, &ev), -1);
	assert_int_equal(in.close_code, code);
	gw_ws_in_free(&in);
}

static void
test_refusals(void **state)
{
	unsigned char f[300];
	size_t n;

	(void)state;
	/* Unmasked. */
	n = mk(f, 1, GW_WS_TEXT, "a", 1);
	f[1] &= 0x7f;
	expect_refused(f, n, 1002, 0);
	/* Reserved bit. */
	n = mk(f, 1, GW_WS_TEXT, "a", 1);
	f[0] |= 0x40;
	expect_refused(f, n, 1002, 0);
	/* Unknown opcode. */
	n = mk(f, 1, 3, "a", 1);
	expect_refused(f, n, 1002, 0);
	/* 16-bit length for 5 bytes. */
	memcpy(f, "\x82\xfe\x00\x05", 4);
	expect_refused(f, 4, 1002, 0);
	/* 64-bit length for 300 bytes, and with the top bit set. */
	memcpy(f, "\x82\xff\x00\x00\x00\x00\x00\x00\x01\x2c", 10);
	expect_refused(f, 10, 1002, 0);
	memcpy(f, "\x82\xff\x80\x00\x00\x00\x00\x01\x00\x00", 10);
	expect_refused(f, 10, 1002, 0);
	/* A fragmented ping, a 126-byte ping. */
	n = mk(f, 0, GW_WS_PING, "a", 1);
	expect_refused(f, n, 1002, 0);
	memset(f + 100, 'p', 126);
	n = mk(f, 1, GW_WS_PING, f + 100, 126);
	expect_refused(f, n, 1002, 0);
	/* A continuation with no message. */
	n = mk(f, 1, GW_WS_CONT, "a", 1);
	expect_refused(f, n, 1002, 0);
	/* Too big (refused from the header, before the payload arrives). */
	n = mk(f, 1, GW_WS_BIN, "0123456789", 10);
	expect_refused(f, 2, 1009, 9);
	/* Bad UTF-8 text: an overlong, a surrogate, a truncated sequence. */
	n = mk(f, 1, GW_WS_TEXT, "\xc0\xaf", 2);
	expect_refused(f, n, 1007, 0);
	n = mk(f, 1, GW_WS_TEXT, "\xed\xa0\x80", 3);
	expect_refused(f, n, 1007, 0);
	n = mk(f, 1, GW_WS_TEXT, "ok\xe2\x82", 4);
	expect_refused(f, n, 1007, 0);
	/* Close codes: 1 byte, 1005 sent, 999. */
	n = mk(f, 1, GW_WS_CLOSE, "\x03", 1);
	expect_refused(f, n, 1002, 0);
	n = mk(f, 1, GW_WS_CLOSE, "\x03\xed", 2);
	expect_refused(f, n, 1002, 0);
	n = mk(f, 1, GW_WS_CLOSE, "\x03\xe7", 2);
	expect_refused(f, n, 1002, 0);
	/* A new message inside a fragmented one. */
	n = mk(f, 0, GW_WS_TEXT, "a", 1);
	n += mk(f + n, 1, GW_WS_TEXT, "b", 1);
	{
		struct gw_ws_in in = { 0 };
		struct gw_ws_event ev;
		size_t used;

		assert_int_equal(gw_ws_parse(&in, f, n, &used, &ev), 0);
		assert_int_equal(gw_ws_parse(&in, f + used, n - used, &used,
		    &ev), -1);
		assert_int_equal(in.close_code, 1002);
		gw_ws_in_free(&in);
	}
	/* Valid UTF-8 of every length passes. */
	assert_true(gw_ws_utf8_ok((const unsigned char *)
	    "a\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80", 10));
	assert_false(gw_ws_utf8_ok((const unsigned char *)"\xf4\x90\x80\x80", 4));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_accept),
		cmocka_unit_test(test_lengths),
		cmocka_unit_test(test_fragments),
		cmocka_unit_test(test_refusals),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
