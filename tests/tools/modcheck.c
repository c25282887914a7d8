/*
 * tests/tools/modcheck: a test client of the hub's moderation process.  It
 * connects to moderation.sock, sends one IPC_MOD_CHECK per TEXT (all on
 * the one connection, request ids 1..N, as a gateway would) and prints
 * each verdict as it arrives.
 *
 *   modcheck [-t TIMEOUT_MS] [-j] SOCKET TEXT...
 *
 * TEXT is wrapped as {"input":[{"type":"text","text":TEXT}]}; with -j it is
 * sent as it is (raw JSON, or junk).  One TEXT prints
 *   result=allow|flagged|unavailable cached=0|1 detail=...
 * several print "req=N ms=ELAPSED " before each such line, in arrival
 * order.  Exit 0 when every check was answered, 2 on a timeout, 1 on
 * another error.
 */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include "lib/clock.h"
#include "lib/ipc.h"
#include "lib/msg.h"

static const char *
result_name(uint32_t r)
{
	switch (r) {
	case IPC_MOD_ALLOW:
		return "allow";
	case IPC_MOD_FLAGGED:
		return "flagged";
	case IPC_MOD_UNAVAILABLE:
		return "unavailable";
	}
	return "unknown";
}

static char *
wrap(const char *text)
{
	json_t *o = json_pack("{s:[{s:s, s:s}]}", "input", "type", "text",
	    "text", text);
	char *s = o != NULL ? json_dumps(o, JSON_COMPACT) : NULL;

	json_decref(o);
	return s;
}

static void
usage(void)
{
	fprintf(stderr, "usage: modcheck [-t TIMEOUT_MS] [-j] SOCKET TEXT...\n");
	exit(1);
}

int
main(int argc, char **argv)
{
	struct sockaddr_un sun;
	int timeout_ms = 10000, raw = 0, ch, fd, n, answered = 0;
	int64_t t0, left;
	char err[256];

	while ((ch = getopt(argc, argv, "t:j")) != -1) {
		switch (ch) {
		case 't':
			timeout_ms = atoi(optarg);
			break;
		case 'j':
			raw = 1;
			break;
		default:
			usage();
		}
	}
	argc -= optind;
	argv += optind;
	if (argc < 2)
		usage();
	n = argc - 1;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (strlen(argv[0]) >= sizeof(sun.sun_path)) {
		fprintf(stderr, "modcheck: socket path too long\n");
		return 1;
	}
	memcpy(sun.sun_path, argv[0], strlen(argv[0]));
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0 ||
	    connect(fd, (struct sockaddr *)&sun, sizeof(sun)) != 0) {
		fprintf(stderr, "modcheck: %s: %s\n", argv[0], strerror(errno));
		return 1;
	}
	t0 = clock_mono_ms();
	for (int i = 0; i < n; i++) {
		char *payload = raw ? strdup(argv[1 + i]) : wrap(argv[1 + i]);
		if (payload == NULL || msg_send_blocking(fd, &mod_gw_rules,
		    IPC_MOD_CHECK, (uint64_t)(i + 1), payload,
		    strlen(payload)) != 0) {
			fprintf(stderr, "modcheck: cannot send check %d\n", i + 1);
			return 1;
		}
		free(payload);
	}
	while (answered < n) {
		struct ipc_mod_verdict v;
		struct msg m;
		int rc;

		left = t0 + timeout_ms - clock_mono_ms();
		if (left <= 0) {
			fprintf(stderr, "modcheck: timed out with %d of %d "
			    "answered\n", answered, n);
			return 2;
		}
		rc = msg_recv_blocking(fd, &mod_gw_rules, &m, (int)left, err,
		    sizeof(err));
		if (rc == 0) {
			fprintf(stderr, "modcheck: connection closed\n");
			return 1;
		}
		if (rc < 0) {
			if (clock_mono_ms() >= t0 + timeout_ms) {
				fprintf(stderr, "modcheck: timed out with %d of "
				    "%d answered\n", answered, n);
				return 2;
			}
			fprintf(stderr, "modcheck: %s\n", err);
			return 1;
		}
		if (m.hdr.type != IPC_MOD_VERDICT) {
			fprintf(stderr, "modcheck: unexpected message type %u\n",
			    m.hdr.type);
			return 1;
		}
		memcpy(&v, m.data, sizeof(v));
		free(m.data);
		v.detail[sizeof(v.detail) - 1] = '\0';
		if (n > 1)
			printf("req=%llu ms=%lld ", (unsigned long long)m.hdr.reqid,
			    (long long)(clock_mono_ms() - t0));
		printf("result=%s cached=%u detail=%s\n", result_name(v.result),
		    v.cached, v.detail);
		fflush(stdout);
		answered++;
	}
	close(fd);
	return 0;
}
