/*
 * tools/hubctl: the admin client.  Sends one command to hubd's admin socket
 * and prints the answer for people, or as JSON with --json.  `ledger
 * export` asks page after page (--after SEQ) and prints plain CSV.
 *   hubctl [-s SOCKET] [--json] COMMAND [ARGS...]
 */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include "lib/ipc.h"
#include "tools/hubctl.h"
#include "tools/hubctl_fmt.h"

#define DEFAULT_SOCK "var/run/hubd.sock"
#define TIMEOUT_MS 20000

static void
usage(void)
{
	fprintf(stderr,
	    "usage: hubctl [-s SOCKET] [--json] COMMAND [ARGS...]\n"
	    "commands:\n"
	    "  status                 children, pids, restarts, config generation\n"
	    "  reload                 re-read the INI (like SIGHUP)\n"
	    "  stop                   drain and stop hubd (like SIGTERM)\n"
	    "  agent add NAME PUBKEY [--grade A|B|C]\n"
	    "  agent list             registered agents\n"
	    "  agent disable ID       refuse an agent from now on\n"
	    "  agent enable ID        accept it again\n"
	    "  agents                 agents online now\n"
	    "  channels               channels up: figures and router scores\n"
	    "                         (--json: each strategy's score and why)\n"
	    "  kick ID                close an agent's connection\n"
	    "  send ID TEXT           echo TEXT through an agent's tunnel\n"
	    "  token create [--name N] [--quota AMOUNT] [--models m1,m2] [--expires DATE]\n"
	    "        [--policy bound --channels ID[:CH],... | --policy graded --min-grade B\n"
	    "         | --policy best] [--rpm N] [--tpm N]\n"
	    "                         print a new token's secret (shown once)\n"
	    "  token list | token get ID | token disable ID | token enable ID\n"
	    "  token update ID [--name N] [--quota AMOUNT|unlimited] [--models M|*]\n"
	    "        [--expires DATE|never] [--policy P] [--channels C] [--min-grade G]\n"
	    "        [--rpm N] [--tpm N]\n"
	    "  token delete ID        only a token that was never charged\n"
	    "  token requests ID [--limit N] [--before CURSOR] [--from T] [--to T]\n"
	    "                         the token's request log, newest first\n"
	    "  usage [--by token|model|agent|channel] [--from T] [--to T]\n"
	    "        [--bucket hour|day] totals of posted charges (T: unix s,\n"
	    "                         YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ)\n"
	    "  admin-key create [--name N] | admin-key list | admin-key revoke ID\n"
	    "                         keys of the admin HTTP API (shown once)\n"
	    "  dispute resolve ID accept|reject [--reason TEXT]\n"
	    "                         the agent learns the outcome\n"
	    "  price set MODEL --input AMOUNT --output AMOUNT [--cached-input AMOUNT]\n"
	    "        [--cache-write AMOUNT] [--image AMOUNT] [--audio-second AMOUNT]\n"
	    "        [--audio-char AMOUNT] [--video-second AMOUNT] (per one unit)\n"
	    "                         new prices version; AMOUNT per 1,000,000 tokens\n"
	    "  price list             latest prices of each model\n"
	    "  ledger export AGENT_ID the agent's ledger chain as CSV (header first)\n"
	    "  ledger verify [AGENT_ID]\n"
	    "                         walk the chain(s); exit 1 on any break\n"
	    "  disputes               entries agents disagreed with\n"
	    "  release key            the release key's public half (make RELEASE_PK=)\n"
	    "  release publish FILE --version V --os OS --arch ARCH [--no-announce]\n"
	    "                         sign and serve an agentd build; agents are told\n"
	    "  release announce OS ARCH\n"
	    "                         tell that platform's agents again\n"
	    "SOCKET defaults to $SWB_ADMIN or " DEFAULT_SOCK "\n");
	exit(2);
}

json_t *
hubctl_ask(const char *sock, const char *req, size_t len)
{
	struct sockaddr_un sun;
	char err[256];
	struct msg m;
	json_t *o;
	json_error_t jerr;
	int fd, rc;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (strlen(sock) >= sizeof(sun.sun_path)) {
		fprintf(stderr, "hubctl: socket path too long: %s\n", sock);
		return NULL;
	}
	memcpy(sun.sun_path, sock, strlen(sock) + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sun, sizeof(sun)) != 0) {
		fprintf(stderr, "hubctl: cannot connect to %s: %s (is hubd running?)\n",
		    sock, strerror(errno));
		if (fd >= 0)
			close(fd);
		return NULL;
	}
	if (msg_send_blocking(fd, &ipc_admin_client_rules, IPC_ADMIN_REQ, 0, req, len) != 0) {
		fprintf(stderr, "hubctl: cannot send to %s: %s\n", sock, strerror(errno));
		close(fd);
		return NULL;
	}
	rc = msg_recv_blocking(fd, &ipc_admin_client_rules, &m, TIMEOUT_MS, err, sizeof(err));
	close(fd);
	if (rc != 1) {
		fprintf(stderr, "hubctl: %s\n", err);
		return NULL;
	}
	o = json_loadb((const char *)m.data, strnlen((const char *)m.data, m.hdr.len),
	    0, &jerr);
	free(m.data);
	if (o == NULL || !json_is_object(o)) {
		fprintf(stderr, "hubctl: malformed answer from hubd: %s\n", jerr.text);
		json_decref(o);
		return NULL;
	}
	return o;
}

/* ledger export AGENT_ID: every page, one CSV. */
static int
export_all(const char *sock, const char *agent)
{
	char req[256], after[32] = "0";
	json_t *o;
	int n, first = 1;

	for (;;) {
		n = snprintf(req, sizeof(req), "ledger%cexport%c%s%c--after%c%s",
		    0, 0, agent, 0, 0, after);
		if (n < 0 || (size_t)n >= sizeof(req))
			return 2;
		if ((o = hubctl_ask(sock, req, (size_t)n + 1)) == NULL)
			return 1;
		if (!json_is_true(json_object_get(o, "ok"))) {
			const char *e = json_string_value(json_object_get(o, "error"));
			fprintf(stderr, "hubctl: %s\n", e ? e : "failed");
			json_decref(o);
			return 1;
		}
		if (first)
			fputs(json_string_value(json_object_get(o, "header")), stdout);
		first = 0;
		fputs(json_string_value(json_object_get(o, "csv")), stdout);
		snprintf(after, sizeof(after), "%lld",
		    (long long)json_integer_value(json_object_get(o, "last")));
		if (!json_is_true(json_object_get(o, "more"))) {
			json_decref(o);
			break;
		}
		json_decref(o);
	}
	return fflush(stdout) == 0 ? 0 : 1;
}

int
main(int argc, char **argv)
{
	const char *sock = getenv("SWB_ADMIN");
	char req[IPC_ADMIN_MAX];
	size_t len = 0;
	json_t *o;
	int as_json = 0, i, rc;

	if (sock == NULL || sock[0] == '\0')
		sock = DEFAULT_SOCK;
	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "-s") == 0 && i + 1 < argc)
			sock = argv[++i];
		else if (strcmp(argv[i], "--json") == 0)
			as_json = 1;
		else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0)
			usage();
		else
			break;
	}
	if (i == argc)
		usage();
	if (!hubctl_known(argv[i])) {
		fprintf(stderr, "hubctl: unknown command '%s' (try hubctl --help)\n",
		    argv[i]);
		return 2;
	}
	if (hubctl_check(argc - i, argv + i) != 0)
		return 2;
	if (strcmp(argv[i], "release") == 0)
		return hubctl_release(sock, argc - i, argv + i, as_json);
	if (!as_json && argc - i == 3 && strcmp(argv[i], "ledger") == 0 &&
	    strcmp(argv[i + 1], "export") == 0)
		return export_all(sock, argv[i + 2]);
	for (int j = i; j < argc; j++) {
		size_t n = strlen(argv[j]) + 1;
		if (strcmp(argv[j], "--json") == 0) {
			as_json = 1;
			continue;
		}
		if (len + n > sizeof(req)) {
			fprintf(stderr, "hubctl: arguments too long\n");
			return 2;
		}
		memcpy(req + len, argv[j], n);
		len += n;
	}
	if ((o = hubctl_ask(sock, req, len)) == NULL)
		return 1;
	rc = json_is_true(json_object_get(o, "ok")) ? 0 : 1;
	if (as_json) {
		char *s = json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
		printf("%s\n", s);
		free(s);
	} else if (rc != 0) {
		const char *e = json_string_value(json_object_get(o, "error"));
		fprintf(stderr, "hubctl: %s\n", e ? e : "failed");
	} else {
		hubctl_print(argv[i], o);
	}
	json_decref(o);
	return rc;
}
