/*
 * agent/ag_ledger_int: what the ledger database's files share — for
 * agent/ag_ledger.c and agent/ag_ledger_*.c only (not ag_ledger_read.c,
 * which has a connection of its own); their callers use
 * agent/ag_ledger.h.  Owns nothing but declarations: the handle (each
 * field says which file writes it), the column lists two files share,
 * and the prototypes of the functions that cross files (each is
 * described where it is defined).  The files:
 *   ag_ledger.c         the database core: the file, WAL, the schema and
 *                       its migrations, the statement cache and query
 *                       helpers, transactions and grouped writes, what
 *                       is kept in memory and when it is dropped, open
 *                       and close
 *   ag_ledger_hub.c     the hub's ledger key per agent id and its prices
 *   ag_ledger_served.c  the streams this agent served
 *   ag_ledger_store.c   the chain and the receipt decision: held
 *                       batches, storing a signed batch a slice a call,
 *                       the checks and the disputes they raise
 *   ag_ledger_export.c  the ledger commands' reads: agents, export,
 *                       verify, disputes
 * Nothing here is thread-safe: one thread per handle.
 */
#ifndef SWB_AG_LEDGER_INT_H
#define SWB_AG_LEDGER_INT_H

#include <stddef.h>
#include <stdint.h>
#include <sqlite3.h>
#include "agent/ag_ledger.h"
#include "agent/ag_ckpt.h"
#include "lib/ledger.h"
#include "lib/money.h"

#define LG_CACHE	48	/* prepared statements kept */
#define LG_PRICES	8	/* (model, version) prices kept */

/* The served table's columns, in col_served's order (ag_ledger.c's
 * migration 4 copies the table with them, ag_ledger_served.c reads and
 * writes its rows). */
#define SERVED_COLS	"request_id, agent_id, model, input_tokens, " \
	"output_tokens, cached_tokens, cache_write_tokens, estimated, state, " \
	"created_at, reported_at, images, audio_seconds, audio_chars, " \
	"video_seconds"

/* The reads of served that an index serves (agent/ag_ledger.c, version
 * 5), named here so tests/unit/test_ag_ledger.c checks their plans: the
 * open rows due a usage report, oldest first (the partial served_open),
 * a page at a time from where the last one ended (its created_at and
 * rowid: the index's own order); the day's usage by model
 * (served_created); the newest rows with their entries (served_created,
 * walked backwards). */
#define AG_SQL_SERVED_DUE	"SELECT " SERVED_COLS ", rowid FROM served " \
	"WHERE state = 'open' AND created_at < ? AND reported_at < ? AND " \
	"(created_at, rowid) > (?, ?) ORDER BY created_at, rowid LIMIT ?"
#define AG_SQL_SERVED_DUE_ROWID	15	/* its column of the rowid */
#define AG_SQL_SERVED_SINCE	"SELECT model, COUNT(*), " \
	"SUM(input_tokens), SUM(output_tokens), SUM(cached_tokens), " \
	"SUM(cache_write_tokens) FROM served WHERE created_at >= ? " \
	"GROUP BY model ORDER BY model"
#define AG_SQL_SERVED_RECENT	"SELECT s.request_id, s.model, " \
	"s.input_tokens, s.output_tokens, s.cached_tokens, s.estimated, " \
	"s.state, s.created_at, l.amount, l.price_version " \
	"FROM served s LEFT JOIN ledger l ON l.agent_id = s.agent_id AND " \
	"l.request_id = s.request_id ORDER BY s.created_at DESC LIMIT ?"

/* The ledger table's columns, in lg_col_entry's order (ag_ledger_store.c
 * and ag_ledger_export.c). */
#define ENTRY_COLS	"agent_id, seq, prev_hash, hash, request_id, " \
	"token_id, model, input_tokens, output_tokens, cached_tokens, " \
	"cache_write_tokens, price_version, amount, created_at, " \
	"agent_reported, sig, images, audio_seconds, audio_chars, " \
	"video_seconds"

/*
 * The handle.  Made by ag_ledger_open and freed by ag_ledger_close
 * (ag_ledger.c); each group of fields says which file writes it after
 * that.  Any file may read any field.
 */
struct ag_ledger {
	/* ag_ledger.c: db (open, close); err by lg_seterr and dberr, which
	 * every file calls. */
	sqlite3	*db;
	/* The checkpoint thread (AG_LEDGER_CHECKPOINTER, agent/ag_ckpt),
	 * NULL without it: ag_ledger.c (ag_ledger_open, ag_ledger_close). */
	struct ag_ckpt *ckpt;
	char	 err[256];
	/* Prepared statements by SQL text: parsed once, reset after use
	 * (lg_release()), finalized at close.  ag_ledger.c (lg_query,
	 * ag_ledger_close). */
	struct {
		const char	*sql;
		sqlite3_stmt	*st;
	} cache[LG_CACHE];
	int	 ncache;
	/* Receipts without a signature, held until their batch's signed
	 * last entry comes (lib/ledger.h): they extend the stored chain in
	 * seq order, links and hashes checked, nothing stored yet.
	 * ag_ledger_store.c. */
	struct ledger_entry pend[AG_LEDGER_BATCH_MAX];
	size_t	 npend;
	/* pend's request ids, by hash (open addressing): a slot holds a
	 * position in pend + 1, 0 when free.  A slot whose position is past
	 * npend, or whose entry there has another id, is stale: lookups
	 * check pend and walk past it.  Cleared when pend is empty, rebuilt
	 * from pend once pidx_n inserts fill half of it.  Only
	 * ag_ledger_store.c (pend_push, pend_has). */
	uint16_t pidx[2 * AG_LEDGER_BATCH_MAX];
	size_t	 pidx_n;
	/* A verified signed entry whose batch is being stored, a slice a
	 * call (ag_ledger_receipt_continue): pend[0, nstored) are stored.
	 * ag_ledger_store.c (ag_ledger_flush and ag_ledger_close read
	 * storing); slice is set to AG_LEDGER_STORE_SLICE by ag_ledger_open,
	 * changed by ag_ledger_test_slice (ag_ledger_store.c). */
	int	 storing;
	struct ledger_entry closing;
	size_t	 nstored;
	size_t	 slice;			/* AG_LEDGER_STORE_SLICE (tests: less) */
	int	 lost;			/* a failed slice rolled the group back */
	/* What the last ag_ledger_receipt_apply stored besides its own
	 * entry (ag_ledger_batch_done).  ag_ledger_store.c. */
	struct ledger_entry done_e[AG_LEDGER_BATCH_MAX];
	struct ag_receipt_result done_r[AG_LEDGER_BATCH_MAX];
	size_t	 ndone;
	/* Grouped writes (ag_ledger_group): the open outer transaction.
	 * ag_ledger.c (ag_ledger_group; open by group_open and
	 * ag_ledger_flush), and open also by ag_ledger_store.c's store_step
	 * when a failed slice rolls the whole group back. */
	void	(*armed)(void *);	/* told when one opens */
	void	*armed_arg;
	int	 group;			/* grouping is on */
	int	 open;			/* an outer transaction is open */
	/* What every receipt reads, kept once read or written: the hub's
	 * key of one agent id and prices (both written once, never
	 * changed), and the stored head of one agent's chain (it moves only
	 * in store_one).  A rollback may take back what they hold, and
	 * another connection may have written the file (an operator's
	 * sqlite3): either drops them all (lg_forget(), lg_fresh()).
	 * dv, dv_last: ag_ledger.c (lg_fresh).  key: ag_ledger_hub.c
	 * (lg_key_get); price, next_price: ag_ledger_hub.c (lg_price_get);
	 * head: ag_ledger_store.c (head_get, store_one).  The ok flags of
	 * key, price and head are also cleared by lg_forget (ag_ledger.c). */
	sqlite3_stmt *dv;		/* PRAGMA data_version */
	int64_t	 dv_last;
	struct {
		int		 ok;
		uint64_t	 agent_id;
		unsigned char	 pk[LEDGER_PK_LEN];
	} key;
	struct {
		int		 ok;
		int64_t		 version;
		char		 model[LEDGER_MODEL_MAX + 1];
		struct money_prices p;
	} price[LG_PRICES];
	unsigned next_price;		/* the slot the next one takes */
	struct {
		int		 ok;	/* 0 unknown, 1 held */
		int		 empty;	/* the chain has no entry yet */
		struct ledger_entry e;
	} head;
};

/* ag_ledger.c: errors, the text rule, what is kept in memory. */
void lg_seterr(struct ag_ledger *lg, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
int  lg_text_ok(const char *s, size_t max, int empty_ok);
void lg_forget(struct ag_ledger *lg);
void lg_fresh(struct ag_ledger *lg);

/* ag_ledger.c: statements and rows. */
sqlite3_stmt *lg_query(struct ag_ledger *lg, const char *sql,
    const char *types, ...);
void lg_release(struct ag_ledger *lg, sqlite3_stmt *st);
int  lg_done(struct ag_ledger *lg, sqlite3_stmt *st);
int  lg_row(struct ag_ledger *lg, sqlite3_stmt *st);
void lg_col_text(sqlite3_stmt *st, int i, char *buf, size_t len);
void lg_col_entry(sqlite3_stmt *st, struct ledger_entry *e);

/* ag_ledger.c: a receipt's transaction (a savepoint of the group when
 * the writes are grouped). */
int  lg_tx_begin(struct ag_ledger *lg);
int  lg_tx_commit(struct ag_ledger *lg);
void lg_tx_rollback(struct ag_ledger *lg);

/* ag_ledger_hub.c: the hub's key and prices, without lg_fresh. */
int  lg_key_get(struct ag_ledger *lg, uint64_t agent_id,
    unsigned char pk[LEDGER_PK_LEN]);
int  lg_price_get(struct ag_ledger *lg, const char *model, int64_t version,
    struct money_prices *p);

/* ag_ledger_store.c: the rest of a batch being stored (ag_ledger_close). */
int  lg_store_rest(struct ag_ledger *lg);

#endif
