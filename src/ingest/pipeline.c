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
 *
 * Speculative runs (pipeline_speculate): one thread per file being uploaded runs the engine over
 * the bytes received so far (engine_spec_*), into a private folder. run_batch takes the runs of
 * its batch off the list, waits for those whose upload was sealed (the rest are stopped), and
 * hands them to engine_run, which merges each one that still stands for its staged file. A run
 * that cannot be set up, whose upload changed, or that gives up waiting (idle limit, batch no
 * longer open) takes itself off the list and frees its slot (spec_retire). Runs live in memory
 * only; their folders are removed at start-up.
 */
#include "ingest/pipeline.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "ingest/diag.h"
#include "ingest/engine.h"
#include "lake/upload.h"
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
/* Per-row entries in a failed batch's errors[]; the diagnostics files hold every row. */
#define PIPELINE_MAX_ROW_ERRORS 100
#define PIPELINE_DEFAULT_RETRIES 3
#define PIPELINE_DEFAULT_BACKOFF_MS 1000
#define PIPELINE_MAX_BACKOFF_MS (10 * 60 * 1000)
#define PIPELINE_DEFAULT_RETENTION_MS ((int64_t)30 * 24 * 3600 * 1000)
#define PIPELINE_DEFAULT_SWEEP_MS ((int64_t)3600 * 1000)
/* Speculative runs alive at once (each holds a thread, one or two cores while the upload lasts,
 * and a row group of memory per range). */
#define PIPELINE_MAX_SPECS 2
/* A speculative run waiting at the mark gives up after this long without a new byte (an upload
 * abandoned half-way must not hold a slot, a thread and a file until shutdown); it looks every
 * PIPELINE_SPEC_CHECK_MS whether its batch is still open. INGOT_SPEC_IDLE_MS overrides the
 * limit (a test hook). */
#define PIPELINE_SPEC_IDLE_MS ((int64_t)10 * 60 * 1000)
#define PIPELINE_SPEC_CHECK_MS 1000

struct spec_entry;

struct pipeline {
    struct catalog *cat;
    struct registry *reg;
    struct lake *lake;
    struct store *st;
    pthread_t *threads;
    unsigned nthreads;
    pthread_mutex_t mu;
    pthread_cond_t cv;          /* nudged by pipeline_enqueue and pipeline_stop */
    pthread_cond_t stop_cv;     /* broadcast by pipeline_stop only: retry waits and the sweeper */
    bool stopping;
    unsigned pending;           /* nudges not yet answered by a look at the store */
    int retries;
    enum pq_codec codec;        /* lake Parquet compression */
    int ingest_threads;         /* engine_opts.threads of every batch */
    int64_t backoff_ms;
    int64_t retention_ms;
    int64_t sweep_ms;
    int64_t faults_left;        /* INGOT_FAULT_WRITE_FAILS: runs still to fail (test hook) */
    pthread_t sweeper;
    bool sweeper_live;
    struct spec_entry *specs;   /* speculative runs, under mu */
    unsigned nspecs;
    struct spec_entry *spec_dead; /* runs that took themselves off `specs` (set-up failed or
                                     gave up), their thread to be joined; under mu */
    int64_t spec_idle_ms;
    unsigned spec_seq;          /* names their folders, under mu */
};


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
    json_t *listing;            /* [{"name","size"}], for the diagnostics' input_files */
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
    s->files[s->n] = (struct engine_file){.path = xasprintf("%s/%s", s->root, relpath),
                                          .name = xstrdup(relpath)};
    s->n++;
    s->bytes += size;
    if (!s->listing)
        s->listing = json_array();
    json_array_append_new(s->listing, json_pack("{s:s, s:I}", "name", relpath, "size",
                                                (json_int_t)size));
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
    json_decref(s->listing);
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
                        struct xdm_plan **plan, char **fingerprint, struct ing_err *err)
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
    if (rc == 0 && fingerprint) {
        /* What the plan was made of, to tell whether a speculative run used the same schema. */
        char *a = json_dumps(full, JSON_COMPACT | JSON_SORT_KEYS);
        char *b = idds ? json_dumps(idds, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
        *fingerprint = xasprintf("%s\n%s", a ? a : "", b ? b : "");
        free(a);
        free(b);
    }
    json_decref(full);
    json_decref(idds);
    return rc;
}

/* Put a run's diagnostics in place: the input listing, then the whole folder by rename. They are
 * auxiliary, so failing to publish them is logged, not fatal to the batch. */
static void publish_diagnostics(struct pipeline *p, const char *sandbox, const char *batch_id,
                                const struct staged *in, const char *diag_tmp,
                                const char *diag_final)
{
    struct ing_err err;
    ing_err_clear(&err);
    json_t *none = json_array();
    int rc = diag_write_input_files(diag_tmp, in->listing ? in->listing : none, &err);
    json_decref(none);
    if (rc == 0)
        rc = diag_publish(diag_tmp, diag_final, batch_id, clock_now_ms(), &err);
    if (rc != 0)
        log_warn("batch diagnostics not published sandbox=%s batch=%s: %s", sandbox, batch_id,
                 err.msg);
    (void)p;
}

/* What the batch asks for: diagnostics, and the partial ingestion threshold (percent). */
struct batch_settings {
    bool diagnostics;
    bool partial;
    double percent;
};

static bool is_true(const json_t *v)
{
    const char *s = json_string_value(v);
    return json_is_true(v) || (s && !strcasecmp(s, "true"));
}

static struct batch_settings read_settings(const json_t *batch, const json_t *dataset)
{
    struct batch_settings set = {0};
    const json_t *tags = json_object_get(batch, "tags");
    set.diagnostics = is_true(json_object_get(batch, "enableErrorDiagnostics")) ||
                      is_true(json_object_get(tags, "acp_enableErrorDiagnostics")) ||
                      is_true(json_object_get(dataset, "enableErrorDiagnostics"));
    const json_t *pct = json_object_get(batch, "partialIngestionPercent");
    if (!json_is_number(pct))
        pct = json_object_get(tags, "acp_partialIngestionPercent");
    if (json_is_number(pct)) {
        set.partial = true;
        set.percent = json_number_value(pct);
    }
    return set;
}

/* errors[] entries with recordCount, one per kind of bad row that occurred. */
static void add_kind_errors(json_t *errors, const struct engine_result *res)
{
    for (int k = 0; k < DIAG_NKINDS; k++) {
        if (res->failed_by_kind[k] == 0)
            continue;
        json_array_append_new(errors, json_pack("{s:s, s:s, s:[], s:I}", "code",
                                                diag_kind_aep_code((enum diag_kind)k),
                                                "description",
                                                diag_kind_description((enum diag_kind)k), "rows",
                                                "recordCount",
                                                (json_int_t)res->failed_by_kind[k]));
    }
}

/* Per-row errors of a failed batch, capped: the diagnostics files have them all. */
static void add_row_errors(json_t *errors, const json_t *items)
{
    json_t *capped = json_array();
    size_t i;
    json_t *it;
    json_array_foreach(items, i, it) {
        if (i >= PIPELINE_MAX_ROW_ERRORS)
            break;
        json_array_append(capped, it);
    }
    add_engine_errors(errors, capped);
    json_decref(capped);
}

/* The next run of a batch should fail writing its output (INGOT_FAULT_WRITE_FAILS). */
static bool take_fault(struct pipeline *p)
{
    pthread_mutex_lock(&p->mu);
    bool take = p->faults_left > 0;
    if (take)
        p->faults_left--;
    pthread_mutex_unlock(&p->mu);
    return take;
}

/*
 * Between two runs of a batch: processing -> retrying, wait, retrying -> processing. False when
 * the batch must not run again now: the pipeline is stopping (the batch stays "retrying" and is
 * re-queued at the next start) or the batch left "retrying" meanwhile (aborted).
 */
static bool wait_retry(struct pipeline *p, const char *sandbox, const char *batch_id, int attempt,
                       const struct ing_err *why)
{
    static const char *const from_processing[] = {"processing", NULL};
    static const char *const from_retrying[] = {"retrying", NULL};
    struct ing_err err;
    ing_err_clear(&err);
    if (catalog_batch_transition(p->cat, sandbox, batch_id, from_processing, "retrying", NULL,
                                 &err) != 0) {
        log_warn("batch not moved to retrying sandbox=%s batch=%s: %s", sandbox, batch_id,
                 err.msg);
        return false;
    }
    int64_t wait_ms = p->backoff_ms;
    for (int i = 0; i < attempt && wait_ms < PIPELINE_MAX_BACKOFF_MS; i++)
        wait_ms *= 2;
    if (wait_ms > PIPELINE_MAX_BACKOFF_MS)
        wait_ms = PIPELINE_MAX_BACKOFF_MS;
    log_info("batch retrying sandbox=%s batch=%s attempt=%d wait_ms=%lld reason=\"%s\"", sandbox,
             batch_id, attempt + 1, (long long)wait_ms, why->msg);
    struct timespec deadline;
    clock_deadline_mono_ts(&deadline, wait_ms);
    pthread_mutex_lock(&p->mu);
    while (!p->stopping && pthread_cond_timedwait(&p->stop_cv, &p->mu, &deadline) == 0)
        ;
    bool stopping = p->stopping;
    pthread_mutex_unlock(&p->mu);
    if (stopping)
        return false;
    json_t *patch = json_pack("{s:I}", "started", (json_int_t)clock_now_ms());
    int rc = catalog_batch_transition(p->cat, sandbox, batch_id, from_retrying, "processing",
                                      patch, &err);
    json_decref(patch);
    if (rc != 0)
        log_info("batch not rerun sandbox=%s batch=%s: %s", sandbox, batch_id, err.msg);
    return rc == 0;
}

/* The engine options of a batch's run; a speculative run takes the same. */
static struct engine_opts batch_engine_opts(const struct pipeline *p, const json_t *input_format,
                                            bool parquet, const struct batch_settings *set)
{
    return (struct engine_opts){
        .format = parquet ? ENGINE_PARQUET : ENGINE_JSON,
        .multiline = is_multiline(input_format),
        .parquet = {.codec = p->codec},
        .threads = p->ingest_threads,
        .preview_rows = PIPELINE_PREVIEW_ROWS,
        /* Without partial ingestion the first bad row decides, unless diagnostics should name
         * every bad row; with it, the share of bad rows is known only at the end. */
        .max_failed_rows = set->partial || set->diagnostics ? -1 : 0,
    };
}

/* ------------------------------------------------------------------------------------------ */
/* Speculative runs                                                                            */

struct spec_entry {
    struct spec_entry *next;    /* p->specs, under p->mu; or a batch's list once taken */
    struct pipeline *p;
    char *sandbox, *batch_id, *dataset_id, *file_path, *key;
    int fd;                     /* the file, until the run takes it */
    struct upl_watch *watch;
    struct engine_spec *spec;   /* set (under p->mu) once the run is set up; NULL if it gave up */
    struct xdm_plan *plan;
    char *fingerprint;
    unsigned seq;
    bool stop;                  /* under p->mu: the run must not start (or stop) */
    bool listed;                /* under p->mu: on p->specs (not taken by a batch or a stop) */
    bool gave_up;               /* under p->mu: the source gave up (idle, batch gone) */
    bool joined;                /* its thread was waited for */
    pthread_t thread;
};

/* A batch a speculative run may still serve: loading, or queued/processing (a client may
 * COMPLETE right after the last bytes; the batch's run then takes the speculative one). */
static bool batch_open(const json_t *batch)
{
    const char *status = json_string_value(json_object_get(batch, "status"));
    return status && (strcmp(status, "loading") == 0 || strcmp(status, "queued") == 0 ||
                      strcmp(status, "processing") == 0);
}

/* Whether a run waiting at the mark should stop waiting: stopped, stopping, its batch no longer
 * open (ABORT, FAIL, or a batch that was completed without it), or no new byte for too long. */
static bool spec_give_up(struct spec_entry *e, int64_t waited_ms, struct ing_err *err)
{
    struct pipeline *p = e->p;
    pthread_mutex_lock(&p->mu);
    bool stop = e->stop || p->stopping;
    int64_t idle_ms = p->spec_idle_ms;
    pthread_mutex_unlock(&p->mu);
    if (stop) {
        ing_err_set(err, ING_ESTATE, "the speculative run was stopped");
        return true;
    }
    if (waited_ms >= idle_ms) {
        ing_err_set(err, ING_ESTATE, "no byte of the file arrived for %lld ms",
                    (long long)waited_ms);
        return true;
    }
    json_t *batch = NULL;
    bool open = false;
    if (catalog_batch_get(p->cat, e->sandbox, e->batch_id, &batch, NULL) == 0)
        open = batch_open(batch);
    json_decref(batch);
    if (!open)
        ing_err_set(err, ING_ESTATE, "the batch is no longer open");
    return !open;
}


/* The engine's source: the watch, waited on in slices so that a run blocked at the mark can
 * see that nobody will send the rest (spec_give_up). */
static int spec_source_wait(void *ctx, int64_t have, int64_t *avail, int64_t *final_size,
                            struct ing_err *err)
{
    struct spec_entry *e = ctx;
    if (have < 0)
        return upl_watch_wait(e->watch, have, avail, final_size, err);
    int64_t t0 = clock_mono_ns();
    for (;;) {
        int64_t slice = e->p->spec_idle_ms < PIPELINE_SPEC_CHECK_MS ? e->p->spec_idle_ms
                                                                      : PIPELINE_SPEC_CHECK_MS;
        int rc = upl_watch_wait_ms(e->watch, have, slice, avail, final_size, err);
        if (rc != 0 || *final_size >= 0 || *avail > have)
            return rc;
        if (spec_give_up(e, (clock_mono_ns() - t0) / 1000000, err)) {
            pthread_mutex_lock(&e->p->mu);
            e->gave_up = true;
            pthread_mutex_unlock(&e->p->mu);
            return ING_ESTATE;
        }
    }
}

/* Set up the engine's run: what run_batch would run the file with, as the batch and dataset
 * stand now. False when the file cannot be processed ahead (then the batch runs it as usual). */
static bool spec_setup(struct spec_entry *e, struct engine_spec **out)
{
    struct pipeline *p = e->p;
    struct ing_err err;
    ing_err_clear(&err);
    json_t *batch = NULL, *dataset = NULL;
    char *dir = NULL;
    bool ok = false;
    if (catalog_batch_get(p->cat, e->sandbox, e->batch_id, &batch, &err) != 0)
        goto out;
    /* Queued or processing too: a client may COMPLETE right after the last bytes, before this
     * thread got here; the batch's run has taken this entry and waits for it. */
    const char *ds = catalog_batch_dataset_id(batch);
    if (!batch_open(batch) || !ds || strcmp(ds, e->dataset_id) != 0)
        goto out;
    const json_t *input_format = json_object_get(batch, "inputFormat");
    const char *format = json_string_value(json_object_get(input_format, "format"));
    if ((format && strcasecmp(format, "json") != 0) || is_multiline(input_format))
        goto out;
    if (catalog_dataset_get(p->cat, e->sandbox, e->dataset_id, &dataset, &err) != 0 ||
        compile_plan(p, e->sandbox, dataset, &e->plan, &e->fingerprint, &err) != 0)
        goto out;
    struct batch_settings set = read_settings(batch, dataset);
    struct engine_opts eopts = batch_engine_opts(p, input_format, false, &set);
    struct engine_source src = {.wait = spec_source_wait, .ctx = e};
    dir = lake_spec_dir(p->lake, e->sandbox, e->dataset_id, e->batch_id, e->seq);
    int fd = e->fd;
    e->fd = -1;
    ok = engine_spec_new(out, e->plan, &eopts, set.diagnostics, fd, &src, dir, &err) == 0;
out:
    if (!ok)
        log_debug("speculative run not started batch=%s path=%s: %s", e->batch_id, e->file_path,
                  err.msg[0] ? err.msg : "not a plain JSON batch, or no longer open");
    json_decref(batch);
    json_decref(dataset);
    free(dir);
    return ok;
}

/* A run of no further use that is still on p->specs takes itself off, onto p->spec_dead, and
 * lets go of its file and private folder at once: it must not keep a slot a useful run could
 * have, nor wait for a batch that will never take it. The next pipeline_speculate, run_batch or
 * the stop joins its thread and frees the rest. A run already taken (by its batch, a
 * replacement, an eviction or the stop) is stopped, joined and freed by whoever took it. */
static void spec_retire(struct spec_entry *e, const char *why)
{
    struct pipeline *p = e->p;
    struct engine_spec *spec = NULL;
    pthread_mutex_lock(&p->mu);
    bool was_listed = e->listed;
    if (was_listed) {
        for (struct spec_entry **pp = &p->specs; *pp; pp = &(*pp)->next) {
            if (*pp == e) {
                *pp = e->next;
                break;
            }
        }
        e->listed = false;
        p->nspecs--;
        e->next = p->spec_dead;
        p->spec_dead = e;
        /* Whoever reaps it joins this thread before it looks at the run again. */
        spec = e->spec;
        e->spec = NULL;
    }
    pthread_mutex_unlock(&p->mu);
    if (!was_listed)
        return;
    engine_spec_free(spec); /* its folder goes now */
    if (e->fd >= 0) {
        close(e->fd);
        e->fd = -1;
    }
    log_debug("speculative run retired batch=%s path=%s: %s", e->batch_id, e->file_path, why);
}

static void *spec_main(void *arg)
{
    struct spec_entry *e = arg;
    struct engine_spec *spec = NULL;
    if (!spec_setup(e, &spec)) {
        spec_retire(e, "not set up");
        return NULL;
    }
    pthread_mutex_lock(&e->p->mu);
    bool stop = e->stop;
    if (!stop)
        e->spec = spec;
    pthread_mutex_unlock(&e->p->mu);
    if (stop) {
        engine_spec_free(spec);
        return NULL;
    }
    int64_t t0 = clock_mono_ns();
    engine_spec_run(spec);
    log_debug("speculative run ended batch=%s path=%s ms=%.1f", e->batch_id, e->file_path,
              (double)(clock_mono_ns() - t0) / 1e6);
    pthread_mutex_lock(&e->p->mu);
    bool gave_up = e->gave_up;
    pthread_mutex_unlock(&e->p->mu);
    int64_t final_size;
    if (gave_up)
        spec_retire(e, "gave up waiting for the upload");
    else if (upl_watch_state(e->watch, &final_size))
        spec_retire(e, "the upload changed");
    return NULL;
}

/* Free an entry no thread uses (its run ended and was joined, or never started): its engine
 * run, its reference on the upload's watch (released only: whether the watch is abandoned is
 * the caller's call, as a run that never started must leave the upload's watch alone), its file
 * and strings. */
static void spec_entry_release(struct spec_entry *e)
{
    engine_spec_free(e->spec);
    upl_watch_release(e->watch);
    if (e->fd >= 0)
        close(e->fd);
    xdm_plan_free(e->plan);
    free(e->fingerprint);
    free(e->sandbox);
    free(e->batch_id);
    free(e->dataset_id);
    free(e->file_path);
    free(e->key);
    free(e);
}

/* Ask a run to stop, and wake it if it waits for upload bytes (abandoning the upload's watch). */
static void spec_entry_stop(struct spec_entry *e)
{
    pthread_mutex_lock(&e->p->mu);
    e->stop = true;
    if (e->spec)
        engine_spec_stop(e->spec);
    pthread_mutex_unlock(&e->p->mu);
    upl_watch_abandon(e->watch); /* wakes a run waiting for bytes */
}

/* Stop a run taken off p->specs, wait for its thread and free it. */
static void spec_entry_free(struct spec_entry *e)
{
    spec_entry_stop(e);
    if (!e->joined)
        pthread_join(e->thread, NULL);
    spec_entry_release(e);
}

static void specs_free(struct spec_entry *list)
{
    while (list) {
        struct spec_entry *next = list->next;
        spec_entry_free(list);
        list = next;
    }
}

/* Take the retired runs (their threads have ended or are ending). */
static struct spec_entry *take_dead(struct pipeline *p)
{
    pthread_mutex_lock(&p->mu);
    struct spec_entry *dead = p->spec_dead;
    p->spec_dead = NULL;
    pthread_mutex_unlock(&p->mu);
    return dead;
}

/* Take off p->specs the runs of a batch (all when batch_id is NULL), or the one under `key`. */
static struct spec_entry *take_specs_where(struct pipeline *p, const char *sandbox,
                                           const char *batch_id, const char *key)
{
    struct spec_entry *taken = NULL;
    pthread_mutex_lock(&p->mu);
    for (struct spec_entry **pp = &p->specs; *pp;) {
        struct spec_entry *e = *pp;
        bool hit = key ? strcmp(e->key, key) == 0
                       : !batch_id || (strcmp(e->sandbox, sandbox) == 0 &&
                                       strcmp(e->batch_id, batch_id) == 0);
        if (!hit) {
            pp = &e->next;
            continue;
        }
        *pp = e->next;
        e->next = taken;
        taken = e;
        e->listed = false;
        p->nspecs--;
    }
    pthread_mutex_unlock(&p->mu);
    return taken;
}

static struct spec_entry *take_specs(struct pipeline *p, const char *sandbox,
                                     const char *batch_id)
{
    return take_specs_where(p, sandbox, batch_id, NULL);
}

/*
 * Give each staged file its speculative run when the run can stand for reading it now: the
 * upload was sealed with the file's final size and never cancelled, the schema is the one the
 * batch runs with. Each run is waited for here (it reads the rest of the file); the engine makes
 * the last checks (same file, same options) and merges it. Runs that cannot be used are stopped.
 */
static void attach_specs(struct spec_entry *specs, const char *dataset_id,
                         const char *fingerprint, struct staged *in)
{
    for (struct spec_entry *e = specs; e; e = e->next) {
        int64_t final_size = -1;
        bool cancelled = upl_watch_state(e->watch, &final_size);
        bool usable = !cancelled && final_size >= 0 && strcmp(e->dataset_id, dataset_id) == 0;
        if (!usable)
            spec_entry_stop(e);
        int64_t t0 = clock_mono_ns();
        pthread_join(e->thread, NULL);
        e->joined = true;
        if (!usable || !e->spec || !e->fingerprint || !fingerprint ||
            strcmp(e->fingerprint, fingerprint) != 0)
            continue;
        for (size_t i = 0; i < in->n; i++) {
            if (strcmp(in->files[i].name, e->file_path) == 0) {
                in->files[i].spec = e->spec;
                log_debug("speculative run ready batch=%s path=%s wait_ms=%.1f", e->batch_id,
                          e->file_path, (double)(clock_mono_ns() - t0) / 1e6);
                break;
            }
        }
    }
}

bool pipeline_speculate(struct pipeline *p, const char *sandbox, const char *batch_id,
                        const char *dataset_id, const char *file_path, const char *read_path,
                        const char *key, struct upl_watch *watch)
{
    if (!p || !sandbox || !batch_id || !dataset_id || !file_path || !read_path || !key ||
        !watch)
        return false;
    /* Runs that retired themselves first; then a new file under the same name: the earlier run
     * read another file. */
    specs_free(take_dead(p));
    specs_free(take_specs_where(p, NULL, NULL, key));
    int fd = open(read_path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    struct spec_entry *e = xcalloc(1, sizeof(*e));
    e->p = p;
    e->sandbox = xstrdup(sandbox);
    e->batch_id = xstrdup(batch_id);
    e->dataset_id = xstrdup(dataset_id);
    e->file_path = xstrdup(file_path);
    e->key = xstrdup(key);
    e->fd = fd;
    e->watch = watch;
    upl_watch_ref(watch);
    pthread_mutex_lock(&p->mu);
    /* Full: a run whose upload changed goes first (it cannot be used), else the oldest (a batch
     * whose upload stopped half-way, or that will never be completed, must not keep newer
     * uploads from being read ahead). Its batch, if completed later, reads the file as usual. */
    struct spec_entry *evicted = NULL;
    if (!p->stopping && p->nspecs >= PIPELINE_MAX_SPECS) {
        struct spec_entry **victim = NULL;
        for (struct spec_entry **pp = &p->specs; *pp; pp = &(*pp)->next) {
            int64_t final_size;
            if (upl_watch_state((*pp)->watch, &final_size) || !(*pp)->next) {
                victim = pp;
                break;
            }
        }
        evicted = *victim;
        *victim = evicted->next;
        evicted->next = NULL;
        evicted->listed = false;
        p->nspecs--;
    }
    bool room = !p->stopping && p->nspecs < PIPELINE_MAX_SPECS;
    if (room) {
        e->seq = ++p->spec_seq;
        if (pthread_create(&e->thread, NULL, spec_main, e) != 0) {
            room = false;
        } else {
            e->next = p->specs;
            p->specs = e;
            e->listed = true;
            p->nspecs++;
        }
    }
    pthread_mutex_unlock(&p->mu);
    if (evicted) {
        log_debug("speculative run dropped batch=%s path=%s: too many runs", evicted->batch_id,
                  evicted->file_path);
        specs_free(evicted);
    }
    if (!room) {
        spec_entry_release(e); /* no thread was started: nothing to stop or join */
        return false;
    }
    log_debug("speculative run starting batch=%s path=%s", batch_id, file_path);
    return true;
}

void pipeline_spec_drop(struct pipeline *p, const char *sandbox, const char *batch_id)
{
    if (p && sandbox && batch_id)
        specs_free(take_specs(p, sandbox, batch_id));
}

static void run_batch(struct pipeline *p, const char *sandbox, const char *batch_id)
{
    int64_t t0 = clock_mono_ns();
    /* Phase ends for the log line (0: not reached): what the batch's time went to besides the
     * engine. */
    int64_t t_plan = 0, t_engine = 0, t_promoted = 0;
    struct ing_err err;
    ing_err_clear(&err);
    json_t *batch = NULL, *dataset = NULL, *metrics = NULL, *errors = json_array();
    struct xdm_plan *plan = NULL;
    char *fingerprint = NULL;
    struct spec_entry *specs = take_specs(p, sandbox, batch_id);
    specs_free(take_dead(p)); /* after take_specs: none of this batch's runs retires now */
    struct staged in = {0};
    struct engine_result res = {0};
    char *tmp = NULL, *preview_path = NULL, *diag_tmp = NULL, *diag_final = NULL;
    const char *status = "failed";
    bool promoted = false, landed = false;
    int rc;

    const char *dataset_id = NULL;
    if (catalog_batch_get(p->cat, sandbox, batch_id, &batch, &err) != 0) {
        add_error(errors, "500", err.msg);
        goto finish;
    }
    dataset_id = catalog_batch_dataset_id(batch);
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
    bool parquet = format && strcasecmp(format, "parquet") == 0;
    if (format && !parquet && strcasecmp(format, "json") != 0) {
        char *d = xasprintf("Input format '%s' is not supported yet; ingot ingests JSON batches "
                            "(inputFormat.format \"json\", plain, gzip or zstd compressed) and "
                            "Parquet batches (\"parquet\").",
                            format);
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

    /* The fingerprint only matters to a speculative run's adoption. */
    if (compile_plan(p, sandbox, dataset, &plan, specs ? &fingerprint : NULL, &err) != 0) {
        char *d = err.field[0] ? xasprintf("The dataset's schema cannot be used: field '%s': %s",
                                           err.field, err.msg)
                               : xasprintf("The dataset's schema cannot be used: %s", err.msg);
        add_error(errors, "400", d);
        free(d);
        goto finish;
    }

    t_plan = clock_mono_ns();
    struct batch_settings set = read_settings(batch, dataset);
    tmp = lake_batch_tmp_dir(p->lake, sandbox, dataset_id, batch_id);
    diag_tmp = diag_batch_tmp_dir(lake_data_dir(p->lake), sandbox, batch_id);
    diag_final = diag_batch_dir(lake_data_dir(p->lake), sandbox, batch_id);
    struct engine_opts eopts = batch_engine_opts(p, input_format, parquet, &set);
    if (!parquet)
        attach_specs(specs, dataset_id, fingerprint, &in);
    for (int attempt = 0;; attempt++) {
        /* Every run starts from nothing: leftovers of an interrupted or failed run go. */
        fs_rm_rf(tmp, NULL);
        fs_rm_rf(diag_tmp, NULL);
        engine_result_free(&res);
        struct diag_writer *dw = NULL;
        ing_err_clear(&err);
        rc = set.diagnostics ? diag_writer_open(&dw, diag_tmp, 0, &err) : 0;
        if (rc == 0) {
            eopts.diag = dw;
            eopts.fault_write_errno = take_fault(p) ? ENOSPC : 0;
            rc = engine_run(plan, in.files, in.n, &eopts, tmp, &res, &err);
            /* A speculative run is merged once: a rerun reads the files. */
            for (size_t i = 0; i < in.n; i++)
                in.files[i].spec = NULL;
            specs_free(specs);
            specs = NULL;
            struct ing_err cerr;
            ing_err_clear(&cerr);
            int crc = diag_writer_close(dw, &cerr);
            if (crc != 0 && (rc == 0 || !res.batch_error)) {
                rc = crc;
                err = cerr;
                res.batch_error = true;
            }
        } else {
            res.batch_error = true;
        }
        bool transient = rc != 0 && res.batch_error && err.code == ING_EIO &&
                         (err.sys_errno == ENOSPC || err.sys_errno == EIO ||
                          err.sys_errno == EDQUOT);
        if (!transient)
            break;
        fs_rm_rf(tmp, NULL);
        fs_rm_rf(diag_tmp, NULL);
        if (attempt >= p->retries) {
            char *d = xasprintf("Writing the batch failed %d time(s) with a transient error and "
                                "was retried %d time(s); the batch failed and no rows were "
                                "ingested. Last error: %s",
                                attempt + 1, attempt, err.msg);
            add_error(errors, "500", d);
            free(d);
            engine_result_free(&res);
            memset(&res, 0, sizeof(res));
            goto finish;
        }
        if (!wait_retry(p, sandbox, batch_id, attempt, &err))
            goto out_quiet;
    }
    t_engine = clock_mono_ns();
    /* Diagnostics (and the input listing) describe this run whatever its outcome. */
    publish_diagnostics(p, sandbox, batch_id, &in, diag_tmp, diag_final);

    int64_t failed = res.failed_records, total = res.input_records;
    if (rc != 0 && res.batch_error) {
        add_engine_errors(errors, res.errors);
        if (json_array_size(errors) == 0) {
            char *d = err.file[0] ? xasprintf("%s: %s", err.file, err.msg) : xstrdup(err.msg);
            add_error(errors, "500", d);
            free(d);
        }
        goto finish;
    }
    if (rc != 0 || (failed > 0 && !set.partial)) {
        /* No partial ingestion: the bad rows fail the batch, named one by one. */
        if (set.diagnostics)
            add_kind_errors(errors, &res);
        add_row_errors(errors, res.errors);
        goto finish;
    }
    if (failed > 0 && (double)failed * 100.0 > set.percent * (double)total) {
        char *d = xasprintf("Encountered %lld errors in the data (%.2f%% of %lld rows), more than "
                            "the partialIngestionPercent threshold of %g%%. No rows were "
                            "ingested.",
                            (long long)failed, (double)failed * 100.0 / (double)total,
                            (long long)total, set.percent);
        add_error(errors, "INGEST-1212-400", d);
        free(d);
        if (set.diagnostics)
            add_kind_errors(errors, &res);
        add_row_errors(errors, res.errors);
        goto finish;
    }
    if (failed > 0) {
        if (set.diagnostics) {
            char *d = xasprintf("Encountered %lld errors in the data. Successfully ingested %lld "
                                "rows. Please review the associated diagnostic files for more "
                                "details.",
                                (long long)failed, (long long)res.output_records);
            add_error(errors, "INGEST-1212-400", d);
            free(d);
            add_kind_errors(errors, &res);
        } else {
            add_error(errors, "INGEST-1211-400",
                      "Encountered errors while parsing, converting or otherwise validating the "
                      "data. Please resend the data with error diagnostics enabled to collect "
                      "additional information on failure types");
        }
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
        json_array_clear(errors);
        add_error(errors, "500", err.msg);
        goto finish;
    }
    promoted = true;
    t_promoted = clock_mono_ns();
    metrics = make_metrics(&in, &res, true);
    rc = catalog_batch_finish(p->cat, sandbox, batch_id, "success", metrics,
                              json_array_size(errors) ? errors : NULL, res.files, &err);
    if (rc == 0) {
        status = "success";
        landed = true;
        goto out;
    }
    /* The catalog did not take it (aborted meanwhile, or the store failed): nobody may read
     * output that no committed batch owns. */
    log_error("batch commit failed sandbox=%s batch=%s: %s", sandbox, batch_id, err.msg);
    json_array_clear(errors);
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
             (long long)(landed ? res.output_records : 0), (long long)res.failed_records,
             (long long)(landed ? res.output_bytes : 0),
             (long long)(landed ? res.output_files : 0),
             (long long)((clock_mono_ns() - t0) / 1000000));
    if (t_engine) {
        /* Where the batch's time went: setup (reads, schema), engine, the rest up to the
         * promotion (diagnostics, preview, rename and fsyncs), and the commit. */
        int64_t t_end = clock_mono_ns();
        log_debug("batch phases batch=%s plan_ms=%.1f engine_ms=%.1f promote_ms=%.1f "
                  "commit_ms=%.1f", batch_id, (double)(t_plan - t0) / 1e6,
                  (double)(t_engine - t_plan) / 1e6,
                  t_promoted ? (double)(t_promoted - t_engine) / 1e6 : -1.0,
                  t_promoted ? (double)(t_end - t_promoted) / 1e6 : -1.0);
    }
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
out_quiet:
    specs_free(specs);
    if (diag_tmp)
        fs_rm_rf(diag_tmp, NULL);
    engine_result_free(&res);
    xdm_plan_free(plan);
    free(fingerprint);
    staged_free(&in);
    free(tmp);
    free(preview_path);
    free(diag_tmp);
    free(diag_final);
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
            clock_deadline_mono_ts(&deadline, PIPELINE_POLL_MS);
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

/* Batches left "processing" (or "retrying", waiting to run again) by the last process. */
static void recover_status(struct pipeline *p, const char *status)
{
    struct store_filter f = {.property = "status", .op = STORE_EQ, .value = status};
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
        const char *dataset_id = catalog_batch_dataset_id(json_object_get(it, "doc"));
        if (!sandbox || !id)
            continue;
        if (dataset_id)
            remove_output(p, sandbox, dataset_id, id);
        const char *const from[] = {status, NULL};
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

static void recover_processing(struct pipeline *p)
{
    recover_status(p, "processing");
    recover_status(p, "retrying");
}

/* ------------------------------------------------------------------------------------------ */
/* Diagnostics retention                                                                       */

static void sweep_once(struct pipeline *p)
{
    struct ing_err err;
    ing_err_clear(&err);
    int64_t removed = 0;
    if (diag_sweep(lake_data_dir(p->lake), p->retention_ms, clock_now_ms(), &removed, &err) != 0)
        log_warn("diagnostics sweep: %s", err.msg);
    if (removed > 0)
        log_info("diagnostics sweep removed=%lld retention_ms=%lld", (long long)removed,
                 (long long)p->retention_ms);
}

static void *sweeper_main(void *arg)
{
    struct pipeline *p = arg;
    for (;;) {
        sweep_once(p);
        struct timespec deadline;
        clock_deadline_mono_ts(&deadline, p->sweep_ms);
        pthread_mutex_lock(&p->mu);
        while (!p->stopping && pthread_cond_timedwait(&p->stop_cv, &p->mu, &deadline) == 0)
            ;
        bool stop = p->stopping;
        pthread_mutex_unlock(&p->mu);
        if (stop)
            break;
    }
    return NULL;
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
    pthread_cond_broadcast(&p->stop_cv);
    pthread_mutex_unlock(&p->mu);
    specs_free(take_specs_where(p, NULL, NULL, NULL));
    specs_free(take_dead(p)); /* none retires once all are taken */
    for (unsigned i = 0; i < p->nthreads; i++)
        pthread_join(p->threads[i], NULL);
    p->nthreads = 0;
    if (p->sweeper_live)
        pthread_join(p->sweeper, NULL);
    p->sweeper_live = false;
}

static void pipeline_free(struct pipeline *p)
{
    pthread_cond_destroy(&p->cv);
    pthread_cond_destroy(&p->stop_cv);
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
    pthread_cond_init(&p->stop_cv, &ca);
    pthread_condattr_destroy(&ca);
    p->codec = opts && opts->codec_set ? opts->codec : PQ_CODEC_ZSTD;
    if (opts && opts->ingest_threads > 0) {
        p->ingest_threads = opts->ingest_threads;
    } else {
        /* Two by default: batch workers run side by side, so more would only queue. */
        long cpus = sysconf(_SC_NPROCESSORS_ONLN);
        p->ingest_threads = cpus >= 2 ? 2 : 1;
    }
    p->retries = !opts || opts->retries == 0 ? PIPELINE_DEFAULT_RETRIES
                 : opts->retries < 0         ? 0
                                             : opts->retries;
    p->backoff_ms = opts && opts->retry_backoff_ms > 0 ? opts->retry_backoff_ms
                                                       : PIPELINE_DEFAULT_BACKOFF_MS;
    p->retention_ms = opts && opts->diag_retention_ms > 0 ? opts->diag_retention_ms
                                                          : PIPELINE_DEFAULT_RETENTION_MS;
    p->sweep_ms = opts && opts->sweep_interval_ms > 0 ? opts->sweep_interval_ms
                                                      : PIPELINE_DEFAULT_SWEEP_MS;
    p->spec_idle_ms = PIPELINE_SPEC_IDLE_MS;
    const char *idle = getenv("INGOT_SPEC_IDLE_MS");
    if (idle && strtoll(idle, NULL, 10) > 0)
        p->spec_idle_ms = strtoll(idle, NULL, 10);
    const char *faults = getenv("INGOT_FAULT_WRITE_FAILS");
    if (faults && *faults) {
        p->faults_left = strtoll(faults, NULL, 10);
        log_warn("test hook INGOT_FAULT_WRITE_FAILS=%lld: batch output writes will fail",
                 (long long)p->faults_left);
    }

    recover_processing(p);
    /* A speculative run does not survive its process: its folder is of no use. */
    int swept = lake_sweep_spec_dirs(lake);
    if (swept > 0)
        log_info("pipeline: removed %d speculative run folder(s) of the last process", swept);
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
    int e = pthread_create(&p->sweeper, NULL, sweeper_main, p);
    if (e != 0) {
        stop_threads(p);
        pipeline_free(p);
        return ing_err_set(err, ING_EINTERNAL, "pipeline: cannot start the diagnostics sweep: %s",
                           strerror(e));
    }
    p->sweeper_live = true;
    log_info("pipeline started workers=%u queued=%lld retries=%d retention_ms=%lld", want,
             (long long)queued, p->retries, (long long)p->retention_ms);
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
