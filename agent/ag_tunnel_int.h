/*
 * agent/ag_tunnel_int: what the files of agentd's tunnel share and nobody
 * else sees: the tunnel (struct ag_tunnel), its links to the hub (struct
 * ag_link), and the calls between them — ag_tunnel.c (the links and the
 * loop), ag_stream.c (relayed streams), ag_bill.c (billing on stream 0),
 * ag_ledq.c (the hub's ledger frames, a slice a turn) and ag_status.c
 * (hello, metrics, the local page's status).  The public API is
 * agent/ag_tunnel.h.  Everything here is lws thread only: no field needs
 * a lock; the comments say which file writes it.
 */
#ifndef SWB_AG_TUNNEL_INT_H
#define SWB_AG_TUNNEL_INT_H

#include <stddef.h>
#include <stdint.h>
#include <libwebsockets.h>
#include <jansson.h>
#include "agent/ag_tunnel.h"
#include "agent/ag_bucket.h"
#include "agent/ag_caps.h"
#include "agent/ag_conf.h"
#include "agent/ag_metrics.h"
#include "agent/ag_probe.h"
#include "agent/ag_uploop.h"
#include "lib/frame.h"
#include "lib/ltimer.h"
#include "lib/outq.h"
#include "lib/tunauth.h"

#define AG_STREAM_BUCKETS 4096	/* stream index buckets (power of 2) */
#define AG_LEDGER_TICK	1000		/* ms between usage report walks */

struct ag_stream;			/* ag_stream.c's own */
struct ledger_entry;
struct ag_receipt_result;

enum link_state { LK_IDLE, LK_CONNECTING, LK_AUTH, LK_ONLINE };

/*
 * One agent identity's connection to the hub.  Written by ag_tunnel.c
 * unless a field says otherwise; the other files read what they need
 * (state, wsi, agent_id, t; ag_status.c hub_hello).
 */
struct ag_link {
	int nstreams;			/* its streams in t->streams
					   (ag_stream.c) */
	struct ag_tunnel *t;		/* ag_tunnel_add, once */
	uint64_t agent_id;		/* ag_tunnel_add, once */
	unsigned char sk[64];		/* ag_tunnel_add; zeroed by the free */
	struct lws *wsi;		/* lws (link_connect's pwsi); NULL
					   again by link_schedule */
	enum link_state state;
	unsigned attempt;		/* failed attempts since the last welcome */
	int64_t next_try;		/* monotonic ms */
	int64_t last_rx, last_ping;	/* monotonic ms */
	unsigned char exporter[TUNAUTH_EXPORTER_LEN];
	/* Frames for the hub.  A resp_chunk's tag is its upstream transfer and
	 * its credit the payload bytes, reported sent (ag_up_sent) once
	 * written.  Queued by ag_tunnel_send (any file), written and popped
	 * by ag_tunnel.c; ag_stream.c sets the tag and credit of the
	 * resp_chunk it just queued. */
	struct outq out;
	lws_dll2_t due;			/* on t->due (links_flush) */
	unsigned char *rx;
	size_t rx_len;
	/* The hub's ledger frames not applied yet, in arrival order, each
	 * as it came (ag_ledq_defer); applied a slice per turn of the loop.
	 * ledq, ledq_due and storing: ag_ledq.c only. */
	struct outq ledq;
	lws_dll2_t ledq_due;		/* on t->ledq_due while ledq holds any,
					   or while storing */
	int storing;			/* a signed receipt of this link is
					   storing its batch, a slice a turn
					   (ag_ledger_receipt_continue) */
	char last_error[160];		/* logged once until it changes */
	unsigned same_errors;
	int pin_refused;		/* set by the verify callback */
	int kicked;
	uint64_t gap_head;		/* our head when we last sent sync
					   (ag_bill.c) */
	int hub_hello;			/* the welcome said it takes hello */
	int hub_packed;			/* ... and packed messages
					   (lib/frame.h PACKING) */
#if SWB_TEST_BUILD
	unsigned char saved_auth[256];	/* AG_TEST_REPLAY */
	size_t saved_auth_len;
	int misbehaved;
#endif
};

/*
 * One lws context, its thread's loop, and every link on it.  Set up by
 * ag_tunnel_new (ag_tunnel.c) and written there unless a field says
 * otherwise.
 */
struct ag_tunnel {
	const struct ag_conf *cf;
	struct lws_context *ctx;
	struct ag_link **links;		/* ag_tunnel_add */
	int nlinks;
	int test_mode;			/* ag_tunnel_test_mode */
	struct ag_upstream *up;
	struct ag_uploop uploop;	/* runs up on this (the lws) thread */
	struct ag_stream *streams;	/* ag_stream.c */
	uint64_t next_key;		/* ag_stream.c */
	struct ltimer tick;		/* links, heartbeats: every 100 ms;
					   the usage reports and metrics due
					   by these (monotonic ms): */
	int64_t next_report_ms, next_metrics_ms;
	struct ltimer flush;		/* the ledger's grouped writes (armed
					   by ag_bill.c) */
	/* Every stream by key (upstream events) and by (link, hub's id)
	 * (frames): looked up per frame and per event.  ag_stream.c. */
	struct ag_stream *by_key[AG_STREAM_BUCKETS];
	struct ag_stream *by_id[AG_STREAM_BUCKETS];
	struct ag_ledger *lg;		/* <state_dir>/ledger.db */
	struct ag_bucket buckets[AG_MAX_CHANNELS];	/* per cf->channels[i]:
					   set here (and on channels_changed),
					   taken from by ag_stream.c */
	struct ag_caps caps;		/* the owner's caps per channel: set
					   here, admitted, released and spent
					   by ag_stream.c, priced by ag_bill.c */
	struct ag_ledger_rd *rd;	/* read-only ledger (seeding, the UI) */
	struct ag_metrics metrics;	/* its own figures per channel, counted
					   by ag_stream.c */
	struct ag_probe probe;		/* its public address, per welcome */
	struct ag_ui *ui;		/* the local page, or NULL */
	struct ag_update *upd;		/* signed self-updates (ag_update) */
	/* Links with frames queued since the last turn of the loop: written
	 * straight to the socket before the next wait (links_flush). */
	lws_dll2_owner_t due;
	int flushing;
	lws_sorted_usec_list_t sul_flush;	/* the same, for frames and
						   served records queued in
						   lws's timers (before its
						   poll) */
	/* Links with ledger frames waiting (ag_ledq_defer), and how many more
	 * this turn of the loop may still apply.  ag_ledq.c only. */
	lws_dll2_owner_t ledq_due;
	int ledger_budget;
	/* Served streams' records not written yet: queued when a stream
	 * ends, written after that turn's frames (ag_stream_served_flush),
	 * so the ledger's INSERT is not between an answer and the hub.
	 * ag_stream.c only. */
	struct ag_served *served_due;
	size_t nserved_due, served_due_cap;
};

/* ag_tunnel.c: the links and the loop. */
/* Queue e (finished and freed here) for the hub on l, written at the end
 * of this turn of the loop.  0, or -1 (logged) when l cannot take it. */
int  ag_tunnel_send(struct ag_link *l, struct frame_enc *e);
/* Act on one frame from the hub (a ledger frame when agent/ag_ledq
 * applies it).  -1: the hub broke the protocol (the link must end). */
int  ag_tunnel_on_frame(struct ag_link *l, const struct frame *f);
/* Frames and served records queued in one of lws's timers are written in
 * the same pass, before its poll (sul_flush). */
void ag_tunnel_flush_soon(struct ag_tunnel *t);

/* ag_stream.c: relayed streams. */
/* req_start, req_body, req_end, credit, ws_msg or cancel of an online
 * link.  -1: the hub broke the protocol. */
int  ag_stream_on_req(struct ag_link *l, const struct frame *f);
/* l closed: its streams' upstream calls are aborted, served ones
 * recorded. */
void ag_stream_drop_link(struct ag_link *l);
/* The upstream engine's events (arg: the tunnel), after each of its runs
 * (agent/ag_uploop). */
void ag_stream_drain_upstream(void *arg);
/* Write the served records queued since the last call (each turn of the
 * loop, once its frames are written, and before any ledger frame is
 * applied). */
void ag_stream_served_flush(struct ag_tunnel *t);
/* Every stream, at shutdown. */
void ag_stream_free_all(struct ag_tunnel *t);

/* ag_bill.c: billing on stream 0. */
/* A receipt, price_update, usage_ack, sync or dispute_result of an online
 * link. */
void ag_bill_frame(struct ag_link *l, const struct frame *f);
/* sync: the end of l's chain (at the welcome, and on a gap). */
void ag_bill_send_sync(struct ag_link *l);
/* The welcome's ledger key, learned once per agent id. */
void ag_bill_learn_key(struct ag_link *l, const struct frame *f);
/* What storing a signed receipt's batch (or a slice of it) came to, for
 * agent/ag_ledq's slices: the acks, the failure, the answer. */
void ag_bill_batch_acks(struct ag_link *l);
void ag_bill_receipt_failed(struct ag_link *l, uint64_t seq);
void ag_bill_receipt_answer(struct ag_link *l, const struct ledger_entry *e,
    const struct ag_receipt_result *r, const char *hash, size_t hlen);
/* Usage reports of served streams no receipt came for (the tick, every
 * AG_LEDGER_TICK); the grouped commit (flush) and its arming
 * (ag_ledger_group). */
void ag_bill_report_due(struct ag_tunnel *t);
void ag_bill_flush_timer(struct ltimer *lt);
void ag_bill_ledger_armed(void *arg);

/* ag_ledq.c: the hub's ledger frames, a slice a turn. */
/* f (its bytes p, len) from the hub: 1 queued, 0 apply it now, -1 the
 * link must end. */
int  ag_ledq_defer(struct ag_link *l, const struct frame *f, const void *p,
    size_t len);
/* l is going: what it held is dropped, unacked. */
void ag_ledq_drop(struct ag_link *l);
/* A new turn of the loop: its slice of the waiting frames.  Whether some
 * still wait. */
int  ag_ledq_turn(struct ag_tunnel *t);
/* l's signed receipt seq stores its batch a slice a turn from now on. */
void ag_ledq_storing(struct ag_link *l, uint64_t seq);

/* ag_status.c: what agentd says about itself. */
void ag_status_hello(struct ag_link *l);
void ag_status_probe_done(void *arg, const char *ip);	/* ag_probe's done */
json_t *ag_status_ui(void *arg);			/* ag_ui's /api/status */
/* One metrics frame per channel on every online link (the tick, every
 * AG_METRICS_EVERY_MS). */
void ag_status_metrics(struct ag_tunnel *t);

#endif
