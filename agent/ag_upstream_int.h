/*
 * agent/ag_upstream_int: what the upstream engine's files share — for
 * agent/ag_upstream.c and agent/ag_up_*.c only; the engine's callers use
 * agent/ag_upstream.h, the adapters agent/ag_prov.h.  Owns nothing but
 * declarations: the request record, the token cache, the queued event and
 * the engine itself (each field says which file writes it), the three
 * lock helpers, and the prototypes of the functions that cross files
 * (each is described where it is defined).  The files:
 *   ag_upstream.c  the multi/loop core: curl's multi handle, sockets and
 *                  timer, the run, a transfer's start and end, the easy
 *                  handle pool and active list, making and freeing the
 *                  engine ([test] ca_file and connect_to)
 *   ag_up_req.c    building one request: the adapter table and its
 *                  helpers (agent/ag_prov.h), the engine's own checks,
 *                  ag_up_start/ag_up_start_op, one easy handle's options
 *   ag_up_resp.c   reading a response: the header and write callbacks
 *                  that make HEAD, DATA and END events, pausing and
 *                  resuming on back-pressure, a stream's memory trims
 *   ag_up_tok.c    the channels' access-token caches (ag_token) and the
 *                  exchange transfers that fill them
 *   ag_up_queue.c  the records' key hash and freeing, the event queue
 *                  (up_ev_push: its curl side end), the lws side's calls
 *                  but the starts: events, cancels, back-pressure
 *                  accounting
 *
 * "curl side": whatever thread calls ag_up_run(); "lws side": the
 * callers of the rest (agent/ag_upstream.h).
 */
#ifndef SWB_AG_UPSTREAM_INT_H
#define SWB_AG_UPSTREAM_INT_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <curl/curl.h>
#include "agent/ag_conf.h"
#include "agent/ag_token.h"
#include "agent/ag_upstream.h"

#if !defined(SWB_TEST_BUILD) || (SWB_TEST_BUILD != 0 && SWB_TEST_BUILD != 1)
#error "SWB_TEST_BUILD must be 0 or 1 (the Makefile sets it from TEST_BUILD)"
#endif
#if LIBCURL_VERSION_NUM < 0x075500
#error "libcurl 7.85 or later is needed (CURLOPT_PROTOCOLS_STR)"
#endif

#define HASH_BITS	10
#define HASH_SIZE	(1u << HASH_BITS)
#define EASY_POOL	64	/* finished easy handles kept for reuse */
#define UL_BUFSIZE	16384L	/* curl's upload buffer (its minimum) */

/* A channel's token cache and the requests waiting for its token (curl
 * thread only).  Made by tok_find and written by agent/ag_up_tok.c alone;
 * zeroed and freed by ag_up_free (ag_upstream.c). */
struct up_tok {
	struct up_tok *next;
	struct ag_tok t;
	struct up_req *waiters;
	int nwait;
};

/* One queued event.  Written by the curl side until pushed, then owned
 * by the event queue (under mu), then by ag_up_next_event().  The HEAD
 * and END nodes are allocated by up_start (ag_up_req.c), filled by
 * up_push_head/up_push_end, DATA nodes by up_on_write (ag_up_resp.c);
 * up_ev_push (ag_up_queue.c) sets next and r. */
struct up_ev {
	struct up_ev *next;
	struct up_req *r;
	struct ag_up_event ev;
};

/*
 * Life of a request record (struct up_req), reference-counted under u->mu:
 *   ag_up_start()   creates it with two references: the lws side's (it is
 *                   in the key hash) and the curl side's (it is in the
 *                   start queue, later on the curl side's active list).
 *   END taken by ag_up_next_event(), or ag_up_cancel(): the lws side
 *                   drops its reference and the record leaves the hash.
 *   The curl side drops its reference once the easy handle is gone
 *                   (transfer done, failed to start, or cancelled).
 *   A cancel holds a third reference while the record is on the cancel
 *   list, so the curl side can still look at it there.
 * A token exchange's own record (tok_exchange, ag_up_tok.c) has the curl
 * side's reference only and is never in the hash.
 */
struct up_req {
	/* Set by ag_up_start() (up_start, ag_up_req.c; for an exchange,
	 * tok_exchange in ag_up_tok.c) before the record is published;
	 * read-only afterwards (freed by whoever drops the last reference)
	 * but for hdrs, to which up_tok_ready (ag_up_tok.c, curl side) adds
	 * the access token before the transfer starts. */
	struct ag_upstream *u;
	uint64_t key;
	char *url;			/* host-checked, curl-normalised */
	struct curl_slist *hdrs;	/* holds the credential: zeroed on free */
	unsigned char *body;
	size_t len;
	int post;
	int h1;				/* HTTP/1.1 (see up_easy_setup) */
	int stream;			/* the adapter says: a stream */
	const char *prov;		/* adapter name, for logs */

	/* Set by ag_up_start() for an adapter with oauth_token: the
	 * channel's token cache is found by name and key file. */
	int want_token;
	char tok_channel[AG_CHAN_NAME_MAX];
	char tok_path[AG_SECRET_MAX];

	/* Curl side only.  Who writes:
	 *   easy           up_easy_setup (ag_up_req.c) sets it, up_detach
	 *                  (ag_upstream.c) clears it
	 *   tokx, acc, acclen, parked, wnext
	 *                  ag_up_tok.c
	 *   anext, aprev, retried
	 *                  ag_upstream.c
	 *   headev, endev  made by up_start (ag_up_req.c), taken by
	 *                  up_push_head and up_push_end (ag_up_resp.c)
	 *   head_sent, oom, resume, trim, tnext
	 *                  ag_up_resp.c (up_detach empties trim too)
	 *   rx_ms          up_active_add, and up_on_header/up_on_write
	 *                  (ag_up_resp.c); up_seen and rx_ms again: the idle
	 *                  sweep (ag_upstream.c)
	 *   cpaused        up_on_write sets it; up_resume_scan, up_detach
	 *                  and finish_one clear it
	 *   dropping       up_detach (up_on_write reads it)
	 *   flushing       finish_one (up_on_write reads it)
	 *   errbuf         curl (CURLOPT_ERRORBUFFER); up_start_one and
	 *                  retry_fresh empty it */
	CURL *easy;
	struct up_tok *tokx;		/* an exchange for this cache (no
					   events: the answer is kept in acc) */
	char *acc;
	size_t acclen;
	struct up_tok *parked;		/* waiting for this cache's token */
	struct up_req *wnext;		/* its waiters */
	struct up_req *anext, *aprev;	/* the active list */
	struct up_ev *headev, *endev;	/* preallocated; NULL once pushed */
	int head_sent;
	int cpaused;			/* up_on_write returned PAUSE, no
					   CONT yet */
	int dropping;			/* being detached: swallow any data */
	int resume;			/* un-pause after the scan */
	int oom;			/* a DATA copy failed */
	int retried;			/* sent again on a fresh connection */
	int flushing;			/* finished while paused: what curl
					   holds is taken past the bounds */
	int trim;			/* TRIM_* due after this run */
	int64_t rx_ms;			/* the last run that received a byte
					   of it, or began it (mono ms) */
	curl_off_t up_seen;		/* bytes sent when last swept */
	struct up_req *tnext;		/* on u->trims while trim != 0 */
	char errbuf[CURL_ERROR_SIZE];

	/* Under u->mu.  Who writes:
	 *   refs           its maker (up_start; tok_exchange), ag_up_cancel,
	 *                  and up_req_unref_locked's callers
	 *   hnext          up_start links it, hash_remove (ag_up_queue.c)
	 *                  unlinks it, ag_up_free empties the hash
	 *   qnext, in_sq   up_start (start queue), ag_up_cancel (cancel list,
	 *                  or off the start queue); ag_up_run and run_cancels
	 *                  (ag_upstream.c) clear them
	 *   cancelled      ag_up_cancel, ag_up_free
	 *   paused, paused_total
	 *                  up_on_write sets them; up_resume_scan
	 *                  (ag_up_resp.c), up_pause_clear_locked and
	 *                  resume_due_locked (ag_up_queue.c) change them
	 *   queued, resident
	 *                  up_ev_push adds; ag_up_cancel, ag_up_next_event
	 *                  and the credit calls (ag_up_queue.c) subtract */
	int refs;
	struct up_req *hnext;		/* key hash chain (lws side) */
	struct up_req *qnext;		/* start queue or cancel list */
	int in_sq;			/* on the start queue */
	int cancelled;			/* lws side: no events any more */
	int paused;			/* curl side: write returned PAUSE */
	int paused_total;		/* paused, and the total holds it */
	size_t queued;			/* DATA bytes out, not yet credited */
	size_t resident;		/* DATA bytes out, not yet sent */
};

struct ag_upstream {
	/* Set by ag_up_new() (ag_upstream.c); read-only afterwards (but
	 * req_max and total_max: also ag_up_test_limits, under mu). */
	struct ag_up_loop loop;		/* the driver's callbacks */
	CURLM *multi;			/* curl side */
	int epfd;			/* curl's sockets; the driver polls it */
	int mux;			/* multiplex(), asked once */
	int ca_bundle;			/* curlca_bundle_only(), asked once */
	CURLSH *share;			/* TLS sessions, across transfers */
	size_t req_max, total_max;	/* AG_UP_*_QUEUE_MAX (tests: less);
					   read under mu */
#if SWB_TEST_BUILD
	char ca_file[AG_PATH_MAX];
	struct curl_slist *connect_to;
#endif

	/* Curl side only.  Who writes:
	 *   active, nactive, timer_at, timer_moved, fdst, nfdst, nsock,
	 *   run_ms, idle_next_ms, idle_ms
	 *                  ag_upstream.c
	 *   toks           tok_find (ag_up_tok.c) adds, ag_up_free empties
	 *   trims          trim_mark and up_trim_run (ag_up_resp.c);
	 *                  up_detach unlinks a transfer
	 *   pool, npool    up_easy_setup (ag_up_req.c) takes a handle,
	 *                  up_detach puts one back, ag_up_free frees them */
	struct up_req *active;
	size_t nactive;			/* transfers on it (conns_limit) */
	struct up_tok *toks;		/* token caches (ag_token) */
	struct up_req *trims;		/* transfers with trim != 0 */
	int64_t timer_at;		/* curl's timeout (mono ms), -1 none */
	int timer_moved;		/* timer_at changed in this run: the
					   driver is told once, at its end */
	int64_t run_ms;			/* this run's start (mono ms) */
	int64_t idle_next_ms;		/* the next idle sweep (mono ms) */
	int64_t idle_ms;		/* AG_UP_IDLE_TIMEOUT_S (tests: less) */
	CURL *pool[EASY_POOL];		/* reset handles, for the next ones */
	int npool;
	unsigned char *fdst;		/* SK_* per descriptor number, for
					   the sockets up_on_open made */
	size_t nfdst;
	size_t nsock;			/* open sockets up_on_open made */

	/* Under mu.  Who writes:
	 *   stop           ag_up_free
	 *   sq_head, sq_tail
	 *                  up_start (ag_up_req.c) appends, ag_up_run takes,
	 *                  ag_up_cancel unlinks
	 *   cq             ag_up_cancel pushes; ag_up_run and ag_up_free take
	 *   eq_head, eq_tail
	 *                  up_ev_push (curl side) appends; ag_up_next_event
	 *                  and ag_up_cancel take; ag_up_free drops the rest
	 *   wake_pending   up_ev_push sets it, ag_up_next_event clears it
	 *   resume_check   resume_due_locked (ag_up_queue.c) sets it,
	 *                  up_resume_scan (ag_up_resp.c) clears it
	 *   hash, inflight up_start adds, hash_remove (ag_up_queue.c)
	 *                  removes, ag_up_free empties
	 *   total          up_ev_push adds; ag_up_cancel, ag_up_next_event
	 *                  and the credit calls subtract
	 *   npaused, npaused_total
	 *                  as up_req's paused and paused_total */
	pthread_mutex_t mu;
	int stop;			/* ag_up_free() began: no starts, no
					   driver callbacks */
	struct up_req *sq_head, *sq_tail;	/* start queue (FIFO) */
	struct up_req *cq;			/* cancel list */
	struct up_ev *eq_head, *eq_tail;	/* event queue (FIFO) */
	int wake_pending;			/* wake() called, queue not
						   yet seen empty */
	int resume_check;			/* curl side: scan paused */
	struct up_req *hash[HASH_SIZE];		/* lws side, by key */
	int inflight;				/* records in the hash */
	size_t total;				/* sum of resident */
	int npaused, npaused_total;
};

/* Drop one reference (under mu); 1 when the caller must up_req_free(r)
 * after unlocking. */
static inline int
up_req_unref_locked(struct up_req *r)
{
	return --r->refs == 0;
}

static inline void
up_lock(struct ag_upstream *u)
{
	pthread_mutex_lock(&u->mu);
}

static inline void
up_unlock(struct ag_upstream *u)
{
	pthread_mutex_unlock(&u->mu);
}

/* ---- agent/ag_upstream.c: the multi/loop core (curl side) */

void up_active_add(struct ag_upstream *u, struct up_req *r);
void up_detach(struct ag_upstream *u, struct up_req *r, int abort);
void up_start_one(struct ag_upstream *u, struct up_req *r);
curl_socket_t up_on_open(void *userp, curlsocktype purpose,
    struct curl_sockaddr *a);
int up_on_close(void *userp, curl_socket_t s);

/* ---- agent/ag_up_req.c: one transfer's curl options (curl side) */

int up_easy_setup(struct ag_upstream *u, struct up_req *r, char *err,
    size_t errlen);

/* ---- agent/ag_up_resp.c: the response (curl side) */

void up_push_head(struct up_req *r);
void up_push_end(struct up_req *r, long status, int ok, const char *error);
size_t up_on_header(char *p, size_t size, size_t nmemb, void *arg);
size_t up_on_write(char *p, size_t size, size_t nmemb, void *arg);
void up_resume_scan(struct ag_upstream *u);
void up_trim_run(struct ag_upstream *u);

/* ---- agent/ag_up_tok.c: token caches (curl side) */

size_t up_tok_write(struct up_req *r, const char *p, size_t n);
void up_tok_unpark(struct up_req *r);
void up_tok_done(struct ag_upstream *u, struct up_req *r, CURLcode res);
int up_tok_ready(struct ag_upstream *u, struct up_req *r);
void up_tok_tick(struct ag_upstream *u);

/* ---- agent/ag_up_queue.c: records and the queues between the sides */

unsigned up_key_hash(uint64_t key);
struct up_req *up_hash_find(struct ag_upstream *u, uint64_t key);
void up_ev_free_node(struct up_ev *n);
void up_req_free(struct up_req *r);
void up_refuse(struct ag_upstream *u, struct up_req *r, const char *why);
void up_pause_clear_locked(struct ag_upstream *u, struct up_req *r);
void up_ev_push(struct ag_upstream *u, struct up_req *r, struct up_ev *n);
void up_kick(struct ag_upstream *u);

#endif
