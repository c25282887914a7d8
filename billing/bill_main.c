/*
 * billing/bill_main: the billing process — the only process that opens the
 * store.  It answers admin commands forwarded by the master (agent registry)
 * and, over billing.sock, the other children's queries.
 */
#include <string.h>
#include "master/child.h"
#include "lib/log.h"

static const struct child_ops bill_ops = { NULL, NULL, NULL };

int
bill_main(struct child_env *env)
{
	struct child_loop loop;

	memset(&loop, 0, sizeof(loop));
	loop.ops = &bill_ops;
	loop.tick_ms = 1000;
	child_ready(env);
	log_info("billing ready");
	return child_poll_loop(env, &loop);
}
