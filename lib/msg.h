/*
 * lib/msg: the typed, length-prefixed message layer on the Unix sockets
 * between our own processes (master <-> children, gateway <-> tunnel/
 * billing/moderation, hubctl <-> master).
 *
 * Wire: a fixed 16-byte header in host byte order (both ends are the same
 * binary on the same host), then `len` payload bytes.
 *
 *   len      u32  payload bytes, checked against the type's rule BEFORE any
 *                 payload is read; never trusted beyond it
 *   type     u16  enum value, unknown types are a protocol violation
 *   version  u8   MSG_VERSION, anything else is a protocol violation
 *   flags    u8   0 (reserved)
 *   reqid    u64  request id (0 when the message is not about a request)
 *
 * Each END of a connection carries two rule tables indexed by type, one
 * per direction: what it may RECEIVE (checked at every header, before any
 * payload byte is read: a reply type arriving on the request side is
 * refused there) and what it may SEND (checked by msg_enqueue).  A rule
 * gives the min/max payload size.  Fixed C structs are sent with min ==
 * max == sizeof, so a size mismatch (e.g. a half-written struct) is caught
 * at the header.  Variable payloads are msgpack.  Received payloads are
 * always NUL-terminated copies.
 *
 * The policy for a peer that breaks these rules is the same everywhere:
 * the receiver logs the peer and the reason and drops that connection; it
 * never exits because of what a peer sent.
 */
#ifndef SWB_MSG_H
#define SWB_MSG_H

#include <stddef.h>
#include <stdint.h>

#define MSG_VERSION	1
#define MSG_HDR_SIZE	16
#define MSG_MAX		(9u * 1024 * 1024)	/* no payload is ever larger */
#define MSG_OUT_MAX	(32u * 1024 * 1024)	/* queued bytes per connection */

struct msg_hdr {
	uint32_t len;
	uint16_t type;
	uint8_t  version;
	uint8_t  flags;
	uint64_t reqid;
};
_Static_assert(sizeof(struct msg_hdr) == MSG_HDR_SIZE, "msg header is 16 bytes");

struct msg_rule {
	const char *name;	/* NULL: type not allowed on this connection */
	uint32_t min, max;	/* payload bounds, inclusive */
};

/* One direction of a connection: the types it may carry. */
struct msg_dir {
	const struct msg_rule *rule;
	uint16_t ntypes;	/* rule[] has this many entries, index = type */
};

/* One end of a connection: what it may receive and what it may send. */
struct msg_rules {
	struct msg_dir rx;
	struct msg_dir tx;
};

struct msg {
	struct msg_hdr hdr;
	unsigned char *data;	/* hdr.len bytes + a NUL; valid until next msg_next */
};

struct msg_buf {
	unsigned char *buf;
	size_t len, cap, off;
};

struct msg_conn {
	int fd;
	const struct msg_rules *rules;	/* this end's */
	struct msg_buf in, out;
	unsigned char *cur;	/* payload copy handed out by msg_next */
	int drained;		/* msg_fill's last read was short: the
				   socket had no more (a stream socket) */
};

void msg_conn_init(struct msg_conn *c, int fd, const struct msg_rules *rules);
void msg_conn_free(struct msg_conn *c);	/* does not close fd */

/* Check a received header against r->rx.  0, or -1 with a reason. */
int msg_check_hdr(const struct msg_rules *r, const struct msg_hdr *h,
    char *err, size_t errlen);
/* Check a header against one direction's table.  0, or -1 with a reason. */
int msg_check_dir(const struct msg_dir *d, const struct msg_hdr *h,
    char *err, size_t errlen);
/* A type's name in either direction, "unknown" when neither has it. */
const char *msg_type_name(const struct msg_rules *r, unsigned type);

/* Queue a message.  -1 if it breaks this end's send rule or the queue is
 * full. */
int msg_enqueue(struct msg_conn *c, uint16_t type, uint64_t reqid,
    const void *payload, size_t len);
/* Write what is queued.  1 all written, 0 some left (poll POLLOUT), -1 error. */
int msg_flush(struct msg_conn *c);
int msg_pending(const struct msg_conn *c);
/* Read what the socket has.  >0 bytes read, 0 EOF, -1 error, -2 EAGAIN.
 * After >0, c->drained says the read was short, so a caller's loop can
 * stop there instead of paying one more recv for its EAGAIN. */
int msg_fill(struct msg_conn *c);
/*
 * Next complete message from the input buffer.  1 one in *m, 0 need more
 * bytes, -1 protocol violation (err says why; close the connection).
 */
int msg_next(struct msg_conn *c, struct msg *m, char *err, size_t errlen);

/* Blocking helpers for simple clients (hubctl) and tests; r is the
 * caller's end. */
int msg_send_blocking(int fd, const struct msg_rules *r, uint16_t type,
    uint64_t reqid, const void *payload, size_t len);
/* Reads one message, up to timeout_ms.  Caller frees m->data. 1, 0 EOF, -1. */
int msg_recv_blocking(int fd, const struct msg_rules *r, struct msg *m,
    int timeout_ms, char *err, size_t errlen);

#endif
