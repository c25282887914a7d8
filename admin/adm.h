/*
 * admin/adm: the admin child — the admin HTTP API and GET /metrics on
 * [admin] listen (TLS with [admin] cert/key).  It runs as [hub] user and
 * holds only its listener: every request becomes the argv of a hubctl
 * command (adm_routes.c), sent to the master with the SHA-256 of the
 * admin key it was shown (IPC_ADMIN_HTTP); the master checks the key with
 * billing and runs the command through the same table as hubd.sock.  The
 * answer's JSON is the HTTP body.  /metrics reads the scoreboard's
 * metrics area (adm_metrics.c) once the master accepted the key.
 */
#ifndef SWB_ADM_H
#define SWB_ADM_H

#include <stddef.h>
#include <stdint.h>
#include <jansson.h>
#include <openssl/ssl.h>
#include "child/child.h"

#define ADM_MAX_CONNS	64
#define ADM_HEAD_MAX	(16 * 1024)
#define ADM_BODY_MAX	(64 * 1024)
#define ADM_IDLE_MS	30000

struct adm_buf {
	char *p;
	size_t len, cap;
};

enum adm_kind { ADM_JSON = 0, ADM_METRICS, ADM_EXPORT };

struct adm_conn {
	int fd;				/* -1: free */
	SSL *ssl;			/* NULL: plain HTTP */
	int handshaken;
	int64_t last_ms;
	struct adm_buf in, out;
	size_t out_off;
	int want_write;			/* SSL wants the socket writable */
	int reading;			/* still reading the request */
	int waiting;			/* a command is with the master */
	uint64_t reqid;			/* of that command */
	int close_when_sent;
	/* the request */
	char method[8];
	char path[512];
	char query[1024];
	char keyhash[65];		/* "" when no key was given */
	json_t *body;			/* parsed JSON body, or NULL */
	size_t head_len, body_len;
	enum adm_kind kind;
	/* ADM_EXPORT: paging of the ledger CSV */
	char export_agent[24];
	int64_t export_after;
	int export_started;
};

/* adm_main.c */
void adm_send(struct adm_conn *c, unsigned status, const char *ctype,
    const char *body, size_t len, int last);
void adm_send_error(struct adm_conn *c, unsigned status, const char *msg);
/* Send argv (NUL-separated, len bytes) for c to the master.  0 or -1. */
int  adm_ask(struct adm_conn *c, const char *argv, size_t len);
void adm_buf_add(struct adm_buf *b, const void *p, size_t n);
struct child_env *adm_env(void);

/* adm_routes.c: a complete request -> a command; answers -> HTTP. */
void adm_route(struct adm_conn *c);
void adm_answer(struct adm_conn *c, const char *json, size_t len);

/* adm_metrics.c: the Prometheus text of the scoreboard's metrics and the
 * channels answer (JSON of the "channels" command). */
void adm_metrics_render(const struct sb *sb, json_t *channels,
    struct adm_buf *out);

#endif
