/*
 * billing/bill_main: the billing process — the only process that opens the
 * store.  It serves the other children on billing.sock (registry look-ups
 * for the tunnel's handshakes, token look-ups and quota charges for the
 * gateways: bill_charge.c, the ledger and its receipts: bill_ledger.c) and
 * the admin commands the master forwards (agent add|list|disable|enable;
 * token: bill_token.c; price: bill_price.c; ledger, disputes:
 * bill_ledger.c).  Store calls block, which is why they live here and
 * nowhere else.  billing.sock is served by lib/msgsrv (billing's rules and
 * dispatch table below; what one read brought is one group commit).
 *
 * Billing alone loads the ledger key (the secret half signs every entry;
 * the tunnel gets the public half in IPC_LEDGER_KEY) and opens the store,
 * both before it drops root for [hub] user.
 */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <malloc.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include "billing/bill.h"
#include "lib/clock.h"
#include "lib/log.h"

/* Two connections a gateway worker ([gateway] workers is at most 64: its
 * own and its deferred one), the tunnel's, and room for reconnections
 * while an old one is still being closed; child/child.c polls up to 256. */
#define BILL_MAX_CLIENTS (2 * 64 + 16)

struct store *bill_store;
struct hub_key bill_key;
static struct msg_srv srv;	/* billing.sock */

/* A gateway's deferred connection (its posts and unwaited reservations,
 * IPC_BILL_DEFER) is read at most this often: under load billing wakes
 * once in this many ms for them, not once a request.  Nobody waits for
 * what it holds: before any other client's message, an admin command,
 * the sweep and the stop, it is read first (lib/msgsrv.h).  Each read is
 * a burst of this many ms of requests: at 5 ms, c=32 lost 3-8 % of its
 * requests a second in six paired runs of 8 s (the burst, run as
 * SCHED_BATCH, holds a core from the request path); 2 ms kept c=32 even
 * and c=1's billing CPU lower. */
#define BILL_DEFER_MS	2


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
	/* Admin commands answer at once: nothing held may precede them,
	 * nor any post a gateway wrote before the command was typed. */
	msg_srv_drain(&srv);
	(void)bill_batch_commit(NULL);
	if (bill_admin_cmd(env, id, argc, argv))
		return;
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
bill_client_closed(struct msg_client *c)
{
	bill_ledger_closed(c);
	bill_lease_drop_client(c->slot, c->serial);
}

static int
on_agent_get(struct msg_client *c, const struct msg *m, char *err,
    size_t errlen)
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
	if (bill_send(c, IPC_AGENT_INFO, m->hdr.reqid, &r, sizeof(r)) != 0)
		log_warn("billing client queue full");
	return 0;
}

static int
on_token_get(struct msg_client *c, const struct msg *m, char *err,
    size_t errlen)
{
	struct ipc_token_get q;
	struct ipc_token_info r;

	memcpy(&q, m->data, sizeof(q));
	bill_token_get(&q, &r);
	if (bill_send(c, IPC_TOKEN_INFO, m->hdr.reqid, &r, sizeof(r)) != 0)
		log_warn("billing client queue full");
	return 0;
}

static int
on_charge_reserve(struct msg_client *c, const struct msg *m, char *err,
    size_t errlen)
{
	struct ipc_charge_reserve q;
	struct ipc_charge_result r;

	memcpy(&q, m->data, sizeof(q));
	if (c->deferred && !(q.flags & IPC_CHARGE_F_UNWAITED)) {
		snprintf(err, errlen, "a reservation waited for on a deferred "
		    "connection");
		return -1;
	}
	bill_charge_reserve(c, m->hdr.reqid, &q, &r);
	if (q.flags & IPC_CHARGE_F_UNWAITED)
		return 0;	/* nobody waits (a refusal was logged) */
	if (bill_send(c, IPC_CHARGE_RESULT, m->hdr.reqid, &r, sizeof(r)) != 0)
		log_warn("billing client queue full");
	return 0;
}

static int
on_bill_defer(struct msg_client *c, const struct msg *m, char *err,
    size_t errlen)
{
	if (msg_srv_defer(c, &bill_defer_server_rules) != 0) {
		snprintf(err, errlen, "cannot defer a client");
		return -1;
	}
	log_debug("billing.sock: client pid %d defers its posts", (int)c->pid);
	return 0;
}

static int
on_charge_post(struct msg_client *c, const struct msg *m, char *err,
    size_t errlen)
{
	struct ipc_charge_post q;

	memcpy(&q, m->data, sizeof(q));
	bill_charge_post(c, m->hdr.reqid, &q);
	return 0;
}

/*
 * A job look-up that finds nothing is answered after this round's input
 * from every client was read (bill_prepare): the create's post may sit
 * in another gateway's connection, read later in the same round, though
 * the gateway wrote it before its user even saw the job's id.
 */
#define JOB_RECHECK_MAX	256
static struct job_recheck {
	uint32_t slot, serial;
	uint64_t reqid;
	struct ipc_job_get q;
} job_recheck[JOB_RECHECK_MAX];
static size_t njob_recheck;

static int
on_job_get(struct msg_client *c, const struct msg *m, char *err,
    size_t errlen)
{
	struct ipc_job_get q;
	struct ipc_job_info r;

	memcpy(&q, m->data, sizeof(q));
	bill_job_get(&q, &r);
	if (r.status == IPC_JOB_UNKNOWN && njob_recheck < JOB_RECHECK_MAX) {
		struct job_recheck *k = &job_recheck[njob_recheck++];

		k->slot = c->slot;
		k->serial = c->serial;
		k->reqid = m->hdr.reqid;
		k->q = q;
		return 0;
	}
	if (bill_send(c, IPC_JOB_INFO, m->hdr.reqid, &r, sizeof(r)) != 0)
		log_warn("billing client queue full");
	return 0;
}

static void
job_recheck_answer(struct msg_srv *s)
{
	struct ipc_job_info r;
	struct msg_client *c;

	for (size_t i = 0; i < njob_recheck; i++) {
		struct job_recheck *k = &job_recheck[i];

		if ((c = msg_srv_find(s, k->slot, k->serial)) == NULL)
			continue;	/* the gateway went away */
		bill_job_get(&k->q, &r);
		if (bill_send(c, IPC_JOB_INFO, k->reqid, &r, sizeof(r)) != 0)
			log_warn("billing client queue full");
	}
	njob_recheck = 0;
}

static int
on_ledger(struct msg_client *c, const struct msg *m, char *err, size_t errlen)
{
	bill_ledger_msg(c, m);
	return 0;
}

/* Group commit across every client (billing/bill_batch.c): whatever any
 * client sends runs in the open batch; its answers are held until the
 * batch committed, before the loop's next poll. */
static int
bill_input_begin(struct msg_srv *s)
{
	return bill_batch_open();
}

static int
bill_input_end(struct msg_srv *s, struct msg_client *c, int began)
{
	return 0;	/* committed in bill_prepare, with the whole round */
}

/* The loop wakes by t too (0: no time). */
static void
wake_by(struct child_loop *loop, int64_t t)
{
	if (t != 0 && (loop->wake_ms == 0 || t < loop->wake_ms))
		loop->wake_ms = t;
}

static void
bill_prepare(struct child_env *env, void *arg)
{
	struct child_loop *loop = arg;
	int64_t defer = msg_srv_defer_due(loop->srv, clock_mono_ms());

	job_recheck_answer(loop->srv);
	(void)bill_ledger_sign_due(0);	/* the chains whose time came */
	loop->wake_ms = bill_batch_prepare();
	wake_by(loop, bill_sign_due());
	wake_by(loop, defer);
}

/* What billing.sock's clients may ask, by type (the rules: lib/ipc.c). */
static const msg_srv_fn bill_dispatch[IPC_TYPE_MAX] = {
	[IPC_AGENT_GET] = on_agent_get,
	[IPC_TOKEN_GET] = on_token_get,
	[IPC_CHARGE_RESERVE] = on_charge_reserve,
	[IPC_CHARGE_POST] = on_charge_post,
	[IPC_JOB_GET] = on_job_get,
	[IPC_BILL_DEFER] = on_bill_defer,
	[IPC_LEDGER_SUB] = on_ledger,
	[IPC_LEDGER_SYNC] = on_ledger,
	[IPC_LEDGER_ACK] = on_ledger,
	[IPC_USAGE_REPORT] = on_ledger,
};

static const struct msg_srv_ops bill_srv_ops = {
	.name = "billing.sock",
	.rules = &bill_server_rules,
	.dispatch = bill_dispatch,
	.max_clients = BILL_MAX_CLIENTS,
	.defer_ms = BILL_DEFER_MS,
	.input_begin = bill_input_begin,
	.input_end = bill_input_end,
	.on_close = bill_client_closed,
};

static void
bill_tick(struct child_env *env, void *arg)
{
	msg_srv_drain(&srv);		/* nothing a sweep could void waits */
	(void)bill_batch_commit(NULL);	/* the sweep runs outside batches */
	bill_ledger_tick(env);
	bill_admin_tick(env);
	bill_lease_tick(clock_mono_ms());
}

static const struct child_ops bill_ops = { NULL, NULL, bill_admin };

/* The file path of a sqlite: store URL, or NULL for PostgreSQL. */
static const char *
sqlite_path(const char *url)
{
	if (strncmp(url, "postgres", 8) == 0)
		return NULL;
	return strncmp(url, "sqlite:", 7) == 0 ? url + 7 : url;
}

static int
ensure_sqlite_dir(const char *path)
{
	char dir[512], *slash;

	snprintf(dir, sizeof(dir), "%s", path);
	slash = strrchr(dir, '/');
	if (slash == NULL || slash == dir)
		return 0;
	*slash = '\0';
	return (mkdir(dir, 0700) == 0 || errno == EEXIST) ? 0 : -1;
}

/*
 * Billing opens the store while it still may be root and writes it after
 * dropping to [hub] user: the database and what SQLite keeps beside it
 * (-wal, -shm) belong to that user.  SQLite, running as root, gives the
 * files it creates the owner of the database, so the database is created
 * and chowned first.  The directory is left as it is: it may also hold
 * the root-only ledger key.
 */
static void
own_sqlite_files(const struct child_env *env, const char *path)
{
	static const char *const suffix[] = { "", "-wal", "-shm", "-journal" };
	char f[600];
	int fd;

	if (!env->priv.drop || strcmp(path, ":memory:") == 0)
		return;
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd >= 0)
		close(fd);
	for (size_t i = 0; i < sizeof(suffix) / sizeof(suffix[0]); i++) {
		snprintf(f, sizeof(f), "%s%s", path, suffix[i]);
		if (chown(f, env->priv.uid, env->priv.gid) != 0 && errno != ENOENT)
			log_warn("store %s: chown to uid %d: %s", f,
			    (int)env->priv.uid, strerror(errno));
	}
}

/*
 * Billing's work can wait a little (commits every 200 ms, reservations
 * answered from memory); a relay cannot.  At c=1 on two cores billing
 * woke with every request and took a core from the gateway, tunnel or
 * agent the request needed next: under SCHED_BATCH a waking billing does
 * not preempt them, and it keeps its fair share of the CPU (nice 0), so
 * a loaded hub cannot starve it.  Measured at c=1: p50 505 -> 452 us,
 * requests a second +10 %; c=32 and c=256 unchanged.
 */
static void
batch_sched(void)
{
#ifdef SCHED_BATCH
	struct sched_param sp;

	memset(&sp, 0, sizeof(sp));
	if (sched_setscheduler(0, SCHED_BATCH, &sp) != 0)
		log_warn("cannot run billing as SCHED_BATCH: %s",
		    strerror(errno));
#endif
}

int
bill_main(struct child_env *env)
{
	static struct child_loop loop;
	const char *db = sqlite_path(env->conf.store_url);
	char err[512];
	int rc;

	/* SQLite builds and frees a temporary b-tree (with its page cache)
	 * for every UPDATE ... RETURNING; glibc would give that memory back
	 * to the kernel each time (brk down, a TLB flush on every core, then
	 * page faults to grow again): keep it. */
	(void)mallopt(M_TRIM_THRESHOLD, 64 << 20);
	(void)mallopt(M_MMAP_THRESHOLD, 4 << 20);
	(void)mallopt(M_TOP_PAD, 4 << 20);

	/* The secret half of the ledger key lives here and nowhere else;
	 * the file may be root's alone, so it is read before the drop. */
	if (hub_key_load(env->conf.ledger_key, &bill_key, err, sizeof(err)) != 0) {
		log_error("[store] %s", err);
		return CHILD_EXIT_CONFIG;
	}
	if (db != NULL && ensure_sqlite_dir(db) != 0)
		log_warn("cannot create the directory of %s: %s",
		    env->conf.store_url, strerror(errno));
	if (db != NULL)
		own_sqlite_files(env, db);
	bill_store = store_open(env->conf.store_url, err, sizeof(err));
	if (bill_store == NULL) {
		log_error("store %s: %s", env->conf.store_url, err);
		return 1;	/* restarted with back-off: a database may come back */
	}
	child_drop_privs(env);
	if (msg_srv_init(&srv, &bill_srv_ops, env->fds.bill_sock, err,
	    sizeof(err)) != 0) {
		log_error("%s", err);
		return 1;
	}
	memset(&loop, 0, sizeof(loop));
	loop.ops = &bill_ops;
	loop.tick_ms = 1000;
	loop.tick = bill_tick;
	loop.prepare = bill_prepare;
	loop.arg = &loop;
	loop.srv = &srv;
	bill_batch_init(&srv);
	batch_sched();
	child_ready(env);
	log_info("billing ready on %s store", store_engine(bill_store));
	rc = child_poll_loop(env, &loop);
	msg_srv_drain(&srv);		/* what the gateways wrote before */
	(void)bill_batch_commit(NULL);
	(void)bill_ledger_sign_due(1);	/* no chain left unsigned */
	msg_srv_flush(&srv);
	msg_srv_free(&srv);
	store_close(bill_store);
	hub_key_wipe(&bill_key);
	return rc;
}
