/*
 * bigmem.h - large scratch arrays on transparent huge pages.
 *
 * Why: on a paravirtualised VM every first touch of a 4 KiB page is a trap to the hypervisor
 * (~10 us measured here), and stitching a million-record identity batch touches a few hundred
 * MB of scratch arrays: the page faults alone cost more than the work. An array of
 * BIGMEM_HUGE_MIN bytes or more is mapped on its own, 2 MiB-aligned, with MADV_HUGEPAGE (so THP
 * "madvise" mode gives it huge pages: one fault per 2 MiB); smaller ones come from malloc.
 * Without THP the kernel falls back to small pages and nothing else changes.
 *
 * Like xmalloc, these abort on failure (scratch sized by what a batch holds). Memory is zeroed
 * when first allocated; bigmem_realloc keeps the contents (growing in place while the mapping
 * has room) and zeroes nothing. Thread-safe.
 * Pointers from here go back through bigmem_free / bigmem_realloc only (never free()).
 */
#ifndef ING_UTIL_BIGMEM_H
#define ING_UTIL_BIGMEM_H

#include <stdbool.h>
#include <stddef.h>
#include <string.h>

/* From 256 KiB a mapping of its own pays: one huge-page fault (zeroing 2 MiB) costs less than
 * the 64 small-page faults it replaces. */
#define BIGMEM_HUGE_MIN ((size_t)256 << 10)

void *bigmem_alloc(size_t bytes);
/* Grow (or keep) p to at least `bytes`; NULL p allocates. Never shrinks. */
void *bigmem_realloc(void *p, size_t bytes);
void bigmem_free(void *p); /* NULL is a no-op */
/* The size last asked for p; 0 for NULL. */
size_t bigmem_size(const void *p);
/* True when p is a huge-page mapping of its own (not malloc). */
bool bigmem_is_mapped(const void *p);

/* A chunk arena: many small pieces carved from large chunks and released all at once, so
 * decoding a batch's values or clusters is not one malloc each on a heap that has to fault its
 * pages in. Chunks start small (a short-lived use stays small) and double up to just under
 * 4 MiB, two huge pages with bigmem's header. Pieces are zeroed (chunks come zeroed and are
 * used once) and aligned as asked (a power of two, at most 64). Zero-initialise the struct;
 * one thread at a time. */
struct bigmem_chunk;
struct bigmem_arena {
    struct bigmem_chunk *head;
    size_t next_cap; /* payload bytes of the next chunk */
    char *cur, *end; /* the free part of the head chunk (the inline path below) */
};
void *bigmem_arena_take(struct bigmem_arena *a, size_t n, size_t align);
/* A copy of the len bytes at s (not NUL-terminated) with a NUL added. Inline: a batch copies
 * millions of identity values this way. */
static inline char *bigmem_arena_strdup(struct bigmem_arena *a, const char *s, size_t len)
{
    char *d;
    if (a->cur && (size_t)(a->end - a->cur) > len) {
        d = a->cur;
        a->cur += len + 1;
    } else {
        d = bigmem_arena_take(a, len + 1, 1);
    }
    memcpy(d, s, len);
    d[len] = '\0';
    return d;
}
/* Release every chunk; the arena is empty again, ready for reuse. */
void bigmem_arena_clear(struct bigmem_arena *a);

#endif
