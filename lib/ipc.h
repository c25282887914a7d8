/*
 * lib/ipc: the message types hub processes and hubctl exchange over the
 * lib/msg layer, and the payload structs of the fixed-size ones.  Rule
 * tables (allowed types and exact sizes per connection kind) live next to
 * the code that owns each connection; the admin rules are here because
 * hubctl shares them.
 */
#ifndef SWB_IPC_H
#define SWB_IPC_H

#include <stdint.h>
#include "lib/msg.h"

enum ipc_type {
	IPC_NONE = 0,
	IPC_READY,		/* child -> master: struct ipc_ready */
	IPC_CONFIG,		/* master -> child: struct ipc_config (hub) */
	IPC_CONFIG_ACK,		/* child -> master: struct ipc_config_ack */
	IPC_STOP,		/* master -> child: struct ipc_stop */
	IPC_ADMIN_REQ,		/* hubctl -> master -> child: argv, NUL-separated */
	IPC_ADMIN_RESP,		/* child -> master -> hubctl: JSON object text */
	IPC_TYPE_MAX
};

struct ipc_ready {		/* writer: child, once after start-up */
	uint32_t instance;
	int32_t  pid;
};

struct ipc_config_ack {		/* writer: child, after applying a config */
	uint64_t gen;
};

struct ipc_stop {		/* writer: master, on SIGTERM/hubctl stop */
	int64_t drain_ms;	/* children finish in-flight work this long */
};

#define IPC_ADMIN_MAX	(64u * 1024)		/* request argv bytes */
#define IPC_ADMIN_RESP_MAX (4u * 1024 * 1024)	/* response JSON bytes */

/* hubctl <-> master: only ADMIN_REQ one way and ADMIN_RESP back. */
extern const struct msg_rules ipc_admin_rules;

/*
 * Split an ADMIN_REQ payload (args separated by NUL) into argv.  Returns
 * argc (>= 1), or -1 when empty, too many args or not NUL-terminated.
 */
int ipc_admin_split(char *payload, uint32_t len, char **argv, int maxargs);

#endif
