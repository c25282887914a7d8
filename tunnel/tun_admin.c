/*
 * tunnel/tun_admin: the admin commands the tunnel answers — agents (who
 * is online), kick ID (close one connection), send ID TEXT (echo through
 * the tunnel, the end-to-end proof that the pipe works both ways).
 */
#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "tunnel/tun.h"
#include "lib/log.h"

static void
reply(uint64_t id, json_t *o)
{
	char *s = json_dumps(o, JSON_COMPACT);

	json_decref(o);
	child_admin_reply(tun_env, id, s ? s : "{\"ok\":false}");
	free(s);
}

static void
iso8601(int64_t ms, char *buf, size_t len)
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static void
cmd_agents(uint64_t id)
{
	const struct sb *sb = &tun_env->sb;
	json_t *rows = json_array();
	struct sb_agent a;
	char since[32], hb[32];

	for (uint32_t i = 0; i < sb->hdr->max_agents; i++) {
		sb_read_agent(sb, i, &a);
		if (a.state != SB_AGENT_ONLINE)
			continue;
		iso8601(a.since_ms, since, sizeof(since));
		iso8601(a.last_heartbeat_ms, hb, sizeof(hb));
		a.probed_addr[sizeof(a.probed_addr) - 1] = '\0';
		a.version[sizeof(a.version) - 1] = '\0';
		/* public: what the agent's GET /probe answered; differs: it is
		 * not the address this connection comes from (a proxy, NAT or
		 * a second path). */
		json_array_append_new(rows, json_pack(
		    "{s:I, s:s, s:s, s:s, s:I, s:i, s:s, s:I, s:s%, s:s, s:b, "
		    "s:s}",
		    "id", (json_int_t)a.agent_id, "name", a.name,
		    "address", a.addr, "since", since,
		    "since_ms", (json_int_t)a.since_ms,
		    "channels", (int)a.nchannels, "last_heartbeat", hb,
		    "last_heartbeat_ms", (json_int_t)a.last_heartbeat_ms,
		    "grade", &a.grade, (size_t)1, "public", a.probed_addr,
		    "differs", a.probed_addr[0] != '\0' &&
		    strcmp(a.probed_addr, a.addr) != 0, "version", a.version));
	}
	reply(id, json_pack("{s:b, s:o}", "ok", 1, "agents", rows));
}

static int
parse_id(const char *s, uint64_t *out)
{
	char *end;

	errno = 0;
	*out = strtoull(s, &end, 10);
	return (errno || end == s || *end || *out == 0 || s[0] == '-') ? -1 : 0;
}

void
tun_admin(struct child_env *env, uint64_t id, int argc, char **argv)
{
	struct tun_conn *c;
	uint64_t agent;
	struct frame_enc e;

	if (strcmp(argv[0], "release") == 0) {
		tun_files_admin(id, argc, argv);
		return;
	}
	if (strcmp(argv[0], "agents") == 0 && argc == 1) {
		cmd_agents(id);
		return;
	}
	if ((strcmp(argv[0], "kick") == 0 && argc == 2) ||
	    (strcmp(argv[0], "send") == 0 && argc == 3)) {
		if (parse_id(argv[1], &agent) != 0) {
			child_admin_error(env, id, "'%s' is not an agent id", argv[1]);
			return;
		}
		c = tun_find_agent(agent);
		if (c == NULL) {
			child_admin_error(env, id, "agent %llu is not online",
			    (unsigned long long)agent);
			return;
		}
		if (argv[0][0] == 'k') {
			frame_enc_begin(&e, FRAME_KICK, 0, 1);
			frame_enc_cstr(&e, "reason", "kicked by the operator");
			tun_send(c, &e);
			tun_close(c, "kicked by the operator");
			reply(id, json_pack("{s:b, s:s}", "ok", 1, "message", "kicked"));
			return;
		}
		if (c->echo_admin_id != 0) {
			child_admin_error(env, id, "a send to agent %llu is in flight",
			    (unsigned long long)agent);
			return;
		}
		frame_enc_begin(&e, FRAME_ECHO, 0, 1);
		frame_enc_cstr(&e, "text", argv[2]);
		if (tun_send(c, &e) != 0) {
			child_admin_error(env, id, "cannot send to agent %llu",
			    (unsigned long long)agent);
			return;
		}
		c->echo_admin_id = id;
		return;
	}
	child_admin_error(env, id, "usage: agents | kick ID | send ID TEXT | "
	    "release info|announce OS ARCH");
}

void
tun_echo_reply(struct tun_conn *c, const char *text, size_t len)
{
	uint64_t id = c->echo_admin_id;

	if (id == 0) {
		log_warn("agent %llu sent an echo reply nobody asked for",
		    (unsigned long long)c->agent_id);
		return;
	}
	c->echo_admin_id = 0;
	reply(id, json_pack("{s:b, s:s%}", "ok", 1, "message", text,
	    (size_t)len));
}

void
tun_conn_gone(struct tun_conn *c)
{
	if (c->echo_admin_id != 0)
		child_admin_error(tun_env, c->echo_admin_id,
		    "agent %llu went offline before answering",
		    (unsigned long long)c->agent_id);
	c->echo_admin_id = 0;
}
