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
 * A batch in a final state (success, failed, aborted) does not move again (REVERT and replay come
 * with a later issue). Each transition is one store transaction.
 *
 * Threads: all functions are thread-safe.
 */
#ifndef ING_CATALOG_CATALOG_H
#define ING_CATALOG_CATALOG_H

#include <stdbool.h>
#include <stdint.h>
#include <jansson.h>

#include "schema/registry.h"
#include "store/store.h"
#include "util/err.h"

#define CAT_KIND_DATASET "dataSet"
#define CAT_KIND_BATCH "batch"
#define CAT_KIND_FILE "dataSetFile"

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

#endif
