/*
 * agent/ag_conf: loads agentd.ini into struct ag_conf.  The [agent],
 * [ledger] and [test] keys are a lib/conf table; [channel.NAME] keys reach
 * channel_set() through the table's wildcard section callback.  inih is
 * driven here (conf_defaults + conf_set per key, rather than conf_load) so
 * that every check, including the agent-specific ones (hub URL, pins,
 * test-only keys, duplicates), reports the line it concerns and only the
 * first error is kept; lines longer than inih's buffer are refused instead
 * of split.
 */
#include "agent/ag_conf.h"
#include "agent/ag_prov.h"
#include "agent/ag_token.h"
#include "agent/ag_ui.h"
#include "agent/platform.h"
#include "lib/conf.h"
#include "lib/log.h"
#include "lib/money.h"
#include "lib/release.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ini.h>
#include <sodium.h>

#if !defined(SWB_TEST_BUILD) || (SWB_TEST_BUILD != 0 && SWB_TEST_BUILD != 1)
#error "SWB_TEST_BUILD must be 0 or 1 (the Makefile sets it from TEST_BUILD)"
#endif
#ifndef SWB_RELEASE_PK
#error "SWB_RELEASE_PK must be defined (the Makefile sets it from RELEASE_PK)"
#endif
#ifndef SWB_HUB_PINS
#error "SWB_HUB_PINS must be defined (the Makefile sets it from HUB_PINS)"
#endif

#define PIN_B64_LEN	44	/* base64 of 32 bytes, with one '=' */
#define RPM_MAX		INT64_C(1000000000)
#define TPM_MAX		INT64_C(1000000000000)
#define CONC_MAX	INT64_C(100000)

static const char *const provider_names[] = {
	[AG_PROV_OPENAI] = "openai", [AG_PROV_ANTHROPIC] = "anthropic",
	[AG_PROV_AZURE] = "azure", [AG_PROV_BEDROCK] = "bedrock",
	[AG_PROV_GEMINI] = "gemini", [AG_PROV_VERTEX] = "vertex",
	[AG_PROV_DEEPSEEK] = "deepseek", [AG_PROV_QWEN] = "qwen",
	[AG_PROV_COUNT] = NULL
};
static const char *const grade_names[] = {
	[AG_GRADE_A] = "A", [AG_GRADE_B] = "B", [AG_GRADE_C] = "C",
	[AG_GRADE_COUNT] = NULL
};
/* Indexed like enum log_level. */
static const char *const level_names[] = {
	[LOG_LVL_DEBUG] = "debug", [LOG_LVL_INFO] = "info",
	[LOG_LVL_WARN] = "warn", [LOG_LVL_ERROR] = "error", NULL
};

/* The table's keys by index, so checks need no string compares. */
enum {
	K_ID, K_KEY_FILE, K_HUB_URL, K_HUB_PIN, K_HUB_PIN_BACKUP,
	K_RECONNECT_MIN, K_RECONNECT_MAX, K_HEARTBEAT, K_LOG_LEVEL,
	K_STATE_DIR, K_REPORT_AFTER, K_UI_LISTEN, K_UI_REMOTE, K_CA_FILE,
	K_CONNECT_TO, K_UPDATE_AUTO, K_UPDATE_DEADLINE, K_RELEASE_KEY, K_COUNT
};

#define M(m) offsetof(struct ag_conf, m), sizeof(((struct ag_conf *)0)->m)

static const struct conf_key ag_keys[K_COUNT] = {
	[K_ID] = { "agent", "id", CONF_INT, "0", 0, AG_ID_MAX, 0, M(id),
	    NULL, "the id the hub assigned at registration (1..2^53)" },
	[K_KEY_FILE] = { "agent", "key_file", CONF_STR, "", 0, 0, 0,
	    M(key_file), NULL, "Ed25519 secret key from agentd keygen" },
	[K_HUB_URL] = { "agent", "hub_url", CONF_STR, "", 0, 0, 0,
	    M(hub_url), NULL, "wss://HOST:PORT/PATH of the hub's tunnel" },
	[K_HUB_PIN] = { "agent", "hub_pin", CONF_STR, "", 0, 0, 0,
	    M(hub_pin), NULL, "sha256//BASE64 of the hub's SPKI (test builds)" },
	[K_HUB_PIN_BACKUP] = { "agent", "hub_pin_backup", CONF_STR, "", 0, 0,
	    0, M(hub_pin_backup), NULL, "a second accepted pin (test builds)" },
	[K_RECONNECT_MIN] = { "agent", "reconnect_min", CONF_MS, "500ms", 10,
	    3600000, 1, M(reconnect_min), NULL, "first reconnect delay" },
	[K_RECONNECT_MAX] = { "agent", "reconnect_max", CONF_MS, "30s", 100,
	    3600000, 1, M(reconnect_max), NULL, "longest reconnect delay" },
	[K_HEARTBEAT] = { "agent", "heartbeat_interval", CONF_MS, "20s", 1000,
	    600000, 1, M(heartbeat_interval), NULL, "tunnel ping interval" },
	[K_LOG_LEVEL] = { "agent", "log_level", CONF_ENUM, "info", 0, 0, 1,
	    M(log_level), level_names, "debug|info|warn|error" },
	[K_STATE_DIR] = { "agent", "state_dir", CONF_STR, "", 0, 0, 0,
	    M(state_dir), NULL, "directory for the ledger database" },
	[K_REPORT_AFTER] = { "ledger", "report_after", CONF_MS, "5s", 100,
	    600000, 1, M(report_after), NULL, "report a served stream's usage "
	    "when no receipt came this long after its end" },
	[K_UI_LISTEN] = { "ui", "listen", CONF_STR, "127.0.0.1:8790", 0, 0,
	    0, M(ui_listen), NULL, "HOST:PORT of the local web page, or off" },
	[K_UI_REMOTE] = { "ui", "allow_remote", CONF_BOOL, "no", 0, 0, 0,
	    M(ui_allow_remote), NULL, "yes: the page may listen beyond "
	    "loopback" },
	[K_CA_FILE] = { "test", "ca_file", CONF_STR, "", 0, 0, 0, M(ca_file),
	    NULL, "PEM CA trusted instead of the system's (test builds)" },
	[K_CONNECT_TO] = { "test", "connect_to", CONF_STR, "", 0, 0, 0,
	    M(connect_to), NULL, "HOST:PORT:ADDR:PORT,... (test builds)" },
	[K_UPDATE_AUTO] = { "update", "auto", CONF_BOOL, "no", 0, 0, 0,
	    M(update_auto), NULL, "yes: install a signed newer release when "
	    "the hub announces one (agent/ag_update)" },
	[K_UPDATE_DEADLINE] = { "update", "deadline", CONF_MS, "60s", 1000,
	    3600000, 0, M(update_deadline), NULL, "a new binary that is not "
	    "online with the hub this long after its start is rolled back" },
	[K_RELEASE_KEY] = { "test", "release_key", CONF_STR, "", 0, 0, 0,
	    M(release_key), NULL, "base64 release public key instead of the "
	    "built-in one (test builds)" },
};

#undef M

/* Keys of a [channel.NAME] section, handled by channel_set(), and the
 * providers each applies to (0: every provider). */
enum {
	C_PROVIDER, C_MODELS, C_KEY, C_RPM, C_TPM, C_GRADE, C_HOST,
	C_RESOURCE, C_REGION, C_DEPLOYMENTS, C_API_VERSION,
	C_ANTHROPIC_VERSION, C_PROJECT, C_LOCATION, C_ACCESS_KEY_ID,
	C_SECRET_ACCESS_KEY, C_SESSION_TOKEN, C_MAX_CONCURRENCY, C_MAX_TOKENS,
	C_DAILY_BUDGET, C_COUNT
};
#define P(x)	(1u << (x))
static const struct {
	const char *name;
	unsigned providers;
} chan_keys[C_COUNT] = {
	[C_PROVIDER] = { "provider", 0 },
	[C_MODELS] = { "models", 0 },
	[C_KEY] = { "key", ((1u << AG_PROV_COUNT) - 1) & ~P(AG_PROV_BEDROCK) },
	[C_RPM] = { "rpm", 0 },
	[C_TPM] = { "tpm", 0 },
	[C_GRADE] = { "grade", 0 },
	[C_HOST] = { "host", P(AG_PROV_AZURE) | P(AG_PROV_QWEN) },
	[C_RESOURCE] = { "resource", P(AG_PROV_AZURE) },
	[C_REGION] = { "region", P(AG_PROV_QWEN) | P(AG_PROV_BEDROCK) },
	[C_DEPLOYMENTS] = { "deployments", P(AG_PROV_AZURE) },
	[C_API_VERSION] = { "api_version", P(AG_PROV_AZURE) },
	[C_ANTHROPIC_VERSION] = { "anthropic_version", P(AG_PROV_ANTHROPIC) },
	[C_PROJECT] = { "project", P(AG_PROV_VERTEX) },
	[C_LOCATION] = { "location", P(AG_PROV_VERTEX) },
	[C_ACCESS_KEY_ID] = { "access_key_id", P(AG_PROV_BEDROCK) },
	[C_SECRET_ACCESS_KEY] = { "secret_access_key", P(AG_PROV_BEDROCK) },
	[C_SESSION_TOKEN] = { "session_token", P(AG_PROV_BEDROCK) },
	[C_MAX_CONCURRENCY] = { "max_concurrency", 0 },
	[C_MAX_TOKENS] = { "max_tokens_per_request", 0 },
	[C_DAILY_BUDGET] = { "daily_budget", 0 },
};
#undef P

#define AZURE_HOST_SUFFIX	".openai.azure.com"
#define AZURE_API_VERSION	"2024-10-21"	/* GA; the channel may say */
#define ANTHROPIC_VERSION	"2023-06-01"
#define BEDROCK_HOST_FMT	"bedrock-runtime.%s.amazonaws.com"
/* Qwen's regions (DashScope compatible mode); the first is the default. */
static const char *const qwen_regions[][2] = {
	{ "cn", "dashscope.aliyuncs.com" },
	{ "intl", "dashscope-intl.aliyuncs.com" },
};

/* An Azure channel's deployments = MODEL:DEPLOYMENT,... while it loads. */
struct ag_deploys {
	int n;
	char model[AG_MAX_MODELS][AG_MODEL_MAX];
	char name[AG_MAX_MODELS][AG_MODEL_MAX];
};

/*
 * State of one load.  The table's offsets are offsets into struct ag_conf
 * and conf_set() is handed a struct ag_load, hence cf comes first.
 */
struct ag_load {
	struct ag_conf cf;
	FILE *fp;
	int line;			/* physical line inih is on */
	int indented;			/* it starts with white space */
	char last_section[64];		/* of the previous key seen */
	char last_name[64];
	int err_line;			/* of the first error; 0 = none */
	char err[512];
	int key_line[K_COUNT];		/* where each table key was set */
	int chan_line[AG_MAX_CHANNELS][C_COUNT];
	struct ag_deploys deploys[AG_MAX_CHANNELS];
};

_Static_assert(offsetof(struct ag_load, cf) == 0, "cf must come first");
_Static_assert(K_COUNT <= 64, "key table");

static int channel_set(void *, const char *, const char *, const char *,
    char *, size_t);

static const struct conf_table ag_table = {
	ag_keys, K_COUNT, AG_CHANNEL_PREFIX, channel_set
};

const char *
ag_provider_name(int provider)
{
	if (provider < 0 || provider >= AG_PROV_COUNT)
		return "?";
	return provider_names[provider];
}

const char *
ag_grade_name(int grade)
{
	if (grade < 0 || grade >= AG_GRADE_COUNT)
		return "?";
	return grade_names[grade];
}

const struct ag_channel *
ag_conf_channel(const struct ag_conf *cf, const char *name)
{
	for (int i = 0; i < cf->nchannels; i++)
		if (strcmp(cf->channels[i].name, name) == 0)
			return &cf->channels[i];
	return NULL;
}

int
ag_channel_model(const struct ag_channel *ch, const char *model)
{
	for (int i = 0; i < ch->nmodels; i++)
		if (strcmp(ch->models[i], model) == 0)
			return i;
	return -1;
}

const char *
ag_channel_model_id(const struct ag_channel *ch, const char *model)
{
	int i = ag_channel_model(ch, model);

	if (i < 0)
		return NULL;
	return ch->model_ids[i][0] != '\0' ? ch->model_ids[i] : ch->models[i];
}

/* ---- syntax of values ---- */

/* A DNS name or IPv4 address: [A-Za-z0-9.-], no empty label, no edge '-'. */
static int
valid_hostname(const char *s, size_t n)
{
	if (n == 0 || n > 253 || s[0] == '.' || s[0] == '-' ||
	    s[n - 1] == '.' || s[n - 1] == '-')
		return 0;
	for (size_t i = 0; i < n; i++) {
		if (!isalnum((unsigned char)s[i]) && s[i] != '.' && s[i] != '-')
			return 0;
		if (s[i] == '.' && (s[i + 1] == '.' || s[i + 1] == '-' ||
		    s[i - 1] == '-'))
			return 0;
	}
	return 1;
}

/* The inside of "[...]": hex digits, ':' and '.' (a v4 tail), some ':'. */
static int
valid_ipv6(const char *s, size_t n)
{
	int colons = 0;

	if (n < 2 || n > 45)
		return 0;
	for (size_t i = 0; i < n; i++) {
		if (s[i] == ':')
			colons++;
		else if (!isxdigit((unsigned char)s[i]) && s[i] != '.')
			return 0;
	}
	return colons >= 2;
}

/* 1..65535 written as 1..5 digits, exactly n of them. */
static int
parse_port(const char *s, size_t n, int *port)
{
	int v = 0;

	if (n == 0 || n > 5)
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (!isdigit((unsigned char)s[i]))
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	if (v < 1 || v > 65535)
		return -1;
	*port = v;
	return 0;
}

/*
 * "HOST:PORT" at s (HOST a name, IPv4 or [IPv6]), not reading past e.
 * Returns the character after the port's digits, or NULL.
 */
static const char *
host_port(const char *s, const char *e)
{
	const char *q, *d;
	int port;

	if (s < e && *s == '[') {
		q = memchr(s, ']', (size_t)(e - s));
		if (q == NULL || !valid_ipv6(s + 1, (size_t)(q - s - 1)))
			return NULL;
		q++;
	} else {
		for (q = s; q < e && *q != ':'; q++)
			;
		if (!valid_hostname(s, (size_t)(q - s)))
			return NULL;
	}
	if (q >= e || *q != ':')
		return NULL;
	for (d = ++q; d < e && isdigit((unsigned char)*d); d++)
		;
	if (parse_port(q, (size_t)(d - q), &port) != 0)
		return NULL;
	return d;
}

int
ag_hub_url_parse(const char *url, char *host, size_t hostlen, int *port,
    char *path, size_t pathlen, char *err, size_t errlen)
{
	static const char scheme[] = "wss://";
	const char *a, *ae, *h, *q;
	size_t hl;

	if (strncmp(url, scheme, sizeof(scheme) - 1) != 0) {
		snprintf(err, errlen, "'%s' does not start with wss:// (the "
		    "tunnel is always TLS)", url);
		return -1;
	}
	a = url + sizeof(scheme) - 1;
	ae = a + strcspn(a, "/?#");
	if (memchr(a, '@', (size_t)(ae - a)) != NULL) {
		snprintf(err, errlen, "'%s' must not carry user info", url);
		return -1;
	}
	if (*a == '[') {
		q = memchr(a, ']', (size_t)(ae - a));
		if (q == NULL || !valid_ipv6(a + 1, (size_t)(q - a - 1)))
			goto badhost;
		h = a + 1;
		hl = (size_t)(q - h);
		q++;
	} else {
		for (q = a; q < ae && *q != ':'; q++)
			;
		h = a;
		hl = (size_t)(q - a);
		if (!valid_hostname(h, hl))
			goto badhost;
	}
	if (hl >= hostlen)
		goto badhost;
	if (q == ae)
		*port = 443;
	else if (*q != ':' || parse_port(q + 1, (size_t)(ae - q - 1), port)) {
		snprintf(err, errlen, "'%s' has no valid port after the host "
		    "(wss://HOST:PORT/PATH, port 1..65535)", url);
		return -1;
	}
	if (*ae == '?' || *ae == '#') {
		snprintf(err, errlen, "'%s' must not have a query or fragment "
		    "without a path", url);
		return -1;
	}
	for (const char *c = ae; *c != '\0'; c++) {
		if (*c <= ' ' || *c > '~' || *c == '#') {
			snprintf(err, errlen, "'%s' has a space, control "
			    "character or '#' in its path", url);
			return -1;
		}
	}
	if (strlen(*ae != '\0' ? ae : "/") >= pathlen) {
		snprintf(err, errlen, "'%s' has too long a path", url);
		return -1;
	}
	memcpy(host, h, hl);
	host[hl] = '\0';
	snprintf(path, pathlen, "%s", *ae != '\0' ? ae : "/");
	return 0;
badhost:
	snprintf(err, errlen, "'%s' has no valid host (a name, an IPv4 "
	    "address or an [IPv6] address)", url);
	return -1;
}

/* One "sha256//B64" of exactly n bytes into a 32-byte digest. */
static int
pin_decode(const char *s, size_t n, unsigned char out[32])
{
	const size_t plen = sizeof(AG_PIN_PREFIX) - 1;
	const char *end;
	size_t binlen;

	if (n != plen + PIN_B64_LEN || strncmp(s, AG_PIN_PREFIX, plen) != 0)
		return -1;
	if (sodium_base642bin(out, 32, s + plen, PIN_B64_LEN, NULL, &binlen,
	    &end, sodium_base64_VARIANT_ORIGINAL) != 0 || binlen != 32 ||
	    end != s + n)
		return -1;
	return 0;
}

static int
pin_add(struct ag_pins *p, const char *s, size_t n, char *err, size_t errlen)
{
	unsigned char d[32];

	if (pin_decode(s, n, d) != 0) {
		snprintf(err, errlen, "'%.*s' is not a pin: expected sha256// "
		    "and the base64 of a 32-byte SHA-256 digest (44 characters)",
		    (int)(n > 100 ? 100 : n), s);
		return -1;
	}
	for (int i = 0; i < p->n; i++) {
		if (memcmp(p->sha256[i], d, sizeof(d)) == 0) {
			snprintf(err, errlen, "pin '%.*s' is listed twice",
			    (int)n, s);
			return -1;
		}
	}
	if (p->n == AG_MAX_PINS) {
		snprintf(err, errlen, "more than %d pins", AG_MAX_PINS);
		return -1;
	}
	memcpy(p->sha256[p->n++], d, sizeof(d));
	return 0;
}

int
ag_pins_parse(const char *list, struct ag_pins *p, char *err, size_t errlen)
{
	const char *s = list, *e, *b, *t;

	memset(p, 0, sizeof(*p));
	while (isspace((unsigned char)*s))
		s++;
	if (*s == '\0')
		return 0;
	for (s = list;; s = e + 1) {
		e = s + strcspn(s, ",");
		for (b = s; b < e && isspace((unsigned char)*b); b++)
			;
		for (t = e; t > b && isspace((unsigned char)t[-1]); t--)
			;
		if (t == b) {
			snprintf(err, errlen, "empty entry in the pin list '%s'",
			    list);
			return -1;
		}
		if (pin_add(p, b, (size_t)(t - b), err, errlen) != 0)
			return -1;
		if (*e == '\0')
			return 0;
	}
}

/* curl's CONNECT_TO: "HOST:PORT:ADDR:PORT" entries separated by commas. */
static int
check_connect_to(const char *v, char *err, size_t errlen)
{
	const char *s = v, *e, *r;

	for (;; s = e + 1) {
		e = s + strcspn(s, ",");
		r = host_port(s, e);
		if (r == NULL || r == e || *r != ':' ||
		    host_port(r + 1, e) != e) {
			snprintf(err, errlen, "[test] connect_to entry '%.*s' is "
			    "not HOST:PORT:ADDR:PORT", (int)(e - s), s);
			return -1;
		}
		if (*e == '\0')
			return 0;
	}
}

/* ---- [channel.NAME] ---- */

static int
valid_chan_name(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n >= AG_CHAN_NAME_MAX)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && s[i] != '_' && s[i] != '-')
			return 0;
	return 1;
}

static int
valid_model_char(int c)
{
	return isalnum(c) || strchr("._:/@+-", c) != NULL;
}

/* b[0, n) trimmed of white space on both ends. */
static void
trim(const char **b, size_t *n)
{
	while (*n > 0 && isspace((unsigned char)**b)) {
		(*b)++;
		(*n)--;
	}
	while (*n > 0 && isspace((unsigned char)(*b)[*n - 1]))
		(*n)--;
}

/* One model name or id: 1..AG_MODEL_MAX-1 of valid_model_char. */
static int
check_model_name(const char *section, const char *key, const char *b,
    size_t n, char *err, size_t errlen)
{
	if (n == 0) {
		snprintf(err, errlen, "[%s] %s: empty name in an entry", section,
		    key);
		return -1;
	}
	if (n >= AG_MODEL_MAX) {
		snprintf(err, errlen, "[%s] %s: '%.*s' is longer than %d bytes",
		    section, key, (int)n, b, AG_MODEL_MAX - 1);
		return -1;
	}
	for (size_t i = 0; i < n; i++) {
		if (!valid_model_char((unsigned char)b[i])) {
			snprintf(err, errlen, "[%s] %s: '%.*s' has a character "
			    "other than A-Z a-z 0-9 . _ : / @ + -", section, key,
			    (int)n, b);
			return -1;
		}
	}
	return 0;
}

/* models = PUBLIC[=ID], ...: the public names and the provider's ids. */
static int
parse_models(struct ag_channel *ch, const char *section, const char *value,
    char *err, size_t errlen)
{
	const char *s, *e, *b, *eq, *ib;
	size_t n, in;

	ch->nmodels = 0;
	for (s = value;; s = e + 1) {
		e = s + strcspn(s, ",");
		b = s;
		n = (size_t)(e - s);
		trim(&b, &n);
		if (n == 0) {
			snprintf(err, errlen, "[%s] models: empty entry (give "
			    "model names separated by commas)", section);
			return -1;
		}
		ib = NULL;
		in = 0;
		if ((eq = memchr(b, '=', n)) != NULL) {
			ib = eq + 1;
			in = n - (size_t)(ib - b);
			n = (size_t)(eq - b);
			trim(&b, &n);
			trim(&ib, &in);
		}
		if (check_model_name(section, "models", b, n, err, errlen) != 0 ||
		    (ib != NULL && check_model_name(section, "models", ib, in,
		    err, errlen) != 0))
			return -1;
		for (int i = 0; i < ch->nmodels; i++) {
			if (strlen(ch->models[i]) == n &&
			    memcmp(ch->models[i], b, n) == 0) {
				snprintf(err, errlen, "[%s] models: '%.*s' is "
				    "listed twice", section, (int)n, b);
				return -1;
			}
		}
		if (ch->nmodels == AG_MAX_MODELS) {
			snprintf(err, errlen, "[%s] models: more than %d models",
			    section, AG_MAX_MODELS);
			return -1;
		}
		memcpy(ch->models[ch->nmodels], b, n);
		ch->models[ch->nmodels][n] = '\0';
		ch->model_ids[ch->nmodels][0] = '\0';
		if (ib != NULL && (in != n || memcmp(ib, b, n) != 0)) {
			memcpy(ch->model_ids[ch->nmodels], ib, in);
			ch->model_ids[ch->nmodels][in] = '\0';
		}
		ch->nmodels++;
		if (*e == '\0')
			return 0;
	}
}

/* deployments = MODEL:DEPLOYMENT, ... (split at the last ':', as a
 * deployment name has none). */
static int
parse_deployments(struct ag_deploys *d, const char *section,
    const char *value, char *err, size_t errlen)
{
	const char *s, *e, *b, *c, *db;
	size_t n, mn, dn;

	d->n = 0;
	for (s = value;; s = e + 1) {
		e = s + strcspn(s, ",");
		b = s;
		n = (size_t)(e - s);
		trim(&b, &n);
		for (c = b + n; c > b && c[-1] != ':'; c--)
			;
		if (n == 0 || c == b) {
			snprintf(err, errlen, "[%s] deployments: entry '%.*s' is "
			    "not MODEL:DEPLOYMENT", section, (int)n, b);
			return -1;
		}
		mn = (size_t)(c - 1 - b);
		db = c;
		dn = n - (size_t)(c - b);
		trim(&b, &mn);
		trim(&db, &dn);
		if (check_model_name(section, "deployments", b, mn, err,
		    errlen) != 0)
			return -1;
		if (dn == 0 || dn >= AG_MODEL_MAX) {
			snprintf(err, errlen, "[%s] deployments: the deployment "
			    "of '%.*s' must be 1 to %d characters", section,
			    (int)mn, b, AG_MODEL_MAX - 1);
			return -1;
		}
		for (size_t i = 0; i < dn; i++) {
			if (!isalnum((unsigned char)db[i]) &&
			    strchr("._-", db[i]) == NULL) {
				snprintf(err, errlen, "[%s] deployments: '%.*s' "
				    "has a character other than A-Z a-z 0-9 . _ "
				    "-", section, (int)dn, db);
				return -1;
			}
		}
		for (int i = 0; i < d->n; i++) {
			if (strlen(d->model[i]) == mn &&
			    memcmp(d->model[i], b, mn) == 0) {
				snprintf(err, errlen, "[%s] deployments: '%.*s' "
				    "is listed twice", section, (int)mn, b);
				return -1;
			}
		}
		if (d->n == AG_MAX_MODELS) {
			snprintf(err, errlen, "[%s] deployments: more than %d",
			    section, AG_MAX_MODELS);
			return -1;
		}
		memcpy(d->model[d->n], b, mn);
		d->model[d->n][mn] = '\0';
		memcpy(d->name[d->n], db, dn);
		d->name[d->n][dn] = '\0';
		d->n++;
		if (*e == '\0')
			return 0;
	}
}

/* A region name: a-z 0-9 -, starting with a letter ("us-east-1", "intl"). */
static int
region_ok(const char *v)
{
	if (v[0] < 'a' || v[0] > 'z')
		return 0;
	return strspn(v, "abcdefghijklmnopqrstuvwxyz0123456789-") == strlen(v);
}

/* api_version, anthropic_version: 1..31 of A-Z a-z 0-9 . - */
static int
parse_version(char *dst, size_t dstlen, const char *section, const char *key,
    const char *value, char *err, size_t errlen)
{
	size_t n = strlen(value);

	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)value[i]) &&
		    strchr(".-", value[i]) == NULL)
			n = 0;
	if (n == 0 || n >= dstlen) {
		snprintf(err, errlen, "[%s] %s = '%s' is not a version (1 to %zu "
		    "of A-Z a-z 0-9 . -, e.g. 2024-10-21)", section, key, value,
		    dstlen - 1);
		return -1;
	}
	snprintf(dst, dstlen, "%s", value);
	return 0;
}

/* vertex project, location: 1.. of a-z 0-9 -, not starting with '-' */
static int
parse_gcp_name(char *dst, size_t dstlen, const char *section, const char *key,
    const char *value, char *err, size_t errlen)
{
	size_t n = strlen(value);

	for (size_t i = 0; i < n; i++)
		if (!((value[i] >= 'a' && value[i] <= 'z') ||
		    (value[i] >= '0' && value[i] <= '9') || value[i] == '-'))
			n = 0;
	if (n == 0 || n >= dstlen || value[0] == '-') {
		snprintf(err, errlen, "[%s] %s = '%s' is not a Google Cloud %s "
		    "(1 to %zu of a-z 0-9 -)", section, key, value, key,
		    dstlen - 1);
		return -1;
	}
	snprintf(dst, dstlen, "%s", value);
	return 0;
}

static int
parse_choice(const char *const *choices, const char *v)
{
	for (int i = 0; choices[i] != NULL; i++)
		if (strcmp(choices[i], v) == 0)
			return i;
	return -1;
}

/* The conf_table section callback: dst is the struct ag_load. */
static int
channel_set(void *dst, const char *section, const char *key,
    const char *value, char *err, size_t errlen)
{
	struct ag_load *ld = dst;
	struct ag_conf *cf = &ld->cf;
	const char *name = section + strlen(AG_CHANNEL_PREFIX);
	struct ag_channel *ch;
	int64_t v;
	int ci, f;

	for (ci = 0; ci < cf->nchannels; ci++)
		if (strcmp(cf->channels[ci].name, name) == 0)
			break;
	if (ci == cf->nchannels) {
		if (!valid_chan_name(name)) {
			snprintf(err, errlen, "[%s]: a channel name is 1 to %d "
			    "of A-Z a-z 0-9 _ -", section, AG_CHAN_NAME_MAX - 1);
			return -1;
		}
		if (cf->nchannels == AG_MAX_CHANNELS) {
			snprintf(err, errlen, "[%s]: too many channels (at most "
			    "%d [channel.*] sections)", section, AG_MAX_CHANNELS);
			return -1;
		}
		ch = &cf->channels[cf->nchannels++];
		memset(ch, 0, sizeof(*ch));
		snprintf(ch->name, sizeof(ch->name), "%s", name);
		ch->line = ld->line;
		ch->grade = AG_GRADE_C;
	}
	ch = &cf->channels[ci];
	for (f = 0; f < C_COUNT; f++)
		if (strcmp(chan_keys[f].name, key) == 0)
			break;
	if (f == C_COUNT) {
		snprintf(err, errlen, "unknown key '%s' in section [%s] (a "
		    "channel has provider, models, key, rpm, tpm, grade; per "
		    "provider host, resource, region, deployments, api_version, "
		    "anthropic_version, project, location, access_key_id, "
		    "secret_access_key, session_token)", key, section);
		return -1;
	}
	if (ld->chan_line[ci][f] != 0) {
		snprintf(err, errlen, "duplicate key '%s' in section [%s] "
		    "(first set on line %d)", key, section, ld->chan_line[ci][f]);
		return -1;
	}
	switch (f) {
	case C_PROVIDER:
		if ((ch->provider = parse_choice(provider_names, value)) < 0) {
			snprintf(err, errlen, "[%s] provider = '%s' is not one of "
			    "openai|anthropic|azure|bedrock|gemini|vertex|"
			    "deepseek|qwen", section, value);
			return -1;
		}
		break;
	case C_MODELS:
		if (parse_models(ch, section, value, err, errlen) != 0)
			return -1;
		break;
	case C_KEY:
		/* Never echo the value: it is a credential. */
		if (value[0] == '\0') {
			snprintf(err, errlen, "[%s] key must not be empty",
			    section);
			return -1;
		}
		if (strlen(value) >= sizeof(ch->key)) {
			snprintf(err, errlen, "[%s] key is longer than %zu bytes",
			    section, sizeof(ch->key) - 1);
			return -1;
		}
		for (const char *c = value; *c != '\0'; c++) {
			if ((unsigned char)*c <= ' ' || *c == 0x7f) {
				snprintf(err, errlen, "[%s] key contains white "
				    "space or a control character", section);
				return -1;
			}
		}
		snprintf(ch->key, sizeof(ch->key), "%s", value);
		break;
	case C_RPM:
	case C_TPM:
		if (conf_parse_int(value, &v) != 0 || v < 0 ||
		    v > (f == C_RPM ? RPM_MAX : TPM_MAX)) {
			snprintf(err, errlen, "[%s] %s = '%s' is not an integer "
			    "in 0..%" PRId64 " (0 = no limit announced)", section,
			    key, value, f == C_RPM ? RPM_MAX : TPM_MAX);
			return -1;
		}
		*(f == C_RPM ? &ch->rpm : &ch->tpm) = v;
		break;
	case C_MAX_CONCURRENCY:
	case C_MAX_TOKENS:
		if (conf_parse_int(value, &v) != 0 || v < 0 ||
		    v > (f == C_MAX_CONCURRENCY ? CONC_MAX : TPM_MAX)) {
			snprintf(err, errlen, "[%s] %s = '%s' is not an integer "
			    "in 0..%" PRId64 " (0 = no cap)", section, key, value,
			    f == C_MAX_CONCURRENCY ? CONC_MAX : TPM_MAX);
			return -1;
		}
		*(f == C_MAX_CONCURRENCY ? &ch->max_concurrency :
		    &ch->max_tokens_per_request) = v;
		break;
	case C_DAILY_BUDGET:
		if (money_parse(value, &ch->daily_budget) != 0) {
			snprintf(err, errlen, "[%s] daily_budget = '%s' is not an "
			    "amount (e.g. 25 or 2.50, at most 6 decimals; 0 = no "
			    "cap)", section, value);
			return -1;
		}
		break;
	case C_GRADE:
		if ((ch->grade = parse_choice(grade_names, value)) < 0) {
			snprintf(err, errlen, "[%s] grade = '%s' is not one of "
			    "A|B|C", section, value);
			return -1;
		}
		break;
	case C_HOST:
		/* Which hosts a provider takes is checked once the file is
		 * read (the provider may come later): finish(). */
		if (!valid_hostname(value, strlen(value)) ||
		    strlen(value) >= sizeof(ch->host)) {
			snprintf(err, errlen, "[%s] host = '%s' is not a host "
			    "name", section, value);
			return -1;
		}
		for (size_t i = 0; value[i] != '\0'; i++)
			ch->host[i] = (char)tolower((unsigned char)value[i]);
		ch->host[strlen(value)] = '\0';
		break;
	case C_RESOURCE:
		/* One DNS label: NAME.openai.azure.com. */
		if (!valid_hostname(value, strlen(value)) ||
		    strchr(value, '.') != NULL || strlen(value) > 63) {
			snprintf(err, errlen, "[%s] resource = '%s' is not an "
			    "Azure resource name (one label of A-Z a-z 0-9 -: "
			    "NAME%s)", section, value, AZURE_HOST_SUFFIX);
			return -1;
		}
		for (size_t i = 0; value[i] != '\0'; i++)
			ch->host[i] = (char)tolower((unsigned char)value[i]);
		snprintf(ch->host + strlen(value), sizeof(ch->host) -
		    strlen(value), "%s", AZURE_HOST_SUFFIX);
		break;
	case C_REGION:
		/* Which regions a provider takes is checked once the file is
		 * read (the provider may come later): finish_channel(). */
		if (!region_ok(value) || strlen(value) >= sizeof(ch->region)) {
			snprintf(err, errlen, "[%s] region = '%s' is not a region "
			    "name (1 to %zu of a-z 0-9 -)", section, value,
			    sizeof(ch->region) - 1);
			return -1;
		}
		snprintf(ch->region, sizeof(ch->region), "%s", value);
		break;
	case C_ACCESS_KEY_ID:
		/* AWS access key ids are upper-case letters and digits. */
		if (value[0] == '\0' || strlen(value) >= sizeof(ch->access_key_id) ||
		    strspn(value, "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789") !=
		    strlen(value)) {
			snprintf(err, errlen, "[%s] access_key_id is not an AWS "
			    "access key id (A-Z 0-9, at most %zu)", section,
			    sizeof(ch->access_key_id) - 1);
			return -1;
		}
		snprintf(ch->access_key_id, sizeof(ch->access_key_id), "%s",
		    value);
		break;
	case C_SECRET_ACCESS_KEY:
	case C_SESSION_TOKEN: {
		/* Credentials: never echoed. */
		char *to = f == C_SESSION_TOKEN ? ch->session_token : ch->key;
		size_t cap = f == C_SESSION_TOKEN ? sizeof(ch->session_token) :
		    sizeof(ch->key);

		if (value[0] == '\0' || strlen(value) >= cap) {
			snprintf(err, errlen, "[%s] %s must be 1 to %zu bytes",
			    section, key, cap - 1);
			return -1;
		}
		for (const char *c = value; *c != '\0'; c++) {
			if ((unsigned char)*c <= ' ' || (unsigned char)*c >= 0x7f) {
				snprintf(err, errlen, "[%s] %s contains white "
				    "space, a control character or a non-ASCII "
				    "byte", section, key);
				return -1;
			}
		}
		memcpy(to, value, strlen(value) + 1);
		break;
	}
	case C_DEPLOYMENTS:
		if (parse_deployments(&ld->deploys[ci], section, value, err,
		    errlen) != 0)
			return -1;
		break;
	case C_API_VERSION:
		if (parse_version(ch->api_version, sizeof(ch->api_version),
		    section, key, value, err, errlen) != 0)
			return -1;
		break;
	case C_ANTHROPIC_VERSION:
		if (parse_version(ch->anthropic_version,
		    sizeof(ch->anthropic_version), section, key, value, err,
		    errlen) != 0)
			return -1;
		break;
	case C_PROJECT:
	case C_LOCATION:
		if (parse_gcp_name(f == C_PROJECT ? ch->project : ch->location,
		    f == C_PROJECT ? sizeof(ch->project) : sizeof(ch->location),
		    section, key, value, err, errlen) != 0)
			return -1;
		break;
	}
	ld->chan_line[ci][f] = ld->line;
	return 0;
}

/* ---- [agent] and [test] ---- */

/* What the table cannot say about one key just set. */
static int
check_value(struct ag_conf *cf, int k, const char *value, char *err,
    size_t errlen)
{
	const char *sec = ag_keys[k].section, *name = ag_keys[k].name;
	char why[300];
	struct ag_pins one = { 0 };

	switch (k) {
	case K_ID:
		if (cf->id == 0) {
			snprintf(err, errlen, "[agent] id = '%s' is out of range "
			    "1..%" PRId64 " (the id the hub assigned at "
			    "registration)", value, AG_ID_MAX);
			return -1;
		}
		return 0;
	case K_KEY_FILE:
	case K_STATE_DIR:
	case K_CA_FILE:
		if (value[0] == '\0') {
			snprintf(err, errlen, "[%s] %s must not be empty", sec,
			    name);
			return -1;
		}
		return 0;
	case K_HUB_URL:
		if (ag_hub_url_parse(value, cf->hub_host, sizeof(cf->hub_host),
		    &cf->hub_port, cf->hub_path, sizeof(cf->hub_path), why,
		    sizeof(why)) != 0) {
			snprintf(err, errlen, "[agent] hub_url = %s", why);
			return -1;
		}
		return 0;
	case K_UI_LISTEN: {
		char host[AG_HOST_MAX];
		int port;

		if (strcmp(value, "off") == 0)
			return 0;
		if (ag_ui_split(value, host, sizeof(host), &port) != 0) {
			snprintf(err, errlen, "[ui] listen = '%s' is not HOST:PORT "
			    "(or off)", value);
			return -1;
		}
		return 0;
	}
	case K_HUB_PIN:
	case K_HUB_PIN_BACKUP:
		if (pin_add(&one, value, strlen(value), why, sizeof(why)) != 0) {
			snprintf(err, errlen, "[agent] %s = %s", name, why);
			return -1;
		}
		return 0;
	default:
		return 0;
	}
}

/* [test] connect_to: each line's entries are added to those before. */
static int
connect_to_add(struct ag_load *ld, const char *value, char *err,
    size_t errlen)
{
	char *ct = ld->cf.connect_to;
	size_t have = strlen(ct), n = strlen(value);

	if (check_connect_to(value, err, errlen) != 0)
		return -1;
	if (have + (have > 0) + n >= sizeof(ld->cf.connect_to)) {
		snprintf(err, errlen, "[test] connect_to: more than %zu bytes of "
		    "entries in all", sizeof(ld->cf.connect_to) - 1);
		return -1;
	}
	if (have > 0)
		ct[have++] = ',';
	memcpy(ct + have, value, n + 1);	/* fits: checked above */
	ld->key_line[K_CONNECT_TO] = ld->line;
	return 0;
}

static int
check_key(struct ag_load *ld, const char *section, const char *name,
    const char *value, char *err, size_t errlen)
{
	const struct conf_key *k;
	int i, cont;

	if (section[0] == '\0') {
		snprintf(err, errlen, "key '%s' is outside of any section "
		    "(start with [agent])", name);
		return -1;
	}
	/* inih hands an indented line on as more of the previous value. */
	cont = ld->indented && strcmp(section, ld->last_section) == 0 &&
	    strcmp(name, ld->last_name) == 0;
	snprintf(ld->last_section, sizeof(ld->last_section), "%s", section);
	snprintf(ld->last_name, sizeof(ld->last_name), "%s", name);
	if (cont) {
		snprintf(err, errlen, "this line starts with white space, which "
		    "would continue the value of '%s'; agentd takes each value "
		    "on one line", name);
		return -1;
	}
	if (strncmp(section, AG_CHANNEL_PREFIX, strlen(AG_CHANNEL_PREFIX)) == 0)
		return conf_set(&ag_table, ld, section, name, value, err,
		    errlen);
	if ((k = conf_find(&ag_table, section, name)) == NULL)	/* unknown */
		return conf_set(&ag_table, ld, section, name, value, err,
		    errlen);
	i = (int)(k - ag_keys);
#if !SWB_TEST_BUILD
	if (strcmp(section, "test") == 0) {
		snprintf(err, errlen, "[test] %s is accepted only by a test "
		    "build (make TEST_BUILD=1); a release build never changes "
		    "the CA it trusts or where hosts resolve", name);
		return -1;
	}
	if (i == K_HUB_PIN || i == K_HUB_PIN_BACKUP) {
		snprintf(err, errlen, "[agent] %s: pins are fixed at build time "
		    "in a release build (make HUB_PINS=sha256//...)", name);
		return -1;
	}
#endif
	if (i == K_CONNECT_TO)		/* the one key that may repeat */
		return connect_to_add(ld, value, err, errlen);
	if (ld->key_line[i] != 0) {
		snprintf(err, errlen, "duplicate key '%s' in section [%s] "
		    "(first set on line %d)", name, section, ld->key_line[i]);
		return -1;
	}
	/* A pin is judged by its form first: "too long" would say less. */
	if ((i == K_HUB_PIN || i == K_HUB_PIN_BACKUP) &&
	    check_value(&ld->cf, i, value, err, errlen) != 0)
		return -1;
	if (conf_set(&ag_table, ld, section, name, value, err, errlen) != 0)
		return -1;
	ld->key_line[i] = ld->line;
	return check_value(&ld->cf, i, value, err, errlen);
}

/* inih handler: keeps the first error only and stops the reader there. */
static int
on_key(void *user, const char *section, const char *name, const char *value)
{
	struct ag_load *ld = user;
	char why[sizeof(ld->err)];

	if (ld->err_line != 0)
		return 1;
	if (check_key(ld, section, name, value, why, sizeof(why)) == 0)
		return 1;
	ld->err_line = ld->line;
	snprintf(ld->err, sizeof(ld->err), "%s", why);
	return 0;
}

static void
fail_at(struct ag_load *ld, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
fail_at(struct ag_load *ld, const char *fmt, ...)
{
	va_list ap;

	if (ld->err_line != 0)
		return;
	ld->err_line = ld->line;
	va_start(ap, fmt);
	vsnprintf(ld->err, sizeof(ld->err), fmt, ap);
	va_end(ap);
}

/*
 * inih reader: one physical line per call, so ld->line is the line the
 * handler is looking at.  A line that does not fit inih's buffer would be
 * cut into two "lines"; refuse it instead.  Returning NULL ends the parse.
 */
static char *
read_line(char *buf, int size, void *stream)
{
	struct ag_load *ld = stream;
	size_t n;
	int c;

	if (ld->err_line != 0 || fgets(buf, size, ld->fp) == NULL)
		return NULL;
	ld->line++;
	n = strlen(buf);
	if (n == 0 || buf[n - 1] != '\n') {
		if (n + 1 == (size_t)size) {
			if ((c = getc(ld->fp)) != '\n' && c != EOF) {
				fail_at(ld, "line is longer than %d bytes",
				    size - 1);
				return NULL;
			}
		} else if (!feof(ld->fp)) {
			fail_at(ld, "line contains a NUL byte");
			return NULL;
		}
	}
	ld->indented = buf[0] == ' ' || buf[0] == '\t';
	return buf;
}

/*
 * One channel once the file is read: keys that do not apply to its
 * provider, an adapter for it, defaults, the host against the adapter's
 * compiled-in list, and (azure) a deployment for every model.
 */
static int
finish_channel(struct ag_load *ld, int ci, const char *path, char *err,
    size_t errlen)
{
	struct ag_channel *ch = &ld->cf.channels[ci];
	const struct ag_deploys *d = &ld->deploys[ci];
	const int *line = ld->chan_line[ci];
	const struct ag_prov *p;
	int ok, m;

	for (int f = 0; f < C_COUNT; f++) {
		if (line[f] == 0 || chan_keys[f].providers == 0 ||
		    (chan_keys[f].providers & (1u << ch->provider)) != 0)
			continue;
		snprintf(err, errlen, "%s:%d: [channel.%s] %s does not apply "
		    "to provider %s", path, line[f], ch->name,
		    chan_keys[f].name, ag_provider_name(ch->provider));
		return -1;
	}
	if ((p = ag_prov_find(ch->provider)) == NULL) {
		snprintf(err, errlen, "%s:%d: [channel.%s] provider %s: this "
		    "agentd has no adapter for it yet", path,
		    line[C_PROVIDER], ch->name, ag_provider_name(ch->provider));
		return -1;
	}
	if (line[C_HOST] != 0 &&
	    (line[C_RESOURCE] != 0 || line[C_REGION] != 0)) {
		snprintf(err, errlen, "%s:%d: [channel.%s] give host or %s, "
		    "not both", path, line[C_HOST], ch->name,
		    line[C_RESOURCE] != 0 ? "resource" : "region");
		return -1;
	}
	switch (ch->provider) {
	case AG_PROV_AZURE:
		if (ch->host[0] == '\0') {
			snprintf(err, errlen, "%s:%d: [channel.%s] an azure "
			    "channel needs resource = NAME (for NAME%s) or host",
			    path, ch->line, ch->name, AZURE_HOST_SUFFIX);
			return -1;
		}
		if (ch->api_version[0] == '\0')
			snprintf(ch->api_version, sizeof(ch->api_version), "%s",
			    AZURE_API_VERSION);
		for (int k = 0; k < d->n; k++) {
			if ((m = ag_channel_model(ch, d->model[k])) < 0) {
				snprintf(err, errlen, "%s:%d: [channel.%s] "
				    "deployments: '%s' is not one of its models",
				    path, line[C_DEPLOYMENTS], ch->name,
				    d->model[k]);
				return -1;
			}
			memcpy(ch->deployments[m], d->name[k],
			    sizeof(ch->deployments[m]));
		}
		for (m = 0; m < ch->nmodels; m++) {
			if (ch->deployments[m][0] != '\0')
				continue;
			if (ch->model_ids[m][0] == '\0') {
				snprintf(err, errlen, "%s:%d: [channel.%s] model "
				    "'%s' has no deployment (deployments = "
				    "%s:DEPLOYMENT)", path, line[C_MODELS],
				    ch->name, ch->models[m], ch->models[m]);
				return -1;
			}
			memcpy(ch->deployments[m], ch->model_ids[m],
			    sizeof(ch->deployments[m]));
		}
		break;
	case AG_PROV_QWEN:
		if (line[C_REGION] != 0) {
			size_t r, nr = sizeof(qwen_regions) /
			    sizeof(qwen_regions[0]);

			for (r = 0; r < nr; r++)
				if (strcmp(qwen_regions[r][0], ch->region) == 0)
					break;
			if (r == nr) {
				snprintf(err, errlen, "%s:%d: [channel.%s] region "
				    "= '%s' is not one of cn|intl", path,
				    line[C_REGION], ch->name, ch->region);
				return -1;
			}
			snprintf(ch->host, sizeof(ch->host), "%s",
			    qwen_regions[r][1]);
		}
		if (ch->host[0] == '\0')
			snprintf(ch->host, sizeof(ch->host), "%s",
			    qwen_regions[0][1]);
		break;
	case AG_PROV_VERTEX: {
		struct ag_sa sa;
		char why[400];

		if (ch->project[0] == '\0' || ch->location[0] == '\0') {
			snprintf(err, errlen, "%s:%d: [channel.%s] a vertex "
			    "channel needs project and location", path,
			    ch->line, ch->name);
			return -1;
		}
		snprintf(ch->host, sizeof(ch->host), "%s%s",
		    strcmp(ch->location, "global") == 0 ? "" : ch->location,
		    strcmp(ch->location, "global") == 0 ?
		    "aiplatform.googleapis.com" : "-aiplatform.googleapis.com");
		/* key is the service-account file: refused now when others
		 * can read it or it is not one. */
		if (ag_sa_load(ch->key, &sa, why, sizeof(why)) != 0) {
			snprintf(err, errlen, "%s:%d: [channel.%s] key (the "
			    "service-account file): %s", path, line[C_KEY],
			    ch->name, why);
			return -1;
		}
		ag_sa_free(&sa);
		break;
	}
	case AG_PROV_BEDROCK: {
		static const int need[] = { C_REGION, C_ACCESS_KEY_ID,
		    C_SECRET_ACCESS_KEY };

		for (size_t k = 0; k < sizeof(need) / sizeof(need[0]); k++)
			if (line[need[k]] == 0) {
				snprintf(err, errlen, "%s:%d: [channel.%s] a "
				    "bedrock channel needs region, access_key_id "
				    "and secret_access_key (no %s)", path, ch->line,
				    ch->name, chan_keys[need[k]].name);
				return -1;
			}
		{
			char host[AG_HOST_MAX];

			snprintf(host, sizeof(host), BEDROCK_HOST_FMT,
			    ch->region);
			memcpy(ch->host, host, sizeof(ch->host));
		}
		break;
	}
	case AG_PROV_ANTHROPIC:
		if (ch->anthropic_version[0] == '\0')
			snprintf(ch->anthropic_version,
			    sizeof(ch->anthropic_version), "%s",
			    ANTHROPIC_VERSION);
		break;
	default:
		break;
	}
	if (ch->host[0] != '\0') {
		ok = 0;
		for (const char *const *h = p->hosts; h != NULL && *h != NULL;
		    h++)
			ok |= ag_prov_host_match(*h, ch->host);
		if (!ok) {
			snprintf(err, errlen, "%s:%d: [channel.%s] host '%s' is "
			    "not an official %s endpoint", path,
			    line[C_HOST] != 0 ? line[C_HOST] : line[C_RESOURCE],
			    ch->name, ch->host, p->name);
			return -1;
		}
	}
	return 0;
}

/* Checks across keys, pins, and per-OS defaults, once the file is read. */
static int
finish(struct ag_load *ld, const char *path, char *err, size_t errlen)
{
	struct ag_conf *cf = &ld->cf;
	struct plat_paths pp;
	char why[300];
	int i;

	if (cf->id == 0) {
		snprintf(err, errlen, "%s: [agent] id is required (the id the "
		    "hub assigned when this agent was registered)", path);
		return -1;
	}
	if (cf->hub_url[0] == '\0') {
		snprintf(err, errlen, "%s: [agent] hub_url is required (e.g. "
		    "wss://hub.example.com:8443/tunnel/connect)", path);
		return -1;
	}
	if (strcmp(cf->ui_listen, "off") != 0 && !cf->ui_allow_remote &&
	    !ag_ui_loopback(cf->ui_listen)) {
		snprintf(err, errlen, "%s:%d: [ui] listen = %s is not a loopback "
		    "address: the page shows your earnings and logs; set [ui] "
		    "allow_remote = yes to serve it beyond this host", path,
		    ld->key_line[K_UI_LISTEN], cf->ui_listen);
		return -1;
	}
	if (cf->reconnect_min > cf->reconnect_max) {
		i = ld->key_line[K_RECONNECT_MIN] > ld->key_line[K_RECONNECT_MAX] ?
		    ld->key_line[K_RECONNECT_MIN] : ld->key_line[K_RECONNECT_MAX];
		snprintf(err, errlen, "%s:%d: [agent] reconnect_min (%" PRId64
		    "ms) is greater than reconnect_max (%" PRId64 "ms)", path, i,
		    cf->reconnect_min, cf->reconnect_max);
		return -1;
	}
#if SWB_TEST_BUILD
	memset(&cf->pins, 0, sizeof(cf->pins));
	if (cf->hub_pin_backup[0] != '\0' && cf->hub_pin[0] == '\0') {
		snprintf(err, errlen, "%s:%d: [agent] hub_pin_backup without "
		    "hub_pin", path, ld->key_line[K_HUB_PIN_BACKUP]);
		return -1;
	}
	if (cf->hub_pin[0] != '\0')
		(void)pin_add(&cf->pins, cf->hub_pin, strlen(cf->hub_pin), why,
		    sizeof(why));
	if (cf->hub_pin_backup[0] != '\0' && pin_add(&cf->pins,
	    cf->hub_pin_backup, strlen(cf->hub_pin_backup), why,
	    sizeof(why)) != 0) {
		snprintf(err, errlen, "%s:%d: [agent] hub_pin_backup is the same "
		    "as hub_pin", path, ld->key_line[K_HUB_PIN_BACKUP]);
		return -1;
	}
	if (cf->pins.n == 0) {
		if (ag_pins_parse(SWB_HUB_PINS, &cf->pins, why,
		    sizeof(why)) != 0) {
			snprintf(err, errlen, "%s: the built-in hub pins (make "
			    "HUB_PINS=...) are malformed: %s", path, why);
			return -1;
		}
		if (cf->pins.n == 0) {
			snprintf(err, errlen, "%s: no hub pin: set [agent] "
			    "hub_pin = sha256//BASE64 (the hub certificate's "
			    "SPKI SHA-256)", path);
			return -1;
		}
	}
#else
	if (ag_pins_parse(SWB_HUB_PINS, &cf->pins, why, sizeof(why)) != 0) {
		snprintf(err, errlen, "%s: this agentd was built with malformed "
		    "hub pins (make HUB_PINS=...): %s", path, why);
		return -1;
	}
	if (cf->pins.n == 0) {
		snprintf(err, errlen, "%s: this agentd was built without hub "
		    "pins; a release build needs make HUB_PINS=sha256//...",
		    path);
		return -1;
	}
#endif
	/* The release key updates are checked with (agent/ag_update): built
	 * in (make RELEASE_PK=...), or in a test build [test] release_key. */
	{
		const char *rk = SWB_RELEASE_PK;

#if SWB_TEST_BUILD
		if (cf->release_key[0] != '\0')
			rk = cf->release_key;
#endif
		cf->have_release_pk = rk[0] != '\0';
		if (cf->have_release_pk && release_pk_parse(rk, cf->release_pk)
		    != 0) {
			snprintf(err, errlen, "%s:%d: the release key is not the "
			    "base64 of 32 bytes (hubctl release key prints it)",
			    path, ld->key_line[K_RELEASE_KEY]);
			return -1;
		}
	}
	for (i = 0; i < cf->nchannels; i++) {
		const struct ag_channel *ch = &cf->channels[i];
		static const int required[] = { C_PROVIDER, C_MODELS, C_KEY };

		for (size_t r = 0; r < sizeof(required) / sizeof(required[0]);
		    r++) {
			/* bedrock: its credential is access_key_id +
			 * secret_access_key (finish_channel) */
			if (required[r] == C_KEY &&
			    ch->provider == AG_PROV_BEDROCK &&
			    ld->chan_line[i][C_PROVIDER] != 0)
				continue;
			if (ld->chan_line[i][required[r]] == 0) {
				snprintf(err, errlen, "%s:%d: [channel.%s] has no "
				    "%s", path, ch->line, ch->name,
				    chan_keys[required[r]].name);
				return -1;
			}
		}
		if (finish_channel(ld, i, path, err, errlen) != 0)
			return -1;
	}
	plat_default_paths(&pp);
	if (cf->key_file[0] == '\0')
		snprintf(cf->key_file, sizeof(cf->key_file), "%s", pp.key);
	if (cf->state_dir[0] == '\0')
		snprintf(cf->state_dir, sizeof(cf->state_dir), "%s",
		    pp.state_dir);
	return 0;
}

int
ag_conf_load(const char *path, struct ag_conf *cf, char *err, size_t errlen)
{
	struct ag_load *ld;
	int rc, ret = -1;

	if ((ld = calloc(1, sizeof(*ld))) == NULL) {
		snprintf(err, errlen, "%s: out of memory", path);
		return -1;
	}
	if (conf_defaults(&ag_table, ld, ld->err, sizeof(ld->err)) != 0) {
		snprintf(err, errlen, "%s: bad built-in default: %s", path,
		    ld->err);
		goto out;
	}
	if ((ld->fp = fopen(path, "r")) == NULL) {
		snprintf(err, errlen, "%s: cannot open: %s", path,
		    strerror(errno));
		goto out;
	}
	rc = ini_parse_stream(read_line, ld, on_key, ld);
	if (ferror(ld->fp)) {
		snprintf(err, errlen, "%s: read error", path);
		fclose(ld->fp);
		goto out;
	}
	fclose(ld->fp);
	if (rc > 0 && (ld->err_line == 0 || rc < ld->err_line))
		snprintf(err, errlen, "%s:%d: syntax error (expected [section], "
		    "key = value or a comment)", path, rc);
	else if (ld->err_line != 0)
		snprintf(err, errlen, "%s:%d: %s", path, ld->err_line, ld->err);
	else if (rc != 0)
		snprintf(err, errlen, "%s: cannot parse (error %d)", path, rc);
	else if (finish(ld, path, err, errlen) == 0) {
		memcpy(cf, &ld->cf, sizeof(*cf));
		ret = 0;
	}
out:
	sodium_memzero(ld, sizeof(*ld));	/* it held provider keys */
	free(ld);
	return ret;
}
