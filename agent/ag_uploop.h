/*
 * agent/ag_uploop: runs the upstream engine (agent/ag_upstream) on
 * agentd's lws thread, so a request costs no thread hop.  Owns the raw
 * file wsi that watches the engine's epoll set, the engine's timer (an
 * ltimer) and its kick (an lws_sul), and calls the tunnel's drain after
 * every run.
 * lws thread only.
 */
#ifndef SWB_AG_UPLOOP_H
#define SWB_AG_UPLOOP_H

#include <libwebsockets.h>
#include "agent/ag_upstream.h"
#include "lib/ltimer.h"

#define AG_UPLOOP_PROTOCOL	"swb-upstream"

struct ag_uploop {
	struct lws_context *ctx;
	struct ag_upstream *up;		/* NULL: not running */
	struct lws *wsi;		/* a dup of ag_up_fd(), as a raw file */
	struct ltimer timer;		/* the engine's timer */
	lws_sorted_usec_list_t sul_kick;	/* run soon (work queued) */
	int kicked;			/* sul_kick is scheduled */
	void (*drain)(void *arg);	/* take the events a run queued */
	void *arg;
};

/* The engine's driver callbacks, bound to lp (before ag_up_new). */
void ag_uploop_init(struct ag_uploop *lp, struct lws_context *ctx,
    void (*drain)(void *arg), void *arg, struct ag_up_loop *loop);

/* Watch up's sockets from the context's default vhost.  0, or -1 with err
 * filled. */
int ag_uploop_start(struct ag_uploop *lp, struct ag_upstream *up, char *err,
    size_t errlen);

/* A kick still pending (work queued in the last turn's callbacks) runs
 * now rather than at the next turn's timers: the caller has other work
 * first (the ledger's slice) that should not delay a request. */
void ag_uploop_kick_now(struct ag_uploop *lp);

/* No more runs (before ag_up_free). */
void ag_uploop_stop(struct ag_uploop *lp);

/* The protocol callback of AG_UPLOOP_PROTOCOL. */
int ag_uploop_callback(struct lws *wsi, enum lws_callback_reasons reason,
    void *user, void *in, size_t len);

#endif
