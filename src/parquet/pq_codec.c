/*
 * pq_codec.c - zstd / snappy / gzip / none page compression; see pq_codec.h.
 */
#include "parquet/pq_codec.h"

#include <limits.h>
#include <stdlib.h>
#include <snappy-c.h>
#include <string.h>
#include <zlib.h>
#include <zstd.h>

#include "util/mem.h"

struct pq_codec_ctx {
    enum pq_codec codec;
    int zstd_level;
    ZSTD_CCtx *zstd;
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
    c->gz.next_out = dst->data;
    c->gz.avail_out = (uInt)(bound > UINT_MAX ? UINT_MAX : bound);
    int zrc = deflate(&c->gz, Z_FINISH);
    if (zrc != Z_STREAM_END)
        return ing_err_set(err, ING_EINTERNAL, "zlib: deflate failed (%d)", zrc);
    dst->len = c->gz.total_out;
    return 0;
}

int pq_codec_compress(struct pq_codec_ctx *c, const uint8_t *src, size_t n, struct buf *dst,
                      struct ing_err *err)
{
    int rc;
    buf_reset(dst);
    switch (c->codec) {
    case PQ_CODEC_UNCOMPRESSED:
        rc = buf_append(dst, src, n);
        return rc ? ing_err_set(err, rc, "no memory for a %zu byte page", n) : 0;
    case PQ_CODEC_ZSTD: {
        size_t bound = ZSTD_compressBound(n);
        rc = buf_reserve(dst, bound);
        if (rc)
            return ing_err_set(err, rc, "zstd: no memory for a %zu byte page", bound);
        size_t got = ZSTD_compressCCtx(c->zstd, dst->data, bound, src, n, c->zstd_level);
        if (ZSTD_isError(got))
            return ing_err_set(err, ING_EINTERNAL, "zstd: %s", ZSTD_getErrorName(got));
        dst->len = got;
        return 0;
    }
    case PQ_CODEC_SNAPPY: {
        size_t bound = snappy_max_compressed_length(n);
        rc = buf_reserve(dst, bound);
        if (rc)
            return ing_err_set(err, rc, "snappy: no memory for a %zu byte page", bound);
        size_t got = bound;
        if (snappy_compress((const char *)src, n, (char *)dst->data, &got) != SNAPPY_OK)
            return ing_err_set(err, ING_EINTERNAL, "snappy: compression failed");
        dst->len = got;
        return 0;
    }
    case PQ_CODEC_GZIP:
        return compress_gzip(c, src, n, dst, err);
    }
    return ing_err_set(err, ING_EINVAL, "unsupported Parquet codec %d", (int)c->codec);
}
