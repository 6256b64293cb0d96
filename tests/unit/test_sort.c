/* test_sort.c - util/sort: sort_unique_i64 over unsorted, sorted, repeated and extreme values. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "util/sort.h"

static void test_small(void **state)
{
    (void)state;
    int64_t one[] = {42};
    assert_int_equal(sort_unique_i64(NULL, 0), 0);
    assert_int_equal(sort_unique_i64(one, 1), 1);
    assert_int_equal(one[0], 42);
    int64_t two_same[] = {7, 7};
    assert_int_equal(sort_unique_i64(two_same, 2), 1);
    assert_int_equal(two_same[0], 7);
}

static void test_unsorted_with_repeats(void **state)
{
    (void)state;
    int64_t v[] = {5, -3, 9, 5, 0, -3, INT64_MAX, INT64_MIN, 9, 0};
    const int64_t want[] = {INT64_MIN, -3, 0, 5, 9, INT64_MAX};
    size_t n = sort_unique_i64(v, sizeof(v) / sizeof(v[0]));
    assert_int_equal(n, sizeof(want) / sizeof(want[0]));
    for (size_t i = 0; i < n; i++)
        assert_true(v[i] == want[i]);
}

static void test_sorted_with_repeats(void **state)
{
    (void)state;
    /* Already in order: the qsort is skipped, the repeats must still go. */
    int64_t v[] = {1, 1, 2, 3, 3, 3, 8};
    const int64_t want[] = {1, 2, 3, 8};
    size_t n = sort_unique_i64(v, sizeof(v) / sizeof(v[0]));
    assert_int_equal(n, 4);
    for (size_t i = 0; i < n; i++)
        assert_true(v[i] == want[i]);
}

static void test_descending_large(void **state)
{
    (void)state;
    enum { N = 1000 };
    int64_t v[2 * N];
    for (size_t i = 0; i < N; i++) {
        v[2 * i] = (int64_t)(N - i);
        v[2 * i + 1] = (int64_t)(N - i);
    }
    size_t n = sort_unique_i64(v, 2 * N);
    assert_int_equal(n, N);
    for (size_t i = 0; i < n; i++)
        assert_true(v[i] == (int64_t)(i + 1));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_small),
        cmocka_unit_test(test_unsorted_with_repeats),
        cmocka_unit_test(test_sorted_with_repeats),
        cmocka_unit_test(test_descending_large),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
