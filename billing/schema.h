/*
 * billing/schema: the SQL side of the store, for billing/store*.c only.
 *   - the migrations (billing/schema.c): an ordered array, each a list of
 *     statements, most valid on both engines, a few per engine;
 *   - the small engine interface the two backends (store_sqlite.c,
 *     store_pg.c) implement and the other store*.c files drive.
 *
 * SQL written for both engines uses $1, $2... placeholders (PostgreSQL's
 * syntax; the SQLite engine binds them by name).  Values always travel as
 * parameters, never inside the SQL text.  Result columns reach the caller
 * as text (decimal for integers), NULL for SQL NULL.
 */
#ifndef SWB_BILLING_SCHEMA_H
#define SWB_BILLING_SCHEMA_H

#include <stddef.h>
#include <stdint.h>

struct store;

/* Which engines a migration statement runs on. */
#define SCHEMA_SQLITE	0x1
#define SCHEMA_PG	0x2
#define SCHEMA_BOTH	(SCHEMA_SQLITE | SCHEMA_PG)

struct schema_stmt {
	unsigned	 engines;	/* SCHEMA_* mask */
	const char	*sql;		/* exactly one statement */
};

struct schema_migration {
	int64_t			 version;	/* 1, 2, 3... strictly rising */
	const char		*name;
	const struct schema_stmt *stmts;
	size_t			 nstmts;
};

extern const struct schema_migration	schema_migrations[];
extern const size_t			schema_nmigrations;
/* Creates the schema_version table if missing (both engines). */
extern const char			schema_version_table[];

/* ---- engine interface --------------------------------------------------- */

#define DB_MAXPARAM	24
#define DB_MAXCOL	32

/* Engine call results. */
#define DB_OK		0
#define DB_ERR		(-1)	/* message in the store */
#define DB_CONFLICT	(-2)	/* unique or primary-key violation */

enum db_ptype { DB_PNULL = 0, DB_PINT, DB_PTEXT };

struct db_param {
	enum db_ptype	 type;
	int64_t		 i;	/* DB_PINT */
	const char	*s;	/* DB_PTEXT, NUL-terminated */
};

struct db_row {
	int			 ncol;
	const char *const	*val;	/* val[c] NULL for SQL NULL */
};

/* Per result row; nonzero stops the query, which then returns DB_ERR. */
typedef int (*db_row_cb)(struct store *, const struct db_row *, void *arg);

struct store_engine {
	const char	*name;		/* "sqlite", "postgresql" */
	unsigned	 mask;		/* SCHEMA_SQLITE or SCHEMA_PG */
	/* One statement with np parameters; cb (may be NULL) per row. */
	int		(*query)(struct store *, const char *sql,
			    const struct db_param *p, int np, db_row_cb cb,
			    void *arg);
	/*
	 * BEGIN a transaction that also holds the engine's migration lock,
	 * so that two processes opening the same database migrate in turn.
	 */
	int		(*begin_locked)(struct store *);
	void		(*close)(struct store *);
};

struct store {
	const struct store_engine *eng;
	void		*db;		/* sqlite3 * or PGconn * */
	int		 in_tx;		/* inside BEGIN ... COMMIT */
	int		 batch;		/* inside store_batch_begin ... _end:
					 * transactions are savepoints */
	int64_t		 changed;	/* right after an INSERT, UPDATE
					 * or DELETE: the rows it changed
					 * (the engine's query sets it; after
					 * a SELECT it means nothing) */
	char		 err[512];
};

/* Sets the store's error message (printf-style). */
void	store_seterr(struct store *, const char *fmt, ...)
	    __attribute__((format(printf, 2, 3)));

/* Engine entry points: fill st->eng and st->db, or set st->err and fail. */
int	store_sqlite_open(struct store *, const char *path);
int	store_pg_open(struct store *, const char *conninfo);

#endif
