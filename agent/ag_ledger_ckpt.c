/*
 * agent/ag_ledger_ckpt: the ledger's WAL checkpoints, in a thread of
 * their own, so that agentd's loop never waits for a disk flush.
 *
 * With SQLite's automatic checkpoints, the commit that takes the WAL past
 * 1,000 pages copies them into the database file and flushes both files
 * (synchronous=NORMAL) before it returns: at c=1, one commit every few
 * seconds held the tunnel's loop for several milliseconds (two fdatasync
 * calls of 2-4 ms each under strace), and every request and chunk ready
 * meanwhile waited.  agentd's own connection therefore never checkpoints
 * (wal_autocheckpoint=0); a hook on its commits (sqlite3_wal_hook, on the
 * loop's thread) wakes this thread once the WAL holds CKPT_PAGES pages,
 * and the thread runs a PASSIVE checkpoint on a connection of its own:
 * it copies what no reader still needs and never blocks the writer.  The
 * writer starts the WAL over at its next commit once a checkpoint copied
 * all of it.
 *
 * Nothing changes for durability: commits are in the WAL when they
 * return, as before; the checkpoint only moves them into the main file.
 * The thread touches nothing but its own connection and the fields of
 * struct lg_ckpt below; it never calls lws.
 */
#include "agent/ag_ledger_int.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "lib/log.h"

#define CKPT_PAGES	1000	/* SQLite's own automatic threshold */

/*
 * Shared by the loop's thread (L) and the checkpoint thread (C).
 *   db:      C's connection (L opens it before C starts, closes it after
 *            C ended).
 *   mu, cv:  guard want and stop; L sets them, C clears want.
 *   pending: set by L when it asks, cleared by C after the checkpoint;
 *            L asks only when it is clear (no lock on every commit).
 *   done:    checkpoints run, written by C (tests read it).
 */
struct lg_ckpt {
	pthread_t	 th;
	sqlite3		*db;
	pthread_mutex_t	 mu;
	pthread_cond_t	 cv;
	int		 want, stop;
	atomic_int	 pending;
	atomic_ulong	 done;
};

static void *
ckpt_main(void *arg)
{
	struct lg_ckpt *ck = arg;
	int nlog, nckpt, rc;

	for (;;) {
		pthread_mutex_lock(&ck->mu);
		while (!ck->want && !ck->stop)
			pthread_cond_wait(&ck->cv, &ck->mu);
		if (ck->stop) {
			pthread_mutex_unlock(&ck->mu);
			return NULL;
		}
		ck->want = 0;
		pthread_mutex_unlock(&ck->mu);
		rc = sqlite3_wal_checkpoint_v2(ck->db, NULL,
		    SQLITE_CHECKPOINT_PASSIVE, &nlog, &nckpt);
		if (rc != SQLITE_OK && rc != SQLITE_BUSY)
			log_warn("ledger: checkpoint: %s (the WAL keeps growing "
			    "until one succeeds)", sqlite3_errmsg(ck->db));
		atomic_fetch_add(&ck->done, 1);
		atomic_store(&ck->pending, 0);
	}
}

/* sqlite3_wal_hook, on the loop's thread after each commit. */
static int
ckpt_hook(void *arg, sqlite3 *db, const char *name, int pages)
{
	struct lg_ckpt *ck = arg;

	(void)db;
	(void)name;
	if (pages < CKPT_PAGES || atomic_exchange(&ck->pending, 1) != 0)
		return SQLITE_OK;
	pthread_mutex_lock(&ck->mu);
	ck->want = 1;
	pthread_cond_signal(&ck->cv);
	pthread_mutex_unlock(&ck->mu);
	return SQLITE_OK;
}

int
lg_ckpt_start(struct ag_ledger *lg, const char *path)
{
	struct lg_ckpt *ck;

	if ((ck = calloc(1, sizeof(*ck))) == NULL) {
		lg_seterr(lg, "checkpoints: out of memory");
		return -1;
	}
	if (sqlite3_open_v2(path, &ck->db, SQLITE_OPEN_READWRITE |
	    SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK ||
	    sqlite3_exec(ck->db, "PRAGMA synchronous=NORMAL", NULL, NULL,
	    NULL) != SQLITE_OK) {
		lg_seterr(lg, "checkpoints: cannot open %s: %s", path,
		    ck->db != NULL ? sqlite3_errmsg(ck->db) : "out of memory");
		sqlite3_close(ck->db);
		free(ck);
		return -1;
	}
	pthread_mutex_init(&ck->mu, NULL);
	pthread_cond_init(&ck->cv, NULL);
	if (pthread_create(&ck->th, NULL, ckpt_main, ck) != 0) {
		lg_seterr(lg, "checkpoints: cannot start their thread");
		pthread_cond_destroy(&ck->cv);
		pthread_mutex_destroy(&ck->mu);
		sqlite3_close(ck->db);
		free(ck);
		return -1;
	}
	/* From here the loop's connection only appends. */
	sqlite3_wal_hook(lg->db, ckpt_hook, ck);
	lg->ckpt = ck;
	return 0;
}

void
lg_ckpt_stop(struct ag_ledger *lg)
{
	struct lg_ckpt *ck = lg->ckpt;

	if (ck == NULL)
		return;
	sqlite3_wal_hook(lg->db, NULL, NULL);
	pthread_mutex_lock(&ck->mu);
	ck->stop = 1;
	pthread_cond_signal(&ck->cv);
	pthread_mutex_unlock(&ck->mu);
	pthread_join(ck->th, NULL);
	pthread_cond_destroy(&ck->cv);
	pthread_mutex_destroy(&ck->mu);
	sqlite3_close(ck->db);
	free(ck);
	lg->ckpt = NULL;
}

unsigned long
ag_ledger_checkpoints(const struct ag_ledger *lg)
{
	return lg->ckpt != NULL ? atomic_load(&lg->ckpt->done) : 0;
}
