/*
 * lib/ipc: shared rule table of the admin connection and argv packing.
 */
#include "lib/ipc.h"

static const struct msg_rule admin_rule[IPC_TYPE_MAX] = {
	[IPC_ADMIN_REQ] = { "admin-req", 1, IPC_ADMIN_MAX },
	[IPC_ADMIN_RESP] = { "admin-resp", 2, IPC_ADMIN_RESP_MAX },
};

const struct msg_rules ipc_admin_rules = { admin_rule, IPC_TYPE_MAX };

int
ipc_admin_split(char *payload, uint32_t len, char **argv, int maxargs)
{
	int argc = 0;
	uint32_t start = 0;

	if (len == 0 || payload[len - 1] != '\0')
		return -1;
	for (uint32_t i = 0; i < len; i++) {
		if (payload[i] != '\0')
			continue;
		if (argc == maxargs)
			return -1;
		argv[argc++] = payload + start;
		start = i + 1;
	}
	if (argc == 0 || argv[0][0] == '\0')
		return -1;
	return argc;
}
