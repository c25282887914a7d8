/*
 * agent/ag_upstream: agentd's upstream engine — the HTTPS calls to the
 * providers' official endpoints that the hub relays through the tunnel.
 * One libcurl multi handle, driven by curl_multi_socket_action over an
 * epoll set (ag_up_fd) that its driver watches; the driver calls
 * ag_up_run() when that set is readable, when the timer it was asked for
 * expires, and soon after a kick.  The driver's thread is the "curl
 * side"; the "lws side" hands requests in and drains response events out
 * through two mutex-protected queues.  In agentd both sides are the lws
 * thread (agent/ag_uploop adopts the epoll set into lws), so a request
 * costs no thread hop; the unit test drives the engine from a thread of
 * its own.  Nothing here calls libwebsockets or blocks.
 *
 *   lws side                            curl side (ag_up_run)
 *   ag_up_start() ---- requests --->    easy handle added; kick()
 *   ag_up_cancel()---- cancels ---->    removes the easy handle (closes
 *                                       the connection if unfinished)
 *   ag_up_next_event() <-- events ---   HEAD, DATA..., END; then wake()
 *   ag_up_credit(),
 *   ag_up_sent()     ---- credit --->   un-pauses a transfer held back
 *
 * The URL, auth and path allow-list come from the provider adapters
 * (agent/ag_prov.h).  Only https to an adapter's compiled-in official
 * hosts is ever contacted; no redirect is followed.  In test builds
 * (SWB_TEST_BUILD) [test] ca_file and connect_to apply; release builds do
 * not contain that code.
 */
#ifndef SWB_AG_UPSTREAM_H
#define SWB_AG_UPSTREAM_H

#include <stddef.h>
#include <stdint.h>
#include "agent/ag_conf.h"
#include "lib/frame.h"

/*
 * Back-pressure, two bounds (each may be overshot by one curl block):
 *  - per request, the bytes of response data handed to the lws side
 *    and not yet credited (ag_up_credit): the stream's window, whose
 *    credit comes from the hub as its user reads (lib/frame.h, FLOW
 *    CONTROL).  At AG_UP_REQ_QUEUE_MAX = FRAME_WINDOW the transfer pauses,
 *    so a stream whose user stopped reading costs this process at most
 *    about one block while its window sits at the hub.
 *  - over all requests, the bytes handed over and not yet sent
 *    (ag_up_sent): what this process itself holds.  It stays under the
 *    tunnel's out-queue cap (8 MiB a link).  Data at the hub does not
 *    count, so stalled users never hold other streams back.
 * A paused transfer resumes when its own count is under half of
 * AG_UP_REQ_QUEUE_MAX and the total under half of AG_UP_TOTAL_QUEUE_MAX.
 */
#define AG_UP_REQ_QUEUE_MAX	FRAME_WINDOW
#define AG_UP_TOTAL_QUEUE_MAX	(6u << 20)
#define AG_UP_BODY_MAX		(32u << 20)	/* request bodies */
#define AG_UP_INFLIGHT_MAX	16384		/* requests at once (>= AG_STREAMS_MAX) */
#define AG_UP_CONNS_MAX		1024	/* idle upstream connections kept */
#define AG_UP_CONNECT_TIMEOUT_MS 15000
#define AG_UP_IDLE_TIMEOUT_S	300	/* no byte for this long: abort */

struct ag_upstream;

enum ag_up_ev_type { AG_UP_HEAD, AG_UP_DATA, AG_UP_END };

/*
 * One response event, filled by ag_up_next_event() (the lws side owns
 * it from then on).  Per request: at most one HEAD, before any DATA;
 * DATA blocks in order, exactly as curl delivered them; exactly one END
 * last (unless the request was cancelled: then nothing more at all).
 */
struct ag_up_event {
	uint64_t key;			/* as given to ag_up_start() */
	enum ag_up_ev_type type;
	long status;			/* HEAD, END: HTTP status (0 if none) */
	char content_type[128];		/* HEAD: response Content-Type or "" */
	unsigned char *data;		/* DATA: malloc'd, owned by the event */
	size_t len;
	int ok;				/* END: 1 the exchange completed (any
					   status), 0 transport error */
	char error[160];		/* END with ok == 0: what went wrong */
};

/*
 * The driver's side of the engine; each callback may be NULL.
 *  wake:  from the curl side, events became available (at most once
 *         until ag_up_next_event() has returned 0 again).
 *  kick:  from the lws side, work was queued: call ag_up_run() soon.
 *  timer: from the curl side (inside ag_up_run): call ag_up_run() in ms
 *         milliseconds (0: at once), replacing the previous request (a
 *         run sooner than asked is harmless: ag_up_next_run_ms() tells
 *         what is left).
 *         Never more than AG_UP_POLL_MS.  Token refreshes are checked per
 *         run, so the driver also runs the engine every AG_UP_POLL_MS
 *         when nothing else does (a fired timer re-arms that long).
 */
#define AG_UP_POLL_MS	1000
struct ag_up_loop {
	void (*wake)(void *arg);
	void (*kick)(void *arg);
	void (*timer)(void *arg, long ms);
	void *arg;
};

/*
 * Make the engine.  cf is read here only (the [test] keys, in test
 * builds); channels are passed per request.  Returns NULL with err filled
 * on failure.
 */
struct ag_upstream *ag_up_new(const struct ag_conf *cf,
    const struct ag_up_loop *loop, char *err, size_t errlen);

/* The epoll descriptor of curl's sockets: readable means ag_up_run() has
 * work.  It stays the engine's (close a dup if the driver's poller closes
 * what it watches). */
int ag_up_fd(const struct ag_upstream *u);
/* The driver's side, between runs: ms until the engine wants its next
 * run — curl's next timeout, at most AG_UP_POLL_MS (0: due now). */
long ag_up_next_run_ms(const struct ag_upstream *u);

/* The curl side's turn: take queued starts, cancels and credit, act on
 * ready sockets and due timeouts, queue the events.  Never blocks.  io:
 * the driver saw the epoll set readable; 0 (a kick, a timer) skips
 * asking the set, whose readiness the driver watches anyway (level-
 * triggered: what is ready brings a run with io = 1). */
void ag_up_run(struct ag_upstream *u, int io);

/* Abort every transfer, free everything; the driver has stopped calling
 * ag_up_run().  No events are delivered for the aborted transfers.  NULL
 * is fine. */
void ag_up_free(struct ag_upstream *u);

/*
 * lws side: queue a request on channel ch.  key is the caller's id for
 * it, unique among requests in flight (a request is in flight until its
 * END has been taken or it was cancelled).  method is "GET" or "POST";
 * path must be one the channel's adapter allows; content_type (may be
 * NULL or "": POST then sends application/json) is the only hub header
 * relayed; the body is copied.  The adapter adds the provider's auth.
 * Returns 0, or -1 with err filled and nothing started (unknown provider,
 * path refused, bad key, duplicate key, too many requests, ...).  err
 * never contains the provider key.
 */
int ag_up_start(struct ag_upstream *u, uint64_t key,
    const struct ag_channel *ch, const char *method, const char *path,
    const char *content_type, const void *body, size_t len, char *err,
    size_t errlen);

/*
 * lws side: as ag_up_start(), for operation op of lib/prov.h (what the
 * hub's req_start names): the channel's adapter makes the method and the
 * path (op_path), sees op when it adds its headers (Anthropic's version
 * and beta), and when the channel maps op->model to another provider id
 * the body's top-level "model" is set to that id (JSON bodies of
 * adapters that carry the model in the body; every other byte kept).
 */
struct ag_prov_op;
int ag_up_start_op(struct ag_upstream *u, uint64_t key,
    const struct ag_channel *ch, const struct ag_prov_op *op,
    const char *content_type, const void *body, size_t len, char *err,
    size_t errlen);

/* lws side: abort the request: no more events for key, even ones
 * already queued; the curl side drops the transfer (and its connection
 * if the response was unfinished) at its next run.  Unknown keys are
 * ignored. */
void ag_up_cancel(struct ag_upstream *u, uint64_t key);

/*
 * lws side: take the next event into *ev: 1, or 0 when there is none.
 * After each wake, call it until it returns 0 (the next wake only comes
 * for events queued after that).  Release each event with
 * ag_up_event_free().
 */
int ag_up_next_event(struct ag_upstream *u, struct ag_up_event *ev);
void ag_up_event_free(struct ag_up_event *ev);

/* lws side: n DATA bytes of key were credited (the hub's window came
 * back) / sent (left this process for the tunnel, or were dropped) /
 * both at once.  Every DATA byte should be reported once each way; bytes
 * of a request whose END was taken or that was cancelled no longer count,
 * and reporting them is harmless. */
void ag_up_credit(struct ag_upstream *u, uint64_t key, size_t n);
void ag_up_sent(struct ag_upstream *u, uint64_t key, size_t n);
void ag_up_consumed(struct ag_upstream *u, uint64_t key, size_t n);

#if SWB_TEST_BUILD
/* Tests only: other back-pressure bounds (call before any request). */
void ag_up_test_limits(struct ag_upstream *u, size_t req_max,
    size_t total_max);
#endif

#endif
