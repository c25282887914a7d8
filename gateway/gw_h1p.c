/*
 * gateway/gw_h1p: HTTP/1.1 request heads and chunked bodies (see gw_h1p.h).
 */
#include "gateway/gw_h1p.h"
#include "lib/hex.h"

#include <string.h>
#include <strings.h>

enum { CH_SIZE = 0, CH_EXT, CH_SIZE_LF, CH_DATA, CH_DATA_CR, CH_DATA_LF,
	CH_TRAILER, CH_TRAILER_LF, CH_DONE };

#define CH_MAX_DIGITS	15	/* < 2^60 */
#define CH_MAX_EXT	1024
#define CH_MAX_TRAILER	8192

/* RFC 9110 tchar */
static int
tchar(unsigned char c)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9'))
		return 1;
	return c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/* A field value byte: VCHAR, obs-text, SP, HTAB. */
static int
vchar(unsigned char c)
{
	return c == ' ' || c == '\t' || (c > 0x20 && c != 0x7f);
}

static int
ieq(const char *a, size_t alen, const char *lit)
{
	size_t n = strlen(lit);

	return alen == n && strncasecmp(a, lit, n) == 0;
}

/* Split a comma list; call fn on each trimmed element.  Returns the
 * number of elements. */
static int
list_each(const char *v, size_t len, int (*fn)(const char *, size_t, void *),
    void *arg)
{
	size_t i = 0;
	int n = 0;

	while (i < len) {
		size_t s, e;
		while (i < len && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
			i++;
		s = i;
		while (i < len && v[i] != ',')
			i++;
		e = i;
		while (e > s && (v[e - 1] == ' ' || v[e - 1] == '\t'))
			e--;
		if (e > s) {
			n++;
			if (fn != NULL && fn(v + s, e - s, arg) != 0)
				return -1;
		}
	}
	return n;
}

static int
conn_token(const char *t, size_t n, void *arg)
{
	int *ka = arg;

	if (ieq(t, n, "close"))
		*ka = 0;
	else if (ieq(t, n, "keep-alive") && *ka == -1)
		*ka = 2;
	return 0;
}

struct te_state { int n, chunked_last, chunked_seen, other; };

static int
te_token(const char *t, size_t n, void *arg)
{
	struct te_state *s = arg;

	s->n++;
	if (ieq(t, n, "chunked")) {
		s->chunked_seen++;
		s->chunked_last = 1;
	} else {
		s->other = 1;
		s->chunked_last = 0;
	}
	return 0;
}

/* Find the end of the line starting at p: the index of its '\n', or -1.
 * A '\r' not followed by '\n' is an error (-2). */
static long
line_end(const char *buf, size_t from, size_t len)
{
	for (size_t i = from; i < len; i++) {
		if (buf[i] == '\n')
			return (long)i;
		if (buf[i] == '\r' && i + 1 < len && buf[i + 1] != '\n')
			return -2;
	}
	return -1;
}

int
h1_parse_head(const char *buf, size_t len, size_t max_head, struct h1_head *h,
    const char **why)
{
	size_t pos, le, lend, i;
	long l;
	int hosts = 0, ka = -1, ncl = 0;
	struct te_state te = { 0, 0, 0, 0 };
	const unsigned char *u = (const unsigned char *)buf;

	memset(h, 0, sizeof(*h));
	h->content_length = -1;
	*why = "";
	if (len > max_head)
		len = max_head + 1;	/* what is past the limit is never read */
	/* Tolerate empty lines before the request line (RFC 9112 2.2). */
	pos = 0;
	while (pos < len && (buf[pos] == '\r' || buf[pos] == '\n')) {
		if (buf[pos] == '\r' && pos + 1 < len && buf[pos + 1] != '\n') {
			*why = "bare CR";
			return -400;
		}
		pos++;
		if (pos > 64) {
			*why = "empty lines before the request line";
			return -400;
		}
	}
	/* The request line. */
	l = line_end(buf, pos, len);
	if (l == -2) {
		*why = "bare CR in the request line";
		return -400;
	}
	if (l < 0) {
		if (len - pos > H1_MAX_LINE) {
			*why = "request line too long";
			return -414;
		}
		if (len > max_head) {
			*why = "request head too large";
			return -431;
		}
		return 0;
	}
	le = (size_t)l;
	lend = le > pos && buf[le - 1] == '\r' ? le - 1 : le;
	if (lend - pos > H1_MAX_LINE) {
		*why = "request line too long";
		return -414;
	}
	i = pos;
	while (i < lend && tchar(u[i]))
		i++;
	if (i == pos || i - pos > 16 || i >= lend || buf[i] != ' ') {
		*why = "malformed method";
		return -400;
	}
	h->method.off = (uint32_t)pos;
	h->method.len = (uint32_t)(i - pos);
	pos = ++i;
	while (i < lend && u[i] > 0x20 && u[i] < 0x7f)
		i++;
	if (i == pos || i >= lend || buf[i] != ' ') {
		*why = "malformed request target";
		return -400;
	}
	if (buf[pos] != '/') {
		*why = "only origin-form request targets are served";
		return -400;
	}
	h->target.off = (uint32_t)pos;
	h->target.len = (uint32_t)(i - pos);
	{
		const char *q = memchr(buf + pos, '?', i - pos);
		size_t plen = q ? (size_t)(q - (buf + pos)) : i - pos;
		h->path.off = (uint32_t)pos;
		h->path.len = (uint32_t)plen;
		if (q != NULL) {
			h->query.off = (uint32_t)(pos + plen + 1);
			h->query.len = (uint32_t)(i - pos - plen - 1);
		}
	}
	pos = ++i;
	if (lend - pos != 8 || memcmp(buf + pos, "HTTP/", 5) != 0 ||
	    buf[pos + 5] < '0' || buf[pos + 5] > '9' || buf[pos + 6] != '.' ||
	    buf[pos + 7] < '0' || buf[pos + 7] > '9') {
		*why = "malformed HTTP version";
		return -400;
	}
	if (buf[pos + 5] != '1' || buf[pos + 7] > '1') {
		*why = "HTTP version not supported";
		return -505;
	}
	h->minor = buf[pos + 7] - '0';
	pos = le + 1;

	/* Header fields, up to the empty line. */
	for (;;) {
		size_t ns, ne, vs, ve;

		l = line_end(buf, pos, len);
		if (l == -2) {
			*why = "bare CR in a header field";
			return -400;
		}
		if (l < 0) {
			if (len > max_head) {
				*why = "request head too large";
				return -431;
			}
			return 0;
		}
		le = (size_t)l;
		lend = le > pos && buf[le - 1] == '\r' ? le - 1 : le;
		if (lend == pos) {
			pos = le + 1;
			break;		/* the end of the head */
		}
		if (buf[pos] == ' ' || buf[pos] == '\t') {
			*why = "obsolete line folding";
			return -400;
		}
		if (h->nfield == H1_MAX_HEADERS) {
			*why = "too many header fields";
			return -431;
		}
		ns = i = pos;
		while (i < lend && tchar(u[i]))
			i++;
		ne = i;
		if (ne == ns || i >= lend || buf[i] != ':') {
			*why = ne == ns || i >= lend || (buf[i] != ' ' &&
			    buf[i] != '\t') ? "malformed header field" :
			    "whitespace before a header field's colon";
			return -400;
		}
		i++;
		while (i < lend && (buf[i] == ' ' || buf[i] == '\t'))
			i++;
		vs = i;
		for (; i < lend; i++)
			if (!vchar(u[i])) {
				*why = "control character in a header field";
				return -400;
			}
		ve = lend;
		while (ve > vs && (buf[ve - 1] == ' ' || buf[ve - 1] == '\t'))
			ve--;
		h->field[h->nfield].name.off = (uint32_t)ns;
		h->field[h->nfield].name.len = (uint32_t)(ne - ns);
		h->field[h->nfield].value.off = (uint32_t)vs;
		h->field[h->nfield].value.len = (uint32_t)(ve - vs);
		h->nfield++;

		if (ieq(buf + ns, ne - ns, "content-length")) {
			int64_t v = 0;
			if (++ncl > 1) {
				*why = "more than one Content-Length";
				return -400;
			}
			if (ve == vs || ve - vs > 18) {
				*why = "invalid Content-Length";
				return -400;
			}
			for (size_t k = vs; k < ve; k++) {
				if (buf[k] < '0' || buf[k] > '9') {
					*why = "invalid Content-Length";
					return -400;
				}
				v = v * 10 + (buf[k] - '0');
			}
			h->content_length = v;
		} else if (ieq(buf + ns, ne - ns, "transfer-encoding")) {
			if (list_each(buf + vs, ve - vs, te_token, &te) <= 0) {
				*why = "empty Transfer-Encoding";
				return -400;
			}
		} else if (ieq(buf + ns, ne - ns, "host")) {
			hosts++;
		} else if (ieq(buf + ns, ne - ns, "connection")) {
			(void)list_each(buf + vs, ve - vs, conn_token, &ka);
		} else if (ieq(buf + ns, ne - ns, "expect")) {
			if (ieq(buf + vs, ve - vs, "100-continue"))
				h->expect_continue = 1;
		} else if (ieq(buf + ns, ne - ns, "upgrade")) {
			h->upgrade = 1;
		}
		pos = le + 1;
	}
	h->head_len = pos;
	if (pos > max_head) {
		*why = "request head too large";
		return -431;
	}
	if (te.n > 0) {
		if (ncl > 0) {
			*why = "both Transfer-Encoding and Content-Length";
			return -400;
		}
		if (h->minor == 0) {
			*why = "Transfer-Encoding on HTTP/1.0";
			return -400;
		}
		if (!te.chunked_last || te.chunked_seen != 1) {
			*why = "chunked must be the final transfer coding";
			return -400;
		}
		if (te.other) {
			*why = "transfer coding not implemented";
			return -501;
		}
		h->chunked = 1;
	}
	if (h->minor == 1 && hosts != 1) {
		*why = hosts == 0 ? "no Host header" : "more than one Host header";
		return -400;
	}
	if (hosts > 1) {
		*why = "more than one Host header";
		return -400;
	}
	/* Persistence (RFC 9112 9.3). */
	if (ka == 0)
		h->keep_alive = 0;
	else if (h->minor == 1)
		h->keep_alive = 1;
	else
		h->keep_alive = ka == 2;
	return 1;
}

const char *
h1_field(const char *buf, const struct h1_head *h, const char *lname,
    size_t *vlen)
{
	size_t n = strlen(lname);

	for (int i = 0; i < h->nfield; i++)
		if (h->field[i].name.len == n &&
		    strncasecmp(buf + h->field[i].name.off, lname, n) == 0) {
			*vlen = h->field[i].value.len;
			return buf + h->field[i].value.off;
		}
	return NULL;
}

int
h1_chunked_step(struct h1_chunked *c, const char *in, size_t len,
    size_t *used, const char **data, size_t *dlen)
{
	size_t i = 0;

	*data = NULL;
	*dlen = 0;
	*used = 0;
	while (i < len) {
		unsigned char ch = (unsigned char)in[i];
		int v;

		switch (c->state) {
		case CH_SIZE:
			v = hex_digit(ch);
			if (v >= 0) {
				if (++c->digits > CH_MAX_DIGITS)
					goto bad;
				c->left = (c->left << 4) | (uint64_t)v;
				i++;
				break;
			}
			if (c->digits == 0)
				goto bad;
			if (ch == ';' || ch == ' ' || ch == '\t') {
				c->state = CH_EXT;
				break;
			}
			if (ch == '\r') {
				c->state = CH_SIZE_LF;
				i++;
				break;
			}
			if (ch == '\n') {
				c->state = CH_SIZE_LF;
				break;
			}
			goto bad;
		case CH_EXT:	/* chunk extensions: skipped, bounded */
			if (ch == '\r' || ch == '\n') {
				c->state = CH_SIZE_LF;
				if (ch == '\r')
					i++;
				break;
			}
			if (ch < 0x20 && ch != '\t')
				goto bad;
			if (++c->ext > CH_MAX_EXT)
				goto bad;
			i++;
			break;
		case CH_SIZE_LF:
			if (ch != '\n')
				goto bad;
			i++;
			c->digits = 0;
			c->ext = 0;		/* from here: trailer bytes */
			if (c->left == 0) {
				c->state = CH_TRAILER;
				c->trailer = 0;
			} else
				c->state = CH_DATA;
			break;
		case CH_DATA: {
			size_t n = len - i;
			if ((uint64_t)n > c->left)
				n = (size_t)c->left;
			*data = in + i;
			*dlen = n;
			c->left -= n;
			i += n;
			if (c->left == 0)
				c->state = CH_DATA_CR;
			*used = i;
			return 1;
		}
		case CH_DATA_CR:
			if (ch == '\r') {
				c->state = CH_DATA_LF;
				i++;
			} else if (ch == '\n')
				c->state = CH_DATA_LF;
			else
				goto bad;
			break;
		case CH_DATA_LF:
			if (ch != '\n')
				goto bad;
			i++;
			c->state = CH_SIZE;
			c->left = 0;
			break;
		case CH_TRAILER:
			/* Trailer fields are read and dropped; an empty line
			 * ends the body. */
			if (ch == '\r' && c->trailer == 0) {
				c->state = CH_TRAILER_LF;
				i++;
				break;
			}
			if (ch == '\n') {
				i++;
				if (c->trailer == 0) {
					c->state = CH_DONE;
					*used = i;
					return 2;
				}
				c->trailer = 0;
				break;
			}
			c->trailer++;
			if (++c->ext > CH_MAX_TRAILER ||
			    (ch < 0x20 && ch != '\t' && ch != '\r'))
				goto bad;
			i++;
			break;
		case CH_TRAILER_LF:
			if (ch != '\n')
				goto bad;
			i++;
			c->state = CH_DONE;
			*used = i;
			return 2;
		default:
			*used = i;
			return 2;
		}
	}
	*used = i;
	return 0;
bad:
	*used = i;
	return -1;
}
