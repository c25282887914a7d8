/*
 * lib/str: building strings without printf (see lib/str.h).
 */
#include "lib/str.h"

#include <string.h>

static const char hexd[] = "0123456789abcdef";

size_t
str_copy(char *dst, size_t size, const char *src)
{
	size_t n;

	if (size == 0)
		return 0;
	n = strnlen(src, size - 1);
	memcpy(dst, src, n);
	dst[n] = '\0';
	return n;
}

char *
str_put(char *p, const char *end, const void *s, size_t n)
{
	if (p == NULL || end < p || (size_t)(end - p) < n)
		return NULL;
	memcpy(p, s, n);
	return p + n;
}

char *
str_puts(char *p, const char *end, const char *s)
{
	return str_put(p, end, s, strlen(s));
}

size_t
str_hex(char *out, uint64_t v)
{
	char tmp[16];
	size_t n = 0;

	do {
		tmp[n++] = hexd[v & 0xf];
		v >>= 4;
	} while (v != 0);
	for (size_t i = 0; i < n; i++)
		out[i] = tmp[n - 1 - i];
	return n;
}

void
str_hex16(char out[16], uint64_t v)
{
	for (int i = 15; i >= 0; i--) {
		out[i] = hexd[v & 0xf];
		v >>= 4;
	}
}

size_t
str_dec(char *out, uint64_t v)
{
	char tmp[20];
	size_t n = 0;

	do {
		tmp[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v != 0);
	for (size_t i = 0; i < n; i++)
		out[i] = tmp[n - 1 - i];
	return n;
}
