/*
 * agent/ag_ckpt: a SQLite database's WAL checkpoints in a thread of their
 * own, so that the event loop that writes the database never waits for
 * a disk flush in them.
 *
 * With SQLite's automatic checkpoints, the commit that takes the WAL past
 * 1,000 pages copies them into the database file and flushes both files
 * before it returns: in agentd at c=1, one commit every few seconds held
 * the tunnel's loop for several milliseconds (two fdatasync calls of 2-4
 * ms each under strace), and every request and chunk ready meanwhile
 * waited.  The loop's connection therefore never checkpoints: a hook on its
 * commits (sqlite3_wal_hook, which replaces the automatic checkpoints, on
 * the loop's thread) wakes this thread once the WAL holds CKPT_PAGES
 * pages, and the thread runs a PASSIVE checkpoint on a connection of its
 * own: it copies what no reader still needs and never blocks the writer.
 * The writer starts the WAL over at its next commit once a checkpoint
 * copied all of it.
 *
 * Nothing changes for durability: commits are in the WAL when they
 * return, as before; a checkpoint only moves them into the main file.
 * The thread touches nothing but its own connection and struct ag_ckpt.
 */
#include "agent/ag_ckpt.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
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
 *   done:    checkpoints tried (done or busy), written by C (tests
 *            read it).
 */
struct ag_ckpt {
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
	struct ag_ckpt *ck = arg;
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
			log_warn("WAL checkpoint: %s (the WAL keeps growing until "
			    "one succeeds)", sqlite3_errmsg(ck->db));
		atomic_fetch_add(&ck->done, 1);
		atomic_store(&ck->pending, 0);
	}
}

/* sqlite3_wal_hook, on the loop's thread after each commit. */
static int
ckpt_hook(void *arg, sqlite3 *db, const char *name, int pages)
{
	struct ag_ckpt *ck = arg;

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

struct ag_ckpt *
ag_ckpt_start(sqlite3 *db, const char *path, char *err, size_t errlen)
{
	struct ag_ckpt *ck;

	if ((ck = calloc(1, sizeof(*ck))) == NULL) {
		snprintf(err, errlen, "checkpoints: out of memory");
		return NULL;
	}
	if (sqlite3_open_v2(path, &ck->db, SQLITE_OPEN_READWRITE |
	    SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK ||
	    sqlite3_exec(ck->db, "PRAGMA synchronous=NORMAL", NULL, NULL,
	    NULL) != SQLITE_OK) {
		snprintf(err, errlen, "checkpoints: cannot open %s: %s", path,
		    ck->db != NULL ? sqlite3_errmsg(ck->db) : "out of memory");
		sqlite3_close(ck->db);
		free(ck);
		return NULL;
	}
	pthread_mutex_init(&ck->mu, NULL);
	pthread_cond_init(&ck->cv, NULL);
	if (pthread_create(&ck->th, NULL, ckpt_main, ck) != 0) {
		snprintf(err, errlen, "checkpoints: cannot start their thread");
		pthread_cond_destroy(&ck->cv);
		pthread_mutex_destroy(&ck->mu);
		sqlite3_close(ck->db);
		free(ck);
		return NULL;
	}
	/* From here the loop's connection only appends. */
	sqlite3_wal_hook(db, ckpt_hook, ck);
	return ck;
}

void
ag_ckpt_stop(struct ag_ckpt *ck, sqlite3 *db)
{
	if (ck == NULL)
		return;
	sqlite3_wal_hook(db, NULL, NULL);
	pthread_mutex_lock(&ck->mu);
	ck->stop = 1;
	pthread_cond_signal(&ck->cv);
	pthread_mutex_unlock(&ck->mu);
	pthread_join(ck->th, NULL);
	pthread_cond_destroy(&ck->cv);
	pthread_mutex_destroy(&ck->mu);
	sqlite3_close(ck->db);
	free(ck);
}

unsigned long
ag_ckpt_count(const struct ag_ckpt *ck)
{
	return ck != NULL ? atomic_load(&ck->done) : 0;
}
