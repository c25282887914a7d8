/*
 * lib/tokest: the cheap token estimate the hub's and the agent's rate
 * limiters charge a request with before it is sent upstream (the real
 * usage is only known at its end).  Estimate = body bytes / 4 (about four
 * bytes per token of English text and JSON) + the completion budget the
 * request names (max_completion_tokens, else max_tokens), when it does.
 */
#ifndef SWB_TOKEST_H
#define SWB_TOKEST_H

#include <stddef.h>
#include <stdint.h>
#include "lib/jscan.h"

/* From a body's max_completion_tokens and max_tokens members, read from
 * checked text ({NULL, 0}: absent, or a body that is not JSON: its bytes
 * only).  The gateway and agentd read them in their check's pass. */
int64_t tokest_budget(size_t body_len, struct jscan_v max_completion_tokens,
    struct jscan_v max_tokens);
/* The prompt alone: body bytes / 4, no completion budget — the input of
 * a stream cut short (usage_estimate_cut), the same on hub and agent. */
int64_t tokest_prompt(size_t body_len);

#endif
