/*
 * Unit tests of lib/msgsrv's deferred clients (billing reads a gateway's
 * posts at most every defer_ms): once a deferred client's read got
 * something less than defer_ms after the last one that did (posts far
 * apart are read as they come), what it sends next waits for the hold's end
 * (msg_srv_defer_due) or for another client's message, and is
 * dispatched before that message; msg_srv_drain reads it at once; a
 * held client's hang-up is still seen; a deferred client is held to the
 * narrower rules it was given, and its sibling is its process's other
 * connection (a gateway's lease lives there).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include "tests/unit/unix_sock.h"
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include "lib/clock.h"
#include "lib/log.h"
#include "lib/msg.h"
#include "lib/msgsrv.h"

enum { S_NONE, S_HELLO, S_POST, S_ASK, S_MAX };
static const struct msg_rule s_req[S_MAX] = {
	[S_HELLO] = { "hello", 0, 0 },
	[S_POST] = { "post", 1, 64 },
	[S_ASK] = { "ask", 1, 64 },
};
static const struct msg_rule s_later[S_MAX] = {
	[S_POST] = { "post", 1, 64 },
};
static const struct msg_rule s_none[S_MAX] = { [S_NONE] = { NULL, 0, 0 } };
static const struct msg_rules srv_end = { { s_req, S_MAX }, { s_none, S_MAX } };
static const struct msg_rules later_end = { { s_later, S_MAX },
	{ s_none, S_MAX } };
static const struct msg_rules cli_end = { { s_none, S_MAX }, { s_req, S_MAX } };

/* What was dispatched, in order: "d1 u1 d2 ..." (the payloads). */
static char seen[1024];

static int
note(struct msg_client *cl, const struct msg *m, char *err, size_t errlen)
{
	size_t n = strlen(seen);

	snprintf(seen + n, sizeof(seen) - n, "%s%.*s", n ? " " : "",
	    (int)m->hdr.len, (const char *)m->data);
	return 0;
}

static int
hello(struct msg_client *cl, const struct msg *m, char *err, size_t errlen)
{
	if (msg_srv_defer(cl, &later_end) != 0) {
		snprintf(err, errlen, "cannot defer");
		return -1;
	}
	return 0;
}

static const msg_srv_fn s_dispatch[S_MAX] = {
	[S_HELLO] = hello, [S_POST] = note, [S_ASK] = note,
};

/* The loop's part (child/child.c child_poll_loop, without the hold's
 * timer): poll what the server asks for, serve what is ready. */
static void
pump(struct msg_srv *s)
{
	for (int i = 0; i < 5; i++) {
		struct pollfd pfd[8];
		struct msg_client *who[8];
		size_t n = msg_srv_pollfds(s, pfd, who, 8);

		if (poll(pfd, (nfds_t)n, 10) > 0)
			msg_srv_events(s, pfd, who, n);
	}
}

/* One poll, served: what is ready now, at once. */
static void
serve_once(struct msg_srv *s)
{
	struct pollfd pfd[8];
	struct msg_client *who[8];
	size_t n = msg_srv_pollfds(s, pfd, who, 8);

	assert_true(poll(pfd, (nfds_t)n, 1000) > 0);
	msg_srv_events(s, pfd, who, n);
}

static void
say(int fd, uint16_t type, const char *text)
{
	assert_int_equal(msg_send_blocking(fd, &cli_end, type, 1, text,
	    strlen(text)), 0);
}

/* Deferred client d posts text, read at once: seen is then want, and
 * the server holds or not. */
static void
post_read(struct msg_srv *s, int d, const char *text, const char *want,
    int holding)
{
	say(d, S_POST, text);
	serve_once(s);
	assert_string_equal(seen, want);
	assert_int_equal(s->holding, holding);
}

static void
test_deferred_waits_and_goes_first(void **state)
{
	struct msg_srv_ops ops = { .name = "test.sock", .rules = &srv_end,
		.dispatch = s_dispatch, .max_clients = 4, .defer_ms = 60000 };
	struct msg_srv s;
	char path[108], err[128];
	int lfd = test_listener("msgsrv-defer", path, sizeof(path)), d, u;
	int64_t due;

	(void)state;
	seen[0] = '\0';
	assert_int_equal(msg_srv_init(&s, &ops, lfd, err, sizeof(err)), 0);
	d = test_dial(path);
	u = test_dial(path);
	pump(&s);
	assert_int_equal(msg_send_blocking(d, &cli_end, S_HELLO, 0, NULL, 0), 0);
	pump(&s);
	assert_int_equal(s.ndeferred, 1);
	/* Both are this process's: the deferred one's sibling is the other. */
	{
		const struct msg_client *dc = NULL, *uc = NULL;

		for (uint32_t i = 0; i < ops.max_clients; i++)
			if (s.cl[i].conn.fd >= 0 && s.cl[i].deferred)
				dc = &s.cl[i];
			else if (s.cl[i].conn.fd >= 0)
				uc = &s.cl[i];
		assert_non_null(dc);
		assert_non_null(uc);
		assert_ptr_equal(msg_srv_sibling(dc), uc);
		assert_ptr_equal(msg_srv_sibling(uc), uc);
	}
	/* Not held yet: the first post is read at once and starts no hold
	 * (none came a hold before it); the next, a hold after it or less,
	 * is read at once and holds. */
	post_read(&s, d, "d0", "d0", 0);
	post_read(&s, d, "d1", "d0 d1", 1);
	/* Held: the next ones wait ... */
	say(d, S_POST, "d2");
	say(d, S_POST, "d3");
	pump(&s);
	assert_string_equal(seen, "d0 d1");
	/* ... until another client's message, which they precede. */
	say(u, S_ASK, "u1");
	pump(&s);
	assert_string_equal(seen, "d0 d1 d2 d3 u1");
	say(d, S_POST, "d4");
	pump(&s);
	assert_string_equal(seen, "d0 d1 d2 d3 u1");
	/* Before the hold's end nothing is read; the loop's wake is then. */
	due = msg_srv_defer_due(&s, clock_mono_ms());
	assert_true(due > clock_mono_ms());
	assert_string_equal(seen, "d0 d1 d2 d3 u1");
	/* At its end the deferred clients are read, and it holds again. */
	due = msg_srv_defer_due(&s, due);
	assert_string_equal(seen, "d0 d1 d2 d3 u1 d4");
	assert_true(due != 0);
	/* A hold whose reading found nothing ends: POLLIN again. */
	assert_int_equal(msg_srv_defer_due(&s, due), 0);
	assert_int_equal(s.holding, 0);
	/* msg_srv_drain reads a held client at once. */
	say(d, S_POST, "d5");
	pump(&s);
	say(d, S_POST, "d6");
	pump(&s);
	assert_string_equal(seen, "d0 d1 d2 d3 u1 d4 d5");
	msg_srv_drain(&s);
	assert_string_equal(seen, "d0 d1 d2 d3 u1 d4 d5 d6");
	/* A held client that leaves: what it sent is read, then it goes. */
	say(d, S_POST, "d7");
	close(d);
	pump(&s);
	assert_string_equal(seen, "d0 d1 d2 d3 u1 d4 d5 d6 d7");
	assert_int_equal(msg_srv_nclients(&s), 1);
	assert_int_equal(s.ndeferred, 0);
	msg_srv_free(&s);
	close(u);
	close(lfd);
	unlink(path);
}

/* Posts further apart than a hold are read as they come and start none
 * (a lightly loaded hub: each would wake the server anyway, and a hold
 * would add a wake-up at its end); the first that follows one within a
 * hold starts it. */
static void
test_deferred_sparse(void **state)
{
	struct msg_srv_ops ops = { .name = "test.sock", .rules = &srv_end,
		.dispatch = s_dispatch, .max_clients = 4, .defer_ms = 20 };
	struct msg_srv s;
	char path[108], err[128];
	int lfd = test_listener("msgsrv-defer", path, sizeof(path)), d;

	(void)state;
	seen[0] = '\0';
	assert_int_equal(msg_srv_init(&s, &ops, lfd, err, sizeof(err)), 0);
	d = test_dial(path);
	assert_int_equal(msg_send_blocking(d, &cli_end, S_HELLO, 0, NULL, 0), 0);
	pump(&s);
	assert_int_equal(s.ndeferred, 1);
	for (const char *const *p = (const char *const[]){ "p0", "p1", "p2",
	    NULL }; *p != NULL; p++) {
		say(d, S_POST, *p);
		pump(&s);			/* 50 ms: past the hold */
		assert_int_equal(s.holding, 0);
		assert_int_equal(msg_srv_defer_due(&s, clock_mono_ms()), 0);
	}
	assert_string_equal(seen, "p0 p1 p2");
	/* Two within a hold: the second is read at once and holds. */
	post_read(&s, d, "q0", "p0 p1 p2 q0", 0);
	post_read(&s, d, "q1", "p0 p1 p2 q0 q1", 1);
	msg_srv_free(&s);
	close(d);
	close(lfd);
	unlink(path);
}

/* A deferred client sends what only others may: dropped, others served. */
static void
test_deferred_rules(void **state)
{
	struct msg_srv_ops ops = { .name = "test.sock", .rules = &srv_end,
		.dispatch = s_dispatch, .max_clients = 4, .defer_ms = 1 };
	struct msg_srv s;
	char path[108], err[128], b;
	int lfd = test_listener("msgsrv-defer", path, sizeof(path)), d, u;

	(void)state;
	seen[0] = '\0';
	assert_int_equal(msg_srv_init(&s, &ops, lfd, err, sizeof(err)), 0);
	d = test_dial(path);
	u = test_dial(path);
	assert_int_equal(msg_send_blocking(d, &cli_end, S_HELLO, 0, NULL, 0), 0);
	pump(&s);
	say(d, S_ASK, "no");
	msg_srv_drain(&s);
	assert_int_equal(msg_srv_nclients(&s), 1);
	assert_int_equal(recv(d, &b, 1, 0), 0);	/* closed by the server */
	say(u, S_ASK, "u1");
	pump(&s);
	assert_string_equal(seen, "u1");
	/* A server that defers nobody refuses the hello. */
	msg_srv_free(&s);
	ops.defer_ms = 0;
	assert_int_equal(msg_srv_init(&s, &ops, lfd, err, sizeof(err)), 0);
	close(d);
	d = test_dial(path);
	assert_int_equal(msg_send_blocking(d, &cli_end, S_HELLO, 0, NULL, 0), 0);
	pump(&s);
	assert_int_equal(msg_srv_nclients(&s), 0);
	msg_srv_free(&s);
	close(d);
	close(u);
	close(lfd);
	unlink(path);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_deferred_waits_and_goes_first),
		cmocka_unit_test(test_deferred_rules),
		cmocka_unit_test(test_deferred_sparse),
	};

	log_init("test", "msgsrv", LOG_LVL_WARN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
