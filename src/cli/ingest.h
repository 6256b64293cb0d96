/*
 * ingest.h - `ingot ingest`: the ingestion engine on local files, without the server.
 *
 *   ingot ingest --schema SCHEMA.json [--descriptors D.json] [--resource R.json]... --out DIR
 *                [--codec zstd|snappy|none] [--zstd-level N] [--multiline] [--max-failed N]
 *                FILE...
 *
 * SCHEMA.json is either a resolved schema (xed-full) or a raw one whose allOf/$ref point at the
 * standard XDM resources built into ingot (and at tenant resources given with --resource); the
 * raw form is resolved the way the Schema Registry resolves it. The files go through engine_run,
 * the very code the batch workers run, and the command prints one JSON summary: records in, out
 * and failed, bytes, seconds, records/s and MB/s, and the first row errors.
 *
 * Threads: runs on the calling thread.
 */
#ifndef ING_CLI_INGEST_H
#define ING_CLI_INGEST_H

#include <jansson.h>

#include "util/err.h"

/* Load a schema file and return its resolved form (new reference). A document with "allOf" is
 * resolved against the built-in XDM resources plus `resources` (a JSON array of tenant
 * resources, may be NULL); any other document is taken as already resolved. */
int cli_load_schema(const char *path, const json_t *resources, json_t **full, struct ing_err *err);

/* `ingot ingest ...`: returns the process exit code (0 all good, 1 failed, 2 usage). */
int cli_ingest_main(int argc, char **argv);

#endif
