/*
 * agent/ag_ledger: the agent's own billing records, in one SQLite database
 * <state_dir>/ledger.db (mode 0600, WAL): the hub's ledger key per agent
 * id, the price table the hub announced, the streams this agent served,
 * its copy of the hub's hash-chained ledger (every receipt, checked link
 * by link against the hub's key) and the disputes it raised.  It owns the
 * schema and its migrations, and the one decision about a receipt
 * (ag_ledger_receipt_apply): store, replay, conflict, gap, refusal or
 * dispute.  It does no network I/O; agent/ag_bill turns the verdicts
 * into frames, agent/main prints exports and verifications.  The code is
 * split by job (agent/ag_ledger_int.h): ag_ledger.c the database core,
 * ag_ledger_hub.c the hub's keys and prices, ag_ledger_served.c the
 * served streams, ag_ledger_store.c the chain, the receipts and their
 * disputes, ag_ledger_export.c the ledger commands' reads.
 *
 * Every call is short and local (a few rows, one transaction) and runs on
 * the caller's thread; nothing here is thread-safe: one thread per handle.
 */
#ifndef SWB_AG_LEDGER_H
#define SWB_AG_LEDGER_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include "lib/ledger.h"
#include "lib/money.h"

#define AG_LEDGER_FILE		"ledger.db"
#define AG_LEDGER_REASON_MAX	160
#define AG_LEDGER_BATCH_MAX	1024	/* unsigned receipts held in a row */

struct ag_ledger;

/* ag_ledger_open flags. */
#define AG_LEDGER_CREATE	0x1	/* create the directory and the file */
/* WAL checkpoints in a thread of their own, never in a commit of this
 * handle (agentd's loop; agent/ag_ckpt.c). */
#define AG_LEDGER_CHECKPOINTER	0x2

/*
 * Open <state_dir>/ledger.db and bring its schema up to date.  With
 * AG_LEDGER_CREATE the directory (0700) and the file (0600) are made when
 * missing; without it a missing file is an error (the CLI commands).  A
 * database written by a newer agentd (a schema version this one does not
 * know) is refused.  NULL with err filled on failure.
 */
struct ag_ledger *ag_ledger_open(const char *state_dir, int flags,
    char *err, size_t errlen);
void ag_ledger_close(struct ag_ledger *lg);	/* flushes first */
/* Group writes: from now on every write joins one transaction, opened by
 * the first write (armed(arg) is called then) and committed by
 * ag_ledger_flush.  0, or -1 (the group was rolled back: its writes are
 * lost, ag_ledger_error says why).  While a signed batch is being stored
 * (AG_RCPT_STORING) it commits nothing and calls armed(arg) again. */
void ag_ledger_group(struct ag_ledger *lg, void (*armed)(void *), void *arg);
int  ag_ledger_flush(struct ag_ledger *lg);
/* 1 when s[0, len) is 1..max bytes of printable ASCII without ',' and
 * '"' (lib/ledger's rule for request ids and models), else 0. */
int ag_ledger_text_ok(const char *s, size_t len, size_t max);

/* The last error of a call that returned -1. */
const char *ag_ledger_error(const struct ag_ledger *lg);

/*
 * The hub's Ed25519 ledger key for agent_id, learned from the welcome
 * frame (trusted because the tunnel's TLS is pinned).  set: 0 stored now
 * or already the same, 1 a different key is stored (the new one is
 * refused, nothing changes), -1 error.  get: 0 found, 1 none, -1 error.
 */
int ag_ledger_hub_key_set(struct ag_ledger *lg, uint64_t agent_id,
    const unsigned char pk[LEDGER_PK_LEN]);
int ag_ledger_hub_key_get(struct ag_ledger *lg, uint64_t agent_id,
    unsigned char pk[LEDGER_PK_LEN]);

/*
 * A model's prices at one version (micro-units per 1M tokens).  A version
 * never changes: put returns 0 stored now or already identical, 1 the
 * version is stored with other prices (refused), -1 error (also for a
 * model outside 1..LEDGER_MODEL_MAX printable bytes, a version < 1 or a
 * negative price).  get: 0 found, 1 none, -1 error.  Version 0 means "the
 * model had no price" and is never stored: get answers all zeros.
 */
int ag_ledger_price_put(struct ag_ledger *lg, const char *model,
    int64_t version, const struct money_prices *p);
int ag_ledger_price_get(struct ag_ledger *lg, const char *model,
    int64_t version, struct money_prices *p);

/* States of a served stream. */
enum ag_served_state {
	AG_SERVED_OPEN,		/* no receipt, no settled usage report yet */
	AG_SERVED_REPORTED,	/* the hub answered our usage frame */
	AG_SERVED_RECEIPTED	/* a receipt for it is in the ledger */
};

/* One stream this agent served: a row of the served table. */
struct ag_served {
	char	 request_id[LEDGER_REQID_MAX + 1];	/* the hub's id */
	uint64_t agent_id;		/* the link that served it */
	char	 model[LEDGER_MODEL_MAX + 1];	/* the body's "model"; may be "" */
	int64_t	 input_tokens;		/* struct usage, after */
	int64_t	 output_tokens;		/*   usage_estimate_cut */
	int64_t	 cached_tokens;
	int64_t	 cache_write_tokens;
	int	 estimated;		/* 1: the provider's usage never came */
	int	 state;			/* enum ag_served_state */
	int64_t	 created_at;		/* unix ms when the stream ended */
	int64_t	 reported_at;		/* unix ms of the last usage frame; 0 */
	int64_t	 images;		/* units that are not tokens */
	int64_t	 audio_seconds;		/*   (struct usage) */
	int64_t	 audio_chars;
	int64_t	 video_seconds;
};

/*
 * Record a served stream (state open, or receipted when the ledger already
 * holds its receipt; reported_at 0; created_at as given).  0 recorded,
 * 1 the request id was already recorded (nothing changes), -1 error.
 */
int ag_ledger_served_record(struct ag_ledger *lg, const struct ag_served *s);
/* 0 found, 1 none, -1 error. */
int ag_ledger_served_get(struct ag_ledger *lg, const char *request_id,
    struct ag_served *out);
/* Where a walk of the records due a report stands: zeroed before its
 * first page, moved past each page by ag_ledger_served_due. */
struct ag_served_page {
	int64_t	 created_at;		/* the last record's */
	int64_t	 row;			/* and its rowid */
};
/*
 * Open records created before created_before and last reported before
 * reported_before (never reported counts as 0), oldest first, after *pg's
 * place, at most max into out; *pg moves past them.  Records the caller
 * skips (their link is down) so never hold up the ones behind them.
 * Returns how many, or -1.
 */
int ag_ledger_served_due(struct ag_ledger *lg, int64_t created_before,
    int64_t reported_before, struct ag_served_page *pg, struct ag_served *out,
    size_t max);
/* A usage frame for it was sent at now_ms.  0 or -1. */
int ag_ledger_served_sent(struct ag_ledger *lg, const char *request_id,
    int64_t now_ms);
/*
 * Move request_id of agent_id to state: reported only from open,
 * receipted from any.  0 changed, 1 no such open record, -1 error.
 */
int ag_ledger_served_mark(struct ag_ledger *lg, uint64_t agent_id,
    const char *request_id, enum ag_served_state state);

/*
 * The end of agent_id's chain: 0 and the last entry in *head, 1 the chain
 * is empty (*head zeroed, seq 0, hash LEDGER_GENESIS), -1 error.
 */
int ag_ledger_head(struct ag_ledger *lg, uint64_t agent_id,
    struct ledger_entry *head);
/* One stored entry.  0 found, 1 none, -1 error. */
int ag_ledger_get(struct ag_ledger *lg, uint64_t agent_id, uint64_t seq,
    struct ledger_entry *out);

/* What ag_ledger_receipt_apply made of a receipt. */
enum ag_receipt_verdict {
	AG_RCPT_STORED,		/* extended the chain and checks out */
	AG_RCPT_DISPUTE,	/* extended the chain; the agent disagrees */
	AG_RCPT_REPLAY,		/* already stored with the same hash */
	AG_RCPT_CONFLICT,	/* that seq is stored with another hash */
	AG_RCPT_GAP,		/* seq > head + 1: entries are missing */
	AG_RCPT_REFUSED,	/* does not extend the chain (why in reason) */
	AG_RCPT_PENDING,	/* unsigned, links: held for its batch's
				 * signed last entry; no ack yet */
	AG_RCPT_STORING,	/* signed and good: its batch is being
				 * stored, a slice a call
				 * (ag_ledger_receipt_continue); no ack yet */
	AG_RCPT_ERROR		/* the database failed: no answer */
};

/*
 * The verdict and what the receipt_ack says (none for GAP and ERROR):
 *   STORED    ok=1 stored=1
 *   DISPUTE   ok=0 stored=1 reason, agent_amount (-1: could not price)
 *   REPLAY    as the first time: ok=1 stored=1, or the dispute again
 *   CONFLICT  ok=0 stored=0 reason "conflict"
 *   REFUSED   ok=0 stored=0 reason
 */
struct ag_receipt_result {
	enum ag_receipt_verdict verdict;
	int	 ok, stored;
	char	 reason[AG_LEDGER_REASON_MAX];	/* "" when ok */
	int64_t	 agent_amount;		/* disputes: -1 unknown */
	int	 served;		/* a served record matched the receipt */
	uint64_t head_seq;		/* the chain's head afterwards */
};

/*
 * Apply one receipt from the hub (e->agent_id is the link's).  In one
 * transaction: seq <= head compares with the stored hash (REPLAY or
 * CONFLICT); seq past the end of the chain and of the pending batch is a
 * GAP; then ledger_check_link against the last entry (pending, else the
 * head) with the stored hub key (no key, bad fields, prev_hash, hash or
 * signature: REFUSED, the pending batch dropped), a request id already in
 * the chain or the batch is REFUSED too.  An unsigned entry is held
 * (PENDING: no ack; lib/ledger.h: one signature closes a run).  A signed one
 * — its signature verified once, covering the batch — is stored with the
 * entries held before it (in one transaction, or a slice a call when the
 * writes are grouped: ag_ledger_receipt_continue); each is stored, its
 * served record (if any) marked receipted, and checked: its price version must be known ("unknown price version",
 * agent_amount -1), money_usage_cost of its usage at that version must be
 * its amount ("amount"), and a served record's usage must be its usage
 * ("usage differs: agent in=.. out=.. cached=.. cache_write=..", the
 * agent's cost at that version).  A failed check is a DISPUTE, kept in the
 * disputes table.  Returns 0 with *r filled, or -1 (r->verdict ERROR).
 */
int ag_ledger_receipt_apply(struct ag_ledger *lg, const struct ledger_entry *e,
    struct ag_receipt_result *r);
/*
 * With grouped writes (ag_ledger_group) a signed receipt stores its batch
 * AG_LEDGER_STORE_SLICE entries a call, each slice a savepoint of the open
 * group, so that no step of the loop stores a whole batch: the call that
 * brought it answers STORING after the first slice, and each
 * ag_ledger_receipt_continue() stores the next, until the one that stores
 * the signed entry itself and answers for it as ag_ledger_receipt_apply
 * would have (*e: that entry).  ag_ledger_batch_done() gives each call's
 * slice.  While a batch is being stored the group is not committed
 * (ag_ledger_flush arms its timer again instead), so what is committed
 * always ends on a signed entry; another receipt, or ag_ledger_close,
 * first stores the rest of it, whose acks are then never sent (the hub
 * replays them, and they are REPLAYs then).
 * Returns 0 (*r: STORING or the signed entry's verdict), 1 when no batch
 * is being stored (another call finished it), or -1 (ERROR): a slice
 * failed after earlier ones were stored, and the whole open group was
 * rolled back, as by a failed commit.
 */
#define AG_LEDGER_STORE_SLICE	16
#if SWB_TEST_BUILD
/* Test builds: n entries a slice instead (the fault tests cut batches
 * small, so that their kills land inside them). */
void ag_ledger_test_slice(struct ag_ledger *lg, size_t n);
#endif
int ag_ledger_receipt_continue(struct ag_ledger *lg, struct ledger_entry *e,
    struct ag_receipt_result *r);
/* 1 once after a failed slice rolled the whole open group back (from
 * ag_ledger_receipt_continue, or ag_ledger_receipt_apply finishing
 * another batch first): the caller drops its links, as for a failed
 * commit, so that the hub replays.  Else 0. */
int ag_ledger_lost(struct ag_ledger *lg);
/*
 * The entries the last ag_ledger_receipt_apply or _continue stored before
 * the signed entry (the held part of the batch it closes, or this call's
 * slice of it), in seq order, with their results (STORED or DISPUTE, as
 * for e).  Returns how many.
 */
size_t ag_ledger_batch_done(const struct ag_ledger *lg,
    const struct ledger_entry **es, const struct ag_receipt_result **rs);

/*
 * Agent ids the database knows (a hub key, a ledger entry or a served
 * stream), ascending, at most max into ids.  Returns how many in total
 * (may exceed max), or -1.
 */
int ag_ledger_agents(struct ag_ledger *lg, uint64_t *ids, size_t max);

/*
 * Write agent_id's chain to out: LEDGER_CSV_HEADER, then ledger_csv_line
 * of each entry in seq order.  Returns the number of entries, or -1 (an
 * entry that cannot be written is an error too).
 */
int ag_ledger_export(struct ag_ledger *lg, uint64_t agent_id, FILE *out);

/*
 * Walk agent_id's chain from seq 1 with ledger_check_link and the stored
 * hub key (an unsigned entry must be followed by a signed one).  0 the chain holds: *n entries, head_hash its last hash
 * (LEDGER_GENESIS when empty).  1 broken: *bad_seq the first entry that
 * does not hold, why says how.  -1 error (why filled).
 */
int ag_ledger_verify(struct ag_ledger *lg, uint64_t agent_id, uint64_t *n,
    char head_hash[LEDGER_HEX_LEN + 1], uint64_t *bad_seq, char *why,
    size_t whylen);

/* A dispute this agent raised: a row of the disputes table. */
struct ag_dispute {
	uint64_t agent_id;
	uint64_t seq;
	char	 request_id[LEDGER_REQID_MAX + 1];
	int64_t	 hub_amount;		/* the receipt's amount */
	int64_t	 agent_amount;		/* -1: the agent could not price it */
	char	 reason[AG_LEDGER_REASON_MAX];
	int64_t	 created_at;		/* unix seconds */
	char	 status[16];		/* open accepted rejected */
	char	 resolution[160];	/* the hub operator's reason */
	int64_t	 resolved_at;		/* unix seconds, 0 while open */
};

/* The hub's operator resolved the dispute of (agent_id, seq): status
 * "accepted" or "rejected" with their reason.  0 noted, 1 no such
 * dispute, -1 error. */
int ag_ledger_dispute_resolved(struct ag_ledger *lg, uint64_t agent_id,
    uint64_t seq, const char *status, const char *reason);

/* Every dispute (agent_id 0) or agent_id's, by agent then seq; cb's
 * non-zero return stops the walk.  Returns how many were visited, or -1. */
int ag_ledger_disputes(struct ag_ledger *lg, uint64_t agent_id,
    int (*cb)(const struct ag_dispute *, void *), void *arg);

#endif
