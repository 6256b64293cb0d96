/*
 * fuzz_shred.c - libFuzzer target for one record's whole hot path: tokenize (jtok), validate and
 * convert against a compiled plan (xdm_plan, xdm_convert), shred into Parquet columns (shred,
 * pq_writer).
 *
 * The plan covers every XDM type, nested objects, arrays of objects, arrays of arrays, a map of
 * arrays (identityMap) and each constraint kind. Invariants: a record is either accepted (the
 * writer gets exactly one more row and the converted copy is an object) or refused with one of
 * the documented codes, and a refusal of a well-formed record names the field; the writer's file
 * is closed with a footer every few hundred records, so page and footer code runs too. Every
 * record also goes the other way through the shredder (the fast walk that parses as it goes, or
 * the token walk that previews take), and both must agree on the verdict, the error (code,
 * offset, message, field) and every staged level.
 */
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ingest/shred.h"
#include "parquet/pq_writer.h"
#include "schema/xdm_plan.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                            \
    do {                                                                                       \
        if (!(cond)) {                                                                         \
            fprintf(stderr, "fuzz_shred: invariant failed: %s (%s:%d)\n", #cond, __FILE__,     \
                    __LINE__);                                                                 \
            abort();                                                                           \
        }                                                                                      \
    } while (0)

static const char *SCHEMA =
    "{\"$id\":\"https://ns.adobe.com/fuzz/schemas/event\","
    "\"meta:class\":\"https://ns.adobe.com/xdm/context/experienceevent\",\"type\":\"object\","
    "\"required\":[\"_id\",\"timestamp\"],\"properties\":{"
    "\"_id\":{\"type\":\"string\"},"
    "\"timestamp\":{\"type\":\"string\",\"format\":\"date-time\"},"
    "\"_fuzz\":{\"type\":\"object\",\"properties\":{\"ids\":{\"type\":\"object\",\"properties\":{"
    "  \"loyaltyId\":{\"type\":\"string\"},\"crmId\":{\"type\":\"string\"}}}}},"
    "\"order\":{\"type\":\"object\",\"required\":[\"purchaseID\"],\"properties\":{"
    "  \"purchaseID\":{\"type\":\"string\"},\"priceTotal\":{\"type\":\"number\"}}},"
    "\"items\":{\"type\":\"array\",\"items\":{\"type\":\"object\",\"properties\":{"
    "  \"SKU\":{\"type\":\"string\"},"
    "  \"quantity\":{\"type\":\"integer\",\"meta:xdmType\":\"int\",\"minimum\":0}}}},"
    "\"matrix\":{\"type\":\"array\",\"items\":{\"type\":\"array\",\"items\":{\"type\":\"number\"}}},"
    "\"identityMap\":{\"type\":\"object\",\"meta:xdmType\":\"map\",\"additionalProperties\":{"
    "  \"type\":\"array\",\"items\":{\"type\":\"object\",\"properties\":{"
    "    \"id\":{\"type\":\"string\"},\"primary\":{\"type\":\"boolean\"}}}}},"
    "\"s\":{\"type\":\"object\",\"properties\":{"
    "  \"b\":{\"type\":\"boolean\"},"
    "  \"i8\":{\"type\":\"integer\",\"meta:xdmType\":\"byte\"},"
    "  \"i16\":{\"type\":\"integer\",\"meta:xdmType\":\"short\"},"
    "  \"i32\":{\"type\":\"integer\",\"meta:xdmType\":\"int\"},"
    "  \"i64\":{\"type\":\"integer\",\"meta:xdmType\":\"long\"},"
    "  \"d\":{\"type\":\"number\",\"maximum\":100},"
    "  \"day\":{\"type\":\"string\",\"format\":\"date\"},"
    "  \"ts\":{\"type\":\"string\",\"format\":\"date-time\"},"
    "  \"str\":{\"type\":\"string\",\"minLength\":2,\"maxLength\":4},"
    "  \"tier\":{\"type\":\"string\",\"enum\":[\"gold\",\"silver\"]},"
    "  \"code\":{\"type\":\"string\",\"pattern\":\"^[A-Z]{2}-\\\\d+$\"},"
    "  \"mail\":{\"type\":\"string\",\"format\":\"email\"},"
    "  \"site\":{\"type\":\"string\",\"format\":\"uri\"},"
    "  \"uid\":{\"type\":\"string\",\"format\":\"uuid\"}}}"
    "}}";

/* Rows per file before the writer is closed with a footer and a new one is opened. */
#define ROWS_PER_FILE 200

static struct xdm_plan *g_plan;
static struct shred *g_shred;
static struct pq_writer *g_writer;
static char g_path[64];
static int g_rows;

static void open_writer(void)
{
    struct pq_writer_opts opts = {.codec = PQ_CODEC_ZSTD, .row_group_bytes = 64 * 1024,
                                  .page_bytes = 8 * 1024};
    struct ing_err err;
    CHECK(pq_writer_open(&g_writer, g_plan->pq, g_path, &opts, &err) == 0);
    g_rows = 0;
}

/* The replay driver and libFuzzer both exit normally: leave no temp file behind. */
static void cleanup(void)
{
    pq_writer_abort(g_writer);
    g_writer = NULL;
    unlink(g_path);
    shred_free(g_shred);
    xdm_plan_free(g_plan);
}

static void init_once(void)
{
    if (g_plan)
        return;
    json_t *schema = json_loads(SCHEMA, 0, NULL);
    CHECK(schema != NULL);
    struct ing_err err;
    CHECK(xdm_plan_compile(schema, NULL, &g_plan, &err) == 0);
    json_decref(schema);
    g_shred = shred_new(g_plan);
    snprintf(g_path, sizeof(g_path), "/tmp/fuzz_shred.%d.parquet", (int)getpid());
    open_writer();
    atexit(cleanup);
}

#define MAX_LEVELS 512

/* The levels of every column staged by the last record, as "count:def/rep,..." per column. */
static void levels_of(char *out, size_t cap)
{
    static int defs[MAX_LEVELS], reps[MAX_LEVELS];
    size_t used = 0;
    out[0] = 0;
    for (size_t col = 0; col < pq_schema_ncolumns(g_plan->pq); col++) {
        int n = shred_debug_levels(g_shred, (int)col, defs, reps, MAX_LEVELS);
        CHECK(n >= 0);
        used += (size_t)snprintf(out + used, cap - used, "|%d:", n);
        for (int i = 0; i < n && i < MAX_LEVELS && used < cap; i++)
            used += (size_t)snprintf(out + used, cap - used, "%d/%d,", defs[i], reps[i]);
        CHECK(used < cap);
    }
}

static void same_as_other_walk(const uint8_t *data, size_t size, bool was_json, int rc,
                               const struct ing_err *err)
{
    static char first[1 << 16], second[1 << 16];
    if (rc == 0)
        levels_of(first, sizeof(first));
    json_t *converted = NULL;
    struct ing_err err2;
    ing_err_clear(&err2);
    int rc2 = shred_record(g_shred, (const char *)data, size, NULL,
                           was_json ? NULL : &converted, &err2);
    json_decref(converted);
    CHECK(rc2 == rc);
    CHECK(err2.code == err->code && err2.offset == err->offset);
    CHECK(strcmp(err2.msg, err->msg) == 0 && strcmp(err2.field, err->field) == 0);
    if (rc == 0) {
        levels_of(second, sizeof(second));
        CHECK(strcmp(first, second) == 0);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    init_once();
    bool want_json = size > 0 && (data[0] & 1);
    json_t *converted = NULL;
    struct ing_err err;
    ing_err_clear(&err);
    int rc = shred_record(g_shred, (const char *)data, size, g_writer,
                          want_json ? &converted : NULL, &err);
    if (rc == 0) {
        CHECK(err.code == 0);
        CHECK(!want_json || json_is_object(converted));
        g_rows++;
    } else {
        CHECK(rc == ING_ESYNTAX || rc == ING_ETOOBIG || rc == ING_EREQUIRED || rc == ING_ETYPE ||
              rc == ING_ECONSTRAINT);
        CHECK(converted == NULL);
        /* Anything but a grammar error is about a field of a well-formed record. */
        if (rc == ING_EREQUIRED || rc == ING_ETYPE || rc == ING_ECONSTRAINT)
            CHECK(err.field[0] != '\0');
    }
    json_decref(converted);
    /* The shredder parses good records as it goes and gives the others (and previews) to the
     * token walk: the other way must agree on the verdict, the error and every staged level. */
    same_as_other_walk(data, size, want_json, rc, &err);
    if (g_rows >= ROWS_PER_FILE) {
        struct pq_file_info info;
        CHECK(pq_writer_close(g_writer, &info, &err) == 0);
        CHECK(info.rows == ROWS_PER_FILE);
        unlink(g_path);
        open_writer();
    }
    return 0;
}
