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

#endif
