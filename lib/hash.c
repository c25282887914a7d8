/*
 * lib/hash: SHA-256 digests, raw and in hex.  OpenSSL's, not libsodium's:
 * OpenSSL uses the CPU's SHA instructions (or AVX2) where libsodium runs
 * portable C, and a ledger entry is hashed on every post by billing and
 * on every receipt by agentd, a token on every request by the gateway.
 */
#include "lib/hash.h"

#include <pthread.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <sodium.h>

/* SHA-256 fetched from OpenSSL's provider once for the process (a fetch
 * per call, which SHA256() does, takes more than the hash of a ledger
 * entry); shared by every thread, never freed. */
static pthread_once_t md_once = PTHREAD_ONCE_INIT;
static EVP_MD *md;

static void
md_fetch(void)
{
	md = EVP_MD_fetch(NULL, "SHA256", NULL);
}

void
hash_sha256(const void *p, size_t len, unsigned char out[32])
{
	unsigned int n;

	(void)pthread_once(&md_once, md_fetch);
	if (md == NULL || EVP_Digest(p, len, out, &n, md, NULL) != 1)
		(void)SHA256(p, len, out);
}

void
hash_sha256_hex(const void *p, size_t len, char out[65])
{
	unsigned char h[32];

	hash_sha256(p, len, h);
	sodium_bin2hex(out, 65, h, sizeof(h));
}

int
hash_hex_ok(const char *s)
{
	size_t i;

	if (s == NULL)
		return 0;
	for (i = 0; i < 64; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return 0;
	return s[i] == '\0';
}

uint32_t
hash_fnv1a_str(uint32_t h, const char *s)
{
	for (const unsigned char *p = (const unsigned char *)s; *p != '\0';
	    p++)
		h = (h ^ *p) * 16777619u;
	return h;
}
