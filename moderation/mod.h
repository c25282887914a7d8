/*
 * moderation/mod: declarations shared by the moderation process's files —
 * the verdict cache (mod_cache.c), the calls to the moderation service
 * (mod_http.c), one gateway check from question to verdict (mod_check.c)
 * and the process loop with its gateway connections (mod_main.c).
 */
#ifndef SWB_MOD_H
#define SWB_MOD_H

#include <poll.h>
#include <stddef.h>
#include <stdint.h>
#include "lib/ipc.h"
#include "child/child.h"

#define MOD_DETAIL_MAX	sizeof(((struct ipc_mod_verdict *)0)->detail)
#define MOD_MAX_INFLIGHT 1024		/* service calls at once */
#define MOD_ANSWER_MAX	(1024 * 1024)	/* bytes of one service answer */
#define MOD_MAX_CLIENTS	128		/* gateway connections */
#define MOD_POLL_MAX	(MOD_MAX_CLIENTS + 2)	/* + master + listener */

/* What the service said about one input (fail_open is applied later). */
enum mod_answer {
	MOD_ANS_CLEAN = 0,	/* definitive: not flagged */
	MOD_ANS_FLAGGED,	/* definitive: flagged; detail = categories */
	MOD_ANS_FAILED,		/* no verdict: error, timeout, bad answer */
};

/* ---- mod_cache: verdicts by content hash, bounded (LRU) with a TTL. */
struct mod_cache;

/* capacity 0 makes a cache that never stores anything. */
struct mod_cache *mod_cache_new(int64_t capacity, int64_t ttl_ms);
void mod_cache_free(struct mod_cache *c);
/*
 * Look KEY (64 hex digits) up at time NOW_MS.  1 on a hit (*ans and detail
 * filled, the entry becomes the most recently used), 0 on a miss; an
 * expired entry is dropped and is a miss.
 */
int mod_cache_get(struct mod_cache *c, const char *key, int64_t now_ms,
    enum mod_answer *ans, char *detail, size_t detlen);
/*
 * Remember a definitive answer (CLEAN or FLAGGED) until NOW_MS + ttl,
 * evicting the least recently used entry when full.  Returns 0, or -1 when
 * nothing was stored (a failure, or capacity 0).
 */
int mod_cache_put(struct mod_cache *c, const char *key, int64_t now_ms,
    enum mod_answer ans, const char *detail);
size_t mod_cache_count(const struct mod_cache *c);

/* ---- mod_http: service calls through the curl multi interface. */
struct mod_http;

struct mod_http_req {
	const char *url;
	const char *api_key;	/* "" = no Authorization header */
	const char *ca_file;	/* "" = the system's CAs */
	int64_t timeout_ms;
	const char *body;	/* copied */
};

/* Called once per call, from mod_http_run() (or never, after _free). */
typedef void (*mod_http_done_fn)(void *arg, enum mod_answer ans,
    const char *detail);

struct mod_http *mod_http_new(void);
/* Abort every call in flight without calling back. */
void mod_http_free(struct mod_http *h);
/* Start one call.  0, or -1 with err filled (nothing will be called back). */
int mod_http_start(struct mod_http *h, const struct mod_http_req *rq,
    uint64_t reqid, mod_http_done_fn done, void *arg, char *err, size_t errlen);
size_t mod_http_inflight(const struct mod_http *h);
/*
 * Wait up to timeout_ms for the service's sockets or for one of pfd[]
 * (events POLLIN/POLLOUT; revents filled as poll(2) does).  Returns the
 * number of pfd[] entries with revents, or -1.
 */
int mod_http_poll(struct mod_http *h, struct pollfd *pfd, unsigned n,
    int timeout_ms);
/* Move the transfers on and call back the ones that ended. */
void mod_http_run(struct mod_http *h);

/*
 * The service request for a gateway's check payload ({"input":...}):
 * {"model":MODEL,"input":...}, malloc'd.  NULL with err filled when the
 * payload is not such an object.  *empty = 1 when input holds nothing.
 */
char *mod_request_body(const char *payload, size_t len, const char *model,
    int *empty, char *err, size_t errlen);
/* Read the service's answer (OpenAI moderation format). */
enum mod_answer mod_parse_answer(const char *body, size_t len, char *detail,
    size_t detlen);

/* snprintf for details: long reasons are cut short on purpose. */
void mod_detailf(char *out, size_t size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* ---- mod_check: one gateway question, from the cache or the service. */

/* Which gateway connection asked (slot + serial: the slot may be reused). */
struct mod_asker {
	uint32_t slot;
	uint32_t serial;
	uint64_t reqid;
};

/*
 * CONF is the process's live configuration (env->conf, updated in place on
 * a reload): enabled, timeout, fail_open and api_key are read at each use.
 * The cache is sized once, here.
 */
void mod_check_init(const struct hub_conf *conf);
void mod_check_fini(void);
/* Answer (now or later, through mod_reply) one IPC_MOD_CHECK payload. */
void mod_check(const struct mod_asker *who, const char *payload, size_t len);
/* Service calls (and so questions) still waiting for an answer. */
size_t mod_check_busy(void);
/* Pass-through to mod_http_poll()/mod_http_run() of the process's calls. */
int mod_check_poll(struct pollfd *pfd, unsigned n, int timeout_ms);
void mod_check_run(void);
/* Stop: answer every waiting question by the fail rule, drop the calls. */
void mod_check_abort(const char *why);

/* ---- mod_main: send a verdict to a gateway connection, if still there. */
void mod_reply(const struct mod_asker *who, const struct ipc_mod_verdict *v);

#endif
