/*
 * lib/clock: wall and monotonic milliseconds (monotonic microseconds),
 * and the back-off rule.
 */
#include "lib/clock.h"

#include <time.h>

int64_t
clock_wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t
clock_mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t
clock_mono_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int64_t
clock_backoff_ms(int64_t first, int64_t cap, unsigned attempt)
{
	int64_t d = first;

	for (unsigned i = 0; i < attempt && d < cap; i++)
		d *= 2;
	return d > cap ? cap : d;
}
