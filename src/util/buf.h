/*
 * buf.h - growable byte buffer with an optional hard cap.
 *
 * Used for everything whose size comes from input: record bytes, column pages, response bodies.
 * A buffer is plain data owned by its user; not thread-safe. A zero-initialised struct buf is an
 * empty buffer with no cap (`struct buf b = {0};`). Growth that would pass the cap fails with
 * ING_ETOOBIG and leaves the contents unchanged.
 *
 * Also here, for the hot paths (the shredder, the Parquet writer) to share rather than each
 * keep a copy: buf_same_bytes / buf_same_short, inline compares of byte runs, and
 * BUF_ARRAY_RESERVE / buf_grow_array / buf_copy_array, for the small internal arrays (staged
 * values, index lists) that grow by doubling and, like xrealloc, abort when memory runs out.
 */
#ifndef ING_UTIL_BUF_H
#define ING_UTIL_BUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

struct buf {
    uint8_t *data;
    size_t len;
    size_t cap;   /* allocated bytes */
    size_t limit; /* 0 = unlimited */
};

/* Make room for `extra` more bytes. 0, ING_ETOOBIG or ING_ENOMEM. */
int buf_reserve(struct buf *b, size_t extra);
int buf_append(struct buf *b, const void *p, size_t n);
int buf_append_byte(struct buf *b, uint8_t c);
int buf_append_str(struct buf *b, const char *s);
int buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Keep the allocation, drop the contents. */
static inline void buf_reset(struct buf *b) { b->len = 0; }
/* Free the allocation; the struct is empty again (limit kept). NULL is a no-op. */
void buf_free(struct buf *b);
/* NUL-terminate without counting the NUL in len; returns data as char* (or "" if empty). */
const char *buf_cstr(struct buf *b);

/*
 * a[0, n) == b[0, n), for runs that are short nearly always (property names, the bytes between
 * a template's scalars): inline, because there a call to memcmp costs more than the comparison,
 * and without a length test for memcmp's sake, because there it would be one more instruction
 * per call that seldom pays. Any length is compared right. Loads are memcpy'd: any alignment.
 */
static inline bool buf_same_short(const void *a, const void *b, size_t n)
{
    const uint8_t *x = a, *y = b;
    if (n >= 8) { /* 8 bytes at a time, the last 8 overlapping what was compared */
        uint64_t u, v;
        for (; n > 8; x += 8, y += 8, n -= 8) {
            memcpy(&u, x, 8);
            memcpy(&v, y, 8);
            if (u != v)
                return false;
        }
        memcpy(&u, x + n - 8, 8);
        memcpy(&v, y + n - 8, 8);
        return u == v;
    }
    if (n >= 4) { /* the first 4 and the last 4, overlapping */
        uint32_t u1, v1, u2, v2;
        memcpy(&u1, x, 4);
        memcpy(&v1, y, 4);
        memcpy(&u2, x + n - 4, 4);
        memcpy(&v2, y + n - 4, 4);
        return ((u1 ^ v1) | (u2 ^ v2)) == 0;
    }
    if (n >= 2) {
        uint16_t u, v;
        memcpy(&u, x, 2);
        memcpy(&v, y, 2);
        return u == v && x[n - 1] == y[n - 1];
    }
    return n == 0 || x[0] == y[0];
}

/* a[0, n) == b[0, n) for runs of any length (dictionary strings): buf_same_short up to 64
 * bytes, memcmp past them, where its wide loads win. */
static inline bool buf_same_bytes(const void *a, const void *b, size_t n)
{
    return n > 64 ? memcmp(a, b, n) == 0 : buf_same_short(a, b, n);
}

/* The growing part of buf_grow_array, out of line: callers inline only the capacity test. */
void *buf__grow_array(void *p, size_t *cap, size_t need, size_t elem, size_t first_cap);

/*
 * `p`, an array of *cap elements of `elem` bytes, with room for at least `need`: returned as is
 * when it has, else reallocated to a capacity doubled from max(*cap, first_cap) until it fits
 * (so an array grown one element at a time is copied a logarithmic number of times) and *cap
 * updated. A NULL p with *cap == 0 is an empty array. Aborts when memory runs out or the size
 * overflows, like xrealloc: for internal arrays, not for sizes an input chooses freely.
 */
static inline void *buf_grow_array(void *p, size_t *cap, size_t need, size_t elem,
                                   size_t first_cap)
{
    return need <= *cap ? p : buf__grow_array(p, cap, need, elem, first_cap);
}

/*
 * buf_grow_array on the array itself: `arr` (a pointer lvalue) and `cap` (a size_t lvalue, its
 * capacity in elements) get room for `need` elements of sizeof(*arr) bytes. Nothing is stored
 * when there is room, so a hot loop that adds one element at a time pays one compare. Evaluates
 * its arguments more than once.
 */
#define BUF_ARRAY_RESERVE(arr, cap, need, first_cap)                                          \
    do {                                                                                      \
        if ((need) > (cap))                                                                   \
            (arr) = buf__grow_array((arr), &(cap), (need), sizeof(*(arr)), (first_cap));      \
    } while (0)

/* src[0, n) copied over the array dst (grown as buf_grow_array grows it); returns dst, perhaps
 * moved. src and dst must not overlap. */
static inline void *buf_copy_array(void *dst, size_t *cap, const void *src, size_t n,
                                   size_t elem, size_t first_cap)
{
    dst = buf_grow_array(dst, cap, n, elem, first_cap);
    if (n)
        memcpy(dst, src, n * elem);
    return dst;
}

#endif
