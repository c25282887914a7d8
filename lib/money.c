/*
 * lib/money: exact decimal parsing/formatting of micro-units and the
 * per-component cost rule.
 */
#include "lib/money.h"

#include <stdio.h>

int
money_parse(const char *s, int64_t *micros)
{
	int64_t whole = 0, frac = 0;
	int fdigits = 0, wdigits = 0;

	if (s == NULL)
		return -1;
	/* whole stays <= INT64_MAX / MONEY_SCALE; the sum is checked below. */
	for (; *s >= '0' && *s <= '9'; s++, wdigits++) {
		if (whole > (INT64_MAX / MONEY_SCALE - (*s - '0')) / 10)
			return -1;
		whole = whole * 10 + (*s - '0');
	}
	if (*s == '.') {
		s++;
		for (; *s >= '0' && *s <= '9'; s++, fdigits++) {
			if (fdigits == 6)
				return -1;
			frac = frac * 10 + (*s - '0');
		}
		if (fdigits == 0)
			return -1;
	}
	if (*s != '\0' || wdigits == 0)
		return -1;
	for (int i = fdigits; i < 6; i++)
		frac *= 10;
	if (whole * MONEY_SCALE > INT64_MAX - frac)
		return -1;
	*micros = whole * MONEY_SCALE + frac;
	return 0;
}

void
money_format(int64_t micros, char *out, size_t outlen)
{
	/* Work in unsigned so INT64_MIN formats too. */
	uint64_t m = micros < 0 ? (uint64_t)0 - (uint64_t)micros : (uint64_t)micros;

	snprintf(out, outlen, "%s%llu.%06llu", micros < 0 ? "-" : "",
	    (unsigned long long)(m / MONEY_SCALE),
	    (unsigned long long)(m % MONEY_SCALE));
}

int
money_component(int64_t tokens, int64_t price_per_mtok, int64_t *cost)
{
	__int128 v;

	if (tokens < 0 || price_per_mtok < 0)
		return -1;
	v = (__int128)tokens * price_per_mtok + 500000;
	v /= 1000000;
	if (v > INT64_MAX)
		return -1;
	*cost = (int64_t)v;
	return 0;
}

int
money_cost(const int64_t tokens[], const int64_t prices[], size_t n,
    int64_t *cost)
{
	int64_t sum = 0, c;

	for (size_t i = 0; i < n; i++) {
		if (money_component(tokens[i], prices[i], &c) != 0 ||
		    c > INT64_MAX - sum)
			return -1;
		sum += c;
	}
	*cost = sum;
	return 0;
}

int
money_usage_cost(const struct money_prices *p, int64_t input, int64_t output,
    int64_t cached, int64_t cache_write, int64_t *cost)
{
	int64_t tokens[4], prices[4], unc;

	if (p == NULL || input < 0 || output < 0 || cached < 0 ||
	    cache_write < 0)
		return -1;
	unc = input - cached - cache_write;
	tokens[0] = unc < 0 ? 0 : unc;
	tokens[1] = cached;
	tokens[2] = cache_write;
	tokens[3] = output;
	prices[0] = p->input;
	prices[1] = p->cached_input;
	prices[2] = p->cache_write;
	prices[3] = p->output;
	return money_cost(tokens, prices, 4, cost);
}

int
money_usage_cost_units(const struct money_prices *p, int64_t input,
    int64_t output, int64_t cached, int64_t cache_write,
    const struct money_units *un, int64_t *cost)
{
	int64_t sum, n[4], pr[4];
	__int128 v;

	if (money_usage_cost(p, input, output, cached, cache_write, &sum) != 0)
		return -1;
	if (un != NULL) {
		n[0] = un->images;
		n[1] = un->audio_seconds;
		n[2] = un->audio_chars;
		n[3] = un->video_seconds;
		pr[0] = p->image;
		pr[1] = p->audio_second;
		pr[2] = p->audio_char;
		pr[3] = p->video_second;
		for (int i = 0; i < 4; i++) {
			if (n[i] < 0 || pr[i] < 0)
				return -1;
			v = (__int128)n[i] * pr[i];
			if (v > INT64_MAX - sum)
				return -1;
			sum += (int64_t)v;
		}
	}
	*cost = sum;
	return 0;
}
