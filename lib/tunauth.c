/*
 * lib/tunauth: handshake signing/verification, TLS exporter, SPKI pins.
 */
#include "lib/tunauth.h"
#include "lib/csv.h"

#include <string.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <openssl/x509.h>
#include <sodium.h>

int
tunauth_exporter(SSL *ssl, unsigned char out[TUNAUTH_EXPORTER_LEN])
{
	static const char label[] = "EXPORTER-Channel-Binding";

	if (ssl == NULL || SSL_version(ssl) != TLS1_3_VERSION)
		return -1;
	if (SSL_export_keying_material(ssl, out, TUNAUTH_EXPORTER_LEN, label,
	    sizeof(label) - 1, NULL, 0, 0) != 1)
		return -1;
	return 0;
}

void
tunauth_message(unsigned char out[TUNAUTH_MSG_LEN], uint64_t agent_id,
    const unsigned char nonce[TUNAUTH_NONCE_LEN],
    const unsigned char exporter[TUNAUTH_EXPORTER_LEN])
{
	size_t n = sizeof(TUNAUTH_CONTEXT) - 1;

	memcpy(out, TUNAUTH_CONTEXT, n);
	for (int i = 0; i < 8; i++)
		out[n + (size_t)i] = (unsigned char)(agent_id >> (56 - 8 * i));
	n += 8;
	memcpy(out + n, nonce, TUNAUTH_NONCE_LEN);
	n += TUNAUTH_NONCE_LEN;
	memcpy(out + n, exporter, TUNAUTH_EXPORTER_LEN);
}

void
tunauth_sign(unsigned char sig[TUNAUTH_SIG_LEN],
    const unsigned char sk[TUNAUTH_SK_LEN], uint64_t agent_id,
    const unsigned char nonce[TUNAUTH_NONCE_LEN],
    const unsigned char exporter[TUNAUTH_EXPORTER_LEN])
{
	unsigned char m[TUNAUTH_MSG_LEN];

	tunauth_message(m, agent_id, nonce, exporter);
	crypto_sign_detached(sig, NULL, m, sizeof(m), sk);
}

int
tunauth_verify(const unsigned char sig[TUNAUTH_SIG_LEN],
    const unsigned char pk[TUNAUTH_PK_LEN], uint64_t agent_id,
    const unsigned char nonce[TUNAUTH_NONCE_LEN],
    const unsigned char exporter[TUNAUTH_EXPORTER_LEN])
{
	unsigned char m[TUNAUTH_MSG_LEN];

	tunauth_message(m, agent_id, nonce, exporter);
	return crypto_sign_verify_detached(sig, m, sizeof(m), pk) == 0 ? 0 : -1;
}

int
tunauth_spki_sha256(X509 *cert, unsigned char out[32])
{
	unsigned char *der = NULL;
	int len;

	len = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(cert), &der);
	if (len <= 0)
		return -1;
	SHA256(der, (size_t)len, out);
	OPENSSL_free(der);
	return 0;
}

int
tunauth_spki_pin(X509 *cert, char *out, size_t outlen)
{
	unsigned char hash[SHA256_DIGEST_LENGTH];
	unsigned char b64[64];

	if (tunauth_spki_sha256(cert, hash) != 0)
		return -1;
	EVP_EncodeBlock(b64, hash, sizeof(hash));
	if ((size_t)snprintf(out, outlen, "sha256//%s", b64) >= outlen)
		return -1;
	return 0;
}

int
tunauth_pin_match(X509 *cert, const char *pins)
{
	char pin[80];

	if (cert == NULL || pins == NULL || tunauth_spki_pin(cert, pin, sizeof(pin)) != 0)
		return 0;
	return csv_has(pins, pin);
}
