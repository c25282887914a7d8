/*
 * lib/hash: SHA-256 digests, raw and in hex.  OpenSSL's, not libsodium's:
 * OpenSSL uses the CPU's SHA instructions (or AVX2) where libsodium runs
 * portable C, and a ledger entry is hashed on every post by billing and
 * on every receipt by agentd, a token on every request by the gateway.
 */
#include "lib/hash.h"

#include <openssl/sha.h>
#include <sodium.h>

void
hash_sha256(const void *p, size_t len, unsigned char out[32])
{
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
