/* test_bigmem.c - unit tests of util/bigmem: large arrays on huge-page mappings, small ones
 * from malloc, zeroed on allocation, contents kept when grown; the chunk arena. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "util/bigmem.h"

static void test_small_from_malloc(void **state)
{
    (void)state;
    uint8_t *p = bigmem_alloc(1000);
    assert_non_null(p);
    assert_false(bigmem_is_mapped(p));
    assert_int_equal(bigmem_size(p), 1000);
    for (size_t i = 0; i < 1000; i++)
        assert_int_equal(p[i], 0);
    memset(p, 0xab, 1000);
    bigmem_free(p);
    bigmem_free(NULL);
    assert_int_equal(bigmem_size(NULL), 0);
    assert_false(bigmem_is_mapped(NULL));
}

static void test_large_mapped_aligned_zeroed(void **state)
{
    (void)state;
    size_t n = BIGMEM_HUGE_MIN * 9 + 123;
    uint8_t *p = bigmem_alloc(n);
    assert_true(bigmem_is_mapped(p));
    assert_int_equal(bigmem_size(p), n);
    /* the mapping starts 2 MiB-aligned, one 64-byte header before the payload */
    assert_int_equal(((uintptr_t)p - 64) & ((2u << 20) - 1), 0);
    assert_int_equal((uintptr_t)p & 63, 0);
    for (size_t i = 0; i < n; i += 4096)
        assert_int_equal(p[i], 0);
    assert_int_equal(p[n - 1], 0);
    /* the whole usable size is writable */
    memset(p, 0x5a, bigmem_size(p));
    bigmem_free(p);
}

static void test_realloc_keeps_contents(void **state)
{
    (void)state;
    uint32_t *v = NULL;
    size_t cap = 0;
    /* grow from a malloc block through mappings, as the batch arrays do */
    for (size_t n = 0; n < 3u << 20; n++) {
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            v = bigmem_realloc(v, cap * sizeof(*v));
        }
        v[n] = (uint32_t)(n * 2654435761u);
    }
    assert_true(bigmem_is_mapped(v));
    /* still 2 MiB-aligned after the moves */
    assert_int_equal(((uintptr_t)v - 64) & ((2u << 20) - 1), 0);
    for (size_t n = 0; n < 3u << 20; n++)
        assert_int_equal(v[n], (uint32_t)(n * 2654435761u));
    /* asking for less never moves or shrinks */
    size_t before = bigmem_size(v);
    assert_ptr_equal(bigmem_realloc(v, 10), v);
    assert_int_equal(bigmem_size(v), before);
    bigmem_free(v);
    /* growing inside a mapping's slack keeps the block, and the new part is zero */
    uint8_t *p = bigmem_alloc(BIGMEM_HUGE_MIN);
    memset(p, 7, BIGMEM_HUGE_MIN);
    uint8_t *q = bigmem_realloc(p, BIGMEM_HUGE_MIN + 4096);
    assert_ptr_equal(p, q);
    assert_int_equal(q[BIGMEM_HUGE_MIN - 1], 7);
    assert_int_equal(q[BIGMEM_HUGE_MIN + 4095], 0);
    bigmem_free(q);
}

/* The chunk arena: pieces aligned as asked, zeroed, distinct and intact whatever came after
 * (across chunk changes and pieces larger than a chunk); clear makes it empty and reusable. */
static void test_arena(void **state)
{
    (void)state;
    struct bigmem_arena a = {0};
    enum { N = 20000 };
    uint8_t **piece = calloc(N, sizeof(*piece));
    size_t *len = calloc(N, sizeof(*len));
    uint8_t *zeros = calloc(9u << 19, 1);
    for (size_t i = 0; i < N; i++) {
        size_t align = (size_t)1 << (i % 7); /* 1 .. 64 */
        len[i] = i % 1999 == 0 ? (9u << 19) : 1 + (i * 7919) % 700;
        if (i % 3 == 2) { /* the inline copy between aligned takes */
            piece[i] = (uint8_t *)bigmem_arena_strdup(&a, (const char *)zeros, len[i] - 1);
        } else {
            piece[i] = bigmem_arena_take(&a, len[i], align);
            assert_int_equal((uintptr_t)piece[i] & (align - 1), 0);
        }
        for (size_t k = 0; k < len[i]; k += 61)
            assert_int_equal(piece[i][k], 0);
        memset(piece[i], (int)(i & 0xff), len[i]);
    }
    for (size_t i = 0; i < N; i++) {
        assert_int_equal(piece[i][0], (uint8_t)(i & 0xff));
        assert_int_equal(piece[i][len[i] - 1], (uint8_t)(i & 0xff));
    }
    char *s = bigmem_arena_strdup(&a, "lumaCrmId!", 9);
    assert_string_equal(s, "lumaCrmId");
    bigmem_arena_clear(&a);
    assert_null(a.head);
    uint8_t *again = bigmem_arena_take(&a, 100, 8);
    assert_int_equal(again[99], 0);
    bigmem_arena_clear(&a);
    bigmem_arena_clear(NULL);
    free(piece);
    free(len);
    free(zeros);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_small_from_malloc),
        cmocka_unit_test(test_large_mapped_aligned_zeroed),
        cmocka_unit_test(test_realloc_keeps_contents),
        cmocka_unit_test(test_arena),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
