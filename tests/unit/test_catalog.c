/* test_catalog.c - unit tests of the Catalog (src/catalog/catalog.c) over the real SQLite store:
 * datasets, batches, the batch state machine, batch finish and dataset files, sandboxes. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "catalog/catalog.h"
#include "store/store.h"
#include "util/fs.h"
#include "util/id.h"
#include "util/mem.h"

#define SCHEMA_ID "https://ns.adobe.com/techmarketingdemos/schemas/0123456789abcdef"

struct fixture {
    char dir[64];
    struct store *st;
    struct catalog *cat;
    struct cat_actor who;
};

static int setup(void **state)
{
    struct fixture *fx = xcalloc(1, sizeof(*fx));
    snprintf(fx->dir, sizeof(fx->dir), "/tmp/ingot-test-catalog-XXXXXX");
    if (!mkdtemp(fx->dir))
        return -1;
    struct ing_err err;
    ing_err_clear(&err);
    if (store_open(&fx->st, fx->dir, &err) != 0) {
        fprintf(stderr, "store_open: %s\n", err.msg);
        return -1;
    }
    /* No registry: schemaRef ids are taken as given (resolution needs the schema module). */
    if (catalog_new(&fx->cat, fx->st, NULL, &err) != 0)
        return -1;
    fx->who = (struct cat_actor){.ims_org = "ORG@AdobeOrg", .client = "key1", .user = "user1"};
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *fx = *state;
    catalog_free(fx->cat);
    store_close(fx->st);
    fs_rm_rf(fx->dir, NULL);
    free(fx);
    return 0;
}

static json_t *js(const char *text)
{
    json_error_t je;
    json_t *d = json_loads(text, 0, &je);
    if (!d)
        fail_msg("bad test JSON: %s: %s", text, je.text);
    return d;
}

static const char *str_at(const json_t *doc, const char *key)
{
    return json_string_value(json_object_get(doc, key));
}

/* Create a dataset from JSON text, asserting success; returns its id (free()). */
static char *make_dataset(struct fixture *fx, const char *sandbox, const char *text)
{
    json_t *body = js(text);
    char *id = NULL;
    struct ing_err err;
    ing_err_clear(&err);
    int rc = catalog_dataset_create(fx->cat, sandbox, &fx->who, body, &id, &err);
    json_decref(body);
    if (rc != 0)
        fail_msg("dataset create: %s", err.msg);
    return id;
}

static char *make_plain_dataset(struct fixture *fx)
{
    return make_dataset(fx, "prod",
                        "{\"name\":\"Luma CRM Dataset\",\"schemaRef\":{\"id\":\"" SCHEMA_ID "\"}}");
}

static char *make_batch(struct fixture *fx, const char *sandbox, const char *dataset_id)
{
    json_t *body = json_pack("{s:s, s:{s:s}}", "datasetId", dataset_id, "inputFormat", "format",
                             "json");
    char *id = NULL;
    struct ing_err err;
    ing_err_clear(&err);
    int rc = catalog_batch_create(fx->cat, sandbox, &fx->who, body, &id, &err);
    json_decref(body);
    if (rc != 0)
        fail_msg("batch create: %s", err.msg);
    return id;
}

static const char *batch_status_of(struct fixture *fx, const char *sandbox, const char *id,
                                   json_t **hold)
{
    json_decref(*hold);
    *hold = NULL;
    assert_int_equal(catalog_batch_get(fx->cat, sandbox, id, hold, NULL), 0);
    return str_at(*hold, "status");
}

static int move(struct fixture *fx, const char *id, const char *from0, const char *from1,
                const char *to)
{
    const char *from[] = {from0, from1, NULL};
    return catalog_batch_transition(fx->cat, "prod", id, from, to, NULL, NULL);
}

/* ---- datasets ------------------------------------------------------------------------------ */

static void test_dataset_create_get(void **state)
{
    struct fixture *fx = *state;
    char *id = make_dataset(fx, "prod",
                            "{\"name\":\"Luma Loyalty Dataset\",\"description\":\"d\","
                            "\"schemaRef\":{\"id\":\"" SCHEMA_ID "\"},"
                            "\"tags\":{\"unifiedProfile\":[\"enabled:true\"]},"
                            "\"ignoredField\":1,\"created\":5}");
    assert_int_equal(strlen(id), ID_HEX_LEN);
    json_t *doc = NULL;
    assert_int_equal(catalog_dataset_get(fx->cat, "prod", id, &doc, NULL), 0);
    assert_string_equal(str_at(doc, "name"), "Luma Loyalty Dataset");
    assert_string_equal(str_at(doc, "description"), "d");
    assert_string_equal(str_at(doc, "imsOrg"), "ORG@AdobeOrg");
    assert_string_equal(str_at(doc, "createdClient"), "key1");
    assert_string_equal(str_at(doc, "createdUser"), "user1");
    assert_string_equal(str_at(doc, "version"), "1.0.0");
    json_t *ref = json_object_get(doc, "schemaRef");
    assert_string_equal(str_at(ref, "id"), SCHEMA_ID);
    assert_non_null(str_at(ref, "contentType")); /* defaulted */
    char files[80];
    snprintf(files, sizeof(files), "@/dataSetFiles?dataSetId=%s", id);
    assert_string_equal(str_at(doc, "files"), files);
    /* The client cannot set catalog-owned fields or unknown ones. */
    assert_true(json_integer_value(json_object_get(doc, "created")) > 1000000000000);
    assert_null(json_object_get(doc, "ignoredField"));
    json_t *tag = json_object_get(json_object_get(doc, "tags"), "unifiedProfile");
    assert_string_equal(json_string_value(json_array_get(tag, 0)), "enabled:true");
    json_decref(doc);

    struct ing_err err;
    ing_err_clear(&err);
    assert_int_equal(catalog_dataset_get(fx->cat, "prod", "0123456789abcdef01234567", &doc, &err),
                     ING_ENOTFOUND);
    assert_int_equal(catalog_dataset_get(fx->cat, "prod", "../etc", &doc, &err), ING_EINVAL);
    free(id);
}

static void expect_dataset_refused(struct fixture *fx, const char *text, int code,
                                   const char *field)
{
    json_t *body = js(text);
    char *id = NULL;
    struct ing_err err;
    ing_err_clear(&err);
    assert_int_equal(catalog_dataset_create(fx->cat, "prod", &fx->who, body, &id, &err), code);
    assert_null(id);
    if (field)
        assert_string_equal(err.field, field);
    assert_true(err.msg[0] != '\0');
    json_decref(body);
}

static void test_dataset_validation(void **state)
{
    struct fixture *fx = *state;
    expect_dataset_refused(fx, "{\"name\":\"x\"}", ING_EREQUIRED, "schemaRef");
    expect_dataset_refused(fx, "{\"name\":\"x\",\"schemaRef\":{}}", ING_EREQUIRED, "schemaRef.id");
    expect_dataset_refused(fx, "{\"schemaRef\":\"" SCHEMA_ID "\"}", ING_EINVAL, "schemaRef");
    expect_dataset_refused(fx, "{\"name\":7,\"schemaRef\":{\"id\":\"s\"}}", ING_EINVAL, "name");
    expect_dataset_refused(fx, "{\"schemaRef\":{\"id\":\"s\"},\"tags\":{\"a\":\"b\"}}", ING_EINVAL,
                           "tags.a");
    expect_dataset_refused(fx, "{\"schemaRef\":{\"id\":\"s\"},\"enableErrorDiagnostics\":\"y\"}",
                           ING_EINVAL, "enableErrorDiagnostics");
    expect_dataset_refused(fx, "[1]", ING_EINVAL, NULL);
    json_t *all = NULL;
    assert_int_equal(store_list(fx->st, "prod", CAT_KIND_DATASET, NULL, &all, NULL), 0);
    assert_int_equal(json_object_size(all), 0);
    json_decref(all);
}

static void test_dataset_update(void **state)
{
    struct fixture *fx = *state;
    char *id = make_plain_dataset(fx);
    json_t *before = NULL, *doc = NULL;
    assert_int_equal(catalog_dataset_get(fx->cat, "prod", id, &before, NULL), 0);

    /* Merge PATCH: top-level replace, null removes, catalog-owned fields ignored. */
    json_t *merge = js("{\"description\":\"new\",\"created\":1,\"imsOrg\":\"evil\"}");
    struct cat_actor other = {.ims_org = "O", .client = "key2", .user = "user2"};
    assert_int_equal(catalog_dataset_update(fx->cat, "prod", &other, id, CAT_UPDATE_MERGE, merge,
                                            NULL),
                     0);
    json_decref(merge);
    assert_int_equal(catalog_dataset_get(fx->cat, "prod", id, &doc, NULL), 0);
    assert_string_equal(str_at(doc, "description"), "new");
    assert_string_equal(str_at(doc, "name"), "Luma CRM Dataset");
    assert_string_equal(str_at(doc, "imsOrg"), "ORG@AdobeOrg");
    assert_string_equal(str_at(doc, "updatedUser"), "user2");
    assert_string_equal(str_at(doc, "createdUser"), "user1");
    assert_true(json_equal(json_object_get(doc, "created"), json_object_get(before, "created")));
    json_decref(doc);

    /* JSON Patch: enabling Profile as the Luma tutorial does. */
    json_t *ops = js("[{\"op\":\"add\",\"path\":\"/tags/unifiedProfile\","
                     "\"value\":[\"enabled:true\",\"isUpsert:true\"]},"
                     "{\"op\":\"add\",\"path\":\"/tags/unifiedIdentity\","
                     "\"value\":[\"enabled:true\"]},"
                     "{\"op\":\"add\",\"path\":\"/tags/unifiedProfile/-\",\"value\":\"x:1\"},"
                     "{\"op\":\"remove\",\"path\":\"/description\"},"
                     "{\"op\":\"add\",\"path\":\"/tags/a~1b\",\"value\":[]}]");
    assert_int_equal(catalog_dataset_update(fx->cat, "prod", &fx->who, id, CAT_UPDATE_JSON_PATCH,
                                            ops, NULL),
                     0);
    json_decref(ops);
    assert_int_equal(catalog_dataset_get(fx->cat, "prod", id, &doc, NULL), 0);
    json_t *tags = json_object_get(doc, "tags");
    json_t *up = json_object_get(tags, "unifiedProfile");
    assert_int_equal(json_array_size(up), 3);
    assert_string_equal(json_string_value(json_array_get(up, 1)), "isUpsert:true");
    assert_string_equal(json_string_value(json_array_get(up, 2)), "x:1");
    assert_non_null(json_object_get(tags, "unifiedIdentity"));
    assert_non_null(json_object_get(tags, "a/b"));
    assert_null(json_object_get(doc, "description"));
    json_decref(doc);
    ops = js("[{\"op\":\"copy\",\"from\":\"/name\",\"path\":\"/description\"}]");
    assert_int_equal(catalog_dataset_update(fx->cat, "prod", &fx->who, id, CAT_UPDATE_JSON_PATCH,
                                            ops, NULL),
                     0);
    json_decref(ops);
    assert_int_equal(catalog_dataset_get(fx->cat, "prod", id, &doc, NULL), 0);
    assert_string_equal(str_at(doc, "description"), "Luma CRM Dataset");
    json_decref(doc);

    /* A failing operation undoes the earlier ones of the same patch. */
    ops = js("[{\"op\":\"replace\",\"path\":\"/name\",\"value\":\"renamed\"},"
             "{\"op\":\"remove\",\"path\":\"/tags/nope\"}]");
    struct ing_err err;
    ing_err_clear(&err);
    assert_int_equal(catalog_dataset_update(fx->cat, "prod", &fx->who, id, CAT_UPDATE_JSON_PATCH,
                                            ops, &err),
                     ING_EINVAL);
    assert_non_null(strstr(err.msg, "/tags/nope"));
    json_decref(ops);
    const char *bad[] = {
        "[{\"op\":\"add\",\"path\":\"/tags/unifiedProfile/9\",\"value\":\"z\"}]",
        "[{\"op\":\"frobnicate\",\"path\":\"/name\"}]",
        "[{\"op\":\"test\",\"path\":\"/name\",\"value\":\"other\"}]",
        "[{\"op\":\"add\",\"path\":\"tags\",\"value\":{}}]",
        "[{\"op\":\"replace\",\"path\":\"/tags\",\"value\":[]}]",
        "[{\"op\":\"remove\",\"path\":\"/schemaRef\"}]",
        "{\"op\":\"add\"}",
    };
    for (size_t i = 0; i < ING_ARRAY_LEN(bad); i++) {
        ops = js(bad[i]);
        int rc = catalog_dataset_update(fx->cat, "prod", &fx->who, id, CAT_UPDATE_JSON_PATCH, ops,
                                        NULL);
        if (rc >= 0)
            fail_msg("patch %s was accepted", bad[i]);
        json_decref(ops);
    }
    assert_int_equal(catalog_dataset_get(fx->cat, "prod", id, &doc, NULL), 0);
    assert_string_equal(str_at(doc, "name"), "Luma CRM Dataset");
    assert_int_equal(json_array_size(json_object_get(json_object_get(doc, "tags"),
                                                     "unifiedProfile")),
                     3);
    json_decref(doc);

    /* PUT replaces the client fields; absent ones go. */
    json_t *put = js("{\"name\":\"n2\",\"schemaRef\":{\"id\":\"" SCHEMA_ID "\"}}");
    assert_int_equal(catalog_dataset_update(fx->cat, "prod", &fx->who, id, CAT_UPDATE_REPLACE, put,
                                            NULL),
                     0);
    json_decref(put);
    assert_int_equal(catalog_dataset_get(fx->cat, "prod", id, &doc, NULL), 0);
    assert_string_equal(str_at(doc, "name"), "n2");
    assert_int_equal(json_object_size(json_object_get(doc, "tags")), 0);
    assert_non_null(str_at(doc, "files"));
    json_decref(doc);

    json_t *any = js("{}");
    assert_int_equal(catalog_dataset_update(fx->cat, "prod", &fx->who, "0123456789abcdef01234567",
                                            CAT_UPDATE_MERGE, any, NULL),
                     ING_ENOTFOUND);
    json_decref(any);
    json_decref(before);
    free(id);
}

static void test_dataset_delete(void **state)
{
    struct fixture *fx = *state;
    char *id = make_plain_dataset(fx);
    json_t *doc = NULL;
    assert_int_equal(catalog_dataset_delete(fx->cat, "prod", id, NULL), 0);
    assert_int_equal(catalog_dataset_get(fx->cat, "prod", id, &doc, NULL), ING_ENOTFOUND);
    assert_int_equal(catalog_dataset_delete(fx->cat, "prod", id, NULL), ING_ENOTFOUND);
    free(id);
}

/* With the real Schema Registry: schemaRef.id must name a schema of the dataset's sandbox. */
static void test_dataset_schema_resolution(void **state)
{
    struct fixture *fx = *state;
    struct registry *reg = NULL;
    struct catalog *cat = NULL;
    json_t *schema = NULL, *body = NULL, *doc = NULL;
    char *id = NULL;
    struct ing_err err;
    ing_err_clear(&err);
    assert_int_equal(registry_new(&reg, fx->st, "techmarketingdemos", &err), 0);
    assert_int_equal(catalog_new(&cat, fx->st, reg, &err), 0);
    body = js("{\"title\":\"Luma CRM Schema\",\"type\":\"object\","
              "\"allOf\":[{\"$ref\":\"https://ns.adobe.com/xdm/context/profile\"}]}");
    if (registry_create(reg, "prod", REGISTRY_SCHEMA, body, &schema, &err) != 0)
        fail_msg("registry_create: %s", err.msg);
    json_decref(body);
    const char *schema_id = str_at(schema, "$id");
    assert_non_null(schema_id);

    body = json_pack("{s:s, s:{s:s}}", "name", "ok", "schemaRef", "id", schema_id);
    assert_int_equal(catalog_dataset_create(cat, "prod", &fx->who, body, &id, &err), 0);
    json_decref(body);

    /* Unknown schema, and a schema of another sandbox: 400-class errors naming the field. */
    body = json_pack("{s:s, s:{s:s}}", "name", "bad", "schemaRef", "id",
                     "https://ns.adobe.com/techmarketingdemos/schemas/ffffffffffffffff");
    char *bad_id = NULL;
    ing_err_clear(&err);
    assert_int_equal(catalog_dataset_create(cat, "prod", &fx->who, body, &bad_id, &err),
                     ING_EINVAL);
    assert_string_equal(err.field, "schemaRef.id");
    json_decref(body);
    body = json_pack("{s:s, s:{s:s}}", "name", "dev", "schemaRef", "id", schema_id);
    assert_int_equal(catalog_dataset_create(cat, "dev", &fx->who, body, &bad_id, NULL),
                     ING_EINVAL);
    assert_null(bad_id);
    json_decref(body);

    /* PATCH to a schema that does not exist is refused and changes nothing. */
    body = js("{\"schemaRef\":{\"id\":\"https://ns.adobe.com/techmarketingdemos/schemas/00\"}}");
    assert_int_equal(catalog_dataset_update(cat, "prod", &fx->who, id, CAT_UPDATE_MERGE, body,
                                            NULL),
                     ING_EINVAL);
    json_decref(body);
    assert_int_equal(catalog_dataset_get(cat, "prod", id, &doc, NULL), 0);
    assert_string_equal(str_at(json_object_get(doc, "schemaRef"), "id"), schema_id);
    json_decref(doc);

    free(id);
    json_decref(schema);
    catalog_free(cat);
    registry_free(reg);
}

/* ---- batches ------------------------------------------------------------------------------- */

static void test_batch_create(void **state)
{
    struct fixture *fx = *state;
    char *ds = make_plain_dataset(fx);
    json_t *body = json_pack("{s:s, s:{s:s}, s:{s:[s]}}", "datasetId", ds, "inputFormat",
                             "format", "JSON", "tags", "t", "v");
    char *id = NULL;
    assert_int_equal(catalog_batch_create(fx->cat, "prod", &fx->who, body, &id, NULL), 0);
    json_decref(body);
    assert_int_equal(strlen(id), ID_ULID_LEN);
    json_t *doc = NULL;
    assert_int_equal(catalog_batch_get(fx->cat, "prod", id, &doc, NULL), 0);
    assert_string_equal(str_at(doc, "id"), id);
    assert_string_equal(str_at(doc, "status"), "loading");
    assert_string_equal(str_at(doc, "externalId"), id);
    assert_string_equal(str_at(doc, "imsOrg"), "ORG@AdobeOrg");
    assert_string_equal(str_at(doc, "version"), "1.0.0");
    json_t *fmt = json_object_get(doc, "inputFormat");
    assert_string_equal(str_at(fmt, "format"), "json");
    assert_true(json_is_false(json_object_get(fmt, "isMultiLineJson")));
    json_t *rel = json_array_get(json_object_get(doc, "relatedObjects"), 0);
    assert_string_equal(str_at(rel, "type"), "dataSet");
    assert_string_equal(str_at(rel, "id"), ds);
    assert_non_null(json_object_get(json_object_get(doc, "tags"), "t"));
    assert_null(json_object_get(doc, "started"));
    json_decref(doc);
    free(id);

    /* Parquet is accepted (stored lower-case); externalId is kept; inputFormat is optional. */
    body = json_pack("{s:s, s:s, s:{s:s}}", "datasetId", ds, "externalId", "ext-1", "inputFormat",
                     "format", "Parquet");
    assert_int_equal(catalog_batch_create(fx->cat, "prod", &fx->who, body, &id, NULL), 0);
    json_decref(body);
    assert_int_equal(catalog_batch_get(fx->cat, "prod", id, &doc, NULL), 0);
    assert_string_equal(str_at(json_object_get(doc, "inputFormat"), "format"), "parquet");
    assert_string_equal(str_at(doc, "externalId"), "ext-1");
    json_decref(doc);
    free(id);
    body = json_pack("{s:s}", "datasetId", ds);
    assert_int_equal(catalog_batch_create(fx->cat, "prod", &fx->who, body, &id, NULL), 0);
    json_decref(body);
    assert_int_equal(catalog_batch_get(fx->cat, "prod", id, &doc, NULL), 0);
    assert_string_equal(str_at(json_object_get(doc, "inputFormat"), "format"), "json");
    json_decref(doc);
    free(id);
    free(ds);
}

static void expect_batch_refused(struct fixture *fx, const char *sandbox, json_t *body, int code,
                                 const char *field)
{
    char *id = NULL;
    struct ing_err err;
    ing_err_clear(&err);
    assert_int_equal(catalog_batch_create(fx->cat, sandbox, &fx->who, body, &id, &err), code);
    assert_null(id);
    assert_string_equal(err.field, field);
    json_decref(body);
}

static void test_batch_create_validation(void **state)
{
    struct fixture *fx = *state;
    char *ds = make_plain_dataset(fx);
    expect_batch_refused(fx, "prod", js("{\"inputFormat\":{\"format\":\"json\"}}"), ING_EREQUIRED,
                         "datasetId");
    expect_batch_refused(fx, "prod", js("{\"datasetId\":\"0123456789abcdef01234567\"}"),
                         ING_EINVAL, "datasetId");
    expect_batch_refused(fx, "prod", js("{\"datasetId\":\"../x\"}"), ING_EINVAL, "datasetId");
    expect_batch_refused(fx, "prod", json_pack("{s:s,s:{s:s}}", "datasetId", ds, "inputFormat",
                                               "format", "xml"),
                         ING_EINVAL, "inputFormat.format");
    expect_batch_refused(fx, "prod", json_pack("{s:s,s:{s:s,s:s}}", "datasetId", ds,
                                               "inputFormat", "format", "json", "isMultiLineJson",
                                               "yes"),
                         ING_EINVAL, "inputFormat.isMultiLineJson");
    expect_batch_refused(fx, "prod", json_pack("{s:s,s:i}", "datasetId", ds,
                                               "partialIngestionPercent", 101),
                         ING_EINVAL, "partialIngestionPercent");
    /* Sandbox isolation: the dataset exists in prod only. */
    expect_batch_refused(fx, "dev", json_pack("{s:s}", "datasetId", ds), ING_EINVAL, "datasetId");
    json_t *all = NULL;
    assert_int_equal(store_list(fx->st, "prod", CAT_KIND_BATCH, NULL, &all, NULL), 0);
    assert_int_equal(json_object_size(all), 0);
    json_decref(all);
    free(ds);
}

static void test_batch_state_machine(void **state)
{
    struct fixture *fx = *state;
    char *ds = make_plain_dataset(fx);
    char *b = make_batch(fx, "prod", ds);
    json_t *hold = NULL;

    /* Edges the state machine does not have, and statuses that do not exist. */
    assert_int_equal(move(fx, b, "loading", NULL, "success"), ING_ESTATE);
    assert_int_equal(move(fx, b, "loading", NULL, "processing"), ING_ESTATE);
    assert_int_equal(move(fx, b, "loading", NULL, "bogus"), ING_EINVAL);
    assert_string_equal(batch_status_of(fx, "prod", b, &hold), "loading");

    /* COMPLETE: loading -> queued; a second COMPLETE finds it queued (ESTATE) and changes nothing
     * - the API answers 200 for that, as AEP promises retries are safe. */
    assert_int_equal(move(fx, b, "loading", NULL, "queued"), 0);
    assert_string_equal(batch_status_of(fx, "prod", b, &hold), "queued");
    int64_t updated = json_integer_value(json_object_get(hold, "updated"));
    struct ing_err err;
    ing_err_clear(&err);
    const char *from[] = {"loading", NULL};
    assert_int_equal(catalog_batch_transition(fx->cat, "prod", b, from, "queued", NULL, &err),
                     ING_ESTATE);
    assert_non_null(strstr(err.msg, "queued"));
    assert_string_equal(batch_status_of(fx, "prod", b, &hold), "queued");
    assert_int_equal(json_integer_value(json_object_get(hold, "updated")), updated);
    assert_null(json_object_get(hold, "started"));

    /* The worker takes it, stamping "started" through the patch. */
    json_t *patch = json_pack("{s:I}", "started", (json_int_t)1234);
    const char *fq[] = {"queued", NULL};
    assert_int_equal(catalog_batch_transition(fx->cat, "prod", b, fq, "processing", patch, NULL),
                     0);
    json_decref(patch);
    assert_string_equal(batch_status_of(fx, "prod", b, &hold), "processing");
    assert_int_equal(json_integer_value(json_object_get(hold, "started")), 1234);

    /* ABORT as the import API asks it (loading or queued only) is refused while processing. */
    assert_int_equal(move(fx, b, "loading", "queued", "aborted"), ING_ESTATE);
    assert_int_equal(catalog_batch_finish(fx->cat, "prod", b, "success", NULL, NULL, NULL, NULL),
                     0);
    assert_string_equal(batch_status_of(fx, "prod", b, &hold), "success");
    /* Final: nothing moves it, even when the caller lists its status. */
    assert_int_equal(move(fx, b, "success", NULL, "queued"), ING_ESTATE);
    assert_int_equal(move(fx, b, "success", NULL, "aborted"), ING_ESTATE);
    assert_int_equal(move(fx, b, "success", NULL, "success"), ING_ESTATE);
    assert_int_equal(catalog_batch_finish(fx->cat, "prod", b, "failed", NULL, NULL, NULL, NULL),
                     ING_ESTATE);
    assert_string_equal(batch_status_of(fx, "prod", b, &hold), "success");
    free(b);

    /* ABORT from loading and from queued; aborted is final. */
    b = make_batch(fx, "prod", ds);
    assert_int_equal(move(fx, b, "loading", "queued", "aborted"), 0);
    assert_string_equal(batch_status_of(fx, "prod", b, &hold), "aborted");
    assert_int_equal(move(fx, b, "loading", "aborted", "queued"), ING_ESTATE);
    free(b);
    b = make_batch(fx, "prod", ds);
    assert_int_equal(move(fx, b, "loading", NULL, "queued"), 0);
    assert_int_equal(move(fx, b, "loading", "queued", "aborted"), 0);
    assert_string_equal(batch_status_of(fx, "prod", b, &hold), "aborted");
    free(b);

    assert_int_equal(move(fx, "01HZZZZZZZZZZZZZZZZZZZZZZZ", "loading", NULL, "queued"),
                     ING_ENOTFOUND);
    json_decref(hold);
    free(ds);
}

/* ---- finish and dataset files -------------------------------------------------------------- */

static char *processing_batch(struct fixture *fx, const char *ds)
{
    char *b = make_batch(fx, "prod", ds);
    assert_int_equal(move(fx, b, "loading", NULL, "queued"), 0);
    assert_int_equal(move(fx, b, "queued", NULL, "processing"), 0);
    return b;
}

static void test_batch_finish_success(void **state)
{
    struct fixture *fx = *state;
    char *ds = make_plain_dataset(fx);
    char *other = make_plain_dataset(fx);
    char *b = processing_batch(fx, ds);
    json_t *files = js("[{\"name\":\"part-00000.parquet\",\"size\":100,\"records\":600},"
                       "{\"name\":\"part-00001.parquet\",\"size\":50,\"records\":400}]");
    json_t *metrics = js("{\"inputRecordCount\":1000,\"outputRecordCount\":1000}");
    json_t *hold = NULL;
    /* Finishing a batch that is not processing changes nothing. */
    char *loading = make_batch(fx, "prod", ds);
    assert_int_equal(catalog_batch_finish(fx->cat, "prod", loading, "success", metrics, NULL,
                                          files, NULL),
                     ING_ESTATE);
    assert_int_equal(catalog_batch_finish(fx->cat, "prod", b, "done", metrics, NULL, files, NULL),
                     ING_EINVAL);

    assert_int_equal(catalog_batch_finish(fx->cat, "prod", b, "success", metrics, NULL, files,
                                          NULL),
                     0);
    assert_string_equal(batch_status_of(fx, "prod", b, &hold), "success");
    assert_true(json_integer_value(json_object_get(hold, "completed")) > 0);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(hold, "metrics"),
                                                        "outputRecordCount")),
                     1000);

    json_t *dsdoc = NULL;
    assert_int_equal(catalog_dataset_get(fx->cat, "prod", ds, &dsdoc, NULL), 0);
    assert_string_equal(str_at(dsdoc, "lastBatchId"), b);
    assert_string_equal(str_at(dsdoc, "lastBatchStatus"), "success");
    json_decref(dsdoc);

    json_t *list = NULL;
    assert_int_equal(catalog_file_list(fx->cat, "prod", b, NULL, 0, 0, &list, NULL), 0);
    assert_int_equal(json_object_size(list), 2);
    const char *fid;
    json_t *f;
    int64_t n = 0;
    const char *first_id = NULL;
    json_object_foreach(list, fid, f) {
        char want[32];
        snprintf(want, sizeof(want), "part-%05lld.parquet", (long long)n);
        assert_string_equal(str_at(f, "name"), want);
        assert_string_equal(str_at(f, "batchId"), b);
        assert_string_equal(str_at(f, "dataSetId"), ds);
        assert_true(json_is_true(json_object_get(f, "isValid")));
        assert_int_equal(strlen(fid), ID_HEX_LEN);
        if (n == 0)
            first_id = fid;
        n++;
    }
    json_t *one = NULL;
    assert_int_equal(catalog_file_get(fx->cat, "prod", first_id, &one, NULL), 0);
    assert_int_equal(json_integer_value(json_object_get(one, "records")), 600);
    json_decref(one);
    json_decref(list);

    /* Filters and paging. */
    assert_int_equal(catalog_file_list(fx->cat, "prod", NULL, ds, 1, 5, &list, NULL), 0);
    assert_int_equal(json_object_size(list), 1);
    json_object_foreach(list, fid, f) assert_string_equal(str_at(f, "name"), "part-00001.parquet");
    json_decref(list);
    assert_int_equal(catalog_file_list(fx->cat, "prod", NULL, other, 0, 0, &list, NULL), 0);
    assert_int_equal(json_object_size(list), 0);
    json_decref(list);

    json_decref(hold);
    json_decref(files);
    json_decref(metrics);
    free(loading);
    free(b);
    free(other);
    free(ds);
}

static void test_batch_finish_atomic(void **state)
{
    struct fixture *fx = *state;
    char *ds = make_plain_dataset(fx);
    char *b = processing_batch(fx, ds);
    json_t *hold = NULL;
    /* The second file entry is bad: the batch update and the first file are undone with it. */
    json_t *files = js("[{\"name\":\"part-00000.parquet\",\"size\":1,\"records\":1},"
                       "{\"name\":\"../escape\",\"size\":1,\"records\":1}]");
    struct ing_err err;
    ing_err_clear(&err);
    assert_int_equal(catalog_batch_finish(fx->cat, "prod", b, "success", NULL, NULL, files, &err),
                     ING_EINVAL);
    assert_string_equal(err.field, "files[1]");
    assert_string_equal(batch_status_of(fx, "prod", b, &hold), "processing");
    assert_null(json_object_get(hold, "completed"));
    json_t *raw = NULL;
    assert_int_equal(store_list(fx->st, "prod", CAT_KIND_FILE, NULL, &raw, NULL), 0);
    assert_int_equal(json_object_size(raw), 0);
    json_decref(raw);
    json_t *dsdoc = NULL;
    assert_int_equal(catalog_dataset_get(fx->cat, "prod", ds, &dsdoc, NULL), 0);
    assert_null(json_object_get(dsdoc, "lastBatchId"));
    json_decref(dsdoc);

    /* A failed batch gets its errors, no files, and the dataset learns of it. */
    json_t *errors = js("[{\"code\":\"INGEST-1555-400\",\"description\":\"required\"}]");
    assert_int_equal(catalog_batch_finish(fx->cat, "prod", b, "failed", NULL, errors, files, NULL),
                     0);
    assert_string_equal(batch_status_of(fx, "prod", b, &hold), "failed");
    assert_string_equal(str_at(json_array_get(json_object_get(hold, "errors"), 0), "code"),
                        "INGEST-1555-400");
    assert_int_equal(store_list(fx->st, "prod", CAT_KIND_FILE, NULL, &raw, NULL), 0);
    assert_int_equal(json_object_size(raw), 0);
    json_decref(raw);
    assert_int_equal(catalog_dataset_get(fx->cat, "prod", ds, &dsdoc, NULL), 0);
    assert_string_equal(str_at(dsdoc, "lastBatchId"), b);
    assert_string_equal(str_at(dsdoc, "lastBatchStatus"), "failed");
    json_decref(dsdoc);

    json_decref(errors);
    json_decref(files);
    json_decref(hold);
    free(b);
    free(ds);
}

static void test_files_only_of_successful_batches(void **state)
{
    struct fixture *fx = *state;
    char *ds = make_plain_dataset(fx);
    char *b = processing_batch(fx, ds);
    /* A file document of a batch that is not (yet, or any more) a success stays invisible. */
    json_t *f = json_pack("{s:s, s:s, s:s, s:i, s:i}", "dataSetId", ds, "batchId", b, "name",
                          "part-00000.parquet", "size", 1, "records", 1);
    assert_int_equal(store_insert(fx->st, "prod", CAT_KIND_FILE, "aaaaaaaaaaaaaaaaaaaaaaaa", f,
                                  NULL),
                     0);
    json_decref(f);
    json_t *list = NULL, *one = NULL;
    assert_int_equal(catalog_file_list(fx->cat, "prod", NULL, ds, 0, 0, &list, NULL), 0);
    assert_int_equal(json_object_size(list), 0);
    json_decref(list);
    assert_int_equal(catalog_file_get(fx->cat, "prod", "aaaaaaaaaaaaaaaaaaaaaaaa", &one, NULL),
                     ING_ENOTFOUND);

    assert_int_equal(catalog_batch_finish(fx->cat, "prod", b, "success", NULL, NULL, NULL, NULL),
                     0);
    assert_int_equal(catalog_file_list(fx->cat, "prod", NULL, ds, 0, 0, &list, NULL), 0);
    assert_int_equal(json_object_size(list), 1);
    json_decref(list);
    assert_int_equal(catalog_file_get(fx->cat, "prod", "aaaaaaaaaaaaaaaaaaaaaaaa", &one, NULL), 0);
    json_decref(one);

    /* Deleting the dataset takes its files along. */
    assert_int_equal(catalog_dataset_delete(fx->cat, "prod", ds, NULL), 0);
    assert_int_equal(catalog_file_get(fx->cat, "prod", "aaaaaaaaaaaaaaaaaaaaaaaa", &one, NULL),
                     ING_ENOTFOUND);
    free(b);
    free(ds);
}

static void test_sandbox_isolation(void **state)
{
    struct fixture *fx = *state;
    char *ds_prod = make_plain_dataset(fx);
    char *ds_dev = make_dataset(fx, "dev", "{\"name\":\"dev\",\"schemaRef\":{\"id\":\"s\"}}");
    char *b = processing_batch(fx, ds_prod);
    json_t *doc = NULL;
    assert_int_equal(catalog_dataset_get(fx->cat, "dev", ds_prod, &doc, NULL), ING_ENOTFOUND);
    assert_int_equal(catalog_dataset_get(fx->cat, "prod", ds_dev, &doc, NULL), ING_ENOTFOUND);
    assert_int_equal(catalog_batch_get(fx->cat, "dev", b, &doc, NULL), ING_ENOTFOUND);
    const char *from[] = {"processing", NULL};
    assert_int_equal(catalog_batch_transition(fx->cat, "dev", b, from, "failed", NULL, NULL),
                     ING_ENOTFOUND);
    assert_int_equal(catalog_batch_finish(fx->cat, "dev", b, "success", NULL, NULL, NULL, NULL),
                     ING_ENOTFOUND);
    json_t *files = js("[{\"name\":\"part-00000.parquet\",\"size\":1,\"records\":1}]");
    assert_int_equal(catalog_batch_finish(fx->cat, "prod", b, "success", NULL, NULL, files, NULL),
                     0);
    json_decref(files);
    json_t *list = NULL;
    assert_int_equal(catalog_file_list(fx->cat, "dev", b, NULL, 0, 0, &list, NULL), 0);
    assert_int_equal(json_object_size(list), 0);
    json_decref(list);
    assert_int_equal(catalog_file_list(fx->cat, "prod", b, NULL, 0, 0, &list, NULL), 0);
    assert_int_equal(json_object_size(list), 1);
    json_decref(list);
    assert_int_equal(catalog_dataset_delete(fx->cat, "dev", ds_prod, NULL), ING_ENOTFOUND);
    assert_int_equal(catalog_dataset_get(fx->cat, "prod", ds_prod, &doc, NULL), 0);
    json_decref(doc);
    free(b);
    free(ds_dev);
    free(ds_prod);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_dataset_create_get, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dataset_validation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dataset_update, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dataset_delete, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dataset_schema_resolution, setup, teardown),
        cmocka_unit_test_setup_teardown(test_batch_create, setup, teardown),
        cmocka_unit_test_setup_teardown(test_batch_create_validation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_batch_state_machine, setup, teardown),
        cmocka_unit_test_setup_teardown(test_batch_finish_success, setup, teardown),
        cmocka_unit_test_setup_teardown(test_batch_finish_atomic, setup, teardown),
        cmocka_unit_test_setup_teardown(test_files_only_of_successful_batches, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sandbox_isolation, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
