/*
 * tests/unit/test_sse: lib/sse, the incremental SSE splitter.  A realistic
 * OpenAI stream must come out as the same events with the same raw bytes
 * however it is cut (every byte boundary, one byte at a time, random
 * blocks), each event as soon as its last byte arrives; line endings,
 * comments, names, multi-line data, the tail at sse_finish, the size bound
 * and the sticky errors are checked against hand-written expectations.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/sse.h"

/* The stream of WIRE-FORMATS.md with a role chunk and cached tokens. */
#define EV_ROLE "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\"," \
	"\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"role\":" \
	"\"assistant\",\"content\":\"\"},\"finish_reason\":null}]," \
	"\"usage\":null}"
#define EV_HI "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\"," \
	"\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"content\":" \
	"\"Hi\"},\"finish_reason\":null}],\"usage\":null}"
#define EV_THERE "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\"," \
	"\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"content\":" \
	"\" there\"},\"finish_reason\":null}],\"usage\":null}"
#define EV_STOP "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\"," \
	"\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{}," \
	"\"finish_reason\":\"stop\"}],\"usage\":null}"
#define EV_USAGE "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\"," \
	"\"model\":\"m\",\"choices\":[],\"usage\":{\"prompt_tokens\":9," \
	"\"completion_tokens\":2,\"total_tokens\":11,\"prompt_tokens_details\":" \
	"{\"cached_tokens\":3},\"completion_tokens_details\":" \
	"{\"reasoning_tokens\":0}}}"
#define EV_DONE "data: [DONE]"

static const char *const openai_lines[] = {
	EV_ROLE, EV_HI, EV_THERE, EV_STOP, EV_USAGE, EV_DONE
};
#define NOPENAI	(sizeof(openai_lines) / sizeof(openai_lines[0]))

struct got {
	char	*raw;
	size_t	 raw_len;
	char	*event;		/* NULL: none */
	char	*data;		/* NULL: none */
	size_t	 data_len;
	int	 terminated;
	size_t	 at;		/* input bytes fed when it came out */
};

struct run {
	struct got	 ev[512];
	size_t		 n;
	int		 rc;	/* -1 if any call failed */
};

static char *
dup_n(const char *p, size_t n)
{
	char *d = malloc(n + 1);

	assert_non_null(d);
	memcpy(d, p, n);
	d[n] = '\0';
	return d;
}

static void
run_free(struct run *r)
{
	size_t i;

	for (i = 0; i < r->n; i++) {
		free(r->ev[i].raw);
		free(r->ev[i].event);
		free(r->ev[i].data);
	}
	free(r);
}

/* Take every ready event; checks the NUL terminators on the way. */
static void
drain(struct sse *s, struct run *r, size_t fed)
{
	struct sse_event ev;
	struct got *g;
	int x;

	while ((x = sse_next(s, &ev)) == 1) {
		assert_true(r->n < sizeof(r->ev) / sizeof(r->ev[0]));
		g = &r->ev[r->n++];
		memset(g, 0, sizeof(*g));
		assert_true(ev.raw_len > 0);
		g->raw = dup_n(ev.raw, ev.raw_len);
		g->raw_len = ev.raw_len;
		if (ev.event != NULL) {
			assert_int_equal(ev.event[ev.event_len], '\0');
			g->event = dup_n(ev.event, ev.event_len);
		}
		if (ev.data != NULL) {
			assert_int_equal(ev.data[ev.data_len], '\0');
			g->data = dup_n(ev.data, ev.data_len);
			g->data_len = ev.data_len;
		} else
			assert_int_equal(ev.data_len, 0);
		g->terminated = ev.terminated;
		g->at = fed;
	}
	if (x == -1)
		r->rc = -1;
}

/*
 * Feed in in blocks: cuts[] are increasing offsets where a block ends
 * (len is implied last), or, with step > 0, blocks of step bytes.  Each
 * block is an exact heap copy so ASan sees any read past it.
 */
static struct run *
feed_blocks(const char *in, size_t len, const size_t *cuts, size_t ncuts,
    size_t step, size_t max, int finish)
{
	struct run *r = calloc(1, sizeof(*r));
	struct sse s;
	size_t off = 0, end, c = 0;
	char *blk;

	assert_non_null(r);
	sse_init(&s, max);
	while (off < len && r->rc == 0) {
		if (step > 0)
			end = off + step < len ? off + step : len;
		else
			end = c < ncuts ? cuts[c++] : len;
		if (end < off)
			end = off;
		blk = dup_n(in + off, end - off);
		if (sse_feed(&s, blk, end - off) == -1)
			r->rc = -1;
		free(blk);
		off = end;
		if (r->rc == 0)
			drain(&s, r, off);
	}
	if (finish && r->rc == 0) {
		sse_finish(&s);
		drain(&s, r, len + 1);	/* "at" past the input: finish */
		assert_int_equal(sse_next(&s, &(struct sse_event){ 0 }),
		    r->rc == 0 ? 0 : -1);
	}
	if (finish && r->rc == 0)
		assert_int_equal(sse_pending(&s), 0);
	sse_free(&s);
	return r;
}

static struct run *
feed_whole(const char *in, size_t len)
{
	return feed_blocks(in, len, NULL, 0, 0, 0, 1);
}

static int
str_eq(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		return a == b;
	return strcmp(a, b) == 0;
}

static void
assert_same(const struct run *a, const struct run *b, const char *what)
{
	size_t i;

	if (a->rc != b->rc || a->n != b->n)
		fail_msg("%s: %zu events rc %d, want %zu rc %d", what, b->n,
		    b->rc, a->n, a->rc);
	for (i = 0; i < a->n; i++) {
		if (a->ev[i].raw_len != b->ev[i].raw_len ||
		    memcmp(a->ev[i].raw, b->ev[i].raw, a->ev[i].raw_len) != 0)
			fail_msg("%s: event %zu raw differs", what, i);
		if (!str_eq(a->ev[i].event, b->ev[i].event))
			fail_msg("%s: event %zu name differs", what, i);
		if (a->ev[i].data_len != b->ev[i].data_len ||
		    (a->ev[i].data == NULL) != (b->ev[i].data == NULL) ||
		    (a->ev[i].data != NULL && memcmp(a->ev[i].data,
		    b->ev[i].data, a->ev[i].data_len) != 0))
			fail_msg("%s: event %zu data differs", what, i);
		if (a->ev[i].terminated != b->ev[i].terminated)
			fail_msg("%s: event %zu terminated differs", what, i);
	}
}

/* Raw ranges, in order, are exactly the input. */
static void
assert_lossless(const struct run *r, const char *in, size_t len)
{
	size_t i, off = 0;

	for (i = 0; i < r->n; i++) {
		assert_true(off + r->ev[i].raw_len <= len);
		assert_memory_equal(r->ev[i].raw, in + off, r->ev[i].raw_len);
		off += r->ev[i].raw_len;
	}
	assert_int_equal(off, len);
}

/* The OpenAI stream with each line ending replaced by eol. */
static char *
openai_stream(const char *eol, size_t *len)
{
	char *s = NULL;
	size_t i, n = 0, el = strlen(eol), ll;

	for (i = 0; i < NOPENAI; i++) {
		ll = strlen(openai_lines[i]);
		s = realloc(s, n + ll + 2 * el + 1);
		assert_non_null(s);
		memcpy(s + n, openai_lines[i], ll);
		n += ll;
		memcpy(s + n, eol, el);
		n += el;
		memcpy(s + n, eol, el);
		n += el;
	}
	s[n] = '\0';
	*len = n;
	return s;
}

/* Hand-written expectations for the whole OpenAI stream. */
static void
check_openai(const struct run *r, const char *eol)
{
	size_t i, el = strlen(eol);
	const char *line;

	assert_int_equal(r->rc, 0);
	assert_int_equal(r->n, NOPENAI);
	for (i = 0; i < NOPENAI; i++) {
		line = openai_lines[i];
		assert_int_equal(r->ev[i].raw_len, strlen(line) + 2 * el);
		assert_memory_equal(r->ev[i].raw, line, strlen(line));
		assert_memory_equal(r->ev[i].raw + strlen(line), eol, el);
		assert_memory_equal(r->ev[i].raw + strlen(line) + el, eol, el);
		assert_null(r->ev[i].event);
		assert_non_null(r->ev[i].data);
		assert_string_equal(r->ev[i].data, line + 6);
		assert_int_equal(r->ev[i].terminated, 1);
	}
	assert_string_equal(r->ev[NOPENAI - 1].data, "[DONE]");
}

static void
test_openai_whole(void **state)
{
	static const char *const eols[] = { "\n", "\r\n", "\r" };
	struct run *r;
	size_t i, len;
	char *in;

	(void)state;
	for (i = 0; i < 3; i++) {
		in = openai_stream(eols[i], &len);
		r = feed_whole(in, len);
		check_openai(r, eols[i]);
		assert_lossless(r, in, len);
		run_free(r);
		free(in);
	}
}

/* Two blocks, cut at every offset, and three blocks around each CRLF. */
static void
test_openai_every_cut(void **state)
{
	static const char *const eols[] = { "\n", "\r\n", "\r" };
	struct run *whole, *r;
	size_t e, k, len;
	char what[64], *in;

	(void)state;
	for (e = 0; e < 3; e++) {
		in = openai_stream(eols[e], &len);
		whole = feed_whole(in, len);
		check_openai(whole, eols[e]);
		for (k = 0; k <= len; k++) {
			r = feed_blocks(in, len, &k, 1, 0, 0, 1);
			snprintf(what, sizeof(what), "eol %zu cut %zu", e, k);
			assert_same(whole, r, what);
			run_free(r);
		}
		for (k = 0; k + 1 < len; k++) {
			size_t cuts[2] = { k, k + 1 };

			if (in[k] != '\r' && in[k] != '\n')
				continue;
			r = feed_blocks(in, len, cuts, 2, 0, 0, 1);
			snprintf(what, sizeof(what), "eol %zu cuts %zu,%zu",
			    e, k, k + 1);
			assert_same(whole, r, what);
			run_free(r);
		}
		run_free(whole);
		free(in);
	}
}

/*
 * One byte at a time: same events, and each one comes out the moment its
 * last byte is fed (for a bare-CR stream, one byte later: the next byte
 * shows no LF follows; the last event at sse_finish).
 */
static void
test_openai_byte_at_a_time(void **state)
{
	static const char *const eols[] = { "\n", "\r\n", "\r" };
	struct run *whole, *r;
	size_t e, i, len, end;
	char *in;

	(void)state;
	for (e = 0; e < 3; e++) {
		in = openai_stream(eols[e], &len);
		whole = feed_whole(in, len);
		r = feed_blocks(in, len, NULL, 0, 1, 0, 1);
		assert_same(whole, r, "byte at a time");
		for (i = 0, end = 0; i < r->n; i++) {
			end += r->ev[i].raw_len;
			if (e < 2)
				assert_int_equal(r->ev[i].at, end);
			else if (i + 1 < r->n)
				assert_int_equal(r->ev[i].at, end + 1);
			else
				assert_int_equal(r->ev[i].at, len + 1);
		}
		run_free(r);

		/* Without sse_finish nothing but the bare-CR tail is lost. */
		r = feed_blocks(in, len, NULL, 0, 1, 0, 0);
		assert_int_equal(r->n, e < 2 ? NOPENAI : NOPENAI - 1);
		run_free(r);
		run_free(whole);
		free(in);
	}
}

/* Small deterministic PRNG: the same blocks every run. */
static uint32_t
rnd(uint32_t *x)
{
	*x ^= *x << 13;
	*x ^= *x >> 17;
	*x ^= *x << 5;
	return *x;
}

/* Random streams of awkward bytes cut into random blocks. */
static void
test_random_cuts(void **state)
{
	static const char alpha[] = "data: event:\r\n\n\r:xy";
	struct run *whole, *r;
	size_t cuts[64], ncuts, len, i, round;
	uint32_t x = 0x9e3779b9;
	char in[600], what[64];

	(void)state;
	for (round = 0; round < 400; round++) {
		len = 1 + rnd(&x) % (sizeof(in) - 1);
		for (i = 0; i < len; i++)
			in[i] = alpha[rnd(&x) % (sizeof(alpha) - 1)];
		whole = feed_whole(in, len);
		assert_int_equal(whole->rc, 0);
		assert_lossless(whole, in, len);
		for (i = 0; i < 8; i++) {
			size_t c, last = 0;

			ncuts = rnd(&x) % 64;
			for (c = 0; c < ncuts; c++) {
				last += rnd(&x) % (len / 8 + 2);
				cuts[c] = last < len ? last : len;
			}
			r = feed_blocks(in, len, cuts, ncuts, 0, 0, 1);
			snprintf(what, sizeof(what), "round %zu/%zu", round, i);
			assert_same(whole, r, what);
			run_free(r);
		}
		run_free(whole);
	}
}

static struct run *
whole_str(const char *in)
{
	return feed_whole(in, strlen(in));
}

static void
test_fields(void **state)
{
	struct run *r;

	(void)state;
	r = whole_str("event: message_start\ndata: a\ndata:b\ndata:  c\n"
	    "id: 7\nretry: 10\nbogus: 1\n: comment\n\n");
	assert_int_equal(r->n, 1);
	assert_string_equal(r->ev[0].event, "message_start");
	assert_string_equal(r->ev[0].data, "a\nb\n c");
	run_free(r);

	/* "data" alone is an empty data line; the last event: wins. */
	r = whole_str("data\nevent: a\nevent:b\ndata\n\n");
	assert_int_equal(r->n, 1);
	assert_string_equal(r->ev[0].event, "b");
	assert_non_null(r->ev[0].data);
	assert_string_equal(r->ev[0].data, "\n");
	run_free(r);

	/* Name and data do not leak into the next event. */
	r = whole_str("event: x\ndata: 1\n\ndata: 2\n\nevent: y\n\n");
	assert_int_equal(r->n, 3);
	assert_string_equal(r->ev[0].event, "x");
	assert_null(r->ev[1].event);
	assert_string_equal(r->ev[1].data, "2");
	assert_string_equal(r->ev[2].event, "y");
	assert_null(r->ev[2].data);
	run_free(r);

	/* A colon inside the value stays; "data :x" is another field. */
	r = whole_str("data: {\"a\":1}\ndata :x\n\n");
	assert_int_equal(r->n, 1);
	assert_string_equal(r->ev[0].data, "{\"a\":1}");
	run_free(r);

	/* Data with a NUL byte keeps its length. */
	r = feed_whole("data: a\0b\n\n", 11);
	assert_int_equal(r->n, 1);
	assert_int_equal(r->ev[0].data_len, 3);
	assert_memory_equal(r->ev[0].data, "a\0b", 3);
	run_free(r);
}

static void
test_comments_and_blank_lines(void **state)
{
	const char *in = ": keep-alive\n\n\n: ping\r\n\r\ndata: x\n: mid\n\n";
	struct run *r;

	(void)state;
	r = whole_str(in);
	assert_int_equal(r->rc, 0);
	assert_int_equal(r->n, 4);
	assert_string_equal(r->ev[0].raw, ": keep-alive\n\n");
	assert_null(r->ev[0].data);
	assert_null(r->ev[0].event);
	assert_string_equal(r->ev[1].raw, "\n");	/* stray blank line */
	assert_null(r->ev[1].data);
	assert_string_equal(r->ev[2].raw, ": ping\r\n\r\n");
	assert_null(r->ev[2].data);
	assert_string_equal(r->ev[3].raw, "data: x\n: mid\n\n");
	assert_string_equal(r->ev[3].data, "x");
	assert_lossless(r, in, strlen(in));
	run_free(r);
}

static void
test_mixed_line_endings(void **state)
{
	/* CR, then CRLF as the blank line; LF, then CR as the blank line. */
	const char *in = "data: a\rdata: b\r\r\ndata: c\n\rdata: d\r\n\n";
	struct run *r;

	(void)state;
	r = whole_str(in);
	assert_int_equal(r->n, 3);
	assert_string_equal(r->ev[0].raw, "data: a\rdata: b\r\r\n");
	assert_string_equal(r->ev[0].data, "a\nb");
	assert_string_equal(r->ev[1].raw, "data: c\n\r");
	assert_string_equal(r->ev[1].data, "c");
	assert_string_equal(r->ev[2].raw, "data: d\r\n\n");
	assert_string_equal(r->ev[2].data, "d");
	run_free(r);

	/* LF CR LF: the CR ends a blank line, the LF is another one. */
	r = whole_str("data: e\n\r\n\n");
	assert_int_equal(r->n, 2);
	assert_string_equal(r->ev[0].raw, "data: e\n\r\n");
	assert_string_equal(r->ev[1].raw, "\n");
	assert_null(r->ev[1].data);
	run_free(r);
}

static void
test_held_cr(void **state)
{
	struct sse s;
	struct sse_event ev;

	(void)state;
	sse_init(&s, 0);
	assert_int_equal(sse_feed(&s, "data: x\r\n\r", 10), 0);
	assert_int_equal(sse_next(&s, &ev), 0);		/* LF coming? */
	assert_int_equal(sse_feed(&s, "\n", 1), 0);
	assert_int_equal(sse_next(&s, &ev), 1);
	assert_int_equal(ev.raw_len, 11);
	assert_memory_equal(ev.raw, "data: x\r\n\r\n", 11);
	assert_int_equal(sse_next(&s, &ev), 0);

	/* The next byte is not LF: the event goes without it. */
	assert_int_equal(sse_feed(&s, "data: y\r\r", 9), 0);
	assert_int_equal(sse_next(&s, &ev), 0);
	assert_int_equal(sse_feed(&s, "d", 1), 0);
	assert_int_equal(sse_next(&s, &ev), 1);
	assert_int_equal(ev.raw_len, 9);
	assert_string_equal(ev.data, "y");
	assert_int_equal(sse_next(&s, &ev), 0);

	/* sse_finish releases a held event as a terminated one. */
	assert_int_equal(sse_feed(&s, "ata: z\r\r", 8), 0);
	assert_int_equal(sse_next(&s, &ev), 0);
	sse_finish(&s);
	assert_int_equal(sse_next(&s, &ev), 1);
	assert_int_equal(ev.raw_len, 9);
	assert_memory_equal(ev.raw, "data: z\r\r", 9);
	assert_string_equal(ev.data, "z");
	assert_int_equal(ev.terminated, 1);
	assert_int_equal(sse_next(&s, &ev), 0);
	sse_free(&s);
}

static void
test_tail_only_at_finish(void **state)
{
	struct sse s;
	struct sse_event ev;

	(void)state;
	sse_init(&s, 0);
	assert_int_equal(sse_feed(&s, "data: 1\n\nevent: e\ndata: 2", 25), 0);
	assert_int_equal(sse_next(&s, &ev), 1);
	assert_string_equal(ev.data, "1");
	assert_int_equal(sse_next(&s, &ev), 0);
	assert_int_equal(sse_next(&s, &ev), 0);
	assert_int_equal(sse_pending(&s), 16);
	sse_finish(&s);
	assert_int_equal(sse_next(&s, &ev), 1);
	assert_int_equal(ev.terminated, 0);
	assert_int_equal(ev.raw_len, 16);
	assert_memory_equal(ev.raw, "event: e\ndata: 2", 16);
	assert_string_equal(ev.event, "e");
	assert_string_equal(ev.data, "2");
	assert_int_equal(sse_next(&s, &ev), 0);
	assert_int_equal(sse_feed(&s, "x", 1), -1);
	assert_non_null(sse_error(&s));
	sse_free(&s);

	/* A tail ending in one newline, and nothing at all. */
	sse_init(&s, 0);
	assert_int_equal(sse_feed(&s, "data: 3\r\n", 9), 0);
	assert_int_equal(sse_next(&s, &ev), 0);
	sse_finish(&s);
	assert_int_equal(sse_next(&s, &ev), 1);
	assert_int_equal(ev.terminated, 0);
	assert_int_equal(ev.raw_len, 9);
	assert_string_equal(ev.data, "3");
	assert_int_equal(sse_next(&s, &ev), 0);
	sse_free(&s);

	sse_init(&s, 0);
	sse_finish(&s);
	assert_int_equal(sse_next(&s, &ev), 0);
	assert_null(sse_error(&s));
	sse_free(&s);
}

static void
test_bom(void **state)
{
	const char *in = "\xef\xbb\xbf" "data: x\n\n";
	struct run *whole, *r;

	(void)state;
	whole = whole_str(in);
	assert_int_equal(whole->n, 1);
	assert_string_equal(whole->ev[0].raw, in);
	assert_string_equal(whole->ev[0].data, "x");
	r = feed_blocks(in, strlen(in), NULL, 0, 1, 0, 1);
	assert_same(whole, r, "bom byte at a time");
	run_free(r);
	run_free(whole);

	/* Only at the very start; a half BOM is just bytes. */
	r = whole_str("data: 1\n\n\xef\xbb\xbf" "data: 2\n\n");
	assert_int_equal(r->n, 2);
	assert_null(r->ev[1].data);
	run_free(r);
	r = whole_str("\xef\xbb" "data: 2\n\n");
	assert_int_equal(r->n, 1);
	assert_null(r->ev[0].data);
	run_free(r);
}

static void
test_oversize(void **state)
{
	char big[200];
	struct run *r;
	struct sse s;
	struct sse_event ev;
	size_t i;

	(void)state;
	/* Exactly the limit passes, one more byte does not. */
	memset(big, 'a', sizeof(big));
	memcpy(big, "data: ", 6);
	big[62] = '\n';
	big[63] = '\n';
	r = feed_blocks(big, 64, NULL, 0, 0, 64, 1);
	assert_int_equal(r->rc, 0);
	assert_int_equal(r->n, 1);
	assert_int_equal(r->ev[0].data_len, 56);
	run_free(r);
	big[62] = 'a';
	big[63] = '\n';
	big[64] = '\n';
	r = feed_blocks(big, 65, NULL, 0, 0, 64, 1);
	assert_int_equal(r->rc, -1);
	assert_int_equal(r->n, 0);
	run_free(r);
	r = feed_blocks(big, 65, NULL, 0, 1, 64, 1);
	assert_int_equal(r->rc, -1);
	run_free(r);

	/* Found before any blank line, and sticky. */
	sse_init(&s, 64);
	assert_int_equal(sse_feed(&s, big, 64), 0);
	assert_int_equal(sse_next(&s, &ev), 0);
	assert_int_equal(sse_feed(&s, "a", 1), 0);
	assert_int_equal(sse_next(&s, &ev), -1);
	assert_non_null(strstr(sse_error(&s), "larger"));
	assert_int_equal(sse_feed(&s, "\n\n", 2), -1);
	assert_int_equal(sse_next(&s, &ev), -1);
	sse_free(&s);

	/* A held CR event over the limit. */
	sse_init(&s, 10);
	assert_int_equal(sse_feed(&s, "data: 123\r\r", 11), 0);
	assert_int_equal(sse_next(&s, &ev), -1);
	sse_free(&s);

	/* Many small events: the limit is per event, not per stream. */
	sse_init(&s, 16);
	for (i = 0; i < 1000; i++) {
		assert_int_equal(sse_feed(&s, "data: 12345\n\n", 13), 0);
		assert_int_equal(sse_next(&s, &ev), 1);
		assert_string_equal(ev.data, "12345");
		assert_int_equal(sse_next(&s, &ev), 0);
	}
	assert_true(s.cap <= 4096);
	sse_free(&s);

	/* A caller that never drains is stopped, not buffered forever. */
	sse_init(&s, 16);
	for (i = 0; i < 100; i++)
		if (sse_feed(&s, "data: 12345\n\n", 13) == -1)
			break;
	assert_true(i < 3);
	assert_non_null(sse_error(&s));
	sse_free(&s);
}

/* A 1 MiB-class event then small ones: the memory goes back. */
static void
test_big_event(void **state)
{
	size_t n = 900 * 1024, i;
	char *big = malloc(n + 8);
	struct sse s;
	struct sse_event ev;

	(void)state;
	assert_non_null(big);
	memcpy(big, "data: ", 6);
	memset(big + 6, 'b', n - 8);
	memcpy(big + n - 2, "\n\n", 2);
	sse_init(&s, 0);
	for (i = 0; i < n; i += 16384) {
		assert_int_equal(sse_feed(&s, big + i,
		    n - i < 16384 ? n - i : 16384), 0);
		if (i + 16384 < n)
			assert_int_equal(sse_next(&s, &ev), 0);
	}
	assert_int_equal(sse_next(&s, &ev), 1);
	assert_int_equal(ev.raw_len, n);
	assert_int_equal(ev.data_len, n - 8);
	assert_int_equal(sse_next(&s, &ev), 0);
	assert_int_equal(sse_feed(&s, "data: s\n\n", 9), 0);
	assert_int_equal(sse_next(&s, &ev), 1);
	assert_string_equal(ev.data, "s");
	assert_true(s.cap < 64 * 1024);
	assert_int_equal(sse_next(&s, &ev), 0);
	assert_int_equal(sse_feed(&s, "data: t\n\n", 9), 0);
	assert_int_equal(sse_next(&s, &ev), 1);
	assert_true(s.data_cap < 64 * 1024);
	sse_free(&s);
	free(big);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_openai_whole),
		cmocka_unit_test(test_openai_every_cut),
		cmocka_unit_test(test_openai_byte_at_a_time),
		cmocka_unit_test(test_random_cuts),
		cmocka_unit_test(test_fields),
		cmocka_unit_test(test_comments_and_blank_lines),
		cmocka_unit_test(test_mixed_line_endings),
		cmocka_unit_test(test_held_cr),
		cmocka_unit_test(test_tail_only_at_finish),
		cmocka_unit_test(test_bom),
		cmocka_unit_test(test_oversize),
		cmocka_unit_test(test_big_event),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
