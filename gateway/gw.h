/*
 * gateway/gw: shared declarations of the gateway worker's modules.
 *
 *   gw_h1.c      the user port's HTTP/1.1 connections (own parser, gw_h1p)
 *   gw_lws.c     TLS connections (HTTP/2 and 1.1 through libwebsockets)
 *   gw_req.c     a request's life: the index by id, the response queue
 *                and the writer both transports share, timeouts
 *   gw_route.c   the route table (method + path -> surface, operation)
 *                and the surfaces' body parsers
 *   gw_err.c     every refusal in the surface's own error shape
 *   gw_stage.c   the stage table a request walks (authenticate, read the
 *                body, parse, route, limit, moderate, reserve, relay,
 *                settle), each stage returning go / wait / stop
 *   gw_token.c   token cache, quota reservations and posts (billing peer)
 *   gw_limit.c   rate limits; gw_mod.c moderation; gw_relay.c the tunnel
 *                peer; gw_resp.c the answer: usage, translation, retries
 */
#ifndef SWB_GW_H
#define SWB_GW_H

#include "gateway/gw_limit.h"
#include "lib/frame.h"
#include "lib/jscan.h"
#include "lib/evstream.h"
#include "lib/outq.h"
#include "lib/prov.h"
#include "lib/sse.h"
#include "lib/usage.h"
#include "child/child_lws.h"
#include "child/child_peer.h"
#include "router/rt.h"

struct gw_conn;
struct gw_route;
struct gw_surface;
struct gw_rt;
struct xl_stream;

/* The stages of a request (gw_stage.c), in order. */
enum gw_stage {
	GW_ST_AUTH = 0,		/* token from the headers, before any body */
	GW_ST_BODY,		/* read the body (within the worker's budget) */
	GW_ST_PARSE,		/* the surface's parser: model, stream */
	GW_ST_ROUTE,		/* candidate channels that can do the op */
	GW_ST_LIMIT,		/* rpm/tpm (may wait for Redis) */
	GW_ST_MODERATE,		/* may wait for the moderation process */
	GW_ST_RESERVE,		/* quota reservation (waits for billing) */
	GW_ST_RELAY,		/* through the tunnel; waits for the answer */
	GW_ST_SETTLE,		/* post the charge; the answer ends */
	GW_ST_DONE,		/* replied (or refused); flushing */
	GW_NSTAGES
};

/* What a stage says. */
enum gw_verdict {
	GW_GO = 0,		/* done: the next stage runs */
	GW_WAIT,		/* an answer will come: gw_resume() then */
	GW_STOP,		/* a reply was queued (refusal or answer) */
};

enum gw_transport { GW_TR_H1 = 0, GW_TR_LWS };

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

/*
 * Flow control of a relayed response (lib/frame.h, FLOW CONTROL); written
 * by gw_relay.c (unacked, waited) and gw_req.c (pending).  The gateway
 * gives a stream's window back to the tunnel (IPC_RELAY_CREDIT) as the
 * user's socket takes the answer: of the bytes received and not credited,
 * all but those still waiting for the user, in batches of at least
 * GW_FLOW_BATCH.  A user who stops reading holds at most FRAME_WINDOW of
 * relayed bytes here (a translated answer is counted as it was written to
 * the user, so one that grows on its way waits until it shrank), and
 * nothing anywhere else.
 */
#define GW_FLOW_BATCH	(FRAME_WINDOW / 4)
struct gw_flow {
	size_t unacked;		/* relay-chunk bytes received, not credited */
	size_t pending;		/* bytes queued for the user, not yet written */
	int waited;		/* the window ran out once (logged once) */
};

/* One HTTP request.  Writers: the transport fills the request side,
 * gw_stage.c owns stage/waiting, the modules their own parts. */
struct gw_req {
	struct gw_req *next, *prev;	/* live requests (ticks walk them) */
	struct gw_req *hnext;		/* index by reqid (gw_req_find) */
	enum gw_transport tr;
	struct gw_conn *conn;		/* its connection (either transport) */
	struct lws *wsi;
	uint64_t reqid;
	enum gw_stage stage;
	int waiting;			/* the stage waits for an answer */
	int running;			/* a stage is running (gw_run) */
	int early;			/* gw_resume() came while it ran */
	enum gw_verdict early_v;
	int body_complete;		/* the whole body arrived */
	struct gw_token tok;		/* the token (stage AUTH) */
	const struct gw_route *route;
	const struct gw_surface *surface;
	int op;				/* enum prov_op the user asked for */
	char token_hash[65];
	unsigned char *body;
	size_t body_len;
	int64_t body_budget;		/* bytes of the worker's budget held */
	char model[128];
	char path_model[128];		/* the model named in the path */
	char anthropic_version[32], anthropic_beta[128];
	char req_ctype[128];		/* the request's Content-Type */
	int stream;			/* the user asked for a stream */
	int user_usage;			/* ... and for the usage chunk */
	int http10;			/* the client speaks HTTP/1.0 */
	unsigned char *fwd;		/* body sent upstream */
	size_t fwd_len;
	int fwd_op;			/* enum prov_op sent upstream */
	int xlate;			/* translated: user dialect != provider's */
	enum prov_dialect up_dialect;	/* the current attempt's provider */
	struct xl_stream *xs;		/* stream translator of this attempt */
	struct rt_candidate cand[RT_MAX_CANDIDATES];
	int ncand, cur;
	/* the response */
	int status;
	char ctype[128];
	int head_queued, head_sent, final_queued;
	int chunked;			/* HTTP/1.1 stream: chunk framing */
	int pieces_sent;		/* pieces written after the head */
	int close_after;		/* close the connection after this answer */
	int sse_mode;
	struct sse sse;
	int evs_mode;			/* AWS event-stream answer (Bedrock) */
	struct evs evs;
	char errtype[64];		/* Bedrock surface: x-amzn-errortype */
	struct usage usage;
	unsigned char *sniff;		/* non-SSE answer, kept for its usage */
	size_t sniff_len;
	struct outq out;		/* response pieces waiting for the socket */
	struct gw_flow flow;		/* the relay's credit */
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
	int64_t head_ms;		/* monotonic: response head queued */
	struct gw_rt *rt;		/* a Realtime session after its 101 (gw_rt.c) */
	/* billing's answer to the post, for the access line (gw_token.c) */
	int posted;			/* it answered */
	uint32_t posted_state;		/* enum ipc_posted_state */
	int64_t posted_amount;
	int64_t est_video_seconds;	/* a video create's (gw_video.c) */
	char job_bound[64];		/* a video follow-up: "AGENT:CHANNEL" */
};

enum gw_charge_state { GW_CH_NONE = 0, GW_CH_ASKED, GW_CH_RESERVED,
	GW_CH_SETTLED, GW_CH_UNSENT /* billing away: asked when it is back */ };

/* ---- gw_req.c ---------------------------------------------------------- */
void gw_set_env(struct child_env *env);
struct child_env *gw_env(void);
int gw_inflight(void);			/* requests being served (drain) */
struct gw_req *gw_req_find(uint64_t reqid);
uint64_t gw_new_reqid(void);		/* worker pid << 32 | counter */
int32_t gw_pid(void);			/* this worker's, asked once */
extern struct gw_req *gw_live;		/* every request in flight */
/* A transport has a new request's head: index it, start its stages. */
void gw_req_begin(struct gw_req *r, enum gw_transport tr, struct gw_conn *c,
    struct lws *wsi);
/* A retry got a new reqid: re-index r under it. */
void gw_req_rekey(struct gw_req *r, uint64_t reqid);
/* Forget r (the user left or the answer was written). */
void gw_req_reset(struct gw_req *r);
/* The transport may write: write what r has queued.  0, or -1 to close. */
int gw_req_writable(struct gw_req *r);
void gw_req_tick(void);
/* gw_metrics.c: count a request that ends (scoreboard metrics, access log). */
void gw_metrics_end(const struct gw_req *r);
void gw_metrics_tick(void);	/* the in-flight gauges */

/* Responses: queue, then written when the socket is writable. */
void gw_reply_head(struct gw_req *r, unsigned status, const char *ctype);
void gw_reply_data(struct gw_req *r, const void *p, size_t len);
void gw_reply_data2(struct gw_req *r, const void *a, size_t alen,
    const void *b, size_t blen);
void gw_reply_end(struct gw_req *r);
/* A complete JSON answer. */
void gw_reply_json(struct gw_req *r, unsigned status, const char *json);

/* ---- gw_err.c: refusals in the surface's shape ------------------------- */
/* kind: the OpenAI "type" (invalid_request_error, hub_error, ...);
 * code: the OpenAI "code".  The surface maps both to its own shape. */
void gw_reply_error(struct gw_req *r, unsigned status, const char *kind,
    const char *code, const char *message);
/* The same for a request that has no surface yet (bad framing). */
void gw_err_body(const struct gw_surface *s, unsigned status, const char *kind,
    const char *code, const char *message, char *out, size_t outlen);

/* ---- transports --------------------------------------------------------- */
/* Request-side accessors (either transport).  Header names lowercase.
 * Copy the value into out (NUL-terminated): its length, or -1 absent. */
int gw_hdr(struct gw_req *r, const char *lname, char *out, size_t outlen);
int gw_query(struct gw_req *r, const char *name, char *out, size_t outlen);
/* The body may be read now (the token passed). */
void gw_body_want(struct gw_req *r);
/* The body arrived (either transport): stage BODY goes on. */
void gw_body_data(struct gw_req *r, const void *p, size_t len);
void gw_body_done(struct gw_req *r);
/* A response head and pieces, written by the transport. */
struct gw_head {
	unsigned status;
	int n;
	struct { const char *name; char value[160]; } h[12];
};
int gw_tr_write_head(struct gw_req *r, const struct gw_head *h);
int gw_tr_write(struct gw_req *r, const void *p, size_t len, int final);
void gw_tr_want_write(struct gw_req *r);
/* The answer was written: the transport goes on with the connection
 * (next pipelined request, keep-alive or close).  0, or -1 to close. */
int gw_tr_done(struct gw_req *r);

/* gw_h1.c */
struct lws_protocols gw_h1_protocol(void);
void gw_h1_tick(void);
int  gw_h1_hdr(struct gw_req *r, const char *lname, char *out, size_t outlen);
int  gw_h1_query(struct gw_req *r, const char *name, char *out, size_t outlen);
void gw_h1_body_want(struct gw_req *r);
/* p has LWS_PRE bytes of headroom when len > 32. */
int  gw_h1_write(struct gw_req *r, const void *p, size_t len);
/* The head (and, when body is not NULL, the whole body) in one write. */
int  gw_h1_write_head(struct gw_req *r, const struct gw_head *h,
    const void *body, size_t blen);
int  gw_h1_done(struct gw_req *r);
/* Write r's queued answer at the end of this turn of the loop. */
void gw_h1_want_write(struct gw_req *r);
/* The end of a turn: write what was queued in it (gw_h1_want_write). */
void gw_h1_flush(void);
/* gw_tls.c: TLS connections to gw_h1 (HTTP/1.1) or gw_lws (h2 offered) */
struct lws_protocols gw_tls_hello_protocol(void);
struct lws *gw_tls_adopt(struct child_lws *cl, int fd);
int gw_tls_init(struct child_lws *cl);

/* gw_lws.c */
struct lws_protocols gw_lws_protocol(void);
int  gw_lws_hdr(struct gw_req *r, const char *lname, char *out, size_t outlen);
int  gw_lws_query(struct gw_req *r, const char *name, char *out, size_t outlen);
int  gw_lws_write_head(struct gw_req *r, const struct gw_head *h);
int  gw_lws_write(struct gw_req *r, const void *p, size_t len, int final);
int  gw_lws_done(struct gw_req *r);
/* Bodies in flight share one budget per worker ([gateway] body_budget). */
int  gw_budget_take(struct gw_req *r, int64_t bytes);	/* 0 or -1 */
void gw_budget_give(struct gw_req *r);

/* ---- gw_route.c -------------------------------------------------------- */
struct gw_surface {
	const char *name;		/* "openai", "anthropic" */
	enum prov_dialect dialect;	/* of its chat bodies */
	/* The error body of this surface. */
	void (*error)(char *out, size_t outlen, unsigned status,
	    const char *kind, const char *code, const char *message);
	/* The x-amzn-errortype of an error with this status (Bedrock), or
	 * NULL for surfaces that send no such header. */
	const char *(*errtype)(unsigned status);
};
extern const struct gw_surface gw_surface_openai, gw_surface_anthropic,
    gw_surface_bedrock;
extern const struct gw_surface gw_surface_gemini;

enum gw_route_flags {
	GW_RF_BODY = 1,			/* reads a JSON body */
	GW_RF_NOAUTH = 2,		/* no token needed (healthz) */
	GW_RF_RELAY = 4,		/* relayed to a channel */
	GW_RF_FORM = 8,			/* multipart/form-data (JSON otherwise) */
	GW_RF_FORM_OR_JSON = 16,	/* either; the parser gets NULL for a form */
};

/*
 * A JSON body's root members the route parsers read: filled by
 * gw_body_read (st_parse), read by the parsers.
 */
enum gw_body_key {
	GW_BK_MODEL, GW_BK_STREAM, GW_BK_STREAM_OPTIONS,
	GW_BK_MAX_COMPLETION_TOKENS, GW_BK_MAX_TOKENS, GW_BK_SECONDS,
	GW_BK_N
};
struct gw_body {
	struct jscan_v root;
	struct jscan_v f[GW_BK_N];	/* {NULL, 0}: absent */
};
/* Check body and read its members into b (gateway/gw_body.c): 0; -1 not
 * a JSON object; -2 a member named twice (msg says which). */
int	gw_body_read(struct gw_body *b, const void *body, size_t len,
	    char *msg, size_t msglen);
/* The token estimate of r's body (lib/tokest; b NULL: its bytes only). */
int64_t gw_body_est(const struct gw_req *r, const struct gw_body *b);
/* Copy string member v into buf: 1 when it is a string of 1..cap-1 bytes
 * without NUL, else 0 (buf then means nothing). */
int	gw_body_str(struct jscan_v v, char *buf, size_t cap);

struct gw_route {
	const char *method;		/* "GET", "POST" */
	const char *pattern;		/* '*' = one path segment */
	const struct gw_surface *surface;
	int op;				/* enum prov_op, -1 when answered here */
	unsigned flags;
	/* The body parser: model, stream... (GW_GO, or GW_STOP: replied). */
	enum gw_verdict (*parse)(struct gw_req *r, const struct gw_body *b);
	/* Answered here (GW_RF_RELAY unset): write the reply. */
	void (*answer)(struct gw_req *r);
};
/* The route of method+path (path without the query); NULL: none (404).
 * *star gets the segment the pattern's '*' matched. */
const struct gw_route *gw_route_find(const char *method, size_t mlen,
    const char *path, size_t plen, char *star, size_t starlen);
#if SWB_TEST_BUILD
/* Tests: the route pattern matcher alone (1 match, 0 not). */
int gw_route_match(const char *pat, const char *path, size_t plen,
    char *star, size_t starlen);
#endif
/* The surface of a path that matched no route (for its 404's shape). */
const struct gw_surface *gw_route_surface_of(const char *path, size_t plen);

/* ---- gw_stage.c -------------------------------------------------------- */
/* Find r's route from its method and path (before gw_run). */
void gw_req_route(struct gw_req *r, const char *method, size_t mlen,
    const char *path, size_t plen);
/* Run r's stages from r->stage on. */
void gw_run(struct gw_req *r);
/* An asynchronous stage answered: GW_GO goes on, GW_STOP ends (the reply
 * was queued), GW_WAIT is not allowed here. */
void gw_resume(struct gw_req *r, enum gw_verdict v);
/* Is r waiting in stage st? */
int gw_waits_in(const struct gw_req *r, enum gw_stage st);
/* The relay of the current candidate: pick its translation, send it. */
int gw_stage_relay_attempt(struct gw_req *r);

/* ---- gw_token.c -------------------------------------------------------- */
void gw_token_init(struct lws_vhost *vh);
void gw_token_tick(void);
/* 1: known now (*t filled), 2: known to be no token, 0: asked billing
 * (gw_token_ready later), -1: billing unreachable. */
int  gw_token_lookup(struct gw_req *r, struct gw_token *t);
/* gw_stage.c: the token of r is known (found or not). */
void gw_token_ready(struct gw_req *r, const struct gw_token *t, int found);
/* The token of r, as the stage AUTH found it (valid until r ends). */
const struct gw_token *gw_req_token(const struct gw_req *r);
/*
 * Quota charges.  gw_charge_reserve asks billing to reserve r's estimate
 * (GW_WAIT; then gw_resume); gw_charge_settle posts how r ended (enum
 * ipc_post_how); only the first call per request does anything.  Posts
 * are kept until billing acknowledges them and sent again after billing
 * restarts.
 */
enum gw_verdict gw_charge_reserve(struct gw_req *r);
/* gw_lease.c: quota leases from billing.  take: 1 when est_tokens of
 * model, priced as the lease says, came out of token_id's lease.  ask: 1
 * when reqid's reservation is to ask for a new lease (none is out; what
 * was left is given back); answer: billing's answer to a reservation
 * (only the ask's counts; micros 0: no lease). */
int  gw_lease_take(uint64_t token_id, const char *model, int64_t est_tokens,
    int64_t now_ms);
int  gw_lease_ask(uint64_t token_id, const char *model, uint64_t reqid);
void gw_lease_answer(uint64_t token_id, uint64_t reqid, int64_t micros,
    int64_t ms, int64_t price, int64_t now_ms);
void gw_lease_tick(int64_t now_ms);
void gw_lease_drop_all(void);
/* gw_metrics.c: one reservation of a token with a quota, waited for (0) or
 * taken from a lease (1). */
void gw_metrics_quota_reserve(int leased);
void gw_charge_settle(struct gw_req *r);
void gw_charge_key(const struct gw_req *r, char *out, size_t len);
/* Keep the access line of a request whose post billing has not answered,
 * to be logged with its amount when it does.  -1: no such post. */
int gw_charge_hold_line(uint64_t charge_id, const char *line);
/* Write an access line with what billing said it cost. */
void gw_access_log(uint64_t reqid, const char *line, uint32_t state,
    int64_t amount);
int  gw_posts_pending(void);

/* gw_token.c: a message to billing on the worker's billing peer.  0/-1. */
int  gw_bill_send(uint16_t type, uint64_t reqid, const void *p, size_t len);

/* ---- gw_video.c: video jobs (see the file) ------------------------------ */
struct ipc_charge_post;
enum gw_verdict gw_video_parse_create(struct gw_req *r,
    const struct gw_body *b);
enum gw_verdict gw_video_parse_get(struct gw_req *r, const struct gw_body *b);
/* billing's IPC_JOB_INFO. */
void gw_video_info(const struct msg *m);
/* The "AGENT:CHANNEL" a follow-up must go to, or NULL. */
const char *gw_video_bound(const struct gw_req *r);
/* The job id for req_start's resource ("" when none). */
const char *gw_video_resource(const struct gw_req *r);
/* Turn a video request's post into its job kind (IPC_POST_JOB_*). */
void gw_video_post(const struct gw_req *r, struct ipc_charge_post *p);

/* ---- gw_limit.c (see gw_limit.h) / gw_mod.c ----------------------------- */
enum gw_verdict gw_limit_check(struct gw_req *r, const struct gw_token *t);
void gw_mod_init(struct lws_vhost *vh);
void gw_mod_tick(void);
/* GW_GO: nothing to check; GW_WAIT: asked (gw_resume later). */
enum gw_verdict gw_mod_check(struct gw_req *r);

/* ---- gw_relay.c: the tunnel peer ---------------------------------------- */
void gw_relay_init(struct lws_vhost *vh);
void gw_relay_tick(void);
/* Send r to r->cand[r->cur] (r->fwd, r->fwd_op).  -1: tunnel unreachable. */
int  gw_relay_send(struct gw_req *r);
void gw_relay_cancel(struct gw_req *r, int why);
/* n bytes of r's answer reached the user's socket: its window may come
 * back (struct gw_flow).  Any time is fine, also outside a relay. */
void gw_relay_credit(struct gw_req *r, size_t n);

/* ---- gw_resp.c: the answer ---------------------------------------------- */
struct ipc_relay_head;
struct ipc_relay_end;
void gw_resp_head(struct gw_req *r, const struct ipc_relay_head *h);
void gw_resp_chunk(struct gw_req *r, const unsigned char *p, size_t len);
void gw_resp_end(struct gw_req *r, const struct ipc_relay_end *e);
/* Free the attempt's response state (translation, SSE, sniff). */
void gw_resp_reset(struct gw_req *r);

/* ---- gw_rt.c: Realtime sessions (WebSocket, see the file) --------------- */
#define GW_RT_EST_TOKENS	0	/* the session's own reservation (voided) */
struct gw_head;
struct ipc_ws_msg;
enum gw_verdict gw_rt_parse(struct gw_req *r, const struct gw_body *b);
int  gw_rt_token(struct gw_req *r, char *tok, size_t len);
int  gw_rt_head(struct gw_req *r, struct gw_head *h);
int  gw_rt_relay_head(struct gw_req *r, const struct ipc_relay_head *h);
void gw_rt_relay_msg(struct gw_req *r, const unsigned char *p, size_t len);
void gw_rt_relay_end(struct gw_req *r, const struct ipc_relay_end *e);
void gw_rt_refused(uint64_t session_reqid, int insufficient);
size_t gw_rt_user_bytes(struct gw_req *r, const unsigned char *p, size_t len);
void gw_rt_free(struct gw_req *r);
/* gw_h1.c: switch r's connection to WebSocket framing (after the 101). */
void gw_h1_ws_begin(struct gw_req *r);
/* gw_relay.c: bytes waiting to go to the tunnel.  Realtime users are not
 * read while it is above GW_RT_TUNNEL_HIGH (gw_h1.c), so a user who sends
 * faster than the tunnel takes waits in their own socket. */
#define GW_RT_TUNNEL_HIGH	(1024u * 1024)
size_t gw_relay_queued(void);
/* gw_relay.c: one user message to the agent.  0, or -1. */
int  gw_relay_ws_in(struct gw_req *r, const struct ipc_ws_msg *wm,
    const void *data, size_t len);
/* gw_token.c: charge one response's usage now (reserve, then post it as
 * HUB) under ipc_response_charge(session_key, n).  0 sent, -1 not. */
int  gw_charge_response(struct gw_req *r, const char *session_key, uint64_t n,
    const struct usage *u);

#endif
