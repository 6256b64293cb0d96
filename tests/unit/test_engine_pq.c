/*
 * test_engine_pq.c - Parquet input on several threads: a Parquet file of many row groups, with
 * bad rows (impossible dates: conversion errors; names that are not UTF-8: corrupt rows) in
 * several row groups, is ingested with threads = 1 and threads = 4, and both runs must say the
 * same: counts, errors[], first_error, previews, diagnostics files byte for byte, and the same
 * rows in the same order in the part files (read back with pq_reader), with partial ingestion on,
 * off and with a row limit in between. Also pq_reader's row-group range option (file-absolute
 * row numbers, ranges outside the file refused).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/gen.h"
#include "ingest/engine.h"
#include "parquet/pq_reader.h"
#include "parquet/pq_writer.h"
#include "schema/xdm_plan.h"
#include "util/buf.h"
#include "util/fs.h"
#include "util/mem.h"

#define ROWS 3000
#define BAD_DATE_EVERY 37   /* rows 37, 74, ...: joinDate 2001-13-45 */
#define BAD_UTF8_EVERY 53   /* rows 53, 106, ... (not already bad): firstName not UTF-8 */
#define THREADS 4

struct fixture {
    char dir[64];
    struct xdm_plan *plan;
    char *pq;           /* the Parquet input */
    int row_groups;
    int64_t bad_dates, bad_utf8;
    int seq;
};

static struct fixture g_fx;

static bool bad_date(int64_t row) { return row % BAD_DATE_EVERY == 0; }
static bool bad_utf8(int64_t row) { return !bad_date(row) && row % BAD_UTF8_EVERY == 0; }

/* The loyalty layout of `ingot gen`, written by our own writer with small row groups. */
static int write_input(const char *path)
{
    struct pq_schema *s = pq_schema_new();
    int tmd = pq_schema_add_group(s, 0, "_techmarketingdemos", PQ_OPTIONAL, PQ_LOG_NONE);
    int sys = pq_schema_add_group(s, tmd, "systemIdentifier", PQ_OPTIONAL, PQ_LOG_NONE);
    int c_lid = pq_schema_add_leaf(s, sys, "loyaltyId", PQ_OPTIONAL, PQ_BYTE_ARRAY, PQ_LOG_STRING);
    int c_crm = pq_schema_add_leaf(s, sys, "crmId", PQ_OPTIONAL, PQ_BYTE_ARRAY, PQ_LOG_STRING);
    int loy = pq_schema_add_group(s, 0, "loyalty", PQ_OPTIONAL, PQ_LOG_NONE);
    int c_pts = pq_schema_add_leaf(s, loy, "points", PQ_OPTIONAL, PQ_INT64, PQ_LOG_INT64);
    int c_tier = pq_schema_add_leaf(s, loy, "tier", PQ_OPTIONAL, PQ_BYTE_ARRAY, PQ_LOG_STRING);
    int c_join = pq_schema_add_leaf(s, loy, "joinDate", PQ_OPTIONAL, PQ_BYTE_ARRAY, PQ_LOG_STRING);
    int person = pq_schema_add_group(s, 0, "person", PQ_OPTIONAL, PQ_LOG_NONE);
    int name = pq_schema_add_group(s, person, "name", PQ_OPTIONAL, PQ_LOG_NONE);
    int c_first = pq_schema_add_leaf(s, name, "firstName", PQ_OPTIONAL, PQ_BYTE_ARRAY,
                                     PQ_LOG_STRING);
    pq_schema_finish(s);
    struct pq_writer_opts o = {.codec = PQ_CODEC_SNAPPY, .row_group_bytes = 16384,
                               .page_bytes = 2048};
    struct pq_writer *w = NULL;
    struct ing_err err;
    ing_err_clear(&err);
    int rc = pq_writer_open(&w, s, path, &o, &err);
    for (int64_t row = 1; rc == 0 && row <= ROWS; row++) {
        char text[64];
        int n = snprintf(text, sizeof(text), "L%07lld", (long long)row);
        pq_write_bytes(w, c_lid, text, (size_t)n, 0);
        if (row % 11 == 0) {
            pq_write_null(w, c_crm, 2, 0); /* a null crmId now and then */
        } else {
            n = snprintf(text, sizeof(text), "crm-%lld", (long long)(row * 7919 % 100003));
            pq_write_bytes(w, c_crm, text, (size_t)n, 0);
        }
        pq_write_i64(w, c_pts, row * 13 % 5000, 0);
        static const char *const tiers[] = {"gold", "silver", "bronze"};
        pq_write_bytes(w, c_tier, tiers[row % 3], strlen(tiers[row % 3]), 0);
        n = bad_date(row) ? snprintf(text, sizeof(text), "2001-13-45")
                          : snprintf(text, sizeof(text), "19%02d-%02d-%02d", (int)(row % 90 + 10),
                                     (int)(row % 12 + 1), (int)(row % 28 + 1));
        pq_write_bytes(w, c_join, text, (size_t)n, 0);
        if (bad_utf8(row))
            pq_write_bytes(w, c_first, "Zo\xff\xfe", 4, 0);
        else
            pq_write_bytes(w, c_first, "Zo\xc3\xab", 4, 0);
        rc = pq_writer_end_row(w, &err);
    }
    struct pq_file_info info = {0};
    if (rc == 0)
        rc = pq_writer_close(w, &info, &err);
    else
        pq_writer_abort(w);
    pq_schema_free(s);
    return rc;
}

static int group_setup(void **state)
{
    (void)state;
    snprintf(g_fx.dir, sizeof(g_fx.dir), "/tmp/test_engine_pq.XXXXXX");
    if (!mkdtemp(g_fx.dir))
        return -1;
    json_t *schema = gen_schema(GEN_LOYALTY, NULL);
    struct ing_err err;
    ing_err_clear(&err);
    int rc = xdm_plan_compile(schema, NULL, &g_fx.plan, &err);
    json_decref(schema);
    if (rc != 0)
        return -1;
    g_fx.pq = xasprintf("%s/loyalty.parquet", g_fx.dir);
    if (write_input(g_fx.pq) != 0)
        return -1;
    struct pq_reader *r = NULL;
    if (pq_reader_open(&r, g_fx.pq, NULL, &err) != 0)
        return -1;
    g_fx.row_groups = pq_reader_num_row_groups(r);
    pq_reader_free(r);
    for (int64_t row = 1; row <= ROWS; row++) {
        g_fx.bad_dates += bad_date(row);
        g_fx.bad_utf8 += bad_utf8(row);
    }
    /* Bad rows in several row groups on several threads need many row groups. */
    return g_fx.row_groups >= 2 * THREADS ? 0 : -1;
}

static int group_teardown(void **state)
{
    (void)state;
    xdm_plan_free(g_fx.plan);
    free(g_fx.pq);
    fs_rm_rf(g_fx.dir, NULL);
    return 0;
}

static char *new_dir(const char *what)
{
    return xasprintf("%s/%s-%d", g_fx.dir, what, ++g_fx.seq);
}

struct outcome {
    int rc;
    struct ing_err err;
    struct engine_result res;
    char *out;
    char *diag;
};

static void run(int64_t max_failed, int preview, int threads, bool diag, struct outcome *oc)
{
    memset(oc, 0, sizeof(*oc));
    ing_err_clear(&oc->err);
    oc->out = new_dir("out");
    struct diag_writer *dw = NULL;
    if (diag) {
        oc->diag = new_dir("diag");
        /* 25 rows per diagnostics file: cuts fall inside ranges and across them */
        assert_int_equal(diag_writer_open(&dw, oc->diag, 25, NULL), 0);
    }
    struct engine_opts o = {.format = ENGINE_PARQUET, .preview_rows = preview,
                            .max_failed_rows = max_failed, .diag = dw, .threads = threads,
                            .split_min_bytes = 1024};
    o.parquet.codec = PQ_CODEC_ZSTD;
    struct engine_file f = {.path = g_fx.pq, .name = "in/loyalty.parquet"};
    oc->rc = engine_run(g_fx.plan, &f, 1, &o, oc->out, &oc->res, &oc->err);
    assert_int_equal(diag_writer_close(dw, NULL), 0);
}

static void outcome_free(struct outcome *oc)
{
    engine_result_free(&oc->res);
    free(oc->out);
    free(oc->diag);
}

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    struct stat st;
    assert_int_equal(fstat(fileno(f), &st), 0);
    char *data = xmalloc((size_t)st.st_size + 1);
    assert_int_equal(fread(data, 1, (size_t)st.st_size, f), (size_t)st.st_size);
    fclose(f);
    *len = (size_t)st.st_size;
    return data;
}

/* Both row_errors folders hold the same files with the same bytes; returns how many. */
static int same_row_errors(const char *a, const char *b)
{
    char *da = xasprintf("%s/row_errors", a), *db = xasprintf("%s/row_errors", b);
    int files = 0, files_b = 0;
    DIR *d = opendir(da);
    assert_non_null(d);
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        char *pa = xasprintf("%s/%s", da, e->d_name), *pb = xasprintf("%s/%s", db, e->d_name);
        size_t la, lb;
        char *ca = slurp(pa, &la), *cb = slurp(pb, &lb);
        assert_int_equal(la, lb);
        assert_memory_equal(ca, cb, la);
        free(ca);
        free(cb);
        free(pa);
        free(pb);
        files++;
    }
    closedir(d);
    d = opendir(db);
    assert_non_null(d);
    while ((e = readdir(d)) != NULL)
        files_b += e->d_name[0] != '.';
    closedir(d);
    assert_int_equal(files, files_b);
    free(da);
    free(db);
    return files;
}

/* Every row of the outcome's part files, in part order, as JSON Lines. */
static void lake_rows(const struct outcome *oc, struct buf *out)
{
    for (size_t i = 0; i < json_array_size(oc->res.files); i++) {
        const char *name = json_string_value(json_object_get(json_array_get(oc->res.files, i),
                                                             "name"));
        char *path = xasprintf("%s/%s", oc->out, name);
        struct pq_reader *r = NULL;
        assert_int_equal(pq_reader_open(&r, path, NULL, NULL), 0);
        int got;
        while ((got = pq_reader_next(r, NULL)) == 1) {
            assert_int_equal(pq_reader_row_json(r, out, NULL), 0);
            assert_int_equal(buf_append_byte(out, '\n'), 0);
        }
        assert_int_equal(got, 0);
        pq_reader_free(r);
        free(path);
    }
}

static void assert_same(const struct outcome *seq, const struct outcome *par)
{
    assert_int_equal(par->rc, seq->rc);
    const struct engine_result *s = &seq->res, *p = &par->res;
    assert_int_equal(p->input_bytes, s->input_bytes);
    assert_int_equal(p->input_records, s->input_records);
    assert_int_equal(p->failed_records, s->failed_records);
    for (int k = 0; k < DIAG_NKINDS; k++)
        assert_int_equal(p->failed_by_kind[k], s->failed_by_kind[k]);
    assert_int_equal(p->batch_error, s->batch_error);
    assert_true(json_equal(p->errors, s->errors));
    assert_true(p->preview == s->preview || json_equal(p->preview, s->preview));
    assert_int_equal(p->first_error.code, s->first_error.code);
    assert_int_equal(p->first_error.row, s->first_error.row);
    assert_int_equal(p->first_error.offset, s->first_error.offset);
    assert_string_equal(p->first_error.field, s->first_error.field);
    assert_string_equal(p->first_error.msg, s->first_error.msg);
    assert_int_equal(par->err.code, seq->err.code);
    assert_int_equal(par->err.row, seq->err.row);
    assert_string_equal(par->err.msg, seq->err.msg);
    if (seq->rc == 0) {
        assert_int_equal(p->output_records, s->output_records);
        struct buf a = {0}, b = {0};
        lake_rows(seq, &a);
        lake_rows(par, &b);
        assert_int_equal(a.len, b.len);
        assert_memory_equal(a.data, b.data, a.len);
        buf_free(&a);
        buf_free(&b);
    }
}

static void test_partial_on(void **state)
{
    (void)state;
    struct outcome seq, par;
    run(-1, 40, 1, true, &seq);
    run(-1, 40, THREADS, true, &par);
    assert_int_equal(seq.rc, 0);
    int64_t bad = g_fx.bad_dates + g_fx.bad_utf8;
    assert_int_equal(seq.res.input_records, ROWS);
    assert_int_equal(seq.res.failed_records, bad);
    assert_int_equal(seq.res.output_records, ROWS - bad);
    assert_int_equal(seq.res.failed_by_kind[DIAG_CONVERSION], g_fx.bad_dates);
    assert_int_equal(seq.res.failed_by_kind[DIAG_PARSING], g_fx.bad_utf8);
    assert_int_equal(seq.res.output_files, 1);
    assert_int_equal(par.res.output_files, THREADS); /* one part per row-group range */
    assert_same(&seq, &par);
    /* row numbers are the file's: the 2nd error is the first bad UTF-8 row (53) */
    json_t *second = json_array_get(par.res.errors, 1);
    assert_int_equal(json_integer_value(json_object_get(second, "row")), BAD_UTF8_EVERY);
    json_t *last = json_array_get(par.res.errors, json_array_size(par.res.errors) - 1);
    assert_int_equal(json_integer_value(json_object_get(last, "row")),
                     ROWS / BAD_DATE_EVERY * BAD_DATE_EVERY > ROWS / BAD_UTF8_EVERY * BAD_UTF8_EVERY
                         ? ROWS / BAD_DATE_EVERY * BAD_DATE_EVERY
                         : ROWS / BAD_UTF8_EVERY * BAD_UTF8_EVERY);
    assert_true(same_row_errors(seq.diag, par.diag) > 1);
    outcome_free(&seq);
    outcome_free(&par);
}

static void test_partial_off(void **state)
{
    (void)state;
    struct outcome seq, par;
    run(0, 0, 1, false, &seq);
    run(0, 0, THREADS, false, &par);
    assert_int_not_equal(seq.rc, 0);
    /* the lowest bad row decides, whichever thread found its bad rows first */
    assert_int_equal(seq.res.first_error.row, BAD_DATE_EVERY);
    assert_int_equal(seq.res.failed_records, 1);
    assert_same(&seq, &par);
    outcome_free(&seq);
    outcome_free(&par);
}

static void test_row_limit(void **state)
{
    (void)state;
    struct outcome seq, par;
    /* a limit met in a middle range, with diagnostics */
    run(60, 5, 1, true, &seq);
    run(60, 5, THREADS, true, &par);
    assert_int_not_equal(seq.rc, 0);
    assert_int_equal(seq.res.failed_records, 61);
    assert_true(seq.res.input_records < ROWS);
    assert_same(&seq, &par);
    same_row_errors(seq.diag, par.diag);
    outcome_free(&seq);
    outcome_free(&par);
}

/* The current row as JSON, or "!" for a row that cannot be rendered (names not UTF-8). */
static void render(struct pq_reader *r, struct buf *out)
{
    size_t len = out->len;
    if (pq_reader_row_json(r, out, NULL) != 0) {
        out->len = len;
        assert_int_equal(buf_append_byte(out, '!'), 0);
    }
    assert_int_equal(buf_append_byte(out, '\n'), 0);
}

static void test_reader_range(void **state)
{
    (void)state;
    struct pq_reader *r = NULL;
    struct ing_err err;
    ing_err_clear(&err);
    assert_int_equal(pq_reader_open(&r, g_fx.pq, NULL, &err), 0);
    int64_t before = pq_reader_row_group_rows(r, 0) + pq_reader_row_group_rows(r, 1);
    int64_t in_range = pq_reader_row_group_rows(r, 2) + pq_reader_row_group_rows(r, 3);
    assert_int_equal(pq_reader_row_group_rows(r, g_fx.row_groups), -1);
    /* the whole-file rendering of the rows of groups 2 and 3 */
    struct buf whole = {0}, part = {0};
    int64_t row = 0;
    while (pq_reader_next(r, NULL) == 1 && ++row <= before + in_range)
        if (row > before)
            render(r, &whole);
    pq_reader_free(r);

    struct pq_reader_opts o = {.first_row_group = 2, .num_row_groups = 2};
    assert_int_equal(pq_reader_open(&r, g_fx.pq, &o, &err), 0);
    assert_int_equal(pq_reader_row(r), 0);
    int64_t n = 0;
    while (pq_reader_next(r, NULL) == 1) {
        n++;
        assert_int_equal(pq_reader_row(r), before + n);
        render(r, &part);
    }
    assert_int_equal(n, in_range);
    assert_int_equal(part.len, whole.len);
    assert_memory_equal(part.data, whole.data, part.len);
    pq_reader_free(r);
    buf_free(&whole);
    buf_free(&part);

    /* to the end, and ranges that are not in the file */
    o = (struct pq_reader_opts){.first_row_group = g_fx.row_groups - 1};
    assert_int_equal(pq_reader_open(&r, g_fx.pq, &o, &err), 0);
    n = 0;
    while (pq_reader_next(r, NULL) == 1)
        n++;
    assert_int_equal(n, pq_reader_row_group_rows(r, g_fx.row_groups - 1));
    pq_reader_free(r);
    o = (struct pq_reader_opts){.first_row_group = g_fx.row_groups + 1};
    assert_int_equal(pq_reader_open(&r, g_fx.pq, &o, &err), ING_EINVAL);
    assert_null(r);
    o = (struct pq_reader_opts){.first_row_group = 1, .num_row_groups = g_fx.row_groups};
    assert_int_equal(pq_reader_open(&r, g_fx.pq, &o, &err), ING_EINVAL);
    o = (struct pq_reader_opts){.first_row_group = -1};
    assert_int_equal(pq_reader_open(&r, g_fx.pq, &o, &err), ING_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_partial_on),
        cmocka_unit_test(test_partial_off),
        cmocka_unit_test(test_row_limit),
        cmocka_unit_test(test_reader_range),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
