/*
 * pq_uncompress.c - page decompression for the Parquet reader; see pq_uncompress.h.
 */
#include "parquet/pq_uncompress.h"

#include <limits.h>
#include <lz4.h>
#include <snappy-c.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>
#include <zstd.h>
#ifdef ING_WITH_BROTLI
#include <brotli/decode.h>
#endif

#include "util/mem.h"

struct pq_unc {
    ZSTD_DCtx *zstd;
    z_stream gz;
    bool gz_ready;
};

struct pq_unc *pq_unc_new(void)
{
    return xcalloc(1, sizeof(struct pq_unc));
}

void pq_unc_free(struct pq_unc *u)
{
    if (!u)
        return;
    if (u->zstd)
        ZSTD_freeDCtx(u->zstd);
    if (u->gz_ready)
        inflateEnd(&u->gz);
    free(u);
}

bool pq_unc_supported(int codec)
{
    switch (codec) {
    case PQ_RC_UNCOMPRESSED:
    case PQ_RC_SNAPPY:
    case PQ_RC_GZIP:
    case PQ_RC_LZ4:
    case PQ_RC_ZSTD:
    case PQ_RC_LZ4_RAW:
        return true;
#ifdef ING_WITH_BROTLI
    case PQ_RC_BROTLI:
        return true;
#endif
    default:
        return false;
    }
}

const char *pq_unc_name(int codec)
{
    static const char *const names[] = {"UNCOMPRESSED", "SNAPPY", "GZIP", "LZO",
                                        "BROTLI",       "LZ4",    "ZSTD", "LZ4_RAW"};
    if (codec < 0 || codec >= (int)ING_ARRAY_LEN(names))
        return "unknown";
    return names[codec];
}

static int unc_gzip(struct pq_unc *u, const uint8_t *src, size_t n, uint8_t *dst, size_t dst_len,
                    struct ing_err *err)
{
    if (n > UINT_MAX || dst_len > UINT_MAX)
        return ing_err_set(err, ING_ETOOBIG, "GZIP page too large");
    if (!u->gz_ready) {
        /* 15 + 32: accept both gzip and zlib headers (some old writers used zlib framing). */
        if (inflateInit2(&u->gz, 15 + 32) != Z_OK)
            return ing_err_set(err, ING_EINTERNAL, "zlib: inflateInit2 failed");
        u->gz_ready = true;
    }
    size_t in_at = 0, out_at = 0;
    for (;;) {
        if (inflateReset(&u->gz) != Z_OK)
            return ing_err_set(err, ING_EINTERNAL, "zlib: inflateReset failed");
        u->gz.next_in = (Bytef *)(uintptr_t)(src + in_at); /* zlib is not const-correct */
        u->gz.avail_in = (uInt)(n - in_at);
        u->gz.next_out = dst + out_at;
        u->gz.avail_out = (uInt)(dst_len - out_at);
        int zrc = inflate(&u->gz, Z_FINISH);
        in_at = n - u->gz.avail_in;
        out_at = dst_len - u->gz.avail_out;
        if (zrc != Z_STREAM_END)
            return ing_err_set(err, ING_ESYNTAX, "GZIP data is corrupt or longer than declared");
        /* Concatenated gzip members are one stream for gzip readers. */
        if (in_at + 2 <= n && src[in_at] == 0x1f && src[in_at + 1] == 0x8b)
            continue;
        break;
    }
    if (out_at != dst_len)
        return ing_err_set(err, ING_ESYNTAX, "GZIP data gives %zu bytes, the page says %zu", out_at,
                           dst_len);
    return 0;
}

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* The deprecated LZ4 codec: Hadoop framing (be32 raw size, be32 compressed size, block)*, as
 * parquet-mr wrote it; some writers used a bare block instead, which is tried second. */
static int unc_lz4_hadoop(const uint8_t *src, size_t n, uint8_t *dst, size_t dst_len,
                          struct ing_err *err)
{
    size_t in_at = 0, out_at = 0;
    bool ok = true;
    while (in_at < n) {
        if (n - in_at < 8) {
            ok = false;
            break;
        }
        uint32_t raw = be32(src + in_at), comp = be32(src + in_at + 4);
        in_at += 8;
        if (comp > n - in_at || raw > dst_len - out_at || comp > INT_MAX || raw > INT_MAX) {
            ok = false;
            break;
        }
        int got = LZ4_decompress_safe((const char *)src + in_at, (char *)dst + out_at, (int)comp,
                                      (int)raw);
        if (got < 0 || (uint32_t)got != raw) {
            ok = false;
            break;
        }
        in_at += comp;
        out_at += raw;
    }
    if (ok && out_at == dst_len)
        return 0;
    if (n > INT_MAX || dst_len > INT_MAX)
        return ing_err_set(err, ING_ETOOBIG, "LZ4 page too large");
    int got = LZ4_decompress_safe((const char *)src, (char *)dst, (int)n, (int)dst_len);
    if (got < 0 || (size_t)got != dst_len)
        return ing_err_set(err, ING_ESYNTAX, "LZ4 data is corrupt");
    return 0;
}

int pq_unc_run(struct pq_unc *u, int codec, const uint8_t *src, size_t n, uint8_t *dst,
               size_t dst_len, struct ing_err *err)
{
    switch (codec) {
    case PQ_RC_UNCOMPRESSED:
        if (n != dst_len)
            return ing_err_set(err, ING_ESYNTAX,
                               "uncompressed page of %zu bytes declares %zu bytes", n, dst_len);
        if (n)
            memcpy(dst, src, n);
        return 0;
    case PQ_RC_SNAPPY: {
        size_t len;
        if (snappy_uncompressed_length((const char *)src, n, &len) != SNAPPY_OK)
            return ing_err_set(err, ING_ESYNTAX, "SNAPPY data is corrupt");
        if (len != dst_len)
            return ing_err_set(err, ING_ESYNTAX, "SNAPPY data gives %zu bytes, the page says %zu",
                               len, dst_len);
        if (snappy_uncompress((const char *)src, n, (char *)dst, &len) != SNAPPY_OK ||
            len != dst_len)
            return ing_err_set(err, ING_ESYNTAX, "SNAPPY data is corrupt");
        return 0;
    }
    case PQ_RC_GZIP:
        return unc_gzip(u, src, n, dst, dst_len, err);
    case PQ_RC_ZSTD: {
        if (!u->zstd && !(u->zstd = ZSTD_createDCtx()))
            return ing_err_set(err, ING_ENOMEM, "zstd: cannot create a decompression context");
        size_t got = ZSTD_decompressDCtx(u->zstd, dst, dst_len, src, n);
        if (ZSTD_isError(got))
            return ing_err_set(err, ING_ESYNTAX, "ZSTD data is corrupt: %s",
                               ZSTD_getErrorName(got));
        if (got != dst_len)
            return ing_err_set(err, ING_ESYNTAX, "ZSTD data gives %zu bytes, the page says %zu",
                               got, dst_len);
        return 0;
    }
    case PQ_RC_LZ4_RAW: {
        if (n > INT_MAX || dst_len > INT_MAX)
            return ing_err_set(err, ING_ETOOBIG, "LZ4_RAW page too large");
        if (dst_len == 0 && n <= 1)
            return 0; /* an empty block is a single zero token, or nothing */
        int got = LZ4_decompress_safe((const char *)src, (char *)dst, (int)n, (int)dst_len);
        if (got < 0 || (size_t)got != dst_len)
            return ing_err_set(err, ING_ESYNTAX, "LZ4_RAW data is corrupt");
        return 0;
    }
    case PQ_RC_LZ4:
        return unc_lz4_hadoop(src, n, dst, dst_len, err);
#ifdef ING_WITH_BROTLI
    case PQ_RC_BROTLI: {
        size_t got = dst_len;
        if (BrotliDecoderDecompress(n, src, &got, dst) != BROTLI_DECODER_RESULT_SUCCESS ||
            got != dst_len)
            return ing_err_set(err, ING_ESYNTAX, "BROTLI data is corrupt");
        return 0;
    }
#endif
    default:
        return ing_err_set(err, ING_EINVAL, "compression codec %s (%d) is not supported",
                           pq_unc_name(codec), codec);
    }
}
