/*
 * child/hubconf: the table of hubd's INI keys.  Adding a key is one line
 * here, one member in struct hub_conf, one entry in etc/hubd.ini and one
 * line in the README's reference.
 */
#include "child/hubconf.h"

#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/un.h>
#include "lib/log.h"

static const char *const levels[] = { "debug", "info", "warn", "error", NULL };
static const char *const log_formats[] = { "text", "json", NULL };
/* Indexed like enum hub_loop. */
static const char *const event_loops[] = { "epoll", "poll", NULL };
/* Indexed like enum rt_tie. */
static const char *const tie_breaks[] = { "round_robin", "random", NULL };

#define K(sec, name, type, def, min, max, rel, member, help) \
	{ sec, name, type, def, min, max, rel, offsetof(struct hub_conf, member), \
	  sizeof(((struct hub_conf *)0)->member), NULL, help }

static const struct conf_key keys[] = {
	K("hub", "run_dir", CONF_STR, "var/run", 1, 0, 0, run_dir,
	    "directory of the admin socket and the internal Unix sockets"),
	K("hub", "user", CONF_STR, "", 0, 0, 0, user,
	    "children give up root for this user once they loaded what needs "
	    "root (empty: no change; hubd warns when it runs as root)"),
	{ "hub", "log_level", CONF_ENUM, "info", 0, 0, 1,
	    offsetof(struct hub_conf, log_level), sizeof(int), levels,
	    "debug | info | warn | error" },
	{ "hub", "log_format", CONF_ENUM, "text", 0, 0, 1,
	    offsetof(struct hub_conf, log_format), sizeof(int), log_formats,
	    "text | json (one JSON object per line)" },
	{ "hub", "event_loop", CONF_ENUM, "epoll", 0, 0, 0,
	    offsetof(struct hub_conf, event_loop), sizeof(int), event_loops,
	    "the gateway workers' and the tunnel's loop: epoll (libev; "
	    "libwebsockets' poll() loop where it cannot run on libev) | poll" },
	K("hub", "max_agents", CONF_INT, "1024", 1, 100000, 0, max_agents,
	    "agent slots in the scoreboard"),
	K("hub", "max_channels", CONF_INT, "4096", 1, 1000000, 0, max_channels,
	    "channel slots in the scoreboard"),
	K("hub", "drain_timeout", CONF_MS, "10s", 0, 600000, 1, drain_timeout_ms,
	    "on stop, how long children may drain in-flight work"),
	K("hub", "restart_backoff_max", CONF_MS, "30s", 100, 3600000, 1,
	    restart_backoff_max_ms, "cap of the delay before restarting a crashed child"),
	K("gateway", "listen", CONF_ADDR, "127.0.0.1:8080", 0, 0, 0, gw_listen,
	    "user API address (port 0 picks a free one)"),
	K("gateway", "workers", CONF_INT, "2", 1, 64, 0, gw_workers,
	    "gateway worker processes"),
	K("gateway", "max_body", CONF_BYTES, "4m", 1024, 8388608, 1, gw_max_body,
	    "largest request body accepted (413 above)"),
	K("gateway", "cert", CONF_STR, "", 0, 0, 0, gw_cert,
	    "PEM certificate chain: the user API speaks TLS with HTTP/2 and 1.1"),
	K("gateway", "key", CONF_STR, "", 0, 0, 0, gw_key,
	    "PEM private key of [gateway] cert"),
	K("gateway", "max_header_bytes", CONF_BYTES, "32k", 1024, 1048576, 1,
	    gw_max_header_bytes, "largest request head (431 above)"),
	K("gateway", "body_budget", CONF_BYTES, "64m", 65536, 4294967296LL, 1,
	    gw_body_budget, "request body bytes one worker holds at once; "
	    "uploads wait for room"),
	K("gateway", "header_timeout", CONF_MS, "10s", 100, 600000, 1,
	    gw_header_timeout_ms, "a request head must arrive within this (408)"),
	K("gateway", "body_timeout", CONF_MS, "30s", 100, 600000, 1,
	    gw_body_timeout_ms, "longest pause while a request body arrives (408)"),
	K("gateway", "keepalive_timeout", CONF_MS, "60s", 100, 3600000, 1,
	    gw_keepalive_timeout_ms, "an idle connection is closed after this"),
	K("gateway", "access_log", CONF_BOOL, "no", 0, 0, 1, gw_access_log,
	    "one log line per request: status, surface, model, channel, "
	    "TTFB, duration, tokens, amount"),
	K("admin", "listen", CONF_STR, "", 0, 0, 0, adm_listen,
	    "admin HTTP API and /metrics address, host:port (empty: off)"),
	K("admin", "cert", CONF_STR, "", 0, 0, 0, adm_cert,
	    "PEM certificate chain: the admin API speaks TLS"),
	K("admin", "key", CONF_STR, "", 0, 0, 0, adm_key,
	    "PEM key of [admin] cert"),
	K("tunnel", "listen", CONF_ADDR, "127.0.0.1:8443", 0, 0, 0, tun_listen,
	    "agent tunnel address (TLS, path /tunnel/connect)"),
	K("tunnel", "cert", CONF_STR, "", 0, 0, 0, tun_cert,
	    "PEM certificate chain of the tunnel listener"),
	K("tunnel", "key", CONF_STR, "", 0, 0, 0, tun_key,
	    "PEM private key of the tunnel listener"),
	K("tunnel", "heartbeat_interval", CONF_MS, "5s", 100, 600000, 1,
	    tun_heartbeat_ms, "ping period on each agent connection"),
	K("tunnel", "heartbeat_timeout", CONF_MS, "15s", 300, 3600000, 1,
	    tun_heartbeat_timeout_ms, "an agent silent this long is marked down"),
	K("tunnel", "handshake_timeout", CONF_MS, "5s", 100, 600000, 1,
	    tun_handshake_timeout_ms, "time an agent has to answer the challenge"),
	K("tunnel", "trusted_proxy", CONF_STR, "", 0, 0, 0, tun_trusted_proxy,
	    "IP of a proxy in front of the tunnel: GET /probe answers its "
	    "X-Forwarded-For"),
	K("store", "url", CONF_STR, "sqlite:var/hubd.db", 1, 0, 0, store_url,
	    "sqlite:PATH (embedded default) or postgresql://..."),
	K("store", "ledger_key", CONF_STR, "var/ledger.key", 1, 0, 0, ledger_key,
	    "the hub's Ed25519 key that signs ledger entries (created if missing)"),
	K("release", "key", CONF_STR, "var/release.key", 1, 0, 1, rel_key,
	    "Ed25519 key that signs agentd releases; only hubctl release reads "
	    "it (created if missing; never the ledger key)"),
	K("release", "dir", CONF_STR, "var/releases", 1, 0, 1, rel_dir,
	    "where hubctl release publish stores manifests and binaries the "
	    "tunnel serves at /files/agent/"),
	K("billing", "report_grace", CONF_MS, "60s", 100, 86400000, 1,
	    bill_report_grace_ms, "how long a cut stream waits for its agent's "
	    "usage before the hub's own estimate is billed"),
	K("billing", "stale_reservation", CONF_MS, "15m", 1000, 604800000, 1,
	    bill_stale_reservation_ms, "a reservation never posted (its gateway "
	    "died) is billed from its agent's report, or voided, after this "
	    "long"),
	K("redis", "url", CONF_STR, "", 0, 0, 0, redis_url,
	    "redis://HOST:PORT: global rate-limit counters shared by hubs (empty: off)"),
	K("moderation", "enabled", CONF_BOOL, "no", 0, 0, 1, mod_enabled,
	    "screen requests with the moderation service"),
	K("moderation", "url", CONF_STR, "https://api.openai.com/v1/moderations",
	    1, 0, 0, mod_url, "OpenAI-moderations-compatible endpoint"),
	/* Reloadable so that a rotated key is never echoed in the
	 * needs-a-restart log line. */
	K("moderation", "api_key", CONF_STR, "", 0, 0, 1, mod_api_key,
	    "sent as Authorization: Bearer when set"),
	K("moderation", "model", CONF_STR, "omni-moderation-latest", 1, 0, 0,
	    mod_model, "model named in each moderation call"),
	K("moderation", "timeout", CONF_MS, "2s", 50, 60000, 1, mod_timeout_ms,
	    "longest wait for the service per call"),
	K("moderation", "fail_open", CONF_BOOL, "yes", 0, 0, 1, mod_fail_open,
	    "when the service fails: yes lets the request through, no refuses it"),
	K("moderation", "ca_file", CONF_STR, "", 0, 0, 0, mod_ca_file,
	    "PEM CA trusted for the endpoint (empty: the system's)"),
	K("moderation", "cache_size", CONF_INT, "10000", 0, 1000000, 0,
	    mod_cache_size, "verdicts kept, keyed by content hash (0: no cache)"),
	K("moderation", "cache_ttl", CONF_MS, "10m", 0, 86400000, 0,
	    mod_cache_ttl_ms, "how long a verdict is kept"),
	K("router", "w_headroom", CONF_INT, "200", 0, RT_WEIGHT_MAX, 1,
	    rt_w_headroom, "weight of rpm/tpm room left this minute (bound, graded)"),
	K("router", "w_load", CONF_INT, "250", 0, RT_WEIGHT_MAX, 1, rt_w_load,
	    "weight of requests in flight (fewer is better)"),
	K("router", "w_stability", CONF_INT, "300", 0, RT_WEIGHT_MAX, 1,
	    rt_w_stability, "weight of the error rate and error streak"),
	K("router", "w_availability", CONF_INT, "150", 0, RT_WEIGHT_MAX, 1,
	    rt_w_availability, "weight of agent connected with a fresh heartbeat"),
	K("router", "w_speed", CONF_INT, "200", 0, RT_WEIGHT_MAX, 1, rt_w_speed,
	    "weight of time to first byte and tokens/s (best)"),
	K("router", "w_price", CONF_INT, "100", 0, RT_WEIGHT_MAX, 1, rt_w_price,
	    "weight of price (best; neutral until channels carry a price)"),
	K("router", "w_rating", CONF_INT, "100", 0, RT_WEIGHT_MAX, 1, rt_w_rating,
	    "weight of the channel's grade (graded)"),
	{ "router", "tie_break", CONF_ENUM, "round_robin", 0, 0, 1,
	    offsetof(struct hub_conf, rt_tie_break), sizeof(int), tie_breaks,
	    "round_robin | random: order among channels that score alike" },
	K("router", "tie_margin", CONF_INT, "50", 0, 1000, 1, rt_tie_margin,
	    "channels scoring within this of the best (of 1000) count as equal"),
};

const struct conf_table hub_conf_table = {
	keys, sizeof(keys) / sizeof(keys[0]), NULL, NULL
};

int
hub_conf_load(struct hub_conf *cf, const char *path, char *err, size_t errlen)
{
	if (conf_load(&hub_conf_table, cf, path, err, errlen) != 0)
		return -1;
	if (cf->tun_heartbeat_timeout_ms <= cf->tun_heartbeat_ms) {
		snprintf(err, errlen, "%s: [tunnel] heartbeat_timeout must be "
		    "longer than heartbeat_interval", path);
		return -1;
	}
	if ((cf->gw_cert[0] == '\0') != (cf->gw_key[0] == '\0')) {
		snprintf(err, errlen, "%s: [gateway] cert and key go together", path);
		return -1;
	}
	if ((cf->tun_cert[0] == '\0') != (cf->tun_key[0] == '\0')) {
		snprintf(err, errlen, "%s: [tunnel] cert and key go together", path);
		return -1;
	}
	if (cf->adm_listen[0] != '\0') {
		char host[256];
		int port;
		if (conf_parse_addr(cf->adm_listen, host, sizeof(host), &port) != 0) {
			snprintf(err, errlen, "%s: [admin] listen: bad address '%s'",
			    path, cf->adm_listen);
			return -1;
		}
	}
	if ((cf->adm_cert[0] == '\0') != (cf->adm_key[0] == '\0')) {
		snprintf(err, errlen, "%s: [admin] cert and key go together", path);
		return -1;
	}
	if (cf->redis_url[0] != '\0' && strncmp(cf->redis_url, "redis://", 8) != 0) {
		snprintf(err, errlen, "%s: [redis] url must start with redis://",
		    path);
		return -1;
	}
	if (strncmp(cf->mod_url, "https://", 8) != 0 &&
	    strncmp(cf->mod_url, "http://", 7) != 0) {
		snprintf(err, errlen, "%s: [moderation] url must start with "
		    "https:// or http://", path);
		return -1;
	}
	return 0;
}

int
hub_conf_merge_reload(struct hub_conf *next, const struct hub_conf *cur)
{
	int changed = 0;
	char was[HUB_PATH_MAX], now[HUB_PATH_MAX];

	for (size_t i = 0; i < hub_conf_table.nkeys; i++) {
		const struct conf_key *k = &hub_conf_table.keys[i];
		if (conf_equal(k, next, cur))
			continue;
		if (k->reloadable) {
			changed++;
			continue;
		}
		conf_format(k, cur, was, sizeof(was));
		conf_format(k, next, now, sizeof(now));
		log_warn("reload: [%s] %s changed from '%s' to '%s' but needs a "
		    "restart; keeping '%s'", k->section, k->name, was, now, was);
		conf_copy(k, next, cur);
	}
	return changed;
}

void
hub_conf_rt_weights(const struct hub_conf *cf, struct rt_weights *w)
{
	w->w[RT_T_HEADROOM] = (int)cf->rt_w_headroom;
	w->w[RT_T_LOAD] = (int)cf->rt_w_load;
	w->w[RT_T_STABILITY] = (int)cf->rt_w_stability;
	w->w[RT_T_AVAILABILITY] = (int)cf->rt_w_availability;
	w->w[RT_T_SPEED] = (int)cf->rt_w_speed;
	w->w[RT_T_PRICE] = (int)cf->rt_w_price;
	w->w[RT_T_RATING] = (int)cf->rt_w_rating;
	w->tie_break = cf->rt_tie_break;
	w->tie_margin = (int)cf->rt_tie_margin;
}

int
hub_sock_path(const struct hub_conf *cf, const char *name, char *out,
    size_t outlen)
{
	int n = snprintf(out, outlen, "%s/%s", cf->run_dir, name);

	if (n < 0 || (size_t)n >= outlen ||
	    (size_t)n >= sizeof(((struct sockaddr_un *)0)->sun_path))
		return -1;
	return 0;
}
