/*
 * tests/unit/test_upstream: agentd's upstream engine (agent/ag_upstream)
 * and the adapter table (agent/ag_prov, agent/prov_openai): refusals
 * before any byte leaves (provider, method, path, duplicate key), the
 * pattern helpers, transport errors as END ok=0, cancel (no more events,
 * the connection really closed), freeing with transfers in flight, and —
 * when node and the OpenAI mock (tests/mock/openai_mock.mjs) are there —
 * the full path: HEAD/DATA/END with exact content, auth, HTTP status
 * pass-through, mid-stream failure, cancel seen by the provider, and
 * back-pressure.  The engine's wake callback is what the tests wait on,
 * so a lost wake-up shows as a time-out.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <sys/socket.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include "agent/ag_conf.h"
#include "agent/ag_prov.h"
#include "agent/ag_upstream.h"
#include "lib/log.h"

#define PROVIDER_KEY	"sk-test-provider-key"
#define MOCK_JS		"tests/mock/openai_mock.mjs"
#define MOCK_CERTS	"tests/mock/certs.sh"

static struct ag_conf cf;	/* large: not on the stack */
static struct ag_channel ch;
static char err[256];

/* The OpenAI mock, when it could be started. */
static struct {
	int up;
	pid_t pid;
	int port;
	char dir[64];
	char log[128];
	char ca[128];
} mock;

/* ------------------------------------------------------------ wake */

static pthread_mutex_t wake_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t wake_cv;
static int woken;
static unsigned long nwakes;

static void
test_wake(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&wake_mu);
	woken = 1;
	nwakes++;
	pthread_cond_signal(&wake_cv);
	pthread_mutex_unlock(&wake_mu);
}

static int64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * The next event within ms, waiting only on the engine's wake callback
 * (no polling): 1, or 0 on time-out.
 */
static int
next_ev(struct ag_upstream *u, struct ag_up_event *ev, int ms)
{
	struct timespec dl;
	int got;

	clock_gettime(CLOCK_MONOTONIC, &dl);
	dl.tv_sec += ms / 1000;
	dl.tv_nsec += (long)(ms % 1000) * 1000000;
	if (dl.tv_nsec >= 1000000000) {
		dl.tv_sec++;
		dl.tv_nsec -= 1000000000;
	}
	for (;;) {
		if (ag_up_next_event(u, ev))
			return 1;
		pthread_mutex_lock(&wake_mu);
		while (!woken)
			if (pthread_cond_timedwait(&wake_cv, &wake_mu, &dl) ==
			    ETIMEDOUT)
				break;
		got = woken;
		woken = 0;
		pthread_mutex_unlock(&wake_mu);
		if (!got)
			return 0;
	}
}

/* No event at all for ms. */
static void
expect_quiet(struct ag_upstream *u, int ms)
{
	struct ag_up_event ev;

	if (next_ev(u, &ev, ms)) {
		fail_msg("unexpected event type %d for key %llu", ev.type,
		    (unsigned long long)ev.key);
	}
}

/* ------------------------------------------------------------ helpers */

struct resp {
	int heads;
	long status;
	char ct[128];
	unsigned char *body;
	size_t len;
	int ndata;
	int64_t t_first, t_end;
	int end;
	long end_status;
	int ok;
	char error[160];
};

static void
resp_free(struct resp *r)
{
	free(r->body);
	memset(r, 0, sizeof(*r));
}

static void
resp_add(struct resp *r, const struct ag_up_event *ev, uint64_t key)
{
	if (ev->key != key)
		fail_msg("event for key %llu, expected %llu",
		    (unsigned long long)ev->key, (unsigned long long)key);
	switch (ev->type) {
	case AG_UP_HEAD:
		assert_int_equal(r->heads, 0);
		assert_int_equal(r->ndata, 0);
		r->heads++;
		r->status = ev->status;
		snprintf(r->ct, sizeof(r->ct), "%s", ev->content_type);
		break;
	case AG_UP_DATA:
		assert_int_equal(r->heads, 1);
		assert_true(ev->len > 0);
		r->body = realloc(r->body, r->len + ev->len + 1);
		assert_non_null(r->body);
		memcpy(r->body + r->len, ev->data, ev->len);
		r->len += ev->len;
		r->body[r->len] = '\0';
		if (r->ndata++ == 0)
			r->t_first = now_ms();
		break;
	case AG_UP_END:
		r->end = 1;
		r->end_status = ev->status;
		r->ok = ev->ok;
		snprintf(r->error, sizeof(r->error), "%s", ev->error);
		r->t_end = now_ms();
		break;
	}
}

/* Collect key's events until its END (within ms); consume DATA at once
 * when consume is set. */
static void
collect(struct ag_upstream *u, uint64_t key, struct resp *r, int ms,
    int consume)
{
	int64_t dl = now_ms() + ms;
	struct ag_up_event ev;

	while (!r->end) {
		int64_t left = dl - now_ms();

		if (left <= 0 || !next_ev(u, &ev, (int)left))
			fail_msg("no END for key %llu within %d ms",
			    (unsigned long long)key, ms);
		resp_add(r, &ev, key);
		if (ev.type == AG_UP_DATA && consume)
			ag_up_consumed(u, key, ev.len);
		ag_up_event_free(&ev);
	}
}

/* ------------------------------------------------------------ driver */

/*
 * The engine's driver, as agentd's lws thread is: a thread of its own
 * here, so the test thread plays the lws side.  It polls the engine's
 * epoll set and a kick pipe, keeps the one timer the engine asks for,
 * and calls ag_up_run().
 */
static struct {
	pthread_t thr;
	struct ag_upstream *u;
	int kick[2];
	int64_t timer_at;		/* driver thread only; -1 none */
	volatile sig_atomic_t stop;
	_Atomic unsigned long runs;	/* written by the driver thread */
} drv;

static void
drv_kick(void *arg)
{
	char c = 1;

	(void)arg;
	if (write(drv.kick[1], &c, 1) < 0 && errno != EAGAIN)
		fail_msg("kick: %s", strerror(errno));
}

static void
drv_timer(void *arg, long ms)
{
	(void)arg;
	assert_true(ms >= 0 && ms <= 1000);	/* the engine's promise */
	drv.timer_at = now_ms() + ms;
}

static void *
drv_main(void *arg)
{
	struct pollfd pf[2];
	char buf[64];
	int64_t now;
	int to;

	(void)arg;
	while (!drv.stop) {
		now = now_ms();
		to = drv.timer_at < 0 ? 1000 : drv.timer_at <= now ? 0 :
		    (int)(drv.timer_at - now);
		pf[0].fd = ag_up_fd(drv.u);
		pf[0].events = POLLIN;
		pf[1].fd = drv.kick[0];
		pf[1].events = POLLIN;
		if (poll(pf, 2, to) < 0 && errno != EINTR)
			break;
		if (pf[1].revents & POLLIN)
			while (read(drv.kick[0], buf, sizeof(buf)) > 0)
				;
		if (drv.timer_at >= 0 && now_ms() >= drv.timer_at)
			drv.timer_at = -1;
		ag_up_run(drv.u, (pf[0].revents & POLLIN) != 0);
		drv.runs++;
	}
	return NULL;
}

static struct ag_upstream *
up_new(const char *connect_to, const char *ca)
{
	static const struct ag_up_loop loop = { test_wake, drv_kick,
	    drv_timer, NULL };
	struct ag_upstream *u;

	snprintf(cf.connect_to, sizeof(cf.connect_to), "%s", connect_to);
	snprintf(cf.ca_file, sizeof(cf.ca_file), "%s", ca);
	err[0] = '\0';
	u = ag_up_new(&cf, &loop, err, sizeof(err));
	if (u == NULL)
		fail_msg("ag_up_new: %s", err);
	assert_int_equal(pipe2(drv.kick, O_NONBLOCK | O_CLOEXEC), 0);
	drv.u = u;
	drv.stop = 0;
	drv.timer_at = -1;
	assert_int_equal(pthread_create(&drv.thr, NULL, drv_main, NULL), 0);
	return u;
}

/* Stop the driver, then free the engine (as agentd does). */
static void
up_free(struct ag_upstream *u)
{
	assert_ptr_equal(u, drv.u);
	drv.stop = 1;
	drv_kick(NULL);
	pthread_join(drv.thr, NULL);
	close(drv.kick[0]);
	close(drv.kick[1]);
	drv.u = NULL;
	ag_up_free(u);
}

static int
start(struct ag_upstream *u, uint64_t key, const char *method,
    const char *path, const char *body)
{
	err[0] = '\0';
	return ag_up_start(u, key, &ch, method, path,
	    body != NULL ? "application/json" : NULL, body,
	    body != NULL ? strlen(body) : 0, err, sizeof(err));
}

/* A TCP listener on 127.0.0.1 that never answers; *port gets its port. */
static int
silent_listener(int *port)
{
	struct sockaddr_in sa;
	socklen_t sl = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	assert_true(fd >= 0);
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(fd, 16), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
	*port = ntohs(sa.sin_port);
	return fd;
}

/* Accept one connection within ms, or -1. */
static int
accept_within(int lfd, int ms)
{
	struct pollfd p = { .fd = lfd, .events = POLLIN };

	if (poll(&p, 1, ms) != 1)
		return -1;
	return accept(lfd, NULL, NULL);
}

/* Does fd see end-of-stream (or a reset) within ms?  Data is skipped. */
static int
closed_within(int fd, int ms)
{
	int64_t dl = now_ms() + ms;
	char buf[4096];

	for (;;) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		int64_t left = dl - now_ms();
		ssize_t n;

		if (left <= 0 || poll(&p, 1, (int)left) != 1)
			return 0;
		n = read(fd, buf, sizeof(buf));
		if (n == 0 || (n < 0 && errno == ECONNRESET))
			return 1;
		if (n < 0 && errno != EINTR && errno != EAGAIN)
			return 1;
	}
}

/* ------------------------------------------------------------ mock */

static int
mock_start(void)
{
	char cmd[256], line[64], cert[128], key[128];
	int pfd[2], efd, port;
	size_t got = 0;
	int64_t dl;

	if (access(MOCK_JS, R_OK) != 0 || access(MOCK_CERTS, X_OK) != 0)
		return -1;
	snprintf(mock.dir, sizeof(mock.dir), "/tmp/swb-upstream.XXXXXX");
	if (mkdtemp(mock.dir) == NULL)
		return -1;
	snprintf(cmd, sizeof(cmd), "%s %s/certs >%s/certs.out 2>&1",
	    MOCK_CERTS, mock.dir, mock.dir);
	if (system(cmd) != 0)
		return -1;
	snprintf(mock.ca, sizeof(mock.ca), "%s/certs/ca.pem", mock.dir);
	snprintf(mock.log, sizeof(mock.log), "%s/requests.jsonl", mock.dir);
	snprintf(cert, sizeof(cert), "%s/certs/server.pem", mock.dir);
	snprintf(key, sizeof(key), "%s/certs/server.key", mock.dir);
	if (pipe(pfd) != 0)
		return -1;
	snprintf(cmd, sizeof(cmd), "%s/mock.err", mock.dir);
	if ((efd = open(cmd, O_WRONLY | O_CREAT | O_TRUNC, 0600)) < 0)
		return -1;
	if ((mock.pid = fork()) < 0)
		return -1;
	if (mock.pid == 0) {
		dup2(pfd[1], 1);
		dup2(efd, 2);
		close(pfd[0]);
		close(pfd[1]);
		close(efd);
		execlp("node", "node", MOCK_JS, "--cert", cert, "--key", key,
		    "--port", "0", "--log", mock.log, (char *)NULL);
		_exit(127);
	}
	close(pfd[1]);
	close(efd);
	dl = now_ms() + 15000;
	while (got + 1 < sizeof(line) && memchr(line, '\n', got) == NULL) {
		struct pollfd p = { .fd = pfd[0], .events = POLLIN };
		int64_t left = dl - now_ms();
		ssize_t n;

		if (left <= 0 || poll(&p, 1, (int)left) != 1)
			break;
		if ((n = read(pfd[0], line + got, sizeof(line) - 1 - got)) <= 0)
			break;
		got += (size_t)n;
	}
	close(pfd[0]);
	line[got] = '\0';
	if (sscanf(line, "listening %d", &port) != 1 || port <= 0) {
		kill(mock.pid, SIGTERM);
		waitpid(mock.pid, NULL, 0);
		mock.pid = 0;
		return -1;
	}
	mock.port = port;
	mock.up = 1;
	return 0;
}

static void
mock_stop(void)
{
	char cmd[128];

	if (mock.pid > 0) {
		kill(mock.pid, SIGTERM);
		waitpid(mock.pid, NULL, 0);
		mock.pid = 0;
	}
	if (mock.dir[0] != '\0') {
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", mock.dir);
		(void)!system(cmd);
	}
}

static struct ag_upstream *
mock_up(void)
{
	char ct[64];

	snprintf(ct, sizeof(ct), "api.openai.com:443:127.0.0.1:%d", mock.port);
	return up_new(ct, mock.ca);
}

/* The mock's request-log line that contains needle (and needle2), or
 * NULL; malloc'd. */
static char *
mock_log_find(const char *needle, const char *needle2, int ms)
{
	int64_t dl = now_ms() + ms;

	for (;;) {
		FILE *f = fopen(mock.log, "r");
		char *line = NULL;
		size_t cap = 0;

		if (f != NULL) {
			while (getline(&line, &cap, f) > 0)
				if (strstr(line, needle) != NULL &&
				    (needle2 == NULL ||
				    strstr(line, needle2) != NULL)) {
					fclose(f);
					return line;
				}
			fclose(f);
			free(line);
		}
		if (now_ms() >= dl) {
			/* Show what the mock did see. */
			char cmd[256];

			fprintf(stderr, "mock log has no line with %s %s:\n",
			    needle, needle2 != NULL ? needle2 : "");
			snprintf(cmd, sizeof(cmd), "tail -c 3000 '%s' >&2",
			    mock.log);
			(void)!system(cmd);
			return NULL;
		}
		usleep(20000);
	}
}

/* ------------------------------------------------------------ set-up */

static int
group_setup(void **state)
{
	(void)state;
	log_init("test", "upstream", LOG_LVL_ERROR);
	signal(SIGPIPE, SIG_IGN);
	pthread_cond_init(&wake_cv, NULL);
	{
		/* next_ev() waits on CLOCK_MONOTONIC. */
		pthread_condattr_t a;

		pthread_condattr_init(&a);
		pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
		pthread_cond_destroy(&wake_cv);
		pthread_cond_init(&wake_cv, &a);
		pthread_condattr_destroy(&a);
	}
	memset(&cf, 0, sizeof(cf));
	cf.id = 1;
	memset(&ch, 0, sizeof(ch));
	snprintf(ch.name, sizeof(ch.name), "oa");
	ch.provider = AG_PROV_OPENAI;
	ch.nmodels = 1;
	snprintf(ch.models[0], sizeof(ch.models[0]), "gpt-4o-mini");
	snprintf(ch.key, sizeof(ch.key), "%s", PROVIDER_KEY);
	if (SWB_TEST_BUILD && mock_start() != 0) {
		mock.up = 0;
		fprintf(stderr, "note: OpenAI mock not available; its cases "
		    "are skipped\n");
	}
	return 0;
}

static int
group_teardown(void **state)
{
	(void)state;
	mock_stop();
	return 0;
}

static int
each_setup(void **state)
{
	(void)state;
	snprintf(ch.key, sizeof(ch.key), "%s", PROVIDER_KEY);
	ch.provider = AG_PROV_OPENAI;
	pthread_mutex_lock(&wake_mu);
	woken = 0;
	pthread_mutex_unlock(&wake_mu);
	return 0;
}

/* ------------------------------------------------------------ tests */

static void
test_patterns(void **state)
{
	const char *p;

	(void)state;
	assert_true(ag_prov_host_match("api.openai.com", "api.openai.com"));
	assert_true(ag_prov_host_match("api.openai.com", "API.OpenAI.com"));
	assert_false(ag_prov_host_match("api.openai.com", "api.openai.com."));
	assert_false(ag_prov_host_match("api.openai.com", "xapi.openai.com"));
	assert_false(ag_prov_host_match("api.openai.com",
	    "api.openai.com.evil.example"));
	assert_true(ag_prov_host_match("*.openai.azure.com",
	    "my-res.openai.azure.com"));
	assert_false(ag_prov_host_match("*.openai.azure.com",
	    "a.b.openai.azure.com"));
	assert_false(ag_prov_host_match("*.openai.azure.com",
	    ".openai.azure.com"));
	assert_true(ag_prov_host_match("bedrock-runtime.*.amazonaws.com",
	    "bedrock-runtime.us-east-1.amazonaws.com"));
	assert_false(ag_prov_host_match("bedrock-runtime.*.amazonaws.com",
	    "bedrock-runtime.evil.com.amazonaws.com"));

	p = "/v1beta/models/gemini-2.0-flash:streamGenerateContent";
	assert_true(ag_prov_path_match("/v1beta/models/*:streamGenerateContent",
	    p, strlen(p)));
	p = "/v1beta/models/a/b:streamGenerateContent";
	assert_false(ag_prov_path_match(
	    "/v1beta/models/*:streamGenerateContent", p, strlen(p)));
	p = "/v1/models/..";
	assert_false(ag_prov_path_match("/v1/models/*", p, strlen(p)));
	p = "/v1/models/.";
	assert_false(ag_prov_path_match("/v1/models/*", p, strlen(p)));
	p = "/v1/models/gpt-4o";
	assert_true(ag_prov_path_match("/v1/models/*", p, strlen(p)));
	p = "/v1/models";
	assert_false(ag_prov_path_match("/v1/models/*", p, strlen(p)));
	assert_true(ag_prov_path_match("/v1/models", p, strlen(p)));
	/* len bounds the match (the query is not part of it). */
	p = "/v1/models?x=1";
	assert_true(ag_prov_path_match("/v1/models", p, 10));

	assert_non_null(ag_prov_find(AG_PROV_OPENAI));
	assert_string_equal(ag_prov_find(AG_PROV_OPENAI)->base_url,
	    "https://api.openai.com");
	assert_ptr_equal(ag_prov_find(AG_PROV_ANTHROPIC), &ag_prov_anthropic);
	assert_ptr_equal(ag_prov_find(AG_PROV_AZURE), &ag_prov_azure);
	assert_ptr_equal(ag_prov_find(AG_PROV_DEEPSEEK), &ag_prov_deepseek);
	assert_ptr_equal(ag_prov_find(AG_PROV_QWEN), &ag_prov_qwen);
	assert_ptr_equal(ag_prov_find(AG_PROV_BEDROCK), &ag_prov_bedrock);
	assert_null(ag_prov_find(-1));
	assert_null(ag_prov_find(AG_PROV_COUNT));
}

static void
test_auth_header(void **state)
{
	struct curl_slist *h = NULL;
	struct ag_channel c = ch;

	(void)state;
	assert_int_equal(ag_prov_openai.add_auth(&h, &c, NULL, err,
	    sizeof(err)), 0);
	assert_non_null(h);
	assert_string_equal(h->data, "Authorization: Bearer " PROVIDER_KEY);
	assert_null(h->next);
	curl_slist_free_all(h);
	h = NULL;

	/* A key that could split the header is refused, and not quoted. */
	snprintf(c.key, sizeof(c.key), "sk-a\r\nX-Evil: 1");
	assert_int_equal(ag_prov_openai.add_auth(&h, &c, NULL, err,
	    sizeof(err)), -1);
	assert_null(h);
	assert_null(strstr(err, "sk-a"));
	c.key[0] = '\0';
	assert_int_equal(ag_prov_openai.add_auth(&h, &c, NULL, err,
	    sizeof(err)), -1);
	assert_null(h);
}

static void
test_refusals(void **state)
{
	static const char *const bad_paths[] = {
		"/v1/files", "/v1/chat/completions/", "/v1//chat/completions",
		"v1/chat/completions", "/v1/chat/completions?x=1",
		"/v1/chat/../chat/completions", "/v1/./models", "/v1/models/",
		"/v1/models#x", "/v1/models\r\nX: 1", "/v1/%2e%2e/models",
		"/v1/chat%2Fcompletions", "/V1/models", "@evil.example/v1/models",
		".evil.example/v1/models", ":8443/v1/models", "",
		"/v1/models/gpt-4o", "/v1/chat/completions\\", "/v1/mod els",
		NULL
	};
	struct ag_upstream *u = up_new("", "");

	(void)state;
	for (const char *const *p = bad_paths; *p != NULL; p++) {
		if (start(u, 1, "POST", *p, "{}") != -1)
			fail_msg("path \"%s\" accepted", *p);
		assert_true(err[0] != '\0');
		assert_null(strstr(err, PROVIDER_KEY));
	}
	assert_non_null(strstr((start(u, 1, "POST", "/v1/files", "{}"), err),
	    "path not allowed"));

	/* Provider without an adapter yet (if one is left). */
	for (int pv = 0; pv < AG_PROV_COUNT; pv++) {
		if (ag_prov_find(pv) != NULL)
			continue;
		ch.provider = pv;
		assert_int_equal(start(u, 2, "POST", "/v1/chat/completions",
		    "{}"), -1);
		assert_non_null(strstr(err, ag_provider_name(pv)));
		assert_non_null(strstr(err, "no adapter"));
		break;
	}
	/* Another provider's path is not this one's. */
	ch.provider = AG_PROV_ANTHROPIC;
	assert_int_equal(start(u, 2, "POST", "/v1/chat/completions", "{}"), -1);
	assert_non_null(strstr(err, "path not allowed"));
	ch.provider = AG_PROV_COUNT + 3;
	assert_int_equal(start(u, 2, "POST", "/v1/chat/completions", "{}"), -1);
	ch.provider = AG_PROV_OPENAI;

	/* Methods. */
	assert_int_equal(start(u, 3, "DELETE", "/v1/models", NULL), -1);
	assert_int_equal(start(u, 3, "post", "/v1/models", NULL), -1);
	assert_int_equal(start(u, 3, "GET", "/v1/models", "{}"), -1);

	/* Bad credential, bad content type. */
	ch.key[0] = '\0';
	assert_int_equal(start(u, 4, "POST", "/v1/chat/completions", "{}"), -1);
	snprintf(ch.key, sizeof(ch.key), "%s", PROVIDER_KEY);
	err[0] = '\0';
	assert_int_equal(ag_up_start(u, 5, &ch, "POST", "/v1/embeddings",
	    "application/json\r\nAuthorization: x", "{}", 2, err, sizeof(err)),
	    -1);

	/* Too large a body (no copy is attempted). */
	assert_int_equal(ag_up_start(u, 6, &ch, "POST", "/v1/embeddings",
	    NULL, "", (size_t)AG_UP_BODY_MAX + 1, err, sizeof(err)), -1);

	/* Nothing was started: no event ever comes. */
	expect_quiet(u, 200);
	up_free(u);
}

/* Every allowed OpenAI path is accepted; a port nobody listens on gives
 * END ok=0 with curl's reason, and nothing before it. */
static void
test_refused_connect(void **state)
{
	static const char *const paths[] = {
		"/v1/chat/completions", "/v1/completions", "/v1/embeddings",
		"/v1/models", "/v1/responses", "/v1/moderations", NULL
	};
	struct ag_upstream *u;
	uint64_t k = 100;

	(void)state;
	if (!SWB_TEST_BUILD)
		skip();
	u = up_new("api.openai.com:443:127.0.0.1:1", "");
	for (const char *const *p = paths; *p != NULL; p++, k++) {
		struct resp r = { 0 };
		int get = strcmp(*p, "/v1/models") == 0;

		if (start(u, k, get ? "GET" : "POST", *p, get ? NULL : "{}") != 0)
			fail_msg("%s refused: %s", *p, err);
		/* The same key again while in flight is refused. */
		assert_int_equal(start(u, k, "GET", "/v1/models", NULL), -1);
		assert_non_null(strstr(err, "in flight"));
		collect(u, k, &r, 10000, 1);
		assert_int_equal(r.heads, 0);
		assert_int_equal(r.ndata, 0);
		assert_int_equal(r.ok, 0);
		assert_true(r.error[0] != '\0');
		assert_null(strstr(r.error, PROVIDER_KEY));
		resp_free(&r);
	}
	/* Its key is free again after END. */
	assert_int_equal(start(u, 100, "GET", "/v1/models", NULL), 0);
	{
		struct resp r = { 0 };

		collect(u, 100, &r, 10000, 1);
		assert_int_equal(r.ok, 0);
		resp_free(&r);
	}
	/* Credit for finished or unknown keys is harmless. */
	ag_up_consumed(u, 100, 12345);
	ag_up_consumed(u, 999999, 1);
	ag_up_cancel(u, 999999);
	expect_quiet(u, 100);
	assert_true(nwakes > 0);
	up_free(u);
}

/* Cancel while the TLS handshake is pending: the socket is closed, and
 * no event comes, even for a request whose END was already queued. */
static void
test_cancel(void **state)
{
	struct ag_upstream *u;
	char ct[128], buf[512];
	int lfd, port, cfd;
	struct pollfd p;

	(void)state;
	if (!SWB_TEST_BUILD)
		skip();
	lfd = silent_listener(&port);
	snprintf(ct, sizeof(ct), "api.openai.com:443:127.0.0.1:%d", port);
	u = up_new(ct, "");

	assert_int_equal(start(u, 7, "POST", "/v1/chat/completions",
	    "{\"model\":\"gpt-4o-mini\"}"), 0);
	cfd = accept_within(lfd, 5000);
	assert_true(cfd >= 0);
	/* The ClientHello arrives: the transfer is really in flight. */
	p.fd = cfd;
	p.events = POLLIN;
	assert_int_equal(poll(&p, 1, 5000), 1);
	assert_true(read(cfd, buf, sizeof(buf)) > 0);

	ag_up_cancel(u, 7);
	assert_true(closed_within(cfd, 3000));
	close(cfd);
	expect_quiet(u, 300);

	/* Cancel right after start (likely still queued for the thread). */
	assert_int_equal(start(u, 8, "GET", "/v1/models", NULL), 0);
	ag_up_cancel(u, 8);
	/* Any connection made for key 8 is closed too. */
	while ((cfd = accept_within(lfd, 300)) >= 0) {
		assert_true(closed_within(cfd, 3000));
		close(cfd);
	}
	expect_quiet(u, 200);
	/* Keys are reusable after a cancel. */
	assert_int_equal(start(u, 7, "GET", "/v1/models", NULL), 0);
	ag_up_cancel(u, 7);
	up_free(u);
	close(lfd);

	/* Cancel once the END is queued (the wake came) but not taken: the
	 * queued END is withdrawn. */
	u = up_new("api.openai.com:443:127.0.0.1:1", "");
	pthread_mutex_lock(&wake_mu);
	woken = 0;
	pthread_mutex_unlock(&wake_mu);
	assert_int_equal(start(u, 9, "GET", "/v1/models", NULL), 0);
	{
		int64_t dl = now_ms() + 10000;

		pthread_mutex_lock(&wake_mu);
		while (!woken && now_ms() < dl) {
			pthread_mutex_unlock(&wake_mu);
			usleep(5000);
			pthread_mutex_lock(&wake_mu);
		}
		assert_true(woken);
		pthread_mutex_unlock(&wake_mu);
	}
	ag_up_cancel(u, 9);
	expect_quiet(u, 300);
	up_free(u);
}

/* ag_up_free with transfers in every state (queued, connecting, events
 * waiting): LeakSanitizer checks that nothing is left. */
static void
test_free_in_flight(void **state)
{
	struct ag_upstream *u;
	char ct[160];
	int lfd, port, fds[4], n = 0;

	(void)state;
	if (!SWB_TEST_BUILD)
		skip();
	lfd = silent_listener(&port);
	snprintf(ct, sizeof(ct), "api.openai.com:443:127.0.0.1:%d", port);
	u = up_new(ct, "");
	for (uint64_t k = 1; k <= 4; k++)
		assert_int_equal(start(u, k, "POST", "/v1/embeddings",
		    "{\"input\":\"x\"}"), 0);
	/* One connection at least (with PIPEWAIT the others may wait to
	 * share it). */
	while (n < 4 && (fds[n] = accept_within(lfd, n == 0 ? 5000 : 300)) >= 0)
		n++;
	assert_true(n >= 1);
	for (uint64_t k = 10; k <= 12; k++)
		assert_int_equal(start(u, k, "GET", "/v1/models", NULL), 0);
	ag_up_consumed(u, 1, 10);
	ag_up_cancel(u, 2);
	up_free(u);
	for (int i = 0; i < n; i++)
		close(fds[i]);
	close(lfd);

	/* And with END events waiting in the queue. */
	u = up_new("api.openai.com:443:127.0.0.1:1", "");
	for (uint64_t k = 1; k <= 3; k++)
		assert_int_equal(start(u, k, "GET", "/v1/models", NULL), 0);
	usleep(300000);
	up_free(u);
	ag_up_free(NULL);
}


/* ---- the adapters: operations, URLs, headers */

/* A channel of provider prov as agentd.ini would make it. */
static struct ag_channel
chan(int prov, const char *key)
{
	struct ag_channel c;

	memset(&c, 0, sizeof(c));
	snprintf(c.name, sizeof(c.name), "c-%s", ag_provider_name(prov));
	c.provider = prov;
	snprintf(c.key, sizeof(c.key), "%s", key);
	switch (prov) {
	case AG_PROV_AZURE:
		c.nmodels = 2;
		snprintf(c.models[0], sizeof(c.models[0]), "gpt-4.1");
		snprintf(c.deployments[0], sizeof(c.deployments[0]),
		    "gpt41-deploy");
		snprintf(c.models[1], sizeof(c.models[1]), "gpt-4o");
		snprintf(c.host, sizeof(c.host), "swb-test.openai.azure.com");
		snprintf(c.api_version, sizeof(c.api_version), "2024-10-21");
		break;
	case AG_PROV_QWEN:
		c.nmodels = 1;
		snprintf(c.models[0], sizeof(c.models[0]), "qwen-plus");
		snprintf(c.host, sizeof(c.host), "dashscope.aliyuncs.com");
		break;
	case AG_PROV_ANTHROPIC:
		c.nmodels = 2;
		snprintf(c.models[0], sizeof(c.models[0]), "claude-haiku-4-5");
		snprintf(c.models[1], sizeof(c.models[1]), "claude-fast");
		snprintf(c.model_ids[1], sizeof(c.model_ids[1]),
		    "claude-sonnet-4-5");
		snprintf(c.anthropic_version, sizeof(c.anthropic_version),
		    "2023-06-01");
		break;
	case AG_PROV_BEDROCK:
		c.nmodels = 2;
		snprintf(c.models[0], sizeof(c.models[0]),
		    "amazon.nova-lite-v1:0");
		snprintf(c.models[1], sizeof(c.models[1]), "claude-haiku-4-5");
		snprintf(c.model_ids[1], sizeof(c.model_ids[1]),
		    "anthropic.claude-3-5-haiku-20241022-v1:0");
		snprintf(c.host, sizeof(c.host),
		    "bedrock-runtime.us-east-1.amazonaws.com");
		snprintf(c.region, sizeof(c.region), "us-east-1");
		snprintf(c.access_key_id, sizeof(c.access_key_id),
		    "AKIDEXAMPLE");
		break;
	default:
		c.nmodels = 1;
		snprintf(c.models[0], sizeof(c.models[0]), "deepseek-chat");
		break;
	}
	return c;
}

/* op_path of provider prov for op on model: 0 with method/path, or -1. */
static int
op_of(int prov, int op, const char *model, char *method, char *path,
    size_t plen)
{
	struct ag_channel c = chan(prov, "k");
	struct ag_prov_op rq = { .op = op, .model = model, .resource = "" };
	const struct ag_prov *p = ag_prov_find(prov);

	assert_non_null(p);
	err[0] = '\0';
	return p->op_path(method, 8, path, plen, &c, &rq, err, sizeof(err));
}

static void
test_op_paths(void **state)
{
	static const struct {
		int prov, op;
		const char *model, *path;	/* NULL: refused */
	} cases[] = {
		{ AG_PROV_OPENAI, OP_CHAT, "gpt-4o", "/v1/chat/completions" },
		{ AG_PROV_OPENAI, OP_RESPONSES, "gpt-4o", "/v1/responses" },
		{ AG_PROV_OPENAI, OP_EMBEDDINGS, "e", "/v1/embeddings" },
		{ AG_PROV_OPENAI, OP_MESSAGES, "gpt-4o", NULL },
		{ AG_PROV_ANTHROPIC, OP_MESSAGES, "claude-haiku-4-5",
		    "/v1/messages" },
		{ AG_PROV_ANTHROPIC, OP_COUNT_TOKENS, "claude-haiku-4-5",
		    "/v1/messages/count_tokens" },
		{ AG_PROV_ANTHROPIC, OP_CHAT, "claude-haiku-4-5", NULL },
		{ AG_PROV_ANTHROPIC, OP_EMBEDDINGS, "claude-haiku-4-5", NULL },
		{ AG_PROV_AZURE, OP_CHAT, "gpt-4.1", "/openai/deployments/"
		    "gpt41-deploy/chat/completions?api-version=2024-10-21" },
		{ AG_PROV_AZURE, OP_EMBEDDINGS, "gpt-4.1", "/openai/deployments/"
		    "gpt41-deploy/embeddings?api-version=2024-10-21" },
		{ AG_PROV_AZURE, OP_CHAT, "gpt-4o", NULL },	/* no deployment */
		{ AG_PROV_AZURE, OP_CHAT, "gpt-5", NULL },	/* not announced */
		{ AG_PROV_AZURE, OP_RESPONSES, "gpt-4.1", NULL },
		{ AG_PROV_DEEPSEEK, OP_CHAT, "deepseek-chat", "/chat/completions" },
		{ AG_PROV_DEEPSEEK, OP_EMBEDDINGS, "deepseek-chat", NULL },
		{ AG_PROV_QWEN, OP_CHAT, "qwen-plus",
		    "/compatible-mode/v1/chat/completions" },
		{ AG_PROV_QWEN, OP_EMBEDDINGS, "qwen-plus",
		    "/compatible-mode/v1/embeddings" },
		{ AG_PROV_QWEN, OP_MESSAGES, "qwen-plus", NULL },
		{ AG_PROV_QWEN, -1, "qwen-plus", NULL },
		{ AG_PROV_QWEN, OP_COUNT, "qwen-plus", NULL },
		{ AG_PROV_BEDROCK, OP_CONVERSE, "amazon.nova-lite-v1:0",
		    "/model/amazon.nova-lite-v1%3A0/converse" },
		{ AG_PROV_BEDROCK, OP_CONVERSE_STREAM, "amazon.nova-lite-v1:0",
		    "/model/amazon.nova-lite-v1%3A0/converse-stream" },
		{ AG_PROV_BEDROCK, OP_INVOKE, "claude-haiku-4-5",
		    "/model/anthropic.claude-3-5-haiku-20241022-v1%3A0/invoke" },
		{ AG_PROV_BEDROCK, OP_INVOKE_STREAM, "claude-haiku-4-5",
		    "/model/anthropic.claude-3-5-haiku-20241022-v1%3A0/"
		    "invoke-with-response-stream" },
		{ AG_PROV_BEDROCK, OP_CHAT, "amazon.nova-lite-v1:0", NULL },
		{ AG_PROV_BEDROCK, OP_CONVERSE, "amazon.titan", NULL },
	};
	char method[8], path[256];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int rc = op_of(cases[i].prov, cases[i].op, cases[i].model,
		    method, path, sizeof(path));

		if (cases[i].path == NULL) {
			if (rc != -1)
				fail_msg("case %zu: accepted as %s", i, path);
			assert_non_null(strstr(err,
			    ag_provider_name(cases[i].prov)));
			continue;
		}
		if (rc != 0)
			fail_msg("case %zu: %s", i, err);
		assert_string_equal(method, "POST");
		assert_string_equal(path, cases[i].path);
	}
	/* Azure's refusal names the model and says what is missing. */
	assert_int_equal(op_of(AG_PROV_AZURE, OP_CHAT, "gpt-4o", method, path,
	    sizeof(path)), -1);
	assert_non_null(strstr(err, "no deployment for model 'gpt-4o'"));
}

/* Every header an adapter adds, in order, joined by '|'. */
static int
auth_of(const struct ag_channel *c, const struct ag_prov_op *op, char *out,
    size_t outlen)
{
	struct curl_slist *h = NULL;
	struct ag_prov_req rq = { .ch = c, .op = op };
	size_t n = 0;
	int rc;

	out[0] = '\0';
	err[0] = '\0';
	rc = ag_prov_find(c->provider)->add_auth(&h, c, &rq, err, sizeof(err));
	for (struct curl_slist *e = h; e != NULL; e = e->next)
		n += (size_t)snprintf(out + n, outlen - n, "%s%s", n ? "|" : "",
		    e->data);
	curl_slist_free_all(h);
	return rc;
}

static void
test_adapter_headers(void **state)
{
	struct ag_channel c;
	struct ag_prov_op op = { .op = OP_MESSAGES, .model = "m" };
	char hd[512];

	(void)state;
	c = chan(AG_PROV_ANTHROPIC, "sk-ant-k");
	assert_int_equal(auth_of(&c, NULL, hd, sizeof(hd)), 0);
	assert_string_equal(hd, "x-api-key: sk-ant-k|anthropic-version: "
	    "2023-06-01");
	/* The user's version and betas win; spaces after commas go. */
	op.anthropic_version = "2024-01-01";
	op.anthropic_beta = "prompt-caching-2024-07-31, output-128k-2025-02-19";
	assert_int_equal(auth_of(&c, &op, hd, sizeof(hd)), 0);
	assert_string_equal(hd, "x-api-key: sk-ant-k|anthropic-version: "
	    "2024-01-01|anthropic-beta: prompt-caching-2024-07-31,"
	    "output-128k-2025-02-19");
	/* The channel's configured version when the user gave none. */
	op.anthropic_version = "";
	op.anthropic_beta = NULL;
	snprintf(c.anthropic_version, sizeof(c.anthropic_version), "2023-01-01");
	assert_int_equal(auth_of(&c, &op, hd, sizeof(hd)), 0);
	assert_string_equal(hd, "x-api-key: sk-ant-k|anthropic-version: "
	    "2023-01-01");
	/* What the hub passed on cannot split or smuggle a header. */
	op.anthropic_version = "2023-06-01\r\nx-api-key: other";
	assert_int_equal(auth_of(&c, &op, hd, sizeof(hd)), -1);
	assert_non_null(strstr(err, "anthropic-version"));
	op.anthropic_version = "";
	op.anthropic_beta = "a\r\nb";
	assert_int_equal(auth_of(&c, &op, hd, sizeof(hd)), -1);
	op.anthropic_beta = "a,,b";
	assert_int_equal(auth_of(&c, &op, hd, sizeof(hd)), -1);
	op.anthropic_beta = "a;b";
	assert_int_equal(auth_of(&c, &op, hd, sizeof(hd)), -1);
	op.anthropic_beta = "";
	snprintf(c.key, sizeof(c.key), "sk-ant\nx");
	assert_int_equal(auth_of(&c, &op, hd, sizeof(hd)), -1);
	assert_null(strstr(err, "sk-ant"));

	c = chan(AG_PROV_AZURE, "az-key");
	assert_int_equal(auth_of(&c, NULL, hd, sizeof(hd)), 0);
	assert_string_equal(hd, "api-key: az-key");
	c = chan(AG_PROV_DEEPSEEK, "sk-ds");
	assert_int_equal(auth_of(&c, NULL, hd, sizeof(hd)), 0);
	assert_string_equal(hd, "Authorization: Bearer sk-ds");
	c = chan(AG_PROV_QWEN, "sk-qw");
	assert_int_equal(auth_of(&c, NULL, hd, sizeof(hd)), 0);
	assert_string_equal(hd, "Authorization: Bearer sk-qw");

	/* Bedrock: SigV4 over the body and path, the secret never shown. */
	{
		struct ag_prov_req rq;
		struct curl_slist *h = NULL;
		char all[1024] = "";

		c = chan(AG_PROV_BEDROCK, "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY");
		rq = (struct ag_prov_req){ .ch = &c, .method = "POST",
		    .path = "/model/amazon.nova-lite-v1%3A0/converse",
		    .body = "{}", .len = 2 };
		if (ag_prov_bedrock.add_auth(&h, &c, &rq, err, sizeof(err)) != 0)
			fail_msg("bedrock add_auth: %s", err);
		for (struct curl_slist *e = h; e != NULL; e = e->next) {
			strncat(all, e->data, sizeof(all) - strlen(all) - 2);
			strcat(all, "|");
		}
		curl_slist_free_all(h);
		assert_non_null(strstr(all, "X-Amz-Date: 20"));
		/* SHA-256 of "{}" */
		assert_non_null(strstr(all, "X-Amz-Content-Sha256: 44136fa355b3678a"
		    "1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a|"));
		assert_non_null(strstr(all, "Authorization: AWS4-HMAC-SHA256 "
		    "Credential=AKIDEXAMPLE/20"));
		assert_non_null(strstr(all, "/us-east-1/bedrock/aws4_request, "
		    "SignedHeaders=host;x-amz-content-sha256;x-amz-date, "
		    "Signature="));
		assert_null(strstr(all, "wJalr"));
		assert_null(strstr(all, "Security-Token"));
		/* a session token is sent and signed */
		h = NULL;
		all[0] = '\0';
		snprintf(c.session_token, sizeof(c.session_token), "tok/+=");
		assert_int_equal(ag_prov_bedrock.add_auth(&h, &c, &rq, err,
		    sizeof(err)), 0);
		for (struct curl_slist *e = h; e != NULL; e = e->next) {
			strncat(all, e->data, sizeof(all) - strlen(all) - 2);
			strcat(all, "|");
		}
		curl_slist_free_all(h);
		assert_non_null(strstr(all, "X-Amz-Security-Token: tok/+=|"));
		assert_non_null(strstr(all, "x-amz-date;x-amz-security-token, "));
		/* no credentials: refused */
		c.access_key_id[0] = '\0';
		h = NULL;
		assert_int_equal(ag_prov_bedrock.add_auth(&h, &c, &rq, err,
		    sizeof(err)), -1);
		curl_slist_free_all(h);
	}
}

/* Hosts and paths: each adapter's own, no one else's. */
static void
test_adapter_refusals(void **state)
{
	struct ag_upstream *u = up_new("", "");
	struct ag_channel c;
	struct ag_prov_op op = { .op = OP_CHAT, .model = "gpt-4.1" };

	(void)state;
	c = chan(AG_PROV_AZURE, "k");
	err[0] = '\0';
	/* A host outside *.openai.azure.com never gets a byte. */
	snprintf(c.host, sizeof(c.host), "evil.example");
	assert_int_equal(ag_up_start_op(u, 1, &c, &op, "application/json",
	    "{}", 2, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "not an official endpoint"));
	snprintf(c.host, sizeof(c.host), "a.b.openai.azure.com");
	assert_int_equal(ag_up_start_op(u, 1, &c, &op, "application/json",
	    "{}", 2, err, sizeof(err)), -1);
	c.host[0] = '\0';
	assert_int_equal(ag_up_start_op(u, 1, &c, &op, "application/json",
	    "{}", 2, err, sizeof(err)), -1);
	/* Paths: Azure's need a deployment segment; others' are refused. */
	c = chan(AG_PROV_AZURE, "k");
	assert_int_equal(ag_up_start(u, 2, &c, "POST", "/v1/chat/completions",
	    NULL, "{}", 2, err, sizeof(err)), -1);
	assert_int_equal(ag_up_start(u, 2, &c, "POST",
	    "/openai/deployments/../chat/completions?api-version=1", NULL, "{}",
	    2, err, sizeof(err)), -1);
	c = chan(AG_PROV_QWEN, "k");
	snprintf(c.host, sizeof(c.host), "dashscope.aliyuncs.com.evil.example");
	op.model = "qwen-plus";
	assert_int_equal(ag_up_start_op(u, 3, &c, &op, "application/json",
	    "{}", 2, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "not an official endpoint"));
	c = chan(AG_PROV_QWEN, "k");
	assert_int_equal(ag_up_start(u, 3, &c, "POST", "/v1/chat/completions",
	    NULL, "{}", 2, err, sizeof(err)), -1);
	c = chan(AG_PROV_DEEPSEEK, "k");
	assert_int_equal(ag_up_start(u, 4, &c, "POST", "/v1/embeddings", NULL,
	    "{}", 2, err, sizeof(err)), -1);
	/* An operation the provider does not do: refused, nothing sent. */
	op.op = OP_MESSAGES;
	assert_int_equal(ag_up_start_op(u, 5, &c, &op, "application/json",
	    "{}", 2, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "deepseek: operation messages not "
	    "supported"));
	/* A mapped model needs a JSON object naming a model to rewrite. */
	c = chan(AG_PROV_ANTHROPIC, "k");
	op.op = OP_MESSAGES;
	op.model = "claude-fast";
	assert_int_equal(ag_up_start_op(u, 6, &c, &op, "application/json",
	    "[1]", 3, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "cannot put model claude-sonnet-4-5"));
	expect_quiet(u, 200);
	up_free(u);
}

/* One request per provider through the engine to the mock, by operation:
 * the right host, path and credential reach it (the mock checks the
 * credential as the provider would), and a mapped model reaches it as
 * the provider's id. */
static void
test_mock_providers(void **state)
{
	static const struct {
		int prov, op;
		const char *model, *body, *host, *path, *auth, *expect;
	} cases[] = {
		{ AG_PROV_ANTHROPIC, OP_MESSAGES, "claude-fast",
		    "{\"model\": \"claude-fast\",\"max_tokens\":5,\"messages\":"
		    "[{\"role\":\"user\",\"content\":\"hi [mock chunks=2 "
		    "cache_read=3]\"}]}", "api.anthropic.com", "/v1/messages",
		    "\"x-api-key\":\"sk-ant-test-provider-key\"",
		    "\"cache_read_input_tokens\":3" },
		{ AG_PROV_ANTHROPIC, OP_COUNT_TOKENS, "claude-haiku-4-5",
		    "{\"model\":\"claude-haiku-4-5\",\"messages\":[{\"role\":"
		    "\"user\",\"content\":\"hello there\"}]}", "api.anthropic.com",
		    "/v1/messages/count_tokens",
		    "\"x-api-key\":\"sk-ant-test-provider-key\"",
		    "{\"input_tokens\":3}" },
		{ AG_PROV_AZURE, OP_CHAT, "gpt-4.1",
		    "{\"model\":\"gpt-4.1\",\"messages\":[{\"role\":\"user\","
		    "\"content\":\"hi [mock chunks=2]\"}]}",
		    "swb-test.openai.azure.com",
		    "/openai/deployments/gpt41-deploy/chat/completions",
		    "\"api-key\":\"azure-test-provider-key\"",
		    "\"model\":\"gpt-4.1\"" },
		{ AG_PROV_DEEPSEEK, OP_CHAT, "deepseek-chat",
		    "{\"model\":\"deepseek-chat\",\"messages\":[{\"role\":\"user\","
		    "\"content\":\"hi [mock chunks=2 cache_read=1]\"}]}",
		    "api.deepseek.com", "/chat/completions",
		    "\"authorization\":\"Bearer sk-deepseek-test-key\"",
		    "\"prompt_cache_hit_tokens\":1" },
		{ AG_PROV_QWEN, OP_CHAT, "qwen-plus",
		    "{\"model\":\"qwen-plus\",\"messages\":[{\"role\":\"user\","
		    "\"content\":\"hi [mock chunks=2]\"}]}",
		    "dashscope.aliyuncs.com",
		    "/compatible-mode/v1/chat/completions",
		    "\"authorization\":\"Bearer sk-qwen-test-key\"",
		    "\"content\":\"tok0 tok1 \"" },
		{ AG_PROV_BEDROCK, OP_CONVERSE, "amazon.nova-lite-v1:0",
		    "{\"messages\":[{\"role\":\"user\",\"content\":[{\"text\":"
		    "\"hi\"}]}]}", "bedrock-runtime.us-east-1.amazonaws.com",
		    "/model/amazon.nova-lite-v1%3A0/converse",
		    "\"sigv4\":\"valid\"", "\"inputTokens\":1" },
		{ AG_PROV_BEDROCK, OP_INVOKE, "claude-haiku-4-5",
		    "{\"anthropic_version\":\"bedrock-2023-05-31\","
		    "\"max_tokens\":5,\"messages\":[{\"role\":\"user\","
		    "\"content\":\"hi\"}]}",
		    "bedrock-runtime.us-east-1.amazonaws.com",
		    "/model/anthropic.claude-3-5-haiku-20241022-v1%3A0/invoke",
		    "\"sigv4\":\"valid\"", "\"type\":\"message\"" },
	};
	static const char *const keys[AG_PROV_COUNT] = {
		[AG_PROV_ANTHROPIC] = "sk-ant-test-provider-key",
		[AG_PROV_AZURE] = "azure-test-provider-key",
		[AG_PROV_DEEPSEEK] = "sk-deepseek-test-key",
		[AG_PROV_QWEN] = "sk-qwen-test-key",
		[AG_PROV_BEDROCK] = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
	};
	struct ag_upstream *u;
	char ct[512], needle[128], *line;
	int n = 0;

	(void)state;
	if (!mock.up)
		skip();
	for (const char *const *h = (const char *const[]){ "api.anthropic.com",
	    "swb-test.openai.azure.com", "api.deepseek.com",
	    "dashscope.aliyuncs.com", "bedrock-runtime.us-east-1.amazonaws.com",
	    NULL }; *h != NULL; h++)
		n += snprintf(ct + n, sizeof(ct) - (size_t)n, "%s%s:443:127.0.0.1:%d",
		    n ? "," : "", *h, mock.port);
	u = up_new(ct, mock.ca);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct ag_channel c = chan(cases[i].prov, keys[cases[i].prov]);
		struct ag_prov_op op = { .op = cases[i].op,
		    .model = cases[i].model, .resource = "" };
		struct resp r = { 0 };
		uint64_t key = 500 + i;

		if (cases[i].prov == AG_PROV_DEEPSEEK)
			snprintf(c.models[0], sizeof(c.models[0]), "deepseek-chat");
		if (ag_up_start_op(u, key, &c, &op, "application/json",
		    cases[i].body, strlen(cases[i].body), err, sizeof(err)) != 0)
			fail_msg("case %zu refused: %s", i, err);
		collect(u, key, &r, 10000, 1);
		if (r.status != 200)
			fail_msg("case %zu: %ld %s", i, r.status,
			    r.body != NULL ? (char *)r.body : "");
		assert_non_null(strstr((char *)r.body, cases[i].expect));
		snprintf(needle, sizeof(needle), "\"path\":\"%s\"", cases[i].path);
		line = mock_log_find(needle, cases[i].auth, 2000);
		assert_non_null(line);
		snprintf(needle, sizeof(needle), "\"host\":\"%s\"", cases[i].host);
		assert_non_null(strstr(line, needle));
		assert_non_null(strstr(line, "\"ok\":true"));
		/* Not a stream: HTTP/1.1 where libcurl cannot multiplex. */
		assert_non_null(strstr(line, curl_version_info(CURLVERSION_NOW)->
		    version_num >= 0x080100 ? "\"http\":\"2.0\"" :
		    "\"http\":\"1.1\""));
		if (cases[i].prov == AG_PROV_AZURE)
			assert_non_null(strstr(line,
			    "\"query\":\"?api-version=2024-10-21\""));
		if (cases[i].prov == AG_PROV_ANTHROPIC)
			assert_non_null(strstr(line,
			    "\"anthropic-version\":\"2023-06-01\""));
		free(line);
		resp_free(&r);
	}
	/* The mapped model reached Anthropic as its id, the rest kept. */
	line = mock_log_find("\"model\":\"claude-sonnet-4-5\"",
	    "\"max_tokens\":5", 2000);
	assert_non_null(line);
	free(line);

	/* A wrong credential gets each provider's own 401. */
	{
		struct ag_channel c = chan(AG_PROV_ANTHROPIC, "sk-ant-wrong");
		struct ag_prov_op op = { .op = OP_MESSAGES,
		    .model = "claude-haiku-4-5", .resource = "" };
		struct resp r = { 0 };

		assert_int_equal(ag_up_start_op(u, 600, &c, &op,
		    "application/json", cases[0].body, strlen(cases[0].body),
		    err, sizeof(err)), 0);
		collect(u, 600, &r, 10000, 1);
		assert_int_equal(r.status, 401);
		assert_non_null(strstr((char *)r.body, "authentication_error"));
		resp_free(&r);
		c = chan(AG_PROV_AZURE, keys[AG_PROV_DEEPSEEK]);
		op.op = OP_CHAT;
		op.model = "gpt-4.1";
		assert_int_equal(ag_up_start_op(u, 601, &c, &op,
		    "application/json", cases[2].body, strlen(cases[2].body),
		    err, sizeof(err)), 0);
		collect(u, 601, &r, 10000, 1);
		assert_int_equal(r.status, 401);
		assert_non_null(strstr((char *)r.body, "Access denied"));
		resp_free(&r);
		/* Bedrock: a wrong secret is AWS's 403, the id its own */
		c = chan(AG_PROV_BEDROCK, "not-the-secret");
		op.op = OP_CONVERSE;
		op.model = "amazon.nova-lite-v1:0";
		assert_int_equal(ag_up_start_op(u, 602, &c, &op,
		    "application/json", cases[5].body, strlen(cases[5].body),
		    err, sizeof(err)), 0);
		collect(u, 602, &r, 10000, 1);
		assert_int_equal(r.status, 403);
		assert_non_null(strstr((char *)r.body, "signature we calculated"));
		resp_free(&r);
		line = mock_log_find("\"sigv4\":\"InvalidSignatureException\"",
		    "nova-lite", 2000);
		assert_non_null(line);
		free(line);
	}
	up_free(u);
}

/* ---- against the OpenAI mock */

static void
test_mock_models(void **state)
{
	static const char expect[] =
	    "{\"object\":\"list\",\"data\":["
	    "{\"id\":\"gpt-4o-mini\",\"object\":\"model\",\"created\":1721172741,"
	    "\"owned_by\":\"openai\"},"
	    "{\"id\":\"gpt-4o\",\"object\":\"model\",\"created\":1715367049,"
	    "\"owned_by\":\"openai\"}]}";
	struct ag_upstream *u;
	struct resp r = { 0 };

	(void)state;
	if (!mock.up)
		skip();
	u = mock_up();
	assert_int_equal(start(u, 1, "GET", "/v1/models", NULL), 0);
	collect(u, 1, &r, 10000, 1);
	assert_int_equal(r.heads, 1);
	assert_int_equal(r.status, 200);
	assert_string_equal(r.ct, "application/json");
	assert_int_equal(r.ok, 1);
	assert_int_equal(r.end_status, 200);
	assert_non_null(r.body);
	assert_string_equal((char *)r.body, expect);
	resp_free(&r);

	/* A wrong key: the provider's status and body, and ok == 1. */
	snprintf(ch.key, sizeof(ch.key), "sk-wrong-key");
	assert_int_equal(start(u, 2, "GET", "/v1/models", NULL), 0);
	collect(u, 2, &r, 10000, 1);
	assert_int_equal(r.status, 401);
	assert_int_equal(r.ok, 1);
	assert_int_equal(r.end_status, 401);
	assert_non_null(strstr((char *)r.body, "invalid_api_key"));
	resp_free(&r);
	up_free(u);
}

/*
 * The provider closes a kept-alive connection while it sits idle between
 * two transfers.  The engine leaves an idle connection's socket in its
 * epoll set (no system call between transfers): the close must take it
 * out, not wake the driver over and over, and the next request must go
 * out on a new connection and complete.
 */
static void
test_mock_idle_close(void **state)
{
	static const char closing[] =
	    "{\"model\":\"gpt-4o-mini\",\"messages\":[{\"role\":\"user\","
	    "\"content\":\"hi [mock chunks=2 idle_close=50]\"}]}";
	static const char plain[] =
	    "{\"model\":\"gpt-4o-mini\",\"messages\":[{\"role\":\"user\","
	    "\"content\":\"again [mock chunks=2]\"}]}";
	struct ag_upstream *u;
	struct resp r = { 0 };
	unsigned long runs;

	(void)state;
	if (!mock.up)
		skip();
	u = mock_up();
	for (int round = 0; round < 3; round++) {
		uint64_t key = 40 + (uint64_t)round * 2;

		assert_int_equal(start(u, key, "POST", "/v1/chat/completions",
		    closing), 0);
		collect(u, key, &r, 10000, 1);
		assert_int_equal(r.status, 200);
		assert_int_equal(r.ok, 1);
		assert_non_null(strstr((char *)r.body, "tok0 tok1 "));
		resp_free(&r);
		/* The close comes 50 ms after the answer; a socket left
		 * readable in the set would make the driver run without end
		 * (thousands of runs here), an idle engine runs a few times. */
		runs = drv.runs;
		usleep(600 * 1000);
		assert_true(drv.runs - runs < 100);
		assert_int_equal(start(u, key + 1, "POST",
		    "/v1/chat/completions", plain), 0);
		collect(u, key + 1, &r, 10000, 1);
		assert_int_equal(r.status, 200);
		assert_int_equal(r.ok, 1);
		assert_non_null(strstr((char *)r.body, "tok0 tok1 "));
		resp_free(&r);
	}
	up_free(u);
}

#define CHUNK_PFX "data: {\"id\":\"%s\",\"object\":\"chat.completion.chunk\"," \
	"\"created\":%s,\"model\":\"gpt-4o-mini\"," \
	"\"system_fingerprint\":\"fp_mock0000\","

/* A streamed chat completion, byte for byte, delivered as it comes. */
static void
test_mock_stream(void **state)
{
	static const char body[] =
	    "{\"model\":\"gpt-4o-mini\",\"stream\":true,"
	    "\"stream_options\":{\"include_usage\":true},"
	    "\"messages\":[{\"role\":\"user\","
	    "\"content\":\"hi [mock chunks=3 delay=150]\"}]}";
	struct ag_upstream *u;
	struct resp r = { 0 };
	char id[64], created[32], exp[4096], needle[96], *line;
	const char *s;
	size_t n = 0;

	(void)state;
	if (!mock.up)
		skip();
	u = mock_up();
	assert_int_equal(start(u, 42, "POST", "/v1/chat/completions", body), 0);
	collect(u, 42, &r, 15000, 1);
	assert_int_equal(r.status, 200);
	assert_string_equal(r.ct, "text/event-stream; charset=utf-8");
	assert_int_equal(r.ok, 1);
	assert_non_null(r.body);

	/* id and created from the first event, then the exact text. */
	assert_int_equal(sscanf((char *)r.body,
	    "data: {\"id\":\"%63[^\"]\",\"object\":\"chat.completion.chunk\","
	    "\"created\":%31[0-9],", id, created), 2);
#define ADD(...) do {							\
	n += (size_t)snprintf(exp + n, sizeof(exp) - n, __VA_ARGS__);	\
	assert_true(n < sizeof(exp));					\
} while (0)
	ADD(CHUNK_PFX "\"choices\":[{\"index\":0,\"delta\":{\"role\":"
	    "\"assistant\",\"content\":\"\"},\"logprobs\":null,"
	    "\"finish_reason\":null}],\"usage\":null}\n\n", id, created);
	for (int i = 0; i < 3; i++)
		ADD(CHUNK_PFX "\"choices\":[{\"index\":0,\"delta\":{\"content\":"
		    "\"tok%d \"},\"logprobs\":null,\"finish_reason\":null}],"
		    "\"usage\":null}\n\n", id, created, i);
	ADD(CHUNK_PFX "\"choices\":[{\"index\":0,\"delta\":{},\"logprobs\":null,"
	    "\"finish_reason\":\"stop\"}],\"usage\":null}\n\n", id, created);
	/* "hi [mock chunks=3 delay=150]": 28 code points -> 7 tokens. */
	ADD(CHUNK_PFX "\"choices\":[],\"usage\":{\"prompt_tokens\":7,"
	    "\"completion_tokens\":3,\"total_tokens\":10,"
	    "\"prompt_tokens_details\":{\"cached_tokens\":0},"
	    "\"completion_tokens_details\":{\"reasoning_tokens\":0}}}\n\n",
	    id, created);
	ADD("data: [DONE]\n\n");
#undef ADD
	assert_string_equal((char *)r.body, exp);
	/* Delivered as produced: several blocks, spread over the stream's
	 * 3 x 150 ms rather than all at the end. */
	assert_true(r.ndata >= 4);
	assert_true(r.t_end - r.t_first >= 300);

	/* What the provider saw: our auth, the body's type, HTTP/2, and no
	 * header of the hub's. */
	snprintf(needle, sizeof(needle), "\"id\":\"%s\"", id);
	line = mock_log_find(needle, "\"path\":\"/v1/chat/completions\"", 2000);
	assert_non_null(line);
	assert_non_null(strstr(line,
	    "\"authorization\":\"Bearer " PROVIDER_KEY "\""));
	assert_non_null(strstr(line, "\"content-type\":\"application/json\""));
	assert_non_null(strstr(line, "\"http\":\"2.0\""));	/* a stream */
	assert_null(strstr(line, "\"expect\""));
	s = strstr(line, "\"method\":\"POST\"");
	assert_non_null(s);
	free(line);
	resp_free(&r);
	up_free(u);
}

/* The provider breaks the stream: what came is delivered, then END
 * ok=0. */
static void
test_mock_broken(void **state)
{
	static const char body[] =
	    "{\"model\":\"gpt-4o-mini\",\"stream\":true,\"messages\":[{\"role\":"
	    "\"user\",\"content\":\"[mock chunks=6 delay=20 fail_after=2]\"}]}";
	struct ag_upstream *u;
	struct resp r = { 0 };

	(void)state;
	if (!mock.up)
		skip();
	u = mock_up();
	assert_int_equal(start(u, 5, "POST", "/v1/chat/completions", body), 0);
	collect(u, 5, &r, 10000, 1);
	assert_int_equal(r.heads, 1);
	assert_int_equal(r.status, 200);
	assert_int_equal(r.ok, 0);
	assert_true(r.error[0] != '\0');
	assert_non_null(r.body);
	assert_non_null(strstr((char *)r.body, "tok1 "));
	assert_null(strstr((char *)r.body, "tok2 "));
	resp_free(&r);
	up_free(u);
}

/* Cancel mid-stream: no more events, and the provider sees the client
 * go away. */
static void
test_mock_cancel(void **state)
{
	static const char body[] =
	    "{\"model\":\"gpt-4o-mini\",\"stream\":true,\"messages\":[{\"role\":"
	    "\"user\",\"content\":\"[mock chunks=200 delay=50]\"}]}";
	static const char body2[] =
	    "{\"model\":\"gpt-4o-mini\",\"stream\":true,\"messages\":[{\"role\":"
	    "\"user\",\"content\":\"[mock chunks=20 delay=60]\"}]}";
	struct ag_upstream *u;
	struct ag_up_event ev;
	char id[64], needle[96], *line;
	int ndata = 0;

	(void)state;
	if (!mock.up)
		skip();
	u = mock_up();
	assert_int_equal(start(u, 77, "POST", "/v1/chat/completions", body), 0);
	while (ndata < 3) {
		assert_true(next_ev(u, &ev, 10000));
		assert_true(ev.key == 77);
		assert_true(ev.type != AG_UP_END);
		if (ev.type == AG_UP_DATA) {
			if (ndata == 0) {
				char first[256];

				snprintf(first, sizeof(first), "%.*s",
				    (int)(ev.len < 255 ? ev.len : 255),
				    (char *)ev.data);
				assert_int_equal(sscanf(first,
				    "data: {\"id\":\"%63[^\"]\"", id), 1);
			}
			ndata++;
		}
		ag_up_event_free(&ev);
	}
	ag_up_cancel(u, 77);
	expect_quiet(u, 300);
	snprintf(needle, sizeof(needle), "\"id\":\"%s\"", id);
	line = mock_log_find("\"event\":\"client_closed\"", needle, 3000);
	assert_non_null(line);
	free(line);

	/* Two streams sharing one HTTP/2 connection: cancelling one resets
	 * it at the provider; the other runs on to its end. */
	assert_int_equal(start(u, 80, "POST", "/v1/chat/completions", body), 0);
	assert_int_equal(start(u, 81, "POST", "/v1/chat/completions", body2), 0);
	{
		struct resp r80 = { 0 }, r81 = { 0 };

		while (r80.ndata < 3) {
			assert_true(next_ev(u, &ev, 10000));
			if (ev.key == 80)
				resp_add(&r80, &ev, 80);
			else
				resp_add(&r81, &ev, 81);
			ag_up_event_free(&ev);
		}
		assert_false(r80.end);
		assert_int_equal(sscanf((char *)r80.body,
		    "data: {\"id\":\"%63[^\"]\"", id), 1);
		ag_up_cancel(u, 80);
		collect(u, 81, &r81, 15000, 1);
		assert_int_equal(r81.ok, 1);
		assert_non_null(strstr((char *)r81.body, "\"content\":\"tok19 \""));
		assert_non_null(strstr((char *)r81.body, "data: [DONE]"));
		snprintf(needle, sizeof(needle), "\"id\":\"%s\"", id);
		line = mock_log_find("\"event\":\"client_closed\"", needle,
		    3000);
		assert_non_null(line);
		/* Reset well before its 200 chunks were out. */
		assert_null(strstr(line, "\"after_chunks\":200"));
		free(line);
		resp_free(&r80);
		resp_free(&r81);
	}
	expect_quiet(u, 200);

	/* Free with a live stream in flight. */
	assert_int_equal(start(u, 78, "POST", "/v1/chat/completions", body), 0);
	assert_true(next_ev(u, &ev, 10000));
	ag_up_event_free(&ev);
	up_free(u);
}

/* Count the content chunks of a streamed chat completion.  (A plain
 * scan: ASan's strstr would measure the haystack on each call.) */
static size_t
count_toks(const struct resp *r)
{
	static const char tok[] = "\"content\":\"tok";
	size_t n = 0;

	for (size_t i = 0; i + sizeof(tok) - 1 <= r->len; i++)
		if (r->body[i] == '"' &&
		    memcmp(r->body + i, tok, sizeof(tok) - 1) == 0)
			n++;
	return n;
}

/*
 * A stream through the adapter goes over HTTP/1.1 where libcurl cannot
 * multiplex, and back-pressure holds it there too.  A short, fast stream
 * (8 chunks, about 2.3 KB) arrives in one read; windows from 1,000 bytes
 * up to past its size pause it at each of its events in turn, the last
 * ones included, with the rest (and the chunked end) in curl's buffer:
 * credited, it arrives whole and ends every time.
 */
static void
test_mock_stream_h1_held(void **state)
{
	struct ag_prov_op op = { .op = OP_CHAT, .model = "gpt-4o-mini",
	    .stream = 1, .resource = "" };
	const int n = 8;
	char body[192], needle[64], *line;

	(void)state;
#if !SWB_TEST_BUILD
	(void)op, (void)n, (void)body, (void)needle, (void)line;
	skip();
#else
	if (!mock.up)
		skip();
	for (size_t req = 1000; req <= 2600; req += 160) {
		struct ag_upstream *u = mock_up();
		struct ag_up_event ev;
		struct resp r = { 0 };
		size_t held = 0;
		uint64_t key = 700 + req;

		ag_up_test_limits(u, req, 248 * 1024);
		snprintf(body, sizeof(body), "{\"model\":\"gpt-4o-mini\","
		    "\"stream\":true,\"messages\":[{\"role\":\"user\","
		    "\"content\":\"h1 %zu [mock chunks=%d delay=0]\"}]}", req,
		    n);
		assert_int_equal(ag_up_start_op(u, key, &ch, &op,
		    "application/json", body, strlen(body), err, sizeof(err)), 0);
		/* Taken without credit until nothing more comes. */
		while (!r.end && next_ev(u, &ev, 400)) {
			resp_add(&r, &ev, key);
			if (ev.type == AG_UP_DATA)
				held += ev.len;
			ag_up_event_free(&ev);
		}
		/* Held at the window (an event may cross it), unless the
		 * whole stream fits. */
		if (!r.end)
			assert_true(held >= req && held <= req + 1024);
		ag_up_consumed(u, key, held);
		if (!r.end)
			collect(u, key, &r, 20000, 1);
		assert_int_equal(r.ok, 1);
		assert_int_equal(r.status, 200);
		assert_int_equal(count_toks(&r), n);
		assert_true(r.len >= 14);
		assert_memory_equal(r.body + r.len - 14, "data: [DONE]\n\n", 14);
		snprintf(needle, sizeof(needle), "h1 %zu [mock chunks=%d delay=0]",
		    req, n);
		line = mock_log_find(needle, NULL, 2000);
		assert_non_null(line);
		assert_non_null(strstr(line, curl_version_info(CURLVERSION_NOW)->
		    version_num >= 0x080100 ? "\"http\":\"2.0\"" :
		    "\"http\":\"1.1\""));
		free(line);
		resp_free(&r);
		up_free(u);
	}
#endif
}

/* A fast, long stream whose data is not consumed stops at the per-request
 * bound; consuming lets it run to the end, with nothing lost. */
static void
test_mock_backpressure(void **state)
{
	static const char body[] =
	    "{\"model\":\"gpt-4o-mini\",\"stream\":true,\"messages\":[{\"role\":"
	    "\"user\",\"content\":\"[mock chunks=12000 delay=0]\"}]}";
	struct ag_upstream *u;
	struct ag_up_event ev;
	struct resp r = { 0 };
	size_t held = 0;

	(void)state;
	if (!mock.up)
		skip();
	u = mock_up();
	assert_int_equal(start(u, 9, "POST", "/v1/chat/completions", body), 0);
	/* Take events without crediting them until they stop coming. */
	while (next_ev(u, &ev, 700)) {
		resp_add(&r, &ev, 9);
		if (ev.type == AG_UP_DATA)
			held += ev.len;
		ag_up_event_free(&ev);
		assert_false(r.end);
	}
	assert_true(held >= AG_UP_REQ_QUEUE_MAX);
	assert_true(held <= AG_UP_REQ_QUEUE_MAX + 64 * 1024);
	/* A little credit (still above half) does not resume it. */
	ag_up_consumed(u, 9, 1000);
	expect_quiet(u, 300);
	/* Credit below half does; then credit everything as it comes. */
	ag_up_consumed(u, 9, held - 1000);
	collect(u, 9, &r, 60000, 1);
	assert_int_equal(r.ok, 1);
	assert_int_equal(r.status, 200);
	assert_true(r.len >= 12000 * 100);
	assert_int_equal(count_toks(&r), 12000);
	assert_non_null(strstr((char *)r.body, "\"content\":\"tok11999 \""));
	assert_true(r.len >= 14);
	assert_memory_equal(r.body + r.len - 14, "data: [DONE]\n\n", 14);
	resp_free(&r);
	up_free(u);
}

/*
 * The same window on a whole (not streamed) answer, which goes over
 * HTTP/1.1 where libcurl cannot multiplex: held at the window, then
 * credited, it arrives whole and ends.
 */
static void
test_mock_backpressure_whole(void **state)
{
	static const char body[] =
	    "{\"model\":\"gpt-4o-mini\",\"messages\":[{\"role\":"
	    "\"user\",\"content\":\"[mock chunks=90000 delay=0]\"}]}";
	struct ag_prov_op op = { .op = OP_CHAT, .model = "gpt-4o-mini",
	    .stream = 0, .resource = "" };
	struct ag_upstream *u;
	struct ag_up_event ev;
	struct resp r = { 0 };
	size_t held = 0;

	(void)state;
	if (!mock.up)
		skip();
	u = mock_up();
	assert_int_equal(ag_up_start_op(u, 10, &ch, &op, "application/json",
	    body, strlen(body), err, sizeof(err)), 0);
	while (next_ev(u, &ev, 700)) {
		resp_add(&r, &ev, 10);
		if (ev.type == AG_UP_DATA)
			held += ev.len;
		ag_up_event_free(&ev);
		if (r.end)
			fail_msg("ended while held: status %ld, %zu bytes: %.200s",
			    r.status, r.len, r.body != NULL ? (char *)r.body : "");
	}
	assert_true(held >= AG_UP_REQ_QUEUE_MAX);
	ag_up_consumed(u, 10, held);
	collect(u, 10, &r, 60000, 1);
	assert_int_equal(r.ok, 1);
	assert_int_equal(r.status, 200);
	assert_non_null(strstr((char *)r.body, "tok89999 "));
	resp_free(&r);
	up_free(u);
}

/*
 * The total bound, with small test limits.  1) 64 KiB a request, 248 KiB
 * in all: A, B and C are each held by their own queue; A credited in full
 * while B and C still hold more than half the total stays paused, and
 * starts again when B goes away (cancelled, never credited).
 * 2) 64 KiB a request, 96 KiB in all: two streams stop at the total;
 * credited, both run to their end with nothing lost.
 */
static void
test_mock_total(void **state)
{
	static const char body[] =
	    "{\"model\":\"gpt-4o-mini\",\"stream\":true,\"messages\":[{\"role\":"
	    "\"user\",\"content\":\"[mock chunks=3000 delay=0]\"}]}";
	const size_t req = 64 * 1024, blk = 16 * 1024;
	struct ag_upstream *u;
	struct ag_up_event ev;
	struct resp ra = { 0 }, rb[2] = { { 0 }, { 0 } };
	size_t held[3] = { 0, 0, 0 };

	(void)state;
#if !SWB_TEST_BUILD
	(void)body, (void)req, (void)blk, (void)u, (void)ev, (void)ra;
	(void)rb, (void)held;
	skip();
#else
	if (!mock.up)
		skip();
	u = mock_up();
	ag_up_test_limits(u, req, 248 * 1024);
	assert_int_equal(start(u, 1, "POST", "/v1/chat/completions", body), 0);
	while (next_ev(u, &ev, 700)) {
		resp_add(&ra, &ev, 1);
		held[0] += ev.len;
		ag_up_event_free(&ev);
	}
	assert_false(ra.end);
	assert_true(held[0] >= req && held[0] <= req + blk);

	assert_int_equal(start(u, 2, "POST", "/v1/chat/completions", body), 0);
	assert_int_equal(start(u, 3, "POST", "/v1/chat/completions", body), 0);
	while (next_ev(u, &ev, 700)) {
		assert_true(ev.key == 2 || ev.key == 3);
		assert_true(ev.type != AG_UP_END);
		held[ev.key - 1] += ev.len;
		ag_up_event_free(&ev);
	}
	for (int i = 1; i < 3; i++)
		assert_true(held[i] >= req && held[i] <= req + blk);

	/* A's credit alone does not beat the total... */
	ag_up_consumed(u, 1, held[0]);
	expect_quiet(u, 300);
	/* ...B going away (C then holds under half) does. */
	ag_up_cancel(u, 2);
	assert_true(next_ev(u, &ev, 5000));
	resp_add(&ra, &ev, 1);
	ag_up_consumed(u, 1, ev.len);
	ag_up_event_free(&ev);
	ag_up_cancel(u, 3);
	collect(u, 1, &ra, 30000, 1);
	assert_int_equal(ra.ok, 1);
	assert_int_equal(count_toks(&ra), 3000);
	assert_memory_equal(ra.body + ra.len - 14, "data: [DONE]\n\n", 14);
	resp_free(&ra);

	ag_up_test_limits(u, req, 96 * 1024);
	held[0] = held[1] = 0;
	assert_int_equal(start(u, 4, "POST", "/v1/chat/completions", body), 0);
	assert_int_equal(start(u, 5, "POST", "/v1/chat/completions", body), 0);
	while (next_ev(u, &ev, 700)) {
		assert_true(ev.key == 4 || ev.key == 5);
		resp_add(&rb[ev.key - 4], &ev, ev.key);
		held[ev.key - 4] += ev.len;
		ag_up_event_free(&ev);
	}
	assert_false(rb[0].end || rb[1].end);
	assert_true(held[0] <= req + blk && held[1] <= req + blk);
	assert_true(held[0] + held[1] >= 96 * 1024);
	assert_true(held[0] + held[1] <= 96 * 1024 + 2 * blk);
	ag_up_consumed(u, 4, held[0]);
	ag_up_consumed(u, 5, held[1]);
	while (!rb[0].end || !rb[1].end) {
		assert_true(next_ev(u, &ev, 30000));
		assert_true(ev.key == 4 || ev.key == 5);
		resp_add(&rb[ev.key - 4], &ev, ev.key);
		if (ev.type == AG_UP_DATA)
			ag_up_consumed(u, ev.key, ev.len);
		ag_up_event_free(&ev);
	}
	for (int i = 0; i < 2; i++) {
		assert_int_equal(rb[i].ok, 1);
		assert_int_equal(count_toks(&rb[i]), 3000);
		resp_free(&rb[i]);
	}
	up_free(u);
#endif
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_patterns, each_setup),
		cmocka_unit_test_setup(test_auth_header, each_setup),
		cmocka_unit_test_setup(test_refusals, each_setup),
		cmocka_unit_test_setup(test_refused_connect, each_setup),
		cmocka_unit_test_setup(test_cancel, each_setup),
		cmocka_unit_test_setup(test_free_in_flight, each_setup),
		cmocka_unit_test_setup(test_op_paths, each_setup),
		cmocka_unit_test_setup(test_adapter_headers, each_setup),
		cmocka_unit_test_setup(test_adapter_refusals, each_setup),
		cmocka_unit_test_setup(test_mock_providers, each_setup),
		cmocka_unit_test_setup(test_mock_models, each_setup),
		cmocka_unit_test_setup(test_mock_idle_close, each_setup),
		cmocka_unit_test_setup(test_mock_stream, each_setup),
		cmocka_unit_test_setup(test_mock_stream_h1_held, each_setup),
		cmocka_unit_test_setup(test_mock_broken, each_setup),
		cmocka_unit_test_setup(test_mock_cancel, each_setup),
		cmocka_unit_test_setup(test_mock_backpressure, each_setup),
		cmocka_unit_test_setup(test_mock_backpressure_whole, each_setup),
		cmocka_unit_test_setup(test_mock_total, each_setup),
	};

	if (getenv("SWB_TEST_FILTER") != NULL)	/* one test, by name pattern */
		cmocka_set_test_filter(getenv("SWB_TEST_FILTER"));
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
