/*
 * child/child: what every hub child process receives from the master at
 * fork (its environment) and the child side of the master connection:
 * config updates, stop requests and forwarded admin commands.
 */
#ifndef SWB_CHILD_H
#define SWB_CHILD_H

#include <stdint.h>
#include "lib/msg.h"
#include "lib/ipc.h"
#include "child/hubconf.h"
#include "shm/sb.h"

/* Exit status of a child whose configuration can never work: not respawned. */
#define CHILD_EXIT_CONFIG 78

struct ipc_config {		/* writer: master, after every good reload */
	uint64_t gen;
	struct hub_conf conf;
};

/* Listening sockets the master opened before forking (-1 when unused). */
struct child_fds {
	int gw_listen;		/* user API, TCP */
	int tun_listen;		/* agent tunnel, TCP (TLS in the tunnel) */
	int tun_sock;		/* Unix: gateways/master -> tunnel */
	int bill_sock;		/* Unix: gateways/tunnel -> billing */
	int mod_sock;		/* Unix: gateways -> moderation */
};

struct child_env {
	const char *kind;	/* "gateway", ... */
	uint32_t instance;
	struct sb sb;
	struct hub_conf conf;	/* current; replaced on IPC_CONFIG */
	uint64_t conf_gen;
	struct child_fds fds;
	struct msg_conn master;	/* non-blocking */
	int stopping;		/* IPC_STOP received */
	int64_t stop_deadline_ms; /* monotonic */
};

/* Rules of the master <-> child connection (both directions). */
extern const struct msg_rules ipc_child_rules;

struct child_ops {
	/* A new config was applied to env->conf (log level done already). */
	void (*on_config)(struct child_env *env, const struct hub_conf *old);
	/* Drain, then return from the loop; env->stop_deadline_ms is set. */
	void (*on_stop)(struct child_env *env);
	/* An admin command for this child; answer with child_admin_reply(). */
	void (*on_admin)(struct child_env *env, uint64_t id, int argc, char **argv);
};

/* Called first thing after fork by every child. */
void child_setup(struct child_env *env);
/* Begin a drain if SIGTERM arrived; returns env->stopping. */
int  child_check_term(struct child_env *env, const struct child_ops *ops);
/* Send IPC_READY. */
void child_ready(struct child_env *env);
/*
 * Read and dispatch what the master sent.  Returns 0, or -1 when the
 * master is gone (the child should exit) — a malformed message from our own
 * master is a protocol violation and fatal.
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

/*
 * A plain poll(2) loop for children without their own event library:
 * serves the master connection, polls fds[] for input (reported to
 * on_fd) and calls tick() about every tick_ms.
 */
struct child_loop {
	const struct child_ops *ops;
	int tick_ms;
	void (*tick)(struct child_env *env, void *arg);
	/* Called before every poll: fill fds[] / nfds with what to watch. */
	void (*prepare)(struct child_env *env, void *arg);
	int nfds;
	int fds[128];
	unsigned char want_out[128];	/* prepare: also wait for POLLOUT */
	void (*on_fd)(struct child_env *env, int fd, short revents, void *arg);
	/* Nonzero while work is in flight; once stopping, the loop returns
	 * as soon as this says 0 (or NULL) or the drain deadline passes. */
	int (*busy)(struct child_env *env, void *arg);
	void *arg;
};
int child_poll_loop(struct child_env *env, struct child_loop *loop);

#endif
