/*
 * lib/ipc: shared rule tables of the connections, argv packing and the
 * charge key format.
 */
#include "lib/ipc.h"

#include <inttypes.h>
#include <stdio.h>

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

static const struct msg_rule bill_rule[IPC_TYPE_MAX] = {
	[IPC_AGENT_GET] = { "agent-get", sizeof(struct ipc_agent_get),
	    sizeof(struct ipc_agent_get) },
	[IPC_AGENT_INFO] = { "agent-info", sizeof(struct ipc_agent_info),
	    sizeof(struct ipc_agent_info) },
	[IPC_TOKEN_GET] = { "token-get", sizeof(struct ipc_token_get),
	    sizeof(struct ipc_token_get) },
	[IPC_TOKEN_INFO] = { "token-info", sizeof(struct ipc_token_info),
	    sizeof(struct ipc_token_info) },
	[IPC_CHARGE_RESERVE] = { "charge-reserve",
	    sizeof(struct ipc_charge_reserve), sizeof(struct ipc_charge_reserve) },
	[IPC_CHARGE_RESULT] = { "charge-result",
	    sizeof(struct ipc_charge_result), sizeof(struct ipc_charge_result) },
	[IPC_CHARGE_POST] = { "charge-post", sizeof(struct ipc_charge_post),
	    sizeof(struct ipc_charge_post) },
#define FIXED(t, name, type) [t] = { name, sizeof(type), sizeof(type) }
	FIXED(IPC_CHARGE_POSTED, "charge-posted", struct ipc_charge_posted),
	FIXED(IPC_LEDGER_SUB, "ledger-sub", struct ipc_ledger_sub),
	FIXED(IPC_LEDGER_RECEIPT, "ledger-receipt", struct ipc_receipt),
	FIXED(IPC_LEDGER_SYNC, "ledger-sync", struct ipc_ledger_sync),
	FIXED(IPC_LEDGER_SYNCED, "ledger-synced", struct ipc_ledger_sync),
	FIXED(IPC_LEDGER_ACK, "ledger-ack", struct ipc_ledger_ack),
	FIXED(IPC_PRICE_PUSH, "price-push", struct ipc_price_push),
	FIXED(IPC_USAGE_REPORT, "usage-report", struct ipc_usage_report),
	FIXED(IPC_USAGE_RESULT, "usage-result", struct ipc_usage_result),
#undef FIXED
};

const struct msg_rules bill_rules = { bill_rule, IPC_TYPE_MAX };

static const struct msg_rule relay_rule[IPC_TYPE_MAX] = {
	[IPC_RELAY_START] = { "relay-start", sizeof(struct ipc_relay_start),
	    MSG_MAX },
	[IPC_RELAY_HEAD] = { "relay-head", sizeof(struct ipc_relay_head),
	    sizeof(struct ipc_relay_head) },
	[IPC_RELAY_CHUNK] = { "relay-chunk", 1, MSG_MAX },
	[IPC_RELAY_END] = { "relay-end", sizeof(struct ipc_relay_end),
	    sizeof(struct ipc_relay_end) },
	[IPC_RELAY_CANCEL] = { "relay-cancel", sizeof(struct ipc_relay_cancel),
	    sizeof(struct ipc_relay_cancel) },
	[IPC_RELAY_CREDIT] = { "relay-credit", sizeof(struct ipc_relay_credit),
	    sizeof(struct ipc_relay_credit) },
};

const struct msg_rules relay_rules = { relay_rule, IPC_TYPE_MAX };

static const struct msg_rule mod_rule[IPC_TYPE_MAX] = {
	[IPC_MOD_CHECK] = { "mod-check", 2, MSG_MAX },
	[IPC_MOD_VERDICT] = { "mod-verdict", sizeof(struct ipc_mod_verdict),
	    sizeof(struct ipc_mod_verdict) },
};

const struct msg_rules mod_rules = { mod_rule, IPC_TYPE_MAX };

void
ipc_charge_key(uint64_t nonce, uint64_t reqid, char *out, size_t len)
{
	snprintf(out, len, "%016" PRIx64 "-%016" PRIx64, nonce, reqid);
}
