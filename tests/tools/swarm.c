/*
 * tests/tools/swarm: a lightweight fleet of test agents in one process,
 * for the tunnel's scale test.  It runs agentd's own tunnel client code
 * (agent/ag_tunnel.c), one link per identity.
 *
 *   swarm keygen N FILE        write N fresh keys, one "PUBKEY SECRET" per line
 *   swarm run -c INI FILE [MODE]
 *                              FILE: "AGENT_ID SECRET" lines; runs until
 *                              SIGTERM, printing "online N" when N changes.
 *                              MODE (test builds): replay | junk | order |
 *                              greedy (ignores the streams' windows),
 *                              misbehaviours the hub must survive.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sodium.h>
#include "agent/ag_conf.h"
#include "agent/ag_tunnel.h"
#include "lib/log.h"

static volatile sig_atomic_t stop;

static void
on_term(int sig)
{
	stop = 1;
}

static int
keygen(int n, const char *path)
{
	FILE *f = fopen(path, "w");
	unsigned char pk[32], sk[64];
	char pkb[64], skb[128];

	if (f == NULL) {
		perror(path);
		return 1;
	}
	for (int i = 0; i < n; i++) {
		crypto_sign_keypair(pk, sk);
		sodium_bin2base64(pkb, sizeof(pkb), pk, 32, sodium_base64_VARIANT_ORIGINAL);
		sodium_bin2base64(skb, sizeof(skb), sk, 64, sodium_base64_VARIANT_ORIGINAL);
		fprintf(f, "%s %s\n", pkb, skb);
	}
	fclose(f);
	return 0;
}

static int
run(const char *ini, const char *path, const char *mode)
{
	static struct ag_conf cf;
	struct ag_tunnel *t;
	char err[512], line[256], skb[128];
	unsigned long long id;
	unsigned char sk[64];
	size_t sklen;
	int n = 0, last = -1;
	FILE *f;
	struct sigaction sa;

	if (ag_conf_load(ini, &cf, err, sizeof(err)) != 0) {
		fprintf(stderr, "swarm: %s\n", err);
		return 1;
	}
	log_set_level(LOG_LVL_WARN);
	t = ag_tunnel_new(&cf, err, sizeof(err));
	if (t == NULL) {
		fprintf(stderr, "swarm: %s\n", err);
		return 1;
	}
	if (mode != NULL) {
#if SWB_TEST_BUILD
		ag_tunnel_test_mode(t, strcmp(mode, "replay") == 0 ? AG_TEST_REPLAY :
		    strcmp(mode, "junk") == 0 ? AG_TEST_JUNK :
		    strcmp(mode, "order") == 0 ? AG_TEST_ORDER :
		    strcmp(mode, "greedy") == 0 ? AG_TEST_GREEDY : AG_TEST_NONE);
		log_set_level(LOG_LVL_INFO);
#else
		fprintf(stderr, "swarm: modes need a test build\n");
		return 1;
#endif
	}
	f = fopen(path, "r");
	if (f == NULL) {
		perror(path);
		return 1;
	}
	while (fgets(line, sizeof(line), f) != NULL) {
		if (sscanf(line, "%llu %127s", &id, skb) != 2 ||
		    sodium_base642bin(sk, sizeof(sk), skb, strlen(skb), NULL, &sklen,
		    NULL, sodium_base64_VARIANT_ORIGINAL) != 0 || sklen != 64) {
			fprintf(stderr, "swarm: bad line %d\n", n + 1);
			return 1;
		}
		ag_tunnel_add(t, id, sk);
		n++;
	}
	fclose(f);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_term;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	while (!stop) {
		int on;
		ag_tunnel_service(t);
		on = ag_tunnel_online(t);
		if (on != last) {
			printf("online %d of %d\n", on, n);
			fflush(stdout);
			last = on;
		}
	}
	ag_tunnel_free(t);
	return 0;
}

int
main(int argc, char **argv)
{
	log_init("swarm", "swarm", LOG_LVL_WARN);
	if (sodium_init() < 0)
		return 1;
	if (argc == 4 && strcmp(argv[1], "keygen") == 0)
		return keygen(atoi(argv[2]), argv[3]);
	if ((argc == 5 || argc == 6) && strcmp(argv[1], "run") == 0 &&
	    strcmp(argv[2], "-c") == 0)
		return run(argv[3], argv[4], argc == 6 ? argv[5] : NULL);
	fprintf(stderr, "usage: swarm keygen N FILE | swarm run -c INI FILE [MODE]\n");
	return 2;
}
