/*
 * lib/evstream: AWS event-stream decoder and encoder (see evstream.h).
 */
#include "lib/evstream.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* CRC-32 (IEEE 802.3, reflected 0xEDB88320), four bits at a time. */
static const uint32_t crc_nibble[16] = {
	0x00000000u, 0x1db71064u, 0x3b6e20c8u, 0x26d930acu,
	0x76dc4190u, 0x6b6b51f4u, 0x4db26158u, 0x5005713cu,
	0xedb88320u, 0xf00f9344u, 0xd6d6a3e8u, 0xcb61b38cu,
	0x9b64c2b0u, 0x86d3d2d4u, 0xa00ae278u, 0xbdbdf21cu,
};

uint32_t
evs_crc32(uint32_t crc, const void *p, size_t len)
{
	const unsigned char *b = p;

	crc = ~crc;
	for (size_t i = 0; i < len; i++) {
		crc ^= b[i];
		crc = (crc >> 4) ^ crc_nibble[crc & 15];
		crc = (crc >> 4) ^ crc_nibble[crc & 15];
	}
	return ~crc;
}

static uint32_t
be32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	    (uint32_t)p[2] << 8 | p[3];
}

static void
put32(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char)(v >> 24);
	p[1] = (unsigned char)(v >> 16);
	p[2] = (unsigned char)(v >> 8);
	p[3] = (unsigned char)v;
}

static int64_t
beN(const unsigned char *p, size_t n)
{
	uint64_t v = 0;

	for (size_t i = 0; i < n; i++)
		v = v << 8 | p[i];
	/* sign-extend the 1, 2, 4-byte integers */
	if (n < 8 && (p[0] & 0x80))
		v |= ~(uint64_t)0 << (8 * n);
	return (int64_t)v;
}

/* Fixed value sizes by type; -1: u16 length prefix; -2: unknown. */
static int
type_size(int t)
{
	static const signed char sz[EVS_NTYPES] = { 0, 0, 1, 2, 4, 8, -1, -1,
	    8, 16 };

	return t >= 0 && t < EVS_NTYPES ? sz[t] : -2;
}

static int
fail(char *err, size_t errlen, const char *why)
{
	if (errlen > 0)
		snprintf(err, errlen, "event-stream: %s", why);
	return -1;
}

/* The prelude of p (at least EVS_PRELUDE bytes): CRC first, then bounds. */
static int
prelude(const unsigned char *p, size_t max_msg, size_t *total, size_t *hlen,
    char *err, size_t errlen)
{
	if (evs_crc32(0, p, 8) != be32(p + 8))
		return fail(err, errlen, "prelude CRC mismatch");
	*total = be32(p);
	*hlen = be32(p + 4);
	if (*total < EVS_MIN_MSG || *total > max_msg)
		return fail(err, errlen, "message length out of bounds");
	if (*hlen > EVS_MAX_HEADERS_LEN || *hlen > *total - EVS_MIN_MSG)
		return fail(err, errlen, "headers length out of bounds");
	return 0;
}

static int
parse_max(const unsigned char *p, size_t len, size_t max_msg,
    struct evs_msg *m, char *err, size_t errlen)
{
	size_t total, hlen, i, end;

	if (len < EVS_MIN_MSG)
		return fail(err, errlen, "short message");
	if (prelude(p, max_msg, &total, &hlen, err, errlen) != 0)
		return -1;
	if (total != len)
		return fail(err, errlen, "message length mismatch");
	if (evs_crc32(0, p, len - 4) != be32(p + len - 4))
		return fail(err, errlen, "message CRC mismatch");
	m->nheaders = 0;
	m->total_len = total;
	i = EVS_PRELUDE;
	end = EVS_PRELUDE + hlen;
	while (i < end) {
		struct evs_header *h;
		size_t nl = p[i++];
		int t, sz;

		if (nl == 0 || nl > end - i)
			return fail(err, errlen, "bad header name");
		if (m->nheaders == EVS_MAX_HEADERS)
			return fail(err, errlen, "too many headers");
		h = &m->h[m->nheaders++];
		h->name = (const char *)p + i;
		h->name_len = nl;
		i += nl;
		if (i >= end)
			return fail(err, errlen, "header without a type");
		t = p[i++];
		if ((sz = type_size(t)) == -2)
			return fail(err, errlen, "unknown header type");
		h->type = t;
		h->ival = t == EVS_TRUE;
		h->value = NULL;
		h->value_len = 0;
		if (sz == -1) {
			size_t vl;

			if (end - i < 2)
				return fail(err, errlen, "truncated header");
			vl = (size_t)p[i] << 8 | p[i + 1];
			i += 2;
			if (vl > end - i)
				return fail(err, errlen, "truncated header");
			h->value = p + i;
			h->value_len = vl;
			i += vl;
		} else if (sz > 0) {
			if ((size_t)sz > end - i)
				return fail(err, errlen, "truncated header");
			h->value = p + i;
			h->value_len = (size_t)sz;
			if (t != EVS_UUID)
				h->ival = beN(p + i, (size_t)sz);
			i += (size_t)sz;
		}
	}
	m->payload = p + end;
	m->payload_len = total - end - 4;
	return 0;
}

int
evs_parse(const unsigned char *p, size_t len, struct evs_msg *m, char *err,
    size_t errlen)
{
	return parse_max(p, len, EVS_MAX_MSG, m, err, errlen);
}

void
evs_init(struct evs *d, size_t max_msg)
{
	memset(d, 0, sizeof(*d));
	d->max_msg = max_msg > 0 && max_msg < EVS_MAX_MSG ? max_msg :
	    EVS_MAX_MSG;
	if (d->max_msg < EVS_MIN_MSG)
		d->max_msg = EVS_MIN_MSG;
}

void
evs_free(struct evs *d)
{
	free(d->buf);
	d->buf = NULL;
	d->len = d->cap = d->off = 0;
}

int
evs_feed(struct evs *d, const void *p, size_t len)
{
	if (d->failed)
		return -1;
	if (len == 0)
		return 0;
	if (d->off > 0) {		/* drop what was read */
		memmove(d->buf, d->buf + d->off, d->len - d->off);
		d->len -= d->off;
		d->off = 0;
	}
	if (len > d->cap - d->len) {
		size_t want = d->len + len, nc = d->cap ? d->cap : 4096;
		unsigned char *nb;

		/* never more than one message and one piece, bounded */
		if (want > d->max_msg + (64u << 20)) {
			d->failed = 1;
			snprintf(d->err, sizeof(d->err), "event-stream: too "
			    "much buffered");
			return -1;
		}
		while (nc < want)
			nc *= 2;
		if ((nb = realloc(d->buf, nc)) == NULL) {
			d->failed = 1;
			snprintf(d->err, sizeof(d->err), "event-stream: out of "
			    "memory");
			return -1;
		}
		d->buf = nb;
		d->cap = nc;
	}
	memcpy(d->buf + d->len, p, len);
	d->len += len;
	return 0;
}

int
evs_next(struct evs *d, struct evs_msg *m)
{
	size_t have = d->len - d->off, total, hlen;
	const unsigned char *p;

	if (d->failed)
		return -1;
	if (have < EVS_PRELUDE)
		return 0;
	p = d->buf + d->off;
	if (prelude(p, d->max_msg, &total, &hlen, d->err,
	    sizeof(d->err)) != 0) {
		d->failed = 1;
		return -1;
	}
	if (have < total)
		return 0;
	if (parse_max(p, total, d->max_msg, m, d->err, sizeof(d->err)) != 0) {
		d->failed = 1;
		return -1;
	}
	d->off += total;
	return 1;
}

const char *
evs_error(const struct evs *d)
{
	return d->err[0] != '\0' ? d->err : "event-stream: no error";
}

size_t
evs_pending(const struct evs *d)
{
	return d->len - d->off;
}

const char *
evs_str(const struct evs_msg *m, const char *name, size_t *len)
{
	size_t nl = strlen(name);

	for (int i = 0; i < m->nheaders; i++)
		if (m->h[i].type == EVS_STRING && m->h[i].name_len == nl &&
		    memcmp(m->h[i].name, name, nl) == 0) {
			if (len != NULL)
				*len = m->h[i].value_len;
			return (const char *)m->h[i].value;
		}
	return NULL;
}

int
evs_str_is(const struct evs_msg *m, const char *name, const char *value)
{
	size_t n, vl = strlen(value);
	const char *v = evs_str(m, name, &n);

	return v != NULL && n == vl && memcmp(v, value, n) == 0;
}

/* Bytes header h takes, or 0 when it cannot be written. */
static size_t
header_size(const struct evs_header *h)
{
	int sz = type_size(h->type);

	if (h->name_len == 0 || h->name_len > 255 || sz == -2)
		return 0;
	if (sz == -1)
		return h->value_len > 65535 ? 0 : 1 + h->name_len + 1 + 2 +
		    h->value_len;
	return 1 + h->name_len + 1 + (size_t)sz;
}

size_t
evs_encode(unsigned char *dst, size_t dstlen, const struct evs_header *h,
    int n, const void *payload, size_t plen)
{
	size_t hlen = 0, total, i;
	unsigned char *p;

	for (int k = 0; k < n; k++) {
		size_t s = header_size(&h[k]);
		if (s == 0)
			return 0;
		hlen += s;
	}
	if (hlen > EVS_MAX_HEADERS_LEN || plen > EVS_MAX_MSG)
		return 0;
	total = EVS_MIN_MSG + hlen + plen;
	if (total > EVS_MAX_MSG)
		return 0;
	if (dst == NULL || dstlen < total)
		return total;
	p = dst;
	put32(p, (uint32_t)total);
	put32(p + 4, (uint32_t)hlen);
	put32(p + 8, evs_crc32(0, p, 8));
	i = EVS_PRELUDE;
	for (int k = 0; k < n; k++) {
		int sz = type_size(h[k].type);

		p[i++] = (unsigned char)h[k].name_len;
		memcpy(p + i, h[k].name, h[k].name_len);
		i += h[k].name_len;
		p[i++] = (unsigned char)h[k].type;
		if (sz == -1) {
			p[i++] = (unsigned char)(h[k].value_len >> 8);
			p[i++] = (unsigned char)h[k].value_len;
			if (h[k].value_len > 0)
				memcpy(p + i, h[k].value, h[k].value_len);
			i += h[k].value_len;
		} else if (h[k].type == EVS_UUID) {
			memcpy(p + i, h[k].value, 16);
			i += 16;
		} else {
			for (int b = sz - 1; b >= 0; b--)
				p[i++] = (unsigned char)((uint64_t)h[k].ival >>
				    (8 * b));
		}
	}
	if (plen > 0)
		memcpy(p + i, payload, plen);
	i += plen;
	put32(p + i, evs_crc32(0, p, i));
	return total;
}

static void
str_header(struct evs_header *h, const char *name, const char *value)
{
	h->name = name;
	h->name_len = strlen(name);
	h->type = EVS_STRING;
	h->value = (const unsigned char *)value;
	h->value_len = strlen(value);
	h->ival = 0;
}

size_t
evs_encode_event(unsigned char *dst, size_t dstlen, const char *name,
    int exception, const void *payload, size_t plen)
{
	struct evs_header h[3];

	str_header(&h[0], exception ? ":exception-type" : ":event-type", name);
	str_header(&h[1], ":content-type", "application/json");
	str_header(&h[2], ":message-type", exception ? "exception" : "event");
	return evs_encode(dst, dstlen, h, 3, payload, plen);
}

static int
b64val(int c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

int
evs_b64_decode(const char *in, size_t n, unsigned char *out, size_t *outlen)
{
	uint32_t acc = 0;
	size_t o = 0, pad = 0;
	int bits = 0;

	while (n > 0 && in[n - 1] == '=' && pad < 2) {
		n--;
		pad++;
	}
	if (pad > 0 && (n + pad) % 4 != 0)
		return -1;
	if (n % 4 == 1)
		return -1;
	for (size_t i = 0; i < n; i++) {
		int v = b64val((unsigned char)in[i]);

		if (v < 0)
			return -1;
		acc = acc << 6 | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[o++] = (unsigned char)(acc >> bits);
		}
	}
	*outlen = o;
	return 0;
}
