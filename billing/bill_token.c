/*
 * billing/bill_token: virtual tokens — `hubctl token create|list|disable`
 * and the gateways' look-ups by hash.  The secret (sk-...) is shown once at
 * creation; the store keeps only its SHA-256.
 */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sodium.h>
#include "billing/bill.h"
#include "lib/hash.h"
#include "lib/log.h"
#include "lib/money.h"

/* "2026-12-31" (end of that day, UTC) or unix seconds.  0 ok, -1 bad. */
static int
parse_expiry(const char *s, int64_t *out)
{
	struct tm tm;
	char *end;
	long long v;

	memset(&tm, 0, sizeof(tm));
	end = strptime(s, "%Y-%m-%d", &tm);
	if (end != NULL && *end == '\0') {
		tm.tm_hour = 23;
		tm.tm_min = 59;
		tm.tm_sec = 59;
		*out = (int64_t)timegm(&tm);
		return 0;
	}
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno || end == s || *end || v <= 0)
		return -1;
	*out = v;
	return 0;
}

static int
token_row(const struct store_token *t, void *arg)
{
	char quota[32] = "unlimited", used[32];

	if (t->quota_micros != STORE_QUOTA_UNLIMITED)
		money_format(t->quota_micros, quota, sizeof(quota));
	money_format(t->used_micros, used, sizeof(used));
	json_array_append_new(arg, json_pack("{s:I, s:s, s:s, s:s, s:s, s:I, s:b, "
	    "s:s%, s:s, s:s, s:s, s:I, s:I}",
	    "id", (json_int_t)t->id, "name", t->name, "quota", quota,
	    "used", used, "models", t->models_csv[0] ? t->models_csv : "*",
	    "expires_at", (json_int_t)t->expires_at, "enabled", t->enabled,
	    "hash_prefix", t->hash_hex, (size_t)12, "policy", t->policy,
	    "min_grade", t->min_grade, "channels", t->channels,
	    "rpm", (json_int_t)t->rpm, "tpm", (json_int_t)t->tpm));
	return 0;
}

static void
token_create(struct child_env *env, uint64_t rid, int argc, char **argv)
{
	const char *name = "token", *models = "", *policy = "best",
	    *min_grade = "", *channels = "";
	int64_t quota = STORE_QUOTA_UNLIMITED, expires = 0, rpm = 0, tpm = 0;
	unsigned char rnd[32];
	char secret[72], b64[64], hash[65];
	uint64_t id;
	json_t *o;

	for (int i = 2; i < argc; i += 2) {	/* an option and its value */
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (v == NULL) {
			child_admin_error(env, rid, "token create: %s needs a value", argv[i]);
			return;
		}
		if (strcmp(argv[i], "--name") == 0)
			name = v;
		else if (strcmp(argv[i], "--models") == 0)
			models = v;
		else if (strcmp(argv[i], "--policy") == 0)
			policy = v;
		else if (strcmp(argv[i], "--min-grade") == 0)
			min_grade = v;
		else if (strcmp(argv[i], "--channels") == 0)
			channels = v;
		else if (strcmp(argv[i], "--rpm") == 0 || strcmp(argv[i], "--tpm") == 0) {
			char *end;
			long long n = strtoll(v, &end, 10);
			if (*v == '\0' || *end != '\0' || n < 0) {
				child_admin_error(env, rid, "token create: %s '%s' is not "
				    "a count", argv[i], v);
				return;
			}
			*(argv[i][2] == 'r' ? &rpm : &tpm) = n;
		}
		else if (strcmp(argv[i], "--quota") == 0) {
			if (money_parse(v, &quota) != 0) {
				child_admin_error(env, rid, "token create: --quota '%s' "
				    "is not an amount like 10 or 2.5 (at most 6 decimals)", v);
				return;
			}
		} else if (strcmp(argv[i], "--expires") == 0) {
			if (parse_expiry(v, &expires) != 0) {
				child_admin_error(env, rid, "token create: --expires '%s' "
				    "is not YYYY-MM-DD or unix seconds", v);
				return;
			}
		} else {
			child_admin_error(env, rid, "token create: unknown option '%s'",
			    argv[i]);
			return;
		}
	}
	randombytes_buf(rnd, sizeof(rnd));
	sodium_bin2base64(b64, sizeof(b64), rnd, sizeof(rnd),
	    sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	snprintf(secret, sizeof(secret), "sk-%s", b64);
	hash_sha256_hex(secret, strlen(secret), hash);
	if (store_token_create(bill_store, name, hash, quota, models, expires,
	    &id) != 0) {
		child_admin_error(env, rid, "token create: %s", store_errmsg(bill_store));
		return;
	}
	if (store_token_set_policy(bill_store, id, policy, min_grade, channels,
	    rpm, tpm) != 0) {
		child_admin_error(env, rid, "token create: %s", store_errmsg(bill_store));
		(void)store_token_disable(bill_store, id);
		return;
	}
	log_info("created token %llu '%s'", (unsigned long long)id, name);
	o = json_pack("{s:b, s:I, s:s, s:s}", "ok", 1, "id", (json_int_t)id,
	    "secret", secret, "message", secret);
	bill_reply_json(env, rid, o);
	sodium_memzero(secret, sizeof(secret));
}

void
bill_cmd_token(struct child_env *env, uint64_t rid, int argc, char **argv)
{
	uint64_t id;
	int rc;

	if (argc >= 2 && strcmp(argv[1], "create") == 0) {
		token_create(env, rid, argc, argv);
		return;
	}
	if (argc == 2 && strcmp(argv[1], "list") == 0) {
		json_t *rows = json_array();
		if (store_token_list(bill_store, token_row, rows) != 0) {
			json_decref(rows);
			child_admin_error(env, rid, "store: %s", store_errmsg(bill_store));
			return;
		}
		bill_reply_json(env, rid, json_pack("{s:b, s:o}", "ok", 1,
		    "tokens", rows));
		return;
	}
	if (argc == 3 && strcmp(argv[1], "disable") == 0) {
		if (bill_parse_id(argv[2], &id) != 0) {
			child_admin_error(env, rid, "'%s' is not a token id", argv[2]);
			return;
		}
		rc = store_token_disable(bill_store, id);
		if (rc == 1)
			child_admin_error(env, rid, "no token with id %llu",
			    (unsigned long long)id);
		else if (rc != 0)
			child_admin_error(env, rid, "store: %s", store_errmsg(bill_store));
		else
			bill_reply_json(env, rid, json_pack("{s:b, s:s}", "ok", 1,
			    "message", "disabled"));
		return;
	}
	child_admin_error(env, rid, "usage: token create [--name N] [--quota AMOUNT] "
	    "[--models m1,m2] [--expires YYYY-MM-DD] [--policy bound --channels "
	    "ID[:CH],... | --policy graded --min-grade B | --policy best] "
	    "[--rpm N] [--tpm N] | token list | token disable ID");
}

void
bill_token_get(const struct ipc_token_get *q, struct ipc_token_info *r)
{
	struct store_token t;
	int rc;

	memset(r, 0, sizeof(*r));
	memcpy(r->hash, q->hash, sizeof(r->hash));
	r->hash[64] = '\0';
	rc = store_token_get_by_hash(bill_store, r->hash, &t);
	if (rc == 1) {
		r->status = IPC_TOKEN_UNKNOWN;
		return;
	}
	if (rc != 0) {
		r->status = IPC_TOKEN_STORE_ERROR;
		log_warn("token look-up: %s", store_errmsg(bill_store));
		return;
	}
	r->status = IPC_TOKEN_FOUND;
	r->id = t.id;
	r->enabled = (uint32_t)t.enabled;
	r->expires_at = t.expires_at;
	r->quota_micros = t.quota_micros;
	r->used_micros = t.used_micros;
	snprintf(r->name, sizeof(r->name), "%s", t.name);
	snprintf(r->models, sizeof(r->models), "%s", t.models_csv);
	snprintf(r->policy, sizeof(r->policy), "%s", t.policy);
	r->min_grade = t.min_grade[0];
	snprintf(r->channels, sizeof(r->channels), "%s", t.channels);
	r->rpm = t.rpm;
	r->tpm = t.tpm;
}
