/*
 * agent/ag_ledger_served: the streams this agent served, in the agent's
 * ledger database (agent/ag_ledger_int.h): the served table's rows and
 * their states (open, reported, receipted), recorded when a stream ends,
 * picked for usage reports, marked as reported or receipted.
 */
#include "agent/ag_ledger_int.h"

#include <string.h>

#include <sqlite3.h>

/* ---- served streams ------------------------------------------------- */

static const char *const state_names[] = {
	[AG_SERVED_OPEN] = "open", [AG_SERVED_REPORTED] = "reported",
	[AG_SERVED_RECEIPTED] = "receipted"
};

static void
col_served(sqlite3_stmt *st, struct ag_served *s)
{
	char state[16];

	memset(s, 0, sizeof(*s));
	lg_col_text(st, 0, s->request_id, sizeof(s->request_id));
	s->agent_id = (uint64_t)sqlite3_column_int64(st, 1);
	lg_col_text(st, 2, s->model, sizeof(s->model));
	s->input_tokens = sqlite3_column_int64(st, 3);
	s->output_tokens = sqlite3_column_int64(st, 4);
	s->cached_tokens = sqlite3_column_int64(st, 5);
	s->cache_write_tokens = sqlite3_column_int64(st, 6);
	s->estimated = sqlite3_column_int(st, 7);
	lg_col_text(st, 8, state, sizeof(state));
	s->state = AG_SERVED_OPEN;	/* also for a name this build lacks */
	for (size_t i = 0; i < sizeof(state_names) / sizeof(state_names[0]); i++)
		if (strcmp(state, state_names[i]) == 0)
			s->state = (enum ag_served_state)i;
	s->created_at = sqlite3_column_int64(st, 9);
	s->reported_at = sqlite3_column_int64(st, 10);
	s->images = sqlite3_column_int64(st, 11);
	s->audio_seconds = sqlite3_column_int64(st, 12);
	s->audio_chars = sqlite3_column_int64(st, 13);
	s->video_seconds = sqlite3_column_int64(st, 14);
}

int
ag_ledger_served_record(struct ag_ledger *lg, const struct ag_served *s)
{
	int r;

	if (!lg_text_ok(s->request_id, LEDGER_REQID_MAX, 0) ||
	    !lg_text_ok(s->model, LEDGER_MODEL_MAX, 1) || s->input_tokens < 0 ||
	    s->output_tokens < 0 || s->cached_tokens < 0 ||
	    s->cache_write_tokens < 0 || s->images < 0 ||
	    s->audio_seconds < 0 || s->audio_chars < 0 ||
	    s->video_seconds < 0) {
		lg_seterr(lg, "bad served record");
		return -1;
	}
	/* A receipt that came first (it cannot, but a restart between the
	 * two could make it look so) settles it at once. */
	r = lg_done(lg, lg_query(lg,
	    "INSERT OR IGNORE INTO served (" SERVED_COLS
	    ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, CASE WHEN EXISTS (SELECT 1 FROM "
	    "ledger WHERE agent_id = ?2 AND request_id = ?1) THEN 'receipted' "
	    "ELSE 'open' END, ?9, 0, ?10, ?11, ?12, ?13)", "titiiiiiiiiii",
	    s->request_id, (int64_t)s->agent_id, s->model, s->input_tokens,
	    s->output_tokens, s->cached_tokens, s->cache_write_tokens,
	    (int64_t)(s->estimated != 0), s->created_at, s->images,
	    s->audio_seconds, s->audio_chars, s->video_seconds));
	if (r < 0)
		return -1;
	return r == 0 ? 1 : 0;
}

int
ag_ledger_served_get(struct ag_ledger *lg, const char *request_id,
    struct ag_served *out)
{
	sqlite3_stmt *st;
	int r;

	st = lg_query(lg, "SELECT " SERVED_COLS " FROM served WHERE "
	    "request_id = ?", "t", request_id);
	if ((r = lg_row(lg, st)) != 1)
		return r == 0 ? (lg_release(lg, st), 1) : -1;
	col_served(st, out);
	lg_release(lg, st);
	return 0;
}

int
ag_ledger_served_due(struct ag_ledger *lg, int64_t created_before,
    int64_t reported_before, struct ag_served_page *pg, struct ag_served *out,
    size_t max)
{
	sqlite3_stmt *st;
	size_t n = 0;
	int r = 0;

	st = lg_query(lg, AG_SQL_SERVED_DUE, "iiiii", created_before,
	    reported_before, pg->created_at, pg->row, (int64_t)max);
	if (st == NULL)
		return -1;
	while (n < max && (r = lg_row(lg, st)) == 1) {
		col_served(st, &out[n]);
		pg->created_at = out[n++].created_at;
		pg->row = sqlite3_column_int64(st, AG_SQL_SERVED_DUE_ROWID);
	}
	if (r == -1)
		return -1;
	lg_release(lg, st);
	return (int)n;
}

int
ag_ledger_served_sent(struct ag_ledger *lg, const char *request_id,
    int64_t now_ms)
{
	return lg_done(lg, lg_query(lg,
	    "UPDATE served SET reported_at = ? WHERE "
	    "request_id = ?", "it", now_ms, request_id)) < 0 ? -1 : 0;
}

int
ag_ledger_served_mark(struct ag_ledger *lg, uint64_t agent_id,
    const char *request_id, enum ag_served_state state)
{
	int r;

	if (state == AG_SERVED_OPEN) {
		lg_seterr(lg, "a served record never goes back to open");
		return -1;
	}
	r = lg_done(lg, lg_query(lg, state == AG_SERVED_REPORTED ?
	    "UPDATE served SET state = ? WHERE request_id = ? AND "
	    "agent_id = ? AND state = 'open'" :
	    "UPDATE served SET state = ? WHERE request_id = ? AND "
	    "agent_id = ?", "tti", state_names[state], request_id,
	    (int64_t)agent_id));
	if (r < 0)
		return -1;
	return r == 0 ? 1 : 0;
}
