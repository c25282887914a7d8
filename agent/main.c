/*
 * agent/main: agentd's entry point — the command line (`agentd keygen`,
 * `agentd ledger export|verify|disputes`, `agentd update`, `agentd [-t]
 * [-c FILE]`), start-up (config, key, logging), then the tunnel client
 * (agent/ag_tunnel) until SIGTERM/SIGINT, or until a self-update
 * (agent/ag_update) wants the process re-executed.  Signal handlers only
 * set flags (SIGHUP: reload the channels); fatal() is used during start-up
 * only.
 */
#include "agent/ag_conf.h"
#include "agent/ag_key.h"
#include "agent/ag_ledger.h"
#include "agent/ag_ui.h"
#include "agent/ag_tunnel.h"
#include "agent/ag_update.h"
#include "agent/ag_version.h"
#include "agent/platform.h"
#include "lib/log.h"
#include "lib/release.h"

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
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
	    "       agentd keygen [-f] -o keyfile\n"
	    "       agentd ledger export|verify [-c config] [-a agent_id]\n"
	    "       agentd ledger disputes [-c config] [-a agent_id]\n"
	    "       agentd ui-secret [-c config]\n"
	    "       agentd update [-c config]\n");
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

/* The agent a ledger command is about: -a, else the only one the
 * database knows, else the config's.  0 with a message when ambiguous. */
static uint64_t
ledger_agent(struct ag_ledger *lg, const struct ag_conf *cf, const char *arg)
{
	uint64_t ids[16];
	char *end;
	unsigned long long v;
	int n;

	if (arg != NULL) {
		errno = 0;
		v = strtoull(arg, &end, 10);
		if (errno != 0 || *end != '\0' || arg[0] < '0' || arg[0] > '9' ||
		    v == 0 || v > (unsigned long long)AG_ID_MAX) {
			fprintf(stderr, "agentd: -a %s: not an agent id (1..%"
			    PRId64 ")\n", arg, AG_ID_MAX);
			return 0;
		}
		return v;
	}
	if ((n = ag_ledger_agents(lg, ids, 16)) == -1) {
		fprintf(stderr, "agentd: %s\n", ag_ledger_error(lg));
		return 0;
	}
	if (n == 0)
		return (uint64_t)cf->id;
	if (n == 1)
		return ids[0];
	fprintf(stderr, "agentd: the ledger holds %d agents (", n);
	for (int i = 0; i < n && i < 16; i++)
		fprintf(stderr, "%s%llu", i > 0 ? ", " : "",
		    (unsigned long long)ids[i]);
	fprintf(stderr, "%s); choose one with -a AGENT_ID\n", n > 16 ?
	    ", ..." : "");
	return 0;
}

/* Quote a CSV field (double the quotes). */
static void
put_csv(FILE *out, const char *s)
{
	fputc('"', out);
	for (; *s != '\0'; s++) {
		if (*s == '"')
			fputc('"', out);
		fputc(*s, out);
	}
	fputc('"', out);
}

static int
print_dispute(const struct ag_dispute *d, void *arg)
{
	FILE *out = arg;
	char hub[32], mine[32], when[32];
	time_t t = (time_t)d->created_at;
	struct tm tm;

	money_format(d->hub_amount, hub, sizeof(hub));
	if (d->agent_amount >= 0)
		money_format(d->agent_amount, mine, sizeof(mine));
	else
		snprintf(mine, sizeof(mine), "unknown");
	if (gmtime_r(&t, &tm) == NULL ||
	    strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		snprintf(when, sizeof(when), "%lld", (long long)d->created_at);
	fprintf(out, "%llu,%llu,%s,%s,%s,%s,", (unsigned long long)d->agent_id,
	    (unsigned long long)d->seq, d->request_id, hub, mine, when);
	put_csv(out, d->reason);
	fprintf(out, ",%s,", d->status[0] ? d->status : "open");
	put_csv(out, d->resolution);
	fputc('\n', out);
	return 0;
}

/*
 * agentd ledger export|verify|disputes [-c INI] [-a AGENT_ID]: read the
 * agent's ledger database (state_dir of INI); never creates it.
 *   export    the chain as CSV (LEDGER_CSV_HEADER, one line per entry)
 *   verify    every link, hash and hub signature: "ok: N entries, head H"
 *             or, exit 1, the first broken seq and why
 *   disputes  the disputes raised (every agent's unless -a)
 */
static int
cmd_ledger(int argc, char **argv)
{
	static struct ag_conf cf;
	struct plat_paths pp;
	struct ag_ledger *lg;
	const char *conf_path, *agent_arg = NULL, *sub;
	char err[1024], head[LEDGER_HEX_LEN + 1], why[256];
	uint64_t agent = 0, n, bad;
	int ch, rc = 1, r;

	if (argc < 2)
		usage();
	sub = argv[1];
	if (strcmp(sub, "export") != 0 && strcmp(sub, "verify") != 0 &&
	    strcmp(sub, "disputes") != 0)
		usage();
	plat_tune_heap();
	plat_default_paths(&pp);
	conf_path = pp.config;
	optind = 1;
	while ((ch = getopt(argc - 1, argv + 1, "a:c:")) != -1) {
		switch (ch) {
		case 'a':
			agent_arg = optarg;
			break;
		case 'c':
			conf_path = optarg;
			break;
		default:
			usage();
		}
	}
	if (optind != argc - 1)
		usage();
	log_init("agentd", "ledger", LOG_LVL_WARN);
	if (ag_conf_load(conf_path, &cf, err, sizeof(err)) != 0) {
		fprintf(stderr, "agentd: %s\n", err);
		return 1;
	}
	lg = ag_ledger_open(cf.state_dir, 0, err, sizeof(err));
	sodium_memzero(cf.channels, sizeof(cf.channels));
	if (lg == NULL) {
		fprintf(stderr, "agentd: %s\n", err);
		return 1;
	}
	if (strcmp(sub, "disputes") != 0 || agent_arg != NULL) {
		agent = ledger_agent(lg, &cf, agent_arg);
		if (agent == 0)
			goto out;
	}
	if (strcmp(sub, "export") == 0) {
		if (ag_ledger_export(lg, agent, stdout) < 0 ||
		    fflush(stdout) != 0) {
			fprintf(stderr, "agentd: export of agent %llu: %s\n",
			    (unsigned long long)agent, ag_ledger_error(lg));
			goto out;
		}
	} else if (strcmp(sub, "verify") == 0) {
		r = ag_ledger_verify(lg, agent, &n, head, &bad, why, sizeof(why));
		if (r == -1) {
			fprintf(stderr, "agentd: verify of agent %llu: %s\n",
			    (unsigned long long)agent, why);
			goto out;
		}
		if (r == 1) {
			char pre[32];
			const char *w = why;

			/* lib/ledger's reasons may start with the seq too. */
			snprintf(pre, sizeof(pre), "seq %llu: ",
			    (unsigned long long)bad);
			if (strncmp(w, pre, strlen(pre)) == 0)
				w += strlen(pre);
			fprintf(stderr, "agentd: the ledger of agent %llu is "
			    "broken at seq %llu: %s\n", (unsigned long long)agent,
			    (unsigned long long)bad, w);
			goto out;
		}
		printf("ok: %llu entries, head %s\n", (unsigned long long)n,
		    head);
	} else {
		printf("agent_id,seq,request_id,hub_amount,agent_amount,"
		    "created_at,reason,status,resolution\n");
		if (ag_ledger_disputes(lg, agent, print_dispute, stdout) < 0) {
			fprintf(stderr, "agentd: disputes: %s\n",
			    ag_ledger_error(lg));
			goto out;
		}
	}
	if (fflush(stdout) != 0) {
		fprintf(stderr, "agentd: writing: %s\n", strerror(errno));
		goto out;
	}
	rc = 0;
out:
	ag_ledger_close(lg);
	return rc;
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

/*
 * SIGHUP: read the INI again and take its channels (and log level); the
 * hub connection, identity, pins and key need a restart and are kept
 * (a change is logged).  A bad file is refused, the old channels stay.
 */
static void
reload(struct ag_tunnel *t, const char *path, struct ag_conf *cf)
{
	static struct ag_conf next;
	char err[1024];

	if (ag_conf_load(path, &next, err, sizeof(err)) != 0) {
		log_warn("reload refused, keeping the running channels: %s", err);
		return;
	}
	if (next.id != cf->id || strcmp(next.hub_url, cf->hub_url) != 0 ||
	    strcmp(next.key_file, cf->key_file) != 0 ||
	    memcmp(&next.pins, &cf->pins, sizeof(next.pins)) != 0)
		log_warn("reload: id, hub_url, pins or key_file changed; those "
		    "need a restart and keep their running values");
	memcpy(cf->channels, next.channels, sizeof(cf->channels));
	cf->nchannels = next.nchannels;
	cf->log_level = next.log_level;
	log_set_level(cf->log_level);
	sodium_memzero(&next, sizeof(next));
	ag_tunnel_channels_changed(t);
	log_info("reloaded %s: %d channel(s), announced to the hub", path,
	    cf->nchannels);
}

/* Dial the hub and serve the tunnel until SIGTERM/SIGINT, or until an
 * update is due (*due: main re-executes); SIGHUP reloads the channels
 * without dropping the tunnel. */
static int
ag_serve(struct ag_conf *cf, const struct ag_key *key, const char *path,
    enum ag_update_due *due)
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
	while (!got_stop &&
	    (*due = ag_update_due(ag_tunnel_update(t))) == AG_UPD_NONE) {
		ag_tunnel_service(t);
		if (got_hup) {
			got_hup = 0;
			reload(t, path, cf);
		}
	}
	if (got_stop) {
		*due = AG_UPD_NONE;
		ag_update_stopping(ag_tunnel_update(t));
		log_info("stopping (signal %d)", (int)got_stop);
	} else
		log_info("stopping for the update");
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
	log_info("agentd %s (%s/%s)", ag_version(), release_host_os(),
	    release_host_arch());
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
	enum ag_update_due due = AG_UPD_NONE;

	if (sodium_init() < 0) {
		fprintf(stderr, "agentd: libsodium failed to initialise\n");
		return 1;
	}
	if (argc > 1 && strcmp(argv[1], "keygen") == 0)
		return cmd_keygen(argc - 1, argv + 1);
	if (argc > 1 && strcmp(argv[1], "ledger") == 0)
		return cmd_ledger(argc - 1, argv + 1);
	if (argc > 1 && strcmp(argv[1], "update") == 0)
		return ag_update_cmd(argc - 1, argv + 1);
	if (argc > 1 && strcmp(argv[1], "ui-secret") == 0)
		return ag_ui_cmd_secret(argc - 1, argv + 1);

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

	rc = ag_serve(&cf, &key, conf_path, &due);

	ag_key_wipe(&key);
	if (due != AG_UPD_NONE) {
		ag_update_reexec(&cf, due, argv);	/* only on failure */
		rc = 1;
	}
	sodium_memzero(&cf, sizeof(cf));
	return rc;
}
