/*
 * pq_shred.h - Parquet rows straight into the shredder, without JSON text (issue 7).
 *
 * A Parquet batch used to render each row as JSON (pq_reader_row_json) for shred_record to
 * tokenise again. This walks the reader's current row over the node tree instead, against a
 * binding of Parquet nodes to plan fields made once per file (the shapes pq_bind checks), and
 * hands each value to the shredder (shred_put) as the token its JSON text would give: the same
 * conversions, checks, levels and unknown-field counts, by the same code, with no text in
 * between for strings, integers and booleans (other types render just that one value).
 *
 * The fast path only ever accepts a row the JSON path would accept, with the same values. Any
 * row it does not take whole - a conversion or check that fails, a required field missing, a
 * shape the binding leaves to the JSON rules (a group into an XDM map, a map into an object,
 * ...), levels that contradict each other or text that is not UTF-8 anywhere in the row (fields
 * the plan lacks are rendered to find out), a row whose text might pass the JSON path's size
 * cap - comes back as PQ_SHRED_JSON with nothing written:
 * the caller then renders that row as JSON and runs shred_record, which says what is wrong in
 * the words, codes and diagnostics of the JSON path (and keeps the raw row text for them).
 *
 * Ownership: borrows the reader, the shredder and the plan, which must outlive it. One per
 * reader and thread.
 */
#ifndef ING_INGEST_PQ_SHRED_H
#define ING_INGEST_PQ_SHRED_H

#include "ingest/shred.h"
#include "parquet/pq_reader.h"
#include "schema/xdm_plan.h"

/* pq_shred_row: the row is not taken; take the JSON path for it. */
#define PQ_SHRED_JSON 1

struct pq_shred;

/* Bind the reader's schema to the plan (as the shredder numbers its fields). max_row_text is
 * the cap the JSON path puts on a row's text (0: none): a row whose text might pass it is handed
 * back, so that path fails it as it always has. */
struct pq_shred *pq_shred_new(struct pq_reader *r, struct shred *sh, const struct xdm_plan *plan,
                              size_t max_row_text);
void pq_shred_free(struct pq_shred *ps); /* NULL is a no-op */

/* Validate, convert and stage the reader's current row in the shredder: 0 when the whole row is
 * good (commit it with shred_end before the next pq_reader_next), PQ_SHRED_JSON when not
 * (nothing staged counts; nothing was written). */
int pq_shred_row(struct pq_shred *ps);

/* For tests and the log: rows taken and rows handed back since pq_shred_new. */
void pq_shred_counts(const struct pq_shred *ps, int64_t *taken, int64_t *handed_back);

#endif
