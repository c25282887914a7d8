/*
 * billing/store_price: the models' prices, in versions.  Owns writing a
 * model's next version (an old version is never changed, so the version
 * a charge names keeps its meaning), reading one version or the latest,
 * and listing the latest of each model or every version.
 */
#include "billing/store_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- prices ------------------------------------------------------------- */

#define PRICE_COLS	"model, version, input, output, cached_input, " \
			"cache_write, created_at, image, audio_second, " \
			"audio_char, video_second"
#define PRICE_SET_TRIES	5

static int
price_conv(struct store *st, const struct db_row *r, void *out)
{
	struct store_price *p = out;

	memset(p, 0, sizeof(*p));
	return col_text(st, r, 0, p->model, sizeof(p->model)) == -1 ||
	    col_int(st, r, 1, &p->version) == -1 ||
	    col_int(st, r, 2, &p->input) == -1 ||
	    col_int(st, r, 3, &p->output) == -1 ||
	    col_int(st, r, 4, &p->cached_input) == -1 ||
	    col_int(st, r, 5, &p->cache_write) == -1 ||
	    col_int(st, r, 6, &p->created_at) == -1 ||
	    col_int(st, r, 7, &p->image) == -1 ||
	    col_int(st, r, 8, &p->audio_second) == -1 ||
	    col_int(st, r, 9, &p->audio_char) == -1 ||
	    col_int(st, r, 10, &p->video_second) == -1 ? -1 : 0;
}

int
store_price_set(struct store *st, const char *model, int64_t input,
    int64_t output, int64_t cached_input, int64_t cache_write,
    int64_t *out_version)
{
	struct store_price pr;

	memset(&pr, 0, sizeof(pr));
	if (model != NULL)
		snprintf(pr.model, sizeof(pr.model), "%s", model);
	if (model != NULL && strlen(model) > STORE_MODEL_MAX)
		pr.model[0] = '\0';	/* refused below */
	pr.input = input;
	pr.output = output;
	pr.cached_input = cached_input;
	pr.cache_write = cache_write;
	return store_price_set_all(st, &pr, out_version);
}

int
store_price_set_all(struct store *st, const struct store_price *pr,
    int64_t *out_version)
{
	struct db_param p[10];
	const char *model = pr != NULL ? pr->model : NULL;
	int64_t v = 0, input, output, cached_input, cache_write;
	int rc = DB_ERR, try;

	if (st == NULL)
		return -1;
	if (pr == NULL || out_version == NULL) {
		store_seterr(st, "store_price_set: NULL argument");
		return -1;
	}
	if (!model_ok(model)) {
		store_seterr(st, "model name must be 1..%d printable ASCII "
		    "characters without spaces or commas", STORE_MODEL_MAX);
		return -1;
	}
	input = pr->input;
	output = pr->output;
	cached_input = pr->cached_input;
	cache_write = pr->cache_write;
	if (input < 0 || output < 0 || cached_input < 0 || cache_write < 0 ||
	    pr->image < 0 || pr->audio_second < 0 || pr->audio_char < 0 ||
	    pr->video_second < 0) {
		store_seterr(st, "prices must be >= 0");
		return -1;
	}
	p[0] = ptext(model);
	p[1] = pint(input);
	p[2] = pint(output);
	p[3] = pint(cached_input);
	p[4] = pint(cache_write);
	p[5] = pint((int64_t)time(NULL));
	p[6] = pint(pr->image);
	p[7] = pint(pr->audio_second);
	p[8] = pint(pr->audio_char);
	p[9] = pint(pr->video_second);
	/*
	 * One statement picks the next version and writes it.  Two hubs
	 * writing the same model at once (PostgreSQL) can pick the same
	 * number: the primary key refuses the second, which tries again.
	 */
	for (try = 0; try < PRICE_SET_TRIES; try++) {
		v = 0;
		rc = q(st, "INSERT INTO prices (" PRICE_COLS ") "
		    "SELECT $1, COALESCE(MAX(version), 0) + 1, $2, $3, $4, $5, "
		    "$6, $7, $8, $9, $10 FROM prices WHERE model = $1 "
		    "RETURNING version", p, 10, row_int, &v);
		if (rc != DB_CONFLICT)
			break;
	}
	if (rc == DB_CONFLICT)
		store_seterr(st, "prices of \"%s\" are being changed "
		    "elsewhere: try again", model);
	if (rc != DB_OK)
		return -1;
	if (v < 1) {
		store_seterr(st, "price insert returned no version");
		return -1;
	}
	*out_version = v;
	return 0;
}

/* Every price row sql selects, in its order, to cb (what: the call). */
static int
price_walk(struct store *st, const char *what, const char *sql,
    store_price_cb cb, void *arg)
{
	struct collect c = { price_conv, sizeof(struct store_price), 0, 0,
	    NULL };
	struct store_price *pr;
	size_t i;
	int rc = 0;

	if (query_all(st, what, cb != NULL, sql, NULL, 0, &c) != 0)
		return -1;
	pr = (struct store_price *)(void *)c.items;
	for (i = 0; i < c.n && rc == 0; i++)
		rc = cb(&pr[i], arg);
	free(c.items);
	return rc;
}

int
store_price_list(struct store *st, store_price_cb cb, void *arg)
{
	return price_walk(st, "store_price_list",
	    "SELECT " PRICE_COLS " FROM prices p WHERE version = "
	    "(SELECT MAX(version) FROM prices WHERE model = p.model) "
	    "ORDER BY model", cb, arg);
}

int
store_price_get(struct store *st, const char *model, int64_t version,
    struct store_price *out)
{
	struct db_param p[2];

	if (st == NULL)
		return -1;
	if (out == NULL) {
		store_seterr(st, "store_price_get: NULL argument");
		return -1;
	}
	if (!model_ok(model)) {
		store_seterr(st, "model name must be 1..%d printable ASCII "
		    "characters without spaces or commas", STORE_MODEL_MAX);
		return -1;
	}
	if (version < 0) {
		store_seterr(st, "price version must be >= 1 (0: the latest)");
		return -1;
	}
	p[0] = ptext(model);
	p[1] = pint(version);
	if (version == 0)
		return query_one(st, "SELECT " PRICE_COLS " FROM prices WHERE "
		    "model = $1 ORDER BY version DESC LIMIT 1", p, 1, price_conv,
		    sizeof(*out), out);
	return query_one(st, "SELECT " PRICE_COLS " FROM prices WHERE model = $1 "
	    "AND version = $2", p, 2, price_conv, sizeof(*out), out);
}

/* Every version of every model, by model then version. */
int
store_price_all(struct store *st, store_price_cb cb, void *arg)
{
	return price_walk(st, "store_price_all",
	    "SELECT " PRICE_COLS " FROM prices ORDER BY model, version", cb,
	    arg);
}
