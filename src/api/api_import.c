/*
 * api_import.c - the Batch Ingestion API (/data/foundation/import), front half: create a batch,
 * upload files into it, and signal COMPLETE or ABORT.
 *
 * Uploads arrive spooled to a file by the http layer (HTTP_BODY_FILE); the handler checks the
 * batch and the path and renames the spooled file into the batch's staging folder, so no upload
 * is ever copied or held in memory. COMPLETE queues the batch in the store and nudges the
 * pipeline. Errors use AEP's problem shape with INGEST-* codes.
 */
#include "api/api.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util/fs.h"
#include "util/id.h"
#include "util/log.h"
#include "util/mem.h"

#define IMPORT_BASE "/data/foundation/import"

#define E_BAD_REQUEST "INGEST-1000-400"
#define E_NO_BATCH "INGEST-1001-404"
#define E_BAD_PATH "INGEST-1002-400"
#define E_STATE "INGEST-1003-400"
#define E_WRONG_DATASET "INGEST-1004-400"
#define E_ACTION "INGEST-1005-400"
#define E_INTERNAL "INGEST-1006-500"

/*
 * Uploads hold this lock shared while they check that the batch is "loading" and move the file
 * into staging; COMPLETE and ABORT hold it exclusively while they change the status. So once a
 * batch has left "loading", no upload that saw it loading is still landing files the pipeline
 * would miss (or read half-way).
 */
static pthread_rwlock_t staging_lock = PTHREAD_RWLOCK_INITIALIZER;

static void import_fail(struct http_resp *resp, int rc, const struct ing_err *err)
{
    int status = api_status_for(rc);
    const char *detail = err && err->msg[0] ? err->msg : ing_strerror(rc);
    if (status == 404) {
        http_resp_error(resp, 404, E_NO_BATCH, "Not Found", detail);
    } else if (status == 400) {
        http_resp_error(resp, 400, rc == ING_ESTATE ? E_STATE : E_BAD_REQUEST, "Bad Request",
                        detail);
    } else {
        log_error("import request failed: %s (%s)", detail, ing_strerror(rc));
        http_resp_error(resp, status >= 500 ? status : 500, E_INTERNAL, "Internal Server Error",
                        detail);
    }
}

static void batch_not_found(struct http_resp *resp, const char *id)
{
    char detail[200];
    snprintf(detail, sizeof(detail), "Batch '%s' was not found.", id_is_safe(id) ? id : "?");
    http_resp_error(resp, 404, E_NO_BATCH, "Not Found", detail);
}

static const char *batch_status(const json_t *batch)
{
    const char *s = json_string_value(json_object_get(batch, "status"));
    return s ? s : "unknown";
}

/* Whether the batch's relatedObjects name this dataset. */
static bool batch_has_dataset(const json_t *batch, const char *dataset_id)
{
    const json_t *rel = json_object_get(batch, "relatedObjects");
    for (size_t i = 0; i < json_array_size(rel); i++) {
        const json_t *o = json_array_get(rel, i);
        const char *type = json_string_value(json_object_get(o, "type"));
        const char *id = json_string_value(json_object_get(o, "id"));
        if (type && id && !strcmp(type, "dataSet") && !strcmp(id, dataset_id))
            return true;
    }
    return false;
}

/* ---- POST /batches ------------------------------------------------------------------------- */

static void h_batch_create(void *ctx, struct http_req *req, struct http_resp *resp)
{
    struct app *app = ctx;
    struct ing_err err;
    struct cat_actor who;
    char *id = NULL;
    json_t *doc = NULL;
    ing_err_clear(&err);
    json_t *body = api_parse_body(req, resp, E_BAD_REQUEST);
    if (!body)
        return;
    api_actor(app, req, &who);
    int rc = catalog_batch_create(app->catalog, req->sandbox, &who, body, &id, &err);
    if (rc == 0)
        rc = catalog_batch_get(app->catalog, req->sandbox, id, &doc, &err);
    if (rc < 0) {
        import_fail(resp, rc, &err);
        goto out;
    }
    http_resp_json(resp, 201, doc);
out:
    free(id);
    json_decref(doc);
    json_decref(body);
}

/* ---- PUT /batches/{batchId}/datasets/{datasetId}/files/{*filePath} ------------------------- */

/* fsync every directory from `dir` up to (not including) `root`, so that folders mkdir -p just
 * made survive a crash along with the file in them. */
static int fsync_dirs_up(const char *dir, const char *root, struct ing_err *err)
{
    char *path = xstrdup(dir);
    size_t root_len = strlen(root);
    int rc = 0;
    while (rc == 0 && strlen(path) > root_len) {
        rc = fs_fsync_path(path, err);
        char *slash = strrchr(path, '/');
        if (!slash || slash == path)
            break;
        *slash = '\0';
    }
    free(path);
    return rc;
}

static void h_file_put(void *ctx, struct http_req *req, struct http_resp *resp)
{
    struct app *app = ctx;
    struct ing_err err;
    json_t *batch = NULL;
    char *staging = NULL, *dest = NULL, *parent = NULL;
    bool locked = false;
    int rc;
    ing_err_clear(&err);
    if (req->nparams != 3) {
        http_resp_error(resp, 404, E_NO_BATCH, "Not Found", "No such upload path.");
        goto out;
    }
    const char *batch_id = req->params[0], *dataset_id = req->params[1];
    const char *file_path = req->params[2];
    if (!id_is_safe(batch_id)) {
        batch_not_found(resp, batch_id);
        goto out;
    }
    if (!id_is_safe(dataset_id)) {
        http_resp_error(resp, 400, E_WRONG_DATASET, "Bad Request",
                        "The dataset id in the path is not a valid id.");
        goto out;
    }
    if (!file_path || !fs_rel_path_ok(file_path)) {
        http_resp_error(resp, 400, E_BAD_PATH, "Bad Request",
                        "The file path must be relative, without '.' or '..' segments, empty "
                        "segments or backslashes, at most 1024 bytes.");
        goto out;
    }
    if (!req->body_path) {
        http_resp_error(resp, 500, E_INTERNAL, "Internal Server Error",
                        "The upload was not spooled.");
        goto out;
    }
    /* Make the bytes durable before taking the lock: a large fsync must not hold up COMPLETE. */
    rc = fs_fsync_path(req->body_path, &err);
    if (rc < 0) {
        import_fail(resp, rc, &err);
        goto out;
    }

    pthread_rwlock_rdlock(&staging_lock);
    locked = true;
    rc = catalog_batch_get(app->catalog, req->sandbox, batch_id, &batch, &err);
    if (rc == ING_ENOTFOUND) {
        batch_not_found(resp, batch_id);
        goto out;
    }
    if (rc < 0) {
        import_fail(resp, rc, &err);
        goto out;
    }
    if (strcmp(batch_status(batch), "loading") != 0) {
        char detail[200];
        snprintf(detail, sizeof(detail),
                 "Batch '%s' is %s; files can be uploaded only while it is loading.", batch_id,
                 batch_status(batch));
        http_resp_error(resp, 400, E_STATE, "Bad Request", detail);
        goto out;
    }
    if (!batch_has_dataset(batch, dataset_id)) {
        char detail[200];
        snprintf(detail, sizeof(detail), "Batch '%s' does not write to dataset '%s'.", batch_id,
                 dataset_id);
        http_resp_error(resp, 400, E_WRONG_DATASET, "Bad Request", detail);
        goto out;
    }

    staging = lake_staging_dir(app->lake, req->sandbox, batch_id, dataset_id);
    dest = xasprintf("%s/%s", staging, file_path);
    parent = xstrdup(dest);
    *strrchr(parent, '/') = '\0'; /* dest always has a '/' after the staging folder */
    rc = fs_mkdirs(parent, &err);
    if (rc == 0)
        rc = fs_rename_durable(req->body_path, dest, &err);
    if (rc == 0)
        rc = fsync_dirs_up(parent, lake_data_dir(app->lake), &err);
    if (rc < 0) {
        /* A path that runs into an earlier upload (file "a", then "a/b") is the client's fault. */
        int e = err.sys_errno;
        if (e == EISDIR || e == ENOTDIR || e == EEXIST || e == ENOTEMPTY) {
            http_resp_error(resp, 400, E_BAD_PATH, "Bad Request",
                            "The file path conflicts with a file or folder uploaded earlier.");
        } else {
            import_fail(resp, rc, &err);
        }
        goto out;
    }
    /* AEP answers 200 with an empty body for both a new file and a replaced one. */
    resp->status = 200;
out:
    if (locked)
        pthread_rwlock_unlock(&staging_lock);
    json_decref(batch);
    free(staging);
    free(dest);
    free(parent);
}

/* ---- POST /batches/{batchId}?action=COMPLETE|ABORT ----------------------------------------- */

static void refuse_state(struct http_resp *resp, const char *id, const char *status,
                         const char *verb)
{
    char detail[200];
    snprintf(detail, sizeof(detail), "Batch '%s' is %s; it cannot be %s.", id, status, verb);
    http_resp_error(resp, 400, E_STATE, "Bad Request", detail);
}

static void batch_complete(struct app *app, struct http_req *req, struct http_resp *resp,
                           const char *id)
{
    static const char *const from[] = {"loading", NULL};
    struct ing_err err;
    json_t *batch = NULL;
    ing_err_clear(&err);
    pthread_rwlock_wrlock(&staging_lock);
    int rc = catalog_batch_transition(app->catalog, req->sandbox, id, from, "queued", NULL, &err);
    pthread_rwlock_unlock(&staging_lock);
    bool nudge = rc == 0;
    if (rc == ING_ESTATE) {
        /* COMPLETE is safe to retry (AEP promises it): a batch already on its way is fine. */
        ing_err_clear(&err);
        rc = catalog_batch_get(app->catalog, req->sandbox, id, &batch, &err);
        if (rc == 0) {
            const char *st = batch_status(batch);
            if (!strcmp(st, "queued"))
                nudge = true;
            else if (strcmp(st, "processing") && strcmp(st, "success")) {
                refuse_state(resp, id, st, "completed");
                goto out;
            }
        }
    }
    if (rc == ING_ENOTFOUND) {
        batch_not_found(resp, id);
        goto out;
    }
    if (rc < 0) {
        import_fail(resp, rc, &err);
        goto out;
    }
    if (nudge && app->pipeline)
        pipeline_enqueue(app->pipeline, req->sandbox, id);
    resp->status = 200;
out:
    json_decref(batch);
}

static void batch_abort(struct app *app, struct http_req *req, struct http_resp *resp,
                        const char *id)
{
    /* A batch being processed runs to its end (the worker promotes or removes its output), so
     * ABORT is refused there, as it is once the batch is final. */
    static const char *const from[] = {"loading", "queued", NULL};
    struct ing_err err;
    json_t *batch = NULL;
    ing_err_clear(&err);
    pthread_rwlock_wrlock(&staging_lock);
    int rc = catalog_batch_transition(app->catalog, req->sandbox, id, from, "aborted", NULL, &err);
    pthread_rwlock_unlock(&staging_lock);
    if (rc == ING_ESTATE) {
        ing_err_clear(&err);
        rc = catalog_batch_get(app->catalog, req->sandbox, id, &batch, &err);
        if (rc == 0) {
            refuse_state(resp, id, batch_status(batch), "aborted");
            goto out;
        }
    }
    if (rc == ING_ENOTFOUND) {
        batch_not_found(resp, id);
        goto out;
    }
    if (rc < 0) {
        import_fail(resp, rc, &err);
        goto out;
    }
    /* The staged uploads are of no further use; losing them to a crash here is harmless. */
    rc = catalog_batch_get(app->catalog, req->sandbox, id, &batch, &err);
    const json_t *rel = json_object_get(batch, "relatedObjects");
    for (size_t i = 0; rc == 0 && app->lake && i < json_array_size(rel); i++) {
        const char *ds = json_string_value(json_object_get(json_array_get(rel, i), "id"));
        struct ing_err derr;
        ing_err_clear(&derr);
        if (ds && id_is_safe(ds) &&
            lake_discard_output(app->lake, req->sandbox, ds, id, &derr) < 0)
            log_warn("batch %s aborted but its staged files remain: %s", id, derr.msg);
    }
    resp->status = 200;
out:
    json_decref(batch);
}

static void h_batch_action(void *ctx, struct http_req *req, struct http_resp *resp)
{
    struct app *app = ctx;
    const char *id = req->nparams >= 1 ? req->params[0] : NULL;
    const char *action = http_req_query(req, "action");
    if (!id || !id_is_safe(id)) {
        batch_not_found(resp, id ? id : "");
        return;
    }
    if (!action || !*action) {
        http_resp_error(resp, 400, E_ACTION, "Bad Request",
                        "The query parameter action is required (COMPLETE or ABORT).");
        return;
    }
    if (!strcasecmp(action, "COMPLETE")) {
        batch_complete(app, req, resp, id);
    } else if (!strcasecmp(action, "ABORT")) {
        batch_abort(app, req, resp, id);
    } else if (!strcasecmp(action, "FAIL") || !strcasecmp(action, "REVERT")) {
        http_resp_error(resp, 400, E_ACTION, "Bad Request",
                        "The batch actions FAIL and REVERT are not yet supported.");
    } else {
        http_resp_error(resp, 400, E_ACTION, "Bad Request",
                        "Unknown batch action; use COMPLETE or ABORT.");
    }
}

static const struct http_route routes[] = {
    {HTTP_POST, IMPORT_BASE "/batches", h_batch_create, HTTP_BODY_JSON},
    {HTTP_PUT, IMPORT_BASE "/batches/{batchId}/datasets/{datasetId}/files/{*filePath}", h_file_put,
     HTTP_BODY_FILE},
    {HTTP_POST, IMPORT_BASE "/batches/{batchId}", h_batch_action, HTTP_BODY_NONE},
};

const struct api_routes api_import_routes = {routes, ING_ARRAY_LEN(routes)};
