/*
 * lib/release: signed release manifests (see release.h).
 */
#include "lib/release.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sodium.h>

static int
only(const char *s, const char *set, size_t min, size_t max)
{
	size_t n = strlen(s);

	return n >= min && n <= max && strspn(s, set) == n;
}

int
release_name_valid(const char *s)
{
	return only(s, "abcdefghijklmnopqrstuvwxyz0123456789_", 1, 15);
}

int
release_file_valid(const char *s)
{
	return s[0] != '.' && only(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	    "abcdefghijklmnopqrstuvwxyz0123456789._-", 1, 95);
}

int
release_version_valid(const char *v)
{
	int parts = 0;

	for (const char *p = v;; p++) {
		size_t n = strspn(p, "0123456789");

		if (n == 0 || n > 9)
			return 0;
		parts++;
		p += n;
		if (*p == '\0')
			return parts <= 4;
		if (*p != '.')
			return 0;
	}
}

int
release_version_cmp(const char *a, const char *b)
{
	unsigned long x, y;
	char *end;
	const char *pa = release_version_valid(a) ? a : "0";
	const char *pb = release_version_valid(b) ? b : "0";

	for (int i = 0; i < 4; i++) {
		x = y = 0;
		if (*pa != '\0') {
			x = strtoul(pa, &end, 10);
			pa = *end == '.' ? end + 1 : end;
		}
		if (*pb != '\0') {
			y = strtoul(pb, &end, 10);
			pb = *end == '.' ? end + 1 : end;
		}
		if (x != y)
			return x < y ? -1 : 1;
	}
	return 0;
}

int
release_check(const struct release *r, char *err, size_t errlen)
{
	const char *name;

	if (!release_version_valid(r->version)) {
		snprintf(err, errlen, "version '%.31s' is not 1 to 4 dot-"
		    "separated numbers", r->version);
		return -1;
	}
	if (!release_name_valid(r->os) || !release_name_valid(r->arch)) {
		snprintf(err, errlen, "os and arch are 1..15 of [a-z0-9_]");
		return -1;
	}
	if (r->size == 0 || r->size > RELEASE_SIZE_MAX) {
		snprintf(err, errlen, "size %llu is not 1..%llu bytes",
		    (unsigned long long)r->size,
		    (unsigned long long)RELEASE_SIZE_MAX);
		return -1;
	}
	if (!only(r->sha256, "0123456789abcdef", 64, 64)) {
		snprintf(err, errlen, "sha256 is not 64 lowercase hex digits");
		return -1;
	}
	name = r->path + strlen(RELEASE_FILES_PREFIX);
	if (strncmp(r->path, RELEASE_FILES_PREFIX,
	    strlen(RELEASE_FILES_PREFIX)) != 0 || !release_file_valid(name) ||
	    strcmp(r->path, RELEASE_LATEST_PATH) == 0) {
		snprintf(err, errlen, "path is not %sNAME", RELEASE_FILES_PREFIX);
		return -1;
	}
	return 0;
}

size_t
release_canonical(const struct release *r, char *buf, size_t len)
{
	int n = snprintf(buf, len, "%s\nversion=%s\nos=%s\narch=%s\nsize=%llu\n"
	    "sha256=%s\npath=%s\n", RELEASE_CONTEXT, r->version, r->os, r->arch,
	    (unsigned long long)r->size, r->sha256, r->path);

	return n < 0 || (size_t)n >= len ? 0 : (size_t)n;
}

int
release_sign(struct release *r, const unsigned char sk[64], char *err,
    size_t errlen)
{
	char msg[512];
	size_t n;

	if (release_check(r, err, errlen) != 0)
		return -1;
	if ((n = release_canonical(r, msg, sizeof(msg))) == 0) {
		snprintf(err, errlen, "manifest too long");
		return -1;
	}
	crypto_sign_detached(r->sig, NULL, (const unsigned char *)msg, n, sk);
	return 0;
}

int
release_verify(const struct release *r, const unsigned char pk[32])
{
	char msg[512], err[128];
	size_t n;

	if (release_check(r, err, sizeof(err)) != 0 ||
	    (n = release_canonical(r, msg, sizeof(msg))) == 0)
		return -1;
	return crypto_sign_verify_detached(r->sig, (const unsigned char *)msg,
	    n, pk) == 0 ? 0 : -1;
}

char *
release_to_json(const struct release *r)
{
	char sig[sodium_base64_ENCODED_LEN(64, sodium_base64_VARIANT_ORIGINAL)];
	json_t *o;
	char *s;

	sodium_bin2base64(sig, sizeof(sig), r->sig, sizeof(r->sig),
	    sodium_base64_VARIANT_ORIGINAL);
	o = json_pack("{s:s, s:s, s:s, s:I, s:s, s:s, s:s}", "version",
	    r->version, "os", r->os, "arch", r->arch, "size",
	    (json_int_t)r->size, "sha256", r->sha256, "path", r->path, "sig",
	    sig);
	if (o == NULL)
		return NULL;
	s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(o);
	return s;
}

/* Copy a JSON string member into dst[cap]; -1 when absent or too long. */
static int
get_str(json_t *o, const char *key, char *dst, size_t cap)
{
	json_t *v = json_object_get(o, key);
	const char *s = json_string_value(v);

	if (s == NULL || json_string_length(v) >= cap ||
	    strlen(s) != json_string_length(v))
		return -1;
	memcpy(dst, s, strlen(s) + 1);
	return 0;
}

int
release_from_json(const char *buf, size_t len, struct release *r, char *err,
    size_t errlen)
{
	json_error_t jerr;
	json_t *o, *size;
	char sig[128];
	size_t siglen = 0;
	int rc = -1;

	memset(r, 0, sizeof(*r));
	if (len > RELEASE_JSON_MAX) {
		snprintf(err, errlen, "manifest larger than %d bytes",
		    RELEASE_JSON_MAX);
		return -1;
	}
	o = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &jerr);
	if (o == NULL || !json_is_object(o)) {
		snprintf(err, errlen, "manifest is not a JSON object");
		goto out;
	}
	size = json_object_get(o, "size");
	if (get_str(o, "version", r->version, sizeof(r->version)) != 0 ||
	    get_str(o, "os", r->os, sizeof(r->os)) != 0 ||
	    get_str(o, "arch", r->arch, sizeof(r->arch)) != 0 ||
	    get_str(o, "sha256", r->sha256, sizeof(r->sha256)) != 0 ||
	    get_str(o, "path", r->path, sizeof(r->path)) != 0 ||
	    get_str(o, "sig", sig, sizeof(sig)) != 0 ||
	    !json_is_integer(size) || json_integer_value(size) <= 0) {
		snprintf(err, errlen, "manifest lacks a field or one is too long");
		goto out;
	}
	r->size = (uint64_t)json_integer_value(size);
	if (sodium_base642bin(r->sig, sizeof(r->sig), sig, strlen(sig), NULL,
	    &siglen, NULL, sodium_base64_VARIANT_ORIGINAL) != 0 ||
	    siglen != sizeof(r->sig)) {
		snprintf(err, errlen, "manifest sig is not base64 of 64 bytes");
		goto out;
	}
	rc = release_check(r, err, errlen);
out:
	json_decref(o);
	return rc;
}

int
release_pk_parse(const char *b64, unsigned char pk[32])
{
	size_t n = 0;

	return sodium_base642bin(pk, 32, b64, strlen(b64), NULL, &n, NULL,
	    sodium_base64_VARIANT_ORIGINAL) == 0 && n == 32 ? 0 : -1;
}

const char *
release_host_os(void)
{
#if defined(_WIN32)
	return "windows";
#elif defined(__APPLE__)
	return "macos";
#elif defined(__linux__)
	return "linux";
#else
	return "unknown";
#endif
}

const char *
release_host_arch(void)
{
#if defined(__x86_64__) || defined(_M_X64)
	return "x86_64";
#elif defined(__aarch64__) || defined(_M_ARM64)
	return "aarch64";
#elif defined(__i386__) || defined(_M_IX86)
	return "i386";
#elif defined(__arm__)
	return "arm";
#else
	return "unknown";
#endif
}
