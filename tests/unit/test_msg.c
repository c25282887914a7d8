/*
 * Unit tests of lib/msg: framing across partial reads, and refusal of
 * truncated, oversized, wrongly sized, unknown and wrong-version messages.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <stdlib.h>
#include "lib/msg.h"
#include "lib/ipc.h"
#include "lib/frame.h"

enum { T_NONE, T_FIXED, T_VAR, T_MAX };
struct fixed { uint64_t a; uint32_t b; uint32_t c; };

static const struct msg_rule rule[T_MAX] = {
	[T_FIXED] = { "fixed", sizeof(struct fixed), sizeof(struct fixed) },
	[T_VAR] = { "var", 1, 1000 },
};
static const struct msg_rules rules = { rule, T_MAX };

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
	assert_int_equal(msg_check_hdr(&bill_rules, &h, err, sizeof(err)), -1);

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

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_roundtrip_byte_by_byte),
		cmocka_unit_test(test_refusals),
		cmocka_unit_test(test_blocking_truncated),
		cmocka_unit_test(test_relay_credit),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
