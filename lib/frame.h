/*
 * lib/frame: the versioned tunnel frame codec shared by hubd (tunnel/) and
 * agentd (agent/).  Owns the wire format of one binary WebSocket message,
 * the table of frame types with their required payload fields, the
 * decoder (bytes -> struct frame) and a small encoder (builder -> bytes).
 * It does no I/O and keeps no global state.
 *
 * Wire: one msgpack array of exactly four elements, nothing after it.
 *
 *   [ version, type, stream_id, payload ]
 *
 *   version    uint  FRAME_VERSION; anything else is rejected
 *   type       uint  enum frame_type, 1 .. FRAME_TYPE_MAX-1
 *   stream_id  uint  0 .. UINT32_MAX; 0 means connection-level.  The
 *                    handshake (hello/challenge/auth/welcome) must use 0,
 *                    request and response frames and cancel must not.
 *                    Either side opens a stream by sending req_start
 *                    with an id the tunnel picks; see tunnel/.
 *   payload    map   string key -> value, at most FRAME_MAX_FIELDS pairs.
 *                    Keys: 1..FRAME_MAX_KEY bytes, no NUL, no duplicates.
 *                    Values: unsigned int, negative int, bool, str, bin,
 *                    or an array of at most FRAME_MAX_ITEMS strs (strv).
 *                    Nil, floats, ext and nested maps are rejected.
 *
 * The whole message is at most FRAME_MAX bytes.  Whoever builds a frame
 * writes every element; the receiver trusts no length in it: before
 * msgpack-c builds any object the raw bytes are walked once, every declared
 * length and count is checked against the bytes actually present and
 * against the limits above, and nesting deeper than array > map > array is
 * refused.  Then the per-type table below checks the required fields.
 *
 * Required fields (key:kind), the rest of the payload is free-form:
 *
 *   hello          agent_id:u64 proto:u64
 *   challenge      nonce:bin[32]
 *   auth           agent_id:u64 sig:bin[64]
 *   welcome        session:u64
 *   channels       done:bool, and when done is false also
 *                  name:str provider:str models:strv grade:str rpm:u64 tpm:u64
 *   ping, pong     ts:u64
 *   echo,
 *   echo_reply     text:str
 *   kick           reason:str
 *   error          code:str message:str
 *   req_start      channel:str op:str model:str stream:bool
 *                  content_type:str — the operation by its lib/prov name
 *                  ("chat", "messages", ...), the model as the channel
 *                  announced it, and whether the user asked for a stream;
 *                  agentd's adapter alone makes the URL of it.  Optional:
 *                  resource:str (the id an operation names, e.g. a video
 *                  job), anthropic_version:str, anthropic_beta:str (passed
 *                  on from the user).
 *   req_body       data:bin (the request body, in pieces of <= 512 KiB)
 *   req_end        (none)
 *   resp_head      status:u64 content_type:str
 *   resp_chunk     data:bin (response bytes as the provider sent them)
 *   resp_end       ok:bool [error:str input_tokens output_tokens
 *                  cached_tokens:u64]
 *   credit         bytes:u64, hub -> agent: the stream's window grows by
 *                  that many resp_chunk data bytes (see FLOW CONTROL)
 *   req_start may also carry request_id:str, the hub's id of the user
 *   request (the ledger's request_id; retries on other agents keep it);
 *   welcome may also carry ledger_key:bin[32], the hub's Ed25519 key that
 *   signs receipts.
 *
 * Billing, all on stream 0 (see billing/bill_ledger.c, agent/ag_bill.c,
 * agent/ag_ledger_store.c):
 *   receipt        hub -> agent, one ledger entry: seq:u64 prev_hash:str
 *                  hash:str request_id:str token_id:u64 model:str
 *                  input_tokens output_tokens cached_tokens
 *                  cache_write_tokens price_version amount created_at:u64
 *                  agent_reported:bool [sig:bin[64]].  One signature per
 *                  batch (lib/ledger.h): only the last receipt of a batch
 *                  for this agent carries sig, over its hash, which links
 *                  every earlier one; the agent holds unsigned receipts
 *                  until that one came, verifies the signature once and
 *                  stores the batch (one transaction), then acks
 *   receipt_ack    agent -> hub: seq:u64 hash:str ok:bool stored:bool
 *                  [reason:str agent_amount:u64].  ok=false is a dispute;
 *                  stored=false means the entry did not extend the agent's
 *                  chain (a gap or a bad hash/signature; the agent syncs)
 *   sync           agent -> hub: last_seq:u64 last_hash:str, the end of
 *                  its chain (sent after welcome and after a gap); the hub
 *                  answers with price_update frames, the missing receipts,
 *                  then sync last_seq:u64 (the hub's head) done:bool
 *   price_update   hub -> agent: model:str version input output
 *                  cached_input cache_write:u64 (micro-units per 1M tokens)
 *   usage          agent -> hub: request_id:str model:str input_tokens
 *                  output_tokens cached_tokens cache_write_tokens:u64
 *                  estimated:bool, usage of a stream it served that no
 *                  receipt has covered yet
 *   usage_ack      hub -> agent: request_id:str result:str, one of
 *                  "settled" (billed with these numbers), "already" (was
 *                  settled; a receipt exists), "ignored" (not this
 *                  agent's to settle), "retry" (billing unreachable)
 *   ws_msg         data:bin text:bool, on a stream, either way: one whole
 *                  WebSocket message of a Realtime session (op
 *                  "realtime").  The agent answers the session's
 *                  req_start/req_end with resp_head status 101 once the
 *                  provider's WebSocket is open (any other status: the
 *                  provider refused, resp_chunk/resp_end follow as for
 *                  any answer); then ws_msg flows both ways until either
 *                  side ends it: the agent with resp_end (ok, or error:str
 *                  when the provider closed or failed), the hub with
 *                  cancel (the user closed).  Agent -> hub ws_msg data
 *                  counts against the stream's window exactly as
 *                  resp_chunk data does (what the window does not take
 *                  waits at the agent, at most AG_WS_HOLD_MAX, past which
 *                  it ends the session); hub -> agent messages are bounded
 *                  by the agent (AG_WS_OUT_MAX queued for the provider)
 *                  and the tunnel (half an agent's queue), past which the
 *                  session ends, never the link.
 *   cancel, and every other type: none (yet)
 *
 * FLOW CONTROL: every stream has a credit window of FRAME_WINDOW bytes of
 * resp_chunk data (the bin's length; heads, ends and msgpack overhead do
 * not count).  The agent starts a stream with the whole window, spends it
 * on every resp_chunk it sends and never sends more than it has; the hub
 * gives bytes back with credit frames as the user's socket takes the data
 * it already got.  Credit never makes the window larger than FRAME_WINDOW.
 * So one stream's unread data (a user who stops reading) holds at most a
 * window at the hub, and the shared tunnel (and the gateway <-> tunnel
 * socket behind it) keeps moving every other stream: the hub always reads
 * its sockets.  An agent that sends beyond its window breaks the protocol
 * and is dropped (logged); a credit beyond the window is logged and
 * clamped.  Request bodies (req_body) are not windowed: they are bounded
 * by the hub's request size and sent at once.  Credit or data for a stream
 * the receiver does not know (any more) is ignored.
 *
 * CHANNELS: the agent announces its channels one per frame, each with
 * done=false and the six channel fields, then sends one frame with
 * done=true that carries no channel (any other field in it is ignored).
 * An agent with no channels sends just the done frame.  Keeping one channel
 * per frame keeps the payload model flat (no maps inside maps) and lets a
 * channel list be longer than one frame's field budget.  The receiver
 * replaces the agent's channel set with what arrived since the last done.
 *
 * METRICS: every few seconds (agent/ag_metrics) the agent sends one
 * metrics frame per channel on stream 0: its own counts over every hub it
 * serves for the UTC minute `minute` (requests admitted, tokens, errors),
 * upstream calls in flight, the mean time to the provider's response head,
 * and what its rpm/tpm buckets hold.  The hub's tunnel stores them in the
 * scoreboard (shm/sb.h, sb_chan_hot ag_*); a frame for a channel the agent
 * did not announce is ignored.
 *
 * HELLO: once online, and again whenever it learnt its public address,
 * the agent says its version and (public_ip) the address the tunnel's
 * GET /probe answered it over a separate pinned HTTPS request; the hub
 * shows both beside the connection's own remote address.  Only sent to a
 * hub whose welcome carried hello=true (an older hub closes on it).  It
 * also names its platform (os, arch: lib/release.h names).
 *
 * PACKING: one WebSocket message may carry several frames back to back
 * (each a whole frame as above; the message at most FRAME_PACK_MAX bytes
 * when it holds more than one), so a request's req_start, req_body and
 * req_end, or an answer's resp_head, resp_chunk and resp_end, cost one
 * write and one read instead of three.  A side packs only for a peer that
 * said it reads packed messages: the hub's welcome and the agent's hello
 * carry packed=true.  Both sides read packed messages from any peer.  A
 * frame that breaks anywhere in a message drops the connection as for a
 * single frame; the frames before it were already acted on.
 *
 * UPDATE_AVAILABLE: hub -> agent, stream 0, version:str — a release of
 * agentd for the agent's platform is published at /files/agent/latest
 * (tunnel/tun_files): sent after hello when it is newer than the version
 * the agent reported, and to every online agent of the platform when the
 * operator announces one.  The agent fetches and checks the signed
 * manifest itself (agent/ag_update); the frame is only a hint.
 */
#ifndef SWB_FRAME_H
#define SWB_FRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <msgpack.h>

#define FRAME_VERSION		1
#define FRAME_MAX		(1024u * 1024)	/* bytes in one message */
#define FRAME_MAX_FIELDS	32		/* pairs in the payload map */
#define FRAME_MAX_KEY		32		/* bytes in a key, without NUL */
#define FRAME_MAX_ITEMS		256		/* strs in one strv value */
#define FRAME_NONCE_LEN		32		/* challenge nonce */
#define FRAME_SIG_LEN		64		/* Ed25519 signature in auth */
#define FRAME_WINDOW		(256u * 1024)	/* resp_chunk bytes in flight a stream */
#define FRAME_PACK_MAX		(64u * 1024)	/* bytes in a packed message */

enum frame_type {
	FRAME_HELLO = 1,
	FRAME_CHALLENGE,
	FRAME_AUTH,
	FRAME_WELCOME,
	FRAME_CHANNELS,
	FRAME_METRICS,
	FRAME_REQ_START,
	FRAME_REQ_BODY,
	FRAME_REQ_END,
	FRAME_RESP_HEAD,
	FRAME_RESP_CHUNK,
	FRAME_RESP_END,
	FRAME_CANCEL,
	FRAME_RECEIPT,
	FRAME_RECEIPT_ACK,
	FRAME_SYNC,
	FRAME_PRICE_UPDATE,
	FRAME_KICK,
	FRAME_UPDATE_AVAILABLE,
	FRAME_PING,
	FRAME_PONG,
	FRAME_ECHO,
	FRAME_ECHO_REPLY,
	FRAME_ERROR,
	FRAME_CREDIT,		/* hub -> agent: more window for a stream */
	FRAME_USAGE,		/* agent -> hub: usage of a stream it served */
	FRAME_USAGE_ACK,	/* hub -> agent: what billing made of it */
	FRAME_DISPUTE_RESULT,	/* hub -> agent: the operator resolved a dispute */
	FRAME_WS_MSG,		/* either way: one WebSocket message (Realtime) */
	FRAME_TYPE_MAX			/* one past the last type; not a type */
};

/* Kind of a payload value.  FK_I64 is only ever a negative number. */
enum frame_kind {
	FK_NONE = 0,
	FK_U64,
	FK_I64,
	FK_BOOL,
	FK_STR,
	FK_BIN,
	FK_STRV
};

/* A string owned by a frame: ptr[len] is always a NUL. */
struct frame_str {
	const char *ptr;
	size_t len;
};

struct frame_field {
	char key[FRAME_MAX_KEY + 1];	/* NUL-terminated copy */
	enum frame_kind kind;
	union {
		uint64_t u64;
		int64_t i64;
		bool b;
		struct frame_str str;
		struct {
			const unsigned char *ptr;	/* followed by a NUL too */
			size_t len;
		} bin;
		struct {
			const struct frame_str *v;
			size_t n;		/* <= FRAME_MAX_ITEMS */
		} strv;
	} v;
};

/*
 * A decoded frame.  Every pointer in fields[] points into `arena`, which
 * the frame owns: nothing refers to the input buffer once frame_decode
 * returns.  Release with frame_free().
 */
struct frame {
	uint32_t version, type, stream_id;
	struct frame_field fields[FRAME_MAX_FIELDS];
	size_t nfields;
	void *arena;
};

const char *frame_type_name(unsigned type);	/* "req_start"; "unknown" */
const char *frame_kind_name(enum frame_kind k);	/* "u64", "strv", ... */

/*
 * Decode exactly one frame occupying all of buf[0..len).  0 on success
 * (release *f with frame_free), -1 with a short reason in err (the frame
 * is then empty and needs no frame_free, though it is harmless).
 */
int  frame_decode(const void *buf, size_t len, struct frame *f,
    char *err, size_t errlen);
/*
 * Decode the first frame of a packed message (PACKING above): buf[0..len)
 * starts with a frame and may go on with more.  As frame_decode, and its
 * length in *used (0 on failure); the caller goes on at buf + *used.
 */
int  frame_decode_next(const void *buf, size_t len, struct frame *f,
    size_t *used, char *err, size_t errlen);
/* Free what the frame owns and empty it.  Safe on a zeroed frame. */
void frame_free(struct frame *f);

/* Accessors: 0 and the value, or -1 when the key is missing or the kind
 * differs.  Output pointers may be NULL when only presence matters.
 * frame_get_i64 also accepts an unsigned value up to INT64_MAX. */
const struct frame_field *frame_find(const struct frame *f, const char *key);
int  frame_get_u64(const struct frame *f, const char *key, uint64_t *out);
int  frame_get_i64(const struct frame *f, const char *key, int64_t *out);
int  frame_get_bool(const struct frame *f, const char *key, bool *out);
int  frame_get_str(const struct frame *f, const char *key,
    const char **ptr, size_t *len);
int  frame_get_bin(const struct frame *f, const char *key,
    const unsigned char **ptr, size_t *len);
int  frame_get_strv(const struct frame *f, const char *key,
    const struct frame_str **v, size_t *n);

/*
 * One side's view of a stream's credit window (FLOW CONTROL above): the
 * bytes of resp_chunk data that may still be sent.  Both the sender
 * (agentd) and the receiver (the hub's tunnel) keep one per stream.
 */
struct frame_window {
	uint32_t avail;		/* 0 .. FRAME_WINDOW */
};

void frame_window_init(struct frame_window *w);	/* the whole window */
/* n data bytes sent / arrived: 0, or -1 (nothing changed) when n is more
 * than the window has: the receiver's protocol violation. */
int  frame_window_spend(struct frame_window *w, size_t n);
/* n bytes of credit: 0, or -1 when that would make the window larger than
 * FRAME_WINDOW (it is then clamped to FRAME_WINDOW). */
int  frame_window_grant(struct frame_window *w, uint64_t n);

/* 1 when both frames carry the same header and fields (in any order). */
int  frame_equal(const struct frame *a, const struct frame *b);

/*
 * Encoder.  Usage:
 *
 *	struct frame_enc e;
 *	frame_enc_begin(&e, FRAME_PING, 0, 1);
 *	frame_enc_u64(&e, "ts", now);
 *	if (frame_enc_finish(&e, &data, &len) == -1)
 *		log_warn("ping: %s", e.err);
 *	...send data/len...
 *	frame_enc_free(&e);
 *
 * The first error (bad key, duplicate key, more fields than declared, a
 * value over a limit, out of memory) is latched in err and makes every
 * later call, and finish, return -1.  finish also checks that exactly
 * nfields were written, that the result fits FRAME_MAX and that the
 * type's required fields are present, so a frame the encoder produces is
 * one the decoder accepts.  frame_enc_free is needed after every begin,
 * whatever happened.
 */
struct frame_enc {
	msgpack_sbuffer sbuf;
	msgpack_packer pk;
	uint32_t type, stream_id;
	size_t declared;	/* nfields given to begin */
	struct frame shadow;	/* keys and kinds written so far, no data */
	int failed;
	char err[128];
};

int  frame_enc_begin(struct frame_enc *e, enum frame_type type,
    uint32_t stream_id, size_t nfields);
int  frame_enc_u64(struct frame_enc *e, const char *key, uint64_t v);
int  frame_enc_i64(struct frame_enc *e, const char *key, int64_t v);
int  frame_enc_bool(struct frame_enc *e, const char *key, bool v);
int  frame_enc_str(struct frame_enc *e, const char *key, const char *s,
    size_t len);
int  frame_enc_cstr(struct frame_enc *e, const char *key, const char *s);
int  frame_enc_bin(struct frame_enc *e, const char *key, const void *p,
    size_t len);
int  frame_enc_strv(struct frame_enc *e, const char *key,
    const struct frame_str *v, size_t n);
/* Begin and write every field of a decoded frame (relay, tests, fuzz). */
int  frame_enc_frame(struct frame_enc *e, const struct frame *f);
/* *data stays valid until frame_enc_free. */
int  frame_enc_finish(struct frame_enc *e, const void **data, size_t *len);
void frame_enc_free(struct frame_enc *e);

#endif
