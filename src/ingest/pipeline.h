/*
 * pipeline.h - the batch worker pool: runs COMPLETEd batches through the stages of product.md.
 *
 * stage (files staged by the import API) -> engine (read, validate, convert, write Parquet into a
 * temporary batch folder) -> promote (rename into the lake + catalog success in one step).
 * COMPLETE moves the batch to "queued" in the store, so the queue survives restarts: at start-up
 * pipeline_start re-queues every queued batch and fails (with a clear error) or re-runs every
 * batch that was "processing" when the process died, after removing any half-written output.
 *
 * Partial ingestion: with the batch's partialIngestionPercent P, bad rows are skipped and the
 * good ones land unless failed rows are more than P% of the rows read; errors[] then carries
 * INGEST-1212-400 (counts) and, with error diagnostics on (batch or dataset
 * enableErrorDiagnostics), one entry per error kind with recordCount and the row_errors files
 * (diag.h), else INGEST-1211-400. Without P any bad row fails the batch.
 *
 * Transient failures (writing output fails with ENOSPC, EIO, EDQUOT): the batch goes
 * "retrying", waits retry_backoff_ms (doubled each time), and runs again from scratch, up to
 * `retries` times; then it fails with a clear error. Output of a failed attempt is removed first,
 * so there is never half a batch. Test hook: the environment variable INGOT_FAULT_WRITE_FAILS=N
 * makes the next N batch runs fail writing their output with ENOSPC.
 *
 * Retention: a background sweep removes the diagnostics of batches completed more than
 * diag_retention_ms ago, once at start and then every sweep_interval_ms.
 *
 * Threads: pipeline_enqueue is thread-safe; workers are the pipeline's own threads.
 */
#ifndef ING_INGEST_PIPELINE_H
#define ING_INGEST_PIPELINE_H

#include <stdbool.h>
#include <stdint.h>

#include "catalog/catalog.h"
#include "parquet/pq_writer.h"
#include "lake/lake.h"
#include "schema/registry.h"
#include "util/err.h"

struct pipeline;

struct pipeline_opts {
    unsigned workers;            /* default 2 */
    int retries;                 /* reruns after a transient failure: 0 = default 3, < 0 = none */
    int64_t retry_backoff_ms;    /* first wait before a rerun, doubled each time; 0 = 1000 */
    int64_t diag_retention_ms;   /* diagnostics kept this long; 0 = 30 days */
    int64_t sweep_interval_ms;   /* retention sweep period; 0 = 1 hour */
    enum pq_codec codec;         /* lake Parquet compression; PQ_CODEC_UNCOMPRESSED is 0, so
                                    `codec_set` says whether it was chosen (default zstd) */
    bool codec_set;
    int ingest_threads;          /* threads one batch may use for a large JSON Lines file
                                    (engine_opts.threads): 0 = online CPUs, at most 2 */
};

int pipeline_start(struct pipeline **out, struct catalog *cat, struct registry *reg,
                   struct lake *lake, const struct pipeline_opts *opts, struct ing_err *err);
/* Wake a worker for a batch that is now "queued" (the store is the queue; this is a nudge). */
void pipeline_enqueue(struct pipeline *p, const char *sandbox, const char *batch_id);
/*
 * Speculative runs (processing that overlaps the upload): a file of a loading batch is arriving
 * (a chunk at offset 0 of a fresh large-file upload is being received, or a PUT has landed).
 * When the batch is a JSON batch (not multi-line) whose dataset's schema compiles, one engine run
 * starts on a thread of its own over `read_path` (opened here, so a later rename does not matter),
 * reading only what `watch` says has arrived, into a private folder (lake_spec_dir). The batch's
 * run at COMPLETE adopts it when the file, the schema and the settings are still the same and the
 * watch was sealed, never cancelled (engine.h); otherwise it is thrown away and the file runs as
 * usual. `key` (the upload's part path) names the file: a new speculation under the same key
 * replaces the old one. True when a run was started (the pipeline then holds a reference of
 * `watch`); false when not (too many runs already, the file cannot be opened, stopping): the
 * caller may drop the watch. Nothing of a speculative run
 * is visible, and none survives a restart (their folders are removed at start). A run that
 * cannot be set up (not a plain JSON batch, the batch no longer loading), whose upload changed,
 * or that gave up waiting at the mark (no new byte for 10 minutes, INGOT_SPEC_IDLE_MS in the
 * environment for tests, or its batch no longer open) takes itself off the list and frees its
 * slot. Call it under the lock that orders uploads with the batch's COMPLETE, so the run is
 * listed before the batch's run looks for it.
 */
struct upl_watch;
bool pipeline_speculate(struct pipeline *p, const char *sandbox, const char *batch_id,
                        const char *dataset_id, const char *file_path, const char *read_path,
                        const char *key, struct upl_watch *watch);
/* Stop and forget the speculative runs of a batch (ABORT, FAIL). */
void pipeline_spec_drop(struct pipeline *p, const char *sandbox, const char *batch_id);
/* Let running batches finish, then stop the workers. NULL is a no-op. */
void pipeline_stop(struct pipeline *p);

#endif
