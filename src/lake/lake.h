/*
 * lake.h - where bytes live on disk: staged uploads and the Parquet data lake.
 *
 * Layout under the data directory (every path carries the sandbox, so sandboxes never share
 * files):
 *   <data>/sandboxes/<sandbox>/staging/<batchId>/<datasetId>/<filePath>   uploaded input files
 *   <data>/sandboxes/<sandbox>/lake/<datasetId>/<batchId>/part-NNNNN.parquet  promoted output
 *   <data>/sandboxes/<sandbox>/lake/<datasetId>/.tmp-<batchId>/            output being written
 *   <data>/sandboxes/<sandbox>/lake/<datasetId>/.spec-<batchId>-<n>/       a speculative run's
 *                                        output, written while the batch loads (never promoted)
 *   <data>/sandboxes/<sandbox>/uploads/<batchId>/<datasetId>/<filePath>    large files being
 *                                                        assembled from chunks (sparse part files)
 *   <data>/spool/                                                          request bodies in flight
 * A batch's output is written to its .tmp- folder and promoted with one rename; whether readers see
 * it is decided by the catalog (a batch's files are listed only once the batch is "success").
 *
 * Threads: functions are thread-safe; returned strings are new (free()).
 */
#ifndef ING_LAKE_LAKE_H
#define ING_LAKE_LAKE_H

#include "util/err.h"

struct lake;

int lake_open(struct lake **out, const char *data_dir, struct ing_err *err);
void lake_free(struct lake *lake);
const char *lake_data_dir(const struct lake *lake);
char *lake_spool_dir(const struct lake *lake);
char *lake_staging_dir(const struct lake *lake, const char *sandbox, const char *batch_id,
                       const char *dataset_id);
char *lake_batch_dir(const struct lake *lake, const char *sandbox, const char *dataset_id,
                     const char *batch_id);
char *lake_batch_tmp_dir(const struct lake *lake, const char *sandbox, const char *dataset_id,
                         const char *batch_id);
/* Where the part files of a batch's large-file uploads are assembled (never read by the pipeline,
 * which reads only staging). */
char *lake_upload_dir(const struct lake *lake, const char *sandbox, const char *batch_id,
                      const char *dataset_id);
/* The private folder of a speculative run (output written while the batch is still loading,
 * adopted at its COMPLETE): <data>/sandboxes/<sb>/lake/<ds>/.spec-<batch>-<n>. */
char *lake_spec_dir(const struct lake *lake, const char *sandbox, const char *dataset_id,
                    const char *batch_id, unsigned n);
/* Remove every speculative run's folder (start-up: a run does not survive its process).
 * Returns how many were removed. */
int lake_sweep_spec_dirs(struct lake *lake);
/* rename tmp -> final (durably). ING_EEXIST if final exists. */
int lake_promote(struct lake *lake, const char *sandbox, const char *dataset_id,
                 const char *batch_id, struct ing_err *err);
/* Remove a batch's staged input, unfinished uploads, temporary and final output (any that exist);
 * the removal of the final output is made durable (fsync of the dataset's lake folder), so a
 * reverted or replaced batch's rows do not come back after a crash. */
int lake_discard_output(struct lake *lake, const char *sandbox, const char *dataset_id,
                        const char *batch_id, struct ing_err *err);

#endif
