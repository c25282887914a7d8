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

struct mod_client {
	struct msg_conn c;
	uint32_t serial;	/* tells a reused slot from the asker's */
};

static struct mod_client clients[MOD_MAX_CLIENTS];
static uint32_t next_serial = 1;

void
mod_reply(const struct mod_asker *who, const struct ipc_mod_verdict *v)
{
	struct mod_client *cl;

	if (who->slot >= MOD_MAX_CLIENTS)
		return;
	cl = &clients[who->slot];
	if (cl->c.fd < 0 || cl->serial != who->serial) {
		log_msg(LOG_LVL_DEBUG, who->reqid, "moderation: the gateway "
		    "went away; verdict dropped");
		return;
	}
	/* Written by the loop once this turn's input is handled. */
	if (msg_enqueue(&cl->c, IPC_MOD_VERDICT, who->reqid, v, sizeof(*v)) != 0)
		log_rwarn(who->reqid, "moderation: gateway queue full; verdict "
		    "dropped");
}

static void
client_close(struct mod_client *cl)
{
	close(cl->c.fd);
	msg_conn_free(&cl->c);
	cl->c.fd = -1;
}

static void
client_input(struct mod_client *cl, uint32_t slot)
{
	struct mod_asker who;
	struct msg m;
	char err[256];
	int rc;

	for (;;) {
		rc = msg_fill(&cl->c);
		if (rc == -2)
			break;
		if (rc <= 0) {
			client_close(cl);
			return;
		}
	}
	while ((rc = msg_next(&cl->c, &m, err, sizeof(err))) == 1) {
		if (m.hdr.type != IPC_MOD_CHECK)
			fatal("moderation: a gateway sent %s",
			    msg_type_name(&mod_rules, m.hdr.type));
		who.slot = slot;
		who.serial = cl->serial;
		who.reqid = m.hdr.reqid;
		mod_check(&who, (const char *)m.data, m.hdr.len);
	}
	if (rc < 0)
		fatal("moderation: protocol violation by a gateway: %s", err);
}

static void
accept_clients(struct child_env *env)
{
	for (;;) {
		int fd = accept4(env->fds.mod_sock, NULL, NULL,
		    SOCK_CLOEXEC | SOCK_NONBLOCK);
		int placed = 0;

		if (fd < 0) {
			if (errno != EAGAIN && errno != EWOULDBLOCK &&
			    errno != EINTR && errno != ECONNABORTED)
				log_warn("moderation.sock accept: %s", strerror(errno));
			return;
		}
		for (uint32_t i = 0; i < MOD_MAX_CLIENTS && !placed; i++)
			if (clients[i].c.fd < 0) {
				msg_conn_init(&clients[i].c, fd, &mod_rules);
				clients[i].serial = next_serial++;
				placed = 1;
			}
		if (!placed) {
			log_warn("too many moderation clients");
			close(fd);
		}
	}
}

static void
flush_clients(void)
{
	for (uint32_t i = 0; i < MOD_MAX_CLIENTS; i++)
		if (clients[i].c.fd >= 0 && msg_pending(&clients[i].c) &&
		    msg_flush(&clients[i].c) < 0)
			client_close(&clients[i]);
}

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
	uint32_t slot_of[MOD_POLL_MAX];

	for (uint32_t i = 0; i < MOD_MAX_CLIENTS; i++)
		clients[i].c.fd = -1;
	mod_check_init(&env->conf);
	child_ready(env);
	describe(&env->conf);

	for (;;) {
		int64_t now = clock_mono_ms();
		int timeout = MOD_TICK_MS, rc;
		unsigned n = 0, first_client;
		int listen_at = -1;

		if (child_check_term(env, &mod_ops) &&
		    (now >= env->stop_deadline_ms || mod_check_busy() == 0))
			break;
		if (env->stopping && env->stop_deadline_ms - now < timeout)
			timeout = (int)(env->stop_deadline_ms - now);
		pfd[n].fd = env->master.fd;
		pfd[n].events = POLLIN | (msg_pending(&env->master) ? POLLOUT : 0);
		n++;
		if (!env->stopping) {
			listen_at = (int)n;
			pfd[n].fd = env->fds.mod_sock;
			pfd[n].events = POLLIN;
			n++;
		}
		first_client = n;
		for (uint32_t i = 0; i < MOD_MAX_CLIENTS; i++) {
			if (clients[i].c.fd < 0)
				continue;
			/* POLLIN always: a peer's hang-up shows as readable. */
			pfd[n].fd = clients[i].c.fd;
			pfd[n].events = POLLIN |
			    (msg_pending(&clients[i].c) ? POLLOUT : 0);
			slot_of[n] = i;
			n++;
		}
		if ((rc = mod_check_poll(pfd, n, timeout)) < 0)
			fatal("moderation: cannot wait for events");
		if (pfd[0].revents & POLLIN) {
			if (child_master_input(env, &mod_ops) != 0) {
				log_info("master went away; exiting");
				break;
			}
		}
		if (pfd[0].revents & POLLOUT)
			child_master_flush(env);
		if (listen_at >= 0 && (pfd[listen_at].revents & POLLIN))
			accept_clients(env);
		for (unsigned i = first_client; i < n; i++) {
			struct mod_client *cl = &clients[slot_of[i]];
			if ((pfd[i].revents & POLLIN) && cl->c.fd == pfd[i].fd)
				client_input(cl, slot_of[i]);
		}
		mod_check_run();
		flush_clients();
		if (msg_pending(&env->master))
			child_master_flush(env);
	}
	if (mod_check_busy() > 0)
		log_warn("moderation: %zu service call(s) still in flight at "
		    "exit; answering them by the fail rule", mod_check_busy());
	mod_check_fini();
	flush_clients();
	for (uint32_t i = 0; i < MOD_MAX_CLIENTS; i++)
		if (clients[i].c.fd >= 0)
			client_close(&clients[i]);
	return 0;
}
