/*
 * xlate/xl_an_br: an Anthropic Messages user, Claude on Bedrock's
 * InvokeModel (lib/prov's "Anthropic on Bedrock" row: the model-native
 * body is Claude's own).  The request loses "model" and "stream" (the
 * model is in the path, the operation says stream) and gains
 * anthropic_version "bedrock-2023-05-31"; the answer is Claude's message
 * as it is (its model named as the user asked); the stream's `chunk`
 * events carry Claude's events base64-encoded in "bytes", each written
 * to the user as the SSE event of its "type" (the final one keeps
 * Bedrock's amazon-bedrock-invocationMetrics member, which clients
 * ignore).  The gateway feeds event-stream frames as (:event-type,
 * payload).
 */
#include "xlate/xl_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/evstream.h"

#define BEDROCK_ANTHROPIC_VERSION	"bedrock-2023-05-31"

json_t *
xl_an_br_request(json_t *in, const char *model, int stream, char *err,
    size_t errlen)
{
	json_t *out = json_deep_copy(in);

	(void)model;
	(void)stream;
	if (out == NULL)
		return xl_fail(err, errlen, "out of memory");
	json_object_del(out, "model");
	json_object_del(out, "stream");
	json_object_set_new(out, "anthropic_version",
	    json_string(BEDROCK_ANTHROPIC_VERSION));
	return out;
}

json_t *
xl_an_br_response(json_t *in, const char *model, char *err, size_t errlen)
{
	json_t *out;

	if (!json_is_string(json_object_get(in, "type")))
		return xl_fail(err, errlen, "not a Claude message");
	if ((out = json_deep_copy(in)) == NULL)
		return xl_fail(err, errlen, "out of memory");
	if (model != NULL)
		json_object_set_new(out, "model", json_string(model));
	return out;
}

int
xl_an_br_event(struct xl_stream *s, const char *name, const char *data,
    size_t len, struct xl_buf *out)
{
	json_t *j = json_loadb(data, len, 0, NULL), *inner = NULL, *b;
	unsigned char *raw = NULL;
	size_t rl = 0;
	const char *t;
	int rc = -1;

	if (!json_is_object(j) || name == NULL)
		goto done;
	if (strcmp(name, "chunk") != 0) {
		/* an exception frame */
		const char *msg = xl_str(j, "message");

		rc = xl_stream_error(DIA_ANTHROPIC, strstr(name, "hrottl") ?
		    "rate_limit_error" : strstr(name, "alidation") ?
		    "invalid_request_error" : "api_error", msg ? msg :
		    "the provider's stream failed", out);
		s->done = rc == 0;
		goto done;
	}
	b = json_object_get(j, "bytes");
	if (!json_is_string(b) ||
	    (raw = malloc(3 * (json_string_length(b) / 4) + 3)) == NULL ||
	    evs_b64_decode(json_string_value(b), json_string_length(b), raw,
	    &rl) != 0 || (inner = json_loadb((const char *)raw, rl, 0,
	    NULL)) == NULL || (t = xl_str(inner, "type")) == NULL ||
	    strpbrk(t, "\r\n") != NULL)
		goto done;
	if (strcmp(t, "message_start") == 0 && s->model != NULL) {
		json_t *m = json_object_get(inner, "message");
		if (json_is_object(m))
			json_object_set_new(m, "model", json_string(s->model));
		rc = xl_sse(out, t, json_incref(inner));
	} else {
		rc = xl_buf_adds(out, "event: ");
		if (rc == 0) rc = xl_buf_adds(out, t);
		if (rc == 0) rc = xl_buf_adds(out, "\ndata: ");
		if (rc == 0) rc = xl_buf_json(out, inner);
		if (rc == 0) rc = xl_buf_adds(out, "\n\n");
	}
	if (strcmp(t, "message_stop") == 0) {
		s->finished = 1;
		s->done = 1;
	} else if (strcmp(t, "error") == 0)
		s->done = 1;
done:
	free(raw);
	json_decref(inner);
	json_decref(j);
	return rc;
}

void
xl_an_br_end(struct xl_stream *s, int ok, struct xl_buf *out)
{
	if (!(ok && s->finished))
		xl_stream_error(DIA_ANTHROPIC, "api_error", "the provider's "
		    "stream ended before the answer was complete", out);
}
