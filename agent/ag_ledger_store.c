/*
 * agent/ag_ledger_store: the agent's copy of the hub's hash-chained
 * ledger (agent/ag_ledger_int.h) and the one decision about a receipt
 * (ag_ledger_receipt_apply): store, replay, conflict, gap, refusal or
 * dispute.  Owns the chain's head, the unsigned receipts held for their
 * batch, storing a signed batch a slice a call (store_step, store_one,
 * each slice a savepoint of the grouped writes), the checks of a stored
 * entry and the disputes they raise, and the hub's resolution of one.
 */
#include "agent/ag_ledger_int.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <sqlite3.h>

#include "lib/clock.h"
#include "lib/hash.h"

/* ---- the chain ------------------------------------------------------ */

static int
head_get(struct ag_ledger *lg, uint64_t agent_id, struct ledger_entry *head)
{
	sqlite3_stmt *st;
	int r;

	if (lg->head.ok && lg->head.e.agent_id == agent_id) {
		*head = lg->head.e;
		return lg->head.empty;
	}
	st = lg_query(lg,
	    "SELECT " ENTRY_COLS " FROM ledger WHERE agent_id = ? "
	    "ORDER BY seq DESC LIMIT 1", "i", (int64_t)agent_id);
	if ((r = lg_row(lg, st)) == -1)
		return -1;
	if (r == 0) {
		lg_release(lg, st);
		memset(head, 0, sizeof(*head));
		head->agent_id = agent_id;
		memcpy(head->hash, LEDGER_GENESIS, sizeof(head->hash));
	} else {
		lg_col_entry(st, head);
		lg_release(lg, st);
	}
	lg->head.e = *head;
	lg->head.empty = r == 0;
	lg->head.ok = 1;
	return r == 0;
}

int
ag_ledger_head(struct ag_ledger *lg, uint64_t agent_id,
    struct ledger_entry *head)
{
	lg_fresh(lg);
	return head_get(lg, agent_id, head);
}

int
ag_ledger_get(struct ag_ledger *lg, uint64_t agent_id, uint64_t seq,
    struct ledger_entry *out)
{
	sqlite3_stmt *st;
	int r;

	st = lg_query(lg,
	    "SELECT " ENTRY_COLS " FROM ledger WHERE agent_id = ? "
	    "AND seq = ?", "ii", (int64_t)agent_id, (int64_t)seq);
	if ((r = lg_row(lg, st)) != 1)
		return r == 0 ? (lg_release(lg, st), 1) : -1;
	lg_col_entry(st, out);
	lg_release(lg, st);
	return 0;
}

static int
entry_insert(struct ag_ledger *lg, const struct ledger_entry *e)
{
	return lg_done(lg, lg_query(lg,
	    "INSERT INTO ledger (" ENTRY_COLS ") VALUES "
	    "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
	    "iitttitiiiiiiiibiiii", (int64_t)e->agent_id, (int64_t)e->seq,
	    e->prev_hash, e->hash, e->request_id, (int64_t)e->token_id, e->model,
	    e->input_tokens, e->output_tokens, e->cached_tokens,
	    e->cache_write_tokens, e->price_version, e->amount, e->created_at,
	    (int64_t)e->agent_reported, e->sig, (size_t)LEDGER_SIG_LEN,
	    e->images, e->audio_seconds, e->audio_chars, e->video_seconds));
}

/* The seq holding request_id in agent_id's chain: 0 found, 1 none, -1. */
static int
seq_of_request(struct ag_ledger *lg, uint64_t agent_id,
    const char *request_id, uint64_t *seq)
{
	sqlite3_stmt *st;
	int r;

	st = lg_query(lg, "SELECT seq FROM ledger WHERE agent_id = ? AND "
	    "request_id = ?", "it", (int64_t)agent_id, request_id);
	if ((r = lg_row(lg, st)) != 1)
		return r == 0 ? (lg_release(lg, st), 1) : -1;
	*seq = (uint64_t)sqlite3_column_int64(st, 0);
	lg_release(lg, st);
	return 0;
}

/* The dispute at (agent_id, seq): 0 found, 1 none, -1. */
static int
dispute_get(struct ag_ledger *lg, uint64_t agent_id, uint64_t seq,
    char reason[AG_LEDGER_REASON_MAX], int64_t *agent_amount)
{
	sqlite3_stmt *st;
	int r;

	st = lg_query(lg, "SELECT reason, agent_amount FROM disputes WHERE "
	    "agent_id = ? AND seq = ?", "ii", (int64_t)agent_id, (int64_t)seq);
	if ((r = lg_row(lg, st)) != 1)
		return r == 0 ? (lg_release(lg, st), 1) : -1;
	lg_col_text(st, 0, reason, AG_LEDGER_REASON_MAX);
	*agent_amount = sqlite3_column_int64(st, 1);
	lg_release(lg, st);
	return 0;
}

/*
 * The cost of a usage at model's price version: 0 and *cost, 1 the
 * version is unknown here, 2 the rule refuses the numbers, -1 error.
 */
static int
cost_at(struct ag_ledger *lg, const char *model, int64_t version,
    int64_t in, int64_t out, int64_t cached, int64_t cw,
    const struct money_units *un, int64_t *cost)
{
	struct money_prices p;
	int r;

	if ((r = lg_price_get(lg, model, version, &p)) != 0)
		return r;
	return money_usage_cost_units(&p, in, out, cached, cw, un, cost) == 0 ?
	    0 : 2;
}

/* The checks of a stored entry: 0 agreed, 1 *r holds a dispute, -1. */
static int
check_entry(struct ag_ledger *lg, const struct ledger_entry *e,
    const struct ag_served *sv, struct ag_receipt_result *r)
{
	struct money_units eu = { e->images, e->audio_seconds, e->audio_chars,
	    e->video_seconds }, su;
	int64_t cost, mine;
	int c;

	c = cost_at(lg, e->model, e->price_version, e->input_tokens,
	    e->output_tokens, e->cached_tokens, e->cache_write_tokens, &eu,
	    &cost);
	if (c == -1)
		return -1;
	if (c == 1) {
		snprintf(r->reason, sizeof(r->reason), "unknown price version");
		r->agent_amount = -1;
		return 1;
	}
	if (c == 2 || cost != e->amount) {
		snprintf(r->reason, sizeof(r->reason), "amount");
		r->agent_amount = c == 2 ? -1 : cost;
		return 1;
	}
	if (sv != NULL && (sv->input_tokens != e->input_tokens ||
	    sv->output_tokens != e->output_tokens ||
	    sv->cached_tokens != e->cached_tokens ||
	    sv->cache_write_tokens != e->cache_write_tokens ||
	    sv->images != e->images || sv->audio_seconds != e->audio_seconds ||
	    sv->audio_chars != e->audio_chars ||
	    sv->video_seconds != e->video_seconds)) {
		char units[96] = "";

		if ((sv->images | sv->audio_seconds | sv->audio_chars |
		    sv->video_seconds | e->images | e->audio_seconds |
		    e->audio_chars | e->video_seconds) != 0)
			snprintf(units, sizeof(units), " images=%" PRId64
			    " audio_seconds=%" PRId64 " audio_chars=%" PRId64
			    " video_seconds=%" PRId64, sv->images,
			    sv->audio_seconds, sv->audio_chars,
			    sv->video_seconds);
		char full[320];

		snprintf(full, sizeof(full), "usage differs: agent "
		    "in=%" PRId64 " out=%" PRId64 " cached=%" PRId64
		    " cache_write=%" PRId64 "%s%s", sv->input_tokens,
		    sv->output_tokens, sv->cached_tokens, sv->cache_write_tokens,
		    units, sv->estimated ? " (estimated)" : "");
		snprintf(r->reason, sizeof(r->reason), "%.*s",
		    (int)sizeof(r->reason) - 1, full);
		su.images = sv->images;
		su.audio_seconds = sv->audio_seconds;
		su.audio_chars = sv->audio_chars;
		su.video_seconds = sv->video_seconds;
		c = cost_at(lg, e->model, e->price_version, sv->input_tokens,
		    sv->output_tokens, sv->cached_tokens, sv->cache_write_tokens,
		    &su, &mine);
		if (c == -1)
			return -1;
		r->agent_amount = c == 0 ? mine : -1;
		return 1;
	}
	return 0;
}

static void
verdict(struct ag_receipt_result *r, enum ag_receipt_verdict v, int ok,
    int stored, const char *reason)
{
	r->verdict = v;
	r->ok = ok;
	r->stored = stored;
	if (reason != NULL)
		snprintf(r->reason, sizeof(r->reason), "%s", reason);
}

/*
 * Store e (it extends the chain and its batch's signature checked out):
 * the entry, its served record marked receipted, and the checks (a
 * failed one is a dispute, kept).  Inside the caller's transaction.
 * 0 with *r filled (STORED or DISPUTE), -1 error.
 */
static int
store_one(struct ag_ledger *lg, const struct ledger_entry *e,
    struct ag_receipt_result *r)
{
	struct ag_served sv;
	int k, d;

	memset(r, 0, sizeof(*r));
	r->agent_amount = -1;
	if (entry_insert(lg, e) < 0)
		return -1;
	lg->head.e = *e;	/* taken back by a rollback (lg_forget) */
	lg->head.empty = 0;
	lg->head.ok = 1;
	r->head_seq = e->seq;
	if ((k = ag_ledger_served_get(lg, e->request_id, &sv)) == -1)
		return -1;
	r->served = k == 0 && sv.agent_id == e->agent_id;
	if (r->served && ag_ledger_served_mark(lg, e->agent_id, e->request_id,
	    AG_SERVED_RECEIPTED) == -1)
		return -1;
	if ((d = check_entry(lg, e, r->served ? &sv : NULL, r)) == -1)
		return -1;
	if (d == 0) {
		verdict(r, AG_RCPT_STORED, 1, 1, NULL);
		return 0;
	}
	verdict(r, AG_RCPT_DISPUTE, 0, 1, NULL);
	return lg_done(lg, lg_query(lg,
	    "INSERT OR REPLACE INTO disputes (agent_id, "
	    "seq, request_id, hub_amount, agent_amount, reason, created_at) "
	    "VALUES (?, ?, ?, ?, ?, ?, ?)", "iitiiti", (int64_t)e->agent_id,
	    (int64_t)e->seq, e->request_id, e->amount, r->agent_amount,
	    r->reason, clock_wall_ms() / 1000)) < 0 ? -1 : 0;
}

/* The database failed under a receipt: nothing kept in memory (what is
 * held, being stored or cached), *r says ERROR.  -1. */
static int
receipt_error(struct ag_ledger *lg, struct ag_receipt_result *r)
{
	lg_forget(lg);
	lg->storing = 0;
	lg->npend = 0;
	lg->ndone = 0;
	memset(r, 0, sizeof(*r));
	r->verdict = AG_RCPT_ERROR;
	r->agent_amount = -1;
	return -1;
}

/*
 * Store up to max more entries of the batch the verified signed entry
 * lg->closing ends, in one savepoint, and the signed entry itself once
 * they are all stored (*r its verdict; until then STORING, r->head_seq
 * the last stored).  A failure in the batch's first slice takes back only
 * that slice; a later one rolls the whole open group back (the earlier
 * slices are in it, and the committed chain must end on a signed entry):
 * lg->lost, and the caller's links are dropped so that the hub replays.
 */
static int
store_step(struct ag_ledger *lg, struct ag_receipt_result *r, size_t max)
{
	size_t k = 0, first = lg->nstored;

	memset(r, 0, sizeof(*r));
	r->agent_amount = -1;
	lg->ndone = 0;
	if (lg_tx_begin(lg) != 0)
		goto fail;
	for (; lg->nstored < lg->npend && k < max; lg->nstored++, k++) {
		if (store_one(lg, &lg->pend[lg->nstored], &lg->done_r[k]) != 0)
			goto rollback;
		lg->done_e[k] = lg->pend[lg->nstored];
	}
	if (lg->nstored < lg->npend) {
		verdict(r, AG_RCPT_STORING, 0, 0, NULL);
		r->head_seq = lg->pend[lg->nstored - 1].seq;
	} else if (store_one(lg, &lg->closing, r) != 0)
		goto rollback;
	if (lg_tx_commit(lg) != 0)
		goto rollback;
	lg->ndone = k;
	if (r->verdict != AG_RCPT_STORING) {
		lg->storing = 0;
		lg->npend = 0;
	}
	return 0;
rollback:
	lg_tx_rollback(lg);
fail:
	if (first > 0 && lg->open) {
		/* The group holds the earlier slices: all of it goes. */
		(void)sqlite3_exec(lg->db, "ROLLBACK", NULL, NULL, NULL);
		lg->open = 0;
		lg->lost = 1;
	}
	return receipt_error(lg, r);
}

/* The rest of a batch being stored, at once, its results dropped (their
 * acks are never sent: the hub replays them). */
int
lg_store_rest(struct ag_ledger *lg)
{
	struct ag_receipt_result r;

	return store_step(lg, &r, AG_LEDGER_BATCH_MAX);
}

/* ---- the pending batch's request ids (struct ag_ledger's pidx) */

#define PIDX_CAP	(2 * AG_LEDGER_BATCH_MAX)	/* a power of two */

static size_t
pidx_slot(const char *request_id)
{
	return hash_fnv1a_str(HASH_FNV_INIT, request_id) & (PIDX_CAP - 1);
}

static void
pidx_put(struct ag_ledger *lg, size_t pos)
{
	size_t i = pidx_slot(lg->pend[pos].request_id);

	while (lg->pidx[i] != 0)
		i = (i + 1) & (PIDX_CAP - 1);
	lg->pidx[i] = (uint16_t)(pos + 1);
	lg->pidx_n++;
}

/* Append e to the pending batch (npend < AG_LEDGER_BATCH_MAX) and index
 * it.  The index is cleared while the batch is empty, rebuilt from pend
 * once stale slots (a batch cut short) fill half of it. */
static void
pend_push(struct ag_ledger *lg, const struct ledger_entry *e)
{
	if (lg->npend == 0 || lg->pidx_n >= PIDX_CAP / 2) {
		memset(lg->pidx, 0, sizeof(lg->pidx));
		lg->pidx_n = 0;
		for (size_t i = 0; i < lg->npend; i++)
			pidx_put(lg, i);
	}
	lg->pend[lg->npend] = *e;
	pidx_put(lg, lg->npend++);
}

/* Is request_id already held in the pending batch?  (Its seq in *seq.) */
static int
pend_has(const struct ag_ledger *lg, const char *request_id, uint64_t *seq)
{
	size_t pos;

	if (lg->npend == 0)
		return 0;
	for (size_t i = pidx_slot(request_id); lg->pidx[i] != 0;
	    i = (i + 1) & (PIDX_CAP - 1)) {
		pos = (size_t)lg->pidx[i] - 1;
		if (pos < lg->npend &&
		    strcmp(lg->pend[pos].request_id, request_id) == 0) {
			*seq = lg->pend[pos].seq;
			return 1;
		}
	}
	return 0;
}

int
ag_ledger_receipt_apply(struct ag_ledger *lg, const struct ledger_entry *e,
    struct ag_receipt_result *r)
{
	struct ledger_entry head, old;
	const struct ledger_entry *prev;
	unsigned char pk[LEDGER_PK_LEN];
	char why[AG_LEDGER_REASON_MAX];
	uint64_t dup;
	int empty, k, d;

	/* A batch still being stored goes first: it extends the chain. */
	if (lg->storing && lg_store_rest(lg) != 0)
		goto fail;
	memset(r, 0, sizeof(*r));
	r->verdict = AG_RCPT_ERROR;
	r->agent_amount = -1;
	lg->ndone = 0;
	/* Only this thread writes the file: the checks read without a
	 * transaction of their own, which the writes below open (most
	 * receipts are held, unsigned, and write nothing). */
	lg_fresh(lg);
	if ((empty = head_get(lg, e->agent_id, &head)) == -1)
		goto fail;
	r->head_seq = head.seq;
	/* What is pending must go on from the stored head, for this agent. */
	if (lg->npend > 0 && (lg->pend[0].agent_id != e->agent_id ||
	    lg->pend[0].seq != head.seq + 1))
		lg->npend = 0;
	if (e->seq >= 1 && e->seq <= head.seq) {
		if ((k = ag_ledger_get(lg, e->agent_id, e->seq, &old)) == -1)
			goto fail;
		if (k == 1 || strcmp(old.hash, e->hash) != 0) {
			verdict(r, AG_RCPT_CONFLICT, 0, 0, "conflict");
			return 0;
		}
		/* The same entry again: the same answer as the first time. */
		verdict(r, AG_RCPT_REPLAY, 1, 1, NULL);
		if ((d = dispute_get(lg, e->agent_id, e->seq, r->reason,
		    &r->agent_amount)) == -1)
			goto fail;
		if (d == 0)
			r->ok = 0;
		return 0;
	}
	/* A pending receipt again (the hub replays after a sync): the batch
	 * is taken up again from there. */
	if (lg->npend > 0 && e->seq <= lg->pend[lg->npend - 1].seq)
		lg->npend = (size_t)(e->seq - lg->pend[0].seq);
	prev = lg->npend > 0 ? &lg->pend[lg->npend - 1] : empty ? NULL : &head;
	if (e->seq > (prev != NULL ? prev->seq : 0) + 1) {
		lg->npend = 0;
		verdict(r, AG_RCPT_GAP, 0, 0, NULL);
		return 0;
	}
	if ((k = lg_key_get(lg, e->agent_id, pk)) == -1)
		goto fail;
	if (k == 1) {
		lg->npend = 0;
		verdict(r, AG_RCPT_REFUSED, 0, 0, "no hub ledger key (the "
		    "hub's welcome carried none)");
		return 0;
	}
	/* Link and hash of every entry; the signature (ed25519) only on a
	 * batch's last one, which covers the rest. */
	if (ledger_check_link(prev, e, pk, why, sizeof(why)) != 0) {
		lg->npend = 0;
		verdict(r, AG_RCPT_REFUSED, 0, 0, why);
		return 0;
	}
	if ((k = seq_of_request(lg, e->agent_id, e->request_id, &dup)) == -1)
		goto fail;
	if (k == 0 || pend_has(lg, e->request_id, &dup)) {
		lg->npend = 0;
		snprintf(why, sizeof(why), "request id already billed at seq "
		    "%" PRIu64, dup);
		verdict(r, AG_RCPT_REFUSED, 0, 0, why);
		return 0;
	}
	if (!ledger_signed(e)) {
		if (lg->npend == AG_LEDGER_BATCH_MAX) {
			lg->npend = 0;
			verdict(r, AG_RCPT_REFUSED, 0, 0, "more unsigned receipts "
			    "in a row than a batch holds");
			return 0;
		}
		pend_push(lg, e);
		verdict(r, AG_RCPT_PENDING, 0, 0, NULL);
		r->head_seq = e->seq;
		return 0;
	}
	/* Signed and good: its batch, then itself; a slice a call when the
	 * writes are grouped (store_step). */
	lg->closing = *e;
	lg->nstored = 0;
	lg->storing = 1;
	return store_step(lg, r, lg->group ? lg->slice : lg->npend);
fail:
	return receipt_error(lg, r);
}

int
ag_ledger_receipt_continue(struct ag_ledger *lg, struct ledger_entry *e,
    struct ag_receipt_result *r)
{
	memset(r, 0, sizeof(*r));
	r->verdict = AG_RCPT_ERROR;
	r->agent_amount = -1;
	lg->ndone = 0;
	if (!lg->storing)
		return 1;
	*e = lg->closing;
	return store_step(lg, r, lg->slice);
}

#if SWB_TEST_BUILD
void
ag_ledger_test_slice(struct ag_ledger *lg, size_t n)
{
	lg->slice = n > 0 ? n : AG_LEDGER_STORE_SLICE;
}
#endif

int
ag_ledger_lost(struct ag_ledger *lg)
{
	int lost = lg->lost;

	lg->lost = 0;
	return lost;
}

size_t
ag_ledger_batch_done(const struct ag_ledger *lg,
    const struct ledger_entry **es, const struct ag_receipt_result **rs)
{
	*es = lg->done_e;
	*rs = lg->done_r;
	return lg->ndone;
}

int
ag_ledger_dispute_resolved(struct ag_ledger *lg, uint64_t agent_id,
    uint64_t seq, const char *status, const char *reason)
{
	sqlite3_stmt *st;
	int r;

	if (strcmp(status, "accepted") != 0 && strcmp(status, "rejected") != 0) {
		lg_seterr(lg, "dispute result: unknown status");
		return -1;
	}
	st = lg_query(lg, "UPDATE disputes SET status = ?1, resolution = ?2, "
	    "resolved_at = ?3 WHERE agent_id = ?4 AND seq = ?5 RETURNING seq",
	    "ttiii", status, reason, (int64_t)time(NULL), (int64_t)agent_id,
	    (int64_t)seq);
	r = lg_row(lg, st);
	if (r == -1)
		return -1;
	lg_release(lg, st);
	return r == 1 ? 0 : 1;
}
