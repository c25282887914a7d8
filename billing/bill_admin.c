/*
 * billing/bill_admin: billing's operator commands (the master forwards
 * them from hubctl and from the admin HTTP API alike):
 *   admin-key create [--name N] | list | revoke ID | check HASH
 *   token get ID | update ID [--name N] [--quota A] [--models M]
 *         [--expires D] [--policy P] [--channels C] [--min-grade G]
 *         [--rpm N] [--tpm N] | enable ID | delete ID
 *         | requests ID [--limit N] [--before CURSOR] [--from T] [--to T]
 *   usage [--by token|model|agent|channel] [--from T] [--to T]
 *         [--bucket hour|day]
 *   dispute resolve ID accept|reject [--reason TEXT]
 * and billing's figures in the scoreboard's metrics area (bill_admin_tick).
 * The store calls are in store_admin.c.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sodium.h>
#include "billing/bill.h"
#include "billing/store_admin.h"
#include "lib/hash.h"
#include "lib/log.h"
#include "lib/money.h"
#include "shm/sb_metrics.h"

#define BACKLOG_EVERY_MS 5000

/* Unix seconds, YYYY-MM-DD (start of that day, UTC) or
 * YYYY-MM-DDTHH:MM:SSZ.  0 ok, -1 bad. */
static int
parse_time(const char *s, int64_t *out)
{
	struct tm tm;
	char *end;
	long long v;

	memset(&tm, 0, sizeof(tm));
	end = strptime(s, "%Y-%m-%dT%H:%M:%SZ", &tm);
	if (end == NULL || *end != '\0') {
		memset(&tm, 0, sizeof(tm));
		end = strptime(s, "%Y-%m-%d", &tm);
	}
	if (end != NULL && *end == '\0') {
		*out = (int64_t)timegm(&tm);
		return 0;
	}
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno || end == s || *end || v < 0)
		return -1;
	*out = v;
	return 0;
}

static int
parse_count(const char *s, int64_t *out)
{
	char *end;
	long long v;

	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno || end == s || *end || v < 0)
		return -1;
	*out = v;
	return 0;
}

static void
amount(json_t *o, const char *k, int64_t micros)
{
	char buf[32];

	money_format(micros, buf, sizeof(buf));
	json_object_set_new(o, k, json_string(buf));
}

/* ---- admin keys ---------------------------------------------------------- */

static int
key_row(const struct store_admin_key *k, void *arg)
{
	json_array_append_new(arg, json_pack("{s:I, s:s, s:s%, s:I, s:I, s:I, s:b}",
	    "id", (json_int_t)k->id, "name", k->name, "hash_prefix", k->hash_hex,
	    (size_t)12, "created_at", (json_int_t)k->created_at,
	    "revoked_at", (json_int_t)k->revoked_at,
	    "last_used_at", (json_int_t)k->last_used_at,
	    "valid", k->revoked_at == 0));
	return 0;
}

static void
cmd_admin_key(struct child_env *env, uint64_t rid, int argc, char **argv)
{
	uint64_t id;
	int rc;

	if (argc >= 2 && strcmp(argv[1], "create") == 0) {
		const char *name = "admin";
		unsigned char rnd[32];
		char secret[80], b64[64], hash[65];
		for (int i = 2; i < argc; i += 2) {
			if (strcmp(argv[i], "--name") != 0 || i + 1 >= argc) {
				child_admin_error(env, rid, "usage: admin-key create "
				    "[--name NAME]");
				return;
			}
			name = argv[i + 1];
		}
		randombytes_buf(rnd, sizeof(rnd));
		sodium_bin2base64(b64, sizeof(b64), rnd, sizeof(rnd),
		    sodium_base64_VARIANT_URLSAFE_NO_PADDING);
		snprintf(secret, sizeof(secret), "swb-admin-%s", b64);
		hash_sha256_hex(secret, strlen(secret), hash);
		if (store_admin_key_create(bill_store, name, hash, &id) != 0) {
			child_admin_error(env, rid, "admin-key create: %s",
			    store_errmsg(bill_store));
			return;
		}
		log_info("created admin key %llu '%s'", (unsigned long long)id, name);
		bill_reply_json(env, rid, json_pack("{s:b, s:I, s:s, s:s}", "ok", 1,
		    "id", (json_int_t)id, "key", secret, "message", secret));
		sodium_memzero(secret, sizeof(secret));
		return;
	}
	if (argc == 2 && strcmp(argv[1], "list") == 0) {
		json_t *rows = json_array();
		if (store_admin_key_list(bill_store, key_row, rows) != 0) {
			json_decref(rows);
			child_admin_error(env, rid, "store: %s", store_errmsg(bill_store));
			return;
		}
		bill_reply_json(env, rid, json_pack("{s:b, s:o}", "ok", 1, "keys",
		    rows));
		return;
	}
	if (argc == 3 && strcmp(argv[1], "revoke") == 0) {
		if (bill_parse_id(argv[2], &id) != 0 ||
		    (rc = store_admin_key_revoke(bill_store, id)) == 1) {
			child_admin_error(env, rid, "no valid admin key with id %s",
			    argv[2]);
			return;
		}
		if (rc != 0) {
			child_admin_error(env, rid, "store: %s", store_errmsg(bill_store));
			return;
		}
		log_info("revoked admin key %llu", (unsigned long long)id);
		bill_reply_json(env, rid, json_pack("{s:b, s:s}", "ok", 1, "message",
		    "revoked"));
		return;
	}
	if (argc == 3 && strcmp(argv[1], "check") == 0) {
		/* The master's question before it runs an HTTP request: the
		 * answer says no more than yes or no. */
		rc = store_admin_key_check(bill_store, argv[2], &id);
		if (rc == -1)
			log_warn("admin key check: %s", store_errmsg(bill_store));
		if (rc != 0)
			child_admin_reply(env, rid, "{\"ok\":false,\"error\":"
			    "\"unauthorized\"}");
		else
			bill_reply_json(env, rid, json_pack("{s:b, s:I}", "ok", 1,
			    "id", (json_int_t)id));
		return;
	}
	child_admin_error(env, rid, "usage: admin-key create [--name NAME] | "
	    "admin-key list | admin-key revoke ID");
}

/* ---- tokens ------------------------------------------------------------- */

static json_t *
token_json(const struct store_token *t)
{
	json_t *o = json_pack("{s:b, s:I, s:s, s:s, s:I, s:b, s:s%, s:s, "
	    "s:s, s:s, s:I, s:I, s:I}", "ok", 1,
	    "id", (json_int_t)t->id, "name", t->name,
	    "models", t->models_csv[0] ? t->models_csv : "*",
	    "expires_at", (json_int_t)t->expires_at, "enabled", t->enabled,
	    "hash_prefix", t->hash_hex, (size_t)12, "policy", t->policy,
	    "min_grade", t->min_grade, "channels", t->channels,
	    "rpm", (json_int_t)t->rpm, "tpm", (json_int_t)t->tpm,
	    "created_at", (json_int_t)t->created_at);

	if (t->quota_micros == STORE_QUOTA_UNLIMITED)
		json_object_set_new(o, "quota", json_string("unlimited"));
	else
		amount(o, "quota", t->quota_micros);
	amount(o, "used", t->used_micros);
	return o;
}

static void
token_update(struct child_env *env, uint64_t rid, uint64_t id, int argc,
    char **argv)
{
	struct store_token t;
	const char *name = NULL, *models = NULL, *policy = NULL, *grade = NULL,
	    *chans = NULL;
	int64_t quota = INT64_MIN, expires = INT64_MIN, rpm = -1, tpm = -1;
	int rc;

	for (int i = 3; i < argc; i += 2) {
		const char *k = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (v == NULL) {
			child_admin_error(env, rid, "token update: %s needs a value", k);
			return;
		}
		if (strcmp(k, "--name") == 0)
			name = v;
		else if (strcmp(k, "--models") == 0)
			models = strcmp(v, "*") == 0 ? "" : v;
		else if (strcmp(k, "--policy") == 0)
			policy = v;
		else if (strcmp(k, "--min-grade") == 0)
			grade = v;
		else if (strcmp(k, "--channels") == 0)
			chans = v;
		else if (strcmp(k, "--quota") == 0) {
			if (strcmp(v, "unlimited") == 0)
				quota = STORE_QUOTA_UNLIMITED;
			else if (money_parse(v, &quota) != 0) {
				child_admin_error(env, rid, "token update: --quota '%s' "
				    "is not an amount", v);
				return;
			}
		} else if (strcmp(k, "--expires") == 0) {
			if (strcmp(v, "never") == 0 || strcmp(v, "0") == 0)
				expires = 0;
			else if (parse_time(v, &expires) != 0) {
				child_admin_error(env, rid, "token update: --expires '%s' "
				    "is not YYYY-MM-DD or unix seconds", v);
				return;
			} else if (strchr(v, '-') != NULL && strchr(v, 'T') == NULL)
				expires += 86399;	/* the end of that day */
		} else if (strcmp(k, "--rpm") == 0 || strcmp(k, "--tpm") == 0) {
			if (parse_count(v, k[2] == 'r' ? &rpm : &tpm) != 0) {
				child_admin_error(env, rid, "token update: %s '%s' is "
				    "not a count", k, v);
				return;
			}
		} else {
			child_admin_error(env, rid, "token update: unknown option '%s'",
			    k);
			return;
		}
	}
	rc = store_token_update(bill_store, id, name, quota, models, expires);
	if (rc == 0 && (policy || grade || chans || rpm >= 0 || tpm >= 0)) {
		if ((rc = store_token_get(bill_store, id, &t)) == 0)
			rc = store_token_set_policy(bill_store, id,
			    policy ? policy : t.policy, grade ? grade :
			    t.min_grade, chans ? chans : t.channels,
			    rpm >= 0 ? rpm : t.rpm, tpm >= 0 ? tpm : t.tpm);
	}
	if (rc == 1) {
		child_admin_error(env, rid, "no token with id %llu",
		    (unsigned long long)id);
		return;
	}
	if (rc != 0 || store_token_get(bill_store, id, &t) != 0) {
		child_admin_error(env, rid, "token update: %s",
		    store_errmsg(bill_store));
		return;
	}
	log_info("updated token %llu", (unsigned long long)id);
	bill_reply_json(env, rid, token_json(&t));
}

static int
request_row(const struct store_request_row *x, void *arg)
{
	json_t *o = json_pack("{s:I, s:s, s:s, s:s, s:I, s:I, s:I, s:I, s:s}",
	    "time", (json_int_t)x->created_at, "request_id", x->request_id,
	    "model", x->model, "channel", x->channel,
	    "agent_id", (json_int_t)x->agent_id,
	    "input_tokens", (json_int_t)x->input_tokens,
	    "output_tokens", (json_int_t)x->output_tokens,
	    "cached_tokens", (json_int_t)x->cached_tokens, "status", x->state);

	amount(o, "amount", x->amount);
	json_object_set_new(o, "amount_micros", json_integer(x->amount));
	json_array_append_new(arg, o);
	return 0;
}

static void
token_requests(struct child_env *env, uint64_t rid, uint64_t id, int argc,
    char **argv)
{
	int64_t limit = 50, before = 0, from = 0, to = 0;
	char before_id[64] = "", *dash;
	json_t *rows, *last, *o;
	size_t n;

	for (int i = 3; i < argc; i += 2) {
		const char *k = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		int bad = v == NULL;
		if (bad)
			;
		else if (strcmp(k, "--limit") == 0)
			bad = parse_count(v, &limit) != 0;
		else if (strcmp(k, "--from") == 0)
			bad = parse_time(v, &from) != 0;
		else if (strcmp(k, "--to") == 0)
			bad = parse_time(v, &to) != 0;
		else if (strcmp(k, "--before") == 0) {
			/* the cursor: "TIME~REQUEST_ID" of the last row seen */
			snprintf(before_id, sizeof(before_id), "%s", v);
			dash = strchr(before_id, '~');
			if (dash != NULL)
				*dash = '\0';
			bad = parse_count(before_id, &before) != 0;
			if (dash != NULL)
				memmove(before_id, dash + 1, strlen(dash + 1) + 1);
			else
				before_id[0] = '\0';
			if (dash == NULL)
				before++;	/* a bare time: everything before */
		} else
			bad = 1;
		if (bad) {
			child_admin_error(env, rid, "usage: token requests ID "
			    "[--limit N] [--before CURSOR] [--from T] [--to T]");
			return;
		}
	}
	if (limit < 1 || limit > 1000) {
		child_admin_error(env, rid, "token requests: --limit 1..1000");
		return;
	}
	rows = json_array();
	if (store_token_requests(bill_store, id, from, to, before,
	    before_id[0] ? before_id : NULL, limit, request_row, rows) != 0) {
		json_decref(rows);
		child_admin_error(env, rid, "store: %s", store_errmsg(bill_store));
		return;
	}
	o = json_pack("{s:b, s:I}", "ok", 1, "token_id", (json_int_t)id);
	n = json_array_size(rows);
	if (n == (size_t)limit && (last = json_array_get(rows, n - 1)) != NULL) {
		char cur[96];
		snprintf(cur, sizeof(cur), "%lld~%s", (long long)json_integer_value(
		    json_object_get(last, "time")), json_string_value(
		    json_object_get(last, "request_id")));
		json_object_set_new(o, "next", json_string(cur));
	} else
		json_object_set_new(o, "next", json_null());
	json_object_set_new(o, "requests", rows);
	bill_reply_json(env, rid, o);
}

/* 1 handled, 0 for bill_cmd_token (create, list, disable). */
static int
cmd_token(struct child_env *env, uint64_t rid, int argc, char **argv)
{
	struct store_token t;
	uint64_t id;
	int rc;

	if (argc < 3 || (strcmp(argv[1], "get") != 0 &&
	    strcmp(argv[1], "update") != 0 && strcmp(argv[1], "enable") != 0 &&
	    strcmp(argv[1], "delete") != 0 && strcmp(argv[1], "requests") != 0))
		return 0;
	if (bill_parse_id(argv[2], &id) != 0) {
		child_admin_error(env, rid, "no token with id '%s'", argv[2]);
		return 1;
	}
	if (strcmp(argv[1], "update") == 0) {
		token_update(env, rid, id, argc, argv);
		return 1;
	}
	if (strcmp(argv[1], "requests") == 0) {
		token_requests(env, rid, id, argc, argv);
		return 1;
	}
	if (argc != 3) {
		child_admin_error(env, rid, "usage: token %s ID", argv[1]);
		return 1;
	}
	if (strcmp(argv[1], "get") == 0)
		rc = store_token_get(bill_store, id, &t);
	else if (strcmp(argv[1], "enable") == 0)
		rc = store_token_enable(bill_store, id);
	else
		rc = store_token_delete(bill_store, id);
	if (rc == 1)
		child_admin_error(env, rid, "no token with id %llu",
		    (unsigned long long)id);
	else if (rc == 2)
		child_admin_error(env, rid, "token %llu has charges: the ledger "
		    "keeps them, so it cannot be deleted; disable it instead",
		    (unsigned long long)id);
	else if (rc != 0)
		child_admin_error(env, rid, "store: %s", store_errmsg(bill_store));
	else if (strcmp(argv[1], "get") == 0)
		bill_reply_json(env, rid, token_json(&t));
	else {
		log_info("token %llu %s", (unsigned long long)id,
		    argv[1][0] == 'e' ? "enabled" : "deleted");
		bill_reply_json(env, rid, json_pack("{s:b, s:s}", "ok", 1,
		    "message", argv[1][0] == 'e' ? "enabled" : "deleted"));
	}
	return 1;
}

/* ---- usage --------------------------------------------------------------- */

static int
usage_row(const struct store_usage_row *u, void *arg)
{
	json_t *o = json_pack("{s:I, s:s, s:I, s:I, s:I, s:I, s:I}",
	    "bucket", (json_int_t)u->bucket, "key", u->key,
	    "requests", (json_int_t)u->requests,
	    "input_tokens", (json_int_t)u->input_tokens,
	    "output_tokens", (json_int_t)u->output_tokens,
	    "cached_tokens", (json_int_t)u->cached_tokens,
	    "amount_micros", (json_int_t)u->amount);

	amount(o, "amount", u->amount);
	json_array_append_new(arg, o);
	return 0;
}

static void
cmd_usage(struct child_env *env, uint64_t rid, int argc, char **argv)
{
	static const char *const bys[] = { "token", "model", "agent", "channel" };
	int by = 0;
	int64_t to = (int64_t)time(NULL) + 1, from = -1, bucket = 3600;
	json_t *rows;

	for (int i = 1; i < argc; i += 2) {
		const char *k = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		int bad = v == NULL;
		if (bad)
			;
		else if (strcmp(k, "--by") == 0) {
			bad = 1;
			for (int j = 0; j < 4; j++)
				if (strcmp(v, bys[j]) == 0) {
					by = j;
					bad = 0;
				}
		} else if (strcmp(k, "--bucket") == 0) {
			bad = strcmp(v, "hour") != 0 && strcmp(v, "day") != 0;
			bucket = v[0] == 'h' ? 3600 : 86400;
		} else if (strcmp(k, "--from") == 0)
			bad = parse_time(v, &from) != 0;
		else if (strcmp(k, "--to") == 0)
			bad = parse_time(v, &to) != 0;
		else
			bad = 1;
		if (bad) {
			child_admin_error(env, rid, "usage: usage [--by token|model|"
			    "agent|channel] [--from T] [--to T] [--bucket hour|day] "
			    "(T: unix seconds, YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ)");
			return;
		}
	}
	if (from < 0)
		from = to - 86400;
	rows = json_array();
	if (store_usage(bill_store, (enum store_usage_by)by, from, to, bucket,
	    usage_row, rows) != 0) {
		json_decref(rows);
		child_admin_error(env, rid, "usage: %s", store_errmsg(bill_store));
		return;
	}
	bill_reply_json(env, rid, json_pack("{s:b, s:s, s:s, s:I, s:I, s:o}",
	    "ok", 1, "by", bys[by], "bucket", bucket == 3600 ? "hour" : "day",
	    "from", (json_int_t)from, "to", (json_int_t)to, "rows", rows));
}

/* ---- disputes ------------------------------------------------------------ */

static void
cmd_dispute(struct child_env *env, uint64_t rid, int argc, char **argv)
{
	struct store_dispute d;
	struct ipc_dispute_result r;
	const char *reason = "", *status;
	uint64_t id;
	int rc;

	if (argc < 4 || strcmp(argv[1], "resolve") != 0 ||
	    (strcmp(argv[3], "accept") != 0 && strcmp(argv[3], "reject") != 0) ||
	    (argc != 4 && (argc != 6 || strcmp(argv[4], "--reason") != 0))) {
		child_admin_error(env, rid, "usage: dispute resolve ID accept|reject "
		    "[--reason TEXT]");
		return;
	}
	if (argc == 6)
		reason = argv[5];
	status = argv[3][0] == 'a' ? "accepted" : "rejected";
	if (bill_parse_id(argv[2], &id) != 0 ||
	    (rc = store_dispute_resolve(bill_store, id, status, reason, &d)) == 1) {
		child_admin_error(env, rid, "no dispute with id %s", argv[2]);
		return;
	}
	if (rc == 2) {
		child_admin_error(env, rid, "dispute %llu is %s already",
		    (unsigned long long)id, d.status);
		return;
	}
	if (rc != 0) {
		child_admin_error(env, rid, "dispute resolve: %s",
		    store_errmsg(bill_store));
		return;
	}
	log_info("dispute %llu (agent %llu seq %llu, %s) %s: %s",
	    (unsigned long long)id, (unsigned long long)d.agent_id,
	    (unsigned long long)d.seq, d.request_id, status, reason);
	/* The agent learns it (dispute_result frame) when it is online. */
	memset(&r, 0, sizeof(r));
	r.agent_id = d.agent_id;
	r.seq = d.seq;
	snprintf(r.request_id, sizeof(r.request_id), "%s", d.request_id);
	snprintf(r.status, sizeof(r.status), "%s", status);
	snprintf(r.reason, sizeof(r.reason), "%s", reason);
	bill_ledger_to_tunnel(IPC_DISPUTE_RESULT, &r, sizeof(r));
	bill_reply_json(env, rid, json_pack("{s:b, s:I, s:I, s:I, s:s, s:s, s:s}",
	    "ok", 1, "id", (json_int_t)id, "agent_id", (json_int_t)d.agent_id,
	    "seq", (json_int_t)d.seq, "request_id", d.request_id, "status", status,
	    "reason", reason));
}

int
bill_admin_cmd(struct child_env *env, uint64_t rid, int argc, char **argv)
{
	if (strcmp(argv[0], "admin-key") == 0)
		cmd_admin_key(env, rid, argc, argv);
	else if (strcmp(argv[0], "usage") == 0)
		cmd_usage(env, rid, argc, argv);
	else if (strcmp(argv[0], "dispute") == 0)
		cmd_dispute(env, rid, argc, argv);
	else if (strcmp(argv[0], "token") == 0)
		return cmd_token(env, rid, argc, argv);
	else
		return 0;
	return 1;
}

/* ---- metrics ------------------------------------------------------------- */

void
bill_admin_tick(struct child_env *env)
{
	static int64_t next;
	struct sbm_billing *b;
	int64_t now = clock_mono_ms(), res, aw, lag;

	if (now < next || env->sb.hdr == NULL)
		return;
	next = now + BACKLOG_EVERY_MS;
	if (store_backlog(bill_store, &res, &aw, &lag) != 0) {
		log_warn("billing backlog: %s", store_errmsg(bill_store));
		return;
	}
	b = &sb_metrics(&env->sb)->bill;
	atomic_store(&b->reserved, res);
	atomic_store(&b->awaiting, aw);
	atomic_store(&b->lag_s, lag);
	atomic_store(&b->updated_ms, clock_wall_ms());
}

void
bill_admin_note_channel(const char *charge_key, const char *channel)
{
	if (channel[0] != '\0' &&
	    store_charge_set_channel(bill_store, charge_key, channel) != 0)
		log_warn("charge %s: cannot note its channel: %s", charge_key,
		    store_errmsg(bill_store));
}
