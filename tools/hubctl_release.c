/*
 * tools/hubctl_release: `hubctl release ...`, agentd's signed updates.
 *
 *   release key      print the release key's public half (the key file,
 *                    [release] key, is created when missing), which
 *                    agentd is built with (make RELEASE_PK=...)
 *   release publish FILE --version V --os OS --arch ARCH [--no-announce]
 *                    copy FILE into [release] dir as agentd-V-OS-ARCH,
 *                    sign its manifest (lib/release) with the release key,
 *                    make it the latest for OS/ARCH, and have the tunnel
 *                    tell that platform's online agents (update_available)
 *   release announce OS ARCH
 *                    tell them again (after a hand edit, say)
 *
 * The signing happens here, in hubctl, not in hubd: the release key is read
 * only while publishing, by whoever may use hubd.sock (root, or the hub's
 * operator), and no hubd process ever holds it.  hubd says where the key
 * and the directory are (`release info`, answered by the tunnel from the
 * INI) so hubctl needs no copy of the config.
 */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sodium.h>
#include "child/hubkey.h"
#include "lib/release.h"
#include "tools/hubctl.h"

/* Ask hubd; the answer's "ok" checked (its error printed).  NULL on error. */
static json_t *
ask_ok(const char *sock, const char *req, size_t len)
{
	json_t *o = hubctl_ask(sock, req, len);
	const char *e;

	if (o == NULL)
		return NULL;
	if (!json_is_true(json_object_get(o, "ok"))) {
		e = json_string_value(json_object_get(o, "error"));
		fprintf(stderr, "hubctl: %s\n", e ? e : "failed");
		json_decref(o);
		return NULL;
	}
	return o;
}

/* Where the key and the releases are, from hubd. */
static int
release_info(const char *sock, char *key, size_t klen, char *dir, size_t dlen)
{
	static const char req[] = "release\0info";
	json_t *o = ask_ok(sock, req, sizeof(req));
	const char *k, *d;

	if (o == NULL)
		return -1;
	k = json_string_value(json_object_get(o, "key"));
	d = json_string_value(json_object_get(o, "dir"));
	if (k == NULL || d == NULL || k[0] == '\0' || d[0] == '\0') {
		fprintf(stderr, "hubctl: hubd did not say where [release] key "
		    "and dir are\n");
		json_decref(o);
		return -1;
	}
	snprintf(key, klen, "%s", k);
	snprintf(dir, dlen, "%s", d);
	json_decref(o);
	return 0;
}

static int
load_key(const char *path, struct hub_key *k)
{
	char err[512];

	if (hub_key_load(path, k, err, sizeof(err)) != 0) {
		fprintf(stderr, "hubctl: release key: %s\n", err);
		return -1;
	}
	return 0;
}

static int
cmd_key(const char *sock, int as_json)
{
	char key[PATH_MAX], dir[PATH_MAX];
	char b64[sodium_base64_ENCODED_LEN(32, sodium_base64_VARIANT_ORIGINAL)];
	struct hub_key k;

	if (release_info(sock, key, sizeof(key), dir, sizeof(dir)) != 0 ||
	    load_key(key, &k) != 0)
		return 1;
	sodium_bin2base64(b64, sizeof(b64), k.pk, sizeof(k.pk),
	    sodium_base64_VARIANT_ORIGINAL);
	hub_key_wipe(&k);
	if (as_json)
		printf("{\"ok\": true, \"public_key\": \"%s\", \"key_file\": "
		    "\"%s\"}\n", b64, key);
	else
		printf("%s\n", b64);
	return fflush(stdout) == 0 ? 0 : 1;
}

/* mkdir -p dir (0755: the tunnel, maybe another user, reads it). */
static int
make_dir(const char *dir)
{
	char p[PATH_MAX];

	if (snprintf(p, sizeof(p), "%s", dir) >= (int)sizeof(p))
		return -1;
	for (char *s = p + 1; ; s++) {
		int end = *s == '\0';

		if (*s != '/' && !end)
			continue;
		*s = '\0';
		if (mkdir(p, 0755) != 0 && errno != EEXIST)
			return -1;
		if (end)
			return 0;
		*s = '/';
	}
}

/* Copy src to dst (through dst.tmp, renamed when whole), hashing it. */
static int
copy_hash(const char *src, const char *dst, uint64_t *size, char hex[65])
{
	crypto_hash_sha256_state st;
	unsigned char buf[65536], h[32];
	char tmp[PATH_MAX + 256];
	ssize_t n;
	int in, out;

	*size = 0;
	if ((in = open(src, O_RDONLY | O_CLOEXEC)) == -1) {
		fprintf(stderr, "hubctl: %s: %s\n", src, strerror(errno));
		return -1;
	}
	snprintf(tmp, sizeof(tmp), "%s.tmp", dst);
	out = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (out == -1) {
		fprintf(stderr, "hubctl: %s: %s\n", tmp, strerror(errno));
		close(in);
		return -1;
	}
	crypto_hash_sha256_init(&st);
	while ((n = read(in, buf, sizeof(buf))) > 0) {
		crypto_hash_sha256_update(&st, buf, (size_t)n);
		if (write(out, buf, (size_t)n) != n)
			break;
		*size += (uint64_t)n;
	}
	if (n != 0 || fsync(out) != 0 || close(out) != 0 ||
	    rename(tmp, dst) != 0) {
		fprintf(stderr, "hubctl: copying %s to %s: %s\n", src, dst,
		    strerror(errno));
		close(in);
		unlink(tmp);
		return -1;
	}
	close(in);
	crypto_hash_sha256_final(&st, h);
	sodium_bin2hex(hex, 65, h, sizeof(h));
	return 0;
}

static int
write_text(const char *path, const char *text)
{
	char tmp[PATH_MAX + 256];
	size_t len = strlen(text);
	int fd;

	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd == -1 || write(fd, text, len) != (ssize_t)len ||
	    write(fd, "\n", 1) != 1 || fsync(fd) != 0 || close(fd) != 0 ||
	    rename(tmp, path) != 0) {
		fprintf(stderr, "hubctl: %s: %s\n", path, strerror(errno));
		if (fd != -1)
			close(fd);
		unlink(tmp);
		return -1;
	}
	return 0;
}

static int
announce(const char *sock, const char *os, const char *arch, int *agents)
{
	char req[64];
	int n = snprintf(req, sizeof(req), "release%cannounce%c%s%c%s", 0, 0,
	    os, 0, arch);
	json_t *o;

	if (n < 0 || (size_t)n >= sizeof(req))
		return -1;
	if ((o = ask_ok(sock, req, (size_t)n + 1)) == NULL)
		return -1;
	*agents = (int)json_integer_value(json_object_get(o, "agents"));
	json_decref(o);
	return 0;
}

static int
cmd_publish(const char *sock, int argc, char **argv, int as_json)
{
	const char *file = NULL, *ver = NULL, *os = NULL, *arch = NULL;
	char key[PATH_MAX], dir[PATH_MAX], name[96], path[PATH_MAX + 128];
	char err[256], *js;
	struct release r;
	struct hub_key k;
	struct stat st;
	int quiet = 0, agents = 0;

	for (int i = 2; i < argc; i++) {
		const char **dst = NULL;

		if (strcmp(argv[i], "--version") == 0)
			dst = &ver;
		else if (strcmp(argv[i], "--os") == 0)
			dst = &os;
		else if (strcmp(argv[i], "--arch") == 0)
			dst = &arch;
		else if (strcmp(argv[i], "--no-announce") == 0)
			quiet = 1;
		else if (file == NULL && strncmp(argv[i], "--", 2) != 0)
			file = argv[i];
		else
			goto usage;
		if (dst != NULL) {
			if (++i >= argc)
				goto usage;
			*dst = argv[i];
		}
	}
	if (file == NULL || ver == NULL || os == NULL || arch == NULL)
		goto usage;
	memset(&r, 0, sizeof(r));
	if (strlen(ver) >= sizeof(r.version) || !release_version_valid(ver)) {
		fprintf(stderr, "hubctl: --version %s: 1 to 4 dot-separated "
		    "numbers, like 0.2.0\n", ver);
		return 2;
	}
	if (!release_name_valid(os) || !release_name_valid(arch)) {
		fprintf(stderr, "hubctl: --os and --arch are [a-z0-9_] names, "
		    "like linux and x86_64\n");
		return 2;
	}
	if (stat(file, &st) != 0 || !S_ISREG(st.st_mode)) {
		fprintf(stderr, "hubctl: %s: not a regular file\n", file);
		return 1;
	}
	if (release_info(sock, key, sizeof(key), dir, sizeof(dir)) != 0 ||
	    load_key(key, &k) != 0)
		return 1;
	snprintf(r.version, sizeof(r.version), "%s", ver);
	snprintf(r.os, sizeof(r.os), "%s", os);
	snprintf(r.arch, sizeof(r.arch), "%s", arch);
	snprintf(name, sizeof(name), "agentd-%s-%s-%s%s", ver, os, arch,
	    strcmp(os, "windows") == 0 ? ".exe" : "");
	snprintf(r.path, sizeof(r.path), "%s%s", RELEASE_FILES_PREFIX, name);
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if (make_dir(dir) != 0) {
		fprintf(stderr, "hubctl: [release] dir %s: %s\n", dir,
		    strerror(errno));
		goto fail;
	}
	if (copy_hash(file, path, &r.size, r.sha256) != 0)
		goto fail;
	if (release_sign(&r, k.sk, err, sizeof(err)) != 0) {
		fprintf(stderr, "hubctl: %s\n", err);
		goto fail;
	}
	hub_key_wipe(&k);
	if ((js = release_to_json(&r)) == NULL)
		return 1;
	snprintf(path, sizeof(path), "%s/agent-%s-%s.json", dir, os, arch);
	if (write_text(path, js) != 0) {
		free(js);
		return 1;
	}
	if (!quiet && announce(sock, os, arch, &agents) != 0) {
		fprintf(stderr, "hubctl: published, but the tunnel could not "
		    "announce it (hubctl release announce %s %s)\n", os, arch);
		free(js);
		return 1;
	}
	if (as_json)
		printf("{\"ok\": true, \"manifest\": %s, \"agents\": %d}\n", js,
		    agents);
	else
		printf("published agentd %s for %s/%s: %llu bytes, sha256 %s%s"
		    "%d agent(s) told\n", r.version, r.os, r.arch,
		    (unsigned long long)r.size, r.sha256, quiet ?
		    " (not announced); " : "; ", agents);
	free(js);
	return fflush(stdout) == 0 ? 0 : 1;
fail:
	hub_key_wipe(&k);
	return 1;
usage:
	fprintf(stderr, "hubctl: usage: release publish FILE --version V --os "
	    "OS --arch ARCH [--no-announce]\n");
	return 2;
}

int
hubctl_release(const char *sock, int argc, char **argv, int as_json)
{
	char *args[16];
	int n = 0, agents = 0;

	for (int i = 0; i < argc && n < 16; i++) {
		if (strcmp(argv[i], "--json") == 0)
			as_json = 1;
		else
			args[n++] = argv[i];
	}
	if (n == 2 && strcmp(args[1], "key") == 0)
		return cmd_key(sock, as_json);
	if (n >= 2 && strcmp(args[1], "publish") == 0)
		return cmd_publish(sock, n, args, as_json);
	if (n == 4 && strcmp(args[1], "announce") == 0) {
		if (announce(sock, args[2], args[3], &agents) != 0)
			return 1;
		if (as_json)
			printf("{\"ok\": true, \"agents\": %d}\n", agents);
		else
			printf("%d agent(s) told\n", agents);
		return 0;
	}
	fprintf(stderr, "hubctl: usage: release key | release publish FILE "
	    "--version V --os OS --arch ARCH [--no-announce] | release "
	    "announce OS ARCH\n");
	return 2;
}
