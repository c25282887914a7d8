/*
 * agent/ag_conf: agentd.ini — the flat config struct agentd runs from (no
 * pointers: it can be copied and compared whole), its limits, and the loader
 * that fills it through the lib/conf table plus agent-specific checks.
 *
 *   [agent]        id, key_file, hub_url, hub_pin, hub_pin_backup,
 *                  reconnect_min, reconnect_max, heartbeat_interval,
 *                  log_level, state_dir
 *   [ledger]       report_after
 *   [ui]           listen, allow_remote
 *   [update]       auto, deadline
 *   [test]         ca_file, connect_to, release_key  (test builds only; connect_to
 *                  may be given on several lines, the entries add up)
 *   [channel.NAME] provider, models, key, rpm, tpm, grade   (0..32 of them)
 *                  and the caps the hub cannot exceed (agent/ag_caps):
 *                  max_concurrency, max_tokens_per_request, daily_budget
 *                  and per provider: anthropic_version (anthropic);
 *                  resource or host, deployments, api_version (azure);
 *                  region or host (qwen); project, location (vertex,
 *                  whose key is the PATH of its service-account JSON file)
 *                  region or host (qwen); region, access_key_id,
 *                  secret_access_key, session_token (bedrock, which
 *                  takes no key)
 *
 * models = PUBLIC[=ID], ...: each model the channel announces under its
 * public name, and the provider's own id for it when they differ (the
 * adapter puts the id in the URL, or in the body's "model").
 *
 * Hub pins: a release build (SWB_TEST_BUILD=0) takes them only from
 * SWB_HUB_PINS (make HUB_PINS=...), and hub_pin/hub_pin_backup in the INI
 * are errors; a test build takes them from the INI, or from SWB_HUB_PINS
 * when the INI names none.  etc/agentd.ini documents every key.
 */
#ifndef SWB_AG_CONF_H
#define SWB_AG_CONF_H

#include <stddef.h>
#include <stdint.h>

#define AG_MAX_CHANNELS		32
#define AG_MAX_MODELS		16	/* per channel */
#define AG_MAX_PINS		4
#define AG_CHAN_NAME_MAX	32	/* [A-Za-z0-9_-]{1,31} */
#define AG_MODEL_MAX		64
#define AG_SECRET_MAX		256
#define AG_PATH_MAX		256
#define AG_URL_MAX		256
#define AG_HOST_MAX		256
#define AG_CONNECT_TO_MAX	1024	/* every [test] connect_to line */
#define AG_VERSION_MAX		32	/* api_version, anthropic_version */
#define AG_PROJECT_MAX		64	/* vertex project id */
#define AG_AWS_KEY_ID_MAX	129	/* bedrock access_key_id */
#define AG_AWS_TOKEN_MAX	2048	/* bedrock session_token */
#define AG_REGION_MAX		32	/* bedrock region */
#define AG_PIN_MAX		56	/* "sha256//" + 44 base64 + NUL fits */
#define AG_PIN_PREFIX		"sha256//"
#define AG_ID_MAX		(INT64_C(1) << 53)	/* exact in a double */
#define AG_CHANNEL_PREFIX	"channel."

enum ag_provider {
	AG_PROV_OPENAI, AG_PROV_ANTHROPIC, AG_PROV_AZURE, AG_PROV_BEDROCK,
	AG_PROV_GEMINI, AG_PROV_VERTEX, AG_PROV_DEEPSEEK, AG_PROV_QWEN,
	AG_PROV_COUNT
};

enum ag_grade { AG_GRADE_A, AG_GRADE_B, AG_GRADE_C, AG_GRADE_COUNT };

struct ag_channel {
	char name[AG_CHAN_NAME_MAX];	/* NAME of [channel.NAME] */
	int line;			/* line of its first key, for messages */
	int provider;			/* enum ag_provider */
	int grade;			/* enum ag_grade; default C */
	int nmodels;			/* 1..AG_MAX_MODELS */
	char models[AG_MAX_MODELS][AG_MODEL_MAX];	/* public names */
	/* The provider's id of models[i] ("" = the public name itself). */
	char model_ids[AG_MAX_MODELS][AG_MODEL_MAX];
	/* azure: the deployment serving models[i] (from deployments, else
	 * its id); "" for other providers. */
	char deployments[AG_MAX_MODELS][AG_MODEL_MAX];
	/* azure, qwen: the endpoint host ({resource}.openai.azure.com, or
	 * dashscope[-intl].aliyuncs.com); "" for the others. */
	char host[AG_HOST_MAX];
	char api_version[AG_VERSION_MAX];	/* azure; default 2024-10-21 */
	char anthropic_version[AG_VERSION_MAX];	/* anthropic; default
						   2023-06-01 */
	/* vertex: the Google Cloud project and location (the host is
	 * {location}-aiplatform.googleapis.com); key is the path of the
	 * service-account file (mode 0600, checked when loaded). */
	char project[AG_PROJECT_MAX];
	char location[AG_VERSION_MAX];
	char key[AG_SECRET_MAX];	/* provider credential: never logged,
					   never sent to the hub (bedrock:
					   its secret_access_key) */
	/* bedrock: the AWS region, the access key id, and the optional STS
	 * session token (a credential too: never logged). */
	char region[AG_REGION_MAX];
	char access_key_id[AG_AWS_KEY_ID_MAX];
	char session_token[AG_AWS_TOKEN_MAX];
	int64_t rpm;			/* announced limits; 0 = none */
	int64_t tpm;
	/* Caps agentd enforces itself whatever the hub sends (ag_caps);
	 * 0 = none. */
	int64_t max_concurrency;	/* streams in flight upstream */
	int64_t max_tokens_per_request;	/* input estimate + max_tokens */
	int64_t daily_budget;		/* micro-units served per UTC day */
};

struct ag_pins {
	int n;
	unsigned char sha256[AG_MAX_PINS][32];	/* SPKI SHA-256 digests */
};

struct ag_conf {
	/* [agent] */
	int64_t id;			/* 1..AG_ID_MAX, required */
	char key_file[AG_PATH_MAX];	/* default: plat_default_paths() */
	char hub_url[AG_URL_MAX];	/* wss://HOST[:PORT]/PATH, required */
	char hub_pin[AG_PIN_MAX];	/* as written; empty in release builds */
	char hub_pin_backup[AG_PIN_MAX];
	int64_t reconnect_min;		/* ms, default 500 */
	int64_t reconnect_max;		/* ms, default 30000 */
	int64_t heartbeat_interval;	/* ms, default 20000 */
	int log_level;			/* enum log_level */
	char state_dir[AG_PATH_MAX];	/* ledger etc.; default per OS */

	/* [ledger] */
	int64_t report_after;		/* ms, default 5000 (100..600000): a
					   served stream with no receipt this
					   long after its end is reported */

	/* [ui]: the local web page (agent/ag_ui) */
	char ui_listen[128];		/* HOST:PORT, default 127.0.0.1:8790;
					   "off": no page */
	int ui_allow_remote;		/* a non-loopback listen is refused
					   unless yes */

	/* [update]: signed self-updates (agent/ag_update) */
	int update_auto;		/* install announced releases */
	int64_t update_deadline;	/* ms a new binary has to get online */

	/* [test]: always empty in a release build */
	char release_key[64];		/* base64 release public key */
	char ca_file[AG_PATH_MAX];	/* PEM CA the tunnel and providers trust */
	char connect_to[AG_CONNECT_TO_MAX];	/* HOST:PORT:ADDR:PORT[,...]
					   (curl's CONNECT_TO syntax): the
					   entries of every connect_to line */

	/* Derived by ag_conf_load(). */
	char hub_host[AG_HOST_MAX];	/* IPv6 without brackets */
	int hub_port;			/* 443 when the URL names none */
	char hub_path[AG_URL_MAX];	/* "/" when the URL names none */
	struct ag_pins pins;		/* the pins in force, 1..AG_MAX_PINS */
	/* The release public key (SWB_RELEASE_PK, or [test] release_key);
	 * have_release_pk 0: this build cannot update itself. */
	unsigned char release_pk[32];
	int have_release_pk;

	int nchannels;
	struct ag_channel channels[AG_MAX_CHANNELS];
};

/*
 * Read path into *cf: table defaults, then the file, then the checks that
 * span keys (required keys, reconnect_min <= reconnect_max, complete
 * channels, pins), then per-OS defaults for key_file/state_dir.  Returns 0,
 * or -1 with err "PATH:LINE: reason" (or "PATH: reason" when no one line is
 * at fault).  The first error wins.  *cf is unspecified after a failure.
 */
int ag_conf_load(const char *path, struct ag_conf *cf, char *err,
    size_t errlen);

/*
 * Parse a pin list "sha256//B64[,sha256//B64...]" (spaces around commas
 * allowed; each B64 the standard base64 of 32 bytes) into *p.  An empty
 * list gives p->n == 0.  Returns 0 or -1 with err filled.
 */
int ag_pins_parse(const char *list, struct ag_pins *p, char *err,
    size_t errlen);

/*
 * Split a hub URL "wss://HOST[:PORT][/PATH]" (HOST a name, IPv4 or [IPv6];
 * no user info, no fragment).  Returns 0 or -1 with err filled.
 */
int ag_hub_url_parse(const char *url, char *host, size_t hostlen, int *port,
    char *path, size_t pathlen, char *err, size_t errlen);

const char *ag_provider_name(int provider);
const char *ag_grade_name(int grade);
/* The channel called name, or NULL. */
const struct ag_channel *ag_conf_channel(const struct ag_conf *cf,
    const char *name);
/* The index of public model name in ch->models, or -1. */
int ag_channel_model(const struct ag_channel *ch, const char *model);
/* The provider's id of public model name on ch: its mapped id, the name
 * itself when it has none, or NULL when ch does not announce it. */
const char *ag_channel_model_id(const struct ag_channel *ch,
    const char *model);

#endif
