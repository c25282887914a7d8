/*
 * child/hubconf: hubd's configuration — the flat struct every hub process
 * holds a copy of, and the table describing each INI key (type, default,
 * bounds, reloadable).  The master parses; children receive the whole
 * struct in a MSG_CONFIG after every good reload.
 */
#ifndef SWB_HUBCONF_H
#define SWB_HUBCONF_H

#include <stdint.h>
#include "lib/conf.h"
#include "router/rt.h"

#define HUB_PATH_MAX 256

/* [hub] event_loop: what child/child_lws runs libwebsockets on. */
enum hub_loop {
	HUB_LOOP_EPOLL,		/* libev on epoll; poll() where lws cannot */
	HUB_LOOP_POLL		/* libwebsockets' own poll() loop */
};

struct hub_conf {
	/* [hub] */
	char    run_dir[HUB_PATH_MAX];
	char    user[64];		/* children drop to it; "" none */
	int     log_level;
	int64_t max_agents;
	int64_t max_channels;
	int64_t drain_timeout_ms;
	int64_t restart_backoff_max_ms;
	int     log_format;		/* 0 text, 1 json (lib/log.h) */
	int     event_loop;		/* enum hub_loop */
	/* [gateway] */
	char    gw_listen[128];
	int64_t gw_workers;
	int64_t gw_max_body;
	char    gw_cert[HUB_PATH_MAX];
	char    gw_key[HUB_PATH_MAX];
	int64_t gw_max_header_bytes;
	int64_t gw_body_budget;
	int64_t gw_header_timeout_ms;
	int64_t gw_body_timeout_ms;
	int64_t gw_keepalive_timeout_ms;
	int     gw_access_log;		/* one log line per request */
	/* [admin] (the admin HTTP API, admin/) */
	char    adm_listen[128];	/* "" off */
	char    adm_cert[HUB_PATH_MAX];
	char    adm_key[HUB_PATH_MAX];
	/* [tunnel] */
	char    tun_listen[128];
	char    tun_cert[HUB_PATH_MAX];
	char    tun_key[HUB_PATH_MAX];
	int64_t tun_heartbeat_ms;
	int64_t tun_heartbeat_timeout_ms;
	int64_t tun_handshake_timeout_ms;
	char    tun_trusted_proxy[64];	/* IP whose X-Forwarded-For /probe
					   believes; "" none */
	/* [store] */
	char    store_url[HUB_PATH_MAX];
	char    ledger_key[HUB_PATH_MAX];
	/* [release] (agentd's signed updates: hubctl release, tunnel/tun_files) */
	char    rel_key[HUB_PATH_MAX];	/* the release signing key (hubctl only) */
	char    rel_dir[HUB_PATH_MAX];	/* manifests and binaries served */
	/* [billing] */
	int64_t bill_report_grace_ms;
	int64_t bill_stale_reservation_ms;
	/* [redis] */
	char    redis_url[HUB_PATH_MAX];
	/* [moderation] */
	int     mod_enabled;
	char    mod_url[HUB_PATH_MAX];
	char    mod_api_key[256];
	char    mod_model[64];
	int64_t mod_timeout_ms;
	int     mod_fail_open;
	char    mod_ca_file[HUB_PATH_MAX];
	int64_t mod_cache_size;
	int64_t mod_cache_ttl_ms;
	/* [router] (all reloadable) */
	int64_t rt_w_headroom, rt_w_load, rt_w_stability, rt_w_availability;
	int64_t rt_w_speed, rt_w_price, rt_w_rating;
	int     rt_tie_break;		/* enum rt_tie */
	int64_t rt_tie_margin;
};

extern const struct conf_table hub_conf_table;

/* Load FILE into *cf.  0, or -1 with "FILE:LINE: reason" in err. */
int hub_conf_load(struct hub_conf *cf, const char *path, char *err, size_t errlen);
/*
 * Merge a freshly parsed config for a reload: keys that are not reloadable
 * keep their old value (each such change is logged as needing a restart).
 * Returns how many reloadable keys changed.
 */
int hub_conf_merge_reload(struct hub_conf *next, const struct hub_conf *cur);
/* The router's knobs of a config ([router]). */
void hub_conf_rt_weights(const struct hub_conf *cf, struct rt_weights *w);
/* Build a Unix socket path inside run_dir.  -1 if it does not fit. */
int hub_sock_path(const struct hub_conf *cf, const char *name, char *out, size_t outlen);

#endif
