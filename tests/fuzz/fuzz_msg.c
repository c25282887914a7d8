/*
 * tests/fuzz/fuzz_msg: libFuzzer target for the IPC message decoder
 * (lib/msg) with the rule tables of lib/ipc: what a process reads from a
 * peer on its Unix sockets, and what the admin socket reads from whoever
 * may connect to it.
 *
 * Input: byte 0 picks the rule table (relay, billing, moderation, admin)
 * and seeds how the bytes are cut; the rest is written into a socketpair
 * in those pieces and decoded the way the children do (msg_fill, then
 * msg_next until it needs more), and a second time through the blocking
 * reader hubctl uses (msg_recv_blocking, the writer's end shut).  Checked:
 *   - every message returned obeys its type's rule, its payload is a
 *     NUL-terminated copy of exactly hdr.len bytes of the input, and the
 *     messages never consume more bytes than were written;
 *   - a violation comes with a reason and ends decoding;
 *   - both readers return the same messages, and the blocking one ends in
 *     a clean EOF exactly when the stream ended on a message boundary;
 *   - an admin request's argv splits within its bounds.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>

#include "lib/ipc.h"
#include "lib/msg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

_Noreturn static void
die(const char *what)
{
	fprintf(stderr, "fuzz_msg: %s\n", what);
	abort();
}

static const struct msg_rules *const tables[] = {
	&relay_rules, &relay_tun_rules, &relay_gw_rules, &bill_server_rules,
	&bill_gw_rules, &bill_tun_rules, &mod_server_rules, &mod_gw_rules,
	&ipc_admin_server_rules, &ipc_admin_client_rules,
};
#define NTABLES	(sizeof(tables) / sizeof(tables[0]))

/* The messages the non-blocking path decoded, to compare with the other. */
struct seen {
	struct msg_hdr hdr;
	size_t off;		/* payload offset in the input */
};

static void
check_msg(const struct msg_rules *r, const struct msg *m, const uint8_t *in,
    size_t inlen, size_t consumed)
{
	char err[160];
	const struct msg_rule *rule;

	if (msg_check_hdr(r, &m->hdr, err, sizeof(err)) != 0)
		die("a message that breaks its rule was returned");
	rule = &r->rx.rule[m->hdr.type];	/* what this end receives */
	if (m->hdr.len < rule->min || m->hdr.len > rule->max)
		die("payload size outside its rule");
	if (consumed + MSG_HDR_SIZE + m->hdr.len > inlen)
		die("a message reaches past the bytes written");
	if (m->data == NULL || m->data[m->hdr.len] != '\0')
		die("payload not a NUL-terminated copy");
	if (memcmp(m->data, in + consumed + MSG_HDR_SIZE, m->hdr.len) != 0)
		die("payload differs from the bytes written");
	if (r == &ipc_admin_server_rules && m->hdr.type == IPC_ADMIN_REQ) {
		char *argv[16];
		char *copy = malloc(m->hdr.len ? m->hdr.len : 1);
		int argc;

		if (copy == NULL)
			die("out of memory");
		memcpy(copy, m->data, m->hdr.len);
		argc = ipc_admin_split(copy, m->hdr.len, argv, 16);
		if (argc < -1 || argc == 0 || argc > 16)
			die("ipc_admin_split returned a bad count");
		for (int i = 0; i < argc; i++)
			if (argv[i] < copy || argv[i] >= copy + m->hdr.len)
				die("an argv entry outside the payload");
		free(copy);
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const struct msg_rules *r;
	struct msg_conn c;
	struct msg m;
	struct seen seen[64];
	size_t nseen = 0, off = 0, consumed = 0, n;
	const uint8_t *in;
	char err[160];
	int sv[2], rc = 0, blocking;
	uint32_t x;

	if (size < 1)
		return 0;
	r = tables[data[0] % NTABLES];
	x = (uint32_t)data[0] * 2654435761u + 7;
	in = data + 1;
	n = size - 1;

	/* The children's path: pieces in, drain after each. */
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0)
		die("socketpair");
	msg_conn_init(&c, sv[0], r);
	while (off < n && rc >= 0) {
		size_t piece;

		x ^= x << 13, x ^= x >> 17, x ^= x << 5;
		piece = 1 + x % (data[0] & 0x80 ? 5 : 300);
		if (piece > n - off)
			piece = n - off;
		if (write(sv[1], in + off, piece) != (ssize_t)piece)
			die("write");
		off += piece;
		while ((rc = msg_fill(&c)) > 0)
			;
		if (rc != -2)
			die("msg_fill failed on a live socket");
		while ((rc = msg_next(&c, &m, err, sizeof(err))) == 1) {
			check_msg(r, &m, in, n, consumed);
			if (nseen < sizeof(seen) / sizeof(seen[0])) {
				seen[nseen].hdr = m.hdr;
				seen[nseen].off = consumed + MSG_HDR_SIZE;
			}
			nseen++;
			consumed += MSG_HDR_SIZE + m.hdr.len;
		}
		if (rc == -1 && err[0] == '\0')
			die("a violation without a reason");
	}
	msg_conn_free(&c);
	close(sv[0]);
	close(sv[1]);

	/* hubctl's path: every byte, then EOF. */
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0)
		die("socketpair");
	if (n > 0 && write(sv[1], in, n) != (ssize_t)n)
		die("write");
	shutdown(sv[1], SHUT_WR);
	for (size_t i = 0;; i++) {
		err[0] = '\0';
		blocking = msg_recv_blocking(sv[0], r, &m, 0, err, sizeof(err));
		if (blocking != 1) {
			if (i != nseen)
				die("the blocking reader saw a different number "
				    "of messages");
			if (blocking == 0 && (rc == -1 || consumed != n))
				die("clean EOF inside a message or after a "
				    "violation");
			if (blocking == -1 && rc != -1 && consumed == n)
				die("an error where the stream ended cleanly");
			if (blocking == -1 && err[0] == '\0')
				die("a blocking error without a reason");
			break;
		}
		if (i >= nseen)
			die("the blocking reader saw more messages");
		if (i < sizeof(seen) / sizeof(seen[0]) &&
		    (memcmp(&m.hdr, &seen[i].hdr, sizeof(m.hdr)) != 0 ||
		    m.data[m.hdr.len] != '\0' ||
		    memcmp(m.data, in + seen[i].off, m.hdr.len) != 0))
			die("the two readers disagree on a message");
		free(m.data);
	}
	close(sv[0]);
	close(sv[1]);
	return 0;
}

#ifdef FUZZ_SEEDGEN
/* One table byte, then messages. */
struct seed {
	unsigned char buf[4096];
	size_t len;
};

static void
add(struct seed *s, uint16_t type, uint64_t reqid, const void *p, size_t len)
{
	struct msg_hdr h = { (uint32_t)len, type, MSG_VERSION, 0, reqid };

	if (s->len + sizeof(h) + len > sizeof(s->buf))
		die("seed too large");
	memcpy(s->buf + s->len, &h, sizeof(h));
	memcpy(s->buf + s->len + sizeof(h), p, len);
	s->len += sizeof(h) + len;
}

static void
write_seed(const char *dir, const char *name, struct seed *s)
{
	char path[512];
	FILE *fp;

	LLVMFuzzerTestOneInput(s->buf, s->len);	/* seeds pass the checks */
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if ((fp = fopen(path, "wb")) == NULL)
		die(path);
	if (fwrite(s->buf, 1, s->len, fp) != s->len || fclose(fp) != 0)
		die(path);
}

int
main(int argc, char **argv)
{
	struct seed s;
	struct {
		struct ipc_relay_start rs;
		char body[32];
	} start;
	struct ipc_relay_head head = { .status = 200,
	    .content_type = "text/event-stream" };
	struct ipc_relay_end end = { .ok = 1 };
	struct ipc_relay_cancel cancel;
	struct ipc_token_get tg;
	struct ipc_agent_get ag = { .agent_id = 42 };
	static const char admin[] = "channels\0--json";
	static const char mod[] = "{\"input\":[\"hello\"]}";
	static const char chunk[] = "data: {\"choices\":[]}\n\n";

	if (argc != 2) {
		fprintf(stderr, "usage: %s DIR\n", argv[0]);
		return 2;
	}
	memset(&start, 0, sizeof(start));
	start.rs.agent_id = 7;
	start.rs.body_len = sizeof(start.body);
	snprintf(start.rs.channel, sizeof(start.rs.channel), "main");
	snprintf(start.rs.op, sizeof(start.rs.op), "chat");
	snprintf(start.rs.model, sizeof(start.rs.model), "gpt-4o");
	memset(start.body, '{', sizeof(start.body));
	memset(&cancel, 0, sizeof(cancel));
	memset(&tg, 0, sizeof(tg));

	s.len = 0;
	s.buf[s.len++] = 0;			/* relay */
	add(&s, IPC_RELAY_START, 1, &start, sizeof(start));
	add(&s, IPC_RELAY_HEAD, 1, &head, sizeof(head));
	add(&s, IPC_RELAY_CHUNK, 1, chunk, sizeof(chunk) - 1);
	add(&s, IPC_RELAY_END, 1, &end, sizeof(end));
	add(&s, IPC_RELAY_CANCEL, 2, &cancel, sizeof(cancel));
	write_seed(argv[1], "relay", &s);

	s.len = 0;
	s.buf[s.len++] = 0x81;			/* billing, small pieces */
	add(&s, IPC_TOKEN_GET, 3, &tg, sizeof(tg));
	add(&s, IPC_AGENT_GET, 0, &ag, sizeof(ag));
	write_seed(argv[1], "billing", &s);

	s.len = 0;
	s.buf[s.len++] = 2;			/* moderation */
	add(&s, IPC_MOD_CHECK, 4, mod, sizeof(mod) - 1);
	write_seed(argv[1], "moderation", &s);

	s.len = 0;
	s.buf[s.len++] = 3;			/* admin */
	add(&s, IPC_ADMIN_REQ, 5, admin, sizeof(admin));
	add(&s, IPC_ADMIN_RESP, 5, "{}", 2);
	write_seed(argv[1], "admin", &s);

	s.len = 0;
	s.buf[s.len++] = 3;			/* a truncated message */
	add(&s, IPC_ADMIN_REQ, 6, admin, sizeof(admin));
	s.len -= 4;
	write_seed(argv[1], "admin-truncated", &s);
	return 0;
}
#endif
