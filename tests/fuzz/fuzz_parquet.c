/*
 * fuzz_parquet.c - libFuzzer target for the Parquet reader.
 *
 * The input is read as a whole Parquet file from memory (pq_reader_open_mem) with small caps,
 * and every row is rendered as JSON. Invariants beyond "no crash, no leak, no hang": every
 * failure is a clean ING_ESYNTAX / ING_ETOOBIG / ING_EINVAL with a message; a reader that
 * finishes handed out exactly the rows the footer declares; every row's JSON text is one valid
 * JSON object (checked with our own tokenizer, which the shredder uses next); rendering a row
 * twice gives the same text; and the typed path (ingest/pq_shred) against a fixed schema whose
 * names are those of the seed files: a row it takes is one the JSON path takes too.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ingest/pq_shred.h"
#include "ingest/shred.h"
#include "json/jtok.h"
#include "parquet/pq_reader.h"
#include "util/buf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                            \
    do {                                                                                       \
        if (!(cond)) {                                                                         \
            fprintf(stderr, "fuzz_parquet: invariant failed: %s (%s:%d)\n", #cond, __FILE__,   \
                    __LINE__);                                                                 \
            abort();                                                                           \
        }                                                                                      \
    } while (0)

static bool clean_code(int rc)
{
    return rc == ING_ESYNTAX || rc == ING_ETOOBIG || rc == ING_EINVAL;
}

/* The text is exactly one JSON object. */
static void check_json(const struct buf *b)
{
    struct jlex lx;
    struct jtok t;
    jlex_init(&lx, (const char *)b->data, b->len);
    CHECK(jlex_next(&lx, &t, NULL) == 0 && t.type == JT_OBJ_BEGIN);
    CHECK(jlex_skip(&lx, &t, NULL) == 0);
    CHECK(jlex_next(&lx, &t, NULL) == 0 && t.type == JT_END);
}

/* The names of the seed files (tests/unit/test_pq_reader.c), in a mix of XDM types. */
static const char *FUZZ_SCHEMA =
    "{\"$id\":\"f\",\"meta:class\":\"c\",\"type\":\"object\",\"properties\":{"
    "\"id\":{\"type\":\"integer\",\"meta:xdmType\":\"long\"},\"name\":{\"type\":\"string\"},"
    "\"score\":{\"type\":\"number\"},\"flag\":{\"type\":\"boolean\"},"
    "\"day\":{\"type\":\"string\",\"meta:xdmType\":\"date\"},"
    "\"at\":{\"type\":\"string\",\"meta:xdmType\":\"date-time\"},\"small\":{\"type\":\"string\"},"
    "\"person\":{\"type\":\"object\",\"required\":[\"first\"],\"properties\":{"
    "  \"first\":{\"type\":\"string\"},\"last\":{\"type\":\"string\",\"maxLength\":4}}},"
    "\"tags\":{\"type\":\"array\",\"items\":{\"type\":\"string\"}},"
    "\"items\":{\"type\":\"array\",\"items\":{\"type\":\"object\",\"properties\":{"
    "  \"sku\":{\"type\":\"string\"},\"qty\":{\"type\":\"integer\",\"meta:xdmType\":\"int\"}}}},"
    "\"attrs\":{\"type\":\"object\",\"meta:xdmType\":\"map\",\"additionalProperties\":"
    "  {\"type\":\"string\"}},"
    "\"ts96\":{\"type\":\"string\",\"meta:xdmType\":\"date-time\"},"
    "\"l2\":{\"type\":\"array\",\"items\":{\"type\":\"string\"}},"
    "\"arr\":{\"type\":\"array\",\"items\":{\"type\":\"object\",\"properties\":{"
    "  \"a\":{\"type\":\"integer\",\"meta:xdmType\":\"short\"},\"b\":{\"type\":\"string\"}}}},"
    "\"m\":{\"type\":\"object\",\"meta:xdmType\":\"map\",\"additionalProperties\":"
    "  {\"type\":\"number\"}},"
    "\"misc\":{\"type\":\"object\",\"properties\":{\"u32\":{\"type\":\"string\"},"
    "  \"dt\":{\"type\":\"string\",\"meta:xdmType\":\"date\"},\"bss\":{\"type\":\"number\"}}}}}";

static struct xdm_plan *fuzz_plan(void)
{
    static struct xdm_plan *plan;
    if (!plan) {
        json_t *js = json_loads(FUZZ_SCHEMA, 0, NULL);
        CHECK(js && xdm_plan_compile(js, NULL, &plan, NULL) == 0);
        json_decref(js);
    }
    return plan;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct pq_reader_opts o = {.max_footer_bytes = 1 << 20,
                               .max_page_bytes = 4 << 20,
                               .max_row_group_bytes = 32 << 20};
    struct pq_reader *r = NULL;
    struct ing_err err;
    ing_err_clear(&err);
    int rc = pq_reader_open_mem(&r, data, size, &o, &err);
    if (rc) {
        CHECK(clean_code(rc) && err.code == rc && err.msg[0]);
        return 0;
    }
    struct buf row = {0}, again = {0};
    row.limit = again.limit = 64 << 20;
    struct xdm_plan *plan = fuzz_plan();
    struct shred *sh = shred_new(plan);
    struct pq_shred *ps = pq_shred_new(r, sh, plan, row.limit);
    int64_t rows = 0;
    while ((rc = pq_reader_next(r, &err)) == 1) {
        rows++;
        CHECK(pq_reader_row(r) == rows);
        bool taken = pq_shred_row(ps) == 0;
        if (taken)
            CHECK(shred_end(sh, NULL, NULL) == 0);
        buf_reset(&row);
        ing_err_clear(&err);
        int jr = pq_reader_row_json(r, &row, &err);
        if (jr) {
            CHECK(clean_code(jr) && err.code == jr && err.row == rows);
            CHECK(!taken);
            continue;
        }
        check_json(&row);
        if (taken) /* the typed path takes only rows the JSON path takes */
            CHECK(shred_record(sh, (const char *)row.data, row.len, NULL, NULL, NULL) == 0);
        if (rows <= 4) {
            buf_reset(&again);
            CHECK(pq_reader_row_json(r, &again, NULL) == 0);
            CHECK(again.len == row.len && memcmp(again.data, row.data, row.len) == 0);
        }
    }
    if (rc == 0)
        CHECK(rows == pq_reader_num_rows(r));
    else
        CHECK(clean_code(rc) && err.code == rc && err.msg[0]);
    CHECK(pq_reader_next(r, NULL) == rc); /* the end, or the error, sticks */
    buf_free(&row);
    buf_free(&again);
    pq_shred_free(ps);
    shred_free(sh);
    pq_reader_free(r);
    return 0;
}
