/*
 * gateway/gw_main: a gateway worker — one of [gateway] workers processes
 * serving the user API on the shared listener in one libwebsockets loop.
 * Routes are a table in gw_route.c, stages a table in gw_stage.c.
 */
#include <string.h>
#include "gateway/gw.h"
#include "lib/log.h"

static struct child_lws gw_loop;

static void
gw_on_stop(struct child_env *env)
{
	child_lws_stop_accepting(&gw_loop);
}

static int
gw_busy(struct child_lws *cl)
{
	return gw_inflight() > 0 || gw_posts_pending() > 0;
}

static void
gw_tick(struct child_lws *cl)
{
	gw_req_tick();
	gw_token_tick();
	gw_relay_tick();
	gw_mod_tick();
	gw_limit_tick();
	gw_metrics_tick();
}

/* The end of every turn of the loop: the messages to the peers the turn
 * queued go out first (a post, a video job's opening), then its answers,
 * so that a user who reads an answer and asks again on another connection
 * (a video job's retrieve, on another worker) finds billing holding what
 * the answer followed from; then (turn_done) what the writes queued. */
static void
gw_after(struct child_lws *cl)
{
	(void)cl;
	child_peer_flush();
	gw_h1_flush();
}

static const struct child_ops gw_ops = {
	.on_config = NULL,
	.on_stop = gw_on_stop,
	.on_admin = NULL,
};

int
gw_main(struct child_env *env)
{
	const struct lws_protocols protocols[] = {
		gw_lws_protocol(),
		gw_h1_protocol(),
		child_peer_protocol(),
		gw_redis_protocol(),
		gw_tls_hello_protocol(),
		{ NULL, NULL, 0, 0, 0, NULL, 0 },
	};

	memset(&gw_loop, 0, sizeof(gw_loop));
	gw_loop.busy = gw_busy;
	gw_loop.tick_ms = 200;
	gw_loop.tick = gw_tick;
	gw_loop.after = gw_after;
	gw_set_env(env);
	/* Plain HTTP is served by our own HTTP/1.1 code (gw_h1.c); with a
	 * certificate, libwebsockets speaks TLS, HTTP/2 and 1.1. */
	if (env->conf.gw_cert[0] == '\0')
		gw_loop.raw_protocol = "swb-h1";
	else
		gw_loop.adopt = gw_tls_adopt;	/* h1 to gw_h1, h2 to lws */
	/* With a certificate the user API is TLS and offers HTTP/2. */
	if (child_lws_init(&gw_loop, env, &gw_ops, protocols,
	    env->fds.gw_listen, env->conf.gw_cert, env->conf.gw_key,
	    "h2,http/1.1") != 0)
		return env->conf.gw_cert[0] ? CHILD_EXIT_CONFIG : 1;
	if (env->conf.gw_cert[0] != '\0' && gw_tls_init(&gw_loop) != 0)
		return CHILD_EXIT_CONFIG;
	gw_token_init(gw_loop.vh);
	gw_relay_init(gw_loop.vh);
	gw_mod_init(gw_loop.vh);
	gw_limit_init(gw_loop.vh);
	child_ready(env);
	log_info("serving the user API");
	child_lws_run(&gw_loop);
	child_lws_free(&gw_loop);
	log_info("gateway worker stopped");
	return 0;
}
