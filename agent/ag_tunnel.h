/*
 * agent/ag_tunnel: agentd's side of the tunnel — dials OUT to the hub
 * over TLS, refuses a hub whose certificate matches no pin (during the TLS
 * handshake, before any byte of ours is sent), answers the challenge with
 * the agent's Ed25519 key bound to this TLS session, announces channels
 * (never keys), answers pings and echoes, and reconnects after any loss
 * with capped exponential back-off and jitter.
 *
 * One ag_tunnel (one lws context, one thread) can carry several links, so
 * a test swarm can run many agents in one process; agentd runs one.
 */
#ifndef SWB_AG_TUNNEL_H
#define SWB_AG_TUNNEL_H

#include <stdint.h>
#include "agent/ag_conf.h"

struct ag_tunnel;

/* Hub URL, pins, CA and timings come from cf (kept by reference). */
struct ag_tunnel *ag_tunnel_new(const struct ag_conf *cf, char *err, size_t errlen);
/* Add one agent identity; channels are cf's.  0 or -1. */
int  ag_tunnel_add(struct ag_tunnel *t, uint64_t agent_id,
    const unsigned char sk[64]);
void ag_tunnel_free(struct ag_tunnel *t);
/* Its self-updater (agent/ag_update), for main's restart. */
struct ag_update *ag_tunnel_update(struct ag_tunnel *t);
/* Links welcomed by the hub right now. */
int  ag_tunnel_online(const struct ag_tunnel *t);
/* Service once (for callers that run their own loop). */
void ag_tunnel_service(struct ag_tunnel *t);
/* cf's channels were replaced (SIGHUP): fresh rate buckets, and every
 * online link announces the new set (the hub replaces the old one); no
 * link is dropped. */
void ag_tunnel_channels_changed(struct ag_tunnel *t);

#if SWB_TEST_BUILD
/*
 * Misbehaviours for the hub's tests (test builds only):
 *   AG_TEST_REPLAY  after the first welcome, reconnect and answer the new
 *                   challenge with the first connection's AUTH
 *   AG_TEST_JUNK    after the welcome, send bytes that are no frame
 *   AG_TEST_ORDER   after the welcome, send a second AUTH
 *   AG_TEST_GREEDY  send response data regardless of the stream's window
 */
enum ag_test_mode { AG_TEST_NONE, AG_TEST_REPLAY, AG_TEST_JUNK, AG_TEST_ORDER,
	AG_TEST_GREEDY };
void ag_tunnel_test_mode(struct ag_tunnel *t, enum ag_test_mode mode);
#endif

/* Back-off before attempt n (0-based): min*2^n capped at max, then a
 * uniformly random value in [d/2, d].  Exposed for tests. */
int64_t ag_backoff_ms(int64_t min_ms, int64_t max_ms, unsigned attempt,
    uint32_t rnd);

#endif
