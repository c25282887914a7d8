/*
 * tools/hubctl_fmt: a table of commands hubctl knows and the printer of
 * each one's answer.  Commands without a printer show their "message", or
 * "OK".  Commands whose arguments hubctl can check itself (price: exact
 * decimal amounts) are refused here before anything is sent.
 */
#include "tools/hubctl_fmt.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "lib/money.h"

static void
dur(char *buf, size_t len, json_int_t s)
{
	if (s >= 86400)
		snprintf(buf, len, "%lldd%lldh", (long long)(s / 86400),
		    (long long)(s % 86400 / 3600));
	else if (s >= 3600)
		snprintf(buf, len, "%lldh%lldm", (long long)(s / 3600),
		    (long long)(s % 3600 / 60));
	else if (s >= 60)
		snprintf(buf, len, "%lldm%llds", (long long)(s / 60),
		    (long long)(s % 60));
	else
		snprintf(buf, len, "%llds", (long long)s);
}

static const char *
str(json_t *o, const char *k)
{
	const char *s = json_string_value(json_object_get(o, k));
	return s ? s : "-";
}

static json_int_t
num(json_t *o, const char *k)
{
	return json_integer_value(json_object_get(o, k));
}

static void
print_status(json_t *o)
{
	char up[32];
	size_t i;
	json_t *c;

	dur(up, sizeof(up), num(o, "uptime_s"));
	printf("hubd pid %lld (uid %lld), up %s, config generation %lld (%s)%s\n",
	    (long long)num(o, "pid"), (long long)num(o, "uid"), up,
	    (long long)num(o, "config_generation"),
	    str(o, "config_file"),
	    json_is_true(json_object_get(o, "draining")) ? ", draining" : "");
	printf("gateway %s, tunnel %s\n",
	    str(json_object_get(o, "listen"), "gateway"),
	    str(json_object_get(o, "listen"), "tunnel"));
	printf("%-14s %-8s %8s %9s %8s %4s %6s\n", "CHILD", "STATE", "PID",
	    "RESTARTS", "UPTIME", "GEN", "UID");
	json_array_foreach(json_object_get(o, "children"), i, c) {
		char uid[16] = "-";	/* null until the child is ready */
		if (json_is_integer(json_object_get(c, "uid")))
			snprintf(uid, sizeof(uid), "%lld", (long long)num(c, "uid"));
		dur(up, sizeof(up), num(c, "uptime_s"));
		printf("%-14s %-8s %8lld %9lld %8s %4lld %6s\n", str(c, "name"),
		    str(c, "state"), (long long)num(c, "pid"),
		    (long long)num(c, "restarts"), up,
		    (long long)num(c, "config_generation"), uid);
	}
}

static void
print_reload(json_t *o)
{
	printf("reloaded: configuration generation %lld\n",
	    (long long)num(o, "config_generation"));
}

/* Print every object of o[key] as aligned columns named by cols. */
static void
print_table(json_t *o, const char *key, const char *const *cols)
{
	size_t i, n;
	json_t *row;

	for (n = 0; cols[n] != NULL; n++)
		printf("%s%-14s", n ? " " : "", cols[n]);
	printf("\n");
	json_array_foreach(json_object_get(o, key), i, row) {
		for (size_t c = 0; c < n; c++) {
			json_t *v = json_object_get(row, cols[c]);
			char buf[256];
			if (json_is_string(v) && json_string_value(v)[0] != '\0')
				snprintf(buf, sizeof(buf), "%s", json_string_value(v));
			else if (json_is_integer(v))
				snprintf(buf, sizeof(buf), "%lld",
				    (long long)json_integer_value(v));
			else if (json_is_boolean(v))
				snprintf(buf, sizeof(buf), "%s",
				    json_is_true(v) ? "yes" : "no");
			else
				snprintf(buf, sizeof(buf), "-");
			printf("%s%-14s", c ? " " : "", buf);
		}
		printf("\n");
	}
}

static void print_message(json_t *o);

static void
print_agents(json_t *o)
{
	static const char *const cols[] = { "id", "name", "address", "since",
		"channels", "last_heartbeat", "public", "differs", "version",
		NULL };
	print_table(o, "agents", cols);
}

static void
print_agent(json_t *o)
{
	static const char *const cols[] = { "id", "name", "grade", "enabled",
		"pubkey", NULL };
	if (json_object_get(o, "agents") != NULL)
		print_table(o, "agents", cols);
	else if (json_object_get(o, "id") != NULL)
		printf("agent %lld\n", (long long)num(o, "id"));
	else
		printf("%s\n", json_string_value(json_object_get(o, "message")) ?
		    str(o, "message") : "OK");
}

static void
print_token(json_t *o)
{
	static const char *const cols[] = { "id", "name", "quota", "used",
		"models", "policy", "enabled", NULL };
	static const char *const rcols[] = { "time", "request_id", "model",
		"channel", "input_tokens", "output_tokens", "amount", "status",
		NULL };
	if (json_object_get(o, "tokens") != NULL)
		print_table(o, "tokens", cols);
	else if (json_object_get(o, "requests") != NULL) {
		print_table(o, "requests", rcols);
		if (json_is_string(json_object_get(o, "next")))
			printf("more: --before %s\n", str(o, "next"));
	} else if (json_object_get(o, "secret") != NULL)
		/* The only time the secret is ever shown. */
		printf("%s\n", str(o, "secret"));
	else
		printf("%s\n", str(o, "message"));
}

/* Channels: one aligned row each; widths follow the longest cell. */
#define CH_COLS 20
static void
print_channels(json_t *o)
{
	static const char *const head[CH_COLS] = { "SLOT", "AGENT", "NAME",
		"CHANNEL", "PROVIDER", "GRADE", "RPM", "TPM", "INFL", "REQ/MIN",
		"TOK/MIN", "OK", "ERR", "STREAK", "EJECTED", "TTFB_MS", "TOK/S",
		"BEST", "GRADED", "BOUND" };
	json_t *chs = json_object_get(o, "channels"), *c;
	size_t n = json_array_size(chs), i, w[CH_COLS];
	char (*cell)[CH_COLS][64] = calloc(n + 1, sizeof(*cell));
	json_int_t now = num(o, "now_ms");

	if (cell == NULL)
		return;
	for (int k = 0; k < CH_COLS; k++)
		snprintf(cell[0][k], sizeof(cell[0][k]), "%s", head[k]);
	json_array_foreach(chs, i, c) {
		char (*r)[64] = cell[i + 1];
		json_t *sc = json_object_get(c, "scores");
		json_int_t until = num(c, "ejected_until_ms");
		const char *pol[3] = { "best", "graded", "bound" };

		snprintf(r[0], 64, "%lld", (long long)num(c, "slot"));
		snprintf(r[1], 64, "%lld", (long long)num(c, "agent_id"));
		snprintf(r[2], 64, "%s", str(c, "agent"));
		snprintf(r[3], 64, "%s", str(c, "channel"));
		snprintf(r[4], 64, "%s", str(c, "provider"));
		snprintf(r[5], 64, "%s", str(c, "grade"));
		snprintf(r[6], 64, "%lld", (long long)num(c, "rpm_limit"));
		snprintf(r[7], 64, "%lld", (long long)num(c, "tpm_limit"));
		snprintf(r[8], 64, "%lld", (long long)num(c, "inflight"));
		snprintf(r[9], 64, "%lld", (long long)num(c, "requests_minute"));
		snprintf(r[10], 64, "%lld", (long long)num(c, "tokens_minute"));
		snprintf(r[11], 64, "%lld", (long long)num(c, "ok"));
		snprintf(r[12], 64, "%lld", (long long)num(c, "err"));
		snprintf(r[13], 64, "%lld", (long long)num(c, "err_streak"));
		if (until > now)
			snprintf(r[14], 64, "%.1fs", (double)(until - now) / 1000.0);
		else
			snprintf(r[14], 64, "-");
		snprintf(r[15], 64, "%.1f",
		    json_real_value(json_object_get(c, "ttfb_ms")));
		snprintf(r[16], 64, "%.1f",
		    json_real_value(json_object_get(c, "tokens_per_s")));
		for (int k = 0; k < 3; k++)
			snprintf(r[17 + k], 64, "%lld", (long long)num(
			    json_object_get(sc, pol[k]), "score"));
	}
	for (int k = 0; k < CH_COLS; k++) {
		w[k] = 0;
		for (i = 0; i <= n; i++)
			if (strlen(cell[i][k]) > w[k])
				w[k] = strlen(cell[i][k]);
	}
	for (i = 0; i <= n; i++) {
		for (int k = 0; k < CH_COLS; k++)
			/* Names left-aligned, figures right-aligned. */
			printf(k == 0 ? "%*s" : k >= 2 && k <= 5 ? "  %-*s" : "  %*s",
			    (int)w[k], cell[i][k]);
		printf("\n");
	}
	json_array_foreach(chs, i, c)
		printf("slot %lld models: %s\n", (long long)num(c, "slot"),
		    str(c, "models"));
	free(cell);
}

/* Prices: one aligned row per model, amounts per 1,000,000 tokens. */
#define PR_COLS 7
static void
print_price(json_t *o)
{
	static const char *const head[PR_COLS] = { "MODEL", "VERSION",
		"INPUT", "OUTPUT", "CACHED_INPUT", "CACHE_WRITE", "SINCE (UTC)" };
	static const char *const key[4] = { "input_micros", "output_micros",
		"cached_input_micros", "cache_write_micros" };
	json_t *rows = json_object_get(o, "prices"), *p;
	size_t n = json_array_size(rows), i, w[PR_COLS];
	char (*cell)[PR_COLS][160];

	if (rows == NULL) {
		print_message(o);
		return;
	}
	if ((cell = calloc(n + 1, sizeof(*cell))) == NULL)
		return;
	for (int k = 0; k < PR_COLS; k++)
		snprintf(cell[0][k], sizeof(cell[0][k]), "%s", head[k]);
	json_array_foreach(rows, i, p) {
		char (*r)[160] = cell[i + 1];
		time_t t = (time_t)num(p, "created_at");
		struct tm tm;

		snprintf(r[0], 160, "%s", str(p, "model"));
		snprintf(r[1], 160, "%lld", (long long)num(p, "version"));
		/* From the integer micro-units, formatted exactly. */
		for (int k = 0; k < 4; k++)
			money_format((int64_t)num(p, key[k]), r[2 + k], 160);
		if (gmtime_r(&t, &tm) == NULL ||
		    strftime(r[6], 160, "%Y-%m-%d %H:%M", &tm) == 0)
			snprintf(r[6], 160, "-");
	}
	for (int k = 0; k < PR_COLS; k++) {
		w[k] = 0;
		for (i = 0; i <= n; i++)
			if (strlen(cell[i][k]) > w[k])
				w[k] = strlen(cell[i][k]);
	}
	for (i = 0; i <= n; i++) {
		for (int k = 0; k < PR_COLS; k++)
			printf(k == 0 ? "%-*s" : k == 6 ? "  %.*s" : "  %*s",
			    k == 6 ? 160 : (int)w[k], cell[i][k]);
		printf("\n");
	}
	if (n > 0)
		printf("(per 1,000,000 tokens)\n");
	free(cell);
}

static void
print_message(json_t *o)
{
	const char *m = json_string_value(json_object_get(o, "message"));
	printf("%s\n", m ? m : "OK");
}

static void
print_ledger(json_t *o)
{
	static const char *const cols[] = { "agent", "entries", "head", "ok",
		NULL };
	if (json_object_get(o, "agents") != NULL)
		print_table(o, "agents", cols);
	else if (json_object_get(o, "csv") != NULL)
		printf("%s%s", str(o, "header"), str(o, "csv"));
}

static void
print_disputes(json_t *o)
{
	static const char *const cols[] = { "id", "agent", "seq", "request_id",
		"hub_amount", "agent_amount", "status", "reason", NULL };
	print_table(o, "disputes", cols);
}

/* token get / update: one token, a field a line. */
static void
print_token_one(json_t *o)
{
	const char *k;
	json_t *v;

	json_object_foreach(o, k, v) {
		if (strcmp(k, "ok") == 0)
			continue;
		if (json_is_string(v))
			printf("%-12s %s\n", k, json_string_value(v));
		else if (json_is_integer(v))
			printf("%-12s %lld\n", k, (long long)json_integer_value(v));
		else if (json_is_boolean(v))
			printf("%-12s %s\n", k, json_is_true(v) ? "yes" : "no");
	}
}

static void
print_token_any(json_t *o)
{
	if (json_object_get(o, "hash_prefix") != NULL &&
	    json_object_get(o, "tokens") == NULL)
		print_token_one(o);
	else
		print_token(o);
}

static void
print_admin_key(json_t *o)
{
	static const char *const cols[] = { "id", "name", "hash_prefix",
		"created_at", "last_used_at", "valid", NULL };
	if (json_object_get(o, "keys") != NULL)
		print_table(o, "keys", cols);
	else if (json_object_get(o, "key") != NULL)
		/* The only time the key is ever shown. */
		printf("%s\n", str(o, "key"));
	else
		print_message(o);
}

static void
print_usage(json_t *o)
{
	static const char *const cols[] = { "bucket", "key", "requests",
		"input_tokens", "output_tokens", "cached_tokens", "amount", NULL };
	printf("usage by %s per %s\n", str(o, "by"), str(o, "bucket"));
	print_table(o, "rows", cols);
}

static void
print_dispute(json_t *o)
{
	printf("dispute %lld (agent %lld seq %lld, %s): %s%s%s\n",
	    (long long)num(o, "id"), (long long)num(o, "agent_id"),
	    (long long)num(o, "seq"), str(o, "request_id"), str(o, "status"),
	    *str(o, "reason") ? ": " : "", str(o, "reason"));
}

static const struct {
	const char *name;
	void (*print)(json_t *o);
} cmds[] = {
	{ "admin-key", print_admin_key },
	{ "usage", print_usage },
	{ "dispute", print_dispute },
	{ "status", print_status },
	{ "reload", print_reload },
	{ "stop", print_message },
	{ "agent", print_agent },
	{ "agents", print_agents },
	{ "channels", print_channels },
	{ "kick", print_message },
	{ "send", print_message },
	{ "release", print_message },
	{ "token", print_token_any },
	{ "price", print_price },
	{ "ledger", print_ledger },
	{ "disputes", print_disputes },
};

/*
 * price set MODEL --input X --output Y [--cached-input Z] [--cache-write W]:
 * every amount must be what billing will accept, checked with the same
 * money_parse; billing checks again.
 */
static int
check_price(int argc, char **argv)
{
	static const char *const opts[] = { "--input", "--output",
		"--cached-input", "--cache-write", "--image", "--audio-second",
		"--audio-char", "--video-second", NULL };
	int have_in = 0, have_out = 0, model = 0, units = 0;
	int64_t v;

	if (argc < 2 || strcmp(argv[1], "set") != 0)
		return 0;
	for (int i = 2; i < argc; i++) {
		const char *const *o;

		if (strcmp(argv[i], "--json") == 0)
			continue;
		if (!model && strncmp(argv[i], "--", 2) != 0) {
			model = 1;
			continue;
		}
		for (o = opts; *o != NULL && strcmp(*o, argv[i]) != 0; o++)
			;
		if (*o == NULL) {
			fprintf(stderr, "hubctl: price set: unexpected '%s'\n",
			    argv[i]);
			return -1;
		}
		if (i + 1 >= argc) {
			fprintf(stderr, "hubctl: price set: %s needs an amount\n",
			    argv[i]);
			return -1;
		}
		if (money_parse(argv[i + 1], &v) != 0) {
			fprintf(stderr, "hubctl: price set: %s '%s' is not an "
			    "amount like 2.5 (per 1,000,000 tokens, not negative, "
			    "at most 6 decimals)\n", argv[i], argv[i + 1]);
			return -1;
		}
		have_in |= o == &opts[0];
		have_out |= o == &opts[1];
		units |= o >= &opts[4];		/* per one unit */
		i++;
	}
	if (!model || (!units && (!have_in || !have_out))) {
		fprintf(stderr, "hubctl: usage: price set MODEL --input AMOUNT "
		    "--output AMOUNT [--cached-input AMOUNT] [--cache-write "
		    "AMOUNT] [--image AMOUNT] [--audio-second AMOUNT] "
		    "[--audio-char AMOUNT] [--video-second AMOUNT] (the last "
		    "four per one unit; with one of them --input/--output may "
		    "be left out)\n");
		return -1;
	}
	return 0;
}

int
hubctl_check(int argc, char **argv)
{
	if (argc > 0 && strcmp(argv[0], "price") == 0)
		return check_price(argc, argv);
	return 0;
}

int
hubctl_known(const char *cmd)
{
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
		if (strcmp(cmds[i].name, cmd) == 0)
			return 1;
	return 0;
}

void
hubctl_print(const char *cmd, json_t *o)
{
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
		if (strcmp(cmds[i].name, cmd) == 0) {
			cmds[i].print(o);
			return;
		}
}
