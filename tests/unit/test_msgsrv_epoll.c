/*
 * Unit tests of lib/msgsrv's epoll mode (the tunnel's tunnel.sock, served
 * from inside the lws loop through one epoll descriptor): a client that
 * sends a reply type the wrong way is refused at its header, logged with
 * its pid and dropped while another client is served; a client that does
 * not read gets its answers once it does (POLLOUT is asked for exactly
 * while output waits, then given up); a closed client's fd leaves the
 * epoll set and its slot's stale events are ignored; queued answers wait
 * for msg_srv_write and then go out together.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include "tests/unit/unix_sock.h"
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include "lib/log.h"
#include "lib/msg.h"
#include "lib/msgsrv.h"

enum { S_NONE, S_REQ, S_ANS, S_MAX };
static const struct msg_rule s_req[S_MAX] = { [S_REQ] = { "req", 1, 70000 } };
static const struct msg_rule s_ans[S_MAX] = { [S_ANS] = { "ans", 1, 70000 } };
static const struct msg_rules srv_end = { { s_req, S_MAX }, { s_ans, S_MAX } };
static const struct msg_rules cli_end = { { s_ans, S_MAX }, { s_req, S_MAX } };

static int
echo(struct msg_client *cl, const struct msg *m, char *err, size_t errlen)
{
	return msg_srv_send(cl, S_ANS, m->hdr.reqid, m->data, m->hdr.len);
}

static const msg_srv_fn s_dispatch[S_MAX] = { [S_REQ] = echo };

/* What the server logged (the sink), to assert on. */
static char logged[8192];
static size_t nlogged;

static void
sink(const char *line, size_t len)
{
	if (nlogged + len < sizeof(logged)) {
		memcpy(logged + nlogged, line, len);
		nlogged += len;
		logged[nlogged] = '\0';
	}
}

/* The event library's part: poll the one descriptor, serve when ready. */
static void
pump(struct msg_srv *s, int epfd)
{
	for (int i = 0; i < 10; i++) {
		struct pollfd p = { epfd, POLLIN, 0 };
		if (poll(&p, 1, 20) > 0)
			msg_srv_epoll_events(s);
	}
}

static int
closed_by_peer(int fd)
{
	char b;
	struct pollfd p = { fd, POLLIN, 0 };

	if (poll(&p, 1, 500) <= 0)
		return 0;
	return recv(fd, &b, 1, MSG_DONTWAIT) == 0;
}

static struct msg_client *
client_of_pid(struct msg_srv *s, int n)
{
	for (uint32_t i = 0; i < s->ops->max_clients; i++)
		if (s->cl[i].conn.fd >= 0 && n-- == 0)
			return &s->cl[i];
	return NULL;
}

static void
test_epoll_drops_violator_serves_other(void **state)
{
	struct msg_srv_ops ops = { .name = "test.sock", .rules = &srv_end,
		.dispatch = s_dispatch, .max_clients = 4 };
	struct msg_srv s;
	struct msg_hdr h = { 3, S_ANS, MSG_VERSION, 0, 7 };
	char path[108], err[128], want[160];
	struct msg m;
	int lfd = test_listener("msgsrv-ep", path, sizeof(path)), epfd, bad, good;

	(void)state;
	assert_int_equal(msg_srv_init(&s, &ops, lfd, err, sizeof(err)), 0);
	epfd = msg_srv_epoll(&s, err, sizeof(err));
	assert_true(epfd >= 0);
	bad = test_dial(path);
	good = test_dial(path);
	pump(&s, epfd);
	assert_int_equal(msg_srv_nclients(&s), 2);
	nlogged = 0;
	log_set_sink(sink);
	/* bad sends an answer type to the server: refused at its header. */
	assert_int_equal(write(bad, &h, sizeof(h)), sizeof(h));
	assert_int_equal(write(bad, "abc", 3), 3);
	assert_int_equal(msg_send_blocking(good, &cli_end, S_REQ, 1, "hi", 2), 0);
	pump(&s, epfd);
	log_set_sink(NULL);
	assert_int_equal(closed_by_peer(bad), 1);
	snprintf(want, sizeof(want), "test.sock: dropping client pid %d uid %d: "
	    "protocol violation: ans message arrived at the end that sends it",
	    (int)getpid(), (int)getuid());
	assert_non_null(strstr(logged, want));
	assert_int_equal(msg_recv_blocking(good, &cli_end, &m, 1000, err,
	    sizeof(err)), 1);
	assert_int_equal(m.hdr.type, S_ANS);
	assert_int_equal(m.hdr.reqid, 1);
	assert_string_equal((char *)m.data, "hi");
	free(m.data);
	assert_int_equal(msg_srv_nclients(&s), 1);
	/* good keeps being served after the drop. */
	assert_int_equal(msg_send_blocking(good, &cli_end, S_REQ, 2, "again", 5), 0);
	pump(&s, epfd);
	assert_int_equal(msg_recv_blocking(good, &cli_end, &m, 1000, err,
	    sizeof(err)), 1);
	assert_int_equal(m.hdr.reqid, 2);
	free(m.data);
	msg_srv_free(&s);
	close(epfd);
	close(bad); close(good); close(lfd);
	unlink(path);
}

/* A reader that pauses: output queues past the socket, POLLOUT goes on;
 * once it reads, everything arrives in order and POLLOUT goes off. */
static void
test_epoll_output_waits_for_reader(void **state)
{
	struct msg_srv_ops ops = { .name = "test.sock", .rules = &srv_end,
		.dispatch = s_dispatch, .max_clients = 2 };
	struct msg_srv s;
	static char big[60000];
	char path[108], err[128];
	struct msg m;
	struct msg_client *cl;
	struct msg_conn rd;
	int lfd = test_listener("msgsrv-ep", path, sizeof(path)), epfd, c, sz = 4096, got = 0;
	const int n = 40;	/* 2.4 MB of answers: more than the socket takes */

	(void)state;
	assert_int_equal(msg_srv_init(&s, &ops, lfd, err, sizeof(err)), 0);
	epfd = msg_srv_epoll(&s, err, sizeof(err));
	assert_true(epfd >= 0);
	c = test_dial(path);
	assert_int_equal(setsockopt(c, SOL_SOCKET, SO_RCVBUF, &sz, sizeof(sz)), 0);
	pump(&s, epfd);
	cl = client_of_pid(&s, 0);
	assert_non_null(cl);
	assert_int_equal(cl->watched, EPOLLIN);
	memset(big, 'x', sizeof(big));
	for (int i = 0; i < n; i++) {
		big[0] = (char)('a' + i % 26);
		assert_int_equal(msg_send_blocking(c, &cli_end, S_REQ,
		    (uint64_t)i + 1, big, sizeof(big)), 0);
		pump(&s, epfd);
	}
	/* Not all of it fits: the server waits for output room. */
	assert_true(msg_pending(&cl->conn));
	assert_int_equal(cl->watched, EPOLLIN | EPOLLOUT);
	/* Now it reads (without blocking: the server runs in this thread). */
	assert_int_equal(fcntl(c, F_SETFL, O_NONBLOCK), 0);
	msg_conn_init(&rd, c, &cli_end);
	for (int i = 0, t = 0; i < n && t < 2000; t++) {
		int rc = msg_fill(&rd);
		assert_true(rc == -2 || rc > 0);
		while (i < n && msg_next(&rd, &m, err, sizeof(err)) == 1) {
			assert_int_equal(m.hdr.reqid, (uint64_t)i + 1);
			assert_int_equal(m.hdr.len, sizeof(big));
			assert_int_equal(((char *)m.data)[0], 'a' + i % 26);
			i++;
			got = i;
		}
		pump(&s, epfd);
	}
	assert_int_equal(got, n);
	msg_conn_free(&rd);
	pump(&s, epfd);
	assert_false(msg_pending(&cl->conn));
	assert_int_equal(cl->watched, EPOLLIN);
	/* The client leaves: its slot is freed, the fd leaves the set. */
	close(c);
	pump(&s, epfd);
	assert_int_equal(msg_srv_nclients(&s), 0);
	msg_srv_free(&s);
	close(epfd);
	close(lfd);
	unlink(path);
}

/* msg_srv_queue writes nothing and asks for no POLLOUT; msg_srv_write
 * then sends what was queued, in order, in one write. */
static void
test_epoll_queue_then_write(void **state)
{
	struct msg_srv_ops ops = { .name = "test.sock", .rules = &srv_end,
		.dispatch = s_dispatch, .max_clients = 2 };
	struct msg_srv s;
	char path[108], err[128], buf[256];
	struct msg_client *cl;
	int lfd = test_listener("msgsrv-ep", path, sizeof(path)), epfd, c;
	ssize_t n;

	(void)state;
	assert_int_equal(msg_srv_init(&s, &ops, lfd, err, sizeof(err)), 0);
	epfd = msg_srv_epoll(&s, err, sizeof(err));
	assert_true(epfd >= 0);
	c = test_dial(path);
	pump(&s, epfd);
	cl = client_of_pid(&s, 0);
	assert_non_null(cl);
	assert_int_equal(msg_srv_queue(cl, S_ANS, 1, "one", 3), 0);
	assert_int_equal(msg_srv_queue(cl, S_ANS, 2, "two", 3), 0);
	assert_int_equal(msg_srv_queue(cl, S_ANS, 3, "three", 5), 0);
	/* A type the server may not send is refused at the queue. */
	assert_int_equal(msg_srv_queue(cl, S_REQ, 4, "x", 1), -1);
	assert_true(msg_pending(&cl->conn));
	assert_int_equal(cl->watched, EPOLLIN);
	n = recv(c, buf, sizeof(buf), MSG_DONTWAIT);
	assert_int_equal(n, -1);	/* nothing written yet */
	msg_srv_write(cl);
	assert_false(msg_pending(&cl->conn));
	assert_int_equal(cl->watched, EPOLLIN);
	/* All three in one read, in order. */
	n = recv(c, buf, sizeof(buf), 0);
	assert_int_equal(n, 3 * MSG_HDR_SIZE + 11);
	for (size_t off = 0, i = 0; i < 3; i++) {
		static const char *const want[] = { "one", "two", "three" };
		struct msg_hdr h;

		memcpy(&h, buf + off, sizeof(h));
		assert_int_equal(h.type, S_ANS);
		assert_int_equal(h.reqid, i + 1);
		assert_int_equal(h.len, strlen(want[i]));
		assert_memory_equal(buf + off + MSG_HDR_SIZE, want[i], h.len);
		off += MSG_HDR_SIZE + h.len;
	}
	msg_srv_free(&s);
	close(epfd);
	close(c);
	close(lfd);
	unlink(path);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_epoll_drops_violator_serves_other),
		cmocka_unit_test(test_epoll_output_waits_for_reader),
		cmocka_unit_test(test_epoll_queue_then_write),
	};

	log_init("test", "msgsrv", LOG_LVL_INFO);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
