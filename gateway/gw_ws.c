/*
 * gateway/gw_ws: RFC 6455 frame parser, reassembly, server frame header
 * and handshake accept (API and rules in gw_ws.h).  Never trusts a length
 * from the peer: every declared length is checked against the bytes
 * present, the minimal-encoding rule and the message limit before any
 * copy.
 */
#include "gateway/gw_ws.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/sha.h>

#define WS_GUID	"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

static int
fail(struct gw_ws_in *in, uint16_t code, const char *why)
{
	in->close_code = code;
	in->err = why;
	return -1;
}

int
gw_ws_utf8_ok(const unsigned char *p, size_t n)
{
	size_t i = 0;

	while (i < n) {
		unsigned c = p[i];
		size_t k;
		uint32_t cp, min;

		if (c < 0x80) {
			i++;
			continue;
		}
		if ((c & 0xE0) == 0xC0) {
			k = 1; cp = c & 0x1F; min = 0x80;
		} else if ((c & 0xF0) == 0xE0) {
			k = 2; cp = c & 0x0F; min = 0x800;
		} else if ((c & 0xF8) == 0xF0) {
			k = 3; cp = c & 0x07; min = 0x10000;
		} else
			return 0;
		if (n - i - 1 < k)
			return 0;
		for (size_t j = 1; j <= k; j++) {
			if ((p[i + j] & 0xC0) != 0x80)
				return 0;
			cp = (cp << 6) | (p[i + j] & 0x3F);
		}
		if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
			return 0;
		i += k + 1;
	}
	return 1;
}

static void
unmask(unsigned char *dst, const unsigned char *src, size_t n,
    const unsigned char key[4])
{
	for (size_t i = 0; i < n; i++)
		dst[i] = src[i] ^ key[i & 3];
}

int
gw_ws_parse(struct gw_ws_in *in, const unsigned char *buf, size_t len,
    size_t *used, struct gw_ws_event *ev)
{
	size_t max = in->max_msg ? in->max_msg : GW_WS_MAX_MSG;
	size_t hl = 2, i;
	uint64_t plen;
	unsigned fin, op;
	const unsigned char *key, *pay;

	*used = 0;
	memset(ev, 0, sizeof(*ev));
	if (len < 2)
		return 0;
	fin = buf[0] & 0x80;
	op = buf[0] & 0x0F;
	if (buf[0] & 0x70)
		return fail(in, 1002, "reserved bits set");
	if (!(buf[1] & 0x80))
		return fail(in, 1002, "client frame not masked");
	plen = buf[1] & 0x7F;
	if (plen == 126) {
		if (len < 4)
			return 0;
		plen = (uint64_t)buf[2] << 8 | buf[3];
		if (plen < 126)
			return fail(in, 1002, "length not minimally encoded");
		hl = 4;
	} else if (plen == 127) {
		if (len < 10)
			return 0;
		plen = 0;
		for (i = 0; i < 8; i++)
			plen = plen << 8 | buf[2 + i];
		if (plen <= 0xFFFF || (plen >> 63))
			return fail(in, 1002, "length not minimally encoded");
		hl = 10;
	}
	switch (op) {
	case GW_WS_CLOSE:
	case GW_WS_PING:
	case GW_WS_PONG:
		if (!fin || plen > GW_WS_CTL_MAX)
			return fail(in, 1002, "bad control frame");
		break;
	case GW_WS_TEXT:
	case GW_WS_BIN:
		if (in->msg_op != 0)
			return fail(in, 1002, "new message inside a fragmented one");
		break;
	case GW_WS_CONT:
		if (in->msg_op == 0)
			return fail(in, 1002, "continuation without a message");
		break;
	default:
		return fail(in, 1002, "unknown opcode");
	}
	if (op < 0x8 && plen > max - in->msglen)
		return fail(in, 1009, "message too big");
	if (len - hl < 4 || len - hl - 4 < plen)
		return 0;	/* the frame is not all here yet */
	key = buf + hl;
	pay = key + 4;
	*used = hl + 4 + (size_t)plen;
	if (op >= 0x8) {
		unmask(in->ctl, pay, (size_t)plen, key);
		ev->op = (enum gw_ws_op)op;
		ev->data = in->ctl;
		ev->len = (size_t)plen;
		if (op == GW_WS_CLOSE) {
			ev->code = 1005;
			if (plen == 1)
				return fail(in, 1002, "close payload of 1 byte");
			if (plen >= 2) {
				ev->code = (uint16_t)(in->ctl[0] << 8 | in->ctl[1]);
				if (ev->code < 1000 || ev->code == 1004 ||
				    ev->code == 1005 || ev->code == 1006 ||
				    (ev->code > 1015 && ev->code < 3000) ||
				    ev->code > 4999)
					return fail(in, 1002, "bad close code");
				if (!gw_ws_utf8_ok(in->ctl + 2, (size_t)plen - 2))
					return fail(in, 1007, "close reason not UTF-8");
				ev->data = in->ctl + 2;
				ev->len = (size_t)plen - 2;
			}
		}
		return 1;
	}
	if (op != GW_WS_CONT) {
		in->msg_op = (int)op;
		in->msglen = 0;
	}
	if (in->msglen + plen > in->msgcap) {
		size_t cap = in->msgcap ? in->msgcap : 4096;
		unsigned char *m;

		while (cap < in->msglen + plen)
			cap *= 2;
		if (cap > max)
			cap = max;
		if ((m = realloc(in->msg, cap > 0 ? cap : 1)) == NULL)
			return fail(in, 1011, "out of memory");
		in->msg = m;
		in->msgcap = cap;
	}
	if (plen > 0)
		unmask(in->msg + in->msglen, pay, (size_t)plen, key);
	in->msglen += (size_t)plen;
	if (!fin)
		return 0;
	ev->op = (enum gw_ws_op)in->msg_op;
	ev->data = in->msg;
	ev->len = in->msglen;
	in->msg_op = 0;
	in->msglen = 0;
	if (ev->op == GW_WS_TEXT && !gw_ws_utf8_ok(ev->data, ev->len))
		return fail(in, 1007, "text message not UTF-8");
	return 1;
}

void
gw_ws_in_free(struct gw_ws_in *in)
{
	free(in->msg);
	in->msg = NULL;
	in->msglen = in->msgcap = 0;
	in->msg_op = 0;
}

size_t
gw_ws_header(unsigned char hdr[10], enum gw_ws_op op, uint64_t len)
{
	hdr[0] = (unsigned char)(0x80 | (op & 0x0F));
	if (len < 126) {
		hdr[1] = (unsigned char)len;
		return 2;
	}
	if (len <= 0xFFFF) {
		hdr[1] = 126;
		hdr[2] = (unsigned char)(len >> 8);
		hdr[3] = (unsigned char)len;
		return 4;
	}
	hdr[1] = 127;
	for (int i = 0; i < 8; i++)
		hdr[2 + i] = (unsigned char)(len >> (56 - 8 * i));
	return 10;
}

int
gw_ws_accept(const char *key, size_t keylen, char out[GW_WS_ACCEPT_LEN + 1])
{
	unsigned char raw[24], sha[SHA_DIGEST_LENGTH];
	char buf[24 + sizeof(WS_GUID)];
	unsigned int shalen = 0;

	out[0] = '\0';
	if (keylen != 24 || memchr(key, '\0', keylen) != NULL)
		return -1;
	/* 24 base64 characters ending "==" decode to 16 bytes. */
	if (key[22] != '=' || key[23] != '=' ||
	    EVP_DecodeBlock(raw, (const unsigned char *)key, 24) != 18)
		return -1;
	memcpy(buf, key, 24);
	memcpy(buf + 24, WS_GUID, sizeof(WS_GUID) - 1);
	if (EVP_Digest(buf, 24 + sizeof(WS_GUID) - 1, sha, &shalen,
	    EVP_sha1(), NULL) != 1 || shalen != sizeof(sha))
		return -1;
	if (EVP_EncodeBlock((unsigned char *)out, sha, sizeof(sha)) !=
	    GW_WS_ACCEPT_LEN)
		return -1;
	return 0;
}
