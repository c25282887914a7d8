/*
 * tools/hubctl_fmt: a table of commands hubctl knows and the printer of
 * each one's answer.  Commands without a printer show their "message", or
 * "OK".
 */
#include "tools/hubctl_fmt.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
	printf("hubd pid %lld, up %s, config generation %lld (%s)%s\n",
	    (long long)num(o, "pid"), up, (long long)num(o, "config_generation"),
	    str(o, "config_file"),
	    json_is_true(json_object_get(o, "draining")) ? ", draining" : "");
	printf("gateway %s, tunnel %s\n",
	    str(json_object_get(o, "listen"), "gateway"),
	    str(json_object_get(o, "listen"), "tunnel"));
	printf("%-14s %-8s %8s %9s %8s %4s\n", "CHILD", "STATE", "PID",
	    "RESTARTS", "UPTIME", "GEN");
	json_array_foreach(json_object_get(o, "children"), i, c) {
		dur(up, sizeof(up), num(c, "uptime_s"));
		printf("%-14s %-8s %8lld %9lld %8s %4lld\n", str(c, "name"),
		    str(c, "state"), (long long)num(c, "pid"),
		    (long long)num(c, "restarts"), up,
		    (long long)num(c, "config_generation"));
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
			if (json_is_string(v))
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

static void
print_agents(json_t *o)
{
	static const char *const cols[] = { "id", "name", "address", "since",
		"channels", "last_heartbeat", NULL };
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
	if (json_object_get(o, "tokens") != NULL)
		print_table(o, "tokens", cols);
	else if (json_object_get(o, "secret") != NULL)
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

static void
print_message(json_t *o)
{
	const char *m = json_string_value(json_object_get(o, "message"));
	printf("%s\n", m ? m : "OK");
}

static const struct {
	const char *name;
	void (*print)(json_t *o);
} cmds[] = {
	{ "status", print_status },
	{ "reload", print_reload },
	{ "stop", print_message },
	{ "agent", print_agent },
	{ "agents", print_agents },
	{ "channels", print_channels },
	{ "kick", print_message },
	{ "send", print_message },
	{ "token", print_token },
};

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
