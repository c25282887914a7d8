/*
 * tunnel/tun_ledger: the tunnel's part of the ledger — it carries, and
 * checks the shape of, what agents and billing say to each other about
 * money: receipts and price versions from billing to agents, receipt
 * acks, syncs and usage reports from agents to billing (the rules are in
 * billing/bill_ledger.c, the frames in lib/frame.h).  It keeps no ledger
 * state of its own: after billing.sock comes back it asks billing to
 * re-sync every online agent from what that agent acknowledged.
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include "lib/hash.h"
#include "lib/log.h"
#include "lib/usage.h"
#include "tunnel/tun.h"

/* A copy of a str field into a fixed buffer: 0, or -1 when too long. */
static int
copy_str(const struct frame *f, const char *key, char *buf, size_t len)
{
	const char *s;
	size_t n;

	if (frame_get_str(f, key, &s, &n) != 0 || n >= len)
		return -1;
	memcpy(buf, s, n);
	buf[n] = '\0';
	return 0;
}

static int64_t
count(const struct frame *f, const char *key)
{
	uint64_t v = 0;

	frame_get_u64(f, key, &v);
	return v > (uint64_t)USAGE_MAX_TOKENS ? -1 : (int64_t)v;
}

static void
send_usage_ack(struct tun_conn *c, const char *request_id, const char *result)
{
	struct frame_enc e;

	frame_enc_begin(&e, FRAME_USAGE_ACK, 0, 2);
	frame_enc_cstr(&e, "request_id", request_id);
	frame_enc_cstr(&e, "result", result);
	tun_send(c, &e);
}

void
tun_ledger_frame(struct tun_conn *c, const struct frame *f)
{
	const char *s;
	size_t n;

	switch (f->type) {
	case FRAME_SYNC: {
		struct ipc_ledger_sync q;

		memset(&q, 0, sizeof(q));
		q.agent_id = c->agent_id;
		frame_get_u64(f, "last_seq", &q.seq);
		if (frame_get_str(f, "last_hash", &s, &n) == 0 && n == LEDGER_HEX_LEN && hash_hex_ok(s))
			memcpy(q.hash, s, n);
		else
			memcpy(q.hash, LEDGER_GENESIS, 64);
		if (q.seq > (uint64_t)INT64_MAX) {
			log_warn("agent %llu: sync with seq %llu: ignored",
			    (unsigned long long)c->agent_id,
			    (unsigned long long)q.seq);
			return;
		}
		if (tun_bill_send(IPC_LEDGER_SYNC, &q, sizeof(q)) != 0)
			log_warn("agent %llu: sync while billing is away: it is "
			    "re-synced when billing is back",
			    (unsigned long long)c->agent_id);
		return;
	}
	case FRAME_RECEIPT_ACK: {
		struct ipc_ledger_ack a;
		bool ok = false, stored = false;
		uint64_t amt;

		memset(&a, 0, sizeof(a));
		a.agent_id = c->agent_id;
		frame_get_u64(f, "seq", &a.seq);
		frame_get_bool(f, "ok", &ok);
		frame_get_bool(f, "stored", &stored);
		a.ok = ok;
		a.stored = stored;
		a.agent_amount = frame_get_u64(f, "agent_amount", &amt) == 0 &&
		    amt <= (uint64_t)INT64_MAX ? (int64_t)amt : -1;
		if (copy_str(f, "hash", a.hash, sizeof(a.hash)) != 0)
			a.hash[0] = '\0';
		if (frame_get_str(f, "reason", &s, &n) == 0)
			snprintf(a.reason, sizeof(a.reason), "%.*s", (int)(n <
			    sizeof(a.reason) ? n : sizeof(a.reason) - 1), s);
		if (tun_bill_send(IPC_LEDGER_ACK, &a, sizeof(a)) != 0)
			log_warn("agent %llu: receipt ack of seq %llu lost: billing "
			    "is away", (unsigned long long)c->agent_id,
			    (unsigned long long)a.seq);
		return;
	}
	case FRAME_USAGE: {
		struct ipc_usage_report r;
		bool est = false;

		memset(&r, 0, sizeof(r));
		r.agent_id = c->agent_id;
		if (copy_str(f, "request_id", r.request_id,
		    sizeof(r.request_id)) != 0 || r.request_id[0] == '\0' ||
		    copy_str(f, "model", r.model, sizeof(r.model)) != 0) {
			log_warn("agent %llu: usage report with a malformed "
			    "request id or model: ignored",
			    (unsigned long long)c->agent_id);
			return;
		}
		r.input_tokens = count(f, "input_tokens");
		r.output_tokens = count(f, "output_tokens");
		r.cached_tokens = count(f, "cached_tokens");
		r.cache_write_tokens = count(f, "cache_write_tokens");
		frame_get_bool(f, "estimated", &est);
		r.estimated = est;
		if (r.input_tokens < 0 || r.output_tokens < 0 ||
		    r.cached_tokens < 0 || r.cache_write_tokens < 0) {
			log_warn("agent %llu: usage report of %s with impossible "
			    "counts: ignored", (unsigned long long)c->agent_id,
			    r.request_id);
			send_usage_ack(c, r.request_id, "ignored");
			return;
		}
		if (tun_bill_send(IPC_USAGE_REPORT, &r, sizeof(r)) != 0)
			send_usage_ack(c, r.request_id, "retry");
		return;
	}
	default:
		return;
	}
}

static void
send_receipt(const struct ledger_entry *e)
{
	struct tun_conn *c = tun_find_agent(e->agent_id);
	struct frame_enc fe;

	if (c == NULL)
		return;		/* offline: it syncs when it comes back */
	int units = !!e->images + !!e->audio_seconds + !!e->audio_chars +
	    !!e->video_seconds;

	frame_enc_begin(&fe, FRAME_RECEIPT, 0, (ledger_signed(e) ? 15 : 14) +
	    units);
	frame_enc_u64(&fe, "seq", e->seq);
	frame_enc_cstr(&fe, "prev_hash", e->prev_hash);
	frame_enc_cstr(&fe, "hash", e->hash);
	frame_enc_cstr(&fe, "request_id", e->request_id);
	frame_enc_u64(&fe, "token_id", e->token_id);
	frame_enc_cstr(&fe, "model", e->model);
	frame_enc_u64(&fe, "input_tokens", (uint64_t)e->input_tokens);
	frame_enc_u64(&fe, "output_tokens", (uint64_t)e->output_tokens);
	frame_enc_u64(&fe, "cached_tokens", (uint64_t)e->cached_tokens);
	frame_enc_u64(&fe, "cache_write_tokens",
	    (uint64_t)e->cache_write_tokens);
	frame_enc_u64(&fe, "price_version", (uint64_t)e->price_version);
	frame_enc_u64(&fe, "amount", (uint64_t)e->amount);
	frame_enc_u64(&fe, "created_at", (uint64_t)e->created_at);
	frame_enc_bool(&fe, "agent_reported", e->agent_reported != 0);
	/* Units that are not tokens, only when not 0 (lib/ledger.h). */
	if (e->images != 0)
		frame_enc_u64(&fe, "images", (uint64_t)e->images);
	if (e->audio_seconds != 0)
		frame_enc_u64(&fe, "audio_seconds", (uint64_t)e->audio_seconds);
	if (e->audio_chars != 0)
		frame_enc_u64(&fe, "audio_chars", (uint64_t)e->audio_chars);
	if (e->video_seconds != 0)
		frame_enc_u64(&fe, "video_seconds", (uint64_t)e->video_seconds);
	/* Only a batch's last entry is signed; it covers the earlier ones. */
	if (ledger_signed(e))
		frame_enc_bin(&fe, "sig", e->sig, sizeof(e->sig));
	tun_send(c, &fe);
}

static void
send_price(struct tun_conn *c, const struct ipc_price_push *p)
{
	struct frame_enc e;

	frame_enc_begin(&e, FRAME_PRICE_UPDATE, 0, 6 + !!p->image +
	    !!p->audio_second + !!p->audio_char + !!p->video_second);
	frame_enc_cstr(&e, "model", p->model);
	frame_enc_u64(&e, "version", (uint64_t)p->version);
	frame_enc_u64(&e, "input", (uint64_t)p->input);
	frame_enc_u64(&e, "output", (uint64_t)p->output);
	frame_enc_u64(&e, "cached_input", (uint64_t)p->cached_input);
	frame_enc_u64(&e, "cache_write", (uint64_t)p->cache_write);
	/* Unit prices, only when not 0. */
	if (p->image != 0)
		frame_enc_u64(&e, "image", (uint64_t)p->image);
	if (p->audio_second != 0)
		frame_enc_u64(&e, "audio_second", (uint64_t)p->audio_second);
	if (p->audio_char != 0)
		frame_enc_u64(&e, "audio_char", (uint64_t)p->audio_char);
	if (p->video_second != 0)
		frame_enc_u64(&e, "video_second", (uint64_t)p->video_second);
	tun_send(c, &e);
}

int
tun_ledger_from_bill(const struct msg *m)
{
	struct tun_conn *c;
	struct frame_enc e;

	switch (m->hdr.type) {
	case IPC_LEDGER_RECEIPT: {
		struct ipc_receipt r;
		memcpy(&r, m->data, sizeof(r));
		r.e.prev_hash[LEDGER_HEX_LEN] = r.e.hash[LEDGER_HEX_LEN] = '\0';
		r.e.request_id[LEDGER_REQID_MAX] = '\0';
		r.e.model[LEDGER_MODEL_MAX] = '\0';
		send_receipt(&r.e);
		break;
	}
	case IPC_PRICE_PUSH: {
		struct ipc_price_push p;
		memcpy(&p, m->data, sizeof(p));
		p.model[sizeof(p.model) - 1] = '\0';
		for (c = tun_conns; c != NULL; c = c->next)
			if (c->state == TC_ONLINE && (p.agent_id == 0 ||
			    p.agent_id == c->agent_id))
				send_price(c, &p);
		break;
	}
	case IPC_LEDGER_SYNCED: {
		struct ipc_ledger_sync q;
		memcpy(&q, m->data, sizeof(q));
		if ((c = tun_find_agent(q.agent_id)) == NULL)
			break;
		frame_enc_begin(&e, FRAME_SYNC, 0, 2);
		frame_enc_u64(&e, "last_seq", q.seq);
		frame_enc_bool(&e, "done", true);
		tun_send(c, &e);
		break;
	}
	case IPC_DISPUTE_RESULT: {	/* an operator resolved a dispute */
		struct ipc_dispute_result d;
		memcpy(&d, m->data, sizeof(d));
		d.request_id[sizeof(d.request_id) - 1] = '\0';
		d.status[sizeof(d.status) - 1] = d.reason[sizeof(d.reason) - 1] = '\0';
		if ((c = tun_find_agent(d.agent_id)) == NULL)
			break;
		frame_enc_begin(&e, FRAME_DISPUTE_RESULT, 0, 4);
		frame_enc_u64(&e, "seq", d.seq);
		frame_enc_cstr(&e, "request_id", d.request_id);
		frame_enc_cstr(&e, "status", d.status);
		frame_enc_cstr(&e, "reason", d.reason);
		tun_send(c, &e);
		break;
	}
	case IPC_USAGE_RESULT: {
		struct ipc_usage_result r;
		memcpy(&r, m->data, sizeof(r));
		r.request_id[sizeof(r.request_id) - 1] = '\0';
		r.result[sizeof(r.result) - 1] = '\0';
		if ((c = tun_find_agent(r.agent_id)) != NULL)
			send_usage_ack(c, r.request_id, r.result);
		break;
	}
	default:
		return -1;
	}
	return 0;
}

void
tun_ledger_bill_up(void)
{
	struct ipc_ledger_sub s = { (int32_t)getpid(), 0 };
	struct ipc_ledger_sync q;

	if (tun_bill_send(IPC_LEDGER_SUB, &s, sizeof(s)) != 0)
		return;
	/* Receipts pushed while billing restarted may be lost: every online
	 * agent is brought up to date from what it acknowledged. */
	for (struct tun_conn *c = tun_conns; c != NULL; c = c->next)
		if (c->state == TC_ONLINE) {
			memset(&q, 0, sizeof(q));
			q.agent_id = c->agent_id;
			(void)tun_bill_send(IPC_LEDGER_SYNC, &q, sizeof(q));
		}
}
