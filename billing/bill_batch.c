/*
 * billing/bill_batch: billing's group commit, across every client of
 * billing.sock.  Every message any client sends runs inside one open
 * batch (store_batch_begin: one SQLite transaction, each store call a
 * savepoint of it).  The answers that promise something durable — post
 * acknowledgements, receipts and syncs for the tunnel, usage results —
 * are held here, not queued on their connection; they are queued, in the
 * order they were made, once the batch committed (one fsync).  The batch
 * commits BILL_BATCH_WINDOW_MS after it opened (the loop is woken for
 * it), or at once when it holds BILL_BATCH_MAX answers: a post's
 * acknowledgement waits a few milliseconds, which no user waits for,
 * and every post of that window shares one flush.
 *
 * Answers that promise nothing durable go at once: look-ups, and
 * reservations.  A reservation is decided on the open batch (which sees
 * every reservation and post before it) and answered before its row is
 * committed, so no request waits for a disk flush before it is relayed.
 *
 * What a crash costs (billing killed, or the machine losing power, at any
 * point): before the commit returned, nothing of the batch is stored and
 * no held answer was sent: gateways send their posts again until they are
 * acknowledged (gateway/gw_token.c), and unanswered reservations when
 * billing.sock comes back; the tunnel re-syncs every online agent from
 * what it acknowledged.  Reservations answered from the lost batch are
 * gone: their requests run on, and their posts (which name the token)
 * make the row again and charge the real cost (store_charge_post), so no
 * money is lost; until then the token's quota did not count them, an
 * overrun of at most one window's reservations.  After the commit, the answers may be lost with the
 * connection, never the money: a post sent again is found settled
 * (idempotent by key), a reservation sent again is found reserved.
 * A batch whose commit fails is rolled back as a whole: every client it
 * held answers for is dropped (their answers with it), so they resend.
 *
 * Calls that are not a client's message (admin commands, the sweep) first
 * commit the open batch (bill_batch_commit) and then run outside any
 * batch, each store call its own transaction, answering at once.
 */
#include <stdlib.h>
#include <string.h>
#include "billing/bill.h"
#include "lib/clock.h"
#include "lib/log.h"

/* Held answers that force a commit: about two a request (its post's
 * acknowledgement, its receipt), so a batch holds at most 64 requests.
 * The answers of a batch go out together when it commits, and the tunnel
 * relays its receipts to their agents in one burst, between the frames
 * of the requests in flight: at c=1 (about 1,800 requests a second)
 * batches of up to 512 answers (140 ms of requests) put the p99 at
 * 2.4-2.8 ms, where 128 (a commit every 35 ms) gave 1.3-1.6 ms, as the
 * 30 ms window did, with billing's CPU a request unchanged at c=32
 * (three paired runs each).  A light load is not touched: it never
 * fills a batch. */
#define BILL_BATCH_MAX		128
/* A batch stays open this long.  Each commit writes every page the
 * batch dirtied (the tokens' and agents' rows, the right edge of every
 * index) once and flushes them once, so a longer window costs less per
 * request: at c=1, 30 ms instead of 10 cut billing's CPU per request by
 * 13-40 % in paired runs.  At a light load (30 requests a second, one
 * at a time) a 30 ms batch held one request, so each request paid a
 * commit and a flush of its own, and the agent a commit (signatures are
 * spaced apart on their own, bill_sign.c): 200 ms cut billing's CPU per
 * request from about 720 to 400 us, agentd's from 720 to 530 (paired
 * runs, with AG_LEDGER_FLUSH_MS at 200 too), and at c=1 and c=32 changed
 * nothing beyond the runs' noise.  Nobody waits for a held answer; what a
 * longer window costs is what a crash loses (see above): a window's
 * reservations, made again by their posts.  BILL_BATCH_MAX commits a
 * busy batch sooner. */
#define BILL_BATCH_WINDOW_MS	200

struct held {
	uint32_t slot, serial;	/* the client (msg_srv_find) */
	uint16_t type;
	uint64_t reqid;
	size_t	 len;
	size_t	 off;		/* into data */
};

static struct {
	struct msg_srv *srv;
	int open;		/* a store batch is open */
	int committing;		/* in bill_batch_commit: hold, never commit */
	int64_t opened_ms;	/* monotonic, when it opened */
	struct held *h;
	size_t n, cap;
	unsigned char *data;	/* the held payloads, back to back */
	size_t dlen, dcap;
	/* Counters, for tests and the log. */
	uint64_t batches, answers;
} B;

void
bill_batch_init(struct msg_srv *srv)
{
	B.srv = srv;
}

int
bill_batch_is_open(void)
{
	return B.open;
}

int
bill_batch_open(void)
{
	if (B.open)
		return 1;
	if (store_batch_begin(bill_store) != 0) {
		log_warn("billing: cannot open a batch (%s): each call commits "
		    "on its own", store_errmsg(bill_store));
		return 0;
	}
	B.open = 1;
	B.opened_ms = clock_mono_ms();
	return 1;
}

static int
hold(struct msg_client *c, uint16_t type, uint64_t reqid, const void *p,
    size_t len)
{
	if (B.n == B.cap) {
		size_t cap = B.cap ? B.cap * 2 : 256;
		struct held *nh = realloc(B.h, cap * sizeof(*nh));
		if (nh == NULL)
			return -1;
		B.h = nh;
		B.cap = cap;
	}
	if (B.dlen + len > B.dcap) {
		size_t cap = B.dcap ? B.dcap : 65536;
		unsigned char *nd;
		while (cap < B.dlen + len)
			cap *= 2;
		if ((nd = realloc(B.data, cap)) == NULL)
			return -1;
		B.data = nd;
		B.dcap = cap;
	}
	B.h[B.n].slot = c->slot;
	B.h[B.n].serial = c->serial;
	B.h[B.n].type = type;
	B.h[B.n].reqid = reqid;
	B.h[B.n].len = len;
	B.h[B.n].off = B.dlen;
	if (len > 0)
		memcpy(B.data + B.dlen, p, len);
	B.dlen += len;
	B.n++;
	return 0;
}

int
bill_send(struct msg_client *c, uint16_t type, uint64_t reqid,
    const void *p, size_t len)
{
	if (c == NULL)
		return -1;
	if (!B.open || type == IPC_CHARGE_RESULT || type == IPC_TOKEN_INFO ||
	    type == IPC_AGENT_INFO || type == IPC_JOB_INFO)
		return msg_srv_send(c, type, reqid, p, len);
	if (hold(c, type, reqid, p, len) != 0) {
		/* No memory to hold it: the client must not get a later
		 * answer before this one; it reconnects and asks again. */
		msg_srv_drop(c, "billing: out of memory holding an answer");
		return -1;
	}
	if (B.n >= BILL_BATCH_MAX && !B.committing &&
	    bill_batch_commit(NULL) == 0)
		(void)bill_batch_open();	/* the rest of this read */
	return 0;
}

static void
reset(void)
{
	B.n = 0;
	B.dlen = 0;
	B.open = 0;
}

int
bill_batch_commit(struct msg_client *except)
{
	struct msg_client *c;
	size_t i;
	int rc;

	if (!B.open)
		return 0;
	B.committing = 1;
	rc = bill_ledger_before_commit();
	B.committing = 0;
	if (rc != 0)
		store_batch_abort(bill_store);
	if (rc != 0 || store_batch_end(bill_store) != 0) {
		log_error("billing: committing a batch failed (%s): dropping "
		    "the %zu answers it held and their connections (they "
		    "resend)", store_errmsg(bill_store), B.n);
		for (i = 0; i < B.n; i++) {
			c = msg_srv_find(B.srv, B.h[i].slot, B.h[i].serial);
			if (c != NULL && c != except)
				msg_srv_drop(c, NULL);
		}
		bill_ledger_drop_sub();
		bill_sign_lost();
		reset();
		return -1;
	}
	B.batches++;
	B.answers += B.n;
	for (i = 0; i < B.n; i++) {
		c = msg_srv_find(B.srv, B.h[i].slot, B.h[i].serial);
		if (c == NULL)
			continue;	/* it left: it asks again */
		if (msg_srv_send(c, B.h[i].type, B.h[i].reqid, B.data +
		    B.h[i].off, B.h[i].len) != 0)
			log_warn("billing client queue full");
	}
	reset();
	return 0;
}

int64_t
bill_batch_prepare(void)
{
	int64_t due = B.opened_ms + BILL_BATCH_WINDOW_MS;

	if (!B.open)
		return 0;
	if (B.n < BILL_BATCH_MAX && clock_mono_ms() < due)
		return due;	/* more may join: the loop wakes us by then */
	(void)bill_batch_commit(NULL);
	msg_srv_flush(B.srv);	/* the loop polls next */
	return 0;
}

void
bill_batch_stats(uint64_t *batches, uint64_t *answers)
{
	*batches = B.batches;
	*answers = B.answers;
}
