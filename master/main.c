/*
 * master/main: hubd's entry point and the master's event loop.
 *   hubd -c FILE        run in the foreground, logging to stderr
 *   hubd -t -c FILE     check FILE: "configuration OK" or the first error
 * Signal handlers only set flags (and wake the loop through a pipe).
 */
#include "master/master.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include "lib/log.h"

#define STOP_GRACE_MS 2000	/* after the drain deadline, SIGKILL */

static volatile sig_atomic_t got_hup, got_term, got_chld;
static int wake_fd = -1;

static void
on_signal(int sig)
{
	int saved = errno;

	if (sig == SIGHUP)
		got_hup = 1;
	else if (sig == SIGCHLD)
		got_chld = 1;
	else
		got_term = 1;
	if (wake_fd >= 0)
		(void)!write(wake_fd, "", 1);
	errno = saved;
}

static void
usage(void)
{
	fprintf(stderr, "usage: hubd [-t] -c FILE\n"
	    "  -c FILE  configuration (INI)\n"
	    "  -t       check the configuration and exit\n");
	exit(2);
}

/*
 * The tunnel's segments, at most.  One connection carries every request
 * of an agent.  On a link whose MSS is 64 KB (loopback: an agent on the
 * hub's host) a busy agent's receive window often has less than one
 * segment free: the sender may then not send, and the agent's kernel
 * announces the room its reads free only once the window has doubled, so
 * both ends wait for TCP's persist timer (about 200 ms) with every request
 * of the agent in flight.  Segments of at most this fit such windows.
 * Set on the listener before it listens, it clamps both directions of
 * every tunnel it accepts, the first SYN included; over a real network
 * (MSS about 1,460 bytes) it changes nothing.
 */
#define TUN_MSS_MAX	16384

/* Open a TCP listener; writes the bound address into `actual`.  mss: the
 * largest TCP segment of its connections (0: the route's). */
static int
open_tcp(const char *addr, int mss, char *actual, size_t alen, char *err,
    size_t errlen)
{
	char host[256], port[8], hbuf[64], sbuf[8];
	struct addrinfo hints, *res;
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	int p, fd, on = 1, rc;

	if (conf_parse_addr(addr, host, sizeof(host), &p) != 0) {
		snprintf(err, errlen, "bad address '%s'", addr);
		return -1;
	}
	snprintf(port, sizeof(port), "%d", p);
	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	if ((rc = getaddrinfo(host, port, &hints, &res)) != 0) {
		snprintf(err, errlen, "%s: %s", addr, gai_strerror(rc));
		return -1;
	}
	fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd >= 0 && mss > 0 &&
	    setsockopt(fd, IPPROTO_TCP, TCP_MAXSEG, &mss, sizeof(mss)) != 0)
		log_warn("listener %s: TCP_MAXSEG %d: %s", addr, mss,
		    strerror(errno));
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on)) ||
	    bind(fd, res->ai_addr, res->ai_addrlen) != 0 || listen(fd, 1024) != 0) {
		snprintf(err, errlen, "listen on %s: %s", addr, strerror(errno));
		freeaddrinfo(res);
		if (fd >= 0)
			close(fd);
		return -1;
	}
	freeaddrinfo(res);
	getsockname(fd, (struct sockaddr *)&ss, &sl);
	getnameinfo((struct sockaddr *)&ss, sl, hbuf, sizeof(hbuf), sbuf,
	    sizeof(sbuf), NI_NUMERICHOST | NI_NUMERICSERV);
	snprintf(actual, alen, "%s%s%s:%s", ss.ss_family == AF_INET6 ? "[" : "",
	    hbuf, ss.ss_family == AF_INET6 ? "]" : "", sbuf);
	return fd;
}

/* Open an internal Unix listener in run_dir (mode 0600). */
static int
open_unix(const struct hub_conf *cf, const char *name, char *err, size_t errlen)
{
	struct sockaddr_un sun;
	mode_t old;
	int fd;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (hub_sock_path(cf, name, sun.sun_path, sizeof(sun.sun_path)) != 0) {
		snprintf(err, errlen, "[hub] run_dir is too long for a socket path");
		return -1;
	}
	unlink(sun.sun_path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	old = umask(077);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sun, sizeof(sun)) != 0 ||
	    listen(fd, 256) != 0) {
		umask(old);
		snprintf(err, errlen, "%s: %s", sun.sun_path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	umask(old);
	return fd;
}

static int
mkdir_p(const char *path)
{
	char buf[HUB_PATH_MAX];

	snprintf(buf, sizeof(buf), "%s", path);
	for (char *p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(buf, 0700) != 0 && errno != EEXIST)
			return -1;
		*p = '/';
	}
	return (mkdir(buf, 0700) != 0 && errno != EEXIST) ? -1 : 0;
}

/*
 * Every agent and every user connection is a descriptor: raise the soft
 * open-file limit to the hard one (capped: libwebsockets sizes a table by
 * it) before forking, so every child inherits it, and say what we got.
 */
#define FD_LIMIT_CAP	1048576

static void
raise_fd_limit(void)
{
	struct rlimit rl;
	rlim_t want;

	if (getrlimit(RLIMIT_NOFILE, &rl) != 0) {
		log_warn("cannot read the open file limit: %s", strerror(errno));
		return;
	}
	want = rl.rlim_max == RLIM_INFINITY || rl.rlim_max > FD_LIMIT_CAP ?
	    FD_LIMIT_CAP : rl.rlim_max;
	if (rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur >= want) {
		/* already at or above what we would ask for */
	} else {
		rlim_t was = rl.rlim_cur;
		rl.rlim_cur = want;
		if (setrlimit(RLIMIT_NOFILE, &rl) != 0) {
			log_warn("cannot raise the open file limit from %llu to "
			    "%llu: %s", (unsigned long long)was,
			    (unsigned long long)want, strerror(errno));
			(void)getrlimit(RLIMIT_NOFILE, &rl);
		}
	}
	log_info("open file limit: %llu (hard limit %llu)",
	    (unsigned long long)rl.rlim_cur, rl.rlim_max == RLIM_INFINITY ?
	    0ull : (unsigned long long)rl.rlim_max);
}

int
master_reload(struct master *m, char *err, size_t errlen)
{
	struct hub_conf next = { 0 };
	int changed;

	if (m->stopping) {
		snprintf(err, errlen, "hubd is stopping");
		return -1;
	}
	master_notify("RELOADING=1\nSTATUS=reloading");
	if (hub_conf_load(&next, m->conf_path, err, errlen) != 0) {
		master_notify("READY=1\nSTATUS=reload refused; running the "
		    "previous configuration");
		log_warn("reload refused, keeping configuration generation %llu: %s",
		    (unsigned long long)m->gen, err);
		return -1;
	}
	changed = hub_conf_merge_reload(&next, &m->conf);
	m->conf = next;
	m->gen++;
	atomic_store(&m->sb.hdr->config_gen, m->gen);
	log_set_level(m->conf.log_level);
	log_set_format(m->conf.log_format);
	proc_broadcast_config(m);
	master_notify("READY=1\nSTATUS=running");
	log_info("reloaded %s: configuration generation %llu (%d reloadable "
	    "key(s) changed)", m->conf_path, (unsigned long long)m->gen, changed);
	return 0;
}

void
master_begin_stop(struct master *m, const char *why)
{
	if (m->stopping)
		return;
	m->stopping = 1;
	master_notify("STOPPING=1\nSTATUS=draining");
	atomic_store(&m->sb.hdr->draining, 1);
	m->stop_deadline = clock_mono_ms() + m->conf.drain_timeout_ms + STOP_GRACE_MS;
	log_info("stopping (%s): children drain for up to %lld ms", why,
	    (long long)m->conf.drain_timeout_ms);
	proc_stop_all(m);
}

static void
setup_signals(struct master *m)
{
	struct sigaction sa;

	if (pipe2(m->sigpipe, O_CLOEXEC | O_NONBLOCK) != 0)
		fatal("pipe: %s", strerror(errno));
	wake_fd = m->sigpipe[1];
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = SA_RESTART;
	sigaction(SIGHUP, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGCHLD, &sa, NULL);
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, NULL);
}

/* Every child that should run has said IPC_READY once. */
static int
all_ready(const struct master *m)
{
	for (uint32_t i = 0; i < m->nprocs; i++)
		if (!m->procs[i].failed && !m->procs[i].ready)
			return 0;
	return 1;
}

static void
run(struct master *m)
{
	struct pollfd pfd[2 + ADMIN_MAX_CLIENTS + SB_MAX_PROCS];
	struct msg_client *pc[1 + ADMIN_MAX_CLIENTS];
	struct proc *pp[SB_MAX_PROCS];

	for (;;) {
		int n = 0, na, np = 0, timeout = 1000;
		int64_t now = clock_mono_ms(), next;
		char drain[64];

		if (got_chld) {
			got_chld = 0;
			proc_reap(m);
		}
		if (got_term) {
			got_term = 0;
			master_begin_stop(m, "signal");
		}
		if (got_hup) {
			char err[512];
			got_hup = 0;
			(void)master_reload(m, err, sizeof(err));
		}
		if (m->stopping) {
			if (proc_running(m) == 0)
				return;
			if (now >= m->stop_deadline) {
				log_warn("drain deadline passed; killing %d child(ren)",
				    proc_running(m));
				proc_kill_all(m, SIGKILL);
				m->stop_deadline = now + 1000;
			}
		}
		proc_respawn_due(m, now);
		admin_timeouts(m, now);
		if (!m->notified_ready && !m->stopping && all_ready(m)) {
			m->notified_ready = 1;
			master_notify("READY=1\nSTATUS=running");
			log_info("every child is ready");
		}

		pfd[n].fd = m->sigpipe[0];
		pfd[n++].events = POLLIN;
		/* hubd.sock: its listener and clients (lib/msgsrv). */
		na = (int)msg_srv_pollfds(&m->admin, pfd + n, pc,
		    1 + ADMIN_MAX_CLIENTS);
		n += na;
		for (uint32_t i = 0; i < m->nprocs; i++) {
			struct proc *p = &m->procs[i];
			if (p->pid == 0 || p->conn.fd < 0)
				continue;
			pfd[n].fd = p->conn.fd;
			pfd[n].events = POLLIN | (msg_pending(&p->conn) ? POLLOUT : 0);
			pp[np++] = p;
			n++;
		}
		next = proc_next_event(m);
		if (next != 0 && next - now < timeout)
			timeout = next - now < 0 ? 0 : (int)(next - now);
		if (m->stopping && m->stop_deadline - now < timeout)
			timeout = m->stop_deadline - now < 0 ? 0 :
			    (int)(m->stop_deadline - now);
		if (poll(pfd, (nfds_t)n, timeout) < 0) {
			if (errno == EINTR)
				continue;
			fatal("poll: %s", strerror(errno));
		}
		if (pfd[0].revents & POLLIN)
			while (read(m->sigpipe[0], drain, sizeof(drain)) > 0)
				;
		msg_srv_events(&m->admin, pfd + 1, pc, (size_t)na);
		for (int i = 0; i < np; i++) {
			short re = pfd[1 + na + i].revents;
			if (pp[i]->pid == 0)
				continue;
			if (re & POLLOUT)
				(void)msg_flush(&pp[i]->conn);
			if (re & (POLLIN | POLLHUP | POLLERR))
				proc_input(m, pp[i]);
		}
	}
}

int
main(int argc, char **argv)
{
	static struct master m;
	const char *path = NULL;
	char err[512];
	int test = 0, ch;

	log_init("hubd", "master", LOG_LVL_INFO);
	while ((ch = getopt(argc, argv, "c:th")) != -1) {
		switch (ch) {
		case 'c': path = optarg; break;
		case 't': test = 1; break;
		default: usage();
		}
	}
	if (path == NULL || optind != argc)
		usage();
	if (hub_conf_load(&m.conf, path, err, sizeof(err)) != 0) {
		if (test) {
			fprintf(stderr, "%s\n", err);
			return 1;
		}
		fatal("%s", err);
	}
	if (test) {
		printf("configuration OK\n");
		return 0;
	}
	log_set_level(m.conf.log_level);
	log_set_format(m.conf.log_format);
	raise_fd_limit();
	m.conf_path = path;
	m.gen = 1;
	m.admin_fd = -1;
	m.started_mono = clock_mono_ms();

	if (mkdir_p(m.conf.run_dir) != 0)
		fatal("run_dir %s: %s", m.conf.run_dir, strerror(errno));
	priv_resolve(&m);
	priv_check_ledger_key(&m);
	if (admin_open(&m, err, sizeof(err)) != 0)
		fatal("%s", err);
	if ((m.fds.gw_listen = open_tcp(m.conf.gw_listen, 0, m.listen_gw,
	    sizeof(m.listen_gw), err, sizeof(err))) < 0)
		fatal("[gateway] %s", err);
	if ((m.fds.tun_listen = open_tcp(m.conf.tun_listen, TUN_MSS_MAX,
	    m.listen_tun, sizeof(m.listen_tun), err, sizeof(err))) < 0)
		fatal("[tunnel] %s", err);
	m.fds.adm_listen = -1;
	if (m.conf.adm_listen[0] != '\0' &&
	    (m.fds.adm_listen = open_tcp(m.conf.adm_listen, 0, m.listen_adm,
	    sizeof(m.listen_adm), err, sizeof(err))) < 0)
		fatal("[admin] %s", err);
	if ((m.fds.tun_sock = open_unix(&m.conf, "tunnel.sock", err, sizeof(err))) < 0 ||
	    (m.fds.bill_sock = open_unix(&m.conf, "billing.sock", err, sizeof(err))) < 0 ||
	    (m.fds.mod_sock = open_unix(&m.conf, "moderation.sock", err, sizeof(err))) < 0)
		fatal("internal socket %s", err);
	priv_own_sockets(&m);
	if (sb_create(&m.sb, (uint32_t)m.conf.max_agents,
	    (uint32_t)m.conf.max_channels) != 0)
		fatal("scoreboard of %zu bytes: %s", sb_size((uint32_t)m.conf.max_agents,
		    (uint32_t)m.conf.max_channels), strerror(errno));
	atomic_store(&m.sb.hdr->master_pid, (int32_t)getpid());
	setup_signals(&m);
	log_info("hubd starting: gateway on %s, tunnel on %s, admin socket %s, "
	    "admin API %s, scoreboard %zu bytes", m.listen_gw, m.listen_tun,
	    m.admin_path, m.listen_adm[0] ? m.listen_adm : "off", m.sb.size);

	proc_init_table(&m);
	for (uint32_t i = 0; i < m.nprocs; i++)
		proc_spawn(&m, &m.procs[i]);
	run(&m);
	admin_close(&m);
	log_info("hubd stopped");
	return 0;
}
