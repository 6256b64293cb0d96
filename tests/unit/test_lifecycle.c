/* test_lifecycle.c - unit tests of the batch lifecycle in the Catalog (src/catalog/catalog.c)
 * over the real SQLite store: FAIL and retry edges, REVERT, replay replacing its predecessors in
 * the finishing transaction, externalId uniqueness, lastBatches, the status enum, the retire hook
 * and the large-file upload records. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "catalog/catalog.h"
#include "store/store.h"
#include "util/fs.h"
#include "util/mem.h"

#define SCHEMA_ID "https://ns.adobe.com/techmarketingdemos/schemas/0123456789abcdef"

struct fixture {
    char dir[64];
    struct store *st;
    struct catalog *cat;
    struct cat_actor who;
    json_t *retired; /* [sandbox, dataset, batch] triples the retire hook saw */
};

static void record_retire(void *ctx, const char *sandbox, const char *dataset_id,
                          const char *batch_id)
{
    struct fixture *fx = ctx;
    json_array_append_new(fx->retired, json_pack("[s, s, s]", sandbox, dataset_id, batch_id));
}

static int setup(void **state)
{
    struct fixture *fx = xcalloc(1, sizeof(*fx));
    snprintf(fx->dir, sizeof(fx->dir), "/tmp/ingot-test-lifecycle-XXXXXX");
    if (!mkdtemp(fx->dir))
        return -1;
    if (store_open(&fx->st, fx->dir, NULL) != 0 || catalog_new(&fx->cat, fx->st, NULL, NULL) != 0)
        return -1;
    fx->who = (struct cat_actor){.ims_org = "ORG@AdobeOrg", .client = "key1", .user = "user1"};
    fx->retired = json_array();
    catalog_set_retire_hook(fx->cat, record_retire, fx);
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *fx = *state;
    catalog_free(fx->cat);
    store_close(fx->st);
    fs_rm_rf(fx->dir, NULL);
    json_decref(fx->retired);
    free(fx);
    return 0;
}

static char *make_dataset(struct fixture *fx)
{
    json_t *body = json_pack("{s:s, s:{s:s}}", "name", "Luma Loyalty Dataset", "schemaRef", "id",
                             SCHEMA_ID);
    char *id = NULL;
    struct ing_err err;
    ing_err_clear(&err);
    if (catalog_dataset_create(fx->cat, "prod", &fx->who, body, &id, &err) != 0)
        fail_msg("dataset create: %s", err.msg);
    json_decref(body);
    return id;
}

/* Create a batch with extra request fields (JSON text, may be NULL); returns rc, *id on success. */
static int try_batch(struct fixture *fx, const char *ds, const char *extra, char **id,
                     struct ing_err *err)
{
    json_t *body = extra ? json_loads(extra, 0, NULL) : json_object();
    assert_non_null(body);
    json_object_set_new(body, "datasetId", json_string(ds));
    ing_err_clear(err);
    int rc = catalog_batch_create(fx->cat, "prod", &fx->who, body, id, err);
    json_decref(body);
    return rc;
}

static char *make_batch(struct fixture *fx, const char *ds, const char *extra)
{
    char *id = NULL;
    struct ing_err err;
    if (try_batch(fx, ds, extra, &id, &err) != 0)
        fail_msg("batch create: %s", err.msg);
    return id;
}

static const char *status_of(struct fixture *fx, const char *id, json_t **hold)
{
    json_decref(*hold);
    *hold = NULL;
    assert_int_equal(catalog_batch_get(fx->cat, "prod", id, hold, NULL), 0);
    return json_string_value(json_object_get(*hold, "status"));
}

/* loading -> queued -> processing -> finish as `status` with one output file. */
static int run_batch(struct fixture *fx, const char *id, const char *status)
{
    static const char *const loading[] = {"loading", NULL};
    static const char *const queued[] = {"queued", NULL};
    assert_int_equal(catalog_batch_transition(fx->cat, "prod", id, loading, "queued", NULL, NULL),
                     0);
    assert_int_equal(catalog_batch_transition(fx->cat, "prod", id, queued, "processing", NULL,
                                              NULL), 0);
    json_t *files = json_pack("[{s:s, s:i, s:i}]", "name", "part-00000.parquet", "size", 100,
                              "records", 3);
    int rc = catalog_batch_finish(fx->cat, "prod", id, status, NULL, NULL, files, NULL);
    json_decref(files);
    return rc;
}

/* The ids of the batches whose files the catalog lists for a dataset. */
static size_t visible_files(struct fixture *fx, const char *ds, const char *batch_id)
{
    json_t *files = NULL;
    assert_int_equal(catalog_file_list(fx->cat, "prod", batch_id, ds, 0, 0, &files, NULL), 0);
    size_t n = json_object_size(files);
    json_decref(files);
    return n;
}

static void test_status_enum(void **state)
{
    (void)state;
    static const char *const all[] = {"processing", "success", "failure", "queued", "retrying",
                                      "stalled", "aborted", "abandoned", "inactive", "failed",
                                      "loading", "loaded", "staged", "active", "staging",
                                      "deleted"};
    for (size_t i = 0; i < ING_ARRAY_LEN(all); i++)
        assert_true(catalog_batch_status_ok(all[i]));
    assert_false(catalog_batch_status_ok("exploded"));
    assert_false(catalog_batch_status_ok(""));
    assert_false(catalog_batch_status_ok(NULL));
}

static void test_fail_and_retry_edges(void **state)
{
    struct fixture *fx = *state;
    char *ds = make_dataset(fx);
    char *b = make_batch(fx, ds, NULL);
    json_t *hold = NULL;
    static const char *const loading_or_queued[] = {"loading", "queued", NULL};
    static const char *const any[] = {"loading", "queued", "processing", "success", "failed",
                                      "aborted", "inactive", "retrying", NULL};
    assert_int_equal(catalog_batch_transition(fx->cat, "prod", b, loading_or_queued, "failed",
                                              NULL, NULL), 0);
    assert_string_equal(status_of(fx, b, &hold), "failed");
    assert_int_equal(catalog_batch_transition(fx->cat, "prod", b, any, "aborted", NULL, NULL),
                     ING_ESTATE);
    assert_int_equal(catalog_batch_transition(fx->cat, "prod", b, any, "bogus", NULL, NULL),
                     ING_EINVAL);

    /* processing -> retrying -> processing -> success. */
    char *r = make_batch(fx, ds, NULL);
    static const char *const loading[] = {"loading", NULL};
    static const char *const queued[] = {"queued", NULL};
    static const char *const processing[] = {"processing", NULL};
    static const char *const retrying[] = {"retrying", NULL};
    assert_int_equal(catalog_batch_transition(fx->cat, "prod", r, loading, "queued", NULL, NULL),
                     0);
    assert_int_equal(catalog_batch_transition(fx->cat, "prod", r, queued, "processing", NULL,
                                              NULL), 0);
    assert_int_equal(catalog_batch_transition(fx->cat, "prod", r, processing, "retrying", NULL,
                                              NULL), 0);
    assert_int_equal(catalog_batch_transition(fx->cat, "prod", r, retrying, "success", NULL,
                                              NULL), ING_ESTATE);
    assert_int_equal(catalog_batch_transition(fx->cat, "prod", r, retrying, "processing", NULL,
                                              NULL), 0);
    assert_int_equal(catalog_batch_transition(fx->cat, "prod", r, loading, "failed", NULL, NULL),
                     ING_ESTATE);
    json_decref(hold);
    free(ds);
    free(b);
    free(r);
}

static void test_revert(void **state)
{
    struct fixture *fx = *state;
    char *ds = make_dataset(fx);
    char *a = make_batch(fx, ds, NULL);
    char *b = make_batch(fx, ds, NULL);
    json_t *hold = NULL, *files = NULL, *file = NULL;
    assert_int_equal(run_batch(fx, a, "success"), 0);
    assert_int_equal(run_batch(fx, b, "success"), 0);
    assert_int_equal(visible_files(fx, ds, NULL), 2);
    assert_int_equal(catalog_file_list(fx->cat, "prod", a, NULL, 0, 0, &files, NULL), 0);
    const char *fid = json_object_iter_key(json_object_iter(files));
    assert_non_null(fid);
    char *file_id = xstrdup(fid);

    struct ing_err err;
    ing_err_clear(&err);
    assert_int_equal(catalog_batch_revert(fx->cat, "prod", a, &err), 0);
    assert_string_equal(status_of(fx, a, &hold), "inactive");
    assert_string_equal(status_of(fx, b, &hold), "success");
    assert_int_equal(visible_files(fx, ds, NULL), 1);
    assert_int_equal(visible_files(fx, NULL, a), 0);
    assert_int_equal(catalog_file_get(fx->cat, "prod", file_id, &file, NULL), ING_ENOTFOUND);
    /* The document itself says it is no longer valid. */
    assert_int_equal(store_get(fx->st, "prod", CAT_KIND_FILE, file_id, &file, NULL), 0);
    assert_true(json_is_false(json_object_get(file, "isValid")));
    assert_int_equal(json_array_size(fx->retired), 1);
    json_t *want = json_pack("[s, s, s]", "prod", ds, a);
    assert_true(json_equal(json_array_get(fx->retired, 0), want));
    json_decref(want);

    /* Only a success batch reverts; again, or a missing one, is refused. */
    assert_int_equal(catalog_batch_revert(fx->cat, "prod", a, NULL), ING_ESTATE);
    char *loading = make_batch(fx, ds, NULL);
    assert_int_equal(catalog_batch_revert(fx->cat, "prod", loading, NULL), ING_ESTATE);
    assert_int_equal(catalog_batch_revert(fx->cat, "prod", "01NOSUCHBATCH0000000000000", NULL),
                     ING_ENOTFOUND);
    assert_int_equal(json_array_size(fx->retired), 1);

    /* The sweep calls the hook again for every inactive batch (a crash may have cut it short). */
    assert_int_equal(catalog_retire_sweep(fx->cat, NULL), 0);
    assert_int_equal(json_array_size(fx->retired), 2);
    json_decref(hold);
    json_decref(files);
    json_decref(file);
    free(file_id);
    free(ds);
    free(a);
    free(b);
    free(loading);
}

static void test_replay(void **state)
{
    struct fixture *fx = *state;
    char *ds = make_dataset(fx);
    char *p1 = make_batch(fx, ds, "{\"externalId\":\"first-load\"}");
    char *p2 = make_batch(fx, ds, NULL);
    char *failed = make_batch(fx, ds, NULL);
    json_t *hold = NULL;
    assert_int_equal(run_batch(fx, p1, "success"), 0);
    assert_int_equal(run_batch(fx, p2, "success"), 0);
    assert_int_equal(run_batch(fx, failed, "failed"), 0);

    /* Ids with and without '$', by external id, a failed one; duplicates collapse. */
    char *extra = xasprintf("{\"replay\":{\"predecessors\":[\"$%s\",\"%s\",\"%s\"],"
                            "\"predecessorsByExternalId\":[\"first-load\"],\"reason\":\"r\"}}",
                            p1, failed, p1);
    char *r = make_batch(fx, ds, extra);
    free(extra);
    json_t *doc = NULL;
    assert_int_equal(catalog_batch_get(fx->cat, "prod", r, &doc, NULL), 0);
    json_t *want = json_pack("[s, s]", p1, failed);
    assert_true(json_equal(json_object_get(json_object_get(doc, "replay"), "predecessors"), want));
    json_decref(want);
    json_decref(doc);

    /* A replay that fails replaces nothing. */
    extra = xasprintf("{\"replay\":{\"predecessors\":[\"%s\"]}}", p2);
    char *dud = make_batch(fx, ds, extra);
    free(extra);
    assert_int_equal(run_batch(fx, dud, "failed"), 0);
    assert_string_equal(status_of(fx, p2, &hold), "success");

    assert_int_equal(visible_files(fx, ds, NULL), 2);
    assert_int_equal(run_batch(fx, r, "success"), 0);
    assert_string_equal(status_of(fx, r, &hold), "success");
    assert_string_equal(status_of(fx, p1, &hold), "inactive");
    assert_string_equal(status_of(fx, failed, &hold), "failed"); /* had nothing visible */
    assert_string_equal(status_of(fx, p2, &hold), "success");    /* not a predecessor */
    assert_int_equal(visible_files(fx, NULL, p1), 0);
    assert_int_equal(visible_files(fx, NULL, r), 1);
    assert_int_equal(visible_files(fx, ds, NULL), 2);
    assert_int_equal(json_array_size(fx->retired), 1);
    assert_string_equal(json_string_value(json_array_get(json_array_get(fx->retired, 0), 2)), p1);
    json_decref(hold);
    free(ds);
    free(p1);
    free(p2);
    free(failed);
    free(r);
    free(dud);
}

static void test_replay_checks(void **state)
{
    struct fixture *fx = *state;
    char *ds = make_dataset(fx);
    char *other = make_dataset(fx);
    char *elsewhere = make_batch(fx, other, NULL);
    assert_int_equal(run_batch(fx, elsewhere, "success"), 0);
    char *loading = make_batch(fx, ds, NULL);
    char *bad[6];
    bad[0] = xstrdup("{\"replay\":{\"predecessors\":[\"01NOSUCHBATCH0000000000000\"]}}");
    bad[1] = xasprintf("{\"replay\":{\"predecessors\":[\"%s\"]}}", elsewhere);
    bad[2] = xasprintf("{\"replay\":{\"predecessors\":[\"%s\"]}}", loading);
    bad[3] = xstrdup("{\"replay\":{\"predecessorsByExternalId\":[\"nobody\"]}}");
    bad[4] = xstrdup("{\"replay\":{\"reason\":\"no predecessors\"}}");
    bad[5] = xstrdup("{\"replay\":{\"predecessors\":[\"../x\"]}}");
    for (size_t i = 0; i < ING_ARRAY_LEN(bad); i++) {
        char *id = NULL;
        struct ing_err err;
        assert_int_equal(try_batch(fx, ds, bad[i], &id, &err), ING_EINVAL);
        assert_null(id);
        assert_non_null(strstr(err.field, "replay"));
        free(bad[i]);
    }
    /* Nothing was created by the refused requests. */
    struct store_query q = {0};
    int64_t n = 0;
    assert_int_equal(store_count(fx->st, "prod", CAT_KIND_BATCH, &q, &n, NULL), 0);
    assert_int_equal(n, 2);
    free(ds);
    free(other);
    free(elsewhere);
    free(loading);
}

static void test_external_id_unique(void **state)
{
    struct fixture *fx = *state;
    char *ds = make_dataset(fx);
    char *a = make_batch(fx, ds, "{\"externalId\":\"ext-1\"}");
    char *id = NULL;
    struct ing_err err;
    assert_int_equal(try_batch(fx, ds, "{\"externalId\":\"ext-1\"}", &id, &err), ING_EINVAL);
    assert_string_equal(err.field, "externalId");
    /* Another batch's default externalId (its id) is taken too. */
    char *plain = make_batch(fx, ds, NULL);
    char *extra = xasprintf("{\"externalId\":\"%s\"}", plain);
    assert_int_equal(try_batch(fx, ds, extra, &id, &err), ING_EINVAL);
    free(extra);
    /* Another sandbox has its own. */
    json_t *dsbody = json_pack("{s:s, s:{s:s}}", "name", "d", "schemaRef", "id", SCHEMA_ID);
    char *dev_ds = NULL;
    assert_int_equal(catalog_dataset_create(fx->cat, "dev", &fx->who, dsbody, &dev_ds, NULL), 0);
    json_t *bbody = json_pack("{s:s, s:s}", "datasetId", dev_ds, "externalId", "ext-1");
    char *dev_b = NULL;
    assert_int_equal(catalog_batch_create(fx->cat, "dev", &fx->who, bbody, &dev_b, NULL), 0);
    json_decref(dsbody);
    json_decref(bbody);
    free(ds);
    free(a);
    free(plain);
    free(dev_ds);
    free(dev_b);
}

static void test_last_batches(void **state)
{
    struct fixture *fx = *state;
    char *ds = make_dataset(fx);
    char *empty = make_dataset(fx);
    char *ok = make_batch(fx, ds, NULL);
    assert_int_equal(run_batch(fx, ok, "success"), 0);
    usleep(3000); /* "last" is by creation time in ms */
    char *bad = make_batch(fx, ds, NULL);
    assert_int_equal(run_batch(fx, bad, "failed"), 0);
    usleep(3000);
    char *newest = make_batch(fx, ds, NULL);
    json_t *out = NULL;
    char *ids = xasprintf("%s,%s", ds, empty);
    assert_int_equal(catalog_last_batches(fx->cat, "prod", ids, &out, NULL), 0);
    assert_int_equal(json_object_size(out), 1);
    json_t *e = json_object_get(out, ds);
    assert_string_equal(json_string_value(json_object_get(e, "lastBatchId")), newest);
    assert_string_equal(json_string_value(json_object_get(e, "lastBatchStatus")), "loading");
    assert_string_equal(json_string_value(json_object_get(e, "lastSuccessfulBatchId")), ok);
    assert_string_equal(json_string_value(json_object_get(e, "lastFailedBatchId")), bad);
    assert_string_equal(json_string_value(json_object_get(e, "imsOrg")), "ORG@AdobeOrg");
    assert_true(json_is_integer(json_object_get(e, "created")));
    json_decref(out);
    out = NULL;
    assert_int_equal(catalog_last_batches(fx->cat, "prod", NULL, &out, NULL), 0);
    assert_non_null(json_object_get(out, ds));
    assert_null(json_object_get(out, empty));
    json_decref(out);
    out = NULL;
    assert_int_equal(catalog_last_batches(fx->cat, "prod", "../etc", &out, NULL), ING_EINVAL);
    assert_null(out);
    free(ids);
    free(ds);
    free(empty);
    free(ok);
    free(bad);
    free(newest);
}

static void test_upload_records(void **state)
{
    struct fixture *fx = *state;
    char *ds = make_dataset(fx);
    char *other = make_dataset(fx);
    char *b = make_batch(fx, ds, NULL);
    struct ing_err err;
    json_t *doc = NULL, *list = NULL;
    ing_err_clear(&err);
    assert_int_equal(catalog_upload_get(fx->cat, "prod", b, ds, "a/big.json", &doc, NULL),
                     ING_ENOTFOUND);
    assert_int_equal(catalog_upload_init(fx->cat, "prod", b, other, "a/big.json", NULL),
                     ING_EINVAL);
    assert_int_equal(catalog_upload_init(fx->cat, "prod", b, ds, "../x", NULL), ING_EINVAL);
    assert_int_equal(catalog_upload_init(fx->cat, "prod", b, ds, "a/big.json", &err), 0);
    assert_int_equal(catalog_upload_init(fx->cat, "prod", b, ds, "b.json", &err), 0);

    struct upl_range c1 = {100, 199}, c0 = {0, 99}, c_over = {150, 250};
    assert_int_equal(catalog_upload_add_chunk(fx->cat, "prod", b, ds, "a/big.json", &c1, 1000, 3,
                                              NULL, &err), 0);
    /* The same chunk again is recorded once. */
    assert_int_equal(catalog_upload_add_chunk(fx->cat, "prod", b, ds, "a/big.json", &c1, -1, 3,
                                              &doc, &err), 0);
    assert_int_equal(json_array_size(json_object_get(doc, "chunks")), 1);
    assert_int_equal(json_integer_value(json_object_get(doc, "total")), 1000);
    json_decref(doc);
    doc = NULL;
    /* A different total, a chunk past it, a chunk for a file never initialized. */
    assert_int_equal(catalog_upload_add_chunk(fx->cat, "prod", b, ds, "a/big.json", &c0, 999, 3,
                                              NULL, NULL), ING_EINVAL);
    struct upl_range past = {900, 1000};
    assert_int_equal(catalog_upload_add_chunk(fx->cat, "prod", b, ds, "a/big.json", &past, -1,
                                              3, NULL, NULL), ING_EINVAL);
    assert_int_equal(catalog_upload_add_chunk(fx->cat, "prod", b, ds, "c.json", &c0, -1, 3, NULL,
                                              NULL), ING_ENOTFOUND);
    /* Overlaps are kept (completion refuses them); the chunk count is capped. */
    assert_int_equal(catalog_upload_add_chunk(fx->cat, "prod", b, ds, "a/big.json", &c0, -1, 3,
                                              NULL, NULL), 0);
    assert_int_equal(catalog_upload_add_chunk(fx->cat, "prod", b, ds, "a/big.json", &c_over, -1,
                                              3, NULL, NULL), 0);
    struct upl_range c4 = {300, 399};
    assert_int_equal(catalog_upload_add_chunk(fx->cat, "prod", b, ds, "a/big.json", &c4, -1, 3,
                                              NULL, NULL), ING_ETOOBIG);
    assert_int_equal(catalog_upload_get(fx->cat, "prod", b, ds, "a/big.json", &doc, NULL), 0);
    assert_int_equal(json_array_size(json_object_get(doc, "chunks")), 3);
    json_decref(doc);
    doc = NULL;

    /* INITIALIZE again starts over. */
    assert_int_equal(catalog_upload_init(fx->cat, "prod", b, ds, "a/big.json", NULL), 0);
    assert_int_equal(catalog_upload_get(fx->cat, "prod", b, ds, "a/big.json", &doc, NULL), 0);
    assert_int_equal(json_array_size(json_object_get(doc, "chunks")), 0);
    assert_null(json_object_get(doc, "total"));
    json_decref(doc);
    doc = NULL;

    assert_int_equal(catalog_upload_list(fx->cat, "prod", b, &list, NULL), 0);
    assert_int_equal(json_object_size(list), 2);
    json_decref(list);
    assert_int_equal(catalog_upload_remove(fx->cat, "prod", b, ds, "b.json", NULL), 0);
    assert_int_equal(catalog_upload_remove(fx->cat, "prod", b, ds, "b.json", NULL), 0);
    assert_int_equal(catalog_upload_list(fx->cat, "prod", b, &list, NULL), 0);
    assert_int_equal(json_object_size(list), 1);
    json_decref(list);

    /* Once the batch has left "loading", no chunk is recorded. */
    static const char *const loading[] = {"loading", NULL};
    assert_int_equal(catalog_batch_transition(fx->cat, "prod", b, loading, "aborted", NULL, NULL),
                     0);
    assert_int_equal(catalog_upload_add_chunk(fx->cat, "prod", b, ds, "a/big.json", &c0, -1, 3,
                                              NULL, NULL), ING_ESTATE);
    assert_int_equal(catalog_upload_init(fx->cat, "prod", b, ds, "x.json", NULL), ING_ESTATE);
    free(ds);
    free(other);
    free(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_status_enum),
        cmocka_unit_test_setup_teardown(test_fail_and_retry_edges, setup, teardown),
        cmocka_unit_test_setup_teardown(test_revert, setup, teardown),
        cmocka_unit_test_setup_teardown(test_replay, setup, teardown),
        cmocka_unit_test_setup_teardown(test_replay_checks, setup, teardown),
        cmocka_unit_test_setup_teardown(test_external_id_unique, setup, teardown),
        cmocka_unit_test_setup_teardown(test_last_batches, setup, teardown),
        cmocka_unit_test_setup_teardown(test_upload_records, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
