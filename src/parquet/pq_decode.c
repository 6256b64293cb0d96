/*
 * pq_decode.c - decoders for Parquet levels and values; see pq_decode.h. Written from the
 * Parquet Encodings.md descriptions:
 *   hybrid  := run*,  run := varint(count << 1) value-in-ceil(bw/8)-bytes       (RLE)
 *                         | varint(groups << 1 | 1) groups*bw bytes, LSB first (bit-packed)
 *   delta   := varint(block size) varint(miniblocks) varint(total) zigzag(first)
 *              { zigzag(min delta) bitwidth[miniblocks] miniblock* }*
 *   BYTE_STREAM_SPLIT := byte k of value i at k * n + i.
 */
#include "parquet/pq_decode.h"

#include <stdbool.h>
#include <string.h>

/* Caps that keep hostile headers from asking for absurd work; real writers use 128 values
 * per block and 4 miniblocks (parquet-mr, Arrow, DuckDB). */
#define PQ_DELTA_MAX_BLOCK (1u << 16)
#define PQ_DELTA_MAX_MINIBLOCKS 256u

/* Varint within [*p, end); false when truncated or longer than 64 bits. */
static bool get_varint(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
    uint64_t x = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        if (*p >= end)
            return false;
        uint8_t b = *(*p)++;
        if (shift == 63 && b > 1)
            return false;
        x |= (uint64_t)(b & 0x7F) << shift;
        if (!(b & 0x80)) {
            *v = x;
            return true;
        }
    }
    return false;
}

/* Little-endian load of up to 8 bytes at p, where only `avail` bytes may be read. */
static inline uint64_t load_le(const uint8_t *p, size_t avail)
{
    uint64_t w = 0;
    if (avail >= 8) {
        for (int i = 0; i < 8; i++)
            w |= (uint64_t)p[i] << (8 * i);
        return w;
    }
    for (size_t i = 0; i < avail; i++)
        w |= (uint64_t)p[i] << (8 * i);
    return w;
}

/* Value i of a little-endian bit-packed run of bw bits (bw <= 32) in p[0..avail). */
static inline uint32_t unpack_one(const uint8_t *p, size_t avail, size_t i, int bw)
{
    uint64_t bit = (uint64_t)i * (uint64_t)bw;
    size_t byte = (size_t)(bit >> 3);
    unsigned sh = (unsigned)(bit & 7);
    uint64_t w = load_le(p + byte, avail - byte);
    uint64_t mask = bw == 32 ? 0xFFFFFFFFu : (((uint64_t)1 << bw) - 1);
    return (uint32_t)((w >> sh) & mask);
}

static int rle_decode(const uint8_t *p, size_t len, int bw, void *out, size_t n, int out_size,
                      struct ing_err *err)
{
    if (bw < 0 || bw > 32 || (out_size == 1 && bw > 8))
        return ing_err_set(err, ING_ESYNTAX, "bad bit width %d", bw);
    const uint8_t *end = p + len;
    size_t got = 0;
    size_t value_bytes = ((size_t)bw + 7) / 8;
    uint8_t *o8 = out;
    uint32_t *o32 = out;
    while (got < n) {
        uint64_t h;
        if (!get_varint(&p, end, &h))
            return ing_err_set(err, ING_ESYNTAX, "RLE/bit-packed data ends after %zu of %zu values",
                               got, n);
        size_t want = n - got;
        if (h & 1) {
            uint64_t groups = h >> 1;
            size_t avail = (size_t)(end - p);
            /* values whose bits lie fully inside the data that is there */
            uint64_t have = bw ? (uint64_t)avail * 8 / (uint64_t)bw : UINT64_MAX;
            uint64_t count = groups > UINT64_MAX / 8 ? UINT64_MAX : groups * 8;
            uint64_t take = count < want ? count : want;
            if (take > have)
                return ing_err_set(err, ING_ESYNTAX,
                                   "bit-packed run is cut short (%zu of %zu values)", got, n);
            for (size_t i = 0; i < (size_t)take; i++) {
                uint32_t v = bw ? unpack_one(p, avail, i, bw) : 0;
                if (out_size == 1)
                    o8[got + i] = (uint8_t)v;
                else
                    o32[got + i] = v;
            }
            got += (size_t)take;
            uint64_t run_bytes = bw ? groups * (uint64_t)bw : 0;
            if (groups > UINT64_MAX / 64 || run_bytes > avail)
                p = end; /* a shortened last run: it may only be the last */
            else
                p += run_bytes;
        } else {
            uint64_t count = h >> 1;
            if ((size_t)(end - p) < value_bytes)
                return ing_err_set(err, ING_ESYNTAX, "RLE run value is cut short");
            uint32_t v = (uint32_t)load_le(p, value_bytes);
            p += value_bytes;
            size_t take = count < want ? (size_t)count : want;
            if (out_size == 1)
                memset(o8 + got, (int)(uint8_t)v, take);
            else
                for (size_t i = 0; i < take; i++)
                    o32[got + i] = v;
            got += take;
        }
    }
    return 0;
}

int pq_rle_decode_u32(const uint8_t *p, size_t len, int bit_width, uint32_t *out, size_t n,
                      struct ing_err *err)
{
    return rle_decode(p, len, bit_width, out, n, 4, err);
}

int pq_rle_decode_u8(const uint8_t *p, size_t len, int bit_width, uint8_t *out, size_t n,
                     struct ing_err *err)
{
    return rle_decode(p, len, bit_width, out, n, 1, err);
}

int pq_bitpacked_decode_u8(const uint8_t *p, size_t len, int bit_width, uint8_t *out, size_t n,
                           size_t *used, struct ing_err *err)
{
    *used = 0;
    if (bit_width < 0 || bit_width > 8)
        return ing_err_set(err, ING_ESYNTAX, "bad bit width %d", bit_width);
    if (n > (SIZE_MAX - 7) / 8)
        return ing_err_set(err, ING_ETOOBIG, "too many levels");
    size_t bytes = (n * (size_t)bit_width + 7) / 8;
    if (bytes > len)
        return ing_err_set(err, ING_ESYNTAX, "BIT_PACKED levels need %zu bytes, %zu left", bytes,
                           len);
    size_t bit = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned v = 0;
        for (int b = 0; b < bit_width; b++, bit++)
            v = (v << 1) | ((p[bit >> 3] >> (7 - (bit & 7))) & 1u);
        out[i] = (uint8_t)v;
    }
    *used = bytes;
    return 0;
}

/* Bits [bit, bit + bw) of p (LSB first), bw <= 64; the caller made sure they are in range. */
static inline uint64_t get_bits64(const uint8_t *p, uint64_t bit, int bw)
{
    uint64_t v = 0;
    int got = 0;
    while (got < bw) {
        uint64_t at = bit + (uint64_t)got;
        unsigned sh = (unsigned)(at & 7);
        int take = 8 - (int)sh;
        if (take > bw - got)
            take = bw - got;
        uint64_t part = ((uint64_t)p[at >> 3] >> sh) & ((1u << take) - 1);
        v |= part << got;
        got += take;
    }
    return v;
}

struct delta_hdr {
    uint64_t block, miniblocks, total, per_mini;
    uint64_t first;
};

static int delta_header(const uint8_t **p, const uint8_t *end, struct delta_hdr *h,
                        struct ing_err *err)
{
    uint64_t first;
    if (!get_varint(p, end, &h->block) || !get_varint(p, end, &h->miniblocks) ||
        !get_varint(p, end, &h->total) || !get_varint(p, end, &first))
        return ing_err_set(err, ING_ESYNTAX, "DELTA_BINARY_PACKED header is cut short");
    h->first = (first >> 1) ^ (0 - (first & 1));
    if (h->block == 0 || h->block % 128 || h->block > PQ_DELTA_MAX_BLOCK ||
        h->miniblocks == 0 || h->miniblocks > PQ_DELTA_MAX_MINIBLOCKS ||
        h->block % h->miniblocks || (h->block / h->miniblocks) % 32)
        return ing_err_set(err, ING_ESYNTAX,
                           "DELTA_BINARY_PACKED block of %llu values in %llu miniblocks",
                           (unsigned long long)h->block, (unsigned long long)h->miniblocks);
    h->per_mini = h->block / h->miniblocks;
    return 0;
}

int pq_delta_count(const uint8_t *p, size_t len, uint64_t *count, struct ing_err *err)
{
    struct delta_hdr h;
    int rc = delta_header(&p, p + len, &h, err);
    *count = rc ? 0 : h.total;
    return rc;
}

int pq_delta_decode(const uint8_t *p, size_t len, uint64_t *out, size_t n, size_t *used,
                    struct ing_err *err)
{
    const uint8_t *start = p, *end = p + len;
    *used = 0;
    struct delta_hdr h;
    int rc = delta_header(&p, end, &h, err);
    if (rc)
        return rc;
    if (h.total != n)
        return ing_err_set(err, ING_ESYNTAX, "DELTA_BINARY_PACKED holds %llu values, expected %zu",
                           (unsigned long long)h.total, n);
    if (n == 0) {
        *used = (size_t)(p - start);
        return 0;
    }
    uint64_t prev = h.first;
    out[0] = prev;
    size_t got = 1;
    while (got < n) {
        uint64_t zz;
        if (!get_varint(&p, end, &zz))
            return ing_err_set(err, ING_ESYNTAX, "DELTA_BINARY_PACKED block is cut short");
        uint64_t min_delta = (zz >> 1) ^ (0 - (zz & 1));
        if ((uint64_t)(end - p) < h.miniblocks)
            return ing_err_set(err, ING_ESYNTAX, "DELTA_BINARY_PACKED bit widths are cut short");
        const uint8_t *widths = p;
        p += h.miniblocks;
        for (uint64_t m = 0; m < h.miniblocks && got < n; m++) {
            int bw = widths[m];
            if (bw > 64)
                return ing_err_set(err, ING_ESYNTAX, "DELTA_BINARY_PACKED bit width %d", bw);
            uint64_t bytes = h.per_mini * (uint64_t)bw / 8;
            if ((uint64_t)(end - p) < bytes)
                return ing_err_set(err, ING_ESYNTAX,
                                   "DELTA_BINARY_PACKED miniblock is cut short (%zu of %zu values)",
                                   got, n);
            size_t take = (size_t)(n - got < h.per_mini ? n - got : h.per_mini);
            for (size_t i = 0; i < take; i++) {
                uint64_t d = bw ? get_bits64(p, (uint64_t)i * (uint64_t)bw, bw) : 0;
                prev += min_delta + d; /* wraps, as the encoding intends */
                out[got++] = prev;
            }
            p += bytes;
        }
    }
    *used = (size_t)(p - start);
    return 0;
}

int pq_bss_decode(const uint8_t *p, size_t len, size_t width, size_t n, uint8_t *out,
                  struct ing_err *err)
{
    if (width == 0 || (n && width > SIZE_MAX / n) || width * n > len)
        return ing_err_set(err, ING_ESYNTAX, "BYTE_STREAM_SPLIT data of %zu bytes for %zu values",
                           len, n);
    for (size_t k = 0; k < width; k++) {
        const uint8_t *stream = p + k * n;
        for (size_t i = 0; i < n; i++)
            out[i * width + k] = stream[i];
    }
    return 0;
}
