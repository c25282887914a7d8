/*
 * agent/ag_probe: agentd learns its public address as the hub sees it —
 * an HTTPS GET /probe on the tunnel's host and port, over TLS pinned like
 * the tunnel (the same pins, checked in the verify callback), made in the
 * tunnel's own lws context and loop after each welcome.  The answer,
 * {"ip":"..."}, is logged, kept, and reported to the hub in a hello frame
 * (agent/ag_status).  lws thread only.
 */
#ifndef SWB_AG_PROBE_H
#define SWB_AG_PROBE_H

#include <stddef.h>
#include <stdint.h>
#include <libwebsockets.h>
#include "agent/ag_conf.h"

#define AG_PROBE_PATH	"/probe"
#define AG_PROBE_PROTOCOL "swb-probe"

struct ag_probe {
	const struct ag_conf *cf;
	struct lws *wsi;		/* the request in flight, or NULL */
	char body[256];			/* the answer while it arrives */
	size_t len;
	char ip[64];			/* the last address learnt; "" none */
	int64_t at_ms;			/* wall ms it was learnt */
	/* Called once per probe with the address, or NULL on failure. */
	void (*done)(void *arg, const char *ip);
	void *arg;
};

/* The lws protocol the probe runs on; the tunnel lists it in its context. */
int ag_probe_callback(struct lws *wsi, enum lws_callback_reasons reason,
    void *user, void *in, size_t len);
/* Start one probe unless one is in flight.  0, or -1 when it could not
 * start (done is not called then). */
int ag_probe_start(struct ag_probe *p, struct lws_context *ctx);
/* 1 when cert's key matches one of cf's pins. */
int ag_pins_match(const struct ag_conf *cf, X509 *cert);
/* A client's PERFORM_SERVER_CERT_VERIFICATION answer: 0 (accepted) when
 * the leaf's key matches a pin, else 1 with the chain rejected. */
int ag_pins_verify(const struct ag_conf *cf, X509_STORE_CTX *x);

#endif
