/* test_lake.c - unit tests of the lake layout: paths, promotion by rename, discarding output,
 * the start-up sweep of speculative runs' folders. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lake/lake.h"
#include "util/fs.h"
#include "util/mem.h"

struct fixture {
    char dir[64];
    struct lake *lake;
};

static int setup(void **state)
{
    struct fixture *fx = xcalloc(1, sizeof(*fx));
    snprintf(fx->dir, sizeof(fx->dir), "/tmp/test_lake.XXXXXX");
    if (!mkdtemp(fx->dir))
        return -1;
    struct ing_err err;
    ing_err_clear(&err);
    /* A data folder that does not exist yet: lake_open creates it with its sub-folders. */
    char *data = xasprintf("%s/data", fx->dir);
    int rc = lake_open(&fx->lake, data, &err);
    free(data);
    *state = fx;
    return rc;
}

static int teardown(void **state)
{
    struct fixture *fx = *state;
    lake_free(fx->lake);
    fs_rm_rf(fx->dir, NULL);
    free(fx);
    return 0;
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void test_open_creates_layout(void **state)
{
    struct fixture *fx = *state;
    char *sandboxes = xasprintf("%s/sandboxes", lake_data_dir(fx->lake));
    char *spool = lake_spool_dir(fx->lake);
    assert_true(fs_exists(sandboxes));
    assert_true(fs_exists(spool));
    char *expect = xasprintf("%s/data/spool", fx->dir);
    assert_string_equal(spool, expect);
    free(expect);
    free(sandboxes);
    free(spool);
}

static void test_paths(void **state)
{
    struct fixture *fx = *state;
    const char *d = lake_data_dir(fx->lake);
    char *staging = lake_staging_dir(fx->lake, "prod", "B1", "D1");
    char *final = lake_batch_dir(fx->lake, "prod", "D1", "B1");
    char *tmp = lake_batch_tmp_dir(fx->lake, "dev", "D1", "B1");
    char *e1 = xasprintf("%s/sandboxes/prod/staging/B1/D1", d);
    char *e2 = xasprintf("%s/sandboxes/prod/lake/D1/B1", d);
    char *e3 = xasprintf("%s/sandboxes/dev/lake/D1/.tmp-B1", d);
    assert_string_equal(staging, e1);
    assert_string_equal(final, e2);
    assert_string_equal(tmp, e3);
    free(staging), free(final), free(tmp), free(e1), free(e2), free(e3);
}

static void test_promote(void **state)
{
    struct fixture *fx = *state;
    struct ing_err err;
    ing_err_clear(&err);
    /* Nothing written yet: there is nothing to promote. */
    assert_int_equal(lake_promote(fx->lake, "prod", "D1", "B2", &err), ING_ENOTFOUND);

    char *tmp = lake_batch_tmp_dir(fx->lake, "prod", "D1", "B2");
    char *final = lake_batch_dir(fx->lake, "prod", "D1", "B2");
    assert_int_equal(fs_mkdirs(tmp, &err), 0);
    char *part = xasprintf("%s/part-00000.parquet", tmp);
    write_file(part, "PAR1xxxxPAR1");
    assert_int_equal(lake_promote(fx->lake, "prod", "D1", "B2", &err), 0);
    assert_false(fs_exists(tmp));
    char *moved = xasprintf("%s/part-00000.parquet", final);
    assert_int_equal(fs_file_size(moved), 12);

    /* A batch lands once: a second output for the same batch is refused, the first kept. */
    assert_int_equal(fs_mkdirs(tmp, &err), 0);
    assert_int_equal(lake_promote(fx->lake, "prod", "D1", "B2", &err), ING_EEXIST);
    assert_int_equal(fs_file_size(moved), 12);
    free(tmp), free(final), free(part), free(moved);
}

static void test_promote_rejects_unsafe_ids(void **state)
{
    struct fixture *fx = *state;
    struct ing_err err;
    ing_err_clear(&err);
    assert_int_equal(lake_promote(fx->lake, "prod", "../x", "B3", &err), ING_EINVAL);
    assert_int_equal(lake_promote(fx->lake, "prod", "D1", "a/b", &err), ING_EINVAL);
    assert_int_equal(lake_discard_output(fx->lake, "..", "D1", "B3", &err), ING_EINVAL);
}

static void test_discard(void **state)
{
    struct fixture *fx = *state;
    struct ing_err err;
    ing_err_clear(&err);
    char *staging = lake_staging_dir(fx->lake, "prod", "B4", "D1");
    char *other_staging = lake_staging_dir(fx->lake, "prod", "B5", "D1");
    char *tmp = lake_batch_tmp_dir(fx->lake, "prod", "D1", "B4");
    char *final = lake_batch_dir(fx->lake, "prod", "D1", "B4");
    char *sub = xasprintf("%s/sub", staging);
    assert_int_equal(fs_mkdirs(sub, &err), 0);
    assert_int_equal(fs_mkdirs(other_staging, &err), 0);
    assert_int_equal(fs_mkdirs(tmp, &err), 0);
    assert_int_equal(fs_mkdirs(final, &err), 0);
    char *in = xasprintf("%s/a.json", sub);
    write_file(in, "{}\n");

    assert_int_equal(lake_discard_output(fx->lake, "prod", "D1", "B4", &err), 0);
    assert_false(fs_exists(staging));
    assert_false(fs_exists(tmp));
    assert_false(fs_exists(final));
    /* Another batch's staged input is left alone. */
    assert_true(fs_exists(other_staging));
    /* Discarding what is already gone is fine. */
    assert_int_equal(lake_discard_output(fx->lake, "prod", "D1", "B4", &err), 0);
    free(staging), free(other_staging), free(tmp), free(final), free(sub), free(in);
}

/* Unfinished large-file uploads live outside staging and go with the batch too. */
static void test_discard_uploads(void **state)
{
    struct fixture *fx = *state;
    struct ing_err err;
    ing_err_clear(&err);
    char *uploads = lake_upload_dir(fx->lake, "prod", "B6", "D1");
    char *staging = lake_staging_dir(fx->lake, "prod", "B6", "D1");
    assert_non_null(strstr(uploads, "/sandboxes/prod/uploads/B6/D1"));
    assert_string_not_equal(uploads, staging);
    char *part = xasprintf("%s/part=a/big.json", uploads);
    char *sub = xasprintf("%s/part=a", uploads);
    assert_int_equal(fs_mkdirs(sub, &err), 0);
    write_file(part, "half a file");
    assert_int_equal(lake_discard_output(fx->lake, "prod", "D1", "B6", &err), 0);
    assert_false(fs_exists(part));
    assert_false(fs_exists(uploads));
    /* The batch's own folder under uploads/ is dropped once empty. */
    char *batch_uploads = xasprintf("%s/sandboxes/prod/uploads/B6", lake_data_dir(fx->lake));
    assert_false(fs_exists(batch_uploads));
    free(uploads), free(staging), free(part), free(sub), free(batch_uploads);
}

/* Speculative runs' folders are removed at start-up, and nothing else is. */
static void test_sweep_spec_dirs(void **state)
{
    struct fixture *fx = *state;
    struct ing_err err;
    ing_err_clear(&err);
    char *spec1 = lake_spec_dir(fx->lake, "prod", "D1", "B7", 1);
    char *spec2 = lake_spec_dir(fx->lake, "dev", "D2", "B8", 12);
    char *tmp = lake_batch_tmp_dir(fx->lake, "prod", "D1", "B7");
    char *final = lake_batch_dir(fx->lake, "prod", "D1", "B6");
    assert_non_null(strstr(spec1, "/sandboxes/prod/lake/D1/.spec-B7-1"));
    char *part = xasprintf("%s/part-00000.parquet", spec1);
    assert_int_equal(fs_mkdirs(spec1, &err), 0);
    assert_int_equal(fs_mkdirs(spec2, &err), 0);
    assert_int_equal(fs_mkdirs(tmp, &err), 0);
    assert_int_equal(fs_mkdirs(final, &err), 0);
    write_file(part, "PAR1");
    assert_int_equal(lake_sweep_spec_dirs(fx->lake), 2);
    assert_false(fs_exists(spec1));
    assert_false(fs_exists(spec2));
    assert_true(fs_exists(tmp));
    assert_true(fs_exists(final));
    assert_int_equal(lake_sweep_spec_dirs(fx->lake), 0);
    free(spec1), free(spec2), free(tmp), free(final), free(part);
}

static void test_open_needs_dir(void **state)
{
    (void)state;
    struct lake *lake = (struct lake *)1;
    struct ing_err err;
    ing_err_clear(&err);
    assert_int_equal(lake_open(&lake, "", &err), ING_EINVAL);
    assert_null(lake);
    lake_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_open_creates_layout),
        cmocka_unit_test(test_paths),
        cmocka_unit_test(test_promote),
        cmocka_unit_test(test_promote_rejects_unsafe_ids),
        cmocka_unit_test(test_discard),
        cmocka_unit_test(test_discard_uploads),
        cmocka_unit_test(test_sweep_spec_dirs),
        cmocka_unit_test(test_open_needs_dir),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
