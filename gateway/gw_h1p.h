/*
 * gateway/gw_h1p: the HTTP/1.1 request-head parser and chunked body
 * decoder of the user port (RFC 9112), pure: no I/O, no allocation, no
 * global state, so it is unit-tested and fuzzed on its own.
 *
 * Message framing is decided here and nowhere else:
 *   - Transfer-Encoding and Content-Length together: 400 (request
 *     smuggling), as are two Content-Lengths, a Content-Length that is not
 *     1*DIGIT or passes INT64_MAX, and a Transfer-Encoding other than
 *     exactly "chunked" (501 for an unknown coding, 400 for chunked not
 *     last or a coding on HTTP/1.0);
 *   - no body unless Content-Length or chunked says so;
 *   - a request line over H1_MAX_LINE: 414; a head over the caller's limit
 *     or with more than H1_MAX_HEADERS fields: 431;
 *   - HTTP/1.0 and 1.1 only (505 otherwise); 1.1 requires exactly one Host;
 *   - obsolete line folding, whitespace before a field's colon, control
 *     characters in names or values, a bare CR: 400.
 * Lines end in CRLF; a bare LF is accepted as a line end (RFC 9112 2.2).
 */
#ifndef SWB_GW_H1P_H
#define SWB_GW_H1P_H

#include <stddef.h>
#include <stdint.h>

#define H1_MAX_HEADERS	100
#define H1_MAX_LINE	8192		/* request line */

struct h1_span { uint32_t off, len; };	/* bytes of the head buffer */

struct h1_field { struct h1_span name, value; };	/* value trimmed */

struct h1_head {
	struct h1_span method, target, path, query;	/* query without '?' */
	int minor;			/* HTTP/1.minor: 0 or 1 */
	int nfield;
	struct h1_field field[H1_MAX_HEADERS];
	int64_t content_length;		/* -1: none */
	int chunked;			/* Transfer-Encoding: chunked */
	int keep_alive;			/* after this request */
	int expect_continue;		/* Expect: 100-continue */
	int upgrade;			/* an Upgrade header was sent */
	size_t head_len;		/* bytes of the head, final CRLF included */
};

/*
 * Parse the head at buf[0..len).  1: complete, *h filled; 0: need more
 * (len is still under max_head); a negative HTTP status (-400, -414, -431,
 * -501, -505) when the head is refused, *why saying why.
 */
int h1_parse_head(const char *buf, size_t len, size_t max_head,
    struct h1_head *h, const char **why);

/* Case-insensitive look-up of a field by lowercase name: its value, or
 * NULL.  The value is NOT NUL-terminated: *vlen says how long it is. */
const char *h1_field(const char *buf, const struct h1_head *h,
    const char *lname, size_t *vlen);

/* Chunked body decoding, state kept between calls. */
struct h1_chunked {
	int state;
	uint64_t left;		/* data bytes left in the current chunk */
	uint32_t digits, ext, trailer;	/* bytes seen (bounded) */
};

/*
 * Decode from in[0..len).  Sets *used to the bytes consumed, and when
 * data is available *data and *dlen to a span of body bytes inside in.
 * Returns 1 with data (call again with the rest), 0 when in is used up
 * (need more), 2 when the body ended (last chunk and trailers consumed;
 * the bytes after *used belong to the next request), -1 on a malformed
 * chunk (400).
 */
int h1_chunked_step(struct h1_chunked *c, const char *in, size_t len,
    size_t *used, const char **data, size_t *dlen);

#endif
