/*
 * lib/frame: encodes and decodes tunnel frames (see frame.h for the wire
 * format).  Owns the per-type table of names, stream rules and required
 * fields, the bounds walk over untrusted bytes, the msgpack object ->
 * struct frame conversion with its per-frame arena, the encoder, and the
 * arithmetic of per-stream credit windows.
 *
 * Buffers kept between frames: every process that uses this file runs one
 * thread and encodes or decodes one frame at a time, thousands a second.
 * A fresh 8 KB msgpack buffer per encoded frame and a fresh 8 KB zone per
 * decoded one went to malloc's slow path every time (agentd: eight of
 * them per relayed request).  The decoder's zone is cleared after each
 * frame; up to ENC_KEEP encoder buffers of at most ENC_KEEP_MAX bytes wait
 * in enc_pool for the next frame_enc_begin.
 */
#include "lib/frame.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ENC_KEEP	4
#define ENC_KEEP_MAX	(64u * 1024)

static struct {
	char	*data;
	size_t	 alloc;
} enc_pool[ENC_KEEP];
static int enc_npool;
static msgpack_zone *dec_zone;	/* NULL until the first decode */

/* Which stream ids a type may use. */
enum stream_rule { STREAM_ANY = 0, STREAM_ZERO, STREAM_NONZERO };

/* One required payload field.  binlen 0: any length. */
struct frame_need {
	const char *key;
	enum frame_kind kind;
	size_t binlen;
};

struct frame_spec {
	const char *name;
	enum stream_rule stream;
	const struct frame_need *need;	/* ends with key == NULL */
	/* When the bool field `unless` (itself in need[]) is false, the
	 * fields in extra[] are required too.  Used by channels. */
	const char *unless;
	const struct frame_need *extra;
};

#define NEED(...)	((const struct frame_need[]){ __VA_ARGS__, { NULL, FK_NONE, 0 } })

static const struct frame_spec specs[FRAME_TYPE_MAX] = {
	/* hello may also carry public_ip:str (what GET /probe answered) and
	 * os, arch:str (its platform, as release manifests name it). */
	[FRAME_HELLO] = { "hello", STREAM_ZERO,
	    NEED({ "version", FK_STR, 0 }), NULL, NULL },
	[FRAME_CHALLENGE] = { "challenge", STREAM_ZERO,
	    NEED({ "nonce", FK_BIN, FRAME_NONCE_LEN }), NULL, NULL },
	[FRAME_AUTH] = { "auth", STREAM_ZERO,
	    NEED({ "agent_id", FK_U64, 0 }, { "sig", FK_BIN, FRAME_SIG_LEN }),
	    NULL, NULL },
	/* welcome may also carry ledger_key:bin and hello:bool (the hub
	 * takes hello frames). */
	[FRAME_WELCOME] = { "welcome", STREAM_ZERO,
	    NEED({ "session", FK_U64, 0 }), NULL, NULL },
	[FRAME_CHANNELS] = { "channels", STREAM_ZERO,
	    NEED({ "done", FK_BOOL, 0 }), "done",
	    NEED({ "name", FK_STR, 0 }, { "provider", FK_STR, 0 },
		{ "models", FK_STRV, 0 }, { "grade", FK_STR, 0 },
		{ "rpm", FK_U64, 0 }, { "tpm", FK_U64, 0 }) },
	/* metrics may also carry bucket_requests, bucket_tokens:u64 (what
	 * the agent's rpm/tpm buckets hold; absent: no such limit). */
	[FRAME_METRICS] = { "metrics", STREAM_ZERO,
	    NEED({ "channel", FK_STR, 0 }, { "minute", FK_U64, 0 },
		{ "requests", FK_U64, 0 }, { "tokens", FK_U64, 0 },
		{ "errors", FK_U64, 0 }, { "inflight", FK_U64, 0 },
		{ "latency_ms", FK_U64, 0 }), NULL, NULL },
	[FRAME_REQ_START] = { "req_start", STREAM_NONZERO,
	    NEED({ "channel", FK_STR, 0 }, { "op", FK_STR, 0 },
		{ "model", FK_STR, 0 }, { "stream", FK_BOOL, 0 },
		{ "content_type", FK_STR, 0 }), NULL, NULL },
	[FRAME_REQ_BODY] = { "req_body", STREAM_NONZERO,
	    NEED({ "data", FK_BIN, 0 }), NULL, NULL },
	[FRAME_REQ_END] = { "req_end", STREAM_NONZERO, NULL, NULL, NULL },
	[FRAME_RESP_HEAD] = { "resp_head", STREAM_NONZERO,
	    NEED({ "status", FK_U64, 0 }, { "content_type", FK_STR, 0 }),
	    NULL, NULL },
	[FRAME_RESP_CHUNK] = { "resp_chunk", STREAM_NONZERO,
	    NEED({ "data", FK_BIN, 0 }), NULL, NULL },
	/* resp_end may also carry error:str and input_tokens, output_tokens,
	 * cached_tokens:u64 (the usage the agent read). */
	[FRAME_RESP_END] = { "resp_end", STREAM_NONZERO,
	    NEED({ "ok", FK_BOOL, 0 }), NULL, NULL },
	[FRAME_CANCEL] = { "cancel", STREAM_NONZERO, NULL, NULL, NULL },
	[FRAME_RECEIPT] = { "receipt", STREAM_ZERO,
	    NEED({ "seq", FK_U64, 0 }, { "prev_hash", FK_STR, 0 },
		{ "hash", FK_STR, 0 }, { "request_id", FK_STR, 0 },
		{ "token_id", FK_U64, 0 }, { "model", FK_STR, 0 },
		{ "input_tokens", FK_U64, 0 }, { "output_tokens", FK_U64, 0 },
		{ "cached_tokens", FK_U64, 0 },
		{ "cache_write_tokens", FK_U64, 0 },
		{ "price_version", FK_U64, 0 }, { "amount", FK_U64, 0 },
		{ "created_at", FK_U64, 0 }, { "agent_reported", FK_BOOL, 0 }),
	    NULL, NULL },	/* sig:bin[64] only on a batch's last entry */
	[FRAME_RECEIPT_ACK] = { "receipt_ack", STREAM_ZERO,
	    NEED({ "seq", FK_U64, 0 }, { "hash", FK_STR, 0 },
		{ "ok", FK_BOOL, 0 }, { "stored", FK_BOOL, 0 }), NULL, NULL },
	[FRAME_SYNC] = { "sync", STREAM_ZERO,
	    NEED({ "last_seq", FK_U64, 0 }), NULL, NULL },
	[FRAME_PRICE_UPDATE] = { "price_update", STREAM_ZERO,
	    NEED({ "model", FK_STR, 0 }, { "version", FK_U64, 0 },
		{ "input", FK_U64, 0 }, { "output", FK_U64, 0 },
		{ "cached_input", FK_U64, 0 }, { "cache_write", FK_U64, 0 }),
	    NULL, NULL },
	[FRAME_KICK] = { "kick", STREAM_ANY,
	    NEED({ "reason", FK_STR, 0 }), NULL, NULL },
	[FRAME_UPDATE_AVAILABLE] = { "update_available", STREAM_ZERO,
	    NEED({ "version", FK_STR, 0 }), NULL, NULL },
	[FRAME_PING] = { "ping", STREAM_ANY, NEED({ "ts", FK_U64, 0 }), NULL, NULL },
	[FRAME_PONG] = { "pong", STREAM_ANY, NEED({ "ts", FK_U64, 0 }), NULL, NULL },
	[FRAME_ECHO] = { "echo", STREAM_ANY, NEED({ "text", FK_STR, 0 }), NULL, NULL },
	[FRAME_ECHO_REPLY] = { "echo_reply", STREAM_ANY,
	    NEED({ "text", FK_STR, 0 }), NULL, NULL },
	[FRAME_CREDIT] = { "credit", STREAM_NONZERO,
	    NEED({ "bytes", FK_U64, 0 }), NULL, NULL },
	[FRAME_ERROR] = { "error", STREAM_ANY,
	    NEED({ "code", FK_STR, 0 }, { "message", FK_STR, 0 }), NULL, NULL },
	[FRAME_USAGE] = { "usage", STREAM_ZERO,
	    NEED({ "request_id", FK_STR, 0 }, { "model", FK_STR, 0 },
		{ "input_tokens", FK_U64, 0 }, { "output_tokens", FK_U64, 0 },
		{ "cached_tokens", FK_U64, 0 },
		{ "cache_write_tokens", FK_U64, 0 },
		{ "estimated", FK_BOOL, 0 }), NULL, NULL },
	[FRAME_USAGE_ACK] = { "usage_ack", STREAM_ZERO,
	    NEED({ "request_id", FK_STR, 0 }, { "result", FK_STR, 0 }),
	    NULL, NULL },
	/* status: "accepted" or "rejected"; reason: the operator's words. */
	[FRAME_DISPUTE_RESULT] = { "dispute_result", STREAM_ZERO,
	    NEED({ "seq", FK_U64, 0 }, { "request_id", FK_STR, 0 },
		{ "status", FK_STR, 0 }, { "reason", FK_STR, 0 }), NULL, NULL },
	[FRAME_WS_MSG] = { "ws_msg", STREAM_NONZERO,
	    NEED({ "data", FK_BIN, 0 }, { "text", FK_BOOL, 0 }), NULL, NULL },
};

static int fail(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int
fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err != NULL && errlen > 0) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return -1;
}

static int
type_known(uint64_t t)
{
	return t >= FRAME_HELLO && t < FRAME_TYPE_MAX;
}

const char *
frame_type_name(unsigned type)
{
	return type_known(type) ? specs[type].name : "unknown";
}

const char *
frame_kind_name(enum frame_kind k)
{
	switch (k) {
	case FK_U64:	return "u64";
	case FK_I64:	return "i64";
	case FK_BOOL:	return "bool";
	case FK_STR:	return "str";
	case FK_BIN:	return "bin";
	case FK_STRV:	return "strv";
	case FK_NONE:	break;
	}
	return "none";
}

/* Header rules shared by decoder and encoder; type must be known. */
static int
check_stream(uint32_t type, uint32_t stream_id, char *err, size_t errlen)
{
	switch (specs[type].stream) {
	case STREAM_ZERO:
		if (stream_id != 0)
			return fail(err, errlen, "%s frame on stream %" PRIu32
			    ", must be connection-level (0)", specs[type].name,
			    stream_id);
		break;
	case STREAM_NONZERO:
		if (stream_id == 0)
			return fail(err, errlen, "%s frame on stream 0, needs "
			    "a stream", specs[type].name);
		break;
	case STREAM_ANY:
		break;
	}
	return 0;
}

static int
check_needs(const struct frame *f, const struct frame_need *n, char *err,
    size_t errlen)
{
	const char *tname = specs[f->type].name;
	const struct frame_field *fld;

	for (; n != NULL && n->key != NULL; n++) {
		if ((fld = frame_find(f, n->key)) == NULL)
			return fail(err, errlen, "%s frame: missing field "
			    "\"%s\"", tname, n->key);
		if (fld->kind != n->kind)
			return fail(err, errlen, "%s frame: field \"%s\" is "
			    "%s, want %s", tname, n->key,
			    frame_kind_name(fld->kind), frame_kind_name(n->kind));
		if (n->binlen != 0 && fld->v.bin.len != n->binlen)
			return fail(err, errlen, "%s frame: field \"%s\" is "
			    "%zu bytes, want %zu", tname, n->key,
			    fld->v.bin.len, n->binlen);
	}
	return 0;
}

/* The per-type required fields.  Works on decoded frames and on the
 * encoder's shadow (which has kinds, lengths and bools but no data). */
static int
check_required(const struct frame *f, char *err, size_t errlen)
{
	const struct frame_spec *s = &specs[f->type];
	bool b;

	if (check_needs(f, s->need, err, errlen) == -1)
		return -1;
	if (s->unless != NULL && frame_get_bool(f, s->unless, &b) == 0 && !b)
		return check_needs(f, s->extra, err, errlen);
	return 0;
}

static int
check_key(const char *key, size_t len, char *err, size_t errlen)
{
	if (len == 0)
		return fail(err, errlen, "empty field key");
	if (len > FRAME_MAX_KEY)
		return fail(err, errlen, "field key of %zu bytes is too long "
		    "(max %d)", len, FRAME_MAX_KEY);
	if (memchr(key, '\0', len) != NULL)
		return fail(err, errlen, "field key contains a NUL byte");
	return 0;
}

/*
 * Bounds walk over the raw bytes, before msgpack-c sees them: msgpack-c
 * allocates `count` objects for a container header before it knows the
 * elements are there, so a 5-byte array32 header could ask for 100 GB.
 * Every length and count is checked against the bytes left, containers
 * against the protocol limits and the nesting depth.
 */
struct scan {
	const unsigned char *p;
	size_t len, off;
	char *err;
	size_t errlen;
};

static int
scan_need(struct scan *s, size_t n)
{
	if (n > s->len - s->off)
		return fail(s->err, s->errlen, "truncated frame (%zu bytes)",
		    s->len);
	return 0;
}

static int
scan_skip(struct scan *s, uint64_t n)
{
	if (n > s->len - s->off)
		return fail(s->err, s->errlen, "truncated frame (%zu bytes)",
		    s->len);
	s->off += (size_t)n;
	return 0;
}

/* Read a big-endian unsigned of `width` bytes (1, 2 or 4). */
static int
scan_uint(struct scan *s, size_t width, uint64_t *out)
{
	uint64_t v = 0;

	if (scan_need(s, width) == -1)
		return -1;
	for (size_t i = 0; i < width; i++)
		v = (v << 8) | s->p[s->off + i];
	s->off += width;
	*out = v;
	return 0;
}

static int scan_value(struct scan *s, int depth);

static int
scan_array(struct scan *s, uint64_t n, int depth)
{
	if (depth == 0)
		return fail(s->err, s->errlen, "values nested too deep");
	if (n > FRAME_MAX_ITEMS)
		return fail(s->err, s->errlen, "array of %" PRIu64 " items is "
		    "too long (max %d)", n, FRAME_MAX_ITEMS);
	for (uint64_t i = 0; i < n; i++)
		if (scan_value(s, depth - 1) == -1)
			return -1;
	return 0;
}

static int
scan_map(struct scan *s, uint64_t n, int depth)
{
	if (depth == 0)
		return fail(s->err, s->errlen, "values nested too deep");
	if (n > FRAME_MAX_FIELDS)
		return fail(s->err, s->errlen, "too many fields (%" PRIu64
		    ", max %d)", n, FRAME_MAX_FIELDS);
	for (uint64_t i = 0; i < n; i++) {
		if (scan_value(s, 0) == -1 || scan_value(s, depth - 1) == -1)
			return -1;
	}
	return 0;
}

/* Skip one msgpack object; depth is how many containers may still nest. */
static int
scan_value(struct scan *s, int depth)
{
	static const unsigned char fixed[] = {	/* 0xca..0xd8: body bytes */
		4, 8,			/* float32, float64 */
		1, 2, 4, 8,		/* uint8..uint64 */
		1, 2, 4, 8,		/* int8..int64 */
		2, 3, 5, 9, 17		/* fixext1..16, with the ext type */
	};
	uint64_t n;
	unsigned char c;

	if (scan_need(s, 1) == -1)
		return -1;
	c = s->p[s->off++];
	if (c <= 0x7f || c >= 0xe0 || c == 0xc0 || c == 0xc2 || c == 0xc3)
		return 0;		/* fixint, nil, bool */
	if (c <= 0x8f)
		return scan_map(s, c & 0x0f, depth);
	if (c <= 0x9f)
		return scan_array(s, c & 0x0f, depth);
	if (c <= 0xbf)
		return scan_skip(s, c & 0x1f);
	if (c >= 0xca && c <= 0xd8)
		return scan_skip(s, fixed[c - 0xca]);
	switch (c) {
	case 0xc4: case 0xd9:		/* bin8, str8 */
		return scan_uint(s, 1, &n) == -1 ? -1 : scan_skip(s, n);
	case 0xc5: case 0xda:		/* bin16, str16 */
		return scan_uint(s, 2, &n) == -1 ? -1 : scan_skip(s, n);
	case 0xc6: case 0xdb:		/* bin32, str32 */
		return scan_uint(s, 4, &n) == -1 ? -1 : scan_skip(s, n);
	case 0xc7:			/* ext8/16/32: length, type, body */
		return scan_uint(s, 1, &n) == -1 ? -1 : scan_skip(s, n + 1);
	case 0xc8:
		return scan_uint(s, 2, &n) == -1 ? -1 : scan_skip(s, n + 1);
	case 0xc9:
		return scan_uint(s, 4, &n) == -1 ? -1 : scan_skip(s, n + 1);
	case 0xdc:
		return scan_uint(s, 2, &n) == -1 ? -1 : scan_array(s, n, depth);
	case 0xdd:
		return scan_uint(s, 4, &n) == -1 ? -1 : scan_array(s, n, depth);
	case 0xde:
		return scan_uint(s, 2, &n) == -1 ? -1 : scan_map(s, n, depth);
	case 0xdf:
		return scan_uint(s, 4, &n) == -1 ? -1 : scan_map(s, n, depth);
	default:			/* 0xc1 */
		return fail(s->err, s->errlen, "invalid msgpack byte 0x%02x",
		    c);
	}
}

static int
is_container(unsigned char c)
{
	return (c >= 0x80 && c <= 0x9f) || (c >= 0xdc && c <= 0xdf);
}

/* The outer shape of the frame at p: array of 4, three scalars, payload.
 * Its length in *used (what follows it is the caller's business). */
static int
scan_frame(const unsigned char *p, size_t len, size_t *used, char *err,
    size_t errlen)
{
	static const char *const hdr[] = { "version", "type", "stream id" };
	struct scan s = { p, len, 0, err, errlen };
	uint64_t n;
	unsigned char c;

	if (len == 0)
		return fail(err, errlen, "empty frame");
	if (len > FRAME_MAX)
		return fail(err, errlen, "frame of %zu bytes is too large "
		    "(max %u)", len, FRAME_MAX);
	c = p[s.off++];
	if (c >= 0x90 && c <= 0x9f)
		n = c & 0x0f;
	else if (c == 0xdc) {
		if (scan_uint(&s, 2, &n) == -1)
			return -1;
	} else if (c == 0xdd) {
		if (scan_uint(&s, 4, &n) == -1)
			return -1;
	} else
		return fail(err, errlen, "frame is not a msgpack array");
	if (n != 4)
		return fail(err, errlen, "frame is an array of %" PRIu64
		    " elements, want 4", n);
	for (int i = 0; i < 3; i++) {
		if (scan_need(&s, 1) == -1)
			return -1;
		if (is_container(p[s.off]))
			return fail(err, errlen, "frame %s is not an unsigned "
			    "integer", hdr[i]);
		if (scan_value(&s, 0) == -1)
			return -1;
	}
	/* payload map > strv array > str */
	if (scan_value(&s, 2) == -1)
		return -1;
	*used = s.off;
	return 0;
}

/* Bump allocator over a frame's arena, sized exactly beforehand. */
struct arena {
	unsigned char *base;
	size_t cap, used;
};

static void *
arena_take(struct arena *a, size_t n, size_t align)
{
	size_t off = (a->used + align - 1) & ~(align - 1);
	void *p;

	if (off > a->cap || n > a->cap - off)
		abort();		/* sizing pass is wrong: a bug here */
	p = a->base + off;
	a->used = off + n;
	return p;
}

static const char *
arena_strdup(struct arena *a, const char *s, size_t len)
{
	char *d = arena_take(a, len + 1, 1);

	if (len > 0)
		memcpy(d, s, len);
	d[len] = '\0';
	return d;
}

/* Arena bytes a strv of this array needs, alignment slack included. */
static size_t
strv_size(const msgpack_object_array *arr)
{
	size_t sz = _Alignof(struct frame_str) - 1 +
	    arr->size * sizeof(struct frame_str);

	for (uint32_t i = 0; i < arr->size; i++)
		sz += arr->ptr[i].via.str.size + 1;
	return sz;
}

static const char *
obj_type_name(msgpack_object_type t)
{
	switch (t) {
	case MSGPACK_OBJECT_NIL:	return "nil";
	case MSGPACK_OBJECT_FLOAT32:
	case MSGPACK_OBJECT_FLOAT64:	return "float";
	case MSGPACK_OBJECT_EXT:	return "ext";
	case MSGPACK_OBJECT_MAP:	return "map";
	case MSGPACK_OBJECT_ARRAY:	return "array";
	default:			return "value";
	}
}

/* Header of the unpacked array: version, type, stream id. */
static int
decode_header(const msgpack_object *e, struct frame *f, char *err,
    size_t errlen)
{
	if (e[0].type != MSGPACK_OBJECT_POSITIVE_INTEGER)
		return fail(err, errlen, "frame version is not an unsigned "
		    "integer");
	if (e[0].via.u64 != FRAME_VERSION)
		return fail(err, errlen, "unsupported frame version %" PRIu64
		    " (want %d)", e[0].via.u64, FRAME_VERSION);
	if (e[1].type != MSGPACK_OBJECT_POSITIVE_INTEGER)
		return fail(err, errlen, "frame type is not an unsigned "
		    "integer");
	if (!type_known(e[1].via.u64))
		return fail(err, errlen, "unknown frame type %" PRIu64,
		    e[1].via.u64);
	if (e[2].type != MSGPACK_OBJECT_POSITIVE_INTEGER)
		return fail(err, errlen, "frame stream id is not an unsigned "
		    "integer");
	if (e[2].via.u64 > UINT32_MAX)
		return fail(err, errlen, "stream id %" PRIu64 " out of range",
		    e[2].via.u64);
	f->version = FRAME_VERSION;
	f->type = (uint32_t)e[1].via.u64;
	f->stream_id = (uint32_t)e[2].via.u64;
	if (check_stream(f->type, f->stream_id, err, errlen) == -1)
		return -1;
	if (e[3].type != MSGPACK_OBJECT_MAP)
		return fail(err, errlen, "%s frame: payload is not a map",
		    specs[f->type].name);
	return 0;
}

/*
 * Pass 1 over the payload: keys, kinds and scalars into f->fields, and the
 * arena bytes the strings will need.  Nothing is allocated.
 */
static int
decode_fields(const msgpack_object_map *m, struct frame *f, size_t *need,
    char *err, size_t errlen)
{
	const char *tname = specs[f->type].name;

	*need = 0;
	if (m->size > FRAME_MAX_FIELDS)		/* the scan saw to it */
		return fail(err, errlen, "too many fields");
	for (uint32_t i = 0; i < m->size; i++) {
		const msgpack_object *k = &m->ptr[i].key;
		const msgpack_object *v = &m->ptr[i].val;
		struct frame_field *fld = &f->fields[i];

		if (k->type != MSGPACK_OBJECT_STR)
			return fail(err, errlen, "%s frame: field key %" PRIu32
			    " is not a string", tname, i);
		if (check_key(k->via.str.ptr, k->via.str.size, err,
		    errlen) == -1)
			return -1;
		memcpy(fld->key, k->via.str.ptr, k->via.str.size);
		fld->key[k->via.str.size] = '\0';
		if (frame_find(f, fld->key) != NULL)
			return fail(err, errlen, "%s frame: duplicate field "
			    "\"%s\"", tname, fld->key);

		switch (v->type) {
		case MSGPACK_OBJECT_POSITIVE_INTEGER:
			fld->kind = FK_U64;
			fld->v.u64 = v->via.u64;
			break;
		case MSGPACK_OBJECT_NEGATIVE_INTEGER:
			fld->kind = FK_I64;
			fld->v.i64 = v->via.i64;
			break;
		case MSGPACK_OBJECT_BOOLEAN:
			fld->kind = FK_BOOL;
			fld->v.b = v->via.boolean;
			break;
		case MSGPACK_OBJECT_STR:
			fld->kind = FK_STR;
			fld->v.str.len = v->via.str.size;
			*need += v->via.str.size + 1;
			break;
		case MSGPACK_OBJECT_BIN:
			fld->kind = FK_BIN;
			fld->v.bin.len = v->via.bin.size;
			*need += v->via.bin.size + 1;
			break;
		case MSGPACK_OBJECT_ARRAY:
			for (uint32_t j = 0; j < v->via.array.size; j++)
				if (v->via.array.ptr[j].type !=
				    MSGPACK_OBJECT_STR)
					return fail(err, errlen, "%s frame: "
					    "field \"%s\": array items must be "
					    "strings", tname, fld->key);
			fld->kind = FK_STRV;
			fld->v.strv.n = v->via.array.size;
			*need += strv_size(&v->via.array);
			break;
		default:
			return fail(err, errlen, "%s frame: field \"%s\": "
			    "unsupported value type %s", tname, fld->key,
			    obj_type_name(v->type));
		}
		f->nfields = i + 1;
	}
	return 0;
}

/* Pass 2: copy strings, bins and strvs into the arena. */
static void
copy_fields(const msgpack_object_map *m, struct frame *f, struct arena *a)
{
	for (uint32_t i = 0; i < m->size; i++) {
		const msgpack_object *v = &m->ptr[i].val;
		struct frame_field *fld = &f->fields[i];
		struct frame_str *sv;

		switch (fld->kind) {
		case FK_STR:
			fld->v.str.ptr = arena_strdup(a, v->via.str.ptr,
			    v->via.str.size);
			break;
		case FK_BIN:
			fld->v.bin.ptr = (const unsigned char *)arena_strdup(a,
			    v->via.bin.ptr, v->via.bin.size);
			break;
		case FK_STRV:
			sv = arena_take(a, fld->v.strv.n * sizeof(*sv),
			    _Alignof(struct frame_str));
			for (size_t j = 0; j < fld->v.strv.n; j++) {
				const msgpack_object_str *s =
				    &v->via.array.ptr[j].via.str;

				sv[j].ptr = arena_strdup(a, s->ptr, s->size);
				sv[j].len = s->size;
			}
			fld->v.strv.v = sv;
			break;
		default:
			break;
		}
	}
}

/* Decode buf[0..len), which scan_frame walked as exactly one frame. */
static int
decode_scanned(const void *buf, size_t len, struct frame *f, char *err,
    size_t errlen)
{
	msgpack_object up;
	const msgpack_object *root;
	struct arena a = { NULL, 0, 0 };
	size_t off = 0, need;
	int rc = -1;

	if (dec_zone == NULL &&
	    (dec_zone = msgpack_zone_new(MSGPACK_ZONE_CHUNK_SIZE)) == NULL)
		return fail(err, errlen, "out of memory");
	switch (msgpack_unpack(buf, len, &off, dec_zone, &up)) {
	case MSGPACK_UNPACK_SUCCESS:
	case MSGPACK_UNPACK_EXTRA_BYTES:	/* refused below */
		break;
	case MSGPACK_UNPACK_NOMEM_ERROR:
		fail(err, errlen, "out of memory");
		goto out;
	case MSGPACK_UNPACK_CONTINUE:
		fail(err, errlen, "truncated frame (%zu bytes)", len);
		goto out;
	default:
		fail(err, errlen, "malformed msgpack");
		goto out;
	}
	if (off != len) {
		fail(err, errlen, "%zu trailing bytes after frame", len - off);
		goto out;
	}
	root = &up;
	if (root->type != MSGPACK_OBJECT_ARRAY || root->via.array.size != 4) {
		fail(err, errlen, "frame is not an array of 4");
		goto out;
	}
	if (decode_header(root->via.array.ptr, f, err, errlen) == -1 ||
	    decode_fields(&root->via.array.ptr[3].via.map, f, &need, err,
	    errlen) == -1 ||
	    check_required(f, err, errlen) == -1)
		goto out;
	if (need > 0) {
		if ((a.base = malloc(need)) == NULL) {
			fail(err, errlen, "out of memory");
			goto out;
		}
		a.cap = need;
		copy_fields(&root->via.array.ptr[3].via.map, f, &a);
		f->arena = a.base;
	}
	rc = 0;
out:
	msgpack_zone_clear(dec_zone);	/* keeps its first chunk */
	if (rc == -1)
		memset(f, 0, sizeof(*f));
	return rc;
}

static int
decode_begin(const void *buf, size_t len, struct frame *f, size_t *used,
    char *err, size_t errlen)
{
	memset(f, 0, sizeof(*f));
	if (err != NULL && errlen > 0)
		err[0] = '\0';
	if (buf == NULL && len > 0)
		return fail(err, errlen, "no buffer");
	return scan_frame(buf, len, used, err, errlen);
}

int
frame_decode(const void *buf, size_t len, struct frame *f, char *err,
    size_t errlen)
{
	size_t used;

	if (decode_begin(buf, len, f, &used, err, errlen) == -1)
		return -1;
	if (used != len)
		return fail(err, errlen, "%zu trailing bytes after frame",
		    len - used);
	return decode_scanned(buf, len, f, err, errlen);
}

int
frame_decode_next(const void *buf, size_t len, struct frame *f, size_t *used,
    char *err, size_t errlen)
{
	if (decode_begin(buf, len, f, used, err, errlen) == -1 ||
	    decode_scanned(buf, *used, f, err, errlen) == -1) {
		*used = 0;
		return -1;
	}
	return 0;
}

void
frame_free(struct frame *f)
{
	if (f == NULL)
		return;
	free(f->arena);
	memset(f, 0, sizeof(*f));
}

const struct frame_field *
frame_find(const struct frame *f, const char *key)
{
	/* The first byte first: most keys differ there, and a frame of 20
	 * fields is searched once per field it gets and per field it needs. */
	for (size_t i = 0; i < f->nfields; i++)
		if (f->fields[i].key[0] == key[0] &&
		    strcmp(f->fields[i].key, key) == 0)
			return &f->fields[i];
	return NULL;
}

static const struct frame_field *
find_kind(const struct frame *f, const char *key, enum frame_kind kind)
{
	const struct frame_field *fld = frame_find(f, key);

	return fld != NULL && fld->kind == kind ? fld : NULL;
}

int
frame_get_u64(const struct frame *f, const char *key, uint64_t *out)
{
	const struct frame_field *fld = find_kind(f, key, FK_U64);

	if (fld == NULL)
		return -1;
	if (out != NULL)
		*out = fld->v.u64;
	return 0;
}

int
frame_get_i64(const struct frame *f, const char *key, int64_t *out)
{
	const struct frame_field *fld = frame_find(f, key);
	int64_t v;

	if (fld == NULL)
		return -1;
	if (fld->kind == FK_I64)
		v = fld->v.i64;
	else if (fld->kind == FK_U64 && fld->v.u64 <= INT64_MAX)
		v = (int64_t)fld->v.u64;
	else
		return -1;
	if (out != NULL)
		*out = v;
	return 0;
}

int
frame_get_bool(const struct frame *f, const char *key, bool *out)
{
	const struct frame_field *fld = find_kind(f, key, FK_BOOL);

	if (fld == NULL)
		return -1;
	if (out != NULL)
		*out = fld->v.b;
	return 0;
}

int
frame_get_str(const struct frame *f, const char *key, const char **ptr,
    size_t *len)
{
	const struct frame_field *fld = find_kind(f, key, FK_STR);

	if (fld == NULL)
		return -1;
	if (ptr != NULL)
		*ptr = fld->v.str.ptr;
	if (len != NULL)
		*len = fld->v.str.len;
	return 0;
}

int
frame_get_bin(const struct frame *f, const char *key,
    const unsigned char **ptr, size_t *len)
{
	const struct frame_field *fld = find_kind(f, key, FK_BIN);

	if (fld == NULL)
		return -1;
	if (ptr != NULL)
		*ptr = fld->v.bin.ptr;
	if (len != NULL)
		*len = fld->v.bin.len;
	return 0;
}

int
frame_get_strv(const struct frame *f, const char *key,
    const struct frame_str **v, size_t *n)
{
	const struct frame_field *fld = find_kind(f, key, FK_STRV);

	if (fld == NULL)
		return -1;
	if (v != NULL)
		*v = fld->v.strv.v;
	if (n != NULL)
		*n = fld->v.strv.n;
	return 0;
}

static int
bytes_equal(const void *a, size_t alen, const void *b, size_t blen)
{
	return alen == blen && (alen == 0 || memcmp(a, b, alen) == 0);
}

static int
field_equal(const struct frame_field *a, const struct frame_field *b)
{
	if (a->kind != b->kind)
		return 0;
	switch (a->kind) {
	case FK_U64:
		return a->v.u64 == b->v.u64;
	case FK_I64:
		return a->v.i64 == b->v.i64;
	case FK_BOOL:
		return a->v.b == b->v.b;
	case FK_STR:
		return bytes_equal(a->v.str.ptr, a->v.str.len, b->v.str.ptr,
		    b->v.str.len);
	case FK_BIN:
		return bytes_equal(a->v.bin.ptr, a->v.bin.len, b->v.bin.ptr,
		    b->v.bin.len);
	case FK_STRV:
		if (a->v.strv.n != b->v.strv.n)
			return 0;
		for (size_t i = 0; i < a->v.strv.n; i++)
			if (!bytes_equal(a->v.strv.v[i].ptr, a->v.strv.v[i].len,
			    b->v.strv.v[i].ptr, b->v.strv.v[i].len))
				return 0;
		return 1;
	case FK_NONE:
		break;
	}
	return 1;
}

void
frame_window_init(struct frame_window *w)
{
	w->avail = FRAME_WINDOW;
}

int
frame_window_spend(struct frame_window *w, size_t n)
{
	if (n > w->avail)
		return -1;
	w->avail -= (uint32_t)n;
	return 0;
}

int
frame_window_grant(struct frame_window *w, uint64_t n)
{
	if (n > FRAME_WINDOW - w->avail) {
		w->avail = FRAME_WINDOW;
		return -1;
	}
	w->avail += (uint32_t)n;
	return 0;
}

int
frame_equal(const struct frame *a, const struct frame *b)
{
	const struct frame_field *fb;

	if (a->version != b->version || a->type != b->type ||
	    a->stream_id != b->stream_id || a->nfields != b->nfields)
		return 0;
	for (size_t i = 0; i < a->nfields; i++) {
		if ((fb = frame_find(b, a->fields[i].key)) == NULL ||
		    !field_equal(&a->fields[i], fb))
			return 0;
	}
	return 1;
}

/* Encoder. */

static int enc_fail(struct frame_enc *e, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int
enc_fail(struct frame_enc *e, const char *fmt, ...)
{
	va_list ap;

	if (!e->failed) {
		va_start(ap, fmt);
		vsnprintf(e->err, sizeof(e->err), fmt, ap);
		va_end(ap);
		e->failed = 1;
	}
	return -1;
}

/* Nonzero from a msgpack_pack_* call means the sbuffer could not grow. */
static int
enc_check(struct frame_enc *e, int packrc)
{
	if (packrc != 0)
		return enc_fail(e, "out of memory");
	if (e->sbuf.size > FRAME_MAX)
		return enc_fail(e, "frame exceeds %u bytes", FRAME_MAX);
	return 0;
}

int
frame_enc_begin(struct frame_enc *e, enum frame_type type,
    uint32_t stream_id, size_t nfields)
{
	int rc;

	memset(e, 0, sizeof(*e));
	msgpack_sbuffer_init(&e->sbuf);
	msgpack_packer_init(&e->pk, &e->sbuf, msgpack_sbuffer_write);
	if (!type_known((uint64_t)type))
		return enc_fail(e, "unknown frame type %d", (int)type);
	if (check_stream(type, stream_id, e->err, sizeof(e->err)) == -1) {
		e->failed = 1;
		return -1;
	}
	if (nfields > FRAME_MAX_FIELDS)
		return enc_fail(e, "%zu fields declared (max %d)", nfields,
		    FRAME_MAX_FIELDS);
	e->type = type;
	e->stream_id = stream_id;
	e->declared = nfields;
	e->shadow.version = FRAME_VERSION;
	e->shadow.type = type;
	e->shadow.stream_id = stream_id;
	if (enc_npool > 0) {	/* only here: a failed begin holds nothing */
		enc_npool--;
		e->sbuf.data = enc_pool[enc_npool].data;
		e->sbuf.alloc = enc_pool[enc_npool].alloc;
	}
	rc = msgpack_pack_array(&e->pk, 4);
	rc |= msgpack_pack_uint32(&e->pk, FRAME_VERSION);
	rc |= msgpack_pack_uint32(&e->pk, type);
	rc |= msgpack_pack_uint32(&e->pk, stream_id);
	rc |= msgpack_pack_map(&e->pk, nfields);
	return enc_check(e, rc);
}

/* Check and write a key; the shadow field to fill in, or NULL. */
static struct frame_field *
enc_key(struct frame_enc *e, const char *key, enum frame_kind kind)
{
	struct frame_field *fld;
	size_t klen;

	if (e->failed)
		return NULL;
	if (e->shadow.nfields == e->declared) {
		enc_fail(e, "more than the %zu fields declared", e->declared);
		return NULL;
	}
	if (key == NULL) {
		enc_fail(e, "NULL field key");
		return NULL;
	}
	klen = strlen(key);
	if (check_key(key, klen, e->err, sizeof(e->err)) == -1) {
		e->failed = 1;
		return NULL;
	}
	if (frame_find(&e->shadow, key) != NULL) {
		enc_fail(e, "duplicate field \"%s\"", key);
		return NULL;
	}
	fld = &e->shadow.fields[e->shadow.nfields++];
	memcpy(fld->key, key, klen + 1);
	fld->kind = kind;
	if (enc_check(e, msgpack_pack_str_with_body(&e->pk, key, klen)) == -1)
		return NULL;
	return fld;
}

int
frame_enc_u64(struct frame_enc *e, const char *key, uint64_t v)
{
	struct frame_field *fld = enc_key(e, key, FK_U64);

	if (fld == NULL)
		return -1;
	fld->v.u64 = v;
	return enc_check(e, msgpack_pack_uint64(&e->pk, v));
}

int
frame_enc_i64(struct frame_enc *e, const char *key, int64_t v)
{
	struct frame_field *fld;

	if (v >= 0)	/* the wire has no signed zero-or-more: it is a uint */
		return frame_enc_u64(e, key, (uint64_t)v);
	if ((fld = enc_key(e, key, FK_I64)) == NULL)
		return -1;
	fld->v.i64 = v;
	return enc_check(e, msgpack_pack_int64(&e->pk, v));
}

int
frame_enc_bool(struct frame_enc *e, const char *key, bool v)
{
	struct frame_field *fld = enc_key(e, key, FK_BOOL);

	if (fld == NULL)
		return -1;
	fld->v.b = v;
	return enc_check(e, v ? msgpack_pack_true(&e->pk) :
	    msgpack_pack_false(&e->pk));
}

int
frame_enc_str(struct frame_enc *e, const char *key, const char *s,
    size_t len)
{
	struct frame_field *fld;

	if ((fld = enc_key(e, key, FK_STR)) == NULL)
		return -1;
	if (s == NULL && len > 0)
		return enc_fail(e, "field \"%s\": NULL string", key);
	if (len > FRAME_MAX)
		return enc_fail(e, "field \"%s\": %zu bytes is too large",
		    key, len);
	fld->v.str.len = len;
	return enc_check(e, msgpack_pack_str_with_body(&e->pk,
	    s != NULL ? s : "", len));
}

int
frame_enc_cstr(struct frame_enc *e, const char *key, const char *s)
{
	return frame_enc_str(e, key, s, s != NULL ? strlen(s) : 0);
}

int
frame_enc_bin(struct frame_enc *e, const char *key, const void *p,
    size_t len)
{
	struct frame_field *fld;

	if ((fld = enc_key(e, key, FK_BIN)) == NULL)
		return -1;
	if (p == NULL && len > 0)
		return enc_fail(e, "field \"%s\": NULL buffer", key);
	if (len > FRAME_MAX)
		return enc_fail(e, "field \"%s\": %zu bytes is too large",
		    key, len);
	fld->v.bin.len = len;
	return enc_check(e, msgpack_pack_bin_with_body(&e->pk,
	    p != NULL ? p : "", len));
}

int
frame_enc_strv(struct frame_enc *e, const char *key,
    const struct frame_str *v, size_t n)
{
	struct frame_field *fld;

	if ((fld = enc_key(e, key, FK_STRV)) == NULL)
		return -1;
	if (n > FRAME_MAX_ITEMS)
		return enc_fail(e, "field \"%s\": %zu items (max %d)", key, n,
		    FRAME_MAX_ITEMS);
	if (v == NULL && n > 0)
		return enc_fail(e, "field \"%s\": NULL array", key);
	for (size_t i = 0; i < n; i++)
		if ((v[i].ptr == NULL && v[i].len > 0) || v[i].len > FRAME_MAX)
			return enc_fail(e, "field \"%s\": bad item %zu", key,
			    i);
	fld->v.strv.n = n;
	if (enc_check(e, msgpack_pack_array(&e->pk, n)) == -1)
		return -1;
	for (size_t i = 0; i < n; i++)
		if (enc_check(e, msgpack_pack_str_with_body(&e->pk,
		    v[i].ptr != NULL ? v[i].ptr : "", v[i].len)) == -1)
			return -1;
	return 0;
}

int
frame_enc_frame(struct frame_enc *e, const struct frame *f)
{
	if (frame_enc_begin(e, f->type, f->stream_id, f->nfields) == -1)
		return -1;
	for (size_t i = 0; i < f->nfields; i++) {
		const struct frame_field *fld = &f->fields[i];
		int rc = -1;

		switch (fld->kind) {
		case FK_U64:
			rc = frame_enc_u64(e, fld->key, fld->v.u64);
			break;
		case FK_I64:
			rc = frame_enc_i64(e, fld->key, fld->v.i64);
			break;
		case FK_BOOL:
			rc = frame_enc_bool(e, fld->key, fld->v.b);
			break;
		case FK_STR:
			rc = frame_enc_str(e, fld->key, fld->v.str.ptr,
			    fld->v.str.len);
			break;
		case FK_BIN:
			rc = frame_enc_bin(e, fld->key, fld->v.bin.ptr,
			    fld->v.bin.len);
			break;
		case FK_STRV:
			rc = frame_enc_strv(e, fld->key, fld->v.strv.v,
			    fld->v.strv.n);
			break;
		case FK_NONE:
			rc = enc_fail(e, "field \"%s\" has no value", fld->key);
			break;
		}
		if (rc == -1)
			return -1;
	}
	return 0;
}

int
frame_enc_finish(struct frame_enc *e, const void **data, size_t *len)
{
	if (e->failed)
		return -1;
	if (e->shadow.nfields != e->declared)
		return enc_fail(e, "%zu fields declared, %zu written",
		    e->declared, e->shadow.nfields);
	if (e->sbuf.size > FRAME_MAX)
		return enc_fail(e, "frame exceeds %u bytes", FRAME_MAX);
	if (check_required(&e->shadow, e->err, sizeof(e->err)) == -1) {
		e->failed = 1;
		return -1;
	}
	*data = e->sbuf.data;
	*len = e->sbuf.size;
	return 0;
}

void
frame_enc_free(struct frame_enc *e)
{
	if (e->sbuf.data != NULL && e->sbuf.alloc <= ENC_KEEP_MAX &&
	    enc_npool < ENC_KEEP) {
		enc_pool[enc_npool].data = e->sbuf.data;
		enc_pool[enc_npool].alloc = e->sbuf.alloc;
		enc_npool++;
	} else
		msgpack_sbuffer_destroy(&e->sbuf);
	memset(e, 0, sizeof(*e));
}
