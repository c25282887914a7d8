/*
 * tests/fuzz/fuzz_sse: libFuzzer target for the SSE splitter (lib/sse), the
 * parser every provider stream goes through on the agent and the hub.
 *
 * Input: byte 0 picks the event bound (0: the default; else a small one,
 * so the bound is hit), byte 1 seeds where the stream is cut into blocks;
 * the rest is the stream.  It is parsed twice — fed whole, and fed in the
 * seeded blocks, draining sse_next() before each feed as a relay does —
 * and checked against the rules in sse.h:
 *   - every event's raw range, in order, concatenates to exactly the bytes
 *     fed (when no error happened), and raw is the same however the bytes
 *     were split; so are event, data and terminated;
 *   - data and event are NUL-terminated at their lengths, and only the tail
 *     after sse_finish() has terminated == 0, last;
 *   - an error comes with a reason, is sticky, and happens for both ways
 *     of feeding alike (it depends on the bytes, not on how they came).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/sse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

_Noreturn static void
die(const char *what)
{
	fprintf(stderr, "fuzz_sse: %s\n", what);
	abort();
}

/* What one way of feeding produced: the raw bytes and a log of fields. */
struct run {
	char *raw, *log;
	size_t raw_len, log_len, raw_cap, log_cap;
	size_t events;
	int err;
	int tail_seen;
};

static void
put(char **b, size_t *len, size_t *cap, const void *p, size_t n)
{
	if (*len + n > *cap) {
		size_t c = (*len + n) * 2 + 64;
		char *nb = realloc(*b, c);
		if (nb == NULL)
			die("out of memory");
		*b = nb;
		*cap = c;
	}
	memcpy(*b + *len, p, n);
	*len += n;
}

static void
record(struct run *r, const struct sse_event *ev)
{
	size_t n;

	if (r->tail_seen)
		die("an event after the unterminated tail");
	if (ev->raw == NULL || ev->raw_len == 0)
		die("an event without raw bytes");
	if (ev->data != NULL && ev->data[ev->data_len] != '\0')
		die("data not NUL-terminated at data_len");
	if (ev->event != NULL && ev->event[ev->event_len] != '\0')
		die("event not NUL-terminated at event_len");
	if (ev->data == NULL && ev->data_len != 0)
		die("data_len without data");
	if (!ev->terminated)
		r->tail_seen = 1;
	put(&r->raw, &r->raw_len, &r->raw_cap, ev->raw, ev->raw_len);
	/* The log: lengths then bytes, so two logs compare with memcmp. */
	n = ev->raw_len;
	put(&r->log, &r->log_len, &r->log_cap, &n, sizeof(n));
	n = ev->event ? ev->event_len + 1 : 0;
	put(&r->log, &r->log_len, &r->log_cap, &n, sizeof(n));
	if (ev->event)
		put(&r->log, &r->log_len, &r->log_cap, ev->event, ev->event_len);
	n = ev->data ? ev->data_len + 1 : 0;
	put(&r->log, &r->log_len, &r->log_cap, &n, sizeof(n));
	if (ev->data)
		put(&r->log, &r->log_len, &r->log_cap, ev->data, ev->data_len);
	n = (size_t)ev->terminated;
	put(&r->log, &r->log_len, &r->log_cap, &n, sizeof(n));
	r->events++;
}

/* Drain every ready event; 0, or -1 on an error (checked sticky). */
static int
drain(struct sse *s, struct run *r)
{
	struct sse_event ev;
	int rc;

	while ((rc = sse_next(s, &ev)) == 1)
		record(r, &ev);
	if (rc == -1) {
		if (sse_error(s) == NULL)
			die("an error without a reason");
		if (sse_next(s, &ev) != -1 || sse_feed(s, "x", 1) != -1)
			die("an error that is not sticky");
		r->err = 1;
		return -1;
	}
	if (rc != 0)
		die("sse_next returned neither -1, 0 nor 1");
	return 0;
}

/* Feed d in blocks whose sizes come from seed (0: one block). */
static void
run(const uint8_t *d, size_t n, size_t max_event, unsigned seed, struct run *r)
{
	struct sse s;
	size_t off = 0;
	uint32_t x = seed * 2654435761u + 1;

	memset(r, 0, sizeof(*r));
	sse_init(&s, max_event);
	while (off < n) {
		size_t piece = n - off;
		uint8_t *copy;

		if (seed != 0) {
			x ^= x << 13, x ^= x >> 17, x ^= x << 5;
			piece = 1 + x % (seed % 7 == 0 ? 3 : 97);
			if (piece > n - off)
				piece = n - off;
		}
		/* An exact-size copy, so a read past the block is caught. */
		copy = malloc(piece);
		if (copy == NULL)
			die("out of memory");
		memcpy(copy, d + off, piece);
		if (sse_feed(&s, copy, piece) != 0) {
			free(copy);
			if (sse_error(&s) == NULL)
				die("sse_feed failed without a reason");
			r->err = 1;
			sse_free(&s);
			return;
		}
		free(copy);
		off += piece;
		if (drain(&s, r) != 0) {
			sse_free(&s);
			return;
		}
	}
	sse_finish(&s);
	(void)drain(&s, r);
	if (!r->err && sse_pending(&s) != 0)
		die("bytes left pending after the stream finished");
	sse_free(&s);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct run whole, split;
	size_t max_event;

	if (size < 2)
		return 0;
	max_event = data[0] == 0 ? 0 : (size_t)data[0] * 4;
	run(data + 2, size - 2, max_event, 0, &whole);
	run(data + 2, size - 2, max_event, data[1] | 1u, &split);
	if (whole.err != split.err)
		die("an error depends on how the bytes were split");
	if (!whole.err) {
		if (whole.raw_len != size - 2 || (whole.raw_len > 0 &&
		    memcmp(whole.raw, data + 2, size - 2) != 0))
			die("raw ranges do not add up to the bytes fed");
		if (whole.log_len != split.log_len || (whole.log_len > 0 &&
		    memcmp(whole.log, split.log, whole.log_len) != 0))
			die("events depend on how the bytes were split");
	}
	free(whole.raw);
	free(whole.log);
	free(split.raw);
	free(split.log);
	return 0;
}
