/*
 * agent/ag_probe: GET /probe over pinned TLS (see ag_probe.h).
 */
#include "agent/ag_probe.h"

#include <stdio.h>
#include <string.h>
#include <openssl/x509.h>
#include <sodium.h>
#include <jansson.h>

#include "lib/log.h"
#include "lib/clock.h"
#include "lib/tunauth.h"

int
ag_pins_match(const struct ag_conf *cf, X509 *cert)
{
	unsigned char h[32];

	if (cert == NULL || tunauth_spki_sha256(cert, h) != 0)
		return 0;
	for (int i = 0; i < cf->pins.n; i++)
		if (sodium_memcmp(h, cf->pins.sha256[i], 32) == 0)
			return 1;
	return 0;
}

int
ag_pins_verify(const struct ag_conf *cf, X509_STORE_CTX *x)
{
	/* Only the leaf is judged, by its key against the pins. */
	if (X509_STORE_CTX_get_error_depth(x) != 0 ||
	    ag_pins_match(cf, X509_STORE_CTX_get_current_cert(x))) {
		X509_STORE_CTX_set_error(x, X509_V_OK);
		return 0;
	}
	X509_STORE_CTX_set_error(x, X509_V_ERR_CERT_REJECTED);
	return 1;
}

static void
finish(struct ag_probe *p, const char *why)
{
	json_error_t jerr;
	json_t *o = NULL;
	const char *ip = NULL;

	p->wsi = NULL;
	if (why == NULL) {
		o = json_loadb(p->body, p->len, 0, &jerr);
		ip = json_string_value(json_object_get(o, "ip"));
		if (ip == NULL || ip[0] == '\0' || strlen(ip) >= sizeof(p->ip) ||
		    strspn(ip, "0123456789abcdefABCDEF.:") != strlen(ip)) {
			why = "the answer is not {\"ip\":ADDRESS}";
			ip = NULL;
		}
	}
	if (ip != NULL) {
		if (strcmp(ip, p->ip) != 0)
			log_info("public address as the hub sees it: %s", ip);
		snprintf(p->ip, sizeof(p->ip), "%s", ip);
		p->at_ms = clock_wall_ms();
	} else
		log_warn("cannot learn the public address from the hub's %s: %s",
		    AG_PROBE_PATH, why);
	if (p->done != NULL)
		p->done(p->arg, ip);
	json_decref(o);
}

int
ag_probe_callback(struct lws *wsi, enum lws_callback_reasons reason,
    void *user, void *in, size_t len)
{
	struct ag_probe *p = wsi ? lws_get_opaque_user_data(wsi) : NULL;
	char buf[LWS_PRE + 512], *px = buf + LWS_PRE;
	int n = (int)sizeof(buf) - LWS_PRE;
	unsigned status;

	if (p == NULL || p->wsi != wsi)
		return reason == LWS_CALLBACK_OPENSSL_PERFORM_SERVER_CERT_VERIFICATION;
	switch (reason) {
	case LWS_CALLBACK_OPENSSL_PERFORM_SERVER_CERT_VERIFICATION:
		return ag_pins_verify(p->cf, user);
	case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
		finish(p, in != NULL ? (const char *)in : "connection failed");
		return 0;
	case LWS_CALLBACK_ESTABLISHED_CLIENT_HTTP:
		status = lws_http_client_http_response(wsi);
		if (status != 200) {
			snprintf(buf, sizeof(buf), "HTTP status %u", status);
			finish(p, buf);
			return -1;
		}
		return 0;
	case LWS_CALLBACK_RECEIVE_CLIENT_HTTP_READ:
		if (p->len + len >= sizeof(p->body)) {
			finish(p, "answer too long");
			return -1;
		}
		memcpy(p->body + p->len, in, len);
		p->len += len;
		return 0;
	case LWS_CALLBACK_RECEIVE_CLIENT_HTTP:
		if (lws_http_client_read(wsi, &px, &n) < 0)
			return -1;
		return 0;
	case LWS_CALLBACK_COMPLETED_CLIENT_HTTP:
		finish(p, NULL);
		return -1;	/* one request per connection */
	case LWS_CALLBACK_CLOSED_CLIENT_HTTP:
		if (p->wsi == wsi)
			finish(p, "the hub closed the connection early");
		return 0;
	default:
		break;
	}
	return lws_callback_http_dummy(wsi, reason, user, in, len);
}

int
ag_probe_start(struct ag_probe *p, struct lws_context *ctx)
{
	struct lws_client_connect_info ci;

	if (p->wsi != NULL)
		return 0;
	memset(&ci, 0, sizeof(ci));
	ci.context = ctx;
	ci.address = p->cf->hub_host;
	ci.port = p->cf->hub_port;
	ci.path = AG_PROBE_PATH;
	ci.host = p->cf->hub_host;
	ci.origin = p->cf->hub_host;
	ci.method = "GET";
	ci.alpn = "http/1.1";
	ci.protocol = AG_PROBE_PROTOCOL;
	ci.local_protocol_name = AG_PROBE_PROTOCOL;
	ci.ssl_connection = LCCSCF_USE_SSL |
	    LCCSCF_SKIP_SERVER_CERT_HOSTNAME_CHECK;
	ci.opaque_user_data = p;
	p->len = 0;
	ci.pwsi = &p->wsi;
	if (lws_client_connect_via_info(&ci) == NULL) {
		p->wsi = NULL;
		log_warn("cannot start %s to %s:%d", AG_PROBE_PATH,
		    p->cf->hub_host, p->cf->hub_port);
		return -1;
	}
	return 0;
}
