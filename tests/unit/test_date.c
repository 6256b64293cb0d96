/* test_date.c - util/date: day counts <-> civil dates at the edges (epoch, leap days, century
 * years, year 9999, before 1970 and before year 1) and a day-by-day walk over 1600..2400. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "util/date.h"

struct known {
    int64_t days;
    int64_t y;
    int m, d;
};

/* Day counts from the calendar (Python's datetime.date agrees). */
static const struct known k_known[] = {
    {0, 1970, 1, 1},        {-1, 1969, 12, 31},     {789, 1972, 2, 29},
    {11016, 2000, 2, 29},   {-25508, 1900, 3, 1},   {-25509, 1900, 2, 28},
    {19782, 2024, 2, 29},   {-135081, 1600, 2, 29}, {2932896, 9999, 12, 31},
    {-719162, 1, 1, 1},     {-719103, 1, 3, 1},     {-719468, 0, 3, 1},
    {-719469, 0, 2, 29},    {-719528, 0, 1, 1},     {-719529, -1, 12, 31},
};

static void test_known_dates(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(k_known) / sizeof(k_known[0]); i++) {
        const struct known *k = &k_known[i];
        int64_t y = 0;
        int m = 0, d = 0;
        date_civil_from_days(k->days, &y, &m, &d);
        assert_int_equal(y, k->y);
        assert_int_equal(m, k->m);
        assert_int_equal(d, k->d);
        assert_int_equal(date_days_from_civil(k->y, k->m, k->d), k->days);
    }
}

static bool leap(int64_t y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int month_len(int64_t y, int m)
{
    static const int len[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return m == 2 && leap(y) ? 29 : len[m - 1];
}

/* Every day from 1600-01-01 to 2400-12-31 (four eras' worth of century rules): each count is
 * the day after the previous one, and the inverse gives the count back. */
static void test_day_by_day(void **state)
{
    (void)state;
    int64_t days = date_days_from_civil(1600, 1, 1);
    assert_int_equal(days, -135140);
    int64_t y = 1600;
    int m = 1, d = 1;
    while (y <= 2400) {
        int64_t gy = 0;
        int gm = 0, gd = 0;
        date_civil_from_days(days, &gy, &gm, &gd);
        if (gy != y || gm != m || gd != d)
            fail_msg("day %lld: got %lld-%d-%d, want %lld-%d-%d", (long long)days,
                     (long long)gy, gm, gd, (long long)y, m, d);
        assert_int_equal(date_days_from_civil(y, m, d), days);
        days++;
        if (++d > month_len(y, m)) {
            d = 1;
            if (++m > 12) {
                m = 1;
                y++;
            }
        }
    }
}

static void test_far_range(void **state)
{
    (void)state;
    /* the documented range: |days| <= 2^40 round-trips */
    const int64_t far[] = {(int64_t)1 << 40, -((int64_t)1 << 40), 123456789012LL,
                           -987654321098LL};
    for (size_t i = 0; i < sizeof(far) / sizeof(far[0]); i++) {
        int64_t y = 0;
        int m = 0, d = 0;
        date_civil_from_days(far[i], &y, &m, &d);
        assert_true(m >= 1 && m <= 12 && d >= 1 && d <= month_len(y, m));
        assert_int_equal(date_days_from_civil(y, m, d), far[i]);
        /* and the next day is the next date */
        int64_t y2 = 0;
        int m2 = 0, d2 = 0;
        date_civil_from_days(far[i] + 1, &y2, &m2, &d2);
        if (d == month_len(y, m))
            assert_int_equal(d2, 1);
        else
            assert_true(y2 == y && m2 == m && d2 == d + 1);
    }
}

/* A millisecond timestamp's day is rounded down: the last millisecond before 1970 is day -1. */
static void test_days_of_ms(void **state)
{
    (void)state;
    assert_int_equal(date_days_of_ms(0), 0);
    assert_int_equal(date_days_of_ms(86399999), 0);
    assert_int_equal(date_days_of_ms(86400000), 1);
    assert_int_equal(date_days_of_ms(-1), -1);
    assert_int_equal(date_days_of_ms(-86400000), -1);
    assert_int_equal(date_days_of_ms(-86400001), -2);
    assert_int_equal(date_days_of_ms(INT64_MAX), INT64_MAX / 86400000);
    assert_int_equal(date_days_of_ms(INT64_MIN), INT64_MIN / 86400000 - 1);
}

/* "YYYY-MM-DD" for years 0..9999, nothing written outside them. */
static void test_put_ymd(void **state)
{
    (void)state;
    char out[11] = {0};
    assert_true(date_put_ymd(out, 0));
    assert_string_equal(out, "1970-01-01");
    assert_true(date_put_ymd(out, date_days_from_civil(2000, 2, 29)));
    assert_string_equal(out, "2000-02-29");
    assert_true(date_put_ymd(out, date_days_from_civil(0, 1, 1)));
    assert_string_equal(out, "0000-01-01");
    assert_true(date_put_ymd(out, date_days_from_civil(9999, 12, 31)));
    assert_string_equal(out, "9999-12-31");
    memcpy(out, "untouched!", 10);
    assert_false(date_put_ymd(out, date_days_from_civil(10000, 1, 1)));
    assert_false(date_put_ymd(out, date_days_from_civil(-1, 12, 31)));
    assert_string_equal(out, "untouched!");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_known_dates),
        cmocka_unit_test(test_day_by_day),
        cmocka_unit_test(test_far_range),
        cmocka_unit_test(test_days_of_ms),
        cmocka_unit_test(test_put_ymd),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
