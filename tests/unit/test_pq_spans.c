/*
 * test_pq_spans.c - the Parquet writer's null spans (pq_write_nulls over a wide range, kept as
 * one pending count per row and applied to the columns in bulk): rows that mix spans, values in
 * the same columns, other null levels and narrower ranges, across page cuts and row groups, read
 * back with pq_reader exactly as written; and a broken row (a span and a value for the same
 * column) is still refused with the column's name.
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_spans_read_back),
        cmocka_unit_test(test_span_and_value_in_one_row_is_refused),
        cmocka_unit_test(test_span_twice_in_one_row_is_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
