/*
 * test_engine_spec.c - speculative engine runs (a file read while it is still being uploaded)
 * against an ordinary one-thread run of the finished file: the same counts, errors[],
 * first_error, previews and byte-for-byte the same diagnostics files, with partial ingestion on,
 * off and with a row limit in between. The file arrives through a writer thread in pieces, some
 * out of order, reported to a received-prefix watch (lake/upload.h) as the chunk sinks report
 * them; the watch is sealed with the final size as a file COMPLETE seals it. Also: a run whose
 * watch is cancelled, a compressed file, a file replaced after the run, and a run stopped while
 * it waits are never adopted, and the file is read as usual.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "cli/gen.h"
#include "ingest/engine.h"
#include "lake/upload.h"
#include "schema/xdm_plan.h"
#include "util/fs.h"
#include "util/mem.h"

#define RECORDS 6000
#define SPLIT_MIN ((int64_t)64 << 10)
#define PIECE ((size_t)48 << 10)

struct fixture {
    char dir[64];
    struct xdm_plan *plan;
    char *lines;        /* loyalty JSON Lines with about 4% bad rows */
    char *data;         /* its bytes */
    size_t len;
    int seq;
};

static struct fixture g_fx;

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

static int group_setup(void **state)
{
    (void)state;
    snprintf(g_fx.dir, sizeof(g_fx.dir), "/tmp/test_engine_spec.XXXXXX");
    if (!mkdtemp(g_fx.dir))
        return -1;
    json_t *schema = gen_schema(GEN_LOYALTY, NULL);
    int rc = xdm_plan_compile(schema, NULL, &g_fx.plan, NULL);
    json_decref(schema);
    if (rc != 0)
        return -1;
    struct gen_opts go = {.kind = GEN_LOYALTY, .records = RECORDS, .seed = 11, .bad_share = 0.04};
    struct gen_stats st;
    g_fx.lines = xasprintf("%s/loyalty.json", g_fx.dir);
    if (gen_write_file(&go, g_fx.lines, &st, NULL) != 0 || st.bad_records < 100 ||
        st.bytes < 8 * SPLIT_MIN)
        return -1;
    g_fx.data = slurp(g_fx.lines, &g_fx.len);
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    xdm_plan_free(g_fx.plan);
    free(g_fx.lines);
    free(g_fx.data);
    fs_rm_rf(g_fx.dir, NULL);
    return 0;
}

static char *new_path(const char *what)
{
    return xasprintf("%s/%s-%d", g_fx.dir, what, ++g_fx.seq);
}

/* ---- an upload in a thread ------------------------------------------------------------------ */

enum upload_end { END_SEAL, END_CANCEL };

struct upload {
    char *path;             /* the part file being written */
    const char *data;
    size_t len;
    enum upload_end end;
    pthread_t thread;
};

/* Write the file in pieces, every other pair swapped (a later piece lands before an earlier
 * one, as chunks in any order do), reporting each to the watch; then seal (or cancel). */
static void *upload_main(void *arg)
{
    struct upload *u = arg;
    int fd = open(u->path, O_WRONLY | O_CLOEXEC);
    size_t npieces = (u->len + PIECE - 1) / PIECE;
    for (size_t k = 0; k < npieces; k++) {
        size_t i = k % 4 == 0 && k + 1 < npieces ? k + 1 : k % 4 == 1 ? k - 1 : k;
        size_t off = i * PIECE, n = u->len - off < PIECE ? u->len - off : PIECE;
        if (fs_pwrite_all(fd, u->data + off, n, (int64_t)off) != 0)
            abort();
        upl_watch_wrote(u->path, (int64_t)off, (int64_t)(off + n));
        if (k % 8 == 0)
            usleep(1000); /* let the reader catch up and wait now and then */
    }
    close(fd);
    if (u->end == END_SEAL)
        upl_watch_seal(u->path, (int64_t)u->len);
    else
        upl_watch_cancel(u->path);
    return NULL;
}

static int watch_wait(void *ctx, int64_t have, int64_t *avail, int64_t *final_size,
                      struct ing_err *err)
{
    return upl_watch_wait(ctx, have, avail, final_size, err);
}

/* A speculative run over `data` arriving into a new file; returns with the run finished and the
 * file at *path. */
static struct engine_spec *spec_over(const char *data, size_t len, enum upload_end end,
                                     int64_t expected, const struct engine_opts *o, bool diag,
                                     struct upl_watch **watch, char **path, char **spec_dir)
{
    struct upload u = {.path = new_path("part"), .data = data, .len = len, .end = end};
    int fd = open(u.path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    assert_true(fd >= 0);
    close(fd);
    *watch = upl_watch_start(u.path, expected);
    struct engine_source src = {.wait = watch_wait, .ctx = *watch};
    struct engine_spec *spec = NULL;
    char *dir = new_path("spec");
    assert_int_equal(engine_spec_new(&spec, g_fx.plan, o, diag, open(u.path, O_RDONLY), &src,
                                     dir, NULL),
                     0);
    assert_true(fs_exists(dir));
    assert_int_equal(pthread_create(&u.thread, NULL, upload_main, &u), 0);
    engine_spec_run(spec);
    assert_int_equal(pthread_join(u.thread, NULL), 0);
    *spec_dir = dir;
    *path = u.path;
    return spec;
}

/* Part files in a folder. */
static int count_parts(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return 0;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        n += strstr(e->d_name, ".parquet") != NULL;
    closedir(d);
    return n;
}

static void *run_thread(void *spec)
{
    engine_spec_run(spec);
    return NULL;
}

/* ---- outcomes --------------------------------------------------------------------------------- */

struct outcome {
    int rc;
    struct ing_err err;
    struct engine_result res;
    char *out;
    char *diag;
};

static void run_threads(const char *path, struct engine_spec *spec, struct engine_opts o,
                        bool diag, int threads, struct outcome *oc)
{
    memset(oc, 0, sizeof(*oc));
    ing_err_clear(&oc->err);
    oc->out = new_path("out");
    struct diag_writer *dw = NULL;
    if (diag) {
        oc->diag = new_path("diag");
        assert_int_equal(diag_writer_open(&dw, oc->diag, 500, NULL), 0);
    }
    o.diag = dw;
    o.threads = threads;
    o.split_min_bytes = SPLIT_MIN;
    struct engine_file f = {.path = path, .name = "loyalty.json", .spec = spec};
    oc->rc = engine_run(g_fx.plan, &f, 1, &o, oc->out, &oc->res, &oc->err);
    assert_int_equal(diag_writer_close(dw, NULL), 0);
}

/* The ordinary run is one thread: only an adopted run has two parts. */
static void run(const char *path, struct engine_spec *spec, struct engine_opts o, bool diag,
                struct outcome *oc)
{
    run_threads(path, spec, o, diag, 1, oc);
}

static void outcome_free(struct outcome *oc)
{
    engine_result_free(&oc->res);
    free(oc->out);
    free(oc->diag);
}

/* Every file of a's row_errors is in b's with the same bytes, and b has no other. */
static int same_row_errors(const char *a, const char *b)
{
    char *da = xasprintf("%s/row_errors", a), *db = xasprintf("%s/row_errors", b);
    DIR *d = opendir(da);
    assert_non_null(d);
    int files = 0, files_b = 0;
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
    while ((e = readdir(d)) != NULL)
        files_b += e->d_name[0] != '.';
    closedir(d);
    assert_int_equal(files, files_b);
    free(da);
    free(db);
    return files;
}

static void assert_same(const struct outcome *seq, const struct outcome *sp)
{
    assert_int_equal(sp->rc, seq->rc);
    const struct engine_result *s = &seq->res, *p = &sp->res;
    assert_int_equal(p->input_bytes, s->input_bytes);
    assert_int_equal(p->input_records, s->input_records);
    assert_int_equal(p->failed_records, s->failed_records);
    for (int k = 0; k < DIAG_NKINDS; k++)
        assert_int_equal(p->failed_by_kind[k], s->failed_by_kind[k]);
    assert_int_equal(p->batch_error, s->batch_error);
    assert_true(json_equal(p->errors, s->errors));
    assert_true(p->preview == s->preview || json_equal(p->preview, s->preview));
    assert_int_equal(p->first_error.code, s->first_error.code);
    assert_int_equal(p->first_error.row, s->first_error.row);
    assert_int_equal(p->first_error.offset, s->first_error.offset);
    assert_string_equal(p->first_error.field, s->first_error.field);
    assert_string_equal(p->first_error.msg, s->first_error.msg);
    assert_int_equal(sp->err.code, seq->err.code);
    assert_int_equal(sp->err.row, seq->err.row);
    assert_string_equal(sp->err.msg, seq->err.msg);
    if (seq->rc == 0) {
        assert_int_equal(p->output_records, s->output_records);
        assert_int_equal(p->unknown_fields, s->unknown_fields);
    }
}

/* The part files listed exist in the output folder, hold the rows, and nothing else is there. */
static void assert_parts(const struct outcome *oc)
{
    int64_t rows = 0, n = (int64_t)json_array_size(oc->res.files);
    for (int64_t i = 0; i < n; i++) {
        json_t *f = json_array_get(oc->res.files, (size_t)i);
        char name[48];
        snprintf(name, sizeof(name), "part-%05lld.parquet", (long long)i);
        assert_string_equal(json_string_value(json_object_get(f, "name")), name);
        char *path = xasprintf("%s/%s", oc->out, name);
        assert_int_equal(fs_file_size(path), json_integer_value(json_object_get(f, "size")));
        free(path);
        rows += json_integer_value(json_object_get(f, "records"));
    }
    assert_int_equal(rows, oc->res.output_records);
    DIR *d = opendir(oc->out);
    assert_non_null(d);
    int64_t entries = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        entries += strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
    closedir(d);
    assert_int_equal(entries, n);
}

static struct engine_opts base_opts(int64_t max_failed, int preview)
{
    struct engine_opts o = {.format = ENGINE_JSON, .preview_rows = preview,
                            .max_failed_rows = max_failed, .threads = 2,
                            .split_min_bytes = SPLIT_MIN};
    o.parquet.codec = PQ_CODEC_ZSTD;
    return o;
}

/* One speculative run adopted against the ordinary run of the same file. Returns the adopted
 * run's output file count. */
static int64_t compare(int64_t max_failed, bool diag, bool announced)
{
    struct engine_opts o = base_opts(max_failed, 20);
    struct upl_watch *w = NULL;
    char *path = NULL, *dir = NULL;
    struct engine_spec *spec =
        spec_over(g_fx.data, g_fx.len, END_SEAL, announced ? (int64_t)g_fx.len : -1, &o, diag,
                  &w, &path, &dir);
    int parts_before = count_parts(dir);
    struct outcome seq, sp;
    run(path, NULL, o, diag, &seq);
    run(path, spec, o, diag, &sp);
    assert_same(&seq, &sp);
    if (diag)
        assert_true(same_row_errors(seq.diag, sp.diag) > 0);
    assert_parts(&sp);
    /* Adopted: its parts moved out of its folder into the run's. */
    assert_int_equal(count_parts(dir), 0);
    if (seq.rc == 0)
        assert_int_equal(sp.res.output_files, parts_before);
    int64_t files = sp.res.output_files;
    engine_spec_free(spec);
    assert_false(fs_exists(dir));
    upl_watch_release(w);
    outcome_free(&seq);
    outcome_free(&sp);
    free(path);
    free(dir);
    return files;
}

static void test_partial_on_same_as_ordinary(void **state)
{
    (void)state;
    /* Adopted: the ordinary run has one thread, so two parts come only from the speculative
     * run's cut tail (or one when the reader had read almost all before the seal). */
    int64_t files = compare(-1, true, false);
    assert_true(files >= 1 && files <= 2);
    /* The size announced by the upload (Content-Range's total): the end is known before the
     * seal, the outcome the same. */
    files = compare(-1, true, true);
    assert_true(files >= 1 && files <= 2);
}

static void test_partial_off_same_as_ordinary(void **state)
{
    (void)state;
    compare(0, false, false);
    compare(0, true, true);
}

static void test_row_limit_same_as_ordinary(void **state)
{
    (void)state;
    compare(37, true, false);
    compare(5, false, true);
}

/* Sealed before the run starts (a PUT): the whole file is cut in two at once, where a two-thread
 * run cuts it; adopted. */
static void test_sealed_before_start_is_cut(void **state)
{
    (void)state;
    char *path = new_path("put");
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(g_fx.data, 1, g_fx.len, f), g_fx.len);
    fclose(f);
    struct upl_watch *w = upl_watch_start(path, -1);
    upl_watch_seal(path, (int64_t)g_fx.len);
    struct engine_opts o = base_opts(-1, 20);
    struct engine_source src = {.wait = watch_wait, .ctx = w};
    struct engine_spec *spec = NULL;
    char *dir = new_path("spec");
    assert_int_equal(engine_spec_new(&spec, g_fx.plan, &o, true, open(path, O_RDONLY), &src, dir,
                                     NULL),
                     0);
    engine_spec_run(spec);
    struct outcome seq, sp;
    run(path, NULL, o, true, &seq);
    run(path, spec, o, true, &sp);
    assert_same(&seq, &sp);
    assert_true(same_row_errors(seq.diag, sp.diag) > 0);
    assert_parts(&sp);
    assert_int_equal(seq.res.output_files, 1);
    assert_int_equal(sp.res.output_files, 2); /* adopted, and cut */
    assert_int_equal(count_parts(dir), 0);
    /* Cut where a two-thread run of the whole file cuts it: the same part files, byte for
     * byte, and the same list of them. */
    struct outcome two;
    run_threads(path, NULL, o, true, 2, &two);
    assert_same(&two, &sp);
    assert_true(json_equal(two.res.files, sp.res.files));
    for (int i = 0; i < 2; i++) {
        char *a = xasprintf("%s/part-%05d.parquet", two.out, i);
        char *b = xasprintf("%s/part-%05d.parquet", sp.out, i);
        size_t la, lb;
        char *ca = slurp(a, &la), *cb = slurp(b, &lb);
        assert_int_equal(la, lb);
        assert_memory_equal(ca, cb, la);
        free(ca), free(cb), free(a), free(b);
    }
    outcome_free(&two);
    engine_spec_free(spec);
    assert_false(fs_exists(dir));
    upl_watch_release(w);
    outcome_free(&seq);
    outcome_free(&sp);
    free(dir);
    free(path);
}

/* Runs that must not be adopted: the ordinary outcome comes out, with one part (one thread). */
static void assert_not_adopted(struct engine_spec *spec, const char *path, const char *dir,
                               bool diag)
{
    struct engine_opts o = base_opts(-1, 20);
    struct outcome seq, sp;
    int parts_before = count_parts(dir);
    run(path, NULL, o, diag, &seq);
    run(path, spec, o, diag, &sp);
    assert_int_equal(count_parts(dir), parts_before); /* left where they were */
    assert_same(&seq, &sp);
    assert_parts(&sp);
    assert_int_equal(sp.res.output_files, seq.res.output_files);
    assert_true(sp.res.output_files <= 1);
    outcome_free(&seq);
    outcome_free(&sp);
}

static void test_cancelled_not_adopted(void **state)
{
    (void)state;
    struct engine_opts o = base_opts(-1, 20);
    struct upl_watch *w = NULL;
    char *path = NULL;
    char *dir = NULL;
    struct engine_spec *spec =
        spec_over(g_fx.data, g_fx.len, END_CANCEL, -1, &o, false, &w, &path, &dir);
    assert_not_adopted(spec, path, dir, false);
    engine_spec_free(spec);
    upl_watch_release(w);
    free(path);
    free(dir);
}

static void test_compressed_not_adopted(void **state)
{
    (void)state;
    char *gz = new_path("gz");
    gzFile g = gzopen(gz, "wb");
    assert_non_null(g);
    assert_int_equal(gzwrite(g, g_fx.data, (unsigned)g_fx.len), (int)g_fx.len);
    gzclose(g);
    size_t len;
    char *bytes = slurp(gz, &len);
    struct engine_opts o = base_opts(-1, 20);
    struct upl_watch *w = NULL;
    char *path = NULL;
    char *dir = NULL;
    struct engine_spec *spec = spec_over(bytes, len, END_SEAL, -1, &o, true, &w, &path, &dir);
    assert_not_adopted(spec, path, dir, true);
    engine_spec_free(spec);
    upl_watch_release(w);
    free(path);
    free(dir);
    free(bytes);
    free(gz);
}

static void test_replaced_file_not_adopted(void **state)
{
    (void)state;
    struct engine_opts o = base_opts(-1, 20);
    struct upl_watch *w = NULL;
    char *path = NULL;
    char *dir = NULL;
    struct engine_spec *spec =
        spec_over(g_fx.data, g_fx.len, END_SEAL, -1, &o, false, &w, &path, &dir);
    assert_true(count_parts(dir) > 0);
    /* Another file under the same name (same bytes but the first line cut: a new inode). */
    char *other = new_path("other");
    const char *second = (const char *)memchr(g_fx.data, '\n', g_fx.len) + 1;
    FILE *f = fopen(other, "wb");
    assert_non_null(f);
    fwrite(second, 1, g_fx.len - (size_t)(second - g_fx.data), f);
    fclose(f);
    assert_int_equal(rename(other, path), 0);
    assert_not_adopted(spec, path, dir, false);
    engine_spec_free(spec);
    upl_watch_release(w);
    free(other);
    free(path);
    free(dir);
}

/* A run waiting for bytes that never come stops when its watch is abandoned (ABORT), and its
 * folder goes with it. */
static void test_abandoned_while_waiting(void **state)
{
    (void)state;
    char *path = new_path("wait");
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    fwrite(g_fx.data, 1, 1000, f); /* a start, never finished */
    fclose(f);
    struct upl_watch *w = upl_watch_start(path, -1);
    upl_watch_wrote(path, 0, 1000);
    struct engine_opts o = base_opts(-1, 20);
    struct engine_source src = {.wait = watch_wait, .ctx = w};
    struct engine_spec *spec = NULL;
    char *dir = new_path("spec");
    assert_int_equal(engine_spec_new(&spec, g_fx.plan, &o, false, open(path, O_RDONLY), &src,
                                     dir, NULL),
                     0);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, run_thread, spec), 0);
    usleep(20000);
    engine_spec_stop(spec);
    upl_watch_abandon(w);
    assert_int_equal(pthread_join(t, NULL), 0);
    assert_not_adopted(spec, path, dir, false);
    engine_spec_free(spec);
    assert_false(fs_exists(dir));
    upl_watch_release(w);
    free(dir);
    free(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_partial_on_same_as_ordinary),
        cmocka_unit_test(test_partial_off_same_as_ordinary),
        cmocka_unit_test(test_row_limit_same_as_ordinary),
        cmocka_unit_test(test_sealed_before_start_is_cut),
        cmocka_unit_test(test_cancelled_not_adopted),
        cmocka_unit_test(test_compressed_not_adopted),
        cmocka_unit_test(test_replaced_file_not_adopted),
        cmocka_unit_test(test_abandoned_while_waiting),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
