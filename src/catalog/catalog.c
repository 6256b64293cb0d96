/*
 * catalog.c - the Catalog: dataset, batch and dataSetFile documents and the batch state machine.
 *
 * Every object is one JSON document in the store, already in the shape the Catalog API returns,
 * so the API layer passes documents through. Changes that touch more than one document (a batch
 * finishing writes the batch, its files and the dataset) run in one store transaction, so a reader
 * sees a batch whole or not at all. See catalog.h for the contract.
 */
#include "catalog/catalog.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "notify/notify.h"
#include "util/clock.h"
#include "util/fs.h"
#include "util/id.h"
#include "util/mem.h"

struct catalog {
    struct store *st;
    struct registry *reg; /* NULL: schemaRef ids are not resolved (tools and unit tests) */
    cat_retire_fn *retire_fn; /* NULL: retired batches keep their bytes (unit tests) */
    void *retire_ctx;
};

#define CAT_VERSION "1.0.0"
#define CAT_DEFAULT_CONTENT_TYPE "application/vnd.adobe.xed+json;version=1"

/* Dataset fields a client may set; everything else (created, imsOrg, lastBatchId...) is owned by
 * the catalog and survives PUT and PATCH untouched. */
static const char *const ds_user_fields[] = {
    "name", "description", "schemaRef", "tags", "enableErrorDiagnostics", "fileDescription",
    "dataSourceId", NULL,
};

static const char *const batch_final[] = {"success", "failed", "aborted", "inactive",
                                          "deleted", "failure", "active", "abandoned", NULL};

/* The edges of the batch state machine (catalog.h). processing -> queued is crash recovery:
 * the pipeline re-queues a batch whose worker died. A non-final status may also "move" to
 * itself, which lets the pipeline restamp a batch it restarts. */
static const struct {
    const char *from;
    const char *to;
} batch_edges[] = {
    {"loading", "queued"},       {"loading", "aborted"},   {"queued", "processing"},
    {"queued", "aborted"},       {"queued", "failed"},     {"processing", "success"},
    {"processing", "failed"},    {"processing", "aborted"}, {"processing", "queued"},
    {"loading", "failed"},       {"processing", "retrying"}, {"retrying", "queued"},
    {"retrying", "processing"},  {"retrying", "failed"},    {"retrying", "aborted"},
};

/* AEP's Catalog batch status enum (catalog.yaml batchStatus), plus "queued" as ingot uses it. */
static const char *const batch_statuses[] = {
    "processing", "success", "failure", "queued",  "retrying", "stalled", "aborted", "abandoned",
    "inactive",   "failed",  "loading", "loaded",  "staged",   "active",  "staging", "deleted",
    NULL};

static bool str_in(const char *s, const char *const *list)
{
    if (!s || !list)
        return false;
    for (size_t i = 0; list[i]; i++)
        if (strcmp(s, list[i]) == 0)
            return true;
    return false;
}

static bool batch_edge_ok(const char *from, const char *to)
{
    if (strcmp(from, to) == 0)
        return !str_in(from, batch_final);
    for (size_t i = 0; i < ING_ARRAY_LEN(batch_edges); i++)
        if (strcmp(batch_edges[i].from, from) == 0 && strcmp(batch_edges[i].to, to) == 0)
            return true;
    return false;
}

/* End a transaction: commit when everything before succeeded, else roll back. */
static int tx_end(struct store *st, int rc, struct ing_err *err)
{
    if (rc == 0) {
        rc = store_tx_commit(st, err);
        if (rc == 0)
            return 0;
    }
    store_tx_rollback(st);
    return rc;
}

static int check_id(const char *id, const char *what, struct ing_err *err)
{
    if (!id || !id_is_safe(id)) {
        ing_err_field(err, what);
        return ing_err_set(err, ING_EINVAL, "%s is not a valid id", what);
    }
    return 0;
}

static const char *actor_org(const struct cat_actor *who)
{
    return who && who->ims_org ? who->ims_org : "";
}

static const char *actor_client(const struct cat_actor *who)
{
    return who && who->client ? who->client : "ingot";
}

static const char *actor_user(const struct cat_actor *who)
{
    if (who && who->user)
        return who->user;
    return actor_client(who);
}

int catalog_new(struct catalog **out, struct store *st, struct registry *reg, struct ing_err *err)
{
    if (!out || !st)
        return ing_err_set(err, ING_EINVAL, "catalog_new needs a store");
    struct catalog *cat = xcalloc(1, sizeof(*cat));
    cat->st = st;
    cat->reg = reg;
    *out = cat;
    return 0;
}

void catalog_free(struct catalog *cat)
{
    free(cat);
}

struct store *catalog_store(const struct catalog *cat)
{
    return cat->st;
}

/* ---- datasets ------------------------------------------------------------------------------ */

/* A new object holding copies of the client-settable fields of `src`. */
static json_t *ds_pick_user_fields(const json_t *src)
{
    json_t *out = json_object();
    for (size_t i = 0; ds_user_fields[i]; i++) {
        const json_t *v = json_object_get(src, ds_user_fields[i]);
        if (v && !json_is_null(v))
            json_object_set_new(out, ds_user_fields[i], json_deep_copy(v));
    }
    return out;
}

static int field_error(struct ing_err *err, int code, const char *field, const char *msg)
{
    ing_err_field(err, field);
    return ing_err_set(err, code, "%s", msg);
}

/* Check the client fields of a dataset (normalising schemaRef.contentType) and, unless the schema
 * is the one the dataset already had, that schemaRef.id names a schema of the sandbox. */
static int ds_validate(struct catalog *cat, const char *sandbox, json_t *fields,
                       const char *old_schema_id, struct ing_err *err)
{
    const json_t *v;
    v = json_object_get(fields, "name");
    if (v && (!json_is_string(v) || json_string_length(v) == 0))
        return field_error(err, ING_EINVAL, "name", "name must be a non-empty string");
    v = json_object_get(fields, "description");
    if (v && !json_is_string(v))
        return field_error(err, ING_EINVAL, "description", "description must be a string");
    v = json_object_get(fields, "enableErrorDiagnostics");
    if (v && !json_is_boolean(v))
        return field_error(err, ING_EINVAL, "enableErrorDiagnostics",
                           "enableErrorDiagnostics must be a boolean");
    v = json_object_get(fields, "fileDescription");
    if (v && !json_is_object(v))
        return field_error(err, ING_EINVAL, "fileDescription", "fileDescription must be an object");
    v = json_object_get(fields, "dataSourceId");
    if (v && !json_is_string(v) && !json_is_integer(v))
        return field_error(err, ING_EINVAL, "dataSourceId", "dataSourceId must be a string");

    json_t *tags = json_object_get(fields, "tags");
    if (!tags) {
        json_object_set_new(fields, "tags", json_object());
    } else if (!json_is_object(tags)) {
        return field_error(err, ING_EINVAL, "tags", "tags must be an object of string arrays");
    } else {
        const char *name;
        json_t *vals;
        json_object_foreach(tags, name, vals) {
            bool ok = json_is_array(vals);
            for (size_t i = 0; ok && i < json_array_size(vals); i++)
                ok = json_is_string(json_array_get(vals, i));
            if (!ok) {
                char field[ING_ERR_PATH];
                snprintf(field, sizeof(field), "tags.%s", name);
                return field_error(err, ING_EINVAL, field,
                                   "each tag must be an array of strings, e.g. [\"enabled:true\"]");
            }
        }
    }

    json_t *ref = json_object_get(fields, "schemaRef");
    if (!ref)
        return field_error(err, ING_EREQUIRED, "schemaRef",
                           "schemaRef is required: {\"id\": <schema $id>, \"contentType\": ...}");
    if (!json_is_object(ref))
        return field_error(err, ING_EINVAL, "schemaRef", "schemaRef must be an object");
    const char *schema_id = json_string_value(json_object_get(ref, "id"));
    if (!schema_id || !schema_id[0])
        return field_error(err, ING_EREQUIRED, "schemaRef.id", "schemaRef.id is required");
    const json_t *ct = json_object_get(ref, "contentType");
    if (ct && !json_is_string(ct))
        return field_error(err, ING_EINVAL, "schemaRef.contentType",
                           "schemaRef.contentType must be a string");
    if (!ct)
        json_object_set_new(ref, "contentType", json_string(CAT_DEFAULT_CONTENT_TYPE));

    if (cat->reg && !(old_schema_id && strcmp(old_schema_id, schema_id) == 0)) {
        json_t *full = NULL;
        struct ing_err rerr;
        ing_err_clear(&rerr);
        int rc = registry_resolve(cat->reg, sandbox, schema_id, &full, &rerr);
        json_decref(full);
        if (rc == ING_ENOTFOUND || rc == ING_EINVAL) {
            ing_err_field(err, "schemaRef.id");
            return ing_err_set(err, ING_EINVAL, "schemaRef.id '%s' is not a schema of sandbox '%s'",
                               schema_id, sandbox);
        }
        if (rc < 0) {
            ing_err_field(err, "schemaRef.id");
            return ing_err_set(err, rc, "cannot resolve schema '%s': %s", schema_id, rerr.msg);
        }
    }
    return 0;
}

int catalog_dataset_create(struct catalog *cat, const char *sandbox, const struct cat_actor *who,
                           const json_t *body, char **id_out, struct ing_err *err)
{
    json_t *doc = NULL;
    int rc;
    if (!json_is_object(body)) {
        rc = ing_err_set(err, ING_EINVAL, "the dataset request must be a JSON object");
        goto out;
    }
    doc = ds_pick_user_fields(body);
    rc = ds_validate(cat, sandbox, doc, NULL, err);
    if (rc < 0)
        goto out;

    char id[ID_HEX_LEN + 1];
    id_hex(id);
    int64_t now = clock_now_ms();
    char *files = xasprintf("@/dataSetFiles?dataSetId=%s", id);
    json_object_set_new(doc, "imsOrg", json_string(actor_org(who)));
    json_object_set_new(doc, "created", json_integer(now));
    json_object_set_new(doc, "updated", json_integer(now));
    json_object_set_new(doc, "createdClient", json_string(actor_client(who)));
    json_object_set_new(doc, "createdUser", json_string(actor_user(who)));
    json_object_set_new(doc, "updatedUser", json_string(actor_user(who)));
    json_object_set_new(doc, "version", json_string(CAT_VERSION));
    json_object_set_new(doc, "files", json_string(files));
    free(files);

    rc = store_insert(cat->st, sandbox, CAT_KIND_DATASET, id, doc, err);
    if (rc < 0)
        goto out;
    if (id_out)
        *id_out = xstrdup(id);
out:
    json_decref(doc);
    return rc;
}

/* The documents of `kind` whose `property` equals `value`, keyed by id. */
static int list_where(struct catalog *cat, const char *sandbox, const char *kind,
                      const char *property, const char *value, json_t **out, struct ing_err *err)
{
    struct store_filter f = {.property = property, .op = STORE_EQ, .value = value};
    struct store_query q = {.filters = &f, .nfilters = 1};
    return store_list(cat->st, sandbox, kind, &q, out, err);
}

/* One document by id, checked first; a missing one is named as `what` ("dataset", "batch"). */
static int get_checked(struct catalog *cat, const char *sandbox, const char *kind, const char *id,
                       const char *id_field, const char *what, json_t **out, struct ing_err *err)
{
    int rc = check_id(id, id_field, err);
    if (rc < 0)
        return rc;
    rc = store_get(cat->st, sandbox, kind, id, out, err);
    if (rc == ING_ENOTFOUND)
        return ing_err_set(err, ING_ENOTFOUND, "%s '%s' was not found", what, id);
    return rc;
}

int catalog_dataset_get(struct catalog *cat, const char *sandbox, const char *id, json_t **out,
                        struct ing_err *err)
{
    return get_checked(cat, sandbox, CAT_KIND_DATASET, id, "dataSetId", "dataset", out, err);
}

int catalog_dataset_update(struct catalog *cat, const char *sandbox, const struct cat_actor *who,
                           const char *id, enum cat_update how, const json_t *body,
                           struct ing_err *err)
{
    json_t *old = NULL, *fields = NULL, *work = NULL, *doc = NULL;
    bool in_tx = false;
    int rc = check_id(id, "dataSetId", err);
    if (rc < 0)
        goto out;
    rc = store_tx_begin(cat->st, err);
    if (rc < 0)
        goto out;
    in_tx = true;
    rc = catalog_dataset_get(cat, sandbox, id, &old, err);
    if (rc < 0)
        goto out;

    switch (how) {
    case CAT_UPDATE_MERGE: {
        if (!json_is_object(body)) {
            rc = ing_err_set(err, ING_EINVAL, "a merge PATCH body must be a JSON object");
            goto out;
        }
        fields = ds_pick_user_fields(old);
        for (size_t i = 0; ds_user_fields[i]; i++) {
            const json_t *v = json_object_get(body, ds_user_fields[i]);
            if (!v)
                continue;
            if (json_is_null(v))
                json_object_del(fields, ds_user_fields[i]);
            else
                json_object_set_new(fields, ds_user_fields[i], json_deep_copy(v));
        }
        break;
    }
    case CAT_UPDATE_JSON_PATCH:
        /* On a copy: a failing operation leaves the others half applied. */
        work = json_deep_copy(old);
        rc = registry_json_patch(work, body, err);
        if (rc < 0)
            goto out;
        fields = ds_pick_user_fields(work);
        break;
    case CAT_UPDATE_REPLACE:
        if (!json_is_object(body)) {
            rc = ing_err_set(err, ING_EINVAL, "the dataset request must be a JSON object");
            goto out;
        }
        fields = ds_pick_user_fields(body);
        break;
    default:
        rc = ing_err_set(err, ING_EINVAL, "unknown dataset update mode %d", (int)how);
        goto out;
    }

    const char *old_schema =
        json_string_value(json_object_get(json_object_get(old, "schemaRef"), "id"));
    rc = ds_validate(cat, sandbox, fields, old_schema, err);
    if (rc < 0)
        goto out;

    /* Keep the stored key order: catalog-owned fields stay, client fields take their new value. */
    doc = json_object();
    const char *key;
    json_t *val;
    json_object_foreach(old, key, val) {
        if (!str_in(key, ds_user_fields))
            json_object_set(doc, key, val);
        else if (json_object_get(fields, key))
            json_object_set(doc, key, json_object_get(fields, key));
    }
    json_object_foreach(fields, key, val) {
        if (!json_object_get(doc, key))
            json_object_set(doc, key, val);
    }
    json_object_set_new(doc, "updated", json_integer(clock_now_ms()));
    json_object_set_new(doc, "updatedUser", json_string(actor_user(who)));
    rc = store_update(cat->st, sandbox, CAT_KIND_DATASET, id, doc, err);
out:
    if (in_tx)
        rc = tx_end(cat->st, rc, err);
    json_decref(old);
    json_decref(fields);
    json_decref(work);
    json_decref(doc);
    return rc;
}

int catalog_dataset_delete(struct catalog *cat, const char *sandbox, const char *id,
                           struct ing_err *err)
{
    json_t *files = NULL;
    bool in_tx = false;
    int rc = check_id(id, "dataSetId", err);
    if (rc < 0)
        goto out;
    rc = store_tx_begin(cat->st, err);
    if (rc < 0)
        goto out;
    in_tx = true;
    rc = store_delete(cat->st, sandbox, CAT_KIND_DATASET, id, err);
    if (rc == ING_ENOTFOUND)
        rc = ing_err_set(err, ING_ENOTFOUND, "dataset '%s' was not found", id);
    if (rc < 0)
        goto out;
    /* The dataset's files go with it, so readers no longer see its data. */
    rc = list_where(cat, sandbox, CAT_KIND_FILE, "dataSetId", id, &files, err);
    if (rc < 0)
        goto out;
    const char *fid;
    json_t *fdoc;
    json_object_foreach(files, fid, fdoc) {
        rc = store_delete(cat->st, sandbox, CAT_KIND_FILE, fid, err);
        if (rc < 0)
            goto out;
    }
out:
    if (in_tx)
        rc = tx_end(cat->st, rc, err);
    json_decref(files);
    return rc;
}

/* ---- batches ------------------------------------------------------------------------------- */

static int batch_input_format(const json_t *body, json_t **out, struct ing_err *err)
{
    const json_t *in = json_object_get(body, "inputFormat");
    json_t *fmt = NULL;
    if (in && !json_is_null(in) && !json_is_object(in)) {
        ing_err_field(err, "inputFormat");
        return ing_err_set(err, ING_EINVAL, "inputFormat must be an object");
    }
    fmt = in && json_is_object(in) ? json_deep_copy(in) : json_object();
    const json_t *f = json_object_get(fmt, "format");
    const char *name = "json";
    if (f) {
        static const char *const known[] = {"json", "parquet", "csv"};
        name = NULL;
        for (size_t i = 0; json_is_string(f) && i < ING_ARRAY_LEN(known); i++)
            if (strcasecmp(json_string_value(f), known[i]) == 0)
                name = known[i];
        if (!name) {
            json_decref(fmt);
            ing_err_field(err, "inputFormat.format");
            return ing_err_set(err, ING_EINVAL,
                               "inputFormat.format must be one of json, parquet, csv");
        }
    }
    json_object_set_new(fmt, "format", json_string(name));
    const json_t *ml = json_object_get(fmt, "isMultiLineJson");
    if (ml && !json_is_boolean(ml)) {
        json_decref(fmt);
        ing_err_field(err, "inputFormat.isMultiLineJson");
        return ing_err_set(err, ING_EINVAL, "inputFormat.isMultiLineJson must be a boolean");
    }
    if (!ml && strcmp(name, "json") == 0)
        json_object_set_new(fmt, "isMultiLineJson", json_false());
    *out = fmt;
    return 0;
}

static int batch_insert_checked(struct catalog *cat, const char *sandbox, const char *id,
                                json_t *doc, struct ing_err *err);

int catalog_batch_create(struct catalog *cat, const char *sandbox, const struct cat_actor *who,
                         const json_t *body, char **id_out, struct ing_err *err)
{
    json_t *doc = NULL, *ds = NULL, *fmt = NULL;
    int rc;
    if (!json_is_object(body)) {
        rc = ing_err_set(err, ING_EINVAL, "the batch request must be a JSON object");
        goto out;
    }
    const json_t *dsv = json_object_get(body, "datasetId");
    const char *ds_id = json_string_value(dsv);
    if (!dsv || json_is_null(dsv)) {
        rc = field_error(err, ING_EREQUIRED, "datasetId", "datasetId is required");
        goto out;
    }
    if (!ds_id || !id_is_safe(ds_id)) {
        rc = field_error(err, ING_EINVAL, "datasetId", "datasetId must be a dataset id string");
        goto out;
    }
    rc = store_get(cat->st, sandbox, CAT_KIND_DATASET, ds_id, &ds, err);
    if (rc == ING_ENOTFOUND) {
        ing_err_field(err, "datasetId");
        rc = ing_err_set(err, ING_EINVAL, "dataset '%s' does not exist in sandbox '%s'", ds_id,
                         sandbox);
    }
    if (rc < 0)
        goto out;
    rc = batch_input_format(body, &fmt, err);
    if (rc < 0)
        goto out;

    const json_t *ext = json_object_get(body, "externalId");
    if (ext && !json_is_null(ext) && (!json_is_string(ext) || json_string_length(ext) == 0)) {
        rc = field_error(err, ING_EINVAL, "externalId", "externalId must be a non-empty string");
        goto out;
    }
    const json_t *tags = json_object_get(body, "tags");
    if (tags && !json_is_null(tags) && !json_is_object(tags)) {
        rc = field_error(err, ING_EINVAL, "tags", "tags must be an object");
        goto out;
    }
    const json_t *diag = json_object_get(body, "enableErrorDiagnostics");
    if (diag && !json_is_boolean(diag)) {
        rc = field_error(err, ING_EINVAL, "enableErrorDiagnostics",
                         "enableErrorDiagnostics must be a boolean");
        goto out;
    }
    /* partialIngestionPercentage is the name older versions of AEP's docs use. */
    const char *pct_name = "partialIngestionPercent";
    const json_t *pct = json_object_get(body, pct_name);
    if (!pct || json_is_null(pct)) {
        pct_name = "partialIngestionPercentage";
        pct = json_object_get(body, pct_name);
    }
    if (json_is_null(pct))
        pct = NULL;
    if (pct && (!json_is_number(pct) || json_number_value(pct) < 0 ||
                json_number_value(pct) > 100)) {
        rc = field_error(err, ING_EINVAL, pct_name,
                         strcmp(pct_name, "partialIngestionPercent") == 0
                             ? "partialIngestionPercent must be a number from 0 to 100"
                             : "partialIngestionPercentage must be a number from 0 to 100");
        goto out;
    }
    const json_t *replay = json_object_get(body, "replay");
    if (replay && !json_is_null(replay) && !json_is_object(replay)) {
        rc = field_error(err, ING_EINVAL, "replay", "replay must be an object");
        goto out;
    }

    char id[ID_ULID_LEN + 1];
    id_ulid(id);
    int64_t now = clock_now_ms();
    doc = json_object();
    json_object_set_new(doc, "id", json_string(id));
    json_object_set_new(doc, "imsOrg", json_string(actor_org(who)));
    json_object_set_new(doc, "status", json_string("loading"));
    json_object_set_new(doc, "created", json_integer(now));
    json_object_set_new(doc, "updated", json_integer(now));
    json_object_set_new(doc, "createdClient", json_string(actor_client(who)));
    json_object_set_new(doc, "createdUser", json_string(actor_user(who)));
    json_object_set_new(doc, "updatedUser", json_string(actor_user(who)));
    json_object_set_new(doc, "relatedObjects",
                        json_pack("[{s:s, s:s}]", "type", "dataSet", "id", ds_id));
    json_object_set_new(doc, "version", json_string(CAT_VERSION));
    json_object_set_new(doc, "tags", json_is_object(tags) ? json_deep_copy(tags) : json_object());
    json_object_set_new(doc, "externalId", json_string(json_is_string(ext) ? json_string_value(ext)
                                                                           : id));
    json_object_set(doc, "inputFormat", fmt);
    /* The partial ingestion settings also go into the tags, as AEP shows them (EN-DIAG). */
    json_t *doc_tags = json_object_get(doc, "tags");
    if (diag) {
        json_object_set_new(doc, "enableErrorDiagnostics", json_deep_copy(diag));
        json_object_set_new(doc_tags, "acp_enableErrorDiagnostics", json_deep_copy(diag));
    }
    if (pct) {
        json_object_set_new(doc, "partialIngestionPercent", json_deep_copy(pct));
        json_object_set_new(doc_tags, "acp_partialIngestionPercent", json_deep_copy(pct));
    }
    if (json_is_object(replay))
        json_object_set_new(doc, "replay", json_deep_copy(replay));

    rc = batch_insert_checked(cat, sandbox, id, doc, err);
    if (rc < 0)
        goto out;
    if (id_out)
        *id_out = xstrdup(id);
out:
    json_decref(doc);
    json_decref(ds);
    json_decref(fmt);
    return rc;
}

int catalog_batch_get(struct catalog *cat, const char *sandbox, const char *id, json_t **out,
                      struct ing_err *err)
{
    return get_checked(cat, sandbox, CAT_KIND_BATCH, id, "batchId", "batch", out, err);
}

/* Inside a transaction: load a batch and check that its status is one of `from`. */
static int batch_load_in(struct catalog *cat, const char *sandbox, const char *id,
                         const char *const *from, json_t **out, struct ing_err *err)
{
    json_t *doc = NULL;
    int rc = catalog_batch_get(cat, sandbox, id, &doc, err);
    if (rc < 0)
        return rc;
    const char *status = json_string_value(json_object_get(doc, "status"));
    if (!str_in(status, from)) {
        rc = ing_err_set(err, ING_ESTATE, "batch '%s' is %s", id, status ? status : "(no status)");
        json_decref(doc);
        return rc;
    }
    *out = doc;
    return 0;
}

int catalog_batch_transition(struct catalog *cat, const char *sandbox, const char *id,
                             const char *const *from, const char *to, const json_t *patch,
                             struct ing_err *err)
{
    json_t *doc = NULL, *copy = NULL;
    bool in_tx = false;
    int rc = 0;
    if (!str_in(to, batch_statuses)) {
        rc = ing_err_set(err, ING_EINVAL, "'%s' is not a batch status", to ? to : "(null)");
        goto out;
    }
    if (patch && !json_is_object(patch)) {
        rc = ing_err_set(err, ING_EINVAL, "a batch transition patch must be an object");
        goto out;
    }
    rc = store_tx_begin(cat->st, err);
    if (rc < 0)
        goto out;
    in_tx = true;
    rc = batch_load_in(cat, sandbox, id, from, &doc, err);
    if (rc < 0)
        goto out;
    const char *status = json_string_value(json_object_get(doc, "status"));
    if (str_in(status, batch_final)) {
        rc = ing_err_set(err, ING_ESTATE, "batch '%s' is %s, a final status", id, status);
        goto out;
    }
    if (!batch_edge_ok(status, to)) {
        rc = ing_err_set(err, ING_ESTATE, "batch '%s' cannot go from %s to %s", id, status, to);
        goto out;
    }
    if (patch) {
        copy = json_deep_copy(patch);
        json_object_update(doc, copy);
    }
    json_object_set_new(doc, "status", json_string(to));
    json_object_set_new(doc, "updated", json_integer(clock_now_ms()));
    json_object_set_new(doc, "id", json_string(id));
    rc = store_update(cat->st, sandbox, CAT_KIND_BATCH, id, doc, err);
    /* A batch failed by the client or out of retries is an ingestion failure too; the event
     * goes into the outbox in this transaction (notify.h). */
    if (rc == 0 && strcmp(to, "failed") == 0)
        rc = notify_emit(cat->st, sandbox, id, doc, "ing_load_failure", NULL, err);
out:
    if (in_tx)
        rc = tx_end(cat->st, rc, err);
    json_decref(doc);
    json_decref(copy);
    return rc;
}

const char *catalog_batch_dataset_id(const json_t *batch)
{
    const json_t *rel = json_object_get(batch, "relatedObjects");
    for (size_t i = 0; i < json_array_size(rel); i++) {
        const json_t *o = json_array_get(rel, i);
        const char *type = json_string_value(json_object_get(o, "type"));
        if (type && strcmp(type, "dataSet") == 0)
            return json_string_value(json_object_get(o, "id"));
    }
    return json_string_value(json_object_get(batch, "datasetId"));
}

static int file_entry_check(const json_t *f, size_t i, struct ing_err *err)
{
    char field[ING_ERR_PATH];
    snprintf(field, sizeof(field), "files[%zu]", i);
    const char *name = json_string_value(json_object_get(f, "name"));
    const json_t *size = json_object_get(f, "size");
    const json_t *records = json_object_get(f, "records");
    if (!json_is_object(f) || !name || !fs_rel_path_ok(name) || !json_is_integer(size) ||
        json_integer_value(size) < 0 || !json_is_integer(records) ||
        json_integer_value(records) < 0) {
        ing_err_field(err, field);
        return ing_err_set(err, ING_EINVAL,
                           "a batch file needs a relative \"name\" and non-negative \"size\" and "
                           "\"records\"");
    }
    return 0;
}

static int retire_predecessors(struct catalog *cat, const char *sandbox, const json_t *batch,
                               int64_t now, json_t *retired, struct ing_err *err);
static void run_retire_hook(struct catalog *cat, const char *sandbox, const json_t *retired);

int catalog_batch_finish(struct catalog *cat, const char *sandbox, const char *batch_id,
                         const char *status, const json_t *metrics, const json_t *errors,
                         const json_t *files, struct ing_err *err)
{
    static const char *const from[] = {"processing", NULL};
    json_t *doc = NULL, *ds = NULL, *fdoc = NULL, *retired = json_array();
    bool in_tx = false;
    int rc = 0;
    bool success = status && strcmp(status, "success") == 0;
    if (!success && !(status && strcmp(status, "failed") == 0)) {
        rc = ing_err_set(err, ING_EINVAL, "a batch finishes as success or failed, not '%s'",
                         status ? status : "(null)");
        goto out;
    }
    if ((metrics && !json_is_object(metrics)) || (errors && !json_is_array(errors)) ||
        (files && !json_is_array(files))) {
        rc = ing_err_set(err, ING_EINVAL,
                         "batch finish: metrics must be an object, errors and files arrays");
        goto out;
    }
    rc = store_tx_begin(cat->st, err);
    if (rc < 0)
        goto out;
    in_tx = true;
    rc = batch_load_in(cat, sandbox, batch_id, from, &doc, err);
    if (rc < 0)
        goto out;

    int64_t now = clock_now_ms();
    json_object_set_new(doc, "status", json_string(status));
    json_object_set_new(doc, "completed", json_integer(now));
    json_object_set_new(doc, "updated", json_integer(now));
    if (metrics) {
        json_t *m = json_object_get(doc, "metrics");
        if (!json_is_object(m)) {
            m = json_object();
            json_object_set_new(doc, "metrics", m);
        }
        json_t *copy = json_deep_copy(metrics);
        json_object_update(m, copy);
        json_decref(copy);
    }
    if (errors)
        json_object_set_new(doc, "errors", json_deep_copy(errors));
    rc = store_update(cat->st, sandbox, CAT_KIND_BATCH, batch_id, doc, err);
    if (rc < 0)
        goto out;

    const char *ds_id = catalog_batch_dataset_id(doc);
    for (size_t i = 0; success && ds_id && i < json_array_size(files); i++) {
        const json_t *f = json_array_get(files, i);
        /* Checked inside the transaction: a bad entry undoes the whole finish. */
        rc = file_entry_check(f, i, err);
        if (rc < 0)
            goto out;
        char fid[ID_HEX_LEN + 1];
        id_hex(fid);
        fdoc = json_pack("{s:s, s:s, s:O, s:O, s:O, s:b, s:I, s:I, s:s, s:O?, s:O?, s:O?, s:O?}",
                         "dataSetId", ds_id, "batchId", batch_id, "name",
                         json_object_get(f, "name"), "size", json_object_get(f, "size"),
                         "records", json_object_get(f, "records"), "isValid", 1, "created",
                         (json_int_t)now, "updated", (json_int_t)now, "version", CAT_VERSION,
                         "imsOrg", json_object_get(doc, "imsOrg"), "createdClient",
                         json_object_get(doc, "createdClient"), "createdUser",
                         json_object_get(doc, "createdUser"), "updatedUser",
                         json_object_get(doc, "updatedUser"));
        if (!fdoc) {
            rc = ing_err_set(err, ING_EINTERNAL, "cannot build a dataSetFile document");
            goto out;
        }
        rc = store_insert(cat->st, sandbox, CAT_KIND_FILE, fid, fdoc, err);
        json_decref(fdoc);
        fdoc = NULL;
        if (rc < 0)
            goto out;
    }

    /* The dataset may have been deleted while the batch ran; the batch still finishes. */
    if (ds_id) {
        rc = store_get(cat->st, sandbox, CAT_KIND_DATASET, ds_id, &ds, err);
        if (rc == ING_ENOTFOUND) {
            rc = 0;
        } else if (rc == 0) {
            json_object_set_new(ds, "lastBatchId", json_string(batch_id));
            json_object_set_new(ds, "lastBatchStatus", json_string(status));
            json_object_set_new(ds, "updated", json_integer(now));
            rc = store_update(cat->st, sandbox, CAT_KIND_DATASET, ds_id, ds, err);
        }
    }
    /* A replay replaces its predecessors in this same transaction: readers see the old batches
     * or the new one, never both or neither. */
    if (rc == 0 && success)
        rc = retire_predecessors(cat, sandbox, doc, now, retired, err);
    /* The notification is part of the same commit: a crash can delay it, never lose it. */
    if (rc == 0)
        rc = notify_emit(cat->st, sandbox, batch_id, doc,
                         success ? "ing_load_success" : "ing_load_failure", NULL, err);
out:
    if (in_tx)
        rc = tx_end(cat->st, rc, err);
    if (rc == 0)
        run_retire_hook(cat, sandbox, retired);
    json_decref(doc);
    json_decref(ds);
    json_decref(fdoc);
    json_decref(retired);
    return rc;
}

/* ---- dataset files ------------------------------------------------------------------------- */

/* Whether batch `id` is "success", memoised in `seen` (batch id -> true/false). */
static int batch_is_success(struct catalog *cat, const char *sandbox, const char *id,
                            json_t *seen, bool *yes, struct ing_err *err)
{
    const json_t *memo = id ? json_object_get(seen, id) : NULL;
    if (memo) {
        *yes = json_is_true(memo);
        return 0;
    }
    *yes = false;
    if (!id || !id_is_safe(id))
        return 0;
    json_t *b = NULL;
    int rc = store_get(cat->st, sandbox, CAT_KIND_BATCH, id, &b, err);
    if (rc == ING_ENOTFOUND)
        rc = 0;
    if (rc == 0 && b) {
        const char *st = json_string_value(json_object_get(b, "status"));
        *yes = st && strcmp(st, "success") == 0;
    }
    json_decref(b);
    if (rc == 0)
        json_object_set_new(seen, id, json_boolean(*yes));
    return rc;
}

int catalog_file_list(struct catalog *cat, const char *sandbox, const char *batch_id,
                      const char *dataset_id, int64_t start, int64_t limit, json_t **out,
                      struct ing_err *err)
{
    json_t *all = NULL, *seen = NULL, *res = NULL;
    struct store_filter filters[2];
    size_t nf = 0;
    int rc = 0;
    if (batch_id)
        filters[nf++] = (struct store_filter){.property = "batchId", .op = STORE_EQ,
                                              .value = batch_id};
    if (dataset_id)
        filters[nf++] = (struct store_filter){.property = "dataSetId", .op = STORE_EQ,
                                              .value = dataset_id};
    /* Files of one batch share a "created" stamp; their names (part-00000...) order them. */
    static const struct store_order order[] = {{.property = "created", .desc = false},
                                               {.property = "name", .desc = false}};
    struct store_query q = {.filters = filters, .nfilters = nf, .order = order,
                            .norder = ING_ARRAY_LEN(order)};
    rc = store_list(cat->st, sandbox, CAT_KIND_FILE, &q, &all, err);
    if (rc < 0)
        goto out;
    seen = json_object();
    res = json_object();
    int64_t skipped = 0, taken = 0;
    const char *fid;
    json_t *fdoc;
    json_object_foreach(all, fid, fdoc) {
        bool ok;
        rc = batch_is_success(cat, sandbox, json_string_value(json_object_get(fdoc, "batchId")),
                              seen, &ok, err);
        if (rc < 0)
            goto out;
        if (!ok)
            continue;
        if (skipped < start) {
            skipped++;
            continue;
        }
        if (limit > 0 && taken >= limit)
            break;
        json_object_set(res, fid, fdoc);
        taken++;
    }
    *out = res;
    res = NULL;
out:
    json_decref(all);
    json_decref(seen);
    json_decref(res);
    return rc;
}

int catalog_file_get(struct catalog *cat, const char *sandbox, const char *file_id, json_t **out,
                     struct ing_err *err)
{
    json_t *doc = NULL, *seen = NULL;
    int rc = check_id(file_id, "dataSetFileId", err);
    if (rc < 0)
        goto out;
    rc = store_get(cat->st, sandbox, CAT_KIND_FILE, file_id, &doc, err);
    if (rc < 0)
        goto out;
    seen = json_object();
    bool ok;
    rc = batch_is_success(cat, sandbox, json_string_value(json_object_get(doc, "batchId")), seen,
                          &ok, err);
    if (rc < 0)
        goto out;
    if (!ok) {
        rc = ING_ENOTFOUND;
        goto out;
    }
    *out = doc;
    doc = NULL;
out:
    if (rc == ING_ENOTFOUND)
        ing_err_set(err, ING_ENOTFOUND, "dataset file '%s' was not found",
                    file_id ? file_id : "(null)");
    json_decref(doc);
    json_decref(seen);
    return rc;
}

/* ---- lifecycle: externalId, replay, revert, lastBatches ------------------------------------ */

bool catalog_batch_status_ok(const char *status)
{
    return str_in(status, batch_statuses);
}

void catalog_set_retire_hook(struct catalog *cat, cat_retire_fn *fn, void *ctx)
{
    cat->retire_fn = fn;
    cat->retire_ctx = ctx;
}

/* `retired` holds {"dataSetId","id"} objects of batches a committed transaction retired. */
static void run_retire_hook(struct catalog *cat, const char *sandbox, const json_t *retired)
{
    size_t i;
    const json_t *it;
    if (!cat->retire_fn)
        return;
    json_array_foreach(retired, i, it) {
        const char *ds = json_string_value(json_object_get(it, "dataSetId"));
        const char *id = json_string_value(json_object_get(it, "id"));
        if (ds && id)
            cat->retire_fn(cat->retire_ctx, sandbox, ds, id);
    }
}

int catalog_retire_sweep(struct catalog *cat, struct ing_err *err)
{
    struct store_filter f = {.property = "status", .op = STORE_EQ, .value = "inactive"};
    struct store_query q = {.filters = &f, .nfilters = 1};
    json_t *found = NULL;
    if (!cat->retire_fn)
        return 0;
    int rc = store_scan_all(cat->st, CAT_KIND_BATCH, &q, &found, err);
    size_t i;
    json_t *it;
    json_array_foreach(found, i, it) {
        const char *sandbox = json_string_value(json_object_get(it, "sandbox"));
        const char *id = json_string_value(json_object_get(it, "id"));
        const char *ds = catalog_batch_dataset_id(json_object_get(it, "doc"));
        if (sandbox && id && ds)
            cat->retire_fn(cat->retire_ctx, sandbox, ds, id);
    }
    json_decref(found);
    return rc;
}

/* Inside a transaction: `batch` (a loaded "success" document of batch `id`) becomes inactive, its
 * dataSetFiles invalid, and the dataset's lastBatchStatus follows when it names this batch. The
 * batch is added to `retired` for the hook. */
static int batch_make_inactive(struct catalog *cat, const char *sandbox, const char *id,
                               json_t *batch, int64_t now, json_t *retired, struct ing_err *err)
{
    json_t *files = NULL, *ds = NULL;
    const char *ds_id = catalog_batch_dataset_id(batch);
    json_object_set_new(batch, "status", json_string("inactive"));
    json_object_set_new(batch, "updated", json_integer(now));
    int rc = store_update(cat->st, sandbox, CAT_KIND_BATCH, id, batch, err);
    if (rc < 0)
        goto out;
    rc = list_where(cat, sandbox, CAT_KIND_FILE, "batchId", id, &files, err);
    if (rc < 0)
        goto out;
    const char *fid;
    json_t *fdoc;
    json_object_foreach(files, fid, fdoc) {
        json_object_set_new(fdoc, "isValid", json_false());
        json_object_set_new(fdoc, "updated", json_integer(now));
        rc = store_update(cat->st, sandbox, CAT_KIND_FILE, fid, fdoc, err);
        if (rc < 0)
            goto out;
    }
    if (ds_id && id_is_safe(ds_id)) {
        rc = store_get(cat->st, sandbox, CAT_KIND_DATASET, ds_id, &ds, err);
        if (rc == ING_ENOTFOUND) {
            rc = 0;
        } else if (rc == 0) {
            const char *last = json_string_value(json_object_get(ds, "lastBatchId"));
            if (last && strcmp(last, id) == 0) {
                json_object_set_new(ds, "lastBatchStatus", json_string("inactive"));
                json_object_set_new(ds, "updated", json_integer(now));
                rc = store_update(cat->st, sandbox, CAT_KIND_DATASET, ds_id, ds, err);
            }
        }
        if (rc < 0)
            goto out;
        json_array_append_new(retired, json_pack("{s:s, s:s}", "dataSetId", ds_id, "id", id));
    }
out:
    json_decref(files);
    json_decref(ds);
    return rc;
}

static int retire_predecessors(struct catalog *cat, const char *sandbox, const json_t *batch,
                               int64_t now, json_t *retired, struct ing_err *err)
{
    const json_t *preds = json_object_get(json_object_get(batch, "replay"), "predecessors");
    size_t i;
    const json_t *p;
    json_array_foreach(preds, i, p) {
        const char *pid = json_string_value(p);
        json_t *pdoc = NULL;
        if (!pid || !id_is_safe(pid))
            continue;
        int rc = store_get(cat->st, sandbox, CAT_KIND_BATCH, pid, &pdoc, err);
        if (rc == ING_ENOTFOUND)
            continue;
        if (rc < 0)
            return rc;
        /* Only data that is visible is replaced; a failed or aborted predecessor has none. */
        const char *st = json_string_value(json_object_get(pdoc, "status"));
        if (st && strcmp(st, "success") == 0)
            rc = batch_make_inactive(cat, sandbox, pid, pdoc, now, retired, err);
        json_decref(pdoc);
        if (rc < 0)
            return rc;
    }
    return 0;
}

int catalog_batch_revert(struct catalog *cat, const char *sandbox, const char *id,
                         struct ing_err *err)
{
    static const char *const from[] = {"success", NULL};
    json_t *doc = NULL, *retired = json_array();
    bool in_tx = false;
    int rc = store_tx_begin(cat->st, err);
    if (rc < 0)
        goto out;
    in_tx = true;
    rc = batch_load_in(cat, sandbox, id, from, &doc, err);
    if (rc < 0)
        goto out;
    rc = batch_make_inactive(cat, sandbox, id, doc, clock_now_ms(), retired, err);
out:
    if (in_tx)
        rc = tx_end(cat->st, rc, err);
    if (rc == 0)
        run_retire_hook(cat, sandbox, retired);
    json_decref(doc);
    json_decref(retired);
    return rc;
}

/* Add `id` to the array `ids` unless it is there. */
static void add_unique(json_t *ids, const char *id)
{
    size_t i;
    const json_t *v;
    json_array_foreach(ids, i, v) {
        if (strcmp(json_string_value(v), id) == 0)
            return;
    }
    json_array_append_new(ids, json_string(id));
}

/* Inside the create transaction: a replay predecessor must exist, write to the same dataset and be
 * in a final status (a batch still running could land after its replacement). */
static int check_predecessor(struct catalog *cat, const char *sandbox, const char *self_id,
                             const char *ds_id, const json_t *pdoc, const char *pid,
                             const char *field, struct ing_err *err)
{
    static const char *const replaceable[] = {"success", "failed", "aborted", "inactive", NULL};
    (void)cat;
    const char *pds = catalog_batch_dataset_id(pdoc);
    const char *st = json_string_value(json_object_get(pdoc, "status"));
    ing_err_field(err, field);
    if (strcmp(pid, self_id) == 0)
        return ing_err_set(err, ING_EINVAL, "a batch cannot replay itself");
    if (!pds || !ds_id || strcmp(pds, ds_id) != 0)
        return ing_err_set(err, ING_EINVAL,
                           "batch '%s' writes to another dataset; a replay replaces batches of "
                           "its own dataset", pid);
    if (!str_in(st, replaceable))
        return ing_err_set(err, ING_EINVAL,
                           "batch '%s' is %s; a replay can replace only finished batches", pid,
                           st ? st : "(no status)");
    ing_err_field(err, "");
    (void)sandbox;
    return 0;
}

static int replay_resolve(struct catalog *cat, const char *sandbox, const char *self_id,
                          const char *ds_id, json_t *replay, struct ing_err *err)
{
    json_t *ids = json_array(), *found = NULL, *pdoc = NULL;
    int rc = 0;
    char field[ING_ERR_PATH];
    const json_t *preds = json_object_get(replay, "predecessors");
    const json_t *by_ext = json_object_get(replay, "predecessorsByExternalId");
    const json_t *reason = json_object_get(replay, "reason");
    if (reason && !json_is_string(reason)) {
        rc = field_error(err, ING_EINVAL, "replay.reason", "replay.reason must be a string");
        goto out;
    }
    if ((preds && !json_is_array(preds)) || (by_ext && !json_is_array(by_ext))) {
        rc = field_error(err, ING_EINVAL, "replay.predecessors",
                         "replay.predecessors and replay.predecessorsByExternalId must be arrays "
                         "of strings");
        goto out;
    }
    size_t i;
    const json_t *v;
    json_array_foreach(preds, i, v) {
        snprintf(field, sizeof(field), "replay.predecessors[%zu]", i);
        const char *pid = json_string_value(v);
        /* The spec asks client-supplied ids to carry a '$' prefix; both forms are taken. */
        if (pid && pid[0] == '$')
            pid++;
        if (!pid || !id_is_safe(pid)) {
            rc = field_error(err, ING_EINVAL, field, "a predecessor must be a batch id");
            goto out;
        }
        rc = store_get(cat->st, sandbox, CAT_KIND_BATCH, pid, &pdoc, err);
        if (rc == ING_ENOTFOUND) {
            ing_err_field(err, field);
            rc = ing_err_set(err, ING_EINVAL, "batch '%s' does not exist in sandbox '%s'", pid,
                             sandbox);
        }
        if (rc == 0)
            rc = check_predecessor(cat, sandbox, self_id, ds_id, pdoc, pid, field, err);
        json_decref(pdoc);
        pdoc = NULL;
        if (rc < 0)
            goto out;
        add_unique(ids, pid);
    }
    json_array_foreach(by_ext, i, v) {
        snprintf(field, sizeof(field), "replay.predecessorsByExternalId[%zu]", i);
        const char *ext = json_string_value(v);
        if (!ext || !*ext) {
            rc = field_error(err, ING_EINVAL, field, "an external id must be a non-empty string");
            goto out;
        }
        struct store_filter f = {.property = "externalId", .op = STORE_EQ, .value = ext};
        struct store_query q = {.filters = &f, .nfilters = 1, .limit = 2};
        rc = store_list(cat->st, sandbox, CAT_KIND_BATCH, &q, &found, err);
        if (rc < 0)
            goto out;
        if (json_object_size(found) != 1) {
            ing_err_field(err, field);
            rc = ing_err_set(err, ING_EINVAL, "no single batch has externalId '%s'", ext);
            goto out;
        }
        const char *pid = json_object_iter_key(json_object_iter(found));
        rc = check_predecessor(cat, sandbox, self_id, ds_id,
                               json_object_iter_value(json_object_iter(found)), pid, field, err);
        if (rc < 0)
            goto out;
        add_unique(ids, pid);
        json_decref(found);
        found = NULL;
    }
    if (json_array_size(ids) == 0) {
        rc = field_error(err, ING_EINVAL, "replay.predecessors",
                         "a replay needs predecessors (batch ids) or predecessorsByExternalId");
        goto out;
    }
    json_object_set(replay, "predecessors", ids);
out:
    json_decref(ids);
    json_decref(found);
    json_decref(pdoc);
    return rc;
}

/* The insert of catalog_batch_create, in one transaction with its checks against other batches:
 * a unique externalId and a valid replay. */
static int batch_insert_checked(struct catalog *cat, const char *sandbox, const char *id,
                                json_t *doc, struct ing_err *err)
{
    int64_t n = 0;
    int rc = store_tx_begin(cat->st, err);
    if (rc < 0)
        return rc;
    const char *ext = json_string_value(json_object_get(doc, "externalId"));
    if (ext) {
        struct store_filter f = {.property = "externalId", .op = STORE_EQ, .value = ext};
        struct store_query q = {.filters = &f, .nfilters = 1};
        rc = store_count(cat->st, sandbox, CAT_KIND_BATCH, &q, &n, err);
        if (rc == 0 && n > 0)
            rc = field_error(err, ING_EINVAL, "externalId",
                             "externalId is already used by another batch of this sandbox; "
                             "it must be unique");
    }
    json_t *replay = json_object_get(doc, "replay");
    if (rc == 0 && json_is_object(replay))
        rc = replay_resolve(cat, sandbox, id, catalog_batch_dataset_id(doc), replay, err);
    if (rc == 0)
        rc = store_insert(cat->st, sandbox, CAT_KIND_BATCH, id, doc, err);
    return tx_end(cat->st, rc, err);
}

/* The newest batch of a dataset, optionally with a given status: *out NULL when there is none. */
static int newest_batch(struct catalog *cat, const char *sandbox, const char *ds_id,
                        const char *status, json_t **out, struct ing_err *err)
{
    struct store_filter f[2] = {{.property = "relatedObjects.id", .op = STORE_EQ, .value = ds_id},
                                {.property = "status", .op = STORE_EQ, .value = status}};
    static const struct store_order order[] = {{.property = "created", .desc = true},
                                               {.property = "id", .desc = true}};
    struct store_query q = {.filters = f, .nfilters = status ? 2 : 1, .order = order,
                            .norder = ING_ARRAY_LEN(order), .limit = 1};
    json_t *found = NULL;
    *out = NULL;
    int rc = store_list(cat->st, sandbox, CAT_KIND_BATCH, &q, &found, err);
    if (rc == 0 && json_object_size(found) == 1)
        *out = json_incref(json_object_iter_value(json_object_iter(found)));
    json_decref(found);
    return rc;
}

static int last_batches_of(struct catalog *cat, const char *sandbox, const char *ds_id,
                           json_t *res, struct ing_err *err)
{
    json_t *last = NULL, *ok = NULL, *bad = NULL;
    int rc = newest_batch(cat, sandbox, ds_id, NULL, &last, err);
    if (rc == 0 && last)
        rc = newest_batch(cat, sandbox, ds_id, "success", &ok, err);
    if (rc == 0 && last)
        rc = newest_batch(cat, sandbox, ds_id, "failed", &bad, err);
    if (rc == 0 && last) {
        json_t *e = json_object();
        json_object_set(e, "lastBatchId", json_object_get(last, "id"));
        json_object_set(e, "lastBatchStatus", json_object_get(last, "status"));
        if (ok)
            json_object_set(e, "lastSuccessfulBatchId", json_object_get(ok, "id"));
        if (bad)
            json_object_set(e, "lastFailedBatchId", json_object_get(bad, "id"));
        static const char *const copied[] = {"imsOrg", "created", "updated"};
        for (size_t i = 0; i < ING_ARRAY_LEN(copied); i++) {
            json_t *v = json_object_get(last, copied[i]);
            if (v)
                json_object_set(e, copied[i], v);
        }
        json_object_set_new(res, ds_id, e);
    }
    json_decref(last);
    json_decref(ok);
    json_decref(bad);
    return rc;
}

int catalog_last_batches(struct catalog *cat, const char *sandbox, const char *dataset_ids,
                         json_t **out, struct ing_err *err)
{
    json_t *res = json_object(), *all = NULL;
    char *copy = NULL;
    int rc = 0;
    *out = NULL;
    if (dataset_ids) {
        copy = xstrdup(dataset_ids);
        char *save = NULL;
        for (char *tok = strtok_r(copy, ",", &save); tok && rc == 0;
             tok = strtok_r(NULL, ",", &save)) {
            rc = check_id(tok, "dataSetId", err);
            if (rc == 0 && !json_object_get(res, tok))
                rc = last_batches_of(cat, sandbox, tok, res, err);
        }
    } else {
        struct store_query q = {0};
        rc = store_list(cat->st, sandbox, CAT_KIND_DATASET, &q, &all, err);
        const char *ds_id;
        json_t *ds;
        json_object_foreach(all, ds_id, ds) {
            if (rc == 0)
                rc = last_batches_of(cat, sandbox, ds_id, res, err);
        }
    }
    if (rc == 0) {
        *out = res;
        res = NULL;
    }
    free(copy);
    json_decref(all);
    json_decref(res);
    return rc;
}

/* ---- large-file uploads -------------------------------------------------------------------- */

/* The upload document id: the batch id and a 64-bit FNV-1a hash of dataset and path (the path is
 * too long and too free-form to be an id itself; the document keeps the real ones and is checked
 * against them). */
static void upload_doc_id(const char *batch_id, const char *dataset_id, const char *path,
                          char out[ID_ULID_LEN + 64])
{
    uint64_t h = 0xcbf29ce484222325u;
    const char *parts[] = {dataset_id, "/", path};
    for (size_t i = 0; i < ING_ARRAY_LEN(parts); i++)
        for (const unsigned char *p = (const unsigned char *)parts[i]; *p; p++) {
            h ^= *p;
            h *= 0x100000001b3u;
        }
    snprintf(out, ID_ULID_LEN + 64, "%.40s-%016llx", batch_id, (unsigned long long)h);
}

static int upload_args_ok(const char *batch_id, const char *dataset_id, const char *path,
                          struct ing_err *err)
{
    int rc = check_id(batch_id, "batchId", err);
    if (rc == 0)
        rc = check_id(dataset_id, "dataSetId", err);
    if (rc == 0 && (!path || !fs_rel_path_ok(path)))
        rc = field_error(err, ING_EINVAL, "filePath", "the file path is not a safe relative path");
    return rc;
}

/* Inside a transaction: the batch must be loading and write to the dataset. */
static int upload_batch_ok(struct catalog *cat, const char *sandbox, const char *batch_id,
                           const char *dataset_id, struct ing_err *err)
{
    static const char *const from[] = {"loading", NULL};
    json_t *batch = NULL;
    int rc = batch_load_in(cat, sandbox, batch_id, from, &batch, err);
    if (rc == 0) {
        const char *ds = catalog_batch_dataset_id(batch);
        if (!ds || strcmp(ds, dataset_id) != 0)
            rc = ing_err_set(err, ING_EINVAL, "batch '%s' does not write to dataset '%s'",
                             batch_id, dataset_id);
    }
    json_decref(batch);
    return rc;
}

/* Inside a transaction: the upload document, checked to be the one of (dataset, path). */
static int upload_load(struct catalog *cat, const char *sandbox, const char *doc_id,
                       const char *dataset_id, const char *path, json_t **out,
                       struct ing_err *err)
{
    json_t *doc = NULL;
    int rc = store_get(cat->st, sandbox, CAT_KIND_UPLOAD, doc_id, &doc, err);
    if (rc == ING_ENOTFOUND)
        return ing_err_set(err, ING_ENOTFOUND,
                           "the large file '%s' was not initialized (POST ?action=INITIALIZE)",
                           path);
    if (rc < 0)
        return rc;
    const char *ds = json_string_value(json_object_get(doc, "dataSetId"));
    const char *p = json_string_value(json_object_get(doc, "path"));
    if (!ds || !p || strcmp(ds, dataset_id) != 0 || strcmp(p, path) != 0) {
        json_decref(doc);
        return ing_err_set(err, ING_EEXIST, "upload record collision for '%s'", path);
    }
    *out = doc;
    return 0;
}

int catalog_upload_init(struct catalog *cat, const char *sandbox, const char *batch_id,
                        const char *dataset_id, const char *path, struct ing_err *err)
{
    char doc_id[ID_ULID_LEN + 64];
    json_t *doc = NULL, *old = NULL;
    bool in_tx = false;
    int rc = upload_args_ok(batch_id, dataset_id, path, err);
    if (rc < 0)
        goto out;
    upload_doc_id(batch_id, dataset_id, path, doc_id);
    rc = store_tx_begin(cat->st, err);
    if (rc < 0)
        goto out;
    in_tx = true;
    rc = upload_batch_ok(cat, sandbox, batch_id, dataset_id, err);
    if (rc < 0)
        goto out;
    rc = upload_load(cat, sandbox, doc_id, dataset_id, path, &old, err);
    if (rc == ING_ENOTFOUND)
        rc = 0;
    if (rc < 0)
        goto out;
    int64_t now = clock_now_ms();
    doc = json_pack("{s:s, s:s, s:s, s:[], s:I, s:I}", "batchId", batch_id, "dataSetId",
                    dataset_id, "path", path, "chunks", "created", (json_int_t)now, "updated",
                    (json_int_t)now);
    rc = store_put(cat->st, sandbox, CAT_KIND_UPLOAD, doc_id, doc, err);
out:
    if (in_tx)
        rc = tx_end(cat->st, rc, err);
    json_decref(doc);
    json_decref(old);
    return rc;
}

int catalog_upload_get(struct catalog *cat, const char *sandbox, const char *batch_id,
                       const char *dataset_id, const char *path, json_t **out,
                       struct ing_err *err)
{
    char doc_id[ID_ULID_LEN + 64];
    int rc = upload_args_ok(batch_id, dataset_id, path, err);
    if (rc < 0)
        return rc;
    upload_doc_id(batch_id, dataset_id, path, doc_id);
    return upload_load(cat, sandbox, doc_id, dataset_id, path, out, err);
}

int catalog_upload_add_chunk(struct catalog *cat, const char *sandbox, const char *batch_id,
                             const char *dataset_id, const char *path,
                             const struct upl_range *chunk, int64_t total, size_t max_chunks,
                             json_t **out, struct ing_err *err)
{
    char doc_id[ID_ULID_LEN + 64];
    json_t *doc = NULL;
    struct upl_range *have = NULL;
    size_t n = 0;
    bool in_tx = false;
    int rc = upload_args_ok(batch_id, dataset_id, path, err);
    if (rc < 0)
        goto out;
    if (!chunk || chunk->first < 0 || chunk->last < chunk->first) {
        rc = ing_err_set(err, ING_EINVAL, "a chunk needs 0 <= first <= last");
        goto out;
    }
    upload_doc_id(batch_id, dataset_id, path, doc_id);
    rc = store_tx_begin(cat->st, err);
    if (rc < 0)
        goto out;
    in_tx = true;
    rc = upload_batch_ok(cat, sandbox, batch_id, dataset_id, err);
    if (rc == 0)
        rc = upload_load(cat, sandbox, doc_id, dataset_id, path, &doc, err);
    if (rc == 0)
        rc = upl_from_json(json_object_get(doc, "chunks"), &have, &n, err);
    if (rc < 0)
        goto out;
    const json_t *tv = json_object_get(doc, "total");
    int64_t known = json_is_integer(tv) ? json_integer_value(tv) : -1;
    if (total >= 0 && known >= 0 && total != known) {
        rc = ing_err_set(err, ING_EINVAL,
                         "Content-Range gives the file size %lld, an earlier chunk gave %lld",
                         (long long)total, (long long)known);
        goto out;
    }
    if (total < 0)
        total = known;
    for (size_t i = 0; total >= 0 && i < n; i++)
        if (have[i].last >= total) {
            rc = ing_err_set(err, ING_EINVAL, "a chunk received earlier ends past the file size "
                                              "%lld", (long long)total);
            goto out;
        }
    if (total >= 0 && chunk->last >= total) {
        rc = ing_err_set(err, ING_EINVAL, "the chunk ends past the file size %lld",
                         (long long)total);
        goto out;
    }
    bool seen = false;
    for (size_t i = 0; i < n && !seen; i++)
        seen = have[i].first == chunk->first && have[i].last == chunk->last;
    if (!seen) {
        if (max_chunks > 0 && n >= max_chunks) {
            rc = ing_err_set(err, ING_ETOOBIG, "a large file takes at most %zu chunks", max_chunks);
            goto out;
        }
        json_array_append_new(json_object_get(doc, "chunks"),
                              json_pack("[I, I]", (json_int_t)chunk->first,
                                        (json_int_t)chunk->last));
    }
    if (total >= 0)
        json_object_set_new(doc, "total", json_integer(total));
    json_object_set_new(doc, "updated", json_integer(clock_now_ms()));
    rc = store_update(cat->st, sandbox, CAT_KIND_UPLOAD, doc_id, doc, err);
out:
    if (in_tx)
        rc = tx_end(cat->st, rc, err);
    if (rc == 0 && out)
        *out = json_incref(doc);
    free(have);
    json_decref(doc);
    return rc;
}

int catalog_upload_remove(struct catalog *cat, const char *sandbox, const char *batch_id,
                          const char *dataset_id, const char *path, struct ing_err *err)
{
    char doc_id[ID_ULID_LEN + 64];
    int rc = upload_args_ok(batch_id, dataset_id, path, err);
    if (rc < 0)
        return rc;
    upload_doc_id(batch_id, dataset_id, path, doc_id);
    rc = store_delete(cat->st, sandbox, CAT_KIND_UPLOAD, doc_id, err);
    return rc == ING_ENOTFOUND ? 0 : rc;
}

int catalog_upload_list(struct catalog *cat, const char *sandbox, const char *batch_id,
                        json_t **out, struct ing_err *err)
{
    int rc = check_id(batch_id, "batchId", err);
    if (rc < 0)
        return rc;
    return list_where(cat, sandbox, CAT_KIND_UPLOAD, "batchId", batch_id, out, err);
}
