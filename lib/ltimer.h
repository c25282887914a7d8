/*
 * lib/ltimer: a timer for a libwebsockets loop that fires on time.
 *
 * lws (4.1) computes its poll() timeout from its scheduled callbacks
 * (lws_sul) in microseconds and truncates it to milliseconds: a sul due
 * in 9.98 ms makes a poll(9), then poll(0) again and again — a busy loop —
 * for the last fraction of a millisecond.  A timer that fires every few
 * milliseconds (agentd's grouped ledger commit, curl's timeouts) or every
 * 100 ms (the hub children's tick) therefore spends up to a millisecond of
 * CPU each time.  An ltimer is a timerfd that lws watches as a raw file
 * instead: poll() sleeps until the kernel wakes it, with no sul involved.
 *
 * Linux only (timerfd).  Lives on one lws context's loop; the caller's
 * protocol table has LTIMER_PROTOCOL with ltimer_callback.
 */
#ifndef SWB_LTIMER_H
#define SWB_LTIMER_H

#include <stdint.h>
#include <libwebsockets.h>

#define LTIMER_PROTOCOL	"swb-timer"

struct ltimer {
	struct lws *wsi;	/* NULL: not started, or gone */
	int fd;			/* the timerfd (lws closes it) */
	int armed;		/* due and not yet fired or cancelled */
	int64_t due_ms;		/* monotonic, when armed (ltimer_arm_by) */
	void (*fire)(struct ltimer *t);
	void *arg;		/* the owner's */
};

/* Start t on vh's loop (LTIMER_PROTOCOL is in its context).  fire is
 * called from the loop once per arming.  0, or -1 with errno set. */
int  ltimer_start(struct ltimer *t, struct lws_vhost *vh,
    void (*fire)(struct ltimer *t), void *arg);
/* Fire in us microseconds (0: at the next turn of the loop), replacing any
 * earlier arming. */
void ltimer_arm(struct ltimer *t, int64_t us);
/* Fire in us at the latest: an arming due earlier stands (no system call),
 * a later one is brought forward.  For deadlines that move often. */
void ltimer_arm_by(struct ltimer *t, int64_t us);
void ltimer_cancel(struct ltimer *t);
/* No more firings; lws closes the descriptor (at once or with its
 * context). */
void ltimer_stop(struct ltimer *t);

int  ltimer_callback(struct lws *wsi, enum lws_callback_reasons reason,
    void *user, void *in, size_t len);

#endif
