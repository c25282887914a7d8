/*
 * lib/hash: SHA-256 in lowercase hex (token secrets, ledger hashes).
 */
#ifndef SWB_HASH_H
#define SWB_HASH_H

#include <stddef.h>

void hash_sha256_hex(const void *p, size_t len, char out[65]);

#endif
