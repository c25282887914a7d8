/*
 * lib/ledger: one entry of the per-agent billing chain, as both hub
 * (billing/) and agent (agent/ag_ledger_store.c, ag_ledger_export.c)
 * compute, sign, check and export it.  The only place the canonical
 * bytes, the hash rule and the CSV line are written down.  No I/O, no
 * global state.
 *
 * Canonical bytes of an entry (all integers big-endian):
 *
 *   "switchboard ledger v1\n"         22 bytes, the context
 *   agent_id, seq, token_id           u64 each
 *   request_id, model                 u16 length + bytes each (no NUL)
 *   input_tokens, output_tokens,
 *   cached_tokens, cache_write_tokens,
 *   price_version, amount, created_at i64 each
 *   agent_reported                    u8 (0 or 1)
 *
 * An entry with a unit count (images, audio_seconds, audio_chars,
 * video_seconds) other than 0 uses the context "switchboard ledger v2\n"
 * and appends the four counts, i64 each, in that order, after
 * agent_reported.  An entry whose unit counts are all 0 has exactly the
 * v1 bytes, so every entry written before the units existed keeps its
 * hash.
 *
 *   hash = SHA-256(prev_hash as 32 raw bytes || canonical bytes)
 *   sig  = Ed25519 by the hub over "switchboard receipt v1\n" || the 32
 *          raw hash bytes
 *
 * Hashes travel and are stored as 64 lowercase hex digits.  The first
 * entry of a chain (seq 1) has prev_hash LEDGER_GENESIS (64 zeros).
 *
 * Few signatures: billing signs an agent's chain only now and then
 * (billing/bill_sign.c: at least every 256 entries and every 250 ms),
 * always its last entry.  Its hash covers every earlier entry through
 * prev_hash, so its signature covers them too.  An entry without
 * a signature carries 64 zero bytes in sig (ledger_signed() is 0); it is
 * good once a later, signed entry of the same chain links to it, and a
 * chain whose last entry is unsigned does not hold.
 */
#ifndef SWB_LEDGER_H
#define SWB_LEDGER_H

#include <stddef.h>
#include <stdint.h>

#define LEDGER_HEX_LEN		64
#define LEDGER_REQID_MAX	63	/* bytes of request_id */
#define LEDGER_MODEL_MAX	127	/* bytes of model */
#define LEDGER_SIG_LEN		64
#define LEDGER_PK_LEN		32
#define LEDGER_SK_LEN		64	/* libsodium's seed || public key */
#define LEDGER_CSV_MAX		640	/* one CSV line, NUL included */

extern const char LEDGER_GENESIS[LEDGER_HEX_LEN + 1];

struct ledger_entry {
	uint64_t agent_id;		/* > 0 */
	uint64_t seq;			/* >= 1 */
	char	 prev_hash[LEDGER_HEX_LEN + 1];
	char	 hash[LEDGER_HEX_LEN + 1];
	char	 request_id[LEDGER_REQID_MAX + 1];	/* 1..63 printable */
	uint64_t token_id;
	char	 model[LEDGER_MODEL_MAX + 1];		/* 1..127 printable */
	int64_t	 input_tokens;		/* all >= 0 */
	int64_t	 output_tokens;
	int64_t	 cached_tokens;
	int64_t	 cache_write_tokens;
	int64_t	 price_version;		/* 0: the model had no price */
	int64_t	 amount;		/* micro-units, >= 0 */
	int64_t	 created_at;		/* unix seconds */
	int	 agent_reported;	/* 0 or 1 */
	unsigned char sig[LEDGER_SIG_LEN];
	/* units that are not tokens (lib/money.h struct money_units), >= 0 */
	int64_t	 images;
	int64_t	 audio_seconds;
	int64_t	 audio_chars;
	int64_t	 video_seconds;
};

/*
 * Fields are well-formed: ids and seq > 0, printable request_id and model
 * of the right length (no comma, quote or control byte), counts, amount
 * and price version >= 0, agent_reported 0/1, prev_hash 64 lowercase hex.
 * 0 ok, -1 with the reason in why.
 */
int ledger_entry_check(const struct ledger_entry *e, char *why, size_t len);

/* Compute e->hash from e->prev_hash and the other fields.  -1 when the
 * entry is malformed (ledger_entry_check). */
int ledger_hash(struct ledger_entry *e);

/* Sign e->hash with the hub's secret key into e->sig.  -1: bad hash. */
int ledger_sign(struct ledger_entry *e, const unsigned char sk[LEDGER_SK_LEN]);

/* 1 when e carries a signature, 0 when sig is 64 zero bytes (a later
 * entry's signature covers it). */
int ledger_signed(const struct ledger_entry *e);

/* 0 when e->sig is the hub's signature over e->hash, -1 otherwise. */
int ledger_verify_sig(const struct ledger_entry *e,
    const unsigned char pk[LEDGER_PK_LEN]);

/*
 * Does e extend a chain that ends with prev (NULL: e must be seq 1 with
 * prev_hash LEDGER_GENESIS)?  Checks the fields, seq == prev->seq + 1,
 * e->prev_hash == prev->hash, that e->hash recomputes, and, when pk is not
 * NULL and e is signed, the signature (an unsigned e is left for a later
 * signed entry to cover: the caller must see one).  0 ok, -1 with the
 * reason in why.
 */
int ledger_check_link(const struct ledger_entry *prev,
    const struct ledger_entry *e, const unsigned char *pk, char *why,
    size_t len);

/* The export's header line and one entry's line, both ending in "\n":
 * seq,request_id,model,input_tokens,output_tokens,cached_tokens,
 * price_version,amount,prev_hash,hash,images,audio_seconds,audio_chars,
 * video_seconds with amount as a decimal with exactly 6 places (the unit
 * columns were added at the end, so readers of the first ten keep
 * working).  Returns the length, -1 when it does not fit. */
extern const char LEDGER_CSV_HEADER[];
int ledger_csv_line(const struct ledger_entry *e, char *buf, size_t len);

#endif
