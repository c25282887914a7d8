/*
 * billing/store_agent: the agents table.  Owns registering an agent (its
 * name, its Ed25519 public key, checked and kept as canonical standard
 * base64, and its grade), reading one, listing them, and enabling or
 * disabling one.
 */
#include "billing/store_int.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

/* ---- agents ------------------------------------------------------------- */

#define AGENT_COLS	"id, name, pubkey, grade, enabled, created_at"

/*
 * Standard padded base64 of exactly 32 bytes, nothing after it.  The key
 * and its canonical text go to key/canon (canon: 64 bytes).
 */
static int
pubkey_decode(const char *b64, unsigned char key[STORE_PUBKEY_LEN],
    char *canon)
{
	const char *end = NULL;
	size_t n = 0, len;

	if (b64 == NULL || (len = strlen(b64)) == 0 || len >= 64)
		return -1;
	if (sodium_base642bin(key, STORE_PUBKEY_LEN, b64, len, NULL, &n, &end,
	    sodium_base64_VARIANT_ORIGINAL) != 0 || n != STORE_PUBKEY_LEN ||
	    end != b64 + len)
		return -1;
	sodium_bin2base64(canon, 64, key, STORE_PUBKEY_LEN,
	    sodium_base64_VARIANT_ORIGINAL);
	return 0;
}

static int
agent_conv(struct store *st, const struct db_row *r, void *out)
{
	struct store_agent *a = out;
	char grade[4];
	int64_t en;

	memset(a, 0, sizeof(*a));
	if (col_id(st, r, 0, &a->id) == -1 ||
	    col_text(st, r, 1, a->name, sizeof(a->name)) == -1 ||
	    col_text(st, r, 2, a->pubkey_b64, sizeof(a->pubkey_b64)) == -1 ||
	    col_text(st, r, 3, grade, sizeof(grade)) == -1 ||
	    col_int(st, r, 4, &en) == -1 ||
	    col_int(st, r, 5, &a->created_at) == -1)
		return -1;
	if (pubkey_decode(a->pubkey_b64, a->pubkey, a->pubkey_b64) == -1) {
		store_seterr(st, "agent %llu: stored public key is corrupt",
		    (unsigned long long)a->id);
		return -1;
	}
	a->grade = grade[0];
	a->enabled = en != 0;
	return 0;
}

int
store_agent_add(struct store *st, const char *name, const char *pubkey_b64,
    char grade, uint64_t *out_id)
{
	struct db_param p[4];
	struct one_id got = { 0, 0 };
	unsigned char key[STORE_PUBKEY_LEN];
	char canon[64], g[2] = { grade, '\0' };
	int rc;

	if (st == NULL)
		return -1;
	if (out_id == NULL) {
		store_seterr(st, "store_agent_add: NULL argument");
		return -1;
	}
	if (!name_ok(name, 1)) {
		store_seterr(st, "agent name must be 1..%d of A-Z a-z 0-9 . _ -",
		    STORE_NAME_MAX);
		return -1;
	}
	if (pubkey_decode(pubkey_b64, key, canon) == -1) {
		store_seterr(st, "agent public key must be a 32-byte Ed25519 "
		    "key in standard base64");
		return -1;
	}
	if (grade < 'A' || grade > 'Z') {
		store_seterr(st, "agent grade must be one letter A..Z");
		return -1;
	}
	p[0] = ptext(name);
	p[1] = ptext(canon);
	p[2] = ptext(g);
	p[3] = pint((int64_t)time(NULL));
	rc = q(st, "INSERT INTO agents (name, pubkey, grade, enabled, "
	    "created_at) VALUES ($1, $2, $3, 1, $4) RETURNING id",
	    p, 4, row_id, &got);
	if (rc == DB_CONFLICT) {
		got.n = 0;
		if (q(st, "SELECT id FROM agents WHERE name = $1", p, 1,
		    row_id, &got) != DB_OK)
			return -1;
		if (got.n > 0)
			store_seterr(st, "agent name \"%s\" is taken", name);
		else
			store_seterr(st, "this public key is already "
			    "registered to another agent");
		return -1;
	}
	if (rc != DB_OK)
		return -1;
	if (got.n != 1) {
		store_seterr(st, "agent insert returned no id");
		return -1;
	}
	*out_id = got.id;
	return 0;
}

int
store_agent_get(struct store *st, uint64_t id, struct store_agent *out)
{
	struct db_param p[1];

	if (st == NULL)
		return -1;
	if (out == NULL) {
		store_seterr(st, "store_agent_get: NULL argument");
		return -1;
	}
	if (!id_ok(id))
		return 1;
	p[0] = pint((int64_t)id);
	return query_one(st, "SELECT " AGENT_COLS " FROM agents WHERE id = $1",
	    p, 1, agent_conv, sizeof(*out), out);
}

int
store_agent_list(struct store *st, store_agent_cb cb, void *arg)
{
	struct collect c = { agent_conv, sizeof(struct store_agent), 0, 0,
	    NULL };
	struct store_agent *a;
	size_t i;
	int rc = 0;

	if (query_all(st, "store_agent_list", cb != NULL,
	    "SELECT " AGENT_COLS " FROM agents ORDER BY id", NULL, 0, &c) != 0)
		return -1;
	a = (struct store_agent *)(void *)c.items;
	for (i = 0; i < c.n && rc == 0; i++)
		rc = cb(&a[i], arg);
	free(c.items);
	return rc;
}

int
store_agent_set_enabled(struct store *st, uint64_t id, int enabled)
{
	struct db_param p[2];
	struct one_id got = { 0, 0 };

	if (st == NULL)
		return -1;
	if (!id_ok(id))
		return 1;
	p[0] = pint(enabled != 0);
	p[1] = pint((int64_t)id);
	if (q(st, "UPDATE agents SET enabled = $1 WHERE id = $2 RETURNING id",
	    p, 2, row_id, &got) != DB_OK)
		return -1;
	return got.n > 0 ? 0 : 1;
}
