/*
 * buf.h - growable byte buffer with an optional hard cap.
 *
 * Used for everything whose size comes from input: record bytes, column pages, response bodies.
 * A buffer is plain data owned by its user; not thread-safe. A zero-initialised struct buf is an
 * empty buffer with no cap (`struct buf b = {0};`). Growth that would pass the cap fails with
 * ING_ETOOBIG and leaves the contents unchanged.
 */
#ifndef ING_UTIL_BUF_H
#define ING_UTIL_BUF_H

#include <stddef.h>
#include <stdint.h>

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

#endif
