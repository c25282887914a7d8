/*
 * gateway/gw_tls: which code serves a TLS connection on the user port
 * ([gateway] cert/key).  A client whose ClientHello offers HTTP/2 (ALPN
 * "h2") is served by libwebsockets (gw_lws.c: HTTP/2, or HTTP/1.1 when
 * it negotiates that).  Any other client speaks HTTP/1.1: it is served by
 * the plain port's code (gw_h1.c: the same parser, limits, pipelining and
 * WebSocket upgrade for Realtime), libwebsockets doing only the TLS, on a
 * second vhost with the same certificate whose ALPN offers "http/1.1"
 * alone.  WebSocket clients (browsers, Node's ws, the SDKs) open their
 * upgrade connections without offering h2, so Realtime works over TLS
 * exactly as on the plain port: token checked before the 101, the same
 * relay, back-pressure and billing.
 *
 * The ClientHello is only peeked at (MSG_PEEK; gw_hello.c reads its
 * ALPN): TLS itself is lws's.  A
 * connection whose hello has not all arrived waits as a raw file whose
 * SO_RCVLOWAT is the hello's size (no wake-up until it is there), at most
 * the header timeout; anything that is not a parseable hello in one
 * record goes to lws as before (which refuses what is not TLS).
 */
#include "gateway/gw.h"
#include "gateway/gw_hello.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include "lib/log.h"

#define HELLO_MAX (5 + 16384)	/* one TLS record */

static struct lws_vhost *h1_vh;	/* TLS for gw_h1: ALPN http/1.1 only */

/* Hand fd to the code that serves it; NULL when lws would not take it. */
static struct lws *
hand_over(struct child_lws *cl, int fd, int verdict)
{
	lws_sock_file_fd_type u;
	int one = 1;

	(void)setsockopt(fd, SOL_SOCKET, SO_RCVLOWAT, &one, sizeof(one));
	if (verdict != GW_HELLO_H1 || h1_vh == NULL)
		return lws_adopt_socket_vhost(cl->vh, fd);
	u.sockfd = fd;
	return lws_adopt_descriptor_vhost(h1_vh, LWS_ADOPT_SOCKET |
	    LWS_ADOPT_ALLOW_SSL, u, "swb-h1", NULL);
}

/* What has arrived of the hello: a verdict, or MORE with *need; -1 when
 * the peer is gone.  *got: the bytes there. */
static int
peek_hello(int fd, size_t *need, size_t *got)
{
	static unsigned char buf[HELLO_MAX];
	ssize_t n = recv(fd, buf, sizeof(buf), MSG_PEEK | MSG_DONTWAIT);

	*got = n > 0 ? (size_t)n : 0;
	if (n == 0)
		return -1;				/* gone */
	if (n < 0)
		return errno == EAGAIN || errno == EWOULDBLOCK ||
		    errno == EINTR ? (*need = 5, GW_HELLO_MORE) : -1;
	return gw_tls_hello(buf, (size_t)n, need);
}

/* A connection waiting for the rest of its hello (the raw file's). */
static int
cb_hello(struct lws *wsi, enum lws_callback_reasons reason, void *user,
    void *in, size_t len)
{
	struct child_lws *cl = lws_context_user(lws_get_context(wsi));
	int fd, nfd, v, lowat = 1;
	socklen_t ll = sizeof(lowat);
	size_t need, got;

	if (reason != LWS_CALLBACK_RAW_RX_FILE)
		return 0;
	fd = lws_get_socket_fd(wsi);
	(void)getsockopt(fd, SOL_SOCKET, SO_RCVLOWAT, &lowat, &ll);
	v = peek_hello(fd, &need, &got);
	if (v == GW_HELLO_MORE) {
		/* Readable with less than the low-water mark: the peer shut
		 * its side (or failed) before its hello was whole. */
		if (got > 0 && got < (size_t)lowat)
			return -1;
		lowat = (int)need;
		(void)setsockopt(fd, SOL_SOCKET, SO_RCVLOWAT, &lowat,
		    sizeof(lowat));
		return 0;
	}
	if (v < 0)
		return -1;
	/* lws closes this wsi's fd: the connection lives on in a copy. */
	if ((nfd = fcntl(fd, F_DUPFD_CLOEXEC, 0)) < 0) {
		log_warn("user port: cannot keep a TLS connection: %s",
		    strerror(errno));
		return -1;
	}
	if (hand_over(cl, nfd, v) == NULL) {
		log_warn("user port: cannot adopt a TLS connection");
		close(nfd);
	}
	return -1;
}

struct lws_protocols
gw_tls_hello_protocol(void)
{
	struct lws_protocols p = { "swb-hello", cb_hello, 0, 0, 0, NULL, 0 };
	return p;
}

struct lws *
gw_tls_adopt(struct child_lws *cl, int fd)
{
	lws_sock_file_fd_type u;
	struct lws *wsi;
	size_t need, got;
	int v = peek_hello(fd, &need, &got), lowat, secs;

	if (v != GW_HELLO_MORE)
		return hand_over(cl, fd, v < 0 ? GW_HELLO_OTHER : v);
	lowat = (int)need;
	(void)setsockopt(fd, SOL_SOCKET, SO_RCVLOWAT, &lowat, sizeof(lowat));
	u.filefd = fd;
	wsi = lws_adopt_descriptor_vhost(cl->vh, LWS_ADOPT_RAW_FILE_DESC, u,
	    "swb-hello", NULL);
	if (wsi != NULL) {
		secs = (int)((gw_env()->conf.gw_header_timeout_ms + 999) / 1000);
		lws_set_timeout(wsi, PENDING_TIMEOUT_ESTABLISH_WITH_SERVER,
		    secs > 0 ? secs : 1);
	}
	return wsi;
}

int
gw_tls_init(struct child_lws *cl)
{
	static struct lws_protocols protocols[2];
	struct lws_context_creation_info info;
	const struct hub_conf *c = &gw_env()->conf;

	protocols[0] = gw_h1_protocol();
	memset(&info, 0, sizeof(info));
	info.port = CONTEXT_PORT_NO_LISTEN_SERVER;
	info.options = LWS_SERVER_OPTION_EXPLICIT_VHOSTS |
	    LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;	/* else no TLS */
	info.protocols = protocols;
	info.vhost_name = "gateway-h1";
	info.ssl_cert_filepath = c->gw_cert;
	info.ssl_private_key_filepath = c->gw_key;
	info.alpn = "http/1.1";
	h1_vh = lws_create_vhost(cl->ctx, &info);
	if (h1_vh == NULL) {
		log_error("cannot create the gateway's HTTP/1.1 TLS vhost");
		return -1;
	}
	return 0;
}
