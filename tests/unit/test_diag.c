/*
 * test_diag.c - unit tests of the diagnostics writer: AEP's row_errors line shapes, splitting
 * into numbered files, text that is not UTF-8, the input file listing, publishing a run's folder
 * and the retention sweep.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "ingest/diag.h"
#include "util/fs.h"
#include "util/mem.h"

static char g_dir[64];
static int g_seq;

static int group_setup(void **state)
{
    (void)state;
    snprintf(g_dir, sizeof(g_dir), "/tmp/test_diag.XXXXXX");
    return mkdtemp(g_dir) ? 0 : -1;
}

static int group_teardown(void **state)
{
    (void)state;
    fs_rm_rf(g_dir, NULL);
    return 0;
}

static char *fresh_dir(void)
{
    return xasprintf("%s/d-%d", g_dir, ++g_seq);
}

/* Every line of a file parsed as JSON (each must parse). NULL when the file does not exist. */
static json_t *read_lines(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return NULL;
    json_t *out = json_array();
    char *line = NULL;
    size_t cap = 0;
    while (getline(&line, &cap, f) > 0) {
        json_error_t jerr;
        json_t *doc = json_loads(line, 0, &jerr);
        if (!doc)
            fail_msg("not JSON: %s (%s)", line, jerr.text);
        json_array_append_new(out, doc);
    }
    free(line);
    fclose(f);
    return out;
}

static size_t lines_in(const char *dir, const char *name)
{
    char *p = xasprintf("%s/row_errors/%s", dir, name);
    json_t *rows = read_lines(p);
    free(p);
    size_t n = rows ? json_array_size(rows) : 0;
    json_decref(rows);
    return n;
}

static void test_kinds(void **state)
{
    (void)state;
    assert_int_equal(diag_kind_of(ING_ESYNTAX), DIAG_PARSING);
    assert_int_equal(diag_kind_of(ING_ETOOBIG), DIAG_PARSING);
    assert_int_equal(diag_kind_of(ING_EREQUIRED), DIAG_REQUIRED);
    assert_int_equal(diag_kind_of(ING_ETYPE), DIAG_CONVERSION);
    assert_int_equal(diag_kind_of(ING_ECONSTRAINT), DIAG_VALIDATION);
    assert_int_equal(diag_kind_of(ING_EIO), -1);
    assert_string_equal(diag_kind_aep_code(DIAG_PARSING), "INGEST-1401-400");
    assert_string_equal(diag_kind_aep_code(DIAG_REQUIRED), "INGEST-1555-400");
    assert_string_equal(diag_kind_file_prefix(DIAG_CONVERSION), "conversion_errors");
    assert_string_equal(diag_kind_code(DIAG_VALIDATION), "1570");
}

static void test_row_shapes_and_split(void **state)
{
    (void)state;
    char *dir = fresh_dir();
    struct diag_writer *w = NULL;
    struct ing_err err;
    ing_err_clear(&err);
    assert_int_equal(diag_writer_open(&w, dir, 2, &err), 0);
    for (int i = 1; i <= 5; i++) {
        char raw[32];
        snprintf(raw, sizeof(raw), "{broken %d", i);
        struct diag_row r = {.kind = DIAG_PARSING, .file = "in/a.json", .row = i, .raw = raw,
                             .raw_len = strlen(raw)};
        assert_int_equal(diag_writer_add(w, &r, &err), 0);
    }
    const char *rec = "{\"id\":null}";
    struct diag_row req = {.kind = DIAG_REQUIRED, .file = "b.json", .row = 9, .field = "a.id",
                           .message = "required field missing", .raw = rec,
                           .raw_len = strlen(rec)};
    assert_int_equal(diag_writer_add(w, &req, &err), 0);
    assert_int_equal(diag_writer_count(w, DIAG_PARSING), 5);
    assert_int_equal(diag_writer_count(w, DIAG_REQUIRED), 1);
    assert_int_equal(diag_writer_count(w, DIAG_CONVERSION), 0);
    assert_int_equal(diag_writer_close(w, &err), 0);

    /* Five parsing rows at two per file: _0, _1 with two, _2 with one; no empty kinds. */
    assert_int_equal(lines_in(dir, "parsing_errors_0.json"), 2);
    assert_int_equal(lines_in(dir, "parsing_errors_1.json"), 2);
    assert_int_equal(lines_in(dir, "parsing_errors_2.json"), 1);
    assert_int_equal(lines_in(dir, "parsing_errors_3.json"), 0);
    char *conv = xasprintf("%s/row_errors/conversion_errors_0.json", dir);
    assert_false(fs_exists(conv));
    free(conv);

    char *p = xasprintf("%s/row_errors/parsing_errors_2.json", dir);
    json_t *rows = read_lines(p);
    free(p);
    json_t *r = json_array_get(rows, 0);
    assert_string_equal(json_string_value(json_object_get(r, "_corrupt_record")), "{broken 5");
    assert_string_equal(json_string_value(json_object_get(r, "_filename")), "in/a.json");
    assert_int_equal(json_integer_value(json_object_get(r, "_row")), 5);
    json_t *e = json_array_get(json_object_get(r, "_errors"), 0);
    assert_string_equal(json_string_value(json_object_get(e, "code")), "1401");
    assert_string_equal(json_string_value(json_object_get(e, "message")),
                        "Row is corrupted and cannot be read, please fix and resend.");
    json_decref(rows);

    p = xasprintf("%s/row_errors/required_errors_0.json", dir);
    rows = read_lines(p);
    free(p);
    r = json_array_get(rows, 0);
    e = json_array_get(json_object_get(r, "_errors"), 0);
    assert_string_equal(json_string_value(json_object_get(e, "code")), "1555");
    assert_string_equal(json_string_value(json_object_get(e, "message")), "required field missing");
    assert_string_equal(json_string_value(json_object_get(e, "field")), "a.id");
    assert_string_equal(json_string_value(json_object_get(r, "_record")), rec);
    assert_int_equal(json_integer_value(json_object_get(r, "_row")), 9);
    assert_null(json_object_get(r, "_corrupt_record"));
    json_decref(rows);
    free(dir);
}

static void test_text_that_is_not_utf8(void **state)
{
    (void)state;
    char *dir = fresh_dir();
    struct diag_writer *w = NULL;
    assert_int_equal(diag_writer_open(&w, dir, 0, NULL), 0);
    /* A stray continuation byte, a truncated sequence, an overlong '/', a surrogate, a control
     * character, quotes and a backslash; "é" and "€" are valid and kept. */
    static const char raw[] = "a\x80" "b\xc3" "c\xc0\xaf" "d\xed\xa0\x80" "e\x01\"\\ \xc3\xa9\xe2\x82\xac";
    struct diag_row r = {.kind = DIAG_CONVERSION, .file = "x\xff.json", .row = 1, .field = "f",
                         .message = "bad", .raw = raw, .raw_len = sizeof(raw) - 1};
    assert_int_equal(diag_writer_add(w, &r, NULL), 0);
    assert_int_equal(diag_writer_close(w, NULL), 0);
    char *p = xasprintf("%s/row_errors/conversion_errors_0.json", dir);
    json_t *rows = read_lines(p);
    free(p);
    assert_int_equal(json_array_size(rows), 1);
    const char *got = json_string_value(json_object_get(json_array_get(rows, 0), "_record"));
    assert_string_equal(got, "a\xef\xbf\xbd" "b\xef\xbf\xbd" "c\xef\xbf\xbd\xef\xbf\xbd"
                             "d\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"
                             "e\x01\"\\ \xc3\xa9\xe2\x82\xac");
    assert_string_equal(json_string_value(json_object_get(json_array_get(rows, 0), "_filename")),
                        "x\xef\xbf\xbd.json");
    json_decref(rows);
    free(dir);
}

static void test_publish_and_input_files(void **state)
{
    (void)state;
    char *base = fresh_dir();
    char *tmp = xasprintf("%s/.tmp-B1", base);
    char *final = xasprintf("%s/B1", base);
    struct ing_err err;
    ing_err_clear(&err);
    json_t *files = json_pack("[{s:s, s:I}, {s:s, s:I}]", "name", "a.json", "size",
                              (json_int_t)10, "name", "sub/b.json.gz", "size", (json_int_t)2048);
    assert_int_equal(diag_write_input_files(tmp, files, &err), 0);
    json_decref(files);
    /* An older publication of the same batch is replaced whole. */
    char *stale = xasprintf("%s/row_errors/parsing_errors_0.json", final);
    assert_int_equal(fs_mkdirs(final, &err), 0);
    char *stale_dir = xasprintf("%s/row_errors", final);
    assert_int_equal(fs_mkdirs(stale_dir, &err), 0);
    assert_int_equal(fs_write_atomic(stale, "{}\n", 3, &err), 0);
    assert_int_equal(diag_publish(tmp, final, "B1", 1234, &err), 0);
    assert_false(fs_exists(tmp));
    assert_false(fs_exists(stale));

    char *p = xasprintf("%s/input_files.json", final);
    json_t *rows = read_lines(p);
    free(p);
    assert_int_equal(json_array_size(rows), 2);
    assert_string_equal(json_string_value(json_object_get(json_array_get(rows, 1), "path")),
                        "sub/b.json.gz");
    assert_int_equal(json_integer_value(json_object_get(json_array_get(rows, 1), "size")), 2048);
    json_decref(rows);
    p = xasprintf("%s/_meta.json", final);
    json_t *meta = json_load_file(p, 0, NULL);
    free(p);
    assert_string_equal(json_string_value(json_object_get(meta, "batchId")), "B1");
    assert_int_equal(json_integer_value(json_object_get(meta, "completed")), 1234);
    json_decref(meta);
    free(stale), free(stale_dir), free(tmp), free(final), free(base);
}

static void test_sweep(void **state)
{
    (void)state;
    char *data = fresh_dir();
    struct ing_err err;
    ing_err_clear(&err);
    const int64_t day = 86400000;
    const int64_t now = 100 * day;
    /* prod: one old and one recent batch, a folder being written; dev: one old batch. */
    struct {
        const char *sandbox, *batch;
        int64_t completed;
        bool expect_kept;
    } cases[] = {
        {"prod", "OLD1", now - 31 * day, false},
        {"prod", "NEW1", now - 29 * day, true},
        {"dev", "OLD2", now - 40 * day, false},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *tmp = diag_batch_tmp_dir(data, cases[i].sandbox, cases[i].batch);
        char *final = diag_batch_dir(data, cases[i].sandbox, cases[i].batch);
        assert_int_equal(diag_write_input_files(tmp, NULL, &err), 0);
        assert_int_equal(diag_publish(tmp, final, cases[i].batch, cases[i].completed, &err), 0);
        free(tmp);
        free(final);
    }
    char *writing = diag_batch_tmp_dir(data, "prod", "RUNNING");
    assert_int_equal(fs_mkdirs(writing, &err), 0);

    int64_t removed = 0;
    assert_int_equal(diag_sweep(data, 30 * day, now, &removed, &err), 0);
    assert_int_equal(removed, 2);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *final = diag_batch_dir(data, cases[i].sandbox, cases[i].batch);
        assert_int_equal(fs_exists(final), cases[i].expect_kept);
        free(final);
    }
    assert_true(fs_exists(writing));

    /* Nothing left to remove; a data folder without sandboxes is fine too. */
    removed = 0;
    assert_int_equal(diag_sweep(data, 30 * day, now, &removed, &err), 0);
    assert_int_equal(removed, 0);
    char *empty = fresh_dir();
    assert_int_equal(diag_sweep(empty, 1, now, NULL, &err), 0);
    free(empty), free(writing), free(data);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kinds),
        cmocka_unit_test(test_row_shapes_and_split),
        cmocka_unit_test(test_text_that_is_not_utf8),
        cmocka_unit_test(test_publish_and_input_files),
        cmocka_unit_test(test_sweep),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
