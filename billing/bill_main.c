/*
 * billing/bill_main: the billing process — the only process that opens the
 * store.  It serves the other children on billing.sock (registry look-ups
 * for the tunnel's handshakes, token look-ups and quota charges for the
 * gateways: bill_charge.c, the ledger and its receipts: bill_ledger.c) and
 * the admin commands the master forwards (agent add|list|disable|enable;
 * token: bill_token.c; price: bill_price.c; ledger, disputes:
 * bill_ledger.c).  Store calls block, which is why they live here and
 * nowhere else.
 */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include "billing/bill.h"
#include "lib/log.h"

#define BILL_MAX_CLIENTS 80

struct store *bill_store;
static struct msg_conn clients[BILL_MAX_CLIENTS];


void
bill_reply_json(struct child_env *env, uint64_t id, json_t *o)
{
	char *s = json_dumps(o, JSON_COMPACT);

	json_decref(o);
	child_admin_reply(env, id, s ? s : "{\"ok\":false}");
	free(s);
}

static int
add_agent_row(const struct store_agent *a, void *arg)
{
	char grade[2] = { a->grade, '\0' };

	json_array_append_new(arg, json_pack("{s:I, s:s, s:s, s:s, s:b, s:I}",
	    "id", (json_int_t)a->id, "name", a->name, "grade", grade,
	    "pubkey", a->pubkey_b64, "enabled", a->enabled,
	    "created_at", (json_int_t)a->created_at));
	return 0;
}

int
bill_parse_id(const char *s, uint64_t *id)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v == 0 || s[0] == '-')
		return -1;
	*id = v;
	return 0;
}

static void
cmd_agent(struct child_env *env, uint64_t rid, int argc, char **argv)
{
	uint64_t id;
	int rc;

	if (argc >= 2 && strcmp(argv[1], "list") == 0 && argc == 2) {
		json_t *rows = json_array();
		if (store_agent_list(bill_store, add_agent_row, rows) != 0) {
			json_decref(rows);
			child_admin_error(env, rid, "store: %s", store_errmsg(bill_store));
			return;
		}
		bill_reply_json(env, rid, json_pack("{s:b, s:o}", "ok", 1, "agents", rows));
		return;
	}
	if (argc >= 4 && strcmp(argv[1], "add") == 0) {
		char grade = 'C';
		for (int i = 4; i < argc; i++) {
			if (strcmp(argv[i], "--grade") == 0 && i + 1 < argc &&
			    strlen(argv[i + 1]) == 1 && argv[i + 1][0] >= 'A' &&
			    argv[i + 1][0] <= 'Z') {
				grade = argv[++i][0];
				continue;
			}
			child_admin_error(env, rid, "agent add: unexpected '%s' "
			    "(usage: agent add NAME PUBKEY [--grade A|B|C])", argv[i]);
			return;
		}
		if (store_agent_add(bill_store, argv[2], argv[3], grade, &id) != 0) {
			child_admin_error(env, rid, "agent add: %s", store_errmsg(bill_store));
			return;
		}
		log_info("registered agent %llu '%s' (grade %c)",
		    (unsigned long long)id, argv[2], grade);
		bill_reply_json(env, rid, json_pack("{s:b, s:I, s:s}", "ok", 1, "id",
		    (json_int_t)id, "message", "registered"));
		return;
	}
	if (argc == 3 && (strcmp(argv[1], "disable") == 0 ||
	    strcmp(argv[1], "enable") == 0)) {
		int enable = strcmp(argv[1], "enable") == 0;
		if (bill_parse_id(argv[2], &id) != 0) {
			child_admin_error(env, rid, "agent %s: '%s' is not an agent id",
			    argv[1], argv[2]);
			return;
		}
		rc = store_agent_set_enabled(bill_store, id, enable);
		if (rc == 1) {
			child_admin_error(env, rid, "no agent with id %llu",
			    (unsigned long long)id);
			return;
		}
		if (rc != 0) {
			child_admin_error(env, rid, "store: %s", store_errmsg(bill_store));
			return;
		}
		log_info("agent %llu %s", (unsigned long long)id,
		    enable ? "enabled" : "disabled");
		bill_reply_json(env, rid, json_pack("{s:b, s:s}", "ok", 1, "message",
		    enable ? "enabled" : "disabled"));
		return;
	}
	child_admin_error(env, rid, "usage: agent add NAME PUBKEY [--grade A|B|C] "
	    "| agent list | agent disable ID | agent enable ID");
}

static void
bill_admin(struct child_env *env, uint64_t id, int argc, char **argv)
{
	if (strcmp(argv[0], "agent") == 0)
		cmd_agent(env, id, argc, argv);
	else if (strcmp(argv[0], "token") == 0)
		bill_cmd_token(env, id, argc, argv);
	else if (strcmp(argv[0], "price") == 0)
		bill_cmd_price(env, id, argc, argv);
	else if (strcmp(argv[0], "ledger") == 0)
		bill_cmd_ledger(env, id, argc, argv);
	else if (strcmp(argv[0], "disputes") == 0)
		bill_cmd_disputes(env, id, argc, argv);
	else
		child_admin_error(env, id, "billing does not know '%s'", argv[0]);
}

static void
client_close(struct msg_conn *c)
{
	bill_ledger_closed(c);
	close(c->fd);
	msg_conn_free(c);
}

static void
serve_agent_get(struct msg_conn *c, const struct msg *m)
{
	struct ipc_agent_get q;
	struct ipc_agent_info r;
	struct store_agent a;
	int rc;

	memcpy(&q, m->data, sizeof(q));
	memset(&r, 0, sizeof(r));
	r.agent_id = q.agent_id;
	rc = store_agent_get(bill_store, q.agent_id, &a);
	if (rc == 0) {
		r.status = IPC_AGENT_FOUND;
		r.enabled = (uint32_t)a.enabled;
		memcpy(r.pubkey, a.pubkey, sizeof(r.pubkey));
		snprintf(r.name, sizeof(r.name), "%s", a.name);
		r.grade = a.grade;
	} else if (rc == 1) {
		r.status = IPC_AGENT_UNKNOWN;
	} else {
		r.status = IPC_AGENT_STORE_ERROR;
		log_warn("agent %llu look-up: %s", (unsigned long long)q.agent_id,
		    store_errmsg(bill_store));
	}
	if (msg_enqueue(c, IPC_AGENT_INFO, m->hdr.reqid, &r, sizeof(r)) != 0)
		log_warn("billing client queue full");
}

static void
client_input(struct msg_conn *c)
{
	struct msg m;
	char err[256];
	int rc, batched;

	for (;;) {
		rc = msg_fill(c);
		if (rc == -2)
			break;
		if (rc <= 0) {
			client_close(c);
			return;
		}
	}
	/* Group commit: what this read brought is one transaction, and
	 * every answer to it leaves only after that committed. */
	batched = store_batch_begin(bill_store) == 0;
	while ((rc = msg_next(c, &m, err, sizeof(err))) == 1) {
		if (m.hdr.type == IPC_AGENT_GET)
			serve_agent_get(c, &m);
		else if (m.hdr.type == IPC_TOKEN_GET) {
			struct ipc_token_get q;
			struct ipc_token_info r;
			memcpy(&q, m.data, sizeof(q));
			bill_token_get(&q, &r);
			if (msg_enqueue(c, IPC_TOKEN_INFO, m.hdr.reqid, &r, sizeof(r)) != 0)
				log_warn("billing client queue full");
		} else if (m.hdr.type == IPC_CHARGE_RESERVE) {
			struct ipc_charge_reserve q;
			struct ipc_charge_result r;
			memcpy(&q, m.data, sizeof(q));
			bill_charge_reserve(m.hdr.reqid, &q, &r);
			if (msg_enqueue(c, IPC_CHARGE_RESULT, m.hdr.reqid, &r, sizeof(r)) != 0)
				log_warn("billing client queue full");
		} else if (m.hdr.type == IPC_CHARGE_POST) {
			struct ipc_charge_post q;
			memcpy(&q, m.data, sizeof(q));
			bill_charge_post(c, m.hdr.reqid, &q);
		} else if (m.hdr.type == IPC_LEDGER_SUB ||
		    m.hdr.type == IPC_LEDGER_SYNC || m.hdr.type == IPC_LEDGER_ACK ||
		    m.hdr.type == IPC_USAGE_REPORT) {
			bill_ledger_msg(c, &m);
		} else {
			rc = -1;
			snprintf(err, sizeof(err), "unexpected %s",
			    msg_type_name(&bill_rules, m.hdr.type));
			break;
		}
	}
	if (batched && store_batch_end(bill_store) != 0) {
		/* Nothing of it is stored: drop the answers and receipts
		 * queued from it with their connections; gateways send their
		 * reservations and posts again, the tunnel re-syncs. */
		log_error("billing: committing a batch failed (%s): dropping the "
		    "connections it answered", store_errmsg(bill_store));
		bill_ledger_drop_sub();
		if (c->fd >= 0)
			client_close(c);
		return;
	}
	if (rc < 0) {
		/* Our own processes broke the protocol: drop that peer. */
		log_error("billing client: protocol violation: %s", err);
		client_close(c);
		return;
	}
	if (msg_flush(c) < 0)
		client_close(c);
}

static void
accept_clients(struct child_env *env)
{
	for (;;) {
		int fd = accept4(env->fds.bill_sock, NULL, NULL,
		    SOCK_CLOEXEC | SOCK_NONBLOCK);
		int placed = 0;

		if (fd < 0)
			return;
		for (int i = 0; i < BILL_MAX_CLIENTS && !placed; i++)
			if (clients[i].fd < 0) {
				msg_conn_init(&clients[i], fd, &bill_rules);
				placed = 1;
			}
		if (!placed) {
			log_warn("too many billing clients");
			close(fd);
		}
	}
}

static void
bill_fd(struct child_env *env, int fd, short revents, void *arg)
{
	if (fd == env->fds.bill_sock) {
		accept_clients(env);
		return;
	}
	for (int i = 0; i < BILL_MAX_CLIENTS; i++)
		if (clients[i].fd == fd)
			client_input(&clients[i]);
}

static void
bill_prepare(struct child_env *env, void *arg)
{
	struct child_loop *loop = arg;

	loop->nfds = 0;
	loop->want_out[loop->nfds] = 0;
	loop->fds[loop->nfds++] = env->fds.bill_sock;
	for (int i = 0; i < BILL_MAX_CLIENTS; i++)
		if (clients[i].fd >= 0) {
			/* Pushed receipts may wait for the socket. */
			loop->want_out[loop->nfds] = msg_pending(&clients[i]) != 0;
			loop->fds[loop->nfds++] = clients[i].fd;
		}
}

static void
bill_tick(struct child_env *env, void *arg)
{
	bill_ledger_tick(env);
}

static const struct child_ops bill_ops = { NULL, NULL, bill_admin };

static int
ensure_sqlite_dir(const char *url)
{
	char dir[512], *slash;
	const char *path = strncmp(url, "sqlite:", 7) == 0 ? url + 7 : url;

	if (strncmp(url, "postgres", 8) == 0)
		return 0;
	snprintf(dir, sizeof(dir), "%s", path);
	slash = strrchr(dir, '/');
	if (slash == NULL || slash == dir)
		return 0;
	*slash = '\0';
	return (mkdir(dir, 0700) == 0 || errno == EEXIST) ? 0 : -1;
}

int
bill_main(struct child_env *env)
{
	static struct child_loop loop;
	char err[512];
	int rc;

	for (int i = 0; i < BILL_MAX_CLIENTS; i++)
		clients[i].fd = -1;
	if (ensure_sqlite_dir(env->conf.store_url) != 0)
		log_warn("cannot create the directory of %s: %s",
		    env->conf.store_url, strerror(errno));
	bill_store = store_open(env->conf.store_url, err, sizeof(err));
	if (bill_store == NULL) {
		log_error("store %s: %s", env->conf.store_url, err);
		return 1;	/* restarted with back-off: a database may come back */
	}
	memset(&loop, 0, sizeof(loop));
	loop.ops = &bill_ops;
	loop.tick_ms = 1000;
	loop.tick = bill_tick;
	loop.prepare = bill_prepare;
	loop.on_fd = bill_fd;
	loop.arg = &loop;
	child_ready(env);
	log_info("billing ready on %s store", store_engine(bill_store));
	rc = child_poll_loop(env, &loop);
	for (int i = 0; i < BILL_MAX_CLIENTS; i++)
		if (clients[i].fd >= 0)
			client_close(&clients[i]);
	store_close(bill_store);
	return rc;
}
