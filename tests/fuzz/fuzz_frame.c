/*
 * tests/fuzz/fuzz_frame: libFuzzer target for the tunnel frame decoder
 * (lib/frame).  Every input is decoded; whatever decodes must re-encode,
 * decode again to an equal frame, and re-encode to the same bytes (the
 * encoder's output is canonical).  A rejection must come with a reason.
 *
 * Built with -DFUZZ_SEEDGEN instead of -fsanitize=fuzzer it becomes the
 * seed generator: `fuzz_frame-seedgen DIR` writes one valid frame per type
 * (and a few variants) into DIR, for tests/fuzz/corpus/frame/.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/frame.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

_Noreturn static void
die(const char *what, const char *why)
{
	fprintf(stderr, "fuzz_frame: %s: %s\n", what, why);
	abort();
}

/* Every field is reachable through its own accessor, and only that one. */
static void
check_accessors(const struct frame *f)
{
	for (size_t i = 0; i < f->nfields; i++) {
		const struct frame_field *fld = &f->fields[i];
		const char *k = fld->key;
		int hits = 0;

		if (strlen(k) == 0 || strlen(k) > FRAME_MAX_KEY)
			die("accessors", "bad key length");
		hits += frame_get_u64(f, k, NULL) == 0;
		hits += frame_get_bool(f, k, NULL) == 0;
		hits += frame_get_str(f, k, NULL, NULL) == 0;
		hits += frame_get_bin(f, k, NULL, NULL) == 0;
		hits += frame_get_strv(f, k, NULL, NULL) == 0;
		if (fld->kind == FK_I64) {
			if (fld->v.i64 >= 0)
				die("accessors", "non-negative i64");
			hits += frame_get_i64(f, k, NULL) == 0;
		}
		if (hits != 1)
			die("accessors", k);
		if (fld->kind == FK_STR && fld->v.str.ptr[fld->v.str.len] != '\0')
			die("accessors", "str not NUL-terminated");
		if (fld->kind == FK_STRV) {
			if (fld->v.strv.n > FRAME_MAX_ITEMS)
				die("accessors", "strv too long");
			for (size_t j = 0; j < fld->v.strv.n; j++)
				if (fld->v.strv.v[j].ptr[fld->v.strv.v[j].len])
					die("accessors", "strv item not NUL-"
					    "terminated");
		}
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct frame f, g;
	struct frame_enc e, e2;
	const void *out, *out2;
	size_t len, len2;
	char err[160];

	/* The same bytes read as a packed message (lib/frame.h PACKING):
	 * every step moves forward within the input, or stops with a
	 * reason; a whole single frame is also a one-frame message. */
	for (size_t off = 0, used; off < size; off += used) {
		err[0] = '\0';
		if (frame_decode_next(data + off, size - off, &f, &used, err,
		    sizeof(err)) == -1) {
			if (err[0] == '\0' || used != 0)
				die("decode_next", "bad rejection");
			break;
		}
		if (used == 0 || used > size - off)
			die("decode_next", "length outside the input");
		frame_free(&f);
	}
	err[0] = '\0';
	if (frame_decode(data, size, &f, err, sizeof(err)) == -1) {
		if (err[0] == '\0')
			die("decode", "rejected without a reason");
		return 0;
	}
	if (f.version != FRAME_VERSION || f.type == 0 ||
	    f.type >= FRAME_TYPE_MAX || f.nfields > FRAME_MAX_FIELDS)
		die("decode", "accepted a frame outside the limits");
	check_accessors(&f);

	if (frame_enc_frame(&e, &f) == -1 ||
	    frame_enc_finish(&e, &out, &len) == -1)
		die("re-encode", e.err);
	if (len > size)
		die("re-encode", "canonical form is longer than the input");
	if (frame_decode(out, len, &g, err, sizeof(err)) == -1)
		die("decode of re-encoded frame", err);
	if (!frame_equal(&f, &g))
		die("round trip", "frames differ");

	if (frame_enc_frame(&e2, &g) == -1 ||
	    frame_enc_finish(&e2, &out2, &len2) == -1)
		die("second re-encode", e2.err);
	if (len2 != len || memcmp(out, out2, len) != 0)
		die("round trip", "encoding is not canonical");

	frame_enc_free(&e2);
	frame_free(&g);
	frame_enc_free(&e);
	frame_free(&f);
	return 0;
}

#ifdef FUZZ_SEEDGEN
static void
write_seed(const char *dir, const char *name, struct frame_enc *e)
{
	const void *data;
	size_t len;
	char path[512];
	FILE *fp;

	if (frame_enc_finish(e, &data, &len) == -1)
		die(name, e->err);
	LLVMFuzzerTestOneInput(data, len);	/* seeds must pass the checks */
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if ((fp = fopen(path, "wb")) == NULL)
		die(path, "cannot create");
	if (fwrite(data, 1, len, fp) != len || fclose(fp) != 0)
		die(path, "cannot write");
	frame_enc_free(e);
}

int
main(int argc, char **argv)
{
	static const unsigned char nonce[FRAME_NONCE_LEN] = { 0xa5 };
	static const unsigned char sig[FRAME_SIG_LEN] = { 0x5a };
	static const struct frame_str models[] = {
		{ "gpt-4o", 6 }, { "gpt-4o-mini", 11 }
	};
	struct frame_enc e;
	const char *dir;

	if (argc != 2) {
		fprintf(stderr, "usage: %s DIR\n", argv[0]);
		return 2;
	}
	dir = argv[1];

	frame_enc_begin(&e, FRAME_HELLO, 0, 2);
	frame_enc_cstr(&e, "version", "0.1.0");
	frame_enc_cstr(&e, "public_ip", "192.0.2.7");
	write_seed(dir, "hello", &e);

	frame_enc_begin(&e, FRAME_METRICS, 0, 9);
	frame_enc_cstr(&e, "channel", "main");
	frame_enc_u64(&e, "minute", 29000000);
	frame_enc_u64(&e, "requests", 12);
	frame_enc_u64(&e, "tokens", 3400);
	frame_enc_u64(&e, "errors", 1);
	frame_enc_u64(&e, "inflight", 2);
	frame_enc_u64(&e, "latency_ms", 250);
	frame_enc_u64(&e, "bucket_requests", 500);
	frame_enc_u64(&e, "bucket_tokens", 90000);
	write_seed(dir, "metrics", &e);

	frame_enc_begin(&e, FRAME_CHALLENGE, 0, 1);
	frame_enc_bin(&e, "nonce", nonce, sizeof(nonce));
	write_seed(dir, "challenge", &e);

	frame_enc_begin(&e, FRAME_AUTH, 0, 2);
	frame_enc_u64(&e, "agent_id", 42);
	frame_enc_bin(&e, "sig", sig, sizeof(sig));
	write_seed(dir, "auth", &e);

	frame_enc_begin(&e, FRAME_CHANNELS, 0, 7);
	frame_enc_bool(&e, "done", false);
	frame_enc_cstr(&e, "name", "main");
	frame_enc_cstr(&e, "provider", "openai");
	frame_enc_strv(&e, "models", models, 2);
	frame_enc_cstr(&e, "grade", "A");
	frame_enc_u64(&e, "rpm", 600);
	frame_enc_u64(&e, "tpm", 150000);
	write_seed(dir, "channels", &e);

	frame_enc_begin(&e, FRAME_CHANNELS, 0, 1);
	frame_enc_bool(&e, "done", true);
	write_seed(dir, "channels-done", &e);

	frame_enc_begin(&e, FRAME_REQ_BODY, 3, 2);
	frame_enc_bin(&e, "data", "{\"model\":\"gpt-4o\"}", 18);
	frame_enc_i64(&e, "delta", -12345678901LL);
	write_seed(dir, "req_body", &e);

	frame_enc_begin(&e, FRAME_PING, 0, 1);
	frame_enc_u64(&e, "ts", 1700000000123ull);
	write_seed(dir, "ping", &e);

	frame_enc_begin(&e, FRAME_ERROR, 5, 2);
	frame_enc_cstr(&e, "code", "upstream");
	frame_enc_cstr(&e, "message", "provider returned 529");
	write_seed(dir, "error", &e);

	frame_enc_begin(&e, FRAME_CANCEL, 9, 0);
	write_seed(dir, "cancel", &e);

	frame_enc_begin(&e, FRAME_WS_MSG, 7, 2);
	frame_enc_bin(&e, "data", "{\"type\":\"response.create\"}", 26);
	frame_enc_bool(&e, "text", true);
	write_seed(dir, "ws_msg", &e);
	return 0;
}
#endif
