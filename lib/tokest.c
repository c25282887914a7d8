/*
 * lib/tokest: the pre-call token estimate of a chat request (see tokest.h).
 */
#include "lib/tokest.h"

int64_t
tokest_json(size_t body_len, const json_t *o)
{
	int64_t est = (int64_t)(body_len / 4);
	const json_t *m = NULL;

	if (json_is_object(o)) {
		m = json_object_get(o, "max_completion_tokens");
		if (!json_is_integer(m))
			m = json_object_get(o, "max_tokens");
	}
	if (json_is_integer(m) && json_integer_value(m) > 0 &&
	    json_integer_value(m) < INT64_C(1) << 40)
		est += json_integer_value(m);
	return est;
}

int64_t
tokest_body(const void *body, size_t len)
{
	json_error_t err;
	json_t *o = body != NULL && len > 0 ?
	    json_loadb(body, len, 0, &err) : NULL;
	int64_t est = tokest_json(len, o);

	json_decref(o);
	return est;
}

int64_t
tokest_prompt(size_t body_len)
{
	return (int64_t)(body_len / 4);
}
