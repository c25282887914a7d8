/*
 * lib/sse: an incremental Server-Sent Events splitter, shared by the hub's
 * relay and the agent.  Owns the byte buffer of one stream, the line and
 * field parser (WHATWG rules) and the per-event size bound.  It does no
 * I/O and keeps no global state.
 *
 * Feed byte blocks as they arrive (a block may end anywhere: inside a
 * line, a field name, or between the CR and LF of a CRLF), then call
 * sse_next() until it returns 0.  Each event comes back as
 *
 *   raw    the ORIGINAL bytes of the event, its terminating blank line
 *          included, so a relay can write them on unchanged the moment
 *          they complete (nothing is coalesced or held for a later event);
 *   event  the last `event:` value, or NULL when there was none;
 *   data   the `data:` values joined with "\n", NUL-terminated, or NULL
 *          when the event had no data line (comment-only blocks such as
 *          ": keep-alive", or a stray blank line).
 *
 * Rules:
 *   - Lines end in "\r\n", "\n" or "\r"; a blank line ends an event.
 *   - Every blank line ends a block, even one with no field in it, so the
 *     raw ranges of all events, in order, are exactly the bytes fed: a
 *     relay forwarding every raw range changes nothing.
 *   - A line starting with ':' is a comment; "name:value" drops one space
 *     after the colon; a line without ':' is a field with an empty value;
 *     fields other than data and event (id, retry, unknown) are ignored.
 *   - A UTF-8 BOM at the very start of the stream is kept in raw and
 *     skipped by the parser.
 *   - An event whose blank line is a lone "\r" at the end of what was fed
 *     is held until the next byte (or sse_finish()) shows whether a "\n"
 *     belongs to it, so that raw is the same however the bytes were split.
 *   - Bytes after the last blank line are returned as one final event only
 *     after sse_finish(), with terminated = 0; their last line counts as
 *     ended.  A caller may drop it (WHATWG does) or use it.
 *   - Bounded: an event whose raw bytes exceed max_event is an error, found
 *     as soon as that many bytes without a blank line were seen.  A caller
 *     that drains sse_next() before each sse_feed() never has more than
 *     max_event plus one fed block buffered; sse_feed() refuses to grow
 *     further when more than max_event bytes are still unreturned.
 *   - Errors are sticky: after -1 every call returns -1 and sse_error()
 *     says why.
 *
 * Pointers in struct sse_event stay valid until the next call of any
 * sse_ function on the same struct sse.
 */
#ifndef SWB_SSE_H
#define SWB_SSE_H

#include <stddef.h>

#define SSE_MAX_EVENT_DEFAULT	(1024u * 1024)	/* bytes, sse_init(.., 0) */

struct sse_event {
	const char	*raw;		/* original bytes, blank line included */
	size_t		 raw_len;
	const char	*event;		/* NUL-terminated, or NULL */
	size_t		 event_len;
	const char	*data;		/* NUL-terminated, or NULL */
	size_t		 data_len;
	int		 terminated;	/* 0 only for the tail after sse_finish */
};

/* Private: callers only allocate it and pass it to the functions below. */
struct sse {
	char		*buf;		/* bytes fed and not yet compacted away */
	size_t		 len, cap;
	size_t		 start;		/* first byte of the event being parsed */
	size_t		 pos;		/* next byte to scan */
	size_t		 line;		/* first byte of the current line */
	size_t		 max_event;
	char		*data;		/* joined data values, each + "\n" */
	size_t		 data_len, data_cap;
	char		*name;		/* last event: value */
	size_t		 name_len, name_cap;
	int		 has_data, has_name;
	int		 cr;		/* the last line ended in a lone CR */
	int		 bom_done;	/* the start-of-stream BOM check ran */
	int		 finished;	/* sse_finish() was called */
	int		 stale;		/* fields belong to a returned event */
	const char	*err;		/* sticky error, or NULL */
};

void	 sse_init(struct sse *, size_t max_event);	/* 0: default */
/* Append len bytes.  0, or -1 (too much buffered, after sse_finish, or
 * out of memory). */
int	 sse_feed(struct sse *, const void *buf, size_t len);
/* No more bytes will come: sse_next() then also returns the tail. */
void	 sse_finish(struct sse *);
/* 1: *ev holds the next event; 0: need more bytes (or, after
 * sse_finish(), the stream is done); -1: too large or out of memory. */
int	 sse_next(struct sse *, struct sse_event *ev);
/* Why the last -1 happened, or NULL. */
const char *sse_error(const struct sse *);
/* Bytes fed but not yet returned in an event. */
size_t	 sse_pending(const struct sse *);
void	 sse_free(struct sse *);

#endif
