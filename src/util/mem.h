/*
 * mem.h - allocation helpers for small internal objects.
 *
 * xmalloc and friends abort the process on failure: a failed 64-byte allocation leaves no sane
 * way on. Buffers whose size comes from input must not use them; they go through struct buf with
 * a cap and report ING_ETOOBIG / ING_ENOMEM instead. Thread-safe.
 */
#ifndef ING_UTIL_MEM_H
#define ING_UTIL_MEM_H

#include <stddef.h>

void *xmalloc(size_t n);
void *xcalloc(size_t count, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
/* printf into a new string; caller frees. */
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#define ING_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

#endif
