/*
 * gateway/gw_redis: this worker's connection to the [redis] url and the
 * rate-limit Lua script it runs there.  hiredis's async API is driven by
 * the worker's libwebsockets loop: a small adapter adopts (a dup of) the
 * Redis socket into lws as a raw file descriptor and maps hiredis's event
 * hooks to lws — addWrite asks for a writable callback, read events
 * arrive as LWS_CALLBACK_RAW_RX_FILE and go to redisAsyncHandleRead,
 * addRead/delRead turn lws's rx flow on and off, cleanup closes the lws
 * side.  Nothing here blocks the loop (the host name is resolved once,
 * at start-up).  A lost or stalled connection is retried every second
 * from the tick; it is logged once when it goes and once when it is back.
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <hiredis/hiredis.h>
#include <hiredis/async.h>
#include "gateway/gw.h"
#include "lib/log.h"

#define RETRY_MS	1000

/*
 * One check, atomic on the server.  Fixed windows of one minute of the
 * Redis server's clock (every hub sees the same minute).
 *   KEYS[1]    the token's counter base; KEYS[2..] the candidate channels'
 *              bases, best first.  A counter is the hash BASE:MINUTE with
 *              fields r (requests) and t (tokens), expiring after 120 s.
 *   ARGV[1]    estimated tokens of the request
 *   ARGV[2..3] the token's rpm, tpm; ARGV[2i..2i+1] KEYS[i]'s rpm, tpm
 *              (0 = no limit: never refuses and is not counted)
 * The token is checked first (over: refuse); then the channels in order:
 * the first one with room for one more request and the estimate is taken,
 * and only then are the token's and that channel's counters incremented —
 * a refused request increments nothing (the check and the increments are
 * one script, so no other check runs in between).
 * Returns {code, index, retry_after, minute}: code 0 = admitted on channel
 * `index` (1-based), 1 = over a request limit, 2 = over a token limit, with
 * index 0 = the token, else the first channel that refused.
 */
static const char lua_script[] =
    "local now = redis.call('TIME')\n"
    "local sec = tonumber(now[1])\n"
    "local win = math.floor(sec / 60)\n"
    "local retry = 60 - sec % 60\n"
    "local est = tonumber(ARGV[1])\n"
    "local function over(key, rpm, tpm)\n"
    "  if rpm <= 0 and tpm <= 0 then return 0 end\n"
    "  local v = redis.call('HMGET', key, 'r', 't')\n"
    "  if rpm > 0 and (tonumber(v[1]) or 0) + 1 > rpm then return 1 end\n"
    "  if tpm > 0 and (tonumber(v[2]) or 0) + est > tpm then return 2 end\n"
    "  return 0\n"
    "end\n"
    "local function take(key, rpm, tpm)\n"
    "  if rpm <= 0 and tpm <= 0 then return end\n"
    "  redis.call('HINCRBY', key, 'r', 1)\n"
    "  redis.call('HINCRBY', key, 't', est)\n"
    "  redis.call('EXPIRE', key, 120)\n"
    "end\n"
    "local trpm, ttpm = tonumber(ARGV[2]), tonumber(ARGV[3])\n"
    "local tkey = KEYS[1] .. ':' .. win\n"
    "local why = over(tkey, trpm, ttpm)\n"
    "if why ~= 0 then return {why, 0, retry, win} end\n"
    "local first, firsti = 0, 0\n"
    "for i = 2, #KEYS do\n"
    "  local ckey = KEYS[i] .. ':' .. win\n"
    "  local crpm, ctpm = tonumber(ARGV[2 * i]), tonumber(ARGV[2 * i + 1])\n"
    "  local w = over(ckey, crpm, ctpm)\n"
    "  if w == 0 then\n"
    "    take(tkey, trpm, ttpm)\n"
    "    take(ckey, crpm, ctpm)\n"
    "    return {0, i - 1, retry, win}\n"
    "  end\n"
    "  if first == 0 then first, firsti = w, i - 1 end\n"
    "end\n"
    "return {first, firsti, retry, win}\n";

static struct {
	struct lws_vhost *vh;
	char url[256];
	char host[INET6_ADDRSTRLEN];	/* resolved at start-up */
	int port;
	redisAsyncContext *ac;
	struct lws *wsi;		/* lws's side of ac's socket (a dup) */
	int in_cb;			/* inside an lws callback of wsi */
	int up;				/* connected and the script loaded */
	int ever_up;
	int degraded;			/* warned; not back yet */
	char sha[41];
	int64_t next_try;
} rd;

static void
went_down(const char *why)
{
	rd.up = 0;
	if (rd.next_try < clock_mono_ms() + RETRY_MS)
		rd.next_try = clock_mono_ms() + RETRY_MS;
	if (rd.degraded)
		return;
	rd.degraded = 1;
	log_warn("redis %s unreachable (%s): rate limits fall back to this "
	    "hub's local counters until it is back", rd.url, why);
}

/* ---- the hiredis <-> lws adapter -------------------------------------- */

static void
ev_add_read(void *priv)
{
	if (rd.wsi != NULL)
		lws_rx_flow_control(rd.wsi, 1);
}

static void
ev_del_read(void *priv)
{
	if (rd.wsi != NULL)
		lws_rx_flow_control(rd.wsi, 0);
}

static void
ev_add_write(void *priv)
{
	if (rd.wsi != NULL)
		lws_callback_on_writable(rd.wsi);
}

static void
ev_del_write(void *priv)
{
	/* lws's writable request is one-shot: nothing to take back. */
}

/* hiredis frees the context (and closes its fd) right after this. */
static void
ev_cleanup(void *priv)
{
	struct lws *wsi = rd.wsi;

	rd.ac = NULL;
	rd.wsi = NULL;
	rd.up = 0;
	if (wsi == NULL)
		return;
	lws_set_opaque_user_data(wsi, NULL);
	if (!rd.in_cb)		/* else the callback returns -1 */
		lws_set_timeout(wsi, PENDING_TIMEOUT_KILLED_BY_PARENT,
		    LWS_TO_KILL_ASYNC);
}

static int
cb_redis(struct lws *wsi, enum lws_callback_reasons reason, void *user,
    void *in, size_t len)
{
	int mine = lws_get_opaque_user_data(wsi) != NULL && rd.wsi == wsi &&
	    rd.ac != NULL;

	switch (reason) {
	case LWS_CALLBACK_RAW_RX_FILE:
	case LWS_CALLBACK_RAW_WRITEABLE_FILE:
		if (!mine)
			return -1;
		rd.in_cb = 1;
		if (reason == LWS_CALLBACK_RAW_RX_FILE)
			redisAsyncHandleRead(rd.ac);
		else
			redisAsyncHandleWrite(rd.ac);
		rd.in_cb = 0;
		return rd.wsi == wsi ? 0 : -1;	/* gone: close our dup */
	case LWS_CALLBACK_RAW_CLOSE_FILE:
		if (mine) {	/* lws closed it (hang-up): drop hiredis's side */
			rd.wsi = NULL;
			went_down("connection closed");
			redisAsyncFree(rd.ac);
		}
		return 0;
	default:
		return 0;
	}
}

struct lws_protocols
gw_redis_protocol(void)
{
	struct lws_protocols pr = { "swb-redis", cb_redis, 0, 0, 0, NULL, 0 };
	return pr;
}

/* ---- connection ------------------------------------------------------- */

static void
on_connect(const redisAsyncContext *ac, int status)
{
	if (status != REDIS_OK)
		went_down(ac->errstr[0] ? ac->errstr : "connect failed");
}

static void
on_disconnect(const redisAsyncContext *ac, int status)
{
	went_down(status == REDIS_OK ? "connection closed" :
	    ac->errstr[0] ? ac->errstr : "connection lost");
}

static void
on_script_loaded(redisAsyncContext *ac, void *reply, void *priv)
{
	const redisReply *rep = reply;

	if (rep == NULL)
		return;		/* the connection went; on_disconnect said why */
	if (rep->type != REDIS_REPLY_STRING || rep->len != 40) {
		char why[160];
		snprintf(why, sizeof(why), "SCRIPT LOAD: %.*s",
		    rep->type == REDIS_REPLY_ERROR ? (int)rep->len : 7,
		    rep->type == REDIS_REPLY_ERROR ? rep->str : "no hash");
		went_down(why);
		redisAsyncDisconnect(ac);
		return;
	}
	memcpy(rd.sha, rep->str, 40);
	rd.sha[40] = '\0';
	rd.up = 1;
	if (rd.degraded)
		log_info("redis %s is back: rate limits are global again", rd.url);
	else if (!rd.ever_up)
		log_info("rate limits: global counters in redis %s", rd.url);
	rd.degraded = 0;
	rd.ever_up = 1;
}

static void
dial(void)
{
	redisAsyncContext *ac;
	lws_sock_file_fd_type u;
	int fd;

	rd.next_try = clock_mono_ms() + RETRY_MS;
	ac = redisAsyncConnect(rd.host, rd.port);
	if (ac == NULL) {
		went_down("out of memory");
		return;
	}
	if (ac->err) {
		went_down(ac->errstr);
		redisAsyncFree(ac);
		return;
	}
	/* lws gets its own descriptor of the socket: each side closes its
	 * own, whichever goes first. */
	fd = fcntl(ac->c.fd, F_DUPFD_CLOEXEC, 0);
	if (fd < 0) {
		went_down(strerror(errno));
		redisAsyncFree(ac);
		return;
	}
	u.filefd = fd;
	rd.wsi = lws_adopt_descriptor_vhost(rd.vh, LWS_ADOPT_RAW_FILE_DESC, u,
	    "swb-redis", NULL);
	if (rd.wsi == NULL) {
		close(fd);
		went_down("cannot add the socket to the event loop");
		redisAsyncFree(ac);
		return;
	}
	lws_set_opaque_user_data(rd.wsi, &rd);
	rd.ac = ac;
	ac->ev.data = &rd;
	ac->ev.addRead = ev_add_read;
	ac->ev.delRead = ev_del_read;
	ac->ev.addWrite = ev_add_write;
	ac->ev.delWrite = ev_del_write;
	ac->ev.cleanup = ev_cleanup;
	redisAsyncSetConnectCallback(ac, on_connect);
	redisAsyncSetDisconnectCallback(ac, on_disconnect);
	/* The first command's write completes the non-blocking connect. */
	if (redisAsyncCommand(ac, on_script_loaded, NULL, "SCRIPT LOAD %s",
	    lua_script) != REDIS_OK) {
		went_down("cannot queue SCRIPT LOAD");
		redisAsyncFree(ac);
	}
}

/* redis://HOST[:PORT][/...]; HOST resolved now (start-up, not the loop). */
static int
parse_url(const char *url)
{
	char host[256];
	const char *p = url + 8, *end;
	struct addrinfo hints, *res = NULL;
	size_t n;

	if (strncmp(url, "redis://", 8) != 0)
		return -1;
	rd.port = 6379;
	if (*p == '[') {
		end = strchr(p, ']');
		if (end == NULL)
			return -1;
		n = (size_t)(end - p - 1);
		p++;
		end++;
	} else {
		end = p + strcspn(p, ":/");
		n = (size_t)(end - p);
	}
	if (n == 0 || n >= sizeof(host))
		return -1;
	memcpy(host, p, n);
	host[n] = '\0';
	if (*end == ':')
		rd.port = atoi(end + 1);
	if (rd.port <= 0 || rd.port > 65535)
		return -1;
	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	if (getaddrinfo(host, NULL, &hints, &res) != 0 || res == NULL)
		return -1;
	if (res->ai_family == AF_INET)
		inet_ntop(AF_INET, &((struct sockaddr_in *)(void *)res->ai_addr)->sin_addr,
		    rd.host, sizeof(rd.host));
	else
		inet_ntop(AF_INET6, &((struct sockaddr_in6 *)(void *)res->ai_addr)->sin6_addr,
		    rd.host, sizeof(rd.host));
	freeaddrinfo(res);
	return 0;
}

void
gw_redis_init(struct lws_vhost *vh, const char *url)
{
	memset(&rd, 0, sizeof(rd));
	rd.vh = vh;
	if (url == NULL || url[0] == '\0')
		return;
	snprintf(rd.url, sizeof(rd.url), "%s", url);
	if (parse_url(url) != 0) {
		rd.url[0] = '\0';
		log_warn("[redis] url %s: cannot resolve or parse it; rate limits "
		    "use this hub's local counters", url);
		return;
	}
	dial();
}

void
gw_redis_tick(void)
{
	if (rd.url[0] != '\0' && rd.ac == NULL && clock_mono_ms() >= rd.next_try)
		dial();
}

int
gw_redis_enabled(void)
{
	return rd.url[0] != '\0';
}

int
gw_redis_up(void)
{
	return rd.up && rd.ac != NULL;
}

void
gw_redis_fail(const char *why)
{
	went_down(why);
	if (rd.ac != NULL)
		redisAsyncFree(rd.ac);	/* pending callbacks get NULL */
}

/* ---- the script ------------------------------------------------------- */

struct call {
	gw_redis_fn *fn;
	void *arg;
	int argc;
	int retried;			/* NOSCRIPT: sent again with EVAL */
	const char *argv[64];
	size_t lens[64];
	char buf[2048];			/* argv's strings */
};

static void
on_eval(redisAsyncContext *ac, void *reply, void *priv)
{
	struct call *c = priv;
	const redisReply *rep = reply;

	if (rep != NULL && rep->type == REDIS_REPLY_ERROR && !c->retried &&
	    strncmp(rep->str, "NOSCRIPT", 8) == 0 && rd.ac == ac) {
		/* The server lost its script cache: send the text this once. */
		c->retried = 1;
		c->argv[0] = "EVAL";
		c->lens[0] = 4;
		c->argv[1] = lua_script;
		c->lens[1] = sizeof(lua_script) - 1;
		if (redisAsyncCommandArgv(ac, on_eval, c, c->argc, c->argv,
		    c->lens) == REDIS_OK)
			return;
		rep = NULL;
	}
	c->fn(rep, c->arg);
	free(c);
}

int
gw_redis_eval(int nkeys, const char **keys, int nargs, const long long *args,
    gw_redis_fn *fn, void *arg)
{
	struct call *c;
	size_t off = 0;
	int n;

	if (!gw_redis_up() || 3 + nkeys + nargs > 64)
		return -1;
	c = calloc(1, sizeof(*c));
	if (c == NULL)
		return -1;
	c->fn = fn;
	c->arg = arg;
	c->argv[0] = "EVALSHA";
	c->argv[1] = rd.sha;
	n = snprintf(c->buf, sizeof(c->buf), "%d", nkeys);
	c->argv[2] = c->buf;
	off = (size_t)n + 1;
	c->argc = 3;
	/* Copies: a NOSCRIPT retry sends them again later. */
	for (int i = 0; i < nkeys + nargs; i++) {
		if (i < nkeys)
			n = snprintf(c->buf + off, sizeof(c->buf) - off, "%s",
			    keys[i]);
		else
			n = snprintf(c->buf + off, sizeof(c->buf) - off, "%lld",
			    args[i - nkeys]);
		if (n < 0 || off + (size_t)n + 1 > sizeof(c->buf)) {
			free(c);
			return -1;
		}
		c->argv[c->argc++] = c->buf + off;
		off += (size_t)n + 1;
	}
	for (int i = 0; i < c->argc; i++)
		c->lens[i] = strlen(c->argv[i]);
	c->lens[1] = 40;
	if (redisAsyncCommandArgv(rd.ac, on_eval, c, c->argc, c->argv,
	    c->lens) != REDIS_OK) {
		free(c);
		return -1;
	}
	return 0;
}

void
gw_redis_incr(const char *key, const char *field, long long delta)
{
	if (gw_redis_up())
		(void)redisAsyncCommand(rd.ac, NULL, NULL, "HINCRBY %s %s %lld",
		    key, field, delta);
}
