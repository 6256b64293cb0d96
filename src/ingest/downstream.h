/*
 * downstream.h - the stages after the lake: identity graph, then profile store, per batch.
 *
 * The batch pipeline ends when a batch is "success" in the catalog. This runner (one thread)
 * picks such batches up without the pipeline knowing: it scans every batch at start-up and then
 * polls the store about every 500 ms for batches updated recently. For a batch of a dataset
 * tagged unifiedIdentity (["enabled:true"]) it runs the identity stage: it re-reads the batch's
 * staged input files (kept after success), validates and converts each row again with the
 * dataset's plan (rows that fail did not land and are skipped), extracts and normalises the
 * row's identities and stitches them into the graph (identity/idgraph.h). For a dataset tagged
 * unifiedProfile it then runs the profile stage: each row becomes a profile fragment keyed by
 * its primary identity (record classes) or an experience event (ExperienceEvent class, by _id
 * and timestamp); with "isUpsert:true" in the tag, fragments patch instead of replacing.
 *
 * Each stage is one pstore transaction that also writes the stage's record, so a stage runs
 * exactly once per batch even across crashes. The record is then copied into the batch
 * document, in order, as
 *   "downstream": {"identityGraph": {"status","eventCode":"ig_load_success"|"ig_load_failure",
 *                  "completed", "recordCount", ...}, "profile": {... "ps_load_success" ...},
 *                  "removed": {...}}
 * A batch that becomes "inactive" or "deleted" (REVERT, replaced by a replay) after its stages
 * ran has its links, fragments and events taken back out (clusters split where a link was the
 * only bridge), recorded as "removed".
 *
 * Threads: downstream_poll runs in the caller's thread; downstream_start runs it on the
 * runner's own thread until downstream_free.
 */
#ifndef ING_INGEST_DOWNSTREAM_H
#define ING_INGEST_DOWNSTREAM_H

#include <stdbool.h>

#include "identity/idgraph.h"
#include "lake/lake.h"
#include "schema/registry.h"
#include "store/store.h"
#include "util/err.h"

#define DOWNSTREAM_POLL_MS 500

struct downstream;

struct downstream_opts {
    unsigned poll_ms; /* default DOWNSTREAM_POLL_MS */
};

/* All borrowed; they must outlive the runner. */
int downstream_new(struct downstream **out, struct store *st, struct registry *reg,
                   struct lake *lake, struct idgraph *g, const struct downstream_opts *opts,
                   struct ing_err *err);
/* One pass: every batch (full) or the recently updated ones. Returns 0 or the first hard
 * error (batches that failed a stage have their failure recorded and do not count). */
int downstream_poll(struct downstream *d, bool full, struct ing_err *err);
/* Run downstream_poll on a thread: a full pass first, then every poll_ms. */
int downstream_start(struct downstream *d, struct ing_err *err);
/* Stop the thread (after the batch in hand) and free. NULL is a no-op. */
void downstream_free(struct downstream *d);

/* True when a dataset tag value list says enabled ("enabled:true", "enabled: true"). */
bool downstream_tag_enabled(const json_t *tag_values, const char *flag);

#endif
