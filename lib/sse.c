/*
 * lib/sse: the incremental SSE splitter (rules in sse.h).  Owns the stream
 * buffer with its compaction, the resumable line scanner (it never rescans
 * a byte, so feeding one byte at a time stays linear), the field parser
 * and the data/event accumulators of the event being parsed.
 */
#include "lib/sse.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* First size of the stream buffer.  A chat stream's event is a few
 * hundred bytes and agentd holds one splitter per stream in flight: it
 * grows (doubling) only for what does not fit. */
#define SSE_BUF_MIN	512
#define SSE_KEEP_MAX	(64u * 1024)	/* larger idle buffers are released */

static int
fail(struct sse *s, const char *why)
{
	if (s->err == NULL)
		s->err = why;
	return -1;
}

/* Make room for need bytes in *p; 0 or -1. */
static int
reserve(char **p, size_t *cap, size_t need)
{
	size_t ncap;
	char *np;

	if (need <= *cap)
		return 0;
	ncap = *cap < 256 ? 256 : *cap;
	while (ncap < need) {
		if (ncap > SIZE_MAX / 2) {
			ncap = need;
			break;
		}
		ncap *= 2;
	}
	if ((np = realloc(*p, ncap)) == NULL)
		return -1;
	*p = np;
	*cap = ncap;
	return 0;
}

/* Forget the fields of the event last returned. */
static void
reset_fields(struct sse *s)
{
	s->data_len = 0;
	s->name_len = 0;
	s->has_data = 0;
	s->has_name = 0;
	s->stale = 0;
	if (s->data_cap > SSE_KEEP_MAX) {
		free(s->data);
		s->data = NULL;
		s->data_cap = 0;
	}
}

void
sse_init(struct sse *s, size_t max_event)
{
	memset(s, 0, sizeof(*s));
	s->max_event = max_event > 0 ? max_event : SSE_MAX_EVENT_DEFAULT;
}

void
sse_free(struct sse *s)
{
	free(s->buf);
	free(s->data);
	free(s->name);
	memset(s, 0, sizeof(*s));
}

const char *
sse_error(const struct sse *s)
{
	return s->err;
}

size_t
sse_pending(const struct sse *s)
{
	return s->len - s->start;
}

int
sse_feed(struct sse *s, const void *buf, size_t len)
{
	size_t need, ncap;
	char *nb;

	if (s->err != NULL)
		return -1;
	if (s->finished)
		return fail(s, "bytes fed after sse_finish");
	if (len == 0)
		return 0;

	/* Drop what was already returned; pointers into buf die here. */
	if (s->start > 0) {
		memmove(s->buf, s->buf + s->start, s->len - s->start);
		s->len -= s->start;
		s->pos -= s->start;
		s->line -= s->start;
		s->start = 0;
	}
	if (s->len > s->max_event)
		return fail(s, "too many bytes buffered (sse_next not drained)");
	if (len > SIZE_MAX - s->len)
		return fail(s, "block too large");
	need = s->len + len;

	if (s->cap > SSE_KEEP_MAX && need <= s->cap / 4) {
		/* A big event has passed: give the memory back. */
		ncap = need < SSE_BUF_MIN ? SSE_BUF_MIN : need;
		if ((nb = realloc(s->buf, ncap)) != NULL) {
			s->buf = nb;
			s->cap = ncap;
		}
	}
	if (need > s->cap) {
		ncap = s->cap < SSE_BUF_MIN ? SSE_BUF_MIN : s->cap;
		while (ncap < need)
			ncap = ncap > SIZE_MAX / 2 ? need : ncap * 2;
		if ((nb = realloc(s->buf, ncap)) == NULL)
			return fail(s, "out of memory");
		s->buf = nb;
		s->cap = ncap;
	}
	memcpy(s->buf + s->len, buf, len);
	s->len += len;
	return 0;
}

void
sse_finish(struct sse *s)
{
	s->finished = 1;
}

/* One non-blank line [a, b) of the current event. */
static int
field(struct sse *s, size_t a, size_t b)
{
	const char *p = s->buf + a, *colon, *v;
	size_t n = b - a, nlen, vlen;

	if (n > 0 && p[0] == ':')
		return 0;		/* comment */
	colon = memchr(p, ':', n);
	nlen = colon != NULL ? (size_t)(colon - p) : n;
	v = colon != NULL ? colon + 1 : p + n;
	vlen = (size_t)(p + n - v);
	if (vlen > 0 && v[0] == ' ') {
		v++;
		vlen--;
	}

	if (nlen == 4 && memcmp(p, "data", 4) == 0) {
		/* value + "\n", and room for the NUL written at dispatch */
		if (reserve(&s->data, &s->data_cap, s->data_len + vlen + 2) == -1)
			return fail(s, "out of memory");
		memcpy(s->data + s->data_len, v, vlen);
		s->data_len += vlen;
		s->data[s->data_len++] = '\n';
		s->has_data = 1;
	} else if (nlen == 5 && memcmp(p, "event", 5) == 0) {
		if (reserve(&s->name, &s->name_cap, vlen + 1) == -1)
			return fail(s, "out of memory");
		memcpy(s->name, v, vlen);
		s->name[vlen] = '\0';
		s->name_len = vlen;
		s->has_name = 1;
	}
	return 0;
}

/* Return the event [start, end) and start the next one after it. */
static int
dispatch(struct sse *s, struct sse_event *ev, size_t end, int terminated)
{
	if (end - s->start > s->max_event)
		return fail(s, "event larger than the limit");

	memset(ev, 0, sizeof(*ev));
	ev->raw = s->buf + s->start;
	ev->raw_len = end - s->start;
	ev->terminated = terminated;
	if (s->has_data) {
		s->data[--s->data_len] = '\0';	/* the last "\n" goes */
		ev->data = s->data;
		ev->data_len = s->data_len;
	}
	if (s->has_name) {
		ev->event = s->name;
		ev->event_len = s->name_len;
	}
	s->start = s->pos = s->line = end;
	s->cr = 0;
	s->stale = 1;
	return 1;
}

/*
 * The UTF-8 BOM may open the stream: skip it for parsing (it stays in
 * raw).  0: not enough bytes yet to tell.
 */
static int
check_bom(struct sse *s)
{
	static const char bom[3] = { '\xef', '\xbb', '\xbf' };
	size_t have = s->len - s->pos;

	if (have < sizeof(bom)) {
		if (memcmp(s->buf + s->pos, bom, have) == 0 && !s->finished)
			return 0;
	} else if (memcmp(s->buf + s->pos, bom, sizeof(bom)) == 0) {
		s->pos += sizeof(bom);
		s->line = s->pos;
	}
	s->bom_done = 1;
	return 1;
}

int
sse_next(struct sse *s, struct sse_event *ev)
{
	const char *b;
	size_t end;
	char c;

	if (s->err != NULL)
		return -1;
	if (s->stale)
		reset_fields(s);
	if (s->len == s->start)
		return 0;
	if (!s->bom_done && check_bom(s) == 0)
		return 0;

	b = s->buf;
	while (s->pos < s->len) {
		c = b[s->pos];
		if (s->cr) {
			/* The LF of a CRLF split off from its CR. */
			s->cr = 0;
			if (c == '\n') {
				s->line = ++s->pos;
				continue;
			}
		}
		if (c != '\r' && c != '\n') {
			/* To the line's end: the first LF, or a CR before
			 * it (memchr: a byte at a time was a tenth of a
			 * stream's relay in the gateway and in agentd). */
			const char *at = b + s->pos, *lim, *cr;

			lim = memchr(at, '\n', s->len - s->pos);
			if (lim == NULL)
				lim = b + s->len;
			cr = memchr(at, '\r', (size_t)(lim - at));
			s->pos = (size_t)((cr != NULL ? cr : lim) - b);
			if (s->pos - s->start > s->max_event)
				return fail(s, "event larger than the limit");
			continue;
		}
		if (s->pos == s->line) {
			/* Blank line: the event ends after its terminator. */
			end = s->pos + 1;
			if (c == '\r') {
				if (end < s->len) {
					if (b[end] == '\n')
						end++;
				} else if (!s->finished) {
					if (end - s->start > s->max_event)
						return fail(s,
						    "event larger than the limit");
					return 0;	/* is an LF coming? */
				}
			}
			return dispatch(s, ev, end, 1);
		}
		if (field(s, s->line, s->pos) == -1)
			return -1;
		s->cr = c == '\r';
		s->line = ++s->pos;
		if (s->pos - s->start > s->max_event)
			return fail(s, "event larger than the limit");
	}

	if (!s->finished)
		return 0;
	/* The tail: its last line ends with the stream. */
	if (s->line < s->len && field(s, s->line, s->len) == -1)
		return -1;
	s->line = s->len;
	return dispatch(s, ev, s->len, 0);
}
