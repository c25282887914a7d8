/*
 * gateway/gw: shared declarations of the gateway worker's modules —
 * HTTP handling (gw_http.c), the token cache (gw_token.c) and the relay
 * through the tunnel process (gw_relay.c).
 */
#ifndef SWB_GW_H
#define SWB_GW_H

#include "gateway/gw_limit.h"
#include "lib/frame.h"
#include "lib/outq.h"
#include "lib/sse.h"
#include "lib/usage.h"
#include "child/child_lws.h"
#include "child/child_peer.h"
#include "router/rt.h"

enum gw_state {
	GW_IDLE = 0,		/* between requests on a keep-alive connection */
	GW_BODY,		/* reading the request body */
	GW_TOKEN,		/* waiting for billing to know the token */
	GW_LIMIT,		/* waiting for Redis's rate-limit verdict */
	GW_MOD,			/* waiting for the moderation verdict */
	GW_CHARGE,		/* waiting for billing to reserve the estimate */
	GW_RELAY,		/* sent to the tunnel, waiting for / relaying the answer */
	GW_DONE,		/* response complete or being flushed */
};

/*
 * Flow control of a relayed response (lib/frame.h, FLOW CONTROL); written
 * by gw_relay.c only.  The gateway gives a stream's window back to the
 * tunnel (IPC_RELAY_CREDIT) as the user's socket takes the answer: of the
 * bytes received and not credited, all but those still waiting for the
 * user (pending; an answer only shrinks on its way, so pending never
 * exceeds what it came from), in batches of at least GW_FLOW_BATCH.  A
 * user who stops reading holds at most FRAME_WINDOW here, and nothing
 * anywhere else.
 */
#define GW_FLOW_BATCH	(FRAME_WINDOW / 4)
struct gw_flow {
	size_t unacked;		/* relay-chunk bytes received, not credited */
	size_t pending;		/* bytes handed to gw_reply_data*() during the
				   relay and not yet written (gw_relay_credit) */
	int waited;		/* the window ran out once (logged once) */
};

/* One HTTP request in flight; lws per-session data of the connection. */
struct gw_req {
	struct gw_req *next, *prev;	/* live requests, for async answers */
	struct lws *wsi;
	enum gw_state state;
	uint64_t reqid;
	int route;			/* index into the route table */
	char token_hash[65];
	unsigned char *body;
	size_t body_len;
	int too_big;
	char model[128];
	int stream;			/* the user asked for SSE */
	int user_usage;			/* ... and for the usage chunk */
	unsigned char *fwd;		/* body sent upstream (include_usage) */
	size_t fwd_len;
	struct rt_candidate cand[RT_MAX_CANDIDATES];
	int ncand, cur;
	/* the response */
	int status;
	char ctype[128];
	int head_queued, head_sent, final_queued;
	int chunked;			/* HTTP/1.1 stream: chunk framing */
	int sse_mode;
	struct sse sse;
	struct usage usage;
	unsigned char *sniff;		/* non-SSE answer, kept for its usage */
	size_t sniff_len;
	struct outq out;		/* response pieces waiting for the socket */
	int paused;			/* interim: see gw_relay_flow() */
	struct gw_flow flow;		/* the relay's credit (gw_relay.c) */
	int64_t mod_deadline;		/* monotonic: verdict due */
	int64_t started_ms;
	struct gw_lim lim;		/* rate limits (gw_limit.c) */
	/* the charge against the token's quota (gw_token.c) */
	uint64_t token_id;
	uint64_t charge_id;		/* the first reqid: billing's key */
	int charge;			/* enum gw_charge_state */
	int64_t charge_deadline;	/* monotonic: billing's answer due */
	struct usage agent_usage;	/* what the agent's resp_end said */
	int relayed;			/* a relay was started at least once */
};

enum gw_charge_state { GW_CH_NONE = 0, GW_CH_ASKED, GW_CH_RESERVED,
	GW_CH_SETTLED, GW_CH_UNSENT /* billing away: asked when it is back */ };

void gw_set_env(struct child_env *env);
struct child_env *gw_env(void);
/* The HTTP protocol entry of this worker's lws context. */
struct lws_protocols gw_http_protocol(void);
/* Requests being served right now (drain waits for 0). */
int gw_inflight(void);
struct gw_req *gw_req_find(uint64_t reqid);
uint64_t gw_new_reqid(void);	/* worker pid << 32 | counter */
extern struct gw_req *gw_live;		/* every request in flight */

/* Responses (gw_http.c): queue, then written when the socket is writable. */
void gw_reply_error(struct gw_req *r, unsigned status, const char *type,
    const char *code, const char *message);
void gw_reply_head(struct gw_req *r, unsigned status, const char *ctype);
void gw_reply_data(struct gw_req *r, const void *p, size_t len);
/* One piece made of two parts (an event with a few bytes cut out). */
void gw_reply_data2(struct gw_req *r, const void *a, size_t alen,
    const void *b, size_t blen);
void gw_reply_end(struct gw_req *r);

/* gw_token.c: token check with a cache; calls gw_token_ready() when known. */
struct gw_token {
	uint64_t id;
	int enabled;
	int64_t expires_at, quota_micros, used_micros;
	char models[512];
	char policy[8];			/* routing: "bound", "graded", "best" */
	char min_grade;			/* graded: 'A'..'Z' */
	char channels[512];		/* bound: "AGENT_ID[:CHANNEL],..." */
	int64_t rpm, tpm;		/* per-token limits, 0 = none */
};
void gw_token_init(struct lws_vhost *vh);
void gw_token_tick(void);
/* 1: known now (*t filled), 2: known to be no token, 0: asked billing
 * (gw_token_ready later), -1: billing unreachable. */
int  gw_token_lookup(struct gw_req *r, struct gw_token *t);
void gw_token_ready(struct gw_req *r, const struct gw_token *t, int found);
/*
 * Quota charges (gw_token.c, on the billing peer).  gw_charge_reserve asks
 * billing to reserve r's estimate (r waits in GW_CHARGE; then
 * gw_charge_reserved() or an error reply); -1: billing unreachable.
 * gw_charge_settle posts how r ended (enum ipc_post_how: the usage the hub
 * read, the agent's, the hub's estimate awaiting the agent's report, or a
 * void); only the first call per request does anything.  Posts are kept
 * until billing acknowledges them and sent again after billing restarts.
 */
int  gw_charge_reserve(struct gw_req *r);
void gw_charge_settle(struct gw_req *r);
/* "NONCE-REQID": billing's key of r's charge, the ledger's request id,
 * the user's x-request-id. */
void gw_charge_key(const struct gw_req *r, char *out, size_t len);
/* Posts billing has not acknowledged (a drain waits for them). */
int  gw_posts_pending(void);
/* gw_http.c: the estimate is reserved; relay r. */
void gw_charge_reserved(struct gw_req *r);

/* gw_mod.c */
void gw_mod_init(struct lws_vhost *vh);
void gw_mod_tick(void);
/* 0: nothing to check (go on); 1: asked (gw_mod_passed() or a reply). */
int  gw_mod_check(struct gw_req *r);
/* gw_http.c: the request passed moderation; relay it. */
void gw_mod_passed(struct gw_req *r);

/* gw_relay.c */
void gw_relay_init(struct lws_vhost *vh);
void gw_relay_tick(void);
/* Send r to r->cand[r->cur].  -1 when the tunnel process is unreachable. */
int  gw_relay_send(struct gw_req *r);
void gw_relay_cancel(struct gw_req *r);
/*
 * Flow control.  The HTTP layer calls gw_relay_credit(r, n) each time it
 * has written n bytes of r's response body to the user's socket, n
 * counted as they were given to gw_reply_data()/gw_reply_data2() (its own
 * chunk or frame overhead not included).  Nothing is needed at the end of
 * a request.  Any time is fine, also outside a relay.
 */
void gw_relay_credit(struct gw_req *r, size_t n);
/*
 * Interim, until gw_http.c calls gw_relay_credit(): it calls
 * gw_relay_flow(r, 0) after writing each piece while r->paused and less
 * than GW_OUT_LOW bytes are queued (gw_relay.c keeps r->paused set during
 * a relay), and gw_relay_flow(r, 1) above GW_OUT_HIGH; both take what
 * r->out still holds as the bytes not yet written.
 */
#define GW_OUT_HIGH	FRAME_WINDOW
#define GW_OUT_LOW	SIZE_MAX
void gw_relay_flow(struct gw_req *r, int paused);

#endif
