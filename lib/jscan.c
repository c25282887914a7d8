/*
 * lib/jscan: the in-place JSON checker and its accessors (rules in
 * jscan.h).  The checker is one loop over the text with a bit stack of
 * the open containers; the accessors skip values by counting brackets
 * outside strings, which is exact on checked text.
 */
#include "lib/jscan.h"
#include "lib/hex.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* ---- shared scanning ---- */

static int
is_ws(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static int
is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static size_t
skip_ws(const char *p, size_t n, size_t i)
{
	while (i < n && is_ws(p[i]))
		i++;
	return i;
}

/* The four hex digits at p[i..i+4): their value, or -1. */
static long
hex4(const char *p, size_t n, size_t i)
{
	long v = 0;

	if (i + 4 > n)
		return -1;
	for (size_t k = 0; k < 4; k++) {
		int h = hex_digit(p[i + k]);

		if (h < 0)
			return -1;
		v = v << 4 | h;
	}
	return v;
}

/* ---- the checker ---- */

/* Bytes of the UTF-8 sequence at p[i..n) if it is one jansson takes. */
static size_t
utf8_len(const unsigned char *p, size_t n, size_t i)
{
	unsigned char b = p[i];
	size_t len;
	uint32_t cp;

	if (b >= 0xc2 && b <= 0xdf) {
		len = 2;
		cp = b & 0x1f;
	} else if (b >= 0xe0 && b <= 0xef) {
		len = 3;
		cp = b & 0x0f;
	} else if (b >= 0xf0 && b <= 0xf4) {
		len = 4;
		cp = b & 0x07;
	} else
		return 0;
	if (i + len > n)
		return 0;
	for (size_t k = 1; k < len; k++) {
		if (p[i + k] < 0x80 || p[i + k] > 0xbf)
			return 0;
		cp = cp << 6 | (p[i + k] & 0x3f);
	}
	if (cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff) ||
	    (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000))
		return 0;
	return len;
}

/* Eight bytes a string holds as they are (no quote, backslash, control
 * byte or UTF-8 byte): 1, else 0.  A word at a time, so that the checker
 * passes plain text at a few instructions for eight bytes instead of a
 * few a byte (every stream event's strings, by the gateway and agentd).
 * With every byte below 0x80, (x - k * ones) & highs is nonzero exactly
 * when some byte of x is below k (a borrow starts only at such a byte). */
static int
plain8(const char *p)
{
	const uint64_t ones = UINT64_C(0x0101010101010101);
	const uint64_t highs = UINT64_C(0x8080808080808080);
	uint64_t w, q, b;

	memcpy(&w, p, sizeof(w));
	if ((w & highs) != 0)
		return 0;			/* a UTF-8 byte */
	q = w ^ (ones * '"');			/* a zero byte where a quote is */
	b = w ^ (ones * '\\');
	return (((w - ones * 0x20) | (q - ones) | (b - ones)) & highs) == 0;
}

/* p[*i] is '"': check the string, move past it.  *nul: it holds a
 * \u0000.  -1: not a string jansson takes. */
static int
check_string(const char *p, size_t n, size_t *i, int *nul)
{
	size_t j = *i + 1, len;
	long u, l;

	*nul = 0;
	for (;;) {
		unsigned char b;

		/* Words while they are plain; then byte by byte up to the
		 * byte that stopped them, which is within eight. */
		while (j + 8 <= n && plain8(p + j))
			j += 8;
		for (; j < n; j++) {
			b = (unsigned char)p[j];
			if (b < 0x20 || b >= 0x80 || b == '"' || b == '\\')
				break;
		}
		if (j >= n)
			return -1;
		b = (unsigned char)p[j];
		if (b == '"')
			break;
		if (b < 0x20)
			return -1;
		if (b >= 0x80) {
			if ((len = utf8_len((const unsigned char *)p, n, j)) == 0)
				return -1;
			j += len;
			continue;
		}
		if (j + 1 >= n)
			return -1;
		if (strchr("\"\\/bfnrt", p[j + 1]) != NULL && p[j + 1] != '\0') {
			j += 2;
			continue;
		}
		if (p[j + 1] != 'u' || (u = hex4(p, n, j + 2)) < 0)
			return -1;
		j += 6;
		if (u >= 0xdc00 && u <= 0xdfff)
			return -1;	/* a low surrogate alone */
		if (u >= 0xd800 && u <= 0xdbff) {
			if (j + 1 >= n || p[j] != '\\' || p[j + 1] != 'u' ||
			    (l = hex4(p, n, j + 2)) < 0xdc00 || l > 0xdfff)
				return -1;
			j += 6;
		}
		if (u == 0)
			*nul = 1;
	}
	*i = j + 1;
	return 0;
}

/*
 * Is the real p[0, n) (checked grammar: -?int[.frac][e[+-]exp]) finite
 * as a double?  Decided from its decimal magnitude, and by strtod only
 * next to DBL_MAX.
 */
static int
real_finite(const char *p, size_t n)
{
	int64_t mag = 0, exp = 0, sign = 1;
	size_t i = 0;
	int seen = 0;
	char buf[512], *copy;
	double d;

	if (p[i] == '-')
		i++;
	for (; i < n && is_digit(p[i]); i++)
		if (seen || p[i] != '0') {
			if (!seen)
				mag = -1;
			seen = 1;
			if (mag < INT64_C(1) << 40)
				mag++;
		}
	if (i < n && p[i] == '.')
		for (i++; i < n && is_digit(p[i]); i++)
			if (!seen) {
				if (p[i] != '0')
					seen = 1;
				if (mag > -(INT64_C(1) << 40))
					mag--;
			}
	if (!seen)
		return 1;		/* zero */
	if (i < n && (p[i] == 'e' || p[i] == 'E')) {
		i++;
		if (i < n && (p[i] == '+' || p[i] == '-'))
			sign = p[i++] == '-' ? -1 : 1;
		for (; i < n && is_digit(p[i]); i++)
			if (exp < INT64_C(1) << 40)
				exp = exp * 10 + (p[i] - '0');
	}
	mag += sign * exp;
	if (mag <= 307)
		return 1;
	if (mag >= 309)
		return 0;
	/* [1e308, 1e309): as strtod rounds it (jansson asks strtod). */
	copy = n < sizeof(buf) ? buf : malloc(n + 1);
	if (copy == NULL)
		return 0;
	memcpy(copy, p, n);
	copy[n] = '\0';
	errno = 0;
	d = strtod(copy, NULL);
	if (copy != buf)
		free(copy);
	return !(isinf(d) && errno == ERANGE);
}

/*
 * jansson's lexer reads one character past a number or a literal and
 * puts it back; a NUL byte put back so is lost, so it takes "1\0," as
 * "1,".  i: just past the scalar; returns where the next token may start.
 */
static size_t
put_back_nul(const char *p, size_t n, size_t i)
{
	return i < n && p[i] == '\0' ? i + 1 : i;
}

/* Is the integer p[0, n) (checked grammar) within int64? */
static int
int_fits(const char *p, size_t n)
{
	const char *lim = p[0] == '-' ? "9223372036854775808" :
	    "9223372036854775807";
	size_t i = p[0] == '-' ? 1 : 0, len = n - i;

	if (len != 19)
		return len < 19;
	return memcmp(p + i, lim, 19) <= 0;
}

/* A number at p[*i]: move past it.  -1: not one jansson takes. */
static int
check_number(const char *p, size_t n, size_t *i)
{
	const char *num = p + *i;	/* the number's text starts here */
	size_t j = *i, len;
	int real = 0;

	if (p[j] == '-')
		j++;
	if (j >= n || !is_digit(p[j]))
		return -1;
	if (p[j] == '0') {
		if (++j < n && is_digit(p[j]))
			return -1;
	} else
		while (j < n && is_digit(p[j]))
			j++;
	if (j < n && p[j] == '.') {
		if (++j >= n || !is_digit(p[j]))
			return -1;
		while (j < n && is_digit(p[j]))
			j++;
		real = 1;
	}
	if (j < n && (p[j] == 'e' || p[j] == 'E')) {
		if (++j < n && (p[j] == '+' || p[j] == '-'))
			j++;
		if (j >= n || !is_digit(p[j]))
			return -1;
		while (j < n && is_digit(p[j]))
			j++;
		real = 1;
	}
	len = (size_t)(p + j - num);
	if (real ? !real_finite(num, len) : !int_fits(num, len))
		return -1;
	*i = put_back_nul(p, n, j);
	return 0;
}

static int
literal(const char *p, size_t n, size_t *i, const char *word)
{
	size_t len = strlen(word);

	if (*i + len > n || memcmp(p + *i, word, len) != 0)
		return -1;
	*i = put_back_nul(p, n, *i + len);
	return 0;
}

/* The closing bracket of the container open at depth (>= 1): bit
 * depth - 1 of obj is set for an object. */
static char
closer(const unsigned char *obj, size_t depth)
{
	return (obj[(depth - 1) / 8] >> (depth - 1) % 8) & 1 ? '}' : ']';
}

static int str_cmp(struct jscan_v v, const char *s, size_t len);

/* The keys a walk looks for, by length: a key of the text is compared
 * only with those of its length (an OpenAI event's eight or so members
 * against nine keys was most of the walk's key work). */
#define KS_BYLEN	32
struct keyset {
	const char *const *keys;
	size_t	 n;			/* 0 when more than JSCAN_GETV_MAX */
	size_t	 len[JSCAN_GETV_MAX];
	uint32_t bylen[KS_BYLEN];	/* bit b: keys[b] has that length */
	uint32_t longer;		/* ... KS_BYLEN bytes or more */
};

static void
keyset_init(struct keyset *ks, const char *const *keys, size_t nkeys)
{
	ks->keys = keys;
	ks->n = nkeys > JSCAN_GETV_MAX ? 0 : nkeys;
	if (ks->n == 0)
		return;		/* key_hits finds nothing: a plain check */
	memset(ks->bylen, 0, sizeof(ks->bylen));
	ks->longer = 0;
	for (size_t b = 0; b < ks->n; b++) {
		ks->len[b] = strlen(keys[b]);
		if (ks->len[b] < KS_BYLEN)
			ks->bylen[ks->len[b]] |= 1u << b;
		else
			ks->longer |= 1u << b;
	}
}

/* Which of ks's keys the checked key k (quotes included) is: a bit each
 * (a key asked twice matches twice).  A key without escapes (nearly all)
 * is compared as bytes, its length first: str_cmp looked for a backslash
 * once per key asked, a third of the time an OpenAI event's usage read
 * took (1.4 -> 1.0 µs a stream event). */
static uint32_t
key_hits(struct jscan_v k, const struct keyset *ks)
{
	uint32_t hits = 0, m;
	size_t len, b;

	if (ks->n == 0)
		return 0;
	/* A key with an escape (rare) is unescaped as it is compared. */
	if (k.n < 2 || memchr(k.p + 1, '\\', k.n - 2) != NULL) {
		for (b = 0; b < ks->n; b++)
			if (str_cmp(k, ks->keys[b], ks->len[b]) == 1)
				hits |= 1u << b;
		return hits;
	}
	len = k.n - 2;
	for (m = len < KS_BYLEN ? ks->bylen[len] : ks->longer; m != 0;
	    m &= m - 1) {
		b = (size_t)__builtin_ctz(m);
		if (ks->len[b] == len && (len == 0 ||
		    (k.p[1] == ks->keys[b][0] &&
		    memcmp(k.p + 1, ks->keys[b], len) == 0)))
			hits |= 1u << b;
	}
	return hits;
}

static int check_getv(const char *p, size_t n, struct jscan_v *root,
    const char *const *keys, size_t nkeys, struct jscan_v *out,
    uint32_t *dups);

int
jscan_check(const char *p, size_t n, struct jscan_v *root)
{
	return check_getv(p, n, root, NULL, 0, NULL, NULL);
}

int
jscan_check_getv(const char *p, size_t n, struct jscan_v *root,
    const char *const *keys, size_t nkeys, struct jscan_v *out)
{
	return check_getv(p, n, root, keys, nkeys, out, NULL);
}

int
jscan_check_getv_once(const char *p, size_t n, struct jscan_v *root,
    const char *const *keys, size_t nkeys, struct jscan_v *out)
{
	uint32_t dups = 0;

	if (check_getv(p, n, root, keys, nkeys, out, &dups) != 0)
		return -1;
	return dups != 0 ? -2 : 0;
}

/*
 * jscan_check, and while it goes the root object's members asked for:
 * at depth 1 each key is matched against keys[] (hits), and the value
 * after it is recorded when it ends, that is when the walk is back at
 * depth 1 (a later repeat of the key overwrites it, as jscan_getv).
 */
static int
check_getv(const char *p, size_t n, struct jscan_v *root,
    const char *const *keys, size_t nkeys, struct jscan_v *out,
    uint32_t *dups)
{
	/* Bit d-1: the container opened at depth d is an object. */
	unsigned char obj[JSCAN_DEPTH / 8 + 1];
	size_t i, start, depth = 0, vstart = 0;
	uint32_t hits = 0;
	struct keyset ks;
	struct jscan_v k;
	int nul;

	for (size_t b = 0; b < nkeys; b++) {
		out[b].p = NULL;
		out[b].n = 0;
	}
	/* More than JSCAN_GETV_MAX keys find nothing, as jscan_getv. */
	keyset_init(&ks, keys, nkeys);
	nkeys = ks.n;
	if (p == NULL)
		return -1;
	memset(obj, 0, sizeof(obj));
	i = skip_ws(p, n, 0);
	if (i >= n || (p[i] != '{' && p[i] != '['))
		return -1;
	start = i;
	for (;;) {
		/* A value at p[i], at depth + 1. */
		if (i >= n || depth + 1 > JSCAN_DEPTH)
			return -1;
		switch (p[i]) {
		case '{':
		case '[':
			if (p[i] == '{')
				obj[depth / 8] |= (unsigned char)(1u << depth % 8);
			else
				obj[depth / 8] &= (unsigned char)~(1u << depth % 8);
			depth++;
			i = skip_ws(p, n, i + 1);
			if (i < n && p[i] == closer(obj, depth)) {
				i++;
				depth--;
				break;
			}
			goto member;	/* a wrong bracket fails there */
		case '"':
			if (check_string(p, n, &i, &nul) != 0)
				return -1;
			break;
		case 't':
			if (literal(p, n, &i, "true") != 0)
				return -1;
			break;
		case 'f':
			if (literal(p, n, &i, "false") != 0)
				return -1;
			break;
		case 'n':
			if (literal(p, n, &i, "null") != 0)
				return -1;
			break;
		default:
			if (check_number(p, n, &i) != 0)
				return -1;
			break;
		}
		/* After a value: close containers, or go on to the next. */
		for (;;) {
			if (hits != 0 && depth == 1) {	/* a root member's */
				/* Without the NUL a scalar may have taken
				 * (put_back_nul): values end in a digit, a
				 * letter, a quote or a bracket. */
				size_t end = p[i - 1] == '\0' ? i - 1 : i;

				for (size_t b = 0; b < nkeys; b++)
					if (hits >> b & 1) {
						if (dups != NULL &&
						    out[b].p != NULL)
							*dups |= 1u << b;
						out[b].p = p + vstart;
						out[b].n = end - vstart;
					}
				hits = 0;
			}
			if (depth == 0) {
				if (skip_ws(p, n, i) != n)
					return -1;
				root->p = p + start;
				root->n = i - start;
				return 0;
			}
			i = skip_ws(p, n, i);
			if (i >= n)
				return -1;
			if (p[i] == ',') {
				i = skip_ws(p, n, i + 1);
				goto member;
			}
			if (p[i] != closer(obj, depth))
				return -1;
			i++;
			depth--;
		}
member:
		/* In an object: "key" : before the value; in an array the
		 * value itself. */
		if (closer(obj, depth) == '}') {
			k.p = p + i;
			if (i >= n || p[i] != '"' ||
			    check_string(p, n, &i, &nul) != 0 || nul)
				return -1;
			k.n = (size_t)(p + i - k.p);
			i = skip_ws(p, n, i);
			if (i >= n || p[i] != ':')
				return -1;
			i = skip_ws(p, n, i + 1);
			if (depth == 1 && nkeys > 0) {
				hits = key_hits(k, &ks);
				vstart = i;
			}
		}
	}
}

/* ---- accessors over checked text ---- */

/* Whitespace, and the NUL jansson skips after a scalar (put_back_nul). */
static size_t
skip_gap(const char *p, size_t n, size_t i)
{
	while (i < n && (is_ws(p[i]) || p[i] == '\0'))
		i++;
	return i;
}

/* p[i] is '"': the index past its closing quote (n if none).  A quote
 * ends the string unless an odd run of backslashes stands before it. */
static size_t
skip_str(const char *p, size_t n, size_t i)
{
	size_t open = i, j, k;
	const char *q;

	for (i++; i < n; i = j + 1) {
		if ((q = memchr(p + i, '"', n - i)) == NULL)
			return n;
		j = (size_t)(q - p);
		for (k = j; k > open + 1 && p[k - 1] == '\\'; k--)
			;
		if ((j - k) % 2 == 0)
			return j + 1;
	}
	return n;
}

/* The index past the value at p[i]. */
static size_t
skip_val(const char *p, size_t n, size_t i)
{
	size_t depth = 0;

	if (i >= n)
		return n;
	if (p[i] == '"')
		return skip_str(p, n, i);
	if (p[i] != '{' && p[i] != '[') {
		while (i < n && !is_ws(p[i]) && p[i] != ',' && p[i] != '}' &&
		    p[i] != ']' && p[i] != '\0')
			i++;
		return i;
	}
	while (i < n) {
		if (p[i] == '"') {
			i = skip_str(p, n, i);
			continue;
		}
		if (p[i] == '{' || p[i] == '[')
			depth++;
		else if ((p[i] == '}' || p[i] == ']') && --depth == 0)
			return i + 1;
		i++;
	}
	return n;
}

enum jscan_type
jscan_type(struct jscan_v v)
{
	if (v.p == NULL || v.n == 0)
		return JS_NONE;
	switch (v.p[0]) {
	case '{':
		return JS_OBJECT;
	case '[':
		return JS_ARRAY;
	case '"':
		return JS_STRING;
	case 't':
		return JS_TRUE;
	case 'f':
		return JS_FALSE;
	case 'n':
		return JS_NULL;
	default:
		for (size_t i = 0; i < v.n; i++)
			if (v.p[i] == '.' || v.p[i] == 'e' || v.p[i] == 'E')
				return JS_REAL;
		return JS_INTEGER;
	}
}

/*
 * The next unescaped character of the string body s[*i..n): its UTF-8
 * bytes into out (1..4); 0 at the end.
 */
static size_t
str_next(const char *s, size_t n, size_t *i, unsigned char out[4])
{
	size_t j = *i;
	long u, l;
	uint32_t cp;

	if (j >= n)
		return 0;
	if (s[j] != '\\') {
		out[0] = (unsigned char)s[j];
		*i = j + 1;
		return 1;
	}
	if (j + 1 >= n) {
		*i = n;
		return 0;
	}
	switch (s[j + 1]) {
	case 'b': out[0] = '\b'; break;
	case 'f': out[0] = '\f'; break;
	case 'n': out[0] = '\n'; break;
	case 'r': out[0] = '\r'; break;
	case 't': out[0] = '\t'; break;
	case 'u': out[0] = 0; break;
	default: out[0] = (unsigned char)s[j + 1]; break;
	}
	if (s[j + 1] != 'u') {
		*i = j + 2;
		return 1;
	}
	if ((u = hex4(s, n, j + 2)) < 0) {
		*i = n;
		return 0;
	}
	*i = j + 6;
	cp = (uint32_t)u;
	if (u >= 0xd800 && u <= 0xdbff && *i + 1 < n && s[*i] == '\\' &&
	    s[*i + 1] == 'u' && (l = hex4(s, n, *i + 2)) >= 0xdc00 &&
	    l <= 0xdfff) {
		cp = 0x10000 + (((uint32_t)u - 0xd800) << 10) +
		    ((uint32_t)l - 0xdc00);
		*i += 6;
	}
	if (cp < 0x80) {
		out[0] = (unsigned char)cp;
		return 1;
	}
	if (cp < 0x800) {
		out[0] = (unsigned char)(0xc0 | cp >> 6);
		out[1] = (unsigned char)(0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000) {
		out[0] = (unsigned char)(0xe0 | cp >> 12);
		out[1] = (unsigned char)(0x80 | (cp >> 6 & 0x3f));
		out[2] = (unsigned char)(0x80 | (cp & 0x3f));
		return 3;
	}
	out[0] = (unsigned char)(0xf0 | cp >> 18);
	out[1] = (unsigned char)(0x80 | (cp >> 12 & 0x3f));
	out[2] = (unsigned char)(0x80 | (cp >> 6 & 0x3f));
	out[3] = (unsigned char)(0x80 | (cp & 0x3f));
	return 4;
}

/*
 * Compare string v, unescaped, with s[0, len): 1 equal (whole: the
 * string has no more), 2 s is a prefix of it, 0 neither.
 */
static int
str_cmp(struct jscan_v v, const char *s, size_t len)
{
	unsigned char c[4];
	size_t i = 1, n, k, m, off = 0;

	if (jscan_type(v) != JS_STRING || v.n < 2)
		return 0;
	n = v.n - 1;			/* the closing quote */
	/* No escape: compare the bytes. */
	if (memchr(v.p + 1, '\\', n - 1) == NULL) {
		if (n - 1 < len || memcmp(v.p + 1, s, len) != 0)
			return 0;
		return n - 1 == len ? 1 : 2;
	}
	while (off < len) {
		if ((k = str_next(v.p, n, &i, c)) == 0)
			return 0;
		m = k < len - off ? k : len - off;
		if (memcmp(c, s + off, m) != 0)
			return 0;
		off += m;
		if (m < k)
			return 2;	/* s ends inside this character */
	}
	if (i >= n)
		return 1;
	/* A \u0000 next ends the string for C. */
	return str_next(v.p, n, &i, c) == 1 && c[0] == 0 ? 1 : 2;
}

int
jscan_string_eq(struct jscan_v v, const char *s)
{
	return str_cmp(v, s, strlen(s)) == 1;
}

int
jscan_string_prefix(struct jscan_v v, const char *prefix)
{
	return str_cmp(v, prefix, strlen(prefix)) != 0;
}

size_t
jscan_string_copy(struct jscan_v v, char *buf, size_t cap)
{
	unsigned char c[4];
	size_t i = 1, n, len = 0, k, at = 0;

	if (cap > 0)
		buf[0] = '\0';
	if (jscan_type(v) != JS_STRING || v.n < 2)
		return 0;
	n = v.n - 1;
	while ((k = str_next(v.p, n, &i, c)) > 0) {
		for (size_t b = 0; b < k && at + 1 < cap; b++)
			buf[at++] = (char)c[b];
		len += k;
	}
	if (cap > 0)
		buf[at] = '\0';
	return len;
}

size_t
jscan_string_len(struct jscan_v v)
{
	unsigned char c[4];
	size_t i = 1, n, len = 0, k;

	if (jscan_type(v) != JS_STRING || v.n < 2)
		return 0;
	n = v.n - 1;
	if (memchr(v.p + 1, '\\', n - 1) == NULL)
		return n - 1;
	while ((k = str_next(v.p, n, &i, c)) > 0)
		len += k;
	return len;
}

void
jscan_getv(struct jscan_v v, const char *const *keys, size_t nkeys,
    struct jscan_v *out)
{
	struct keyset ks;
	struct jscan_v k;
	size_t i, a, b;
	uint32_t hits;

	for (b = 0; b < nkeys; b++) {
		out[b].p = NULL;
		out[b].n = 0;
	}
	if (jscan_type(v) != JS_OBJECT || nkeys > JSCAN_GETV_MAX)
		return;
	keyset_init(&ks, keys, nkeys);
	i = skip_gap(v.p, v.n, 1);
	while (i < v.n && v.p[i] == '"') {
		k.p = v.p + i;
		i = skip_str(v.p, v.n, i);
		k.n = (size_t)(v.p + i - k.p);
		i = skip_gap(v.p, v.n, i);
		if (i >= v.n || v.p[i] != ':')
			break;
		a = i = skip_gap(v.p, v.n, i + 1);
		i = skip_val(v.p, v.n, i);
		hits = key_hits(k, &ks);
		for (b = 0; b < nkeys; b++)
			if (hits >> b & 1) {
				out[b].p = v.p + a;
				out[b].n = i - a;
			}
		i = skip_gap(v.p, v.n, i);
		if (i >= v.n || v.p[i] != ',')
			break;
		i = skip_gap(v.p, v.n, i + 1);
	}
}

struct jscan_v
jscan_get(struct jscan_v v, const char *key)
{
	const char *const keys[1] = { key };
	struct jscan_v found;

	jscan_getv(v, keys, 1, &found);
	return found;
}

int
jscan_next(struct jscan_v v, size_t *pos, struct jscan_v *elem)
{
	size_t i = *pos, a;

	if (jscan_type(v) != JS_ARRAY)
		return 0;
	if (i == 0)
		i = 1;
	i = skip_gap(v.p, v.n, i);
	if (i < v.n && v.p[i] == ',')
		i = skip_gap(v.p, v.n, i + 1);
	if (i >= v.n || v.p[i] == ']') {
		*pos = v.n;
		return 0;
	}
	a = i;
	i = skip_val(v.p, v.n, i);
	elem->p = v.p + a;
	elem->n = i - a;
	*pos = i;
	return 1;
}

size_t
jscan_array_size(struct jscan_v v)
{
	struct jscan_v e;
	size_t pos = 0, count = 0;

	while (jscan_next(v, &pos, &e))
		count++;
	return count;
}

int
jscan_integer(struct jscan_v v, int64_t *out)
{
	size_t i = 0;
	uint64_t m = 0;
	int neg = 0;

	if (jscan_type(v) != JS_INTEGER)
		return -1;
	if (v.p[0] == '-') {
		neg = 1;
		i = 1;
	}
	if (i >= v.n)
		return -1;
	for (; i < v.n; i++) {
		if (!is_digit(v.p[i]) || m > (UINT64_C(1) << 63) / 10)
			return -1;
		m = m * 10 + (uint64_t)(v.p[i] - '0');
	}
	if (m > (neg ? UINT64_C(1) << 63 : (UINT64_C(1) << 63) - 1))
		return -1;
	*out = neg ? (int64_t)(0 - m) : (int64_t)m;
	return 0;
}
