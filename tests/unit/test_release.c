/*
 * tests/unit/test_release: lib/release — a signed manifest verifies after
 * a JSON round trip; any changed field, a signature from another key, a
 * malformed field or a bad version does not; version order is numeric.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sodium.h>

#include "lib/release.h"

static unsigned char pk[32], sk[64], pk2[32], sk2[64];

static void
good(struct release *r)
{
	char err[128];

	memset(r, 0, sizeof(*r));
	snprintf(r->version, sizeof(r->version), "0.2.0");
	snprintf(r->os, sizeof(r->os), "linux");
	snprintf(r->arch, sizeof(r->arch), "x86_64");
	r->size = 12345;
	memset(r->sha256, 'a', 64);
	snprintf(r->path, sizeof(r->path), "/files/agent/agentd-0.2.0-linux-x86_64");
	assert_int_equal(release_sign(r, sk, err, sizeof(err)), 0);
}

static void
test_roundtrip(void **state)
{
	struct release r, back;
	char err[128], *js;

	(void)state;
	good(&r);
	assert_int_equal(release_verify(&r, pk), 0);
	js = release_to_json(&r);
	assert_non_null(js);
	assert_int_equal(release_from_json(js, strlen(js), &back, err,
	    sizeof(err)), 0);
	assert_int_equal(release_verify(&back, pk), 0);
	assert_string_equal(back.version, "0.2.0");
	assert_int_equal(back.size, 12345);
	free(js);
}

static void
test_tampered(void **state)
{
	struct release r, t;

	(void)state;
	good(&r);
	/* Every field is covered by the signature. */
	t = r; snprintf(t.version, sizeof(t.version), "0.3.0");
	assert_int_equal(release_verify(&t, pk), -1);
	t = r; snprintf(t.os, sizeof(t.os), "windows");
	assert_int_equal(release_verify(&t, pk), -1);
	t = r; snprintf(t.arch, sizeof(t.arch), "aarch64");
	assert_int_equal(release_verify(&t, pk), -1);
	t = r; t.size++;
	assert_int_equal(release_verify(&t, pk), -1);
	t = r; t.sha256[10] = 'b';
	assert_int_equal(release_verify(&t, pk), -1);
	t = r; t.path[strlen(t.path) - 1] = '5';
	assert_int_equal(release_verify(&t, pk), -1);
	t = r; t.sig[0] ^= 1;
	assert_int_equal(release_verify(&t, pk), -1);
	/* Signed with another key. */
	assert_int_equal(release_verify(&r, pk2), -1);
	t = r;
	assert_int_equal(release_sign(&t, sk2, NULL, 0), 0);
	assert_int_equal(release_verify(&t, pk), -1);
}

static void
test_malformed(void **state)
{
	struct release r, t;
	char err[128];
	static const char *bad[] = {
		"{}", "[]", "not json",
		"{\"version\":\"0.2.0\",\"os\":\"linux\",\"arch\":\"x86_64\","
		"\"size\":1,\"sha256\":\"zz\",\"path\":\"/files/agent/a\","
		"\"sig\":\"AAAA\"}",
	};

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(release_from_json(bad[i], strlen(bad[i]), &t,
		    err, sizeof(err)), -1);
	good(&r);
	/* Fields that could smuggle a line or leave the files directory
	 * are refused before signing. */
	t = r; snprintf(t.version, sizeof(t.version), "1.0\nos=x");
	assert_int_equal(release_sign(&t, sk, err, sizeof(err)), -1);
	t = r; snprintf(t.path, sizeof(t.path), "/files/agent/../hubd.ini");
	assert_int_equal(release_sign(&t, sk, err, sizeof(err)), -1);
	assert_false(release_file_valid(".hidden"));
	t = r; snprintf(t.path, sizeof(t.path), "/files/agent/latest");
	assert_int_equal(release_sign(&t, sk, err, sizeof(err)), -1);
	t = r; snprintf(t.path, sizeof(t.path), "/etc/passwd");
	assert_int_equal(release_sign(&t, sk, err, sizeof(err)), -1);
	t = r; t.size = 0;
	assert_int_equal(release_sign(&t, sk, err, sizeof(err)), -1);
	t = r; snprintf(t.os, sizeof(t.os), "Linux");
	assert_int_equal(release_sign(&t, sk, err, sizeof(err)), -1);
}

static void
test_versions(void **state)
{
	(void)state;
	assert_true(release_version_valid("0.1.0"));
	assert_true(release_version_valid("10"));
	assert_true(release_version_valid("1.2.3.4"));
	assert_false(release_version_valid(""));
	assert_false(release_version_valid("1..2"));
	assert_false(release_version_valid("1.2."));
	assert_false(release_version_valid("1.2.3.4.5"));
	assert_false(release_version_valid("v1.2"));
	assert_false(release_version_valid("1.2-rc1"));
	assert_true(release_version_cmp("0.2.0", "0.1.9") > 0);
	assert_true(release_version_cmp("0.10.0", "0.9.0") > 0);
	assert_true(release_version_cmp("1.0", "1.0.0") == 0);
	assert_true(release_version_cmp("1.0.1", "1.0") > 0);
	assert_true(release_version_cmp("0.0.9", "0.1.0") < 0);
	assert_true(release_version_cmp("2", "10") < 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_roundtrip),
		cmocka_unit_test(test_tampered),
		cmocka_unit_test(test_malformed),
		cmocka_unit_test(test_versions),
	};

	if (sodium_init() < 0)
		return 1;
	crypto_sign_keypair(pk, sk);
	crypto_sign_keypair(pk2, sk2);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
