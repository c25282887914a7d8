/*
 * lib/ltimer: timerfd timers watched by an lws loop (see ltimer.h).
 */
#include "lib/ltimer.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>
#include <sys/timerfd.h>
#include "lib/clock.h"

static int
settime(struct ltimer *t, int64_t us)
{
	struct itimerspec its;

	memset(&its, 0, sizeof(its));
	if (us >= 0) {
		/* An all-zero it_value disarms: "now" is one nanosecond. */
		its.it_value.tv_sec = (time_t)(us / 1000000);
		its.it_value.tv_nsec = (long)(us % 1000000) * 1000;
		if (us == 0)
			its.it_value.tv_nsec = 1;
	}
	return timerfd_settime(t->fd, 0, &its, NULL);
}

int
ltimer_start(struct ltimer *t, struct lws_vhost *vh,
    void (*fire)(struct ltimer *t), void *arg)
{
	lws_sock_file_fd_type u;

	memset(t, 0, sizeof(*t));
	t->fire = fire;
	t->arg = arg;
	t->fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (t->fd < 0)
		return -1;
	u.filefd = t->fd;
	t->wsi = lws_adopt_descriptor_vhost(vh, LWS_ADOPT_RAW_FILE_DESC, u,
	    LTIMER_PROTOCOL, NULL);
	if (t->wsi == NULL) {
		close(t->fd);
		t->fd = -1;
		errno = ENOMEM;
		return -1;
	}
	lws_set_opaque_user_data(t->wsi, t);
	return 0;
}

void
ltimer_arm(struct ltimer *t, int64_t us)
{
	if (t->wsi == NULL)
		return;
	if (us < 0)
		us = 0;
	if (settime(t, us) == 0) {
		t->armed = 1;
		t->due_ms = clock_mono_ms() + us / 1000;
	}
}

void
ltimer_arm_by(struct ltimer *t, int64_t us)
{
	if (t->armed && t->due_ms <= clock_mono_ms() + us / 1000)
		return;
	ltimer_arm(t, us);
}

void
ltimer_cancel(struct ltimer *t)
{
	if (t->wsi == NULL)
		return;
	(void)settime(t, -1);	/* also clears an expiry not yet read */
	t->armed = 0;
}

void
ltimer_stop(struct ltimer *t)
{
	if (t->wsi == NULL)
		return;
	ltimer_cancel(t);
	lws_set_opaque_user_data(t->wsi, NULL);
	lws_set_timeout(t->wsi, PENDING_TIMEOUT_KILLED_BY_PARENT,
	    LWS_TO_KILL_ASYNC);
	t->wsi = NULL;
}

int
ltimer_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user,
    void *in, size_t len)
{
	struct ltimer *t = lws_get_opaque_user_data(wsi);
	uint64_t n;

	(void)user;
	(void)in;
	(void)len;
	switch (reason) {
	case LWS_CALLBACK_RAW_RX_FILE:
		/* Nothing to read: re-armed or cancelled since it expired. */
		if (t == NULL || read(t->fd, &n, sizeof(n)) != (ssize_t)sizeof(n))
			return 0;
		t->armed = 0;
		t->fire(t);
		return 0;
	case LWS_CALLBACK_RAW_CLOSE_FILE:
		if (t != NULL) {
			t->wsi = NULL;
			t->armed = 0;
		}
		return 0;
	default:
		return 0;
	}
}
