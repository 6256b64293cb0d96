/*
 * catalog.h - Catalog objects: datasets, batches and dataset files, and the batch state machine.
 *
 * Documents are stored through store.h in the shapes the Catalog API returns (see
 * notes/aep-api.md section 2), so the API layer mostly passes them through. Kinds in the store:
 * "dataSet", "batch", "dataSetFile".
 *
 * Batch statuses and the transitions this module allows:
 *   loading --COMPLETE--> queued --worker--> processing --> success | failed
 *   loading/queued/processing --ABORT--> aborted
 *   loading/queued --FAIL--> failed
 *   processing --> retrying --> queued | processing | failed | aborted   (transient errors)
 *   success --REVERT, or a replay batch's success--> inactive           (catalog_batch_revert,
 *                                                                          catalog_batch_finish)
 * A batch in a final state (success, failed, aborted, inactive) does not move through
 * catalog_batch_transition; only success -> inactive exists, through the two functions named.
 * Each transition is one store transaction. Every status of AEP's Catalog enum is a valid status
 * (catalog_batch_status_ok), though ingot itself sets only the ones above.
 *
 * Threads: all functions are thread-safe.
 */
#ifndef ING_CATALOG_CATALOG_H
#define ING_CATALOG_CATALOG_H

#include <stdbool.h>
#include <stdint.h>
#include <jansson.h>

#include "lake/upload.h"
#include "schema/registry.h"
#include "store/store.h"
#include "util/err.h"

#define CAT_KIND_DATASET "dataSet"
#define CAT_KIND_BATCH "batch"
#define CAT_KIND_FILE "dataSetFile"
#define CAT_KIND_UPLOAD "upload" /* a large file being uploaded in chunks */

/* Who made a request: recorded on the objects it creates (createdUser, createdClient, imsOrg). */
struct cat_actor {
    const char *ims_org;     /* x-gw-ims-org-id or the server default */
    const char *client;      /* x-api-key or "ingot" */
    const char *user;        /* from the token later; for now the client */
};

struct catalog;

/* `st` and `reg` are borrowed; `reg` may be NULL (schemaRef ids are then not resolved). */
int catalog_new(struct catalog **out, struct store *st, struct registry *reg, struct ing_err *err);
void catalog_free(struct catalog *cat);
struct store *catalog_store(const struct catalog *cat);

/* Datasets. `body` is the dataSetRequest (borrowed); *id_out receives a new id string (free()). */
int catalog_dataset_create(struct catalog *cat, const char *sandbox, const struct cat_actor *who,
                           const json_t *body, char **id_out, struct ing_err *err);
int catalog_dataset_get(struct catalog *cat, const char *sandbox, const char *id, json_t **out,
                        struct ing_err *err);

/* Change a dataset in one transaction (PUT and PATCH of the Catalog API). CAT_UPDATE_MERGE: `body`
 * is an object whose top-level fields replace the dataset's (null removes one); CAT_UPDATE_JSON_PATCH:
 * `body` is an RFC 6902 array of add/remove/replace operations; CAT_UPDATE_REPLACE: `body` is a whole
 * dataSetRequest. Only client fields (name, description, schemaRef, tags, enableErrorDiagnostics,
 * fileDescription, dataSourceId) change; a new schemaRef.id must resolve. ING_ENOTFOUND, ING_EINVAL. */
enum cat_update { CAT_UPDATE_MERGE, CAT_UPDATE_JSON_PATCH, CAT_UPDATE_REPLACE };
int catalog_dataset_update(struct catalog *cat, const char *sandbox, const struct cat_actor *who,
                           const char *id, enum cat_update how, const json_t *body,
                           struct ing_err *err);
/* Delete a dataset and its dataSetFile documents (one transaction). ING_ENOTFOUND if missing. */
int catalog_dataset_delete(struct catalog *cat, const char *sandbox, const char *id,
                           struct ing_err *err);

/* The dataset a batch document writes to (its relatedObjects entry of type dataSet, else
 * "datasetId"); borrowed from `batch`, NULL when it names none. */
const char *catalog_batch_dataset_id(const json_t *batch);

/* Batches. `body` is the IngestBatch request. */
int catalog_batch_create(struct catalog *cat, const char *sandbox, const struct cat_actor *who,
                         const json_t *body, char **id_out, struct ing_err *err);
int catalog_batch_get(struct catalog *cat, const char *sandbox, const char *id, json_t **out,
                      struct ing_err *err);
/* Move a batch from one of the statuses in `from` (NULL-terminated) to `to`, merging `patch`
 * (may be NULL) into the document, in one transaction. ING_ESTATE when the batch is elsewhere. */
int catalog_batch_transition(struct catalog *cat, const char *sandbox, const char *id,
                             const char *const *from, const char *to, const json_t *patch,
                             struct ing_err *err);

/* Finish a batch that is "processing", in one transaction: set `status` ("success" or "failed"),
 * "completed", "metrics" (borrowed object, merged) and "errors" (borrowed array, may be NULL);
 * on success also create one dataSetFile document per entry of `files` (array of
 * {"name": "part-00000.parquet", "size": bytes, "records": n}) and update the dataset's
 * lastBatchId/lastBatchStatus. ING_ESTATE when the batch is not "processing". */
int catalog_batch_finish(struct catalog *cat, const char *sandbox, const char *batch_id,
                         const char *status, const json_t *metrics, const json_t *errors,
                         const json_t *files, struct ing_err *err);

/* Dataset files: `batch_id` and/or `dataset_id` filter (NULL = any); only files of batches whose
 * status is "success" are returned. *out is a new JSON object keyed by dataSetFile id, in creation
 * order. start/limit page it (limit <= 0: all). */
int catalog_file_list(struct catalog *cat, const char *sandbox, const char *batch_id,
                      const char *dataset_id, int64_t start, int64_t limit, json_t **out,
                      struct ing_err *err);
/* One dataset file document ({"dataSetId","batchId","name","size","records",...}). */
int catalog_file_get(struct catalog *cat, const char *sandbox, const char *file_id, json_t **out,
                     struct ing_err *err);

/* ---- lifecycle: statuses, revert, replay, lastBatches --------------------------------------- */

/* Whether `status` is one of AEP's Catalog batch statuses (loading, queued, processing, success,
 * failed, aborted, inactive, retrying, staging, ...). */
bool catalog_batch_status_ok(const char *status);

/*
 * Retiring a batch (success -> inactive) is a catalog commit first; its bytes go afterwards. The
 * hook is called after each commit that retired batches (REVERT, or a replay batch's success),
 * once per retired batch, on the committing thread, to remove the batch's files from the lake.
 * Set once before the catalog is shared. Readers never depend on the hook: listings, preview and
 * downloads follow the catalog status.
 */
typedef void cat_retire_fn(void *ctx, const char *sandbox, const char *dataset_id,
                           const char *batch_id);
void catalog_set_retire_hook(struct catalog *cat, cat_retire_fn *fn, void *ctx);
/* Call the retire hook for every inactive batch of every sandbox: at start-up it finishes removals
 * that a crash cut short (removing what is already gone is a no-op for the hook). */
int catalog_retire_sweep(struct catalog *cat, struct ing_err *err);

/* REVERT: a "success" batch becomes "inactive" in one transaction, with its dataSetFiles marked
 * isValid=false (and hidden from listings); then the retire hook runs. ING_ESTATE when the batch
 * is not "success", ING_ENOTFOUND when it does not exist. */
int catalog_batch_revert(struct catalog *cat, const char *sandbox, const char *id,
                         struct ing_err *err);

/*
 * Replay and externalId (checked by catalog_batch_create inside its insert transaction):
 * externalId is unique within the sandbox (ING_EINVAL otherwise); replay.predecessors (ids, an
 * optional leading '$' is dropped) and replay.predecessorsByExternalId must name existing batches
 * of the same dataset that are in a final status; the stored replay.predecessors is the resolved
 * id list. When the replay batch finishes as success, catalog_batch_finish retires its
 * predecessors that are "success" in the same transaction, so readers see the old batches or the
 * new one, never both or neither.
 */

/* GET /lastBatches: `dataset_ids` is a comma list (NULL: every dataset of the sandbox). *out is a
 * new object keyed by dataset id: {lastBatchId, lastBatchStatus, lastSuccessfulBatchId,
 * lastFailedBatchId, imsOrg, created, updated} ("last" = most recently created; the ids of no
 * such batch are absent). Datasets without batches, and unknown ids, are left out. */
int catalog_last_batches(struct catalog *cat, const char *sandbox, const char *dataset_ids,
                         json_t **out, struct ing_err *err);

/* ---- large-file uploads ---------------------------------------------------------------------- */
/*
 * One "upload" document per file being uploaded in chunks, keyed by (batch, dataset, path):
 * {"batchId","dataSetId","path","chunks":[[first,last],...],"total":n?,"created","updated"}.
 * Every change checks, in its transaction, that the batch is "loading" and writes to the dataset
 * (ING_ESTATE / ING_EINVAL otherwise), so a chunk is never recorded for a batch that has moved on.
 */
/* INITIALIZE: create the record, or start it over (no chunks) if it exists. */
int catalog_upload_init(struct catalog *cat, const char *sandbox, const char *batch_id,
                        const char *dataset_id, const char *path, struct ing_err *err);
/* *out: the upload document (new reference). ING_ENOTFOUND when the file was not initialized. */
int catalog_upload_get(struct catalog *cat, const char *sandbox, const char *batch_id,
                       const char *dataset_id, const char *path, json_t **out,
                       struct ing_err *err);
/* Record one chunk that is already on disk. A chunk with the bounds of one recorded before is
 * recorded once (a retried PATCH); overlaps are kept, for completion to refuse. `total` (-1 when
 * not given) must agree with earlier chunks' and cover every chunk (ING_EINVAL). At most
 * `max_chunks` chunks per file (ING_ETOOBIG). *out (may be NULL): the updated document. */
int catalog_upload_add_chunk(struct catalog *cat, const char *sandbox, const char *batch_id,
                             const char *dataset_id, const char *path,
                             const struct upl_range *chunk, int64_t total, size_t max_chunks,
                             json_t **out, struct ing_err *err);
/* Forget an upload record (after its file has moved into staging). Missing is not an error. */
int catalog_upload_remove(struct catalog *cat, const char *sandbox, const char *batch_id,
                          const char *dataset_id, const char *path, struct ing_err *err);
/* The open uploads of a batch: a new object keyed by upload document id. */
int catalog_upload_list(struct catalog *cat, const char *sandbox, const char *batch_id,
                        json_t **out, struct ing_err *err);

#endif
