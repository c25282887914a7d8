/*
 * billing/store: the billing database, as the billing process sees it.
 * One interface, two engines: SQLite (WAL, the embedded default) and
 * PostgreSQL (libpq, for several hubs).  Both carry the same schema and the
 * same migrations (billing/schema.c), applied by store_open().
 *
 * Only the billing process calls this; every call blocks until the database
 * answers.  The store is not thread-safe: one struct store per thread.
 *
 * Conventions of every call:
 *   - returns 0 on success, -1 on error (store_errmsg() then says why);
 *     calls that look something up return 1 when it does not exist;
 *   - bad input (NULL, too long, malformed) is refused with -1 and a
 *     message, never a crash;
 *   - money is int64 micro-units, never floating point.
 */
#ifndef SWB_BILLING_STORE_H
#define SWB_BILLING_STORE_H

#include <stddef.h>
#include <stdint.h>

struct store;

/*
 * url: "sqlite:PATH", "sqlite://PATH", a bare PATH (SQLite), or
 * "postgresql://..." / "postgres://..." (any libpq connection URI).
 * Creates the database file if needed (SQLite, mode 0600), connects, and
 * applies every pending migration, each in its own transaction.  Running it
 * again on an up-to-date database changes nothing.  A database whose schema
 * is newer than this build is refused.  NULL on error, with a message in err.
 */
struct store	*store_open(const char *url, char *err, size_t errlen);
void		 store_close(struct store *);
/* The last error on this store ("" if none); never NULL. */
const char	*store_errmsg(const struct store *);
/* "sqlite" or "postgresql". */
const char	*store_engine(const struct store *);
/*
 * Group commit (SQLite; a no-op on PostgreSQL): between store_batch_begin
 * and store_batch_end every call's transaction is a savepoint of one
 * transaction, committed — one fsync — by store_batch_end.  Nothing done
 * in a batch is durable, and no answer based on it may leave the process,
 * before store_batch_end returned 0; on -1 all of it was rolled back.
 */
int		 store_batch_begin(struct store *);
int		 store_batch_end(struct store *);
/* Roll the open batch back (nothing of it is stored). */
void		 store_batch_abort(struct store *);
/* Highest migration applied to the database; the one this build knows. */
int		 store_schema_version(struct store *, int64_t *out);
int64_t		 store_schema_latest(void);

/* ---- agents ------------------------------------------------------------ */

#define STORE_NAME_MAX		63	/* agent and token names, bytes */
#define STORE_PUBKEY_LEN	32	/* Ed25519 public key */

struct store_agent {
	uint64_t	id;		/* > 0, assigned by the store */
	char		name[STORE_NAME_MAX + 1];
	char		pubkey_b64[64];	/* canonical standard base64 (44 chars) */
	unsigned char	pubkey[STORE_PUBKEY_LEN];
	char		grade;		/* 'A'..'Z' */
	int		enabled;	/* 0 or 1 */
	int64_t		created_at;	/* unix seconds */
};

/*
 * name: 1..63 of [A-Za-z0-9._-], unique.  pubkey_b64: a 32-byte Ed25519 key
 * in standard, padded base64; one public key belongs to one agent only.
 * grade: 'A'..'Z'.  New agents are enabled.  On success *out_id is set.
 */
int	store_agent_add(struct store *, const char *name,
	    const char *pubkey_b64, char grade, uint64_t *out_id);
/* 0 found (*out filled), 1 no such agent, -1 error. */
int	store_agent_get(struct store *, uint64_t id, struct store_agent *out);
/*
 * Calls cb once per agent, in id order.  The rows are read before the first
 * call, so cb may call the store.  A nonzero return from cb stops the walk
 * and is returned; otherwise 0, or -1 on error.
 */
typedef int (*store_agent_cb)(const struct store_agent *, void *arg);
int	store_agent_list(struct store *, store_agent_cb cb, void *arg);
/* enabled: 0 disables, nonzero enables.  0 ok, 1 no such agent, -1 error. */
int	store_agent_set_enabled(struct store *, uint64_t id, int enabled);

/* ---- virtual tokens ---------------------------------------------------- */

#define STORE_HASH_HEX_LEN	64	/* sha256 of the secret, lowercase hex */
#define STORE_MODELS_MAX	511	/* bytes of models_csv */
#define STORE_QUOTA_UNLIMITED	(-1)

struct store_token {
	uint64_t	id;		/* > 0, assigned by the store */
	char		name[STORE_NAME_MAX + 1];
	char		hash_hex[STORE_HASH_HEX_LEN + 1];
	int64_t		quota_micros;	/* STORE_QUOTA_UNLIMITED or >= 0 */
	int64_t		used_micros;	/* spent so far; 0 at creation */
	char		models_csv[STORE_MODELS_MAX + 1]; /* "" = any model */
	int64_t		expires_at;	/* unix seconds, 0 = never */
	int		enabled;	/* 0 or 1 */
	int64_t		created_at;	/* unix seconds */
	char		policy[8];	/* "bound", "graded" or "best" */
	char		min_grade[2];	/* graded: "A".."Z"; else "" */
	char		channels[STORE_MODELS_MAX + 1]; /* bound: "7,9:main" */
	int64_t		rpm, tpm;	/* per-token limits, 0 = none */
};

/*
 * name: 1..63 printable ASCII bytes (need not be unique).  hash_hex: 64
 * lowercase hex digits, unique.  quota_micros: -1 (unlimited) or >= 0.
 * models_csv: "" or comma-separated model names (printable ASCII, no
 * spaces, none empty).  expires_at: 0 or a unix time.
 */
/*
 * Set a token's routing policy and limits (migration 2).  policy is
 * "bound" (channels: comma list of AGENT_ID or AGENT_ID:CHANNEL, required),
 * "graded" (min_grade 'A'..'Z', required) or "best".  0 ok, 1 no such
 * token, -1 bad input or error.
 */
int	store_token_set_policy(struct store *, uint64_t id, const char *policy,
	    const char *min_grade, const char *channels, int64_t rpm, int64_t tpm);
int	store_token_create(struct store *, const char *name,
	    const char *hash_hex, int64_t quota_micros, const char *models_csv,
	    int64_t expires_at, uint64_t *out_id);
/* As store_agent_list, in id order. */
typedef int (*store_token_cb)(const struct store_token *, void *arg);
int	store_token_list(struct store *, store_token_cb cb, void *arg);
/* 0 ok (also when already disabled), 1 no such token, -1 error. */
int	store_token_disable(struct store *, uint64_t id);
/*
 * 0 found, 1 unknown hash, -1 error (including a malformed hash).
 * Disabled and expired tokens are returned too: the caller decides.
 */
int	store_token_get_by_hash(struct store *, const char *hash_hex,
	    struct store_token *out);

/* ---- prices ------------------------------------------------------------ */

#define STORE_MODEL_MAX		127	/* model name, bytes */

/*
 * One version of a model's prices: int64 micro-units per 1,000,000 tokens
 * of each component, all >= 0.  Versions count from 1 per model and are
 * never changed once written.
 */
struct store_price {
	char		model[STORE_MODEL_MAX + 1];
	int64_t		version;	/* >= 1 */
	int64_t		input;
	int64_t		output;
	int64_t		cached_input;
	int64_t		cache_write;
	int64_t		created_at;	/* unix seconds */
	/* migration 6: micro-units per ONE unit (lib/money.h) */
	int64_t		image, audio_second, audio_char, video_second;
};

/*
 * Writes a new version of model's prices (1 for a new model, else the
 * highest so far + 1) and sets *out_version.  model: 1..127 printable
 * ASCII bytes, no spaces and no commas.  Every price >= 0.
 */
int	store_price_set(struct store *, const char *model, int64_t input,
	    int64_t output, int64_t cached_input, int64_t cache_write,
	    int64_t *out_version);
/* The same with every component of p (model, the four token prices and
 * the four unit prices; version and created_at are ignored). */
int	store_price_set_all(struct store *, const struct store_price *p,
	    int64_t *out_version);
/* The latest version of each model, in model order; as store_agent_list. */
typedef int (*store_price_cb)(const struct store_price *, void *arg);
int	store_price_list(struct store *, store_price_cb cb, void *arg);
/*
 * One version of a model's prices, 0 for the latest.  0 found, 1 no such
 * model or version, -1 error or bad input.
 */
int	store_price_get(struct store *, const char *model, int64_t version,
	    struct store_price *out);

/* ---- charges (migration 3) ----------------------------------------------- */

/*
 * A request's charge against its token's quota, keyed by request_id (1..63
 * printable ASCII bytes; the gateway's is "NONCE-REQID", lib/ipc.h).
 *
 * Reserve: in one transaction, tokens.used += estimate only when the token
 * has room (quota -1, or used + estimate <= quota: one conditional UPDATE,
 * so concurrent reservations never overrun the quota), and a 'reserved'
 * charges row.  0 reserved (also when this request_id was reserved
 * before: nothing changes), 1 refused (over quota, or no such token),
 * -1 error.  estimate >= 0.
 */
int	store_charge_reserve(struct store *, uint64_t token_id,
	    const char *request_id, int64_t estimate_micros);
/*
 * As store_charge_reserve, with held micro-units of the quota set aside
 * for others (billing/bill_lease.c): room is used + estimate + held <=
 * quota.  When it reserved now and headroom is not NULL, *headroom is
 * quota - used after it (-1: no quota, or nothing reserved now).
 */
int	store_charge_reserve_held(struct store *, uint64_t token_id,
	    const char *request_id, int64_t estimate_micros, int64_t held,
	    int64_t *headroom);
/*
 * Reserve for a token without a quota (lib/ipc.h IPC_CHARGE_F_UNWAITED,
 * IPC_CHARGE_F_UNLIMITED):
 * only the 'reserved' row, of 0 — nothing is held against an unlimited
 * quota; the post adds the real cost to used.  One INSERT.  0 made, 1
 * not made (the token has a quota now, or is gone, or request_id has a
 * row already: reserve as above), -1 error.
 */
int	store_charge_reserve_unlimited(struct store *, uint64_t token_id,
	    const char *request_id);

struct store_charge_usage {
	char		model[STORE_MODEL_MAX + 1];
	int64_t		input_tokens, output_tokens, cached_tokens;
	int64_t		price_version;	/* 0 = no price */
	int64_t		amount;		/* micro-units, >= 0 */
	int64_t		cache_write_tokens;	/* migration 4, >= 0 */
	/* migration 6: units that are not tokens, >= 0 (store_charge_post
	 * writes them to the charge and its ledger entry) */
	int64_t		images, audio_seconds, audio_chars, video_seconds;
	/* Post and await: the token to charge when the reservation row is
	 * missing (billing answers reservations before their batch commits,
	 * so a crash can lose the row of a request that was then served);
	 * the row is made again, reserving 0.  0: never (no row, nothing
	 * changes). */
	uint64_t	token_id;
	/* store_charge_post: the agent's channel that served it, noted on
	 * the charge in the post's own UPDATE ("" = leave it as it is;
	 * printable, no more than 31 bytes, or it is left too). */
	char		channel[32];
};

/*
 * Post: in one transaction, the 'reserved' (or 'awaiting') row becomes
 * 'posted' with u's usage and amount, and tokens.used = used - reserved +
 * amount (the real cost is charged even when it overruns the quota).
 * This post writes no ledger entry: a request an agent served is posted
 * with store_charge_post.  Void (u NULL): the 'reserved' or 'awaiting'
 * row becomes 'voided' and used -= reserved.  Idempotent: a request that
 * is already posted or voided, or was never reserved, changes nothing and
 * returns 1.  0 settled now, -1 error (also when used would pass
 * INT64_MAX: nothing changes).
 */
int	store_charge_settle(struct store *, const char *request_id,
	    const struct store_charge_usage *u);

/* A charge row, for tests and audits.  0 found, 1 none, -1 error. */
struct store_charge {
	char		request_id[64];
	uint64_t	token_id;
	int64_t		reserved, amount;
	char		state[16];	/* reserved awaiting posted voided */
	struct store_charge_usage u;	/* posted: what was billed;
					 * awaiting: the hub's estimate */
	int64_t		created_at;
	uint64_t	agent_id;	/* 0 until posted (store_charge_post)
					 * or awaiting */
	int		agent_reported;	/* posted from the agent's report */
	int64_t		awaiting_since;	/* unix s, 0 unless awaiting */
};
int	store_charge_get(struct store *, const char *request_id,
	    struct store_charge *out);

/* ---- the ledger (migration 4) -------------------------------------------- */

struct ledger_entry;

/*
 * Post a charge and append its ledger entry, in one transaction:
 *   - the 'reserved' or 'awaiting' row becomes 'posted' with u (usage,
 *     price version, amount), agent_id and agent_reported;
 *     tokens.used += amount - reserved;
 *   - the next entry of agent_id's chain is written: seq = the chain's
 *     head + 1, prev_hash = the head's hash (LEDGER_GENESIS for seq 1),
 *     request_id, token, u, created_at = now, agent_reported, then
 *     ledger_hash() and ledger_sign() with sk.  The head is taken with a
 *     row lock on the agent (UPDATE ... RETURNING), so two hubs sharing
 *     PostgreSQL never give out one seq twice.
 * *out (may be NULL) receives the entry.  agent_id must be a registered
 * agent; an 'awaiting' row is posted only by the agent it awaits (another
 * agent: -1).  request_id and u->model must also be what a ledger entry
 * holds (no comma or quote; model 1..127 bytes, no spaces; see
 * ledger_entry_check); agent_reported 0 or 1.  0 posted now, 1 nothing
 * changed (already posted or voided, or never reserved), -1 error or bad
 * input (nothing changed).  The store keeps the signature as standard
 * base64 in ledger.sig.  sk NULL: the entry is left unsigned (sig ""
 * stored, 64 zero bytes read back), for its batch's last entry to be
 * signed with store_ledger_sign (billing/bill_sign.c decides when).
 */
int	store_charge_post(struct store *, const char *request_id,
	    uint64_t agent_id, const struct store_charge_usage *u,
	    int agent_reported, const unsigned char sk[64],
	    struct ledger_entry *out);

/*
 * Park a request whose end the hub did not see: 'reserved' -> 'awaiting'
 * with agent_id, the hub's own estimate in est (usage, price version,
 * amount: what store_charge_post will bill if the agent never reports)
 * and awaiting_since = now.  tokens.used keeps the reservation until the
 * post.  est is checked as store_charge_post checks u, so that it can be
 * posted as is.  0 parked, 1 not 'reserved' (or no such request), -1 error
 * (also an unknown agent).
 */
int	store_charge_await(struct store *, const char *request_id,
	    uint64_t agent_id, const struct store_charge_usage *est);

/* Rows 'awaiting' since before `before` (unix s), oldest first, at most
 * limit (0: all); as store_agent_list.  Each row's u holds the estimate
 * given to store_charge_await. */
typedef int (*store_charge_cb)(const struct store_charge *, void *arg);
int	store_charge_list_awaiting(struct store *, int64_t before,
	    size_t limit, store_charge_cb cb, void *arg);

/* Rows still 'reserved' that were created before `before` (their
 * gateway never posted), oldest first, at most limit. */
int	store_charge_list_stale(struct store *, int64_t before, size_t limit,
	    store_charge_cb cb, void *arg);

/*
 * An agent's usage report for a charge still 'reserved' (its gateway has
 * not posted — it may be gone): agent_id and u's model and counts are kept
 * on the row, first report only, so that a stale reservation can be billed
 * from it instead of voided.  A later post replaces them.  0 noted, 1 not
 * reserved or already noted, -1 error.
 */
int	store_charge_note_report(struct store *, const char *request_id,
	    uint64_t agent_id, const struct store_charge_usage *u);

/* Void every 'reserved' row created before `before` (its gateway is
 * gone), giving each reservation back to its token, in one transaction;
 * 'awaiting' rows are left alone.  *n (may be NULL) = how many.  0 or -1. */
int	store_charge_void_stale(struct store *, int64_t before, int64_t *n);

/* Set the signature of entry (agent_id, seq) (the last one a batch
 * appended to that chain).  0, or -1. */
int	store_ledger_sign(struct store *, uint64_t agent_id, uint64_t seq,
	    const unsigned char sig[64]);
/* The end of agent_id's chain: seq 0 and LEDGER_GENESIS when empty.
 * 0, or -1 (also for an unknown agent). */
int	store_ledger_head(struct store *, uint64_t agent_id, uint64_t *seq,
	    char hash[65]);
/* One entry.  0 found, 1 none, -1 error. */
int	store_ledger_get(struct store *, uint64_t agent_id, uint64_t seq,
	    struct ledger_entry *out);
/* Entries of agent_id with seq > after, in seq order, at most limit
 * (0: all); as store_agent_list (the rows are held in memory while cb
 * runs: replay long chains in pages).  agent_id 0: -1. */
typedef int (*store_ledger_cb)(const struct ledger_entry *, void *arg);
int	store_ledger_list(struct store *, uint64_t agent_id, uint64_t after,
	    size_t limit, store_ledger_cb cb, void *arg);
/*
 * The agent acknowledged its chain up to seq (kept as the maximum; seq 0
 * is accepted and changes nothing).  0 ok, 1 no such agent, -1 error or
 * a seq past the end of the agent's chain.
 */
int	store_ledger_ack(struct store *, uint64_t agent_id, uint64_t seq);
/* The highest seq acknowledged (0: none).  0, 1 no such agent, -1. */
int	store_ledger_acked(struct store *, uint64_t agent_id, uint64_t *seq);

/* ---- disputes ------------------------------------------------------------ */

struct store_dispute {
	uint64_t	id;		/* assigned by the store */
	uint64_t	agent_id;
	uint64_t	seq;
	char		request_id[64];
	int64_t		hub_amount;
	int64_t		agent_amount;	/* -1: the agent could not price it */
	char		hub_hash[65];
	char		reason[160];	/* the agent's words, printable */
	char		status[16];	/* open accepted rejected */
	int64_t		created_at;
};
/*
 * One dispute per (agent, request): 0 added, 1 already there (nothing
 * changes), -1 error or bad input.  It must name an entry of the agent's
 * chain: (agent_id, seq) exists and is for request_id.  hub_hash: "" or
 * 64 lowercase hex digits; reason: printable ASCII, may be "".  id,
 * status ('open') and created_at are set by the store; d's are ignored.
 */
int	store_dispute_add(struct store *, const struct store_dispute *d);
/* Every dispute, in id order; as store_agent_list. */
typedef int (*store_dispute_cb)(const struct store_dispute *, void *arg);
int	store_dispute_list(struct store *, store_dispute_cb cb, void *arg);

/* ---- video jobs (migration 6) --------------------------------------------- */

#define STORE_JOB_ID_MAX	63

struct store_job {
	char		id[STORE_JOB_ID_MAX + 1];	/* the provider's */
	uint64_t	token_id;
	uint64_t	agent_id;
	char		channel[32];
	char		model[STORE_MODEL_MAX + 1];
	char		create_key[64];	/* the create's charge key */
	char		state[16];	/* queued completed failed */
	char		settle_key[64];	/* the post that ended it, or "" */
	int64_t		created_at;
};
/* A new job (state queued).  0 added, 1 the id exists (nothing changes),
 * -1 error or bad input (id: 1..63 printable bytes). */
int	store_job_put(struct store *, const struct store_job *j);
/* 0 found, 1 none, -1 error. */
int	store_job_get(struct store *, const char *id, struct store_job *out);
/*
 * End a job once: queued -> state ('completed' or 'failed') with
 * settle_key.  0 it ends now, or it had already ended with this same
 * settle_key and state (a post sent again); 1 it ended otherwise before
 * (or no such job); -1 error.
 */
int	store_job_finish(struct store *, const char *id, const char *state,
	    const char *settle_key);

/* Every version of every model's prices, by model then version (the
 * agents' copy is sent whole when they connect). */
int	store_price_all(struct store *, store_price_cb cb, void *arg);

#endif
