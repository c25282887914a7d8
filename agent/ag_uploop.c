/*
 * agent/ag_uploop: the upstream engine on the lws thread (see
 * ag_uploop.h).  Every trigger — curl's sockets readable, curl's timer,
 * a kick from the tunnel side — is one ag_up_run() followed by one drain.
 */
#include "agent/ag_uploop.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include "lib/log.h"

static void
run(struct ag_uploop *lp, int io)
{
	if (lp->up == NULL)
		return;
	ag_up_run(lp->up, io);
	lp->drain(lp->arg);
}

static void
on_kick(lws_sorted_usec_list_t *sul)
{
	struct ag_uploop *lp = lws_container_of(sul, struct ag_uploop,
	    sul_kick);

	lp->kicked = 0;
	run(lp, 0);
}

static void timer(void *arg, long ms);

/* The engine's timer, or the periodic run: after the run, armed again for
 * curl's next timeout or AG_UP_POLL_MS, whichever comes first. */
static void
on_timer(struct ltimer *lt)
{
	struct ag_uploop *lp = lt->arg;

	run(lp, 0);
	if (lp->up != NULL)
		timer(lp, ag_up_next_run_ms(lp->up));
}

/* Tunnel side: a request, cancel or credit was queued. */
static void
kick(void *arg)
{
	struct ag_uploop *lp = arg;

	if (lp->kicked || lp->up == NULL)
		return;
	lp->kicked = 1;
	lws_sul_schedule(lp->ctx, 0, &lp->sul_kick, on_kick, 1);
}

/* Curl side (inside a run): come back in ms.  At once is the kick (no
 * system call); later is the timerfd, moved only when the deadline comes
 * earlier (curl moves it on almost every call). */
static void
timer(void *arg, long ms)
{
	struct ag_uploop *lp = arg;

	if (lp->up == NULL)
		return;
	if (ms <= 0)
		kick(lp);
	else
		ltimer_arm_by(&lp->timer, (int64_t)ms * 1000);
}

void
ag_uploop_init(struct ag_uploop *lp, struct lws_context *ctx,
    void (*drain)(void *arg), void *arg, struct ag_up_loop *loop)
{
	memset(lp, 0, sizeof(*lp));
	lp->ctx = ctx;
	lp->drain = drain;
	lp->arg = arg;
	memset(loop, 0, sizeof(*loop));
	loop->kick = kick;
	loop->timer = timer;
	loop->arg = lp;
}

int
ag_uploop_start(struct ag_uploop *lp, struct ag_upstream *up, char *err,
    size_t errlen)
{
	lws_sock_file_fd_type u;
	struct lws_vhost *vh;
	int fd;

	/* lws closes what it watches: give it a copy of the epoll set. */
	if ((fd = fcntl(ag_up_fd(up), F_DUPFD_CLOEXEC, 0)) < 0) {
		snprintf(err, errlen, "upstream: dup: %s", strerror(errno));
		return -1;
	}
	u.filefd = fd;
	vh = lws_get_vhost_by_name(lp->ctx, "default");
	lp->wsi = lws_adopt_descriptor_vhost(vh, LWS_ADOPT_RAW_FILE_DESC, u,
	    AG_UPLOOP_PROTOCOL, NULL);
	if (lp->wsi == NULL) {
		close(fd);
		snprintf(err, errlen, "upstream: cannot watch its sockets");
		return -1;
	}
	if (ltimer_start(&lp->timer, vh, on_timer, lp) != 0) {
		snprintf(err, errlen, "upstream: timer: %s", strerror(errno));
		lws_set_timeout(lp->wsi, PENDING_TIMEOUT_KILLED_BY_PARENT,
		    LWS_TO_KILL_ASYNC);
		lp->wsi = NULL;
		return -1;
	}
	lws_set_opaque_user_data(lp->wsi, lp);
	lp->up = up;
	/* Token refreshes are checked per run: the first a second from now. */
	timer(lp, AG_UP_POLL_MS);
	return 0;
}

void
ag_uploop_kick_now(struct ag_uploop *lp)
{
	if (!lp->kicked)
		return;
	lws_sul_cancel(&lp->sul_kick);
	lp->kicked = 0;
	run(lp, 0);
}

void
ag_uploop_stop(struct ag_uploop *lp)
{
	ltimer_stop(&lp->timer);
	lws_sul_cancel(&lp->sul_kick);
	lp->kicked = 0;
	lp->up = NULL;
	if (lp->wsi != NULL)
		lws_set_opaque_user_data(lp->wsi, NULL);
}

int
ag_uploop_callback(struct lws *wsi, enum lws_callback_reasons reason,
    void *user, void *in, size_t len)
{
	struct ag_uploop *lp = lws_get_opaque_user_data(wsi);

	(void)user;
	(void)in;
	(void)len;
	switch (reason) {
	case LWS_CALLBACK_RAW_RX_FILE:
		if (lp != NULL)
			run(lp, 1);
		return 0;
	case LWS_CALLBACK_RAW_CLOSE_FILE:
		if (lp != NULL) {
			log_warn("upstream: its socket watch was closed");
			lp->wsi = NULL;
		}
		return 0;
	default:
		return 0;
	}
}
