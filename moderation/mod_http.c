/*
 * moderation/mod_http: the moderation process's calls to the configured
 * OpenAI-moderations-compatible service, through the curl multi interface
 * driven from the process's own poll loop (nothing here blocks): building
 * the request body from a gateway's check, the transfers themselves with
 * their timeout, and reading the answer ({results:[{flagged, categories}]}).
 */
#include "moderation/mod.h"
#include "lib/csv.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <curl/curl.h>
#include "lib/curlca.h"
#include "lib/log.h"

#if LIBCURL_VERSION_NUM < 0x075500
#error "libcurl 7.85 or later is needed (CURLOPT_PROTOCOLS_STR)"
#endif

struct mod_call {
	struct mod_http *h;
	CURL *easy;
	struct curl_slist *hdrs;
	char *body;
	char *resp;
	size_t rlen, rcap;
	int too_big;
	int64_t timeout_ms;
	uint64_t reqid;
	mod_http_done_fn done;
	void *arg;
	struct mod_call *prev, *next;
	char errbuf[CURL_ERROR_SIZE];
};

struct mod_http {
	CURLM *multi;
	CURLSH *share;		/* TLS sessions, across calls */
	int bundle;		/* curlca_bundle_only(), asked once */
	struct mod_call *calls;
	size_t n;
};

/* ------------------------------------------------------------ payloads */

void
mod_detailf(char *out, size_t size, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(out, size, fmt, ap);
	va_end(ap);
}

char *
mod_request_body(const char *payload, size_t len, const char *model,
    int *empty, char *err, size_t errlen)
{
	json_error_t je;
	json_t *root, *in, *out;
	char *s;

	*empty = 0;
	root = json_loadb(payload, len, 0, &je);
	if (root == NULL) {
		snprintf(err, errlen, "check is not JSON: %s", je.text);
		return NULL;
	}
	in = json_object_get(root, "input");
	if (!json_is_object(root) || in == NULL ||
	    !(json_is_array(in) || json_is_string(in))) {
		snprintf(err, errlen, "check has no input array or string");
		json_decref(root);
		return NULL;
	}
	if ((json_is_array(in) && json_array_size(in) == 0) ||
	    (json_is_string(in) && json_string_length(in) == 0))
		*empty = 1;
	out = json_pack("{s:s, s:O}", "model", model, "input", in);
	s = out != NULL ? json_dumps(out, JSON_COMPACT) : NULL;
	json_decref(out);
	json_decref(root);
	if (s == NULL)
		snprintf(err, errlen, "cannot build the service request");
	return s;
}

/* Is NAME one of the comma-separated names in LIST? */
static void
list_add(char *list, size_t size, const char *name)
{
	size_t used = strlen(list), need = strlen(name) + (used > 0);

	if (csv_has(list, name) || used + need >= size)
		return;		/* already there, or no room: keep it short */
	snprintf(list + used, size - used, "%s%s", used > 0 ? "," : "", name);
}

enum mod_answer
mod_parse_answer(const char *body, size_t len, char *detail, size_t detlen)
{
	json_error_t je;
	json_t *root, *results, *r, *flag, *cats, *v;
	const char *name;
	size_t i;
	int flagged = 0;
	enum mod_answer ans = MOD_ANS_CLEAN;

	if (detlen == 0)
		return MOD_ANS_FAILED;
	detail[0] = '\0';
	if ((root = json_loadb(body, len, 0, &je)) == NULL) {
		snprintf(detail, detlen, "answer is not JSON: %s", je.text);
		return MOD_ANS_FAILED;
	}
	results = json_object_get(root, "results");
	if (!json_is_array(results) || json_array_size(results) == 0) {
		snprintf(detail, detlen, "answer has no results");
		json_decref(root);
		return MOD_ANS_FAILED;
	}
	json_array_foreach(results, i, r) {
		flag = json_object_get(r, "flagged");
		if (!json_is_boolean(flag)) {
			snprintf(detail, detlen, "answer's result %zu has no "
			    "flagged field", i);
			ans = MOD_ANS_FAILED;
			break;
		}
		if (!json_is_true(flag))
			continue;
		flagged = 1;
		cats = json_object_get(r, "categories");
		if (!json_is_object(cats))
			continue;
		json_object_foreach(cats, name, v)
			if (json_is_true(v))
				list_add(detail, detlen, name);
	}
	json_decref(root);
	if (ans == MOD_ANS_FAILED)
		return ans;
	if (!flagged) {
		detail[0] = '\0';
		return MOD_ANS_CLEAN;
	}
	if (detail[0] == '\0')
		snprintf(detail, detlen, "flagged");
	return MOD_ANS_FLAGGED;
}

/* The message of an OpenAI error body, when there is one. */
static void
error_message(const char *body, size_t len, char *out, size_t outlen)
{
	json_t *root = json_loadb(body, len, 0, NULL);
	const char *m = json_string_value(json_object_get(
	    json_object_get(root, "error"), "message"));

	out[0] = '\0';
	if (m != NULL)
		snprintf(out, outlen, ": %s", m);
	json_decref(root);
}

/* ------------------------------------------------------------ transfers */

struct mod_http *
mod_http_new(void)
{
	static int inited;
	struct mod_http *h;

	if (!inited) {
		if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
			return NULL;
		inited = 1;
	}
	if ((h = calloc(1, sizeof(*h))) == NULL)
		return NULL;
	if ((h->multi = curl_multi_init()) == NULL) {
		free(h);
		return NULL;
	}
	if ((h->share = curlca_share_new()) == NULL) {
		mod_http_free(h);
		return NULL;
	}
	h->bundle = curlca_bundle_only();
	return h;
}

static size_t
on_write(char *p, size_t size, size_t nmemb, void *arg)
{
	struct mod_call *c = arg;
	size_t n = size * nmemb;

	if (c->rlen + n > MOD_ANSWER_MAX) {
		c->too_big = 1;
		return 0;	/* curl ends the transfer with a write error */
	}
	if (c->rlen + n + 1 > c->rcap) {
		size_t cap = c->rcap ? c->rcap : 4096;
		char *r;
		while (cap < c->rlen + n + 1)
			cap *= 2;
		if ((r = realloc(c->resp, cap)) == NULL)
			return 0;
		c->resp = r;
		c->rcap = cap;
	}
	memcpy(c->resp + c->rlen, p, n);
	c->rlen += n;
	c->resp[c->rlen] = '\0';
	return n;
}

static void
call_free(struct mod_call *c)
{
	struct mod_http *h = c->h;

	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		h->calls = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	h->n--;
	if (c->easy != NULL) {
		curl_multi_remove_handle(h->multi, c->easy);
		curl_easy_cleanup(c->easy);
	}
	curl_slist_free_all(c->hdrs);
	free(c->body);
	free(c->resp);
	free(c);
}

void
mod_http_free(struct mod_http *h)
{
	if (h == NULL)
		return;
	while (h->calls != NULL)
		call_free(h->calls);
	curl_multi_cleanup(h->multi);
	if (h->share != NULL)	/* after every call that used it */
		curl_share_cleanup(h->share);
	free(h);
}

static int
add_header(struct mod_call *c, const char *text)
{
	struct curl_slist *l = curl_slist_append(c->hdrs, text);

	if (l == NULL)
		return -1;
	c->hdrs = l;
	return 0;
}

int
mod_http_start(struct mod_http *h, const struct mod_http_req *rq,
    uint64_t reqid, mod_http_done_fn done, void *arg, char *err, size_t errlen)
{
	struct mod_call *c;
	char auth[320];
	CURLMcode mc;
	int bad = 0;

	if ((c = calloc(1, sizeof(*c))) == NULL ||
	    (c->body = strdup(rq->body)) == NULL ||
	    (c->easy = curl_easy_init()) == NULL) {
		snprintf(err, errlen, "out of memory");
		if (c != NULL) {
			free(c->body);
			free(c);
		}
		return -1;
	}
	c->h = h;
	c->reqid = reqid;
	c->timeout_ms = rq->timeout_ms;
	c->done = done;
	c->arg = arg;
	c->next = h->calls;
	if (h->calls != NULL)
		h->calls->prev = c;
	h->calls = c;
	h->n++;

	bad |= add_header(c, "Content-Type: application/json");
	bad |= add_header(c, "Expect:");
	if (rq->api_key[0] != '\0') {
		snprintf(auth, sizeof(auth), "Authorization: Bearer %s", rq->api_key);
		bad |= add_header(c, auth);
		explicit_bzero(auth, sizeof(auth));
	}
#define SET(opt, val) bad |= curl_easy_setopt(c->easy, opt, val) != CURLE_OK
	SET(CURLOPT_URL, rq->url);
	SET(CURLOPT_PROTOCOLS_STR, "http,https");
	SET(CURLOPT_NOSIGNAL, 1L);
	SET(CURLOPT_POST, 1L);
	SET(CURLOPT_POSTFIELDS, c->body);
	SET(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(c->body));
	SET(CURLOPT_HTTPHEADER, c->hdrs);
	SET(CURLOPT_USERAGENT, "switchboard-hubd");
	SET(CURLOPT_TIMEOUT_MS, (long)rq->timeout_ms);
	SET(CURLOPT_WRITEFUNCTION, on_write);
	SET(CURLOPT_WRITEDATA, c);
	SET(CURLOPT_PRIVATE, c);
	SET(CURLOPT_ERRORBUFFER, c->errbuf);
#undef SET
	/* The configured CA file, or the bundle alone; TLS sessions shared
	 * across calls (lib/curlca.h). */
	bad |= curlca_setopt(c->easy, rq->ca_file, h->bundle, h->share) !=
	    CURLE_OK;
	if (bad) {
		snprintf(err, errlen, "cannot set up the call");
		call_free(c);
		return -1;
	}
	if ((mc = curl_multi_add_handle(h->multi, c->easy)) != CURLM_OK) {
		snprintf(err, errlen, "curl: %s", curl_multi_strerror(mc));
		curl_easy_cleanup(c->easy);
		c->easy = NULL;
		call_free(c);
		return -1;
	}
	return 0;
}

size_t
mod_http_inflight(const struct mod_http *h)
{
	return h->n;
}

static void
finish(struct mod_call *c, CURLcode rc)
{
	char detail[MOD_DETAIL_MAX], why[MOD_DETAIL_MAX];
	enum mod_answer ans = MOD_ANS_FAILED;
	long status = 0;

	if (rc == CURLE_OPERATION_TIMEDOUT)
		snprintf(detail, sizeof(detail), "service timed out after %lld ms",
		    (long long)c->timeout_ms);
	else if (c->too_big)
		snprintf(detail, sizeof(detail), "service answer larger than %d bytes",
		    MOD_ANSWER_MAX);
	else if (rc != CURLE_OK)
		mod_detailf(detail, sizeof(detail), "service: %s",
		    c->errbuf[0] != '\0' ? c->errbuf : curl_easy_strerror(rc));
	else if (curl_easy_getinfo(c->easy, CURLINFO_RESPONSE_CODE, &status),
	    status < 200 || status > 299) {
		error_message(c->resp != NULL ? c->resp : "", c->rlen, why,
		    sizeof(why));
		mod_detailf(detail, sizeof(detail), "service answered HTTP %ld%s",
		    status, why);
	} else {
		ans = mod_parse_answer(c->resp != NULL ? c->resp : "", c->rlen,
		    why, sizeof(why));
		if (ans == MOD_ANS_FAILED)
			mod_detailf(detail, sizeof(detail), "service: %s", why);
		else
			snprintf(detail, sizeof(detail), "%s", why);
	}
	{
		mod_http_done_fn done = c->done;
		void *arg = c->arg;

		call_free(c);	/* first: the callback may start calls */
		done(arg, ans, detail);
	}
}

int
mod_http_poll(struct mod_http *h, struct pollfd *pfd, unsigned n,
    int timeout_ms)
{
	struct curl_waitfd wfd[MOD_POLL_MAX];
	CURLMcode mc;
	int ready = 0;

	if (n > MOD_POLL_MAX)
		n = MOD_POLL_MAX;
	for (unsigned i = 0; i < n; i++) {
		wfd[i].fd = pfd[i].fd;
		wfd[i].events = (short)(((pfd[i].events & POLLIN) ? CURL_WAIT_POLLIN : 0) |
		    ((pfd[i].events & POLLOUT) ? CURL_WAIT_POLLOUT : 0));
		wfd[i].revents = 0;
	}
	mc = curl_multi_poll(h->multi, wfd, n, timeout_ms, NULL);
	if (mc != CURLM_OK) {
		log_warn("curl_multi_poll: %s", curl_multi_strerror(mc));
		return -1;
	}
	for (unsigned i = 0; i < n; i++) {
		pfd[i].revents = (short)(((wfd[i].revents & CURL_WAIT_POLLIN) ? POLLIN : 0) |
		    ((wfd[i].revents & CURL_WAIT_POLLOUT) ? POLLOUT : 0));
		if (pfd[i].revents != 0)
			ready++;
	}
	return ready;
}

void
mod_http_run(struct mod_http *h)
{
	CURLMsg *m;
	CURLMcode mc;
	int running, left;

	if ((mc = curl_multi_perform(h->multi, &running)) != CURLM_OK)
		log_warn("curl_multi_perform: %s", curl_multi_strerror(mc));
	while ((m = curl_multi_info_read(h->multi, &left)) != NULL) {
		char *priv = NULL;
		CURL *easy = m->easy_handle;
		CURLcode rc = m->data.result;

		if (m->msg != CURLMSG_DONE)
			continue;
		curl_easy_getinfo(easy, CURLINFO_PRIVATE, &priv);
		if (priv != NULL)
			finish((struct mod_call *)priv, rc);
	}
}
