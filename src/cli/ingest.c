/*
 * ingest.c - `ingot ingest`: local files through the ingestion engine; see ingest.h.
 *
 * Nothing here is a second pipeline: the schema is resolved with registry_resolve_doc and
 * compiled with xdm_plan_compile exactly as the batch worker does, and the files go through
 * engine_run. What this file adds is the command line, the schema loading and the summary.
 */
#include "cli/ingest.h"

#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ingest/diag.h"
#include "ingest/engine.h"
#include "schema/registry.h"
#include "schema/xdm_plan.h"
#include "schema/xdm_std.h"
#include "util/clock.h"
#include "util/mem.h"

/* Row errors shown in the summary (the engine keeps up to 1000). */
#define CLI_SHOWN_ERRORS 5

/* Resources the resolver may fetch: the built-in set and the user's tenant resources. */
struct lookup {
    json_t *std;              /* $id -> resource */
    const json_t *resources;  /* array of tenant resources, or NULL */
};

static bool id_matches(const json_t *doc, const char *id)
{
    const char *a = json_string_value(json_object_get(doc, "$id"));
    const char *b = json_string_value(json_object_get(doc, "meta:altId"));
    return (a && strcmp(a, id) == 0) || (b && strcmp(b, id) == 0);
}

static int lookup_fn(void *ctx, const char *id, json_t **out, struct ing_err *err)
{
    struct lookup *l = ctx;
    size_t i;
    json_t *doc;
    json_array_foreach(l->resources, i, doc) {
        if (id_matches(doc, id)) {
            *out = json_incref(doc);
            return 0;
        }
    }
    doc = json_object_get(l->std, id);
    if (!doc)
        return ing_err_set(err, ING_ENOTFOUND, "resource %s is neither built in nor given "
                                               "with --resource", id);
    *out = json_incref(doc);
    return 0;
}

int cli_load_schema(const char *path, const json_t *resources, json_t **full, struct ing_err *err)
{
    *full = NULL;
    json_error_t jerr;
    struct lookup l = {.resources = resources};
    json_t *doc = json_load_file(path, 0, &jerr);
    int rc = 0;
    if (!doc) {
        rc = ing_err_set(err, ING_ESYNTAX, "%s: %s (line %d)", path, jerr.text, jerr.line);
        goto out;
    }
    if (!json_is_object(doc)) {
        rc = ing_err_set(err, ING_EINVAL, "%s: a schema must be a JSON object", path);
        goto out;
    }
    if (!json_object_get(doc, "allOf")) {
        *full = json_incref(doc); /* already resolved (xed-full) */
        goto out;
    }
    if ((rc = xdm_std_load(&l.std, err)) != 0)
        goto out;
    rc = registry_resolve_doc(doc, lookup_fn, &l, full, err);
out:
    json_decref(l.std);
    json_decref(doc);
    return rc;
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: ingot ingest --schema SCHEMA.json [--descriptors D.json] [--resource R.json]...\n"
            "                    --out DIR [--codec zstd|snappy|none] [--zstd-level N]\n"
            "                    [--format json|parquet] [--multiline] [--max-failed N] [--threads N]\n"
            "                    [--diagnostics DIR] [--errors-out FILE] FILE...\n"
            "\n"
            "  --schema FILE       resolved (xed-full) schema, or one with standard $refs\n"
            "  --descriptors FILE  identity descriptors (a JSON array)\n"
            "  --resource FILE     a tenant field group/class/data type the schema refers to\n"
            "  --out DIR           where the Parquet part files go\n"
            "  --codec C           page compression (default zstd)\n"
            "  --zstd-level N      zstd level (default: the writer's)\n"
            "  --format F          input format: json (default) or parquet\n"
            "  --multiline         isMultiLineJson: records span lines\n"
            "  --max-failed N      stop after more than N bad rows (default -1: never)\n"
            "  --threads N         threads for a large JSON Lines file or a Parquet file with\n"
            "                      several row groups (default: online CPUs; 1 = sequential)\n"
            "  --diagnostics DIR   write every bad row to DIR/row_errors (the batch layout)\n"
            "  --errors-out FILE   write the run's row errors (JSON, up to 1000) and first error\n");
}

static int parse_codec(const char *s, enum pq_codec *out)
{
    if (!strcmp(s, "zstd"))
        *out = PQ_CODEC_ZSTD;
    else if (!strcmp(s, "snappy"))
        *out = PQ_CODEC_SNAPPY;
    else if (!strcmp(s, "none"))
        *out = PQ_CODEC_UNCOMPRESSED;
    else
        return ING_EINVAL;
    return 0;
}

/* The summary: one JSON object on stdout. */
static void print_summary(const struct engine_result *res, size_t nfiles, double seconds, int rc,
                          const struct ing_err *err)
{
    double mb = (double)res->input_bytes / 1e6;
    json_t *errors = json_array();
    for (size_t i = 0; i < json_array_size(res->errors) && i < CLI_SHOWN_ERRORS; i++)
        json_array_append(errors, json_array_get(res->errors, i));
    json_t *s = json_pack(
        "{s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:f, s:f, s:f, s:o}", "status",
        rc == 0 ? "success" : "failed", "files", (json_int_t)nfiles, "records_in",
        (json_int_t)res->input_records, "records_out", (json_int_t)res->output_records,
        "records_failed", (json_int_t)res->failed_records, "unknown_fields",
        (json_int_t)res->unknown_fields, "input_bytes", (json_int_t)res->input_bytes,
        "output_bytes", (json_int_t)res->output_bytes, "output_files",
        (json_int_t)res->output_files, "seconds", seconds, "records_per_s",
        seconds > 0 ? (double)res->input_records / seconds : 0.0, "mb_per_s",
        seconds > 0 ? mb / seconds : 0.0, "errors", errors);
    if (rc != 0 && err)
        json_object_set_new(s, "error", json_pack("{s:s, s:s, s:s}", "code", ing_strerror(rc),
                                                  "file", err->file, "message", err->msg));
    char *text = json_dumps(s, JSON_COMPACT);
    if (text)
        printf("%s\n", text);
    free(text);
    json_decref(s);
}

/* --errors-out: every row error the engine kept and the first one, for comparing runs. */
static void write_errors(const char *path, const struct engine_result *res)
{
    const struct ing_err *e = &res->first_error;
    json_t *doc = json_pack("{s:O, s:{s:i, s:s, s:I, s:I, s:s, s:s}, s:[I,I,I,I], s:I, s:I}",
                            "errors", res->errors, "first_error", "code", e->code, "file",
                            e->file, "row", (json_int_t)e->row, "offset", (json_int_t)e->offset,
                            "field", e->field, "message", e->msg, "failed_by_kind",
                            (json_int_t)res->failed_by_kind[0], (json_int_t)res->failed_by_kind[1],
                            (json_int_t)res->failed_by_kind[2], (json_int_t)res->failed_by_kind[3],
                            "records_in", (json_int_t)res->input_records, "records_failed",
                            (json_int_t)res->failed_records);
    if (!doc || json_dump_file(doc, path, JSON_COMPACT) != 0)
        fprintf(stderr, "ingot ingest: cannot write %s\n", path);
    json_decref(doc);
}

int cli_ingest_main(int argc, char **argv)
{
    const char *schema_path = NULL, *descriptors_path = NULL, *out_dir = NULL;
    const char *diag_dir = NULL, *errors_out = NULL;
    struct diag_writer *diag = NULL;
    struct engine_opts opts = {.format = ENGINE_JSON, .max_failed_rows = -1,
                               .parquet = {.codec = PQ_CODEC_ZSTD}};
    json_t *resources = json_array(), *full = NULL, *descriptors = NULL;
    struct xdm_plan *plan = NULL;
    struct engine_file *files = NULL;
    struct engine_result res = {0};
    bool have_res = false;
    struct ing_err err;
    ing_err_clear(&err);
    int exit_code = 2, rc = 0;

    static const struct option longopts[] = {
        {"schema", required_argument, NULL, 's'},     {"descriptors", required_argument, NULL, 'd'},
        {"resource", required_argument, NULL, 'r'},   {"out", required_argument, NULL, 'o'},
        {"codec", required_argument, NULL, 'c'},      {"zstd-level", required_argument, NULL, 'z'},
        {"multiline", no_argument, NULL, 'm'},        {"max-failed", required_argument, NULL, 'f'},
        {"threads", required_argument, NULL, 't'},    {"diagnostics", required_argument, NULL, 'D'},
        {"errors-out", required_argument, NULL, 'E'}, {"format", required_argument, NULL, 'F'},
        {"help", no_argument, NULL, 'h'},             {NULL, 0, NULL, 0},
    };
    int ch;
    while ((ch = getopt_long(argc, argv, "s:d:r:o:c:z:mf:t:D:E:F:h", longopts, NULL)) != -1) {
        json_error_t jerr;
        json_t *doc;
        switch (ch) {
        case 's': schema_path = optarg; break;
        case 'd': descriptors_path = optarg; break;
        case 'r':
            doc = json_load_file(optarg, 0, &jerr);
            if (!doc) {
                fprintf(stderr, "ingot ingest: %s: %s\n", optarg, jerr.text);
                goto out;
            }
            json_array_append_new(resources, doc);
            break;
        case 'o': out_dir = optarg; break;
        case 'c':
            if (parse_codec(optarg, &opts.parquet.codec) != 0) {
                fprintf(stderr, "ingot ingest: unknown codec %s\n", optarg);
                goto out;
            }
            break;
        case 'z': opts.parquet.zstd_level = atoi(optarg); break;
        case 'm': opts.multiline = true; break;
        case 'F':
            if (!strcmp(optarg, "json"))
                opts.format = ENGINE_JSON;
            else if (!strcmp(optarg, "parquet"))
                opts.format = ENGINE_PARQUET;
            else {
                fprintf(stderr, "ingot ingest: --format takes json or parquet\n");
                return 2;
            }
            break;
        case 'f': opts.max_failed_rows = strtoll(optarg, NULL, 10); break;
        case 't': opts.threads = atoi(optarg); break;
        case 'D': diag_dir = optarg; break;
        case 'E': errors_out = optarg; break;
        case 'h': usage(stdout); exit_code = 0; goto out;
        default: usage(stderr); goto out;
        }
    }
    if (!schema_path || !out_dir || optind >= argc) {
        usage(stderr);
        goto out;
    }
    exit_code = 1;
    if ((rc = cli_load_schema(schema_path, resources, &full, &err)) != 0)
        goto fail;
    if (descriptors_path) {
        json_error_t jerr;
        descriptors = json_load_file(descriptors_path, 0, &jerr);
        if (!descriptors || !json_is_array(descriptors)) {
            rc = ing_err_set(&err, ING_EINVAL, "%s: descriptors must be a JSON array%s%s",
                             descriptors_path, descriptors ? "" : ": ",
                             descriptors ? "" : jerr.text);
            goto fail;
        }
    }
    if ((rc = xdm_plan_compile(full, descriptors, &plan, &err)) != 0)
        goto fail;
    size_t nfiles = (size_t)(argc - optind);
    files = xcalloc(nfiles, sizeof(*files));
    for (size_t i = 0; i < nfiles; i++) {
        files[i].path = argv[optind + (int)i];
        files[i].name = argv[optind + (int)i];
    }
    if (diag_dir && (rc = diag_writer_open(&diag, diag_dir, 0, &err)) != 0)
        goto fail;
    opts.diag = diag;
    int64_t t0 = clock_mono_ns();
    rc = engine_run(plan, files, nfiles, &opts, out_dir, &res, &err);
    double seconds = (double)(clock_mono_ns() - t0) / 1e9;
    have_res = true;
    struct ing_err derr;
    ing_err_clear(&derr);
    int drc = diag_writer_close(diag, &derr);
    diag = NULL;
    if (drc != 0 && rc == 0) {
        rc = drc;
        err = derr;
    }
    if (errors_out)
        write_errors(errors_out, &res);
    print_summary(&res, nfiles, seconds, rc, &err);
    if (rc != 0)
        goto fail;
    exit_code = 0;
    goto out;
fail:
    fprintf(stderr, "ingot ingest: %s%s%s\n", err.field[0] ? err.field : "",
            err.field[0] ? ": " : "", err.msg[0] ? err.msg : ing_strerror(rc));
out:
    diag_writer_close(diag, NULL);
    if (have_res)
        engine_result_free(&res);
    free(files);
    xdm_plan_free(plan);
    json_decref(descriptors);
    json_decref(full);
    json_decref(resources);
    return exit_code;
}
