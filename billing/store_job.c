/*
 * billing/store_job: the video jobs table.  Owns recording a queued job
 * (the agent and channel that took it, and the key of the create's
 * charge, whose reservation the stale sweep leaves alone while the job is
 * queued), reading one, and ending it once, completed or failed, with the
 * key of the post that settled it.
 */
#include "billing/store_int.h"

#include <string.h>
#include <time.h>

/* ---- video jobs ----------------------------------------------------------- */

#define JOB_COLS	"id, token_id, agent_id, channel, model, create_key, " \
			"state, settle_key, created_at"

static int
job_conv(struct store *st, const struct db_row *r, void *out)
{
	struct store_job *j = out;
	int64_t tok, agent;

	memset(j, 0, sizeof(*j));
	if (col_text(st, r, 0, j->id, sizeof(j->id)) == -1 ||
	    col_int(st, r, 1, &tok) == -1 ||
	    col_int(st, r, 2, &agent) == -1 ||
	    col_text(st, r, 3, j->channel, sizeof(j->channel)) == -1 ||
	    col_text(st, r, 4, j->model, sizeof(j->model)) == -1 ||
	    col_text(st, r, 5, j->create_key, sizeof(j->create_key)) == -1 ||
	    col_text(st, r, 6, j->state, sizeof(j->state)) == -1 ||
	    col_text(st, r, 7, j->settle_key, sizeof(j->settle_key)) == -1 ||
	    col_int(st, r, 8, &j->created_at) == -1)
		return -1;
	if (tok < 0 || agent <= 0) {
		store_seterr(st, "video job %s: bad token or agent id", j->id);
		return -1;
	}
	j->token_id = (uint64_t)tok;
	j->agent_id = (uint64_t)agent;
	return 0;
}

int
store_job_put(struct store *st, const struct store_job *j)
{
	struct db_param p[7];
	struct store_job old;
	int rc;

	if (st == NULL)
		return -1;
	if (j == NULL || !reqid_ok(j->id) || !reqid_ok(j->create_key) ||
	    !id_ok(j->agent_id) || j->token_id > (uint64_t)INT64_MAX ||
	    strnlen(j->channel, sizeof(j->channel)) == sizeof(j->channel) ||
	    strnlen(j->model, sizeof(j->model)) == sizeof(j->model)) {
		store_seterr(st, "store_job_put: bad job");
		return -1;
	}
	if ((rc = store_job_get(st, j->id, &old)) != 1)
		return rc == 0 ? 1 : -1;
	p[0] = ptext(j->id);
	p[1] = pint((int64_t)j->token_id);
	p[2] = pint((int64_t)j->agent_id);
	p[3] = ptext(j->channel);
	p[4] = ptext(j->model);
	p[5] = ptext(j->create_key);
	p[6] = pint((int64_t)time(NULL));
	rc = q(st, "INSERT INTO video_jobs (id, token_id, agent_id, channel, "
	    "model, create_key, created_at) VALUES ($1, $2, $3, $4, $5, $6, "
	    "$7)", p, 7, NULL, NULL);
	if (rc == DB_CONFLICT)
		return 1;
	return rc == DB_OK ? 0 : -1;
}

int
store_job_get(struct store *st, const char *id, struct store_job *out)
{
	struct db_param p[1];

	if (st == NULL)
		return -1;
	if (out == NULL || !reqid_ok(id)) {
		store_seterr(st, "store_job_get: bad job id");
		return -1;
	}
	p[0] = ptext(id);
	return query_one(st, "SELECT " JOB_COLS " FROM video_jobs WHERE id = $1",
	    p, 1, job_conv, sizeof(*out), out);
}

int
store_job_finish(struct store *st, const char *id, const char *state,
    const char *settle_key)
{
	struct db_param p[4];
	struct store_job j;
	struct one_id got = { 0, 0 };
	int rc;

	if (st == NULL)
		return -1;
	if (!reqid_ok(id) || !reqid_ok(settle_key) || state == NULL ||
	    (strcmp(state, "completed") != 0 && strcmp(state, "failed") != 0)) {
		store_seterr(st, "store_job_finish: bad job, state or key");
		return -1;
	}
	p[0] = ptext(id);
	p[1] = ptext(state);
	p[2] = ptext(settle_key);
	p[3] = pint((int64_t)time(NULL));
	/* One conditional UPDATE: of two racing posts one moves the row. */
	if (q(st, "UPDATE video_jobs SET state = $2, settle_key = $3, "
	    "settled_at = $4 WHERE id = $1 AND state = 'queued' RETURNING "
	    "agent_id", p, 4, row_id, &got) != DB_OK)
		return -1;
	if (got.n > 0)
		return 0;
	if ((rc = store_job_get(st, id, &j)) != 0)
		return rc;
	return strcmp(j.settle_key, settle_key) == 0 &&
	    strcmp(j.state, state) == 0 ? 0 : 1;
}
