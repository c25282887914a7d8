/*
 * lib/money: the only place money is computed, shared by hub and agent.
 * Amounts are int64 micro-units (6 decimal places); prices are int64
 * micro-units per 1,000,000 tokens.  No floating point touches money.
 */
#ifndef SWB_MONEY_H
#define SWB_MONEY_H

#include <stddef.h>
#include <stdint.h>

#define MONEY_SCALE 1000000		/* micro-units per unit */

/*
 * Parse a non-negative decimal amount ("12", "0.5", "3.141592") into
 * micro-units, exactly.  More than 6 decimals, signs, exponents, spaces,
 * or overflow are refused: -1.
 */
int money_parse(const char *s, int64_t *micros);
/* Format micro-units as a decimal with exactly 6 places ("-0.000001"). */
void money_format(int64_t micros, char *out, size_t outlen);
/*
 * Cost of one component: (tokens * price + 500000) / 1000000, rounding half
 * up.  tokens, price >= 0.  Returns -1 on overflow or a negative input.
 */
int money_component(int64_t tokens, int64_t price_per_mtok, int64_t *cost);
/*
 * A request's cost: the sum of money_component(tokens[i], prices[i]) over
 * its n components (0 when n is 0).  Returns -1, *cost untouched, when a
 * component fails or the sum overflows int64.
 */
int money_cost(const int64_t tokens[], const int64_t prices[], size_t n,
    int64_t *cost);

/*
 * A model's prices at one version: the token components in micro-units
 * per 1,000,000 tokens; the unit components (units that are not tokens)
 * in micro-units per ONE unit: an image (when the provider reports no
 * usage tokens for it), a second of audio (transcription, translation),
 * a character of speech input, a second of video.
 */
struct money_prices {
	int64_t input, output, cached_input, cache_write;
	int64_t image, audio_second, audio_char, video_second;
};

/* Counts of the units that are not tokens (each >= 0). */
struct money_units {
	int64_t images, audio_seconds, audio_chars, video_seconds;
};

/*
 * The cost of a request's usage, the rule both hub and agent apply: input
 * counts every prompt token, cached ones and cache writes included (as
 * OpenAI reports it), so the components are uncached input (input - cached
 * - cache_write, never below 0) at the input price, cached at cached_input,
 * cache writes at cache_write and output at output.  -1 on a negative
 * count or overflow.
 */
int money_usage_cost(const struct money_prices *p, int64_t input,
    int64_t output, int64_t cached, int64_t cache_write, int64_t *cost);

/*
 * The same with the units: money_usage_cost of the tokens plus, per unit,
 * count * its price (exact, no rounding: unit prices are per one unit).
 * un NULL: no units.  -1 on a negative count or price, or overflow.
 */
int money_usage_cost_units(const struct money_prices *p, int64_t input,
    int64_t output, int64_t cached, int64_t cache_write,
    const struct money_units *un, int64_t *cost);

#endif
