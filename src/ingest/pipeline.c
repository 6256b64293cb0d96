/*
 * pipeline.c - the batch worker pool; see pipeline.h.
 *
 * The store is the queue: a batch whose status is "queued" is work. A worker claims one with the
 * catalog transition queued -> processing (only one worker can win it), runs the engine over the
 * batch's staged files into the lake's temporary folder, promotes the folder and finishes the
 * batch in the catalog. Workers sleep on a condition variable that pipeline_enqueue nudges and
 * also look at the store every second, so a lost nudge costs at most a second.
 *
 * Crash recovery (pipeline_start, before any worker runs): a batch left "processing" had its run
 * cut short. Its temporary output and any promoted output whose catalog commit never happened are
 * removed (the staged input is kept) and it goes back to "queued" to run again.
 */
#include "ingest/pipeline.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "ingest/engine.h"
#include "schema/xdm_plan.h"
#include "util/clock.h"
#include "util/fs.h"
#include "util/id.h"
#include "util/log.h"
#include "util/mem.h"

#define PIPELINE_DEFAULT_WORKERS 2
#define PIPELINE_POLL_MS 1000
#define PIPELINE_PREVIEW_ROWS 100
/* How many queued batches one look at the store considers. */
#define PIPELINE_SCAN_LIMIT 16

struct pipeline {
    struct catalog *cat;
    struct registry *reg;
    struct lake *lake;
    struct store *st;
    pthread_t *threads;
    unsigned nthreads;
    pthread_mutex_t mu;
    pthread_cond_t cv;          /* nudged by pipeline_enqueue and pipeline_stop */
    bool stopping;
    unsigned pending;           /* nudges not yet answered by a look at the store */
};

/* The dataset a batch writes to: relatedObjects[type=dataSet].id, else "datasetId". */
static const char *batch_dataset_id(const json_t *batch)
{
    size_t i;
    json_t *obj;
    json_array_foreach(json_object_get(batch, "relatedObjects"), i, obj) {
        const char *type = json_string_value(json_object_get(obj, "type"));
        const char *id = json_string_value(json_object_get(obj, "id"));
        if (type && id && !strcmp(type, "dataSet"))
            return id;
    }
    return json_string_value(json_object_get(batch, "datasetId"));
}

/* Remove a batch's temporary and promoted output, keeping its staged input so it can run again. */
static void remove_output(struct pipeline *p, const char *sandbox, const char *dataset_id,
                          const char *batch_id)
{
    if (!id_is_safe(sandbox) || !id_is_safe(dataset_id) || !id_is_safe(batch_id))
        return;
    struct ing_err err;
    ing_err_clear(&err);
    char *tmp = lake_batch_tmp_dir(p->lake, sandbox, dataset_id, batch_id);
    char *final = lake_batch_dir(p->lake, sandbox, dataset_id, batch_id);
    if (fs_rm_rf(tmp, &err) != 0 || fs_rm_rf(final, &err) != 0)
        log_warn("batch output not removed sandbox=%s batch=%s: %s", sandbox, batch_id, err.msg);
    free(tmp);
    free(final);
}

static void add_error(json_t *errors, const char *code, const char *description)
{
    json_array_append_new(errors, json_pack("{s:s, s:s, s:[]}", "code", code, "description",
                                            description, "rows"));
}

/* ------------------------------------------------------------------------------------------ */
/* One batch                                                                                   */

struct staged {
    char *root;
    struct engine_file *files;
    size_t n, cap;
    int64_t bytes;
};

static int collect_staged(void *ctx, const char *relpath, int64_t size)
{
    struct staged *s = ctx;
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 8;
        s->files = xrealloc(s->files, s->cap * sizeof(*s->files));
    }
    s->files[s->n].path = xasprintf("%s/%s", s->root, relpath);
    s->files[s->n].name = xstrdup(relpath);
    s->n++;
    s->bytes += size;
    return 0;
}

static void staged_free(struct staged *s)
{
    for (size_t i = 0; i < s->n; i++) {
        free((char *)s->files[i].path);
        free((char *)s->files[i].name);
    }
    free(s->files);
    free(s->root);
}

/* AEP-style batch errors from the engine's row errors: file, row and field in the description. */
static void add_engine_errors(json_t *errors, const json_t *items)
{
    size_t i;
    json_t *it;
    json_array_foreach(items, i, it) {
        const char *code = json_string_value(json_object_get(it, "code"));
        const char *file = json_string_value(json_object_get(it, "file"));
        const char *field = json_string_value(json_object_get(it, "field"));
        const char *msg = json_string_value(json_object_get(it, "message"));
        json_int_t row = json_integer_value(json_object_get(it, "row"));
        if (row <= 0) {
            add_error(errors, code ? code : "400", msg ? msg : "");
            continue;
        }
        char rowtxt[32];
        snprintf(rowtxt, sizeof(rowtxt), "%lld", (long long)row);
        char *desc = field && field[0]
                         ? xasprintf("%s row %s: field '%s': %s", file ? file : "", rowtxt, field,
                                     msg ? msg : "")
                         : xasprintf("%s row %s: %s", file ? file : "", rowtxt, msg ? msg : "");
        json_array_append_new(errors, json_pack("{s:s, s:s, s:[s], s:i}", "code",
                                                code ? code : "400", "description", desc, "rows",
                                                rowtxt, "recordCount", 1));
        free(desc);
    }
}

static json_t *make_metrics(const struct staged *in, const struct engine_result *res, bool landed)
{
    return json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "inputByteSize",
                     (json_int_t)in->bytes, "inputFileCount", (json_int_t)in->n,
                     "inputRecordCount", (json_int_t)res->input_records, "outputRecordCount",
                     (json_int_t)(landed ? res->output_records : 0), "failedRecordCount",
                     (json_int_t)res->failed_records, "outputByteSize",
                     (json_int_t)(landed ? res->output_bytes : 0), "outputFileCount",
                     (json_int_t)(landed ? res->output_files : 0));
}

static bool is_multiline(const json_t *input_format)
{
    const json_t *v = json_object_get(input_format, "isMultiLineJson");
    if (json_is_boolean(v))
        return json_is_true(v);
    const char *s = json_string_value(v);
    return s && !strcasecmp(s, "true");
}

/* Compile the plan of a dataset's schema. Returns 0 or an ING_E* code with err filled. */
static int compile_plan(struct pipeline *p, const char *sandbox, const json_t *dataset,
                        struct xdm_plan **plan, struct ing_err *err)
{
    const char *schema_id =
        json_string_value(json_object_get(json_object_get(dataset, "schemaRef"), "id"));
    if (!schema_id)
        return ing_err_set(err, ING_EINVAL, "The dataset has no schemaRef.id.");
    json_t *full = NULL, *idds = NULL;
    int rc = registry_resolve(p->reg, sandbox, schema_id, &full, err);
    if (rc == 0)
        rc = registry_identity_descriptors(p->reg, sandbox, schema_id, &idds, err);
    if (rc == 0)
        rc = xdm_plan_compile(full, idds, plan, err);
    json_decref(full);
    json_decref(idds);
    return rc;
}

static void run_batch(struct pipeline *p, const char *sandbox, const char *batch_id)
{
    int64_t t0 = clock_mono_ns();
    struct ing_err err;
    ing_err_clear(&err);
    json_t *batch = NULL, *dataset = NULL, *metrics = NULL, *errors = json_array();
    struct xdm_plan *plan = NULL;
    struct staged in = {0};
    struct engine_result res = {0};
    char *tmp = NULL, *preview_path = NULL;
    const char *status = "failed";
    bool promoted = false;
    int rc;

    const char *dataset_id = NULL;
    if (catalog_batch_get(p->cat, sandbox, batch_id, &batch, &err) != 0) {
        add_error(errors, "500", err.msg);
        goto finish;
    }
    dataset_id = batch_dataset_id(batch);
    if (!dataset_id || !id_is_safe(dataset_id)) {
        add_error(errors, "400", "The batch names no valid dataset.");
        dataset_id = NULL;
        goto finish;
    }
    if (catalog_dataset_get(p->cat, sandbox, dataset_id, &dataset, &err) != 0) {
        char *d = xasprintf("Dataset %s cannot be read: %s", dataset_id, err.msg);
        add_error(errors, err.code == ING_ENOTFOUND ? "404" : "500", d);
        free(d);
        goto finish;
    }
    const json_t *input_format = json_object_get(batch, "inputFormat");
    const char *format = json_string_value(json_object_get(input_format, "format"));
    if (format && strcasecmp(format, "json") != 0) {
        char *d = xasprintf("Input format '%s' is not supported; ingot ingests JSON batches "
                            "(inputFormat.format \"json\").", format);
        add_error(errors, "400", d);
        free(d);
        goto finish;
    }

    in.root = lake_staging_dir(p->lake, sandbox, batch_id, dataset_id);
    if (fs_walk_files(in.root, collect_staged, &in, &err) != 0) {
        add_error(errors, "500", err.msg);
        goto finish;
    }
    if (in.n == 0) {
        add_error(errors, "133", "We are unable to locate any files uploaded for this batch. "
                                 "Please upload files to ingest.");
        goto finish;
    }
    log_info("batch start sandbox=%s batch=%s dataset=%s files=%zu bytes=%lld", sandbox,
             batch_id, dataset_id, in.n, (long long)in.bytes);

    if (compile_plan(p, sandbox, dataset, &plan, &err) != 0) {
        char *d = err.field[0] ? xasprintf("The dataset's schema cannot be used: field '%s': %s",
                                           err.field, err.msg)
                               : xasprintf("The dataset's schema cannot be used: %s", err.msg);
        add_error(errors, "400", d);
        free(d);
        goto finish;
    }

    tmp = lake_batch_tmp_dir(p->lake, sandbox, dataset_id, batch_id);
    fs_rm_rf(tmp, NULL); /* leftovers of an earlier, interrupted run */
    struct engine_opts eopts = {
        .format = ENGINE_JSON,
        .multiline = is_multiline(input_format),
        .parquet = {.codec = PQ_CODEC_ZSTD},
        .preview_rows = PIPELINE_PREVIEW_ROWS,
        .max_failed_rows = 0, /* no partial ingestion yet: the first bad row fails the batch */
    };
    rc = engine_run(plan, in.files, in.n, &eopts, tmp, &res, &err);
    if (rc != 0) {
        add_engine_errors(errors, res.errors);
        if (json_array_size(errors) == 0) {
            char *d = err.file[0] ? xasprintf("%s: %s", err.file, err.msg) : xstrdup(err.msg);
            add_error(errors, "500", d);
            free(d);
        }
        goto finish;
    }

    char *preview = res.preview ? json_dumps(res.preview, JSON_COMPACT) : NULL;
    if (!preview)
        preview = xstrdup("[]");
    preview_path = xasprintf("%s/_preview.json", tmp);
    rc = fs_write_atomic(preview_path, preview, strlen(preview), &err);
    free(preview);
    if (rc == 0)
        rc = lake_promote(p->lake, sandbox, dataset_id, batch_id, &err);
    if (rc != 0) {
        add_error(errors, "500", err.msg);
        goto finish;
    }
    promoted = true;
    metrics = make_metrics(&in, &res, true);
    rc = catalog_batch_finish(p->cat, sandbox, batch_id, "success", metrics, NULL, res.files,
                              &err);
    if (rc == 0) {
        status = "success";
        goto out;
    }
    /* The catalog did not take it (aborted meanwhile, or the store failed): nobody may read
     * output that no committed batch owns. */
    log_error("batch commit failed sandbox=%s batch=%s: %s", sandbox, batch_id, err.msg);
    char *d = xasprintf("The batch could not be committed: %s", err.msg);
    add_error(errors, "500", d);
    free(d);

finish:
    if (dataset_id) {
        if (promoted)
            remove_output(p, sandbox, dataset_id, batch_id);
        else if (tmp)
            fs_rm_rf(tmp, NULL);
    }
    json_decref(metrics);
    metrics = make_metrics(&in, &res, false);
    if (catalog_batch_finish(p->cat, sandbox, batch_id, "failed", metrics, errors, NULL, &err) != 0)
        log_warn("batch not marked failed sandbox=%s batch=%s: %s", sandbox, batch_id, err.msg);
out:
    log_info("batch end sandbox=%s batch=%s status=%s records_in=%lld records_out=%lld "
             "failed=%lld bytes_out=%lld files_out=%lld duration_ms=%lld",
             sandbox, batch_id, status, (long long)res.input_records,
             (long long)(promoted ? res.output_records : 0), (long long)res.failed_records,
             (long long)(promoted ? res.output_bytes : 0),
             (long long)(promoted ? res.output_files : 0),
             (long long)((clock_mono_ns() - t0) / 1000000));
    if (strcmp(status, "success") != 0 && json_array_size(errors) > 0) {
        /* logfmt quotes the value: the description's own quotes become single ones. */
        const char *first =
            json_string_value(json_object_get(json_array_get(errors, 0), "description"));
        char *quoted = xstrdup(first ? first : "");
        for (char *c = quoted; *c; c++)
            if (*c == '"' || *c == '\\' || *c == '\n')
                *c = '\'';
        log_info("batch error sandbox=%s batch=%s error=\"%s\"", sandbox, batch_id, quoted);
        free(quoted);
    }
    engine_result_free(&res);
    xdm_plan_free(plan);
    staged_free(&in);
    free(tmp);
    free(preview_path);
    json_decref(metrics);
    json_decref(errors);
    json_decref(dataset);
    json_decref(batch);
}

/* ------------------------------------------------------------------------------------------ */
/* Workers                                                                                     */

/* Look at the store for queued batches and run the first one this worker wins. True when a batch
 * ran (there may be more: look again at once). */
static bool claim_and_run(struct pipeline *p)
{
    struct store_filter f = {.property = "status", .op = STORE_EQ, .value = "queued"};
    struct store_query q = {.filters = &f, .nfilters = 1, .limit = PIPELINE_SCAN_LIMIT};
    json_t *found = NULL;
    struct ing_err err;
    ing_err_clear(&err);
    if (store_scan_all(p->st, CAT_KIND_BATCH, &q, &found, &err) != 0) {
        log_warn("pipeline: cannot scan for queued batches: %s", err.msg);
        return false;
    }
    bool ran = false;
    size_t i;
    json_t *it;
    json_array_foreach(found, i, it) {
        const char *sandbox = json_string_value(json_object_get(it, "sandbox"));
        const char *id = json_string_value(json_object_get(it, "id"));
        if (!sandbox || !id)
            continue;
        static const char *const from[] = {"queued", NULL};
        json_t *patch = json_pack("{s:I}", "started", (json_int_t)clock_now_ms());
        ing_err_clear(&err);
        int rc = catalog_batch_transition(p->cat, sandbox, id, from, "processing", patch, &err);
        json_decref(patch);
        if (rc == ING_ESTATE)
            continue; /* another worker has it, or it was aborted */
        if (rc != 0) {
            log_warn("pipeline: cannot claim batch sandbox=%s batch=%s: %s", sandbox, id, err.msg);
            continue;
        }
        run_batch(p, sandbox, id);
        ran = true;
        break;
    }
    json_decref(found);
    return ran;
}

static void *worker_main(void *arg)
{
    struct pipeline *p = arg;
    for (;;) {
        pthread_mutex_lock(&p->mu);
        bool stop = p->stopping;
        pthread_mutex_unlock(&p->mu);
        if (stop)
            break;
        if (claim_and_run(p))
            continue;
        pthread_mutex_lock(&p->mu);
        if (!p->stopping && p->pending == 0) {
            struct timespec deadline;
            clock_gettime(CLOCK_MONOTONIC, &deadline);
            deadline.tv_sec += PIPELINE_POLL_MS / 1000;
            pthread_cond_timedwait(&p->cv, &p->mu, &deadline);
        }
        if (p->pending > 0)
            p->pending--;
        pthread_mutex_unlock(&p->mu);
    }
    return NULL;
}

/* ------------------------------------------------------------------------------------------ */
/* Start-up recovery                                                                            */

static void recover_processing(struct pipeline *p)
{
    struct store_filter f = {.property = "status", .op = STORE_EQ, .value = "processing"};
    struct store_query q = {.filters = &f, .nfilters = 1};
    json_t *found = NULL;
    struct ing_err err;
    ing_err_clear(&err);
    if (store_scan_all(p->st, CAT_KIND_BATCH, &q, &found, &err) != 0) {
        log_warn("pipeline: recovery scan failed: %s", err.msg);
        return;
    }
    size_t i;
    json_t *it;
    json_array_foreach(found, i, it) {
        const char *sandbox = json_string_value(json_object_get(it, "sandbox"));
        const char *id = json_string_value(json_object_get(it, "id"));
        const char *dataset_id = batch_dataset_id(json_object_get(it, "doc"));
        if (!sandbox || !id)
            continue;
        if (dataset_id)
            remove_output(p, sandbox, dataset_id, id);
        static const char *const from[] = {"processing", NULL};
        ing_err_clear(&err);
        if (catalog_batch_transition(p->cat, sandbox, id, from, "queued", NULL, &err) == 0) {
            log_info("batch requeued after restart sandbox=%s batch=%s", sandbox, id);
            continue;
        }
        /* It cannot run again: say so rather than leave it "processing" for ever. */
        log_warn("batch not requeued sandbox=%s batch=%s: %s", sandbox, id, err.msg);
        json_t *errors = json_array();
        add_error(errors, "500", "Processing was interrupted by a restart and could not be "
                                 "resumed. Please create a new batch and upload the files again.");
        ing_err_clear(&err);
        if (catalog_batch_finish(p->cat, sandbox, id, "failed", NULL, errors, NULL, &err) != 0)
            log_warn("batch not marked failed sandbox=%s batch=%s: %s", sandbox, id, err.msg);
        json_decref(errors);
    }
    json_decref(found);
}

static int64_t count_queued(struct pipeline *p)
{
    struct store_filter f = {.property = "status", .op = STORE_EQ, .value = "queued"};
    struct store_query q = {.filters = &f, .nfilters = 1};
    json_t *found = NULL;
    if (store_scan_all(p->st, CAT_KIND_BATCH, &q, &found, NULL) != 0)
        return 0;
    int64_t n = (int64_t)json_array_size(found);
    json_decref(found);
    return n;
}

static void stop_threads(struct pipeline *p)
{
    pthread_mutex_lock(&p->mu);
    p->stopping = true;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    for (unsigned i = 0; i < p->nthreads; i++)
        pthread_join(p->threads[i], NULL);
    p->nthreads = 0;
}

static void pipeline_free(struct pipeline *p)
{
    pthread_cond_destroy(&p->cv);
    pthread_mutex_destroy(&p->mu);
    free(p->threads);
    free(p);
}

int pipeline_start(struct pipeline **out, struct catalog *cat, struct registry *reg,
                   struct lake *lake, const struct pipeline_opts *opts, struct ing_err *err)
{
    *out = NULL;
    if (!cat || !reg || !lake)
        return ing_err_set(err, ING_EINVAL, "pipeline: catalog, registry and lake are required");
    struct pipeline *p = xcalloc(1, sizeof(*p));
    p->cat = cat;
    p->reg = reg;
    p->lake = lake;
    p->st = catalog_store(cat);
    unsigned want = opts && opts->workers ? opts->workers : PIPELINE_DEFAULT_WORKERS;
    pthread_mutex_init(&p->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&p->cv, &ca);
    pthread_condattr_destroy(&ca);

    recover_processing(p);
    int64_t queued = count_queued(p);
    p->pending = queued > (int64_t)want ? want : (unsigned)queued;

    p->threads = xcalloc(want, sizeof(*p->threads));
    for (unsigned i = 0; i < want; i++) {
        int e = pthread_create(&p->threads[i], NULL, worker_main, p);
        if (e != 0) {
            stop_threads(p);
            pipeline_free(p);
            return ing_err_set(err, ING_EINTERNAL, "pipeline: cannot start a worker: %s",
                               strerror(e));
        }
        p->nthreads++;
    }
    log_info("pipeline started workers=%u queued=%lld", want, (long long)queued);
    *out = p;
    return 0;
}

void pipeline_enqueue(struct pipeline *p, const char *sandbox, const char *batch_id)
{
    (void)sandbox;
    (void)batch_id; /* the store says what is queued; this only wakes a worker */
    if (!p)
        return;
    pthread_mutex_lock(&p->mu);
    p->pending++;
    pthread_cond_signal(&p->cv);
    pthread_mutex_unlock(&p->mu);
}

void pipeline_stop(struct pipeline *p)
{
    if (!p)
        return;
    stop_threads(p);
    pipeline_free(p);
}
