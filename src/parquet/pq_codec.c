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

#include "util/mem.h"

/* Level of the entropy mode: matches are sought with a large step, so hex ids (no repeats)
 * cost little more than their Huffman coding. */
#define ENTROPY_LEVEL (-3)

struct pq_codec_ctx {
    enum pq_codec codec;
    int zstd_level;
    ZSTD_CCtx *zstd;
    int zstd_mode;             /* parameters set on the context: -1 none, 0 normal, 1 entropy */
    z_stream gz;
    int gz_ready;
};

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
        c->zstd = ZSTD_createCCtx();
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
    if (c->gz_ready)
        deflateEnd(&c->gz);
    free(c);
}

static int compress_gzip(struct pq_codec_ctx *c, const uint8_t *src, size_t n, struct buf *dst,
                         struct ing_err *err)
{
    if (n > UINT_MAX)
        return ing_err_set(err, ING_ETOOBIG, "gzip: page of %zu bytes is too large", n);
    if (deflateReset(&c->gz) != Z_OK)
        return ing_err_set(err, ING_EINTERNAL, "zlib: deflateReset failed");
    size_t bound = deflateBound(&c->gz, (uLong)n) + 32;
    int rc = buf_reserve(dst, bound);
    if (rc)
        return ing_err_set(err, rc, "gzip: no memory for a %zu byte page", bound);
    c->gz.next_in = (Bytef *)(uintptr_t)src; /* zlib's API is not const-correct */
    c->gz.avail_in = (uInt)n;
    c->gz.next_out = dst->data + dst->len;
    c->gz.avail_out = (uInt)(bound > UINT_MAX ? UINT_MAX : bound);
    int zrc = deflate(&c->gz, Z_FINISH);
    if (zrc != Z_STREAM_END)
        return ing_err_set(err, ING_EINTERNAL, "zlib: deflate failed (%d)", zrc);
    dst->len += c->gz.total_out;
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

/* src[0..n) compressed, appended to dst (buf_reserve leaves room after dst->len). */
static int compress_append(struct pq_codec_ctx *c, const uint8_t *src, size_t n, struct buf *dst,
                           int mode, struct ing_err *err)
{
    int rc;
    switch (c->codec) {
    case PQ_CODEC_UNCOMPRESSED:
        rc = buf_append(dst, src, n);
        return rc ? ing_err_set(err, rc, "no memory for a %zu byte page", n) : 0;
    case PQ_CODEC_ZSTD: {
        size_t bound = ZSTD_compressBound(n);
        rc = buf_reserve(dst, bound);
        if (rc)
            return ing_err_set(err, rc, "zstd: no memory for a %zu byte page", bound);
        if ((rc = set_mode(c, mode, err)) < 0)
            return rc;
        size_t got = ZSTD_compress2(c->zstd, dst->data + dst->len, bound, src, n);
        if (ZSTD_isError(got))
            return ing_err_set(err, ING_EINTERNAL, "zstd: %s", ZSTD_getErrorName(got));
        dst->len += got;
        return 0;
    }
    case PQ_CODEC_SNAPPY: {
        size_t bound = snappy_max_compressed_length(n);
        rc = buf_reserve(dst, bound);
        if (rc)
            return ing_err_set(err, rc, "snappy: no memory for a %zu byte page", bound);
        size_t got = bound;
        if (snappy_compress((const char *)src, n, (char *)dst->data + dst->len, &got) !=
            SNAPPY_OK)
            return ing_err_set(err, ING_EINTERNAL, "snappy: compression failed");
        dst->len += got;
        return 0;
    }
    case PQ_CODEC_GZIP:
        return compress_gzip(c, src, n, dst, err);
    }
    return ing_err_set(err, ING_EINVAL, "unsupported Parquet codec %d", (int)c->codec);
}

int pq_codec_compress(struct pq_codec_ctx *c, const uint8_t *src, size_t n, struct buf *dst,
                      struct ing_err *err)
{
    buf_reset(dst);
    return compress_append(c, src, n, dst, 0, err);
}

int pq_codec_compress_append(struct pq_codec_ctx *c, const uint8_t *src, size_t n,
                             struct buf *dst, bool entropy, struct ing_err *err)
{
    size_t was = dst->len;
    int rc = compress_append(c, src, n, dst, entropy ? 1 : 0, err);
    if (rc)
        dst->len = was;
    return rc;
}
