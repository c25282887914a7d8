/*
 * child/child: what every hub child process receives from the master at
 * fork (its environment) and the child side of the master connection:
 * config updates, stop requests and forwarded admin commands.
 */
#ifndef SWB_CHILD_H
#define SWB_CHILD_H

#include <stdint.h>
#include <sys/types.h>
#include "lib/msg.h"
#include "lib/msgsrv.h"
#include "lib/ipc.h"
#include "child/hubconf.h"
#include "shm/sb.h"

/* Exit status of a child whose configuration can never work: not respawned. */
#define CHILD_EXIT_CONFIG 78

struct ipc_config {		/* writer: master, after every good reload */
	uint64_t gen;
	struct hub_conf conf;
};

/*
 * Listening sockets the master opened before forking (-1 when unused).
 * Each child keeps only those of its kind; the master closes the others
 * in it right after fork (master/proc.c, child_kinds[].fds):
 *
 *   child        gw_listen  tun_listen  tun_sock  bill_sock  mod_sock
 *   gateway          x
 *   tunnel                       x          x
 *   billing                                             x
 *   moderation                                                     x
 *   admin        adm_listen only (the admin HTTP API, off by default)
 *
 * Gateways dial tunnel.sock, billing.sock and moderation.sock; the
 * tunnel dials billing.sock (child/child_peer).
 * Besides these a child holds its end of the master connection, the
 * scoreboard mapping, and what it opens itself.
 */
struct child_fds {
	int gw_listen;		/* user API, TCP */
	int tun_listen;		/* agent tunnel, TCP (TLS in the tunnel) */
	int tun_sock;		/* Unix: gateways/master -> tunnel */
	int bill_sock;		/* Unix: gateways/tunnel -> billing */
	int mod_sock;		/* Unix: gateways -> moderation */
	int adm_listen;		/* admin HTTP API, TCP ([admin] listen) */
};

/* Whom a child runs as once it has loaded what needs root (master:
 * [hub] user, resolved at start-up). */
struct child_priv {
	int drop;		/* 1: setgroups/setgid/setuid to uid/gid */
	uid_t uid;
	gid_t gid;
	int dropped;		/* done (child_drop_privs) */
};

struct child_env {
	const char *kind;	/* "gateway", ... */
	uint32_t instance;
	struct sb sb;
	struct hub_conf conf;	/* current; replaced on IPC_CONFIG */
	uint64_t conf_gen;
	struct child_fds fds;
	struct child_priv priv;
	struct msg_conn master;	/* non-blocking */
	int stopping;		/* IPC_STOP received */
	int64_t stop_deadline_ms; /* monotonic */
};

/* Rules of the master <-> child connection: the child's end, the master's. */
extern const struct msg_rules ipc_child_rules;
extern const struct msg_rules ipc_master_rules;

struct child_ops {
	/* A new config was applied to env->conf (log level done already). */
	void (*on_config)(struct child_env *env, const struct hub_conf *old);
	/* Drain, then return from the loop; env->stop_deadline_ms is set. */
	void (*on_stop)(struct child_env *env);
	/* An admin command for this child; answer with child_admin_reply(). */
	void (*on_admin)(struct child_env *env, uint64_t id, int argc, char **argv);
};

/* The admin child: who takes the master's answers to its IPC_ADMIN_HTTP
 * (IPC_ADMIN_HTTP_RESP; another child never receives one). */
typedef void (*child_admin_http_fn)(struct child_env *env, uint64_t id,
    const char *json, size_t len);
void child_set_admin_http(child_admin_http_fn fn);

/* Called first thing after fork by every child. */
void child_setup(struct child_env *env);
/* Begin a drain if SIGTERM arrived; returns env->stopping. */
int  child_check_term(struct child_env *env, const struct child_ops *ops);
/*
 * Give up root for [hub] user (setgroups, setgid, setuid, each checked,
 * then checked that root cannot be regained).  A child calls it once it
 * has loaded what needs root (TLS keys, the ledger key, the store);
 * nothing when env->priv.drop is 0 or it is done.  Failing is fatal (a
 * start-up error; the child is not restarted).
 */
void child_drop_privs(struct child_env *env);
/* Drop privileges (child_drop_privs, if the child has not yet: every
 * child is unprivileged before it serves anything), then send IPC_READY. */
void child_ready(struct child_env *env);
/*
 * Read and dispatch what the master sent.  Returns 0, or -1 when the
 * master is gone or broke the protocol (logged): the child should exit.
 */
int child_master_input(struct child_env *env, const struct child_ops *ops);
/* Flush replies queued for the master. */
void child_master_flush(struct child_env *env);
void child_admin_reply(struct child_env *env, uint64_t id, const char *json);
void child_admin_error(struct child_env *env, uint64_t id, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Child entry points, one per kind (named in the master's process table, master/proc.c). */
int gw_main(struct child_env *env);
int tun_main(struct child_env *env);
int bill_main(struct child_env *env);
int mod_main(struct child_env *env);
int adm_main(struct child_env *env);

/*
 * A plain poll(2) loop for children without their own event library:
 * serves the master connection, polls fds[] for input (reported to
 * on_fd) and calls tick() about every tick_ms.
 */
struct child_loop {
	const struct child_ops *ops;
	int tick_ms;
	void (*tick)(struct child_env *env, void *arg);
	/* Called before every poll: fill fds[] / nfds with what to watch,
	 * and wake_ms (monotonic ms; 0: none) to be woken by then even
	 * without input. */
	void (*prepare)(struct child_env *env, void *arg);
	int64_t wake_ms;
	int nfds;
	int fds[128];
	unsigned char want_out[128];	/* prepare: also wait for POLLOUT */
	void (*on_fd)(struct child_env *env, int fd, short revents, void *arg);
	/* Nonzero while work is in flight; once stopping, the loop returns
	 * as soon as this says 0 (or NULL) or the drain deadline passes. */
	int (*busy)(struct child_env *env, void *arg);
	void *arg;
	/* A message server (lib/msgsrv) the loop polls, flushes and ticks
	 * besides fds[]; NULL: none.  At most 255 clients. */
	struct msg_srv *srv;
};
int child_poll_loop(struct child_env *env, struct child_loop *loop);

#endif
