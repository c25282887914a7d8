/*
 * lib/tokest: the pre-call token estimate of a chat request (see tokest.h).
 */
#include "lib/tokest.h"

int64_t
tokest_budget(size_t body_len, struct jscan_v max_completion_tokens,
    struct jscan_v max_tokens)
{
	int64_t est = (int64_t)(body_len / 4), m;

	if (jscan_integer(max_completion_tokens, &m) != 0 &&
	    jscan_integer(max_tokens, &m) != 0)
		return est;
	if (m > 0 && m < INT64_C(1) << 40)
		est += m;
	return est;
}

int64_t
tokest_scan(size_t body_len, struct jscan_v root)
{
	static const char *const keys[] = {
		"max_completion_tokens", "max_tokens"
	};
	struct jscan_v v[2] = { { NULL, 0 }, { NULL, 0 } };

	if (jscan_type(root) == JS_OBJECT)
		jscan_getv(root, keys, 2, v);
	return tokest_budget(body_len, v[0], v[1]);
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
