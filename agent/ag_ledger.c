/*
 * agent/ag_ledger: the agent's SQLite ledger database (see ag_ledger.h).
 * Owns the file and its permissions, the schema and its migrations, the
 * statements, and the receipt decision.
 *
 * Durability: WAL with synchronous=NORMAL.  A commit is in the WAL file
 * (written, not yet fsync'd) before it returns, so it survives the agentd
 * process being killed at any point; only an OS crash or power loss can
 * drop the last commits, never corrupt the file, and what it drops comes
 * back: receipts by the hub's replay after the next sync, and a lost
 * served record only means the hub's own numbers stand unchecked.  FULL
 * would add an fsync to every commit for no gain here.  Commits are local
 * and short (a few rows, no fsync but at checkpoints), which is why they
 * run on the tunnel's lws thread instead of a thread of their own.
 */
#include "agent/ag_ledger.h"

#include <sys/stat.h>
#include <sys/types.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>
#include <sqlite3.h>

#include "lib/clock.h"
#include "lib/log.h"

#define BUSY_MS		1000	/* a CLI reader checkpointing, at worst */
#define PATH_MAX_LEN	512

#define LG_CACHE	48	/* prepared statements kept */
#define LG_PRICES	8	/* (model, version) prices kept */

struct ag_ledger {
	sqlite3	*db;
	char	 err[256];
	/* Prepared statements by SQL text: parsed once, reset after use
	 * (release()), finalized at close. */
	struct {
		const char	*sql;
		sqlite3_stmt	*st;
	} cache[LG_CACHE];
	int	 ncache;
	/* Receipts without a signature, held until their batch's signed
	 * last entry comes (lib/ledger.h): they extend the stored chain in
	 * seq order, links and hashes checked, nothing stored yet. */
	struct ledger_entry pend[AG_LEDGER_BATCH_MAX];
	size_t	 npend;
	/* A verified signed entry whose batch is being stored, a slice a
	 * call (ag_ledger_receipt_continue): pend[0, nstored) are stored. */
	int	 storing;
	struct ledger_entry closing;
	size_t	 nstored;
	size_t	 slice;			/* AG_LEDGER_STORE_SLICE (tests: less) */
	int	 lost;			/* a failed slice rolled the group back */
	/* What the last ag_ledger_receipt_apply stored besides its own
	 * entry (ag_ledger_batch_done). */
	struct ledger_entry done_e[AG_LEDGER_BATCH_MAX];
	struct ag_receipt_result done_r[AG_LEDGER_BATCH_MAX];
	size_t	 ndone;
	/* Grouped writes (ag_ledger_group): the open outer transaction. */
	void	(*armed)(void *);	/* told when one opens */
	void	*armed_arg;
	int	 group;			/* grouping is on */
	int	 open;			/* an outer transaction is open */
	/* What every receipt reads, kept once read or written: the hub's
	 * key of one agent id and prices (both written once, never
	 * changed), and the stored head of one agent's chain (it moves only
	 * in store_one).  A rollback may take back what they hold, and
	 * another connection may have written the file (an operator's
	 * sqlite3): either drops them all (forget(), fresh()). */
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

static int store_rest(struct ag_ledger *lg);

/* Drop what is kept in memory: a transaction was rolled back. */
static void
forget(struct ag_ledger *lg)
{
	lg->key.ok = 0;
	for (int i = 0; i < LG_PRICES; i++)
		lg->price[i].ok = 0;
	lg->head.ok = 0;
}

/* Drop what is kept when another connection committed since the last
 * look (PRAGMA data_version moves only for other connections' commits;
 * one step of a prepared statement, no b-tree). */
static void
fresh(struct ag_ledger *lg)
{
	int64_t v;

	if (lg->dv == NULL && sqlite3_prepare_v2(lg->db,
	    "PRAGMA data_version", -1, &lg->dv, NULL) != SQLITE_OK) {
		sqlite3_finalize(lg->dv);
		lg->dv = NULL;
		forget(lg);
		return;
	}
	if (sqlite3_step(lg->dv) != SQLITE_ROW) {
		sqlite3_reset(lg->dv);
		forget(lg);
		return;
	}
	v = sqlite3_column_int64(lg->dv, 0);
	sqlite3_reset(lg->dv);
	if (v != lg->dv_last) {
		forget(lg);
		lg->dv_last = v;
	}
}

#define SERVED_COLS	"request_id, agent_id, model, input_tokens, " \
	"output_tokens, cached_tokens, cache_write_tokens, estimated, state, " \
	"created_at, reported_at, images, audio_seconds, audio_chars, " \
	"video_seconds"

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
};

#define NMIGRATIONS	((int)(sizeof(migrations) / sizeof(migrations[0])))

#define ENTRY_COLS	"agent_id, seq, prev_hash, hash, request_id, " \
	"token_id, model, input_tokens, output_tokens, cached_tokens, " \
	"cache_write_tokens, price_version, amount, created_at, " \
	"agent_reported, sig, images, audio_seconds, audio_chars, " \
	"video_seconds"

static const char *const state_names[] = {
	[AG_SERVED_OPEN] = "open", [AG_SERVED_REPORTED] = "reported",
	[AG_SERVED_RECEIPTED] = "receipted"
};

static void
seterr(struct ag_ledger *lg, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
seterr(struct ag_ledger *lg, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(lg->err, sizeof(lg->err), fmt, ap);
	va_end(ap);
}

static int
dberr(struct ag_ledger *lg, const char *what)
{
	seterr(lg, "ledger database: %s: %s", what, sqlite3_errmsg(lg->db));
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
static int
text_ok(const char *s, size_t max, int empty_ok)
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
static void
release(struct ag_ledger *lg, sqlite3_stmt *st)
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
static sqlite3_stmt *query(struct ag_ledger *lg, const char *sql,
    const char *types, ...);
static int done(struct ag_ledger *lg, sqlite3_stmt *st);

/* A transaction verb of the request path, through the statement cache
 * (sqlite3_exec would parse its text at every call). */
static int
verb(struct ag_ledger *lg, const char *sql)
{
	return done(lg, query(lg, sql, "")) < 0 ? -1 : 0;
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

static int
tx_begin(struct ag_ledger *lg)
{
	if (!lg->group)
		return verb(lg, "BEGIN IMMEDIATE");
	if (!lg->open && group_open(lg) != 0)
		return -1;
	return verb(lg, "SAVEPOINT rcpt");
}

static int
tx_commit(struct ag_ledger *lg)
{
	return verb(lg, lg->group ? "RELEASE rcpt" : "COMMIT");
}

static void
tx_rollback(struct ag_ledger *lg)
{
	forget(lg);
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
		forget(lg);
		(void)sqlite3_exec(lg->db, "ROLLBACK", NULL, NULL, NULL);
		return -1;
	}
	return 0;
}

static sqlite3_stmt *
query(struct ag_ledger *lg, const char *sql, const char *types, ...)
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
		seterr(lg, "ledger database: %d parameters, %zu values",
		    sqlite3_bind_parameter_count(st), strlen(types));
		release(lg, st);
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
		release(lg, st);
		return NULL;
	}
	return st;
}

/* Step a statement that returns no rows to its end, then finalize it.
 * The rows changed, or -1 (-2: a UNIQUE or PRIMARY KEY conflict). */
static int
done(struct ag_ledger *lg, sqlite3_stmt *st)
{
	int rc, ext;

	if (st == NULL)
		return -1;
	rc = sqlite3_step(st);
	if (rc != SQLITE_DONE && rc != SQLITE_ROW) {
		ext = sqlite3_extended_errcode(lg->db);
		dberr(lg, "step");
		release(lg, st);
		return ext == SQLITE_CONSTRAINT_UNIQUE ||
		    ext == SQLITE_CONSTRAINT_PRIMARYKEY ? -2 : -1;
	}
	release(lg, st);
	return sqlite3_changes(lg->db);
}

/* First row of st: 1 a row, 0 none, -1 error (finalized then). */
static int
row(struct ag_ledger *lg, sqlite3_stmt *st)
{
	int rc;

	if (st == NULL)
		return -1;
	if ((rc = sqlite3_step(st)) == SQLITE_ROW)
		return 1;
	if (rc == SQLITE_DONE)
		return 0;
	dberr(lg, "step");
	release(lg, st);
	return -1;
}

static int
exec(struct ag_ledger *lg, const char *sql)
{
	char *msg = NULL;

	if (sqlite3_exec(lg->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
		seterr(lg, "ledger database: %s", msg != NULL ? msg :
		    sqlite3_errmsg(lg->db));
		sqlite3_free(msg);
		return -1;
	}
	return 0;
}

static void
col_text(sqlite3_stmt *st, int i, char *buf, size_t len)
{
	const unsigned char *t = sqlite3_column_text(st, i);

	snprintf(buf, len, "%s", t != NULL ? (const char *)t : "");
}

static void
col_entry(sqlite3_stmt *st, struct ledger_entry *e)
{
	const void *sig;

	memset(e, 0, sizeof(*e));
	e->agent_id = (uint64_t)sqlite3_column_int64(st, 0);
	e->seq = (uint64_t)sqlite3_column_int64(st, 1);
	col_text(st, 2, e->prev_hash, sizeof(e->prev_hash));
	col_text(st, 3, e->hash, sizeof(e->hash));
	col_text(st, 4, e->request_id, sizeof(e->request_id));
	e->token_id = (uint64_t)sqlite3_column_int64(st, 5);
	col_text(st, 6, e->model, sizeof(e->model));
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

static void
col_served(sqlite3_stmt *st, struct ag_served *s)
{
	char state[16];

	memset(s, 0, sizeof(*s));
	col_text(st, 0, s->request_id, sizeof(s->request_id));
	s->agent_id = (uint64_t)sqlite3_column_int64(st, 1);
	col_text(st, 2, s->model, sizeof(s->model));
	s->input_tokens = sqlite3_column_int64(st, 3);
	s->output_tokens = sqlite3_column_int64(st, 4);
	s->cached_tokens = sqlite3_column_int64(st, 5);
	s->cache_write_tokens = sqlite3_column_int64(st, 6);
	s->estimated = sqlite3_column_int(st, 7);
	col_text(st, 8, state, sizeof(state));
	s->state = AG_SERVED_OPEN;	/* also for a name this build lacks */
	for (size_t i = 0; i < sizeof(state_names) / sizeof(state_names[0]); i++)
		if (strcmp(state, state_names[i]) == 0)
			s->state = (enum ag_served_state)i;
	s->created_at = sqlite3_column_int64(st, 9);
	s->reported_at = sqlite3_column_int64(st, 10);
	s->images = sqlite3_column_int64(st, 11);
	s->audio_seconds = sqlite3_column_int64(st, 12);
	s->audio_chars = sqlite3_column_int64(st, 13);
	s->video_seconds = sqlite3_column_int64(st, 14);
}

/* ---- open, migrate, close ------------------------------------------ */

/* mkdir -p with mode 0700 for what it creates. */
static int
make_dirs(struct ag_ledger *lg, const char *dir)
{
	char p[PATH_MAX_LEN];
	size_t n;

	if ((n = strlen(dir)) == 0 || n >= sizeof(p)) {
		seterr(lg, "state_dir '%s': bad length", dir);
		return -1;
	}
	memcpy(p, dir, n + 1);
	for (size_t i = 1; i <= n; i++) {
		if (p[i] != '/' && p[i] != '\0')
			continue;
		p[i] = '\0';
		if (mkdir(p, 0700) == -1 && errno != EEXIST) {
			seterr(lg, "cannot create %s: %s", p, strerror(errno));
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
		seterr(lg, "cannot open %s: %s", path, strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode)) {
		seterr(lg, "%s is not a regular file", path);
		close(fd);
		return -1;
	}
	if ((st.st_mode & 077) != 0) {
		log_warn("%s was readable by others (mode %04o); making it "
		    "0600", path, (unsigned)(st.st_mode & 07777));
		if (fchmod(fd, 0600) == -1) {
			seterr(lg, "chmod 0600 %s: %s", path, strerror(errno));
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
	st = query(lg, "SELECT coalesce(max(version), 0) FROM schema_version",
	    "");
	if ((r = row(lg, st)) != 1) {
		if (r == 0) {
			release(lg, st);
			seterr(lg, "ledger database: no schema version");
		}
		return -1;
	}
	v = sqlite3_column_int64(st, 0);
	release(lg, st);
	if (v > NMIGRATIONS) {
		seterr(lg, "%s has schema version %" PRId64 ", newer than this "
		    "agentd knows (%d): use the agentd that wrote it", path, v,
		    NMIGRATIONS);
		return -1;
	}
	for (; v < NMIGRATIONS; v++) {
		if (exec(lg, "BEGIN IMMEDIATE") != 0)
			return -1;
		if (exec(lg, migrations[v]) != 0 ||
		    done(lg, query(lg, "DELETE FROM schema_version", "")) < 0 ||
		    done(lg, query(lg, "INSERT INTO schema_version (version) "
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
		seterr(lg, "state_dir '%s' is too long", state_dir);
		goto fail;
	}
	if (flags & AG_LEDGER_CREATE) {
		if (make_dirs(lg, state_dir) != 0 || make_file(lg, path) != 0)
			goto fail;
	} else if (stat(path, &sb) == -1) {
		seterr(lg, "no ledger database at %s: %s", path,
		    strerror(errno));
		goto fail;
	}
	if (sqlite3_open_v2(path, &lg->db, SQLITE_OPEN_READWRITE |
	    SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
		seterr(lg, "cannot open %s: %s", path, lg->db != NULL ?
		    sqlite3_errmsg(lg->db) : "out of memory");
		goto fail;
	}
	sqlite3_busy_timeout(lg->db, BUSY_MS);
	/* WAL + NORMAL: see the top of this file. */
	st = query(lg, "PRAGMA journal_mode=WAL", "");
	if (row(lg, st) != 1)
		goto fail;
	if (sqlite3_column_text(st, 0) == NULL ||
	    strcmp((const char *)sqlite3_column_text(st, 0), "wal") != 0) {
		seterr(lg, "%s: cannot switch to WAL mode", path);
		release(lg, st);
		goto fail;
	}
	release(lg, st);
	/* temp_store: a receipt's savepoint journal stays in memory. */
	if (exec(lg, "PRAGMA synchronous=NORMAL") != 0 ||
	    exec(lg, "PRAGMA temp_store=MEMORY") != 0 ||
	    migrate(lg, path) != 0)
		goto fail;
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
	if (lg->storing && store_rest(lg) != 0)
		log_warn("ledger: the rest of a signed batch: %s", lg->err);
	if (ag_ledger_flush(lg) != 0)
		log_warn("ledger: the last grouped writes: %s", lg->err);
	for (int i = 0; i < lg->ncache; i++)
		sqlite3_finalize(lg->cache[i].st);
	lg->ncache = 0;
	sqlite3_finalize(lg->dv);
	sqlite3_close(lg->db);
	sodium_memzero(lg, sizeof(*lg));
	free(lg);
}

/* ---- hub key, prices ------------------------------------------------ */

static int
key_get(struct ag_ledger *lg, uint64_t agent_id,
    unsigned char pk[LEDGER_PK_LEN])
{
	sqlite3_stmt *st;
	int r;

	if (lg->key.ok && lg->key.agent_id == agent_id) {
		memcpy(pk, lg->key.pk, LEDGER_PK_LEN);
		return 0;
	}
	st = query(lg, "SELECT pk FROM hub_keys WHERE agent_id = ?", "i",
	    (int64_t)agent_id);
	if ((r = row(lg, st)) != 1)
		return r == 0 ? (release(lg, st), 1) : -1;
	if (sqlite3_column_bytes(st, 0) != LEDGER_PK_LEN) {
		release(lg, st);
		seterr(lg, "hub key of agent %" PRIu64 " is not %d bytes",
		    agent_id, LEDGER_PK_LEN);
		return -1;
	}
	memcpy(pk, sqlite3_column_blob(st, 0), LEDGER_PK_LEN);
	release(lg, st);
	lg->key.agent_id = agent_id;
	memcpy(lg->key.pk, pk, LEDGER_PK_LEN);
	lg->key.ok = 1;
	return 0;
}

int
ag_ledger_hub_key_get(struct ag_ledger *lg, uint64_t agent_id,
    unsigned char pk[LEDGER_PK_LEN])
{
	fresh(lg);
	return key_get(lg, agent_id, pk);
}

int
ag_ledger_hub_key_set(struct ag_ledger *lg, uint64_t agent_id,
    const unsigned char pk[LEDGER_PK_LEN])
{
	unsigned char old[LEDGER_PK_LEN];
	int r;

	if ((r = ag_ledger_hub_key_get(lg, agent_id, old)) == -1)
		return -1;
	if (r == 0)
		return memcmp(old, pk, LEDGER_PK_LEN) == 0 ? 0 : 1;
	return done(lg, query(lg, "INSERT INTO hub_keys (agent_id, pk, "
	    "learned_at) VALUES (?, ?, ?)", "ibi", (int64_t)agent_id, pk,
	    (size_t)LEDGER_PK_LEN, clock_wall_ms() / 1000)) < 0 ? -1 : 0;
}

static int
price_get(struct ag_ledger *lg, const char *model, int64_t version,
    struct money_prices *p)
{
	sqlite3_stmt *st;
	int r;

	memset(p, 0, sizeof(*p));
	if (version == 0)
		return 0;
	for (int i = 0; i < LG_PRICES; i++)
		if (lg->price[i].ok && lg->price[i].version == version &&
		    strcmp(lg->price[i].model, model) == 0) {
			*p = lg->price[i].p;
			return 0;
		}
	st = query(lg, "SELECT input, output, cached_input, cache_write, "
	    "image, audio_second, audio_char, video_second "
	    "FROM prices WHERE model = ? AND version = ?", "ti", model,
	    version);
	if ((r = row(lg, st)) != 1)
		return r == 0 ? (release(lg, st), 1) : -1;
	p->input = sqlite3_column_int64(st, 0);
	p->output = sqlite3_column_int64(st, 1);
	p->cached_input = sqlite3_column_int64(st, 2);
	p->cache_write = sqlite3_column_int64(st, 3);
	p->image = sqlite3_column_int64(st, 4);
	p->audio_second = sqlite3_column_int64(st, 5);
	p->audio_char = sqlite3_column_int64(st, 6);
	p->video_second = sqlite3_column_int64(st, 7);
	release(lg, st);
	if (strlen(model) <= LEDGER_MODEL_MAX) {
		unsigned i = lg->next_price++ % LG_PRICES;

		lg->price[i].ok = 1;
		lg->price[i].version = version;
		snprintf(lg->price[i].model, sizeof(lg->price[i].model), "%s",
		    model);
		lg->price[i].p = *p;
	}
	return 0;
}

int
ag_ledger_price_get(struct ag_ledger *lg, const char *model,
    int64_t version, struct money_prices *p)
{
	fresh(lg);
	return price_get(lg, model, version, p);
}

int
ag_ledger_price_put(struct ag_ledger *lg, const char *model,
    int64_t version, const struct money_prices *p)
{
	struct money_prices old;
	int r;

	if (!text_ok(model, LEDGER_MODEL_MAX, 0) || version < 1 ||
	    p->input < 0 || p->output < 0 || p->cached_input < 0 ||
	    p->cache_write < 0 || p->image < 0 || p->audio_second < 0 ||
	    p->audio_char < 0 || p->video_second < 0) {
		seterr(lg, "bad price: model, version or a negative price");
		return -1;
	}
	if ((r = ag_ledger_price_get(lg, model, version, &old)) == -1)
		return -1;
	if (r == 0)
		return memcmp(&old, p, sizeof(old)) == 0 ? 0 : 1;
	return done(lg, query(lg, "INSERT INTO prices (model, version, input, "
	    "output, cached_input, cache_write, image, audio_second, "
	    "audio_char, video_second) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
	    "tiiiiiiiii", model, version, p->input, p->output, p->cached_input,
	    p->cache_write, p->image, p->audio_second, p->audio_char,
	    p->video_second)) < 0 ? -1 : 0;
}

/* ---- served streams ------------------------------------------------- */

int
ag_ledger_served_record(struct ag_ledger *lg, const struct ag_served *s)
{
	int r;

	if (!text_ok(s->request_id, LEDGER_REQID_MAX, 0) ||
	    !text_ok(s->model, LEDGER_MODEL_MAX, 1) || s->input_tokens < 0 ||
	    s->output_tokens < 0 || s->cached_tokens < 0 ||
	    s->cache_write_tokens < 0 || s->images < 0 ||
	    s->audio_seconds < 0 || s->audio_chars < 0 ||
	    s->video_seconds < 0) {
		seterr(lg, "bad served record");
		return -1;
	}
	/* A receipt that came first (it cannot, but a restart between the
	 * two could make it look so) settles it at once. */
	r = done(lg, query(lg, "INSERT OR IGNORE INTO served (" SERVED_COLS
	    ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, CASE WHEN EXISTS (SELECT 1 FROM "
	    "ledger WHERE agent_id = ?2 AND request_id = ?1) THEN 'receipted' "
	    "ELSE 'open' END, ?9, 0, ?10, ?11, ?12, ?13)", "titiiiiiiiiii",
	    s->request_id, (int64_t)s->agent_id, s->model, s->input_tokens,
	    s->output_tokens, s->cached_tokens, s->cache_write_tokens,
	    (int64_t)(s->estimated != 0), s->created_at, s->images,
	    s->audio_seconds, s->audio_chars, s->video_seconds));
	if (r < 0)
		return -1;
	return r == 0 ? 1 : 0;
}

int
ag_ledger_served_get(struct ag_ledger *lg, const char *request_id,
    struct ag_served *out)
{
	sqlite3_stmt *st;
	int r;

	st = query(lg, "SELECT " SERVED_COLS " FROM served WHERE "
	    "request_id = ?", "t", request_id);
	if ((r = row(lg, st)) != 1)
		return r == 0 ? (release(lg, st), 1) : -1;
	col_served(st, out);
	release(lg, st);
	return 0;
}

int
ag_ledger_served_due(struct ag_ledger *lg, int64_t created_before,
    int64_t reported_before, struct ag_served *out, size_t max)
{
	sqlite3_stmt *st;
	size_t n = 0;
	int r = 0;

	st = query(lg, "SELECT " SERVED_COLS " FROM served WHERE state = "
	    "'open' AND created_at < ? AND reported_at < ? ORDER BY "
	    "created_at LIMIT ?", "iii", created_before, reported_before,
	    (int64_t)max);
	if (st == NULL)
		return -1;
	while (n < max && (r = row(lg, st)) == 1)
		col_served(st, &out[n++]);
	if (r == -1)
		return -1;
	release(lg, st);
	return (int)n;
}

int
ag_ledger_served_sent(struct ag_ledger *lg, const char *request_id,
    int64_t now_ms)
{
	return done(lg, query(lg, "UPDATE served SET reported_at = ? WHERE "
	    "request_id = ?", "it", now_ms, request_id)) < 0 ? -1 : 0;
}

int
ag_ledger_served_mark(struct ag_ledger *lg, uint64_t agent_id,
    const char *request_id, enum ag_served_state state)
{
	int r;

	if (state == AG_SERVED_OPEN) {
		seterr(lg, "a served record never goes back to open");
		return -1;
	}
	r = done(lg, query(lg, state == AG_SERVED_REPORTED ?
	    "UPDATE served SET state = ? WHERE request_id = ? AND "
	    "agent_id = ? AND state = 'open'" :
	    "UPDATE served SET state = ? WHERE request_id = ? AND "
	    "agent_id = ?", "tti", state_names[state], request_id,
	    (int64_t)agent_id));
	if (r < 0)
		return -1;
	return r == 0 ? 1 : 0;
}

/* ---- the chain ------------------------------------------------------ */

static int
head_get(struct ag_ledger *lg, uint64_t agent_id, struct ledger_entry *head)
{
	sqlite3_stmt *st;
	int r;

	if (lg->head.ok && lg->head.e.agent_id == agent_id) {
		*head = lg->head.e;
		return lg->head.empty;
	}
	st = query(lg, "SELECT " ENTRY_COLS " FROM ledger WHERE agent_id = ? "
	    "ORDER BY seq DESC LIMIT 1", "i", (int64_t)agent_id);
	if ((r = row(lg, st)) == -1)
		return -1;
	if (r == 0) {
		release(lg, st);
		memset(head, 0, sizeof(*head));
		head->agent_id = agent_id;
		memcpy(head->hash, LEDGER_GENESIS, sizeof(head->hash));
	} else {
		col_entry(st, head);
		release(lg, st);
	}
	lg->head.e = *head;
	lg->head.empty = r == 0;
	lg->head.ok = 1;
	return r == 0;
}

int
ag_ledger_head(struct ag_ledger *lg, uint64_t agent_id,
    struct ledger_entry *head)
{
	fresh(lg);
	return head_get(lg, agent_id, head);
}

int
ag_ledger_get(struct ag_ledger *lg, uint64_t agent_id, uint64_t seq,
    struct ledger_entry *out)
{
	sqlite3_stmt *st;
	int r;

	st = query(lg, "SELECT " ENTRY_COLS " FROM ledger WHERE agent_id = ? "
	    "AND seq = ?", "ii", (int64_t)agent_id, (int64_t)seq);
	if ((r = row(lg, st)) != 1)
		return r == 0 ? (release(lg, st), 1) : -1;
	col_entry(st, out);
	release(lg, st);
	return 0;
}

static int
entry_insert(struct ag_ledger *lg, const struct ledger_entry *e)
{
	return done(lg, query(lg, "INSERT INTO ledger (" ENTRY_COLS ") VALUES "
	    "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
	    "iitttitiiiiiiiibiiii", (int64_t)e->agent_id, (int64_t)e->seq,
	    e->prev_hash, e->hash, e->request_id, (int64_t)e->token_id, e->model,
	    e->input_tokens, e->output_tokens, e->cached_tokens,
	    e->cache_write_tokens, e->price_version, e->amount, e->created_at,
	    (int64_t)e->agent_reported, e->sig, (size_t)LEDGER_SIG_LEN,
	    e->images, e->audio_seconds, e->audio_chars, e->video_seconds));
}

/* The seq holding request_id in agent_id's chain: 0 found, 1 none, -1. */
static int
seq_of_request(struct ag_ledger *lg, uint64_t agent_id,
    const char *request_id, uint64_t *seq)
{
	sqlite3_stmt *st;
	int r;

	st = query(lg, "SELECT seq FROM ledger WHERE agent_id = ? AND "
	    "request_id = ?", "it", (int64_t)agent_id, request_id);
	if ((r = row(lg, st)) != 1)
		return r == 0 ? (release(lg, st), 1) : -1;
	*seq = (uint64_t)sqlite3_column_int64(st, 0);
	release(lg, st);
	return 0;
}

/* The dispute at (agent_id, seq): 0 found, 1 none, -1. */
static int
dispute_get(struct ag_ledger *lg, uint64_t agent_id, uint64_t seq,
    char reason[AG_LEDGER_REASON_MAX], int64_t *agent_amount)
{
	sqlite3_stmt *st;
	int r;

	st = query(lg, "SELECT reason, agent_amount FROM disputes WHERE "
	    "agent_id = ? AND seq = ?", "ii", (int64_t)agent_id, (int64_t)seq);
	if ((r = row(lg, st)) != 1)
		return r == 0 ? (release(lg, st), 1) : -1;
	col_text(st, 0, reason, AG_LEDGER_REASON_MAX);
	*agent_amount = sqlite3_column_int64(st, 1);
	release(lg, st);
	return 0;
}

/*
 * The cost of a usage at model's price version: 0 and *cost, 1 the
 * version is unknown here, 2 the rule refuses the numbers, -1 error.
 */
static int
cost_at(struct ag_ledger *lg, const char *model, int64_t version,
    int64_t in, int64_t out, int64_t cached, int64_t cw,
    const struct money_units *un, int64_t *cost)
{
	struct money_prices p;
	int r;

	if ((r = price_get(lg, model, version, &p)) != 0)
		return r;
	return money_usage_cost_units(&p, in, out, cached, cw, un, cost) == 0 ?
	    0 : 2;
}

/* The checks of a stored entry: 0 agreed, 1 *r holds a dispute, -1. */
static int
check_entry(struct ag_ledger *lg, const struct ledger_entry *e,
    const struct ag_served *sv, struct ag_receipt_result *r)
{
	struct money_units eu = { e->images, e->audio_seconds, e->audio_chars,
	    e->video_seconds }, su;
	int64_t cost, mine;
	int c;

	c = cost_at(lg, e->model, e->price_version, e->input_tokens,
	    e->output_tokens, e->cached_tokens, e->cache_write_tokens, &eu,
	    &cost);
	if (c == -1)
		return -1;
	if (c == 1) {
		snprintf(r->reason, sizeof(r->reason), "unknown price version");
		r->agent_amount = -1;
		return 1;
	}
	if (c == 2 || cost != e->amount) {
		snprintf(r->reason, sizeof(r->reason), "amount");
		r->agent_amount = c == 2 ? -1 : cost;
		return 1;
	}
	if (sv != NULL && (sv->input_tokens != e->input_tokens ||
	    sv->output_tokens != e->output_tokens ||
	    sv->cached_tokens != e->cached_tokens ||
	    sv->cache_write_tokens != e->cache_write_tokens ||
	    sv->images != e->images || sv->audio_seconds != e->audio_seconds ||
	    sv->audio_chars != e->audio_chars ||
	    sv->video_seconds != e->video_seconds)) {
		char units[96] = "";

		if ((sv->images | sv->audio_seconds | sv->audio_chars |
		    sv->video_seconds | e->images | e->audio_seconds |
		    e->audio_chars | e->video_seconds) != 0)
			snprintf(units, sizeof(units), " images=%" PRId64
			    " audio_seconds=%" PRId64 " audio_chars=%" PRId64
			    " video_seconds=%" PRId64, sv->images,
			    sv->audio_seconds, sv->audio_chars,
			    sv->video_seconds);
		char full[320];

		snprintf(full, sizeof(full), "usage differs: agent "
		    "in=%" PRId64 " out=%" PRId64 " cached=%" PRId64
		    " cache_write=%" PRId64 "%s%s", sv->input_tokens,
		    sv->output_tokens, sv->cached_tokens, sv->cache_write_tokens,
		    units, sv->estimated ? " (estimated)" : "");
		snprintf(r->reason, sizeof(r->reason), "%.*s",
		    (int)sizeof(r->reason) - 1, full);
		su.images = sv->images;
		su.audio_seconds = sv->audio_seconds;
		su.audio_chars = sv->audio_chars;
		su.video_seconds = sv->video_seconds;
		c = cost_at(lg, e->model, e->price_version, sv->input_tokens,
		    sv->output_tokens, sv->cached_tokens, sv->cache_write_tokens,
		    &su, &mine);
		if (c == -1)
			return -1;
		r->agent_amount = c == 0 ? mine : -1;
		return 1;
	}
	return 0;
}

static void
verdict(struct ag_receipt_result *r, enum ag_receipt_verdict v, int ok,
    int stored, const char *reason)
{
	r->verdict = v;
	r->ok = ok;
	r->stored = stored;
	if (reason != NULL)
		snprintf(r->reason, sizeof(r->reason), "%s", reason);
}

/*
 * Store e (it extends the chain and its batch's signature checked out):
 * the entry, its served record marked receipted, and the checks (a
 * failed one is a dispute, kept).  Inside the caller's transaction.
 * 0 with *r filled (STORED or DISPUTE), -1 error.
 */
static int
store_one(struct ag_ledger *lg, const struct ledger_entry *e,
    struct ag_receipt_result *r)
{
	struct ag_served sv;
	int k, d;

	memset(r, 0, sizeof(*r));
	r->agent_amount = -1;
	if (entry_insert(lg, e) < 0)
		return -1;
	lg->head.e = *e;	/* taken back by a rollback (forget) */
	lg->head.empty = 0;
	lg->head.ok = 1;
	r->head_seq = e->seq;
	if ((k = ag_ledger_served_get(lg, e->request_id, &sv)) == -1)
		return -1;
	r->served = k == 0 && sv.agent_id == e->agent_id;
	if (r->served && ag_ledger_served_mark(lg, e->agent_id, e->request_id,
	    AG_SERVED_RECEIPTED) == -1)
		return -1;
	if ((d = check_entry(lg, e, r->served ? &sv : NULL, r)) == -1)
		return -1;
	if (d == 0) {
		verdict(r, AG_RCPT_STORED, 1, 1, NULL);
		return 0;
	}
	verdict(r, AG_RCPT_DISPUTE, 0, 1, NULL);
	return done(lg, query(lg, "INSERT OR REPLACE INTO disputes (agent_id, "
	    "seq, request_id, hub_amount, agent_amount, reason, created_at) "
	    "VALUES (?, ?, ?, ?, ?, ?, ?)", "iitiiti", (int64_t)e->agent_id,
	    (int64_t)e->seq, e->request_id, e->amount, r->agent_amount,
	    r->reason, clock_wall_ms() / 1000)) < 0 ? -1 : 0;
}

/* The database failed under a receipt: nothing kept in memory (what is
 * held, being stored or cached), *r says ERROR.  -1. */
static int
receipt_error(struct ag_ledger *lg, struct ag_receipt_result *r)
{
	forget(lg);
	lg->storing = 0;
	lg->npend = 0;
	lg->ndone = 0;
	memset(r, 0, sizeof(*r));
	r->verdict = AG_RCPT_ERROR;
	r->agent_amount = -1;
	return -1;
}

/*
 * Store up to max more entries of the batch the verified signed entry
 * lg->closing ends, in one savepoint, and the signed entry itself once
 * they are all stored (*r its verdict; until then STORING, r->head_seq
 * the last stored).  A failure in the batch's first slice takes back only
 * that slice; a later one rolls the whole open group back (the earlier
 * slices are in it, and the committed chain must end on a signed entry):
 * lg->lost, and the caller's links are dropped so that the hub replays.
 */
static int
store_step(struct ag_ledger *lg, struct ag_receipt_result *r, size_t max)
{
	size_t k = 0, first = lg->nstored;

	memset(r, 0, sizeof(*r));
	r->agent_amount = -1;
	lg->ndone = 0;
	if (tx_begin(lg) != 0)
		goto fail;
	for (; lg->nstored < lg->npend && k < max; lg->nstored++, k++) {
		if (store_one(lg, &lg->pend[lg->nstored], &lg->done_r[k]) != 0)
			goto rollback;
		lg->done_e[k] = lg->pend[lg->nstored];
	}
	if (lg->nstored < lg->npend) {
		verdict(r, AG_RCPT_STORING, 0, 0, NULL);
		r->head_seq = lg->pend[lg->nstored - 1].seq;
	} else if (store_one(lg, &lg->closing, r) != 0)
		goto rollback;
	if (tx_commit(lg) != 0)
		goto rollback;
	lg->ndone = k;
	if (r->verdict != AG_RCPT_STORING) {
		lg->storing = 0;
		lg->npend = 0;
	}
	return 0;
rollback:
	tx_rollback(lg);
fail:
	if (first > 0 && lg->open) {
		/* The group holds the earlier slices: all of it goes. */
		(void)sqlite3_exec(lg->db, "ROLLBACK", NULL, NULL, NULL);
		lg->open = 0;
		lg->lost = 1;
	}
	return receipt_error(lg, r);
}

/* The rest of a batch being stored, at once, its results dropped (their
 * acks are never sent: the hub replays them). */
static int
store_rest(struct ag_ledger *lg)
{
	struct ag_receipt_result r;

	return store_step(lg, &r, AG_LEDGER_BATCH_MAX);
}

/* Is request_id already held in the pending batch? */
static int
pending_has(const struct ag_ledger *lg, const char *request_id,
    uint64_t *seq)
{
	for (size_t i = 0; i < lg->npend; i++)
		if (strcmp(lg->pend[i].request_id, request_id) == 0) {
			*seq = lg->pend[i].seq;
			return 1;
		}
	return 0;
}

int
ag_ledger_receipt_apply(struct ag_ledger *lg, const struct ledger_entry *e,
    struct ag_receipt_result *r)
{
	struct ledger_entry head, old;
	const struct ledger_entry *prev;
	unsigned char pk[LEDGER_PK_LEN];
	char why[AG_LEDGER_REASON_MAX];
	uint64_t dup;
	int empty, k, d;

	/* A batch still being stored goes first: it extends the chain. */
	if (lg->storing && store_rest(lg) != 0)
		goto fail;
	memset(r, 0, sizeof(*r));
	r->verdict = AG_RCPT_ERROR;
	r->agent_amount = -1;
	lg->ndone = 0;
	/* Only this thread writes the file: the checks read without a
	 * transaction of their own, which the writes below open (most
	 * receipts are held, unsigned, and write nothing). */
	fresh(lg);
	if ((empty = head_get(lg, e->agent_id, &head)) == -1)
		goto fail;
	r->head_seq = head.seq;
	/* What is pending must go on from the stored head, for this agent. */
	if (lg->npend > 0 && (lg->pend[0].agent_id != e->agent_id ||
	    lg->pend[0].seq != head.seq + 1))
		lg->npend = 0;
	if (e->seq >= 1 && e->seq <= head.seq) {
		if ((k = ag_ledger_get(lg, e->agent_id, e->seq, &old)) == -1)
			goto fail;
		if (k == 1 || strcmp(old.hash, e->hash) != 0) {
			verdict(r, AG_RCPT_CONFLICT, 0, 0, "conflict");
			return 0;
		}
		/* The same entry again: the same answer as the first time. */
		verdict(r, AG_RCPT_REPLAY, 1, 1, NULL);
		if ((d = dispute_get(lg, e->agent_id, e->seq, r->reason,
		    &r->agent_amount)) == -1)
			goto fail;
		if (d == 0)
			r->ok = 0;
		return 0;
	}
	/* A pending receipt again (the hub replays after a sync): the batch
	 * is taken up again from there. */
	if (lg->npend > 0 && e->seq <= lg->pend[lg->npend - 1].seq)
		lg->npend = (size_t)(e->seq - lg->pend[0].seq);
	prev = lg->npend > 0 ? &lg->pend[lg->npend - 1] : empty ? NULL : &head;
	if (e->seq > (prev != NULL ? prev->seq : 0) + 1) {
		lg->npend = 0;
		verdict(r, AG_RCPT_GAP, 0, 0, NULL);
		return 0;
	}
	if ((k = key_get(lg, e->agent_id, pk)) == -1)
		goto fail;
	if (k == 1) {
		lg->npend = 0;
		verdict(r, AG_RCPT_REFUSED, 0, 0, "no hub ledger key (the "
		    "hub's welcome carried none)");
		return 0;
	}
	/* Link and hash of every entry; the signature (ed25519) only on a
	 * batch's last one, which covers the rest. */
	if (ledger_check_link(prev, e, pk, why, sizeof(why)) != 0) {
		lg->npend = 0;
		verdict(r, AG_RCPT_REFUSED, 0, 0, why);
		return 0;
	}
	if ((k = seq_of_request(lg, e->agent_id, e->request_id, &dup)) == -1)
		goto fail;
	if (k == 0 || pending_has(lg, e->request_id, &dup)) {
		lg->npend = 0;
		snprintf(why, sizeof(why), "request id already billed at seq "
		    "%" PRIu64, dup);
		verdict(r, AG_RCPT_REFUSED, 0, 0, why);
		return 0;
	}
	if (!ledger_signed(e)) {
		if (lg->npend == AG_LEDGER_BATCH_MAX) {
			lg->npend = 0;
			verdict(r, AG_RCPT_REFUSED, 0, 0, "more unsigned receipts "
			    "in a row than a batch holds");
			return 0;
		}
		lg->pend[lg->npend++] = *e;
		verdict(r, AG_RCPT_PENDING, 0, 0, NULL);
		r->head_seq = e->seq;
		return 0;
	}
	/* Signed and good: its batch, then itself; a slice a call when the
	 * writes are grouped (store_step). */
	lg->closing = *e;
	lg->nstored = 0;
	lg->storing = 1;
	return store_step(lg, r, lg->group ? lg->slice : lg->npend);
fail:
	return receipt_error(lg, r);
}

int
ag_ledger_receipt_continue(struct ag_ledger *lg, struct ledger_entry *e,
    struct ag_receipt_result *r)
{
	memset(r, 0, sizeof(*r));
	r->verdict = AG_RCPT_ERROR;
	r->agent_amount = -1;
	lg->ndone = 0;
	if (!lg->storing)
		return 1;
	*e = lg->closing;
	return store_step(lg, r, lg->slice);
}

#if SWB_TEST_BUILD
void
ag_ledger_test_slice(struct ag_ledger *lg, size_t n)
{
	lg->slice = n > 0 ? n : AG_LEDGER_STORE_SLICE;
}
#endif

int
ag_ledger_lost(struct ag_ledger *lg)
{
	int lost = lg->lost;

	lg->lost = 0;
	return lost;
}

size_t
ag_ledger_batch_done(const struct ag_ledger *lg,
    const struct ledger_entry **es, const struct ag_receipt_result **rs)
{
	*es = lg->done_e;
	*rs = lg->done_r;
	return lg->ndone;
}

/* ---- reading it all -------------------------------------------------- */

int
ag_ledger_agents(struct ag_ledger *lg, uint64_t *ids, size_t max)
{
	sqlite3_stmt *st;
	size_t n = 0;
	int r;

	st = query(lg, "SELECT agent_id FROM hub_keys UNION SELECT agent_id "
	    "FROM ledger UNION SELECT agent_id FROM served ORDER BY 1", "");
	while ((r = row(lg, st)) == 1) {
		if (n < max)
			ids[n] = (uint64_t)sqlite3_column_int64(st, 0);
		n++;
	}
	if (r == -1)
		return -1;
	release(lg, st);
	return (int)n;
}

int
ag_ledger_export(struct ag_ledger *lg, uint64_t agent_id, FILE *out)
{
	struct ledger_entry e;
	sqlite3_stmt *st;
	char line[LEDGER_CSV_MAX];
	int n = 0, r;

	st = query(lg, "SELECT " ENTRY_COLS " FROM ledger WHERE agent_id = ? "
	    "ORDER BY seq", "i", (int64_t)agent_id);
	if (st == NULL)
		return -1;
	if (fputs(LEDGER_CSV_HEADER, out) == EOF) {
		seterr(lg, "write error");
		release(lg, st);
		return -1;
	}
	while ((r = row(lg, st)) == 1) {
		col_entry(st, &e);
		if (ledger_csv_line(&e, line, sizeof(line)) < 0) {
			seterr(lg, "seq %" PRIu64 " cannot be written as CSV "
			    "(malformed; run agentd ledger verify)", e.seq);
			release(lg, st);
			return -1;
		}
		if (fputs(line, out) == EOF) {
			seterr(lg, "write error");
			release(lg, st);
			return -1;
		}
		n++;
	}
	if (r == -1)
		return -1;
	release(lg, st);
	return n;
}

int
ag_ledger_verify(struct ag_ledger *lg, uint64_t agent_id, uint64_t *n,
    char head_hash[LEDGER_HEX_LEN + 1], uint64_t *bad_seq, char *why,
    size_t whylen)
{
	struct ledger_entry prev, e;
	unsigned char pk[LEDGER_PK_LEN];
	sqlite3_stmt *st;
	uint64_t uncovered = 0;
	int k, r, have_prev = 0, ret = 0;

	*n = 0;
	*bad_seq = 0;
	memcpy(head_hash, LEDGER_GENESIS, LEDGER_HEX_LEN + 1);
	if ((k = ag_ledger_hub_key_get(lg, agent_id, pk)) == -1) {
		snprintf(why, whylen, "%s", lg->err);
		return -1;
	}
	st = query(lg, "SELECT " ENTRY_COLS " FROM ledger WHERE agent_id = ? "
	    "ORDER BY seq", "i", (int64_t)agent_id);
	while ((r = row(lg, st)) == 1) {
		col_entry(st, &e);
		if (k == 1) {
			snprintf(why, whylen, "no hub ledger key is stored for "
			    "agent %" PRIu64 ", so no signature can be checked",
			    agent_id);
			ret = 1;
		} else if (e.agent_id != agent_id) {
			snprintf(why, whylen, "seq %" PRIu64 ": another agent's "
			    "entry", e.seq);
			ret = 1;
		} else if (ledger_check_link(have_prev ? &prev : NULL, &e, pk,
		    why, whylen) != 0)
			ret = 1;
		if (ret == 1) {
			*bad_seq = e.seq;
			release(lg, st);
			return 1;
		}
		prev = e;
		have_prev = 1;
		(*n)++;
		memcpy(head_hash, e.hash, LEDGER_HEX_LEN + 1);
		/* The first entry no signature covers yet. */
		if (ledger_signed(&e))
			uncovered = 0;
		else if (uncovered == 0)
			uncovered = e.seq;
	}
	if (r == -1) {
		snprintf(why, whylen, "%s", lg->err);
		return -1;
	}
	release(lg, st);
	if (uncovered != 0) {
		snprintf(why, whylen, "seq %" PRIu64 ": no signature covers it "
		    "(no signed entry after it)", uncovered);
		*bad_seq = uncovered;
		return 1;
	}
	return 0;
}

int
ag_ledger_disputes(struct ag_ledger *lg, uint64_t agent_id,
    int (*cb)(const struct ag_dispute *, void *), void *arg)
{
	struct ag_dispute d;
	sqlite3_stmt *st;
	int n = 0, r;

	st = query(lg, "SELECT agent_id, seq, request_id, hub_amount, "
	    "agent_amount, reason, created_at, status, resolution, resolved_at "
	    "FROM disputes WHERE ?1 = 0 OR "
	    "agent_id = ?1 ORDER BY agent_id, seq", "i", (int64_t)agent_id);
	while ((r = row(lg, st)) == 1) {
		memset(&d, 0, sizeof(d));
		d.agent_id = (uint64_t)sqlite3_column_int64(st, 0);
		d.seq = (uint64_t)sqlite3_column_int64(st, 1);
		col_text(st, 2, d.request_id, sizeof(d.request_id));
		d.hub_amount = sqlite3_column_int64(st, 3);
		d.agent_amount = sqlite3_column_int64(st, 4);
		col_text(st, 5, d.reason, sizeof(d.reason));
		d.created_at = sqlite3_column_int64(st, 6);
		col_text(st, 7, d.status, sizeof(d.status));
		col_text(st, 8, d.resolution, sizeof(d.resolution));
		d.resolved_at = sqlite3_column_int64(st, 9);
		n++;
		if (cb(&d, arg) != 0)
			break;
	}
	if (r == -1)
		return -1;
	release(lg, st);
	return n;
}

int
ag_ledger_dispute_resolved(struct ag_ledger *lg, uint64_t agent_id,
    uint64_t seq, const char *status, const char *reason)
{
	sqlite3_stmt *st;
	int r;

	if (strcmp(status, "accepted") != 0 && strcmp(status, "rejected") != 0) {
		seterr(lg, "dispute result: unknown status");
		return -1;
	}
	st = query(lg, "UPDATE disputes SET status = ?1, resolution = ?2, "
	    "resolved_at = ?3 WHERE agent_id = ?4 AND seq = ?5 RETURNING seq",
	    "ttiii", status, reason, (int64_t)time(NULL), (int64_t)agent_id,
	    (int64_t)seq);
	r = row(lg, st);
	if (r == -1)
		return -1;
	release(lg, st);
	return r == 1 ? 0 : 1;
}
