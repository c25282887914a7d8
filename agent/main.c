/*
 * agent/main: agentd's entry point — the command line (`agentd keygen`,
 * `agentd [-t] [-c FILE]`), start-up (config, key, logging), then the
 * tunnel client (agent/ag_tunnel) until SIGTERM/SIGINT.  Signal handlers only
 * set flags; fatal() is used during start-up only.
 */
#include "agent/ag_conf.h"
#include "agent/ag_key.h"
#include "agent/ag_tunnel.h"
#include "agent/platform.h"
#include "lib/log.h"

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

static volatile sig_atomic_t got_stop;	/* SIGTERM or SIGINT, 0 = none */
static volatile sig_atomic_t got_hup;

static void
on_signal(int sig)
{
	if (sig == SIGHUP)
		got_hup = 1;
	else
		got_stop = sig;
}

static _Noreturn void
usage(void)
{
	fprintf(stderr,
	    "usage: agentd [-t] [-c config]\n"
	    "       agentd keygen [-f] -o keyfile\n");
	exit(2);
}

/* agentd keygen [-f] -o FILE: new key to FILE, public key on stdout. */
static int
cmd_keygen(int argc, char **argv)
{
	struct ag_key key;
	const char *out = NULL;
	char err[512];
	int ch, force = 0, rc;

	optind = 1;
	while ((ch = getopt(argc, argv, "fo:")) != -1) {
		switch (ch) {
		case 'f':
			force = 1;
			break;
		case 'o':
			out = optarg;
			break;
		default:
			usage();
		}
	}
	if (out == NULL || optind != argc)
		usage();
	ag_key_generate(&key);
	rc = ag_key_save(&key, out, force, err, sizeof(err));
	if (rc != 0) {
		fprintf(stderr, "agentd: %s%s\n", err,
		    rc == PLAT_EXISTS ? " (keygen -f replaces it)" : "");
		ag_key_wipe(&key);
		return 1;
	}
	if (printf("%s\n", key.pk_b64) < 0 || fflush(stdout) != 0) {
		fprintf(stderr, "agentd: writing the public key: %s\n",
		    strerror(errno));
		ag_key_wipe(&key);
		return 1;
	}
	fprintf(stderr, "agentd: secret key written to %s (mode 0600); "
	    "register the public key above with the hub\n", out);
	ag_key_wipe(&key);
	return 0;
}

static void
install_signals(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sigemptyset(&sa.sa_mask);
	sa.sa_handler = on_signal;
	if (sigaction(SIGTERM, &sa, NULL) == -1 ||
	    sigaction(SIGINT, &sa, NULL) == -1 ||
	    sigaction(SIGHUP, &sa, NULL) == -1)
		fatal("sigaction: %s", strerror(errno));
	sa.sa_handler = SIG_IGN;
	if (sigaction(SIGPIPE, &sa, NULL) == -1)
		fatal("sigaction: %s", strerror(errno));
}

/* Dial the hub and serve the tunnel until SIGTERM/SIGINT. */
static int
ag_serve(const struct ag_conf *cf, const struct ag_key *key)
{
	struct ag_tunnel *t;
	char err[512];

	t = ag_tunnel_new(cf, err, sizeof(err));
	if (t == NULL) {
		log_error("refusing to start: %s", err);
		return 1;
	}
	if (ag_tunnel_add(t, (uint64_t)cf->id, key->sk) != 0) {
		ag_tunnel_free(t);
		log_error("out of memory");
		return 1;
	}
	ag_tunnel_run(t, &got_stop);
	log_info("stopping (signal %d)", (int)got_stop);
	ag_tunnel_free(t);
	return 0;
}

/* agentd.ini with provider keys in it deserves the key file's care. */
static void
warn_config_perms(const char *path, const struct ag_conf *cf)
{
	char err[512];

	if (cf->nchannels > 0 && plat_check_key_perms(path, err,
	    sizeof(err)) != 0)
		log_warn("the config holds provider keys, but %s", err);
}

static void
log_startup(const struct ag_conf *cf, const struct ag_key *key)
{
	log_info("agent id %" PRId64 ", public key %s", cf->id, key->pk_b64);
	log_info("hub %s (host %s, port %d), %d pin%s", cf->hub_url,
	    cf->hub_host, cf->hub_port, cf->pins.n, cf->pins.n == 1 ? "" : "s");
#if SWB_TEST_BUILD
	log_warn("this is a test build (TEST_BUILD=1): it takes hub pins, a "
	    "CA and host overrides from its INI; never deploy it");
	if (cf->ca_file[0] != '\0')
		log_info("test: trusting CA %s", cf->ca_file);
	if (cf->connect_to[0] != '\0')
		log_info("test: connect_to %s", cf->connect_to);
#endif
	for (int i = 0; i < cf->nchannels; i++) {
		const struct ag_channel *ch = &cf->channels[i];

		/* Never the provider key. */
		log_info("channel %s: %s, grade %s, %d model%s, rpm %" PRId64
		    ", tpm %" PRId64, ch->name, ag_provider_name(ch->provider),
		    ag_grade_name(ch->grade), ch->nmodels,
		    ch->nmodels == 1 ? "" : "s", ch->rpm, ch->tpm);
	}
	if (cf->nchannels == 0)
		log_warn("no [channel.*] sections: this agent offers nothing");
}

int
main(int argc, char **argv)
{
	static struct ag_conf cf;
	struct plat_paths pp;
	struct ag_key key;
	const char *conf_path;
	char err[1024];
	int ch, test_only = 0, rc;

	if (sodium_init() < 0) {
		fprintf(stderr, "agentd: libsodium failed to initialise\n");
		return 1;
	}
	if (argc > 1 && strcmp(argv[1], "keygen") == 0)
		return cmd_keygen(argc - 1, argv + 1);

	plat_default_paths(&pp);
	conf_path = pp.config;
	while ((ch = getopt(argc, argv, "c:th")) != -1) {
		switch (ch) {
		case 'c':
			conf_path = optarg;
			break;
		case 't':
			test_only = 1;
			break;
		default:
			usage();
		}
	}
	if (optind != argc)
		usage();

	if (test_only) {
		if (ag_conf_load(conf_path, &cf, err, sizeof(err)) != 0) {
			fprintf(stderr, "agentd: %s\n", err);
			return 1;
		}
		sodium_memzero(&cf, sizeof(cf));
		printf("configuration OK\n");
		return 0;
	}

	log_init("agentd", "main", LOG_LVL_INFO);
	install_signals();
	if (ag_conf_load(conf_path, &cf, err, sizeof(err)) != 0)
		fatal("%s", err);
	log_set_level(cf.log_level);
	if (ag_key_load(&key, cf.key_file, err, sizeof(err)) != 0)
		fatal("refusing to start: key file: %s", err);
	warn_config_perms(conf_path, &cf);
	log_startup(&cf, &key);

	rc = ag_serve(&cf, &key);

	ag_key_wipe(&key);
	sodium_memzero(&cf, sizeof(cf));
	return rc;
}
