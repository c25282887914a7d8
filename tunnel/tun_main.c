/*
 * tunnel/tun_main: the tunnel process — owns every agent connection on
 * the TLS WebSocket listener ([tunnel] listen, path /tunnel/connect).
 */
#include <malloc.h>
#include <string.h>
#include <sodium.h>
#include "child/child_peer.h"
#include "tunnel/tun.h"
#include "lib/clock.h"
#include "lib/log.h"

#define TUN_TRIM_AFTER_MS	3000	/* quiet time before malloc_trim */

static struct child_lws tun_loop;
struct child_env *tun_env;

static void
tun_on_stop(struct child_env *env)
{
	/* Agents stay connected while their streams drain (tick). */
	child_lws_stop_accepting(&tun_loop);
}

static int
tun_busy(struct child_lws *cl)
{
	return tun_nconns > 0 || tun_relay_busy();
}

static void
tun_after(struct child_lws *cl)
{
	(void)cl;
	tun_conn_flush();	/* to the agents */
	tun_relay_flush();	/* to the gateways */
}

/*
 * A burst of TLS handshakes (every agent reconnecting after a restart)
 * leaves the heap at its peak, freed but kept by malloc.  A few seconds
 * after the connection count last changed, give it back: an idle agent
 * then costs the tunnel what its connection holds, not its handshake.
 */
static void
trim_after_churn(void)
{
	static unsigned seen;
	static int64_t changed_ms;
	static int pending;
	int64_t now = clock_mono_ms();

	if (tun_nconns != seen) {
		seen = tun_nconns;
		changed_ms = now;
		pending = 1;
	} else if (pending && now - changed_ms >= TUN_TRIM_AFTER_MS) {
		pending = 0;
		(void)malloc_trim(0);
	}
}

static void
tun_on_tick(struct child_lws *cl)
{
	tun_tick();
	trim_after_churn();
	tun_bill_tick();
	if (tun_env->stopping && !tun_relay_busy())
		tun_stop_all("hub stopping");
}

static const struct child_ops tun_ops = { NULL, tun_on_stop, tun_admin };

int
tun_main(struct child_env *env)
{
	const struct lws_protocols protocols[] = {
		tun_protocol(),
		child_peer_protocol(),
		tun_gw_protocol(),
		{ NULL, NULL, 0, 0, 0, NULL, 0 },
	};

	tun_env = env;
	if (sodium_init() < 0) {
		log_error("libsodium failed to initialise");
		return 1;
	}
	memset(&tun_loop, 0, sizeof(tun_loop));
	tun_loop.tick_ms = 100;
	tun_loop.tick = tun_on_tick;
	tun_loop.busy = tun_busy;
	tun_loop.after = tun_after;
	if (env->conf.tun_cert[0] == '\0') {
		log_warn("no [tunnel] cert/key configured: agents cannot connect");
		if (child_lws_init(&tun_loop, env, &tun_ops, protocols, -1,
		    NULL, NULL, NULL) != 0)
			return 1;
	} else if (child_lws_init(&tun_loop, env, &tun_ops, protocols,
	    env->fds.tun_listen, env->conf.tun_cert, env->conf.tun_key,
	    "http/1.1") != 0) {
		return CHILD_EXIT_CONFIG;
	}
	tun_bill_init(tun_loop.vh);
	tun_relay_init(tun_loop.vh);
	child_ready(env);
	if (env->conf.tun_cert[0] != '\0')
		log_info("accepting agents on %s", TUN_PATH);
	child_lws_run(&tun_loop);
	tun_relay_free();
	child_lws_free(&tun_loop);
	return 0;
}
