/*
 * child/child_peer: Unix-socket client connections between children.
 */
#include "child/child_peer.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include "lib/clock.h"
#include "lib/log.h"

/* Every started peer, in the order child_peer_start was called: the
 * order child_peer_flush writes them in (a gateway starts billing's
 * before the tunnel's, so a reservation to billing goes out before the
 * relay it allows, gateway/gw_token.c). */
#define CHILD_MAX_PEERS	8
static struct child_peer *peers[CHILD_MAX_PEERS];
static int npeers;

static void
on_rearm(lws_sorted_usec_list_t *sul)
{
	struct child_rearm *r = lws_container_of(sul, struct child_rearm, sul);

	if (r->wsi != NULL)
		lws_callback_on_writable(r->wsi);
}

void
child_rearm(struct child_rearm *r, struct lws *wsi)
{
	r->wsi = wsi;
	lws_sul_schedule(lws_get_context(wsi), 0, &r->sul, on_rearm, 1);
}

void
child_rearm_cancel(struct child_rearm *r)
{
	lws_sul_cancel(&r->sul);
	r->wsi = NULL;
}

static void
peer_down(struct child_peer *p, const char *why)
{
	if (p->conn.fd >= 0)
		log_warn("connection to %s lost: %s", p->sock, why);
	msg_conn_free(&p->conn);	/* fd = -1; lws closes the socket */
	p->stuck = 0;
	child_rearm_cancel(&p->rearm);
	p->wsi = NULL;
	p->next_dial = clock_mono_ms() + 100;
	if (p->on_down != NULL)
		p->on_down(p);
}

static void
dial(struct child_peer *p)
{
	struct sockaddr_un sun;
	lws_sock_file_fd_type u;
	int fd;

	p->next_dial = clock_mono_ms() + 200;
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (hub_sock_path(&p->env->conf, p->sock, sun.sun_path,
	    sizeof(sun.sun_path)) != 0)
		return;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return;
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) != 0) {
		log_debug("%s not reachable yet: %s", p->sock, strerror(errno));
		close(fd);
		return;
	}
	u.filefd = fd;
	p->wsi = lws_adopt_descriptor_vhost(p->vh, LWS_ADOPT_RAW_FILE_DESC, u,
	    "swb-peer", NULL);
	if (p->wsi == NULL) {
		close(fd);
		return;
	}
	lws_set_opaque_user_data(p->wsi, p);
	msg_conn_init(&p->conn, fd, p->rules);
	log_debug("connected to %s", p->sock);
	if (p->on_up != NULL)
		p->on_up(p);
}

void
child_peer_start(struct child_peer *p, struct child_env *env,
    struct lws_vhost *vh)
{
	p->env = env;
	p->vh = vh;
	p->conn.fd = -1;
	if (npeers == CHILD_MAX_PEERS)
		fatal("more than %d peers", CHILD_MAX_PEERS);
	peers[npeers++] = p;
	dial(p);
}

void
child_peer_tick(struct child_peer *p)
{
	if (p->conn.fd < 0 && clock_mono_ms() >= p->next_dial)
		dial(p);
}

int
child_peer_up(const struct child_peer *p)
{
	return p->conn.fd >= 0;
}

/* Into p's output: a header struct and a payload as one message. */
static int
enqueue(struct child_peer *p, uint16_t type, uint64_t reqid,
    const void *a, size_t alen, const void *b, size_t blen)
{
	unsigned char *buf;
	int rc;

	if (p->conn.fd < 0)
		return -1;
	if (blen == 0)
		return msg_enqueue(&p->conn, type, reqid, a, alen) != 0 ? -1 : 0;
	buf = malloc(alen + blen);
	if (buf == NULL)
		return -1;
	memcpy(buf, a, alen);
	memcpy(buf + alen, b, blen);
	rc = msg_enqueue(&p->conn, type, reqid, buf, alen + blen);
	free(buf);
	return rc != 0 ? -1 : 0;
}

int
child_peer_send2(struct child_peer *p, uint16_t type, uint64_t reqid,
    const void *a, size_t alen, const void *b, size_t blen)
{
	if (enqueue(p, type, reqid, a, alen, b, blen) != 0)
		return -1;
	p->queued = 1;
	return 0;
}

int
child_peer_backlog(const struct child_peer *p)
{
	return p->stuck;
}

void
child_peer_flush(void)
{
	for (int i = 0; i < npeers; i++) {
		struct child_peer *p = peers[i];

		if (!p->queued)
			continue;
		p->queued = 0;
		/* Down since (peer_down): nothing to write any more. */
		if (p->conn.fd < 0 || p->stuck)
			continue;	/* a stuck one is written when writable */
		if (msg_flush(&p->conn) == 0) {
			p->stuck = 1;
			lws_callback_on_writable(p->wsi);
		}
	}
}

void
child_peer_drop(struct child_peer *p, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(p->drop_why, sizeof(p->drop_why), fmt, ap);
	va_end(ap);
	if (p->drop_why[0] == '\0')
		snprintf(p->drop_why, sizeof(p->drop_why), "protocol violation");
}

int
child_peer_send(struct child_peer *p, uint16_t type, uint64_t reqid,
    const void *data, size_t len)
{
	return child_peer_send2(p, type, reqid, data, len, NULL, 0);
}

static int
cb_peer(struct lws *wsi, enum lws_callback_reasons reason, void *user,
    void *in, size_t len)
{
	struct child_peer *p = lws_get_opaque_user_data(wsi);
	struct msg m;
	char err[256];
	int rc;

	if (p == NULL || p->wsi != wsi)
		return reason == LWS_CALLBACK_RAW_RX_FILE ? -1 : 0;
	switch (reason) {
	case LWS_CALLBACK_RAW_RX_FILE:
		for (;;) {
			rc = msg_fill(&p->conn);
			if (rc == -2)
				break;
			if (rc <= 0) {
				peer_down(p, rc == 0 ? "closed" : strerror(errno));
				return -1;
			}
			if (p->conn.drained)
				break;
		}
		p->drop_why[0] = '\0';
		while ((rc = msg_next(&p->conn, &m, err, sizeof(err))) == 1) {
			p->on_msg(p, &m);
			if (p->drop_why[0] != '\0') {
				snprintf(err, sizeof(err), "%s", p->drop_why);
				rc = -1;
				break;
			}
		}
		if (rc < 0) {
			/* Log, drop, re-dial: never die of a peer's message. */
			log_warn("%s broke the protocol: %s; dropping the "
			    "connection", p->sock, err);
			peer_down(p, "protocol violation");
			return -1;
		}
		return 0;
	case LWS_CALLBACK_RAW_WRITEABLE_FILE:
		rc = msg_flush(&p->conn);
		p->stuck = rc == 0;
		if (rc == 0)
			child_rearm(&p->rearm, wsi);	/* not on_writable here */
		else if (rc < 0) {
			peer_down(p, strerror(errno));
			return -1;
		}
		return 0;
	case LWS_CALLBACK_RAW_CLOSE_FILE:
		peer_down(p, "closed");
		return 0;
	default:
		return 0;
	}
}

struct lws_protocols
child_peer_protocol(void)
{
	struct lws_protocols pr = { "swb-peer", cb_peer, 0, 0, 0, NULL, 0 };
	return pr;
}
