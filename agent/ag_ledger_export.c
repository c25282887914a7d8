/*
 * agent/ag_ledger_export: what agentd's ledger commands read from the
 * agent's ledger database (agent/ag_ledger_int.h), whole: the agent ids
 * it knows, a chain as CSV, a chain checked link by link from seq 1, and
 * the disputes.  Reads only.
 */
#include "agent/ag_ledger_int.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <sqlite3.h>

/* ---- reading it all -------------------------------------------------- */

int
ag_ledger_agents(struct ag_ledger *lg, uint64_t *ids, size_t max)
{
	sqlite3_stmt *st;
	size_t n = 0;
	int r;

	st = lg_query(lg, "SELECT agent_id FROM hub_keys UNION SELECT agent_id "
	    "FROM ledger UNION SELECT agent_id FROM served ORDER BY 1", "");
	while ((r = lg_row(lg, st)) == 1) {
		if (n < max)
			ids[n] = (uint64_t)sqlite3_column_int64(st, 0);
		n++;
	}
	if (r == -1)
		return -1;
	lg_release(lg, st);
	return (int)n;
}

int
ag_ledger_export(struct ag_ledger *lg, uint64_t agent_id, FILE *out)
{
	struct ledger_entry e;
	sqlite3_stmt *st;
	char line[LEDGER_CSV_MAX];
	int n = 0, r;

	st = lg_query(lg,
	    "SELECT " ENTRY_COLS " FROM ledger WHERE agent_id = ? "
	    "ORDER BY seq", "i", (int64_t)agent_id);
	if (st == NULL)
		return -1;
	if (fputs(LEDGER_CSV_HEADER, out) == EOF) {
		lg_seterr(lg, "write error");
		lg_release(lg, st);
		return -1;
	}
	while ((r = lg_row(lg, st)) == 1) {
		lg_col_entry(st, &e);
		if (ledger_csv_line(&e, line, sizeof(line)) < 0) {
			lg_seterr(lg,
			    "seq %" PRIu64 " cannot be written as CSV "
			    "(malformed; run agentd ledger verify)", e.seq);
			lg_release(lg, st);
			return -1;
		}
		if (fputs(line, out) == EOF) {
			lg_seterr(lg, "write error");
			lg_release(lg, st);
			return -1;
		}
		n++;
	}
	if (r == -1)
		return -1;
	lg_release(lg, st);
	return n;
}

int
ag_ledger_verify(struct ag_ledger *lg, uint64_t agent_id, uint64_t *n,
    char head_hash[LEDGER_HEX_LEN + 1], uint64_t *bad_seq, char *why,
    size_t whylen)
{
	struct ledger_entry prev, e;
	unsigned char pk[LEDGER_PK_LEN];
	sqlite3_stmt *st;
	uint64_t uncovered = 0;
	int k, r, have_prev = 0, ret = 0;

	*n = 0;
	*bad_seq = 0;
	memcpy(head_hash, LEDGER_GENESIS, LEDGER_HEX_LEN + 1);
	if ((k = ag_ledger_hub_key_get(lg, agent_id, pk)) == -1) {
		snprintf(why, whylen, "%s", lg->err);
		return -1;
	}
	st = lg_query(lg,
	    "SELECT " ENTRY_COLS " FROM ledger WHERE agent_id = ? "
	    "ORDER BY seq", "i", (int64_t)agent_id);
	while ((r = lg_row(lg, st)) == 1) {
		lg_col_entry(st, &e);
		if (k == 1) {
			snprintf(why, whylen, "no hub ledger key is stored for "
			    "agent %" PRIu64 ", so no signature can be checked",
			    agent_id);
			ret = 1;
		} else if (e.agent_id != agent_id) {
			snprintf(why, whylen, "seq %" PRIu64 ": another agent's "
			    "entry", e.seq);
			ret = 1;
		} else if (ledger_check_link(have_prev ? &prev : NULL, &e, pk,
		    why, whylen) != 0)
			ret = 1;
		if (ret == 1) {
			*bad_seq = e.seq;
			lg_release(lg, st);
			return 1;
		}
		prev = e;
		have_prev = 1;
		(*n)++;
		memcpy(head_hash, e.hash, LEDGER_HEX_LEN + 1);
		/* The first entry no signature covers yet. */
		if (ledger_signed(&e))
			uncovered = 0;
		else if (uncovered == 0)
			uncovered = e.seq;
	}
	if (r == -1) {
		snprintf(why, whylen, "%s", lg->err);
		return -1;
	}
	lg_release(lg, st);
	if (uncovered != 0) {
		snprintf(why, whylen, "seq %" PRIu64 ": no signature covers it "
		    "(no signed entry after it)", uncovered);
		*bad_seq = uncovered;
		return 1;
	}
	return 0;
}

int
ag_ledger_disputes(struct ag_ledger *lg, uint64_t agent_id,
    int (*cb)(const struct ag_dispute *, void *), void *arg)
{
	struct ag_dispute d;
	sqlite3_stmt *st;
	int n = 0, r;

	st = lg_query(lg, "SELECT agent_id, seq, request_id, hub_amount, "
	    "agent_amount, reason, created_at, status, resolution, resolved_at "
	    "FROM disputes WHERE ?1 = 0 OR "
	    "agent_id = ?1 ORDER BY agent_id, seq", "i", (int64_t)agent_id);
	while ((r = lg_row(lg, st)) == 1) {
		memset(&d, 0, sizeof(d));
		d.agent_id = (uint64_t)sqlite3_column_int64(st, 0);
		d.seq = (uint64_t)sqlite3_column_int64(st, 1);
		lg_col_text(st, 2, d.request_id, sizeof(d.request_id));
		d.hub_amount = sqlite3_column_int64(st, 3);
		d.agent_amount = sqlite3_column_int64(st, 4);
		lg_col_text(st, 5, d.reason, sizeof(d.reason));
		d.created_at = sqlite3_column_int64(st, 6);
		lg_col_text(st, 7, d.status, sizeof(d.status));
		lg_col_text(st, 8, d.resolution, sizeof(d.resolution));
		d.resolved_at = sqlite3_column_int64(st, 9);
		n++;
		if (cb(&d, arg) != 0)
			break;
	}
	if (r == -1)
		return -1;
	lg_release(lg, st);
	return n;
}
