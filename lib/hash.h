/*
 * lib/hash: SHA-256, raw or in lowercase hex (token secrets, ledger
 * hashes); FNV-1a for the slots of in-memory tables.
 */
#ifndef SWB_HASH_H
#define SWB_HASH_H

#include <stddef.h>
#include <stdint.h>

void hash_sha256(const void *p, size_t len, unsigned char out[32]);
void hash_sha256_hex(const void *p, size_t len, char out[65]);
/* 1 when s is exactly 64 lowercase hex digits (what hash_sha256_hex
 * writes), 0 otherwise (NULL included). */
int  hash_hex_ok(const char *s);
/* FNV-1a (32 bits) of the C string s, going on from h: HASH_FNV_INIT
 * for the first part.  Not for anything a peer could aim at a table
 * bigger than it can fill. */
#define HASH_FNV_INIT	2166136261u
uint32_t hash_fnv1a_str(uint32_t h, const char *s);

#endif
