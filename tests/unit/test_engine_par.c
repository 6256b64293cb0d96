/*
 * test_engine_par.c - the engine's parallel path (one large JSON Lines file cut into ranges on
 * several threads) against a forced sequential run (threads = 1) of the same file: the same counts,
 * errors[], first_error, previews and byte-for-byte the same diagnostics files, with partial
 * ingestion on, off and with a row limit in between; generated Luma loyalty files with bad rows
 * spread over every range (`ingot gen`'s generator). Also: files that must stay sequential
 * (arrays, gzip), a range without a good row (part names stay consecutive), several input files,
 * and the write-fault hook. The lake rows themselves are compared with DuckDB in
 * tests/api/ingest_parallel.test.mjs.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

#include "cli/gen.h"
#include "ingest/engine.h"
#include "schema/xdm_plan.h"
#include "util/fs.h"
#include "util/mem.h"

/* Small enough for ASan, large enough for several ranges of several reads each. */
#define RECORDS 6000
#define SPLIT_MIN ((int64_t)64 << 10)
#define THREADS 4

struct fixture {
    char dir[64];
    struct xdm_plan *plan;
    char *lines;        /* loyalty JSON Lines with about 4% bad rows */
    int seq;
};

static struct fixture g_fx;

static int group_setup(void **state)
{
    (void)state;
    snprintf(g_fx.dir, sizeof(g_fx.dir), "/tmp/test_engine_par.XXXXXX");
    if (!mkdtemp(g_fx.dir))
        return -1;
    json_t *schema = gen_schema(GEN_LOYALTY, NULL);
    struct ing_err err;
    ing_err_clear(&err);
    int rc = xdm_plan_compile(schema, NULL, &g_fx.plan, &err);
    json_decref(schema);
    if (rc != 0)
        return -1;
    struct gen_opts go = {.kind = GEN_LOYALTY, .records = RECORDS, .seed = 7, .bad_share = 0.04};
    struct gen_stats st;
    g_fx.lines = xasprintf("%s/loyalty.json", g_fx.dir);
    rc = gen_write_file(&go, g_fx.lines, &st, &err);
    if (rc != 0 || st.bad_records < 100 || st.bytes < 4 * SPLIT_MIN)
        return -1;
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    xdm_plan_free(g_fx.plan);
    free(g_fx.lines);
    fs_rm_rf(g_fx.dir, NULL);
    return 0;
}

static char *new_dir(const char *what)
{
    return xasprintf("%s/%s-%d", g_fx.dir, what, ++g_fx.seq);
}

/* One engine run and everything it left behind. */
struct outcome {
    int rc;
    struct ing_err err;
    struct engine_result res;
    char *out;          /* output folder */
    char *diag;         /* diagnostics folder, or NULL */
};

static void run(const struct engine_file *files, size_t n, struct engine_opts o, int threads,
                bool diag, int64_t diag_rows_per_file, struct outcome *oc)
{
    memset(oc, 0, sizeof(*oc));
    ing_err_clear(&oc->err);
    oc->out = new_dir("out");
    struct diag_writer *dw = NULL;
    if (diag) {
        oc->diag = new_dir("diag");
        assert_int_equal(diag_writer_open(&dw, oc->diag, diag_rows_per_file, NULL), 0);
    }
    o.diag = dw;
    o.threads = threads;
    o.split_min_bytes = SPLIT_MIN;
    oc->rc = engine_run(g_fx.plan, files, n, &o, oc->out, &oc->res, &oc->err);
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

/* Every file of a's row_errors is in b's with the same bytes, and b has no other. Returns the
 * number of files. */
static int same_row_errors(const char *a, const char *b)
{
    char *da = xasprintf("%s/row_errors", a), *db = xasprintf("%s/row_errors", b);
    DIR *d = opendir(da);
    assert_non_null(d);
    int files = 0;
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
    int files_b = 0;
    while ((e = readdir(d)) != NULL)
        files_b += e->d_name[0] != '.';
    closedir(d);
    assert_int_equal(files, files_b);
    free(da);
    free(db);
    return files;
}

/* The parallel outcome says exactly what the sequential one says. */
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
    assert_int_equal(p->transient, s->transient);
    assert_true(json_equal(p->errors, s->errors));
    assert_true(p->preview == s->preview || json_equal(p->preview, s->preview));
    assert_int_equal(p->first_error.code, s->first_error.code);
    assert_int_equal(p->first_error.row, s->first_error.row);
    assert_int_equal(p->first_error.offset, s->first_error.offset);
    assert_string_equal(p->first_error.file, s->first_error.file);
    assert_string_equal(p->first_error.field, s->first_error.field);
    assert_string_equal(p->first_error.msg, s->first_error.msg);
    assert_int_equal(par->err.code, seq->err.code);
    assert_int_equal(par->err.row, seq->err.row);
    assert_string_equal(par->err.msg, seq->err.msg);
    if (seq->rc == 0) {
        assert_int_equal(p->output_records, s->output_records);
        assert_int_equal(p->unknown_fields, s->unknown_fields);
    }
}

/* The part files listed are part-00000... in order, exist, and hold output_records rows. */
static void assert_parts(const struct outcome *oc, int64_t expect_files)
{
    assert_int_equal(oc->res.output_files, expect_files);
    assert_int_equal((int64_t)json_array_size(oc->res.files), expect_files);
    int64_t rows = 0;
    for (int64_t i = 0; i < expect_files; i++) {
        json_t *f = json_array_get(oc->res.files, (size_t)i);
        char name[48];
        snprintf(name, sizeof(name), "part-%05lld.parquet", (long long)i);
        assert_string_equal(json_string_value(json_object_get(f, "name")), name);
        char *path = xasprintf("%s/%s", oc->out, name);
        struct stat st;
        assert_int_equal(stat(path, &st), 0);
        assert_int_equal(st.st_size, json_integer_value(json_object_get(f, "size")));
        free(path);
        rows += json_integer_value(json_object_get(f, "records"));
    }
    assert_int_equal(rows, oc->res.output_records);
    /* Nothing else is left in the folder (spill files, parts of ranges that did not count). */
    DIR *d = opendir(oc->out);
    assert_non_null(d);
    int64_t entries = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        entries += strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
    closedir(d);
    assert_int_equal(entries, expect_files);
}

static struct engine_opts base_opts(int64_t max_failed, int preview)
{
    struct engine_opts o = {.format = ENGINE_JSON, .preview_rows = preview,
                            .max_failed_rows = max_failed};
    o.parquet.codec = PQ_CODEC_ZSTD;
    return o;
}

static void test_partial_on_same_as_sequential(void **state)
{
    (void)state;
    struct engine_file f = {.path = g_fx.lines, .name = "in/loyalty.json"};
    struct outcome seq, par;
    /* 40 rows per diagnostics file: the file cuts fall inside ranges and across them. */
    run(&f, 1, base_opts(-1, 30), 1, true, 40, &seq);
    run(&f, 1, base_opts(-1, 30), THREADS, true, 40, &par);
    assert_int_equal(seq.rc, 0);
    assert_same(&seq, &par);
    assert_int_equal(seq.res.input_records, RECORDS);
    assert_true(seq.res.failed_records >= 100);
    assert_int_equal((int64_t)json_array_size(seq.res.preview), 30);
    assert_parts(&seq, 1);
    assert_parts(&par, THREADS);
    assert_true(same_row_errors(seq.diag, par.diag) >= 4);
    /* Row numbers are file-absolute: the last error is far past the first range. */
    json_t *last = json_array_get(par.res.errors, json_array_size(par.res.errors) - 1);
    assert_true(json_integer_value(json_object_get(last, "row")) > RECORDS * 3 / 4);
    outcome_free(&seq);
    outcome_free(&par);
}

static void test_partial_off_same_as_sequential(void **state)
{
    (void)state;
    struct engine_file f = {.path = g_fx.lines, .name = "loyalty.json"};
    struct outcome seq, par;
    run(&f, 1, base_opts(0, 5), 1, false, 0, &seq);
    run(&f, 1, base_opts(0, 5), THREADS, false, 0, &par);
    assert_true(seq.rc < 0);
    assert_false(seq.res.batch_error);
    assert_int_equal(seq.res.failed_records, 1);
    assert_same(&seq, &par);
    assert_int_equal(par.res.input_records, par.res.first_error.row);
    outcome_free(&seq);
    outcome_free(&par);

    /* Diagnostics without partial ingestion: every row is named, the run does not stop. */
    run(&f, 1, base_opts(-1, 0), 1, true, 0, &seq);
    run(&f, 1, base_opts(-1, 0), 2, true, 0, &par);
    assert_same(&seq, &par);
    same_row_errors(seq.diag, par.diag);
    outcome_free(&seq);
    outcome_free(&par);
}

static void test_row_limit_same_as_sequential(void **state)
{
    (void)state;
    struct engine_file f = {.path = g_fx.lines, .name = "loyalty.json"};
    /* Limits that stop in the first, a middle and the last range. */
    struct outcome all;
    run(&f, 1, base_opts(-1, 0), 1, false, 0, &all);
    int64_t bad = all.res.failed_records;
    outcome_free(&all);
    int64_t limits[] = {3, bad / 2, bad - 2};
    for (size_t i = 0; i < sizeof(limits) / sizeof(limits[0]); i++) {
        struct outcome seq, par;
        run(&f, 1, base_opts(limits[i], 0), 1, true, 25, &seq);
        run(&f, 1, base_opts(limits[i], 0), THREADS, true, 25, &par);
        assert_true(seq.rc < 0);
        assert_int_equal(seq.res.failed_records, limits[i] + 1);
        assert_same(&seq, &par);
        same_row_errors(seq.diag, par.diag);
        outcome_free(&seq);
        outcome_free(&par);
    }
}

/* Lines of a file where the first ranges hold bad rows only: `bad` corrupt lines, then good ones
 * taken from the generated file. */
static char *write_bad_head(int bad_lines)
{
    char *path = new_dir("badhead");
    FILE *out = fopen(path, "wb");
    assert_non_null(out);
    for (int i = 0; i < bad_lines; i++)
        fprintf(out, "{\"not closed\": %d, \"pad\": \"%0100d\"\n", i, i);
    size_t len;
    char *good = slurp(g_fx.lines, &len);
    fwrite(good, 1, len, out);
    free(good);
    fclose(out);
    return path;
}

static void test_range_without_good_rows(void **state)
{
    (void)state;
    /* About 400 KB of corrupt lines: with 8 ranges over ~2 MB the first is all bad. */
    char *path = write_bad_head(3000);
    struct engine_file f = {.path = path, .name = "head.json"};
    struct outcome seq, par;
    run(&f, 1, base_opts(-1, 3), 1, true, 0, &seq);
    run(&f, 1, base_opts(-1, 3), 8, true, 0, &par);
    assert_int_equal(seq.rc, 0);
    assert_same(&seq, &par);
    assert_int_equal(par.res.output_files, 7);
    assert_parts(&par, par.res.output_files);
    same_row_errors(seq.diag, par.diag);
    outcome_free(&seq);
    outcome_free(&par);
    free(path);
}

static void test_several_files(void **state)
{
    (void)state;
    char *small = new_dir("small");
    assert_int_equal(fs_write_atomic(small, "{\"loyalty\":{\"points\":\"x\"}}\n", 27, NULL), 0);
    /* Sorted by name: a.json (parallel), b.json (small, sequential), c.json (parallel). */
    struct engine_file files[] = {{.path = g_fx.lines, .name = "c.json"},
                                  {.path = small, .name = "b.json"},
                                  {.path = g_fx.lines, .name = "a.json"}};
    struct outcome seq, par;
    run(files, 3, base_opts(-1, 0), 1, true, 0, &seq);
    run(files, 3, base_opts(-1, 0), 2, true, 0, &par);
    assert_int_equal(seq.rc, 0);
    assert_same(&seq, &par);
    assert_parts(&seq, 2);
    assert_parts(&par, 4);
    same_row_errors(seq.diag, par.diag);
    json_t *last = json_array_get(par.res.errors, json_array_size(par.res.errors) - 1);
    assert_string_equal(json_string_value(json_object_get(last, "file")), "c.json");
    outcome_free(&seq);
    outcome_free(&par);
    free(small);
}

static void test_arrays_and_gzip_stay_sequential(void **state)
{
    (void)state;
    /* A JSON array of the same records. */
    char *array = new_dir("array");
    struct gen_opts go = {.kind = GEN_LOYALTY, .layout = GEN_ARRAY, .records = RECORDS,
                          .seed = 7, .bad_share = 0.04};
    assert_int_equal(gen_write_file(&go, array, NULL, NULL), 0);
    /* The JSON Lines file gzipped. */
    char *gz = new_dir("gz");
    size_t len;
    char *text = slurp(g_fx.lines, &len);
    gzFile z = gzopen(gz, "wb1");
    assert_non_null(z);
    assert_int_equal(gzwrite(z, text, (unsigned)len), (int)len);
    gzclose(z);
    free(text);
    const char *paths[] = {array, gz};
    for (int i = 0; i < 2; i++) {
        struct engine_file f = {.path = paths[i], .name = "x.json"};
        struct outcome seq, par;
        run(&f, 1, base_opts(-1, 2), 1, true, 0, &seq);
        run(&f, 1, base_opts(-1, 2), THREADS, true, 0, &par);
        assert_int_equal(par.rc, 0);
        assert_same(&seq, &par);
        assert_parts(&par, 1);
        same_row_errors(seq.diag, par.diag);
        outcome_free(&seq);
        outcome_free(&par);
    }
    free(array);
    free(gz);
}

static void test_write_fault_is_transient(void **state)
{
    (void)state;
    struct engine_file f = {.path = g_fx.lines, .name = "loyalty.json"};
    struct engine_opts o = base_opts(-1, 0);
    o.fault_write_errno = ENOSPC;
    struct outcome seq, par;
    run(&f, 1, o, 1, false, 0, &seq);
    run(&f, 1, o, THREADS, false, 0, &par);
    assert_int_equal(par.rc, ING_EIO);
    assert_true(par.res.batch_error);
    assert_true(par.res.transient);
    assert_int_equal(par.err.sys_errno, ENOSPC);
    assert_int_equal(seq.rc, par.rc);
    assert_int_equal(seq.res.transient, par.res.transient);
    assert_int_equal(seq.res.failed_records, par.res.failed_records);
    outcome_free(&seq);
    outcome_free(&par);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_partial_on_same_as_sequential),
        cmocka_unit_test(test_partial_off_same_as_sequential),
        cmocka_unit_test(test_row_limit_same_as_sequential),
        cmocka_unit_test(test_range_without_good_rows),
        cmocka_unit_test(test_several_files),
        cmocka_unit_test(test_arrays_and_gzip_stay_sequential),
        cmocka_unit_test(test_write_fault_is_transient),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
