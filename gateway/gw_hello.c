/*
 * gateway/gw_hello: the ALPN of a TLS ClientHello (see gw_hello.h).  One
 * record (RFC 8446 5.1) holding the whole ClientHello (4.1.2): legacy
 * version, random, session id, cipher suites, compression methods, then
 * the extensions, of which ALPN (type 16, RFC 7301) lists the protocols.
 */
#include "gateway/gw_hello.h"

#include <stdint.h>
#include <string.h>

static uint32_t
be(const unsigned char *p, int n)
{
	uint32_t v = 0;

	for (int i = 0; i < n; i++)
		v = v << 8 | p[i];
	return v;
}

int
gw_tls_hello(const unsigned char *p, size_t n, size_t *need)
{
	size_t rlen, end, off, l;

	*need = 5;
	if (n < 5)
		return n > 0 && p[0] != 0x16 ? GW_HELLO_OTHER : GW_HELLO_MORE;
	if (p[0] != 0x16 || p[1] != 3)
		return GW_HELLO_OTHER;		/* not a TLS handshake record */
	rlen = be(p + 3, 2);
	if (rlen < 4 || rlen > 16384)
		return GW_HELLO_OTHER;
	*need = 5 + rlen;
	if (n < *need)
		return GW_HELLO_MORE;
	/* The handshake message: ClientHello, whole in this record. */
	if (p[5] != 1 || be(p + 6, 3) > rlen - 4)
		return GW_HELLO_OTHER;
	end = 9 + be(p + 6, 3);
	off = 9 + 2 + 32;			/* version, random */
	if (off + 1 > end)
		return GW_HELLO_OTHER;
	off += 1 + p[off];			/* session id */
	if (off + 2 > end)
		return GW_HELLO_OTHER;
	off += 2 + be(p + off, 2);		/* cipher suites */
	if (off + 1 > end)
		return GW_HELLO_OTHER;
	off += 1 + p[off];			/* compression methods */
	if (off == end)
		return GW_HELLO_H1;		/* no extensions */
	if (off + 2 > end || off + 2 + be(p + off, 2) > end)
		return GW_HELLO_OTHER;
	end = off + 2 + be(p + off, 2);
	off += 2;
	while (off + 4 <= end) {
		uint32_t type = be(p + off, 2);
		l = be(p + off + 2, 2);
		off += 4;
		if (off + l > end)
			return GW_HELLO_OTHER;
		if (type == 16) {		/* ALPN: a list of names */
			size_t a = off + 2, aend;
			if (l < 2 || 2 + be(p + off, 2) > l)
				return GW_HELLO_OTHER;
			aend = off + 2 + be(p + off, 2);
			while (a < aend) {
				size_t nl = p[a++];
				if (a + nl > aend)
					return GW_HELLO_OTHER;
				if (nl == 2 && memcmp(p + a, "h2", 2) == 0)
					return GW_HELLO_H2;
				a += nl;
			}
			return GW_HELLO_H1;
		}
		off += l;
	}
	return off == end ? GW_HELLO_H1 : GW_HELLO_OTHER;
}
