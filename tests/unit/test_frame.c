/*
 * tests/unit/test_frame: the tunnel frame codec (lib/frame).  Round trips
 * of every type, and rejection, with a reason, of every malformed shape
 * the spec names.  Malformed frames are packed by hand with msgpack-c so
 * they do not depend on the encoder under test; every decode reads from an
 * exactly-sized heap copy so ASan sees any read past the end.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "lib/frame.h"
#include "lib/outq.h"

/* Hand-packed bytes. */
struct raw {
	msgpack_sbuffer sb;
	msgpack_packer pk;
};

static void
raw_init(struct raw *r)
{
	msgpack_sbuffer_init(&r->sb);
	msgpack_packer_init(&r->pk, &r->sb, msgpack_sbuffer_write);
}

static void
raw_free(struct raw *r)
{
	msgpack_sbuffer_destroy(&r->sb);
}

/* [version, type, stream_id, {nfields pairs follow}] */
static void
raw_hdr(struct raw *r, uint64_t ver, uint64_t type, uint64_t stream,
    size_t nfields)
{
	msgpack_pack_array(&r->pk, 4);
	msgpack_pack_uint64(&r->pk, ver);
	msgpack_pack_uint64(&r->pk, type);
	msgpack_pack_uint64(&r->pk, stream);
	msgpack_pack_map(&r->pk, nfields);
}

static void
raw_key(struct raw *r, const char *k)
{
	msgpack_pack_str_with_body(&r->pk, k, strlen(k));
}

static void
raw_str(struct raw *r, const char *s)
{
	msgpack_pack_str_with_body(&r->pk, s, strlen(s));
}

static void
raw_bin(struct raw *r, size_t n)
{
	unsigned char *b = calloc(1, n + 1);

	assert_non_null(b);
	msgpack_pack_bin_with_body(&r->pk, b, n);
	free(b);
}

/* Decode from an exact heap copy; returns the decode result. */
static int
decode_copy(const void *buf, size_t len, struct frame *f, char *err,
    size_t errlen)
{
	unsigned char *copy = malloc(len > 0 ? len : 1);
	int rc;

	assert_non_null(copy);
	if (len > 0)
		memcpy(copy, buf, len);
	rc = frame_decode(len > 0 ? copy : NULL, len, f, err, errlen);
	free(copy);
	return rc;
}

static void
expect_reject(const void *buf, size_t len, const char *want)
{
	struct frame f;
	char err[160];

	memset(err, 'X', sizeof(err));
	if (decode_copy(buf, len, &f, err, sizeof(err)) != -1) {
		frame_free(&f);
		fail_msg("accepted a bad frame (want \"%s\")", want);
	}
	if (strstr(err, want) == NULL)
		fail_msg("reason \"%s\" does not mention \"%s\"", err, want);
	/* A failed decode leaves an empty frame. */
	assert_int_equal(f.nfields, 0);
	assert_null(f.arena);
	frame_free(&f);
}

static void
expect_reject_raw(struct raw *r, const char *want)
{
	expect_reject(r->sb.data, r->sb.size, want);
	raw_free(r);
}

static void
expect_accept_raw(struct raw *r)
{
	struct frame f;
	char err[160] = "";

	if (decode_copy(r->sb.data, r->sb.size, &f, err, sizeof(err)) != 0)
		fail_msg("rejected a good frame: %s", err);
	frame_free(&f);
	raw_free(r);
}

/* The spec's required fields, written out independently of lib/frame. */
static const unsigned char nonce[FRAME_NONCE_LEN] = { 1, 2, 3, 4, 5 };
static const unsigned char sig[FRAME_SIG_LEN] = { 9, 8, 7 };
static const struct frame_str models[] = {
	{ "gpt-4o", 6 }, { "gpt-4o-mini", 11 }, { "", 0 }
};

static size_t
nrequired(enum frame_type t)
{
	switch (t) {
	case FRAME_AUTH: case FRAME_ERROR: return 2;
	case FRAME_HELLO: return 1;
	case FRAME_CHALLENGE: case FRAME_WELCOME: case FRAME_PING:
	case FRAME_PONG: case FRAME_ECHO: case FRAME_ECHO_REPLY:
	case FRAME_KICK: case FRAME_UPDATE_AVAILABLE: return 1;
	case FRAME_CHANNELS: return 7;
	case FRAME_METRICS: return 7;
	case FRAME_REQ_START: return 5;
	case FRAME_RESP_HEAD: return 2;
	case FRAME_REQ_BODY: case FRAME_RESP_CHUNK: case FRAME_RESP_END:
		return 1;
	case FRAME_RECEIPT: return 15;
	case FRAME_CREDIT: return 1;
	case FRAME_RECEIPT_ACK: return 4;
	case FRAME_SYNC: return 1;
	case FRAME_PRICE_UPDATE: return 6;
	case FRAME_USAGE: return 7;
	case FRAME_USAGE_ACK: return 2;
	case FRAME_DISPUTE_RESULT: return 4;
	case FRAME_WS_MSG: return 2;
	default: return 0;
	}
}

static void
enc_required(struct frame_enc *e, enum frame_type t)
{
	switch (t) {
	case FRAME_HELLO:
		frame_enc_cstr(e, "version", "1.2.3");
		break;
	case FRAME_CHALLENGE:
		frame_enc_bin(e, "nonce", nonce, sizeof(nonce));
		break;
	case FRAME_AUTH:
		frame_enc_u64(e, "agent_id", 42);
		frame_enc_bin(e, "sig", sig, sizeof(sig));
		break;
	case FRAME_WELCOME:
		frame_enc_u64(e, "session", UINT64_MAX);
		break;
	case FRAME_CHANNELS:
		frame_enc_bool(e, "done", false);
		frame_enc_cstr(e, "name", "main");
		frame_enc_cstr(e, "provider", "openai");
		frame_enc_strv(e, "models", models, 3);
		frame_enc_cstr(e, "grade", "A");
		frame_enc_u64(e, "rpm", 600);
		frame_enc_u64(e, "tpm", 100000);
		break;
	case FRAME_METRICS:
		frame_enc_cstr(e, "channel", "main");
		frame_enc_u64(e, "minute", 29000000);
		frame_enc_u64(e, "requests", 12);
		frame_enc_u64(e, "tokens", 3400);
		frame_enc_u64(e, "errors", 1);
		frame_enc_u64(e, "inflight", 2);
		frame_enc_u64(e, "latency_ms", 250);
		break;
	case FRAME_PING: case FRAME_PONG:
		frame_enc_u64(e, "ts", 1700000000123ull);
		break;
	case FRAME_ECHO: case FRAME_ECHO_REPLY:
		frame_enc_cstr(e, "text", "hello, tunnel");
		break;
	case FRAME_KICK:
		frame_enc_cstr(e, "reason", "key revoked");
		break;
	case FRAME_ERROR:
		frame_enc_cstr(e, "code", "bad_request");
		frame_enc_cstr(e, "message", "no such model");
		break;
	case FRAME_REQ_START:
		frame_enc_cstr(e, "channel", "main");
		frame_enc_cstr(e, "op", "chat");
		frame_enc_cstr(e, "model", "gpt-4o-mini");
		frame_enc_bool(e, "stream", true);
		frame_enc_cstr(e, "content_type", "application/json");
		break;
	case FRAME_REQ_BODY: case FRAME_RESP_CHUNK:
		frame_enc_bin(e, "data", "{}", 2);
		break;
	case FRAME_RESP_HEAD:
		frame_enc_u64(e, "status", 200);
		frame_enc_cstr(e, "content_type", "text/event-stream");
		break;
	case FRAME_RESP_END:
		frame_enc_bool(e, "ok", true);
		break;
	case FRAME_CREDIT:
		frame_enc_u64(e, "bytes", FRAME_WINDOW / 4);
		break;
	case FRAME_RECEIPT:
		frame_enc_u64(e, "seq", 1);
		frame_enc_cstr(e, "prev_hash", "00");
		frame_enc_cstr(e, "hash", "ab");
		frame_enc_cstr(e, "request_id", "r1");
		frame_enc_u64(e, "token_id", 3);
		frame_enc_cstr(e, "model", "gpt-4o");
		frame_enc_u64(e, "input_tokens", 10);
		frame_enc_u64(e, "output_tokens", 20);
		frame_enc_u64(e, "cached_tokens", 0);
		frame_enc_u64(e, "cache_write_tokens", 0);
		frame_enc_u64(e, "price_version", 2);
		frame_enc_u64(e, "amount", 1234);
		frame_enc_u64(e, "created_at", 1700000000);
		frame_enc_bool(e, "agent_reported", false);
		frame_enc_bin(e, "sig", sig, sizeof(sig));
		break;
	case FRAME_RECEIPT_ACK:
		frame_enc_u64(e, "seq", 1);
		frame_enc_cstr(e, "hash", "ab");
		frame_enc_bool(e, "ok", true);
		frame_enc_bool(e, "stored", true);
		break;
	case FRAME_SYNC:
		frame_enc_u64(e, "last_seq", 0);
		break;
	case FRAME_PRICE_UPDATE:
		frame_enc_cstr(e, "model", "gpt-4o");
		frame_enc_u64(e, "version", 1);
		frame_enc_u64(e, "input", 2500000);
		frame_enc_u64(e, "output", 10000000);
		frame_enc_u64(e, "cached_input", 0);
		frame_enc_u64(e, "cache_write", 0);
		break;
	case FRAME_USAGE:
		frame_enc_cstr(e, "request_id", "r1");
		frame_enc_cstr(e, "model", "gpt-4o");
		frame_enc_u64(e, "input_tokens", 10);
		frame_enc_u64(e, "output_tokens", 20);
		frame_enc_u64(e, "cached_tokens", 0);
		frame_enc_u64(e, "cache_write_tokens", 0);
		frame_enc_bool(e, "estimated", true);
		break;
	case FRAME_USAGE_ACK:
		frame_enc_cstr(e, "request_id", "r1");
		frame_enc_cstr(e, "result", "settled");
		break;
	case FRAME_DISPUTE_RESULT:
		frame_enc_u64(e, "seq", 7);
		frame_enc_cstr(e, "request_id", "r1");
		frame_enc_cstr(e, "status", "rejected");
		frame_enc_cstr(e, "reason", "");
		break;
	case FRAME_WS_MSG:
		frame_enc_bin(e, "data", "{\"type\":\"response.create\"}", 26);
		frame_enc_bool(e, "text", true);
		break;
	case FRAME_UPDATE_AVAILABLE:
		frame_enc_cstr(e, "version", "0.2.0");
		break;
	default:
		break;
	}
}

static uint32_t
stream_for(enum frame_type t)
{
	switch (t) {
	case FRAME_HELLO: case FRAME_CHALLENGE: case FRAME_AUTH:
	case FRAME_WELCOME: case FRAME_CHANNELS: case FRAME_METRICS:
	case FRAME_RECEIPT:
	case FRAME_RECEIPT_ACK: case FRAME_SYNC: case FRAME_PRICE_UPDATE:
	case FRAME_USAGE: case FRAME_USAGE_ACK: case FRAME_DISPUTE_RESULT:
	case FRAME_UPDATE_AVAILABLE:
		return 0;
	default:
		return 7;
	}
}

/* Extra fields of every kind, including edge values. */
#define NEXTRA 7
static const unsigned char extra_bin[] = { 0, 0xff, 0, 0x7f };

static void
enc_extras(struct frame_enc *e)
{
	static const struct frame_str one[] = { { "x", 1 } };

	frame_enc_u64(e, "x_u64", UINT64_MAX);
	frame_enc_i64(e, "x_neg", INT64_MIN);
	frame_enc_bool(e, "x_true", true);
	frame_enc_str(e, "x_str", "a\0b", 3);
	frame_enc_bin(e, "x_bin", extra_bin, sizeof(extra_bin));
	frame_enc_strv(e, "x_one", one, 1);
	frame_enc_strv(e, "x_empty", NULL, 0);
}

/* Encode a valid frame of type t with its required fields (and extras). */
static void
build(struct frame_enc *e, enum frame_type t, int extras, const void **data,
    size_t *len)
{
	size_t n = nrequired(t) + (extras ? NEXTRA : 0);

	assert_int_equal(frame_enc_begin(e, t, stream_for(t), n), 0);
	enc_required(e, t);
	if (extras)
		enc_extras(e);
	if (frame_enc_finish(e, data, len) != 0)
		fail_msg("encode %s: %s", frame_type_name(t), e->err);
}

static void
check_extras(const struct frame *f)
{
	uint64_t u;
	int64_t i;
	bool b;
	const char *s;
	const unsigned char *bp;
	const struct frame_str *v;
	size_t len, n;

	assert_int_equal(frame_get_u64(f, "x_u64", &u), 0);
	assert_true(u == UINT64_MAX);
	assert_int_equal(frame_get_i64(f, "x_neg", &i), 0);
	assert_true(i == INT64_MIN);
	assert_int_equal(frame_get_bool(f, "x_true", &b), 0);
	assert_true(b);
	assert_int_equal(frame_get_str(f, "x_str", &s, &len), 0);
	assert_int_equal(len, 3);
	assert_memory_equal(s, "a\0b", 4);	/* NUL-terminated copy */
	assert_int_equal(frame_get_bin(f, "x_bin", &bp, &len), 0);
	assert_int_equal(len, sizeof(extra_bin));
	assert_memory_equal(bp, extra_bin, len);
	assert_int_equal(frame_get_strv(f, "x_one", &v, &n), 0);
	assert_int_equal(n, 1);
	assert_string_equal(v[0].ptr, "x");
	assert_int_equal(frame_get_strv(f, "x_empty", &v, &n), 0);
	assert_int_equal(n, 0);
}

static void
check_required_values(const struct frame *f)
{
	uint64_t u;
	bool b;
	const char *s;
	const unsigned char *bp;
	const struct frame_str *v;
	size_t len, n;

	switch (f->type) {
	case FRAME_HELLO:
		assert_int_equal(frame_get_str(f, "version", &s, &len), 0);
		assert_string_equal(s, "1.2.3");
		break;
	case FRAME_CHALLENGE:
		assert_int_equal(frame_get_bin(f, "nonce", &bp, &len), 0);
		assert_int_equal(len, FRAME_NONCE_LEN);
		assert_memory_equal(bp, nonce, len);
		break;
	case FRAME_AUTH:
		assert_int_equal(frame_get_bin(f, "sig", &bp, &len), 0);
		assert_int_equal(len, FRAME_SIG_LEN);
		assert_memory_equal(bp, sig, len);
		break;
	case FRAME_WELCOME:
		assert_int_equal(frame_get_u64(f, "session", &u), 0);
		assert_true(u == UINT64_MAX);
		break;
	case FRAME_CHANNELS:
		assert_int_equal(frame_get_bool(f, "done", &b), 0);
		assert_false(b);
		assert_int_equal(frame_get_str(f, "provider", &s, &len), 0);
		assert_string_equal(s, "openai");
		assert_int_equal(frame_get_strv(f, "models", &v, &n), 0);
		assert_int_equal(n, 3);
		for (size_t i = 0; i < n; i++) {
			assert_int_equal(v[i].len, models[i].len);
			assert_string_equal(v[i].ptr, models[i].ptr);
		}
		assert_int_equal(frame_get_u64(f, "tpm", &u), 0);
		assert_int_equal(u, 100000);
		break;
	case FRAME_ECHO: case FRAME_ECHO_REPLY:
		assert_int_equal(frame_get_str(f, "text", &s, &len), 0);
		assert_string_equal(s, "hello, tunnel");
		assert_int_equal(len, 13);
		break;
	case FRAME_ERROR:
		assert_int_equal(frame_get_str(f, "message", &s, NULL), 0);
		assert_string_equal(s, "no such model");
		break;
	default:
		break;
	}
}

static void
test_roundtrip_every_type(void **state)
{
	(void)state;
	for (int t = FRAME_HELLO; t < FRAME_TYPE_MAX; t++) {
		for (int extras = 0; extras <= 1; extras++) {
			struct frame_enc e, e2;
			struct frame f, g;
			const void *data, *data2;
			size_t len, len2;
			char err[160] = "";

			build(&e, t, extras, &data, &len);
			if (decode_copy(data, len, &f, err, sizeof(err)) != 0)
				fail_msg("decode %s: %s", frame_type_name(t),
				    err);
			assert_int_equal(f.version, FRAME_VERSION);
			assert_int_equal(f.type, t);
			assert_int_equal(f.stream_id, stream_for(t));
			assert_int_equal(f.nfields,
			    nrequired(t) + (extras ? NEXTRA : 0));
			check_required_values(&f);
			if (extras)
				check_extras(&f);

			/* Re-encoding a decoded frame gives the same bytes. */
			assert_int_equal(frame_enc_frame(&e2, &f), 0);
			assert_int_equal(frame_enc_finish(&e2, &data2, &len2),
			    0);
			assert_int_equal(len2, len);
			assert_memory_equal(data2, data, len);
			assert_int_equal(decode_copy(data2, len2, &g, err,
			    sizeof(err)), 0);
			assert_true(frame_equal(&f, &g));

			frame_free(&g);
			frame_free(&f);
			frame_enc_free(&e2);
			frame_enc_free(&e);
		}
	}
}

static void
test_type_names(void **state)
{
	(void)state;
	assert_string_equal(frame_type_name(FRAME_HELLO), "hello");
	assert_string_equal(frame_type_name(FRAME_REQ_START), "req_start");
	assert_string_equal(frame_type_name(FRAME_ERROR), "error");
	assert_string_equal(frame_type_name(0), "unknown");
	assert_string_equal(frame_type_name(FRAME_TYPE_MAX), "unknown");
	for (int t = FRAME_HELLO; t < FRAME_TYPE_MAX; t++)
		assert_string_not_equal(frame_type_name(t), "unknown");
}

static void
test_truncated_every_prefix(void **state)
{
	struct frame_enc e;
	const void *data;
	size_t len;

	(void)state;
	build(&e, FRAME_CHANNELS, 1, &data, &len);
	expect_reject(data, 0, "empty");
	for (size_t i = 1; i < len; i++)
		expect_reject(data, i, "truncated");
	frame_enc_free(&e);
}

static void
test_trailing_bytes(void **state)
{
	struct frame_enc e;
	const void *data;
	unsigned char *buf;
	size_t len;

	(void)state;
	build(&e, FRAME_PING, 0, &data, &len);
	buf = malloc(2 * len);
	assert_non_null(buf);
	memcpy(buf, data, len);
	buf[len] = 0xc0;
	expect_reject(buf, len + 1, "1 trailing byte");
	memcpy(buf + len, data, len);		/* two frames in one message */
	expect_reject(buf, 2 * len, "trailing");
	free(buf);
	frame_enc_free(&e);
}

static void
test_wrong_version(void **state)
{
	struct raw r;

	(void)state;
	raw_init(&r);
	raw_hdr(&r, 2, FRAME_CANCEL, 1, 0);
	expect_reject_raw(&r, "unsupported frame version 2");
	raw_init(&r);
	raw_hdr(&r, 0, FRAME_CANCEL, 1, 0);
	expect_reject_raw(&r, "version");

	raw_init(&r);		/* negative version */
	msgpack_pack_array(&r.pk, 4);
	msgpack_pack_int64(&r.pk, -1);
	msgpack_pack_uint64(&r.pk, FRAME_CANCEL);
	msgpack_pack_uint64(&r.pk, 1);
	msgpack_pack_map(&r.pk, 0);
	expect_reject_raw(&r, "version is not an unsigned integer");

	raw_init(&r);		/* version as a string */
	msgpack_pack_array(&r.pk, 4);
	raw_str(&r, "1");
	msgpack_pack_uint64(&r.pk, FRAME_CANCEL);
	msgpack_pack_uint64(&r.pk, 1);
	msgpack_pack_map(&r.pk, 0);
	expect_reject_raw(&r, "version");
}

static void
test_unknown_type(void **state)
{
	static const uint64_t bad[] = {
		0, FRAME_TYPE_MAX, 1000, (uint64_t)1 << 40, UINT64_MAX
	};
	struct raw r;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		raw_init(&r);
		raw_hdr(&r, FRAME_VERSION, bad[i], 1, 0);
		expect_reject_raw(&r, "unknown frame type");
	}
	raw_init(&r);		/* type as an array */
	msgpack_pack_array(&r.pk, 4);
	msgpack_pack_uint64(&r.pk, 1);
	msgpack_pack_array(&r.pk, 1);
	msgpack_pack_uint64(&r.pk, 1);
	msgpack_pack_uint64(&r.pk, 1);
	msgpack_pack_map(&r.pk, 0);
	expect_reject_raw(&r, "type is not an unsigned integer");
}

static void
test_wrong_arity(void **state)
{
	struct raw r;
	struct frame f;
	unsigned char *wide;
	char err[160] = "";

	(void)state;
	for (unsigned n = 0; n < 8; n++) {
		if (n == 4)
			continue;
		raw_init(&r);
		msgpack_pack_array(&r.pk, n);
		for (unsigned i = 0; i < n; i++)
			msgpack_pack_uint64(&r.pk, 1);
		expect_reject_raw(&r, "want 4");
	}
	raw_init(&r);		/* a map where the array should be */
	msgpack_pack_map(&r.pk, 0);
	expect_reject_raw(&r, "not a msgpack array");
	raw_init(&r);
	msgpack_pack_uint64(&r.pk, 1);
	expect_reject_raw(&r, "not a msgpack array");

	/* array32 claiming 4G elements: refused before any allocation */
	expect_reject("\xdd\xff\xff\xff\xff", 5, "want 4");
	/* non-canonical array16 of 4 is still a frame */
	expect_reject("\xdc\x00\x04\x01\x14\x00", 6, "truncated");
	raw_init(&r);		/* the same as array16: still a frame */
	raw_hdr(&r, 1, FRAME_PING, 0, 1);
	raw_key(&r, "ts");
	msgpack_pack_uint64(&r.pk, 5);
	assert_int_equal((unsigned char)r.sb.data[0], 0x94);
	wide = malloc(r.sb.size + 2);
	assert_non_null(wide);
	wide[0] = 0xdc;
	wide[1] = 0;
	wide[2] = 4;
	memcpy(wide + 3, r.sb.data + 1, r.sb.size - 1);
	if (decode_copy(wide, r.sb.size + 2, &f, err, sizeof(err)) != 0)
		fail_msg("array16 frame rejected: %s", err);
	assert_int_equal(f.type, FRAME_PING);
	frame_free(&f);
	free(wide);
	raw_free(&r);
}

static void
test_payload_not_map(void **state)
{
	struct raw r;

	(void)state;
	raw_init(&r);
	msgpack_pack_array(&r.pk, 4);
	msgpack_pack_uint64(&r.pk, 1);
	msgpack_pack_uint64(&r.pk, FRAME_PING);
	msgpack_pack_uint64(&r.pk, 0);
	raw_str(&r, "ts=5");
	expect_reject_raw(&r, "payload is not a map");

	raw_init(&r);
	msgpack_pack_array(&r.pk, 4);
	msgpack_pack_uint64(&r.pk, 1);
	msgpack_pack_uint64(&r.pk, FRAME_CANCEL);
	msgpack_pack_uint64(&r.pk, 3);
	msgpack_pack_array(&r.pk, 0);
	expect_reject_raw(&r, "payload is not a map");

	raw_init(&r);
	msgpack_pack_array(&r.pk, 4);
	msgpack_pack_uint64(&r.pk, 1);
	msgpack_pack_uint64(&r.pk, FRAME_CANCEL);
	msgpack_pack_uint64(&r.pk, 3);
	msgpack_pack_nil(&r.pk);
	expect_reject_raw(&r, "payload is not a map");
}

static void
test_missing_required(void **state)
{
	struct raw r;

	(void)state;
	raw_init(&r);
	raw_hdr(&r, 1, FRAME_CHALLENGE, 0, 0);
	expect_reject_raw(&r, "missing field \"nonce\"");

	raw_init(&r);
	raw_hdr(&r, 1, FRAME_HELLO, 0, 1);
	raw_key(&r, "public_ip");
	raw_str(&r, "192.0.2.1");
	expect_reject_raw(&r, "missing field \"version\"");

	raw_init(&r);
	raw_hdr(&r, 1, FRAME_ERROR, 0, 1);
	raw_key(&r, "code");
	raw_str(&r, "x");
	expect_reject_raw(&r, "missing field \"message\"");

	raw_init(&r);
	raw_hdr(&r, 1, FRAME_PING, 0, 1);
	raw_key(&r, "TS");		/* keys are case-sensitive */
	msgpack_pack_uint64(&r.pk, 1);
	expect_reject_raw(&r, "missing field \"ts\"");

	raw_init(&r);		/* cancel needs nothing */
	raw_hdr(&r, 1, FRAME_CANCEL, 9, 0);
	expect_accept_raw(&r);
}

/*
 * Flow control: the credit frame's spec (a stream, bytes:u64) and the
 * window arithmetic both sides keep per stream (lib/frame.h, FLOW
 * CONTROL).
 */
static void
test_credit_frame(void **state)
{
	struct raw r;

	(void)state;
	raw_init(&r);
	raw_hdr(&r, 1, FRAME_CREDIT, 3, 0);
	expect_reject_raw(&r, "missing field \"bytes\"");

	raw_init(&r);
	raw_hdr(&r, 1, FRAME_CREDIT, 0, 1);
	raw_key(&r, "bytes");
	msgpack_pack_uint64(&r.pk, 1024);
	expect_reject_raw(&r, "credit frame on stream 0");

	raw_init(&r);
	raw_hdr(&r, 1, FRAME_CREDIT, 3, 1);
	raw_key(&r, "bytes");
	raw_str(&r, "1024");
	expect_reject_raw(&r, "bytes");

	raw_init(&r);
	raw_hdr(&r, 1, FRAME_CREDIT, 3, 1);
	raw_key(&r, "bytes");
	msgpack_pack_uint64(&r.pk, UINT64_MAX);	/* the receiver clamps */
	expect_accept_raw(&r);
	assert_string_equal(frame_type_name(FRAME_CREDIT), "credit");
}

static void
test_window(void **state)
{
	struct frame_window w;

	(void)state;
	frame_window_init(&w);
	assert_int_equal(w.avail, FRAME_WINDOW);
	/* Data spends it, never beyond. */
	assert_int_equal(frame_window_spend(&w, 0), 0);
	assert_int_equal(frame_window_spend(&w, FRAME_WINDOW - 10), 0);
	assert_int_equal(w.avail, 10);
	assert_int_equal(frame_window_spend(&w, 11), -1);
	assert_int_equal(w.avail, 10);		/* a refusal changes nothing */
	assert_int_equal(frame_window_spend(&w, SIZE_MAX), -1);
	assert_int_equal(frame_window_spend(&w, 10), 0);
	assert_int_equal(w.avail, 0);
	assert_int_equal(frame_window_spend(&w, 1), -1);
	/* Credit gives it back, up to the whole window. */
	assert_int_equal(frame_window_grant(&w, 100), 0);
	assert_int_equal(w.avail, 100);
	assert_int_equal(frame_window_grant(&w, FRAME_WINDOW - 100), 0);
	assert_int_equal(w.avail, FRAME_WINDOW);
	assert_int_equal(frame_window_grant(&w, 0), 0);
	assert_int_equal(frame_window_grant(&w, 1), -1);
	assert_int_equal(w.avail, FRAME_WINDOW);
	assert_int_equal(frame_window_spend(&w, 5), 0);
	assert_int_equal(frame_window_grant(&w, UINT64_MAX), -1);
	assert_int_equal(w.avail, FRAME_WINDOW);	/* clamped, no wrap */
	assert_int_equal(frame_window_spend(&w, FRAME_WINDOW), 0);
	assert_int_equal(frame_window_grant(&w, (uint64_t)1 << 32), -1);
	assert_int_equal(w.avail, FRAME_WINDOW);
}

static void
test_wrong_kind(void **state)
{
	struct raw r;

	(void)state;
	raw_init(&r);
	raw_hdr(&r, 1, FRAME_AUTH, 0, 2);
	raw_key(&r, "agent_id");
	raw_str(&r, "42");
	raw_key(&r, "sig");
	msgpack_pack_bin(&r.pk, FRAME_SIG_LEN);
	msgpack_pack_bin_body(&r.pk, sig, FRAME_SIG_LEN);
	expect_reject_raw(&r, "field \"agent_id\" is str, want u64");

	raw_init(&r);		/* negative where u64 is required */
	raw_hdr(&r, 1, FRAME_PING, 0, 1);
	raw_key(&r, "ts");
	msgpack_pack_int64(&r.pk, -1);
	expect_reject_raw(&r, "field \"ts\" is i64, want u64");

	raw_init(&r);		/* nonce as str, not bin */
	raw_hdr(&r, 1, FRAME_CHALLENGE, 0, 1);
	raw_key(&r, "nonce");
	raw_str(&r, "0123456789abcdef0123456789abcdef");
	expect_reject_raw(&r, "is str, want bin");

	raw_init(&r);
	raw_hdr(&r, 1, FRAME_CHANNELS, 0, 1);
	raw_key(&r, "done");
	msgpack_pack_uint64(&r.pk, 1);
	expect_reject_raw(&r, "field \"done\" is u64, want bool");
}

static void
test_bad_values(void **state)
{
	struct raw r;

	(void)state;
	raw_init(&r);
	raw_hdr(&r, 1, FRAME_REQ_END, 7, 1);
	raw_key(&r, "load");
	msgpack_pack_double(&r.pk, 0.5);
	expect_reject_raw(&r, "unsupported value type float");

	raw_init(&r);
	raw_hdr(&r, 1, FRAME_REQ_END, 7, 1);
	raw_key(&r, "x");
	msgpack_pack_nil(&r.pk);
	expect_reject_raw(&r, "unsupported value type nil");

	raw_init(&r);
	raw_hdr(&r, 1, FRAME_REQ_END, 7, 1);
	raw_key(&r, "x");
	msgpack_pack_ext_with_body(&r.pk, "abcd", 4, 5);
	expect_reject_raw(&r, "unsupported value type ext");

	raw_init(&r);		/* a map inside the payload */
	raw_hdr(&r, 1, FRAME_REQ_END, 7, 1);
	raw_key(&r, "x");
	msgpack_pack_map(&r.pk, 0);
	expect_reject_raw(&r, "unsupported value type map");

	raw_init(&r);		/* array of array: deeper than strv */
	raw_hdr(&r, 1, FRAME_REQ_END, 7, 1);
	raw_key(&r, "x");
	msgpack_pack_array(&r.pk, 1);
	msgpack_pack_array(&r.pk, 0);
	expect_reject_raw(&r, "nested too deep");

	raw_init(&r);
	raw_hdr(&r, 1, FRAME_REQ_END, 7, 1);
	raw_key(&r, "models");
	msgpack_pack_array(&r.pk, 2);
	raw_str(&r, "a");
	msgpack_pack_uint64(&r.pk, 2);
	expect_reject_raw(&r, "array items must be strings");

	raw_init(&r);
	raw_hdr(&r, 1, FRAME_REQ_END, 7, 1);
	raw_key(&r, "models");
	msgpack_pack_array(&r.pk, FRAME_MAX_ITEMS + 1);
	for (int i = 0; i <= FRAME_MAX_ITEMS; i++)
		raw_str(&r, "m");
	expect_reject_raw(&r, "too long");

	raw_init(&r);		/* exactly FRAME_MAX_ITEMS is fine */
	raw_hdr(&r, 1, FRAME_REQ_END, 7, 1);
	raw_key(&r, "models");
	msgpack_pack_array(&r.pk, FRAME_MAX_ITEMS);
	for (int i = 0; i < FRAME_MAX_ITEMS; i++)
		raw_str(&r, "m");
	expect_accept_raw(&r);

	/* 0xc1 is never valid msgpack */
	expect_reject("\x94\x01\x06\x00\x81\xa1x\xc1", 8, "invalid msgpack");
	/* str32 / bin32 / map32 with absurd lengths */
	expect_reject("\x94\x01\x06\x00\x81\xa1x\xdb\xff\xff\xff\xff", 12,
	    "truncated");
	expect_reject("\x94\x01\x06\x00\x81\xa1x\xc6\xff\xff\xff\xff", 12,
	    "truncated");
	expect_reject("\x94\x01\x06\x00\xdf\xff\xff\xff\xff", 9,
	    "too many fields");
	expect_reject("\x94\x01\x06\x00\x81\xa1x\xdd\xff\xff\xff\xff", 12,
	    "too long");
}

static void
test_bad_keys(void **state)
{
	char key[FRAME_MAX_KEY + 2];
	struct raw r;

	(void)state;
	memset(key, 'k', sizeof(key));
	key[FRAME_MAX_KEY + 1] = '\0';
	raw_init(&r);
	raw_hdr(&r, 1, FRAME_REQ_END, 7, 1);
	raw_key(&r, key);
	msgpack_pack_uint64(&r.pk, 1);
	expect_reject_raw(&r, "too long");

	key[FRAME_MAX_KEY] = '\0';	/* exactly FRAME_MAX_KEY is fine */
	raw_init(&r);
	raw_hdr(&r, 1, FRAME_REQ_END, 7, 1);
	raw_key(&r, key);
	msgpack_pack_uint64(&r.pk, 1);
	expect_accept_raw(&r);

	raw_init(&r);
	raw_hdr(&r, 1, FRAME_REQ_END, 7, 1);
	raw_key(&r, "");
	msgpack_pack_uint64(&r.pk, 1);
	expect_reject_raw(&r, "empty field key");

	raw_init(&r);
	raw_hdr(&r, 1, FRAME_REQ_END, 7, 1);
	msgpack_pack_str_with_body(&r.pk, "a\0b", 3);
	msgpack_pack_uint64(&r.pk, 1);
	expect_reject_raw(&r, "NUL");

	raw_init(&r);
	raw_hdr(&r, 1, FRAME_REQ_END, 7, 1);
	msgpack_pack_uint64(&r.pk, 1);
	msgpack_pack_uint64(&r.pk, 1);
	expect_reject_raw(&r, "is not a string");

	raw_init(&r);
	raw_hdr(&r, 1, FRAME_PING, 0, 2);
	raw_key(&r, "ts");
	msgpack_pack_uint64(&r.pk, 1);
	raw_key(&r, "ts");
	msgpack_pack_uint64(&r.pk, 2);
	expect_reject_raw(&r, "duplicate field \"ts\"");
}

static void
test_too_many_fields(void **state)
{
	char key[16];
	struct raw r;

	(void)state;
	for (int n = FRAME_MAX_FIELDS; n <= FRAME_MAX_FIELDS + 1; n++) {
		raw_init(&r);
		raw_hdr(&r, 1, FRAME_REQ_END, 7, n);
		for (int i = 0; i < n; i++) {
			snprintf(key, sizeof(key), "f%d", i);
			raw_key(&r, key);
			msgpack_pack_uint64(&r.pk, i);
		}
		if (n == FRAME_MAX_FIELDS)
			expect_accept_raw(&r);
		else
			expect_reject_raw(&r, "too many fields");
	}
}

static void
test_nonce_and_sig_length(void **state)
{
	static const size_t nlen[] = { 0, 31, 33, 64 };
	struct raw r;

	(void)state;
	for (size_t i = 0; i < sizeof(nlen) / sizeof(nlen[0]); i++) {
		raw_init(&r);
		raw_hdr(&r, 1, FRAME_CHALLENGE, 0, 1);
		raw_key(&r, "nonce");
		raw_bin(&r, nlen[i]);
		expect_reject_raw(&r, "want 32");
	}
	raw_init(&r);
	raw_hdr(&r, 1, FRAME_AUTH, 0, 2);
	raw_key(&r, "agent_id");
	msgpack_pack_uint64(&r.pk, 1);
	raw_key(&r, "sig");
	raw_bin(&r, 63);
	expect_reject_raw(&r, "\"sig\" is 63 bytes, want 64");
}

static void
test_oversized(void **state)
{
	struct raw r;
	struct frame f;
	struct frame_enc e;
	char err[160] = "";
	size_t hdr, body;
	unsigned char *big;
	const void *data;
	size_t len;

	(void)state;
	/* Find the header size, then make a req_body of exactly FRAME_MAX. */
	raw_init(&r);
	raw_hdr(&r, 1, FRAME_REQ_BODY, 1, 1);
	raw_key(&r, "data");
	hdr = r.sb.size + 5;			/* + bin32 header */
	raw_free(&r);
	body = FRAME_MAX - hdr;
	for (int extra = 0; extra <= 1; extra++) {
		raw_init(&r);
		raw_hdr(&r, 1, FRAME_REQ_BODY, 1, 1);
		raw_key(&r, "data");
		raw_bin(&r, body + extra);
		assert_int_equal(r.sb.size, FRAME_MAX + extra);
		if (extra)
			expect_reject_raw(&r, "too large");
		else
			expect_accept_raw(&r);
	}

	/* A length past FRAME_MAX is refused before any byte is parsed. */
	big = calloc(1, FRAME_MAX + 100);
	assert_non_null(big);
	assert_int_equal(decode_copy(big, FRAME_MAX + 100, &f, err,
	    sizeof(err)), -1);
	assert_non_null(strstr(err, "too large"));

	/* The encoder will not build one either. */
	assert_int_equal(frame_enc_begin(&e, FRAME_REQ_BODY, 1, 1), 0);
	assert_int_equal(frame_enc_bin(&e, "data", big, FRAME_MAX), -1);
	assert_int_equal(frame_enc_finish(&e, &data, &len), -1);
	assert_non_null(strstr(e.err, "exceeds"));
	frame_enc_free(&e);
	free(big);
}

static void
test_stream_rules(void **state)
{
	struct raw r;
	struct frame_enc e;

	(void)state;
	raw_init(&r);
	raw_hdr(&r, 1, FRAME_WELCOME, 3, 1);
	raw_key(&r, "session");
	msgpack_pack_uint64(&r.pk, 1);
	expect_reject_raw(&r, "must be connection-level");

	raw_init(&r);
	raw_hdr(&r, 1, FRAME_REQ_BODY, 0, 0);
	expect_reject_raw(&r, "req_body frame on stream 0");

	raw_init(&r);
	raw_hdr(&r, 1, FRAME_CANCEL, (uint64_t)UINT32_MAX + 1, 0);
	expect_reject_raw(&r, "stream id 4294967296 out of range");

	raw_init(&r);
	raw_hdr(&r, 1, FRAME_CANCEL, UINT32_MAX, 0);
	expect_accept_raw(&r);

	assert_int_equal(frame_enc_begin(&e, FRAME_REQ_START, 0, 0), -1);
	assert_non_null(strstr(e.err, "stream 0"));
	frame_enc_free(&e);
	assert_int_equal(frame_enc_begin(&e, FRAME_HELLO, 1, 2), -1);
	frame_enc_free(&e);
}

static void
test_channels(void **state)
{
	struct raw r;
	struct frame_enc e;
	const void *data;
	size_t len;
	struct frame f;
	bool done;
	char err[160];

	(void)state;
	/* end of announcement: done=true alone */
	assert_int_equal(frame_enc_begin(&e, FRAME_CHANNELS, 0, 1), 0);
	assert_int_equal(frame_enc_bool(&e, "done", true), 0);
	assert_int_equal(frame_enc_finish(&e, &data, &len), 0);
	assert_int_equal(decode_copy(data, len, &f, err, sizeof(err)), 0);
	assert_int_equal(frame_get_bool(&f, "done", &done), 0);
	assert_true(done);
	frame_free(&f);
	frame_enc_free(&e);

	/* a channel without models */
	raw_init(&r);
	raw_hdr(&r, 1, FRAME_CHANNELS, 0, 6);
	raw_key(&r, "done"); msgpack_pack_false(&r.pk);
	raw_key(&r, "name"); raw_str(&r, "n");
	raw_key(&r, "provider"); raw_str(&r, "p");
	raw_key(&r, "grade"); raw_str(&r, "g");
	raw_key(&r, "rpm"); msgpack_pack_uint64(&r.pk, 1);
	raw_key(&r, "tpm"); msgpack_pack_uint64(&r.pk, 1);
	expect_reject_raw(&r, "channels frame: missing field \"models\"");

	/* models as a single string instead of a strv */
	raw_init(&r);
	raw_hdr(&r, 1, FRAME_CHANNELS, 0, 7);
	raw_key(&r, "done"); msgpack_pack_false(&r.pk);
	raw_key(&r, "name"); raw_str(&r, "n");
	raw_key(&r, "provider"); raw_str(&r, "p");
	raw_key(&r, "models"); raw_str(&r, "m");
	raw_key(&r, "grade"); raw_str(&r, "g");
	raw_key(&r, "rpm"); msgpack_pack_uint64(&r.pk, 1);
	raw_key(&r, "tpm"); msgpack_pack_uint64(&r.pk, 1);
	expect_reject_raw(&r, "\"models\" is str, want strv");

	/* no done at all */
	raw_init(&r);
	raw_hdr(&r, 1, FRAME_CHANNELS, 0, 0);
	expect_reject_raw(&r, "missing field \"done\"");

	/* the encoder applies the same table */
	assert_int_equal(frame_enc_begin(&e, FRAME_CHANNELS, 0, 1), 0);
	assert_int_equal(frame_enc_bool(&e, "done", false), 0);
	assert_int_equal(frame_enc_finish(&e, &data, &len), -1);
	assert_non_null(strstr(e.err, "missing field \"name\""));
	frame_enc_free(&e);
}

static void
test_encoder_misuse(void **state)
{
	struct frame_enc e;
	const void *data;
	size_t len;
	char key[FRAME_MAX_KEY + 2];
	struct frame_str many[FRAME_MAX_ITEMS + 1];

	(void)state;
	/* fewer fields than declared */
	assert_int_equal(frame_enc_begin(&e, FRAME_PING, 0, 2), 0);
	assert_int_equal(frame_enc_u64(&e, "ts", 1), 0);
	assert_int_equal(frame_enc_finish(&e, &data, &len), -1);
	assert_non_null(strstr(e.err, "2 fields declared, 1 written"));
	frame_enc_free(&e);

	/* more than declared; the error latches */
	assert_int_equal(frame_enc_begin(&e, FRAME_PING, 0, 1), 0);
	assert_int_equal(frame_enc_u64(&e, "ts", 1), 0);
	assert_int_equal(frame_enc_u64(&e, "x", 1), -1);
	assert_int_equal(frame_enc_u64(&e, "y", 1), -1);
	assert_int_equal(frame_enc_finish(&e, &data, &len), -1);
	assert_non_null(strstr(e.err, "more than the 1 fields"));
	frame_enc_free(&e);

	/* duplicate key */
	assert_int_equal(frame_enc_begin(&e, FRAME_PING, 0, 2), 0);
	assert_int_equal(frame_enc_u64(&e, "ts", 1), 0);
	assert_int_equal(frame_enc_u64(&e, "ts", 2), -1);
	assert_non_null(strstr(e.err, "duplicate"));
	frame_enc_free(&e);

	/* over-long key */
	memset(key, 'k', sizeof(key));
	key[FRAME_MAX_KEY + 1] = '\0';
	assert_int_equal(frame_enc_begin(&e, FRAME_METRICS, 0, 1), 0);
	assert_int_equal(frame_enc_u64(&e, key, 1), -1);
	assert_non_null(strstr(e.err, "too long"));
	frame_enc_free(&e);

	/* too many fields, unknown type, too many strv items */
	assert_int_equal(frame_enc_begin(&e, FRAME_METRICS, 0,
	    FRAME_MAX_FIELDS + 1), -1);
	frame_enc_free(&e);
	assert_int_equal(frame_enc_begin(&e, FRAME_TYPE_MAX, 0, 0), -1);
	assert_non_null(strstr(e.err, "unknown frame type"));
	frame_enc_free(&e);
	for (size_t i = 0; i <= FRAME_MAX_ITEMS; i++) {
		many[i].ptr = "m";
		many[i].len = 1;
	}
	assert_int_equal(frame_enc_begin(&e, FRAME_METRICS, 0, 1), 0);
	assert_int_equal(frame_enc_strv(&e, "m", many, FRAME_MAX_ITEMS + 1),
	    -1);
	frame_enc_free(&e);

	/* required field missing is caught at finish */
	assert_int_equal(frame_enc_begin(&e, FRAME_CHALLENGE, 0, 1), 0);
	assert_int_equal(frame_enc_bin(&e, "nonce", nonce, 16), 0);
	assert_int_equal(frame_enc_finish(&e, &data, &len), -1);
	assert_non_null(strstr(e.err, "want 32"));
	frame_enc_free(&e);

	/* i64 of zero or more goes out as a u64 */
	assert_int_equal(frame_enc_begin(&e, FRAME_REQ_END, 7, 2), 0);
	assert_int_equal(frame_enc_i64(&e, "a", 5), 0);
	assert_int_equal(frame_enc_i64(&e, "b", -5), 0);
	assert_int_equal(frame_enc_finish(&e, &data, &len), 0);
	{
		struct frame f;
		uint64_t u;
		int64_t i;

		assert_int_equal(frame_decode(data, len, &f, NULL, 0), 0);
		assert_int_equal(frame_get_u64(&f, "a", &u), 0);
		assert_int_equal(u, 5);
		assert_int_equal(frame_get_i64(&f, "a", &i), 0);
		assert_int_equal(i, 5);
		assert_int_equal(frame_get_i64(&f, "b", &i), 0);
		assert_int_equal(i, -5);
		assert_int_equal(frame_get_u64(&f, "b", &u), -1);
		frame_free(&f);
	}
	frame_enc_free(&e);
}

static void
test_accessors(void **state)
{
	struct frame_enc e;
	struct frame f;
	const void *data;
	unsigned char *copy;
	size_t len;
	const char *s;
	const unsigned char *bp;
	const struct frame_str *v;
	uint64_t u;
	bool b;
	char err[160];

	(void)state;
	build(&e, FRAME_ECHO, 1, &data, &len);
	copy = malloc(len);
	assert_non_null(copy);
	memcpy(copy, data, len);
	assert_int_equal(frame_decode(copy, len, &f, err, sizeof(err)), 0);
	/* the frame owns its data: wipe and free the input */
	memset(copy, 0xee, len);
	free(copy);
	assert_int_equal(frame_get_str(&f, "text", &s, NULL), 0);
	assert_string_equal(s, "hello, tunnel");

	assert_int_equal(frame_get_u64(&f, "missing", &u), -1);
	assert_int_equal(frame_get_u64(&f, "text", &u), -1);
	assert_int_equal(frame_get_str(&f, "x_u64", &s, &len), -1);
	assert_int_equal(frame_get_bin(&f, "x_str", &bp, &len), -1);
	assert_int_equal(frame_get_bool(&f, "x_bin", &b), -1);
	assert_int_equal(frame_get_strv(&f, "x_str", &v, &len), -1);
	assert_int_equal(frame_get_u64(&f, "x_neg", &u), -1);
	assert_int_equal(frame_get_u64(&f, "x_u64", NULL), 0);
	assert_non_null(frame_find(&f, "x_one"));
	assert_null(frame_find(&f, "x_on"));
	frame_free(&f);
	frame_free(&f);			/* idempotent */
	assert_int_equal(f.nfields, 0);
	frame_enc_free(&e);

	memset(&f, 0, sizeof(f));
	frame_free(&f);
	frame_free(NULL);
	/* NULL err buffer is allowed */
	assert_int_equal(frame_decode("\xc0", 1, &f, NULL, 0), -1);
}

/*
 * PACKING: frames queued for one peer go out back to back in one message
 * (outq_pack); frame_decode_next walks them in order.  A frame that breaks
 * inside the message fails there with the frames before it decoded, and
 * frame_decode alone still refuses a packed message.
 */
static void
test_packed(void **state)
{
	static const char *const text[] = { "one", "two", "three" };
	struct outq q = { NULL, NULL, 0 };
	unsigned char *buf, *p, *end;
	struct frame f;
	char err[160];
	size_t len, used, n = 0;

	(void)state;
	for (int i = 0; i < 3; i++) {
		struct frame_enc e;
		const void *d;
		size_t dl;

		frame_enc_begin(&e, FRAME_ECHO, 0, 1);
		frame_enc_cstr(&e, "text", text[i]);
		assert_int_equal(frame_enc_finish(&e, &d, &dl), 0);
		assert_non_null(outq_push(&q, 16, d, dl, NULL, 0));
		frame_enc_free(&e);
	}
	buf = malloc(q.bytes);
	assert_non_null(buf);
	/* Only whole blocks: the third does not fit in the first two's room. */
	assert_int_equal(outq_pack(&q, buf, q.bytes - 1, &len), 2);
	assert_int_equal(len, q.bytes - q.tail->len);
	assert_int_equal(outq_pack(&q, buf, 1, &len), 0);
	assert_int_equal(len, 0);
	assert_int_equal(outq_pack(&q, buf, q.bytes, &len), 3);
	assert_int_equal(len, q.bytes);
	{
		const unsigned char *d;
		size_t dl;

		/* The next write: the first block in place unless packing. */
		assert_int_equal(outq_next(&q, 0, buf, q.bytes, &d, &dl), 1);
		assert_ptr_equal(d, q.head->data);
		assert_int_equal(dl, q.head->len);
		assert_int_equal(outq_next(&q, 1, buf, q.bytes, &d, &dl), 3);
		assert_ptr_equal(d, buf);
		assert_int_equal(dl, q.bytes);
		assert_int_equal(outq_next(&q, 1, buf, q.head->len, &d, &dl),
		    1);
		assert_ptr_equal(d, q.head->data);
	}

	assert_int_equal(frame_decode(buf, len, &f, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "trailing bytes"));
	for (p = buf, end = buf + len; p < end; p += used, n++) {
		const char *s;
		size_t sl;

		assert_int_equal(frame_decode_next(p, (size_t)(end - p), &f,
		    &used, err, sizeof(err)), 0);
		assert_int_equal(f.type, FRAME_ECHO);
		assert_int_equal(frame_get_str(&f, "text", &s, &sl), 0);
		assert_string_equal(s, text[n]);
		frame_free(&f);
	}
	assert_int_equal(n, 3);

	/* The third frame cut short: the first two decode, it does not. */
	len -= 2;
	for (p = buf, n = 0; n < 2; p += used, n++) {
		assert_int_equal(frame_decode_next(p, (size_t)(buf + len - p),
		    &f, &used, err, sizeof(err)), 0);
		frame_free(&f);
	}
	assert_int_equal(frame_decode_next(p, (size_t)(buf + len - p), &f,
	    &used, err, sizeof(err)), -1);
	assert_int_equal(used, 0);
	assert_non_null(strstr(err, "truncated"));
	/* Garbage after whole frames is a malformed frame, not ignored. */
	buf[0] = 0xc1;
	assert_int_equal(frame_decode_next(buf, len, &f, &used, err,
	    sizeof(err)), -1);
	free(buf);

	/* outq_take hands the first block over and leaves the queue whole
	 * (how agentd applies its queued ledger frames); then empty, NULL. */
	{
		size_t before = q.bytes, first = q.head->len;
		struct outq_item *o = outq_take(&q), *second = q.head;

		assert_non_null(o);
		assert_null(o->next);
		assert_int_equal(q.bytes, before - first);
		assert_non_null(second);
		free(o);
		o = outq_take(&q);
		assert_ptr_equal(o, second);
		free(o);
		free(outq_take(&q));
		assert_null(q.head);
		assert_null(q.tail);
		assert_int_equal(q.bytes, 0);
		assert_null(outq_take(&q));
	}
	outq_clear(&q);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_roundtrip_every_type),
		cmocka_unit_test(test_type_names),
		cmocka_unit_test(test_truncated_every_prefix),
		cmocka_unit_test(test_trailing_bytes),
		cmocka_unit_test(test_wrong_version),
		cmocka_unit_test(test_unknown_type),
		cmocka_unit_test(test_wrong_arity),
		cmocka_unit_test(test_payload_not_map),
		cmocka_unit_test(test_missing_required),
		cmocka_unit_test(test_credit_frame),
		cmocka_unit_test(test_window),
		cmocka_unit_test(test_wrong_kind),
		cmocka_unit_test(test_bad_values),
		cmocka_unit_test(test_bad_keys),
		cmocka_unit_test(test_too_many_fields),
		cmocka_unit_test(test_nonce_and_sig_length),
		cmocka_unit_test(test_oversized),
		cmocka_unit_test(test_stream_rules),
		cmocka_unit_test(test_channels),
		cmocka_unit_test(test_encoder_misuse),
		cmocka_unit_test(test_accessors),
		cmocka_unit_test(test_packed),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
