/*
 * shred.h - validate, convert and shred one JSON record into Parquet columns.
 *
 * The heart of the hot path. For each record the shredder walks the JSON tokens (jtok) against the
 * compiled plan (xdm_plan) without building a tree: it converts every value to its field's XDM
 * type (xdm_convert), checks required/enum/pattern/length/range/format, and computes definition
 * and repetition levels. Values of a record are staged in the shredder's scratch space first and
 * reach the pq_writer only when the whole record is valid, so a bad row never leaves half a row in
 * the lake.
 *
 * Fields that the schema does not have are dropped (AEP ignores them likewise at batch ingestion)
 * and counted in shred_stats.unknown_fields; `null` for an optional field is the same as absent.
 *
 * Error kinds (err->code): ING_ESYNTAX corrupt JSON (AEP INGEST-1401), ING_EREQUIRED required field
 * missing or null (INGEST-1555), ING_ETYPE a value that cannot be converted, ING_ECONSTRAINT enum,
 * pattern, length, range or format. err->field holds the dotted field path, err->offset the byte
 * offset inside the record; the caller fills file and row.
 *
 * Threads: one shredder per thread; the plan is shared read-only.
 */
#ifndef ING_INGEST_SHRED_H
#define ING_INGEST_SHRED_H

#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

#include "json/jtok.h"
#include "parquet/pq_writer.h"
#include "schema/xdm_plan.h"
#include "util/err.h"

struct shred_stats {
    int64_t records_ok;
    int64_t records_failed;
    int64_t unknown_fields;     /* properties dropped because the schema does not have them */
};

struct shred;

/* New shredder for `plan` (borrowed; must outlive the shredder). */
struct shred *shred_new(const struct xdm_plan *plan);
/*
 * Validate and convert one record; when valid, append it to `w` (pq_writer_end_row included)
 * and return 0. When invalid, append nothing and return the negative error code with err filled.
 * When `converted` is not NULL and the record is valid, *converted receives a new JSON object of
 * the converted values (dates as ISO text), for previews; pass NULL on the fast path.
 * `w` may be NULL to validate only.
 */
int shred_record(struct shred *sh, const char *rec, size_t len, struct pq_writer *w,
                 json_t **converted, struct ing_err *err);
const struct shred_stats *shred_get_stats(const struct shred *sh);
void shred_free(struct shred *sh); /* NULL is a no-op */

/*
 * A record fed value by value instead of as JSON text (the Parquet path, ingest/pq_shred): the
 * caller walks its own structure against the plan and hands over each value as the token the
 * JSON text of that value would give, so conversions and checks are the JSON path's, applied
 * by the same code. Nodes are the shredder's indexes of plan fields (shred_node_of). Only
 * shred_end writes to the writer, so a record given up half way (any failure: the caller then
 * takes the JSON path for it) leaves nothing behind; errors of these calls are not meant for
 * users (their offsets mean nothing).
 */
/* -1 when not in the plan. A scan of the plan's nodes: look fields up once, when binding, and
 * keep the indexes, not once per value. */
int shred_node_of(const struct shred *sh, const struct xdm_field *f);
void shred_begin(struct shred *sh);
/* A scalar or null token (JT_STRING, JT_NUMBER, JT_TRUE, JT_FALSE, JT_NULL) for field `node`
 * at repetition level rep: walk rules of a JSON value (required, no columns, conversion, checks).
 * Spans must stay valid until shred_end. */
int shred_put(struct shred *sh, int node, const struct jtok *t, int rep, struct ing_err *err);
/* Nulls for every column of node's subtree, defined up to `def`. */
void shred_put_nulls(struct shred *sh, int node, int def, int rep);
/* The key of one entry of map node `map` (valid until shred_end). */
void shred_put_key(struct shred *sh, int map, const char *p, size_t n, int rep);
/* A property dropped because the schema does not have it (counted like the JSON path's). */
void shred_put_unknown(struct shred *sh);
/* The record is complete: replay it into w (NULL: validate only) and end the row. */
int shred_end(struct shred *sh, struct pq_writer *w, struct ing_err *err);

/* For tests: the definition and repetition levels staged for leaf `column` by the last record
 * (levels of a failed record are partial). Fills up to `max` entries of defs/reps and returns how
 * many entries there are, or ING_EINVAL for a column the plan does not have. */
int shred_debug_levels(struct shred *sh, int column, int *defs, int *reps, size_t max);

#endif
