/*
 * billing/store_pg: the PostgreSQL engine of the store (libpq).  Owns the
 * PGconn: connecting from a URI, running one statement at a time with
 * PQexecParams (values always as parameters, results as text), the
 * migration lock (a transaction-scoped advisory lock), mapping errors, and
 * reconnecting once when the server went away between transactions.
 */
#include "billing/schema.h"

#include <inttypes.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include <libpq-fe.h>

#include "lib/log.h"

#define PG_INT8OID	20
#define PG_TEXTOID	25
/* Key of the advisory lock held while migrating ("swbmigr"). */
#define PG_MIGRATE_LOCK	INT64_C(0x7377626d696772)
/* GENERATED ... AS IDENTITY needs PostgreSQL 10. */
#define PG_MIN_VERSION	100000

/* libpq messages end with a newline; keep one line. */
static void
pg_seterr(struct store *st, const char *what, const char *msg)
{
	size_t n;

	if (msg == NULL || *msg == '\0')
		msg = "unknown error";
	n = strcspn(msg, "\n");
	store_seterr(st, "postgresql: %s: %.*s", what, (int)n, msg);
}

static void
pg_notice(void *arg, const char *msg)
{
	(void)arg;
	log_debug("postgresql: %.*s", (int)strcspn(msg, "\n"), msg);
}

/* A lost connection is re-established, but never inside a transaction. */
static int
pg_alive(struct store *st)
{
	PGconn *conn = st->db;

	if (PQstatus(conn) == CONNECTION_OK)
		return DB_OK;
	if (!st->in_tx) {
		log_warn("postgresql: connection lost, reconnecting");
		PQreset(conn);
		if (PQstatus(conn) == CONNECTION_OK)
			return DB_OK;
	}
	pg_seterr(st, "connection", PQerrorMessage(conn));
	return DB_ERR;
}

static int
pg_query(struct store *st, const char *sql, const struct db_param *p, int np,
    db_row_cb cb, void *arg)
{
	PGconn *conn = st->db;
	PGresult *res;
	char num[DB_MAXPARAM][24];
	const char *pv[DB_MAXPARAM], *vals[DB_MAXCOL], *state, *msg;
	Oid types[DB_MAXPARAM];
	struct db_row row;
	int i, r, nrow, ret = DB_OK;

	if (np < 0 || np > DB_MAXPARAM) {
		store_seterr(st, "postgresql: too many parameters");
		return DB_ERR;
	}
	if (pg_alive(st) != DB_OK)
		return DB_ERR;
	for (i = 0; i < np; i++) {
		switch (p[i].type) {
		case DB_PINT:
			snprintf(num[i], sizeof(num[i]), "%" PRId64, p[i].i);
			pv[i] = num[i];
			types[i] = PG_INT8OID;
			break;
		case DB_PTEXT:
			pv[i] = p[i].s;
			types[i] = PG_TEXTOID;
			break;
		default:
			pv[i] = NULL;
			types[i] = 0;
			break;
		}
	}
	res = PQexecParams(conn, sql, np, np ? types : NULL, np ? pv : NULL,
	    NULL, NULL, 0);
	if (res == NULL) {
		pg_seterr(st, "exec", PQerrorMessage(conn));
		return DB_ERR;
	}
	/* "" for statements that change no rows: 0. */
	st->changed = strtoll(PQcmdTuples(res), NULL, 10);
	switch (PQresultStatus(res)) {
	case PGRES_COMMAND_OK:
		break;
	case PGRES_TUPLES_OK:
		row.ncol = PQnfields(res);
		row.val = vals;
		if (row.ncol > DB_MAXCOL) {
			store_seterr(st, "postgresql: too many result columns");
			ret = DB_ERR;
			break;
		}
		nrow = PQntuples(res);
		for (r = 0; r < nrow && ret == DB_OK; r++) {
			for (i = 0; i < row.ncol; i++)
				vals[i] = PQgetisnull(res, r, i) ? NULL :
				    PQgetvalue(res, r, i);
			if (cb != NULL && cb(st, &row, arg) != 0)
				ret = DB_ERR;
		}
		break;
	default:
		state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
		msg = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
		pg_seterr(st, state ? state : "error",
		    msg ? msg : PQresultErrorMessage(res));
		ret = DB_ERR;
		/* 23505 unique_violation */
		if (state != NULL && strcmp(state, "23505") == 0)
			ret = DB_CONFLICT;
		break;
	}
	PQclear(res);
	return ret;
}

static int
pg_begin_locked(struct store *st)
{
	struct db_param key = { .type = DB_PINT, .i = PG_MIGRATE_LOCK };

	if (pg_query(st, "BEGIN", NULL, 0, NULL, NULL) != DB_OK)
		return DB_ERR;
	if (pg_query(st, "SELECT pg_advisory_xact_lock($1)", &key, 1, NULL,
	    NULL) != DB_OK) {
		pg_query(st, "ROLLBACK", NULL, 0, NULL, NULL);
		return DB_ERR;
	}
	return DB_OK;
}

static void
pg_close(struct store *st)
{
	if (st->db != NULL)
		PQfinish(st->db);
	st->db = NULL;
}

static const struct store_engine pg_engine = {
	.name = "postgresql",
	.mask = SCHEMA_PG,
	.query = pg_query,
	.begin_locked = pg_begin_locked,
	.close = pg_close,
};

int
store_pg_open(struct store *st, const char *conninfo)
{
	const char *const keys[] = { "dbname", "fallback_application_name",
	    NULL };
	const char *vals[] = { conninfo, "switchboard-billing", NULL };
	PGconn *conn;

	if (conninfo == NULL || *conninfo == '\0') {
		store_seterr(st, "postgresql: empty connection string");
		return DB_ERR;
	}
	conn = PQconnectdbParams(keys, vals, 1);
	if (conn == NULL) {
		store_seterr(st, "postgresql: out of memory");
		return DB_ERR;
	}
	if (PQstatus(conn) != CONNECTION_OK) {
		pg_seterr(st, "connect", PQerrorMessage(conn));
		PQfinish(conn);
		return DB_ERR;
	}
	if (PQserverVersion(conn) < PG_MIN_VERSION) {
		store_seterr(st, "postgresql: server version %d is too old "
		    "(10 or later needed)", PQserverVersion(conn));
		PQfinish(conn);
		return DB_ERR;
	}
	PQsetNoticeProcessor(conn, pg_notice, NULL);
	st->eng = &pg_engine;
	st->db = conn;
	return DB_OK;
}
