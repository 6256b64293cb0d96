/*
 * clock.h - wall-clock and monotonic time in the units the AEP APIs use (Unix milliseconds).
 * Thread-safe.
 */
#ifndef ING_UTIL_CLOCK_H
#define ING_UTIL_CLOCK_H

#include <stdint.h>
#include <time.h>

int64_t clock_now_ms(void);      /* wall clock, Unix epoch ms */
int64_t clock_mono_ns(void);     /* monotonic, for measuring durations */
/* The wall-clock instant ms milliseconds from now (ms >= 0), as pthread_cond_timedwait takes
 * its deadline with a condition variable of the default (CLOCK_REALTIME) clock. */
void clock_deadline_ts(struct timespec *out, int64_t ms);
/* The same on CLOCK_MONOTONIC, for condition variables set to that clock
 * (pthread_condattr_setclock), whose waits a change of the wall clock must not stretch. */
void clock_deadline_mono_ts(struct timespec *out, int64_t ms);

#endif
