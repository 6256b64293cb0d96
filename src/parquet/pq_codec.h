/*
 * pq_codec.h - page compression for the Parquet writer: zstd (libzstd), snappy (snappy-c),
 * gzip (zlib, gzip framing as Parquet requires) or none. Module-private.
 *
 * A codec context keeps the library state (zstd context, deflate stream) between pages so a
 * writer does not allocate per page. One context per writer; not thread-safe.
 */
#ifndef ING_PARQUET_PQ_CODEC_H
#define ING_PARQUET_PQ_CODEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "parquet/pq_writer.h"
#include "util/buf.h"
#include "util/err.h"

struct pq_codec_ctx;

/* New context for `codec` (zstd_level used by zstd only). 0 or ING_EINVAL for an unknown
 * codec, ING_EINTERNAL when the library refuses. */
int pq_codec_new(struct pq_codec_ctx **out, enum pq_codec codec, int zstd_level,
                 struct ing_err *err);
void pq_codec_free(struct pq_codec_ctx *c); /* NULL is a no-op */

/* Replace the contents of `dst` with src[0..n) compressed. */
int pq_codec_compress(struct pq_codec_ctx *c, const uint8_t *src, size_t n, struct buf *dst,
                      struct ing_err *err);
/* The same, appended to `dst` instead of replacing it (a writer compresses straight into its
 * chunk buffer rather than copying each page there); on failure dst is as before. With
 * `entropy`, for data known to have few repeats (random ids as text, measured doubles), zstd
 * gives up looking for matches early (a negative level) but still entropy-codes the literals,
 * which is where such data shrinks; about half the CPU time of level 1 for the same size on hex
 * ids. Other codecs ignore `entropy`. */
int pq_codec_compress_append(struct pq_codec_ctx *c, const uint8_t *src, size_t n,
                             struct buf *dst, bool entropy, struct ing_err *err);

#endif
