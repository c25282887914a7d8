/*
 * billing/bill_ledger: settling requests into the per-agent ledger chain
 * and keeping each agent's copy in step, through the tunnel process.
 *
 * Whose numbers settle a request (the rule both sides document):
 *   - the hub read the provider's usage from the stream it relayed
 *     (IPC_POST_HUB): those numbers; the agent read the same bytes;
 *   - the stream was cut short (the user left, the agent was lost, the
 *     provider broke off) before the hub saw the usage: the request waits
 *     ('awaiting', IPC_POST_AWAIT) for the agent's own usage report — the
 *     provider's usage when the agent saw it, else its usage_estimate_cut()
 *     of what it received — and is settled with those numbers, flagged
 *     agent_reported.  If no report comes within [billing] report_grace,
 *     the hub's usage_estimate_cut() of what it relayed is billed;
 *   - the agent's resp_end carried usage the hub did not read itself
 *     (IPC_POST_AGENT): the agent's numbers, flagged agent_reported.
 * The amount is money_usage_cost at the model's latest price version when
 * the request ended (kept with an awaiting charge, so a late report is
 * priced as of the request).  Every posted charge appends one entry to its
 * agent's chain in the same transaction (store_charge_post), and the entry
 * is pushed to the tunnel as a receipt.  Settlement is idempotent by the
 * charge key; posts are acknowledged only after the store committed.  A
 * reservation its gateway never posts (the gateway died) is billed, after
 * [billing] stale_reservation, from its agent's report if one came, and
 * voided otherwise.
 *
 * Sync: an agent's sync (its last seq/hash) is answered with every price
 * version, then each entry after its last seq, then the hub's head.  When
 * billing.sock comes back after a restart, the tunnel asks again for each
 * online agent (no hash: from the last seq the agent acknowledged).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "billing/bill.h"
#include "lib/clock.h"
#include "lib/log.h"
#include "lib/money.h"

#if SWB_TEST_BUILD
#define SYNC_MAX	4	/* tests see the agent ask again, round after round */
#else
#define SYNC_MAX	20000	/* receipts per sync answer */
#endif
#define SWEEP_BATCH	200	/* awaiting charges settled per tick */
#define EXPORT_MAX	10000	/* entries per `ledger export` answer */

static struct msg_client *sub;	/* the tunnel's connection, when subscribed */

void
bill_ledger_drop_sub(void)
{
	if (sub != NULL)
		msg_srv_drop(sub, NULL);	/* bill_ledger_closed clears sub */
}

void
bill_ledger_closed(struct msg_client *c)
{
	if (c == sub) {
		sub = NULL;
		log_info("the tunnel's ledger subscription ended");
	}
}

static void
to_tunnel(uint16_t type, const void *p, size_t len)
{
	if (sub == NULL)
		return;		/* the agent catches up when it syncs */
	if (bill_send(sub, type, 0, p, len) != 0)
		log_warn("ledger: the tunnel's queue is full; the agent will "
		    "catch up at its next sync");
}

void
bill_ledger_to_tunnel(uint16_t type, const void *p, size_t len)
{
	to_tunnel(type, p, len);
}

static void
push_receipt(const struct ledger_entry *e)
{
	struct ipc_receipt r;

	memset(&r, 0, sizeof(r));
	r.e = *e;
	to_tunnel(IPC_LEDGER_RECEIPT, &r, sizeof(r));
}

/*
 * Price u at model's version (0: the latest; sets u->price_version).  A
 * model without a price costs 0 at version 0.  0, or -1 (store error or
 * overflow).
 */
static int
price_usage(struct store_charge_usage *u, int64_t version, uint64_t reqid)
{
	struct store_price pr;
	struct money_prices mp;
	struct money_units un;
	int rc;

	u->amount = 0;
	u->price_version = 0;
	if (u->model[0] == '\0')
		return 0;
	rc = bill_price_get(u->model, version, &pr);
	if (rc == 1 && version != 0)
		rc = bill_price_get(u->model, 0, &pr);
	if (rc == 1)
		return 0;
	if (rc == -1) {
		log_rwarn(reqid, "price of %s: %s", u->model,
		    store_errmsg(bill_store));
		return -1;
	}
	mp.input = pr.input;
	mp.output = pr.output;
	mp.cached_input = pr.cached_input;
	mp.cache_write = pr.cache_write;
	mp.image = pr.image;
	mp.audio_second = pr.audio_second;
	mp.audio_char = pr.audio_char;
	mp.video_second = pr.video_second;
	un.images = u->images;
	un.audio_seconds = u->audio_seconds;
	un.audio_chars = u->audio_chars;
	un.video_seconds = u->video_seconds;
	if (money_usage_cost_units(&mp, u->input_tokens, u->output_tokens,
	    u->cached_tokens, u->cache_write_tokens, &un, &u->amount) != 0) {
		log_rwarn(reqid, "cost of %s overflows", u->model);
		return -1;
	}
	u->price_version = pr.version;
	return 0;
}

/*
 * Entries the open batch appended, unsigned (SQLite batches only; on
 * PostgreSQL, where every call commits by itself, each entry is signed
 * as it is written).  bill_ledger_before_commit signs the chains that are
 * due (billing/bill_sign.c), then pushes every receipt, held until the
 * commit.
 */
static struct ledger_entry *bent;
static size_t nbent, cbent;

static int
batch_entry(const struct ledger_entry *e)
{
	if (nbent == cbent) {
		size_t cap = cbent ? cbent * 2 : 64;
		struct ledger_entry *n = realloc(bent, cap * sizeof(*n));
		if (n == NULL)
			return -1;
		bent = n;
		cbent = cap;
	}
	bent[nbent++] = *e;
	return 0;
}

int
bill_ledger_before_commit(void)
{
	/* A batch that cannot be signed is not committed: it is rolled
	 * back and nothing of it answered. */
	int rc = bill_sign_batch(bent, nbent, push_receipt);

	for (size_t i = 0; rc == 0 && i < nbent; i++)
		push_receipt(&bent[i]);
	nbent = 0;
	return rc;
}

int
bill_ledger_sign_due(int force)
{
	int64_t due;

	if (bill_sign_rescan(push_receipt) != 0)
		return -1;
	due = bill_sign_due();
	if (force || (due != 0 && due <= clock_mono_ms()))
		return bill_sign_run(force, push_receipt);
	return 0;
}

/* Post key with u (priced) for agent; push the receipt (with its batch,
 * its chain signed when bill_sign.c says).  0 posted now, 1 already settled, -1 error. */
static int
post(const char *key, uint64_t agent_id, struct store_charge_usage *u,
    int agent_reported, uint64_t reqid)
{
	struct ledger_entry e;
	int batched = bill_batch_is_open() &&
	    strcmp(store_engine(bill_store), "sqlite") == 0;
	int rc;

	rc = store_charge_post(bill_store, key, agent_id, u, agent_reported,
	    batched ? NULL : bill_key.sk, &e);
	if (rc == -1) {
		log_rwarn(reqid, "charge %s post: %s", key, store_errmsg(bill_store));
		return -1;
	}
	if (rc == 1) {
		log_rinfo(reqid, "charge %s was settled before (unchanged)", key);
		return 1;
	}
	log_rinfo(reqid, "charge %s posted%s: %lld micro-units (in=%lld "
	    "out=%lld cached=%lld, %s v%lld), agent %llu seq %llu", key,
	    agent_reported ? " from the agent's report" : "", (long long)u->amount,
	    (long long)u->input_tokens, (long long)u->output_tokens,
	    (long long)u->cached_tokens, u->model, (long long)u->price_version,
	    (unsigned long long)agent_id, (unsigned long long)e.seq);
	if (!batched)
		push_receipt(&e);
	else if (batch_entry(&e) != 0) {
		/* Not written then: the post is refused, the gateway resends. */
		log_rwarn(reqid, "charge %s: out of memory for its receipt", key);
		return -1;
	}
	return 0;
}

/*
 * The ledger takes model names of printable bytes without spaces, commas
 * or quotes (one CSV field).  A user's model name that is not one is
 * written with those bytes as '_' ("-" when empty), so that a post can
 * never be refused for its model — a refused post would be retried for
 * ever.
 */
static void
ledger_model(char *dst, size_t len, const char *src)
{
	size_t i;

	for (i = 0; i + 1 < len && src[i] != '\0'; i++)
		dst[i] = src[i] <= 0x20 || src[i] > 0x7e || src[i] == ',' ||
		    src[i] == '"' ? '_' : src[i];
	dst[i] = '\0';
	if (i == 0)
		snprintf(dst, len, "-");
}

/* u = model (as the ledger writes it) and the counts, never below 0. */
static void
usage_set(struct store_charge_usage *u, const char *model, int64_t in,
    int64_t out, int64_t cached, int64_t cache_write)
{
	memset(u, 0, sizeof(*u));
	ledger_model(u->model, sizeof(u->model), model);
	u->input_tokens = in < 0 ? 0 : in;
	u->output_tokens = out < 0 ? 0 : out;
	u->cached_tokens = cached < 0 ? 0 : cached;
	u->cache_write_tokens = cache_write < 0 ? 0 : cache_write;
}

static void
usage_from_post(struct store_charge_usage *u, const struct ipc_charge_post *p)
{
	char model[sizeof(p->model)];

	memcpy(model, p->model, sizeof(model));
	model[sizeof(model) - 1] = '\0';
	usage_set(u, model, p->input_tokens, p->output_tokens,
	    p->cached_tokens, p->cache_write_tokens);
	u->token_id = p->token_id;	/* if the reservation was lost */
	u->images = p->images < 0 ? 0 : p->images;
	u->audio_seconds = p->audio_seconds < 0 ? 0 : p->audio_seconds;
	u->audio_chars = p->audio_chars < 0 ? 0 : p->audio_chars;
	u->video_seconds = p->video_seconds < 0 ? 0 : p->video_seconds;
}

/* A post the hub read (HUB), priced now: for bill_job.c. */
static int
hub_post(const char *key, uint64_t agent_id, struct store_charge_usage *u,
    uint64_t reqid)
{
	if (price_usage(u, 0, reqid) != 0)
		return -1;
	return post(key, agent_id, u, 0, reqid);
}

void
bill_charge_post(struct msg_client *c, uint64_t reqid,
    const struct ipc_charge_post *p)
{
	struct ipc_charge_posted ack;
	struct store_charge_usage u;
	char key[40];
	int rc, noted = 0;

	ipc_charge_key(p->nonce, reqid, key, sizeof(key));
	usage_from_post(&u, p);
	switch (p->how) {
	case IPC_POST_VOID:
		rc = store_charge_settle(bill_store, key, NULL);
		if (rc == -1)
			log_rwarn(reqid, "charge %s void: %s", key,
			    store_errmsg(bill_store));
		else
			log_rinfo(reqid, "charge %s voided%s", key, rc == 1 ?
			    " (nothing to void)" : "");
		break;
	case IPC_POST_HUB:
	case IPC_POST_AGENT:
		rc = price_usage(&u, 0, reqid);
		if (rc == 0 && p->agent_id == 0) {
			/* No agent to chain it to: our gateway's bug. */
			log_rwarn(reqid, "charge %s: posted without an agent", key);
			rc = store_charge_settle(bill_store, key, &u);
		} else if (rc == 0) {
			/* The channel goes in the post's own UPDATE. */
			memcpy(u.channel, p->channel, sizeof(u.channel));
			u.channel[sizeof(u.channel) - 1] = '\0';
			rc = post(key, p->agent_id, &u, p->how == IPC_POST_AGENT,
			    reqid);
			noted = 1;
		}
		break;
	case IPC_POST_AWAIT:
		rc = price_usage(&u, 0, reqid);
		if (rc == 0)
			rc = store_charge_await(bill_store, key, p->agent_id, &u);
		if (rc == -1)
			log_rwarn(reqid, "charge %s await: %s", key,
			    store_errmsg(bill_store));
		else if (rc == 0)
			log_rinfo(reqid, "charge %s awaits agent %llu's usage "
			    "(hub's estimate: in=%lld out=%lld, %lld micro-units)",
			    key, (unsigned long long)p->agent_id,
			    (long long)u.input_tokens, (long long)u.output_tokens,
			    (long long)u.amount);
		break;
	case IPC_POST_JOB_OPEN:
	case IPC_POST_JOB_DONE:
	case IPC_POST_JOB_FAILED:
		rc = bill_job_post(key, reqid, p, &u, hub_post);
		break;
	default:
		log_rwarn(reqid, "charge %s: unknown post kind %u", key, p->how);
		rc = 1;
		break;
	}
	if (rc == 0 && !noted && p->how != IPC_POST_VOID &&
	    p->how != IPC_POST_JOB_OPEN)
		bill_admin_note_channel(key, p->channel);
	memset(&ack, 0, sizeof(ack));
	ack.nonce = p->nonce;
	ack.status = rc == -1 ? IPC_POSTED_RETRY : IPC_POSTED_OK;
	if (rc != -1 && p->how != IPC_POST_VOID) {
		/* What the gateway's access line says it cost. */
		ack.state = p->how == IPC_POST_AWAIT ? IPC_POSTED_AWAITING :
		    IPC_POSTED_CHARGED;
		ack.amount = u.amount;
	}
	if (bill_send(c, IPC_CHARGE_POSTED, reqid, &ack, sizeof(ack)) != 0)
		log_warn("billing client queue full");
}

/* ---- the tunnel's messages ----------------------------------------------- */

static int
push_price(const struct store_price *p, void *arg)
{
	struct ipc_price_push pp;

	memset(&pp, 0, sizeof(pp));
	pp.agent_id = *(const uint64_t *)arg;
	pp.version = p->version;
	pp.input = p->input;
	pp.output = p->output;
	pp.cached_input = p->cached_input;
	pp.cache_write = p->cache_write;
	pp.image = p->image;
	pp.audio_second = p->audio_second;
	pp.audio_char = p->audio_char;
	pp.video_second = p->video_second;
	snprintf(pp.model, sizeof(pp.model), "%s", p->model);
	to_tunnel(IPC_PRICE_PUSH, &pp, sizeof(pp));
	return 0;
}

void
bill_ledger_price_set(const struct store_price *p)
{
	uint64_t all = 0;

	push_price(p, &all);
}

/* A replay, one entry behind: the last one of the page is pushed by
 * replay_end, signed when its batch's signature is further on (a
 * signature over any entry covers the chain up to it). */
struct replay {
	struct ledger_entry prev;
	int have;
};

static int
push_entry(const struct ledger_entry *e, void *arg)
{
	struct replay *rp = arg;

	if (rp->have)
		push_receipt(&rp->prev);
	rp->prev = *e;
	rp->have = 1;
	return 0;
}

static void
replay_end(struct replay *rp)
{
	if (!rp->have)
		return;
	if (!ledger_signed(&rp->prev))
		(void)ledger_sign(&rp->prev, bill_key.sk);
	push_receipt(&rp->prev);
	rp->have = 0;
}

static void
on_sync(const struct ipc_ledger_sync *q0)
{
	struct ipc_ledger_sync q = *q0, done;
	struct replay rp = { .have = 0 };
	struct ledger_entry at;
	uint64_t from = q.seq, head = 0;
	char head_hash[65];

	q.hash[sizeof(q.hash) - 1] = '\0';
	if (store_price_all(bill_store, push_price, &q.agent_id) != 0)
		log_warn("agent %llu sync: prices: %s",
		    (unsigned long long)q.agent_id, store_errmsg(bill_store));
	if (store_ledger_head(bill_store, q.agent_id, &head, head_hash) != 0) {
		log_warn("agent %llu sync: %s", (unsigned long long)q.agent_id,
		    store_errmsg(bill_store));
		return;
	}
	if (q.hash[0] == '\0') {
		/* Billing came back: from what the agent acknowledged. */
		if (store_ledger_acked(bill_store, q.agent_id, &from) != 0)
			from = 0;
	} else if (from > head) {
		log_warn("agent %llu claims seq %llu but the hub's chain ends at "
		    "%llu", (unsigned long long)q.agent_id,
		    (unsigned long long)from, (unsigned long long)head);
		from = head;
	} else if (from > 0 && (store_ledger_get(bill_store, q.agent_id, from,
	    &at) != 0 || strcmp(at.hash, q.hash) != 0))
		log_warn("agent %llu's chain differs from the hub's at seq %llu: "
		    "replaying from there; the agent will refuse what does not "
		    "link (an operator must look)",
		    (unsigned long long)q.agent_id, (unsigned long long)from);
	if (from < head && store_ledger_list(bill_store, q.agent_id, from,
	    SYNC_MAX, push_entry, &rp) != 0)
		log_warn("agent %llu sync: %s", (unsigned long long)q.agent_id,
		    store_errmsg(bill_store));
	replay_end(&rp);
	if (from < head)
		log_info("agent %llu sync: replayed seq %llu..%llu",
		    (unsigned long long)q.agent_id, (unsigned long long)from + 1,
		    (unsigned long long)(head - from > SYNC_MAX ? from + SYNC_MAX :
		    head));
	memset(&done, 0, sizeof(done));
	done.agent_id = q.agent_id;
	done.seq = head;
	snprintf(done.hash, sizeof(done.hash), "%s", head_hash);
	to_tunnel(IPC_LEDGER_SYNCED, &done, sizeof(done));
}

static void
on_ack(const struct ipc_ledger_ack *a0)
{
	struct ipc_ledger_ack a = *a0;
	struct store_dispute d;
	struct ledger_entry e;
	int rc;

	a.hash[sizeof(a.hash) - 1] = '\0';
	a.reason[sizeof(a.reason) - 1] = '\0';
	if (a.ok && a.stored) {
		if (store_ledger_ack(bill_store, a.agent_id, a.seq) != 0)
			log_warn("agent %llu ack of seq %llu: %s",
			    (unsigned long long)a.agent_id,
			    (unsigned long long)a.seq, store_errmsg(bill_store));
		return;
	}
	if (!a.ok && a.stored)
		(void)store_ledger_ack(bill_store, a.agent_id, a.seq);
	rc = store_ledger_get(bill_store, a.agent_id, a.seq, &e);
	if (rc != 0) {
		log_warn("agent %llu refused seq %llu, which the hub does not "
		    "have: %s", (unsigned long long)a.agent_id,
		    (unsigned long long)a.seq, a.reason);
		return;
	}
	memset(&d, 0, sizeof(d));
	d.agent_id = a.agent_id;
	d.seq = a.seq;
	snprintf(d.request_id, sizeof(d.request_id), "%s", e.request_id);
	d.hub_amount = e.amount;
	d.agent_amount = a.agent_amount;
	snprintf(d.hub_hash, sizeof(d.hub_hash), "%s", e.hash);
	snprintf(d.reason, sizeof(d.reason), "%s%.140s", a.stored ? "" :
	    "not stored: ", a.reason[0] ? a.reason : "no reason given");
	for (char *p = d.reason; *p; p++)
		if (*p < 0x20 || *p > 0x7e)
			*p = '?';
	rc = store_dispute_add(bill_store, &d);
	if (rc == -1)
		log_warn("agent %llu dispute of seq %llu: %s",
		    (unsigned long long)a.agent_id, (unsigned long long)a.seq,
		    store_errmsg(bill_store));
	else if (rc == 0)
		log_warn("agent %llu disputes seq %llu (request %s, hub amount "
		    "%lld, agent's %lld): %s", (unsigned long long)a.agent_id,
		    (unsigned long long)a.seq, e.request_id, (long long)e.amount,
		    (long long)a.agent_amount, d.reason);
}

static const char *
on_usage(const struct ipc_usage_report *r0)
{
	struct ipc_usage_report r = *r0;
	struct store_charge c;
	struct store_charge_usage u;
	int rc;

	r.request_id[sizeof(r.request_id) - 1] = '\0';
	r.model[sizeof(r.model) - 1] = '\0';
	usage_set(&u, r.model, r.input_tokens, r.output_tokens,
	    r.cached_tokens, r.cache_write_tokens);
	rc = store_charge_get(bill_store, r.request_id, &c);
	if (rc == -1)
		return "retry";
	if (rc == 1) {
		log_warn("agent %llu reported usage of %s, which the hub never "
		    "charged: ignored", (unsigned long long)r.agent_id,
		    r.request_id);
		return "ignored";
	}
	if (strcmp(c.state, "posted") == 0)
		return "already";
	if (strcmp(c.state, "reserved") == 0) {
		/* Its gateway's post is on its way — or the gateway died: the
		 * report is kept so that the stale sweep bills it. */
		if (store_charge_note_report(bill_store, r.request_id,
		    r.agent_id, &u) == 0)
			log_info("agent %llu reported usage of %s before its "
			    "gateway posted it: kept", (unsigned long long)r.agent_id,
			    r.request_id);
		return "retry";
	}
	if (strcmp(c.state, "awaiting") != 0 || c.agent_id != r.agent_id) {
		log_warn("agent %llu reported usage of %s (%s, agent %llu): "
		    "ignored", (unsigned long long)r.agent_id, r.request_id,
		    c.state, (unsigned long long)c.agent_id);
		return "ignored";
	}
	/* Priced as the model the hub relayed, at the version of then. */
	if (strcmp(r.model, c.u.model) != 0)
		log_warn("agent %llu reported %s as model %s; the hub relayed %s",
		    (unsigned long long)r.agent_id, r.request_id, r.model,
		    c.u.model);
	snprintf(u.model, sizeof(u.model), "%s", c.u.model);
	if (price_usage(&u, c.u.price_version, 0) != 0)
		return "retry";
	rc = post(r.request_id, r.agent_id, &u, 1, 0);
	return rc == -1 ? "retry" : rc == 1 ? "already" : "settled";
}

void
bill_ledger_msg(struct msg_client *c, const struct msg *m)
{
	switch (m->hdr.type) {
	case IPC_LEDGER_SUB: {
		struct ipc_ledger_key k;
		if (sub != NULL && sub != c)
			log_warn("a second tunnel subscribed to the ledger; the "
			    "newest wins");
		sub = c;
		log_info("the tunnel (pid %d) subscribed to the ledger",
		    (int)c->pid);
		/* The public half, for the tunnel's welcome to agents. */
		memcpy(k.pk, bill_key.pk, sizeof(k.pk));
		if (bill_send(c, IPC_LEDGER_KEY, 0, &k, sizeof(k)) != 0)
			log_warn("ledger: cannot queue the public key for the "
			    "tunnel");
		break;
	}
	case IPC_LEDGER_SYNC: {
		struct ipc_ledger_sync q;
		memcpy(&q, m->data, sizeof(q));
		if (c == sub)
			on_sync(&q);
		break;
	}
	case IPC_LEDGER_ACK: {
		struct ipc_ledger_ack a;
		memcpy(&a, m->data, sizeof(a));
		on_ack(&a);
		break;
	}
	case IPC_USAGE_REPORT: {
		struct ipc_usage_report r;
		struct ipc_usage_result res;
		memcpy(&r, m->data, sizeof(r));
		memset(&res, 0, sizeof(res));
		res.agent_id = r.agent_id;
		memcpy(res.request_id, r.request_id, sizeof(res.request_id));
		res.request_id[sizeof(res.request_id) - 1] = '\0';
		snprintf(res.result, sizeof(res.result), "%s", on_usage(&r));
		if (bill_send(c, IPC_USAGE_RESULT, 0, &res, sizeof(res)) != 0)
			log_warn("billing client queue full");
		break;
	}
	default:
		break;
	}
}

/* ---- the sweep ------------------------------------------------------------ */

static int
settle_awaiting(const struct store_charge *c, void *arg)
{
	struct store_charge_usage u = c->u;

	if (u.input_tokens == 0 && u.output_tokens == 0 &&
	    u.cached_tokens == 0 && u.cache_write_tokens == 0) {
		/* Nothing reached the hub and the agent says nothing. */
		log_rinfo(0, "charge %s: no report from agent %llu and nothing "
		    "relayed: voided", c->request_id,
		    (unsigned long long)c->agent_id);
		if (store_charge_settle(bill_store, c->request_id, NULL) == -1)
			log_warn("charge %s void: %s", c->request_id,
			    store_errmsg(bill_store));
		return 0;
	}
	log_rinfo(0, "charge %s: agent %llu did not report its usage in time: "
	    "billing the hub's estimate", c->request_id,
	    (unsigned long long)c->agent_id);
	(void)post(c->request_id, c->agent_id, &u, 0, 0);
	return 0;
}

/*
 * A reservation its gateway never posted (the gateway died): billed from
 * its agent's report when one came (store_charge_note_report), else
 * voided.
 */
static int
settle_stale(const struct store_charge *c, void *arg)
{
	struct store_charge_usage u = c->u;

	if (c->agent_id == 0) {
		log_warn("charge %s: never posted (its gateway went away): "
		    "voided", c->request_id);
		if (store_charge_settle(bill_store, c->request_id, NULL) == -1)
			log_warn("charge %s void: %s", c->request_id,
			    store_errmsg(bill_store));
		return 0;
	}
	log_warn("charge %s: never posted (its gateway went away): billing "
	    "agent %llu's report", c->request_id,
	    (unsigned long long)c->agent_id);
	if (price_usage(&u, 0, 0) == 0)
		(void)post(c->request_id, c->agent_id, &u, 1, 0);
	return 0;
}

void
bill_ledger_tick(struct child_env *env)
{
	int64_t now = (int64_t)time(NULL);

	if (store_charge_list_awaiting(bill_store, now -
	    env->conf.bill_report_grace_ms / 1000, SWEEP_BATCH, settle_awaiting,
	    NULL) != 0)
		log_warn("awaiting charges: %s", store_errmsg(bill_store));
	if (store_charge_list_stale(bill_store, now -
	    env->conf.bill_stale_reservation_ms / 1000, SWEEP_BATCH,
	    settle_stale, NULL) != 0)
		log_warn("stale reservations: %s", store_errmsg(bill_store));
}

/* ---- admin: ledger export|verify, disputes -------------------------------- */

struct export {
	char *buf;
	size_t len, cap;
	uint64_t last;
	size_t n;
	int failed;
};

static int
export_entry(const struct ledger_entry *e, void *arg)
{
	struct export *x = arg;
	char line[LEDGER_CSV_MAX];
	int n = ledger_csv_line(e, line, sizeof(line));

	if (n < 0) {
		x->failed = 1;
		return 1;
	}
	if (x->len + (size_t)n + 1 > x->cap) {
		size_t cap = x->cap ? x->cap * 2 : 65536;
		char *nb = realloc(x->buf, cap);
		if (nb == NULL) {
			x->failed = 1;
			return 1;
		}
		x->buf = nb;
		x->cap = cap;
	}
	memcpy(x->buf + x->len, line, (size_t)n + 1);
	x->len += (size_t)n;
	x->last = e->seq;
	x->n++;
	return 0;
}

static void
cmd_export(struct child_env *env, uint64_t rid, uint64_t agent, uint64_t after)
{
	struct export x = { NULL, 0, 0, after, 0, 0 };
	uint64_t head;
	char hash[65];
	json_t *o;

	if (store_ledger_head(bill_store, agent, &head, hash) != 0 ||
	    store_ledger_list(bill_store, agent, after, EXPORT_MAX, export_entry,
	    &x) != 0 || x.failed) {
		free(x.buf);
		child_admin_error(env, rid, "ledger export: %s", x.failed ?
		    "an entry cannot be written as CSV" : store_errmsg(bill_store));
		return;
	}
	o = json_pack("{s:b, s:s, s:s, s:I, s:I}", "ok", 1, "header",
	    LEDGER_CSV_HEADER, "csv", x.buf ? x.buf : "", "head", (json_int_t)head,
	    "last", (json_int_t)x.last);
	json_object_set_new(o, "more", json_boolean(x.last < head));
	free(x.buf);
	bill_reply_json(env, rid, o);
}

struct walk {
	struct ledger_entry prev;
	int have_prev;
	uint64_t n;
	char why[200];
};

static int
walk_entry(const struct ledger_entry *e, void *arg)
{
	struct walk *w = arg;

	if (ledger_check_link(w->have_prev ? &w->prev : NULL, e,
	    bill_key.pk, w->why, sizeof(w->why)) != 0)
		return 1;
	w->prev = *e;
	w->have_prev = 1;
	w->n++;
	return 0;
}

/* Walk one agent's chain and append its row (ok, or the first break). */
static void
verify_one(uint64_t agent, json_t *rows)
{
	struct walk w;
	uint64_t head;
	char hash[65];
	int rc;

	memset(&w, 0, sizeof(w));
	if (store_ledger_head(bill_store, agent, &head, hash) != 0) {
		snprintf(w.why, sizeof(w.why), "%s", store_errmsg(bill_store));
		rc = 1;
	} else {
		/* In pages, so a long chain is never all in memory. */
		uint64_t before;
		do {
			before = w.n;
			rc = store_ledger_list(bill_store, agent, w.n, EXPORT_MAX,
			    walk_entry, &w);
		} while (rc == 0 && w.n > before && w.n < head);
		if (rc == -1)
			snprintf(w.why, sizeof(w.why), "%s",
			    store_errmsg(bill_store));
		else if (rc == 0 && (w.n != head || (head > 0 &&
		    strcmp(w.prev.hash, hash) != 0))) {
			snprintf(w.why, sizeof(w.why), "the chain has %llu "
			    "entries but its head says seq %llu",
			    (unsigned long long)w.n, (unsigned long long)head);
			rc = 1;
		} else if (rc == 0 && w.have_prev && !ledger_signed(&w.prev)) {
			snprintf(w.why, sizeof(w.why), "seq %llu: no signature "
			    "covers the chain's last entries",
			    (unsigned long long)w.prev.seq);
			rc = 1;
		}
	}
	json_array_append_new(rows, json_pack("{s:I, s:I, s:s, s:b, s:s}",
	    "agent", (json_int_t)agent, "entries", (json_int_t)w.n, "head",
	    w.have_prev ? w.prev.hash : LEDGER_GENESIS, "ok", rc == 0,
	    "error", rc == 0 ? "" : w.why));
}

static int
verify_agent_row(const struct store_agent *a, void *rows)
{
	verify_one(a->id, rows);
	return 0;
}

static void
cmd_verify(struct child_env *env, uint64_t rid, uint64_t agent)
{
	json_t *rows = json_array(), *o, *r = NULL;
	size_t i;

	if (agent != 0)
		verify_one(agent, rows);
	else if (store_agent_list(bill_store, verify_agent_row, rows) != 0) {
		json_decref(rows);
		child_admin_error(env, rid, "ledger verify: %s",
		    store_errmsg(bill_store));
		return;
	}
	/* The first broken chain, if any, names the error. */
	json_array_foreach(rows, i, r)
		if (!json_is_true(json_object_get(r, "ok")))
			break;
	o = json_pack("{s:b, s:o}", "ok", i == json_array_size(rows),
	    "agents", rows);
	if (i < json_array_size(rows))
		json_object_set_new(o, "error", json_sprintf("agent %lld: %s",
		    (long long)json_integer_value(json_object_get(r, "agent")),
		    json_string_value(json_object_get(r, "error"))));
	bill_reply_json(env, rid, o);
}

static int
add_dispute(const struct store_dispute *d, void *arg)
{
	json_array_append_new(arg, json_pack("{s:I, s:I, s:I, s:s, s:I, s:I, "
	    "s:s, s:s, s:I}", "id", (json_int_t)d->id, "agent",
	    (json_int_t)d->agent_id, "seq", (json_int_t)d->seq, "request_id",
	    d->request_id, "hub_amount", (json_int_t)d->hub_amount,
	    "agent_amount", (json_int_t)d->agent_amount, "reason", d->reason,
	    "status", d->status, "created_at", (json_int_t)d->created_at));
	return 0;
}

void
bill_cmd_disputes(struct child_env *env, uint64_t rid, int argc, char **argv)
{
	json_t *rows = json_array();

	if (argc != 1) {
		json_decref(rows);
		child_admin_error(env, rid, "usage: disputes");
		return;
	}
	if (store_dispute_list(bill_store, add_dispute, rows) != 0) {
		json_decref(rows);
		child_admin_error(env, rid, "disputes: %s", store_errmsg(bill_store));
		return;
	}
	bill_reply_json(env, rid, json_pack("{s:b, s:o}", "ok", 1, "disputes",
	    rows));
}

void
bill_cmd_ledger(struct child_env *env, uint64_t rid, int argc, char **argv)
{
	uint64_t agent = 0, after = 0;

	/* What the operator reads ends signed: every chain's tail now. */
	if (bill_ledger_sign_due(1) != 0) {
		child_admin_error(env, rid, "ledger: signing the chains: %s",
		    store_errmsg(bill_store));
		return;
	}
	if (argc >= 3 && strcmp(argv[1], "export") == 0 &&
	    bill_parse_id(argv[2], &agent) == 0 && (argc == 3 || (argc == 5 &&
	    strcmp(argv[3], "--after") == 0 && (strcmp(argv[4], "0") == 0 ||
	    bill_parse_id(argv[4], &after) == 0)))) {
		cmd_export(env, rid, agent, after);
		return;
	}
	if (argc >= 2 && argc <= 3 && strcmp(argv[1], "verify") == 0 &&
	    (argc == 2 || bill_parse_id(argv[2], &agent) == 0)) {
		cmd_verify(env, rid, agent);
		return;
	}
	child_admin_error(env, rid, "usage: ledger export AGENT_ID [--after SEQ] "
	    "| ledger verify [AGENT_ID]");
}
