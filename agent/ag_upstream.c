/*
 * agent/ag_upstream: agentd's upstream engine.  Owns the curl multi handle
 * (driven by socket_action over an epoll set its driver watches), the
 * request record of every call in flight, the two queues between the
 * tunnel side and the curl side (requests and cancels in, events out),
 * back-pressure, the engine-side checks every request passes before any
 * byte leaves (method, path allow-list, official host, headers), and the
 * provider adapter table of agent/ag_prov.h with its pattern helpers.  No
 * libwebsockets call is made here.  The "curl side" is whatever thread
 * calls ag_up_run() (agentd: the lws side itself; the unit test: a
 * driver thread of its own); the "lws side" calls the rest.
 *
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
 */
#include "agent/ag_upstream.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <curl/curl.h>
#include <openssl/ssl.h>
#include <sodium.h>
#include "agent/ag_prov.h"
#include "agent/ag_token.h"
#include "lib/clock.h"
#include "lib/curlca.h"
#include "lib/log.h"
#include "lib/usage.h"

#if !defined(SWB_TEST_BUILD) || (SWB_TEST_BUILD != 0 && SWB_TEST_BUILD != 1)
#error "SWB_TEST_BUILD must be 0 or 1 (the Makefile sets it from TEST_BUILD)"
#endif
#if LIBCURL_VERSION_NUM < 0x075500
#error "libcurl 7.85 or later is needed (CURLOPT_PROTOCOLS_STR)"
#endif

#define HASH_BITS	10
#define HASH_SIZE	(1u << HASH_BITS)
#define PATH_MAX_LEN	2048
#define URL_MAX_LEN	4096
#define EV_BATCH	64	/* epoll events taken per ag_up_run() */
#define TIMER_ROUNDS	4	/* curl timeouts run per ag_up_run() */
#define EASY_POOL	64	/* finished easy handles kept for reuse */
#define UL_BUFSIZE	16384L	/* curl's upload buffer (its minimum) */
#define TRIM_UPLOAD	0x1	/* up_req.trim: see trim_run() */
#define TRIM_TLS	0x2

/* ------------------------------------------------------------ adapters */

static const struct ag_prov *const prov_table[] = {
	&ag_prov_openai,
	&ag_prov_anthropic,
	&ag_prov_azure,
	&ag_prov_deepseek,
	&ag_prov_qwen,
	&ag_prov_gemini,
	&ag_prov_vertex,
	&ag_prov_bedrock,
};

const struct ag_prov *
ag_prov_find(int provider)
{
	for (size_t i = 0; i < sizeof(prov_table) / sizeof(prov_table[0]); i++)
		if (prov_table[i]->provider == provider)
			return prov_table[i];
	return NULL;
}

static int
host_char(int c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9') || c == '-';
}

static int
seg_char(int c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9') || strchr("-._~:@%", c) != NULL;
}

static int
lower(int c)
{
	return c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c;
}

/* ASCII case-insensitive: does s start with prefix? */
static int
iprefix(const char *s, const char *prefix)
{
	for (; *prefix != '\0'; s++, prefix++)
		if (lower((unsigned char)*s) != lower((unsigned char)*prefix))
			return 0;
	return 1;
}

/* Whole-string match of pat against s[0..n) where '*' takes one or more
 * characters accepted by okc. */
static int
glob(const char *pat, const char *s, size_t n, int (*okc)(int), int icase)
{
	while (*pat != '\0') {
		if (*pat == '*') {
			pat++;
			for (size_t i = 0; i < n && okc((unsigned char)s[i]); i++) {
				/* A path '*' never stands for "." or "..". */
				if (!icase && ((i == 0 && s[0] == '.') ||
				    (i == 1 && s[0] == '.' && s[1] == '.')))
					continue;
				if (glob(pat, s + i + 1, n - i - 1, okc, icase))
					return 1;
			}
			return 0;
		}
		if (n == 0)
			return 0;
		if (icase ? lower((unsigned char)*pat) != lower((unsigned char)*s) :
		    *pat != *s)
			return 0;
		pat++, s++, n--;
	}
	return n == 0;
}

int
ag_prov_host_match(const char *pattern, const char *host)
{
	return glob(pattern, host, strlen(host), host_char, 1);
}

int
ag_prov_path_match(const char *pattern, const char *path, size_t len)
{
	return glob(pattern, path, len, seg_char, 0);
}

int
ag_prov_header(struct curl_slist **h, const char *name, const char *prefix,
    const char *value, char *err, size_t errlen)
{
	char line[AG_SECRET_MAX + 128];
	struct curl_slist *n;
	int len;

	if (value[0] == '\0') {
		snprintf(err, errlen, "%s: empty credential", name);
		return -1;
	}
	for (const char *p = value; *p != '\0'; p++)
		if ((unsigned char)*p < 0x21 || (unsigned char)*p > 0x7e) {
			snprintf(err, errlen, "%s: credential has a byte that "
			    "cannot go in a header", name);
			return -1;
		}
	len = snprintf(line, sizeof(line), "%s: %s%s", name, prefix, value);
	if (len < 0 || (size_t)len >= sizeof(line)) {
		sodium_memzero(line, sizeof(line));
		snprintf(err, errlen, "%s: credential too long", name);
		return -1;
	}
	n = curl_slist_append(*h, line);
	sodium_memzero(line, sizeof(line));
	if (n == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	*h = n;
	return 0;
}

int
ag_prov_op_table(const char *prov, const char *const *paths, char *method,
    size_t mlen, char *path, size_t plen, const struct ag_prov_op *rq,
    char *err, size_t errlen)
{
	const struct prov_op_info *oi = prov_op(rq->op);

	if (oi == NULL || paths[rq->op] == NULL) {
		snprintf(err, errlen, "%s: operation %s not supported", prov,
		    oi != NULL ? oi->name : "?");
		return -1;
	}
	snprintf(method, mlen, "%s", oi->method);
	snprintf(path, plen, "%s", paths[rq->op]);
	return 0;
}

int
ag_prov_host_url(char *buf, size_t buflen, const struct ag_channel *ch,
    const char *path, char *err, size_t errlen)
{
	int n;

	if (ch->host[0] == '\0') {
		snprintf(err, errlen, "channel %s has no host", ch->name);
		return -1;
	}
	n = snprintf(buf, buflen, "https://%s%s", ch->host, path);
	if (n < 0 || (size_t)n >= buflen) {
		snprintf(err, errlen, "URL too long");
		return -1;
	}
	return 0;
}

/* ------------------------------------------------------------ engine */

struct ag_upstream;

/* A channel's token cache and the requests waiting for its token (curl
 * thread only). */
struct up_tok {
	struct up_tok *next;
	struct ag_tok t;
	struct up_req *waiters;
	int nwait;
};
#define TOK_WAITERS_MAX		1024
#define TOK_EXCHANGE_MS		10000	/* the exchange's whole budget */
#define TOK_ANSWER_MAX		(64 * 1024)

/* One queued event.  Written by the curl side until pushed, then owned
 * by the event queue (under mu), then by ag_up_next_event(). */
struct up_ev {
	struct up_ev *next;
	struct up_req *r;
	struct ag_up_event ev;
};

struct up_req {
	/* Set by ag_up_start() before the record is published; read-only
	 * afterwards (freed by whoever drops the last reference). */
	struct ag_upstream *u;
	uint64_t key;
	char *url;			/* host-checked, curl-normalised */
	struct curl_slist *hdrs;	/* holds the credential: zeroed on free */
	unsigned char *body;
	size_t len;
	int post;
	int h1;				/* HTTP/1.1 (see easy_setup) */
	int stream;			/* the adapter says: a stream */
	const char *prov;		/* adapter name, for logs */

	/* Set by ag_up_start() for an adapter with oauth_token: the
	 * channel's token cache is found by name and key file. */
	int want_token;
	char tok_channel[AG_CHAN_NAME_MAX];
	char tok_path[AG_SECRET_MAX];

	/* Curl side only. */
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
	int cpaused;			/* on_write returned PAUSE, no CONT yet */
	int dropping;			/* being detached: swallow any data */
	int resume;			/* un-pause after the scan */
	int oom;			/* a DATA copy failed */
	int retried;			/* sent again on a fresh connection */
	int flushing;			/* finished while paused: what curl
					   holds is taken past the bounds */
	int trim;			/* TRIM_* due after this run */
	struct up_req *tnext;		/* on u->trims while trim != 0 */
	char errbuf[CURL_ERROR_SIZE];

	/* Under u->mu. */
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
	/* Set by ag_up_new(); read-only afterwards. */
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

	/* Curl side only. */
	struct up_req *active;
	size_t nactive;			/* transfers on it (conns_limit) */
	struct up_tok *toks;		/* token caches (ag_token) */
	struct up_req *trims;		/* transfers with trim != 0 */
	int64_t timer_at;		/* curl's timeout (mono ms), -1 none */
	int timer_moved;		/* timer_at changed in this run: the
					   driver is told once, at its end */
	CURL *pool[EASY_POOL];		/* reset handles, for the next ones */
	int npool;
	unsigned char *fdst;		/* SK_* per descriptor number, for
					   the sockets on_open made */
	size_t nfdst;
	size_t nsock;			/* open sockets on_open made */

	/* Under mu. */
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

static unsigned
key_hash(uint64_t key)
{
	return (unsigned)((key * UINT64_C(0x9e3779b97f4a7c15)) >>
	    (64 - HASH_BITS));
}

static struct up_req *
hash_find(struct ag_upstream *u, uint64_t key)
{
	struct up_req *r;

	for (r = u->hash[key_hash(key)]; r != NULL; r = r->hnext)
		if (r->key == key)
			return r;
	return NULL;
}

static void
hash_remove(struct ag_upstream *u, struct up_req *r)
{
	struct up_req **pp;

	for (pp = &u->hash[key_hash(r->key)]; *pp != NULL; pp = &(*pp)->hnext)
		if (*pp == r) {
			*pp = r->hnext;
			r->hnext = NULL;
			u->inflight--;
			return;
		}
}

static void
ev_free_node(struct up_ev *n)
{
	if (n == NULL)
		return;
	free(n->ev.data);
	free(n);
}

static void
req_free(struct up_req *r)
{
	for (struct curl_slist *s = r->hdrs; s != NULL; s = s->next)
		sodium_memzero(s->data, strlen(s->data));
	curl_slist_free_all(r->hdrs);
	ev_free_node(r->headev);
	ev_free_node(r->endev);
	free(r->url);
	free(r->body);
	if (r->acc != NULL)
		sodium_memzero(r->acc, r->acclen);
	free(r->acc);
	free(r);
}

/* Drop one reference (under mu); 1 when the caller must req_free(r)
 * after unlocking. */
static int
req_unref_locked(struct up_req *r)
{
	return --r->refs == 0;
}

static void
lock(struct ag_upstream *u)
{
	pthread_mutex_lock(&u->mu);
}

static void
unlock(struct ag_upstream *u)
{
	pthread_mutex_unlock(&u->mu);
}

static void
pause_clear_locked(struct ag_upstream *u, struct up_req *r)
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
 * transfers to resume (the caller then calls kick() after
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
static void
ev_push(struct ag_upstream *u, struct up_req *r, struct up_ev *n)
{
	int call_wake = 0;

	n->next = NULL;
	n->r = r;
	lock(u);
	if (r->cancelled) {
		unlock(u);
		ev_free_node(n);
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
	unlock(u);
	if (call_wake && u->loop.wake != NULL)
		u->loop.wake(u->loop.arg);
}

/* ---- curl side */

static size_t tok_write(struct up_req *r, const char *p, size_t n);
static void trim_mark(struct up_req *r, int what);
static void tok_unpark(struct up_req *r);

static void
push_head(struct up_req *r)
{
	struct up_ev *n = r->headev;
	long code = 0;
	char *ct = NULL;

	if (r->head_sent || n == NULL)
		return;
	r->head_sent = 1;
	r->headev = NULL;
	if (r->stream)
		trim_mark(r, TRIM_UPLOAD);
	curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &code);
	curl_easy_getinfo(r->easy, CURLINFO_CONTENT_TYPE, &ct);
	n->ev.key = r->key;
	n->ev.type = AG_UP_HEAD;
	n->ev.status = code;
	snprintf(n->ev.content_type, sizeof(n->ev.content_type), "%s",
	    ct != NULL ? ct : "");
	ev_push(r->u, r, n);
}

static void
push_end(struct up_req *r, long status, int ok, const char *error)
{
	struct up_ev *n = r->endev;

	if (n == NULL)
		return;
	r->endev = NULL;
	n->ev.key = r->key;
	n->ev.type = AG_UP_END;
	n->ev.status = status;
	n->ev.ok = ok;
	if (!ok)
		snprintf(n->ev.error, sizeof(n->ev.error), "%s", error);
	ev_push(r->u, r, n);
}

/* The OpenSSL connection r's transfer runs on, or NULL. */
static SSL *
req_ssl(struct up_req *r)
{
	struct curl_tlssessioninfo *ti = NULL;

	if (curl_easy_getinfo(r->easy, CURLINFO_TLS_SSL_PTR, &ti) != CURLE_OK ||
	    ti == NULL || ti->backend != CURLSSLBACKEND_OPENSSL)
		return NULL;
	return ti->internals;
}

/*
 * libcurl asks OpenSSL to give a connection's 16 KB read and write
 * buffers back after every record (SSL_MODE_RELEASE_BUFFERS).  A
 * connection that carries whole answers, one after another, then makes
 * both again for every request.  Its buffers are kept instead (about
 * 33 KB while it waits in libcurl's pool).  A stream's connection keeps
 * the mode: it holds its transfer long, and trim_run frees what it can.
 */
static void
keep_tls_buffers(struct up_req *r)
{
	SSL *ssl;

	if (!r->stream && (ssl = req_ssl(r)) != NULL)
		(void)SSL_clear_mode(ssl, SSL_MODE_RELEASE_BUFFERS);
}

static size_t
on_header(char *p, size_t size, size_t nmemb, void *arg)
{
	struct up_req *r = arg;
	size_t n = size * nmemb;
	long code = 0;

	/* The blank line ends a header block; 1xx blocks are not the
	 * response's.  Trailers come after HEAD and are ignored. */
	if (r->tokx != NULL)
		return n;
	if (!r->head_sent && ((n == 2 && p[0] == '\r' && p[1] == '\n') ||
	    (n == 1 && p[0] == '\n'))) {
		curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &code);
		if (code >= 200) {
			push_head(r);
			keep_tls_buffers(r);
		}
	}
	return n;
}

static size_t
on_write(char *p, size_t size, size_t nmemb, void *arg)
{
	struct up_req *r = arg;
	struct ag_upstream *u = r->u;
	size_t n = size * nmemb;
	struct up_ev *e;

	if (r->dropping)
		return n;
	if (r->tokx != NULL)
		return tok_write(r, p, n);
	push_head(r);
	if (n == 0)
		return 0;
	lock(u);
	if (r->cancelled) {
		/* Dropped at the next turn of the loop: just swallow. */
		unlock(u);
		return n;
	}
	if (!r->flushing && (r->queued >= u->req_max ||
	    u->total >= u->total_max)) {
		if (!r->paused) {
			r->paused = 1;
			u->npaused++;
			if (u->total >= u->total_max) {
				r->paused_total = 1;
				u->npaused_total++;
			}
		}
		unlock(u);
		r->cpaused = 1;
		return CURL_WRITEFUNC_PAUSE;
	}
	unlock(u);

	if ((e = calloc(1, sizeof(*e))) == NULL ||
	    (e->ev.data = malloc(n)) == NULL) {
		free(e);
		r->oom = 1;
		return 0;	/* CURLE_WRITE_ERROR ends the transfer */
	}
	memcpy(e->ev.data, p, n);
	if (r->stream)
		trim_mark(r, TRIM_TLS);
	e->ev.len = n;
	e->ev.key = r->key;
	e->ev.type = AG_UP_DATA;
	ev_push(u, r, e);
	return n;
}

/*
 * libcurl (7.88) counts the connections in use against MAXCONNECTS as
 * well, and every transfer that ends while the count is over it walks
 * every connection for an idle one to close: with thousands of streams
 * open, each stream's end walked thousands of connections.  The limit
 * follows the transfers in flight, so that it bounds what
 * AG_UP_CONNS_MAX means: idle connections kept.
 */
static void
active_add(struct ag_upstream *u, struct up_req *r)
{
	r->anext = u->active;
	r->aprev = NULL;
	if (u->active != NULL)
		u->active->aprev = r;
	u->active = r;
	u->nactive++;
	curl_multi_setopt(u->multi, CURLMOPT_MAXCONNECTS,
	    (long)(u->nactive + AG_UP_CONNS_MAX));
}

static void
active_remove(struct ag_upstream *u, struct up_req *r)
{
	if (r->aprev != NULL)
		r->aprev->anext = r->anext;
	else
		u->active = r->anext;
	if (r->anext != NULL)
		r->anext->aprev = r->aprev;
	r->anext = r->aprev = NULL;
	u->nactive--;
	curl_multi_setopt(u->multi, CURLMOPT_MAXCONNECTS,
	    (long)(u->nactive + AG_UP_CONNS_MAX));
}

/*
 * Remove r's easy handle (if any) and drop the curl side's reference.
 * abort: the transfer may be unfinished (cancel, shutdown).
 */
static void
detach(struct ag_upstream *u, struct up_req *r, int abort)
{
	int fr;

	if (r->parked != NULL) {
		tok_unpark(r);
		lock(u);
		fr = req_unref_locked(r);
		unlock(u);
		if (fr)
			req_free(r);
		return;
	}
	if (r->easy == NULL)
		return;
	if (r->trim != 0) {
		struct up_req **pp;

		for (pp = &u->trims; *pp != NULL; pp = &(*pp)->tnext)
			if (*pp == r) {
				*pp = r->tnext;
				break;
			}
		r->trim = 0;
	}
	/*
	 * Removing an unfinished transfer makes curl close an HTTP/1.1
	 * connection and submit RST_STREAM for an HTTP/2 stream.  But curl
	 * (7.88 at least) only writes that RST when the connection is next
	 * used: on a connection left idle in the pool the provider would go
	 * on generating.  Forbidding reuse makes curl close the connection
	 * when this was its last transfer; when others share it, their
	 * traffic flushes the RST.
	 */
	if (abort)
		curl_easy_setopt(r->easy, CURLOPT_FORBID_REUSE, 1L);
	/*
	 * A paused transfer holds what it could not deliver in a curl buffer
	 * that curl (7.88) does not free on removal.  Un-pausing hands it to
	 * on_write, which drops it (the request is cancelled or done).
	 */
	if (r->cpaused) {
		r->cpaused = 0;
		r->dropping = 1;
		curl_easy_pause(r->easy, CURLPAUSE_CONT);
	}
	curl_multi_remove_handle(u->multi, r->easy);
	/* A handle that finished goes back to the pool: the next transfer
	 * skips curl's set-up and its buffer allocations.  reset keeps
	 * nothing of this request but the buffers' memory. */
	if (!abort && u->npool < EASY_POOL) {
		curl_easy_reset(r->easy);
		u->pool[u->npool++] = r->easy;
	} else
		curl_easy_cleanup(r->easy);
	r->easy = NULL;
	active_remove(u, r);

	lock(u);
	pause_clear_locked(u, r);
	fr = req_unref_locked(r);
	unlock(u);
	if (fr)
		req_free(r);
}

#define SET(opt, val) do {						\
	if ((rc = curl_easy_setopt(e, (opt), (val))) != CURLE_OK)	\
		goto fail;						\
} while (0)

/*
 * Whether transfers may share an HTTP/2 connection.  Before 8.1.0 libcurl
 * stops reading the whole connection while one of its streams is paused
 * (one pause_stream_id per connection), so a single user who stops
 * reading would stall every request multiplexed with theirs.  There each
 * transfer gets a connection of its own (still HTTP/2 where offered, and
 * reused once free).
 */
static int
multiplex(void)
{
	return curl_version_info(CURLVERSION_NOW)->version_num >= 0x080100;
}

static curl_socket_t on_open(void *userp, curlsocktype purpose,
    struct curl_sockaddr *a);
static int on_close(void *userp, curl_socket_t s);

static int
easy_setup(struct ag_upstream *u, struct up_req *r, char *err, size_t errlen)
{
	CURL *e;
	CURLcode rc = CURLE_OK;
	const char *ca = NULL;

	if (u->npool > 0)
		e = u->pool[--u->npool];
	else if ((e = curl_easy_init()) == NULL) {
		snprintf(err, errlen, "cannot create a transfer");
		return -1;
	}
	SET(CURLOPT_PRIVATE, r);
	SET(CURLOPT_URL, r->url);
	SET(CURLOPT_PROTOCOLS_STR, "https");
	SET(CURLOPT_REDIR_PROTOCOLS_STR, "https");
	SET(CURLOPT_FOLLOWLOCATION, 0L);
	SET(CURLOPT_NOSIGNAL, 1L);
	/* Where libcurl cannot multiplex, every request goes over HTTP/1.1:
	 * one request per connection gains nothing from HTTP/2 and costs
	 * framing, HPACK, window updates, a 32 KB input buffer and an nghttp2
	 * session per connection (a held stream's memory in agentd fell from
	 * 122 to 92 KB, 3,000 slow streams).  Back-pressure pauses these
	 * transfers as it does HTTP/2 streams. */
	SET(CURLOPT_HTTP_VERSION, r->h1 ? (long)CURL_HTTP_VERSION_1_1 :
	    (long)CURL_HTTP_VERSION_2TLS);
	SET(CURLOPT_PIPEWAIT, u->mux ? 1L : 0L);
	/* libcurl (7.88) looks for a connection to reuse by walking every
	 * connection to the host, busy ones too: with 8,000 streams open,
	 * each new one walked 8,000 (a seventh of agentd's CPU while they
	 * ramped up).  Where it cannot multiplex, each transfer in flight
	 * holds one connection (r is not counted yet): when there are no
	 * more sockets than transfers, none is idle and the walk is skipped.
	 * A wrong guess costs one new connection, never a failure. */
	SET(CURLOPT_FRESH_CONNECT, !u->mux && u->nsock <= u->nactive ? 1L :
	    0L);
	SET(CURLOPT_OPENSOCKETFUNCTION, on_open);
	SET(CURLOPT_OPENSOCKETDATA, u);
	SET(CURLOPT_CLOSESOCKETFUNCTION, on_close);
	SET(CURLOPT_CLOSESOCKETDATA, u);
	SET(CURLOPT_TCP_NODELAY, 1L);
	SET(CURLOPT_TCP_KEEPALIVE, 1L);
	SET(CURLOPT_CONNECTTIMEOUT_MS, (long)AG_UP_CONNECT_TIMEOUT_MS);
	SET(CURLOPT_TIMEOUT_MS, 0L);
	SET(CURLOPT_LOW_SPEED_LIMIT, 1L);
	SET(CURLOPT_LOW_SPEED_TIME, (long)AG_UP_IDLE_TIMEOUT_S);
	SET(CURLOPT_SSL_VERIFYPEER, 1L);
	SET(CURLOPT_SSL_VERIFYHOST, 2L);
	SET(CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
	/* The CA bundle alone, so that libcurl builds its store once, not
	 * once per new connection; a new connection resumes a TLS session
	 * an earlier one made, whichever transfer made it (lib/curlca.h).
	 * Test builds only: a private CA. */
#if SWB_TEST_BUILD
	ca = u->ca_file;
#endif
	if ((rc = curlca_setopt(e, ca, u->ca_bundle, u->share)) != CURLE_OK)
		goto fail;
	/* The request body goes out through this buffer, which a transfer
	 * holds for its life.  libcurl's minimum, 16 KB, instead of its
	 * 64 KB: a held stream's resident memory in agentd fell from 128 to
	 * 120 KB (3,000 slow streams). */
	SET(CURLOPT_UPLOAD_BUFFERSIZE, UL_BUFSIZE);
	/* A stream's events are small and its transfer lives long: a 4 KB
	 * download buffer instead of 16 (a held stream: 92 → 84 KB).  Whole
	 * answers keep 16 KB, fewer callbacks for a large body. */
	SET(CURLOPT_BUFFERSIZE, r->stream ? 4096L : 16384L);
	SET(CURLOPT_SUPPRESS_CONNECT_HEADERS, 1L);
	SET(CURLOPT_HTTPHEADER, r->hdrs);
	SET(CURLOPT_HEADERFUNCTION, on_header);
	SET(CURLOPT_HEADERDATA, r);
	SET(CURLOPT_WRITEFUNCTION, on_write);
	SET(CURLOPT_WRITEDATA, r);
	SET(CURLOPT_ERRORBUFFER, r->errbuf);
	if (r->post) {
		SET(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)r->len);
		SET(CURLOPT_POSTFIELDS, r->body);
	} else
		SET(CURLOPT_HTTPGET, 1L);
#if SWB_TEST_BUILD
	/* Test builds only: host overrides, so the official names reach a
	 * local mock (its CA: above). */
	if (u->connect_to != NULL) {
		SET(CURLOPT_CONNECT_TO, u->connect_to);
		SET(CURLOPT_PROXY, "");
	}
#endif
	r->easy = e;
	return 0;
fail:
	snprintf(err, errlen, "curl setup: %s", curl_easy_strerror(rc));
	curl_easy_cleanup(e);
	return -1;
}

#undef SET

/* ---- token caches (curl side): ag_token's exchange as a transfer of
 * our own, with the requests that wait for it */

static void start_one(struct ag_upstream *u, struct up_req *r);

static size_t
tok_write(struct up_req *r, const char *p, size_t n)
{
	char *na;

	if (r->acclen + n > TOK_ANSWER_MAX ||
	    (na = realloc(r->acc, r->acclen + n + 1)) == NULL)
		return 0;		/* ends the transfer: a failure */
	r->acc = na;
	memcpy(r->acc + r->acclen, p, n);
	r->acclen += n;
	r->acc[r->acclen] = '\0';
	return n;
}

static void
tok_unpark(struct up_req *r)
{
	struct up_tok *k = r->parked;

	for (struct up_req **pp = &k->waiters; *pp != NULL;
	    pp = &(*pp)->wnext)
		if (*pp == r) {
			*pp = r->wnext;
			k->nwait--;
			break;
		}
	r->wnext = NULL;
	r->parked = NULL;
}

static struct up_tok *
tok_find(struct ag_upstream *u, const struct up_req *r)
{
	struct up_tok *k;

	for (k = u->toks; k != NULL; k = k->next)
		if (strcmp(k->t.channel, r->tok_channel) == 0 &&
		    strcmp(k->t.path, r->tok_path) == 0)
			return k;
	if ((k = calloc(1, sizeof(*k))) == NULL)
		return NULL;
	snprintf(k->t.channel, sizeof(k->t.channel), "%s", r->tok_channel);
	snprintf(k->t.path, sizeof(k->t.path), "%s", r->tok_path);
	k->next = u->toks;
	u->toks = k;
	return k;
}

/* End r (parked or not yet started) with an error; the curl side's
 * reference goes. */
static void
tok_refuse(struct ag_upstream *u, struct up_req *r, const char *why)
{
	int fr;

	push_end(r, 0, 0, why);
	lock(u);
	fr = req_unref_locked(r);
	unlock(u);
	if (fr)
		req_free(r);
}

static void
tok_refusal(const struct up_tok *k, char *buf, size_t len)
{
	snprintf(buf, len, "channel %s unavailable: %.100s", k->t.channel,
	    k->t.reason);
}

/* The exchange is over (the cache says how): every waiter goes on or is
 * refused. */
static void
tok_release(struct ag_upstream *u, struct up_tok *k)
{
	struct up_req *w;
	char why[160];

	while ((w = k->waiters) != NULL) {
		tok_unpark(w);
		if (ag_tok_state(&k->t, clock_mono_ms()) == AG_TOK_VALID ||
		    ag_tok_state(&k->t, clock_mono_ms()) == AG_TOK_REFRESH)
			start_one(u, w);
		else {
			tok_refusal(k, why, sizeof(why));
			tok_refuse(u, w, why);
		}
	}
}

static void
tok_failed(struct ag_upstream *u, struct up_tok *k, int rc)
{
	if (rc == 1)
		log_warn("vertex channel %s: no access token: %s; requests to "
		    "it are refused until an exchange succeeds (next try "
		    "after %llds)", k->t.channel, k->t.reason,
		    (long long)(k->t.backoff_ms / 1000));
	tok_release(u, k);
}

/* Start an exchange for k: sign an assertion with the service account
 * (read again each time, so a replaced file is picked up). */
static void
tok_exchange(struct ag_upstream *u, struct up_tok *k)
{
	struct ag_sa sa;
	struct up_req *r = NULL;
	struct curl_slist *h;
	char err[400];
	char *jwt = NULL;
	CURLMcode mc;

	k->t.inflight = 1;
	if (ag_sa_load(k->t.path, &sa, err, sizeof(err)) != 0) {
		tok_failed(u, k, ag_tok_fail(&k->t, clock_mono_ms(), err));
		return;
	}
	jwt = ag_jwt_make(&sa, (int64_t)time(NULL), err, sizeof(err));
	ag_sa_free(&sa);
	if (jwt == NULL || (r = calloc(1, sizeof(*r))) == NULL ||
	    (r->body = (unsigned char *)ag_jwt_form(jwt)) == NULL ||
	    (r->url = strdup(AG_SA_TOKEN_URI)) == NULL ||
	    (h = curl_slist_append(NULL, "Content-Type: "
	    "application/x-www-form-urlencoded")) == NULL)
		goto fail;
	r->hdrs = h;
	if ((h = curl_slist_append(r->hdrs, "Expect:")) == NULL)
		goto fail;
	r->hdrs = h;
	r->u = u;
	r->post = 1;
	r->len = strlen((char *)r->body);
	r->prov = "vertex token";
	r->tokx = k;
	r->refs = 1;			/* the curl side's only */
	if (easy_setup(u, r, err, sizeof(err)) != 0)
		goto fail;
	curl_easy_setopt(r->easy, CURLOPT_TIMEOUT_MS, (long)TOK_EXCHANGE_MS);
	active_add(u, r);
	if ((mc = curl_multi_add_handle(u->multi, r->easy)) != CURLM_OK) {
		snprintf(err, sizeof(err), "curl: %s", curl_multi_strerror(mc));
		r->tokx = NULL;
		detach(u, r, 0);
		r = NULL;
		goto failmsg;
	}
	sodium_memzero(jwt, strlen(jwt));
	free(jwt);
	return;
fail:
	snprintf(err, sizeof(err), "cannot start the token exchange");
failmsg:
	if (r != NULL)
		req_free(r);
	if (jwt != NULL) {
		sodium_memzero(jwt, strlen(jwt));
		free(jwt);
	}
	tok_failed(u, k, ag_tok_fail(&k->t, clock_mono_ms(), err));
}

/* The exchange transfer r is done. */
static void
tok_done(struct ag_upstream *u, struct up_req *r, CURLcode res)
{
	struct up_tok *k = r->tokx;
	int was_failed = k->t.failed, rc;
	long code = 0;
	char why[200];

	curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &code);
	if (res == CURLE_OK)
		rc = ag_tok_answer(&k->t, clock_mono_ms(), code, r->acc,
		    r->acclen);
	else {
		snprintf(why, sizeof(why), "the token exchange failed: %.150s",
		    r->errbuf[0] != '\0' ? r->errbuf : curl_easy_strerror(res));
		rc = ag_tok_fail(&k->t, clock_mono_ms(), why);
	}
	detach(u, r, 0);
	if (rc == 0) {
		if (was_failed)
			log_info("vertex channel %s: access token obtained; the "
			    "channel serves again", k->t.channel);
		tok_release(u, k);
	} else
		tok_failed(u, k, rc);
}

/*
 * r needs its channel's token: 1 when the header is on and r may start;
 * 0 when r waits for an exchange or was refused (the cache's reason).
 */
static int
tok_ready(struct ag_upstream *u, struct up_req *r)
{
	struct up_tok *k = tok_find(u, r);
	enum ag_tok_state st;
	char err[160];

	if (k == NULL) {
		tok_refuse(u, r, "out of memory");
		return 0;
	}
	st = ag_tok_state(&k->t, clock_mono_ms());
	if (st == AG_TOK_REFRESH && !k->t.inflight) {
		tok_exchange(u, k);	/* meanwhile: the old one */
		st = ag_tok_state(&k->t, clock_mono_ms());
	}
	switch (st) {
	case AG_TOK_REFRESH:
	case AG_TOK_VALID:
		if (ag_prov_header(&r->hdrs, "Authorization", "Bearer ",
		    k->t.token, err, sizeof(err)) != 0) {
			tok_refuse(u, r, err);
			return 0;
		}
		return 1;
	case AG_TOK_FAILED:
		tok_refusal(k, err, sizeof(err));
		tok_refuse(u, r, err);
		return 0;
	default:
		if (k->nwait >= TOK_WAITERS_MAX) {
			tok_refuse(u, r, "too many requests waiting for the "
			    "channel's access token");
			return 0;
		}
		r->parked = k;
		r->wnext = k->waiters;
		k->waiters = r;
		k->nwait++;
		if (!k->t.inflight)
			tok_exchange(u, k);
		return 0;
	}
}

/* Once a loop turn: refresh the tokens due (requests keep the old one
 * meanwhile). */
static void
tok_tick(struct ag_upstream *u)
{
	for (struct up_tok *k = u->toks; k != NULL; k = k->next)
		if (!k->t.inflight &&
		    ag_tok_state(&k->t, clock_mono_ms()) == AG_TOK_REFRESH)
			tok_exchange(u, k);
}

static void
start_one(struct ag_upstream *u, struct up_req *r)
{
	char err[160];
	CURLMcode mc;
	int fr;

	if (r->want_token && !tok_ready(u, r))
		return;
	r->errbuf[0] = '\0';
	if (easy_setup(u, r, err, sizeof(err)) == 0) {
		active_add(u, r);
		if ((mc = curl_multi_add_handle(u->multi, r->easy)) == CURLM_OK)
			return;
		snprintf(err, sizeof(err), "curl: %s", curl_multi_strerror(mc));
		push_end(r, 0, 0, err);
		detach(u, r, 0);
		return;
	}
	push_end(r, 0, 0, err);
	lock(u);
	fr = req_unref_locked(r);
	unlock(u);
	if (fr)
		req_free(r);
}

/*
 * A transfer that failed on a REUSED connection before any byte of its
 * answer (the provider closed or broke a kept-alive connection: GOAWAY
 * after its N streams, a reset, a framing error) is sent once more on a
 * fresh connection, as browsers and proxies do; its body is still in
 * memory.  1: restarted (no events yet).
 */
static int
retry_fresh(struct ag_upstream *u, struct up_req *r, CURLcode res)
{
	long fresh = 1;

	if (r->retried || r->head_sent || r->oom)
		return 0;
	switch (res) {
	case CURLE_HTTP2:
	case CURLE_HTTP2_STREAM:
	case CURLE_SEND_ERROR:
	case CURLE_RECV_ERROR:
	case CURLE_GOT_NOTHING:
	case CURLE_PARTIAL_FILE:	/* h2: the connection ended first */
		break;
	default:
		return 0;
	}
	if (curl_easy_getinfo(r->easy, CURLINFO_NUM_CONNECTS, &fresh) !=
	    CURLE_OK || fresh != 0)
		return 0;	/* its own new connection failed: a real error */
	log_msg(LOG_LVL_INFO, r->key, "upstream %s: %s on a reused "
	    "connection before any answer; sent again on a fresh one", r->prov,
	    r->errbuf[0] != '\0' ? r->errbuf : curl_easy_strerror(res));
	r->retried = 1;
	r->errbuf[0] = '\0';
	curl_multi_remove_handle(u->multi, r->easy);
	/* Not restarted: it ends with this error (detach's remove of a
	 * handle that is not in the multi is harmless). */
	return curl_easy_setopt(r->easy, CURLOPT_FRESH_CONNECT, 1L) ==
	    CURLE_OK && curl_multi_add_handle(u->multi, r->easy) == CURLM_OK;
}

static void
finish_one(struct ag_upstream *u, struct up_req *r, CURLcode res)
{
	char err[160];
	long code = 0;

	if (r->tokx != NULL) {
		tok_done(u, r, res);
		return;
	}
	if (res != CURLE_OK && retry_fresh(u, r, res))
		return;
	curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &code);
	/* Ended while paused: curl would still hold the answer's last
	 * bytes.  7.88 does not finish a paused transfer (test
	 * test_mock_stream_h1_held pauses one at each of its events); 8.3.0
	 * did, over HTTP/2.  Un-pausing hands them to on_write, which takes
	 * them whatever the bounds: they are the last. */
	if (r->cpaused) {
		r->cpaused = 0;
		r->flushing = 1;
		curl_easy_pause(r->easy, CURLPAUSE_CONT);
	}
	if (res == CURLE_OK) {
		push_head(r);
		push_end(r, code, 1, NULL);
	} else {
		if (r->oom)
			snprintf(err, sizeof(err), "out of memory");
		else if (r->errbuf[0] != '\0')
			snprintf(err, sizeof(err), "%.*s",
			    (int)sizeof(err) - 1, r->errbuf);
		else
			snprintf(err, sizeof(err), "%s", curl_easy_strerror(res));
		log_msg(LOG_LVL_INFO, r->key, "upstream %s: %s", r->prov, err);
		push_end(r, code, 0, err);
	}
	detach(u, r, 0);
}

static void
resume_scan(struct ag_upstream *u)
{
	struct up_req *r;
	int any = 0;

	lock(u);
	u->resume_check = 0;
	for (r = u->active; r != NULL; r = r->anext) {
		if (!r->paused)
			continue;
		if (u->total >= u->total_max / 2)
			break;
		if (r->queued < u->req_max / 2) {
			pause_clear_locked(u, r);
			r->resume = any = 1;
		} else if (r->paused_total) {
			/* Held by its own queue: its own credit wakes it. */
			r->paused_total = 0;
			u->npaused_total--;
		}
	}
	unlock(u);
	if (!any)
		return;
	for (r = u->active; r != NULL; r = r->anext)
		if (r->resume) {
			r->resume = 0;
			r->cpaused = 0;
			/* May call on_write at once, which may pause again. */
			curl_easy_pause(r->easy, CURLPAUSE_CONT);
		}
}

/*
 * What a transfer holds that it no longer needs, given back between
 * curl's calls (trim_run, at the end of each ag_up_run), never from
 * inside its callbacks:
 * - TRIM_UPLOAD (a stream's answer began): over HTTPS without HTTP/2,
 *   libcurl (7.88) copies the request into its upload buffer (16 KB at
 *   least) and keeps that buffer for the handle's life.  Once the whole
 *   body went out nothing of the request is sent any more; setting the
 *   size again frees the buffer (curl makes a new one if it ever needs
 *   one).
 * - TRIM_TLS (a stream read): OpenSSL sets up its 16.7 KB read buffer
 *   before the read that finds the socket empty, and keeps it, whatever
 *   SSL_MODE_RELEASE_BUFFERS says.  SSL_free_buffers frees it when it
 *   holds nothing.
 * Only for streams, which hold their transfer long: a whole answer's
 * handle and connection serve the next request at once, and giving its
 * buffers back would only cost their making again.
 * Measured with 2,000 slow streams: agentd's resident memory per stream
 * 84 → 60 KB, CPU per chunk unchanged within the noise.
 */
static void
trim_mark(struct up_req *r, int what)
{
	if (r->trim == 0) {
		r->tnext = r->u->trims;
		r->u->trims = r;
	}
	r->trim |= what;
}

static void
trim_run(struct ag_upstream *u)
{
	struct up_req *r, *next;
	SSL *ssl;
	curl_off_t up;

	for (r = u->trims; r != NULL; r = next) {
		next = r->tnext;
		r->tnext = NULL;
		if (r->easy == NULL) {
			r->trim = 0;
			continue;
		}
		if ((r->trim & TRIM_UPLOAD) && curl_easy_getinfo(r->easy,
		    CURLINFO_SIZE_UPLOAD_T, &up) == CURLE_OK &&
		    up >= (curl_off_t)r->len)
			(void)curl_easy_setopt(r->easy,
			    CURLOPT_UPLOAD_BUFFERSIZE, UL_BUFSIZE);
		if ((r->trim & TRIM_TLS) && (ssl = req_ssl(r)) != NULL)
			(void)SSL_free_buffers(ssl);
		r->trim = 0;
	}
	u->trims = NULL;
}

/* The lws side queued work for the curl side: the driver runs us soon. */
static void
kick(struct ag_upstream *u)
{
	if (u->loop.kick != NULL)
		u->loop.kick(u->loop.arg);
}

/*
 * The epoll set keeps a provider connection between its transfers.
 * curl removes a connection's socket when its transfer ends and adds it
 * again when the next transfer reuses it: two epoll_ctl calls a request
 * for nothing.  For the sockets curl opened through on_open (so that
 * their close, on_close, is seen too) the removal is lazy: the socket
 * stays in the set, marked unwatched, and the next add with the same
 * events costs no system call.  An event on an unwatched socket (the
 * provider closed an idle connection) takes it out then (ag_up_run).
 * Other descriptors curl may report (a resolver's) go in and out at once.
 */
#define SK_OURS		0x01	/* opened by on_open, not yet closed */
#define SK_SET		0x02	/* in the epoll set */
#define SK_IN		0x04	/* ... for EPOLLIN */
#define SK_OUT		0x08	/* ... for EPOLLOUT */
#define SK_WATCHED	0x10	/* curl watches it (not removed) */

static unsigned char *
sk_state(struct ag_upstream *u, curl_socket_t s, int grow)
{
	unsigned char *n;
	size_t want;

	if (s < 0)
		return NULL;
	if ((size_t)s >= u->nfdst) {
		if (!grow)
			return NULL;
		want = u->nfdst == 0 ? 256 : u->nfdst;
		while (want <= (size_t)s)
			want *= 2;
		if ((n = realloc(u->fdst, want)) == NULL)
			return NULL;
		memset(n + u->nfdst, 0, want - u->nfdst);
		u->fdst = n;
		u->nfdst = want;
	}
	return &u->fdst[s];
}

/* CURLOPT_OPENSOCKETFUNCTION: a provider connection's socket. */
static curl_socket_t
on_open(void *userp, curlsocktype purpose, struct curl_sockaddr *a)
{
	struct ag_upstream *u = userp;
	unsigned char *st;
	int s;

	(void)purpose;
	if ((s = socket(a->family, a->socktype | SOCK_CLOEXEC,
	    a->protocol)) < 0)
		return CURL_SOCKET_BAD;
	/* A new number is in no epoll set; without room it stays eager. */
	if ((st = sk_state(u, s, 1)) != NULL)
		*st = SK_OURS;
	u->nsock++;
	return s;
}

/* CURLOPT_CLOSESOCKETFUNCTION: closing also takes it out of the set. */
static int
on_close(void *userp, curl_socket_t s)
{
	struct ag_upstream *u = userp;
	unsigned char *st;

	if ((st = sk_state(u, s, 0)) != NULL)
		*st = 0;
	if (u->nsock > 0)
		u->nsock--;
	return close(s);
}

static int
sk_ctl(struct ag_upstream *u, int op, curl_socket_t s, uint32_t events)
{
	struct epoll_event ev;

	memset(&ev, 0, sizeof(ev));
	ev.events = events;
	ev.data.fd = s;
	if (epoll_ctl(u->epfd, op, s, &ev) == 0)
		return 0;
	/* A descriptor number curl reused before we saw it go. */
	op = errno == EEXIST ? EPOLL_CTL_MOD : errno == ENOENT ?
	    EPOLL_CTL_ADD : -1;
	if (op < 0 || epoll_ctl(u->epfd, op, s, &ev) != 0) {
		log_warn("upstream: cannot watch a provider connection: %s",
		    strerror(errno));
		return -1;
	}
	return 0;
}

/* curl wants socket s watched for what (CURLMOPT_SOCKETFUNCTION).  sockp
 * is non-NULL once a socket that is not ours is in the epoll set. */
static int
on_socket(CURL *e, curl_socket_t s, int what, void *userp, void *sockp)
{
	struct ag_upstream *u = userp;
	unsigned char *st = sk_state(u, s, 0), want;
	uint32_t events;

	(void)e;
	if (st != NULL && !(*st & SK_OURS))
		st = NULL;
	if (what == CURL_POLL_REMOVE) {
		if (st != NULL)
			*st &= (unsigned char)~SK_WATCHED;
		else if (sockp != NULL) {
			(void)epoll_ctl(u->epfd, EPOLL_CTL_DEL, s, NULL);
			curl_multi_assign(u->multi, s, NULL);
		}
		return 0;
	}
	events = ((what & CURL_POLL_IN) ? (uint32_t)EPOLLIN : 0) |
	    ((what & CURL_POLL_OUT) ? (uint32_t)EPOLLOUT : 0);
	if (st == NULL) {
		if (sk_ctl(u, sockp != NULL ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, s,
		    events) != 0)
			return -1;	/* curl fails that transfer */
		if (sockp == NULL)
			curl_multi_assign(u->multi, s, u);
		return 0;
	}
	want = (unsigned char)(SK_SET | ((what & CURL_POLL_IN) ? SK_IN : 0) |
	    ((what & CURL_POLL_OUT) ? SK_OUT : 0));
	if ((*st & (SK_SET | SK_IN | SK_OUT)) != want) {
		if (sk_ctl(u, (*st & SK_SET) ? EPOLL_CTL_MOD : EPOLL_CTL_ADD,
		    s, events) != 0) {
			*st = SK_OURS;
			return -1;
		}
	}
	*st = (unsigned char)(SK_OURS | SK_WATCHED | want);
	return 0;
}

/* An event on a socket of ours that curl does not watch: an idle
 * connection's (the provider closed it, or sent what nobody asked for).
 * Out of the set until curl wants it again; curl finds it dead then. */
static int
sk_unwatched(struct ag_upstream *u, curl_socket_t s)
{
	unsigned char *st = sk_state(u, s, 0);

	if (st == NULL || (*st & (SK_OURS | SK_WATCHED)) != SK_OURS)
		return 0;
	if (*st & SK_SET)
		(void)epoll_ctl(u->epfd, EPOLL_CTL_DEL, s, NULL);
	*st = SK_OURS;
	return 1;
}

/* curl wants socket_action(TIMEOUT) in ms (-1: never)
 * (CURLMOPT_TIMERFUNCTION).  curl calls this only from inside
 * ag_up_run(), often several times a run: the run's own timeout rounds
 * take what is due, and the driver hears the last deadline once, at the
 * end (tell_driver). */
static int
on_timer(CURLM *m, long ms, void *userp)
{
	struct ag_upstream *u = userp;

	(void)m;
	u->timer_at = ms < 0 ? -1 : (int64_t)clock_mono_ms() + ms;
	u->timer_moved = 1;
	return 0;
}

/* The end of a run whose deadline moved: the driver comes back by then,
 * and by AG_UP_POLL_MS anyway, for the token refreshes. */
static void
tell_driver(struct ag_upstream *u)
{
	int stop;

	u->timer_moved = 0;
	lock(u);
	stop = u->stop;		/* ag_up_free() began: the driver is gone */
	unlock(u);
	if (!stop && u->loop.timer != NULL)
		u->loop.timer(u->loop.arg, ag_up_next_run_ms(u));
}

/* Curl side: drop the cancelled records (each holds a cancel reference). */
static void
run_cancels(struct ag_upstream *u, struct up_req *cancels)
{
	struct up_req *r, *next;
	int fr;

	for (r = cancels; r != NULL; r = next) {
		next = r->qnext;
		r->qnext = NULL;
		detach(u, r, 1);
		lock(u);
		fr = req_unref_locked(r);
		unlock(u);
		if (fr)
			req_free(r);
	}
}

static void
run_done(struct ag_upstream *u)
{
	struct CURLMsg *msg;
	int left;

	while ((msg = curl_multi_info_read(u->multi, &left)) != NULL) {
		char *priv = NULL;

		if (msg->msg != CURLMSG_DONE)
			continue;
		curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &priv);
		if (priv != NULL)
			finish_one(u, (struct up_req *)(void *)priv,
			    msg->data.result);
	}
}

void
ag_up_run(struct ag_upstream *u, int io)
{
	struct epoll_event ev[EV_BATCH];
	struct up_req *starts, *cancels, *r, *next;
	int running, resume, n, i, flags;
	CURLMcode mc;

	lock(u);
	starts = u->sq_head;
	for (r = starts; r != NULL; r = r->qnext)
		r->in_sq = 0;
	u->sq_head = u->sq_tail = NULL;
	cancels = u->cq;
	u->cq = NULL;
	resume = u->resume_check;
	unlock(u);

	run_cancels(u, cancels);
	for (r = starts; r != NULL; r = next) {
		next = r->qnext;
		r->qnext = NULL;
		start_one(u, r);
	}
	if (resume)
		resume_scan(u);
	tok_tick(u);

	/* Level-triggered: what is left beyond the batch stays ready. */
	n = io ? epoll_wait(u->epfd, ev, EV_BATCH, 0) : 0;
	for (i = 0; i < n; i++) {
		if (sk_unwatched(u, ev[i].data.fd))
			continue;
		flags = ((ev[i].events & (EPOLLIN | EPOLLHUP)) ?
		    CURL_CSELECT_IN : 0) |
		    ((ev[i].events & EPOLLOUT) ? CURL_CSELECT_OUT : 0) |
		    ((ev[i].events & EPOLLERR) ? CURL_CSELECT_ERR : 0);
		if ((mc = curl_multi_socket_action(u->multi, ev[i].data.fd,
		    flags, &running)) != CURLM_OK)
			log_warn("upstream: curl_multi_socket_action: %s",
			    curl_multi_strerror(mc));
	}
	/* Due timeouts, among them the one a new transfer asks for at once
	 * (a few rounds; the driver's timer has the rest). */
	for (i = 0; i < TIMER_ROUNDS && u->timer_at >= 0 &&
	    (int64_t)clock_mono_ms() >= u->timer_at; i++) {
		u->timer_at = -1;
		if ((mc = curl_multi_socket_action(u->multi,
		    CURL_SOCKET_TIMEOUT, 0, &running)) != CURLM_OK)
			log_warn("upstream: curl_multi_socket_action: %s",
			    curl_multi_strerror(mc));
	}
	trim_run(u);
	run_done(u);
	if (u->timer_moved)
		tell_driver(u);
}

int
ag_up_fd(const struct ag_upstream *u)
{
	return u->epfd;
}

long
ag_up_next_run_ms(const struct ag_upstream *u)
{
	int64_t left;

	if (u->timer_at < 0)
		return AG_UP_POLL_MS;
	left = u->timer_at - clock_mono_ms();
	return left <= 0 ? 0 : left > AG_UP_POLL_MS ? AG_UP_POLL_MS :
	    (long)left;
}

/* ---- lws side */

static void
sanitize(char *dst, size_t dstlen, const char *src)
{
	size_t i;

	for (i = 0; src[i] != '\0' && i + 1 < dstlen; i++)
		dst[i] = (src[i] > 0x20 && src[i] < 0x7f) ? src[i] : '?';
	if (dstlen > 0)
		dst[i] = '\0';
}

static int
hexdig(int c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') ||
	    (c >= 'A' && c <= 'F');
}

/*
 * The engine's own rules for any path, before the adapter's list:
 * absolute, printable URL characters only, well-formed %XX escapes, no
 * escaped '.', '/' or '\', no empty, "." or ".." segment; a query only
 * if the adapter takes one.
 */
static int
path_ok(const struct ag_prov *p, const char *path)
{
	size_t len = strlen(path), plen = strcspn(path, "?");
	const char *s;

	if (len == 0 || len >= PATH_MAX_LEN || path[0] != '/')
		return 0;
	if (path[plen] == '?' && !p->allow_query)
		return 0;
	for (size_t i = 0; i < len; i++) {
		int c = (unsigned char)path[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') ||
		    strchr("-._~!$&'()*+,;=:@/%", c) != NULL ||
		    (i >= plen && c == '?')))
			return 0;
		if (c == '%') {
			if (i + 2 >= len || !hexdig(path[i + 1]) ||
			    !hexdig(path[i + 2]))
				return 0;
			if (iprefix(path + i, "%2e") ||
			    iprefix(path + i, "%2f") || iprefix(path + i, "%5c"))
				return 0;
		}
	}
	for (s = path; s < path + plen; ) {
		size_t sl;

		s++;				/* past '/' */
		sl = strcspn(s, "/?");
		if (sl > plen - (size_t)(s - path))
			sl = plen - (size_t)(s - path);
		if (sl == 0 || (sl == 1 && s[0] == '.') ||
		    (sl == 2 && s[0] == '.' && s[1] == '.'))
			return 0;
		s += sl;
	}
	for (const char *const *a = p->allowed_paths; a != NULL && *a != NULL;
	    a++)
		if (ag_prov_path_match(*a, path, plen))
			return 1;
	return 0;
}

/*
 * Parse url with curl's own parser: https, no user info, port 443 or
 * none, host on the adapter's list.  On success *out is the URL as curl
 * will use it (free()).
 */
static int
url_check(const struct ag_prov *p, const char *url, char **out, char *err,
    size_t errlen)
{
	CURLU *h;
	char *scheme = NULL, *host = NULL, *port = NULL, *user = NULL;
	char *pass = NULL, *full = NULL;
	int ok = 0;

	*out = NULL;
	if ((h = curl_url()) == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	if (curl_url_set(h, CURLUPART_URL, url, 0) != CURLUE_OK ||
	    curl_url_get(h, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
	    curl_url_get(h, CURLUPART_HOST, &host, 0) != CURLUE_OK) {
		snprintf(err, errlen, "%s: bad URL", p->name);
		goto out;
	}
	if (curl_url_get(h, CURLUPART_USER, &user, 0) == CURLUE_OK ||
	    curl_url_get(h, CURLUPART_PASSWORD, &pass, 0) == CURLUE_OK) {
		snprintf(err, errlen, "%s: URL with user info", p->name);
		goto out;
	}
	if (!iprefix(scheme, "https") || scheme[5] != '\0' ||
	    (curl_url_get(h, CURLUPART_PORT, &port, 0) == CURLUE_OK &&
	    strcmp(port, "443") != 0)) {
		snprintf(err, errlen, "%s: only https on port 443", p->name);
		goto out;
	}
	for (const char *const *a = p->hosts; a != NULL && *a != NULL; a++)
		if (ag_prov_host_match(*a, host)) {
			ok = 1;
			break;
		}
	if (!ok) {
		char shown[64];

		sanitize(shown, sizeof(shown), host);
		snprintf(err, errlen, "%s: host %s is not an official endpoint",
		    p->name, shown);
		goto out;
	}
	ok = 0;
	if (curl_url_get(h, CURLUPART_URL, &full, 0) != CURLUE_OK) {
		snprintf(err, errlen, "%s: bad URL", p->name);
		goto out;
	}
	if ((*out = strdup(full)) == NULL) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	ok = 1;
out:
	curl_free(scheme);
	curl_free(host);
	curl_free(port);
	curl_free(user);
	curl_free(pass);
	curl_free(full);
	curl_url_cleanup(h);
	return ok ? 0 : -1;
}

static int
content_type_ok(const char *ct)
{
	size_t n = strlen(ct);

	if (n == 0 || n >= 128)
		return 0;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)ct[i] < 0x20 || (unsigned char)ct[i] > 0x7e)
			return 0;
	return 1;
}

static int
up_start(struct ag_upstream *u, uint64_t key, const struct ag_channel *ch,
    const char *method, const char *path, const struct ag_prov_op *op,
    const char *content_type, const void *body, size_t len, char *err,
    size_t errlen)
{
	const struct ag_prov *p;
	struct up_req *r = NULL;
	struct ag_prov_req rq;
	char urlbuf[URL_MAX_LEN], line[160], shown[80];
	const char *ct;
	int post, n;

	if (u == NULL || ch == NULL || method == NULL || path == NULL ||
	    (body == NULL && len > 0)) {
		snprintf(err, errlen, "bad arguments");
		return -1;
	}
	if ((p = ag_prov_find(ch->provider)) == NULL) {
		snprintf(err, errlen, "provider %s: no adapter yet",
		    ag_provider_name(ch->provider));
		return -1;
	}
	if (strcmp(method, "POST") == 0)
		post = 1;
	else if (strcmp(method, "GET") == 0)
		post = 0;
	else {
		sanitize(shown, 16, method);
		snprintf(err, errlen, "%s: method %s not allowed", p->name,
		    shown);
		return -1;
	}
	if (!post && len > 0) {
		snprintf(err, errlen, "%s: GET with a body", p->name);
		return -1;
	}
	if (len > AG_UP_BODY_MAX) {
		snprintf(err, errlen, "%s: body too large (%zu bytes)", p->name,
		    len);
		return -1;
	}
	if (!path_ok(p, path)) {
		sanitize(shown, sizeof(shown), path);
		snprintf(err, errlen, "%s: path not allowed: %s", p->name,
		    shown);
		return -1;
	}
	ct = content_type != NULL ? content_type : "";
	if (post && ct[0] == '\0')
		ct = "application/json";
	if (ct[0] != '\0' && !content_type_ok(ct)) {
		snprintf(err, errlen, "%s: bad content type", p->name);
		return -1;
	}

	if (p->make_url != NULL) {
		if (p->make_url(urlbuf, sizeof(urlbuf), ch, path, err,
		    errlen) != 0)
			return -1;
	} else {
		n = snprintf(urlbuf, sizeof(urlbuf), "%s%s", p->base_url, path);
		if (n < 0 || (size_t)n >= sizeof(urlbuf)) {
			snprintf(err, errlen, "%s: URL too long", p->name);
			return -1;
		}
	}

	if ((r = calloc(1, sizeof(*r))) == NULL ||
	    (r->headev = calloc(1, sizeof(*r->headev))) == NULL ||
	    (r->endev = calloc(1, sizeof(*r->endev))) == NULL ||
	    (len > 0 && (r->body = malloc(len)) == NULL)) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	r->u = u;
	r->key = key;
	r->post = post;
	r->h1 = !u->mux && op != NULL;
	r->stream = op != NULL && op->stream;
	r->len = len;
	r->prov = p->name;
	if (len > 0)
		memcpy(r->body, body, len);
	else if (post && (r->body = malloc(1)) == NULL) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	if (url_check(p, urlbuf, &r->url, err, errlen) != 0)
		goto fail;

	/* Headers: ours only.  No hub header but the content type is
	 * relayed, so no user token can ever reach the provider. */
	if (post || ct[0] != '\0') {
		snprintf(line, sizeof(line), "Content-Type: %s", ct);
		if ((r->hdrs = curl_slist_append(NULL, line)) == NULL) {
			snprintf(err, errlen, "out of memory");
			goto fail;
		}
	}
	{
		struct curl_slist *h = curl_slist_append(r->hdrs, "Expect:");

		if (h == NULL) {
			snprintf(err, errlen, "out of memory");
			goto fail;
		}
		r->hdrs = h;
	}
	rq.ch = ch;
	rq.method = method;
	rq.url = r->url;
	rq.path = path;
	rq.content_type = ct;
	rq.body = body;
	rq.len = len;
	rq.op = op;
	if (p->add_auth(&r->hdrs, ch, &rq, err, errlen) != 0)
		goto fail;
	if (p->oauth_token) {
		r->want_token = 1;
		snprintf(r->tok_channel, sizeof(r->tok_channel), "%s",
		    ch->name);
		snprintf(r->tok_path, sizeof(r->tok_path), "%s", ch->key);
	}

	lock(u);
	if (u->stop) {
		unlock(u);
		snprintf(err, errlen, "upstream engine stopping");
		goto fail;
	}
	if (hash_find(u, key) != NULL) {
		unlock(u);
		snprintf(err, errlen, "request %016llx already in flight",
		    (unsigned long long)key);
		goto fail;
	}
	if (u->inflight >= AG_UP_INFLIGHT_MAX) {
		unlock(u);
		snprintf(err, errlen, "too many upstream requests");
		goto fail;
	}
	r->refs = 2;
	r->hnext = u->hash[key_hash(key)];
	u->hash[key_hash(key)] = r;
	u->inflight++;
	r->in_sq = 1;
	if (u->sq_tail != NULL)
		u->sq_tail->qnext = r;
	else
		u->sq_head = r;
	u->sq_tail = r;
	unlock(u);
	kick(u);
	return 0;
fail:
	if (r != NULL)
		req_free(r);
	return -1;
}

int
ag_up_start(struct ag_upstream *u, uint64_t key, const struct ag_channel *ch,
    const char *method, const char *path, const char *content_type,
    const void *body, size_t len, char *err, size_t errlen)
{
	return up_start(u, key, ch, method, path, NULL, content_type, body,
	    len, err, errlen);
}

/* A JSON body of an operation whose dialect names the model in it. */
static int
model_in_json(const struct ag_prov *p, int op, const char *ct)
{
	const struct prov_op_info *oi = prov_op(op);

	return p->model_in_body && oi != NULL && (oi->dialect == DIA_OPENAI ||
	    oi->dialect == DIA_ANTHROPIC) && ct != NULL &&
	    strncmp(ct, "application/json", 16) == 0;
}

int
ag_up_start_op(struct ag_upstream *u, uint64_t key,
    const struct ag_channel *ch, const struct ag_prov_op *op,
    const char *content_type, const void *body, size_t len, char *err,
    size_t errlen)
{
	const struct ag_prov *p;
	const char *id;
	char method[8], path[PATH_MAX_LEN];
	char *nb = NULL;
	size_t nlen;
	int rc;

	if (u == NULL || ch == NULL || op == NULL) {
		snprintf(err, errlen, "bad arguments");
		return -1;
	}
	if ((p = ag_prov_find(ch->provider)) == NULL || p->op_path == NULL) {
		snprintf(err, errlen, "provider %s: no adapter yet",
		    ag_provider_name(ch->provider));
		return -1;
	}
	if (p->op_path(method, sizeof(method), path, sizeof(path), ch, op, err,
	    errlen) != 0)
		return -1;
	/* The provider's id for the public model, in the body. */
	id = op->model != NULL ? ag_channel_model_id(ch, op->model) : NULL;
	if (id != NULL && strcmp(id, op->model) != 0 && len > 0 &&
	    model_in_json(p, op->op, content_type)) {
		if (usage_set_model(body, len, id, &nb, &nlen) != 0) {
			snprintf(err, errlen, "%s: cannot put model %s in the "
			    "body (not a JSON object with a model)", p->name,
			    id);
			return -1;
		}
		body = nb;
		len = nlen;
	}
	if (p->fix_body != NULL && len > 0) {
		char *fb;
		size_t flen;

		if (p->fix_body(ch, op, body, len, &fb, &flen, err,
		    errlen) != 0) {
			free(nb);
			return -1;
		}
		if (fb != NULL) {
			free(nb);
			body = nb = fb;
			len = flen;
		}
	}
	rc = up_start(u, key, ch, method, path, op, content_type, body, len,
	    err, errlen);
	free(nb);
	return rc;
}

void
ag_up_cancel(struct ag_upstream *u, uint64_t key)
{
	struct up_req *r, **pp;
	struct up_ev *n, *prev, *next, *dead = NULL;
	int fr, due, queued = 0;

	if (u == NULL)
		return;
	lock(u);
	if ((r = hash_find(u, key)) == NULL) {
		unlock(u);
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
	pause_clear_locked(u, r);
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
	fr = req_unref_locked(r);
	due = resume_due_locked(u, NULL);
	unlock(u);

	while (dead != NULL) {
		n = dead->next;
		ev_free_node(dead);
		dead = n;
	}
	if (fr)
		req_free(r);
	if (queued || due)
		kick(u);
}

int
ag_up_next_event(struct ag_upstream *u, struct ag_up_event *ev)
{
	struct up_ev *n;
	struct up_req *r;
	int fr = 0, due = 0;

	lock(u);
	if ((n = u->eq_head) == NULL) {
		u->wake_pending = 0;
		unlock(u);
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
		fr = req_unref_locked(r);
		due = resume_due_locked(u, NULL);
	}
	unlock(u);

	*ev = n->ev;
	free(n);
	if (fr)
		req_free(r);
	if (due)
		kick(u);
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
	lock(u);
	if ((r = hash_find(u, key)) == NULL) {
		unlock(u);
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
	unlock(u);
	if (due)
		kick(u);
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

/* ------------------------------------------------------------ life */

#if SWB_TEST_BUILD
void
ag_up_test_limits(struct ag_upstream *u, size_t req_max, size_t total_max)
{
	lock(u);
	u->req_max = req_max;
	u->total_max = total_max;
	unlock(u);
}
#endif

#if SWB_TEST_BUILD
static int
connect_to_parse(struct ag_upstream *u, const char *list, char *err,
    size_t errlen)
{
	char buf[AG_CONNECT_TO_MAX], *tok, *next;

	snprintf(buf, sizeof(buf), "%s", list);
	for (tok = buf; tok != NULL; tok = next) {
		struct curl_slist *h;
		char *end;

		if ((next = strchr(tok, ',')) != NULL)
			*next++ = '\0';

		while (*tok == ' ' || *tok == '\t')
			tok++;
		end = tok + strlen(tok);
		while (end > tok && (end[-1] == ' ' || end[-1] == '\t'))
			*--end = '\0';
		if (*tok == '\0')
			continue;
		if ((h = curl_slist_append(u->connect_to, tok)) == NULL) {
			snprintf(err, errlen, "out of memory");
			return -1;
		}
		u->connect_to = h;
	}
	return 0;
}
#endif

struct ag_upstream *
ag_up_new(const struct ag_conf *cf, const struct ag_up_loop *loop,
    char *err, size_t errlen)
{
	struct ag_upstream *u;
	CURLcode rc;

	if ((rc = curl_global_init(CURL_GLOBAL_DEFAULT)) != CURLE_OK) {
		snprintf(err, errlen, "curl_global_init: %s",
		    curl_easy_strerror(rc));
		return NULL;
	}
	if ((u = calloc(1, sizeof(*u))) == NULL) {
		snprintf(err, errlen, "out of memory");
		curl_global_cleanup();
		return NULL;
	}
	u->loop = *loop;
	u->epfd = -1;
	u->timer_at = -1;
	u->req_max = AG_UP_REQ_QUEUE_MAX;
	u->total_max = AG_UP_TOTAL_QUEUE_MAX;
	pthread_mutex_init(&u->mu, NULL);
#if SWB_TEST_BUILD
	if (cf != NULL) {
		snprintf(u->ca_file, sizeof(u->ca_file), "%s", cf->ca_file);
		if (connect_to_parse(u, cf->connect_to, err, errlen) != 0)
			goto fail;
	}
#else
	(void)cf;
#endif
	if ((u->epfd = epoll_create1(EPOLL_CLOEXEC)) < 0) {
		snprintf(err, errlen, "epoll_create1: %s", strerror(errno));
		goto fail;
	}
	if ((u->multi = curl_multi_init()) == NULL) {
		snprintf(err, errlen, "curl_multi_init failed");
		goto fail;
	}
	if ((u->share = curlca_share_new()) == NULL) {
		snprintf(err, errlen, "curl_share_init failed");
		goto fail;
	}
	u->ca_bundle = curlca_bundle_only();
	u->mux = multiplex();
	curl_multi_setopt(u->multi, CURLMOPT_PIPELINING, u->mux ?
	    CURLPIPE_MULTIPLEX : CURLPIPE_NOTHING);
	if (!u->mux)
		log_info("libcurl %s pauses whole HTTP/2 connections: one "
		    "connection per upstream request (HTTP/1.1 for answers that "
		    "are not streams)",
		    curl_version_info(CURLVERSION_NOW)->version);
	/* Idle connections kept for reuse: as many as requests may be in
	 * flight, so that a busy agent (one connection per request where
	 * HTTP/2 does not multiplex) never closes one to open another with a
	 * new TLS handshake (64 made c=256 cost a handshake per request). */
	curl_multi_setopt(u->multi, CURLMOPT_MAXCONNECTS, (long)AG_UP_CONNS_MAX);
	curl_multi_setopt(u->multi, CURLMOPT_SOCKETFUNCTION, on_socket);
	curl_multi_setopt(u->multi, CURLMOPT_SOCKETDATA, u);
	curl_multi_setopt(u->multi, CURLMOPT_TIMERFUNCTION, on_timer);
	curl_multi_setopt(u->multi, CURLMOPT_TIMERDATA, u);
	return u;
fail:
	ag_up_free(u);
	return NULL;
}

void
ag_up_free(struct ag_upstream *u)
{
	struct up_ev *n;
	struct up_req *r, *cancels;

	if (u == NULL)
		return;
	/* The driver no longer runs us.  Drop the cancelled, abort the
	 * rest without events; what is left is referenced by the hash (the
	 * start queue's records are in it too) or the event queue. */
	lock(u);
	u->stop = 1;
	cancels = u->cq;
	u->cq = NULL;
	unlock(u);
	run_cancels(u, cancels);
	while (u->active != NULL) {
		r = u->active;
		lock(u);
		r->cancelled = 1;
		unlock(u);
		detach(u, r, 1);
	}
	while ((n = u->eq_head) != NULL) {
		u->eq_head = n->next;
		ev_free_node(n);
	}
	for (unsigned i = 0; i < HASH_SIZE; i++)
		while ((r = u->hash[i]) != NULL) {
			u->hash[i] = r->hnext;
			req_free(r);
		}
	while (u->toks != NULL) {	/* their waiters went with the hash */
		struct up_tok *k = u->toks;

		u->toks = k->next;
		sodium_memzero(&k->t, sizeof(k->t));
		free(k);
	}
	while (u->npool > 0)
		curl_easy_cleanup(u->pool[--u->npool]);
	if (u->multi != NULL)
		curl_multi_cleanup(u->multi);
	if (u->share != NULL)		/* after every transfer that used it */
		curl_share_cleanup(u->share);
	if (u->epfd >= 0)
		close(u->epfd);
	free(u->fdst);
#if SWB_TEST_BUILD
	curl_slist_free_all(u->connect_to);
#endif
	pthread_mutex_destroy(&u->mu);
	free(u);
	curl_global_cleanup();
}
