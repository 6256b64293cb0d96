/* test_upload.c - unit tests of the large-file range bookkeeping (src/lake/upload.c):
 * Content-Range parsing, merging, gap and overlap detection, formatting, the JSON form, and the
 * chunk copy into a sparse part file, the first chunk placed by rename, and chunk sinks (bodies
 * written straight into the part file: ranges in flight kept apart, fences, bytes never written
 * past the range), and watches of the received prefix (the mark over pieces in any order, waits,
 * seal, cancel, and what the sinks report). */
#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lake/upload.h"
#include "util/fs.h"
#include "util/mem.h"

static void test_parse_content_range(void **state)
{
    (void)state;
    struct upl_range r;
    int64_t total;
    struct ing_err err;
    ing_err_clear(&err);
    assert_int_equal(upl_parse_content_range("bytes 0-1023/4096", &r, &total, &err), 0);
    assert_int_equal(r.first, 0);
    assert_int_equal(r.last, 1023);
    assert_int_equal(total, 4096);
    assert_int_equal(upl_parse_content_range("bytes 2048-4095/*", &r, &total, NULL), 0);
    assert_int_equal(r.first, 2048);
    assert_int_equal(total, -1);
    assert_int_equal(upl_parse_content_range("bytes 5-5", &r, &total, NULL), 0);
    assert_int_equal(r.last, 5);
    assert_int_equal(total, -1);
    assert_int_equal(upl_parse_content_range("bytes=10-19", &r, &total, NULL), 0);
    assert_int_equal(r.first, 10);
    assert_int_equal(upl_parse_content_range("Bytes 0-9223372036854775806", &r, &total, NULL),
                     0);
    assert_int_equal(r.last, INT64_MAX - 1);

    static const char *const bad[] = {
        "", "bytes", "bytes 1", "bytes 1-", "bytes -1-5", "bytes 5-4", "bytes 0-9/9",
        "items 0-9", "bytes 0-9/x", "bytes 0-9 junk", "bytes 0-99999999999999999999",
        "bytes 0x1-5", "bytes +1-5",
    };
    for (size_t i = 0; i < ING_ARRAY_LEN(bad); i++) {
        ing_err_clear(&err);
        assert_int_equal(upl_parse_content_range(bad[i], &r, &total, &err), ING_EINVAL);
        assert_true(err.msg[0] != '\0');
    }
    assert_int_equal(upl_parse_content_range(NULL, &r, &total, &err), ING_EINVAL);
}

static void test_merge(void **state)
{
    (void)state;
    struct upl_range in[] = {{2048, 4095}, {0, 1023}, {1024, 1500}, {3000, 5000}, {9000, 9000}};
    struct upl_range out[ING_ARRAY_LEN(in)];
    size_t k = upl_merge(in, ING_ARRAY_LEN(in), out);
    assert_int_equal(k, 3);
    assert_int_equal(out[0].first, 0); /* 0-1023 and 1024-1500 touch */
    assert_int_equal(out[0].last, 1500);
    assert_int_equal(out[1].first, 2048); /* 2048-4095 and 3000-5000 overlap */
    assert_int_equal(out[1].last, 5000);
    assert_int_equal(out[2].first, 9000);
    assert_int_equal(upl_covered_bytes(in, ING_ARRAY_LEN(in)), 1501 + 2953 + 1);
    assert_int_equal(upl_merge(in, 0, out), 0);
    assert_int_equal(upl_covered_bytes(NULL, 0), 0);

    /* In place, and a range inside another. */
    struct upl_range same[] = {{0, 99}, {10, 20}, {100, 199}};
    assert_int_equal(upl_merge(same, 3, same), 1);
    assert_int_equal(same[0].last, 199);
}

static void test_check_complete(void **state)
{
    (void)state;
    struct ing_err err;
    int64_t size;
    struct upl_range whole[] = {{1000, 1999}, {0, 999}, {2000, 2499}};
    assert_int_equal(upl_check_complete(whole, 3, -1, &size, NULL), 0);
    assert_int_equal(size, 2500);
    assert_int_equal(upl_check_complete(whole, 3, 2500, &size, NULL), 0);

    ing_err_clear(&err);
    struct upl_range gap[] = {{0, 999}, {2000, 2499}};
    assert_int_equal(upl_check_complete(gap, 2, -1, &size, &err), ING_EINVAL);
    assert_non_null(strstr(err.msg, "1000-1999"));
    assert_non_null(strstr(err.msg, "missing"));

    ing_err_clear(&err);
    struct upl_range late[] = {{10, 99}};
    assert_int_equal(upl_check_complete(late, 1, -1, &size, &err), ING_EINVAL);
    assert_non_null(strstr(err.msg, "0-9"));

    ing_err_clear(&err);
    struct upl_range overlap[] = {{0, 999}, {900, 1999}};
    assert_int_equal(upl_check_complete(overlap, 2, -1, &size, &err), ING_EINVAL);
    assert_non_null(strstr(err.msg, "overlap"));
    assert_non_null(strstr(err.msg, "900-1999"));

    /* A chunk inside another is an overlap too. */
    ing_err_clear(&err);
    struct upl_range inside[] = {{0, 999}, {100, 200}, {1000, 1099}};
    assert_int_equal(upl_check_complete(inside, 3, -1, &size, &err), ING_EINVAL);
    assert_non_null(strstr(err.msg, "overlap"));

    /* The declared size: short of it, or past it. */
    ing_err_clear(&err);
    assert_int_equal(upl_check_complete(whole, 3, 3000, &size, &err), ING_EINVAL);
    assert_non_null(strstr(err.msg, "2500-2999"));
    ing_err_clear(&err);
    assert_int_equal(upl_check_complete(whole, 3, 2000, &size, &err), ING_EINVAL);
    assert_int_equal(size, 0);

    ing_err_clear(&err);
    assert_int_equal(upl_check_complete(NULL, 0, -1, &size, &err), ING_EINVAL);
    assert_non_null(strstr(err.msg, "no bytes"));
}

static void test_format_and_json(void **state)
{
    (void)state;
    struct buf b = {0};
    struct upl_range r[] = {{2048, 4095}, {0, 1023}, {500, 900}};
    assert_int_equal(upl_format(r, 3, &b), 0);
    assert_string_equal(buf_cstr(&b), "bytes=0-1023,2048-4095");
    buf_reset(&b);
    assert_int_equal(upl_format(NULL, 0, &b), 0);
    assert_string_equal(buf_cstr(&b), "bytes=");
    buf_free(&b);

    json_t *j = upl_to_json(r, 3);
    char *text = json_dumps(j, JSON_COMPACT);
    assert_string_equal(text, "[[2048,4095],[0,1023],[500,900]]");
    free(text);
    struct upl_range *back = NULL;
    size_t n = 0;
    assert_int_equal(upl_from_json(j, &back, &n, NULL), 0);
    assert_int_equal(n, 3);
    assert_memory_equal(back, r, sizeof(r));
    free(back);
    json_decref(j);

    static const char *const bad[] = {"{}", "[[1]]", "[[1,2,3]]", "[[5,4]]", "[[-1,4]]",
                                      "[[\"0\",4]]", "[3]"};
    for (size_t i = 0; i < ING_ARRAY_LEN(bad); i++) {
        json_t *v = json_loads(bad[i], 0, NULL);
        assert_non_null(v);
        assert_int_equal(upl_from_json(v, &back, &n, NULL), ING_EINVAL);
        assert_null(back);
        json_decref(v);
    }
    json_t *empty = json_array();
    assert_int_equal(upl_from_json(empty, &back, &n, NULL), 0);
    assert_int_equal(n, 0);
    json_decref(empty);
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void test_copy_chunk(void **state)
{
    (void)state;
    char dir[] = "/tmp/ingot-test-upload-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char *part = xasprintf("%s/part", dir);
    char *c1 = xasprintf("%s/c1", dir);
    char *c2 = xasprintf("%s/c2", dir);
    write_file(part, "");
    write_file(c1, "world");
    write_file(c2, "hello ");
    struct ing_err err;
    ing_err_clear(&err);
    /* Out of order: the second chunk first leaves a hole, the first fills it. */
    assert_int_equal(upl_copy_chunk(c1, part, 6, 5, &err), 0);
    assert_int_equal(fs_file_size(part), 11);
    assert_int_equal(upl_copy_chunk(c2, part, 0, 6, &err), 0);
    char got[32] = {0};
    FILE *f = fopen(part, "r");
    assert_non_null(f);
    assert_int_equal(fread(got, 1, sizeof(got) - 1, f), 11);
    fclose(f);
    assert_string_equal(got, "hello world");

    /* A body shorter than its range, a missing part file, bad arguments. */
    ing_err_clear(&err);
    assert_int_equal(upl_copy_chunk(c1, part, 0, 6, &err), ING_EINVAL);
    char *missing = xasprintf("%s/nope", dir);
    assert_int_equal(upl_copy_chunk(c1, missing, 0, 5, &err), ING_EIO);
    assert_int_equal(upl_copy_chunk(c1, part, -1, 5, &err), ING_EINVAL);
    free(missing);

    fs_rm_rf(dir, NULL);
    free(part);
    free(c1);
    free(c2);
}

static void read_whole(const char *path, char *out, size_t cap)
{
    memset(out, 0, cap);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    size_t got = fread(out, 1, cap - 1, f);
    (void)got;
    fclose(f);
}

static void test_place_chunk(void **state)
{
    (void)state;
    char dir[] = "/tmp/ingot-test-upload-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char *part = xasprintf("%s/part", dir);
    char *spool = xasprintf("%s/spool-1", dir);
    char *c2 = xasprintf("%s/c2", dir);
    /* Stale bytes of an earlier INITIALIZE are replaced whole, not overwritten in place. */
    write_file(part, "stale bytes that are longer than the chunk");
    write_file(spool, "hello ");
    write_file(c2, "world");
    struct ing_err err;
    ing_err_clear(&err);
    bool placed = false;
    assert_int_equal(upl_place_chunk(spool, part, &placed, &err), 0);
    assert_true(placed);
    assert_false(fs_exists(spool)); /* moved, not copied */
    assert_int_equal(fs_file_size(part), 6);
    /* The next chunk continues the renamed part file by copy. */
    assert_int_equal(upl_copy_chunk(c2, part, 6, 5, &err), 0);
    char got[64];
    read_whole(part, got, sizeof(got));
    assert_string_equal(got, "hello world");

    /* A chunk that is not there: an I/O error naming the move, the part file untouched. */
    ing_err_clear(&err);
    placed = true;
    assert_int_equal(upl_place_chunk(spool, part, &placed, &err), ING_EIO);
    assert_false(placed);
    assert_non_null(strstr(err.msg, "moving the chunk"));
    read_whole(part, got, sizeof(got));
    assert_string_equal(got, "hello world");

    fs_rm_rf(dir, NULL);
    free(part);
    free(spool);
    free(c2);
}

/* Two sinks into one part file, out of order and in small pieces, make the whole file; the
 * registry refuses a range in flight twice and forgets a sink once freed. */
static void test_sink_direct(void **state)
{
    (void)state;
    char dir[] = "/tmp/ingot-test-upload-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char *part = xasprintf("%s/part", dir);
    write_file(part, "");
    struct ing_err err;
    ing_err_clear(&err);
    struct upl_sink *a = NULL, *b = NULL, *c = NULL;
    assert_int_equal(upl_sink_open(&b, part, (struct upl_range){6, 10}, &err), 0);
    assert_int_equal(upl_sink_open(&a, part, (struct upl_range){0, 5}, &err), 0);
    assert_true(upl_inflight(part, NULL));
    assert_true(upl_inflight(part, &(struct upl_range){10, 20}));
    assert_false(upl_inflight(part, &(struct upl_range){11, 20}));
    /* Overlapping a sink in flight (a chunk sent again while the first copy still arrives). */
    assert_int_equal(upl_sink_open(&c, part, (struct upl_range){4, 7}, &err), ING_EEXIST);
    assert_null(c);
    upl_sink_write(b, "wor", 3);
    upl_sink_write(a, "hel", 3);
    upl_sink_write(b, "ld", 2);
    upl_sink_write(a, "lo ", 3);
    assert_int_equal(upl_sink_sync(a, &err), 0);
    assert_int_equal(upl_sink_sync(b, &err), 0);
    assert_false(upl_sink_fenced(a));
    char got[64];
    read_whole(part, got, sizeof(got));
    assert_string_equal(got, "hello world");
    upl_sink_free(a);
    upl_sink_free(b);
    upl_sink_free(NULL);
    assert_false(upl_inflight(part, NULL));
    /* Free again: the same range opens. */
    assert_int_equal(upl_sink_open(&c, part, (struct upl_range){4, 7}, &err), 0);
    upl_sink_free(c);

    /* No part file: an I/O error, nothing registered. */
    char *missing = xasprintf("%s/nope", dir);
    assert_int_equal(upl_sink_open(&c, missing, (struct upl_range){0, 1}, &err), ING_EIO);
    assert_false(upl_inflight(missing, NULL));
    free(missing);
    fs_rm_rf(dir, NULL);
    free(part);
}

/* A body longer or shorter than its range is refused at sync, and the bytes past the range never
 * reach the part file (they would land on other chunks). */
static void test_sink_wrong_length(void **state)
{
    (void)state;
    char dir[] = "/tmp/ingot-test-upload-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char *part = xasprintf("%s/part", dir);
    write_file(part, "..........");
    struct ing_err err;
    ing_err_clear(&err);
    struct upl_sink *s = NULL;
    assert_int_equal(upl_sink_open(&s, part, (struct upl_range){2, 4}, &err), 0);
    upl_sink_write(s, "ABCDEFG", 7);
    assert_int_equal(upl_sink_sync(s, &err), ING_EINVAL);
    assert_non_null(strstr(err.msg, "7 bytes"));
    upl_sink_free(s);
    char got[64];
    read_whole(part, got, sizeof(got));
    assert_string_equal(got, "..ABC.....");

    ing_err_clear(&err);
    assert_int_equal(upl_sink_open(&s, part, (struct upl_range){5, 9}, &err), 0);
    upl_sink_write(s, "xy", 2);
    assert_int_equal(upl_sink_sync(s, &err), ING_EINVAL);
    upl_sink_free(s);
    assert_int_equal(upl_sink_open(&s, part, (struct upl_range){3, 1}, &err), ING_EINVAL);
    assert_null(s);
    fs_rm_rf(dir, NULL);
    free(part);
}

/* A fence (COMPLETE or INITIALIZE of the file) stops the sinks of that part file only: their
 * later bytes are dropped and sync says fenced; a sink of another file goes on. */
static void test_sink_fence(void **state)
{
    (void)state;
    char dir[] = "/tmp/ingot-test-upload-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char *part = xasprintf("%s/part", dir);
    char *other = xasprintf("%s/other", dir);
    write_file(part, "");
    write_file(other, "");
    struct ing_err err;
    ing_err_clear(&err);
    struct upl_sink *s = NULL, *o = NULL;
    assert_int_equal(upl_sink_open(&s, part, (struct upl_range){0, 3}, &err), 0);
    assert_int_equal(upl_sink_open(&o, other, (struct upl_range){0, 3}, &err), 0);
    upl_sink_write(s, "ab", 2);
    upl_sink_write(o, "ab", 2);
    upl_fence(part);
    assert_true(upl_sink_fenced(s));
    assert_false(upl_sink_fenced(o));
    upl_sink_write(s, "cd", 2);
    upl_sink_write(o, "cd", 2);
    assert_int_equal(upl_sink_sync(s, &err), ING_ESTATE);
    assert_int_equal(upl_sink_sync(o, &err), 0);
    assert_int_equal(fs_file_size(part), 2); /* "cd" never written */
    assert_int_equal(fs_file_size(other), 4);
    upl_sink_free(s);
    upl_sink_free(o);
    upl_fence(NULL);
    fs_rm_rf(dir, NULL);
    free(part);
    free(other);
}

/* Writers on several threads into disjoint ranges of one part file, with a fence racing them:
 * every byte written is the writer's own (no torn or misplaced write), and the sanitizers see
 * no race on the registry. */
struct sink_thread {
    const char *part;
    int64_t first;
    char fill;
    int rc;
};

static void *sink_thread_main(void *arg)
{
    struct sink_thread *t = arg;
    struct upl_sink *s = NULL;
    char piece[4096];
    memset(piece, t->fill, sizeof(piece));
    t->rc = upl_sink_open(&s, t->part, (struct upl_range){t->first, t->first + 64 * 4096 - 1},
                          NULL);
    for (int i = 0; t->rc == 0 && i < 64; i++)
        upl_sink_write(s, piece, sizeof(piece));
    if (t->rc == 0)
        t->rc = upl_sink_sync(s, NULL);
    upl_sink_free(s);
    return NULL;
}

static void test_sink_threads(void **state)
{
    (void)state;
    char dir[] = "/tmp/ingot-test-upload-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char *part = xasprintf("%s/part", dir);
    write_file(part, "");
    enum { NT = 4 };
    pthread_t th[NT];
    struct sink_thread t[NT];
    for (int i = 0; i < NT; i++) {
        t[i] = (struct sink_thread){.part = part, .first = (int64_t)i * 64 * 4096,
                                    .fill = (char)('a' + i)};
        assert_int_equal(pthread_create(&th[i], NULL, sink_thread_main, &t[i]), 0);
    }
    for (int i = 0; i < NT; i++)
        assert_int_equal(pthread_join(th[i], NULL), 0);
    int fd = open(part, O_RDONLY);
    assert_true(fd >= 0);
    char *all = xmalloc((size_t)NT * 64 * 4096);
    assert_int_equal(read(fd, all, (size_t)NT * 64 * 4096), NT * 64 * 4096);
    close(fd);
    for (int i = 0; i < NT; i++) {
        assert_int_equal(t[i].rc, 0);
        for (size_t k = 0; k < 64 * 4096; k++)
            if (all[(size_t)i * 64 * 4096 + k] != t[i].fill)
                fail_msg("byte %zu of range %d is '%c'", k, i, all[(size_t)i * 64 * 4096 + k]);
    }
    free(all);
    assert_false(upl_inflight(part, NULL));
    fs_rm_rf(dir, NULL);
    free(part);
}

/* What a wait that does not block says: (cancelled ? -1 : mark), final size in *final. */
static int64_t look(struct upl_watch *w, int64_t *final)
{
    int64_t avail = -2;
    *final = -2;
    if (upl_watch_wait(w, -1, &avail, final, NULL) != 0)
        return -1;
    return avail;
}

static void test_watch_mark(void **state)
{
    (void)state;
    const char *part = "/nonexistent/ingot-watch-a";
    struct upl_watch *w = upl_watch_start(part, -1);
    int64_t final;
    assert_int_equal(look(w, &final), 0);
    assert_int_equal(final, -1);
    /* Past a hole: not part of the prefix yet. */
    upl_watch_wrote(part, 100, 150);
    upl_watch_wrote(part, 150, 200);
    upl_watch_wrote(part, 300, 400);
    assert_int_equal(look(w, &final), 0);
    upl_watch_wrote(part, 0, 60);
    assert_int_equal(look(w, &final), 60);
    /* The hole fills: the mark runs over every piece it reaches. */
    upl_watch_wrote(part, 60, 100);
    assert_int_equal(look(w, &final), 200);
    upl_watch_wrote(part, 200, 300);
    assert_int_equal(look(w, &final), 400);
    /* Other paths do not count. */
    upl_watch_wrote("/nonexistent/ingot-watch-b", 400, 500);
    assert_int_equal(look(w, &final), 400);
    /* A blocking wait returns at once when there is more than `have`. */
    int64_t avail = 0;
    assert_int_equal(upl_watch_wait(w, 399, &avail, &final, NULL), 0);
    assert_int_equal(avail, 400);
    upl_watch_seal(part, 450);
    assert_int_equal(look(w, &final), 450);
    assert_int_equal(final, 450);
    assert_int_equal(upl_watch_wait(w, 450, &avail, &final, NULL), 0); /* sealed: no wait */
    assert_false(upl_watch_state(w, &final));
    assert_int_equal(final, 450);
    /* Cancelled for good, whoever asks. */
    upl_watch_cancel(part);
    struct ing_err err;
    ing_err_clear(&err);
    assert_int_equal(upl_watch_wait(w, 0, &avail, &final, &err), ING_ESTATE);
    assert_true(upl_watch_state(w, &final));
    upl_watch_release(w);
}

/* An announced size (Content-Range's total): once the prefix reaches it, waits report it as
 * the final size; the watch's own state still waits for the seal. */
static void test_watch_expected_size(void **state)
{
    (void)state;
    const char *part = "/nonexistent/ingot-watch-e";
    struct upl_watch *w = upl_watch_start(part, 100);
    int64_t final;
    upl_watch_wrote(part, 0, 60);
    assert_int_equal(look(w, &final), 60);
    assert_int_equal(final, -1);
    upl_watch_wrote(part, 60, 100);
    assert_int_equal(look(w, &final), 100);
    assert_int_equal(final, 100);
    int64_t avail = 0;
    assert_int_equal(upl_watch_wait(w, 100, &avail, &final, NULL), 0); /* known: no wait */
    assert_false(upl_watch_state(w, &final));
    assert_int_equal(final, -1);
    upl_watch_seal(part, 100);
    assert_false(upl_watch_state(w, &final));
    assert_int_equal(final, 100);
    upl_watch_cancel(part);
    upl_watch_release(w);
}

/* Sealing below bytes already written (a chunk past the end that COMPLETE cuts off) cancels:
 * a reader may have read them. A new watch of the same path cancels the old one. */
static void test_watch_seal_short_and_restart(void **state)
{
    (void)state;
    const char *part = "/nonexistent/ingot-watch-c";
    struct upl_watch *w = upl_watch_start(part, -1);
    upl_watch_wrote(part, 0, 100);
    upl_watch_seal(part, 80);
    int64_t final;
    assert_true(upl_watch_state(w, &final));
    upl_watch_release(w);

    w = upl_watch_start(part, -1);
    struct upl_watch *w2 = upl_watch_start(part, -1);
    assert_true(upl_watch_state(w, &final));
    assert_false(upl_watch_state(w2, &final));
    upl_watch_wrote(part, 0, 10);
    assert_int_equal(look(w2, &final), 10);
    assert_int_equal(look(w, &final), -1);
    upl_watch_cancel(part);
    assert_true(upl_watch_state(w2, &final));
    upl_watch_release(w);
    upl_watch_release(w2);
}

struct waiter {
    struct upl_watch *w;
    int64_t have, avail, final;
    int rc;
};

static void *wait_main(void *arg)
{
    struct waiter *wt = arg;
    wt->rc = upl_watch_wait(wt->w, wt->have, &wt->avail, &wt->final, NULL);
    return NULL;
}

/* Sinks report what they write; a reader blocked at the mark wakes. A sink freed after writing
 * without being acknowledged cancels the watch; an acknowledged one does not. */
static void test_watch_sinks(void **state)
{
    (void)state;
    char dir[] = "/tmp/ingot-test-upload-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char *part = xasprintf("%s/part", dir);
    write_file(part, "");
    struct ing_err err;
    ing_err_clear(&err);
    struct upl_sink *late = NULL, *a = NULL, *b = NULL;
    /* A chunk arriving before the watch starts: its bytes so far are taken from its sink. */
    assert_int_equal(upl_sink_open(&late, part, (struct upl_range){5, 9}, &err), 0);
    upl_sink_write(late, "wo", 2);
    struct upl_watch *w = upl_watch_start(part, -1);
    struct waiter wt = {.w = w, .have = 0};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, wait_main, &wt), 0);
    assert_int_equal(upl_sink_open(&a, part, (struct upl_range){0, 4}, &err), 0);
    upl_sink_write(a, "hello", 5);
    assert_int_equal(pthread_join(t, NULL), 0);
    assert_int_equal(wt.rc, 0);
    assert_true(wt.avail >= 5);
    int64_t final;
    assert_int_equal(look(w, &final), 7);
    upl_sink_write(late, "rld", 3);
    assert_int_equal(look(w, &final), 10);
    assert_int_equal(upl_sink_sync(a, &err), 0);
    assert_int_equal(upl_sink_sync(late, &err), 0);
    upl_sink_ack(a);
    upl_sink_ack(late);
    upl_sink_free(a);
    upl_sink_free(late);
    assert_false(upl_watch_state(w, &final));
    /* A chunk cut short (never acknowledged) may come again with other bytes. */
    assert_int_equal(upl_sink_open(&b, part, (struct upl_range){10, 19}, &err), 0);
    upl_sink_write(b, "abc", 3);
    assert_int_equal(look(w, &final), 13);
    upl_sink_free(b);
    assert_true(upl_watch_state(w, &final));
    upl_watch_release(w);
    /* A sink that wrote nothing does not cancel. */
    w = upl_watch_start(part, -1);
    assert_int_equal(upl_sink_open(&b, part, (struct upl_range){10, 19}, &err), 0);
    upl_sink_free(b);
    assert_false(upl_watch_state(w, &final));
    upl_watch_cancel(part);
    upl_watch_release(w);
    fs_rm_rf(dir, NULL);
    free(part);
}

/* A chunk fenced (INITIALIZE again) before it wrote a byte, whose body keeps arriving, wrote
 * nothing: a watch of the restarted upload must not count its range. The real chunk of that
 * range written later then moves the mark; bytes written below the mark (written again) cancel
 * the watch, as a reader may have read the old ones. */
static void test_watch_fenced_sink_not_counted(void **state)
{
    (void)state;
    char dir[] = "/tmp/ingot-test-upload-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char *part = xasprintf("%s/part", dir);
    write_file(part, "");
    struct ing_err err;
    ing_err_clear(&err);
    struct upl_sink *old = NULL, *a = NULL, *b = NULL, *again = NULL;
    assert_int_equal(upl_sink_open(&old, part, (struct upl_range){10, 19}, &err), 0);
    upl_fence(part);
    upl_sink_write(old, "XXXXXXXXXX", 10); /* arrives after the fence: dropped */
    struct upl_watch *w = upl_watch_start(part, -1);
    int64_t final;
    assert_int_equal(look(w, &final), 0);
    assert_int_equal(upl_sink_open(&a, part, (struct upl_range){0, 9}, &err), 0);
    upl_sink_write(a, "0123456789", 10);
    assert_int_equal(look(w, &final), 10); /* not 20: [10, 20) holds nothing of this upload */
    assert_int_equal(upl_sink_sync(old, &err), ING_ESTATE);
    upl_sink_free(old);
    assert_false(upl_watch_state(w, &final)); /* it wrote nothing: no reason to cancel */
    assert_int_equal(upl_sink_open(&b, part, (struct upl_range){10, 19}, &err), 0);
    upl_sink_write(b, "abcdefghij", 10);
    assert_int_equal(look(w, &final), 20);
    assert_int_equal(upl_sink_sync(a, &err), 0);
    assert_int_equal(upl_sink_sync(b, &err), 0);
    upl_sink_ack(a);
    upl_sink_ack(b);
    upl_sink_free(a);
    upl_sink_free(b);
    assert_false(upl_watch_state(w, &final));
    /* Bytes below the mark written again. */
    assert_int_equal(upl_sink_open(&again, part, (struct upl_range){5, 9}, &err), 0);
    upl_sink_write(again, "zz", 2);
    assert_true(upl_watch_state(w, &final));
    assert_int_equal(look(w, &final), -1);
    upl_sink_free(again);
    upl_watch_release(w);
    /* The same through the exported report: below the mark, and over a piece past it. */
    w = upl_watch_start(part, -1);
    upl_watch_wrote(part, 0, 10);
    upl_watch_wrote(part, 30, 40);
    upl_watch_wrote(part, 40, 50); /* extends the piece: fine */
    assert_false(upl_watch_state(w, &final));
    upl_watch_wrote(part, 45, 46);
    assert_true(upl_watch_state(w, &final));
    upl_watch_release(w);
    w = upl_watch_start(part, -1);
    upl_watch_wrote(part, 0, 10);
    upl_watch_wrote(part, 9, 12);
    assert_true(upl_watch_state(w, &final));
    upl_watch_release(w);
    fs_rm_rf(dir, NULL);
    free(part);
}

/* A fenced sink freed late, having written bytes it never got acknowledged, cancels the watch it
 * reported them to, not the watch of the upload that started over since, nor a sealed one. A
 * sink that wrote before the watch started reports to it, and so cancels it. */
static void test_watch_late_sink_cancels_its_own(void **state)
{
    (void)state;
    char dir[] = "/tmp/ingot-test-upload-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char *part = xasprintf("%s/part", dir);
    write_file(part, "");
    struct ing_err err;
    ing_err_clear(&err);
    struct upl_sink *old = NULL, *a = NULL, *early = NULL;
    int64_t final;
    struct upl_watch *w1 = upl_watch_start(part, -1);
    assert_int_equal(upl_sink_open(&old, part, (struct upl_range){10, 19}, &err), 0);
    upl_sink_write(old, "abc", 3);
    /* INITIALIZE again: fence, cancel, a new upload and its watch. */
    upl_fence(part);
    upl_watch_cancel(part);
    assert_true(upl_watch_state(w1, &final));
    struct upl_watch *w2 = upl_watch_start(part, 10);
    assert_int_equal(upl_sink_open(&a, part, (struct upl_range){0, 9}, &err), 0);
    upl_sink_write(a, "0123456789", 10);
    assert_int_equal(upl_sink_sync(a, &err), 0);
    upl_sink_ack(a);
    upl_sink_free(a);
    upl_watch_seal(part, 10);
    upl_sink_free(old); /* late, unacknowledged, bytes written: w1's business only */
    assert_false(upl_watch_state(w2, &final));
    assert_int_equal(final, 10);
    upl_watch_cancel(part);
    upl_watch_release(w1);
    upl_watch_release(w2);

    assert_int_equal(upl_sink_open(&early, part, (struct upl_range){10, 19}, &err), 0);
    upl_sink_write(early, "abcd", 4);
    struct upl_watch *w3 = upl_watch_start(part, -1);
    upl_sink_free(early); /* cut short after the watch counted its bytes */
    assert_true(upl_watch_state(w3, &final));
    upl_watch_release(w3);
    fs_rm_rf(dir, NULL);
    free(part);
}

/* A timed wait comes back without news when the time is up, and at once with news. */
static void test_watch_wait_ms(void **state)
{
    (void)state;
    const char *part = "/nonexistent/ingot-watch-t";
    struct upl_watch *w = upl_watch_start(part, -1);
    upl_watch_wrote(part, 0, 10);
    int64_t avail = -2, final = -2;
    assert_int_equal(upl_watch_wait_ms(w, 10, 30, &avail, &final, NULL), 0);
    assert_int_equal(avail, 10);
    assert_int_equal(final, -1);
    assert_int_equal(upl_watch_wait_ms(w, 5, 10000, &avail, &final, NULL), 0);
    assert_int_equal(avail, 10);
    upl_watch_cancel(part);
    assert_int_equal(upl_watch_wait_ms(w, 10, 10000, &avail, &final, NULL), ING_ESTATE);
    upl_watch_release(w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_content_range),
        cmocka_unit_test(test_merge),
        cmocka_unit_test(test_check_complete),
        cmocka_unit_test(test_format_and_json),
        cmocka_unit_test(test_copy_chunk),
        cmocka_unit_test(test_place_chunk),
        cmocka_unit_test(test_sink_direct),
        cmocka_unit_test(test_sink_wrong_length),
        cmocka_unit_test(test_sink_fence),
        cmocka_unit_test(test_sink_threads),
        cmocka_unit_test(test_watch_mark),
        cmocka_unit_test(test_watch_expected_size),
        cmocka_unit_test(test_watch_seal_short_and_restart),
        cmocka_unit_test(test_watch_sinks),
        cmocka_unit_test(test_watch_fenced_sink_not_counted),
        cmocka_unit_test(test_watch_late_sink_cancels_its_own),
        cmocka_unit_test(test_watch_wait_ms),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
