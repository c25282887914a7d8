/*
 * agent/ag_upstream: agentd's upstream engine, its multi/loop core.  Owns
 * the curl multi handle (driven by socket_action over an epoll set its
 * driver watches), the sockets curl opens and closes through it and their
 * place in that set, curl's socket and timer callbacks, the run
 * (ag_up_run: queued starts and cancels, ready sockets, due timeouts,
 * finished transfers, the driver's next timer), a transfer's life in the
 * multi (start, one retry on a fresh connection, end, removal), the
 * active list with the connection accounting that follows it
 * (MAXCONNECTS), the pool of reset easy handles, and making and freeing
 * the engine ([test] ca_file and connect_to in test builds).  No
 * libwebsockets call is made here.  The "curl side" is whatever thread
 * calls ag_up_run() (agentd: the lws side itself; the unit test: a
 * driver thread of its own); the "lws side" calls the rest.
 *
 * The engine's other files, and what they share, are listed in
 * agent/ag_upstream_int.h: building a request (ag_up_req.c), reading a
 * response (ag_up_resp.c), access tokens (ag_up_tok.c), the records and
 * the queues between the two sides (ag_up_queue.c).
 */
#include "agent/ag_upstream_int.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sodium.h>
#include "lib/clock.h"
#include "lib/curlca.h"
#include "lib/log.h"

#define EV_BATCH	64	/* epoll events taken per ag_up_run() */
#define TIMER_ROUNDS	4	/* curl timeouts run per ag_up_run() */

/* ---- curl side */

/*
 * libcurl (7.88) counts the connections in use against MAXCONNECTS as
 * well, and every transfer that ends while the count is over it walks
 * every connection for an idle one to close: with thousands of streams
 * open, each stream's end walked thousands of connections.  The limit
 * follows the transfers in flight, so that it bounds what
 * AG_UP_CONNS_MAX means: idle connections kept.
 */
void
up_active_add(struct ag_upstream *u, struct up_req *r)
{
	r->rx_ms = u->run_ms;		/* always inside a run */
	r->up_seen = 0;
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
void
up_detach(struct ag_upstream *u, struct up_req *r, int abort)
{
	int fr;

	if (r->parked != NULL) {
		up_tok_unpark(r);
		up_lock(u);
		fr = up_req_unref_locked(r);
		up_unlock(u);
		if (fr)
			up_req_free(r);
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
	 * up_on_write, which drops it (the request is cancelled or done).
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

	up_lock(u);
	up_pause_clear_locked(u, r);
	fr = up_req_unref_locked(r);
	up_unlock(u);
	if (fr)
		up_req_free(r);
}

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

void
up_start_one(struct ag_upstream *u, struct up_req *r)
{
	char err[160];
	CURLMcode mc;

	if (r->want_token && !up_tok_ready(u, r))
		return;
	r->errbuf[0] = '\0';
	if (up_easy_setup(u, r, err, sizeof(err)) == 0) {
		up_active_add(u, r);
		if ((mc = curl_multi_add_handle(u->multi, r->easy)) == CURLM_OK)
			return;
		snprintf(err, sizeof(err), "curl: %s", curl_multi_strerror(mc));
		up_push_end(r, 0, 0, err);
		up_detach(u, r, 0);
		return;
	}
	up_refuse(u, r, err);
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
	/* Not restarted: it ends with this error (up_detach's remove of a
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
		up_tok_done(u, r, res);
		return;
	}
	if (res != CURLE_OK && retry_fresh(u, r, res))
		return;
	curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &code);
	/* Ended while paused: curl would still hold the answer's last
	 * bytes.  7.88 does not finish a paused transfer (test
	 * test_mock_stream_h1_held pauses one at each of its events); 8.3.0
	 * did, over HTTP/2.  Un-pausing hands them to up_on_write, which takes
	 * them whatever the bounds: they are the last. */
	if (r->cpaused) {
		r->cpaused = 0;
		r->flushing = 1;
		curl_easy_pause(r->easy, CURLPAUSE_CONT);
	}
	if (res == CURLE_OK) {
		up_push_head(r);
		up_push_end(r, code, 1, NULL);
	} else {
		if (r->oom)
			snprintf(err, sizeof(err), "out of memory");
		else if (r->errbuf[0] != '\0')
			snprintf(err, sizeof(err), "%.*s",
			    (int)sizeof(err) - 1, r->errbuf);
		else
			snprintf(err, sizeof(err), "%s", curl_easy_strerror(res));
		log_msg(LOG_LVL_INFO, r->key, "upstream %s: %s", r->prov, err);
		up_push_end(r, code, 0, err);
	}
	up_detach(u, r, 0);
}

/*
 * The epoll set keeps a provider connection between its transfers.
 * curl removes a connection's socket when its transfer ends and adds it
 * again when the next transfer reuses it: two epoll_ctl calls a request
 * for nothing.  For the sockets curl opened through up_on_open (so that
 * their close, up_on_close, is seen too) the removal is lazy: the socket
 * stays in the set, marked unwatched, and the next add with the same
 * events costs no system call.  An event on an unwatched socket (the
 * provider closed an idle connection) takes it out then (ag_up_run).
 * Other descriptors curl may report (a resolver's) go in and out at once.
 */
#define SK_OURS		0x01	/* opened by up_on_open, not yet closed */
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
curl_socket_t
up_on_open(void *userp, curlsocktype purpose, struct curl_sockaddr *a)
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
int
up_on_close(void *userp, curl_socket_t s)
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
	up_lock(u);
	stop = u->stop;		/* ag_up_free() began: the driver is gone */
	up_unlock(u);
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
		up_detach(u, r, 1);
		up_lock(u);
		fr = up_req_unref_locked(r);
		up_unlock(u);
		if (fr)
			up_req_free(r);
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

/*
 * Once a second: a transfer that received nothing for u->idle_ms ends
 * with an error, as curl's low-speed check did (one byte a second over
 * AG_UP_IDLE_TIMEOUT_S).  One that is still sending its request body
 * counts as busy; one paused (the hub's window is full) waits for the
 * hub, not the provider, and its clock starts again on resume.
 */
static void
idle_sweep(struct ag_upstream *u)
{
	struct up_req *r, *next;
	curl_off_t sent;

	if (u->run_ms < u->idle_next_ms)
		return;
	u->idle_next_ms = u->run_ms + 1000;
	for (r = u->active; r != NULL; r = next) {
		next = r->anext;
		if (r->cpaused || r->easy == NULL) {
			r->rx_ms = u->run_ms;
			continue;
		}
		if (u->run_ms - r->rx_ms < u->idle_ms)
			continue;
		if (curl_easy_getinfo(r->easy, CURLINFO_SIZE_UPLOAD_T,
		    &sent) == CURLE_OK && sent != r->up_seen) {
			r->up_seen = sent;
			r->rx_ms = u->run_ms;
			continue;
		}
		snprintf(r->errbuf, sizeof(r->errbuf), "no data from the "
		    "provider for %lld s", (long long)(u->idle_ms / 1000));
		finish_one(u, r, CURLE_OPERATION_TIMEDOUT);
	}
}

void
ag_up_run(struct ag_upstream *u, int io)
{
	struct epoll_event ev[EV_BATCH];
	struct up_req *starts, *cancels, *r, *next;
	int running, resume, n, i, flags;
	CURLMcode mc;

	up_lock(u);
	starts = u->sq_head;
	for (r = starts; r != NULL; r = r->qnext)
		r->in_sq = 0;
	u->sq_head = u->sq_tail = NULL;
	cancels = u->cq;
	u->cq = NULL;
	resume = u->resume_check;
	up_unlock(u);
	u->run_ms = clock_mono_ms();

	run_cancels(u, cancels);
	for (r = starts; r != NULL; r = next) {
		next = r->qnext;
		r->qnext = NULL;
		up_start_one(u, r);
	}
	if (resume)
		up_resume_scan(u);
	up_tok_tick(u);

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
	up_trim_run(u);
	run_done(u);
	idle_sweep(u);
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

/* ------------------------------------------------------------ life */

#if SWB_TEST_BUILD
void
ag_up_test_limits(struct ag_upstream *u, size_t req_max, size_t total_max)
{
	up_lock(u);
	u->req_max = req_max;
	u->total_max = total_max;
	up_unlock(u);
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
	u->idle_ms = (int64_t)AG_UP_IDLE_TIMEOUT_S * 1000;
	pthread_mutex_init(&u->mu, NULL);
#if SWB_TEST_BUILD
	{
		/* Test builds only: a shorter idle timeout (ms). */
		const char *v = getenv("SWB_TEST_UP_IDLE_MS");

		if (v != NULL && atol(v) > 0)
			u->idle_ms = atol(v);
	}
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
	up_lock(u);
	u->stop = 1;
	cancels = u->cq;
	u->cq = NULL;
	up_unlock(u);
	run_cancels(u, cancels);
	while (u->active != NULL) {
		r = u->active;
		up_lock(u);
		r->cancelled = 1;
		up_unlock(u);
		up_detach(u, r, 1);
	}
	while ((n = u->eq_head) != NULL) {
		u->eq_head = n->next;
		up_ev_free_node(n);
	}
	for (unsigned i = 0; i < HASH_SIZE; i++)
		while ((r = u->hash[i]) != NULL) {
			u->hash[i] = r->hnext;
			up_req_free(r);
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
