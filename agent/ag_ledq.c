/*
 * agent/ag_ledq: when the hub's ledger frames are applied.  At most
 * AG_LEDGER_SLICE of them a turn of the loop; the rest wait on their
 * link's queue (ledq), in arrival order, for the next turns, links in
 * turn; a signed receipt's batch is stored a slice a turn before its
 * link's later frames; a link that closes drops what it held, unacked.
 * What a frame does is agent/ag_bill's (through ag_tunnel_on_frame).
 */
#include "agent/ag_tunnel_int.h"

#include <stdlib.h>
#include <string.h>
#include "agent/ag_ledger.h"
#include "lib/frame.h"
#include "lib/outq.h"
#include "lib/log.h"

/*
 * The hub's ledger frames (receipts, usage acks, syncs, prices, dispute
 * results) come in bursts: billing answers a whole group commit at once,
 * hundreds of receipts at c=1, about 10 us of SQLite each.
 * Applied in the callback that read them, such a burst held the loop
 * and its CPU for 1-2 ms, and the requests and answers ready meanwhile
 * waited (most of the p99 at c=1).  So a turn of the loop applies at
 * most AG_LEDGER_SLICE of them; the rest wait, in arrival order, on
 * their link's ledq and are applied in the next turns, between the
 * other work (ag_tunnel_service).  Nothing else depends on them being
 * applied at once: their acks go out when they are, and a link that
 * closes drops what it held unacked (the next sync replays it).  A
 * backlog over AG_LEDGER_QUEUED bytes is applied at once: the hub cannot
 * make the queue grow without bound.  A signed receipt stores the batch
 * it closes AG_LEDGER_STORE_SLICE entries a turn (a batch is about 120
 * entries at c=1, 0.8-1.1 ms stored at once): that slice is its turn's
 * share, and the link's later frames wait until the batch is whole
 * (ledger_continue).
 */
#define AG_LEDGER_SLICE		8
#define AG_LEDGER_QUEUED	(4u * 1024 * 1024)

static int
ledger_frame(uint16_t type)
{
	return type == FRAME_RECEIPT || type == FRAME_PRICE_UPDATE ||
	    type == FRAME_USAGE_ACK || type == FRAME_SYNC ||
	    type == FRAME_DISPUTE_RESULT;
}

/*
 * The next slice of the batch l's signed receipt is storing: its acks,
 * and the signed entry's answer with the last slice.  The slice is this
 * turn's share of ledger work.
 */
static void
ledger_continue(struct ag_link *l)
{
	struct ag_receipt_result r;
	struct ledger_entry e;
	int k = ag_ledger_receipt_continue(l->t->lg, &e, &r);

	l->t->ledger_budget = 0;
	if (k == 0 && r.verdict == AG_RCPT_STORING) {
		ag_bill_batch_acks(l);
		return;
	}
	l->storing = 0;
	if (l->ledq.head == NULL)
		lws_dll2_remove(&l->ledq_due);
	if (k == 1)
		return;		/* finished by another call: the hub replays */
	if (k != 0) {
		ag_bill_receipt_failed(l, e.seq);
		return;
	}
	ag_bill_receipt_answer(l, &e, &r, e.hash, strlen(e.hash));
}

/* A batch l was storing, stored to its end now (its acks not sent: the
 * link is going; the next sync replays them). */
static void
ledger_finish(struct ag_link *l)
{
	struct ag_receipt_result r;
	struct ledger_entry e;
	int k;

	while (l->storing) {
		k = ag_ledger_receipt_continue(l->t->lg, &e, &r);
		if (k != 0 || r.verdict != AG_RCPT_STORING)
			l->storing = 0;
		if (k < 0)
			ag_bill_receipt_failed(l, e.seq);
	}
}

/* The hub's ledger frames l still held (ag_ledq_defer): not applied, not
 * acked, so the next link's sync brings them again.  A batch it was
 * storing is stored whole first (verified; the committed chain must end
 * on a signed entry), without acks. */
void
ag_ledq_drop(struct ag_link *l)
{
	ledger_finish(l);
	outq_clear(&l->ledq);
	lws_dll2_remove(&l->ledq_due);
}

/* Apply l's first queued ledger frame, or the next slice of the batch it
 * is storing.  -1 when the frame was malformed (it was checked when it
 * came, so never) or broke the protocol.  The frame leaves the queue
 * first: whatever ag_tunnel_on_frame does to the link, the queue is
 * whole and the frame's bytes stay until it returns. */
static int
ledger_apply_one(struct ag_link *l)
{
	struct outq_item *o;
	struct frame f;
	char err[160];
	size_t used;
	int rc = -1;

	/* A batch being stored goes on before any later frame. */
	if (l->storing) {
		ledger_continue(l);
		return 0;
	}
	if ((o = outq_take(&l->ledq)) == NULL) {
		lws_dll2_remove(&l->ledq_due);
		return 0;
	}
	if (l->ledq.head == NULL)
		lws_dll2_remove(&l->ledq_due);
	if (frame_decode_next(o->data, o->len, &f, &used, err,
	    sizeof(err)) == 0) {
		rc = ag_tunnel_on_frame(l, &f);
		frame_free(&f);
	}
	free(o);
	return rc;
}

/* Apply up to budget queued ledger frames of every link, in turn.  Whether
 * some still wait. */
static int
ledger_drain(struct ag_tunnel *t)
{
	while (t->ledq_due.head != NULL && t->ledger_budget > 0) {
		struct ag_link *l = lws_container_of(t->ledq_due.head,
		    struct ag_link, ledq_due);

		/* Round robin: the link goes to the back of the line. */
		lws_dll2_remove(&l->ledq_due);
		lws_dll2_add_tail(&l->ledq_due, &t->ledq_due);
		t->ledger_budget--;
		if (ledger_apply_one(l) != 0) {
			/* It broke the protocol: the link ends, and what it
			 * held with it. */
			ag_ledq_drop(l);
			if (l->wsi != NULL)
				lws_set_timeout(l->wsi,
				    PENDING_TIMEOUT_KILLED_BY_PARENT,
				    LWS_TO_KILL_ASYNC);
		}
	}
	return t->ledq_due.head != NULL;
}

/* A turn of the loop begins (ag_tunnel_service): its budget, spent first
 * on the ledger frames that wait.  Whether some still wait. */
int
ag_ledq_turn(struct ag_tunnel *t)
{
	t->ledger_budget = AG_LEDGER_SLICE;
	return ledger_drain(t);
}

/* f (its bytes p, len) is a ledger frame this turn cannot apply: queued
 * (1).  0: apply it now.  -1: a frame applied to make room broke the
 * protocol (the link ends). */
int
ag_ledq_defer(struct ag_link *l, const struct frame *f, const void *p,
    size_t len)
{
	struct ag_tunnel *t = l->t;

	if (!ledger_frame(f->type) || l->state != LK_ONLINE)
		return 0;
	if (l->ledq.head == NULL && !l->storing && t->ledger_budget > 0) {
		t->ledger_budget--;
		return 0;
	}
	if (l->ledq.bytes + len > AG_LEDGER_QUEUED)
		while (l->ledq.head != NULL || l->storing)
			if (ledger_apply_one(l) != 0)
				return -1;
	if (l->ledq.head == NULL && !l->storing)
		log_debug("agent %llu: ledger frames wait for the next turns of "
		    "the loop (more than %d in this one)",
		    (unsigned long long)l->agent_id, AG_LEDGER_SLICE);
	if (outq_push(&l->ledq, 0, p, len, NULL, 0) == NULL)
		return 0;	/* no memory: apply it now */
	if (lws_dll2_is_detached(&l->ledq_due))
		lws_dll2_add_tail(&l->ledq_due, &t->ledq_due);
	return 1;
}

/* l's signed receipt seq stores the batch it closes a slice a turn (its
 * verdict AG_RCPT_STORING, agent/ag_bill): the rest in the next turns
 * (ledger_apply_one), before any later frame of l; this slice was this
 * turn's share. */
void
ag_ledq_storing(struct ag_link *l, uint64_t seq)
{
	if (!l->storing)
		log_debug("agent %llu: receipt seq %llu closes a batch "
		    "longer than a slice: stored a slice a turn",
		    (unsigned long long)l->agent_id,
		    (unsigned long long)seq);
	l->storing = 1;
	l->t->ledger_budget = 0;
	if (lws_dll2_is_detached(&l->ledq_due))
		lws_dll2_add_tail(&l->ledq_due, &l->t->ledq_due);
}
