/*
 * agent/ag_up_resp: reading a response, on the curl side of the upstream
 * engine.  Owns the header and write callbacks curl calls for a transfer
 * (up_on_header, up_on_write: the HEAD event once the final header block
 * is in, each block of body or event-stream bytes as one DATA event,
 * exactly as curl delivers it; a token exchange's answer goes to
 * agent/ag_up_tok.c instead), the END event (up_push_end), pausing a
 * transfer at the back-pressure bounds and resuming it (up_resume_scan),
 * and what a stream's transfer gives back between curl's calls: kept TLS
 * buffers for whole answers, the upload and TLS read buffers of streams
 * (up_trim_run).  The events go to the queue of agent/ag_up_queue.c.
 */
#include "agent/ag_upstream_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/ssl.h>

#define TRIM_UPLOAD	0x1	/* up_req.trim: see up_trim_run() */
#define TRIM_TLS	0x2

/* ---- curl side */

static void trim_mark(struct up_req *r, int what);

void
up_push_head(struct up_req *r)
{
	struct up_ev *n = r->headev;
	long code = 0;
	char *ct = NULL;

	if (r->head_sent || n == NULL)
		return;
	r->head_sent = 1;
	r->headev = NULL;
	if (r->stream)
		trim_mark(r, TRIM_UPLOAD);
	curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &code);
	curl_easy_getinfo(r->easy, CURLINFO_CONTENT_TYPE, &ct);
	n->ev.key = r->key;
	n->ev.type = AG_UP_HEAD;
	n->ev.status = code;
	snprintf(n->ev.content_type, sizeof(n->ev.content_type), "%s",
	    ct != NULL ? ct : "");
	up_ev_push(r->u, r, n);
}

void
up_push_end(struct up_req *r, long status, int ok, const char *error)
{
	struct up_ev *n = r->endev;

	if (n == NULL)
		return;
	r->endev = NULL;
	n->ev.key = r->key;
	n->ev.type = AG_UP_END;
	n->ev.status = status;
	n->ev.ok = ok;
	if (!ok)
		snprintf(n->ev.error, sizeof(n->ev.error), "%s", error);
	up_ev_push(r->u, r, n);
}

/* The OpenSSL connection r's transfer runs on, or NULL. */
static SSL *
req_ssl(struct up_req *r)
{
	struct curl_tlssessioninfo *ti = NULL;

	if (curl_easy_getinfo(r->easy, CURLINFO_TLS_SSL_PTR, &ti) != CURLE_OK ||
	    ti == NULL || ti->backend != CURLSSLBACKEND_OPENSSL)
		return NULL;
	return ti->internals;
}

/*
 * libcurl asks OpenSSL to give a connection's 16 KB read and write
 * buffers back after every record (SSL_MODE_RELEASE_BUFFERS).  A
 * connection that carries whole answers, one after another, then makes
 * both again for every request.  Its buffers are kept instead (about
 * 33 KB while it waits in libcurl's pool).  A stream's connection keeps
 * the mode: it holds its transfer long, and up_trim_run frees what it can.
 */
static void
keep_tls_buffers(struct up_req *r)
{
	SSL *ssl;

	if (!r->stream && (ssl = req_ssl(r)) != NULL)
		(void)SSL_clear_mode(ssl, SSL_MODE_RELEASE_BUFFERS);
}

size_t
up_on_header(char *p, size_t size, size_t nmemb, void *arg)
{
	struct up_req *r = arg;
	size_t n = size * nmemb;
	long code = 0;

	r->rx_ms = r->u->run_ms;
	/* The blank line ends a header block; 1xx blocks are not the
	 * response's.  Trailers come after HEAD and are ignored. */
	if (r->tokx != NULL)
		return n;
	if (!r->head_sent && ((n == 2 && p[0] == '\r' && p[1] == '\n') ||
	    (n == 1 && p[0] == '\n'))) {
		curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &code);
		if (code >= 200) {
			up_push_head(r);
			keep_tls_buffers(r);
		}
	}
	return n;
}

size_t
up_on_write(char *p, size_t size, size_t nmemb, void *arg)
{
	struct up_req *r = arg;
	struct ag_upstream *u = r->u;
	size_t n = size * nmemb;
	struct up_ev *e;

	if (r->dropping)
		return n;
	r->rx_ms = u->run_ms;
	if (r->tokx != NULL)
		return up_tok_write(r, p, n);
	up_push_head(r);
	if (n == 0)
		return 0;
	up_lock(u);
	if (r->cancelled) {
		/* Dropped at the next turn of the loop: just swallow. */
		up_unlock(u);
		return n;
	}
	if (!r->flushing && (r->queued >= u->req_max ||
	    u->total >= u->total_max)) {
		if (!r->paused) {
			r->paused = 1;
			u->npaused++;
			if (u->total >= u->total_max) {
				r->paused_total = 1;
				u->npaused_total++;
			}
		}
		up_unlock(u);
		r->cpaused = 1;
		return CURL_WRITEFUNC_PAUSE;
	}
	up_unlock(u);

	if ((e = calloc(1, sizeof(*e))) == NULL ||
	    (e->ev.data = malloc(n)) == NULL) {
		free(e);
		r->oom = 1;
		return 0;	/* CURLE_WRITE_ERROR ends the transfer */
	}
	memcpy(e->ev.data, p, n);
	if (r->stream)
		trim_mark(r, TRIM_TLS);
	e->ev.len = n;
	e->ev.key = r->key;
	e->ev.type = AG_UP_DATA;
	up_ev_push(u, r, e);
	return n;
}

void
up_resume_scan(struct ag_upstream *u)
{
	struct up_req *r;
	int any = 0;

	up_lock(u);
	u->resume_check = 0;
	for (r = u->active; r != NULL; r = r->anext) {
		if (!r->paused)
			continue;
		if (u->total >= u->total_max / 2)
			break;
		if (r->queued < u->req_max / 2) {
			up_pause_clear_locked(u, r);
			r->resume = any = 1;
		} else if (r->paused_total) {
			/* Held by its own queue: its own credit wakes it. */
			r->paused_total = 0;
			u->npaused_total--;
		}
	}
	up_unlock(u);
	if (!any)
		return;
	for (r = u->active; r != NULL; r = r->anext)
		if (r->resume) {
			r->resume = 0;
			r->cpaused = 0;
			/* May call up_on_write at once, which may pause again. */
			curl_easy_pause(r->easy, CURLPAUSE_CONT);
		}
}

/*
 * What a transfer holds that it no longer needs, given back between
 * curl's calls (up_trim_run, at the end of each ag_up_run), never from
 * inside its callbacks:
 * - TRIM_UPLOAD (a stream's answer began): over HTTPS without HTTP/2,
 *   libcurl (7.88) copies the request into its upload buffer (16 KB at
 *   least) and keeps that buffer for the handle's life.  Once the whole
 *   body went out nothing of the request is sent any more; setting the
 *   size again frees the buffer (curl makes a new one if it ever needs
 *   one).
 * - TRIM_TLS (a stream read): OpenSSL sets up its 16.7 KB read buffer
 *   before the read that finds the socket empty, and keeps it, whatever
 *   SSL_MODE_RELEASE_BUFFERS says.  SSL_free_buffers frees it when it
 *   holds nothing.
 * Only for streams, which hold their transfer long: a whole answer's
 * handle and connection serve the next request at once, and giving its
 * buffers back would only cost their making again.
 * Measured with 2,000 slow streams: agentd's resident memory per stream
 * 84 → 60 KB, CPU per chunk unchanged within the noise.
 */
static void
trim_mark(struct up_req *r, int what)
{
	if (r->trim == 0) {
		r->tnext = r->u->trims;
		r->u->trims = r;
	}
	r->trim |= what;
}

void
up_trim_run(struct ag_upstream *u)
{
	struct up_req *r, *next;
	SSL *ssl;
	curl_off_t up;

	for (r = u->trims; r != NULL; r = next) {
		next = r->tnext;
		r->tnext = NULL;
		if (r->easy == NULL) {
			r->trim = 0;
			continue;
		}
		if ((r->trim & TRIM_UPLOAD) && curl_easy_getinfo(r->easy,
		    CURLINFO_SIZE_UPLOAD_T, &up) == CURLE_OK &&
		    up >= (curl_off_t)r->len)
			(void)curl_easy_setopt(r->easy,
			    CURLOPT_UPLOAD_BUFFERSIZE, UL_BUFSIZE);
		if ((r->trim & TRIM_TLS) && (ssl = req_ssl(r)) != NULL)
			(void)SSL_free_buffers(ssl);
		r->trim = 0;
	}
	u->trims = NULL;
}
