/*
 * lib/msg: buffering, framing and validation of inter-process messages.
 */
#include "lib/msg.h"
#include "lib/clock.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>

void
msg_conn_init(struct msg_conn *c, int fd, const struct msg_rules *rules)
{
	memset(c, 0, sizeof(*c));
	c->fd = fd;
	c->rules = rules;
}

void
msg_conn_free(struct msg_conn *c)
{
	free(c->in.buf);
	free(c->out.buf);
	free(c->cur);
	memset(c, 0, sizeof(*c));
	c->fd = -1;
}

const char *
msg_type_name(const struct msg_rules *r, unsigned type)
{
	if (type < r->rx.ntypes && r->rx.rule[type].name != NULL)
		return r->rx.rule[type].name;
	if (type < r->tx.ntypes && r->tx.rule[type].name != NULL)
		return r->tx.rule[type].name;
	return "unknown";
}

int
msg_check_hdr(const struct msg_rules *r, const struct msg_hdr *h, char *err,
    size_t errlen)
{
	if (msg_check_dir(&r->rx, h, err, errlen) == 0)
		return 0;
	if (h->version == MSG_VERSION && h->flags == 0 &&
	    h->type < r->tx.ntypes && r->tx.rule[h->type].name != NULL &&
	    (h->type >= r->rx.ntypes || r->rx.rule[h->type].name == NULL))
		snprintf(err, errlen, "%s message arrived at the end that sends "
		    "it", r->tx.rule[h->type].name);
	return -1;
}

int
msg_check_dir(const struct msg_dir *r, const struct msg_hdr *h, char *err,
    size_t errlen)
{
	const struct msg_rule *rule;

	if (h->version != MSG_VERSION) {
		snprintf(err, errlen, "message version %u, expected %u",
		    h->version, (unsigned)MSG_VERSION);
		return -1;
	}
	if (h->flags != 0) {
		snprintf(err, errlen, "message flags 0x%x are reserved", h->flags);
		return -1;
	}
	if (h->type >= r->ntypes || r->rule[h->type].name == NULL) {
		snprintf(err, errlen, "message type %u is not allowed here", h->type);
		return -1;
	}
	rule = &r->rule[h->type];
	if (h->len < rule->min || h->len > rule->max || h->len > MSG_MAX) {
		snprintf(err, errlen, "%s message of %u bytes, expected %u..%u",
		    rule->name, h->len, rule->min, rule->max);
		return -1;
	}
	return 0;
}

static int
buf_reserve(struct msg_buf *b, size_t more)
{
	size_t need, cap;
	unsigned char *nb;

	if (b->off > 0 && b->off == b->len) {
		b->off = b->len = 0;
	} else if (b->off > 0 && b->cap - b->len < more) {
		memmove(b->buf, b->buf + b->off, b->len - b->off);
		b->len -= b->off;
		b->off = 0;
	}
	need = b->len + more;
	if (need <= b->cap)
		return 0;
	cap = b->cap ? b->cap : 4096;
	while (cap < need)
		cap *= 2;
	nb = realloc(b->buf, cap);
	if (nb == NULL)
		return -1;
	b->buf = nb;
	b->cap = cap;
	return 0;
}

int
msg_enqueue(struct msg_conn *c, uint16_t type, uint64_t reqid,
    const void *payload, size_t len)
{
	struct msg_hdr h = { (uint32_t)len, type, MSG_VERSION, 0, reqid };
	char err[128];

	if (len > MSG_MAX || msg_check_dir(&c->rules->tx, &h, err, sizeof(err)) != 0)
		return -1;
	if (c->out.len - c->out.off + MSG_HDR_SIZE + len > MSG_OUT_MAX)
		return -1;
	if (buf_reserve(&c->out, MSG_HDR_SIZE + len) != 0)
		return -1;
	memcpy(c->out.buf + c->out.len, &h, MSG_HDR_SIZE);
	if (len > 0)
		memcpy(c->out.buf + c->out.len + MSG_HDR_SIZE, payload, len);
	c->out.len += MSG_HDR_SIZE + len;
	return 0;
}

int
msg_pending(const struct msg_conn *c)
{
	return c->out.len > c->out.off;
}

int
msg_flush(struct msg_conn *c)
{
	while (c->out.off < c->out.len) {
		ssize_t n = send(c->fd, c->out.buf + c->out.off,
		    c->out.len - c->out.off, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return 0;
			return -1;
		}
		c->out.off += (size_t)n;
	}
	c->out.off = c->out.len = 0;
	return 1;
}

int
msg_fill(struct msg_conn *c)
{
	ssize_t n;

	if (buf_reserve(&c->in, 65536) != 0)
		return -1;
	do {
		n = recv(c->fd, c->in.buf + c->in.len, c->in.cap - c->in.len,
		    MSG_DONTWAIT);
	} while (n < 0 && errno == EINTR);
	if (n < 0)
		return (errno == EAGAIN || errno == EWOULDBLOCK) ? -2 : -1;
	c->drained = (size_t)n < c->in.cap - c->in.len;
	c->in.len += (size_t)n;
	return (int)n;
}

int
msg_next(struct msg_conn *c, struct msg *m, char *err, size_t errlen)
{
	struct msg_hdr h;
	size_t avail = c->in.len - c->in.off;

	free(c->cur);
	c->cur = NULL;
	if (avail < MSG_HDR_SIZE)
		return 0;
	memcpy(&h, c->in.buf + c->in.off, MSG_HDR_SIZE);
	if (msg_check_hdr(c->rules, &h, err, errlen) != 0)
		return -1;
	if (avail < MSG_HDR_SIZE + (size_t)h.len)
		return 0;
	c->cur = malloc((size_t)h.len + 1);
	if (c->cur == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	memcpy(c->cur, c->in.buf + c->in.off + MSG_HDR_SIZE, h.len);
	c->cur[h.len] = '\0';
	c->in.off += MSG_HDR_SIZE + h.len;
	if (c->in.off == c->in.len)
		c->in.off = c->in.len = 0;
	m->hdr = h;
	m->data = c->cur;
	return 1;
}

static int
wait_fd(int fd, short ev, int64_t deadline)
{
	struct pollfd p = { fd, ev, 0 };
	int64_t left = deadline - clock_mono_ms();
	int rc;

	if (left < 0)
		left = 0;
	do {
		rc = poll(&p, 1, (int)left);
	} while (rc < 0 && errno == EINTR);
	return rc;
}

int
msg_send_blocking(int fd, const struct msg_rules *r, uint16_t type,
    uint64_t reqid, const void *payload, size_t len)
{
	struct msg_conn c;
	int rc;

	msg_conn_init(&c, fd, r);
	if (msg_enqueue(&c, type, reqid, payload, len) != 0) {
		msg_conn_free(&c);
		return -1;
	}
	while ((rc = msg_flush(&c)) == 0)
		if (wait_fd(fd, POLLOUT, clock_mono_ms() + 5000) <= 0)
			break;
	msg_conn_free(&c);
	return rc == 1 ? 0 : -1;
}

static int
read_exact(int fd, void *p, size_t len, int64_t deadline)
{
	size_t got = 0;

	while (got < len) {
		ssize_t n;
		if (wait_fd(fd, POLLIN, deadline) <= 0)
			return -1;
		n = recv(fd, (char *)p + got, len - got, MSG_DONTWAIT);
		if (n == 0)
			return got == 0 ? 0 : -1;
		if (n < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			return -1;
		}
		got += (size_t)n;
	}
	return 1;
}

int
msg_recv_blocking(int fd, const struct msg_rules *r, struct msg *m,
    int timeout_ms, char *err, size_t errlen)
{
	int64_t deadline = clock_mono_ms() + timeout_ms;
	int rc;

	m->data = NULL;
	rc = read_exact(fd, &m->hdr, MSG_HDR_SIZE, deadline);
	if (rc <= 0) {
		snprintf(err, errlen, rc == 0 ? "connection closed" :
		    "no answer within %d ms", timeout_ms);
		return rc;
	}
	if (msg_check_hdr(r, &m->hdr, err, errlen) != 0)
		return -1;
	m->data = malloc((size_t)m->hdr.len + 1);
	if (m->data == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	if (m->hdr.len > 0 && read_exact(fd, m->data, m->hdr.len, deadline) != 1) {
		snprintf(err, errlen, "truncated %s message",
		    msg_type_name(r, m->hdr.type));
		free(m->data);
		m->data = NULL;
		return -1;
	}
	m->data[m->hdr.len] = '\0';
	return 1;
}
