/*
 * billing/store: the engine-independent core of the store.  Owns the
 * store's error message, choosing the engine from the URL, opening and
 * closing, applying the migrations, transactions (a call's own, or a
 * savepoint of a group-commit batch) and the helpers the calls' files share
 * (billing/store_int.h): parameters, running a statement, reading result
 * columns and rows into the flat structs of billing/store.h, and the input
 * checks more than one file makes.  The calls, each written once for both
 * engines, are in store_agent.c, store_token.c, store_price.c,
 * store_charge.c, store_ledger.c, store_dispute.c and store_job.c (the
 * operator's in store_admin.c).
 */
#include "billing/store_int.h"

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

struct db_param
pint(int64_t v)
{
	struct db_param p = { .type = DB_PINT, .i = v };

	return p;
}

struct db_param
ptext(const char *s)
{
	struct db_param p = { .type = DB_PTEXT, .s = s };

	return p;
}

int
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
int
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

int
tx_commit(struct store *st)
{
	int rc = q(st, st->batch ? "RELEASE op" : "COMMIT", NULL, 0, NULL, NULL);

	st->in_tx = 0;
	return rc == DB_OK ? 0 : -1;
}

/* Keeps the error that made us roll back. */
void
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

/*
 * A write transaction.  SQLite: BEGIN IMMEDIATE (the write lock now);
 * PostgreSQL: a plain BEGIN — the conditional UPDATE's row lock is what
 * orders concurrent charges of one token.
 */
int
tx_begin_write(struct store *st)
{
	if (st->eng->mask == SCHEMA_SQLITE)
		return tx_begin_locked(st);
	if (q(st, "BEGIN", NULL, 0, NULL, NULL) != DB_OK)
		return -1;
	st->in_tx = 1;
	return 0;
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
int
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

int
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

int
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
int
row_int(struct store *st, const struct db_row *r, void *arg)
{
	return col_int(st, r, 0, arg);
}

/* Row callback: counts rows; keeps the first column as an id. */
int
row_id(struct store *st, const struct db_row *r, void *arg)
{
	struct one_id *o = arg;

	if (o->n++ == 0)
		return col_id(st, r, 0, &o->id);
	return 0;
}

/* Collects converted rows into a growing array (the list calls). */
int
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
int
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
int
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

/* A list's limit as SQL sees it: 0 (or anything past int64) is "all". */
int64_t
sql_limit(size_t limit)
{
	return limit == 0 || (uint64_t)limit > (uint64_t)INT64_MAX ?
	    INT64_MAX : (int64_t)limit;
}

/* Ids reach SQL as int64: anything above cannot exist. */
int
id_ok(uint64_t id)
{
	return id > 0 && id <= (uint64_t)INT64_MAX;
}

int
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

/* 1..STORE_MODEL_MAX printable ASCII bytes, no spaces, no commas. */
int
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

int
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

/* Printable ASCII (spaces allowed), NUL-terminated within len. */
int
printable_ok(const char *s, size_t len)
{
	if (strnlen(s, len) == len)
		return 0;
	for (; *s != '\0'; s++)
		if (*s < 0x20 || *s > 0x7e)
			return 0;
	return 1;
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
