/*
 * agent/ag_token: OAuth access tokens from a Google service account, for
 * channels whose adapter asks for them (Vertex AI).  Owns three pure
 * pieces the upstream engine (agent/ag_upstream) drives from its curl
 * thread, so nothing here blocks the tunnel's loop:
 *
 *   - the service-account file: refused when group or others may access
 *     it; JSON with type "service_account", client_email, private_key (an
 *     RSA key in PEM) and token_uri, which must be the compiled-in
 *     https://oauth2.googleapis.com/token (no other host is ever sent a
 *     signed assertion);
 *   - the RS256 JWT assertion (header {"alg":"RS256","typ":"JWT"}, claims
 *     iss = client_email, scope cloud-platform, aud = token_uri, iat, exp =
 *     iat + 3600) and the form body of the exchange
 *     (grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer&assertion=JWT);
 *   - the token cache of one channel: its state at a given time, what the
 *     exchange's answer does to it, and the back-off after a refusal.
 *
 * Cache timing (all times monotonic ms): a token answered with expires_in
 * E seconds at time T is used until T + 0.9 E and refreshed from T + 0.8 E
 * on (in the background: requests keep using it meanwhile).  A refused or
 * failed exchange puts the cache in FAILED for a back-off (5 s, doubling
 * up to 5 min, reset by a success); requests that find it FAILED are
 * refused at once with the reason, and the first refusal after a working
 * state is the one that is logged.
 */
#ifndef SWB_AG_TOKEN_H
#define SWB_AG_TOKEN_H

#include <stddef.h>
#include <stdint.h>
#include <openssl/evp.h>
#include "agent/ag_conf.h"

#define AG_SA_TOKEN_URI		"https://oauth2.googleapis.com/token"
#define AG_SA_SCOPE		"https://www.googleapis.com/auth/cloud-platform"
#define AG_SA_FILE_MAX		(64 * 1024)	/* bytes of a key file */
#define AG_SA_EMAIL_MAX		256
#define AG_TOKEN_MAX		4096		/* bytes of an access token */
#define AG_JWT_LIFETIME_S	3600
#define AG_TOK_BACKOFF_MIN_MS	5000
#define AG_TOK_BACKOFF_MAX_MS	300000

/* A parsed service account.  key is owned (ag_sa_free). */
struct ag_sa {
	char client_email[AG_SA_EMAIL_MAX];
	char token_uri[64];
	EVP_PKEY *key;
};

/* Parse a service-account JSON document.  0, or -1 with err filled
 * (never quoting the key). */
int ag_sa_parse(const char *json, size_t len, struct ag_sa *sa, char *err,
    size_t errlen);
/* Check path's mode (no access for group or others, a regular file),
 * read and parse it.  0, or -1 with err "PATH: why". */
int ag_sa_load(const char *path, struct ag_sa *sa, char *err, size_t errlen);
void ag_sa_free(struct ag_sa *sa);

/* The signed assertion for time now_s (Unix seconds): a malloc'd string,
 * or NULL with err filled. */
char *ag_jwt_make(const struct ag_sa *sa, int64_t now_s, char *err,
    size_t errlen);
/* The exchange's form body for jwt (malloc'd), or NULL. */
char *ag_jwt_form(const char *jwt);

enum ag_tok_state {
	AG_TOK_NONE,		/* no token, no refusal: exchange, and wait */
	AG_TOK_VALID,		/* use it */
	AG_TOK_REFRESH,		/* use it, and refresh it */
	AG_TOK_FAILED,		/* refused, back-off running: refuse */
	AG_TOK_RETRY,		/* refused, back-off over: exchange, and wait */
};

/* One channel's token cache (the engine's curl side owns it). */
struct ag_tok {
	char channel[AG_CHAN_NAME_MAX];
	char path[AG_SECRET_MAX];	/* the service-account file */
	char token[AG_TOKEN_MAX];	/* "" when none */
	int64_t use_until_ms, refresh_ms;
	int inflight;			/* an exchange is running */
	int failed;			/* the last exchange failed */
	int64_t retry_ms, backoff_ms;
	char reason[200];		/* why it failed */
};

enum ag_tok_state ag_tok_state(const struct ag_tok *t, int64_t now_ms);
/*
 * The exchange answered HTTP status with body: on 200 with a JSON
 * access_token (printable ASCII, at most AG_TOKEN_MAX - 1 bytes) and a
 * positive integer expires_in, the token is cached: 0.  Otherwise the
 * cache fails, the reason naming the status and the answer's error and
 * error_description: 1 when this failure starts a failed episode (the one
 * to log), 2 when the cache had failed already.
 */
int ag_tok_answer(struct ag_tok *t, int64_t now_ms, long status,
    const char *body, size_t len);
/* The exchange could not be made or got no answer (why): as above, 1 or
 * 2. */
int ag_tok_fail(struct ag_tok *t, int64_t now_ms, const char *why);

#endif
