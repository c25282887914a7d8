/*
 * agent/platform/linux.c: the Linux implementation of agent/platform.h —
 * default paths, owner-only secret files (mode 0600) and their checks,
 * replacing the running binary (link + rename(2), and back), randomness
 * (libsodium).
 */
#include "agent/platform.h"

#include <sys/stat.h>
#include <sys/types.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

void
plat_default_paths(struct plat_paths *p)
{
	snprintf(p->config, sizeof(p->config), "/etc/switchboard/agentd.ini");
	snprintf(p->key, sizeof(p->key), "/etc/switchboard/agent.key");
	snprintf(p->state_dir, sizeof(p->state_dir), "/var/lib/switchboard");
}

/* The rules of plat_check_key_perms() applied to one stat result. */
static int
check_stat(const char *path, const struct stat *st, char *err, size_t errlen)
{
	if (!S_ISREG(st->st_mode)) {
		snprintf(err, errlen, "%s is not a regular file", path);
		return PLAT_ERR;
	}
	if ((st->st_mode & 077) != 0) {
		snprintf(err, errlen, "%s is readable or writable by group or "
		    "others (mode %04o); run: chmod 600 %s", path,
		    (unsigned)(st->st_mode & 07777), path);
		return PLAT_ERR;
	}
	if (st->st_uid != geteuid()) {
		snprintf(err, errlen, "%s is owned by uid %u but agentd runs as "
		    "uid %u", path, (unsigned)st->st_uid, (unsigned)geteuid());
		return PLAT_ERR;
	}
	return 0;
}

int
plat_check_key_perms(const char *path, char *err, size_t errlen)
{
	struct stat st;

	if (stat(path, &st) == -1) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return PLAT_ERR;
	}
	return check_stat(path, &st, err, errlen);
}

int
plat_read_secret_file(const char *path, void *buf, size_t cap, size_t *len,
    char *err, size_t errlen)
{
	struct stat st;
	size_t got = 0;
	ssize_t n;
	int fd;

	/* O_NONBLOCK: a FIFO planted at path must not hang us before fstat. */
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd == -1) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return PLAT_ERR;
	}
	if (fstat(fd, &st) == -1) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		goto fail;
	}
	if (check_stat(path, &st, err, errlen) != 0)
		goto fail;
	if ((uintmax_t)st.st_size > cap) {
		snprintf(err, errlen, "%s is %jd bytes, more than the %zu expected",
		    path, (intmax_t)st.st_size, cap);
		goto fail;
	}
	while (got < cap) {
		n = read(fd, (char *)buf + got, cap - got);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1) {
			snprintf(err, errlen, "%s: %s", path, strerror(errno));
			goto fail;
		}
		if (n == 0)
			break;
		got += (size_t)n;
	}
	close(fd);
	*len = got;
	return 0;
fail:
	close(fd);
	return PLAT_ERR;
}

static int
write_all(int fd, const void *data, size_t len)
{
	const char *p = data;
	ssize_t n;

	while (len > 0) {
		n = write(fd, p, len);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* fsync the directory holding path so a new or renamed entry is durable. */
static void
sync_parent(const char *path)
{
	char dir[PATH_MAX];
	const char *slash = strrchr(path, '/');
	int fd;

	if (slash == NULL)
		snprintf(dir, sizeof(dir), ".");
	else if (slash == path)
		snprintf(dir, sizeof(dir), "/");
	else if ((size_t)(slash - path) < sizeof(dir))
		snprintf(dir, sizeof(dir), "%.*s", (int)(slash - path), path);
	else
		return;
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd == -1)
		return;
	(void)fsync(fd);
	close(fd);
}

int
plat_write_secret_file(const char *path, const void *data, size_t len,
    int overwrite, char *err, size_t errlen)
{
	char tmp[PATH_MAX];
	const char *target = path;
	int fd;

	if (!overwrite) {
		fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW |
		    O_CLOEXEC, 0600);
		if (fd == -1 && errno == EEXIST) {
			snprintf(err, errlen, "%s already exists; refusing to "
			    "overwrite it", path);
			return PLAT_EXISTS;
		}
	} else {
		if ((size_t)snprintf(tmp, sizeof(tmp), "%s.XXXXXX", path) >=
		    sizeof(tmp)) {
			snprintf(err, errlen, "%s: path too long", path);
			return PLAT_ERR;
		}
		fd = mkstemp(tmp);	/* O_EXCL, mode 0600 */
		target = tmp;
	}
	if (fd == -1) {
		snprintf(err, errlen, "%s: %s", target, strerror(errno));
		return PLAT_ERR;
	}
	/* Exactly 0600 whatever the umask (which can only have removed bits). */
	if (fchmod(fd, 0600) == -1 || write_all(fd, data, len) == -1 ||
	    fsync(fd) == -1) {
		snprintf(err, errlen, "%s: %s", target, strerror(errno));
		close(fd);
		unlink(target);
		return PLAT_ERR;
	}
	if (close(fd) == -1) {
		snprintf(err, errlen, "%s: %s", target, strerror(errno));
		unlink(target);
		return PLAT_ERR;
	}
	if (target == tmp && rename(tmp, path) == -1) {
		snprintf(err, errlen, "rename %s to %s: %s", tmp, path,
		    strerror(errno));
		unlink(tmp);
		return PLAT_ERR;
	}
	sync_parent(path);
	return 0;
}

int
plat_self_path(char *buf, size_t len, char *err, size_t errlen)
{
	static const char deleted[] = " (deleted)";
	ssize_t n;

	n = readlink("/proc/self/exe", buf, len - 1);
	if (n <= 0 || (size_t)n >= len - 1) {
		snprintf(err, errlen, "readlink /proc/self/exe: %s", n == -1 ?
		    strerror(errno) : "path too long");
		return PLAT_ERR;
	}
	buf[n] = '\0';
	/* The kernel marks an unlinked image: it has no path to update. */
	if ((size_t)n > sizeof(deleted) - 1 &&
	    strcmp(buf + n - (sizeof(deleted) - 1), deleted) == 0) {
		snprintf(err, errlen, "the running executable %s was removed "
		    "or replaced; restart agentd first", buf);
		return PLAT_ERR;
	}
	return 0;
}

static int
old_path(const char *self, char *out, size_t len, char *err, size_t errlen)
{
	if ((size_t)snprintf(out, len, "%s.old", self) >= len) {
		snprintf(err, errlen, "%s: path too long", self);
		return PLAT_ERR;
	}
	return 0;
}

int
plat_replace_binary(const char *self, const char *new_path, char *err,
    size_t errlen)
{
	char old[PATH_MAX];
	struct stat cur, nst;

	if (old_path(self, old, sizeof(old), err, errlen) != 0)
		return PLAT_ERR;
	if (stat(self, &cur) == -1) {
		snprintf(err, errlen, "%s: %s", self, strerror(errno));
		return PLAT_ERR;
	}
	if (stat(new_path, &nst) == -1) {
		snprintf(err, errlen, "%s: %s", new_path, strerror(errno));
		return PLAT_ERR;
	}
	if (!S_ISREG(nst.st_mode)) {
		snprintf(err, errlen, "%s is not a regular file", new_path);
		return PLAT_ERR;
	}
	if (nst.st_dev != cur.st_dev) {
		snprintf(err, errlen, "%s must be on the same file system as %s",
		    new_path, self);
		return PLAT_ERR;
	}
	/* The new file gets the old one's permissions, minus set-id bits. */
	if (chmod(new_path, cur.st_mode & 0755) == -1) {
		snprintf(err, errlen, "chmod %s: %s", new_path, strerror(errno));
		return PLAT_ERR;
	}
	/* self.old: a second name of the current binary, then the rename
	 * makes self the new one in one step. */
	if (unlink(old) == -1 && errno != ENOENT) {
		snprintf(err, errlen, "unlink %s: %s", old, strerror(errno));
		return PLAT_ERR;
	}
	if (link(self, old) == -1) {
		snprintf(err, errlen, "link %s to %s: %s", self, old,
		    strerror(errno));
		return PLAT_ERR;
	}
	if (rename(new_path, self) == -1) {
		snprintf(err, errlen, "rename %s to %s: %s", new_path, self,
		    strerror(errno));
		unlink(old);
		return PLAT_ERR;
	}
	sync_parent(self);
	return 0;
}

int
plat_restore_binary(const char *self, char *err, size_t errlen)
{
	char old[PATH_MAX];

	if (old_path(self, old, sizeof(old), err, errlen) != 0)
		return PLAT_ERR;
	if (rename(old, self) == -1) {
		snprintf(err, errlen, "rename %s to %s: %s", old, self,
		    strerror(errno));
		return PLAT_ERR;
	}
	sync_parent(self);
	return 0;
}

void
plat_random(void *buf, size_t len)
{
	/* libsodium: getrandom(2) underneath; aborts rather than fail. */
	randombytes_buf(buf, len);
}

void
plat_tune_heap(void)
{
	/* glibc trims a thread's arena whenever its free top passes the
	 * threshold: with 32 transfers in flight that was a grow (page
	 * faults) and a shrink per request.  16 MiB of slack is kept. */
	(void)mallopt(M_TRIM_THRESHOLD, 16 << 20);
	(void)mallopt(M_TOP_PAD, 1 << 20);
	(void)mallopt(M_MMAP_THRESHOLD, 1 << 20);
}
