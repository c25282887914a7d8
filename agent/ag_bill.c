/*
 * agent/ag_bill: the agent's side of billing, all on stream 0
 * (lib/frame.h): the sync that has the hub replay what this agent's chain
 * lacks, the hub's ledger key learned at the welcome, receipts checked
 * by agent/ag_ledger and acked (a signed receipt's whole batch with it),
 * prices, the operator's dispute results, usage acks; the usage reports
 * of served streams no receipt came for (on agentd's 100 ms tick, every
 * AG_LEDGER_TICK);
 * and the ledger's grouped commit (a timer AG_LEDGER_FLUSH_MS after the
 * first write; a commit that fails drops every link).  The hub's ledger
 * frames reach it through agent/ag_ledq, a slice a turn of the loop.
 */
#include "agent/ag_tunnel_int.h"

#include <stdio.h>
#include <string.h>
#include "agent/ag_caps.h"
#include "agent/ag_ledger.h"
#include "lib/money.h"
#include "lib/frame.h"
#include "lib/log.h"
#include "lib/clock.h"
#include "lib/ltimer.h"

#define AG_REPORT_AGAIN_MIN 1000	/* ms between reports of one stream, at least */
#define AG_REPORT_BATCH	64		/* served records read at a time */
/* Usage reports sent a tick at most: a burst of cut streams (users gone
 * at once, a hub restart) is reported within a few ticks, well inside
 * the hub's report_grace (60 s by default), so none is settled from the
 * hub's estimate or voided before its report came. */
#define AG_REPORT_TICK_MAX 2048

static void links_replay(struct ag_tunnel *t, const char *why);

/* sync: the end of this agent's chain; the hub replays what we lack. */
void
ag_bill_send_sync(struct ag_link *l)
{
	struct ledger_entry h;
	struct frame_enc e;

	if (ag_ledger_head(l->t->lg, l->agent_id, &h) == -1) {
		log_error("agent %llu: cannot read the ledger's head: %s",
		    (unsigned long long)l->agent_id, ag_ledger_error(l->t->lg));
		return;
	}
	frame_enc_begin(&e, FRAME_SYNC, 0, 2);
	frame_enc_u64(&e, "last_seq", h.seq);
	frame_enc_cstr(&e, "last_hash", h.hash);
	if (ag_tunnel_send(l, &e) == 0)
		l->gap_head = h.seq;
}

/* welcome's ledger_key: learned once per agent id, never replaced. */
void
ag_bill_learn_key(struct ag_link *l, const struct frame *f)
{
	const unsigned char *pk;
	size_t len;
	int r;

	if (frame_get_bin(f, "ledger_key", &pk, &len) != 0 ||
	    len != LEDGER_PK_LEN) {
		log_warn("agent %llu: the hub's welcome carries no ledger key: "
		    "its receipts cannot be checked and will be refused",
		    (unsigned long long)l->agent_id);
		return;
	}
	r = ag_ledger_hub_key_set(l->t->lg, l->agent_id, pk);
	if (r == -1)
		log_error("agent %llu: cannot store the hub's ledger key: %s",
		    (unsigned long long)l->agent_id, ag_ledger_error(l->t->lg));
	else if (r == 1)
		log_error("agent %llu: the hub sent a ledger key other than the "
		    "one this agent learned first; refusing it: receipts signed "
		    "by it will be refused", (unsigned long long)l->agent_id);
}

static void
send_receipt_ack(struct ag_link *l, uint64_t seq, const char *hash,
    size_t hlen, const struct ag_receipt_result *r)
{
	struct frame_enc e;
	int with_reason = r->reason[0] != '\0';
	/* agent_amount: a dispute's, when the agent could price it; absent
	 * means it could not (-1 in its disputes table). */
	int with_amount = !r->ok && r->stored && r->agent_amount >= 0;

	frame_enc_begin(&e, FRAME_RECEIPT_ACK, 0,
	    (size_t)(4 + with_reason + with_amount));
	frame_enc_u64(&e, "seq", seq);
	frame_enc_str(&e, "hash", hash, hlen);
	frame_enc_bool(&e, "ok", r->ok);
	frame_enc_bool(&e, "stored", r->stored);
	if (with_reason)
		frame_enc_cstr(&e, "reason", r->reason);
	if (with_amount)
		frame_enc_u64(&e, "agent_amount", (uint64_t)r->agent_amount);
	ag_tunnel_send(l, &e);
}

/* Copy a str field of 1..max bytes (no NUL inside).  0 or -1. */
static int
get_text(const struct frame *f, const char *key, char *out, size_t max)
{
	const char *s;
	size_t len;

	if (frame_get_str(f, key, &s, &len) != 0 || len == 0 || len > max ||
	    memchr(s, '\0', len) != NULL)
		return -1;
	memcpy(out, s, len);
	out[len] = '\0';
	return 0;
}

/* A receipt frame as a ledger entry of this link's chain.  0, or -1
 * with the field at fault in why. */
static int
receipt_entry(struct ag_link *l, const struct frame *f, struct ledger_entry *e,
    char *why, size_t whylen)
{
	static const char *const keys[] = {
		"input_tokens", "output_tokens", "cached_tokens",
		"cache_write_tokens", "price_version", "amount", "created_at"
	};
	int64_t *const dst[] = {
		&e->input_tokens, &e->output_tokens, &e->cached_tokens,
		&e->cache_write_tokens, &e->price_version, &e->amount,
		&e->created_at
	};
	const unsigned char *sig = NULL;
	size_t len = 0;
	bool rep;
	const char *bad = NULL;

	memset(e, 0, sizeof(*e));
	e->agent_id = l->agent_id;
	/* Units that are not tokens: present only when not 0. */
	if (frame_get_i64(f, "images", &e->images) != 0)
		e->images = 0;
	if (frame_get_i64(f, "audio_seconds", &e->audio_seconds) != 0)
		e->audio_seconds = 0;
	if (frame_get_i64(f, "audio_chars", &e->audio_chars) != 0)
		e->audio_chars = 0;
	if (frame_get_i64(f, "video_seconds", &e->video_seconds) != 0)
		e->video_seconds = 0;
	if (frame_get_u64(f, "seq", &e->seq) != 0)
		bad = "seq";
	else if (get_text(f, "prev_hash", e->prev_hash, LEDGER_HEX_LEN) != 0)
		bad = "prev_hash";
	else if (get_text(f, "hash", e->hash, LEDGER_HEX_LEN) != 0)
		bad = "hash";
	else if (get_text(f, "request_id", e->request_id,
	    LEDGER_REQID_MAX) != 0)
		bad = "request_id";
	else if (frame_get_u64(f, "token_id", &e->token_id) != 0)
		bad = "token_id";
	else if (get_text(f, "model", e->model, LEDGER_MODEL_MAX) != 0)
		bad = "model";
	else if (frame_get_bool(f, "agent_reported", &rep) != 0)
		bad = "agent_reported";
	else if (frame_get_bin(f, "sig", &sig, &len) == 0 &&
	    len != LEDGER_SIG_LEN)
		bad = "sig";	/* absent: a batch's later entry signs it */
	for (size_t i = 0; bad == NULL && i < sizeof(keys) / sizeof(keys[0]);
	    i++)
		if (frame_get_i64(f, keys[i], dst[i]) != 0)
			bad = keys[i];
	if (bad != NULL) {
		snprintf(why, whylen, "bad %s", bad);
		return -1;
	}
	e->agent_reported = rep;
	if (sig != NULL && len == LEDGER_SIG_LEN)
		memcpy(e->sig, sig, LEDGER_SIG_LEN);
	return 0;
}

/*
 * The entries a signed receipt stored with it (its batch): the ack of the
 * last one acknowledges them all (the hub keeps the highest seq); each
 * dispute among them is acked on its own.
 */
void
ag_bill_batch_acks(struct ag_link *l)
{
	const struct ledger_entry *es;
	const struct ag_receipt_result *rs;
	size_t n = ag_ledger_batch_done(l->t->lg, &es, &rs);

	for (size_t i = 0; i < n; i++) {
		if (rs[i].ok)
			continue;
		log_warn("agent %llu: dispute on receipt seq %llu for request "
		    "%s: %s", (unsigned long long)l->agent_id,
		    (unsigned long long)es[i].seq, es[i].request_id,
		    rs[i].reason);
		send_receipt_ack(l, es[i].seq, es[i].hash, LEDGER_HEX_LEN,
		    &rs[i]);
	}
}

static void
on_receipt(struct ag_link *l, const struct frame *f)
{
	struct ag_receipt_result r;
	struct ledger_entry e;
	const char *hash = "";
	size_t hlen = 0;
	uint64_t seq = 0;

	memset(&r, 0, sizeof(r));
	(void)frame_get_u64(f, "seq", &seq);
	(void)frame_get_str(f, "hash", &hash, &hlen);
	if (receipt_entry(l, f, &e, r.reason, sizeof(r.reason)) != 0) {
		log_warn("agent %llu: receipt seq %llu refused: %s",
		    (unsigned long long)l->agent_id, (unsigned long long)seq,
		    r.reason);
		r.agent_amount = -1;
		send_receipt_ack(l, seq, hash, hlen, &r);
		return;
	}
	if (ag_ledger_receipt_apply(l->t->lg, &e, &r) != 0) {
		ag_bill_receipt_failed(l, seq);
		return;
	}
	ag_bill_receipt_answer(l, &e, &r, hash, hlen);
}

/* A receipt not applied (the database failed): no answer, the next sync
 * brings it again; when the failure took the open group of writes with
 * it, every link goes, as for a failed commit. */
void
ag_bill_receipt_failed(struct ag_link *l, uint64_t seq)
{
	log_error("agent %llu: receipt seq %llu not applied: %s",
	    (unsigned long long)l->agent_id, (unsigned long long)seq,
	    ag_ledger_error(l->t->lg));
	if (ag_ledger_lost(l->t->lg))
		links_replay(l->t, "a signed batch's slice failed");
}

/* What a receipt (e, with the hash the hub sent) came to: logged, and
 * acked with its batch (none while pending or storing). */
void
ag_bill_receipt_answer(struct ag_link *l, const struct ledger_entry *e,
    const struct ag_receipt_result *r, const char *hash, size_t hlen)
{
	uint64_t seq = e->seq;
	char hub[32], mine[32];

	money_format(e->amount, hub, sizeof(hub));
	if (r->verdict == AG_RCPT_STORED || r->verdict == AG_RCPT_DISPUTE ||
	    r->verdict == AG_RCPT_STORING)
		ag_bill_batch_acks(l);
	switch (r->verdict) {
	case AG_RCPT_PENDING:
		return;		/* acked with its batch's signed last entry */
	case AG_RCPT_STORING:
		/* The rest in the next turns (agent/ag_ledq); this slice
		 * was this turn's share. */
		ag_ledq_storing(l, seq);
		return;
	case AG_RCPT_GAP:
		if (l->gap_head == r->head_seq)
			return;		/* synced for this gap already */
		log_info("agent %llu: receipt seq %llu, but our chain ends at "
		    "%llu: syncing", (unsigned long long)l->agent_id,
		    (unsigned long long)seq, (unsigned long long)r->head_seq);
		ag_bill_send_sync(l);
		return;
	case AG_RCPT_STORED:
		if (!r->served)
			log_info("agent %llu: receipt seq %llu for request %s "
			    "(%s): no served record here (lost in a restart?); "
			    "the amount recomputes, accepted",
			    (unsigned long long)l->agent_id,
			    (unsigned long long)seq, e->request_id, hub);
		else
			log_debug("agent %llu: receipt seq %llu for request %s "
			    "(%s) stored", (unsigned long long)l->agent_id,
			    (unsigned long long)seq, e->request_id, hub);
		break;
	case AG_RCPT_DISPUTE:
		if (r->agent_amount >= 0)
			money_format(r->agent_amount, mine, sizeof(mine));
		else
			snprintf(mine, sizeof(mine), "unknown");
		log_warn("agent %llu: dispute on receipt seq %llu for request "
		    "%s: %s (hub %s, agent %s)", (unsigned long long)l->agent_id,
		    (unsigned long long)seq, e->request_id, r->reason, hub, mine);
		break;
	case AG_RCPT_REPLAY:
		log_debug("agent %llu: receipt seq %llu again (already stored)",
		    (unsigned long long)l->agent_id, (unsigned long long)seq);
		break;
	case AG_RCPT_CONFLICT:
	case AG_RCPT_REFUSED:
		log_warn("agent %llu: receipt seq %llu refused: %s",
		    (unsigned long long)l->agent_id, (unsigned long long)seq,
		    r->reason);
		break;
	case AG_RCPT_ERROR:
		return;
	}
	send_receipt_ack(l, seq, hash, hlen, r);
}

static void
on_price_update(struct ag_link *l, const struct frame *f)
{
	struct money_prices p;
	char model[LEDGER_MODEL_MAX + 1];
	int64_t version;
	int r;

	memset(&p, 0, sizeof(p));
	/* Unit prices: present only when not 0. */
	(void)frame_get_i64(f, "image", &p.image);
	(void)frame_get_i64(f, "audio_second", &p.audio_second);
	(void)frame_get_i64(f, "audio_char", &p.audio_char);
	(void)frame_get_i64(f, "video_second", &p.video_second);
	if (get_text(f, "model", model, LEDGER_MODEL_MAX) != 0 ||
	    frame_get_i64(f, "version", &version) != 0 ||
	    frame_get_i64(f, "input", &p.input) != 0 ||
	    frame_get_i64(f, "output", &p.output) != 0 ||
	    frame_get_i64(f, "cached_input", &p.cached_input) != 0 ||
	    frame_get_i64(f, "cache_write", &p.cache_write) != 0) {
		log_warn("agent %llu: malformed price_update ignored",
		    (unsigned long long)l->agent_id);
		return;
	}
	r = ag_ledger_price_put(l->t->lg, model, version, &p);
	if (r == 0)
		ag_caps_price(&l->t->caps, model, version, &p);
	if (r == 1)
		log_warn("agent %llu: the hub announced other prices for %s "
		    "version %lld; a version never changes: kept the first",
		    (unsigned long long)l->agent_id, model, (long long)version);
	else if (r == -1)
		log_warn("agent %llu: price of %s version %lld not stored: %s",
		    (unsigned long long)l->agent_id, model, (long long)version,
		    ag_ledger_error(l->t->lg));
}

/* The hub's operator resolved one of our disputes: note it, log it. */
static void
on_dispute_result(struct ag_link *l, const struct frame *f)
{
	char rid[LEDGER_REQID_MAX + 1], st[16], why[160];
	const char *p;
	size_t n;
	uint64_t seq;

	if (frame_get_u64(f, "seq", &seq) != 0 ||
	    get_text(f, "request_id", rid, LEDGER_REQID_MAX) != 0 ||
	    frame_get_str(f, "status", &p, &n) != 0 || n >= sizeof(st)) {
		log_warn("agent %llu: malformed dispute_result ignored",
		    (unsigned long long)l->agent_id);
		return;
	}
	memcpy(st, p, n + 1);
	frame_get_str(f, "reason", &p, &n);
	snprintf(why, sizeof(why), "%.*s", (int)n, p);
	for (char *c = why; *c; c++)
		if ((unsigned char)*c < 0x20 || (unsigned char)*c > 0x7e)
			*c = '?';
	if (ag_ledger_dispute_resolved(l->t->lg, l->agent_id, seq, st, why) != 0)
		log_warn("agent %llu: dispute of seq %llu: %s",
		    (unsigned long long)l->agent_id, (unsigned long long)seq,
		    ag_ledger_error(l->t->lg));
	else
		log_info("agent %llu: the hub %s our dispute of seq %llu (%s): %s",
		    (unsigned long long)l->agent_id, st, (unsigned long long)seq,
		    rid, why);
}

static void
on_usage_ack(struct ag_link *l, const struct frame *f)
{
	char rid[LEDGER_REQID_MAX + 1];
	const char *res;
	size_t len;

	if (get_text(f, "request_id", rid, LEDGER_REQID_MAX) != 0 ||
	    frame_get_str(f, "result", &res, &len) != 0) {
		log_warn("agent %llu: malformed usage_ack ignored",
		    (unsigned long long)l->agent_id);
		return;
	}
	if (strcmp(res, "retry") == 0) {
		log_debug("agent %llu: usage of request %s: the hub asks to "
		    "retry", (unsigned long long)l->agent_id, rid);
		return;
	}
	if (strcmp(res, "settled") != 0 && strcmp(res, "already") != 0 &&
	    strcmp(res, "ignored") != 0) {
		log_warn("agent %llu: usage of request %s: unknown result "
		    "'%.*s'", (unsigned long long)l->agent_id, rid,
		    (int)(len > 32 ? 32 : len), res);
		return;
	}
	if (strcmp(res, "ignored") == 0)
		log_info("agent %llu: usage of request %s: the hub ignored it "
		    "(not this agent's to settle)",
		    (unsigned long long)l->agent_id, rid);
	if (ag_ledger_served_mark(l->t->lg, l->agent_id, rid,
	    AG_SERVED_REPORTED) == -1)
		log_warn("agent %llu: request %s: %s",
		    (unsigned long long)l->agent_id, rid,
		    ag_ledger_error(l->t->lg));
}

/* The hub's sync: the end of its replay, with its head. */
static void
on_hub_sync(struct ag_link *l, const struct frame *f)
{
	struct ledger_entry h;
	uint64_t seq;
	bool fin = false;

	(void)frame_get_bool(f, "done", &fin);
	if (!fin || frame_get_u64(f, "last_seq", &seq) != 0)
		return;
	if (ag_ledger_head(l->t->lg, l->agent_id, &h) == -1) {
		log_warn("agent %llu: %s", (unsigned long long)l->agent_id,
		    ag_ledger_error(l->t->lg));
		return;
	}
	if (seq < h.seq)
		log_warn("agent %llu: the hub's ledger ends at seq %llu, ours "
		    "at %llu: the hub has lost entries this agent holds",
		    (unsigned long long)l->agent_id, (unsigned long long)seq,
		    (unsigned long long)h.seq);
	else if (seq > h.seq && h.seq > l->gap_head) {
		/* One answer replays a bounded number of entries: ask for
		 * the rest while each round makes progress. */
		log_info("agent %llu: hub at seq %llu, ours at %llu: syncing "
		    "on", (unsigned long long)l->agent_id,
		    (unsigned long long)seq, (unsigned long long)h.seq);
		ag_bill_send_sync(l);
	} else if (seq > h.seq)
		log_warn("agent %llu: the hub's ledger runs to seq %llu but ours "
		    "stays at %llu: its entries do not link here (see the "
		    "refusals above)", (unsigned long long)l->agent_id,
		    (unsigned long long)seq, (unsigned long long)h.seq);
	else
		log_info("agent %llu: ledger synced: hub at seq %llu, ours at "
		    "%llu", (unsigned long long)l->agent_id,
		    (unsigned long long)seq, (unsigned long long)h.seq);
}

/* A ledger frame of an online link (receipt, price_update, usage_ack,
 * sync, dispute_result), applied now (agent/ag_ledq chose the turn).  Bad
 * input from the hub is logged; the link carries on. */
void
ag_bill_frame(struct ag_link *l, const struct frame *f)
{
	if (f->type == FRAME_RECEIPT)
		on_receipt(l, f);
	else if (f->type == FRAME_PRICE_UPDATE)
		on_price_update(l, f);
	else if (f->type == FRAME_USAGE_ACK)
		on_usage_ack(l, f);
	else if (f->type == FRAME_SYNC)
		on_hub_sync(l, f);
	else if (f->type == FRAME_DISPUTE_RESULT)
		on_dispute_result(l, f);
}

static struct ag_link *
link_by_agent(struct ag_tunnel *t, uint64_t agent_id)
{
	for (int i = 0; i < t->nlinks; i++)
		if (t->links[i]->agent_id == agent_id)
			return t->links[i];
	return NULL;
}

/*
 * Usage reports: each served stream still open report_after after its
 * end (no receipt came), on an online link of its agent, again every
 * report_after (at least AG_REPORT_AGAIN_MIN) until the hub's usage_ack
 * settles it — a report lost with a restarting billing is sent again well
 * inside the hub's report_grace.  report_one sends one: 0 sent, 1 its
 * link is down, -1 its link's queue is full.
 */
static int
report_one(struct ag_tunnel *t, const struct ag_served *sv, int64_t now)
{
	struct frame_enc e;
	struct ag_link *l;

	l = link_by_agent(t, sv->agent_id);
	if (l == NULL || l->state != LK_ONLINE || l->wsi == NULL)
		return 1;
	frame_enc_begin(&e, FRAME_USAGE, 0, 7);
	frame_enc_cstr(&e, "request_id", sv->request_id);
	frame_enc_cstr(&e, "model", sv->model);
	frame_enc_u64(&e, "input_tokens", (uint64_t)sv->input_tokens);
	frame_enc_u64(&e, "output_tokens", (uint64_t)sv->output_tokens);
	frame_enc_u64(&e, "cached_tokens", (uint64_t)sv->cached_tokens);
	frame_enc_u64(&e, "cache_write_tokens",
	    (uint64_t)sv->cache_write_tokens);
	frame_enc_bool(&e, "estimated", sv->estimated != 0);
	if (ag_tunnel_send(l, &e) != 0)
		return -1;	/* its queue is full: the rest next tick */
	log_info("agent %llu: no receipt for request %s yet: reporting its "
	    "usage (in %lld out %lld cached %lld%s)",
	    (unsigned long long)l->agent_id, sv->request_id,
	    (long long)sv->input_tokens, (long long)sv->output_tokens,
	    (long long)sv->cached_tokens, sv->estimated ? ", estimated" : "");
	if (ag_ledger_served_sent(t->lg, sv->request_id, now) != 0)
		log_warn("ledger: %s", ag_ledger_error(t->lg));
	return 0;
}

/* Every record due, a page at a time (those of a link that is down are
 * passed over, not read again), at most AG_REPORT_TICK_MAX sent; a link
 * whose queue is full ends the tick's walk (the rest wait a tick). */
void
ag_bill_report_due(struct ag_tunnel *t)
{
	struct ag_served due[AG_REPORT_BATCH];
	struct ag_served_page pg = { 0, 0 };
	int64_t now = clock_wall_ms();
	int64_t ended_before = now - t->cf->report_after;
	int64_t sent_before = now - (t->cf->report_after > AG_REPORT_AGAIN_MIN ?
	    t->cf->report_after : AG_REPORT_AGAIN_MIN);
	int n, sent = 0;

	do {
		n = ag_ledger_served_due(t->lg, ended_before, sent_before, &pg,
		    due, AG_REPORT_BATCH);
		if (n == -1) {
			log_warn("ledger: %s", ag_ledger_error(t->lg));
			return;
		}
		for (int i = 0; i < n && sent < AG_REPORT_TICK_MAX; i++)
			switch (report_one(t, &due[i], now)) {
			case 0:
				sent++;
				break;
			case -1:
				return;
			default:
				break;
			}
	} while (n == AG_REPORT_BATCH && sent < AG_REPORT_TICK_MAX);
}

/*
 * The ledger's writes are grouped (ag_ledger_group): committed
 * AG_LEDGER_FLUSH_MS after the first, so the writes of every request in
 * that window share one commit.  A commit that fails lost its writes:
 * every connection is dropped, and the sync of the next one replays the
 * hub's receipts from what is really stored.  Each commit writes the
 * pages it dirtied once, so fewer commits write fewer pages per request:
 * 30 ms rather than 10 took 6-36 % off agentd's CPU per request at c=1,
 * and 200 ms rather than 30, with billing's batches as long
 * (billing/bill_batch.c), about a quarter at 30 requests a second, when
 * a 30 ms group held one request.  A kill loses the group's served
 * records (the hub bills those requests from its own reading) and
 * receipts (the next sync replays them).
 */
#define AG_LEDGER_FLUSH_MS	200

/* The open group of ledger writes was lost (why): every link is dropped,
 * and the sync of the next one replays the hub's receipts from what is
 * really stored. */
static void
links_replay(struct ag_tunnel *t, const char *why)
{
	log_warn("ledger: %s (%s): reconnecting, so that the hub replays "
	    "what was lost", why, ag_ledger_error(t->lg));
	for (int i = 0; i < t->nlinks; i++)
		if (t->links[i]->wsi != NULL)
			lws_set_timeout(t->links[i]->wsi,
			    PENDING_TIMEOUT_KILLED_BY_PARENT, LWS_TO_KILL_ASYNC);
}

void
ag_bill_flush_timer(struct ltimer *lt)
{
	struct ag_tunnel *t = lt->arg;

	if (ag_ledger_flush(t->lg) != 0)
		links_replay(t, "a grouped commit failed");
}

void
ag_bill_ledger_armed(void *arg)
{
	struct ag_tunnel *t = arg;

	ltimer_arm(&t->flush, AG_LEDGER_FLUSH_MS * LWS_US_PER_MS);
}
