/*
 * gateway/gw_token: the worker's token cache.  A token seen in the last
 * GW_TOKEN_TTL_MS is checked in memory (no round trip on the hot path);
 * otherwise billing is asked over billing.sock and requests with the same
 * token wait for that one answer.  A disabled token stops working within
 * the TTL.  Also the quota charges on the same peer: before the relay the
 * request waits (stage reserve, at most GW_CHARGE_WAIT_MS) for billing to
 * reserve its estimate; at its end how it ended is posted (gw_charge_settle)
 * and kept until billing acknowledges it.  Billing's rule: see
 * billing/bill_charge.c.
 *
 * A token without a quota (quota -1) cannot be refused a reservation for
 * want of it, so its request does not wait: the reservation is sent
 * (IPC_CHARGE_F_UNWAITED) and the request goes on to its relay in the same
 * turn, one round trip to billing and one wake-up of this worker fewer.
 * Only a token that has been charged before (used > 0 when it was looked
 * up): such a token can no longer be deleted (billing/store_admin.c), so
 * its row is there when billing records the reservation.  A quota set on
 * an unlimited token applies within GW_TOKEN_TTL_MS, as a disabling does.
 * It goes, as the request's post later, on the deferred connection
 * (bill_q below), which billing reads in order, so the reservation is
 * recorded before the post, and child_peer_flush writes billing's
 * messages of a turn before the tunnel's.  Billing does not answer it; a
 * refusal (a store error) is logged there, and the post makes the charge
 * again and bills what was used.  Every reservation of a token without a
 * quota says so (IPC_CHARGE_F_UNLIMITED): one that is waited for is then
 * recorded as the unwaited ones, a row of 0, and answered.
 *
 * A token with a quota goes unwaited too while this worker holds a lease
 * for it (gateway/gw_lease.c, billing/bill_lease.c): billing may answer
 * an ask, a reservation waited for (IPC_CHARGE_F_LEASE_OK, one out per
 * token), with a part of the token's headroom, from which the next
 * requests of the same model take their estimates (IPC_CHARGE_F_LEASED)
 * until it runs out or ends.
 */
#include <string.h>
#include <stdlib.h>
#include <unistd.h>
#include <sys/random.h>
#include "gateway/gw.h"
#include "lib/log.h"
#include "lib/tokest.h"
#include "lib/str.h"

#define GW_TOKEN_TTL_MS	5000
#define GW_TOKEN_SLOTS	4096		/* direct-mapped by hash */
#define GW_TOKEN_WAIT_MS 10000		/* longest wait for billing's answer */
#define GW_CHARGE_WAIT_MS 5000		/* longest wait for a reservation */

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

static struct child_peer bill, bill_q;
static uint64_t charge_nonce;	/* this worker's part of every charge key */

/*
 * What can wait goes on bill_q, the worker's second connection to
 * billing.sock, which billing reads at most every few ms (IPC_BILL_DEFER,
 * lib/msgsrv.h): posts and unwaited reservations.  Billing wakes for
 * them once a hold, not once a request, and still reads them before any
 * later message of any client (a reservation waited for, a token look-up,
 * a job retrieve on another worker), an admin command or its sweep.
 * bill_q is flushed first of the worker's peers (gw_token_init), so a
 * reservation is in billing's socket before the relay it allows; while it
 * is down, they go on bill.
 */
static struct child_peer *
bill_later(void)
{
	return child_peer_up(&bill_q) ? &bill_q : &bill;
}

/*
 * Posts billing has not acknowledged yet (IPC_CHARGE_POSTED): sent again
 * when billing.sock comes back or billing asks to retry, so a post is
 * never lost while billing restarts; being idempotent by key, a repeat
 * never counts twice.
 */
struct post {
	struct post *next;
	uint64_t charge_id;
	struct ipc_charge_post p;
	int64_t resend_at;	/* monotonic ms; 0: sent, waiting */
	uint64_t reqid;		/* the request it settles; 0: none (a void
				 * after a lost reservation, a Realtime
				 * response) */
	char *access;		/* its access line, written with the amount
				 * billing answers; NULL: none */
};
/* Oldest first: billing answers in order, so an answer is found at once. */
static struct post *posts, **posts_tail = &posts;
static size_t nposts;
#define GW_POSTS_MAX	200000
#define GW_POST_RETRY_MS 1000

int
gw_charge_hold_line(uint64_t charge_id, const char *line)
{
	struct post *q;

	for (q = posts; q != NULL; q = q->next)
		if (q->charge_id == charge_id && q->reqid != 0)
			break;
	if (q == NULL || q->access != NULL || (q->access = strdup(line)) == NULL)
		return -1;
	return 0;
}

void
gw_charge_key(const struct gw_req *r, char *out, size_t len)
{
	/* Before a charge exists, the id it would get (every answer, errors
	 * included, carries x-request-id). */
	ipc_charge_key(charge_nonce, r->charge_id ? r->charge_id : r->reqid,
	    out, len);
}

static void
post_send(struct post *q)
{
	if (child_peer_send(bill_later(), IPC_CHARGE_POST, q->charge_id, &q->p,
	    sizeof(q->p)) != 0)
		q->resend_at = clock_mono_ms() + GW_POST_RETRY_MS;
	else
		q->resend_at = 0;
}

static void
send_post(uint64_t charge_id, uint64_t reqid, const struct ipc_charge_post *p)
{
	struct post *q;

	if (nposts >= GW_POSTS_MAX || (q = calloc(1, sizeof(*q))) == NULL) {
		log_error("req=%016llx charge post lost: %zu posts wait for "
		    "billing already", (unsigned long long)charge_id, nposts);
		return;
	}
	q->charge_id = charge_id;
	q->reqid = reqid;
	q->p = *p;
	*posts_tail = q;
	posts_tail = &q->next;
	nposts++;
	post_send(q);
	if (q->resend_at != 0)
		log_rwarn(charge_id, "charge post: billing unreachable; kept "
		    "until it is back");
}

static void
on_posted(const struct msg *m)
{
	struct ipc_charge_posted a;
	struct post **pp, *q;
	struct gw_req *r;

	memcpy(&a, m->data, sizeof(a));
	for (pp = &posts; (q = *pp) != NULL; pp = &q->next)
		if (q->charge_id == m->hdr.reqid && q->p.nonce == a.nonce)
			break;
	if (q == NULL)
		return;		/* a repeat's answer */
	if (a.status == IPC_POSTED_RETRY) {
		q->resend_at = clock_mono_ms() + GW_POST_RETRY_MS;
		return;
	}
	*pp = q->next;
	if (posts_tail == &q->next)
		posts_tail = pp;
	nposts--;
	if (q->access != NULL) {
		/* The request ended before billing answered. */
		gw_access_log(q->reqid, q->access, a.state, a.amount);
		free(q->access);
	} else if (q->reqid != 0 && (r = gw_req_find(q->reqid)) != NULL) {
		r->posted = 1;
		r->posted_state = a.state;
		r->posted_amount = a.amount;
	}
	free(q);
}

/* Billing went away: whatever it did not acknowledge goes again. */
static void
posts_resend_all(void)
{
	for (struct post *q = posts; q != NULL; q = q->next)
		q->resend_at = clock_mono_ms() + 100;
}

static void
posts_tick(void)
{
	int64_t now = clock_mono_ms();

	if (!child_peer_up(bill_later()))
		return;
	for (struct post *q = posts; q != NULL; q = q->next)
		if (q->resend_at != 0 && now >= q->resend_at)
			post_send(q);
}

int
gw_posts_pending(void)
{
	return (int)nposts;
}

static void
void_post(uint64_t charge_id, uint64_t token_id)
{
	struct ipc_charge_post p;

	memset(&p, 0, sizeof(p));
	p.token_id = token_id;
	p.nonce = charge_nonce;
	p.how = IPC_POST_VOID;
	send_post(charge_id, 0, &p);
}


/*
 * Realtime: each response of a session is charged at once, on its own key
 * (ipc_response_charge of the session key and the response's number):
 * reserved with the tokens read, then posted as HUB with that usage, so
 * the ledger holds one entry per response.  Reservations waiting for
 * billing, oldest first (billing answers in order); sent again after
 * billing restarts (a reservation is idempotent by key).  A refusal ends
 * the session (gw_rt_refused).
 */
struct resp_charge {
	struct resp_charge *next;
	uint64_t reqid;			/* the response's number: the key's half */
	uint64_t session_reqid;		/* the session (its request) */
	struct ipc_charge_reserve q;
	struct ipc_charge_post p;	/* posted when the reservation holds */
	int sent;
};
static struct resp_charge *rcharges, **rcharges_tail = &rcharges;
static size_t nrcharges;
#define GW_RCHARGES_MAX	10000

static void
rcharge_send(struct resp_charge *c)
{
	c->sent = child_peer_send(&bill, IPC_CHARGE_RESERVE, c->reqid, &c->q,
	    sizeof(c->q)) == 0;
}

int
gw_charge_response(struct gw_req *r, const char *session_key, uint64_t n,
    const struct usage *u)
{
	struct resp_charge *c;
	uint64_t nonce, reqid;

	if (ipc_response_charge(session_key, n, &nonce, &reqid) != 0 ||
	    nrcharges >= GW_RCHARGES_MAX || (c = calloc(1, sizeof(*c))) == NULL)
		return -1;
	c->reqid = reqid;
	c->session_reqid = r->reqid;
	c->q.token_id = r->token_id;
	c->q.nonce = nonce;
	c->q.est_tokens = u->input_tokens + u->output_tokens;
	str_copy(c->q.model, sizeof(c->q.model), r->model);
	c->p.token_id = r->token_id;
	c->p.nonce = nonce;
	c->p.how = IPC_POST_HUB;
	if (r->cur < r->ncand)
		c->p.agent_id = r->cand[r->cur].agent_id;
	c->p.input_tokens = u->input_tokens;
	c->p.output_tokens = u->output_tokens;
	c->p.cached_tokens = u->cached_tokens;
	c->p.cache_write_tokens = u->cache_write_tokens;
	str_copy(c->p.model, sizeof(c->p.model), r->model);
	*rcharges_tail = c;
	rcharges_tail = &c->next;
	nrcharges++;
	rcharge_send(c);
	return 0;
}

/* 1: the result was a response charge's (handled). */
static int
rcharge_result(const struct msg *m, const struct ipc_charge_result *res)
{
	struct resp_charge **pp, *c;

	for (pp = &rcharges; (c = *pp) != NULL; pp = &c->next)
		if (c->sent && c->reqid == m->hdr.reqid &&
		    c->q.token_id == res->token_id)
			break;
	if (c == NULL)
		return 0;
	*pp = c->next;
	if (rcharges_tail == &c->next)
		rcharges_tail = pp;
	nrcharges--;
	if (res->status == IPC_CHARGE_OK)
		send_post(c->reqid, 0, &c->p);
	else
		gw_rt_refused(c->session_reqid,
		    res->status == IPC_CHARGE_INSUFFICIENT);
	free(c);
	return 1;
}

static void
rcharges_tick(void)
{
	if (!child_peer_up(&bill))
		return;
	for (struct resp_charge *c = rcharges; c != NULL; c = c->next)
		if (!c->sent)
			rcharge_send(c);
}

static void
on_charge_result(const struct msg *m)
{
	struct ipc_charge_result res;
	struct gw_req *r;

	memcpy(&res, m->data, sizeof(res));
	if (rcharge_result(m, &res))
		return;
	/* An ask's answer ends the ask, whoever still waits for it. */
	gw_lease_answer(res.token_id, m->hdr.reqid, res.status ==
	    IPC_CHARGE_OK ? res.lease_micros : 0, res.lease_ms,
	    res.price_micros, clock_mono_ms());
	/* The charge key is the request's first id, and the answer comes
	 * before any retry could give it another. */
	r = gw_req_find(m->hdr.reqid);
	if (r != NULL && (r->charge_id != m->hdr.reqid ||
	    r->charge != GW_CH_ASKED))
		r = NULL;
	if (r == NULL || !gw_waits_in(r, GW_ST_RESERVE)) {
		/* Nobody waits any more (the user left, or the wait timed
		 * out): give a reservation back at once. */
		if (res.status == IPC_CHARGE_OK) {
			log_rinfo(m->hdr.reqid, "late reservation: voiding it");
			void_post(m->hdr.reqid, res.token_id);
		}
		if (r != NULL)
			r->charge = GW_CH_SETTLED;
		return;
	}
	if (res.status == IPC_CHARGE_OK) {
		r->charge = GW_CH_RESERVED;
		gw_resume(r, GW_GO);
		return;
	}
	r->charge = GW_CH_SETTLED;
	if (res.status == IPC_CHARGE_INSUFFICIENT)
		gw_reply_error(r, 429, "insufficient_quota", "insufficient_quota",
		    "You exceeded your current quota.");
	else
		gw_reply_error(r, 503, "hub_error", "store_unavailable",
		    "The hub cannot check quotas right now; retry shortly.");
	gw_resume(r, GW_STOP);
}

/* flags: IPC_CHARGE_F_* */
static void
send_reserve(struct gw_req *r, uint32_t flags)
{
	struct ipc_charge_reserve q;

	memset(&q, 0, sizeof(q));
	q.flags = flags | (r->tok.quota_micros < 0 ? IPC_CHARGE_F_UNLIMITED : 0);
	q.token_id = r->token_id;
	q.nonce = charge_nonce;
	q.est_tokens = r->lim.est;
	q.est_video_seconds = r->est_video_seconds;
	str_copy(q.model, sizeof(q.model), r->model);
	r->charge = child_peer_send((flags & IPC_CHARGE_F_UNWAITED) ?
	    bill_later() : &bill, IPC_CHARGE_RESERVE, r->charge_id, &q,
	    sizeof(q)) == 0 ? GW_CH_ASKED : GW_CH_UNSENT;
}

/*
 * While billing restarts the request waits (up to GW_CHARGE_WAIT_MS) and
 * is asked again once billing.sock is back: a reservation is idempotent
 * by key, so asking twice never reserves twice.
 */
enum gw_verdict
gw_charge_reserve(struct gw_req *r)
{
	/* Not behind a backlog to billing: the reservation must leave
	 * with this turn's flush, which writes billing before the tunnel,
	 * so before the relay it allows.  What this turn queued already
	 * for billing is no backlog: it leaves in the same write (at c=32
	 * most reservations shared their turn with another message to
	 * billing, and waited). */
	int backlog = child_peer_backlog(&bill) ||
	    child_peer_backlog(&bill_q);
	int unwaited = r->tok.quota_micros < 0 && r->tok.used_micros > 0 &&
	    !backlog;
	int leasable = r->tok.quota_micros >= 0 && r->est_video_seconds <= 0;
	int64_t now = clock_mono_ms();
	uint32_t flags = unwaited ? IPC_CHARGE_F_UNWAITED : 0;

	/* A token with a quota goes unwaited on its lease (gw_lease.c). */
	if (leasable && !backlog &&
	    gw_lease_take(r->token_id, r->model, r->lim.est, now)) {
		unwaited = 1;
		flags = IPC_CHARGE_F_UNWAITED | IPC_CHARGE_F_LEASED;
	} else if (leasable && !backlog &&
	    gw_lease_ask(r->token_id, r->model, r->reqid))
		flags |= IPC_CHARGE_F_LEASE_OK;
	if (leasable)
		gw_metrics_quota_reserve((flags & IPC_CHARGE_F_LEASED) != 0);
	r->charge_id = r->reqid;
	r->charge_deadline = now + GW_CHARGE_WAIT_MS;
	send_reserve(r, flags);
	/* An ask that never left is over (billing did not release). */
	if ((flags & IPC_CHARGE_F_LEASE_OK) && r->charge != GW_CH_ASKED)
		gw_lease_answer(r->token_id, r->reqid, 0, 0, 0, now);
	if (unwaited && r->charge == GW_CH_ASKED) {
		r->charge = GW_CH_RESERVED;
		return GW_GO;
	}
	return GW_WAIT;	/* an unsent one is asked again, waited for */
}

/*
 * How r ended decides whose numbers bill it (billing/bill_ledger.c):
 * nothing relayed with a 2xx head -> void; the hub read the provider's
 * usage -> HUB; the agent's resp_end carried usage -> AGENT; otherwise the
 * stream was cut short -> AWAIT the agent's report, with the hub's own
 * usage_estimate_cut() of what it relayed as the fallback (zero when
 * nothing reached the hub: then the fallback is a void).
 */
void
gw_charge_settle(struct gw_req *r)
{
	struct ipc_charge_post p;
	struct usage u;
	int served;

	if (r->charge != GW_CH_RESERVED)
		return;
	r->charge = GW_CH_SETTLED;
	memset(&p, 0, sizeof(p));
	p.token_id = r->token_id;
	p.nonce = charge_nonce;
	str_copy(p.model, sizeof(p.model), r->model);
	if (r->relayed && r->cur < r->ncand) {
		p.agent_id = r->cand[r->cur].agent_id;
		memcpy(p.channel, r->cand[r->cur].channel, sizeof(p.channel));
	}
	/* served: the agent answered 2xx, or the user left mid-relay (the
	 * agent may have served what the user never saw). */
	served = r->relayed && ((r->head_queued && r->status >= 200 &&
	    r->status < 300) || (!r->head_queued && r->stage == GW_ST_RELAY &&
	    r->ncand > 0));
	u = r->usage;
	if (!served || p.agent_id == 0)
		p.how = IPC_POST_VOID;
	else if (u.seen)
		p.how = IPC_POST_HUB;
	else if (r->agent_usage.seen) {
		p.how = IPC_POST_AGENT;
		u = r->agent_usage;
	} else {
		p.how = IPC_POST_AWAIT;
		if (r->head_queued)
			usage_estimate_cut(&u, tokest_prompt(r->fwd_len));
		else
			memset(&u, 0, sizeof(u));
	}
	p.input_tokens = u.input_tokens;
	p.output_tokens = u.output_tokens;
	p.cached_tokens = u.cached_tokens;
	p.cache_write_tokens = u.cache_write_tokens;
	p.images = u.images;
	p.audio_seconds = u.audio_seconds;
	p.audio_chars = u.audio_chars;
	p.video_seconds = u.video_seconds;
	gw_video_post(r, &p);
	send_post(r->charge_id, r->reqid, &p);
}

int
gw_bill_send(uint16_t type, uint64_t reqid, const void *p, size_t len)
{
	return child_peer_send(&bill, type, reqid, p, len);
}

static void
on_bill_msg(struct child_peer *p, const struct msg *m)
{
	struct ipc_token_info info;
	struct cached *c;
	struct gw_req *r;

	if (m->hdr.type == IPC_CHARGE_RESULT) {
		on_charge_result(m);
		return;
	}
	if (m->hdr.type == IPC_CHARGE_POSTED) {
		on_posted(m);
		return;
	}
	if (m->hdr.type == IPC_JOB_INFO) {
		gw_video_info(m);
		return;
	}
	if (m->hdr.type != IPC_TOKEN_INFO) {
		child_peer_drop(p, "unexpected %s",
		    msg_type_name(&bill_gw_rules, m->hdr.type));
		return;
	}
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
	/* Everyone waiting for this token goes on (each leaves the stage). */
	for (;;) {
		for (r = gw_live; r != NULL; r = r->next)
			if (gw_waits_in(r, GW_ST_AUTH) &&
			    strcmp(r->token_hash, info.hash) == 0)
				break;
		if (r == NULL)
			break;
		if (info.status == IPC_TOKEN_STORE_ERROR) {
			gw_reply_error(r, 503, "hub_error", "store_unavailable",
			    "The hub cannot check tokens right now; retry shortly.");
			gw_resume(r, GW_STOP);
		} else
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
			if (gw_waits_in(r, GW_ST_AUTH))
				break;
		if (r == NULL)
			return;
		log_rwarn(r->reqid, "token check failed: %s", why);
		gw_reply_error(r, 503, "hub_error", "store_unavailable",
		    "The hub cannot check tokens right now; retry shortly.");
		gw_resume(r, GW_STOP);
	}
}

static void
on_bill_down(struct child_peer *p)
{
	struct gw_req *r;

	for (int i = 0; i < GW_TOKEN_SLOTS; i++)
		cache[i].asking = 0;
	gw_lease_drop_all();	/* billing's successor holds none */
	posts_resend_all();
	for (struct resp_charge *c = rcharges; c != NULL; c = c->next)
		c->sent = 0;		/* asked again of its successor */
	fail_waiting("billing went away");
	/* Reservations asked of the billing that died: ask its successor. */
	for (r = gw_live; r != NULL; r = r->next)
		if (gw_waits_in(r, GW_ST_RESERVE) && r->charge == GW_CH_ASKED)
			r->charge = GW_CH_UNSENT;
}

static struct child_peer bill = {
	.sock = "billing.sock",
	.rules = &bill_gw_rules,
	.on_msg = on_bill_msg,
	.on_down = on_bill_down,
};

/* First on the deferred connection: say so. */
static void
on_bill_q_up(struct child_peer *p)
{
	struct ipc_bill_defer d;

	memset(&d, 0, sizeof(d));
	if (child_peer_send(p, IPC_BILL_DEFER, 0, &d, sizeof(d)) != 0)
		log_warn("billing.sock: cannot ask for a deferred connection");
}

/* Lost with it: posts not acknowledged (sent again, on bill while it is
 * down); an unwaited reservation is made again by its post. */
static void
on_bill_q_down(struct child_peer *p)
{
	posts_resend_all();
}

static struct child_peer bill_q = {
	.sock = "billing.sock",
	.rules = &bill_gw_rules,
	.on_msg = on_bill_msg,
	.on_down = on_bill_q_down,
	.on_up = on_bill_q_up,
};

void
gw_token_init(struct lws_vhost *vh)
{
	cache = calloc(GW_TOKEN_SLOTS, sizeof(*cache));
	if (cache == NULL)
		fatal("out of memory");
	if (getrandom(&charge_nonce, sizeof(charge_nonce), 0) !=
	    (ssize_t)sizeof(charge_nonce))
		fatal("getrandom failed");
	child_peer_start(&bill_q, gw_env(), vh);	/* flushed first */
	child_peer_start(&bill, gw_env(), vh);
}

void
gw_token_tick(void)
{
	int64_t now = clock_mono_ms();

	child_peer_tick(&bill_q);
	child_peer_tick(&bill);
	posts_tick();
	rcharges_tick();
	gw_lease_tick(now);
	for (struct gw_req *r = gw_live; r != NULL; r = r->next)
		if (gw_waits_in(r, GW_ST_RESERVE) && r->charge == GW_CH_UNSENT &&
		    child_peer_up(&bill))
			send_reserve(r, 0);
	for (struct gw_req *r = gw_live, *next; r != NULL; r = next) {
		next = r->next;
		if (gw_waits_in(r, GW_ST_AUTH) &&
		    now - r->started_ms > GW_TOKEN_WAIT_MS) {
			log_rwarn(r->reqid, "token check: no answer from billing in "
			    "%d ms", GW_TOKEN_WAIT_MS);
			gw_reply_error(r, 503, "hub_error", "store_unavailable",
			    "The hub cannot check tokens right now; retry shortly.");
			gw_resume(r, GW_STOP);
		} else if (gw_waits_in(r, GW_ST_RESERVE) &&
		    now > r->charge_deadline) {
			/* An ASKED charge stays so: a late OK is voided on
			 * arrival.  An UNSENT one reserved nothing. */
			if (r->charge == GW_CH_UNSENT)
				r->charge = GW_CH_SETTLED;
			log_rwarn(r->reqid, "charge reserve: no answer from billing "
			    "in %d ms", GW_CHARGE_WAIT_MS);
			gw_reply_error(r, 503, "hub_error", "store_unavailable",
			    "The hub cannot check quotas right now; retry shortly.");
			gw_resume(r, GW_STOP);
		}
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
