/*
 * agent/ag_sigv4: AWS Signature Version 4 (see ag_sigv4.h).  Builds the
 * canonical request in a bounded buffer, hashes with OpenSSL's one-shot
 * SHA256/HMAC; the derived key and the secret's copy are wiped.
 */
#include "agent/ag_sigv4.h"
#include "lib/hex.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

#define QUERY_MAX_PARAMS	64

/* A bounded output buffer: once full, failed stays set. */
struct sb {
	char *p;
	size_t len, cap;
	int failed;
};

static void
put(struct sb *b, const char *s, size_t n)
{
	if (b->failed || n >= b->cap - b->len) {
		b->failed = 1;
		return;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static void
puts_(struct sb *b, const char *s)
{
	put(b, s, strlen(s));
}

static void
putc_(struct sb *b, char c)
{
	put(b, &c, 1);
}

static int
unreserved(int c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
	    (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' ||
	    c == '~';
}

/* %-encode bytes s[0..n) (keeping '/' when keep_slash). */
static void
encode(struct sb *b, const char *s, size_t n, int keep_slash)
{
	static const char hex[] = "0123456789ABCDEF";

	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (unreserved(c) || (keep_slash && c == '/'))
			putc_(b, (char)c);
		else {
			char e[3] = { '%', hex[c >> 4], hex[c & 15] };
			put(b, e, 3);
		}
	}
}

/* %-decode s[0..n) into out (at most n bytes); a '%' not followed by two
 * hex digits stays as it is.  Returns the length. */
static size_t
decode(const char *s, size_t n, char *out)
{
	size_t o = 0;

	for (size_t i = 0; i < n; i++) {
		int h, l;

		if (s[i] == '%' && i + 2 < n && (h = hex_digit(s[i + 1])) >= 0 &&
		    (l = hex_digit(s[i + 2])) >= 0) {
			out[o++] = (char)(h << 4 | l);
			i += 2;
		} else
			out[o++] = s[i];
	}
	return o;
}

/* One query parameter, encoded canonically. */
struct qp {
	char *k, *v;
};

static int
qp_cmp(const void *a, const void *b)
{
	const struct qp *x = a, *y = b;
	int c = strcmp(x->k, y->k);

	return c != 0 ? c : strcmp(x->v, y->v);
}

/* Encode decode(s[0..n)) into a fresh NUL-terminated string, or NULL. */
static char *
canon_part(const char *s, size_t n)
{
	char *raw = malloc(n + 1), *out;
	struct sb b;
	size_t rl;

	if (raw == NULL)
		return NULL;
	rl = decode(s, n, raw);
	if ((out = malloc(3 * rl + 1)) == NULL) {
		free(raw);
		return NULL;
	}
	b = (struct sb){ out, 0, 3 * rl + 1, 0 };
	out[0] = '\0';
	encode(&b, raw, rl, 0);
	free(raw);
	return out;
}

static int
canon_query(struct sb *b, const char *q)
{
	struct qp ps[QUERY_MAX_PARAMS];
	int n = 0, rc = 0;

	while (q != NULL && *q != '\0') {
		size_t len = strcspn(q, "&"), kl;
		const char *eq;

		if (len > 0) {
			if (n == QUERY_MAX_PARAMS) {
				rc = -1;
				break;
			}
			eq = memchr(q, '=', len);
			kl = eq != NULL ? (size_t)(eq - q) : len;
			ps[n].k = canon_part(q, kl);
			ps[n].v = eq != NULL ? canon_part(eq + 1, len - kl - 1) :
			    canon_part("", 0);
			n++;
			if (ps[n - 1].k == NULL || ps[n - 1].v == NULL) {
				rc = -1;
				break;
			}
		}
		q += len;
		if (*q == '&')
			q++;
	}
	if (rc == 0) {
		/* ps[0..n) were all written above (cppcheck cannot see n). */
		// cppcheck-suppress uninitvar
		qsort(ps, (size_t)n, sizeof(ps[0]), qp_cmp);
		for (int i = 0; i < n; i++) {
			if (i > 0)
				putc_(b, '&');
			puts_(b, ps[i].k);
			putc_(b, '=');
			puts_(b, ps[i].v);
		}
	}
	for (int i = 0; i < n; i++) {
		free(ps[i].k);
		free(ps[i].v);
	}
	return rc;
}

/* An HTTP token (RFC 9110): the names we may sign. */
static int
token_ok(const char *s)
{
	if (s == NULL || *s == '\0')
		return 0;
	for (; *s != '\0'; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		    (*s >= '0' && *s <= '9') || strchr("!#$%&'*+-.^_`|~", *s)))
			return 0;
	return 1;
}

static int
value_ok(const char *s)
{
	if (s == NULL)
		return 0;
	for (; *s != '\0'; s++)
		if ((unsigned char)*s < 0x20 && *s != '\t')
			return 0;
		else if (*s == 0x7f)
			return 0;
	return 1;
}

/* Indexes of rq's headers sorted by lowercase name (stable). */
static void
sort_headers(const struct ag_sigv4_req *rq, int *ix)
{
	for (int i = 0; i < rq->nhdrs; i++)
		ix[i] = i;
	for (int i = 1; i < rq->nhdrs; i++)
		for (int j = i; j > 0 && strcasecmp(rq->hdrs[ix[j - 1]].name,
		    rq->hdrs[ix[j]].name) > 0; j--) {
			int t = ix[j];
			ix[j] = ix[j - 1];
			ix[j - 1] = t;
		}
}

static void
put_lower(struct sb *b, const char *s)
{
	for (; *s != '\0'; s++)
		putc_(b, (char)(*s >= 'A' && *s <= 'Z' ? *s - 'A' + 'a' : *s));
}

/* The value trimmed, inner runs of blanks as one space. */
static void
put_trimmed(struct sb *b, const char *v)
{
	int space = 0, any = 0;

	for (; *v != '\0'; v++) {
		if (*v == ' ' || *v == '\t') {
			space = any;
			continue;
		}
		if (space)
			putc_(b, ' ');
		space = 0;
		any = 1;
		putc_(b, *v);
	}
}

static int
args_ok(const struct ag_sigv4_req *rq)
{
	if (rq == NULL || rq->method == NULL || !token_ok(rq->method) ||
	    rq->path == NULL || rq->path[0] != '/' || rq->amz_date == NULL ||
	    strlen(rq->amz_date) != AG_SIGV4_DATE_LEN - 1 ||
	    rq->region == NULL || !token_ok(rq->region) ||
	    rq->service == NULL || !token_ok(rq->service) ||
	    rq->payload_hash == NULL || !value_ok(rq->payload_hash) ||
	    rq->nhdrs < 0 || rq->nhdrs > AG_SIGV4_MAX_HEADERS ||
	    (rq->nhdrs > 0 && rq->hdrs == NULL))
		return 0;
	for (int i = 0; i < rq->nhdrs; i++)
		if (!token_ok(rq->hdrs[i].name) || !value_ok(rq->hdrs[i].value))
			return 0;
	return 1;
}

/* "a;b;c": the signed header names. */
static void
signed_names(struct sb *b, const struct ag_sigv4_req *rq, const int *ix)
{
	for (int i = 0; i < rq->nhdrs; i++) {
		if (i > 0 && strcasecmp(rq->hdrs[ix[i]].name,
		    rq->hdrs[ix[i - 1]].name) == 0)
			continue;
		if (i > 0)
			putc_(b, ';');
		put_lower(b, rq->hdrs[ix[i]].name);
	}
}

long
ag_sigv4_canonical(const struct ag_sigv4_req *rq, char *out, size_t outlen)
{
	struct sb b = { out, 0, outlen, 0 };
	int ix[AG_SIGV4_MAX_HEADERS];

	if (outlen == 0)
		return -1;
	out[0] = '\0';
	if (!args_ok(rq))
		return -1;
	puts_(&b, rq->method);
	putc_(&b, '\n');
	encode(&b, rq->path, strlen(rq->path), 1);
	putc_(&b, '\n');
	if (canon_query(&b, rq->query) != 0)
		return -1;
	putc_(&b, '\n');
	sort_headers(rq, ix);
	for (int i = 0; i < rq->nhdrs; i++) {
		const struct ag_sigv4_hdr *h = &rq->hdrs[ix[i]];

		if (i > 0 && strcasecmp(h->name, rq->hdrs[ix[i - 1]].name) == 0) {
			/* a repeated name: its values joined by ',' */
			b.len--;		/* the '\n' */
			putc_(&b, ',');
		} else {
			put_lower(&b, h->name);
			putc_(&b, ':');
		}
		put_trimmed(&b, h->value);
		putc_(&b, '\n');
	}
	putc_(&b, '\n');
	signed_names(&b, rq, ix);
	putc_(&b, '\n');
	puts_(&b, rq->payload_hash);
	return b.failed ? -1 : (long)b.len;
}

static void
hex(const unsigned char *d, size_t n, char *out)
{
	static const char h[] = "0123456789abcdef";

	for (size_t i = 0; i < n; i++) {
		out[2 * i] = h[d[i] >> 4];
		out[2 * i + 1] = h[d[i] & 15];
	}
	out[2 * n] = '\0';
}

void
ag_sigv4_sha256_hex(const void *p, size_t len, char *out)
{
	unsigned char d[SHA256_DIGEST_LENGTH];

	SHA256(len > 0 ? p : (const void *)"", len, d);
	hex(d, sizeof(d), out);
}

void
ag_sigv4_date(time_t t, char *out)
{
	struct tm tm;

	gmtime_r(&t, &tm);
	if (strftime(out, AG_SIGV4_DATE_LEN, "%Y%m%dT%H%M%SZ", &tm) == 0)
		out[0] = '\0';
}

/* "DATE/REGION/SERVICE/aws4_request" */
static void
scope(struct sb *b, const struct ag_sigv4_req *rq)
{
	put(b, rq->amz_date, 8);
	putc_(b, '/');
	puts_(b, rq->region);
	putc_(b, '/');
	puts_(b, rq->service);
	puts_(b, "/aws4_request");
}

long
ag_sigv4_string_to_sign(const struct ag_sigv4_req *rq, char *out,
    size_t outlen)
{
	char *canon, h[AG_SIGV4_HEX_LEN];
	long n;
	struct sb b = { out, 0, outlen, 0 };

	if (outlen == 0 || (canon = malloc(AG_SIGV4_MAX_CANON)) == NULL)
		return -1;
	n = ag_sigv4_canonical(rq, canon, AG_SIGV4_MAX_CANON);
	if (n >= 0)
		ag_sigv4_sha256_hex(canon, (size_t)n, h);
	free(canon);
	if (n < 0)
		return -1;
	out[0] = '\0';
	puts_(&b, "AWS4-HMAC-SHA256\n");
	puts_(&b, rq->amz_date);
	putc_(&b, '\n');
	scope(&b, rq);
	putc_(&b, '\n');
	puts_(&b, h);
	return b.failed ? -1 : (long)b.len;
}

static int
hmac(const void *key, size_t klen, const void *msg, size_t mlen,
    unsigned char *out)
{
	unsigned int olen = 0;

	return HMAC(EVP_sha256(), key, (int)klen, msg, mlen, out, &olen) !=
	    NULL && olen == 32 ? 0 : -1;
}

int
ag_sigv4_sign(const struct ag_sigv4_req *rq, const char *access_key,
    const char *secret_key, char *sig, char *auth, size_t authlen)
{
	char sts[512], kbuf[300], date[9];
	unsigned char k[32], k2[32], s[32];
	struct sb b = { auth, 0, authlen, 0 };
	int ix[AG_SIGV4_MAX_HEADERS], rc = -1;
	long n;
	size_t sl;

	if (access_key == NULL || secret_key == NULL || !token_ok(access_key) ||
	    (sl = strlen(secret_key)) == 0 || sl + 4 >= sizeof(kbuf) ||
	    authlen == 0)
		return -1;
	if ((n = ag_sigv4_string_to_sign(rq, sts, sizeof(sts))) < 0)
		return -1;
	memcpy(date, rq->amz_date, 8);
	date[8] = '\0';
	memcpy(kbuf, "AWS4", 4);
	memcpy(kbuf + 4, secret_key, sl);
	if (hmac(kbuf, 4 + sl, date, 8, k) != 0 ||
	    hmac(k, 32, rq->region, strlen(rq->region), k2) != 0 ||
	    hmac(k2, 32, rq->service, strlen(rq->service), k) != 0 ||
	    hmac(k, 32, "aws4_request", 12, k2) != 0 ||
	    hmac(k2, 32, sts, (size_t)n, s) != 0)
		goto out;
	hex(s, 32, sig);
	auth[0] = '\0';
	puts_(&b, "AWS4-HMAC-SHA256 Credential=");
	puts_(&b, access_key);
	putc_(&b, '/');
	scope(&b, rq);
	puts_(&b, ", SignedHeaders=");
	sort_headers(rq, ix);
	signed_names(&b, rq, ix);
	puts_(&b, ", Signature=");
	puts_(&b, sig);
	rc = b.failed ? -1 : 0;
out:
	OPENSSL_cleanse(kbuf, sizeof(kbuf));
	OPENSSL_cleanse(k, sizeof(k));
	OPENSSL_cleanse(k2, sizeof(k2));
	return rc;
}
