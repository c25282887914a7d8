/*
 * agent/ag_ws: the provider WebSocket of a Realtime session (API in
 * ag_ws.h).  Every connection is an lws client on the tunnel's context;
 * its struct is freed when lws closes the connection, and a session that
 * goes first just detaches (cb = NULL).  ag_tunnel's protocol callback
 * hands our wsi to ag_ws_dispatch (they are told apart by a list of ours,
 * short: one entry per live session).
 */
#include "agent/ag_ws.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "agent/ag_prov.h"
#include "lib/log.h"
#include "lib/outq.h"

struct ag_ws {
	struct ag_ws *next;
	struct lws *wsi;
	const struct ag_ws_cb *cb;	/* NULL once the session detached */
	void *arg;
	struct curl_slist *hdrs;	/* the adapter's auth lines */
	int open, closing;
	int in_open, failed;		/* an error inside ag_ws_open's call */
	int peer_closed;		/* the provider sent a close frame */
	unsigned char *msg;		/* a provider message being reassembled */
	size_t msglen;
	int too_big;
	struct outq out;		/* for the provider (tag: 1 text) */
	size_t out_bytes;
	char host[128];
};

static struct ag_ws *all;

static void
unlist(struct ag_ws *w)
{
	for (struct ag_ws **pp = &all; *pp != NULL; pp = &(*pp)->next)
		if (*pp == w) {
			*pp = w->next;
			return;
		}
}

static void
ws_free(struct ag_ws *w)
{
	unlist(w);
	curl_slist_free_all(w->hdrs);
	outq_clear(&w->out);
	free(w->msg);
	free(w);
}

static void
ended(struct ag_ws *w, int ok, const char *why)
{
	const struct ag_ws_cb *cb = w->cb;

	w->cb = NULL;
	if (cb != NULL)
		cb->closed(w->arg, ok, why);
}

#if SWB_TEST_BUILD
/* [test] connect_to: "HOST:PORT:ADDR:PORT" entries, comma-separated. */
static void
connect_to(const struct ag_conf *cf, const char *host, char *addr,
    size_t alen, int *port)
{
	char buf[AG_CONNECT_TO_MAX], *tok, *save = NULL;

	snprintf(buf, sizeof(buf), "%s", cf->connect_to);
	for (tok = strtok_r(buf, ",", &save); tok != NULL;
	    tok = strtok_r(NULL, ",", &save)) {
		char h[128], a[128];
		int p1, p2;
		while (*tok == ' ' || *tok == '\t')
			tok++;
		if (sscanf(tok, "%127[^:]:%d:%127[^:]:%d", h, &p1, a, &p2) != 4)
			continue;
		if (strcasecmp(h, host) == 0 && p1 == 443 && p2 > 0 &&
		    p2 < 65536) {
			snprintf(addr, alen, "%s", a);
			*port = p2;
			return;
		}
	}
}
#endif

struct ag_ws *
ag_ws_open(struct lws_context *ctx, const struct ag_conf *cf,
    const struct ag_channel *ch, const char *path, const struct ag_ws_cb *cb,
    void *arg, char *err, size_t errlen)
{
	const struct ag_prov *p = ag_prov_find(ch->provider);
	struct lws_client_connect_info ci;
	struct ag_prov_req rq;
	struct ag_ws *w;
	char addr[128], url[512];
	int port = 443;

	if (p == NULL || p->base_url == NULL || p->add_auth == NULL ||
	    strncmp(p->base_url, "https://", 8) != 0) {
		snprintf(err, errlen, "provider %s: no WebSocket endpoint",
		    ag_provider_name(ch->provider));
		return NULL;
	}
	if ((w = calloc(1, sizeof(*w))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	/* The host is the adapter's compiled-in base URL: one of its
	 * official hosts, never the hub's or the channel's choice. */
	snprintf(w->host, sizeof(w->host), "%s", p->base_url + 8);
	snprintf(url, sizeof(url), "%s%s", p->base_url, path);
	memset(&rq, 0, sizeof(rq));
	rq.ch = ch;
	rq.method = "GET";
	rq.url = url;
	rq.path = path;
	rq.content_type = "";
	if (p->add_auth(&w->hdrs, ch, &rq, err, errlen) != 0) {
		ws_free(w);
		return NULL;
	}
	snprintf(addr, sizeof(addr), "%s", w->host);
#if SWB_TEST_BUILD
	connect_to(cf, w->host, addr, sizeof(addr), &port);
#else
	(void)cf;
#endif
	w->cb = cb;
	w->arg = arg;
	w->next = all;
	all = w;
	memset(&ci, 0, sizeof(ci));
	ci.context = ctx;
	ci.address = addr;
	ci.port = port;
	ci.path = path;
	ci.host = w->host;
	ci.origin = w->host;
	ci.ssl_connection = LCCSCF_USE_SSL;
	ci.local_protocol_name = "swb-agent";
	ci.opaque_user_data = w;
	ci.pwsi = &w->wsi;
	w->in_open = 1;
	if (lws_client_connect_via_info(&ci) == NULL || w->failed) {
		snprintf(err, errlen, "cannot start a connection to %s", w->host);
		unlist(w);
		w->cb = NULL;
		ws_free(w);
		return NULL;
	}
	w->in_open = 0;
	return w;
}

int
ag_ws_send(struct ag_ws *w, const void *p, size_t len, int text)
{
	struct outq_item *o;

	if (w == NULL || w->closing || w->wsi == NULL ||
	    w->out_bytes + len > AG_WS_OUT_MAX)
		return -1;
	if ((o = outq_push(&w->out, LWS_PRE, p, len, NULL, 0)) == NULL)
		return -1;
	o->tag = text != 0;
	w->out_bytes += len;
	if (w->open)
		lws_callback_on_writable(w->wsi);
	return 0;
}

void
ag_ws_close(struct ag_ws *w)
{
	if (w == NULL)
		return;
	w->cb = NULL;
	w->closing = 1;
	if (w->wsi != NULL)
		lws_callback_on_writable(w->wsi);
}

static int
is_ours(struct ag_ws *w)
{
	for (struct ag_ws *x = all; x != NULL; x = x->next)
		if (x == w)
			return 1;
	return 0;
}

static int
cb_ws(struct ag_ws *w, struct lws *wsi, enum lws_callback_reasons reason,
    void *user, void *in, size_t len)
{
	switch (reason) {
	case LWS_CALLBACK_OPENSSL_PERFORM_SERVER_CERT_VERIFICATION:
		/* OpenSSL's own verdict (the CAs, the host name) decides. */
		return len ? 0 : 1;
	case LWS_CALLBACK_CLIENT_APPEND_HANDSHAKE_HEADER: {
		unsigned char **p = in, *end = *p + len;
		for (struct curl_slist *h = w->hdrs; h != NULL; h = h->next) {
			const char *colon = strchr(h->data, ':');
			char name[64];
			const char *v;
			if (colon == NULL || (size_t)(colon - h->data) + 2 >
			    sizeof(name))
				continue;
			memcpy(name, h->data, (size_t)(colon - h->data) + 1);
			name[colon - h->data + 1] = '\0';
			for (char *c = name; *c; c++)
				*c = (char)((*c >= 'A' && *c <= 'Z') ? *c + 32 : *c);
			for (v = colon + 1; *v == ' '; v++)
				;
			if (lws_add_http_header_by_name(wsi,
			    (const unsigned char *)name, (const unsigned char *)v,
			    (int)strlen(v), p, end))
				return -1;
		}
		return 0;
	}
	case LWS_CALLBACK_CLIENT_ESTABLISHED:
		w->open = 1;
		if (w->cb != NULL)
			w->cb->open(w->arg);
		if (w->out.head != NULL || w->closing)
			lws_callback_on_writable(wsi);
		return 0;
	case LWS_CALLBACK_CLIENT_RECEIVE: {
		unsigned char *nb;
		if (w->cb == NULL)
			return 0;
		if (lws_is_first_fragment(wsi)) {
			w->msglen = 0;
			w->too_big = 0;
		}
		if (!w->too_big && w->msglen + len > AG_WS_MSG_MAX)
			w->too_big = 1;
		if (!w->too_big && len > 0) {
			if ((nb = realloc(w->msg, w->msglen + len)) == NULL)
				w->too_big = 1;
			else {
				w->msg = nb;
				memcpy(w->msg + w->msglen, in, len);
				w->msglen += len;
			}
		}
		if (!lws_is_final_fragment(wsi) || lws_remaining_packet_payload(wsi))
			return 0;
		if (w->too_big) {
			ended(w, 0, "a provider message larger than the agent "
			    "relays");
			w->closing = 1;
			return -1;
		}
		w->cb->msg(w->arg, w->msg, w->msglen, !lws_frame_is_binary(wsi));
		w->msglen = 0;
		return 0;
	}
	case LWS_CALLBACK_CLIENT_WRITEABLE: {
		struct outq_item *o = w->out.head;
		if (w->closing) {
			lws_close_reason(wsi, LWS_CLOSE_STATUS_NORMAL, NULL, 0);
			return -1;
		}
		if (o == NULL)
			return 0;
		/* The item keeps LWS_PRE of headroom before its data. */
		if (lws_write(wsi, o->data, o->len, o->tag ? LWS_WRITE_TEXT :
		    LWS_WRITE_BINARY) < (int)o->len)
			return -1;
		w->out_bytes -= o->len;
		outq_pop(&w->out);
		if (w->out.head != NULL)
			lws_callback_on_writable(wsi);
		return 0;
	}
	case LWS_CALLBACK_CLIENT_CONNECTION_ERROR: {
		char why[200];
		snprintf(why, sizeof(why), "cannot open the provider's "
		    "WebSocket at %s: %s", w->host, in != NULL ?
		    (const char *)in : "error");
		log_warn("agent: %s", why);
		w->wsi = NULL;
		if (w->in_open) {	/* ag_ws_open reports it */
			w->failed = 1;
			return 0;
		}
		ended(w, 0, why);
		ws_free(w);
		return 0;
	}
	case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE:
		w->peer_closed = 1;
		return 0;
	case LWS_CALLBACK_CLIENT_CLOSED:
		/* A close frame is a clean end; a dropped connection is not. */
		ended(w, w->peer_closed && !w->too_big, w->peer_closed ?
		    "the provider closed the session" :
		    "the provider's connection dropped");
		w->wsi = NULL;
		ws_free(w);
		return 0;
	default:
		(void)user;
		return 0;
	}
}

int
ag_ws_dispatch(struct lws *wsi, enum lws_callback_reasons reason, void *user,
    void *in, size_t len, int *ret)
{
	struct ag_ws *w = wsi != NULL ? lws_get_opaque_user_data(wsi) : NULL;

	if (w == NULL || !is_ours(w))
		return 0;
	*ret = cb_ws(w, wsi, reason, user, in, len);
	return 1;
}
