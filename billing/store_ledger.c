/*
 * billing/store_ledger: the agents' ledger chains.  Owns posting a charge
 * (store_charge_post: in one transaction the charge becomes posted, its
 * token's quota takes the real amount and the next entry is appended to
 * the agent's chain; the entry's hash and signature come from lib/ledger,
 * the chain head lives in the agent's row), signing a batch's last entry,
 * reading a chain's head, an entry or a range of entries, and the agents'
 * acknowledgements.
 */
#include "billing/store_int.h"
#include "lib/hash.h"
#include "lib/ledger.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

/* ---- the ledger ----------------------------------------------------------- */

_Static_assert(STORE_MODEL_MAX == LEDGER_MODEL_MAX,
    "a charge's model must fit a ledger entry");
_Static_assert(sizeof(((struct store_charge *)0)->request_id) ==
    LEDGER_REQID_MAX + 1, "a charge's request id must fit a ledger entry");

/*
 * ledger.sig holds the hub's 64-byte Ed25519 signature as standard padded
 * base64 (88 characters), like the agents' public keys.
 */
#define SIG_B64_LEN	sodium_base64_ENCODED_LEN(LEDGER_SIG_LEN, \
			    sodium_base64_VARIANT_ORIGINAL)

#define LEDGER_COLS	"agent_id, seq, prev_hash, hash, request_id, " \
			"token_id, model, input_tokens, output_tokens, " \
			"cached_tokens, cache_write_tokens, price_version, " \
			"amount, created_at, sig, agent_reported, images, " \
			"audio_seconds, audio_chars, video_seconds"

/* The head of an agent's chain: agents.ledger_seq, ledger_hash. */
struct head {
	int	n;
	int64_t	seq;
	char	hash[LEDGER_HEX_LEN + 1];
};

static int
row_head(struct store *st, const struct db_row *r, void *arg)
{
	struct head *h = arg;

	if (h->n++ > 0)
		return 0;
	if (col_int(st, r, 0, &h->seq) == -1 ||
	    col_text(st, r, 1, h->hash, sizeof(h->hash)) == -1)
		return -1;
	if (h->seq < 0 || !hash_hex_ok(h->hash)) {
		store_seterr(st, "agent's ledger head is corrupt");
		return -1;
	}
	return 0;
}

/* Which agent a charge that did not move is awaiting, if any. */
static int
row_agent(struct store *st, const struct db_row *r, void *arg)
{
	return col_int(st, r, 0, arg);
}

int
store_charge_post(struct store *st, const char *request_id,
    uint64_t agent_id, const struct store_charge_usage *u,
    int agent_reported, const unsigned char sk[64],
    struct ledger_entry *out)
{
	struct ledger_entry e;
	struct db_param p[20];
	struct settled s = { 0, 0, 0 };
	struct head h;
	char why[96], sig[SIG_B64_LEN];
	int64_t other = 0;
	int restored = 0;

	if (st == NULL)
		return -1;
	if (!charge_reqid_ok(st, request_id))
		return -1;
	if (!id_ok(agent_id)) {
		store_seterr(st, "store_charge_post: no agent %llu",
		    (unsigned long long)agent_id);
		return -1;
	}
	if (!usage_ok(st, "store_charge_post", u))
		return -1;
	if (agent_reported != 0 && agent_reported != 1) {
		store_seterr(st, "store_charge_post: agent_reported must be "
		    "0 or 1");
		return -1;
	}
	/* The entry as it will be written, checked before any change. */
	memset(&e, 0, sizeof(e));
	e.agent_id = agent_id;
	e.seq = 1;
	memcpy(e.prev_hash, LEDGER_GENESIS, sizeof(e.prev_hash));
	snprintf(e.request_id, sizeof(e.request_id), "%s", request_id);
	snprintf(e.model, sizeof(e.model), "%s", u->model);
	e.input_tokens = u->input_tokens;
	e.output_tokens = u->output_tokens;
	e.cached_tokens = u->cached_tokens;
	e.cache_write_tokens = u->cache_write_tokens;
	e.price_version = u->price_version;
	e.amount = u->amount;
	e.created_at = (int64_t)time(NULL);
	e.agent_reported = agent_reported;
	e.images = u->images;
	e.audio_seconds = u->audio_seconds;
	e.audio_chars = u->audio_chars;
	e.video_seconds = u->video_seconds;
	if (ledger_entry_check(&e, why, sizeof(why)) != 0) {
		store_seterr(st, "store_charge_post: ledger entry: %s", why);
		return -1;
	}

	if (tx_begin_write(st) == -1)
		return -1;
	/*
	 * 1. The charge: only a 'reserved' row, or one 'awaiting' this
	 * agent, moves (this also takes its row lock on PostgreSQL, so a
	 * concurrent post of the same request waits, then finds it posted).
	 */
	p[0] = ptext(request_id);
	p[1] = pint(u->amount);
	p[2] = ptext(u->model);
	p[3] = pint(u->input_tokens);
	p[4] = pint(u->output_tokens);
	p[5] = pint(u->cached_tokens);
	p[6] = pint(u->cache_write_tokens);
	p[7] = pint(u->price_version);
	p[8] = pint((int64_t)agent_id);
	p[9] = pint(agent_reported);
	p[10] = ptext(printable_ok(u->channel, sizeof(u->channel)) ?
	    u->channel : "");
again:
#define POST_CHARGE	"UPDATE charges SET state = 'posted', amount = $2, " \
	    "model = $3, input_tokens = $4, output_tokens = $5, " \
	    "cached_tokens = $6, cache_write_tokens = $7, price_version = $8, " \
	    "agent_id = $9, agent_reported = $10, awaiting_since = 0, " \
	    "channel = CASE WHEN $11 = '' THEN channel ELSE $11 END " \
	    "WHERE request_id = $1 AND (state = 'reserved' OR " \
	    "(state = 'awaiting' AND agent_id = $9))"
	if (update_row(st, POST_CHARGE " RETURNING token_id, reserved",
	    POST_CHARGE, "SELECT token_id, reserved FROM charges WHERE "
	    "request_id = $1", p, 11, 1, row_settled, &s) != DB_OK)
		goto fail;
#undef POST_CHARGE
	if (s.n == 0) {
		if (q(st, "SELECT agent_id FROM charges WHERE request_id = $1 "
		    "AND state = 'awaiting'", p, 1, row_agent, &other) != DB_OK)
			goto fail;
		if (other != 0) {
			store_seterr(st, "charge %s awaits agent %lld, not "
			    "%llu", request_id, (long long)other,
			    (unsigned long long)agent_id);
			goto fail;
		}
		if (!restored && u->token_id != 0) {
			restored = 1;
			if (charge_restore(st, request_id, u->token_id) == -1)
				goto fail;
			goto again;	/* a row that existed is left as it was */
		}
		tx_rollback(st);
		return 1;
	}
	/* The units, on the charge (only when there are any). */
	if ((e.images | e.audio_seconds | e.audio_chars | e.video_seconds) !=
	    0) {
		p[1] = pint(e.images);
		p[2] = pint(e.audio_seconds);
		p[3] = pint(e.audio_chars);
		p[4] = pint(e.video_seconds);
		if (q(st, "UPDATE charges SET images = $2, audio_seconds = $3, "
		    "audio_chars = $4, video_seconds = $5 WHERE request_id = $1",
		    p, 5, NULL, NULL) != DB_OK)
			goto fail;
	}
	/* 2. The token's quota. */
	if (used_settle(st, s.token_id, s.reserved, u->amount) == -1)
		goto fail;
	/*
	 * 3. The chain head: the new entry's seq and the previous entry's
	 * hash.  On PostgreSQL the UPDATE takes the agent's row lock until
	 * COMMIT; SQLite's write transaction already excludes every other
	 * writer, so a read is enough there, and step 4 writes the head in
	 * one statement.
	 */
	memset(&h, 0, sizeof(h));
	p[0] = pint((int64_t)agent_id);
	if (q(st, st->eng->mask == SCHEMA_SQLITE ?
	    "SELECT ledger_seq + 1, ledger_hash FROM agents WHERE id = $1" :
	    "UPDATE agents SET ledger_seq = ledger_seq + 1 WHERE id = $1 "
	    "RETURNING ledger_seq, ledger_hash", p, 1, row_head, &h) != DB_OK)
		goto fail;
	if (h.n == 0) {
		store_seterr(st, "store_charge_post: no agent %llu",
		    (unsigned long long)agent_id);
		goto fail;
	}
	e.seq = (uint64_t)h.seq;
	memcpy(e.prev_hash, h.hash, sizeof(e.prev_hash));
	e.token_id = s.token_id;
	if (ledger_hash(&e) != 0 || (sk != NULL && ledger_sign(&e, sk) != 0)) {
		store_seterr(st, "store_charge_post: cannot hash entry %lld "
		    "of agent %llu", (long long)h.seq,
		    (unsigned long long)agent_id);
		goto fail;
	}
	if (sk != NULL)
		sodium_bin2base64(sig, sizeof(sig), e.sig, sizeof(e.sig),
		    sodium_base64_VARIANT_ORIGINAL);
	else
		sig[0] = '\0';	/* signed with its batch: store_ledger_sign */
	/* 4. The entry, and the new head. */
	p[0] = pint((int64_t)e.agent_id);
	p[1] = pint((int64_t)e.seq);
	p[2] = ptext(e.prev_hash);
	p[3] = ptext(e.hash);
	p[4] = ptext(e.request_id);
	p[5] = pint((int64_t)e.token_id);
	p[6] = ptext(e.model);
	p[7] = pint(e.input_tokens);
	p[8] = pint(e.output_tokens);
	p[9] = pint(e.cached_tokens);
	p[10] = pint(e.cache_write_tokens);
	p[11] = pint(e.price_version);
	p[12] = pint(e.amount);
	p[13] = pint(e.created_at);
	p[14] = ptext(sig);
	p[15] = pint(e.agent_reported);
	p[16] = pint(e.images);
	p[17] = pint(e.audio_seconds);
	p[18] = pint(e.audio_chars);
	p[19] = pint(e.video_seconds);
	if (q(st, "INSERT INTO ledger (" LEDGER_COLS ") VALUES ($1, $2, $3, "
	    "$4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, "
	    "$18, $19, $20)", p, 20, NULL, NULL) != DB_OK)
		goto fail;
	p[1] = pint((int64_t)e.seq);
	p[2] = ptext(e.hash);
	if (q(st, "UPDATE agents SET ledger_seq = $2, ledger_hash = $3 "
	    "WHERE id = $1", p, 3, NULL, NULL) != DB_OK || tx_commit(st) == -1)
		goto fail;
	if (out != NULL)
		*out = e;
	return 0;
fail:
	if (st->in_tx)
		tx_rollback(st);
	return -1;
}

int
store_ledger_sign(struct store *st, uint64_t agent_id, uint64_t seq,
    const unsigned char sig[64])
{
	struct db_param p[3];
	char b64[SIG_B64_LEN];

	if (st == NULL || agent_id == 0 || agent_id > (uint64_t)INT64_MAX ||
	    seq == 0 || seq > (uint64_t)INT64_MAX) {
		if (st != NULL)
			store_seterr(st, "store_ledger_sign: bad agent or seq");
		return -1;
	}
	sodium_bin2base64(b64, sizeof(b64), sig, 64,
	    sodium_base64_VARIANT_ORIGINAL);
	p[0] = pint((int64_t)agent_id);
	p[1] = pint((int64_t)seq);
	p[2] = ptext(b64);
	return q(st, "UPDATE ledger SET sig = $3 WHERE agent_id = $1 AND "
	    "seq = $2", p, 3, NULL, NULL) == DB_OK ? 0 : -1;
}

int
store_ledger_head(struct store *st, uint64_t agent_id, uint64_t *seq,
    char hash[65])
{
	struct db_param p[1];
	struct head h;

	if (st == NULL)
		return -1;
	if (seq == NULL || hash == NULL) {
		store_seterr(st, "store_ledger_head: NULL argument");
		return -1;
	}
	memset(&h, 0, sizeof(h));
	if (id_ok(agent_id)) {
		p[0] = pint((int64_t)agent_id);
		if (q(st, "SELECT ledger_seq, ledger_hash FROM agents WHERE "
		    "id = $1", p, 1, row_head, &h) != DB_OK)
			return -1;
	}
	if (h.n == 0) {
		store_seterr(st, "store_ledger_head: no agent %llu",
		    (unsigned long long)agent_id);
		return -1;
	}
	*seq = (uint64_t)h.seq;
	memcpy(hash, h.hash, LEDGER_HEX_LEN + 1);
	return 0;
}

static int
ledger_conv(struct store *st, const struct db_row *r, void *out)
{
	struct ledger_entry *e = out;
	char sig[SIG_B64_LEN];
	const char *end = NULL;
	size_t n = 0;
	int64_t rep;

	memset(e, 0, sizeof(*e));
	if (col_id(st, r, 0, &e->agent_id) == -1 ||
	    col_id(st, r, 1, &e->seq) == -1 ||
	    col_text(st, r, 2, e->prev_hash, sizeof(e->prev_hash)) == -1 ||
	    col_text(st, r, 3, e->hash, sizeof(e->hash)) == -1 ||
	    col_text(st, r, 4, e->request_id, sizeof(e->request_id)) == -1 ||
	    (r->ncol > 5 && r->val[5] != NULL &&
	    col_id(st, r, 5, &e->token_id) == -1) ||
	    col_text(st, r, 6, e->model, sizeof(e->model)) == -1 ||
	    col_int(st, r, 7, &e->input_tokens) == -1 ||
	    col_int(st, r, 8, &e->output_tokens) == -1 ||
	    col_int(st, r, 9, &e->cached_tokens) == -1 ||
	    col_int(st, r, 10, &e->cache_write_tokens) == -1 ||
	    col_int(st, r, 11, &e->price_version) == -1 ||
	    col_int(st, r, 12, &e->amount) == -1 ||
	    col_int(st, r, 13, &e->created_at) == -1 ||
	    col_text(st, r, 14, sig, sizeof(sig)) == -1 ||
	    col_int(st, r, 15, &rep) == -1 ||
	    col_int(st, r, 16, &e->images) == -1 ||
	    col_int(st, r, 17, &e->audio_seconds) == -1 ||
	    col_int(st, r, 18, &e->audio_chars) == -1 ||
	    col_int(st, r, 19, &e->video_seconds) == -1)
		return -1;
	e->agent_reported = rep != 0;
	if (sig[0] == '\0')
		return 0;	/* covered by a later entry's signature */
	if (sodium_base642bin(e->sig, sizeof(e->sig), sig, strlen(sig), NULL,
	    &n, &end, sodium_base64_VARIANT_ORIGINAL) != 0 ||
	    n != sizeof(e->sig) || end != sig + strlen(sig)) {
		store_seterr(st, "ledger entry %llu of agent %llu: stored "
		    "signature is corrupt", (unsigned long long)e->seq,
		    (unsigned long long)e->agent_id);
		return -1;
	}
	return 0;
}

int
store_ledger_get(struct store *st, uint64_t agent_id, uint64_t seq,
    struct ledger_entry *out)
{
	struct db_param p[2];

	if (st == NULL)
		return -1;
	if (out == NULL) {
		store_seterr(st, "store_ledger_get: NULL argument");
		return -1;
	}
	if (!id_ok(agent_id) || !id_ok(seq))
		return 1;
	p[0] = pint((int64_t)agent_id);
	p[1] = pint((int64_t)seq);
	return query_one(st, "SELECT " LEDGER_COLS " FROM ledger WHERE "
	    "agent_id = $1 AND seq = $2", p, 2, ledger_conv, sizeof(*out), out);
}

int
store_ledger_list(struct store *st, uint64_t agent_id, uint64_t after,
    size_t limit, store_ledger_cb cb, void *arg)
{
	struct collect c = { ledger_conv, sizeof(struct ledger_entry), 0, 0,
	    NULL };
	struct db_param p[3];
	struct ledger_entry *e;
	size_t i;
	int rc = 0;

	if (st == NULL)
		return -1;
	if (!id_ok(agent_id) || after > (uint64_t)INT64_MAX) {
		store_seterr(st, "store_ledger_list: bad agent id or seq");
		return -1;
	}
	p[0] = pint((int64_t)agent_id);
	p[1] = pint((int64_t)after);
	p[2] = pint(sql_limit(limit));
	if (query_all(st, "store_ledger_list", cb != NULL,
	    "SELECT " LEDGER_COLS " FROM ledger WHERE agent_id = $1 AND "
	    "seq > $2 ORDER BY seq LIMIT $3", p, 3, &c) != 0)
		return -1;
	e = (struct ledger_entry *)(void *)c.items;
	for (i = 0; i < c.n && rc == 0; i++)
		rc = cb(&e[i], arg);
	free(c.items);
	return rc;
}

int
store_ledger_ack(struct store *st, uint64_t agent_id, uint64_t seq)
{
	struct db_param p[2];
	struct one_id got = { 0, 0 };
	struct head h;

	if (st == NULL)
		return -1;
	if (seq > (uint64_t)INT64_MAX) {
		store_seterr(st, "store_ledger_ack: bad seq");
		return -1;
	}
	if (!id_ok(agent_id))
		return 1;
	p[0] = pint((int64_t)agent_id);
	p[1] = pint((int64_t)seq);
	if (q(st, "UPDATE agents SET acked_seq = CASE WHEN acked_seq < $2 "
	    "THEN $2 ELSE acked_seq END WHERE id = $1 AND ledger_seq >= $2 "
	    "RETURNING id", p, 2, row_id, &got) != DB_OK)
		return -1;
	if (got.n > 0)
		return 0;
	/* No such agent, or an ack past the end of its chain. */
	memset(&h, 0, sizeof(h));
	if (q(st, "SELECT ledger_seq, ledger_hash FROM agents WHERE id = $1",
	    p, 1, row_head, &h) != DB_OK)
		return -1;
	if (h.n == 0)
		return 1;
	store_seterr(st, "agent %llu acknowledges seq %llu past the end of "
	    "its chain (%lld)", (unsigned long long)agent_id,
	    (unsigned long long)seq, (long long)h.seq);
	return -1;
}

int
store_ledger_acked(struct store *st, uint64_t agent_id, uint64_t *seq)
{
	struct db_param p[1];
	struct head h;

	if (st == NULL)
		return -1;
	if (seq == NULL) {
		store_seterr(st, "store_ledger_acked: NULL argument");
		return -1;
	}
	if (!id_ok(agent_id))
		return 1;
	memset(&h, 0, sizeof(h));
	p[0] = pint((int64_t)agent_id);
	if (q(st, "SELECT acked_seq, ledger_hash FROM agents WHERE id = $1",
	    p, 1, row_head, &h) != DB_OK)
		return -1;
	if (h.n == 0)
		return 1;
	*seq = (uint64_t)h.seq;
	return 0;
}
