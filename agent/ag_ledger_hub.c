/*
 * agent/ag_ledger_hub: what the hub announced, in the agent's ledger
 * database (agent/ag_ledger_int.h): its Ed25519 ledger key per agent id
 * (hub_keys) and its prices per model and version (prices), each written
 * once and never changed, and the copies of them kept in memory for the
 * receipts (lg_key_get, lg_price_get).
 */
#include "agent/ag_ledger_int.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <sqlite3.h>

#include "lib/clock.h"

/* ---- hub key, prices ------------------------------------------------ */

int
lg_key_get(struct ag_ledger *lg, uint64_t agent_id,
    unsigned char pk[LEDGER_PK_LEN])
{
	sqlite3_stmt *st;
	int r;

	if (lg->key.ok && lg->key.agent_id == agent_id) {
		memcpy(pk, lg->key.pk, LEDGER_PK_LEN);
		return 0;
	}
	st = lg_query(lg, "SELECT pk FROM hub_keys WHERE agent_id = ?", "i",
	    (int64_t)agent_id);
	if ((r = lg_row(lg, st)) != 1)
		return r == 0 ? (lg_release(lg, st), 1) : -1;
	if (sqlite3_column_bytes(st, 0) != LEDGER_PK_LEN) {
		lg_release(lg, st);
		lg_seterr(lg, "hub key of agent %" PRIu64 " is not %d bytes",
		    agent_id, LEDGER_PK_LEN);
		return -1;
	}
	memcpy(pk, sqlite3_column_blob(st, 0), LEDGER_PK_LEN);
	lg_release(lg, st);
	lg->key.agent_id = agent_id;
	memcpy(lg->key.pk, pk, LEDGER_PK_LEN);
	lg->key.ok = 1;
	return 0;
}

int
ag_ledger_hub_key_get(struct ag_ledger *lg, uint64_t agent_id,
    unsigned char pk[LEDGER_PK_LEN])
{
	lg_fresh(lg);
	return lg_key_get(lg, agent_id, pk);
}

int
ag_ledger_hub_key_set(struct ag_ledger *lg, uint64_t agent_id,
    const unsigned char pk[LEDGER_PK_LEN])
{
	unsigned char old[LEDGER_PK_LEN];
	int r;

	if ((r = ag_ledger_hub_key_get(lg, agent_id, old)) == -1)
		return -1;
	if (r == 0)
		return memcmp(old, pk, LEDGER_PK_LEN) == 0 ? 0 : 1;
	return lg_done(lg, lg_query(lg, "INSERT INTO hub_keys (agent_id, pk, "
	    "learned_at) VALUES (?, ?, ?)", "ibi", (int64_t)agent_id, pk,
	    (size_t)LEDGER_PK_LEN, clock_wall_ms() / 1000)) < 0 ? -1 : 0;
}

int
lg_price_get(struct ag_ledger *lg, const char *model, int64_t version,
    struct money_prices *p)
{
	sqlite3_stmt *st;
	int r;

	memset(p, 0, sizeof(*p));
	if (version == 0)
		return 0;
	for (int i = 0; i < LG_PRICES; i++)
		if (lg->price[i].ok && lg->price[i].version == version &&
		    strcmp(lg->price[i].model, model) == 0) {
			*p = lg->price[i].p;
			return 0;
		}
	st = lg_query(lg, "SELECT input, output, cached_input, cache_write, "
	    "image, audio_second, audio_char, video_second "
	    "FROM prices WHERE model = ? AND version = ?", "ti", model,
	    version);
	if ((r = lg_row(lg, st)) != 1)
		return r == 0 ? (lg_release(lg, st), 1) : -1;
	p->input = sqlite3_column_int64(st, 0);
	p->output = sqlite3_column_int64(st, 1);
	p->cached_input = sqlite3_column_int64(st, 2);
	p->cache_write = sqlite3_column_int64(st, 3);
	p->image = sqlite3_column_int64(st, 4);
	p->audio_second = sqlite3_column_int64(st, 5);
	p->audio_char = sqlite3_column_int64(st, 6);
	p->video_second = sqlite3_column_int64(st, 7);
	lg_release(lg, st);
	if (strlen(model) <= LEDGER_MODEL_MAX) {
		unsigned i = lg->next_price++ % LG_PRICES;

		lg->price[i].ok = 1;
		lg->price[i].version = version;
		snprintf(lg->price[i].model, sizeof(lg->price[i].model), "%s",
		    model);
		lg->price[i].p = *p;
	}
	return 0;
}

int
ag_ledger_price_get(struct ag_ledger *lg, const char *model,
    int64_t version, struct money_prices *p)
{
	lg_fresh(lg);
	return lg_price_get(lg, model, version, p);
}

int
ag_ledger_price_put(struct ag_ledger *lg, const char *model,
    int64_t version, const struct money_prices *p)
{
	struct money_prices old;
	int r;

	if (!lg_text_ok(model, LEDGER_MODEL_MAX, 0) || version < 1 ||
	    p->input < 0 || p->output < 0 || p->cached_input < 0 ||
	    p->cache_write < 0 || p->image < 0 || p->audio_second < 0 ||
	    p->audio_char < 0 || p->video_second < 0) {
		lg_seterr(lg, "bad price: model, version or a negative price");
		return -1;
	}
	if ((r = ag_ledger_price_get(lg, model, version, &old)) == -1)
		return -1;
	if (r == 0)
		return memcmp(&old, p, sizeof(old)) == 0 ? 0 : 1;
	return lg_done(lg, lg_query(lg,
	    "INSERT INTO prices (model, version, input, "
	    "output, cached_input, cache_write, image, audio_second, "
	    "audio_char, video_second) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
	    "tiiiiiiiii", model, version, p->input, p->output, p->cached_input,
	    p->cache_write, p->image, p->audio_second, p->audio_char,
	    p->video_second)) < 0 ? -1 : 0;
}
