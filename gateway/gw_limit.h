/*
 * gateway/gw_limit: per-token and per-channel RPM/TPM limits of a gateway
 * worker (gw_limit.c) and its Redis connection (gw_redis.c).
 *
 * Before a chat request is relayed it is charged one request and an
 * estimate of its tokens (lib/tokest.h) in the current unix minute, on its
 * token (struct ipc_token_info rpm/tpm) and on the first candidate channel
 * with room (the rpm/tpm limits its agent announced).  With [redis] url
 * the counters are global to every hub sharing that Redis (one atomic Lua
 * script per check); without it, or while Redis is unreachable, they are
 * this hub's scoreboard counters (shm/sb_limit.h).  Over a limit: 429
 * rate_limit_exceeded with retry-after (seconds until the minute turns).
 * When the relay ends, the usage read from the answer replaces the
 * estimate in the minute's token counters.
 */
#ifndef SWB_GW_LIMIT_H
#define SWB_GW_LIMIT_H

#include <stdint.h>

struct gw_req;
struct gw_token;
struct lws_vhost;
struct lws_protocols;

/* Per request (inside struct gw_req). */
struct gw_lim {
	int64_t est;		/* estimated tokens, set when the body is read */
	int64_t tok_rpm, tok_tpm;	/* the token's limits */
	uint64_t token_id;
	int where;		/* counted: 0 nowhere, 1 locally, 2 in Redis */
	int chan;		/* candidate index counted (-1: none) */
	int chan_limited;	/* that channel had limits (Redis counted it) */
	int tok_slot;		/* scoreboard token slot counted, -1 none */
	int64_t minute;		/* unix minute counted in locally */
	int64_t redis_minute;	/* ... and in Redis (its clock) */
	int64_t deadline;	/* monotonic ms: Redis's verdict due */
	int retry_after;	/* seconds; sent as retry-after with a 429 */
};

void gw_limit_init(struct lws_vhost *vh);
void gw_limit_tick(void);
/*
 * gw_limit_check (declared in gw.h: it returns a stage verdict): after
 * routing, admit r (r->cur = the candidate charged) or answer 429; with
 * Redis the verdict may come later.
 */
/* The relay ended: correct the minute's tokens with the real usage. */
void gw_limit_done(struct gw_req *r);

/* gw_redis.c: hiredis async client inside the worker's lws loop. */
struct redisReply;
/* fn gets the script's reply, or NULL when Redis failed or went away. */
typedef void (gw_redis_fn)(const struct redisReply *reply, void *arg);
void gw_redis_init(struct lws_vhost *vh, const char *url);
void gw_redis_tick(void);
int  gw_redis_enabled(void);
int  gw_redis_up(void);		/* connected, script loaded */
/* Run the limit script.  0, or -1 (fn not called) when Redis is not up. */
int  gw_redis_eval(int nkeys, const char **keys, int nargs,
    const long long *args, gw_redis_fn *fn, void *arg);
/* Fire and forget: HINCRBY key field delta (usage correction). */
void gw_redis_incr(const char *key, const char *field, long long delta);
/* Redis stalls: drop the connection (pending verdicts get NULL). */
void gw_redis_fail(const char *why);
struct lws_protocols gw_redis_protocol(void);

#endif
