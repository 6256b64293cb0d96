/* clock.c - time helpers; see clock.h. */
#include "util/clock.h"

#include <time.h>

int64_t clock_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t clock_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void deadline_on(clockid_t clock, struct timespec *out, int64_t ms)
{
    clock_gettime(clock, out);
    out->tv_sec += (time_t)(ms / 1000);
    out->tv_nsec += (long)(ms % 1000) * 1000000L;
    if (out->tv_nsec >= 1000000000L) {
        out->tv_sec++;
        out->tv_nsec -= 1000000000L;
    }
}

void clock_deadline_ts(struct timespec *out, int64_t ms)
{
    deadline_on(CLOCK_REALTIME, out, ms);
}

void clock_deadline_mono_ts(struct timespec *out, int64_t ms)
{
    deadline_on(CLOCK_MONOTONIC, out, ms);
}
