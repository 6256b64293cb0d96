/*
 * test_parallel.c - unit tests of src/ingest/parallel.c: JSON Lines files cut at line starts
 * (coverage, order, no empty ranges, the records of the ranges are the records of the file), the
 * range reader, and par_run (every item once, the lowest failed item's error).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/gen.h"
#include "ingest/parallel.h"
#include "json/jsplit.h"
#include "util/buf.h"
#include "util/mem.h"

/* A temporary file holding `text`; returns an fd open for reading (the file is unlinked). */
static int temp_fd(const void *text, size_t n)
{
    char path[] = "/tmp/test_parallel.XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    unlink(path);
    assert_int_equal(write(fd, text, n), (ssize_t)n);
    return fd;
}

/* Check that the ranges tile [0, size), start at line starts and are not empty. */
static void check_ranges(const char *text, int64_t size, const struct par_range *r, int n, int want)
{
    assert_true(n >= 1 && n <= want);
    assert_int_equal(r[0].start, 0);
    assert_int_equal(r[n - 1].end, size);
    for (int i = 0; i < n; i++) {
        assert_true(r[i].start < r[i].end);
        if (i > 0) {
            assert_int_equal(r[i].start, r[i - 1].end);
            assert_int_equal(text[r[i].start - 1], '\n');
        }
    }
}

/* Read a range through par_read in small pieces. */
static void read_range(int fd, const struct par_range *range, struct buf *out)
{
    struct par_reader rd;
    par_reader_init(&rd, fd, range);
    char piece[777];
    for (;;) {
        int64_t got = par_read(&rd, piece, sizeof(piece), NULL);
        assert_true(got >= 0);
        if (got == 0)
            break;
        assert_int_equal(buf_append(out, piece, (size_t)got), 0);
    }
}

static int gen_sink(void *ctx, const void *p, size_t n)
{
    return buf_append(ctx, p, n);
}

static void test_split_generated_file(void **state)
{
    (void)state;
    struct buf text = {0};
    struct gen_opts o = {.kind = GEN_PURCHASES, .records = 5000, .seed = 21, .bad_share = 0.02,
                         .overlap = -1};
    assert_int_equal(gen_run(&o, gen_sink, &text, NULL, NULL), 0);
    int fd = temp_fd(text.data, text.len);
    struct jsplit_opts jo = {.mode = JSPLIT_LINES};

    /* The records of the whole file, as one splitter sees them. */
    struct jsplit *whole = jsplit_new_mem(text.data, text.len, &jo);
    struct jsplit_record rec;
    int64_t total = 0;
    while (jsplit_next(whole, &rec, NULL) == 1)
        total++;
    jsplit_free(whole);
    assert_int_equal(total, 5000);

    for (int want = 1; want <= 9; want++) {
        struct par_range r[PAR_MAX_RANGES];
        int n = par_split_lines(fd, (int64_t)text.len, want, r, NULL);
        check_ranges((const char *)text.data, (int64_t)text.len, r, n, want);
        assert_int_equal(n, want); /* 5000 short lines split wherever asked */
        struct buf again = {0};
        int64_t records = 0;
        for (int i = 0; i < n; i++) {
            size_t before = again.len;
            read_range(fd, &r[i], &again);
            assert_int_equal(again.len - before, r[i].end - r[i].start);
            /* Each range splits on its own into whole records. */
            struct jsplit *s = jsplit_new_mem(again.data + before, again.len - before, &jo);
            int got;
            while ((got = jsplit_next(s, &rec, NULL)) == 1) {
                assert_false(rec.corrupt && rec.len == 0);
                records++;
            }
            assert_int_equal(got, 0);
            jsplit_free(s);
        }
        assert_int_equal(records, total);
        assert_int_equal(again.len, text.len);
        assert_memory_equal(again.data, text.data, text.len);
        buf_free(&again);
    }
    close(fd);
    buf_free(&text);
}

static void test_split_edges(void **state)
{
    (void)state;
    struct par_range r[PAR_MAX_RANGES];
    /* Empty file: no ranges. */
    int fd = temp_fd("", 0);
    assert_int_equal(par_split_lines(fd, 0, 4, r, NULL), 0);
    close(fd);
    /* No line break at all: one range, whatever is asked. */
    const char *one = "{\"a\":1}{\"b\":2}";
    fd = temp_fd(one, strlen(one));
    assert_int_equal(par_split_lines(fd, (int64_t)strlen(one), 8, r, NULL), 1);
    assert_int_equal(r[0].end, (int64_t)strlen(one));
    close(fd);
    /* One long line and a few short ones: the cuts fall after the long line only. */
    char *longer = xmalloc(300000);
    memset(longer, 'x', 299990);
    memcpy(longer + 299990, "\n{}\n{}\n{}", 9);
    size_t len = 299999;
    fd = temp_fd(longer, len);
    int n = par_split_lines(fd, (int64_t)len, 4, r, NULL);
    check_ranges(longer, (int64_t)len, r, n, 4);
    assert_int_equal(n, 2);
    assert_int_equal(r[1].start, 299991);
    close(fd);
    free(longer);
    /* A break exactly at the target: the cut is right after it. */
    const char *even = "aaa\nbbb\n";
    fd = temp_fd(even, 8);
    n = par_split_lines(fd, 8, 2, r, NULL);
    assert_int_equal(n, 2);
    assert_int_equal(r[0].end, 4);
    close(fd);
    /* want is clamped. */
    fd = temp_fd(even, 8);
    assert_int_equal(par_split_lines(fd, 8, 0, r, NULL), 1);
    close(fd);
    /* A bad fd is a read error. */
    assert_int_equal(par_split_lines(-1, 100, 2, r, NULL), ING_EIO);
}

/* The line start at or after an offset: the offset itself when a line starts there, an empty
 * line is a line, none left gives the size, a break past the first scan block is found. */
static void test_next_line_start(void **state)
{
    (void)state;
    const char *text = "aaa\nbbb\n\nccc";
    int fd = temp_fd(text, 12);
    static const int64_t want[][2] = {{0, 0}, {1, 4}, {3, 4}, {4, 4}, {5, 8}, {8, 8},
                                      {9, 9}, {10, 12}, {12, 12}};
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
        assert_int_equal(par_next_line_start(fd, want[i][0], 12, NULL), want[i][1]);
    /* Only bytes below `size` count. */
    assert_int_equal(par_next_line_start(fd, 5, 7, NULL), 7);
    close(fd);
    size_t n = 200003;
    char *longer = xmalloc(n);
    memset(longer, 'x', n);
    longer[200001] = '\n';
    fd = temp_fd(longer, n);
    assert_int_equal(par_next_line_start(fd, 10, (int64_t)n, NULL), 200002);
    close(fd);
    free(longer);
    assert_int_equal(par_next_line_start(-1, 10, 100, NULL), ING_EIO);
}

struct count_ctx {
    atomic_int hits[64];
    int fail_a, fail_b;
};

static int count_work(void *vctx, int index, struct ing_err *err)
{
    struct count_ctx *c = vctx;
    atomic_fetch_add(&c->hits[index], 1);
    if (index == c->fail_a || index == c->fail_b)
        return ing_err_set(err, index == c->fail_a ? ING_ESYNTAX : ING_EIO, "item %d failed",
                           index);
    return 0;
}

static void test_run(void **state)
{
    (void)state;
    for (int threads = 0; threads <= 4; threads++) {
        for (int n = 0; n <= 20; n += 5) {
            struct count_ctx c = {.fail_a = -1, .fail_b = -1};
            assert_int_equal(par_run(threads, n, count_work, &c, NULL), 0);
            for (int i = 0; i < n; i++)
                assert_int_equal(atomic_load(&c.hits[i]), 1);
            assert_int_equal(atomic_load(&c.hits[n]), 0);
        }
        struct count_ctx c = {.fail_a = 3, .fail_b = 7};
        struct ing_err err;
        ing_err_clear(&err);
        assert_int_equal(par_run(threads, 12, count_work, &c, &err), ING_ESYNTAX);
        assert_string_equal(err.msg, "item 3 failed");
        for (int i = 0; i < 12; i++)
            assert_int_equal(atomic_load(&c.hits[i]), 1); /* every item ran */
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_split_generated_file),
        cmocka_unit_test(test_split_edges),
        cmocka_unit_test(test_next_line_start),
        cmocka_unit_test(test_run),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
