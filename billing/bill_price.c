/*
 * billing/bill_price: model prices — `hubctl price set|list`.  Prices come
 * in as decimal amounts per 1,000,000 tokens ("2.5"), are turned into int64
 * micro-units by money_parse (exact; no floating point) and stored as a new
 * version of that model's prices.  The unit components (--image,
 * --audio-second, --audio-char, --video-second) are per ONE unit (an
 * image, a second, a character), for answers billed by units that are
 * not tokens (lib/money.h); a model priced only by units needs no
 * --input/--output (0 then).  Answers carry each price both as
 * micro-units and as a decimal string (money_format).
 */
#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include "billing/bill.h"
#include "lib/clock.h"
#include "lib/hash.h"
#include "lib/log.h"
#include "lib/money.h"

#define PRICE_USAGE "usage: price set MODEL --input AMOUNT --output AMOUNT " \
	"[--cached-input AMOUNT] [--cache-write AMOUNT] [--image AMOUNT] " \
	"[--audio-second AMOUNT] [--audio-char AMOUNT] [--video-second " \
	"AMOUNT] | price list (AMOUNT: per 1,000,000 tokens, like 2.5, at " \
	"most 6 decimals; the last four per ONE image, second or " \
	"character; with only those, --input/--output may be left out)"

#define NCOMP	8
#define NTOK	4	/* the first NTOK are per 1,000,000 tokens */

/* The components, in the order of the store's columns. */
static const char *const comp_name[NCOMP] = { "input", "output",
	"cached_input", "cache_write", "image", "audio_second", "audio_char",
	"video_second" };
static const char *const comp_opt[NCOMP] = { "--input", "--output",
	"--cached-input", "--cache-write", "--image", "--audio-second",
	"--audio-char", "--video-second" };

/* ---- the price cache ------------------------------------------------------
 * Every reservation and every post reads its model's price; this cache
 * answers them from memory (direct-mapped by model and version).  A
 * numbered version never changes.  "The latest" (version 0) changes when
 * a price is set: here the cache is emptied then, and an entry lives
 * PCACHE_TTL_MS at most, which bounds what another hub writing the same
 * PostgreSQL could leave stale. */
#define PCACHE_SIZE	256		/* a power of two */
#define PCACHE_TTL_MS	1000

struct pcache_ent {
	int64_t expires_ms;	/* monotonic; 0: empty */
	int64_t version;	/* asked for (0: the latest) */
	int rc;			/* store_price_get's: 0 found, 1 none */
	struct store_price p;	/* p.model set in both cases */
};

static struct pcache_ent pcache[PCACHE_SIZE];

static struct pcache_ent *
pcache_slot(const char *model, int64_t version)
{
	uint32_t h = hash_fnv1a_str(HASH_FNV_INIT, model);

	h = (h ^ (uint32_t)version) * 16777619u;
	return &pcache[h & (PCACHE_SIZE - 1)];
}

int
bill_price_get(const char *model, int64_t version, struct store_price *out)
{
	struct pcache_ent *e = pcache_slot(model, version);
	int64_t now = clock_mono_ms();
	int rc;

	if (e->expires_ms > now && e->version == version &&
	    strcmp(e->p.model, model) == 0) {
		if (e->rc == 0)
			*out = e->p;
		return e->rc;
	}
	if ((rc = store_price_get(bill_store, model, version, out)) == -1)
		return -1;
	/* Only a valid model name (1..STORE_MODEL_MAX bytes) got here. */
	if (rc == 0)
		e->p = *out;
	else {
		memset(&e->p, 0, sizeof(e->p));
		snprintf(e->p.model, sizeof(e->p.model), "%s", model);
	}
	e->rc = rc;
	e->version = version;
	e->expires_ms = now + PCACHE_TTL_MS;
	return rc;
}

void
bill_price_forget(void)
{
	memset(pcache, 0, sizeof(pcache));
}

/* Adds NAME (decimal string) and NAME_micros (integer) to o. */
static void
put_amount(json_t *o, const char *name, int64_t micros)
{
	char dec[32], key[32];

	money_format(micros, dec, sizeof(dec));
	snprintf(key, sizeof(key), "%s_micros", name);
	json_object_set_new(o, name, json_string(dec));
	json_object_set_new(o, key, json_integer((json_int_t)micros));
}

static json_t *
price_json(const struct store_price *p)
{
	json_t *o = json_pack("{s:s, s:I}", "model", p->model, "version",
	    (json_int_t)p->version);

	put_amount(o, comp_name[0], p->input);
	put_amount(o, comp_name[1], p->output);
	put_amount(o, comp_name[2], p->cached_input);
	put_amount(o, comp_name[3], p->cache_write);
	put_amount(o, comp_name[4], p->image);
	put_amount(o, comp_name[5], p->audio_second);
	put_amount(o, comp_name[6], p->audio_char);
	put_amount(o, comp_name[7], p->video_second);
	json_object_set_new(o, "created_at", json_integer(
	    (json_int_t)p->created_at));
	return o;
}

static int
price_row(const struct store_price *p, void *arg)
{
	json_array_append_new(arg, price_json(p));
	return 0;
}

static void
price_set(struct child_env *env, uint64_t rid, int argc, char **argv)
{
	int64_t v[NCOMP] = { -1, -1, 0, 0, 0, 0, 0, 0 }, version;
	struct store_price p;
	const char *model;
	json_t *o;
	int i, k, units = 0;

	if (argc < 3 || strncmp(argv[2], "--", 2) == 0) {
		child_admin_error(env, rid, "price set: which model? " PRICE_USAGE);
		return;
	}
	model = argv[2];
	for (i = 3; i < argc; i += 2) {
		for (k = 0; k < NCOMP; k++)
			if (strcmp(argv[i], comp_opt[k]) == 0)
				break;
		if (k == NCOMP) {
			child_admin_error(env, rid, "price set: unknown option "
			    "'%s' (%s)", argv[i], PRICE_USAGE);
			return;
		}
		if (i + 1 >= argc) {
			child_admin_error(env, rid, "price set: %s needs an "
			    "amount", argv[i]);
			return;
		}
		if (money_parse(argv[i + 1], &v[k]) != 0) {
			child_admin_error(env, rid, "price set: %s '%s' is not an "
			    "amount like 2.5 (per 1,000,000 tokens, not negative, "
			    "at most 6 decimals)", argv[i], argv[i + 1]);
			return;
		}
		units |= k >= NTOK;
	}
	if (units) {		/* priced by units: tokens default to 0 */
		v[0] = v[0] < 0 ? 0 : v[0];
		v[1] = v[1] < 0 ? 0 : v[1];
	}
	if (v[0] < 0 || v[1] < 0) {
		child_admin_error(env, rid, "price set: --input and --output "
		    "are required (%s)", PRICE_USAGE);
		return;
	}
	memset(&p, 0, sizeof(p));
	if (strlen(model) >= sizeof(p.model)) {
		child_admin_error(env, rid, "price set: the model name is too "
		    "long");
		return;
	}
	memcpy(p.model, model, strlen(model) + 1);
	p.input = v[0];
	p.output = v[1];
	p.cached_input = v[2];
	p.cache_write = v[3];
	p.image = v[4];
	p.audio_second = v[5];
	p.audio_char = v[6];
	p.video_second = v[7];
	bill_price_forget();	/* "the latest" of this model changes */
	if (store_price_set_all(bill_store, &p, &version) != 0) {
		child_admin_error(env, rid, "price set: %s",
		    store_errmsg(bill_store));
		return;
	}
	log_info("prices of '%s': version %lld", model, (long long)version);
	if (store_price_get(bill_store, model, version, &p) != 0) {
		child_admin_error(env, rid, "price set: stored as version %lld, "
		    "but reading it back failed: %s", (long long)version,
		    store_errmsg(bill_store));
		return;
	}
	bill_ledger_price_set(&p);	/* every online agent learns it */
	o = price_json(&p);
	json_object_set_new(o, "ok", json_true());
	json_object_set_new(o, "message", json_sprintf("%s: prices version "
	    "%lld", model, (long long)version));
	bill_reply_json(env, rid, o);
}

void
bill_cmd_price(struct child_env *env, uint64_t rid, int argc, char **argv)
{
	if (argc >= 2 && strcmp(argv[1], "set") == 0) {
		price_set(env, rid, argc, argv);
		return;
	}
	if (argc == 2 && strcmp(argv[1], "list") == 0) {
		json_t *rows = json_array();

		if (store_price_list(bill_store, price_row, rows) != 0) {
			json_decref(rows);
			child_admin_error(env, rid, "store: %s",
			    store_errmsg(bill_store));
			return;
		}
		bill_reply_json(env, rid, json_pack("{s:b, s:o}", "ok", 1,
		    "prices", rows));
		return;
	}
	child_admin_error(env, rid, PRICE_USAGE);
}
