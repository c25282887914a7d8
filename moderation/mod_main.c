/*
 * moderation/mod_main: the moderation process.  Owns its event loop — one
 * curl_multi_poll() over the service calls in flight, the master
 * connection, moderation.sock's listener and the gateways' connections —
 * and those gateway connections: each IPC_MOD_CHECK gets exactly one
 * IPC_MOD_VERDICT with the same request id, in whatever order the answers
 * come.  On stop it takes no new connections, lets the calls in flight end
 * until the drain deadline, then answers what is left by the fail rule.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include "moderation/mod.h"
#include "lib/clock.h"
#include "lib/log.h"

#define MOD_TICK_MS	1000

static struct msg_srv srv;

void
mod_reply(const struct mod_asker *who, const struct ipc_mod_verdict *v)
{
	struct msg_client *cl = msg_srv_find(&srv, who->slot, who->serial);

	if (cl == NULL) {
		log_msg(LOG_LVL_DEBUG, who->reqid, "moderation: the gateway "
		    "went away; verdict dropped");
		return;
	}
	/* Written by the loop once this turn's input is handled. */
	if (msg_srv_send(cl, IPC_MOD_VERDICT, who->reqid, v, sizeof(*v)) != 0)
		log_rwarn(who->reqid, "moderation: gateway queue full; verdict "
		    "dropped");
}

static int
on_check(struct msg_client *cl, const struct msg *m, char *err, size_t errlen)
{
	struct mod_asker who;

	who.slot = cl->slot;
	who.serial = cl->serial;
	who.reqid = m->hdr.reqid;
	mod_check(&who, (const char *)m->data, m->hdr.len);
	return 0;
}

static const msg_srv_fn mod_dispatch[IPC_TYPE_MAX] = {
	[IPC_MOD_CHECK] = on_check,
};

static const struct msg_srv_ops mod_srv_ops = {
	.name = "moderation.sock",
	.rules = &mod_server_rules,
	.dispatch = mod_dispatch,
	.max_clients = MOD_MAX_CLIENTS,
};

static void
describe(const struct hub_conf *cf)
{
	if (!cf->mod_enabled) {
		log_info("moderation is off");
		return;
	}
	log_info("moderation is on: %s, model %s, timeout %lld ms, fail_open "
	    "%s, cache %lld entries for %lld ms", cf->mod_url, cf->mod_model,
	    (long long)cf->mod_timeout_ms, cf->mod_fail_open ? "yes" : "no",
	    (long long)cf->mod_cache_size, (long long)cf->mod_cache_ttl_ms);
	if (cf->mod_ca_file[0] != '\0' && access(cf->mod_ca_file, R_OK) != 0)
		log_warn("[moderation] ca_file %s: %s; calls will fail",
		    cf->mod_ca_file, strerror(errno));
}

static void
mod_on_config(struct child_env *env, const struct hub_conf *old)
{
	const struct hub_conf *cf = &env->conf;

	if (old->mod_enabled != cf->mod_enabled ||
	    old->mod_fail_open != cf->mod_fail_open ||
	    old->mod_timeout_ms != cf->mod_timeout_ms)
		describe(cf);
}

static const struct child_ops mod_ops = { mod_on_config, NULL, NULL };

int
mod_main(struct child_env *env)
{
	struct pollfd pfd[MOD_POLL_MAX];
	struct msg_client *who[MOD_POLL_MAX];
	char err[256];

	if (msg_srv_init(&srv, &mod_srv_ops, env->fds.mod_sock, err,
	    sizeof(err)) != 0) {
		log_error("%s", err);
		return 1;
	}
	mod_check_init(&env->conf);
	child_ready(env);
	describe(&env->conf);

	for (;;) {
		int64_t now = clock_mono_ms();
		int timeout = MOD_TICK_MS;
		size_t n = 0, nsrv;

		if (child_check_term(env, &mod_ops) &&
		    (now >= env->stop_deadline_ms || mod_check_busy() == 0))
			break;
		if (env->stopping) {
			msg_srv_stop_accepting(&srv);
			if (env->stop_deadline_ms - now < timeout)
				timeout = (int)(env->stop_deadline_ms - now);
		}
		pfd[n].fd = env->master.fd;
		pfd[n].events = POLLIN | (msg_pending(&env->master) ? POLLOUT : 0);
		n++;
		nsrv = msg_srv_pollfds(&srv, pfd + n, who, MOD_POLL_MAX - n);
		n += nsrv;
		if (mod_check_poll(pfd, (unsigned)n, timeout) < 0)
			fatal("moderation: cannot wait for events");
		if (pfd[0].revents & (POLLIN | POLLHUP | POLLERR)) {
			if (child_master_input(env, &mod_ops) != 0) {
				log_info("master went away; exiting");
				break;
			}
		}
		if (pfd[0].revents & POLLOUT)
			child_master_flush(env);
		msg_srv_events(&srv, pfd + 1, who, nsrv);
		mod_check_run();
		msg_srv_flush(&srv);
		if (msg_pending(&env->master))
			child_master_flush(env);
	}
	if (mod_check_busy() > 0)
		log_warn("moderation: %zu service call(s) still in flight at "
		    "exit; answering them by the fail rule", mod_check_busy());
	mod_check_fini();
	msg_srv_flush(&srv);
	msg_srv_free(&srv);
	return 0;
}
