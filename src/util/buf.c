/* buf.c - growable capped byte buffer; see buf.h. */
#include "util/buf.h"
#include "util/err.h"
#include "util/mem.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int buf_reserve(struct buf *b, size_t extra)
{
    if (extra > SIZE_MAX - b->len)
        return ING_ETOOBIG;
    size_t need = b->len + extra;
    if (b->limit && need > b->limit)
        return ING_ETOOBIG;
    if (need <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need)
        cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    if (b->limit && cap > b->limit)
        cap = b->limit;
    uint8_t *p = realloc(b->data, cap);
    if (!p)
        return ING_ENOMEM;
    b->data = p;
    b->cap = cap;
    return 0;
}

int buf_append(struct buf *b, const void *p, size_t n)
{
    int rc = buf_reserve(b, n);
    if (rc)
        return rc;
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    return 0;
}

int buf_append_byte(struct buf *b, uint8_t c)
{
    if (b->len < b->cap) {
        b->data[b->len++] = c;
        return 0;
    }
    return buf_append(b, &c, 1);
}

int buf_append_str(struct buf *b, const char *s)
{
    return buf_append(b, s, strlen(s));
}

int buf_printf(struct buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return ING_EINVAL;
    int rc = buf_reserve(b, (size_t)n + 1);
    if (rc)
        return rc;
    va_start(ap, fmt);
    vsnprintf((char *)b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return 0;
}

void buf_free(struct buf *b)
{
    if (!b)
        return;
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

const char *buf_cstr(struct buf *b)
{
    /* The terminator is not content: it may use the one byte past the cap. */
    size_t limit = b->limit;
    b->limit = 0;
    int rc = buf_reserve(b, 1);
    b->limit = limit;
    if (rc != 0)
        return "";
    b->data[b->len] = '\0';
    return (const char *)b->data;
}

void *buf__grow_array(void *p, size_t *cap, size_t need, size_t elem, size_t first_cap)
{
    if (need <= *cap)
        return p;
    if (elem && need > SIZE_MAX / elem) {
        fprintf(stderr, "ingot: array of %zu elements of %zu bytes is too large\n", need, elem);
        abort();
    }
    size_t c = *cap > first_cap ? *cap : first_cap;
    if (c == 0)
        c = 1;
    while (c < need)
        c = c > SIZE_MAX / 2 ? need : c * 2;
    if (elem && c > SIZE_MAX / elem)
        c = need; /* doubling passed what can be allocated: exactly what is needed fits */
    *cap = c;
    return xrealloc(p, c * elem);
}
