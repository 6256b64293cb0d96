/* bigmem.c - large scratch arrays on transparent huge pages; see bigmem.h. */
#include "util/bigmem.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

/* Under AddressSanitizer the slack of a mapping past the asked size is poisoned, so overruns
 * are still caught (ASan knows nothing of mappings made here otherwise). */
#if defined(__SANITIZE_ADDRESS__)
#define BIGMEM_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define BIGMEM_ASAN 1
#endif
#endif
#ifdef BIGMEM_ASAN
#include <sanitizer/asan_interface.h>
#define POISON(p, n) ASAN_POISON_MEMORY_REGION((p), (n))
#define UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
#else
#define POISON(p, n) ((void)(p), (void)(n))
#define UNPOISON(p, n) ((void)(p), (void)(n))
#endif

#define HUGE_PAGE ((size_t)2 << 20)
/* The header sits before the payload; 64 bytes keeps the payload cache-line aligned in a
 * mapping (malloc gives 16). */
#define HDR_SIZE ((size_t)64)

struct hdr {
    size_t map_len; /* length of the mapping; 0 when the block came from malloc */
    size_t cap;     /* payload bytes the block can hold */
    size_t size;    /* payload bytes asked for (the rest is poisoned under ASan) */
};

static void oom(size_t n)
{
    fprintf(stderr, "ingot: out of memory allocating %zu bytes (bigmem)\n", n);
    abort();
}

static struct hdr *hdr_of(const void *p)
{
    return (struct hdr *)((uintptr_t)p - HDR_SIZE);
}

/* An anonymous mapping of len + HUGE_PAGE bytes at *raw; returns where the 2 MiB-aligned
 * len-byte part inside it starts, or NULL. */
static uint8_t *reserve_aligned(size_t len, int prot, int flags, uint8_t **raw)
{
    *raw = mmap(NULL, len + HUGE_PAGE, prot, MAP_PRIVATE | MAP_ANONYMOUS | flags, -1, 0);
    if (*raw == MAP_FAILED)
        return NULL;
    return (uint8_t *)(((uintptr_t)*raw + HUGE_PAGE - 1) & ~(uintptr_t)(HUGE_PAGE - 1));
}

/* Unmap the parts of a reservation (reserve_aligned) before and after [start, start + len). */
static void trim_reservation(uint8_t *raw, uint8_t *start, size_t len)
{
    size_t head = (size_t)(start - raw), tail = HUGE_PAGE - head;
    if (head)
        munmap(raw, head);
    if (tail)
        munmap(start + len, tail);
}

/* A 2 MiB-aligned anonymous mapping of len bytes (a multiple of HUGE_PAGE), or NULL. */
static void *map_aligned(size_t len)
{
    uint8_t *raw;
    uint8_t *start = reserve_aligned(len, PROT_READ | PROT_WRITE, 0, &raw);
    if (!start)
        return NULL;
    trim_reservation(raw, start, len);
    /* advice only: without THP the mapping works with small pages */
    (void)madvise(start, len, MADV_HUGEPAGE);
    return start;
}

void *bigmem_alloc(size_t bytes)
{
    if (bytes > SIZE_MAX - HDR_SIZE - 2 * HUGE_PAGE)
        oom(bytes);
    struct hdr *h = NULL;
    if (bytes >= BIGMEM_HUGE_MIN) {
        size_t len = (bytes + HDR_SIZE + HUGE_PAGE - 1) & ~(HUGE_PAGE - 1);
        h = map_aligned(len);
        if (!h)
            oom(bytes);
        h->map_len = len;
        h->cap = len - HDR_SIZE;
        POISON((uint8_t *)h + HDR_SIZE + bytes, h->cap - bytes);
    } else {
        h = calloc(1, HDR_SIZE + bytes);
        if (!h)
            oom(bytes);
        h->map_len = 0;
        h->cap = bytes;
    }
    h->size = bytes;
    return (uint8_t *)h + HDR_SIZE;
}

/* Grow a mapping to hold `bytes`: the kernel moves its page tables to a larger 2 MiB-aligned
 * place (mremap), so the pages already touched are neither copied nor faulted again. NULL when
 * the move fails (the block is unchanged). */
static struct hdr *remap_grow(struct hdr *h, size_t bytes)
{
    size_t len = (bytes + HDR_SIZE + HUGE_PAGE - 1) & ~(HUGE_PAGE - 1);
    /* reserve an address range to land on, aligned inside it */
    uint8_t *raw;
    uint8_t *start = reserve_aligned(len, PROT_NONE, MAP_NORESERVE, &raw);
    if (!start)
        return NULL;
    size_t old_len = h->map_len, old_size = h->size;
    UNPOISON(h, old_len); /* the old addresses may be reused by anything */
    void *q = mremap(h, old_len, len, MREMAP_MAYMOVE | MREMAP_FIXED, start);
    if (q == MAP_FAILED) {
        munmap(raw, len + HUGE_PAGE);
        POISON((uint8_t *)h + HDR_SIZE + old_size, h->cap - old_size);
        return NULL;
    }
    /* the reservation's parts the move did not replace */
    trim_reservation(raw, start, len);
    struct hdr *n = q;
    n->map_len = len;
    n->cap = len - HDR_SIZE;
    n->size = bytes;
    POISON((uint8_t *)n + HDR_SIZE + bytes, n->cap - bytes);
    return n;
}

void *bigmem_realloc(void *p, size_t bytes)
{
    if (!p)
        return bigmem_alloc(bytes);
    struct hdr *h = hdr_of(p);
    if (bytes <= h->size)
        return p;
    if (bytes <= h->cap) {
        /* room left in the mapping (its slack is zero: never handed out before) */
        UNPOISON((uint8_t *)p + h->size, bytes - h->size);
        h->size = bytes;
        return p;
    }
    if (h->map_len) {
        struct hdr *moved = remap_grow(h, bytes);
        if (moved)
            return (uint8_t *)moved + HDR_SIZE;
    }
    /* from malloc (or no room to move): a fresh block and a copy */
    void *q = bigmem_alloc(bytes);
    memcpy(q, p, h->size);
    bigmem_free(p);
    return q;
}

void bigmem_free(void *p)
{
    if (!p)
        return;
    struct hdr *h = hdr_of(p);
    if (h->map_len) {
        UNPOISON(h, h->map_len);
        munmap(h, h->map_len);
    } else {
        free(h);
    }
}

size_t bigmem_size(const void *p)
{
    return p ? hdr_of(p)->size : 0;
}

bool bigmem_is_mapped(const void *p)
{
    return p && hdr_of(p)->map_len != 0;
}

/* ---------------------------------------------------------------------------------------------- */
/* Chunk arena */

struct bigmem_chunk {
    struct bigmem_chunk *next;
    size_t used, cap;
    uint8_t data[];
};

/* Chunk payloads: 64 KiB and 128 KiB from malloc, then mappings that fill one and then two
 * huge pages exactly with the headers (a mapping is made in whole huge pages anyway). */
#define ARENA_FIRST ((size_t)64 << 10)
#define ARENA_MAPPED(mib) (((size_t)(mib) << 20) - HDR_SIZE - sizeof(struct bigmem_chunk))
#define ARENA_LAST ARENA_MAPPED(4)

static size_t arena_next_cap(size_t cap)
{
    if (cap < ((size_t)128 << 10))
        return cap * 2;
    return cap < ARENA_MAPPED(2) ? ARENA_MAPPED(2) : ARENA_LAST;
}

/* The offset from `used` on at which a piece of this alignment can start. */
static size_t chunk_align(const struct bigmem_chunk *c, size_t used, size_t align)
{
    uintptr_t at = (uintptr_t)(c->data + used);
    return used + (size_t)(((at + align - 1) & ~(uintptr_t)(align - 1)) - at);
}

void *bigmem_arena_take(struct bigmem_arena *a, size_t n, size_t align)
{
    if (align == 0 || align > 64 || (align & (align - 1)))
        align = 16;
    struct bigmem_chunk *c = a->head;
    if (c && a->cur) /* the inline path moved on */
        c->used = (size_t)((uint8_t *)a->cur - c->data);
    size_t at = c ? chunk_align(c, c->used, align) : 0;
    if (!c || at > c->cap || c->cap - at < n) {
        size_t cap = a->next_cap ? a->next_cap : ARENA_FIRST;
        a->next_cap = arena_next_cap(cap);
        if (n > SIZE_MAX - sizeof(*c) - 64)
            oom(n);
        if (n + 64 > cap)
            cap = n + 64; /* room for the alignment too */
        c = bigmem_alloc(sizeof(*c) + cap);
        c->cap = cap;
        c->next = a->head;
        a->head = c;
        at = chunk_align(c, 0, align);
    }
    void *p = c->data + at;
    c->used = at + n;
    a->cur = (char *)c->data + c->used;
    a->end = (char *)c->data + c->cap;
    return p;
}

void bigmem_arena_clear(struct bigmem_arena *a)
{
    if (!a)
        return;
    for (struct bigmem_chunk *c = a->head, *next; c; c = next) {
        next = c->next;
        bigmem_free(c);
    }
    a->head = NULL;
    a->next_cap = 0;
    a->cur = a->end = NULL;
}
