/*
 * child/child: the child side of the master connection, shared by every
 * hub child process.
 */
#include "child/child.h"

#include <errno.h>
#include <jansson.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <grp.h>
#include <unistd.h>
#include <sys/prctl.h>
#include "lib/log.h"

/* master -> child */
static const struct msg_rule to_child[IPC_TYPE_MAX] = {
	[IPC_CONFIG] = { "config", sizeof(struct ipc_config), sizeof(struct ipc_config) },
	[IPC_STOP] = { "stop", sizeof(struct ipc_stop), sizeof(struct ipc_stop) },
	[IPC_ADMIN_REQ] = { "admin-req", 1, IPC_ADMIN_MAX },
	[IPC_ADMIN_HTTP_RESP] = { "admin-http-resp", 2, IPC_ADMIN_RESP_MAX },
};
/* child -> master */
static const struct msg_rule to_master[IPC_TYPE_MAX] = {
	[IPC_READY] = { "ready", sizeof(struct ipc_ready), sizeof(struct ipc_ready) },
	[IPC_CONFIG_ACK] = { "config-ack", sizeof(struct ipc_config_ack),
	    sizeof(struct ipc_config_ack) },
	[IPC_ADMIN_RESP] = { "admin-resp", 2, IPC_ADMIN_RESP_MAX },
	[IPC_ADMIN_HTTP] = { "admin-http", 2, IPC_ADMIN_MAX },
};

const struct msg_rules ipc_child_rules = {
	{ to_child, IPC_TYPE_MAX }, { to_master, IPC_TYPE_MAX } };
const struct msg_rules ipc_master_rules = {
	{ to_master, IPC_TYPE_MAX }, { to_child, IPC_TYPE_MAX } };

static volatile sig_atomic_t child_got_term;
static child_admin_http_fn admin_http_fn;

void
child_set_admin_http(child_admin_http_fn fn)
{
	admin_http_fn = fn;
}

static void
on_term(int sig)
{
	child_got_term = 1;
}

static void
begin_stop(struct child_env *env, const struct child_ops *ops, int64_t drain_ms)
{
	if (env->stopping)
		return;
	env->stopping = 1;
	env->stop_deadline_ms = clock_mono_ms() + drain_ms;
	log_info("stopping, draining for up to %lld ms", (long long)drain_ms);
	if (ops->on_stop != NULL)
		ops->on_stop(env);
}

int
child_check_term(struct child_env *env, const struct child_ops *ops)
{
	if (child_got_term)
		begin_stop(env, ops, env->conf.drain_timeout_ms);
	return env->stopping;
}

void
child_setup(struct child_env *env)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = SIG_DFL;
	sigaction(SIGHUP, &sa, NULL);
	sigaction(SIGCHLD, &sa, NULL);
	/* Children are told to stop by the master, not by a terminal's ^C. */
	sa.sa_handler = SIG_IGN;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGPIPE, &sa, NULL);
	/* SIGTERM (a service manager signalling the whole group, or the
	 * master's death below) drains like IPC_STOP; the handler sets a flag. */
	sa.sa_handler = on_term;
	sigaction(SIGTERM, &sa, NULL);
	/* If the master dies, so do we (nothing would restart us). */
	prctl(PR_SET_PDEATHSIG, SIGTERM, 0, 0, 0);
	if (getppid() == 1)
		_exit(0);
	log_set_level(env->conf.log_level);
	log_set_format(env->conf.log_format);
}

void
child_drop_privs(struct child_env *env)
{
	struct child_priv *pv = &env->priv;
	uid_t ru, eu, su;
	gid_t rg, eg, sg;

	if (!pv->drop || pv->dropped)
		return;
	if (setgroups(1, &pv->gid) != 0)
		fatal_status(CHILD_EXIT_CONFIG, "setgroups(%d): %s", (int)pv->gid,
		    strerror(errno));
	if (setresgid(pv->gid, pv->gid, pv->gid) != 0)
		fatal_status(CHILD_EXIT_CONFIG, "setresgid(%d): %s", (int)pv->gid,
		    strerror(errno));
	if (setresuid(pv->uid, pv->uid, pv->uid) != 0)
		fatal_status(CHILD_EXIT_CONFIG, "setresuid(%d): %s", (int)pv->uid,
		    strerror(errno));
	if (getresuid(&ru, &eu, &su) != 0 || ru != pv->uid || eu != pv->uid ||
	    su != pv->uid || getresgid(&rg, &eg, &sg) != 0 || rg != pv->gid ||
	    eg != pv->gid || sg != pv->gid)
		fatal_status(CHILD_EXIT_CONFIG, "privileges not dropped to uid "
		    "%d gid %d", (int)pv->uid, (int)pv->gid);
	if (pv->uid != 0 && (setuid(0) == 0 || seteuid(0) == 0))
		fatal_status(CHILD_EXIT_CONFIG, "root could be regained after "
		    "dropping to uid %d", (int)pv->uid);
	/* A change of credentials clears the parent-death signal. */
	prctl(PR_SET_PDEATHSIG, SIGTERM, 0, 0, 0);
	if (getppid() == 1)
		_exit(0);
	pv->dropped = 1;
	log_debug("running as uid %d gid %d", (int)pv->uid, (int)pv->gid);
}

void
child_ready(struct child_env *env)
{
	struct ipc_ready r;

	child_drop_privs(env);
	r.instance = env->instance;
	r.pid = (int32_t)getpid();
	r.uid = (int32_t)getuid();
	r.gid = (int32_t)getgid();

	if (msg_enqueue(&env->master, IPC_READY, 0, &r, sizeof(r)) != 0)
		fatal("cannot queue ready message");
	child_master_flush(env);
}

void
child_master_flush(struct child_env *env)
{
	if (msg_flush(&env->master) < 0 && errno != EPIPE)
		log_warn("master connection: %s", strerror(errno));
}

void
child_admin_reply(struct child_env *env, uint64_t id, const char *json)
{
	if (msg_enqueue(&env->master, IPC_ADMIN_RESP, id, json, strlen(json) + 1) != 0)
		log_warn("admin reply of %zu bytes dropped", strlen(json));
	child_master_flush(env);
}

void
child_admin_error(struct child_env *env, uint64_t id, const char *fmt, ...)
{
	char buf[1024];
	va_list ap;
	json_t *o;
	char *s;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	o = json_pack("{s:b, s:s}", "ok", 0, "error", buf);
	s = json_dumps(o, JSON_COMPACT);
	child_admin_reply(env, id, s ? s : "{\"ok\":false}");
	free(s);
	json_decref(o);
}

static void
apply_config(struct child_env *env, const struct ipc_config *c,
    const struct child_ops *ops)
{
	struct hub_conf old = env->conf;
	struct ipc_config_ack ack = { c->gen };

	env->conf = c->conf;
	env->conf_gen = c->gen;
	log_set_level(env->conf.log_level);
	log_set_format(env->conf.log_format);
	if (ops->on_config != NULL)
		ops->on_config(env, &old);
	log_info("configuration generation %llu applied",
	    (unsigned long long)c->gen);
	if (msg_enqueue(&env->master, IPC_CONFIG_ACK, 0, &ack, sizeof(ack)) != 0)
		log_warn("cannot queue the config ack for the master");
}

int
child_master_input(struct child_env *env, const struct child_ops *ops)
{
	struct msg m;
	char err[256];
	int rc;

	for (;;) {
		rc = msg_fill(&env->master);
		if (rc == 0 || rc == -1)
			return -1;	/* master gone */
		if (rc == -2 || env->master.drained)
			break;
	}
	while ((rc = msg_next(&env->master, &m, err, sizeof(err))) == 1) {
		switch (m.hdr.type) {
		case IPC_CONFIG: {
			struct ipc_config c;
			memcpy(&c, m.data, sizeof(c));
			apply_config(env, &c, ops);
			break;
		}
		case IPC_STOP: {
			struct ipc_stop s;
			memcpy(&s, m.data, sizeof(s));
			begin_stop(env, ops, s.drain_ms);
			break;
		}
		case IPC_ADMIN_REQ: {
			char *argv[32];
			int argc = ipc_admin_split((char *)m.data, m.hdr.len, argv, 32);
			if (argc < 0) {
				child_admin_error(env, m.hdr.reqid,
				    "malformed admin request");
				break;
			}
			if (ops->on_admin != NULL)
				ops->on_admin(env, m.hdr.reqid, argc, argv);
			else
				child_admin_error(env, m.hdr.reqid,
				    "%s has no admin commands", env->kind);
			break;
		}
		case IPC_ADMIN_HTTP_RESP:
			if (admin_http_fn != NULL) {
				admin_http_fn(env, m.hdr.reqid,
				    (const char *)m.data, m.hdr.len);
				break;
			}
			/* FALLTHROUGH */
		default:
			/* The rules let only the types above through. */
			snprintf(err, sizeof(err), "unexpected %s message",
			    msg_type_name(&ipc_child_rules, m.hdr.type));
			rc = -1;
			break;
		}
		if (rc < 0)
			break;
	}
	if (rc < 0) {
		/* Dropped like any peer that breaks the protocol; without
		 * its master a child has nothing to do but exit. */
		log_error("protocol violation by the master: %s; closing the "
		    "master connection", err);
		return -1;
	}
	child_master_flush(env);
	return 0;
}

#define LOOP_SRV_MAX 256	/* pollfds of a loop's message server */

int
child_poll_loop(struct child_env *env, struct child_loop *loop)
{
	struct pollfd pfd[1 + 128 + LOOP_SRV_MAX];
	struct msg_client *who[LOOP_SRV_MAX];
	int64_t next_tick = clock_mono_ms() + loop->tick_ms;

	for (;;) {
		int n = 0, rc, timeout, nfd, srv_at;
		size_t nsrv = 0;
		int64_t now = clock_mono_ms();

		if (child_check_term(env, loop->ops) && (now >= env->stop_deadline_ms ||
		    loop->busy == NULL || !loop->busy(env, loop->arg)))
			return 0;
		loop->wake_ms = 0;
		if (loop->prepare != NULL)
			loop->prepare(env, loop->arg);
		pfd[n].fd = env->master.fd;
		pfd[n].events = POLLIN | (msg_pending(&env->master) ? POLLOUT : 0);
		n++;
		for (int i = 0; i < loop->nfds && i < 128; i++) {
			pfd[n].fd = loop->fds[i];
			pfd[n].events = POLLIN | (loop->want_out[i] ? POLLOUT : 0);
			n++;
		}
		nfd = n;
		srv_at = n;
		if (loop->srv != NULL)
			nsrv = msg_srv_pollfds(loop->srv, pfd + n, who, LOOP_SRV_MAX);
		n += (int)nsrv;
		timeout = (int)(next_tick - now);
		if (loop->wake_ms > 0 && loop->wake_ms < next_tick)
			timeout = (int)(loop->wake_ms - now);
		if (timeout < 0)
			timeout = 0;
		rc = poll(pfd, (nfds_t)n, timeout);
		if (rc < 0 && errno != EINTR)
			fatal("poll: %s", strerror(errno));
		if (rc > 0 && (pfd[0].revents & (POLLIN | POLLHUP | POLLERR)))
			if (child_master_input(env, loop->ops) != 0) {
				log_info("master went away; exiting");
				return 0;
			}
		if (rc > 0 && (pfd[0].revents & POLLOUT))
			child_master_flush(env);
		for (int i = 1; rc > 0 && i < nfd; i++)
			if (pfd[i].revents != 0 && loop->on_fd != NULL)
				loop->on_fd(env, pfd[i].fd, pfd[i].revents, loop->arg);
		if (rc > 0 && nsrv > 0)
			msg_srv_events(loop->srv, pfd + srv_at, who, nsrv);
		if (clock_mono_ms() >= next_tick) {
			if (loop->tick != NULL)
				loop->tick(env, loop->arg);
			if (loop->srv != NULL)
				msg_srv_tick(loop->srv, clock_mono_ms());
			next_tick = clock_mono_ms() + loop->tick_ms;
		}
		/* Answers and pushes queued outside a client's own input. */
		if (loop->srv != NULL)
			msg_srv_flush(loop->srv);
		if (env->stopping && (loop->busy == NULL || !loop->busy(env, loop->arg)))
			return 0;
	}
}
