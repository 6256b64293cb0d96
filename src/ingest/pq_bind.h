/*
 * pq_bind.h - binding a Parquet file's columns to a dataset's XDM fields by path, before any
 * row is read.
 *
 * The walk follows the same shapes as pq_reader_row_json renders (groups -> objects, LIST and
 * repeated fields -> arrays, MAP -> objects), so a column is "bound" exactly when its values
 * land in an XDM field once the row's JSON goes through the shredder. The check reports:
 *   unknown  - columns with no XDM field at their path: their values are dropped and counted
 *              like unknown JSON properties (architecture.md, "Unknown fields");
 *   shape    - columns whose path exists in XDM with another structure (a group where XDM has
 *              a string, a list where XDM has an object, ...): rows with values there fail
 *              conversion (INGEST-1560-400) as the same JSON would.
 * Types of leaves are not judged here: a Parquet INT64 under an XDM string converts by the
 * JSON rules at row time, with the row and the path in the error.
 *
 * Lives in ingest/ because it joins parquet/ (below) and schema/ (above it). The reader and
 * the plan are borrowed; the report owns its issues (paths point into the reader and the plan,
 * so it must not outlive them). Reentrant.
 */
#ifndef ING_INGEST_PQ_BIND_H
#define ING_INGEST_PQ_BIND_H

#include <stddef.h>

#include "parquet/pq_reader.h"
#include "schema/xdm_plan.h"
#include "util/err.h"

enum pq_bind_kind { PQ_BIND_UNKNOWN = 1, PQ_BIND_SHAPE = 2 };

struct pq_bind_issue {
    enum pq_bind_kind kind;
    int column;                /* Parquet leaf column */
    const char *column_path;   /* e.g. "person.name.first" or "items.list.element.sku" */
    char field[ING_ERR_PATH];  /* the XDM path it would land in, e.g. "person.name.first" or
                                  "items[].sku" */
    const char *why;           /* static text for shape issues, "" for unknown */
};

struct pq_bind_report {
    struct pq_bind_issue *issues;
    size_t n_issues;
    size_t n_bound, n_unknown, n_shape; /* columns in each state; they add up to ncolumns */
};

/* Walk the reader's schema against the plan. 0 (the report may hold issues) or ING_EINVAL for
 * missing arguments. */
int pq_bind_check(const struct pq_reader *r, const struct xdm_plan *plan,
                  struct pq_bind_report *out, struct ing_err *err);
void pq_bind_report_free(struct pq_bind_report *rep); /* NULL is a no-op; the struct is reset */

#endif
