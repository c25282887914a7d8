/*
 * child/hubkey: the hub's Ed25519 ledger key file, whose key signs every
 * ledger entry (receipts).  Only billing loads it (before it drops its
 * privileges: the file may be readable by root alone) and only billing
 * holds the secret half; the tunnel gets the public half from billing
 * (IPC_LEDGER_KEY) for its welcome to agents.  At start-up the master has
 * a short-lived child check or create the file, so that a bad key stops
 * hubd before anything runs while the master's own memory never holds it.
 * The file holds the base64 of the 64-byte libsodium secret key and a
 * newline — the format `agentd keygen` writes — and is created (mode
 * 0600, owned by whoever creates it: root when hubd starts as root) when
 * missing.
 */
#ifndef SWB_HUBKEY_H
#define SWB_HUBKEY_H

#include <stddef.h>

struct hub_key {
	unsigned char pk[32];
	unsigned char sk[64];
	int loaded;
};

/* Load path into *k, creating a new key there (and its directory) if the
 * file does not exist.  0, or -1 with a message in err. */
int hub_key_load(const char *path, struct hub_key *k, char *err,
    size_t errlen);
/* Wipe a loaded key. */
void hub_key_wipe(struct hub_key *k);

#endif
