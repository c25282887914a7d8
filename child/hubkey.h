/*
 * child/hubkey: the hub's Ed25519 ledger key, which signs every ledger
 * entry (receipts).  The master loads it at start-up, before forking, so
 * every child has it in memory: billing signs with the secret half, the
 * tunnel hands the public half to agents in welcome.  The file holds the
 * base64 of the 64-byte libsodium secret key and a newline — the format
 * `agentd keygen` writes — and is created (mode 0600) when missing.
 */
#ifndef SWB_HUBKEY_H
#define SWB_HUBKEY_H

#include <stddef.h>

struct hub_key {
	unsigned char pk[32];
	unsigned char sk[64];
	int loaded;
};

extern struct hub_key hub_ledger_key;	/* written once, before fork */

/* Load path into hub_ledger_key, creating a new key there if the file
 * does not exist.  0, or -1 with a message in err. */
int hub_key_load(const char *path, char *err, size_t errlen);

#endif
