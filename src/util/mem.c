/* mem.c - aborting allocators for small internal objects; see mem.h. */
#include "util/mem.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void oom(size_t n)
{
    fprintf(stderr, "ingot: out of memory allocating %zu bytes\n", n);
    abort();
}

void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p)
        oom(n);
    return p;
}

void *xcalloc(size_t count, size_t size)
{
    void *p = calloc(count ? count : 1, size ? size : 1);
    if (!p)
        oom(count * size);
    return p;
}

void *xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (!q)
        oom(n);
    return q;
}

char *xstrdup(const char *s)
{
    return xstrndup(s, strlen(s));
}

char *xstrndup(const char *s, size_t n)
{
    char *p = xmalloc(n + 1);
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

char *xasprintf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        oom(0);
    char *p = xmalloc((size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(p, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return p;
}

/* mmap_threshold 32 MiB keeps column buffers and zstd's workspaces inside the heaps, so a part
 * file's freed buffers serve the next one; trim_threshold and top_pad keep the heap from being
 * handed back and regrown a few pages at a time. */
#define MALLOC_TUNABLES                                                                        \
    "glibc.malloc.hugetlb=1:glibc.malloc.mmap_threshold=33554432:"                             \
    "glibc.malloc.trim_threshold=268435456:glibc.malloc.top_pad=4194304"

/* True when running ourselves again would not run this program with the same checks: under
 * valgrind (whose preload would be left behind), or started through the dynamic loader
 * (`ld.so ./ingot ...`, where /proc/self/exe is the loader, not ingot). */
static bool exec_self_unsafe(void)
{
    const char *preload = getenv("LD_PRELOAD");
    if (preload && strstr(preload, "vgpreload"))
        return true;
    char exe[4096];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    if (n <= 0)
        return true;
    exe[n] = '\0';
    const char *base = strrchr(exe, '/');
    return strncmp(base ? base + 1 : exe, "ld-", 3) == 0;
}

void mem_tune_process(char **argv)
{
    const char *have = getenv("GLIBC_TUNABLES");
    if (getenv("INGOT_MALLOC_TUNED") || (have && strstr(have, "glibc.malloc.hugetlb")) ||
        exec_self_unsafe())
        return;
    /* Ours first: glibc takes the last value of a tunable, so the user's own settings win. */
    char *saved = have ? xstrdup(have) : NULL;
    char *tunables = saved && *saved ? xasprintf("%s:%s", MALLOC_TUNABLES, saved)
                                     : xstrdup(MALLOC_TUNABLES);
    if (setenv("GLIBC_TUNABLES", tunables, 1) == 0 && setenv("INGOT_MALLOC_TUNED", "1", 1) == 0)
        execv("/proc/self/exe", argv);
    /* The exec failed: leave the environment as it was, for this process and its children. */
    if (saved)
        setenv("GLIBC_TUNABLES", saved, 1);
    else
        unsetenv("GLIBC_TUNABLES");
    unsetenv("INGOT_MALLOC_TUNED");
    free(tunables);
    free(saved);
}
