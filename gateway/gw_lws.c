/*
 * gateway/gw_lws: the user port over TLS ([gateway] cert/key), where
 * libwebsockets speaks HTTP/2 and HTTP/1.1 (ALPN) — one request per lws
 * stream.  Headers are read through lws; bodies arrive as lws delivers
 * them and are held within max_body and the worker's body budget; the
 * stages (gw_stage.c) are the same as on the plain port.  Only clients
 * that offer HTTP/2 come here (gw_tls.c hands the others to gw_h1.c); no
 * WebSocket upgrade is accepted on this protocol (Realtime over h2 gets
 * gw_rt_parse's 400 in OpenAI's shape).
 */
#include "gateway/gw.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "lib/log.h"

struct gw_lws_sess {
	struct gw_req req;
};

/* Header names lws knows as tokens; anything else is a custom header. */
static const struct { const char *name; enum lws_token_indexes tok; } toks[] = {
	{ "authorization", WSI_TOKEN_HTTP_AUTHORIZATION },
	{ "content-type", WSI_TOKEN_HTTP_CONTENT_TYPE },
	{ "content-length", WSI_TOKEN_HTTP_CONTENT_LENGTH },
	{ "host", WSI_TOKEN_HOST },
	{ "transfer-encoding", WSI_TOKEN_HTTP_TRANSFER_ENCODING },
	{ "upgrade", WSI_TOKEN_UPGRADE },
};

int
gw_lws_hdr(struct gw_req *r, const char *lname, char *out, size_t outlen)
{
	char cname[64];
	int n;

	for (size_t i = 0; i < sizeof(toks) / sizeof(toks[0]); i++)
		if (strcmp(toks[i].name, lname) == 0) {
			if (lws_hdr_total_length(r->wsi, toks[i].tok) <= 0)
				return -1;
			n = lws_hdr_copy(r->wsi, out, (int)outlen, toks[i].tok);
			return n < 0 ? -1 : n;
		}
	n = snprintf(cname, sizeof(cname), "%s:", lname);
	if (n <= 0 || (size_t)n >= sizeof(cname))
		return -1;
	n = lws_hdr_custom_copy(r->wsi, out, (int)outlen, cname, n);
	return n < 0 ? -1 : n;
}

int
gw_lws_query(struct gw_req *r, const char *name, char *out, size_t outlen)
{
	char key[64];
	const char *v;

	snprintf(key, sizeof(key), "%s=", name);
	v = lws_get_urlarg_by_name(r->wsi, key, out, (int)outlen);
	return v == NULL ? -1 : (int)strlen(v) == 0 && v != out ? -1 :
	    (memmove(out, v, strlen(v) + 1), (int)strlen(out));
}

int
gw_lws_write_head(struct gw_req *r, const struct gw_head *h)
{
	unsigned char buf[LWS_PRE + 2048], *start = buf + LWS_PRE, *p = start,
	    *end = buf + sizeof(buf);

	if (lws_add_http_header_status(r->wsi, h->status, &p, end))
		return -1;
	for (int i = 0; i < h->n; i++) {
		char name[48];
		snprintf(name, sizeof(name), "%s:", h->h[i].name);
		if (lws_add_http_header_by_name(r->wsi, (const unsigned char *)name,
		    (const unsigned char *)h->h[i].value,
		    (int)strlen(h->h[i].value), &p, end))
			return -1;
	}
	return lws_finalize_write_http_header(r->wsi, start, &p, end) ? -1 : 0;
}

int
gw_lws_write(struct gw_req *r, const void *p, size_t len, int final)
{
	unsigned char z[LWS_PRE + 1];

	if (len == 0)
		p = z + LWS_PRE;
	return lws_write(r->wsi, (unsigned char *)(uintptr_t)p, len, final ?
	    LWS_WRITE_HTTP_FINAL : LWS_WRITE_HTTP) < (int)len ? -1 : 0;
}

int
gw_lws_done(struct gw_req *r)
{
	struct lws *wsi = r->wsi;
	int close_it = r->close_after;

	gw_req_reset(r);
	if (close_it)
		return -1;
	return lws_http_transaction_completed(wsi) ? -1 : 0;
}

/* The method lws parsed. */
static const char *
method_of(struct lws *wsi, size_t *len)
{
	static const struct { enum lws_token_indexes t; const char *m; } ms[] = {
		{ WSI_TOKEN_GET_URI, "GET" }, { WSI_TOKEN_POST_URI, "POST" },
		{ WSI_TOKEN_PUT_URI, "PUT" }, { WSI_TOKEN_DELETE_URI, "DELETE" },
		{ WSI_TOKEN_PATCH_URI, "PATCH" }, { WSI_TOKEN_OPTIONS_URI, "OPTIONS" },
		{ WSI_TOKEN_HEAD_URI, "HEAD" },
	};

	for (size_t i = 0; i < sizeof(ms) / sizeof(ms[0]); i++)
		if (lws_hdr_total_length(wsi, ms[i].t) > 0) {
			*len = strlen(ms[i].m);
			return ms[i].m;
		}
	*len = 0;
	return "";
}

static int
cb_lws(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
    size_t len)
{
	struct gw_lws_sess *s = user;
	struct gw_req *r = s ? &s->req : NULL;

	switch (reason) {
	case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION:
		return 1;	/* no WebSocket on the user port */
	case LWS_CALLBACK_HTTP:
		gw_req_reset(r);
		gw_req_begin(r, GW_TR_LWS, NULL, wsi);
		{
			size_t mlen;
			const char *m = method_of(wsi, &mlen);
			gw_req_route(r, m, mlen, (const char *)in, strlen(in));
		}
		gw_run(r);
		return 0;
	case LWS_CALLBACK_HTTP_BODY:
		if (r != NULL && r->reqid != 0 && r->stage <= GW_ST_BODY) {
			if ((int64_t)(r->body_len + len) > gw_env()->conf.gw_max_body ||
			    gw_budget_take(r, (int64_t)len) != 0) {
				r->close_after = 1;
				gw_reply_error(r, 413, "invalid_request_error",
				    "request_too_large", "Request body exceeds the "
				    "limit or the hub is busy with other uploads.");
				return 0;
			}
			gw_body_data(r, in, len);
		}
		return 0;
	case LWS_CALLBACK_HTTP_BODY_COMPLETION:
		if (r != NULL && r->reqid != 0)
			gw_body_done(r);
		return 0;
	case LWS_CALLBACK_HTTP_WRITEABLE:
		if (r == NULL || r->reqid == 0 || r->wsi != wsi)
			return 0;
		return gw_req_writable(r);
	case LWS_CALLBACK_CLOSED_HTTP:
	case LWS_CALLBACK_HTTP_DROP_PROTOCOL:
		if (r != NULL && r->reqid != 0) {
			if (r->stage == GW_ST_RELAY) {
				log_rinfo(r->reqid, "user disconnected; cancelling");
				gw_relay_cancel(r, 1);
			}
			gw_req_reset(r);
		}
		return 0;
	default:
		break;
	}
	return lws_callback_http_dummy(wsi, reason, user, in, len);
}

struct lws_protocols
gw_lws_protocol(void)
{
	struct lws_protocols p = { "http", cb_lws, sizeof(struct gw_lws_sess),
		0, 0, NULL, 0 };
	return p;
}
