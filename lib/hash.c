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
