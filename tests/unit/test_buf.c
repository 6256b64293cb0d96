/*
 * test_buf.c - unit tests for util/buf: the capped growable buffer (reserve, append, printf,
 * the cap, cstr) and the helpers the hot paths share: buf_same_short / buf_same_bytes against
 * memcmp for every length and every differing position, and the geometric array growth
 * (buf_grow_array, BUF_ARRAY_RESERVE, buf_copy_array), including its abort on a size that
 * overflows.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "util/buf.h"
#include "util/err.h"

/* ---- the buffer ---- */

static void test_append_and_cstr(void **state)
{
    (void)state;
    struct buf b = {0};
    assert_string_equal(buf_cstr(&b), "");
    assert_int_equal(buf_append_str(&b, "hello"), 0);
    assert_int_equal(buf_append_byte(&b, ' '), 0);
    assert_int_equal(buf_append(&b, "world!!", 5), 0);
    assert_int_equal(b.len, 11);
    assert_string_equal(buf_cstr(&b), "hello world");
    assert_int_equal(b.len, 11); /* the NUL is not content */
    assert_int_equal(buf_printf(&b, " %d-%s", 42, "x"), 0);
    assert_string_equal(buf_cstr(&b), "hello world 42-x");
    buf_reset(&b);
    assert_int_equal(b.len, 0);
    assert_true(b.cap > 0); /* the allocation is kept */
    assert_string_equal(buf_cstr(&b), "");
    buf_free(&b);
    assert_null(b.data);
    assert_int_equal(b.cap, 0);
    buf_free(NULL);
}

static void test_limit(void **state)
{
    (void)state;
    struct buf b = {.limit = 8};
    assert_int_equal(buf_append(&b, "12345678", 8), 0);
    assert_int_equal(buf_append_byte(&b, '9'), ING_ETOOBIG);
    assert_int_equal(buf_append(&b, "9", 1), ING_ETOOBIG);
    assert_int_equal(buf_printf(&b, "%s", "x"), ING_ETOOBIG);
    assert_int_equal(b.len, 8); /* contents unchanged by the failures */
    assert_memory_equal(b.data, "12345678", 8);
    assert_true(b.cap <= 8);
    /* the terminator may use the byte past the cap */
    assert_string_equal(buf_cstr(&b), "12345678");
    assert_int_equal(b.limit, 8);
    assert_int_equal(buf_reserve(&b, SIZE_MAX), ING_ETOOBIG);
    buf_free(&b);
    assert_int_equal(b.limit, 8);
}

static void test_large_appends_grow(void **state)
{
    (void)state;
    struct buf b = {0};
    for (int i = 0; i < 10000; i++)
        assert_int_equal(buf_append_byte(&b, (uint8_t)(i % 251)), 0);
    assert_int_equal(b.len, 10000);
    assert_true(b.cap >= 10000);
    for (int i = 0; i < 10000; i++)
        assert_int_equal(b.data[i], i % 251);
    buf_free(&b);
}

/* ---- comparing byte runs ---- */

/* Both compares against memcmp for lengths 0..199, at several alignments, equal runs and runs
 * that differ at each single position (the overlapping loads must see every byte). */
static void test_same_bytes_matches_memcmp(void **state)
{
    (void)state;
    enum { MAX = 200 };
    uint8_t a[MAX + 8], b[MAX + 8];
    for (size_t i = 0; i < sizeof(a); i++)
        a[i] = b[i] = (uint8_t)(i * 7 + 3);
    for (size_t off = 0; off < 4; off++) {
        for (size_t n = 0; n < MAX; n++) {
            const uint8_t *x = a + off, *y = b + (3 - off);
            memcpy(b + (3 - off), a + off, n);
            assert_true(buf_same_short(x, y, n));
            assert_true(buf_same_bytes(x, y, n));
            for (size_t k = 0; k < n; k++) {
                b[(3 - off) + k] ^= 0x20;
                bool want = memcmp(x, y, n) == 0;
                assert_false(want);
                assert_int_equal(buf_same_short(x, y, n), want);
                assert_int_equal(buf_same_bytes(x, y, n), want);
                b[(3 - off) + k] ^= 0x20;
            }
        }
    }
    /* bytes past n do not count */
    assert_true(buf_same_short("abcX", "abcY", 3));
    assert_true(buf_same_bytes("abcdefghX", "abcdefghY", 8));
    assert_false(buf_same_short("a", "b", 1));
}

/* ---- growing arrays ---- */

static void test_grow_array(void **state)
{
    (void)state;
    size_t cap = 0;
    int *arr = buf_grow_array(NULL, &cap, 0, sizeof(int), 8);
    assert_null(arr); /* no room needed: nothing allocated */
    assert_int_equal(cap, 0);
    arr = buf_grow_array(arr, &cap, 1, sizeof(int), 8);
    assert_non_null(arr);
    assert_int_equal(cap, 8); /* from first_cap */
    for (int i = 0; i < 8; i++)
        arr[i] = i;
    int *same = buf_grow_array(arr, &cap, 8, sizeof(int), 8);
    assert_ptr_equal(same, arr); /* room already: untouched */
    assert_int_equal(cap, 8);
    arr = buf_grow_array(arr, &cap, 9, sizeof(int), 8);
    assert_int_equal(cap, 16); /* doubled */
    arr = buf_grow_array(arr, &cap, 100, sizeof(int), 8);
    assert_int_equal(cap, 128); /* doubled until it fits */
    for (int i = 0; i < 8; i++)
        assert_int_equal(arr[i], i); /* contents kept */
    free(arr);
    /* a first capacity of 0 still grows */
    cap = 0;
    char *c = buf_grow_array(NULL, &cap, 3, 1, 0);
    assert_non_null(c);
    assert_true(cap >= 3);
    free(c);
}

static void test_array_reserve_macro(void **state)
{
    (void)state;
    struct { double *v; size_t n, cap; } list = {0};
    for (size_t i = 0; i < 1000; i++) {
        BUF_ARRAY_RESERVE(list.v, list.cap, list.n + 1, 16);
        assert_true(list.cap >= list.n + 1);
        list.v[list.n++] = (double)i / 2;
    }
    assert_int_equal(list.cap, 1024);
    for (size_t i = 0; i < 1000; i++)
        assert_true(list.v[i] == (double)i / 2);
    double *before = list.v;
    BUF_ARRAY_RESERVE(list.v, list.cap, 1024, 16);
    assert_ptr_equal(list.v, before);
    free(list.v);
}

static void test_copy_array(void **state)
{
    (void)state;
    size_t cap = 0;
    int32_t *dst = buf_copy_array(NULL, &cap, NULL, 0, sizeof(int32_t), 4);
    assert_null(dst);
    const int32_t src[] = {5, -1, 7, 9, 11, 13};
    dst = buf_copy_array(dst, &cap, src, 6, sizeof(int32_t), 4);
    assert_int_equal(cap, 8);
    assert_memory_equal(dst, src, sizeof(src));
    const int32_t two[] = {1, 2};
    int32_t *again = buf_copy_array(dst, &cap, two, 2, sizeof(int32_t), 4);
    assert_ptr_equal(again, dst);
    assert_int_equal(again[0], 1);
    assert_int_equal(again[1], 2);
    assert_int_equal(again[2], 7); /* the rest is left as it was */
    free(again);
}

/* A size that cannot be allocated aborts (as xrealloc does) instead of wrapping around: the
 * element-count guard (the doubling guard behind it would need an allocation near SIZE_MAX). */
static void test_grow_array_overflow_aborts(void **state)
{
    (void)state;
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        size_t cap = 0;
        (void)!freopen("/dev/null", "w", stderr);
        void *p = buf_grow_array(NULL, &cap, SIZE_MAX / 2, 4, 8);
        free(p);
        _exit(0); /* not reached when it aborts */
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status));
    assert_int_equal(WTERMSIG(status), SIGABRT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_append_and_cstr),
        cmocka_unit_test(test_limit),
        cmocka_unit_test(test_large_appends_grow),
        cmocka_unit_test(test_same_bytes_matches_memcmp),
        cmocka_unit_test(test_grow_array),
        cmocka_unit_test(test_array_reserve_macro),
        cmocka_unit_test(test_copy_array),
        cmocka_unit_test(test_grow_array_overflow_aborts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
