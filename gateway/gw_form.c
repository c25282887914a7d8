/*
 * gateway/gw_form: reading one field of a multipart/form-data body (RFC
 * 7578) — the `model` of an upload — without copying or changing the
 * body, which goes upstream byte for byte.  Pure: no I/O.
 */
#include "gateway/gw_form.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

/* The boundary parameter of a multipart/form-data content type. */
static int
boundary_of(const char *ctype, char *out, size_t outlen)
{
	const char *p;
	size_t n = 0;

	if (strncasecmp(ctype, "multipart/form-data", 19) != 0)
		return -1;
	p = strcasestr(ctype, "boundary=");
	if (p == NULL)
		return -1;
	p += 9;
	if (*p == '"') {
		p++;
		while (p[n] != '\0' && p[n] != '"')
			n++;
	} else
		while (p[n] != '\0' && p[n] != ';' && p[n] != ' ' && p[n] != '\t')
			n++;
	if (n == 0 || n > 70 || n + 1 > outlen)	/* RFC 2046: 1..70 */
		return -1;
	memcpy(out, p, n);
	out[n] = '\0';
	return 0;
}

int
gw_form_field(const char *ctype, const void *body, size_t len,
    const char *name, char *out, size_t outlen)
{
	char bnd[80], delim[84], want[96];
	const char *b = body, *end = b + len, *p;
	size_t dlen;

	if (outlen == 0 || boundary_of(ctype, bnd, sizeof(bnd)) != 0)
		return -1;
	dlen = (size_t)snprintf(delim, sizeof(delim), "--%s", bnd);
	snprintf(want, sizeof(want), "name=\"%s\"", name);
	for (p = memmem(b, len, delim, dlen); p != NULL;) {
		const char *hdr = p + dlen, *hend, *val, *next;
		if (end - hdr >= 2 && hdr[0] == '-' && hdr[1] == '-')
			return -1;			/* the closing delimiter */
		if (end - hdr < 2 || hdr[0] != '\r' || hdr[1] != '\n')
			return -1;
		hdr += 2;
		hend = memmem(hdr, (size_t)(end - hdr), "\r\n\r\n", 4);
		if (hend == NULL)
			return -1;
		val = hend + 4;
		next = memmem(val, (size_t)(end - val), delim, dlen);
		if (next == NULL || next - val < 2)
			return -1;
		/* This part's headers name it? (Content-Disposition only) */
		{
			const char *cd = hdr;
			int hit = 0;
			while (cd < hend) {
				const char *eol = memmem(cd, (size_t)(hend - cd + 2),
				    "\r\n", 2);
				size_t ll = eol ? (size_t)(eol - cd) : (size_t)(hend - cd);
				if (ll > 20 && strncasecmp(cd, "content-disposition:",
				    20) == 0 && memmem(cd, ll, want, strlen(want)) != NULL)
					hit = 1;
				cd += ll + 2;
			}
			if (hit) {
				size_t vl = (size_t)(next - 2 - val);	/* CRLF before */
				if (vl + 1 > outlen)
					return -1;
				memcpy(out, val, vl);
				out[vl] = '\0';
				return (int)vl;
			}
		}
		p = next;
	}
	return -1;
}
