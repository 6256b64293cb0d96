/*
 * pq_codec.c - zstd / snappy / gzip / none page compression; see pq_codec.h.
 */
/* ZSTD_c_literalCompressionMode is an experimental parameter of libzstd: its number is part of
 * the library's 1.5 series (Debian bookworm ships 1.5.4), and a library that does not know it
 * refuses it, which only costs the entropy mode its literal coding (see set_mode). */
#define ZSTD_STATIC_LINKING_ONLY
#include "parquet/pq_codec.h"

#include <limits.h>
#include <stdlib.h>
#include <snappy-c.h>
#include <string.h>
#include <zlib.h>
#include <zstd.h>

#include "util/bigmem.h"
#include "util/mem.h"

/* Level of the entropy mode: matches are sought with a large step, so hex ids (no repeats)
 * cost little more than their Huffman coding. */
#define ENTROPY_LEVEL (-3)

/* Pages up to this size go through a context of their own (see compress_zstd). */
#define SMALL_PAGE ((size_t)16 << 10)

struct pq_codec_ctx {
    enum pq_codec codec;
    int zstd_level;
    ZSTD_CCtx *zstd;
    int zstd_mode;             /* parameters set on the context: -1 none, 0 normal, 1 entropy */
    ZSTD_CCtx *zstd_small;     /* small pages, made at the first one */
    z_stream gz;
    int gz_ready;
};

/* zstd's workspace (a few MiB for 1 MiB pages) on bigmem: a writer on a helper thread would
 * otherwise fault it in 4 KiB at a time from that thread's malloc arena (~300 faults each). */
static void *zstd_alloc(void *opaque, size_t size)
{
    (void)opaque;
    return bigmem_alloc(size);
}

static void zstd_free(void *opaque, void *p)
{
    (void)opaque;
    bigmem_free(p);
}

static const ZSTD_customMem zstd_mem = {.customAlloc = zstd_alloc, .customFree = zstd_free};

int pq_codec_new(struct pq_codec_ctx **out, enum pq_codec codec, int zstd_level,
                 struct ing_err *err)
{
    *out = NULL;
    struct pq_codec_ctx *c = xcalloc(1, sizeof(*c));
    int rc = 0;
    c->codec = codec;
    c->zstd_level = zstd_level;
    switch (codec) {
    case PQ_CODEC_UNCOMPRESSED:
    case PQ_CODEC_SNAPPY:
        break;
    case PQ_CODEC_ZSTD:
        c->zstd = ZSTD_createCCtx_advanced(zstd_mem);
        if (!c->zstd) {
            rc = ing_err_set(err, ING_EINTERNAL, "zstd: cannot create a compression context");
            goto out;
        }
        c->zstd_mode = -1;
        break;
    case PQ_CODEC_GZIP:
        /* windowBits 15 + 16 asks zlib for the gzip wrapper (Parquet's GZIP is RFC 1952). */
        if (deflateInit2(&c->gz, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8,
                         Z_DEFAULT_STRATEGY) != Z_OK) {
            rc = ing_err_set(err, ING_EINTERNAL, "zlib: deflateInit2 failed");
            goto out;
        }
        c->gz_ready = 1;
        break;
    default:
        rc = ing_err_set(err, ING_EINVAL, "unsupported Parquet codec %d", (int)codec);
        goto out;
    }
    *out = c;
    c = NULL;
out:
    pq_codec_free(c);
    return rc;
}

void pq_codec_free(struct pq_codec_ctx *c)
{
    if (!c)
        return;
    if (c->zstd)
        ZSTD_freeCCtx(c->zstd);
    if (c->zstd_small)
        ZSTD_freeCCtx(c->zstd_small);
    if (c->gz_ready)
        deflateEnd(&c->gz);
    free(c);
}

/* Room compressing n bytes with the gzip stream may need: zlib's compressBound is for the
 * default parameters (ours) with the 6-byte zlib wrapper; gzip's is 18 bytes, so 32 more is
 * ample. Not deflateBound, whose answer depends on the state the last page left the stream in,
 * so a bound taken before a page could differ from one taken after. */
static size_t gzip_bound(size_t n)
{
    return (size_t)compressBound((uLong)n) + 32;
}

static int compress_gzip(struct pq_codec_ctx *c, const uint8_t *src, size_t n, uint8_t *dst,
                         size_t cap, size_t *out_len, struct ing_err *err)
{
    if (n > UINT_MAX)
        return ing_err_set(err, ING_ETOOBIG, "gzip: page of %zu bytes is too large", n);
    if (deflateReset(&c->gz) != Z_OK)
        return ing_err_set(err, ING_EINTERNAL, "zlib: deflateReset failed");
    c->gz.next_in = (Bytef *)(uintptr_t)src; /* zlib's API is not const-correct */
    c->gz.avail_in = (uInt)n;
    c->gz.next_out = dst;
    c->gz.avail_out = (uInt)(cap > UINT_MAX ? UINT_MAX : cap);
    int zrc = deflate(&c->gz, Z_FINISH);
    if (zrc != Z_STREAM_END)
        return ing_err_set(err, ING_EINTERNAL, "zlib: deflate failed (%d)", zrc);
    *out_len = c->gz.total_out;
    return 0;
}

/* Parameters of the context for `mode` (0 normal, 1 entropy), set only when they change. */
static int set_mode(struct pq_codec_ctx *c, int mode, struct ing_err *err)
{
    if (c->zstd_mode == mode)
        return 0;
    ZSTD_CCtx_reset(c->zstd, ZSTD_reset_parameters);
    size_t r = ZSTD_CCtx_setParameter(c->zstd, ZSTD_c_compressionLevel,
                                      mode ? ENTROPY_LEVEL : c->zstd_level);
    if (ZSTD_isError(r))
        return ing_err_set(err, ING_EINTERNAL, "zstd: %s", ZSTD_getErrorName(r));
    /* Negative levels leave literals raw unless asked; a library without the parameter
     * compresses those pages less well, never wrongly. */
    if (mode)
        (void)ZSTD_CCtx_setParameter(c->zstd, ZSTD_c_literalCompressionMode, ZSTD_ps_enable);
    c->zstd_mode = mode;
    return 0;
}

/*
 * zstd sizes a context's workspace by the page at hand and frees a workspace that stayed over
 * three times too large for 128 pages in a row. A row group ends with a tiny page for each
 * column a file leaves empty (hundreds in a wide schema), so one context shrank its workspace
 * there and grew it again (a fresh mapping to fault in) at the next full page, every row group.
 * Small pages get a context of their own, always at the normal level: the entropy mode pays
 * only on large pages.
 */
static int compress_zstd(struct pq_codec_ctx *c, const uint8_t *src, size_t n, uint8_t *dst,
                         size_t cap, bool entropy, size_t *out_len, struct ing_err *err)
{
    size_t got;
    if (n <= SMALL_PAGE) {
        if (!c->zstd_small && !(c->zstd_small = ZSTD_createCCtx_advanced(zstd_mem)))
            return ing_err_set(err, ING_EINTERNAL, "zstd: cannot create a compression context");
        got = ZSTD_compressCCtx(c->zstd_small, dst, cap, src, n, c->zstd_level);
    } else {
        int rc = set_mode(c, entropy ? 1 : 0, err);
        if (rc < 0)
            return rc;
        got = ZSTD_compress2(c->zstd, dst, cap, src, n);
    }
    if (ZSTD_isError(got))
        return ing_err_set(err, ING_EINTERNAL, "zstd: %s", ZSTD_getErrorName(got));
    *out_len = got;
    return 0;
}

size_t pq_codec_bound(struct pq_codec_ctx *c, size_t n)
{
    switch (c->codec) {
    case PQ_CODEC_UNCOMPRESSED:
        return n;
    case PQ_CODEC_ZSTD:
        return ZSTD_compressBound(n);
    case PQ_CODEC_SNAPPY:
        return snappy_max_compressed_length(n);
    case PQ_CODEC_GZIP:
        return gzip_bound(n);
    }
    return n;
}

int pq_codec_compress_to(struct pq_codec_ctx *c, const uint8_t *src, size_t n, uint8_t *dst,
                         size_t cap, bool entropy, size_t *out_len, struct ing_err *err)
{
    *out_len = 0;
    if (cap < pq_codec_bound(c, n))
        return ing_err_set(err, ING_EINTERNAL, "codec: %zu bytes of room for a %zu byte page",
                           cap, n);
    switch (c->codec) {
    case PQ_CODEC_UNCOMPRESSED:
        if (n)
            memcpy(dst, src, n);
        *out_len = n;
        return 0;
    case PQ_CODEC_ZSTD:
        return compress_zstd(c, src, n, dst, cap, entropy, out_len, err);
    case PQ_CODEC_SNAPPY: {
        size_t got = cap;
        if (snappy_compress((const char *)src, n, (char *)dst, &got) != SNAPPY_OK)
            return ing_err_set(err, ING_EINTERNAL, "snappy: compression failed");
        *out_len = got;
        return 0;
    }
    case PQ_CODEC_GZIP:
        return compress_gzip(c, src, n, dst, cap, out_len, err);
    }
    return ing_err_set(err, ING_EINVAL, "unsupported Parquet codec %d", (int)c->codec);
}
