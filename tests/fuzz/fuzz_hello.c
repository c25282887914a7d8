/*
 * tests/fuzz/fuzz_hello: libFuzzer target for the first bytes a stranger
 * sends to the TLS user port — the ClientHello whose ALPN decides which
 * code serves the connection (gateway/gw_hello.c).  Checks: the parser
 * never reads past what it is given (the input is copied to a buffer of
 * exactly its size); the verdict is one of the four; "more" asks for more
 * than it has and at most one record; more bytes never change a verdict
 * once it was reached (the decision rests on the first record alone).
 *
 * Built with -DFUZZ_SEEDGEN it writes its seeds into DIR.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/gw_hello.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

_Noreturn static void
die(const char *why)
{
	fprintf(stderr, "fuzz_hello: %s\n", why);
	abort();
}

static int
verdict(const uint8_t *data, size_t n, size_t *need)
{
	unsigned char *p = malloc(n ? n : 1);
	int v;

	if (p == NULL)
		die("out of memory");
	memcpy(p, data, n);
	v = gw_tls_hello(p, n, need);
	free(p);
	if (v < GW_HELLO_MORE || v > GW_HELLO_OTHER)
		die("a verdict out of range");
	if (v == GW_HELLO_MORE && (*need <= n || *need > 5 + 16384))
		die("asked for more without needing more, or past a record");
	return v;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t need, need2;
	int v = verdict(data, size, &need), v2;

	if (v == GW_HELLO_MORE)
		return 0;
	/* The smallest prefix that decides must decide the same way. */
	v2 = verdict(data, size < 5 ? size : 5, &need2);
	if (v2 == GW_HELLO_MORE && need2 <= size)
		v2 = verdict(data, need2, &need2);
	if (v2 != GW_HELLO_MORE && v2 != v)
		die("more bytes changed the verdict");
	return 0;
}

#ifdef FUZZ_SEEDGEN
/* A ClientHello record offering the ALPN names in alpn (wire form). */
static size_t
hello(unsigned char *out, const char *alpn, size_t alen)
{
	unsigned char body[512];
	size_t b = 0, ext;

	body[b++] = 3; body[b++] = 3;			/* legacy version */
	memset(body + b, 7, 32); b += 32;		/* random */
	body[b++] = 0;					/* session id */
	body[b++] = 0; body[b++] = 2; body[b++] = 0x13; body[b++] = 1;
	body[b++] = 1; body[b++] = 0;			/* compression */
	ext = b;
	b += 2;
	if (alen > 0) {
		body[b++] = 0; body[b++] = 16;		/* ALPN */
		body[b++] = (unsigned char)((alen + 2) >> 8);
		body[b++] = (unsigned char)(alen + 2);
		body[b++] = (unsigned char)(alen >> 8);
		body[b++] = (unsigned char)alen;
		memcpy(body + b, alpn, alen); b += alen;
	}
	body[b++] = 0; body[b++] = 0; body[b++] = 0; body[b++] = 0;	/* SNI, empty */
	body[ext] = (unsigned char)((b - ext - 2) >> 8);
	body[ext + 1] = (unsigned char)(b - ext - 2);
	out[0] = 0x16; out[1] = 3; out[2] = 1;
	out[3] = (unsigned char)((b + 4) >> 8); out[4] = (unsigned char)(b + 4);
	out[5] = 1; out[6] = 0;
	out[7] = (unsigned char)(b >> 8); out[8] = (unsigned char)b;
	memcpy(out + 9, body, b);
	return 9 + b;
}

static void
seed(const char *dir, const char *name, const unsigned char *p, size_t n,
    int want)
{
	char path[512];
	size_t need;
	FILE *f;

	if (gw_tls_hello(p, n, &need) != want) {
		fprintf(stderr, "seed %s: verdict %d, want %d\n", name,
		    gw_tls_hello(p, n, &need), want);
		exit(1);
	}
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if ((f = fopen(path, "w")) == NULL) {
		perror(path);
		exit(1);
	}
	fwrite(p, 1, n, f);
	fclose(f);
}

int
main(int argc, char **argv)
{
	static const char both[] = "\x02h2\x08http/1.1", h1[] = "\x08http/1.1";
	unsigned char b[1024];
	size_t n;

	if (argc != 2)
		return 2;
	n = hello(b, both, sizeof(both) - 1);
	seed(argv[1], "h2", b, n, GW_HELLO_H2);
	seed(argv[1], "h2-partial", b, n - 3, GW_HELLO_MORE);
	n = hello(b, h1, sizeof(h1) - 1);
	seed(argv[1], "h1", b, n, GW_HELLO_H1);
	n = hello(b, NULL, 0);
	seed(argv[1], "no-alpn", b, n, GW_HELLO_H1);
	seed(argv[1], "http", (const unsigned char *)"GET / HTTP/1.1\r\n", 16,
	    GW_HELLO_OTHER);
	return 0;
}
#endif
