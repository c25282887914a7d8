/*
 * agent/ag_ws: the provider side of a Realtime session — one outgoing
 * WebSocket per session (wss://OFFICIAL-HOST/PATH), an lws client on the
 * agent's own lws context (the tunnel's: libcurl has no WebSocket here).
 * Owns the connection, the credential headers (the adapter's add_auth,
 * the same lines it puts on curl requests), message reassembly (at most
 * AG_WS_MSG_MAX a message) and the queue of the user's messages for the
 * provider (at most AG_WS_OUT_MAX bytes; past it ag_ws_send refuses and
 * the caller ends the session).  The provider is always read (the caller
 * holds what the hub's window does not take yet, bounded by
 * AG_WS_HOLD_MAX).  TLS: the context's CAs (the system's;
 * in test builds [test] ca_file), the host name checked; in test builds
 * [test] connect_to entries "HOST:443:ADDR:PORT" redirect the TCP
 * connection as they do curl's.
 *
 * Callbacks run on the lws loop; after ag_ws_close none comes.
 */
#ifndef SWB_AG_WS_H
#define SWB_AG_WS_H

#include <stddef.h>
#include <libwebsockets.h>
#include "agent/ag_conf.h"
#include "lib/frame.h"

#define AG_WS_MSG_MAX	(FRAME_WINDOW - 1024)	/* one provider message */
#define AG_WS_OUT_MAX	(4u * 1024 * 1024)	/* queued for the provider */
#define AG_WS_HOLD_MAX	(8u * 1024 * 1024)	/* held for a slow user */

struct ag_ws;

struct ag_ws_cb {
	void (*open)(void *arg);
	void (*msg)(void *arg, const unsigned char *p, size_t len, int text);
	/* The session is over (the provider closed, failed, or never
	 * opened): ok 1 for a normal close. */
	void (*closed)(void *arg, int ok, const char *why);
};

/* Open wss to the provider of ch at path (+query, made by its adapter).
 * NULL with err filled when it cannot even start. */
struct ag_ws *ag_ws_open(struct lws_context *ctx, const struct ag_conf *cf,
    const struct ag_channel *ch, const char *path, const struct ag_ws_cb *cb,
    void *arg, char *err, size_t errlen);
/* Queue one message for the provider: 0, or -1 (over AG_WS_OUT_MAX, or
 * not open). */
int  ag_ws_send(struct ag_ws *w, const void *p, size_t len, int text);
/* Close it; no callback comes after this. */
void ag_ws_close(struct ag_ws *w);
/* The lws callback of the connections; 1 when wsi is one of ours (then
 * *ret is the callback's answer), 0 when it is not. */
int  ag_ws_dispatch(struct lws *wsi, enum lws_callback_reasons reason,
    void *user, void *in, size_t len, int *ret);

#endif
