/*
 * sort.c - sorting helpers over integer arrays (see sort.h).
 */
#include "util/sort.h"

#include <stdbool.h>
#include <stdlib.h>

static int cmp_i64(const void *pa, const void *pb)
{
    int64_t a = *(const int64_t *)pa, b = *(const int64_t *)pb;
    return (a > b) - (a < b);
}

size_t sort_unique_i64(int64_t *v, size_t n)
{
    if (n < 2)
        return n;
    /* One pass to see whether qsort is needed: label lists mostly arrive in order. */
    bool sorted = true;
    for (size_t i = 1; i < n && sorted; i++)
        sorted = v[i - 1] <= v[i];
    if (!sorted)
        qsort(v, n, sizeof(*v), cmp_i64);
    size_t kept = 1;
    for (size_t i = 1; i < n; i++)
        if (v[i] != v[kept - 1])
            v[kept++] = v[i];
    return kept;
}
