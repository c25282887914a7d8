/*
 * lib/jscan: reads JSON text in place, building no tree and allocating
 * nothing.  jscan_check() accepts exactly the documents jansson's
 * json_loadb(JSON_ALLOW_NUL) accepts:
 *   - an object or an array at the top, whitespace around it, nothing
 *     else after it;
 *   - RFC 8259 grammar (no leading zeros, no trailing commas);
 *   - strings of valid UTF-8 (no overlong forms, no surrogates, nothing
 *     past U+10FFFF), no raw control characters, only the JSON escapes,
 *     \u surrogates only as a high-low pair, \u0000 allowed in values but
 *     not in keys;
 *   - integers (no fraction, no exponent) within int64, reals finite;
 *   - at most JSCAN_DEPTH values nested (a scalar counts as one level).
 * The accessors then walk the checked text; given text that was not
 * checked they stay within their bounds but their answers mean nothing.
 * Used where the hub and the agent only need a few members of a large
 * answer (lib/usage's OpenAI readers); tests/fuzz/fuzz_jscan holds it to
 * jansson.
 */
#ifndef SWB_JSCAN_H
#define SWB_JSCAN_H

#include <stddef.h>
#include <stdint.h>

#define JSCAN_DEPTH	2048	/* jansson's JSON_PARSER_DEFAULT_DEPTH */

enum jscan_type {
	JS_NONE,		/* absent (a lookup that found nothing) */
	JS_OBJECT, JS_ARRAY, JS_STRING, JS_INTEGER, JS_REAL, JS_TRUE,
	JS_FALSE, JS_NULL
};

/* One value: its text [p, p + n), the value only (no whitespace). */
struct jscan_v {
	const char *p;
	size_t n;
};

/* 0 and *root set when the document is one jansson would load, else -1. */
int jscan_check(const char *p, size_t n, struct jscan_v *root);

/* jscan_check, and jscan_getv(*root, keys, nkeys, out) in the same pass:
 * what every stream event's reader needs, the text read once.  When the
 * check fails, out means nothing. */
int jscan_check_getv(const char *p, size_t n, struct jscan_v *root,
    const char *const *keys, size_t nkeys, struct jscan_v *out);

/* jscan_check_getv, and -2 (out set) when a key asked for is a member
 * of the root object more than once: where the hub reads a member that
 * decides what a request is (its model, whether it streams) it must not
 * read one copy while the provider reads the other. */
int jscan_check_getv_once(const char *p, size_t n, struct jscan_v *root,
    const char *const *keys, size_t nkeys, struct jscan_v *out);

enum jscan_type jscan_type(struct jscan_v v);

/* Member key of object v (the last one, when a key repeats, as jansson
 * keeps); {NULL, 0} (JS_NONE) when absent or v is not an object. */
struct jscan_v jscan_get(struct jscan_v v, const char *key);

/* jscan_get of several keys in one walk: out[i] for keys[i] (at most
 * JSCAN_GETV_MAX keys; more find nothing). */
#define JSCAN_GETV_MAX	16
void jscan_getv(struct jscan_v v, const char *const *keys, size_t nkeys,
    struct jscan_v *out);

/* Elements of array v in order: *pos starts at 0; 1 and *elem set, or 0
 * at the end (or when v is not an array). */
int jscan_next(struct jscan_v v, size_t *pos, struct jscan_v *elem);
size_t jscan_array_size(struct jscan_v v);

/* An integer's value: 0, or -1 when v is not JS_INTEGER. */
int jscan_integer(struct jscan_v v, int64_t *out);

/* A string's length in bytes once unescaped (json_string_length); 0 for
 * anything that is not a string. */
size_t jscan_string_len(struct jscan_v v);

/* Does string v, unescaped and read as a C string (up to a first \u0000,
 * as json_string_value() gives it to strcmp), equal s?  0 for anything
 * not a string. */
int jscan_string_eq(struct jscan_v v, const char *s);

/* String v unescaped into buf (at most cap - 1 bytes, NUL-terminated);
 * returns its whole unescaped length (0 for a non-string, buf ""). */
size_t jscan_string_copy(struct jscan_v v, char *buf, size_t cap);

/* Does string v, unescaped, start with prefix?  0 for a non-string. */
int jscan_string_prefix(struct jscan_v v, const char *prefix);

#endif
