/*
 * tests/unit/test_ag_ckpt: agent/ag_ckpt, a WAL database's checkpoints in a
 * thread of their own: a commit that takes the WAL past 1,000 pages is
 * copied into the database file by the thread (and counted), not by the
 * commit; the thread exists from start to stop; a database that cannot
 * be opened starts nothing and says why.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <sys/stat.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include "lib/log.h"
#include "agent/ag_ckpt.h"

struct fx {
	char dir[64], path[96];
	sqlite3 *db;
};

static int
setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	if (f == NULL)
		return -1;
	snprintf(f->dir, sizeof(f->dir), "/tmp/swb-agckpt.XXXXXX");
	if (mkdtemp(f->dir) == NULL)
		return -1;
	snprintf(f->path, sizeof(f->path), "%s/t.db", f->dir);
	if (sqlite3_open(f->path, &f->db) != SQLITE_OK ||
	    sqlite3_exec(f->db, "PRAGMA journal_mode=WAL;"
	    "CREATE TABLE pad (b BLOB)", NULL, NULL, NULL) != SQLITE_OK)
		return -1;
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *f = *state;
	char p[160];

	sqlite3_close(f->db);
	for (const char *const *s = (const char *const[]){ "", "-wal",
	    "-shm", NULL }; *s; s++) {
		snprintf(p, sizeof(p), "%s%s", f->path, *s);
		(void)unlink(p);
	}
	rmdir(f->dir);
	free(f);
	return 0;
}

static int
threads(void)
{
	DIR *d = opendir("/proc/self/task");
	struct dirent *de;
	int n = 0;

	assert_non_null(d);
	while ((de = readdir(d)) != NULL)
		n += de->d_name[0] != '.';
	closedir(d);
	return n;
}

static off_t
file_size(const char *path)
{
	struct stat sb;

	assert_int_equal(stat(path, &sb), 0);
	return sb.st_size;
}

/* Wait up to 5 s for the thread's count to reach n. */
static void
wait_count(struct ag_ckpt *ck, unsigned long n)
{
	for (int i = 0; i < 500 && ag_ckpt_count(ck) < n; i++)
		usleep(10000);
	assert_true(ag_ckpt_count(ck) >= n);
}

static void
test_checkpoints(void **state)
{
	struct fx *f = *state;
	struct ag_ckpt *ck;
	char err[256];
	int n0 = threads();

	ck = ag_ckpt_start(f->db, f->path, err, sizeof(err));
	assert_non_null(ck);
	assert_int_equal(threads(), n0 + 1);
	assert_int_equal(ag_ckpt_count(ck), 0);
	/* A small commit leaves the WAL alone. */
	assert_int_equal(sqlite3_exec(f->db, "INSERT INTO pad VALUES (x'00')",
	    NULL, NULL, NULL), SQLITE_OK);
	usleep(50000);
	assert_int_equal(ag_ckpt_count(ck), 0);
	assert_true(file_size(f->path) < 1000000);
	/* About 1,250 pages in one commit: the thread copies them. */
	assert_int_equal(sqlite3_exec(f->db, "INSERT INTO pad VALUES "
	    "(zeroblob(5000000))", NULL, NULL, NULL), SQLITE_OK);
	wait_count(ck, 1);
	assert_true(file_size(f->path) >= 5000000);
	/* And again after the WAL started over. */
	assert_int_equal(sqlite3_exec(f->db, "INSERT INTO pad VALUES "
	    "(zeroblob(5000000))", NULL, NULL, NULL), SQLITE_OK);
	wait_count(ck, 2);
	assert_true(file_size(f->path) >= 10000000);
	ag_ckpt_stop(ck, f->db);
	assert_int_equal(threads(), n0);
	/* The connection goes on without it. */
	assert_int_equal(sqlite3_exec(f->db, "INSERT INTO pad VALUES (x'01')",
	    NULL, NULL, NULL), SQLITE_OK);
	ag_ckpt_stop(NULL, f->db);
	assert_int_equal(ag_ckpt_count(NULL), 0);
}

static void
test_cannot_open(void **state)
{
	struct fx *f = *state;
	char err[256], p[128];
	int n0 = threads();

	snprintf(p, sizeof(p), "%s/missing/t.db", f->dir);
	assert_null(ag_ckpt_start(f->db, p, err, sizeof(err)));
	assert_non_null(strstr(err, "cannot open"));
	assert_int_equal(threads(), n0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_checkpoints, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_cannot_open, setup,
		    teardown),
	};

	log_init("test", "main", LOG_LVL_ERROR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
