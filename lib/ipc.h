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
#include "lib/ledger.h"
#include "lib/msg.h"

enum ipc_type {
	IPC_NONE = 0,
	IPC_READY,		/* child -> master: struct ipc_ready */
	IPC_CONFIG,		/* master -> child: struct ipc_config (hub) */
	IPC_CONFIG_ACK,		/* child -> master: struct ipc_config_ack */
	IPC_STOP,		/* master -> child: struct ipc_stop */
	IPC_ADMIN_REQ,		/* hubctl -> master -> child: argv, NUL-separated */
	IPC_ADMIN_RESP,		/* child -> master -> hubctl: JSON object text */
	IPC_AGENT_GET,		/* tunnel -> billing: struct ipc_agent_get */
	IPC_AGENT_INFO,		/* billing -> tunnel: struct ipc_agent_info */
	IPC_TOKEN_GET,		/* gateway -> billing: struct ipc_token_get */
	IPC_TOKEN_INFO,		/* billing -> gateway: struct ipc_token_info */
	IPC_RELAY_START,	/* gateway -> tunnel: struct ipc_relay_start + body */
	IPC_RELAY_HEAD,		/* tunnel -> gateway: struct ipc_relay_head */
	IPC_RELAY_CHUNK,	/* tunnel -> gateway: response bytes, as they came */
	IPC_RELAY_END,		/* tunnel -> gateway: struct ipc_relay_end */
	IPC_RELAY_CANCEL,	/* gateway -> tunnel: struct ipc_relay_cancel */
	IPC_RELAY_CREDIT,	/* gateway -> tunnel: struct ipc_relay_credit */
	IPC_MOD_CHECK,		/* gateway -> moderation: JSON {"input":[...]} */
	IPC_MOD_VERDICT,	/* moderation -> gateway: struct ipc_mod_verdict */
	IPC_CHARGE_RESERVE,	/* gateway -> billing: struct ipc_charge_reserve */
	IPC_CHARGE_RESULT,	/* billing -> gateway: struct ipc_charge_result */
	IPC_CHARGE_POST,	/* gateway -> billing: struct ipc_charge_post */
	IPC_CHARGE_POSTED,	/* billing -> gateway: struct ipc_charge_posted */
	IPC_LEDGER_SUB,		/* tunnel -> billing: struct ipc_ledger_sub */
	IPC_LEDGER_RECEIPT,	/* billing -> tunnel: struct ipc_receipt */
	IPC_LEDGER_SYNC,	/* tunnel -> billing: struct ipc_ledger_sync */
	IPC_LEDGER_SYNCED,	/* billing -> tunnel: struct ipc_ledger_sync */
	IPC_LEDGER_ACK,		/* tunnel -> billing: struct ipc_ledger_ack */
	IPC_PRICE_PUSH,		/* billing -> tunnel: struct ipc_price_push */
	IPC_USAGE_REPORT,	/* tunnel -> billing: struct ipc_usage_report */
	IPC_USAGE_RESULT,	/* billing -> tunnel: struct ipc_usage_result */
	IPC_LEDGER_KEY,		/* billing -> tunnel: struct ipc_ledger_key */
	IPC_ADMIN_HTTP,		/* admin child -> master: key hash + argv */
	IPC_ADMIN_HTTP_RESP,	/* master -> admin child: JSON object text */
	IPC_DISPUTE_RESULT,	/* billing -> tunnel: struct ipc_dispute_result */
	IPC_RELAY_WS_OUT,	/* tunnel -> gateway: struct ipc_ws_msg + data */
	IPC_RELAY_WS_IN,	/* gateway -> tunnel: struct ipc_ws_msg + data */
	IPC_JOB_GET,		/* gateway -> billing: struct ipc_job_get */
	IPC_JOB_INFO,		/* billing -> gateway: struct ipc_job_info */
	IPC_BILL_DEFER,		/* gateway -> billing: struct ipc_bill_defer */
	IPC_TYPE_MAX
};

struct ipc_ready {		/* writer: child, once after start-up */
	uint32_t instance;
	int32_t  pid;
	int32_t  uid;		/* what it runs as (after dropping root) */
	int32_t  gid;
};

struct ipc_config_ack {		/* writer: child, after applying a config */
	uint64_t gen;
};

struct ipc_stop {		/* writer: master, on SIGTERM/hubctl stop */
	int64_t drain_ms;	/* children finish in-flight work this long */
};

struct ipc_agent_get {		/* writer: tunnel, during a handshake */
	uint64_t agent_id;
};

enum ipc_agent_status { IPC_AGENT_FOUND = 0, IPC_AGENT_UNKNOWN,
	IPC_AGENT_STORE_ERROR };

struct ipc_agent_info {		/* writer: billing, answering IPC_AGENT_GET */
	uint64_t agent_id;
	uint32_t status;	/* enum ipc_agent_status */
	uint32_t enabled;
	unsigned char pubkey[32];
	char name[64];		/* NUL-terminated by the reader regardless */
	char grade;
	char pad[7];
};

struct ipc_token_get {		/* writer: gateway, on a token cache miss */
	char hash[65];		/* sha256 of the secret, lowercase hex + NUL */
	char pad[7];
};

enum ipc_token_status { IPC_TOKEN_FOUND = 0, IPC_TOKEN_UNKNOWN,
	IPC_TOKEN_STORE_ERROR };

struct ipc_token_info {		/* writer: billing, answering IPC_TOKEN_GET */
	char hash[65];		/* echoed */
	char pad[3];
	uint32_t status;	/* enum ipc_token_status */
	uint64_t id;
	uint32_t enabled;
	uint32_t pad2;
	int64_t expires_at;	/* unix s, 0 = never */
	int64_t quota_micros;	/* -1 = unlimited */
	int64_t used_micros;
	char name[64];
	char models[512];	/* comma separated; "" = any */
	char policy[8];		/* "bound", "graded", "best" */
	char min_grade;		/* graded: 'A'..'Z' */
	char pad3[7];
	char channels[512];	/* bound: "AGENT_ID[:CHANNEL],..." */
	int64_t rpm, tpm;	/* per-token limits, 0 = none */
};

/*
 * Charging a token's quota (billing/bill_charge.c).  The message header's
 * reqid is the gateway's FIRST request id of the user request (retries
 * keep it); the charge's key in the store is "NONCE-REQID" (16 lowercase
 * hex digits each), nonce being the gateway worker's random number drawn
 * at its start, so that request ids of other hubs sharing the database or
 * of a restarted worker never collide.
 */
/*
 * UNWAITED: the token has no quota, so billing cannot refuse for want of
 * it, and the gateway relays the request without waiting (gateway/
 * gw_token.c).  Billing records the reservation all the same and sends
 * no IPC_CHARGE_RESULT; a refusal (a store error; a quota set since the
 * gateway looked the token up) is only logged: the request's post makes
 * the row again and charges what it used.
 */
#define IPC_CHARGE_F_UNWAITED	0x1u
/*
 * UNLIMITED: the token had no quota when the gateway looked it up.  Set
 * on every reservation of such a token, waited or not: billing first
 * tries the row of 0 of an unwaited one (one statement, nothing held
 * against a quota there is not), and reserves as for any other token
 * only when the token has a quota now (or is gone).
 */
#define IPC_CHARGE_F_UNLIMITED	0x2u
/*
 * LEASED (with UNWAITED): taken from the quota lease billing granted this
 * connection for the token (billing/bill_lease.c): the gateway relays
 * without waiting, as for a token without a quota.  Billing reserves it
 * as any other, against the token's quota less what it leased to the
 * other connections; a refusal (the quota was lowered since) is only
 * logged, as for UNWAITED.
 */
#define IPC_CHARGE_F_LEASED	0x4u
/* LEASE_OK: an ask for a lease — a reservation waited for, of a token
 * and model the gateway would use one for (not a Realtime response's,
 * not a video job's), which gives back what is left of the connection's
 * lease first; at most one is out per token and gateway worker. */
#define IPC_CHARGE_F_LEASE_OK	0x8u
struct ipc_charge_reserve {	/* writer: gateway, before the relay */
	uint64_t token_id;
	uint64_t nonce;		/* the worker's, for the charge's key */
	int64_t est_tokens;	/* lib/tokest estimate of the request */
	char model[128];	/* billing prices est_tokens with it */
	int64_t est_video_seconds;	/* a video job's (priced per second) */
	uint32_t flags;		/* IPC_CHARGE_F_* */
	uint32_t pad;
};

enum ipc_charge_status { IPC_CHARGE_OK = 0, IPC_CHARGE_INSUFFICIENT,
	IPC_CHARGE_ERROR };

struct ipc_charge_result {	/* writer: billing, after the store committed */
	uint64_t token_id;	/* echoed */
	uint32_t status;	/* enum ipc_charge_status */
	uint32_t pad;
	int64_t estimate_micros;	/* what was reserved */
	/* A lease (status OK, asked with IPC_CHARGE_F_LEASE_OK; 0: none):
	 * lease_micros of the token's headroom are this connection's for
	 * lease_ms, for reservations of the same model estimated at
	 * price_micros (micro-units per 1,000,000 estimated tokens, what
	 * billing priced this one at). */
	int64_t lease_micros;
	int64_t lease_ms;
	int64_t price_micros;
};

/*
 * How a request ended, and so whose numbers settle it (the rule is in
 * billing/bill_ledger.c):
 *   VOID   nothing was served (an error before any byte): no cost;
 *   HUB    the hub read the provider's usage from the stream it relayed;
 *   AGENT  the stream was cut short but the agent's end (resp_end) arrived
 *          with the usage it read: the agent's numbers;
 *   AWAIT  the stream was cut short and the agent's end never arrived (the
 *          user left, or the agent was lost): the usage fields are the
 *          hub's estimate of what it relayed (usage_estimate_cut), billed
 *          only if the agent does not report within [billing]
 *          report_grace.
 */
enum ipc_post_how { IPC_POST_VOID = 0, IPC_POST_HUB, IPC_POST_AGENT,
	IPC_POST_AWAIT,
	/*
	 * Video jobs (billing/bill_job.c), `job` naming the job:
	 *   JOB_OPEN    a create the provider accepted: the job is stored
	 *               (agent, channel, token, model, this charge's key) and
	 *               this charge stays reserved (the estimate) until the
	 *               job ends;
	 *   JOB_DONE    a retrieve that read the job completed, with its
	 *               usage (video seconds): the first one ends the job and
	 *               is posted as HUB, the create's reservation voided;
	 *               any later one is voided (billed once);
	 *   JOB_FAILED  a retrieve that read the job failed: the job ends,
	 *               the create's reservation is voided, this charge
	 *               posted as HUB (its usage: none).
	 */
	IPC_POST_JOB_OPEN, IPC_POST_JOB_DONE, IPC_POST_JOB_FAILED };

struct ipc_charge_post {	/* writer: gateway, when the request ended */
	uint64_t token_id;
	uint64_t nonce;		/* as in its ipc_charge_reserve */
	uint32_t how;		/* enum ipc_post_how */
	uint32_t pad;
	uint64_t agent_id;	/* whose channel served it (0 with VOID) */
	int64_t input_tokens;	/* usage, as `how` says (struct usage) */
	int64_t output_tokens;
	int64_t cached_tokens;
	int64_t cache_write_tokens;
	char model[128];
	char channel[32];	/* the agent's channel that served it */
	int64_t images;		/* units that are not tokens (struct usage) */
	int64_t audio_seconds;
	int64_t audio_chars;
	int64_t video_seconds;
	char job[64];		/* JOB_*: the provider's job id */
};

/*
 * A video job's follow-up (GET /v1/videos/{id}[/content]): which agent
 * channel holds job `id` for token_id.  Header reqid: the gateway's
 * request id, echoed.  A job of another token is answered UNKNOWN, as
 * one that does not exist.
 */
struct ipc_job_get {		/* writer: gateway */
	uint64_t token_id;
	char id[64];
};

/*
 * The first message of a gateway's second connection to billing.sock: its
 * messages can wait (lib/msgsrv.h, Deferred clients).  On it the gateway
 * sends only unwaited reservations and posts; billing answers only posts
 * (bill_defer_server_rules); anything else drops the connection.
 */
struct ipc_bill_defer {		/* writer: gateway */
	uint64_t reserved;	/* 0 */
};

enum ipc_job_status { IPC_JOB_FOUND = 0, IPC_JOB_UNKNOWN, IPC_JOB_ERROR };

struct ipc_job_info {		/* writer: billing */
	uint32_t status;	/* enum ipc_job_status */
	uint32_t pad;
	uint64_t agent_id;
	char channel[32];
	char model[128];
	char state[16];		/* queued completed failed */
};

/*
 * Billing's answer to a post, once the store committed it (or knew it was
 * settled before).  The gateway keeps a post and sends it again after
 * billing restarts until this arrives, so a post is never lost and, being
 * idempotent by charge key, never counted twice.
 */
enum ipc_posted_status { IPC_POSTED_OK = 0, IPC_POSTED_RETRY };

enum ipc_posted_state { IPC_POSTED_VOIDED = 0, IPC_POSTED_CHARGED,
	IPC_POSTED_AWAITING };

struct ipc_charge_posted {	/* writer: billing */
	uint64_t nonce;		/* echoed; the header's reqid too */
	uint32_t status;	/* enum ipc_posted_status */
	uint32_t state;		/* enum ipc_posted_state (status OK only) */
	int64_t amount;		/* micro-units charged (CHARGED), the hub's
				 * estimate (AWAITING), 0 (VOIDED) */
};

/*
 * The ledger between billing and the tunnel (billing/bill_ledger.c,
 * tunnel/tun_ledger.c).  The tunnel subscribes once per connection; from
 * then on billing pushes receipts of new entries and price changes on
 * that connection, and answers syncs and usage reports on it.  Header
 * reqid: 0.  Strings are NUL-terminated by the reader.
 */
struct ipc_ledger_sub {		/* writer: tunnel, when billing.sock is up */
	int32_t pid;
	uint32_t pad;
};

/*
 * Billing's first answer to IPC_LEDGER_SUB: the public half of the hub's
 * ledger key, which the tunnel hands to agents in welcome.  The secret
 * half never leaves billing (the only process that reads the key file).
 */
struct ipc_ledger_key {		/* writer: billing */
	unsigned char pk[32];
};

struct ipc_receipt {		/* writer: billing: one entry for one agent */
	struct ledger_entry e;	/* a flat struct, no pointers (lib/ledger.h) */
};

struct ipc_ledger_sync {	/* writer: tunnel (agent's sync) / billing */
	uint64_t agent_id;
	uint64_t seq;		/* SYNC: the agent's last; SYNCED: the hub's head */
	char hash[65];		/* SYNC: the agent's last hash */
	char pad[7];
};

struct ipc_ledger_ack {		/* writer: tunnel, from the agent's receipt_ack */
	uint64_t agent_id;
	uint64_t seq;
	uint32_t ok;		/* 0: the agent disputes this entry */
	uint32_t stored;	/* 1: it extended the agent's chain */
	int64_t agent_amount;	/* the agent's own amount, -1 unknown */
	char hash[65];
	char reason[160];
	char pad[7];
};

struct ipc_price_push {		/* writer: billing: a price version */
	uint64_t agent_id;	/* 0: every online agent */
	int64_t version;
	int64_t input, output, cached_input, cache_write;
	char model[128];
	int64_t image, audio_second, audio_char, video_second;	/* per unit */
};

struct ipc_usage_report {	/* writer: tunnel, from an agent's usage frame */
	uint64_t agent_id;
	int64_t input_tokens;
	int64_t output_tokens;
	int64_t cached_tokens;
	int64_t cache_write_tokens;
	uint32_t estimated;
	uint32_t pad;
	char request_id[64];
	char model[128];
};

struct ipc_usage_result {	/* writer: billing */
	uint64_t agent_id;
	char request_id[64];
	char result[16];	/* "settled" "already" "ignored" "retry" */
};

/*
 * An operator resolved a dispute (hubctl dispute resolve, POST
 * /admin/disputes/ID/resolve): the agent that raised it learns the
 * outcome in a dispute_result frame when it is online.
 */
struct ipc_dispute_result {	/* writer: billing */
	uint64_t agent_id;
	uint64_t seq;
	char request_id[64];
	char status[16];	/* "accepted" "rejected" */
	char reason[160];	/* the operator's words, printable */
};

/*
 * The admin HTTP API (admin/): the admin child forwards each request to
 * the master as IPC_ADMIN_HTTP, payload = the SHA-256 of the admin key
 * it was given (64 lowercase hex digits, or "" when none) followed by the
 * command's argv, all NUL-separated, exactly as hubctl's IPC_ADMIN_REQ.
 * The master checks the key with billing before it runs the command and
 * answers IPC_ADMIN_HTTP_RESP (same reqid) with the command's JSON, or
 * {"ok":false,"error":"unauthorized","status":401}.
 */

/*
 * The relay of one user request (reqid = the gateway's request id, unique
 * per hub: worker pid in the high 32 bits).  Writer of each: as named.
 */
struct ipc_relay_start {	/* gateway; the request body follows */
	uint64_t agent_id;	/* owner of the chosen channel */
	uint32_t chan_slot;	/* scoreboard channel slot */
	uint32_t body_len;	/* bytes after this struct; must match */
	char channel[32];	/* the agent's channel name */
	char op[24];		/* lib/prov operation name: "chat", "messages" */
	char model[128];	/* as the channel announced it */
	uint32_t stream;	/* the user asked for a stream */
	uint32_t pad;
	char content_type[128];	/* a multipart body's boundary included */
	char request_id[64];	/* the charge key: the ledger's request id */
	char resource[64];	/* op-specific id (a video job), or "" */
	char anthropic_version[32];	/* passed on from the user, or "" */
	char anthropic_beta[128];
};

struct ipc_relay_head {		/* tunnel, from the agent's RESP_HEAD */
	int32_t status;
	uint32_t pad;
	char content_type[128];
};

struct ipc_relay_end {		/* tunnel, from RESP_END or a lost agent */
	uint32_t ok;		/* 0: the stream broke (error says why) */
	uint32_t agent_lost;	/* 1: the tunnel to the agent went away */
	char error[160];
	int64_t input_tokens;	/* usage the agent read, when it did */
	int64_t output_tokens;
	int64_t cached_tokens;
	uint32_t usage_seen;	/* 1: resp_end carried the agent's usage */
	uint32_t pad;
};

/*
 * Flow control (lib/frame.h, FLOW CONTROL): the gateway gives the stream
 * back this many bytes of its window, as many IPC_RELAY_CHUNK payload
 * bytes as it took in and no longer holds for the user (never more than
 * it received and has not credited yet).  The tunnel adds them to its own
 * view of the window and passes them on to the agent as a credit frame.
 */
struct ipc_relay_credit {	/* gateway, as its user's socket drains */
	uint32_t bytes;		/* 1 .. FRAME_WINDOW */
	uint32_t pad;
};

/*
 * One WebSocket message of a Realtime session (lib/frame.h ws_msg), the
 * message's bytes after the struct.  OUT: the provider's, from the agent
 * (its bytes count as IPC_RELAY_CHUNK bytes do for the stream's window);
 * IN: the user's, to the agent.
 */
struct ipc_ws_msg {		/* writer: tunnel (OUT) or gateway (IN) */
	uint32_t text;		/* 1 text, 0 binary */
	uint32_t pad;
};

/*
 * The charge of one response of a Realtime session: the session's own
 * charge key "NONCE-REQID" and the response's number n (1, 2, ... in the
 * order the provider's response.done events came) give the response's
 * charge: nonce = a 64-bit mix of NONCE and REQID, reqid = n, its key
 * ipc_charge_key(nonce, n).  The gateway (which bills it) and the agent
 * (which records it served) both derive it, so both ledgers name the
 * response alike.  -1: session_key is not "NONCE-REQID" or n is 0.
 */
int ipc_response_charge(const char *session_key, uint64_t n, uint64_t *nonce,
    uint64_t *reqid);

struct ipc_relay_cancel {	/* gateway: the user went away */
	uint32_t reason;
	uint32_t pad;
};

/*
 * Moderation.  IPC_MOD_CHECK carries the request's text and image URLs as
 * the body of an OpenAI moderations request ({"input":[{"type":"text",
 * "text":...},{"type":"image_url","image_url":{"url":...}}]}), without the
 * model, which the moderation process adds from its config.
 */
enum ipc_mod_result {
	IPC_MOD_ALLOW = 0,	/* not flagged (or the service failed, fail-open) */
	IPC_MOD_FLAGGED,	/* flagged: the gateway refuses the request */
	IPC_MOD_UNAVAILABLE,	/* the service failed and fail-open is off */
};

struct ipc_mod_verdict {	/* writer: moderation, one per IPC_MOD_CHECK */
	uint32_t result;	/* enum ipc_mod_result */
	uint32_t cached;	/* 1: answered from the verdict cache */
	char detail[160];	/* why, for the log (categories or the error) */
};

#define IPC_ADMIN_MAX	(64u * 1024)		/* request argv bytes */
#define IPC_ADMIN_RESP_MAX (4u * 1024 * 1024)	/* response JSON bytes */

/*
 * Rule tables, one per END of each kind of connection (lib/msg.h): an end
 * receives only what the other end sends, so a reply type arriving on the
 * request side is refused at the header.
 */
/* billing.sock: billing's end (requests of gateways and the tunnel in,
 * answers and pushes out), a gateway's end, the tunnel's end. */
extern const struct msg_rules bill_server_rules;
extern const struct msg_rules bill_gw_rules;
extern const struct msg_rules bill_tun_rules;
/* billing's end of a deferred gateway connection (IPC_BILL_DEFER). */
extern const struct msg_rules bill_defer_server_rules;

/* tunnel.sock: the tunnel's end (relay requests in) and a gateway's end. */
extern const struct msg_rules relay_tun_rules;
extern const struct msg_rules relay_gw_rules;
/* Both directions on either end: only for code not yet moved to the two
 * tables above (tunnel/tun_relay.c, gateway/gw_relay.c). */
extern const struct msg_rules relay_rules;

/* moderation.sock: moderation's end (checks in) and a gateway's end. */
extern const struct msg_rules mod_server_rules;
extern const struct msg_rules mod_gw_rules;

/* hubd.sock: the master's end (ADMIN_REQ in, ADMIN_RESP out) and hubctl's. */
extern const struct msg_rules ipc_admin_server_rules;
extern const struct msg_rules ipc_admin_client_rules;

/*
 * Split an ADMIN_REQ payload (args separated by NUL) into argv.  Returns
 * argc (>= 1), or -1 when empty, too many args or not NUL-terminated.
 */
int ipc_admin_split(char *payload, uint32_t len, char **argv, int maxargs);

/* A charge's key, "NONCE-REQID" (16 lowercase hex digits each; see
 * struct ipc_charge_reserve): billing's key in the store, the ledger's
 * request id, the user's x-request-id.  len >= 34. */
void ipc_charge_key(uint64_t nonce, uint64_t reqid, char *out, size_t len);

#endif
