/*
 * agent/ag_ui: the local web page's server (see ag_ui.h).  Runs on the
 * tunnel's lws loop; the log ring is the one piece other threads touch
 * (under its mutex).
 */
#include "agent/ag_ui.h"
#include "agent/ag_conf.h"
#include "agent/ag_ledger_read.h"

#include <sys/stat.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libwebsockets.h>
#include <sodium.h>

#include "lib/log.h"
#include "agent/platform.h"

#define RING_LINES	200
#define RING_LINE_MAX	512

extern const char ag_ui_page[];		/* agent/ag_ui_page.c */

struct ag_ui {
	const struct ag_conf *cf;
	struct lws_vhost *vh;
	char secret[AG_UI_SECRET_LEN + 1];
	struct ag_ledger_rd *rd;
	json_t *(*status)(void *);
	void *arg;
	char host[AG_HOST_MAX];
};

static struct ag_ui *the_ui;		/* one page per process */

static struct {
	pthread_mutex_t mu;
	char line[RING_LINES][RING_LINE_MAX];
	unsigned next, n;
} ring = { PTHREAD_MUTEX_INITIALIZER, { { 0 } }, 0, 0 };

void
ag_ui_log_line(const char *line, size_t len)
{
	if (len > 0 && line[len - 1] == '\n')
		len--;
	if (len >= RING_LINE_MAX)
		len = RING_LINE_MAX - 1;
	pthread_mutex_lock(&ring.mu);
	memcpy(ring.line[ring.next], line, len);
	ring.line[ring.next][len] = '\0';
	ring.next = (ring.next + 1) % RING_LINES;
	if (ring.n < RING_LINES)
		ring.n++;
	pthread_mutex_unlock(&ring.mu);
}

static json_t *
ring_json(void)
{
	json_t *a = json_array();

	pthread_mutex_lock(&ring.mu);
	for (unsigned i = 0; i < ring.n; i++)
		json_array_append_new(a, json_string(ring.line[(ring.next +
		    RING_LINES - ring.n + i) % RING_LINES]));
	pthread_mutex_unlock(&ring.mu);
	return a;
}

int
ag_ui_split(const char *hp, char *host, size_t hostlen, int *port)
{
	const char *colon, *h = hp;
	size_t hl;
	char *end;
	long p;

	if (hp[0] == '[') {
		const char *rb = strchr(hp, ']');
		if (rb == NULL || rb[1] != ':')
			return -1;
		h = hp + 1;
		hl = (size_t)(rb - h);
		colon = rb + 1;
	} else {
		if ((colon = strrchr(hp, ':')) == NULL)
			return -1;
		hl = (size_t)(colon - hp);
	}
	if (hl == 0 || hl >= hostlen)
		return -1;
	errno = 0;
	p = strtol(colon + 1, &end, 10);
	if (errno != 0 || *end != '\0' || end == colon + 1 || p < 1 ||
	    p > 65535)
		return -1;
	memcpy(host, h, hl);
	host[hl] = '\0';
	*port = (int)p;
	return 0;
}

int
ag_ui_loopback(const char *hp)
{
	char host[AG_HOST_MAX];
	int port;

	if (ag_ui_split(hp, host, sizeof(host), &port) != 0)
		return 0;
	return strncmp(host, "127.", 4) == 0 || strcmp(host, "::1") == 0 ||
	    strcmp(host, "localhost") == 0;
}

int
ag_ui_secret(const char *state_dir, int renew, char out[AG_UI_SECRET_LEN + 1],
    char *err, size_t errlen)
{
	char path[AG_PATH_MAX + 32], tmp[AG_PATH_MAX + 40];
	unsigned char raw[AG_UI_SECRET_LEN / 2];
	FILE *fp;
	int fd;

	snprintf(path, sizeof(path), "%s/%s", state_dir, AG_UI_SECRET_FILE);
	if (!renew && (fp = fopen(path, "r")) != NULL) {
		size_t n = fread(out, 1, AG_UI_SECRET_LEN, fp);
		fclose(fp);
		out[n] = '\0';
		if (n == AG_UI_SECRET_LEN)
			return 0;
		log_warn("%s is malformed: making a new secret", path);
	}
	(void)mkdir(state_dir, 0700);
	randombytes_buf(raw, sizeof(raw));
	sodium_bin2hex(out, AG_UI_SECRET_LEN + 1, raw, sizeof(raw));
	snprintf(tmp, sizeof(tmp), "%s.new", path);
	if ((fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0600)) < 0 ||
	    write(fd, out, AG_UI_SECRET_LEN) != AG_UI_SECRET_LEN ||
	    fsync(fd) != 0 || close(fd) != 0 || rename(tmp, path) != 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		if (fd >= 0)
			(void)close(fd);
		return -1;
	}
	printf("agentd: the local page's secret (kept in %s): %s\n", path, out);
	fflush(stdout);
	return 0;
}

/* Send a whole answer: status, type, body. */
static int
answer(struct lws *wsi, unsigned status, const char *type, const char *body,
    size_t n)
{
	unsigned char hb[LWS_PRE + 1024], *start = hb + LWS_PRE, *p = start,
	    *end = hb + sizeof(hb) - 1;
	unsigned char *buf;
	int r;

	if (lws_add_http_common_headers(wsi, status, type, (lws_filepos_t)n,
	    &p, end) != 0 ||
	    lws_add_http_header_by_name(wsi, (const unsigned char *)
	    "cache-control:", (const unsigned char *)"no-store", 8, &p,
	    end) != 0 ||
	    lws_add_http_header_by_name(wsi, (const unsigned char *)
	    "content-security-policy:", (const unsigned char *)
	    "default-src 'self' 'unsafe-inline'", 34, &p, end) != 0 ||
	    lws_finalize_write_http_header(wsi, start, &p, end) != 0)
		return -1;
	if ((buf = malloc(LWS_PRE + n + 1)) == NULL)
		return -1;
	memcpy(buf + LWS_PRE, body, n);
	r = lws_write(wsi, buf + LWS_PRE, n, LWS_WRITE_HTTP_FINAL);
	free(buf);
	if (r != (int)n)
		return -1;
	return lws_http_transaction_completed(wsi) ? -1 : 0;
}

static int
answer_json(struct lws *wsi, unsigned status, json_t *o)
{
	char *s = o != NULL ? json_dumps(o, JSON_COMPACT) : NULL;
	int r;

	json_decref(o);
	if (s == NULL)
		return answer(wsi, 500, "application/json",
		    "{\"error\":\"internal\"}", 20);
	r = answer(wsi, status, "application/json", s, strlen(s));
	free(s);
	return r;
}

static int
authorized(struct ag_ui *u, struct lws *wsi)
{
	char h[128];
	int n = lws_hdr_copy(wsi, h, sizeof(h), WSI_TOKEN_HTTP_AUTHORIZATION);

	return n == 7 + AG_UI_SECRET_LEN && strncmp(h, "Bearer ", 7) == 0 &&
	    sodium_memcmp(h + 7, u->secret, AG_UI_SECRET_LEN) == 0;
}

static json_t *
ledger_json(struct ag_ui *u, const char *what)
{
	char err[256];

	if (u->rd == NULL &&
	    (u->rd = ag_ledger_rd_open(u->cf->state_dir, err,
	    sizeof(err))) == NULL)
		return json_pack("{s:s}", "error", err);
	if (strcmp(what, "requests") == 0)
		return ag_ledger_rd_recent(u->rd, 50);
	if (strcmp(what, "earnings") == 0)
		return ag_ledger_rd_earnings(u->rd, 30);
	return ag_ledger_rd_disputes(u->rd);
}

static int
route(struct ag_ui *u, struct lws *wsi, const char *uri)
{
	json_t *o;

	if (strcmp(uri, "/") == 0 || strcmp(uri, "/index.html") == 0)
		return answer(wsi, 200, "text/html; charset=utf-8", ag_ui_page,
		    strlen(ag_ui_page));
	if (strncmp(uri, "/api/", 5) != 0)
		return answer(wsi, 404, "text/plain", "not found\n", 10);
	/* The file may have changed (agentd ui-secret): read it each time. */
	{
		char err[256], cur[AG_UI_SECRET_LEN + 1];

		if (ag_ui_secret(u->cf->state_dir, 0, cur, err,
		    sizeof(err)) == 0)
			memcpy(u->secret, cur, sizeof(u->secret));
	}
	if (!authorized(u, wsi))
		return answer_json(wsi, 401, json_pack("{s:s}", "error",
		    "the page's secret is required (Authorization: Bearer; "
		    "see ui.secret in the state directory)"));
	uri += 5;
	if (strcmp(uri, "status") == 0)
		o = u->status(u->arg);
	else if (strcmp(uri, "log") == 0)
		o = ring_json();
	else if (strcmp(uri, "requests") == 0 || strcmp(uri, "earnings") == 0 ||
	    strcmp(uri, "disputes") == 0)
		o = ledger_json(u, uri);
	else
		return answer_json(wsi, 404, json_pack("{s:s}", "error",
		    "no such API"));
	if (o == NULL)
		o = json_pack("{s:s}", "error", u->rd != NULL ?
		    ag_ledger_rd_error(u->rd) : "unavailable");
	return answer_json(wsi, 200, o);
}

static int
cb_ui(struct lws *wsi, enum lws_callback_reasons reason, void *user,
    void *in, size_t len)
{
	if (reason == LWS_CALLBACK_HTTP && the_ui != NULL) {
		if (lws_hdr_total_length(wsi, WSI_TOKEN_GET_URI) <= 0)
			return answer(wsi, 405, "text/plain", "GET only\n", 9);
		return route(the_ui, wsi, (const char *)in);
	}
	return lws_callback_http_dummy(wsi, reason, user, in, len);
}

static const struct lws_protocols ui_protocols[] = {
	{ "http", cb_ui, 0, 4096, 0, NULL, 0 },
	{ NULL, NULL, 0, 0, 0, NULL, 0 },
};

struct ag_ui *
ag_ui_start(struct lws_context *ctx, const struct ag_conf *cf,
    json_t *(*status)(void *), void *arg, char *err, size_t errlen)
{
	struct lws_context_creation_info info;
	struct ag_ui *u;
	int port;

	if (strcmp(cf->ui_listen, "off") == 0)
		return NULL;
	if ((u = calloc(1, sizeof(*u))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	u->cf = cf;
	u->status = status;
	u->arg = arg;
	if (ag_ui_split(cf->ui_listen, u->host, sizeof(u->host), &port) != 0 ||
	    ag_ui_secret(cf->state_dir, 0, u->secret, err, errlen) != 0) {
		if (err[0] == '\0')
			snprintf(err, errlen, "[ui] listen = %s", cf->ui_listen);
		free(u);
		return NULL;
	}
	memset(&info, 0, sizeof(info));
	info.port = port;
	info.iface = u->host;
	info.protocols = ui_protocols;
	info.vhost_name = "agentd-ui";
	info.options = 0;
	the_ui = u;
	if ((u->vh = lws_create_vhost(ctx, &info)) == NULL) {
		snprintf(err, errlen, "cannot listen on %s for the local page",
		    cf->ui_listen);
		the_ui = NULL;
		sodium_memzero(u->secret, sizeof(u->secret));
		free(u);
		return NULL;
	}
	log_info("local page on http://%s/", cf->ui_listen);
	return u;
}

void
ag_ui_free(struct ag_ui *u)
{
	if (u == NULL)
		return;
	if (the_ui == u)
		the_ui = NULL;
	ag_ledger_rd_close(u->rd);
	sodium_memzero(u->secret, sizeof(u->secret));
	free(u);
}

int
ag_ui_cmd_secret(int argc, char **argv)
{
	static struct ag_conf cf;
	struct plat_paths pp;
	const char *conf_path;
	char err[1024], secret[AG_UI_SECRET_LEN + 1];
	int ch;

	plat_default_paths(&pp);
	conf_path = pp.config;
	optind = 1;
	while ((ch = getopt(argc, argv, "c:")) != -1) {
		if (ch != 'c') {
			fprintf(stderr, "usage: agentd ui-secret [-c config]\n");
			return 2;
		}
		conf_path = optarg;
	}
	log_init("agentd", "ui", LOG_LVL_WARN);
	if (ag_conf_load(conf_path, &cf, err, sizeof(err)) != 0) {
		fprintf(stderr, "agentd: %s\n", err);
		return 1;
	}
	err[0] = '\0';
	if (ag_ui_secret(cf.state_dir, 1, secret, err, sizeof(err)) != 0) {
		fprintf(stderr, "agentd: %s\n", err);
		return 1;
	}
	sodium_memzero(secret, sizeof(secret));
	sodium_memzero(&cf, sizeof(cf));
	return 0;
}
