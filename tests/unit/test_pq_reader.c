/*
 * test_pq_reader.c - unit tests for the Parquet reader: the Thrift compact decoder, the
 * RLE/bit-packed hybrid, BIT_PACKED, DELTA_BINARY_PACKED and BYTE_STREAM_SPLIT decoders (spec
 * and hand-computed vectors), a hand-built file with the legacy and exotic layouts (INT96,
 * 2-level and 1-level lists, MAP_KEY_VALUE, PLAIN_DICTIONARY, BIT_PACKED levels, DELTA_BYTE_ARRAY,
 * v2 pages with RLE booleans, decimals, UUID, FLOAT16, INTERVAL, unsigned, TIME, ENUM, JSON,
 * base64 binaries), round trips through our writer, and corrupt files (truncations, mutations,
 * crafted hostile metadata), the column-to-XDM binding check (ingest/pq_bind), and the typed
 * path (ingest/pq_shred: Parquet rows into the shredder without JSON text) against the JSON path
 * on those same files with several schemas: every physical and logical type into the XDM types,
 * nulls at each level, lists and maps, shapes left to the JSON rules, and bad values.
 *
 * Driver modes for tests/api/parquet_reader_duckdb.test.mjs (no cmocka run then):
 *   PQ_READ_FILE=path        print every row of the file as one JSON line; a row error prints
 *                            {"__error":"..."}; a fatal error prints "ERROR: ..." on stderr and
 *                            exits with status 2.
 *   PQ_WRITE_SAMPLE=path     write the writer round-trip sample file there (PQ_SAMPLE_ROWS rows,
 *                            default 2000; PQ_SAMPLE_RG_BYTES per row group, default 64 KiB)
 *                            and exit.
 *   PQ_WRITE_EXOTIC=path     write the hand-built exotic file there and exit (fuzz seed).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ingest/pq_bind.h"
#include "ingest/pq_shred.h"
#include "ingest/shred.h"
#include "parquet/pq_decode.h"
#include "parquet/pq_encode.h"
#include "parquet/pq_reader.h"
#include "parquet/pq_thrift.h"
#include "parquet/pq_writer.h"
#include "util/buf.h"
#include "util/fs.h"
#include "util/mem.h"

/* ------------------------------------------------------------------ helpers */

static char tmpdir_path[256];

static int setup_dir(void **state)
{
    (void)state;
    snprintf(tmpdir_path, sizeof(tmpdir_path), "/tmp/test_pq_reader.XXXXXX");
    return mkdtemp(tmpdir_path) ? 0 : -1;
}

static int teardown_dir(void **state)
{
    (void)state;
    return fs_rm_rf(tmpdir_path, NULL);
}

/* All rows of an open reader as JSON lines ("!ERR" lines for row errors); returns the final rc
 * of pq_reader_next. */
static int read_all(struct pq_reader *r, struct buf *out, struct ing_err *err)
{
    struct buf row = {0};
    int rc;
    while ((rc = pq_reader_next(r, err)) == 1) {
        buf_reset(&row);
        if (pq_reader_row_json(r, &row, err) == 0)
            assert_int_equal(buf_append(out, row.data, row.len), 0);
        else
            assert_int_equal(buf_append_str(out, "!ERR"), 0);
        assert_int_equal(buf_append_byte(out, '\n'), 0);
    }
    buf_free(&row);
    return rc;
}

static char *read_mem_json(const uint8_t *data, size_t n, const struct pq_reader_opts *opts)
{
    struct pq_reader *r = NULL;
    struct ing_err err;
    ing_err_clear(&err);
    int rc = pq_reader_open_mem(&r, data, n, opts, &err);
    if (rc) {
        fprintf(stderr, "open failed: %s\n", err.msg);
        return NULL;
    }
    struct buf out = {0};
    rc = read_all(r, &out, &err);
    if (rc)
        fprintf(stderr, "read failed: %s\n", err.msg);
    pq_reader_free(r);
    char *s = xstrdup(buf_cstr(&out));
    buf_free(&out);
    return rc ? (free(s), (char *)NULL) : s;
}

/* ------------------------------------------------------------------ Thrift decoder */

static void test_thrift_decode_roundtrip(void **state)
{
    (void)state;
    struct buf b = {0};
    struct pq_tw w;
    pq_tw_init(&w, &b);
    pq_tw_field_i32(&w, 1, -123456);
    pq_tw_field_i64(&w, 2, INT64_MIN);
    pq_tw_field_string(&w, 3, "hello");
    pq_tw_field_bool(&w, 4, true);
    pq_tw_field_bool(&w, 5, false);
    pq_tw_field_list(&w, 6, PQ_T_I32, 20); /* long list header form */
    for (int i = 0; i < 20; i++)
        pq_tw_zigzag(&w, i * 1000 - 7);
    pq_tw_field_struct_begin(&w, 40);      /* long field id form (delta > 15) */
    pq_tw_field_i32(&w, 1, 7);
    pq_tw_field_list(&w, 2, PQ_T_STRUCT, 2); /* skipped below: nested structs in a list */
    for (int i = 0; i < 2; i++) {
        pq_tw_struct_begin(&w);
        pq_tw_field_string(&w, 1, "x");
        pq_tw_struct_end(&w);
    }
    pq_tw_struct_end(&w);
    pq_tw_field_byte(&w, 41, -5);
    pq_tw_struct_end(&w);
    assert_int_equal(pq_tw_error(&w), 0);

    struct pq_tr t;
    pq_tr_init(&t, b.data, b.len);
    int16_t id;
    enum pq_ttype ty;
    int seen = 0;
    while (pq_tr_field(&t, &id, &ty)) {
        switch (id) {
        case 1: assert_int_equal(pq_tr_i32(&t, ty), -123456); seen++; break;
        case 2: assert_true(pq_tr_i64(&t, ty) == INT64_MIN); seen++; break;
        case 3: {
            const uint8_t *p;
            size_t n;
            pq_tr_binary(&t, ty, &p, &n);
            assert_int_equal(n, 5);
            assert_memory_equal(p, "hello", 5);
            seen++;
            break;
        }
        case 4: assert_true(pq_tr_bool(&t, ty)); seen++; break;
        case 5: assert_false(pq_tr_bool(&t, ty)); seen++; break;
        case 6: {
            enum pq_ttype et;
            size_t n = pq_tr_list(&t, ty, &et);
            assert_int_equal(n, 20);
            assert_int_equal(et, PQ_T_I32);
            for (int i = 0; i < 20; i++)
                assert_int_equal(pq_tr_i32(&t, et), i * 1000 - 7);
            seen++;
            break;
        }
        case 40: {
            int16_t fid;
            enum pq_ttype fty;
            pq_tr_struct_begin(&t);
            while (pq_tr_field(&t, &fid, &fty)) {
                if (fid == 1)
                    assert_int_equal(pq_tr_i32(&t, fty), 7);
                else
                    pq_tr_skip(&t, fty);
            }
            seen++;
            break;
        }
        case 41: assert_int_equal(pq_tr_i32(&t, ty), -5); seen++; break;
        default: fail();
        }
    }
    assert_int_equal(pq_tr_error(&t), 0);
    assert_int_equal(seen, 8);
    assert_int_equal(pq_tr_offset(&t), b.len); /* the STOP byte was consumed */
    buf_free(&b);
}

static int decode_error(const uint8_t *p, size_t n)
{
    struct pq_tr t;
    pq_tr_init(&t, p, n);
    int16_t id;
    enum pq_ttype ty;
    while (pq_tr_field(&t, &id, &ty))
        pq_tr_skip(&t, ty);
    return pq_tr_error(&t);
}

static void test_thrift_decode_errors(void **state)
{
    (void)state;
    /* field 1 i32 with a varint that never ends */
    static const uint8_t unterminated[] = {0x15, 0x80, 0x80};
    assert_int_equal(decode_error(unterminated, sizeof(unterminated)), ING_ESYNTAX);
    /* an 11-byte varint */
    static const uint8_t long_varint[] = {0x16, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                                          0xff, 0xff, 0xff, 0xff, 0x01, 0x00};
    assert_int_equal(decode_error(long_varint, sizeof(long_varint)), ING_ESYNTAX);
    /* a list claiming 1000 i32 elements in 3 bytes */
    static const uint8_t big_list[] = {0x19, 0xf5, 0xe8, 0x07, 0x00};
    assert_int_equal(decode_error(big_list, sizeof(big_list)), ING_ESYNTAX);
    /* binary whose length passes the end */
    static const uint8_t big_bin[] = {0x18, 0x20, 'a', 'b'};
    assert_int_equal(decode_error(big_bin, sizeof(big_bin)), ING_ESYNTAX);
    /* unknown type nibble 13 */
    static const uint8_t bad_type[] = {0x1d, 0x00};
    assert_int_equal(decode_error(bad_type, sizeof(bad_type)), ING_ESYNTAX);
    /* no STOP byte: the struct runs off the end */
    static const uint8_t no_stop[] = {0x15, 0x02};
    assert_int_equal(decode_error(no_stop, sizeof(no_stop)), ING_ESYNTAX);
    /* structs nested 100 deep: refused by the depth limit, not by the stack */
    uint8_t deep[201];
    for (int i = 0; i < 100; i++) {
        deep[2 * i] = 0x1c; /* field 1, struct */
        deep[2 * i + 1] = 0x1c;
    }
    deep[200] = 0;
    assert_int_equal(decode_error(deep, sizeof(deep)), ING_ETOOBIG);
    /* a list of lists 100 deep */
    uint8_t deep_list[102];
    deep_list[0] = 0x19;
    for (int i = 1; i < 101; i++)
        deep_list[i] = 0x19; /* one element of type list */
    deep_list[101] = 0x00;
    assert_int_equal(decode_error(deep_list, sizeof(deep_list)), ING_ETOOBIG);
    /* an i32 field whose value does not fit in 32 bits */
    static const uint8_t i32_big[] = {0x15, 0x80, 0x80, 0x80, 0x80, 0x20, 0x00};
    struct pq_tr t;
    pq_tr_init(&t, i32_big, sizeof(i32_big));
    int16_t id;
    enum pq_ttype ty;
    assert_true(pq_tr_field(&t, &id, &ty));
    (void)pq_tr_i32(&t, ty);
    assert_int_equal(pq_tr_error(&t), ING_ESYNTAX);
}

/* ------------------------------------------------------------------ value decoders */

static void test_rle_decode_vectors(void **state)
{
    (void)state;
    struct ing_err err;
    uint32_t out[16];
    /* Encodings.md: 0..7 bit-packed with width 3 is 10001000 11000110 11111010 */
    static const uint8_t packed[] = {0x03, 0x88, 0xC6, 0xFA};
    assert_int_equal(pq_rle_decode_u32(packed, sizeof(packed), 3, out, 8, &err), 0);
    for (uint32_t i = 0; i < 8; i++)
        assert_int_equal(out[i], i);
    /* an RLE run of 5 x 300 (width 9: two value bytes), then 3 bit-packed values 1,2,3 of
     * width 9 in a group of 8 (9 bytes) */
    static const uint8_t mixed[] = {0x0A, 0x2C, 0x01, 0x03, 0x01, 0x04, 0x0C, 0, 0, 0, 0, 0, 0};
    assert_int_equal(pq_rle_decode_u32(mixed, sizeof(mixed), 9, out, 8, &err), 0);
    static const uint32_t want_mixed[] = {300, 300, 300, 300, 300, 1, 2, 3};
    assert_memory_equal(out, want_mixed, sizeof(want_mixed));
    /* asking for more values than the data holds */
    assert_int_equal(pq_rle_decode_u32(mixed, sizeof(mixed), 9, out, 14, &err), ING_ESYNTAX);
    /* a last bit-packed run cut short is fine while the values asked for are complete */
    static const uint8_t short_run[] = {0x05, 0xFF}; /* 2 groups declared, 1 byte present */
    uint8_t lv[8];
    assert_int_equal(pq_rle_decode_u8(short_run, sizeof(short_run), 1, lv, 8, &err), 0);
    assert_int_equal(lv[7], 1);
    assert_int_equal(pq_rle_decode_u8(short_run, sizeof(short_run), 1, lv, 9, &err),
                     ING_ESYNTAX);
    /* width 0: every value is 0 and runs take no value bytes */
    static const uint8_t zero[] = {0x10};
    assert_int_equal(pq_rle_decode_u8(zero, sizeof(zero), 0, lv, 8, &err), 0);
    for (int i = 0; i < 8; i++)
        assert_int_equal(lv[i], 0);
    /* bad width */
    assert_int_equal(pq_rle_decode_u8(zero, sizeof(zero), 9, lv, 1, &err), ING_ESYNTAX);
}

static void test_rle_decode_matches_writer(void **state)
{
    (void)state;
    /* The writer's encoder and the reader's decoder agree on mixed runs of every width. */
    uint32_t v[1000], got[1000];
    uint32_t seed = 12345;
    for (int bw = 1; bw <= 32; bw++) {
        uint32_t mask = bw == 32 ? 0xFFFFFFFFu : (1u << bw) - 1;
        for (int i = 0; i < 1000; i++) {
            seed = seed * 1103515245u + 12345u;
            v[i] = (i / 50) % 2 ? (uint32_t)(i / 50) & mask : (seed >> 3) & mask;
        }
        struct buf b = {0};
        assert_int_equal(pq_rle_encode(&b, v, 1000, bw), 0);
        assert_int_equal(pq_rle_decode_u32(b.data, b.len, bw, got, 1000, NULL), 0);
        assert_memory_equal(got, v, sizeof(v));
        buf_free(&b);
    }
}

static void test_bitpacked_levels(void **state)
{
    (void)state;
    /* Encodings.md: 0..7 in the deprecated BIT_PACKED form is 00000101 00111001 01110111 */
    static const uint8_t p[] = {0x05, 0x39, 0x77};
    uint8_t out[8];
    size_t used;
    assert_int_equal(pq_bitpacked_decode_u8(p, sizeof(p), 3, out, 8, &used, NULL), 0);
    assert_int_equal(used, 3);
    for (int i = 0; i < 8; i++)
        assert_int_equal(out[i], i);
    assert_int_equal(pq_bitpacked_decode_u8(p, 2, 3, out, 8, &used, NULL), ING_ESYNTAX);
}

static void test_delta_vectors(void **state)
{
    (void)state;
    uint64_t out[8];
    size_t used;
    struct ing_err err;
    /* Encodings.md example 1: 1 2 3 4 5 -> min delta 1, all widths 0, no miniblock bytes */
    static const uint8_t ex1[] = {0x80, 0x01, 0x04, 0x05, 0x02, 0x02, 0, 0, 0, 0};
    assert_int_equal(pq_delta_decode(ex1, sizeof(ex1), out, 5, &used, &err), 0);
    for (int i = 0; i < 5; i++)
        assert_int_equal(out[i], i + 1);
    assert_int_equal(used, sizeof(ex1));
    /* Encodings.md example 2: 7 5 3 1 2 3 4 5 -> deltas -2 -2 -2 1 1 1 1, min -2, relative
     * 0 0 0 3 3 3 3 in width 2: bytes 0xC0 0x3F then zeros up to 32 values (8 bytes) */
    static const uint8_t ex2[] = {0x80, 0x01, 0x04, 0x08, 0x0E, 0x03, 0x02, 0, 0, 0,
                                  0xC0, 0x3F, 0, 0, 0, 0, 0, 0, 0xAA};
    assert_int_equal(pq_delta_decode(ex2, sizeof(ex2), out, 8, &used, &err), 0);
    static const int64_t want2[] = {7, 5, 3, 1, 2, 3, 4, 5};
    for (int i = 0; i < 8; i++)
        assert_int_equal((int64_t)out[i], want2[i]);
    assert_int_equal(used, sizeof(ex2) - 1); /* the trailing 0xAA is not part of it */
    /* Wrapping: INT64_MIN then a delta of -1 gives INT64_MAX. zigzag(INT64_MIN) is all ones. */
    static const uint8_t wrap[] = {0x80, 0x01, 0x04, 0x02, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
                                   0xFF, 0xFF, 0xFF, 0xFF, 0x01, 0x01, 0, 0, 0, 0};
    assert_int_equal(pq_delta_decode(wrap, sizeof(wrap), out, 2, &used, &err), 0);
    assert_true((int64_t)out[0] == INT64_MIN);
    assert_true((int64_t)out[1] == INT64_MAX);
    uint64_t count;
    assert_int_equal(pq_delta_count(ex2, sizeof(ex2), &count, NULL), 0);
    assert_int_equal(count, 8);
    /* errors: count mismatch, block size not a multiple of 128, miniblock cut short */
    assert_int_equal(pq_delta_decode(ex1, sizeof(ex1), out, 4, &used, &err), ING_ESYNTAX);
    static const uint8_t bad_block[] = {0x40, 0x04, 0x05, 0x02, 0x02, 0, 0, 0, 0};
    assert_int_equal(pq_delta_decode(bad_block, sizeof(bad_block), out, 5, &used, &err),
                     ING_ESYNTAX);
    assert_int_equal(pq_delta_decode(ex2, 14, out, 8, &used, &err), ING_ESYNTAX);
    /* a bit width above 64 */
    static const uint8_t wide[] = {0x80, 0x01, 0x04, 0x02, 0x00, 0x00, 65, 0, 0, 0};
    assert_int_equal(pq_delta_decode(wide, sizeof(wide), out, 2, &used, &err), ING_ESYNTAX);
}

static void test_byte_stream_split(void **state)
{
    (void)state;
    /* two 4-byte values 0x04030201 and 0x08070605: streams 01 05 | 02 06 | 03 07 | 04 08 */
    static const uint8_t in[] = {1, 5, 2, 6, 3, 7, 4, 8};
    uint8_t out[8];
    assert_int_equal(pq_bss_decode(in, sizeof(in), 4, 2, out, NULL), 0);
    static const uint8_t want[] = {1, 2, 3, 4, 5, 6, 7, 8};
    assert_memory_equal(out, want, 8);
    assert_int_equal(pq_bss_decode(in, 7, 4, 2, out, NULL), ING_ESYNTAX);
}

/* ------------------------------------------------------------------ a hand-built file */

/* Test-only DELTA_BINARY_PACKED encoder (blocks of 128, 4 miniblocks of 32). */
static void put_varint(struct buf *b, uint64_t v)
{
    while (v >= 0x80) {
        assert_int_equal(buf_append_byte(b, (uint8_t)(v | 0x80)), 0);
        v >>= 7;
    }
    assert_int_equal(buf_append_byte(b, (uint8_t)v), 0);
}

static void put_zigzag(struct buf *b, int64_t v)
{
    put_varint(b, ((uint64_t)v << 1) ^ (v < 0 ? UINT64_MAX : 0));
}

static void delta_encode(struct buf *b, const int64_t *v, size_t n)
{
    put_varint(b, 128);
    put_varint(b, 4);
    put_varint(b, n);
    put_zigzag(b, n ? v[0] : 0);
    for (size_t at = 1; at < n; at += 128) {
        size_t cnt = n - at < 128 ? n - at : 128;
        int64_t d[128];
        int64_t mn = INT64_MAX;
        for (size_t k = 0; k < cnt; k++) {
            d[k] = (int64_t)((uint64_t)v[at + k] - (uint64_t)v[at + k - 1]);
            if (d[k] < mn)
                mn = d[k];
        }
        put_zigzag(b, mn);
        int widths[4] = {0};
        for (size_t k = 0; k < cnt; k++) {
            uint64_t rel = (uint64_t)d[k] - (uint64_t)mn;
            int w = 0;
            while (w < 64 && (rel >> w))
                w++;
            if (w > widths[k / 32])
                widths[k / 32] = w;
        }
        for (int m = 0; m < 4; m++)
            assert_int_equal(buf_append_byte(b, (uint8_t)widths[m]), 0);
        for (int m = 0; m < 4 && (size_t)m * 32 < cnt; m++) {
            uint8_t packed[256] = {0};
            for (size_t k = 0; k < 32; k++) {
                size_t idx = (size_t)m * 32 + k;
                uint64_t rel = idx < cnt ? (uint64_t)d[idx] - (uint64_t)mn : 0;
                for (int bit = 0; bit < widths[m]; bit++) {
                    size_t pos = k * (size_t)widths[m] + (size_t)bit;
                    if ((rel >> bit) & 1)
                        packed[pos / 8] |= (uint8_t)(1u << (pos % 8));
                }
            }
            assert_int_equal(buf_append(b, packed, (size_t)widths[m] * 4), 0);
        }
    }
}

static void test_delta_roundtrip(void **state)
{
    (void)state;
    /* the test encoder and the decoder agree on 1000 values spanning several blocks, with
     * wrapping differences */
    int64_t v[1000];
    uint64_t got[1000];
    uint64_t seed = 99;
    for (int i = 0; i < 1000; i++) {
        seed = seed * 6364136223846793005ull + 1442695040888963407ull;
        v[i] = i % 97 == 0 ? INT64_MIN + i : i % 89 == 0 ? INT64_MAX - i
               : (int64_t)(seed >> (i % 60));
    }
    struct buf b = {0};
    delta_encode(&b, v, 1000);
    size_t used;
    assert_int_equal(pq_delta_decode(b.data, b.len, got, 1000, &used, NULL), 0);
    assert_int_equal(used, b.len);
    for (int i = 0; i < 1000; i++)
        assert_true((int64_t)got[i] == v[i]);
    buf_free(&b);
}

/* Schema element of the hand-built file. type < 0: a group with nchildren fields. */
struct tb_elem {
    const char *name;
    int type, type_length, rep, nchildren, converted;
    int logical;      /* LogicalType member, 0 for none */
    int lt_a, lt_b;   /* TIMESTAMP/TIME: utc, unit (1..3); INTEGER: bits, signed; DECIMAL: scale,
                         precision */
    int scale, precision;
};

struct tbuilder {
    struct buf file;
    struct buf cols;   /* serialised ColumnChunk structs */
    int ncols;
};

static void tb_begin(struct tbuilder *tb)
{
    memset(tb, 0, sizeof(*tb));
    assert_int_equal(buf_append(&tb->file, "PAR1", 4), 0);
}

/* Page header + body appended to `chunk`. kind: 0 data v1, 2 dictionary, 3 data v2. */
static void tb_page(struct buf *chunk, int kind, int32_t nvals, int enc, const struct buf *body,
                    int v2_rep_len, int v2_def_len, int def_enc)
{
    struct pq_tw t;
    pq_tw_init(&t, chunk);
    pq_tw_field_i32(&t, 1, kind);
    pq_tw_field_i32(&t, 2, (int32_t)body->len);
    pq_tw_field_i32(&t, 3, (int32_t)body->len);
    if (kind == 0) {
        pq_tw_field_struct_begin(&t, 5);
        pq_tw_field_i32(&t, 1, nvals);
        pq_tw_field_i32(&t, 2, enc);
        pq_tw_field_i32(&t, 3, def_enc);
        pq_tw_field_i32(&t, 4, 3);
        pq_tw_struct_end(&t);
    } else if (kind == 2) {
        pq_tw_field_struct_begin(&t, 7);
        pq_tw_field_i32(&t, 1, nvals);
        pq_tw_field_i32(&t, 2, enc);
        pq_tw_struct_end(&t);
    } else {
        pq_tw_field_struct_begin(&t, 8);
        pq_tw_field_i32(&t, 1, nvals);
        pq_tw_field_i32(&t, 2, 0);
        pq_tw_field_i32(&t, 3, nvals);
        pq_tw_field_i32(&t, 4, enc);
        pq_tw_field_i32(&t, 5, v2_def_len);
        pq_tw_field_i32(&t, 6, v2_rep_len);
        pq_tw_field_bool(&t, 7, false);
        pq_tw_struct_end(&t);
    }
    pq_tw_struct_end(&t);
    assert_int_equal(pq_tw_error(&t), 0);
    assert_int_equal(buf_append(chunk, body->data, body->len), 0);
}

/* Column chunk bytes appended to the file, its metadata remembered. `path` is dotted. */
static void tb_chunk(struct tbuilder *tb, int phys, const char *path, int64_t nvals,
                     const struct buf *chunk, size_t dict_bytes)
{
    int64_t start = (int64_t)tb->file.len;
    assert_int_equal(buf_append(&tb->file, chunk->data, chunk->len), 0);
    struct pq_tw t;
    pq_tw_init(&t, &tb->cols);
    pq_tw_struct_begin(&t);
    pq_tw_field_i64(&t, 2, 0);
    pq_tw_field_struct_begin(&t, 3);
    pq_tw_field_i32(&t, 1, phys);
    pq_tw_field_list(&t, 2, PQ_T_I32, 1);
    pq_tw_zigzag(&t, 0);
    int nparts = 1;
    for (const char *p = path; *p; p++)
        nparts += *p == '.';
    pq_tw_field_list(&t, 3, PQ_T_BINARY, (size_t)nparts);
    for (const char *p = path;;) {
        const char *dot = strchr(p, '.');
        size_t n = dot ? (size_t)(dot - p) : strlen(p);
        pq_tw_binary(&t, p, n);
        if (!dot)
            break;
        p = dot + 1;
    }
    pq_tw_field_i32(&t, 4, 0);
    pq_tw_field_i64(&t, 5, nvals);
    pq_tw_field_i64(&t, 6, (int64_t)chunk->len);
    pq_tw_field_i64(&t, 7, (int64_t)chunk->len);
    pq_tw_field_i64(&t, 9, start + (int64_t)dict_bytes);
    if (dict_bytes)
        pq_tw_field_i64(&t, 11, start);
    pq_tw_struct_end(&t);
    pq_tw_struct_end(&t);
    assert_int_equal(pq_tw_error(&t), 0);
    tb->ncols++;
}

static void tb_finish(struct tbuilder *tb, const struct tb_elem *els, size_t nels, int64_t rows)
{
    struct buf meta = {0};
    struct pq_tw t;
    pq_tw_init(&t, &meta);
    pq_tw_field_i32(&t, 1, 2);
    pq_tw_field_list(&t, 2, PQ_T_STRUCT, nels);
    for (size_t i = 0; i < nels; i++) {
        const struct tb_elem *e = &els[i];
        pq_tw_struct_begin(&t);
        if (e->type >= 0)
            pq_tw_field_i32(&t, 1, e->type);
        if (e->type_length)
            pq_tw_field_i32(&t, 2, e->type_length);
        if (i)
            pq_tw_field_i32(&t, 3, e->rep);
        pq_tw_field_string(&t, 4, e->name);
        if (e->type < 0)
            pq_tw_field_i32(&t, 5, e->nchildren);
        if (e->converted >= 0)
            pq_tw_field_i32(&t, 6, e->converted);
        if (e->scale || e->precision) {
            pq_tw_field_i32(&t, 7, e->scale);
            pq_tw_field_i32(&t, 8, e->precision);
        }
        if (e->logical) {
            pq_tw_field_struct_begin(&t, 10);
            pq_tw_field_struct_begin(&t, (int16_t)e->logical);
            if (e->logical == 7 || e->logical == 8) {
                pq_tw_field_bool(&t, 1, e->lt_a != 0);
                pq_tw_field_struct_begin(&t, 2);
                pq_tw_field_empty_struct(&t, (int16_t)e->lt_b);
                pq_tw_struct_end(&t);
            } else if (e->logical == 10) {
                pq_tw_field_byte(&t, 1, (int8_t)e->lt_a);
                pq_tw_field_bool(&t, 2, e->lt_b != 0);
            }
            pq_tw_struct_end(&t);
            pq_tw_struct_end(&t);
        }
        pq_tw_struct_end(&t);
    }
    pq_tw_field_i64(&t, 3, rows);
    pq_tw_field_list(&t, 4, PQ_T_STRUCT, 1);
    pq_tw_struct_begin(&t);
    pq_tw_field_list(&t, 1, PQ_T_STRUCT, (size_t)tb->ncols);
    pq_tw_raw(&t, tb->cols.data, tb->cols.len);
    pq_tw_field_i64(&t, 2, 0);
    pq_tw_field_i64(&t, 3, rows);
    pq_tw_struct_end(&t);
    pq_tw_struct_end(&t);
    assert_int_equal(pq_tw_error(&t), 0);
    uint8_t tail[8];
    pq_put_le32(tail, (uint32_t)meta.len);
    memcpy(tail + 4, "PAR1", 4);
    assert_int_equal(buf_append(&tb->file, meta.data, meta.len), 0);
    assert_int_equal(buf_append(&tb->file, tail, 8), 0);
    buf_free(&meta);
    buf_free(&tb->cols);
}

/* v1 page body: levels (RLE with length prefix, only when max > 0) then values. */
static void v1_body(struct buf *body, const uint32_t *rep, int max_rep, const uint32_t *def,
                    int max_def, size_t n, const void *vals, size_t vlen)
{
    buf_reset(body);
    if (max_rep)
        assert_int_equal(pq_rle_encode_levels(body, rep, n, pq_bit_width((uint32_t)max_rep)), 0);
    if (max_def)
        assert_int_equal(pq_rle_encode_levels(body, def, n, pq_bit_width((uint32_t)max_def)), 0);
    assert_int_equal(buf_append(body, vals, vlen), 0);
}

/* PLAIN BYTE_ARRAY values from NUL-separated strings ("a\0bc\0"), `n` of them. */
static void plain_strings(struct buf *out, const char *const *s, size_t n)
{
    buf_reset(out);
    for (size_t i = 0; i < n; i++) {
        uint8_t len[4];
        pq_put_le32(len, (uint32_t)strlen(s[i]));
        assert_int_equal(buf_append(out, len, 4), 0);
        assert_int_equal(buf_append_str(out, s[i]), 0);
    }
}

/* A one-page column of a required/optional flat or nested leaf. */
static void simple_col(struct tbuilder *tb, int phys, const char *path, const uint32_t *rep,
                       int max_rep, const uint32_t *def, int max_def, size_t n, const void *vals,
                       size_t vlen, int enc)
{
    struct buf body = {0}, chunk = {0};
    v1_body(&body, rep, max_rep, def, max_def, n, vals, vlen);
    tb_page(&chunk, 0, (int32_t)n, enc, &body, 0, 0, 3);
    tb_chunk(tb, phys, path, (int64_t)n, &chunk, 0);
    buf_free(&body);
    buf_free(&chunk);
}

enum { T_BOOL = 0, T_I32 = 1, T_I64 = 2, T_I96 = 3, T_FLOAT = 4, T_DOUBLE = 5, T_BA = 6,
       T_FLBA = 7 };

/* The exotic file: 3 rows over every layout the writer never produces. */
static void build_exotic(struct buf *out)
{
    static const struct tb_elem els[] = {
        {"schema", -1, 0, 0, 15, -1, 0, 0, 0, 0, 0},
        {"ts96", T_I96, 0, 0, 0, -1, 0, 0, 0, 0, 0},
        {"l2", -1, 0, 1, 1, 3, 0, 0, 0, 0, 0},               /* LIST, converted only */
        {"element", T_I32, 0, 2, 0, -1, 0, 0, 0, 0, 0},      /* legacy 2-level */
        {"tags", T_BA, 0, 2, 0, 0, 0, 0, 0, 0, 0},           /* 1-level repeated UTF8 */
        {"arr", -1, 0, 1, 1, -1, 3, 0, 0, 0, 0},             /* LIST, logical only */
        {"array", -1, 0, 2, 2, -1, 0, 0, 0, 0, 0},           /* element = the group */
        {"a", T_I32, 0, 0, 0, -1, 0, 0, 0, 0, 0},
        {"b", T_BA, 0, 1, 0, 0, 0, 0, 0, 0, 0},
        {"m", -1, 0, 1, 1, 1, 0, 0, 0, 0, 0},                /* MAP */
        {"map", -1, 0, 2, 2, 2, 0, 0, 0, 0, 0},              /* MAP_KEY_VALUE */
        {"key", T_BA, 0, 0, 0, 0, 0, 0, 0, 0, 0},
        {"value", T_I32, 0, 1, 0, -1, 0, 0, 0, 0, 0},
        {"dict_s", T_BA, 0, 1, 0, 0, 0, 0, 0, 0, 0},
        {"dba", T_BA, 0, 0, 0, 0, 0, 0, 0, 0, 0},
        {"flag", T_BOOL, 0, 1, 0, -1, 0, 0, 0, 0, 0},
        {"dfix", T_FLBA, 5, 0, 0, 5, 0, 0, 0, 2, 10},        /* DECIMAL(10,2), converted */
        {"uuid", T_FLBA, 16, 0, 0, -1, 14, 0, 0, 0, 0},
        {"f16", T_FLBA, 2, 0, 0, -1, 15, 0, 0, 0, 0},
        {"iv", T_FLBA, 12, 0, 0, 21, 0, 0, 0, 0, 0},         /* INTERVAL */
        {"u64", T_I64, 0, 0, 0, -1, 10, 64, 0, 0, 0},        /* INTEGER(64, unsigned) */
        {"tsn", T_I64, 0, 0, 0, -1, 8, 0, 3, 0, 0},          /* TIMESTAMP(NANOS, local) */
        {"misc", -1, 0, 0, 8, -1, 0, 0, 0, 0, 0},
        {"u32", T_I32, 0, 0, 0, 13, 0, 0, 0, 0, 0},          /* UINT_32 */
        {"tmi", T_I32, 0, 0, 0, 7, 0, 0, 0, 0, 0},           /* TIME_MILLIS */
        {"en", T_BA, 0, 0, 0, 4, 0, 0, 0, 0, 0},             /* ENUM */
        {"js", T_BA, 0, 0, 0, -1, 12, 0, 0, 0, 0},           /* JSON */
        {"raw", T_BA, 0, 0, 0, -1, 0, 0, 0, 0, 0},           /* no annotation: base64 */
        {"dt", T_I32, 0, 0, 0, 6, 0, 0, 0, 0, 0},            /* DATE */
        {"bss", T_DOUBLE, 0, 0, 0, -1, 0, 0, 0, 0, 0},
        {"dbp", T_I32, 0, 0, 0, -1, 0, 0, 0, 0, 0},
    };
    struct tbuilder tb;
    tb_begin(&tb);
    struct buf vals = {0}, body = {0}, chunk = {0};
    static const uint32_t zeros[8] = {0};

    /* ts96: 2000-01-01T00:00:00.000000001, 1970-01-01T12:00, 1969-12-31T23:59:59.5 */
    uint8_t t96[36];
    const int64_t nanos[3] = {1, INT64_C(43200000000000), INT64_C(86399500000000)};
    const int32_t jd[3] = {2451545, 2440588, 2440587};
    for (int i = 0; i < 3; i++) {
        pq_put_le64(t96 + 12 * i, (uint64_t)nanos[i]);
        pq_put_le32(t96 + 12 * i + 8, (uint32_t)jd[i]);
    }
    simple_col(&tb, T_I96, "ts96", NULL, 0, NULL, 0, 3, t96, sizeof(t96), 0);

    /* l2: [1,2], null, [] */
    {
        static const uint32_t rep[] = {0, 1, 0, 0}, def[] = {2, 2, 0, 1};
        uint8_t v[8];
        pq_put_le32(v, 1);
        pq_put_le32(v + 4, 2);
        simple_col(&tb, T_I32, "l2.element", rep, 1, def, 2, 4, v, 8, 0);
    }
    /* tags: ["a","b"], [], ["c"] */
    {
        static const uint32_t rep[] = {0, 1, 0, 0}, def[] = {1, 1, 0, 1};
        static const char *const s[] = {"a", "b", "c"};
        plain_strings(&vals, s, 3);
        simple_col(&tb, T_BA, "tags", rep, 1, def, 1, 4, vals.data, vals.len, 0);
    }
    /* arr: [{a:1,b:"x"},{a:2,b:null}], null, [{a:3,b:"y"}] */
    {
        static const uint32_t rep[] = {0, 1, 0, 0}, adef[] = {2, 2, 0, 2}, bdef[] = {3, 2, 0, 3};
        uint8_t v[12];
        pq_put_le32(v, 1);
        pq_put_le32(v + 4, 2);
        pq_put_le32(v + 8, 3);
        simple_col(&tb, T_I32, "arr.array.a", rep, 1, adef, 2, 4, v, 12, 0);
        static const char *const s[] = {"x", "y"};
        plain_strings(&vals, s, 2);
        simple_col(&tb, T_BA, "arr.array.b", rep, 1, bdef, 3, 4, vals.data, vals.len, 0);
    }
    /* m: {"k1":10,"k2":null}, {}, null */
    {
        static const uint32_t rep[] = {0, 1, 0, 0}, kdef[] = {2, 2, 1, 0}, vdef[] = {3, 2, 1, 0};
        static const char *const s[] = {"k1", "k2"};
        plain_strings(&vals, s, 2);
        simple_col(&tb, T_BA, "m.map.key", rep, 1, kdef, 2, 4, vals.data, vals.len, 0);
        uint8_t v[4];
        pq_put_le32(v, 10);
        simple_col(&tb, T_I32, "m.map.value", rep, 1, vdef, 3, 4, v, 4, 0);
    }
    /* dict_s: "green", null, "red" - PLAIN_DICTIONARY with BIT_PACKED definition levels */
    {
        static const char *const s[] = {"red", "green"};
        plain_strings(&vals, s, 2);
        tb_page(&chunk, 2, 2, 2, &vals, 0, 0, 0);
        size_t dict_bytes = chunk.len;
        buf_reset(&body);
        static const uint8_t data[] = {0xA0, 0x01, 0x03, 0x01}; /* levels 1,0,1 MSB-first;
                                                                    width 1; indices 1,0 */
        assert_int_equal(buf_append(&body, data, sizeof(data)), 0);
        tb_page(&chunk, 0, 3, 2, &body, 0, 0, 4);
        tb_chunk(&tb, T_BA, "dict_s", 3, &chunk, dict_bytes);
        buf_reset(&chunk);
    }
    /* dba: DELTA_BYTE_ARRAY "apple", "apricot", "banana" */
    {
        static const int64_t pre[] = {0, 2, 0}, suf[] = {5, 5, 6};
        buf_reset(&vals);
        delta_encode(&vals, pre, 3);
        delta_encode(&vals, suf, 3);
        assert_int_equal(buf_append_str(&vals, "applericotbanana"), 0);
        simple_col(&tb, T_BA, "dba", NULL, 0, NULL, 0, 3, vals.data, vals.len, 7);
    }
    /* flag: true, null, false - a v2 page with RLE booleans */
    {
        buf_reset(&body);
        static const uint32_t def[] = {1, 0, 1};
        assert_int_equal(pq_rle_encode(&body, def, 3, 1), 0);
        int def_len = (int)body.len;
        static const uint8_t bools[] = {2, 0, 0, 0, 0x03, 0x01}; /* length 2; true,false */
        assert_int_equal(buf_append(&body, bools, sizeof(bools)), 0);
        tb_page(&chunk, 3, 3, 3, &body, 0, def_len, 3);
        tb_chunk(&tb, T_BOOL, "flag", 3, &chunk, 0);
        buf_reset(&chunk);
    }
    /* dfix: DECIMAL(10,2) in 5 bytes: 123.45, -0.01, 0.00 */
    {
        static const uint8_t v[] = {0, 0, 0, 0x30, 0x39, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0};
        simple_col(&tb, T_FLBA, "dfix", NULL, 0, NULL, 0, 3, v, sizeof(v), 0);
    }
    /* uuid */
    {
        uint8_t v[48];
        for (int i = 0; i < 16; i++) {
            v[i] = (uint8_t)i;
            v[16 + i] = 0xff;
            v[32 + i] = 0x12;
        }
        simple_col(&tb, T_FLBA, "uuid", NULL, 0, NULL, 0, 3, v, sizeof(v), 0);
    }
    /* f16: 1.0, -2.5, 65504 */
    {
        static const uint8_t v[] = {0x00, 0x3C, 0x00, 0xC1, 0xFF, 0x7B};
        simple_col(&tb, T_FLBA, "f16", NULL, 0, NULL, 0, 3, v, sizeof(v), 0);
    }
    /* iv: (1,2,3), (0,0,0), (4294967295, 7, 86400000) */
    {
        uint8_t v[36] = {0};
        pq_put_le32(v, 1);
        pq_put_le32(v + 4, 2);
        pq_put_le32(v + 8, 3);
        pq_put_le32(v + 24, 4294967295u);
        pq_put_le32(v + 28, 7);
        pq_put_le32(v + 32, 86400000);
        simple_col(&tb, T_FLBA, "iv", NULL, 0, NULL, 0, 3, v, sizeof(v), 0);
    }
    /* u64 */
    {
        uint8_t v[24];
        pq_put_le64(v, UINT64_MAX);
        pq_put_le64(v + 8, 1);
        pq_put_le64(v + 16, UINT64_C(9223372036854775808));
        simple_col(&tb, T_I64, "u64", NULL, 0, NULL, 0, 3, v, sizeof(v), 0);
    }
    /* tsn: 1 ns, -1 ns, 1700000000123456789 ns */
    {
        uint8_t v[24];
        pq_put_le64(v, 1);
        pq_put_le64(v + 8, (uint64_t)INT64_C(-1));
        pq_put_le64(v + 16, UINT64_C(1700000000123456789));
        simple_col(&tb, T_I64, "tsn", NULL, 0, NULL, 0, 3, v, sizeof(v), 0);
    }
    /* misc.u32 */
    {
        uint8_t v[12];
        pq_put_le32(v, 4294967295u);
        pq_put_le32(v + 4, 0);
        pq_put_le32(v + 8, 2147483648u);
        simple_col(&tb, T_I32, "misc.u32", NULL, 0, NULL, 0, 3, v, sizeof(v), 0);
    }
    /* misc.tmi: 0, 01:02:03.004, 23:59:59.999 */
    {
        uint8_t v[12];
        pq_put_le32(v, 0);
        pq_put_le32(v + 4, 3723004);
        pq_put_le32(v + 8, 86399999);
        simple_col(&tb, T_I32, "misc.tmi", NULL, 0, NULL, 0, 3, v, sizeof(v), 0);
    }
    /* misc.en, misc.js, misc.raw */
    {
        static const char *const en[] = {"A", "B", "C"};
        plain_strings(&vals, en, 3);
        simple_col(&tb, T_BA, "misc.en", NULL, 0, NULL, 0, 3, vals.data, vals.len, 0);
        static const char *const js[] = {"{\"a\":1}", "[]", "null"};
        plain_strings(&vals, js, 3);
        simple_col(&tb, T_BA, "misc.js", NULL, 0, NULL, 0, 3, vals.data, vals.len, 0);
        static const uint8_t raw[] = {3, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 5, 0, 0, 0,
                                      'h', 'e', 'l', 'l', 'o'};
        simple_col(&tb, T_BA, "misc.raw", NULL, 0, NULL, 0, 3, raw, sizeof(raw), 0);
    }
    /* misc.dt: 0, -1, 19000 */
    {
        uint8_t v[12];
        pq_put_le32(v, 0);
        pq_put_le32(v + 4, (uint32_t)-1);
        pq_put_le32(v + 8, 19000);
        simple_col(&tb, T_I32, "misc.dt", NULL, 0, NULL, 0, 3, v, sizeof(v), 0);
    }
    /* misc.bss: BYTE_STREAM_SPLIT doubles 1.5, -0.25, 1e100 */
    {
        const double d[3] = {1.5, -0.25, 1e100};
        uint8_t v[24];
        for (int i = 0; i < 3; i++) {
            uint64_t bits;
            memcpy(&bits, &d[i], 8);
            for (int k = 0; k < 8; k++)
                v[k * 3 + i] = (uint8_t)(bits >> (8 * k));
        }
        simple_col(&tb, T_DOUBLE, "misc.bss", NULL, 0, NULL, 0, 3, v, sizeof(v), 9);
    }
    /* misc.dbp: DELTA_BINARY_PACKED int32 100, -5, 2147483647 */
    {
        static const int64_t v[] = {100, -5, 2147483647};
        buf_reset(&vals);
        delta_encode(&vals, v, 3);
        simple_col(&tb, T_I32, "misc.dbp", NULL, 0, NULL, 0, 3, vals.data, vals.len, 5);
    }
    (void)zeros;
    tb_finish(&tb, els, ING_ARRAY_LEN(els), 3);
    *out = tb.file;
    buf_free(&vals);
    buf_free(&body);
    buf_free(&chunk);
}

static void test_exotic_file(void **state)
{
    (void)state;
    struct buf f = {0};
    build_exotic(&f);
    char *got = read_mem_json(f.data, f.len, NULL);
    assert_non_null(got);
    const char *want =
        "{\"ts96\":\"2000-01-01T00:00:00.000000001Z\",\"l2\":[1,2],\"tags\":[\"a\",\"b\"],"
        "\"arr\":[{\"a\":1,\"b\":\"x\"},{\"a\":2,\"b\":null}],\"m\":{\"k1\":10,\"k2\":null},"
        "\"dict_s\":\"green\",\"dba\":\"apple\",\"flag\":true,\"dfix\":123.45,"
        "\"uuid\":\"00010203-0405-0607-0809-0a0b0c0d0e0f\",\"f16\":1,"
        "\"iv\":{\"months\":1,\"days\":2,\"millis\":3},\"u64\":18446744073709551615,"
        "\"tsn\":\"1970-01-01T00:00:00.000000001Z\",\"misc\":{\"u32\":4294967295,"
        "\"tmi\":\"00:00:00.000\",\"en\":\"A\",\"js\":\"{\\\"a\\\":1}\",\"raw\":\"AAEC\","
        "\"dt\":\"1970-01-01\",\"bss\":1.5,\"dbp\":100}}\n"
        "{\"ts96\":\"1970-01-01T12:00:00.000000000Z\",\"l2\":null,\"tags\":[],\"arr\":null,"
        "\"m\":{},\"dict_s\":null,\"dba\":\"apricot\",\"flag\":null,\"dfix\":-0.01,"
        "\"uuid\":\"ffffffff-ffff-ffff-ffff-ffffffffffff\",\"f16\":-2.5,"
        "\"iv\":{\"months\":0,\"days\":0,\"millis\":0},\"u64\":1,"
        "\"tsn\":\"1969-12-31T23:59:59.999999999Z\",\"misc\":{\"u32\":0,"
        "\"tmi\":\"01:02:03.004\",\"en\":\"B\",\"js\":\"[]\",\"raw\":\"\","
        "\"dt\":\"1969-12-31\",\"bss\":-0.25,\"dbp\":-5}}\n"
        "{\"ts96\":\"1969-12-31T23:59:59.500000000Z\",\"l2\":[],\"tags\":[\"c\"],"
        "\"arr\":[{\"a\":3,\"b\":\"y\"}],\"m\":null,\"dict_s\":\"red\",\"dba\":\"banana\","
        "\"flag\":false,\"dfix\":0.00,\"uuid\":\"12121212-1212-1212-1212-121212121212\","
        "\"f16\":65504,\"iv\":{\"months\":4294967295,\"days\":7,\"millis\":86400000},"
        "\"u64\":9223372036854775808,\"tsn\":\"2023-11-14T22:13:20.123456789Z\","
        "\"misc\":{\"u32\":2147483648,\"tmi\":\"23:59:59.999\",\"en\":\"C\",\"js\":\"null\","
        "\"raw\":\"aGVsbG8=\",\"dt\":\"2022-01-08\",\"bss\":1e+100,\"dbp\":2147483647}}\n";
    assert_string_equal(got, want);
    free(got);

    /* the schema as the reader sees it */
    struct pq_reader *r;
    assert_int_equal(pq_reader_open_mem(&r, f.data, f.len, NULL, NULL), 0);
    assert_int_equal(pq_reader_num_rows(r), 3);
    assert_int_equal(pq_reader_ncolumns(r), 24);
    assert_string_equal(pq_reader_column_path(r, 3), "arr.array.a");
    const struct pq_rnode *l2 = pq_reader_node(r, 2), *arr = pq_reader_node(r, 5);
    assert_int_equal(l2->kind, PQ_RK_LIST);
    assert_int_equal(l2->list_elem, 3);          /* the repeated leaf itself */
    assert_int_equal(arr->kind, PQ_RK_LIST);
    assert_int_equal(arr->list_elem, 6);         /* the "array" group itself */
    assert_int_equal(pq_reader_node(r, 9)->kind, PQ_RK_MAP);
    assert_int_equal(pq_reader_column_node(r, 1)->rtype, PQ_RT_INT);
    assert_int_equal(pq_reader_column_node(r, 0)->rtype, PQ_RT_INT96);
    /* binary_as_string turns the unannotated column into text */
    pq_reader_free(r);
    struct pq_reader_opts o = {.binary_as_string = true};
    got = read_mem_json(f.data, f.len, &o);
    assert_non_null(got);
    assert_non_null(strstr(got, "\"raw\":\"hello\""));
    free(got);
    buf_free(&f);
}

/* ------------------------------------------------------------------ writer round trips */

/* Schema: id (int64), name (string), score (double), flag (bool), day (date), at (ts millis),
 * small (int8), person{first, last}, tags list<string>, items list<{sku, qty}>,
 * attrs map<string,string>. */
struct wschema {
    struct pq_schema *s;
    int id, name, score, flag, day, at, small, first, last, tag, sku, qty, key, value;
};

static void make_wschema(struct wschema *w)
{
    struct pq_schema *s = pq_schema_new();
    w->s = s;
    w->id = pq_schema_add_leaf(s, 0, "id", PQ_OPTIONAL, PQ_INT64, PQ_LOG_INT64);
    w->name = pq_schema_add_leaf(s, 0, "name", PQ_OPTIONAL, PQ_BYTE_ARRAY, PQ_LOG_STRING);
    w->score = pq_schema_add_leaf(s, 0, "score", PQ_OPTIONAL, PQ_DOUBLE, PQ_LOG_NONE);
    w->flag = pq_schema_add_leaf(s, 0, "flag", PQ_OPTIONAL, PQ_BOOLEAN, PQ_LOG_NONE);
    w->day = pq_schema_add_leaf(s, 0, "day", PQ_OPTIONAL, PQ_INT32, PQ_LOG_DATE);
    w->at = pq_schema_add_leaf(s, 0, "at", PQ_OPTIONAL, PQ_INT64, PQ_LOG_TIMESTAMP_MILLIS);
    w->small = pq_schema_add_leaf(s, 0, "small", PQ_OPTIONAL, PQ_INT32, PQ_LOG_INT8);
    int person = pq_schema_add_group(s, 0, "person", PQ_OPTIONAL, PQ_LOG_NONE);
    w->first = pq_schema_add_leaf(s, person, "first", PQ_OPTIONAL, PQ_BYTE_ARRAY, PQ_LOG_STRING);
    w->last = pq_schema_add_leaf(s, person, "last", PQ_OPTIONAL, PQ_BYTE_ARRAY, PQ_LOG_STRING);
    int tags = pq_schema_add_group(s, 0, "tags", PQ_OPTIONAL, PQ_LOG_LIST);
    int tl = pq_schema_add_group(s, tags, "list", PQ_REPEATED, PQ_LOG_NONE);
    w->tag = pq_schema_add_leaf(s, tl, "element", PQ_OPTIONAL, PQ_BYTE_ARRAY, PQ_LOG_STRING);
    int items = pq_schema_add_group(s, 0, "items", PQ_OPTIONAL, PQ_LOG_LIST);
    int il = pq_schema_add_group(s, items, "list", PQ_REPEATED, PQ_LOG_NONE);
    int ie = pq_schema_add_group(s, il, "element", PQ_OPTIONAL, PQ_LOG_NONE);
    w->sku = pq_schema_add_leaf(s, ie, "sku", PQ_OPTIONAL, PQ_BYTE_ARRAY, PQ_LOG_STRING);
    w->qty = pq_schema_add_leaf(s, ie, "qty", PQ_OPTIONAL, PQ_INT32, PQ_LOG_INT32);
    int attrs = pq_schema_add_group(s, 0, "attrs", PQ_OPTIONAL, PQ_LOG_MAP);
    int kv = pq_schema_add_group(s, attrs, "key_value", PQ_REPEATED, PQ_LOG_NONE);
    w->key = pq_schema_add_leaf(s, kv, "key", PQ_REQUIRED, PQ_BYTE_ARRAY, PQ_LOG_STRING);
    w->value = pq_schema_add_leaf(s, kv, "value", PQ_OPTIONAL, PQ_BYTE_ARRAY, PQ_LOG_STRING);
    pq_schema_finish(s);
}

static void wstr(struct pq_writer *w, int col, const char *s, int rep)
{
    pq_write_bytes(w, col, s, strlen(s), rep);
}

/* Row i: written to the writer and, as the JSON the reader must give, appended to `want`. */
static void write_row(struct pq_writer *pw, const struct wschema *w, int i, struct buf *want)
{
    char tmp[128];
    buf_printf(want, "{");
    if (i % 11 == 5) {
        pq_write_null(pw, w->id, 0, 0);
        buf_printf(want, "\"id\":null");
    } else {
        int64_t id = (int64_t)i * 1000000007 - 3000000000LL;
        pq_write_i64(pw, w->id, id, 0);
        buf_printf(want, "\"id\":%" PRId64, id);
    }
    snprintf(tmp, sizeof(tmp), "name-%d-%s", i, i % 4 == 0 ? "\xc3\xa9\"\\" : "x");
    wstr(pw, w->name, tmp, 0);
    buf_printf(want, ",\"name\":\"name-%d-%s\"", i, i % 4 == 0 ? "\xc3\xa9\\\"\\\\" : "x");
    if (i % 3 == 0) {
        pq_write_null(pw, w->score, 0, 0);
        buf_printf(want, ",\"score\":null");
    } else {
        pq_write_double(pw, w->score, i * 0.5 - 7, 0);
        buf_printf(want, ",\"score\":%.17g", i * 0.5 - 7);
    }
    pq_write_bool(pw, w->flag, i % 2 == 0, 0);
    buf_printf(want, ",\"flag\":%s", i % 2 == 0 ? "true" : "false");
    pq_write_i32(pw, w->day, 0, 0); /* 1970-01-01 */
    buf_printf(want, ",\"day\":\"1970-01-01\"");
    pq_write_i64(pw, w->at, (int64_t)(i % 60) * 1000 + 7, 0);
    buf_printf(want, ",\"at\":\"1970-01-01T00:00:%02d.007Z\"", i % 60);
    pq_write_i32(pw, w->small, i % 256 - 128, 0);
    buf_printf(want, ",\"small\":%d", i % 256 - 128);
    /* person: null, {first:null,last:null}... */
    int p = i % 3;
    if (p == 0) {
        pq_write_null(pw, w->first, 0, 0);
        pq_write_null(pw, w->last, 0, 0);
        buf_printf(want, ",\"person\":null");
    } else {
        snprintf(tmp, sizeof(tmp), "F%d", i);
        wstr(pw, w->first, tmp, 0);
        if (p == 1) {
            pq_write_null(pw, w->last, 1, 0);
            buf_printf(want, ",\"person\":{\"first\":\"F%d\",\"last\":null}", i);
        } else {
            snprintf(tmp, sizeof(tmp), "L%d", i);
            wstr(pw, w->last, tmp, 0);
            buf_printf(want, ",\"person\":{\"first\":\"F%d\",\"last\":\"L%d\"}", i, i);
        }
    }
    /* tags: null, [], [t0, null, t2...] */
    int k = i % 5;
    if (k == 0) {
        pq_write_null(pw, w->tag, 0, 0);
        buf_printf(want, ",\"tags\":null");
    } else if (k == 1) {
        pq_write_null(pw, w->tag, 1, 0);
        buf_printf(want, ",\"tags\":[]");
    } else {
        buf_printf(want, ",\"tags\":[");
        for (int j = 0; j < k; j++) {
            if (j == 1) {
                pq_write_null(pw, w->tag, 2, j ? 1 : 0);
                buf_printf(want, "%snull", j ? "," : "");
            } else {
                snprintf(tmp, sizeof(tmp), "t%d", j);
                wstr(pw, w->tag, tmp, j ? 1 : 0);
                buf_printf(want, "%s\"t%d\"", j ? "," : "", j);
            }
        }
        buf_printf(want, "]");
    }
    /* items: [] or [{sku, qty}, null element, {sku:null, qty}] */
    int m = i % 4;
    if (m == 0) {
        pq_write_null(pw, w->sku, 1, 0);
        pq_write_null(pw, w->qty, 1, 0);
        buf_printf(want, ",\"items\":[]");
    } else {
        buf_printf(want, ",\"items\":[");
        for (int j = 0; j < m; j++) {
            int rep = j ? 1 : 0;
            if (j == 1) {
                pq_write_null(pw, w->sku, 2, rep);
                pq_write_null(pw, w->qty, 2, rep);
                buf_printf(want, ",null");
            } else if (j == 2) {
                pq_write_null(pw, w->sku, 3, rep);
                pq_write_i32(pw, w->qty, i + j, rep);
                buf_printf(want, ",{\"sku\":null,\"qty\":%d}", i + j);
            } else {
                snprintf(tmp, sizeof(tmp), "S%d", i);
                wstr(pw, w->sku, tmp, rep);
                pq_write_i32(pw, w->qty, -i, rep);
                buf_printf(want, "{\"sku\":\"S%d\",\"qty\":%d}", i, -i);
            }
        }
        buf_printf(want, "]");
    }
    /* attrs: null or {k0: v, k1: null} */
    if (i % 6 == 0) {
        pq_write_null(pw, w->key, 0, 0);
        pq_write_null(pw, w->value, 0, 0);
        buf_printf(want, ",\"attrs\":null");
    } else {
        wstr(pw, w->key, "k0", 0);
        snprintf(tmp, sizeof(tmp), "v%d", i % 10);
        wstr(pw, w->value, tmp, 0);
        wstr(pw, w->key, "k1", 1);
        pq_write_null(pw, w->value, 2, 1);
        buf_printf(want, ",\"attrs\":{\"k0\":\"v%d\",\"k1\":null}", i % 10);
    }
    buf_printf(want, "}\n");
}

static void write_sample(const char *path, int rows, enum pq_codec codec, size_t rg_bytes,
                         struct buf *want)
{
    struct wschema w;
    make_wschema(&w);
    struct pq_writer_opts o = {.codec = codec, .row_group_bytes = rg_bytes, .page_bytes = 4096};
    struct pq_writer *pw;
    struct ing_err err;
    assert_int_equal(pq_writer_open(&pw, w.s, path, &o, &err), 0);
    for (int i = 0; i < rows; i++) {
        write_row(pw, &w, i, want);
        assert_int_equal(pq_writer_end_row(pw, &err), 0);
    }
    assert_int_equal(pq_writer_close(pw, NULL, &err), 0);
    pq_schema_free(w.s);
}

static void test_writer_roundtrip(void **state)
{
    (void)state;
    static const enum pq_codec codecs[] = {PQ_CODEC_ZSTD, PQ_CODEC_SNAPPY, PQ_CODEC_GZIP,
                                           PQ_CODEC_UNCOMPRESSED};
    for (size_t c = 0; c < ING_ARRAY_LEN(codecs); c++) {
        char path[512];
        snprintf(path, sizeof(path), "%s/rt%zu.parquet", tmpdir_path, c);
        struct buf want = {0}, got = {0};
        write_sample(path, 3000, codecs[c], 64 * 1024, &want);
        struct pq_reader *r;
        struct ing_err err;
        assert_int_equal(pq_reader_open(&r, path, NULL, &err), 0);
        assert_int_equal(pq_reader_num_rows(r), 3000);
        assert_true(pq_reader_num_row_groups(r) > 1);
        assert_string_equal(pq_reader_created_by(r), "ingot version 0.1");
        assert_int_equal(read_all(r, &got, &err), 0);
        assert_int_equal(pq_reader_row(r), 3000);
        assert_int_equal(pq_reader_next(r, &err), 0); /* stays at the end */
        assert_string_equal(buf_cstr(&got), buf_cstr(&want));
        pq_reader_free(r);
        buf_free(&want);
        buf_free(&got);
    }
}

/* ------------------------------------------------------------------ corrupt input */

static struct buf small_file(void)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/small.parquet", tmpdir_path);
    struct buf want = {0};
    write_sample(path, 40, PQ_CODEC_SNAPPY, 2048, &want);
    buf_free(&want);
    struct buf f = {0};
    int64_t size = fs_file_size(path);
    assert_true(size > 0);
    FILE *fp = fopen(path, "rb");
    assert_non_null(fp);
    assert_int_equal(buf_reserve(&f, (size_t)size), 0);
    assert_int_equal(fread(f.data, 1, (size_t)size, fp), (size_t)size);
    f.len = (size_t)size;
    fclose(fp);
    return f;
}

/* Open and read everything; returns the first error (0 when it all read). */
static int try_read(const uint8_t *p, size_t n, const struct pq_reader_opts *o,
                    struct ing_err *err)
{
    struct pq_reader *r;
    ing_err_clear(err);
    int rc = pq_reader_open_mem(&r, p, n, o, err);
    if (rc)
        return rc;
    struct buf row = {0};
    while ((rc = pq_reader_next(r, err)) == 1) {
        buf_reset(&row);
        int rr = pq_reader_row_json(r, &row, err);
        assert_true(rr == 0 || rr == ING_ESYNTAX || rr == ING_ETOOBIG);
    }
    buf_free(&row);
    pq_reader_free(r);
    return rc;
}

static void assert_clean_error(int rc, const struct ing_err *err)
{
    assert_true(rc == ING_ESYNTAX || rc == ING_ETOOBIG || rc == ING_EINVAL);
    assert_int_equal(err->code, rc);
    assert_true(err->msg[0] != 0);
}

static void test_truncated_files(void **state)
{
    (void)state;
    struct buf f = small_file();
    struct ing_err err;
    assert_int_equal(try_read(f.data, f.len, NULL, &err), 0);
    /* every prefix: a clean error, never a crash (ASan checks the reads) */
    for (size_t n = 0; n < f.len; n++) {
        uint8_t *copy = malloc(n ? n : 1);
        memcpy(copy, f.data, n);
        int rc = try_read(copy, n, NULL, &err);
        assert_clean_error(rc, &err);
        free(copy);
    }
    buf_free(&f);
}

static void test_mutated_files(void **state)
{
    (void)state;
    struct buf files[2];
    files[0] = small_file();
    files[1] = (struct buf){0};
    build_exotic(&files[1]);
    struct pq_reader_opts o = {.max_row_group_bytes = 8 << 20, .max_page_bytes = 1 << 20};
    uint32_t seed = 7;
    int errors = 0, total = 0;
    for (int k = 0; k < 2; k++) {
        struct buf *f = &files[k];
        uint8_t *copy = malloc(f->len);
        for (int iter = 0; iter < 1500; iter++) {
            memcpy(copy, f->data, f->len);
            int flips = 1 + iter % 4;
            for (int j = 0; j < flips; j++) {
                seed = seed * 1103515245u + 12345u;
                size_t at = (seed >> 8) % f->len;
                seed = seed * 1103515245u + 12345u;
                copy[at] = iter % 3 ? (uint8_t)(seed >> 16) : (uint8_t)(copy[at] ^ 0x80);
            }
            struct ing_err err;
            int rc = try_read(copy, f->len, &o, &err);
            total++;
            if (rc) {
                errors++;
                assert_clean_error(rc, &err);
            }
        }
        free(copy);
        buf_free(f);
    }
    /* mutations hit values too (those read fine), but many must be caught */
    assert_true(errors > total / 10);
}

/* A header-only file with the given footer bytes. */
static struct buf file_with_footer(const struct buf *meta)
{
    struct buf f = {0};
    uint8_t len[4];
    pq_put_le32(len, (uint32_t)meta->len);
    assert_int_equal(buf_append(&f, "PAR1", 4), 0);
    assert_int_equal(buf_append(&f, meta->data, meta->len), 0);
    assert_int_equal(buf_append(&f, len, 4), 0);
    assert_int_equal(buf_append(&f, "PAR1", 4), 0);
    return f;
}

static void schema_footer(struct buf *meta, const int *nchildren, int nels)
{
    struct pq_tw t;
    buf_reset(meta);
    pq_tw_init(&t, meta);
    pq_tw_field_i32(&t, 1, 2);
    pq_tw_field_list(&t, 2, PQ_T_STRUCT, (size_t)nels);
    for (int i = 0; i < nels; i++) {
        pq_tw_struct_begin(&t);
        if (nchildren[i] < 0)
            pq_tw_field_i32(&t, 1, 1); /* INT32 leaf */
        if (i)
            pq_tw_field_i32(&t, 3, 1);
        pq_tw_field_string(&t, 4, "f");
        if (nchildren[i] >= 0)
            pq_tw_field_i32(&t, 5, nchildren[i]);
        pq_tw_struct_end(&t);
    }
    pq_tw_field_i64(&t, 3, 0);
    pq_tw_field_list(&t, 4, PQ_T_STRUCT, 0);
    pq_tw_struct_end(&t);
    assert_int_equal(pq_tw_error(&t), 0);
}

static void test_crafted_metadata(void **state)
{
    (void)state;
    struct ing_err err;
    struct buf meta = {0}, f;
    struct pq_reader *r = NULL;

    /* a well-formed empty file opens and has no rows */
    static const int ok[] = {1, -1};
    schema_footer(&meta, ok, 2);
    f = file_with_footer(&meta);
    assert_int_equal(pq_reader_open_mem(&r, f.data, f.len, NULL, &err), 0);
    assert_int_equal(pq_reader_next(r, &err), 0);
    pq_reader_free(r);
    buf_free(&f);

    /* num_children larger than the elements that follow */
    static const int too_many[] = {3, -1};
    schema_footer(&meta, too_many, 2);
    f = file_with_footer(&meta);
    assert_int_equal(pq_reader_open_mem(&r, f.data, f.len, NULL, &err), ING_ESYNTAX);
    assert_non_null(strstr(err.msg, "claims 3 fields"));
    buf_free(&f);

    /* elements that belong to no group */
    static const int extra[] = {1, -1, -1};
    schema_footer(&meta, extra, 3);
    f = file_with_footer(&meta);
    assert_int_equal(pq_reader_open_mem(&r, f.data, f.len, NULL, &err), ING_ESYNTAX);
    assert_non_null(strstr(err.msg, "belong to no group"));
    buf_free(&f);

    /* a group with no fields */
    static const int empty_group[] = {2, 0, -1};
    schema_footer(&meta, empty_group, 3);
    f = file_with_footer(&meta);
    assert_int_equal(pq_reader_open_mem(&r, f.data, f.len, NULL, &err), ING_ESYNTAX);
    buf_free(&f);

    /* nesting deeper than the limit */
    int deep[12];
    for (int i = 0; i < 11; i++)
        deep[i] = 1;
    deep[11] = -1;
    schema_footer(&meta, deep, 12);
    f = file_with_footer(&meta);
    struct pq_reader_opts o = {.max_depth = 8};
    assert_int_equal(pq_reader_open_mem(&r, f.data, f.len, &o, &err), ING_ETOOBIG);
    o.max_depth = 0;
    assert_int_equal(pq_reader_open_mem(&r, f.data, f.len, &o, &err), 0);
    pq_reader_free(r);
    buf_free(&f);

    /* footer length past the start of the file; bad magic; encrypted footer */
    schema_footer(&meta, ok, 2);
    f = file_with_footer(&meta);
    pq_put_le32(f.data + f.len - 8, (uint32_t)f.len);
    assert_int_equal(pq_reader_open_mem(&r, f.data, f.len, NULL, &err), ING_ESYNTAX);
    assert_int_equal(err.offset, (int64_t)f.len - 8);
    pq_put_le32(f.data + f.len - 8, (uint32_t)meta.len);
    memcpy(f.data + f.len - 4, "PARE", 4);
    assert_int_equal(pq_reader_open_mem(&r, f.data, f.len, NULL, &err), ING_EINVAL);
    memcpy(f.data + f.len - 4, "PAR2", 4);
    assert_int_equal(pq_reader_open_mem(&r, f.data, f.len, NULL, &err), ING_ESYNTAX);
    /* footer over the cap */
    memcpy(f.data + f.len - 4, "PAR1", 4);
    o = (struct pq_reader_opts){.max_footer_bytes = 4};
    assert_int_equal(pq_reader_open_mem(&r, f.data, f.len, &o, &err), ING_ETOOBIG);
    buf_free(&f);
    buf_free(&meta);

    /* not a file / missing file */
    assert_int_equal(pq_reader_open(&r, "/nonexistent/x.parquet", NULL, &err), ING_EIO);
}

/* One INT32 column whose page declares `nvals` levels in a few RLE bytes. */
static void rle_bomb(struct buf *out, int32_t nvals, int32_t rows)
{
    static const struct tb_elem els[] = {
        {"schema", -1, 0, 0, 1, -1, 0, 0, 0, 0, 0},
        {"x", T_I32, 0, 1, 0, -1, 0, 0, 0, 0, 0},
    };
    struct tbuilder tb;
    tb_begin(&tb);
    struct buf body = {0}, chunk = {0};
    /* definition levels: one RLE run of nvals zeros (all null) */
    uint8_t lv[16];
    size_t n = 0;
    uint64_t h = (uint64_t)nvals << 1;
    while (h >= 0x80) {
        lv[4 + n++] = (uint8_t)(h | 0x80);
        h >>= 7;
    }
    lv[4 + n++] = (uint8_t)h;
    lv[4 + n++] = 0;
    pq_put_le32(lv, (uint32_t)n);
    assert_int_equal(buf_append(&body, lv, 4 + n), 0);
    tb_page(&chunk, 0, nvals, 0, &body, 0, 0, 3);
    tb_chunk(&tb, T_I32, "x", nvals, &chunk, 0);
    tb_finish(&tb, els, 2, rows);
    *out = tb.file;
    buf_free(&body);
    buf_free(&chunk);
}

static void test_hostile_sizes(void **state)
{
    (void)state;
    struct ing_err err;
    struct buf f;
    /* 2^31-1 nulls from 6 bytes: refused by the memory cap, with the column and row group */
    rle_bomb(&f, INT32_MAX, INT32_MAX);
    struct pq_reader_opts o = {.max_row_group_bytes = 16 << 20};
    assert_int_equal(try_read(f.data, f.len, &o, &err), ING_ETOOBIG);
    assert_string_equal(err.field, "x");
    assert_non_null(strstr(err.msg, "row group 0"));
    buf_free(&f);
    /* a small honest one reads */
    rle_bomb(&f, 1000, 1000);
    char *got = read_mem_json(f.data, f.len, NULL);
    assert_non_null(got);
    assert_int_equal(strlen(got), 1000 * strlen("{\"x\":null}\n"));
    free(got);
    /* the same page under a page cap smaller than itself */
    o = (struct pq_reader_opts){.max_page_bytes = 4};
    assert_int_equal(try_read(f.data, f.len, &o, &err), ING_ETOOBIG);
    /* row count that disagrees with the levels */
    buf_free(&f);
    rle_bomb(&f, 1000, 999);
    assert_int_equal(try_read(f.data, f.len, NULL, &err), ING_ESYNTAX);
    assert_non_null(strstr(err.msg, "rows"));
    buf_free(&f);
}

/* Data page v1 of dictionary indices (bit width 2) with repetition and definition levels. */
static void dict_indices_page(struct buf *chunk, const uint32_t *rep, const uint32_t *def,
                             size_t n, const uint32_t *idx, size_t nidx)
{
    struct buf body = {0}, vals = {0};
    uint8_t bw = 2;
    assert_int_equal(buf_append(&vals, &bw, 1), 0);
    assert_int_equal(pq_rle_encode(&vals, idx, nidx, bw), 0);
    v1_body(&body, rep, 1, def, 1, n, vals.data, vals.len);
    tb_page(chunk, 0, (int32_t)n, 8, &body, 0, 0, 3);
    buf_free(&body);
    buf_free(&vals);
}

static void test_rows_span_pages(void **state)
{
    (void)state;
    /* A repeated, dictionary-encoded column whose first row continues over three pages, next to
     * a required column of one value per page: rows are read page by page and still whole. */
    static const struct tb_elem els[] = {
        {"schema", -1, 0, 0, 2, -1, 0, 0, 0, 0, 0},
        {"tags", T_BA, 0, 2, 0, 0, 0, 0, 0, 0, 0},
        {"n", T_I32, 0, 0, 0, -1, 0, 0, 0, 0, 0},
    };
    struct tbuilder tb;
    tb_begin(&tb);
    struct buf chunk = {0}, body = {0};
    static const char *const dict[] = {"a", "b", "c", "d"};
    plain_strings(&body, dict, 4);
    tb_page(&chunk, 2, 4, 0, &body, 0, 0, 3);
    size_t dict_bytes = chunk.len;
    /* rows: [a,b,c,d], [], [b,c] as pages [a,b] [c] [d, (empty row)] [b,c] */
    static const uint32_t rep1[] = {0, 1}, def1[] = {1, 1}, idx1[] = {0, 1};
    static const uint32_t rep2[] = {1}, def2[] = {1}, idx2[] = {2};
    static const uint32_t rep3[] = {1, 0}, def3[] = {1, 0}, idx3[] = {3};
    static const uint32_t rep4[] = {0, 1}, def4[] = {1, 1}, idx4[] = {1, 2};
    dict_indices_page(&chunk, rep1, def1, 2, idx1, 2);
    dict_indices_page(&chunk, rep2, def2, 1, idx2, 1);
    dict_indices_page(&chunk, rep3, def3, 2, idx3, 1);
    dict_indices_page(&chunk, rep4, def4, 2, idx4, 2);
    tb_chunk(&tb, T_BA, "tags", 7, &chunk, dict_bytes);
    buf_reset(&chunk);
    for (int32_t i = 0; i < 3; i++) {
        uint8_t v[4];
        pq_put_le32(v, (uint32_t)(10 + i));
        v1_body(&body, NULL, 0, NULL, 0, 1, v, 4);
        tb_page(&chunk, 0, 1, 0, &body, 0, 0, 3);
    }
    tb_chunk(&tb, T_I32, "n", 3, &chunk, 0);
    tb_finish(&tb, els, 3, 3);
    char *got = read_mem_json(tb.file.data, tb.file.len, NULL);
    assert_non_null(got);
    assert_string_equal(got, "{\"tags\":[\"a\",\"b\",\"c\",\"d\"],\"n\":10}\n"
                             "{\"tags\":[],\"n\":11}\n"
                             "{\"tags\":[\"b\",\"c\"],\"n\":12}\n");
    free(got);
    buf_free(&tb.file);

    /* the same pages declaring one row more than they hold: a clean error naming rows */
    tb_begin(&tb);
    buf_reset(&chunk);
    for (int32_t i = 0; i < 3; i++) {
        uint8_t v[4];
        pq_put_le32(v, (uint32_t)i);
        v1_body(&body, NULL, 0, NULL, 0, 1, v, 4);
        tb_page(&chunk, 0, 1, 0, &body, 0, 0, 3);
    }
    tb_chunk(&tb, T_I32, "n", 3, &chunk, 0);
    static const struct tb_elem flat[] = {
        {"schema", -1, 0, 0, 1, -1, 0, 0, 0, 0, 0},
        {"n", T_I32, 0, 0, 0, -1, 0, 0, 0, 0, 0},
    };
    tb_finish(&tb, flat, 2, 4);
    struct ing_err err;
    assert_int_equal(try_read(tb.file.data, tb.file.len, NULL, &err), ING_ESYNTAX);
    assert_non_null(strstr(err.msg, "fewer rows"));
    assert_string_equal(err.field, "n");
    buf_free(&tb.file);
    buf_free(&chunk);
    buf_free(&body);
}

static void test_memory_is_one_page(void **state)
{
    (void)state;
    /* 400 pages of 1000 INT64 values (6.4 MB read and decoded) under a 1 MiB memory cap: only
     * the current page is held, so the whole row group reads. */
    enum { PAGES = 400, PER_PAGE = 1000 };
    static const struct tb_elem els[] = {
        {"schema", -1, 0, 0, 1, -1, 0, 0, 0, 0, 0},
        {"v", T_I64, 0, 0, 0, -1, 0, 0, 0, 0, 0},
    };
    struct tbuilder tb;
    tb_begin(&tb);
    struct buf chunk = {0}, body = {0};
    uint8_t *vals = malloc(PER_PAGE * 8);
    for (int p = 0; p < PAGES; p++) {
        for (int i = 0; i < PER_PAGE; i++)
            pq_put_le64(vals + 8 * i, (uint64_t)p * PER_PAGE + (uint64_t)i);
        v1_body(&body, NULL, 0, NULL, 0, PER_PAGE, vals, PER_PAGE * 8);
        tb_page(&chunk, 0, PER_PAGE, 0, &body, 0, 0, 3);
    }
    free(vals);
    tb_chunk(&tb, T_I64, "v", PAGES * PER_PAGE, &chunk, 0);
    tb_finish(&tb, els, 2, PAGES * PER_PAGE);
    struct pq_reader_opts o = {.max_row_group_bytes = 1 << 20};
    struct pq_reader *r;
    struct ing_err err;
    assert_int_equal(pq_reader_open_mem(&r, tb.file.data, tb.file.len, &o, &err), 0);
    struct buf row = {0};
    int64_t n = 0;
    int rc;
    while ((rc = pq_reader_next(r, &err)) == 1) {
        buf_reset(&row);
        assert_int_equal(pq_reader_row_json(r, &row, &err), 0);
        char want[40];
        snprintf(want, sizeof(want), "{\"v\":%" PRId64 "}", n);
        assert_string_equal(buf_cstr(&row), want);
        n++;
    }
    assert_int_equal(rc, 0);
    assert_int_equal(n, PAGES * PER_PAGE);
    pq_reader_free(r);
    /* a cap below one page still refuses it */
    o.max_row_group_bytes = 4096;
    assert_int_equal(try_read(tb.file.data, tb.file.len, &o, &err), ING_ETOOBIG);
    assert_string_equal(err.field, "v");
    buf_free(&row);
    buf_free(&chunk);
    buf_free(&body);
    buf_free(&tb.file);
}

static void test_row_errors_do_not_stick(void **state)
{
    (void)state;
    /* a STRING column holding invalid UTF-8 in row 2 of 3: that row fails, the others read */
    static const struct tb_elem els[] = {
        {"schema", -1, 0, 0, 1, -1, 0, 0, 0, 0, 0},
        {"s", T_BA, 0, 0, 0, 0, 0, 0, 0, 0, 0},
    };
    struct tbuilder tb;
    tb_begin(&tb);
    static const uint8_t vals[] = {1, 0, 0, 0, 'a', 2, 0, 0, 0, 0xC3, 0x28, 1, 0, 0, 0, 'c'};
    simple_col(&tb, T_BA, "s", NULL, 0, NULL, 0, 3, vals, sizeof(vals), 0);
    tb_finish(&tb, els, 2, 3);
    struct pq_reader *r;
    struct ing_err err;
    assert_int_equal(pq_reader_open_mem(&r, tb.file.data, tb.file.len, NULL, &err), 0);
    struct buf row = {0};
    assert_int_equal(pq_reader_next(r, &err), 1);
    assert_int_equal(pq_reader_row_json(r, &row, &err), 0);
    assert_int_equal(pq_reader_next(r, &err), 1);
    buf_reset(&row);
    assert_int_equal(pq_reader_row_json(r, &row, &err), ING_ESYNTAX);
    assert_int_equal(err.row, 2);
    assert_string_equal(err.field, "s");
    assert_int_equal(pq_reader_next(r, &err), 1);
    buf_reset(&row);
    assert_int_equal(pq_reader_row_json(r, &row, &err), 0);
    assert_string_equal(buf_cstr(&row), "{\"s\":\"c\"}");
    /* the same row twice gives the same text */
    buf_reset(&row);
    assert_int_equal(pq_reader_row_json(r, &row, &err), 0);
    assert_string_equal(buf_cstr(&row), "{\"s\":\"c\"}");
    assert_int_equal(pq_reader_next(r, &err), 0);
    assert_int_equal(pq_reader_row_json(r, &row, &err), ING_ESTATE);
    buf_free(&row);
    pq_reader_free(r);
    buf_free(&tb.file);
}


/* ------------------------------------------------------------------ typed path (pq_shred) */

struct paths {
    int rows;
    int taken;         /* rows the typed path took whole */
    int json_ok;       /* rows the JSON path accepts */
    int64_t unknown;   /* unknown fields counted (the same on both sides, checked) */
    char first_field[ING_ERR_PATH]; /* the JSON path's first bad field ("" when none) */
};

static struct xdm_plan *plan_of(const char *schema)
{
    json_error_t je;
    json_t *js = json_loads(schema, 0, &je);
    assert_non_null(js);
    struct xdm_plan *plan = NULL;
    struct ing_err err;
    assert_int_equal(xdm_plan_compile(js, NULL, &plan, &err), 0);
    json_decref(js);
    return plan;
}

static char *slurp_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    struct buf b = {0};
    char tmp[65536];
    size_t got;
    while ((got = fread(tmp, 1, sizeof(tmp), f)) > 0)
        assert_int_equal(buf_append(&b, tmp, got), 0);
    fclose(f);
    *len = b.len;
    return (char *)b.data;
}

/*
 * Every row of the file through two pipelines into two part files: the JSON path alone
 * (render, shred_record), and the engine's way (pq_shred_row, and the JSON path for the rows it
 * hands back). The part files must be the same bytes, a row the typed path takes must be one
 * the JSON path accepts, and both must count the same unknown fields.
 */
static void both_paths(const uint8_t *data, size_t len, const char *schema,
                       const struct pq_reader_opts *ro, struct paths *out)
{
    memset(out, 0, sizeof(*out));
    struct xdm_plan *plan = plan_of(schema);
    struct pq_reader *rt, *rj;
    struct ing_err err;
    ing_err_clear(&err);
    assert_int_equal(pq_reader_open_mem(&rt, data, len, ro, &err), 0);
    assert_int_equal(pq_reader_open_mem(&rj, data, len, ro, &err), 0);
    struct shred *sht = shred_new(plan), *shj = shred_new(plan);
    struct pq_shred *ps = pq_shred_new(rt, sht, plan, 0);
    char pt[512], pj[512];
    snprintf(pt, sizeof(pt), "%s/typed.parquet", tmpdir_path);
    snprintf(pj, sizeof(pj), "%s/json.parquet", tmpdir_path);
    struct pq_writer_opts wo = {.codec = PQ_CODEC_UNCOMPRESSED};
    struct pq_writer *wt, *wj;
    assert_int_equal(pq_writer_open(&wt, plan->pq, pt, &wo, &err), 0);
    assert_int_equal(pq_writer_open(&wj, plan->pq, pj, &wo, &err), 0);
    struct buf row = {0};
    for (;;) {
        int gt = pq_reader_next(rt, &err), gj = pq_reader_next(rj, &err);
        assert_int_equal(gt, gj);
        assert_true(gt >= 0);
        if (gt == 0)
            break;
        out->rows++;
        /* the JSON path alone */
        struct ing_err ej;
        ing_err_clear(&ej);
        buf_reset(&row);
        bool ok_j = pq_reader_row_json(rj, &row, &ej) == 0 &&
                    shred_record(shj, (const char *)row.data, row.len, wj, NULL, &ej) == 0;
        if (!ok_j && !out->first_field[0])
            snprintf(out->first_field, sizeof(out->first_field), "%s", ej.field[0] ? ej.field : "-");
        out->json_ok += ok_j;
        /* the engine's way */
        if (pq_shred_row(ps) == 0) {
            out->taken++;
            assert_true(ok_j); /* never takes a row the JSON path refuses */
            assert_int_equal(shred_end(sht, wt, &err), 0);
            continue;
        }
        struct ing_err et;
        ing_err_clear(&et);
        buf_reset(&row);
        bool ok_t = pq_reader_row_json(rt, &row, &et) == 0 &&
                    shred_record(sht, (const char *)row.data, row.len, wt, NULL, &et) == 0;
        assert_int_equal(ok_t, ok_j);
        assert_int_equal(et.code, ej.code);
        assert_string_equal(et.field, ej.field);
    }
    int64_t taken, back;
    pq_shred_counts(ps, &taken, &back);
    assert_int_equal(taken, out->taken);
    assert_int_equal(taken + back, out->rows);
    out->unknown = shred_get_stats(shj)->unknown_fields;
    assert_int_equal(shred_get_stats(sht)->unknown_fields, out->unknown);
    assert_int_equal(pq_writer_close(wt, NULL, &err), 0);
    assert_int_equal(pq_writer_close(wj, NULL, &err), 0);
    size_t nt, nj;
    char *ft = slurp_file(pt, &nt), *fj = slurp_file(pj, &nj);
    assert_int_equal(nt, nj);
    assert_memory_equal(ft, fj, nt); /* the same values and levels, byte for byte */
    free(ft);
    free(fj);
    buf_free(&row);
    pq_shred_free(ps);
    shred_free(sht);
    shred_free(shj);
    pq_reader_free(rt);
    pq_reader_free(rj);
    xdm_plan_free(plan);
}

#define XS(t) "{\"type\":\"string\"" t "}"
#define XT(t) "{\"type\":\"" t "\",\"meta:xdmType\":\"" t "\"}"
#define SCHEMA(props) \
    "{\"$id\":\"https://ns.adobe.com/t/schemas/typed\",\"meta:class\":\"c\",\"type\":\"object\"," \
    "\"properties\":{" props "}}"

/* The exotic file: every physical and logical type the reader knows, into strings. */
static void test_typed_exotic_as_text(void **state)
{
    (void)state;
    struct buf f = {0};
    build_exotic(&f);
    /* iv (INTERVAL, an object) and flag (a boolean) are not in this plan: unknown fields */
    static const char *schema = SCHEMA(
        "\"ts96\":" XS("") ",\"l2\":{\"type\":\"array\",\"items\":" XS("") "},"
        "\"tags\":{\"type\":\"array\",\"items\":" XS("") "},"
        "\"arr\":{\"type\":\"array\",\"items\":{\"type\":\"object\",\"properties\":{"
        "  \"a\":" XS("") ",\"b\":" XS("") "}}},"
        "\"m\":{\"type\":\"object\",\"meta:xdmType\":\"map\",\"additionalProperties\":" XS("") "},"
        "\"dict_s\":" XS("") ",\"dba\":" XS("") ",\"dfix\":" XS("") ",\"uuid\":" XS("")
        ",\"f16\":" XS("") ",\"u64\":" XS("") ",\"tsn\":" XS("") ","
        "\"misc\":{\"type\":\"object\",\"properties\":{\"u32\":" XS("") ",\"tmi\":" XS("")
        ",\"en\":" XS("") ",\"js\":" XS("") ",\"raw\":" XS("") ",\"dt\":" XS("") ",\"bss\":"
        XS("") ",\"dbp\":" XS("") "}}");
    struct paths p;
    both_paths(f.data, f.len, schema, NULL, &p);
    assert_int_equal(p.rows, 3);
    assert_int_equal(p.json_ok, 3);
    assert_int_equal(p.taken, 3);    /* no row needed the JSON text */
    assert_int_equal(p.unknown, 6);  /* iv and flag in each of the 3 rows */
    struct pq_reader_opts o = {.binary_as_string = true};
    both_paths(f.data, f.len, schema, &o, &p);
    assert_int_equal(p.taken, 3);
    buf_free(&f);
}

/* The exotic file into the natural XDM types; the interval goes into an object, which the typed
 * path leaves to the JSON rules, and 64-bit unsigned values past XDM's long range fail. */
static void test_typed_exotic_natural(void **state)
{
    (void)state;
    struct buf f = {0};
    build_exotic(&f);
    static const char *natural = SCHEMA(
        "\"ts96\":" XT("date-time") ",\"l2\":{\"type\":\"array\",\"items\":" XT("int") "},"
        "\"tags\":{\"type\":\"array\",\"items\":" XS("") "},"
        "\"arr\":{\"type\":\"array\",\"items\":{\"type\":\"object\",\"properties\":{"
        "  \"a\":" XT("short") ",\"b\":" XS("") "}}},"
        "\"m\":{\"type\":\"object\",\"meta:xdmType\":\"map\",\"additionalProperties\":" XT("long")
        "},\"dict_s\":" XS("") ",\"flag\":" XT("boolean") ",\"dfix\":" XT("number")
        ",\"f16\":" XT("number") ",\"tsn\":" XT("date-time") ","
        "\"misc\":{\"type\":\"object\",\"properties\":{\"u32\":" XT("long") ",\"dt\":" XT("date")
        ",\"bss\":" XT("number") ",\"dbp\":" XT("int") ",\"en\":" XS("") "}}");
    struct paths p;
    both_paths(f.data, f.len, natural, NULL, &p);
    assert_int_equal(p.json_ok, 3);
    assert_int_equal(p.taken, 3);
    assert_int_equal(p.unknown, 3 * 7); /* dba, uuid, iv, u64, misc.tmi, misc.js, misc.raw */

    /* An INTERVAL renders as an object: into an XDM object the JSON rules take it, so every
     * row goes that way (and lands the same). */
    both_paths(f.data, f.len, SCHEMA("\"iv\":{\"type\":\"object\",\"properties\":{"
                                     "\"months\":" XT("long") ",\"days\":" XT("long")
                                     ",\"millis\":" XT("long") "}}"), NULL, &p);
    assert_int_equal(p.json_ok, 3);
    assert_int_equal(p.taken, 0);
    /* UINT64 past 2^53 - 1 does not fit an XDM long: rows 1 and 3 fail, row 2 (1) lands. */
    both_paths(f.data, f.len, SCHEMA("\"u64\":" XT("long")), NULL, &p);
    assert_int_equal(p.json_ok, 1);
    assert_int_equal(p.taken, 1);
    assert_string_equal(p.first_field, "u64");
    /* A boolean converts to nothing else; a double with a fraction is no integer. */
    both_paths(f.data, f.len, SCHEMA("\"flag\":" XT("int") ",\"misc\":{\"type\":\"object\","
                                     "\"properties\":{\"bss\":" XT("long") "}}"), NULL, &p);
    assert_int_equal(p.json_ok, 0);  /* flag true, null (bss -0.25), false */
    assert_int_equal(p.taken, 0);
    assert_string_equal(p.first_field, "flag");
    buf_free(&f);
}

/* The writer's sample (nulls at every level: fields, groups, lists, list elements, fields of
 * elements, maps, map values; several row groups and pages) into a schema that takes every
 * column, with constraints some rows break, and XDM fields the file does not have. */
static const char *SAMPLE_NATURAL = SCHEMA(
    "\"id\":" XT("long") ",\"name\":{\"type\":\"string\",\"maxLength\":10},"
    "\"score\":{\"type\":\"number\",\"maximum\":900},\"flag\":" XT("boolean")
    ",\"day\":" XT("date") ",\"at\":" XT("date-time") ",\"small\":" XT("byte") ","
    "\"person\":{\"type\":\"object\",\"properties\":{\"first\":" XS("") ",\"last\":" XS("") "}},"
    "\"tags\":{\"type\":\"array\",\"items\":" XS("") "},"
    "\"items\":{\"type\":\"array\",\"items\":{\"type\":\"object\",\"required\":[\"sku\"],"
    "  \"properties\":{\"sku\":" XS("") ",\"qty\":{\"type\":\"integer\",\"meta:xdmType\":\"int\","
    "  \"minimum\":-1500}}}},"
    "\"attrs\":{\"type\":\"object\",\"meta:xdmType\":\"map\",\"additionalProperties\":" XS("") "},"
    "\"missing\":" XS("") ",\"grp\":{\"type\":\"object\",\"properties\":{\"x\":" XT("long") "}}");

static void sample_bytes(int rows, struct buf *file)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/sample.parquet", tmpdir_path);
    struct buf want = {0};
    write_sample(path, rows, PQ_CODEC_SNAPPY, 16384, &want);
    buf_free(&want);
    size_t n;
    char *data = slurp_file(path, &n);
    buf_reset(file);
    assert_int_equal(buf_append(file, data, n), 0);
    free(data);
}

static void test_typed_sample_natural(void **state)
{
    (void)state;
    struct buf f = {0};
    sample_bytes(1500, &f);
    struct paths p;
    both_paths(f.data, f.len, SAMPLE_NATURAL, NULL, &p);
    assert_int_equal(p.rows, 1500);
    /* Bad rows: names past 10 characters (from row 1000 on; "name-%d-x"), an item without sku
     * (rows with i % 4 == 3), a score above 900 never (max 742.5), qty below -1500 (i > 1500
     * never). The typed path must take exactly the good rows. */
    int good = 0;
    for (int i = 0; i < 1500; i++) {
        char name[64];
        snprintf(name, sizeof(name), "name-%d-%s", i, i % 4 == 0 ? "\xc3\xa9\"\\" : "x");
        size_t chars = strlen(name) - (i % 4 == 0); /* the two bytes of é are one character */
        good += chars <= 10 && i % 4 != 3;
    }
    assert_int_equal(p.json_ok, good);
    assert_int_equal(p.taken, good);
    assert_true(good > 100 && good < 1500);
    assert_int_equal(p.unknown, 0);
    buf_free(&f);
}

/* The same file as text: integers, doubles, dates and timestamps into strings; booleans convert
 * to no string, so `flag` stays boolean. */
static void test_typed_sample_as_text(void **state)
{
    (void)state;
    struct buf f = {0};
    sample_bytes(600, &f);
    static const char *schema = SCHEMA(
        "\"id\":" XS("") ",\"name\":" XS("") ",\"score\":" XS("") ",\"flag\":" XT("boolean")
        ",\"day\":" XS("") ",\"at\":" XS("") ",\"small\":" XS("") ","
        "\"items\":{\"type\":\"array\",\"items\":{\"type\":\"object\",\"properties\":{"
        "  \"qty\":" XS("") "}}}");
    struct paths p;
    both_paths(f.data, f.len, schema, NULL, &p);
    assert_int_equal(p.json_ok, 600);
    assert_int_equal(p.taken, 600);
    /* person, tags, attrs at the root and every sku of a non-null element: dropped, counted */
    int64_t skus = 0;
    for (int i = 0; i < 600; i++)
        skus += i % 4 == 0 ? 0 : i % 4 == 3 ? 2 : 1; /* element 1 is null; 2 has "sku":null */
    assert_int_equal(p.unknown, 600 * 3 + skus);
    buf_free(&f);
}

/* Shapes the typed path leaves to the JSON rules, and errors it meets first. */
static void test_typed_sample_shapes(void **state)
{
    (void)state;
    struct buf f = {0};
    sample_bytes(240, &f);
    struct paths p;
    /* a group into a map (its fields become keys) and a map into an object: the JSON way */
    both_paths(f.data, f.len, SCHEMA(
        "\"person\":{\"type\":\"object\",\"meta:xdmType\":\"map\",\"additionalProperties\":" XS("")
        "},\"attrs\":{\"type\":\"object\",\"properties\":{\"k0\":" XS("") ",\"k1\":" XS("") "}}"),
        NULL, &p);
    assert_int_equal(p.json_ok, 240);
    /* rows with a null person (i % 3 == 0) and a null attrs (i % 6 == 0) need neither */
    assert_int_equal(p.taken, 40);
    /* a list into a string: a conversion error wherever the list is not null */
    both_paths(f.data, f.len, SCHEMA("\"tags\":" XS("")), NULL, &p);
    assert_int_equal(p.json_ok, 240 / 5);
    assert_int_equal(p.taken, 240 / 5);
    assert_string_equal(p.first_field, "tags");
    /* a required field the file does not have: every row fails */
    both_paths(f.data, f.len,
               "{\"$id\":\"x\",\"meta:class\":\"c\",\"type\":\"object\",\"required\":[\"must\"],"
               "\"properties\":{\"must\":" XS("") ",\"id\":" XT("long") "}}", NULL, &p);
    assert_int_equal(p.json_ok, 0);
    assert_int_equal(p.taken, 0);
    assert_string_equal(p.first_field, "must");
    /* a required field the file has, null in some rows (id: i % 11 == 5) */
    both_paths(f.data, f.len,
               "{\"$id\":\"x\",\"meta:class\":\"c\",\"type\":\"object\",\"required\":[\"id\"],"
               "\"properties\":{\"id\":" XT("long") "}}", NULL, &p);
    int nulls = 0;
    for (int i = 0; i < 240; i++)
        nulls += i % 11 == 5;
    assert_int_equal(p.json_ok, 240 - nulls);
    assert_int_equal(p.taken, 240 - nulls);
    assert_string_equal(p.first_field, "id");
    /* fields whose plan node has no columns (an object without properties): dropped */
    both_paths(f.data, f.len, SCHEMA("\"person\":{\"type\":\"object\"},\"id\":" XT("long")), NULL,
               &p);
    assert_int_equal(p.taken, 240);
    assert_int_equal(p.unknown, 240 - 80 + 240 * 9); /* person when not null; 9 others */
    buf_free(&f);
}

/* Dates and timestamps (millis, micros) around the edges of what the rendering writes as
 * four-digit years, into date, date-time and string fields. */
static void test_typed_dates(void **state)
{
    (void)state;
    static const int32_t days[] = {0, -1, 19000, -719528, -719529, 2932896, 2932897, 11016,
                                   -25508, INT32_MIN, INT32_MAX, 59, 60, -141428};
    static const int64_t ms[] = {0, -1, 1, INT64_C(-62167219200000), INT64_C(-62167219200001),
                                 INT64_C(253402300799999), INT64_C(253402300800000),
                                 INT64_C(951782400123), INT64_MIN, INT64_MAX, -86400000,
                                 INT64_C(1700000000123), -999, 86399999};
    size_t n = ING_ARRAY_LEN(days);
    struct pq_schema *s = pq_schema_new();
    int cd = pq_schema_add_leaf(s, 0, "d", PQ_OPTIONAL, PQ_INT32, PQ_LOG_DATE);
    int cms = pq_schema_add_leaf(s, 0, "ms", PQ_OPTIONAL, PQ_INT64, PQ_LOG_TIMESTAMP_MILLIS);
    int cus = pq_schema_add_leaf(s, 0, "us", PQ_OPTIONAL, PQ_INT64, PQ_LOG_TIMESTAMP_MICROS);
    int cd2 = pq_schema_add_leaf(s, 0, "d2", PQ_OPTIONAL, PQ_INT32, PQ_LOG_DATE);
    int cus2 = pq_schema_add_leaf(s, 0, "us2", PQ_OPTIONAL, PQ_INT64, PQ_LOG_TIMESTAMP_MICROS);
    pq_schema_finish(s);
    char path[512];
    snprintf(path, sizeof(path), "%s/dates.parquet", tmpdir_path);
    struct pq_writer *w;
    struct ing_err err;
    assert_int_equal(pq_writer_open(&w, s, path, NULL, &err), 0);
    for (size_t i = 0; i < n; i++) {
        pq_write_i32(w, cd, days[i], 0);
        pq_write_i64(w, cms, ms[i], 0);
        bool fits = ms[i] > -INT64_C(9000000000000000) && ms[i] < INT64_C(9000000000000000);
        pq_write_i64(w, cus, fits ? ms[i] * 1000 + (int64_t)i * 1001 : ms[i], 0);
        pq_write_i32(w, cd2, days[i], 0);
        pq_write_i64(w, cus2, ms[n - 1 - i] == INT64_MIN ? 5 : ms[n - 1 - i] / 7, 0);
        assert_int_equal(pq_writer_end_row(w, &err), 0);
    }
    assert_int_equal(pq_writer_close(w, NULL, &err), 0);
    pq_schema_free(s);
    size_t len;
    char *data = slurp_file(path, &len);
    struct paths p;
    /* one column at a time, so a bad value elsewhere does not hide a good one */
    static const char *const schemas[] = {
        SCHEMA("\"d\":" XT("date-time")), SCHEMA("\"d\":" XT("date")), SCHEMA("\"d\":" XS("")),
        SCHEMA("\"ms\":" XT("date-time")), SCHEMA("\"ms\":" XT("date")), SCHEMA("\"ms\":" XS("")),
        SCHEMA("\"us\":" XT("date-time")), SCHEMA("\"us\":" XS("")),
        SCHEMA("\"us2\":" XT("date-time")), SCHEMA("\"d2\":" XT("long")),
    };
    int in_range_days = 0, in_range_ms = 0;
    for (size_t i = 0; i < n; i++) {
        in_range_days += days[i] >= -719528 && days[i] <= 2932896;
        in_range_ms += ms[i] >= INT64_C(-62167219200000) && ms[i] <= INT64_C(253402300799999);
    }
    for (size_t k = 0; k < ING_ARRAY_LEN(schemas); k++) {
        both_paths((const uint8_t *)data, len, schemas[k], NULL, &p);
        assert_int_equal(p.rows, (int)n);
        if (k == 2 || k == 5 || k == 7) {
            assert_int_equal(p.json_ok, (int)n); /* any text is a string */
            assert_int_equal(p.taken, (int)n);
        } else if (k < 2) {
            assert_int_equal(p.json_ok, in_range_days); /* other years do not parse back */
            assert_int_equal(p.taken, in_range_days);
        } else if (k < 5) {
            assert_int_equal(p.json_ok, in_range_ms);
            assert_int_equal(p.taken, in_range_ms);
        } else if (k == 9) {
            assert_int_equal(p.json_ok, 0); /* a date is text: no long */
        } else {
            assert_true(p.json_ok > 0);
            assert_int_equal(p.taken, p.json_ok);
        }
    }
    free(data);
}

/* Parts the typed path does not walk still decide whether the row renders: text that is not
 * UTF-8 in a column the plan lacks makes the row corrupt on both paths. And a row whose text
 * might pass the JSON path's cap is left to that path. */
static void test_typed_dropped_parts(void **state)
{
    (void)state;
    struct pq_schema *s = pq_schema_new();
    int keep = pq_schema_add_leaf(s, 0, "keep", PQ_OPTIONAL, PQ_BYTE_ARRAY, PQ_LOG_STRING);
    int g = pq_schema_add_group(s, 0, "junk", PQ_OPTIONAL, PQ_LOG_NONE);
    int junk = pq_schema_add_leaf(s, g, "text", PQ_OPTIONAL, PQ_BYTE_ARRAY, PQ_LOG_STRING);
    pq_schema_finish(s);
    char path[512];
    snprintf(path, sizeof(path), "%s/dropped.parquet", tmpdir_path);
    struct pq_writer *w;
    struct ing_err err;
    assert_int_equal(pq_writer_open(&w, s, path, NULL, &err), 0);
    char big[300];
    memset(big, 'b', sizeof(big));
    for (int i = 0; i < 50; i++) {
        pq_write_bytes(w, keep, big, i % 10 == 0 ? sizeof(big) : 5, 0);
        if (i % 7 == 3)
            pq_write_bytes(w, junk, "bad \xff", 5, 0); /* not UTF-8 */
        else if (i % 7 == 4)
            pq_write_null(w, junk, 0, 0);
        else
            pq_write_bytes(w, junk, "fine", 4, 0);
        assert_int_equal(pq_writer_end_row(w, &err), 0);
    }
    assert_int_equal(pq_writer_close(w, NULL, &err), 0);
    pq_schema_free(s);
    size_t len;
    char *data = slurp_file(path, &len);
    struct paths p;
    both_paths((const uint8_t *)data, len, SCHEMA("\"keep\":" XS("")), NULL, &p);
    int bad = 0;
    for (int i = 0; i < 50; i++)
        bad += i % 7 == 3;
    assert_int_equal(p.json_ok, 50 - bad);
    assert_int_equal(p.taken, 50 - bad);
    assert_int_equal(p.unknown, 50 - bad); /* junk in every good row (null or not) */

    /* the cap: a 300-byte value might be 1800 bytes of JSON text, past 1000 */
    struct xdm_plan *plan = plan_of(SCHEMA("\"keep\":" XS("")));
    struct pq_reader *r;
    assert_int_equal(pq_reader_open_mem(&r, data, len, NULL, &err), 0);
    struct shred *sh = shred_new(plan);
    struct pq_shred *ps = pq_shred_new(r, sh, plan, 1000);
    int taken = 0;
    for (int i = 0; pq_reader_next(r, &err) == 1; i++) {
        bool want = i % 10 != 0 && i % 7 != 3;
        assert_int_equal(pq_shred_row(ps) == 0, want);
        taken += want;
    }
    int64_t t, back;
    pq_shred_counts(ps, &t, &back);
    assert_int_equal(t, taken);
    assert_int_equal(t + back, 50);
    pq_shred_free(ps);
    shred_free(sh);
    pq_reader_free(r);
    xdm_plan_free(plan);
    free(data);
}

/* ------------------------------------------------------------------ binding to XDM */

static void test_bind_check(void **state)
{
    (void)state;
    static const char *schema =
        "{\"$id\":\"https://ns.adobe.com/t/schemas/bind\",\"meta:class\":\"c\",\"type\":\"object\","
        "\"properties\":{\"id\":{\"type\":\"integer\"},\"name\":{\"type\":\"string\"},"
        "\"person\":{\"type\":\"object\",\"properties\":{\"first\":{\"type\":\"string\"}}},"
        "\"tags\":{\"type\":\"array\",\"items\":{\"type\":\"string\"}},"
        "\"items\":{\"type\":\"string\"},"
        "\"attrs\":{\"type\":\"object\",\"additionalProperties\":{\"type\":\"string\"}}}}";
    json_error_t je;
    json_t *js = json_loads(schema, 0, &je);
    assert_non_null(js);
    struct xdm_plan *plan = NULL;
    struct ing_err err;
    assert_int_equal(xdm_plan_compile(js, NULL, &plan, &err), 0);
    json_decref(js);
    assert_int_equal(plan->root.type, XDM_OBJECT);

    char path[512];
    snprintf(path, sizeof(path), "%s/bind.parquet", tmpdir_path);
    struct buf want = {0};
    write_sample(path, 5, PQ_CODEC_ZSTD, 0, &want);
    buf_free(&want);
    struct pq_reader *r;
    assert_int_equal(pq_reader_open(&r, path, NULL, &err), 0);
    struct pq_bind_report rep;
    assert_int_equal(pq_bind_check(r, plan, &rep, &err), 0);
    assert_int_equal(rep.n_bound + rep.n_unknown + rep.n_shape, pq_reader_ncolumns(r));
    assert_int_equal(rep.n_bound, 6);   /* id, name, person.first, tags[], attrs key + value */
    assert_int_equal(rep.n_unknown, 6); /* score, flag, day, at, small, person.last */
    assert_int_equal(rep.n_shape, 2);   /* items.list.element.{sku,qty}: XDM has a string */
    assert_int_equal(rep.n_issues, 8);
    int unknown_last = 0, shape_sku = 0;
    for (size_t i = 0; i < rep.n_issues; i++) {
        const struct pq_bind_issue *is = &rep.issues[i];
        assert_string_equal(is->column_path, pq_reader_column_path(r, is->column));
        if (!strcmp(is->column_path, "person.last")) {
            assert_int_equal(is->kind, PQ_BIND_UNKNOWN);
            assert_string_equal(is->field, "person.last");
            unknown_last++;
        }
        if (!strcmp(is->column_path, "items.list.element.sku")) {
            assert_int_equal(is->kind, PQ_BIND_SHAPE);
            assert_string_equal(is->field, "items");
            assert_true(is->why[0] != 0);
            shape_sku++;
        }
        assert_true(strcmp(is->column_path, "tags.list.element") != 0);
    }
    assert_int_equal(unknown_last, 1);
    assert_int_equal(shape_sku, 1);
    pq_bind_report_free(&rep);
    pq_bind_report_free(NULL);
    assert_int_equal(pq_bind_check(r, NULL, &rep, &err), ING_EINVAL);
    pq_reader_free(r);
    xdm_plan_free(plan);
}

/* ------------------------------------------------------------------ driver modes */

static int driver_read(const char *path)
{
    struct pq_reader *r;
    struct ing_err err;
    ing_err_clear(&err);
    int rc = pq_reader_open(&r, path, NULL, &err);
    if (rc) {
        fprintf(stderr, "ERROR: %s\n", err.msg);
        return 2;
    }
    struct buf row = {0};
    while ((rc = pq_reader_next(r, &err)) == 1) {
        buf_reset(&row);
        if (pq_reader_row_json(r, &row, &err) == 0) {
            fwrite(row.data, 1, row.len, stdout);
            fputc('\n', stdout);
        } else {
            printf("{\"__error\":\"row %" PRId64 "\"}\n", err.row);
        }
    }
    buf_free(&row);
    pq_reader_free(r);
    if (rc) {
        fprintf(stderr, "ERROR: %s\n", err.msg);
        return 2;
    }
    return 0;
}

int main(void)
{
    const char *read_path = getenv("PQ_READ_FILE");
    if (read_path && *read_path)
        return driver_read(read_path);
    const char *sample = getenv("PQ_WRITE_SAMPLE");
    if (sample && *sample) {
        struct buf want = {0};
        const char *rows = getenv("PQ_SAMPLE_ROWS");
        int n = rows && *rows ? atoi(rows) : 2000;
        const char *rg = getenv("PQ_SAMPLE_RG_BYTES");
        long rg_bytes = rg && *rg ? atol(rg) : 64 * 1024;
        write_sample(sample, n > 0 ? n : 2000, PQ_CODEC_ZSTD,
                     rg_bytes > 0 ? (size_t)rg_bytes : 64 * 1024, &want);
        buf_free(&want);
        return 0;
    }
    const char *exotic = getenv("PQ_WRITE_EXOTIC");
    if (exotic && *exotic) {
        struct buf f = {0};
        build_exotic(&f);
        struct ing_err err;
        int rc = fs_write_atomic(exotic, f.data, f.len, &err);
        buf_free(&f);
        return rc ? 1 : 0;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_thrift_decode_roundtrip),
        cmocka_unit_test(test_thrift_decode_errors),
        cmocka_unit_test(test_rle_decode_vectors),
        cmocka_unit_test(test_rle_decode_matches_writer),
        cmocka_unit_test(test_bitpacked_levels),
        cmocka_unit_test(test_delta_vectors),
        cmocka_unit_test(test_delta_roundtrip),
        cmocka_unit_test(test_byte_stream_split),
        cmocka_unit_test(test_exotic_file),
        cmocka_unit_test(test_writer_roundtrip),
        cmocka_unit_test(test_truncated_files),
        cmocka_unit_test(test_mutated_files),
        cmocka_unit_test(test_crafted_metadata),
        cmocka_unit_test(test_hostile_sizes),
        cmocka_unit_test(test_row_errors_do_not_stick),
        cmocka_unit_test(test_rows_span_pages),
        cmocka_unit_test(test_memory_is_one_page),
        cmocka_unit_test(test_bind_check),
        cmocka_unit_test(test_typed_exotic_as_text),
        cmocka_unit_test(test_typed_exotic_natural),
        cmocka_unit_test(test_typed_sample_natural),
        cmocka_unit_test(test_typed_sample_as_text),
        cmocka_unit_test(test_typed_sample_shapes),
        cmocka_unit_test(test_typed_dates),
        cmocka_unit_test(test_typed_dropped_parts),
    };
    return cmocka_run_group_tests(tests, setup_dir, teardown_dir);
}
