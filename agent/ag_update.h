/*
 * agent/ag_update: agentd's signed self-update and its rollback (the
 * design is described atop ag_update.c).  The fetching runs as lws HTTP
 * clients in the tunnel's loop (lws thread only); the restart runs in
 * main once the tunnel is torn down.
 */
#ifndef SWB_AG_UPDATE_H
#define SWB_AG_UPDATE_H

#include <stddef.h>
#include <libwebsockets.h>
#include "agent/ag_conf.h"

#define AG_UPDATE_PROTOCOL	"swb-update"
#define AG_UPDATE_ENV		"SWB_UPDATE_FD"	/* "FD:WATCHDOG_PID" */

struct ag_update;

/* What main must do once the tunnel is down (ag_update_due). */
enum ag_update_due { AG_UPD_NONE = 0, AG_UPD_RESTART, AG_UPD_ROLLBACK };

/* For cf's agent, in ctx's loop.  Looks for a probation (a marker in
 * state_dir, AG_UPDATE_ENV) left by the previous binary.  NULL: OOM. */
struct ag_update *ag_update_new(const struct ag_conf *cf,
    struct lws_context *ctx);
void ag_update_free(struct ag_update *u);
/* The lws protocol of its requests (the tunnel lists it). */
int ag_update_callback(struct lws *wsi, enum lws_callback_reasons reason,
    void *user, void *in, size_t len);
/* Is wsi's opaque user data this updater? (TLS callbacks reach the
 * tunnel's first protocol.) */
int ag_update_owns(const struct ag_update *u, const void *opaque);
/* The hub sent update_available: fetch and check when [update] auto. */
void ag_update_available(struct ag_update *u, const char *version);
/* A hub welcomed us: confirms a probation. */
void ag_update_online(struct ag_update *u);
/* What main must do now (polled every loop turn). */
enum ag_update_due ag_update_due(struct ag_update *u);
/* The agent stops on a signal: a watchdog of a probation stands down. */
void ag_update_stopping(struct ag_update *u);

/* After the tunnel is freed: AG_UPD_RESTART execs the installed binary
 * under a watchdog; AG_UPD_ROLLBACK restores SELF.old and execs it.
 * Returns only when that failed (logged). */
void ag_update_reexec(const struct ag_conf *cf, enum ag_update_due what,
    char **argv);

/* agentd update [-c FILE]: fetch, check and install now; the new binary
 * runs at the next start (on probation).  Exit code. */
int ag_update_cmd(int argc, char **argv);

#endif
