/*
 * moderation/mod_check: one gateway question, from its arrival to its
 * verdict.  Order: moderation off → allow; the verdict cache; a call for
 * the same content already in flight (the question waits on it); else a
 * new service call.  Owns the verdict cache, the service calls in flight
 * (each with the questions waiting on it) and the fail rule: a call that
 * gave no definitive answer allows with fail_open = yes and answers
 * unavailable with fail_open = no.  Only definitive answers are cached.
 */
#include "moderation/mod.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "lib/clock.h"
#include "lib/hash.h"
#include "lib/log.h"

/* One service call and the questions waiting for it. */
struct pending {
	char key[65];			/* SHA-256 of the content */
	struct mod_asker *w;
	size_t nw, cap;
	struct pending *prev, *next;
};

static const struct hub_conf *conf;
static struct mod_cache *cache;
static struct mod_http *http;
static struct pending *pendings;
static size_t npending;

static void
verdict(const struct mod_asker *who, enum ipc_mod_result result, int cached,
    const char *detail)
{
	struct ipc_mod_verdict v;

	memset(&v, 0, sizeof(v));
	v.result = (uint32_t)result;
	v.cached = (uint32_t)cached;
	snprintf(v.detail, sizeof(v.detail), "%s", detail);
	mod_reply(who, &v);
}

/* A service answer (or failure) becomes a verdict for one question. */
static void
answer(const struct mod_asker *who, enum mod_answer ans, int cached,
    const char *detail)
{
	switch (ans) {
	case MOD_ANS_CLEAN:
		log_msg(LOG_LVL_DEBUG, who->reqid, "moderation: not flagged%s",
		    cached ? " (cached)" : "");
		verdict(who, IPC_MOD_ALLOW, cached, detail);
		break;
	case MOD_ANS_FLAGGED:
		log_rinfo(who->reqid, "moderation: flagged (%s)%s", detail,
		    cached ? ", cached" : "");
		verdict(who, IPC_MOD_FLAGGED, cached, detail);
		break;
	case MOD_ANS_FAILED:
		log_rwarn(who->reqid, "moderation failed: %s; %s", detail,
		    conf->mod_fail_open ? "allowing (fail_open = yes)" :
		    "refusing (fail_open = no)");
		verdict(who, conf->mod_fail_open ? IPC_MOD_ALLOW :
		    IPC_MOD_UNAVAILABLE, 0, detail);
		break;
	}
}

static int
add_waiter(struct pending *p, const struct mod_asker *who)
{
	if (p->nw == p->cap) {
		size_t cap = p->cap ? p->cap * 2 : 4;
		struct mod_asker *w = realloc(p->w, cap * sizeof(*w));
		if (w == NULL)
			return -1;
		p->w = w;
		p->cap = cap;
	}
	p->w[p->nw++] = *who;
	return 0;
}

static void
pending_unlink(struct pending *p)
{
	if (p->prev != NULL)
		p->prev->next = p->next;
	else
		pendings = p->next;
	if (p->next != NULL)
		p->next->prev = p->prev;
	npending--;
}

static void
on_done(void *arg, enum mod_answer ans, const char *detail)
{
	struct pending *p = arg;

	pending_unlink(p);
	if (ans != MOD_ANS_FAILED)
		mod_cache_put(cache, p->key, clock_mono_ms(), ans, detail);
	for (size_t i = 0; i < p->nw; i++)
		answer(&p->w[i], ans, 0, detail);
	free(p->w);
	free(p);
}

void
mod_check_init(const struct hub_conf *live)
{
	conf = live;
	if ((cache = mod_cache_new(conf->mod_cache_size,
	    conf->mod_cache_ttl_ms)) == NULL)
		fatal("moderation: cannot allocate a cache of %lld entries",
		    (long long)conf->mod_cache_size);
	if ((http = mod_http_new()) == NULL)
		fatal("moderation: cannot initialise libcurl");
}

void
mod_check_fini(void)
{
	mod_check_abort("moderation is stopping");
	mod_cache_free(cache);
	cache = NULL;
}

void
mod_check(const struct mod_asker *who, const char *payload, size_t len)
{
	char key[65], detail[MOD_DETAIL_MAX], err[MOD_DETAIL_MAX];
	enum mod_answer ans;
	struct mod_http_req rq;
	struct pending *p;
	char *body;
	int empty;

	if (!conf->mod_enabled) {
		verdict(who, IPC_MOD_ALLOW, 0, "moderation is off");
		return;
	}
	len = strnlen(payload, len);	/* with or without a trailing NUL */
	hash_sha256_hex(payload, len, key);
	if (mod_cache_get(cache, key, clock_mono_ms(), &ans, detail,
	    sizeof(detail))) {
		answer(who, ans, 1, detail);
		return;
	}
	for (p = pendings; p != NULL; p = p->next)
		if (strcmp(p->key, key) == 0) {
			if (add_waiter(p, who) != 0)
				answer(who, MOD_ANS_FAILED, 0, "out of memory");
			return;
		}
	body = mod_request_body(payload, len, conf->mod_model, &empty, err,
	    sizeof(err));
	if (body == NULL) {
		mod_detailf(detail, sizeof(detail), "bad check from the gateway: %s",
		    err);
		answer(who, MOD_ANS_FAILED, 0, detail);
		return;
	}
	if (empty) {
		free(body);
		verdict(who, IPC_MOD_ALLOW, 0, "nothing to check");
		return;
	}
	if (npending >= MOD_MAX_INFLIGHT) {
		free(body);
		answer(who, MOD_ANS_FAILED, 0, "too many service calls in flight");
		return;
	}
	if ((p = calloc(1, sizeof(*p))) == NULL || add_waiter(p, who) != 0) {
		free(p);
		free(body);
		answer(who, MOD_ANS_FAILED, 0, "out of memory");
		return;
	}
	memcpy(p->key, key, sizeof(p->key));
	rq.url = conf->mod_url;
	rq.api_key = conf->mod_api_key;
	rq.ca_file = conf->mod_ca_file;
	rq.timeout_ms = conf->mod_timeout_ms;
	rq.body = body;
	if (mod_http_start(http, &rq, who->reqid, on_done, p, err,
	    sizeof(err)) != 0) {
		free(body);
		free(p->w);
		free(p);
		mod_detailf(detail, sizeof(detail), "service call: %s", err);
		answer(who, MOD_ANS_FAILED, 0, detail);
		return;
	}
	free(body);
	p->next = pendings;
	if (pendings != NULL)
		pendings->prev = p;
	pendings = p;
	npending++;
}

size_t
mod_check_busy(void)
{
	return npending;
}

int
mod_check_poll(struct pollfd *pfd, unsigned n, int timeout_ms)
{
	return mod_http_poll(http, pfd, n, timeout_ms);
}

void
mod_check_run(void)
{
	mod_http_run(http);
}

void
mod_check_abort(const char *why)
{
	struct pending *p;

	/* The calls go first, so that none can call back into a freed list. */
	mod_http_free(http);
	http = NULL;
	while ((p = pendings) != NULL) {
		pending_unlink(p);
		for (size_t i = 0; i < p->nw; i++)
			answer(&p->w[i], MOD_ANS_FAILED, 0, why);
		free(p->w);
		free(p);
	}
}
