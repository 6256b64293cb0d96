/*
 * pq_encode.c - RLE/bit-packed hybrid and bit-packing for Parquet pages; see pq_encode.h.
 * Written from the Parquet Encodings.md description of the hybrid:
 *   run := (varint(len << 1) value-in-ceil(bw/8)-bytes) | (varint(groups << 1 | 1) packed)
 * where bit-packed values fill each byte from the least significant bit.
 */
#include "parquet/pq_encode.h"

#include <string.h>

#include "util/err.h"

/* An RLE run is worth it from 8 equal values on: shorter runs cost about as much packed. */
#define PQ_RLE_MIN_RUN 8

int pq_bit_width(uint32_t max_value)
{
    int w = 0;
    while (max_value) {
        w++;
        max_value >>= 1;
    }
    return w;
}

static size_t put_varint(uint8_t *p, uint64_t v)
{
    size_t n = 0;
    while (v >= 0x80) {
        p[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    p[n++] = (uint8_t)v;
    return n;
}

static int emit_rle_run(struct buf *out, uint32_t value, size_t count, int bit_width)
{
    int rc = buf_reserve(out, 10 + 4);
    if (rc)
        return rc;
    uint8_t *p = out->data + out->len;
    size_t n = put_varint(p, (uint64_t)count << 1);
    int value_bytes = (bit_width + 7) / 8;
    for (int i = 0; i < value_bytes; i++)
        p[n++] = (uint8_t)(value >> (8 * i));
    out->len += n;
    return 0;
}

/* Bit-pack v[0..n) as ceil(n/8) groups of 8 (zero padded at the end). */
static int emit_packed_run(struct buf *out, const uint32_t *v, size_t n, int bit_width)
{
    if (n == 0)
        return 0;
    size_t groups = (n + 7) / 8;
    int rc = buf_reserve(out, 10 + groups * (size_t)bit_width);
    if (rc)
        return rc;
    uint8_t *p = out->data + out->len;
    size_t at = put_varint(p, ((uint64_t)groups << 1) | 1);
    uint64_t acc = 0;  /* pending bits, LSB first */
    int nbits = 0;
    uint64_t mask = bit_width == 32 ? 0xFFFFFFFFu : ((1u << bit_width) - 1);
    for (size_t i = 0; i < groups * 8; i++) {
        uint64_t x = i < n ? (v[i] & mask) : 0;
        acc |= x << nbits;
        nbits += bit_width;
        while (nbits >= 8) {
            p[at++] = (uint8_t)acc;
            acc >>= 8;
            nbits -= 8;
        }
    }
    /* groups * 8 * bit_width is a whole number of bytes, so nothing is left over. */
    out->len += at;
    return 0;
}

int pq_rle_encode(struct buf *out, const uint32_t *v, size_t n, int bit_width)
{
    if (bit_width < 1 || bit_width > 32)
        return ING_EINVAL;
    size_t packed_from = 0; /* first value not yet emitted; pending ones get bit-packed */
    size_t i = 0;
    int rc = 0;
    while (i < n) {
        size_t j = i + 1;
        while (j < n && v[j] == v[i])
            j++;
        if (j - i >= PQ_RLE_MIN_RUN) {
            /* A bit-packed run may only be padded at the very end, so complete the pending
             * group of 8 with values from this run before switching to RLE. */
            size_t pending = i - packed_from;
            size_t start = i;
            if (pending % 8)
                start += 8 - pending % 8;
            if (j - start >= PQ_RLE_MIN_RUN) {
                rc = emit_packed_run(out, v + packed_from, start - packed_from, bit_width);
                if (rc)
                    return rc;
                rc = emit_rle_run(out, v[i], j - start, bit_width);
                if (rc)
                    return rc;
                packed_from = j;
            }
        }
        i = j;
    }
    return emit_packed_run(out, v + packed_from, n - packed_from, bit_width);
}

int pq_rle_encode_levels(struct buf *out, const uint32_t *v, size_t n, int bit_width)
{
    int rc = buf_reserve(out, 4);
    if (rc)
        return rc;
    size_t len_at = out->len;
    out->len += 4;
    rc = pq_rle_encode(out, v, n, bit_width);
    if (rc)
        return rc;
    size_t body = out->len - len_at - 4;
    if (body > UINT32_MAX)
        return ING_ETOOBIG;
    pq_put_le32(out->data + len_at, (uint32_t)body);
    return 0;
}

/* Queue `count` copies of v in scratch (as uint32 values) for bit-packing. */
static int pend_values(struct buf *scratch, uint32_t v, size_t count)
{
    if (count > SIZE_MAX / sizeof(uint32_t))
        return ING_ETOOBIG;
    int rc = buf_reserve(scratch, count * sizeof(uint32_t));
    if (rc)
        return rc;
    uint32_t *p = (uint32_t *)(void *)(scratch->data + scratch->len);
    for (size_t i = 0; i < count; i++)
        p[i] = v;
    scratch->len += count * sizeof(uint32_t);
    return 0;
}

int pq_rle_encode_level_runs(struct buf *out, const uint32_t *keys, const uint32_t *lens,
                             size_t nruns, int shift, uint32_t mask, int bit_width,
                             struct buf *scratch)
{
    if (bit_width < 1 || bit_width > 32)
        return ING_EINVAL;
    int rc = buf_reserve(out, 4);
    if (rc)
        return rc;
    size_t len_at = out->len;
    out->len += 4;
    buf_reset(scratch);
    size_t i = 0;
    while (i < nruns) {
        uint32_t v = (keys[i] >> shift) & mask;
        size_t count = 0;
        for (; i < nruns && ((keys[i] >> shift) & mask) == v; i++)
            count += lens[i];
        size_t pending = scratch->len / sizeof(uint32_t);
        /* As in pq_rle_encode: fill the pending group of 8 from this run, and only switch to
         * RLE when what is left of the run is still long enough to be worth it. */
        size_t fill = pending % 8 ? 8 - pending % 8 : 0;
        if (count >= fill + PQ_RLE_MIN_RUN) {
            if ((rc = pend_values(scratch, v, fill)) != 0)
                return rc;
            rc = emit_packed_run(out, (const uint32_t *)(const void *)scratch->data,
                                 scratch->len / sizeof(uint32_t), bit_width);
            if (rc)
                return rc;
            buf_reset(scratch);
            if ((rc = emit_rle_run(out, v, count - fill, bit_width)) != 0)
                return rc;
        } else if ((rc = pend_values(scratch, v, count)) != 0) {
            return rc;
        }
    }
    rc = emit_packed_run(out, (const uint32_t *)(const void *)scratch->data,
                         scratch->len / sizeof(uint32_t), bit_width);
    if (rc)
        return rc;
    size_t body = out->len - len_at - 4;
    if (body > UINT32_MAX)
        return ING_ETOOBIG;
    pq_put_le32(out->data + len_at, (uint32_t)body);
    return 0;
}

int pq_bool_pack(struct buf *out, const uint8_t *v, size_t n)
{
    size_t nbytes = (n + 7) / 8;
    int rc = buf_reserve(out, nbytes);
    if (rc)
        return rc;
    uint8_t *p = out->data + out->len;
    memset(p, 0, nbytes);
    for (size_t i = 0; i < n; i++)
        p[i >> 3] |= (uint8_t)((v[i] & 1u) << (i & 7));
    out->len += nbytes;
    return 0;
}
