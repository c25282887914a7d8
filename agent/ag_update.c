/*
 * agent/ag_update: agentd's signed self-update, and its rollback.
 *
 * Fetch.  On update_available from the hub (when [update] auto = yes) or
 * `agentd update`, GET /files/agent/latest?os=&arch= and then the binary
 * the manifest names, from the hub's tunnel host and port over TLS pinned
 * exactly like the tunnel (the same pins, checked in the verify callback),
 * as lws HTTP clients in the tunnel's own loop: nothing blocks it (the
 * binary goes to disk piece by piece as it arrives).
 *
 * Checks — each refusal is one log line and the running binary stays:
 *   - the manifest's Ed25519 signature under the release key built in
 *     (make RELEASE_PK=...; only a test build may take [test] release_key);
 *   - its os/arch are this build's;
 *   - its version is newer than the running one (lib/release order): an
 *     older or equal one — a replayed manifest — is refused (no rollback
 *     attack); so is one that already failed here (state_dir/update.failed);
 *   - the file's size and SHA-256 are the manifest's.
 *
 * Install.  The file is written beside the executable as SELF.new;
 * state_dir/update.pending (the marker) records "OLD NEW"; then
 * plat_replace_binary() gives the running binary the second name SELF.old
 * and makes SELF the new one (renames on one file system: SELF always
 * names a whole binary).
 *
 * Restart and rollback (ag_update_reexec, once main has torn the tunnel
 * down).  The process forks a watchdog, then execs SELF with its own
 * arguments — the same pid, so a service manager sees no exit — with
 * SWB_UPDATE_FD naming the write end of a pipe whose read end only the
 * watchdog holds.  The new agentd, once a hub welcomed it (authenticated
 * tunnel up), writes "ok" there and removes the marker; the watchdog exits.
 * If instead the pipe closes without "ok" (the new binary could not start,
 * or died: the kernel closes its end whatever killed it) or [update]
 * deadline passes (the watchdog then kills it), the watchdog puts SELF.old
 * back (plat_restore_binary), records the version in update.failed so that
 * it is not installed again, removes the marker and execs the old binary
 * with the same arguments itself.  Someone other than the new binary must
 * notice, because a binary that cannot start runs none of our code; the
 * watchdog is a fork of the old agentd, which is known to work.  Under
 * systemd the new agentd is the main pid: when it dies the unit restarts
 * (Restart=on-failure) and finds SELF already restored.  A clean stop
 * (SIGTERM) during the probation tells the watchdog "stop": no rollback.
 *
 * A marker found at start with no SWB_UPDATE_FD (the binary was installed
 * by `agentd update`, or the host rebooted during a probation) puts the
 * process itself on probation: not online with a hub within the deadline,
 * it restores SELF.old and re-executes it.  While a marker waits for
 * its binary's first start, nothing is installed over it (`agentd update`
 * again, or a running agentd it was installed beside, refuses): SELF.old
 * must stay the binary known to work.
 *
 * Windows: the platform layer's replace and restore are used the same way;
 * the watchdog and exec are POSIX (a Windows service is restarted by the
 * service manager instead).
 */
#include "agent/ag_update.h"
#include "agent/ag_probe.h"
#include "agent/ag_version.h"
#include "agent/platform.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sodium.h>

#include "lib/clock.h"
#include "lib/log.h"
#include "lib/release.h"

char ag_version_stamp[48] = AG_VERSION_STAMP SWB_AGENT_VERSION;

const char *
ag_version(void)
{
	return ag_version_stamp + sizeof(AG_VERSION_STAMP) - 1;
}

#define MARKER		"update.pending"
#define FAILED		"update.failed"
#define SELF_MAX	(PATH_MAX)

enum { UP_IDLE, UP_MANIFEST, UP_BINARY };

struct ag_update {
	const struct ag_conf *cf;
	struct lws_context *ctx;
	struct lws *wsi;		/* the request in flight, or NULL */
	int state;			/* UP_* */
	int again;			/* announced while busy: check again */
	char body[RELEASE_JSON_MAX + 1];	/* the manifest as it arrives */
	size_t len;
	struct release r;		/* the verified manifest */
	int fd;				/* SELF.new while it arrives, or -1 */
	uint64_t got;
	crypto_hash_sha256_state h;
	int cmd;			/* run by agentd update */
	int result;			/* the command's exit code */
	enum ag_update_due due;
	/* Probation of this binary. */
	int probation;			/* a marker was found at start */
	int probation_fd;		/* the watchdog's pipe, or -1 */
	pid_t watchdog;			/* to reap once it exits, or 0 */
	int64_t probation_until;	/* monotonic ms; 0: the watchdog's */
};

/* What a restart needs after the tunnel (and the updater) are freed. */
static struct {
	char self[SELF_MAX];
	char old_version[32], new_version[32];
	char state_dir[AG_PATH_MAX];
	int64_t deadline_ms;
} rs;

static void
state_path(const char *dir, const char *name, char *out, size_t len)
{
	snprintf(out, len, "%s/%s", dir, name);
}

/* The version recorded in a small state file ("" when none). */
static void
read_state(const char *dir, const char *name, char *out, size_t len)
{
	char path[AG_PATH_MAX + 32];
	FILE *f;

	out[0] = '\0';
	state_path(dir, name, path, sizeof(path));
	if ((f = fopen(path, "re")) == NULL)
		return;
	if (fgets(out, (int)len, f) == NULL)
		out[0] = '\0';
	out[strcspn(out, "\n")] = '\0';
	fclose(f);
}

static int
write_state(const char *dir, const char *name, const char *text)
{
	char path[AG_PATH_MAX + 32];
	FILE *f;

	state_path(dir, name, path, sizeof(path));
	if ((f = fopen(path, "we")) == NULL)
		return -1;
	fputs(text, f);
	return fclose(f) == 0 ? 0 : -1;
}

static void
remove_state(const char *dir, const char *name)
{
	char path[AG_PATH_MAX + 32];

	state_path(dir, name, path, sizeof(path));
	(void)unlink(path);
}

/* ---- probation ---- */

static void
probation_init(struct ag_update *u)
{
	char mark[80], *colon;
	const char *env = getenv(AG_UPDATE_ENV);
	long fd;

	u->probation_fd = -1;
	read_state(u->cf->state_dir, MARKER, mark, sizeof(mark));
	if (env != NULL) {
		fd = strtol(env, &colon, 10);
		if (fd > 2 && *colon == ':' && fcntl((int)fd, F_SETFD,
		    FD_CLOEXEC) == 0) {
			u->probation_fd = (int)fd;
			u->watchdog = (pid_t)strtol(colon + 1, NULL, 10);
		}
		unsetenv(AG_UPDATE_ENV);
	}
	if (mark[0] == '\0' && u->probation_fd == -1)
		return;
	u->probation = 1;
	if (u->probation_fd == -1)
		u->probation_until = clock_mono_ms() + u->cf->update_deadline;
	log_info("update: version %s on probation: it must be online with "
	    "the hub within %lld ms or %s", ag_version(),
	    (long long)u->cf->update_deadline, u->probation_fd != -1 ?
	    "the watchdog rolls it back" : "it rolls itself back");
}

void
ag_update_online(struct ag_update *u)
{
	if (u == NULL || !u->probation)
		return;
	u->probation = 0;
	u->probation_until = 0;
	if (u->probation_fd != -1) {
		if (write(u->probation_fd, "ok", 2) != 2)
			log_warn("update: cannot tell the watchdog: %s",
			    strerror(errno));
		close(u->probation_fd);
		u->probation_fd = -1;
	}
	remove_state(u->cf->state_dir, MARKER);
	log_info("update: version %s confirmed: online with the hub",
	    ag_version());
}

void
ag_update_stopping(struct ag_update *u)
{
	if (u != NULL && u->probation_fd != -1) {
		(void)write(u->probation_fd, "stop", 4);
		close(u->probation_fd);
		u->probation_fd = -1;
	}
}

enum ag_update_due
ag_update_due(struct ag_update *u)
{
	int st;

	if (u == NULL)
		return AG_UPD_NONE;
	if (u->watchdog > 0 && u->probation_fd == -1 &&
	    waitpid(u->watchdog, &st, WNOHANG) != 0)
		u->watchdog = 0;		/* reaped (or not ours) */
	if (u->probation && u->probation_until != 0 &&
	    clock_mono_ms() > u->probation_until && u->due == AG_UPD_NONE) {
		char mark[80];

		read_state(u->cf->state_dir, MARKER, mark, sizeof(mark));
		log_warn("update: version %s was not online with the hub within "
		    "%lld ms: rolling back", ag_version(),
		    (long long)u->cf->update_deadline);
		snprintf(rs.new_version, sizeof(rs.new_version), "%s",
		    ag_version());
		snprintf(rs.old_version, sizeof(rs.old_version), "%.*s",
		    (int)strcspn(mark, " "), mark);
		u->due = AG_UPD_ROLLBACK;
	}
	return u->due;
}

/* ---- fetching ---- */

static void
refuse(struct ag_update *u, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
refuse(struct ag_update *u, const char *fmt, ...)
{
	char buf[300];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	log_warn("update refused, keeping version %s: %s", ag_version(), buf);
	u->result = 1;
}

static int start(struct ag_update *u, const char *path);

/* Back to idle; a pending announcement starts the next check. */
static void
idle(struct ag_update *u)
{
	char path[SELF_MAX + 8];

	u->wsi = NULL;
	u->state = UP_IDLE;
	if (u->fd != -1) {
		close(u->fd);
		u->fd = -1;
		snprintf(path, sizeof(path), "%s.new", rs.self);
		(void)unlink(path);
	}
	if (u->again && u->due == AG_UPD_NONE) {
		u->again = 0;
		(void)start(u, NULL);
	}
}

/* The manifest arrived: check it, then fetch the binary. */
static void
manifest_done(struct ag_update *u)
{
	char err[200], failed[40], path[SELF_MAX + 8];
	struct release *r = &u->r;

	u->wsi = NULL;
	if (release_from_json(u->body, u->len, r, err, sizeof(err)) != 0) {
		refuse(u, "the manifest is malformed: %s", err);
		goto out;
	}
	if (release_verify(r, u->cf->release_pk) != 0) {
		refuse(u, "bad signature on the manifest of %s (not signed by "
		    "the release key)", r->version);
		goto out;
	}
	if (strcmp(r->os, release_host_os()) != 0 ||
	    strcmp(r->arch, release_host_arch()) != 0) {
		refuse(u, "the manifest of %s is for %s/%s, this is %s/%s",
		    r->version, r->os, r->arch, release_host_os(),
		    release_host_arch());
		goto out;
	}
	if (release_version_cmp(r->version, ag_version()) <= 0) {
		refuse(u, "version %s is not newer than the running %s",
		    r->version, ag_version());
		u->result = u->cmd ? 2 : 1;
		goto out;
	}
	read_state(u->cf->state_dir, FAILED, failed, sizeof(failed));
	if (strcmp(failed, r->version) == 0) {
		refuse(u, "version %s failed to come online here before and "
		    "was rolled back; waiting for a newer one", r->version);
		goto out;
	}
	snprintf(path, sizeof(path), "%s.new", rs.self);
	u->fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0700);
	if (u->fd == -1) {
		refuse(u, "cannot write %s: %s", path, strerror(errno));
		goto out;
	}
	u->got = 0;
	crypto_hash_sha256_init(&u->h);
	log_info("update: manifest of %s verified; downloading %s (%llu "
	    "bytes)", r->version, r->path, (unsigned long long)r->size);
	if (start(u, r->path) == 0)
		return;
	refuse(u, "cannot start the download of %s", r->path);
out:
	idle(u);
}

/* The binary arrived whole: check, install, have main restart. */
static void
binary_done(struct ag_update *u)
{
	unsigned char h[32];
	char hex[65], path[SELF_MAX + 8], err[300], mark[80];
	struct release *r = &u->r;
	int rc;

	u->wsi = NULL;
	crypto_hash_sha256_final(&u->h, h);
	sodium_bin2hex(hex, sizeof(hex), h, sizeof(h));
	if (u->got != r->size) {
		refuse(u, "%s: got %llu bytes, the manifest says %llu",
		    r->version, (unsigned long long)u->got,
		    (unsigned long long)r->size);
		goto out;
	}
	if (strcmp(hex, r->sha256) != 0) {
		refuse(u, "%s: SHA-256 mismatch (the file is %s, the signed "
		    "manifest says %s): tampered or corrupt", r->version, hex,
		    r->sha256);
		goto out;
	}
	if (fsync(u->fd) != 0 || close(u->fd) != 0) {
		u->fd = -1;
		refuse(u, "writing %s.new: %s", rs.self, strerror(errno));
		goto out;
	}
	u->fd = -1;
	snprintf(mark, sizeof(mark), "%s %s\n", ag_version(), r->version);
	if (write_state(u->cf->state_dir, MARKER, mark) != 0) {
		refuse(u, "cannot write %s/%s: %s", u->cf->state_dir, MARKER,
		    strerror(errno));
		goto out;
	}
	snprintf(path, sizeof(path), "%s.new", rs.self);
	rc = plat_replace_binary(rs.self, path, err, sizeof(err));
	if (rc != 0) {
		remove_state(u->cf->state_dir, MARKER);
		refuse(u, "%s: cannot install: %s", r->version, rc == 1 ?
		    "the OS completes it at the next reboot" : err);
		(void)unlink(path);
		goto out;
	}
	snprintf(rs.old_version, sizeof(rs.old_version), "%s", ag_version());
	snprintf(rs.new_version, sizeof(rs.new_version), "%s", r->version);
	log_info("update: %s verified (%llu bytes, sha256 %s) and installed "
	    "as %s (the old binary is %s.old)%s", r->version,
	    (unsigned long long)r->size, hex, rs.self, rs.self, u->cmd ?
	    "; it runs, on probation, at agentd's next start" :
	    "; restarting into it");
	u->result = 0;
	u->due = u->cmd ? AG_UPD_NONE : AG_UPD_RESTART;
	u->state = UP_IDLE;
	return;
out:
	idle(u);
}

int
ag_update_owns(const struct ag_update *u, const void *opaque)
{
	return u != NULL && opaque == (const void *)u;
}

int
ag_update_callback(struct lws *wsi, enum lws_callback_reasons reason,
    void *user, void *in, size_t len)
{
	struct ag_update *u = wsi ? lws_get_opaque_user_data(wsi) : NULL;
	char buf[LWS_PRE + 4096], *px = buf + LWS_PRE;
	int n = (int)sizeof(buf) - LWS_PRE;
	unsigned status;

	if (u == NULL || u->wsi != wsi)
		return reason == LWS_CALLBACK_OPENSSL_PERFORM_SERVER_CERT_VERIFICATION;
	switch (reason) {
	case LWS_CALLBACK_OPENSSL_PERFORM_SERVER_CERT_VERIFICATION:
		return ag_pins_verify(u->cf, user);	/* the tunnel's pins */
	case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
		refuse(u, "cannot reach the hub's files: %s", in != NULL ?
		    (const char *)in : "connection failed");
		idle(u);
		return 0;
	case LWS_CALLBACK_ESTABLISHED_CLIENT_HTTP:
		status = lws_http_client_http_response(wsi);
		if (status != 200) {
			refuse(u, "the hub answered HTTP %u for %s", status,
			    u->state == UP_MANIFEST ? "the manifest" :
			    u->r.path);
			if (status == 404 && u->state == UP_MANIFEST)
				u->result = u->cmd ? 2 : 1;
			idle(u);
			return -1;
		}
		return 0;
	case LWS_CALLBACK_RECEIVE_CLIENT_HTTP_READ:
		if (u->state == UP_MANIFEST) {
			if (u->len + len >= sizeof(u->body)) {
				refuse(u, "the manifest is larger than %d bytes",
				    RELEASE_JSON_MAX);
				idle(u);
				return -1;
			}
			memcpy(u->body + u->len, in, len);
			u->len += len;
			return 0;
		}
		if (u->got + len > u->r.size) {
			refuse(u, "%s: more than the %llu bytes the manifest "
			    "says", u->r.version, (unsigned long long)u->r.size);
			idle(u);
			return -1;
		}
		crypto_hash_sha256_update(&u->h, in, len);
		if (write(u->fd, in, len) != (ssize_t)len) {
			refuse(u, "writing %s.new: %s", rs.self, strerror(errno));
			idle(u);
			return -1;
		}
		u->got += len;
		return 0;
	case LWS_CALLBACK_RECEIVE_CLIENT_HTTP:
		if (lws_http_client_read(wsi, &px, &n) < 0)
			return -1;
		return 0;
	case LWS_CALLBACK_COMPLETED_CLIENT_HTTP:
		if (u->state == UP_MANIFEST)
			manifest_done(u);
		else
			binary_done(u);
		return -1;	/* one request per connection */
	case LWS_CALLBACK_CLOSED_CLIENT_HTTP:
		refuse(u, "the hub closed the connection early");
		idle(u);
		return 0;
	default:
		break;
	}
	return lws_callback_http_dummy(wsi, reason, user, in, len);
}

/* A binary installed earlier has not come online yet (the marker is
 * there and this process is not the one on probation: `agentd update`
 * installed it beside a running agentd, or it waits for the next start).
 * Installing over it would make the unconfirmed binary SELF.old and lose
 * the one known to work, so nothing is installed until it is confirmed
 * or rolled back. */
static int
pending(struct ag_update *u)
{
	char mark[80];
	const char *installed;

	if (u->probation)
		return 0;
	read_state(u->cf->state_dir, MARKER, mark, sizeof(mark));
	if (mark[0] == '\0')
		return 0;
	installed = strchr(mark, ' ');		/* "OLD NEW" */
	refuse(u, "version %s installed earlier has not been online with the "
	    "hub yet (%s/%s): start agentd to confirm or roll it back first",
	    installed != NULL ? installed + 1 : mark, u->cf->state_dir, MARKER);
	return 1;
}

/* One GET of path (NULL: the manifest) on the tunnel's host and port. */
static int
start(struct ag_update *u, const char *path)
{
	static char latest[128];
	struct lws_client_connect_info ci;

	if (!u->cf->have_release_pk) {
		refuse(u, "this build has no release key (make RELEASE_PK=...)");
		return -1;
	}
	if (rs.self[0] == '\0') {
		refuse(u, "the path of the running executable is unknown");
		return -1;
	}
	if (path == NULL && pending(u))
		return -1;
	if (path == NULL) {
		snprintf(latest, sizeof(latest), "%s?os=%s&arch=%s",
		    RELEASE_LATEST_PATH, release_host_os(), release_host_arch());
		path = latest;
		u->state = UP_MANIFEST;
		u->len = 0;
	} else
		u->state = UP_BINARY;
	memset(&ci, 0, sizeof(ci));
	ci.context = u->ctx;
	ci.address = u->cf->hub_host;
	ci.port = u->cf->hub_port;
	ci.path = path;
	ci.host = u->cf->hub_host;
	ci.origin = u->cf->hub_host;
	ci.method = "GET";
	ci.alpn = "http/1.1";
	ci.protocol = AG_UPDATE_PROTOCOL;
	ci.local_protocol_name = AG_UPDATE_PROTOCOL;
	ci.ssl_connection = LCCSCF_USE_SSL |
	    LCCSCF_SKIP_SERVER_CERT_HOSTNAME_CHECK;
	ci.opaque_user_data = u;
	ci.pwsi = &u->wsi;
	if (lws_client_connect_via_info(&ci) == NULL) {
		u->wsi = NULL;
		u->state = UP_IDLE;
		return -1;
	}
	return 0;
}

void
ag_update_available(struct ag_update *u, const char *version)
{
	if (u == NULL)
		return;
	if (!u->cf->update_auto) {
		log_info("update: the hub says agentd %s is available; [update] "
		    "auto is off (agentd update installs it)", version);
		return;
	}
	log_info("update: the hub says agentd %s is available; checking",
	    version);
	if (u->state != UP_IDLE || u->due != AG_UPD_NONE) {
		u->again = 1;
		return;
	}
	if (start(u, NULL) != 0)
		idle(u);
}

/* The updater of a running agentd, or (cmd) of `agentd update`, which is
 * never on probation itself. */
static struct ag_update *
update_new(const struct ag_conf *cf, struct lws_context *ctx, int cmd)
{
	struct ag_update *u = calloc(1, sizeof(*u));
	char err[300];

	if (u == NULL)
		return NULL;
	u->cf = cf;
	u->ctx = ctx;
	u->fd = -1;
	u->probation_fd = -1;
	u->cmd = cmd;
	if (rs.self[0] == '\0' && plat_self_path(rs.self, sizeof(rs.self),
	    err, sizeof(err)) != 0) {
		rs.self[0] = '\0';
		log_warn("update: no self-updates: %s", err);
	}
	snprintf(rs.state_dir, sizeof(rs.state_dir), "%s", cf->state_dir);
	rs.deadline_ms = cf->update_deadline;
	if (cmd)
		return u;
	probation_init(u);
	if (cf->update_auto && !cf->have_release_pk)
		log_warn("update: [update] auto = yes, but this build has no "
		    "release key (make RELEASE_PK=...): updates are refused");
	return u;
}

struct ag_update *
ag_update_new(const struct ag_conf *cf, struct lws_context *ctx)
{
	return update_new(cf, ctx, 0);
}

void
ag_update_free(struct ag_update *u)
{
	if (u == NULL)
		return;
	if (u->fd != -1) {
		char path[SELF_MAX + 8];

		close(u->fd);
		snprintf(path, sizeof(path), "%s.new", rs.self);
		(void)unlink(path);
	}
	if (u->probation_fd != -1)
		close(u->probation_fd);
	free(u);
}

/* ---- restart ---- */

/* Put SELF.old back, remember the version failed, exec the old binary. */
static void
rollback(const char *why, char **argv)
{
	char err[300], failed[40];

	if (plat_restore_binary(rs.self, err, sizeof(err)) != 0) {
		log_error("update: rolling back %s failed: %s", rs.new_version,
		    err);
		_exit(1);
	}
	snprintf(failed, sizeof(failed), "%s\n", rs.new_version);
	(void)write_state(rs.state_dir, FAILED, failed);
	remove_state(rs.state_dir, MARKER);
	log_warn("update: version %s %s: rolled back to %s (pid %d "
	    "re-executes it)", rs.new_version, why, rs.old_version[0] ?
	    rs.old_version : "the previous binary", (int)getpid());
	execv(rs.self, argv);
	log_error("update: exec %s: %s", rs.self, strerror(errno));
	_exit(1);
}

/* The watchdog: a fork of the old agentd that waits for the new one's
 * "ok" and rolls back when it does not come. */
static _Noreturn void
watchdog(int rfd, pid_t agent, char **argv)
{
	int64_t until = clock_mono_ms() + rs.deadline_ms, left;
	struct pollfd pfd = { rfd, POLLIN, 0 };
	char buf[8];
	size_t got = 0;
	ssize_t n;
	int r;

	signal(SIGHUP, SIG_IGN);
	signal(SIGINT, SIG_IGN);
	for (;;) {
		left = until - clock_mono_ms();
		if (left <= 0) {
			(void)kill(agent, SIGKILL);
			rollback("was not online with the hub within the "
			    "[update] deadline", argv);
		}
		r = poll(&pfd, 1, (int)(left > 1000 ? 1000 : left));
		if (r == -1 && errno == EINTR)
			continue;
		if (r <= 0)
			continue;
		n = read(rfd, buf + got, sizeof(buf) - 1 - got);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			rollback("exited before reaching the hub", argv);
		got += (size_t)n;
		buf[got] = '\0';
		if (strncmp(buf, "ok", 2) == 0 || strncmp(buf, "stop", 4) == 0)
			_exit(0);
		if (got >= sizeof(buf) - 1)
			rollback("sent nonsense to its watchdog", argv);
	}
}

void
ag_update_reexec(const struct ag_conf *cf, enum ag_update_due what,
    char **argv)
{
	char env[48];
	int p[2];
	pid_t pid;

	(void)cf;
	fflush(NULL);
	if (what == AG_UPD_ROLLBACK)
		rollback("was not online with the hub in time", argv);
	if (pipe(p) != 0 || fcntl(p[0], F_SETFD, FD_CLOEXEC) != 0) {
		log_error("update: pipe: %s", strerror(errno));
		return;
	}
	if ((pid = fork()) == -1) {
		log_error("update: fork: %s", strerror(errno));
		close(p[0]);
		close(p[1]);
		return;
	}
	if (pid == 0) {
		close(p[1]);
		watchdog(p[0], getppid(), argv);
	}
	close(p[0]);
	snprintf(env, sizeof(env), "%d:%d", p[1], (int)pid);
	setenv(AG_UPDATE_ENV, env, 1);
	log_info("update: re-executing %s (%s) with the same arguments; "
	    "watchdog pid %d", rs.self, rs.new_version, (int)pid);
	fflush(NULL);
	execv(rs.self, argv);
	/* The watchdog sees the pipe close and rolls back. */
	log_error("update: exec %s: %s", rs.self, strerror(errno));
	_exit(1);
}

/* ---- agentd update ---- */

static const struct lws_protocols cmd_protocols[] = {
	{ AG_UPDATE_PROTOCOL, ag_update_callback, 0, 4096, 0, NULL, 0 },
	{ NULL, NULL, 0, 0, 0, NULL, 0 },
};

int
ag_update_cmd(int argc, char **argv)
{
	static struct ag_conf cf;
	struct lws_context_creation_info info;
	struct lws_context *ctx;
	struct plat_paths pp;
	struct ag_update *u;
	const char *conf_path;
	char err[1024];
	int ch, rc;

	plat_default_paths(&pp);
	conf_path = pp.config;
	optind = 1;
	while ((ch = getopt(argc, argv, "c:")) != -1) {
		if (ch != 'c') {
			fprintf(stderr, "usage: agentd update [-c config]\n");
			return 2;
		}
		conf_path = optarg;
	}
	log_init("agentd", "update", LOG_LVL_INFO);
	if (ag_conf_load(conf_path, &cf, err, sizeof(err)) != 0) {
		fprintf(stderr, "agentd: %s\n", err);
		return 1;
	}
	sodium_memzero(cf.channels, sizeof(cf.channels));
	lws_set_log_level(LLL_ERR, NULL);
	memset(&info, 0, sizeof(info));
	info.port = CONTEXT_PORT_NO_LISTEN;
	info.protocols = cmd_protocols;
	info.options = LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
#if SWB_TEST_BUILD
	if (cf.ca_file[0] != '\0')
		info.client_ssl_ca_filepath = cf.ca_file;
#endif
	if ((ctx = lws_create_context(&info)) == NULL) {
		fprintf(stderr, "agentd: cannot create the TLS client context\n");
		return 1;
	}
	if ((u = update_new(&cf, ctx, 1)) == NULL) {
		lws_context_destroy(ctx);
		return 1;
	}
	u->result = 1;
	if (start(u, NULL) == 0)
		while (u->state != UP_IDLE)
			if (lws_service(ctx, 0) < 0)
				break;
	rc = u->result;
	if (rc == 2)
		printf("agentd %s is up to date\n", ag_version());
	else if (rc == 0)
		printf("installed agentd %s; restart agentd to run it\n",
		    rs.new_version);
	ag_update_free(u);
	lws_context_destroy(ctx);
	return rc == 2 ? 0 : rc;
}
