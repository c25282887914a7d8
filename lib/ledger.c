/*
 * lib/ledger: canonical bytes, hash, signature, chain link check and CSV
 * line of one ledger entry (rules in lib/ledger.h).
 */
#include "lib/ledger.h"

#include <stdio.h>
#include <string.h>
#include <sodium.h>
#include "lib/hash.h"
#include "lib/money.h"

const char LEDGER_GENESIS[LEDGER_HEX_LEN + 1] =
    "0000000000000000000000000000000000000000000000000000000000000000";

const char LEDGER_CSV_HEADER[] = "seq,request_id,model,input_tokens,"
    "output_tokens,cached_tokens,price_version,amount,prev_hash,hash,"
    "images,audio_seconds,audio_chars,video_seconds\n";

static const char ctx_entry[] = "switchboard ledger v1\n";
static const char ctx_entry2[] = "switchboard ledger v2\n";	/* with units */
static const char ctx_sig[] = "switchboard receipt v1\n";

#define CANON_MAX (sizeof(ctx_entry) - 1 + 3 * 8 + 2 + LEDGER_REQID_MAX + \
	2 + LEDGER_MODEL_MAX + 7 * 8 + 1 + 4 * 8)

static int
hex_decode(const char *h, unsigned char out[32])
{
	size_t bin;

	if (!hash_hex_ok(h))
		return -1;
	return sodium_hex2bin(out, 32, h, LEDGER_HEX_LEN, NULL, &bin, NULL) == 0
	    && bin == 32 ? 0 : -1;
}

/* Printable ASCII without the bytes that would need CSV quoting. */
static int
text_ok(const char *s, size_t max)
{
	size_t n = strnlen(s, max + 1);

	if (n == 0 || n > max)
		return 0;
	for (; *s != '\0'; s++)
		if (*s <= 0x20 || *s > 0x7e || *s == ',' || *s == '"')
			return 0;
	return 1;
}

int
ledger_entry_check(const struct ledger_entry *e, char *why, size_t len)
{
	const char *bad = NULL;

	if (e == NULL)
		bad = "no entry";
	else if (e->agent_id == 0 || e->agent_id > (uint64_t)INT64_MAX)
		bad = "bad agent id";
	else if (e->seq == 0 || e->seq > (uint64_t)INT64_MAX)
		bad = "bad seq";
	else if (e->token_id > (uint64_t)INT64_MAX)
		bad = "bad token id";
	else if (!text_ok(e->request_id, LEDGER_REQID_MAX))
		bad = "bad request id";
	else if (!text_ok(e->model, LEDGER_MODEL_MAX))
		bad = "bad model";
	else if (e->input_tokens < 0 || e->output_tokens < 0 ||
	    e->cached_tokens < 0 || e->cache_write_tokens < 0)
		bad = "negative token count";
	else if (e->images < 0 || e->audio_seconds < 0 ||
	    e->audio_chars < 0 || e->video_seconds < 0)
		bad = "negative unit count";
	else if (e->price_version < 0 || e->amount < 0 || e->created_at < 0)
		bad = "negative price version, amount or time";
	else if (e->agent_reported != 0 && e->agent_reported != 1)
		bad = "agent_reported is not 0 or 1";
	else if (!hash_hex_ok(e->prev_hash))
		bad = "prev_hash is not 64 lowercase hex digits";
	if (bad == NULL)
		return 0;
	if (why != NULL && len > 0)
		snprintf(why, len, "%s", bad);
	return -1;
}

static unsigned char *
put64(unsigned char *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--)
		*p++ = (unsigned char)(v >> (i * 8));
	return p;
}

static unsigned char *
putstr(unsigned char *p, const char *s)
{
	size_t n = strlen(s);

	*p++ = (unsigned char)(n >> 8);
	*p++ = (unsigned char)n;
	memcpy(p, s, n);
	return p + n;
}

/* The canonical bytes of a checked entry; returns their length. */
static size_t
canonical(const struct ledger_entry *e, unsigned char buf[CANON_MAX])
{
	unsigned char *p = buf;
	int units = e->images != 0 || e->audio_seconds != 0 ||
	    e->audio_chars != 0 || e->video_seconds != 0;

	memcpy(p, units ? ctx_entry2 : ctx_entry, sizeof(ctx_entry) - 1);
	p += sizeof(ctx_entry) - 1;
	p = put64(p, e->agent_id);
	p = put64(p, e->seq);
	p = put64(p, e->token_id);
	p = putstr(p, e->request_id);
	p = putstr(p, e->model);
	p = put64(p, (uint64_t)e->input_tokens);
	p = put64(p, (uint64_t)e->output_tokens);
	p = put64(p, (uint64_t)e->cached_tokens);
	p = put64(p, (uint64_t)e->cache_write_tokens);
	p = put64(p, (uint64_t)e->price_version);
	p = put64(p, (uint64_t)e->amount);
	p = put64(p, (uint64_t)e->created_at);
	*p++ = (unsigned char)e->agent_reported;
	if (units) {
		p = put64(p, (uint64_t)e->images);
		p = put64(p, (uint64_t)e->audio_seconds);
		p = put64(p, (uint64_t)e->audio_chars);
		p = put64(p, (uint64_t)e->video_seconds);
	}
	return (size_t)(p - buf);
}

/* hash of e into out (hex); -1 when malformed. */
static int
compute(const struct ledger_entry *e, char out[LEDGER_HEX_LEN + 1])
{
	unsigned char buf[32 + CANON_MAX], h[32];
	size_t n;

	/* prev_hash's 32 raw bytes, then the canonical bytes, hashed in one
	 * call (lib/hash.h: OpenSSL's SHA-256, with the CPU's SHA
	 * instructions where it has them). */
	if (ledger_entry_check(e, NULL, 0) != 0 ||
	    hex_decode(e->prev_hash, buf) != 0)
		return -1;
	n = canonical(e, buf + 32);
	hash_sha256(buf, 32 + n, h);
	sodium_bin2hex(out, LEDGER_HEX_LEN + 1, h, sizeof(h));
	return 0;
}

int
ledger_hash(struct ledger_entry *e)
{
	return compute(e, e->hash);
}

/* The signed message: context || raw hash. */
static int
sig_msg(const struct ledger_entry *e, unsigned char m[sizeof(ctx_sig) - 1 + 32])
{
	memcpy(m, ctx_sig, sizeof(ctx_sig) - 1);
	return hex_decode(e->hash, m + sizeof(ctx_sig) - 1);
}

int
ledger_sign(struct ledger_entry *e, const unsigned char sk[LEDGER_SK_LEN])
{
	unsigned char m[sizeof(ctx_sig) - 1 + 32];

	if (sig_msg(e, m) != 0)
		return -1;
	crypto_sign_detached(e->sig, NULL, m, sizeof(m), sk);
	return 0;
}

int
ledger_signed(const struct ledger_entry *e)
{
	static const unsigned char zero[LEDGER_SIG_LEN];

	return memcmp(e->sig, zero, sizeof(zero)) != 0;
}

int
ledger_verify_sig(const struct ledger_entry *e,
    const unsigned char pk[LEDGER_PK_LEN])
{
	unsigned char m[sizeof(ctx_sig) - 1 + 32];

	if (sig_msg(e, m) != 0)
		return -1;
	return crypto_sign_verify_detached(e->sig, m, sizeof(m), pk) == 0 ?
	    0 : -1;
}

int
ledger_check_link(const struct ledger_entry *prev,
    const struct ledger_entry *e, const unsigned char *pk, char *why,
    size_t len)
{
	char h[LEDGER_HEX_LEN + 1], r[64];

	if (ledger_entry_check(e, r, sizeof(r)) != 0) {
		snprintf(why, len, "seq %llu: %s", e != NULL ?
		    (unsigned long long)e->seq : 0ULL, r);
		return -1;
	}
	if (prev == NULL ? e->seq != 1 : (e->seq != prev->seq + 1 ||
	    e->agent_id != prev->agent_id)) {
		snprintf(why, len, "seq %llu does not follow %llu",
		    (unsigned long long)e->seq,
		    prev == NULL ? 0ULL : (unsigned long long)prev->seq);
		return -1;
	}
	if (strcmp(e->prev_hash, prev == NULL ? LEDGER_GENESIS :
	    prev->hash) != 0) {
		snprintf(why, len, "seq %llu: prev_hash is not the hash of "
		    "the entry before", (unsigned long long)e->seq);
		return -1;
	}
	if (compute(e, h) != 0 || strcmp(h, e->hash) != 0) {
		snprintf(why, len, "seq %llu: hash does not match the entry",
		    (unsigned long long)e->seq);
		return -1;
	}
	if (pk != NULL && ledger_signed(e) && ledger_verify_sig(e, pk) != 0) {
		snprintf(why, len, "seq %llu: bad hub signature",
		    (unsigned long long)e->seq);
		return -1;
	}
	return 0;
}

int
ledger_csv_line(const struct ledger_entry *e, char *buf, size_t len)
{
	char amount[32];
	int n;

	if (ledger_entry_check(e, NULL, 0) != 0 || !hash_hex_ok(e->hash))
		return -1;
	money_format(e->amount, amount, sizeof(amount));
	n = snprintf(buf, len, "%llu,%s,%s,%lld,%lld,%lld,%lld,%s,%s,%s,"
	    "%lld,%lld,%lld,%lld\n",
	    (unsigned long long)e->seq, e->request_id, e->model,
	    (long long)e->input_tokens, (long long)e->output_tokens,
	    (long long)e->cached_tokens, (long long)e->price_version, amount,
	    e->prev_hash, e->hash, (long long)e->images,
	    (long long)e->audio_seconds, (long long)e->audio_chars,
	    (long long)e->video_seconds);
	return n < 0 || (size_t)n >= len ? -1 : n;
}
