/*
 * tests/unit/test_agent_conf: agentd.ini loading (agent/ag_conf), pin and
 * hub URL parsing, and the key file rules (agent/ag_key over
 * agent/platform).  Every bad value must be refused with the line it is
 * on; test-only keys and INI pins are checked against what this build
 * (SWB_TEST_BUILD) must do.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <sys/stat.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "agent/ag_conf.h"
#include "agent/ag_key.h"
#include "agent/platform.h"
#include "lib/log.h"

/* 32 zero bytes, and SHA-256 of the empty string. */
#define PIN1 "sha256//AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="
#define PIN2 "sha256//47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="

#if SWB_TEST_BUILD
#define AGENT_PIN	"hub_pin = " PIN1 "\n"
#define AGENT_LINES	5
#else
#define AGENT_PIN	""
#define AGENT_LINES	4
#endif
/* A complete [agent] section of AGENT_LINES lines. */
#define AGENT \
	"[agent]\n" \
	"id = 42\n" \
	"key_file = /nonexistent/agent.key\n" \
	"hub_url = wss://127.0.0.1:8443/tunnel/connect\n" \
	AGENT_PIN

#define CHANNEL(name) \
	"[channel." name "]\n" \
	"provider = openai\n" \
	"models = gpt-4o\n" \
	"key = sk-test\n"

static char tmpdir[64];
static char cfpath[128];
static struct ag_conf cf;	/* ~40 KB: not on the stack */
static char err[1024];

static int
group_setup(void **state)
{
	(void)state;
	if (sodium_init() < 0)
		return -1;
	log_init("test", "main", LOG_LVL_ERROR);
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/swb-agconf.XXXXXX");
	if (mkdtemp(tmpdir) == NULL)
		return -1;
	snprintf(cfpath, sizeof(cfpath), "%s/agentd.ini", tmpdir);
	return 0;
}

static int
group_teardown(void **state)
{
	char p[512];
	struct dirent *de;
	DIR *d;

	(void)state;
	if ((d = opendir(tmpdir)) != NULL) {
		while ((de = readdir(d)) != NULL) {
			if (de->d_name[0] == '.')
				continue;
			snprintf(p, sizeof(p), "%s/%s", tmpdir, de->d_name);
			if (rmdir(p) != 0)
				unlink(p);
		}
		closedir(d);
	}
	rmdir(tmpdir);
	return 0;
}

static void
write_file(const char *path, const void *data, size_t len, mode_t mode)
{
	FILE *f;

	unlink(path);
	f = fopen(path, "w");
	assert_non_null(f);
	assert_int_equal(fwrite(data, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
	assert_int_equal(chmod(path, mode), 0);
}

static int
load(const char *text)
{
	write_file(cfpath, text, strlen(text), 0600);
	err[0] = '\0';
	memset(&cf, 0x5a, sizeof(cf));
	return ag_conf_load(cfpath, &cf, err, sizeof(err));
}

/* The load failed, on line `line` (0: on no line), saying `what`. */
static void
expect_error(const char *text, int line, const char *what)
{
	char at[160];
	int rc = load(text);

	if (rc == 0)
		fail_msg("accepted, expected '%s' at line %d:\n%s", what, line,
		    text);
	if (line > 0)
		snprintf(at, sizeof(at), "%s:%d: ", cfpath, line);
	else
		snprintf(at, sizeof(at), "%s: ", cfpath);
	if (strncmp(err, at, strlen(at)) != 0 || strstr(err, what) == NULL)
		fail_msg("got \"%s\", expected \"%s...%s\"", err, at, what);
}

static void
expect_ok(const char *text)
{
	if (load(text) != 0)
		fail_msg("refused: %s\n%s", err, text);
}

/* Success cases need pins; a release build without HUB_PINS has none. */
static int
have_pins(void)
{
	return SWB_TEST_BUILD || SWB_HUB_PINS[0] != '\0';
}

static void
test_valid_file(void **state)
{
	const struct ag_channel *a, *b;

	(void)state;
	if (!have_pins())
		skip();
	expect_ok(
	    "# comment\n"
	    "; another\n"
	    "[agent]\n"
	    "id = 9007199254740992\n"
	    "key_file = /var/lib/sw/agent.key\n"
	    "hub_url = wss://hub.example.com:8443/tunnel/connect\n"
#if SWB_TEST_BUILD
	    "hub_pin = " PIN1 "\n"
	    "hub_pin_backup = " PIN2 "   ; inline comment\n"
#endif
	    "reconnect_min = 250ms\n"
	    "reconnect_max = 1m\n"
	    "heartbeat_interval = 5s\n"
	    "log_level = debug\n"
	    "state_dir = /var/lib/sw\n"
	    "\n"
#if SWB_TEST_BUILD
	    "[test]\n"
	    "ca_file = /tmp/ca.pem\n"
	    "connect_to = api.openai.com:443:127.0.0.1:9443,"
	    "[::1]:8443:[::1]:9444\n"
#endif
	    "[channel.openai-main]\n"
	    "provider = openai\n"
	    "models = gpt-4o , gpt-4o-mini,o1\n"
	    "key = sk-abc123\n"
	    "rpm = 500\n"
	    "tpm = 200000\n"
	    "grade = A\n"
	    "[channel.br_1]\n"
	    "provider = anthropic\n"
	    "models = anthropic.claude-3-sonnet-20240229-v1:0\n"
	    "key = AKIAEXAMPLE:secret/+=\n");
	assert_int_equal(cf.id, INT64_C(9007199254740992));
	assert_string_equal(cf.key_file, "/var/lib/sw/agent.key");
	assert_string_equal(cf.hub_host, "hub.example.com");
	assert_int_equal(cf.hub_port, 8443);
	assert_string_equal(cf.hub_path, "/tunnel/connect");
	assert_int_equal(cf.reconnect_min, 250);
	assert_int_equal(cf.reconnect_max, 60000);
	assert_int_equal(cf.heartbeat_interval, 5000);
	assert_int_equal(cf.log_level, LOG_LVL_DEBUG);
	assert_string_equal(cf.state_dir, "/var/lib/sw");
#if SWB_TEST_BUILD
	assert_int_equal(cf.pins.n, 2);
	for (int i = 0; i < 32; i++)
		assert_int_equal(cf.pins.sha256[0][i], 0);
	assert_int_equal(cf.pins.sha256[1][0], 0xe3);
	assert_int_equal(cf.pins.sha256[1][31], 0x55);
	assert_string_equal(cf.ca_file, "/tmp/ca.pem");
	assert_non_null(strstr(cf.connect_to, "[::1]:8443:[::1]:9444"));
#else
	assert_true(cf.pins.n >= 1);
	assert_string_equal(cf.ca_file, "");
	assert_string_equal(cf.connect_to, "");
#endif
	assert_int_equal(cf.nchannels, 2);
	a = ag_conf_channel(&cf, "openai-main");
	b = ag_conf_channel(&cf, "br_1");
	assert_non_null(a);
	assert_non_null(b);
	assert_null(ag_conf_channel(&cf, "nope"));
	assert_int_equal(a->provider, AG_PROV_OPENAI);
	assert_string_equal(ag_provider_name(a->provider), "openai");
	assert_int_equal(a->nmodels, 3);
	assert_string_equal(a->models[0], "gpt-4o");
	assert_string_equal(a->models[1], "gpt-4o-mini");
	assert_string_equal(a->models[2], "o1");
	assert_string_equal(a->key, "sk-abc123");
	assert_int_equal(a->rpm, 500);
	assert_int_equal(a->tpm, 200000);
	assert_int_equal(a->grade, AG_GRADE_A);
	assert_int_equal(b->provider, AG_PROV_ANTHROPIC);
	assert_string_equal(b->anthropic_version, "2023-06-01");
	assert_int_equal(b->nmodels, 1);
	assert_string_equal(b->models[0],
	    "anthropic.claude-3-sonnet-20240229-v1:0");
	assert_string_equal(b->key, "AKIAEXAMPLE:secret/+=");
	assert_int_equal(b->grade, AG_GRADE_C);	/* default */
	assert_int_equal(b->rpm, 0);
	assert_int_equal(b->tpm, 0);
}

static void
test_defaults(void **state)
{
	struct plat_paths pp;

	(void)state;
	if (!have_pins())
		skip();
	expect_ok("[agent]\nid = 1\nhub_url = wss://hub.example.com\n"
	    AGENT_PIN);
	plat_default_paths(&pp);
	assert_string_equal(cf.key_file, pp.key);
	assert_string_equal(cf.state_dir, pp.state_dir);
	assert_int_equal(cf.hub_port, 443);
	assert_string_equal(cf.hub_path, "/");
	assert_int_equal(cf.reconnect_min, 500);
	assert_int_equal(cf.reconnect_max, 30000);
	assert_int_equal(cf.heartbeat_interval, 20000);
	assert_int_equal(cf.log_level, LOG_LVL_INFO);
	assert_int_equal(cf.nchannels, 0);
	/* An empty [test] section is fine in any build; so is a BOM. */
	expect_ok("\xEF\xBB\xBF" AGENT "[test]\n");
}

static void
test_bad_agent_values(void **state)
{
	static const struct { const char *text; int line; const char *what; }
	    cases[] = {
		{ "[agent]\nid = 0\n", 2, "out of range 1..9007199254740992" },
		{ "[agent]\nid = 9007199254740993\n", 2, "out of range" },
		{ "[agent]\nid = -5\n", 2, "out of range" },
		{ "[agent]\nid = forty-two\n", 2, "is not an integer" },
		{ "[agent]\n\nhub_url = ws://h:1/x\n", 3, "wss://" },
		{ "[agent]\nhub_url = https://h:1/x\n", 2, "wss://" },
		{ "[agent]\nhub_url = hub:8443\n", 2, "wss://" },
		{ "[agent]\nhub_url = wss://:8443/x\n", 2, "no valid host" },
		{ "[agent]\nhub_url = wss://h_x:1/\n", 2, "no valid host" },
		{ "[agent]\nhub_url = wss://[::1/\n", 2, "no valid host" },
		{ "[agent]\nhub_url = wss://h:0/x\n", 2, "no valid port" },
		{ "[agent]\nhub_url = wss://h:65536/x\n", 2, "no valid port" },
		{ "[agent]\nhub_url = wss://h:80a/x\n", 2, "no valid port" },
		{ "[agent]\nhub_url = wss://h:/x\n", 2, "no valid port" },
		{ "[agent]\nhub_url = wss://u@h:1/x\n", 2, "user info" },
		{ "[agent]\nhub_url = wss://h:1/a b\n", 2, "space" },
		{ "[agent]\nhub_url = wss://h:1?x=1\n", 2, "query" },
		{ "[agent]\nreconnect_min = soon\n", 2, "a duration" },
		{ "[agent]\nreconnect_min = 1ms\n", 2, "out of range" },
		{ "[agent]\nreconnect_max = 2h\n", 2, "out of range" },
		{ "[agent]\nheartbeat_interval = 10ms\n", 2, "out of range" },
		{ "[agent]\nlog_level = loud\n", 2, "debug|info|warn|error" },
		{ "[agent]\nkey_file =\n", 2, "must not be empty" },
		{ "[agent]\nstate_dir =\n", 2, "must not be empty" },
		{ "[agent]\nbogus = 1\n", 2, "unknown key 'bogus'" },
		{ "[agnet]\nid = 1\n", 2, "unknown section [agnet]" },
		{ "[channel]\nprovider = openai\n", 2, "unknown section" },
		{ "[agent]\nid = 1\nid = 2\n", 3,
		    "duplicate key 'id' in section [agent] (first set on line 2)" },
		{ "[agent]\nhub_url = wss://h:1/\n  /more\n", 3, "white space" },
		{ "id = 1\n", 1, "outside of any section" },
		{ "[agent]\nthis is not a pair\n", 2, "syntax error" },
		{ "[agent\nid = 1\n", 1, "syntax error" },
		{ "[agent]\nid = 1\n\n\nnonsense\nbogus = 2\n", 5,
		    "syntax error" },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		expect_error(cases[i].text, cases[i].line, cases[i].what);
}

static void
test_bad_channel_values(void **state)
{
	static const struct { const char *text; int line; const char *what; }
	    cases[] = {
		{ "[channel.x]\nprovider = foo\n", 2,
		    "provider = 'foo' is not one of openai|anthropic|azure|"
		    "bedrock|gemini|vertex|deepseek|qwen" },
		{ "[channel.x]\nprovider = OpenAI\n", 2, "is not one of" },
		{ "[channel.x]\ngrade = D\n", 2, "A|B|C" },
		{ "[channel.x]\ngrade = a\n", 2, "A|B|C" },
		{ "[channel.x]\nrpm = -1\n", 2, "rpm = '-1' is not an integer" },
		{ "[channel.x]\nrpm = 1e3\n", 2, "rpm" },
		{ "[channel.x]\ntpm = 1000000000001\n", 2, "tpm" },
		{ "[channel.x]\nmodels = a,,b\n", 2, "empty entry" },
		{ "[channel.x]\nmodels = a,\n", 2, "empty entry" },
		{ "[channel.x]\nmodels =\n", 2, "empty entry" },
		{ "[channel.x]\nmodels = a, b, a\n", 2, "'a' is listed twice" },
		{ "[channel.x]\nmodels = gpt 4\n", 2, "a character other than" },
		{ "[channel.x]\nmodels = "
		    "m1,m2,m3,m4,m5,m6,m7,m8,m9,m10,m11,m12,m13,m14,m15,m16,m17\n",
		    2, "more than 16 models" },
		{ "[channel.x]\nmodels = "
		    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
		    "\n", 2, "longer than 63 bytes" },
		{ "[channel.x]\nkey =\n", 2, "key must not be empty" },
		{ "[channel.x]\ncolour = red\n", 2,
		    "unknown key 'colour' in section [channel.x]" },
		{ "[channel.x]\nprovider = openai\nprovider = qwen\n", 3,
		    "duplicate key 'provider'" },
		{ "[channel.bad!name]\nprovider = openai\n", 2, "channel name" },
		{ "[channel.]\nprovider = openai\n", 2, "channel name" },
		{ "[channel.aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa]\nprovider = openai\n",
		    2, "channel name" },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		expect_error(cases[i].text, cases[i].line, cases[i].what);
}

/* A bad provider key is refused without being echoed anywhere. */
static void
test_key_not_echoed(void **state)
{
	(void)state;
	expect_error("[channel.x]\nkey = hunter2 secret\n", 2, "white space");
	assert_null(strstr(err, "hunter2"));
}

static void
test_checks_across_keys(void **state)
{
	(void)state;
	expect_error("[agent]\nhub_url = wss://h:1/\n" AGENT_PIN, 0,
	    "[agent] id is required");
	expect_error("[agent]\nid = 3\n" AGENT_PIN, 0,
	    "[agent] hub_url is required");
	if (!have_pins())
		return;
	expect_error(AGENT "reconnect_min = 40s\nreconnect_max = 20s\n",
	    AGENT_LINES + 2, "reconnect_min (40000ms) is greater than "
	    "reconnect_max (20000ms)");
	expect_error(AGENT "[channel.x]\nprovider = openai\nkey = k\n",
	    AGENT_LINES + 2, "[channel.x] has no models");
	expect_error(AGENT "[channel.y]\nmodels = m\nkey = k\n",
	    AGENT_LINES + 2, "[channel.y] has no provider");
	expect_error(AGENT CHANNEL("a") "[channel.z]\nprovider = qwen\n"
	    "models = qwen-max\n", AGENT_LINES + 6, "[channel.z] has no key");
}

static void
test_too_many_channels(void **state)
{
	static char text[16384];
	size_t n;
	char name[16];

	(void)state;
	if (!have_pins())
		skip();
	n = (size_t)snprintf(text, sizeof(text), "%s", AGENT);
	for (int i = 0; i < AG_MAX_CHANNELS; i++) {
		snprintf(name, sizeof(name), "c%d", i);
		n += (size_t)snprintf(text + n, sizeof(text) - n,
		    "[channel.%s]\nprovider = openai\nmodels = m\nkey = k\n",
		    name);
	}
	expect_ok(text);
	assert_int_equal(cf.nchannels, AG_MAX_CHANNELS);
	assert_string_equal(cf.channels[AG_MAX_CHANNELS - 1].name, "c31");
	snprintf(text + n, sizeof(text) - n,
	    "[channel.one-too-many]\nprovider = openai\n");
	expect_error(text, AGENT_LINES + 4 * AG_MAX_CHANNELS + 2,
	    "too many channels (at most 32");
}

static void
test_long_line(void **state)
{
	char text[600];
	int n;

	(void)state;
	n = snprintf(text, sizeof(text), "[agent]\nstate_dir = /");
	memset(text + n, 'x', 250);
	snprintf(text + n + 250, sizeof(text) - (size_t)n - 250, "\nid = 1\n");
	expect_error(text, 2, "line is longer than");
}

static void
test_hub_pin_keys(void **state)
{
	(void)state;
#if SWB_TEST_BUILD
	/* A test build takes pins from the INI and checks their form. */
	expect_error("[agent]\nhub_pin = sha256//short\n", 2, "is not a pin");
	expect_error("[agent]\nhub_pin = "
	    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n", 2, "not a pin");
	expect_error("[agent]\nhub_pin = "
	    "sha1//AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n", 2,
	    "not a pin");
	/* 44 characters, but the base64 of 31 bytes. */
	expect_error("[agent]\nhub_pin = "
	    "sha256//AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA==\n", 2,
	    "not a pin");
	/* Non-zero bits after the last byte: not canonical base64. */
	expect_error("[agent]\nhub_pin = "
	    "sha256//AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAB=\n", 2,
	    "not a pin");
	/* base64url alphabet is not the standard one. */
	expect_error("[agent]\nhub_pin = "
	    "sha256//47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU=\n", 2,
	    "not a pin");
	expect_error("[agent]\nhub_pin = " PIN1 "," PIN2 "\n", 2, "not a pin");
	expect_error("[agent]\nid = 1\nhub_url = wss://h:1/\n"
	    "hub_pin_backup = " PIN2 "\n", 4, "hub_pin_backup without hub_pin");
	expect_error("[agent]\nid = 1\nhub_url = wss://h:1/\nhub_pin = " PIN1
	    "\nhub_pin_backup = " PIN1 "\n", 5, "the same as hub_pin");
	if (SWB_HUB_PINS[0] == '\0')
		expect_error("[agent]\nid = 1\nhub_url = wss://h:1/\n", 0,
		    "no hub pin");
	else
		expect_ok("[agent]\nid = 1\nhub_url = wss://h:1/\n");
#else
	/* A release build refuses them whatever their form. */
	expect_error("[agent]\nid = 1\nhub_pin = " PIN1 "\n", 3,
	    "pins are fixed at build time in a release build");
	expect_error("[agent]\nhub_pin_backup = junk\n", 2,
	    "pins are fixed at build time in a release build");
	if (SWB_HUB_PINS[0] == '\0')
		expect_error("[agent]\nid = 1\nhub_url = wss://h:1/\n", 0,
		    "built without hub pins");
#endif
}

static void
test_test_only_keys(void **state)
{
	(void)state;
#if SWB_TEST_BUILD
	expect_error("[test]\nconnect_to = bad\n", 2, "not HOST:PORT:ADDR:PORT");
	expect_error("[test]\nconnect_to = a:1:b:2,\n", 2,
	    "not HOST:PORT:ADDR:PORT");
	expect_error("[test]\nconnect_to = a:1:b\n", 2,
	    "not HOST:PORT:ADDR:PORT");
	expect_error("[test]\nconnect_to = a:1:b:99999\n", 2,
	    "not HOST:PORT:ADDR:PORT");
	expect_error("[test]\nca_file =\n", 2, "must not be empty");
	expect_error("[test]\nbogus = 1\n", 2, "unknown key 'bogus'");
	expect_ok(AGENT "[test]\nca_file = /x.pem\nconnect_to = a:1:b:2\n");
	assert_string_equal(cf.ca_file, "/x.pem");
#else
	expect_error(AGENT "[test]\nca_file = /x.pem\n", AGENT_LINES + 2,
	    "[test] ca_file is accepted only by a test build");
	expect_error("[test]\nconnect_to = a:1:b:2\n", 2,
	    "[test] connect_to is accepted only by a test build");
#endif
}


/* Per-provider keys: Azure, Qwen, Anthropic; model mapping. */
static void
test_provider_keys(void **state)
{
	const struct ag_channel *c;

	(void)state;
	if (!have_pins())
		skip();
	expect_ok(AGENT
	    "[channel.az]\n"
	    "provider = azure\n"
	    "models = gpt-4.1, gpt-4o=gpt4o-prod, text-embedding-3-small\n"
	    "key = azure-key\n"
	    "resource = Swb-Test\n"
	    "deployments = gpt-4.1:gpt41-deploy, text-embedding-3-small : emb\n"
	    "api_version = 2025-01-01-preview\n"
	    "[channel.qw]\n"
	    "provider = qwen\n"
	    "models = qwen-plus\n"
	    "key = sk-q\n"
	    "region = intl\n"
	    "[channel.qw2]\n"
	    "provider = qwen\n"
	    "models = qwen-plus\n"
	    "key = sk-q\n"
	    "[channel.an]\n"
	    "provider = anthropic\n"
	    "models = claude-haiku-4-5=claude-3-5-haiku-latest,claude-x=claude-x\n"
	    "key = sk-ant\n"
	    "anthropic_version = 2024-01-01\n"
	    "[channel.ds]\n"
	    "provider = deepseek\n"
	    "models = deepseek-chat\n"
	    "key = sk-d\n"
	    "[channel.br]\n"
	    "provider = bedrock\n"
	    "models = claude-haiku-4-5=anthropic.claude-3-5-haiku-20241022-v1:0, "
	    "amazon.nova-lite-v1:0\n"
	    "region = eu-west-3\n"
	    "access_key_id = AKIDEXAMPLE\n"
	    "secret_access_key = wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY\n"
	    "session_token = FQoGZXIvYXdzE+/=\n");
	c = ag_conf_channel(&cf, "br");
	assert_non_null(c);
	assert_string_equal(c->host, "bedrock-runtime.eu-west-3.amazonaws.com");
	assert_string_equal(c->region, "eu-west-3");
	assert_string_equal(c->access_key_id, "AKIDEXAMPLE");
	assert_string_equal(c->key, "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY");
	assert_string_equal(c->session_token, "FQoGZXIvYXdzE+/=");
	assert_string_equal(ag_channel_model_id(c, "claude-haiku-4-5"),
	    "anthropic.claude-3-5-haiku-20241022-v1:0");
	c = ag_conf_channel(&cf, "az");
	assert_non_null(c);
	assert_string_equal(c->host, "swb-test.openai.azure.com");
	assert_string_equal(c->api_version, "2025-01-01-preview");
	assert_string_equal(c->models[1], "gpt-4o");
	assert_string_equal(c->model_ids[1], "gpt4o-prod");
	assert_string_equal(c->deployments[0], "gpt41-deploy");
	assert_string_equal(c->deployments[1], "gpt4o-prod");	/* its id */
	assert_string_equal(c->deployments[2], "emb");
	assert_string_equal(ag_channel_model_id(c, "gpt-4o"), "gpt4o-prod");
	assert_string_equal(ag_channel_model_id(c, "gpt-4.1"), "gpt-4.1");
	assert_null(ag_channel_model_id(c, "gpt-5"));
	c = ag_conf_channel(&cf, "qw");
	assert_string_equal(c->host, "dashscope-intl.aliyuncs.com");
	c = ag_conf_channel(&cf, "qw2");
	assert_string_equal(c->host, "dashscope.aliyuncs.com");	/* default */
	c = ag_conf_channel(&cf, "an");
	assert_string_equal(c->anthropic_version, "2024-01-01");
	assert_string_equal(c->models[0], "claude-haiku-4-5");
	assert_string_equal(c->model_ids[0], "claude-3-5-haiku-latest");
	assert_string_equal(c->model_ids[1], "");	/* the same: no map */
	c = ag_conf_channel(&cf, "ds");
	assert_string_equal(c->host, "");
	assert_string_equal(c->models[0], "deepseek-chat");

	/* Azure by host (checked against the adapter's list). */
	expect_ok(AGENT "[channel.az]\nprovider = azure\nmodels = m=d\n"
	    "key = k\nhost = res.openai.azure.com\n");
	assert_string_equal(cf.channels[0].host, "res.openai.azure.com");
	assert_string_equal(cf.channels[0].api_version, "2024-10-21");
	expect_ok(AGENT "[channel.q]\nprovider = qwen\nmodels = m\nkey = k\n"
	    "host = dashscope-intl.aliyuncs.com\n");
}

static void
test_provider_key_errors(void **state)
{
#define AZ "[channel.az]\nprovider = azure\nkey = k\n"
	static const struct { const char *text; int line; const char *what; }
	    cases[] = {
		/* Line numbers after AGENT. */
		{ AZ "models = gpt-4.1\nresource = r\n", 4,
		    "model 'gpt-4.1' has no deployment (deployments = "
		    "gpt-4.1:DEPLOYMENT)" },
		{ AZ "models = gpt-4.1\n", 2, "an azure channel needs resource" },
		{ AZ "models = a=b\nhost = evil.example\n", 5,
		    "host 'evil.example' is not an official azure endpoint" },
		{ AZ "models = a=b\nhost = x.y.openai.azure.com\n", 5,
		    "not an official azure endpoint" },
		{ AZ "models = a=b\nresource = a.b\n", 5, "not an Azure resource" },
		{ AZ "models = a=b\nresource = r\nhost = r.openai.azure.com\n", 6,
		    "give host or resource, not both" },
		{ AZ "models = a\nresource = r\ndeployments = b:x\n", 6,
		    "deployments: 'b' is not one of its models" },
		{ AZ "deployments = nocolon\n", 4, "not MODEL:DEPLOYMENT" },
		{ AZ "deployments = a:\n", 4, "must be 1 to 63" },
		{ AZ "deployments = a:b c\n", 4, "A-Z a-z 0-9 . _ -" },
		{ AZ "deployments = a:x, a:y\n", 4, "listed twice" },
		{ AZ "api_version = 2024/01\n", 4, "is not a version" },
		{ "[channel.q]\nprovider = qwen\nmodels = m\nkey = k\n"
		    "region = eu\n", 5, "region = 'eu' is not one of cn|intl" },
		{ "[channel.q]\nprovider = qwen\nmodels = m\nkey = k\n"
		    "host = api.openai.com\n", 5, "not an official qwen endpoint" },
		{ "[channel.o]\nprovider = openai\nmodels = m\nkey = k\n"
		    "region = intl\n", 5, "region does not apply to provider "
		    "openai" },
		{ "[channel.o]\nprovider = deepseek\nmodels = m\nkey = k\n"
		    "host = api.deepseek.com\n", 5, "host does not apply" },
		{ "[channel.o]\nanthropic_version = 1\nprovider = openai\n"
		    "models = m\nkey = k\n", 2, "anthropic_version does not "
		    "apply" },
		{ "[channel.a]\nprovider = anthropic\nmodels = m\nkey = k\n"
		    "anthropic_version = 2023 06 01\n", 5, "is not a version" },
#define BR "[channel.b]\nprovider = bedrock\nmodels = m\nregion = us-east-1\n"
		{ BR "access_key_id = AKID\nsecret_access_key = s\nkey = k\n", 7,
		    "key does not apply to provider bedrock" },
		{ BR "secret_access_key = s\n", 2, "a bedrock channel needs "
		    "region, access_key_id and secret_access_key (no "
		    "access_key_id)" },
		{ BR "access_key_id = AKID\n", 2, "(no secret_access_key)" },
		{ BR "access_key_id = akid\n", 5, "not an AWS access key id" },
		{ BR "secret_access_key = a b\n", 5, "secret_access_key contains "
		    "white space" },
		{ BR "session_token = \n", 5, "session_token must be 1 to" },
		{ "[channel.b]\nprovider = bedrock\nmodels = m\n"
		    "region = US_EAST\n", 4, "is not a region name" },
		{ "[channel.b]\nprovider = bedrock\nmodels = m\n"
		    "access_key_id = AKID\nsecret_access_key = s\n", 2,
		    "(no region)" },
		{ "[channel.q]\nprovider = qwen\nmodels = m\nkey = k\n"
		    "session_token = t\n", 5, "session_token does not apply to "
		    "provider qwen" },
#undef BR
		{ "[channel.m]\nprovider = openai\nkey = k\nmodels = a=\n", 4,
		    "empty name" },
		{ "[channel.m]\nprovider = openai\nkey = k\nmodels = =b\n", 4,
		    "empty name" },
		{ "[channel.m]\nprovider = openai\nkey = k\nmodels = a=b c\n", 4,
		    "a character other than" },
		{ "[channel.m]\nprovider = openai\nkey = k\nmodels = a=x, a=y\n",
		    4, "'a' is listed twice" },
	};
	char text[1024];

	(void)state;
	if (!have_pins())
		skip();
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		snprintf(text, sizeof(text), "%s%s", AGENT, cases[i].text);
		expect_error(text, AGENT_LINES + cases[i].line, cases[i].what);
	}
#undef AZ
}

/* [test] connect_to may repeat: every line's entries, in order. */
static void
test_connect_to_lines(void **state)
{
	static char text[4096];
	static const char *const hosts[] = {
		"api.openai.com", "api.anthropic.com",
		"swb-test.openai.azure.com", "api.deepseek.com",
		"dashscope.aliyuncs.com", "dashscope-intl.aliyuncs.com",
		"bedrock-runtime.us-east-1.amazonaws.com",
		"generativelanguage.googleapis.com",
		"us-central1-aiplatform.googleapis.com",
		"oauth2.googleapis.com",
	};
	size_t n;

	(void)state;
	if (!SWB_TEST_BUILD || !have_pins())
		skip();
	n = (size_t)snprintf(text, sizeof(text), "%s[test]\n", AGENT);
	for (size_t i = 0; i < sizeof(hosts) / sizeof(hosts[0]); i++)
		n += (size_t)snprintf(text + n, sizeof(text) - n,
		    "connect_to = %s:443:127.0.0.1:%zu\n", hosts[i], 9000 + i);
	expect_ok(text);
	assert_non_null(strstr(cf.connect_to,
	    "api.openai.com:443:127.0.0.1:9000,api.anthropic.com:443:127.0.0.1:"
	    "9001,"));
	assert_non_null(strstr(cf.connect_to,
	    ",oauth2.googleapis.com:443:127.0.0.1:9009"));
	/* A bad entry on a later line is refused on that line. */
	snprintf(text + n, sizeof(text) - n, "connect_to = nope\n");
	expect_error(text, AGENT_LINES + 2 + 10, "not HOST:PORT:ADDR:PORT");
	/* Too many bytes in all. */
	n = (size_t)snprintf(text, sizeof(text), "%s[test]\n", AGENT);
	for (int i = 0; i < 12; i++)
		n += (size_t)snprintf(text + n, sizeof(text) - n, "connect_to = "
		    "a-very-long-host-name-%02d.example.com:443:127.0.0.1:9000,"
		    "another-long-host-name-%02d.example.com:443:127.0.0.1:9001\n",
		    i, i);
	assert_int_equal(load(text), -1);
	assert_non_null(strstr(err, "connect_to: more than 1023 bytes"));
}

static void
test_pins_parse(void **state)
{
	struct ag_pins p;
	char e[300];

	(void)state;
	assert_int_equal(ag_pins_parse("", &p, e, sizeof(e)), 0);
	assert_int_equal(p.n, 0);
	assert_int_equal(ag_pins_parse("  ", &p, e, sizeof(e)), 0);
	assert_int_equal(p.n, 0);
	assert_int_equal(ag_pins_parse(PIN2, &p, e, sizeof(e)), 0);
	assert_int_equal(p.n, 1);
	assert_int_equal(p.sha256[0][0], 0xe3);
	assert_int_equal(ag_pins_parse(" " PIN1 " , " PIN2 " ", &p, e,
	    sizeof(e)), 0);
	assert_int_equal(p.n, 2);
	assert_int_equal(ag_pins_parse(PIN1 ",", &p, e, sizeof(e)), -1);
	assert_non_null(strstr(e, "empty entry"));
	assert_int_equal(ag_pins_parse(PIN1 "," PIN1, &p, e, sizeof(e)), -1);
	assert_non_null(strstr(e, "twice"));
	assert_int_equal(ag_pins_parse(PIN1 " " PIN2, &p, e, sizeof(e)), -1);
	assert_int_equal(ag_pins_parse(
	    "sha256/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=", &p, e,
	    sizeof(e)), -1);
	assert_non_null(strstr(e, "not a pin"));
	assert_int_equal(ag_pins_parse(
	    "sha256//AQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=,"
	    "sha256//AgAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=,"
	    "sha256//AwAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=,"
	    "sha256//BAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=", &p, e,
	    sizeof(e)), 0);
	assert_int_equal(p.n, AG_MAX_PINS);
	assert_int_equal(ag_pins_parse(
	    "sha256//AQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=,"
	    "sha256//AgAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=,"
	    "sha256//AwAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=,"
	    "sha256//BAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=," PIN1, &p, e,
	    sizeof(e)), -1);
	assert_non_null(strstr(e, "more than 4 pins"));
	/* Whatever this build was given with make HUB_PINS=... parses. */
	if (ag_pins_parse(SWB_HUB_PINS, &p, e, sizeof(e)) != 0)
		fail_msg("built-in SWB_HUB_PINS: %s", e);
}

static void
test_hub_url_parse(void **state)
{
	char host[AG_HOST_MAX], path[AG_URL_MAX], e[300];
	int port;

	(void)state;
	assert_int_equal(ag_hub_url_parse("wss://[::1]:9/x/y", host,
	    sizeof(host), &port, path, sizeof(path), e, sizeof(e)), 0);
	assert_string_equal(host, "::1");
	assert_int_equal(port, 9);
	assert_string_equal(path, "/x/y");
	assert_int_equal(ag_hub_url_parse("wss://10.0.0.1:65535", host,
	    sizeof(host), &port, path, sizeof(path), e, sizeof(e)), 0);
	assert_string_equal(host, "10.0.0.1");
	assert_int_equal(port, 65535);
	assert_string_equal(path, "/");
	assert_int_equal(ag_hub_url_parse("wss://h.example/t?v=1", host,
	    sizeof(host), &port, path, sizeof(path), e, sizeof(e)), 0);
	assert_int_equal(port, 443);
	assert_string_equal(path, "/t?v=1");
	assert_int_equal(ag_hub_url_parse("wss://h..x:1/", host, sizeof(host),
	    &port, path, sizeof(path), e, sizeof(e)), -1);
	assert_int_equal(ag_hub_url_parse("wss://-h:1/", host, sizeof(host),
	    &port, path, sizeof(path), e, sizeof(e)), -1);
	assert_int_equal(ag_hub_url_parse("wss://h:1#frag", host, sizeof(host),
	    &port, path, sizeof(path), e, sizeof(e)), -1);
	assert_int_equal(ag_hub_url_parse("WSS://h:1/", host, sizeof(host),
	    &port, path, sizeof(path), e, sizeof(e)), -1);
}

/* ---- key file ---- */

static void
key_path(char *out, size_t len, const char *name)
{
	snprintf(out, len, "%s/%s", tmpdir, name);
}

static void
test_key_roundtrip(void **state)
{
	struct ag_key k, l;
	unsigned char sig[AG_KEY_SIG_LEN];
	char path[256], e[512];
	struct stat st;

	(void)state;
	key_path(path, sizeof(path), "rt.key");
	unlink(path);
	ag_key_generate(&k);
	assert_int_equal(strlen(k.pk_b64), AG_PK_B64_LEN);
	assert_int_equal(ag_key_save(&k, path, 0, e, sizeof(e)), 0);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0600);
	assert_int_equal(st.st_size, AG_KEY_FILE_LEN);
	assert_int_equal(plat_check_key_perms(path, e, sizeof(e)), 0);
	if (ag_key_load(&l, path, e, sizeof(e)) != 0)
		fail_msg("%s", e);
	assert_memory_equal(l.pk, k.pk, sizeof(k.pk));
	assert_memory_equal(l.sk, k.sk, sizeof(k.sk));
	assert_string_equal(l.pk_b64, k.pk_b64);
	ag_key_sign(&l, "nonce", 5, sig);
	assert_int_equal(crypto_sign_verify_detached(sig,
	    (const unsigned char *)"nonce", 5, k.pk), 0);

	/* Never overwritten without asking; the file stays as it was. */
	ag_key_generate(&l);
	assert_int_equal(ag_key_save(&l, path, 0, e, sizeof(e)), PLAT_EXISTS);
	assert_non_null(strstr(e, "already exists"));
	assert_int_equal(ag_key_load(&l, path, e, sizeof(e)), 0);
	assert_memory_equal(l.pk, k.pk, sizeof(k.pk));

	/* Overwriting makes a fresh 0600 file whatever the old mode was. */
	assert_int_equal(chmod(path, 0644), 0);
	ag_key_generate(&l);
	assert_int_equal(ag_key_save(&l, path, 1, e, sizeof(e)), 0);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0600);
	assert_int_equal(ag_key_load(&k, path, e, sizeof(e)), 0);
	assert_memory_equal(l.pk, k.pk, sizeof(k.pk));
	ag_key_wipe(&k);
	ag_key_wipe(&l);
	for (size_t i = 0; i < sizeof(k.sk); i++)
		assert_int_equal(k.sk[i], 0);
}

static void
expect_key_refused(const char *path, const char *what)
{
	struct ag_key k;
	char e[512];

	if (ag_key_load(&k, path, e, sizeof(e)) == 0)
		fail_msg("%s accepted, expected '%s'", path, what);
	if (strstr(e, what) == NULL)
		fail_msg("got \"%s\", expected \"%s\"", e, what);
}

static void
test_key_refused(void **state)
{
	struct ag_key k;
	char path[256], dir[256], e[512], text[AG_KEY_FILE_LEN + 8];

	(void)state;
	key_path(path, sizeof(path), "bad.key");
	unlink(path);
	ag_key_generate(&k);
	assert_int_equal(ag_key_save(&k, path, 0, e, sizeof(e)), 0);

	static const mode_t modes[] = { 0640, 0604, 0660, 0606, 0700 | 04 };
	for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
		assert_int_equal(chmod(path, modes[i]), 0);
		expect_key_refused(path, "readable or writable by group or "
		    "others");
		assert_int_equal(plat_check_key_perms(path, e, sizeof(e)),
		    PLAT_ERR);
	}
	/* Owner-only modes other than 0600 are fine. */
	assert_int_equal(chmod(path, 0400), 0);
	assert_int_equal(ag_key_load(&k, path, e, sizeof(e)), 0);

	key_path(dir, sizeof(dir), "dir.key");
	assert_int_equal(mkdir(dir, 0700), 0);
	expect_key_refused(dir, "not a regular file");
	assert_int_equal(plat_check_key_perms(dir, e, sizeof(e)), PLAT_ERR);

	key_path(path, sizeof(path), "missing.key");
	expect_key_refused(path, "No such file");

	key_path(path, sizeof(path), "short.key");
	write_file(path, "AAAA\n", 5, 0600);
	expect_key_refused(path, "wrong size or format");

	key_path(path, sizeof(path), "crlf.key");
	ag_key_generate(&k);
	sodium_bin2base64(text, sizeof(text), k.sk, sizeof(k.sk),
	    sodium_base64_VARIANT_ORIGINAL);
	memcpy(text + AG_KEY_B64_LEN, "\r\n", 2);
	write_file(path, text, AG_KEY_FILE_LEN + 1, 0600);
	expect_key_refused(path, "wrong size or format");
	/* Without its final newline it is accepted. */
	write_file(path, text, AG_KEY_B64_LEN, 0600);
	assert_int_equal(ag_key_load(&k, path, e, sizeof(e)), 0);

	key_path(path, sizeof(path), "big.key");
	{
		char big[4096];

		memset(big, 'A', sizeof(big));
		write_file(path, big, sizeof(big), 0600);
		expect_key_refused(path, "more than");
	}

	key_path(path, sizeof(path), "b64.key");
	memset(text, '!', AG_KEY_B64_LEN);
	text[AG_KEY_B64_LEN] = '\n';
	write_file(path, text, AG_KEY_FILE_LEN, 0600);
	expect_key_refused(path, "not base64");

	/* A public half that does not belong to the seed. */
	key_path(path, sizeof(path), "corrupt.key");
	ag_key_generate(&k);
	k.sk[63] ^= 1;
	sodium_bin2base64(text, sizeof(text), k.sk, sizeof(k.sk),
	    sodium_base64_VARIANT_ORIGINAL);
	text[AG_KEY_B64_LEN] = '\n';
	write_file(path, text, AG_KEY_FILE_LEN, 0600);
	expect_key_refused(path, "corrupt key");
	ag_key_wipe(&k);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_valid_file),
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_bad_agent_values),
		cmocka_unit_test(test_bad_channel_values),
		cmocka_unit_test(test_key_not_echoed),
		cmocka_unit_test(test_checks_across_keys),
		cmocka_unit_test(test_too_many_channels),
		cmocka_unit_test(test_long_line),
		cmocka_unit_test(test_hub_pin_keys),
		cmocka_unit_test(test_test_only_keys),
		cmocka_unit_test(test_provider_keys),
		cmocka_unit_test(test_provider_key_errors),
		cmocka_unit_test(test_connect_to_lines),
		cmocka_unit_test(test_pins_parse),
		cmocka_unit_test(test_hub_url_parse),
		cmocka_unit_test(test_key_roundtrip),
		cmocka_unit_test(test_key_refused),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
