/*
 * master/master: state of the hubd master process.  The master parses the
 * config, opens every listener, maps the scoreboard, forks the children
 * named in one table (proc.c), then only supervises: it restarts crashed
 * children with back-off, hands good reloads to the children and serves
 * the admin socket.  It never handles a user request.
 */
#ifndef SWB_MASTER_H
#define SWB_MASTER_H

#include <stdint.h>
#include <netdb.h>
#include <sys/types.h>
#include "lib/msg.h"
#include "child/child.h"
#include "child/hubconf.h"
#include "shm/sb.h"

/* Which of struct child_fds a kind keeps (the rest are closed at fork). */
enum {
	CHILD_FD_GW_LISTEN = 1 << 0,
	CHILD_FD_TUN_LISTEN = 1 << 1,
	CHILD_FD_TUN_SOCK = 1 << 2,
	CHILD_FD_BILL_SOCK = 1 << 3,
	CHILD_FD_MOD_SOCK = 1 << 4,
	CHILD_FD_ADM_LISTEN = 1 << 5,
};

struct child_kind {
	const char *name;
	int (*main)(struct child_env *env);
	uint32_t (*count)(const struct hub_conf *cf);	/* NULL: one */
	unsigned fds;			/* CHILD_FD_* it keeps */
};

extern const struct child_kind child_kinds[];
extern const size_t nchild_kinds;

struct proc {
	const struct child_kind *kind;
	uint32_t instance;
	uint32_t slot;			/* index of its sb_proc */
	char     name[24];		/* "gateway#0", "tunnel" */
	pid_t    pid;			/* 0 when not running */
	struct msg_conn conn;		/* master end of the socketpair */
	int64_t  started_mono;
	int64_t  respawn_at;		/* monotonic ms; 0 when none pending */
	uint32_t restarts;		/* since start */
	uint32_t streak;		/* crashes in a row, each soon after start */
	int      failed;		/* exited CHILD_EXIT_CONFIG: not respawned */
	int      ready;
	int32_t  uid, gid;		/* from its IPC_READY; -1 before */
	uint64_t conf_gen;		/* last generation the child acked */
};

#define ADMIN_MAX_CLIENTS 32

/* A hubd.sock client's command forwarded to a child, by client slot. */
struct admin_fwd {
	uint64_t id;			/* reqid of the forwarded command */
	int64_t deadline;		/* monotonic: answer due */
	int waiting;			/* forwarded, answer pending */
	pid_t target;			/* child the command went to */
};

#define ADMIN_HTTP_MAX 64

/*
 * A request of the admin HTTP API in the master (admin_http.c): first the
 * key is checked with billing (AH_AUTH), then the command runs as a
 * hubd.sock command would (AH_CMD: forwarded, answer pending).
 */
enum { AH_FREE = 0, AH_AUTH, AH_CMD };
struct admin_http {
	int state;
	uint64_t child_id;		/* the admin child's reqid */
	pid_t child_pid;		/* the admin child that asked */
	uint64_t id;			/* reqid of the forwarded message */
	pid_t target;			/* child the message went to */
	int64_t deadline;		/* monotonic */
	char *argv_buf;			/* the command's argv, NUL-separated */
	uint32_t argv_len;
};

struct master {
	const char *conf_path;
	struct hub_conf conf;
	uint64_t gen;
	struct sb sb;
	struct child_fds fds;
	struct child_priv priv;		/* what children drop to ([hub] user) */
	char listen_gw[96], listen_tun[96];	/* actual bound addresses */
	char listen_adm[96];			/* "" when [admin] listen is off */
	struct proc procs[SB_MAX_PROCS];
	uint32_t nprocs;
	int admin_fd;
	char admin_path[108];		/* fits sun_path (checked) */
	struct msg_srv admin;		/* hubd.sock's clients (lib/msgsrv) */
	struct admin_fwd fwd[ADMIN_MAX_CLIENTS];
	struct admin_http http[ADMIN_HTTP_MAX];	/* the admin child's requests */
	uint64_t next_admin_id;
	int stopping;
	int notified_ready;		/* READY=1 sent */
	int64_t stop_deadline;		/* monotonic: SIGKILL what is left */
	int64_t started_mono;
	int sigpipe[2];
};

/* proc.c */
void proc_init_table(struct master *m);
void proc_spawn(struct master *m, struct proc *p);
void proc_reap(struct master *m);
void proc_respawn_due(struct master *m, int64_t now);
void proc_input(struct master *m, struct proc *p);
void proc_broadcast_config(struct master *m);
void proc_stop_all(struct master *m);
int  proc_running(const struct master *m);
void proc_kill_all(struct master *m, int sig);
int64_t proc_next_event(const struct master *m);
/* Forward an admin command to the first running child of a kind. */
int  proc_forward_admin(struct master *m, const char *kind, uint64_t id,
    const void *req, size_t len, pid_t *target);

/* admin.c */
int  admin_open(struct master *m, char *err, size_t errlen);
void admin_close(struct master *m);
void admin_child_reply(struct master *m, uint64_t id, const char *json, size_t len);
void admin_child_gone(struct master *m, const struct proc *p);
/* Forwarded commands not answered in time, idle clients. */
void admin_timeouts(struct master *m, int64_t now);
/* A hubd.sock client or an admin HTTP request: who gets the answer. */
struct admin_who {
	struct msg_client *c;		/* hubd.sock; NULL for HTTP */
	int http;			/* index in m->http when c is NULL */
};
/* Run a command (argv NUL-separated in payload) for who.  0, or -1 when
 * the payload does not split (answered already). */
void admin_run(struct master *m, struct admin_who w, char *payload,
    uint32_t len);
void admin_reply_raw(struct master *m, struct admin_who w, const char *json,
    size_t len);

/* admin_http.c: the admin child's requests (IPC_ADMIN_HTTP). */
void admin_http_req(struct master *m, struct proc *p, uint64_t id,
    const char *payload, uint32_t len);
/* An answer of billing or the tunnel to an HTTP request's message: 1
 * taken, 0 not one of them. */
int  admin_http_child_reply(struct master *m, uint64_t id, const char *json,
    size_t len);
void admin_http_send(struct master *m, int slot, const char *json, size_t len);
void admin_http_child_gone(struct master *m, const struct proc *p);
void admin_http_timeouts(struct master *m, int64_t now);

/* priv.c: [hub] user, the ledger key check, run_dir ownership */
void priv_resolve(struct master *m);
void priv_check_ledger_key(struct master *m);
void priv_own_sockets(struct master *m);

/* notify.c: $NOTIFY_SOCKET (READY=1, RELOADING=1, STOPPING=1). */
void master_notify(const char *state);

/* main.c */
int  master_reload(struct master *m, char *err, size_t errlen);
void master_begin_stop(struct master *m, const char *why);

#endif
