/*
 * agent/ag_key: the agent's Ed25519 identity (libsodium) — generating it
 * (agentd keygen), storing it, loading it at start-up, signing with it.
 *
 * Key file format (agent.key): the 64-byte libsodium Ed25519 secret key
 * (32-byte seed followed by the 32-byte public key) encoded as standard
 * base64 with padding (sodium_base64_VARIANT_ORIGINAL, 88 characters),
 * then one newline: 89 bytes in all (a missing final newline is accepted).
 * The file must be a regular file readable and writable by its owner only
 * (plat_check_key_perms); anything else is refused.
 */
#ifndef SWB_AG_KEY_H
#define SWB_AG_KEY_H

#include <stddef.h>

#define AG_KEY_PK_LEN	32	/* crypto_sign_PUBLICKEYBYTES */
#define AG_KEY_SK_LEN	64	/* crypto_sign_SECRETKEYBYTES */
#define AG_KEY_SIG_LEN	64	/* crypto_sign_BYTES */
#define AG_KEY_B64_LEN	88	/* base64 characters of the secret key */
#define AG_KEY_FILE_LEN	(AG_KEY_B64_LEN + 1)
#define AG_PK_B64_LEN	44	/* base64 characters of the public key */

struct ag_key {
	unsigned char pk[AG_KEY_PK_LEN];
	unsigned char sk[AG_KEY_SK_LEN];	/* wipe with ag_key_wipe() */
	char pk_b64[AG_PK_B64_LEN + 1];		/* what the hub registers */
};

/* A new random keypair (crypto_sign_keypair). */
void ag_key_generate(struct ag_key *k);
/*
 * Write k's secret key to path in the format above, mode 0600.  Returns 0,
 * PLAT_EXISTS when path exists and !overwrite, or PLAT_ERR; err says why.
 */
int ag_key_save(const struct ag_key *k, const char *path, int overwrite,
    char *err, size_t errlen);
/*
 * Load path into k after the permission checks; refuses a file of the wrong
 * size, bad base64, or whose public half does not match its seed.
 * Returns 0 or -1 with err filled.
 */
int ag_key_load(struct ag_key *k, const char *path, char *err, size_t errlen);
/* Detached Ed25519 signature of msg (for the tunnel handshake). */
void ag_key_sign(const struct ag_key *k, const void *msg, size_t len,
    unsigned char sig[AG_KEY_SIG_LEN]);
/* Zero the whole struct, secret key included. */
void ag_key_wipe(struct ag_key *k);

#endif
