/*
 * master/admin_channels: the answer of `hubctl channels` — every channel
 * slot that is up, its live figures, and how the router scores it under
 * each strategy with the current [router] weights.  The master answers it
 * itself: it maps the scoreboard and links the router.
 */
#ifndef SWB_ADMIN_CHANNELS_H
#define SWB_ADMIN_CHANNELS_H

#include <jansson.h>
#include "child/hubconf.h"
#include "shm/sb.h"

/* {"ok":true,"now_ms":..,"weights":{..},"channels":[..]} (new reference). */
json_t *admin_channels_json(const struct sb *sb, const struct hub_conf *cf);

#endif
