/*
 * tests/unit/test_jscan: lib/jscan's member look-ups (jscan_getv,
 * jscan_get) on keys written plainly and with escapes, keys that are
 * prefixes of one another, repeated keys and keys not asked for; and the
 * string checker's eight-bytes-at-a-time path against jansson, with every
 * kind of byte it must stop at, at every place in and around a word.
 * jscan_check_getv (the check and the look-up in one pass) against the
 * two. tests/fuzz/fuzz_jscan holds the whole reader to jansson; these pin the
 * cases a look-up's fast path (plain keys compared as bytes) must agree on.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>
#include <jansson.h>
#include "lib/jscan.h"

static struct jscan_v
root_of(const char *json)
{
	struct jscan_v root;

	assert_int_equal(jscan_check(json, strlen(json), &root), 0);
	return root;
}

/* The text of v, or "" when absent. */
static const char *
text(struct jscan_v v, char *buf, size_t len)
{
	if (v.p == NULL || v.n >= len)
		return "";
	memcpy(buf, v.p, v.n);
	buf[v.n] = '\0';
	return buf;
}

static void
test_getv_plain_and_escaped(void **state)
{
	static const char *const keys[] = { "usage", "use", "choices", "id",
	    "" };
	struct jscan_v f[5];
	char b[64];

	(void)state;
	/* "\u0075sage" is "usage"; "us" and "usages" are neither key. */
	jscan_getv(root_of("{\"us\":1,\"usages\":2,\"\\u0075sage\":{\"a\":3},"
	    "\"ch\\u006fices\":[4],\"id\":\"x\",\"\":5}"), keys, 5, f);
	assert_string_equal(text(f[0], b, sizeof(b)), "{\"a\":3}");
	assert_null(f[1].p);
	assert_string_equal(text(f[2], b, sizeof(b)), "[4]");
	assert_string_equal(text(f[3], b, sizeof(b)), "\"x\"");
	assert_string_equal(text(f[4], b, sizeof(b)), "5");
}

static void
test_getv_last_wins(void **state)
{
	static const char *const keys[] = { "a" };
	struct jscan_v f[1];
	char b[16];

	(void)state;
	/* jansson keeps the last of repeated keys; so does a look-up, plain
	 * or escaped. */
	jscan_getv(root_of("{\"a\":1,\"\\u0061\":2,\"a\":3}"), keys, 1, f);
	assert_string_equal(text(f[0], b, sizeof(b)), "3");
	jscan_getv(root_of("{\"a\":1,\"\\u0061\":2}"), keys, 1, f);
	assert_string_equal(text(f[0], b, sizeof(b)), "2");
}

static void
test_get_absent(void **state)
{
	char b[16];

	(void)state;
	assert_null(jscan_get(root_of("{\"ab\":1}"), "a").p);
	assert_null(jscan_get(root_of("{\"a\":1}"), "ab").p);
	assert_null(jscan_get(root_of("[1,2]"), "a").p);
	assert_string_equal(text(jscan_get(root_of("{\"a\\\"b\":7}"),
	    "a\"b"), b, sizeof(b)), "7");
}


/* Every byte that ends the word-at-a-time path (a quote, a backslash
 * escape good or bad, each control byte, DEL, UTF-8 good and bad), at
 * every offset of strings 1 to 40 bytes long: jscan_check accepts
 * exactly what jansson does, and a string's end is found where it is. */
static void
test_check_string_words(void **state)
{
	static const char *const special[] = { "\"", "\\n", "\\\"", "\\u00e9",
	    "\\x", "\\", "\x7f", "\xc3\xa9", "\xe2\x82\xac", "\xc3", "\xff",
	    "\xed\xa0\x80", "\\ud83d\\ude00", "\\ud83d" };
	char body[128], doc[192];
	struct jscan_v root;

	(void)state;
	for (size_t k = 0; k < sizeof(special) / sizeof(special[0]) + 32; k++) {
		char ctl[2] = { (char)(k - sizeof(special) / sizeof(special[0])), 0 };
		const char *sp = k < sizeof(special) / sizeof(special[0]) ?
		    special[k] : ctl;
		size_t splen = k < sizeof(special) / sizeof(special[0]) ?
		    strlen(sp) : 1;

		for (size_t len = 1; len <= 40; len++) {
			for (size_t at = 0; at < len; at++) {
				size_t n = 0, dn;
				json_error_t err;
				json_t *j;
				int ok;

				memset(body, 'a', at);
				n = at;
				memcpy(body + n, sp, splen);
				n += splen;
				memset(body + n, 'b', len - at);
				n += len - at;
				memcpy(doc, "{\"k\":\"", 6);
				memcpy(doc + 6, body, n);
				memcpy(doc + 6 + n, "\",\"z\":1}", 8);
				dn = n + 14;
				ok = jscan_check(doc, dn, &root) == 0;
				j = json_loadb(doc, dn, JSON_ALLOW_NUL, &err);
				assert_int_equal(ok, j != NULL);
				if (ok) {
					struct jscan_v z = jscan_get(root, "z");
					int64_t v = 0;

					assert_int_equal(jscan_integer(z, &v), 0);
					assert_int_equal(v, 1);
				}
				json_decref(j);
			}
		}
	}
}

/* jscan_check_getv answers as jscan_check then jscan_getv do. */
static void
fused_as_two(const char *json, const char *const *keys, size_t nkeys)
{
	struct jscan_v r1, r2, a[JSCAN_GETV_MAX + 2], b[JSCAN_GETV_MAX + 2];
	int ok = jscan_check(json, strlen(json), &r1);

	assert_int_equal(jscan_check_getv(json, strlen(json), &r2, keys, nkeys,
	    b), ok);
	if (ok != 0)
		return;
	assert_ptr_equal(r1.p, r2.p);
	assert_int_equal(r1.n, r2.n);
	jscan_getv(r1, keys, nkeys, a);
	for (size_t i = 0; i < nkeys; i++) {
		assert_ptr_equal(a[i].p, b[i].p);
		assert_int_equal(a[i].n, b[i].n);
	}
}

static void
test_check_getv_fused(void **state)
{
	static const char *const keys[] = { "usage", "choices", "a", "",
	    "id" };
	static const char *const many[JSCAN_GETV_MAX + 1] = { "a", "b", "c",
	    "d", "e", "f", "g", "h", "i", "j", "k", "l", "m", "n", "o", "p",
	    "q" };
	static const char *const docs[] = {
		"{\"usage\":{\"a\":1},\"choices\":[]}",
		" { \"a\" : 1 , \"usage\" : null } ",
		"{\"a\":{\"usage\":1},\"usage\":2}",	/* nested: not it */
		"{\"a\":{\"usage\":1}}",
		"{\"a\":[{\"a\":1},[]],\"id\":\"x\"}",
		"{\"a\":{},\"choices\":[[],{}],\"\":[]}",
		"{\"a\":1,\"\\u0061\":2,\"a\":3}",		/* last wins */
		"{\"ch\\u006fices\":[4],\"usage\":true,\"id\":-1.5e3}",
		"[{\"usage\":1}]",				/* not an object */
		"{}", "[]",
		"{\"a\":1,}", "{\"a\" 1}", "{\"usage\":{\"a\":1}",	/* refused */
		"{\"a\":\"\\u0000\",\"usage\":[1,2,{\"x\":\"}\"}]}",
	};
	/* A NUL after a scalar (jansson reads "2\0," as "2,"): not the
	 * value's. */
	static const char nul_doc[] = "{\"a\":2\0,\"usage\":true\0}";

	(void)state;
	for (size_t i = 0; i < sizeof(docs) / sizeof(docs[0]); i++) {
		fused_as_two(docs[i], keys, 5);
		fused_as_two(docs[i], keys, 0);
	}
	{
		struct jscan_v r1, r2, a[5], b[5];

		assert_int_equal(jscan_check(nul_doc, sizeof(nul_doc) - 1, &r1),
		    0);
		assert_int_equal(jscan_check_getv(nul_doc, sizeof(nul_doc) - 1,
		    &r2, keys, 5, b), 0);
		jscan_getv(r1, keys, 5, a);
		for (size_t i = 0; i < 5; i++) {
			assert_ptr_equal(a[i].p, b[i].p);
			assert_int_equal(a[i].n, b[i].n);
		}
		assert_int_equal(b[0].n, 4);	/* true */
		assert_int_equal(b[2].n, 1);	/* 2 */
	}
	/* More keys than a look-up takes: none found, either way. */
	fused_as_two("{\"a\":1,\"q\":2}", many, JSCAN_GETV_MAX + 1);
	{
		struct jscan_v root, f[2];
		char b[64];
		const char *doc = "{\"a\":{\"usage\":1},\"usage\":{\"n\":2}}";

		assert_int_equal(jscan_check_getv(doc, strlen(doc), &root, keys,
		    2, f), 0);
		assert_string_equal(text(f[0], b, sizeof(b)), "{\"n\":2}");
		assert_null(f[1].p);
	}
}

/* jscan_check_getv_once: -2 for a root key asked for that repeats (also
 * spelled with an escape), 0 for repeats it was not asked about or below
 * the root, -1 for what the check refuses. */
static void
test_check_getv_once(void **state)
{
	static const char *const keys[] = { "model", "stream" };
	static const struct {
		const char *doc;
		int rc;
	} cases[] = {
		{ "{\"model\":\"a\",\"stream\":true}", 0 },
		{ "{\"model\":\"a\",\"model\":\"b\"}", -2 },
		{ "{\"model\":\"a\",\"x\":1,\"stream\":1,\"stream\":2}", -2 },
		{ "{\"model\":\"a\",\"mod\\u0065l\":\"b\"}", -2 },
		{ "{\"model\":\"a\",\"x\":1,\"x\":2}", 0 },
		{ "{\"model\":\"a\",\"m\":{\"model\":1,\"model\":2}}", 0 },
		{ "[{\"model\":1},{\"model\":2}]", 0 },
		{ "{\"model\":\"a\",\"model\":", -1 },
	};
	struct jscan_v root, f[2];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int rc = jscan_check_getv_once(cases[i].doc,
		    strlen(cases[i].doc), &root, keys, 2, f);

		if (rc != cases[i].rc)
			fail_msg("%s: %d, want %d", cases[i].doc, rc,
			    cases[i].rc);
	}
	/* The plain fused pass still takes the last copy, as jansson. */
	assert_int_equal(jscan_check_getv("{\"model\":\"a\",\"model\":\"bb\"}",
	    26, &root, keys, 2, f), 0);
	assert_true(jscan_string_eq(f[0], "bb"));
}

/* Keys of any length are found, those of 32 bytes and more as well, and
 * keys of one length told apart by their bytes. */
static void
test_getv_key_lengths(void **state)
{
	static const char *const keys[] = {
		"usage", "delta", "a_key_of_exactly_thirty_two_byte",
		"a_key_well_over_thirty_two_bytes_long", "", "b"
	};
	static const char doc[] = "{\"delta\":1,\"usage\":2,"
	    "\"a_key_of_exactly_thirty_two_byte\":3,"
	    "\"a_key_well_over_thirty_two_bytes_long\":4,"
	    "\"a_key_well_over_thirty_two_bytes_lonG\":5,\"\":6,\"c\":7}";
	struct jscan_v root, f[6], g[6];
	int64_t v;

	(void)state;
	assert_int_equal(strlen(keys[2]), 32);
	assert_int_equal(jscan_check_getv(doc, sizeof(doc) - 1, &root, keys, 6,
	    f), 0);
	jscan_getv(root, keys, 6, g);
	for (int i = 0; i < 5; i++) {
		assert_int_equal(jscan_integer(f[i], &v), 0);
		assert_int_equal(v, i == 0 ? 2 : i == 1 ? 1 : i == 4 ? 6 : i + 1);
		assert_int_equal(jscan_integer(g[i], &v), 0);
		assert_int_equal(v, i == 0 ? 2 : i == 1 ? 1 : i == 4 ? 6 : i + 1);
	}
	assert_int_equal(jscan_type(f[5]), JS_NONE);
	assert_int_equal(jscan_type(g[5]), JS_NONE);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_getv_plain_and_escaped),
		cmocka_unit_test(test_getv_last_wins),
		cmocka_unit_test(test_get_absent),
		cmocka_unit_test(test_check_string_words),
		cmocka_unit_test(test_check_getv_fused),
		cmocka_unit_test(test_check_getv_once),
		cmocka_unit_test(test_getv_key_lengths),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
