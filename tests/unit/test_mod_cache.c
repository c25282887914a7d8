/*
 * Unit tests of moderation/mod_cache (hit and miss, TTL expiry on the
 * injected clock, LRU eviction at capacity, failures never stored, a
 * capacity of 0) and of mod_http's pure parts: the service request built
 * from a gateway's check and the reading of the service's answer.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "lib/hash.h"
#include "lib/log.h"
#include "moderation/mod.h"

static void
key_of(const char *text, char key[65])
{
	hash_sha256_hex(text, strlen(text), key);
}

static void
test_hit_miss(void **state)
{
	struct mod_cache *c = mod_cache_new(10, 1000);
	char k1[65], k2[65], detail[MOD_DETAIL_MAX];
	enum mod_answer ans;

	assert_non_null(c);
	key_of("{\"input\":\"a\"}", k1);
	key_of("{\"input\":\"b\"}", k2);
	assert_int_equal(mod_cache_get(c, k1, 0, &ans, detail, sizeof(detail)), 0);
	assert_int_equal(mod_cache_put(c, k1, 0, MOD_ANS_FLAGGED, "harassment"), 0);
	assert_int_equal(mod_cache_put(c, k2, 0, MOD_ANS_CLEAN, ""), 0);
	assert_int_equal(mod_cache_count(c), 2);
	assert_int_equal(mod_cache_get(c, k1, 10, &ans, detail, sizeof(detail)), 1);
	assert_int_equal(ans, MOD_ANS_FLAGGED);
	assert_string_equal(detail, "harassment");
	assert_int_equal(mod_cache_get(c, k2, 10, &ans, detail, sizeof(detail)), 1);
	assert_int_equal(ans, MOD_ANS_CLEAN);
	assert_string_equal(detail, "");
	/* A second put of the same key replaces, it does not add. */
	assert_int_equal(mod_cache_put(c, k2, 20, MOD_ANS_FLAGGED, "violence"), 0);
	assert_int_equal(mod_cache_count(c), 2);
	assert_int_equal(mod_cache_get(c, k2, 30, &ans, detail, sizeof(detail)), 1);
	assert_int_equal(ans, MOD_ANS_FLAGGED);
	assert_string_equal(detail, "violence");
	mod_cache_free(c);
}

static void
test_ttl(void **state)
{
	struct mod_cache *c = mod_cache_new(10, 100);
	char k[65], detail[MOD_DETAIL_MAX];
	enum mod_answer ans;

	key_of("ttl", k);
	assert_int_equal(mod_cache_put(c, k, 1000, MOD_ANS_CLEAN, ""), 0);
	assert_int_equal(mod_cache_get(c, k, 1099, &ans, detail, sizeof(detail)), 1);
	/* A hit does not extend the life of an entry. */
	assert_int_equal(mod_cache_get(c, k, 1100, &ans, detail, sizeof(detail)), 0);
	assert_int_equal(mod_cache_count(c), 0);
	/* Stored again, it lives again. */
	assert_int_equal(mod_cache_put(c, k, 2000, MOD_ANS_FLAGGED, "x"), 0);
	assert_int_equal(mod_cache_get(c, k, 2050, &ans, detail, sizeof(detail)), 1);
	mod_cache_free(c);
}

static void
test_eviction(void **state)
{
	struct mod_cache *c = mod_cache_new(3, 100000);
	char k[5][65], detail[MOD_DETAIL_MAX], text[32];
	enum mod_answer ans;

	for (int i = 0; i < 5; i++) {
		snprintf(text, sizeof(text), "text %d", i);
		key_of(text, k[i]);
	}
	for (int i = 0; i < 3; i++)
		assert_int_equal(mod_cache_put(c, k[i], i, MOD_ANS_CLEAN, ""), 0);
	/* Use 0: 1 is now the least recently used and goes first. */
	assert_int_equal(mod_cache_get(c, k[0], 5, &ans, detail, sizeof(detail)), 1);
	assert_int_equal(mod_cache_put(c, k[3], 6, MOD_ANS_CLEAN, ""), 0);
	assert_int_equal(mod_cache_count(c), 3);
	assert_int_equal(mod_cache_get(c, k[1], 7, &ans, detail, sizeof(detail)), 0);
	assert_int_equal(mod_cache_get(c, k[0], 7, &ans, detail, sizeof(detail)), 1);
	assert_int_equal(mod_cache_get(c, k[2], 7, &ans, detail, sizeof(detail)), 1);
	assert_int_equal(mod_cache_get(c, k[3], 7, &ans, detail, sizeof(detail)), 1);
	/* Now 0 is the oldest use. */
	assert_int_equal(mod_cache_put(c, k[4], 8, MOD_ANS_FLAGGED, "y"), 0);
	assert_int_equal(mod_cache_count(c), 3);
	assert_int_equal(mod_cache_get(c, k[0], 9, &ans, detail, sizeof(detail)), 0);
	assert_int_equal(mod_cache_get(c, k[4], 9, &ans, detail, sizeof(detail)), 1);
	mod_cache_free(c);
}

static void
test_many(void **state)
{
	struct mod_cache *c = mod_cache_new(100, 100000);
	char k[65], detail[MOD_DETAIL_MAX], text[32];
	enum mod_answer ans;
	int hits = 0;

	for (int i = 0; i < 1000; i++) {
		snprintf(text, sizeof(text), "t%d", i);
		key_of(text, k);
		assert_int_equal(mod_cache_put(c, k, i, (i & 1) ? MOD_ANS_FLAGGED :
		    MOD_ANS_CLEAN, text), 0);
		assert_true(mod_cache_count(c) <= 100);
	}
	for (int i = 0; i < 1000; i++) {
		snprintf(text, sizeof(text), "t%d", i);
		key_of(text, k);
		if (mod_cache_get(c, k, 1000, &ans, detail, sizeof(detail))) {
			hits++;
			assert_true(i >= 900);
			assert_string_equal(detail, text);
			assert_int_equal(ans, (i & 1) ? MOD_ANS_FLAGGED : MOD_ANS_CLEAN);
		}
	}
	assert_int_equal(hits, 100);
	mod_cache_free(c);
}

static void
test_failures_not_cached(void **state)
{
	struct mod_cache *c = mod_cache_new(10, 1000);
	struct mod_cache *off = mod_cache_new(0, 1000);
	char k[65], detail[MOD_DETAIL_MAX];
	enum mod_answer ans;

	key_of("fail", k);
	assert_int_equal(mod_cache_put(c, k, 0, MOD_ANS_FAILED, "timed out"), -1);
	assert_int_equal(mod_cache_count(c), 0);
	assert_int_equal(mod_cache_get(c, k, 1, &ans, detail, sizeof(detail)), 0);
	/* A failure never replaces a definitive answer either. */
	assert_int_equal(mod_cache_put(c, k, 0, MOD_ANS_FLAGGED, "hate"), 0);
	assert_int_equal(mod_cache_put(c, k, 1, MOD_ANS_FAILED, "HTTP 503"), -1);
	assert_int_equal(mod_cache_get(c, k, 2, &ans, detail, sizeof(detail)), 1);
	assert_int_equal(ans, MOD_ANS_FLAGGED);
	assert_string_equal(detail, "hate");
	/* cache_size = 0: nothing is ever stored. */
	assert_int_equal(mod_cache_put(off, k, 0, MOD_ANS_CLEAN, ""), -1);
	assert_int_equal(mod_cache_get(off, k, 1, &ans, detail, sizeof(detail)), 0);
	mod_cache_free(c);
	mod_cache_free(off);
}

static void
test_request_body(void **state)
{
	const char *in = "{\"input\":[{\"type\":\"text\",\"text\":\"hi\"}]}";
	char err[160];
	int empty;
	char *b;

	b = mod_request_body(in, strlen(in), "omni-moderation-latest", &empty,
	    err, sizeof(err));
	assert_non_null(b);
	assert_int_equal(empty, 0);
	assert_string_equal(b, "{\"model\":\"omni-moderation-latest\",\"input\":"
	    "[{\"type\":\"text\",\"text\":\"hi\"}]}");
	free(b);
	b = mod_request_body("{\"input\":[]}", 12, "m", &empty, err, sizeof(err));
	assert_non_null(b);
	assert_int_equal(empty, 1);
	free(b);
	assert_null(mod_request_body("junk", 4, "m", &empty, err, sizeof(err)));
	assert_non_null(strstr(err, "not JSON"));
	assert_null(mod_request_body("{\"x\":1}", 7, "m", &empty, err, sizeof(err)));
	assert_null(mod_request_body("[1]", 3, "m", &empty, err, sizeof(err)));
	assert_null(mod_request_body("{\"input\":5}", 11, "m", &empty, err,
	    sizeof(err)));
}

static enum mod_answer
parse(const char *s, char *detail)
{
	return mod_parse_answer(s, strlen(s), detail, MOD_DETAIL_MAX);
}

static void
test_parse_answer(void **state)
{
	char d[MOD_DETAIL_MAX];

	assert_int_equal(parse("{\"id\":\"m\",\"results\":[{\"flagged\":false,"
	    "\"categories\":{\"hate\":false}}]}", d), MOD_ANS_CLEAN);
	assert_string_equal(d, "");
	assert_int_equal(parse("{\"results\":[{\"flagged\":true,\"categories\":"
	    "{\"hate\":false,\"harassment\":true,\"violence\":true}}]}", d),
	    MOD_ANS_FLAGGED);
	assert_string_equal(d, "harassment,violence");
	/* Any flagged result flags; names are listed once. */
	assert_int_equal(parse("{\"results\":[{\"flagged\":false,\"categories\":"
	    "{\"hate\":true}},{\"flagged\":true,\"categories\":{\"violence\":true,"
	    "\"violence/graphic\":true}},{\"flagged\":true,\"categories\":"
	    "{\"violence\":true}}]}", d), MOD_ANS_FLAGGED);
	assert_string_equal(d, "violence,violence/graphic");
	assert_int_equal(parse("{\"results\":[{\"flagged\":true}]}", d),
	    MOD_ANS_FLAGGED);
	assert_string_equal(d, "flagged");
	/* Not an answer: failures, with a reason. */
	assert_int_equal(parse("<html>", d), MOD_ANS_FAILED);
	assert_non_null(strstr(d, "not JSON"));
	assert_int_equal(parse("{\"results\":[]}", d), MOD_ANS_FAILED);
	assert_int_equal(parse("{\"results\":{}}", d), MOD_ANS_FAILED);
	assert_int_equal(parse("{\"error\":{\"message\":\"x\"}}", d), MOD_ANS_FAILED);
	assert_int_equal(parse("{\"results\":[{\"flagged\":\"yes\"}]}", d),
	    MOD_ANS_FAILED);
	assert_int_equal(parse("{\"results\":[{\"flagged\":true},{}]}", d),
	    MOD_ANS_FAILED);
}

static void
test_long_category_list(void **state)
{
	char body[8192], d[MOD_DETAIL_MAX];
	size_t n = 0;

	n += (size_t)snprintf(body + n, sizeof(body) - n,
	    "{\"results\":[{\"flagged\":true,\"categories\":{");
	for (int i = 0; i < 60; i++)
		n += (size_t)snprintf(body + n, sizeof(body) - n,
		    "%s\"category-number-%02d\":true", i ? "," : "", i);
	snprintf(body + n, sizeof(body) - n, "}}]}");
	assert_int_equal(parse(body, d), MOD_ANS_FLAGGED);
	assert_true(strlen(d) < sizeof(d));
	assert_int_equal(strncmp(d, "category-number-00,category-number-01", 37), 0);
	assert_int_not_equal(d[strlen(d) - 1], ',');
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hit_miss),
		cmocka_unit_test(test_ttl),
		cmocka_unit_test(test_eviction),
		cmocka_unit_test(test_many),
		cmocka_unit_test(test_failures_not_cached),
		cmocka_unit_test(test_request_body),
		cmocka_unit_test(test_parse_answer),
		cmocka_unit_test(test_long_category_list),
	};
	log_init("test", "mod_cache", LOG_LVL_ERROR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
