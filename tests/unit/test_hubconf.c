/*
 * Unit tests of lib/conf through hubd's table: defaults, good values, each
 * kind of bad value with its line number, and the reload merge rule.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "child/hubconf.h"
#include "lib/log.h"

static char path[64];

static void
write_ini(const char *text)
{
	FILE *f;

	snprintf(path, sizeof(path), "/tmp/swb-conf-%d.ini", (int)getpid());
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static int
load(const char *text, struct hub_conf *cf, char *err)
{
	write_ini(text);
	int rc = hub_conf_load(cf, path, err, 512);
	unlink(path);
	return rc;
}

static void
test_defaults_and_values(void **state)
{
	struct hub_conf cf;
	char err[512];

	assert_int_equal(load("", &cf, err), 0);
	assert_int_equal(cf.gw_workers, 2);
	assert_int_equal(cf.gw_max_body, 4 * 1024 * 1024);
	assert_int_equal(cf.drain_timeout_ms, 10000);
	assert_string_equal(cf.store_url, "sqlite:var/hubd.db");
	assert_string_equal(cf.user, "");	/* no privilege drop */
	assert_int_equal(load("[hub]\nuser = swbhub\n", &cf, err), 0);
	assert_string_equal(cf.user, "swbhub");
	assert_int_equal(load("[gateway]\nworkers = 8\nmax_body = 64k\n"
	    "listen = [::1]:0\n[hub]\ndrain_timeout = 250ms\nlog_level = warn\n"
	    "[tunnel]\nheartbeat_interval=2s\nheartbeat_timeout=1m\n", &cf, err), 0);
	assert_int_equal(cf.gw_workers, 8);
	assert_int_equal(cf.gw_max_body, 65536);
	assert_int_equal(cf.drain_timeout_ms, 250);
	assert_int_equal(cf.log_level, LOG_LVL_WARN);
	assert_int_equal(cf.tun_heartbeat_timeout_ms, 60000);
	assert_string_equal(cf.gw_listen, "[::1]:0");
}

static void
expect_error(const char *text, const char *needle)
{
	struct hub_conf cf;
	char err[512];

	assert_int_equal(load(text, &cf, err), -1);
	if (strstr(err, needle) == NULL)
		fail_msg("error '%s' does not contain '%s'", err, needle);
}

static void
test_bad_values(void **state)
{
	expect_error("[gateway]\nworkers = 0\n", ":2: [gateway] workers = '0' is out of range 1..64");
	expect_error("[gateway]\nworkers = 65\n", "out of range");
	expect_error("[gateway]\nworkers = two\n", ":2: [gateway] workers = 'two' is not an integer");
	expect_error("[gateway]\nworkers = 3x\n", "not an integer");
	expect_error("[hub]\n\nlog_level = loud\n", ":3: [hub] log_level = 'loud' is not one of the choices (debug|info|warn|error)");
	expect_error("[hub]\ndrain_timeout = soon\n", "not a duration");
	expect_error("[hub]\ndrain_timeout = 5y\n", "not a duration");
	expect_error("[gateway]\nmax_body = -1\n", "not a size");
	expect_error("[gateway]\nlisten = localhost\n", "not host:port");
	expect_error("[gateway]\nlisten = 127.0.0.1:70000\n", "not host:port");
	expect_error("[gateway]\nlistne = 127.0.0.1:80\n", ":2: unknown key 'listne' in section [gateway]");
	expect_error("[gatway]\nlisten = 127.0.0.1:80\n", ":2: unknown section [gatway]");
	expect_error("workers = 2\n", ":1: key 'workers' outside of any section");
	expect_error("[gateway\nworkers = 2\n", ":1:");
	expect_error("[tunnel]\nheartbeat_interval = 10s\nheartbeat_timeout = 5s\n",
	    "heartbeat_timeout must be longer");
	expect_error("[tunnel]\ncert = /x.pem\n", "cert and key go together");
	expect_error("[hub]\nmax_agents = 99999999999999999999\n", "not an integer");
	/* Two bad lines: the first one's line AND reason are reported. */
	expect_error("[gateway]\nworkers = 0\nmax_body = huge\n",
	    ":2: [gateway] workers = '0' is out of range");
}

static void
test_missing_file(void **state)
{
	struct hub_conf cf;
	char err[512];

	assert_int_equal(hub_conf_load(&cf, "/nonexistent/hubd.ini", err,
	    sizeof(err)), -1);
	assert_non_null(strstr(err, "cannot open"));
}

static void
test_reload_merge(void **state)
{
	struct hub_conf cur, next;
	char err[512];

	assert_int_equal(load("[gateway]\nworkers = 2\nmax_body = 1m\n", &cur, err), 0);
	assert_int_equal(load("[gateway]\nworkers = 5\nmax_body = 2m\n", &next, err), 0);
	/* workers is not reloadable: kept; max_body is: taken. */
	assert_int_equal(hub_conf_merge_reload(&next, &cur), 1);
	assert_int_equal(next.gw_workers, 2);
	assert_int_equal(next.gw_max_body, 2 * 1024 * 1024);
	/* [hub] user needs a restart: children drop once, at start. */
	assert_int_equal(load("[hub]\nuser = a\n", &cur, err), 0);
	assert_int_equal(load("[hub]\nuser = b\n", &next, err), 0);
	assert_int_equal(hub_conf_merge_reload(&next, &cur), 0);
	assert_string_equal(next.user, "a");
}

/* [router]: defaults equal the router's own, values map to weights, all
 * keys are reloadable, bad values are refused. */
static void
test_router_keys(void **state)
{
	struct hub_conf cur, next;
	struct rt_weights w;
	char err[512];

	assert_int_equal(load("", &cur, err), 0);
	hub_conf_rt_weights(&cur, &w);
	assert_memory_equal(&w, &rt_default_weights, sizeof(w));
	assert_int_equal(load("[router]\nw_speed = 0\nw_load = 1000\n"
	    "tie_break = random\ntie_margin = 0\n", &next, err), 0);
	hub_conf_rt_weights(&next, &w);
	assert_int_equal(w.w[RT_T_SPEED], 0);
	assert_int_equal(w.w[RT_T_LOAD], 1000);
	assert_int_equal(w.tie_break, RT_TIE_RANDOM);
	assert_int_equal(w.tie_margin, 0);
	assert_int_equal(hub_conf_merge_reload(&next, &cur), 4);
	assert_int_equal(next.rt_w_speed, 0);
	expect_error("[router]\nw_load = 1001\n", "out of range 0..1000");
	expect_error("[router]\ntie_break = first\n", "not one of the choices");
}

static void
test_parsers(void **state)
{
	int64_t v;
	int b, port;
	char host[64];

	assert_int_equal(conf_parse_ms("1h", &v), 0);
	assert_int_equal(v, 3600000);
	assert_int_equal(conf_parse_ms("", &v), -1);
	assert_int_equal(conf_parse_bytes("1g", &v), 0);
	assert_int_equal(v, 1073741824);
	assert_int_equal(conf_parse_bytes("9999999999999g", &v), -1);
	assert_int_equal(conf_parse_bool("Yes", &b), 0);
	assert_int_equal(b, 1);
	assert_int_equal(conf_parse_bool("maybe", &b), -1);
	assert_int_equal(conf_parse_addr("[::1]:8080", host, sizeof(host), &port), 0);
	assert_string_equal(host, "::1");
	assert_int_equal(port, 8080);
	assert_int_equal(conf_parse_addr(":80", host, sizeof(host), &port), -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults_and_values),
		cmocka_unit_test(test_bad_values),
		cmocka_unit_test(test_missing_file),
		cmocka_unit_test(test_reload_merge),
		cmocka_unit_test(test_parsers),
		cmocka_unit_test(test_router_keys),
	};
	log_init("test", "hubconf", LOG_LVL_ERROR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
