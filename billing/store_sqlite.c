/*
 * billing/store_sqlite: the SQLite engine of the store (the embedded
 * default).  Owns the sqlite3 handle: opening it with WAL, synchronous=FULL
 * (money: a commit survives power loss), foreign keys and a busy timeout;
 * running one parameterised statement at a time (prepared once, kept in a
 * small cache); mapping errors.
 */
#include "billing/schema.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <sqlite3.h>

#define SQ_BUSY_MS	5000
#define SQ_CACHE	64	/* prepared statements kept per connection */

/*
 * The connection (st->db): the handle and a cache of prepared statements,
 * keyed by their SQL text, so that the hot charge and ledger statements
 * are parsed once, not on every call.  A cached statement is always reset
 * and its bindings cleared before sq_query returns (an unreset statement
 * would hold a read snapshot open).
 */
struct sq_conn {
	sqlite3 *db;
	struct {
		const char *sql;	/* the caller's text (compared in full) */
		sqlite3_stmt *stmt;
		int nparam;		/* its parameters, */
		unsigned char arg[DB_MAXPARAM];	/* each "$k": k, from 1 */
	} cache[SQ_CACHE];
	int ncache, next;	/* next: the slot to replace when full */
};

static int
sq_fail(struct store *st, sqlite3 *db, const char *what)
{
	store_seterr(st, "sqlite: %s: %s", what, sqlite3_errmsg(db));
	return DB_ERR;
}

/* The value each parameter of stmt takes: parameter i + 1 is named "$k"
 * and takes value k - 1 (arg[i] = k).  Read once, when it is prepared
 * (sqlite3_bind_parameter_name walks a list on every call). */
static int
sq_params(struct store *st, sqlite3_stmt *stmt, unsigned char *arg, int *n)
{
	const char *name;
	char *end;
	long k;
	int i, cnt = sqlite3_bind_parameter_count(stmt);

	if (cnt > DB_MAXPARAM) {
		store_seterr(st, "sqlite: too many parameters");
		return DB_ERR;
	}
	for (i = 1; i <= cnt; i++) {
		name = sqlite3_bind_parameter_name(stmt, i);
		if (name == NULL || name[0] != '$' || name[1] < '1' ||
		    name[1] > '9') {
			store_seterr(st, "sqlite: parameter %d is not $N", i);
			return DB_ERR;
		}
		errno = 0;
		k = strtol(name + 1, &end, 10);
		if (errno != 0 || *end != '\0' || k < 1 || k > DB_MAXPARAM) {
			store_seterr(st, "sqlite: parameter %s is out of range",
			    name);
			return DB_ERR;
		}
		arg[i - 1] = (unsigned char)k;
	}
	*n = cnt;
	return DB_OK;
}

/* Binds parameter i of stmt to v. */
static int
sq_bind(struct store *st, sqlite3_stmt *stmt, int i, const struct db_param *v)
{
	int rc;

	switch (v->type) {
	case DB_PINT:
		rc = sqlite3_bind_int64(stmt, i, v->i);
		break;
	case DB_PTEXT:
		if (v->s == NULL) {
			rc = sqlite3_bind_null(stmt, i);
			break;
		}
		rc = sqlite3_bind_text(stmt, i, v->s, -1, SQLITE_STATIC);
		break;
	default:
		rc = sqlite3_bind_null(stmt, i);
		break;
	}
	if (rc != SQLITE_OK)
		return sq_fail(st, sqlite3_db_handle(stmt), "bind");
	return DB_OK;
}

static int
sq_query(struct store *st, const char *sql, const struct db_param *p, int np,
    db_row_cb cb, void *arg)
{
	struct sq_conn *cn = st->db;
	sqlite3 *db = cn->db;
	sqlite3_stmt *stmt = NULL;
	const char *tail = NULL, *vals[DB_MAXCOL];
	struct db_row row;
	unsigned char params[DB_MAXPARAM];
	int rc, i, n, k, nparam = 0, ret = DB_OK, ext, cached = 0;

	if (np < 0 || np > DB_MAXPARAM) {
		store_seterr(st, "sqlite: too many parameters");
		return DB_ERR;
	}
	/* The same literal is the same pointer: look for that first, and
	 * compare text only when no pointer matches. */
	for (i = 0; i < cn->ncache; i++)
		if (cn->cache[i].sql == sql)
			break;
	if (i == cn->ncache)
		for (i = 0; i < cn->ncache; i++)
			if (strcmp(cn->cache[i].sql, sql) == 0)
				break;
	if (i < cn->ncache) {
		stmt = cn->cache[i].stmt;
		cached = 1;
	}
	if (!cached) {
		if (sqlite3_prepare_v2(db, sql, -1, &stmt, &tail) != SQLITE_OK)
			return sq_fail(st, db, "prepare");
		if (stmt == NULL) {
			store_seterr(st, "sqlite: empty statement");
			return DB_ERR;
		}
		while (tail != NULL && (*tail == ' ' || *tail == '\n' ||
		    *tail == '\t' || *tail == ';'))
			tail++;
		if (tail != NULL && *tail != '\0') {
			store_seterr(st, "sqlite: more than one statement");
			ret = DB_ERR;
			goto out;
		}
		if ((ret = sq_params(st, stmt, params, &nparam)) != DB_OK)
			goto out;
		/* Only text that lives as long as the program (the store's
		 * SQL is string literals) may key the cache; it is compared
		 * in full anyway, so a reused buffer only costs a miss. */
		i = cn->ncache < SQ_CACHE ? cn->ncache++ : cn->next++ % SQ_CACHE;
		if (cn->cache[i].stmt != NULL)
			sqlite3_finalize(cn->cache[i].stmt);
		cn->cache[i].sql = sql;
		cn->cache[i].stmt = stmt;
		cn->cache[i].nparam = nparam;
		memcpy(cn->cache[i].arg, params, sizeof(params));
		cached = 1;
	}
	for (n = 0; n < cn->cache[i].nparam; n++) {
		k = cn->cache[i].arg[n];
		if (k > np) {
			store_seterr(st, "sqlite: parameter $%d has no value", k);
			ret = DB_ERR;
			goto out;
		}
		if ((ret = sq_bind(st, stmt, n + 1, &p[k - 1])) != DB_OK)
			goto out;
	}

	row.ncol = sqlite3_column_count(stmt);
	row.val = vals;
	if (row.ncol > DB_MAXCOL) {
		store_seterr(st, "sqlite: too many result columns");
		ret = DB_ERR;
		goto out;
	}
	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		for (i = 0; i < row.ncol; i++) {
			if (sqlite3_column_type(stmt, i) == SQLITE_NULL) {
				vals[i] = NULL;
				continue;
			}
			vals[i] = (const char *)sqlite3_column_text(stmt, i);
			if (vals[i] == NULL) {
				ret = sq_fail(st, db, "column");
				goto out;
			}
		}
		if (cb != NULL && cb(st, &row, arg) != 0) {
			ret = DB_ERR;
			goto out;
		}
	}
	st->changed = rc == SQLITE_DONE ? sqlite3_changes64(db) : 0;
	if (rc != SQLITE_DONE) {
		ext = sqlite3_extended_errcode(db);
		ret = sq_fail(st, db, "step");
		if (ext == SQLITE_CONSTRAINT_UNIQUE ||
		    ext == SQLITE_CONSTRAINT_PRIMARYKEY)
			ret = DB_CONFLICT;
	}
out:
	if (cached) {
		sqlite3_reset(stmt);
		sqlite3_clear_bindings(stmt);
	} else
		sqlite3_finalize(stmt);
	return ret;
}

static int
sq_begin_locked(struct store *st)
{
	/* IMMEDIATE takes the write lock now, waiting up to busy_timeout. */
	return sq_query(st, "BEGIN IMMEDIATE", NULL, 0, NULL, NULL);
}

static void
sq_close(struct store *st)
{
	struct sq_conn *cn = st->db;

	if (cn == NULL)
		return;
	for (int i = 0; i < cn->ncache; i++)
		sqlite3_finalize(cn->cache[i].stmt);
	sqlite3_close(cn->db);
	free(cn);
	st->db = NULL;
}

static const struct store_engine sqlite_engine = {
	.name = "sqlite",
	.mask = SCHEMA_SQLITE,
	.query = sq_query,
	.begin_locked = sq_begin_locked,
	.close = sq_close,
};

/* PRAGMA whose one-row answer must be `want' (case-insensitive). */
static int
sq_pragma_check(struct store *st, sqlite3 *db, const char *sql,
    const char *want)
{
	sqlite3_stmt *stmt = NULL;
	const char *got;
	int ok = 0;

	if (sqlite3_prepare_v2(db, sql, -1, &stmt, NULL) != SQLITE_OK)
		return sq_fail(st, db, sql);
	if (sqlite3_step(stmt) == SQLITE_ROW) {
		got = (const char *)sqlite3_column_text(stmt, 0);
		ok = got != NULL && strcasecmp(got, want) == 0;
		if (!ok)
			store_seterr(st, "sqlite: %s: got \"%s\", want \"%s\"",
			    sql, got ? got : "(null)", want);
	} else
		sq_fail(st, db, sql);
	sqlite3_finalize(stmt);
	return ok ? DB_OK : DB_ERR;
}

int
store_sqlite_open(struct store *st, const char *path)
{
	sqlite3 *db = NULL;
	struct sq_conn *cn;
	int fd, memory;

	if (path == NULL || *path == '\0') {
		store_seterr(st, "sqlite: empty database path");
		return DB_ERR;
	}
	memory = strcmp(path, ":memory:") == 0;
	/* The file holds token hashes: create it private to us. */
	if (!memory) {
		fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
		if (fd == -1) {
			store_seterr(st, "sqlite: %s: %s", path,
			    strerror(errno));
			return DB_ERR;
		}
		close(fd);
	}
	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE |
	    SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
		if (db == NULL) {
			store_seterr(st, "sqlite: %s: out of memory", path);
			return DB_ERR;
		}
		store_seterr(st, "sqlite: %s: %s", path, sqlite3_errmsg(db));
		sqlite3_close(db);
		return DB_ERR;
	}
	sqlite3_extended_result_codes(db, 1);
	sqlite3_busy_timeout(db, SQ_BUSY_MS);
	if (sq_pragma_check(st, db, "PRAGMA journal_mode=WAL",
	    memory ? "memory" : "wal") != DB_OK)
		goto fail;
	if (sqlite3_exec(db, "PRAGMA synchronous=FULL", NULL, NULL, NULL) !=
	    SQLITE_OK || sqlite3_exec(db, "PRAGMA foreign_keys=ON", NULL, NULL,
	    NULL) != SQLITE_OK) {
		sq_fail(st, db, "pragma");
		goto fail;
	}
	if (sq_pragma_check(st, db, "PRAGMA synchronous", "2") != DB_OK ||
	    sq_pragma_check(st, db, "PRAGMA foreign_keys", "1") != DB_OK)
		goto fail;
	if ((cn = calloc(1, sizeof(*cn))) == NULL) {
		store_seterr(st, "sqlite: out of memory");
		goto fail;
	}
	cn->db = db;
	st->eng = &sqlite_engine;
	st->db = cn;
	return DB_OK;
fail:
	sqlite3_close(db);
	return DB_ERR;
}
