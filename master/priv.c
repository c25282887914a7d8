/*
 * master/priv: the master's part of least privilege, at start-up.
 *
 *  - [hub] user is resolved once; children drop to it (child/child.c,
 *    child_drop_privs) after loading what needs root.  The master itself
 *    stays root: it restarts children, and a restarted billing must read
 *    the root-only ledger key file and a restarted gateway or tunnel its
 *    TLS key before dropping again; a reload re-reads the INI, which may be
 *    root's alone.  It serves no network peer: only its children (socket
 *    pairs) and hubd.sock, which is root's (0600).
 *  - The ledger key file is checked (or created) by a short-lived child so
 *    that a bad key stops hubd at start-up while the master's own memory
 *    never holds the secret; billing alone loads it afterwards.
 *  - The internal sockets in run_dir belong to that user (the children
 *    connect to them); run_dir stays root's, searchable by the user's
 *    group, so no child can replace a socket or hubd.sock.
 */
#include "master/master.h"
#include "child/hubkey.h"

#include <errno.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include "lib/log.h"

void
priv_resolve(struct master *m)
{
	const char *user = m->conf.user;
	struct passwd *pw;

	memset(&m->priv, 0, sizeof(m->priv));
	if (user[0] == '\0') {
		if (geteuid() == 0)
			log_warn("running as root with no [hub] user: every child "
			    "keeps root (set [hub] user to drop it)");
		return;
	}
	errno = 0;
	if ((pw = getpwnam(user)) == NULL)
		fatal("[hub] user '%s': %s", user, errno ? strerror(errno) :
		    "no such user");
	if (pw->pw_uid == geteuid() && pw->pw_gid == getegid())
		return;			/* already that user: nothing to drop */
	if (geteuid() != 0)
		fatal("[hub] user '%s': hubd must start as root to switch to it",
		    user);
	if (pw->pw_uid == 0)
		fatal("[hub] user '%s' is root: name an unprivileged user", user);
	m->priv.drop = 1;
	m->priv.uid = pw->pw_uid;
	m->priv.gid = pw->pw_gid;
	log_info("children run as %s (uid %d gid %d)", user, (int)pw->pw_uid,
	    (int)pw->pw_gid);
}

void
priv_check_ledger_key(struct master *m)
{
	pid_t pid;
	int status;

	fflush(NULL);
	pid = fork();
	if (pid < 0)
		fatal("fork: %s", strerror(errno));
	if (pid == 0) {
		struct hub_key k;
		char err[512];
		int rc = hub_key_load(m->conf.ledger_key, &k, err, sizeof(err));

		hub_key_wipe(&k);
		if (rc != 0)
			log_error("[store] %s", err);
		_exit(rc == 0 ? 0 : 1);
	}
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			fatal("waitpid: %s", strerror(errno));
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		fatal("[store] ledger_key %s cannot be used", m->conf.ledger_key);
}

/* Can uid/gid search (x) directory path? */
static int
searchable(const char *path, uid_t uid, gid_t gid)
{
	struct stat st;

	if (stat(path, &st) != 0)
		return 0;
	if (st.st_uid == uid)
		return (st.st_mode & S_IXUSR) != 0;
	if (st.st_gid == gid)
		return (st.st_mode & S_IXGRP) != 0;
	return (st.st_mode & S_IXOTH) != 0;
}

void
priv_own_sockets(struct master *m)
{
	static const char *const socks[] = { "tunnel.sock", "billing.sock",
		"moderation.sock" };
	char path[HUB_PATH_MAX + 32], *sl;
	const struct child_priv *pv = &m->priv;

	if (!pv->drop)
		return;
	for (size_t i = 0; i < sizeof(socks) / sizeof(socks[0]); i++) {
		if (hub_sock_path(&m->conf, socks[i], path, sizeof(path)) != 0 ||
		    chown(path, pv->uid, pv->gid) != 0)
			fatal("chown %s/%s to uid %d: %s", m->conf.run_dir,
			    socks[i], (int)pv->uid, strerror(errno));
	}
	/* run_dir: root's, the user's group may only pass through. */
	if (chown(m->conf.run_dir, (uid_t)-1, pv->gid) != 0 ||
	    chmod(m->conf.run_dir, 0710) != 0)
		fatal("run_dir %s: %s", m->conf.run_dir, strerror(errno));
	/* Its parents must let the user through too. */
	snprintf(path, sizeof(path), "%s", m->conf.run_dir);
	for (;;) {
		if (!searchable(path[0] ? path : "/", pv->uid, pv->gid))
			fatal("[hub] user '%s' cannot reach run_dir %s: %s is not "
			    "searchable by it", m->conf.user, m->conf.run_dir,
			    path[0] ? path : "/");
		if ((sl = strrchr(path, '/')) == NULL)
			break;
		if (sl == path) {
			if (path[1] == '\0')
				break;
			path[1] = '\0';
			continue;
		}
		*sl = '\0';
	}
}
