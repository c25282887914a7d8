/*
 * agent/ag_ledger: the agent's SQLite ledger database (see ag_ledger.h),
 * the core the other ag_ledger_*.c files build on (ag_ledger_int.h).
 * Owns the file and its permissions, WAL, the schema and its migrations,
 * the statement cache and the query helpers, the transactions (grouped
 * writes and a receipt's savepoint), dropping what is kept in memory,
 * and opening and closing the handle.  The hub's key and prices are in
 * ag_ledger_hub.c, the served streams in ag_ledger_served.c, the chain
 * and the receipt decision in ag_ledger_store.c, the ledger commands'
 * reads in ag_ledger_export.c.
 *
 * Durability: WAL with synchronous=NORMAL.  A commit is in the WAL file
 * (written, not yet fsync'd) before it returns, so it survives the agentd
 * process being killed at any point; only an OS crash or power loss can
 * drop the last commits, never corrupt the file, and what it drops comes
 * back: receipts by the hub's replay after the next sync, and a lost
 * served record only means the hub's own numbers stand unchecked.  FULL
 * would add an fsync to every commit for no gain here.  Commits are local
 * and short (a few rows, no fsync), which is why they run on the tunnel's
 * lws thread instead of a thread of their own; agentd's checkpoints, which
 * flush both files, run in one (agent/ag_ckpt.c).
 */
#include "agent/ag_ledger_int.h"

#include <sys/stat.h>
#include <sys/types.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>
#include <sqlite3.h>

#include "lib/log.h"

#define BUSY_MS		1000	/* a CLI reader checkpointing, at worst */
#define PATH_MAX_LEN	512

/* Drop what is kept in memory: a transaction was rolled back. */
void
lg_forget(struct ag_ledger *lg)
{
	lg->key.ok = 0;
	for (int i = 0; i < LG_PRICES; i++)
		lg->price[i].ok = 0;
	lg->head.ok = 0;
}

/* Drop what is kept when another connection committed since the last
 * look (PRAGMA data_version moves only for other connections' commits;
 * one step of a prepared statement, no b-tree). */
void
lg_fresh(struct ag_ledger *lg)
{
	int64_t v;

	if (lg->dv == NULL && sqlite3_prepare_v2(lg->db,
	    "PRAGMA data_version", -1, &lg->dv, NULL) != SQLITE_OK) {
		sqlite3_finalize(lg->dv);
		lg->dv = NULL;
		lg_forget(lg);
		return;
	}
	if (sqlite3_step(lg->dv) != SQLITE_ROW) {
		sqlite3_reset(lg->dv);
		lg_forget(lg);
		return;
	}
	v = sqlite3_column_int64(lg->dv, 0);
	sqlite3_reset(lg->dv);
	if (v != lg->dv_last) {
		lg_forget(lg);
		lg->dv_last = v;
	}
}

/*
 * The schema, one entry per version; entry i takes a database from
 * version i to i + 1.  Never edit an entry once released: add one.
 * Times: ledger and disputes in unix seconds (the hub's receipts are),
 * served in unix milliseconds (reports are paced in ms).
 */
static const char *const migrations[] = {
	/* 1: the first schema. */
	/* The hub's Ed25519 ledger key per agent id (32 raw bytes), learned
	 * from welcome's ledger_key; never replaced once learned. */
	"CREATE TABLE hub_keys ("
	"  agent_id   INTEGER PRIMARY KEY,"
	"  pk         BLOB NOT NULL CHECK (length(pk) = 32),"
	"  learned_at INTEGER NOT NULL);"
	/* The hub's prices, micro-units per 1M tokens; a (model, version)
	 * never changes once announced. */
	"CREATE TABLE prices ("
	"  model        TEXT NOT NULL,"
	"  version      INTEGER NOT NULL CHECK (version >= 1),"
	"  input        INTEGER NOT NULL,"
	"  output       INTEGER NOT NULL,"
	"  cached_input INTEGER NOT NULL,"
	"  cache_write  INTEGER NOT NULL,"
	"  PRIMARY KEY (model, version));"
	/* Streams this agent served (2xx head, then an end, a cancel or a
	 * lost link), with the usage it read or estimated. */
	"CREATE TABLE served ("
	"  request_id         TEXT PRIMARY KEY,"
	"  agent_id           INTEGER NOT NULL,"
	"  model              TEXT NOT NULL,"
	"  input_tokens       INTEGER NOT NULL,"
	"  output_tokens      INTEGER NOT NULL,"
	"  cached_tokens      INTEGER NOT NULL,"
	"  cache_write_tokens INTEGER NOT NULL,"
	"  estimated          INTEGER NOT NULL CHECK (estimated IN (0, 1)),"
	"  state              TEXT NOT NULL"
	"                     CHECK (state IN ('open','reported','receipted')),"
	"  created_at         INTEGER NOT NULL,"
	"  reported_at        INTEGER NOT NULL DEFAULT 0);"
	"CREATE INDEX served_due ON served (state, created_at);"
	/* The agent's copy of the hub's chain: every struct ledger_entry
	 * field, hashes as 64 hex digits, sig as 64 raw bytes. */
	"CREATE TABLE ledger ("
	"  agent_id           INTEGER NOT NULL,"
	"  seq                INTEGER NOT NULL,"
	"  prev_hash          TEXT NOT NULL,"
	"  hash               TEXT NOT NULL,"
	"  request_id         TEXT NOT NULL,"
	"  token_id           INTEGER NOT NULL,"
	"  model              TEXT NOT NULL,"
	"  input_tokens       INTEGER NOT NULL,"
	"  output_tokens      INTEGER NOT NULL,"
	"  cached_tokens      INTEGER NOT NULL,"
	"  cache_write_tokens INTEGER NOT NULL,"
	"  price_version      INTEGER NOT NULL,"
	"  amount             INTEGER NOT NULL,"
	"  created_at         INTEGER NOT NULL,"
	"  agent_reported     INTEGER NOT NULL,"
	"  sig                BLOB NOT NULL,"
	"  PRIMARY KEY (agent_id, seq),"
	"  UNIQUE (agent_id, request_id));"
	/* Receipts the agent stored but disagrees with; agent_amount -1:
	 * it could not price the entry. */
	"CREATE TABLE disputes ("
	"  agent_id     INTEGER NOT NULL,"
	"  seq          INTEGER NOT NULL,"
	"  request_id   TEXT NOT NULL,"
	"  hub_amount   INTEGER NOT NULL,"
	"  agent_amount INTEGER NOT NULL,"
	"  reason       TEXT NOT NULL,"
	"  created_at   INTEGER NOT NULL,"
	"  PRIMARY KEY (agent_id, seq));",
	/* 2: the hub operator's outcome of a dispute (a dispute_result
	 * frame): status open | accepted | rejected, their reason, when. */
	"ALTER TABLE disputes ADD COLUMN status TEXT NOT NULL DEFAULT 'open';"
	"ALTER TABLE disputes ADD COLUMN resolution TEXT NOT NULL DEFAULT '';"
	"ALTER TABLE disputes ADD COLUMN resolved_at INTEGER NOT NULL DEFAULT 0;",
	/* 3: units that are not tokens (lib/money.h, lib/ledger.h): prices
	 * per one unit, the counts of ledger entries and served streams. */
	"ALTER TABLE prices ADD COLUMN image INTEGER NOT NULL DEFAULT 0;"
	"ALTER TABLE prices ADD COLUMN audio_second INTEGER NOT NULL DEFAULT 0;"
	"ALTER TABLE prices ADD COLUMN audio_char INTEGER NOT NULL DEFAULT 0;"
	"ALTER TABLE prices ADD COLUMN video_second INTEGER NOT NULL DEFAULT 0;"
	"ALTER TABLE ledger ADD COLUMN images INTEGER NOT NULL DEFAULT 0;"
	"ALTER TABLE ledger ADD COLUMN audio_seconds INTEGER NOT NULL DEFAULT 0;"
	"ALTER TABLE ledger ADD COLUMN audio_chars INTEGER NOT NULL DEFAULT 0;"
	"ALTER TABLE ledger ADD COLUMN video_seconds INTEGER NOT NULL DEFAULT 0;"
	"ALTER TABLE served ADD COLUMN images INTEGER NOT NULL DEFAULT 0;"
	"ALTER TABLE served ADD COLUMN audio_seconds INTEGER NOT NULL DEFAULT 0;"
	"ALTER TABLE served ADD COLUMN audio_chars INTEGER NOT NULL DEFAULT 0;"
	"ALTER TABLE served ADD COLUMN video_seconds INTEGER NOT NULL DEFAULT 0;",
	/* 4: served.state's CHECK as comparisons.  SQLite builds a
	 * temporary b-tree for an IN list of three or more values each time
	 * the CHECK runs: on every served INSERT and state UPDATE, the
	 * request path.  SQLite cannot alter a CHECK: the table is copied. */
	"CREATE TABLE served_v4 ("
	"  request_id         TEXT PRIMARY KEY,"
	"  agent_id           INTEGER NOT NULL,"
	"  model              TEXT NOT NULL,"
	"  input_tokens       INTEGER NOT NULL,"
	"  output_tokens      INTEGER NOT NULL,"
	"  cached_tokens      INTEGER NOT NULL,"
	"  cache_write_tokens INTEGER NOT NULL,"
	"  estimated          INTEGER NOT NULL CHECK (estimated IN (0, 1)),"
	"  state              TEXT NOT NULL CHECK (state = 'open' OR"
	"                     state = 'reported' OR state = 'receipted'),"
	"  created_at         INTEGER NOT NULL,"
	"  reported_at        INTEGER NOT NULL DEFAULT 0,"
	"  images             INTEGER NOT NULL DEFAULT 0,"
	"  audio_seconds      INTEGER NOT NULL DEFAULT 0,"
	"  audio_chars        INTEGER NOT NULL DEFAULT 0,"
	"  video_seconds      INTEGER NOT NULL DEFAULT 0);"
	"INSERT INTO served_v4 (" SERVED_COLS ") SELECT " SERVED_COLS
	" FROM served;"
	"DROP TABLE served;"
	"ALTER TABLE served_v4 RENAME TO served;"
	"CREATE INDEX served_due ON served (state, created_at);",
	/* 5: served's indexes by what reads them.  The open rows by age (the
	 * usage reports' sweep, ag_ledger_served_due) in a partial index
	 * that holds only them: a receipt's state change takes its row out
	 * instead of moving it, and the index stays as small as what is in
	 * flight.  Every row by age, which only grows at its end: the agent
	 * UI's recent list and the day's usage the caps start from
	 * (ag_ledger_read.c) walked and sorted the whole table before. */
	"DROP INDEX served_due;"
	"CREATE INDEX served_open ON served (created_at) WHERE state = 'open';"
	"CREATE INDEX served_created ON served (created_at);",
};

#define NMIGRATIONS	((int)(sizeof(migrations) / sizeof(migrations[0])))

void
lg_seterr(struct ag_ledger *lg, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(lg->err, sizeof(lg->err), fmt, ap);
	va_end(ap);
}

static int
dberr(struct ag_ledger *lg, const char *what)
{
	lg_seterr(lg, "ledger database: %s: %s", what, sqlite3_errmsg(lg->db));
	return -1;
}

const char *
ag_ledger_error(const struct ag_ledger *lg)
{
	return lg->err;
}

int
ag_ledger_text_ok(const char *s, size_t len, size_t max)
{
	if (len == 0 || len > max)
		return 0;
	for (size_t i = 0; i < len; i++)
		if (s[i] <= 0x20 || s[i] > 0x7e || s[i] == ',' || s[i] == '"')
			return 0;
	return 1;
}

/* A NUL-terminated string by that rule, or "" when empty_ok. */
int
lg_text_ok(const char *s, size_t max, int empty_ok)
{
	size_t n = strnlen(s, max + 1);

	if (n == 0)
		return empty_ok;
	return ag_ledger_text_ok(s, n, max);
}

/* ---- statements ---------------------------------------------------- */

/*
 * Prepare sql and bind its parameters in order from the arguments, one
 * letter of types each: 'i' int64_t, 't' const char * (NULL binds NULL),
 * 'b' const void * then size_t.  The arguments must outlive the steps.
 */
/* Done with st: a cached statement is reset for its next use, any
 * other finalized. */
void
lg_release(struct ag_ledger *lg, sqlite3_stmt *st)
{
	for (int i = 0; i < lg->ncache; i++)
		if (lg->cache[i].st == st) {
			sqlite3_reset(st);
			sqlite3_clear_bindings(st);
			return;
		}
	sqlite3_finalize(st);
}

static int exec(struct ag_ledger *lg, const char *sql);

/* A transaction verb of the request path, through the statement cache
 * (sqlite3_exec would parse its text at every call). */
static int
verb(struct ag_ledger *lg, const char *sql)
{
	return lg_done(lg, lg_query(lg, sql, "")) < 0 ? -1 : 0;
}

/* ---- grouped writes ---------------------------------------------------
 * With ag_ledger_group on, every write joins one outer transaction,
 * opened by the first write and committed by ag_ledger_flush (the tunnel
 * calls it a few milliseconds later): the writes of every request in that
 * window share one commit, instead of one commit (WAL frames and file
 * locks) per row.  What a kill -9 inside the window loses is what the
 * note atop this file says an OS crash may lose, and it comes back the
 * same way.  A receipt's own transaction is a savepoint of the group. */
static int
group_open(struct ag_ledger *lg)
{
	if (verb(lg, "BEGIN IMMEDIATE") != 0)
		return -1;
	lg->open = 1;
	if (lg->armed != NULL)
		lg->armed(lg->armed_arg);
	return 0;
}

int
lg_tx_begin(struct ag_ledger *lg)
{
	if (!lg->group)
		return verb(lg, "BEGIN IMMEDIATE");
	if (!lg->open && group_open(lg) != 0)
		return -1;
	return verb(lg, "SAVEPOINT rcpt");
}

int
lg_tx_commit(struct ag_ledger *lg)
{
	return verb(lg, lg->group ? "RELEASE rcpt" : "COMMIT");
}

void
lg_tx_rollback(struct ag_ledger *lg)
{
	lg_forget(lg);
	(void)sqlite3_exec(lg->db, lg->group ? "ROLLBACK TO rcpt; RELEASE rcpt" :
	    "ROLLBACK", NULL, NULL, NULL);
}

void
ag_ledger_group(struct ag_ledger *lg, void (*armed)(void *), void *arg)
{
	lg->armed = armed;
	lg->armed_arg = arg;
	lg->group = 1;
}

int
ag_ledger_flush(struct ag_ledger *lg)
{
	if (lg == NULL || !lg->open)
		return 0;
	if (lg->storing) {
		/* Not with half a batch: the committed chain ends on a
		 * signed entry.  The batch is whole within a few turns. */
		if (lg->armed != NULL)
			lg->armed(lg->armed_arg);
		return 0;
	}
	lg->open = 0;
	if (verb(lg, "COMMIT") != 0) {
		lg_forget(lg);
		(void)sqlite3_exec(lg->db, "ROLLBACK", NULL, NULL, NULL);
		return -1;
	}
	return 0;
}

sqlite3_stmt *
lg_query(struct ag_ledger *lg, const char *sql, const char *types, ...)
{
	sqlite3_stmt *st = NULL;
	va_list ap;
	const void *p;
	size_t n;
	int i, rc = SQLITE_OK;

	/* The first write of a group opens its transaction. */
	if (lg->group && !lg->open && (sql[0] == 'I' || sql[0] == 'U' ||
	    sql[0] == 'D') && group_open(lg) != 0)
		return NULL;
	/* Literals: the same text is the same pointer at every call. */
	for (i = 0; i < lg->ncache; i++)
		if (lg->cache[i].sql == sql) {
			st = lg->cache[i].st;
			break;
		}
	if (st == NULL) {
		if (sqlite3_prepare_v2(lg->db, sql, -1, &st, NULL) != SQLITE_OK) {
			dberr(lg, "prepare");
			return NULL;
		}
		/* The SQL here is string literals: they outlive the cache. */
		if (lg->ncache < LG_CACHE && strncmp(sql, "PRAGMA", 6) != 0) {
			lg->cache[lg->ncache].sql = sql;
			lg->cache[lg->ncache].st = st;
			lg->ncache++;
		}
	}
	if (sqlite3_bind_parameter_count(st) != (int)strlen(types)) {
		lg_seterr(lg, "ledger database: %d parameters, %zu values",
		    sqlite3_bind_parameter_count(st), strlen(types));
		lg_release(lg, st);
		return NULL;
	}
	va_start(ap, types);
	for (i = 0; types[i] != '\0' && rc == SQLITE_OK; i++) {
		switch (types[i]) {
		case 'i':
			rc = sqlite3_bind_int64(st, i + 1, va_arg(ap, int64_t));
			break;
		case 't':
			rc = sqlite3_bind_text(st, i + 1, va_arg(ap,
			    const char *), -1, SQLITE_STATIC);
			break;
		case 'b':
			p = va_arg(ap, const void *);
			n = va_arg(ap, size_t);
			rc = sqlite3_bind_blob(st, i + 1, p, (int)n,
			    SQLITE_STATIC);
			break;
		default:
			rc = SQLITE_MISUSE;
			break;
		}
	}
	va_end(ap);
	if (rc != SQLITE_OK) {
		dberr(lg, "bind");
		lg_release(lg, st);
		return NULL;
	}
	return st;
}

/* Step a statement that returns no rows to its end, then finalize it.
 * The rows changed, or -1 (-2: a UNIQUE or PRIMARY KEY conflict). */
int
lg_done(struct ag_ledger *lg, sqlite3_stmt *st)
{
	int rc, ext;

	if (st == NULL)
		return -1;
	rc = sqlite3_step(st);
	if (rc != SQLITE_DONE && rc != SQLITE_ROW) {
		ext = sqlite3_extended_errcode(lg->db);
		dberr(lg, "step");
		lg_release(lg, st);
		return ext == SQLITE_CONSTRAINT_UNIQUE ||
		    ext == SQLITE_CONSTRAINT_PRIMARYKEY ? -2 : -1;
	}
	lg_release(lg, st);
	return sqlite3_changes(lg->db);
}

/* First row of st: 1 a row, 0 none, -1 error (finalized then). */
int
lg_row(struct ag_ledger *lg, sqlite3_stmt *st)
{
	int rc;

	if (st == NULL)
		return -1;
	if ((rc = sqlite3_step(st)) == SQLITE_ROW)
		return 1;
	if (rc == SQLITE_DONE)
		return 0;
	dberr(lg, "step");
	lg_release(lg, st);
	return -1;
}

static int
exec(struct ag_ledger *lg, const char *sql)
{
	char *msg = NULL;

	if (sqlite3_exec(lg->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
		lg_seterr(lg, "ledger database: %s", msg != NULL ? msg :
		    sqlite3_errmsg(lg->db));
		sqlite3_free(msg);
		return -1;
	}
	return 0;
}

void
lg_col_text(sqlite3_stmt *st, int i, char *buf, size_t len)
{
	const unsigned char *t = sqlite3_column_text(st, i);

	snprintf(buf, len, "%s", t != NULL ? (const char *)t : "");
}

void
lg_col_entry(sqlite3_stmt *st, struct ledger_entry *e)
{
	const void *sig;

	memset(e, 0, sizeof(*e));
	e->agent_id = (uint64_t)sqlite3_column_int64(st, 0);
	e->seq = (uint64_t)sqlite3_column_int64(st, 1);
	lg_col_text(st, 2, e->prev_hash, sizeof(e->prev_hash));
	lg_col_text(st, 3, e->hash, sizeof(e->hash));
	lg_col_text(st, 4, e->request_id, sizeof(e->request_id));
	e->token_id = (uint64_t)sqlite3_column_int64(st, 5);
	lg_col_text(st, 6, e->model, sizeof(e->model));
	e->input_tokens = sqlite3_column_int64(st, 7);
	e->output_tokens = sqlite3_column_int64(st, 8);
	e->cached_tokens = sqlite3_column_int64(st, 9);
	e->cache_write_tokens = sqlite3_column_int64(st, 10);
	e->price_version = sqlite3_column_int64(st, 11);
	e->amount = sqlite3_column_int64(st, 12);
	e->created_at = sqlite3_column_int64(st, 13);
	e->agent_reported = sqlite3_column_int(st, 14);
	sig = sqlite3_column_blob(st, 15);
	if (sig != NULL && sqlite3_column_bytes(st, 15) == LEDGER_SIG_LEN)
		memcpy(e->sig, sig, LEDGER_SIG_LEN);
	e->images = sqlite3_column_int64(st, 16);
	e->audio_seconds = sqlite3_column_int64(st, 17);
	e->audio_chars = sqlite3_column_int64(st, 18);
	e->video_seconds = sqlite3_column_int64(st, 19);
}

/* ---- open, migrate, close ------------------------------------------ */

/* mkdir -p with mode 0700 for what it creates. */
static int
make_dirs(struct ag_ledger *lg, const char *dir)
{
	char p[PATH_MAX_LEN];
	size_t n;

	if ((n = strlen(dir)) == 0 || n >= sizeof(p)) {
		lg_seterr(lg, "state_dir '%s': bad length", dir);
		return -1;
	}
	memcpy(p, dir, n + 1);
	for (size_t i = 1; i <= n; i++) {
		if (p[i] != '/' && p[i] != '\0')
			continue;
		p[i] = '\0';
		if (mkdir(p, 0700) == -1 && errno != EEXIST) {
			lg_seterr(lg, "cannot create %s: %s", p,
			    strerror(errno));
			return -1;
		}
		p[i] = i == n ? '\0' : '/';
	}
	return 0;
}

/* Create the file owner-only before SQLite sees it: its -wal and -shm
 * files take the database file's permissions. */
static int
make_file(struct ag_ledger *lg, const char *path)
{
	struct stat st;
	int fd;

	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd == -1) {
		lg_seterr(lg, "cannot open %s: %s", path, strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode)) {
		lg_seterr(lg, "%s is not a regular file", path);
		close(fd);
		return -1;
	}
	if ((st.st_mode & 077) != 0) {
		log_warn("%s was readable by others (mode %04o); making it "
		    "0600", path, (unsigned)(st.st_mode & 07777));
		if (fchmod(fd, 0600) == -1) {
			lg_seterr(lg, "chmod 0600 %s: %s", path,
			    strerror(errno));
			close(fd);
			return -1;
		}
	}
	close(fd);
	return 0;
}

static int
migrate(struct ag_ledger *lg, const char *path)
{
	sqlite3_stmt *st;
	int64_t v;
	int r;

	if (exec(lg, "CREATE TABLE IF NOT EXISTS schema_version ("
	    "version INTEGER NOT NULL)") != 0)
		return -1;
	st = lg_query(lg,
	    "SELECT coalesce(max(version), 0) FROM schema_version", "");
	if ((r = lg_row(lg, st)) != 1) {
		if (r == 0) {
			lg_release(lg, st);
			lg_seterr(lg, "ledger database: no schema version");
		}
		return -1;
	}
	v = sqlite3_column_int64(st, 0);
	lg_release(lg, st);
	if (v > NMIGRATIONS) {
		lg_seterr(lg,
		    "%s has schema version %" PRId64 ", newer than this "
		    "agentd knows (%d): use the agentd that wrote it", path, v,
		    NMIGRATIONS);
		return -1;
	}
	for (; v < NMIGRATIONS; v++) {
		if (exec(lg, "BEGIN IMMEDIATE") != 0)
			return -1;
		if (exec(lg, migrations[v]) != 0 ||
		    lg_done(lg, lg_query(lg, "DELETE FROM schema_version",
		    "")) < 0 ||
		    lg_done(lg, lg_query(lg,
		    "INSERT INTO schema_version (version) "
		    "VALUES (?)", "i", v + 1)) < 0 ||
		    exec(lg, "COMMIT") != 0) {
			(void)sqlite3_exec(lg->db, "ROLLBACK", NULL, NULL, NULL);
			return -1;
		}
		if (v > 0)
			log_info("%s: schema migrated to version %" PRId64, path,
			    v + 1);
	}
	return 0;
}

struct ag_ledger *
ag_ledger_open(const char *state_dir, int flags, char *err, size_t errlen)
{
	struct ag_ledger *lg;
	char path[PATH_MAX_LEN];
	sqlite3_stmt *st;
	struct stat sb;
	int n;

	if ((lg = calloc(1, sizeof(*lg))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	lg->slice = AG_LEDGER_STORE_SLICE;
	n = snprintf(path, sizeof(path), "%s/%s", state_dir, AG_LEDGER_FILE);
	if (n < 0 || (size_t)n >= sizeof(path)) {
		lg_seterr(lg, "state_dir '%s' is too long", state_dir);
		goto fail;
	}
	if (flags & AG_LEDGER_CREATE) {
		if (make_dirs(lg, state_dir) != 0 || make_file(lg, path) != 0)
			goto fail;
	} else if (stat(path, &sb) == -1) {
		lg_seterr(lg, "no ledger database at %s: %s", path,
		    strerror(errno));
		goto fail;
	}
	if (sqlite3_open_v2(path, &lg->db, SQLITE_OPEN_READWRITE |
	    SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
		lg_seterr(lg, "cannot open %s: %s", path, lg->db != NULL ?
		    sqlite3_errmsg(lg->db) : "out of memory");
		goto fail;
	}
	sqlite3_busy_timeout(lg->db, BUSY_MS);
	/* WAL + NORMAL: see the top of this file. */
	st = lg_query(lg, "PRAGMA journal_mode=WAL", "");
	if (lg_row(lg, st) != 1)
		goto fail;
	if (sqlite3_column_text(st, 0) == NULL ||
	    strcmp((const char *)sqlite3_column_text(st, 0), "wal") != 0) {
		lg_seterr(lg, "%s: cannot switch to WAL mode", path);
		lg_release(lg, st);
		goto fail;
	}
	lg_release(lg, st);
	/* temp_store: a receipt's savepoint journal stays in memory. */
	if (exec(lg, "PRAGMA synchronous=NORMAL") != 0 ||
	    exec(lg, "PRAGMA temp_store=MEMORY") != 0 ||
	    migrate(lg, path) != 0)
		goto fail;
	/* Without its thread the handle checkpoints in its own commits, as
	 * SQLite does by default: slower for the loop, not wrong. */
	if ((flags & AG_LEDGER_CHECKPOINTER) && (lg->ckpt = ag_ckpt_start(
	    lg->db, path, lg->err, sizeof(lg->err))) == NULL)
		log_warn("ledger: %s: checkpoints stay in the loop's commits",
		    lg->err);
	return lg;
fail:
	snprintf(err, errlen, "%s", lg->err);
	ag_ledger_close(lg);
	return NULL;
}

void
ag_ledger_close(struct ag_ledger *lg)
{
	if (lg == NULL)
		return;
	if (lg->storing && lg_store_rest(lg) != 0)
		log_warn("ledger: the rest of a signed batch: %s", lg->err);
	if (ag_ledger_flush(lg) != 0)
		log_warn("ledger: the last grouped writes: %s", lg->err);
	ag_ckpt_stop(lg->ckpt, lg->db);
	for (int i = 0; i < lg->ncache; i++)
		sqlite3_finalize(lg->cache[i].st);
	lg->ncache = 0;
	sqlite3_finalize(lg->dv);
	sqlite3_close(lg->db);
	sodium_memzero(lg, sizeof(*lg));
	free(lg);
}
