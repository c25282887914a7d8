/*
 * lib/clock: the two clocks every process uses, in milliseconds.
 */
#ifndef SWB_CLOCK_H
#define SWB_CLOCK_H

#include <stdint.h>

int64_t clock_wall_ms(void);	/* CLOCK_REALTIME: timestamps people read */
int64_t clock_mono_ms(void);	/* CLOCK_MONOTONIC: deadlines and intervals */
int64_t clock_mono_us(void);	/* CLOCK_MONOTONIC, finer */
/* Exponential back-off: first * 2^attempt, capped at cap. */
int64_t clock_backoff_ms(int64_t first, int64_t cap, unsigned attempt);

#endif
