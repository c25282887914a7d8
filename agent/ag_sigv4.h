/*
 * agent/ag_sigv4: AWS Signature Version 4 (HMAC-SHA256, OpenSSL) for the
 * Bedrock adapter — the canonical request, the string to sign, the key
 * derivation and the Authorization header.  Pure: the caller gives the
 * time; nothing is logged (a secret passes through here).
 *
 *   canonical request = METHOD \n CANONICAL_URI \n CANONICAL_QUERY \n
 *                       (lowercase-name:trimmed-value \n)* \n
 *                       signed;header;names \n hex(SHA-256(payload))
 *   CANONICAL_URI      the path AS SENT with every byte outside
 *                      A-Z a-z 0-9 - . _ ~ / percent-encoded (uppercase
 *                      hex) once more: that is the rule of every service
 *                      but S3, so a model id's ':' sent as %3A is signed
 *                      as %253A.  No dot-segment normalisation (the engine
 *                      refuses such paths before they get here).
 *   CANONICAL_QUERY    each name=value %-decoded, then encoded as above
 *                      ('/' too), sorted by name then value, joined by '&'
 *   headers            names lowercased, values trimmed with inner runs of
 *                      spaces made one, sorted by name; repeated names
 *                      joined with ',' in the order given
 *   string to sign     AWS4-HMAC-SHA256 \n AMZDATE \n
 *                      DATE/REGION/SERVICE/aws4_request \n
 *                      hex(SHA-256(canonical request))
 *   signing key        HMAC("AWS4"+secret, DATE) -> REGION -> SERVICE ->
 *                      "aws4_request"; signature = hex(HMAC(key, sts))
 */
#ifndef SWB_AG_SIGV4_H
#define SWB_AG_SIGV4_H

#include <stddef.h>
#include <time.h>

#define AG_SIGV4_MAX_HEADERS	16
#define AG_SIGV4_DATE_LEN	17	/* "20150830T123600Z" + NUL */
#define AG_SIGV4_HEX_LEN	65	/* 64 hex digits + NUL */
#define AG_SIGV4_MAX_CANON	(64u * 1024)	/* canonical request bound */

struct ag_sigv4_hdr {
	const char *name;
	const char *value;
};

struct ag_sigv4_req {
	const char *method;		/* "POST" */
	const char *path;		/* as sent, from '/' (no query) */
	const char *query;		/* raw, without '?'; NULL or "" none */
	const struct ag_sigv4_hdr *hdrs;	/* the headers to sign (host,
					   x-amz-date, ... included) */
	int nhdrs;			/* 0..AG_SIGV4_MAX_HEADERS */
	const char *payload_hash;	/* hex SHA-256 of the body */
	const char *amz_date;		/* YYYYMMDDTHHMMSSZ */
	const char *region;
	const char *service;
};

/* "YYYYMMDDTHHMMSSZ" of t in UTC into out[AG_SIGV4_DATE_LEN]. */
void	ag_sigv4_date(time_t t, char *out);
/* hex SHA-256 of p into out[AG_SIGV4_HEX_LEN]. */
void	ag_sigv4_sha256_hex(const void *p, size_t len, char *out);

/* The canonical request into out (NUL-terminated): its length, or -1 when
 * it does not fit or an argument is malformed (a header name that is not
 * a token, a value with a control byte, a date that is not 16 bytes, too
 * many headers). */
long	ag_sigv4_canonical(const struct ag_sigv4_req *rq, char *out,
	    size_t outlen);
/* The string to sign: its length, or -1. */
long	ag_sigv4_string_to_sign(const struct ag_sigv4_req *rq, char *out,
	    size_t outlen);
/*
 * Sign: the hex signature into sig[AG_SIGV4_HEX_LEN] and the whole
 * Authorization header value ("AWS4-HMAC-SHA256 Credential=AKID/DATE/
 * REGION/SERVICE/aws4_request, SignedHeaders=..., Signature=...") into
 * auth.  0, or -1.
 */
int	ag_sigv4_sign(const struct ag_sigv4_req *rq, const char *access_key,
	    const char *secret_key, char *sig, char *auth, size_t authlen);

#endif
