/*
 * gateway/gw_body: a JSON request body's root members that the route
 * parsers read (struct gw_body): checked and read in one pass by
 * lib/jscan, no tree built; a body that names one of them twice is
 * refused, so that the hub never reads one copy (the model it routes and
 * bills, whether it streams) while the provider reads the other.
 */
#include "gateway/gw.h"

#include <stdio.h>
#include <string.h>
#include "lib/tokest.h"

/* The members of struct gw_body, by enum gw_body_key. */
static const char *const body_keys[GW_BK_N] = {
	[GW_BK_MODEL] = "model", [GW_BK_STREAM] = "stream",
	[GW_BK_STREAM_OPTIONS] = "stream_options",
	[GW_BK_MAX_COMPLETION_TOKENS] = "max_completion_tokens",
	[GW_BK_MAX_TOKENS] = "max_tokens", [GW_BK_SECONDS] = "seconds",
};

int
gw_body_read(struct gw_body *b, const void *body, size_t len, char *msg,
    size_t msglen)
{
	int rc = jscan_check_getv_once(body, len, &b->root, body_keys,
	    GW_BK_N, b->f);

	if (rc == -1 || jscan_type(b->root) != JS_OBJECT)
		return -1;
	if (rc == 0)
		return 0;
	snprintf(msg, msglen, "The JSON body of your request names a member "
	    "more than once.");
	/* Which one: the refusal's path only, a pass a key. */
	for (int k = 0; k < GW_BK_N; k++) {
		struct jscan_v root, v;

		if (jscan_check_getv_once(body, len, &root, &body_keys[k], 1,
		    &v) == -2) {
			snprintf(msg, msglen, "The JSON body of your request "
			    "names `%s` more than once.", body_keys[k]);
			break;
		}
	}
	return -2;
}

int64_t
gw_body_est(const struct gw_req *r, const struct gw_body *b)
{
	static const struct jscan_v none = { NULL, 0 };

	return tokest_budget(r->body_len,
	    b != NULL ? b->f[GW_BK_MAX_COMPLETION_TOKENS] : none,
	    b != NULL ? b->f[GW_BK_MAX_TOKENS] : none);
}

int
gw_body_str(struct jscan_v v, char *buf, size_t cap)
{
	size_t n;

	if (jscan_type(v) != JS_STRING)
		return 0;
	n = jscan_string_copy(v, buf, cap);
	return n > 0 && n < cap && strlen(buf) == n;
}

