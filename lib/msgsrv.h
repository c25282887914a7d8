/*
 * lib/msgsrv: the one message server of the hub's Unix sockets.  It
 * accepts clients on a listening socket, gives each a msg_conn with the
 * server end's rules (lib/msg: a type the server may not receive is
 * refused at its header), reads and dispatches complete messages through
 * a table indexed by type, writes answers without ever blocking, and
 * drops a client that breaks the protocol with one log line naming the
 * peer (pid and uid from SO_PEERCRED) and the reason.  A peer's message
 * never ends the server's process.
 *
 * Users: billing (billing.sock), moderation (moderation.sock), the master
 * (hubd.sock), the tunnel (tunnel.sock, the gateways' side).  Each gives a
 * struct msg_srv_ops: its rules, its dispatch table, and optional hooks.
 *
 * Event loops.  A poll(2) loop fills its poll set with msg_srv_pollfds()
 * (the listener, then every client, POLLOUT where output waits) and hands
 * the results to msg_srv_events().  An event library that owns the poll
 * (libwebsockets, in the tunnel) watches one descriptor instead:
 * msg_srv_epoll() returns an epoll descriptor holding the listener and
 * every client (EPOLLOUT while output waits, kept up to date by the
 * server); the library polls it for input (lws: adopted as a raw file) and
 * calls msg_srv_epoll_events() whenever it is readable.  The library never
 * sees, adopts or closes a client's fd, so there is one owner of each.
 *
 * Deferred clients (poll mode only).  A client that says its messages
 * can wait (msg_srv_defer: a gateway's posts and unwaited reservations to
 * billing) is read at most every ops->defer_ms: once one of its reads
 * got something less than defer_ms after the last one that did, the
 * server holds every deferred client out of the poll set's POLLIN (a
 * hang-up still shows) until msg_srv_defer_due says the hold ended; then
 * it reads them all, and holds again if that got something.  Messages
 * further apart than a hold (a lightly loaded hub: a request's
 * reservation, then its post) are read as they come: a hold would not
 * gather them, only wake the server once more at its end.  Their messages are never read after another client's that
 * was written later: before any other client's input, and on
 * msg_srv_drain (the user's own calls: admin commands, a sweep, the
 * stop), every deferred client is read first.  A busy peer that only
 * posts wakes the server once a hold, not once a message.
 *
 * Ownership: the server owns the client slots and closes their fds; the
 * listener belongs to the caller, and so does the epoll descriptor once
 * msg_srv_epoll() returned it (an event library that adopted it closes it).
 */
#ifndef SWB_MSGSRV_H
#define SWB_MSGSRV_H

#include <poll.h>
#include <stddef.h>
#include <stdint.h>
#include "lib/msg.h"

struct msg_srv;

struct msg_client {
	struct msg_conn conn;	/* first member; conn.fd -1: slot free */
	struct msg_srv *srv;
	uint32_t slot;		/* index in the server's table */
	uint32_t serial;	/* tells a reused slot from its former client */
	int32_t pid;		/* the peer, from SO_PEERCRED (-1 unknown) */
	int32_t uid;
	int64_t last_active;	/* monotonic ms: accepted or last message */
	int closing;		/* close once the queued answer is written */
	int deferred;		/* msg_srv_defer: read on the server's hold */
	uint32_t watched;	/* epoll mode: the events registered */
	void *user;		/* the user's (an lws wsi, a request slot) */
};

/*
 * A handler of one message type.  0, or -1 with a reason in err: the
 * message broke the protocol beyond its header (a payload that does not
 * parse); the server logs that and drops the client.
 */
typedef int (*msg_srv_fn)(struct msg_client *cl, const struct msg *m,
    char *err, size_t errlen);

struct msg_srv_ops {
	const char *name;		/* "billing.sock", for the log */
	const struct msg_rules *rules;	/* the server's end */
	/* Indexed by type, rules->rx.ntypes entries: a handler for exactly
	 * the types rules->rx allows (checked by msg_srv_init). */
	const msg_srv_fn *dispatch;
	uint32_t max_clients;
	int64_t idle_ms;		/* close a client silent this long; 0 never */
	/* Full: close the longest-idle client that is not busy to make room
	 * for a new one (for short-lived clients such as hubctl); else the
	 * new one is refused. */
	int evict_idle;
	/* Nonzero while the client has work in flight (it is not idle). */
	int (*busy)(struct msg_client *cl);
	/* Around the messages of one read (billing's group commit).  begin's
	 * result is passed to end; end returns -1 when the answers queued in
	 * between cannot stand: the client is then dropped. */
	int (*input_begin)(struct msg_srv *s);
	int (*input_end)(struct msg_srv *s, struct msg_client *cl, int began);
	void (*on_open)(struct msg_client *cl);
	void (*on_close)(struct msg_client *cl);	/* before its fd closes */
	/* Output waits on cl (poll mode only: the poll set and the epoll
	 * descriptor ask for POLLOUT themselves). */
	void (*want_write)(struct msg_client *cl);
	void *arg;			/* the user's, for hooks and handlers */
	/* Deferred clients are read at most this often (see above); 0:
	 * msg_srv_defer refuses. */
	int64_t defer_ms;
};

struct msg_srv {
	const struct msg_srv_ops *ops;
	int listen_fd;
	int accepting;
	struct msg_client *cl;		/* ops->max_clients slots */
	uint32_t next_serial;
	int epfd;			/* msg_srv_epoll's, or -1 */
	int holding;			/* deferred clients out of POLLIN */
	int64_t hold_until;		/* monotonic ms: when the hold ends */
	int64_t deferred_read_ms;	/* monotonic ms: a deferred read last
					   got something (0: never) */
	int hold_ending;		/* msg_srv_defer_due reading them */
	uint32_t ndeferred;		/* deferred clients connected */
	/* Every client is in the slots below nused (a new one takes the
	 * lowest free slot): the bound of the loops over clients, which
	 * run every turn of a loop (the poll set, the flush), so that they
	 * visit the few clients connected, not all max_clients slots. */
	uint32_t nused;
};

/* 0, or -1 with a reason (a dispatch table that does not match the rules,
 * no memory): a start-up error.  listen_fd is non-blocking. */
int  msg_srv_init(struct msg_srv *s, const struct msg_srv_ops *ops,
    int listen_fd, char *err, size_t errlen);
/* Close every client (on_close each); the listener is the caller's. */
void msg_srv_free(struct msg_srv *s);
void msg_srv_stop_accepting(struct msg_srv *s);

/* The listener is readable: accept what waits. */
void msg_srv_accept(struct msg_srv *s);
/* A client is readable / writable. */
void msg_srv_input(struct msg_srv *s, struct msg_client *cl);
void msg_srv_output(struct msg_srv *s, struct msg_client *cl);

/* Queue a message to a client; written by the loop (never blocks).
 * -1 when the server may not send it or the client's queue is full. */
int  msg_srv_send(struct msg_client *cl, uint16_t type, uint64_t reqid,
    const void *data, size_t len);
/*
 * As msg_srv_send, but nothing is written or watched until the caller's
 * msg_srv_write(cl), at the end of its loop's turn: what one turn queued
 * for a client goes out in one write, and the client wakes once.
 */
int  msg_srv_queue(struct msg_client *cl, uint16_t type, uint64_t reqid,
    const void *data, size_t len);
/* Write what cl has queued, as far as the socket takes it (the rest by
 * the loop).  Closes cl when the write fails. */
void msg_srv_write(struct msg_client *cl);
/* Close once what is queued is written; input after it is ignored. */
void msg_srv_close_after(struct msg_client *cl);
/* Close now.  why (printf format) non-NULL: a warning naming the peer. */
void msg_srv_drop(struct msg_client *cl, const char *why, ...)
    __attribute__((format(printf, 2, 3)));
/* Write every client's queue (after the caller queued outside input). */
void msg_srv_flush(struct msg_srv *s);
/* Close clients idle for ops->idle_ms. */
void msg_srv_tick(struct msg_srv *s, int64_t now_ms);

/*
 * From now on cl's messages may wait (see Deferred clients), under the
 * rules given (the server's end, a subset of ops->rules: what such a
 * client may send).  -1 when the server defers nobody (no defer_ms, or
 * epoll mode).
 */
int  msg_srv_defer(struct msg_client *cl, const struct msg_rules *rules);
/* A deferred client's other connection: the undeferred client of the
 * same process (SO_PEERCRED pid), or cl itself when there is none. */
const struct msg_client *msg_srv_sibling(const struct msg_client *cl);
/* Read and dispatch what every deferred client sent so far. */
void msg_srv_drain(struct msg_srv *s);
/* Before each poll: when the hold ended, read the deferred clients.
 * Returns when the loop must wake for the hold (monotonic ms), or 0. */
int64_t msg_srv_defer_due(struct msg_srv *s, int64_t now_ms);

/* The client in slot with serial, or NULL when it went away. */
struct msg_client *msg_srv_find(struct msg_srv *s, uint32_t slot,
    uint32_t serial);
uint32_t msg_srv_nclients(const struct msg_srv *s);

/*
 * poll(2) integration: fill at most max entries of pfd (who[i] = the
 * client, NULL for the listener); returns how many.  After poll, pass
 * the same arrays and count to msg_srv_events.
 */
size_t msg_srv_pollfds(struct msg_srv *s, struct pollfd *pfd,
    struct msg_client **who, size_t max);
void msg_srv_events(struct msg_srv *s, const struct pollfd *pfd,
    struct msg_client *const *who, size_t n);

/*
 * epoll integration (see Event loops): the descriptor to watch for input,
 * or -1 with a reason (a start-up error).  From then on the server keeps
 * it up to date; msg_srv_events and msg_srv_pollfds are not used.
 */
int  msg_srv_epoll(struct msg_srv *s, char *err, size_t errlen);
/* The epoll descriptor is readable: serve what is ready (never blocks). */
void msg_srv_epoll_events(struct msg_srv *s);

#endif
