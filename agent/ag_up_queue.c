/*
 * agent/ag_up_queue: the upstream engine's request records and the queues
 * between its two sides.  Owns the records' key hash (the lws side's
 * index of the requests in flight), freeing a record, the event queue
 * (the curl side pushes HEAD, DATA and END, the lws side takes them:
 * ag_up_next_event, ag_up_event_free), cancels (ag_up_cancel takes back
 * what is queued and hands the record to the curl side), back-pressure
 * accounting (the credit and sent reports: ag_up_credit, ag_up_sent,
 * ag_up_consumed, and when a paused transfer is due for a resume) and the
 * kick that tells the driver work was queued.  The start queue is fed by
 * agent/ag_up_req.c and taken by ag_up_run (agent/ag_upstream.c); the
 * records are described in agent/ag_upstream_int.h.
 */
#include "agent/ag_upstream_int.h"

#include <stdlib.h>
#include <string.h>
#include <sodium.h>

/* ---- records */

unsigned
up_key_hash(uint64_t key)
{
	return (unsigned)((key * UINT64_C(0x9e3779b97f4a7c15)) >>
	    (64 - HASH_BITS));
}

struct up_req *
up_hash_find(struct ag_upstream *u, uint64_t key)
{
	struct up_req *r;

	for (r = u->hash[up_key_hash(key)]; r != NULL; r = r->hnext)
		if (r->key == key)
			return r;
	return NULL;
}

static void
hash_remove(struct ag_upstream *u, struct up_req *r)
{
	struct up_req **pp;

	for (pp = &u->hash[up_key_hash(r->key)]; *pp != NULL; pp = &(*pp)->hnext)
		if (*pp == r) {
			*pp = r->hnext;
			r->hnext = NULL;
			u->inflight--;
			return;
		}
}

void
up_ev_free_node(struct up_ev *n)
{
	if (n == NULL)
		return;
	free(n->ev.data);
	free(n);
}

void
up_req_free(struct up_req *r)
{
	for (struct curl_slist *s = r->hdrs; s != NULL; s = s->next)
		sodium_memzero(s->data, strlen(s->data));
	curl_slist_free_all(r->hdrs);
	up_ev_free_node(r->headev);
	up_ev_free_node(r->endev);
	free(r->url);
	free(r->body);
	if (r->acc != NULL)
		sodium_memzero(r->acc, r->acclen);
	free(r->acc);
	free(r);
}

/* End r (parked, or not started on the curl side) with an error; the
 * curl side's reference goes. */
void
up_refuse(struct ag_upstream *u, struct up_req *r, const char *why)
{
	int fr;

	up_push_end(r, 0, 0, why);
	up_lock(u);
	fr = up_req_unref_locked(r);
	up_unlock(u);
	if (fr)
		up_req_free(r);
}

void
up_pause_clear_locked(struct ag_upstream *u, struct up_req *r)
{
	if (!r->paused)
		return;
	r->paused = 0;
	u->npaused--;
	if (r->paused_total) {
		r->paused_total = 0;
		u->npaused_total--;
	}
}

/*
 * Under mu, on the lws side after queued bytes went down (r: the
 * request credited, or NULL): 1 when the curl side should look for
 * transfers to resume (the caller then calls up_kick() after
 * unlocking).  paused_total marks the paused transfers that only the total
 * holds back (or may), so that a drop of the total caused by another
 * request still wakes them.
 */
static int
resume_due_locked(struct ag_upstream *u, struct up_req *r)
{
	if (r != NULL && r->paused && !r->paused_total &&
	    r->queued < u->req_max / 2) {
		r->paused_total = 1;
		u->npaused_total++;
	}
	if (u->npaused_total == 0 || u->resume_check ||
	    u->total >= u->total_max / 2)
		return 0;
	u->resume_check = 1;
	return 1;
}

/*
 * Curl side: append an event for r, unless r was cancelled (then the
 * node is freed).  DATA bytes count against the bounds from here on.
 */
void
up_ev_push(struct ag_upstream *u, struct up_req *r, struct up_ev *n)
{
	int call_wake = 0;

	n->next = NULL;
	n->r = r;
	up_lock(u);
	if (r->cancelled) {
		up_unlock(u);
		up_ev_free_node(n);
		return;
	}
	if (u->eq_tail != NULL)
		u->eq_tail->next = n;
	else
		u->eq_head = n;
	u->eq_tail = n;
	if (n->ev.type == AG_UP_DATA) {
		r->queued += n->ev.len;
		r->resident += n->ev.len;
		u->total += n->ev.len;
	}
	if (!u->wake_pending) {
		u->wake_pending = 1;
		call_wake = 1;
	}
	up_unlock(u);
	if (call_wake && u->loop.wake != NULL)
		u->loop.wake(u->loop.arg);
}

/* The lws side queued work for the curl side: the driver runs us soon. */
void
up_kick(struct ag_upstream *u)
{
	if (u->loop.kick != NULL)
		u->loop.kick(u->loop.arg);
}

/* ---- lws side */

void
ag_up_cancel(struct ag_upstream *u, uint64_t key)
{
	struct up_req *r, **pp;
	struct up_ev *n, *prev, *next, *dead = NULL;
	int fr, due, queued = 0;

	if (u == NULL)
		return;
	up_lock(u);
	if ((r = up_hash_find(u, key)) == NULL) {
		up_unlock(u);
		return;
	}
	hash_remove(u, r);
	r->cancelled = 1;
	/* Take back what is queued for it. */
	for (prev = NULL, n = u->eq_head; n != NULL; n = next) {
		next = n->next;
		if (n->r != r) {
			prev = n;
			continue;
		}
		if (prev != NULL)
			prev->next = next;
		else
			u->eq_head = next;
		if (u->eq_tail == n)
			u->eq_tail = prev;
		n->next = dead;
		dead = n;
	}
	u->total -= r->resident;
	r->queued = r->resident = 0;
	up_pause_clear_locked(u, r);
	if (r->in_sq) {
		/* The curl side never saw it. */
		for (pp = &u->sq_head; *pp != r; pp = &(*pp)->qnext)
			;
		*pp = r->qnext;
		if (u->sq_tail == r) {
			u->sq_tail = NULL;
			for (struct up_req *q = u->sq_head; q != NULL;
			    q = q->qnext)
				u->sq_tail = q;
		}
		r->qnext = NULL;
		r->in_sq = 0;
		r->refs--;
	} else {
		r->refs++;
		r->qnext = u->cq;
		u->cq = r;
		queued = 1;
	}
	fr = up_req_unref_locked(r);
	due = resume_due_locked(u, NULL);
	up_unlock(u);

	while (dead != NULL) {
		n = dead->next;
		up_ev_free_node(dead);
		dead = n;
	}
	if (fr)
		up_req_free(r);
	if (queued || due)
		up_kick(u);
}

int
ag_up_next_event(struct ag_upstream *u, struct ag_up_event *ev)
{
	struct up_ev *n;
	struct up_req *r;
	int fr = 0, due = 0;

	up_lock(u);
	if ((n = u->eq_head) == NULL) {
		u->wake_pending = 0;
		up_unlock(u);
		return 0;
	}
	if ((u->eq_head = n->next) == NULL)
		u->eq_tail = NULL;
	r = n->r;
	if (n->ev.type == AG_UP_END) {
		/* The request is over for the lws side. */
		hash_remove(u, r);
		u->total -= r->resident;
		r->queued = r->resident = 0;
		fr = up_req_unref_locked(r);
		due = resume_due_locked(u, NULL);
	}
	up_unlock(u);

	*ev = n->ev;
	free(n);
	if (fr)
		up_req_free(r);
	if (due)
		up_kick(u);
	return 1;
}

void
ag_up_event_free(struct ag_up_event *ev)
{
	if (ev == NULL)
		return;
	free(ev->data);
	ev->data = NULL;
	ev->len = 0;
}

/* The lws side's report: n bytes of key credited and/or sent. */
static void
account(struct ag_upstream *u, uint64_t key, size_t credited, size_t sent)
{
	struct up_req *r;
	int due;

	if (u == NULL || (credited == 0 && sent == 0))
		return;
	up_lock(u);
	if ((r = up_hash_find(u, key)) == NULL) {
		up_unlock(u);
		return;
	}
	if (credited > r->queued)
		credited = r->queued;
	r->queued -= credited;
	if (sent > r->resident)
		sent = r->resident;
	r->resident -= sent;
	u->total -= sent;
	due = resume_due_locked(u, credited > 0 ? r : NULL);
	up_unlock(u);
	if (due)
		up_kick(u);
}

void
ag_up_consumed(struct ag_upstream *u, uint64_t key, size_t n)
{
	account(u, key, n, n);
}

void
ag_up_credit(struct ag_upstream *u, uint64_t key, size_t n)
{
	account(u, key, n, 0);
}

void
ag_up_sent(struct ag_upstream *u, uint64_t key, size_t n)
{
	account(u, key, 0, n);
}
