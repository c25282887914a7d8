/*
 * tunnel/tun_conn: one agent connection — the handshake state machine,
 * frame reassembly and validation, the bounded outgoing queue, heartbeats,
 * channel announcements and the agent's scoreboard slots (the tunnel is
 * their single writer).
 *
 * A malformed, oversized or out-of-order frame closes that one connection
 * with a logged reason; nothing an agent sends can stop the process.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sodium.h>
#include <openssl/ssl.h>
#include "tunnel/tun.h"
#include "lib/release.h"
#include "lib/log.h"

#define TUN_TLS_KEEP_MS	1000	/* no stream this long: TLS buffers go back */

#define RECENT_NONCES 4096

struct tun_pss {
	struct tun_conn *c;
};

struct tun_conn *tun_conns;
unsigned tun_nconns;
static uint64_t next_serial = 1;

/* Nonces recently issued, to name a replayed handshake for what it is. */
static struct {
	unsigned char nonce[TUNAUTH_NONCE_LEN];
	uint64_t serial;
} recent[RECENT_NONCES];
static unsigned recent_next;

static const char *
conn_label(const struct tun_conn *c, char *buf, size_t len)
{
	if (c->agent_id != 0)
		snprintf(buf, len, "agent %llu (%s, conn #%llu)",
		    (unsigned long long)c->agent_id, c->addr,
		    (unsigned long long)c->serial);
	else
		snprintf(buf, len, "%s (conn #%llu)", c->addr,
		    (unsigned long long)c->serial);
	return buf;
}

void
tun_close(struct tun_conn *c, const char *fmt, ...)
{
	va_list ap;
	char lbl[160];

	if (c->state == TC_CLOSING)
		return;
	va_start(ap, fmt);
	vsnprintf(c->close_reason, sizeof(c->close_reason), fmt, ap);
	va_end(ap);
	log_warn("closing %s: %s", conn_label(c, lbl, sizeof(lbl)),
	    c->close_reason);
	c->state = TC_CLOSING;
	c->closing_ms = clock_mono_ms();
	lws_callback_on_writable(c->wsi);
}

/*
 * Connections with frames queued in this turn of the loop.  At the turn's
 * end tun_conn_flush() writes them straight to the socket, instead of
 * asking the loop for POLLOUT (two epoll_ctl and one more turn per
 * write); a connection lws still holds a partial write for, or one
 * closing, waits for POLLOUT as before.
 */
static lws_dll2_owner_t due;
static int flushing;		/* in tun_conn_flush: more waits for POLLOUT */
static int on_writeable(struct tun_conn *c);
/* The same at once for frames queued by one of lws's timers, which run
 * before its wait for events (on libwebsockets' poll() loop the turn's
 * end comes only after that wait); cancelled when the turn's end came
 * first.  Not armed on libev (child_lws_ends_turns). */
static lws_sorted_usec_list_t flush_sul;

static void
on_flush_sul(lws_sorted_usec_list_t *sul)
{
	(void)sul;
	tun_conn_flush();
}

static void
want_write(struct tun_conn *c)
{
	if (!lws_dll2_is_detached(&c->due))
		return;
	if (flushing || c->state == TC_CLOSING) {
		lws_callback_on_writable(c->wsi);
		return;
	}
	if (due.count == 0 && !child_lws_ends_turns())
		lws_sul_schedule(lws_get_context(c->wsi), 0, &flush_sul,
		    on_flush_sul, 0);
	lws_dll2_add_tail(&c->due, &due);
}

void
tun_conn_flush(void)
{
	struct tun_conn *c;

	if (due.count == 0)
		return;
	lws_sul_cancel(&flush_sul);
	flushing = 1;
	while (due.head != NULL) {
		c = lws_container_of(due.head, struct tun_conn, due);
		lws_dll2_remove(&c->due);
		if (c->state == TC_CLOSING || lws_partial_buffered(c->wsi))
			lws_callback_on_writable(c->wsi);
		else if (on_writeable(c) != 0)
			tun_close(c, "cannot write to the connection");
	}
	flushing = 0;
}

int
tun_send(struct tun_conn *c, struct frame_enc *e)
{
	const void *data;
	size_t len;

	if (frame_enc_finish(e, &data, &len) != 0) {
		log_error("cannot encode a %s frame: %s",
		    frame_type_name(e->type), e->err);
		frame_enc_free(e);
		return -1;
	}
	if (c->state == TC_CLOSING) {
		frame_enc_free(e);
		return -1;
	}
	if (c->out.bytes + len > TUN_OUT_MAX_BYTES) {
		frame_enc_free(e);
		tun_close(c, "agent does not read: %zu bytes queued", c->out.bytes);
		return -1;
	}
	if (outq_push(&c->out, LWS_PRE, data, len, NULL, 0) == NULL) {
		frame_enc_free(e);
		tun_close(c, "out of memory");
		return -1;
	}
	frame_enc_free(e);
	want_write(c);
	return 0;
}

static void
send_simple_u64(struct tun_conn *c, enum frame_type t, const char *key,
    uint64_t v)
{
	struct frame_enc e;

	frame_enc_begin(&e, t, 0, 1);
	frame_enc_u64(&e, key, v);
	tun_send(c, &e);
}

struct tun_conn *
tun_find_agent(uint64_t agent_id)
{
	for (struct tun_conn *c = tun_conns; c != NULL; c = c->next)
		if (c->agent_id == agent_id && c->state == TC_ONLINE)
			return c;
	return NULL;
}

/* ---- scoreboard (single writer: this process) ------------------------ */

static int
slot_alloc_agent(void)
{
	const struct sb *sb = &tun_env->sb;

	for (uint32_t i = 0; i < sb->hdr->max_agents; i++)
		if (sb_agent(sb, i)->state == SB_AGENT_FREE)
			return (int)i;
	return -1;
}

static int
slot_alloc_channel(void)
{
	const struct sb *sb = &tun_env->sb;

	for (uint32_t i = 0; i < sb->hdr->max_channels; i++)
		if (sb_channel(sb, i)->state == SB_CHAN_FREE)
			return (int)i;
	return -1;
}

static void
channels_free(int *slots, int n)
{
	for (int i = 0; i < n; i++) {
		struct sb_channel *ch = sb_channel(&tun_env->sb, (uint32_t)slots[i]);
		sb_write_begin(&ch->seq);
		memset((char *)ch + sizeof(ch->seq), 0,
		    offsetof(struct sb_channel, hot) - sizeof(ch->seq));
		sb_write_end(&ch->seq);
	}
}

static void
agent_slot_update(struct tun_conn *c)
{
	struct sb_agent *a = sb_agent(&tun_env->sb, (uint32_t)c->slot);

	sb_write_begin(&a->seq);
	a->nchannels = (uint32_t)c->nchan;
	a->last_heartbeat_ms = clock_wall_ms();
	sb_write_end(&a->seq);
}

static void
conn_offline(struct tun_conn *c)
{
	channels_free(c->chan_slots, c->nchan);
	channels_free(c->chan_pending, c->nchan_pending);
	c->nchan = c->nchan_pending = 0;
	if (c->slot >= 0) {
		struct sb_agent *a = sb_agent(&tun_env->sb, (uint32_t)c->slot);
		sb_write_begin(&a->seq);
		memset((char *)a + sizeof(a->seq), 0, sizeof(*a) - sizeof(a->seq));
		sb_write_end(&a->seq);
		c->slot = -1;
	}
}

/* ---- handshake ------------------------------------------------------- */

static void
on_established(struct tun_conn *c)
{
	struct frame_enc e;

	if (tunauth_exporter(lws_get_ssl(c->wsi), c->exporter) != 0) {
		tun_close(c, "TLS 1.3 channel binding unavailable");
		return;
	}
	randombytes_buf(c->nonce, sizeof(c->nonce));
	memcpy(recent[recent_next].nonce, c->nonce, sizeof(c->nonce));
	recent[recent_next].serial = c->serial;
	recent_next = (recent_next + 1) % RECENT_NONCES;
	frame_enc_begin(&e, FRAME_CHALLENGE, 0, 1);
	frame_enc_bin(&e, "nonce", c->nonce, sizeof(c->nonce));
	tun_send(c, &e);
}

static void
on_auth(struct tun_conn *c, const struct frame *f)
{
	const unsigned char *sig, *nonce;
	size_t siglen, noncelen;
	uint64_t id;

	frame_get_u64(f, "agent_id", &id);
	frame_get_bin(f, "sig", &sig, &siglen);
	c->agent_id = id;
	if (frame_get_bin(f, "nonce", &nonce, &noncelen) == 0) {
		if (noncelen != TUNAUTH_NONCE_LEN) {
			tun_close(c, "auth nonce of %zu bytes", noncelen);
			return;
		}
		if (sodium_memcmp(nonce, c->nonce, TUNAUTH_NONCE_LEN) != 0) {
			for (unsigned i = 0; i < RECENT_NONCES; i++)
				if (recent[i].serial != 0 && recent[i].serial != c->serial &&
				    memcmp(recent[i].nonce, nonce, TUNAUTH_NONCE_LEN) == 0) {
					tun_close(c, "replayed handshake: nonce was issued to "
					    "connection #%llu", (unsigned long long)recent[i].serial);
					return;
				}
			tun_close(c, "auth answers a nonce this hub never issued");
			return;
		}
	}
	memcpy(c->sig, sig, TUNAUTH_SIG_LEN);
	c->state = TC_LOOKUP;
	if (tun_bill_lookup(c->serial, id) != 0)
		tun_close(c, "agent registry unavailable (billing not reachable)");
}

void
tun_lookup_done(uint64_t serial, const struct ipc_agent_info *info)
{
	struct tun_conn *c, *old;
	struct sb_agent *a;
	struct frame_enc e;

	for (c = tun_conns; c != NULL; c = c->next)
		if (c->serial == serial)
			break;
	if (c == NULL || c->state != TC_LOOKUP)
		return;		/* closed meanwhile */
	if (info->status == IPC_AGENT_UNKNOWN) {
		tun_close(c, "unknown agent id %llu", (unsigned long long)c->agent_id);
		return;
	}
	if (info->status != IPC_AGENT_FOUND) {
		tun_close(c, "agent registry error");
		return;
	}
	if (!info->enabled) {
		tun_close(c, "agent %llu '%s' is disabled",
		    (unsigned long long)c->agent_id, info->name);
		return;
	}
	if (tunauth_verify(c->sig, info->pubkey, c->agent_id, c->nonce,
	    c->exporter) != 0) {
		tun_close(c, "bad signature for agent %llu '%s' (wrong key, or a "
		    "handshake from another TLS session)",
		    (unsigned long long)c->agent_id, info->name);
		return;
	}
	/* The nonce is spent: it can never authenticate anything again. */
	sodium_memzero(c->nonce, sizeof(c->nonce));
	if (tun_ledger_pk() == NULL) {
		/* Billing answers the subscription before any look-up. */
		tun_close(c, "the hub's ledger key has not come from billing yet");
		return;
	}
	old = tun_find_agent(c->agent_id);
	if (old != NULL)
		tun_close(old, "replaced by a new connection of the same agent");
	c->slot = slot_alloc_agent();
	if (c->slot < 0) {
		tun_close(c, "no free agent slot (max_agents = %u)",
		    tun_env->sb.hdr->max_agents);
		return;
	}
	snprintf(c->name, sizeof(c->name), "%s", info->name);
	c->grade = info->grade;
	a = sb_agent(&tun_env->sb, (uint32_t)c->slot);
	sb_write_begin(&a->seq);
	a->state = SB_AGENT_ONLINE;
	a->agent_id = c->agent_id;
	a->owner_pid = (int32_t)getpid();
	a->nchannels = 0;
	snprintf(a->name, sizeof(a->name), "%s", info->name);
	snprintf(a->addr, sizeof(a->addr), "%s", c->addr);
	a->grade = info->grade;
	a->since_ms = clock_wall_ms();
	a->last_heartbeat_ms = a->since_ms;
	sb_write_end(&a->seq);
	c->state = TC_ONLINE;
	frame_enc_begin(&e, FRAME_WELCOME, 0, 4);
	frame_enc_u64(&e, "session", c->serial);
	/* This hub takes hello frames (an older one closes on them). */
	frame_enc_bool(&e, "hello", true);
	/* ... and reads several frames in one message. */
	frame_enc_bool(&e, "packed", true);
	/* The key that signs receipts; the agent trusts it because this
	 * connection is pinned. */
	frame_enc_bin(&e, "ledger_key", tun_ledger_pk(), 32);
	tun_send(c, &e);
	log_info("agent %llu '%s' online from %s (conn #%llu)",
	    (unsigned long long)c->agent_id, c->name, c->addr,
	    (unsigned long long)c->serial);
}

static void
on_channels(struct tun_conn *c, const struct frame *f)
{
	bool done = false;
	const char *s;
	size_t len;
	const struct frame_str *models;
	size_t nmodels;
	uint64_t rpm = 0, tpm = 0;
	struct sb_channel *ch;
	int slot;

	frame_get_bool(f, "done", &done);
	if (done) {
		/* The new set replaces the old one. */
		channels_free(c->chan_slots, c->nchan);
		memcpy(c->chan_slots, c->chan_pending, sizeof(c->chan_slots));
		c->nchan = c->nchan_pending;
		c->nchan_pending = 0;
		agent_slot_update(c);
		log_info("agent %llu announced %d channel(s)",
		    (unsigned long long)c->agent_id, c->nchan);
		return;
	}
	if (c->nchan_pending == TUN_MAX_CHANNELS) {
		tun_close(c, "more than %d channels announced", TUN_MAX_CHANNELS);
		return;
	}
	slot = slot_alloc_channel();
	if (slot < 0) {
		tun_close(c, "no free channel slot (max_channels)");
		return;
	}
	frame_get_u64(f, "rpm", &rpm);
	frame_get_u64(f, "tpm", &tpm);
	frame_get_strv(f, "models", &models, &nmodels);
	ch = sb_channel(&tun_env->sb, (uint32_t)slot);
	if ((uint32_t)slot + 1 > atomic_load(&tun_env->sb.hdr->chan_hwm))
		atomic_store_explicit(&tun_env->sb.hdr->chan_hwm,
		    (uint32_t)slot + 1, memory_order_release);
	/* A reused slot starts with fresh figures, not a previous owner's
	 * errors or cool-down. */
	atomic_store(&ch->hot.inflight, 0);
	atomic_store(&ch->hot.minute, 0);
	atomic_store(&ch->hot.req_minute, 0);
	atomic_store(&ch->hot.tok_minute, 0);
	atomic_store(&ch->hot.ok, 0);
	atomic_store(&ch->hot.err, 0);
	atomic_store(&ch->hot.err_streak, 0);
	atomic_store(&ch->hot.ejected_until_ms, 0);
	atomic_store(&ch->hot.ewma_ttfb_us, 0);
	atomic_store(&ch->hot.ewma_tps_milli, 0);
	atomic_store(&ch->hot.ejections, 0);
	atomic_store(&ch->hot.ag_updated_ms, 0);
	atomic_store(&ch->hot.ag_minute, 0);
	sb_write_begin(&ch->seq);
	ch->state = SB_CHAN_UP;
	ch->agent_slot = (uint32_t)c->slot;
	ch->agent_id = c->agent_id;
	ch->owner_pid = (int32_t)getpid();
	ch->rpm_limit = rpm > UINT32_MAX ? UINT32_MAX : (uint32_t)rpm;
	ch->tpm_limit = tpm > UINT32_MAX ? UINT32_MAX : (uint32_t)tpm;
	frame_get_str(f, "grade", &s, &len);
	/* An agent may claim a grade; it never exceeds the registry's. */
	ch->grade = (len == 1 && s[0] > c->grade) ? s[0] : c->grade;
	frame_get_str(f, "name", &s, &len);
	snprintf(ch->name, sizeof(ch->name), "%.*s", (int)len, s);
	frame_get_str(f, "provider", &s, &len);
	snprintf(ch->provider, sizeof(ch->provider), "%.*s", (int)len, s);
	ch->models[0] = '\0';
	for (size_t i = 0, n = 0; i < nmodels; i++) {
		int w = snprintf(ch->models + n, sizeof(ch->models) - n, "%s%.*s",
		    i ? "," : "", (int)models[i].len, models[i].ptr);
		if (w < 0 || (size_t)w >= sizeof(ch->models) - n) {
			ch->models[n] = '\0';
			break;
		}
		n += (size_t)w;
	}
	sb_write_end(&ch->seq);
	c->chan_pending[c->nchan_pending++] = slot;
}

/* The agent's own figures for one of its channels (lib/frame.h METRICS),
 * stored beside the hub's in the scoreboard.  Writer: this tunnel. */
static void
on_metrics(struct tun_conn *c, const struct frame *f)
{
	const char *name;
	size_t len;
	uint64_t v[7] = { 0 }, breq;
	static const char *const keys[7] = { "minute", "requests", "tokens",
	    "errors", "inflight", "latency_ms", "bucket_requests" };
	struct sb_chan_hot *h = NULL;

	frame_get_str(f, "channel", &name, &len);
	for (int i = 0; i < c->nchan && h == NULL; i++) {
		struct sb_channel *ch = sb_channel(&tun_env->sb,
		    (uint32_t)c->chan_slots[i]);

		if (strlen(ch->name) == len && memcmp(ch->name, name, len) == 0)
			h = &ch->hot;
	}
	if (h == NULL)
		return;		/* not (or no longer) announced */
	for (int k = 0; k < 6; k++) {
		frame_get_u64(f, keys[k], &v[k]);
		if (v[k] > INT64_MAX)
			v[k] = INT64_MAX;
	}
	breq = UINT64_MAX;
	(void)frame_get_u64(f, keys[6], &breq);
	atomic_store(&h->ag_minute, (int64_t)v[0]);
	atomic_store(&h->ag_req_minute, (int64_t)v[1]);
	atomic_store(&h->ag_tok_minute, (int64_t)v[2]);
	atomic_store(&h->ag_err_minute, (int64_t)v[3]);
	atomic_store(&h->ag_inflight, (int64_t)v[4]);
	atomic_store(&h->ag_latency_ms, (int64_t)v[5]);
	atomic_store(&h->ag_bucket_req, breq > INT64_MAX ? -1 : (int64_t)breq);
	atomic_store(&h->ag_updated_ms, clock_wall_ms());
}

/* The agent's version and the public address GET /probe answered it
 * (lib/frame.h HELLO), kept in its scoreboard slot for hubctl agents. */
static void
on_hello(struct tun_conn *c, const struct frame *f)
{
	struct sb_agent *a;
	const char *s;
	size_t len;
	char ip[64] = "", ver[32] = "";

	frame_get_str(f, "version", &s, &len);
	for (size_t i = 0; i < len && i + 1 < sizeof(ver); i++)
		ver[i] = s[i] > ' ' && s[i] < 0x7f ? s[i] : '?';
	if (frame_get_str(f, "public_ip", &s, &len) == 0)
		for (size_t i = 0; i < len && i + 1 < sizeof(ip); i++)
			ip[i] = s[i] > ' ' && s[i] < 0x7f ? s[i] : '?';
	memcpy(c->version, ver, sizeof(c->version));
	/* os, arch: its platform, for update_available (tun_files). */
	if (frame_get_str(f, "os", &s, &len) == 0 && len < sizeof(c->os))
		snprintf(c->os, sizeof(c->os), "%.*s", (int)len, s);
	if (frame_get_str(f, "arch", &s, &len) == 0 && len < sizeof(c->arch))
		snprintf(c->arch, sizeof(c->arch), "%.*s", (int)len, s);
	if (!release_name_valid(c->os) || !release_name_valid(c->arch))
		c->os[0] = c->arch[0] = '\0';
	{
		bool b = false;

		(void)frame_get_bool(f, "packed", &b);
		c->packed = b;
	}
	tun_files_hello(c);
	if (c->slot < 0)
		return;
	a = sb_agent(&tun_env->sb, (uint32_t)c->slot);
	sb_write_begin(&a->seq);
	memcpy(a->version, ver, sizeof(a->version));
	memcpy(a->probed_addr, ip, sizeof(a->probed_addr));
	sb_write_end(&a->seq);
	if (ip[0] != '\0' && strcmp(ip, c->addr) != 0)
		log_info("agent %llu: its public address is %s, the tunnel sees "
		    "%s", (unsigned long long)c->agent_id, ip, c->addr);
}

/* Which frames an agent may send in which state. */
static void
on_frame(struct tun_conn *c, const struct frame *f)
{
	if (c->state == TC_CHALLENGED) {
		if (f->type != FRAME_AUTH) {
			tun_close(c, "out-of-order %s frame before authentication",
			    frame_type_name(f->type));
			return;
		}
		on_auth(c, f);
		return;
	}
	if (c->state != TC_ONLINE) {
		tun_close(c, "%s frame while the handshake is being checked",
		    frame_type_name(f->type));
		return;
	}
	switch (f->type) {
	case FRAME_CHANNELS:
		on_channels(c, f);
		break;
	case FRAME_PONG:
		agent_slot_update(c);
		break;
	case FRAME_PING: {
		uint64_t ts = 0;
		frame_get_u64(f, "ts", &ts);
		send_simple_u64(c, FRAME_PONG, "ts", ts);
		break;
	}
	case FRAME_ECHO_REPLY: {
		const char *s;
		size_t len;
		frame_get_str(f, "text", &s, &len);
		tun_echo_reply(c, s, len);
		break;
	}
	case FRAME_METRICS:
		on_metrics(c, f);
		break;
	case FRAME_HELLO:
		on_hello(c, f);
		break;
	case FRAME_RESP_HEAD:
	case FRAME_RESP_CHUNK:
	case FRAME_RESP_END:
	case FRAME_WS_MSG:
		tun_relay_frame(c, f);
		break;
	case FRAME_SYNC:
	case FRAME_RECEIPT_ACK:
	case FRAME_USAGE:
		tun_ledger_frame(c, f);
		break;
	default:
		tun_close(c, "out-of-order %s frame", frame_type_name(f->type));
	}
}

static void
on_receive(struct tun_conn *c, const void *in, size_t len)
{
	struct frame f;
	char err[160];
	unsigned char *nb;
	size_t used;

	if (c->state == TC_CLOSING)
		return;
	if (!lws_frame_is_binary(c->wsi)) {
		tun_close(c, "text message on a binary protocol");
		return;
	}
	if (c->rx_len + len > FRAME_MAX) {
		tun_close(c, "frame larger than %u bytes", FRAME_MAX);
		return;
	}
	if (!lws_is_final_fragment(c->wsi) || c->rx_len > 0) {
		nb = realloc(c->rx, c->rx_len + len);
		if (nb == NULL) {
			tun_close(c, "out of memory");
			return;
		}
		c->rx = nb;
		memcpy(c->rx + c->rx_len, in, len);
		c->rx_len += len;
		if (!lws_is_final_fragment(c->wsi))
			return;
		in = c->rx;
		len = c->rx_len;
	}
	c->last_rx_ms = clock_mono_ms();
	/* One frame, or several packed (lib/frame.h PACKING). */
	for (const unsigned char *p = in, *end = p + len;
	    p < end && c->state != TC_CLOSING; p += used) {
		if (frame_decode_next(p, (size_t)(end - p), &f, &used, err,
		    sizeof(err)) != 0) {
			tun_close(c, "malformed frame: %s", err);
			break;
		}
		on_frame(c, &f);
		frame_free(&f);
	}
	free(c->rx);
	c->rx = NULL;
	c->rx_len = 0;
}

static int
on_writeable(struct tun_conn *c)
{
	/* lws keeps what a partial write left, so one buffer serves all. */
	static unsigned char pack[LWS_PRE + FRAME_PACK_MAX];
	const unsigned char *data;
	size_t n, len;

	if (c->out.head == NULL && c->state == TC_CLOSING) {
		/* Queued frames (a KICK, say) went out first. */
		lws_close_reason(c->wsi, LWS_CLOSE_STATUS_POLICY_VIOLATION,
		    (unsigned char *)c->close_reason, strlen(c->close_reason));
		return -1;
	}
	/* Several frames in one message when packed: one write, one read. */
	n = outq_next(&c->out, c->packed, pack + LWS_PRE, FRAME_PACK_MAX,
	    &data, &len);
	if (n == 0)
		return 0;
	if (lws_write(c->wsi, (unsigned char *)(uintptr_t)data, len,
	    LWS_WRITE_BINARY) < (int)len)
		return -1;
	while (n-- > 0)
		outq_pop(&c->out);
	if (c->out.head != NULL || c->state == TC_CLOSING)
		lws_callback_on_writable(c->wsi);
	return 0;
}

static struct tun_conn *
conn_new(struct lws *wsi)
{
	struct tun_conn *c = calloc(1, sizeof(*c));
	char ip[48] = "?";

	if (c == NULL)
		return NULL;
	c->wsi = wsi;
	c->serial = next_serial++;
	c->slot = -1;
	c->opened_ms = c->last_rx_ms = c->last_ping_ms = clock_mono_ms();
	lws_get_peer_simple(wsi, ip, sizeof(ip));
	snprintf(c->addr, sizeof(c->addr), "%s", ip);
	c->next = tun_conns;
	if (tun_conns != NULL)
		tun_conns->prev = c;
	tun_conns = c;
	tun_nconns++;
	return c;
}

/* The agent is gone for every purpose: pending echo, streams (ended
 * with agent_lost), scoreboard slots.  Idempotent. */
static void
conn_down(struct tun_conn *c)
{
	tun_conn_gone(c);
	tun_relay_agent_gone(c);
	conn_offline(c);
}

static void
conn_free(struct tun_conn *c)
{
	char lbl[160];

	if (c->state == TC_ONLINE)
		log_info("%s went offline", conn_label(c, lbl, sizeof(lbl)));
	conn_down(c);
	lws_dll2_remove(&c->due);
	outq_clear(&c->out);
	free(c->rx);
	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		tun_conns = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	tun_nconns--;
	free(c);
}

/*
 * GET /probe: the caller's address as the hub sees it, {"ip":"..."} — the
 * peer's, or behind [tunnel] trusted_proxy (and only from it) the last
 * entry of its X-Forwarded-For.  Agents learn their public address here.
 */
static int
probe_answer(struct lws *wsi)
{
	unsigned char buf[LWS_PRE + 512], *start = buf + LWS_PRE, *p = start,
	    *end = buf + sizeof(buf) - 1;
	unsigned char body[LWS_PRE + 160];
	char ip[64] = "?", xff[256], *last;
	int n;

	lws_get_peer_simple(wsi, ip, sizeof(ip));
	if (tun_env->conf.tun_trusted_proxy[0] != '\0' &&
	    strcmp(ip, tun_env->conf.tun_trusted_proxy) == 0 &&
	    lws_hdr_copy(wsi, xff, sizeof(xff), WSI_TOKEN_X_FORWARDED_FOR) > 0) {
		last = strrchr(xff, ',');
		last = last != NULL ? last + 1 : xff;
		while (*last == ' ')
			last++;
		if (strspn(last, "0123456789abcdefABCDEF.:") == strlen(last) &&
		    last[0] != '\0' && strlen(last) < sizeof(ip))
			memcpy(ip, last, strlen(last) + 1);
	}
	n = snprintf((char *)body + LWS_PRE, sizeof(body) - LWS_PRE,
	    "{\"ip\":\"%s\"}", ip);
	if (lws_add_http_common_headers(wsi, HTTP_STATUS_OK, "application/json",
	    (lws_filepos_t)n, &p, end) != 0 ||
	    lws_finalize_write_http_header(wsi, start, &p, end) != 0 ||
	    lws_write(wsi, body + LWS_PRE, (size_t)n, LWS_WRITE_HTTP_FINAL) != n)
		return -1;
	return lws_http_transaction_completed(wsi) ? -1 : 0;
}

static int
cb_tunnel(struct lws *wsi, enum lws_callback_reasons reason, void *user,
    void *in, size_t len)
{
	struct tun_pss *pss = user;
	char uri[128];

	switch (reason) {
	case LWS_CALLBACK_OPENSSL_LOAD_EXTRA_SERVER_VERIFY_CERTS:
		/* user: the vhost's SSL_CTX.  An idle agent's connection gives
		 * its TLS read and write buffers (about 34 KB) back between
		 * records instead of holding them for its whole life. */
		SSL_CTX_set_mode((SSL_CTX *)user, SSL_MODE_RELEASE_BUFFERS);
		return 0;
	case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION:
		if (lws_hdr_copy(wsi, uri, sizeof(uri), WSI_TOKEN_GET_URI) <= 0 ||
		    strcmp(uri, TUN_PATH) != 0) {
			log_warn("refused a WebSocket upgrade to %s",
			    uri[0] ? uri : "(no path)");
			return -1;
		}
		return 0;
	case LWS_CALLBACK_ESTABLISHED:
		if (tun_env->stopping)
			return -1;
		pss->c = conn_new(wsi);
		if (pss->c == NULL)
			return -1;
		on_established(pss->c);
		return 0;
	case LWS_CALLBACK_RECEIVE:
		if (pss->c != NULL)
			on_receive(pss->c, in, len);
		return 0;
	case LWS_CALLBACK_SERVER_WRITEABLE:
		return pss->c != NULL ? on_writeable(pss->c) : 0;
	case LWS_CALLBACK_CLOSED:
		if (pss->c != NULL) {
			conn_free(pss->c);
			pss->c = NULL;
		}
		return 0;
	case LWS_CALLBACK_HTTP:
		/* Besides the WebSocket upgrade: GET /probe and agentd's
		 * releases (tun_files) only. */
		if (strcmp((const char *)in, TUN_PROBE_PATH) == 0 &&
		    lws_hdr_total_length(wsi, WSI_TOKEN_GET_URI) > 0)
			return probe_answer(wsi);
		if (strncmp((const char *)in, RELEASE_FILES_PREFIX,
		    strlen(RELEASE_FILES_PREFIX)) == 0 &&
		    lws_hdr_total_length(wsi, WSI_TOKEN_GET_URI) > 0)
			return tun_files_http(wsi, (const char *)in);
		lws_return_http_status(wsi, HTTP_STATUS_NOT_FOUND, NULL);
		return -1;
	default:
		break;
	}
	return lws_callback_http_dummy(wsi, reason, user, in, len);
}

struct lws_protocols
tun_protocol(void)
{
	/* rx_buffer_size: lws holds this much per connection for its
	 * life.  1 KB takes a short chat answer's frame (the bench's are
	 * about 660 bytes) in one callback; larger messages arrive in pieces
	 * that on_receive reassembles.  Measured with 300 idle agents: the
	 * tunnel's live heap is 18.0 KB per agent (19.1 with 2 KB), its
	 * resident memory 24.7 KB (26.0); 512 bytes saved nothing more. */
	struct lws_protocols p = { "swb-tunnel", cb_tunnel,
		sizeof(struct tun_pss), 1024, 0, NULL, 0 };
	return p;
}

/*
 * OpenSSL gives a connection's 16 KB read and write buffers back after
 * each record (SSL_MODE_RELEASE_BUFFERS, set on the vhost): an idle
 * agent then holds none.  An agent that relays makes both again for
 * nearly every record, so while it has streams, and TUN_TLS_KEEP_MS
 * after its last one ended, its connection keeps them (tun_tick gives
 * them back).  Heartbeats alone never change the mode.
 */
void
tun_tls_busy(struct tun_conn *c, int started)
{
	SSL *ssl;

	if (!started) {
		if (c->nrelay > 0 && --c->nrelay == 0)
			c->relay_idle_ms = clock_mono_ms();
		return;
	}
	if (c->nrelay++ == 0 && !c->tls_kept &&
	    (ssl = lws_get_ssl(c->wsi)) != NULL) {
		SSL_clear_mode(ssl, SSL_MODE_RELEASE_BUFFERS);
		c->tls_kept = 1;
	}
}

/* An agent quiet for TUN_TLS_KEEP_MS gives its TLS buffers back. */
static void
tls_idle(struct tun_conn *c, int64_t now)
{
	SSL *ssl;

	if (!c->tls_kept || c->nrelay > 0 ||
	    now - c->relay_idle_ms < TUN_TLS_KEEP_MS ||
	    (ssl = lws_get_ssl(c->wsi)) == NULL)
		return;
	SSL_set_mode(ssl, SSL_MODE_RELEASE_BUFFERS);
	if (SSL_free_buffers(ssl) == 1)	/* refused while they hold bytes */
		c->tls_kept = 0;
}

void
tun_tick(void)
{
	int64_t now = clock_mono_ms();
	const struct hub_conf *cf = &tun_env->conf;

	for (struct tun_conn *c = tun_conns; c != NULL; c = c->next) {
		if (c->state == TC_CLOSING) {
			/* A peer that never reads does not keep us waiting. */
			if (now - c->closing_ms > 2000)
				lws_set_timeout(c->wsi, PENDING_TIMEOUT_KILLED_BY_PARENT,
				    LWS_TO_KILL_ASYNC);
			continue;
		}
		if (c->state != TC_ONLINE) {
			if (now - c->opened_ms > cf->tun_handshake_timeout_ms)
				tun_close(c, "no valid answer to the challenge within "
				    "%lld ms", (long long)cf->tun_handshake_timeout_ms);
			continue;
		}
		if (now - c->last_rx_ms > cf->tun_heartbeat_timeout_ms) {
			tun_close(c, "missed heartbeats: silent for %lld ms",
			    (long long)(now - c->last_rx_ms));
			/* A silent agent (frozen, or its host gone) will not
			 * answer the close either: it is down now, and its
			 * streams end now, not when the close gives up. */
			conn_down(c);
			continue;
		}
		tls_idle(c, now);
		if (now - c->last_ping_ms >= cf->tun_heartbeat_ms) {
			c->last_ping_ms = now;
			send_simple_u64(c, FRAME_PING, "ts", (uint64_t)clock_wall_ms());
		}
	}
}

void
tun_stop_all(const char *why)
{
	for (struct tun_conn *c = tun_conns; c != NULL; c = c->next)
		tun_close(c, "%s", why);
}
