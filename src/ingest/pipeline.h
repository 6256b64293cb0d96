/*
 * pipeline.h - the batch worker pool: runs COMPLETEd batches through the stages of product.md.
 *
 * stage (files staged by the import API) -> engine (read, validate, convert, write Parquet into a
 * temporary batch folder) -> promote (rename into the lake + catalog success in one step).
 * COMPLETE moves the batch to "queued" in the store, so the queue survives restarts: at start-up
 * pipeline_start re-queues every queued batch and fails (with a clear error) or re-runs every
 * batch that was "processing" when the process died, after removing any half-written output.
 *
 * Threads: pipeline_enqueue is thread-safe; workers are the pipeline's own threads.
 */
#ifndef ING_INGEST_PIPELINE_H
#define ING_INGEST_PIPELINE_H

#include "catalog/catalog.h"
#include "lake/lake.h"
#include "schema/registry.h"
#include "util/err.h"

struct pipeline;

struct pipeline_opts {
    unsigned workers;        /* default 2 */
};

int pipeline_start(struct pipeline **out, struct catalog *cat, struct registry *reg,
                   struct lake *lake, const struct pipeline_opts *opts, struct ing_err *err);
/* Wake a worker for a batch that is now "queued" (the store is the queue; this is a nudge). */
void pipeline_enqueue(struct pipeline *p, const char *sandbox, const char *batch_id);
/* Let running batches finish, then stop the workers. NULL is a no-op. */
void pipeline_stop(struct pipeline *p);

#endif
