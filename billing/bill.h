/*
 * billing/bill: shared declarations of the billing process's modules.
 */
#ifndef SWB_BILL_H
#define SWB_BILL_H

#include <jansson.h>
#include "billing/store.h"
#include "child/child.h"
#include "child/hubkey.h"
#include "lib/msgsrv.h"

extern struct store *bill_store;
/* The ledger key: loaded by billing alone (bill_main.c), the only process
 * that holds its secret half. */
extern struct hub_key bill_key;

void bill_reply_json(struct child_env *env, uint64_t id, json_t *o);
int  bill_parse_id(const char *s, uint64_t *id);
void bill_cmd_token(struct child_env *env, uint64_t rid, int argc, char **argv);
void bill_cmd_price(struct child_env *env, uint64_t rid, int argc, char **argv);
void bill_token_get(const struct ipc_token_get *q, struct ipc_token_info *r);

/* bill_batch.c: the group commit across every client (rules there). */
void bill_batch_init(struct msg_srv *srv);
/* Open the store batch unless one is open: 1 open, 0 none (each store
 * call then commits on its own and answers leave at once). */
int  bill_batch_open(void);
int  bill_batch_is_open(void);
/* Answer c: an answer that promises something durable is held until the
 * open batch committed; look-ups and reservations are queued now.
 * 0, or -1 (c is gone or dropped). */
int  bill_send(struct msg_client *c, uint16_t type, uint64_t reqid,
    const void *p, size_t len);
/* Commit the open batch and queue what it held.  -1: it failed and was
 * rolled back; every client it held answers for was dropped, except
 * `except` (the caller's, which it drops itself). */
int  bill_batch_commit(struct msg_client *except);
/* Before each poll: commit once the batch is BILL_BATCH_WINDOW_MS old (or
 * full), then write the answers.  Returns when the loop must wake to
 * commit (monotonic ms), 0: nothing open. */
int64_t bill_batch_prepare(void);
void bill_batch_stats(uint64_t *batches, uint64_t *answers);

/* bill_charge.c: the gateways' reservations (reqid: the charge's key). */
void bill_charge_reserve(const struct msg_client *c, uint64_t reqid,
    const struct ipc_charge_reserve *q, struct ipc_charge_result *r);

/* bill_lease.c: quota leases to gateway connections (slot, serial). */
#define BILL_LEASE_MS	2000	/* a lease's life */
#define BILL_LEASE_REQS	32	/* a lease covers at most this many estimates */
/* Micro-units of token_id's quota leased to connections other than
 * (slot, serial). */
int64_t bill_lease_others(uint64_t token_id, uint32_t slot, uint32_t serial,
    int64_t now_ms);
/* What is left of (slot, serial)'s lease; an ask for a new one gives
 * it back first (release). */
int64_t bill_lease_own(uint64_t token_id, uint32_t slot, uint32_t serial,
    int64_t now_ms);
void bill_lease_release(uint64_t token_id, uint32_t slot, uint32_t serial,
    int64_t now_ms);
/* A leased reservation of est: taken from (slot, serial)'s lease. */
void bill_lease_take(uint64_t token_id, uint32_t slot, uint32_t serial,
    int64_t est, int64_t now_ms);
/* After an ask (a waited reservation of est) that left free_micros of
 * headroom beyond the others' leases: what (slot, serial)'s lease was
 * topped up by (its life starts again), 0 for nothing. */
int64_t bill_lease_grant(uint64_t token_id, uint32_t slot, uint32_t serial,
    int64_t est, int64_t free_micros, int64_t now_ms);
void bill_lease_drop_client(uint32_t slot, uint32_t serial);
void bill_lease_drop_all(void);
void bill_lease_tick(int64_t now_ms);

/* bill_job.c: video jobs (lib/ipc.h, IPC_POST_JOB_*, IPC_JOB_GET). */
void bill_job_get(const struct ipc_job_get *q, struct ipc_job_info *r);
/* A post of kind JOB_*: 0 settled (or nothing to do), 1 nothing changed,
 * -1 store error (the gateway sends it again).  key: this post's charge
 * key; post_fn posts a usage under a key as bill_ledger.c does. */
struct store_charge_usage;
int  bill_job_post(const char *key, uint64_t reqid,
    const struct ipc_charge_post *p, struct store_charge_usage *u,
    int (*post_fn)(const char *key, uint64_t agent_id,
    struct store_charge_usage *u, uint64_t reqid));

/* bill_ledger.c: posts, the ledger, the tunnel's subscription. */
/* Settle a post and answer IPC_CHARGE_POSTED on c. */
void bill_charge_post(struct msg_client *c, uint64_t reqid,
    const struct ipc_charge_post *p);
/* IPC_LEDGER_SUB (answered with IPC_LEDGER_KEY), _SYNC, _ACK, USAGE_REPORT. */
void bill_ledger_msg(struct msg_client *c, const struct msg *m);
void bill_ledger_closed(struct msg_client *c);
/* Close the tunnel's connection, discarding what is queued on it. */
void bill_ledger_drop_sub(void);
void bill_ledger_tick(struct child_env *env);
/* Before the open batch commits: sign the chains that are due
 * (bill_sign.c) and push the batch's receipts (held until the commit).
 * -1: the batch must not commit. */
int  bill_ledger_before_commit(void);
/* Sign the chains whose signature is due now (every one: force), pushing
 * the receipts; at start and after a lost batch, every stored chain whose
 * last entry is unsigned.  Outside client messages (it may commit the
 * open batch).  0, or -1. */
int  bill_ledger_sign_due(int force);
/* bill_sign.c: when billing signs a chain (the rules there).  e[0, n):
 * the entries the committing batch appended, unsigned, in order; those
 * signed get their sig in place, other chains' signed entries go to push.
 * 0, or -1 (a signature could not be stored: the batch must not commit). */
int  bill_sign_batch(struct ledger_entry *e, size_t n,
    void (*push)(const struct ledger_entry *));
/* Sign the due tails now (all of them: force), committing the open batch
 * if there is one.  0, or -1. */
int  bill_sign_run(int force, void (*push)(const struct ledger_entry *));
/* When the loop must wake for a signature (mono ms; 0 never). */
int64_t bill_sign_due(void);
/* A batch that appended entries was rolled back: forget the tails; the
 * next bill_sign_rescan finds what the store holds. */
void bill_sign_lost(void);
/* Sign every stored chain whose last entry is unsigned.  0, or -1. */
int  bill_sign_rescan(void (*push)(const struct ledger_entry *));
void bill_ledger_price_set(const struct store_price *p);
/* bill_price.c: store_price_get through the price cache (the request
 * path's reads); bill_price_forget empties it. */
int  bill_price_get(const char *model, int64_t version,
    struct store_price *out);
void bill_price_forget(void);
void bill_cmd_ledger(struct child_env *env, uint64_t rid, int argc, char **argv);
void bill_cmd_disputes(struct child_env *env, uint64_t rid, int argc,
    char **argv);

/* bill_admin.c: the operator's commands (admin-key, usage, dispute,
 * token get|update|enable|delete|requests): 1 handled, 0 not one. */
int  bill_admin_cmd(struct child_env *env, uint64_t rid, int argc, char **argv);
/* billing's backlog in the scoreboard's metrics area (every few seconds). */
void bill_admin_tick(struct child_env *env);
/* The channel a posted charge was served by (usage by channel). */
void bill_admin_note_channel(const char *charge_key, const char *channel);
/* bill_ledger.c: a message to the tunnel on its subscription (dropped
 * when the tunnel is not connected). */
void bill_ledger_to_tunnel(uint16_t type, const void *p, size_t len);

#endif
