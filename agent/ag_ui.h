/*
 * agent/ag_ui: agentd's local web page — an lws HTTP vhost in the tunnel's
 * own lws context (so it runs on the tunnel's loop, never another
 * thread's), on [ui] listen (default 127.0.0.1:8790; beyond loopback only
 * with [ui] allow_remote = yes).  GET / is the page (HTML, CSS and JS
 * compiled in from agent/ui/index.html; it holds no data), GET /api/... the
 * JSON it shows; each API call only with "Authorization: Bearer SECRET": the
 * secret is <state_dir>/ui.secret, created and printed once at first
 * start, replaced by `agentd ui-secret`.
 *   /api/status    tunnel links, pins, version, public address, channels
 *                  (this minute against rpm/tpm and the caps, in flight,
 *                  errors, today's spending) — from agent/ag_status
 *   /api/requests  the last served requests and their receipt state
 *   /api/earnings  receipted amounts per UTC day and model
 *   /api/disputes  the disputes this agent raised
 *   /api/log       the last log lines (a ring kept here)
 * The ledger is read through its own read-only connection
 * (agent/ag_ledger_read).
 */
#ifndef SWB_AG_UI_H
#define SWB_AG_UI_H

#include <stddef.h>
#include <jansson.h>

struct lws_context;
struct ag_conf;
struct ag_ui;

#define AG_UI_SECRET_FILE	"ui.secret"
#define AG_UI_SECRET_LEN	32	/* hex characters */

/* "HOST:PORT" or "[V6]:PORT" into host and port (1..65535).  0 or -1. */
int ag_ui_split(const char *hp, char *host, size_t hostlen, int *port);
/* 1 when hp's host is a loopback address (127.0.0.0/8, ::1, localhost). */
int ag_ui_loopback(const char *hp);
/*
 * The page's secret in state_dir: read it, or with renew (or when there is
 * none) make a new one (0600) and say so on stdout.  0, or -1 with err.
 */
int ag_ui_secret(const char *state_dir, int renew, char out[AG_UI_SECRET_LEN + 1],
    char *err, size_t errlen);
/*
 * Listen on cf's [ui] listen in ctx (nothing when it is "off").  status()
 * answers /api/status (a new reference).  NULL with err when it cannot.
 */
struct ag_ui *ag_ui_start(struct lws_context *ctx, const struct ag_conf *cf,
    json_t *(*status)(void *arg), void *arg, char *err, size_t errlen);
void ag_ui_free(struct ag_ui *u);
/* agentd ui-secret [-c INI]: a new secret for the page (a running agentd
 * reads the file at each API call).  The exit status. */
int ag_ui_cmd_secret(int argc, char **argv);
/* lib/log's sink: keep line in the ring /api/log shows (any thread). */
void ag_ui_log_line(const char *line, size_t len);

#endif
