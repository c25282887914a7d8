/*
 * lib/evstream: AWS event-stream framing (application/vnd.amazon.eventstream,
 * what Bedrock's ConverseStream and InvokeModelWithResponseStream answer
 * with), shared by the hub (usage, translation, re-framing) and agentd
 * (usage).  A decoder fed arbitrary pieces and an encoder; no I/O.
 *
 * One message, big-endian:
 *   u32 total_len | u32 headers_len | u32 prelude_crc   (CRC32 of bytes 0..7)
 *   headers: { u8 name_len, name, u8 type, value }*    (headers_len bytes)
 *   payload                                            (the rest)
 *   u32 message_crc                                    (CRC32 of all before)
 * Header value types: 0 true, 1 false (no bytes), 2 byte (1), 3 int16 (2),
 * 4 int32 (4), 5 int64 (8), 6 bytes (u16 len + bytes), 7 string (u16 len +
 * UTF-8), 8 timestamp (int64 ms), 9 uuid (16).
 *
 * The decoder checks the prelude CRC BEFORE it trusts either length, then
 * the bounds below, waits for the whole message, checks the message CRC,
 * then walks the headers (each inside headers_len, known types only).
 * Any failure is sticky: a peer that sent one bad frame is not read on.
 */
#ifndef SWB_EVSTREAM_H
#define SWB_EVSTREAM_H

#include <stddef.h>
#include <stdint.h>

#define EVS_PRELUDE		12
#define EVS_MIN_MSG		16		/* prelude + message CRC */
#define EVS_MAX_MSG		(16u * 1024 * 1024)	/* total_len bound */
#define EVS_MAX_HEADERS_LEN	(128u * 1024)	/* headers_len bound */
#define EVS_MAX_HEADERS		32		/* headers per message */

enum evs_type {
	EVS_TRUE = 0, EVS_FALSE, EVS_BYTE, EVS_INT16, EVS_INT32, EVS_INT64,
	EVS_BYTES, EVS_STRING, EVS_TIMESTAMP, EVS_UUID, EVS_NTYPES
};

/* One header; pointers into the decoder's buffer (or the caller's, for
 * the encoder).  ival: the value of types 0..5 and 8 (true = 1). */
struct evs_header {
	const char *name;
	size_t name_len;
	int type;			/* enum evs_type */
	const unsigned char *value;	/* types 6, 7, 9: the bytes */
	size_t value_len;
	int64_t ival;
};

/* One decoded message, valid until the next evs_feed/evs_next/evs_free. */
struct evs_msg {
	int nheaders;
	struct evs_header h[EVS_MAX_HEADERS];
	const unsigned char *payload;
	size_t payload_len;
	size_t total_len;		/* bytes of the whole frame */
};

/* The incremental decoder. */
struct evs {
	unsigned char *buf;
	size_t len, cap, off;		/* bytes held; read up to off */
	size_t max_msg;			/* bound on total_len */
	int failed;
	char err[96];
};

uint32_t evs_crc32(uint32_t crc, const void *p, size_t len);	/* IEEE */

/* max_msg: a smaller bound than EVS_MAX_MSG, or 0 for that one. */
void	evs_init(struct evs *d, size_t max_msg);
void	evs_free(struct evs *d);
/* Append bytes.  0, or -1 (out of memory, or already failed). */
int	evs_feed(struct evs *d, const void *p, size_t len);
/* 1: *m is the next message; 0: more bytes needed; -1: malformed (the
 * decoder stays failed; evs_error says why). */
int	evs_next(struct evs *d, struct evs_msg *m);
const char *evs_error(const struct evs *d);
/* Bytes held that do not yet make a whole message (0 at a clean end). */
size_t	evs_pending(const struct evs *d);

/* Decode one whole message of exactly len bytes.  0, or -1 with err. */
int	evs_parse(const unsigned char *p, size_t len, struct evs_msg *m,
	    char *err, size_t errlen);

/* The value of a string header called name (NUL-free compare), or NULL;
 * *len gets its length. */
const char *evs_str(const struct evs_msg *m, const char *name, size_t *len);
/* Nonzero when string header name equals value. */
int	evs_str_is(const struct evs_msg *m, const char *name,
	    const char *value);

/*
 * Encode one message of headers h[0..n) and the payload into dst.
 * Returns the frame's length; when it is > dstlen nothing (or part) was
 * written and the caller retries with that much room.  0 when the
 * message would break a bound (a name over 255 bytes, a value over 65535,
 * headers or total over the bounds above).  Only types 0, 1, 6, 7 are
 * written from value/value_len; 2..5 and 8 from ival; 9 from value (16).
 */
size_t	evs_encode(unsigned char *dst, size_t dstlen,
	    const struct evs_header *h, int n, const void *payload,
	    size_t plen);
/*
 * The usual event: :event-type NAME, :content-type application/json,
 * :message-type event (or, when exception is set, :exception-type NAME,
 * :content-type application/json, :message-type exception).  Same return
 * as evs_encode.
 */
size_t	evs_encode_event(unsigned char *dst, size_t dstlen, const char *name,
	    int exception, const void *payload, size_t plen);

/*
 * Standard base64 (with or without '=' padding, no white space) of in[0..n)
 * into out, which must hold 3 * (n / 4) + 3 bytes: 0 with *outlen set, or
 * -1 (a byte outside the alphabet, bad padding).  For the "bytes" of
 * InvokeModelWithResponseStream's chunk events.
 */
int	evs_b64_decode(const char *in, size_t n, unsigned char *out,
	    size_t *outlen);

#endif
