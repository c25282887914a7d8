/*
 * master/admin: the admin Unix socket (mode 0600) that hubctl talks to.
 * One request per connection: an IPC_ADMIN_REQ carrying argv, answered by
 * one IPC_ADMIN_RESP carrying a JSON object ({"ok":true,...} or
 * {"ok":false,"error":"..."}).  Commands are a table: the master answers
 * its own (status, reload, stop) and forwards the rest to the child that
 * owns the data, relaying the answer back.  The socket is served by the
 * shared message server (lib/msgsrv): non-blocking, a client that breaks
 * the protocol is dropped, and when every slot is taken the client idle
 * longest makes room for a new one, so idle connections cannot lock
 * hubctl out.
 */
#include "master/master.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include "lib/log.h"
#include "master/admin_channels.h"

#define ADMIN_TIMEOUT_MS 15000

struct admin_cmd {
	const char *name;
	const char *target;	/* child kind that answers; NULL: the master */
	void (*fn)(struct master *m, struct admin_who w, int argc, char **argv);
};

static void cmd_status(struct master *, struct admin_who, int, char **);
static void cmd_reload(struct master *, struct admin_who, int, char **);
static void cmd_stop(struct master *, struct admin_who, int, char **);
static void cmd_channels(struct master *, struct admin_who, int, char **);

static const struct admin_cmd cmds[] = {
	{ "status",	NULL,		cmd_status },
	{ "reload",	NULL,		cmd_reload },
	{ "stop",	NULL,		cmd_stop },
	{ "channels",	NULL,		cmd_channels },
	{ "agent",	"billing",	NULL },
	{ "token",	"billing",	NULL },
	{ "price",	"billing",	NULL },
	{ "ledger",	"billing",	NULL },
	{ "disputes",	"billing",	NULL },
	{ "dispute",	"billing",	NULL },
	{ "usage",	"billing",	NULL },
	{ "admin-key",	"billing",	NULL },
	{ "agents",	"tunnel",	NULL },
	{ "kick",	"tunnel",	NULL },
	{ "send",	"tunnel",	NULL },
	{ "release",	"tunnel",	NULL },
};

/* One answer per connection; the client is closed once it is written. */
void
admin_reply_raw(struct master *m, struct admin_who w, const char *json,
    size_t len)
{
	struct msg_client *c = w.c;

	if (c == NULL) {
		admin_http_send(m, w.http, json, len);
		return;
	}
	m->fwd[c->slot].waiting = 0;
	if (msg_srv_send(c, IPC_ADMIN_RESP, 0, json, len) != 0) {
		msg_srv_drop(c, "reply of %zu bytes dropped", len);
		return;
	}
	msg_srv_close_after(c);
	msg_srv_output(&m->admin, c);
}

static void
reply_json(struct master *m, struct admin_who w, json_t *o)
{
	char *s = json_dumps(o, JSON_COMPACT);

	json_decref(o);
	if (s == NULL) {
		static const char oom[] = "{\"ok\":false,\"error\":\"out of memory\"}";
		admin_reply_raw(m, w, oom, sizeof(oom));
		return;
	}
	admin_reply_raw(m, w, s, strlen(s) + 1);
	free(s);
}

static void
reply_error(struct master *m, struct admin_who w, const char *msg)
{
	reply_json(m, w, json_pack("{s:b, s:s}", "ok", 0, "error", msg));
}

static struct admin_who
who_client(struct msg_client *c)
{
	struct admin_who w = { c, -1 };

	return w;
}

static int admin_req(struct msg_client *, const struct msg *, char *, size_t);
static int admin_busy(struct msg_client *c);
static void admin_closed(struct msg_client *c);

static const msg_srv_fn admin_dispatch[IPC_TYPE_MAX] = {
	[IPC_ADMIN_REQ] = admin_req,
};

/* hubctl sends its request as soon as it connects: a client silent for
 * ADMIN_TIMEOUT_MS is closed, and when all slots are taken the one idle
 * longest makes room. */
static struct msg_srv_ops admin_ops = {
	.name = "hubd.sock",
	.rules = &ipc_admin_server_rules,
	.dispatch = admin_dispatch,
	.max_clients = ADMIN_MAX_CLIENTS,
	.idle_ms = ADMIN_TIMEOUT_MS,
	.evict_idle = 1,
	.busy = admin_busy,
	.on_close = admin_closed,
};

int
admin_open(struct master *m, char *err, size_t errlen)
{
	struct sockaddr_un sun;
	mode_t old;
	int fd;

	if (hub_sock_path(&m->conf, "hubd.sock", m->admin_path,
	    sizeof(m->admin_path)) != 0) {
		snprintf(err, errlen, "[hub] run_dir is too long for a socket path");
		return -1;
	}
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	memcpy(sun.sun_path, m->admin_path, strlen(m->admin_path) + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0) {
		snprintf(err, errlen, "socket: %s", strerror(errno));
		return -1;
	}
	/* A live hubd answers on the socket: never steal it. */
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == 0) {
		snprintf(err, errlen, "another hubd is running on %s", m->admin_path);
		close(fd);
		return -1;
	}
	close(fd);
	unlink(m->admin_path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	old = umask(077);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sun, sizeof(sun)) != 0) {
		umask(old);
		snprintf(err, errlen, "admin socket %s: %s", m->admin_path,
		    strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	umask(old);
	chmod(m->admin_path, 0600);
	if (listen(fd, 16) != 0) {
		snprintf(err, errlen, "listen %s: %s", m->admin_path, strerror(errno));
		close(fd);
		return -1;
	}
	m->admin_fd = fd;
	admin_ops.arg = m;
	return msg_srv_init(&m->admin, &admin_ops, fd, err, errlen);
}

void
admin_close(struct master *m)
{
	msg_srv_free(&m->admin);
	if (m->admin_fd >= 0) {
		close(m->admin_fd);
		unlink(m->admin_path);
		m->admin_fd = -1;
	}
}

static int
admin_req(struct msg_client *c, const struct msg *msg, char *err, size_t errlen)
{
	struct master *m = c->srv->ops->arg;

	if (m->fwd[c->slot].waiting) {
		snprintf(err, errlen, "a second request on one connection");
		return -1;
	}
	admin_run(m, who_client(c), (char *)msg->data, msg->hdr.len);
	return 0;
}

void
admin_run(struct master *m, struct admin_who w, char *payload, uint32_t len)
{
	char *argv[32];
	int argc;
	char text[256];
	uint64_t id;
	pid_t target;

	if ((argc = ipc_admin_split(payload, len, argv, 32)) < 0) {
		reply_error(m, w, "malformed request");
		return;
	}
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
		if (strcmp(cmds[i].name, argv[0]) != 0)
			continue;
		if (cmds[i].target == NULL) {
			cmds[i].fn(m, w, argc, argv);
			return;
		}
		id = ++m->next_admin_id;
		if (proc_forward_admin(m, cmds[i].target, id, payload, len,
		    &target) != 0) {
			snprintf(text, sizeof(text), "the %s process is not running",
			    cmds[i].target);
			reply_error(m, w, text);
			return;
		}
		if (w.c != NULL) {
			struct admin_fwd *f = &m->fwd[w.c->slot];
			f->id = id;
			f->target = target;
			f->waiting = 1;
			f->deadline = clock_mono_ms() + ADMIN_TIMEOUT_MS;
		} else {
			struct admin_http *h = &m->http[w.http];
			h->state = AH_CMD;
			h->id = id;
			h->target = target;
			h->deadline = clock_mono_ms() + ADMIN_TIMEOUT_MS;
		}
		return;
	}
	snprintf(text, sizeof(text), "unknown command '%.64s'", argv[0]);
	reply_error(m, w, text);
}

static int
admin_busy(struct msg_client *c)
{
	struct master *m = c->srv->ops->arg;

	return m->fwd[c->slot].waiting;
}

static void
admin_closed(struct msg_client *c)
{
	struct master *m = c->srv->ops->arg;

	memset(&m->fwd[c->slot], 0, sizeof(m->fwd[c->slot]));
}

void
admin_child_reply(struct master *m, uint64_t id, const char *json, size_t len)
{
	for (int i = 0; i < ADMIN_MAX_CLIENTS; i++) {
		struct msg_client *c = &m->admin.cl[i];
		if (c->conn.fd >= 0 && m->fwd[i].waiting && m->fwd[i].id == id) {
			admin_reply_raw(m, who_client(c), json, len);
			return;
		}
	}
	if (admin_http_child_reply(m, id, json, len))
		return;
	log_debug("admin: answer %llu arrived after its client left",
	    (unsigned long long)id);
}

void
admin_child_gone(struct master *m, const struct proc *p)
{
	for (int i = 0; i < ADMIN_MAX_CLIENTS; i++) {
		struct msg_client *c = &m->admin.cl[i];
		if (c->conn.fd >= 0 && m->fwd[i].waiting &&
		    m->fwd[i].target == p->pid)
			reply_error(m, who_client(c),
			    "the process answering this command exited");
	}
	admin_http_child_gone(m, p);
}

void
admin_timeouts(struct master *m, int64_t now)
{
	for (int i = 0; i < ADMIN_MAX_CLIENTS; i++) {
		struct msg_client *c = &m->admin.cl[i];
		if (c->conn.fd >= 0 && m->fwd[i].waiting &&
		    now >= m->fwd[i].deadline)
			reply_error(m, who_client(c), "no answer in time");
	}
	admin_http_timeouts(m, now);
	msg_srv_tick(&m->admin, now);
}

static const char *
state_name(uint32_t s)
{
	static const char *const names[] = { "free", "running", "backoff",
		"failed", "stopped" };
	return s < 5 ? names[s] : "?";
}

static void
cmd_status(struct master *m, struct admin_who c, int argc, char **argv)
{
	json_t *o, *children = json_array();
	int64_t now = clock_wall_ms();

	for (uint32_t i = 0; i < m->nprocs; i++) {
		const struct proc *p = &m->procs[i];
		struct sb_proc s;
		sb_read_proc(&m->sb, p->slot, &s);
		/* The uid it reported once ready (after dropping root). */
		int known = p->pid != 0 && p->ready && p->uid >= 0;
		json_array_append_new(children, json_pack(
		    "{s:s, s:s, s:i, s:i, s:o, s:i, s:s, s:I, s:I}",
		    "name", p->name, "kind", p->kind->name,
		    "instance", (int)p->instance, "pid", (int)p->pid,
		    "uid", known ? json_integer(p->uid) : json_null(),
		    "restarts", (int)p->restarts, "state", state_name(s.state),
		    "uptime_s", (json_int_t)(p->pid ? (now - s.started_ms) / 1000 : 0),
		    "config_generation", (json_int_t)p->conf_gen));
	}
	o = json_pack("{s:b, s:i, s:i, s:s, s:I, s:I, s:s, s:b, s:{s:s, s:s, s:s}, s:o}",
	    "ok", 1, "pid", (int)getpid(), "uid", (int)getuid(),
	    "user", m->conf.user,
	    "uptime_s", (json_int_t)((clock_mono_ms() - m->started_mono) / 1000),
	    "config_generation", (json_int_t)m->gen,
	    "config_file", m->conf_path,
	    "draining", m->stopping,
	    "listen", "gateway", m->listen_gw, "tunnel", m->listen_tun,
	    "admin", m->listen_adm,
	    "children", children);
	reply_json(m, c, o);
}

static void
cmd_reload(struct master *m, struct admin_who c, int argc, char **argv)
{
	char err[512];

	if (master_reload(m, err, sizeof(err)) != 0) {
		reply_error(m, c, err);
		return;
	}
	reply_json(m, c, json_pack("{s:b, s:I}", "ok", 1, "config_generation",
	    (json_int_t)m->gen));
}

/* Channels up, their figures and router scores (admin_channels.c). */
static void
cmd_channels(struct master *m, struct admin_who c, int argc, char **argv)
{
	reply_json(m, c, admin_channels_json(&m->sb, &m->conf));
}

static void
cmd_stop(struct master *m, struct admin_who c, int argc, char **argv)
{
	reply_json(m, c, json_pack("{s:b, s:s}", "ok", 1, "message", "stopping"));
	master_begin_stop(m, "hubctl stop");
}
