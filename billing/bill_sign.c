/*
 * billing/bill_sign: when billing signs an agent's chain (SQLite batches;
 * on PostgreSQL every entry is signed as it is written).  One signature
 * covers every earlier entry of its chain (lib/ledger.h), and costs the
 * hub about 16 µs and the agent, which checks it, about 48: signed once
 * per batch, a lightly loaded agent (a request or two in each batch,
 * when batches were 30 ms) paid those for nearly every request.  So the
 * last entry of a chain stays unsigned until BILL_SIGN_COUNT entries are
 * unsigned in a row or the first of them is BILL_SIGN_MS old; the
 * entries go to the agent at once all the same, which holds them
 * (unsigned receipts, at most AG_LEDGER_BATCH_MAX = 1024 in a row) until
 * the signed one comes.
 *
 * Owns the unsigned tails: per agent, the chain's last entry while it is
 * unsigned, in an open-addressing table by agent id.  Written only here,
 * from billing's loop: bill_sign_batch (before a batch commits),
 * bill_sign_run (a tail came due between batches, or the operator reads
 * the ledger), bill_sign_lost (a batch was rolled back) and
 * bill_sign_rescan (at start and after a lost batch: every stored chain
 * whose last entry is unsigned is signed, since what this table held is
 * gone).
 *
 * What a crash costs: nothing signed is lost.  Billing killed with tails
 * unsigned leaves them unsigned in the store: bill_sign_rescan signs them
 * when it starts, and an agent that syncs before then gets the replay's
 * last entry signed on the fly (bill_ledger.c) — the same signature,
 * Ed25519 being deterministic.  The agent keeps nothing unsigned: what it
 * held is sent again by the sync after the hub comes back.
 */
#include <stdlib.h>
#include <string.h>
#include "billing/bill.h"
#include "lib/clock.h"
#include "lib/log.h"

/* Entries unsigned in a row that make a signature due at the next commit.
 * A batch holds at most BILL_BATCH_MAX (128) answers, so an agent never
 * holds more than 255 + 128 unsigned receipts: under its 1024. */
#define BILL_SIGN_COUNT	256
/* How long the first unsigned entry of a chain waits, at most.  Under the
 * agents' report_after (5 s by default, 1 s in the tests), so that an
 * agent sees its receipts before it would report a stream's usage. */
#define BILL_SIGN_MS	250

struct tail {
	uint64_t agent_id;		/* 0: a free slot */
	uint32_t n;			/* entries unsigned in a row */
	uint32_t gen;			/* the last batch that appended */
	size_t	 idx;			/* ... its last entry there */
	int64_t	 since_ms;		/* the first one's commit (mono) */
	struct ledger_entry last;	/* the chain's last entry, unsigned */
};

static struct tail *tab;
static size_t cap, used;		/* cap: 0 or a power of two */
static int64_t due_ms;			/* the earliest tail's deadline, 0 none */
/* bill_sign_rescan is due: at start, and after a lost batch; tried again
 * RESCAN_RETRY_MS after a failure. */
static int rescan = 1;
static int64_t rescan_at;
#define RESCAN_RETRY_MS	1000
static uint32_t gen;			/* batches seen */
static int forcing;			/* bill_sign_run(1): sign every tail */

static size_t
slot_of(uint64_t agent_id)
{
	return (size_t)((agent_id * UINT64_C(0x9e3779b97f4a7c15)) >> 32) &
	    (cap - 1);
}

static struct tail *
find(uint64_t agent_id)
{
	if (cap == 0)
		return NULL;
	for (size_t i = slot_of(agent_id);; i = (i + 1) & (cap - 1)) {
		if (tab[i].agent_id == agent_id)
			return &tab[i];
		if (tab[i].agent_id == 0)
			return NULL;
	}
}

static int
grow(void)
{
	struct tail *old = tab;
	size_t ocap = cap, ncap = cap ? cap * 2 : 64;
	struct tail *nt = calloc(ncap, sizeof(*nt));

	if (nt == NULL)
		return -1;
	tab = nt;
	cap = ncap;
	for (size_t i = 0; i < ocap; i++) {
		if (old[i].agent_id == 0)
			continue;
		size_t j = slot_of(old[i].agent_id);
		while (tab[j].agent_id != 0)
			j = (j + 1) & (cap - 1);
		tab[j] = old[i];
	}
	free(old);
	return 0;
}

/* The tail of agent_id, made (empty) when there is none; NULL: no memory. */
static struct tail *
get(uint64_t agent_id)
{
	struct tail *t = find(agent_id);
	size_t i;

	if (t != NULL)
		return t;
	if ((used + 1) * 4 > cap * 3 && grow() != 0)
		return NULL;
	for (i = slot_of(agent_id); tab[i].agent_id != 0; i = (i + 1) & (cap - 1))
		;
	memset(&tab[i], 0, sizeof(tab[i]));
	tab[i].agent_id = agent_id;
	used++;
	return &tab[i];
}

/* Take t out (linear probing: the entries after it move back). */
static void
drop(struct tail *t)
{
	size_t i = (size_t)(t - tab), j = i;

	tab[i].agent_id = 0;
	used--;
	for (;;) {
		j = (j + 1) & (cap - 1);
		if (tab[j].agent_id == 0)
			return;
		size_t k = slot_of(tab[j].agent_id);
		/* j's entry may fill hole i unless its home lies in (i, j]. */
		if ((i < j) ? (k <= i || k > j) : (k <= i && k > j)) {
			tab[i] = tab[j];
			tab[j].agent_id = 0;
			i = j;
		}
	}
}

/* Sign e and store its signature (in the open batch, if one is).  0, -1. */
static int
sign_store(struct ledger_entry *e)
{
	if (ledger_sign(e, bill_key.sk) != 0 ||
	    store_ledger_sign(bill_store, e->agent_id, e->seq, e->sig) != 0) {
		log_error("agent %llu: cannot sign seq %llu: %s",
		    (unsigned long long)e->agent_id,
		    (unsigned long long)e->seq, store_errmsg(bill_store));
		return -1;
	}
	return 0;
}

static int
is_due(const struct tail *t, int64_t now, int force)
{
	return force || t->n >= BILL_SIGN_COUNT ||
	    now - t->since_ms >= BILL_SIGN_MS;
}

/*
 * Sign every due tail, and set due_ms from those kept (one pass).  A tail
 * the batch e[0, n) appended to (gen) is signed in e, which the caller
 * pushes; any other's entry, signed, is pushed again here (the agent
 * already holds it unsigned; the signed copy closes its batch).  0, or -1
 * (a signature could not be stored; due_ms is then partial).
 */
static int
sign_due(struct ledger_entry *e, int64_t now, int force,
    void (*push)(const struct ledger_entry *))
{
	due_ms = 0;
	for (size_t i = 0; i < cap; i++) {
		struct tail *t = &tab[i];

		if (t->agent_id == 0)
			continue;
		if (!is_due(t, now, force)) {
			if (due_ms == 0 || t->since_ms + BILL_SIGN_MS < due_ms)
				due_ms = t->since_ms + BILL_SIGN_MS;
			continue;
		}
		if (e != NULL && t->gen == gen) {
			if (sign_store(&e[t->idx]) != 0)
				return -1;
		} else {
			if (sign_store(&t->last) != 0)
				return -1;
			push(&t->last);
		}
		drop(t);
		i--;	/* an entry may have moved back into slot i */
	}
	return 0;
}

int
bill_sign_batch(struct ledger_entry *e, size_t n,
    void (*push)(const struct ledger_entry *))
{
	int64_t now = clock_mono_ms();

	gen++;
	for (size_t i = 0; i < n; i++) {
		struct tail *t = get(e[i].agent_id);

		if (t == NULL) {
			/* No memory to remember it: signed now. */
			if (sign_store(&e[i]) != 0)
				return -1;
			continue;
		}
		if (t->n == 0)
			t->since_ms = now;
		t->n++;
		t->last = e[i];
		t->gen = gen;
		t->idx = i;
	}
	/* A failure fails the batch: bill_sign_lost then resets it all. */
	return sign_due(e, now, forcing, push);
}

int
bill_sign_run(int force, void (*push)(const struct ledger_entry *))
{
	int rc;

	if (used == 0)
		return 0;
	if (bill_batch_is_open()) {
		forcing = force;
		rc = bill_batch_commit(NULL);	/* its bill_sign_batch signs */
		forcing = 0;
		return rc;
	}
	rc = sign_due(NULL, clock_mono_ms(), force, push);
	if (rc != 0) {
		/* The store refused: every tail again in BILL_SIGN_MS. */
		int64_t now = clock_mono_ms();

		for (size_t i = 0; i < cap; i++)
			if (tab[i].agent_id != 0)
				tab[i].since_ms = now;
		due_ms = now + BILL_SIGN_MS;
	}
	return rc;
}

int64_t
bill_sign_due(void)
{
	if (rescan && (due_ms == 0 || rescan_at < due_ms))
		return rescan_at > 0 ? rescan_at : 1;
	return due_ms;
}

void
bill_sign_lost(void)
{
	free(tab);
	tab = NULL;
	cap = used = 0;
	due_ms = 0;
	rescan = 1;
	rescan_at = 0;
}

struct rescan_arg {
	void (*push)(const struct ledger_entry *);
	int fail;
};

static int
rescan_agent(const struct store_agent *a, void *arg)
{
	struct rescan_arg *ra = arg;
	struct ledger_entry e;
	char hash[65];
	uint64_t seq;

	if (store_ledger_head(bill_store, a->id, &seq, hash) != 0 ||
	    (seq > 0 && store_ledger_get(bill_store, a->id, seq, &e) == -1)) {
		ra->fail = 1;
		return 0;
	}
	if (seq == 0 || ledger_signed(&e))
		return 0;
	if (sign_store(&e) != 0) {
		ra->fail = 1;
		return 0;
	}
	log_info("agent %llu: signed its chain's last entry (seq %llu), left "
	    "unsigned when billing stopped", (unsigned long long)a->id,
	    (unsigned long long)seq);
	ra->push(&e);
	return 0;
}

int
bill_sign_rescan(void (*push)(const struct ledger_entry *))
{
	struct rescan_arg ra = { push, 0 };

	if (!rescan || clock_mono_ms() < rescan_at)
		return 0;
	if (store_agent_list(bill_store, rescan_agent, &ra) != 0 || ra.fail) {
		log_warn("signing the chains' unsigned last entries: %s (again "
		    "in %d ms)", store_errmsg(bill_store), RESCAN_RETRY_MS);
		rescan_at = clock_mono_ms() + RESCAN_RETRY_MS;
		return -1;
	}
	rescan = 0;
	return 0;
}
