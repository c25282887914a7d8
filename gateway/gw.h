/*
 * gateway/gw: shared declarations of the gateway worker's modules.
 */
#ifndef SWB_GW_H
#define SWB_GW_H

#include "master/child_lws.h"

void gw_set_env(struct child_env *env);
struct child_env *gw_env(void);
/* The HTTP protocol entry of this worker's lws context. */
struct lws_protocols gw_http_protocol(void);
/* Requests being served right now (drain waits for 0). */
int gw_inflight(void);

#endif
