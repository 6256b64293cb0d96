/*
 * fuzz_parquet.c - libFuzzer target for the Parquet reader.
 *
 * The input is read as a whole Parquet file from memory (pq_reader_open_mem) with small caps,
 * and every row is rendered as JSON. Invariants beyond "no crash, no leak, no hang": every
 * failure is a clean ING_ESYNTAX / ING_ETOOBIG / ING_EINVAL with a message; a reader that
 * finishes handed out exactly the rows the footer declares; every row's JSON text is one valid
 * JSON object (checked with our own tokenizer, which the shredder uses next); rendering a row
 * twice gives the same text.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
    int64_t rows = 0;
    while ((rc = pq_reader_next(r, &err)) == 1) {
        rows++;
        CHECK(pq_reader_row(r) == rows);
        buf_reset(&row);
        ing_err_clear(&err);
        int jr = pq_reader_row_json(r, &row, &err);
        if (jr) {
            CHECK(clean_code(jr) && err.code == jr && err.row == rows);
            continue;
        }
        check_json(&row);
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
    pq_reader_free(r);
    return 0;
}
