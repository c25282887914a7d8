/*
 * moderation/mod_main: the moderation process.  It holds the verdict cache
 * and calls the configured moderation service for the gateways; while
 * moderation is off it only serves the master connection.
 */
#include <string.h>
#include "master/child.h"
#include "lib/log.h"

static const struct child_ops mod_ops = { NULL, NULL, NULL };

int
mod_main(struct child_env *env)
{
	struct child_loop loop;

	memset(&loop, 0, sizeof(loop));
	loop.ops = &mod_ops;
	loop.tick_ms = 1000;
	child_ready(env);
	return child_poll_loop(env, &loop);
}
