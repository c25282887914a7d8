/*
 * billing/store_admin: the operator's store calls (billing/store_admin.h),
 * written once for both engines on the engine interface of schema.h, like
 * billing/store.c and the files of its calls.  Kept apart from those so
 * the money path's files (store_charge.c, store_ledger.c) stay about the
 * money path.
 */
#include "billing/store_admin.h"
#include "billing/schema.h"
#include "lib/hash.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static struct db_param
pi(int64_t v)
{
	struct db_param p = { .type = DB_PINT, .i = v };

	return p;
}

static struct db_param
pt(const char *s)
{
	struct db_param p = { .type = DB_PTEXT, .s = s };

	return p;
}

static int
q(struct store *st, const char *sql, const struct db_param *p, int np,
    db_row_cb cb, void *arg)
{
	st->err[0] = '\0';
	return st->eng->query(st, sql, p, np, cb, arg);
}

static int64_t
now_s(void)
{
	return (int64_t)time(NULL);
}

static int64_t
ci(const struct db_row *r, int c)
{
	return c < r->ncol && r->val[c] != NULL ? strtoll(r->val[c], NULL, 10) : 0;
}

static void
ct(const struct db_row *r, int c, char *buf, size_t len)
{
	snprintf(buf, len, "%s", c < r->ncol && r->val[c] ? r->val[c] : "");
}

/* Rows counted; the first column of the first kept. */
struct first {
	int n;
	int64_t v;
};

static int
row_first(struct store *st, const struct db_row *r, void *arg)
{
	struct first *f = arg;

	if (f->n++ == 0)
		f->v = ci(r, 0);
	return 0;
}

static int
printable(const char *s, size_t max, int allow_empty)
{
	size_t n;

	if (s == NULL || (n = strlen(s)) > max || (n == 0 && !allow_empty))
		return 0;
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || (unsigned char)*s > 0x7e)
			return 0;
	return 1;
}

/* ---- admin keys ---------------------------------------------------------- */

int
store_admin_key_create(struct store *st, const char *name, const char *hash,
    uint64_t *out_id)
{
	struct db_param p[3];
	struct first f = { 0, 0 };
	int rc;

	if (!printable(name, STORE_NAME_MAX, 0) || !hash_hex_ok(hash)) {
		store_seterr(st, "admin key: name must be 1..63 printable bytes");
		return -1;
	}
	p[0] = pt(name);
	p[1] = pt(hash);
	p[2] = pi(now_s());
	rc = q(st, "INSERT INTO admin_keys (name, hash, created_at) VALUES "
	    "($1, $2, $3) RETURNING id", p, 3, row_first, &f);
	if (rc == DB_CONFLICT)
		store_seterr(st, "admin key: that key exists already");
	if (rc != DB_OK || f.n != 1)
		return -1;
	*out_id = (uint64_t)f.v;
	return 0;
}

struct key_walk {
	store_admin_key_cb cb;
	void *arg;
	int rc;
};

static int
row_key(struct store *st, const struct db_row *r, void *arg)
{
	struct key_walk *w = arg;
	struct store_admin_key k;

	memset(&k, 0, sizeof(k));
	k.id = (uint64_t)ci(r, 0);
	ct(r, 1, k.name, sizeof(k.name));
	ct(r, 2, k.hash_hex, sizeof(k.hash_hex));
	k.created_at = ci(r, 3);
	k.revoked_at = ci(r, 4);
	k.last_used_at = ci(r, 5);
	if (w->rc == 0)
		w->rc = w->cb(&k, w->arg);
	return 0;
}

int
store_admin_key_list(struct store *st, store_admin_key_cb cb, void *arg)
{
	struct key_walk w = { cb, arg, 0 };

	if (q(st, "SELECT id, name, hash, created_at, revoked_at, last_used_at "
	    "FROM admin_keys ORDER BY id", NULL, 0, row_key, &w) != DB_OK)
		return -1;
	return w.rc;
}

int
store_admin_key_revoke(struct store *st, uint64_t id)
{
	struct db_param p[2] = { pi(now_s()), pi((int64_t)id) };
	struct first f = { 0, 0 };

	if (q(st, "UPDATE admin_keys SET revoked_at = $1 WHERE id = $2 AND "
	    "revoked_at = 0 RETURNING id", p, 2, row_first, &f) != DB_OK)
		return -1;
	return f.n > 0 ? 0 : 1;
}

int
store_admin_key_check(struct store *st, const char *hash, uint64_t *id)
{
	struct db_param p[2];
	struct first f = { 0, 0 };

	if (!hash_hex_ok(hash))
		return 1;
	p[0] = pi(now_s());
	p[1] = pt(hash);
	if (q(st, "UPDATE admin_keys SET last_used_at = $1 WHERE hash = $2 AND "
	    "revoked_at = 0 RETURNING id", p, 2, row_first, &f) != DB_OK)
		return -1;
	if (f.n == 0)
		return 1;
	*id = (uint64_t)f.v;
	return 0;
}

/* ---- tokens ------------------------------------------------------------- */

struct tok_find {
	uint64_t id;
	struct store_token *out;
	int found;
};

static int
tok_find(const struct store_token *t, void *arg)
{
	struct tok_find *f = arg;

	if (t->id != f->id)
		return 0;
	*f->out = *t;
	f->found = 1;
	return 1;
}

int
store_token_get(struct store *st, uint64_t id, struct store_token *out)
{
	struct tok_find f = { id, NULL, 0 };
	int rc;

	memset(out, 0, sizeof(*out));
	f.out = out;
	rc = store_token_list(st, tok_find, &f);

	if (rc == -1)
		return -1;
	return f.found ? 0 : 1;
}

static int
models_ok(const char *s)
{
	if (!printable(s, STORE_MODELS_MAX, 1) || strchr(s, ' ') != NULL)
		return 0;
	return s[0] == '\0' || (s[0] != ',' && s[strlen(s) - 1] != ',' &&
	    strstr(s, ",,") == NULL);
}

int
store_token_update(struct store *st, uint64_t id, const char *name,
    int64_t quota, const char *models, int64_t expires_at)
{
	struct db_param p[2];
	struct first f = { 0, 0 };
	struct store_token t;
	int rc;

	if ((rc = store_token_get(st, id, &t)) != 0)
		return rc;
	if ((name != NULL && !printable(name, STORE_NAME_MAX, 0)) ||
	    (models != NULL && !models_ok(models)) ||
	    (quota != INT64_MIN && quota < STORE_QUOTA_UNLIMITED) ||
	    (expires_at != INT64_MIN && expires_at < 0)) {
		store_seterr(st, "token update: bad name, quota, models or expiry");
		return -1;
	}
	/* Each a single UPDATE; the admin path is not the money path. */
	if (name != NULL) {
		p[0] = pt(name);
		p[1] = pi((int64_t)id);
		if (q(st, "UPDATE tokens SET name = $1 WHERE id = $2 RETURNING id",
		    p, 2, row_first, &f) != DB_OK)
			return -1;
	}
	if (quota != INT64_MIN) {
		p[0] = pi(quota);
		p[1] = pi((int64_t)id);
		if (q(st, "UPDATE tokens SET quota = $1 WHERE id = $2 RETURNING id",
		    p, 2, row_first, &f) != DB_OK)
			return -1;
	}
	if (models != NULL) {
		p[0] = pt(models);
		p[1] = pi((int64_t)id);
		if (q(st, "UPDATE tokens SET models = $1 WHERE id = $2 RETURNING id",
		    p, 2, row_first, &f) != DB_OK)
			return -1;
	}
	if (expires_at != INT64_MIN) {
		p[0] = pi(expires_at);
		p[1] = pi((int64_t)id);
		if (q(st, "UPDATE tokens SET expires_at = $1 WHERE id = $2 "
		    "RETURNING id", p, 2, row_first, &f) != DB_OK)
			return -1;
	}
	return 0;
}

int
store_token_enable(struct store *st, uint64_t id)
{
	struct db_param p[1] = { pi((int64_t)id) };
	struct first f = { 0, 0 };

	if (q(st, "UPDATE tokens SET enabled = 1 WHERE id = $1 RETURNING id",
	    p, 1, row_first, &f) != DB_OK)
		return -1;
	return f.n > 0 ? 0 : 1;
}

int
store_token_delete(struct store *st, uint64_t id)
{
	struct db_param p[1] = { pi((int64_t)id) };
	struct first f = { 0, 0 }, used = { 0, 0 };
	struct store_token t;
	int rc;

	if ((rc = store_token_get(st, id, &t)) != 0)
		return rc;
	if (q(st, "SELECT (SELECT COUNT(*) FROM charges WHERE token_id = $1) + "
	    "(SELECT COUNT(*) FROM ledger WHERE token_id = $1)", p, 1, row_first,
	    &used) != DB_OK)
		return -1;
	if (used.v > 0)
		return 2;
	if (q(st, "DELETE FROM tokens WHERE id = $1 RETURNING id", p, 1,
	    row_first, &f) != DB_OK)
		return -1;
	return f.n > 0 ? 0 : 1;
}

/* ---- usage --------------------------------------------------------------- */

struct usage_walk {
	store_usage_cb cb;
	void *arg;
	int rc;
};

static int
row_usage(struct store *st, const struct db_row *r, void *arg)
{
	struct usage_walk *w = arg;
	struct store_usage_row u;

	memset(&u, 0, sizeof(u));
	u.bucket = ci(r, 0);
	ct(r, 1, u.key, sizeof(u.key));
	u.requests = ci(r, 2);
	u.input_tokens = ci(r, 3);
	u.output_tokens = ci(r, 4);
	u.cached_tokens = ci(r, 5);
	u.amount = ci(r, 6);
	if (w->rc == 0)
		w->rc = w->cb(&u, w->arg);
	return 0;
}

int
store_usage(struct store *st, enum store_usage_by by, int64_t from, int64_t to,
    int64_t bucket_s, store_usage_cb cb, void *arg)
{
	/* One literal statement per grouping: never the caller's text, and
	 * the SQLite engine keys its statement cache by the SQL's address. */
#define USAGE_SQL(k) "SELECT (created_at / $1) * $1 AS b, " k " AS k, " \
	"COUNT(*), SUM(input_tokens), SUM(output_tokens), SUM(cached_tokens), " \
	"SUM(amount) FROM charges WHERE state = 'posted' AND created_at >= $2 " \
	"AND created_at < $3 GROUP BY b, k ORDER BY b, k"
	static const char *const sql[] = {
		[STORE_BY_TOKEN] = USAGE_SQL("CAST(token_id AS TEXT)"),
		[STORE_BY_MODEL] = USAGE_SQL("model"),
		[STORE_BY_AGENT] = USAGE_SQL("CAST(agent_id AS TEXT)"),
		[STORE_BY_CHANNEL] = USAGE_SQL("CASE WHEN channel = '' THEN '-' "
		    "ELSE CAST(agent_id AS TEXT) || ':' || channel END"),
	};
#undef USAGE_SQL
	struct db_param p[3] = { pi(bucket_s), pi(from), pi(to) };
	struct usage_walk w = { cb, arg, 0 };

	if ((unsigned)by > STORE_BY_CHANNEL || (bucket_s != 3600 &&
	    bucket_s != 86400) || to <= from) {
		store_seterr(st, "usage: bad grouping, bucket or range");
		return -1;
	}
	if (q(st, sql[by], p, 3, row_usage, &w) != DB_OK)
		return -1;
	return w.rc;
}

struct req_walk {
	store_request_cb cb;
	void *arg;
	int rc;
};

static int
row_req(struct store *st, const struct db_row *r, void *arg)
{
	struct req_walk *w = arg;
	struct store_request_row x;

	memset(&x, 0, sizeof(x));
	x.created_at = ci(r, 0);
	ct(r, 1, x.request_id, sizeof(x.request_id));
	ct(r, 2, x.model, sizeof(x.model));
	ct(r, 3, x.channel, sizeof(x.channel));
	x.agent_id = (uint64_t)ci(r, 4);
	x.input_tokens = ci(r, 5);
	x.output_tokens = ci(r, 6);
	x.cached_tokens = ci(r, 7);
	x.amount = ci(r, 8);
	ct(r, 9, x.state, sizeof(x.state));
	if (w->rc == 0)
		w->rc = w->cb(&x, w->arg);
	return 0;
}

int
store_token_requests(struct store *st, uint64_t token_id, int64_t from,
    int64_t to, int64_t before, const char *before_id, int64_t limit,
    store_request_cb cb, void *arg)
{
	struct db_param p[6];
	struct req_walk w = { cb, arg, 0 };

	if (limit < 1 || limit > 1000 || (before_id != NULL &&
	    !printable(before_id, 63, 1))) {
		store_seterr(st, "requests: limit 1..1000");
		return -1;
	}
	p[0] = pi((int64_t)token_id);
	p[1] = pi(from);
	p[2] = pi(to > 0 ? to : INT64_MAX);
	p[3] = pi(before > 0 ? before : INT64_MAX);
	p[4] = pt(before_id != NULL ? before_id : "");
	p[5] = pi(limit);
	if (q(st, "SELECT created_at, request_id, model, channel, agent_id, "
	    "input_tokens, output_tokens, cached_tokens, amount, state FROM charges "
	    "WHERE token_id = $1 AND created_at >= $2 AND created_at < $3 AND "
	    "(created_at < $4 OR (created_at = $4 AND request_id < $5)) "
	    "ORDER BY created_at DESC, request_id DESC LIMIT $6", p, 6, row_req,
	    &w) != DB_OK)
		return -1;
	return w.rc;
}

int
store_charge_set_channel(struct store *st, const char *request_id,
    const char *channel)
{
	struct db_param p[2] = { pt(channel), pt(request_id) };

	if (!printable(channel, 31, 1) || !printable(request_id, 63, 0))
		return -1;
	return q(st, "UPDATE charges SET channel = $1 WHERE request_id = $2", p, 2,
	    NULL, NULL) == DB_OK ? 0 : -1;
}

/* ---- disputes ------------------------------------------------------------ */

static int
row_dispute(struct store *st, const struct db_row *r, void *arg)
{
	struct store_dispute *d = arg;

	memset(d, 0, sizeof(*d));
	d->id = (uint64_t)ci(r, 0);
	d->agent_id = (uint64_t)ci(r, 1);
	d->seq = (uint64_t)ci(r, 2);
	ct(r, 3, d->request_id, sizeof(d->request_id));
	d->hub_amount = ci(r, 4);
	d->agent_amount = ci(r, 5);
	ct(r, 6, d->status, sizeof(d->status));
	d->created_at = ci(r, 7);
	return 0;
}

int
store_dispute_resolve(struct store *st, uint64_t id, const char *status,
    const char *reason, struct store_dispute *out)
{
	struct db_param p[4];
	struct first f = { 0, 0 };
	int rc;

	if ((strcmp(status, "accepted") != 0 && strcmp(status, "rejected") != 0) ||
	    !printable(reason, 159, 1)) {
		store_seterr(st, "dispute resolve: accept or reject, with a "
		    "printable reason of at most 159 bytes");
		return -1;
	}
	p[0] = pt(status);
	p[1] = pt(reason);
	p[2] = pi(now_s());
	p[3] = pi((int64_t)id);
	if (q(st, "UPDATE disputes SET status = $1, resolution = $2, "
	    "resolved_at = $3 WHERE id = $4 AND status = 'open' RETURNING id",
	    p, 4, row_first, &f) != DB_OK)
		return -1;
	memset(out, 0, sizeof(*out));
	out->id = 0;
	rc = q(st, "SELECT id, agent_id, seq, request_id, hub_amount, "
	    "agent_amount, status, created_at FROM disputes WHERE id = $1",
	    p + 3, 1, row_dispute, out);
	if (rc != DB_OK)
		return -1;
	if (out->id == 0)
		return 1;
	return f.n > 0 ? 0 : 2;
}

struct resolution {
	char *reason;
	size_t len;
	int64_t at;
	int n;
};

static int
row_resolution(struct store *st, const struct db_row *r, void *arg)
{
	struct resolution *x = arg;

	ct(r, 0, x->reason, x->len);
	x->at = ci(r, 1);
	x->n++;
	return 0;
}

int
store_dispute_resolution(struct store *st, uint64_t id, char *reason,
    size_t len, int64_t *resolved_at)
{
	struct db_param p[1] = { pi((int64_t)id) };
	struct resolution x = { reason, len, 0, 0 };

	reason[0] = '\0';
	if (q(st, "SELECT resolution, resolved_at FROM disputes WHERE id = $1",
	    p, 1, row_resolution, &x) != DB_OK)
		return -1;
	*resolved_at = x.at;
	return x.n ? 0 : 1;
}

/* ---- metrics ------------------------------------------------------------- */

static int
row_backlog(struct store *st, const struct db_row *r, void *arg)
{
	int64_t *v = arg;

	v[0] = ci(r, 0);
	v[1] = ci(r, 1);
	v[2] = ci(r, 2);
	return 0;
}

int
store_backlog(struct store *st, int64_t *reserved, int64_t *awaiting,
    int64_t *oldest_s)
{
	int64_t v[3] = { 0, 0, 0 };

	if (q(st, STORE_BACKLOG_SQL, NULL, 0, row_backlog, v) != DB_OK)
		return -1;
	*reserved = v[0];
	*awaiting = v[1];
	*oldest_s = v[2] > 0 ? now_s() - v[2] : 0;
	return 0;
}
