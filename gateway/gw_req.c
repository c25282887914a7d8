/*
 * gateway/gw_req: a request's life in a gateway worker — its id and the
 * index that finds it by id (every message from the tunnel, billing,
 * moderation and Redis names a request), the response queue, and the one
 * writer both transports use: the head as a list of fields, then the
 * pieces, chunk-framed on an HTTP/1.1 stream, close-delimited on 1.0.
 */
#include "gateway/gw.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "lib/log.h"
#include "lib/str.h"

#define GW_INDEX_BUCKETS 4096		/* power of two */
#define GW_HEADROOM (LWS_PRE + 24)	/* before each piece: chunk framing
					   (CHUNK_PREFIX_MAX) */
#define GW_GATHER_MAX	(64u * 1024)	/* bytes joined in one HTTP/1.1 write */

static struct child_env *env_;
static uint64_t next_req;
struct gw_req *gw_live;
static int nlive;
static struct gw_req *index_[GW_INDEX_BUCKETS];

void
gw_set_env(struct child_env *env)
{
	env_ = env;
}

struct child_env *
gw_env(void)
{
	return env_;
}

int
gw_inflight(void)
{
	return nlive;
}

/* This worker's pid, asked once (gateway code runs only in the worker). */
int32_t
gw_pid(void)
{
	static int32_t pid;

	if (pid == 0)
		pid = (int32_t)getpid();
	return pid;
}

uint64_t
gw_new_reqid(void)
{
	return ((uint64_t)(uint32_t)gw_pid() << 32) | ++next_req;
}

static size_t
bucket(uint64_t id)
{
	id ^= id >> 33;
	id *= UINT64_C(0xff51afd7ed558ccd);
	id ^= id >> 33;
	return (size_t)(id & (GW_INDEX_BUCKETS - 1));
}

static void
index_add(struct gw_req *r)
{
	size_t b = bucket(r->reqid);

	r->hnext = index_[b];
	index_[b] = r;
}

static void
index_del(struct gw_req *r)
{
	struct gw_req **pp = &index_[bucket(r->reqid)];

	for (; *pp != NULL; pp = &(*pp)->hnext)
		if (*pp == r) {
			*pp = r->hnext;
			break;
		}
	r->hnext = NULL;
}

struct gw_req *
gw_req_find(uint64_t reqid)
{
	for (struct gw_req *r = index_[bucket(reqid)]; r != NULL; r = r->hnext)
		if (r->reqid == reqid)
			return r;
	return NULL;
}

void
gw_req_rekey(struct gw_req *r, uint64_t reqid)
{
	index_del(r);
	r->reqid = reqid;
	index_add(r);
}

void
gw_req_begin(struct gw_req *r, enum gw_transport tr, struct gw_conn *c,
    struct lws *wsi)
{
	memset(r, 0, sizeof(*r));
	r->tr = tr;
	r->conn = c;
	r->wsi = wsi;
	r->reqid = gw_new_reqid();
	r->started_ms = clock_mono_ms();
	r->prev = NULL;
	r->next = gw_live;
	if (gw_live != NULL)
		gw_live->prev = r;
	gw_live = r;
	nlive++;
	index_add(r);
}

void
gw_req_reset(struct gw_req *r)
{
	if (r->reqid == 0)
		return;
	gw_charge_settle(r);	/* a user who left: what was read */
	gw_metrics_end(r);
	if (r->prev != NULL)
		r->prev->next = r->next;
	else if (gw_live == r)
		gw_live = r->next;
	if (r->next != NULL)
		r->next->prev = r->prev;
	nlive--;
	index_del(r);
	gw_budget_give(r);
	gw_resp_reset(r);
	gw_rt_free(r);
	outq_clear(&r->out);
	free(r->body);
	free(r->fwd);
	memset(r, 0, sizeof(*r));
}

/* ---- the response queue ---------------------------------------------- */

static void
queue(struct gw_req *r, const void *a, size_t alen, const void *b, size_t blen)
{
	if (r->final_queued)
		return;
	if (outq_push(&r->out, GW_HEADROOM, a, alen, b, blen) == NULL)
		return;
	r->flow.pending += alen + blen;
	gw_tr_want_write(r);
}

void
gw_reply_head(struct gw_req *r, unsigned status, const char *ctype)
{
	if (r->head_queued)
		return;
	r->status = (int)status;
	str_copy(r->ctype, sizeof(r->ctype), ctype);
	r->head_queued = 1;
	r->head_ms = clock_mono_ms();
	gw_tr_want_write(r);
}

void
gw_reply_data(struct gw_req *r, const void *p, size_t len)
{
	if (len > 0)
		queue(r, p, len, NULL, 0);
}

void
gw_reply_data2(struct gw_req *r, const void *a, size_t alen, const void *b,
    size_t blen)
{
	if (alen + blen > 0)
		queue(r, a, alen, b, blen);
}

void
gw_reply_end(struct gw_req *r)
{
	r->final_queued = 1;
	r->stage = GW_ST_DONE;
	r->waiting = 0;
	gw_tr_want_write(r);
}

void
gw_reply_json(struct gw_req *r, unsigned status, const char *json)
{
	gw_reply_head(r, status, "application/json");
	if (json != NULL)
		gw_reply_data(r, json, strlen(json));
	gw_reply_end(r);
}

/* ---- the writer --------------------------------------------------------- */

static void
head_add(struct gw_head *h, const char *name, const char *v)
{
	if (h->n >= (int)(sizeof(h->h) / sizeof(h->h[0])))
		return;
	h->h[h->n].name = name;
	(void)str_copy(h->h[h->n].value, sizeof(h->h[h->n].value), v);
	h->n++;
}

/* The head as fields; *whole: the answer is one piece (content-length). */
static void
make_head(struct gw_req *r, struct gw_head *h, int *whole)
{
	char num[32];

	*whole = r->final_queued && (r->out.head == NULL ||
	    r->out.head->next == NULL);
	if (r->rt != NULL && gw_rt_head(r, h) == 0) {
		*whole = 0;		/* a Realtime 101: frames follow raw */
		r->chunked = 0;
		return;
	}
	memset(h, 0, sizeof(*h));
	h->status = (unsigned)r->status;
	head_add(h, "content-type", r->ctype);
	r->chunked = 0;
	if (*whole) {
		num[str_dec(num, r->out.head ? r->out.head->len : 0)] = '\0';
		head_add(h, "content-length", num);
	} else {
		head_add(h, "x-accel-buffering", "no");
		if (r->http10)
			r->close_after = 1;	/* the close ends the body */
		else if (r->tr == GW_TR_H1 ||
		    lws_get_network_wsi(r->wsi) == r->wsi) {
			head_add(h, "transfer-encoding", "chunked");
			r->chunked = 1;
		}
	}
	head_add(h, "cache-control", "no-cache");
	if (r->reqid != 0) {	/* the ledger's id of this request */
		char key[40];
		gw_charge_key(r, key, sizeof(key));
		head_add(h, "x-request-id", key);
	}
	if (r->errtype[0] != '\0')	/* a Bedrock surface's error */
		head_add(h, "x-amzn-errortype", r->errtype);
	if (r->lim.retry_after > 0) {	/* a 429 of the rate limiter */
		num[str_dec(num, (uint64_t)r->lim.retry_after)] = '\0';
		head_add(h, "retry-after", num);
	}
}

/* Chunked framing: the terminator, and the size line written in front of
 * a piece of len bytes (with the CRLF that ends the piece before it);
 * its length, at most CHUNK_PREFIX_MAX. */
#define CHUNK_PREFIX_MAX	24
static const char chunk_term[] = "\r\n0\r\n\r\n";

static int
chunk_prefix(const struct gw_req *r, size_t len, char *sz)
{
	int n = 0;

	if (r->pieces_sent) {
		sz[n++] = '\r';
		sz[n++] = '\n';
	}
	n += (int)str_hex(sz + n, len);
	sz[n++] = '\r';
	sz[n++] = '\n';
	sz[n] = '\0';
	return n;
}

/*
 * HTTP/1.1 with several pieces queued (a burst of stream events, or an
 * answer that came in pieces): as many as fit in one buffer, each with its
 * chunk framing, and the terminator when the answer ended with them, in
 * one write.  Nothing waits for more: only what is already queued is
 * joined, so stream events keep their timing.
 */
static int
h1_gather(struct gw_req *r)
{
	/* lws keeps what a partial write left: one buffer serves all. */
	static unsigned char buf[LWS_PRE + GW_GATHER_MAX + 32];
	unsigned char *p = buf + LWS_PRE, *end = p + GW_GATHER_MAX;
	size_t credit = 0;
	int last;

	while (r->out.head != NULL) {
		struct outq_item *o = r->out.head;
		char sz[CHUNK_PREFIX_MAX];
		int k = r->chunked ? chunk_prefix(r, o->len, sz) : 0;

		if ((size_t)(end - p) < (size_t)k + o->len)
			break;
		memcpy(p, sz, (size_t)k);
		memcpy(p + k, o->data, o->len);
		p += (size_t)k + o->len;
		r->pieces_sent++;
		credit += o->len;
		outq_pop(&r->out);
	}
	last = r->final_queued && r->out.head == NULL;
	if (last && r->chunked) {
		memcpy(p, chunk_term, sizeof(chunk_term) - 1);
		p += sizeof(chunk_term) - 1;
	}
	if (gw_tr_write(r, buf + LWS_PRE, (size_t)(p - (buf + LWS_PRE)),
	    last) != 0)
		return -1;
	gw_relay_credit(r, credit);
	if (last)
		return gw_tr_done(r);
	if (r->out.head != NULL || r->final_queued)
		gw_tr_want_write(r);
	return 0;
}

/* o's bytes with their chunk framing (when chunked) written into the
 * headroom in front of them; their length in *n. */
static unsigned char *
framed(const struct gw_req *r, struct outq_item *o, size_t *n)
{
	unsigned char *p = o->data;

	*n = o->len;
	if (r->chunked) {
		char sz[CHUNK_PREFIX_MAX];
		int k = chunk_prefix(r, o->len, sz);

		p -= k;
		memcpy(p, sz, (size_t)k);
		*n += (size_t)k;
	}
	return p;
}

/* The first queued piece went out: counted (the next one's framing
 * depends on it), dropped, its bytes given back to the window. */
static void
piece_sent(struct gw_req *r)
{
	size_t n = r->out.head->len;

	r->pieces_sent++;
	outq_pop(&r->out);
	gw_relay_credit(r, n);
}

/*
 * Write what r has queued, one unit per writable callback (a partial
 * write is finished by the transport before the next callback): the head
 * (with the body when the answer is one piece, with the first piece of an
 * HTTP/1.1 stream when one is queued), then each piece with its
 * chunk framing in the headroom in front of it, then the terminator.
 */
int
gw_req_writable(struct gw_req *r)
{
	struct outq_item *o;
	int whole, last;

	if (!r->head_queued)
		return 0;
	if (!r->head_sent) {
		struct gw_head h;
		make_head(r, &h, &whole);
		r->head_sent = 1;
		if (whole && r->tr == GW_TR_H1) {
			/* Head and body in one write. */
			o = r->out.head;
			if (gw_h1_write_head(r, &h, o ? o->data : NULL,
			    o ? o->len : 0) != 0)
				return -1;
			if (o != NULL) {
				size_t n = o->len;
				outq_pop(&r->out);
				gw_relay_credit(r, n);
			}
			return gw_tr_done(r);
		}
		o = r->out.head;
		if (r->tr == GW_TR_H1 && r->chunked && o != NULL) {
			/* A stream's head and the piece that came with it in
			 * one write. */
			size_t n;
			unsigned char *p = framed(r, o, &n);

			if (gw_h1_write_head(r, &h, p, n) != 0)
				return -1;
			piece_sent(r);
		} else if (gw_tr_write_head(r, &h) != 0)
			return -1;
		if (r->out.head != NULL || r->final_queued)
			gw_tr_want_write(r);
		return 0;
	}
	o = r->out.head;
	if (o != NULL && o->next != NULL && r->tr == GW_TR_H1 &&
	    o->len + o->next->len + 64 <= GW_GATHER_MAX)
		return h1_gather(r);	/* at least two pieces fit */
	if (o != NULL) {
		size_t n;
		unsigned char *p = framed(r, o, &n);

		last = r->final_queued && o->next == NULL && !r->chunked;
		if (gw_tr_write(r, p, n, last) != 0)
			return -1;
		piece_sent(r);
		if (last)
			return gw_tr_done(r);
		if (r->out.head != NULL || r->final_queued)
			gw_tr_want_write(r);
		return 0;
	}
	if (!r->final_queued)
		return 0;
	if (r->chunked) {
		unsigned char t[GW_HEADROOM + sizeof(chunk_term)];
		size_t off = r->pieces_sent ? 0 : 2;
		memcpy(t + GW_HEADROOM, chunk_term + off,
		    sizeof(chunk_term) - 1 - off);
		if (gw_tr_write(r, t + GW_HEADROOM,
		    sizeof(chunk_term) - 1 - off, 1) != 0)
			return -1;
	} else if (gw_tr_write(r, NULL, 0, 1) != 0)
		return -1;
	return gw_tr_done(r);
}

/* ---- transport dispatch ------------------------------------------------ */

int
gw_hdr(struct gw_req *r, const char *lname, char *out, size_t outlen)
{
	return r->tr == GW_TR_H1 ? gw_h1_hdr(r, lname, out, outlen) :
	    gw_lws_hdr(r, lname, out, outlen);
}

int
gw_query(struct gw_req *r, const char *name, char *out, size_t outlen)
{
	return r->tr == GW_TR_H1 ? gw_h1_query(r, name, out, outlen) :
	    gw_lws_query(r, name, out, outlen);
}

void
gw_body_want(struct gw_req *r)
{
	if (r->tr == GW_TR_H1)
		gw_h1_body_want(r);
	/* lws reads bodies as they come (within max_body and the budget). */
}

int
gw_tr_write_head(struct gw_req *r, const struct gw_head *h)
{
	if (r->tr == GW_TR_LWS)
		return gw_lws_write_head(r, h);
	return gw_h1_write_head(r, h, NULL, 0);
}

int
gw_tr_write(struct gw_req *r, const void *p, size_t len, int final)
{
	if (r->tr == GW_TR_LWS)
		return gw_lws_write(r, p, len, final);
	return len > 0 ? gw_h1_write(r, p, len) : 0;
}

void
gw_tr_want_write(struct gw_req *r)
{
	if (r->wsi == NULL)
		return;
	if (r->tr == GW_TR_H1)
		gw_h1_want_write(r);	/* at the turn's end, no POLLOUT */
	else
		lws_callback_on_writable(r->wsi);
}

int
gw_tr_done(struct gw_req *r)
{
	return r->tr == GW_TR_H1 ? gw_h1_done(r) : gw_lws_done(r);
}

/* ---- the body budget --------------------------------------------------- */

static int64_t budget_used;

int
gw_budget_take(struct gw_req *r, int64_t bytes)
{
	int64_t cap = env_->conf.gw_body_budget;

	if (bytes <= 0)
		return 0;
	if (budget_used + bytes > cap)
		return -1;
	budget_used += bytes;
	r->body_budget += bytes;
	return 0;
}

void
gw_budget_give(struct gw_req *r)
{
	budget_used -= r->body_budget;
	r->body_budget = 0;
}

void
gw_req_tick(void)
{
	gw_h1_tick();
}
