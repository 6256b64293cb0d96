/*
 * test_engine.c - unit tests of the ingestion engine: JSON files in, Parquet part files out,
 * with counts, previews and row errors, against a small hand-written resolved schema; partial
 * ingestion with the diagnostics writer, gzip and zstd inputs, and the transient-failure hook.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>
#include <zstd.h>

#include "ingest/engine.h"
#include "ingest/inread.h"
#include "schema/xdm_plan.h"
#include "util/buf.h"
#include "util/fs.h"
#include "util/mem.h"

/* A resolved (xed-full) profile-like schema: a required id, nested names, typed and constrained
 * leaves. */
static const char SCHEMA[] =
    "{\"$id\":\"https://ns.adobe.com/test/schemas/engine\","
    " \"meta:class\":\"https://ns.adobe.com/xdm/context/profile\","
    " \"type\":\"object\",\"required\":[\"_id\"],"
    " \"properties\":{"
    "  \"_id\":{\"type\":\"string\",\"meta:xdmType\":\"string\"},"
    "  \"person\":{\"type\":\"object\",\"meta:xdmType\":\"object\",\"properties\":{"
    "    \"name\":{\"type\":\"object\",\"meta:xdmType\":\"object\",\"properties\":{"
    "      \"firstName\":{\"type\":\"string\",\"meta:xdmType\":\"string\"},"
    "      \"lastName\":{\"type\":\"string\",\"meta:xdmType\":\"string\"}}}}},"
    "  \"loyalty\":{\"type\":\"object\",\"meta:xdmType\":\"object\",\"properties\":{"
    "    \"points\":{\"type\":\"integer\",\"meta:xdmType\":\"int\"},"
    "    \"tier\":{\"type\":\"string\",\"meta:xdmType\":\"string\","
    "              \"enum\":[\"bronze\",\"silver\",\"gold\"]}}}}}";

struct fixture {
    char dir[64];
    struct xdm_plan *plan;
    int seq;
};

static struct fixture g_fx;

static int group_setup(void **state)
{
    (void)state;
    snprintf(g_fx.dir, sizeof(g_fx.dir), "/tmp/test_engine.XXXXXX");
    if (!mkdtemp(g_fx.dir))
        return -1;
    json_error_t jerr;
    json_t *schema = json_loads(SCHEMA, 0, &jerr);
    if (!schema)
        return -1;
    struct ing_err err;
    ing_err_clear(&err);
    int rc = xdm_plan_compile(schema, NULL, &g_fx.plan, &err);
    json_decref(schema);
    if (rc != 0)
        fprintf(stderr, "plan: %s\n", err.msg);
    return rc;
}

static int group_teardown(void **state)
{
    (void)state;
    xdm_plan_free(g_fx.plan);
    fs_rm_rf(g_fx.dir, NULL);
    return 0;
}

/* Write an input file under a fresh folder; returns its path (free()). */
static char *input(const char *name, const char *text)
{
    char *path = xasprintf("%s/in-%d-%s", g_fx.dir, ++g_fx.seq, name);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    fwrite(text, 1, strlen(text), f);
    fclose(f);
    return path;
}

static char *out_dir(void)
{
    return xasprintf("%s/out-%d", g_fx.dir, ++g_fx.seq);
}

static struct engine_opts opts_fail_fast(int preview)
{
    struct engine_opts o = {.format = ENGINE_JSON, .preview_rows = preview, .max_failed_rows = 0};
    o.parquet.codec = PQ_CODEC_ZSTD;
    return o;
}

/* Run one file through the engine. */
static int run1(const char *name, const char *text, const struct engine_opts *o, char **outdir,
                struct engine_result *res, struct ing_err *err)
{
    char *path = input(name, text);
    struct engine_file f = {.path = path, .name = name};
    *outdir = out_dir();
    ing_err_clear(err);
    int rc = engine_run(g_fx.plan, &f, 1, o, *outdir, res, err);
    free(path);
    return rc;
}

/* True when the file starts and ends with the Parquet magic. */
static void assert_parquet(const char *path, int64_t expect_size)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    char head[4], tail[4];
    assert_int_equal(fread(head, 1, 4, f), 4);
    assert_int_equal(fseek(f, -4, SEEK_END), 0);
    assert_int_equal(fread(tail, 1, 4, f), 4);
    long size = ftell(f);
    fclose(f);
    assert_memory_equal(head, "PAR1", 4);
    assert_memory_equal(tail, "PAR1", 4);
    assert_int_equal(size, expect_size);
}

static void test_good_lines(void **state)
{
    (void)state;
    const char *text = "{\"_id\":\"1\",\"person\":{\"name\":{\"firstName\":\"Ann\"}},"
                       "\"loyalty\":{\"points\":10,\"tier\":\"gold\"}}\n"
                       "\n"
                       "{\"_id\":\"2\",\"loyalty\":{\"points\":\"20\"},\"unknownField\":true}\n"
                       "{\"_id\":\"3\"}\n";
    struct engine_opts o = opts_fail_fast(2);
    struct engine_result res;
    struct ing_err err;
    char *out;
    assert_int_equal(run1("profiles.json", text, &o, &out, &res, &err), 0);
    assert_int_equal(res.input_records, 3);
    assert_int_equal(res.output_records, 3);
    assert_int_equal(res.failed_records, 0);
    assert_int_equal(res.input_bytes, (int64_t)strlen(text));
    assert_int_equal(res.output_files, 1);
    assert_int_equal(res.unknown_fields, 1);
    assert_int_equal(json_array_size(res.errors), 0);

    char *part = xasprintf("%s/part-00000.parquet", out);
    assert_parquet(part, res.output_bytes);
    assert_int_equal(json_array_size(res.files), 1);
    json_t *f0 = json_array_get(res.files, 0);
    assert_string_equal(json_string_value(json_object_get(f0, "name")), "part-00000.parquet");
    assert_int_equal(json_integer_value(json_object_get(f0, "records")), 3);
    assert_int_equal(json_integer_value(json_object_get(f0, "size")), res.output_bytes);

    /* The preview holds the first converted rows only: "20" became the integer 20. */
    assert_int_equal(json_array_size(res.preview), 2);
    json_t *r0 = json_array_get(res.preview, 0);
    assert_string_equal(json_string_value(json_object_get(r0, "_id")), "1");
    json_t *r1 = json_array_get(res.preview, 1);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(r1, "loyalty"), "points")),
                     20);
    engine_result_free(&res);
    free(part);
    free(out);
}

static void check_row_error(const char *text, int expect_rc, const char *expect_code,
                            int64_t expect_row, const char *expect_field)
{
    struct engine_opts o = opts_fail_fast(0);
    struct engine_result res;
    struct ing_err err;
    char *out;
    assert_int_equal(run1("bad.json", text, &o, &out, &res, &err), expect_rc);
    assert_int_equal(res.failed_records, 1);
    assert_int_equal(err.code, expect_rc);
    assert_int_equal(err.row, expect_row);
    assert_string_equal(err.file, "bad.json");
    assert_string_equal(res.first_error.file, "bad.json");
    assert_int_equal(res.first_error.row, expect_row);
    assert_int_equal(json_array_size(res.errors), 1);
    json_t *e = json_array_get(res.errors, 0);
    assert_string_equal(json_string_value(json_object_get(e, "code")), expect_code);
    assert_string_equal(json_string_value(json_object_get(e, "file")), "bad.json");
    assert_int_equal(json_integer_value(json_object_get(e, "row")), expect_row);
    if (expect_field) {
        assert_string_equal(err.field, expect_field);
        assert_string_equal(json_string_value(json_object_get(e, "field")), expect_field);
    }
    assert_true(strlen(json_string_value(json_object_get(e, "message"))) > 0);
    engine_result_free(&res);
    free(out);
}

static void test_missing_required(void **state)
{
    (void)state;
    /* Row 2 has no _id; the engine stops there (no partial ingestion). */
    check_row_error("{\"_id\":\"1\"}\n{\"person\":{}}\n{\"_id\":\"3\"}\n", ING_EREQUIRED,
                    "INGEST-1555-400", 2, "_id");
}

static void test_conversion_error(void **state)
{
    (void)state;
    check_row_error("{\"_id\":\"1\",\"loyalty\":{\"points\":\"lots\"}}\n", ING_ETYPE,
                    "INGEST-1560-400", 1, "loyalty.points");
}

static void test_constraint_error(void **state)
{
    (void)state;
    check_row_error("{\"_id\":\"1\"}\n{\"_id\":\"2\"}\n{\"_id\":\"3\",\"loyalty\":{\"tier\":\"tin\"}}\n",
                    ING_ECONSTRAINT, "INGEST-1570-400", 3, "loyalty.tier");
}

static void test_corrupt_row(void **state)
{
    (void)state;
    check_row_error("{\"_id\":\"1\"}\n{\"_id\": \n", ING_ESYNTAX, "INGEST-1401-400", 2, NULL);
}

static void check_empty(const char *text)
{
    struct engine_opts o = opts_fail_fast(0);
    struct engine_result res;
    struct ing_err err;
    char *out;
    assert_int_not_equal(run1("empty.json", text, &o, &out, &res, &err), 0);
    assert_string_equal(err.file, "empty.json");
    assert_int_equal(json_array_size(res.errors), 1);
    json_t *e = json_array_get(res.errors, 0);
    assert_string_equal(json_string_value(json_object_get(e, "code")), "106");
    assert_string_equal(json_string_value(json_object_get(e, "message")),
                        "Dataset file is empty. Please upload file with data.");
    assert_int_equal(res.output_files, 0);
    engine_result_free(&res);
    free(out);
}

static void test_empty_files(void **state)
{
    (void)state;
    check_empty("");          /* 0 bytes */
    check_empty("\n  \n\n");  /* bytes but no record */
}

static void test_array_file(void **state)
{
    (void)state;
    /* Adobe's tutorial uploads arrays without isMultiLineJson: AUTO reads them as arrays. */
    const char *text = "[\n  {\"_id\": \"a1\",\n   \"person\": {\"name\": {\"lastName\": \"Lee\"}}},\n"
                       "  {\"_id\": \"a2\"}\n]\n";
    struct engine_opts o = opts_fail_fast(5);
    struct engine_result res;
    struct ing_err err;
    char *out;
    assert_int_equal(run1("array.json", text, &o, &out, &res, &err), 0);
    assert_int_equal(res.input_records, 2);
    assert_int_equal(res.output_records, 2);
    assert_int_equal(json_array_size(res.preview), 2);
    assert_string_equal(json_string_value(json_object_get(json_array_get(res.preview, 1), "_id")),
                        "a2");
    engine_result_free(&res);
    free(out);
}

static void test_multiline_concatenated(void **state)
{
    (void)state;
    const char *text = "{\n  \"_id\": \"m1\",\n  \"loyalty\": {\n    \"points\": 5\n  }\n}\n"
                       "{\n  \"_id\": \"m2\"\n}\n{\"_id\": \"m3\"}";
    struct engine_opts o = opts_fail_fast(0);
    o.multiline = true;
    struct engine_result res;
    struct ing_err err;
    char *out;
    assert_int_equal(run1("multi.json", text, &o, &out, &res, &err), 0);
    assert_int_equal(res.input_records, 3);
    assert_int_equal(res.output_records, 3);
    assert_null(res.preview);
    engine_result_free(&res);
    free(out);
}

static void test_files_in_sorted_order(void **state)
{
    (void)state;
    char *b = input("b.json", "{\"_id\":\"b1\"}\n{\"_id\":\"b2\"}\n{\"_id\":\"b3\"}\n");
    char *a = input("a.json", "{\"_id\":\"a1\"}\n");
    struct engine_file files[] = {{.path = b, .name = "dir/b.json"}, {.path = a, .name = "a.json"}};
    char *out = out_dir();
    struct engine_opts o = opts_fail_fast(1);
    struct engine_result res;
    struct ing_err err;
    ing_err_clear(&err);
    assert_int_equal(engine_run(g_fx.plan, files, 2, &o, out, &res, &err), 0);
    assert_int_equal(res.output_files, 2);
    assert_int_equal(res.output_records, 4);
    /* a.json sorts first, so it is part-00000 and gives the first preview row. */
    json_t *f0 = json_array_get(res.files, 0), *f1 = json_array_get(res.files, 1);
    assert_string_equal(json_string_value(json_object_get(f0, "name")), "part-00000.parquet");
    assert_int_equal(json_integer_value(json_object_get(f0, "records")), 1);
    assert_string_equal(json_string_value(json_object_get(f1, "name")), "part-00001.parquet");
    assert_int_equal(json_integer_value(json_object_get(f1, "records")), 3);
    assert_string_equal(json_string_value(json_object_get(json_array_get(res.preview, 0), "_id")),
                        "a1");
    char *p1 = xasprintf("%s/part-00001.parquet", out);
    assert_parquet(p1, json_integer_value(json_object_get(f1, "size")));
    engine_result_free(&res);
    free(p1), free(a), free(b), free(out);
}

static void test_partial_ingestion(void **state)
{
    (void)state;
    /* With failures allowed, bad rows are counted and described and the good ones land. */
    struct engine_opts o = opts_fail_fast(0);
    o.max_failed_rows = -1;
    struct engine_result res;
    struct ing_err err;
    char *out;
    assert_int_equal(run1("mixed.json", "{\"_id\":\"1\"}\n{\"person\":1}\n{\"_id\":\"3\"}\nnope\n",
                          &o, &out, &res, &err),
                     0);
    assert_int_equal(res.input_records, 4);
    assert_int_equal(res.output_records, 2);
    assert_int_equal(res.failed_records, 2);
    assert_int_equal(json_array_size(res.errors), 2);
    assert_int_equal(res.first_error.row, 2);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(res.errors, 1), "row")), 4);
    engine_result_free(&res);

    /* A limit of one failure: the second one stops the run. */
    o.max_failed_rows = 1;
    free(out);
    assert_int_not_equal(run1("mixed.json", "{\"_id\":\"1\"}\n{}\n{}\n", &o, &out, &res, &err), 0);
    assert_int_equal(res.failed_records, 2);
    assert_int_equal(err.row, 3);
    engine_result_free(&res);
    free(out);
}

static void test_unreadable_file(void **state)
{
    (void)state;
    char *missing = xasprintf("%s/does-not-exist.json", g_fx.dir);
    struct engine_file f = {.path = missing, .name = "gone.json"};
    char *out = out_dir();
    struct engine_opts o = opts_fail_fast(0);
    struct engine_result res;
    struct ing_err err;
    ing_err_clear(&err);
    assert_int_equal(engine_run(g_fx.plan, &f, 1, &o, out, &res, &err), ING_EIO);
    assert_string_equal(err.file, "gone.json");
    engine_result_free(&res);
    free(missing);
    free(out);
}

/* ------------------------------------------------------------------------------------------ */
/* Diagnostics, compression, transient failures                                                */

/* Write `len` bytes to a new input file; returns its path (free()). */
static char *input_bytes(const char *name, const void *data, size_t len)
{
    char *path = xasprintf("%s/in-%d-%s", g_fx.dir, ++g_fx.seq, name);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    fclose(f);
    return path;
}

/* gzip `text` in memory (one member). */
static unsigned char *gzip_mem(const char *text, size_t *out_len)
{
    z_stream z = {0};
    assert_int_equal(deflateInit2(&z, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY), Z_OK);
    size_t cap = deflateBound(&z, strlen(text));
    unsigned char *out = xmalloc(cap);
    z.next_in = (unsigned char *)text;
    z.avail_in = (uInt)strlen(text);
    z.next_out = out;
    z.avail_out = (uInt)cap;
    assert_int_equal(deflate(&z, Z_FINISH), Z_STREAM_END);
    *out_len = cap - z.avail_out;
    deflateEnd(&z);
    return out;
}

static unsigned char *zstd_mem(const char *text, size_t *out_len)
{
    size_t cap = ZSTD_compressBound(strlen(text));
    unsigned char *out = xmalloc(cap);
    *out_len = ZSTD_compress(out, cap, text, strlen(text), 3);
    assert_false(ZSTD_isError(*out_len));
    return out;
}

/* Run the engine over bytes already in memory. */
static int run_bytes(const char *name, const void *data, size_t len, const struct engine_opts *o,
                     struct engine_result *res, struct ing_err *err)
{
    char *path = input_bytes(name, data, len);
    struct engine_file f = {.path = path, .name = name};
    char *out = out_dir();
    ing_err_clear(err);
    int rc = engine_run(g_fx.plan, &f, 1, o, out, res, err);
    free(path);
    free(out);
    return rc;
}

/* Many records, so that compressed streams span several reads. */
static char *many_records(int n)
{
    struct buf b = {0};
    for (int i = 0; i < n; i++)
        buf_printf(&b, "{\"_id\":\"r%d\",\"person\":{\"name\":{\"firstName\":\"N%d\"}},"
                       "\"loyalty\":{\"points\":%d,\"tier\":\"gold\"}}\n",
                   i, i * 7, i);
    char *s = xstrdup(buf_cstr(&b));
    buf_free(&b);
    return s;
}

/* The lines of one diagnostics file, parsed. */
static json_t *read_lines(const char *path)
{
    json_t *out = json_array();
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    char *line = NULL;
    size_t cap = 0;
    while (getline(&line, &cap, f) > 0) {
        json_error_t jerr;
        json_t *doc = json_loads(line, 0, &jerr);
        assert_non_null(doc);
        json_array_append_new(out, doc);
    }
    free(line);
    fclose(f);
    return out;
}

static void test_diagnostics_per_kind(void **state)
{
    (void)state;
    const char *text = "{\"_id\":\"1\"}\n"
                       "{\"_id\": oops}\n"                                   /* 2 parsing */
                       "{\"person\":{}}\n"                                   /* 3 required _id */
                       "{\"_id\":\"4\",\"loyalty\":{\"points\":\"lots\"}}\n" /* 4 conversion */
                       "{\"_id\":\"5\",\"loyalty\":{\"tier\":\"tin\"}}\n"    /* 5 validation */
                       "{\"_id\":\"6\"}\n"
                       "{\"loyalty\":{}}\n";                                 /* 7 required _id */
    char *diag_dir = out_dir();
    struct diag_writer *dw = NULL;
    struct ing_err err;
    ing_err_clear(&err);
    assert_int_equal(diag_writer_open(&dw, diag_dir, 0, &err), 0);
    struct engine_opts o = opts_fail_fast(0);
    o.max_failed_rows = -1;
    o.diag = dw;
    struct engine_result res;
    char *out;
    assert_int_equal(run1("kinds.json", text, &o, &out, &res, &err), 0);
    assert_int_equal(diag_writer_close(dw, &err), 0);
    assert_false(res.batch_error);
    assert_int_equal(res.input_records, 7);
    assert_int_equal(res.output_records, 2);
    assert_int_equal(res.failed_records, 5);
    assert_int_equal(res.failed_by_kind[DIAG_PARSING], 1);
    assert_int_equal(res.failed_by_kind[DIAG_REQUIRED], 2);
    assert_int_equal(res.failed_by_kind[DIAG_CONVERSION], 1);
    assert_int_equal(res.failed_by_kind[DIAG_VALIDATION], 1);

    char *p = xasprintf("%s/row_errors/parsing_errors_0.json", diag_dir);
    json_t *rows = read_lines(p);
    free(p);
    assert_int_equal(json_array_size(rows), 1);
    json_t *r = json_array_get(rows, 0);
    assert_string_equal(json_string_value(json_object_get(r, "_corrupt_record")), "{\"_id\": oops}");
    assert_string_equal(json_string_value(json_object_get(r, "_filename")), "kinds.json");
    assert_int_equal(json_integer_value(json_object_get(r, "_row")), 2);
    json_t *e = json_array_get(json_object_get(r, "_errors"), 0);
    assert_string_equal(json_string_value(json_object_get(e, "code")), "1401");
    json_decref(rows);

    p = xasprintf("%s/row_errors/required_errors_0.json", diag_dir);
    rows = read_lines(p);
    free(p);
    assert_int_equal(json_array_size(rows), 2);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(rows, 0), "_row")), 3);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(rows, 1), "_row")), 7);
    e = json_array_get(json_object_get(json_array_get(rows, 1), "_errors"), 0);
    assert_string_equal(json_string_value(json_object_get(e, "code")), "1555");
    assert_string_equal(json_string_value(json_object_get(e, "field")), "_id");
    assert_string_equal(json_string_value(json_object_get(json_array_get(rows, 1), "_record")),
                        "{\"loyalty\":{}}");
    json_decref(rows);

    p = xasprintf("%s/row_errors/conversion_errors_0.json", diag_dir);
    rows = read_lines(p);
    free(p);
    assert_int_equal(json_array_size(rows), 1);
    e = json_array_get(json_object_get(json_array_get(rows, 0), "_errors"), 0);
    assert_string_equal(json_string_value(json_object_get(e, "field")), "loyalty.points");
    json_decref(rows);

    p = xasprintf("%s/row_errors/validation_errors_0.json", diag_dir);
    rows = read_lines(p);
    free(p);
    e = json_array_get(json_object_get(json_array_get(rows, 0), "_errors"), 0);
    assert_string_equal(json_string_value(json_object_get(e, "code")), "1570");
    assert_string_equal(json_string_value(json_object_get(e, "field")), "loyalty.tier");
    json_decref(rows);
    engine_result_free(&res);
    free(out);
    free(diag_dir);
}

static void test_gzip_and_zstd_input(void **state)
{
    (void)state;
    char *text = many_records(20000); /* ~1.5 MB: several reads and output buffers */
    struct engine_opts o = opts_fail_fast(1);
    struct engine_result res;
    struct ing_err err;

    size_t gz_len, zs_len;
    unsigned char *gz = gzip_mem(text, &gz_len);
    unsigned char *zs = zstd_mem(text, &zs_len);
    assert_true(gz_len < strlen(text) / 4 && zs_len < strlen(text) / 4);

    assert_int_equal(run_bytes("data.json.gz", gz, gz_len, &o, &res, &err), 0);
    assert_int_equal(res.output_records, 20000);
    assert_int_equal(res.input_bytes, (int64_t)gz_len); /* as uploaded, not decompressed */
    assert_string_equal(json_string_value(json_object_get(json_array_get(res.preview, 0), "_id")),
                        "r0");
    engine_result_free(&res);

    /* The name says nothing: the magic bytes decide. */
    assert_int_equal(run_bytes("data", zs, zs_len, &o, &res, &err), 0);
    assert_int_equal(res.output_records, 20000);
    assert_int_equal(res.input_bytes, (int64_t)zs_len);
    engine_result_free(&res);

    /* Two gzip members one after the other are one stream, as gzip -d reads them. */
    size_t a_len, b_len;
    unsigned char *a = gzip_mem("{\"_id\":\"a\"}\n", &a_len);
    unsigned char *b = gzip_mem("{\"_id\":\"b\"}\n{\"_id\":\"c\"}\n", &b_len);
    unsigned char *both = xmalloc(a_len + b_len);
    memcpy(both, a, a_len);
    memcpy(both + a_len, b, b_len);
    assert_int_equal(run_bytes("two.gz", both, a_len + b_len, &o, &res, &err), 0);
    assert_int_equal(res.output_records, 3);
    engine_result_free(&res);
    free(a), free(b), free(both), free(gz), free(zs), free(text);
}

/* A compressed file that does not decompress fails the batch as a whole, never as bad rows. */
static void check_corrupt_compressed(const char *name, const void *data, size_t len,
                                     const char *kind)
{
    struct engine_opts o = opts_fail_fast(0);
    o.max_failed_rows = -1; /* even with partial ingestion */
    struct engine_result res;
    struct ing_err err;
    assert_int_not_equal(run_bytes(name, data, len, &o, &res, &err), 0);
    assert_true(res.batch_error);
    assert_false(res.transient);
    assert_int_equal(res.failed_records, 0);
    assert_string_equal(err.file, name);
    assert_non_null(strstr(err.msg, kind));
    assert_non_null(strstr(err.msg, "cannot be decompressed"));
    json_t *e = json_array_get(res.errors, json_array_size(res.errors) - 1);
    assert_string_equal(json_string_value(json_object_get(e, "code")), "400");
    assert_string_equal(json_string_value(json_object_get(e, "file")), name);
    engine_result_free(&res);
}

static void test_corrupt_compressed(void **state)
{
    (void)state;
    char *text = many_records(2000);
    size_t gz_len, zs_len;
    unsigned char *gz = gzip_mem(text, &gz_len);
    unsigned char *zs = zstd_mem(text, &zs_len);
    check_corrupt_compressed("cut.gz", gz, gz_len / 2, "gzip");     /* truncated */
    check_corrupt_compressed("cut.zst", zs, zs_len / 2, "zstd");
    gz[gz_len / 2] ^= 0x55;                                          /* flipped bits */
    gz[gz_len / 2 + 1] ^= 0xaa;
    check_corrupt_compressed("bad.gz", gz, gz_len, "gzip");
    static const unsigned char junk[] = {0x1f, 0x8b, 'n', 'o', 't', ' ', 'g', 'z'};
    check_corrupt_compressed("junk.gz", junk, sizeof(junk), "gzip");
    free(gz), free(zs), free(text);
}

static void test_write_fault_is_transient(void **state)
{
    (void)state;
    const char *text = "{\"_id\":\"1\"}\n{\"_id\":\"2\"}\n";
    struct engine_opts o = opts_fail_fast(0);
    struct engine_result res;
    struct ing_err err;
    o.fault_write_errno = ENOSPC;
    assert_int_equal(run_bytes("f.json", text, strlen(text), &o, &res, &err), ING_EIO);
    assert_true(res.batch_error);
    assert_true(res.transient);
    assert_int_equal(err.sys_errno, ENOSPC);
    assert_int_equal(res.output_files, 0);
    engine_result_free(&res);

    /* A write refused for good (permissions) is not worth retrying. */
    o.fault_write_errno = EACCES;
    assert_int_equal(run_bytes("f.json", text, strlen(text), &o, &res, &err), ING_EIO);
    assert_true(res.batch_error);
    assert_false(res.transient);
    engine_result_free(&res);

    /* A bad row stopping a run is not a batch-level error. */
    o.fault_write_errno = 0;
    assert_int_not_equal(run_bytes("r.json", "{}\n", 3, &o, &res, &err), 0);
    assert_false(res.batch_error);
    assert_false(res.transient);
    engine_result_free(&res);
}

/* The one magic-byte rule: gzip 1f 8b, zstd 28 b5 2f fd, anything else (or too short) plain. */
static void test_kind_of_first_bytes(void **state)
{
    (void)state;
    static const uint8_t gz[] = {0x1f, 0x8b, 0x08, 0x00};
    static const uint8_t zs[] = {0x28, 0xb5, 0x2f, 0xfd, 0x00};
    static const uint8_t json[] = "{\"a\":1}";
    assert_int_equal(inread_kind_of(gz, sizeof(gz)), INREAD_GZIP);
    assert_int_equal(inread_kind_of(gz, 2), INREAD_GZIP);
    assert_int_equal(inread_kind_of(gz, 1), INREAD_PLAIN);
    assert_int_equal(inread_kind_of(zs, sizeof(zs)), INREAD_ZSTD);
    assert_int_equal(inread_kind_of(zs, 3), INREAD_PLAIN);
    assert_int_equal(inread_kind_of(json, sizeof(json) - 1), INREAD_PLAIN);
    assert_int_equal(inread_kind_of(json, 0), INREAD_PLAIN);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_good_lines),
        cmocka_unit_test(test_missing_required),
        cmocka_unit_test(test_conversion_error),
        cmocka_unit_test(test_constraint_error),
        cmocka_unit_test(test_corrupt_row),
        cmocka_unit_test(test_empty_files),
        cmocka_unit_test(test_array_file),
        cmocka_unit_test(test_multiline_concatenated),
        cmocka_unit_test(test_files_in_sorted_order),
        cmocka_unit_test(test_partial_ingestion),
        cmocka_unit_test(test_unreadable_file),
        cmocka_unit_test(test_diagnostics_per_kind),
        cmocka_unit_test(test_gzip_and_zstd_input),
        cmocka_unit_test(test_corrupt_compressed),
        cmocka_unit_test(test_kind_of_first_bytes),
        cmocka_unit_test(test_write_fault_is_transient),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
