/*
 * tests/unit/test_store: the billing store (billing/store.h), the same cases
 * against SQLite (a fresh temp file per case) and, when SWB_PG_URL is set,
 * against PostgreSQL (a fresh schema per case, dropped afterwards, reached
 * through search_path, so runs repeat on the same server).
 * tests/integration/store_pg.sh runs it with a throwaway server.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>
#include <sodium.h>
#include <sqlite3.h>

#include "billing/store.h"

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
	assert_int_equal(store_charge_reserve(fx.st, t1, "", 0), -1);
	assert_int_equal(store_charge_reserve(fx.st, t1, "ok", -1), -1);
	assert_int_equal(store_charge_reserve(fx.st, t1, "has space", 0), -1);
	u.amount = -1;
	assert_int_equal(store_charge_settle(fx.st, "r3", &u), -1);
	assert_int_equal(raw("SELECT COUNT(*) FROM charges WHERE state = "
	    "'reserved'", n, sizeof(n)), 0);
	assert_string_equal(n, "0");
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

int
main(void)
{
	const struct CMUnitTest tests[] = {
#define T(f)	cmocka_unit_test_setup_teardown(f, setup, teardown)
		T(test_engine),
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
		T(test_open_errors),
#undef T
	};
	int fails;

	if (sodium_init() < 0)
		return 1;
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
