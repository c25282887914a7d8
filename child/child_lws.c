/*
 * child/child_lws: libwebsockets context, listener and master-connection
 * adoption for the gateway and tunnel children, and their loop.  The
 * listener backs off for a moment when accept() runs out of descriptors
 * instead of spinning.
 *
 * The loop is libev's on epoll, handed to lws as a foreign loop: lws's
 * own loop is poll(), which walks every descriptor on every wake-up —
 * with thousands of user connections or agents that walk was most of a
 * child's CPU.  Where lws cannot load its libev support, the child warns
 * once and runs lws's poll() loop instead.
 */
#include "child/child_lws.h"
#include "child/child_peer.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <ev.h>
#include "lib/log.h"

/* The child's libev loop (NULL: lws's poll() loop) and the watcher that
 * ends each of its turns (child_lws_run). */
static struct ev_loop *evloop;
static ev_prepare turn_end;

static int
cb_master(struct lws *wsi, enum lws_callback_reasons reason, void *user,
    void *in, size_t len)
{
	struct child_lws *cl = lws_context_user(lws_get_context(wsi));

	switch (reason) {
	case LWS_CALLBACK_RAW_RX_FILE:
		if (child_master_input(cl->env, cl->ops) != 0) {
			log_info("master went away; exiting");
			cl->done = 1;
			return -1;
		}
		return 0;
	case LWS_CALLBACK_RAW_CLOSE_FILE:
		cl->env->master.fd = -1;
		cl->done = 1;
		return 0;
	default:
		return 0;
	}
}

static struct lws *
adopt_raw(struct child_lws *cl, int fd)
{
	lws_sock_file_fd_type u;

	u.sockfd = fd;
	return lws_adopt_descriptor_vhost(cl->vh, LWS_ADOPT_SOCKET, u,
	    cl->raw_protocol, NULL);
}

/* The pause after running out of descriptors is over: poll again. */
static void
accept_resume(lws_sorted_usec_list_t *sul)
{
	struct child_lws *cl = lws_container_of(sul, struct child_lws, accept_sul);

	cl->accept_paused = 0;
	if (cl->listen_wsi != NULL)
		lws_rx_flow_control(cl->listen_wsi, 1);
}

/*
 * accept() failed for want of descriptors or memory.  The connection stays
 * in the kernel's queue, so the listener stays readable: polling it again at
 * once would spin.  Stop polling it for CHILD_ACCEPT_PAUSE_MS (connections
 * ending meanwhile free descriptors) and warn once per CHILD_ACCEPT_LOG_MS.
 */
static void
accept_starved(struct child_lws *cl, struct lws *wsi, int err)
{
	int64_t now = clock_mono_ms();

	cl->accept_refused++;
	if (cl->accept_logged_ms == 0 ||
	    now - cl->accept_logged_ms >= CHILD_ACCEPT_LOG_MS) {
		log_warn("accept: %s; not accepting for %d ms at a time "
		    "(%llu refusals since the last warning)", strerror(err),
		    CHILD_ACCEPT_PAUSE_MS, (unsigned long long)cl->accept_refused);
		cl->accept_logged_ms = now;
		cl->accept_refused = 0;
	}
	if (cl->accept_paused)
		return;
	cl->accept_paused = 1;
	lws_rx_flow_control(wsi, 0);
	lws_sul_schedule(cl->ctx, 0, &cl->accept_sul, accept_resume,
	    (lws_usec_t)CHILD_ACCEPT_PAUSE_MS * 1000);
}

static int
cb_listen(struct lws *wsi, enum lws_callback_reasons reason, void *user,
    void *in, size_t len)
{
	struct child_lws *cl = lws_context_user(lws_get_context(wsi));
	int one;

	switch (reason) {
	case LWS_CALLBACK_RAW_RX_FILE:
		/* Accept what is queued; the other workers race for it too. */
		one = 1;
		for (int i = 0; i < 64; i++) {
			int fd = accept4(cl->listen_fd, NULL, NULL,
			    SOCK_CLOEXEC | SOCK_NONBLOCK);
			if (fd < 0) {
				if (errno == EMFILE || errno == ENFILE ||
				    errno == ENOBUFS || errno == ENOMEM)
					accept_starved(cl, wsi, errno);
				else if (errno != EAGAIN && errno != EINTR &&
				    errno != ECONNABORTED)
					log_warn("accept: %s", strerror(errno));
				break;
			}
			/* Small frames and SSE events go out at once, not after
			 * Nagle waits for an ACK the peer delays. */
			(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
			if ((cl->adopt != NULL ? cl->adopt(cl, fd) :
			    cl->raw_protocol != NULL ? adopt_raw(cl, fd) :
			    lws_adopt_socket_vhost(cl->vh, fd)) == NULL) {
				log_warn("cannot adopt a connection (fd %d)", fd);
				close(fd);
			}
		}
		return 0;
	case LWS_CALLBACK_RAW_CLOSE_FILE:
		cl->listen_wsi = NULL;
		return 0;
	default:
		return 0;
	}
}

static void on_tick(struct ltimer *lt);

int
child_lws_init(struct child_lws *cl, struct child_env *env,
    const struct child_ops *ops, const struct lws_protocols *protocols,
    int listen_fd, const char *cert, const char *key, const char *alpn)
{
	static struct lws_protocols all[12];
	struct lws_context_creation_info info;
	lws_sock_file_fd_type u;
	size_t n = 0;

	cl->env = env;
	cl->ops = ops;
	cl->listen_fd = listen_fd;
	for (; n < 8 && protocols[n].name != NULL; n++)
		all[n] = protocols[n];
	memset(&all[n], 0, sizeof(all[0]) * 4);
	all[n].name = "swb-master";
	all[n].callback = cb_master;
	all[n + 1].name = "swb-listen";
	all[n + 1].callback = cb_listen;
	all[n + 2].name = LTIMER_PROTOCOL;
	all[n + 2].callback = ltimer_callback;

	lws_set_log_level(LLL_ERR, NULL);
	memset(&info, 0, sizeof(info));
	info.port = CONTEXT_PORT_NO_LISTEN_SERVER;
	info.protocols = all;
	info.user = cl;
	info.options = LWS_SERVER_OPTION_EXPLICIT_VHOSTS;
	if (cert != NULL && cert[0] != '\0')
		info.options |= LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
	evloop = env->conf.event_loop == HUB_LOOP_POLL ? NULL :
	    ev_loop_new(EVBACKEND_EPOLL | EVFLAG_NOENV);
	if (evloop != NULL) {
		void *foreign[1] = { evloop };

		info.options |= LWS_SERVER_OPTION_LIBEV;
		info.foreign_loops = foreign;
		cl->ctx = lws_create_context(&info);
		info.foreign_loops = NULL;
		info.options &= ~(uint64_t)LWS_SERVER_OPTION_LIBEV;
		if (cl->ctx == NULL) {
			ev_loop_destroy(evloop);
			evloop = NULL;
		}
	}
	if (evloop == NULL) {
		if (env->conf.event_loop == HUB_LOOP_POLL)
			log_info("event loop: libwebsockets' poll() "
			    "([hub] event_loop = poll)");
		else
			log_warn("libwebsockets cannot run on libev (epoll) "
			    "here; using its poll() loop, which costs more per "
			    "connection");
		cl->ctx = lws_create_context(&info);
	}
	if (cl->ctx == NULL) {
		log_error("cannot create the libwebsockets context");
		return -1;
	}
	info.vhost_name = env->kind;
	if (cert != NULL && cert[0] != '\0') {
		info.ssl_cert_filepath = cert;
		info.ssl_private_key_filepath = key;
		info.alpn = alpn != NULL ? alpn : "http/1.1";
	}
	cl->vh = lws_create_vhost(cl->ctx, &info);
	if (cl->vh == NULL) {
		log_error("cannot create the %s vhost%s%s", env->kind,
		    cert && cert[0] ? " with certificate " : "", cert ? cert : "");
		return -1;
	}
	if (ltimer_start(&cl->tick_timer, cl->vh, on_tick, cl) != 0) {
		log_error("cannot start the loop's timer: %s", strerror(errno));
		return -1;
	}
	u.filefd = env->master.fd;
	if (lws_adopt_descriptor_vhost(cl->vh, LWS_ADOPT_RAW_FILE_DESC, u,
	    "swb-master", NULL) == NULL) {
		log_error("cannot adopt the master connection");
		return -1;
	}
	if (listen_fd >= 0) {
		u.filefd = listen_fd;
		cl->listen_wsi = lws_adopt_descriptor_vhost(cl->vh,
		    LWS_ADOPT_RAW_FILE_DESC, u, "swb-listen", NULL);
		if (cl->listen_wsi == NULL) {
			log_error("cannot adopt the listening socket");
			return -1;
		}
	}
	return 0;
}

void
child_lws_stop_accepting(struct child_lws *cl)
{
	lws_sul_cancel(&cl->accept_sul);
	if (cl->listen_wsi != NULL) {
		/* Closing our copy: the master still holds the listener. */
		lws_set_timeout(cl->listen_wsi, PENDING_TIMEOUT_KILLED_BY_PARENT,
		    LWS_TO_KILL_ASYNC);
		cl->listen_wsi = NULL;
	}
}

static void
on_tick(struct ltimer *lt)
{
	struct child_lws *cl = lt->arg;
	int ms = cl->tick_ms > 0 ? cl->tick_ms : 200;

	if (cl->tick != NULL)
		cl->tick(cl);
	if (child_check_term(cl->env, cl->ops)) {
		child_lws_stop_accepting(cl);
		if (clock_mono_ms() >= cl->env->stop_deadline_ms ||
		    cl->busy == NULL || !cl->busy(cl)) {
			cl->done = 1;
			lws_cancel_service(cl->ctx);
			return;
		}
		if (ms > 100)
			ms = 100;
	}
	ltimer_arm(&cl->tick_timer, (int64_t)ms * 1000);
}

/* The end of a turn of the loop: what the turn queued goes out, once
 * per peer.  1 when the loop should stop. */
static int
turn_done(struct child_lws *cl)
{
	if (cl->after != NULL)
		cl->after(cl);
	child_peer_flush();
	if (msg_pending(&cl->env->master))
		child_master_flush(cl->env);
	return cl->done || (child_check_term(cl->env, cl->ops) &&
	    (cl->busy == NULL || !cl->busy(cl)));
}

/* libev: before every wait for events (so after every turn's work). */
static void
on_turn_end(struct ev_loop *loop, ev_prepare *w, int revents)
{
	(void)revents;
	if (turn_done(w->data))
		ev_break(loop, EVBREAK_ALL);
}

int
child_lws_ends_turns(void)
{
	return evloop != NULL;
}

void
child_lws_run(struct child_lws *cl)
{
	ltimer_arm(&cl->tick_timer, 1000);
	if (evloop != NULL) {
		ev_prepare_init(&turn_end, on_turn_end);
		turn_end.data = cl;
		ev_prepare_start(evloop, &turn_end);
		ev_run(evloop, 0);
		ev_prepare_stop(evloop, &turn_end);
		return;
	}
	while (!cl->done) {
		if (lws_service(cl->ctx, 0) < 0)
			break;
		if (turn_done(cl))
			break;
	}
}

void
child_lws_free(struct child_lws *cl)
{
	if (cl->ctx != NULL)
		lws_context_destroy(cl->ctx);
	cl->ctx = NULL;
	if (evloop != NULL) {
		ev_loop_destroy(evloop);
		evloop = NULL;
	}
}
