/*
 * billing/store_int: what the store's files share, for billing/store.c and
 * the files of its calls (store_agent.c, store_token.c, store_price.c,
 * store_charge.c, store_ledger.c, store_dispute.c, store_job.c) only — not
 * the engines, not store_admin.c (which has its own), never outside
 * billing/.  These names were static in one file and keep their short
 * names: nothing outside those files may use them.  Each is described
 * where it is defined; all are in billing/store.c except the charge
 * helpers that store_charge_post shares with the other charge calls
 * (billing/store_charge.c).
 */
#ifndef SWB_BILLING_STORE_INT_H
#define SWB_BILLING_STORE_INT_H

#include <stddef.h>
#include <stdint.h>

#include "billing/schema.h"
#include "billing/store.h"

/* ---- billing/store.c: statements, transactions ------------------------- */

struct db_param	pint(int64_t v);
struct db_param	ptext(const char *s);
/* One statement (clears the store's error first). */
int	q(struct store *st, const char *sql, const struct db_param *p, int np,
	    db_row_cb cb, void *arg);
/* UPDATE one row and read some of its columns as they are after. */
int	update_row(struct store *st, const char *pg, const char *sq_update,
	    const char *sq_select, const struct db_param *p, int np, int nsel,
	    db_row_cb cb, void *arg);
/* A call's write transaction (a savepoint inside a batch); its end. */
int	tx_begin_write(struct store *st);
int	tx_commit(struct store *st);
void	tx_rollback(struct store *st);

/* ---- billing/store.c: result columns and rows -------------------------- */

int	col_int(struct store *st, const struct db_row *r, int c, int64_t *out);
int	col_id(struct store *st, const struct db_row *r, int c, uint64_t *out);
int	col_text(struct store *st, const struct db_row *r, int c, char *buf,
	    size_t len);
/* Row callback: the first column of the single row, as an int64. */
int	row_int(struct store *st, const struct db_row *r, void *arg);

/* Row callback: counts rows; keeps the first column as an id. */
struct one_id {
	int		n;
	uint64_t	id;
};
int	row_id(struct store *st, const struct db_row *r, void *arg);

/* Collects converted rows into a growing array (the list calls). */
typedef int (*row_conv)(struct store *, const struct db_row *, void *out);

struct collect {
	row_conv	 conv;
	size_t		 size;	/* of one item */
	size_t		 n, cap;
	unsigned char	*items;
};
int	row_collect(struct store *st, const struct db_row *r, void *arg);
/* The get calls: 0 one row found (*out filled), 1 none, -1 error. */
int	query_one(struct store *st, const char *sql, const struct db_param *p,
	    int np, row_conv conv, size_t size, void *out);
/* The list calls: every row into c; 0, or -1 (nothing to walk). */
int	query_all(struct store *st, const char *what, int have_cb,
	    const char *sql, const struct db_param *p, int np,
	    struct collect *c);
/* A list's limit as SQL sees it: 0 (or anything past int64) is "all". */
int64_t	sql_limit(size_t limit);

/* ---- billing/store.c: input checks (1 good, 0 not) --------------------- */

/* Ids reach SQL as int64: anything above cannot exist. */
int	id_ok(uint64_t id);
/* An agent's (strict: A-Z a-z 0-9 . _ -) or a token's (printable) name. */
int	name_ok(const char *s, int strict);
/* 1..STORE_MODEL_MAX printable ASCII bytes, no spaces, no commas. */
int	model_ok(const char *s);
/* A request id: 1..63 printable ASCII bytes, no spaces. */
int	reqid_ok(const char *s);
/* Printable ASCII (spaces allowed), NUL-terminated within len. */
int	printable_ok(const char *s, size_t len);

/* ---- billing/store_charge.c: for store_charge_post --------------------- */

/* reqid_ok for a charge's key, with the error set when it is not. */
int	charge_reqid_ok(struct store *st, const char *request_id);
/* Usage of a charge that is posted to the ledger or parked for it. */
int	usage_ok(struct store *st, const char *what,
	    const struct store_charge_usage *u);

/* Row callback (a settled charge): rows counted; the first one's token
 * and reservation. */
struct settled {
	int		n;
	uint64_t	token_id;
	int64_t		reserved;
};
int	row_settled(struct store *st, const struct db_row *r, void *arg);
/* Inside a write transaction: tokens.used = used - reserved + amount. */
int	used_settle(struct store *st, uint64_t token_id, int64_t reserved,
	    int64_t amount);
/* Inside a write transaction: a lost reservation row made again (of 0). */
int	charge_restore(struct store *st, const char *request_id,
	    uint64_t token_id);

#endif
