/*
 * pq_uncompress.h - page decompression for the Parquet reader: none, snappy, gzip (and zlib),
 * zstd, lz4_raw, the deprecated Hadoop-framed lz4, and brotli when built with ING_WITH_BROTLI
 * (libbrotlidec). Module-private to src/parquet.
 *
 * The caller states the exact uncompressed size (from the page header) and provides the
 * output buffer, so a hostile page can never make the decompressor allocate: output that would
 * be longer or shorter than declared is ING_ESYNTAX. A context keeps the library state (zstd
 * context, inflate stream) between pages; one per reader, not thread-safe.
 */
#ifndef ING_PARQUET_PQ_UNCOMPRESS_H
#define ING_PARQUET_PQ_UNCOMPRESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/err.h"

/* Parquet CompressionCodec values. */
enum pq_rcodec { PQ_RC_UNCOMPRESSED = 0, PQ_RC_SNAPPY = 1, PQ_RC_GZIP = 2, PQ_RC_LZO = 3,
                 PQ_RC_BROTLI = 4, PQ_RC_LZ4 = 5, PQ_RC_ZSTD = 6, PQ_RC_LZ4_RAW = 7 };

struct pq_unc;

struct pq_unc *pq_unc_new(void);
void pq_unc_free(struct pq_unc *u); /* NULL is a no-op */

/* True when this build can read `codec`. */
bool pq_unc_supported(int codec);
/* Name for messages ("ZSTD", "LZO", ...). */
const char *pq_unc_name(int codec);

/* Decompress src[0..n) into exactly dst[0..dst_len). */
int pq_unc_run(struct pq_unc *u, int codec, const uint8_t *src, size_t n, uint8_t *dst,
               size_t dst_len, struct ing_err *err);

#endif
