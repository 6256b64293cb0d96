/*
 * date.c - day counts <-> civil dates (see date.h).
 *
 * The era method: the calendar repeats every 400 years (146097 days), and counting years from
 * March makes the leap day the last day of a year, so that a year's day maps to its month by a
 * linear formula (153 days per five months from March). Integer arithmetic only, no tables.
 */
#include "util/date.h"

#define DAYS_PER_ERA 146097       /* 400 Gregorian years */
#define EPOCH_FROM_0000_03_01 719468 /* days from 0000-03-01 to 1970-01-01 */

/* a / b rounded down (b > 0); no intermediate that can overflow. */
static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return a % b < 0 ? q - 1 : q;
}

void date_civil_from_days(int64_t days, int64_t *year, int *month, int *day)
{
    int64_t z = days + EPOCH_FROM_0000_03_01;
    int64_t era = floor_div(z, DAYS_PER_ERA);
    int64_t doe = z - era * DAYS_PER_ERA;                                /* [0, 146096] */
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365; /* [0, 399] */
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);              /* [0, 365], March 1 = 0 */
    int64_t mp = (5 * doy + 2) / 153;                                   /* [0, 11], March = 0 */
    *day = (int)(doy - (153 * mp + 2) / 5 + 1);
    *month = (int)(mp < 10 ? mp + 3 : mp - 9);
    *year = yoe + era * 400 + (*month <= 2);
}

int64_t date_days_from_civil(int64_t year, int month, int day)
{
    int64_t y = year - (month <= 2); /* years start in March */
    int64_t era = floor_div(y, 400);
    int64_t yoe = y - era * 400;                                          /* [0, 399] */
    int64_t doy = (153 * (month > 2 ? month - 3 : month + 9) + 2) / 5 + day - 1; /* [0, 365] */
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;                  /* [0, 146096] */
    return era * DAYS_PER_ERA + doe - EPOCH_FROM_0000_03_01;
}

int64_t date_days_of_ms(int64_t ms)
{
    return floor_div(ms, INT64_C(86400000));
}

static void put_digits(char *p, int v, int width)
{
    for (int i = width - 1; i >= 0; i--) {
        p[i] = (char)('0' + v % 10);
        v /= 10;
    }
}

bool date_put_ymd(char out[10], int64_t days)
{
    int64_t y;
    int m, d;
    date_civil_from_days(days, &y, &m, &d);
    if (y < 0 || y > 9999)
        return false;
    put_digits(out, (int)y, 4);
    out[4] = '-';
    put_digits(out + 5, m, 2);
    out[7] = '-';
    put_digits(out + 8, d, 2);
    return true;
}
