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
tokest_scan(size_t body_len, struct jscan_v root)
{
	static const char *const keys[] = {
		"max_completion_tokens", "max_tokens"
	};
	struct jscan_v v[2];
	int64_t est = (int64_t)(body_len / 4), m;

	if (jscan_type(root) != JS_OBJECT)
		return est;
	jscan_getv(root, keys, 2, v);
	if (jscan_integer(v[0], &m) != 0 && jscan_integer(v[1], &m) != 0)
		return est;
	if (m > 0 && m < INT64_C(1) << 40)
		est += m;
	return est;
}

int64_t
tokest_body(const void *body, size_t len)
{
	struct jscan_v root = { NULL, 0 };

	if (body == NULL || len == 0 || jscan_check(body, len, &root) != 0)
		root.p = NULL, root.n = 0;
	return tokest_scan(len, root);
}

int64_t
tokest_prompt(size_t body_len)
{
	return (int64_t)(body_len / 4);
}
