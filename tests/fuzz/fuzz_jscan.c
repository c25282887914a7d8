/*
 * tests/fuzz/fuzz_jscan: libFuzzer target holding lib/jscan to jansson.
 * The input is one document, given as an exact-size copy (no NUL after
 * it).  Checked:
 *   - jscan_check() accepts it exactly when json_loadb(JSON_ALLOW_NUL)
 *     does;
 *   - when both accept, every value jansson built is what the accessors
 *     read: the type (integer or real included), an integer's value, a
 *     string's unescaped length and bytes (jscan_string_copy;
 *     jscan_string_eq as strcmp sees json_string_value(), and
 *     jscan_string_prefix on every prefix without a NUL), an array's
 *     elements in order, an object's members by key (the last of a
 *     repeated key, as jansson keeps), and no member for a key jansson
 *     does not have;
 *   - jscan_check_getv finds the root object's members jscan_getv finds.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include "lib/jscan.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

_Noreturn static void
die(const char *what)
{
	fprintf(stderr, "fuzz_jscan: %s\n", what);
	abort();
}

static enum jscan_type
jtype(const json_t *j)
{
	switch (json_typeof(j)) {
	case JSON_OBJECT: return JS_OBJECT;
	case JSON_ARRAY: return JS_ARRAY;
	case JSON_STRING: return JS_STRING;
	case JSON_INTEGER: return JS_INTEGER;
	case JSON_REAL: return JS_REAL;
	case JSON_TRUE: return JS_TRUE;
	case JSON_FALSE: return JS_FALSE;
	default: return JS_NULL;
	}
}

static void
same(const json_t *j, struct jscan_v v)
{
	if (jscan_type(v) != jtype(j))
		die("types differ");
	switch (json_typeof(j)) {
	case JSON_INTEGER: {
		int64_t n;

		if (jscan_integer(v, &n) != 0 || n != json_integer_value(j))
			die("integers differ");
		break;
	}
	case JSON_STRING: {
		const char *s = json_string_value(j);
		size_t len = json_string_length(j), nul = strlen(s);
		char pre[64];

		if (jscan_string_len(v) != len)
			die("string lengths differ");
		/* As strcmp sees json_string_value(): up to a first NUL. */
		if (!jscan_string_eq(v, s))
			die("strings differ");
		{
			char buf[64];
			size_t whole = jscan_string_copy(v, buf, sizeof(buf));

			if (whole != len || memcmp(buf, s, len < sizeof(buf) ?
			    len : sizeof(buf) - 1) != 0)
				die("a string's copy differs");
		}
		for (size_t k = 0; k <= nul && k < sizeof(pre); k++) {
			memcpy(pre, s, k);
			pre[k] = '\0';
			if (!jscan_string_prefix(v, pre))
				die("a prefix is not one");
		}
		if (nul == len && len + 1 < sizeof(pre)) {
			memcpy(pre, s, len);
			memcpy(pre + len, "~", 2);
			if (jscan_string_eq(v, pre) ||
			    jscan_string_prefix(v, pre))
				die("a longer string matched");
		}
		break;
	}
	case JSON_ARRAY: {
		struct jscan_v e;
		size_t pos = 0, i = 0;

		while (jscan_next(v, &pos, &e)) {
			if (i >= json_array_size(j))
				die("more array elements");
			same(json_array_get(j, i++), e);
		}
		if (i != json_array_size(j) || jscan_array_size(v) != i)
			die("fewer array elements");
		break;
	}
	case JSON_OBJECT: {
		const char *k;
		json_t *m;

		json_object_foreach((json_t *)j, k, m) {
			struct jscan_v e = jscan_get(v, k);

			if (jscan_type(e) == JS_NONE)
				die("a member is missing");
			same(m, e);
		}
		if (jscan_type(jscan_get(v, "\x01no such key")) != JS_NONE &&
		    json_object_get(j, "\x01no such key") == NULL)
			die("a member that is not there");
		break;
	}
	default:
		break;
	}
}

/* jscan_check_getv on the root's keys (and one it does not have) finds
 * what jscan_getv finds. */
static void
fused(const char *p, size_t size, const json_t *j, struct jscan_v root)
{
	const char *keys[JSCAN_GETV_MAX], *k;
	struct jscan_v a[JSCAN_GETV_MAX], b[JSCAN_GETV_MAX], r;
	size_t n = 0;
	json_t *m;

	json_object_foreach((json_t *)j, k, m) {
		if (n + 1 == JSCAN_GETV_MAX)
			break;
		keys[n++] = k;
	}
	keys[n++] = "\x01no such key";
	if (jscan_check_getv(p, size, &r, keys, n, b) != 0 ||
	    r.p != root.p || r.n != root.n)
		die("the fused check differs");
	jscan_getv(root, keys, n, a);
	for (size_t i = 0; i < n; i++)
		if (a[i].p != b[i].p || a[i].n != b[i].n)
			die("the fused look-up differs");
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *p = malloc(size > 0 ? size : 1);
	struct jscan_v root;
	json_error_t err;
	json_t *j;
	int ok;

	if (p == NULL)
		return 0;
	memcpy(p, data, size);
	ok = jscan_check(p, size, &root) == 0;
	j = json_loadb(p, size, JSON_ALLOW_NUL, &err);
	if (ok != (j != NULL)) {
		fprintf(stderr, "jansson: %s\n", j != NULL ? "accepts" :
		    err.text);
		die(ok ? "jscan accepts what jansson refuses" :
		    "jscan refuses what jansson accepts");
	}
	if (j != NULL)
		same(j, root);
	if (j != NULL && json_is_object(j))
		fused(p, size, j, root);
	json_decref(j);
	free(p);
	return 0;
}
