/*
 * agent/ag_up_tok: the upstream engine's access-token caches, on its
 * curl side.  Owns one cache per channel and key file (ag_token's state),
 * the exchange that fills it (a JWT signed with the service account, sent
 * as a transfer of the engine's own whose answer is kept, not turned into
 * events), the requests parked until their channel's token is there (then
 * started, or refused with the cache's reason), the Authorization header
 * a request gets, and the refreshes due at each run (up_tok_tick).
 */
#include "agent/ag_upstream_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sodium.h>
#include "agent/ag_prov.h"
#include "agent/ag_token.h"
#include "lib/clock.h"
#include "lib/log.h"

#define TOK_WAITERS_MAX		1024
#define TOK_EXCHANGE_MS		10000	/* the exchange's whole budget */
#define TOK_ANSWER_MAX		(64 * 1024)

/* ---- token caches (curl side): ag_token's exchange as a transfer of
 * our own, with the requests that wait for it */

size_t
up_tok_write(struct up_req *r, const char *p, size_t n)
{
	char *na;

	if (r->acclen + n > TOK_ANSWER_MAX ||
	    (na = realloc(r->acc, r->acclen + n + 1)) == NULL)
		return 0;		/* ends the transfer: a failure */
	r->acc = na;
	memcpy(r->acc + r->acclen, p, n);
	r->acclen += n;
	r->acc[r->acclen] = '\0';
	return n;
}

void
up_tok_unpark(struct up_req *r)
{
	struct up_tok *k = r->parked;

	for (struct up_req **pp = &k->waiters; *pp != NULL;
	    pp = &(*pp)->wnext)
		if (*pp == r) {
			*pp = r->wnext;
			k->nwait--;
			break;
		}
	r->wnext = NULL;
	r->parked = NULL;
}

static struct up_tok *
tok_find(struct ag_upstream *u, const struct up_req *r)
{
	struct up_tok *k;

	for (k = u->toks; k != NULL; k = k->next)
		if (strcmp(k->t.channel, r->tok_channel) == 0 &&
		    strcmp(k->t.path, r->tok_path) == 0)
			return k;
	if ((k = calloc(1, sizeof(*k))) == NULL)
		return NULL;
	snprintf(k->t.channel, sizeof(k->t.channel), "%s", r->tok_channel);
	snprintf(k->t.path, sizeof(k->t.path), "%s", r->tok_path);
	k->next = u->toks;
	u->toks = k;
	return k;
}

static void
tok_refusal(const struct up_tok *k, char *buf, size_t len)
{
	snprintf(buf, len, "channel %s unavailable: %.100s", k->t.channel,
	    k->t.reason);
}

/* The exchange is over (the cache says how): every waiter goes on or is
 * refused. */
static void
tok_release(struct ag_upstream *u, struct up_tok *k)
{
	struct up_req *w;
	char why[160];

	while ((w = k->waiters) != NULL) {
		up_tok_unpark(w);
		if (ag_tok_state(&k->t, clock_mono_ms()) == AG_TOK_VALID ||
		    ag_tok_state(&k->t, clock_mono_ms()) == AG_TOK_REFRESH)
			up_start_one(u, w);
		else {
			tok_refusal(k, why, sizeof(why));
			up_refuse(u, w, why);
		}
	}
}

static void
tok_failed(struct ag_upstream *u, struct up_tok *k, int rc)
{
	if (rc == 1)
		log_warn("vertex channel %s: no access token: %s; requests to "
		    "it are refused until an exchange succeeds (next try "
		    "after %llds)", k->t.channel, k->t.reason,
		    (long long)(k->t.backoff_ms / 1000));
	tok_release(u, k);
}

/* Start an exchange for k: sign an assertion with the service account
 * (read again each time, so a replaced file is picked up). */
static void
tok_exchange(struct ag_upstream *u, struct up_tok *k)
{
	struct ag_sa sa;
	struct up_req *r = NULL;
	struct curl_slist *h;
	char err[400];
	char *jwt = NULL;
	CURLMcode mc;

	k->t.inflight = 1;
	if (ag_sa_load(k->t.path, &sa, err, sizeof(err)) != 0) {
		tok_failed(u, k, ag_tok_fail(&k->t, clock_mono_ms(), err));
		return;
	}
	jwt = ag_jwt_make(&sa, (int64_t)time(NULL), err, sizeof(err));
	ag_sa_free(&sa);
	if (jwt == NULL || (r = calloc(1, sizeof(*r))) == NULL ||
	    (r->body = (unsigned char *)ag_jwt_form(jwt)) == NULL ||
	    (r->url = strdup(AG_SA_TOKEN_URI)) == NULL ||
	    (h = curl_slist_append(NULL, "Content-Type: "
	    "application/x-www-form-urlencoded")) == NULL)
		goto fail;
	r->hdrs = h;
	if ((h = curl_slist_append(r->hdrs, "Expect:")) == NULL)
		goto fail;
	r->hdrs = h;
	r->u = u;
	r->post = 1;
	r->len = strlen((char *)r->body);
	r->prov = "vertex token";
	r->tokx = k;
	r->refs = 1;			/* the curl side's only */
	if (up_easy_setup(u, r, err, sizeof(err)) != 0)
		goto fail;
	curl_easy_setopt(r->easy, CURLOPT_TIMEOUT_MS, (long)TOK_EXCHANGE_MS);
	up_active_add(u, r);
	if ((mc = curl_multi_add_handle(u->multi, r->easy)) != CURLM_OK) {
		snprintf(err, sizeof(err), "curl: %s", curl_multi_strerror(mc));
		r->tokx = NULL;
		up_detach(u, r, 0);
		r = NULL;
		goto failmsg;
	}
	sodium_memzero(jwt, strlen(jwt));
	free(jwt);
	return;
fail:
	snprintf(err, sizeof(err), "cannot start the token exchange");
failmsg:
	if (r != NULL)
		up_req_free(r);
	if (jwt != NULL) {
		sodium_memzero(jwt, strlen(jwt));
		free(jwt);
	}
	tok_failed(u, k, ag_tok_fail(&k->t, clock_mono_ms(), err));
}

/* The exchange transfer r is done. */
void
up_tok_done(struct ag_upstream *u, struct up_req *r, CURLcode res)
{
	struct up_tok *k = r->tokx;
	int was_failed = k->t.failed, rc;
	long code = 0;
	char why[200];

	curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &code);
	if (res == CURLE_OK)
		rc = ag_tok_answer(&k->t, clock_mono_ms(), code, r->acc,
		    r->acclen);
	else {
		snprintf(why, sizeof(why), "the token exchange failed: %.150s",
		    r->errbuf[0] != '\0' ? r->errbuf : curl_easy_strerror(res));
		rc = ag_tok_fail(&k->t, clock_mono_ms(), why);
	}
	up_detach(u, r, 0);
	if (rc == 0) {
		if (was_failed)
			log_info("vertex channel %s: access token obtained; the "
			    "channel serves again", k->t.channel);
		tok_release(u, k);
	} else
		tok_failed(u, k, rc);
}

/*
 * r needs its channel's token: 1 when the header is on and r may start;
 * 0 when r waits for an exchange or was refused (the cache's reason).
 */
int
up_tok_ready(struct ag_upstream *u, struct up_req *r)
{
	struct up_tok *k = tok_find(u, r);
	enum ag_tok_state st;
	char err[160];

	if (k == NULL) {
		up_refuse(u, r, "out of memory");
		return 0;
	}
	st = ag_tok_state(&k->t, clock_mono_ms());
	if (st == AG_TOK_REFRESH && !k->t.inflight) {
		tok_exchange(u, k);	/* meanwhile: the old one */
		st = ag_tok_state(&k->t, clock_mono_ms());
	}
	switch (st) {
	case AG_TOK_REFRESH:
	case AG_TOK_VALID:
		if (ag_prov_header(&r->hdrs, "Authorization", "Bearer ",
		    k->t.token, err, sizeof(err)) != 0) {
			up_refuse(u, r, err);
			return 0;
		}
		return 1;
	case AG_TOK_FAILED:
		tok_refusal(k, err, sizeof(err));
		up_refuse(u, r, err);
		return 0;
	default:
		if (k->nwait >= TOK_WAITERS_MAX) {
			up_refuse(u, r, "too many requests waiting for the "
			    "channel's access token");
			return 0;
		}
		r->parked = k;
		r->wnext = k->waiters;
		k->waiters = r;
		k->nwait++;
		if (!k->t.inflight)
			tok_exchange(u, k);
		return 0;
	}
}

/* Once a loop turn: refresh the tokens due (requests keep the old one
 * meanwhile). */
void
up_tok_tick(struct ag_upstream *u)
{
	for (struct up_tok *k = u->toks; k != NULL; k = k->next)
		if (!k->t.inflight &&
		    ag_tok_state(&k->t, clock_mono_ms()) == AG_TOK_REFRESH)
			tok_exchange(u, k);
}
