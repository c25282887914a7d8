/*
 * billing/bill_job: video jobs (POST /v1/videos and its follow-ups) in the
 * store's video_jobs table, for the gateways.
 *
 * A job lives on the agent channel that created it, for the token that
 * created it; follow-ups (GET /v1/videos/{id}[/content]) from any gateway
 * worker, after any restart, ask here (IPC_JOB_GET) where to go, and a
 * job of another token is answered as unknown (the user sees 404).
 *
 * Money (posts of kind IPC_POST_JOB_*, lib/ipc.h): the create reserves an
 * estimate (its seconds at the model's video_second price) and its charge
 * stays reserved while the job is queued (the stale sweep leaves it, a day
 * at most).  The first retrieve that reads the job "completed" ends it
 * (store_job_finish: one conditional UPDATE, so two gateway workers
 * racing end it once) and is posted with the video seconds it read — the
 * ledger entry is that retrieve's, whose answer the agent read too, so
 * both ledgers hold the same usage — and the create's reservation is
 * voided.  Every later completed retrieve is voided: billed once.  A
 * retrieve that reads "failed" ends the job and voids the reservation.
 */
#include <stdio.h>
#include <string.h>
#include "billing/bill.h"
#include "lib/ipc.h"
#include "lib/log.h"

/* A NUL-terminated copy of a fixed wire string. */
static void
wire_str(char *dst, size_t dlen, const char *src, size_t slen)
{
	size_t n = strnlen(src, slen);

	if (n >= dlen)
		n = dlen - 1;
	memcpy(dst, src, n);
	dst[n] = '\0';
}

void
bill_job_get(const struct ipc_job_get *q, struct ipc_job_info *r)
{
	struct store_job j;
	char id[sizeof(q->id)];
	int rc;

	memset(r, 0, sizeof(*r));
	wire_str(id, sizeof(id), q->id, sizeof(q->id));
	rc = id[0] != '\0' ? store_job_get(bill_store, id, &j) : 1;
	if (rc == -1) {
		log_warn("video job %s look-up: %s", id,
		    store_errmsg(bill_store));
		r->status = IPC_JOB_ERROR;
		return;
	}
	if (rc == 1 || j.token_id != q->token_id) {
		r->status = IPC_JOB_UNKNOWN;	/* none, or not this token's */
		return;
	}
	r->status = IPC_JOB_FOUND;
	r->agent_id = j.agent_id;
	snprintf(r->channel, sizeof(r->channel), "%s", j.channel);
	snprintf(r->model, sizeof(r->model), "%s", j.model);
	snprintf(r->state, sizeof(r->state), "%s", j.state);
}

/* Give the create's reservation back (the job ended). */
static void
void_create(const struct store_job *j, uint64_t reqid)
{
	if (store_charge_settle(bill_store, j->create_key, NULL) == -1)
		log_rwarn(reqid, "video job %s: voiding its create's charge "
		    "%s: %s", j->id, j->create_key, store_errmsg(bill_store));
}

int
bill_job_post(const char *key, uint64_t reqid,
    const struct ipc_charge_post *p, struct store_charge_usage *u,
    int (*post_fn)(const char *key, uint64_t agent_id,
    struct store_charge_usage *u, uint64_t reqid))
{
	struct store_job j;
	char id[sizeof(p->job)];
	const char *state;
	int rc;

	wire_str(id, sizeof(id), p->job, sizeof(p->job));
	if (p->how == IPC_POST_JOB_OPEN) {
		memset(&j, 0, sizeof(j));
		snprintf(j.id, sizeof(j.id), "%s", id);
		j.token_id = p->token_id;
		j.agent_id = p->agent_id;
		wire_str(j.channel, sizeof(j.channel), p->channel,
		    sizeof(p->channel));
		snprintf(j.model, sizeof(j.model), "%s", u->model);
		snprintf(j.create_key, sizeof(j.create_key), "%s", key);
		rc = store_job_put(bill_store, &j);
		if (rc == -1) {
			log_rwarn(reqid, "video job %s: %s", id,
			    store_errmsg(bill_store));
			/* A job we cannot keep cannot be billed: give the
			 * reservation back rather than hold it. */
			(void)store_charge_settle(bill_store, key, NULL);
			return -1;
		}
		log_rinfo(reqid, "video job %s of token %llu on agent %llu "
		    "channel %s%s; charge %s held", id,
		    (unsigned long long)j.token_id,
		    (unsigned long long)j.agent_id, j.channel,
		    rc == 1 ? " (known already)" : "", key);
		return 0;
	}
	state = p->how == IPC_POST_JOB_DONE ? "completed" : "failed";
	if ((rc = store_job_get(bill_store, id, &j)) == -1) {
		log_rwarn(reqid, "video job %s: %s", id, store_errmsg(bill_store));
		return -1;
	}
	if (rc == 1 || j.token_id != p->token_id) {
		log_rwarn(reqid, "charge %s names video job %s, which its "
		    "token does not hold: voided", key, id);
		return store_charge_settle(bill_store, key, NULL) == -1 ? -1 : 0;
	}
	rc = store_job_finish(bill_store, id, state, key);
	if (rc == -1) {
		log_rwarn(reqid, "video job %s: %s", id, store_errmsg(bill_store));
		return -1;
	}
	if (rc == 1) {
		/* Ended before, by another retrieve: never billed twice. */
		log_rinfo(reqid, "video job %s ended before (%s): charge %s "
		    "voided", id, j.state, key);
		return store_charge_settle(bill_store, key, NULL) == -1 ? -1 : 0;
	}
	void_create(&j, reqid);
	if (p->how == IPC_POST_JOB_FAILED)
		u->images = u->audio_seconds = u->audio_chars =
		    u->video_seconds = 0;
	log_rinfo(reqid, "video job %s %s: %lld seconds, posted as charge %s",
	    id, state, (long long)u->video_seconds, key);
	rc = post_fn(key, p->agent_id, u, reqid);
	return rc == -1 ? -1 : 0;
}
