/*
 * master/admin: the admin Unix socket (mode 0600) that hubctl talks to.
 * One request per connection: an IPC_ADMIN_REQ carrying argv, answered by
 * one IPC_ADMIN_RESP carrying a JSON object ({"ok":true,...} or
 * {"ok":false,"error":"..."}).  Commands are a table: the master answers
 * its own (status, reload, stop) and forwards the rest to the child that
 * owns the data, relaying the answer back.
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
	void (*fn)(struct master *m, struct admin_client *c, int argc, char **argv);
};

static void cmd_status(struct master *, struct admin_client *, int, char **);
static void cmd_reload(struct master *, struct admin_client *, int, char **);
static void cmd_stop(struct master *, struct admin_client *, int, char **);
static void cmd_channels(struct master *, struct admin_client *, int, char **);

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
	{ "agents",	"tunnel",	NULL },
	{ "kick",	"tunnel",	NULL },
	{ "send",	"tunnel",	NULL },
};

static void
client_close(struct admin_client *c)
{
	if (c->fd >= 0)
		close(c->fd);
	msg_conn_free(&c->conn);
	memset(c, 0, sizeof(*c));
	c->fd = -1;
}

static void
reply_raw(struct admin_client *c, const char *json, size_t len)
{
	c->waiting = 0;
	c->closing = 1;
	if (msg_enqueue(&c->conn, IPC_ADMIN_RESP, 0, json, len) != 0) {
		log_warn("admin: reply of %zu bytes dropped", len);
		client_close(c);
		return;
	}
	if (msg_flush(&c->conn) != 0)	/* all written, or failed */
		client_close(c);
}

static void
reply_json(struct admin_client *c, json_t *o)
{
	char *s = json_dumps(o, JSON_COMPACT);

	json_decref(o);
	if (s == NULL) {
		client_close(c);
		return;
	}
	reply_raw(c, s, strlen(s) + 1);
	free(s);
}

static void
reply_error(struct admin_client *c, const char *msg)
{
	reply_json(c, json_pack("{s:b, s:s}", "ok", 0, "error", msg));
}

int
admin_open(struct master *m, char *err, size_t errlen)
{
	struct sockaddr_un sun;
	mode_t old;
	int fd;

	for (int i = 0; i < ADMIN_MAX_CLIENTS; i++)
		m->clients[i].fd = -1;
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
	return 0;
}

void
admin_close(struct master *m)
{
	for (int i = 0; i < ADMIN_MAX_CLIENTS; i++)
		if (m->clients[i].fd >= 0)
			client_close(&m->clients[i]);
	if (m->admin_fd >= 0) {
		close(m->admin_fd);
		unlink(m->admin_path);
		m->admin_fd = -1;
	}
}

void
admin_accept(struct master *m)
{
	for (;;) {
		int fd = accept4(m->admin_fd, NULL, NULL,
		    SOCK_CLOEXEC | SOCK_NONBLOCK);
		struct admin_client *c = NULL;

		if (fd < 0) {
			if (errno != EAGAIN && errno != EINTR)
				log_warn("admin accept: %s", strerror(errno));
			return;
		}
		for (int i = 0; i < ADMIN_MAX_CLIENTS; i++)
			if (m->clients[i].fd < 0) {
				c = &m->clients[i];
				break;
			}
		if (c == NULL) {
			log_warn("admin: too many clients; refusing one");
			close(fd);
			continue;
		}
		memset(c, 0, sizeof(*c));
		c->fd = fd;
		msg_conn_init(&c->conn, fd, &ipc_admin_rules);
		c->deadline = clock_mono_ms() + ADMIN_TIMEOUT_MS;
	}
}

static void
dispatch(struct master *m, struct admin_client *c, char *payload, uint32_t len)
{
	char *argv[32];
	int argc = ipc_admin_split(payload, len, argv, 32);
	char msg[256];

	if (argc < 0) {
		reply_error(c, "malformed request");
		return;
	}
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
		if (strcmp(cmds[i].name, argv[0]) != 0)
			continue;
		if (cmds[i].target == NULL) {
			cmds[i].fn(m, c, argc, argv);
			return;
		}
		c->id = ++m->next_admin_id;
		if (proc_forward_admin(m, cmds[i].target, c->id, payload, len,
		    &c->target) != 0) {
			snprintf(msg, sizeof(msg), "the %s process is not running",
			    cmds[i].target);
			reply_error(c, msg);
			return;
		}
		c->waiting = 1;
		c->deadline = clock_mono_ms() + ADMIN_TIMEOUT_MS;
		return;
	}
	snprintf(msg, sizeof(msg), "unknown command '%.64s'", argv[0]);
	reply_error(c, msg);
}

void
admin_input(struct master *m, struct admin_client *c)
{
	struct msg msg;
	char err[256];
	int rc;

	for (;;) {
		rc = msg_fill(&c->conn);
		if (rc == -2)
			break;
		if (rc <= 0) {
			client_close(c);
			return;
		}
	}
	if (c->waiting || c->closing)
		return;			/* one request per connection */
	rc = msg_next(&c->conn, &msg, err, sizeof(err));
	if (rc < 0) {
		/* hubctl is a user tool: a bad request is the user's problem. */
		log_warn("admin: bad request: %s", err);
		reply_error(c, err);
		return;
	}
	if (rc == 1)
		dispatch(m, c, (char *)msg.data, msg.hdr.len);
}

void
admin_output(struct master *m, struct admin_client *c)
{
	int rc = msg_flush(&c->conn);

	if (rc < 0 || (rc == 1 && c->closing))
		client_close(c);
}

void
admin_child_reply(struct master *m, uint64_t id, const char *json, size_t len)
{
	for (int i = 0; i < ADMIN_MAX_CLIENTS; i++) {
		struct admin_client *c = &m->clients[i];
		if (c->fd >= 0 && c->waiting && c->id == id) {
			reply_raw(c, json, len);
			return;
		}
	}
	log_debug("admin: answer %llu arrived after its client left",
	    (unsigned long long)id);
}

void
admin_child_gone(struct master *m, const struct proc *p)
{
	for (int i = 0; i < ADMIN_MAX_CLIENTS; i++) {
		struct admin_client *c = &m->clients[i];
		if (c->fd >= 0 && c->waiting && c->target == p->pid)
			reply_error(c, "the process answering this command exited");
	}
}

void
admin_timeouts(struct master *m, int64_t now)
{
	for (int i = 0; i < ADMIN_MAX_CLIENTS; i++) {
		struct admin_client *c = &m->clients[i];
		if (c->fd < 0 || now < c->deadline)
			continue;
		if (c->waiting)
			reply_error(c, "no answer in time");
		else
			client_close(c);
	}
}

static const char *
state_name(uint32_t s)
{
	static const char *const names[] = { "free", "running", "backoff",
		"failed", "stopped" };
	return s < 5 ? names[s] : "?";
}

static void
cmd_status(struct master *m, struct admin_client *c, int argc, char **argv)
{
	json_t *o, *children = json_array();
	int64_t now = clock_wall_ms();

	for (uint32_t i = 0; i < m->nprocs; i++) {
		const struct proc *p = &m->procs[i];
		struct sb_proc s;
		sb_read_proc(&m->sb, p->slot, &s);
		json_array_append_new(children, json_pack(
		    "{s:s, s:s, s:i, s:i, s:i, s:s, s:I, s:I}",
		    "name", p->name, "kind", p->kind->name,
		    "instance", (int)p->instance, "pid", (int)p->pid,
		    "restarts", (int)p->restarts, "state", state_name(s.state),
		    "uptime_s", (json_int_t)(p->pid ? (now - s.started_ms) / 1000 : 0),
		    "config_generation", (json_int_t)p->conf_gen));
	}
	o = json_pack("{s:b, s:i, s:I, s:I, s:s, s:b, s:{s:s, s:s}, s:o}",
	    "ok", 1, "pid", (int)getpid(),
	    "uptime_s", (json_int_t)((clock_mono_ms() - m->started_mono) / 1000),
	    "config_generation", (json_int_t)m->gen,
	    "config_file", m->conf_path,
	    "draining", m->stopping,
	    "listen", "gateway", m->listen_gw, "tunnel", m->listen_tun,
	    "children", children);
	reply_json(c, o);
}

static void
cmd_reload(struct master *m, struct admin_client *c, int argc, char **argv)
{
	char err[512];

	if (master_reload(m, err, sizeof(err)) != 0) {
		reply_error(c, err);
		return;
	}
	reply_json(c, json_pack("{s:b, s:I}", "ok", 1, "config_generation",
	    (json_int_t)m->gen));
}

/* Channels up, their figures and router scores (admin_channels.c). */
static void
cmd_channels(struct master *m, struct admin_client *c, int argc, char **argv)
{
	reply_json(c, admin_channels_json(&m->sb, &m->conf));
}

static void
cmd_stop(struct master *m, struct admin_client *c, int argc, char **argv)
{
	reply_json(c, json_pack("{s:b, s:s}", "ok", 1, "message", "stopping"));
	master_begin_stop(m, "hubctl stop");
}
