/*
 * lib/hex: the value of one hexadecimal digit, either case.  Header-only
 * so that the parsers that decode %XX and \uXXXX (and their fuzz targets)
 * share it without linking anything.
 */
#ifndef SWB_HEX_H
#define SWB_HEX_H

/* 0..15, or -1 when c is not a hex digit (any int, EOF included). */
static inline int
hex_digit(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

#endif
