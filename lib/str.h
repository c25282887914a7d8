/*
 * lib/str: building strings without printf on the per-request paths (a
 * snprintf call costs 500 to 1,600 instructions where these cost tens):
 * a bounded copy, appends to a buffer, hexadecimal and decimal numbers.
 */
#ifndef SWB_STR_H
#define SWB_STR_H

#include <stddef.h>
#include <stdint.h>

/* src into dst[size], cut to size - 1 bytes, always NUL-terminated (size
 * > 0); the bytes copied. */
size_t	 str_copy(char *dst, size_t size, const char *src);
/* n bytes of s at p, if they fit before end: the byte after them, else
 * NULL (nothing written).  str_puts: a NUL-terminated s (not its NUL). */
char	*str_put(char *p, const char *end, const void *s, size_t n);
char	*str_puts(char *p, const char *end, const char *s);
/* v in lowercase hexadecimal, no leading zeros ("0" for 0), into out[16]
 * (no NUL); its length. */
size_t	 str_hex(char *out, uint64_t v);
/* v in 16 lowercase hexadecimal digits, zeros in front (no NUL). */
void	 str_hex16(char out[16], uint64_t v);
/* v in decimal into out[20] (no NUL); its length. */
size_t	 str_dec(char *out, uint64_t v);

#endif
