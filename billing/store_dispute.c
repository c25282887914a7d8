/*
 * billing/store_dispute: the disputes an agent raises about entries of its
 * ledger chain.  Owns recording one (only for an entry that exists and is
 * for the request named; one per agent and request) and listing them.
 * Resolving them is the operator's (billing/store_admin.c).
 */
#include "billing/store_int.h"
#include "lib/hash.h"
#include "lib/ledger.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- disputes ------------------------------------------------------------- */

#define DISPUTE_COLS	"id, agent_id, seq, request_id, hub_amount, " \
			"agent_amount, hub_hash, reason, status, created_at"

static int
dispute_conv(struct store *st, const struct db_row *r, void *out)
{
	struct store_dispute *d = out;

	memset(d, 0, sizeof(*d));
	return col_id(st, r, 0, &d->id) == -1 ||
	    col_id(st, r, 1, &d->agent_id) == -1 ||
	    col_id(st, r, 2, &d->seq) == -1 ||
	    col_text(st, r, 3, d->request_id, sizeof(d->request_id)) == -1 ||
	    col_int(st, r, 4, &d->hub_amount) == -1 ||
	    col_int(st, r, 5, &d->agent_amount) == -1 ||
	    col_text(st, r, 6, d->hub_hash, sizeof(d->hub_hash)) == -1 ||
	    col_text(st, r, 7, d->reason, sizeof(d->reason)) == -1 ||
	    col_text(st, r, 8, d->status, sizeof(d->status)) == -1 ||
	    col_int(st, r, 9, &d->created_at) == -1 ? -1 : 0;
}

/* Row callback: the request id of one ledger entry. */
struct entry_req {
	int	n;
	char	request_id[LEDGER_REQID_MAX + 1];
};

static int
row_entry_req(struct store *st, const struct db_row *r, void *arg)
{
	struct entry_req *er = arg;

	if (er->n++ > 0)
		return 0;
	return col_text(st, r, 0, er->request_id, sizeof(er->request_id));
}

int
store_dispute_add(struct store *st, const struct store_dispute *d)
{
	struct db_param p[8];
	struct entry_req er;
	int rc;

	if (st == NULL)
		return -1;
	if (d == NULL) {
		store_seterr(st, "store_dispute_add: NULL argument");
		return -1;
	}
	if (!id_ok(d->agent_id) || !id_ok(d->seq)) {
		store_seterr(st, "dispute: bad agent id or seq");
		return -1;
	}
	if (strnlen(d->request_id, sizeof(d->request_id)) ==
	    sizeof(d->request_id) || !reqid_ok(d->request_id)) {
		store_seterr(st, "dispute: request id must be 1..63 printable "
		    "ASCII characters");
		return -1;
	}
	if (d->hub_amount < 0 || d->agent_amount < -1) {
		store_seterr(st, "dispute: hub amount must be >= 0, agent "
		    "amount >= 0 or -1");
		return -1;
	}
	if (strnlen(d->hub_hash, sizeof(d->hub_hash)) == sizeof(d->hub_hash) ||
	    (d->hub_hash[0] != '\0' && !hash_hex_ok(d->hub_hash))) {
		store_seterr(st, "dispute: hub hash must be \"\" or 64 "
		    "lowercase hex digits");
		return -1;
	}
	if (!printable_ok(d->reason, sizeof(d->reason))) {
		store_seterr(st, "dispute: reason must be at most %zu "
		    "printable ASCII characters", sizeof(d->reason) - 1);
		return -1;
	}
	/* It disputes an entry that exists, for that request. */
	memset(&er, 0, sizeof(er));
	p[0] = pint((int64_t)d->agent_id);
	p[1] = pint((int64_t)d->seq);
	if (q(st, "SELECT request_id FROM ledger WHERE agent_id = $1 AND "
	    "seq = $2", p, 2, row_entry_req, &er) != DB_OK)
		return -1;
	if (er.n == 0 || strcmp(er.request_id, d->request_id) != 0) {
		store_seterr(st, "dispute: agent %llu has no ledger entry %llu "
		    "for request %s", (unsigned long long)d->agent_id,
		    (unsigned long long)d->seq, d->request_id);
		return -1;
	}
	p[2] = ptext(d->request_id);
	p[3] = pint(d->hub_amount);
	p[4] = pint(d->agent_amount);
	p[5] = ptext(d->hub_hash);
	p[6] = ptext(d->reason);
	p[7] = pint((int64_t)time(NULL));
	rc = q(st, "INSERT INTO disputes (agent_id, seq, request_id, "
	    "hub_amount, agent_amount, hub_hash, reason, status, created_at) "
	    "VALUES ($1, $2, $3, $4, $5, $6, $7, 'open', $8)", p, 8, NULL,
	    NULL);
	if (rc == DB_CONFLICT)
		return 1;
	return rc == DB_OK ? 0 : -1;
}

int
store_dispute_list(struct store *st, store_dispute_cb cb, void *arg)
{
	struct collect c = { dispute_conv, sizeof(struct store_dispute), 0, 0,
	    NULL };
	struct store_dispute *d;
	size_t i;
	int rc = 0;

	if (query_all(st, "store_dispute_list", cb != NULL,
	    "SELECT " DISPUTE_COLS " FROM disputes ORDER BY id", NULL, 0,
	    &c) != 0)
		return -1;
	d = (struct store_dispute *)(void *)c.items;
	for (i = 0; i < c.n && rc == 0; i++)
		rc = cb(&d[i], arg);
	free(c.items);
	return rc;
}
