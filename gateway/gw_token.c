/*
 * gateway/gw_token: the worker's token cache.  A token seen in the last
 * GW_TOKEN_TTL_MS is checked in memory (no round trip on the hot path);
 * otherwise billing is asked over billing.sock and requests with the same
 * token wait for that one answer.  A disabled token stops working within
 * the TTL.
 */
#include <string.h>
#include <stdlib.h>
#include "gateway/gw.h"
#include "lib/log.h"

#define GW_TOKEN_TTL_MS	5000
#define GW_TOKEN_SLOTS	4096		/* direct-mapped by hash */
#define GW_TOKEN_WAIT_MS 10000		/* longest wait for billing's answer */

struct cached {
	char hash[65];
	int found;
	struct gw_token t;
	int64_t fetched_ms;
	int asking;
	int64_t asked_ms;
};

static struct cached *cache;

static struct cached *
slot_of(const char *hash)
{
	unsigned h = 0;

	for (int i = 0; i < 8; i++)
		h = h * 16 + (unsigned)(hash[i] <= '9' ? hash[i] - '0' : hash[i] - 'a' + 10);
	return &cache[h % GW_TOKEN_SLOTS];
}

static void
on_bill_msg(struct child_peer *p, const struct msg *m)
{
	struct ipc_token_info info;
	struct cached *c;
	struct gw_req *r;

	if (m->hdr.type != IPC_TOKEN_INFO)
		fatal("billing sent an unexpected %s",
		    msg_type_name(&bill_rules, m->hdr.type));
	memcpy(&info, m->data, sizeof(info));
	info.hash[64] = '\0';
	info.models[sizeof(info.models) - 1] = '\0';
	c = slot_of(info.hash);
	memset(c, 0, sizeof(*c));
	memcpy(c->hash, info.hash, sizeof(c->hash));
	c->found = info.status == IPC_TOKEN_FOUND;
	c->fetched_ms = clock_mono_ms();
	c->t.id = info.id;
	c->t.enabled = (int)info.enabled;
	c->t.expires_at = info.expires_at;
	c->t.quota_micros = info.quota_micros;
	c->t.used_micros = info.used_micros;
	memcpy(c->t.models, info.models, sizeof(c->t.models));
	info.policy[sizeof(info.policy) - 1] = '\0';
	info.channels[sizeof(info.channels) - 1] = '\0';
	memcpy(c->t.policy, info.policy, sizeof(c->t.policy));
	c->t.min_grade = info.min_grade;
	memcpy(c->t.channels, info.channels, sizeof(c->t.channels));
	c->t.rpm = info.rpm;
	c->t.tpm = info.tpm;
	if (info.status == IPC_TOKEN_STORE_ERROR)
		c->fetched_ms = 0;	/* do not cache a failure */
	/* Everyone waiting for this token goes on (each leaves GW_TOKEN). */
	for (;;) {
		for (r = gw_live; r != NULL; r = r->next)
			if (r->state == GW_TOKEN && strcmp(r->token_hash, info.hash) == 0)
				break;
		if (r == NULL)
			break;
		r->state = GW_IDLE;
		if (info.status == IPC_TOKEN_STORE_ERROR)
			gw_reply_error(r, 503, "hub_error", "store_unavailable",
			    "The hub cannot check tokens right now; retry shortly.");
		else
			gw_token_ready(r, &c->t, c->found);
	}
}

/* Requests waiting for a token answer that will not come get a 503. */
static void
fail_waiting(const char *why)
{
	struct gw_req *r;

	for (;;) {
		for (r = gw_live; r != NULL; r = r->next)
			if (r->state == GW_TOKEN)
				break;
		if (r == NULL)
			return;
		r->state = GW_IDLE;
		log_rwarn(r->reqid, "token check failed: %s", why);
		gw_reply_error(r, 503, "hub_error", "store_unavailable",
		    "The hub cannot check tokens right now; retry shortly.");
	}
}

static void
on_bill_down(struct child_peer *p)
{
	for (int i = 0; i < GW_TOKEN_SLOTS; i++)
		cache[i].asking = 0;
	fail_waiting("billing went away");
}

static struct child_peer bill = {
	.sock = "billing.sock",
	.rules = &bill_rules,
	.on_msg = on_bill_msg,
	.on_down = on_bill_down,
};

void
gw_token_init(struct lws_vhost *vh)
{
	cache = calloc(GW_TOKEN_SLOTS, sizeof(*cache));
	if (cache == NULL)
		fatal("out of memory");
	child_peer_start(&bill, gw_env(), vh);
}

void
gw_token_tick(void)
{
	int64_t now = clock_mono_ms();

	child_peer_tick(&bill);
	for (struct gw_req *r = gw_live; r != NULL; r = r->next)
		if (r->state == GW_TOKEN && now - r->started_ms > GW_TOKEN_WAIT_MS) {
			r->state = GW_IDLE;
			log_rwarn(r->reqid, "token check: no answer from billing in "
			    "%d ms", GW_TOKEN_WAIT_MS);
			gw_reply_error(r, 503, "hub_error", "store_unavailable",
			    "The hub cannot check tokens right now; retry shortly.");
		}
}

int
gw_token_lookup(struct gw_req *r, struct gw_token *t)
{
	struct cached *c = slot_of(r->token_hash);
	int64_t now = clock_mono_ms();
	struct ipc_token_get q;

	if (strcmp(c->hash, r->token_hash) == 0 && c->fetched_ms != 0 &&
	    now - c->fetched_ms < GW_TOKEN_TTL_MS) {
		if (!c->found)
			return 2;
		*t = c->t;
		return 1;
	}
	r->state = GW_TOKEN;
	if (strcmp(c->hash, r->token_hash) == 0 && c->asking &&
	    now - c->asked_ms < 2000)
		return 0;		/* someone asked already */
	memset(&q, 0, sizeof(q));
	memcpy(q.hash, r->token_hash, sizeof(q.hash));
	if (child_peer_send(&bill, IPC_TOKEN_GET, r->reqid, &q, sizeof(q)) != 0)
		return -1;
	memset(c, 0, sizeof(*c));
	memcpy(c->hash, r->token_hash, sizeof(c->hash));
	c->asking = 1;
	c->asked_ms = now;
	return 0;
}
