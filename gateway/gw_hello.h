/*
 * gateway/gw_hello: what a TLS ClientHello offers in ALPN, read from the
 * bytes peeked at before TLS starts (gw_tls.c decides by it which code
 * serves the connection).  A pure parser of a stranger's bytes: every
 * length is checked against what is present before it is used.
 */
#ifndef SWB_GW_HELLO_H
#define SWB_GW_HELLO_H

#include <stddef.h>

enum {
	GW_HELLO_MORE = 0,	/* the first record has not all arrived */
	GW_HELLO_H1,		/* a whole ClientHello that does not offer h2 */
	GW_HELLO_H2,		/* a ClientHello that offers h2 */
	GW_HELLO_OTHER,		/* not one parseable ClientHello record */
};

/* The verdict on p[0..n); MORE with *need the bytes its first record
 * takes (more than n).  Never reads past n. */
int gw_tls_hello(const unsigned char *p, size_t n, size_t *need);

#endif
