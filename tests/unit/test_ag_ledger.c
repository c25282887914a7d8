/*
 * tests/unit/test_ag_ledger: the agent's ledger database (agent/ag_ledger)
 * against receipts a test hub key signs with lib/ledger: receipts in order
 * are stored and the chain verifies; a tampered amount, hash, prev_hash or
 * signature is refused and stores nothing; a gap is reported; a replay is
 * answered as the first time, another hash at a stored seq is a conflict;
 * amount, usage and price-version mismatches become disputes; export is
 * LEDGER_CSV_HEADER plus ledger_csv_line per entry; a row tampered with in
 * the file makes verify name its seq; the hub key and prices never change
 * once stored; served records' reporting states; the file's mode and
 * schema version; the checkpoint thread.  Each test gets a fresh state
 * directory.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <sys/stat.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>
#include <sqlite3.h>

#include "agent/ag_ledger.h"
#include "agent/ag_ledger_int.h"
#include "lib/ledger.h"
#include "lib/log.h"
#include "lib/money.h"

#define AGENT		7
#define MODEL		"gpt-4o"

/* One test's world: a state dir, the database, the hub's keys. */
struct world {
	char dir[64];
	char state[96];
	char db[128];
	struct ag_ledger *lg;
	unsigned char pk[LEDGER_PK_LEN], sk[LEDGER_SK_LEN];
	struct ledger_entry chain[1100];	/* [seq]: what the hub issued */
};

static const struct money_prices prices_v1 = {
	.input = 2500000, .output = 10000000, .cached_input = 1250000,
	.cache_write = 3750000
};

static void
rm_rf(const char *dir)
{
	char p[512];
	struct dirent *de;
	DIR *d;

	if ((d = opendir(dir)) == NULL)
		return;
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		snprintf(p, sizeof(p), "%s/%s", dir, de->d_name);
		if (unlink(p) != 0)
			rm_rf(p);
	}
	closedir(d);
	rmdir(dir);
}

static int
setup(void **state)
{
	struct world *w = calloc(1, sizeof(*w));
	char err[256];

	if (w == NULL)
		return -1;
	snprintf(w->dir, sizeof(w->dir), "/tmp/swb-agledger.XXXXXX");
	if (mkdtemp(w->dir) == NULL)
		return -1;
	/* A nested directory that does not exist yet. */
	snprintf(w->state, sizeof(w->state), "%s/var/state", w->dir);
	snprintf(w->db, sizeof(w->db), "%s/%s", w->state, AG_LEDGER_FILE);
	w->lg = ag_ledger_open(w->state, AG_LEDGER_CREATE, err, sizeof(err));
	if (w->lg == NULL) {
		fprintf(stderr, "open: %s\n", err);
		return -1;
	}
	crypto_sign_keypair(w->pk, w->sk);
	if (ag_ledger_hub_key_set(w->lg, AGENT, w->pk) != 0 ||
	    ag_ledger_price_put(w->lg, MODEL, 1, &prices_v1) != 0)
		return -1;
	*state = w;
	return 0;
}

static int
teardown(void **state)
{
	struct world *w = *state;

	ag_ledger_close(w->lg);
	rm_rf(w->dir);
	free(w);
	return 0;
}

static int64_t
cost(int64_t in, int64_t out, int64_t cached, int64_t cw)
{
	int64_t c = -1;

	assert_int_equal(money_usage_cost(&prices_v1, in, out, cached, cw,
	    &c), 0);
	return c;
}

/* Fill e as the hub would, after chain[seq - 1]: hashed and signed. */
static void
issue_as(struct world *w, struct ledger_entry *e, uint64_t seq,
    const char *rid, int64_t in, int64_t out, int64_t cached, int64_t amount)
{
	memset(e, 0, sizeof(*e));
	e->agent_id = AGENT;
	e->seq = seq;
	snprintf(e->prev_hash, sizeof(e->prev_hash), "%s", seq == 1 ?
	    LEDGER_GENESIS : w->chain[seq - 1].hash);
	snprintf(e->request_id, sizeof(e->request_id), "%s", rid);
	e->token_id = 3;
	snprintf(e->model, sizeof(e->model), "%s", MODEL);
	e->input_tokens = in;
	e->output_tokens = out;
	e->cached_tokens = cached;
	e->price_version = 1;
	e->amount = amount;
	e->created_at = 1700000000 + (int64_t)seq;
	assert_int_equal(ledger_hash(e), 0);
	assert_int_equal(ledger_sign(e, w->sk), 0);
}

/* Issue the next entry with the right amount and remember it. */
static struct ledger_entry *
issue(struct world *w, uint64_t seq, const char *rid, int64_t in,
    int64_t out, int64_t cached)
{
	issue_as(w, &w->chain[seq], seq, rid, in, out, cached,
	    cost(in, out, cached, 0));
	return &w->chain[seq];
}

static void
apply(struct world *w, const struct ledger_entry *e,
    enum ag_receipt_verdict v, int ok, int stored,
    struct ag_receipt_result *r)
{
	assert_int_equal(ag_ledger_receipt_apply(w->lg, e, r), 0);
	if (r->verdict != v)
		fail_msg("seq %llu: verdict %d, expected %d (%s)",
		    (unsigned long long)e->seq, r->verdict, v, r->reason);
	assert_int_equal(r->ok, ok);
	assert_int_equal(r->stored, stored);
}

static void
serve(struct world *w, const char *rid, int64_t in, int64_t out,
    int64_t cached, int estimated)
{
	struct ag_served s;

	memset(&s, 0, sizeof(s));
	snprintf(s.request_id, sizeof(s.request_id), "%s", rid);
	s.agent_id = AGENT;
	snprintf(s.model, sizeof(s.model), "%s", MODEL);
	s.input_tokens = in;
	s.output_tokens = out;
	s.cached_tokens = cached;
	s.estimated = estimated;
	s.created_at = 1000;
	assert_int_equal(ag_ledger_served_record(w->lg, &s), 0);
}

static uint64_t
head_seq(struct world *w)
{
	struct ledger_entry h;

	assert_true(ag_ledger_head(w->lg, AGENT, &h) >= 0);
	return h.seq;
}

/* Three receipts in order (agent_reported, a cached part, no served
 * record for the third). */
static void
three(struct world *w)
{
	struct ag_receipt_result r;

	serve(w, "req-1", 1000, 500, 0, 0);
	serve(w, "req-2", 2000, 40, 1024, 0);
	apply(w, issue(w, 1, "req-1", 1000, 500, 0), AG_RCPT_STORED, 1, 1, &r);
	assert_int_equal(r.served, 1);
	assert_int_equal(r.head_seq, 1);
	apply(w, issue(w, 2, "req-2", 2000, 40, 1024), AG_RCPT_STORED, 1, 1,
	    &r);
	apply(w, issue(w, 3, "req-3", 10, 3, 0), AG_RCPT_STORED, 1, 1, &r);
	assert_int_equal(r.served, 0);
	assert_int_equal(r.head_seq, 3);
}

static void
test_in_order(void **state)
{
	struct world *w = *state;
	struct ledger_entry h, e;
	struct ag_served s;
	char hash[LEDGER_HEX_LEN + 1], why[160];
	uint64_t n, bad;
	struct stat st;

	/* Empty: seq 0 and the genesis hash; verify is fine. */
	assert_int_equal(ag_ledger_head(w->lg, AGENT, &h), 1);
	assert_int_equal(h.seq, 0);
	assert_string_equal(h.hash, LEDGER_GENESIS);
	assert_int_equal(ag_ledger_verify(w->lg, AGENT, &n, hash, &bad, why,
	    sizeof(why)), 0);
	assert_int_equal(n, 0);
	assert_string_equal(hash, LEDGER_GENESIS);

	three(w);
	assert_int_equal(ag_ledger_head(w->lg, AGENT, &h), 0);
	assert_int_equal(h.seq, 3);
	assert_string_equal(h.hash, w->chain[3].hash);
	/* Every field came back as it went in. */
	for (uint64_t i = 1; i <= 3; i++) {
		assert_int_equal(ag_ledger_get(w->lg, AGENT, i, &e), 0);
		assert_memory_equal(&e, &w->chain[i], sizeof(e));
	}
	assert_int_equal(ag_ledger_get(w->lg, AGENT, 4, &e), 1);
	assert_int_equal(ag_ledger_verify(w->lg, AGENT, &n, hash, &bad, why,
	    sizeof(why)), 0);
	assert_int_equal(n, 3);
	assert_string_equal(hash, w->chain[3].hash);
	/* Served records are receipted. */
	assert_int_equal(ag_ledger_served_get(w->lg, "req-1", &s), 0);
	assert_int_equal(s.state, AG_SERVED_RECEIPTED);
	assert_int_equal(ag_ledger_served_get(w->lg, "req-2", &s), 0);
	assert_int_equal(s.state, AG_SERVED_RECEIPTED);
	assert_int_equal(ag_ledger_served_get(w->lg, "req-3", &s), 1);
	/* The file is the owner's alone. */
	assert_int_equal(stat(w->db, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	/* Another agent's chain is another chain. */
	assert_int_equal(ag_ledger_head(w->lg, AGENT + 1, &h), 1);
}

/* Strip the signature: a batch's earlier entry. */
static struct ledger_entry *
unsigned_(struct ledger_entry *e)
{
	memset(e->sig, 0, sizeof(e->sig));
	return e;
}

/*
 * One signature per batch: entries 1..3 come unsigned (held, no ack, not
 * stored), 4 signed stores the four in one go; a served record that
 * disagrees inside the batch is a dispute reported with it; the chain
 * verifies.
 */
static void
test_batch(void **state)
{
	struct world *w = *state;
	const struct ledger_entry *es;
	const struct ag_receipt_result *rs;
	struct ag_receipt_result r;
	struct ag_served s;
	char hash[LEDGER_HEX_LEN + 1], why[160];
	uint64_t n, bad;

	serve(w, "b-1", 1000, 500, 0, 0);
	serve(w, "b-2", 70, 7, 0, 0);	/* the hub bills 7 more input */
	apply(w, unsigned_(issue(w, 1, "b-1", 1000, 500, 0)), AG_RCPT_PENDING,
	    0, 0, &r);
	apply(w, unsigned_(issue(w, 2, "b-2", 77, 7, 0)), AG_RCPT_PENDING, 0, 0,
	    &r);
	/* The same pending receipt again (a replay): taken up again. */
	apply(w, &w->chain[2], AG_RCPT_PENDING, 0, 0, &r);
	apply(w, unsigned_(issue(w, 3, "b-3", 10, 3, 0)), AG_RCPT_PENDING, 0, 0,
	    &r);
	assert_int_equal(head_seq(w), 0);	/* nothing stored yet */
	assert_int_equal(ag_ledger_served_get(w->lg, "b-1", &s), 0);
	assert_int_equal(s.state, AG_SERVED_OPEN);
	apply(w, issue(w, 4, "b-4", 1, 1, 0), AG_RCPT_STORED, 1, 1, &r);
	assert_int_equal(r.head_seq, 4);
	assert_int_equal(ag_ledger_batch_done(w->lg, &es, &rs), 3);
	assert_int_equal(es[0].seq, 1);
	assert_int_equal(rs[0].verdict, AG_RCPT_STORED);
	assert_int_equal(es[1].seq, 2);
	assert_int_equal(rs[1].verdict, AG_RCPT_DISPUTE);
	assert_non_null(strstr(rs[1].reason, "usage differs"));
	assert_int_equal(rs[2].verdict, AG_RCPT_STORED);
	assert_int_equal(head_seq(w), 4);
	assert_int_equal(ag_ledger_served_get(w->lg, "b-1", &s), 0);
	assert_int_equal(s.state, AG_SERVED_RECEIPTED);
	assert_int_equal(ag_ledger_verify(w->lg, AGENT, &n, hash, &bad, why,
	    sizeof(why)), 0);
	assert_int_equal(n, 4);
	/* The next call reports no batch of its own. */
	apply(w, issue(w, 5, "b-5", 1, 1, 0), AG_RCPT_STORED, 1, 1, &r);
	assert_int_equal(ag_ledger_batch_done(w->lg, &es, &rs), 0);
}

/* The chain's last seq as another connection sees it: what is committed. */
static int64_t
committed_seq(struct world *w)
{
	sqlite3 *db;
	sqlite3_stmt *st;
	int64_t v = -1;

	assert_int_equal(sqlite3_open_v2(w->db, &db, SQLITE_OPEN_READONLY,
	    NULL), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, "SELECT coalesce(max(seq), 0) "
	    "FROM ledger", -1, &st, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(db);
	return v;
}

/* Committed up to seq n, and the chain verifies. */
static void
assert_committed(struct world *w, uint64_t n)
{
	char hash[LEDGER_HEX_LEN + 1], why[160];
	uint64_t got, bad;

	assert_int_equal(committed_seq(w), (int64_t)n);
	assert_int_equal(ag_ledger_verify(w->lg, AGENT, &got, hash, &bad, why,
	    sizeof(why)), 0);
	assert_int_equal(got, n);
}

static void
count_armed(void *arg)
{
	(*(int *)arg)++;
}

/* Entries 1..n-1 unsigned (held), n signed: what a billing batch sends;
 * rids "<pfx>-<seq>", each served as billed but for seq bad (0: none). */
static void
held_batch(struct world *w, const char *pfx, int from, int n, int bad)
{
	struct ag_receipt_result r;
	char rid[32];

	for (int i = from; i < from + n; i++) {
		snprintf(rid, sizeof(rid), "%s-%d", pfx, i);
		serve(w, rid, 100 + i, 10, 0, 0);
		issue(w, (uint64_t)i, rid, 100 + i + (i == bad ? 3 : 0), 10, 0);
		if (i < from + n - 1)
			apply(w, unsigned_(&w->chain[i]), AG_RCPT_PENDING, 0, 0,
			    &r);
	}
}

/*
 * With grouped writes a signed batch is stored a slice a call: 39 held
 * entries and the signed 40th take three calls (16, 16, then 7 and the
 * signed one).  While it is being stored nothing is committed (a flush
 * arms the timer again), each call reports its slice (a dispute in the
 * second), the last answers for the signed entry; then the group commits
 * the whole batch and the chain verifies.
 */
static void
test_batch_sliced(void **state)
{
	struct world *w = *state;
	const struct ledger_entry *es;
	const struct ag_receipt_result *rs;
	struct ag_receipt_result r;
	struct ledger_entry e;
	int armed = 0;

	ag_ledger_group(w->lg, count_armed, &armed);
	held_batch(w, "s", 1, 40, 20);
	apply(w, &w->chain[40], AG_RCPT_STORING, 0, 0, &r);
	assert_int_equal(r.head_seq, 16);
	assert_int_equal(ag_ledger_batch_done(w->lg, &es, &rs), 16);
	assert_int_equal(es[0].seq, 1);
	assert_int_equal(es[15].seq, 16);
	assert_int_equal(head_seq(w), 16);
	/* A flush now commits nothing and comes back later. */
	armed = 0;
	assert_int_equal(ag_ledger_flush(w->lg), 0);
	assert_int_equal(armed, 1);
	assert_int_equal(committed_seq(w), 0);

	assert_int_equal(ag_ledger_receipt_continue(w->lg, &e, &r), 0);
	assert_int_equal(r.verdict, AG_RCPT_STORING);
	assert_int_equal(e.seq, 40);
	assert_int_equal(ag_ledger_batch_done(w->lg, &es, &rs), 16);
	assert_int_equal(es[0].seq, 17);
	assert_int_equal(es[3].seq, 20);
	assert_int_equal(rs[3].verdict, AG_RCPT_DISPUTE);
	assert_non_null(strstr(rs[3].reason, "usage differs"));
	assert_int_equal(rs[4].verdict, AG_RCPT_STORED);

	assert_int_equal(ag_ledger_receipt_continue(w->lg, &e, &r), 0);
	assert_int_equal(r.verdict, AG_RCPT_STORED);
	assert_int_equal(r.ok, 1);
	assert_int_equal(r.head_seq, 40);
	assert_int_equal(e.seq, 40);
	assert_int_equal(ag_ledger_batch_done(w->lg, &es, &rs), 7);
	assert_int_equal(es[0].seq, 33);
	assert_int_equal(es[6].seq, 39);
	assert_int_equal(ag_ledger_receipt_continue(w->lg, &e, &r), 1);

	assert_int_equal(ag_ledger_flush(w->lg), 0);
	assert_committed(w, 40);
}

/*
 * A batch being stored is finished first by the next receipt (its own
 * acks are never given: the hub replays them), and by a close: what is
 * committed ends on a signed entry and verifies.
 */
static void
test_batch_sliced_finish(void **state)
{
	struct world *w = *state;
	struct ag_receipt_result r;
	struct ledger_entry e;
	char err[256];
	int armed = 0;

	ag_ledger_group(w->lg, count_armed, &armed);
	held_batch(w, "f", 1, 20, 0);
	apply(w, &w->chain[20], AG_RCPT_STORING, 0, 0, &r);
	/* The next batch's first entry: the rest of 1..20 goes first. */
	held_batch(w, "g", 21, 20, 0);
	assert_int_equal(head_seq(w), 20);
	assert_int_equal(ag_ledger_receipt_continue(w->lg, &e, &r), 1);
	apply(w, &w->chain[40], AG_RCPT_STORING, 0, 0, &r);
	assert_int_equal(r.head_seq, 36);
	/* Closed while storing 21..40: stored whole, then committed. */
	ag_ledger_close(w->lg);
	w->lg = ag_ledger_open(w->state, 0, err, sizeof(err));
	assert_non_null(w->lg);
	assert_committed(w, 40);
}

/*
 * A tampered entry inside a batch is refused by its own seq (its hash),
 * the batch is dropped (nothing stored), and a bad batch signature
 * refuses the signed entry: nothing of the batch is stored either.
 */
static void
test_batch_tampered(void **state)
{
	struct world *w = *state;
	struct ag_receipt_result r;
	struct ledger_entry t;
	char hash[LEDGER_HEX_LEN + 1], why[160];
	unsigned char pk2[LEDGER_PK_LEN], sk2[LEDGER_SK_LEN];
	uint64_t n, bad;

	apply(w, unsigned_(issue(w, 1, "t-1", 10, 1, 0)), AG_RCPT_PENDING, 0, 0,
	    &r);
	t = *unsigned_(issue(w, 2, "t-2", 10, 1, 0));
	t.amount += 1;			/* changed after hashing */
	apply(w, &t, AG_RCPT_REFUSED, 0, 0, &r);
	assert_non_null(strstr(r.reason, "seq 2: hash does not match"));
	/* The batch was dropped: seq 3 signed does not link to anything. */
	issue(w, 3, "t-3", 10, 1, 0);
	apply(w, &w->chain[3], AG_RCPT_GAP, 0, 0, &r);
	assert_int_equal(head_seq(w), 0);
	/* Replayed honestly, but the batch signed by another key. */
	apply(w, unsigned_(&w->chain[1]), AG_RCPT_PENDING, 0, 0, &r);
	apply(w, unsigned_(&w->chain[2]), AG_RCPT_PENDING, 0, 0, &r);
	crypto_sign_keypair(pk2, sk2);
	t = w->chain[3];
	assert_int_equal(ledger_sign(&t, sk2), 0);
	apply(w, &t, AG_RCPT_REFUSED, 0, 0, &r);
	assert_non_null(strstr(r.reason, "seq 3: bad hub signature"));
	assert_int_equal(head_seq(w), 0);
	/* And honestly signed: all three. */
	apply(w, &w->chain[1], AG_RCPT_PENDING, 0, 0, &r);
	apply(w, &w->chain[2], AG_RCPT_PENDING, 0, 0, &r);
	apply(w, issue(w, 3, "t-3", 10, 1, 0), AG_RCPT_STORED, 1, 1, &r);
	assert_int_equal(head_seq(w), 3);
	assert_int_equal(ag_ledger_verify(w->lg, AGENT, &n, hash, &bad, why,
	    sizeof(why)), 0);
}

static void
test_tampered_refused(void **state)
{
	struct world *w = *state;
	struct ag_receipt_result r;
	struct ledger_entry e;
	unsigned char pk2[LEDGER_PK_LEN], sk2[LEDGER_SK_LEN];

	three(w);
	issue(w, 4, "req-4", 100, 10, 0);

	/* The amount changed after the hub hashed and signed. */
	e = w->chain[4];
	e.amount += 1;
	apply(w, &e, AG_RCPT_REFUSED, 0, 0, &r);
	assert_non_null(strstr(r.reason, "hash does not match"));

	/* Re-hashed but not re-signed. */
	assert_int_equal(ledger_hash(&e), 0);
	apply(w, &e, AG_RCPT_REFUSED, 0, 0, &r);
	assert_non_null(strstr(r.reason, "bad hub signature"));

	/* A hash that is not the entry's. */
	e = w->chain[4];
	e.hash[0] = e.hash[0] == 'a' ? 'b' : 'a';
	apply(w, &e, AG_RCPT_REFUSED, 0, 0, &r);
	assert_non_null(strstr(r.reason, "hash"));

	/* A signature flipped in one bit. */
	e = w->chain[4];
	e.sig[5] ^= 1;
	apply(w, &e, AG_RCPT_REFUSED, 0, 0, &r);
	assert_non_null(strstr(r.reason, "signature"));

	/* Signed by another key. */
	crypto_sign_keypair(pk2, sk2);
	e = w->chain[4];
	assert_int_equal(ledger_sign(&e, sk2), 0);
	apply(w, &e, AG_RCPT_REFUSED, 0, 0, &r);
	assert_non_null(strstr(r.reason, "signature"));

	/* prev_hash that is not the head's. */
	e = w->chain[4];
	snprintf(e.prev_hash, sizeof(e.prev_hash), "%s", w->chain[2].hash);
	assert_int_equal(ledger_hash(&e), 0);
	assert_int_equal(ledger_sign(&e, w->sk), 0);
	apply(w, &e, AG_RCPT_REFUSED, 0, 0, &r);
	assert_non_null(strstr(r.reason, "prev_hash"));

	/* A well-signed entry billing a request the chain already holds. */
	issue_as(w, &e, 4, "req-2", 100, 10, 0, cost(100, 10, 0, 0));
	apply(w, &e, AG_RCPT_REFUSED, 0, 0, &r);
	assert_string_equal(r.reason, "request id already billed at seq 2");

	/* Nothing of that was stored; the real one still fits. */
	assert_int_equal(head_seq(w), 3);
	apply(w, &w->chain[4], AG_RCPT_STORED, 1, 1, &r);
	assert_int_equal(head_seq(w), 4);
}

static void
test_no_hub_key(void **state)
{
	struct world *w = *state;
	struct ag_receipt_result r;
	struct ledger_entry e;
	unsigned char other[LEDGER_PK_LEN], got[LEDGER_PK_LEN];

	/* The key, once learned, never changes. */
	memset(other, 0x55, sizeof(other));
	assert_int_equal(ag_ledger_hub_key_set(w->lg, AGENT, w->pk), 0);
	assert_int_equal(ag_ledger_hub_key_set(w->lg, AGENT, other), 1);
	assert_int_equal(ag_ledger_hub_key_get(w->lg, AGENT, got), 0);
	assert_memory_equal(got, w->pk, sizeof(got));

	/* An agent without a key stores nothing. */
	assert_int_equal(ag_ledger_hub_key_get(w->lg, AGENT + 1, got), 1);
	issue_as(w, &e, 1, "req-1", 1, 1, 0, cost(1, 1, 0, 0));
	e.agent_id = AGENT + 1;
	assert_int_equal(ledger_hash(&e), 0);
	assert_int_equal(ledger_sign(&e, w->sk), 0);
	apply(w, &e, AG_RCPT_REFUSED, 0, 0, &r);
	assert_non_null(strstr(r.reason, "no hub ledger key"));
	assert_int_equal(ag_ledger_head(w->lg, AGENT + 1, &e), 1);
}

static void
test_gap(void **state)
{
	struct world *w = *state;
	struct ag_receipt_result r;

	three(w);
	issue(w, 4, "req-4", 1, 1, 0);
	issue(w, 5, "req-5", 1, 1, 0);
	apply(w, &w->chain[5], AG_RCPT_GAP, 0, 0, &r);
	assert_int_equal(r.head_seq, 3);
	assert_int_equal(head_seq(w), 3);
	/* Filled in order, both fit. */
	apply(w, &w->chain[4], AG_RCPT_STORED, 1, 1, &r);
	apply(w, &w->chain[5], AG_RCPT_STORED, 1, 1, &r);
	assert_int_equal(r.head_seq, 5);
	/* A gap from an empty chain. */
	{
		struct ledger_entry e;

		issue_as(w, &e, 2, "x", 1, 1, 0, cost(1, 1, 0, 0));
		e.agent_id = AGENT + 1;
		assert_int_equal(ag_ledger_hub_key_set(w->lg, AGENT + 1,
		    w->pk), 0);
		apply(w, &e, AG_RCPT_GAP, 0, 0, &r);
		assert_int_equal(r.head_seq, 0);
	}
}

static void
test_replay_conflict(void **state)
{
	struct world *w = *state;
	struct ag_receipt_result r;
	struct ledger_entry e;

	three(w);
	/* The same receipts again: the same answers, nothing added. */
	apply(w, &w->chain[1], AG_RCPT_REPLAY, 1, 1, &r);
	apply(w, &w->chain[2], AG_RCPT_REPLAY, 1, 1, &r);
	apply(w, &w->chain[3], AG_RCPT_REPLAY, 1, 1, &r);
	assert_string_equal(r.reason, "");
	assert_int_equal(head_seq(w), 3);

	/* Seq 2 again, well signed, but another entry. */
	e = w->chain[2];
	e.output_tokens += 1;
	e.amount = cost(e.input_tokens, e.output_tokens, e.cached_tokens, 0);
	assert_int_equal(ledger_hash(&e), 0);
	assert_int_equal(ledger_sign(&e, w->sk), 0);
	apply(w, &e, AG_RCPT_CONFLICT, 0, 0, &r);
	assert_string_equal(r.reason, "conflict");
	/* Even badly signed: the stored hash decides. */
	e.sig[0] ^= 1;
	apply(w, &e, AG_RCPT_CONFLICT, 0, 0, &r);
	assert_int_equal(head_seq(w), 3);
	/* seq 0 is malformed, not a replay. */
	e = w->chain[1];
	e.seq = 0;
	apply(w, &e, AG_RCPT_REFUSED, 0, 0, &r);
}

/* Disputes seen by the callback. */
struct seen {
	int n;
	struct ag_dispute d[8];
};

static int
on_dispute(const struct ag_dispute *d, void *arg)
{
	struct seen *s = arg;

	if (s->n < 8)
		s->d[s->n] = *d;
	s->n++;
	return 0;
}

static void
test_disputes(void **state)
{
	struct world *w = *state;
	struct ag_receipt_result r;
	struct ag_served s;
	struct seen seen;
	struct ledger_entry *e;
	char want[160];

	/* 1: the hub charged one micro-unit too much. */
	serve(w, "req-1", 1000, 500, 0, 0);
	e = &w->chain[1];
	issue_as(w, e, 1, "req-1", 1000, 500, 0, cost(1000, 500, 0, 0) + 1);
	apply(w, e, AG_RCPT_DISPUTE, 0, 1, &r);
	assert_string_equal(r.reason, "amount");
	assert_int_equal(r.agent_amount, cost(1000, 500, 0, 0));
	/* Stored all the same, and receipted. */
	assert_int_equal(head_seq(w), 1);
	assert_int_equal(ag_ledger_served_get(w->lg, "req-1", &s), 0);
	assert_int_equal(s.state, AG_SERVED_RECEIPTED);

	/* 2: the agent read other numbers (an estimate, here). */
	serve(w, "req-2", 300, 10, 0, 1);
	apply(w, issue(w, 2, "req-2", 300, 12, 0), AG_RCPT_DISPUTE, 0, 1, &r);
	assert_string_equal(r.reason, "usage differs: agent in=300 out=10 "
	    "cached=0 cache_write=0 (estimated)");
	assert_int_equal(r.agent_amount, cost(300, 10, 0, 0));

	/* 3: a price version the agent never heard of. */
	e = &w->chain[3];
	issue_as(w, e, 3, "req-3", 5, 5, 0, 99);
	e->price_version = 7;
	assert_int_equal(ledger_hash(e), 0);
	assert_int_equal(ledger_sign(e, w->sk), 0);
	apply(w, e, AG_RCPT_DISPUTE, 0, 1, &r);
	assert_string_equal(r.reason, "unknown price version");
	assert_int_equal(r.agent_amount, -1);

	/* 4: no price (version 0) costs nothing. */
	e = &w->chain[4];
	issue_as(w, e, 4, "req-4", 5, 5, 0, 0);
	e->price_version = 0;
	assert_int_equal(ledger_hash(e), 0);
	assert_int_equal(ledger_sign(e, w->sk), 0);
	apply(w, e, AG_RCPT_STORED, 1, 1, &r);

	/* A replay of a disputed entry repeats the dispute. */
	apply(w, &w->chain[2], AG_RCPT_REPLAY, 0, 1, &r);
	snprintf(want, sizeof(want), "usage differs: agent in=300 out=10 "
	    "cached=0 cache_write=0 (estimated)");
	assert_string_equal(r.reason, want);
	assert_int_equal(r.agent_amount, cost(300, 10, 0, 0));

	memset(&seen, 0, sizeof(seen));
	assert_int_equal(ag_ledger_disputes(w->lg, 0, on_dispute, &seen), 3);
	assert_int_equal(seen.d[0].seq, 1);
	assert_string_equal(seen.d[0].request_id, "req-1");
	assert_int_equal(seen.d[0].hub_amount, cost(1000, 500, 0, 0) + 1);
	assert_int_equal(seen.d[0].agent_amount, cost(1000, 500, 0, 0));
	assert_string_equal(seen.d[1].reason, want);
	assert_int_equal(seen.d[2].hub_amount, 99);
	assert_int_equal(seen.d[2].agent_amount, -1);
	memset(&seen, 0, sizeof(seen));
	assert_int_equal(ag_ledger_disputes(w->lg, AGENT + 1, on_dispute,
	    &seen), 0);

	/* The chain itself is sound: disputes are about money, not links. */
	{
		char hash[LEDGER_HEX_LEN + 1], why[160];
		uint64_t n, bad;

		assert_int_equal(ag_ledger_verify(w->lg, AGENT, &n, hash, &bad,
		    why, sizeof(why)), 0);
		assert_int_equal(n, 4);
	}
}

static void
test_export(void **state)
{
	struct world *w = *state;
	char *buf = NULL, line[LEDGER_CSV_MAX], *want;
	size_t len = 0, wlen;
	FILE *f;

	/* Empty: the header alone. */
	f = open_memstream(&buf, &len);
	assert_non_null(f);
	assert_int_equal(ag_ledger_export(w->lg, AGENT, f), 0);
	fclose(f);
	assert_string_equal(buf, LEDGER_CSV_HEADER);
	free(buf);

	three(w);
	want = calloc(1, 4 * LEDGER_CSV_MAX);
	assert_non_null(want);
	strcpy(want, LEDGER_CSV_HEADER);
	for (int i = 1; i <= 3; i++) {
		assert_true(ledger_csv_line(&w->chain[i], line,
		    sizeof(line)) > 0);
		strcat(want, line);
	}
	buf = NULL;
	f = open_memstream(&buf, &len);
	assert_non_null(f);
	assert_int_equal(ag_ledger_export(w->lg, AGENT, f), 3);
	fclose(f);
	wlen = strlen(want);
	assert_int_equal(len, wlen);
	assert_string_equal(buf, want);
	/* Amounts are decimals with six places. */
	assert_non_null(strstr(buf, ",0.007500,"));
	free(buf);
	free(want);
}

/* Run sql on the database file behind the ledger's back. */
static void
tamper(struct world *w, const char *sql)
{
	sqlite3 *db;

	assert_int_equal(sqlite3_open(w->db, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_changes(db), 1);
	sqlite3_close(db);
}

static void
expect_broken(struct world *w, uint64_t seq, const char *what)
{
	char hash[LEDGER_HEX_LEN + 1], why[160];
	uint64_t n, bad;

	assert_int_equal(ag_ledger_verify(w->lg, AGENT, &n, hash, &bad, why,
	    sizeof(why)), 1);
	assert_int_equal(bad, seq);
	if (strstr(why, what) == NULL)
		fail_msg("verify said '%s', expected '%s'", why, what);
}

static void
test_verify_tampered(void **state)
{
	struct world *w = *state;
	char sql[256];

	three(w);
	tamper(w, "UPDATE ledger SET amount = amount + 1 WHERE seq = 2");
	expect_broken(w, 2, "seq 2: hash does not match");
	tamper(w, "UPDATE ledger SET amount = amount - 1 WHERE seq = 2");

	/* A hash rewritten to fit the changed row: its signature fails. */
	{
		struct ledger_entry e = w->chain[2];

		e.output_tokens = 1;
		assert_int_equal(ledger_hash(&e), 0);
		snprintf(sql, sizeof(sql), "UPDATE ledger SET output_tokens = "
		    "1, hash = '%s' WHERE seq = 2", e.hash);
		tamper(w, sql);
		expect_broken(w, 2, "signature");
		snprintf(sql, sizeof(sql), "UPDATE ledger SET output_tokens = "
		    "%lld, hash = '%s' WHERE seq = 2",
		    (long long)w->chain[2].output_tokens, w->chain[2].hash);
		tamper(w, sql);
	}

	/* A row taken out of the middle. */
	tamper(w, "DELETE FROM ledger WHERE seq = 2");
	expect_broken(w, 3, "does not follow");
}

/* The records due, from the first page. */
static int
due_first(struct ag_ledger *lg, int64_t created_before,
    int64_t reported_before, struct ag_served *out, size_t max)
{
	struct ag_served_page pg = { 0, 0 };

	return ag_ledger_served_due(lg, created_before, reported_before, &pg,
	    out, max);
}

static void
test_served(void **state)
{
	struct world *w = *state;
	struct ag_served_page pg = { 0, 0 };
	struct ag_served s, due[4];
	int n;

	memset(&s, 0, sizeof(s));
	snprintf(s.request_id, sizeof(s.request_id), "r-a");
	s.agent_id = AGENT;
	s.input_tokens = 10;
	s.output_tokens = 3;
	s.estimated = 1;
	s.created_at = 10000;
	/* An empty model is allowed (a body without one). */
	assert_int_equal(ag_ledger_served_record(w->lg, &s), 0);
	assert_int_equal(ag_ledger_served_record(w->lg, &s), 1);
	snprintf(s.request_id, sizeof(s.request_id), "r-b");
	snprintf(s.model, sizeof(s.model), MODEL);
	s.created_at = 12000;
	assert_int_equal(ag_ledger_served_record(w->lg, &s), 0);
	/* Not a printable id: refused. */
	snprintf(s.request_id, sizeof(s.request_id), "r c");
	assert_int_equal(ag_ledger_served_record(w->lg, &s), -1);

	/* Due: created before 11000 -> r-a only. */
	n = due_first(w->lg, 11000, 5000, due, 4);
	assert_int_equal(n, 1);
	assert_string_equal(due[0].request_id, "r-a");
	assert_string_equal(due[0].model, "");
	assert_int_equal(due[0].estimated, 1);
	assert_int_equal(due[0].state, AG_SERVED_OPEN);
	assert_int_equal(due_first(w->lg, 20000, 5000, due, 4), 2);
	assert_int_equal(due_first(w->lg, 20000, 5000, due, 1), 1);
	/* A page at a time, each after the last: a record the caller
	 * passed over is not read again. */
	assert_int_equal(ag_ledger_served_due(w->lg, 20000, 5000, &pg, due, 1),
	    1);
	assert_string_equal(due[0].request_id, "r-a");
	assert_int_equal(ag_ledger_served_due(w->lg, 20000, 5000, &pg, due, 1),
	    1);
	assert_string_equal(due[0].request_id, "r-b");
	assert_int_equal(ag_ledger_served_due(w->lg, 20000, 5000, &pg, due, 1),
	    0);
	/* Reported at 6000: not due again before 6000 + 10 s. */
	assert_int_equal(ag_ledger_served_sent(w->lg, "r-a", 6000), 0);
	n = due_first(w->lg, 20000, 6000, due, 4);
	assert_int_equal(n, 1);
	assert_string_equal(due[0].request_id, "r-b");
	assert_int_equal(due_first(w->lg, 20000, 6001, due, 4), 2);
	/* Settled: reported, and no longer due; only open moves so. */
	assert_int_equal(ag_ledger_served_mark(w->lg, AGENT, "r-a",
	    AG_SERVED_REPORTED), 0);
	assert_int_equal(ag_ledger_served_mark(w->lg, AGENT, "r-a",
	    AG_SERVED_REPORTED), 1);
	assert_int_equal(ag_ledger_served_mark(w->lg, AGENT + 1, "r-b",
	    AG_SERVED_REPORTED), 1);
	assert_int_equal(ag_ledger_served_mark(w->lg, AGENT, "nope",
	    AG_SERVED_REPORTED), 1);
	assert_int_equal(due_first(w->lg, 20000, 20000, due, 4), 1);
	assert_int_equal(ag_ledger_served_get(w->lg, "r-a", &s), 0);
	assert_int_equal(s.state, AG_SERVED_REPORTED);
	assert_int_equal(s.reported_at, 6000);
	/* A receipt settles a reported one too. */
	{
		struct ag_receipt_result r;

		apply(w, issue(w, 1, "r-a", 10, 3, 0), AG_RCPT_STORED, 1, 1,
		    &r);
		assert_int_equal(ag_ledger_served_get(w->lg, "r-a", &s), 0);
		assert_int_equal(s.state, AG_SERVED_RECEIPTED);
	}
	/* Recorded after its receipt: receipted at once. */
	{
		struct ag_receipt_result r;

		apply(w, issue(w, 2, "r-c", 1, 1, 0), AG_RCPT_STORED, 1, 1,
		    &r);
		assert_int_equal(r.served, 0);
		snprintf(s.request_id, sizeof(s.request_id), "r-c");
		assert_int_equal(ag_ledger_served_record(w->lg, &s), 0);
		assert_int_equal(ag_ledger_served_get(w->lg, "r-c", &s), 0);
		assert_int_equal(s.state, AG_SERVED_RECEIPTED);
	}
}

static void
test_prices_agents(void **state)
{
	struct world *w = *state;
	struct money_prices p, q = prices_v1;
	uint64_t ids[4];

	assert_int_equal(ag_ledger_price_get(w->lg, MODEL, 1, &p), 0);
	assert_memory_equal(&p, &prices_v1, sizeof(p));
	assert_int_equal(ag_ledger_price_put(w->lg, MODEL, 1, &prices_v1), 0);
	q.output += 1;
	assert_int_equal(ag_ledger_price_put(w->lg, MODEL, 1, &q), 1);
	assert_int_equal(ag_ledger_price_get(w->lg, MODEL, 1, &p), 0);
	assert_memory_equal(&p, &prices_v1, sizeof(p));
	assert_int_equal(ag_ledger_price_put(w->lg, MODEL, 2, &q), 0);
	assert_int_equal(ag_ledger_price_get(w->lg, MODEL, 2, &p), 0);
	assert_memory_equal(&p, &q, sizeof(p));
	assert_int_equal(ag_ledger_price_get(w->lg, MODEL, 3, &p), 1);
	assert_int_equal(ag_ledger_price_get(w->lg, "other", 1, &p), 1);
	assert_int_equal(ag_ledger_price_get(w->lg, "other", 0, &p), 0);
	assert_int_equal(p.input + p.output + p.cached_input + p.cache_write,
	    0);
	assert_int_equal(ag_ledger_price_put(w->lg, "a,b", 1, &q), -1);
	assert_int_equal(ag_ledger_price_put(w->lg, MODEL, 0, &q), -1);
	q.input = -1;
	assert_int_equal(ag_ledger_price_put(w->lg, MODEL, 5, &q), -1);

	assert_int_equal(ag_ledger_agents(w->lg, ids, 4), 1);
	assert_int_equal(ids[0], AGENT);
	assert_int_equal(ag_ledger_hub_key_set(w->lg, 3, w->pk), 0);
	assert_int_equal(ag_ledger_agents(w->lg, ids, 1), 2);
	assert_int_equal(ids[0], 3);
}

static void
test_reopen(void **state)
{
	struct world *w = *state;
	char err[256], hash[LEDGER_HEX_LEN + 1], why[160];
	uint64_t n, bad;
	struct ag_ledger *lg;

	three(w);
	ag_ledger_close(w->lg);
	/* The CLI's open: no create, and the data is there. */
	w->lg = ag_ledger_open(w->state, 0, err, sizeof(err));
	assert_non_null(w->lg);
	assert_int_equal(ag_ledger_verify(w->lg, AGENT, &n, hash, &bad, why,
	    sizeof(why)), 0);
	assert_int_equal(n, 3);

	/* No database there: the CLI says so, creating nothing. */
	lg = ag_ledger_open(w->dir, 0, err, sizeof(err));
	assert_null(lg);
	assert_non_null(strstr(err, "no ledger database"));

	/* A newer schema is refused. */
	ag_ledger_close(w->lg);
	tamper(w, "UPDATE schema_version SET version = 99");
	w->lg = ag_ledger_open(w->state, AG_LEDGER_CREATE, err, sizeof(err));
	assert_null(w->lg);
	assert_non_null(strstr(err, "newer"));
}

/*
 * What the ledger keeps in memory (the head, the hub key, prices) follows
 * a change another connection made to the file: an operator who edits
 * the agent's prices gets a dispute for the next receipt, not the old
 * price from memory.
 */
static void
test_outside_edit(void **state)
{
	struct world *w = *state;
	struct ag_receipt_result r;

	three(w);
	tamper(w, "UPDATE prices SET output = output + 1000000 WHERE "
	    "version = 1");
	serve(w, "req-4", 100, 10, 0, 0);
	apply(w, issue(w, 4, "req-4", 100, 10, 0), AG_RCPT_DISPUTE, 0, 1, &r);
	assert_string_equal(r.reason, "amount");
	tamper(w, "UPDATE prices SET output = output - 1000000 WHERE "
	    "version = 1");
	serve(w, "req-5", 100, 10, 0, 0);
	apply(w, issue(w, 5, "req-5", 100, 10, 0), AG_RCPT_STORED, 1, 1, &r);
	assert_int_equal(head_seq(w), 5);
}

/*
 * Version 3 kept served.state's CHECK as an IN list; version 4 copies the
 * table with the same CHECK as comparisons.  A version 3 file opened by
 * this agentd keeps every served row, and still refuses a state that is
 * not one of the three.
 */
static void
test_migrate_served_check(void **state)
{
	struct world *w = *state;
	struct ag_served s;
	sqlite3 *db;
	char err[256];

	ag_ledger_close(w->lg);
	w->lg = NULL;
	assert_int_equal(sqlite3_open(w->db, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db,
	    "DROP TABLE served;"
	    "CREATE TABLE served (request_id TEXT PRIMARY KEY,"
	    " agent_id INTEGER NOT NULL, model TEXT NOT NULL,"
	    " input_tokens INTEGER NOT NULL, output_tokens INTEGER NOT NULL,"
	    " cached_tokens INTEGER NOT NULL,"
	    " cache_write_tokens INTEGER NOT NULL,"
	    " estimated INTEGER NOT NULL CHECK (estimated IN (0, 1)),"
	    " state TEXT NOT NULL"
	    "  CHECK (state IN ('open','reported','receipted')),"
	    " created_at INTEGER NOT NULL,"
	    " reported_at INTEGER NOT NULL DEFAULT 0,"
	    " images INTEGER NOT NULL DEFAULT 0,"
	    " audio_seconds INTEGER NOT NULL DEFAULT 0,"
	    " audio_chars INTEGER NOT NULL DEFAULT 0,"
	    " video_seconds INTEGER NOT NULL DEFAULT 0);"
	    "CREATE INDEX served_due ON served (state, created_at);"
	    "INSERT INTO served VALUES ('old-1', 1, 'gpt-4o-mini', 11, 22, 3,"
	    " 4, 1, 'reported', 1000, 2000, 5, 6, 7, 8);"
	    "UPDATE schema_version SET version = 3;", NULL, NULL, NULL),
	    SQLITE_OK);
	sqlite3_close(db);

	w->lg = ag_ledger_open(w->state, AG_LEDGER_CREATE, err, sizeof(err));
	assert_non_null(w->lg);
	assert_int_equal(ag_ledger_served_get(w->lg, "old-1", &s), 0);
	assert_int_equal(s.agent_id, 1);
	assert_string_equal(s.model, "gpt-4o-mini");
	assert_int_equal(s.input_tokens, 11);
	assert_int_equal(s.output_tokens, 22);
	assert_int_equal(s.cached_tokens, 3);
	assert_int_equal(s.cache_write_tokens, 4);
	assert_int_equal(s.estimated, 1);
	assert_int_equal(s.state, AG_SERVED_REPORTED);
	assert_int_equal(s.created_at, 1000);
	assert_int_equal(s.images, 5);
	assert_int_equal(s.video_seconds, 8);
	ag_ledger_close(w->lg);
	w->lg = NULL;

	assert_int_equal(sqlite3_open(w->db, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "SELECT 1 FROM served_v4", NULL,
	    NULL, NULL), SQLITE_ERROR);
	assert_int_equal(sqlite3_exec(db, "UPDATE served SET state = "
	    "'bogus'", NULL, NULL, NULL), SQLITE_CONSTRAINT);
	assert_int_equal(sqlite3_exec(db, "UPDATE served SET state = "
	    "'receipted'", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	w->lg = ag_ledger_open(w->state, AG_LEDGER_CREATE, err, sizeof(err));
	assert_non_null(w->lg);
}

/* The query plan of sql, its steps' details joined by " | ". */
static void
plan_of(sqlite3 *db, const char *sql, char *out, size_t len)
{
	char q[1024];
	sqlite3_stmt *st;
	size_t n = 0;

	snprintf(q, sizeof(q), "EXPLAIN QUERY PLAN %s", sql);
	assert_int_equal(sqlite3_prepare_v2(db, q, -1, &st, NULL), SQLITE_OK);
	out[0] = '\0';
	while (sqlite3_step(st) == SQLITE_ROW && n < len)
		n += (size_t)snprintf(out + n, len - n, "%s | ",
		    (const char *)sqlite3_column_text(st, 3));
	sqlite3_finalize(st);
}

/*
 * Version 5's indexes serve served's reads: the usage reports' sweep
 * reads the open rows through the partial served_open (a receipted row
 * is not in it), the caps' day of usage and the UI's recent list walk
 * served_created instead of the whole table and a sort.
 */
static void
test_served_plans(void **state)
{
	struct world *w = *state;
	char plan[512];
	sqlite3 *db;

	assert_int_equal(sqlite3_open(w->db, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "ANALYZE", NULL, NULL, NULL),
	    SQLITE_OK);
	plan_of(db, AG_SQL_SERVED_DUE, plan, sizeof(plan));
	assert_non_null(strstr(plan, "USING INDEX served_open"));
	assert_null(strstr(plan, "TEMP B-TREE"));
	plan_of(db, AG_SQL_SERVED_SINCE, plan, sizeof(plan));
	assert_non_null(strstr(plan, "served USING INDEX served_created "
	    "(created_at>?)"));
	plan_of(db, AG_SQL_SERVED_RECENT, plan, sizeof(plan));
	assert_non_null(strstr(plan, "SCAN s USING INDEX served_created"));
	assert_null(strstr(plan, "TEMP B-TREE"));
	/* A receipted row leaves the partial index. */
	assert_int_equal(sqlite3_exec(db, "INSERT INTO served (request_id, "
	    "agent_id, model, input_tokens, output_tokens, cached_tokens, "
	    "cache_write_tokens, estimated, state, created_at) VALUES "
	    "('p1', 1, 'm', 1, 1, 0, 0, 0, 'open', 5), "
	    "('p2', 1, 'm', 1, 1, 0, 0, 0, 'open', 6);"
	    "UPDATE served SET state = 'receipted' WHERE request_id = 'p1'",
	    NULL, NULL, NULL), SQLITE_OK);
	{
		sqlite3_stmt *st;

		assert_int_equal(sqlite3_prepare_v2(db, "SELECT COUNT(*) FROM "
		    "served INDEXED BY served_open WHERE state = 'open'", -1,
		    &st, NULL), SQLITE_OK);
		assert_int_equal(sqlite3_step(st), SQLITE_ROW);
		assert_int_equal(sqlite3_column_int(st, 0), 1);
		sqlite3_finalize(st);
	}
	sqlite3_close(db);
}

/* Hold seqs from..to (ids "p-<seq>") unsigned, each PENDING. */
static void
hold(struct world *w, uint64_t from, uint64_t to)
{
	struct ag_receipt_result r;
	char rid[32];

	for (uint64_t s = from; s <= to; s++) {
		snprintf(rid, sizeof(rid), "p-%llu", (unsigned long long)s);
		apply(w, unsigned_(issue(w, s, rid, 1, 1, 0)), AG_RCPT_PENDING,
		    0, 0, &r);
	}
}

/* An unsigned entry at seq billing rid again: refused, naming its seq
 * (the pending batch goes with it: the hub replays). */
static void
dup_refused(struct world *w, uint64_t seq, const char *rid, uint64_t at)
{
	struct ag_receipt_result r;
	struct ledger_entry e;
	char want[64];

	issue_as(w, &e, seq, rid, 1, 1, 0, cost(1, 1, 0, 0));
	apply(w, unsigned_(&e), AG_RCPT_REFUSED, 0, 0, &r);
	snprintf(want, sizeof(want), "request id already billed at seq %llu",
	    (unsigned long long)at);
	assert_string_equal(r.reason, want);
}

/* A request id already in the pending batch is found wherever it is
 * held, also after the batch was cut short by a replay (the ids cut off
 * are free again) and after the index was rebuilt. */
static void
test_pending_index(void **state)
{
	struct world *w = *state;
	struct ag_receipt_result r;
	char rid[32];

	hold(w, 1, 700);
	dup_refused(w, 701, "p-1", 1);
	hold(w, 1, 700);			/* the hub replays */
	dup_refused(w, 701, "p-350", 350);
	hold(w, 1, 700);
	dup_refused(w, 701, "p-700", 700);

	/* Cut at 300 by a replay of it: p-301.. are no longer held. */
	hold(w, 1, 700);
	apply(w, &w->chain[300], AG_RCPT_PENDING, 0, 0, &r);
	issue(w, 301, "p-500", 1, 1, 0);
	apply(w, unsigned_(&w->chain[301]), AG_RCPT_PENDING, 0, 0, &r);
	dup_refused(w, 302, "p-500", 301);

	/* Cut again and again without emptying: 2,100 insertions, so the
	 * index is rebuilt on the way. */
	hold(w, 1, 700);
	for (int round = 0; round < 2; round++) {
		apply(w, &w->chain[2], AG_RCPT_PENDING, 0, 0, &r);
		hold(w, 3, 700);
	}
	dup_refused(w, 701, "p-5", 5);
	hold(w, 1, 1000);
	snprintf(rid, sizeof(rid), "p-%d", 1001);
	apply(w, issue(w, 1001, rid, 1, 1, 0), AG_RCPT_STORED, 1, 1, &r);
	assert_committed(w, 1001);
}

/*
 * AG_LEDGER_CHECKPOINTER (agentd's loop): a commit that takes the WAL past
 * 1,000 pages does not copy it into the database file itself; the
 * checkpoint thread does, soon after.  Without the flag there is no
 * thread (SQLite checkpoints in the commit, as by default).
 */
static void
test_checkpoint_thread(void **state)
{
	struct world *w = *state;
	struct stat sb;
	char err[256];
	int i;

	assert_int_equal(ag_ckpt_count(w->lg->ckpt), 0);
	assert_null(w->lg->ckpt);
	ag_ledger_close(w->lg);
	w->lg = ag_ledger_open(w->state, AG_LEDGER_CREATE |
	    AG_LEDGER_CHECKPOINTER, err, sizeof(err));
	assert_non_null(w->lg);
	assert_non_null(w->lg->ckpt);
	/* About 1,250 pages of 4 KB in one commit. */
	assert_int_equal(sqlite3_exec(w->lg->db, "CREATE TABLE pad (b BLOB);"
	    "INSERT INTO pad VALUES (zeroblob(5000000))", NULL, NULL, NULL),
	    SQLITE_OK);
	for (i = 0; i < 500 && ag_ckpt_count(w->lg->ckpt) == 0; i++)
		usleep(10000);
	assert_true(ag_ckpt_count(w->lg->ckpt) >= 1);
	/* The blob is in the database file now, not only in the WAL. */
	assert_int_equal(stat(w->db, &sb), 0);
	assert_true(sb.st_size >= 5000000);
	/* The ledger still works, and closes (joining the thread). */
	assert_int_equal(ag_ledger_price_put(w->lg, MODEL, 2, &prices_v1), 0);
	ag_ledger_close(w->lg);
	w->lg = ag_ledger_open(w->state, 0, err, sizeof(err));
	assert_non_null(w->lg);
	assert_null(w->lg->ckpt);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
#define T(f)	cmocka_unit_test_setup_teardown(f, setup, teardown)
		T(test_in_order),
		T(test_migrate_served_check),
		T(test_served_plans),
		T(test_outside_edit),
		T(test_tampered_refused),
		T(test_batch),
		T(test_pending_index),
		T(test_batch_tampered),
		T(test_batch_sliced),
		T(test_batch_sliced_finish),
		T(test_no_hub_key),
		T(test_gap),
		T(test_replay_conflict),
		T(test_disputes),
		T(test_export),
		T(test_verify_tampered),
		T(test_served),
		T(test_prices_agents),
		T(test_reopen),
		T(test_checkpoint_thread),
#undef T
	};

	if (sodium_init() < 0)
		return 1;
	log_init("test", "main", LOG_LVL_ERROR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
