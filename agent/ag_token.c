/*
 * agent/ag_token: service-account files, RS256 JWT assertions and the
 * access-token cache of a Vertex channel (see ag_token.h).  Pure: no
 * network, no threads; the upstream engine runs the exchange.
 */
#include "agent/ag_token.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <jansson.h>
#include <openssl/bio.h>
#include <openssl/pem.h>
#include <sodium.h>

#define RSA_MIN_BITS	2048

/* ---- the service-account file ---- */

static int
printable(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x21 || (unsigned char)s[i] > 0x7e)
			return 0;
	return 1;
}

int
ag_sa_parse(const char *json, size_t len, struct ag_sa *sa, char *err,
    size_t errlen)
{
	json_t *root, *v;
	const char *type, *email, *uri, *pem;
	BIO *bio = NULL;
	int rc = -1;

	memset(sa, 0, sizeof(*sa));
	if ((root = json_loadb(json, len, JSON_REJECT_DUPLICATES, NULL)) ==
	    NULL || !json_is_object(root)) {
		snprintf(err, errlen, "not a JSON object");
		goto out;
	}
	type = json_string_value(json_object_get(root, "type"));
	email = json_string_value(v = json_object_get(root, "client_email"));
	uri = json_string_value(json_object_get(root, "token_uri"));
	pem = json_string_value(json_object_get(root, "private_key"));
	if (type == NULL || strcmp(type, "service_account") != 0) {
		snprintf(err, errlen, "type is not \"service_account\"");
		goto out;
	}
	if (email == NULL || json_string_length(v) == 0 ||
	    json_string_length(v) >= sizeof(sa->client_email) ||
	    !printable(email, json_string_length(v)) ||
	    strchr(email, '"') != NULL || strchr(email, '\\') != NULL) {
		snprintf(err, errlen, "client_email is missing or not an "
		    "address");
		goto out;
	}
	/* The assertion goes to this URL only: a compiled-in one. */
	if (uri == NULL || strcmp(uri, AG_SA_TOKEN_URI) != 0) {
		snprintf(err, errlen, "token_uri must be %s", AG_SA_TOKEN_URI);
		goto out;
	}
	if (pem == NULL) {
		snprintf(err, errlen, "private_key is missing");
		goto out;
	}
	v = json_object_get(root, "private_key");
	if ((bio = BIO_new_mem_buf(pem, (int)json_string_length(v))) == NULL ||
	    (sa->key = PEM_read_bio_PrivateKey(bio, NULL, NULL,
	    (void *)"")) == NULL) {
		snprintf(err, errlen, "private_key is not a PEM private key "
		    "without a passphrase");
		goto out;
	}
	if (EVP_PKEY_base_id(sa->key) != EVP_PKEY_RSA ||
	    EVP_PKEY_bits(sa->key) < RSA_MIN_BITS) {
		snprintf(err, errlen, "private_key is not an RSA key of %d bits "
		    "or more", RSA_MIN_BITS);
		goto out;
	}
	/* A key that parses may still not sign (inconsistent parts). */
	{
		unsigned char sig[1024];
		size_t sl = sizeof(sig);
		EVP_MD_CTX *ctx = EVP_MD_CTX_new();
		int ok = ctx != NULL && (size_t)EVP_PKEY_size(sa->key) <=
		    sizeof(sig) && EVP_DigestSignInit(ctx, NULL, EVP_sha256(),
		    NULL, sa->key) == 1 && EVP_DigestSign(ctx, sig, &sl,
		    (const unsigned char *)"check", 5) == 1;

		EVP_MD_CTX_free(ctx);
		if (!ok) {
			snprintf(err, errlen, "private_key cannot sign (a broken "
			    "or too large RSA key)");
			goto out;
		}
	}
	snprintf(sa->client_email, sizeof(sa->client_email), "%s", email);
	snprintf(sa->token_uri, sizeof(sa->token_uri), "%s", uri);
	rc = 0;
out:
	BIO_free(bio);
	json_decref(root);	/* held the key's PEM: jansson frees it */
	if (rc != 0)
		ag_sa_free(sa);
	return rc;
}

int
ag_sa_load(const char *path, struct ag_sa *sa, char *err, size_t errlen)
{
	struct stat st;
	char why[160], *buf = NULL;
	ssize_t n;
	size_t got = 0;
	int fd, rc = -1;

	memset(sa, 0, sizeof(*sa));
	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) == -1) {
		snprintf(err, errlen, "%s: cannot open: %s", path,
		    strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "%s: not a regular file", path);
		goto out;
	}
	if ((st.st_mode & (S_IRWXG | S_IRWXO)) != 0) {
		snprintf(err, errlen, "%s: mode %04o lets group or others at "
		    "this private key: chmod 600 it", path,
		    (unsigned)(st.st_mode & 07777));
		goto out;
	}
	if (st.st_size <= 0 || st.st_size > AG_SA_FILE_MAX) {
		snprintf(err, errlen, "%s: not a service-account file (%lld "
		    "bytes)", path, (long long)st.st_size);
		goto out;
	}
	if ((buf = malloc((size_t)st.st_size)) == NULL) {
		snprintf(err, errlen, "%s: out of memory", path);
		goto out;
	}
	while (got < (size_t)st.st_size &&
	    (n = read(fd, buf + got, (size_t)st.st_size - got)) > 0)
		got += (size_t)n;
	if (got != (size_t)st.st_size) {
		snprintf(err, errlen, "%s: read error", path);
		goto out;
	}
	if (ag_sa_parse(buf, got, sa, why, sizeof(why)) != 0) {
		snprintf(err, errlen, "%s: %s", path, why);
		goto out;
	}
	rc = 0;
out:
	if (buf != NULL) {
		sodium_memzero(buf, got);
		free(buf);
	}
	close(fd);
	return rc;
}

void
ag_sa_free(struct ag_sa *sa)
{
	if (sa == NULL)
		return;
	EVP_PKEY_free(sa->key);
	sa->key = NULL;
}

/* ---- the assertion ---- */

/* Append base64url (no padding) of p[0..n) to dst at *off. */
static int
b64url(char *dst, size_t dstlen, size_t *off, const void *p, size_t n)
{
	size_t need = sodium_base64_ENCODED_LEN(n,
	    sodium_base64_VARIANT_URLSAFE_NO_PADDING);

	if (*off + need > dstlen)
		return -1;
	sodium_bin2base64(dst + *off, need, p, n,
	    sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	*off += strlen(dst + *off);
	return 0;
}

char *
ag_jwt_make(const struct ag_sa *sa, int64_t now_s, char *err, size_t errlen)
{
	static const char header[] = "{\"alg\":\"RS256\",\"typ\":\"JWT\"}";
	char claims[AG_SA_EMAIL_MAX + 256];
	unsigned char sig[1024];
	size_t siglen = sizeof(sig), off = 0, cap;
	EVP_MD_CTX *ctx = NULL;
	char *out;
	int n;

	if (sa == NULL || sa->key == NULL) {
		snprintf(err, errlen, "no service-account key");
		return NULL;
	}
	n = snprintf(claims, sizeof(claims), "{\"iss\":\"%s\",\"scope\":\"%s\","
	    "\"aud\":\"%s\",\"iat\":%lld,\"exp\":%lld}", sa->client_email,
	    AG_SA_SCOPE, sa->token_uri, (long long)now_s,
	    (long long)(now_s + AG_JWT_LIFETIME_S));
	if (n < 0 || (size_t)n >= sizeof(claims)) {
		snprintf(err, errlen, "claims too long");
		return NULL;
	}
	if ((size_t)EVP_PKEY_size(sa->key) > sizeof(sig)) {
		snprintf(err, errlen, "key too large");
		return NULL;
	}
	cap = 4 * (sizeof(header) + (size_t)n + sizeof(sig)) / 3 + 16;
	if ((out = malloc(cap)) == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	if (b64url(out, cap, &off, header, sizeof(header) - 1) != 0 ||
	    off + 1 >= cap)
		goto fail;
	out[off++] = '.';
	if (b64url(out, cap, &off, claims, (size_t)n) != 0)
		goto fail;
	if ((ctx = EVP_MD_CTX_new()) == NULL ||
	    EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL, sa->key) != 1 ||
	    EVP_DigestSign(ctx, sig, &siglen, (const unsigned char *)out,
	    off) != 1)
		goto fail;
	if (off + 1 >= cap)
		goto fail;
	out[off++] = '.';
	if (b64url(out, cap, &off, sig, siglen) != 0)
		goto fail;
	EVP_MD_CTX_free(ctx);
	return out;
fail:
	snprintf(err, errlen, "cannot sign the assertion");
	EVP_MD_CTX_free(ctx);
	free(out);
	return NULL;
}

char *
ag_jwt_form(const char *jwt)
{
	static const char pre[] = "grant_type=urn%3Aietf%3Aparams%3Aoauth%3A"
	    "grant-type%3Ajwt-bearer&assertion=";
	size_t n = strlen(jwt);
	char *out = malloc(sizeof(pre) + n);

	if (out == NULL)
		return NULL;
	memcpy(out, pre, sizeof(pre) - 1);
	memcpy(out + sizeof(pre) - 1, jwt, n + 1);
	return out;
}

/* ---- the cache ---- */

enum ag_tok_state
ag_tok_state(const struct ag_tok *t, int64_t now_ms)
{
	if (t->failed)
		return now_ms >= t->retry_ms ? AG_TOK_RETRY : AG_TOK_FAILED;
	if (t->token[0] == '\0' || now_ms >= t->use_until_ms)
		return AG_TOK_NONE;
	return now_ms >= t->refresh_ms ? AG_TOK_REFRESH : AG_TOK_VALID;
}

int
ag_tok_fail(struct ag_tok *t, int64_t now_ms, const char *why)
{
	int first = !t->failed;

	t->inflight = 0;
	sodium_memzero(t->token, sizeof(t->token));
	t->use_until_ms = t->refresh_ms = 0;
	if (first)
		t->backoff_ms = AG_TOK_BACKOFF_MIN_MS;
	else if ((t->backoff_ms *= 2) > AG_TOK_BACKOFF_MAX_MS)
		t->backoff_ms = AG_TOK_BACKOFF_MAX_MS;
	t->failed = 1;
	t->retry_ms = now_ms + t->backoff_ms;
	snprintf(t->reason, sizeof(t->reason), "%s", why);
	return first ? 1 : 2;
}

/* s made printable for a log line (quotes and controls become '?'). */
static void
clean(char *dst, size_t dstlen, const char *s)
{
	size_t i;

	for (i = 0; s != NULL && s[i] != '\0' && i + 1 < dstlen; i++)
		dst[i] = (s[i] >= 0x20 && s[i] < 0x7f && s[i] != '"') ? s[i] :
		    '?';
	if (dstlen > 0)
		dst[i] = '\0';
}

int
ag_tok_answer(struct ag_tok *t, int64_t now_ms, long status,
    const char *body, size_t len)
{
	json_t *root = json_loadb(body != NULL ? body : "", len, 0, NULL);
	json_t *at = json_object_get(root, "access_token");
	json_t *ei = json_object_get(root, "expires_in");
	char why[200], e1[48], e2[96];
	json_int_t secs;
	size_t n;

	if (status == 200 && json_is_string(at) && json_is_integer(ei) &&
	    (n = json_string_length(at)) > 0 && n < sizeof(t->token) &&
	    printable(json_string_value(at), n) &&
	    (secs = json_integer_value(ei)) > 0 && secs <= 86400) {
		memcpy(t->token, json_string_value(at), n + 1);
		t->use_until_ms = now_ms + secs * 900;
		t->refresh_ms = now_ms + secs * 800;
		t->inflight = 0;
		t->failed = 0;
		t->backoff_ms = 0;
		t->reason[0] = '\0';
		json_decref(root);
		return 0;
	}
	clean(e1, sizeof(e1), json_string_value(json_object_get(root,
	    "error")));
	clean(e2, sizeof(e2), json_string_value(json_object_get(root,
	    "error_description")));
	if (status == 200)
		snprintf(why, sizeof(why), "the token endpoint's answer has no "
		    "usable access_token/expires_in");
	else
		snprintf(why, sizeof(why), "the token endpoint refused the "
		    "service account: HTTP %ld%s%s%s%s", status,
		    e1[0] ? " " : "", e1, e2[0] ? ": " : "", e2);
	json_decref(root);
	return ag_tok_fail(t, now_ms, why);
}
