/*
 * agent/ag_bucket: agentd's own guard of its provider's limits — one
 * in-memory token bucket pair per channel (requests and tokens), filled at
 * the channel's rpm/tpm per minute up to one minute's worth.  A request
 * the hub sends while a bucket is empty is answered 429 by the agent
 * without calling the provider.  lws thread only; time comes in.
 */
#ifndef SWB_AG_BUCKET_H
#define SWB_AG_BUCKET_H

#include <stdint.h>

struct ag_bucket {
	int64_t rpm, tpm;	/* 0 = that bucket is off */
	/* Levels in 1/60000 units: a limit L per minute refills L units a ms
	 * and one request (or token) costs 60000. */
	int64_t req_level, tok_level;
	int64_t last_ms;
};

enum ag_bucket_result { AG_BUCKET_OK = 0, AG_BUCKET_REQUESTS, AG_BUCKET_TOKENS };

/* Full buckets at now_ms. */
void ag_bucket_init(struct ag_bucket *b, int64_t rpm, int64_t tpm,
    int64_t now_ms);
/*
 * Take one request and est tokens (an estimate larger than tpm costs tpm,
 * so such a request waits for a full bucket instead of never passing).
 * AG_BUCKET_OK, or which bucket is short with *retry_s = whole seconds
 * until it would hold enough (>= 1); nothing is taken then.
 */
enum ag_bucket_result ag_bucket_take(struct ag_bucket *b, int64_t est,
    int64_t now_ms, int64_t *retry_s);
/* Whole requests (tokens: tokens) the bucket would hold at now_ms, taking
 * nothing; -1 when that bucket is off. */
int64_t ag_bucket_room(const struct ag_bucket *b, int tokens, int64_t now_ms);

#endif
