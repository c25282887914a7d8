/*
 * tunnel/tun_main: the tunnel process — owns every agent connection.
 */
#include <string.h>
#include "master/child_lws.h"
#include "lib/log.h"

static struct child_lws tun_loop;
static const struct child_ops tun_ops = { NULL, NULL, NULL };

int
tun_main(struct child_env *env)
{
	const struct lws_protocols protocols[] = {
		{ NULL, NULL, 0, 0, 0, NULL, 0 },
	};

	memset(&tun_loop, 0, sizeof(tun_loop));
	if (env->conf.tun_cert[0] == '\0') {
		log_warn("no [tunnel] cert/key configured: agents cannot connect");
		if (child_lws_init(&tun_loop, env, &tun_ops, protocols, -1,
		    NULL, NULL) != 0)
			return 1;
	} else if (child_lws_init(&tun_loop, env, &tun_ops, protocols,
	    env->fds.tun_listen, env->conf.tun_cert, env->conf.tun_key) != 0) {
		return CHILD_EXIT_CONFIG;
	}
	child_ready(env);
	child_lws_run(&tun_loop);
	child_lws_free(&tun_loop);
	return 0;
}
