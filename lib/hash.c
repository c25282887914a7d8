/*
 * lib/hash: SHA-256 hex digests with libsodium.
 */
#include "lib/hash.h"

#include <sodium.h>

void
hash_sha256_hex(const void *p, size_t len, char out[65])
{
	unsigned char h[crypto_hash_sha256_BYTES];

	crypto_hash_sha256(h, p, len);
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
