/*
 * gateway/gw_mod: the moderation gate.  When [moderation] enabled, the
 * request's text and image URLs go to the moderation process before any
 * agent sees them; a flagged request gets HTTP 400 with exactly
 * {"error":{"code":"sensitive_words_detected","message":...,"param":"",
 * "type":"hub_error"}}.  A verdict that does not come in time, or a
 * moderation process that is down, follows [moderation] fail_open.
 */
#include <stdlib.h>
#include <string.h>
#include <jansson.h>
#include "gateway/gw.h"
#include "lib/log.h"

static void on_mod_msg(struct child_peer *p, const struct msg *m);

static struct child_peer mod = {
	.sock = "moderation.sock",
	.rules = &mod_gw_rules,
	.on_msg = on_mod_msg,
};

void
gw_mod_init(struct lws_vhost *vh)
{
	child_peer_start(&mod, gw_env(), vh);
}

static void
add_part(json_t *input, json_t *part)
{
	const char *type = json_string_value(json_object_get(part, "type"));

	if (type == NULL)
		return;
	if (strcmp(type, "text") == 0 && json_is_string(json_object_get(part, "text")))
		json_array_append_new(input, json_pack("{s:s, s:O}", "type", "text",
		    "text", json_object_get(part, "text")));
	else if (strcmp(type, "image_url") == 0) {
		json_t *u = json_object_get(part, "image_url");
		json_t *url = json_is_object(u) ? json_object_get(u, "url") : u;
		if (json_is_string(url))
			json_array_append_new(input, json_pack("{s:s, s:{s:O}}",
			    "type", "image_url", "image_url", "url", url));
	}
}

/* {"input":[...]} from the messages of a chat request; NULL if no text. */
static char *
mod_input(const struct gw_req *r)
{
	json_t *o = json_loadb((const char *)r->body, r->body_len, 0, NULL);
	json_t *input = json_array(), *msgs, *msg, *c, *part;
	size_t i, j;
	char *s = NULL;

	msgs = o ? json_object_get(o, "messages") : NULL;
	json_array_foreach(msgs, i, msg) {
		c = json_object_get(msg, "content");
		if (json_is_string(c))
			json_array_append_new(input, json_pack("{s:s, s:O}", "type",
			    "text", "text", c));
		else if (json_is_array(c))
			json_array_foreach(c, j, part)
				add_part(input, part);
	}
	if (json_array_size(input) > 0) {
		json_t *req = json_pack("{s:o}", "input", input);
		s = json_dumps(req, JSON_COMPACT);
		json_decref(req);
	} else
		json_decref(input);
	json_decref(o);
	return s;
}

static void
refuse_flagged(struct gw_req *r)
{
	static const char body[] = "{\"error\":{\"code\":\"sensitive_words_detected\","
	    "\"message\":\"Your request was rejected because it contains content "
	    "that is not allowed.\",\"param\":\"\",\"type\":\"hub_error\"}}";

	gw_reply_json(r, 400, body);
	gw_resume(r, GW_STOP);
}

/* The service failed or was late: the INI decides. */
static void
mod_failed(struct gw_req *r, const char *why)
{
	if (gw_env()->conf.mod_fail_open) {
		log_rwarn(r->reqid, "moderation unavailable (%s): fail-open, "
		    "letting the request through", why);
		gw_resume(r, GW_GO);
		return;
	}
	log_rwarn(r->reqid, "moderation unavailable (%s): fail-closed", why);
	gw_reply_error(r, 503, "hub_error", "moderation_unavailable",
	    "Content moderation is unavailable right now; retry shortly.");
	gw_resume(r, GW_STOP);
}

enum gw_verdict
gw_mod_check(struct gw_req *r)
{
	char *in;
	int rc;

	if (!gw_env()->conf.mod_enabled)
		return GW_GO;
	in = mod_input(r);
	if (in == NULL)
		return GW_GO;		/* nothing to screen */
	r->mod_deadline = clock_mono_ms() + gw_env()->conf.mod_timeout_ms + 1000;
	rc = child_peer_send(&mod, IPC_MOD_CHECK, r->reqid, in, strlen(in) + 1);
	free(in);
	if (rc != 0)
		mod_failed(r, "moderation process not reachable");
	return GW_WAIT;
}

static void
on_mod_msg(struct child_peer *p, const struct msg *m)
{
	struct ipc_mod_verdict v;
	struct gw_req *r;

	if (m->hdr.type != IPC_MOD_VERDICT) {
		child_peer_drop(p, "unexpected %s",
		    msg_type_name(&mod_gw_rules, m->hdr.type));
		return;
	}
	memcpy(&v, m->data, sizeof(v));
	v.detail[sizeof(v.detail) - 1] = '\0';
	r = gw_req_find(m->hdr.reqid);
	if (r == NULL || !gw_waits_in(r, GW_ST_MODERATE))
		return;
	switch (v.result) {
	case IPC_MOD_FLAGGED:
		log_rinfo(r->reqid, "refused by moderation: %s%s", v.detail,
		    v.cached ? " (cached verdict)" : "");
		refuse_flagged(r);
		break;
	case IPC_MOD_UNAVAILABLE:
		mod_failed(r, v.detail);
		break;
	default:
		gw_resume(r, GW_GO);
	}
}

void
gw_mod_tick(void)
{
	int64_t now = clock_mono_ms();

	child_peer_tick(&mod);
	for (struct gw_req *r = gw_live, *next; r != NULL; r = next) {
		next = r->next;
		if (gw_waits_in(r, GW_ST_MODERATE) && now > r->mod_deadline)
			mod_failed(r, "no verdict in time");
	}
}
