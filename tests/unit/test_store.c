/*
 * tests/unit/test_store: the billing store (billing/store.h), the same cases
 * against SQLite (a fresh temp file per case) and, when SWB_PG_URL is set,
 * against PostgreSQL (a fresh schema per case, dropped afterwards, reached
 * through search_path, so runs repeat on the same server).
 * tests/integration/store_pg.sh runs it with a throwaway server.
 * The ledger cases check every chain with lib/ledger's link rule and a
 * hub key made at start; one case builds a database as migration 3 left
 * it (billing/schema.c's own statements) and opens it with this build.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>
#include <sodium.h>
#include <sqlite3.h>

#include "billing/schema.h"
#include "billing/store.h"
#include "billing/store_admin.h"
#include "lib/ledger.h"

static struct {
	int		 pg;		/* running the PostgreSQL group */
	const char	*pg_base;	/* SWB_PG_URL */
	unsigned	 seq;
	char		 path[512];	/* SQLite file */
	char		 schema[64];	/* PostgreSQL schema of this case */
	char		 url[1024];	/* what store_open gets */
	struct store	*st;
} fx;

/* ---- helpers -------------------------------------------------------------- */

static void
quiet(void *arg, const char *msg)
{
	(void)arg;
	(void)msg;
}

/* One statement on the admin connection (PostgreSQL); 0 ok. */
static int
pg_admin(const char *fmt_drop_or_create)
{
	PGconn *c;
	PGresult *r;
	char *id, sql[256];
	int ok;

	c = PQconnectdb(fx.pg_base);
	if (PQstatus(c) != CONNECTION_OK) {
		fprintf(stderr, "pg admin: %s", PQerrorMessage(c));
		PQfinish(c);
		return -1;
	}
	PQsetNoticeProcessor(c, quiet, NULL);
	id = PQescapeIdentifier(c, fx.schema, strlen(fx.schema));
	snprintf(sql, sizeof(sql), fmt_drop_or_create, id);
	PQfreemem(id);
	r = PQexec(c, sql);
	ok = PQresultStatus(r) == PGRES_COMMAND_OK;
	if (!ok)
		fprintf(stderr, "pg admin: %s: %s", sql, PQresultErrorMessage(r));
	PQclear(r);
	PQfinish(c);
	return ok ? 0 : -1;
}

/*
 * Runs one statement directly on the database of the current case, behind
 * the store's back.  The first column of the first row, if any, goes to
 * out.  0 ok, -1 the statement failed.
 */
static int
raw(const char *sql, char *out, size_t outlen)
{
	if (out != NULL && outlen > 0)
		out[0] = '\0';
	if (fx.pg) {
		PGconn *c = PQconnectdb(fx.url);
		PGresult *r;
		int st;

		if (PQstatus(c) != CONNECTION_OK) {
			PQfinish(c);
			return -1;
		}
		PQsetNoticeProcessor(c, quiet, NULL);
		r = PQexec(c, sql);
		st = PQresultStatus(r);
		if (st == PGRES_TUPLES_OK && PQntuples(r) > 0 && out != NULL)
			snprintf(out, outlen, "%s", PQgetvalue(r, 0, 0));
		PQclear(r);
		PQfinish(c);
		return st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK ? 0 : -1;
	} else {
		sqlite3 *db = NULL;
		sqlite3_stmt *s = NULL;
		int rc;

		if (sqlite3_open_v2(fx.path, &db, SQLITE_OPEN_READWRITE,
		    NULL) != SQLITE_OK) {
			sqlite3_close(db);
			return -1;
		}
		sqlite3_busy_timeout(db, 5000);
		/* Per connection in SQLite; the store turns it on too. */
		sqlite3_exec(db, "PRAGMA foreign_keys=ON", NULL, NULL, NULL);
		if (sqlite3_prepare_v2(db, sql, -1, &s, NULL) != SQLITE_OK) {
			sqlite3_close(db);
			return -1;
		}
		rc = sqlite3_step(s);
		if (rc == SQLITE_ROW && out != NULL)
			snprintf(out, outlen, "%s",
			    (const char *)sqlite3_column_text(s, 0));
		sqlite3_finalize(s);
		sqlite3_close(db);
		return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : -1;
	}
}

static void
newkey(char b64[64], unsigned char key[32])
{
	randombytes_buf(key, 32);
	sodium_bin2base64(b64, 64, key, 32, sodium_base64_VARIANT_ORIGINAL);
}

static void
hash_of(const char *secret, char hex[65])
{
	unsigned char h[crypto_hash_sha256_BYTES];

	crypto_hash_sha256(h, (const unsigned char *)secret, strlen(secret));
	sodium_bin2hex(hex, 65, h, sizeof(h));
}

static uint64_t
add_agent(const char *name)
{
	char b64[64];
	unsigned char key[32];
	uint64_t id = 0;

	newkey(b64, key);
	if (store_agent_add(fx.st, name, b64, 'B', &id) != 0)
		fail_msg("add %s: %s", name, store_errmsg(fx.st));
	assert_true(id > 0);
	return id;
}

static int
count_cb(const struct store_agent *a, void *arg)
{
	(void)a;
	(*(int *)arg)++;
	return 0;
}

static int
nagents(void)
{
	int n = 0;

	assert_int_equal(store_agent_list(fx.st, count_cb, &n), 0);
	return n;
}

static int
tcount_cb(const struct store_token *t, void *arg)
{
	(void)t;
	(*(int *)arg)++;
	return 0;
}

static int
ntokens(void)
{
	int n = 0;

	assert_int_equal(store_token_list(fx.st, tcount_cb, &n), 0);
	return n;
}

/* ---- fixtures ----------------------------------------------------------- */

static int
setup(void **state)
{
	char err[512];
	int fd;

	(void)state;
	fx.seq++;
	if (fx.pg) {
		snprintf(fx.schema, sizeof(fx.schema), "swb_t_%ld_%u_%ld",
		    (long)getpid(), fx.seq, (long)time(NULL));
		if (pg_admin("DROP SCHEMA IF EXISTS %s CASCADE") == -1 ||
		    pg_admin("CREATE SCHEMA %s") == -1)
			return -1;
		snprintf(fx.url, sizeof(fx.url), "%s%coptions=-csearch_path%%3D%s",
		    fx.pg_base, strchr(fx.pg_base, '?') ? '&' : '?', fx.schema);
	} else {
		const char *tmp = getenv("TMPDIR");

		snprintf(fx.path, sizeof(fx.path), "%s/swb-store-XXXXXX",
		    tmp && *tmp ? tmp : "/tmp");
		if ((fd = mkstemp(fx.path)) == -1)
			return -1;
		close(fd);
		snprintf(fx.url, sizeof(fx.url), "sqlite:%s", fx.path);
	}
	fx.st = store_open(fx.url, err, sizeof(err));
	if (fx.st == NULL) {
		fprintf(stderr, "store_open(%s): %s\n", fx.url, err);
		return -1;
	}
	return 0;
}

static int
teardown(void **state)
{
	char p[600];

	(void)state;
	store_close(fx.st);
	fx.st = NULL;
	if (fx.pg)
		return pg_admin("DROP SCHEMA IF EXISTS %s CASCADE");
	unlink(fx.path);
	snprintf(p, sizeof(p), "%s-wal", fx.path);
	unlink(p);
	snprintf(p, sizeof(p), "%s-shm", fx.path);
	unlink(p);
	return 0;
}

/* ---- cases -------------------------------------------------------------- */

static void
test_engine(void **state)
{
	char mode[32];

	(void)state;
	assert_string_equal(store_engine(fx.st), fx.pg ? "postgresql" :
	    "sqlite");
	if (!fx.pg) {
		/* WAL is a property of the file: another connection sees it. */
		assert_int_equal(raw("PRAGMA journal_mode", mode, sizeof(mode)),
		    0);
		assert_string_equal(mode, "wal");
	}
}

/* Both columns of a row, as "A|B". */
static int
two_cols(struct store *st, const struct db_row *r, void *arg)
{
	(void)st;
	snprintf(arg, 64, "%s|%s", r->val[0] != NULL ? r->val[0] : "NULL",
	    r->val[1] != NULL ? r->val[1] : "NULL");
	return 0;
}

/* A statement's parameters are bound by their names ($N, in any order),
 * again on every call of the same text (the engine keeps it prepared); a
 * parameter with no value is an error, after which the statement still
 * works; SQLite refuses a parameter that is not $N. */
static void
test_params(void **state)
{
	static const char sql[] = "SELECT CAST($2 AS TEXT), CAST($1 AS TEXT)";
	struct db_param p[2] = { { DB_PTEXT, 0, "a" }, { DB_PTEXT, 0, "b" } };
	char out[64];

	(void)state;
	assert_int_equal(fx.st->eng->query(fx.st, sql, p, 2, two_cols, out),
	    DB_OK);
	assert_string_equal(out, "b|a");
	p[0].s = "c";
	p[1].type = DB_PNULL;
	assert_int_equal(fx.st->eng->query(fx.st, sql, p, 2, two_cols, out),
	    DB_OK);
	assert_string_equal(out, "NULL|c");
	assert_int_equal(fx.st->eng->query(fx.st, sql, p, 1, two_cols, out),
	    DB_ERR);
	p[1] = (struct db_param){ DB_PTEXT, 0, "d" };
	assert_int_equal(fx.st->eng->query(fx.st, sql, p, 2, two_cols, out),
	    DB_OK);
	assert_string_equal(out, "d|c");
	if (!fx.pg) {
		assert_int_equal(fx.st->eng->query(fx.st, "SELECT ?, ?", p, 2,
		    two_cols, out), DB_ERR);
		assert_non_null(strstr(store_errmsg(fx.st), "is not $N"));
	}
}

static void
test_migrations_idempotent(void **state)
{
	struct store *st2, *st3;
	struct store_agent a;
	char err[512], n1[32], n2[32], buf[32];
	int64_t v = -1, v2 = -1;
	uint64_t id;

	(void)state;
	assert_int_equal(store_schema_version(fx.st, &v), 0);
	assert_true(v == store_schema_latest());
	assert_true(v >= 1);
	assert_int_equal(raw("SELECT COUNT(*) FROM schema_version", n1,
	    sizeof(n1)), 0);
	assert_true(atoi(n1) >= 1);
	for (const char *const *t = (const char *const[]){ "agents",
	    "tokens", "prices", "ledger", "disputes", NULL }; *t; t++) {
		char sql[64];

		snprintf(sql, sizeof(sql), "SELECT COUNT(*) FROM %s", *t);
		assert_int_equal(raw(sql, buf, sizeof(buf)), 0);
		assert_string_equal(buf, "0");
	}
	id = add_agent("survivor");

	/* Open again while the first is still open, then after closing. */
	st2 = store_open(fx.url, err, sizeof(err));
	if (st2 == NULL)
		fail_msg("second open: %s", err);
	assert_int_equal(store_schema_version(st2, &v2), 0);
	assert_true(v2 == v);
	store_close(fx.st);
	fx.st = st2;
	st3 = store_open(fx.url, err, sizeof(err));
	if (st3 == NULL)
		fail_msg("third open: %s", err);
	store_close(st3);
	assert_int_equal(raw("SELECT COUNT(*) FROM schema_version", n2,
	    sizeof(n2)), 0);
	assert_string_equal(n1, n2);
	assert_int_equal(store_agent_get(fx.st, id, &a), 0);
	assert_string_equal(a.name, "survivor");
	assert_int_equal(nagents(), 1);

	/* A database from a newer build is refused, not "migrated". */
	assert_int_equal(raw("INSERT INTO schema_version (version, name, "
	    "applied_at) VALUES (999999, 'future', 0)", NULL, 0), 0);
	assert_null(store_open(fx.url, err, sizeof(err)));
	assert_non_null(strstr(err, "newer"));
	assert_int_equal(raw("DELETE FROM schema_version WHERE version = "
	    "999999", NULL, 0), 0);
	st3 = store_open(fx.url, err, sizeof(err));
	if (st3 == NULL)
		fail_msg("open after cleanup: %s", err);
	store_close(st3);
}

static void
test_agent_add_get(void **state)
{
	struct store_agent a;
	unsigned char key[32], key2[32];
	char b64[64], b642[64];
	uint64_t id = 0, id2 = 0;
	int64_t t0 = (int64_t)time(NULL);

	(void)state;
	newkey(b64, key);
	assert_int_equal(store_agent_add(fx.st, "agent-1.eu_west", b64, 'A',
	    &id), 0);
	assert_true(id > 0);
	newkey(b642, key2);
	assert_int_equal(store_agent_add(fx.st, "agent-2", b642, 'C', &id2),
	    0);
	assert_true(id2 > 0 && id2 != id);

	memset(&a, 0x5a, sizeof(a));
	assert_int_equal(store_agent_get(fx.st, id, &a), 0);
	assert_true(a.id == id);
	assert_string_equal(a.name, "agent-1.eu_west");
	assert_string_equal(a.pubkey_b64, b64);
	assert_memory_equal(a.pubkey, key, 32);
	assert_int_equal(a.grade, 'A');
	assert_int_equal(a.enabled, 1);
	assert_true(a.created_at >= t0 && a.created_at <= (int64_t)time(NULL));

	assert_int_equal(store_agent_get(fx.st, id2, &a), 0);
	assert_string_equal(a.name, "agent-2");
	assert_memory_equal(a.pubkey, key2, 32);
	assert_int_equal(a.grade, 'C');
}

struct listed {
	int		 n;
	int		 stop_at;	/* return 7 at this call (1-based) */
	uint64_t	 ids[8];
	char		 names[8][64];
	struct store	*st;		/* get each agent from inside cb */
};

static int
list_cb(const struct store_agent *a, void *arg)
{
	struct listed *l = arg;
	struct store_agent again;

	if (l->n < 8) {
		l->ids[l->n] = a->id;
		snprintf(l->names[l->n], sizeof(l->names[0]), "%s", a->name);
	}
	l->n++;
	if (l->st != NULL) {
		assert_int_equal(store_agent_get(l->st, a->id, &again), 0);
		assert_string_equal(again.name, a->name);
	}
	return l->n == l->stop_at ? 7 : 0;
}

static void
test_agent_list(void **state)
{
	struct listed l;
	uint64_t id[3];

	(void)state;
	memset(&l, 0, sizeof(l));
	assert_int_equal(store_agent_list(fx.st, list_cb, &l), 0);
	assert_int_equal(l.n, 0);

	id[0] = add_agent("a");
	id[1] = add_agent("b");
	id[2] = add_agent("c");
	memset(&l, 0, sizeof(l));
	l.st = fx.st;		/* the callback may call the store */
	assert_int_equal(store_agent_list(fx.st, list_cb, &l), 0);
	assert_int_equal(l.n, 3);
	assert_true(l.ids[0] == id[0] && l.ids[1] == id[1] &&
	    l.ids[2] == id[2]);
	assert_true(id[0] < id[1] && id[1] < id[2]);
	assert_string_equal(l.names[0], "a");
	assert_string_equal(l.names[2], "c");

	memset(&l, 0, sizeof(l));
	l.stop_at = 2;
	assert_int_equal(store_agent_list(fx.st, list_cb, &l), 7);
	assert_int_equal(l.n, 2);

	assert_int_equal(store_agent_list(fx.st, NULL, NULL), -1);
}

static void
test_agent_disable(void **state)
{
	struct store_agent a;
	uint64_t id, other;

	(void)state;
	id = add_agent("flip");
	other = add_agent("bystander");
	assert_int_equal(store_agent_set_enabled(fx.st, id, 0), 0);
	assert_int_equal(store_agent_get(fx.st, id, &a), 0);
	assert_int_equal(a.enabled, 0);
	assert_int_equal(store_agent_get(fx.st, other, &a), 0);
	assert_int_equal(a.enabled, 1);
	assert_int_equal(store_agent_set_enabled(fx.st, id, 0), 0);
	assert_int_equal(store_agent_set_enabled(fx.st, id, 42), 0);
	assert_int_equal(store_agent_get(fx.st, id, &a), 0);
	assert_int_equal(a.enabled, 1);
}

static void
test_agent_duplicate(void **state)
{
	struct store_agent a;
	unsigned char key[32];
	char b64[64], b642[64];
	uint64_t id = 0, id2 = 12345;

	(void)state;
	newkey(b64, key);
	assert_int_equal(store_agent_add(fx.st, "twin", b64, 'A', &id), 0);

	/* Same name, other key. */
	newkey(b642, key);
	assert_int_equal(store_agent_add(fx.st, "twin", b642, 'B', &id2), -1);
	assert_non_null(strstr(store_errmsg(fx.st), "name"));
	assert_true(id2 == 12345);
	/* Same key, other name. */
	assert_int_equal(store_agent_add(fx.st, "twin2", b64, 'B', &id2), -1);
	assert_non_null(strstr(store_errmsg(fx.st), "key"));
	assert_int_equal(nagents(), 1);
	assert_int_equal(store_agent_get(fx.st, id, &a), 0);
	assert_int_equal(a.grade, 'A');

	/* The store is still usable after the refusals. */
	assert_int_equal(store_agent_add(fx.st, "twin2", b642, 'B', &id2), 0);
	assert_true(id2 > id);
	assert_int_equal(nagents(), 2);
}

static void
test_agent_bad_input(void **state)
{
	static const char *const badkeys[] = {
		"not base64!!",
		"",
		"AAAAAAAAAAAAAAAAAAAAAA==",			/* 16 bytes */
		"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", /* 33 bytes */
		"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",	/* no padding */
		"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAB=",	/* stray bits */
		"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=xx",
		"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA= ",
		" AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
		"-_-_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",	/* URL-safe */
		"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
		    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
	};
	static const char *const badnames[] = {
		"", "has space", "semi;colon", "quote'd", "\xc3\xa9t\xc3\xa9",
		"0123456789012345678901234567890123456789012345678901234567890"
		    "123",					/* 64 */
	};
	char b64[64];
	unsigned char key[32];
	uint64_t id = 99;
	size_t i;

	(void)state;
	newkey(b64, key);
	for (i = 0; i < sizeof(badkeys) / sizeof(badkeys[0]); i++) {
		assert_int_equal(store_agent_add(fx.st, "k", badkeys[i], 'A',
		    &id), -1);
		assert_non_null(strstr(store_errmsg(fx.st), "public key"));
	}
	assert_int_equal(store_agent_add(fx.st, "k", NULL, 'A', &id), -1);
	for (i = 0; i < sizeof(badnames) / sizeof(badnames[0]); i++)
		assert_int_equal(store_agent_add(fx.st, badnames[i], b64, 'A',
		    &id), -1);
	assert_int_equal(store_agent_add(fx.st, NULL, b64, 'A', &id), -1);
	assert_int_equal(store_agent_add(fx.st, "k", b64, 'a', &id), -1);
	assert_int_equal(store_agent_add(fx.st, "k", b64, '1', &id), -1);
	assert_int_equal(store_agent_add(fx.st, "k", b64, '\0', &id), -1);
	assert_int_equal(store_agent_add(fx.st, "k", b64, 'A', NULL), -1);
	assert_true(id == 99);
	assert_int_equal(nagents(), 0);

	/* The longest legal name, and the same key, now go in. */
	assert_int_equal(store_agent_add(fx.st, "01234567890123456789012345"
	    "6789012345678901234567890123456789012", b64, 'Z', &id), 0);
	assert_int_equal(nagents(), 1);

	/* No store at all. */
	assert_int_equal(store_agent_add(NULL, "k", b64, 'A', &id), -1);
	assert_int_equal(store_agent_get(NULL, 1, NULL), -1);
	assert_int_equal(store_agent_get(fx.st, 1, NULL), -1);
	assert_int_equal(store_agent_list(NULL, count_cb, NULL), -1);
	assert_int_equal(store_agent_set_enabled(NULL, 1, 1), -1);
	assert_non_null(store_errmsg(NULL));
	store_close(NULL);
}

static void
test_not_found(void **state)
{
	struct store_agent a;
	struct store_token t;
	char h[65];
	uint64_t id;

	(void)state;
	id = add_agent("only");
	assert_int_equal(store_agent_get(fx.st, id + 1, &a), 1);
	assert_int_equal(store_agent_get(fx.st, 0, &a), 1);
	assert_int_equal(store_agent_get(fx.st, UINT64_MAX, &a), 1);
	assert_int_equal(store_agent_get(fx.st, (uint64_t)INT64_MAX, &a), 1);
	assert_int_equal(store_agent_set_enabled(fx.st, id + 1, 0), 1);
	assert_int_equal(store_agent_set_enabled(fx.st, 0, 0), 1);
	assert_int_equal(store_agent_set_enabled(fx.st, UINT64_MAX, 0), 1);
	assert_int_equal(store_agent_get(fx.st, id, &a), 0);
	assert_int_equal(a.enabled, 1);

	assert_int_equal(store_token_disable(fx.st, 12345), 1);
	assert_int_equal(store_token_disable(fx.st, 0), 1);
	assert_int_equal(store_token_disable(fx.st, UINT64_MAX), 1);
	hash_of("nobody", h);
	assert_int_equal(store_token_get_by_hash(fx.st, h, &t), 1);
}

static void
test_tokens(void **state)
{
	struct store_token t;
	char h1[65], h2[65], h3[65];
	uint64_t id1 = 0, id2 = 0, id3 = 77;
	int64_t t0 = (int64_t)time(NULL);

	(void)state;
	hash_of("sk-secret-one", h1);
	hash_of("sk-secret-two", h2);
	assert_int_equal(store_token_create(fx.st, "team a", h1, 5000000,
	    "gpt-4o,claude-3-5-sonnet", 1893456000, &id1), 0);
	assert_int_equal(store_token_create(fx.st, "team a", h2,
	    STORE_QUOTA_UNLIMITED, "", 0, &id2), 0);
	assert_true(id1 > 0 && id2 > id1);

	memset(&t, 0x5a, sizeof(t));
	assert_int_equal(store_token_get_by_hash(fx.st, h1, &t), 0);
	assert_true(t.id == id1);
	assert_string_equal(t.name, "team a");
	assert_string_equal(t.hash_hex, h1);
	assert_true(t.quota_micros == 5000000);
	assert_true(t.used_micros == 0);
	assert_string_equal(t.models_csv, "gpt-4o,claude-3-5-sonnet");
	assert_true(t.expires_at == 1893456000);
	assert_int_equal(t.enabled, 1);
	assert_true(t.created_at >= t0 && t.created_at <= (int64_t)time(NULL));

	assert_int_equal(store_token_get_by_hash(fx.st, h2, &t), 0);
	assert_true(t.id == id2);
	assert_true(t.quota_micros == -1);
	assert_string_equal(t.models_csv, "");
	assert_true(t.expires_at == 0);

	/* A hash is unique. */
	assert_int_equal(store_token_create(fx.st, "again", h1, 0, "", 0,
	    &id3), -1);
	assert_non_null(strstr(store_errmsg(fx.st), "hash"));
	assert_true(id3 == 77);
	assert_int_equal(ntokens(), 2);

	/* Disable one; the other is untouched; disabling twice is fine. */
	assert_int_equal(store_token_disable(fx.st, id1), 0);
	assert_int_equal(store_token_get_by_hash(fx.st, h1, &t), 0);
	assert_int_equal(t.enabled, 0);
	assert_int_equal(store_token_get_by_hash(fx.st, h2, &t), 0);
	assert_int_equal(t.enabled, 1);
	assert_int_equal(store_token_disable(fx.st, id1), 0);

	/* Bad input. */
	hash_of("sk-secret-three", h3);
	{
		char up[65], short_[65], nonhex[65];

		snprintf(up, sizeof(up), "%s", h3);
		for (char *p = up; *p; p++)
			if (*p >= 'a' && *p <= 'f') {
				*p = (char)(*p - 'a' + 'A');
				break;
			}
		snprintf(short_, sizeof(short_), "%.63s", h3);
		snprintf(nonhex, sizeof(nonhex), "%s", h3);
		nonhex[10] = 'g';
		assert_int_equal(store_token_create(fx.st, "x", up, 0, "", 0,
		    &id3), -1);
		assert_int_equal(store_token_create(fx.st, "x", short_, 0, "",
		    0, &id3), -1);
		assert_int_equal(store_token_create(fx.st, "x", nonhex, 0, "",
		    0, &id3), -1);
		assert_int_equal(store_token_get_by_hash(fx.st, up, &t), -1);
		assert_int_equal(store_token_get_by_hash(fx.st, nonhex, &t),
		    -1);
		assert_int_equal(store_token_get_by_hash(fx.st, NULL, &t), -1);
		assert_int_equal(store_token_get_by_hash(fx.st, h3, NULL), -1);
	}
	assert_int_equal(store_token_create(fx.st, "x", NULL, 0, "", 0,
	    &id3), -1);
	assert_int_equal(store_token_create(fx.st, "", h3, 0, "", 0, &id3),
	    -1);
	assert_int_equal(store_token_create(fx.st, NULL, h3, 0, "", 0, &id3),
	    -1);
	assert_int_equal(store_token_create(fx.st, "tab\there", h3, 0, "", 0,
	    &id3), -1);
	assert_int_equal(store_token_create(fx.st, "x", h3, -2, "", 0, &id3),
	    -1);
	assert_int_equal(store_token_create(fx.st, "x", h3, INT64_MIN, "", 0,
	    &id3), -1);
	assert_int_equal(store_token_create(fx.st, "x", h3, 0, "", -1, &id3),
	    -1);
	assert_int_equal(store_token_create(fx.st, "x", h3, 0, NULL, 0, &id3),
	    -1);
	for (const char *const *m = (const char *const[]){ ",", "a,,b", "a,",
	    ",a", "a b", "gpt\n4", NULL }; *m; m++)
		assert_int_equal(store_token_create(fx.st, "x", h3, 0, *m, 0,
		    &id3), -1);
	assert_int_equal(store_token_create(fx.st, "x", h3, 0, "", 0, NULL),
	    -1);
	assert_int_equal(store_token_list(fx.st, NULL, NULL), -1);
	assert_true(id3 == 77);
	assert_int_equal(ntokens(), 2);
	assert_int_equal(store_token_get_by_hash(fx.st, h3, &t), 1);
}

static void
test_money_int64_max(void **state)
{
	struct store_token t;
	char h[65], buf[64];
	uint64_t id = 0;

	(void)state;
	/* Through the API. */
	hash_of("rich", h);
	assert_int_equal(store_token_create(fx.st, "rich", h, INT64_MAX, "",
	    INT64_MAX, &id), 0);
	assert_int_equal(store_token_get_by_hash(fx.st, h, &t), 0);
	assert_true(t.quota_micros == INT64_MAX);
	assert_true(t.expires_at == INT64_MAX);

	/* Every money column of the schema holds an int64 exactly. */
	add_agent("payee");
	assert_int_equal(raw("INSERT INTO prices (model, version, input, "
	    "output, cached_input, cache_write, created_at) VALUES ('m', 1, "
	    "9223372036854775807, 9223372036854775807, 9223372036854775807, "
	    "9223372036854775807, 0)", NULL, 0), 0);
	for (const char *const *c = (const char *const[]){ "input", "output",
	    "cached_input", "cache_write", NULL }; *c; c++) {
		char sql[128];

		snprintf(sql, sizeof(sql), "SELECT %s FROM prices", *c);
		assert_int_equal(raw(sql, buf, sizeof(buf)), 0);
		assert_string_equal(buf, "9223372036854775807");
	}
	assert_int_equal(raw("INSERT INTO ledger (agent_id, seq, prev_hash, "
	    "hash, request_id, token_id, model, input_tokens, output_tokens, "
	    "cached_tokens, price_version, amount, created_at) VALUES ("
	    "(SELECT id FROM agents WHERE name = 'payee'), 1, '', 'h1', 'r1', "
	    "(SELECT id FROM tokens WHERE name = 'rich'), 'm', "
	    "9223372036854775807, 9223372036854775807, 9223372036854775807, 1, "
	    "9223372036854775807, 0)", NULL, 0), 0);
	assert_int_equal(raw("SELECT amount FROM ledger", buf, sizeof(buf)),
	    0);
	assert_string_equal(buf, "9223372036854775807");
	/* Integer arithmetic, not a double (which would round to 2^63). */
	assert_int_equal(raw("SELECT amount - 1 FROM ledger", buf,
	    sizeof(buf)), 0);
	assert_string_equal(buf, "9223372036854775806");
	assert_int_equal(raw("SELECT input_tokens - 1 FROM ledger", buf,
	    sizeof(buf)), 0);
	assert_string_equal(buf, "9223372036854775806");
	assert_int_equal(raw("INSERT INTO disputes (agent_id, seq, "
	    "request_id, hub_amount, agent_amount, created_at) VALUES ("
	    "(SELECT id FROM agents WHERE name = 'payee'), 1, 'r1', "
	    "9223372036854775807, 9223372036854775806, 0)", NULL, 0), 0);
	assert_int_equal(raw("SELECT hub_amount - agent_amount FROM disputes",
	    buf, sizeof(buf)), 0);
	assert_string_equal(buf, "1");

	/* The ledger refuses a second entry for the same request id. */
	assert_int_equal(raw("INSERT INTO ledger (agent_id, seq, prev_hash, "
	    "hash, request_id, model, price_version, amount, created_at) "
	    "VALUES ((SELECT id FROM agents WHERE name = 'payee'), 2, 'h1', "
	    "'h2', 'r1', 'm', 1, 0, 0)", NULL, 0), -1);
	/* ... and a second entry with the same seq. */
	assert_int_equal(raw("INSERT INTO ledger (agent_id, seq, prev_hash, "
	    "hash, request_id, model, price_version, amount, created_at) "
	    "VALUES ((SELECT id FROM agents WHERE name = 'payee'), 1, 'h1', "
	    "'h2', 'r2', 'm', 1, 0, 0)", NULL, 0), -1);
	/* ... and an entry for an agent that does not exist. */
	assert_int_equal(raw("INSERT INTO ledger (agent_id, seq, prev_hash, "
	    "hash, request_id, model, price_version, amount, created_at) "
	    "VALUES (987654, 1, '', 'h', 'r3', 'm', 1, 0, 0)", NULL, 0), -1);
}

/* Prices: versions per model, the latest wins, int64 exactly, refusals. */
struct price_seen {
	int			n;
	struct store_price	p[8];
};

static int
price_cb(const struct store_price *p, void *arg)
{
	struct price_seen *s = arg;

	if (s->n < 8)
		s->p[s->n] = *p;
	s->n++;
	return 0;
}

static void
test_prices(void **state)
{
	struct price_seen seen;
	struct store_price pr;
	char model[STORE_MODEL_MAX + 2];
	int64_t v = 0;

	(void)state;
	memset(&seen, 0, sizeof(seen));
	assert_int_equal(store_price_list(fx.st, price_cb, &seen), 0);
	assert_int_equal(seen.n, 0);
	assert_int_equal(store_price_get(fx.st, "gpt-4o", 0, &pr), 1);

	assert_int_equal(store_price_set(fx.st, "gpt-4o", 2500000, 10000000,
	    1250000, 0, &v), 0);
	assert_true(v == 1);
	assert_int_equal(store_price_set(fx.st, "gpt-4o-mini", 150000, 600000,
	    75000, 0, &v), 0);
	assert_true(v == 1);
	assert_int_equal(store_price_set(fx.st, "gpt-4o", 2000000, 8000000,
	    1000000, 1, &v), 0);
	assert_true(v == 2);
	assert_int_equal(store_price_set(fx.st, "gpt-4o", 0, 0, 0, 0, &v), 0);
	assert_true(v == 3);

	/* The list holds the latest version of each model. */
	memset(&seen, 0, sizeof(seen));
	assert_int_equal(store_price_list(fx.st, price_cb, &seen), 0);
	assert_int_equal(seen.n, 2);
	assert_string_equal(seen.p[0].model, "gpt-4o");
	assert_true(seen.p[0].version == 3);
	assert_true(seen.p[0].input == 0 && seen.p[0].output == 0);
	assert_true(seen.p[0].created_at > 0);
	assert_string_equal(seen.p[1].model, "gpt-4o-mini");
	assert_true(seen.p[1].version == 1);
	assert_true(seen.p[1].input == 150000 && seen.p[1].output == 600000 &&
	    seen.p[1].cached_input == 75000 && seen.p[1].cache_write == 0);

	/* Every version stays readable; 0 is the latest. */
	assert_int_equal(store_price_get(fx.st, "gpt-4o", 2, &pr), 0);
	assert_true(pr.version == 2 && pr.input == 2000000 &&
	    pr.output == 8000000 && pr.cached_input == 1000000 &&
	    pr.cache_write == 1);
	assert_int_equal(store_price_get(fx.st, "gpt-4o", 1, &pr), 0);
	assert_true(pr.input == 2500000 && pr.cached_input == 1250000);
	assert_int_equal(store_price_get(fx.st, "gpt-4o", 0, &pr), 0);
	assert_true(pr.version == 3);
	assert_int_equal(store_price_get(fx.st, "gpt-4o", 4, &pr), 1);
	assert_int_equal(store_price_get(fx.st, "nope", 0, &pr), 1);

	/* int64 exactly, through the API. */
	assert_int_equal(store_price_set(fx.st, "max", INT64_MAX, INT64_MAX,
	    INT64_MAX, INT64_MAX, &v), 0);
	assert_int_equal(store_price_get(fx.st, "max", 0, &pr), 0);
	assert_true(pr.input == INT64_MAX && pr.output == INT64_MAX &&
	    pr.cached_input == INT64_MAX && pr.cache_write == INT64_MAX);
	assert_int_equal(store_price_set(fx.st, "max", INT64_MAX - 1, 0, 0, 0,
	    &v), 0);
	assert_true(v == 2);
	assert_int_equal(store_price_get(fx.st, "max", 0, &pr), 0);
	assert_true(pr.input == INT64_MAX - 1);

	/* Refusals change nothing. */
	v = 99;
	assert_int_equal(store_price_set(fx.st, "gpt-4o", -1, 0, 0, 0, &v),
	    -1);
	assert_non_null(strstr(store_errmsg(fx.st), ">= 0"));
	assert_int_equal(store_price_set(fx.st, "gpt-4o", 0, 0, 0, INT64_MIN,
	    &v), -1);
	assert_int_equal(store_price_set(fx.st, "", 1, 1, 0, 0, &v), -1);
	assert_int_equal(store_price_set(fx.st, "a b", 1, 1, 0, 0, &v), -1);
	assert_int_equal(store_price_set(fx.st, "a,b", 1, 1, 0, 0, &v), -1);
	assert_int_equal(store_price_set(fx.st, "caf\xc3\xa9", 1, 1, 0, 0,
	    &v), -1);
	assert_int_equal(store_price_set(fx.st, NULL, 1, 1, 0, 0, &v), -1);
	assert_int_equal(store_price_set(fx.st, "m", 1, 1, 0, 0, NULL), -1);
	memset(model, 'm', sizeof(model) - 1);
	model[sizeof(model) - 1] = '\0';		/* 128 bytes: too long */
	assert_int_equal(store_price_set(fx.st, model, 1, 1, 0, 0, &v), -1);
	model[STORE_MODEL_MAX] = '\0';		/* 127: fine */
	assert_int_equal(store_price_set(fx.st, model, 1, 1, 0, 0, &v), 0);
	assert_true(v == 1);
	assert_int_equal(store_price_get(fx.st, "gpt-4o", -1, &pr), -1);
	assert_int_equal(store_price_get(fx.st, "a b", 0, &pr), -1);
	assert_int_equal(store_price_get(fx.st, "gpt-4o", 0, NULL), -1);
	assert_int_equal(store_price_list(fx.st, NULL, NULL), -1);
	assert_int_equal(store_price_get(fx.st, "gpt-4o", 0, &pr), 0);
	assert_true(pr.version == 3);
	memset(&seen, 0, sizeof(seen));
	assert_int_equal(store_price_list(fx.st, price_cb, &seen), 0);
	assert_int_equal(seen.n, 4);
}


/* Charges: reservations within quota only, exact used, idempotent settling. */
static int64_t
used_of(const char *hash)
{
	struct store_token t;

	assert_int_equal(store_token_get_by_hash(fx.st, hash, &t), 0);
	return t.used_micros;
}

static void
test_charges(void **state)
{
	char h1[65], h2[65], n[32];
	uint64_t t1, t2;
	struct store_charge c;
	struct store_charge_usage u;

	(void)state;
	memset(h1, 'c', 64);
	h1[64] = '\0';
	memset(h2, 'd', 64);
	h2[64] = '\0';
	assert_int_equal(store_token_create(fx.st, "q", h1, 1000, "", 0, &t1), 0);
	assert_int_equal(store_token_create(fx.st, "u", h2, STORE_QUOTA_UNLIMITED,
	    "", 0, &t2), 0);

	/* Interleaved reservations of one token: never past its quota. */
	assert_int_equal(store_charge_reserve(fx.st, t1, "r1", 400), 0);
	assert_int_equal(store_charge_reserve(fx.st, t1, "r2", 400), 0);
	assert_int_equal(store_charge_reserve(fx.st, t1, "r3", 400), 1);
	assert_true(used_of(h1) == 800);
	assert_int_equal(store_charge_get(fx.st, "r3", &c), 1);
	/* A repeated reserve changes nothing. */
	assert_int_equal(store_charge_reserve(fx.st, t1, "r1", 400), 0);
	assert_true(used_of(h1) == 800);
	/* Exactly up to the quota is allowed; a zero estimate too. */
	assert_int_equal(store_charge_reserve(fx.st, t1, "r4", 200), 0);
	assert_true(used_of(h1) == 1000);
	assert_int_equal(store_charge_reserve(fx.st, t1, "r5", 1), 1);
	assert_int_equal(store_charge_reserve(fx.st, t1, "r6", 0), 0);

	{
		int64_t res = -1, aw = -1, lag = -1;

		assert_int_equal(store_backlog(fx.st, &res, &aw, &lag), 0);
		assert_true(res == 4 && aw == 0 && lag >= 0 && lag < 60);
	}
	/* Post: the real amount replaces the reservation, once. */
	memset(&u, 0, sizeof(u));
	snprintf(u.model, sizeof(u.model), "gpt-4o");
	u.input_tokens = 10;
	u.output_tokens = 4;
	u.price_version = 3;
	u.amount = 150;
	assert_int_equal(store_charge_settle(fx.st, "r1", &u), 0);
	assert_true(used_of(h1) == 750);
	u.amount = 999;
	assert_int_equal(store_charge_settle(fx.st, "r1", &u), 1);
	assert_int_equal(store_charge_settle(fx.st, "r1", NULL), 1);
	assert_true(used_of(h1) == 750);
	assert_int_equal(store_charge_get(fx.st, "r1", &c), 0);
	assert_string_equal(c.state, "posted");
	assert_true(c.reserved == 400 && c.amount == 150 && c.token_id == t1 &&
	    c.u.input_tokens == 10 && c.u.output_tokens == 4 &&
	    c.u.price_version == 3);
	assert_string_equal(c.u.model, "gpt-4o");

	/* Void: the reservation goes back, once. */
	assert_int_equal(store_charge_settle(fx.st, "r2", NULL), 0);
	assert_true(used_of(h1) == 350);
	assert_int_equal(store_charge_settle(fx.st, "r2", NULL), 1);
	u.amount = 5;
	assert_int_equal(store_charge_settle(fx.st, "r2", &u), 1);
	assert_true(used_of(h1) == 350);
	assert_int_equal(store_charge_get(fx.st, "r2", &c), 0);
	assert_string_equal(c.state, "voided");
	/* Unknown request: nothing. */
	assert_int_equal(store_charge_settle(fx.st, "nope", NULL), 1);

	/* The real cost is charged even past the quota. */
	u.amount = 900;
	assert_int_equal(store_charge_settle(fx.st, "r4", &u), 0);
	assert_true(used_of(h1) == 1050);
	assert_int_equal(store_charge_settle(fx.st, "r6", NULL), 0);
	assert_true(used_of(h1) == 1050);
	assert_int_equal(store_charge_reserve(fx.st, t1, "r7", 0), 1);

	/* Unlimited tokens, unknown tokens, bad input. */
	assert_int_equal(store_charge_reserve(fx.st, t2, "u1",
	    INT64_MAX / 2), 0);
	assert_int_equal(store_charge_settle(fx.st, "u1", NULL), 0);
	assert_true(used_of(h2) == 0);
	assert_int_equal(store_charge_reserve(fx.st, 99999, "x1", 0), 1);

	/* An unlimited token's reservation its gateway did not wait for:
	 * the row alone, of 0; used moves only with the post. */
	assert_int_equal(store_charge_reserve_unlimited(fx.st, t2, "w1"), 0);
	assert_true(used_of(h2) == 0);
	assert_int_equal(store_charge_get(fx.st, "w1", &c), 0);
	assert_string_equal(c.state, "reserved");
	assert_true(c.reserved == 0 && c.token_id == t2);
	assert_int_equal(store_charge_reserve_unlimited(fx.st, t2, "w1"), 1);
	u.amount = 77;
	assert_int_equal(store_charge_settle(fx.st, "w1", &u), 0);
	assert_true(used_of(h2) == 77);
	assert_int_equal(store_charge_settle(fx.st, "w1", &u), 1);
	assert_true(used_of(h2) == 77);
	/* A token with a quota, an unknown one, bad input: not made. */
	assert_int_equal(store_charge_reserve_unlimited(fx.st, t1, "w2"), 1);
	assert_int_equal(store_charge_get(fx.st, "w2", &c), 1);
	assert_int_equal(store_charge_reserve_unlimited(fx.st, 99999, "w3"),
	    1);
	assert_int_equal(store_charge_reserve_unlimited(fx.st, t2, ""), -1);
	assert_int_equal(store_charge_reserve(fx.st, t1, "", 0), -1);
	assert_int_equal(store_charge_reserve(fx.st, t1, "ok", -1), -1);
	assert_int_equal(store_charge_reserve(fx.st, t1, "has space", 0), -1);
	u.amount = -1;
	assert_int_equal(store_charge_settle(fx.st, "r3", &u), -1);
	assert_int_equal(raw("SELECT COUNT(*) FROM charges WHERE state = "
	    "'reserved'", n, sizeof(n)), 0);
	assert_string_equal(n, "0");
}

/* ---- the ledger (migration 4) --------------------------------------------- */

/* The hub's signing key of this run (main). */
static unsigned char hub_pk[crypto_sign_PUBLICKEYBYTES];
static unsigned char hub_sk[crypto_sign_SECRETKEYBYTES];

static uint64_t
add_token(const char *secret, int64_t quota, char hex[65])
{
	uint64_t id = 0;

	hash_of(secret, hex);
	if (store_token_create(fx.st, secret, hex, quota, "", 0, &id) != 0)
		fail_msg("token %s: %s", secret, store_errmsg(fx.st));
	return id;
}

static struct store_charge_usage
usage(const char *model, int64_t in, int64_t out, int64_t cached,
    int64_t cw, int64_t version, int64_t amount)
{
	struct store_charge_usage u;

	memset(&u, 0, sizeof(u));
	snprintf(u.model, sizeof(u.model), "%s", model);
	u.input_tokens = in;
	u.output_tokens = out;
	u.cached_tokens = cached;
	u.cache_write_tokens = cw;
	u.price_version = version;
	u.amount = amount;
	return u;
}

static void
reserve(uint64_t token, const char *req, int64_t est)
{
	if (store_charge_reserve(fx.st, token, req, est) != 0)
		fail_msg("reserve %s: %s", req, store_errmsg(fx.st));
}

static void
post(const char *req, uint64_t agent, const struct store_charge_usage *u,
    int reported, struct ledger_entry *out)
{
	if (store_charge_post(fx.st, req, agent, u, reported, hub_sk, out) != 0)
		fail_msg("post %s: %s", req, store_errmsg(fx.st));
}

/* Collects a chain (store_ledger_list). */
struct chain {
	size_t			n;
	struct ledger_entry	e[512];
};

static int
chain_cb(const struct ledger_entry *e, void *arg)
{
	struct chain *c = arg;

	if (c->n < sizeof(c->e) / sizeof(c->e[0]))
		c->e[c->n] = *e;
	c->n++;
	return 0;
}

/* Walks agent's whole chain: every link and signature holds; its length. */
static size_t
verify_chain(struct store *st, uint64_t agent)
{
	static struct chain c;
	char why[128], head[65];
	uint64_t seq = 99;
	size_t i;

	memset(&c, 0, sizeof(c));
	assert_int_equal(store_ledger_list(st, agent, 0, 0, chain_cb, &c), 0);
	assert_true(c.n <= sizeof(c.e) / sizeof(c.e[0]));
	for (i = 0; i < c.n; i++) {
		if (ledger_check_link(i == 0 ? NULL : &c.e[i - 1], &c.e[i],
		    hub_pk, why, sizeof(why)) != 0)
			fail_msg("agent %llu, entry %zu: %s",
			    (unsigned long long)agent, i, why);
		assert_true(c.e[i].agent_id == agent);
	}
	assert_int_equal(store_ledger_head(st, agent, &seq, head), 0);
	assert_true(seq == c.n);
	assert_string_equal(head, c.n == 0 ? LEDGER_GENESIS :
	    c.e[c.n - 1].hash);
	return c.n;
}

static int
same_entry(const struct ledger_entry *a, const struct ledger_entry *b)
{
	return a->agent_id == b->agent_id && a->seq == b->seq &&
	    strcmp(a->prev_hash, b->prev_hash) == 0 &&
	    strcmp(a->hash, b->hash) == 0 &&
	    strcmp(a->request_id, b->request_id) == 0 &&
	    a->token_id == b->token_id && strcmp(a->model, b->model) == 0 &&
	    a->input_tokens == b->input_tokens &&
	    a->output_tokens == b->output_tokens &&
	    a->cached_tokens == b->cached_tokens &&
	    a->cache_write_tokens == b->cache_write_tokens &&
	    a->price_version == b->price_version && a->amount == b->amount &&
	    a->created_at == b->created_at &&
	    a->agent_reported == b->agent_reported &&
	    memcmp(a->sig, b->sig, sizeof(a->sig)) == 0;
}

/* Post appends seq 1, 2, 3 linked by prev_hash, signed, exactly once. */
static void
test_ledger_post(void **state)
{
	struct ledger_entry e[4], got;
	struct store_charge_usage u;
	struct store_charge c;
	struct chain *ch;
	char h[65], why[128], head[65], n[32];
	uint64_t a, t, seq;
	int64_t t0 = (int64_t)time(NULL);

	(void)state;
	a = add_agent("served");
	t = add_token("ledger-tok", 100000, h);
	assert_int_equal(store_ledger_head(fx.st, a, &seq, head), 0);
	assert_true(seq == 0);
	assert_string_equal(head, LEDGER_GENESIS);

	reserve(t, "req-1", 500);
	reserve(t, "req-2", 500);
	reserve(t, "req-3", 500);
	assert_true(used_of(h) == 1500);
	u = usage("gpt-4o", 1000, 200, 300, 40, 2, 1234);
	snprintf(u.channel, sizeof(u.channel), "oa-main");
	post("req-1", a, &u, 0, &e[1]);
	assert_true(used_of(h) == 1000 + 1234);
	u = usage("gpt-4o-mini", 10, 20, 0, 0, 1, 0);
	post("req-2", a, &u, 1, &e[2]);
	/* A channel noted before, and a post without one, keeps it. */
	assert_int_equal(store_charge_set_channel(fx.st, "req-3", "oa-b"), 0);
	u = usage("gpt-4o", 1, 1, 0, 0, 0, 7);
	post("req-3", a, &u, 0, &e[3]);
	assert_true(used_of(h) == 1234 + 0 + 7);
	/* The post's UPDATE notes the channel that served it. */
	assert_int_equal(raw("SELECT channel FROM charges WHERE request_id = "
	    "'req-1'", n, sizeof(n)), 0);
	assert_string_equal(n, "oa-main");
	assert_int_equal(raw("SELECT channel FROM charges WHERE request_id = "
	    "'req-2'", n, sizeof(n)), 0);
	assert_string_equal(n, "");
	assert_int_equal(raw("SELECT channel FROM charges WHERE request_id = "
	    "'req-3'", n, sizeof(n)), 0);
	assert_string_equal(n, "oa-b");

	/* The entries as returned. */
	assert_true(e[1].seq == 1 && e[2].seq == 2 && e[3].seq == 3);
	assert_string_equal(e[1].prev_hash, LEDGER_GENESIS);
	assert_string_equal(e[2].prev_hash, e[1].hash);
	assert_string_equal(e[3].prev_hash, e[2].hash);
	assert_true(e[1].agent_id == a && e[1].token_id == t);
	assert_string_equal(e[1].request_id, "req-1");
	assert_string_equal(e[1].model, "gpt-4o");
	assert_true(e[1].input_tokens == 1000 && e[1].output_tokens == 200 &&
	    e[1].cached_tokens == 300 && e[1].cache_write_tokens == 40 &&
	    e[1].price_version == 2 && e[1].amount == 1234 &&
	    e[1].agent_reported == 0);
	assert_true(e[2].agent_reported == 1 && e[2].amount == 0);
	assert_true(e[1].created_at >= t0 &&
	    e[3].created_at <= (int64_t)time(NULL));
	assert_int_equal(ledger_check_link(NULL, &e[1], hub_pk, why,
	    sizeof(why)), 0);
	assert_int_equal(ledger_check_link(&e[1], &e[2], hub_pk, why,
	    sizeof(why)), 0);
	assert_int_equal(ledger_check_link(&e[2], &e[3], hub_pk, why,
	    sizeof(why)), 0);
	/* The store's entries are the same, signature included. */
	for (int i = 1; i <= 3; i++) {
		assert_int_equal(store_ledger_get(fx.st, a, (uint64_t)i, &got),
		    0);
		assert_true(same_entry(&got, &e[i]));
	}
	assert_int_equal(store_ledger_get(fx.st, a, 4, &got), 1);
	assert_int_equal(store_ledger_get(fx.st, a, 0, &got), 1);
	assert_int_equal(store_ledger_get(fx.st, a + 1, 1, &got), 1);
	assert_int_equal(store_ledger_get(fx.st, a, 1, NULL), -1);
	assert_true(verify_chain(fx.st, a) == 3);
	/* The signature is stored as standard base64. */
	assert_int_equal(raw("SELECT length(sig) FROM ledger WHERE seq = 1", n,
	    sizeof(n)), 0);
	assert_string_equal(n, "88");

	/* The charge rows. */
	assert_int_equal(store_charge_get(fx.st, "req-1", &c), 0);
	assert_string_equal(c.state, "posted");
	assert_true(c.agent_id == a && c.agent_reported == 0 &&
	    c.amount == 1234 && c.u.amount == 1234 && c.reserved == 500 &&
	    c.u.cache_write_tokens == 40 && c.u.cached_tokens == 300 &&
	    c.u.price_version == 2 && c.awaiting_since == 0);
	assert_int_equal(store_charge_get(fx.st, "req-2", &c), 0);
	assert_true(c.agent_reported == 1);
	assert_string_equal(c.u.model, "gpt-4o-mini");

	/* Posting again, settling or voiding changes nothing. */
	u = usage("gpt-4o", 1, 1, 0, 0, 0, 99999);
	memset(&got, 0x5a, sizeof(got));
	assert_int_equal(store_charge_post(fx.st, "req-2", a, &u, 0, hub_sk,
	    &got), 1);
	assert_int_equal(store_charge_post(fx.st, "req-2", a, &u, 0, hub_sk,
	    NULL), 1);
	assert_int_equal(store_charge_settle(fx.st, "req-2", &u), 1);
	assert_int_equal(store_charge_settle(fx.st, "req-2", NULL), 1);
	assert_int_equal(store_charge_post(fx.st, "never-reserved", a, &u, 0,
	    hub_sk, NULL), 1);
	assert_true(used_of(h) == 1241);
	assert_true(verify_chain(fx.st, a) == 3);
	/* A voided charge cannot be posted either. */
	reserve(t, "req-v", 10);
	assert_int_equal(store_charge_settle(fx.st, "req-v", NULL), 0);
	assert_int_equal(store_charge_post(fx.st, "req-v", a, &u, 0, hub_sk,
	    NULL), 1);
	assert_true(used_of(h) == 1241);

	/* list: after and limit. */
	ch = calloc(1, sizeof(*ch));
	assert_non_null(ch);
	assert_int_equal(store_ledger_list(fx.st, a, 1, 1, chain_cb, ch), 0);
	assert_true(ch->n == 1 && ch->e[0].seq == 2);
	ch->n = 0;
	assert_int_equal(store_ledger_list(fx.st, a, 1, 0, chain_cb, ch), 0);
	assert_true(ch->n == 2 && ch->e[1].seq == 3);
	ch->n = 0;
	assert_int_equal(store_ledger_list(fx.st, a, 3, 0, chain_cb, ch), 0);
	assert_true(ch->n == 0);
	assert_int_equal(store_ledger_list(fx.st, a, 0, 0, NULL, NULL), -1);
	assert_int_equal(store_ledger_list(fx.st, 0, 0, 0, chain_cb, ch), -1);
	assert_int_equal(store_ledger_list(fx.st, a, UINT64_MAX, 0, chain_cb,
	    ch), -1);
	free(ch);

	/* A post whose reservation row was lost (billing answered it from a
	 * batch that a crash took) but that names its token: the row is made
	 * again, reserving 0, and the real cost charged, once. */
	u.token_id = t;
	assert_int_equal(store_charge_post(fx.st, "lost-reservation", a, &u, 0,
	    hub_sk, NULL), 0);
	assert_int_equal(store_charge_get(fx.st, "lost-reservation", &c), 0);
	assert_string_equal(c.state, "posted");
	assert_true(c.reserved == 0 && c.amount == 99999 && c.token_id == t);
	assert_true(used_of(h) == 1241 + 99999);
	assert_int_equal(store_charge_post(fx.st, "lost-reservation", a, &u, 0,
	    hub_sk, NULL), 1);
	assert_true(used_of(h) == 1241 + 99999);
	assert_true(verify_chain(fx.st, a) == 4);
	/* The voided one stays voided; a token that does not exist makes no
	 * row. */
	assert_int_equal(store_charge_post(fx.st, "req-v", a, &u, 0, hub_sk,
	    NULL), 1);
	u.token_id = t + 1000;
	assert_int_equal(store_charge_post(fx.st, "lost-2", a, &u, 0, hub_sk,
	    NULL), 1);
	assert_int_equal(store_charge_get(fx.st, "lost-2", &c), 1);
	assert_true(used_of(h) == 1241 + 99999);
}

/* Refusals of store_charge_post: nothing changes. */
static void
test_ledger_post_bad_input(void **state)
{
	struct store_charge_usage u, bad;
	struct store_charge c;
	char h[65], head[65], longm[STORE_MODEL_MAX + 1];
	uint64_t a, t, seq;

	(void)state;
	a = add_agent("strict");
	t = add_token("strict-tok", STORE_QUOTA_UNLIMITED, h);
	reserve(t, "r1", 100);
	reserve(t, "has,comma", 100);
	u = usage("m", 1, 1, 0, 0, 1, 5);

	assert_int_equal(store_charge_post(NULL, "r1", a, &u, 0, hub_sk, NULL),
	    -1);
	assert_int_equal(store_charge_post(fx.st, "r1", a, NULL, 0, hub_sk,
	    NULL), -1);
	assert_int_equal(store_charge_post(fx.st, NULL, a, &u, 0, hub_sk,
	    NULL), -1);
	assert_int_equal(store_charge_post(fx.st, "", a, &u, 0, hub_sk, NULL),
	    -1);
	assert_int_equal(store_charge_post(fx.st, "a b", a, &u, 0, hub_sk,
	    NULL), -1);
	/* A request id the ledger cannot hold. */
	assert_int_equal(store_charge_post(fx.st, "has,comma", a, &u, 0,
	    hub_sk, NULL), -1);
	assert_int_equal(store_charge_post(fx.st, "r1", 0, &u, 0, hub_sk,
	    NULL), -1);
	assert_int_equal(store_charge_post(fx.st, "r1", UINT64_MAX, &u, 0,
	    hub_sk, NULL), -1);
	assert_int_equal(store_charge_post(fx.st, "r1", a, &u, 2, hub_sk,
	    NULL), -1);
	assert_int_equal(store_charge_post(fx.st, "r1", a, &u, -1, hub_sk,
	    NULL), -1);
	for (const char *const *m = (const char *const[]){ "", "a b", "a,b",
	    "q\"uote", "caf\xc3\xa9", "tab\t", NULL }; *m; m++) {
		bad = u;
		snprintf(bad.model, sizeof(bad.model), "%s", *m);
		assert_int_equal(store_charge_post(fx.st, "r1", a, &bad, 0,
		    hub_sk, NULL), -1);
	}
	bad = u;
	memset(bad.model, 'm', sizeof(bad.model));	/* no NUL at all */
	assert_int_equal(store_charge_post(fx.st, "r1", a, &bad, 0, hub_sk,
	    NULL), -1);
	for (int f = 0; f < 6; f++) {
		bad = u;
		switch (f) {
		case 0: bad.input_tokens = -1; break;
		case 1: bad.output_tokens = -1; break;
		case 2: bad.cached_tokens = INT64_MIN; break;
		case 3: bad.cache_write_tokens = -1; break;
		case 4: bad.price_version = -1; break;
		default: bad.amount = -1; break;
		}
		assert_int_equal(store_charge_post(fx.st, "r1", a, &bad, 0,
		    hub_sk, NULL), -1);
	}
	/* An agent that does not exist: the charge stays reserved. */
	assert_int_equal(store_charge_post(fx.st, "r1", a + 100, &u, 0, hub_sk,
	    NULL), -1);
	assert_non_null(strstr(store_errmsg(fx.st), "agent"));
	assert_int_equal(store_charge_get(fx.st, "r1", &c), 0);
	assert_string_equal(c.state, "reserved");
	assert_true(used_of(h) == 200);
	assert_int_equal(store_ledger_head(fx.st, a, &seq, head), 0);
	assert_true(seq == 0);

	/* The longest model goes in. */
	memset(longm, 'm', sizeof(longm) - 1);
	longm[sizeof(longm) - 1] = '\0';
	bad = usage(longm, 0, 0, 0, 0, 0, 0);
	post("r1", a, &bad, 0, NULL);
	assert_true(used_of(h) == 100);
	assert_true(verify_chain(fx.st, a) == 1);

	/* Head, ack and acked of nobody. */
	assert_int_equal(store_ledger_head(fx.st, a + 100, &seq, head), -1);
	assert_int_equal(store_ledger_head(fx.st, 0, &seq, head), -1);
	assert_int_equal(store_ledger_head(fx.st, a, NULL, head), -1);
	assert_int_equal(store_ledger_head(fx.st, a, &seq, NULL), -1);
	assert_int_equal(store_ledger_head(NULL, a, &seq, head), -1);
}

/* Two agents' chains are independent. */
static void
test_ledger_two_agents(void **state)
{
	struct ledger_entry e;
	struct store_charge_usage u;
	char h[65], req[32];
	uint64_t a, b, t;
	int i;

	(void)state;
	a = add_agent("alpha");
	b = add_agent("beta");
	t = add_token("shared", STORE_QUOTA_UNLIMITED, h);
	u = usage("m", 5, 5, 0, 0, 1, 10);
	for (i = 0; i < 7; i++) {
		snprintf(req, sizeof(req), "q%d", i);
		reserve(t, req, 10);
		post(req, i % 3 == 0 ? b : a, &u, 0, &e);
		if (i == 0) {
			/* b's first entry starts from the genesis. */
			assert_true(e.seq == 1);
			assert_string_equal(e.prev_hash, LEDGER_GENESIS);
		}
	}
	assert_true(verify_chain(fx.st, a) == 4);
	assert_true(verify_chain(fx.st, b) == 3);
	assert_true(used_of(h) == 70);
}

struct awaited {
	int			n;
	struct store_charge	c[8];
};

static int
await_cb(const struct store_charge *c, void *arg)
{
	struct awaited *w = arg;

	if (w->n < 8)
		w->c[w->n] = *c;
	w->n++;
	return 0;
}

/* Await parks a reservation with the hub's estimate; post takes it. */
static void
test_ledger_await(void **state)
{
	struct store_charge_usage est, rep;
	struct store_charge c;
	struct ledger_entry e;
	struct awaited w;
	char h[65];
	uint64_t a, b, t;
	int64_t now = (int64_t)time(NULL);

	(void)state;
	a = add_agent("streamer");
	b = add_agent("other");
	t = add_token("await-tok", 10000, h);
	reserve(t, "s1", 300);
	reserve(t, "s2", 300);
	reserve(t, "s3", 300);
	est = usage("gpt-4o", 100, 50, 0, 0, 4, 250);

	assert_int_equal(store_charge_await(fx.st, "s1", a, &est), 0);
	assert_int_equal(store_charge_get(fx.st, "s1", &c), 0);
	assert_string_equal(c.state, "awaiting");
	assert_true(c.agent_id == a && c.amount == 250 && c.u.amount == 250 &&
	    c.u.input_tokens == 100 && c.u.output_tokens == 50 &&
	    c.u.price_version == 4 && c.reserved == 300 &&
	    c.awaiting_since >= now && c.awaiting_since <= (int64_t)time(NULL));
	assert_string_equal(c.u.model, "gpt-4o");
	/* The reservation still holds the quota. */
	assert_true(used_of(h) == 900);
	/* The backlog counts each open state from its own index. */
	{
		int64_t res = -1, aw = -1, lag = -1;

		assert_int_equal(store_backlog(fx.st, &res, &aw, &lag), 0);
		assert_true(res == 2 && aw == 1 && lag >= 0 && lag < 60);
	}
	/* Only a reserved row is parked. */
	assert_int_equal(store_charge_await(fx.st, "s1", a, &est), 1);
	assert_int_equal(store_charge_await(fx.st, "nope", a, &est), 1);
	assert_int_equal(store_charge_await(fx.st, "s2", a + 100, &est), -1);
	assert_int_equal(store_charge_await(fx.st, "s2", 0, &est), -1);
	assert_int_equal(store_charge_await(fx.st, "s2", a, NULL), -1);
	est.amount = -1;
	assert_int_equal(store_charge_await(fx.st, "s2", a, &est), -1);
	est.amount = 250;
	assert_int_equal(store_charge_await(fx.st, "", a, &est), -1);
	assert_int_equal(store_charge_get(fx.st, "s2", &c), 0);
	assert_string_equal(c.state, "reserved");

	/* Listed once it has waited since before `before`. */
	memset(&w, 0, sizeof(w));
	assert_int_equal(store_charge_list_awaiting(fx.st, now + 3600, 0,
	    await_cb, &w), 0);
	assert_int_equal(w.n, 1);
	assert_string_equal(w.c[0].request_id, "s1");
	assert_true(w.c[0].agent_id == a && w.c[0].u.amount == 250);
	memset(&w, 0, sizeof(w));
	assert_int_equal(store_charge_list_awaiting(fx.st, c.created_at - 10,
	    0, await_cb, &w), 0);
	assert_int_equal(w.n, 0);
	assert_int_equal(store_charge_list_awaiting(fx.st, now, 0, NULL, NULL),
	    -1);

	/* Oldest first, at most limit. */
	assert_int_equal(store_charge_await(fx.st, "s2", b, &est), 0);
	assert_int_equal(store_charge_await(fx.st, "s3", a, &est), 0);
	assert_int_equal(raw("UPDATE charges SET awaiting_since = 1000 WHERE "
	    "request_id = 's3'", NULL, 0), 0);
	assert_int_equal(raw("UPDATE charges SET awaiting_since = 2000 WHERE "
	    "request_id = 's2'", NULL, 0), 0);
	memset(&w, 0, sizeof(w));
	assert_int_equal(store_charge_list_awaiting(fx.st, now + 3600, 2,
	    await_cb, &w), 0);
	assert_int_equal(w.n, 2);
	assert_string_equal(w.c[0].request_id, "s3");
	assert_string_equal(w.c[1].request_id, "s2");
	memset(&w, 0, sizeof(w));
	assert_int_equal(store_charge_list_awaiting(fx.st, 1500, 0, await_cb,
	    &w), 0);
	assert_int_equal(w.n, 1);

	/* Another agent cannot post it; its own agent can, with its report. */
	rep = usage("gpt-4o", 120, 60, 10, 5, 4, 280);
	assert_int_equal(store_charge_post(fx.st, "s1", b, &rep, 1, hub_sk,
	    NULL), -1);
	assert_non_null(strstr(store_errmsg(fx.st), "awaits"));
	assert_int_equal(store_charge_get(fx.st, "s1", &c), 0);
	assert_string_equal(c.state, "awaiting");
	post("s1", a, &rep, 1, &e);
	assert_true(e.seq == 1 && e.agent_reported == 1 && e.amount == 280 &&
	    e.cache_write_tokens == 5);
	assert_int_equal(store_charge_get(fx.st, "s1", &c), 0);
	assert_string_equal(c.state, "posted");
	assert_true(c.agent_reported == 1 && c.awaiting_since == 0 &&
	    c.amount == 280 && c.u.input_tokens == 120);
	assert_true(used_of(h) == 280 + 300 + 300);
	assert_int_equal(store_charge_post(fx.st, "s1", a, &rep, 1, hub_sk,
	    NULL), 1);

	/* Posted at the hub's estimate when the agent never reports. */
	memset(&w, 0, sizeof(w));
	assert_int_equal(store_charge_list_awaiting(fx.st, now + 3600, 0,
	    await_cb, &w), 0);
	assert_int_equal(w.n, 2);
	assert_string_equal(w.c[1].request_id, "s2");
	post("s2", w.c[1].agent_id, &w.c[1].u, 0, &e);
	assert_true(e.agent_id == b && e.seq == 1 && e.amount == 250);
	/* An awaiting charge can be voided too. */
	assert_int_equal(store_charge_settle(fx.st, "s3", NULL), 0);
	assert_int_equal(store_charge_get(fx.st, "s3", &c), 0);
	assert_string_equal(c.state, "voided");
	assert_true(c.amount == 0 && c.awaiting_since == 0);
	assert_true(used_of(h) == 280 + 250);
	memset(&w, 0, sizeof(w));
	assert_int_equal(store_charge_list_awaiting(fx.st, now + 3600, 0,
	    await_cb, &w), 0);
	assert_int_equal(w.n, 0);
	assert_true(verify_chain(fx.st, a) == 1);
	assert_true(verify_chain(fx.st, b) == 1);
}

/* Reservations whose gateway is gone are voided; nothing else is. */
/*
 * Group commit: inside a batch a refused or repeated call undoes only
 * itself; nothing is visible to another connection before the batch
 * commits, everything after; a batch can follow a batch.  (A no-op batch
 * on PostgreSQL: the same calls, each its own transaction.)
 */
/*
 * The backlog is read every few seconds for the life of the hub: no step
 * of its plan may walk the whole charges table or its index on created_at
 * (SQLite; the rows are many and posted, none awaiting, as in a busy hub).
 */
static void
test_backlog_plan(void **state)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *s = NULL;
	char out[64], h[65], sql[512];
	int n = 0, bad = 0;
	int64_t res = -1, aw = -1, lag = -1;
	uint64_t t;

	(void)state;
	if (fx.pg)
		skip();
	t = add_token("plan-tok", 0, h);
	snprintf(sql, sizeof(sql), "WITH RECURSIVE k(i) AS (SELECT 1 UNION "
	    "ALL SELECT i + 1 FROM k WHERE i < 5000) INSERT INTO charges "
	    "(request_id, token_id, reserved, amount, state, created_at) "
	    "SELECT 'p' || i, %" PRIu64 ", 1, 1, 'posted', i FROM k", t);
	assert_int_equal(raw(sql, NULL, 0), 0);
	assert_int_equal(raw("ANALYZE", NULL, 0), 0);
	assert_int_equal(raw("SELECT COUNT(*) FROM charges", out, sizeof(out)),
	    0);
	assert_string_equal(out, "5000");
	assert_int_equal(store_backlog(fx.st, &res, &aw, &lag), 0);
	assert_true(res == 0 && aw == 0 && lag == 0);

	assert_int_equal(sqlite3_open_v2(fx.path, &db, SQLITE_OPEN_READONLY,
	    NULL), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, "EXPLAIN QUERY PLAN "
	    STORE_BACKLOG_SQL, -1, &s, NULL), SQLITE_OK);
	while (sqlite3_step(s) == SQLITE_ROW) {
		const char *d = (const char *)sqlite3_column_text(s, 3);

		n++;
		if (d != NULL && strstr(d, "charges") != NULL &&
		    (strstr(d, "charges_created") != NULL ||
		    (strstr(d, "charges_reserved") == NULL &&
		    strstr(d, "charges_awaiting") == NULL))) {
			print_message("backlog plan step: %s\n", d);
			bad++;
		}
	}
	sqlite3_finalize(s);
	sqlite3_close(db);
	assert_true(n > 0);
	assert_int_equal(bad, 0);
}

static void
test_batch(void **state)
{
	char h[65], err[512];
	uint64_t t;
	struct store *other;
	struct store_token tk;
	struct store_charge_usage u;

	(void)state;
	memset(h, 'b', 64);
	h[64] = '\0';
	assert_int_equal(store_token_create(fx.st, "b", h, 1000, "", 0, &t), 0);
	other = store_open(fx.url, err, sizeof(err));
	assert_non_null(other);
	assert_int_equal(store_batch_begin(fx.st), 0);
	assert_int_equal(store_batch_begin(fx.st), fx.pg ? 0 : -1);
	assert_int_equal(store_charge_reserve(fx.st, t, "b1", 600), 0);
	assert_int_equal(store_charge_reserve(fx.st, t, "b2", 600), 1);
	assert_int_equal(store_charge_reserve(fx.st, t, "b1", 600), 0);
	assert_int_equal(store_charge_reserve(fx.st, t, "b3", 300), 0);
	memset(&u, 0, sizeof(u));
	snprintf(u.model, sizeof(u.model), "m");
	u.amount = 100;
	assert_int_equal(store_charge_settle(fx.st, "b1", &u), 0);
	assert_int_equal(store_charge_settle(fx.st, "b1", &u), 1);
	assert_true(used_of(h) == 400);
	assert_int_equal(store_token_get_by_hash(other, h, &tk), 0);
	if (!fx.pg)
		assert_true(tk.used_micros == 0);	/* not committed yet */
	assert_int_equal(store_batch_end(fx.st), 0);
	assert_int_equal(store_token_get_by_hash(other, h, &tk), 0);
	assert_true(tk.used_micros == 400);
	assert_int_equal(store_batch_begin(fx.st), 0);
	assert_int_equal(store_charge_settle(fx.st, "b3", NULL), 0);
	assert_int_equal(store_batch_end(fx.st), 0);
	assert_int_equal(store_token_get_by_hash(other, h, &tk), 0);
	assert_true(tk.used_micros == 100);
	assert_int_equal(store_batch_end(fx.st), 0);	/* none open: no-op */
	store_close(other);
}

static int
count_charges(const struct store_charge *c, void *arg)
{
	(void)c;
	(*(int *)arg)++;
	return 0;
}

/*
 * A reservation its gateway never posted: an agent's report is kept on
 * it (first one only, and only while reserved) and listed by
 * store_charge_list_stale with it; a post replaces it.
 */
static void
test_note_report(void **state)
{
	char h[65];
	uint64_t t, a1, a2;
	struct store_charge c;
	struct store_charge_usage u;
	int n = 0;

	(void)state;
	memset(h, 'e', 64);
	h[64] = '\0';
	assert_int_equal(store_token_create(fx.st, "n", h, -1, "", 0, &t), 0);
	a1 = add_agent("na1");
	a2 = add_agent("na2");
	assert_int_equal(store_charge_reserve(fx.st, t, "s1", 50), 0);
	assert_int_equal(store_charge_reserve(fx.st, t, "s2", 50), 0);
	memset(&u, 0, sizeof(u));
	snprintf(u.model, sizeof(u.model), "gpt-4o");
	u.input_tokens = 12;
	u.output_tokens = 7;
	assert_int_equal(store_charge_note_report(fx.st, "s1", a1, &u), 0);
	u.output_tokens = 99;
	assert_int_equal(store_charge_note_report(fx.st, "s1", a2, &u), 1);
	assert_int_equal(store_charge_note_report(fx.st, "nope", a1, &u), 1);
	assert_int_equal(store_charge_note_report(fx.st, "s1", 0, &u), -1);
	assert_int_equal(store_charge_get(fx.st, "s1", &c), 0);
	assert_string_equal(c.state, "reserved");
	assert_true(c.agent_id == a1 && c.u.input_tokens == 12 &&
	    c.u.output_tokens == 7);
	assert_int_equal(store_charge_list_stale(fx.st, INT64_MAX, 0,
	    count_charges, &n), 0);
	assert_int_equal(n, 2);
	n = 0;
	assert_int_equal(store_charge_list_stale(fx.st, 0, 0, count_charges,
	    &n), 0);
	assert_int_equal(n, 0);
	/* Posted: no longer stale, and a report cannot touch it. */
	u.amount = 5;
	assert_int_equal(store_charge_settle(fx.st, "s1", &u), 0);
	assert_int_equal(store_charge_note_report(fx.st, "s1", a1, &u), 1);
	n = 0;
	assert_int_equal(store_charge_list_stale(fx.st, INT64_MAX, 0,
	    count_charges, &n), 0);
	assert_int_equal(n, 1);
}

static void
test_charge_void_stale(void **state)
{
	struct store_charge_usage u, est;
	struct store_charge c;
	char h1[65], h2[65];
	uint64_t a, t1, t2;
	int64_t n = -1;

	(void)state;
	a = add_agent("stale");
	t1 = add_token("stale-1", STORE_QUOTA_UNLIMITED, h1);
	t2 = add_token("stale-2", STORE_QUOTA_UNLIMITED, h2);
	reserve(t1, "old-1", 100);
	reserve(t1, "old-2", 20);
	reserve(t2, "old-3", 3);
	reserve(t1, "old-posted", 50);
	reserve(t1, "old-await", 60);
	reserve(t1, "fresh", 7);
	u = usage("m", 1, 1, 0, 0, 1, 40);
	post("old-posted", a, &u, 0, NULL);
	est = u;
	assert_int_equal(store_charge_await(fx.st, "old-await", a, &est), 0);
	assert_int_equal(raw("UPDATE charges SET created_at = 1000 WHERE "
	    "request_id LIKE 'old-%'", NULL, 0), 0);
	assert_true(used_of(h1) == 100 + 20 + 40 + 60 + 7);
	assert_true(used_of(h2) == 3);

	assert_int_equal(store_charge_void_stale(fx.st, (int64_t)time(NULL) -
	    60, &n), 0);
	assert_true(n == 3);
	assert_true(used_of(h1) == 40 + 60 + 7);
	assert_true(used_of(h2) == 0);
	for (const char *const *r = (const char *const[]){ "old-1", "old-2",
	    "old-3", NULL }; *r; r++) {
		assert_int_equal(store_charge_get(fx.st, *r, &c), 0);
		assert_string_equal(c.state, "voided");
	}
	assert_int_equal(store_charge_get(fx.st, "old-posted", &c), 0);
	assert_string_equal(c.state, "posted");
	assert_int_equal(store_charge_get(fx.st, "old-await", &c), 0);
	assert_string_equal(c.state, "awaiting");
	assert_int_equal(store_charge_get(fx.st, "fresh", &c), 0);
	assert_string_equal(c.state, "reserved");
	/* Again: nothing left; n may be NULL. */
	assert_int_equal(store_charge_void_stale(fx.st, (int64_t)time(NULL) -
	    60, &n), 0);
	assert_true(n == 0);
	assert_int_equal(store_charge_void_stale(fx.st, (int64_t)time(NULL) +
	    60, NULL), 0);
	assert_int_equal(store_charge_get(fx.st, "fresh", &c), 0);
	assert_string_equal(c.state, "voided");
	assert_true(used_of(h1) == 40 + 60);
	assert_int_equal(store_charge_void_stale(NULL, 0, &n), -1);
}

/* The agent's acknowledgement: the maximum, never past the chain. */
static void
test_ledger_ack(void **state)
{
	struct store_charge_usage u;
	char h[65];
	uint64_t a, t, seq = 99;

	(void)state;
	a = add_agent("acker");
	t = add_token("ack-tok", STORE_QUOTA_UNLIMITED, h);
	assert_int_equal(store_ledger_acked(fx.st, a, &seq), 0);
	assert_true(seq == 0);
	assert_int_equal(store_ledger_ack(fx.st, a, 0), 0);
	assert_int_equal(store_ledger_ack(fx.st, a, 1), -1);
	u = usage("m", 1, 1, 0, 0, 1, 1);
	reserve(t, "k1", 1);
	reserve(t, "k2", 1);
	post("k1", a, &u, 0, NULL);
	post("k2", a, &u, 0, NULL);
	assert_int_equal(store_ledger_ack(fx.st, a, 2), 0);
	assert_int_equal(store_ledger_acked(fx.st, a, &seq), 0);
	assert_true(seq == 2);
	assert_int_equal(store_ledger_ack(fx.st, a, 1), 0);
	assert_int_equal(store_ledger_acked(fx.st, a, &seq), 0);
	assert_true(seq == 2);
	assert_int_equal(store_ledger_ack(fx.st, a, 3), -1);
	assert_non_null(strstr(store_errmsg(fx.st), "past"));
	assert_int_equal(store_ledger_ack(fx.st, a, UINT64_MAX), -1);
	assert_int_equal(store_ledger_acked(fx.st, a, &seq), 0);
	assert_true(seq == 2);
	assert_int_equal(store_ledger_ack(fx.st, a + 100, 1), 1);
	assert_int_equal(store_ledger_ack(fx.st, 0, 1), 1);
	assert_int_equal(store_ledger_acked(fx.st, a + 100, &seq), 1);
	assert_int_equal(store_ledger_acked(fx.st, a, NULL), -1);
	assert_int_equal(store_ledger_ack(NULL, a, 1), -1);
}

struct disputed {
	int			n;
	struct store_dispute	d[8];
};

static int
dispute_cb(const struct store_dispute *d, void *arg)
{
	struct disputed *s = arg;

	if (s->n < 8)
		s->d[s->n] = *d;
	s->n++;
	return 0;
}

/* One dispute per (agent, request), about an entry that exists. */
static void
test_disputes(void **state)
{
	struct store_charge_usage u;
	struct store_dispute d, bad;
	struct ledger_entry e1, e2, eb;
	struct disputed s;
	char h[65];
	uint64_t a, b, t;
	int64_t now = (int64_t)time(NULL);

	(void)state;
	a = add_agent("grumpy");
	b = add_agent("calm");
	t = add_token("dispute-tok", STORE_QUOTA_UNLIMITED, h);
	u = usage("m", 1, 1, 0, 0, 1, 100);
	reserve(t, "d1", 1);
	reserve(t, "d2", 1);
	reserve(t, "d3", 1);
	post("d1", a, &u, 0, &e1);
	post("d2", a, &u, 0, &e2);
	post("d3", b, &u, 0, &eb);

	memset(&s, 0, sizeof(s));
	assert_int_equal(store_dispute_list(fx.st, dispute_cb, &s), 0);
	assert_int_equal(s.n, 0);

	memset(&d, 0, sizeof(d));
	d.agent_id = a;
	d.seq = e1.seq;
	snprintf(d.request_id, sizeof(d.request_id), "d1");
	d.hub_amount = 100;
	d.agent_amount = 90;
	memcpy(d.hub_hash, e1.hash, sizeof(d.hub_hash));
	snprintf(d.reason, sizeof(d.reason), "cost 90 by my prices (v1)");
	snprintf(d.status, sizeof(d.status), "accepted");	/* ignored */
	assert_int_equal(store_dispute_add(fx.st, &d), 0);
	/* Again, even in other words: already there. */
	snprintf(d.reason, sizeof(d.reason), "still wrong");
	d.agent_amount = 80;
	assert_int_equal(store_dispute_add(fx.st, &d), 1);
	/* The agent could not price it: -1; no hash given. */
	d.seq = e2.seq;
	snprintf(d.request_id, sizeof(d.request_id), "d2");
	d.agent_amount = -1;
	d.hub_hash[0] = '\0';
	d.reason[0] = '\0';
	assert_int_equal(store_dispute_add(fx.st, &d), 0);
	d.agent_id = b;
	d.seq = eb.seq;
	snprintf(d.request_id, sizeof(d.request_id), "d3");
	assert_int_equal(store_dispute_add(fx.st, &d), 0);

	memset(&s, 0, sizeof(s));
	assert_int_equal(store_dispute_list(fx.st, dispute_cb, &s), 0);
	assert_int_equal(s.n, 3);
	assert_true(s.d[0].id < s.d[1].id && s.d[1].id < s.d[2].id);
	assert_true(s.d[0].agent_id == a && s.d[0].seq == 1 &&
	    s.d[0].hub_amount == 100 && s.d[0].agent_amount == 90 &&
	    s.d[0].created_at >= now);
	assert_string_equal(s.d[0].request_id, "d1");
	assert_string_equal(s.d[0].hub_hash, e1.hash);
	assert_string_equal(s.d[0].reason, "cost 90 by my prices (v1)");
	assert_string_equal(s.d[0].status, "open");
	assert_true(s.d[1].agent_amount == -1);
	assert_string_equal(s.d[1].hub_hash, "");
	assert_true(s.d[2].agent_id == b);

	/* Refusals. */
	memset(&bad, 0, sizeof(bad));
	bad.agent_id = a;
	bad.seq = e1.seq;
	snprintf(bad.request_id, sizeof(bad.request_id), "d1");
	d = bad;
	d.seq = 0;
	assert_int_equal(store_dispute_add(fx.st, &d), -1);
	d = bad;
	d.seq = 3;		/* a has no entry 3 */
	assert_int_equal(store_dispute_add(fx.st, &d), -1);
	d = bad;
	d.seq = e2.seq;		/* entry 2 is not d1 */
	assert_int_equal(store_dispute_add(fx.st, &d), -1);
	d = bad;
	d.agent_id = b;		/* b has no entry for d1 */
	assert_int_equal(store_dispute_add(fx.st, &d), -1);
	d = bad;
	d.agent_id = 0;
	assert_int_equal(store_dispute_add(fx.st, &d), -1);
	d = bad;
	d.agent_id = a + 100;
	assert_int_equal(store_dispute_add(fx.st, &d), -1);
	d = bad;
	d.request_id[0] = '\0';
	assert_int_equal(store_dispute_add(fx.st, &d), -1);
	d = bad;
	memset(d.request_id, 'x', sizeof(d.request_id));
	assert_int_equal(store_dispute_add(fx.st, &d), -1);
	d = bad;
	d.hub_amount = -1;
	assert_int_equal(store_dispute_add(fx.st, &d), -1);
	d = bad;
	d.agent_amount = -2;
	assert_int_equal(store_dispute_add(fx.st, &d), -1);
	d = bad;
	snprintf(d.hub_hash, sizeof(d.hub_hash), "abc");
	assert_int_equal(store_dispute_add(fx.st, &d), -1);
	d = bad;
	memset(d.hub_hash, 'A', 64);
	assert_int_equal(store_dispute_add(fx.st, &d), -1);
	d = bad;
	snprintf(d.reason, sizeof(d.reason), "two\nlines");
	assert_int_equal(store_dispute_add(fx.st, &d), -1);
	d = bad;
	memset(d.reason, 'r', sizeof(d.reason));
	assert_int_equal(store_dispute_add(fx.st, &d), -1);
	assert_int_equal(store_dispute_add(fx.st, NULL), -1);
	assert_int_equal(store_dispute_add(NULL, &bad), -1);
	assert_int_equal(store_dispute_list(fx.st, NULL, NULL), -1);
	memset(&s, 0, sizeof(s));
	assert_int_equal(store_dispute_list(fx.st, dispute_cb, &s), 0);
	assert_int_equal(s.n, 3);
}

/* Every version of every model, by model then version. */
static void
test_price_all(void **state)
{
	struct price_seen seen;
	int64_t v;

	(void)state;
	memset(&seen, 0, sizeof(seen));
	assert_int_equal(store_price_all(fx.st, price_cb, &seen), 0);
	assert_int_equal(seen.n, 0);
	assert_int_equal(store_price_set(fx.st, "zeta", 1, 2, 0, 0, &v), 0);
	assert_int_equal(store_price_set(fx.st, "alpha", 3, 4, 0, 0, &v), 0);
	assert_int_equal(store_price_set(fx.st, "zeta", 5, 6, 1, 2, &v), 0);
	assert_int_equal(store_price_set(fx.st, "alpha", 7, 8, 0, 0, &v), 0);
	assert_int_equal(store_price_set(fx.st, "zeta", 9, 10, 0, 0, &v), 0);
	memset(&seen, 0, sizeof(seen));
	assert_int_equal(store_price_all(fx.st, price_cb, &seen), 0);
	assert_int_equal(seen.n, 5);
	assert_string_equal(seen.p[0].model, "alpha");
	assert_true(seen.p[0].version == 1 && seen.p[0].input == 3);
	assert_string_equal(seen.p[1].model, "alpha");
	assert_true(seen.p[1].version == 2 && seen.p[1].input == 7);
	assert_string_equal(seen.p[2].model, "zeta");
	assert_true(seen.p[2].version == 1 && seen.p[2].output == 2);
	assert_true(seen.p[3].version == 2 && seen.p[3].cached_input == 1 &&
	    seen.p[3].cache_write == 2);
	assert_true(seen.p[4].version == 3 && seen.p[4].input == 9);
	assert_int_equal(store_price_all(fx.st, NULL, NULL), -1);
	assert_int_equal(store_price_all(NULL, price_cb, &seen), -1);
}

/*
 * A database made by a build at migration 3, with rows in it, takes
 * migration 4 and keeps every row; the charges table then has the same
 * columns on both engines.
 */
static void
test_migration_4_keeps_rows(void **state)
{
	struct store_charge c;
	struct store_charge_usage u;
	struct ledger_entry e;
	char err[512], b64[64], sql[512], buf[600], head[65], h[65];
	unsigned char key[32];
	uint64_t a, t, seq;
	int64_t v;
	size_t i, j;
	int fd;

	(void)state;
	/* An empty database. */
	store_close(fx.st);
	fx.st = NULL;
	if (fx.pg) {
		assert_int_equal(pg_admin("DROP SCHEMA IF EXISTS %s CASCADE"),
		    0);
		assert_int_equal(pg_admin("CREATE SCHEMA %s"), 0);
	} else {
		unlink(fx.path);
		snprintf(buf, sizeof(buf), "%s-wal", fx.path);
		unlink(buf);
		snprintf(buf, sizeof(buf), "%s-shm", fx.path);
		unlink(buf);
		fd = open(fx.path, O_RDWR | O_CREAT | O_EXCL, 0600);
		assert_true(fd >= 0);
		close(fd);
	}
	/* Migrations 1..3 as that build applied them. */
	assert_int_equal(raw(schema_version_table, NULL, 0), 0);
	for (i = 0; i < schema_nmigrations && schema_migrations[i].version <= 3;
	    i++) {
		const struct schema_migration *m = &schema_migrations[i];

		for (j = 0; j < m->nstmts; j++)
			if (m->stmts[j].engines & (fx.pg ? SCHEMA_PG :
			    SCHEMA_SQLITE))
				if (raw(m->stmts[j].sql, NULL, 0) != 0)
					fail_msg("migration %lld, statement "
					    "%zu failed", (long long)m->version,
					    j);
		snprintf(sql, sizeof(sql), "INSERT INTO schema_version (version, "
		    "name, applied_at) VALUES (%lld, 'm', 0)",
		    (long long)m->version);
		assert_int_equal(raw(sql, NULL, 0), 0);
	}
	assert_int_equal((int)i, 3);
	newkey(b64, key);
	snprintf(sql, sizeof(sql), "INSERT INTO agents (name, pubkey, grade, "
	    "created_at) VALUES ('old-agent', '%s', 'A', 10)", b64);
	assert_int_equal(raw(sql, NULL, 0), 0);
	hash_of("old-token", h);
	snprintf(sql, sizeof(sql), "INSERT INTO tokens (name, hash, quota, "
	    "used, created_at) VALUES ('old-token', '%s', 100000, 150, 10)", h);
	assert_int_equal(raw(sql, NULL, 0), 0);
	assert_int_equal(raw("INSERT INTO charges (request_id, token_id, "
	    "reserved, amount, state, created_at) VALUES ('m3-reserved', "
	    "(SELECT id FROM tokens), 100, 0, 'reserved', 11)", NULL, 0), 0);
	assert_int_equal(raw("INSERT INTO charges (request_id, token_id, "
	    "reserved, amount, state, model, input_tokens, output_tokens, "
	    "cached_tokens, price_version, created_at) VALUES ('m3-posted', "
	    "(SELECT id FROM tokens), 70, 50, 'posted', 'gpt-4o', 9, 8, 7, 3, "
	    "12)", NULL, 0), 0);
	assert_int_equal(raw("INSERT INTO charges (request_id, token_id, "
	    "reserved, amount, state, created_at) VALUES ('m3-voided', "
	    "(SELECT id FROM tokens), 30, 0, 'voided', 13)", NULL, 0), 0);
	/* 'awaiting' does not exist yet. */
	assert_int_equal(raw("UPDATE charges SET state = 'awaiting'", NULL, 0),
	    -1);

	/* The store takes it to the latest. */
	fx.st = store_open(fx.url, err, sizeof(err));
	if (fx.st == NULL)
		fail_msg("open at migration 3: %s", err);
	assert_int_equal(store_schema_version(fx.st, &v), 0);
	assert_true(v == store_schema_latest() && v >= 4);
	assert_int_equal(raw("SELECT COUNT(*) FROM charges", buf, sizeof(buf)),
	    0);
	assert_string_equal(buf, "3");
	assert_int_equal(store_charge_get(fx.st, "m3-posted", &c), 0);
	assert_string_equal(c.state, "posted");
	assert_string_equal(c.u.model, "gpt-4o");
	assert_true(c.reserved == 70 && c.amount == 50 &&
	    c.u.input_tokens == 9 && c.u.output_tokens == 8 &&
	    c.u.cached_tokens == 7 && c.u.price_version == 3 &&
	    c.created_at == 12 && c.agent_id == 0 && c.agent_reported == 0 &&
	    c.awaiting_since == 0 && c.u.cache_write_tokens == 0);
	assert_int_equal(store_charge_get(fx.st, "m3-voided", &c), 0);
	assert_string_equal(c.state, "voided");
	assert_true(c.reserved == 30 && c.created_at == 13);
	assert_int_equal(store_charge_get(fx.st, "m3-reserved", &c), 0);
	assert_string_equal(c.state, "reserved");
	assert_true(used_of(h) == 150);

	/* The old agent has an empty chain; its old reservation posts. */
	assert_int_equal(raw("SELECT id FROM agents", buf, sizeof(buf)), 0);
	a = strtoull(buf, NULL, 10);
	assert_int_equal(raw("SELECT id FROM tokens", buf, sizeof(buf)), 0);
	t = strtoull(buf, NULL, 10);
	assert_int_equal(store_ledger_head(fx.st, a, &seq, head), 0);
	assert_true(seq == 0);
	assert_string_equal(head, LEDGER_GENESIS);
	u = usage("gpt-4o", 1, 1, 0, 0, 0, 60);
	assert_int_equal(store_charge_await(fx.st, "m3-reserved", a, &u), 0);
	post("m3-reserved", a, &u, 1, &e);
	assert_true(e.seq == 1 && e.token_id == t);
	assert_true(used_of(h) == 110);
	assert_true(verify_chain(fx.st, a) == 1);

	/* The constraints made it through the rebuild. */
	assert_int_equal(raw("UPDATE charges SET state = 'bogus' WHERE "
	    "request_id = 'm3-voided'", NULL, 0), -1);
	assert_int_equal(raw("UPDATE charges SET state = 'awaiting' WHERE "
	    "request_id = 'm3-voided'", NULL, 0), -1);	/* no agent */
	assert_int_equal(raw("UPDATE charges SET amount = -1", NULL, 0), -1);
	assert_int_equal(raw("INSERT INTO charges (request_id, token_id, "
	    "reserved, created_at) VALUES ('orphan', 987654, 0, 0)", NULL, 0),
	    -1);
	assert_int_equal(raw("INSERT INTO charges (request_id, token_id, "
	    "reserved, created_at) VALUES ('m3-voided', (SELECT id FROM "
	    "tokens), 0, 0)", NULL, 0), -1);

	/* Both engines: the same columns, in the same order, and indexes. */
	if (fx.pg)
		assert_int_equal(raw("SELECT string_agg(column_name, ',' ORDER "
		    "BY ordinal_position) FROM information_schema.columns WHERE "
		    "table_schema = current_schema() AND table_name = "
		    "'charges'", buf, sizeof(buf)), 0);
	else
		assert_int_equal(raw("SELECT group_concat(name, ',') FROM "
		    "(SELECT name FROM pragma_table_info('charges') ORDER BY "
		    "cid)", buf, sizeof(buf)), 0);
	assert_string_equal(buf, "request_id,token_id,reserved,amount,state,"
	    "model,input_tokens,output_tokens,cached_tokens,price_version,"
	    "created_at,cache_write_tokens,agent_id,agent_reported,"
	    "awaiting_since,channel,images,audio_seconds,audio_chars,"
	    "video_seconds");
	if (fx.pg)
		assert_int_equal(raw("SELECT string_agg(indexname, ',' ORDER "
		    "BY indexname) FROM pg_indexes WHERE schemaname = "
		    "current_schema() AND tablename = 'charges' AND indexname "
		    "LIKE 'charges\\_%'", buf, sizeof(buf)), 0);
	else
		assert_int_equal(raw("SELECT group_concat(name, ',') FROM "
		    "(SELECT name FROM sqlite_master WHERE type = 'index' AND "
		    "tbl_name = 'charges' AND name LIKE 'charges\\_%' ESCAPE "
		    "'\\' ORDER BY name)", buf, sizeof(buf)), 0);
	assert_string_equal(buf, fx.pg ? "charges_awaiting,charges_created,"
	    "charges_pkey,charges_reserved,charges_token" : "charges_awaiting,"
	    "charges_created,charges_reserved,charges_token");
}

/*
 * Concurrency: two store handles (two connections, one thread each) post
 * the same reservations for one agent, in opposite orders, each request
 * on its own token (so that only the agent's chain head orders them).
 * Every request is posted exactly once, seqs are 1..N without a gap or a
 * repeat, the chain verifies, and the tokens hold exactly the amounts.
 */
#define RACE_N	60

struct racer {
	const char		*url;
	uint64_t		 agent;
	int			 reverse;
	pthread_barrier_t	*go;
	int			 posted, already, failed;
	char			 err[256];
};

static void *
race(void *arg)
{
	struct racer *r = arg;
	struct store_charge_usage u;
	struct store *st;
	char req[32];
	int i, k, rc;

	st = store_open(r->url, r->err, sizeof(r->err));
	pthread_barrier_wait(r->go);
	if (st == NULL) {
		r->failed = RACE_N;
		return NULL;
	}
	for (k = 0; k < RACE_N; k++) {
		i = r->reverse ? RACE_N - 1 - k : k;
		snprintf(req, sizeof(req), "race-%03d", i);
		u = usage("m", i, 2 * i, 0, 0, 1, 10 + i);
		rc = store_charge_post(st, req, r->agent, &u, 0, hub_sk, NULL);
		if (rc == 0)
			r->posted++;
		else if (rc == 1)
			r->already++;
		else {
			r->failed++;
			snprintf(r->err, sizeof(r->err), "%s: %s", req,
			    store_errmsg(st));
		}
		/* SQLite's busy handler sleeps: let the other one in. */
		usleep(500);
	}
	store_close(st);
	return NULL;
}

static void
test_ledger_concurrent(void **state)
{
	struct racer r[2];
	pthread_barrier_t go;
	pthread_t th[2];
	char h[65], req[32], buf[32];
	uint64_t a, b, t;
	int64_t want = 0;
	int i;

	(void)state;
	a = add_agent("busy");
	b = add_agent("bystander");
	for (i = 0; i < RACE_N; i++) {
		snprintf(req, sizeof(req), "race-%03d", i);
		t = add_token(req, STORE_QUOTA_UNLIMITED, h);
		reserve(t, req, 1000);
		want += 10 + i;
	}
	memset(r, 0, sizeof(r));
	assert_int_equal(pthread_barrier_init(&go, NULL, 2), 0);
	for (i = 0; i < 2; i++) {
		r[i].url = fx.url;
		r[i].agent = a;
		r[i].reverse = i;
		r[i].go = &go;
		assert_int_equal(pthread_create(&th[i], NULL, race, &r[i]), 0);
	}
	for (i = 0; i < 2; i++)
		assert_int_equal(pthread_join(th[i], NULL), 0);
	pthread_barrier_destroy(&go);
	for (i = 0; i < 2; i++)
		if (r[i].failed)
			fail_msg("racer %d: %d failed: %s", i, r[i].failed,
			    r[i].err);
	assert_int_equal(r[0].posted + r[1].posted, RACE_N);
	assert_int_equal(r[0].already + r[1].already, RACE_N);
	assert_true(verify_chain(fx.st, a) == RACE_N);
	assert_true(verify_chain(fx.st, b) == 0);
	assert_int_equal(raw("SELECT SUM(used) FROM tokens", buf, sizeof(buf)),
	    0);
	assert_true(strtoll(buf, NULL, 10) == want);
	assert_int_equal(raw("SELECT COUNT(*) FROM charges WHERE state = "
	    "'posted'", buf, sizeof(buf)), 0);
	assert_string_equal(buf, "60");
}

static void
test_open_errors(void **state)
{
	char err[512];

	(void)state;
	assert_null(store_open(NULL, err, sizeof(err)));
	assert_true(err[0] != '\0');
	assert_null(store_open("", err, sizeof(err)));
	assert_true(err[0] != '\0');
	assert_null(store_open("sqlite:", err, sizeof(err)));
	assert_true(err[0] != '\0');
	assert_null(store_open("sqlite:/nonexistent-swb-dir/x/store.db", err,
	    sizeof(err)));
	assert_non_null(strstr(err, "nonexistent-swb-dir"));
	assert_null(store_open("/nonexistent-swb-dir/store.db", NULL, 0));
	/* Nothing listens on port 1. */
	assert_null(store_open("postgresql://swb@127.0.0.1:1/none?"
	    "connect_timeout=3&sslmode=disable&gssencmode=disable", err,
	    sizeof(err)));
	assert_non_null(strstr(err, "postgresql"));
}

/* Reservations beside quota leases (billing/bill_lease.c): what others
 * hold counts against the quota; the headroom after is reported. */
static void
test_charge_reserve_held(void **state)
{
	char h1[65], h2[65];
	uint64_t t1, t2;
	int64_t room = 0;

	(void)state;
	memset(h1, 'e', 64);
	h1[64] = '\0';
	memset(h2, 'f', 64);
	h2[64] = '\0';
	assert_int_equal(store_token_create(fx.st, "q", h1, 1000, "", 0, &t1), 0);
	assert_int_equal(store_token_create(fx.st, "u", h2, STORE_QUOTA_UNLIMITED,
	    "", 0, &t2), 0);
	assert_int_equal(store_charge_reserve_held(fx.st, t1, "h1", 300, 500,
	    &room), 0);
	assert_true(room == 700);
	assert_true(used_of(h1) == 300);
	/* 300 + 300 + 500 held > 1000: refused, nothing changes. */
	room = 0;
	assert_int_equal(store_charge_reserve_held(fx.st, t1, "h2", 300, 500,
	    &room), 1);
	assert_true(room == -1);
	assert_true(used_of(h1) == 300);
	/* Exactly up to the quota with what others hold. */
	assert_int_equal(store_charge_reserve_held(fx.st, t1, "h3", 200, 500,
	    &room), 0);
	assert_true(room == 500);
	/* A repeat reserves nothing now: no headroom to lease from. */
	assert_int_equal(store_charge_reserve_held(fx.st, t1, "h3", 200, 500,
	    &room), 0);
	assert_true(room == -1);
	assert_true(used_of(h1) == 500);
	/* No quota: never refused, no headroom. */
	assert_int_equal(store_charge_reserve_held(fx.st, t2, "h4", 300,
	    INT64_MAX - 300, &room), 0);
	assert_true(room == -1);
	/* Held or estimate out of range. */
	assert_int_equal(store_charge_reserve_held(fx.st, t1, "h5", 1, -1,
	    &room), -1);
	assert_int_equal(store_charge_reserve_held(fx.st, t1, "h6", 2,
	    INT64_MAX - 1, &room), -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
#define T(f)	cmocka_unit_test_setup_teardown(f, setup, teardown)
		T(test_engine),
		T(test_params),
		T(test_migrations_idempotent),
		T(test_agent_add_get),
		T(test_agent_list),
		T(test_agent_disable),
		T(test_agent_duplicate),
		T(test_agent_bad_input),
		T(test_not_found),
		T(test_tokens),
		T(test_money_int64_max),
		T(test_prices),
		T(test_charges),
		T(test_charge_reserve_held),
		T(test_ledger_post),
		T(test_ledger_post_bad_input),
		T(test_ledger_two_agents),
		T(test_ledger_await),
		T(test_charge_void_stale),
		T(test_backlog_plan),
		T(test_batch),
		T(test_note_report),
		T(test_ledger_ack),
		T(test_disputes),
		T(test_price_all),
		T(test_migration_4_keeps_rows),
		T(test_ledger_concurrent),
		T(test_open_errors),
#undef T
	};
	int fails;

	if (sodium_init() < 0)
		return 1;
	crypto_sign_keypair(hub_pk, hub_sk);
	/* cmocka's default output does not name the group: say it here. */
	fx.pg = 0;
	printf("== store/sqlite\n");
	fflush(stdout);
	fails = cmocka_run_group_tests_name("store/sqlite", tests, NULL, NULL);
	fx.pg_base = getenv("SWB_PG_URL");
	if (fx.pg_base != NULL && *fx.pg_base != '\0') {
		fx.pg = 1;
		printf("== store/postgresql\n");
		fflush(stdout);
		fails += cmocka_run_group_tests_name("store/postgresql", tests,
		    NULL, NULL);
	} else
		printf("SWB_PG_URL not set: PostgreSQL cases skipped\n");
	return fails != 0;
}
