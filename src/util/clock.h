/*
 * clock.h - wall-clock and monotonic time in the units the AEP APIs use (Unix milliseconds).
 * Thread-safe.
 */
#ifndef ING_UTIL_CLOCK_H
#define ING_UTIL_CLOCK_H

#include <stdint.h>

int64_t clock_now_ms(void);      /* wall clock, Unix epoch ms */
int64_t clock_mono_ns(void);     /* monotonic, for measuring durations */

#endif
