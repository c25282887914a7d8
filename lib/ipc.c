/*
 * lib/ipc: shared rule tables of the connections, argv packing and the
 * charge key format.
 */
#include "lib/ipc.h"
#include "lib/str.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#define FIXED(t, name, type) [t] = { name, sizeof(type), sizeof(type) }

/* hubctl -> master, master -> hubctl. */
static const struct msg_rule admin_req[IPC_TYPE_MAX] = {
	[IPC_ADMIN_REQ] = { "admin-req", 1, IPC_ADMIN_MAX },
};
static const struct msg_rule admin_resp[IPC_TYPE_MAX] = {
	[IPC_ADMIN_RESP] = { "admin-resp", 2, IPC_ADMIN_RESP_MAX },
};

const struct msg_rules ipc_admin_server_rules = {
	{ admin_req, IPC_TYPE_MAX }, { admin_resp, IPC_TYPE_MAX } };
const struct msg_rules ipc_admin_client_rules = {
	{ admin_resp, IPC_TYPE_MAX }, { admin_req, IPC_TYPE_MAX } };

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

/* billing.sock, what gateways send and receive (what may wait, on a
 * deferred connection, first) ... */
#define GW_TO_BILL_LATER \
	FIXED(IPC_CHARGE_RESERVE, "charge-reserve", struct ipc_charge_reserve), \
	FIXED(IPC_CHARGE_POST, "charge-post", struct ipc_charge_post)
#define BILL_TO_GW_LATER \
	FIXED(IPC_CHARGE_POSTED, "charge-posted", struct ipc_charge_posted)
#define GW_TO_BILL \
	FIXED(IPC_TOKEN_GET, "token-get", struct ipc_token_get), \
	GW_TO_BILL_LATER, \
	FIXED(IPC_JOB_GET, "job-get", struct ipc_job_get), \
	FIXED(IPC_BILL_DEFER, "bill-defer", struct ipc_bill_defer)
#define BILL_TO_GW \
	FIXED(IPC_TOKEN_INFO, "token-info", struct ipc_token_info), \
	FIXED(IPC_CHARGE_RESULT, "charge-result", struct ipc_charge_result), \
	BILL_TO_GW_LATER, \
	FIXED(IPC_JOB_INFO, "job-info", struct ipc_job_info)
/* ... and what the tunnel sends and receives. */
#define TUN_TO_BILL \
	FIXED(IPC_AGENT_GET, "agent-get", struct ipc_agent_get), \
	FIXED(IPC_LEDGER_SUB, "ledger-sub", struct ipc_ledger_sub), \
	FIXED(IPC_LEDGER_SYNC, "ledger-sync", struct ipc_ledger_sync), \
	FIXED(IPC_LEDGER_ACK, "ledger-ack", struct ipc_ledger_ack), \
	FIXED(IPC_USAGE_REPORT, "usage-report", struct ipc_usage_report)
#define BILL_TO_TUN \
	FIXED(IPC_AGENT_INFO, "agent-info", struct ipc_agent_info), \
	FIXED(IPC_LEDGER_KEY, "ledger-key", struct ipc_ledger_key), \
	FIXED(IPC_LEDGER_RECEIPT, "ledger-receipt", struct ipc_receipt), \
	FIXED(IPC_LEDGER_SYNCED, "ledger-synced", struct ipc_ledger_sync), \
	FIXED(IPC_PRICE_PUSH, "price-push", struct ipc_price_push), \
	FIXED(IPC_USAGE_RESULT, "usage-result", struct ipc_usage_result), \
	FIXED(IPC_DISPUTE_RESULT, "dispute-result", struct ipc_dispute_result)

static const struct msg_rule bill_req[IPC_TYPE_MAX] = { GW_TO_BILL, TUN_TO_BILL };
static const struct msg_rule bill_ans[IPC_TYPE_MAX] = { BILL_TO_GW, BILL_TO_TUN };
static const struct msg_rule gw_to_bill[IPC_TYPE_MAX] = { GW_TO_BILL };
static const struct msg_rule bill_to_gw[IPC_TYPE_MAX] = { BILL_TO_GW };
static const struct msg_rule tun_to_bill[IPC_TYPE_MAX] = { TUN_TO_BILL };
static const struct msg_rule bill_to_tun[IPC_TYPE_MAX] = { BILL_TO_TUN };

const struct msg_rules bill_server_rules = {
	{ bill_req, IPC_TYPE_MAX }, { bill_ans, IPC_TYPE_MAX } };
const struct msg_rules bill_gw_rules = {
	{ bill_to_gw, IPC_TYPE_MAX }, { gw_to_bill, IPC_TYPE_MAX } };
/* A deferred gateway connection: posts and unwaited reservations in,
 * post acknowledgements out. */
static const struct msg_rule defer_req[IPC_TYPE_MAX] = { GW_TO_BILL_LATER };
static const struct msg_rule defer_ans[IPC_TYPE_MAX] = { BILL_TO_GW_LATER };
const struct msg_rules bill_defer_server_rules = {
	{ defer_req, IPC_TYPE_MAX }, { defer_ans, IPC_TYPE_MAX } };
const struct msg_rules bill_tun_rules = {
	{ bill_to_tun, IPC_TYPE_MAX }, { tun_to_bill, IPC_TYPE_MAX } };

/* tunnel.sock. */
#define GW_TO_TUN \
	[IPC_RELAY_START] = { "relay-start", sizeof(struct ipc_relay_start), \
	    MSG_MAX }, \
	FIXED(IPC_RELAY_CANCEL, "relay-cancel", struct ipc_relay_cancel), \
	FIXED(IPC_RELAY_CREDIT, "relay-credit", struct ipc_relay_credit), \
	[IPC_RELAY_WS_IN] = { "relay-ws-in", sizeof(struct ipc_ws_msg), \
	    MSG_MAX }
#define TUN_TO_GW \
	FIXED(IPC_RELAY_HEAD, "relay-head", struct ipc_relay_head), \
	[IPC_RELAY_CHUNK] = { "relay-chunk", 1, MSG_MAX }, \
	FIXED(IPC_RELAY_END, "relay-end", struct ipc_relay_end), \
	[IPC_RELAY_WS_OUT] = { "relay-ws-out", sizeof(struct ipc_ws_msg), \
	    MSG_MAX }

static const struct msg_rule relay_req[IPC_TYPE_MAX] = { GW_TO_TUN };
static const struct msg_rule relay_ans[IPC_TYPE_MAX] = { TUN_TO_GW };
static const struct msg_rule relay_both[IPC_TYPE_MAX] = { GW_TO_TUN, TUN_TO_GW };

const struct msg_rules relay_tun_rules = {
	{ relay_req, IPC_TYPE_MAX }, { relay_ans, IPC_TYPE_MAX } };
const struct msg_rules relay_gw_rules = {
	{ relay_ans, IPC_TYPE_MAX }, { relay_req, IPC_TYPE_MAX } };
const struct msg_rules relay_rules = {
	{ relay_both, IPC_TYPE_MAX }, { relay_both, IPC_TYPE_MAX } };

/* moderation.sock. */
static const struct msg_rule mod_req[IPC_TYPE_MAX] = {
	[IPC_MOD_CHECK] = { "mod-check", 2, MSG_MAX },
};
static const struct msg_rule mod_ans[IPC_TYPE_MAX] = {
	FIXED(IPC_MOD_VERDICT, "mod-verdict", struct ipc_mod_verdict),
};

const struct msg_rules mod_server_rules = {
	{ mod_req, IPC_TYPE_MAX }, { mod_ans, IPC_TYPE_MAX } };
const struct msg_rules mod_gw_rules = {
	{ mod_ans, IPC_TYPE_MAX }, { mod_req, IPC_TYPE_MAX } };

void
ipc_charge_key(uint64_t nonce, uint64_t reqid, char *out, size_t len)
{
	char k[34];

	/* Twice per request: no printf. */
	str_hex16(k, nonce);
	k[16] = '-';
	str_hex16(k + 17, reqid);
	k[33] = '\0';
	(void)str_copy(out, len, k);
}

/* splitmix64's finaliser: a fixed, well-mixed 64-bit function. */
static uint64_t
mix64(uint64_t z)
{
	z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
	z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
	return z ^ (z >> 31);
}

int
ipc_response_charge(const char *session_key, uint64_t n, uint64_t *nonce,
    uint64_t *reqid)
{
	uint64_t a = 0, b = 0;
	size_t i;

	if (session_key == NULL || n == 0 || strlen(session_key) != 33 ||
	    session_key[16] != '-')
		return -1;
	for (i = 0; i < 33; i++) {
		int c = session_key[i], v;

		if (i == 16)
			continue;
		if (c >= '0' && c <= '9')
			v = c - '0';
		else if (c >= 'a' && c <= 'f')
			v = c - 'a' + 10;
		else
			return -1;
		if (i < 16)
			a = a << 4 | (uint64_t)v;
		else
			b = b << 4 | (uint64_t)v;
	}
	*nonce = mix64(a ^ mix64(b ^ UINT64_C(0x7265616c74696d65)));
	*reqid = n;
	return 0;
}
