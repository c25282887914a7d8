/*
 * child/child_lws: the libwebsockets event loop shared by the hub
 * children that speak HTTP/WebSocket (gateway, tunnel).  The listening
 * socket was opened by the master; each child adopts it as a raw fd,
 * accepts on it itself and hands accepted sockets to lws (with TLS when the
 * vhost has a certificate).  The master connection is adopted the same way,
 * so libwebsockets is only ever called from this one loop.
 */
#ifndef SWB_CHILD_LWS_H
#define SWB_CHILD_LWS_H

#include <libwebsockets.h>
#include "child/child.h"
#include "lib/ltimer.h"

struct child_lws {
	struct child_env *env;
	const struct child_ops *ops;
	struct lws_context *ctx;
	struct lws_vhost *vh;
	struct lws *listen_wsi;	/* NULL once we stopped accepting */
	int listen_fd;
	/* When set (and the vhost has no TLS), accepted sockets are adopted
	 * as raw sockets of this protocol instead of lws's HTTP. */
	const char *raw_protocol;
	/* When set, an accepted socket is handed to it instead (it adopts
	 * the fd into lws, or returns NULL and the fd is closed). */
	struct lws *(*adopt)(struct child_lws *cl, int fd);
	int done;
	/* Called about every tick_ms from the loop. */
	int tick_ms;
	void (*tick)(struct child_lws *cl);
	/* After every turn of the loop (output queued in it goes out),
	 * before the messages queued for the peers are flushed. */
	void (*after)(struct child_lws *cl);
	/* Nonzero while in-flight work remains (drain on stop). */
	int (*busy)(struct child_lws *cl);
	void *user;
	struct ltimer tick_timer;	/* drives tick() and the drain check */
	/* Out of descriptors (or memory) on accept: the listener is not
	 * polled until accept_sul fires, and one warning per
	 * CHILD_ACCEPT_LOG_MS counts the refusals. */
	lws_sorted_usec_list_t accept_sul;
	int accept_paused;
	int64_t accept_logged_ms;	/* monotonic, last warning */
	uint64_t accept_refused;	/* refusals since that warning */
};

#define CHILD_ACCEPT_PAUSE_MS	250	/* listener off after EMFILE & co */
#define CHILD_ACCEPT_LOG_MS	10000	/* at most one such warning per */

/*
 * Create the context.  protocols: the caller's, NULL-terminated, at most 8.
 * cert/key: a TLS server vhost when both are non-empty, offering alpn
 * ("h2,http/1.1" for the user API; "http/1.1" for WebSockets).
 * 0 or -1 (logged).
 */
int  child_lws_init(struct child_lws *cl, struct child_env *env,
    const struct child_ops *ops, const struct lws_protocols *protocols,
    int listen_fd, const char *cert, const char *key, const char *alpn);
/* Serve until stopped and drained (or the master is gone). */
void child_lws_run(struct child_lws *cl);
/* 1 when the loop runs turn_done (after()) before every wait for events,
 * whatever woke it (libev's prepare); 0 on libwebsockets' poll() loop,
 * where its timers run before the wait and after() only after it. */
int  child_lws_ends_turns(void);
void child_lws_free(struct child_lws *cl);
/* Stop accepting new connections (called on stop). */
void child_lws_stop_accepting(struct child_lws *cl);

#endif
