/*
 * pq_decode.h - Parquet value and level decodings used by the reader: the RLE/bit-packed
 * hybrid (levels, dictionary indices, RLE booleans), the deprecated BIT_PACKED levels,
 * DELTA_BINARY_PACKED and BYTE_STREAM_SPLIT. Module-private to src/parquet.
 *
 * Every decoder reads a borrowed byte range, never past its end, and produces exactly the
 * number of values asked for (or fails with ING_ESYNTAX and a message in err saying what was
 * short or malformed). Output arrays are sized by the caller. Reentrant.
 */
#ifndef ING_PARQUET_PQ_DECODE_H
#define ING_PARQUET_PQ_DECODE_H

#include <stddef.h>
#include <stdint.h>

#include "util/err.h"

/* RLE/bit-packed hybrid without length prefix: n values of bit_width (0..32) from p[0..len).
 * Values past n in the last run are ignored; a last bit-packed run cut short by the end of the
 * data is accepted as long as the values asked for are complete. */
int pq_rle_decode_u32(const uint8_t *p, size_t len, int bit_width, uint32_t *out, size_t n,
                      struct ing_err *err);
/* The same into bytes (levels); bit_width 0..8. */
int pq_rle_decode_u8(const uint8_t *p, size_t len, int bit_width, uint8_t *out, size_t n,
                     struct ing_err *err);

/* Deprecated BIT_PACKED levels (most significant bit first, no header): n values; *used gets
 * the bytes taken (ceil(n * bit_width / 8)). */
int pq_bitpacked_decode_u8(const uint8_t *p, size_t len, int bit_width, uint8_t *out, size_t n,
                           size_t *used, struct ing_err *err);

/* DELTA_BINARY_PACKED: the value count in the header of p[0..len). */
int pq_delta_count(const uint8_t *p, size_t len, uint64_t *count, struct ing_err *err);
/* DELTA_BINARY_PACKED: decode exactly n values (the header must say n) as 64-bit two's
 * complement (wrapping arithmetic; INT32 users keep the low 32 bits). *used gets the bytes the
 * stream took, so data that follows it (DELTA_LENGTH_BYTE_ARRAY) can be found. */
int pq_delta_decode(const uint8_t *p, size_t len, uint64_t *out, size_t n, size_t *used,
                    struct ing_err *err);

/* BYTE_STREAM_SPLIT: n values of `width` bytes from width streams of n bytes each; out gets
 * n * width bytes in value order. */
int pq_bss_decode(const uint8_t *p, size_t len, size_t width, size_t n, uint8_t *out,
                  struct ing_err *err);

#endif
