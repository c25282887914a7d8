/*
 * gateway/gw_http: HTTP request handling of a gateway worker.  Every error
 * a user sees is in OpenAI's error JSON shape.
 */
#include "gateway/gw.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <jansson.h>
#include "lib/log.h"

static struct child_env *env_;
static int inflight;		/* streams still being relayed */

struct gw_req {
	char path[256];
};

void
gw_set_env(struct child_env *env)
{
	env_ = env;
}

struct child_env *
gw_env(void)
{
	return env_;
}

int
gw_inflight(void)
{
	return inflight;
}

/* Write a complete response with a JSON body.  -1: close the connection. */
static int
send_json(struct lws *wsi, unsigned status, const char *body)
{
	unsigned char buf[LWS_PRE + 4096], *start = buf + LWS_PRE, *p = start,
	    *end = buf + sizeof(buf);
	size_t len = strlen(body);

	if (lws_add_http_common_headers(wsi, status, "application/json",
	    (lws_filepos_t)len, &p, end) ||
	    lws_add_http_header_by_name(wsi, (const unsigned char *)"cache-control:",
	    (const unsigned char *)"no-cache", 8, &p, end) ||
	    lws_finalize_write_http_header(wsi, start, &p, end))
		return -1;
	if (lws_write(wsi, (unsigned char *)body, len, LWS_WRITE_HTTP_FINAL) != (int)len)
		return -1;
	return lws_http_transaction_completed(wsi) ? -1 : 0;
}

/* OpenAI's error shape: {"error":{"message","type","param","code"}}. */
static int
send_error(struct lws *wsi, unsigned status, const char *type,
    const char *code, const char *message)
{
	json_t *o = json_pack("{s:{s:s, s:s, s:n, s:s}}", "error", "message",
	    message, "type", type, "param", "code", code);
	char *s = json_dumps(o, JSON_COMPACT);
	int rc = send_json(wsi, status, s ? s : "{}");

	free(s);
	json_decref(o);
	return rc;
}

static int
route_health(struct lws *wsi)
{
	char body[256];

	snprintf(body, sizeof(body), "{\"status\":\"ok\",\"worker\":%u,"
	    "\"pid\":%d,\"config_generation\":%llu}", env_->instance,
	    (int)getpid(), (unsigned long long)env_->conf_gen);
	return send_json(wsi, 200, body);
}

static const struct {
	const char *path;
	int (*fn)(struct lws *wsi);
} routes[] = {
	{ "/healthz", route_health },
};

static int
cb_http(struct lws *wsi, enum lws_callback_reasons reason, void *user,
    void *in, size_t len)
{
	struct gw_req *r = user;

	switch (reason) {
	case LWS_CALLBACK_HTTP:
		snprintf(r->path, sizeof(r->path), "%s", (const char *)in);
		for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++)
			if (strcmp(routes[i].path, r->path) == 0)
				return routes[i].fn(wsi);
		return send_error(wsi, 404, "invalid_request_error",
		    "unknown_url", "Unknown request URL. Please check the URL "
		    "and method.");
	default:
		break;
	}
	return lws_callback_http_dummy(wsi, reason, user, in, len);
}

struct lws_protocols
gw_http_protocol(void)
{
	struct lws_protocols p = { "http", cb_http, sizeof(struct gw_req),
		0, 0, NULL, 0 };
	return p;
}
