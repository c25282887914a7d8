/*
 * lib/msgsrv: accept, read, dispatch, write and drop for the servers of
 * the hub's Unix sockets (see msgsrv.h).
 */
#include "lib/msgsrv.h"
#include "lib/clock.h"
#include "lib/log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/epoll.h>
#include <sys/socket.h>

/* Bytes read from one client per turn: a fast writer cannot keep the loop
 * from the others; the rest stays in the socket and polls readable. */
#define MSG_SRV_READ_MAX (1u << 20)
/* epoll mode: events taken per msg_srv_epoll_events call (the rest stay
 * ready, level-triggered, for the next). */
#define MSG_SRV_EPOLL_BATCH 64
/* epoll_event.data of the listener (a client's is slot | serial << 32). */
#define MSG_SRV_EP_LISTENER UINT64_MAX

/*
 * Output waits on cl (or stopped waiting): epoll mode registers EPOLLOUT
 * exactly while there is output (one epoll_ctl per change, none per
 * message); poll mode tells the user's want_write hook, if any.
 */
static void
want_output(struct msg_client *cl)
{
	struct msg_srv *s = cl->srv;
	struct epoll_event ev;
	uint32_t want;

	if (cl->conn.fd < 0)
		return;
	if (s->epfd < 0) {
		if (msg_pending(&cl->conn) && s->ops->want_write != NULL)
			s->ops->want_write(cl);
		return;
	}
	want = EPOLLIN | (msg_pending(&cl->conn) ? (uint32_t)EPOLLOUT : 0);
	if (want == cl->watched)
		return;
	memset(&ev, 0, sizeof(ev));
	ev.events = want;
	ev.data.u64 = cl->slot | (uint64_t)cl->serial << 32;
	if (epoll_ctl(s->epfd, cl->watched == 0 ? EPOLL_CTL_ADD :
	    EPOLL_CTL_MOD, cl->conn.fd, &ev) != 0) {
		log_warn("%s: epoll_ctl for client pid %d: %s", s->ops->name,
		    (int)cl->pid, strerror(errno));
		return;
	}
	cl->watched = want;
}

int
msg_srv_init(struct msg_srv *s, const struct msg_srv_ops *ops, int listen_fd,
    char *err, size_t errlen)
{
	const struct msg_dir *rx = &ops->rules->rx;

	for (unsigned t = 0; t < rx->ntypes; t++) {
		if ((rx->rule[t].name != NULL) == (ops->dispatch[t] != NULL))
			continue;
		snprintf(err, errlen, "%s: type %u is %s", ops->name, t,
		    rx->rule[t].name != NULL ? "received but has no handler" :
		    "handled but not allowed by the rules");
		return -1;
	}
	memset(s, 0, sizeof(*s));
	s->ops = ops;
	s->listen_fd = listen_fd;
	s->accepting = listen_fd >= 0;
	s->next_serial = 1;
	s->epfd = -1;
	s->cl = calloc(ops->max_clients, sizeof(*s->cl));
	if (s->cl == NULL) {
		snprintf(err, errlen, "%s: out of memory", ops->name);
		return -1;
	}
	for (uint32_t i = 0; i < ops->max_clients; i++) {
		s->cl[i].conn.fd = -1;
		s->cl[i].srv = s;
		s->cl[i].slot = i;
	}
	return 0;
}

static void
client_close(struct msg_client *cl)
{
	struct msg_srv *s = cl->srv;
	uint32_t slot = cl->slot;

	if (cl->conn.fd < 0)
		return;
	if (cl->deferred)
		s->ndeferred--;
	if (s->ops->on_close != NULL)
		s->ops->on_close(cl);
	if (s->epfd >= 0 && cl->watched != 0)
		(void)epoll_ctl(s->epfd, EPOLL_CTL_DEL, cl->conn.fd, NULL);
	close(cl->conn.fd);
	msg_conn_free(&cl->conn);
	memset(cl, 0, sizeof(*cl));
	cl->conn.fd = -1;
	cl->srv = s;
	cl->slot = slot;
	while (s->nused > 0 && s->cl[s->nused - 1].conn.fd < 0)
		s->nused--;
}

void
msg_srv_free(struct msg_srv *s)
{
	if (s->cl == NULL)
		return;
	for (uint32_t i = 0; i < s->nused; i++)
		client_close(&s->cl[i]);
	free(s->cl);
	s->cl = NULL;
	s->epfd = -1;		/* the caller's (see msgsrv.h) */
}

void
msg_srv_stop_accepting(struct msg_srv *s)
{
	if (s->accepting && s->epfd >= 0)
		(void)epoll_ctl(s->epfd, EPOLL_CTL_DEL, s->listen_fd, NULL);
	s->accepting = 0;
}

void
msg_srv_drop(struct msg_client *cl, const char *why, ...)
{
	char reason[512];
	va_list ap;

	if (cl->conn.fd < 0)
		return;
	if (why != NULL) {
		va_start(ap, why);
		vsnprintf(reason, sizeof(reason), why, ap);
		va_end(ap);
		log_warn("%s: dropping client pid %d uid %d: %s",
		    cl->srv->ops->name, (int)cl->pid, (int)cl->uid, reason);
	}
	client_close(cl);
}

void
msg_srv_close_after(struct msg_client *cl)
{
	cl->closing = 1;
	if (!msg_pending(&cl->conn))
		client_close(cl);
	else
		want_output(cl);
}

static int
busy(const struct msg_srv *s, struct msg_client *cl)
{
	return s->ops->busy != NULL && s->ops->busy(cl);
}

/* A free slot, or (evict_idle) the longest-idle client's, closed. */
static struct msg_client *
free_slot(struct msg_srv *s)
{
	struct msg_client *old = NULL;

	for (uint32_t i = 0; i < s->nused; i++) {
		struct msg_client *cl = &s->cl[i];
		if (cl->conn.fd < 0)
			return cl;
		if (!busy(s, cl) && (old == NULL ||
		    cl->last_active < old->last_active))
			old = cl;
	}
	if (s->nused < s->ops->max_clients)
		return &s->cl[s->nused];
	if (!s->ops->evict_idle || old == NULL)
		return NULL;
	log_warn("%s: %u clients, the most it serves: closing the one idle "
	    "longest (pid %d, %lld ms) for a new one", s->ops->name,
	    s->ops->max_clients, (int)old->pid,
	    (long long)(clock_mono_ms() - old->last_active));
	client_close(old);
	return old;
}

void
msg_srv_accept(struct msg_srv *s)
{
	while (s->accepting) {
		int fd = accept4(s->listen_fd, NULL, NULL,
		    SOCK_CLOEXEC | SOCK_NONBLOCK);
		struct msg_client *cl;
		struct ucred uc;
		socklen_t ul = sizeof(uc);

		if (fd < 0) {
			if (errno != EAGAIN && errno != EWOULDBLOCK &&
			    errno != EINTR && errno != ECONNABORTED)
				log_warn("%s: accept: %s", s->ops->name,
				    strerror(errno));
			return;
		}
		if ((cl = free_slot(s)) == NULL) {
			log_warn("%s: %u clients, the most it serves: refusing "
			    "one", s->ops->name, s->ops->max_clients);
			close(fd);
			continue;
		}
		msg_conn_init(&cl->conn, fd, s->ops->rules);
		if (cl->slot >= s->nused)
			s->nused = cl->slot + 1;
		cl->serial = s->next_serial++;
		cl->last_active = clock_mono_ms();
		cl->pid = -1;
		cl->uid = -1;
		if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &uc, &ul) == 0) {
			cl->pid = (int32_t)uc.pid;
			cl->uid = (int32_t)uc.uid;
		}
		if (s->ops->on_open != NULL)
			s->ops->on_open(cl);
		if (s->epfd >= 0 && cl->conn.fd >= 0) {
			want_output(cl);
			if (cl->watched == 0)
				msg_srv_drop(cl, "cannot watch its socket");
		}
	}
}

/* Write what is queued; close on error or once a closing client is done. */
static void
flush_one(struct msg_client *cl)
{
	int rc;

	if (cl->conn.fd < 0)
		return;
	rc = msg_flush(&cl->conn);
	if (rc < 0) {
		log_info("%s: client pid %d gone while writing to it: %s",
		    cl->srv->ops->name, (int)cl->pid, strerror(errno));
		client_close(cl);
	} else if (rc == 1 && cl->closing) {
		client_close(cl);
	} else {
		want_output(cl);	/* POLLOUT on while output waits, or off */
	}
}

void
msg_srv_input(struct msg_srv *s, struct msg_client *cl)
{
	const struct msg_srv_ops *ops = s->ops;
	struct msg m;
	char err[256];
	size_t got = 0;
	int rc, eof = 0, began = 0;

	if (cl->conn.fd < 0)
		return;
	/* Nothing a deferred client wrote before this one's message is
	 * read after it. */
	if (!cl->deferred && s->ndeferred > 0) {
		msg_srv_drain(s);
		if (cl->conn.fd < 0)
			return;
	}
	for (;;) {
		rc = msg_fill(&cl->conn);
		if (rc == -2)
			break;
		if (rc == 0) {
			eof = 1;
			break;
		}
		if (rc < 0) {
			log_info("%s: client pid %d: read: %s", ops->name,
			    (int)cl->pid, strerror(errno));
			client_close(cl);
			return;
		}
		got += (size_t)rc;
		if (got >= MSG_SRV_READ_MAX || cl->conn.drained)
			break;
	}
	if (cl->deferred && got > 0 && !s->holding) {
		/* The next ones wait for the hold, when they come close
		 * together (this read less than a hold after the last one
		 * that got something, or at a hold's end): messages a hold
		 * apart or more would each still wake the server, and the
		 * hold add a wake-up of its own. */
		int64_t now = clock_mono_ms();

		if (s->hold_ending ||
		    now - s->deferred_read_ms < s->ops->defer_ms) {
			s->holding = 1;
			s->hold_until = now + s->ops->defer_ms;
		}
		s->deferred_read_ms = now;
	}
	if (cl->closing) {
		/* Answered and on its way out: what it says now is ignored. */
		cl->conn.in.off = cl->conn.in.len = 0;
		if (eof)
			client_close(cl);
		return;
	}
	if (ops->input_begin != NULL)
		began = ops->input_begin(s);
	err[0] = '\0';
	while ((rc = msg_next(&cl->conn, &m, err, sizeof(err))) == 1) {
		cl->last_active = clock_mono_ms();
		if (ops->dispatch[m.hdr.type](cl, &m, err, sizeof(err)) != 0) {
			rc = -1;
			break;
		}
		if (cl->conn.fd < 0 || cl->closing)
			break;
	}
	if (ops->input_end != NULL && ops->input_end(s, cl, began) != 0) {
		client_close(cl);	/* input_end logged why */
		return;
	}
	if (cl->conn.fd < 0)
		return;
	if (rc < 0) {
		msg_srv_drop(cl, "protocol violation: %s", err);
		return;
	}
	if (eof) {
		/* What it sent before leaving was served; answers to it are
		 * lost with it. */
		client_close(cl);
		return;
	}
	flush_one(cl);
}

int
msg_srv_defer(struct msg_client *cl, const struct msg_rules *rules)
{
	struct msg_srv *s = cl->srv;

	if (s->ops->defer_ms <= 0 || s->epfd >= 0)
		return -1;
	if (!cl->deferred)
		s->ndeferred++;
	cl->deferred = 1;
	cl->conn.rules = rules;
	return 0;
}

const struct msg_client *
msg_srv_sibling(const struct msg_client *cl)
{
	const struct msg_srv *s = cl->srv;

	if (!cl->deferred || cl->pid < 0)
		return cl;
	for (uint32_t i = 0; i < s->nused; i++)
		if (s->cl[i].conn.fd >= 0 && !s->cl[i].deferred &&
		    s->cl[i].pid == cl->pid)
			return &s->cl[i];
	return cl;
}

void
msg_srv_drain(struct msg_srv *s)
{
	for (uint32_t i = 0; s->ndeferred > 0 && i < s->nused; i++)
		if (s->cl[i].conn.fd >= 0 && s->cl[i].deferred)
			msg_srv_input(s, &s->cl[i]);
}

int64_t
msg_srv_defer_due(struct msg_srv *s, int64_t now)
{
	if (s->holding && now >= s->hold_until) {
		s->holding = 0;
		s->hold_ending = 1;
		msg_srv_drain(s);	/* holds again if it got something */
		s->hold_ending = 0;
	}
	return s->holding ? s->hold_until : 0;
}

void
msg_srv_output(struct msg_srv *s, struct msg_client *cl)
{
	flush_one(cl);
}

int
msg_srv_queue(struct msg_client *cl, uint16_t type, uint64_t reqid,
    const void *data, size_t len)
{
	if (cl->conn.fd < 0 || cl->closing)
		return -1;
	return msg_enqueue(&cl->conn, type, reqid, data, len);
}

int
msg_srv_send(struct msg_client *cl, uint16_t type, uint64_t reqid,
    const void *data, size_t len)
{
	if (msg_srv_queue(cl, type, reqid, data, len) != 0)
		return -1;
	want_output(cl);
	return 0;
}

void
msg_srv_write(struct msg_client *cl)
{
	if (msg_pending(&cl->conn))
		flush_one(cl);
}

void
msg_srv_flush(struct msg_srv *s)
{
	for (uint32_t i = 0; i < s->nused; i++)
		if (s->cl[i].conn.fd >= 0 && msg_pending(&s->cl[i].conn))
			flush_one(&s->cl[i]);
}

void
msg_srv_tick(struct msg_srv *s, int64_t now)
{
	if (s->ops->idle_ms <= 0)
		return;
	for (uint32_t i = 0; i < s->nused; i++) {
		struct msg_client *cl = &s->cl[i];
		if (cl->conn.fd >= 0 && !busy(s, cl) &&
		    now - cl->last_active >= s->ops->idle_ms)
			msg_srv_drop(cl, "idle for %lld ms",
			    (long long)(now - cl->last_active));
	}
}

struct msg_client *
msg_srv_find(struct msg_srv *s, uint32_t slot, uint32_t serial)
{
	if (slot >= s->ops->max_clients || s->cl[slot].conn.fd < 0 ||
	    s->cl[slot].serial != serial)
		return NULL;
	return &s->cl[slot];
}

uint32_t
msg_srv_nclients(const struct msg_srv *s)
{
	uint32_t n = 0;

	for (uint32_t i = 0; i < s->nused; i++)
		if (s->cl[i].conn.fd >= 0)
			n++;
	return n;
}

size_t
msg_srv_pollfds(struct msg_srv *s, struct pollfd *pfd,
    struct msg_client **who, size_t max)
{
	size_t n = 0;

	if (s->accepting && n < max) {
		pfd[n].fd = s->listen_fd;
		pfd[n].events = POLLIN;
		pfd[n].revents = 0;
		who[n++] = NULL;
	}
	for (uint32_t i = 0; i < s->nused && n < max; i++) {
		struct msg_client *cl = &s->cl[i];
		if (cl->conn.fd < 0)
			continue;
		/* POLLIN but for a held deferred client: a peer's hang-up
		 * shows as readable (POLLHUP is reported unasked). */
		pfd[n].fd = cl->conn.fd;
		pfd[n].events = (cl->deferred && s->holding ? 0 : POLLIN) |
		    (msg_pending(&cl->conn) ? POLLOUT : 0);
		pfd[n].revents = 0;
		who[n++] = cl;
	}
	return n;
}

void
msg_srv_events(struct msg_srv *s, const struct pollfd *pfd,
    struct msg_client *const *who, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		short re = pfd[i].revents;

		if (re == 0)
			continue;
		if (who[i] == NULL) {
			if (pfd[i].fd == s->listen_fd)
				msg_srv_accept(s);
			continue;
		}
		/* Closed by an earlier entry's handler: not ours any more. */
		if (who[i]->conn.fd != pfd[i].fd)
			continue;
		if (re & POLLOUT)
			flush_one(who[i]);
		if (who[i]->conn.fd == pfd[i].fd &&
		    (re & (POLLIN | POLLHUP | POLLERR)))
			msg_srv_input(s, who[i]);
	}
}

int
msg_srv_epoll(struct msg_srv *s, char *err, size_t errlen)
{
	struct epoll_event ev;

	s->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (s->epfd < 0) {
		snprintf(err, errlen, "%s: epoll_create1: %s", s->ops->name,
		    strerror(errno));
		return -1;
	}
	memset(&ev, 0, sizeof(ev));
	ev.events = EPOLLIN;
	ev.data.u64 = MSG_SRV_EP_LISTENER;
	if (s->accepting &&
	    epoll_ctl(s->epfd, EPOLL_CTL_ADD, s->listen_fd, &ev) != 0) {
		snprintf(err, errlen, "%s: epoll_ctl: %s", s->ops->name,
		    strerror(errno));
		close(s->epfd);
		s->epfd = -1;
		return -1;
	}
	for (uint32_t i = 0; i < s->nused; i++)
		want_output(&s->cl[i]);
	return s->epfd;
}

void
msg_srv_epoll_events(struct msg_srv *s)
{
	struct epoll_event ev[MSG_SRV_EPOLL_BATCH];
	int n;

	if (s->epfd < 0)
		return;
	n = epoll_wait(s->epfd, ev, MSG_SRV_EPOLL_BATCH, 0);
	for (int i = 0; i < n; i++) {
		uint64_t d = ev[i].data.u64;
		struct msg_client *cl;

		if (d == MSG_SRV_EP_LISTENER) {
			msg_srv_accept(s);
			continue;
		}
		/* NULL: closed by an earlier event's handler (its slot may
		 * even hold a new client, with another serial). */
		cl = msg_srv_find(s, (uint32_t)d, (uint32_t)(d >> 32));
		if (cl == NULL)
			continue;
		if (ev[i].events & EPOLLOUT)
			flush_one(cl);
		if (cl->conn.fd >= 0 &&
		    (ev[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
			msg_srv_input(s, cl);
	}
}
