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
#include "util/err.h"

struct pq_codec_ctx;

/* New context for `codec` (zstd_level used by zstd only). 0 or ING_EINVAL for an unknown
 * codec, ING_EINTERNAL when the library refuses. */
int pq_codec_new(struct pq_codec_ctx **out, enum pq_codec codec, int zstd_level,
                 struct ing_err *err);
void pq_codec_free(struct pq_codec_ctx *c); /* NULL is a no-op */

/* The most bytes compressing n bytes can give (the room pq_codec_compress_to needs). */
size_t pq_codec_bound(struct pq_codec_ctx *c, size_t n);
/* src[0..n) compressed into dst, which has `cap` >= pq_codec_bound(c, n) bytes of room (a
 * writer compresses straight into its chunk buffer, which it grows itself, rather than copying
 * each page there); the compressed size in *out_len. With `entropy`, for data known to have few
 * repeats (random ids as text, measured doubles), zstd gives up looking for matches early (a
 * negative level) but still entropy-codes the literals, which is where such data shrinks; about
 * half the CPU time of level 1 for the same size on hex ids. Other codecs ignore `entropy`, as
 * zstd does for pages up to 16 KiB (those always take the normal level). */
int pq_codec_compress_to(struct pq_codec_ctx *c, const uint8_t *src, size_t n, uint8_t *dst,
                         size_t cap, bool entropy, size_t *out_len, struct ing_err *err);

#endif
