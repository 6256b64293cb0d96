/*
 * api_import.c - the Batch Ingestion API (/data/foundation/import), front half: create a batch,
 * upload files into it (small files whole, large files in chunks), and signal COMPLETE, ABORT,
 * FAIL or REVERT.
 *
 * Uploads arrive spooled to a file by the http layer (HTTP_BODY_FILE); a small file is renamed
 * into the batch's staging folder, so it is never copied or held in memory. A large file is
 * INITIALIZEd (an upload record in the catalog and an empty part file under the lake's uploads
 * folder), its chunks (PATCH with Content-Range, any order) are written straight into the part
 * file at their offset while they arrive (a chunk sink, lake/upload.h) and fsynced before their
 * range is recorded; a chunk that cannot take that way (its range overlaps one recorded or in
 * flight) is spooled and then placed (at offset 0 by rename, else by copy). COMPLETE checks the
 * ranges (no gap, no overlap) and renames the part file into staging. COMPLETE of the batch
 * queues it in the store and nudges the pipeline. Errors use AEP's problem shape with INGEST-*
 * codes.
 *
 * Processing that overlaps the upload: the first chunk sink of a fresh large-file upload starts a
 * watch of the file's received prefix (lake/upload.h) and a speculative engine run over it
 * (pipeline_speculate), as does a PUT of 1 MiB or more once it lands (its watch sealed at once).
 * Acknowledged sinks keep it valid; file COMPLETE seals it with the final size; INITIALIZE, a
 * spooled chunk (placed by rename or copy over bytes a reader may have read), a new PUT of the
 * same path, ABORT and FAIL cancel it. The batch's COMPLETE is unchanged: the worker adopts the
 * run only when the watch was sealed and never cancelled.
 */
#include "api/api.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "lake/upload.h"
#include "util/clock.h"
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
#define E_TOO_LARGE "INGEST-1007-413"   /* file, chunk or batch larger than the limits */
#define E_TOO_MANY "INGEST-1008-400"    /* more files in the batch than allowed */
#define E_RANGE "INGEST-1009-400"       /* Content-Range missing, malformed or not the body */
#define E_INCOMPLETE "INGEST-1010-400"  /* gaps or overlaps; a large file not completed */
#define E_NO_UPLOAD "INGEST-1011-404"   /* a large-file call before INITIALIZE */
#define E_CLIENT_FAILED "INGEST-1012-400" /* the error a batch failed by ?action=FAIL carries */
#define E_BUSY "INGEST-1013-409"        /* a chunk met another one in flight, or a fence */

/* AEP's defaults for the limits of struct app (notes/aep-api.md section 6). */
#define DEFAULT_MAX_PUT_BYTES (256LL << 20)
#define DEFAULT_MAX_CHUNK_BYTES 512000000LL
#define DEFAULT_MAX_BATCH_FILES 1500LL
#define DEFAULT_MAX_BATCH_BYTES (100LL << 30)
/* Chunks recorded per large file: bounds the upload record (512 MB chunks make 5 TB). */
#define MAX_CHUNKS_PER_FILE 10000
/* A PUT file at least this large is processed as soon as it lands (a speculative run the batch's
 * COMPLETE adopts); smaller ones are not worth a thread. */
#define SPECULATE_MIN_PUT_BYTES (1LL << 20)

/*
 * Uploads hold this lock shared while they check that the batch is "loading" and move the file
 * into staging; COMPLETE and ABORT hold it exclusively while they change the status. So once a
 * batch has left "loading", no upload that saw it loading is still landing files the pipeline
 * would miss (or read half-way).
 */
static pthread_rwlock_t staging_lock = PTHREAD_RWLOCK_INITIALIZER;

/*
 * Chunk writes (PATCH) hold this shared while they copy into a part file and record the range;
 * INITIALIZE and the file's COMPLETE hold it exclusively while they create, check and move part
 * files. So a part file is never moved into staging with a chunk half written into it.
 * Lock order: staging_lock, then upload_lock.
 */
static pthread_rwlock_t upload_lock = PTHREAD_RWLOCK_INITIALIZER;

static int64_t limit_or(int64_t v, int64_t dflt)
{
    return v > 0 ? v : dflt;
}

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

/* Whether the batch writes to this dataset. */
static bool batch_has_dataset(const json_t *batch, const char *dataset_id)
{
    const char *ds = catalog_batch_dataset_id(batch);
    return ds && strcmp(ds, dataset_id) == 0;
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

/* ---- shared checks of the file routes ------------------------------------------------------ */

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

/* The three path parameters of .../batches/{b}/datasets/{d}/files/{*path}, checked; answers the
 * request and returns false when they are unusable. */
static bool file_route_args(struct http_req *req, struct http_resp *resp, const char **batch_id,
                            const char **dataset_id, const char **file_path)
{
    if (req->nparams != 3) {
        http_resp_error(resp, 404, E_NO_BATCH, "Not Found", "No such upload path.");
        return false;
    }
    *batch_id = req->params[0];
    *dataset_id = req->params[1];
    *file_path = req->params[2];
    if (!id_is_safe(*batch_id)) {
        batch_not_found(resp, *batch_id);
        return false;
    }
    if (!id_is_safe(*dataset_id)) {
        http_resp_error(resp, 400, E_WRONG_DATASET, "Bad Request",
                        "The dataset id in the path is not a valid id.");
        return false;
    }
    if (!*file_path || !fs_rel_path_ok(*file_path)) {
        http_resp_error(resp, 400, E_BAD_PATH, "Bad Request",
                        "The file path must be relative, without '.' or '..' segments, empty "
                        "segments or backslashes, at most 1024 bytes.");
        return false;
    }
    return true;
}

/* The batch exists, is loading and writes to the dataset; answers the request otherwise. */
static bool batch_open_for(struct app *app, struct http_req *req, struct http_resp *resp,
                           const char *batch_id, const char *dataset_id)
{
    struct ing_err err;
    json_t *batch = NULL;
    bool ok = false;
    ing_err_clear(&err);
    int rc = catalog_batch_get(app->catalog, req->sandbox, batch_id, &batch, &err);
    if (rc == ING_ENOTFOUND) {
        batch_not_found(resp, batch_id);
    } else if (rc < 0) {
        import_fail(resp, rc, &err);
    } else if (strcmp(batch_status(batch), "loading") != 0) {
        char detail[200];
        snprintf(detail, sizeof(detail),
                 "Batch '%s' is %s; files can be uploaded only while it is loading.", batch_id,
                 batch_status(batch));
        http_resp_error(resp, 400, E_STATE, "Bad Request", detail);
    } else if (!batch_has_dataset(batch, dataset_id)) {
        char detail[200];
        snprintf(detail, sizeof(detail), "Batch '%s' does not write to dataset '%s'.", batch_id,
                 dataset_id);
        http_resp_error(resp, 400, E_WRONG_DATASET, "Bad Request", detail);
    } else {
        ok = true;
    }
    json_decref(batch);
    return ok;
}

/* A failed file-system step of an upload: a path that runs into an earlier upload (file "a",
 * then "a/b") is the client's fault, anything else the server's. */
static void upload_io_fail(struct http_resp *resp, int rc, const struct ing_err *err)
{
    int e = err->sys_errno;
    if (e == EISDIR || e == ENOTDIR || e == EEXIST || e == ENOTEMPTY)
        http_resp_error(resp, 400, E_BAD_PATH, "Bad Request",
                        "The file path conflicts with a file or folder uploaded earlier.");
    else if (e == ENOSPC || e == EDQUOT)
        http_resp_error(resp, 507, E_INTERNAL, "Insufficient Storage",
                        "The server has no room left for this upload.");
    else
        import_fail(resp, rc, err);
}

/* What a batch holds so far, for the per-batch limits: staged files and large files in progress,
 * leaving out `skip_path` (the file being replaced or extended). */
struct batch_usage {
    const char *skip_path;
    bool has_skip;   /* skip_path is staged or in progress */
    int64_t files;
    int64_t bytes;
};

static int usage_staged(void *ctx, const char *relpath, int64_t size)
{
    struct batch_usage *u = ctx;
    if (u->skip_path && strcmp(relpath, u->skip_path) == 0) {
        u->has_skip = true;
        return 0;
    }
    u->files++;
    u->bytes += size;
    return 0;
}

static int batch_usage_get(struct app *app, const char *sandbox, const char *batch_id,
                           const char *dataset_id, const char *skip_path, struct batch_usage *u,
                           struct ing_err *err)
{
    json_t *uploads = NULL;
    *u = (struct batch_usage){.skip_path = skip_path};
    char *staging = lake_staging_dir(app->lake, sandbox, batch_id, dataset_id);
    int rc = fs_exists(staging) ? fs_walk_files(staging, usage_staged, u, err) : 0;
    if (rc == 0)
        rc = catalog_upload_list(app->catalog, sandbox, batch_id, &uploads, err);
    const char *key;
    json_t *doc;
    json_object_foreach(uploads, key, doc) {
        const char *path = json_string_value(json_object_get(doc, "path"));
        if (path && skip_path && strcmp(path, skip_path) == 0) {
            u->has_skip = true;
            continue;
        }
        struct upl_range *r = NULL;
        size_t n = 0;
        if (upl_from_json(json_object_get(doc, "chunks"), &r, &n, NULL) == 0)
            u->bytes += upl_covered_bytes(r, n);
        free(r);
        /* A path both staged and in progress is one file of the batch. */
        char *staged = path ? xasprintf("%s/%s", staging, path) : NULL;
        if (!staged || !fs_exists(staged))
            u->files++;
        free(staged);
    }
    json_decref(uploads);
    free(staging);
    return rc;
}

/* Answer 400/413 and return false when adding a file (new_file) and `add_bytes` to the batch
 * passes its limits. */
static bool within_batch_limits(struct app *app, struct http_resp *resp,
                                const struct batch_usage *u, bool new_file, int64_t add_bytes)
{
    int64_t max_files = limit_or(app->max_batch_files, DEFAULT_MAX_BATCH_FILES);
    int64_t max_bytes = limit_or(app->max_batch_bytes, DEFAULT_MAX_BATCH_BYTES);
    char detail[300];
    if (new_file && u->files + 1 > max_files) {
        snprintf(detail, sizeof(detail),
                 "A batch holds at most %lld files; this one has %lld. Create another batch for "
                 "the remaining files.", (long long)max_files, (long long)u->files);
        http_resp_error(resp, 400, E_TOO_MANY, "Bad Request", detail);
        return false;
    }
    if (u->bytes + add_bytes > max_bytes) {
        snprintf(detail, sizeof(detail),
                 "A batch holds at most %lld bytes; with this upload it would hold %lld. Create "
                 "another batch for the remaining data.", (long long)max_bytes,
                 (long long)(u->bytes + add_bytes));
        http_resp_error(resp, 413, E_TOO_LARGE, "Payload Too Large", detail);
        return false;
    }
    return true;
}

/* ---- PUT /batches/{batchId}/datasets/{datasetId}/files/{*filePath} ------------------------- */

static char *part_path(struct app *app, const char *sandbox, const char *batch_id,
                       const char *dataset_id, const char *file_path);

static void h_file_put(void *ctx, struct http_req *req, struct http_resp *resp)
{
    struct app *app = ctx;
    struct ing_err err;
    char *staging = NULL, *dest = NULL, *parent = NULL;
    char *key = NULL;
    bool locked = false;
    const char *batch_id = NULL, *dataset_id = NULL, *file_path = NULL;
    int rc;
    ing_err_clear(&err);
    if (!file_route_args(req, resp, &batch_id, &dataset_id, &file_path))
        goto out;
    if (!req->body_path) {
        http_resp_error(resp, 500, E_INTERNAL, "Internal Server Error",
                        "The upload was not spooled.");
        goto out;
    }
    int64_t max_put = limit_or(app->max_put_bytes, DEFAULT_MAX_PUT_BYTES);
    if (req->body_size > max_put) {
        char detail[300];
        snprintf(detail, sizeof(detail),
                 "A file uploaded with PUT may hold at most %lld bytes; this one has %lld. Upload "
                 "larger files in chunks: POST ...?action=INITIALIZE, PATCH with Content-Range, "
                 "POST ...?action=COMPLETE.", (long long)max_put, (long long)req->body_size);
        http_resp_error(resp, 413, E_TOO_LARGE, "Payload Too Large", detail);
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
    if (!batch_open_for(app, req, resp, batch_id, dataset_id))
        goto out;
    struct batch_usage use;
    rc = batch_usage_get(app, req->sandbox, batch_id, dataset_id, file_path, &use, &err);
    if (rc < 0) {
        import_fail(resp, rc, &err);
        goto out;
    }
    if (!within_batch_limits(app, resp, &use, !use.has_skip, req->body_size))
        goto out;

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
        upload_io_fail(resp, rc, &err);
        goto out;
    }
    /* AEP answers 200 with an empty body for both a new file and a replaced one. */
    resp->status = 200;
    /* Whatever was read of an earlier file under this name is stale; a new file whole on disk
     * can be processed now (the batch's COMPLETE adopts the run). Still under staging_lock, so
     * the run is listed before a COMPLETE can queue the batch: the batch's run then takes it,
     * and no run is left over that nobody takes. */
    key = part_path(app, req->sandbox, batch_id, dataset_id, file_path);
    upl_watch_cancel(key);
    if (app->pipeline && req->body_size >= SPECULATE_MIN_PUT_BYTES) {
        struct upl_watch *w = upl_watch_start(key, req->body_size);
        upl_watch_seal(key, req->body_size);
        if (!pipeline_speculate(app->pipeline, req->sandbox, batch_id, dataset_id, file_path,
                                dest, key, w))
            upl_watch_abandon(w);
        upl_watch_release(w);
    }
out:
    if (locked)
        pthread_rwlock_unlock(&staging_lock);
    free(key);
    free(staging);
    free(dest);
    free(parent);
}

/* ---- large files: POST ?action=INITIALIZE|COMPLETE, PATCH, HEAD ---------------------------- */

static char *part_path(struct app *app, const char *sandbox, const char *batch_id,
                       const char *dataset_id, const char *file_path)
{
    char *dir = lake_upload_dir(app->lake, sandbox, batch_id, dataset_id);
    char *p = xasprintf("%s/%s", dir, file_path);
    free(dir);
    return p;
}

static void no_upload(struct http_resp *resp, const char *file_path)
{
    char detail[300];
    snprintf(detail, sizeof(detail),
             "The large file '%.200s' was not initialized; start with POST ...?action=INITIALIZE.",
             file_path);
    http_resp_error(resp, 404, E_NO_UPLOAD, "Not Found", detail);
}

/* The recorded chunks of an upload document (new array in *r, free()). */
static int upload_chunks(const json_t *doc, struct upl_range **r, size_t *n, int64_t *total,
                         struct ing_err *err)
{
    const json_t *t = json_object_get(doc, "total");
    *total = json_is_integer(t) ? json_integer_value(t) : -1;
    return upl_from_json(json_object_get(doc, "chunks"), r, n, err);
}

/* Whether the upload record holds any chunk (false when there is none or it cannot be read). */
static bool upload_has_chunks(struct app *app, const char *sandbox, const char *batch_id,
                              const char *dataset_id, const char *file_path)
{
    json_t *doc = NULL;
    bool has = false;
    if (catalog_upload_get(app->catalog, sandbox, batch_id, dataset_id, file_path, &doc, NULL) ==
        0)
        has = json_array_size(json_object_get(doc, "chunks")) > 0;
    json_decref(doc);
    return has;
}

/* Range and X-Received-Bytes headers, and the File body {"name","sizeInBytes"} of AEP. */
static void answer_ranges(struct http_resp *resp, int status, const char *file_path,
                          const struct upl_range *r, size_t n)
{
    struct buf b = {0};
    char num[32];
    if (upl_format(r, n, &b) == 0)
        http_resp_header(resp, "Range", buf_cstr(&b));
    buf_free(&b);
    int64_t got = upl_covered_bytes(r, n);
    snprintf(num, sizeof(num), "%lld", (long long)got);
    http_resp_header(resp, "X-Received-Bytes", num);
    http_resp_json_new(resp, status, json_pack("{s:s, s:I}", "name", file_path, "sizeInBytes",
                                               (json_int_t)got));
}

static void file_initialize(struct app *app, struct http_req *req, struct http_resp *resp,
                            const char *batch_id, const char *dataset_id, const char *file_path)
{
    struct ing_err err;
    json_t *doc = NULL;
    char *part = NULL, *parent = NULL;
    int fd = -1;
    ing_err_clear(&err);
    pthread_rwlock_rdlock(&staging_lock);
    pthread_rwlock_wrlock(&upload_lock);
    if (!batch_open_for(app, req, resp, batch_id, dataset_id))
        goto out;
    struct batch_usage use;
    int rc = batch_usage_get(app, req->sandbox, batch_id, dataset_id, file_path, &use, &err);
    if (rc < 0) {
        import_fail(resp, rc, &err);
        goto out;
    }
    if (!within_batch_limits(app, resp, &use, !use.has_skip, 0))
        goto out;

    /* The part file first, then the record: a record always has its part file. Chunks of an
     * earlier INITIALIZE may remain in it; the new record does not cover them, and COMPLETE
     * cuts the file at the end of the recorded chunks. */
    part = part_path(app, req->sandbox, batch_id, dataset_id, file_path);
    /* Chunks of the earlier record still arriving must not be acknowledged into the new one,
     * and what was read of it ahead is stale. */
    upl_fence(part);
    upl_watch_cancel(part);
    parent = xstrdup(part);
    *strrchr(parent, '/') = '\0';
    rc = fs_mkdirs(parent, &err);
    if (rc == 0) {
        fd = open(part, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
        if (fd < 0 || fsync(fd) != 0)
            rc = ing_err_errno(&err, errno, "creating the part file");
    }
    if (rc == 0)
        rc = fsync_dirs_up(parent, lake_data_dir(app->lake), &err);
    if (rc < 0) {
        upload_io_fail(resp, rc, &err);
        goto out;
    }
    rc = catalog_upload_init(app->catalog, req->sandbox, batch_id, dataset_id, file_path, &err);
    if (rc < 0) {
        import_fail(resp, rc, &err);
        goto out;
    }
    /* AEP answers 201 Created with an empty body. */
    resp->status = 201;
out:
    if (fd >= 0)
        close(fd);
    pthread_rwlock_unlock(&upload_lock);
    pthread_rwlock_unlock(&staging_lock);
    json_decref(doc);
    free(part);
    free(parent);
}

static void file_complete(struct app *app, struct http_req *req, struct http_resp *resp,
                          const char *batch_id, const char *dataset_id, const char *file_path)
{
    struct ing_err err;
    json_t *doc = NULL;
    struct upl_range *r = NULL;
    size_t n = 0;
    int64_t total, size = 0;
    char *part = NULL, *dest = NULL, *parent = NULL, *staging = NULL;
    ing_err_clear(&err);
    pthread_rwlock_rdlock(&staging_lock);
    pthread_rwlock_wrlock(&upload_lock);
    if (!batch_open_for(app, req, resp, batch_id, dataset_id))
        goto out;
    staging = lake_staging_dir(app->lake, req->sandbox, batch_id, dataset_id);
    dest = xasprintf("%s/%s", staging, file_path);
    part = part_path(app, req->sandbox, batch_id, dataset_id, file_path);
    /* Chunks still arriving would write into the file after it moved into staging: they stop
     * here (their writes are dropped and they are not acknowledged). */
    upl_fence(part);
    int rc = catalog_upload_get(app->catalog, req->sandbox, batch_id, dataset_id, file_path,
                                &doc, &err);
    if (rc == ING_ENOTFOUND) {
        /* COMPLETE is safe to retry: a file already in staging was completed (or PUT). */
        int64_t staged = fs_file_size(dest);
        if (staged >= 0) {
            struct upl_range whole = {0, staged - 1};
            answer_ranges(resp, 201, file_path, &whole, staged > 0 ? 1 : 0);
        } else {
            no_upload(resp, file_path);
        }
        goto out;
    }
    if (rc == 0)
        rc = upload_chunks(doc, &r, &n, &total, &err);
    if (rc < 0) {
        import_fail(resp, rc, &err);
        goto out;
    }
    ing_err_clear(&err);
    if (upl_check_complete(r, n, total, &size, &err) != 0) {
        char detail[400];
        snprintf(detail, sizeof(detail), "The large file '%.150s' is not complete: %.200s.",
                 file_path, err.msg);
        http_resp_error(resp, 400, E_INCOMPLETE, "Bad Request", detail);
        goto out;
    }
    if (!fs_exists(part) && fs_file_size(dest) == size) {
        /* A crash came after the move and before the record was removed: finish that. */
        rc = 0;
    } else {
        /* A chunk cut short by a crash may have written past the end; the file ends where the
         * recorded chunks end. */
        if (truncate(part, size) != 0)
            rc = ing_err_errno(&err, errno, "cutting the part file to %lld bytes",
                               (long long)size);
        if (rc == 0)
            rc = fs_fsync_path(part, &err);
        parent = xstrdup(dest);
        *strrchr(parent, '/') = '\0';
        if (rc == 0)
            rc = fs_mkdirs(parent, &err);
        if (rc == 0)
            rc = fs_rename_durable(part, dest, &err);
        if (rc == 0)
            rc = fsync_dirs_up(parent, lake_data_dir(app->lake), &err);
        if (rc < 0) {
            upl_watch_cancel(part);
            upload_io_fail(resp, rc, &err);
            goto out;
        }
        /* The file is whole: a run reading it ahead may read to the end. */
        upl_watch_seal(part, size);
    }
    rc = catalog_upload_remove(app->catalog, req->sandbox, batch_id, dataset_id, file_path, &err);
    if (rc < 0) {
        import_fail(resp, rc, &err);
        goto out;
    }
    struct upl_range whole = {0, size - 1};
    answer_ranges(resp, 201, file_path, &whole, 1);
out:
    pthread_rwlock_unlock(&upload_lock);
    pthread_rwlock_unlock(&staging_lock);
    json_decref(doc);
    free(r);
    free(part);
    free(dest);
    free(parent);
    free(staging);
}

static void h_file_action(void *ctx, struct http_req *req, struct http_resp *resp)
{
    struct app *app = ctx;
    const char *batch_id, *dataset_id, *file_path;
    if (!file_route_args(req, resp, &batch_id, &dataset_id, &file_path))
        return;
    const char *action = http_req_query(req, "action");
    if (action && !strcasecmp(action, "INITIALIZE"))
        file_initialize(app, req, resp, batch_id, dataset_id, file_path);
    else if (action && !strcasecmp(action, "COMPLETE"))
        file_complete(app, req, resp, batch_id, dataset_id, file_path);
    else
        http_resp_error(resp, 400, E_ACTION, "Bad Request",
                        "The query parameter action must be INITIALIZE or COMPLETE.");
}

/* ---- PATCH through a chunk sink ---------------------------------------------------------- */

static void sink_write(void *ctx, const char *data, size_t n)
{
    upl_sink_write(ctx, data, n);
}

static void sink_release(void *ctx)
{
    upl_sink_free(ctx);
}

/* Whether `chunk` overlaps (or repeats) a chunk recorded in the upload document. */
static bool overlaps_recorded(const json_t *doc, const struct upl_range *chunk)
{
    struct upl_range *r = NULL;
    size_t n = 0;
    int64_t total;
    bool hit = upload_chunks(doc, &r, &n, &total, NULL) != 0; /* unreadable: be careful */
    for (size_t i = 0; !hit && i < n; i++)
        hit = upl_ranges_overlap(&r[i], chunk);
    free(r);
    return hit;
}

/*
 * The PATCH handler's first call (headers only): take the body into the part file directly when
 * that is safe, i.e. the upload exists, the range is well formed, within the chunk limit, and
 * overlaps no chunk recorded or in flight (a chunk sent again keeps its recorded bytes until the
 * new copy is whole: it takes the spooled way). Anything else, errors included, is left to the
 * spooled way, whose second call answers it. Whether the batch is still loading is checked when
 * the chunk is recorded, as for every chunk.
 */
static void patch_offer_sink(struct app *app, struct http_req *req)
{
    struct ing_err err;
    json_t *doc = NULL;
    char *part = NULL;
    struct upl_sink *sink = NULL;
    ing_err_clear(&err);
    if (req->nparams != 3 || !id_is_safe(req->params[0]) || !id_is_safe(req->params[1]) ||
        !req->params[2] || !fs_rel_path_ok(req->params[2]))
        return;
    const char *batch_id = req->params[0], *dataset_id = req->params[1],
               *file_path = req->params[2];
    struct upl_range chunk;
    int64_t total;
    if (upl_parse_content_range(http_req_header(req, "content-range"), &chunk, &total, NULL) != 0)
        return;
    if (chunk.last - chunk.first + 1 > limit_or(app->max_chunk_bytes, DEFAULT_MAX_CHUNK_BYTES))
        return;
    if (catalog_upload_get(app->catalog, req->sandbox, batch_id, dataset_id, file_path, &doc,
                           NULL) != 0 ||
        overlaps_recorded(doc, &chunk))
        goto out;
    part = part_path(app, req->sandbox, batch_id, dataset_id, file_path);
    /* The first bytes of a fresh upload: a run may read the file while it arrives. The watch
     * starts before the sink writes anything, so it sees every byte from 0. */
    bool fresh = chunk.first == 0 && json_array_size(json_object_get(doc, "chunks")) == 0;
    if (upl_sink_open(&sink, part, chunk, &err) != 0)
        goto out;
    if (fresh && app->pipeline) {
        struct upl_watch *w = upl_watch_start(part, total);
        if (!pipeline_speculate(app->pipeline, req->sandbox, batch_id, dataset_id, file_path,
                                part, part, w))
            upl_watch_abandon(w);
        upl_watch_release(w);
    }
    *req->sink = (struct http_body_sink){.ctx = sink, .write = sink_write,
                                         .release = sink_release};
out:
    json_decref(doc);
    free(part);
}

static void h_file_patch(void *ctx, struct http_req *req, struct http_resp *resp)
{
    struct app *app = ctx;
    if (req->sink) {
        patch_offer_sink(app, req);
        return;
    }
    struct ing_err err;
    json_t *doc = NULL, *updated = NULL;
    struct upl_range *r = NULL;
    size_t n = 0;
    char *part = NULL;
    struct upl_sink *reserve = NULL; /* a spooled chunk's range while it is copied */
    bool locked = false;
    const char *batch_id, *dataset_id, *file_path;
    char detail[400];
    ing_err_clear(&err);
    if (!file_route_args(req, resp, &batch_id, &dataset_id, &file_path))
        goto out;
    if (!req->body_path && !req->body_sink) {
        http_resp_error(resp, 500, E_INTERNAL, "Internal Server Error",
                        "The chunk was not spooled.");
        goto out;
    }
    int64_t max_chunk = limit_or(app->max_chunk_bytes, DEFAULT_MAX_CHUNK_BYTES);
    if (req->body_size > max_chunk) {
        snprintf(detail, sizeof(detail),
                 "A chunk may hold at most %lld bytes; this one has %lld. Send smaller chunks.",
                 (long long)max_chunk, (long long)req->body_size);
        http_resp_error(resp, 413, E_TOO_LARGE, "Payload Too Large", detail);
        goto out;
    }
    struct upl_range chunk;
    int64_t total;
    if (upl_parse_content_range(http_req_header(req, "content-range"), &chunk, &total, &err) !=
        0) {
        http_resp_error(resp, 400, E_RANGE, "Bad Request", err.msg);
        goto out;
    }
    if (chunk.last - chunk.first + 1 != req->body_size) {
        snprintf(detail, sizeof(detail),
                 "Content-Range names %lld bytes (%lld-%lld, both included) but the body has "
                 "%lld.", (long long)(chunk.last - chunk.first + 1), (long long)chunk.first,
                 (long long)chunk.last, (long long)req->body_size);
        http_resp_error(resp, 400, E_RANGE, "Bad Request", detail);
        goto out;
    }

    struct upl_sink *sink = req->body_sink;
    part = part_path(app, req->sandbox, batch_id, dataset_id, file_path);
    /*
     * A chunk written through a sink is in the part file already: its bytes are made durable
     * here, before any lock. A spooled chunk at offset 0 may become the part file itself (no
     * copy): its bytes are made durable here, before any lock, and it is renamed under the
     * exclusive upload_lock, so no chunk write into the part file it replaces is in progress.
     * Any other chunk is copied into the part file under the shared lock. A look at the record
     * without the lock skips the fsync (and the exclusive lock) for a chunk 0 that comes after
     * others: it will be copied (and fsynced) in place; the choice is made again under the lock.
     */
    bool first_chunk = !sink && chunk.first == 0 &&
                       !upload_has_chunks(app, req->sandbox, batch_id, dataset_id, file_path) &&
                       !upl_inflight(part, NULL);
    int rc;
    int64_t t0 = clock_mono_ns();
    if (sink) {
        rc = upl_sink_sync(sink, &err);
        if (rc == ING_ESTATE) {
            http_resp_error(resp, 409, E_BUSY, "Conflict", err.msg);
            goto out;
        }
        if (rc == ING_EINVAL) {
            http_resp_error(resp, 400, E_RANGE, "Bad Request", err.msg);
            goto out;
        }
        if (rc < 0) {
            upload_io_fail(resp, rc, &err);
            goto out;
        }
    } else if (first_chunk) {
        rc = fs_fsync_path(req->body_path, &err);
        if (rc < 0) {
            upload_io_fail(resp, rc, &err);
            goto out;
        }
    }
    int64_t t_synced = clock_mono_ns();
    pthread_rwlock_rdlock(&staging_lock);
    if (first_chunk)
        pthread_rwlock_wrlock(&upload_lock);
    else
        pthread_rwlock_rdlock(&upload_lock);
    locked = true;
    if (!batch_open_for(app, req, resp, batch_id, dataset_id))
        goto out;
    rc = catalog_upload_get(app->catalog, req->sandbox, batch_id, dataset_id, file_path, &doc,
                            &err);
    if (rc == ING_ENOTFOUND) {
        no_upload(resp, file_path);
        goto out;
    }
    int64_t known_total;
    if (rc == 0)
        rc = upload_chunks(doc, &r, &n, &known_total, &err);
    if (rc < 0) {
        import_fail(resp, rc, &err);
        goto out;
    }
    /* The batch limit counts the bytes this file will have with the chunk. */
    struct batch_usage use;
    rc = batch_usage_get(app, req->sandbox, batch_id, dataset_id, file_path, &use, &err);
    if (rc < 0) {
        import_fail(resp, rc, &err);
        goto out;
    }
    r = xrealloc(r, (n + 1) * sizeof(*r));
    r[n] = chunk;
    if (!within_batch_limits(app, resp, &use, false, upl_covered_bytes(r, n + 1)))
        goto out;

    /* A fence (INITIALIZE or COMPLETE of the file) came while the chunk arrived: its bytes may
     * not be in the part file the record now describes. */
    if (sink && upl_sink_fenced(sink)) {
        http_resp_error(resp, 409, E_BUSY, "Conflict",
                        "The upload was initialized or completed again while this chunk "
                        "arrived; send it again.");
        goto out;
    }
    /* A spooled chunk is placed only where no chunk is being written (the rename would leave
     * those writes in the file it replaces; a copy would mix with them). A copy reserves its
     * range in the registry of chunks in flight while it runs, so no sink opens over it. */
    bool rename_first = !sink && first_chunk && n == 0;
    if (!sink && rename_first && upl_inflight(part, NULL))
        rc = ING_EEXIST;
    else if (!sink && !rename_first)
        rc = upl_sink_open(&reserve, part, chunk, &err);
    else
        rc = 0;
    if (rc == ING_EEXIST) {
        http_resp_error(resp, 409, E_BUSY, "Conflict",
                        "A chunk overlapping this range is being received; send it again when "
                        "that one is answered.");
        goto out;
    }
    if (rc < 0) {
        upload_io_fail(resp, rc, &err);
        goto out;
    }
    /* A spooled chunk replaces or overwrites bytes in place: a run reading the file ahead may
     * have read the earlier ones. */
    if (!sink)
        upl_watch_cancel(part);
    /* No chunk recorded yet: whatever the part file holds (bytes of an earlier INITIALIZE or of
     * a chunk cut short by a crash) is not covered by the record, so the chunk can replace it. */
    bool renamed = false;
    if (rename_first) {
        /* A sink opened since the look above would write into the file the rename replaces. */
        upl_fence(part);
        rc = upl_place_chunk(req->body_path, part, &renamed, &err);
        if (rc < 0) {
            upload_io_fail(resp, rc, &err);
            goto out;
        }
    }
    if (!sink && !renamed) {
        rc = upl_copy_chunk(req->body_path, part, chunk.first, req->body_size, &err);
        upl_sink_free(reserve);
        reserve = NULL;
        if (rc < 0) {
            upload_io_fail(resp, rc, &err);
            goto out;
        }
    }
    int64_t t_placed = clock_mono_ns();
    /* On disk (fsynced); now durably recorded. Only then is the chunk acknowledged. */
    rc = catalog_upload_add_chunk(app->catalog, req->sandbox, batch_id, dataset_id, file_path,
                                  &chunk, total, MAX_CHUNKS_PER_FILE, &updated, &err);
    if (rc == ING_ESTATE) {
        snprintf(detail, sizeof(detail), "The chunk was not recorded: %.300s.", err.msg);
        http_resp_error(resp, 400, E_STATE, "Bad Request", detail);
        goto out;
    }
    if (rc == ING_EINVAL) {
        http_resp_error(resp, 400, E_RANGE, "Bad Request", err.msg);
        goto out;
    }
    if (rc == ING_ETOOBIG) {
        http_resp_error(resp, 413, E_TOO_LARGE, "Payload Too Large", err.msg);
        goto out;
    }
    if (rc < 0) {
        import_fail(resp, rc, &err);
        goto out;
    }
    upl_sink_ack(sink); /* recorded: its bytes are the upload's for good */
    free(r);
    r = NULL;
    rc = upload_chunks(updated, &r, &n, &known_total, &err);
    if (rc < 0) {
        import_fail(resp, rc, &err);
        goto out;
    }
    log_debug("upload chunk batch=%s path=%s range=%lld-%lld placed=%s fsync_ms=%.1f "
              "place_ms=%.1f record_ms=%.1f", batch_id, file_path, (long long)chunk.first,
              (long long)chunk.last, sink ? "direct" : renamed ? "rename" : "copy",
              (double)(t_synced - t0) / 1e6, (double)(t_placed - t_synced) / 1e6,
              (double)(clock_mono_ns() - t_placed) / 1e6);
    answer_ranges(resp, 200, file_path, r, n);
out:
    upl_sink_free(reserve);
    if (locked) {
        pthread_rwlock_unlock(&upload_lock);
        pthread_rwlock_unlock(&staging_lock);
    }
    json_decref(doc);
    json_decref(updated);
    free(r);
    free(part);
}

static void h_file_head(void *ctx, struct http_req *req, struct http_resp *resp)
{
    struct app *app = ctx;
    struct ing_err err;
    json_t *doc = NULL;
    struct upl_range *r = NULL;
    size_t n = 0;
    char *staging = NULL, *dest = NULL;
    const char *batch_id, *dataset_id, *file_path;
    ing_err_clear(&err);
    if (!file_route_args(req, resp, &batch_id, &dataset_id, &file_path))
        goto out;
    int rc = catalog_upload_get(app->catalog, req->sandbox, batch_id, dataset_id, file_path,
                                &doc, &err);
    if (rc == ING_ENOTFOUND) {
        /* A file already complete (or PUT whole) has all its bytes. */
        staging = lake_staging_dir(app->lake, req->sandbox, batch_id, dataset_id);
        dest = xasprintf("%s/%s", staging, file_path);
        int64_t staged = fs_file_size(dest);
        if (staged >= 0) {
            struct upl_range whole = {0, staged - 1};
            answer_ranges(resp, 200, file_path, &whole, staged > 0 ? 1 : 0);
        } else {
            no_upload(resp, file_path);
        }
        goto out;
    }
    int64_t total;
    if (rc == 0)
        rc = upload_chunks(doc, &r, &n, &total, &err);
    if (rc < 0) {
        import_fail(resp, rc, &err);
        goto out;
    }
    answer_ranges(resp, 200, file_path, r, n);
out:
    json_decref(doc);
    free(r);
    free(staging);
    free(dest);
}

/* ---- POST /batches/{batchId}?action=COMPLETE|ABORT|FAIL|REVERT ------------------------------ */

static void refuse_state(struct http_resp *resp, const char *id, const char *status,
                         const char *verb)
{
    char detail[200];
    snprintf(detail, sizeof(detail), "Batch '%s' is %s; it cannot be %s.", id, status, verb);
    http_resp_error(resp, 400, E_STATE, "Bad Request", detail);
}

/* Under staging_lock (write): a loading batch with a large file initialized and not completed
 * cannot be completed. Answers the request and returns false then. */
static bool uploads_finished(struct app *app, struct http_req *req, struct http_resp *resp,
                             const char *id)
{
    struct ing_err err;
    json_t *open_uploads = NULL, *batch = NULL;
    bool ok = true;
    ing_err_clear(&err);
    if (catalog_batch_get(app->catalog, req->sandbox, id, &batch, &err) != 0 ||
        strcmp(batch_status(batch), "loading") != 0)
        goto out; /* not found or not loading: the transition says so */
    int rc = catalog_upload_list(app->catalog, req->sandbox, id, &open_uploads, &err);
    if (rc < 0) {
        import_fail(resp, rc, &err);
        ok = false;
        goto out;
    }
    void *it = json_object_iter(open_uploads);
    if (it) {
        const char *path = json_string_value(json_object_get(json_object_iter_value(it), "path"));
        char detail[400];
        snprintf(detail, sizeof(detail),
                 "The large file '%.200s' was initialized but not completed; complete it (POST "
                 "...?action=COMPLETE) before completing the batch.", path ? path : "?");
        http_resp_error(resp, 400, E_INCOMPLETE, "Bad Request", detail);
        ok = false;
    }
out:
    json_decref(open_uploads);
    json_decref(batch);
    return ok;
}

/* The end of a batch action: when rc is a failure, answers it (404 for a missing batch `id`) and
 * says true. */
static bool action_failed(struct http_resp *resp, int rc, const struct ing_err *err, const char *id)
{
    if (rc == ING_ENOTFOUND) {
        batch_not_found(resp, id);
        return true;
    }
    if (rc < 0) {
        import_fail(resp, rc, err);
        return true;
    }
    return false;
}

static void batch_complete(struct app *app, struct http_req *req, struct http_resp *resp,
                           const char *id)
{
    static const char *const from[] = {"loading", NULL};
    struct ing_err err;
    json_t *batch = NULL;
    ing_err_clear(&err);
    pthread_rwlock_wrlock(&staging_lock);
    if (!uploads_finished(app, req, resp, id)) {
        pthread_rwlock_unlock(&staging_lock);
        goto out;
    }
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
            else if (strcmp(st, "processing") && strcmp(st, "success") && strcmp(st, "retrying")) {
                refuse_state(resp, id, st, "completed");
                goto out;
            }
        }
    }
    if (action_failed(resp, rc, &err, id))
        goto out;
    if (nudge && app->pipeline)
        pipeline_enqueue(app->pipeline, req->sandbox, id);
    resp->status = 200;
out:
    json_decref(batch);
}

/* After ABORT or FAIL: the staged files, the large files in progress and their records are of no
 * further use; losing this clean-up to a crash is harmless. */
static void discard_inputs(struct app *app, const char *sandbox, const char *id)
{
    struct ing_err err;
    json_t *batch = NULL, *uploads = NULL;
    ing_err_clear(&err);
    if (catalog_batch_get(app->catalog, sandbox, id, &batch, &err) != 0)
        goto out;
    const json_t *rel = json_object_get(batch, "relatedObjects");
    for (size_t i = 0; app->lake && i < json_array_size(rel); i++) {
        const char *ds = json_string_value(json_object_get(json_array_get(rel, i), "id"));
        ing_err_clear(&err);
        if (ds && id_is_safe(ds) && lake_discard_output(app->lake, sandbox, ds, id, &err) < 0)
            log_warn("batch %s ended but its staged files remain: %s", id, err.msg);
    }
    if (catalog_upload_list(app->catalog, sandbox, id, &uploads, &err) != 0)
        goto out;
    const char *key;
    json_t *doc;
    json_object_foreach(uploads, key, doc) {
        const char *ds = json_string_value(json_object_get(doc, "dataSetId"));
        const char *path = json_string_value(json_object_get(doc, "path"));
        if (ds && path)
            catalog_upload_remove(app->catalog, sandbox, id, ds, path, NULL);
    }
out:
    json_decref(batch);
    json_decref(uploads);
}

/* ABORT (to "aborted") or FAIL (to "failed", with an error saying the client failed it). */
static void batch_stop(struct app *app, struct http_req *req, struct http_resp *resp,
                       const char *id, bool fail)
{
    /* A batch being processed runs to its end (the worker promotes or removes its output), so
     * ABORT and FAIL are refused there, as they are once the batch is final. */
    static const char *const from[] = {"loading", "queued", NULL};
    struct ing_err err;
    json_t *batch = NULL, *patch = NULL;
    ing_err_clear(&err);
    if (fail)
        patch = json_pack("{s:I, s:[{s:s, s:s}]}", "completed", (json_int_t)clock_now_ms(),
                          "errors", "code", E_CLIENT_FAILED, "description",
                          "The batch was failed by the client (action=FAIL).");
    pthread_rwlock_wrlock(&staging_lock);
    pthread_rwlock_wrlock(&upload_lock);
    int rc = catalog_batch_transition(app->catalog, req->sandbox, id, from,
                                      fail ? "failed" : "aborted", patch, &err);
    pthread_rwlock_unlock(&upload_lock);
    pthread_rwlock_unlock(&staging_lock);
    if (rc == ING_ESTATE) {
        ing_err_clear(&err);
        rc = catalog_batch_get(app->catalog, req->sandbox, id, &batch, &err);
        if (rc == 0) {
            refuse_state(resp, id, batch_status(batch), fail ? "failed" : "aborted");
            goto out;
        }
    }
    if (action_failed(resp, rc, &err, id))
        goto out;
    pipeline_spec_drop(app->pipeline, req->sandbox, id);
    discard_inputs(app, req->sandbox, id);
    resp->status = 200;
out:
    json_decref(batch);
    json_decref(patch);
}

/* REVERT: success -> inactive; the catalog's retire hook removes the rows from the lake before
 * the answer goes out. Reverting an inactive batch again is a no-op (safe to retry). */
static void batch_revert(struct app *app, struct http_req *req, struct http_resp *resp,
                         const char *id)
{
    struct ing_err err;
    json_t *batch = NULL;
    ing_err_clear(&err);
    int rc = catalog_batch_revert(app->catalog, req->sandbox, id, &err);
    if (rc == ING_ESTATE) {
        ing_err_clear(&err);
        rc = catalog_batch_get(app->catalog, req->sandbox, id, &batch, &err);
        if (rc == 0 && strcmp(batch_status(batch), "inactive") != 0) {
            char detail[240];
            snprintf(detail, sizeof(detail),
                     "Batch '%s' is %s; only a successful batch can be reverted.", id,
                     batch_status(batch));
            http_resp_error(resp, 400, E_STATE, "Bad Request", detail);
            goto out;
        }
    }
    if (action_failed(resp, rc, &err, id))
        goto out;
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
                        "The query parameter action is required (COMPLETE, ABORT, FAIL or "
                        "REVERT).");
        return;
    }
    if (!strcasecmp(action, "COMPLETE")) {
        batch_complete(app, req, resp, id);
    } else if (!strcasecmp(action, "ABORT")) {
        batch_stop(app, req, resp, id, false);
    } else if (!strcasecmp(action, "FAIL")) {
        batch_stop(app, req, resp, id, true);
    } else if (!strcasecmp(action, "REVERT")) {
        batch_revert(app, req, resp, id);
    } else {
        http_resp_error(resp, 400, E_ACTION, "Bad Request",
                        "Unknown batch action; use COMPLETE, ABORT, FAIL or REVERT.");
    }
}

#define FILE_ROUTE IMPORT_BASE "/batches/{batchId}/datasets/{datasetId}/files/{*filePath}"

static const struct http_route routes[] = {
    {HTTP_POST, IMPORT_BASE "/batches", h_batch_create, HTTP_BODY_JSON},
    {HTTP_PUT, FILE_ROUTE, h_file_put, HTTP_BODY_FILE},
    /* A chunk goes straight into the part file at its offset (a sink); one that cannot is
     * spooled, then renamed (offset 0) or copied into it. */
    {HTTP_PATCH, FILE_ROUTE, h_file_patch, HTTP_BODY_SINK},
    {HTTP_POST, FILE_ROUTE, h_file_action, HTTP_BODY_NONE},
    {HTTP_HEAD, FILE_ROUTE, h_file_head, HTTP_BODY_NONE},
    {HTTP_POST, IMPORT_BASE "/batches/{batchId}", h_batch_action, HTTP_BODY_NONE},
};

const struct api_routes api_import_routes = {routes, ING_ARRAY_LEN(routes)};
