/*
 * lib/tunauth: the tunnel handshake's cryptography, shared by hub and
 * agent, so both sides build the signed bytes the same way.
 *
 * Handshake (after TLS 1.3 is up and the WebSocket is open):
 *   hub   -> agent  CHALLENGE {nonce: 32 random bytes, single use}
 *   agent -> hub    AUTH {agent_id, nonce, sig}
 *   hub   -> agent  WELCOME {session}            (or the connection closes)
 *   agent -> hub    CHANNELS ... (one frame per channel, then done)
 *
 * sig = Ed25519(agent key, TUNAUTH_CONTEXT || agent_id (u64, big endian)
 *                          || nonce (32) || exporter (32))
 * where exporter is the RFC 9266 channel binding of this TLS session
 * (label "EXPORTER-Channel-Binding", no context, 32 bytes): a signature
 * made on one TLS session is worthless on any other.
 */
#ifndef SWB_TUNAUTH_H
#define SWB_TUNAUTH_H

#include <stddef.h>
#include <stdint.h>
#include <openssl/ssl.h>

#define TUNAUTH_CONTEXT		"switchboard tunnel auth v1"
#define TUNAUTH_NONCE_LEN	32
#define TUNAUTH_EXPORTER_LEN	32
#define TUNAUTH_SIG_LEN		64
#define TUNAUTH_PK_LEN		32
#define TUNAUTH_SK_LEN		64
#define TUNAUTH_MSG_LEN		(sizeof(TUNAUTH_CONTEXT) - 1 + 8 + \
				 TUNAUTH_NONCE_LEN + TUNAUTH_EXPORTER_LEN)

/* RFC 9266 exporter of a TLS 1.3 session.  0, or -1 (not TLS 1.3, error). */
int tunauth_exporter(SSL *ssl, unsigned char out[TUNAUTH_EXPORTER_LEN]);
/* The exact bytes that are signed. */
void tunauth_message(unsigned char out[TUNAUTH_MSG_LEN], uint64_t agent_id,
    const unsigned char nonce[TUNAUTH_NONCE_LEN],
    const unsigned char exporter[TUNAUTH_EXPORTER_LEN]);
void tunauth_sign(unsigned char sig[TUNAUTH_SIG_LEN],
    const unsigned char sk[TUNAUTH_SK_LEN], uint64_t agent_id,
    const unsigned char nonce[TUNAUTH_NONCE_LEN],
    const unsigned char exporter[TUNAUTH_EXPORTER_LEN]);
/* 0 when the signature verifies, -1 otherwise. */
int tunauth_verify(const unsigned char sig[TUNAUTH_SIG_LEN],
    const unsigned char pk[TUNAUTH_PK_LEN], uint64_t agent_id,
    const unsigned char nonce[TUNAUTH_NONCE_LEN],
    const unsigned char exporter[TUNAUTH_EXPORTER_LEN]);

/*
 * Pins: "sha256//BASE64" of the SHA-256 of a certificate's
 * SubjectPublicKeyInfo (DER), as curl's --pinnedpubkey writes them.
 */
int tunauth_spki_pin(X509 *cert, char *out, size_t outlen);
/* The raw SHA-256 of cert's SubjectPublicKeyInfo.  0 or -1. */
int tunauth_spki_sha256(X509 *cert, unsigned char out[32]);
/* Is the pin of cert one of the comma-separated pins?  1 yes, 0 no. */
int tunauth_pin_match(X509 *cert, const char *pins);

#endif
