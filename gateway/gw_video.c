/*
 * gateway/gw_video: OpenAI video jobs (POST /v1/videos, GET
 * /v1/videos/{id}, GET /v1/videos/{id}/content, model sora-2).
 *
 * A job lives on the agent channel that created it: the create's answer
 * (its "id") is posted to billing as IPC_POST_JOB_OPEN, which stores the
 * job (agent, channel, token, model, the create's charge key) and keeps
 * the create's reservation (its seconds at the model's video_second
 * price).  A follow-up asks billing where the job is (IPC_JOB_GET, in the
 * parse stage, so any worker after any restart finds it); another token's
 * job or an unknown id is answered 404 in OpenAI's shape.  The route
 * stage then admits only that agent's channel (a "bound" route), and the
 * job id goes to the agent as req_start's resource.  A retrieve that
 * reads the job "completed" is posted as IPC_POST_JOB_DONE with the video
 * seconds lib/usage read (billing bills the first one only), one that
 * reads "failed" as IPC_POST_JOB_FAILED (the reservation is voided).
 */
#include "gateway/gw.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>
#include "lib/ipc.h"
#include "lib/log.h"
#include "lib/tokest.h"
#include "gateway/gw_form.h"

/* OpenAI's default length of a video, in seconds. */
#define GW_VIDEO_DEFAULT_SECONDS	4
#define GW_VIDEO_MAX_SECONDS		3600

/* "4", "8", 12: a whole number of seconds, else -1. */
static int64_t
seconds_of(const char *s)
{
	int64_t v = 0;

	if (s == NULL || *s == '\0')
		return -1;
	for (; *s != '\0'; s++) {
		if (*s < '0' || *s > '9' || v > GW_VIDEO_MAX_SECONDS)
			return -1;
		v = v * 10 + (*s - '0');
	}
	return v;
}

enum gw_verdict
gw_video_parse_create(struct gw_req *r, const struct gw_body *b)
{
	char v[32];
	int64_t secs = -1;

	r->stream = 0;
	r->user_usage = 0;
	if (b == NULL) {		/* multipart (an input_reference) */
		if (gw_form_field(r->req_ctype, r->body, r->body_len, "model",
		    r->model, sizeof(r->model)) <= 0) {
			gw_reply_error(r, 400, "invalid_request_error",
			    "missing_model", "You must provide a model "
			    "parameter (a form field).");
			return GW_STOP;
		}
		if (gw_form_field(r->req_ctype, r->body, r->body_len, "seconds",
		    v, sizeof(v)) > 0 && (secs = seconds_of(v)) < 0)
			goto bad_seconds;
		r->lim.est = (int64_t)(r->body_len / 4);
	} else {
		struct jscan_v s = b->f[GW_BK_SECONDS];

		if (!gw_body_str(b->f[GW_BK_MODEL], r->model,
		    sizeof(r->model))) {
			gw_reply_error(r, 400, "invalid_request_error",
			    "missing_model", "You must provide a model "
			    "parameter.");
			return GW_STOP;
		}
		switch (jscan_type(s)) {
		case JS_NONE:
		case JS_NULL:
			break;
		case JS_STRING:
			/* As a C string (up to a first NUL), as before. */
			if (jscan_string_copy(s, v, sizeof(v)) >= sizeof(v) ||
			    (secs = seconds_of(v)) < 0)
				goto bad_seconds;
			break;
		case JS_INTEGER:
			if (jscan_integer(s, &secs) == 0 && secs >= 0 &&
			    secs > GW_VIDEO_MAX_SECONDS)
				goto bad_seconds;
			break;
		default:
			goto bad_seconds;
		}
		r->lim.est = gw_body_est(r, b);
	}
	r->est_video_seconds = secs >= 0 ? secs : GW_VIDEO_DEFAULT_SECONDS;
	return GW_GO;
bad_seconds:
	gw_reply_error(r, 400, "invalid_request_error", "invalid_value",
	    "seconds must be a whole number of seconds, like \"4\".");
	return GW_STOP;
}

/* A job id as a provider gives it: 1..63 of [A-Za-z0-9_-]. */
static int
job_id_ok(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > 63)
		return 0;
	return strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
	    "0123456789_-") == n;
}

static void
not_found(struct gw_req *r)
{
	char msg[160];

	snprintf(msg, sizeof(msg), "Video with id '%.63s' not found.",
	    r->path_model);
	gw_reply_error(r, 404, "invalid_request_error", "not_found", msg);
}

enum gw_verdict
gw_video_parse_get(struct gw_req *r, const struct gw_body *b)
{
	struct ipc_job_get q;

	(void)b;
	r->stream = 0;
	r->user_usage = 0;
	r->lim.est = 0;
	if (!job_id_ok(r->path_model)) {
		not_found(r);
		return GW_STOP;
	}
	memset(&q, 0, sizeof(q));
	q.token_id = r->token_id;
	snprintf(q.id, sizeof(q.id), "%.63s", r->path_model);
	if (gw_bill_send(IPC_JOB_GET, r->reqid, &q, sizeof(q)) != 0) {
		gw_reply_error(r, 503, "hub_error", "store_unavailable",
		    "The hub cannot look video jobs up right now; retry "
		    "shortly.");
		return GW_STOP;
	}
	return GW_WAIT;
}

void
gw_video_info(const struct msg *m)
{
	struct gw_req *r = gw_req_find(m->hdr.reqid);
	struct ipc_job_info info;

	if (r == NULL || !gw_waits_in(r, GW_ST_PARSE) ||
	    (r->op != OP_VIDEO_GET && r->op != OP_VIDEO_CONTENT))
		return;		/* the user left */
	memcpy(&info, m->data, sizeof(info));
	info.channel[sizeof(info.channel) - 1] = '\0';
	info.model[sizeof(info.model) - 1] = '\0';
	if (info.status == IPC_JOB_UNKNOWN) {
		not_found(r);
		gw_resume(r, GW_STOP);
		return;
	}
	if (info.status != IPC_JOB_FOUND || info.model[0] == '\0') {
		gw_reply_error(r, 503, "hub_error", "store_unavailable",
		    "The hub cannot look video jobs up right now; retry "
		    "shortly.");
		gw_resume(r, GW_STOP);
		return;
	}
	snprintf(r->model, sizeof(r->model), "%s", info.model);
	snprintf(r->job_bound, sizeof(r->job_bound), "%llu:%s",
	    (unsigned long long)info.agent_id, info.channel);
	gw_resume(r, GW_GO);
}

const char *
gw_video_bound(const struct gw_req *r)
{
	return (r->op == OP_VIDEO_GET || r->op == OP_VIDEO_CONTENT) &&
	    r->job_bound[0] != '\0' ? r->job_bound : NULL;
}

const char *
gw_video_resource(const struct gw_req *r)
{
	return r->op == OP_VIDEO_GET || r->op == OP_VIDEO_CONTENT ?
	    r->path_model : "";
}

/* The create's or a retrieve's answer, as the hub kept it (JSON). */
static json_t *
answer_json(const struct gw_req *r)
{
	json_error_t e;

	if (r->sniff == NULL || r->status < 200 || r->status >= 300)
		return NULL;
	return json_loadb((const char *)r->sniff, r->sniff_len, 0, &e);
}

void
gw_video_post(const struct gw_req *r, struct ipc_charge_post *p)
{
	json_t *o;
	const char *id, *st;

	if (p->how == IPC_POST_VOID || (r->op != OP_VIDEO_CREATE &&
	    r->op != OP_VIDEO_GET) || (o = answer_json(r)) == NULL)
		return;
	id = json_string_value(json_object_get(o, "id"));
	st = json_string_value(json_object_get(o, "status"));
	if (r->op == OP_VIDEO_CREATE && id != NULL && job_id_ok(id)) {
		p->how = IPC_POST_JOB_OPEN;
		snprintf(p->job, sizeof(p->job), "%s", id);
	} else if (r->op == OP_VIDEO_GET && st != NULL &&
	    (strcmp(st, "completed") == 0 || strcmp(st, "failed") == 0)) {
		p->how = st[0] == 'c' ? IPC_POST_JOB_DONE : IPC_POST_JOB_FAILED;
		snprintf(p->job, sizeof(p->job), "%.63s", r->path_model);
	}
	json_decref(o);
}
