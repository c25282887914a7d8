/*
 * billing/store: the engine-independent half of the store.  Owns choosing
 * the engine from the URL, applying the migrations, validating every input,
 * the SQL of every call (written once, for both engines), turning result
 * rows into the flat structs of billing/store.h, and appending to the
 * agents' ledger chains (the entry's hash and signature come from
 * lib/ledger; the chain head lives in the agent's row).
 */
#include "billing/store.h"
#include "billing/schema.h"
#include "lib/hash.h"
#include "lib/ledger.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

/* ---- errors, helpers ---------------------------------------------------- */

void
store_seterr(struct store *st, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(st->err, sizeof(st->err), fmt, ap);
	va_end(ap);
}

const char *
store_errmsg(const struct store *st)
{
	return st == NULL ? "no store" : st->err;
}

const char *
store_engine(const struct store *st)
{
	return st == NULL || st->eng == NULL ? "none" : st->eng->name;
}

static struct db_param
pint(int64_t v)
{
	struct db_param p = { .type = DB_PINT, .i = v };

	return p;
}

static struct db_param
ptext(const char *s)
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

/*
 * UPDATE one row and read some of its columns as they are after.  On
 * PostgreSQL one statement with RETURNING (pg).  On SQLite, where every
 * RETURNING builds and drops a temporary b-tree (about a tenth of
 * billing's time on the request path), the UPDATE (sq_update) and then a
 * SELECT of that row (sq_select, bound to the first nsel of p) in the
 * same write transaction, so nothing runs between them.  cb is not
 * called when no row changed.
 */
static int
update_row(struct store *st, const char *pg, const char *sq_update,
    const char *sq_select, const struct db_param *p, int np, int nsel,
    db_row_cb cb, void *arg)
{
	int rc;

	if (st->eng->mask != SCHEMA_SQLITE)
		return q(st, pg, p, np, cb, arg);
	if ((rc = q(st, sq_update, p, np, NULL, NULL)) != DB_OK ||
	    st->changed == 0)
		return rc;
	return q(st, sq_select, p, nsel, cb, arg);
}

/*
 * A call's transaction.  Inside a batch (store_batch_begin) it is a
 * savepoint of the batch's transaction: a call's ROLLBACK undoes only that
 * call, and nothing is durable before store_batch_end commits.
 */
static int
tx_begin_locked(struct store *st)
{
	if (st->batch) {
		if (q(st, "SAVEPOINT op", NULL, 0, NULL, NULL) != DB_OK)
			return -1;
	} else if (st->eng->begin_locked(st) != DB_OK)
		return -1;
	st->in_tx = 1;
	return 0;
}

static int
tx_commit(struct store *st)
{
	int rc = q(st, st->batch ? "RELEASE op" : "COMMIT", NULL, 0, NULL, NULL);

	st->in_tx = 0;
	return rc == DB_OK ? 0 : -1;
}

/* Keeps the error that made us roll back. */
static void
tx_rollback(struct store *st)
{
	char keep[sizeof(st->err)];

	memcpy(keep, st->err, sizeof(keep));
	if (st->batch) {
		st->eng->query(st, "ROLLBACK TO op", NULL, 0, NULL, NULL);
		st->eng->query(st, "RELEASE op", NULL, 0, NULL, NULL);
	} else
		st->eng->query(st, "ROLLBACK", NULL, 0, NULL, NULL);
	memcpy(st->err, keep, sizeof(st->err));
	st->in_tx = 0;
}

int
store_batch_begin(struct store *st)
{
	if (st == NULL || st->batch || st->in_tx)
		return -1;
	if (st->eng->mask != SCHEMA_SQLITE)
		return 0;	/* PostgreSQL: a transaction per call */
	if (st->eng->begin_locked(st) != DB_OK)
		return -1;
	st->batch = 1;
	return 0;
}

int
store_batch_end(struct store *st)
{
	if (st == NULL || !st->batch)
		return 0;
	st->batch = 0;
	if (q(st, "COMMIT", NULL, 0, NULL, NULL) == DB_OK)
		return 0;
	tx_rollback(st);
	return -1;
}

void
store_batch_abort(struct store *st)
{
	if (st == NULL || !st->batch)
		return;
	st->batch = 0;
	(void)q(st, "ROLLBACK", NULL, 0, NULL, NULL);
}

/* Strict decimal int64 from a result column. */
static int
col_int(struct store *st, const struct db_row *r, int c, int64_t *out)
{
	const char *s;
	char *end;
	long long v;

	if (c >= r->ncol || (s = r->val[c]) == NULL || *s == '\0') {
		store_seterr(st, "column %d: missing integer", c);
		return -1;
	}
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno != 0 || *end != '\0') {
		store_seterr(st, "column %d: not an int64: \"%.32s\"", c, s);
		return -1;
	}
	*out = v;
	return 0;
}

static int
col_id(struct store *st, const struct db_row *r, int c, uint64_t *out)
{
	int64_t v;

	if (col_int(st, r, c, &v) == -1)
		return -1;
	if (v <= 0) {
		store_seterr(st, "column %d: bad id %lld", c, (long long)v);
		return -1;
	}
	*out = (uint64_t)v;
	return 0;
}

static int
col_text(struct store *st, const struct db_row *r, int c, char *buf,
    size_t len)
{
	const char *s;

	if (c >= r->ncol || (s = r->val[c]) == NULL) {
		store_seterr(st, "column %d: missing text", c);
		return -1;
	}
	if (strlen(s) >= len) {
		store_seterr(st, "column %d: text too long", c);
		return -1;
	}
	memcpy(buf, s, strlen(s) + 1);
	return 0;
}

/* Row callback: the first column of the single row, as an int64. */
static int
row_int(struct store *st, const struct db_row *r, void *arg)
{
	return col_int(st, r, 0, arg);
}

/* Row callback: counts rows; keeps the first column as an id. */
struct one_id {
	int		n;
	uint64_t	id;
};

static int
row_id(struct store *st, const struct db_row *r, void *arg)
{
	struct one_id *o = arg;

	if (o->n++ == 0)
		return col_id(st, r, 0, &o->id);
	return 0;
}

/* Collects converted rows into a growing array (the list calls). */
typedef int (*row_conv)(struct store *, const struct db_row *, void *out);

struct collect {
	row_conv	 conv;
	size_t		 size;	/* of one item */
	size_t		 n, cap;
	unsigned char	*items;
};

static int
row_collect(struct store *st, const struct db_row *r, void *arg)
{
	struct collect *c = arg;
	unsigned char *p;
	size_t ncap;

	if (c->n == c->cap) {
		ncap = c->cap ? c->cap * 2 : 16;
		if ((p = reallocarray(c->items, ncap, c->size)) == NULL) {
			store_seterr(st, "out of memory");
			return -1;
		}
		c->items = p;
		c->cap = ncap;
	}
	if (c->conv(st, r, c->items + c->n * c->size) == -1)
		return -1;
	c->n++;
	return 0;
}

/* The get calls: 0 one row found (*out filled), 1 none, -1 error. */
static int
query_one(struct store *st, const char *sql, const struct db_param *p, int np,
    row_conv conv, size_t size, void *out)
{
	struct collect c = { conv, size, 0, 0, NULL };
	int rc;

	rc = q(st, sql, p, np, row_collect, &c);
	if (rc == DB_OK && c.n == 1)
		memcpy(out, c.items, size);
	free(c.items);
	if (rc != DB_OK)
		return -1;
	return c.n == 1 ? 0 : 1;
}

/*
 * The list calls: every row into c (the caller walks c->items and frees
 * them).  Rows are read before any callback runs, so a callback may use
 * the store.  0, or -1 (nothing to walk).
 */
static int
query_all(struct store *st, const char *what, int have_cb, const char *sql,
    const struct db_param *p, int np, struct collect *c)
{
	if (st == NULL)
		return -1;
	if (!have_cb) {
		store_seterr(st, "%s: NULL callback", what);
		return -1;
	}
	if (q(st, sql, p, np, row_collect, c) != DB_OK) {
		free(c->items);
		c->items = NULL;
		return -1;
	}
	return 0;
}

/* Ids reach SQL as int64: anything above cannot exist. */
static int
id_ok(uint64_t id)
{
	return id > 0 && id <= (uint64_t)INT64_MAX;
}

/* ---- open, migrations --------------------------------------------------- */

int64_t
store_schema_latest(void)
{
	return schema_migrations[schema_nmigrations - 1].version;
}

int
store_schema_version(struct store *st, int64_t *out)
{
	int64_t v = 0;

	if (st == NULL)
		return -1;
	if (out == NULL) {
		store_seterr(st, "store_schema_version: NULL argument");
		return -1;
	}
	if (q(st, "SELECT COALESCE(MAX(version), 0) FROM schema_version",
	    NULL, 0, row_int, &v) != DB_OK)
		return -1;
	*out = v;
	return 0;
}

/* One migration, in its own transaction under the migration lock. */
static int
migrate_one(struct store *st, const struct schema_migration *m)
{
	struct db_param p[3];
	struct one_id found = { 0, 0 };
	int64_t cur;
	size_t i;

	if (tx_begin_locked(st) == -1)
		return -1;
	if (q(st, schema_version_table, NULL, 0, NULL, NULL) != DB_OK ||
	    store_schema_version(st, &cur) == -1)
		goto fail;
	if (cur > store_schema_latest()) {
		store_seterr(st, "database schema version %lld is newer than "
		    "this build (%lld)", (long long)cur,
		    (long long)store_schema_latest());
		goto fail;
	}
	p[0] = pint(m->version);
	if (q(st, "SELECT version FROM schema_version WHERE version = $1",
	    p, 1, row_id, &found) != DB_OK)
		goto fail;
	if (found.n > 0) {
		tx_rollback(st);
		return 0;
	}
	for (i = 0; i < m->nstmts; i++) {
		if ((m->stmts[i].engines & st->eng->mask) == 0)
			continue;
		if (q(st, m->stmts[i].sql, NULL, 0, NULL, NULL) != DB_OK) {
			char e[sizeof(st->err)];

			memcpy(e, st->err, sizeof(e));
			store_seterr(st, "migration %lld (%s), statement %zu: "
			    "%s", (long long)m->version, m->name, i, e);
			goto fail;
		}
	}
	p[1] = ptext(m->name);
	p[2] = pint((int64_t)time(NULL));
	if (q(st, "INSERT INTO schema_version (version, name, applied_at) "
	    "VALUES ($1, $2, $3)", p, 3, NULL, NULL) != DB_OK)
		goto fail;
	return tx_commit(st);
fail:
	tx_rollback(st);
	return -1;
}

static int
migrate(struct store *st)
{
	size_t i;

	for (i = 0; i < schema_nmigrations; i++) {
		if (schema_migrations[i].version <= 0 || (i > 0 &&
		    schema_migrations[i].version <=
		    schema_migrations[i - 1].version)) {
			store_seterr(st, "schema: migrations out of order");
			return -1;
		}
		if (migrate_one(st, &schema_migrations[i]) == -1)
			return -1;
	}
	return 0;
}

struct store *
store_open(const char *url, char *err, size_t errlen)
{
	struct store *st;
	const char *path;
	int rc;

	if (err != NULL && errlen > 0)
		err[0] = '\0';
	if (url == NULL || *url == '\0') {
		if (err != NULL && errlen > 0)
			snprintf(err, errlen, "store: empty database URL");
		return NULL;
	}
	if (sodium_init() < 0) {
		if (err != NULL && errlen > 0)
			snprintf(err, errlen, "store: sodium_init failed");
		return NULL;
	}
	if ((st = calloc(1, sizeof(*st))) == NULL) {
		if (err != NULL && errlen > 0)
			snprintf(err, errlen, "store: out of memory");
		return NULL;
	}
	if (strncmp(url, "postgresql://", 13) == 0 ||
	    strncmp(url, "postgres://", 11) == 0)
		rc = store_pg_open(st, url);
	else {
		path = url;
		if (strncmp(path, "sqlite://", 9) == 0)
			path += 9;
		else if (strncmp(path, "sqlite:", 7) == 0)
			path += 7;
		rc = store_sqlite_open(st, path);
	}
	if (rc != DB_OK || migrate(st) == -1) {
		if (err != NULL && errlen > 0)
			snprintf(err, errlen, "%s", st->err);
		store_close(st);
		return NULL;
	}
	st->err[0] = '\0';
	return st;
}

void
store_close(struct store *st)
{
	if (st == NULL)
		return;
	if (st->eng != NULL)
		st->eng->close(st);
	free(st);
}

/* ---- agents ------------------------------------------------------------- */

#define AGENT_COLS	"id, name, pubkey, grade, enabled, created_at"

static int
name_ok(const char *s, int strict)
{
	size_t n;

	if (s == NULL || (n = strlen(s)) == 0 || n > STORE_NAME_MAX)
		return 0;
	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;

		if (strict ? !(isalnum(c) || c == '.' || c == '_' ||
		    c == '-') : (c < 0x20 || c > 0x7e))
			return 0;
	}
	return 1;
}

/*
 * Standard padded base64 of exactly 32 bytes, nothing after it.  The key
 * and its canonical text go to key/canon (canon: 64 bytes).
 */
static int
pubkey_decode(const char *b64, unsigned char key[STORE_PUBKEY_LEN],
    char *canon)
{
	const char *end = NULL;
	size_t n = 0, len;

	if (b64 == NULL || (len = strlen(b64)) == 0 || len >= 64)
		return -1;
	if (sodium_base642bin(key, STORE_PUBKEY_LEN, b64, len, NULL, &n, &end,
	    sodium_base64_VARIANT_ORIGINAL) != 0 || n != STORE_PUBKEY_LEN ||
	    end != b64 + len)
		return -1;
	sodium_bin2base64(canon, 64, key, STORE_PUBKEY_LEN,
	    sodium_base64_VARIANT_ORIGINAL);
	return 0;
}

static int
agent_conv(struct store *st, const struct db_row *r, void *out)
{
	struct store_agent *a = out;
	char grade[4];
	int64_t en;

	memset(a, 0, sizeof(*a));
	if (col_id(st, r, 0, &a->id) == -1 ||
	    col_text(st, r, 1, a->name, sizeof(a->name)) == -1 ||
	    col_text(st, r, 2, a->pubkey_b64, sizeof(a->pubkey_b64)) == -1 ||
	    col_text(st, r, 3, grade, sizeof(grade)) == -1 ||
	    col_int(st, r, 4, &en) == -1 ||
	    col_int(st, r, 5, &a->created_at) == -1)
		return -1;
	if (pubkey_decode(a->pubkey_b64, a->pubkey, a->pubkey_b64) == -1) {
		store_seterr(st, "agent %llu: stored public key is corrupt",
		    (unsigned long long)a->id);
		return -1;
	}
	a->grade = grade[0];
	a->enabled = en != 0;
	return 0;
}

int
store_agent_add(struct store *st, const char *name, const char *pubkey_b64,
    char grade, uint64_t *out_id)
{
	struct db_param p[4];
	struct one_id got = { 0, 0 };
	unsigned char key[STORE_PUBKEY_LEN];
	char canon[64], g[2] = { grade, '\0' };
	int rc;

	if (st == NULL)
		return -1;
	if (out_id == NULL) {
		store_seterr(st, "store_agent_add: NULL argument");
		return -1;
	}
	if (!name_ok(name, 1)) {
		store_seterr(st, "agent name must be 1..%d of A-Z a-z 0-9 . _ -",
		    STORE_NAME_MAX);
		return -1;
	}
	if (pubkey_decode(pubkey_b64, key, canon) == -1) {
		store_seterr(st, "agent public key must be a 32-byte Ed25519 "
		    "key in standard base64");
		return -1;
	}
	if (grade < 'A' || grade > 'Z') {
		store_seterr(st, "agent grade must be one letter A..Z");
		return -1;
	}
	p[0] = ptext(name);
	p[1] = ptext(canon);
	p[2] = ptext(g);
	p[3] = pint((int64_t)time(NULL));
	rc = q(st, "INSERT INTO agents (name, pubkey, grade, enabled, "
	    "created_at) VALUES ($1, $2, $3, 1, $4) RETURNING id",
	    p, 4, row_id, &got);
	if (rc == DB_CONFLICT) {
		got.n = 0;
		if (q(st, "SELECT id FROM agents WHERE name = $1", p, 1,
		    row_id, &got) != DB_OK)
			return -1;
		if (got.n > 0)
			store_seterr(st, "agent name \"%s\" is taken", name);
		else
			store_seterr(st, "this public key is already "
			    "registered to another agent");
		return -1;
	}
	if (rc != DB_OK)
		return -1;
	if (got.n != 1) {
		store_seterr(st, "agent insert returned no id");
		return -1;
	}
	*out_id = got.id;
	return 0;
}

int
store_agent_get(struct store *st, uint64_t id, struct store_agent *out)
{
	struct db_param p[1];

	if (st == NULL)
		return -1;
	if (out == NULL) {
		store_seterr(st, "store_agent_get: NULL argument");
		return -1;
	}
	if (!id_ok(id))
		return 1;
	p[0] = pint((int64_t)id);
	return query_one(st, "SELECT " AGENT_COLS " FROM agents WHERE id = $1",
	    p, 1, agent_conv, sizeof(*out), out);
}

int
store_agent_list(struct store *st, store_agent_cb cb, void *arg)
{
	struct collect c = { agent_conv, sizeof(struct store_agent), 0, 0,
	    NULL };
	struct store_agent *a;
	size_t i;
	int rc = 0;

	if (query_all(st, "store_agent_list", cb != NULL,
	    "SELECT " AGENT_COLS " FROM agents ORDER BY id", NULL, 0, &c) != 0)
		return -1;
	a = (struct store_agent *)(void *)c.items;
	for (i = 0; i < c.n && rc == 0; i++)
		rc = cb(&a[i], arg);
	free(c.items);
	return rc;
}

int
store_agent_set_enabled(struct store *st, uint64_t id, int enabled)
{
	struct db_param p[2];
	struct one_id got = { 0, 0 };

	if (st == NULL)
		return -1;
	if (!id_ok(id))
		return 1;
	p[0] = pint(enabled != 0);
	p[1] = pint((int64_t)id);
	if (q(st, "UPDATE agents SET enabled = $1 WHERE id = $2 RETURNING id",
	    p, 2, row_id, &got) != DB_OK)
		return -1;
	return got.n > 0 ? 0 : 1;
}

/* ---- tokens ------------------------------------------------------------- */

#define TOKEN_COLS	"id, name, hash, quota, used, models, expires_at, " \
			"enabled, created_at, policy, min_grade, channels, rpm, tpm"

/* "" or name(,name)*: printable ASCII without spaces, none empty. */
static int
models_ok(const char *s)
{
	size_t n;
	int empty = 1;

	if (s == NULL || (n = strlen(s)) > STORE_MODELS_MAX)
		return 0;
	if (n == 0)
		return 1;
	for (; *s != '\0'; s++) {
		if (*s == ',') {
			if (empty)
				return 0;
			empty = 1;
		} else if (*s <= 0x20 || *s > 0x7e)
			return 0;
		else
			empty = 0;
	}
	return !empty;
}

static int
token_conv(struct store *st, const struct db_row *r, void *out)
{
	struct store_token *t = out;
	int64_t en;

	memset(t, 0, sizeof(*t));
	if (col_id(st, r, 0, &t->id) == -1 ||
	    col_text(st, r, 1, t->name, sizeof(t->name)) == -1 ||
	    col_text(st, r, 2, t->hash_hex, sizeof(t->hash_hex)) == -1 ||
	    col_int(st, r, 3, &t->quota_micros) == -1 ||
	    col_int(st, r, 4, &t->used_micros) == -1 ||
	    col_text(st, r, 5, t->models_csv, sizeof(t->models_csv)) == -1 ||
	    col_int(st, r, 6, &t->expires_at) == -1 ||
	    col_int(st, r, 7, &en) == -1 ||
	    col_int(st, r, 8, &t->created_at) == -1 ||
	    col_text(st, r, 9, t->policy, sizeof(t->policy)) == -1 ||
	    col_text(st, r, 10, t->min_grade, sizeof(t->min_grade)) == -1 ||
	    col_text(st, r, 11, t->channels, sizeof(t->channels)) == -1 ||
	    col_int(st, r, 12, &t->rpm) == -1 ||
	    col_int(st, r, 13, &t->tpm) == -1)
		return -1;
	t->enabled = en != 0;
	return 0;
}

/* "7", "7:main": an agent id, optionally with one of its channel names. */
static int
bound_ok(const char *csv)
{
	const char *p = csv;

	if (csv[0] == '\0' || strlen(csv) > STORE_MODELS_MAX)
		return 0;
	while (*p != '\0') {
		int digits = 0, name = 0;
		while (*p >= '0' && *p <= '9') {
			p++;
			digits++;
		}
		if (digits == 0)
			return 0;
		if (*p == ':') {
			p++;
			while (*p != '\0' && *p != ',' && (isalnum((unsigned char)*p) ||
			    *p == '_' || *p == '-')) {
				p++;
				name++;
			}
			if (name == 0)
				return 0;
		}
		if (*p == ',')
			p++;
		else if (*p != '\0')
			return 0;
	}
	return 1;
}

int
store_token_set_policy(struct store *st, uint64_t id, const char *policy,
    const char *min_grade, const char *channels, int64_t rpm, int64_t tpm)
{
	struct db_param p[6];
	struct one_id got = { 0, 0 };

	if (st == NULL || policy == NULL || min_grade == NULL || channels == NULL)
		return -1;
	if (!id_ok(id))
		return 1;
	if (strcmp(policy, "bound") == 0) {
		if (!bound_ok(channels)) {
			store_seterr(st, "a bound token needs channels: a comma list "
			    "of AGENT_ID or AGENT_ID:CHANNEL");
			return -1;
		}
	} else if (strcmp(policy, "graded") == 0) {
		if (strlen(min_grade) != 1 || min_grade[0] < 'A' || min_grade[0] > 'Z') {
			store_seterr(st, "a graded token needs a minimum grade A..Z");
			return -1;
		}
	} else if (strcmp(policy, "best") != 0) {
		store_seterr(st, "policy must be bound, graded or best");
		return -1;
	}
	if (rpm < 0 || tpm < 0) {
		store_seterr(st, "rpm and tpm must be >= 0 (0: no limit)");
		return -1;
	}
	p[0] = ptext(policy);
	p[1] = ptext(strcmp(policy, "graded") == 0 ? min_grade : "");
	p[2] = ptext(strcmp(policy, "bound") == 0 ? channels : "");
	p[3] = pint(rpm);
	p[4] = pint(tpm);
	p[5] = pint((int64_t)id);
	if (q(st, "UPDATE tokens SET policy = $1, min_grade = $2, channels = $3, "
	    "rpm = $4, tpm = $5 WHERE id = $6 RETURNING id", p, 6, row_id,
	    &got) != DB_OK)
		return -1;
	return got.n > 0 ? 0 : 1;
}

int
store_token_create(struct store *st, const char *name, const char *hash_hex,
    int64_t quota_micros, const char *models_csv, int64_t expires_at,
    uint64_t *out_id)
{
	struct db_param p[6];
	struct one_id got = { 0, 0 };
	int rc;

	if (st == NULL)
		return -1;
	if (out_id == NULL) {
		store_seterr(st, "store_token_create: NULL argument");
		return -1;
	}
	if (!name_ok(name, 0)) {
		store_seterr(st, "token name must be 1..%d printable ASCII "
		    "characters", STORE_NAME_MAX);
		return -1;
	}
	if (!hash_hex_ok(hash_hex)) {
		store_seterr(st, "token hash must be 64 lowercase hex digits");
		return -1;
	}
	if (quota_micros < STORE_QUOTA_UNLIMITED) {
		store_seterr(st, "token quota must be -1 (unlimited) or >= 0");
		return -1;
	}
	if (!models_ok(models_csv)) {
		store_seterr(st, "token models must be \"\" or a comma-"
		    "separated list of model names (at most %d bytes)",
		    STORE_MODELS_MAX);
		return -1;
	}
	if (expires_at < 0) {
		store_seterr(st, "token expiry must be 0 (never) or a unix "
		    "time");
		return -1;
	}
	p[0] = ptext(name);
	p[1] = ptext(hash_hex);
	p[2] = pint(quota_micros);
	p[3] = ptext(models_csv);
	p[4] = pint(expires_at);
	p[5] = pint((int64_t)time(NULL));
	rc = q(st, "INSERT INTO tokens (name, hash, quota, used, models, "
	    "expires_at, enabled, created_at) "
	    "VALUES ($1, $2, $3, 0, $4, $5, 1, $6) RETURNING id",
	    p, 6, row_id, &got);
	if (rc == DB_CONFLICT) {
		store_seterr(st, "a token with this hash already exists");
		return -1;
	}
	if (rc != DB_OK)
		return -1;
	if (got.n != 1) {
		store_seterr(st, "token insert returned no id");
		return -1;
	}
	*out_id = got.id;
	return 0;
}

int
store_token_list(struct store *st, store_token_cb cb, void *arg)
{
	struct collect c = { token_conv, sizeof(struct store_token), 0, 0,
	    NULL };
	struct store_token *t;
	size_t i;
	int rc = 0;

	if (query_all(st, "store_token_list", cb != NULL,
	    "SELECT " TOKEN_COLS " FROM tokens ORDER BY id", NULL, 0, &c) != 0)
		return -1;
	t = (struct store_token *)(void *)c.items;
	for (i = 0; i < c.n && rc == 0; i++)
		rc = cb(&t[i], arg);
	free(c.items);
	return rc;
}

int
store_token_disable(struct store *st, uint64_t id)
{
	struct db_param p[1];
	struct one_id got = { 0, 0 };

	if (st == NULL)
		return -1;
	if (!id_ok(id))
		return 1;
	p[0] = pint((int64_t)id);
	if (q(st, "UPDATE tokens SET enabled = 0 WHERE id = $1 RETURNING id",
	    p, 1, row_id, &got) != DB_OK)
		return -1;
	return got.n > 0 ? 0 : 1;
}

int
store_token_get_by_hash(struct store *st, const char *hash_hex,
    struct store_token *out)
{
	struct db_param p[1];

	if (st == NULL)
		return -1;
	if (out == NULL) {
		store_seterr(st, "store_token_get_by_hash: NULL argument");
		return -1;
	}
	if (!hash_hex_ok(hash_hex)) {
		store_seterr(st, "token hash must be 64 lowercase hex digits");
		return -1;
	}
	p[0] = ptext(hash_hex);
	return query_one(st, "SELECT " TOKEN_COLS " FROM tokens WHERE hash = $1",
	    p, 1, token_conv, sizeof(*out), out);
}

/* ---- prices ------------------------------------------------------------- */

#define PRICE_COLS	"model, version, input, output, cached_input, " \
			"cache_write, created_at, image, audio_second, " \
			"audio_char, video_second"
#define PRICE_SET_TRIES	5

/* 1..STORE_MODEL_MAX printable ASCII bytes, no spaces, no commas. */
static int
model_ok(const char *s)
{
	size_t n;

	if (s == NULL || (n = strlen(s)) == 0 || n > STORE_MODEL_MAX)
		return 0;
	for (; *s != '\0'; s++)
		if (*s <= 0x20 || *s > 0x7e || *s == ',')
			return 0;
	return 1;
}

static int
price_conv(struct store *st, const struct db_row *r, void *out)
{
	struct store_price *p = out;

	memset(p, 0, sizeof(*p));
	return col_text(st, r, 0, p->model, sizeof(p->model)) == -1 ||
	    col_int(st, r, 1, &p->version) == -1 ||
	    col_int(st, r, 2, &p->input) == -1 ||
	    col_int(st, r, 3, &p->output) == -1 ||
	    col_int(st, r, 4, &p->cached_input) == -1 ||
	    col_int(st, r, 5, &p->cache_write) == -1 ||
	    col_int(st, r, 6, &p->created_at) == -1 ||
	    col_int(st, r, 7, &p->image) == -1 ||
	    col_int(st, r, 8, &p->audio_second) == -1 ||
	    col_int(st, r, 9, &p->audio_char) == -1 ||
	    col_int(st, r, 10, &p->video_second) == -1 ? -1 : 0;
}

int
store_price_set(struct store *st, const char *model, int64_t input,
    int64_t output, int64_t cached_input, int64_t cache_write,
    int64_t *out_version)
{
	struct store_price pr;

	memset(&pr, 0, sizeof(pr));
	if (model != NULL)
		snprintf(pr.model, sizeof(pr.model), "%s", model);
	if (model != NULL && strlen(model) > STORE_MODEL_MAX)
		pr.model[0] = '\0';	/* refused below */
	pr.input = input;
	pr.output = output;
	pr.cached_input = cached_input;
	pr.cache_write = cache_write;
	return store_price_set_all(st, &pr, out_version);
}

int
store_price_set_all(struct store *st, const struct store_price *pr,
    int64_t *out_version)
{
	struct db_param p[10];
	const char *model = pr != NULL ? pr->model : NULL;
	int64_t v = 0, input, output, cached_input, cache_write;
	int rc = DB_ERR, try;

	if (st == NULL)
		return -1;
	if (pr == NULL || out_version == NULL) {
		store_seterr(st, "store_price_set: NULL argument");
		return -1;
	}
	if (!model_ok(model)) {
		store_seterr(st, "model name must be 1..%d printable ASCII "
		    "characters without spaces or commas", STORE_MODEL_MAX);
		return -1;
	}
	input = pr->input;
	output = pr->output;
	cached_input = pr->cached_input;
	cache_write = pr->cache_write;
	if (input < 0 || output < 0 || cached_input < 0 || cache_write < 0 ||
	    pr->image < 0 || pr->audio_second < 0 || pr->audio_char < 0 ||
	    pr->video_second < 0) {
		store_seterr(st, "prices must be >= 0");
		return -1;
	}
	p[0] = ptext(model);
	p[1] = pint(input);
	p[2] = pint(output);
	p[3] = pint(cached_input);
	p[4] = pint(cache_write);
	p[5] = pint((int64_t)time(NULL));
	p[6] = pint(pr->image);
	p[7] = pint(pr->audio_second);
	p[8] = pint(pr->audio_char);
	p[9] = pint(pr->video_second);
	/*
	 * One statement picks the next version and writes it.  Two hubs
	 * writing the same model at once (PostgreSQL) can pick the same
	 * number: the primary key refuses the second, which tries again.
	 */
	for (try = 0; try < PRICE_SET_TRIES; try++) {
		v = 0;
		rc = q(st, "INSERT INTO prices (" PRICE_COLS ") "
		    "SELECT $1, COALESCE(MAX(version), 0) + 1, $2, $3, $4, $5, "
		    "$6, $7, $8, $9, $10 FROM prices WHERE model = $1 "
		    "RETURNING version", p, 10, row_int, &v);
		if (rc != DB_CONFLICT)
			break;
	}
	if (rc == DB_CONFLICT)
		store_seterr(st, "prices of \"%s\" are being changed "
		    "elsewhere: try again", model);
	if (rc != DB_OK)
		return -1;
	if (v < 1) {
		store_seterr(st, "price insert returned no version");
		return -1;
	}
	*out_version = v;
	return 0;
}

int
store_price_list(struct store *st, store_price_cb cb, void *arg)
{
	struct collect c = { price_conv, sizeof(struct store_price), 0, 0,
	    NULL };
	struct store_price *pr;
	size_t i;
	int rc = 0;

	if (query_all(st, "store_price_list", cb != NULL,
	    "SELECT " PRICE_COLS " FROM prices p WHERE version = "
	    "(SELECT MAX(version) FROM prices WHERE model = p.model) "
	    "ORDER BY model", NULL, 0, &c) != 0)
		return -1;
	pr = (struct store_price *)(void *)c.items;
	for (i = 0; i < c.n && rc == 0; i++)
		rc = cb(&pr[i], arg);
	free(c.items);
	return rc;
}

int
store_price_get(struct store *st, const char *model, int64_t version,
    struct store_price *out)
{
	struct db_param p[2];

	if (st == NULL)
		return -1;
	if (out == NULL) {
		store_seterr(st, "store_price_get: NULL argument");
		return -1;
	}
	if (!model_ok(model)) {
		store_seterr(st, "model name must be 1..%d printable ASCII "
		    "characters without spaces or commas", STORE_MODEL_MAX);
		return -1;
	}
	if (version < 0) {
		store_seterr(st, "price version must be >= 1 (0: the latest)");
		return -1;
	}
	p[0] = ptext(model);
	p[1] = pint(version);
	if (version == 0)
		return query_one(st, "SELECT " PRICE_COLS " FROM prices WHERE "
		    "model = $1 ORDER BY version DESC LIMIT 1", p, 1, price_conv,
		    sizeof(*out), out);
	return query_one(st, "SELECT " PRICE_COLS " FROM prices WHERE model = $1 "
	    "AND version = $2", p, 2, price_conv, sizeof(*out), out);
}

/* Every version of every model, by model then version. */
int
store_price_all(struct store *st, store_price_cb cb, void *arg)
{
	struct collect c = { price_conv, sizeof(struct store_price), 0, 0,
	    NULL };
	struct store_price *pr;
	size_t i;
	int rc = 0;

	if (query_all(st, "store_price_all", cb != NULL,
	    "SELECT " PRICE_COLS " FROM prices ORDER BY model, version",
	    NULL, 0, &c) != 0)
		return -1;
	pr = (struct store_price *)(void *)c.items;
	for (i = 0; i < c.n && rc == 0; i++)
		rc = cb(&pr[i], arg);
	free(c.items);
	return rc;
}

/* ---- charges ------------------------------------------------------------ */

_Static_assert(STORE_MODEL_MAX == LEDGER_MODEL_MAX,
    "a charge's model must fit a ledger entry");
_Static_assert(sizeof(((struct store_charge *)0)->request_id) ==
    LEDGER_REQID_MAX + 1, "a charge's request id must fit a ledger entry");

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

static int
reqid_ok(const char *s)
{
	size_t n;

	if (s == NULL || (n = strlen(s)) == 0 || n > 63)
		return 0;
	for (; *s != '\0'; s++)
		if (*s <= 0x20 || *s > 0x7e)
			return 0;
	return 1;
}

/* reqid_ok for a charge's key, with the error set when it is not. */
static int
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
static int
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

/*
 * A write transaction.  SQLite: BEGIN IMMEDIATE (the write lock now);
 * PostgreSQL: a plain BEGIN — the conditional UPDATE's row lock is what
 * orders concurrent charges of one token.
 */
static int
tx_begin_write(struct store *st)
{
	if (st->eng->mask == SCHEMA_SQLITE)
		return tx_begin_locked(st);
	if (q(st, "BEGIN", NULL, 0, NULL, NULL) != DB_OK)
		return -1;
	st->in_tx = 1;
	return 0;
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
	struct db_param p[4];
	struct one_id got = { 0, 0 };
	int rc;

	if (st == NULL)
		return -1;
	if (!charge_reqid_ok(st, request_id))
		return -1;
	if (estimate_micros < 0) {
		store_seterr(st, "charge estimate must be >= 0");
		return -1;
	}
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
	if (q(st, "UPDATE tokens SET used = used + $1 WHERE id = $2 AND "
	    "(quota = -1 OR used + $1 <= quota)", p, 2, NULL, NULL) != DB_OK)
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
	if (rc != DB_OK || tx_commit(st) == -1)
		goto fail;
	return 0;
fail:
	if (st->in_tx)
		tx_rollback(st);
	return -1;
}

struct settled {
	int		n;
	uint64_t	token_id;
	int64_t		reserved;
};

static int
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
static int
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

/* ---- the ledger ----------------------------------------------------------- */

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

/*
 * Inside a write transaction: the reservation row of a request whose
 * post (or await) arrives without one — billing answered the reservation
 * from its open batch and a crash lost the batch.  Made again as a
 * reservation of 0 for token_id, so the real cost is still charged; a row
 * that exists (in any state) is left alone.
 */
static int
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

static int printable_ok(const char *s, size_t len);

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

/* A list's limit as SQL sees it: 0 (or anything past int64) is "all". */
static int64_t
sql_limit(size_t limit)
{
	return limit == 0 || (uint64_t)limit > (uint64_t)INT64_MAX ?
	    INT64_MAX : (int64_t)limit;
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

/* ---- disputes ------------------------------------------------------------- */

#define DISPUTE_COLS	"id, agent_id, seq, request_id, hub_amount, " \
			"agent_amount, hub_hash, reason, status, created_at"

/* Printable ASCII (spaces allowed), NUL-terminated within len. */
static int
printable_ok(const char *s, size_t len)
{
	if (strnlen(s, len) == len)
		return 0;
	for (; *s != '\0'; s++)
		if (*s < 0x20 || *s > 0x7e)
			return 0;
	return 1;
}

static int
dispute_conv(struct store *st, const struct db_row *r, void *out)
{
	struct store_dispute *d = out;

	memset(d, 0, sizeof(*d));
	return col_id(st, r, 0, &d->id) == -1 ||
	    col_id(st, r, 1, &d->agent_id) == -1 ||
	    col_id(st, r, 2, &d->seq) == -1 ||
	    col_text(st, r, 3, d->request_id, sizeof(d->request_id)) == -1 ||
	    col_int(st, r, 4, &d->hub_amount) == -1 ||
	    col_int(st, r, 5, &d->agent_amount) == -1 ||
	    col_text(st, r, 6, d->hub_hash, sizeof(d->hub_hash)) == -1 ||
	    col_text(st, r, 7, d->reason, sizeof(d->reason)) == -1 ||
	    col_text(st, r, 8, d->status, sizeof(d->status)) == -1 ||
	    col_int(st, r, 9, &d->created_at) == -1 ? -1 : 0;
}

/* Row callback: the request id of one ledger entry. */
struct entry_req {
	int	n;
	char	request_id[LEDGER_REQID_MAX + 1];
};

static int
row_entry_req(struct store *st, const struct db_row *r, void *arg)
{
	struct entry_req *er = arg;

	if (er->n++ > 0)
		return 0;
	return col_text(st, r, 0, er->request_id, sizeof(er->request_id));
}

int
store_dispute_add(struct store *st, const struct store_dispute *d)
{
	struct db_param p[8];
	struct entry_req er;
	int rc;

	if (st == NULL)
		return -1;
	if (d == NULL) {
		store_seterr(st, "store_dispute_add: NULL argument");
		return -1;
	}
	if (!id_ok(d->agent_id) || !id_ok(d->seq)) {
		store_seterr(st, "dispute: bad agent id or seq");
		return -1;
	}
	if (strnlen(d->request_id, sizeof(d->request_id)) ==
	    sizeof(d->request_id) || !reqid_ok(d->request_id)) {
		store_seterr(st, "dispute: request id must be 1..63 printable "
		    "ASCII characters");
		return -1;
	}
	if (d->hub_amount < 0 || d->agent_amount < -1) {
		store_seterr(st, "dispute: hub amount must be >= 0, agent "
		    "amount >= 0 or -1");
		return -1;
	}
	if (strnlen(d->hub_hash, sizeof(d->hub_hash)) == sizeof(d->hub_hash) ||
	    (d->hub_hash[0] != '\0' && !hash_hex_ok(d->hub_hash))) {
		store_seterr(st, "dispute: hub hash must be \"\" or 64 "
		    "lowercase hex digits");
		return -1;
	}
	if (!printable_ok(d->reason, sizeof(d->reason))) {
		store_seterr(st, "dispute: reason must be at most %zu "
		    "printable ASCII characters", sizeof(d->reason) - 1);
		return -1;
	}
	/* It disputes an entry that exists, for that request. */
	memset(&er, 0, sizeof(er));
	p[0] = pint((int64_t)d->agent_id);
	p[1] = pint((int64_t)d->seq);
	if (q(st, "SELECT request_id FROM ledger WHERE agent_id = $1 AND "
	    "seq = $2", p, 2, row_entry_req, &er) != DB_OK)
		return -1;
	if (er.n == 0 || strcmp(er.request_id, d->request_id) != 0) {
		store_seterr(st, "dispute: agent %llu has no ledger entry %llu "
		    "for request %s", (unsigned long long)d->agent_id,
		    (unsigned long long)d->seq, d->request_id);
		return -1;
	}
	p[2] = ptext(d->request_id);
	p[3] = pint(d->hub_amount);
	p[4] = pint(d->agent_amount);
	p[5] = ptext(d->hub_hash);
	p[6] = ptext(d->reason);
	p[7] = pint((int64_t)time(NULL));
	rc = q(st, "INSERT INTO disputes (agent_id, seq, request_id, "
	    "hub_amount, agent_amount, hub_hash, reason, status, created_at) "
	    "VALUES ($1, $2, $3, $4, $5, $6, $7, 'open', $8)", p, 8, NULL,
	    NULL);
	if (rc == DB_CONFLICT)
		return 1;
	return rc == DB_OK ? 0 : -1;
}

int
store_dispute_list(struct store *st, store_dispute_cb cb, void *arg)
{
	struct collect c = { dispute_conv, sizeof(struct store_dispute), 0, 0,
	    NULL };
	struct store_dispute *d;
	size_t i;
	int rc = 0;

	if (query_all(st, "store_dispute_list", cb != NULL,
	    "SELECT " DISPUTE_COLS " FROM disputes ORDER BY id", NULL, 0,
	    &c) != 0)
		return -1;
	d = (struct store_dispute *)(void *)c.items;
	for (i = 0; i < c.n && rc == 0; i++)
		rc = cb(&d[i], arg);
	free(c.items);
	return rc;
}

/* ---- video jobs ----------------------------------------------------------- */

#define JOB_COLS	"id, token_id, agent_id, channel, model, create_key, " \
			"state, settle_key, created_at"

static int
job_conv(struct store *st, const struct db_row *r, void *out)
{
	struct store_job *j = out;
	int64_t tok, agent;

	memset(j, 0, sizeof(*j));
	if (col_text(st, r, 0, j->id, sizeof(j->id)) == -1 ||
	    col_int(st, r, 1, &tok) == -1 ||
	    col_int(st, r, 2, &agent) == -1 ||
	    col_text(st, r, 3, j->channel, sizeof(j->channel)) == -1 ||
	    col_text(st, r, 4, j->model, sizeof(j->model)) == -1 ||
	    col_text(st, r, 5, j->create_key, sizeof(j->create_key)) == -1 ||
	    col_text(st, r, 6, j->state, sizeof(j->state)) == -1 ||
	    col_text(st, r, 7, j->settle_key, sizeof(j->settle_key)) == -1 ||
	    col_int(st, r, 8, &j->created_at) == -1)
		return -1;
	if (tok < 0 || agent <= 0) {
		store_seterr(st, "video job %s: bad token or agent id", j->id);
		return -1;
	}
	j->token_id = (uint64_t)tok;
	j->agent_id = (uint64_t)agent;
	return 0;
}

int
store_job_put(struct store *st, const struct store_job *j)
{
	struct db_param p[7];
	struct store_job old;
	int rc;

	if (st == NULL)
		return -1;
	if (j == NULL || !reqid_ok(j->id) || !reqid_ok(j->create_key) ||
	    !id_ok(j->agent_id) || j->token_id > (uint64_t)INT64_MAX ||
	    strnlen(j->channel, sizeof(j->channel)) == sizeof(j->channel) ||
	    strnlen(j->model, sizeof(j->model)) == sizeof(j->model)) {
		store_seterr(st, "store_job_put: bad job");
		return -1;
	}
	if ((rc = store_job_get(st, j->id, &old)) != 1)
		return rc == 0 ? 1 : -1;
	p[0] = ptext(j->id);
	p[1] = pint((int64_t)j->token_id);
	p[2] = pint((int64_t)j->agent_id);
	p[3] = ptext(j->channel);
	p[4] = ptext(j->model);
	p[5] = ptext(j->create_key);
	p[6] = pint((int64_t)time(NULL));
	rc = q(st, "INSERT INTO video_jobs (id, token_id, agent_id, channel, "
	    "model, create_key, created_at) VALUES ($1, $2, $3, $4, $5, $6, "
	    "$7)", p, 7, NULL, NULL);
	if (rc == DB_CONFLICT)
		return 1;
	return rc == DB_OK ? 0 : -1;
}

int
store_job_get(struct store *st, const char *id, struct store_job *out)
{
	struct db_param p[1];

	if (st == NULL)
		return -1;
	if (out == NULL || !reqid_ok(id)) {
		store_seterr(st, "store_job_get: bad job id");
		return -1;
	}
	p[0] = ptext(id);
	return query_one(st, "SELECT " JOB_COLS " FROM video_jobs WHERE id = $1",
	    p, 1, job_conv, sizeof(*out), out);
}

int
store_job_finish(struct store *st, const char *id, const char *state,
    const char *settle_key)
{
	struct db_param p[4];
	struct store_job j;
	struct one_id got = { 0, 0 };
	int rc;

	if (st == NULL)
		return -1;
	if (!reqid_ok(id) || !reqid_ok(settle_key) || state == NULL ||
	    (strcmp(state, "completed") != 0 && strcmp(state, "failed") != 0)) {
		store_seterr(st, "store_job_finish: bad job, state or key");
		return -1;
	}
	p[0] = ptext(id);
	p[1] = ptext(state);
	p[2] = ptext(settle_key);
	p[3] = pint((int64_t)time(NULL));
	/* One conditional UPDATE: of two racing posts one moves the row. */
	if (q(st, "UPDATE video_jobs SET state = $2, settle_key = $3, "
	    "settled_at = $4 WHERE id = $1 AND state = 'queued' RETURNING "
	    "agent_id", p, 4, row_id, &got) != DB_OK)
		return -1;
	if (got.n > 0)
		return 0;
	if ((rc = store_job_get(st, id, &j)) != 0)
		return rc;
	return strcmp(j.settle_key, settle_key) == 0 &&
	    strcmp(j.state, state) == 0 ? 0 : 1;
}
