/*
 * test_pq_spans.c - the Parquet writer's null spans (pq_write_nulls over a wide range, kept as
 * one pending count per row and applied to the columns in bulk): rows that mix spans, values in
 * the same columns, other null levels and narrower ranges, across page cuts and row groups, read
 * back with pq_reader exactly as written; and a broken row (a span and a value for the same
 * column) is still refused with the column's name. Null sets (pq_write_null_set: several ranges
 * of a row as one step) give the same rows as the same ranges written one by one, and rows
 * that break the contract through them are refused the same way.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "parquet/pq_reader.h"
#include "parquet/pq_writer.h"
#include "util/buf.h"
#include "util/mem.h"

#define WIDE 12         /* leaves of the wide group */

/* {id: int64, g: {a0..a11: string}, n: {x: int32, y: int32}} - g's and n's leaves are optional
 * in an optional group, so a null is def 0 (no group) or def 1 (group, no value). */
static struct pq_schema *make_schema(void)
{
    struct pq_schema *s = pq_schema_new();
    pq_schema_add_leaf(s, 0, "id", PQ_REQUIRED, PQ_INT64, PQ_LOG_INT64);
    int g = pq_schema_add_group(s, 0, "g", PQ_OPTIONAL, PQ_LOG_NONE);
    for (int i = 0; i < WIDE; i++) {
        char name[16];
        snprintf(name, sizeof(name), "a%d", i);
        pq_schema_add_leaf(s, g, name, PQ_OPTIONAL, PQ_BYTE_ARRAY, PQ_LOG_STRING);
    }
    int n = pq_schema_add_group(s, 0, "n", PQ_OPTIONAL, PQ_LOG_NONE);
    pq_schema_add_leaf(s, n, "x", PQ_OPTIONAL, PQ_INT32, PQ_LOG_INT32);
    pq_schema_add_leaf(s, n, "y", PQ_OPTIONAL, PQ_INT32, PQ_LOG_INT32);
    pq_schema_finish(s);
    return s;
}

#define COL_G0 1
#define COL_GLAST (COL_G0 + WIDE - 1)
#define COL_X (COL_GLAST + 1)

/* Row r, written and expected as JSON. Most rows leave g out (the span), some fill one leaf of
 * g (the span is dropped and made again), some have g present but empty (another level), and n
 * alternates between a narrow null range and values. */
static void write_row(struct pq_writer *w, int64_t r, struct buf *expect)
{
    pq_write_i64(w, 0, r, 0);
    buf_printf(expect, "{\"id\":%lld,\"g\":", (long long)r);
    if (r % 97 == 5) {
        int filled = (int)(r % WIDE);
        buf_append_str(expect, "{");
        for (int i = 0; i < WIDE; i++) {
            if (i == filled) {
                char v[32];
                int len = snprintf(v, sizeof(v), "v%lld", (long long)r);
                pq_write_bytes(w, COL_G0 + i, v, (size_t)len, 0);
                buf_printf(expect, "%s\"a%d\":\"%s\"", i ? "," : "", i, v);
            } else {
                pq_write_null(w, COL_G0 + i, 1, 0);
                buf_printf(expect, "%s\"a%d\":null", i ? "," : "", i);
            }
        }
        buf_append_str(expect, "}");
    } else if (r % 31 == 7) {
        pq_write_nulls(w, COL_G0, COL_GLAST, 1, 0); /* g present, every leaf null */
        buf_append_str(expect, "{");
        for (int i = 0; i < WIDE; i++)
            buf_printf(expect, "%s\"a%d\":null", i ? "," : "", i);
        buf_append_str(expect, "}");
    } else {
        pq_write_nulls(w, COL_G0, COL_GLAST, 0, 0);
        buf_append_str(expect, "null");
    }
    if (r % 3 == 0) {
        pq_write_i32(w, COL_X, (int32_t)r, 0);
        pq_write_i32(w, COL_X + 1, (int32_t)-r, 0);
        buf_printf(expect, ",\"n\":{\"x\":%lld,\"y\":%lld}}\n", (long long)r, (long long)-r);
    } else {
        pq_write_nulls(w, COL_X, COL_X + 1, 0, 0);
        buf_append_str(expect, ",\"n\":null}\n");
    }
}

static void test_spans_read_back(void **state)
{
    (void)state;
    char path[] = "/tmp/test_pq_spans.XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    struct pq_schema *s = make_schema();
    /* Small pages and row groups: the spans meet page cuts and row group ends mid-count. */
    struct pq_writer_opts o = {.codec = PQ_CODEC_ZSTD, .page_bytes = 700,
                               .row_group_bytes = 40000};
    struct pq_writer *w = NULL;
    assert_int_equal(pq_writer_open(&w, s, path, &o, NULL), 0);
    struct buf expect = {0};
    const int64_t rows = 5000;
    for (int64_t r = 0; r < rows; r++) {
        write_row(w, r, &expect);
        assert_int_equal(pq_writer_end_row(w, NULL), 0);
    }
    struct pq_file_info info;
    assert_int_equal(pq_writer_close(w, &info, NULL), 0);
    assert_int_equal(info.rows, rows);
    assert_true(info.row_groups > 1);

    struct pq_reader *rd = NULL;
    struct ing_err err;
    ing_err_clear(&err);
    assert_int_equal(pq_reader_open(&rd, path, NULL, &err), 0);
    assert_int_equal(pq_reader_num_rows(rd), rows);
    struct buf got = {0}, line = {0};
    int more;
    while ((more = pq_reader_next(rd, &err)) > 0) {
        buf_reset(&line);
        assert_int_equal(pq_reader_row_json(rd, &line, &err), 0);
        buf_append(&got, line.data, line.len);
        buf_append_byte(&got, '\n');
    }
    assert_int_equal(more, 0);
    assert_int_equal(got.len, expect.len);
    assert_memory_equal(got.data, expect.data, expect.len);
    pq_reader_free(rd);
    buf_free(&got);
    buf_free(&line);
    buf_free(&expect);
    pq_schema_free(s);
    unlink(path);
}

static void test_span_and_value_in_one_row_is_refused(void **state)
{
    (void)state;
    char path[] = "/tmp/test_pq_spans.XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    struct pq_schema *s = make_schema();
    struct pq_writer *w = NULL;
    assert_int_equal(pq_writer_open(&w, s, path, NULL, NULL), 0);
    struct buf scratch = {0};
    for (int64_t r = 0; r < 3; r++) { /* the span exists and has pending rows */
        write_row(w, 1 + r * 3, &scratch);
        assert_int_equal(pq_writer_end_row(w, NULL), 0);
    }
    /* A span row, then a value for one of its columns in the same row. */
    pq_write_i64(w, 0, 99, 0);
    pq_write_nulls(w, COL_G0, COL_GLAST, 0, 0);
    pq_write_bytes(w, COL_G0 + 4, "x", 1, 0);
    pq_write_nulls(w, COL_X, COL_X + 1, 0, 0);
    struct ing_err err;
    ing_err_clear(&err);
    assert_int_equal(pq_writer_end_row(w, &err), ING_EINVAL);
    assert_string_equal(err.field, "g.a4");
    pq_writer_abort(w);
    buf_free(&scratch);
    pq_schema_free(s);
    unlink(path);
}

static void test_span_twice_in_one_row_is_refused(void **state)
{
    (void)state;
    char path[] = "/tmp/test_pq_spans.XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    struct pq_schema *s = make_schema();
    struct pq_writer *w = NULL;
    assert_int_equal(pq_writer_open(&w, s, path, NULL, NULL), 0);
    pq_write_i64(w, 0, 1, 0);
    pq_write_nulls(w, COL_G0, COL_GLAST, 0, 0);
    pq_write_nulls(w, COL_G0, COL_GLAST, 0, 0);
    pq_write_nulls(w, COL_X, COL_X + 1, 0, 0);
    struct ing_err err;
    ing_err_clear(&err);
    assert_int_equal(pq_writer_end_row(w, &err), ING_EINVAL);
    assert_string_equal(err.field, "g.a0");
    pq_writer_abort(w);
    pq_schema_free(s);
    unlink(path);
}

/* Row r with its null ranges as one null set or range by range: shapes change from row to row
 * (sets are made, hit, dropped by values in their columns and made again), and one shape has no
 * null range at all. */
static void write_set_row(struct pq_writer *w, int64_t r, bool as_set)
{
    int32_t ranges[6];
    size_t n = 0;
    uint64_t key = 0;
    pq_write_i64(w, 0, r, 0);
    int shape = (int)(r % 11 < 6 ? 0 : r % 11 < 9 ? 1 : r % 11 < 10 ? 2 : 3);
    if (shape == 0) { /* g and n absent */
        int32_t s0[6] = {COL_G0, COL_GLAST, 0, COL_X, COL_X + 1, 0};
        memcpy(ranges, s0, sizeof(s0));
        n = 2;
        key = 1;
    } else if (shape == 1) { /* g present with a3 only, n absent */
        int32_t s1[6] = {COL_G0, COL_G0 + 2, 1, COL_G0 + 4, COL_GLAST, 1};
        memcpy(ranges, s1, sizeof(s1));
        n = 2;
        key = 2;
        pq_write_bytes(w, COL_G0 + 3, "three", 5, 0);
        pq_write_nulls(w, COL_X, COL_X + 1, 0, 0); /* not part of the set */
    } else if (shape == 2) { /* g absent, n with values */
        ranges[0] = COL_G0;
        ranges[1] = COL_GLAST;
        ranges[2] = 0;
        n = 1;
        key = 3;
        pq_write_i32(w, COL_X, (int32_t)r, 0);
        pq_write_i32(w, COL_X + 1, (int32_t)-r, 0);
    } else { /* every column a value: no null range */
        for (int i = 0; i < WIDE; i++)
            pq_write_bytes(w, COL_G0 + i, "v", 1, 0);
        pq_write_i32(w, COL_X, 1, 0);
        pq_write_i32(w, COL_X + 1, 2, 0);
    }
    if (as_set && n) {
        pq_write_null_set(w, ranges, n, key);
    } else {
        for (size_t i = 0; i < n; i++)
            pq_write_nulls(w, ranges[3 * i], ranges[3 * i + 1], ranges[3 * i + 2], 0);
    }
}

static void write_set_file(const char *path, bool as_set, int64_t rows)
{
    struct pq_schema *s = make_schema();
    struct pq_writer_opts o = {.codec = PQ_CODEC_ZSTD, .page_bytes = 700,
                               .row_group_bytes = 40000};
    struct pq_writer *w = NULL;
    assert_int_equal(pq_writer_open(&w, s, path, &o, NULL), 0);
    for (int64_t r = 0; r < rows; r++) {
        write_set_row(w, r, as_set);
        assert_int_equal(pq_writer_end_row(w, NULL), 0);
    }
    struct pq_file_info info;
    assert_int_equal(pq_writer_close(w, &info, NULL), 0);
    assert_int_equal(info.rows, rows);
    assert_true(info.row_groups > 1);
    pq_schema_free(s);
}

/* Every row of the file as JSON lines. */
static void rows_of(const char *path, struct buf *out)
{
    struct pq_reader *rd = NULL;
    struct ing_err err;
    ing_err_clear(&err);
    assert_int_equal(pq_reader_open(&rd, path, NULL, &err), 0);
    struct buf line = {0};
    int more;
    while ((more = pq_reader_next(rd, &err)) > 0) {
        buf_reset(&line);
        assert_int_equal(pq_reader_row_json(rd, &line, &err), 0);
        buf_append(out, line.data, line.len);
        buf_append_byte(out, '\n');
    }
    assert_int_equal(more, 0);
    pq_reader_free(rd);
    buf_free(&line);
}

static void test_null_sets_same_rows_as_ranges(void **state)
{
    (void)state;
    char a[] = "/tmp/test_pq_spans.XXXXXX", b[] = "/tmp/test_pq_spans.XXXXXX";
    int fa = mkstemp(a), fb = mkstemp(b);
    assert_true(fa >= 0 && fb >= 0);
    close(fa);
    close(fb);
    write_set_file(a, true, 7000);
    write_set_file(b, false, 7000);
    /* Pages are cut where the pending counts are applied, so the files may differ in layout;
     * the rows may not. */
    struct buf ra = {0}, rb = {0};
    rows_of(a, &ra);
    rows_of(b, &rb);
    assert_int_equal(ra.len, rb.len);
    assert_memory_equal(ra.data, rb.data, ra.len);
    /* Row 6 is shape 1: g.a3 and nulls at level 1 around it, n absent. */
    const char *row6 = "{\"id\":6,\"g\":{\"a0\":null,\"a1\":null,\"a2\":null,\"a3\":\"three\","
                       "\"a4\":null,\"a5\":null,\"a6\":null,\"a7\":null,\"a8\":null,\"a9\":null,"
                       "\"a10\":null,\"a11\":null},\"n\":null}\n";
    buf_append_byte(&ra, 0);
    assert_non_null(strstr((const char *)ra.data, row6));
    assert_non_null(strstr((const char *)ra.data, "{\"id\":0,\"g\":null,\"n\":null}\n"));
    buf_free(&ra);
    buf_free(&rb);
    unlink(a);
    unlink(b);
}

/* Rows broken through a null set: a value in one of its columns, two overlapping ranges, a bad
 * definition level. */
static void test_null_set_misuse_is_refused(void **state)
{
    (void)state;
    char path[] = "/tmp/test_pq_spans.XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    struct pq_schema *s = make_schema();
    const int32_t both[6] = {COL_G0, COL_GLAST, 0, COL_X, COL_X + 1, 0};
    const int32_t overlap[6] = {COL_G0, COL_G0 + 5, 0, COL_G0 + 5, COL_X + 1, 0};
    const int32_t bad_def[6] = {COL_G0, COL_GLAST, 0, COL_X, COL_X + 1, 2};
    struct ing_err err;
    for (int kind = 0; kind < 3; kind++) {
        struct pq_writer *w = NULL;
        assert_int_equal(pq_writer_open(&w, s, path, NULL, NULL), 0);
        for (int64_t r = 0; r < 3; r++) { /* the set exists and has pending rows */
            pq_write_i64(w, 0, r, 0);
            pq_write_null_set(w, both, 2, 7);
            assert_int_equal(pq_writer_end_row(w, NULL), 0);
        }
        pq_write_i64(w, 0, 99, 0);
        if (kind == 0) {
            pq_write_null_set(w, both, 2, 7);
            pq_write_i32(w, COL_X, 5, 0);
        } else {
            pq_write_null_set(w, kind == 1 ? overlap : bad_def, 2, 8);
        }
        ing_err_clear(&err);
        assert_int_equal(pq_writer_end_row(w, &err), ING_EINVAL);
        if (kind == 0)
            assert_string_equal(err.field, "n.x");
        else if (kind == 1)
            assert_string_equal(err.field, "g.a5");
        else
            assert_non_null(strstr(err.msg, "null with a bad definition level: column 13 (n.x)"));
        pq_writer_abort(w);
    }
    pq_schema_free(s);
    unlink(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_spans_read_back),
        cmocka_unit_test(test_span_and_value_in_one_row_is_refused),
        cmocka_unit_test(test_span_twice_in_one_row_is_refused),
        cmocka_unit_test(test_null_sets_same_rows_as_ranges),
        cmocka_unit_test(test_null_set_misuse_is_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
