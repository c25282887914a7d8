/*
 * agent/ag_ledger_read: read-only queries on ledger.db (see
 * ag_ledger_read.h).  The schema is agent/ag_ledger's; this file only
 * reads the prices and served tables.
 */
#include "agent/ag_ledger_read.h"
#include "agent/ag_ledger.h"
#include "agent/ag_ledger_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#define RD_BUSY_MS	200	/* the writer checkpointing, at worst */

struct ag_ledger_rd {
	sqlite3 *db;
	char err[256];
};

struct ag_ledger_rd *
ag_ledger_rd_open(const char *state_dir, char *err, size_t errlen)
{
	struct ag_ledger_rd *rd;
	char path[512];

	if ((size_t)snprintf(path, sizeof(path), "%s/%s", state_dir,
	    AG_LEDGER_FILE) >= sizeof(path)) {
		snprintf(err, errlen, "%s: path too long", state_dir);
		return NULL;
	}
	if ((rd = calloc(1, sizeof(*rd))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	if (sqlite3_open_v2(path, &rd->db, SQLITE_OPEN_READONLY, NULL) !=
	    SQLITE_OK) {
		snprintf(err, errlen, "%s: %s", path, rd->db != NULL ?
		    sqlite3_errmsg(rd->db) : "cannot open");
		ag_ledger_rd_close(rd);
		return NULL;
	}
	sqlite3_busy_timeout(rd->db, RD_BUSY_MS);
	return rd;
}

void
ag_ledger_rd_close(struct ag_ledger_rd *rd)
{
	if (rd == NULL)
		return;
	sqlite3_close(rd->db);
	free(rd);
}

const char *
ag_ledger_rd_error(const struct ag_ledger_rd *rd)
{
	return rd->err;
}

static sqlite3_stmt *
prepare(struct ag_ledger_rd *rd, const char *sql)
{
	sqlite3_stmt *st = NULL;

	if (sqlite3_prepare_v2(rd->db, sql, -1, &st, NULL) != SQLITE_OK) {
		snprintf(rd->err, sizeof(rd->err), "%s",
		    sqlite3_errmsg(rd->db));
		return NULL;
	}
	return st;
}

/* Step st to its end; row(st, arg) per row until it returns non-zero. */
static int
walk(struct ag_ledger_rd *rd, sqlite3_stmt *st,
    int (*row)(sqlite3_stmt *, void *), void *arg)
{
	int rc, n = 0;

	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		n++;
		if (row(st, arg) != 0) {
			rc = SQLITE_DONE;
			break;
		}
	}
	if (rc != SQLITE_DONE) {
		snprintf(rd->err, sizeof(rd->err), "%s",
		    sqlite3_errmsg(rd->db));
		n = -1;
	}
	sqlite3_finalize(st);
	return n;
}

struct price_walk {
	int (*cb)(const char *, int64_t, const struct money_prices *, void *);
	void *arg;
};

static int
price_row(sqlite3_stmt *st, void *arg)
{
	struct price_walk *w = arg;
	struct money_prices p;
	const char *m = (const char *)sqlite3_column_text(st, 0);

	p.input = sqlite3_column_int64(st, 2);
	p.output = sqlite3_column_int64(st, 3);
	p.cached_input = sqlite3_column_int64(st, 4);
	p.cache_write = sqlite3_column_int64(st, 5);
	return w->cb(m != NULL ? m : "", sqlite3_column_int64(st, 1), &p,
	    w->arg);
}

int
ag_ledger_rd_prices(struct ag_ledger_rd *rd,
    int (*cb)(const char *, int64_t, const struct money_prices *, void *),
    void *arg)
{
	struct price_walk w = { cb, arg };
	sqlite3_stmt *st = prepare(rd, "SELECT model, version, input, output, "
	    "cached_input, cache_write FROM prices p WHERE version = "
	    "(SELECT MAX(version) FROM prices q WHERE q.model = p.model) "
	    "ORDER BY model");

	return st == NULL ? -1 : walk(rd, st, price_row, &w);
}

struct usage_walk {
	int (*cb)(const struct ag_ledger_usage *, void *);
	void *arg;
};

static int
usage_row(sqlite3_stmt *st, void *arg)
{
	struct usage_walk *w = arg;
	struct ag_ledger_usage u;
	const char *m = (const char *)sqlite3_column_text(st, 0);

	u.model = m != NULL ? m : "";
	u.requests = sqlite3_column_int64(st, 1);
	u.input = sqlite3_column_int64(st, 2);
	u.output = sqlite3_column_int64(st, 3);
	u.cached = sqlite3_column_int64(st, 4);
	u.cache_write = sqlite3_column_int64(st, 5);
	return w->cb(&u, w->arg);
}

int
ag_ledger_rd_served_since(struct ag_ledger_rd *rd, int64_t since_ms,
    int (*cb)(const struct ag_ledger_usage *, void *), void *arg)
{
	struct usage_walk w = { cb, arg };
	sqlite3_stmt *st = prepare(rd, AG_SQL_SERVED_SINCE);

	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, since_ms);
	return walk(rd, st, usage_row, &w);
}

/* Every row of st as an object keyed by column name. */
static json_t *
rows_json(struct ag_ledger_rd *rd, sqlite3_stmt *st)
{
	json_t *a = json_array(), *o, *v;
	int rc, nc = sqlite3_column_count(st);

	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		o = json_object();
		for (int c = 0; c < nc; c++) {
			switch (sqlite3_column_type(st, c)) {
			case SQLITE_INTEGER:
				v = json_integer(sqlite3_column_int64(st, c));
				break;
			case SQLITE_TEXT:
				v = json_string((const char *)
				    sqlite3_column_text(st, c));
				break;
			default:
				v = json_null();
			}
			json_object_set_new(o, sqlite3_column_name(st, c),
			    v != NULL ? v : json_null());
		}
		json_array_append_new(a, o);
	}
	if (rc != SQLITE_DONE) {
		snprintf(rd->err, sizeof(rd->err), "%s",
		    sqlite3_errmsg(rd->db));
		json_decref(a);
		a = NULL;
	}
	sqlite3_finalize(st);
	return a;
}

json_t *
ag_ledger_rd_recent(struct ag_ledger_rd *rd, int max)
{
	sqlite3_stmt *st = prepare(rd, AG_SQL_SERVED_RECENT);

	if (st == NULL)
		return NULL;
	sqlite3_bind_int(st, 1, max);
	return rows_json(rd, st);
}

json_t *
ag_ledger_rd_earnings(struct ag_ledger_rd *rd, int days)
{
	sqlite3_stmt *st = prepare(rd, "SELECT date(created_at, 'unixepoch') "
	    "AS day, model, COUNT(*) AS requests, SUM(amount) AS amount "
	    "FROM ledger WHERE created_at >= strftime('%s', 'now') - ? * 86400 "
	    "GROUP BY day, model ORDER BY day DESC, model");

	if (st == NULL)
		return NULL;
	sqlite3_bind_int(st, 1, days);
	return rows_json(rd, st);
}

json_t *
ag_ledger_rd_disputes(struct ag_ledger_rd *rd)
{
	sqlite3_stmt *st = prepare(rd, "SELECT * FROM disputes "
	    "ORDER BY created_at DESC LIMIT 200");

	return st == NULL ? NULL : rows_json(rd, st);
}
