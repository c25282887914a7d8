/*
 * billing/store_charge: the charges table, a request's charge against its
 * token's quota.  Owns reserving (an estimate held in tokens.used only when
 * the quota has room, or a row of 0 for a token without a quota), settling
 * (with no ledger entry) or voiding, parking a charge to await its agent's
 * usage report, noting an early report, listing the awaiting and the
 * stale charges, and voiding stale reservations.  Posting a charge with its
 * ledger entry is billing/store_ledger.c, which shares the charge checks
 * and quota updates of this file (billing/store_int.h).
 */
#include "billing/store_int.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- charges ------------------------------------------------------------ */

/*
 * A video job's create reservation is held while its job is queued (a
 * day at most): the stale sweep leaves it alone.  $1 is the sweep's
 * `before`.
 */
#define JOB_HELD_DAY	"86400"
#define JOB_HELD	"request_id NOT IN (SELECT create_key FROM video_jobs " \
			"WHERE state = 'queued' AND created_at >= $1 - " \
			JOB_HELD_DAY ")"

#define CHARGE_COLS	"request_id, token_id, reserved, amount, state, " \
			"model, input_tokens, output_tokens, cached_tokens, " \
			"price_version, created_at, cache_write_tokens, " \
			"agent_id, agent_reported, awaiting_since"

/* reqid_ok for a charge's key, with the error set when it is not. */
int
charge_reqid_ok(struct store *st, const char *request_id)
{
	if (reqid_ok(request_id))
		return 1;
	store_seterr(st, "charge request id must be 1..63 printable ASCII "
	    "characters");
	return 0;
}

/*
 * Usage of a charge that is posted to the ledger or parked for it: the
 * model as a ledger entry needs it (model_ok, and no '"': the ledger's
 * CSV export never quotes), every count, the price version and the
 * amount >= 0.  The model must be NUL-terminated inside its array.
 */
int
usage_ok(struct store *st, const char *what, const struct store_charge_usage *u)
{
	if (u == NULL) {
		store_seterr(st, "%s: NULL usage", what);
		return 0;
	}
	if (strnlen(u->model, sizeof(u->model)) == sizeof(u->model) ||
	    !model_ok(u->model) || strchr(u->model, '"') != NULL) {
		store_seterr(st, "%s: model name must be 1..%d printable ASCII "
		    "characters without spaces, commas or quotes", what,
		    STORE_MODEL_MAX);
		return 0;
	}
	if (u->input_tokens < 0 || u->output_tokens < 0 ||
	    u->cached_tokens < 0 || u->cache_write_tokens < 0 ||
	    u->price_version < 0 || u->amount < 0) {
		store_seterr(st, "%s: usage, amount and price version must be "
		    ">= 0", what);
		return 0;
	}
	return 1;
}

/* A 'reserved' charge of 0 for request $1 of token $2 at $3, made only
 * if the token exists (store_charge_reserve_unlimited, charge_restore). */
#define CHARGE_ROW0	"INSERT INTO charges (request_id, token_id, " \
	    "reserved, amount, state, created_at) SELECT $1, id, 0, 0, " \
	    "'reserved', $3 FROM tokens WHERE id = $2"

int
store_charge_reserve_unlimited(struct store *st, uint64_t token_id,
    const char *request_id)
{
	struct db_param p[3];

	if (st == NULL)
		return -1;
	if (!charge_reqid_ok(st, request_id))
		return -1;
	if (!id_ok(token_id))
		return 1;
	p[0] = ptext(request_id);
	p[1] = pint((int64_t)token_id);
	p[2] = pint((int64_t)time(NULL));
	/* One statement: its own transaction outside a batch. */
	if (q(st, CHARGE_ROW0 " AND quota = -1 ON CONFLICT DO NOTHING", p, 3,
	    NULL, NULL) != DB_OK)
		return -1;
	return st->changed > 0 ? 0 : 1;
}

int
store_charge_reserve(struct store *st, uint64_t token_id,
    const char *request_id, int64_t estimate_micros)
{
	return store_charge_reserve_held(st, token_id, request_id,
	    estimate_micros, 0, NULL);
}

int
store_charge_reserve_held(struct store *st, uint64_t token_id,
    const char *request_id, int64_t estimate_micros, int64_t held,
    int64_t *headroom)
{
	struct db_param p[4];
	struct one_id got = { 0, 0 };
	int rc;

	if (st == NULL)
		return -1;
	if (!charge_reqid_ok(st, request_id))
		return -1;
	if (estimate_micros < 0 || held < 0 ||
	    estimate_micros > INT64_MAX - held) {
		store_seterr(st, "charge estimate and held must be >= 0");
		return -1;
	}
	if (headroom != NULL)
		*headroom = -1;
	if (!id_ok(token_id))
		return 1;
	if (tx_begin_write(st) == -1)
		return -1;
	/* Already reserved (a repeated message): nothing more to do. */
	p[0] = ptext(request_id);
	if (q(st, "SELECT token_id FROM charges WHERE request_id = $1", p, 1,
	    row_id, &got) != DB_OK)
		goto fail;
	if (got.n > 0) {
		tx_rollback(st);
		return 0;
	}
	p[0] = pint(estimate_micros);
	p[1] = pint((int64_t)token_id);
	p[2] = pint(held);
	if (q(st, "UPDATE tokens SET used = used + $1 WHERE id = $2 AND "
	    "(quota = -1 OR used + $1 + $3 <= quota)", p, 3, NULL, NULL) !=
	    DB_OK)
		goto fail;
	if (st->changed == 0) {
		tx_rollback(st);
		return 1;
	}
	p[0] = ptext(request_id);
	p[1] = pint((int64_t)token_id);
	p[2] = pint(estimate_micros);
	p[3] = pint((int64_t)time(NULL));
	rc = q(st, "INSERT INTO charges (request_id, token_id, reserved, "
	    "amount, state, created_at) VALUES ($1, $2, $3, 0, 'reserved', $4)",
	    p, 4, NULL, NULL);
	if (rc == DB_CONFLICT) {
		/* Reserved at the same moment elsewhere: undo ours. */
		tx_rollback(st);
		return 0;
	}
	if (rc != DB_OK)
		goto fail;
	if (headroom != NULL) {
		p[0] = pint((int64_t)token_id);
		if (q(st, "SELECT CASE WHEN quota < 0 THEN -1 ELSE quota - used "
		    "END FROM tokens WHERE id = $1", p, 1, row_int, headroom) !=
		    DB_OK)
			goto fail;
	}
	if (tx_commit(st) == -1)
		goto fail;
	return 0;
fail:
	if (st->in_tx)
		tx_rollback(st);
	return -1;
}

int
row_settled(struct store *st, const struct db_row *r, void *arg)
{
	struct settled *s = arg;

	if (s->n++ == 0)
		return col_id(st, r, 0, &s->token_id) == -1 ||
		    col_int(st, r, 1, &s->reserved) == -1 ? -1 : 0;
	return 0;
}

/*
 * Inside a write transaction: a settled charge gives its reservation back
 * and takes its amount, tokens.used = used - reserved + amount.  The
 * WHERE keeps the sum inside int64 (SQLite would turn an overflowing
 * integer into a float).
 */
int
used_settle(struct store *st, uint64_t token_id, int64_t reserved,
    int64_t amount)
{
	struct db_param p[4];

	p[0] = pint(reserved);
	p[1] = pint(amount);
	p[2] = pint((int64_t)token_id);
	p[3] = pint(INT64_MAX - amount);
	if (q(st, "UPDATE tokens SET used = used - $1 + $2 WHERE id = $3 AND "
	    "used - $1 <= $4", p, 4, NULL, NULL) != DB_OK)
		return -1;
	if (st->changed == 0) {
		store_seterr(st, "token %llu: spent amount would pass the "
		    "int64 limit", (unsigned long long)token_id);
		return -1;
	}
	return 0;
}

int
store_charge_settle(struct store *st, const char *request_id,
    const struct store_charge_usage *u)
{
	struct db_param p[9];
	struct settled s = { 0, 0, 0 };
	int64_t amount = u != NULL ? u->amount : 0;

	if (st == NULL)
		return -1;
	if (!charge_reqid_ok(st, request_id))
		return -1;
	if (u != NULL && (amount < 0 || u->input_tokens < 0 ||
	    u->output_tokens < 0 || u->cached_tokens < 0 ||
	    u->cache_write_tokens < 0 || u->price_version < 0 ||
	    strnlen(u->model, sizeof(u->model)) > STORE_MODEL_MAX)) {
		store_seterr(st, "charge usage, amount and price version must "
		    "be >= 0");
		return -1;
	}
	if (tx_begin_write(st) == -1)
		return -1;
	/* Only a 'reserved' or 'awaiting' row moves: settling twice finds
	 * none. */
	p[0] = ptext(request_id);
	if (u != NULL) {
		p[1] = pint(amount);
		p[2] = ptext(u->model);
		p[3] = pint(u->input_tokens);
		p[4] = pint(u->output_tokens);
		p[5] = pint(u->cached_tokens);
		p[6] = pint(u->price_version);
		p[7] = pint(u->cache_write_tokens);
		if (q(st, "UPDATE charges SET state = 'posted', amount = $2, "
		    "model = $3, input_tokens = $4, output_tokens = $5, "
		    "cached_tokens = $6, price_version = $7, "
		    "cache_write_tokens = $8, awaiting_since = 0 "
		    "WHERE request_id = $1 AND state IN ('reserved', "
		    "'awaiting') RETURNING token_id, reserved",
		    p, 8, row_settled, &s) != DB_OK)
			goto fail;
	} else if (q(st, "UPDATE charges SET state = 'voided', amount = 0, "
	    "awaiting_since = 0 WHERE request_id = $1 AND state IN "
	    "('reserved', 'awaiting') RETURNING token_id, reserved", p, 1,
	    row_settled, &s) != DB_OK)
		goto fail;
	if (s.n == 0) {
		tx_rollback(st);
		return 1;
	}
	if (used_settle(st, s.token_id, s.reserved, amount) == -1 ||
	    tx_commit(st) == -1)
		goto fail;
	return 0;
fail:
	if (st->in_tx)
		tx_rollback(st);
	return -1;
}

static int
charge_conv(struct store *st, const struct db_row *r, void *out)
{
	struct store_charge *c = out;
	int64_t agent, rep;

	memset(c, 0, sizeof(*c));
	if (col_text(st, r, 0, c->request_id, sizeof(c->request_id)) == -1 ||
	    col_id(st, r, 1, &c->token_id) == -1 ||
	    col_int(st, r, 2, &c->reserved) == -1 ||
	    col_int(st, r, 3, &c->amount) == -1 ||
	    col_text(st, r, 4, c->state, sizeof(c->state)) == -1 ||
	    col_text(st, r, 5, c->u.model, sizeof(c->u.model)) == -1 ||
	    col_int(st, r, 6, &c->u.input_tokens) == -1 ||
	    col_int(st, r, 7, &c->u.output_tokens) == -1 ||
	    col_int(st, r, 8, &c->u.cached_tokens) == -1 ||
	    col_int(st, r, 9, &c->u.price_version) == -1 ||
	    col_int(st, r, 10, &c->created_at) == -1 ||
	    col_int(st, r, 11, &c->u.cache_write_tokens) == -1 ||
	    col_int(st, r, 12, &agent) == -1 ||
	    col_int(st, r, 13, &rep) == -1 ||
	    col_int(st, r, 14, &c->awaiting_since) == -1)
		return -1;
	if (agent < 0) {
		store_seterr(st, "charge %s: bad agent id", c->request_id);
		return -1;
	}
	c->agent_id = (uint64_t)agent;
	c->agent_reported = rep != 0;
	c->u.amount = c->amount;
	return 0;
}

int
store_charge_get(struct store *st, const char *request_id,
    struct store_charge *out)
{
	struct db_param p[1];

	if (st == NULL)
		return -1;
	if (out == NULL || !reqid_ok(request_id)) {
		store_seterr(st, "store_charge_get: bad argument");
		return -1;
	}
	p[0] = ptext(request_id);
	return query_one(st, "SELECT " CHARGE_COLS " FROM charges WHERE "
	    "request_id = $1", p, 1, charge_conv, sizeof(*out), out);
}

static int
agent_exists(struct store *st, uint64_t agent_id, int *found)
{
	struct db_param p[1];
	struct one_id got = { 0, 0 };

	p[0] = pint((int64_t)agent_id);
	if (q(st, "SELECT id FROM agents WHERE id = $1", p, 1, row_id,
	    &got) != DB_OK)
		return -1;
	*found = got.n > 0;
	return 0;
}

/*
 * Inside a write transaction: the reservation row of a request whose
 * post (or await) arrives without one — billing answered the reservation
 * from its open batch and a crash lost the batch.  Made again as a
 * reservation of 0 for token_id, so the real cost is still charged; a row
 * that exists (in any state) is left alone.
 */
int
charge_restore(struct store *st, const char *request_id, uint64_t token_id)
{
	struct db_param p[3];

	if (token_id == 0)
		return 0;
	p[0] = ptext(request_id);
	p[1] = pint((int64_t)token_id);
	p[2] = pint((int64_t)time(NULL));
	return q(st, CHARGE_ROW0 " ON CONFLICT DO NOTHING", p, 3, NULL,
	    NULL) == DB_OK ? 0 : -1;
}

int
store_charge_await(struct store *st, const char *request_id,
    uint64_t agent_id, const struct store_charge_usage *est)
{
	struct db_param p[10];
	struct one_id got = { 0, 0 };
	int found = 0, restored = 0;

	if (st == NULL)
		return -1;
	if (!charge_reqid_ok(st, request_id))
		return -1;
	if (!usage_ok(st, "store_charge_await", est))
		return -1;
	if (id_ok(agent_id) && agent_exists(st, agent_id, &found) == -1)
		return -1;
	if (!found) {
		store_seterr(st, "store_charge_await: no agent %llu",
		    (unsigned long long)agent_id);
		return -1;
	}
	p[0] = ptext(request_id);
	p[1] = pint((int64_t)agent_id);
	p[2] = pint(est->amount);
	p[3] = ptext(est->model);
	p[4] = pint(est->input_tokens);
	p[5] = pint(est->output_tokens);
	p[6] = pint(est->cached_tokens);
	p[7] = pint(est->cache_write_tokens);
	p[8] = pint(est->price_version);
	p[9] = pint((int64_t)time(NULL));
again:
	if (q(st, "UPDATE charges SET state = 'awaiting', agent_id = $2, "
	    "amount = $3, model = $4, input_tokens = $5, output_tokens = $6, "
	    "cached_tokens = $7, cache_write_tokens = $8, price_version = $9, "
	    "agent_reported = 0, awaiting_since = $10 "
	    "WHERE request_id = $1 AND state = 'reserved' RETURNING token_id",
	    p, 10, row_id, &got) != DB_OK)
		return -1;
	if (got.n == 0 && !restored && est->token_id != 0) {
		restored = 1;
		if (charge_restore(st, request_id, est->token_id) == -1)
			return -1;
		goto again;	/* a row that existed is left as it was */
	}
	return got.n > 0 ? 0 : 1;
}

/* The charge list calls: rows of sql ($1 = before, $2 = limit) to cb. */
static int
list_charges(struct store *st, const char *what, const char *sql,
    int64_t before, size_t limit, store_charge_cb cb, void *arg)
{
	struct collect c = { charge_conv, sizeof(struct store_charge), 0, 0,
	    NULL };
	struct db_param p[2];
	struct store_charge *ch;
	size_t i;
	int rc = 0;

	p[0] = pint(before);
	p[1] = pint(sql_limit(limit));
	if (query_all(st, what, cb != NULL, sql, p, 2, &c) != 0)
		return -1;
	ch = (struct store_charge *)(void *)c.items;
	for (i = 0; i < c.n && rc == 0; i++)
		rc = cb(&ch[i], arg);
	free(c.items);
	return rc;
}

int
store_charge_list_awaiting(struct store *st, int64_t before, size_t limit,
    store_charge_cb cb, void *arg)
{
	return list_charges(st, "store_charge_list_awaiting", "SELECT "
	    CHARGE_COLS " FROM charges WHERE state = 'awaiting' AND "
	    "awaiting_since < $1 ORDER BY awaiting_since, request_id LIMIT $2",
	    before, limit, cb, arg);
}

int
store_charge_list_stale(struct store *st, int64_t before, size_t limit,
    store_charge_cb cb, void *arg)
{
	return list_charges(st, "store_charge_list_stale", "SELECT "
	    CHARGE_COLS " FROM charges WHERE state = 'reserved' AND "
	    "created_at < $1 AND " JOB_HELD " ORDER BY created_at, "
	    "request_id LIMIT $2",
	    before, limit, cb, arg);
}

int
store_charge_note_report(struct store *st, const char *request_id,
    uint64_t agent_id, const struct store_charge_usage *u)
{
	struct db_param p[7];
	struct one_id got = { 0, 0 };

	if (st == NULL)
		return -1;
	if (!reqid_ok(request_id) || !id_ok(agent_id) || u == NULL ||
	    !model_ok(u->model) || u->input_tokens < 0 ||
	    u->output_tokens < 0 || u->cached_tokens < 0 ||
	    u->cache_write_tokens < 0) {
		store_seterr(st, "store_charge_note_report: bad argument");
		return -1;
	}
	p[0] = ptext(request_id);
	p[1] = pint((int64_t)agent_id);
	p[2] = ptext(u->model);
	p[3] = pint(u->input_tokens);
	p[4] = pint(u->output_tokens);
	p[5] = pint(u->cached_tokens);
	p[6] = pint(u->cache_write_tokens);
	if (q(st, "UPDATE charges SET agent_id = $2, model = $3, "
	    "input_tokens = $4, output_tokens = $5, cached_tokens = $6, "
	    "cache_write_tokens = $7 WHERE request_id = $1 AND "
	    "state = 'reserved' AND agent_id = 0 RETURNING token_id", p, 7,
	    row_id, &got) != DB_OK)
		return -1;
	return got.n > 0 ? 0 : 1;
}

/* One voided reservation: which token gets how much back. */
struct stale {
	uint64_t	token_id;
	int64_t		reserved;
};

static int
stale_conv(struct store *st, const struct db_row *r, void *out)
{
	struct stale *s = out;

	return col_id(st, r, 0, &s->token_id) == -1 ||
	    col_int(st, r, 1, &s->reserved) == -1 ? -1 : 0;
}

static int
stale_cmp(const void *a, const void *b)
{
	const struct stale *x = a, *y = b;

	return x->token_id < y->token_id ? -1 : x->token_id > y->token_id;
}

int
store_charge_void_stale(struct store *st, int64_t before, int64_t *n)
{
	struct collect c = { stale_conv, sizeof(struct stale), 0, 0, NULL };
	struct db_param p[2];
	struct stale *sv;
	size_t i, j;
	int64_t sum;

	if (st == NULL)
		return -1;
	if (tx_begin_write(st) == -1)
		return -1;
	/* The rows first (their locks, then the tokens': as settle). */
	p[0] = pint(before);
	if (q(st, "UPDATE charges SET state = 'voided', amount = 0 WHERE "
	    "state = 'reserved' AND created_at < $1 AND " JOB_HELD
	    " RETURNING token_id, reserved", p, 1, row_collect, &c) != DB_OK)
		goto fail;
	sv = (struct stale *)(void *)c.items;
	if (c.n > 1)
		qsort(sv, c.n, sizeof(*sv), stale_cmp);
	/* One UPDATE per token, in token order. */
	for (i = 0; i < c.n; i = j) {
		sum = 0;
		for (j = i; j < c.n && sv[j].token_id == sv[i].token_id; j++) {
			if (sv[j].reserved < 0 ||
			    sum > INT64_MAX - sv[j].reserved) {
				store_seterr(st, "token %llu: reservations "
				    "pass the int64 limit",
				    (unsigned long long)sv[i].token_id);
				goto fail;
			}
			sum += sv[j].reserved;
		}
		p[0] = pint(sum);
		p[1] = pint((int64_t)sv[i].token_id);
		if (q(st, "UPDATE tokens SET used = used - $1 WHERE id = $2",
		    p, 2, NULL, NULL) != DB_OK)
			goto fail;
	}
	if (tx_commit(st) == -1)
		goto fail;
	if (n != NULL)
		*n = (int64_t)c.n;
	free(c.items);
	return 0;
fail:
	if (st->in_tx)
		tx_rollback(st);
	free(c.items);
	return -1;
}
