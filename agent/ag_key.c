/*
 * agent/ag_key: generates, saves, loads and uses the agent's Ed25519 key
 * (format in ag_key.h); file access goes through agent/platform.
 */
#include "agent/ag_key.h"
#include "agent/platform.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

_Static_assert(AG_KEY_PK_LEN == crypto_sign_PUBLICKEYBYTES, "pk size");
_Static_assert(AG_KEY_SK_LEN == crypto_sign_SECRETKEYBYTES, "sk size");
_Static_assert(AG_KEY_SIG_LEN == crypto_sign_BYTES, "signature size");
_Static_assert(AG_KEY_B64_LEN + 1 == sodium_base64_ENCODED_LEN(AG_KEY_SK_LEN,
    sodium_base64_VARIANT_ORIGINAL), "secret key base64 length");
_Static_assert(AG_PK_B64_LEN + 1 == sodium_base64_ENCODED_LEN(AG_KEY_PK_LEN,
    sodium_base64_VARIANT_ORIGINAL), "public key base64 length");

/* Idempotent; every entry point calls it so callers cannot forget. */
static void
sodium_ready(void)
{
	if (sodium_init() < 0)
		abort();
}

static void
encode_pk(struct ag_key *k)
{
	sodium_bin2base64(k->pk_b64, sizeof(k->pk_b64), k->pk, sizeof(k->pk),
	    sodium_base64_VARIANT_ORIGINAL);
}

void
ag_key_generate(struct ag_key *k)
{
	sodium_ready();
	crypto_sign_keypair(k->pk, k->sk);
	encode_pk(k);
}

int
ag_key_save(const struct ag_key *k, const char *path, int overwrite,
    char *err, size_t errlen)
{
	char text[AG_KEY_FILE_LEN + 1];
	int rc;

	sodium_bin2base64(text, sizeof(text), k->sk, sizeof(k->sk),
	    sodium_base64_VARIANT_ORIGINAL);
	text[AG_KEY_B64_LEN] = '\n';
	rc = plat_write_secret_file(path, text, AG_KEY_FILE_LEN, overwrite,
	    err, errlen);
	sodium_memzero(text, sizeof(text));
	return rc;
}

int
ag_key_load(struct ag_key *k, const char *path, char *err, size_t errlen)
{
	char text[128];		/* room to name a near miss (CRLF...) */
	unsigned char seed[crypto_sign_SEEDBYTES];
	unsigned char pk[AG_KEY_PK_LEN], sk[AG_KEY_SK_LEN];
	const char *end;
	size_t n, binlen;
	int rc = -1;

	sodium_ready();
	memset(k, 0, sizeof(*k));
	if (plat_read_secret_file(path, text, sizeof(text), &n, err,
	    errlen) != 0)
		return -1;
	if (!(n == AG_KEY_B64_LEN ||
	    (n == AG_KEY_FILE_LEN && text[AG_KEY_B64_LEN] == '\n'))) {
		snprintf(err, errlen, "%s: wrong size or format (%zu bytes; "
		    "expected %d: base64 of a 64-byte Ed25519 secret key and "
		    "a newline, as written by agentd keygen)", path, n,
		    AG_KEY_FILE_LEN);
		goto out;
	}
	if (sodium_base642bin(k->sk, sizeof(k->sk), text, AG_KEY_B64_LEN,
	    NULL, &binlen, &end, sodium_base64_VARIANT_ORIGINAL) != 0 ||
	    binlen != sizeof(k->sk) || end != text + AG_KEY_B64_LEN) {
		snprintf(err, errlen, "%s: not base64 of a 64-byte Ed25519 "
		    "secret key", path);
		goto out;
	}
	/* The second half is the public key; it must derive from the seed. */
	crypto_sign_ed25519_sk_to_seed(seed, k->sk);
	crypto_sign_seed_keypair(pk, sk, seed);
	if (sodium_memcmp(sk, k->sk, sizeof(sk)) != 0) {
		snprintf(err, errlen, "%s: corrupt key (its public half does "
		    "not match its seed)", path);
		goto out;
	}
	memcpy(k->pk, pk, sizeof(pk));
	encode_pk(k);
	rc = 0;
out:
	if (rc != 0)
		sodium_memzero(k, sizeof(*k));
	sodium_memzero(text, sizeof(text));
	sodium_memzero(seed, sizeof(seed));
	sodium_memzero(sk, sizeof(sk));
	return rc;
}

void
ag_key_sign(const struct ag_key *k, const void *msg, size_t len,
    unsigned char sig[AG_KEY_SIG_LEN])
{
	crypto_sign_detached(sig, NULL, msg, len, k->sk);
}

void
ag_key_wipe(struct ag_key *k)
{
	sodium_memzero(k, sizeof(*k));
}
