/*
 * test_parquet.c - unit tests for src/parquet: the Thrift compact encoder, the RLE/bit-packed
 * hybrid, the schema tree, and written files (layout, footer metadata decoded by a small
 * independent compact-protocol reader below, dictionary fallback, row groups, codecs, pages in
 * zstd's entropy mode and the way back to level 1, compression into a caller's buffer, a row
 * group of more pages than one writev takes).
 * With PQ_SAMPLE_DIR set, sample files for the DuckDB API test are left in that directory.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <snappy-c.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>
#include <zstd.h>

#include "parquet/pq_codec.h"
#include "parquet/pq_encode.h"
#include "parquet/pq_reader.h"
#include "parquet/pq_thrift.h"
#include "parquet/pq_writer.h"
#include "util/buf.h"
#include "util/fs.h"
#include "util/mem.h"

/* ------------------------------------------------------------------ helpers */

static void assert_bytes(const struct buf *b, const uint8_t *want, size_t n)
{
    assert_int_equal(b->len, n);
    assert_memory_equal(b->data, want, n);
}

/* A tiny compact-protocol reader, independent of the encoder, to check what was written. */
struct tv {
    int type;
    int16_t id;
    int64_t i;
    double d;
    const uint8_t *bin;
    size_t binlen;
    struct tv *kids;
    size_t nkids;
};

struct rd {
    const uint8_t *p, *end;
    int bad;
};

static uint64_t rd_varint(struct rd *r)
{
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        if (r->p >= r->end) {
            r->bad = 1;
            return 0;
        }
        uint8_t b = *r->p++;
        v |= (uint64_t)(b & 0x7F) << shift;
        if (!(b & 0x80))
            return v;
    }
    r->bad = 1;
    return 0;
}

static int64_t rd_zigzag(struct rd *r)
{
    uint64_t u = rd_varint(r);
    return (int64_t)(u >> 1) ^ -(int64_t)(u & 1);
}

static void rd_struct(struct rd *r, struct tv *out);

static void rd_value(struct rd *r, int type, struct tv *v)
{
    v->type = type;
    switch (type) {
    case 1: v->i = 1; break;
    case 2: v->i = 0; break;
    case 3:
        if (r->p >= r->end) { r->bad = 1; return; }
        v->i = (int8_t)*r->p++;
        break;
    case 4: case 5: case 6: v->i = rd_zigzag(r); break;
    case 7:
        if (r->end - r->p < 8) { r->bad = 1; return; }
        { uint64_t b = pq_get_le64(r->p); memcpy(&v->d, &b, 8); }
        r->p += 8;
        break;
    case 8: {
        uint64_t n = rd_varint(r);
        if (n > (uint64_t)(r->end - r->p)) { r->bad = 1; return; }
        v->bin = r->p;
        v->binlen = n;
        r->p += n;
        break;
    }
    case 9: case 10: {
        if (r->p >= r->end) { r->bad = 1; return; }
        uint8_t h = *r->p++;
        size_t n = h >> 4;
        int et = h & 15;
        if (n == 15)
            n = rd_varint(r);
        if (n > 1000000) { r->bad = 1; return; }
        v->kids = calloc(n ? n : 1, sizeof(struct tv));
        v->nkids = n;
        for (size_t k = 0; k < n && !r->bad; k++) {
            if (et == 1 || et == 2) { /* bools in lists are whole bytes */
                v->kids[k].type = et;
                v->kids[k].i = r->p < r->end && *r->p++ == 1;
            } else {
                rd_value(r, et, &v->kids[k]);
            }
        }
        break;
    }
    case 12: rd_struct(r, v); break;
    default: r->bad = 1;
    }
}

static void rd_struct(struct rd *r, struct tv *out)
{
    out->type = 12;
    size_t cap = 8;
    out->kids = calloc(cap, sizeof(struct tv));
    out->nkids = 0;
    int16_t last = 0;
    while (!r->bad) {
        if (r->p >= r->end) { r->bad = 1; return; }
        uint8_t h = *r->p++;
        if (h == 0)
            return;
        int type = h & 15;
        int16_t id = (h >> 4) ? (int16_t)(last + (h >> 4)) : (int16_t)rd_zigzag(r);
        last = id;
        if (out->nkids == cap) {
            cap *= 2;
            out->kids = realloc(out->kids, cap * sizeof(struct tv));
        }
        struct tv *k = &out->kids[out->nkids++];
        memset(k, 0, sizeof(*k));
        rd_value(r, type, k);
        k->id = id;
    }
}

static void tv_free(struct tv *v)
{
    for (size_t i = 0; i < v->nkids; i++)
        tv_free(&v->kids[i]);
    free(v->kids);
}

static const struct tv *tv_get(const struct tv *s, int16_t id)
{
    for (size_t i = 0; s && i < s->nkids; i++)
        if (s->kids[i].id == id)
            return &s->kids[i];
    return NULL;
}

static int64_t tv_int(const struct tv *s, int16_t id)
{
    const struct tv *f = tv_get(s, id);
    assert_non_null(f);
    return f->i;
}

/* The whole file and its decoded FileMetaData. */
struct pfile {
    uint8_t *data;
    size_t len;
    struct tv meta;
};

static void pfile_load(struct pfile *f, const char *path)
{
    FILE *fp = fopen(path, "rb");
    assert_non_null(fp);
    fseek(fp, 0, SEEK_END);
    long n = ftell(fp);
    assert_true(n >= 12);
    fseek(fp, 0, SEEK_SET);
    f->data = malloc((size_t)n);
    f->len = (size_t)n;
    assert_int_equal(fread(f->data, 1, f->len, fp), f->len);
    fclose(fp);
    assert_memory_equal(f->data, "PAR1", 4);
    assert_memory_equal(f->data + f->len - 4, "PAR1", 4);
    uint32_t flen = pq_get_le32(f->data + f->len - 8);
    assert_true(flen > 0 && flen <= f->len - 12);
    struct rd r = {f->data + f->len - 8 - flen, f->data + f->len - 8, 0};
    memset(&f->meta, 0, sizeof(f->meta));
    rd_struct(&r, &f->meta);
    assert_int_equal(r.bad, 0);
    assert_ptr_equal(r.p, f->data + f->len - 8); /* the footer length is exact */
}

static void pfile_free(struct pfile *f)
{
    tv_free(&f->meta);
    free(f->data);
}

static const struct tv *rg_at(const struct pfile *f, size_t i)
{
    const struct tv *rgs = tv_get(&f->meta, 4);
    assert_non_null(rgs);
    assert_true(i < rgs->nkids);
    return &rgs->kids[i];
}

static const struct tv *chunk_meta(const struct pfile *f, size_t rg, size_t col)
{
    const struct tv *cols = tv_get(rg_at(f, rg), 1);
    assert_non_null(cols);
    assert_true(col < cols->nkids);
    const struct tv *m = tv_get(&cols->kids[col], 3);
    assert_non_null(m);
    return m;
}

static bool has_encoding(const struct tv *meta, int enc)
{
    const struct tv *l = tv_get(meta, 2);
    for (size_t i = 0; l && i < l->nkids; i++)
        if (l->kids[i].i == enc)
            return true;
    return false;
}

static char *tmp_dir(void)
{
    char *d = xstrdup("/tmp/test_parquet.XXXXXX");
    assert_non_null(mkdtemp(d));
    return d;
}

/* ------------------------------------------------------------------ thrift */

static void test_thrift_varint_zigzag(void **state)
{
    (void)state;
    struct buf b = {0};
    struct pq_tw t;
    pq_tw_init(&t, &b);
    pq_tw_varint(&t, 0);
    pq_tw_varint(&t, 127);
    pq_tw_varint(&t, 128);
    pq_tw_varint(&t, 300);
    static const uint8_t v1[] = {0x00, 0x7F, 0x80, 0x01, 0xAC, 0x02};
    assert_bytes(&b, v1, sizeof(v1));

    buf_reset(&b);
    pq_tw_zigzag(&t, 0);
    pq_tw_zigzag(&t, -1);
    pq_tw_zigzag(&t, 1);
    pq_tw_zigzag(&t, -2);
    pq_tw_zigzag(&t, 2147483647);
    static const uint8_t v2[] = {0x00, 0x01, 0x02, 0x03, 0xFE, 0xFF, 0xFF, 0xFF, 0x0F};
    assert_bytes(&b, v2, sizeof(v2));

    buf_reset(&b);
    pq_tw_zigzag(&t, INT64_MIN); /* 2^64 - 1: ten bytes */
    static const uint8_t v3[] = {0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01};
    assert_bytes(&b, v3, sizeof(v3));
    assert_int_equal(pq_tw_error(&t), 0);
    buf_free(&b);
}

static void test_thrift_fields(void **state)
{
    (void)state;
    struct buf b = {0};
    struct pq_tw t;
    pq_tw_init(&t, &b);
    pq_tw_field_i32(&t, 1, 5);      /* delta 1, i32 */
    pq_tw_field_i64(&t, 3, -3);     /* delta 2, i64 */
    pq_tw_field_i32(&t, 20, 1);     /* delta 17: long form, id as zigzag i16 */
    pq_tw_field_bool(&t, 21, true); /* value in the type nibble */
    pq_tw_field_bool(&t, 22, false);
    pq_tw_field_i32(&t, 2, 0);      /* going back: long form */
    pq_tw_field_byte(&t, 3, -1);
    pq_tw_field_i16(&t, 4, 300);
    pq_tw_struct_end(&t);
    static const uint8_t want[] = {
        0x15, 0x0A, 0x26, 0x05, 0x05, 0x28, 0x02, 0x11, 0x12,
        0x05, 0x04, 0x00, 0x13, 0xFF, 0x14, 0xD8, 0x04, 0x00};
    assert_bytes(&b, want, sizeof(want));
    buf_free(&b);
}

static void test_thrift_nested_lists_binary(void **state)
{
    (void)state;
    struct buf b = {0};
    struct pq_tw t;
    pq_tw_init(&t, &b);
    pq_tw_field_struct_begin(&t, 1);
    pq_tw_field_i32(&t, 1, 1);
    pq_tw_struct_end(&t);
    pq_tw_field_string(&t, 2, "abc"); /* delta from the outer struct's last id (1) */
    pq_tw_field_list(&t, 3, PQ_T_I32, 3);
    pq_tw_zigzag(&t, 1);
    pq_tw_zigzag(&t, 2);
    pq_tw_zigzag(&t, -1);
    pq_tw_field_list(&t, 4, PQ_T_BINARY, 20); /* long list header */
    for (int i = 0; i < 20; i++)
        pq_tw_binary(&t, "x", 1);
    pq_tw_field_list(&t, 5, PQ_T_STRUCT, 1);
    pq_tw_struct_begin(&t);
    pq_tw_field_empty_struct(&t, 1);
    pq_tw_struct_end(&t);
    pq_tw_struct_end(&t);
    uint8_t want[64 + 40];
    size_t n = 0;
    static const uint8_t head[] = {0x1C, 0x15, 0x02, 0x00, 0x18, 0x03, 'a', 'b', 'c',
                                   0x19, 0x35, 0x02, 0x04, 0x01, 0x19, 0xF8, 0x14};
    memcpy(want, head, sizeof(head));
    n = sizeof(head);
    for (int i = 0; i < 20; i++) {
        want[n++] = 0x01;
        want[n++] = 'x';
    }
    static const uint8_t tail[] = {0x19, 0x1C, 0x1C, 0x00, 0x00, 0x00};
    memcpy(want + n, tail, sizeof(tail));
    n += sizeof(tail);
    assert_bytes(&b, want, n);
    buf_free(&b);
}

/* ------------------------------------------------------------------ encodings */

static void test_bit_width(void **state)
{
    (void)state;
    assert_int_equal(pq_bit_width(0), 0);
    assert_int_equal(pq_bit_width(1), 1);
    assert_int_equal(pq_bit_width(2), 2);
    assert_int_equal(pq_bit_width(3), 2);
    assert_int_equal(pq_bit_width(4), 3);
    assert_int_equal(pq_bit_width(255), 8);
    assert_int_equal(pq_bit_width(256), 9);
    assert_int_equal(pq_bit_width(UINT32_MAX), 32);
}

static void test_rle_hybrid(void **state)
{
    (void)state;
    struct buf b = {0};
    /* Encodings.md example: 0..7 packed at width 3 -> 10001000 11000110 11111010. */
    uint32_t seq[8] = {0, 1, 2, 3, 4, 5, 6, 7};
    assert_int_equal(pq_rle_encode(&b, seq, 8, 3), 0);
    static const uint8_t w1[] = {0x03, 0x88, 0xC6, 0xFA};
    assert_bytes(&b, w1, sizeof(w1));

    /* Ten equal values: one RLE run, header 10 << 1, value in one byte. */
    buf_reset(&b);
    uint32_t ones[10] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1};
    assert_int_equal(pq_rle_encode(&b, ones, 10, 1), 0);
    static const uint8_t w2[] = {0x14, 0x01};
    assert_bytes(&b, w2, sizeof(w2));

    /* 1,2,3 then thirteen 5s at width 3: the packed group is completed with five 5s, then an
     * RLE run of the remaining eight. Group bits (LSB first): 001 010 011 101 101 101 101 101
     * -> bytes 0xD1 0xDA 0xB6. */
    buf_reset(&b);
    uint32_t mix[16] = {1, 2, 3};
    for (int i = 3; i < 16; i++)
        mix[i] = 5;
    assert_int_equal(pq_rle_encode(&b, mix, 16, 3), 0);
    static const uint8_t w3[] = {0x03, 0xD1, 0xDA, 0xB6, 0x10, 0x05};
    assert_bytes(&b, w3, sizeof(w3));

    /* Three values, a short tail: one group, zero padded. 2,0,1 at width 2 -> 0b010010 = 0x12. */
    buf_reset(&b);
    uint32_t tail[3] = {2, 0, 1};
    assert_int_equal(pq_rle_encode(&b, tail, 3, 2), 0);
    static const uint8_t w4[] = {0x03, 0x12, 0x00};
    assert_bytes(&b, w4, sizeof(w4));

    /* Wide values: a 300-long run of 0x1234 at width 13 stores the value in 2 bytes; the run
     * length 300 << 1 = 600 is a two-byte varint. */
    buf_reset(&b);
    uint32_t *wide = malloc(300 * sizeof(uint32_t));
    for (int i = 0; i < 300; i++)
        wide[i] = 0x1234;
    assert_int_equal(pq_rle_encode(&b, wide, 300, 13), 0);
    static const uint8_t w5[] = {0xD8, 0x04, 0x34, 0x12};
    assert_bytes(&b, w5, sizeof(w5));
    free(wide);

    /* Levels carry a 4-byte little-endian length first. */
    buf_reset(&b);
    assert_int_equal(pq_rle_encode_levels(&b, ones, 10, 1), 0);
    static const uint8_t w6[] = {0x02, 0x00, 0x00, 0x00, 0x14, 0x01};
    assert_bytes(&b, w6, sizeof(w6));

    assert_int_equal(pq_rle_encode(&b, ones, 10, 0), ING_EINVAL);
    buf_free(&b);
}

static void test_bool_pack(void **state)
{
    (void)state;
    struct buf b = {0};
    uint8_t v[9] = {1, 0, 1, 1, 0, 0, 0, 0, 1};
    assert_int_equal(pq_bool_pack(&b, v, 9), 0);
    static const uint8_t want[] = {0x0D, 0x01};
    assert_bytes(&b, want, sizeof(want));
    buf_free(&b);
}

/* ------------------------------------------------------------------ schema */

struct nested {
    struct pq_schema *s;
    int id, first, last, sku, qty, key, value;
};

static void nested_schema(struct nested *n)
{
    struct pq_schema *s = pq_schema_new();
    n->s = s;
    n->id = pq_schema_add_leaf(s, 0, "id", PQ_REQUIRED, PQ_INT32, PQ_LOG_NONE);
    int person = pq_schema_add_group(s, 0, "person", PQ_OPTIONAL, PQ_LOG_NONE);
    int name = pq_schema_add_group(s, person, "name", PQ_OPTIONAL, PQ_LOG_NONE);
    n->first = pq_schema_add_leaf(s, name, "first", PQ_OPTIONAL, PQ_BYTE_ARRAY, PQ_LOG_STRING);
    n->last = pq_schema_add_leaf(s, name, "last", PQ_OPTIONAL, PQ_BYTE_ARRAY, PQ_LOG_STRING);
    int items = pq_schema_add_group(s, 0, "items", PQ_OPTIONAL, PQ_LOG_LIST);
    int list = pq_schema_add_group(s, items, "list", PQ_REPEATED, PQ_LOG_NONE);
    int elem = pq_schema_add_group(s, list, "element", PQ_OPTIONAL, PQ_LOG_NONE);
    n->sku = pq_schema_add_leaf(s, elem, "sku", PQ_OPTIONAL, PQ_BYTE_ARRAY, PQ_LOG_STRING);
    n->qty = pq_schema_add_leaf(s, elem, "qty", PQ_OPTIONAL, PQ_INT32, PQ_LOG_NONE);
    int attrs = pq_schema_add_group(s, 0, "attrs", PQ_OPTIONAL, PQ_LOG_MAP);
    int kv = pq_schema_add_group(s, attrs, "key_value", PQ_REPEATED, PQ_LOG_NONE);
    n->key = pq_schema_add_leaf(s, kv, "key", PQ_REQUIRED, PQ_BYTE_ARRAY, PQ_LOG_STRING);
    n->value = pq_schema_add_leaf(s, kv, "value", PQ_OPTIONAL, PQ_BYTE_ARRAY, PQ_LOG_STRING);
    pq_schema_finish(s);
}

static void test_schema_levels(void **state)
{
    (void)state;
    struct nested n;
    nested_schema(&n);
    assert_int_equal(pq_schema_ncolumns(n.s), 7);
    assert_int_equal(n.id, 0);
    assert_int_equal(n.value, 6);
    static const int want_def[] = {0, 3, 3, 4, 4, 2, 3};
    static const int want_rep[] = {0, 0, 0, 1, 1, 1, 1};
    for (int c = 0; c < 7; c++) {
        assert_int_equal(pq_schema_max_def(n.s, c), want_def[c]);
        assert_int_equal(pq_schema_max_rep(n.s, c), want_rep[c]);
    }
    assert_string_equal(pq_schema_column_path(n.s, n.first), "person.name.first");
    assert_string_equal(pq_schema_column_path(n.s, n.sku), "items.list.element.sku");
    assert_string_equal(pq_schema_column_path(n.s, n.key), "attrs.key_value.key");
    assert_int_equal(pq_schema_max_def(n.s, 7), ING_EINVAL);
    pq_schema_free(n.s);
    pq_schema_free(NULL);
}

static void test_schema_invalid(void **state)
{
    (void)state;
    char *dir = tmp_dir();
    char *path = xasprintf("%s/x.parquet", dir);
    struct pq_writer *w = (struct pq_writer *)1;
    struct ing_err err;

    /* Leaves added out of depth-first order. */
    struct pq_schema *s = pq_schema_new();
    int a = pq_schema_add_group(s, 0, "a", PQ_OPTIONAL, PQ_LOG_NONE);
    int b = pq_schema_add_group(s, 0, "b", PQ_OPTIONAL, PQ_LOG_NONE);
    assert_int_equal(pq_schema_add_leaf(s, b, "y", PQ_OPTIONAL, PQ_INT32, PQ_LOG_NONE), 0);
    assert_int_equal(pq_schema_add_leaf(s, a, "x", PQ_OPTIONAL, PQ_INT32, PQ_LOG_NONE), 1);
    pq_schema_finish(s);
    assert_int_equal(pq_writer_open(&w, s, path, NULL, &err), ING_EINVAL);
    assert_null(w);
    assert_non_null(strstr(err.msg, "depth-first"));
    pq_schema_free(s);

    /* A leaf is no parent; a logical type must fit; LIST needs a repeated child. */
    s = pq_schema_new();
    int leaf = pq_schema_add_leaf(s, 0, "x", PQ_REQUIRED, PQ_INT32, PQ_LOG_NONE);
    assert_int_equal(leaf, 0);
    assert_int_equal(pq_schema_add_leaf(s, 1, "y", PQ_REQUIRED, PQ_INT32, PQ_LOG_NONE),
                     ING_EINVAL);
    pq_schema_free(s);
    s = pq_schema_new();
    assert_int_equal(pq_schema_add_leaf(s, 0, "x", PQ_REQUIRED, PQ_INT64, PQ_LOG_STRING),
                     ING_EINVAL);
    pq_schema_free(s);
    s = pq_schema_new();
    int l = pq_schema_add_group(s, 0, "l", PQ_OPTIONAL, PQ_LOG_LIST);
    pq_schema_add_leaf(s, l, "x", PQ_OPTIONAL, PQ_INT32, PQ_LOG_NONE);
    pq_schema_finish(s);
    assert_int_equal(pq_writer_open(&w, s, path, NULL, &err), ING_EINVAL);
    pq_schema_free(s);
    /* An empty group. */
    s = pq_schema_new();
    pq_schema_add_group(s, 0, "g", PQ_OPTIONAL, PQ_LOG_NONE);
    pq_schema_add_leaf(s, 0, "x", PQ_OPTIONAL, PQ_INT32, PQ_LOG_NONE);
    pq_schema_finish(s);
    assert_int_equal(pq_writer_open(&w, s, path, NULL, &err), ING_EINVAL);
    pq_schema_free(s);

    free(path);
    fs_rm_rf(dir, NULL);
    free(dir);
}

/* ------------------------------------------------------------------ sample writers */

/* The formulas here are mirrored in tests/api/parquet_duckdb.test.mjs. */
struct flat {
    struct pq_schema *s;
    int id, n, d, b, day, ts, small;
};

static void flat_schema(struct flat *f)
{
    struct pq_schema *s = pq_schema_new();
    f->s = s;
    f->id = pq_schema_add_leaf(s, 0, "id", PQ_REQUIRED, PQ_BYTE_ARRAY, PQ_LOG_STRING);
    f->n = pq_schema_add_leaf(s, 0, "n", PQ_OPTIONAL, PQ_INT64, PQ_LOG_NONE);
    f->d = pq_schema_add_leaf(s, 0, "d", PQ_OPTIONAL, PQ_DOUBLE, PQ_LOG_NONE);
    f->b = pq_schema_add_leaf(s, 0, "b", PQ_OPTIONAL, PQ_BOOLEAN, PQ_LOG_NONE);
    f->day = pq_schema_add_leaf(s, 0, "day", PQ_REQUIRED, PQ_INT32, PQ_LOG_DATE);
    f->ts = pq_schema_add_leaf(s, 0, "ts", PQ_REQUIRED, PQ_INT64, PQ_LOG_TIMESTAMP_MILLIS);
    f->small = pq_schema_add_leaf(s, 0, "small", PQ_OPTIONAL, PQ_INT32, PQ_LOG_INT8);
    pq_schema_finish(s);
}

static int write_flat(const char *path, enum pq_codec codec, int rows, struct pq_file_info *info)
{
    struct flat f;
    flat_schema(&f);
    struct pq_writer_opts o = {.codec = codec};
    struct pq_writer *w;
    struct ing_err err;
    int rc = pq_writer_open(&w, f.s, path, &o, &err);
    assert_int_equal(rc, 0);
    char id[32];
    for (int i = 0; i < rows; i++) {
        int n = snprintf(id, sizeof(id), "id-%d", i);
        pq_write_bytes(w, f.id, id, (size_t)n, 0);
        if (i % 7 == 3)
            pq_write_null(w, f.n, 0, 0);
        else
            pq_write_i64(w, f.n, (int64_t)i * 123456789012LL - 50000000000000LL, 0);
        if (i % 5 == 1)
            pq_write_null(w, f.d, 0, 0);
        else
            pq_write_double(w, f.d, i * 0.25 - 100.0, 0);
        if (i % 11 == 0)
            pq_write_null(w, f.b, 0, 0);
        else
            pq_write_bool(w, f.b, i % 3 == 0, 0);
        pq_write_i32(w, f.day, 18000 + i, 0);
        pq_write_i64(w, f.ts, 1700000000000LL + (int64_t)i * 3600000, 0);
        if (i % 13 == 0)
            pq_write_null(w, f.small, 0, 0);
        else
            pq_write_i32(w, f.small, (i * 37) % 256 - 128, 0);
        rc = pq_writer_end_row(w, &err);
        assert_int_equal(rc, 0);
    }
    rc = pq_writer_close(w, info, &err);
    pq_schema_free(f.s);
    return rc;
}

static void write_str(struct pq_writer *w, int col, int rep, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void write_str(struct pq_writer *w, int col, int rep, const char *fmt, ...)
{
    char tmp[64];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    pq_write_bytes(w, col, tmp, (size_t)n, rep);
}

/* Dremel shredding of the nested sample, by hand. */
static int write_nested(const char *path, int rows, struct pq_file_info *info)
{
    struct nested n;
    nested_schema(&n);
    struct pq_writer *w;
    struct ing_err err;
    int rc = pq_writer_open(&w, n.s, path, NULL, &err);
    assert_int_equal(rc, 0);
    for (int i = 0; i < rows; i++) {
        pq_write_i32(w, n.id, i, 0);
        switch (i % 4) {
        case 0: /* person null */
            pq_write_null(w, n.first, 0, 0);
            pq_write_null(w, n.last, 0, 0);
            break;
        case 1: /* name null */
            pq_write_null(w, n.first, 1, 0);
            pq_write_null(w, n.last, 1, 0);
            break;
        case 2:
            write_str(w, n.first, 0, "F%d", i);
            pq_write_null(w, n.last, 2, 0);
            break;
        default:
            write_str(w, n.first, 0, "F%d", i);
            write_str(w, n.last, 0, "L%d", i);
        }
        int k = i % 5;
        if (k < 2) { /* 0: null list, 1: empty list */
            pq_write_null(w, n.sku, k, 0);
            pq_write_null(w, n.qty, k, 0);
        }
        for (int j = 0; k >= 2 && j < k; j++) {
            int rep = j ? 1 : 0;
            if (j == 1 && i % 3 == 0) { /* null element */
                pq_write_null(w, n.sku, 2, rep);
                pq_write_null(w, n.qty, 2, rep);
                continue;
            }
            if ((i + j) % 4 == 0)
                pq_write_null(w, n.sku, 3, rep);
            else
                write_str(w, n.sku, rep, "S%d-%d", i, j);
            pq_write_i32(w, n.qty, i * 10 + j, rep);
        }
        int m = i % 6;
        if (m < 2) { /* 0: null map, 1: empty map */
            pq_write_null(w, n.key, m, 0);
            pq_write_null(w, n.value, m, 0);
        }
        for (int j = 0; m >= 2 && j < m - 1; j++) {
            int rep = j ? 1 : 0;
            write_str(w, n.key, rep, "k%d", j);
            if (j == 2)
                pq_write_null(w, n.value, 2, rep);
            else
                write_str(w, n.value, rep, "v%d-%d", i, j);
        }
        rc = pq_writer_end_row(w, &err);
        assert_int_equal(rc, 0);
    }
    rc = pq_writer_close(w, info, &err);
    pq_schema_free(n.s);
    return rc;
}

static uint32_t multi_hash(int i)
{
    return (uint32_t)i * 2654435761u;
}

static int write_multi(const char *path, int rows, size_t page_bytes, size_t dict_max,
                       struct pq_file_info *info)
{
    struct pq_schema *s = pq_schema_new();
    int id = pq_schema_add_leaf(s, 0, "id", PQ_REQUIRED, PQ_INT64, PQ_LOG_NONE);
    int str = pq_schema_add_leaf(s, 0, "s", PQ_REQUIRED, PQ_BYTE_ARRAY, PQ_LOG_STRING);
    int cat = pq_schema_add_leaf(s, 0, "c", PQ_OPTIONAL, PQ_BYTE_ARRAY, PQ_LOG_STRING);
    pq_schema_finish(s);
    struct pq_writer_opts o = {.codec = PQ_CODEC_ZSTD, .row_group_bytes = 256 * 1024,
                               .page_bytes = page_bytes, .dict_max_bytes = dict_max};
    struct pq_writer *w;
    struct ing_err err;
    int rc = pq_writer_open(&w, s, path, &o, &err);
    assert_int_equal(rc, 0);
    for (int i = 0; i < rows; i++) {
        pq_write_i64(w, id, i, 0);
        write_str(w, str, 0, "row-%d-%08x", i, multi_hash(i));
        if (i % 17 == 0)
            pq_write_null(w, cat, 0, 0);
        else
            write_str(w, cat, 0, "cat-%d", i % 10);
        rc = pq_writer_end_row(w, &err);
        assert_int_equal(rc, 0);
    }
    rc = pq_writer_close(w, info, &err);
    pq_schema_free(s);
    return rc;
}

/* ------------------------------------------------------------------ files */

static void test_file_layout(void **state)
{
    (void)state;
    char *dir = tmp_dir();
    char *path = xasprintf("%s/flat.parquet", dir);
    struct pq_file_info info = {0};
    assert_int_equal(write_flat(path, PQ_CODEC_ZSTD, 1000, &info), 0);
    assert_int_equal(info.rows, 1000);
    assert_int_equal(info.row_groups, 1);
    assert_int_equal(info.bytes, fs_file_size(path));

    struct pfile f;
    pfile_load(&f, path);
    assert_int_equal(tv_int(&f.meta, 1), 2);     /* version */
    assert_int_equal(tv_int(&f.meta, 3), 1000);  /* num_rows */
    const struct tv *cb = tv_get(&f.meta, 6);
    assert_non_null(cb);
    assert_int_equal(cb->binlen, strlen("ingot version 0.1"));
    assert_memory_equal(cb->bin, "ingot version 0.1", cb->binlen);
    const struct tv *schema = tv_get(&f.meta, 2);
    assert_int_equal(schema->nkids, 8);          /* root + 7 leaves */
    assert_int_equal(tv_int(&schema->kids[0], 5), 7);
    /* ts: INT64, converted TIMESTAMP_MILLIS (9), LogicalType TIMESTAMP(UTC, MILLIS). */
    const struct tv *ts = &schema->kids[6];
    assert_int_equal(tv_int(ts, 1), 2);
    assert_int_equal(tv_int(ts, 6), 9);
    const struct tv *tsl = tv_get(tv_get(ts, 10), 8);
    assert_non_null(tsl);
    assert_int_equal(tv_int(tsl, 1), 1);
    assert_non_null(tv_get(tv_get(tsl, 2), 1));
    /* small: INT(8, signed) and INT_8 (15). */
    const struct tv *sm = &schema->kids[7];
    assert_int_equal(tv_int(sm, 6), 15);
    const struct tv *it = tv_get(tv_get(sm, 10), 10);
    assert_int_equal(tv_int(it, 1), 8);
    assert_int_equal(tv_int(it, 2), 1);
    assert_int_equal(tv_get(&f.meta, 7)->nkids, 7); /* column_orders */

    /* Column n: stats, counts, offsets. */
    const struct tv *n = chunk_meta(&f, 0, 1);
    assert_int_equal(tv_int(n, 1), PQ_INT64);
    assert_int_equal(tv_int(n, 4), PQ_CODEC_ZSTD);
    assert_int_equal(tv_int(n, 5), 1000);
    const struct tv *path_in = tv_get(n, 3);
    assert_int_equal(path_in->nkids, 1);
    assert_memory_equal(path_in->kids[0].bin, "n", 1);
    const struct tv *st = tv_get(n, 12);
    int64_t nulls = 0;
    for (int i = 0; i < 1000; i++)
        nulls += i % 7 == 3;
    assert_int_equal(tv_int(st, 3), nulls);
    assert_int_equal((int64_t)pq_get_le64(tv_get(st, 6)->bin), -50000000000000LL);
    assert_int_equal((int64_t)pq_get_le64(tv_get(st, 5)->bin),
                     999LL * 123456789012LL - 50000000000000LL);
    int64_t dpo = tv_int(n, 9);
    assert_true(dpo >= 4 && dpo < (int64_t)f.len);
    assert_null(tv_get(n, 11)); /* numbers have no dictionary */
    /* Column id: dictionary page first, then RLE_DICTIONARY data; string stats. */
    const struct tv *idm = chunk_meta(&f, 0, 0);
    assert_int_equal(tv_int(idm, 11), 4);
    assert_true(tv_int(idm, 9) > 4);
    assert_true(has_encoding(idm, 8));
    assert_true(has_encoding(idm, 0));
    const struct tv *ist = tv_get(idm, 12);
    assert_int_equal(tv_get(ist, 6)->binlen, 4);
    assert_memory_equal(tv_get(ist, 6)->bin, "id-0", 4);  /* byte-wise: "id-0" < "id-1.." */
    assert_memory_equal(tv_get(ist, 5)->bin, "id-999", 6);
    /* Row group: file_offset is the first page; sizes add up. */
    const struct tv *rg = rg_at(&f, 0);
    assert_int_equal(tv_int(rg, 3), 1000);
    assert_int_equal(tv_int(rg, 5), 4);
    int64_t comp = 0;
    for (int c = 0; c < 7; c++)
        comp += tv_int(chunk_meta(&f, 0, (size_t)c), 7);
    assert_int_equal(tv_int(rg, 6), comp);
    uint32_t flen = pq_get_le32(f.data + f.len - 8);
    assert_int_equal(4 + comp + flen + 8, (int64_t)f.len);
    /* Double stats: min and max of the non-null values, NaN count present. */
    const struct tv *dst = tv_get(chunk_meta(&f, 0, 2), 12);
    double dmin, dmax;
    uint64_t bits = pq_get_le64(tv_get(dst, 6)->bin);
    memcpy(&dmin, &bits, 8);
    bits = pq_get_le64(tv_get(dst, 5)->bin);
    memcpy(&dmax, &bits, 8);
    assert_true(dmin == -100.0 && dmax == 999 * 0.25 - 100.0);
    assert_int_equal(tv_int(dst, 9), 0);
    pfile_free(&f);
    free(path);
    fs_rm_rf(dir, NULL);
    free(dir);
}

/* With pages larger than the first few thousand values, a column of distinct strings is written
 * PLAIN from the start (no dictionary page at all), a repetitive one keeps its dictionary. */
static void test_dictionary_skipped_for_distinct_values(void **state)
{
    (void)state;
    char *dir = tmp_dir();
    char *path = xasprintf("%s/distinct.parquet", dir);
    struct pq_file_info info = {0};
    assert_int_equal(write_multi(path, 6000, 1024 * 1024, 1024 * 1024, &info), 0);
    assert_int_equal(info.row_groups, 1);
    struct pfile f;
    pfile_load(&f, path);
    const struct tv *sm = chunk_meta(&f, 0, 1);
    assert_null(tv_get(sm, 11));
    assert_false(has_encoding(sm, 8));
    assert_true(has_encoding(sm, 0));
    assert_int_equal(tv_int(sm, 5), 6000);
    const struct tv *cm = chunk_meta(&f, 0, 2);
    assert_non_null(tv_get(cm, 11));
    assert_true(has_encoding(cm, 8));
    pfile_free(&f);
    free(path);
    fs_rm_rf(dir, NULL);
    free(dir);
}

static void test_dictionary_fallback_and_row_groups(void **state)
{
    (void)state;
    char *dir = tmp_dir();
    char *path = xasprintf("%s/multi.parquet", dir);
    struct pq_file_info info = {0};
    assert_int_equal(write_multi(path, 100000, 8 * 1024, 64 * 1024, &info), 0);
    assert_int_equal(info.rows, 100000);
    assert_true(info.row_groups >= 5);
    struct pfile f;
    pfile_load(&f, path);
    const struct tv *rgs = tv_get(&f.meta, 4);
    assert_int_equal((int)rgs->nkids, info.row_groups);
    int64_t total = 0;
    for (size_t g = 0; g < rgs->nkids; g++) {
        int64_t rows = tv_int(&rgs->kids[g], 3);
        /* id is the row number: the chunk's min/max are the group's first and last row. */
        const struct tv *st = tv_get(chunk_meta(&f, g, 0), 12);
        assert_int_equal((int64_t)pq_get_le64(tv_get(st, 6)->bin), total);
        assert_int_equal((int64_t)pq_get_le64(tv_get(st, 5)->bin), total + rows - 1);
        assert_int_equal(tv_int(&rgs->kids[g], 7), (int64_t)g);
        total += rows;
        if (g + 1 < rgs->nkids) {
            /* High-cardinality s: the dictionary overflowed, the rest of the chunk is PLAIN. */
            const struct tv *sm = chunk_meta(&f, g, 1);
            assert_true(has_encoding(sm, 8));
            assert_true(has_encoding(sm, 0));
            assert_non_null(tv_get(sm, 11));
            /* Low-cardinality c stays dictionary encoded: PLAIN only for the dictionary page. */
            const struct tv *cm = chunk_meta(&f, g, 2);
            assert_true(has_encoding(cm, 8));
            assert_non_null(tv_get(cm, 11));
            assert_true(tv_int(tv_get(cm, 12), 3) > 0);
        }
    }
    assert_int_equal(total, 100000);
    assert_int_equal(tv_int(&f.meta, 3), 100000);
    pfile_free(&f);
    free(path);
    fs_rm_rf(dir, NULL);
    free(dir);
}

/* Decompress one page body with the codec's own library (not through pq_codec). */
static uint8_t *decompress_page(int codec, const uint8_t *p, size_t n, size_t unc)
{
    uint8_t *out = malloc(unc ? unc : 1);
    switch (codec) {
    case PQ_CODEC_UNCOMPRESSED:
        assert_int_equal(n, unc);
        memcpy(out, p, n);
        break;
    case PQ_CODEC_ZSTD:
        assert_int_equal(ZSTD_decompress(out, unc, p, n), unc);
        break;
    case PQ_CODEC_SNAPPY: {
        size_t got = unc;
        assert_int_equal(snappy_uncompress((const char *)p, n, (char *)out, &got), SNAPPY_OK);
        assert_int_equal(got, unc);
        break;
    }
    case PQ_CODEC_GZIP: {
        z_stream z;
        memset(&z, 0, sizeof(z));
        assert_int_equal(inflateInit2(&z, 15 + 16), Z_OK); /* gzip framing only */
        z.next_in = (Bytef *)(uintptr_t)p;
        z.avail_in = (uInt)n;
        z.next_out = out;
        z.avail_out = (uInt)unc;
        assert_int_equal(inflate(&z, Z_FINISH), Z_STREAM_END);
        assert_int_equal(z.total_out, unc);
        inflateEnd(&z);
        break;
    }
    default:
        fail();
    }
    return out;
}

static void check_codec(enum pq_codec codec)
{
    char *dir = tmp_dir();
    char *path = xasprintf("%s/c.parquet", dir);
    struct pq_schema *s = pq_schema_new();
    int v = pq_schema_add_leaf(s, 0, "v", PQ_REQUIRED, PQ_INT64, PQ_LOG_NONE);
    int str = pq_schema_add_leaf(s, 0, "s", PQ_REQUIRED, PQ_BYTE_ARRAY, PQ_LOG_STRING);
    pq_schema_finish(s);
    struct pq_writer_opts o = {.codec = codec};
    struct pq_writer *w;
    assert_int_equal(pq_writer_open(&w, s, path, &o, NULL), 0);
    for (int i = 0; i < 5000; i++) {
        pq_write_i64(w, v, (int64_t)i * 7 - 3, 0);
        write_str(w, str, 0, "name-%d", i % 3);
        assert_int_equal(pq_writer_end_row(w, NULL), 0);
    }
    assert_int_equal(pq_writer_close(w, NULL, NULL), 0);

    struct pfile f;
    pfile_load(&f, path);
    /* v: one PLAIN page without levels (required, flat), so the body is the values. */
    const struct tv *m = chunk_meta(&f, 0, 0);
    assert_int_equal(tv_int(m, 4), codec);
    int64_t off = tv_int(m, 9);
    struct rd r = {f.data + off, f.data + f.len, 0};
    struct tv ph;
    memset(&ph, 0, sizeof(ph));
    rd_struct(&r, &ph);
    assert_int_equal(r.bad, 0);
    assert_int_equal(tv_int(&ph, 1), 0); /* DATA_PAGE */
    size_t unc = (size_t)tv_int(&ph, 2), comp = (size_t)tv_int(&ph, 3);
    assert_int_equal(tv_int(tv_get(&ph, 5), 1), 5000);
    assert_int_equal(tv_int(tv_get(&ph, 5), 2), 0);
    assert_int_equal(unc, 5000 * 8);
    assert_int_equal((size_t)(r.p - f.data) + comp, (size_t)(off + tv_int(m, 7)));
    uint8_t *body = decompress_page(codec, r.p, comp, unc);
    for (int i = 0; i < 5000; i++)
        assert_int_equal((int64_t)pq_get_le64(body + 8 * i), (int64_t)i * 7 - 3);
    free(body);
    tv_free(&ph);

    /* s: the dictionary page holds the three names in first-seen order. */
    m = chunk_meta(&f, 0, 1);
    off = tv_int(m, 11);
    r = (struct rd){f.data + off, f.data + f.len, 0};
    memset(&ph, 0, sizeof(ph));
    rd_struct(&r, &ph);
    assert_int_equal(tv_int(&ph, 1), 2); /* DICTIONARY_PAGE */
    assert_int_equal(tv_int(tv_get(&ph, 7), 1), 3);
    unc = (size_t)tv_int(&ph, 2);
    body = decompress_page(codec, r.p, (size_t)tv_int(&ph, 3), unc);
    static const uint8_t dict[] = {6, 0, 0, 0, 'n', 'a', 'm', 'e', '-', '0',
                                   6, 0, 0, 0, 'n', 'a', 'm', 'e', '-', '1',
                                   6, 0, 0, 0, 'n', 'a', 'm', 'e', '-', '2'};
    assert_int_equal(unc, sizeof(dict));
    assert_memory_equal(body, dict, sizeof(dict));
    free(body);
    tv_free(&ph);
    pfile_free(&f);
    pq_schema_free(s);
    free(path);
    fs_rm_rf(dir, NULL);
    free(dir);
}

/* pq_codec_compress_to: into exactly pq_codec_bound bytes of room, small and large pages (zstd
 * keeps small pages on a context of their own), in both zstd modes, and the bytes decompress
 * back; less room than the bound is refused before anything is written. Pages that compress and
 * pages of random bytes, which do not (where a bound too small would show). */
static void check_compress_to(enum pq_codec codec)
{
    struct pq_codec_ctx *cc;
    assert_int_equal(pq_codec_new(&cc, codec, 1, NULL), 0);
    static const size_t sizes[] = {0, 1, 100, 16384, 16385, 300000};
    for (size_t k = 0; k < 2 * (sizeof(sizes) / sizeof(sizes[0])); k++) {
        size_t n = sizes[k / 2];
        bool random = k % 2;
        uint64_t x = 0x9E3779B97F4A7C15ull + k; /* xorshift64 */
        uint8_t *src = malloc(n + 1);
        for (size_t i = 0; i < n; i++) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            src[i] = random ? (uint8_t)(x >> 56)
                            : (uint8_t)(i % 7 == 0 ? (i * 2654435761u) >> 24 : 'a' + i % 3);
        }
        size_t bound = pq_codec_bound(cc, n);
        assert_true(bound >= n);
        uint8_t *dst = malloc(bound + 16);
        memset(dst + bound, 0xA5, 16);
        for (int entropy = 0; entropy <= 1; entropy++) {
            size_t got = 0;
            assert_int_equal(pq_codec_compress_to(cc, src, n, dst, bound, entropy, &got, NULL), 0);
            assert_true(got <= bound);
            for (int i = 0; i < 16; i++)
                assert_int_equal(dst[bound + i], 0xA5); /* nothing past the room */
            uint8_t *back = decompress_page(codec, dst, got, n);
            assert_memory_equal(back, src, n);
            free(back);
        }
        size_t got = 7;
        struct ing_err err;
        ing_err_clear(&err);
        if (bound > 0) {
            assert_int_equal(pq_codec_compress_to(cc, src, n, dst, bound - 1, false, &got, &err),
                             ING_EINTERNAL);
            assert_int_equal(got, 0);
            assert_non_null(strstr(err.msg, "room"));
        }
        free(dst);
        free(src);
    }
    pq_codec_free(cc);
}

static void test_compress_to(void **state)
{
    (void)state;
    check_compress_to(PQ_CODEC_ZSTD);
    check_compress_to(PQ_CODEC_SNAPPY);
    check_compress_to(PQ_CODEC_GZIP);
    check_compress_to(PQ_CODEC_UNCOMPRESSED);
}

/* One row group of thousands of pages (tiny pages, one large row group): the writer queues more
 * pieces than one writev takes and writes them in batches; every value comes back, the file size
 * is what the writer counted, and a dictionary column and a column left null (whose tables are
 * made lazily) are right in every row group of a second file with several. */
static void test_many_pages_one_row_group(void **state)
{
    (void)state;
    char *dir = tmp_dir();
    struct pq_schema *s = pq_schema_new();
    int num = pq_schema_add_leaf(s, 0, "n", PQ_REQUIRED, PQ_INT64, PQ_LOG_NONE);
    int tag = pq_schema_add_leaf(s, 0, "tag", PQ_OPTIONAL, PQ_BYTE_ARRAY, PQ_LOG_STRING);
    int none = pq_schema_add_leaf(s, 0, "none", PQ_OPTIONAL, PQ_BYTE_ARRAY, PQ_LOG_STRING);
    pq_schema_finish(s);
    static const char *tags[] = {"gold", "silver", "bronze"};
    const int rows = 30000;
    for (int variant = 0; variant < 2; variant++) {
        char *path = xasprintf("%s/many%d.parquet", dir, variant);
        struct pq_writer_opts o = {.codec = PQ_CODEC_ZSTD, .page_bytes = 64,
                                   .row_group_bytes = variant ? 100000 : (size_t)1 << 30};
        struct pq_writer *w;
        assert_int_equal(pq_writer_open(&w, s, path, &o, NULL), 0);
        for (int i = 0; i < rows; i++) {
            pq_write_i64(w, num, (int64_t)i * 7 - 5, 0);
            if (i % 5 == 4)
                pq_write_null(w, tag, 0, 0);
            else
                pq_write_bytes(w, tag, tags[i % 3], strlen(tags[i % 3]), 0);
            pq_write_null(w, none, 0, 0);
            assert_int_equal(pq_writer_end_row(w, NULL), 0);
        }
        struct pq_file_info info = {0};
        assert_int_equal(pq_writer_close(w, &info, NULL), 0);
        assert_int_equal(info.rows, rows);
        assert_int_equal(info.bytes, fs_file_size(path));
        if (variant)
            assert_true(info.row_groups >= 3);
        else
            assert_int_equal(info.row_groups, 1);

        struct pq_reader *r;
        assert_int_equal(pq_reader_open(&r, path, NULL, NULL), 0);
        int tn = -1, nn = -1;
        for (int k = 0; k < pq_reader_nnodes(r); k++) {
            if (pq_reader_node(r, k)->column == tag)
                tn = k;
            if (pq_reader_node(r, k)->column == none)
                nn = k;
        }
        assert_true(tn > 0 && nn > 0);
        for (int i = 0; i < rows; i++) {
            assert_int_equal(pq_reader_next(r, NULL), 1);
            assert_int_equal(pq_reader_row_begin(r), 0);
            struct pq_value pv;
            assert_int_equal(pq_reader_row_value(r, num, 0, &pv), 0);
            assert_int_equal((int64_t)pq_get_le64(pv.fixed), (int64_t)i * 7 - 5);
            assert_int_equal(pq_reader_row_defined(r, tn, 0), i % 5 == 4 ? 0 : 1);
            if (i % 5 != 4) {
                assert_int_equal(pq_reader_row_value(r, tag, 0, &pv), 0);
                assert_int_equal(pv.n, strlen(tags[i % 3]));
                assert_memory_equal(pv.p, tags[i % 3], pv.n);
            }
            assert_int_equal(pq_reader_row_defined(r, nn, 0), 0);
        }
        assert_int_equal(pq_reader_next(r, NULL), 0);
        pq_reader_free(r);
        free(path);
    }
    pq_schema_free(s);
    fs_rm_rf(dir, NULL);
    free(dir);
}

static void test_codec_zstd(void **state) { (void)state; check_codec(PQ_CODEC_ZSTD); }
static void test_codec_snappy(void **state) { (void)state; check_codec(PQ_CODEC_SNAPPY); }
static void test_codec_gzip(void **state) { (void)state; check_codec(PQ_CODEC_GZIP); }
static void test_codec_none(void **state) { (void)state; check_codec(PQ_CODEC_UNCOMPRESSED); }

/* The value of row i of the in-place test's string column: distinct (the dictionary gives up),
 * some sharing their first 8 bytes so min/max need the full comparison, some short with a NUL
 * inside, which the 8-byte key pads with zeros. NULL for a null. */
static size_t inplace_value(int i, char *out, bool *null)
{
    /* Rows 0-2999: no nulls (a page's levels are one short run); later rows: every third one
     * null (a page's levels are longer than the room kept before the values). */
    *null = i >= 3000 && i % 3 == 0;
    if (i % 97 == 5) {
        out[0] = 'k';
        out[1] = '\0';
        out[2] = (char)('a' + i % 26);
        return 3;
    }
    return (size_t)snprintf(out, 64, "prefix00-%07d-%x", (i * 7919) % 9000, (unsigned)i);
}

static void check_pages_in_place(enum pq_codec codec)
{
    char *dir = tmp_dir();
    char *path = xasprintf("%s/inplace.parquet", dir);
    struct pq_schema *s = pq_schema_new();
    int str = pq_schema_add_leaf(s, 0, "s", PQ_OPTIONAL, PQ_BYTE_ARRAY, PQ_LOG_NONE);
    int num = pq_schema_add_leaf(s, 0, "n", PQ_REQUIRED, PQ_INT64, PQ_LOG_NONE);
    pq_schema_finish(s);
    /* Small pages and row groups: many pages per chunk, several chunks; a page holds enough
     * rows that every third one null gives it more level bytes than VALS_HEAD (the copy). */
    struct pq_writer_opts o = {.codec = codec, .page_bytes = 16384,
                               .row_group_bytes = 160 * 1024};
    struct pq_writer *w;
    assert_int_equal(pq_writer_open(&w, s, path, &o, NULL), 0);
    const int rows = 20000;
    char v[64];
    bool null;
    for (int i = 0; i < rows; i++) {
        size_t n = inplace_value(i, v, &null);
        if (null)
            pq_write_null(w, str, 0, 0);
        else
            pq_write_bytes(w, str, v, n, 0);
        pq_write_i64(w, num, (int64_t)i * 1000003, 0);
        assert_int_equal(pq_writer_end_row(w, NULL), 0);
    }
    struct pq_file_info info = {0};
    assert_int_equal(pq_writer_close(w, &info, NULL), 0);
    assert_true(info.row_groups >= 3);

    /* Every value back, in order, through the reader. */
    struct pq_reader *r;
    assert_int_equal(pq_reader_open(&r, path, NULL, NULL), 0);
    int sn = -1;
    for (int k = 0; k < pq_reader_nnodes(r); k++)
        if (pq_reader_node(r, k)->column == str)
            sn = k;
    assert_true(sn > 0);
    for (int i = 0; i < rows; i++) {
        assert_int_equal(pq_reader_next(r, NULL), 1);
        assert_int_equal(pq_reader_row_begin(r), 0);
        size_t n = inplace_value(i, v, &null);
        assert_int_equal(pq_reader_row_defined(r, sn, 0), null ? 0 : 1);
        struct pq_value pv;
        if (!null) {
            assert_int_equal(pq_reader_row_value(r, str, 0, &pv), 0);
            assert_int_equal(pv.n, n);
            assert_memory_equal(pv.p, v, n);
        }
        assert_int_equal(pq_reader_row_value(r, num, 0, &pv), 0);
        assert_int_equal((int64_t)pq_get_le64(pv.fixed), (int64_t)i * 1000003);
    }
    assert_int_equal(pq_reader_next(r, NULL), 0);
    pq_reader_free(r);

    /* Each chunk's min and max of s are those of its rows (bytes order, shorter first). */
    struct pfile f;
    pfile_load(&f, path);
    const struct tv *rgs = tv_get(&f.meta, 4);
    int first = 0;
    for (size_t g = 0; g < rgs->nkids; g++) {
        int64_t nrows = tv_int(&rgs->kids[g], 3);
        char mn[64], mx[64];
        size_t mnl = 0, mxl = 0;
        bool any = false;
        for (int i = first; i < first + (int)nrows; i++) {
            size_t n = inplace_value(i, v, &null);
            if (null)
                continue;
            int cmn = memcmp(v, mn, n < mnl ? n : mnl);
            int cmx = memcmp(v, mx, n < mxl ? n : mxl);
            if (!any || cmn < 0 || (cmn == 0 && n < mnl)) {
                memcpy(mn, v, n);
                mnl = n;
            }
            if (!any || cmx > 0 || (cmx == 0 && n > mxl)) {
                memcpy(mx, v, n);
                mxl = n;
            }
            any = true;
        }
        const struct tv *st = tv_get(chunk_meta(&f, g, 0), 12);
        const struct tv *smax = tv_get(st, 5), *smin = tv_get(st, 6);
        assert_non_null(smax);
        assert_non_null(smin);
        assert_int_equal(smin->binlen, mnl);
        assert_memory_equal(smin->bin, mn, mnl);
        assert_int_equal(smax->binlen, mxl);
        assert_memory_equal(smax->bin, mx, mxl);
        first += (int)nrows;
    }
    assert_int_equal(first, rows);
    pfile_free(&f);
    pq_schema_free(s);
    free(path);
    fs_rm_rf(dir, NULL);
    free(dir);
}

static void test_pages_in_place(void **state)
{
    (void)state;
    check_pages_in_place(PQ_CODEC_ZSTD);
    check_pages_in_place(PQ_CODEC_UNCOMPRESSED);
    check_pages_in_place(PQ_CODEC_SNAPPY);
    check_pages_in_place(PQ_CODEC_GZIP);
}

/* ------------------------------------------------------------------ zstd's entropy mode */

static uint64_t mix64(uint64_t x)
{
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ull;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

#define ENTROPY_PAGE_BYTES (128 * 1024)
#define ENTROPY_PAGE_ROWS (ENTROPY_PAGE_BYTES / 8)
#define ENTROPY_NOISE_ROWS (3 * ENTROPY_PAGE_ROWS)
#define ENTROPY_ROWS (24 * ENTROPY_PAGE_ROWS)

/* Row i of the entropy test: three pages of random numbers (nothing repeats: level 1 cannot
 * shrink them, the column takes the entropy mode), then numbers drawn from 512 random ones,
 * which zstd's level 1 shrinks to about a quarter of a 128 KiB page but the entropy mode only
 * to about a third: above the way out of the entropy mode (1/5) measured in that mode, below
 * the way in (3/10) measured at level 1. */
static int64_t entropy_value(int i)
{
    uint64_t k = i < ENTROPY_NOISE_ROWS ? (uint64_t)i : 1000000u + mix64((uint64_t)i) % 512;
    return (int64_t)mix64(k * 0x9e3779b97f4a7c15ull + 1);
}

/* Pages of a column that turns to the entropy mode and whose data then compresses well at
 * level 1 only: every value reads back, the column goes back to level 1 (asked on a page at
 * level 1, not by the entropy mode's own size) and stays there. A page is known to be at level
 * 1 when compressing its decompressed bytes at level 1 gives its bytes exactly. */
static void test_entropy_pages(void **state)
{
    (void)state;
    char *dir = tmp_dir();
    char *path = xasprintf("%s/entropy.parquet", dir);
    struct pq_schema *s = pq_schema_new();
    int col = pq_schema_add_leaf(s, 0, "v", PQ_REQUIRED, PQ_INT64, PQ_LOG_NONE);
    pq_schema_finish(s);
    struct pq_writer_opts o = {.codec = PQ_CODEC_ZSTD, .page_bytes = ENTROPY_PAGE_BYTES};
    struct pq_writer *w;
    assert_int_equal(pq_writer_open(&w, s, path, &o, NULL), 0);
    for (int i = 0; i < ENTROPY_ROWS; i++) {
        pq_write_i64(w, col, entropy_value(i), 0);
        assert_int_equal(pq_writer_end_row(w, NULL), 0);
    }
    struct pq_file_info info = {0};
    assert_int_equal(pq_writer_close(w, &info, NULL), 0);
    assert_int_equal(info.row_groups, 1);

    struct pq_reader *r;
    assert_int_equal(pq_reader_open(&r, path, NULL, NULL), 0);
    for (int i = 0; i < ENTROPY_ROWS; i++) {
        assert_int_equal(pq_reader_next(r, NULL), 1);
        assert_int_equal(pq_reader_row_begin(r), 0);
        struct pq_value pv;
        assert_int_equal(pq_reader_row_value(r, col, 0, &pv), 0);
        assert_int_equal((int64_t)pq_get_le64(pv.fixed), entropy_value(i));
    }
    assert_int_equal(pq_reader_next(r, NULL), 0);
    pq_reader_free(r);

    /* Walk the chunk's pages: which are at level 1, which in the entropy mode. */
    struct pfile f;
    pfile_load(&f, path);
    const struct tv *m = chunk_meta(&f, 0, 0);
    size_t at = (size_t)tv_int(m, 9), end = at + (size_t)tv_int(m, 7);
    ZSTD_CCtx *cc = ZSTD_createCCtx();
    assert_non_null(cc);
    assert_false(ZSTD_isError(ZSTD_CCtx_setParameter(cc, ZSTD_c_compressionLevel, 1)));
    int pages = 0, entropy_pages = 0, first_entropy = -1, back_at = -1;
    int64_t rows_before = 0; /* rows in the pages before this one */
    while (at < end) {
        struct rd rr = {f.data + at, f.data + end, 0};
        struct tv ph;
        memset(&ph, 0, sizeof(ph));
        rd_struct(&rr, &ph);
        assert_int_equal(rr.bad, 0);
        assert_int_equal(tv_int(&ph, 1), 0); /* a data page: no dictionary for numbers */
        size_t unc = (size_t)tv_int(&ph, 2), comp = (size_t)tv_int(&ph, 3);
        int64_t nvals = tv_int(tv_get(&ph, 5), 1);
        const uint8_t *body = rr.p;
        assert_true(body + comp <= f.data + end);
        uint8_t *raw = xmalloc(unc), *again = xmalloc(ZSTD_compressBound(unc));
        assert_int_equal(ZSTD_decompress(raw, unc, body, comp), unc);
        size_t l1 = ZSTD_compress2(cc, again, ZSTD_compressBound(unc), raw, unc);
        assert_false(ZSTD_isError(l1));
        bool level1 = l1 == comp && memcmp(again, body, comp) == 0;
        if (!level1) {
            /* the entropy mode, on the repeating data: larger than level 1 makes it */
            assert_true(rows_before >= ENTROPY_NOISE_ROWS);
            assert_true(comp > l1);
            assert_int_equal(back_at, -1); /* once back at level 1, the column stays there */
            entropy_pages++;
            if (first_entropy < 0)
                first_entropy = pages;
        } else if (first_entropy >= 0 && back_at < 0) {
            back_at = pages;
        }
        free(raw);
        free(again);
        tv_free(&ph);
        rows_before += nvals;
        at = (size_t)(body - f.data) + comp;
        pages++;
    }
    assert_int_equal(at, end);
    assert_int_equal(rows_before, ENTROPY_ROWS);
    assert_true(pages >= 20);
    /* in the entropy mode on the repeating data for a while, then back at level 1 for good */
    assert_true(entropy_pages >= 8);
    assert_true(back_at > first_entropy && back_at < pages - 3);
    ZSTD_freeCCtx(cc);
    pfile_free(&f);
    pq_schema_free(s);
    free(path);
    fs_rm_rf(dir, NULL);
    free(dir);
}

static void test_levels_in_pages(void **state)
{
    (void)state;
    /* A small nested file, uncompressed, so the first page of items.list.element.qty can be
     * read directly: rep levels, def levels, then the PLAIN values. */
    char *dir = tmp_dir();
    char *path = xasprintf("%s/n.parquet", dir);
    struct nested n;
    nested_schema(&n);
    struct pq_writer_opts o = {.codec = PQ_CODEC_UNCOMPRESSED};
    struct pq_writer *w;
    assert_int_equal(pq_writer_open(&w, n.s, path, &o, NULL), 0);
    /* Row 0: items = [{qty 1}, null]; row 1: items = null; row 2: items = []. */
    for (int i = 0; i < 3; i++) {
        pq_write_i32(w, n.id, i, 0);
        pq_write_null(w, n.first, 0, 0);
        pq_write_null(w, n.last, 0, 0);
        if (i == 0) {
            pq_write_null(w, n.sku, 3, 0);
            pq_write_i32(w, n.qty, 1, 0);
            pq_write_null(w, n.sku, 2, 1);
            pq_write_null(w, n.qty, 2, 1);
        } else {
            pq_write_null(w, n.sku, i == 1 ? 0 : 1, 0);
            pq_write_null(w, n.qty, i == 1 ? 0 : 1, 0);
        }
        pq_write_null(w, n.key, 0, 0);
        pq_write_null(w, n.value, 0, 0);
        assert_int_equal(pq_writer_end_row(w, NULL), 0);
    }
    assert_int_equal(pq_writer_close(w, NULL, NULL), 0);
    struct pfile f;
    pfile_load(&f, path);
    const struct tv *m = chunk_meta(&f, 0, (size_t)n.qty);
    assert_int_equal(tv_int(m, 5), 4);
    assert_int_equal(tv_int(tv_get(m, 12), 3), 3);
    struct rd r = {f.data + tv_int(m, 9), f.data + f.len, 0};
    struct tv ph;
    memset(&ph, 0, sizeof(ph));
    rd_struct(&r, &ph);
    /* rep 0,1,0,0 at width 1: packed 0b0010 -> 0x02; def 4,2,0,1 at width 3:
     * 100 010 000 001 -> bits 0..11 = 0x114 -> 0x14 0x02 0x00; value 1. */
    static const uint8_t want[] = {2, 0, 0, 0, 0x03, 0x02,
                                   4, 0, 0, 0, 0x03, 0x14, 0x02, 0x00,
                                   1, 0, 0, 0};
    assert_int_equal(tv_int(&ph, 2), sizeof(want));
    assert_memory_equal(r.p, want, sizeof(want));
    tv_free(&ph);
    pfile_free(&f);
    pq_schema_free(n.s);
    free(path);
    fs_rm_rf(dir, NULL);
    free(dir);
}

static void test_string_stats_truncation(void **state)
{
    (void)state;
    char *dir = tmp_dir();
    char *path = xasprintf("%s/s.parquet", dir);
    struct pq_schema *s = pq_schema_new();
    int c = pq_schema_add_leaf(s, 0, "s", PQ_OPTIONAL, PQ_BYTE_ARRAY, PQ_LOG_STRING);
    int e = pq_schema_add_leaf(s, 0, "e", PQ_OPTIONAL, PQ_BYTE_ARRAY, PQ_LOG_STRING);
    pq_schema_finish(s);
    struct pq_writer *w;
    assert_int_equal(pq_writer_open(&w, s, path, NULL, NULL), 0);
    char lo[100], hi[100];
    memset(lo, 'a', sizeof(lo));
    memcpy(lo + 62, "\xC3\xA9\xC3\xA9", 4); /* a two-byte character straddles byte 64 */
    memset(hi, 'z', sizeof(hi));
    pq_write_bytes(w, c, lo, sizeof(lo), 0);
    pq_write_null(w, e, 0, 0);
    assert_int_equal(pq_writer_end_row(w, NULL), 0);
    pq_write_bytes(w, c, hi, sizeof(hi), 0);
    pq_write_null(w, e, 0, 0);
    assert_int_equal(pq_writer_end_row(w, NULL), 0);
    assert_int_equal(pq_writer_close(w, NULL, NULL), 0);
    struct pfile f;
    pfile_load(&f, path);
    const struct tv *st = tv_get(chunk_meta(&f, 0, 0), 12);
    const struct tv *mn = tv_get(st, 6);
    assert_int_equal(mn->binlen, 64); /* 62 'a' + one whole 2-byte character */
    assert_memory_equal(mn->bin, lo, 64);
    assert_int_equal(tv_int(st, 8), 0);  /* min not exact */
    assert_null(tv_get(st, 5));          /* max too long: left out */
    /* All-null column: null count only. */
    st = tv_get(chunk_meta(&f, 0, 1), 12);
    assert_int_equal(tv_int(st, 3), 2);
    assert_null(tv_get(st, 5));
    assert_null(tv_get(st, 6));
    assert_null(tv_get(chunk_meta(&f, 0, 1), 11)); /* no dictionary without values */
    pfile_free(&f);
    pq_schema_free(s);
    free(path);
    fs_rm_rf(dir, NULL);
    free(dir);
}

static void test_misuse(void **state)
{
    (void)state;
    char *dir = tmp_dir();
    char *path = xasprintf("%s/m.parquet", dir);
    struct flat f;
    flat_schema(&f);
    struct pq_writer *w;
    struct ing_err err;
    /* A row missing a column. */
    assert_int_equal(pq_writer_open(&w, f.s, path, NULL, &err), 0);
    pq_write_bytes(w, f.id, "x", 1, 0);
    assert_int_equal(pq_writer_end_row(w, &err), ING_EINVAL);
    assert_string_equal(err.field, "n");
    assert_int_equal(pq_writer_close(w, NULL, &err), ING_EINVAL);
    /* A null in a required column. */
    assert_int_equal(pq_writer_open(&w, f.s, path, NULL, &err), 0);
    pq_write_null(w, f.id, 0, 0);
    assert_int_equal(pq_writer_end_row(w, &err), ING_EINVAL);
    assert_non_null(strstr(err.msg, "definition level"));
    pq_writer_abort(w);
    /* A value of the wrong type, an unknown column. */
    assert_int_equal(pq_writer_open(&w, f.s, path, NULL, &err), 0);
    pq_write_i32(w, f.n, 1, 0);
    assert_int_equal(pq_writer_end_row(w, &err), ING_EINVAL);
    pq_writer_abort(w);
    assert_int_equal(pq_writer_open(&w, f.s, path, NULL, &err), 0);
    pq_write_i32(w, 99, 1, 0);
    assert_int_equal(pq_writer_close(w, NULL, &err), ING_EINVAL);
    pq_writer_abort(NULL);
    /* A directory that does not exist. */
    char *bad = xasprintf("%s/missing/x.parquet", dir);
    assert_int_equal(pq_writer_open(&w, f.s, bad, NULL, &err), ING_EIO);
    assert_null(w);
    free(bad);
    /* An empty file is still a valid Parquet file. */
    struct pq_file_info info;
    assert_int_equal(pq_writer_open(&w, f.s, path, NULL, &err), 0);
    assert_int_equal(pq_writer_close(w, &info, &err), 0);
    assert_int_equal(info.rows, 0);
    assert_int_equal(info.row_groups, 0);
    struct pfile pf;
    pfile_load(&pf, path);
    assert_int_equal(tv_get(&pf.meta, 4)->nkids, 0);
    pfile_free(&pf);
    pq_schema_free(f.s);
    free(path);
    fs_rm_rf(dir, NULL);
    free(dir);
}

/* Sample files for the DuckDB test; checked here too so the test fails without DuckDB. */
static void test_samples(void **state)
{
    (void)state;
    const char *env = getenv("PQ_SAMPLE_DIR");
    char *dir = env && *env ? xstrdup(env) : tmp_dir();
    assert_int_equal(fs_mkdirs(dir, NULL), 0);
    struct pq_file_info info;
    char *p = xasprintf("%s/flat.parquet", dir);
    assert_int_equal(write_flat(p, PQ_CODEC_ZSTD, 1000, &info), 0);
    assert_int_equal(info.rows, 1000);
    free(p);
    p = xasprintf("%s/nested.parquet", dir);
    assert_int_equal(write_nested(p, 300, &info), 0);
    assert_int_equal(info.rows, 300);
    free(p);
    static const struct { enum pq_codec c; const char *name; } codecs[] = {
        {PQ_CODEC_ZSTD, "zstd"}, {PQ_CODEC_SNAPPY, "snappy"}, {PQ_CODEC_GZIP, "gzip"},
        {PQ_CODEC_UNCOMPRESSED, "none"}};
    for (size_t i = 0; i < ING_ARRAY_LEN(codecs); i++) {
        p = xasprintf("%s/codec_%s.parquet", dir, codecs[i].name);
        assert_int_equal(write_flat(p, codecs[i].c, 1000, &info), 0);
        struct pfile f;
        pfile_load(&f, p);
        assert_int_equal(tv_int(chunk_meta(&f, 0, 0), 4), codecs[i].c);
        pfile_free(&f);
        free(p);
    }
    p = xasprintf("%s/multi_rg.parquet", dir);
    assert_int_equal(write_multi(p, 100000, 8 * 1024, 64 * 1024, &info), 0);
    assert_true(info.row_groups > 1);
    free(p);
    if (!(env && *env))
        fs_rm_rf(dir, NULL);
    free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_thrift_varint_zigzag),
        cmocka_unit_test(test_thrift_fields),
        cmocka_unit_test(test_thrift_nested_lists_binary),
        cmocka_unit_test(test_bit_width),
        cmocka_unit_test(test_rle_hybrid),
        cmocka_unit_test(test_bool_pack),
        cmocka_unit_test(test_schema_levels),
        cmocka_unit_test(test_schema_invalid),
        cmocka_unit_test(test_file_layout),
        cmocka_unit_test(test_compress_to),
        cmocka_unit_test(test_many_pages_one_row_group),
        cmocka_unit_test(test_dictionary_fallback_and_row_groups),
        cmocka_unit_test(test_dictionary_skipped_for_distinct_values),
        cmocka_unit_test(test_codec_zstd),
        cmocka_unit_test(test_codec_snappy),
        cmocka_unit_test(test_codec_gzip),
        cmocka_unit_test(test_codec_none),
        cmocka_unit_test(test_levels_in_pages),
        cmocka_unit_test(test_pages_in_place),
        cmocka_unit_test(test_entropy_pages),
        cmocka_unit_test(test_string_stats_truncation),
        cmocka_unit_test(test_misuse),
        cmocka_unit_test(test_samples),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
