/*
 * admin/adm_routes: the admin API's routes, one table: method + path
 * pattern -> the hubctl command it runs (argv built from the path, the
 * query and the JSON body), and the HTTP status of its answer.  The
 * answer's JSON is the body as the command wrote it (docs/admin-openapi.yaml
 * lists every route).  Two routes are more than one command's JSON:
 * /metrics (the "channels" answer plus the scoreboard, adm_metrics.c) and
 * the ledger export (pages of "ledger export" streamed as one CSV).
 */
#include "admin/adm.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "lib/log.h"

#define MAX_PARAMS 2

struct argb {
	char buf[IPC_ADMIN_MAX];
	size_t len;
	int err;
};

static void
arg(struct argb *a, const char *s)
{
	size_t n = strlen(s) + 1;

	if (a->len + n > sizeof(a->buf)) {
		a->err = 1;
		return;
	}
	memcpy(a->buf + a->len, s, n);
	a->len += n;
}

/* A body field as command text: strings as they are, integers in decimal,
 * reals as a plain decimal with at most 6 places, booleans yes/no.
 * 1 present, 0 absent, -1 of a type that cannot be one. */
static int
field(const json_t *body, const char *key, char *out, size_t len)
{
	const json_t *v = body ? json_object_get(body, key) : NULL;

	if (v == NULL || json_is_null(v))
		return 0;
	if (json_is_string(v))
		snprintf(out, len, "%s", json_string_value(v));
	else if (json_is_integer(v))
		snprintf(out, len, "%lld", (long long)json_integer_value(v));
	else if (json_is_real(v)) {
		char *e;
		snprintf(out, len, "%.6f", json_real_value(v));
		e = out + strlen(out) - 1;
		while (e > out && *e == '0')
			*e-- = '\0';
		if (*e == '.')
			*e = '\0';
	} else if (json_is_boolean(v))
		snprintf(out, len, "%s", json_is_true(v) ? "yes" : "no");
	else if (json_is_array(v)) {	/* ["a","b"] -> "a,b" */
		size_t i, n = 0;
		const json_t *x;
		out[0] = '\0';
		json_array_foreach(v, i, x) {
			if (!json_is_string(x))
				return -1;
			n += (size_t)snprintf(out + n, n < len ? len - n : 0, "%s%s",
			    i ? "," : "", json_string_value(x));
		}
		if (n >= len)
			return -1;
	} else
		return -1;
	return 1;
}

/* --flag VALUE for each body key present. */
static int
flags(struct argb *a, const json_t *body, const char *const *map)
{
	char v[1024];
	int rc;

	for (; map[0] != NULL; map += 2) {
		if ((rc = field(body, map[0], v, sizeof(v))) < 0)
			return -1;
		if (rc == 1) {
			arg(a, map[1]);
			arg(a, v);
		}
	}
	return 0;
}

/* A query parameter, percent-decoded.  1 present, 0 absent. */
static int
query(const char *q, const char *name, char *out, size_t len)
{
	size_t nl = strlen(name);

	while (q != NULL && *q) {
		const char *amp = strchr(q, '&');
		size_t seg = amp ? (size_t)(amp - q) : strlen(q);
		if (seg > nl && strncmp(q, name, nl) == 0 && q[nl] == '=') {
			size_t o = 0;
			for (size_t i = nl + 1; i < seg && o + 1 < len; i++) {
				if (q[i] == '%' && i + 2 < seg) {
					char hx[3] = { q[i + 1], q[i + 2], 0 };
					out[o++] = (char)strtol(hx, NULL, 16);
					i += 2;
				} else
					out[o++] = q[i] == '+' ? ' ' : q[i];
			}
			out[o] = '\0';
			return 1;
		}
		q = amp ? amp + 1 : NULL;
	}
	return 0;
}

static int
qflags(struct argb *a, const char *q, const char *const *map)
{
	char v[256];

	for (; map[0] != NULL; map += 2)
		if (query(q, map[0], v, sizeof(v))) {
			arg(a, map[1]);
			arg(a, v);
		}
	return 0;
}

/* ---- the routes --------------------------------------------------------- */

typedef int (*route_fn)(struct adm_conn *c, char p[MAX_PARAMS][64],
    struct argb *a, const char **why);

#define R(name) static int name(struct adm_conn *c, char p[MAX_PARAMS][64], \
    struct argb *a, const char **why)

R(r_status) { arg(a, "status"); return 0; }
R(r_reload) { arg(a, "reload"); return 0; }
R(r_agents) { arg(a, "agents"); return 0; }
R(r_channels) { arg(a, "channels"); return 0; }
R(r_prices) { arg(a, "price"); arg(a, "list"); return 0; }
R(r_disputes) { arg(a, "disputes"); return 0; }
R(r_registry) { arg(a, "agent"); arg(a, "list"); return 0; }
R(r_tokens) { arg(a, "token"); arg(a, "list"); return 0; }
R(r_keys) { arg(a, "admin-key"); arg(a, "list"); return 0; }
R(r_metrics) { c->kind = ADM_METRICS; arg(a, "channels"); return 0; }

R(r_kick)
{
	char id[32];

	if (field(c->body, "agent_id", id, sizeof(id)) != 1) {
		*why = "body: agent_id is required";
		return -1;
	}
	arg(a, "kick");
	arg(a, id);
	return 0;
}

R(r_price)
{
	static const char *const map[] = { "input", "--input", "output",
		"--output", "cached_input", "--cached-input", "cache_write",
		"--cache-write", "image", "--image", "audio_second",
		"--audio-second", "audio_char", "--audio-char", "video_second",
		"--video-second", NULL };
	char model[160];

	if (field(c->body, "model", model, sizeof(model)) != 1) {
		*why = "body: model is required";
		return -1;
	}
	arg(a, "price");
	arg(a, "set");
	arg(a, model);
	if (flags(a, c->body, map) != 0) {
		*why = "body: prices are decimal strings or numbers";
		return -1;
	}
	return 0;
}

R(r_registry_add)
{
	static const char *const map[] = { "grade", "--grade", NULL };
	char name[80], key[80];

	if (field(c->body, "name", name, sizeof(name)) != 1 ||
	    field(c->body, "pubkey", key, sizeof(key)) != 1) {
		*why = "body: name and pubkey are required";
		return -1;
	}
	arg(a, "agent");
	arg(a, "add");
	arg(a, name);
	arg(a, key);
	return flags(a, c->body, map);
}

R(r_registry_enable) { arg(a, "agent"); arg(a, "enable"); arg(a, p[0]); return 0; }
R(r_registry_disable) { arg(a, "agent"); arg(a, "disable"); arg(a, p[0]); return 0; }

static const char *const token_map[] = { "name", "--name", "quota", "--quota",
	"models", "--models", "expires", "--expires", "policy", "--policy",
	"channels", "--channels", "min_grade", "--min-grade", "rpm", "--rpm",
	"tpm", "--tpm", NULL };

R(r_token_create)
{
	arg(a, "token");
	arg(a, "create");
	if (flags(a, c->body, token_map) != 0) {
		*why = "body: a field has the wrong type";
		return -1;
	}
	return 0;
}

R(r_token_get) { arg(a, "token"); arg(a, "get"); arg(a, p[0]); return 0; }
R(r_token_delete) { arg(a, "token"); arg(a, "delete"); arg(a, p[0]); return 0; }
R(r_token_disable) { arg(a, "token"); arg(a, "disable"); arg(a, p[0]); return 0; }
R(r_token_enable) { arg(a, "token"); arg(a, "enable"); arg(a, p[0]); return 0; }

R(r_token_update)
{
	arg(a, "token");
	arg(a, "update");
	arg(a, p[0]);
	if (flags(a, c->body, token_map) != 0) {
		*why = "body: a field has the wrong type";
		return -1;
	}
	return 0;
}

R(r_token_requests)
{
	static const char *const map[] = { "limit", "--limit", "before",
		"--before", "from", "--from", "to", "--to", NULL };

	arg(a, "token");
	arg(a, "requests");
	arg(a, p[0]);
	return qflags(a, c->query, map);
}

R(r_usage)
{
	static const char *const map[] = { "by", "--by", "from", "--from", "to",
		"--to", "bucket", "--bucket", NULL };

	arg(a, "usage");
	return qflags(a, c->query, map);
}

R(r_export)
{
	char after[32];

	c->kind = ADM_EXPORT;
	snprintf(c->export_agent, sizeof(c->export_agent), "%s", p[0]);
	c->export_after = 0;
	snprintf(after, sizeof(after), "%lld", (long long)c->export_after);
	arg(a, "ledger");
	arg(a, "export");
	arg(a, p[0]);
	arg(a, "--after");
	arg(a, after);
	return 0;
}

R(r_verify_all) { arg(a, "ledger"); arg(a, "verify"); return 0; }
R(r_verify) { arg(a, "ledger"); arg(a, "verify"); arg(a, p[0]); return 0; }

R(r_resolve)
{
	char outcome[16], rsn[200];

	if (field(c->body, "outcome", outcome, sizeof(outcome)) != 1) {
		*why = "body: outcome (accept or reject) is required";
		return -1;
	}
	arg(a, "dispute");
	arg(a, "resolve");
	arg(a, p[0]);
	arg(a, outcome);
	if (field(c->body, "reason", rsn, sizeof(rsn)) == 1) {
		arg(a, "--reason");
		arg(a, rsn);
	}
	return 0;
}

R(r_key_create)
{
	static const char *const map[] = { "name", "--name", NULL };

	arg(a, "admin-key");
	arg(a, "create");
	return flags(a, c->body, map);
}

R(r_key_revoke) { arg(a, "admin-key"); arg(a, "revoke"); arg(a, p[0]); return 0; }

struct route {
	const char *method;
	const char *pattern;		/* ":x" matches one segment */
	route_fn fn;
	unsigned ok_status;		/* 200, or 201 for what it creates */
};

static const struct route routes[] = {
	{ "GET",	"/admin/status",			r_status, 200 },
	{ "POST",	"/admin/reload",			r_reload, 200 },
	{ "GET",	"/admin/agents",			r_agents, 200 },
	{ "POST",	"/admin/kick",				r_kick, 200 },
	{ "POST",	"/admin/price",				r_price, 201 },
	{ "GET",	"/admin/prices",			r_prices, 200 },
	{ "GET",	"/admin/channels",			r_channels, 200 },
	{ "GET",	"/admin/registry",			r_registry, 200 },
	{ "POST",	"/admin/registry",			r_registry_add, 201 },
	{ "POST",	"/admin/registry/:id/enable",		r_registry_enable, 200 },
	{ "POST",	"/admin/registry/:id/disable",		r_registry_disable, 200 },
	{ "GET",	"/admin/tokens",			r_tokens, 200 },
	{ "POST",	"/admin/tokens",			r_token_create, 201 },
	{ "GET",	"/admin/tokens/:id",			r_token_get, 200 },
	{ "PATCH",	"/admin/tokens/:id",			r_token_update, 200 },
	{ "DELETE",	"/admin/tokens/:id",			r_token_delete, 200 },
	{ "POST",	"/admin/tokens/:id/disable",		r_token_disable, 200 },
	{ "POST",	"/admin/tokens/:id/enable",		r_token_enable, 200 },
	{ "GET",	"/admin/tokens/:id/requests",		r_token_requests, 200 },
	{ "GET",	"/admin/usage",				r_usage, 200 },
	{ "GET",	"/admin/ledger/verify",			r_verify_all, 200 },
	{ "GET",	"/admin/ledger/:agent/export",		r_export, 200 },
	{ "GET",	"/admin/ledger/:agent/verify",		r_verify, 200 },
	{ "GET",	"/admin/disputes",			r_disputes, 200 },
	{ "POST",	"/admin/disputes/:id/resolve",		r_resolve, 200 },
	{ "GET",	"/admin/keys",				r_keys, 200 },
	{ "POST",	"/admin/keys",				r_key_create, 201 },
	{ "DELETE",	"/admin/keys/:id",			r_key_revoke, 200 },
	{ "GET",	"/metrics",				r_metrics, 200 },
};

/* 1 when path matches pattern; the ":x" segments copied into p. */
static int
match(const char *pattern, const char *path, char p[MAX_PARAMS][64])
{
	int np = 0;

	while (*pattern && *path) {
		if (*pattern == ':') {
			const char *e = strchr(path, '/');
			size_t n = e ? (size_t)(e - path) : strlen(path);
			if (n == 0 || n >= 64 || np == MAX_PARAMS)
				return 0;
			memcpy(p[np], path, n);
			p[np++][n] = '\0';
			path += n;
			pattern = strchr(pattern, '/');
			if (pattern == NULL)
				pattern = "";
			continue;
		}
		if (*pattern != *path)
			return 0;
		pattern++;
		path++;
	}
	return *pattern == '\0' && *path == '\0';
}

static unsigned
status_of(struct adm_conn *c)
{
	for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
		char p[MAX_PARAMS][64];
		if (strcmp(routes[i].method, c->method) == 0 &&
		    match(routes[i].pattern, c->path, p))
			return routes[i].ok_status;
	}
	return 200;
}

void
adm_route(struct adm_conn *c)
{
	static struct argb a;
	const char *why = NULL;
	int path_known = 0;
	size_t plen = strlen(c->path);

	if (plen > 1 && c->path[plen - 1] == '/')
		c->path[plen - 1] = '\0';
	/* No key: 401 whatever the path, and the same 401 as a wrong key. */
	if (c->keyhash[0] == '\0') {
		adm_send(c, 401, "application/json", "{\"error\":\"unauthorized\"}",
		    24, 1);
		return;
	}
	for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
		char p[MAX_PARAMS][64];
		if (!match(routes[i].pattern, c->path, p))
			continue;
		path_known = 1;
		if (strcmp(routes[i].method, c->method) != 0)
			continue;
		memset(&a, 0, sizeof(a));
		if (routes[i].fn(c, p, &a, &why) != 0 || a.err) {
			adm_send_error(c, 400, why ? why : "bad request");
			return;
		}
		if (adm_ask(c, a.buf, a.len) != 0)
			adm_send_error(c, 503, "the master connection is busy");
		return;
	}
	if (path_known)
		adm_send_error(c, 405, "method not allowed");
	else
		adm_send_error(c, 404, "no such route");
}

/* An error answer's status: the master's when it gave one, else from the
 * words of the command's error. */
static unsigned
error_status(json_t *o)
{
	const char *e = json_string_value(json_object_get(o, "error"));

	if (json_is_integer(json_object_get(o, "status")))
		return (unsigned)json_integer_value(json_object_get(o, "status"));
	if (e == NULL)
		return 400;
	if (strncmp(e, "no ", 3) == 0 || strstr(e, "not found") ||
	    strstr(e, "no such"))
		return 404;
	if (strstr(e, "is not running") || strstr(e, "exited"))
		return 503;
	return 400;
}

static void
export_next(struct adm_conn *c)
{
	struct argb *a = calloc(1, sizeof(*a));
	char after[32];

	if (a == NULL) {
		c->close_when_sent = 1;
		return;
	}
	snprintf(after, sizeof(after), "%lld", (long long)c->export_after);
	arg(a, "ledger");
	arg(a, "export");
	arg(a, c->export_agent);
	arg(a, "--after");
	arg(a, after);
	if (adm_ask(c, a->buf, a->len) != 0)
		c->close_when_sent = 1;
	free(a);
}

void
adm_answer(struct adm_conn *c, const char *json, size_t len)
{
	json_t *o;
	unsigned st;

	if (json == NULL) {		/* the export's socket drained */
		export_next(c);
		return;
	}
	o = json_loadb(json, strnlen(json, len), 0, NULL);
	if (o == NULL || !json_is_object(o)) {
		json_decref(o);
		if (c->export_started) {
			c->close_when_sent = 1;
			return;
		}
		adm_send_error(c, 502, "malformed answer from the hub");
		return;
	}
	if (!json_is_true(json_object_get(o, "ok"))) {
		st = error_status(o);
		if (c->export_started)
			c->close_when_sent = 1;	/* cut: the CSV ends early */
		else if (st == 401)
			adm_send(c, 401, "application/json",
			    "{\"error\":\"unauthorized\"}", 24, 1);
		else
			adm_send(c, st, "application/json", json,
			    strnlen(json, len), 1);
		json_decref(o);
		return;
	}
	switch (c->kind) {
	case ADM_METRICS: {
		struct adm_buf b = { 0 };
		adm_metrics_render(&adm_env()->sb, json_object_get(o, "channels"), &b);
		adm_send(c, 200, "text/plain; version=0.0.4; charset=utf-8",
		    b.p ? b.p : "", b.len, 1);
		free(b.p);
		break;
	}
	case ADM_EXPORT: {
		const char *h = json_string_value(json_object_get(o, "header"));
		const char *csv = json_string_value(json_object_get(o, "csv"));
		if (!c->export_started) {
			adm_send(c, 200, "text/csv; charset=utf-8", NULL,
			    (size_t)-1, 0);
			if (h != NULL)
				adm_buf_add(&c->out, h, strlen(h));
			c->export_started = 1;
		}
		if (csv != NULL)
			adm_buf_add(&c->out, csv, strlen(csv));
		c->export_after = json_integer_value(json_object_get(o, "last"));
		if (!json_is_true(json_object_get(o, "more")))
			c->close_when_sent = 1;
		break;
	}
	default:
		adm_send(c, status_of(c), "application/json", json,
		    strnlen(json, len), 1);
	}
	json_decref(o);
}
