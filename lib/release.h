/*
 * lib/release: agentd's signed release manifests, shared by hubctl (which
 * signs one when the operator publishes a build), the hub's tunnel (which
 * serves it at GET /files/agent/latest) and agentd (which verifies it
 * before installing anything).
 *
 * A manifest names one build for one OS and architecture: version, os,
 * arch, size, the SHA-256 of the file, and the path it is downloaded from
 * on the tunnel listener.  It is signed with the release key — an Ed25519
 * key of its own, never the ledger key — whose public half is built into
 * agentd.  The signature covers exactly the bytes release_canonical()
 * writes (a context line, then one "key=value" line per field in a fixed
 * order); the JSON the hub serves is only a carrier, so neither key order
 * nor whitespace in it matters.  Fields are checked before signing and
 * after parsing (release_check): no field may hold a byte that could end
 * a line or change what another field means.
 *
 * JSON: {"version":"0.2.0","os":"linux","arch":"x86_64","size":N,
 *        "sha256":"64 hex","path":"/files/agent/NAME","sig":"base64"}
 */
#ifndef SWB_RELEASE_H
#define SWB_RELEASE_H

#include <stddef.h>
#include <stdint.h>

#define RELEASE_CONTEXT		"switchboard release v1"
#define RELEASE_LATEST_PATH	"/files/agent/latest"	/* ?os=&arch= */
#define RELEASE_FILES_PREFIX	"/files/agent/"		/* + a file name */
#define RELEASE_SIZE_MAX	(UINT64_C(512) * 1024 * 1024)
#define RELEASE_JSON_MAX	1024	/* a served manifest is smaller */

struct release {
	char version[32];	/* 1..4 dot-separated numbers, e.g. 0.2.0 */
	char os[16];		/* [a-z0-9_]: linux, macos, windows */
	char arch[16];		/* [a-z0-9_]: x86_64, aarch64 */
	uint64_t size;		/* bytes, 1..RELEASE_SIZE_MAX */
	char sha256[65];	/* lowercase hex */
	char path[128];		/* RELEASE_FILES_PREFIX + [A-Za-z0-9._-] name */
	unsigned char sig[64];	/* Ed25519 over release_canonical() */
};

/* 0 when every field is well-formed, else -1 with err. */
int release_check(const struct release *r, char *err, size_t errlen);
/* The signed bytes into buf (NUL-terminated); their length, or 0 when
 * buf is too small. */
size_t release_canonical(const struct release *r, char *buf, size_t len);
/* Sign r (fields checked first).  0, or -1 with err. */
int release_sign(struct release *r, const unsigned char sk[64], char *err,
    size_t errlen);
/* 0 when r's fields are well-formed and sig verifies under pk, else -1. */
int release_verify(const struct release *r, const unsigned char pk[32]);
/* The manifest as one line of JSON (malloc'd; NULL when out of memory). */
char *release_to_json(const struct release *r);
/* Parse a served manifest (fields checked, signature not).  0, or -1. */
int release_from_json(const char *buf, size_t len, struct release *r,
    char *err, size_t errlen);

/* A version's form: 1..4 dot-separated decimal numbers, each < 10^9. */
int release_version_valid(const char *v);
/* Compare two valid versions numerically (missing parts are 0):
 * <0, 0, >0.  Malformed ones compare as 0.0.0. */
int release_version_cmp(const char *a, const char *b);
/* base64 (standard, padded) of 32 bytes -> pk.  0, or -1. */
int release_pk_parse(const char *b64, unsigned char pk[32]);
/* An os or arch name: 1..15 bytes of [a-z0-9_]. */
int release_name_valid(const char *s);
/* A downloadable file name: 1..95 bytes of [A-Za-z0-9._-], not starting
 * with a dot. */
int release_file_valid(const char *s);

/* This build's OS and architecture, as manifests name them. */
const char *release_host_os(void);
const char *release_host_arch(void);

#endif
