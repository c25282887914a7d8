/*
 * tests/unit/test_evstream: lib/evstream, the AWS event-stream decoder and
 * encoder.  Frames are built by hand here (byte by byte, with a bitwise
 * CRC-32 of this file's own, not the library's) and must decode the same
 * however they are cut; a bad prelude CRC is refused before any length is
 * believed (a frame claiming 4 GiB is refused at 12 bytes), as are a bad
 * message CRC, lengths out of bounds, unknown header types, headers that
 * run past their length; every header type decodes; the encoder's frames
 * are byte-identical to the hand-built ones.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/evstream.h"

/* The reference CRC-32: one bit at a time, straight from the definition
 * (reflected polynomial 0xEDB88320, initial and final XOR all ones). */
static uint32_t
ref_crc(const unsigned char *p, size_t n)
{
	uint32_t c = 0xffffffffu;

	for (size_t i = 0; i < n; i++) {
		c ^= p[i];
		for (int b = 0; b < 8; b++)
			c = (c & 1) ? (c >> 1) ^ 0xedb88320u : c >> 1;
	}
	return ~c;
}

static void
w32(unsigned char *p, uint32_t v)
{
	p[0] = v >> 24; p[1] = v >> 16; p[2] = v >> 8; p[3] = v;
}

/* A frame by hand: raw header bytes hb[0..hn) and payload. */
static size_t
make(unsigned char *out, const unsigned char *hb, size_t hn, const char *pl,
    size_t pn)
{
	size_t total = 16 + hn + pn;

	w32(out, (uint32_t)total);
	w32(out + 4, (uint32_t)hn);
	w32(out + 8, ref_crc(out, 8));
	memcpy(out + 12, hb, hn);
	memcpy(out + 12 + hn, pl, pn);
	w32(out + total - 4, ref_crc(out, total - 4));
	return total;
}

/* Append a string header to hb. */
static size_t
hstr(unsigned char *hb, size_t at, const char *name, const char *val)
{
	size_t nl = strlen(name), vl = strlen(val);

	hb[at++] = (unsigned char)nl;
	memcpy(hb + at, name, nl);
	at += nl;
	hb[at++] = 7;
	hb[at++] = (unsigned char)(vl >> 8);
	hb[at++] = (unsigned char)vl;
	memcpy(hb + at, val, vl);
	return at + vl;
}

static size_t
event_frame(unsigned char *out, const char *type, const char *payload)
{
	unsigned char hb[256];
	size_t n = 0;

	n = hstr(hb, n, ":event-type", type);
	n = hstr(hb, n, ":content-type", "application/json");
	n = hstr(hb, n, ":message-type", "event");
	return make(out, hb, n, payload, strlen(payload));
}

static void
test_crc(void **state)
{
	(void)state;
	assert_int_equal(evs_crc32(0, "123456789", 9), 0xcbf43926u);
	assert_int_equal(ref_crc((const unsigned char *)"123456789", 9),
	    0xcbf43926u);
	/* incremental == whole */
	assert_int_equal(evs_crc32(evs_crc32(0, "12345", 5), "6789", 4),
	    0xcbf43926u);
}

/* Three ConverseStream events, cut at every byte boundary, then one
 * byte at a time: the same three messages come out. */
#define P1 "{\"delta\":{\"text\":\"Hel\"},\"contentBlockIndex\":0}"
#define P2 "{\"delta\":{\"text\":\"lo\"},\"contentBlockIndex\":0}"
#define P3 "{\"usage\":{\"inputTokens\":7,\"outputTokens\":2," \
	"\"totalTokens\":9},\"metrics\":{\"latencyMs\":10}}"

static size_t
three(unsigned char *buf)
{
	size_t n = event_frame(buf, "contentBlockDelta", P1);

	n += event_frame(buf + n, "contentBlockDelta", P2);
	n += event_frame(buf + n, "metadata", P3);
	return n;
}

static void
check_three(struct evs *d, int *seen)
{
	static const char *const types[] = { "contentBlockDelta",
	    "contentBlockDelta", "metadata" };
	static const char *const pls[] = { P1, P2, P3 };
	struct evs_msg m;
	int rc;

	while ((rc = evs_next(d, &m)) == 1) {
		assert_true(*seen < 3);
		assert_true(evs_str_is(&m, ":event-type", types[*seen]));
		assert_true(evs_str_is(&m, ":message-type", "event"));
		assert_int_equal(m.payload_len, strlen(pls[*seen]));
		assert_memory_equal(m.payload, pls[*seen], m.payload_len);
		(*seen)++;
	}
	assert_int_equal(rc, 0);
}

static void
test_every_cut(void **state)
{
	unsigned char buf[1024];
	size_t n = three(buf);

	(void)state;
	for (size_t cut = 0; cut <= n; cut++) {
		struct evs d;
		int seen = 0;

		evs_init(&d, 0);
		assert_int_equal(evs_feed(&d, buf, cut), 0);
		check_three(&d, &seen);
		assert_int_equal(evs_feed(&d, buf + cut, n - cut), 0);
		check_three(&d, &seen);
		assert_int_equal(seen, 3);
		assert_int_equal(evs_pending(&d), 0);
		evs_free(&d);
	}
	{
		struct evs d;
		int seen = 0;

		evs_init(&d, 0);
		for (size_t i = 0; i < n; i++) {
			assert_int_equal(evs_feed(&d, buf + i, 1), 0);
			check_three(&d, &seen);
		}
		assert_int_equal(seen, 3);
		evs_free(&d);
	}
}

static void
expect_fail(const unsigned char *buf, size_t n, const char *why)
{
	struct evs d;
	struct evs_msg m;

	evs_init(&d, 0);
	assert_int_equal(evs_feed(&d, buf, n), 0);
	assert_int_equal(evs_next(&d, &m), -1);
	assert_non_null(strstr(evs_error(&d), why));
	/* sticky */
	assert_int_equal(evs_feed(&d, "x", 1), -1);
	assert_int_equal(evs_next(&d, &m), -1);
	evs_free(&d);
}

static void
test_prelude_crc_first(void **state)
{
	unsigned char buf[256];

	(void)state;
	/* 4 GiB claimed, correct CRC: refused at once for its length, not
	 * waited for. */
	w32(buf, 0xffffffffu);
	w32(buf + 4, 0);
	w32(buf + 8, ref_crc(buf, 8));
	expect_fail(buf, 12, "message length");
	/* the same with a wrong prelude CRC: the CRC is what is reported */
	w32(buf + 8, ref_crc(buf, 8) ^ 1);
	expect_fail(buf, 12, "prelude CRC");
	/* a sane length but a broken prelude CRC: refused at 12 bytes */
	{
		size_t n = event_frame(buf, "x", "{}");
		buf[8] ^= 0x40;
		expect_fail(buf, 12, "prelude CRC");
		(void)n;
	}
}

static void
test_message_crc(void **state)
{
	unsigned char buf[256];
	size_t n = event_frame(buf, "messageStop", "{\"stopReason\":\"end_turn\"}");

	(void)state;
	buf[n - 6] ^= 1;		/* a payload byte */
	expect_fail(buf, n, "message CRC");
	n = event_frame(buf, "messageStop", "{}");
	buf[n - 1] ^= 1;		/* the CRC itself */
	expect_fail(buf, n, "message CRC");
}

static void
test_bounds(void **state)
{
	unsigned char buf[256], hb[8] = { 0 };
	struct evs d;
	struct evs_msg m;

	(void)state;
	/* total < 16 */
	w32(buf, 15);
	w32(buf + 4, 0);
	w32(buf + 8, ref_crc(buf, 8));
	expect_fail(buf, 12, "message length");
	/* headers_len larger than the message leaves room for */
	w32(buf, 20);
	w32(buf + 4, 5);
	w32(buf + 8, ref_crc(buf, 8));
	expect_fail(buf, 12, "headers length");
	/* headers_len over 128 KiB in a message that could hold it */
	w32(buf, 200 * 1024);
	w32(buf + 4, 129 * 1024);
	w32(buf + 8, ref_crc(buf, 8));
	expect_fail(buf, 12, "headers length");
	/* the decoder's own smaller bound */
	evs_init(&d, 64);
	make(buf, hb, 0, "0123456789012345678901234567890123456789012345678",
	    49);			/* 65 bytes */
	assert_int_equal(evs_feed(&d, buf, 12), 0);
	assert_int_equal(evs_next(&d, &m), -1);
	evs_free(&d);
}

static void
test_bad_headers(void **state)
{
	unsigned char buf[256], hb[64];
	size_t n;

	(void)state;
	/* unknown type 10 */
	memcpy(hb, "\x01" "a" "\x0a", 3);
	n = make(buf, hb, 3, "", 0);
	expect_fail(buf, n, "unknown header type");
	/* a string whose length runs past headers_len into the payload */
	memcpy(hb, "\x01" "a" "\x07" "\x00\x09" "abc", 8);
	n = make(buf, hb, 8, "payload!!", 9);
	expect_fail(buf, n, "truncated header");
	/* name length 0 */
	memcpy(hb, "\x00" "\x00", 2);
	n = make(buf, hb, 2, "", 0);
	expect_fail(buf, n, "bad header name");
	/* name runs past the headers */
	memcpy(hb, "\x09" "ab", 3);
	n = make(buf, hb, 3, "", 0);
	expect_fail(buf, n, "bad header name");
	/* an int32 cut short */
	memcpy(hb, "\x01" "i" "\x04" "\x00\x01", 5);
	n = make(buf, hb, 5, "", 0);
	expect_fail(buf, n, "truncated header");
}

static void
test_all_types(void **state)
{
	unsigned char buf[512], hb[256];
	size_t n = 0, f;
	struct evs_msg m;
	char err[96];

	(void)state;
#define NAME(s) do { hb[n++] = sizeof(s) - 1; memcpy(hb + n, s, \
	sizeof(s) - 1); n += sizeof(s) - 1; } while (0)
	NAME("t"); hb[n++] = 0;
	NAME("f"); hb[n++] = 1;
	NAME("b"); hb[n++] = 2; hb[n++] = 0xff;			/* -1 */
	NAME("s"); hb[n++] = 3; hb[n++] = 0x80; hb[n++] = 0;	/* -32768 */
	NAME("i"); hb[n++] = 4; memcpy(hb + n, "\x00\x01\x00\x00", 4); n += 4;
	NAME("l"); hb[n++] = 5; memcpy(hb + n, "\x00\x00\x01\x00\x00\x00\x00\x00",
	    8); n += 8;
	NAME("y"); hb[n++] = 6; memcpy(hb + n, "\x00\x03\x00\x01\x02", 5); n += 5;
	NAME("str"); hb[n++] = 7; memcpy(hb + n, "\x00\x02ok", 4); n += 4;
	NAME("ts"); hb[n++] = 8; memcpy(hb + n, "\x00\x00\x01\x8f\x00\x00\x00\x01",
	    8); n += 8;
	NAME("u"); hb[n++] = 9; memcpy(hb + n, "0123456789abcdef", 16); n += 16;
#undef NAME
	f = make(buf, hb, n, "{}", 2);
	assert_int_equal(evs_parse(buf, f, &m, err, sizeof(err)), 0);
	assert_int_equal(m.nheaders, 10);
	assert_int_equal(m.h[0].type, EVS_TRUE);
	assert_int_equal(m.h[0].ival, 1);
	assert_int_equal(m.h[1].ival, 0);
	assert_int_equal(m.h[2].ival, -1);
	assert_int_equal(m.h[3].ival, -32768);
	assert_int_equal(m.h[4].ival, 65536);
	assert_int_equal(m.h[5].ival, INT64_C(1) << 40);
	assert_int_equal(m.h[6].value_len, 3);
	assert_memory_equal(m.h[6].value, "\x00\x01\x02", 3);
	assert_true(evs_str_is(&m, "str", "ok"));
	assert_false(evs_str_is(&m, "str", "o"));
	assert_int_equal(m.h[8].ival, INT64_C(0x18f00000001));
	assert_int_equal(m.h[9].value_len, 16);
	assert_int_equal(m.payload_len, 2);
	/* re-encoded from the decoded headers: the same bytes */
	{
		unsigned char again[512];
		size_t g = evs_encode(again, sizeof(again), m.h, m.nheaders,
		    m.payload, m.payload_len);
		assert_int_equal(g, f);
		assert_memory_equal(again, buf, f);
	}
	/* whole-message length must match */
	assert_int_equal(evs_parse(buf, f - 1, &m, err, sizeof(err)), -1);
}

static void
test_encoder(void **state)
{
	unsigned char a[256], b[256];
	size_t na = event_frame(a, "messageStart", "{\"role\":\"assistant\"}");
	size_t nb;

	(void)state;
	/* too small: the length needed, then the frame */
	assert_int_equal(evs_encode_event(b, 10, "messageStart", 0,
	    "{\"role\":\"assistant\"}", 20), na);
	nb = evs_encode_event(b, sizeof(b), "messageStart", 0,
	    "{\"role\":\"assistant\"}", 20);
	assert_int_equal(nb, na);
	assert_memory_equal(a, b, na);
	/* an exception */
	nb = evs_encode_event(b, sizeof(b), "throttlingException", 1,
	    "{\"message\":\"slow down\"}", 23);
	{
		struct evs_msg m;
		char err[96];
		assert_int_equal(evs_parse(b, nb, &m, err, sizeof(err)), 0);
		assert_true(evs_str_is(&m, ":message-type", "exception"));
		assert_true(evs_str_is(&m, ":exception-type",
		    "throttlingException"));
	}
	/* a name over 255 bytes cannot be written */
	{
		char longname[300];
		struct evs_header h = { longname, 256, EVS_TRUE, NULL, 0, 0 };
		memset(longname, 'a', sizeof(longname));
		assert_int_equal(evs_encode(b, sizeof(b), &h, 1, "", 0), 0);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_crc),
		cmocka_unit_test(test_every_cut),
		cmocka_unit_test(test_prelude_crc_first),
		cmocka_unit_test(test_message_crc),
		cmocka_unit_test(test_bounds),
		cmocka_unit_test(test_bad_headers),
		cmocka_unit_test(test_all_types),
		cmocka_unit_test(test_encoder),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
