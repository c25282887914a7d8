/*
 * master/proc: the table of child processes and their supervision —
 * spawning, reaping, restart back-off, crash-loop detection, config
 * broadcast and stop.
 */
#include "master/master.h"

#include <errno.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include "lib/log.h"

#define RESTART_FIRST_MS	100	/* first restart well within 1 s */
#define RESTART_STABLE_MS	10000	/* alive this long: streak resets */
#define CRASH_LOOP_STREAK	5	/* this many quick crashes: a loop */

static uint32_t
count_gateway(const struct hub_conf *cf)
{
	return (uint32_t)cf->gw_workers;
}

/* The admin HTTP API's child exists only with [admin] listen. */
static uint32_t
count_admin(const struct hub_conf *cf)
{
	return cf->adm_listen[0] != '\0' ? 1 : 0;
}

/* Every child hubd runs, and the master's sockets it keeps (child.h has
 * the table in words).  A new process kind is one line here. */
const struct child_kind child_kinds[] = {
	{ "gateway",	gw_main,	count_gateway,	CHILD_FD_GW_LISTEN },
	{ "tunnel",	tun_main,	NULL,	CHILD_FD_TUN_LISTEN | CHILD_FD_TUN_SOCK },
	{ "billing",	bill_main,	NULL,	CHILD_FD_BILL_SOCK },
	{ "moderation",	mod_main,	NULL,	CHILD_FD_MOD_SOCK },
	/* Least privilege: the admin API faces the network, so it is a child
	 * as [hub] user holding only its listener; it forwards each request
	 * to the master, which checks the key with billing first. */
	{ "admin",	adm_main,	count_admin,	CHILD_FD_ADM_LISTEN },
};
const size_t nchild_kinds = sizeof(child_kinds) / sizeof(child_kinds[0]);

static void
sb_proc_update(struct master *m, struct proc *p, uint32_t state, int status)
{
	struct sb_proc *s = sb_proc(&m->sb, p->slot);

	sb_write_begin(&s->seq);
	s->state = state;
	snprintf(s->name, sizeof(s->name), "%s", p->kind->name);
	s->instance = p->instance;
	s->pid = (int32_t)p->pid;
	s->restarts = p->restarts;
	if (state == SB_PROC_RUNNING)
		s->started_ms = clock_wall_ms();
	else
		s->last_status = status;
	sb_write_end(&s->seq);
}

void
proc_init_table(struct master *m)
{
	m->nprocs = 0;
	for (size_t k = 0; k < nchild_kinds; k++) {
		const struct child_kind *ck = &child_kinds[k];
		uint32_t n = ck->count ? ck->count(&m->conf) : 1;
		for (uint32_t i = 0; i < n; i++) {
			struct proc *p = &m->procs[m->nprocs];
			if (m->nprocs == SB_MAX_PROCS)
				fatal("too many child processes (at most %d)", SB_MAX_PROCS);
			memset(p, 0, sizeof(*p));
			p->kind = ck;
			p->instance = i;
			p->slot = m->nprocs++;
			p->conn.fd = -1;
			if (n > 1)
				snprintf(p->name, sizeof(p->name), "%s#%u", ck->name, i);
			else
				snprintf(p->name, sizeof(p->name), "%s", ck->name);
		}
	}
}

/* Close the listeners and sockets of struct child_fds a kind does not use. */
static void
keep_fds(struct child_fds *f, unsigned keep)
{
	static const struct { unsigned bit; size_t off; } fds[] = {
		{ CHILD_FD_GW_LISTEN, offsetof(struct child_fds, gw_listen) },
		{ CHILD_FD_TUN_LISTEN, offsetof(struct child_fds, tun_listen) },
		{ CHILD_FD_TUN_SOCK, offsetof(struct child_fds, tun_sock) },
		{ CHILD_FD_BILL_SOCK, offsetof(struct child_fds, bill_sock) },
		{ CHILD_FD_MOD_SOCK, offsetof(struct child_fds, mod_sock) },
		{ CHILD_FD_ADM_LISTEN, offsetof(struct child_fds, adm_listen) },
	};
	_Static_assert(sizeof(fds) / sizeof(fds[0]) * sizeof(int) ==
	    sizeof(struct child_fds), "every child fd is in the table");

	for (size_t i = 0; i < sizeof(fds) / sizeof(fds[0]); i++) {
		int *fd = (int *)((char *)f + fds[i].off);
		if ((keep & fds[i].bit) || *fd < 0)
			continue;
		close(*fd);
		*fd = -1;
	}
}

static _Noreturn void
child_start(struct master *m, struct proc *p, int fd)
{
	struct child_env env;
	int rc;

	/* Drop what belongs to the master and to the other children. */
	for (uint32_t i = 0; i < m->nprocs; i++)
		if (m->procs[i].conn.fd >= 0 && &m->procs[i] != p)
			close(m->procs[i].conn.fd);
	for (int i = 0; i < ADMIN_MAX_CLIENTS; i++)
		if (m->admin.cl != NULL && m->admin.cl[i].conn.fd >= 0)
			close(m->admin.cl[i].conn.fd);
	if (m->admin_fd >= 0)
		close(m->admin_fd);
	close(m->sigpipe[0]);
	close(m->sigpipe[1]);

	memset(&env, 0, sizeof(env));
	env.kind = p->kind->name;
	env.instance = p->instance;
	env.sb = m->sb;
	env.conf = m->conf;
	env.conf_gen = m->gen;
	env.fds = m->fds;
	keep_fds(&env.fds, p->kind->fds);
	env.priv = m->priv;
	msg_conn_init(&env.master, fd, &ipc_child_rules);
	log_setproc(p->name);
	child_setup(&env);
	rc = p->kind->main(&env);
	child_master_flush(&env);
	exit(rc);
}

void
proc_spawn(struct master *m, struct proc *p)
{
	int sv[2];
	pid_t pid;

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
		log_error("socketpair for %s: %s; retrying", p->name, strerror(errno));
		p->respawn_at = clock_mono_ms() + 1000;
		return;
	}
	pid = fork();
	if (pid < 0) {
		log_error("fork %s: %s; retrying", p->name, strerror(errno));
		close(sv[0]);
		close(sv[1]);
		p->respawn_at = clock_mono_ms() + 1000;
		return;
	}
	if (pid == 0) {
		close(sv[0]);
		child_start(m, p, sv[1]);
	}
	close(sv[1]);
	fcntl(sv[0], F_SETFL, O_NONBLOCK);
	msg_conn_init(&p->conn, sv[0], &ipc_master_rules);
	p->pid = pid;
	p->ready = 0;
	p->uid = p->gid = -1;
	p->respawn_at = 0;
	p->started_mono = clock_mono_ms();
	p->conf_gen = m->gen;		/* inherited at fork */
	sb_proc_update(m, p, SB_PROC_RUNNING, 0);
	log_info("started %s (pid %d)", p->name, (int)pid);
}

static void
describe_status(int status, char *buf, size_t len)
{
	if (WIFEXITED(status))
		snprintf(buf, len, "exited with status %d", WEXITSTATUS(status));
	else if (WIFSIGNALED(status))
		snprintf(buf, len, "killed by signal %d (%s)%s", WTERMSIG(status),
		    strsignal(WTERMSIG(status)),
		    WCOREDUMP(status) ? ", core dumped" : "");
	else
		snprintf(buf, len, "ended with wait status 0x%x", status);
}

static void
proc_exited(struct master *m, struct proc *p, int status)
{
	char how[128];
	int64_t now = clock_mono_ms(), delay;
	unsigned cleared;

	describe_status(status, how, sizeof(how));
	cleared = sb_clear_owner(&m->sb, p->pid);
	admin_child_gone(m, p);
	if (p->conn.fd >= 0)
		close(p->conn.fd);
	msg_conn_free(&p->conn);
	if (m->stopping) {
		log_info("%s (pid %d) %s", p->name, (int)p->pid, how);
		p->pid = 0;
		sb_proc_update(m, p, SB_PROC_STOPPED, status);
		return;
	}
	if (cleared > 0)
		log_warn("%s (pid %d) %s; cleared %u agent slot(s) it owned",
		    p->name, (int)p->pid, how, cleared);
	if (WIFEXITED(status) && WEXITSTATUS(status) == CHILD_EXIT_CONFIG) {
		log_error("%s (pid %d) %s: its configuration cannot work; not "
		    "restarting it (fix the INI, then reload or restart hubd)",
		    p->name, (int)p->pid, how);
		p->pid = 0;
		p->failed = 1;
		sb_proc_update(m, p, SB_PROC_FAILED, status);
		return;
	}
	if (now - p->started_mono >= RESTART_STABLE_MS)
		p->streak = 0;
	delay = clock_backoff_ms(RESTART_FIRST_MS, m->conf.restart_backoff_max_ms,
	    p->streak);
	p->streak++;
	if (p->streak == CRASH_LOOP_STREAK)
		log_error("crash loop: %s crashed %d times in a row, each within "
		    "%d s of starting; restarts now back off up to %lld ms",
		    p->name, CRASH_LOOP_STREAK, RESTART_STABLE_MS / 1000,
		    (long long)m->conf.restart_backoff_max_ms);
	log_warn("%s (pid %d) %s; restarting in %lld ms", p->name, (int)p->pid,
	    how, (long long)delay);
	p->pid = 0;
	p->restarts++;
	p->respawn_at = now + delay;
	sb_proc_update(m, p, SB_PROC_BACKOFF, status);
}

void
proc_reap(struct master *m)
{
	pid_t pid;
	int status;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		int found = 0;
		for (uint32_t i = 0; i < m->nprocs; i++) {
			if (m->procs[i].pid == pid) {
				proc_exited(m, &m->procs[i], status);
				found = 1;
				break;
			}
		}
		if (!found)
			log_debug("reaped unknown pid %d", (int)pid);
	}
}

void
proc_respawn_due(struct master *m, int64_t now)
{
	if (m->stopping)
		return;
	for (uint32_t i = 0; i < m->nprocs; i++) {
		struct proc *p = &m->procs[i];
		if (p->pid == 0 && !p->failed && p->respawn_at != 0 &&
		    p->respawn_at <= now)
			proc_spawn(m, p);
	}
}

int64_t
proc_next_event(const struct master *m)
{
	int64_t next = 0;

	for (uint32_t i = 0; i < m->nprocs; i++) {
		const struct proc *p = &m->procs[i];
		if (p->pid == 0 && p->respawn_at != 0 &&
		    (next == 0 || p->respawn_at < next))
			next = p->respawn_at;
	}
	return next;
}

static void
proc_send(struct master *m, struct proc *p, uint16_t type, uint64_t id,
    const void *data, size_t len)
{
	if (p->pid == 0 || p->conn.fd < 0)
		return;
	if (msg_enqueue(&p->conn, type, id, data, len) != 0) {
		log_warn("%s: message queue full; dropping %s", p->name,
		    msg_type_name(&ipc_master_rules, type));
		return;
	}
	if (msg_flush(&p->conn) < 0)
		log_warn("%s: write: %s", p->name, strerror(errno));
}

void
proc_input(struct master *m, struct proc *p)
{
	struct msg msg;
	char err[256];
	int rc;

	for (;;) {
		rc = msg_fill(&p->conn);
		if (rc == -2)
			break;
		if (rc <= 0)
			return;		/* EOF: the exit is handled by reaping */
	}
	while ((rc = msg_next(&p->conn, &msg, err, sizeof(err))) == 1) {
		switch (msg.hdr.type) {
		case IPC_READY: {
			struct ipc_ready r;
			memcpy(&r, msg.data, sizeof(r));
			p->ready = 1;
			p->uid = r.uid;
			p->gid = r.gid;
			log_debug("%s is ready (uid %d)", p->name, (int)r.uid);
			break;
		}
		case IPC_CONFIG_ACK: {
			struct ipc_config_ack a;
			memcpy(&a, msg.data, sizeof(a));
			p->conf_gen = a.gen;
			break;
		}
		case IPC_ADMIN_RESP:
			admin_child_reply(m, msg.hdr.reqid, (const char *)msg.data,
			    msg.hdr.len);
			break;
		case IPC_ADMIN_HTTP:
			admin_http_req(m, p, msg.hdr.reqid, (const char *)msg.data,
			    msg.hdr.len);
			break;
		default:
			snprintf(err, sizeof(err), "unexpected %s message",
			    msg_type_name(&ipc_master_rules, msg.hdr.type));
			goto bad;
		}
	}
	if (rc == 0)
		return;
bad:
	/* Our own child broke the protocol: it cannot be trusted further. */
	log_error("%s (pid %d): protocol violation: %s; killing it", p->name,
	    (int)p->pid, err);
	kill(p->pid, SIGKILL);
}

void
proc_broadcast_config(struct master *m)
{
	struct ipc_config *c = calloc(1, sizeof(*c));

	if (c == NULL)
		fatal("out of memory");
	c->gen = m->gen;
	c->conf = m->conf;
	for (uint32_t i = 0; i < m->nprocs; i++)
		proc_send(m, &m->procs[i], IPC_CONFIG, 0, c, sizeof(*c));
	free(c);
}

void
proc_stop_all(struct master *m)
{
	struct ipc_stop s = { m->conf.drain_timeout_ms };

	for (uint32_t i = 0; i < m->nprocs; i++) {
		m->procs[i].respawn_at = 0;
		proc_send(m, &m->procs[i], IPC_STOP, 0, &s, sizeof(s));
	}
}

int
proc_running(const struct master *m)
{
	int n = 0;

	for (uint32_t i = 0; i < m->nprocs; i++)
		if (m->procs[i].pid != 0)
			n++;
	return n;
}

void
proc_kill_all(struct master *m, int sig)
{
	for (uint32_t i = 0; i < m->nprocs; i++)
		if (m->procs[i].pid != 0)
			kill(m->procs[i].pid, sig);
}

int
proc_forward_admin(struct master *m, const char *kind, uint64_t id,
    const void *req, size_t len, pid_t *target)
{
	for (uint32_t i = 0; i < m->nprocs; i++) {
		struct proc *p = &m->procs[i];
		if (strcmp(p->kind->name, kind) != 0 || p->pid == 0)
			continue;
		if (msg_enqueue(&p->conn, IPC_ADMIN_REQ, id, req, len) != 0)
			return -1;
		(void)msg_flush(&p->conn);
		*target = p->pid;
		return 0;
	}
	return -1;
}
