/*
 * Unit tests of lib/msg: framing across partial reads, and refusal of
 * truncated, oversized, wrongly sized, unknown and wrong-version messages;
 * rule tables per direction (a reply type on the request side is refused
 * at its header); lib/msgsrv: a client that breaks the protocol is dropped
 * while the others are served, and a full server makes room by closing
 * its longest-idle client.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include "tests/unit/unix_sock.h"
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <stdlib.h>
#include <poll.h>
#include <stdio.h>
#include <sys/un.h>
#include "lib/ipc.h"
#include "lib/msg.h"
#include "lib/msgsrv.h"
#include "lib/ipc.h"
#include "lib/frame.h"

enum { T_NONE, T_FIXED, T_VAR, T_MAX };
struct fixed { uint64_t a; uint32_t b; uint32_t c; };

static const struct msg_rule rule[T_MAX] = {
	[T_FIXED] = { "fixed", sizeof(struct fixed), sizeof(struct fixed) },
	[T_VAR] = { "var", 1, 1000 },
};
static const struct msg_rules rules = { { rule, T_MAX }, { rule, T_MAX } };

static void
pair(int sv[2])
{
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
}

static void
raw(int fd, uint32_t len, uint16_t type, uint8_t ver, const void *p, size_t plen)
{
	struct msg_hdr h = { len, type, ver, 0, 7 };
	assert_int_equal(write(fd, &h, sizeof(h)), sizeof(h));
	if (plen)
		assert_int_equal(write(fd, p, plen), (ssize_t)plen);
}

static void
test_roundtrip_byte_by_byte(void **state)
{
	int sv[2];
	struct msg_conn in, out;
	struct fixed f = { 1, 2, 3 }, g;
	struct msg m;
	char err[128];
	unsigned char buf[256];
	ssize_t n;

	pair(sv);
	msg_conn_init(&out, sv[0], &rules);
	msg_conn_init(&in, sv[1], &rules);
	assert_int_equal(msg_enqueue(&out, T_FIXED, 99, &f, sizeof(f)), 0);
	assert_int_equal(msg_enqueue(&out, T_VAR, 100, "hello", 5), 0);
	assert_int_equal(msg_flush(&out), 1);
	/* Feed the receiver one byte at a time through a second pair. */
	n = read(sv[1], buf, sizeof(buf));
	assert_int_equal(n, 16 + sizeof(f) + 16 + 5);
	int sv2[2];
	pair(sv2);
	msg_conn_init(&in, sv2[1], &rules);
	int got = 0;
	for (ssize_t i = 0; i < n; i++) {
		assert_int_equal(write(sv2[0], buf + i, 1), 1);
		assert_int_equal(msg_fill(&in), 1);
		int rc;
		while ((rc = msg_next(&in, &m, err, sizeof(err))) == 1) {
			if (got == 0) {
				assert_int_equal(m.hdr.type, T_FIXED);
				assert_int_equal(m.hdr.reqid, 99);
				memcpy(&g, m.data, sizeof(g));
				assert_memory_equal(&f, &g, sizeof(f));
			} else {
				assert_int_equal(m.hdr.type, T_VAR);
				assert_int_equal(m.hdr.len, 5);
				assert_string_equal((char *)m.data, "hello");
			}
			got++;
		}
		assert_int_equal(rc, 0);
	}
	assert_int_equal(got, 2);
	msg_conn_free(&in);
	msg_conn_free(&out);
	close(sv[0]); close(sv[1]); close(sv2[0]); close(sv2[1]);
}

static int
recv_one(const void *hdr_and_payload_writer_unused, int fd, char *err)
{
	struct msg_conn c;
	struct msg m;
	int rc;

	msg_conn_init(&c, fd, &rules);
	(void)msg_fill(&c);
	rc = msg_next(&c, &m, err, 128);
	msg_conn_free(&c);
	return rc;
}

static void
test_refusals(void **state)
{
	int sv[2];
	char err[128];
	struct fixed f = { 0 };
	char big[2000] = { 0 };

	/* Wrong size for a fixed message: one byte short. */
	pair(sv);
	raw(sv[0], sizeof(f) - 1, T_FIXED, MSG_VERSION, &f, sizeof(f) - 1);
	assert_int_equal(recv_one(NULL, sv[1], err), -1);
	assert_non_null(strstr(err, "fixed message of 15 bytes"));
	close(sv[0]); close(sv[1]);

	/* Oversized: refused from the header alone, before any payload. */
	pair(sv);
	raw(sv[0], 1001, T_VAR, MSG_VERSION, NULL, 0);
	assert_int_equal(recv_one(NULL, sv[1], err), -1);
	assert_non_null(strstr(err, "1001 bytes"));
	close(sv[0]); close(sv[1]);

	/* A huge length from a hostile peer. */
	pair(sv);
	raw(sv[0], 0xffffffffu, T_VAR, MSG_VERSION, NULL, 0);
	assert_int_equal(recv_one(NULL, sv[1], err), -1);
	close(sv[0]); close(sv[1]);

	/* Unknown type, and type 0. */
	pair(sv);
	raw(sv[0], 4, 77, MSG_VERSION, "abcd", 4);
	assert_int_equal(recv_one(NULL, sv[1], err), -1);
	assert_non_null(strstr(err, "type 77"));
	close(sv[0]); close(sv[1]);
	pair(sv);
	raw(sv[0], 0, T_NONE, MSG_VERSION, NULL, 0);
	assert_int_equal(recv_one(NULL, sv[1], err), -1);
	close(sv[0]); close(sv[1]);

	/* Wrong version. */
	pair(sv);
	raw(sv[0], 3, T_VAR, MSG_VERSION + 1, "abc", 3);
	assert_int_equal(recv_one(NULL, sv[1], err), -1);
	assert_non_null(strstr(err, "version"));
	close(sv[0]); close(sv[1]);

	/* Truncated: the header promises 10 bytes, 4 arrive: wait, not parse. */
	pair(sv);
	raw(sv[0], 10, T_VAR, MSG_VERSION, "abcd", 4);
	assert_int_equal(recv_one(NULL, sv[1], err), 0);
	close(sv[0]); close(sv[1]);

	/* The sender refuses what the rules refuse, too. */
	struct msg_conn c;
	msg_conn_init(&c, -1, &rules);
	assert_int_equal(msg_enqueue(&c, T_VAR, 0, big, sizeof(big)), -1);
	assert_int_equal(msg_enqueue(&c, T_FIXED, 0, big, 3), -1);
	assert_int_equal(msg_enqueue(&c, T_NONE, 0, NULL, 0), -1);
	msg_conn_free(&c);
}

static void
test_blocking_truncated(void **state)
{
	int sv[2];
	struct msg m;
	char err[128];

	/* The peer closes half-way through a payload. */
	pair(sv);
	raw(sv[0], 10, T_VAR, MSG_VERSION, "abcd", 4);
	close(sv[0]);
	assert_int_equal(msg_recv_blocking(sv[1], &rules, &m, 1000, err,
	    sizeof(err)), -1);
	assert_non_null(strstr(err, "truncated"));
	close(sv[1]);

	/* Nothing at all within the timeout. */
	pair(sv);
	assert_int_equal(msg_recv_blocking(sv[1], &rules, &m, 50, err,
	    sizeof(err)), -1);
	assert_non_null(strstr(err, "no answer"));
	close(sv[0]); close(sv[1]);

	/* A complete message is NUL-terminated for the reader. */
	pair(sv);
	assert_int_equal(msg_send_blocking(sv[0], &rules, T_VAR, 5, "xyz", 3), 0);
	assert_int_equal(msg_recv_blocking(sv[1], &rules, &m, 1000, err,
	    sizeof(err)), 1);
	assert_int_equal(m.data[3], '\0');
	assert_string_equal((char *)m.data, "xyz");
	free(m.data);
	close(sv[0]); close(sv[1]);
}

/* A header alone: the payload it announces never comes. */
static int
hdr_only(const struct msg_rules *r, uint16_t type, uint32_t len, char *err)
{
	int sv[2], rc;
	struct msg_conn c;
	struct msg m;

	pair(sv);
	raw(sv[0], len, type, MSG_VERSION, NULL, 0);
	msg_conn_init(&c, sv[1], r);
	(void)msg_fill(&c);
	err[0] = '\0';
	rc = msg_next(&c, &m, err, 128);
	msg_conn_free(&c);
	close(sv[0]);
	close(sv[1]);
	return rc;
}

static void
test_direction(void **state)
{
	char err[128];
	struct msg_conn c;
	struct ipc_token_info ti = { 0 };

	/* A reply sent to billing is refused at its header, before the
	 * payload is read; the gateway's end waits for it (0). */
	assert_int_equal(hdr_only(&bill_server_rules, IPC_TOKEN_INFO,
	    sizeof(struct ipc_token_info), err), -1);
	assert_non_null(strstr(err, "token-info message arrived at the end "
	    "that sends it"));
	assert_int_equal(hdr_only(&bill_gw_rules, IPC_TOKEN_INFO,
	    sizeof(struct ipc_token_info), err), 0);
	/* A gateway receives no ledger receipts; the tunnel does. */
	assert_int_equal(hdr_only(&bill_gw_rules, IPC_LEDGER_RECEIPT,
	    sizeof(struct ipc_receipt), err), -1);
	assert_int_equal(hdr_only(&bill_tun_rules, IPC_LEDGER_RECEIPT,
	    sizeof(struct ipc_receipt), err), 0);
	/* Nor does the tunnel receive token answers. */
	assert_int_equal(hdr_only(&bill_tun_rules, IPC_TOKEN_INFO,
	    sizeof(struct ipc_token_info), err), -1);
	/* Billing takes requests. */
	assert_int_equal(hdr_only(&bill_server_rules, IPC_TOKEN_GET,
	    sizeof(struct ipc_token_get), err), 0);
	/* The other sockets. */
	assert_int_equal(hdr_only(&mod_server_rules, IPC_MOD_VERDICT,
	    sizeof(struct ipc_mod_verdict), err), -1);
	assert_int_equal(hdr_only(&mod_gw_rules, IPC_MOD_CHECK, 10, err), -1);
	assert_int_equal(hdr_only(&relay_tun_rules, IPC_RELAY_HEAD,
	    sizeof(struct ipc_relay_head), err), -1);
	assert_int_equal(hdr_only(&relay_gw_rules, IPC_RELAY_START,
	    sizeof(struct ipc_relay_start), err), -1);
	assert_int_equal(hdr_only(&ipc_admin_server_rules, IPC_ADMIN_RESP, 10,
	    err), -1);
	assert_int_equal(hdr_only(&ipc_admin_client_rules, IPC_ADMIN_REQ, 10,
	    err), -1);

	/* An end sends only its own direction's types. */
	msg_conn_init(&c, -1, &bill_gw_rules);
	assert_int_equal(msg_enqueue(&c, IPC_TOKEN_INFO, 0, &ti, sizeof(ti)), -1);
	msg_conn_free(&c);
	msg_conn_init(&c, -1, &bill_server_rules);
	assert_int_equal(msg_enqueue(&c, IPC_TOKEN_INFO, 0, &ti, sizeof(ti)), 0);
	msg_conn_free(&c);
}

/* The ends of billing.sock agree: billing receives exactly what the
 * gateways and the tunnel send, and sends exactly what they receive; no
 * end both sends and receives a type. */
static void
test_bill_tables_agree(void **state)
{
	const struct msg_rules *ends[] = { &bill_server_rules, &bill_gw_rules,
		&bill_tun_rules, &mod_server_rules, &mod_gw_rules,
		&relay_tun_rules, &relay_gw_rules, &ipc_admin_server_rules,
		&ipc_admin_client_rules };

	for (unsigned t = 0; t < IPC_TYPE_MAX; t++) {
		int srx = bill_server_rules.rx.rule[t].name != NULL;
		int stx = bill_server_rules.tx.rule[t].name != NULL;
		int ctx = bill_gw_rules.tx.rule[t].name != NULL ||
		    bill_tun_rules.tx.rule[t].name != NULL;
		int crx = bill_gw_rules.rx.rule[t].name != NULL ||
		    bill_tun_rules.rx.rule[t].name != NULL;
		assert_int_equal(srx, ctx);
		assert_int_equal(stx, crx);
		for (size_t e = 0; e < sizeof(ends) / sizeof(ends[0]); e++)
			assert_false(ends[e]->rx.rule[t].name != NULL &&
			    ends[e]->tx.rule[t].name != NULL);
	}
}

/* ---- lib/msgsrv ---------------------------------------------------------- */

enum { S_NONE, S_REQ, S_ANS, S_MAX };
static const struct msg_rule s_req[S_MAX] = { [S_REQ] = { "req", 1, 100 } };
static const struct msg_rule s_ans[S_MAX] = { [S_ANS] = { "ans", 1, 100 } };
static const struct msg_rules srv_end = { { s_req, S_MAX }, { s_ans, S_MAX } };
static const struct msg_rules cli_end = { { s_ans, S_MAX }, { s_req, S_MAX } };

/* Echo; a payload "bad" breaks the protocol beyond the header. */
static int
echo(struct msg_client *cl, const struct msg *m, char *err, size_t errlen)
{
	if (strcmp((const char *)m->data, "bad") == 0) {
		snprintf(err, errlen, "bad payload");
		return -1;
	}
	return msg_srv_send(cl, S_ANS, m->hdr.reqid, m->data, m->hdr.len);
}

static const msg_srv_fn s_dispatch[S_MAX] = { [S_REQ] = echo };

/* Run the server's side of a poll loop for a few rounds. */
static void
pump(struct msg_srv *s)
{
	struct pollfd pfd[16];
	struct msg_client *who[16];

	for (int i = 0; i < 5; i++) {
		size_t n = msg_srv_pollfds(s, pfd, who, 16);
		if (poll(pfd, n, 20) > 0)
			msg_srv_events(s, pfd, who, n);
		msg_srv_flush(s);
	}
}

/* 1: the server closed fd (EOF); 0: it is still open. */
static int
closed_by_peer(int fd)
{
	char b;
	struct pollfd p = { fd, POLLIN, 0 };

	if (poll(&p, 1, 200) <= 0)
		return 0;
	return recv(fd, &b, 1, MSG_DONTWAIT) == 0;
}

/* fd asks the server to echo text: the answer comes back, unchanged. */
static void
echoed(struct msg_srv *s, int fd, const char *text)
{
	char err[128];
	struct msg m;

	assert_int_equal(msg_send_blocking(fd, &cli_end, S_REQ, 1, text,
	    strlen(text)), 0);
	pump(s);
	assert_int_equal(msg_recv_blocking(fd, &cli_end, &m, 1000, err,
	    sizeof(err)), 1);
	assert_int_equal(m.hdr.type, S_ANS);
	assert_int_equal(m.hdr.len, strlen(text));
	assert_memory_equal(m.data, text, strlen(text));
	free(m.data);
}

static void
test_msgsrv_drops_violator(void **state)
{
	struct msg_srv_ops ops = { .name = "test.sock", .rules = &srv_end,
		.dispatch = s_dispatch, .max_clients = 4 };
	struct msg_srv s;
	char path[108], err[128];
	struct msg m;
	int lfd = test_listener("msgsrv", path, sizeof(path)), a, b, c;

	assert_int_equal(msg_srv_init(&s, &ops, lfd, err, sizeof(err)), 0);
	a = test_dial(path);
	b = test_dial(path);
	c = test_dial(path);
	pump(&s);
	assert_int_equal(msg_srv_nclients(&s), 3);
	/* a sends an answer type to the server: dropped at the header. */
	raw(a, 3, S_ANS, MSG_VERSION, "abc", 3);
	/* c's payload is refused by its handler: dropped too. */
	assert_int_equal(msg_send_blocking(c, &cli_end, S_REQ, 2, "bad", 3), 0);
	/* b is served all the same. */
	assert_int_equal(msg_send_blocking(b, &cli_end, S_REQ, 1, "hi", 2), 0);
	pump(&s);
	assert_int_equal(closed_by_peer(a), 1);
	assert_int_equal(closed_by_peer(c), 1);
	assert_int_equal(msg_recv_blocking(b, &cli_end, &m, 1000, err,
	    sizeof(err)), 1);
	assert_int_equal(m.hdr.type, S_ANS);
	assert_string_equal((char *)m.data, "hi");
	free(m.data);
	assert_int_equal(msg_srv_nclients(&s), 1);
	/* A dispatch table that does not match the rules is refused. */
	{
		static const msg_srv_fn none[S_MAX] = { 0 };
		struct msg_srv_ops bad = ops;
		struct msg_srv s2;
		bad.dispatch = none;
		assert_int_equal(msg_srv_init(&s2, &bad, -1, err, sizeof(err)), -1);
	}
	msg_srv_free(&s);
	close(a); close(b); close(c); close(lfd);
	unlink(path);
}

static int busy_slot = -1;

static int
busy_one(struct msg_client *cl)
{
	return (int)cl->slot == busy_slot;
}

static void
test_msgsrv_full_evicts_idle(void **state)
{
	struct msg_srv_ops ops = { .name = "test.sock", .rules = &srv_end,
		.dispatch = s_dispatch, .max_clients = 2, .evict_idle = 1,
		.busy = busy_one };
	struct msg_srv s;
	char path[108], err[128];
	int lfd = test_listener("msgsrv", path, sizeof(path)), a, b, c;

	assert_int_equal(msg_srv_init(&s, &ops, lfd, err, sizeof(err)), 0);
	a = test_dial(path);
	pump(&s);
	usleep(20000);
	b = test_dial(path);
	pump(&s);
	busy_slot = (int)s.cl[0].slot;	/* a has work in flight: kept */
	assert_int_equal(s.cl[0].conn.fd >= 0, 1);
	c = test_dial(path);
	pump(&s);
	/* Full: b (idle, not busy) made room for c, a stayed. */
	assert_int_equal(closed_by_peer(b), 1);
	assert_int_equal(closed_by_peer(a), 0);
	echoed(&s, c, "yo");
	busy_slot = -1;
	msg_srv_free(&s);
	close(a); close(b); close(c); close(lfd);
	unlink(path);
}

/* The loops visit the slots below nused only: a new client takes the
 * lowest free slot, the bound falls when the top client leaves, and a
 * client above a freed slot is still polled and served. */
static void
test_msgsrv_slot_bound(void **state)
{
	struct msg_srv_ops ops = { .name = "test.sock", .rules = &srv_end,
		.dispatch = s_dispatch, .max_clients = 8 };
	struct msg_srv s;
	struct pollfd pfd[16];
	struct msg_client *who[16];
	char path[108], err[128];
	int lfd = test_listener("msgsrv", path, sizeof(path)), a, b, c, d;

	(void)state;
	assert_int_equal(msg_srv_init(&s, &ops, lfd, err, sizeof(err)), 0);
	assert_int_equal(s.nused, 0);
	a = test_dial(path);
	b = test_dial(path);
	c = test_dial(path);
	pump(&s);
	assert_int_equal(s.nused, 3);
	/* The listener and the three clients, nothing of the free slots. */
	assert_int_equal(msg_srv_pollfds(&s, pfd, who, 16), 4);
	/* b leaves: a hole below c, the bound stays for c. */
	close(b);
	pump(&s);
	assert_int_equal(msg_srv_nclients(&s), 2);
	assert_int_equal(s.nused, 3);
	echoed(&s, c, "hc");
	/* The next client fills the hole, not a slot above c. */
	d = test_dial(path);
	pump(&s);
	assert_int_equal(s.nused, 3);
	assert_int_equal(s.cl[1].conn.fd >= 0, 1);
	/* c and d leave: the bound falls to a, the last one below. */
	close(c);
	close(d);
	pump(&s);
	assert_int_equal(msg_srv_nclients(&s), 1);
	assert_int_equal(s.nused, 1);
	assert_int_equal(msg_srv_pollfds(&s, pfd, who, 16), 2);
	echoed(&s, a, "ha");
	msg_srv_free(&s);
	assert_int_equal(s.nused, 0);
	close(a); close(lfd);
	unlink(path);
}

/* Flow control on tunnel.sock: relay-credit is exactly its struct, both
 * ways through a socket pair, and a credit never exceeds a window. */
static void
test_relay_credit(void **state)
{
	struct ipc_relay_credit cr = { FRAME_WINDOW / 4, 0 }, got;
	struct msg_hdr h = { sizeof(cr), IPC_RELAY_CREDIT, MSG_VERSION, 0, 7 };
	struct msg m;
	char err[128];
	int sv[2];

	(void)state;
	assert_int_equal(msg_check_hdr(&relay_rules, &h, err, sizeof(err)), 0);
	assert_string_equal(msg_type_name(&relay_rules, IPC_RELAY_CREDIT),
	    "relay-credit");
	h.len = sizeof(cr) - 1;
	assert_int_equal(msg_check_hdr(&relay_rules, &h, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "relay-credit"));
	h.len = sizeof(cr) + 1;
	assert_int_equal(msg_check_hdr(&relay_rules, &h, err, sizeof(err)), -1);
	/* Not a type billing or moderation takes. */
	h.len = sizeof(cr);
	assert_int_equal(msg_check_hdr(&bill_server_rules, &h, err, sizeof(err)), -1);

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	assert_int_equal(msg_send_blocking(sv[0], &relay_rules, IPC_RELAY_CREDIT,
	    7, &cr, sizeof(cr)), 0);
	assert_int_equal(msg_recv_blocking(sv[1], &relay_rules, &m, 1000, err,
	    sizeof(err)), 1);
	assert_int_equal(m.hdr.type, IPC_RELAY_CREDIT);
	assert_int_equal(m.hdr.reqid, 7);
	assert_int_equal(m.hdr.len, sizeof(got));
	memcpy(&got, m.data, sizeof(got));
	assert_int_equal(got.bytes, FRAME_WINDOW / 4);
	assert_true(got.bytes <= FRAME_WINDOW);
	free(m.data);
	close(sv[0]);
	close(sv[1]);
}

/* Realtime: ws-in goes gateway -> tunnel only, ws-out tunnel -> gateway
 * only, both at least a struct ipc_ws_msg; the per-response charge both
 * ledgers share is a pure function of the session key and the number. */
static void
test_realtime_ipc(void **state)
{
	struct msg_hdr in = { sizeof(struct ipc_ws_msg) + 5, IPC_RELAY_WS_IN,
	    MSG_VERSION, 0, 9 };
	struct msg_hdr out = in;
	char err[128];
	uint64_t n1, r1, n2, r2;

	(void)state;
	out.type = IPC_RELAY_WS_OUT;
	/* The tunnel's end receives ws-in, the gateway's ws-out. */
	assert_int_equal(msg_check_hdr(&relay_tun_rules, &in, err, sizeof(err)), 0);
	assert_int_equal(msg_check_hdr(&relay_tun_rules, &out, err, sizeof(err)), -1);
	assert_int_equal(msg_check_hdr(&relay_gw_rules, &out, err, sizeof(err)), 0);
	assert_int_equal(msg_check_hdr(&relay_gw_rules, &in, err, sizeof(err)), -1);
	in.len = sizeof(struct ipc_ws_msg) - 1;
	assert_int_equal(msg_check_hdr(&relay_tun_rules, &in, err, sizeof(err)), -1);

	assert_int_equal(ipc_response_charge("00000000deadbeef-0000123400000001",
	    1, &n1, &r1), 0);
	assert_int_equal(ipc_response_charge("00000000deadbeef-0000123400000001",
	    1, &n2, &r2), 0);
	assert_true(n1 == n2 && r1 == 1 && r2 == 1);
	assert_int_equal(ipc_response_charge("00000000deadbeef-0000123400000002",
	    1, &n2, &r2), 0);
	assert_true(n1 != n2);
	assert_int_equal(ipc_response_charge("00000000deadbeef-0000123400000001",
	    0, &n2, &r2), -1);
	assert_int_equal(ipc_response_charge("00000000DEADBEEF-0000123400000001",
	    1, &n2, &r2), -1);
	assert_int_equal(ipc_response_charge("00000000deadbeef_0000123400000001",
	    1, &n2, &r2), -1);
	assert_int_equal(ipc_response_charge("short", 1, &n2, &r2), -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_roundtrip_byte_by_byte),
		cmocka_unit_test(test_refusals),
		cmocka_unit_test(test_blocking_truncated),
		cmocka_unit_test(test_direction),
		cmocka_unit_test(test_bill_tables_agree),
		cmocka_unit_test(test_msgsrv_drops_violator),
		cmocka_unit_test(test_msgsrv_full_evicts_idle),
		cmocka_unit_test(test_msgsrv_slot_bound),
		cmocka_unit_test(test_relay_credit),
		cmocka_unit_test(test_realtime_ipc),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
