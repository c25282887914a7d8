/*
 * lib/hash: SHA-256, raw or in lowercase hex (token secrets, ledger
 * hashes).
 */
#ifndef SWB_HASH_H
#define SWB_HASH_H

#include <stddef.h>

void hash_sha256(const void *p, size_t len, unsigned char out[32]);
void hash_sha256_hex(const void *p, size_t len, char out[65]);
/* 1 when s is exactly 64 lowercase hex digits (what hash_sha256_hex
 * writes), 0 otherwise (NULL included). */
int  hash_hex_ok(const char *s);

#endif
