/*
 * agent/ag_ckpt: a SQLite database's WAL checkpoints in a thread of their
 * own (agentd's ledger); see agent/ag_ckpt.c.  Billing's store keeps
 * SQLite's own: off the requests' path, a thread there cost it 3-8 us
 * of CPU a request and moved no p99 (paired runs with a quota token).
 */
#ifndef SWB_AG_CKPT_H
#define SWB_AG_CKPT_H

#include <stddef.h>
#include <sqlite3.h>

struct ag_ckpt;

/* Start checkpointing the WAL database at path, which db (the loop's
 * connection, in WAL mode) writes: db stops checkpointing in its
 * commits.  NULL with err filled when the thread could not start (db
 * is then left as it was). */
struct ag_ckpt *ag_ckpt_start(sqlite3 *db, const char *path, char *err,
    size_t errlen);
/* Stop the thread and close its connection; db no longer calls it.  Call
 * before closing db.  NULL: nothing. */
void ag_ckpt_stop(struct ag_ckpt *ck, sqlite3 *db);
/* Checkpoints the thread tried (NULL: 0). */
unsigned long ag_ckpt_count(const struct ag_ckpt *ck);

#endif
