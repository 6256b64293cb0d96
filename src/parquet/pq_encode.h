/*
 * pq_encode.h - Parquet value encodings used by the writer: the RLE/bit-packed hybrid (levels
 * and dictionary indices), bit-packed booleans and little-endian stores. Module-private.
 *
 * All functions append to a borrowed struct buf and return 0 or ING_ENOMEM / ING_ETOOBIG.
 * Reentrant.
 */
#ifndef ING_PARQUET_PQ_ENCODE_H
#define ING_PARQUET_PQ_ENCODE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/buf.h"

/* Bits needed to store values 0..max_value (0 for max_value 0). */
int pq_bit_width(uint32_t max_value);

/* RLE/bit-packed hybrid of n values, each < 2^bit_width (bit_width 1..32), without any
 * length prefix. Runs of 8 or more equal values become RLE runs; the rest is bit-packed in
 * groups of 8 (the final group padded with zeros). */
int pq_rle_encode(struct buf *out, const uint32_t *v, size_t n, int bit_width);

/* The v1 data page form for levels: 4-byte little-endian length, then the hybrid. */
int pq_rle_encode_levels(struct buf *out, const uint32_t *v, size_t n, int bit_width);

/* The same v1 level form from runs: run i is lens[i] (>= 1) copies of the level
 * (keys[i] >> shift) & mask. Equal neighbours are merged, so a column that is null on every row
 * costs one RLE run, not one entry per row. `scratch` holds the values of short runs waiting to be
 * bit-packed (grown as needed; the caller owns it and may reuse it). */
int pq_rle_encode_level_runs(struct buf *out, const uint32_t *keys, const uint32_t *lens,
                             size_t nruns, int shift, uint32_t mask, int bit_width,
                             struct buf *scratch);

/* PLAIN booleans: one bit per value, LSB first; v[i] is 0 or 1. */
int pq_bool_pack(struct buf *out, const uint8_t *v, size_t n);

static inline void pq_put_le32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

static inline void pq_put_le64(uint8_t *p, uint64_t v)
{
    pq_put_le32(p, (uint32_t)v);
    pq_put_le32(p + 4, (uint32_t)(v >> 32));
}

static inline uint32_t pq_get_le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static inline uint64_t pq_get_le64(const uint8_t *p)
{
    return (uint64_t)pq_get_le32(p) | (uint64_t)pq_get_le32(p + 4) << 32;
}

#endif
