/*
 * date.h - calendar arithmetic: day counts since 1970-01-01 and civil dates (proleptic
 * Gregorian, year 0 = 1 BC), the one place for it (XDM conversions, the Parquet reader's
 * rendering, the Parquet shredder, `ingot gen`). Pure functions, thread-safe.
 */
#ifndef ING_UTIL_DATE_H
#define ING_UTIL_DATE_H

#include <stdint.h>

/* The civil date of day `days` (0 = 1970-01-01, negative before). Exact for |days| <= 2^40
 * (years beyond +-3 billion), the widest any caller produces. */
void date_civil_from_days(int64_t days, int64_t *year, int *month, int *day);

/* The day count of a civil date (month 1..12, day 1..31, not checked against the month's
 * length: the caller validates), the inverse of date_civil_from_days over the same range. */
int64_t date_days_from_civil(int64_t year, int month, int day);

#include <stdbool.h>

/* "YYYY-MM-DD" of day `days` into out (10 bytes, no NUL) when its year is 0..9999, the range
 * four digits hold; false, with nothing written, for any other year. */
bool date_put_ymd(char out[10], int64_t days);

/* The day (0 = 1970-01-01) that millisecond `ms` since the epoch falls on: rounded down, so
 * -1 ms is day -1. Any int64_t. */
int64_t date_days_of_ms(int64_t ms);

#endif
