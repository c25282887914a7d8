/*
 * child/child_peer: a child's client connection to another child's Unix
 * socket in run_dir (tunnel.sock, billing.sock, ...), adopted into the
 * child's lws loop as a raw fd.  Dialled at start, re-dialled on tick
 * after a loss; messages are queued and flushed without blocking.
 */
#ifndef SWB_CHILD_PEER_H
#define SWB_CHILD_PEER_H

#include "child/child_lws.h"

/*
 * Output left over after a raw fd's writable callback.  libwebsockets 4.1's
 * raw-file role clears POLLOUT after LWS_CALLBACK_RAW_WRITEABLE_FILE
 * returns, so lws_callback_on_writable() from inside that callback is
 * lost, and what is still queued would wait for the next message queued.
 * child_rearm() asks again from a zero-delay timer, after the callback.
 * Outside that callback lws_callback_on_writable() works as documented.
 */
struct child_rearm {
	lws_sorted_usec_list_t sul;
	struct lws *wsi;
};
/* From inside wsi's RAW_WRITEABLE_FILE callback: writable again soon. */
void child_rearm(struct child_rearm *r, struct lws *wsi);
/* Before wsi or r goes away. */
void child_rearm_cancel(struct child_rearm *r);

struct child_peer {
	const char *sock;		/* "billing.sock" */
	const struct msg_rules *rules;
	/* One complete message from the peer, of a type rules->rx allows.
	 * A message that breaks the protocol beyond its header: call
	 * child_peer_drop(); never exit because of it. */
	void (*on_msg)(struct child_peer *p, const struct msg *m);
	/* The connection went down (pending requests will get no answer). */
	void (*on_down)(struct child_peer *p);
	/* Connected (NULL: nothing): what is queued here goes first. */
	void (*on_up)(struct child_peer *p);
	void *arg;
	/* private */
	struct child_env *env;
	struct lws_vhost *vh;
	struct lws *wsi;
	struct msg_conn conn;
	struct child_rearm rearm;
	int64_t next_dial;
	char drop_why[160];		/* set by child_peer_drop */
	int queued;			/* queued in this turn: child_peer_flush
					   writes it */
	int stuck;			/* a write left some unsent: the rest
					   goes when the socket is writable */
};

/* Name of the lws protocol every peer is adopted with; include
 * child_peer_protocol() in the context's protocol list. */
struct lws_protocols child_peer_protocol(void);
void child_peer_start(struct child_peer *p, struct child_env *env,
    struct lws_vhost *vh);
/* Re-dial when down (call from the child's tick). */
void child_peer_tick(struct child_peer *p);
int  child_peer_up(const struct child_peer *p);
/* Queue a message; -1 when down or full.  Written by child_peer_flush()
 * at the end of the loop's turn (child_lws_run): what one turn queued for
 * a peer goes out in one write, and the peer wakes once. */
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
/* Write what every peer queued (the rest when writable), the peers in
 * the order they were started. */
void child_peer_flush(void);
/* Whether an earlier turn's messages are still unsent (the socket was
 * full): what this turn queues then waits behind them. */
int  child_peer_backlog(const struct child_peer *p);
#endif
