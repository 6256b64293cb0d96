/*
 * sort.h - small sorting helpers over integer arrays, shared by the identity graph and the
 * profile store (both keep label and id lists as sorted sets of int64). Pure, thread-safe.
 */
#ifndef ING_UTIL_SORT_H
#define ING_UTIL_SORT_H

#include <stddef.h>
#include <stdint.h>

/* Sort v[0..n) ascending and drop repeats in place; returns the new count. An array that is
 * already in order (the common case for label lists) is not sorted again. */
size_t sort_unique_i64(int64_t *v, size_t n);

#endif
