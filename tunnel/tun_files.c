/*
 * tunnel/tun_files: agentd's releases on the tunnel listener, beside
 * GET /probe, where agents reach the hub over their pinned TLS:
 *
 *   GET /files/agent/latest?os=OS&arch=ARCH  the signed manifest of the
 *       last build published for that platform ([release] dir, file
 *       agent-OS-ARCH.json, written by hubctl release publish), as is
 *   GET /files/agent/NAME  a published binary (lws sends the file in
 *       pieces from its loop)
 *
 * and the update_available frame (lib/frame.h) that tells agents about a
 * release: at hello, when the manifest for the agent's platform is newer
 * than the version it reported; and to every online agent of a platform
 * when the operator announces one (hubctl release publish/announce).  The
 * tunnel never holds the release key and never vouches for a manifest:
 * agentd checks the signature, the hash, the size and that the version is
 * newer.  The manifest files are small and read when asked for.
 */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "tunnel/tun.h"
#include "lib/log.h"
#include "lib/release.h"

/* [release] dir made absolute (hubctl may run elsewhere). */
static void
release_dir(char *out, size_t len)
{
	const char *d = tun_env->conf.rel_dir;
	char cwd[PATH_MAX];

	if (d[0] == '/' || getcwd(cwd, sizeof(cwd)) == NULL)
		snprintf(out, len, "%s", d);
	else
		snprintf(out, len, "%s/%s", cwd, d);
}

/* Read the manifest of os/arch: its bytes into buf (NUL-terminated) and
 * parsed into *r.  0, or -1 (none, or not a manifest: logged). */
static int
manifest_load(const char *os, const char *arch, char *buf, size_t cap,
    size_t *len, struct release *r)
{
	char path[PATH_MAX + 64], err[160];
	ssize_t n;
	int fd;

	if (!release_name_valid(os) || !release_name_valid(arch))
		return -1;
	snprintf(path, sizeof(path), "%s/agent-%s-%s.json",
	    tun_env->conf.rel_dir, os, arch);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)) == -1) {
		if (errno != ENOENT)
			log_warn("release manifest %s: %s", path, strerror(errno));
		return -1;
	}
	n = read(fd, buf, cap - 1);
	close(fd);
	if (n <= 0 || (size_t)n >= cap - 1) {
		log_warn("release manifest %s: empty, unreadable or too large",
		    path);
		return -1;
	}
	buf[n] = '\0';
	*len = (size_t)n;
	if (release_from_json(buf, *len, r, err, sizeof(err)) != 0) {
		log_warn("release manifest %s: %s", path, err);
		return -1;
	}
	return 0;
}

static int
answer(struct lws *wsi, unsigned status, const char *type, const char *body,
    size_t blen)
{
	unsigned char hdr[LWS_PRE + 512], *start = hdr + LWS_PRE, *p = start,
	    *end = hdr + sizeof(hdr) - 1;
	unsigned char *out = malloc(LWS_PRE + blen + 1);
	int rc = -1;

	if (out == NULL)
		return -1;
	memcpy(out + LWS_PRE, body, blen);
	if (lws_add_http_common_headers(wsi, status, type, (lws_filepos_t)blen,
	    &p, end) == 0 &&
	    lws_finalize_write_http_header(wsi, start, &p, end) == 0 &&
	    lws_write(wsi, out + LWS_PRE, blen, LWS_WRITE_HTTP_FINAL) ==
	    (int)blen)
		rc = lws_http_transaction_completed(wsi) ? -1 : 0;
	free(out);
	return rc;
}

int
tun_files_http(struct lws *wsi, const char *uri)
{
	char os[64], arch[64], buf[RELEASE_JSON_MAX + 2], path[PATH_MAX + 128];
	const char *vo, *va, *name;
	struct release r;
	size_t len;
	int n;

	if (strcmp(uri, RELEASE_LATEST_PATH) == 0) {
		vo = lws_get_urlarg_by_name(wsi, "os=", os, sizeof(os));
		va = lws_get_urlarg_by_name(wsi, "arch=", arch, sizeof(arch));
		if (vo == NULL || va == NULL || !release_name_valid(vo) ||
		    !release_name_valid(va)) {
			static const char e[] = "{\"error\":\"os and arch are "
			    "required ([a-z0-9_])\"}";
			return answer(wsi, HTTP_STATUS_BAD_REQUEST,
			    "application/json", e, sizeof(e) - 1);
		}
		if (manifest_load(vo, va, buf, sizeof(buf), &len, &r) != 0) {
			static const char e[] = "{\"error\":\"no release for "
			    "this platform\"}";
			return answer(wsi, HTTP_STATUS_NOT_FOUND,
			    "application/json", e, sizeof(e) - 1);
		}
		return answer(wsi, HTTP_STATUS_OK, "application/json", buf, len);
	}
	name = uri + strlen(RELEASE_FILES_PREFIX);
	if (!release_file_valid(name)) {
		lws_return_http_status(wsi, HTTP_STATUS_NOT_FOUND, NULL);
		return -1;
	}
	snprintf(path, sizeof(path), "%s/%s", tun_env->conf.rel_dir, name);
	n = lws_serve_http_file(wsi, path, "application/octet-stream", NULL, 0);
	if (n < 0) {
		/* lws answered 404 (or the client went away). */
		return -1;
	}
	return n > 0 && lws_http_transaction_completed(wsi) ? -1 : 0;
}

/* Tell one agent a release is there. */
static int
tell(struct tun_conn *c, const struct release *r)
{
	struct frame_enc e;

	frame_enc_begin(&e, FRAME_UPDATE_AVAILABLE, 0, 1);
	frame_enc_cstr(&e, "version", r->version);
	if (tun_send(c, &e) != 0)
		return -1;
	log_info("agent %llu (%s %s/%s): update_available %s",
	    (unsigned long long)c->agent_id, c->version[0] ? c->version : "?",
	    c->os, c->arch, r->version);
	return 0;
}

void
tun_files_hello(struct tun_conn *c)
{
	char buf[RELEASE_JSON_MAX + 2];
	struct release r;
	size_t len;

	if (c->os[0] == '\0' || c->arch[0] == '\0' || c->told_update ||
	    manifest_load(c->os, c->arch, buf, sizeof(buf), &len, &r) != 0)
		return;
	if (release_version_cmp(r.version, c->version) > 0 && tell(c, &r) == 0)
		c->told_update = 1;
}

/* release info | release announce OS ARCH (hubctl release ...). */
void
tun_files_admin(uint64_t id, int argc, char **argv)
{
	char buf[RELEASE_JSON_MAX + 2], dir[PATH_MAX + HUB_PATH_MAX + 2];
	char key[PATH_MAX + HUB_PATH_MAX + 2];
	char cwd[PATH_MAX], *s;
	struct release r;
	json_t *o;
	size_t len;
	int n = 0;

	if (argc == 2 && strcmp(argv[1], "info") == 0) {
		release_dir(dir, sizeof(dir));
		if (tun_env->conf.rel_key[0] == '/' ||
		    getcwd(cwd, sizeof(cwd)) == NULL)
			snprintf(key, sizeof(key), "%s", tun_env->conf.rel_key);
		else
			snprintf(key, sizeof(key), "%s/%s", cwd,
			    tun_env->conf.rel_key);
		o = json_pack("{s:b, s:s, s:s}", "ok", 1, "dir", dir, "key", key);
	} else if (argc == 4 && strcmp(argv[1], "announce") == 0) {
		if (manifest_load(argv[2], argv[3], buf, sizeof(buf), &len,
		    &r) != 0) {
			child_admin_error(tun_env, id, "no release published for "
			    "%.15s/%.15s", argv[2], argv[3]);
			return;
		}
		/* Every online agent of the platform hears of it; each decides
		 * (and refuses what is not newer than itself). */
		for (struct tun_conn *c = tun_conns; c != NULL; c = c->next)
			if (c->state == TC_ONLINE && strcmp(c->os, r.os) == 0 &&
			    strcmp(c->arch, r.arch) == 0 && tell(c, &r) == 0)
				n++;
		o = json_pack("{s:b, s:s, s:s, s:i}", "ok", 1, "message",
		    "announced", "version", r.version, "agents", n);
	} else {
		child_admin_error(tun_env, id, "usage: release info | release "
		    "announce OS ARCH");
		return;
	}
	s = o != NULL ? json_dumps(o, JSON_COMPACT) : NULL;
	json_decref(o);
	child_admin_reply(tun_env, id, s != NULL ? s : "{\"ok\":false}");
	free(s);
}
