/*
 * billing/store_token: the virtual tokens table.  Owns creating a token
 * (only the SHA-256 of its secret is kept), checking its models list,
 * setting its routing policy and rate limits, listing tokens, disabling
 * one, and finding one by its hash.  The operator's edits of a token are
 * billing/store_admin.c.
 */
#include "billing/store_int.h"
#include "lib/hash.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- tokens ------------------------------------------------------------- */

#define TOKEN_COLS	"id, name, hash, quota, used, models, expires_at, " \
			"enabled, created_at, policy, min_grade, channels, rpm, tpm"

/* "" or name(,name)*: printable ASCII without spaces, none empty. */
static int
models_ok(const char *s)
{
	size_t n;
	int empty = 1;

	if (s == NULL || (n = strlen(s)) > STORE_MODELS_MAX)
		return 0;
	if (n == 0)
		return 1;
	for (; *s != '\0'; s++) {
		if (*s == ',') {
			if (empty)
				return 0;
			empty = 1;
		} else if (*s <= 0x20 || *s > 0x7e)
			return 0;
		else
			empty = 0;
	}
	return !empty;
}

static int
token_conv(struct store *st, const struct db_row *r, void *out)
{
	struct store_token *t = out;
	int64_t en;

	memset(t, 0, sizeof(*t));
	if (col_id(st, r, 0, &t->id) == -1 ||
	    col_text(st, r, 1, t->name, sizeof(t->name)) == -1 ||
	    col_text(st, r, 2, t->hash_hex, sizeof(t->hash_hex)) == -1 ||
	    col_int(st, r, 3, &t->quota_micros) == -1 ||
	    col_int(st, r, 4, &t->used_micros) == -1 ||
	    col_text(st, r, 5, t->models_csv, sizeof(t->models_csv)) == -1 ||
	    col_int(st, r, 6, &t->expires_at) == -1 ||
	    col_int(st, r, 7, &en) == -1 ||
	    col_int(st, r, 8, &t->created_at) == -1 ||
	    col_text(st, r, 9, t->policy, sizeof(t->policy)) == -1 ||
	    col_text(st, r, 10, t->min_grade, sizeof(t->min_grade)) == -1 ||
	    col_text(st, r, 11, t->channels, sizeof(t->channels)) == -1 ||
	    col_int(st, r, 12, &t->rpm) == -1 ||
	    col_int(st, r, 13, &t->tpm) == -1)
		return -1;
	t->enabled = en != 0;
	return 0;
}

/* "7", "7:main": an agent id, optionally with one of its channel names. */
static int
bound_ok(const char *csv)
{
	const char *p = csv;

	if (csv[0] == '\0' || strlen(csv) > STORE_MODELS_MAX)
		return 0;
	while (*p != '\0') {
		int digits = 0, name = 0;
		while (*p >= '0' && *p <= '9') {
			p++;
			digits++;
		}
		if (digits == 0)
			return 0;
		if (*p == ':') {
			p++;
			while (*p != '\0' && *p != ',' && (isalnum((unsigned char)*p) ||
			    *p == '_' || *p == '-')) {
				p++;
				name++;
			}
			if (name == 0)
				return 0;
		}
		if (*p == ',')
			p++;
		else if (*p != '\0')
			return 0;
	}
	return 1;
}

int
store_token_set_policy(struct store *st, uint64_t id, const char *policy,
    const char *min_grade, const char *channels, int64_t rpm, int64_t tpm)
{
	struct db_param p[6];
	struct one_id got = { 0, 0 };

	if (st == NULL || policy == NULL || min_grade == NULL || channels == NULL)
		return -1;
	if (!id_ok(id))
		return 1;
	if (strcmp(policy, "bound") == 0) {
		if (!bound_ok(channels)) {
			store_seterr(st, "a bound token needs channels: a comma list "
			    "of AGENT_ID or AGENT_ID:CHANNEL");
			return -1;
		}
	} else if (strcmp(policy, "graded") == 0) {
		if (strlen(min_grade) != 1 || min_grade[0] < 'A' || min_grade[0] > 'Z') {
			store_seterr(st, "a graded token needs a minimum grade A..Z");
			return -1;
		}
	} else if (strcmp(policy, "best") != 0) {
		store_seterr(st, "policy must be bound, graded or best");
		return -1;
	}
	if (rpm < 0 || tpm < 0) {
		store_seterr(st, "rpm and tpm must be >= 0 (0: no limit)");
		return -1;
	}
	p[0] = ptext(policy);
	p[1] = ptext(strcmp(policy, "graded") == 0 ? min_grade : "");
	p[2] = ptext(strcmp(policy, "bound") == 0 ? channels : "");
	p[3] = pint(rpm);
	p[4] = pint(tpm);
	p[5] = pint((int64_t)id);
	if (q(st, "UPDATE tokens SET policy = $1, min_grade = $2, channels = $3, "
	    "rpm = $4, tpm = $5 WHERE id = $6 RETURNING id", p, 6, row_id,
	    &got) != DB_OK)
		return -1;
	return got.n > 0 ? 0 : 1;
}

int
store_token_create(struct store *st, const char *name, const char *hash_hex,
    int64_t quota_micros, const char *models_csv, int64_t expires_at,
    uint64_t *out_id)
{
	struct db_param p[6];
	struct one_id got = { 0, 0 };
	int rc;

	if (st == NULL)
		return -1;
	if (out_id == NULL) {
		store_seterr(st, "store_token_create: NULL argument");
		return -1;
	}
	if (!name_ok(name, 0)) {
		store_seterr(st, "token name must be 1..%d printable ASCII "
		    "characters", STORE_NAME_MAX);
		return -1;
	}
	if (!hash_hex_ok(hash_hex)) {
		store_seterr(st, "token hash must be 64 lowercase hex digits");
		return -1;
	}
	if (quota_micros < STORE_QUOTA_UNLIMITED) {
		store_seterr(st, "token quota must be -1 (unlimited) or >= 0");
		return -1;
	}
	if (!models_ok(models_csv)) {
		store_seterr(st, "token models must be \"\" or a comma-"
		    "separated list of model names (at most %d bytes)",
		    STORE_MODELS_MAX);
		return -1;
	}
	if (expires_at < 0) {
		store_seterr(st, "token expiry must be 0 (never) or a unix "
		    "time");
		return -1;
	}
	p[0] = ptext(name);
	p[1] = ptext(hash_hex);
	p[2] = pint(quota_micros);
	p[3] = ptext(models_csv);
	p[4] = pint(expires_at);
	p[5] = pint((int64_t)time(NULL));
	rc = q(st, "INSERT INTO tokens (name, hash, quota, used, models, "
	    "expires_at, enabled, created_at) "
	    "VALUES ($1, $2, $3, 0, $4, $5, 1, $6) RETURNING id",
	    p, 6, row_id, &got);
	if (rc == DB_CONFLICT) {
		store_seterr(st, "a token with this hash already exists");
		return -1;
	}
	if (rc != DB_OK)
		return -1;
	if (got.n != 1) {
		store_seterr(st, "token insert returned no id");
		return -1;
	}
	*out_id = got.id;
	return 0;
}

int
store_token_list(struct store *st, store_token_cb cb, void *arg)
{
	struct collect c = { token_conv, sizeof(struct store_token), 0, 0,
	    NULL };
	struct store_token *t;
	size_t i;
	int rc = 0;

	if (query_all(st, "store_token_list", cb != NULL,
	    "SELECT " TOKEN_COLS " FROM tokens ORDER BY id", NULL, 0, &c) != 0)
		return -1;
	t = (struct store_token *)(void *)c.items;
	for (i = 0; i < c.n && rc == 0; i++)
		rc = cb(&t[i], arg);
	free(c.items);
	return rc;
}

int
store_token_disable(struct store *st, uint64_t id)
{
	struct db_param p[1];
	struct one_id got = { 0, 0 };

	if (st == NULL)
		return -1;
	if (!id_ok(id))
		return 1;
	p[0] = pint((int64_t)id);
	if (q(st, "UPDATE tokens SET enabled = 0 WHERE id = $1 RETURNING id",
	    p, 1, row_id, &got) != DB_OK)
		return -1;
	return got.n > 0 ? 0 : 1;
}

int
store_token_get_by_hash(struct store *st, const char *hash_hex,
    struct store_token *out)
{
	struct db_param p[1];

	if (st == NULL)
		return -1;
	if (out == NULL) {
		store_seterr(st, "store_token_get_by_hash: NULL argument");
		return -1;
	}
	if (!hash_hex_ok(hash_hex)) {
		store_seterr(st, "token hash must be 64 lowercase hex digits");
		return -1;
	}
	p[0] = ptext(hash_hex);
	return query_one(st, "SELECT " TOKEN_COLS " FROM tokens WHERE hash = $1",
	    p, 1, token_conv, sizeof(*out), out);
}
