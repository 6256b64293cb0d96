/*
 * fuzz_json.c - libFuzzer target for the JSON readers (jsplit + jtok).
 *
 * The input is split from memory in every mode, with several chunk sizes, and each run must give
 * the same records and the same final result: chunking may never change what the splitter sees.
 * Every record is then tokenized fully, and the invariants that tie the two together are checked:
 * records lie inside the input, in order, without overlap; a record flagged corrupt never
 * tokenizes; a record that tokenizes re-splits to itself (alone, and as the only element of an
 * array); its strings decode; skipping its top-level value lands on JT_END. Splitting with
 * lazy_corrupt must give the same records, and jsplit_line_corrupt the same corrupt flags.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json/jsplit.h"
#include "json/jtok.h"
#include "util/buf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                            \
    do {                                                                                       \
        if (!(cond)) {                                                                         \
            fprintf(stderr, "fuzz_json: invariant failed: %s (%s:%d)\n", #cond, __FILE__,      \
                    __LINE__);                                                                 \
            abort();                                                                           \
        }                                                                                      \
    } while (0)

struct seen {
    int64_t offset;
    size_t len;
    bool corrupt;
};

struct run {
    struct seen *recs;
    size_t n, cap;
    int rc;
    int64_t err_offset;
};

/* Tokenize a whole record; 0 when valid. Decodes strings and numbers on the way. */
static int tokenize(const char *p, size_t n, struct buf *scratch)
{
    struct jlex lx;
    struct jtok t;
    struct ing_err err;
    ing_err_clear(&err);
    jlex_init(&lx, p, n);
    for (;;) {
        int rc = jlex_next(&lx, &t, &err);
        if (rc) {
            CHECK(rc == ING_ESYNTAX || rc == ING_ETOOBIG);
            CHECK(err.code == rc && err.offset >= 0 && (size_t)err.offset <= n);
            return rc;
        }
        if (t.type == JT_END)
            return 0;
        CHECK(t.p >= p && t.p + t.n <= p + n);
        if (t.type == JT_KEY || t.type == JT_STRING) {
            buf_reset(scratch);
            CHECK(jtok_unescape(t.p, t.n, scratch, NULL) == 0); /* jtok accepted it */
            CHECK(scratch->len <= t.n);
            if (!t.escaped)
                CHECK(scratch->len == t.n && (t.n == 0 || !memcmp(scratch->data, t.p, t.n)));
        } else if (t.type == JT_NUMBER) {
            double d;
            int64_t v;
            int rf = jtok_f64(t.p, t.n, &d);
            CHECK(rf == 0 || rf == ING_ETYPE);
            int ri = jtok_i64(t.p, t.n, &v);
            CHECK(ri == 0 || ri == ING_ETYPE);
            if (ri == 0 && rf == 0 && v > -(1LL << 53) && v < (1LL << 53))
                CHECK(d == (double)v);
        }
    }
}

/* After a successful tokenize: skipping the top-level value must land on the end. */
static void check_skip(const char *p, size_t n)
{
    struct jlex lx;
    struct jtok t;
    jlex_init(&lx, p, n);
    CHECK(jlex_next(&lx, &t, NULL) == 0);
    CHECK(jlex_skip(&lx, &t, NULL) == 0);
    CHECK(jlex_next(&lx, &t, NULL) == 0);
    CHECK(t.type == JT_END);
}

/* A valid record split alone (and wrapped in an array) gives back exactly itself. */
static void check_resplit(const char *p, size_t n)
{
    struct jsplit_record r;
    struct jsplit *s = jsplit_new_mem(p, n, &(struct jsplit_opts){.mode = JSPLIT_CONCAT,
                                                                   .chunk_bytes = 5});
    CHECK(jsplit_next(s, &r, NULL) == 1);
    CHECK(r.data == p && r.len == n && r.offset == 0 && !r.corrupt);
    CHECK(jsplit_next(s, &r, NULL) == 0);
    jsplit_free(s);

    char *wrapped = malloc(n + 2);
    CHECK(wrapped != NULL);
    wrapped[0] = '[';
    memcpy(wrapped + 1, p, n);
    wrapped[n + 1] = ']';
    s = jsplit_new_mem(wrapped, n + 2, &(struct jsplit_opts){.mode = JSPLIT_ARRAY});
    CHECK(jsplit_next(s, &r, NULL) == 1);
    CHECK(r.len == n && r.offset == 1 && memcmp(r.data, p, n) == 0);
    CHECK(jsplit_next(s, &r, NULL) == 0);
    jsplit_free(s);
    free(wrapped);

    if (!memchr(p, '\n', n)) {
        s = jsplit_new_mem(p, n, &(struct jsplit_opts){.mode = JSPLIT_LINES});
        CHECK(jsplit_next(s, &r, NULL) == 1);
        CHECK(r.data == p && r.len == n && !r.corrupt);
        CHECK(jsplit_next(s, &r, NULL) == 0);
        jsplit_free(s);
    }
}

static void split_run(const uint8_t *data, size_t size, const struct jsplit_opts *o,
                      struct run *out, bool deep_checks, struct buf *scratch)
{
    const char *in = (const char *)data;
    struct jsplit *s = jsplit_new_mem(data, size, o);
    struct jsplit_record r;
    struct ing_err err;
    ing_err_clear(&err);
    int64_t prev_end = 0;
    int rc;
    out->n = 0;
    while ((rc = jsplit_next(s, &r, &err)) == 1) {
        CHECK(r.len > 0);
        CHECK(r.data >= in && r.data + r.len <= in + size);
        CHECK(r.offset == r.data - in);
        CHECK(r.offset >= prev_end);
        CHECK(r.row == (int64_t)out->n + 1);
        CHECK(jsplit_mode(s) != JSPLIT_AUTO);
        if (o->max_record)
            CHECK(r.len <= o->max_record);
        prev_end = r.offset + (int64_t)r.len;
        if (out->n == out->cap) {
            out->cap = out->cap ? out->cap * 2 : 16;
            out->recs = realloc(out->recs, out->cap * sizeof(*out->recs));
            CHECK(out->recs != NULL);
        }
        bool corrupt = r.corrupt;
        if (r.unchecked) { /* lazy JSON Lines: the flag is computed on demand */
            CHECK(o->lazy_corrupt && jsplit_mode(s) == JSPLIT_LINES && !r.corrupt);
            corrupt = jsplit_line_corrupt(r.data, r.len);
        } else {
            CHECK(!o->lazy_corrupt || jsplit_mode(s) != JSPLIT_LINES);
        }
        out->recs[out->n++] = (struct seen){r.offset, r.len, corrupt};
        if (deep_checks) {
            int trc = tokenize(r.data, r.len, scratch);
            if (corrupt)
                CHECK(trc != 0);
            if (trc == 0) {
                check_skip(r.data, r.len);
                check_resplit(r.data, r.len);
            }
        }
        ing_err_clear(&err);
    }
    CHECK(rc == 0 || rc == ING_ESYNTAX || rc == ING_ETOOBIG);
    if (rc) {
        CHECK(err.code == rc);
        CHECK(err.offset >= prev_end && err.offset <= (int64_t)size);
        CHECK(err.row == (int64_t)out->n + 1);
        CHECK(jsplit_next(s, &r, NULL) == rc);
    } else {
        CHECK(jsplit_bytes_read(s) == (int64_t)size);
        CHECK(jsplit_next(s, &r, NULL) == 0);
    }
    out->rc = rc;
    out->err_offset = rc ? err.offset : -1;
    jsplit_free(s);
}

static bool same_run(const struct run *a, const struct run *b)
{
    if (a->n != b->n || a->rc != b->rc || a->err_offset != b->err_offset)
        return false;
    for (size_t i = 0; i < a->n; i++)
        if (a->recs[i].offset != b->recs[i].offset || a->recs[i].len != b->recs[i].len ||
            a->recs[i].corrupt != b->recs[i].corrupt)
            return false;
    return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const struct {
        enum jsplit_mode mode;
        bool multiline;
    } modes[] = {
        {JSPLIT_AUTO, false}, {JSPLIT_AUTO, true}, {JSPLIT_LINES, false},
        {JSPLIT_ARRAY, false}, {JSPLIT_CONCAT, false},
    };
    static const size_t chunks[] = {0, 1, 7, 64};
    struct buf scratch = {0};
    struct run first = {0}, other = {0};

    for (size_t m = 0; m < sizeof(modes) / sizeof(modes[0]); m++) {
        for (size_t c = 0; c < sizeof(chunks) / sizeof(chunks[0]); c++) {
            if (chunks[c] == 1 && size > 4096)
                continue; /* byte-at-a-time is slow on big inputs and adds little */
            struct jsplit_opts o = {.mode = modes[m].mode, .multiline = modes[m].multiline,
                                    .chunk_bytes = chunks[c]};
            if (c == 0) {
                split_run(data, size, &o, &first, true, &scratch);
            } else {
                split_run(data, size, &o, &other, false, &scratch);
                CHECK(same_run(&first, &other));
            }
        }
        /* lines cut lazily: the same records and flags */
        for (size_t c = 0; c < 3; c++) {
            struct jsplit_opts lz = {.mode = modes[m].mode, .multiline = modes[m].multiline,
                                     .chunk_bytes = chunks[c], .lazy_corrupt = true};
            if (chunks[c] == 1 && size > 4096)
                continue;
            split_run(data, size, &lz, &other, false, &scratch);
            CHECK(same_run(&first, &other));
        }
        /* a small record limit only ever cuts the run short with ING_ETOOBIG */
        struct jsplit_opts lim = {.mode = modes[m].mode, .multiline = modes[m].multiline,
                                  .chunk_bytes = 3, .max_record = 16};
        split_run(data, size, &lim, &other, false, &scratch);
        CHECK(other.rc == first.rc || other.rc == ING_ETOOBIG);
        CHECK(other.n <= first.n);
        for (size_t i = 0; i < other.n; i++)
            CHECK(other.recs[i].offset == first.recs[i].offset &&
                  other.recs[i].len == first.recs[i].len);
    }

    /* the whole input as one record */
    if (tokenize((const char *)data, size, &scratch) == 0)
        check_skip((const char *)data, size);

    free(first.recs);
    free(other.recs);
    buf_free(&scratch);
    return 0;
}
