/*
 * child/child_peer: a child's client connection to another child's Unix
 * socket in run_dir (tunnel.sock, billing.sock, ...), adopted into the
 * child's lws loop as a raw fd.  Dialled at start, re-dialled on tick
 * after a loss; messages are queued and flushed without blocking.
 */
#ifndef SWB_CHILD_PEER_H
#define SWB_CHILD_PEER_H

#include "child/child_lws.h"

struct child_peer {
	const char *sock;		/* "billing.sock" */
	const struct msg_rules *rules;
	/* One complete message from the peer, of a type rules->rx allows.
	 * A message that breaks the protocol beyond its header: call
	 * child_peer_drop(); never exit because of it. */
	void (*on_msg)(struct child_peer *p, const struct msg *m);
	/* The connection went down (pending requests will get no answer). */
	void (*on_down)(struct child_peer *p);
	void *arg;
	/* private */
	struct child_env *env;
	struct lws_vhost *vh;
	struct lws *wsi;
	struct msg_conn conn;
	int64_t next_dial;
	char drop_why[160];		/* set by child_peer_drop */
};

/* Name of the lws protocol every peer is adopted with; include
 * child_peer_protocol() in the context's protocol list. */
struct lws_protocols child_peer_protocol(void);
void child_peer_start(struct child_peer *p, struct child_env *env,
    struct lws_vhost *vh);
/* Re-dial when down (call from the child's tick). */
void child_peer_tick(struct child_peer *p);
int  child_peer_up(const struct child_peer *p);
/* Queue a message; -1 when down or full. */
int  child_peer_send(struct child_peer *p, uint16_t type, uint64_t reqid,
    const void *data, size_t len);
/*
 * The peer broke the protocol (from on_msg): the connection is dropped
 * with a log line naming the peer and the reason once on_msg returns, and
 * re-dialled like any lost connection.
 */
void child_peer_drop(struct child_peer *p, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* As child_peer_send, a header struct followed by a payload. */
int  child_peer_send2(struct child_peer *p, uint16_t type, uint64_t reqid,
    const void *a, size_t alen, const void *b, size_t blen);
#endif
