/*
 * admin/adm_main: the admin child's loop — its listener, connections (plain
 * or TLS, non-blocking), reading one HTTP/1.1 request per connection,
 * writing the answer, and the master connection that carries commands
 * (IPC_ADMIN_HTTP) and answers (IPC_ADMIN_HTTP_RESP).  One request per
 * connection, answered with Connection: close.
 */
#include "admin/adm.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <sys/socket.h>
#include <openssl/err.h>
#include "lib/hash.h"
#include "lib/log.h"

static struct child_env *env_;
static SSL_CTX *tls;
static struct adm_conn conns[ADM_MAX_CONNS];
static uint64_t next_reqid;

struct child_env *
adm_env(void)
{
	return env_;
}

void
adm_buf_add(struct adm_buf *b, const void *p, size_t n)
{
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 4096;
		char *q;
		while (cap < b->len + n + 1)
			cap *= 2;
		if ((q = realloc(b->p, cap)) == NULL)
			return;		/* the answer is cut; logged by caller */
		b->p = q;
		b->cap = cap;
	}
	memcpy(b->p + b->len, p, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static void
conn_close(struct adm_conn *c)
{
	if (c->ssl != NULL) {
		SSL_shutdown(c->ssl);
		SSL_free(c->ssl);
	}
	if (c->fd >= 0)
		close(c->fd);
	free(c->in.p);
	free(c->out.p);
	json_decref(c->body);
	memset(c, 0, sizeof(*c));
	c->fd = -1;
}

static const char *
reason(unsigned status)
{
	switch (status) {
	case 200: return "OK";
	case 201: return "Created";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 408: return "Request Timeout";
	case 413: return "Payload Too Large";
	case 431: return "Request Header Fields Too Large";
	case 503: return "Service Unavailable";
	case 504: return "Gateway Timeout";
	default: return status < 500 ? "Client Error" : "Server Error";
	}
}

/*
 * The head (and a body).  len (size_t)-1: a streamed body with no length,
 * ended by the close; later pieces go with adm_buf_add on c->out.
 */
void
adm_send(struct adm_conn *c, unsigned status, const char *ctype,
    const char *body, size_t len, int last)
{
	char head[512];
	int n;

	if (len == (size_t)-1)
		n = snprintf(head, sizeof(head), "HTTP/1.1 %u %s\r\nContent-Type: "
		    "%s\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n",
		    status, reason(status), ctype);
	else
		n = snprintf(head, sizeof(head), "HTTP/1.1 %u %s\r\nContent-Type: "
		    "%s\r\nContent-Length: %zu\r\nCache-Control: no-store\r\n"
		    "Connection: close\r\n%s\r\n", status, reason(status), ctype,
		    len, status == 401 ? "WWW-Authenticate: Bearer\r\n" : "");
	adm_buf_add(&c->out, head, (size_t)n);
	if (body != NULL && len != (size_t)-1)
		adm_buf_add(&c->out, body, len);
	c->close_when_sent = last;
}

void
adm_send_error(struct adm_conn *c, unsigned status, const char *msg)
{
	json_t *o = json_pack("{s:b, s:s}", "ok", 0, "error", msg);
	char *s = json_dumps(o, JSON_COMPACT);

	json_decref(o);
	adm_send(c, status, "application/json", s ? s : "{}", s ? strlen(s) : 2, 1);
	free(s);
}

int
adm_ask(struct adm_conn *c, const char *argv, size_t len)
{
	char *buf;
	size_t hl = strlen(c->keyhash);
	int rc;

	if (len + hl + 1 > IPC_ADMIN_MAX)
		return -1;
	if ((buf = malloc(hl + 1 + len)) == NULL)
		return -1;
	memcpy(buf, c->keyhash, hl + 1);
	memcpy(buf + hl + 1, argv, len);
	c->reqid = ++next_reqid;
	rc = msg_enqueue(&env_->master, IPC_ADMIN_HTTP, c->reqid, buf,
	    hl + 1 + len);
	free(buf);
	if (rc != 0)
		return -1;
	c->waiting = 1;
	child_master_flush(env_);
	return 0;
}

static void
on_answer(struct child_env *env, uint64_t id, const char *json, size_t len)
{
	for (int i = 0; i < ADM_MAX_CONNS; i++) {
		struct adm_conn *c = &conns[i];
		if (c->fd >= 0 && c->waiting && c->reqid == id) {
			c->waiting = 0;
			c->last_ms = clock_mono_ms();
			adm_answer(c, json, len);
			return;
		}
	}
}

/* ---- HTTP request head ------------------------------------------------ */

static int
hdr_eq(const char *line, size_t n, const char *name)
{
	size_t k = strlen(name);

	return n > k && line[k] == ':' && strncasecmp(line, name, k) == 0;
}

static void
hdr_value(const char *line, size_t n, const char *name, char *out, size_t olen)
{
	const char *v = line + strlen(name) + 1;
	const char *end = line + n;

	while (v < end && (*v == ' ' || *v == '\t'))
		v++;
	while (end > v && (end[-1] == ' ' || end[-1] == '\t'))
		end--;
	snprintf(out, olen, "%.*s", (int)(end - v), v);
}

/* 0 need more, 1 complete (routed), -1 answered with an error. */
static int
parse_request(struct adm_conn *c)
{
	char *eoh, *line, *sp1, *sp2, *qm, val[512];
	long long clen = 0;
	int have_auth = 0;

	if (c->head_len == 0) {
		if ((eoh = memmem(c->in.p, c->in.len, "\r\n\r\n", 4)) == NULL) {
			if (c->in.len > ADM_HEAD_MAX) {
				adm_send_error(c, 431, "request head too large");
				return -1;
			}
			return 0;
		}
		c->head_len = (size_t)(eoh - c->in.p) + 4;
		*eoh = '\0';
		line = c->in.p;
		/* request line: METHOD SP TARGET SP HTTP/1.x */
		if ((sp1 = strchr(line, ' ')) == NULL ||
		    (sp2 = strchr(sp1 + 1, ' ')) == NULL ||
		    (size_t)(sp1 - line) >= sizeof(c->method) ||
		    strncmp(sp2 + 1, "HTTP/1.", 7) != 0) {
			adm_send_error(c, 400, "malformed request line");
			return -1;
		}
		memcpy(c->method, line, (size_t)(sp1 - line));
		c->method[sp1 - line] = '\0';
		*sp2 = '\0';
		if ((qm = strchr(sp1 + 1, '?')) != NULL) {
			*qm = '\0';
			snprintf(c->query, sizeof(c->query), "%s", qm + 1);
		}
		if (strlen(sp1 + 1) >= sizeof(c->path)) {
			adm_send_error(c, 400, "path too long");
			return -1;
		}
		snprintf(c->path, sizeof(c->path), "%s", sp1 + 1);
		line = strstr(sp2 + 1, "\r\n");
		while (line != NULL) {
			char *next;
			size_t n;
			line += 2;
			next = strstr(line, "\r\n");
			n = next ? (size_t)(next - line) : strlen(line);
			if (hdr_eq(line, n, "content-length")) {
				char *end;
				hdr_value(line, n, "content-length", val, sizeof(val));
				errno = 0;
				clen = strtoll(val, &end, 10);
				if (errno || end == val || *end || clen < 0) {
					adm_send_error(c, 400, "bad Content-Length");
					return -1;
				}
			} else if (hdr_eq(line, n, "transfer-encoding")) {
				adm_send_error(c, 400, "chunked bodies are not "
				    "accepted here; send Content-Length");
				return -1;
			} else if (hdr_eq(line, n, "authorization") && !have_auth) {
				hdr_value(line, n, "authorization", val, sizeof(val));
				if (strncasecmp(val, "Bearer ", 7) == 0 && val[7]) {
					hash_sha256_hex(val + 7, strlen(val + 7),
					    c->keyhash);
					have_auth = 1;
				}
			}
			line = next;
		}
		if (clen > ADM_BODY_MAX) {
			adm_send_error(c, 413, "body too large");
			return -1;
		}
		c->body_len = (size_t)clen;
	}
	if (c->in.len < c->head_len + c->body_len)
		return 0;
	if (c->body_len > 0) {
		json_error_t jerr;
		c->body = json_loadb(c->in.p + c->head_len, c->body_len, 0, &jerr);
		if (c->body == NULL || !json_is_object(c->body)) {
			adm_send_error(c, 400, "the body must be a JSON object");
			return -1;
		}
	}
	c->reading = 0;
	adm_route(c);
	return 1;
}

/* ---- I/O ---------------------------------------------------------------- */

static void
conn_read(struct adm_conn *c)
{
	char buf[8192];
	ssize_t n;

	if (c->ssl != NULL && !c->handshaken) {
		int rc = SSL_accept(c->ssl);
		if (rc != 1) {
			int e = SSL_get_error(c->ssl, rc);
			if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
				c->want_write = e == SSL_ERROR_WANT_WRITE;
				return;
			}
			log_debug("admin: TLS handshake failed");
			conn_close(c);
			return;
		}
		c->handshaken = 1;
		c->want_write = 0;
	}
	for (;;) {
		if (c->ssl != NULL) {
			int rc = SSL_read(c->ssl, buf, sizeof(buf));
			if (rc <= 0) {
				int e = SSL_get_error(c->ssl, rc);
				if (e == SSL_ERROR_WANT_READ)
					break;
				if (e == SSL_ERROR_WANT_WRITE) {
					c->want_write = 1;
					break;
				}
				conn_close(c);
				return;
			}
			n = rc;
		} else {
			n = read(c->fd, buf, sizeof(buf));
			if (n < 0 && (errno == EAGAIN || errno == EINTR))
				break;
			if (n <= 0) {
				conn_close(c);
				return;
			}
		}
		c->last_ms = clock_mono_ms();
		if (!c->reading)
			continue;	/* bytes after the request: ignored */
		if (c->in.len + (size_t)n > ADM_HEAD_MAX + ADM_BODY_MAX) {
			adm_send_error(c, 413, "request too large");
			c->reading = 0;
			break;
		}
		adm_buf_add(&c->in, buf, (size_t)n);
	}
	if (c->reading && parse_request(c) < 0)
		c->reading = 0;
}

static void
conn_write(struct adm_conn *c)
{
	while (c->out_off < c->out.len) {
		size_t left = c->out.len - c->out_off;
		ssize_t n;
		if (c->ssl != NULL) {
			int rc;
			if (!c->handshaken)
				return;
			rc = SSL_write(c->ssl, c->out.p + c->out_off,
			    left > 65536 ? 65536 : (int)left);
			if (rc <= 0) {
				int e = SSL_get_error(c->ssl, rc);
				c->want_write = e == SSL_ERROR_WANT_WRITE;
				if (e == SSL_ERROR_WANT_READ || c->want_write)
					return;
				conn_close(c);
				return;
			}
			n = rc;
		} else {
			n = write(c->fd, c->out.p + c->out_off, left);
			if (n < 0 && (errno == EAGAIN || errno == EINTR))
				return;
			if (n <= 0) {
				conn_close(c);
				return;
			}
		}
		c->out_off += (size_t)n;
		c->last_ms = clock_mono_ms();
	}
	c->out.len = c->out_off = 0;
	c->want_write = 0;
	if (c->kind == ADM_EXPORT && c->export_started && !c->close_when_sent &&
	    !c->waiting) {
		adm_answer(c, NULL, 0);	/* ask for the next page */
		return;
	}
	if (c->close_when_sent && !c->waiting)
		conn_close(c);
}

static void
do_accept(void)
{
	for (;;) {
		int fd = accept4(env_->fds.adm_listen, NULL, NULL,
		    SOCK_NONBLOCK | SOCK_CLOEXEC);
		struct adm_conn *c = NULL;
		if (fd < 0)
			return;
		for (int i = 0; i < ADM_MAX_CONNS; i++)
			if (conns[i].fd < 0) {
				c = &conns[i];
				break;
			}
		if (c == NULL || env_->stopping) {
			close(fd);
			continue;
		}
		memset(c, 0, sizeof(*c));
		c->fd = fd;
		c->reading = 1;
		c->last_ms = clock_mono_ms();
		if (tls != NULL) {
			if ((c->ssl = SSL_new(tls)) == NULL ||
			    SSL_set_fd(c->ssl, fd) != 1) {
				conn_close(c);
				continue;
			}
		}
	}
}

static void
prepare(struct child_env *env, void *arg)
{
	struct child_loop *l = arg;

	l->nfds = 0;
	if (!env->stopping) {
		l->fds[l->nfds] = env->fds.adm_listen;
		l->want_out[l->nfds++] = 0;
	}
	for (int i = 0; i < ADM_MAX_CONNS; i++) {
		struct adm_conn *c = &conns[i];
		if (c->fd < 0)
			continue;
		l->fds[l->nfds] = c->fd;
		l->want_out[l->nfds++] = c->want_write || c->out_off < c->out.len;
	}
}

static void
on_fd(struct child_env *env, int fd, short revents, void *arg)
{
	if (fd == env->fds.adm_listen) {
		do_accept();
		return;
	}
	for (int i = 0; i < ADM_MAX_CONNS; i++) {
		struct adm_conn *c = &conns[i];
		if (c->fd != fd)
			continue;
		if (revents & (POLLIN | POLLHUP | POLLERR))
			conn_read(c);
		if (c->fd >= 0 && (revents & POLLOUT || c->out.len > c->out_off))
			conn_write(c);
		return;
	}
}

static void
tick(struct child_env *env, void *arg)
{
	int64_t now = clock_mono_ms();

	for (int i = 0; i < ADM_MAX_CONNS; i++) {
		struct adm_conn *c = &conns[i];
		if (c->fd >= 0 && now - c->last_ms > ADM_IDLE_MS) {
			if (c->reading && c->in.len > 0 && c->out.len == 0) {
				adm_send_error(c, 408, "request timeout");
				c->reading = 0;
				conn_write(c);
			} else
				conn_close(c);
		}
	}
}

static int
busy(struct child_env *env, void *arg)
{
	for (int i = 0; i < ADM_MAX_CONNS; i++)
		if (conns[i].fd >= 0 && (conns[i].waiting ||
		    conns[i].out.len > conns[i].out_off))
			return 1;
	return 0;
}

static SSL_CTX *
tls_load(const struct hub_conf *cf)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());

	if (ctx == NULL)
		return NULL;
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	if (SSL_CTX_use_certificate_chain_file(ctx, cf->adm_cert) != 1 ||
	    SSL_CTX_use_PrivateKey_file(ctx, cf->adm_key, SSL_FILETYPE_PEM) != 1 ||
	    SSL_CTX_check_private_key(ctx) != 1) {
		SSL_CTX_free(ctx);
		return NULL;
	}
	return ctx;
}

int
adm_main(struct child_env *env)
{
	static const struct child_ops ops = { NULL, NULL, NULL };
	static struct child_loop loop;

	env_ = env;
	child_set_admin_http(on_answer);
	for (int i = 0; i < ADM_MAX_CONNS; i++)
		conns[i].fd = -1;
	if (env->fds.adm_listen < 0)
		fatal_status(CHILD_EXIT_CONFIG, "admin: no listener");
	if (env->conf.adm_cert[0] != '\0' && (tls = tls_load(&env->conf)) == NULL) {
		log_error("admin: cannot load [admin] cert %s / key %s: %s",
		    env->conf.adm_cert, env->conf.adm_key,
		    ERR_reason_error_string(ERR_get_error()));
		return CHILD_EXIT_CONFIG;
	}
	child_ready(env);	/* drops root: the key is loaded */
	log_info("admin API listening (%s)", tls ? "TLS" : "plain HTTP");
	loop.ops = &ops;
	loop.tick_ms = 1000;
	loop.tick = tick;
	loop.prepare = prepare;
	loop.on_fd = on_fd;
	loop.busy = busy;
	loop.arg = &loop;
	return child_poll_loop(env, &loop);
}
