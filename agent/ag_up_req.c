/*
 * agent/ag_up_req: building one upstream request.  Owns the provider
 * adapter table of agent/ag_prov.h with its pattern and header helpers,
 * the engine-side checks every request passes before any byte leaves
 * (method, path allow-list, official host on https:443, content type,
 * body size), making the request record on the lws side (ag_up_start,
 * ag_up_start_op: the adapter's URL, method, path and auth headers, the
 * model id in the body) and queuing it for the curl side, and, on the
 * curl side, one transfer's curl options (up_easy_setup, with a handle
 * from the engine's pool; [test] ca_file and connect_to in test builds).
 */
#include "agent/ag_upstream_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sodium.h>
#include "agent/ag_prov.h"
#include "lib/curlca.h"
#include "lib/usage.h"

#define PATH_MAX_LEN	2048
#define URL_MAX_LEN	4096

/* ------------------------------------------------------------ adapters */

static const struct ag_prov *const prov_table[] = {
	&ag_prov_openai,
	&ag_prov_anthropic,
	&ag_prov_azure,
	&ag_prov_deepseek,
	&ag_prov_qwen,
	&ag_prov_gemini,
	&ag_prov_vertex,
	&ag_prov_bedrock,
};

const struct ag_prov *
ag_prov_find(int provider)
{
	for (size_t i = 0; i < sizeof(prov_table) / sizeof(prov_table[0]); i++)
		if (prov_table[i]->provider == provider)
			return prov_table[i];
	return NULL;
}

static int
host_char(int c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9') || c == '-';
}

static int
seg_char(int c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9') || strchr("-._~:@%", c) != NULL;
}

static int
lower(int c)
{
	return c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c;
}

/* ASCII case-insensitive: does s start with prefix? */
static int
iprefix(const char *s, const char *prefix)
{
	for (; *prefix != '\0'; s++, prefix++)
		if (lower((unsigned char)*s) != lower((unsigned char)*prefix))
			return 0;
	return 1;
}

/* Whole-string match of pat against s[0..n) where '*' takes one or more
 * characters accepted by okc. */
static int
glob(const char *pat, const char *s, size_t n, int (*okc)(int), int icase)
{
	while (*pat != '\0') {
		if (*pat == '*') {
			pat++;
			for (size_t i = 0; i < n && okc((unsigned char)s[i]); i++) {
				/* A path '*' never stands for "." or "..". */
				if (!icase && ((i == 0 && s[0] == '.') ||
				    (i == 1 && s[0] == '.' && s[1] == '.')))
					continue;
				if (glob(pat, s + i + 1, n - i - 1, okc, icase))
					return 1;
			}
			return 0;
		}
		if (n == 0)
			return 0;
		if (icase ? lower((unsigned char)*pat) != lower((unsigned char)*s) :
		    *pat != *s)
			return 0;
		pat++, s++, n--;
	}
	return n == 0;
}

int
ag_prov_host_match(const char *pattern, const char *host)
{
	return glob(pattern, host, strlen(host), host_char, 1);
}

int
ag_prov_path_match(const char *pattern, const char *path, size_t len)
{
	return glob(pattern, path, len, seg_char, 0);
}

int
ag_prov_header(struct curl_slist **h, const char *name, const char *prefix,
    const char *value, char *err, size_t errlen)
{
	char line[AG_SECRET_MAX + 128];
	struct curl_slist *n;
	int len;

	if (value[0] == '\0') {
		snprintf(err, errlen, "%s: empty credential", name);
		return -1;
	}
	for (const char *p = value; *p != '\0'; p++)
		if ((unsigned char)*p < 0x21 || (unsigned char)*p > 0x7e) {
			snprintf(err, errlen, "%s: credential has a byte that "
			    "cannot go in a header", name);
			return -1;
		}
	len = snprintf(line, sizeof(line), "%s: %s%s", name, prefix, value);
	if (len < 0 || (size_t)len >= sizeof(line)) {
		sodium_memzero(line, sizeof(line));
		snprintf(err, errlen, "%s: credential too long", name);
		return -1;
	}
	n = curl_slist_append(*h, line);
	sodium_memzero(line, sizeof(line));
	if (n == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	*h = n;
	return 0;
}

int
ag_prov_op_table(const char *prov, const char *const *paths, char *method,
    size_t mlen, char *path, size_t plen, const struct ag_prov_op *rq,
    char *err, size_t errlen)
{
	const struct prov_op_info *oi = prov_op(rq->op);

	if (oi == NULL || paths[rq->op] == NULL) {
		snprintf(err, errlen, "%s: operation %s not supported", prov,
		    oi != NULL ? oi->name : "?");
		return -1;
	}
	snprintf(method, mlen, "%s", oi->method);
	snprintf(path, plen, "%s", paths[rq->op]);
	return 0;
}

int
ag_prov_host_url(char *buf, size_t buflen, const struct ag_channel *ch,
    const char *path, char *err, size_t errlen)
{
	int n;

	if (ch->host[0] == '\0') {
		snprintf(err, errlen, "channel %s has no host", ch->name);
		return -1;
	}
	n = snprintf(buf, buflen, "https://%s%s", ch->host, path);
	if (n < 0 || (size_t)n >= buflen) {
		snprintf(err, errlen, "URL too long");
		return -1;
	}
	return 0;
}

/* ---- curl side: one transfer's options */

#define SET(opt, val) do {						\
	if ((rc = curl_easy_setopt(e, (opt), (val))) != CURLE_OK)	\
		goto fail;						\
} while (0)

int
up_easy_setup(struct ag_upstream *u, struct up_req *r, char *err, size_t errlen)
{
	CURL *e;
	CURLcode rc = CURLE_OK;
	const char *ca = NULL;

	if (u->npool > 0)
		e = u->pool[--u->npool];
	else if ((e = curl_easy_init()) == NULL) {
		snprintf(err, errlen, "cannot create a transfer");
		return -1;
	}
	SET(CURLOPT_PRIVATE, r);
	SET(CURLOPT_URL, r->url);
	SET(CURLOPT_PROTOCOLS_STR, "https");
	SET(CURLOPT_REDIR_PROTOCOLS_STR, "https");
	SET(CURLOPT_FOLLOWLOCATION, 0L);
	SET(CURLOPT_NOSIGNAL, 1L);
	/* Where libcurl cannot multiplex, every request goes over HTTP/1.1:
	 * one request per connection gains nothing from HTTP/2 and costs
	 * framing, HPACK, window updates, a 32 KB input buffer and an nghttp2
	 * session per connection (a held stream's memory in agentd fell from
	 * 122 to 92 KB, 3,000 slow streams).  Back-pressure pauses these
	 * transfers as it does HTTP/2 streams. */
	SET(CURLOPT_HTTP_VERSION, r->h1 ? (long)CURL_HTTP_VERSION_1_1 :
	    (long)CURL_HTTP_VERSION_2TLS);
	SET(CURLOPT_PIPEWAIT, u->mux ? 1L : 0L);
	/* libcurl (7.88) looks for a connection to reuse by walking every
	 * connection to the host, busy ones too: with 8,000 streams open,
	 * each new one walked 8,000 (a seventh of agentd's CPU while they
	 * ramped up).  Where it cannot multiplex, each transfer in flight
	 * holds one connection (r is not counted yet): when there are no
	 * more sockets than transfers, none is idle and the walk is skipped.
	 * A wrong guess costs one new connection, never a failure. */
	SET(CURLOPT_FRESH_CONNECT, !u->mux && u->nsock <= u->nactive ? 1L :
	    0L);
	SET(CURLOPT_OPENSOCKETFUNCTION, up_on_open);
	SET(CURLOPT_OPENSOCKETDATA, u);
	SET(CURLOPT_CLOSESOCKETFUNCTION, up_on_close);
	SET(CURLOPT_CLOSESOCKETDATA, u);
	SET(CURLOPT_TCP_NODELAY, 1L);
	SET(CURLOPT_TCP_KEEPALIVE, 1L);
	SET(CURLOPT_CONNECTTIMEOUT_MS, (long)AG_UP_CONNECT_TIMEOUT_MS);
	SET(CURLOPT_TIMEOUT_MS, 0L);
	/* No CURLOPT_LOW_SPEED_*: with it libcurl arms a one-second timer
	 * for every transfer on every call, so that each held stream woke
	 * the engine once a second for nothing; the idle sweep
	 * (ag_upstream.c) ends a silent transfer instead. */
	SET(CURLOPT_SSL_VERIFYPEER, 1L);
	SET(CURLOPT_SSL_VERIFYHOST, 2L);
	SET(CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
	/* The CA bundle alone, so that libcurl builds its store once, not
	 * once per new connection; a new connection resumes a TLS session
	 * an earlier one made, whichever transfer made it (lib/curlca.h).
	 * Test builds only: a private CA. */
#if SWB_TEST_BUILD
	ca = u->ca_file;
#endif
	if ((rc = curlca_setopt(e, ca, u->ca_bundle, u->share)) != CURLE_OK)
		goto fail;
	/* The request body goes out through this buffer, which a transfer
	 * holds for its life.  libcurl's minimum, 16 KB, instead of its
	 * 64 KB: a held stream's resident memory in agentd fell from 128 to
	 * 120 KB (3,000 slow streams). */
	SET(CURLOPT_UPLOAD_BUFFERSIZE, UL_BUFSIZE);
	/* A stream's events are small and its transfer lives long: a 4 KB
	 * download buffer instead of 16 (a held stream: 92 → 84 KB).  Whole
	 * answers keep 16 KB, fewer callbacks for a large body. */
	SET(CURLOPT_BUFFERSIZE, r->stream ? 4096L : 16384L);
	SET(CURLOPT_SUPPRESS_CONNECT_HEADERS, 1L);
	SET(CURLOPT_HTTPHEADER, r->hdrs);
	SET(CURLOPT_HEADERFUNCTION, up_on_header);
	SET(CURLOPT_HEADERDATA, r);
	SET(CURLOPT_WRITEFUNCTION, up_on_write);
	SET(CURLOPT_WRITEDATA, r);
	SET(CURLOPT_ERRORBUFFER, r->errbuf);
	if (r->post) {
		SET(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)r->len);
		SET(CURLOPT_POSTFIELDS, r->body);
	} else
		SET(CURLOPT_HTTPGET, 1L);
#if SWB_TEST_BUILD
	/* Test builds only: host overrides, so the official names reach a
	 * local mock (its CA: above). */
	if (u->connect_to != NULL) {
		SET(CURLOPT_CONNECT_TO, u->connect_to);
		SET(CURLOPT_PROXY, "");
	}
#endif
	r->easy = e;
	return 0;
fail:
	snprintf(err, errlen, "curl setup: %s", curl_easy_strerror(rc));
	curl_easy_cleanup(e);
	return -1;
}

#undef SET

/* ---- lws side */

static void
sanitize(char *dst, size_t dstlen, const char *src)
{
	size_t i;

	for (i = 0; src[i] != '\0' && i + 1 < dstlen; i++)
		dst[i] = (src[i] > 0x20 && src[i] < 0x7f) ? src[i] : '?';
	if (dstlen > 0)
		dst[i] = '\0';
}

static int
hexdig(int c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') ||
	    (c >= 'A' && c <= 'F');
}

/*
 * The engine's own rules for any path, before the adapter's list:
 * absolute, printable URL characters only, well-formed %XX escapes, no
 * escaped '.', '/' or '\', no empty, "." or ".." segment; a query only
 * if the adapter takes one.
 */
static int
path_ok(const struct ag_prov *p, const char *path)
{
	size_t len = strlen(path), plen = strcspn(path, "?");
	const char *s;

	if (len == 0 || len >= PATH_MAX_LEN || path[0] != '/')
		return 0;
	if (path[plen] == '?' && !p->allow_query)
		return 0;
	for (size_t i = 0; i < len; i++) {
		int c = (unsigned char)path[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') ||
		    strchr("-._~!$&'()*+,;=:@/%", c) != NULL ||
		    (i >= plen && c == '?')))
			return 0;
		if (c == '%') {
			if (i + 2 >= len || !hexdig(path[i + 1]) ||
			    !hexdig(path[i + 2]))
				return 0;
			if (iprefix(path + i, "%2e") ||
			    iprefix(path + i, "%2f") || iprefix(path + i, "%5c"))
				return 0;
		}
	}
	for (s = path; s < path + plen; ) {
		size_t sl;

		s++;				/* past '/' */
		sl = strcspn(s, "/?");
		if (sl > plen - (size_t)(s - path))
			sl = plen - (size_t)(s - path);
		if (sl == 0 || (sl == 1 && s[0] == '.') ||
		    (sl == 2 && s[0] == '.' && s[1] == '.'))
			return 0;
		s += sl;
	}
	for (const char *const *a = p->allowed_paths; a != NULL && *a != NULL;
	    a++)
		if (ag_prov_path_match(*a, path, plen))
			return 1;
	return 0;
}

/*
 * Parse url with curl's own parser: https, no user info, port 443 or
 * none, host on the adapter's list.  On success *out is the URL as curl
 * will use it (free()).
 */
static int
url_check(const struct ag_prov *p, const char *url, char **out, char *err,
    size_t errlen)
{
	CURLU *h;
	char *scheme = NULL, *host = NULL, *port = NULL, *user = NULL;
	char *pass = NULL, *full = NULL;
	int ok = 0;

	*out = NULL;
	if ((h = curl_url()) == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	if (curl_url_set(h, CURLUPART_URL, url, 0) != CURLUE_OK ||
	    curl_url_get(h, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
	    curl_url_get(h, CURLUPART_HOST, &host, 0) != CURLUE_OK) {
		snprintf(err, errlen, "%s: bad URL", p->name);
		goto out;
	}
	if (curl_url_get(h, CURLUPART_USER, &user, 0) == CURLUE_OK ||
	    curl_url_get(h, CURLUPART_PASSWORD, &pass, 0) == CURLUE_OK) {
		snprintf(err, errlen, "%s: URL with user info", p->name);
		goto out;
	}
	if (!iprefix(scheme, "https") || scheme[5] != '\0' ||
	    (curl_url_get(h, CURLUPART_PORT, &port, 0) == CURLUE_OK &&
	    strcmp(port, "443") != 0)) {
		snprintf(err, errlen, "%s: only https on port 443", p->name);
		goto out;
	}
	for (const char *const *a = p->hosts; a != NULL && *a != NULL; a++)
		if (ag_prov_host_match(*a, host)) {
			ok = 1;
			break;
		}
	if (!ok) {
		char shown[64];

		sanitize(shown, sizeof(shown), host);
		snprintf(err, errlen, "%s: host %s is not an official endpoint",
		    p->name, shown);
		goto out;
	}
	ok = 0;
	if (curl_url_get(h, CURLUPART_URL, &full, 0) != CURLUE_OK) {
		snprintf(err, errlen, "%s: bad URL", p->name);
		goto out;
	}
	if ((*out = strdup(full)) == NULL) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	ok = 1;
out:
	curl_free(scheme);
	curl_free(host);
	curl_free(port);
	curl_free(user);
	curl_free(pass);
	curl_free(full);
	curl_url_cleanup(h);
	return ok ? 0 : -1;
}

static int
content_type_ok(const char *ct)
{
	size_t n = strlen(ct);

	if (n == 0 || n >= 128)
		return 0;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)ct[i] < 0x20 || (unsigned char)ct[i] > 0x7e)
			return 0;
	return 1;
}

static int
up_start(struct ag_upstream *u, uint64_t key, const struct ag_channel *ch,
    const char *method, const char *path, const struct ag_prov_op *op,
    const char *content_type, const void *body, size_t len, char *err,
    size_t errlen)
{
	const struct ag_prov *p;
	struct up_req *r = NULL;
	struct ag_prov_req rq;
	char urlbuf[URL_MAX_LEN], line[160], shown[80];
	const char *ct;
	int post, n;

	if (u == NULL || ch == NULL || method == NULL || path == NULL ||
	    (body == NULL && len > 0)) {
		snprintf(err, errlen, "bad arguments");
		return -1;
	}
	if ((p = ag_prov_find(ch->provider)) == NULL) {
		snprintf(err, errlen, "provider %s: no adapter yet",
		    ag_provider_name(ch->provider));
		return -1;
	}
	if (strcmp(method, "POST") == 0)
		post = 1;
	else if (strcmp(method, "GET") == 0)
		post = 0;
	else {
		sanitize(shown, 16, method);
		snprintf(err, errlen, "%s: method %s not allowed", p->name,
		    shown);
		return -1;
	}
	if (!post && len > 0) {
		snprintf(err, errlen, "%s: GET with a body", p->name);
		return -1;
	}
	if (len > AG_UP_BODY_MAX) {
		snprintf(err, errlen, "%s: body too large (%zu bytes)", p->name,
		    len);
		return -1;
	}
	if (!path_ok(p, path)) {
		sanitize(shown, sizeof(shown), path);
		snprintf(err, errlen, "%s: path not allowed: %s", p->name,
		    shown);
		return -1;
	}
	ct = content_type != NULL ? content_type : "";
	if (post && ct[0] == '\0')
		ct = "application/json";
	if (ct[0] != '\0' && !content_type_ok(ct)) {
		snprintf(err, errlen, "%s: bad content type", p->name);
		return -1;
	}

	if (p->make_url != NULL) {
		if (p->make_url(urlbuf, sizeof(urlbuf), ch, path, err,
		    errlen) != 0)
			return -1;
	} else {
		n = snprintf(urlbuf, sizeof(urlbuf), "%s%s", p->base_url, path);
		if (n < 0 || (size_t)n >= sizeof(urlbuf)) {
			snprintf(err, errlen, "%s: URL too long", p->name);
			return -1;
		}
	}

	if ((r = calloc(1, sizeof(*r))) == NULL ||
	    (r->headev = calloc(1, sizeof(*r->headev))) == NULL ||
	    (r->endev = calloc(1, sizeof(*r->endev))) == NULL ||
	    (len > 0 && (r->body = malloc(len)) == NULL)) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	r->u = u;
	r->key = key;
	r->post = post;
	r->h1 = !u->mux && op != NULL;
	r->stream = op != NULL && op->stream;
	r->len = len;
	r->prov = p->name;
	if (len > 0)
		memcpy(r->body, body, len);
	else if (post && (r->body = malloc(1)) == NULL) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	if (url_check(p, urlbuf, &r->url, err, errlen) != 0)
		goto fail;

	/* Headers: ours only.  No hub header but the content type is
	 * relayed, so no user token can ever reach the provider. */
	if (post || ct[0] != '\0') {
		snprintf(line, sizeof(line), "Content-Type: %s", ct);
		if ((r->hdrs = curl_slist_append(NULL, line)) == NULL) {
			snprintf(err, errlen, "out of memory");
			goto fail;
		}
	}
	{
		struct curl_slist *h = curl_slist_append(r->hdrs, "Expect:");

		if (h == NULL) {
			snprintf(err, errlen, "out of memory");
			goto fail;
		}
		r->hdrs = h;
	}
	rq.ch = ch;
	rq.method = method;
	rq.url = r->url;
	rq.path = path;
	rq.content_type = ct;
	rq.body = body;
	rq.len = len;
	rq.op = op;
	if (p->add_auth(&r->hdrs, ch, &rq, err, errlen) != 0)
		goto fail;
	if (p->oauth_token) {
		r->want_token = 1;
		snprintf(r->tok_channel, sizeof(r->tok_channel), "%s",
		    ch->name);
		snprintf(r->tok_path, sizeof(r->tok_path), "%s", ch->key);
	}

	up_lock(u);
	if (u->stop) {
		up_unlock(u);
		snprintf(err, errlen, "upstream engine stopping");
		goto fail;
	}
	if (up_hash_find(u, key) != NULL) {
		up_unlock(u);
		snprintf(err, errlen, "request %016llx already in flight",
		    (unsigned long long)key);
		goto fail;
	}
	if (u->inflight >= AG_UP_INFLIGHT_MAX) {
		up_unlock(u);
		snprintf(err, errlen, "too many upstream requests");
		goto fail;
	}
	r->refs = 2;
	r->hnext = u->hash[up_key_hash(key)];
	u->hash[up_key_hash(key)] = r;
	u->inflight++;
	r->in_sq = 1;
	if (u->sq_tail != NULL)
		u->sq_tail->qnext = r;
	else
		u->sq_head = r;
	u->sq_tail = r;
	up_unlock(u);
	up_kick(u);
	return 0;
fail:
	if (r != NULL)
		up_req_free(r);
	return -1;
}

int
ag_up_start(struct ag_upstream *u, uint64_t key, const struct ag_channel *ch,
    const char *method, const char *path, const char *content_type,
    const void *body, size_t len, char *err, size_t errlen)
{
	return up_start(u, key, ch, method, path, NULL, content_type, body,
	    len, err, errlen);
}

/* A JSON body of an operation whose dialect names the model in it. */
static int
model_in_json(const struct ag_prov *p, int op, const char *ct)
{
	const struct prov_op_info *oi = prov_op(op);

	return p->model_in_body && oi != NULL && (oi->dialect == DIA_OPENAI ||
	    oi->dialect == DIA_ANTHROPIC) && ct != NULL &&
	    strncmp(ct, "application/json", 16) == 0;
}

int
ag_up_start_op(struct ag_upstream *u, uint64_t key,
    const struct ag_channel *ch, const struct ag_prov_op *op,
    const char *content_type, const void *body, size_t len, char *err,
    size_t errlen)
{
	const struct ag_prov *p;
	const char *id;
	char method[8], path[PATH_MAX_LEN];
	char *nb = NULL;
	size_t nlen;
	int rc;

	if (u == NULL || ch == NULL || op == NULL) {
		snprintf(err, errlen, "bad arguments");
		return -1;
	}
	if ((p = ag_prov_find(ch->provider)) == NULL || p->op_path == NULL) {
		snprintf(err, errlen, "provider %s: no adapter yet",
		    ag_provider_name(ch->provider));
		return -1;
	}
	if (p->op_path(method, sizeof(method), path, sizeof(path), ch, op, err,
	    errlen) != 0)
		return -1;
	/* The provider's id for the public model, in the body. */
	id = op->model != NULL ? ag_channel_model_id(ch, op->model) : NULL;
	if (id != NULL && strcmp(id, op->model) != 0 && len > 0 &&
	    model_in_json(p, op->op, content_type)) {
		if (usage_set_model(body, len, id, &nb, &nlen) != 0) {
			snprintf(err, errlen, "%s: cannot put model %s in the "
			    "body (not a JSON object with a model)", p->name,
			    id);
			return -1;
		}
		body = nb;
		len = nlen;
	}
	if (p->fix_body != NULL && len > 0) {
		char *fb;
		size_t flen;

		if (p->fix_body(ch, op, body, len, &fb, &flen, err,
		    errlen) != 0) {
			free(nb);
			return -1;
		}
		if (fb != NULL) {
			free(nb);
			body = nb = fb;
			len = flen;
		}
	}
	rc = up_start(u, key, ch, method, path, op, content_type, body, len,
	    err, errlen);
	free(nb);
	return rc;
}
