/*
 * agent/ag_prov: the provider adapter interface of agentd's upstream
 * engine (agent/ag_upstream) — one constant struct ag_prov per provider,
 * each in its own agent/prov_NAME.c, listed in the table behind
 * ag_prov_find().  An adapter says where its official endpoint is, which
 * request paths the hub may ask for, which method and path serve each
 * operation (op_path), and how the provider's credential is put on a
 * request.  It never sees the hub's headers: the hub sends only an
 * operation, a model, a content type, a body and, for Anthropic, the
 * user's anthropic-version/-beta values, which the adapter checks.
 *
 * Everything here is compiled in.  In particular the host allow-list is
 * not configurable: the engine refuses any URL whose host is not one of
 * the adapter's official hosts, whatever the channel or the hub says.
 *
 * Patterns (hosts and allowed_paths) are matched whole, case-sensitively
 * for paths and case-insensitively for hosts.  A '*' matches one or more
 * characters of one host label (letters, digits, '-') or of one path
 * segment (letters, digits, "-._~:@%", never a whole "." or ".."); nothing
 * else is special.  Examples: hosts "*.openai.azure.com" and
 * "bedrock-runtime.*.amazonaws.com"; a path with a '*' as the segment
 * after "/v1beta/models/", followed by ":streamGenerateContent".
 */
#ifndef SWB_AG_PROV_H
#define SWB_AG_PROV_H

#include <stddef.h>
#include <curl/curl.h>
#include "agent/ag_conf.h"
#include "lib/prov.h"

/* What an adapter may look at when it authenticates one request.  All
 * fields are the engine's, valid during the add_auth call only. */
struct ag_prov_req {
	const struct ag_channel *ch;	/* the channel (its key among others) */
	const char *method;		/* "GET" or "POST" */
	const char *url;		/* the full URL, already host-checked */
	const char *path;		/* the path (+ query) the hub asked for */
	const char *content_type;	/* what will be sent, or "" */
	const void *body;
	size_t len;
	/* What the hub asked for when the request was started by operation
	 * (ag_up_start_op), else NULL. */
	const struct ag_prov_op *op;
};

/* What the hub asked for (req_start): an operation (enum prov_op of
 * lib/prov.h), the model as the channel announced it, the stream flag and
 * an op-specific resource id ("" when none). */
struct ag_prov_op {
	int op;
	const char *model;
	int stream;
	const char *resource;
	/* Passed on from the user by the hub (Anthropic's headers), or ""
	 * or NULL when none; checked by the adapter before use. */
	const char *anthropic_version;
	const char *anthropic_beta;
};

struct ag_prov {
	const char *name;		/* as in agentd.ini: "openai" */
	int provider;			/* enum ag_provider */
	/* "https://HOST" with no trailing '/': the URL is base_url + path.
	 * NULL when make_url builds the URL per channel instead. */
	const char *base_url;
	/* Optional: write the URL for path on channel ch into buf; 0 or -1
	 * with err filled.  The engine still checks the host. */
	int (*make_url)(char *buf, size_t buflen, const struct ag_channel *ch,
	    const char *path, char *err, size_t errlen);
	/* Official hosts, NULL-terminated; the only ones the engine will
	 * connect to for this provider (port 443, https). */
	const char *const *hosts;
	/* Paths the hub may ask for, NULL-terminated (compared without the
	 * query); allow_query says whether a "?query" may follow them. */
	const char *const *allowed_paths;
	int allow_query;
	/* The model travels in the JSON body's top-level "model" (not in
	 * the path): when the channel maps the public name to another id,
	 * the engine rewrites that member (ag_up_start_op). */
	int model_in_body;
	/*
	 * Write the method and the path (+ query) of operation rq on channel
	 * ch: the hub names what to do, the adapter alone makes it a URL.
	 * 0, or -1 with err filled (an operation this provider cannot do).
	 */
	int (*op_path)(char *method, size_t mlen, char *path, size_t plen,
	    const struct ag_channel *ch, const struct ag_prov_op *rq, char *err,
	    size_t errlen);
	/*
	 * Append the provider's auth header(s) to *h (curl_slist_append).
	 * Runs on the thread that calls ag_up_start(), so it must not block.
	 * Returns 0, or -1 with err filled (never quoting the credential).
	 */
	int (*add_auth)(struct curl_slist **h, const struct ag_channel *ch,
	    const struct ag_prov_req *rq, char *err, size_t errlen);
	/*
	 * Optional: the channel's key is the path of a service-account file
	 * and the engine adds "Authorization: Bearer TOKEN" with an OAuth
	 * access token it gets and caches for the channel (agent/ag_token).
	 */
	int oauth_token;
	/*
	 * Optional: the provider wants the hub's body changed for operation
	 * rq (Vertex's Claude: no "model", its own anthropic_version).  0
	 * with *out NULL (keep it) or a malloc'd body of *outlen bytes, or
	 * -1 with err filled.
	 */
	int (*fix_body)(const struct ag_channel *ch,
	    const struct ag_prov_op *rq, const void *body, size_t len,
	    char **out, size_t *outlen, char *err, size_t errlen);
};

/* The adapters (one per agent/prov_NAME.c). */
extern const struct ag_prov ag_prov_openai;
extern const struct ag_prov ag_prov_anthropic;
extern const struct ag_prov ag_prov_azure;
extern const struct ag_prov ag_prov_deepseek;
extern const struct ag_prov ag_prov_qwen;
extern const struct ag_prov ag_prov_gemini;
extern const struct ag_prov ag_prov_vertex;
extern const struct ag_prov ag_prov_bedrock;

/* The adapter of provider (enum ag_provider), or NULL when there is none
 * yet. */
const struct ag_prov *ag_prov_find(int provider);

/* Pattern matching as described above; 1 on a match, else 0. */
int ag_prov_host_match(const char *pattern, const char *host);
int ag_prov_path_match(const char *pattern, const char *path, size_t len);

/*
 * Helper for adapters: append "NAME: PREFIXVALUE" to *h, refusing a value
 * that is empty or holds a control character or a non-ASCII byte (a
 * credential can never split a header).  0, or -1 with err filled.
 */
int ag_prov_header(struct curl_slist **h, const char *name,
    const char *prefix, const char *value, char *err, size_t errlen);

/*
 * Helper for op_path: write method and path from a table of paths by
 * operation (NULL entries: not served), or -1 with err naming the
 * provider and the operation.
 */
int ag_prov_op_table(const char *prov, const char *const *paths,
    char *method, size_t mlen, char *path, size_t plen,
    const struct ag_prov_op *rq, char *err, size_t errlen);

/* Helper for make_url: "https://" + ch->host + path into buf. */
int ag_prov_host_url(char *buf, size_t buflen, const struct ag_channel *ch,
    const char *path, char *err, size_t errlen);

#endif
