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
tokest_prompt(size_t body_len)
{
	return (int64_t)(body_len / 4);
}
