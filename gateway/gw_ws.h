/*
 * gateway/gw_ws: the gateway's own RFC 6455 WebSocket codec for the
 * user's side of a Realtime session (GET /v1/realtime upgraded on the
 * plain HTTP/1.1 port).  Owns the frame parser (client -> server frames,
 * which must be masked), message reassembly from fragments with a maximum
 * message size, UTF-8 checking of text messages, the server frame header
 * encoder and the handshake's Sec-WebSocket-Accept.  No I/O, no global
 * state: the caller feeds bytes it read and writes what it is given.
 *
 * What the caller does with the events (gateway/gw_h1.c): a text or binary
 * message goes to the agent; a ping is answered locally with a pong of the
 * same payload; a pong is dropped; a close is answered with a close (the
 * same code) and the session ends.  A protocol error (-1) is answered
 * with a close carrying in->close_code (1002 protocol error, 1007 bad
 * UTF-8, 1009 message too big) and the connection is then closed.
 */
#ifndef SWB_GW_WS_H
#define SWB_GW_WS_H

#include <stddef.h>
#include <stdint.h>

#define GW_WS_MAX_MSG		(512u * 1024)	/* one reassembled message */
#define GW_WS_CTL_MAX		125		/* a control frame's payload */
#define GW_WS_ACCEPT_LEN	28		/* base64 of a SHA-1 */

enum gw_ws_op {
	GW_WS_CONT = 0x0,
	GW_WS_TEXT = 0x1,
	GW_WS_BIN = 0x2,
	GW_WS_CLOSE = 0x8,
	GW_WS_PING = 0x9,
	GW_WS_PONG = 0xA
};

/* One connection's parser state.  Zero it, set max_msg (0: GW_WS_MAX_MSG),
 * release with gw_ws_in_free. */
struct gw_ws_in {
	size_t max_msg;
	unsigned char *msg;	/* the message being reassembled */
	size_t msglen, msgcap;
	int msg_op;		/* GW_WS_TEXT/BIN while one is open, else 0 */
	unsigned char ctl[GW_WS_CTL_MAX];
	uint16_t close_code;	/* set with -1: the code to close with */
	const char *err;	/* set with -1: why (for the log) */
};

/* What one call produced. */
struct gw_ws_event {
	enum gw_ws_op op;	/* TEXT, BIN (whole message), CLOSE, PING, PONG */
	const unsigned char *data;	/* valid until the next call */
	size_t len;
	uint16_t code;		/* CLOSE: the peer's code, 1005 when none */
};

/*
 * Parse at most one frame from buf[0..len).  Always sets *used (bytes to
 * drop from the front of buf).  1: *ev holds a whole message or a control
 * frame; 0: need more bytes (or a non-final fragment was absorbed: call
 * again with the rest); -1: protocol error (in->close_code, in->err).
 */
int	gw_ws_parse(struct gw_ws_in *in, const unsigned char *buf, size_t len,
	    size_t *used, struct gw_ws_event *ev);
void	gw_ws_in_free(struct gw_ws_in *in);

/* A server frame's header (FIN set, unmasked) for a payload of len bytes:
 * the header's length (2, 4 or 10) written into hdr. */
size_t	gw_ws_header(unsigned char hdr[10], enum gw_ws_op op, uint64_t len);

/* Sec-WebSocket-Accept for the client's Sec-WebSocket-Key: 0 with out a
 * NUL-terminated 28-character string, or -1 when the key is not the
 * base64 of 16 bytes (24 characters). */
int	gw_ws_accept(const char *key, size_t keylen,
	    char out[GW_WS_ACCEPT_LEN + 1]);

/* 1 when p[0..n) is well-formed UTF-8 (no overlongs, no surrogates). */
int	gw_ws_utf8_ok(const unsigned char *p, size_t n);

#endif
